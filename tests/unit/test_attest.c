/*
 * The attestation protocol against a real verifier process and a real TPM
 * (swtpm), over a real nng req0 socket. The test plays the agent itself, with
 * agent/tpm.c for the TPM side, so it can tamper with every message it sends:
 * each case checks the verdict's pass flag, its exact reason code, that
 * nothing sealed comes back, and that an honest round afterwards still passes
 * (the bad input changed nothing on the verifier).
 *
 * Layout: the runner process creates the EK/AK of two swtpm states (A, the
 * agent's machine, and B, another machine) once, writes a baseline and a
 * secret, and starts one verifier for the whole suite. Every test restarts
 * swtpm A on its saved state (persistent keys kept, PCRs cleared) so each
 * test's PCR 13 starts at zero, and uses its own agent id.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <libpq-fe.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "driftgate/err.h"
#include "driftgate/log.h"
#include "driftgate/quote.h"
#include "driftgate/release.h"
#include "driftgate/seal.h"
#include "driftgate/tpmkey.h"
#include "driftgate/transport.h"
#include "driftgate/wire.h"
#include "testutil.h"
#include "tpm.h"

#define PCR 13
#define EK DG_TPM_EK_HANDLE_DEFAULT
#define AK DG_TPM_AK_HANDLE_DEFAULT
#define BIND DG_TPM_BIND_HANDLE_DEFAULT
#define SECRET_NAME "s1"
#define MAX_ENTRIES 32
#define LOG_CAP (MAX_ENTRIES * 256)

/* Files the baseline allows; their "content digest" is SHA-256 of the path. */
static const char *const allowed[] = {"/usr/bin/a", "/usr/bin/b", "/usr/bin/c", "/usr/lib/d"};

/* ---- suite state, set up in the runner process (unchecked fixture) ---- */

static char *work;                  /* root of everything the suite writes */
static char tpm_a_dir[4200], tpm_b_dir[4200], audit_path[4200];
static uint8_t ek_a[DG_WIRE_MAX_KEY], ak_a[DG_WIRE_MAX_KEY];
static uint8_t ek_b[DG_WIRE_MAX_KEY], ak_b[DG_WIRE_MAX_KEY];
static size_t ek_a_len, ak_a_len, ek_b_len, ak_b_len;
static uint8_t secret[96];
static size_t secret_len;
static char secret_marker[33];      /* the random, printable core of the secret */
static pid_t verifier_pid;
static bool verifier_failed;        /* it did not exit cleanly at the end */
static char verifier_url[64];

/* ---- per-test state (checked fixture, in the forked test process) ---- */

static pid_t swtpm_a_pid;
static struct dg_tpm *tpm_a;
static nng_socket sock;

/* The agent's machine as the test models it: every entry here was extended
 * into PCR 13 of TPM A, in order, since the test started swtpm A. */
struct agent {
	char id[DG_WIRE_MAX_AGENT_ID + 1];
	uint8_t log[LOG_CAP];
	size_t off[MAX_ENTRIES + 1]; /* off[i]: byte offset of entry i; off[n] == len */
	size_t n;
};

/* One attestation round's client side. */
struct round {
	uint8_t nonce[DG_QUOTE_NONCE_LEN];
	uint64_t log_from;
};

/* ------------------------------------------------------------------------ */

