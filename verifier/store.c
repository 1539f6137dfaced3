/*
 * SQLite behind dg_store. Statements used per attestation round are prepared
 * once at open and reset after each use; the load runs once and prepares its
 * own. Every value read back is checked for type, length and consistency
 * before it reaches a dg_agent_rec.
 */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "driftgate/err.h"
#include "store_impl.h"

#define STR_(x) #x
#define STR(x) STR_(x)

/*
 * Schema version 1. STRICT tables so a value of the wrong type cannot be
 * written by this code; the load checks types all the same, since anyone
 * with the file (or an older SQLite) can write anything.
 */
static const char schema_sql[] =
	"CREATE TABLE schema_version (version INTEGER NOT NULL) STRICT;"
	"INSERT INTO schema_version (version) VALUES (" STR(DG_STORE_SCHEMA_VERSION) ");"
	"CREATE TABLE agents ("
	" id TEXT PRIMARY KEY NOT NULL,"
	" ek_pub BLOB NOT NULL,"          /* TPM2B_PUBLIC as enrolled */
	" ak_pub BLOB NOT NULL,"
	" ak_name BLOB NOT NULL,"         /* nameAlg || H(TPMT_PUBLIC) */
	" pcr INTEGER NOT NULL,"
	" replay_sha1 BLOB NOT NULL,"     /* 24 x 20 bytes */
	" replay_sha256 BLOB NOT NULL,"   /* 24 x 32 bytes */
	" replay_used INTEGER NOT NULL,"  /* bit i: PCR i extended */
	" replay_entries INTEGER NOT NULL,"
	" have_clock INTEGER NOT NULL,"
	" clock INTEGER NOT NULL,"        /* TPM clock: uint64 stored as its int64 bits */
	" reset_count INTEGER NOT NULL,"
	" restart_count INTEGER NOT NULL,"
	" safe INTEGER NOT NULL,"
	" containers BLOB NOT NULL"       /* dg_containers_encode */
	") STRICT;"
	"CREATE TABLE drift ("
	" agent TEXT NOT NULL REFERENCES agents (id),"
	" seq INTEGER NOT NULL,"          /* 0, 1, ... in the order the reasons arose */
	" code TEXT NOT NULL,"
	" detail TEXT NOT NULL,"
	" PRIMARY KEY (agent, seq)"
	") STRICT;";

#define AGENT_COLUMNS DG_STORE_AGENT_COLUMNS

static const char upsert_sql[] =
	"INSERT INTO agents (" AGENT_COLUMNS ") VALUES "
	"(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) "
	"ON CONFLICT (id) DO UPDATE SET ek_pub = excluded.ek_pub, ak_pub = excluded.ak_pub, "
	"ak_name = excluded.ak_name, pcr = excluded.pcr, replay_sha1 = excluded.replay_sha1, "
	"replay_sha256 = excluded.replay_sha256, replay_used = excluded.replay_used, "
	"replay_entries = excluded.replay_entries, have_clock = excluded.have_clock, "
	"clock = excluded.clock, reset_count = excluded.reset_count, "
	"restart_count = excluded.restart_count, safe = excluded.safe, "
	"containers = excluded.containers";

struct dg_store {
	sqlite3 *db;
	sqlite3_stmt *begin, *commit, *rollback, *upsert, *drift_clear, *drift_add;
	sqlite3_stmt *savepoint, *release, *rollback_to; /* one save inside a batch */
	bool in_batch;
	int lock_fd; /* holds the one-verifier flock; -1 for :memory: and readers */
	struct dg_store_pg *pg; /* PostgreSQL: everything goes there, db is NULL */
};

/* How long a statement waits out a lock a reader holds for an instant (WAL
 * recovery, a checkpoint at its close) before it fails. */
#define BUSY_TIMEOUT_MS 2000

void
dg_store_set_err(char *err, size_t err_cap, const char *fmt, ...)
{
	va_list ap;
	if (err == NULL || err_cap == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, err_cap, fmt, ap);
	va_end(ap);
}

static int
map_sqlite(int rc)
{
	switch (rc & 0xff) { /* primary code of an extended one */
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW: return DG_OK;
	case SQLITE_NOMEM: return DG_ERR_NOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED: return DG_ERR_STATE;
	case SQLITE_TOOBIG: return DG_ERR_TOOBIG;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
	case SQLITE_MISMATCH:
	case SQLITE_CONSTRAINT: return DG_ERR_FORMAT;
	default: return DG_ERR_IO;
	}
}

/* Run a prepared statement that returns no rows, and make it reusable. */
static int
step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? DG_OK : map_sqlite(rc == SQLITE_ROW ? SQLITE_MISMATCH : rc);
}

/* ---- open ---- */

/*
 * Create a missing file 0600 ourselves (SQLite would use 0644), then insist
 * on a regular file of ours that only we may write: the state decides whether
 * an agent's drift is still sticky. Then take an flock on it, kept until
 * close, so that a second verifier on the file fails here: two would
 * overwrite each other's agents. An flock, not SQLite's exclusive locking
 * mode, because that would also lock out readers (driftgate-verifier status);
 * and flock, not fcntl, because flocks and SQLite's POSIX locks ignore each
 * other. The descriptor stays open until SQLite has closed: closing any
 * descriptor of a file drops this process's POSIX locks on it, SQLite's
 * included.
 */
