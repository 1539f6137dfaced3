/*
 * driftgate-loadgen: a load generator for one driftgate-verifier. It
 * simulates N agents whose TPMs are software keys and drives them over real
 * nng req0 sockets, so the verifier under test runs its own code unchanged:
 *
 *   enroll   ENROLL_REQ (RSA-2048 EK and AK whose TPM2B_PUBLIC carry exactly
 *            the attributes dg_tpmkey_import requires) -> ENROLL_CHALLENGE ->
 *            ActivateCredential in software -> ENROLL_ACTIVATE -> ENROLL_DONE
 *   attest   NONCE_REQ -> NONCE -> k new ima-ng entries (binary kernel format,
 *            dg_log_encode) replayed with the shared replay -> TPMS_ATTEST
 *            (Tss2_MU) signed RSASSA-SHA256 by the AK -> ATTEST -> VERDICT
 *
 * Test tooling only, never a correctness test: it measures throughput and
 * latency. Agents share a pool of key pairs (--keys) because RSA key
 * generation would otherwise dominate start-up; the verifier keeps one record
 * and one imported AK per agent id either way.
 *
 * Setup: `driftgate-loadgen --make-policies DIR` writes DIR/loadgen.baseline
 * (agents loadgen-*, the files the simulated agents measure); start the
 * verifier with `driftgate-verifier serve --policies DIR --secrets EMPTYDIR
 * --audit-log FILE --state FILE --listen URL`, then run
 * `driftgate-loadgen --verifier URL --verifier-pid PID ...` (see usage()).
 * tests/bench/fleet_bench.sh does all of that.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_tpm2_types.h>

#include "driftgate/credential.h"
#include "driftgate/err.h"
#include "driftgate/log.h"
#include "driftgate/quote.h"
#include "driftgate/tpmkey.h"
#include "driftgate/transport.h"
#include "driftgate/wire.h"

#define LG_PROG "driftgate-loadgen"
#define LG_PCR 13                    /* the agent's default PCR */
#define LG_RSA_BITS 2048
#define LG_RSA_BYTES (LG_RSA_BITS / 8)
#define LG_P256_COORD 32
#define LG_SHA256_LEN 32
#define LG_AES128_LEN 16
#define LG_PCR_SELECT_BYTES 3        /* 24 PCRs, as the agent's TPM selects them */
#define LG_CLOCK_BASE_MS 1000000u    /* any start; only its monotony matters */
#define LG_FIRMWARE_VERSION 0x2023000000000000ull
#define LG_TIMEOUT_MS 60000
#define LG_MAX_PRINTED 20            /* fail and error details printed per run */
#define LG_MAX_AGENTS 100000         /* the verifier's DG_REGISTRY_MAX_AGENTS */
#define LG_MAX_THREADS 1024
#define LG_MAX_ENTRIES 10000
#define LG_DEFAULT_FILES 1000
#define LG_ENTRY_MAX 256             /* one encoded entry of ours, with room */
#define LG_VERIFY_SECONDS 1.0
#define LG_BASELINE_NAME "loadgen"
#define LG_ID_PATTERN "loadgen-*"
#define LG_FILE_FMT "/opt/loadgen/bin/tool-%05u"
/* KDF labels as credential.c hashes them, terminating NUL included. */
#define LG_IDENTITY_LABEL "IDENTITY"
#define LG_STORAGE_LABEL "STORAGE"
#define LG_INTEGRITY_LABEL "INTEGRITY"

struct lg_options {
	const char *url;
	const char *make_policies;
	const char *id_prefix;
	unsigned agents, threads, keys, entries, files;
	bool ecc_ak;                   /* --ak ecc: P-256 ECDSA AKs instead of RSA-2048 */
	double rate, duration;
	long verifier_pid;             /* 0: not given */
};

/* One simulated TPM: EK and AK, their public areas and the AK's name. */
struct lg_keys {
	EVP_PKEY *ek, *ak;
	bool ecc_ak;
	uint8_t ek_pub[DG_TPMKEY_MAX_PUBLIC], ak_pub[DG_TPMKEY_MAX_PUBLIC];
	size_t ek_pub_len, ak_pub_len;
	uint8_t ak_name[DG_TPMKEY_MAX_NAME];
	size_t ak_name_len;
};

struct lg_agent {
	char id[DG_WIRE_MAX_AGENT_ID + 1];
	unsigned index;
	const struct lg_keys *keys;
	bool enrolled;
	uint64_t count;                /* entries measured so far */
	uint8_t pcr[LG_SHA256_LEN];    /* their sha256 replay: the simulated PCR */
	uint64_t clock;                /* last clockInfo.clock quoted */
};

/* Latencies in microseconds. */
struct lg_series {
	uint32_t *v;
	size_t n, cap;
};

struct lg_run;

struct lg_worker {
	struct lg_run *run;
	unsigned index;
	pthread_t thread;
	nng_socket sock;
	bool sock_open;
	struct dg_msg *req, *reply;    /* heap: a dg_msg is tens of KiB */
	uint8_t *log_buf;
	size_t log_cap;
	/* results */
	int rv;
	uint64_t enrolled, enroll_errors;
	uint64_t pass, fail, errors;
	double client_s;               /* NONCE received -> ATTEST sent: our own work */
	struct lg_series round_lat, attest_lat;
};

struct lg_run {
	struct lg_options opt;
	struct lg_keys *keys;
	struct lg_agent *agents;
	uint8_t (*file_digest)[LG_SHA256_LEN];
	double t0;                     /* start of the phase in progress */
	atomic_uint printed;
	atomic_uint next_key;          /* key generation, shared by the workers */
};

static double
lg_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
lg_sleep_until(double t)
{
	struct timespec ts = {.tv_sec = (time_t)t, .tv_nsec = (long)((t - floor(t)) * 1e9)};
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static int
lg_series_add(struct lg_series *s, double seconds)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 4096;
		uint32_t *v = realloc(s->v, cap * sizeof *v);
		if (v == NULL)
			return DG_ERR_NOMEM;
		s->v = v;
		s->cap = cap;
	}
	double us = seconds * 1e6;
	s->v[s->n++] = us > (double)UINT32_MAX ? UINT32_MAX : (uint32_t)us;
	return DG_OK;
}

static int
lg_cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted series, in milliseconds. */
static double
lg_percentile_ms(const struct lg_series *s, double q)
{
	if (s->n == 0)
		return 0;
	size_t rank = (size_t)ceil(q * (double)s->n);
	if (rank == 0)
		rank = 1;
	return s->v[rank - 1] / 1000.0;
}

