/*
 * The verifier's durable state: a record with every field set survives close
 * and reopen exactly; rows corrupted behind the store's back (with SQLite's C
 * API, as an operator or an attacker with the file could) are refused at load
 * with an error naming the field; another schema version, a foreign database,
 * a second process and unsafe permissions are refused at open; a save that
 * fails leaves the stored state as it was; a reader lists the agents while
 * the verifier has the file open and saves, and the status command prints
 * them. With DG_TEST_PG_URI (tests/e2e/pg_failover.sh starts a server), the
 * "pg" case runs the same round trip and row checks on PostgreSQL, and shows
 * nonces single-use across two verifiers' connections and an agent's round
 * lock keeping a second verifier out. Keys are the tpm2-tools-made
 * public areas of the fuzz corpus; their TPM names are computed here with
 * OpenSSL's SHA-256, not by driftgate.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "driftgate/container.h"
#include "driftgate/err.h"
#include "driftgate/tpmkey.h"
#include "driftgate/workload.h"
#include "registry.h"
#include "status.h"
#include "store.h"
#include "store_impl.h"
#include "testutil.h"

static char *work;

struct key {
	uint8_t pub[DG_TPMKEY_MAX_PUBLIC];
	size_t len;
};

static void
setup(void)
{
	work = tu_tmpdir();
	ck_assert_ptr_nonnull(work);
}

static void
teardown(void)
{
	tu_sh("rm -rf '%s'", work);
	free(work);
}

static void
load_key(const char *file, struct key *k)
{
	char path[4200];
	const char *root = getenv("DG_SOURCE_ROOT");
	snprintf(path, sizeof path, "%s/tests/fuzz/corpus/tpmkey/%s", root ? root : ".", file);
	uint8_t *data = tu_read_file(path, &k->len);
	ck_assert_msg(data != NULL, "cannot read %s", path);
	ck_assert_uint_le(k->len, sizeof k->pub);
	memcpy(k->pub, data, k->len);
	free(data);
}

/* TPM name of a TPM2B_PUBLIC with nameAlg SHA-256: 0x000b || SHA-256(TPMT_PUBLIC). */
static size_t
name_of(const struct key *k, uint8_t name[DG_TPMKEY_MAX_NAME])
{
	ck_assert_uint_eq(k->pub[4], 0x00);
	ck_assert_uint_eq(k->pub[5], 0x0b);
	name[0] = 0x00;
	name[1] = 0x0b;
	SHA256(k->pub + 2, k->len - 2, name + 2);
	return 34;
}

static void
path_in_work(const char *name, char *path, size_t cap)
{
	snprintf(path, cap, "%s/%s", work, name);
}

/* A container state of one container with a rootfs, as the encoder's format says. */
static uint8_t *
containers_doc(size_t *len)
{
	static const char json[] =
		"{\"annotations\": {\"io.driftgate.workload\": \"web\", "
		"\"io.driftgate.container\": \"app\"}, "
		"\"process\": {\"args\": [\"/bin/app\"], \"cwd\": \"/\"}, \"root\": {\"path\": \"rootfs\"}}";
	struct dg_container *c = NULL;
	char err[256], *record = NULL, head[256];
	size_t record_len = 0;
	ck_assert_int_eq(dg_container_from_oci_json(json, strlen(json), &c, err, sizeof err), DG_OK);
	ck_assert_int_eq(dg_container_encode(c, &record, &record_len), DG_OK);
	dg_container_free(c);
	int n = snprintf(head, sizeof head,
	                 "driftgate-containers 1 1\ncontainer ctr-1 %064d %zu\n", 7, record_len);
	uint8_t *doc = malloc((size_t)n + record_len + 1);
	ck_assert_ptr_nonnull(doc);
	memcpy(doc, head, (size_t)n);
	memcpy(doc + n, record, record_len);
	doc[(size_t)n + record_len] = '\n';
	*len = (size_t)n + record_len + 1;
	free(record);
	return doc;
}

/* Agent "node-a": every field set, the values chosen to catch truncation
 * (a clock past INT64_MAX, a restart count of UINT32_MAX, 32 drift reasons,
 * a detail of maximum length). */
static void
fill_full(struct dg_agent_rec *a, unsigned variant)
{
	struct key ek, ak;
	size_t doc_len;
	load_key("ek_rsa.pub", &ek);
	load_key("ak_rsa.pub", &ak);
	memcpy(a->ek_pub, ek.pub, ek.len);
	a->ek_pub_len = ek.len;
	memcpy(a->ak_pub, ak.pub, ak.len);
	a->ak_pub_len = ak.len;
	a->ak_name_len = name_of(&ak, a->ak_name);
	a->pcr = 13;
	a->activated = true;
	for (int i = 0; i < DG_SHA1_LEN; i++)
		a->replay.sha1[13][i] = (uint8_t)(i + variant);
	for (int i = 0; i < DG_SHA256_LEN; i++)
		a->replay.sha256[13][i] = (uint8_t)(0x80 + i + variant);
	a->replay.used = 1u << 13;
	a->replay.entries = 12345678901ull + variant;
	a->have_clock = true;
	a->clock.clock = 0xfedcba9876543210ull + variant;
	a->clock.reset_count = 7 + variant;
	a->clock.restart_count = UINT32_MAX;
	a->clock.safe = 1;
	uint8_t *doc = containers_doc(&doc_len);
	dg_containers_free(a->containers);
	ck_assert_int_eq(dg_containers_decode(doc, doc_len, &a->containers), DG_OK);
	free(doc);
	a->n_drift = DG_VERDICT_MAX_REASONS;
	for (size_t i = 0; i < a->n_drift; i++)
		dg_reason_set(&a->drift[i], i % 2 ? "exec-unknown" : "spec-changed",
		              "variant %u reason %zu: /bin/x (sha256:%064zu)", variant, i, i);
	memset(a->drift[5].detail, 'd', DG_REASON_DETAIL_MAX - 1);
	a->drift[5].detail[DG_REASON_DETAIL_MAX - 1] = '\0';
}