static int
lock_file(const char *path, int *lock_fd, char *err, size_t err_cap)
{
	struct stat st;
	int rv, saved;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		dg_store_set_err(err, err_cap, "%s: %s", path, strerror(errno));
		return errno == EACCES || errno == EPERM ? DG_ERR_PERM : DG_ERR_IO;
	}
	if (fstat(fd, &st) != 0) {
		saved = errno;
		dg_store_set_err(err, err_cap, "%s: %s", path, strerror(saved));
		rv = DG_ERR_IO;
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 022) != 0) {
		dg_store_set_err(err, err_cap,
		        "%s: the state database must be a regular file owned by the verifier's "
		        "user and writable by no one else",
		        path);
		rv = DG_ERR_PERM;
		goto out;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		saved = errno;
		if (saved == EWOULDBLOCK) {
			dg_store_set_err(err, err_cap, "state database is in use by another process (one "
			                      "verifier per state file)");
			rv = DG_ERR_STATE;
		} else {
			dg_store_set_err(err, err_cap, "%s: lock: %s", path, strerror(saved));
			rv = DG_ERR_IO;
		}
		goto out;
	}
	*lock_fd = fd;
	fd = -1;
	rv = DG_OK;
out:
	if (fd >= 0)
		close(fd);
	return rv;
}

static int
exec_sql(struct dg_store *s, const char *sql, const char *what, char *err, size_t err_cap)
{
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		return DG_OK;
	if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
		dg_store_set_err(err, err_cap,
		        "state database is in use by another process (one verifier per state file)");
	else
		dg_store_set_err(err, err_cap, "state database: %s: %s", what, sqlite3_errmsg(s->db));
	return map_sqlite(rc);
}

/* journal_mode answers with the mode in force, which is the one to check. */
static int
set_wal(struct dg_store *s, bool memory, char *err, size_t err_cap)
{
	sqlite3_stmt *st = NULL;
	const char *want = memory ? "memory" : "wal";
	int rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
	int rv;
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		rv = map_sqlite(rc);
		if (rv == DG_ERR_STATE)
			dg_store_set_err(err, err_cap, "state database is in use by another process (one "
			                      "verifier per state file)");
		else
			dg_store_set_err(err, err_cap, "state database: journal_mode: %s",
			        sqlite3_errmsg(s->db));
		goto out;
	}
	const unsigned char *mode = sqlite3_column_text(st, 0);
	if (mode == NULL || strcmp((const char *)mode, want) != 0) {
		dg_store_set_err(err, err_cap, "state database: journal mode is %s, not %s",
		        mode ? (const char *)mode : "unknown", want);
		rv = DG_ERR_IO;
		goto out;
	}
	rv = DG_OK;
out:
	sqlite3_finalize(st);
	return rv;
}

/* One integer from a query with exactly one row, or -1 if none. */
static int
query_int(struct dg_store *s, const char *sql, sqlite3_int64 *out, bool *is_int)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
	int rv = DG_ERR_FORMAT;
	if (rc != SQLITE_OK) {
		rv = map_sqlite(rc);
		goto out;
	}
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		rv = rc == SQLITE_DONE ? DG_ERR_NOTFOUND : map_sqlite(rc);
		goto out;
	}
	*is_int = sqlite3_column_type(st, 0) == SQLITE_INTEGER;
	*out = sqlite3_column_int64(st, 0);
	rv = sqlite3_step(st) == SQLITE_DONE ? DG_OK : DG_ERR_FORMAT; /* exactly one row */
out:
	sqlite3_finalize(st);
	return rv;
}

/* Create the schema in a new database (if create) or check the version of an
 * existing one. */
static int
check_schema(struct dg_store *s, const char *path, bool create, char *err, size_t err_cap)
{
	sqlite3_int64 n_tables = 0, version = 0;
	bool is_int = false;
	int rv;

	rv = query_int(s, "SELECT count(*) FROM sqlite_schema WHERE type = 'table'", &n_tables,
	               &is_int);
	if (rv != DG_OK) {
		dg_store_set_err(err, err_cap, "%s: cannot read the schema: %s", path, sqlite3_errmsg(s->db));
		return rv;
	}
	if (n_tables == 0 && create)
		return exec_sql(s, schema_sql, "creating the schema", err, err_cap);
	rv = query_int(s, "SELECT version FROM schema_version", &version, &is_int);
	if (rv != DG_OK || !is_int) {
		dg_store_set_err(err, err_cap, "%s: not a driftgate verifier state database (no single "
		                      "schema version)", path);
		return DG_ERR_FORMAT;
	}
	if (version != DG_STORE_SCHEMA_VERSION) {
		dg_store_set_err(err, err_cap,
		        "%s: state database schema version %lld, this verifier reads version %d",
		        path, (long long)version, DG_STORE_SCHEMA_VERSION);
		return DG_ERR_UNSUPPORTED;
	}
	return DG_OK;
}

/* persistent: kept for the store's life (a hint to SQLite's allocator). */
static int
prepare(struct dg_store *s, const char *sql, bool persistent, sqlite3_stmt **st, char *err,
        size_t err_cap)
{
	int rc = sqlite3_prepare_v3(s->db, sql, -1, persistent ? SQLITE_PREPARE_PERSISTENT : 0, st,
	                            NULL);
	if (rc != SQLITE_OK)
		dg_store_set_err(err, err_cap, "state database: %s", sqlite3_errmsg(s->db));
	return map_sqlite(rc);
}