/* Print a failure detail, at most LG_MAX_PRINTED per run: the counts say the rest. */
static void lg_report(struct lg_run *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
lg_report(struct lg_run *run, const char *fmt, ...)
{
	va_list ap;
	unsigned n = atomic_fetch_add(&run->printed, 1);
	if (n >= LG_MAX_PRINTED) {
		if (n == LG_MAX_PRINTED)
			fprintf(stderr, LG_PROG ": further failures counted, not printed\n");
		return;
	}
	char line[1024];
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	fprintf(stderr, LG_PROG ": %s\n", line);
}

/* ---- the files the simulated agents measure, and the baseline approving them ---- */

static void
lg_file_path(unsigned f, char *out, size_t cap)
{
	snprintf(out, cap, LG_FILE_FMT, f);
}

/* Deterministic per file, so the baseline and the agents agree across processes. */
static int
lg_file_digests(unsigned n, uint8_t (**out)[LG_SHA256_LEN])
{
	uint8_t (*d)[LG_SHA256_LEN] = calloc(n, sizeof *d);
	char content[64];
	if (d == NULL)
		return DG_ERR_NOMEM;
	for (unsigned f = 0; f < n; f++) {
		int len = snprintf(content, sizeof content, "driftgate-loadgen file %u\n", f);
		if (!EVP_Digest(content, (size_t)len, d[f], NULL, EVP_sha256(), NULL)) {
			free(d);
			return DG_ERR_CRYPTO;
		}
	}
	*out = d;
	return DG_OK;
}

static int
lg_make_policies(const char *dir, unsigned n_files, const uint8_t (*digest)[LG_SHA256_LEN])
{
	char path[4096], file[64];
	FILE *f = NULL;
	int rv = DG_ERR_IO;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, LG_PROG ": %s: %s\n", dir, strerror(errno));
		return DG_ERR_IO;
	}
	snprintf(path, sizeof path, "%s/" LG_BASELINE_NAME ".baseline", dir);
	if ((f = fopen(path, "w")) == NULL) {
		fprintf(stderr, LG_PROG ": %s: %s\n", path, strerror(errno));
		goto out;
	}
	fprintf(f, "# Written by " LG_PROG " --make-policies: the files its agents measure.\n"
	           "driftgate-baseline 1\nname " LG_BASELINE_NAME "\nagent " LG_ID_PATTERN "\n");
	for (unsigned i = 0; i < n_files; i++) {
		char hex[2 * LG_SHA256_LEN + 1];
		for (size_t j = 0; j < LG_SHA256_LEN; j++)
			snprintf(hex + 2 * j, 3, "%02x", digest[i][j]);
		lg_file_path(i, file, sizeof file);
		fprintf(f, "allow sha256:%s %s\n", hex, file);
	}
	/* fclose reports any write error of the buffered lines. */
	if (ferror(f) || fclose(f) != 0) {
		f = NULL;
		fprintf(stderr, LG_PROG ": %s: %s\n", path, strerror(errno));
		goto out;
	}
	f = NULL;
	printf(LG_PROG ": wrote %s (%u files, agents " LG_ID_PATTERN ")\n", path, n_files);
	rv = DG_OK;
out:
	if (f != NULL)
		(void)fclose(f);
	return rv;
}

/* ---- software TPM keys ---- */

/* The TCG default RSA-2048 EK template (agent/tpm.c), unique = modulus. */
static void
lg_ek_template(TPM2B_PUBLIC *p)
{
	/* PolicySecret(TPM_RH_ENDORSEMENT), as in every default EK. */
	static const uint8_t ek_policy[LG_SHA256_LEN] = {
		0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc,
		0x8d, 0x46, 0xa5, 0xd7, 0x24, 0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52,
		0x0b, 0x64, 0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa,
	};
	TPMT_PUBLIC *a = &p->publicArea;
	a->type = TPM2_ALG_RSA;
	a->nameAlg = TPM2_ALG_SHA256;
	a->objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
	                      TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_ADMINWITHPOLICY |
	                      TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
	a->authPolicy.size = sizeof ek_policy;
	memcpy(a->authPolicy.buffer, ek_policy, sizeof ek_policy);
	a->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_AES;
	a->parameters.rsaDetail.symmetric.keyBits.aes = 128;
	a->parameters.rsaDetail.symmetric.mode.aes = TPM2_ALG_CFB;
	a->parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
	a->parameters.rsaDetail.keyBits = LG_RSA_BITS;
}

/* What tpm2_createak -G rsa -g sha256 -s rsassa makes (agent/tpm.c). */
static void
lg_ak_template(TPM2B_PUBLIC *p)
{
	TPMT_PUBLIC *a = &p->publicArea;
	a->type = TPM2_ALG_RSA;
	a->nameAlg = TPM2_ALG_SHA256;
	a->objectAttributes = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT |
	                      TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
	                      TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH;
	a->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
	a->parameters.rsaDetail.scheme.scheme = TPM2_ALG_RSASSA;
	a->parameters.rsaDetail.scheme.details.rsassa.hashAlg = TPM2_ALG_SHA256;
	a->parameters.rsaDetail.keyBits = LG_RSA_BITS;
}

/* What tpm2_createak -G ecc -g sha256 -s ecdsa makes: a P-256 restricted signing key. */
static int
lg_make_ecc_ak(EVP_PKEY **key, uint8_t *pub, size_t *pub_len)
{
	TPM2B_PUBLIC tp = {0};
	TPMT_PUBLIC *a = &tp.publicArea;
	uint8_t point[1 + 2 * LG_P256_COORD];
	size_t len = 0, off = 0;

	if ((*key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")) == NULL ||
	    EVP_PKEY_set_utf8_string_param(*key, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
	                                   "uncompressed") != 1 ||
	    EVP_PKEY_get_octet_string_param(*key, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point,
	                                    &len) != 1 ||
	    len != sizeof point)
		return DG_ERR_CRYPTO;
	a->type = TPM2_ALG_ECC;
	a->nameAlg = TPM2_ALG_SHA256;
	a->objectAttributes = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT |
	                      TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
	                      TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH;
	a->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
	a->parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
	a->parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
	a->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
	a->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
	a->unique.ecc.x.size = LG_P256_COORD;
	memcpy(a->unique.ecc.x.buffer, point + 1, LG_P256_COORD);
	a->unique.ecc.y.size = LG_P256_COORD;
	memcpy(a->unique.ecc.y.buffer, point + 1 + LG_P256_COORD, LG_P256_COORD);
	if (Tss2_MU_TPM2B_PUBLIC_Marshal(&tp, pub, DG_TPMKEY_MAX_PUBLIC, &off) != TSS2_RC_SUCCESS)
		return DG_ERR_FORMAT;
	*pub_len = off;
	return DG_OK;
}

/* A fresh RSA-2048 key (e = 65537, the template's exponent 0) and its TPM2B_PUBLIC. */
static int
lg_make_key(bool ek, EVP_PKEY **key, uint8_t *pub, size_t *pub_len)
{
	TPM2B_PUBLIC tp = {0};
	BIGNUM *n = NULL;
	size_t off = 0;
	int rv = DG_ERR_CRYPTO;

	if ((*key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)LG_RSA_BITS)) == NULL ||
	    !EVP_PKEY_get_bn_param(*key, OSSL_PKEY_PARAM_RSA_N, &n) ||
	    BN_bn2binpad(n, tp.publicArea.unique.rsa.buffer, LG_RSA_BYTES) != LG_RSA_BYTES)
		goto out;
	if (ek)
		lg_ek_template(&tp);
	else
		lg_ak_template(&tp);
	tp.publicArea.unique.rsa.size = LG_RSA_BYTES;
	if (Tss2_MU_TPM2B_PUBLIC_Marshal(&tp, pub, DG_TPMKEY_MAX_PUBLIC, &off) != TSS2_RC_SUCCESS) {
		rv = DG_ERR_FORMAT;
		goto out;
	}
	*pub_len = off;
	rv = DG_OK;
out:
	BN_free(n);
	return rv;
}

/* EK and AK; both checked with the verifier's own import so a bad template
 * shows here, not as a refused enrollment. */
static int
lg_keys_make(struct lg_keys *k)
{
	int rv;
	if ((rv = lg_make_key(true, &k->ek, k->ek_pub, &k->ek_pub_len)) != DG_OK ||
	    (rv = k->ecc_ak ? lg_make_ecc_ak(&k->ak, k->ak_pub, &k->ak_pub_len)
	                    : lg_make_key(false, &k->ak, k->ak_pub, &k->ak_pub_len)) != DG_OK ||
	    (rv = dg_tpmkey_import(k->ek_pub, k->ek_pub_len, DG_TPMKEY_EK, NULL, NULL, NULL)) !=
	        DG_OK ||
	    (rv = dg_tpmkey_import(k->ak_pub, k->ak_pub_len, DG_TPMKEY_AK, NULL, k->ak_name,
	                           &k->ak_name_len)) != DG_OK)
		return rv;
	return DG_OK;
}

/* ---- ActivateCredential in software: the inverse of dg_cred_make ---- */

static size_t
lg_get_u16(const uint8_t *p)
{
	return (size_t)p[0] << 8 | p[1];
}

