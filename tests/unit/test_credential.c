/*
 * dg_cred_make against a real TPM: credentials wrapped here must come back out
 * of tpm2_activatecredential on swtpm, and only for the AK they name. KDFa is
 * checked against Python's hmac module.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "driftgate/credential.h"
#include "driftgate/err.h"
#include "driftgate/tpmkey.h"
#include "testutil.h"

#define EK_RSA "0x81010001"
#define EK_ECC "0x81010002"

struct blob {
	uint8_t *data;
	size_t len;
};

static char *work;
static pid_t swtpm_pid;

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

static void
write_file(const char *file, const void *a, size_t a_len, const void *b, size_t b_len)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", work, file);
	FILE *f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(a, 1, a_len, f), a_len);
	ck_assert_uint_eq(fwrite(b, 1, b_len, f), b_len);
	ck_assert_int_eq(fclose(f), 0);
}

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
	ck_assert_int_eq(tu_tpm2(work, "tpm2_createek -c " EK_RSA " -G rsa -u ek_rsa.pub"), 0);
	ck_assert_int_eq(tu_tpm2(work, "tpm2_createek -c " EK_ECC " -G ecc -u ek_ecc.pub"), 0);
	ck_assert_int_eq(tu_tpm2(work, "tpm2_createak -C " EK_RSA " -c ak.ctx -G rsa -g sha256 "
	                               "-s rsassa -u ak.pub -n ak.name"), 0);
	ck_assert_int_eq(tu_tpm2(work, "tpm2_createak -C " EK_RSA " -c ak2.ctx -G ecc -g sha256 "
	                               "-s ecdsa -u ak2.pub -n ak2.name"), 0);
}

static void
teardown_tpm(void)
{
	tu_swtpm_stop(swtpm_pid);
	if (getenv("DG_KEEP") == NULL)
		tu_sh("rm -rf '%s'", work);
	free(work);
}

/*
 * tpm2_activatecredential -i reads what tpm2_makecredential writes: a
 * big-endian magic 0xBADCC0DE, version 1, then TPM2B_ID_OBJECT and
 * TPM2B_ENCRYPTED_SECRET (observed with tpm2-tools 5.4 `tpm2_makecredential -T none`).
 */
static void
write_credential_file(const char *file, const uint8_t *id, size_t id_len,
                      const uint8_t *secret, size_t secret_len)
{
	static const uint8_t header[8] = { 0xba, 0xdc, 0xc0, 0xde, 0, 0, 0, 1 };
	uint8_t body[DG_CRED_MAX_ID_OBJECT + DG_CRED_MAX_SECRET];
	memcpy(body, id, id_len);
	memcpy(body + id_len, secret, secret_len);
	write_file(file, header, sizeof header, body, id_len + secret_len);
}

/* Activate cred_file with the AK in ak.ctx and the given EK; output in out_file. */
static int
activate(const char *ek, const char *cred_file, const char *out_file)
{
	return tu_tpm2(work, "( tpm2_startauthsession --policy-session -S session.ctx && "
	                     "tpm2_policysecret -S session.ctx -c e && "
	                     "tpm2_activatecredential -c ak.ctx -C %s -i %s -o %s "
	                     "-P session:session.ctx; rc=$?; tpm2_flushcontext session.ctx; "
	                     "exit $rc )", ek, cred_file, out_file);
}

/* Wrap credential for ak_name_file under ek_pub_file; write cred_file. */
static void
make(const char *ek_pub_file, const char *ak_name_file, const uint8_t *credential,
     size_t credential_len, const char *cred_file)
{
	struct blob ek = load(ek_pub_file), name = load(ak_name_file);
	uint8_t id[DG_CRED_MAX_ID_OBJECT], secret[DG_CRED_MAX_SECRET];
	size_t id_len = 0, secret_len = 0;

	ck_assert_int_eq(dg_cred_make(ek.data, ek.len, name.data, name.len, credential,
	                              credential_len, id, sizeof id, &id_len, secret,
	                              sizeof secret, &secret_len), DG_OK);
	write_credential_file(cred_file, id, id_len, secret, secret_len);
	free(ek.data);
	free(name.data);
}