static int
port_accepts(int port)
{
	struct sockaddr_in addr = {
		.sin_family = AF_INET,
		.sin_port = htons((uint16_t)port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	int ok = connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0;
	close(fd);
	return ok;
}

static void
hex(const uint8_t *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static void
sha256(const void *data, size_t len, uint8_t out[32])
{
	ck_assert_int_eq(EVP_Digest(data, len, out, NULL, EVP_sha256(), NULL), 1);
}

static void
file_digest(const char *path, uint8_t out[32])
{
	sha256(path, strlen(path), out);
}

static void
write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	ck_assert_int_eq(fchmod(fd, mode), 0);
	ck_assert_int_eq(close(fd), 0);
}

/*
 * Start swtpm on dir, like tu_swtpm_start but safe for two instances in one
 * process: tu_swtpm_start seeds its port choice with getpid() ^ time(), so a
 * second call within the same second picks the first instance's port, its
 * swtpm fails to bind, and the readiness probe is answered by the first one.
 * Here the seed advances per call, a port pair already in use is skipped, and
 * the child must still be alive once its port accepts.
 */
static void
start_swtpm(const char *dir, int *port, pid_t *pid, char *tcti, size_t cap)
{
	static unsigned seed;
	char state[4300], server[64], ctrl[64], log[4300];
	if (seed == 0)
		seed = (unsigned)getpid() * 2654435761u ^ (unsigned)time(NULL);
	snprintf(state, sizeof state, "dir=%s", dir);
	snprintf(log, sizeof log, "%s/swtpm.log", dir);
	for (int attempt = 0; attempt < 20; attempt++) {
		int p = 10000 + 2 * (int)(rand_r(&seed) % 11000); /* below the ephemeral range */
		if (port_accepts(p) || port_accepts(p + 1))
			continue;
		snprintf(server, sizeof server, "type=tcp,port=%d,bindaddr=127.0.0.1", p);
		snprintf(ctrl, sizeof ctrl, "type=tcp,port=%d,bindaddr=127.0.0.1", p + 1);
		pid_t parent = getpid(), child = fork();
		ck_assert_int_ge(child, 0);
		if (child == 0) {
			if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
				_exit(127);
			int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
			if (fd >= 0) {
				dup2(fd, STDOUT_FILENO);
				dup2(fd, STDERR_FILENO);
			}
			execlp("swtpm", "swtpm", "socket", "--tpm2", "--tpmstate", state, "--server",
			       server, "--ctrl", ctrl, "--flags", "not-need-init,startup-clear",
			       (char *)NULL);
			_exit(127);
		}
		for (int i = 0; i < 500 && child > 0; i++) {
			if (waitpid(child, NULL, WNOHANG) == child)
				child = 0; /* lost a race for the port: next pair */
			else if (port_accepts(p) && waitpid(child, NULL, WNOHANG) == 0)
				break;
			else
				usleep(5000);
		}
		if (child > 0 && waitpid(child, NULL, WNOHANG) == 0) {
			*port = p;
			*pid = child;
			snprintf(tcti, cap, "swtpm:host=127.0.0.1,port=%d", p);
			return;
		}
	}
	ck_abort_msg("swtpm did not start on %s", dir);
}

/* Create (first start) the EK and AK of one swtpm state and return their publics. */
static void
make_keys(const char *dir, uint8_t *ek, size_t *ek_len, uint8_t *ak, size_t *ak_len)
{
	char tcti[64];
	int port;
	pid_t pid;
	struct dg_tpm *t;
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	start_swtpm(dir, &port, &pid, tcti, sizeof tcti);
	/* Every test restarts this swtpm without an orderly TPM2_Shutdown, which counts
	 * as a dictionary-attack failure once the EK's policy session has been used:
	 * with recoveryTime 0 DA protection is off and the TPM never locks out. */
	ck_assert_int_eq(tu_sh("tpm2_dictionarylockout -T '%s' --setup-parameters --max-tries=32 "
	                       "--recovery-time=0 --lockout-recovery-time=0 >>'%s/tpm2-tools.log' 2>&1",
	                       tcti, dir),
	                 0);
	ck_assert_int_eq(dg_tpm_open(tcti, &t), DG_OK);
	*ek_len = *ak_len = DG_WIRE_MAX_KEY;
	ck_assert_int_eq(dg_tpm_keys(t, EK, AK, ek, ek_len, ak, ak_len), DG_OK);
	dg_tpm_close(t);
	tu_swtpm_stop(pid);
}

static pid_t
spawn_verifier(const char *url, const char *log_path)
{
	char exe[4200], policies[4200], secrets[4200];
	pid_t parent = getpid();
	tu_build_path("verifier/driftgate-verifier", exe, sizeof exe);
	snprintf(policies, sizeof policies, "%s/policies", work);
	snprintf(secrets, sizeof secrets, "%s/secrets", work);
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
		_exit(127);
	int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (fd >= 0) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
	}
	/* The state in memory: each verifier of this suite starts with no agents.
	 * With DG_TEST_PG_URI (tests/e2e/pg_failover.sh) every case runs through
	 * the PostgreSQL store instead, emptied first (start_verifier). */
	const char *state = getenv("DG_TEST_PG_URI") ? getenv("DG_TEST_PG_URI") : ":memory:";
	execl(exe, exe, "serve", "--listen", url, "--policies", policies, "--secrets", secrets,
	      "--audit-log", audit_path, "--state", state, (char *)NULL);
	_exit(127);
}

static void
empty_pg_state(void)
{
	const char *uri = getenv("DG_TEST_PG_URI");
	if (uri == NULL)
		return;
	PGconn *c = PQconnectdb(uri);
	ck_assert_int_eq(PQstatus(c), CONNECTION_OK);
	PGresult *r = PQexec(c, "SET client_min_messages = warning; "
	                        "DROP TABLE IF EXISTS drift, agents, schema_version");
	ck_assert_int_eq(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	PQfinish(c);
}

static void
start_verifier(void)
{
	empty_pg_state();
	char log_path[4200];
	unsigned seed = (unsigned)getpid() ^ (unsigned)time(NULL) ^ 0x5a5a;
	snprintf(log_path, sizeof log_path, "%s/verifier.log", work);
	for (int attempt = 0; attempt < 20; attempt++) {
		int port = 10000 + (int)(rand_r(&seed) % 22000); /* below the ephemeral range */
		if (port_accepts(port))
			continue;
		snprintf(verifier_url, sizeof verifier_url, "tcp://127.0.0.1:%d", port);
		pid_t pid = spawn_verifier(verifier_url, log_path);
		ck_assert_int_gt(pid, 0);
		for (int i = 0; i < 500; i++) {
			if (waitpid(pid, NULL, WNOHANG) == pid) {
				pid = 0; /* port taken or bad configuration: try again */
				break;
			}
			if (port_accepts(port)) {
				verifier_pid = pid;
				return;
			}
			usleep(10000);
		}
		if (pid > 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
	}
	tu_sh("cat '%s' >&2", log_path);
	ck_abort_msg("verifier did not start");
}

static void
suite_setup(void)
{
	char path[4200], line[256], text[2048];
	size_t len = 0;
	uint8_t rnd[16];

	work = tu_tmpdir();
	ck_assert_ptr_nonnull(work);
	snprintf(tpm_a_dir, sizeof tpm_a_dir, "%s/tpm-a", work);
	snprintf(tpm_b_dir, sizeof tpm_b_dir, "%s/tpm-b", work);
	snprintf(audit_path, sizeof audit_path, "%s/audit.jsonl", work);

	/* Baseline: the allowed files, one secret, agents t-*. */
	snprintf(path, sizeof path, "%s/policies", work);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	len = (size_t)snprintf(text, sizeof text,
	                       "# negative protocol tests\ndriftgate-baseline 1\nname t\n"
	                       "agent t-*\nsecret " SECRET_NAME "\n");
	for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++) {
		uint8_t d[32];
		char h[65];
		file_digest(allowed[i], d);
		hex(d, sizeof d, h);
		int n = snprintf(line, sizeof line, "allow sha256:%s %s\n", h, allowed[i]);
		ck_assert(n > 0 && len + (size_t)n < sizeof text);
		memcpy(text + len, line, (size_t)n + 1);
		len += (size_t)n;
	}
	snprintf(path, sizeof path, "%s/policies/t.baseline", work);
	write_file(path, text, len, 0644);

	/* The secret: a random printable marker plus bytes that are not text. */
	ck_assert_int_eq(RAND_bytes(rnd, sizeof rnd), 1);
	hex(rnd, sizeof rnd, secret_marker);
	secret_len = (size_t)snprintf((char *)secret, sizeof secret, "dg-secret-%s", secret_marker);
	secret[secret_len++] = 0x00;
	secret[secret_len++] = 0xff;
	secret[secret_len++] = '\n';
	snprintf(path, sizeof path, "%s/secrets", work);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	snprintf(path, sizeof path, "%s/secrets/" SECRET_NAME, work);
	write_file(path, secret, secret_len, 0600);

	/* RSA key creation is the slow part: once per TPM, kept in its NV state. */
	make_keys(tpm_a_dir, ek_a, &ek_a_len, ak_a, &ak_a_len);
	make_keys(tpm_b_dir, ek_b, &ek_b_len, ak_b, &ak_b_len);
	ck_assert(ak_a_len != ak_b_len || memcmp(ak_a, ak_b, ak_a_len) != 0);

	start_verifier();
}

static void
suite_teardown(void)
{
	if (verifier_pid > 0) {
		int status = 0;
		kill(verifier_pid, SIGTERM);
		waitpid(verifier_pid, &status, 0);
		verifier_pid = 0;
		/* A clean exit: it survived every case (and, under the sanitizers, leaked
		 * nothing and hit no error). Otherwise show its log and fail the run. */
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "verifier ended with status 0x%x; its log:\n", (unsigned)status);
			tu_sh("cat '%s/verifier.log' >&2", work);
			verifier_failed = true;
		}
	}
	if (work != NULL) {
		tu_sh("rm -rf '%s'", work);
		free(work);
		work = NULL;
	}
}