/* Agent "node-b": an ECC AK, never attested (no clock, no entries, nothing else). */
static void
fill_fresh(struct dg_agent_rec *a)
{
	struct key ek, ak;
	load_key("ek_ecc.pub", &ek);
	load_key("ak_ecc.pub", &ak);
	memcpy(a->ek_pub, ek.pub, ek.len);
	a->ek_pub_len = ek.len;
	memcpy(a->ak_pub, ak.pub, ak.len);
	a->ak_pub_len = ak.len;
	a->ak_name_len = name_of(&ak, a->ak_name);
	a->pcr = 8;
	a->activated = true;
}

static void
expect_same(const struct dg_agent_rec *want, const struct dg_agent_rec *got)
{
	uint8_t *w = NULL, *g = NULL;
	size_t w_len = 0, g_len = 0;
	ck_assert_str_eq(got->id, want->id);
	ck_assert(got->activated);
	ck_assert(!got->nonce_live && !got->challenge_live);
	ck_assert_uint_eq(got->ek_pub_len, want->ek_pub_len);
	ck_assert_int_eq(memcmp(got->ek_pub, want->ek_pub, want->ek_pub_len), 0);
	ck_assert_uint_eq(got->ak_pub_len, want->ak_pub_len);
	ck_assert_int_eq(memcmp(got->ak_pub, want->ak_pub, want->ak_pub_len), 0);
	ck_assert_uint_eq(got->ak_name_len, want->ak_name_len);
	ck_assert_int_eq(memcmp(got->ak_name, want->ak_name, want->ak_name_len), 0);
	ck_assert_uint_eq(got->pcr, want->pcr);
	ck_assert_int_eq(memcmp(got->replay.sha1, want->replay.sha1, sizeof want->replay.sha1), 0);
	ck_assert_int_eq(memcmp(got->replay.sha256, want->replay.sha256,
	                        sizeof want->replay.sha256), 0);
	ck_assert_uint_eq(got->replay.used, want->replay.used);
	ck_assert_uint_eq(got->replay.entries, want->replay.entries);
	ck_assert_int_eq(got->have_clock, want->have_clock);
	ck_assert_uint_eq(got->clock.clock, want->clock.clock);
	ck_assert_uint_eq(got->clock.reset_count, want->clock.reset_count);
	ck_assert_uint_eq(got->clock.restart_count, want->clock.restart_count);
	ck_assert_uint_eq(got->clock.safe, want->clock.safe);
	ck_assert_uint_eq(got->n_drift, want->n_drift);
	for (size_t i = 0; i < want->n_drift; i++) {
		ck_assert_str_eq(got->drift[i].code, want->drift[i].code);
		ck_assert_str_eq(got->drift[i].detail, want->drift[i].detail);
	}
	ck_assert_int_eq(dg_containers_encode(want->containers, &w, &w_len), DG_OK);
	ck_assert_int_eq(dg_containers_encode(got->containers, &g, &g_len), DG_OK);
	ck_assert_uint_eq(g_len, w_len);
	ck_assert_int_eq(memcmp(g, w, w_len), 0);
	free(w);
	free(g);
	/* The AK key was rebuilt from the stored public area. */
	EVP_PKEY *ak = NULL;
	ck_assert_int_eq(dg_tpmkey_import(want->ak_pub, want->ak_pub_len, DG_TPMKEY_AK, &ak, NULL,
	                                  NULL), DG_OK);
	ck_assert_ptr_nonnull(got->ak);
	ck_assert_int_eq(EVP_PKEY_eq(got->ak, ak), 1);
	EVP_PKEY_free(ak);
}

static int
open_and_load(const char *path, struct dg_registry **r, char *err, size_t err_cap)
{
	struct dg_store *s = NULL;
	err[0] = '\0';
	ck_assert_int_eq(dg_registry_new(r), DG_OK);
	int rv = dg_store_open(path, &s, err, err_cap);
	if (rv == DG_OK)
		rv = dg_store_load(s, *r, err, err_cap);
	dg_store_close(s);
	return rv;
}

/* A state file with node-a (full) and node-b (fresh). */
static void
make_state(const char *path, struct dg_registry *r)
{
	struct dg_store *s = NULL;
	struct dg_agent_rec *a, *b;
	char err[512] = "";
	ck_assert_msg(dg_store_open(path, &s, err, sizeof err) == DG_OK, "open: %s", err);
	ck_assert_int_eq(dg_registry_add(r, "node-a", &a), DG_OK);
	ck_assert_int_eq(dg_registry_add(r, "node-b", &b), DG_OK);
	/* Saved twice: the second save replaces the first, drift rows included. */
	fill_full(a, 0);
	ck_assert_int_eq(dg_store_save(s, a), DG_OK);
	fill_full(a, 1);
	ck_assert_int_eq(dg_store_save(s, a), DG_OK);
	fill_fresh(b);
	b->n_drift = 2;
	dg_reason_set(&b->drift[0], "unknown-file", "one");
	dg_reason_set(&b->drift[1], "unknown-file", "two");
	ck_assert_int_eq(dg_store_save(s, b), DG_OK);
	b->n_drift = 0; /* as after a reboot */
	ck_assert_int_eq(dg_store_save(s, b), DG_OK);
	dg_store_close(s);
}