static void
check_roundtrip(const char *ek_pub_file, const char *ek_handle, size_t credential_len)
{
	uint8_t credential[32];
	ck_assert_uint_le(credential_len, sizeof credential);
	ck_assert_int_eq(RAND_bytes(credential, (int)credential_len), 1);
	make(ek_pub_file, "ak.name", credential, credential_len, "cred.bin");
	ck_assert_int_eq(activate(ek_handle, "cred.bin", "recovered.bin"), 0);
	struct blob got = load("recovered.bin");
	ck_assert_uint_eq(got.len, credential_len);
	ck_assert_mem_eq(got.data, credential, credential_len);
	free(got.data);
}

/* Positive control for the harness: tpm2-tools' own software MakeCredential. */
START_TEST(tpm2_tools_credential_activates)
{
	ck_assert_int_eq(tu_sh("cd '%s' && head -c 32 /dev/urandom > tools.secret && "
	                       "tpm2_makecredential -T none -u ek_rsa.pub -s tools.secret "
	                       "-n $(xxd -p -c 256 ak.name) -o tools.cred 2>/dev/null", work), 0);
	ck_assert_int_eq(activate(EK_RSA, "tools.cred", "tools.out"), 0);
	ck_assert_int_eq(tu_sh("cmp -s '%s/tools.secret' '%s/tools.out'", work, work), 0);
}
END_TEST

START_TEST(rsa_ek_credential_activates)
{
	check_roundtrip("ek_rsa.pub", EK_RSA, 32);
	check_roundtrip("ek_rsa.pub", EK_RSA, 1);
}
END_TEST

START_TEST(ecc_ek_credential_activates)
{
	check_roundtrip("ek_ecc.pub", EK_ECC, 32);
	check_roundtrip("ek_ecc.pub", EK_ECC, 17);
}
END_TEST

START_TEST(other_ak_name_does_not_activate)
{
	static const uint8_t credential[32] = { 1, 2, 3 };

	/* Wrapped for ak2, presented with ak: the TPM's integrity check fails. */
	make("ek_rsa.pub", "ak2.name", credential, sizeof credential, "cred_ak2.bin");
	ck_assert_int_ne(activate(EK_RSA, "cred_ak2.bin", "never.bin"), 0);
	make("ek_ecc.pub", "ak2.name", credential, sizeof credential, "cred_ak2e.bin");
	ck_assert_int_ne(activate(EK_ECC, "cred_ak2e.bin", "never.bin"), 0);
	/* Wrapped under the RSA EK, presented to the ECC EK. */
	make("ek_rsa.pub", "ak.name", credential, sizeof credential, "cred_rsa.bin");
	ck_assert_int_ne(activate(EK_ECC, "cred_rsa.bin", "never.bin"), 0);
	/* One flipped bit of the encrypted credential. */
	struct blob cred = load("cred_rsa.bin");
	cred.data[8 + 2 + 2 + 32 + 3] ^= 1;
	write_file("cred_flip.bin", cred.data, cred.len, "", 0);
	ck_assert_int_ne(activate(EK_RSA, "cred_flip.bin", "never.bin"), 0);
	free(cred.data);
	ck_assert_int_ne(tu_sh("test -e '%s/never.bin'", work), 0);
}
END_TEST

START_TEST(layout_matches_tpm2_makecredential)
{
	static const uint8_t credential[32] = { 9 };
	struct blob ours, theirs;

	make("ek_rsa.pub", "ak.name", credential, sizeof credential, "ours.cred");
	ck_assert_int_eq(tu_sh("cd '%s' && head -c 32 /dev/zero > zero.secret && "
	                       "tpm2_makecredential -T none -u ek_rsa.pub -s zero.secret "
	                       "-n $(xxd -p -c 256 ak.name) -o theirs.cred 2>/dev/null", work), 0);
	ours = load("ours.cred");
	theirs = load("theirs.cred");
	/* Random seeds differ; the sizes of every field do not. */
	ck_assert_uint_eq(ours.len, theirs.len);
	ck_assert_mem_eq(ours.data, theirs.data, 8 + 4);                    /* sizes */
	ck_assert_mem_eq(ours.data + 8 + 2 + 2 + 32 + 34, theirs.data + 8 + 2 + 2 + 32 + 34, 2);
	free(ours.data);
	free(theirs.data);
}
END_TEST