/* Open TPM a (or b) on its saved state: the keys load, PCRs start at zero. */
static struct dg_tpm *
open_tpm(const char *dir, pid_t *pid, const uint8_t *ek, size_t ek_len, const uint8_t *ak,
         size_t ak_len)
{
	char tcti[64];
	int port;
	struct dg_tpm *t;
	uint8_t e[DG_WIRE_MAX_KEY], k[DG_WIRE_MAX_KEY], pcr[32], zero[32] = {0};
	size_t e_len = sizeof e, k_len = sizeof k;
	start_swtpm(dir, &port, pid, tcti, sizeof tcti);
	ck_assert_int_eq(dg_tpm_open(tcti, &t), DG_OK);
	ck_assert_int_eq(dg_tpm_keys(t, EK, AK, e, &e_len, k, &k_len), DG_OK);
	ck_assert(e_len == ek_len && memcmp(e, ek, ek_len) == 0);
	ck_assert(k_len == ak_len && memcmp(k, ak, ak_len) == 0);
	ck_assert_int_eq(dg_tpm_pcr_read(t, PCR, pcr), DG_OK);
	ck_assert_mem_eq(pcr, zero, sizeof pcr);
	return t;
}

static void
open_socket(nng_socket *s)
{
	ck_assert_int_eq(nng_req0_open(s), 0);
	ck_assert_int_eq(nng_socket_set_ms(*s, NNG_OPT_RECVTIMEO, 10000), 0);
	ck_assert_int_eq(nng_socket_set_ms(*s, NNG_OPT_SENDTIMEO, 10000), 0);
	ck_assert_int_eq(nng_socket_set_size(*s, NNG_OPT_RECVMAXSZ, 1024 * 1024), 0);
	ck_assert_int_eq(nng_dial(*s, verifier_url, NULL, 0), 0);
}

static void
test_setup(void)
{
	tpm_a = open_tpm(tpm_a_dir, &swtpm_a_pid, ek_a, ek_a_len, ak_a, ak_a_len);
	open_socket(&sock);
}

static void
test_teardown(void)
{
	nng_close(sock);
	dg_tpm_close(tpm_a);
	tu_swtpm_stop(swtpm_a_pid);
}

/* ---- protocol helpers ---- */

static void
rpc(const struct dg_msg *req, struct dg_msg *reply)
{
	ck_assert_int_eq(dg_transport_send(sock, req), DG_OK);
	ck_assert_int_eq(dg_transport_recv(sock, reply), DG_OK);
}

/* Send bytes as they are, no encoder in the way; decode the reply. */
static void
rpc_raw(const uint8_t *buf, size_t len, struct dg_msg *reply)
{
	ck_assert_int_eq(nng_send(sock, (void *)buf, len, 0), 0);
	ck_assert_int_eq(dg_transport_recv(sock, reply), DG_OK);
}

/* Enroll id with the given TPM and its keys. Returns DG_OK, or the code of the
 * verifier's ERROR reply. */
static int
enroll_with(const char *id, struct dg_tpm *t, const uint8_t *ek, size_t ek_len,
            const uint8_t *ak, size_t ak_len)
{
	struct dg_msg req, reply;
	uint8_t cred[DG_WIRE_MAX_BLOB];
	size_t cred_len = 0;
	int rv = DG_OK;

	dg_msg_init(&req);
	req.type = DG_MSG_ENROLL_REQ;
	snprintf(req.agent_id, sizeof req.agent_id, "%s", id);
	req.pcr = PCR;
	ck_assert_int_eq(dg_bytes_set(&req.ek_pub, ek, ek_len), DG_OK);
	ck_assert_int_eq(dg_bytes_set(&req.ak_pub, ak, ak_len), DG_OK);
	rpc(&req, &reply);
	dg_msg_clear(&req);
	if (reply.type == DG_MSG_ERROR) {
		rv = (int)reply.code;
		ck_assert_int_ne(rv, DG_OK);
		dg_msg_clear(&reply);
		return rv;
	}
	ck_assert_int_eq(reply.type, DG_MSG_ENROLL_CHALLENGE);
	ck_assert_int_eq(dg_tpm_activate(t, reply.id_object.data, reply.id_object.len,
	                                 reply.enc_secret.data, reply.enc_secret.len, cred,
	                                 sizeof cred, &cred_len),
	                 DG_OK);
	dg_msg_clear(&reply);
	req.type = DG_MSG_ENROLL_ACTIVATE;
	snprintf(req.agent_id, sizeof req.agent_id, "%s", id);
	ck_assert_int_eq(dg_bytes_set(&req.credential, cred, cred_len), DG_OK);
	rpc(&req, &reply);
	if (reply.type == DG_MSG_ERROR)
		rv = (int)reply.code;
	else
		ck_assert_int_eq(reply.type, DG_MSG_ENROLL_DONE);
	dg_msg_clear(&req);
	dg_msg_clear(&reply);
	return rv;
}

static void
agent_init(struct agent *a, const char *id)
{
	memset(a, 0, sizeof *a);
	snprintf(a->id, sizeof a->id, "%s", id);
	ck_assert_int_eq(enroll_with(id, tpm_a, ek_a, ek_a_len, ak_a, ak_a_len), DG_OK);
}

/* One ima-ng entry for PCR 13; template_sha256 receives what the agent extends. */
static size_t
encode_entry(const char *path, const uint8_t digest[32], uint8_t *out, size_t cap,
             uint8_t template_sha256[32])
{
	struct dg_log_reader r;
	struct dg_log_entry e;
	size_t len = 0;
	ck_assert_int_eq(dg_log_encode(PCR, DG_TEMPLATE_IMA_NG, "sha256", digest, 32, path, NULL,
	                               0, out, cap, &len),
	                 DG_OK);
	ck_assert_int_eq(dg_log_reader_init(&r, out, len, DG_LOG_FORMAT_BINARY), DG_OK);
	ck_assert_int_eq(dg_log_next(&r, &e), DG_OK);
	sha256(e.template_data, e.template_data_len, template_sha256);
	dg_log_reader_fini(&r);
	return len;
}

/* Measure a file as the agent does: append the entry, extend PCR 13. */
static void
measure_digest(struct agent *a, const char *path, const uint8_t digest[32])
{
	uint8_t th[32];
	ck_assert_uint_lt(a->n, MAX_ENTRIES);
	size_t len = encode_entry(path, digest, a->log + a->off[a->n],
	                          sizeof a->log - a->off[a->n], th);
	ck_assert_int_eq(dg_tpm_extend(tpm_a, PCR, th), DG_OK);
	a->n++;
	a->off[a->n] = a->off[a->n - 1] + len;
}

static void
measure(struct agent *a, const char *path)
{
	uint8_t d[32];
	file_digest(path, d);
	measure_digest(a, path, d);
}

static void
get_nonce(const struct agent *a, struct round *rd)
{
	struct dg_msg req, reply;
	dg_msg_init(&req);
	req.type = DG_MSG_NONCE_REQ;
	snprintf(req.agent_id, sizeof req.agent_id, "%s", a->id);
	rpc(&req, &reply);
	ck_assert_int_eq(reply.type, DG_MSG_NONCE);
	ck_assert_uint_eq(reply.nonce.len, DG_QUOTE_NONCE_LEN);
	ck_assert_uint_eq(reply.pcr, PCR);
	memcpy(rd->nonce, reply.nonce.data, sizeof rd->nonce);
	rd->log_from = reply.log_from;
	dg_msg_clear(&reply);
}

