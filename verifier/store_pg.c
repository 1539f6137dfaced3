/*
 * PostgreSQL behind dg_store, for several verifiers on one fleet (store.h).
 * Values go both ways in libpq's binary format (bytea as bytes, bigint as 8
 * big-endian bytes), so a row read back becomes dg_store_val columns and
 * passes the very checks a SQLite row passes (store.c). Anyone who can
 * write the database can write anything: nothing read is trusted.
 */
#include "store_impl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "driftgate/err.h"

/* Type OIDs (pg_type.h is a server header). */
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23
#define OID_TEXT 25
#define OID_VARCHAR 1043

/* Advisory lock keys: "drft" for schema creation; round locks pair it with
 * hashtext(agent id), a separate key space (two int4 keys). */
#define LOCK_SCHEMA 1685218932
#define LOCK_ROUND 1685218932

#define MAX_PARAMS 16

struct dg_store_pg {
	PGconn *conn;
	bool in_round;
};

static const char schema_sql[] =
	"CREATE TABLE schema_version (version bigint NOT NULL);"
	"INSERT INTO schema_version (version) VALUES (1);"
	"CREATE TABLE agents ("
	" id text PRIMARY KEY NOT NULL,"
	" ek_pub bytea NOT NULL,"
	" ak_pub bytea NOT NULL,"
	" ak_name bytea NOT NULL,"
	" pcr bigint NOT NULL,"
	" replay_sha1 bytea NOT NULL,"
	" replay_sha256 bytea NOT NULL,"
	" replay_used bigint NOT NULL,"
	" replay_entries bigint NOT NULL,"
	" have_clock bigint NOT NULL,"
	" clock bigint NOT NULL,"
	" reset_count bigint NOT NULL,"
	" restart_count bigint NOT NULL,"
	" safe bigint NOT NULL,"
	" containers bytea NOT NULL,"
	/* Shared by the verifiers, unlike SQLite's in-memory nonces: one live
	 * nonce per agent, consumed by whichever verifier sees it first. */
	" nonce bytea,"
	" nonce_expiry timestamptz"
	");"
	"CREATE TABLE drift ("
	" agent text NOT NULL REFERENCES agents (id),"
	" seq bigint NOT NULL,"
	" code text NOT NULL,"
	" detail text NOT NULL,"
	" PRIMARY KEY (agent, seq)"
	");";

static const char upsert_sql[] =
	"INSERT INTO agents (" DG_STORE_AGENT_COLUMNS ") VALUES "
	"($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) "
	"ON CONFLICT (id) DO UPDATE SET ek_pub = excluded.ek_pub, ak_pub = excluded.ak_pub, "
	"ak_name = excluded.ak_name, pcr = excluded.pcr, replay_sha1 = excluded.replay_sha1, "
	"replay_sha256 = excluded.replay_sha256, replay_used = excluded.replay_used, "
	"replay_entries = excluded.replay_entries, have_clock = excluded.have_clock, "
	"clock = excluded.clock, reset_count = excluded.reset_count, "
	"restart_count = excluded.restart_count, safe = excluded.safe, "
	"containers = excluded.containers";

/* Agents in a stable order whatever the database's collation. */
#define SELECT_AGENTS "SELECT " DG_STORE_AGENT_COLUMNS " FROM agents"

struct params {
	int n;
	unsigned int types[MAX_PARAMS];
	const char *vals[MAX_PARAMS];
	int lens[MAX_PARAMS];
	int fmts[MAX_PARAMS];
	char ints[MAX_PARAMS][8];
};

static void
p_text(struct params *p, const char *s)
{
	p->types[p->n] = OID_TEXT;
	p->vals[p->n] = s;
	p->lens[p->n] = 0;
	p->fmts[p->n++] = 0;
}

/* len is bounded by the caller (public areas, encoded containers). */
static void
p_blob(struct params *p, const void *b, size_t len)
{
	p->types[p->n] = OID_BYTEA;
	p->vals[p->n] = b;
	p->lens[p->n] = (int)len;
	p->fmts[p->n++] = 1;
}

static void
p_int(struct params *p, int64_t v)
{
	uint64_t u = (uint64_t)v;
	for (int i = 0; i < 8; i++)
		p->ints[p->n][i] = (char)(uint8_t)(u >> (56 - 8 * i));
	p->types[p->n] = OID_INT8;
	p->vals[p->n] = p->ints[p->n];
	p->lens[p->n] = 8;
	p->fmts[p->n++] = 1;
}