/* The seed, under RSA-OAEP(SHA-256, label "IDENTITY\0") to the EK. */
static int
lg_decrypt_seed(EVP_PKEY *ek, const uint8_t *enc_secret, size_t enc_len,
                uint8_t seed[LG_SHA256_LEN])
{
	uint8_t plain[LG_RSA_BYTES];
	size_t plain_len = sizeof plain;
	OSSL_PARAM params[5];
	EVP_PKEY_CTX *ctx = NULL;
	int rv = DG_ERR_FORMAT;

	/* TPM2B_ENCRYPTED_SECRET: size || ciphertext */
	if (enc_len < 2 || lg_get_u16(enc_secret) != enc_len - 2)
		goto out;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_ASYM_CIPHER_PARAM_PAD_MODE,
	                                             (char *)OSSL_PKEY_RSA_PAD_MODE_OAEP, 0);
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST,
	                                             (char *)"SHA256", 0);
	params[2] = OSSL_PARAM_construct_utf8_string(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST,
	                                             (char *)"SHA256", 0);
	params[3] = OSSL_PARAM_construct_octet_string(OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL,
	                                              (char *)LG_IDENTITY_LABEL,
	                                              sizeof LG_IDENTITY_LABEL);
	params[4] = OSSL_PARAM_construct_end();
	rv = DG_ERR_CRYPTO;
	if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, ek, NULL)) == NULL ||
	    EVP_PKEY_decrypt_init_ex(ctx, params) <= 0 ||
	    EVP_PKEY_decrypt(ctx, plain, &plain_len, enc_secret + 2, enc_len - 2) <= 0)
		goto out;
	/* The seed is one nameAlg (SHA-256) digest. */
	if (plain_len != LG_SHA256_LEN) {
		rv = DG_ERR_FORMAT;
		goto out;
	}
	memcpy(seed, plain, LG_SHA256_LEN);
	rv = DG_OK;
out:
	OPENSSL_cleanse(plain, sizeof plain);
	EVP_PKEY_CTX_free(ctx);
	return rv;
}

/*
 * TPM2_ActivateCredential (Part 1, 24.5): seed from the EK, KDFa keys bound to
 * the AK name, the outer HMAC over encIdentity || name checked before the
 * AES-128-CFB decryption, credential out of the TPM2B_DIGEST inside.
 */
static int
lg_activate(const struct lg_keys *k, const uint8_t *id_object, size_t id_len,
            const uint8_t *enc_secret, size_t enc_len, uint8_t *cred, size_t cred_cap,
            size_t *cred_len)
{
	static const uint8_t zero_iv[16];
	uint8_t seed[LG_SHA256_LEN], sym_key[LG_AES128_LEN], hmac_key[LG_SHA256_LEN];
	uint8_t mac[LG_SHA256_LEN], macced[DG_CRED_MAX_ID_OBJECT + DG_TPMKEY_MAX_NAME];
	uint8_t plain[DG_CRED_MAX_ID_OBJECT];
	size_t mac_len = 0, enc_id_len;
	const uint8_t *enc_id;
	EVP_CIPHER_CTX *cipher = NULL;
	int out_len = 0, final_len = 0;
	int rv = DG_ERR_FORMAT;

	/* TPM2B_ID_OBJECT: size || u16 hmacSize || HMAC || encIdentity */
	if (id_len < 2 + 2 + LG_SHA256_LEN + 2 || id_len > DG_CRED_MAX_ID_OBJECT ||
	    lg_get_u16(id_object) != id_len - 2 || lg_get_u16(id_object + 2) != LG_SHA256_LEN)
		goto out;
	enc_id = id_object + 4 + LG_SHA256_LEN;
	enc_id_len = id_len - 4 - LG_SHA256_LEN;
	if ((rv = lg_decrypt_seed(k->ek, enc_secret, enc_len, seed)) != DG_OK ||
	    (rv = dg_cred_kdfa("SHA256", seed, sizeof seed, LG_STORAGE_LABEL, k->ak_name,
	                       k->ak_name_len, NULL, 0, 8 * LG_AES128_LEN, sym_key,
	                       sizeof sym_key)) != DG_OK ||
	    (rv = dg_cred_kdfa("SHA256", seed, sizeof seed, LG_INTEGRITY_LABEL, NULL, 0, NULL, 0,
	                       8 * LG_SHA256_LEN, hmac_key, sizeof hmac_key)) != DG_OK)
		goto out;
	memcpy(macced, enc_id, enc_id_len);
	memcpy(macced + enc_id_len, k->ak_name, k->ak_name_len);
	rv = DG_ERR_CRYPTO;
	if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, hmac_key, sizeof hmac_key, macced,
	              enc_id_len + k->ak_name_len, mac, sizeof mac, &mac_len) == NULL ||
	    mac_len != LG_SHA256_LEN)
		goto out;
	/* A TPM refuses a blob for another EK or AK here, before decrypting. */
	if (CRYPTO_memcmp(mac, id_object + 4, LG_SHA256_LEN) != 0) {
		rv = DG_ERR_SIGNATURE;
		goto out;
	}
	if ((cipher = EVP_CIPHER_CTX_new()) == NULL ||
	    !EVP_DecryptInit_ex(cipher, EVP_aes_128_cfb128(), NULL, sym_key, zero_iv) ||
	    !EVP_DecryptUpdate(cipher, plain, &out_len, enc_id, (int)enc_id_len) ||
	    !EVP_DecryptFinal_ex(cipher, plain + out_len, &final_len) ||
	    (size_t)out_len + (size_t)final_len != enc_id_len)
		goto out;
	rv = DG_ERR_FORMAT;
	if (enc_id_len < 2 || lg_get_u16(plain) != enc_id_len - 2 || enc_id_len - 2 > cred_cap)
		goto out;
	memcpy(cred, plain + 2, enc_id_len - 2);
	*cred_len = enc_id_len - 2;
	rv = DG_OK;
out:
	OPENSSL_cleanse(seed, sizeof seed);
	OPENSSL_cleanse(sym_key, sizeof sym_key);
	OPENSSL_cleanse(hmac_key, sizeof hmac_key);
	OPENSSL_cleanse(plain, sizeof plain);
	EVP_CIPHER_CTX_free(cipher);
	return rv;
}

/* ---- quotes ---- */

/*
 * The quote's extraData for a round: exactly the verifier's 32-byte nonce (a
 * round that requests no secret carries no bind key). The one place to change
 * if the qualifying data changes again.
 */
static int
lg_extra_data(const uint8_t nonce[DG_QUOTE_NONCE_LEN], uint8_t *out, size_t cap,
              size_t *out_len)
{
	if (cap < DG_QUOTE_NONCE_LEN)
		return DG_ERR_TOOBIG;
	memcpy(out, nonce, DG_QUOTE_NONCE_LEN);
	*out_len = DG_QUOTE_NONCE_LEN;
	return DG_OK;
}

