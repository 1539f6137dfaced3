/*
 * driftgate-bench: the project's hot paths against the tools an operator
 * would otherwise use, each pair measured in the same run on the same input.
 * One line per comparison:
 *
 *   <name>: ours <value> <unit>, peer <value> <unit>, ratio <r>
 *
 * ratio > 1 means ours is better (higher rate, or lower time). Every contender
 * gets the same warm-up and the best of N runs. Needs sha256sum, openssl,
 * xargs, evmctl, swtpm and tpm2_pcrextend on PATH.
 *
 *   tree-hash-vs-sha256sum      dg_fsdigest_tree (the baseline generator's
 *   tree-hash-vs-openssl        path) vs sha256sum / openssl dgst -sha256 over
 *                               the same file list (xargs -0, one process)
 *   replay-appraise-vs-evmctl   baseline parse + log parse + replay + appraisal
 *                               of 100,000 ima-ng entries vs evmctl
 *                               ima_measurement replaying the same log
 *   quote-verify-vs-openssl-rsa-verify
 *                               dg_quote_verify of a real swtpm quote vs the
 *                               bare RSA-2048 PKCS#1 v1.5 SHA-256 verify
 *   log-append-extend           the agent's durable append + PCR extend vs
 *                               tpm2_pcrextend run per measurement
 *   rootfs-manifest-vs-sha256sum
 *                               dg_manifest_build (what the OCI hook runs on a
 *                               container's rootfs) over a large real tree
 *                               ($DG_BENCH_ROOTFS, default
 *                               /usr/lib/x86_64-linux-gnu) vs `find TREE
 *                               -type f -print0 | xargs -0 sha256sum`
 *
 * Container benchmarks with real processes (exec latency under the agent's
 * fanotify watch, detection latency) are in container_bench.sh.
 */
#include "driftgate/err.h"
#include "driftgate/fsdigest.h"
#include "driftgate/fswalk.h"
#include "driftgate/log.h"
#include "driftgate/manifest.h"
#include "driftgate/policy.h"
#include "driftgate/quote.h"
#include "driftgate/release.h"
#include "driftgate/seal.h"
#include "driftgate/tpmkey.h"
#include "attest.h"
#include "mlog.h"
#include "testutil.h"
#include "tpm.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <tss2/tss2_mu.h>
#include <unistd.h>

/* Tree: 64 x 4 MiB plus 2000 small files spread over 20 directories. */
#define TREE_BIG_FILES 64
#define TREE_BIG_SIZE (4u << 20)
#define TREE_SMALL_DIRS 20
#define TREE_SMALL_FILES 2000
#define TREE_RUNS 3

#define LOG_ENTRIES 100000
#define LOG_PCR 10
#define OURS_REPLAY_RUNS 5
#define EVMCTL_RUNS 3

#define QUOTE_PCR 16
#define RELEASE_PCR 13 /* an agent PCR (8..15) nothing else here extends */
#define QUOTE_ROUNDS 4 /* alternating rounds of each contender */
#define QUOTE_ROUND_SECONDS 0.5

#define EXTEND_PCR 13 /* the agent's default PCR */
#define EXTEND_OURS 200
#define EXTEND_PEER 40

#define ROOTFS_DEFAULT "/usr/lib/x86_64-linux-gnu"
#define ROOTFS_RUNS 3

static char *workdir;

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "driftgate-bench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	if (workdir != NULL)
		tu_sh("rm -rf '%s'", workdir);
	exit(1);
}

#define CHECK_OK(expr)                                                                  \
	do {                                                                            \
		int rv_ = (expr);                                                       \
		if (rv_ != DG_OK)                                                       \
			die("%s:%d: %s: %s", __FILE__, __LINE__, #expr, dg_strerror(rv_)); \
	} while (0)

static double
now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
hex_of(const uint8_t *buf, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[buf[i] >> 4];
		out[2 * i + 1] = digits[buf[i] & 15];
	}
	out[2 * len] = '\0';
}

/* Deterministic filler: xorshift64*. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t
rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static void
rng_fill(uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = rng();
		memcpy(buf + i, &v, len - i < 8 ? len - i : 8);
	}
}

/* Time a shell command; dies unless it exits with want. */
static double
time_sh(int want, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static double
time_sh(int want, const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof cmd)
		die("command too long");
	double t0 = now();
	int st = tu_sh("%s", cmd);
	double t = now() - t0;
	if (st != want)
		die("`%s` exited %d, expected %d", cmd, st, want);
	return t;
}

static double
min_d(double a, double b)
{
	return a < b ? a : b;
}

static void
report(const char *name, double ours, double peer, const char *unit, bool higher_better)
{
	double ratio = higher_better ? ours / peer : peer / ours;
	printf("%s: ours %.4g %s, peer %.4g %s, ratio %.2f\n", name, ours, unit, peer, unit, ratio);
	fflush(stdout);
}

/* ---------------------------------------------------------------- header */

