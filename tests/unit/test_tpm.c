/*
 * agent/tpm.c against a real swtpm, cross-checked with tpm2-tools: the tools
 * read back what dg_tpm_* made and make what dg_tpm_* consumes.
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <tss2/tss2_mu.h>

#include "driftgate/err.h"
#include "testutil.h"
#include "tpm.h"

#define EK DG_TPM_EK_HANDLE_DEFAULT
#define AK DG_TPM_AK_HANDLE_DEFAULT
#define PCR 16 /* the debug PCR: nothing else extends it */

/* The "swtpm" test case shares one swtpm, started in the runner process so it
 * outlives the forked tests; work is a scratch directory for tool files, one
 * per test. */
static char *tpm_state;
static int tpm_port;
static pid_t tpm_pid;
static char tcti[64];
static char *work;

static void
start_tpm(const char *state)
{
	ck_assert_int_eq(tu_swtpm_start(state, &tpm_port, &tpm_pid), 0);
	snprintf(tcti, sizeof tcti, "swtpm:host=127.0.0.1,port=%d", tpm_port);
}

static void
tpm_setup(void)
{
	tpm_state = tu_tmpdir();
	ck_assert_ptr_nonnull(tpm_state);
	start_tpm(tpm_state);
}

static void
tpm_teardown(void)
{
	tu_swtpm_stop(tpm_pid);
	tu_sh("rm -rf '%s'", tpm_state);
	free(tpm_state);
}

static void
work_setup(void)
{
	work = tu_tmpdir();
	ck_assert_ptr_nonnull(work);
}

static void
work_teardown(void)
{
	tu_sh("rm -rf '%s'", work);
	free(work);
}

/* Run a shell command in the scratch directory with tpm2-tools aimed at the swtpm.
 * Only while no dg_tpm is open: swtpm serves one connection at a time. */
__attribute__((format(printf, 1, 2))) static int
tools(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	ck_assert(n > 0 && (size_t)n < sizeof cmd);
	return tu_sh("cd '%s' && export TPM2TOOLS_TCTI='%s' && %s", work, tcti, cmd);
}

static void
put(const char *name, const void *buf, size_t len)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", work, name);
	FILE *f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
}

static uint8_t *
get(const char *name, size_t *len)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", work, name);
	uint8_t *buf = tu_read_file(path, len);
	ck_assert_msg(buf != NULL, "cannot read %s", path);
	buf[*len] = '\0'; /* tu_read_file leaves room: text outputs become strings */
	return buf;
}

static void
hex(const uint8_t *buf, size_t len, char *out)
{
	for (size_t i = 0; i < len; i++)
		sprintf(out + 2 * i, "%02x", buf[i]);
}

static struct dg_tpm *
open_tpm(void)
{
	struct dg_tpm *t = NULL;
	ck_assert_int_eq(dg_tpm_open(tcti, &t), DG_OK);
	ck_assert_ptr_nonnull(t);
	return t;
}

struct publics {
	uint8_t ek[1024], ak[1024];
	size_t ek_len, ak_len;
};

static void
load_keys(struct dg_tpm *t, struct publics *p)
{
	ck_assert_int_eq(dg_tpm_keys(t, EK, AK, p->ek, &p->ek_len, p->ak, &p->ak_len), DG_OK);
}

static void
assert_same_publics(const struct publics *a, const struct publics *b)
{
	ck_assert_uint_eq(a->ek_len, b->ek_len);
	ck_assert_uint_eq(a->ak_len, b->ak_len);
	ck_assert_mem_eq(a->ek, b->ek, a->ek_len);
	ck_assert_mem_eq(a->ak, b->ak, a->ak_len);
}

static TPM2B_PUBLIC
unmarshal_public(const uint8_t *buf, size_t len)
{
	TPM2B_PUBLIC pub = { 0 };
	size_t off = 0;
	ck_assert_int_eq(Tss2_MU_TPM2B_PUBLIC_Unmarshal(buf, len, &off, &pub), TSS2_RC_SUCCESS);
	ck_assert_uint_eq(off, len);
	return pub;
}