/* Another transaction held what we needed (lock timeout, deadlock,
 * serialization): the round may be retried; anything else is I/O. */
static int
map_result(const PGresult *res)
{
	const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	if (state != NULL && (strcmp(state, "55P03") == 0 || strcmp(state, "40P01") == 0 ||
	                      strcmp(state, "40001") == 0))
		return DG_ERR_STATE;
	return DG_ERR_IO;
}

/*
 * Run sql with p (may be NULL); results in binary. *res receives the result
 * of a TUPLES_OK / COMMAND_OK statement (the caller clears it), NULL on error,
 * which is reported on stderr with what.
 */
static int
run(struct dg_store_pg *s, const char *sql, const struct params *p, const char *what,
    PGresult **res)
{
	PGresult *r = PQexecParams(s->conn, sql, p ? p->n : 0, p ? p->types : NULL,
	                           p ? p->vals : NULL, p ? p->lens : NULL, p ? p->fmts : NULL, 1);
	ExecStatusType st = PQresultStatus(r);
	int rv;
	*res = NULL;
	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
		*res = r;
		return DG_OK;
	}
	fprintf(stderr, "driftgate-verifier: state database: %s: %s", what,
	        r != NULL ? PQresultErrorMessage(r) : PQerrorMessage(s->conn));
	rv = map_result(r);
	PQclear(r);
	return rv;
}

/* run, for statements whose result is not needed. */
static int
run0(struct dg_store_pg *s, const char *sql, const struct params *p, const char *what)
{
	PGresult *r;
	int rv = run(s, sql, p, what, &r);
	PQclear(r);
	return rv;
}

static int64_t
be_int(const uint8_t *p, size_t n)
{
	uint64_t u = (p[0] & 0x80) != 0 ? UINT64_MAX : 0; /* sign-extend */
	for (size_t i = 0; i < n; i++)
		u = u << 8 | p[i];
	return (int64_t)u;
}

/* Columns first..first + n - 1 of row as values; a type this code never
 * writes counts as wrong as NULL does. */
static void
pg_row(const PGresult *res, int row, int first, int n, struct dg_store_val *out)
{
	for (int i = 0; i < n; i++) {
		struct dg_store_val *v = &out[i];
		int col = first + i;
		const uint8_t *p = (const uint8_t *)PQgetvalue(res, row, col);
		size_t len = (size_t)PQgetlength(res, row, col);
		unsigned int type = PQftype(res, col);
		memset(v, 0, sizeof *v);
		if (PQgetisnull(res, row, col))
			continue;
		if ((type == OID_INT8 && len == 8) || (type == OID_INT4 && len == 4) ||
		    (type == OID_INT2 && len == 2)) {
			v->type = DG_STORE_INT;
			v->i = be_int(p, len);
		} else if (type == OID_TEXT || type == OID_VARCHAR) {
			v->type = DG_STORE_TEXT;
			v->p = p;
			v->n = len;
		} else if (type == OID_BYTEA) {
			v->type = DG_STORE_BLOB;
			v->p = p;
			v->n = len;
		}
	}
}

bool
dg_store_pg_uri(const char *path)
{
	return strncmp(path, "postgresql://", 13) == 0 || strncmp(path, "postgres://", 11) == 0;
}

/* Create the schema if absent (unless readonly), else check its version.
 * Under an advisory lock: verifiers started together create it once. */
