/*
 * dg_quote_verify against quotes made by tpm2_quote on a real swtpm, with
 * PCR values read by tpm2_pcrread and clockInfo decoded by tpm2_print; and,
 * for the algorithm allowlist, against quotes marshaled with Tss2_MU and
 * signed with OpenSSL, so that every scheme and hash can be tried.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <tss2/tss2_mu.h>

#include "driftgate/err.h"
#include "driftgate/quote.h"
#include "driftgate/tpmkey.h"
#include "testutil.h"

#define PCR 16

struct blob {
	uint8_t *data;
	size_t len;
};

/* Filled once by the unchecked fixture; each test runs in a fork of it. */
static char *work;
static pid_t swtpm_pid;
static uint8_t qualifying[DG_QUOTE_NONCE_LEN]; /* extraData: the verifier's nonce */
static uint8_t pcr_value[32];
static EVP_PKEY *ak_rsa, *ak_pss, *ak_ecc, *ak_rsa384, *ak_ecc384, *ak_rsa1;
static struct blob q_rsa, s_rsa, q_pss, s_pss, q_ecc, s_ecc, q_other, s_other;
static struct blob q_two, s_two, q_sha1, s_sha1, q_banks, s_banks;
/* Signed with sha384 and sha1 schemes (the AK's scheme hash, tpm2_createak -g). */
static struct blob q_rsa384, s_rsa384, q_ecc384, s_ecc384, q_rsa1, s_rsa1;
static struct dg_quote_clock rsa_clock; /* from tpm2_print */

static struct blob
load(const char *file)
{
	char path[4096];
	struct blob b = { 0 };
	snprintf(path, sizeof path, "%s/%s", work, file);
	b.data = tu_read_file(path, &b.len);
	ck_assert_msg(b.data != NULL, "cannot read %s", path);
	return b;
}

static EVP_PKEY *
load_ak(const char *file)
{
	struct blob pub = load(file);
	EVP_PKEY *key = NULL;
	ck_assert_int_eq(dg_tpmkey_import(pub.data, pub.len, DG_TPMKEY_AK, &key, NULL, NULL),
	                 DG_OK);
	free(pub.data);
	return key;
}

/*
 * The sha1 AK is refused by dg_tpmkey_import (its scheme hash), so build its
 * OpenSSL key from the TPM2B_PUBLIC directly: the quote test must show that a
 * valid sha1 signature by a key the verifier holds is still refused.
 */
static EVP_PKEY *
load_rsa_ak_unchecked(const char *file)
{
	struct blob pub = load(file);
	TPM2B_PUBLIC parsed = { 0 };
	size_t offset = 0;
	EVP_PKEY *key = NULL;

	ck_assert_int_eq(dg_tpmkey_import(pub.data, pub.len, DG_TPMKEY_AK, NULL, NULL, NULL),
	                 DG_ERR_UNSUPPORTED);
	ck_assert_int_eq(Tss2_MU_TPM2B_PUBLIC_Unmarshal(pub.data, pub.len, &offset, &parsed), 0);
	ck_assert_uint_eq(parsed.publicArea.parameters.rsaDetail.scheme.details.rsassa.hashAlg,
	                  TPM2_ALG_SHA1);
	BIGNUM *n = BN_bin2bn(parsed.publicArea.unique.rsa.buffer, parsed.publicArea.unique.rsa.size,
	                      NULL);
	BIGNUM *e = BN_new();
	ck_assert_int_eq(BN_set_word(e, 65537), 1);
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	ck_assert_int_eq(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n), 1);
	ck_assert_int_eq(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e), 1);
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	ck_assert_int_eq(EVP_PKEY_fromdata_init(ctx), 1);
	ck_assert_int_eq(EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params), 1);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	free(pub.data);
	return key;
}

static void
quote_hash(const char *ak, const char *scheme, const char *hash, const char *sel,
           const char *out, const char *hex)
{
	ck_assert_int_eq(tu_tpm2(work, "tpm2_quote -c %s.ctx --scheme %s -l %s -q %s -g %s "
	                               "-m %s.msg -s %s.sig", ak, scheme, sel, hex, hash, out, out),
	                 0);
}

static void
quote(const char *ak, const char *scheme, const char *sel, const char *out, const char *hex)
{
	quote_hash(ak, scheme, "sha256", sel, out, hex);
}