/* Every transient object and session is gone: nothing leaks TPM slots. */
static void
assert_tpm_clean(void)
{
	ck_assert_int_eq(tools("h=$(tpm2_getcap handles-transient) && test -z \"$h\" && "
	                       "h=$(tpm2_getcap handles-loaded-session) && test -z \"$h\" && "
	                       "h=$(tpm2_getcap handles-saved-session) && test -z \"$h\""), 0);
}

START_TEST(keys_created_then_reused)
{
	struct publics first, again, reopened;
	struct dg_tpm *t = open_tpm();
	load_keys(t, &first);
	load_keys(t, &again);
	dg_tpm_close(t);
	t = open_tpm();
	load_keys(t, &reopened);
	dg_tpm_close(t);
	assert_same_publics(&first, &again);
	assert_same_publics(&first, &reopened);

	TPMT_PUBLIC ek = unmarshal_public(first.ek, first.ek_len).publicArea;
	TPMT_PUBLIC ak = unmarshal_public(first.ak, first.ak_len).publicArea;
	ck_assert_uint_eq(ek.type, TPM2_ALG_RSA);
	ck_assert_uint_eq(ek.unique.rsa.size, 256);
	ck_assert_uint_eq(ak.type, TPM2_ALG_RSA);
	ck_assert_uint_eq(ak.unique.rsa.size, 256);
	ck_assert_uint_eq(ak.parameters.rsaDetail.scheme.scheme, TPM2_ALG_RSASSA);
	ck_assert_uint_eq(ak.parameters.rsaDetail.scheme.details.rsassa.hashAlg, TPM2_ALG_SHA256);

	ck_assert_int_eq(tools("tpm2_getcap handles-persistent >handles"), 0);
	size_t len;
	char *handles = (char *)get("handles", &len);
	ck_assert_ptr_nonnull(strstr(handles, "0x81010001"));
	ck_assert_ptr_nonnull(strstr(handles, "0x81010002"));
	free(handles);
	assert_tpm_clean();
}
END_TEST

/* The EK is a primary key: the same template gives the same key, so ours must
 * equal the one tpm2_createek derives; tpm2_readpublic must agree too. */
START_TEST(ek_matches_tpm2_createek)
{
	struct publics p;
	struct dg_tpm *t = open_tpm();
	load_keys(t, &p);
	dg_tpm_close(t);

	ck_assert_int_eq(tools("tpm2_createek -G rsa -c ek.ctx -u ek.createek >/dev/null && "
	                       "tpm2_flushcontext -t && "
	                       "tpm2_readpublic -c 0x81010001 -f tss -o ek.readpublic >ek.txt"), 0);
	size_t len;
	uint8_t *created = get("ek.createek", &len);
	ck_assert_uint_eq(len, p.ek_len);
	ck_assert_mem_eq(created, p.ek, len);
	free(created);
	uint8_t *read = get("ek.readpublic", &len);
	ck_assert_uint_eq(len, p.ek_len);
	ck_assert_mem_eq(read, p.ek, len);
	free(read);
	char *text = (char *)get("ek.txt", &len);
	ck_assert_ptr_nonnull(strstr(text, "value: fixedtpm|fixedparent|sensitivedataorigin|"
	                                   "adminwithpolicy|restricted|decrypt\n"));
	ck_assert_ptr_nonnull(strstr(text, "837197674484b3f81a90cc8d46a5d724"
	                                   "fd52d76e06520b64f2a1da1b331469aa"));
	free(text);
	assert_tpm_clean();
}
END_TEST

static void
marshal_template(TPMT_PUBLIC pub, uint8_t *buf, size_t cap, size_t *len)
{
	pub.unique.rsa.size = 0; /* the random modulus is all that may differ */
	*len = 0;
	ck_assert_int_eq(Tss2_MU_TPMT_PUBLIC_Marshal(&pub, buf, cap, len), TSS2_RC_SUCCESS);
}