START_TEST(outputs_are_fresh_each_time)
{
	struct blob ek = load("ek_rsa.pub"), name = load("ak.name");
	static const uint8_t credential[16] = { 7 };
	uint8_t id1[DG_CRED_MAX_ID_OBJECT], id2[DG_CRED_MAX_ID_OBJECT];
	uint8_t s1[DG_CRED_MAX_SECRET], s2[DG_CRED_MAX_SECRET];
	size_t id1_len = 0, id2_len = 0, s1_len = 0, s2_len = 0;

	ck_assert_int_eq(dg_cred_make(ek.data, ek.len, name.data, name.len, credential,
	                              sizeof credential, id1, sizeof id1, &id1_len, s1, sizeof s1,
	                              &s1_len), DG_OK);
	ck_assert_int_eq(dg_cred_make(ek.data, ek.len, name.data, name.len, credential,
	                              sizeof credential, id2, sizeof id2, &id2_len, s2, sizeof s2,
	                              &s2_len), DG_OK);
	ck_assert_uint_eq(id1_len, 2 + 2 + 32 + 2 + sizeof credential);
	ck_assert_uint_eq(s1_len, 2 + 256);
	ck_assert_uint_eq(id1_len, id2_len);
	ck_assert_mem_ne(id1, id2, id1_len);
	ck_assert_mem_ne(s1, s2, s1_len);
	free(ek.data);
	free(name.data);
}
END_TEST

START_TEST(bad_inputs_are_refused)
{
	struct blob ek = load("ek_rsa.pub"), ak = load("ak.pub"), name = load("ak.name");
	uint8_t cred[DG_CRED_MAX_CREDENTIAL] = { 1 };
	uint8_t id[DG_CRED_MAX_ID_OBJECT], secret[DG_CRED_MAX_SECRET];
	size_t id_len = 12345, secret_len = 12345;

#define MAKE(ekp, ekl, nm, nml, cl, idc, sc)                                               \
	dg_cred_make(ekp, ekl, nm, nml, cred, cl, id, idc, &id_len, secret, sc, &secret_len)
	ck_assert_int_eq(MAKE(ak.data, ak.len, name.data, name.len, 32, sizeof id, sizeof secret),
	                 DG_ERR_ATTRIBUTES);
	ck_assert_int_eq(MAKE(ek.data, ek.len - 1, name.data, name.len, 32, sizeof id,
	                      sizeof secret), DG_ERR_TRUNCATED);
	ck_assert_int_eq(MAKE(ek.data, ek.len, name.data, name.len, 0, sizeof id, sizeof secret),
	                 DG_ERR_INVAL);
	ck_assert_int_eq(MAKE(ek.data, ek.len, name.data, name.len, 33, sizeof id, sizeof secret),
	                 DG_ERR_TOOBIG);
	ck_assert_int_eq(MAKE(ek.data, ek.len, name.data, name.len - 1, 32, sizeof id,
	                      sizeof secret), DG_ERR_FORMAT);
	ck_assert_int_eq(MAKE(ek.data, ek.len, name.data + 2, 32, 32, sizeof id, sizeof secret),
	                 DG_ERR_FORMAT);
	ck_assert_int_eq(MAKE(ek.data, ek.len, name.data, name.len, 32, 2 + 2 + 32 + 2 + 31,
	                      sizeof secret), DG_ERR_TOOBIG);
	ck_assert_int_eq(MAKE(ek.data, ek.len, name.data, name.len, 32, sizeof id, 257),
	                 DG_ERR_TOOBIG);
	ck_assert_int_eq(MAKE(NULL, 0, name.data, name.len, 32, sizeof id, sizeof secret),
	                 DG_ERR_INVAL);
#undef MAKE
	/* Nothing was written by any refusal. */
	ck_assert_uint_eq(id_len, 12345);
	ck_assert_uint_eq(secret_len, 12345);
	free(ek.data);
	free(ak.data);
	free(name.data);
}
END_TEST