/* The binding key of t (made on first use), its public area and point. */
static void
bind_key_of(struct dg_tpm *t, uint8_t pub[DG_WIRE_MAX_KEY], size_t *pub_len,
            uint8_t point[DG_SEAL_POINT_LEN])
{
	EVP_PKEY *key = NULL;
	ck_assert_int_eq(dg_tpm_bind_key(t, BIND, pub, pub_len), DG_OK);
	ck_assert_int_eq(dg_tpmkey_import(pub, *pub_len, DG_TPMKEY_BIND, &key, NULL, NULL), DG_OK);
	ck_assert_int_eq(dg_seal_point_of(key, point), DG_OK);
	EVP_PKEY_free(key);
}

/* Build an ATTEST for round rd: a quote of quote_pcr by signer with
 * quote_nonce as extraData, the given log, and a request for the node's
 * secret sealed to signer's binding key, certified for quote_nonce. */
static void
build_attest_full(const struct agent *a, struct round *rd, struct dg_tpm *signer,
                  uint32_t quote_pcr, const uint8_t *quote_nonce, const uint8_t *log,
                  size_t log_len, struct dg_msg *m)
{
	uint8_t att[DG_QUOTE_MAX_ATTEST], sig[DG_QUOTE_MAX_SIG], pub[DG_WIRE_MAX_KEY];
	uint8_t point[DG_SEAL_POINT_LEN];
	size_t att_len = 0, sig_len = 0, pub_len = sizeof pub;
	dg_msg_init(m);
	ck_assert_int_eq(dg_tpm_quote(signer, quote_pcr, quote_nonce, DG_QUOTE_NONCE_LEN, att,
	                              sizeof att, &att_len, sig, sizeof sig, &sig_len),
	                 DG_OK);
	m->type = DG_MSG_ATTEST;
	snprintf(m->agent_id, sizeof m->agent_id, "%s", a->id);
	m->log_from = rd->log_from;
	ck_assert_int_eq(dg_bytes_set(&m->nonce, rd->nonce, sizeof rd->nonce), DG_OK);
	ck_assert_int_eq(dg_bytes_set(&m->attest, att, att_len), DG_OK);
	ck_assert_int_eq(dg_bytes_set(&m->signature, sig, sig_len), DG_OK);
	bind_key_of(signer, pub, &pub_len, point);
	ck_assert_int_eq(dg_tpm_certify_bind(signer, quote_nonce, DG_QUOTE_NONCE_LEN, att,
	                                     sizeof att, &att_len, sig, sizeof sig, &sig_len),
	                 DG_OK);
	ck_assert_int_eq(dg_bytes_set(&m->bind_key, pub, pub_len), DG_OK);
	ck_assert_int_eq(dg_bytes_set(&m->bind_attest, att, att_len), DG_OK);
	ck_assert_int_eq(dg_bytes_set(&m->bind_sig, sig, sig_len), DG_OK);
	snprintf(m->request[0].secret, sizeof m->request[0].secret, "%s", SECRET_NAME);
	m->n_request = 1;
	/* dg_bytes_set wants a non-NULL source even when empty */
	ck_assert_int_eq(dg_bytes_set(&m->log, log_len ? log : (const uint8_t *)"", log_len),
	                 DG_OK);
}

/* The honest ATTEST: everything the verifier has not seen yet, from its position. */
static void
build_attest(const struct agent *a, struct round *rd, struct dg_msg *m)
{
	ck_assert_uint_le(rd->log_from, a->n);
	size_t from = a->off[rd->log_from];
	build_attest_full(a, rd, tpm_a, PCR, rd->nonce, a->log + from, a->off[a->n] - from, m);
}

/* A whole honest round; the verdict is left in v. */
static void
honest_round(const struct agent *a, struct round *rd, struct dg_msg *v)
{
	struct dg_msg m;
	get_nonce(a, rd);
	build_attest(a, rd, &m);
	rpc(&m, v);
	dg_msg_clear(&m);
}

static void
expect_fail_detail(struct dg_msg *v, const char *code, const char *detail_has)
{
	ck_assert_int_eq(v->type, DG_MSG_VERDICT);
	ck_assert(!v->pass);
	ck_assert_msg(v->n_reasons == 1 && strcmp(v->reasons[0].code, code) == 0,
	              "expected exactly '%s', got %zu reason(s), first '%s: %s'", code, v->n_reasons,
	              v->n_reasons ? v->reasons[0].code : "", v->n_reasons ? v->reasons[0].detail : "");
	ck_assert_uint_eq(v->n_sealed, 0);
	if (detail_has != NULL)
		ck_assert_msg(strstr(v->reasons[0].detail, detail_has) != NULL,
		              "detail '%s' does not name '%s'", v->reasons[0].detail, detail_has);
	dg_msg_clear(v);
}

static void
expect_fail(struct dg_msg *v, const char *code)
{
	expect_fail_detail(v, code, NULL);
}

/* Open one released node secret as an agent on TPM t would (its ECDH_ZGen);
 * returns the first failure. */
static int
unseal_with(const char *id, const struct dg_named_blob *s, const uint8_t nonce[32],
            uint32_t lease_ms, struct dg_tpm *t, uint8_t *out, size_t cap, size_t *out_len)
{
	uint8_t aad[DG_RELEASE_AAD_MAX], pub[DG_WIRE_MAX_KEY], point[DG_SEAL_POINT_LEN], z[32];
	size_t aad_len = 0, pub_len = sizeof pub;
	const uint8_t *eph;
	const struct dg_release_ctx ctx = {
		.agent_id = id, .scope = "", .secret = s->name, .nonce = nonce, .lease_ms = lease_ms,
	};
	int rv;
	bind_key_of(t, pub, &pub_len, point);
	ck_assert_int_eq(dg_release_aad(&ctx, aad, sizeof aad, &aad_len), DG_OK);
	if ((rv = dg_seal_ephemeral(s->blob.data, s->blob.len, &eph)) != DG_OK ||
	    (rv = dg_tpm_zgen(t, eph, z)) != DG_OK)
		return rv;
	return dg_unseal(z, point, aad, aad_len, s->blob.data, s->blob.len, out, cap, out_len);
}