/* TPM2_Quote of the agent's PCR (sha256 bank) as a TPM would marshal and sign it. */
static int
lg_quote(const struct lg_agent *a, const uint8_t *extra, size_t extra_len, uint8_t *attest,
         size_t *attest_len, uint8_t *sig, size_t *sig_len)
{
	TPMS_ATTEST at;
	TPMT_SIGNATURE ts;
	uint8_t raw[LG_RSA_BYTES];
	size_t raw_len = sizeof raw, off = 0;
	EVP_MD_CTX *md = NULL;
	int rv = DG_ERR_FORMAT;

	memset(&at, 0, sizeof at);
	memset(&ts, 0, sizeof ts);
	if (extra_len > sizeof at.extraData.buffer)
		goto out;
	at.magic = TPM2_GENERATED_VALUE;
	at.type = TPM2_ST_ATTEST_QUOTE;
	at.qualifiedSigner.size = (UINT16)a->keys->ak_name_len;
	memcpy(at.qualifiedSigner.name, a->keys->ak_name, a->keys->ak_name_len);
	at.extraData.size = (UINT16)extra_len;
	memcpy(at.extraData.buffer, extra, extra_len);
	at.clockInfo.clock = a->clock;
	at.clockInfo.resetCount = 1;
	at.clockInfo.restartCount = 0;
	at.clockInfo.safe = TPM2_YES;
	at.firmwareVersion = LG_FIRMWARE_VERSION;
	TPML_PCR_SELECTION *sel = &at.attested.quote.pcrSelect;
	sel->count = 1;
	sel->pcrSelections[0].hash = TPM2_ALG_SHA256;
	sel->pcrSelections[0].sizeofSelect = LG_PCR_SELECT_BYTES;
	sel->pcrSelections[0].pcrSelect[LG_PCR / 8] = (BYTE)(1u << (LG_PCR % 8));
	/* One PCR selected: pcrDigest = H(its value). */
	at.attested.quote.pcrDigest.size = LG_SHA256_LEN;
	if (!EVP_Digest(a->pcr, LG_SHA256_LEN, at.attested.quote.pcrDigest.buffer, NULL,
	                EVP_sha256(), NULL)) {
		rv = DG_ERR_CRYPTO;
		goto out;
	}
	if (Tss2_MU_TPMS_ATTEST_Marshal(&at, attest, DG_QUOTE_MAX_ATTEST, &off) != TSS2_RC_SUCCESS)
		goto out;
	*attest_len = off;
	rv = DG_ERR_CRYPTO;
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, a->keys->ak) <= 0 ||
	    EVP_DigestSign(md, raw, &raw_len, attest, *attest_len) <= 0)
		goto out;
	if (a->keys->ecc_ak) {
		/* OpenSSL signs DER; a TPM gives r and s as fixed-size integers. */
		const uint8_t *p = raw;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)raw_len);
		const BIGNUM *r, *s;
		if (es == NULL)
			goto out;
		ECDSA_SIG_get0(es, &r, &s);
		ts.sigAlg = TPM2_ALG_ECDSA;
		ts.signature.ecdsa.hash = TPM2_ALG_SHA256;
		ts.signature.ecdsa.signatureR.size = LG_P256_COORD;
		ts.signature.ecdsa.signatureS.size = LG_P256_COORD;
		int ok = BN_bn2binpad(r, ts.signature.ecdsa.signatureR.buffer, LG_P256_COORD) ==
		                 LG_P256_COORD &&
		         BN_bn2binpad(s, ts.signature.ecdsa.signatureS.buffer, LG_P256_COORD) ==
		                 LG_P256_COORD;
		ECDSA_SIG_free(es);
		if (!ok)
			goto out;
	} else {
		if (raw_len != LG_RSA_BYTES)
			goto out;
		ts.sigAlg = TPM2_ALG_RSASSA;
		ts.signature.rsassa.hash = TPM2_ALG_SHA256;
		ts.signature.rsassa.sig.size = (UINT16)raw_len;
		memcpy(ts.signature.rsassa.sig.buffer, raw, raw_len);
	}
	off = 0;
	if (Tss2_MU_TPMT_SIGNATURE_Marshal(&ts, sig, DG_QUOTE_MAX_SIG, &off) != TSS2_RC_SUCCESS) {
		rv = DG_ERR_FORMAT;
		goto out;
	}
	*sig_len = off;
	rv = DG_OK;
out:
	EVP_MD_CTX_free(md);
	return rv;
}

/* ---- the measurement log ---- */

/* Entry i of agent a measures one of the baseline's files, spread over them. */
static unsigned
lg_entry_file(const struct lg_run *run, const struct lg_agent *a, uint64_t i)
{
	return (unsigned)(((uint64_t)a->index * 7919u + i) % run->opt.files);
}

/*
 * Encode entries [from, a->count + k) into w->log_buf (kernel binary format)
 * and extend the new ones, [a->count, a->count + k), into a->pcr with the
 * shared reader and replay: the same template hashes the verifier computes.
 * Old entries are regenerated, so a round the verifier never committed is
 * simply sent again.
 */
static int
lg_measure(struct lg_worker *w, struct lg_agent *a, uint64_t from, unsigned k, size_t *len)
{
	struct lg_run *run = w->run;
	uint64_t end = a->count + k;
	struct dg_log_reader r;
	struct dg_log_entry e;
	struct dg_replay replay;
	char path[64];
	size_t used = 0, n;
	int rv;

	if (from > a->count)
		return DG_ERR_STATE; /* the verifier is ahead of this agent's log */
	size_t need = (size_t)(end - from) * LG_ENTRY_MAX;
	if (need > DG_WIRE_MAX_LOG)
		return DG_ERR_TOOBIG;
	if (need > w->log_cap) {
		uint8_t *b = realloc(w->log_buf, need);
		if (b == NULL)
			return DG_ERR_NOMEM;
		w->log_buf = b;
		w->log_cap = need;
	}
	for (uint64_t i = from; i < end; i++) {
		unsigned f = lg_entry_file(run, a, i);
		lg_file_path(f, path, sizeof path);
		if ((rv = dg_log_encode(LG_PCR, DG_TEMPLATE_IMA_NG, "sha256", run->file_digest[f],
		                        LG_SHA256_LEN, path, NULL, 0, w->log_buf + used,
		                        w->log_cap - used, &n)) != DG_OK)
			return rv;
		used += n;
	}
	dg_replay_init(&replay);
	memcpy(replay.sha256[LG_PCR], a->pcr, LG_SHA256_LEN);
	if ((rv = dg_log_reader_init(&r, w->log_buf, used, DG_LOG_FORMAT_BINARY)) != DG_OK)
		goto out;
	for (uint64_t i = from; (rv = dg_log_next(&r, &e)) == DG_OK; i++)
		if (i >= a->count && (rv = dg_replay_extend(&replay, &e)) != DG_OK)
			break;
	dg_log_reader_fini(&r);
	if (rv != DG_ERR_NOTFOUND)
		goto out;
	memcpy(a->pcr, replay.sha256[LG_PCR], LG_SHA256_LEN);
	a->count = end;
	*len = used;
	rv = DG_OK;
out:
	dg_replay_fini(&replay);
	return rv;
}

/* ---- the conversation ---- */

/* Send w->req, receive w->reply; an ERROR reply or another type is reported. */
static int
lg_call(struct lg_worker *w, const struct lg_agent *a, enum dg_msg_type expect)
{
	enum dg_msg_type sent = w->req->type;
	int rv = dg_transport_send(w->sock, w->req);
	if (rv == DG_OK)
		rv = dg_transport_recv(w->sock, w->reply);
	dg_msg_clear(w->req);
	if (rv != DG_OK) {
		lg_report(w->run, "ERROR %s: %s: %s", a->id, dg_msg_type_name(sent), dg_strerror(rv));
		return rv;
	}
	if (w->reply->type == DG_MSG_ERROR) {
		lg_report(w->run, "ERROR %s: %s refused: %s (%s)", a->id, dg_msg_type_name(sent),
		          w->reply->message, dg_strerror((int)w->reply->code));
		return DG_ERR_DENIED;
	}
	if (w->reply->type != expect) {
		lg_report(w->run, "ERROR %s: %s answered with %s", a->id, dg_msg_type_name(sent),
		          dg_msg_type_name(w->reply->type));
		return DG_ERR_FORMAT;
	}
	return DG_OK;
}