int
dg_store_open(const char *path, struct dg_store **out, char *err, size_t err_cap)
{
	struct dg_store *s = NULL;
	bool memory = strcmp(path, DG_STORE_MEMORY) == 0;
	int rv, rc;

	if ((s = calloc(1, sizeof *s)) == NULL)
		return DG_ERR_NOMEM;
	s->lock_fd = -1;
	if (dg_store_pg_uri(path)) {
		if ((rv = dg_store_pg_open(path, false, &s->pg, err, err_cap)) != DG_OK)
			goto out;
		*out = s;
		return DG_OK;
	}
	if (!memory && (rv = lock_file(path, &s->lock_fd, err, err_cap)) != DG_OK)
		goto out;
	rc = sqlite3_open_v2(path, &s->db,
	                     SQLITE_OPEN_READWRITE | (memory ? SQLITE_OPEN_CREATE : 0), NULL);
	if (rc != SQLITE_OK) {
		dg_store_set_err(err, err_cap, "%s: %s", path,
		        s->db != NULL ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		rv = map_sqlite(rc);
		goto out;
	}
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
	/*
	 * WAL, so that readers (driftgate-verifier status) neither block a save
	 * nor see half of one; lock_file keeps out a second writer.
	 * synchronous=FULL syncs the WAL at every commit: a verdict goes out
	 * only after its state would survive a power loss, not just a crash.
	 */
	if ((rv = set_wal(s, memory, err, err_cap)) != DG_OK ||
	    (rv = exec_sql(s, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON",
	                   "pragmas", err, err_cap)) != DG_OK ||
	    (rv = exec_sql(s, "BEGIN EXCLUSIVE", "begin", err, err_cap)) != DG_OK)
		goto out;
	if ((rv = check_schema(s, path, true, err, err_cap)) != DG_OK) {
		(void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		goto out;
	}
	if ((rv = exec_sql(s, "COMMIT", "commit", err, err_cap)) != DG_OK ||
	    (rv = prepare(s, "BEGIN IMMEDIATE", true, &s->begin, err, err_cap)) != DG_OK ||
	    (rv = prepare(s, "COMMIT", true, &s->commit, err, err_cap)) != DG_OK ||
	    (rv = prepare(s, "ROLLBACK", true, &s->rollback, err, err_cap)) != DG_OK ||
	    (rv = prepare(s, "SAVEPOINT save", true, &s->savepoint, err, err_cap)) != DG_OK ||
	    (rv = prepare(s, "RELEASE save", true, &s->release, err, err_cap)) != DG_OK ||
	    (rv = prepare(s, "ROLLBACK TO save", true, &s->rollback_to, err, err_cap)) != DG_OK ||
	    (rv = prepare(s, upsert_sql, true, &s->upsert, err, err_cap)) != DG_OK ||
	    (rv = prepare(s, "DELETE FROM drift WHERE agent = ?1", true, &s->drift_clear, err,
	                  err_cap)) != DG_OK ||
	    (rv = prepare(s, "INSERT INTO drift (agent, seq, code, detail) VALUES (?1, ?2, ?3, ?4)",
	                  true, &s->drift_add, err, err_cap)) != DG_OK)
		goto out;
	*out = s;
	s = NULL;
	rv = DG_OK;
out:
	dg_store_close(s);
	return rv;
}

int
dg_store_open_readonly(const char *path, struct dg_store **out, char *err, size_t err_cap)
{
	struct dg_store *s = NULL;
	int rv, rc;

	if ((s = calloc(1, sizeof *s)) == NULL)
		return DG_ERR_NOMEM;
	s->lock_fd = -1;
	if (dg_store_pg_uri(path)) {
		if ((rv = dg_store_pg_open(path, true, &s->pg, err, err_cap)) != DG_OK)
			goto out;
		*out = s;
		return DG_OK;
	}
	rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READONLY, NULL);
	if (rc != SQLITE_OK) {
		dg_store_set_err(err, err_cap, "%s: %s", path,
		        s->db != NULL ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		rv = map_sqlite(rc);
		goto out;
	}
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
	if ((rv = check_schema(s, path, false, err, err_cap)) != DG_OK)
		goto out;
	*out = s;
	s = NULL;
out:
	dg_store_close(s);
	return rv;
}

void
dg_store_close(struct dg_store *s)
{
	if (s == NULL)
		return;
	dg_store_pg_close(s->pg);
	sqlite3_finalize(s->begin);
	sqlite3_finalize(s->commit);
	sqlite3_finalize(s->rollback);
	sqlite3_finalize(s->savepoint);
	sqlite3_finalize(s->release);
	sqlite3_finalize(s->rollback_to);
	sqlite3_finalize(s->upsert);
	sqlite3_finalize(s->drift_clear);
	sqlite3_finalize(s->drift_add);
	sqlite3_close_v2(s->db);
	if (s->lock_fd >= 0)
		close(s->lock_fd); /* after SQLite: see lock_file */
	free(s);
}

/* ---- save ---- */

int64_t
dg_store_u64_bits(uint64_t v)
{
	int64_t out;
	memcpy(&out, &v, sizeof out);
	return out;
}

static uint64_t
bits_u64(int64_t v)
{
	uint64_t out;
	memcpy(&out, &v, sizeof out);
	return out;
}

static int
bind_agent(sqlite3_stmt *st, const struct dg_agent_rec *a, const uint8_t *containers,
           size_t containers_len)
{
	struct dg_quote_clock none = {0};
	const struct dg_quote_clock *c = a->have_clock ? &a->clock : &none;
	int rc = SQLITE_OK;

	/* Every value outlives the step: SQLITE_STATIC avoids copies. */
	rc |= sqlite3_bind_text(st, C_ID + 1, a->id, -1, SQLITE_STATIC);
	rc |= sqlite3_bind_blob(st, C_EK_PUB + 1, a->ek_pub, (int)a->ek_pub_len, SQLITE_STATIC);
	rc |= sqlite3_bind_blob(st, C_AK_PUB + 1, a->ak_pub, (int)a->ak_pub_len, SQLITE_STATIC);
	rc |= sqlite3_bind_blob(st, C_AK_NAME + 1, a->ak_name, (int)a->ak_name_len, SQLITE_STATIC);
	rc |= sqlite3_bind_int64(st, C_PCR + 1, a->pcr);
	rc |= sqlite3_bind_blob(st, C_SHA1 + 1, a->replay.sha1, sizeof a->replay.sha1,
	                        SQLITE_STATIC);
	rc |= sqlite3_bind_blob(st, C_SHA256 + 1, a->replay.sha256, sizeof a->replay.sha256,
	                        SQLITE_STATIC);
	rc |= sqlite3_bind_int64(st, C_USED + 1, a->replay.used);
	rc |= sqlite3_bind_int64(st, C_ENTRIES + 1, (sqlite3_int64)a->replay.entries);
	rc |= sqlite3_bind_int64(st, C_HAVE_CLOCK + 1, a->have_clock ? 1 : 0);
	rc |= sqlite3_bind_int64(st, C_CLOCK + 1, dg_store_u64_bits(c->clock));
	rc |= sqlite3_bind_int64(st, C_RESET + 1, c->reset_count);
	rc |= sqlite3_bind_int64(st, C_RESTART + 1, c->restart_count);
	rc |= sqlite3_bind_int64(st, C_SAFE + 1, c->safe ? 1 : 0);
	rc |= sqlite3_bind_blob64(st, C_CONTAINERS + 1, containers, containers_len, SQLITE_STATIC);
	/* OR-ing codes only tells "some bind failed", which is all we act on. */
	return rc == SQLITE_OK ? DG_OK : DG_ERR_IO;
}

int
dg_store_save(struct dg_store *s, const struct dg_agent_rec *a)
{
	uint8_t *containers = NULL;
	size_t containers_len = 0;
	int rv;

	if (s == NULL || a == NULL || a->n_drift > DG_VERDICT_MAX_REASONS ||
	    a->ek_pub_len > DG_TPMKEY_MAX_PUBLIC || a->ak_pub_len > DG_TPMKEY_MAX_PUBLIC ||
	    a->ak_name_len > DG_TPMKEY_MAX_NAME)
		return DG_ERR_INVAL;
	if (a->replay.entries > (uint64_t)INT64_MAX)
		return DG_ERR_TOOBIG;
	if (s->pg != NULL)
		return dg_store_pg_save(s->pg, a);
	if ((rv = dg_containers_encode(a->containers, &containers, &containers_len)) != DG_OK)
		return rv;
	if ((rv = step_done(s->in_batch ? s->savepoint : s->begin)) != DG_OK)
		goto out;
	if ((rv = bind_agent(s->upsert, a, containers, containers_len)) != DG_OK) {
		sqlite3_reset(s->upsert);
		sqlite3_clear_bindings(s->upsert);
		goto out;
	}
	if ((rv = step_done(s->upsert)) != DG_OK)
		goto out;
	/* Drift only grows within a boot and is cleared by a reboot: rewritten whole. */
	if (sqlite3_bind_text(s->drift_clear, 1, a->id, -1, SQLITE_STATIC) != SQLITE_OK) {
		rv = DG_ERR_IO;
		goto out;
	}
	if ((rv = step_done(s->drift_clear)) != DG_OK)
		goto out;
	for (size_t i = 0; i < a->n_drift; i++) {
		int rc = SQLITE_OK;
		rc |= sqlite3_bind_text(s->drift_add, 1, a->id, -1, SQLITE_STATIC);
		rc |= sqlite3_bind_int64(s->drift_add, 2, (sqlite3_int64)i);
		rc |= sqlite3_bind_text(s->drift_add, 3, a->drift[i].code,
		                        (int)strnlen(a->drift[i].code, DG_REASON_CODE_MAX),
		                        SQLITE_STATIC);
		rc |= sqlite3_bind_text(s->drift_add, 4, a->drift[i].detail,
		                        (int)strnlen(a->drift[i].detail, DG_REASON_DETAIL_MAX),
		                        SQLITE_STATIC);
		if (rc != SQLITE_OK) {
			rv = DG_ERR_IO;
			goto out;
		}
		if ((rv = step_done(s->drift_add)) != DG_OK)
			goto out;
	}
	rv = step_done(s->in_batch ? s->release : s->commit);
out:
	if (rv != DG_OK) {
		fprintf(stderr, "driftgate-verifier: state database: saving agent '%s': %s\n", a->id,
		        sqlite3_errmsg(s->db));
		if (s->in_batch) {
			/* Undo this agent's part only; the batch's other saves stand. */
			(void)step_done(s->rollback_to);
			(void)step_done(s->release);
		} else if (!sqlite3_get_autocommit(s->db)) {
			/* A failed COMMIT can leave the transaction open: end it, so
			 * that the next save starts clean and nothing of this one lands. */
			(void)step_done(s->rollback);
		}
	}
	sqlite3_reset(s->drift_clear);
	sqlite3_clear_bindings(s->drift_clear);
	free(containers);
	return rv;
}

int
dg_store_batch_begin(struct dg_store *s)
{
	int rv;
	if (s->pg != NULL)
		return DG_OK; /* each round is its own transaction there (dg_store_round_begin) */
	if (s->in_batch)
		return DG_ERR_STATE;
	if ((rv = step_done(s->begin)) == DG_OK)
		s->in_batch = true;
	return rv;
}

int
dg_store_batch_commit(struct dg_store *s)
{
	int rv;
	if (s->pg != NULL)
		return DG_OK;
	if (!s->in_batch)
		return DG_ERR_STATE;
	s->in_batch = false;
	if ((rv = step_done(s->commit)) != DG_OK) {
		fprintf(stderr, "driftgate-verifier: state database: commit: %s\n",
		        sqlite3_errmsg(s->db));
		if (!sqlite3_get_autocommit(s->db))
			(void)step_done(s->rollback);
	}
	return rv;
}

/* ---- row checks (both backends) ---- */

static bool
agent_id_valid(const uint8_t *s, size_t n)
{
	if (n == 0 || n > DG_WIRE_MAX_AGENT_ID)
		return false;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* Printable ASCII in [lo, 0x7e], no NUL: what dg_reason_set writes. */
static bool
printable(const uint8_t *s, size_t n, uint8_t lo)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] < lo || s[i] > 0x7e)
			return false;
	}
	return true;
}

