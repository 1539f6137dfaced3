/*
 * dg_quote_verify against quotes made by tpm2_quote on a real swtpm, with
 * PCR values read by tpm2_pcrread and clockInfo decoded by tpm2_print.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
static EVP_PKEY *ak_rsa, *ak_pss, *ak_ecc;
static struct blob q_rsa, s_rsa, q_pss, s_pss, q_ecc, s_ecc, q_other, s_other;
static struct blob q_two, s_two, q_sha1, s_sha1, q_banks, s_banks;
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

static void
quote(const char *ak, const char *scheme, const char *sel, const char *out, const char *hex)
{
	ck_assert_int_eq(tu_tpm2(work, "tpm2_quote -c %s.ctx --scheme %s -l %s -q %s -g sha256 "
	                               "-m %s.msg -s %s.sig", ak, scheme, sel, hex, out, out), 0);
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
		{ "ak_rsa", "-G rsa -s rsassa" },
		{ "ak_pss", "-G rsa -s rsapss" },
		{ "ak_ecc", "-G ecc -s ecdsa" },
		{ "ak_other", "-G rsa -s rsassa" },
	};
	for (size_t i = 0; i < sizeof aks / sizeof aks[0]; i++)
		ck_assert_int_eq(tu_tpm2(work, "tpm2_createak -C 0x81010001 -c %s.ctx %s -g sha256 "
		                               "-u %s.pub", aks[i][0], aks[i][1], aks[i][0]), 0);
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
	q_rsa = load("rsa.msg"), s_rsa = load("rsa.sig");
	q_pss = load("pss.msg"), s_pss = load("pss.sig");
	q_ecc = load("ecc.msg"), s_ecc = load("ecc.sig");
	q_other = load("other.msg"), s_other = load("other.sig");
	q_two = load("two.msg"), s_two = load("two.sig");
	q_sha1 = load("sha1.msg"), s_sha1 = load("sha1.sig");
	q_banks = load("banks.msg"), s_banks = load("banks.sig");
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
	struct blob *all[] = { &q_rsa, &s_rsa, &q_pss, &s_pss, &q_ecc, &s_ecc, &q_other,
	                       &s_other, &q_two, &s_two, &q_sha1, &s_sha1, &q_banks, &s_banks };
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
	ck_assert_int_eq(verify(ak_rsa, &q_sha1, &s_sha1, &e), DG_ERR_PCR_SELECT);
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

static Suite *
quote_suite(void)
{
	Suite *s = suite_create("quote");
	TCase *tc = tcase_create("swtpm");
	tcase_add_unchecked_fixture(tc, setup_tpm, teardown_tpm);
	tcase_add_test(tc, tpm_quotes_verify);
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
