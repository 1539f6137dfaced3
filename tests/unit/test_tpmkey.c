/*
 * dg_tpmkey_import against keys made by tpm2-tools on a real swtpm: names must
 * equal the ones tpm2-tools reports, keys the PEM tpm2_readpublic exports.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "driftgate/err.h"
#include "driftgate/tpmkey.h"
#include "testutil.h"

static char *work;
static pid_t swtpm_pid;

static void
setup_tpm(void)
{
	char tcti[64];
	int port = 0;

	work = tu_tmpdir();
	ck_assert_ptr_nonnull(work);
	ck_assert_int_eq(tu_swtpm_start(work, &port, &swtpm_pid), 0);
	snprintf(tcti, sizeof tcti, "swtpm:host=127.0.0.1,port=%d", port);
	setenv("TPM2TOOLS_TCTI", tcti, 1);
	/* The malformed inputs below would make tpm2-tss's unmarshalers log each refusal. */
	setenv("TSS2_LOG", "marshal+none", 1);
	/* EKs from the default templates, persisted; AKs as context files. */
	ck_assert_int_eq(tu_tpm2(work, "tpm2_createek -c 0x81010001 -G rsa -u ek_rsa.pub && "
	                               "tpm2_readpublic -c 0x81010001 -n ek_rsa.name"), 0);
	ck_assert_int_eq(tu_tpm2(work, "tpm2_createek -c 0x81010002 -G ecc -u ek_ecc.pub && "
	                               "tpm2_readpublic -c 0x81010002 -n ek_ecc.name"), 0);
	static const char *const aks[][2] = {
		{ "ak_rsassa", "-G rsa -s rsassa" },
		{ "ak_rsapss", "-G rsa -s rsapss" },
		{ "ak_ecc", "-G ecc -s ecdsa" },
	};
	for (size_t i = 0; i < sizeof aks / sizeof aks[0]; i++) {
		ck_assert_int_eq(tu_tpm2(work, "tpm2_createak -C 0x81010001 -c %s.ctx %s -g sha256 "
		                               "-u %s.pub -n %s.name", aks[i][0], aks[i][1],
		                         aks[i][0], aks[i][0]), 0);
		ck_assert_int_eq(tu_tpm2(work, "tpm2_readpublic -c %s.ctx -f pem -o %s.pem",
		                         aks[i][0], aks[i][0]), 0);
	}
	/* A P-384 AK: well formed, outside what driftgate supports. */
	ck_assert_int_eq(tu_tpm2(work, "tpm2_createak -C 0x81010001 -c ak_p384.ctx -G ecc384 "
	                               "-g sha384 -s ecdsa -u ak_p384.pub"), 0);
	/* AK look-alikes: one attribute too many (noDA), one too few (not restricted). */
	ck_assert_int_eq(tu_tpm2(work, "tpm2_createprimary -C o -G ecc256:ecdsa-sha256:null "
	                               "-a 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|"
	                               "restricted|sign|noda' -c noda.ctx && "
	                               "tpm2_readpublic -c noda.ctx -o noda.pub"), 0);
	ck_assert_int_eq(tu_tpm2(work, "tpm2_createprimary -C o -G ecc256:ecdsa-sha256 "
	                               "-a 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|"
	                               "sign' -c unrestricted.ctx && "
	                               "tpm2_readpublic -c unrestricted.ctx -o unrestricted.pub"), 0);
}

static void
teardown_tpm(void)
{
	tu_swtpm_stop(swtpm_pid);
	if (getenv("DG_KEEP") == NULL)
		tu_sh("rm -rf '%s'", work);
	free(work);
}

static uint8_t *
load(const char *file, size_t *len)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", work, file);
	uint8_t *buf = tu_read_file(path, len);
	ck_assert_msg(buf != NULL, "cannot read %s", path);
	return buf;
}