/* A BLOB column of min..max bytes. */
static bool
col_blob(const struct dg_store_val *v, size_t min, size_t max, const uint8_t **p, size_t *n)
{
	if (v->type != DG_STORE_BLOB)
		return false;
	*p = v->p;
	*n = v->n;
	return *p != NULL && *n >= min && *n <= max;
}

/* A TEXT column of min..max bytes. */
static bool
col_text(const struct dg_store_val *v, size_t min, size_t max, const uint8_t **p, size_t *n)
{
	if (v->type != DG_STORE_TEXT)
		return false;
	*p = v->p;
	*n = v->n;
	return *p != NULL && *n >= min && *n <= max;
}

/* An INTEGER column in min..max. */
static bool
col_int(const struct dg_store_val *v, int64_t min, int64_t max, int64_t *out)
{
	if (v->type != DG_STORE_INT)
		return false;
	*out = v->i;
	return *out >= min && *out <= max;
}

bool
dg_store_row_id(const struct dg_store_val *v, size_t row, char name[DG_WIRE_MAX_AGENT_ID + 1],
                char *err, size_t err_cap)
{
	const uint8_t *id;
	size_t n;
	if (!col_text(v, 1, DG_WIRE_MAX_AGENT_ID, &id, &n) || !agent_id_valid(id, n)) {
		dg_store_set_err(err, err_cap, "state database: agent row %zu: id is not an agent id",
		                 row);
		return false;
	}
	memcpy(name, id, n);
	name[n] = '\0';
	return true;
}