static int
check_schema(struct dg_store_pg *s, bool readonly, char *err, size_t err_cap)
{
	PGresult *r = NULL;
	struct dg_store_val v;
	struct params p = {0};
	int rv;

	p_int(&p, LOCK_SCHEMA);
	if ((rv = run0(s, "BEGIN", NULL, "begin")) != DG_OK ||
	    (rv = run0(s, "SELECT pg_advisory_xact_lock($1)", &p, "schema lock")) != DG_OK ||
	    (rv = run(s, "SELECT to_regclass('schema_version') IS NULL", NULL, "schema", &r)) !=
	        DG_OK) {
		dg_store_set_err(err, err_cap, "state database: cannot read the schema: %s",
		                 PQerrorMessage(s->conn));
		goto out;
	}
	if (PQntuples(r) == 1 && PQgetlength(r, 0, 0) == 1 && PQgetvalue(r, 0, 0)[0] == 1) {
		if (readonly) {
			dg_store_set_err(err, err_cap, "state database: no driftgate schema");
			rv = DG_ERR_FORMAT;
			goto out;
		}
		PGresult *c = PQexec(s->conn, schema_sql); /* several statements: not PQexecParams */
		rv = PQresultStatus(c) == PGRES_COMMAND_OK ? DG_OK : DG_ERR_IO;
		PQclear(c);
		if (rv != DG_OK) {
			dg_store_set_err(err, err_cap, "state database: cannot create the schema");
			goto out;
		}
	} else {
		PQclear(r);
		rv = run(s, "SELECT version FROM schema_version", NULL, "schema version", &r);
		if (rv != DG_OK || PQntuples(r) != 1 || PQnfields(r) != 1) {
			dg_store_set_err(err, err_cap, "state database: not a driftgate verifier state "
			                               "database (no single schema version)");
			rv = DG_ERR_FORMAT;
			goto out;
		}
		pg_row(r, 0, 0, 1, &v);
		if (v.type != DG_STORE_INT) {
			dg_store_set_err(err, err_cap, "state database: schema version is not a number");
			rv = DG_ERR_FORMAT;
			goto out;
		}
		if (v.i != DG_STORE_SCHEMA_VERSION) {
			dg_store_set_err(err, err_cap,
			                 "state database schema version %lld, this verifier reads "
			                 "version %d", (long long)v.i, DG_STORE_SCHEMA_VERSION);
			rv = DG_ERR_UNSUPPORTED;
			goto out;
		}
	}
	rv = run0(s, "COMMIT", NULL, "commit");
out:
	PQclear(r);
	if (rv != DG_OK)
		(void)run0(s, "ROLLBACK", NULL, "rollback");
	return rv;
}

int
dg_store_pg_open(const char *uri, bool readonly, struct dg_store_pg **out, char *err,
                 size_t err_cap)
{
	struct dg_store_pg *s = calloc(1, sizeof *s);
	int rv;

	if (s == NULL)
		return DG_ERR_NOMEM;
	s->conn = PQconnectdb(uri);
	if (s->conn == NULL || PQstatus(s->conn) != CONNECTION_OK) {
		/* libpq's message names host and port, never the password */
		dg_store_set_err(err, err_cap, "state database: cannot connect: %s",
		                 s->conn ? PQerrorMessage(s->conn) : "out of memory");
		rv = DG_ERR_IO;
		goto out;
	}
	/*
	 * A verifier that hangs holding an agent's lock must not stall the
	 * others for ever: they give up the round (the agent retries). Commits
	 * wait for the server's own durability settings (synchronous_commit).
	 */
	if ((rv = run0(s, "SET lock_timeout = '5s'", NULL, "settings")) != DG_OK ||
	    (rv = run0(s, "SET client_min_messages = warning", NULL, "settings")) != DG_OK) {
		dg_store_set_err(err, err_cap, "state database: %s", PQerrorMessage(s->conn));
		goto out;
	}
	if ((rv = check_schema(s, readonly, err, err_cap)) != DG_OK)
		goto out;
	*out = s;
	s = NULL;
out:
	dg_store_pg_close(s);
	return rv;
}

void
dg_store_pg_close(struct dg_store_pg *s)
{
	if (s == NULL)
		return;
	PQfinish(s->conn);
	free(s);
}

/* ---- save ---- */