static void
header(void)
{
	char model[256] = "unknown", line[4096];
	bool sha_ni = false;
	FILE *f = fopen("/proc/cpuinfo", "r");
	while (f != NULL && fgets(line, sizeof line, f) != NULL) {
		if (strncmp(line, "model name", 10) == 0 && strcmp(model, "unknown") == 0) {
			char *v = strchr(line, ':');
			if (v != NULL) {
				snprintf(model, sizeof model, "%s", v + 2);
				model[strcspn(model, "\n")] = '\0';
			}
		}
		if (strncmp(line, "flags", 5) == 0 && strstr(line, " sha_ni") != NULL)
			sha_ni = true;
	}
	if (f != NULL)
		fclose(f);
	struct utsname u;
	uname(&u);
	printf("# driftgate-bench: %s, %ld online CPUs, SHA-NI %s, Linux %s, %s\n", model,
	       sysconf(_SC_NPROCESSORS_ONLN), sha_ni ? "yes" : "no", u.release,
	       OpenSSL_version(OPENSSL_VERSION));
	printf("# workdir %s; best of N runs per contender, same input, same run; "
	       "ratio > 1 means ours is better\n",
	       workdir);
	fflush(stdout);
}

/* ---------------------------------------------------------------- tree hash */

struct tree_out {
	FILE *out;
	size_t files;
};

/* Print what sha256sum prints, so both do the same work. */
static int
tree_line(const char *path, const uint8_t digest[32], void *arg)
{
	struct tree_out *o = arg;
	char hex[65];
	hex_of(digest, 32, hex);
	o->files++;
	return fprintf(o->out, "%s  %s\n", hex, path) > 0 ? DG_OK : DG_ERR_IO;
}

struct list_out {
	FILE *f;
	size_t files;
	unsigned long long bytes;
};

static int
list_file(const char *path, void *arg)
{
	struct list_out *l = arg;
	struct stat st;
	if (stat(path, &st) != 0)
		return DG_ERR_IO;
	l->files++;
	l->bytes += (unsigned long long)st.st_size;
	return fwrite(path, 1, strlen(path) + 1, l->f) == strlen(path) + 1 ? DG_OK : DG_ERR_IO;
}

static void
write_file(const char *path, const uint8_t *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0)
		die("write %s: %s", path, strerror(errno));
}

static double
time_ours_tree(const char *root, const char *out_path, size_t want_files)
{
	struct tree_out o = {.out = fopen(out_path, "w")};
	char failed[PATH_MAX];
	if (o.out == NULL)
		die("open %s", out_path);
	double t0 = now();
	CHECK_OK(dg_fsdigest_tree(root, 0, tree_line, &o, failed, sizeof failed));
	if (fflush(o.out) != 0)
		die("write %s", out_path);
	double t = now() - t0;
	fclose(o.out);
	if (o.files != want_files)
		die("dg_fsdigest_tree reported %zu files, want %zu", o.files, want_files);
	return t;
}

static void
bench_tree(void)
{
	char root[PATH_MAX], path[PATH_MAX + 64], list[PATH_MAX];
	uint8_t *buf = malloc(TREE_BIG_SIZE);
	if (buf == NULL)
		die("out of memory");

	snprintf(root, sizeof root, "%s/tree", workdir);
	snprintf(path, sizeof path, "%s/big", root);
	if (mkdir(root, 0755) != 0 || mkdir(path, 0755) != 0)
		die("mkdir %s: %s", path, strerror(errno));
	for (int i = 0; i < TREE_BIG_FILES; i++) {
		snprintf(path, sizeof path, "%s/big/blob%02d.bin", root, i);
		rng_fill(buf, TREE_BIG_SIZE);
		write_file(path, buf, TREE_BIG_SIZE);
	}
	for (int d = 0; d < TREE_SMALL_DIRS; d++) {
		snprintf(path, sizeof path, "%s/lib%02d", root, d);
		if (mkdir(path, 0755) != 0)
			die("mkdir %s: %s", path, strerror(errno));
	}
	for (int i = 0; i < TREE_SMALL_FILES; i++) {
		size_t len = 256 + rng() % (32 * 1024); /* 256 B .. 32 KiB */
		snprintf(path, sizeof path, "%s/lib%02d/module_%04d.py", root, i % TREE_SMALL_DIRS, i);
		rng_fill(buf, len);
		write_file(path, buf, len);
	}
	free(buf);

	/* The same list, in the same order, for every contender. */
	snprintf(list, sizeof list, "%s/files.list0", workdir);
	struct list_out l = {.f = fopen(list, "w")};
	if (l.f == NULL)
		die("open %s", list);
	CHECK_OK(dg_fswalk(root, list_file, &l));
	fclose(l.f);
	double mb = (double)l.bytes / 1e6;
	printf("# tree: %zu files, %.1f MB (%d x %u MiB + %d files of 256 B..32 KiB), page cache "
	       "warm, best of %d; ours = dg_fsdigest_tree, %ld threads, printing sha256sum's lines\n",
	       l.files, mb, TREE_BIG_FILES, TREE_BIG_SIZE >> 20, TREE_SMALL_FILES, TREE_RUNS,
	       sysconf(_SC_NPROCESSORS_ONLN));
	fflush(stdout);

	/* One xargs batch: the whole list fits in one command line. */
	if (tu_sh("test \"$(xargs -0 -s 1000000 sh -c 'echo $#' sh < '%s')\" = %zu", list,
	          l.files) != 0)
		die("xargs would split the file list");

	/* Warm the cache, and check that ours prints exactly what sha256sum does. */
	char ours_out[PATH_MAX + 16], peer_out[PATH_MAX + 16];
	snprintf(ours_out, sizeof ours_out, "%s/ours.sums", workdir);
	snprintf(peer_out, sizeof peer_out, "%s/peer.sums", workdir);
	time_ours_tree(root, ours_out, l.files);
	time_sh(0, "xargs -0 -s 1000000 sha256sum < '%s' > '%s'", list, peer_out);
	if (tu_sh("cmp -s '%s' '%s'", ours_out, peer_out) != 0)
		die("dg_fsdigest_tree and sha256sum disagree (%s vs %s)", ours_out, peer_out);

	double ours = 1e9, sum = 1e9, ossl = 1e9;
	for (int r = 0; r < TREE_RUNS; r++) {
		ours = min_d(ours, time_ours_tree(root, "/dev/null", l.files));
		sum = min_d(sum, time_sh(0, "xargs -0 -s 1000000 sha256sum < '%s' > /dev/null", list));
		ossl = min_d(ossl, time_sh(0, "xargs -0 -s 1000000 openssl dgst -sha256 < '%s' > /dev/null",
		                           list));
	}
	report("tree-hash-vs-sha256sum", mb / ours, mb / sum, "MB/s", true);
	report("tree-hash-vs-openssl", mb / ours, mb / ossl, "MB/s", true);
	tu_sh("rm -rf '%s' '%s' '%s' '%s'", root, list, ours_out, peer_out);
}