/* The replay state must be what only accepted entries of the agent's PCR give. */
static bool
replay_consistent(const struct dg_replay *r, uint32_t pcr)
{
	static const uint8_t zero[DG_SHA256_LEN];
	if ((r->entries == 0) != (r->used == 0) || (r->used != 0 && r->used != 1u << pcr))
		return false;
	for (uint32_t i = 0; i < DG_LOG_MAX_PCR; i++) {
		if ((r->used & (1u << i)) != 0)
			continue;
		if (memcmp(r->sha1[i], zero, DG_SHA1_LEN) != 0 ||
		    memcmp(r->sha256[i], zero, DG_SHA256_LEN) != 0)
			return false;
	}
	return true;
}

/* Fill a from row; on error *field names what is wrong. */
static int
fill_agent(const struct dg_store_val *row, struct dg_agent_rec *a, const char **field, char *why,
           size_t why_cap)
{
	const uint8_t *p;
	size_t n;
	int64_t v;
	uint8_t name[DG_TPMKEY_MAX_NAME];
	size_t name_len = 0;
	struct dg_containers *containers = NULL;
	int rv;

	*field = "ek_pub";
	if (!col_blob(&row[C_EK_PUB], 1, DG_TPMKEY_MAX_PUBLIC, &p, &n))
		return DG_ERR_FORMAT;
	if ((rv = dg_tpmkey_import(p, n, DG_TPMKEY_EK, NULL, NULL, NULL)) != DG_OK) {
		dg_store_set_err(why, why_cap, ": not an EK (%s)", dg_strerror(rv));
		return DG_ERR_FORMAT;
	}
	memcpy(a->ek_pub, p, n);
	a->ek_pub_len = n;
	*field = "ak_pub";
	if (!col_blob(&row[C_AK_PUB], 1, DG_TPMKEY_MAX_PUBLIC, &p, &n))
		return DG_ERR_FORMAT;
	if ((rv = dg_tpmkey_import(p, n, DG_TPMKEY_AK, &a->ak, name, &name_len)) != DG_OK) {
		dg_store_set_err(why, why_cap, ": not an AK (%s)", dg_strerror(rv));
		return DG_ERR_FORMAT;
	}
	memcpy(a->ak_pub, p, n);
	a->ak_pub_len = n;
	*field = "ak_name";
	if (!col_blob(&row[C_AK_NAME], 1, DG_TPMKEY_MAX_NAME, &p, &n) || n != name_len ||
	    memcmp(p, name, n) != 0) {
		dg_store_set_err(why, why_cap, ": not the name of the stored AK");
		return DG_ERR_FORMAT;
	}
	memcpy(a->ak_name, p, n);
	a->ak_name_len = n;
	*field = "pcr";
	if (!col_int(&row[C_PCR], 8, 15, &v)) /* what enrollment accepts */
		return DG_ERR_FORMAT;
	a->pcr = (uint32_t)v;

	*field = "replay_sha1";
	if (!col_blob(&row[C_SHA1], sizeof a->replay.sha1, sizeof a->replay.sha1, &p, &n))
		return DG_ERR_FORMAT;
	memcpy(a->replay.sha1, p, n);
	*field = "replay_sha256";
	if (!col_blob(&row[C_SHA256], sizeof a->replay.sha256, sizeof a->replay.sha256, &p, &n))
		return DG_ERR_FORMAT;
	memcpy(a->replay.sha256, p, n);
	*field = "replay_used";
	if (!col_int(&row[C_USED], 0, (1 << DG_LOG_MAX_PCR) - 1, &v))
		return DG_ERR_FORMAT;
	a->replay.used = (uint32_t)v;
	*field = "replay_entries";
	if (!col_int(&row[C_ENTRIES], 0, INT64_MAX, &v))
		return DG_ERR_FORMAT;
	a->replay.entries = (uint64_t)v;
	*field = "replay";
	if (!replay_consistent(&a->replay, a->pcr)) {
		dg_store_set_err(why, why_cap,
		                 ": PCR values or entries that no accepted log for PCR %u gives", a->pcr);
		return DG_ERR_FORMAT;
	}

	*field = "have_clock";
	if (!col_int(&row[C_HAVE_CLOCK], 0, 1, &v))
		return DG_ERR_FORMAT;
	a->have_clock = v == 1;
	*field = "clock";
	if (row[C_CLOCK].type != DG_STORE_INT)
		return DG_ERR_FORMAT;
	a->clock.clock = bits_u64(row[C_CLOCK].i);
	*field = "reset_count";
	if (!col_int(&row[C_RESET], 0, UINT32_MAX, &v))
		return DG_ERR_FORMAT;
	a->clock.reset_count = (uint32_t)v;
	*field = "restart_count";
	if (!col_int(&row[C_RESTART], 0, UINT32_MAX, &v))
		return DG_ERR_FORMAT;
	a->clock.restart_count = (uint32_t)v;
	*field = "safe";
	if (!col_int(&row[C_SAFE], 0, 1, &v))
		return DG_ERR_FORMAT;
	a->clock.safe = (uint8_t)v;
	*field = "clock";
	if (!a->have_clock && (a->clock.clock != 0 || a->clock.reset_count != 0 ||
	                       a->clock.restart_count != 0 || a->clock.safe != 0)) {
		dg_store_set_err(why, why_cap, ": values without have_clock");
		return DG_ERR_FORMAT;
	}

	*field = "containers";
	if (!col_blob(&row[C_CONTAINERS], 1, DG_CONTAINERS_MAX_ENCODED, &p, &n))
		return DG_ERR_FORMAT;
	if ((rv = dg_containers_decode(p, n, &containers)) != DG_OK) {
		dg_store_set_err(why, why_cap, ": %s", dg_strerror(rv));
		return rv == DG_ERR_NOMEM ? rv : DG_ERR_FORMAT;
	}
	dg_containers_free(a->containers);
	a->containers = containers;
	*field = NULL;
	return DG_OK;
}