static int
lg_enroll(struct lg_worker *w, struct lg_agent *a)
{
	const struct lg_keys *k = a->keys;
	uint8_t cred[DG_CRED_MAX_CREDENTIAL];
	size_t cred_len = 0;
	int rv;

	dg_msg_init(w->req);
	w->req->type = DG_MSG_ENROLL_REQ;
	snprintf(w->req->agent_id, sizeof w->req->agent_id, "%s", a->id);
	w->req->pcr = LG_PCR;
	if ((rv = dg_bytes_set(&w->req->ek_pub, k->ek_pub, k->ek_pub_len)) != DG_OK ||
	    (rv = dg_bytes_set(&w->req->ak_pub, k->ak_pub, k->ak_pub_len)) != DG_OK ||
	    (rv = lg_call(w, a, DG_MSG_ENROLL_CHALLENGE)) != DG_OK)
		goto out;
	if ((rv = lg_activate(k, w->reply->id_object.data, w->reply->id_object.len,
	                      w->reply->enc_secret.data, w->reply->enc_secret.len, cred,
	                      sizeof cred, &cred_len)) != DG_OK) {
		lg_report(w->run, "ERROR %s: ActivateCredential: %s", a->id, dg_strerror(rv));
		goto out;
	}
	dg_msg_clear(w->reply);
	w->req->type = DG_MSG_ENROLL_ACTIVATE;
	snprintf(w->req->agent_id, sizeof w->req->agent_id, "%s", a->id);
	if ((rv = dg_bytes_set(&w->req->credential, cred, cred_len)) != DG_OK ||
	    (rv = lg_call(w, a, DG_MSG_ENROLL_DONE)) != DG_OK)
		goto out;
	a->enrolled = true;
out:
	OPENSSL_cleanse(cred, sizeof cred);
	dg_msg_clear(w->req);
	dg_msg_clear(w->reply);
	return rv;
}

/* One round; pass/fail/error counted, latencies recorded for verdicts. */
static void
lg_attest(struct lg_worker *w, struct lg_agent *a)
{
	struct lg_run *run = w->run;
	uint8_t nonce[DG_QUOTE_NONCE_LEN], extra[DG_QUOTE_MAX_ATTEST];
	uint8_t attest[DG_QUOTE_MAX_ATTEST], sig[DG_QUOTE_MAX_SIG];
	size_t extra_len = 0, attest_len = 0, sig_len = 0, log_len = 0;
	uint64_t log_from;
	int rv;

	double t_nonce = lg_now();
	dg_msg_init(w->req);
	w->req->type = DG_MSG_NONCE_REQ;
	snprintf(w->req->agent_id, sizeof w->req->agent_id, "%s", a->id);
	if ((rv = lg_call(w, a, DG_MSG_NONCE)) != DG_OK)
		goto out;
	if (w->reply->nonce.len != DG_QUOTE_NONCE_LEN || w->reply->pcr != LG_PCR) {
		lg_report(run, "ERROR %s: NONCE with a %zu-byte nonce for PCR %u", a->id,
		          w->reply->nonce.len, w->reply->pcr);
		rv = DG_ERR_FORMAT;
		goto out;
	}
	double t_work = lg_now();
	memcpy(nonce, w->reply->nonce.data, sizeof nonce);
	log_from = w->reply->log_from;
	dg_msg_clear(w->reply);

	/* A TPM clock in ms never goes back within one boot. */
	uint64_t clock = LG_CLOCK_BASE_MS + (uint64_t)((t_work - run->t0) * 1000.0);
	a->clock = clock > a->clock ? clock : a->clock + 1;
	if ((rv = lg_measure(w, a, log_from, run->opt.entries, &log_len)) != DG_OK) {
		lg_report(run, "ERROR %s: log from %" PRIu64 ": %s", a->id, log_from, dg_strerror(rv));
		goto out;
	}
	if ((rv = lg_extra_data(nonce, extra, sizeof extra, &extra_len)) != DG_OK ||
	    (rv = lg_quote(a, extra, extra_len, attest, &attest_len, sig, &sig_len)) != DG_OK) {
		lg_report(run, "ERROR %s: quote: %s", a->id, dg_strerror(rv));
		goto out;
	}
	w->req->type = DG_MSG_ATTEST;
	snprintf(w->req->agent_id, sizeof w->req->agent_id, "%s", a->id);
	w->req->log_from = log_from;
	if ((rv = dg_bytes_set(&w->req->nonce, nonce, sizeof nonce)) != DG_OK ||
	    (rv = dg_bytes_set(&w->req->attest, attest, attest_len)) != DG_OK ||
	    (rv = dg_bytes_set(&w->req->signature, sig, sig_len)) != DG_OK ||
	    (rv = dg_bytes_set(&w->req->log, w->log_buf, log_len)) != DG_OK) {
		lg_report(run, "ERROR %s: %s", a->id, dg_strerror(rv));
		goto out;
	}
	double t_attest = lg_now();
	w->client_s += t_attest - t_work;
	if ((rv = lg_call(w, a, DG_MSG_VERDICT)) != DG_OK)
		goto out;
	double t_end = lg_now();
	if ((rv = lg_series_add(&w->round_lat, t_end - t_nonce)) != DG_OK ||
	    (rv = lg_series_add(&w->attest_lat, t_end - t_attest)) != DG_OK)
		goto out;
	if (w->reply->pass) {
		w->pass++;
	} else {
		w->fail++;
		for (size_t i = 0; i < w->reply->n_reasons; i++)
			lg_report(run, "FAIL %s: %s: %s", a->id, w->reply->reasons[i].code,
			          w->reply->reasons[i].detail);
		if (w->reply->n_reasons == 0)
			lg_report(run, "FAIL %s: no reason given", a->id);
	}
out:
	if (rv != DG_OK)
		w->errors++;
	dg_msg_clear(w->req);
	dg_msg_clear(w->reply);
}

/* ---- workers ---- */

static int
lg_worker_open(struct lg_worker *w)
{
	int rv;
	if ((w->req = malloc(sizeof *w->req)) == NULL || (w->reply = malloc(sizeof *w->reply)) == NULL)
		return DG_ERR_NOMEM;
	dg_msg_init(w->req);
	dg_msg_init(w->reply);
	if ((rv = nng_req0_open(&w->sock)) != 0)
		return dg_transport_err(rv);
	w->sock_open = true;
	/* req0 would resend a request after a minute: an ATTEST must never be
	 * handled twice, so a slow answer is an error here, not a resend. */
	if ((rv = nng_socket_set_ms(w->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE)) != 0 ||
	    (rv = nng_socket_set_ms(w->sock, NNG_OPT_RECVTIMEO, LG_TIMEOUT_MS)) != 0 ||
	    (rv = nng_socket_set_ms(w->sock, NNG_OPT_SENDTIMEO, LG_TIMEOUT_MS)) != 0 ||
	    (rv = nng_socket_set_size(w->sock, NNG_OPT_RECVMAXSZ, 1024 * 1024)) != 0)
		return dg_transport_err(rv);
	return dg_transport_dial(w->sock, w->run->opt.url, NULL, NULL);
}

static void
lg_worker_close(struct lg_worker *w)
{
	if (w->sock_open)
		nng_close(w->sock);
	if (w->req != NULL)
		dg_msg_clear(w->req);
	if (w->reply != NULL)
		dg_msg_clear(w->reply);
	free(w->req);
	free(w->reply);
	free(w->log_buf);
	free(w->round_lat.v);
	free(w->attest_lat.v);
}

static void *
lg_keygen_main(void *arg)
{
	struct lg_worker *w = arg;
	unsigned i;
	while ((i = atomic_fetch_add(&w->run->next_key, 1)) < w->run->opt.keys) {
		w->run->keys[i].ecc_ak = w->run->opt.ecc_ak;
		if ((w->rv = lg_keys_make(&w->run->keys[i])) != DG_OK) {
			fprintf(stderr, LG_PROG ": key pair %u: %s\n", i, dg_strerror(w->rv));
			break;
		}
	}
	return NULL;
}

/* Worker t owns agents t, t + T, t + 2T, ...: one round per agent in flight. */
static void *
lg_enroll_main(void *arg)
{
	struct lg_worker *w = arg;
	struct lg_run *run = w->run;
	for (unsigned i = w->index; i < run->opt.agents; i += run->opt.threads) {
		if (lg_enroll(w, &run->agents[i]) == DG_OK)
			w->enrolled++;
		else
			w->enroll_errors++;
	}
	return NULL;
}