static int
save_rows(struct dg_store_pg *s, const struct dg_agent_rec *a, const uint8_t *containers,
          size_t containers_len)
{
	struct dg_quote_clock none = {0};
	const struct dg_quote_clock *c = a->have_clock ? &a->clock : &none;
	struct params p = {0};
	int rv;

	p_text(&p, a->id);
	p_blob(&p, a->ek_pub, a->ek_pub_len);
	p_blob(&p, a->ak_pub, a->ak_pub_len);
	p_blob(&p, a->ak_name, a->ak_name_len);
	p_int(&p, a->pcr);
	p_blob(&p, a->replay.sha1, sizeof a->replay.sha1);
	p_blob(&p, a->replay.sha256, sizeof a->replay.sha256);
	p_int(&p, a->replay.used);
	p_int(&p, (int64_t)a->replay.entries);
	p_int(&p, a->have_clock ? 1 : 0);
	p_int(&p, dg_store_u64_bits(c->clock));
	p_int(&p, c->reset_count);
	p_int(&p, c->restart_count);
	p_int(&p, c->safe ? 1 : 0);
	p_blob(&p, containers, containers_len);
	if ((rv = run0(s, upsert_sql, &p, "saving an agent")) != DG_OK)
		return rv;
	/* Drift only grows within a boot and is cleared by a reboot: rewritten whole. */
	p.n = 0;
	p_text(&p, a->id);
	if ((rv = run0(s, "DELETE FROM drift WHERE agent = $1", &p, "saving drift")) != DG_OK)
		return rv;
	for (size_t i = 0; i < a->n_drift; i++) {
		char code[DG_REASON_CODE_MAX], detail[DG_REASON_DETAIL_MAX];
		snprintf(code, sizeof code, "%s", a->drift[i].code);
		snprintf(detail, sizeof detail, "%s", a->drift[i].detail);
		p.n = 0;
		p_text(&p, a->id);
		p_int(&p, (int64_t)i);
		p_text(&p, code);
		p_text(&p, detail);
		if ((rv = run0(s, "INSERT INTO drift (agent, seq, code, detail) "
		                  "VALUES ($1, $2, $3, $4)", &p, "saving drift")) != DG_OK)
			return rv;
	}
	return DG_OK;
}

int
dg_store_pg_save(struct dg_store_pg *s, const struct dg_agent_rec *a)
{
	uint8_t *containers = NULL;
	size_t containers_len = 0;
	int rv;

	if ((rv = dg_containers_encode(a->containers, &containers, &containers_len)) != DG_OK)
		return rv;
	/* Inside a round: a failed save undoes only itself, the round's nonce
	 * consumption stands. */
	if ((rv = run0(s, s->in_round ? "SAVEPOINT save" : "BEGIN", NULL, "begin")) != DG_OK)
		goto out;
	if ((rv = save_rows(s, a, containers, containers_len)) != DG_OK) {
		(void)run0(s, s->in_round ? "ROLLBACK TO SAVEPOINT save" : "ROLLBACK", NULL,
		           "rollback");
		if (s->in_round)
			(void)run0(s, "RELEASE SAVEPOINT save", NULL, "release");
		goto out;
	}
	rv = run0(s, s->in_round ? "RELEASE SAVEPOINT save" : "COMMIT", NULL, "commit");
out:
	if (rv != DG_OK)
		fprintf(stderr, "driftgate-verifier: state database: saving agent '%s' failed\n",
		        a->id);
	free(containers);
	return rv;
}

/* ---- rounds ---- */

int
dg_store_pg_round_begin(struct dg_store_pg *s, const char *id)
{
	struct params p = {0};
	int rv;

	if (s->in_round)
		return DG_ERR_STATE;
	/* A server restart or a dropped connection: one reconnection per round. */
	if (PQstatus(s->conn) != CONNECTION_OK) {
		PQreset(s->conn);
		if (PQstatus(s->conn) != CONNECTION_OK ||
		    run0(s, "SET lock_timeout = '5s'", NULL, "settings") != DG_OK)
			return DG_ERR_IO;
	}
	if ((rv = run0(s, "BEGIN", NULL, "begin")) != DG_OK)
		return rv;
	s->in_round = true;
	/* The agent id, stored or not (an enrollment has no row yet): two
	 * verifiers never run a round of one agent at once. */
	p_int(&p, LOCK_ROUND);
	p_text(&p, id);
	if ((rv = run0(s, "SELECT pg_advisory_xact_lock($1::integer, hashtext($2))", &p,
	               "agent lock")) != DG_OK)
		(void)dg_store_pg_round_end(s, false);
	return rv;
}

int
dg_store_pg_round_end(struct dg_store_pg *s, bool commit)
{
	PGresult *r = NULL;
	int rv;

	if (!s->in_round)
		return DG_OK;
	s->in_round = false;
	if ((rv = run(s, commit ? "COMMIT" : "ROLLBACK", NULL, "end of round", &r)) != DG_OK)
		return rv;
	/* COMMIT of a transaction an error aborted answers ROLLBACK */
	if (commit && strcmp(PQcmdStatus(r), "COMMIT") != 0)
		rv = DG_ERR_IO;
	PQclear(r);
	return rv;
}