int
dg_store_row_agent(const struct dg_store_val *row, struct dg_agent_rec *a, char *err,
                   size_t err_cap)
{
	const char *field = NULL;
	char why[128] = "";
	int rv = fill_agent(row, a, &field, why, sizeof why);
	if (rv != DG_OK) {
		dg_store_set_err(err, err_cap, "state database: agent '%s': %s%s", a->id,
		                 field ? field : "row", why[0] ? why : ": bad type, length or range");
		return rv;
	}
	a->activated = true; /* only activated agents are stored */
	return DG_OK;
}

/*
 * Append the reason in v[0] (seq), v[1] (code) and v[2] (detail) to a's
 * drift. Rows come sorted by seq: each must be the next slot, within the
 * bound.
 */
int
dg_store_row_reason(const struct dg_store_val *v, struct dg_agent_rec *a, char *err,
                    size_t err_cap)
{
	const uint8_t *code, *detail;
	size_t code_len, detail_len;
	int64_t seq;

	if (!col_int(&v[0], 0, DG_VERDICT_MAX_REASONS - 1, &seq) || (size_t)seq != a->n_drift) {
		dg_store_set_err(err, err_cap, "state database: drift of agent '%s': reason %zu "
		                 "missing or out of sequence", a->id, a->n_drift);
		return DG_ERR_FORMAT;
	}
	if (!col_text(&v[1], 1, DG_REASON_CODE_MAX - 1, &code, &code_len) ||
	    !printable(code, code_len, 0x21) ||
	    !col_text(&v[2], 0, DG_REASON_DETAIL_MAX - 1, &detail, &detail_len) ||
	    !printable(detail, detail_len, 0x20)) {
		dg_store_set_err(err, err_cap, "state database: drift of agent '%s': reason %zu is "
		                 "not a code and a printable detail", a->id, a->n_drift);
		return DG_ERR_FORMAT;
	}
	struct dg_reason *d = &a->drift[a->n_drift++];
	memcpy(d->code, code, code_len);
	d->code[code_len] = '\0';
	memcpy(d->detail, detail, detail_len);
	d->detail[detail_len] = '\0';
	return DG_OK;
}