/* A passing verdict releasing exactly s1, which unseals to the file's bytes. */
static void
expect_pass_verdict(const struct agent *a, const struct round *rd, const struct dg_msg *v)
{
	uint8_t pt[256];
	size_t pt_len = 0;
	ck_assert_int_eq(v->type, DG_MSG_VERDICT);
	ck_assert_msg(v->pass, "expected a pass, first reason '%s: %s'",
	              v->n_reasons ? v->reasons[0].code : "", v->n_reasons ? v->reasons[0].detail : "");
	ck_assert_uint_eq(v->n_reasons, 0);
	ck_assert_uint_eq(v->n_sealed, 1);
	ck_assert_str_eq(v->sealed[0].name, SECRET_NAME);
	ck_assert_uint_gt(v->lease_ms, 0);
	ck_assert_int_eq(unseal_with(a->id, &v->sealed[0], rd->nonce, v->lease_ms, tpm_a, pt,
	                             sizeof pt, &pt_len),
	                 DG_OK);
	ck_assert_uint_eq(pt_len, secret_len);
	ck_assert_mem_eq(pt, secret, secret_len);
}

static void
expect_honest_pass(const struct agent *a)
{
	struct round rd;
	struct dg_msg v;
	honest_round(a, &rd, &v);
	expect_pass_verdict(a, &rd, &v);
	dg_msg_clear(&v);
	/* The verifier now stands at the end of our log. */
	get_nonce(a, &rd);
	ck_assert_uint_eq(rd.log_from, a->n);
}

/* ---- the cases ---- */

/* 1. An honest agent passes, receives s1 bit for bit; the audit never holds it. */
START_TEST(honest_round_releases_secret)
{
	struct agent a;
	struct round rd;
	struct dg_msg v;
	agent_init(&a, "t-honest");
	measure(&a, allowed[0]);
	measure(&a, allowed[1]);
	honest_round(&a, &rd, &v);
	ck_assert_uint_eq(rd.log_from, 0);
	expect_pass_verdict(&a, &rd, &v);
	dg_msg_clear(&v);

	/* Incremental: only the new entry is sent, from the verifier's position. */
	measure(&a, allowed[2]);
	honest_round(&a, &rd, &v);
	ck_assert_uint_eq(rd.log_from, 2);
	expect_pass_verdict(&a, &rd, &v);
	dg_msg_clear(&v);

	size_t len = 0;
	uint8_t *audit = tu_read_file(audit_path, &len);
	ck_assert_ptr_nonnull(audit);
	ck_assert_ptr_nonnull(memmem(audit, len, "t-honest", strlen("t-honest")));
	ck_assert_ptr_null(memmem(audit, len, secret_marker, strlen(secret_marker)));
	ck_assert_ptr_null(memmem(audit, len, secret, secret_len));
	free(audit);
}
END_TEST

/* 2. An entry changed after it was extended. Flipping a digest byte alone breaks
 * the logged sha1 template hash (log-malformed); a careful forger re-encodes the
 * entry with matching template hash, and the quote exposes it (pcr-mismatch). */
START_TEST(tampered_entry_is_pcr_mismatch)
{
	struct agent a;
	struct round rd;
	struct dg_msg m, v;
	uint8_t forged[512], th[32], d[32];
	agent_init(&a, "t-tamper");
	measure(&a, allowed[0]);
	expect_honest_pass(&a);
	measure(&a, allowed[1]);

	/* Re-encoded with one digest byte changed: well-formed, but not what was extended. */
	file_digest(allowed[1], d);
	d[7] ^= 0x01;
	size_t flen = encode_entry(allowed[1], d, forged, sizeof forged, th);
	get_nonce(&a, &rd);
	ck_assert_uint_eq(rd.log_from, 1);
	build_attest_full(&a, &rd, tpm_a, PCR, rd.nonce, forged, flen, &m);
	rpc(&m, &v);
	dg_msg_clear(&m);
	expect_fail(&v, "pcr-mismatch");

	/* The same byte flipped in place: the entry no longer matches its own hash. */
	memcpy(forged, a.log + a.off[1], a.off[2] - a.off[1]);
	flen = a.off[2] - a.off[1];
	forged[flen - strlen(allowed[1]) - 1 - 4 - 32 + 7] ^= 0x01; /* digest byte 7 */
	ck_assert_mem_eq(forged + flen - strlen(allowed[1]) - 1 - 4 - 32, d, 32);
	get_nonce(&a, &rd);
	build_attest_full(&a, &rd, tpm_a, PCR, rd.nonce, forged, flen, &m);
	rpc(&m, &v);
	dg_msg_clear(&m);
	expect_fail(&v, "log-malformed");

	expect_honest_pass(&a);
}
END_TEST

/* 3. A log cut short inside its last entry. */
START_TEST(truncated_log_is_malformed)
{
	struct agent a;
	struct round rd;
	struct dg_msg m, v;
	agent_init(&a, "t-trunc");
	measure(&a, allowed[0]);
	measure(&a, allowed[1]);
	static const size_t cuts[] = {1, 5, 40};
	for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
		get_nonce(&a, &rd);
		ck_assert_uint_eq(rd.log_from, 0);
		build_attest_full(&a, &rd, tpm_a, PCR, rd.nonce, a.log, a.off[2] - cuts[i], &m);
		rpc(&m, &v);
		dg_msg_clear(&m);
		expect_fail(&v, "log-malformed");
	}
	expect_honest_pass(&a);
}
END_TEST

/* 4. An entry in the log that never reached the TPM. */
START_TEST(unextended_entry_is_pcr_mismatch)
{
	struct agent a;
	struct round rd;
	struct dg_msg m, v;
	uint8_t log[LOG_CAP], th[32], d[32];
	agent_init(&a, "t-extra");
	measure(&a, allowed[0]);
	memcpy(log, a.log, a.off[1]);
	file_digest(allowed[1], d);
	size_t len = a.off[1] + encode_entry(allowed[1], d, log + a.off[1], sizeof log - a.off[1], th);
	get_nonce(&a, &rd);
	build_attest_full(&a, &rd, tpm_a, PCR, rd.nonce, log, len, &m);
	rpc(&m, &v);
	dg_msg_clear(&m);
	expect_fail(&v, "pcr-mismatch");
	expect_honest_pass(&a);
	ck_assert_uint_eq(a.n, 1);
}
END_TEST

/* 5. A nonce the verifier never issued (the quote is bound to it, consistently). */
START_TEST(wrong_nonce)
{
	struct agent a;
	struct round rd;
	struct dg_msg m, v;
	agent_init(&a, "t-nonce");
	measure(&a, allowed[0]);
	get_nonce(&a, &rd);
	ck_assert_int_eq(RAND_bytes(rd.nonce, sizeof rd.nonce), 1);
	build_attest(&a, &rd, &m);
	rpc(&m, &v);
	dg_msg_clear(&m);
	expect_fail(&v, "nonce");
	expect_honest_pass(&a);
}
END_TEST