static void
setup_tpm(void)
{
	char tcti[64], hex[2 * DG_QUOTE_NONCE_LEN + 1];
	int port = 0;

	work = tu_tmpdir();
	ck_assert_ptr_nonnull(work);
	ck_assert_int_eq(tu_swtpm_start(work, &port, &swtpm_pid), 0);
	snprintf(tcti, sizeof tcti, "swtpm:host=127.0.0.1,port=%d", port);
	setenv("TPM2TOOLS_TCTI", tcti, 1);
	/* The malformed inputs below would make tpm2-tss's unmarshalers log each refusal. */
	setenv("TSS2_LOG", "marshal+none", 1);

	for (size_t i = 0; i < sizeof qualifying; i++)
		qualifying[i] = (uint8_t)(i + 1);
	for (size_t i = 0; i < sizeof qualifying; i++)
		snprintf(hex + 2 * i, 3, "%02x", qualifying[i]);

	ck_assert_int_eq(tu_tpm2(work, "tpm2_createek -c 0x81010001 -G rsa -u ek.pub"), 0);
	static const char *const aks[][2] = {
		{ "ak_rsa", "-G rsa -s rsassa -g sha256" },
		{ "ak_pss", "-G rsa -s rsapss -g sha256" },
		{ "ak_ecc", "-G ecc -s ecdsa -g sha256" },
		{ "ak_other", "-G rsa -s rsassa -g sha256" },
		{ "ak_rsa384", "-G rsa -s rsassa -g sha384" },
		{ "ak_ecc384", "-G ecc -s ecdsa -g sha384" },
		{ "ak_rsa1", "-G rsa -s rsassa -g sha1" },
	};
	for (size_t i = 0; i < sizeof aks / sizeof aks[0]; i++)
		ck_assert_int_eq(tu_tpm2(work, "tpm2_createak -C 0x81010001 -c %s.ctx %s -u %s.pub",
		                         aks[i][0], aks[i][1], aks[i][0]), 0);
	ck_assert_int_eq(tu_tpm2(work, "tpm2_pcrextend %d:sha256=%s", PCR,
	                         "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"),
	                 0);
	ck_assert_int_eq(tu_tpm2(work, "tpm2_pcrread sha256:%d -o pcr.bin", PCR), 0);
	quote("ak_rsa", "rsassa", "sha256:16", "rsa", hex);
	quote("ak_pss", "rsapss", "sha256:16", "pss", hex);
	quote("ak_ecc", "ecdsa", "sha256:16", "ecc", hex);
	quote("ak_other", "rsassa", "sha256:16", "other", hex);
	quote("ak_rsa", "rsassa", "sha256:16,17", "two", hex);
	quote("ak_rsa", "rsassa", "sha1:16", "sha1", hex);
	quote("ak_rsa", "rsassa", "sha1:16+sha256:16", "banks", hex);
	quote_hash("ak_rsa384", "rsassa", "sha384", "sha256:16", "rsa384", hex);
	quote_hash("ak_ecc384", "ecdsa", "sha384", "sha256:16", "ecc384", hex);
	quote_hash("ak_rsa1", "rsassa", "sha1", "sha256:16", "rsa1", hex);
	ck_assert_int_eq(tu_tpm2(work, "tpm2_print -t TPMS_ATTEST rsa.msg | awk '/ clock:/ {c=$2} "
	                               "/resetCount:/ {r=$2} /restartCount:/ {s=$2} /safe:/ {f=$2} "
	                               "END {print c, r, s, f}' > rsa.clock"), 0);

	struct blob pcr = load("pcr.bin"), clock_text = load("rsa.clock");
	ck_assert_uint_eq(pcr.len, sizeof pcr_value);
	memcpy(pcr_value, pcr.data, sizeof pcr_value);
	free(pcr.data);
	unsigned long long c = 0;
	unsigned int r = 0, s = 0, f = 0;
	clock_text.data[clock_text.len] = 0; /* tu_read_file leaves room for it */
	ck_assert_int_eq(sscanf((char *)clock_text.data, "%llu %u %u %u", &c, &r, &s, &f), 4);
	rsa_clock = (struct dg_quote_clock){ c, r, s, (uint8_t)f };
	free(clock_text.data);

	ak_rsa = load_ak("ak_rsa.pub");
	ak_pss = load_ak("ak_pss.pub");
	ak_ecc = load_ak("ak_ecc.pub");
	ak_rsa384 = load_ak("ak_rsa384.pub");
	ak_ecc384 = load_ak("ak_ecc384.pub");
	ak_rsa1 = load_rsa_ak_unchecked("ak_rsa1.pub");
	q_rsa = load("rsa.msg"), s_rsa = load("rsa.sig");
	q_pss = load("pss.msg"), s_pss = load("pss.sig");
	q_ecc = load("ecc.msg"), s_ecc = load("ecc.sig");
	q_other = load("other.msg"), s_other = load("other.sig");
	q_two = load("two.msg"), s_two = load("two.sig");
	q_sha1 = load("sha1.msg"), s_sha1 = load("sha1.sig");
	q_banks = load("banks.msg"), s_banks = load("banks.sig");
	q_rsa384 = load("rsa384.msg"), s_rsa384 = load("rsa384.sig");
	q_ecc384 = load("ecc384.msg"), s_ecc384 = load("ecc384.sig");
	q_rsa1 = load("rsa1.msg"), s_rsa1 = load("rsa1.sig");
}

static void
teardown_tpm(void)
{
	tu_swtpm_stop(swtpm_pid);
	if (getenv("DG_KEEP") == NULL)
		tu_sh("rm -rf '%s'", work);
	free(work);
	EVP_PKEY_free(ak_rsa);
	EVP_PKEY_free(ak_pss);
	EVP_PKEY_free(ak_ecc);
	EVP_PKEY_free(ak_rsa384);
	EVP_PKEY_free(ak_ecc384);
	EVP_PKEY_free(ak_rsa1);
	struct blob *all[] = { &q_rsa, &s_rsa, &q_pss, &s_pss, &q_ecc, &s_ecc, &q_other,
	                       &s_other, &q_two, &s_two, &q_sha1, &s_sha1, &q_banks, &s_banks,
	                       &q_rsa384, &s_rsa384, &q_ecc384, &s_ecc384, &q_rsa1, &s_rsa1 };
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		free(all[i]->data);
}