/* a's drift from the drift rows of res (seq, code, detail from column first). */
static int
read_drift(const PGresult *res, int first, struct dg_agent_rec *a, char *err, size_t err_cap)
{
	struct dg_store_val row[3];
	int rv;
	for (int i = 0; i < PQntuples(res); i++) {
		pg_row(res, i, first, 3, row);
		if ((rv = dg_store_row_reason(row, a, err, err_cap)) != DG_OK)
			return rv;
	}
	return DG_OK;
}

int
dg_store_pg_fetch(struct dg_store_pg *s, const char *id, struct dg_agent_rec *a, char *err,
                  size_t err_cap)
{
	PGresult *r = NULL;
	struct dg_store_val row[C_COUNT];
	struct params p = {0};
	char name[DG_WIRE_MAX_AGENT_ID + 1];
	int rv;

	p_text(&p, id);
	if ((rv = run(s, SELECT_AGENTS " WHERE id = $1 FOR UPDATE", &p, "reading an agent", &r)) !=
	    DG_OK)
		goto out;
	if (PQntuples(r) != 1 || PQnfields(r) != C_COUNT) {
		rv = PQntuples(r) == 0 ? DG_ERR_NOTFOUND : DG_ERR_FORMAT;
		goto out;
	}
	pg_row(r, 0, 0, C_COUNT, row);
	if (!dg_store_row_id(&row[C_ID], 1, name, err, err_cap) || strcmp(name, id) != 0) {
		rv = DG_ERR_FORMAT;
		goto out;
	}
	snprintf(a->id, sizeof a->id, "%s", name);
	if ((rv = dg_store_row_agent(row, a, err, err_cap)) != DG_OK)
		goto out;
	PQclear(r);
	if ((rv = run(s, "SELECT seq, code, detail FROM drift WHERE agent = $1 ORDER BY seq", &p,
	              "reading drift", &r)) != DG_OK ||
	    (rv = PQnfields(r) == 3 ? DG_OK : DG_ERR_FORMAT) != DG_OK)
		goto out;
	rv = read_drift(r, 0, a, err, err_cap);
out:
	PQclear(r);
	return rv;
}

int
dg_store_pg_nonce_put(struct dg_store_pg *s, const char *id, const uint8_t *nonce, size_t len,
                      unsigned ttl_ms)
{
	PGresult *r = NULL;
	struct params p = {0};
	char ttl[32];
	int rv;

	snprintf(ttl, sizeof ttl, "%u milliseconds", ttl_ms);
	p_text(&p, id);
	p_blob(&p, nonce, len);
	p_text(&p, ttl);
	/* The database's clock: every verifier judges expiry by the same one. */
	if ((rv = run(s, "UPDATE agents SET nonce = $2, nonce_expiry = clock_timestamp() + "
	                 "$3::interval WHERE id = $1", &p, "storing a nonce", &r)) != DG_OK)
		return rv;
	rv = strcmp(PQcmdTuples(r), "1") == 0 ? DG_OK : DG_ERR_NOTFOUND;
	PQclear(r);
	return rv;
}

int
dg_store_pg_nonce_take(struct dg_store_pg *s, const char *id, const uint8_t *nonce, size_t len)
{
	PGresult *r = NULL;
	struct params p = {0};
	int rv;

	p_text(&p, id);
	p_blob(&p, nonce, len);
	/* Consumed in the statement that checks it: never by two verifiers. */
	if ((rv = run(s, "UPDATE agents SET nonce = NULL, nonce_expiry = NULL WHERE id = $1 AND "
	                 "nonce = $2 AND nonce_expiry > clock_timestamp()", &p, "taking a nonce",
	              &r)) != DG_OK)
		return rv;
	rv = strcmp(PQcmdTuples(r), "1") == 0 ? DG_OK : DG_ERR_NONCE;
	PQclear(r);
	if (rv == DG_ERR_NONCE) {
		/* As with SQLite: a wrong answer retires the live nonce too. */
		p.n = 1;
		(void)run0(s, "UPDATE agents SET nonce = NULL, nonce_expiry = NULL WHERE id = $1", &p,
		           "retiring a nonce");
	}
	return rv;
}

/* ---- load and list ---- */