/* 6. A passing round's ATTEST, byte for byte, sent again. */
START_TEST(replayed_attest)
{
	struct agent a;
	struct round rd;
	struct dg_msg m, v;
	uint8_t *bytes = NULL;
	size_t len = 0;
	agent_init(&a, "t-replay");
	measure(&a, allowed[0]);
	get_nonce(&a, &rd);
	build_attest(&a, &rd, &m);
	ck_assert_int_eq(dg_wire_encode(&m, &bytes, &len), DG_OK);
	dg_msg_clear(&m);
	rpc_raw(bytes, len, &v);
	expect_pass_verdict(&a, &rd, &v);
	dg_msg_clear(&v);

	/* With no nonce outstanding ... */
	rpc_raw(bytes, len, &v);
	expect_fail(&v, "nonce");
	/* ... and with a fresh one outstanding (which the replay then burns). */
	struct round fresh;
	get_nonce(&a, &fresh);
	rpc_raw(bytes, len, &v);
	expect_fail(&v, "nonce");
	free(bytes);
	expect_honest_pass(&a);
}
END_TEST

/* 7. A quote signed by a TPM other than the enrolled one. */
START_TEST(quote_from_other_ak)
{
	struct agent a;
	struct round rd;
	struct dg_msg m, v;
	pid_t pid_b;
	agent_init(&a, "t-otherak");
	measure(&a, allowed[0]);
	struct dg_tpm *tpm_b = open_tpm(tpm_b_dir, &pid_b, ek_b, ek_b_len, ak_b, ak_b_len);
	/* Give B the same PCR value, so only the signing key differs. */
	uint8_t th[32], buf[512], d[32];
	file_digest(allowed[0], d);
	encode_entry(allowed[0], d, buf, sizeof buf, th);
	ck_assert_int_eq(dg_tpm_extend(tpm_b, PCR, th), DG_OK);
	get_nonce(&a, &rd);
	build_attest_full(&a, &rd, tpm_b, PCR, rd.nonce, a.log, a.off[1], &m);
	dg_tpm_close(tpm_b);
	tu_swtpm_stop(pid_b);
	rpc(&m, &v);
	dg_msg_clear(&m);
	expect_fail(&v, "signature");
	expect_honest_pass(&a);
}
END_TEST

/* 8. A quote of PCR 14 instead of the agent's PCR 13. */
START_TEST(wrong_pcr_selection)
{
	struct agent a;
	struct round rd;
	struct dg_msg m, v;
	agent_init(&a, "t-pcrsel");
	measure(&a, allowed[0]);
	get_nonce(&a, &rd);
	build_attest_full(&a, &rd, tpm_a, PCR + 1, rd.nonce, a.log, a.off[1], &m);
	rpc(&m, &v);
	dg_msg_clear(&m);
	expect_fail(&v, "pcr-selection");
	expect_honest_pass(&a);
}
END_TEST

/* 9. A man in the middle presents another TPM's binding key (with the real
 * agent's certification of its own key) to receive the secret: the node's
 * verdict stands, the secret is refused, and nothing was sealed. */
START_TEST(swapped_bind_key)
{
	struct agent a;
	struct round rd;
	struct dg_msg m, v;
	uint8_t pub[DG_WIRE_MAX_KEY], point[DG_SEAL_POINT_LEN];
	size_t pub_len = sizeof pub;
	pid_t pid_b;
	agent_init(&a, "t-mitm");
	measure(&a, allowed[0]);
	get_nonce(&a, &rd);
	build_attest(&a, &rd, &m);
	struct dg_tpm *tpm_b = open_tpm(tpm_b_dir, &pid_b, ek_b, ek_b_len, ak_b, ak_b_len);
	bind_key_of(tpm_b, pub, &pub_len, point);
	dg_tpm_close(tpm_b);
	tu_swtpm_stop(pid_b);
	ck_assert_int_eq(dg_bytes_set(&m.bind_key, pub, pub_len), DG_OK);
	rpc(&m, &v);
	dg_msg_clear(&m);
	ck_assert_int_eq(v.type, DG_MSG_VERDICT);
	ck_assert(v.pass);
	ck_assert_uint_eq(v.n_sealed, 0);
	ck_assert_msg(strstr(v.refused, "not certified") != NULL, "refused: '%s'", v.refused);
	dg_msg_clear(&v);
	expect_honest_pass(&a);
}
END_TEST

/* 10. A binary the baseline does not know: fails, and stays failed. */
START_TEST(unknown_file_is_sticky)
{
	struct agent a;
	struct round rd;
	struct dg_msg v;
	uint8_t d[32];
	agent_init(&a, "t-unknown");
	measure(&a, allowed[0]);
	expect_honest_pass(&a);
	file_digest("/tmp/evil", d);
	measure_digest(&a, "/tmp/evil", d);
	honest_round(&a, &rd, &v);
	ck_assert_uint_eq(rd.log_from, 1);
	expect_fail_detail(&v, "unknown-file", "/tmp/evil");

	/* Nothing new, then only allowed files: the drift is remembered. */
	honest_round(&a, &rd, &v);
	ck_assert_uint_eq(rd.log_from, 2);
	expect_fail_detail(&v, "unknown-file", "/tmp/evil");
	measure(&a, allowed[1]);
	honest_round(&a, &rd, &v);
	ck_assert_uint_eq(rd.log_from, 2);
	expect_fail_detail(&v, "unknown-file", "/tmp/evil");
	get_nonce(&a, &rd);
	ck_assert_uint_eq(rd.log_from, 3);

}
END_TEST

/* 10b. An allowed path with a digest the baseline does not approve. */
START_TEST(changed_file_is_hash_mismatch)
{
	struct agent a;
	struct round rd;
	struct dg_msg v;
	uint8_t d[32];
	agent_init(&a, "t-hashmm");
	file_digest("other content", d);
	measure_digest(&a, allowed[3], d);
	honest_round(&a, &rd, &v);
	expect_fail_detail(&v, "hash-mismatch", allowed[3]);
	honest_round(&a, &rd, &v);
	ck_assert_uint_eq(rd.log_from, 1);
	expect_fail_detail(&v, "hash-mismatch", allowed[3]);
}
END_TEST

/* 11. Bytes that are not a message: an ERROR each time, and the verifier serves on. */
START_TEST(malformed_cbor)
{
	struct agent a;
	struct round rd;
	struct dg_msg m, v;
	uint8_t junk[64], *bytes = NULL;
	size_t len = 0;
	agent_init(&a, "t-cbor");
	measure(&a, allowed[0]);

	ck_assert_int_eq(RAND_bytes(junk, sizeof junk), 1);
	rpc_raw(junk, sizeof junk, &v);
	ck_assert_int_eq(v.type, DG_MSG_ERROR);
	ck_assert_uint_ne(v.code, DG_OK);
	dg_msg_clear(&v);

	/* A valid ATTEST (with a live nonce) cut short at several places. */
	get_nonce(&a, &rd);
	build_attest(&a, &rd, &m);
	ck_assert_int_eq(dg_wire_encode(&m, &bytes, &len), DG_OK);
	dg_msg_clear(&m);
	static const size_t keep[] = {0, 1, 10, 100};
	for (size_t i = 0; i < sizeof keep / sizeof keep[0] + 1; i++) {
		size_t n = i < sizeof keep / sizeof keep[0] ? keep[i] : len - 1;
		rpc_raw(bytes, n, &v);
		ck_assert_int_eq(v.type, DG_MSG_ERROR);
		dg_msg_clear(&v);
	}

	/* {"t": ATTEST, "log": <byte string header claiming 2^40 bytes>}. */
	static const uint8_t huge[] = {0xa2, 0x61, 't', 0x07, 0x63, 'l', 'o', 'g',
	                               0x5b, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
	                               0xde, 0xad};
	rpc_raw(huge, sizeof huge, &v);
	ck_assert_int_eq(v.type, DG_MSG_ERROR);
	dg_msg_clear(&v);
	ck_assert_int_eq(kill(verifier_pid, 0), 0);

	/* The nonce issued above is still live and the intact message still passes. */
	rpc_raw(bytes, len, &v);
	expect_pass_verdict(&a, &rd, &v);
	dg_msg_clear(&v);
	free(bytes);
	expect_honest_pass(&a);
}
END_TEST