static struct dg_quote_expect
expect_default(void)
{
	return (struct dg_quote_expect){ .qualifying = qualifying,
		                         .qualifying_len = sizeof qualifying,
		                         .pcr = PCR,
		                         .pcr_value = pcr_value,
		                         .last = NULL };
}

static int
verify(EVP_PKEY *ak, const struct blob *q, const struct blob *s,
       const struct dg_quote_expect *e)
{
	return dg_quote_verify(ak, q->data, q->len, s->data, s->len, e, NULL);
}

/* Offset of clockInfo.clock: magic, type, qualifiedSigner (2 + 34), extraData (2 + 32). */
#define CLOCK_OFFSET (4 + 2 + 2 + 34 + 2 + 32)

/* The verifier's split: check_signed, then check_pcr on the same bytes, must
 * decide exactly as dg_quote_verify does for every PCR and clock outcome. */
START_TEST(check_pcr_matches_verify)
{
	struct dg_quote_expect e = expect_default();
	struct dg_quote_clock later = rsa_clock;
	uint8_t other_pcr[32];

	ck_assert_int_eq(dg_quote_check_pcr(q_rsa.data, q_rsa.len, s_rsa.data, s_rsa.len, &e), DG_OK);
	ck_assert_int_eq(dg_quote_check_pcr(q_ecc.data, q_ecc.len, s_ecc.data, s_ecc.len, &e), DG_OK);
	memcpy(other_pcr, e.pcr_value, sizeof other_pcr);
	other_pcr[0] ^= 1;
	e.pcr_value = other_pcr;
	ck_assert_int_eq(dg_quote_check_pcr(q_rsa.data, q_rsa.len, s_rsa.data, s_rsa.len, &e),
	                 DG_ERR_PCR_DIGEST);
	ck_assert_int_eq(verify(ak_rsa, &q_rsa, &s_rsa, &e), DG_ERR_PCR_DIGEST);
	e = expect_default();
	later.clock++;
	e.last = &later;
	ck_assert_int_eq(dg_quote_check_pcr(q_rsa.data, q_rsa.len, s_rsa.data, s_rsa.len, &e),
	                 DG_ERR_CLOCK);
	ck_assert_int_eq(verify(ak_rsa, &q_rsa, &s_rsa, &e), DG_ERR_CLOCK);
	e = expect_default();
	ck_assert_int_eq(dg_quote_check_pcr(q_rsa.data, q_rsa.len - 1, s_rsa.data, s_rsa.len, &e),
	                 DG_ERR_FORMAT);
	ck_assert_int_eq(dg_quote_check_pcr(q_rsa.data, q_rsa.len, s_rsa.data, s_rsa.len - 1, &e),
	                 DG_ERR_FORMAT);
}
END_TEST

START_TEST(tpm_quotes_verify)
{
	struct dg_quote_expect e = expect_default();
	struct dg_quote_clock clock = { 0 };

	ck_assert_int_eq(dg_quote_verify(ak_rsa, q_rsa.data, q_rsa.len, s_rsa.data, s_rsa.len, &e,
	                                 &clock), DG_OK);
	ck_assert_uint_eq(clock.clock, rsa_clock.clock);
	ck_assert_uint_eq(clock.reset_count, rsa_clock.reset_count);
	ck_assert_uint_eq(clock.restart_count, rsa_clock.restart_count);
	ck_assert_uint_eq(clock.safe, rsa_clock.safe);
	ck_assert_int_eq(verify(ak_pss, &q_pss, &s_pss, &e), DG_OK);
	ck_assert_int_eq(verify(ak_ecc, &q_ecc, &s_ecc, &e), DG_OK);
	ck_assert_int_eq(dg_quote_check_signed(ak_ecc, q_ecc.data, q_ecc.len, s_ecc.data,
	                                       s_ecc.len, qualifying, sizeof qualifying, PCR,
	                                       NULL), DG_OK);
	/* sha384 schemes: the TPM takes pcrDigest with the scheme's hash (48 bytes). */
	ck_assert_int_eq(verify(ak_rsa384, &q_rsa384, &s_rsa384, &e), DG_OK);
	ck_assert_int_eq(verify(ak_ecc384, &q_ecc384, &s_ecc384, &e), DG_OK);
}
END_TEST

/* SHA-1 from a genuine TPM: a quote signed with a sha1 scheme, and a quote of
 * the sha1 bank, are refused as algorithms, whatever else holds. */
START_TEST(tpm_sha1_is_refused)
{
	struct dg_quote_expect e = expect_default();

	ck_assert_int_eq(verify(ak_rsa1, &q_rsa1, &s_rsa1, &e), DG_ERR_UNSUPPORTED);
	ck_assert_int_eq(dg_quote_check_signed(ak_rsa1, q_rsa1.data, q_rsa1.len, s_rsa1.data,
	                                       s_rsa1.len, qualifying, sizeof qualifying, PCR,
	                                       NULL), DG_ERR_UNSUPPORTED);
	ck_assert_int_eq(verify(ak_rsa, &q_sha1, &s_sha1, &e), DG_ERR_UNSUPPORTED);
	/* Two banks are a selection error before any bank is looked at. */
	ck_assert_int_eq(verify(ak_rsa, &q_banks, &s_banks, &e), DG_ERR_PCR_SELECT);
}
END_TEST