START_TEST(test_round_trip)
{
	struct dg_registry *want, *got = NULL;
	char err[512];
	struct stat st;
	char path[4200];

	path_in_work("state.db", path, sizeof path);

	ck_assert_int_eq(dg_registry_new(&want), DG_OK);
	make_state(path, want);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	ck_assert_msg(open_and_load(path, &got, err, sizeof err) == DG_OK, "load: %s", err);
	ck_assert_uint_eq(dg_registry_count(got), 2);
	expect_same(dg_registry_find(want, "node-a"), dg_registry_find(got, "node-a"));
	expect_same(dg_registry_find(want, "node-b"), dg_registry_find(got, "node-b"));
	dg_registry_free(got);
	dg_registry_free(want);

	/* What another reader of the file sees: WAL mode, schema version 1. */
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
	ck_assert_str_eq((const char *)sqlite3_column_text(q, 0), "wal");
	sqlite3_finalize(q);
	ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT version FROM schema_version", -1, &q, NULL),
	                 SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
	ck_assert_int_eq(sqlite3_column_int(q, 0), 1);
	sqlite3_finalize(q);
	sqlite3_close(db);

	/* An empty store loads nothing; :memory: works for tests without a file. */
	ck_assert_int_eq(open_and_load(DG_STORE_MEMORY, &got, err, sizeof err), DG_OK);
	ck_assert_uint_eq(dg_registry_count(got), 0);
	dg_registry_free(got);
}
END_TEST

/* Change the file with SQLite directly (no foreign keys, as the CLI). */
static void
tamper(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	char *msg = NULL;
	ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
	ck_assert_msg(rc == SQLITE_OK, "%s: %s", sql, msg ? msg : "?");
	ck_assert_int_eq(sqlite3_changes(db) > 0 || strncmp(sql, "CREATE", 6) == 0, 1);
	sqlite3_close(db);
}

START_TEST(test_corrupt_rows)
{
	static const struct {
		const char *sql, *message;
		int rv;
	} cases[] = {
		{"UPDATE agents SET replay_sha256 = zeroblob(767) WHERE id = 'node-a'",
		 "agent 'node-a': replay_sha256", DG_ERR_FORMAT},
		{"UPDATE agents SET replay_sha1 = zeroblob(481) WHERE id = 'node-a'",
		 "agent 'node-a': replay_sha1", DG_ERR_FORMAT},
		{"UPDATE agents SET replay_sha256 = randomblob(768) WHERE id = 'node-a'",
		 "agent 'node-a': replay: PCR values", DG_ERR_FORMAT},
		{"UPDATE agents SET replay_used = 4096 WHERE id = 'node-a'",
		 "agent 'node-a': replay:", DG_ERR_FORMAT},
		{"UPDATE agents SET replay_entries = 0 WHERE id = 'node-a'",
		 "agent 'node-a': replay:", DG_ERR_FORMAT},
		{"UPDATE agents SET replay_entries = -1 WHERE id = 'node-a'",
		 "agent 'node-a': replay_entries", DG_ERR_FORMAT},
		{"UPDATE agents SET ak_pub = substr(ak_pub, 1, 100) WHERE id = 'node-a'",
		 "agent 'node-a': ak_pub: not an AK", DG_ERR_FORMAT},
		{"UPDATE agents SET ak_pub = (SELECT ak_pub FROM agents WHERE id = 'node-b') "
		 "WHERE id = 'node-a'", "agent 'node-a': ak_name: not the name", DG_ERR_FORMAT},
		{"UPDATE agents SET ek_pub = ak_pub WHERE id = 'node-b'",
		 "agent 'node-b': ek_pub: not an EK", DG_ERR_FORMAT},
		{"UPDATE agents SET ek_pub = zeroblob(1025) WHERE id = 'node-b'",
		 "agent 'node-b': ek_pub", DG_ERR_FORMAT},
		{"UPDATE agents SET pcr = 16 WHERE id = 'node-b'", "agent 'node-b': pcr",
		 DG_ERR_FORMAT},
		{"UPDATE agents SET have_clock = 2 WHERE id = 'node-a'",
		 "agent 'node-a': have_clock", DG_ERR_FORMAT},
		{"UPDATE agents SET clock = 5 WHERE id = 'node-b'",
		 "agent 'node-b': clock: values without have_clock", DG_ERR_FORMAT},
		{"UPDATE agents SET reset_count = 4294967296 WHERE id = 'node-a'",
		 "agent 'node-a': reset_count", DG_ERR_FORMAT},
		{"UPDATE agents SET containers = CAST('garbage' AS BLOB) WHERE id = 'node-a'",
		 "agent 'node-a': containers", DG_ERR_FORMAT},
		{"UPDATE agents SET containers = substr(containers, 1, length(containers) - 1) "
		 "WHERE id = 'node-a'", "agent 'node-a': containers", DG_ERR_FORMAT},
		{"UPDATE agents SET id = 'node a' WHERE id = 'node-b'",
		 "agent row 1: id is not an agent id", DG_ERR_FORMAT},
		{"UPDATE drift SET seq = 40 WHERE agent = 'node-a' AND seq = 31",
		 "drift of agent 'node-a': reason 31 missing or out of sequence", DG_ERR_FORMAT},
		{"DELETE FROM drift WHERE agent = 'node-a' AND seq = 3",
		 "drift of agent 'node-a': reason 3 missing", DG_ERR_FORMAT},
		{"UPDATE drift SET detail = 'a' || char(10) || 'b' WHERE agent = 'node-a' AND seq = 2",
		 "drift of agent 'node-a': reason 2 is not a code", DG_ERR_FORMAT},
		{"UPDATE drift SET code = '' WHERE agent = 'node-a' AND seq = 0",
		 "drift of agent 'node-a': reason 0 is not a code", DG_ERR_FORMAT},
		{"INSERT INTO drift VALUES ('ghost', 0, 'unknown-file', 'x')",
		 "drift of agent 'ghost', which is not stored", DG_ERR_FORMAT},
		{"UPDATE schema_version SET version = 2",
		 "schema version 2, this verifier reads version 1", DG_ERR_UNSUPPORTED},
		{"DELETE FROM schema_version", "not a driftgate verifier state database",
		 DG_ERR_FORMAT},
	};
	struct dg_registry *r = NULL;
	char err[512], good_copy[4200], bad_path[4200], other_path[4200];

	path_in_work("good.db", good_copy, sizeof good_copy);
	path_in_work("bad.db", bad_path, sizeof bad_path);
	path_in_work("other.db", other_path, sizeof other_path);
	ck_assert_int_eq(dg_registry_new(&r), DG_OK);
	make_state(good_copy, r);
	dg_registry_free(r);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		ck_assert_int_eq(tu_sh("cp '%s' '%s' && chmod 600 '%s'", good_copy, bad_path,
		                       bad_path), 0);
		tamper(bad_path, cases[i].sql);
		int rv = open_and_load(bad_path, &r, err, sizeof err);
		dg_registry_free(r);
		ck_assert_msg(rv == cases[i].rv, "%s: got %s (%s)", cases[i].sql, dg_strerror(rv),
		              err);
		ck_assert_msg(strstr(err, cases[i].message) != NULL, "%s: message '%s', want '%s'",
		              cases[i].sql, err, cases[i].message);
	}
	/* The untouched file still loads: the refusals above are the tampering's. */
	ck_assert_msg(open_and_load(good_copy, &r, err, sizeof err) == DG_OK, "%s", err);
	dg_registry_free(r);

	/* A database of something else, and a file that is no database at all. */
	ck_assert_int_eq(tu_sh("touch '%s' && chmod 600 '%s'", other_path, other_path), 0);
	tamper(other_path, "CREATE TABLE things (x INTEGER)");
	ck_assert_int_eq(open_and_load(other_path, &r, err, sizeof err), DG_ERR_FORMAT);
	ck_assert_ptr_nonnull(strstr(err, "not a driftgate verifier state database"));
	dg_registry_free(r);
	ck_assert_int_eq(tu_sh("head -c 8192 /dev/urandom > '%s'", other_path), 0);
	ck_assert_int_ne(open_and_load(other_path, &r, err, sizeof err), DG_OK);
	dg_registry_free(r);
}
END_TEST