/* 12. The same agent id from another TPM (or with another AK) is refused. */
START_TEST(reenroll_other_identity_refused)
{
	struct agent a;
	pid_t pid_b;
	agent_init(&a, "t-reenroll");
	measure(&a, allowed[0]);
	expect_honest_pass(&a);
	struct dg_tpm *tpm_b = open_tpm(tpm_b_dir, &pid_b, ek_b, ek_b_len, ak_b, ak_b_len);
	ck_assert_int_eq(enroll_with(a.id, tpm_b, ek_b, ek_b_len, ak_b, ak_b_len), DG_ERR_EXISTS);
	ck_assert_int_eq(enroll_with(a.id, tpm_a, ek_a, ek_a_len, ak_b, ak_b_len), DG_ERR_EXISTS);
	ck_assert_int_eq(enroll_with(a.id, tpm_b, ek_b, ek_b_len, ak_a, ak_a_len), DG_ERR_EXISTS);
	dg_tpm_close(tpm_b);
	tu_swtpm_stop(pid_b);
	/* The enrolled identity is untouched and keeps its position. */
	measure(&a, allowed[1]);
	expect_honest_pass(&a);
	/* Re-enrolling with the same identity is allowed and keeps the replay state. */
	ck_assert_int_eq(enroll_with(a.id, tpm_a, ek_a, ek_a_len, ak_a, ak_a_len), DG_OK);
	struct round rd;
	get_nonce(&a, &rd);
	ck_assert_uint_eq(rd.log_from, 2);
	expect_honest_pass(&a);
}
END_TEST

/* 13. Entries sent from a position other than the verifier's. */
START_TEST(log_from_mismatch_is_gap)
{
	struct agent a;
	struct round rd;
	struct dg_msg m, v;
	agent_init(&a, "t-gap");
	measure(&a, allowed[0]);
	measure(&a, allowed[1]);
	expect_honest_pass(&a);
	measure(&a, allowed[2]);

	/* Resending everything from 0, or skipping ahead past the new entry. */
	static const uint64_t froms[] = {0, 1, 3};
	for (size_t i = 0; i < sizeof froms / sizeof froms[0]; i++) {
		get_nonce(&a, &rd);
		ck_assert_uint_eq(rd.log_from, 2);
		rd.log_from = froms[i];
		build_attest(&a, &rd, &m);
		rpc(&m, &v);
		dg_msg_clear(&m);
		expect_fail(&v, "log-gap");
	}
	expect_honest_pass(&a);
}
END_TEST

/* 14. A secret sealed in one round opens only with that round's nonce and
 * lease, for that agent, and only in that agent's TPM: relayed to another
 * TPM it yields nothing. */
START_TEST(sealed_secret_bound_to_round)
{
	struct agent a;
	struct round r1, r2;
	struct dg_msg v1, v2;
	uint8_t pt[256];
	size_t pt_len;
	pid_t pid_b;
	agent_init(&a, "t-rounds");
	measure(&a, allowed[0]);
	honest_round(&a, &r1, &v1);
	expect_pass_verdict(&a, &r1, &v1);
	honest_round(&a, &r2, &v2);
	expect_pass_verdict(&a, &r2, &v2);
	ck_assert(memcmp(r1.nonce, r2.nonce, 32) != 0);

	const struct dg_named_blob *s1 = &v1.sealed[0], *s2 = &v2.sealed[0];
	uint32_t l1 = v1.lease_ms, l2 = v2.lease_ms;
	ck_assert_int_eq(unseal_with(a.id, s1, r2.nonce, l1, tpm_a, pt, sizeof pt, &pt_len),
	                 DG_ERR_CRYPTO);
	ck_assert_int_eq(unseal_with(a.id, s2, r1.nonce, l2, tpm_a, pt, sizeof pt, &pt_len),
	                 DG_ERR_CRYPTO);
	ck_assert_int_eq(unseal_with(a.id, s1, r1.nonce, l1 + 1, tpm_a, pt, sizeof pt, &pt_len),
	                 DG_ERR_CRYPTO);
	ck_assert_int_eq(unseal_with("t-other", s1, r1.nonce, l1, tpm_a, pt, sizeof pt, &pt_len),
	                 DG_ERR_CRYPTO);
	struct dg_tpm *tpm_b = open_tpm(tpm_b_dir, &pid_b, ek_b, ek_b_len, ak_b, ak_b_len);
	ck_assert_int_eq(unseal_with(a.id, s1, r1.nonce, l1, tpm_b, pt, sizeof pt, &pt_len),
	                 DG_ERR_CRYPTO);
	dg_tpm_close(tpm_b);
	tu_swtpm_stop(pid_b);
	/* and each with its own round's nonce and lease, in its own TPM, still opens */
	ck_assert_int_eq(unseal_with(a.id, s1, r1.nonce, l1, tpm_a, pt, sizeof pt, &pt_len), DG_OK);
	ck_assert_int_eq(unseal_with(a.id, s2, r2.nonce, l2, tpm_a, pt, sizeof pt, &pt_len), DG_OK);
	dg_msg_clear(&v1);
	dg_msg_clear(&v2);
}
END_TEST

/* Power-cycle machine A: swtpm restarts on its state (TPM Reset: PCRs cleared,
 * resetCount up) and the agent starts a new log, as agent_reconcile does. */
static void
reboot(struct agent *a)
{
	dg_tpm_close(tpm_a);
	tpm_a = NULL;
	tu_swtpm_stop(swtpm_a_pid);
	tpm_a = open_tpm(tpm_a_dir, &swtpm_a_pid, ek_a, ek_a_len, ak_a, ak_a_len);
	a->n = 0;
	a->off[0] = 0;
}

/* The agent's rule (dg_agent_attest) for where to send from after NONCE. */
static uint64_t
agent_from(const struct agent *a, uint64_t log_from)
{
	return log_from <= a->n ? log_from : 0;
}