/* A fresh tpm2_createak key must have our AK's template, modulus aside. */
START_TEST(ak_matches_tpm2_createak)
{
	struct publics p;
	struct dg_tpm *t = open_tpm();
	load_keys(t, &p);
	dg_tpm_close(t);

	ck_assert_int_eq(tools("tpm2_createak -C 0x81010001 -c ak.ctx -u ak.createak "
	                       "-G rsa -g sha256 -s rsassa >/dev/null && "
	                       "tpm2_flushcontext -t && "
	                       "tpm2_readpublic -c 0x81010002 >ak.txt"), 0);
	size_t len, ours_len, theirs_len;
	uint8_t *created = get("ak.createak", &len);
	uint8_t ours[1024], theirs[1024];
	marshal_template(unmarshal_public(p.ak, p.ak_len).publicArea, ours, sizeof ours,
	                 &ours_len);
	marshal_template(unmarshal_public(created, len).publicArea, theirs, sizeof theirs,
	                 &theirs_len);
	free(created);
	ck_assert_uint_eq(ours_len, theirs_len);
	ck_assert_mem_eq(ours, theirs, ours_len);

	char *text = (char *)get("ak.txt", &len);
	ck_assert_ptr_nonnull(strstr(text, "value: fixedtpm|fixedparent|sensitivedataorigin|"
	                                   "userwithauth|restricted|sign\n"));
	ck_assert_ptr_nonnull(strstr(text, "scheme:\n  value: rsassa\n"));
	ck_assert_ptr_nonnull(strstr(text, "scheme-halg:\n  value: sha256\n"));
	ck_assert_ptr_nonnull(strstr(text, "bits: 2048\n"));
	free(text);
	assert_tpm_clean();
}
END_TEST

/* Keys survive a TPM restart: a swtpm of this test's own, stopped and started
 * again on the same state. */
START_TEST(keys_survive_restart)
{
	struct publics before, after;
	char *state = tu_tmpdir();
	ck_assert_ptr_nonnull(state);
	start_tpm(state);
	struct dg_tpm *t = open_tpm();
	load_keys(t, &before);
	dg_tpm_close(t);
	tu_swtpm_stop(tpm_pid);

	start_tpm(state);
	t = open_tpm();
	load_keys(t, &after);
	dg_tpm_close(t);
	assert_same_publics(&before, &after);
	assert_tpm_clean();
	tu_swtpm_stop(tpm_pid);
	tu_sh("rm -rf '%s'", state);
	free(state);
}
END_TEST

START_TEST(extend_matches_pcrread_and_sha256)
{
	uint8_t old[32], digest[32], now[32];
	for (size_t i = 0; i < sizeof digest; i++)
		digest[i] = (uint8_t)(0xa0 + i);
	struct dg_tpm *t = open_tpm();
	ck_assert_int_eq(dg_tpm_pcr_read(t, PCR, old), DG_OK);
	ck_assert_int_eq(dg_tpm_extend(t, PCR, digest), DG_OK);
	ck_assert_int_eq(dg_tpm_pcr_read(t, PCR, now), DG_OK);
	dg_tpm_close(t);

	char old_hex[65], digest_hex[65];
	hex(old, 32, old_hex);
	hex(digest, 32, digest_hex);
	ck_assert_int_eq(tools("tpm2_pcrread sha256:%d -o pcr.tools >/dev/null && "
	                       "python3 -c 'import hashlib,sys; sys.stdout.buffer.write("
	                       "hashlib.sha256(bytes.fromhex(\"%s%s\")).digest())' >pcr.python",
	                       PCR, old_hex, digest_hex), 0);
	size_t len;
	uint8_t *tools_value = get("pcr.tools", &len);
	ck_assert_uint_eq(len, 32);
	ck_assert_mem_eq(tools_value, now, 32);
	free(tools_value);
	uint8_t *expected = get("pcr.python", &len);
	ck_assert_uint_eq(len, 32);
	ck_assert_mem_eq(expected, now, 32);
	free(expected);
}
END_TEST

static int
checkquote(const char *pcr_file, const char *nonce_hex)
{
	return tools("tpm2_checkquote -u ak.pem -m msg -s sig -g sha256 -l sha256:%d -f %s "
	             "-q %s >/dev/null", PCR, pcr_file, nonce_hex);
}

