/*
 * dg_tpmkey_import against keys made by tpm2-tools on a real swtpm: names must
 * equal the ones tpm2-tools reports, keys the PEM tpm2_readpublic exports.
 * The algorithm allowlist is also tried on public areas marshaled with
 * Tss2_MU from OpenSSL keys.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <tss2/tss2_mu.h>

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
		{ "ak_rsassa", "-G rsa -s rsassa -g sha256" },
		{ "ak_rsapss", "-G rsa -s rsapss -g sha256" },
		{ "ak_ecc", "-G ecc -s ecdsa -g sha256" },
		{ "ak_rsa384", "-G rsa -s rsassa -g sha384" }, /* scheme hash, nameAlg stays sha256 */
		{ "ak_rsa1", "-G rsa -s rsassa -g sha1" },
	};
	for (size_t i = 0; i < sizeof aks / sizeof aks[0]; i++) {
		ck_assert_int_eq(tu_tpm2(work, "tpm2_createak -C 0x81010001 -c %s.ctx %s "
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
	/* An AK in every other respect, whose TPM name is a SHA-1 digest. */
	ck_assert_int_eq(tu_tpm2(work, "tpm2_createprimary -C o -g sha1 -G ecc256:ecdsa-sha256:null "
	                               "-a 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|"
	                               "restricted|sign' -c name_sha1.ctx && "
	                               "tpm2_readpublic -c name_sha1.ctx -o name_sha1.pub"), 0);
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

START_TEST(ak_sha384_scheme_imports_with_tpm_name)
{
	check_import("ak_rsa384", DG_TPMKEY_AK, 1);
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

/* SHA-1 keys from a genuine TPM: a sha1 signing scheme, a sha1 name. */
START_TEST(tpm_sha1_keys_are_refused)
{
	ck_assert_int_eq(import_file("ak_rsa1.pub", DG_TPMKEY_AK), DG_ERR_UNSUPPORTED);
	ck_assert_int_eq(import_file("name_sha1.pub", DG_TPMKEY_AK), DG_ERR_UNSUPPORTED);
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
		{ 5, 0x0c, DG_ERR_UNSUPPORTED }, /* nameAlg sha384: not for names */
		{ 5, 0x04, DG_ERR_UNSUPPORTED }, /* nameAlg sha1 */
		{ 9, 0x76, DG_ERR_ATTRIBUTES },  /* + stClear */
		{ 7, 0x03, DG_ERR_ATTRIBUTES },  /* sign -> decrypt */
		{ 17, 0x0c, DG_OK },              /* scheme hash sha384: allowlisted */
		{ 17, 0x04, DG_ERR_UNSUPPORTED }, /* scheme hash sha1 */
		{ 17, 0x0d, DG_ERR_UNSUPPORTED }, /* scheme hash sha512: not listed */
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

/* ---- Public areas marshaled from OpenSSL keys: the allowlist, field by field ---- */

static EVP_PKEY *soft_rsa, *soft_ecc;

static void
setup_soft(void)
{
	ck_assert_ptr_nonnull(soft_rsa = EVP_RSA_gen(2048));
	ck_assert_ptr_nonnull(soft_ecc = EVP_EC_gen("P-256"));
}

static void
teardown_soft(void)
{
	EVP_PKEY_free(soft_rsa);
	EVP_PKEY_free(soft_ecc);
}

/* An AK template (tpm2_createak's) around an OpenSSL key, or an EK template (L-1, L-2). */
static TPMT_PUBLIC
soft_template(EVP_PKEY *key, enum dg_tpmkey_role role, TPM2_ALG_ID name_alg,
              TPM2_ALG_ID scheme, TPM2_ALG_ID scheme_hash)
{
	TPMT_PUBLIC t = { .nameAlg = name_alg };

	if (role == DG_TPMKEY_AK) {
		t.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
		                     TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
		                     TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT;
	} else {
		t.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
		                     TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_ADMINWITHPOLICY |
		                     TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
	}
	if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA) {
		TPMS_RSA_PARMS *p = &t.parameters.rsaDetail;
		BIGNUM *n = NULL;
		t.type = TPM2_ALG_RSA;
		p->keyBits = 2048;
		ck_assert_int_eq(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n), 1);
		t.unique.rsa.size = 256;
		ck_assert_int_eq(BN_bn2binpad(n, t.unique.rsa.buffer, 256), 256);
		BN_free(n);
		if (role == DG_TPMKEY_AK) {
			p->symmetric.algorithm = TPM2_ALG_NULL;
			p->scheme.scheme = scheme;
			p->scheme.details.anySig.hashAlg = scheme_hash;
		} else {
			p->symmetric = (TPMT_SYM_DEF_OBJECT){ TPM2_ALG_AES, { 128 }, { TPM2_ALG_CFB } };
			p->scheme.scheme = TPM2_ALG_NULL;
		}
	} else {
		TPMS_ECC_PARMS *p = &t.parameters.eccDetail;
		uint8_t point[65];
		size_t len = 0;
		t.type = TPM2_ALG_ECC;
		p->curveID = TPM2_ECC_NIST_P256;
		p->kdf.scheme = TPM2_ALG_NULL;
		ck_assert_int_eq(EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, point,
		                                                 sizeof point, &len), 1);
		ck_assert_uint_eq(len, sizeof point);
		t.unique.ecc.x.size = t.unique.ecc.y.size = 32;
		memcpy(t.unique.ecc.x.buffer, point + 1, 32);
		memcpy(t.unique.ecc.y.buffer, point + 33, 32);
		if (role == DG_TPMKEY_AK) {
			p->symmetric.algorithm = TPM2_ALG_NULL;
			p->scheme.scheme = scheme;
			p->scheme.details.anySig.hashAlg = scheme_hash;
		} else {
			p->symmetric = (TPMT_SYM_DEF_OBJECT){ TPM2_ALG_AES, { 128 }, { TPM2_ALG_CFB } };
			p->scheme.scheme = TPM2_ALG_NULL;
		}
	}
	return t;
}

/* Marshal t as TPM2B_PUBLIC and import it; on success the name must be
 * nameAlg || SHA-256(marshaled TPMT_PUBLIC), computed here independently. */
static int
soft_import(const TPMT_PUBLIC *t, enum dg_tpmkey_role role)
{
	uint8_t pub[DG_TPMKEY_MAX_PUBLIC], area[DG_TPMKEY_MAX_PUBLIC];
	uint8_t name[DG_TPMKEY_MAX_NAME], want[2 + 32];
	size_t pub_len = 0, area_len = 0, name_len = 0;
	TPM2B_PUBLIC p = { .publicArea = *t };
	EVP_PKEY *key = NULL;

	ck_assert_int_eq(Tss2_MU_TPM2B_PUBLIC_Marshal(&p, pub, sizeof pub, &pub_len),
	                 TSS2_RC_SUCCESS);
	int err = dg_tpmkey_import(pub, pub_len, role, &key, name, &name_len);
	if (err == DG_OK) {
		ck_assert_int_eq(Tss2_MU_TPMT_PUBLIC_Marshal(t, area, sizeof area, &area_len),
		                 TSS2_RC_SUCCESS);
		want[0] = 0x00;
		want[1] = 0x0b;
		ck_assert_int_eq(EVP_Digest(area, area_len, want + 2, NULL, EVP_sha256(), NULL), 1);
		ck_assert_uint_eq(name_len, sizeof want);
		ck_assert_mem_eq(name, want, sizeof want);
		ck_assert_ptr_nonnull(key);
	} else {
		ck_assert_ptr_null(key);
	}
	EVP_PKEY_free(key);
	return err;
}

START_TEST(allowlisted_keys_import)
{
	static const TPM2_ALG_ID hashes[] = { TPM2_ALG_SHA256, TPM2_ALG_SHA384 };

	for (size_t h = 0; h < sizeof hashes / sizeof hashes[0]; h++) {
		TPMT_PUBLIC t = soft_template(soft_rsa, DG_TPMKEY_AK, TPM2_ALG_SHA256,
		                              TPM2_ALG_RSASSA, hashes[h]);
		ck_assert_int_eq(soft_import(&t, DG_TPMKEY_AK), DG_OK);
		t = soft_template(soft_rsa, DG_TPMKEY_AK, TPM2_ALG_SHA256, TPM2_ALG_RSAPSS, hashes[h]);
		ck_assert_int_eq(soft_import(&t, DG_TPMKEY_AK), DG_OK);
		t = soft_template(soft_ecc, DG_TPMKEY_AK, TPM2_ALG_SHA256, TPM2_ALG_ECDSA, hashes[h]);
		ck_assert_int_eq(soft_import(&t, DG_TPMKEY_AK), DG_OK);
	}
	TPMT_PUBLIC ek = soft_template(soft_rsa, DG_TPMKEY_EK, TPM2_ALG_SHA256, 0, 0);
	ck_assert_int_eq(soft_import(&ek, DG_TPMKEY_EK), DG_OK);
	ek = soft_template(soft_ecc, DG_TPMKEY_EK, TPM2_ALG_SHA256, 0, 0);
	ck_assert_int_eq(soft_import(&ek, DG_TPMKEY_EK), DG_OK);
}
END_TEST

START_TEST(sha1_and_unlisted_key_algorithms_are_refused)
{
	EVP_PKEY *keys[] = { soft_rsa, soft_ecc };
	TPM2_ALG_ID sig_schemes[] = { TPM2_ALG_RSASSA, TPM2_ALG_ECDSA };
	TPMT_PUBLIC t;

	for (size_t k = 0; k < 2; k++) {
		/* nameAlg: only sha256 (sha384 is not one MakeCredential implements). */
		static const TPM2_ALG_ID names[] = { TPM2_ALG_SHA1, TPM2_ALG_SHA384, TPM2_ALG_SHA512,
			                             TPM2_ALG_SM3_256, TPM2_ALG_NULL };
		for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
			t = soft_template(keys[k], DG_TPMKEY_AK, names[i], sig_schemes[k],
			                  TPM2_ALG_SHA256);
			ck_assert_msg(soft_import(&t, DG_TPMKEY_AK) == DG_ERR_UNSUPPORTED,
			              "AK nameAlg %#x", names[i]);
			t = soft_template(keys[k], DG_TPMKEY_EK, names[i], 0, 0);
			ck_assert_msg(soft_import(&t, DG_TPMKEY_EK) == DG_ERR_UNSUPPORTED,
			              "EK nameAlg %#x", names[i]);
		}
		/* The AK's scheme hash. */
		static const TPM2_ALG_ID hashes[] = { TPM2_ALG_SHA1, TPM2_ALG_SHA512, TPM2_ALG_NULL };
		for (size_t i = 0; i < sizeof hashes / sizeof hashes[0]; i++) {
			t = soft_template(keys[k], DG_TPMKEY_AK, TPM2_ALG_SHA256, sig_schemes[k],
			                  hashes[i]);
			ck_assert_msg(soft_import(&t, DG_TPMKEY_AK) == DG_ERR_UNSUPPORTED,
			              "scheme hash %#x", hashes[i]);
		}
	}
	/* Schemes outside the list, or of the other key type. */
	t = soft_template(soft_ecc, DG_TPMKEY_AK, TPM2_ALG_SHA256, TPM2_ALG_ECDAA, TPM2_ALG_SHA256);
	ck_assert_int_eq(soft_import(&t, DG_TPMKEY_AK), DG_ERR_UNSUPPORTED);
	t = soft_template(soft_ecc, DG_TPMKEY_AK, TPM2_ALG_SHA256, TPM2_ALG_ECSCHNORR,
	                  TPM2_ALG_SHA256);
	ck_assert_int_eq(soft_import(&t, DG_TPMKEY_AK), DG_ERR_UNSUPPORTED);
	t = soft_template(soft_ecc, DG_TPMKEY_AK, TPM2_ALG_SHA256, TPM2_ALG_RSASSA, TPM2_ALG_SHA256);
	ck_assert_int_eq(soft_import(&t, DG_TPMKEY_AK), DG_ERR_UNSUPPORTED);
	t = soft_template(soft_rsa, DG_TPMKEY_AK, TPM2_ALG_SHA256, TPM2_ALG_ECDSA, TPM2_ALG_SHA256);
	ck_assert_int_eq(soft_import(&t, DG_TPMKEY_AK), DG_ERR_UNSUPPORTED);
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
	tcase_add_test(tc, ak_sha384_scheme_imports_with_tpm_name);
	tcase_add_test(tc, ek_rsa_imports_with_tpm_name);
	tcase_add_test(tc, ek_ecc_imports_with_tpm_name);
	tcase_add_test(tc, roles_are_not_interchangeable);
	tcase_add_test(tc, ak_lookalikes_are_refused);
	tcase_add_test(tc, tpm_sha1_keys_are_refused);
	tcase_add_test(tc, trailing_and_truncated_input_is_refused);
	tcase_add_test(tc, corrupted_bytes_never_crash);
	tcase_add_test(tc, modified_template_fields_are_refused);
	suite_add_tcase(s, tc);
	TCase *soft = tcase_create("allowlist");
	tcase_add_unchecked_fixture(soft, setup_soft, teardown_soft);
	tcase_add_test(soft, allowlisted_keys_import);
	tcase_add_test(soft, sha1_and_unlisted_key_algorithms_are_refused);
	suite_add_tcase(s, soft);
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