/*
 * Every agent with its drift, from one snapshot, each checked; fn receives
 * it with its id set. arg_r: add to this registry instead (load).
 */
static int
each_agent(struct dg_store_pg *s, struct dg_registry *reg, dg_store_list_fn fn, void *arg,
           char *err, size_t err_cap)
{
	PGresult *agents = NULL, *drift = NULL;
	struct dg_agent_rec *tmp = NULL, *a;
	struct dg_store_val row[C_COUNT], id[1];
	char name[DG_WIRE_MAX_AGENT_ID + 1];
	int rv, d = 0, n_drift;

	if ((rv = run0(s, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", NULL, "begin")) !=
	    DG_OK)
		return rv;
	if ((rv = run(s, SELECT_AGENTS " ORDER BY id COLLATE \"C\"", NULL, "reading agents",
	              &agents)) != DG_OK ||
	    (rv = run(s, "SELECT agent, seq, code, detail FROM drift ORDER BY agent COLLATE \"C\", "
	                 "seq", NULL, "reading drift", &drift)) != DG_OK) {
		dg_store_set_err(err, err_cap, "state database: %s", PQerrorMessage(s->conn));
		goto out;
	}
	if (PQnfields(agents) != C_COUNT || PQnfields(drift) != 4) {
		dg_store_set_err(err, err_cap, "state database: unexpected columns");
		rv = DG_ERR_FORMAT;
		goto out;
	}
	if (PQntuples(agents) > DG_REGISTRY_MAX_AGENTS) {
		dg_store_set_err(err, err_cap, "state database: more than %d agents",
		                 DG_REGISTRY_MAX_AGENTS);
		rv = DG_ERR_TOOBIG;
		goto out;
	}
	if (reg == NULL && (tmp = calloc(1, sizeof *tmp)) == NULL) {
		rv = DG_ERR_NOMEM;
		goto out;
	}
	n_drift = PQntuples(drift);
	for (int i = 0; i < PQntuples(agents); i++) {
		pg_row(agents, i, 0, C_COUNT, row);
		if (!dg_store_row_id(&row[C_ID], (size_t)i + 1, name, err, err_cap)) {
			rv = DG_ERR_FORMAT;
			goto out;
		}
		if (reg != NULL) {
			if ((rv = dg_registry_add(reg, name, &a)) != DG_OK) {
				dg_store_set_err(err, err_cap, "state database: agent '%s': %s", name,
				                 rv == DG_ERR_EXISTS ? "stored twice" : dg_strerror(rv));
				if (rv == DG_ERR_EXISTS)
					rv = DG_ERR_FORMAT;
				goto out;
			}
		} else {
			a = tmp;
			dg_store_rec_reset(a);
			memcpy(a->id, name, sizeof name);
		}
		if ((rv = dg_store_row_agent(row, a, err, err_cap)) != DG_OK)
			goto out;
		/* Both lists sorted by id: this agent's drift rows come next. */
		for (; d < n_drift; d++) {
			pg_row(drift, d, 0, 1, id);
			if (id[0].type != DG_STORE_TEXT || id[0].n != strlen(name) ||
			    memcmp(id[0].p, name, id[0].n) != 0)
				break;
			pg_row(drift, d, 1, 3, row);
			if ((rv = dg_store_row_reason(row, a, err, err_cap)) != DG_OK)
				goto out;
		}
		if (fn != NULL && (rv = fn(a, arg)) != DG_OK)
			goto out;
	}
	if (d < n_drift) {
		dg_store_set_err(err, err_cap, "state database: a drift row names no stored agent");
		rv = DG_ERR_FORMAT;
		goto out;
	}
	rv = DG_OK;
out:
	PQclear(agents);
	PQclear(drift);
	(void)run0(s, "ROLLBACK", NULL, "end of read"); /* nothing to keep */
	if (tmp != NULL) {
		dg_store_rec_reset(tmp);
		free(tmp);
	}
	return rv;
}

int
dg_store_pg_load(struct dg_store_pg *s, struct dg_registry *r, char *err, size_t err_cap)
{
	return each_agent(s, r, NULL, NULL, err, err_cap);
}

int
dg_store_pg_list(struct dg_store_pg *s, dg_store_list_fn fn, void *arg, char *err,
                 size_t err_cap)
{
	return each_agent(s, NULL, fn, arg, err, err_cap);
}