START_TEST(quote_verifies_with_tpm2_checkquote)
{
	struct publics p;
	uint8_t nonce[32], pcr[32], attest[2048], sig[1024], digest[32] = { 1 };
	size_t attest_len, sig_len;
	for (size_t i = 0; i < sizeof nonce; i++)
		nonce[i] = (uint8_t)(i * 7 + 3);
	struct dg_tpm *t = open_tpm();
	load_keys(t, &p);
	ck_assert_int_eq(dg_tpm_extend(t, PCR, digest), DG_OK);
	ck_assert_int_eq(dg_tpm_pcr_read(t, PCR, pcr), DG_OK);
	ck_assert_int_eq(dg_tpm_quote(t, PCR, nonce, sizeof nonce, attest, sizeof attest,
	                              &attest_len, sig, sizeof sig, &sig_len), DG_OK);
	dg_tpm_close(t);

	TPMS_ATTEST quoted;
	size_t off = 0;
	ck_assert_int_eq(Tss2_MU_TPMS_ATTEST_Unmarshal(attest, attest_len, &off, &quoted),
	                 TSS2_RC_SUCCESS);
	ck_assert_uint_eq(off, attest_len);
	ck_assert_uint_eq(quoted.magic, TPM2_GENERATED_VALUE);
	ck_assert_uint_eq(quoted.type, TPM2_ST_ATTEST_QUOTE);
	ck_assert_uint_eq(quoted.extraData.size, sizeof nonce);
	ck_assert_mem_eq(quoted.extraData.buffer, nonce, sizeof nonce);
	TPML_PCR_SELECTION *sel = &quoted.attested.quote.pcrSelect;
	ck_assert_uint_eq(sel->count, 1);
	ck_assert_uint_eq(sel->pcrSelections[0].hash, TPM2_ALG_SHA256);
	ck_assert_uint_eq(sel->pcrSelections[0].pcrSelect[PCR / 8], 1u << (PCR % 8));

	put("msg", attest, attest_len);
	put("sig", sig, sig_len);
	put("pcr", pcr, sizeof pcr);
	pcr[0] ^= 1;
	put("pcr.wrong", pcr, sizeof pcr);
	char nonce_hex[65];
	hex(nonce, sizeof nonce, nonce_hex);
	ck_assert_int_eq(tools("tpm2_readpublic -c 0x81010002 -f pem -o ak.pem >/dev/null"), 0);
	ck_assert_int_eq(checkquote("pcr", nonce_hex), 0);
	fprintf(stderr, "expected failures from tpm2_checkquote follow\n");
	ck_assert_int_ne(checkquote("pcr.wrong", nonce_hex), 0);
	nonce_hex[0] = nonce_hex[0] == '0' ? '1' : '0';
	ck_assert_int_ne(checkquote("pcr", nonce_hex), 0);
	assert_tpm_clean();
}
END_TEST

struct credential {
	uint8_t *file; /* tpm2_makecredential's output */
	size_t id_object_len, secret_len;
	const uint8_t *id_object, *secret;
};

static uint16_t
be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* tpm2_makecredential -o writes magic 0xbadcc0de, version 1 (both big-endian
 * u32), then the marshaled TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET. */
static struct credential
make_credential(const char *name_hex)
{
	static const uint8_t header[8] = { 0xba, 0xdc, 0xc0, 0xde, 0, 0, 0, 1 };
	struct credential c;
	size_t len;
	ck_assert_int_eq(tools("tpm2_readpublic -c 0x81010001 -f tss -o ek.pub >/dev/null && "
	                       "tpm2_makecredential -T none -e ek.pub -s secret -n %s -o cred "
	                       ">/dev/null 2>&1", name_hex), 0);
	c.file = get("cred", &len);
	ck_assert_uint_ge(len, sizeof header + 4);
	ck_assert_mem_eq(c.file, header, sizeof header);
	c.id_object = c.file + sizeof header;
	c.id_object_len = 2 + be16(c.id_object);
	ck_assert_uint_ge(len, sizeof header + c.id_object_len + 2);
	c.secret = c.id_object + c.id_object_len;
	c.secret_len = 2 + be16(c.secret);
	ck_assert_uint_eq(len, sizeof header + c.id_object_len + c.secret_len);
	return c;
}