START_TEST(flipped_attest_byte_fails)
{
	struct dg_quote_expect e = expect_default();

	/* A flip that keeps the structure valid must be caught by the signature. */
	q_rsa.data[CLOCK_OFFSET + 7] ^= 1;
	ck_assert_int_eq(verify(ak_rsa, &q_rsa, &s_rsa, &e), DG_ERR_SIGNATURE);
	q_ecc.data[CLOCK_OFFSET + 7] ^= 1;
	ck_assert_int_eq(verify(ak_ecc, &q_ecc, &s_ecc, &e), DG_ERR_SIGNATURE);
	q_ecc.data[CLOCK_OFFSET + 7] ^= 1;
	q_rsa.data[CLOCK_OFFSET + 7] ^= 1;
	/* Magic and type are checked before the signature. */
	q_rsa.data[0] ^= 1;
	ck_assert_int_eq(verify(ak_rsa, &q_rsa, &s_rsa, &e), DG_ERR_FORMAT);
	q_rsa.data[0] ^= 1;
	q_rsa.data[5] = 0x17; /* TPM2_ST_ATTEST_CERTIFY */
	ck_assert_int_ne(verify(ak_rsa, &q_rsa, &s_rsa, &e), DG_OK);
	q_rsa.data[5] = 0x18;
	for (size_t i = 0; i < q_rsa.len; i++) {
		q_rsa.data[i] ^= 0x40;
		int err = verify(ak_rsa, &q_rsa, &s_rsa, &e);
		ck_assert_msg(err != DG_OK, "flip at %zu accepted", i);
		q_rsa.data[i] ^= 0x40;
	}
	ck_assert_int_eq(verify(ak_rsa, &q_rsa, &s_rsa, &e), DG_OK);
}
END_TEST

START_TEST(flipped_signature_byte_fails)
{
	struct dg_quote_expect e = expect_default();
	struct blob *sigs[] = { &s_rsa, &s_ecc };
	EVP_PKEY *keys[] = { ak_rsa, ak_ecc };
	struct blob *quotes[] = { &q_rsa, &q_ecc };

	for (size_t k = 0; k < 2; k++) {
		struct blob *s = sigs[k];
		s->data[s->len - 5] ^= 1;
		ck_assert_int_eq(verify(keys[k], quotes[k], s, &e), DG_ERR_SIGNATURE);
		s->data[s->len - 5] ^= 1;
		for (size_t i = 0; i < s->len; i++) {
			s->data[i] ^= 0x40;
			ck_assert_msg(verify(keys[k], quotes[k], s, &e) != DG_OK, "flip at %zu", i);
			s->data[i] ^= 0x40;
		}
	}
}
END_TEST

START_TEST(signature_from_another_key_fails)
{
	struct dg_quote_expect e = expect_default();

	/* Same PCR, same qualifying, signed by a different AK of the same TPM. */
	ck_assert_int_eq(verify(ak_rsa, &q_other, &s_other, &e), DG_ERR_SIGNATURE);
	ck_assert_int_eq(verify(ak_rsa, &q_rsa, &s_other, &e), DG_ERR_SIGNATURE);
	/* Scheme that does not fit the key type. */
	ck_assert_int_eq(verify(ak_rsa, &q_ecc, &s_ecc, &e), DG_ERR_SIGNATURE);
	ck_assert_int_eq(verify(ak_ecc, &q_rsa, &s_rsa, &e), DG_ERR_SIGNATURE);
	ck_assert_int_eq(verify(ak_pss, &q_rsa, &s_rsa, &e), DG_ERR_SIGNATURE);
}
END_TEST

START_TEST(wrong_qualifying_is_nonce_error)
{
	struct dg_quote_expect e = expect_default();
	uint8_t other[DG_QUOTE_NONCE_LEN];

	memcpy(other, qualifying, sizeof other);
	other[31] ^= 1;
	e.qualifying = other;
	ck_assert_int_eq(verify(ak_rsa, &q_rsa, &s_rsa, &e), DG_ERR_NONCE);
	e.qualifying = qualifying;
	e.qualifying_len = sizeof qualifying - 1;
	ck_assert_int_eq(verify(ak_rsa, &q_rsa, &s_rsa, &e), DG_ERR_NONCE);
	e.qualifying_len = 0;
	ck_assert_int_eq(verify(ak_ecc, &q_ecc, &s_ecc, &e), DG_ERR_NONCE);
}
END_TEST