/* ---------------------------------------------------------------- replay + appraise */

static const char *const dirs[] = {
	"/usr/bin", "/usr/sbin", "/usr/lib/x86_64-linux-gnu", "/usr/libexec/driftgate",
	"/usr/lib/python3/dist-packages/requests", "/usr/lib/python3/dist-packages/urllib3/util",
	"/usr/share/perl/5.36.0/Unicode/Collate", "/opt/app/node_modules/lodash/fp",
	"/var/lib/containers/storage/overlay/4f1c2b7e9a/diff/usr/local/lib",
	"/etc/ssl/certs",
};
static const char *const stems[] = {"lib", "python3", "mod", "core", "helper", "index", "util"};
static const char *const exts[] = {".so.6", "", ".py", ".pm", ".js", ".pem", ".so"};

static void
make_path(size_t i, char *out, size_t cap)
{
	size_t d = i % (sizeof dirs / sizeof dirs[0]);
	size_t s = (i / 7) % (sizeof stems / sizeof stems[0]);
	snprintf(out, cap, "%s/%s-%05zu%s", dirs[d], stems[s], i, exts[(i / 3) % 7]);
}

struct replay_input {
	uint8_t *log;
	size_t log_len;
	char *policy;
	size_t policy_len;
	uint8_t pcr[DG_SHA256_LEN]; /* expected PCR LOG_PCR after replay */
};

/* The verifier parses a baseline once, when it loads its policy directory. */
static double
time_policy_parse(const struct replay_input *in, struct dg_policy **out)
{
	char err[256];
	double t0 = now();
	int rv = dg_policy_parse(in->policy, in->policy_len, out, err, sizeof err);
	double t = now() - t0;
	if (rv != DG_OK)
		die("baseline: %s: %s", dg_strerror(rv), err);
	if (dg_policy_allow_count(*out) != LOG_ENTRIES)
		die("baseline has %zu allow lines", dg_policy_allow_count(*out));
	return t;
}

/* Ours: what the verifier does with each new log, given a loaded baseline. */
static double
time_ours_replay(const struct replay_input *in, const struct dg_policy *p,
                 struct dg_replay *out)
{
	struct dg_log_reader r;
	struct dg_log_entry e;
	struct dg_replay s;
	struct dg_reason why;
	size_t n = 0;
	int rv;

	double t0 = now();
	dg_replay_init(&s);
	CHECK_OK(dg_log_reader_init(&r, in->log, in->log_len, DG_LOG_FORMAT_BINARY));
	while ((rv = dg_log_next(&r, &e)) == DG_OK) {
		CHECK_OK(dg_replay_extend(&s, &e));
		CHECK_OK(dg_policy_appraise(p, &e, &why));
		n++;
	}
	if (rv != DG_ERR_NOTFOUND)
		die("log entry %zu: %s", n, dg_strerror(rv));
	double t = now() - t0;
	dg_log_reader_fini(&r);
	if (n != LOG_ENTRIES || s.entries != LOG_ENTRIES)
		die("replayed %zu entries", n);
	if (out != NULL)
		dg_replay_copy(out, &s);
	dg_replay_fini(&s);
	return t;
}

static void
write_pcrs(const char *path, const struct dg_replay *s, int flip_pcr)
{
	FILE *f = fopen(path, "w");
	char hex[2 * DG_SHA256_LEN + 1];
	if (f == NULL)
		die("open %s", path);
	for (int i = 0; i < DG_LOG_MAX_PCR; i++) {
		uint8_t v[DG_SHA256_LEN];
		memcpy(v, s->sha256[i], sizeof v);
		if (i == flip_pcr)
			v[0] ^= 1;
		hex_of(v, sizeof v, hex);
		fprintf(f, "PCR-%02d: %s\n", i, hex);
	}
	if (fclose(f) != 0)
		die("write %s", path);
}