static char *
ak_name_hex(void)
{
	size_t len;
	ck_assert_int_eq(tools("tpm2_readpublic -c 0x81010002 -n ak.name >/dev/null"), 0);
	uint8_t *name = get("ak.name", &len);
	char *out = malloc(2 * len + 1);
	ck_assert_ptr_nonnull(out);
	hex(name, len, out);
	free(name);
	return out;
}

static const char secret[] = "driftgate-credential-0123456789";

START_TEST(activate_tpm2_makecredential)
{
	struct publics p;
	uint8_t out[64];
	size_t out_len = 0;
	struct dg_tpm *t = open_tpm();
	load_keys(t, &p);
	dg_tpm_close(t);
	put("secret", secret, strlen(secret));
	char *name = ak_name_hex();
	struct credential c = make_credential(name);
	free(name);

	t = open_tpm();
	load_keys(t, &p);
	ck_assert_int_eq(dg_tpm_activate(t, c.id_object, c.id_object_len, c.secret, c.secret_len,
	                                 out, sizeof out, &out_len), DG_OK);
	ck_assert_uint_eq(out_len, strlen(secret));
	ck_assert_mem_eq(out, secret, out_len);
	/* Too small an output buffer is refused, not truncated. */
	ck_assert_int_eq(dg_tpm_activate(t, c.id_object, c.id_object_len, c.secret, c.secret_len,
	                                 out, out_len - 1, &out_len), DG_ERR_TOOBIG);
	dg_tpm_close(t);
	free(c.file);
	assert_tpm_clean();
}
END_TEST

/* A credential bound to another object's name must not activate with our AK, and
 * the failure must not leak the EK policy session. */
START_TEST(activate_wrong_name_fails)
{
	struct publics p;
	uint8_t out[64];
	size_t out_len = 0;
	struct dg_tpm *t = open_tpm();
	load_keys(t, &p);
	dg_tpm_close(t);
	put("secret", secret, strlen(secret));
	char *name = ak_name_hex();
	char *last = name + strlen(name) - 1;
	*last = *last == '0' ? '1' : '0'; /* another sha256 name */
	struct credential c = make_credential(name);
	free(name);

	t = open_tpm();
	load_keys(t, &p);
	fprintf(stderr, "an expected Esys_ActivateCredential error follows\n");
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(dg_tpm_activate(t, c.id_object, c.id_object_len, c.secret,
		                                 c.secret_len, out, sizeof out, &out_len),
		                 DG_ERR_TPM);
	dg_tpm_close(t);
	free(c.file);
	assert_tpm_clean();
}
END_TEST

START_TEST(activate_rejects_malformed_input)
{
	struct publics p;
	uint8_t blob[512] = { 0, 2, 0xaa, 0xbb }, out[64];
	size_t out_len;
	struct dg_tpm *t = open_tpm();
	/* Before dg_tpm_keys there is no EK or AK to activate with. */
	ck_assert_int_eq(dg_tpm_activate(t, blob, 4, blob, 4, out, sizeof out, &out_len),
	                 DG_ERR_STATE);
	load_keys(t, &p);
	ck_assert_int_eq(dg_tpm_activate(t, blob, 5, blob, 4, out, sizeof out, &out_len),
	                 DG_ERR_TRAILING);
	ck_assert_int_eq(dg_tpm_activate(t, blob, 4, blob, 3, out, sizeof out, &out_len),
	                 DG_ERR_TRUNCATED);
	/* Present, but more than a TPM2B_ID_OBJECT can hold: tpm2-tss reports an
	 * oversized TPM2B as a short buffer. */
	blob[0] = (sizeof blob - 2) >> 8;
	blob[1] = (sizeof blob - 2) & 0xff;
	ck_assert_int_eq(dg_tpm_activate(t, blob, sizeof blob, blob, 4, out, sizeof out,
	                                 &out_len), DG_ERR_TRUNCATED);
	dg_tpm_close(t);
}
END_TEST