/* Import base.pub in role; the name must equal base.name and the key base.pem. */
static void
check_import(const char *base, enum dg_tpmkey_role role, int compare_pem)
{
	char file[256];
	size_t pub_len = 0, want_name_len = 0, name_len = 0;
	uint8_t name[DG_TPMKEY_MAX_NAME];
	EVP_PKEY *key = NULL;

	snprintf(file, sizeof file, "%s.pub", base);
	uint8_t *pub = load(file, &pub_len);
	snprintf(file, sizeof file, "%s.name", base);
	uint8_t *want_name = load(file, &want_name_len);

	ck_assert_int_eq(dg_tpmkey_import(pub, pub_len, role, &key, name, &name_len), DG_OK);
	ck_assert_ptr_nonnull(key);
	ck_assert_uint_eq(name_len, want_name_len);
	ck_assert_mem_eq(name, want_name, name_len);
	if (compare_pem) {
		char path[4096];
		snprintf(path, sizeof path, "%s/%s.pem", work, base);
		FILE *f = fopen(path, "r");
		ck_assert_ptr_nonnull(f);
		EVP_PKEY *pem = PEM_read_PUBKEY(f, NULL, NULL, NULL);
		fclose(f);
		ck_assert_ptr_nonnull(pem);
		ck_assert_int_eq(EVP_PKEY_eq(key, pem), 1);
		EVP_PKEY_free(pem);
	}
	EVP_PKEY_free(key);
	free(pub);
	free(want_name);
}

START_TEST(ak_rsassa_imports_with_tpm_name)
{
	check_import("ak_rsassa", DG_TPMKEY_AK, 1);
}
END_TEST

START_TEST(ak_rsapss_imports_with_tpm_name)
{
	check_import("ak_rsapss", DG_TPMKEY_AK, 1);
}
END_TEST

START_TEST(ak_ecc_imports_with_tpm_name)
{
	check_import("ak_ecc", DG_TPMKEY_AK, 1);
}
END_TEST

START_TEST(ek_rsa_imports_with_tpm_name)
{
	check_import("ek_rsa", DG_TPMKEY_EK, 0);
}
END_TEST

START_TEST(ek_ecc_imports_with_tpm_name)
{
	check_import("ek_ecc", DG_TPMKEY_EK, 0);
}
END_TEST

static int
import_file(const char *file, enum dg_tpmkey_role role)
{
	size_t len = 0;
	uint8_t *pub = load(file, &len);
	EVP_PKEY *key = NULL;
	uint8_t name[DG_TPMKEY_MAX_NAME];
	size_t name_len = 0;
	int err = dg_tpmkey_import(pub, len, role, &key, name, &name_len);
	/* A refusal leaves the outputs alone. */
	if (err != DG_OK) {
		ck_assert_ptr_null(key);
		ck_assert_uint_eq(name_len, 0);
	}
	EVP_PKEY_free(key);
	free(pub);
	return err;
}

START_TEST(roles_are_not_interchangeable)
{
	ck_assert_int_eq(import_file("ek_rsa.pub", DG_TPMKEY_AK), DG_ERR_ATTRIBUTES);
	ck_assert_int_eq(import_file("ek_ecc.pub", DG_TPMKEY_AK), DG_ERR_ATTRIBUTES);
	ck_assert_int_eq(import_file("ak_rsassa.pub", DG_TPMKEY_EK), DG_ERR_ATTRIBUTES);
	ck_assert_int_eq(import_file("ak_ecc.pub", DG_TPMKEY_EK), DG_ERR_ATTRIBUTES);
}
END_TEST

START_TEST(ak_lookalikes_are_refused)
{
	ck_assert_int_eq(import_file("noda.pub", DG_TPMKEY_AK), DG_ERR_ATTRIBUTES);
	ck_assert_int_eq(import_file("unrestricted.pub", DG_TPMKEY_AK), DG_ERR_ATTRIBUTES);
	ck_assert_int_eq(import_file("ak_p384.pub", DG_TPMKEY_AK), DG_ERR_UNSUPPORTED);
}
END_TEST

START_TEST(trailing_and_truncated_input_is_refused)
{
	size_t len = 0;
	uint8_t *pub = load("ak_rsassa.pub", &len);
	uint8_t longer[DG_TPMKEY_MAX_PUBLIC + 1];
	EVP_PKEY *key = NULL;

	ck_assert_uint_lt(len, sizeof longer);
	memcpy(longer, pub, len);
	longer[len] = 0;
	ck_assert_int_eq(dg_tpmkey_import(longer, len + 1, DG_TPMKEY_AK, &key, NULL, NULL),
	                 DG_ERR_TRAILING);
	for (size_t cut = 0; cut < len; cut++) {
		int err = dg_tpmkey_import(pub, cut, DG_TPMKEY_AK, &key, NULL, NULL);
		ck_assert_msg(err == DG_ERR_TRUNCATED || err == DG_ERR_FORMAT,
		              "length %zu gave %s", cut, dg_strerror(err));
		ck_assert_ptr_null(key);
	}
	/* A size prefix that disagrees with the structure it announces. */
	memcpy(longer, pub, len);
	longer[1] ^= 1;
	ck_assert_int_ne(dg_tpmkey_import(longer, len, DG_TPMKEY_AK, &key, NULL, NULL), DG_OK);
	ck_assert_int_eq(dg_tpmkey_import(pub, DG_TPMKEY_MAX_PUBLIC + 1, DG_TPMKEY_AK, &key, NULL,
	                                  NULL), DG_ERR_TOOBIG);
	ck_assert_ptr_null(key);
	free(pub);
}
END_TEST