/* KDFa recomputed at test time by an independent implementation (Python hmac). */
static const char kdfa_py[] =
	"import hmac, sys\n"
	"md, key, label, u, v, bits = sys.argv[1:7]\n"
	"key, u, v, bits = bytes.fromhex(key), bytes.fromhex(u), bytes.fromhex(v), int(bits)\n"
	"lab = label.encode() + b'\\0' if label != '-' else b''\n"
	"out, i = b'', 1\n"
	"while len(out) * 8 < bits:\n"
	"    out += hmac.new(key, i.to_bytes(4, 'big') + lab + u + v + bits.to_bytes(4, 'big'),"
	" md).digest()\n"
	"    i += 1\n"
	"print(out[:bits // 8].hex())\n";

static void
hex(const uint8_t *b, size_t n, char *out)
{
	out[0] = 0;
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

START_TEST(kdfa_matches_python)
{
	static const struct {
		const char *md, *py_md, *label;
		size_t u_len, v_len;
		uint32_t bits;
	} cases[] = {
		{ "SHA256", "sha256", "STORAGE", 34, 0, 128 },
		{ "SHA256", "sha256", "INTEGRITY", 0, 0, 256 },
		{ "SHA256", "sha256", "ATH", 20, 13, 520 }, /* three blocks, the last partial */
		{ "SHA384", "sha384", "STORAGE", 34, 34, 256 },
		{ "SHA256", "sha256", NULL, 5, 0, 64 },
	};
	uint8_t key[32], u[64], v[64], out[128], py[128];
	char key_hex[65], u_hex[129], v_hex[129], cmd_out[512];

	write_file("kdfa.py", kdfa_py, strlen(kdfa_py), "", 0);
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		for (size_t i = 0; i < sizeof key; i++)
			key[i] = (uint8_t)(c * 31 + i);
		for (size_t i = 0; i < sizeof u; i++) {
			u[i] = (uint8_t)(0x5a ^ i);
			v[i] = (uint8_t)(0xc3 + 7 * i);
		}
		size_t out_len = cases[c].bits / 8;
		ck_assert_int_eq(dg_cred_kdfa(cases[c].md, key, sizeof key, cases[c].label, u,
		                              cases[c].u_len, v, cases[c].v_len, cases[c].bits, out,
		                              out_len), DG_OK);
		hex(key, sizeof key, key_hex);
		hex(u, cases[c].u_len, u_hex);
		hex(v, cases[c].v_len, v_hex);
		ck_assert_int_eq(tu_sh("cd '%s' && python3 kdfa.py %s %s %s '%s' '%s' %u > kdfa.out",
		                       work, cases[c].py_md, key_hex,
		                       cases[c].label ? cases[c].label : "-", u_hex, v_hex,
		                       cases[c].bits), 0);
		struct blob got = load("kdfa.out");
		ck_assert_uint_lt(got.len, sizeof cmd_out);
		memcpy(cmd_out, got.data, got.len);
		cmd_out[got.len] = 0;
		free(got.data);
		ck_assert_int_eq(tu_hex(strtok(cmd_out, "\n"), py, sizeof py), (int)out_len);
		ck_assert_mem_eq(out, py, out_len);
	}
	ck_assert_int_eq(dg_cred_kdfa("SHA256", key, sizeof key, "X", NULL, 0, NULL, 0, 12, out, 2),
	                 DG_ERR_INVAL);
	ck_assert_int_eq(dg_cred_kdfa("SHA256", key, sizeof key, "X", NULL, 0, NULL, 0, 128, out,
	                              15), DG_ERR_INVAL);
	ck_assert_int_eq(dg_cred_kdfa("NO-SUCH-MD", key, sizeof key, "X", NULL, 0, NULL, 0, 128,
	                              out, 16), DG_ERR_UNSUPPORTED);
}
END_TEST

static Suite *
credential_suite(void)
{
	Suite *s = suite_create("credential");
	TCase *tc = tcase_create("swtpm");
	tcase_add_unchecked_fixture(tc, setup_tpm, teardown_tpm);
	tcase_add_test(tc, kdfa_matches_python);
	tcase_add_test(tc, tpm2_tools_credential_activates);
	tcase_add_test(tc, rsa_ek_credential_activates);
	tcase_add_test(tc, ecc_ek_credential_activates);
	tcase_add_test(tc, other_ak_name_does_not_activate);
	tcase_add_test(tc, layout_matches_tpm2_makecredential);
	tcase_add_test(tc, outputs_are_fresh_each_time);
	tcase_add_test(tc, bad_inputs_are_refused);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(credential_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