START_TEST(bad_arguments_rejected)
{
	struct publics p;
	uint8_t digest[32] = { 0 }, big[65] = { 0 }, attest[2048], sig[1024];
	size_t attest_len, sig_len;
	struct dg_tpm *t = open_tpm();
	ck_assert_int_eq(dg_tpm_quote(t, PCR, NULL, 0, attest, sizeof attest, &attest_len, sig,
	                              sizeof sig, &sig_len), DG_ERR_STATE);
	ck_assert_int_eq(dg_tpm_keys(t, 0x40000001, AK, p.ek, &p.ek_len, p.ak, &p.ak_len),
	                 DG_ERR_INVAL);
	ck_assert_int_eq(dg_tpm_keys(t, EK, EK, p.ek, &p.ek_len, p.ak, &p.ak_len), DG_ERR_INVAL);
	ck_assert_int_eq(dg_tpm_extend(t, 24, digest), DG_ERR_INVAL);
	ck_assert_int_eq(dg_tpm_pcr_read(t, 24, digest), DG_ERR_INVAL);
	load_keys(t, &p);
	ck_assert_int_eq(dg_tpm_quote(t, PCR, big, sizeof big, attest, sizeof attest,
	                              &attest_len, sig, sizeof sig, &sig_len), DG_ERR_TOOBIG);
	ck_assert_int_eq(dg_tpm_quote(t, PCR, big, 16, attest, sizeof attest, &attest_len, sig,
	                              16, &sig_len), DG_ERR_TOOBIG);
	ck_assert_int_eq(dg_tpm_quote(t, PCR, big, 16, attest, 16, &attest_len, sig, sizeof sig,
	                              &sig_len), DG_ERR_TOOBIG);
	dg_tpm_close(t);
	assert_tpm_clean();
}
END_TEST

START_TEST(bogus_tcti_fails_cleanly)
{
	struct dg_tpm *t = NULL;
	fprintf(stderr, "expected TCTI errors follow\n");
	ck_assert_int_eq(dg_tpm_open("no-such-tcti:foo=bar", &t), DG_ERR_TPM);
	ck_assert_ptr_null(t);
	/* A real TCTI with nothing listening behind it. */
	ck_assert_int_eq(dg_tpm_open("swtpm:host=127.0.0.1,port=1", &t), DG_ERR_TPM);
	ck_assert_ptr_null(t);
	ck_assert_int_eq(dg_tpm_open(NULL, NULL), DG_ERR_INVAL);
	dg_tpm_close(NULL);
}
END_TEST

static Suite *
tpm_suite(void)
{
	Suite *s = suite_create("tpm");
	TCase *tc = tcase_create("swtpm");
	tcase_add_unchecked_fixture(tc, tpm_setup, tpm_teardown);
	tcase_add_checked_fixture(tc, work_setup, work_teardown);
	tcase_add_test(tc, keys_created_then_reused);
	tcase_add_test(tc, ek_matches_tpm2_createek);
	tcase_add_test(tc, ak_matches_tpm2_createak);
	tcase_add_test(tc, extend_matches_pcrread_and_sha256);
	tcase_add_test(tc, quote_verifies_with_tpm2_checkquote);
	tcase_add_test(tc, activate_tpm2_makecredential);
	tcase_add_test(tc, activate_wrong_name_fails);
	tcase_add_test(tc, activate_rejects_malformed_input);
	tcase_add_test(tc, bad_arguments_rejected);
	suite_add_tcase(s, tc);

	TCase *restart = tcase_create("restart");
	tcase_add_checked_fixture(restart, work_setup, work_teardown);
	tcase_add_test(restart, keys_survive_restart);
	suite_add_tcase(s, restart);

	TCase *none = tcase_create("no-tpm");
	tcase_add_test(none, bogus_tcti_fails_cleanly);
	suite_add_tcase(s, none);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(tpm_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