/*
 * Rounds on a fixed schedule: the run's rate split evenly over the workers,
 * the worker's enrolled agents in turn (at rate N/2, each agent every 2 s).
 * A worker that falls behind does not sleep: the achieved rate shows it.
 * No slot starts after the duration.
 */
static void *
lg_attest_main(void *arg)
{
	struct lg_worker *w = arg;
	struct lg_run *run = w->run;
	const struct lg_options *o = &run->opt;
	double end = run->t0 + o->duration;
	double period = o->rate > 0 ? (double)o->threads / o->rate : 0;
	double next = run->t0 + (o->rate > 0 ? (double)w->index / o->rate : 0);
	unsigned i = w->index;

	for (;;) {
		/* Behind schedule, slots are not made up after the end either. */
		if (lg_now() >= end || (period > 0 && next >= end))
			break;
		if (period > 0) {
			lg_sleep_until(next);
			next += period;
		}
		/* The next enrolled agent of this worker; none: nothing to do. */
		unsigned tried = 0;
		while (!run->agents[i].enrolled && tried++ < o->agents) {
			i += o->threads;
			if (i >= o->agents)
				i = w->index;
		}
		if (!run->agents[i].enrolled)
			break;
		lg_attest(w, &run->agents[i]);
		i += o->threads;
		if (i >= o->agents)
			i = w->index;
	}
	return NULL;
}

static int
lg_run_workers(struct lg_worker *ws, unsigned n, void *(*fn)(void *))
{
	unsigned started = 0;
	int rv = DG_OK;
	for (; started < n; started++) {
		if (pthread_create(&ws[started].thread, NULL, fn, &ws[started]) != 0) {
			rv = DG_ERR_NOMEM;
			break;
		}
	}
	for (unsigned i = 0; i < started; i++)
		pthread_join(ws[i].thread, NULL);
	return rv;
}

/* ---- measurements beside the load ---- */

/* OpenSSL's bare SHA-256 signature verify with key (RSA-2048 PKCS#1 v1.5 or
 * P-256 ECDSA), as check_signature in common/quote.c calls it (a fresh
 * context each time), on one thread. */
static int
lg_openssl_verify_rate(EVP_PKEY *key, double *rate)
{
	uint8_t msg[145], sig[LG_RSA_BYTES]; /* a quote's size */
	size_t sig_len = sizeof sig;
	EVP_MD_CTX *md = NULL;
	uint64_t n = 0;
	int rv = DG_ERR_CRYPTO;

	if (RAND_bytes(msg, sizeof msg) != 1 || (md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) <= 0 ||
	    EVP_DigestSign(md, sig, &sig_len, msg, sizeof msg) <= 0)
		goto out;
	EVP_MD_CTX_free(md);
	md = NULL;
	double t0 = lg_now(), t;
	do {
		for (int i = 0; i < 100; i++, n++) {
			if ((md = EVP_MD_CTX_new()) == NULL ||
			    EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) <= 0 ||
			    EVP_DigestVerify(md, sig, sig_len, msg, sizeof msg) != 1)
				goto out;
			EVP_MD_CTX_free(md);
			md = NULL;
		}
		t = lg_now();
	} while (t - t0 < LG_VERIFY_SECONDS);
	*rate = (double)n / (t - t0);
	rv = DG_OK;
out:
	EVP_MD_CTX_free(md);
	return rv;
}

/* VmRSS of pid in KiB; -1 if unknown. */
static long
lg_rss_kib(long pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;
	if (pid <= 0)
		return -1;
	snprintf(path, sizeof path, "/proc/%ld/status", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL) {
		if (strncmp(line, "VmRSS:", 6) == 0) {
			char *end;
			errno = 0;
			kib = strtol(line + 6, &end, 10);
			if (errno != 0 || end == line + 6)
				kib = -1;
			break;
		}
	}
	(void)fclose(f);
	return kib;
}

/* utime + stime of pid in seconds; -1 if unknown. */
static double
lg_cpu_s(long pid)
{
	char path[64], buf[2048];
	unsigned long long ut, st;
	double cpu = -1;
	FILE *f;
	if (pid <= 0)
		return -1;
	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = '\0';
	(void)fclose(f);
	/* comm may hold spaces: count fields from its closing parenthesis;
	 * utime and stime are fields 14 and 15, the 12th and 13th after it. */
	char *p = strrchr(buf, ')');
	for (int field = 2; p != NULL && field < 14; field++)
		p = strchr(p + 1, ' ');
	if (p == NULL)
		return -1;
	errno = 0;
	ut = strtoull(p + 1, &p, 10);
	st = strtoull(p, &p, 10);
	if (errno == 0)
		cpu = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
	return cpu;
}

static double
lg_self_cpu_s(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int
lg_merge(struct lg_series *dst, const struct lg_series *src)
{
	for (size_t i = 0; i < src->n; i++) {
		if (lg_series_add(dst, 0) != DG_OK)
			return DG_ERR_NOMEM;
		dst->v[dst->n - 1] = src->v[i];
	}
	return DG_OK;
}

/* ---- command line ---- */

static void
usage(FILE *f)
{
	(void)fputs(
	    "Usage: " LG_PROG " --verifier URL [OPTIONS]\n"
	    "       " LG_PROG " --make-policies DIR [--files N]\n"
	    "\n"
	    "Load generator for driftgate-verifier (benchmarks only): N simulated agents\n"
	    "with software RSA-2048 EK and AK enroll, then attest at a target rate,\n"
	    "each round carrying K new ima-ng entries and a signed TPM2 quote.\n"
	    "\n"
	    "  -m, --make-policies DIR  write DIR/" LG_BASELINE_NAME ".baseline approving every file\n"
	    "                           the agents measure (agents " LG_ID_PATTERN "), then exit\n"
	    "  -v, --verifier URL       the verifier (tcp://HOST:PORT)\n"
	    "  -n, --agents N           simulated agents (default 1000)\n"
	    "  -r, --rate R             target attestations/s in total; 0 = as fast as\n"
	    "                           possible (default: N/2, a 2 s heartbeat)\n"
	    "  -d, --duration S         seconds of attestation (default 10)\n"
	    "  -k, --entries K          new log entries per round (default 1)\n"
	    "      --ak rsa|ecc         the simulated AKs: RSA-2048 RSASSA (default) or\n"
	    "                           P-256 ECDSA, both SHA-256, as tpm2_createak makes them\n"
	    "  -t, --threads T          req sockets, one thread each: rounds in flight\n"
	    "                           (default 128; the verifier batches what is in\n"
	    "                           flight into one commit, so few threads starve it)\n"
	    "      --keys P             distinct EK/AK pairs, shared round-robin by the\n"
	    "                           agents (default min(N, 16); N: one per agent)\n"
	    "      --files F            files in the baseline (default 1000)\n"
	    "  -p, --verifier-pid PID   read its VmRSS and CPU time from /proc\n"
	    "      --id-prefix S        agent ids S0, S1, ... (default loadgen-<pid>-;\n"
	    "                           must match " LG_ID_PATTERN ")\n"
	    "\n"
	    "Start the verifier with the baseline, e.g.\n"
	    "  " LG_PROG " --make-policies /tmp/lg/policies && mkdir -m700 /tmp/lg/secrets\n"
	    "  driftgate-verifier serve --listen tcp://127.0.0.1:7399 --policies /tmp/lg/policies \\\n"
	    "      --secrets /tmp/lg/secrets --audit-log /tmp/lg/audit.jsonl --state /tmp/lg/v.db &\n"
	    "  " LG_PROG " --verifier tcp://127.0.0.1:7399 --verifier-pid $! --agents 1000\n"
	    "\n"
	    "The last line of output is machine-readable: 'loadgen-result key=value ...'.\n"
	    "Exit status: 0 every round passed, 1 error, 2 usage, 3 a round failed or erred.\n",
	    f);
}

static int
lg_parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < lo || v > hi)
		return DG_ERR_INVAL;
	*out = (unsigned)v;
	return DG_OK;
}