static void
bench_replay(void)
{
	struct replay_input in = {0};
	size_t log_cap = (size_t)LOG_ENTRIES * 256, pol_cap = (size_t)LOG_ENTRIES * 256 + 256;
	size_t *order = malloc(LOG_ENTRIES * sizeof *order);
	uint8_t (*digests)[32] = malloc((size_t)LOG_ENTRIES * 32);
	in.log = malloc(log_cap);
	in.policy = malloc(pol_cap);
	if (order == NULL || digests == NULL || in.log == NULL || in.policy == NULL)
		die("out of memory");

	/* The baseline lists files in path order, as the generator writes them;
	 * the log has them in (shuffled) execution order. */
	in.policy_len = (size_t)snprintf(in.policy, pol_cap,
	                                 "# bench baseline\ndriftgate-baseline 1\nname bench\n"
	                                 "agent node-*\nsecret disk-key\n");
	for (size_t i = 0; i < LOG_ENTRIES; i++) {
		char path[256];
		size_t n;
		make_path(i, path, sizeof path);
		rng_fill(digests[i], 32);
		CHECK_OK(dg_policy_format_allow(path, digests[i], in.policy + in.policy_len,
		                                pol_cap - in.policy_len, &n));
		in.policy_len += n;
		order[i] = i;
	}
	for (size_t i = LOG_ENTRIES - 1; i > 0; i--) {
		size_t j = rng() % (i + 1), tmp = order[i];
		order[i] = order[j];
		order[j] = tmp;
	}
	for (size_t k = 0; k < LOG_ENTRIES; k++) {
		char path[256];
		size_t n;
		make_path(order[k], path, sizeof path);
		CHECK_OK(dg_log_encode(LOG_PCR, DG_TEMPLATE_IMA_NG, "sha256", digests[order[k]], 32, path,
		                       NULL, 0, in.log + in.log_len, log_cap - in.log_len, &n));
		in.log_len += n;
	}
	free(order);
	free(digests);

	struct dg_policy *p = NULL, *q = NULL;
	double parse = time_policy_parse(&in, &p); /* warm-up */
	for (int i = 0; i < OURS_REPLAY_RUNS; i++) {
		parse = min_d(parse, time_policy_parse(&in, &q));
		dg_policy_free(q);
	}
	struct dg_replay s;
	dg_replay_init(&s);
	time_ours_replay(&in, p, &s); /* warm-up, and the PCR values for evmctl */

	char log_path[PATH_MAX], pcrs[PATH_MAX], bad_pcrs[PATH_MAX];
	snprintf(log_path, sizeof log_path, "%s/ima.log", workdir);
	snprintf(pcrs, sizeof pcrs, "%s/sha256.pcrs", workdir);
	snprintf(bad_pcrs, sizeof bad_pcrs, "%s/sha256-bad.pcrs", workdir);
	write_file(log_path, in.log, in.log_len);
	write_pcrs(pcrs, &s, -1);
	write_pcrs(bad_pcrs, &s, LOG_PCR);
	dg_replay_fini(&s);
	printf("# replay: %d ima-ng entries (%.1f MB, PCR %d, sha256 file digests, shuffled "
	       "against the baseline's order), baseline of %d allow lines (%.1f MB); ours = "
	       "dg_log_next + dg_replay_extend + dg_policy_appraise of every entry, in memory, best "
	       "of %d (dg_policy_parse of the baseline is done once at load, not timed: %.3f s); "
	       "peer = evmctl ima_measurement --pcrs sha256 on the log file (must exit 0; a wrong "
	       "PCR-%02d must fail it), best of %d\n",
	       LOG_ENTRIES, (double)in.log_len / 1e6, LOG_PCR, LOG_ENTRIES,
	       (double)in.policy_len / 1e6, OURS_REPLAY_RUNS, parse, LOG_PCR, EVMCTL_RUNS);
	fflush(stdout);

	/* The peer really compares: a wrong PCR-10 fails it. */
	time_sh(1, "evmctl ima_measurement --pcrs sha256,'%s' '%s' > /dev/null 2>&1", bad_pcrs,
	        log_path);
	double ours = 1e9, peer = 1e9;
	for (int i = 0; i < OURS_REPLAY_RUNS; i++)
		ours = min_d(ours, time_ours_replay(&in, p, NULL));
	for (int i = 0; i < EVMCTL_RUNS; i++)
		peer = min_d(peer, time_sh(0, "evmctl ima_measurement --pcrs sha256,'%s' '%s' "
		                              "> /dev/null 2>&1",
		                           pcrs, log_path));
	report("replay-appraise-vs-evmctl", ours, peer, "s", false);
	dg_policy_free(p);
	tu_sh("rm -f '%s' '%s' '%s'", log_path, pcrs, bad_pcrs);
	free(in.log);
	free(in.policy);
}

/* ---------------------------------------------------------------- TPM benches */

struct tpm_env {
	char dir[PATH_MAX];
	char tcti[128];
	pid_t pid;
	struct dg_tpm *tpm;
	uint8_t ak_pub[DG_TPMKEY_MAX_PUBLIC];
	size_t ak_pub_len;
};

static void
tpm_start(struct tpm_env *te)
{
	uint8_t ek_pub[DG_TPMKEY_MAX_PUBLIC];
	size_t ek_pub_len;
	int port;

	snprintf(te->dir, sizeof te->dir, "%s/swtpm", workdir);
	if (mkdir(te->dir, 0700) != 0)
		die("mkdir %s: %s", te->dir, strerror(errno));
	if (tu_swtpm_start(te->dir, &port, &te->pid) != 0)
		die("cannot start swtpm");
	snprintf(te->tcti, sizeof te->tcti, "swtpm:host=127.0.0.1,port=%d", port);
	CHECK_OK(dg_tpm_open(te->tcti, &te->tpm));
	te->ak_pub_len = sizeof te->ak_pub;
	ek_pub_len = sizeof ek_pub;
	CHECK_OK(dg_tpm_keys(te->tpm, DG_TPM_EK_HANDLE_DEFAULT, DG_TPM_AK_HANDLE_DEFAULT, ek_pub,
	                     &ek_pub_len, te->ak_pub, &te->ak_pub_len));
}