START_TEST(wrong_selection_is_pcr_select_error)
{
	struct dg_quote_expect e = expect_default();

	e.pcr = 17;
	ck_assert_int_eq(verify(ak_rsa, &q_rsa, &s_rsa, &e), DG_ERR_PCR_SELECT);
	e.pcr = 0;
	ck_assert_int_eq(verify(ak_rsa, &q_rsa, &s_rsa, &e), DG_ERR_PCR_SELECT);
	e.pcr = PCR;
	ck_assert_int_eq(verify(ak_rsa, &q_two, &s_two, &e), DG_ERR_PCR_SELECT);
	ck_assert_int_eq(verify(ak_rsa, &q_banks, &s_banks, &e), DG_ERR_PCR_SELECT);
	ck_assert_int_eq(dg_quote_check_signed(ak_rsa, q_two.data, q_two.len, s_two.data,
	                                       s_two.len, qualifying, sizeof qualifying, PCR,
	                                       NULL), DG_ERR_PCR_SELECT);
}
END_TEST

START_TEST(wrong_pcr_value_is_digest_error)
{
	struct dg_quote_expect e = expect_default();
	uint8_t other[32];

	memcpy(other, pcr_value, sizeof other);
	other[0] ^= 1;
	e.pcr_value = other;
	ck_assert_int_eq(verify(ak_rsa, &q_rsa, &s_rsa, &e), DG_ERR_PCR_DIGEST);
	ck_assert_int_eq(verify(ak_ecc, &q_ecc, &s_ecc, &e), DG_ERR_PCR_DIGEST);
	/* check_signed does not look at the PCR value. */
	ck_assert_int_eq(dg_quote_check_signed(ak_rsa, q_rsa.data, q_rsa.len, s_rsa.data,
	                                       s_rsa.len, qualifying, sizeof qualifying, PCR,
	                                       NULL), DG_OK);
}
END_TEST

START_TEST(trailing_and_truncated_are_refused)
{
	struct dg_quote_expect e = expect_default();
	uint8_t longer[DG_QUOTE_MAX_SIG + 1];
	struct blob b = { longer, 0 };

	memcpy(longer, q_rsa.data, q_rsa.len);
	longer[q_rsa.len] = 0;
	b.len = q_rsa.len + 1;
	ck_assert_int_eq(verify(ak_rsa, &b, &s_rsa, &e), DG_ERR_TRAILING);
	memcpy(longer, s_rsa.data, s_rsa.len);
	longer[s_rsa.len] = 0;
	b.len = s_rsa.len + 1;
	ck_assert_int_eq(verify(ak_rsa, &q_rsa, &b, &e), DG_ERR_TRAILING);
	for (size_t cut = 0; cut < q_rsa.len; cut++) {
		/* Exact-size copies, so ASan sees any read past the announced length. */
		uint8_t *copy = malloc(cut + 1);
		memcpy(copy, q_rsa.data, cut);
		struct blob t = { copy, cut };
		int err = verify(ak_rsa, &t, &s_rsa, &e);
		ck_assert_msg(err == DG_ERR_TRUNCATED || err == DG_ERR_FORMAT, "attest cut %zu: %s",
		              cut, dg_strerror(err));
		free(copy);
	}
	for (size_t cut = 0; cut < s_ecc.len; cut++) {
		uint8_t *copy = malloc(cut + 1);
		memcpy(copy, s_ecc.data, cut);
		struct blob t = { copy, cut };
		int err = verify(ak_ecc, &q_ecc, &t, &e);
		ck_assert_msg(err == DG_ERR_TRUNCATED || err == DG_ERR_FORMAT, "sig cut %zu: %s",
		              cut, dg_strerror(err));
		free(copy);
	}
	ck_assert_int_eq(dg_quote_verify(ak_rsa, q_rsa.data, DG_QUOTE_MAX_ATTEST + 1, s_rsa.data,
	                                 s_rsa.len, &e, NULL), DG_ERR_TOOBIG);
	ck_assert_int_eq(dg_quote_verify(NULL, q_rsa.data, q_rsa.len, s_rsa.data, s_rsa.len, &e,
	                                 NULL), DG_ERR_INVAL);
	e.pcr = 32;
	ck_assert_int_eq(verify(ak_rsa, &q_rsa, &s_rsa, &e), DG_ERR_INVAL);
}
END_TEST

START_TEST(clock_going_backwards_is_refused)
{
	struct dg_quote_expect e = expect_default();
	struct dg_quote_clock now = { 0 }, last;

	ck_assert_int_eq(dg_quote_verify(ak_rsa, q_rsa.data, q_rsa.len, s_rsa.data, s_rsa.len, &e,
	                                 &now), DG_OK);
	e.last = &last;
	last = now;
	ck_assert_int_eq(verify(ak_rsa, &q_rsa, &s_rsa, &e), DG_OK); /* same instant */
	last.clock = now.clock + 1;
	ck_assert_int_eq(verify(ak_rsa, &q_rsa, &s_rsa, &e), DG_ERR_CLOCK);
	last = now;
	last.restart_count = now.restart_count + 1;
	last.clock = 0;
	ck_assert_int_eq(verify(ak_rsa, &q_rsa, &s_rsa, &e), DG_ERR_CLOCK);
	last = now;
	last.reset_count = now.reset_count + 1;
	last.restart_count = 0;
	last.clock = 0;
	ck_assert_int_eq(verify(ak_rsa, &q_rsa, &s_rsa, &e), DG_ERR_CLOCK);
	/* A newer boot than last round: reboot, not an error, even with a smaller clock. */
	ck_assert_uint_gt(now.reset_count, 0);
	last = now;
	last.reset_count = now.reset_count - 1;
	last.restart_count = now.restart_count + 5;
	last.clock = now.clock + 1000000;
	ck_assert_int_eq(verify(ak_rsa, &q_rsa, &s_rsa, &e), DG_OK);
	/* Clock is reported once signature and extraData hold, even if later checks fail. */
	struct dg_quote_clock seen = { 0 };
	last = now;
	last.clock = now.clock + 1;
	ck_assert_int_eq(dg_quote_verify(ak_rsa, q_rsa.data, q_rsa.len, s_rsa.data, s_rsa.len, &e,
	                                 &seen), DG_ERR_CLOCK);
	ck_assert_uint_eq(seen.clock, now.clock);
}
END_TEST