/* Forget the previous row's agent, keeping the allocation. */
void
dg_store_rec_reset(struct dg_agent_rec *a)
{
	EVP_PKEY_free(a->ak);
	dg_containers_free(a->containers);
	memset(a, 0, sizeof *a);
}

/* ---- load ---- */

/* Columns first..first + n - 1 of the current SQLite row as values. */
static void
sqlite_row(sqlite3_stmt *st, int first, int n, struct dg_store_val *out)
{
	for (int i = 0; i < n; i++) {
		struct dg_store_val *v = &out[i];
		int col = first + i;
		memset(v, 0, sizeof *v);
		switch (sqlite3_column_type(st, col)) {
		case SQLITE_INTEGER:
			v->type = DG_STORE_INT;
			v->i = sqlite3_column_int64(st, col);
			break;
		case SQLITE_TEXT:
			v->type = DG_STORE_TEXT;
			v->p = sqlite3_column_text(st, col);
			v->n = (size_t)sqlite3_column_bytes(st, col);
			break;
		case SQLITE_BLOB:
			v->type = DG_STORE_BLOB;
			v->p = sqlite3_column_blob(st, col);
			v->n = (size_t)sqlite3_column_bytes(st, col);
			break;
		default: v->type = DG_STORE_NULL; /* REAL counts as wrong as NULL does */
		}
	}
}

static int
load_agents(struct dg_store *s, struct dg_registry *r, char *err, size_t err_cap)
{
	sqlite3_stmt *st = NULL;
	struct dg_store_val row[C_COUNT];
	size_t n_row = 0;
	int rc, rv;

	if ((rv = prepare(s, "SELECT " AGENT_COLUMNS " FROM agents ORDER BY id", false, &st, err,
	                  err_cap)) != DG_OK)
		goto out;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct dg_agent_rec *a;
		char name[DG_WIRE_MAX_AGENT_ID + 1];
		sqlite_row(st, 0, C_COUNT, row);
		if (!dg_store_row_id(&row[C_ID], ++n_row, name, err, err_cap)) {
			rv = DG_ERR_FORMAT;
			goto out;
		}
		if ((rv = dg_registry_add(r, name, &a)) != DG_OK) {
			dg_store_set_err(err, err_cap, "state database: agent '%s': %s", name,
			                 rv == DG_ERR_EXISTS ? "stored twice" : dg_strerror(rv));
			if (rv == DG_ERR_EXISTS)
				rv = DG_ERR_FORMAT;
			goto out;
		}
		if ((rv = dg_store_row_agent(row, a, err, err_cap)) != DG_OK)
			goto out;
	}
	if (rc != SQLITE_DONE) {
		dg_store_set_err(err, err_cap, "state database: reading agents: %s",
		                 sqlite3_errmsg(s->db));
		rv = map_sqlite(rc);
		goto out;
	}
	rv = DG_OK;
out:
	sqlite3_finalize(st);
	return rv;
}

static int
load_drift(struct dg_store *s, struct dg_registry *r, char *err, size_t err_cap)
{
	sqlite3_stmt *st = NULL;
	struct dg_store_val row[4];
	int rc, rv;

	if ((rv = prepare(s, "SELECT agent, seq, code, detail FROM drift ORDER BY agent, seq", false, &st,
	                  err, err_cap)) != DG_OK)
		goto out;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		char name[DG_WIRE_MAX_AGENT_ID + 1];
		struct dg_agent_rec *a;
		rv = DG_ERR_FORMAT;
		sqlite_row(st, 0, 4, row);
		if (!dg_store_row_id(&row[0], 0, name, NULL, 0)) {
			dg_store_set_err(err, err_cap, "state database: a drift row names no valid agent id");
			goto out;
		}
		if ((a = dg_registry_find(r, name)) == NULL) {
			dg_store_set_err(err, err_cap,
			                 "state database: drift of agent '%s', which is not stored", name);
			goto out;
		}
		if ((rv = dg_store_row_reason(&row[1], a, err, err_cap)) != DG_OK)
			goto out;
	}
	if (rc != SQLITE_DONE) {
		dg_store_set_err(err, err_cap, "state database: reading drift: %s",
		                 sqlite3_errmsg(s->db));
		rv = map_sqlite(rc);
		goto out;
	}
	rv = DG_OK;