static int
lg_parse_double(const char *s, double lo, double hi, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v >= lo && v <= hi))
		return DG_ERR_INVAL;
	*out = v;
	return DG_OK;
}

enum { OPT_KEYS = 256, OPT_FILES, OPT_ID_PREFIX, OPT_AK };

static int
lg_parse(int argc, char **argv, struct lg_options *o, bool *rate_given)
{
	static const struct option longopts[] = {
		{"make-policies", required_argument, NULL, 'm'},
		{"verifier", required_argument, NULL, 'v'},
		{"agents", required_argument, NULL, 'n'},
		{"rate", required_argument, NULL, 'r'},
		{"duration", required_argument, NULL, 'd'},
		{"entries", required_argument, NULL, 'k'},
		{"threads", required_argument, NULL, 't'},
		{"keys", required_argument, NULL, OPT_KEYS},
		{"files", required_argument, NULL, OPT_FILES},
		{"verifier-pid", required_argument, NULL, 'p'},
		{"id-prefix", required_argument, NULL, OPT_ID_PREFIX},
		{"ak", required_argument, NULL, OPT_AK},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	unsigned pid = 0;
	int c, rv = DG_OK;

	*rate_given = false;
	while ((c = getopt_long(argc, argv, "m:v:n:r:d:k:t:p:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'm': o->make_policies = optarg; break;
		case 'v': o->url = optarg; break;
		case 'n': rv = lg_parse_uint(optarg, 1, LG_MAX_AGENTS, &o->agents); break;
		case 'r':
			rv = lg_parse_double(optarg, 0, 1e7, &o->rate);
			*rate_given = true;
			break;
		case 'd': rv = lg_parse_double(optarg, 0.1, 86400, &o->duration); break;
		case 'k': rv = lg_parse_uint(optarg, 0, LG_MAX_ENTRIES, &o->entries); break;
		case 't': rv = lg_parse_uint(optarg, 1, LG_MAX_THREADS, &o->threads); break;
		case OPT_KEYS: rv = lg_parse_uint(optarg, 1, LG_MAX_AGENTS, &o->keys); break;
		case OPT_FILES: rv = lg_parse_uint(optarg, 1, 1000000, &o->files); break;
		case 'p':
			rv = lg_parse_uint(optarg, 1, 0x7fffffff, &pid);
			o->verifier_pid = pid;
			break;
		case OPT_ID_PREFIX: o->id_prefix = optarg; break;
		case OPT_AK:
			o->ecc_ak = strcmp(optarg, "ecc") == 0;
			rv = o->ecc_ak || strcmp(optarg, "rsa") == 0 ? DG_OK : DG_ERR_INVAL;
			break;
		case 'h': usage(stdout); exit(0);
		default: return DG_ERR_INVAL;
		}
		if (rv != DG_OK) {
			fprintf(stderr, LG_PROG ": bad value '%s' for -%c\n", optarg, c < 256 ? c : '-');
			return rv;
		}
	}
	if (optind != argc || (o->url == NULL) == (o->make_policies == NULL)) {
		fprintf(stderr, LG_PROG ": give exactly one of --verifier and --make-policies\n");
		return DG_ERR_INVAL;
	}
	return DG_OK;
}

/* ---- the run ---- */

static void
lg_run_free(struct lg_run *run)
{
	for (unsigned i = 0; run->keys != NULL && i < run->opt.keys; i++) {
		EVP_PKEY_free(run->keys[i].ek);
		EVP_PKEY_free(run->keys[i].ak);
	}
	free(run->keys);
	free(run->agents);
	free(run->file_digest);
}

static int
lg_main(struct lg_run *run)
{
	struct lg_options *o = &run->opt;
	struct lg_worker *ws = NULL;
	struct lg_series round_lat = {0}, attest_lat = {0};
	uint64_t enrolled = 0, enroll_errors = 0, pass = 0, fail = 0, errors = 0;
	double client_s = 0, verify_rate = 0, ak_verify_rate = 0;
	int rv;

	if (o->keys == 0)
		o->keys = o->agents < 16 ? o->agents : 16;
	if (o->keys > o->agents)
		o->keys = o->agents;
	if (o->threads > o->agents)
		o->threads = o->agents;
	if (strncmp(o->id_prefix, "loadgen-", 8) != 0 ||
	    strlen(o->id_prefix) + 6 > DG_WIRE_MAX_AGENT_ID) {
		fprintf(stderr, LG_PROG ": --id-prefix must start with 'loadgen-' (the baseline's "
		                "pattern) and leave room for the number\n");
		return DG_ERR_INVAL;
	}
	rv = DG_ERR_NOMEM;
	if ((run->keys = calloc(o->keys, sizeof *run->keys)) == NULL ||
	    (run->agents = calloc(o->agents, sizeof *run->agents)) == NULL ||
	    (ws = calloc(o->threads, sizeof *ws)) == NULL)
		goto out;
	for (unsigned t = 0; t < o->threads; t++) {
		ws[t].run = run;
		ws[t].index = t;
	}

	/* Keys first, on every worker thread: RSA key generation is slow. */
	double t = lg_now();
	if ((rv = lg_run_workers(ws, o->threads, lg_keygen_main)) != DG_OK)
		goto out;
	for (unsigned i = 0; i < o->threads; i++)
		if ((rv = ws[i].rv) != DG_OK)
			goto out;
	printf(LG_PROG ": %u EK/AK pairs (RSA-2048) generated in %.2f s, shared by %u agents\n",
	       o->keys, lg_now() - t, o->agents);
	for (unsigned i = 0; i < o->agents; i++) {
		struct lg_agent *a = &run->agents[i];
		snprintf(a->id, sizeof a->id, "%s%u", o->id_prefix, i);
		a->index = i;
		a->keys = &run->keys[i % o->keys];
	}
	/* The peer figure is RSA-2048 whatever the AKs: the EK is always one. */
	if ((rv = lg_openssl_verify_rate(run->keys[0].ek, &verify_rate)) != DG_OK)
		goto out;
	printf(LG_PROG ": OpenSSL RSA-2048 verify (EVP_DigestVerify, 1 thread): %.0f /s\n",
	       verify_rate);
	ak_verify_rate = verify_rate;
	if (o->ecc_ak) {
		if ((rv = lg_openssl_verify_rate(run->keys[0].ak, &ak_verify_rate)) != DG_OK)
			goto out;
		printf(LG_PROG ": OpenSSL P-256 ECDSA verify (the AKs' scheme, 1 thread): %.0f /s\n",
		       ak_verify_rate);
	}

	for (unsigned i = 0; i < o->threads; i++)
		if ((rv = lg_worker_open(&ws[i])) != DG_OK) {
			fprintf(stderr, LG_PROG ": %s: %s\n", o->url, dg_strerror(rv));
			goto out;
		}

	/* Enrollment. */
	long rss0 = lg_rss_kib(o->verifier_pid);
	double vcpu0 = lg_cpu_s(o->verifier_pid);
	run->t0 = lg_now();
	if ((rv = lg_run_workers(ws, o->threads, lg_enroll_main)) != DG_OK)
		goto out;
	double enroll_s = lg_now() - run->t0;
	double vcpu1 = lg_cpu_s(o->verifier_pid);
	long rss1 = lg_rss_kib(o->verifier_pid);
	for (unsigned i = 0; i < o->threads; i++) {
		enrolled += ws[i].enrolled;
		enroll_errors += ws[i].enroll_errors;
	}
	printf(LG_PROG ": enrolled %" PRIu64 " of %u agents in %.2f s (%.0f /s)\n", enrolled,
	       o->agents, enroll_s, (double)enrolled / enroll_s);
	if (enroll_errors > 0)
		fprintf(stderr, LG_PROG ": *** %" PRIu64 " ENROLLMENTS FAILED ***\n", enroll_errors);
	if (enrolled == 0) {
		fprintf(stderr, LG_PROG ": no agent enrolled: is a verifier listening on %s, with "
		                "the policies of --make-policies?\n", o->url);
		rv = DG_ERR_STATE;
		goto out;
	}

	/* Attestation. */
	double rate = o->rate;
	if (rate > 0)
		printf(LG_PROG ": attesting for %.1f s at %.0f /s", o->duration, rate);
	else
		printf(LG_PROG ": attesting for %.1f s as fast as possible", o->duration);
	printf(", %u new entries per round, %u threads\n", o->entries, o->threads);
	double self0 = lg_self_cpu_s();
	run->t0 = lg_now();
	if ((rv = lg_run_workers(ws, o->threads, lg_attest_main)) != DG_OK)
		goto out;
	/* A worker whose last slot came early finishes before the duration is up. */
	double attest_s = lg_now() - run->t0;
	if (o->rate > 0 && attest_s < o->duration)
		attest_s = o->duration;
	double self1 = lg_self_cpu_s();
	double vcpu2 = lg_cpu_s(o->verifier_pid);
	long rss2 = lg_rss_kib(o->verifier_pid);
	for (unsigned i = 0; i < o->threads; i++) {
		pass += ws[i].pass;
		fail += ws[i].fail;
		errors += ws[i].errors;
		client_s += ws[i].client_s;
		if ((rv = lg_merge(&round_lat, &ws[i].round_lat)) != DG_OK ||
		    (rv = lg_merge(&attest_lat, &ws[i].attest_lat)) != DG_OK)
			goto out;
	}
	qsort(round_lat.v, round_lat.n, sizeof *round_lat.v, lg_cmp_u32);
	qsort(attest_lat.v, attest_lat.n, sizeof *attest_lat.v, lg_cmp_u32);
	uint64_t rounds = pass + fail + errors;
	double achieved = (double)(pass + fail) / attest_s;

	printf(LG_PROG ": %" PRIu64 " verdicts in %.2f s: %.1f attestations/s", pass + fail,
	       attest_s, achieved);
	if (rate > 0)
		printf(", target %.0f /s %s\n", rate,
		       achieved >= 0.98 * rate ? "met" : "NOT met (verifier or loadgen saturated)");
	else
		printf(" (as fast as possible)\n");
	printf(LG_PROG ": latency NONCE_REQ->VERDICT p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
	       lg_percentile_ms(&round_lat, 0.5), lg_percentile_ms(&round_lat, 0.99),
	       lg_percentile_ms(&round_lat, 1.0));
	printf(LG_PROG ": latency ATTEST->VERDICT    p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
	       lg_percentile_ms(&attest_lat, 0.5), lg_percentile_ms(&attest_lat, 0.99),
	       lg_percentile_ms(&attest_lat, 1.0));
	printf(LG_PROG ": loadgen's own work per round (log, quote, AK signature) %.3f ms; "
	       "loadgen CPU %.2f s\n", rounds ? 1e3 * client_s / (double)rounds : 0, self1 - self0);
	if (vcpu0 >= 0 && vcpu2 >= 0 && pass + fail > 0)
		printf(LG_PROG ": verifier CPU: enrollment %.3f ms/agent, attestation %.3f ms/round "
		       "(%.0f%% of one core)\n", 1e3 * (vcpu1 - vcpu0) / (double)enrolled,
		       1e3 * (vcpu2 - vcpu1) / (double)(pass + fail),
		       100 * (vcpu2 - vcpu1) / attest_s);
	if (rss0 >= 0 && rss1 >= 0)
		printf(LG_PROG ": verifier VmRSS %ld KiB -> %ld KiB enrolled -> %ld KiB attested: "
		       "%.1f KiB/agent enrolled, %.1f KiB/agent after rounds\n", rss0, rss1, rss2,
		       (double)(rss1 - rss0) / (double)enrolled, (double)(rss2 - rss0) / (double)enrolled);
	printf(LG_PROG ": pass %" PRIu64 ", fail %" PRIu64 ", error %" PRIu64 "\n", pass, fail,
	       errors);
	if (fail + errors + enroll_errors > 0)
		fprintf(stderr, "\n" LG_PROG ": *** %" PRIu64 " FAILED VERDICTS, %" PRIu64
		                " ERRORS, %" PRIu64 " FAILED ENROLLMENTS: with the loadgen "
		                "baseline every round must pass ***\n\n",
		        fail, errors, enroll_errors);
	printf("loadgen-result agents=%" PRIu64 " enroll_s=%.3f enroll_per_s=%.1f target=%.1f "
	       "achieved=%.1f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f attest_p50_ms=%.3f "
	       "attest_p99_ms=%.3f attest_max_ms=%.3f pass=%" PRIu64 " fail=%" PRIu64
	       " error=%" PRIu64 " enroll_error=%" PRIu64 " rsa_verify_per_s=%.0f "
	       "ak_verify_per_s=%.0f rss_kib_per_agent=%.2f verifier_cpu_ms_per_round=%.4f client_ms_per_round=%.4f\n",
	       enrolled, enroll_s, (double)enrolled / enroll_s, rate, achieved,
	       lg_percentile_ms(&round_lat, 0.5), lg_percentile_ms(&round_lat, 0.99),
	       lg_percentile_ms(&round_lat, 1.0), lg_percentile_ms(&attest_lat, 0.5),
	       lg_percentile_ms(&attest_lat, 0.99), lg_percentile_ms(&attest_lat, 1.0), pass, fail,
	       errors, enroll_errors, verify_rate, ak_verify_rate,
	       rss0 >= 0 && rss1 >= 0 ? (double)(rss1 - rss0) / (double)enrolled : -1.0,
	       vcpu0 >= 0 && pass + fail > 0 ? 1e3 * (vcpu2 - vcpu1) / (double)(pass + fail) : -1.0,
	       rounds ? 1e3 * client_s / (double)rounds : 0);
	rv = fail + errors + enroll_errors > 0 ? DG_ERR_POLICY : DG_OK;
out:
	for (unsigned i = 0; ws != NULL && i < o->threads; i++)
		lg_worker_close(&ws[i]);
	free(ws);
	free(round_lat.v);
	free(attest_lat.v);
	return rv;
}

int
main(int argc, char **argv)
{
	struct lg_run run;
	char prefix[32];
	bool rate_given;
	int rv;

	/* Progress lines go out as they happen, also into a log file. */
	(void)setvbuf(stdout, NULL, _IOLBF, 0);
	memset(&run, 0, sizeof run);
	snprintf(prefix, sizeof prefix, "loadgen-%ld-", (long)getpid());
	run.opt = (struct lg_options){
		.agents = 1000, .threads = 128, .entries = 1, .files = LG_DEFAULT_FILES,
		.duration = 10, .id_prefix = prefix,
	};
	if (lg_parse(argc, argv, &run.opt, &rate_given) != DG_OK) {
		usage(stderr);
		return 2;
	}
	if (!rate_given)
		run.opt.rate = run.opt.agents / 2.0;
	atomic_init(&run.printed, 0);
	atomic_init(&run.next_key, 0);
	if ((rv = lg_file_digests(run.opt.files, &run.file_digest)) != DG_OK) {
		fprintf(stderr, LG_PROG ": %s\n", dg_strerror(rv));
		return 1;
	}
	if (run.opt.make_policies != NULL)
		rv = lg_make_policies(run.opt.make_policies, run.opt.files,
		                      (const uint8_t(*)[LG_SHA256_LEN])run.file_digest);
	else
		rv = lg_main(&run);
	lg_run_free(&run);
	if (rv == DG_ERR_POLICY)
		return 3;
	if (rv != DG_OK) {
		fprintf(stderr, LG_PROG ": %s\n", dg_strerror(rv));
		return 1;
	}
	return 0;
}