static void
tpm_stop(struct tpm_env *te)
{
	dg_tpm_close(te->tpm);
	tu_swtpm_stop(te->pid);
}

static int
raw_verify(EVP_PKEY *ak, const uint8_t *sig, size_t sig_len, const uint8_t *msg, size_t len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, ak) == 1 &&
	         EVP_DigestVerify(ctx, sig, sig_len, msg, len) == 1;
	EVP_MD_CTX_free(ctx);
	return ok ? DG_OK : DG_ERR_SIGNATURE;
}

static void
bench_quote(struct tpm_env *te)
{
	uint8_t digest[32], pcr[32], qual[DG_QUOTE_NONCE_LEN];
	uint8_t attest[DG_QUOTE_MAX_ATTEST], sig[DG_QUOTE_MAX_SIG];
	size_t attest_len, sig_len;
	EVP_PKEY *ak = NULL;

	rng_fill(digest, sizeof digest);
	CHECK_OK(dg_tpm_extend(te->tpm, QUOTE_PCR, digest));
	CHECK_OK(dg_tpm_pcr_read(te->tpm, QUOTE_PCR, pcr));
	if (RAND_bytes(qual, sizeof qual) != 1) /* the quote's extraData is the nonce */
		die("RAND_bytes");
	CHECK_OK(dg_tpm_quote(te->tpm, QUOTE_PCR, qual, sizeof qual, attest, sizeof attest,
	                      &attest_len, sig, sizeof sig, &sig_len));
	CHECK_OK(dg_tpmkey_import(te->ak_pub, te->ak_pub_len, DG_TPMKEY_AK, &ak, NULL, NULL));

	/* The bare signature inside the TPMT_SIGNATURE. */
	TPMT_SIGNATURE ts;
	size_t off = 0;
	if (Tss2_MU_TPMT_SIGNATURE_Unmarshal(sig, sig_len, &off, &ts) != TSS2_RC_SUCCESS ||
	    ts.sigAlg != TPM2_ALG_RSASSA)
		die("unexpected quote signature");
	const uint8_t *raw = ts.signature.rsassa.sig.buffer;
	size_t raw_len = ts.signature.rsassa.sig.size;

	struct dg_quote_clock clock, last;
	struct dg_quote_expect expect = {
		.qualifying = qual, .qualifying_len = sizeof qual, .pcr = QUOTE_PCR, .pcr_value = pcr,
	};
	CHECK_OK(dg_quote_verify(ak, attest, attest_len, sig, sig_len, &expect, &last));
	expect.last = &last; /* the full check, clock comparison included */
	CHECK_OK(dg_quote_verify(ak, attest, attest_len, sig, sig_len, &expect, &clock));
	CHECK_OK(raw_verify(ak, raw, raw_len, attest, attest_len));
	/* Both really check: a flipped attest byte fails each. */
	attest[attest_len - 1] ^= 1;
	if (dg_quote_verify(ak, attest, attest_len, sig, sig_len, &expect, &clock) == DG_OK ||
	    raw_verify(ak, raw, raw_len, attest, attest_len) == DG_OK)
		die("a tampered quote verified");
	attest[attest_len - 1] ^= 1;

	printf("# quote: one swtpm quote of PCR %d (RSA-2048 AK, RSASSA-SHA256), verified in a "
	       "loop; ours = dg_quote_verify (unmarshal, checks, signature, PCR digest, clock); "
	       "peer = EVP_DigestVerifyInit+EVP_DigestVerify on the same key and bytes; best of %d "
	       "alternating %.1f s rounds, one thread\n",
	       QUOTE_PCR, QUOTE_ROUNDS, QUOTE_ROUND_SECONDS);
	fflush(stdout);
	double ours = 0, peer = 0;
	for (int r = 0; r < QUOTE_ROUNDS; r++) {
		unsigned long n = 0;
		double t0 = now(), t;
		do {
			for (int k = 0; k < 64; k++, n++)
				CHECK_OK(dg_quote_verify(ak, attest, attest_len, sig, sig_len, &expect, &clock));
		} while ((t = now() - t0) < QUOTE_ROUND_SECONDS);
		if ((double)n / t > ours)
			ours = (double)n / t;
		n = 0;
		t0 = now();
		do {
			for (int k = 0; k < 64; k++, n++)
				CHECK_OK(raw_verify(ak, raw, raw_len, attest, attest_len));
		} while ((t = now() - t0) < QUOTE_ROUND_SECONDS);
		if ((double)n / t > peer)
			peer = (double)n / t;
	}
	report("quote-verify-vs-openssl-rsa-verify", ours, peer, "verifies/s", true);
	EVP_PKEY_free(ak);
}