START_TEST(test_exclusive_and_permissions)
{
	struct dg_store *s = NULL, *t = NULL;
	char err[512] = "", path[4200];
	path_in_work("state.db", path, sizeof path);

	ck_assert_int_eq(dg_store_open(path, &s, err, sizeof err), DG_OK);
	/* A second verifier on the same file is refused while the first runs. */
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char e[512] = "";
		int rv = dg_store_open(path, &t, e, sizeof e);
		_exit(rv == DG_ERR_STATE && strstr(e, "in use by another process") != NULL ? 0 : 1);
	}
	int status = 0;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	              "a second process opened a state file in use");
	dg_store_close(s);
	/* ...and accepted once it has closed it. */
	ck_assert_int_eq(dg_store_open(path, &t, err, sizeof err), DG_OK);
	dg_store_close(t);

	ck_assert_int_eq(chmod(path, 0620), 0);
	ck_assert_int_eq(dg_store_open(path, &t, err, sizeof err), DG_ERR_PERM);
	ck_assert_ptr_nonnull(strstr(err, "writable by no one else"));
	ck_assert_int_eq(chmod(path, 0640), 0);
	ck_assert_int_eq(dg_store_open(path, &t, err, sizeof err), DG_OK);
	dg_store_close(t);
	snprintf(path, sizeof path, "%s/no-such-dir/state.db", work);
	ck_assert_int_ne(dg_store_open(path, &t, err, sizeof err), DG_OK);
}
END_TEST

static double
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* A save that cannot be written (the file may not grow) changes nothing. */
START_TEST(test_failed_save_changes_nothing)
{
	struct dg_registry *r, *got = NULL;
	struct dg_store *s = NULL;
	struct dg_agent_rec *a;
	struct rlimit lim, old;
	char err[512] = "", path[4200], wal[4300];
	struct stat st;

	path_in_work("state.db", path, sizeof path);
	snprintf(wal, sizeof wal, "%s-wal", path);
	ck_assert_int_eq(dg_registry_new(&r), DG_OK);
	ck_assert_int_eq(dg_store_open(path, &s, err, sizeof err), DG_OK);
	ck_assert_int_eq(dg_registry_add(r, "node-a", &a), DG_OK);
	fill_full(a, 0);
	ck_assert_int_eq(dg_store_save(s, a), DG_OK);
	/* Check forks each test: the limit dies with this process. */
	ck_assert_int_eq(stat(wal, &st), 0);
	signal(SIGXFSZ, SIG_IGN);
	ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = (rlim_t)st.st_size;
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
	fill_full(a, 9);
	ck_assert_int_ne(dg_store_save(s, a), DG_OK);
	ck_assert_int_ne(dg_store_save(s, a), DG_OK); /* and again: no transaction left open */
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
	dg_store_close(s);
	ck_assert_msg(open_and_load(path, &got, err, sizeof err) == DG_OK, "%s", err);
	fill_full(a, 0);
	expect_same(a, dg_registry_find(got, "node-a"));
	dg_registry_free(got);
	dg_registry_free(r);
}
END_TEST

/* What a listing saw, and a save made from inside it. */
struct seen {
	char ids[4][DG_WIRE_MAX_AGENT_ID + 1];
	enum dg_registry_state states[4];
	size_t n_drift[4], n;
	struct dg_store *writer;   /* saves node-b from inside the listing, if set */
	struct dg_agent_rec *b;
};