/* 15. A reboot: the new boot's log replays from zero; the old boot's drift is gone. */
START_TEST(reboot_restarts_replay)
{
	struct agent a;
	struct round rd;
	struct dg_msg m, v;
	uint8_t d[32];
	agent_init(&a, "t-reboot");
	measure(&a, allowed[0]);
	file_digest("/tmp/evil", d);
	measure_digest(&a, "/tmp/evil", d);
	honest_round(&a, &rd, &v);
	expect_fail(&v, "unknown-file");

	reboot(&a);
	measure(&a, allowed[0]);
	get_nonce(&a, &rd);
	ck_assert_uint_eq(rd.log_from, 2); /* the verifier cannot know yet */
	/* Sending from inside the old boot's range is refused without harm ... */
	rd.log_from = 1;
	build_attest(&a, &rd, &m);
	rpc(&m, &v);
	dg_msg_clear(&m);
	expect_fail(&v, "log-gap");
	/* ... and the agent's rule (position beyond its log: from 0) passes. */
	get_nonce(&a, &rd);
	rd.log_from = agent_from(&a, rd.log_from);
	ck_assert_uint_eq(rd.log_from, 0);
	build_attest(&a, &rd, &m);
	rpc(&m, &v);
	dg_msg_clear(&m);
	expect_pass_verdict(&a, &rd, &v);
	dg_msg_clear(&v);
	get_nonce(&a, &rd);
	ck_assert_uint_eq(rd.log_from, 1);
}
END_TEST

/* 16. A reboot after which the new log is already longer than the old position:
 * an agent following its rule sends from the stale position; the verifier
 * answers log-gap once, voids the old position, and the next round passes. */
START_TEST(reboot_with_longer_log_recovers)
{
	struct agent a;
	struct round rd;
	struct dg_msg m, v;
	agent_init(&a, "t-reboot2");
	measure(&a, allowed[0]);
	expect_honest_pass(&a);
	reboot(&a);
	measure(&a, allowed[0]);
	measure(&a, allowed[1]);
	bool passed = false;
	for (int i = 0; i < 2 && !passed; i++) {
		get_nonce(&a, &rd);
		rd.log_from = agent_from(&a, rd.log_from);
		build_attest(&a, &rd, &m);
		rpc(&m, &v);
		dg_msg_clear(&m);
		passed = v.type == DG_MSG_VERDICT && v.pass;
		if (!passed)
			fprintf(stderr, "reboot round %d from %llu: %s: %s\n", i,
			        (unsigned long long)rd.log_from, v.n_reasons ? v.reasons[0].code : "?",
			        v.n_reasons ? v.reasons[0].detail : "");
		dg_msg_clear(&v);
	}
	ck_assert_msg(passed, "an honest agent never passes again after a reboot");
}
END_TEST

/* 18. (PostgreSQL only) Two verifiers on one state. A nonce the suite's
 * verifier issued is answered at a second verifier, which passes the round
 * from the position the first stored; the same ATTEST is then refused
 * ("nonce") at both; and the first continues from what the second stored. */
START_TEST(pg_nonce_single_use_across_verifiers)
{
	struct agent a;
	struct round rd;
	struct dg_msg m, v;
	char url_a[64], url_b[64], log_path[4200];
	nng_socket sock_a = sock, sock_b;
	pid_t pid_b = 0;
	unsigned seed = (unsigned)getpid() ^ 0xb0b;

	agent_init(&a, "t-pg-two");
	measure(&a, allowed[0]);
	expect_honest_pass(&a);

	/* Verifier B on the same database (start_verifier's way, another port). */
	snprintf(url_a, sizeof url_a, "%s", verifier_url);
	snprintf(log_path, sizeof log_path, "%s/verifier-b.log", work);
	for (int attempt = 0; attempt < 20 && pid_b == 0; attempt++) {
		int port = 10000 + (int)(rand_r(&seed) % 22000);
		if (port_accepts(port))
			continue;
		snprintf(url_b, sizeof url_b, "tcp://127.0.0.1:%d", port);
		pid_b = spawn_verifier(url_b, log_path);
		for (int i = 0; i < 500 && !port_accepts(port); i++) {
			if (waitpid(pid_b, NULL, WNOHANG) == pid_b) {
				pid_b = 0;
				break;
			}
			usleep(10000);
		}
	}
	ck_assert_int_gt(pid_b, 0);
	snprintf(verifier_url, sizeof verifier_url, "%s", url_b);
	open_socket(&sock_b);

	measure(&a, allowed[1]);
	get_nonce(&a, &rd); /* at A */
	ck_assert_uint_eq(rd.log_from, 1);
	build_attest(&a, &rd, &m);
	sock = sock_b;
	rpc(&m, &v);
	expect_pass_verdict(&a, &rd, &v);
	dg_msg_clear(&v);
	rpc(&m, &v); /* the same ATTEST again at B */
	expect_fail(&v, "nonce");
	sock = sock_a;
	rpc(&m, &v); /* and at A, which issued the nonce */
	expect_fail(&v, "nonce");
	dg_msg_clear(&m);
	/* A re-reads the agent: B's position, not the one A remembers. */
	get_nonce(&a, &rd);
	ck_assert_uint_eq(rd.log_from, 2);

	nng_close(sock_b);
	kill(pid_b, SIGTERM);
	waitpid(pid_b, NULL, 0);
	snprintf(verifier_url, sizeof verifier_url, "%s", url_a);
}
END_TEST

static Suite *
attest_suite(void)
{
	Suite *s = suite_create("attest");
	TCase *tc = tcase_create("protocol");
	tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
	tcase_add_checked_fixture(tc, test_setup, test_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, honest_round_releases_secret);
	tcase_add_test(tc, tampered_entry_is_pcr_mismatch);
	tcase_add_test(tc, truncated_log_is_malformed);
	tcase_add_test(tc, unextended_entry_is_pcr_mismatch);
	tcase_add_test(tc, wrong_nonce);
	tcase_add_test(tc, replayed_attest);
	tcase_add_test(tc, quote_from_other_ak);
	tcase_add_test(tc, wrong_pcr_selection);
	tcase_add_test(tc, swapped_bind_key);
	tcase_add_test(tc, unknown_file_is_sticky);
	tcase_add_test(tc, changed_file_is_hash_mismatch);
	tcase_add_test(tc, malformed_cbor);
	tcase_add_test(tc, reenroll_other_identity_refused);
	tcase_add_test(tc, log_from_mismatch_is_gap);
	tcase_add_test(tc, sealed_secret_bound_to_round);
	tcase_add_test(tc, reboot_restarts_replay);
	tcase_add_test(tc, reboot_with_longer_log_recovers);
	if (getenv("DG_TEST_PG_URI") != NULL)
		tcase_add_test(tc, pg_nonce_single_use_across_verifiers);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(attest_suite());
	srunner_run_all(sr, CK_ENV);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 && !verifier_failed ? EXIT_SUCCESS : EXIT_FAILURE;
}