static void
bench_extend(struct tpm_env *te)
{
	char log_path[PATH_MAX];
	struct dg_mlog *l = NULL;
	uint8_t entry[DG_LOG_MAX_PATH + 256], digest[32], th[32];
	size_t entry_len;

	snprintf(log_path, sizeof log_path, "%s/agent.log", workdir);
	CHECK_OK(dg_mlog_open(log_path, &l));
	printf("# extend: ours = dg_log_encode + dg_mlog_append (write + fdatasync on %s) + "
	       "dg_tpm_extend of PCR %d over one open TCTI, %d measurements; peer = one "
	       "tpm2_pcrextend process per measurement (no log at all), %d measurements; swtpm\n",
	       "the workdir's filesystem", EXTEND_PCR, EXTEND_OURS, EXTEND_PEER);
	fflush(stdout);

	double t0 = now();
	for (int i = 0; i < EXTEND_OURS; i++) {
		char path[256];
		make_path((size_t)i, path, sizeof path);
		rng_fill(digest, sizeof digest);
		CHECK_OK(dg_log_encode(EXTEND_PCR, DG_TEMPLATE_IMA_NG, "sha256", digest, 32, path, NULL,
		                       0, entry, sizeof entry, &entry_len));
		CHECK_OK(dg_mlog_append(l, entry, entry_len));
		CHECK_OK(dg_mlog_entry_digest(l, dg_mlog_count(l) - 1, th));
		CHECK_OK(dg_tpm_extend(te->tpm, EXTEND_PCR, th));
	}
	double ours = (double)EXTEND_OURS / (now() - t0);
	/* The log and the PCR agree: the work really happened. */
	uint8_t value[32];
	uint64_t in_pcr;
	CHECK_OK(dg_tpm_pcr_read(te->tpm, EXTEND_PCR, value));
	CHECK_OK(dg_mlog_reconcile(l, value, &in_pcr));
	if (in_pcr != EXTEND_OURS)
		die("PCR holds %llu of %d entries", (unsigned long long)in_pcr, EXTEND_OURS);
	dg_mlog_close(l);

	if (setenv("TPM2TOOLS_TCTI", te->tcti, 1) != 0)
		die("setenv");
	t0 = now();
	for (int i = 0; i < EXTEND_PEER; i++) {
		char arg[128], hex[65];
		rng_fill(digest, sizeof digest);
		hex_of(digest, sizeof digest, hex);
		snprintf(arg, sizeof arg, "%d:sha256=%s", EXTEND_PCR, hex);
		pid_t pid = fork();
		if (pid < 0)
			die("fork");
		if (pid == 0) {
			execlp("tpm2_pcrextend", "tpm2_pcrextend", arg, (char *)NULL);
			_exit(127);
		}
		int st;
		if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			die("tpm2_pcrextend failed");
	}
	double peer = (double)EXTEND_PEER / (now() - t0);
	report("log-append-extend", ours, peer, "measurements/s", true);
	unlink(log_path);
}


/* ---------------------------------------------------------------- rootfs manifest */

struct rootfs_count {
	dev_t dev;
	size_t files, links;
	unsigned long long bytes;
};

/* What the manifest covers: regular files and symlinks on the root's filesystem. */
static void
rootfs_count(const char *dir, struct rootfs_count *rc)
{
	char cmd[PATH_MAX + 128], line[32];
	struct stat st;
	if (lstat(dir, &st) != 0)
		die("%s: %s", dir, strerror(errno));
	snprintf(cmd, sizeof cmd, "find '%s' -xdev -type f -printf '%%s\\n'", dir);
	FILE *p = popen(cmd, "r");
	while (p != NULL && fgets(line, sizeof line, p) != NULL) {
		rc->files++;
		rc->bytes += strtoull(line, NULL, 10);
	}
	if (p == NULL || pclose(p) != 0)
		die("%s failed", cmd);
	snprintf(cmd, sizeof cmd, "find '%s' -xdev -type l | wc -l", dir);
	p = popen(cmd, "r");
	if (p == NULL || fgets(line, sizeof line, p) == NULL || pclose(p) != 0)
		die("%s failed", cmd);
	rc->links = strtoull(line, NULL, 10);
}

static double
time_ours_manifest(const char *root, size_t want_lines)
{
	char *text = NULL;
	size_t len = 0, lines = 0;
	double t0 = now();
	CHECK_OK(dg_manifest_build(root, &text, &len));
	double t = now() - t0;
	for (const char *p = text; (p = memchr(p, '\n', len - (size_t)(p - text))) != NULL; p++)
		lines++;
	free(text);
	if (lines != want_lines)
		die("dg_manifest_build listed %zu entries under %s, want %zu", lines, root, want_lines);
	return t;
}

static void
bench_rootfs(void)
{
	const char *root = getenv("DG_BENCH_ROOTFS");
	struct rootfs_count rc = {0};
	if (root == NULL || root[0] == '\0')
		root = ROOTFS_DEFAULT;
	rootfs_count(root, &rc);
	double mb = (double)rc.bytes / 1e6;
	if (rc.files == 0)
		die("%s holds no files", root);
	printf("# rootfs: %s, %zu files (%.1f MB) + %zu symlinks, page cache warm, best of %d; "
	       "ours = dg_manifest_build (walk, hash, sort, manifest text); peer = find -type f "
	       "-print0 | xargs -0 sha256sum > /dev/null\n",
	       root, rc.files, mb, rc.links, ROOTFS_RUNS);
	fflush(stdout);
	/* Warm the cache (both contenders read the same files). */
	time_ours_manifest(root, rc.files + rc.links);
	time_sh(0, "find '%s' -type f -print0 | xargs -0 sha256sum > /dev/null", root);
	double ours = 1e9, peer = 1e9;
	for (int r = 0; r < ROOTFS_RUNS; r++) {
		ours = min_d(ours, time_ours_manifest(root, rc.files + rc.links));
		peer = min_d(peer, time_sh(0, "find '%s' -type f -print0 | xargs -0 sha256sum "
		                              "> /dev/null", root));
	}
	report("rootfs-manifest-vs-sha256sum", mb / ours, mb / peer, "MB/s", true);
}