/* Every single-byte corruption is refused, or still yields a consistent key. */
START_TEST(corrupted_bytes_never_crash)
{
	size_t len = 0;
	uint8_t *pub = load("ak_ecc.pub", &len);
	uint8_t name[DG_TPMKEY_MAX_NAME], good_name[DG_TPMKEY_MAX_NAME];
	size_t name_len = 0;

	ck_assert_int_eq(dg_tpmkey_import(pub, len, DG_TPMKEY_AK, NULL, good_name, &name_len),
	                 DG_OK);
	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			EVP_PKEY *key = NULL;
			pub[i] ^= (uint8_t)(1u << bit);
			int err = dg_tpmkey_import(pub, len, DG_TPMKEY_AK, &key, name, &name_len);
			/* Whatever imports is a different key: its name must differ. */
			if (err == DG_OK)
				ck_assert_mem_ne(name, good_name, name_len);
			EVP_PKEY_free(key);
			pub[i] ^= (uint8_t)(1u << bit);
		}
	}
	free(pub);
}
END_TEST

START_TEST(modified_template_fields_are_refused)
{
	size_t len = 0;
	uint8_t *pub = load("ak_rsassa.pub", &len);
	/* TPM2B_PUBLIC: size(2) type(2) nameAlg(2) attributes(4) authPolicy(2+0)
	 * symmetric(2) scheme(2) hash(2) keyBits(2) exponent(4). Offsets below. */
	static const struct {
		size_t offset;
		uint8_t value;
		int err;
	} edits[] = {
		{ 5, 0x0c, DG_ERR_UNSUPPORTED }, /* nameAlg sha384 */
		{ 9, 0x76, DG_ERR_ATTRIBUTES },  /* + stClear */
		{ 7, 0x03, DG_ERR_ATTRIBUTES },  /* sign -> decrypt */
		{ 17, 0x0c, DG_ERR_UNSUPPORTED }, /* scheme hash sha384 */
		{ 15, 0x17, DG_ERR_UNSUPPORTED }, /* scheme OAEP */
		{ 23, 0x03, DG_ERR_UNSUPPORTED }, /* exponent 3 */
	};

	ck_assert_uint_eq(pub[2], 0x00); /* type RSA as the offsets assume */
	ck_assert_uint_eq(pub[3], 0x01);
	ck_assert_uint_eq(pub[11], 0x00); /* empty authPolicy */
	for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
		uint8_t saved = pub[edits[i].offset];
		pub[edits[i].offset] = edits[i].value;
		ck_assert_msg(dg_tpmkey_import(pub, len, DG_TPMKEY_AK, NULL, NULL, NULL) ==
		              edits[i].err, "edit %zu", i);
		pub[edits[i].offset] = saved;
	}
	ck_assert_int_eq(dg_tpmkey_import(pub, len, DG_TPMKEY_AK, NULL, NULL, NULL), DG_OK);
	free(pub);
}
END_TEST

static Suite *
tpmkey_suite(void)
{
	Suite *s = suite_create("tpmkey");
	TCase *tc = tcase_create("swtpm");
	tcase_add_unchecked_fixture(tc, setup_tpm, teardown_tpm);
	tcase_add_test(tc, ak_rsassa_imports_with_tpm_name);
	tcase_add_test(tc, ak_rsapss_imports_with_tpm_name);
	tcase_add_test(tc, ak_ecc_imports_with_tpm_name);
	tcase_add_test(tc, ek_rsa_imports_with_tpm_name);
	tcase_add_test(tc, ek_ecc_imports_with_tpm_name);
	tcase_add_test(tc, roles_are_not_interchangeable);
	tcase_add_test(tc, ak_lookalikes_are_refused);
	tcase_add_test(tc, trailing_and_truncated_input_is_refused);
	tcase_add_test(tc, corrupted_bytes_never_crash);
	tcase_add_test(tc, modified_template_fields_are_refused);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(tpmkey_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