START_TEST(checks_run_in_documented_order)
{
	struct dg_quote_expect e = expect_default();
	uint8_t other_q[DG_QUOTE_NONCE_LEN], other_pcr[32];
	struct dg_quote_clock future = { UINT64_MAX, UINT32_MAX, UINT32_MAX, 0 };

	memset(other_q, 0, sizeof other_q);
	memset(other_pcr, 0, sizeof other_pcr);
	e.qualifying = other_q;
	e.pcr = 3;
	e.pcr_value = other_pcr;
	e.last = &future;
	ck_assert_int_eq(verify(ak_rsa, &q_other, &s_other, &e), DG_ERR_SIGNATURE);
	ck_assert_int_eq(verify(ak_rsa, &q_rsa, &s_rsa, &e), DG_ERR_NONCE);
	e.qualifying = qualifying;
	ck_assert_int_eq(verify(ak_rsa, &q_rsa, &s_rsa, &e), DG_ERR_PCR_SELECT);
	e.pcr = PCR;
	ck_assert_int_eq(verify(ak_rsa, &q_rsa, &s_rsa, &e), DG_ERR_CLOCK);
	e.last = NULL;
	ck_assert_int_eq(verify(ak_rsa, &q_rsa, &s_rsa, &e), DG_ERR_PCR_DIGEST);
}
END_TEST

/* ---- Quotes made without a TPM: every scheme and hash the allowlist decides on ---- */

static EVP_PKEY *soft_rsa, *soft_ecc;
static const uint8_t soft_pcr[32] = { 0x5a, 0x01, 0x02, 0x03, [31] = 0xa5 };

static void
setup_soft(void)
{
	for (size_t i = 0; i < sizeof qualifying; i++)
		qualifying[i] = (uint8_t)(0x40 + i);
	ck_assert_ptr_nonnull(soft_rsa = EVP_RSA_gen(2048));
	ck_assert_ptr_nonnull(soft_ecc = EVP_EC_gen("P-256"));
}

static void
teardown_soft(void)
{
	EVP_PKEY_free(soft_rsa);
	EVP_PKEY_free(soft_ecc);
}

static const EVP_MD *
soft_md(TPM2_ALG_ID hash)
{
	switch (hash) {
	case TPM2_ALG_SHA1: return EVP_sha1();
	case TPM2_ALG_SHA256: return EVP_sha256();
	case TPM2_ALG_SHA384: return EVP_sha384();
	case TPM2_ALG_SHA512: return EVP_sha512();
	default: ck_abort_msg("hash %#x", hash); return NULL;
	}
}

static struct blob
soft_marshal_sig(const TPMT_SIGNATURE *sig)
{
	struct blob s = { malloc(DG_QUOTE_MAX_SIG), 0 };
	ck_assert_int_eq(Tss2_MU_TPMT_SIGNATURE_Marshal(sig, s.data, DG_QUOTE_MAX_SIG, &s.len),
	                 TSS2_RC_SUCCESS);
	return s;
}

/*
 * A quote of PCR in bank, as a TPM would make it with an AK whose scheme is
 * sig_alg over hash: TPMS_ATTEST marshaled with Tss2_MU, pcrDigest taken with
 * hash (as TPM2_Quote does), signed by OpenSSL.
 */
static void
soft_quote(EVP_PKEY *key, TPM2_ALG_ID sig_alg, TPM2_ALG_ID hash, TPM2_ALG_ID bank,
           struct blob *q, struct blob *s)
{
	TPMS_ATTEST a = { 0 };
	TPMT_SIGNATURE sig = { .sigAlg = sig_alg };
	TPMS_PCR_SELECTION *sel = &a.attested.quote.pcrSelect.pcrSelections[0];
	const EVP_MD *md = soft_md(hash);
	uint8_t der[512];
	size_t der_len = sizeof der;
	unsigned int digest_len = 0;