/* driftgate-bench [GROUP...]: with arguments, only those groups (tree,
 * replay, rootfs, quote, extend). */
static int bench_argc;
static char **bench_argv;

static bool
want(const char *group)
{
	if (bench_argc < 2)
		return true;
	for (int i = 1; i < bench_argc; i++)
		if (strcmp(bench_argv[i], group) == 0)
			return true;
	return false;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Percentile p (0..100) of n sorted values. */
static double
pct(const double *sorted, size_t n, double p)
{
	size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
	return sorted[i < n ? i : n - 1];
}

/* One request/reply through the verifier's handler, as the server would. */
static void
verifier_call(struct dg_verifier *v, const struct dg_msg *req, struct dg_msg *reply,
              enum dg_msg_type want)
{
	dg_verifier_handle(v, req, reply);
	if (reply->type != want)
		die("verifier answered %s: %s", dg_msg_type_name(reply->type), reply->message);
}

/*
 * Release latency: a fresh attestation round that asks for one secret, from
 * the nonce request to the plaintext in hand: nonce, TPM quote, TPM certify of
 * the binding key, the verifier's appraisal and sealing, TPM ECDH_ZGen and
 * unsealing. The verifier runs in-process (its handler, no sockets: nng adds
 * ~0.1 ms per round trip on loopback); the TPM is swtpm.
 */
static void
bench_release(struct tpm_env *te)
{
	enum { N = 100 };
	char pol[1024], sec[1024], path[1100], err[512] = "";
	uint8_t ek[DG_TPMKEY_MAX_PUBLIC], ak[DG_TPMKEY_MAX_PUBLIC], bind[DG_TPMKEY_MAX_PUBLIC];
	uint8_t cred[64], att[DG_QUOTE_MAX_ATTEST], sig[DG_QUOTE_MAX_SIG];
	uint8_t batt[DG_QUOTE_MAX_ATTEST], bsig[DG_QUOTE_MAX_SIG], point[DG_SEAL_POINT_LEN], z[32];
	uint8_t aad[DG_RELEASE_AAD_MAX], pt[256];
	size_t ek_len = sizeof ek, ak_len = sizeof ak, bind_len = sizeof bind, cred_len;
	size_t att_len, sig_len, batt_len, bsig_len, aad_len, pt_len;
	double total[N], tpm[N];
	struct dg_verifier_config cfg;
	struct dg_verifier *v = NULL;
	struct dg_msg req, reply;
	EVP_PKEY *bind_key = NULL;
	const uint8_t *eph;

	snprintf(pol, sizeof pol, "%s/release-policies", workdir);
	snprintf(sec, sizeof sec, "%s/release-secrets", workdir);
	if (mkdir(pol, 0755) != 0 || mkdir(sec, 0700) != 0)
		die("mkdir: %s", strerror(errno));
	snprintf(path, sizeof path, "%s/bench.baseline", pol);
	if (tu_sh("printf 'driftgate-baseline 1\\nname bench\\nagent bench\\nsecret s\\n' > '%s'",
	          path) != 0)
		die("cannot write %s", path);
	snprintf(path, sizeof path, "%s/s", sec);
	if (tu_sh("umask 077; printf 'a database password' > '%s'", path) != 0)
		die("cannot write %s", path);
	dg_verifier_config_defaults(&cfg);
	snprintf(cfg.policies_dir, sizeof cfg.policies_dir, "%s", pol);
	snprintf(cfg.secrets_dir, sizeof cfg.secrets_dir, "%s", sec);
	snprintf(cfg.audit_path, sizeof cfg.audit_path, "%s/audit.jsonl", workdir);
	snprintf(cfg.state_path, sizeof cfg.state_path, ":memory:");
	if (dg_verifier_new(&cfg, &v, err, sizeof err) != DG_OK)
		die("verifier: %s", err);

	CHECK_OK(dg_tpm_keys(te->tpm, DG_TPM_EK_HANDLE_DEFAULT, DG_TPM_AK_HANDLE_DEFAULT, ek, &ek_len,
	                     ak, &ak_len));
	CHECK_OK(dg_tpm_bind_key(te->tpm, DG_TPM_BIND_HANDLE_DEFAULT, bind, &bind_len));
	CHECK_OK(dg_tpmkey_import(bind, bind_len, DG_TPMKEY_BIND, &bind_key, NULL, NULL));
	CHECK_OK(dg_seal_point_of(bind_key, point));
	dg_msg_init(&req);
	dg_msg_init(&reply);
	req.type = DG_MSG_ENROLL_REQ;
	snprintf(req.agent_id, sizeof req.agent_id, "bench");
	req.pcr = RELEASE_PCR;
	CHECK_OK(dg_bytes_set(&req.ek_pub, ek, ek_len));
	CHECK_OK(dg_bytes_set(&req.ak_pub, ak, ak_len));
	verifier_call(v, &req, &reply, DG_MSG_ENROLL_CHALLENGE);
	CHECK_OK(dg_tpm_activate(te->tpm, reply.id_object.data, reply.id_object.len,
	                         reply.enc_secret.data, reply.enc_secret.len, cred, sizeof cred,
	                         &cred_len));
	dg_msg_clear(&req);
	dg_msg_clear(&reply);
	req.type = DG_MSG_ENROLL_ACTIVATE;
	snprintf(req.agent_id, sizeof req.agent_id, "bench");
	CHECK_OK(dg_bytes_set(&req.credential, cred, cred_len));
	verifier_call(v, &req, &reply, DG_MSG_ENROLL_DONE);
	dg_msg_clear(&req);
	dg_msg_clear(&reply);

	for (int i = 0; i < N; i++) {
		double t0 = now(), t_tpm;
		req.type = DG_MSG_NONCE_REQ;
		snprintf(req.agent_id, sizeof req.agent_id, "bench");
		verifier_call(v, &req, &reply, DG_MSG_NONCE);
		uint8_t nonce[DG_QUOTE_NONCE_LEN];
		memcpy(nonce, reply.nonce.data, sizeof nonce);
		uint64_t from = reply.log_from;
		dg_msg_clear(&req);
		dg_msg_clear(&reply);
		double t1 = now();
		CHECK_OK(dg_tpm_quote(te->tpm, RELEASE_PCR, nonce, sizeof nonce, att, sizeof att,
		                      &att_len, sig, sizeof sig, &sig_len));
		CHECK_OK(dg_tpm_certify_bind(te->tpm, nonce, sizeof nonce, batt, sizeof batt,
		                             &batt_len, bsig, sizeof bsig, &bsig_len));
		t_tpm = now() - t1;
		req.type = DG_MSG_ATTEST;
		snprintf(req.agent_id, sizeof req.agent_id, "bench");
		req.log_from = from;
		CHECK_OK(dg_bytes_set(&req.nonce, nonce, sizeof nonce));
		CHECK_OK(dg_bytes_set(&req.attest, att, att_len));
		CHECK_OK(dg_bytes_set(&req.signature, sig, sig_len));
		CHECK_OK(dg_bytes_set(&req.log, (const uint8_t *)"", 0));
		CHECK_OK(dg_bytes_set(&req.bind_key, bind, bind_len));
		CHECK_OK(dg_bytes_set(&req.bind_attest, batt, batt_len));
		CHECK_OK(dg_bytes_set(&req.bind_sig, bsig, bsig_len));
		snprintf(req.request[0].secret, sizeof req.request[0].secret, "s");
		req.n_request = 1;
		verifier_call(v, &req, &reply, DG_MSG_VERDICT);
		if (!reply.pass || reply.n_sealed != 1)
			die("release refused: %s", reply.refused);
		const struct dg_release_ctx ctx = {
			.agent_id = "bench", .scope = "", .secret = "s", .nonce = nonce,
			.lease_ms = reply.lease_ms,
		};
		CHECK_OK(dg_release_aad(&ctx, aad, sizeof aad, &aad_len));
		CHECK_OK(dg_seal_ephemeral(reply.sealed[0].blob.data, reply.sealed[0].blob.len, &eph));
		double t2 = now();
		CHECK_OK(dg_tpm_zgen(te->tpm, eph, z));
		t_tpm += now() - t2;
		CHECK_OK(dg_unseal(z, point, aad, aad_len, reply.sealed[0].blob.data,
		                   reply.sealed[0].blob.len, pt, sizeof pt, &pt_len));
		total[i] = now() - t0;
		tpm[i] = t_tpm;
		OPENSSL_cleanse(pt, sizeof pt);
		dg_msg_clear(&req);
		dg_msg_clear(&reply);
	}
	double tpm_sum = 0, all_sum = 0;
	for (int i = 0; i < N; i++) {
		tpm_sum += tpm[i];
		all_sum += total[i];
	}
	qsort(total, N, sizeof total[0], cmp_double);
	qsort(tpm, N, sizeof tpm[0], cmp_double);
	printf("release  request -> secret in hand, %d rounds: p50 %.1f ms  p99 %.1f ms; "
	       "TPM (quote + certify + ZGen) p50 %.1f ms, %.0f%% of the time\n",
	       N, pct(total, N, 50) * 1e3, pct(total, N, 99) * 1e3, pct(tpm, N, 50) * 1e3,
	       100.0 * tpm_sum / all_sum);
	EVP_PKEY_free(bind_key);
	dg_verifier_free(v);
}

int
main(int argc, char **argv)
{
	bench_argc = argc;
	bench_argv = argv;
	if ((workdir = tu_tmpdir()) == NULL)
		die("mkdtemp");
	if (chmod(workdir, 0755) != 0)
		die("chmod");
	setvbuf(stdout, NULL, _IOLBF, 0);
	header();
	double t0 = now();
	if (want("tree"))
		bench_tree();
	if (want("replay"))
		bench_replay();
	if (want("rootfs"))
		bench_rootfs();
	if (want("quote") || want("extend") || want("release")) {
		struct tpm_env te;
		tpm_start(&te);
		if (want("quote"))
			bench_quote(&te);
		if (want("release"))
			bench_release(&te);
		if (want("extend"))
			bench_extend(&te);
		tpm_stop(&te);
	}
	tu_sh("rm -rf '%s'", workdir);
	printf("# total %.1f s\n", now() - t0);
	return 0;
}