static int
collect(const struct dg_agent_rec *a, void *arg)
{
	struct seen *s = arg;
	ck_assert_uint_lt(s->n, 4);
	ck_assert(a->activated);
	snprintf(s->ids[s->n], sizeof s->ids[s->n], "%s", a->id);
	s->states[s->n] = dg_registry_state(a);
	s->n_drift[s->n++] = a->n_drift;
	if (s->writer != NULL) /* the verifier goes on committing meanwhile */
		ck_assert_int_eq(dg_store_save(s->writer, s->b), DG_OK);
	return DG_OK;
}

static int
stop_listing(const struct dg_agent_rec *a, void *arg)
{
	(void)a;
	(void)arg;
	return DG_ERR_DENIED;
}

/*
 * A reader lists the agents while the verifier holds the file open and
 * saves: every row checked as at load, in id order, from one committed
 * state; the save made during the listing is not seen by it, and it does
 * not wait for the listing.
 */
START_TEST(test_list_while_running)
{
	struct dg_registry *want, *r;
	struct dg_store *verifier = NULL, *reader = NULL;
	struct dg_agent_rec *b;
	struct seen seen;
	char err[512] = "", path[4200], missing[4300];
	struct stat st;

	path_in_work("state.db", path, sizeof path);
	ck_assert_int_eq(dg_registry_new(&want), DG_OK);
	make_state(path, want); /* node-a failed (32 reasons), node-b enrolled */
	ck_assert_msg(dg_store_open(path, &verifier, err, sizeof err) == DG_OK, "%s", err);
	ck_assert_msg(dg_store_open_readonly(path, &reader, err, sizeof err) == DG_OK, "%s", err);

	ck_assert_int_eq(dg_registry_new(&r), DG_OK);
	ck_assert_int_eq(dg_registry_add(r, "node-b", &b), DG_OK);
	fill_fresh(b);
	b->have_clock = true; /* its first proven round, no drift: pass */
	b->replay.used = 1u << 8;
	b->replay.entries = 3;
	b->replay.sha256[8][0] = 1;
	memset(&seen, 0, sizeof seen);
	seen.writer = verifier;
	seen.b = b;
	ck_assert_msg(dg_store_list(reader, collect, &seen, err, sizeof err) == DG_OK, "%s", err);
	ck_assert_uint_eq(seen.n, 2);
	ck_assert_str_eq(seen.ids[0], "node-a");
	ck_assert_int_eq(seen.states[0], DG_REGISTRY_FAIL);
	ck_assert_uint_eq(seen.n_drift[0], DG_VERDICT_MAX_REASONS);
	ck_assert_str_eq(seen.ids[1], "node-b");
	ck_assert_int_eq(seen.states[1], DG_REGISTRY_ENROLLED); /* not the save made meanwhile */
	/* The next listing sees it. */
	memset(&seen, 0, sizeof seen);
	ck_assert_int_eq(dg_store_list(reader, collect, &seen, err, sizeof err), DG_OK);
	ck_assert_int_eq(seen.states[1], DG_REGISTRY_PASS);
	ck_assert_int_eq(dg_store_list(reader, stop_listing, NULL, err, sizeof err), DG_ERR_DENIED);
	dg_store_close(reader);
	dg_store_close(verifier);
	dg_registry_free(r);
	dg_registry_free(want);

	/* A bad row is refused as the load refuses it, naming the agent and field. */
	tamper(path, "UPDATE agents SET pcr = 99 WHERE id = 'node-b'");
	ck_assert_int_eq(dg_store_open_readonly(path, &reader, err, sizeof err), DG_OK);
	memset(&seen, 0, sizeof seen);
	ck_assert_int_eq(dg_store_list(reader, collect, &seen, err, sizeof err), DG_ERR_FORMAT);
	ck_assert_ptr_nonnull(strstr(err, "agent 'node-b': pcr"));
	dg_store_close(reader);

	/* Read-only creates nothing, and a file that is no state is refused. */
	snprintf(missing, sizeof missing, "%s/missing.db", work);
	ck_assert_int_ne(dg_store_open_readonly(missing, &reader, err, sizeof err), DG_OK);
	ck_assert_int_ne(stat(missing, &st), 0);
	sqlite3 *db = NULL;
	ck_assert_int_eq(sqlite3_open(missing, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, "CREATE TABLE t (x)", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	ck_assert_int_eq(dg_store_open_readonly(missing, &reader, err, sizeof err), DG_ERR_FORMAT);
	ck_assert_ptr_nonnull(strstr(err, "not a driftgate verifier state database"));
}
END_TEST

/* The status command's output, both forms, exactly. */
START_TEST(test_status_output)
{
	struct dg_registry *r;
	struct dg_store *s = NULL;
	struct dg_agent_rec *a, *b, *c;
	char err[512] = "", path[4200], want[4096], *text = NULL;
	size_t len = 0;
	FILE *out;

	path_in_work("state.db", path, sizeof path);
	ck_assert_int_eq(dg_registry_new(&r), DG_OK);
	ck_assert_int_eq(dg_store_open(path, &s, err, sizeof err), DG_OK);
	ck_assert_int_eq(dg_registry_add(r, "web-1", &c), DG_OK);
	fill_full(c, 0);
	c->n_drift = 0;
	ck_assert_int_eq(dg_store_save(s, c), DG_OK);
	ck_assert_int_eq(dg_registry_add(r, "node-a", &a), DG_OK);
	fill_full(a, 0);
	a->n_drift = 2;
	ck_assert_int_eq(dg_store_save(s, a), DG_OK);
	ck_assert_int_eq(dg_registry_add(r, "node-b", &b), DG_OK);
	fill_fresh(b);
	ck_assert_int_eq(dg_store_save(s, b), DG_OK);

	/* Table: sorted by id, columns aligned, "-" before the first proven round. */
	ck_assert_ptr_nonnull(out = open_memstream(&text, &len));
	ck_assert_msg(dg_status_print(path, false, out, err, sizeof err) == DG_OK, "%s", err);
	fclose(out);
	snprintf(want, sizeof want,
	         "AGENT   STATE         ENTRIES  RESETCOUNT  CONTAINERS  REASONS\n"
	         "node-a  fail      12345678901           7           1  spec-changed: %s; "
	         "exec-unknown: %s\n"
	         "node-b  enrolled            0           -           0\n"
	         "web-1   pass      12345678901           7           1\n",
	         a->drift[0].detail, a->drift[1].detail);
	ck_assert_str_eq(text, want);
	free(text);

	/* JSON: one document, read back with json-c. */
	ck_assert_ptr_nonnull(out = open_memstream(&text, &len));
	ck_assert_int_eq(dg_status_print(path, true, out, err, sizeof err), DG_OK);
	fclose(out);
	json_object *doc = json_tokener_parse(text), *agents, *o, *v;
	ck_assert_ptr_nonnull(doc);
	ck_assert(json_object_object_get_ex(doc, "agents", &agents));
	ck_assert_uint_eq(json_object_array_length(agents), 3);
	o = json_object_array_get_idx(agents, 0);
	ck_assert(json_object_object_get_ex(o, "id", &v));
	ck_assert_str_eq(json_object_get_string(v), "node-a");
	ck_assert(json_object_object_get_ex(o, "state", &v));
	ck_assert_str_eq(json_object_get_string(v), "fail");
	ck_assert(json_object_object_get_ex(o, "entries", &v));
	ck_assert_uint_eq(json_object_get_uint64(v), 12345678901ull);
	ck_assert(json_object_object_get_ex(o, "reset_count", &v));
	ck_assert_int_eq(json_object_get_int64(v), 7);
	ck_assert(json_object_object_get_ex(o, "containers", &v));
	ck_assert_int_eq(json_object_get_int64(v), 1);
	ck_assert(json_object_object_get_ex(o, "reasons", &v));
	ck_assert_uint_eq(json_object_array_length(v), 2);
	v = json_object_array_get_idx(v, 1);
	ck_assert_str_eq(json_object_get_string(json_object_object_get(v, "code")), "exec-unknown");
	ck_assert_str_eq(json_object_get_string(json_object_object_get(v, "detail")),
	                 a->drift[1].detail);
	o = json_object_array_get_idx(agents, 1);
	ck_assert_str_eq(json_object_get_string(json_object_object_get(o, "state")), "enrolled");
	ck_assert(json_object_object_get_ex(o, "reset_count", &v));
	ck_assert_ptr_null(v); /* JSON null: no proven round yet */
	ck_assert_uint_eq(json_object_array_length(json_object_object_get(o, "reasons")), 0);
	o = json_object_array_get_idx(agents, 2);
	ck_assert_str_eq(json_object_get_string(json_object_object_get(o, "state")), "pass");
	json_object_put(doc);
	free(text);
	dg_store_close(s);
	dg_registry_free(r);

	/* Errors name the file. */
	snprintf(path, sizeof path, "%s/missing.db", work);
	err[0] = '\0';
	ck_assert_ptr_nonnull(out = open_memstream(&text, &len));
	ck_assert_int_ne(dg_status_print(path, false, out, err, sizeof err), DG_OK);
	fclose(out);
	ck_assert_ptr_nonnull(strstr(err, path));
	ck_assert_str_eq(text, "");
	free(text);
}
END_TEST

/* What one committed attestation costs in the store (printed, not asserted). */
START_TEST(test_save_cost)
{
	struct dg_registry *r;
	struct dg_store *s = NULL;
	struct dg_agent_rec *a;
	char err[512] = "", path[4200];
	const int n = 1000;

	path_in_work("state.db", path, sizeof path);
	ck_assert_int_eq(dg_registry_new(&r), DG_OK);
	ck_assert_int_eq(dg_store_open(path, &s, err, sizeof err), DG_OK);
	ck_assert_int_eq(dg_registry_add(r, "node-a", &a), DG_OK);
	fill_full(a, 0);
	a->n_drift = 0; /* a healthy agent: the common case */
	double t0 = now_ms();
	for (int i = 0; i < n; i++) {
		a->replay.entries++;
		a->clock.clock++;
		ck_assert_int_eq(dg_store_save(s, a), DG_OK);
	}
	double t1 = now_ms();
	a->n_drift = DG_VERDICT_MAX_REASONS;
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(dg_store_save(s, a), DG_OK);
	double t2 = now_ms();
	fprintf(stderr,
	        "store: %d saves (WAL, synchronous=FULL, fsync each) in %.0f ms: %.3f ms per "
	        "committed attestation; with 32 drift reasons %.3f ms\n",
	        n, t1 - t0, (t1 - t0) / n, (t2 - t1) / n);
	dg_store_close(s);
	dg_registry_free(r);
	ck_assert_msg(open_and_load(path, &r, err, sizeof err) == DG_OK, "%s", err);
	ck_assert_uint_eq(dg_registry_find(r, "node-a")->replay.entries, 12345678901ull + n);
	dg_registry_free(r);
}
END_TEST

/* ---- PostgreSQL (DG_TEST_PG_URI) ---- */

static void
pg_exec(const char *sql)
{
	PGconn *c = PQconnectdb(getenv("DG_TEST_PG_URI"));
	ck_assert_int_eq(PQstatus(c), CONNECTION_OK);
	PGresult *r = PQexec(c, sql);
	ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "%s: %s", sql,
	              PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(c);
}

static void
pg_setup(void)
{
	setup();
	pg_exec("SET client_min_messages = warning; "
	        "DROP TABLE IF EXISTS drift, agents, schema_version");
}

START_TEST(test_pg_round_trip)
{
	const char *uri = getenv("DG_TEST_PG_URI");
	struct dg_registry *want, *got = NULL;
	char err[512];

	ck_assert_int_eq(dg_registry_new(&want), DG_OK);
	make_state(uri, want);
	ck_assert_msg(open_and_load(uri, &got, err, sizeof err) == DG_OK, "load: %s", err);
	ck_assert_uint_eq(dg_registry_count(got), 2);
	expect_same(dg_registry_find(want, "node-a"), dg_registry_find(got, "node-a"));
	expect_same(dg_registry_find(want, "node-b"), dg_registry_find(got, "node-b"));
	dg_registry_free(got);
	dg_registry_free(want);

	/* The SQLite loader's checks, on rows PostgreSQL hands back. */
	pg_exec("UPDATE agents SET pcr = 99 WHERE id = 'node-a'");
	ck_assert_int_eq(open_and_load(uri, &got, err, sizeof err), DG_ERR_FORMAT);
	ck_assert_msg(strstr(err, "agent 'node-a': pcr") != NULL, "%s", err);
	dg_registry_free(got);
	pg_exec("UPDATE agents SET pcr = 13, ak_name = '\\x0001' WHERE id = 'node-a'");
	ck_assert_int_eq(open_and_load(uri, &got, err, sizeof err), DG_ERR_FORMAT);
	ck_assert_msg(strstr(err, "ak_name") != NULL, "%s", err);
	dg_registry_free(got);
	pg_exec("DELETE FROM drift WHERE agent = 'node-a'; DELETE FROM agents WHERE id = 'node-a'; "
	        "INSERT INTO drift VALUES ('node-b', 1, 'unknown-file', 'gap')");
	ck_assert_int_eq(open_and_load(uri, &got, err, sizeof err), DG_ERR_FORMAT);
	ck_assert_msg(strstr(err, "out of sequence") != NULL, "%s", err);
	dg_registry_free(got);
	pg_exec("UPDATE schema_version SET version = 2");
	ck_assert_int_eq(open_and_load(uri, &got, err, sizeof err), DG_ERR_UNSUPPORTED);
	dg_registry_free(got);
}
END_TEST

/* Two stores on one database: two verifiers. */
START_TEST(test_pg_nonce_across_verifiers)
{
	const char *uri = getenv("DG_TEST_PG_URI");
	struct dg_registry *r;
	struct dg_store *v1 = NULL, *v2 = NULL;
	struct dg_agent_rec *fresh = calloc(1, sizeof *fresh);
	uint8_t n1[32], n2[32], wrong[32];
	char err[512] = "";

	ck_assert_ptr_nonnull(fresh);
	memset(n1, 1, sizeof n1);
	memset(n2, 2, sizeof n2);
	memset(wrong, 3, sizeof wrong);
	ck_assert_int_eq(dg_registry_new(&r), DG_OK);
	make_state(uri, r);
	ck_assert_msg(dg_store_open(uri, &v1, err, sizeof err) == DG_OK, "%s", err);
	ck_assert_msg(dg_store_open(uri, &v2, err, sizeof err) == DG_OK, "%s", err);
	ck_assert(dg_store_shared(v1));

	/* Issued by verifier 1, consumed at verifier 2, then refused at both. */
	ck_assert_int_eq(dg_store_round_begin(v1, "node-a"), DG_OK);
	ck_assert_int_eq(dg_store_fetch(v1, "node-a", fresh, err, sizeof err), DG_OK);
	expect_same(dg_registry_find(r, "node-a"), fresh);
	ck_assert_int_eq(dg_store_nonce_put(v1, "node-a", n1, sizeof n1, 30000), DG_OK);
	ck_assert_int_eq(dg_store_round_end(v1, true), DG_OK);
	ck_assert_int_eq(dg_store_round_begin(v2, "node-a"), DG_OK);
	ck_assert_int_eq(dg_store_nonce_take(v2, "node-a", n1, sizeof n1), DG_OK);
	ck_assert_int_eq(dg_store_round_end(v2, true), DG_OK);
	ck_assert_int_eq(dg_store_round_begin(v1, "node-a"), DG_OK);
	ck_assert_int_eq(dg_store_nonce_take(v1, "node-a", n1, sizeof n1), DG_ERR_NONCE);
	ck_assert_int_eq(dg_store_round_end(v1, true), DG_OK);
	ck_assert_int_eq(dg_store_round_begin(v2, "node-a"), DG_OK);
	ck_assert_int_eq(dg_store_nonce_take(v2, "node-a", n1, sizeof n1), DG_ERR_NONCE);
	ck_assert_int_eq(dg_store_round_end(v2, true), DG_OK);

	/* A wrong answer retires the live nonce; one for another agent is no use. */
	ck_assert_int_eq(dg_store_round_begin(v1, "node-a"), DG_OK);
	ck_assert_int_eq(dg_store_nonce_put(v1, "node-a", n2, sizeof n2, 30000), DG_OK);
	ck_assert_int_eq(dg_store_round_end(v1, true), DG_OK);
	ck_assert_int_eq(dg_store_round_begin(v2, "node-b"), DG_OK);
	ck_assert_int_eq(dg_store_nonce_take(v2, "node-b", n2, sizeof n2), DG_ERR_NONCE);
	ck_assert_int_eq(dg_store_round_end(v2, true), DG_OK);
	ck_assert_int_eq(dg_store_round_begin(v2, "node-a"), DG_OK);
	ck_assert_int_eq(dg_store_nonce_take(v2, "node-a", wrong, sizeof wrong), DG_ERR_NONCE);
	ck_assert_int_eq(dg_store_round_end(v2, true), DG_OK);
	ck_assert_int_eq(dg_store_round_begin(v1, "node-a"), DG_OK);
	ck_assert_int_eq(dg_store_nonce_take(v1, "node-a", n2, sizeof n2), DG_ERR_NONCE);
	ck_assert_int_eq(dg_store_round_end(v1, true), DG_OK);

	/* Expired by the database's clock. */
	ck_assert_int_eq(dg_store_round_begin(v1, "node-a"), DG_OK);
	ck_assert_int_eq(dg_store_nonce_put(v1, "node-a", n1, sizeof n1, 1), DG_OK);
	ck_assert_int_eq(dg_store_round_end(v1, true), DG_OK);
	usleep(20000);
	ck_assert_int_eq(dg_store_round_begin(v2, "node-a"), DG_OK);
	ck_assert_int_eq(dg_store_nonce_take(v2, "node-a", n1, sizeof n1), DG_ERR_NONCE);
	ck_assert_int_eq(dg_store_round_end(v2, true), DG_OK);

	/* A rolled-back round consumed nothing. */
	ck_assert_int_eq(dg_store_round_begin(v1, "node-a"), DG_OK);
	ck_assert_int_eq(dg_store_nonce_put(v1, "node-a", n1, sizeof n1, 30000), DG_OK);
	ck_assert_int_eq(dg_store_round_end(v1, true), DG_OK);
	ck_assert_int_eq(dg_store_round_begin(v2, "node-a"), DG_OK);
	ck_assert_int_eq(dg_store_nonce_take(v2, "node-a", n1, sizeof n1), DG_OK);
	ck_assert_int_eq(dg_store_round_end(v2, false), DG_OK);
	ck_assert_int_eq(dg_store_round_begin(v1, "node-a"), DG_OK);
	ck_assert_int_eq(dg_store_nonce_take(v1, "node-a", n1, sizeof n1), DG_OK);
	ck_assert_int_eq(dg_store_round_end(v1, true), DG_OK);

	/* Unknown agents: not found, and no nonce to take. */
	ck_assert_int_eq(dg_store_round_begin(v1, "node-z"), DG_OK);
	dg_store_rec_reset(fresh);
	ck_assert_int_eq(dg_store_fetch(v1, "node-z", fresh, err, sizeof err), DG_ERR_NOTFOUND);
	ck_assert_int_eq(dg_store_nonce_put(v1, "node-z", n1, sizeof n1, 30000), DG_ERR_NOTFOUND);
	ck_assert_int_eq(dg_store_round_end(v1, true), DG_OK);

	/* SQLite keeps nonces in memory: none of this applies there. */
	struct dg_store *mem = NULL;
	ck_assert_int_eq(dg_store_open(DG_STORE_MEMORY, &mem, err, sizeof err), DG_OK);
	ck_assert(!dg_store_shared(mem));
	ck_assert_int_eq(dg_store_round_begin(mem, "node-a"), DG_ERR_UNSUPPORTED);
	dg_store_close(mem);

	dg_store_rec_reset(fresh);
	free(fresh);
	dg_store_close(v1);
	dg_store_close(v2);
	dg_registry_free(r);
}
END_TEST

/* While one verifier has a round of an agent open, another cannot start one
 * (it gives up after the lock timeout) but may serve other agents. */
START_TEST(test_pg_round_lock)
{
	const char *uri = getenv("DG_TEST_PG_URI");
	struct dg_registry *r;
	struct dg_store *v1 = NULL, *v2 = NULL;
	char err[512] = "";

	ck_assert_int_eq(dg_registry_new(&r), DG_OK);
	make_state(uri, r);
	ck_assert_msg(dg_store_open(uri, &v1, err, sizeof err) == DG_OK, "%s", err);
	ck_assert_msg(dg_store_open(uri, &v2, err, sizeof err) == DG_OK, "%s", err);
	ck_assert_int_eq(dg_store_round_begin(v1, "node-a"), DG_OK);
	ck_assert_int_eq(dg_store_round_begin(v2, "node-b"), DG_OK);
	ck_assert_int_eq(dg_store_round_end(v2, true), DG_OK);
	double t0 = now_ms();
	ck_assert_int_eq(dg_store_round_begin(v2, "node-a"), DG_ERR_STATE);
	ck_assert(now_ms() - t0 >= 4000);
	ck_assert_int_eq(dg_store_round_end(v1, true), DG_OK);
	ck_assert_int_eq(dg_store_round_begin(v2, "node-a"), DG_OK);
	ck_assert_int_eq(dg_store_round_end(v2, true), DG_OK);
	dg_store_close(v1);
	dg_store_close(v2);
	dg_registry_free(r);
}
END_TEST

static Suite *
store_suite(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_corrupt_rows);
	tcase_add_test(tc, test_exclusive_and_permissions);
	tcase_add_test(tc, test_failed_save_changes_nothing);
	tcase_add_test(tc, test_list_while_running);
	tcase_add_test(tc, test_status_output);
	tcase_add_test(tc, test_save_cost);
	suite_add_tcase(s, tc);
	if (getenv("DG_TEST_PG_URI") != NULL) {
		tc = tcase_create("pg");
		tcase_add_checked_fixture(tc, pg_setup, teardown);
		tcase_set_timeout(tc, 120);
		tcase_add_test(tc, test_pg_round_trip);
		tcase_add_test(tc, test_pg_nonce_across_verifiers);
		tcase_add_test(tc, test_pg_round_lock);
		suite_add_tcase(s, tc);
	}
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(store_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