	a.magic = TPM2_GENERATED_VALUE;
	a.type = TPM2_ST_ATTEST_QUOTE;
	a.extraData.size = sizeof qualifying;
	memcpy(a.extraData.buffer, qualifying, sizeof qualifying);
	a.clockInfo.clock = 1000;
	a.clockInfo.safe = 1;
	a.attested.quote.pcrSelect.count = 1;
	sel->hash = bank;
	sel->sizeofSelect = 3;
	sel->pcrSelect[PCR / 8] = 1u << (PCR % 8);
	ck_assert_int_eq(EVP_Digest(soft_pcr, sizeof soft_pcr, a.attested.quote.pcrDigest.buffer,
	                            &digest_len, md, NULL), 1);
	a.attested.quote.pcrDigest.size = (UINT16)digest_len;
	q->data = malloc(DG_QUOTE_MAX_ATTEST);
	q->len = 0;
	ck_assert_int_eq(Tss2_MU_TPMS_ATTEST_Marshal(&a, q->data, DG_QUOTE_MAX_ATTEST, &q->len),
	                 TSS2_RC_SUCCESS);

	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	ck_assert_int_eq(EVP_DigestSignInit(ctx, &pctx, md, NULL, key), 1);
	if (sig_alg == TPM2_ALG_RSAPSS) {
		ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
		ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST), 1);
	}
	ck_assert_int_eq(EVP_DigestSign(ctx, der, &der_len, q->data, q->len), 1);
	EVP_MD_CTX_free(ctx);
	if (sig_alg == TPM2_ALG_ECDSA) {
		const unsigned char *p = der;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
		TPMS_SIGNATURE_ECC *ecc = &sig.signature.ecdsa;
		ck_assert_ptr_nonnull(es);
		ecc->hash = hash;
		ecc->signatureR.size = ecc->signatureS.size = 32;
		ck_assert_int_eq(BN_bn2binpad(ECDSA_SIG_get0_r(es), ecc->signatureR.buffer, 32), 32);
		ck_assert_int_eq(BN_bn2binpad(ECDSA_SIG_get0_s(es), ecc->signatureS.buffer, 32), 32);
		ECDSA_SIG_free(es);
	} else {
		sig.signature.rsassa.hash = hash;
		sig.signature.rsassa.sig.size = (UINT16)der_len;
		memcpy(sig.signature.rsassa.sig.buffer, der, der_len);
	}
	*s = soft_marshal_sig(&sig);
}

static const struct {
	EVP_PKEY **key;
	TPM2_ALG_ID sig_alg;
} soft_schemes[] = {
	{ &soft_rsa, TPM2_ALG_RSASSA },
	{ &soft_rsa, TPM2_ALG_RSAPSS },
	{ &soft_ecc, TPM2_ALG_ECDSA },
};

static int
soft_verify(EVP_PKEY *key, const struct blob *q, const struct blob *s)
{
	struct dg_quote_expect e = expect_default();

	e.pcr_value = soft_pcr;
	return verify(key, q, s, &e);
}

START_TEST(allowlisted_schemes_verify)
{
	static const TPM2_ALG_ID hashes[] = { TPM2_ALG_SHA256, TPM2_ALG_SHA384 };

	for (size_t i = 0; i < sizeof soft_schemes / sizeof soft_schemes[0]; i++) {
		for (size_t h = 0; h < sizeof hashes / sizeof hashes[0]; h++) {
			struct blob q, s;
			soft_quote(*soft_schemes[i].key, soft_schemes[i].sig_alg, hashes[h],
			           TPM2_ALG_SHA256, &q, &s);
			ck_assert_msg(soft_verify(*soft_schemes[i].key, &q, &s) == DG_OK,
			              "scheme %#x hash %#x", soft_schemes[i].sig_alg, hashes[h]);
			/* And a flipped bit still fails as a signature: the quote was checked. */
			q.data[q.len - 1] ^= 1;
			ck_assert_int_eq(soft_verify(*soft_schemes[i].key, &q, &s), DG_ERR_SIGNATURE);
			free(q.data);
			free(s.data);
		}
	}
}
END_TEST

START_TEST(sha1_and_unlisted_hashes_are_refused)
{
	static const TPM2_ALG_ID hashes[] = { TPM2_ALG_SHA1, TPM2_ALG_SHA512 };
	struct dg_quote_expect e = expect_default();
	uint8_t other[DG_QUOTE_NONCE_LEN] = { 0 };

	e.pcr_value = soft_pcr;
	for (size_t i = 0; i < sizeof soft_schemes / sizeof soft_schemes[0]; i++) {
		for (size_t h = 0; h < sizeof hashes / sizeof hashes[0]; h++) {
			EVP_PKEY *key = *soft_schemes[i].key;
			struct blob q, s;
			soft_quote(key, soft_schemes[i].sig_alg, hashes[h], TPM2_ALG_SHA256, &q, &s);
			/* A valid signature by the right key, over the right nonce and PCR. */
			ck_assert_msg(verify(key, &q, &s, &e) == DG_ERR_UNSUPPORTED, "scheme %#x hash %#x",
			              soft_schemes[i].sig_alg, hashes[h]);
			ck_assert_int_eq(dg_quote_check_signed(key, q.data, q.len, s.data, s.len,
			                                       qualifying, sizeof qualifying, PCR, NULL),
			                 DG_ERR_UNSUPPORTED);
			/* Refused before the signature and the nonce are looked at. */
			q.data[q.len - 1] ^= 1;
			e.qualifying = other;
			ck_assert_int_eq(verify(key, &q, &s, &e), DG_ERR_UNSUPPORTED);
			e.qualifying = qualifying;
			free(q.data);
			free(s.data);
		}
	}
}
END_TEST