out:
	sqlite3_finalize(st);
	return rv;
}

int
dg_store_load(struct dg_store *s, struct dg_registry *r, char *err, size_t err_cap)
{
	int rv;
	if (s->pg != NULL)
		return dg_store_pg_load(s->pg, r, err, err_cap);
	rv = load_agents(s, r, err, err_cap);
	if (rv == DG_OK)
		rv = load_drift(s, r, err, err_cap);
	return rv;
}

/* ---- list ---- */

int
dg_store_list(struct dg_store *s, dg_store_list_fn fn, void *arg, char *err, size_t err_cap)
{
	sqlite3_stmt *agents = NULL, *drift = NULL;
	struct dg_agent_rec *a;
	struct dg_store_val row[C_COUNT];
	bool in_read = false;
	size_t n_row = 0;
	int rc, rv;

	if (s->pg != NULL)
		return dg_store_pg_list(s->pg, fn, arg, err, err_cap);
	if ((a = calloc(1, sizeof *a)) == NULL) /* ~20 KiB: not on the stack */
		return DG_ERR_NOMEM;
	/* One read transaction: every agent and its drift from one committed
	 * state, whatever a running verifier commits meanwhile. */
	if ((rv = exec_sql(s, "BEGIN", "begin", err, err_cap)) != DG_OK)
		goto out;
	in_read = true;
	if ((rv = prepare(s, "SELECT " AGENT_COLUMNS " FROM agents ORDER BY id", false, &agents,
	                  err, err_cap)) != DG_OK ||
	    (rv = prepare(s, "SELECT seq, code, detail FROM drift WHERE agent = ?1 ORDER BY seq",
	                  false, &drift, err, err_cap)) != DG_OK)
		goto out;
	while ((rc = sqlite3_step(agents)) == SQLITE_ROW) {
		dg_store_rec_reset(a);
		if (++n_row > DG_REGISTRY_MAX_AGENTS) {
			dg_store_set_err(err, err_cap, "state database: more than %d agents",
			                 DG_REGISTRY_MAX_AGENTS);
			rv = DG_ERR_TOOBIG;
			goto out;
		}
		sqlite_row(agents, 0, C_COUNT, row);
		if (!dg_store_row_id(&row[C_ID], n_row, a->id, err, err_cap)) {
			rv = DG_ERR_FORMAT;
			goto out;
		}
		if ((rv = dg_store_row_agent(row, a, err, err_cap)) != DG_OK)
			goto out;
		if (sqlite3_bind_text(drift, 1, a->id, -1, SQLITE_STATIC) != SQLITE_OK) {
			rv = DG_ERR_IO;
			goto out;
		}
		while ((rc = sqlite3_step(drift)) == SQLITE_ROW) {
			sqlite_row(drift, 0, 3, row);
			if ((rv = dg_store_row_reason(row, a, err, err_cap)) != DG_OK)
				goto out;
		}
		sqlite3_reset(drift);
		if (rc != SQLITE_DONE) {
			dg_store_set_err(err, err_cap, "state database: reading drift: %s",
			                 sqlite3_errmsg(s->db));
			rv = map_sqlite(rc);
			goto out;
		}
		if ((rv = fn(a, arg)) != DG_OK)
			goto out;
	}
	if (rc != SQLITE_DONE) {
		dg_store_set_err(err, err_cap, "state database: reading agents: %s",
		                 sqlite3_errmsg(s->db));
		rv = map_sqlite(rc);
		goto out;
	}
	rv = DG_OK;
out:
	sqlite3_finalize(agents);
	sqlite3_finalize(drift);
	if (in_read)
		(void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL); /* nothing to keep */
	dg_store_rec_reset(a);
	free(a);
	return rv;
}

/* ---- shared stores (PostgreSQL only) ---- */

bool
dg_store_shared(const struct dg_store *s)
{
	return s->pg != NULL;
}

int
dg_store_round_begin(struct dg_store *s, const char *id)
{
	return s->pg != NULL ? dg_store_pg_round_begin(s->pg, id) : DG_ERR_UNSUPPORTED;
}

int
dg_store_round_end(struct dg_store *s, bool commit)
{
	return s->pg != NULL ? dg_store_pg_round_end(s->pg, commit) : DG_ERR_UNSUPPORTED;
}

int
dg_store_fetch(struct dg_store *s, const char *id, struct dg_agent_rec *a, char *err,
               size_t err_cap)
{
	return s->pg != NULL ? dg_store_pg_fetch(s->pg, id, a, err, err_cap) : DG_ERR_UNSUPPORTED;
}

int
dg_store_nonce_put(struct dg_store *s, const char *id, const uint8_t *nonce, size_t len,
                   unsigned ttl_ms)
{
	return s->pg != NULL ? dg_store_pg_nonce_put(s->pg, id, nonce, len, ttl_ms)
	                     : DG_ERR_UNSUPPORTED;
}

int
dg_store_nonce_take(struct dg_store *s, const char *id, const uint8_t *nonce, size_t len)
{
	return s->pg != NULL ? dg_store_pg_nonce_take(s->pg, id, nonce, len) : DG_ERR_UNSUPPORTED;
}