START_TEST(unlisted_schemes_are_refused)
{
	struct blob q, s;
	TPMT_SIGNATURE hmac = { .sigAlg = TPM2_ALG_HMAC };
	TPMT_SIGNATURE none = { .sigAlg = TPM2_ALG_NULL };

	hmac.signature.hmac.hashAlg = TPM2_ALG_SHA256;
	soft_quote(soft_ecc, TPM2_ALG_ECDSA, TPM2_ALG_SHA256, TPM2_ALG_SHA256, &q, &s);
	ck_assert_int_eq(soft_verify(soft_ecc, &q, &s), DG_OK);
	/* The other ECC schemes share ECDSA's layout: same bytes, other sigAlg. */
	static const TPM2_ALG_ID ecc_schemes[] = { TPM2_ALG_ECDAA, TPM2_ALG_SM2,
		                                   TPM2_ALG_ECSCHNORR };
	for (size_t i = 0; i < sizeof ecc_schemes / sizeof ecc_schemes[0]; i++) {
		s.data[0] = (uint8_t)(ecc_schemes[i] >> 8);
		s.data[1] = (uint8_t)ecc_schemes[i];
		ck_assert_msg(soft_verify(soft_ecc, &q, &s) == DG_ERR_UNSUPPORTED, "scheme %#x",
		              ecc_schemes[i]);
	}
	free(s.data);
	s = soft_marshal_sig(&hmac);
	ck_assert_int_eq(soft_verify(soft_ecc, &q, &s), DG_ERR_UNSUPPORTED);
	free(s.data);
	s = soft_marshal_sig(&none);
	ck_assert_int_eq(soft_verify(soft_ecc, &q, &s), DG_ERR_UNSUPPORTED);
	free(s.data);
	free(q.data);
}
END_TEST

START_TEST(sha1_pcr_bank_is_refused)
{
	struct dg_quote_expect e = expect_default();
	uint8_t other[DG_QUOTE_NONCE_LEN] = { 0 };
	struct blob q, s;

	e.pcr_value = soft_pcr;
	/* Signed with an allowlisted scheme: only the bank is wrong. */
	soft_quote(soft_rsa, TPM2_ALG_RSASSA, TPM2_ALG_SHA256, TPM2_ALG_SHA1, &q, &s);
	ck_assert_int_eq(verify(soft_rsa, &q, &s, &e), DG_ERR_UNSUPPORTED);
	/* After the nonce (a selection is only read once the quote is fresh), and
	 * before the PCR index. */
	e.qualifying = other;
	ck_assert_int_eq(verify(soft_rsa, &q, &s, &e), DG_ERR_NONCE);
	e.qualifying = qualifying;
	e.pcr = 3;
	ck_assert_int_eq(verify(soft_rsa, &q, &s, &e), DG_ERR_UNSUPPORTED);
	e.pcr = PCR;
	free(q.data);
	free(s.data);
	/* sha384 is a sound bank but not the replay's: not accepted for decisions. */
	soft_quote(soft_rsa, TPM2_ALG_RSASSA, TPM2_ALG_SHA256, TPM2_ALG_SHA384, &q, &s);
	ck_assert_int_eq(verify(soft_rsa, &q, &s, &e), DG_ERR_UNSUPPORTED);
	free(q.data);
	free(s.data);
	soft_quote(soft_rsa, TPM2_ALG_RSASSA, TPM2_ALG_SHA256, TPM2_ALG_SHA256, &q, &s);
	ck_assert_int_eq(verify(soft_rsa, &q, &s, &e), DG_OK);
	free(q.data);
	free(s.data);
}
END_TEST

static Suite *
quote_suite(void)
{
	Suite *s = suite_create("quote");
	TCase *tc = tcase_create("swtpm");
	tcase_add_unchecked_fixture(tc, setup_tpm, teardown_tpm);
	tcase_add_test(tc, tpm_quotes_verify);
	tcase_add_test(tc, check_pcr_matches_verify);
	tcase_add_test(tc, tpm_sha1_is_refused);
	tcase_add_test(tc, flipped_attest_byte_fails);
	tcase_add_test(tc, flipped_signature_byte_fails);
	tcase_add_test(tc, signature_from_another_key_fails);
	tcase_add_test(tc, wrong_qualifying_is_nonce_error);
	tcase_add_test(tc, wrong_selection_is_pcr_select_error);
	tcase_add_test(tc, wrong_pcr_value_is_digest_error);
	tcase_add_test(tc, trailing_and_truncated_are_refused);
	tcase_add_test(tc, clock_going_backwards_is_refused);
	tcase_add_test(tc, checks_run_in_documented_order);
	suite_add_tcase(s, tc);
	TCase *soft = tcase_create("allowlist");
	tcase_add_unchecked_fixture(soft, setup_soft, teardown_soft);
	tcase_add_test(soft, allowlisted_schemes_verify);
	tcase_add_test(soft, sha1_and_unlisted_hashes_are_refused);
	tcase_add_test(soft, unlisted_schemes_are_refused);
	tcase_add_test(soft, sha1_pcr_bank_is_refused);
	suite_add_tcase(s, soft);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(quote_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
