/*
 * EK certificates, end to end on real certificates: swtpm_setup with
 * swtpm-localca manufactures two TPMs under two CAs (A, B); openssl makes a
 * third CA (X) that issues certificates for TPM A's EK key, including one with
 * a critical extension nobody knows. The agent side reads the certificate from
 * NV (agent/tpm.c); the verifier side (verifier/ekcert.c) must accept exactly
 * the certificate that chains to the configured bundle, is an EK certificate,
 * and certifies the EK presented, and refuse each other case with its own code.
 */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/rand.h>

#include "driftgate/err.h"
#include "driftgate/wire.h"
#include "ekcert.h"
#include "testutil.h"
#include "tpm.h"

#define EK DG_TPM_EK_HANDLE_DEFAULT
#define AK DG_TPM_AK_HANDLE_DEFAULT

/* ---- suite state, made once in the runner process ---- */

static char *work;
static char bundle_a[4200], bundle_b[4200], bundle_x[4200];
static char root_only_a[4200], issuer_only_a[4200];
static char tpm_a_dir[4200], tpm_plain_dir[4200];
static uint8_t *cert_a, *cert_b, *plat_a, *cert_x, *cert_x_crit; /* DER */
static size_t cert_a_len, cert_b_len, plat_a_len, cert_x_len, cert_x_crit_len;
static uint8_t ek_a[DG_WIRE_MAX_KEY], ak_a[DG_WIRE_MAX_KEY];
static size_t ek_a_len, ak_a_len;

static uint8_t *
slurp(const char *rel, size_t *len)
{
	char path[4300];
	snprintf(path, sizeof path, "%s/%s", work, rel);
	uint8_t *buf = tu_read_file(path, len);
	ck_assert_msg(buf != NULL && *len > 0, "cannot read %s", path);
	return buf;
}

/* openssl configuration for CA X and the certificates it issues. */
static const char x_cnf[] =
	"[req]\n"
	"distinguished_name = dn\n"
	"prompt = no\n"
	"[dn]\n"
	"CN = driftgate-test-other-ca\n"
	"[ca_ext]\n"
	"basicConstraints = critical,CA:TRUE\n"
	"keyUsage = critical,keyCertSign,cRLSign\n"
	"subjectKeyIdentifier = hash\n"
	"[ek_ext]\n"
	"basicConstraints = critical,CA:FALSE\n"
	"keyUsage = critical,keyEncipherment\n"
	"extendedKeyUsage = 2.23.133.8.1\n"
	"[ek_crit_ext]\n"
	"basicConstraints = critical,CA:FALSE\n"
	"keyUsage = critical,keyEncipherment\n"
	"extendedKeyUsage = 2.23.133.8.1\n"
	"1.3.6.1.4.1.55555.1.1 = critical,ASN1:NULL\n";

static void
suite_setup(void)
{
	char tcti[64], path[4300];
	int port;
	pid_t pid;
	struct dg_tpm *t;
	FILE *f;

	work = tu_tmpdir();
	ck_assert_ptr_nonnull(work);
	snprintf(tpm_a_dir, sizeof tpm_a_dir, "%s/tpm-a", work);
	snprintf(tpm_plain_dir, sizeof tpm_plain_dir, "%s/tpm-plain", work);
	snprintf(bundle_a, sizeof bundle_a, "%s/ca-a/bundle.pem", work);
	snprintf(bundle_b, sizeof bundle_b, "%s/ca-b/bundle.pem", work);
	snprintf(bundle_x, sizeof bundle_x, "%s/x/ca.pem", work);
	snprintf(root_only_a, sizeof root_only_a, "%s/ca-a/swtpm-localca-rootca-cert.pem", work);
	snprintf(issuer_only_a, sizeof issuer_only_a, "%s/ca-a/issuercert.pem", work);
	ck_assert_int_eq(mkdir(tpm_plain_dir, 0700), 0);

	/* Two vendors, one TPM each. */
	ck_assert_int_eq(tu_sh("bash \"$DG_SOURCE_ROOT/tests/e2e/swtpm_manufacture.sh\" "
	                       "'%s/ca-a' '%s' '%s/certs-a'", work, tpm_a_dir, work), 0);
	ck_assert_int_eq(tu_sh("bash \"$DG_SOURCE_ROOT/tests/e2e/swtpm_manufacture.sh\" "
	                       "'%s/ca-b' '%s/tpm-b' '%s/certs-b'", work, work, work), 0);
	cert_a = slurp("certs-a/ek-rsa2048.crt", &cert_a_len);
	cert_b = slurp("certs-b/ek-rsa2048.crt", &cert_b_len);

	/* TPM A's EK public as the agent sends it, and its platform certificate. */
	ck_assert_int_eq(tu_swtpm_start(tpm_a_dir, &port, &pid), 0);
	snprintf(tcti, sizeof tcti, "swtpm:host=127.0.0.1,port=%d", port);
	ck_assert_int_eq(tu_sh("tpm2_nvread -T '%s' 0x01c08000 -o '%s/plat-a.der' >/dev/null 2>&1",
	                       tcti, work), 0);
	ck_assert_int_eq(dg_tpm_open(tcti, &t), DG_OK);
	ek_a_len = ak_a_len = DG_WIRE_MAX_KEY;
	ck_assert_int_eq(dg_tpm_keys(t, EK, AK, ek_a, &ek_a_len, ak_a, &ak_a_len), DG_OK);
	dg_tpm_close(t);
	tu_swtpm_stop(pid);
	plat_a = slurp("plat-a.der", &plat_a_len);

	/* CA X (openssl) certifies TPM A's EK key, once plainly and once with an
	 * unknown critical extension. */
	snprintf(path, sizeof path, "%s/x", work);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	snprintf(path, sizeof path, "%s/x/openssl.cnf", work);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	ck_assert_int_eq(fputs(x_cnf, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(
	    tu_sh("cd '%s/x' && exec >openssl.log 2>&1 && "
	          "openssl req -x509 -config openssl.cnf -extensions ca_ext -newkey rsa:2048 -nodes "
	          "-keyout ca.key -out ca.pem -days 3650 && "
	          "openssl x509 -inform DER -in ../certs-a/ek-rsa2048.crt -pubkey -noout >ek-a.pub && "
	          "openssl req -new -config openssl.cnf -newkey rsa:2048 -nodes -keyout csr.key "
	          "-out ek.csr && "
	          "openssl x509 -req -in ek.csr -force_pubkey ek-a.pub -CA ca.pem -CAkey ca.key "
	          "-set_serial 7 -days 3650 -extfile openssl.cnf -extensions ek_ext -outform DER "
	          "-out ek-x.der && "
	          "openssl x509 -req -in ek.csr -force_pubkey ek-a.pub -CA ca.pem -CAkey ca.key "
	          "-set_serial 8 -days 3650 -extfile openssl.cnf -extensions ek_crit_ext -outform DER "
	          "-out ek-x-crit.der",
	          work),
	    0);
	cert_x = slurp("x/ek-x.der", &cert_x_len);
	cert_x_crit = slurp("x/ek-x-crit.der", &cert_x_crit_len);
}

static void
suite_teardown(void)
{
	free(cert_a);
	free(cert_b);
	free(plat_a);
	free(cert_x);
	free(cert_x_crit);
	if (work != NULL) {
		tu_sh("rm -rf '%s'", work);
		free(work);
		work = NULL;
	}
}

static int
verify(const char *bundle, const uint8_t *der, size_t len, char *err, size_t cap)
{
	return dg_ekcert_verify(bundle, der, len, ek_a, ek_a_len, err, cap);
}

/* ---- the agent's side: the certificate in NV ---- */

/* What dg_tpm_ek_cert reads is what swtpm_setup wrote; a TPM without one says so. */
START_TEST(test_tpm_reads_ek_cert)
{
	char tcti[64];
	int port;
	pid_t pid;
	struct dg_tpm *t;
	uint8_t buf[DG_WIRE_MAX_EK_CERT];
	size_t len = 12345;

	ck_assert_int_eq(tu_swtpm_start(tpm_a_dir, &port, &pid), 0);
	snprintf(tcti, sizeof tcti, "swtpm:host=127.0.0.1,port=%d", port);
	ck_assert_int_eq(dg_tpm_open(tcti, &t), DG_OK);
	ck_assert_int_eq(dg_tpm_ek_cert(t, buf, sizeof buf, &len), DG_OK);
	ck_assert_uint_eq(len, cert_a_len);
	ck_assert_mem_eq(buf, cert_a, cert_a_len);
	/* one byte short of the index: refused, not truncated */
	ck_assert_int_eq(dg_tpm_ek_cert(t, buf, cert_a_len - 1, &len), DG_ERR_TOOBIG);
	ck_assert_uint_eq(len, 0);
	dg_tpm_close(t);
	tu_swtpm_stop(pid);

	ck_assert_int_eq(tu_swtpm_start(tpm_plain_dir, &port, &pid), 0);
	snprintf(tcti, sizeof tcti, "swtpm:host=127.0.0.1,port=%d", port);
	ck_assert_int_eq(dg_tpm_open(tcti, &t), DG_OK);
	len = 12345;
	ck_assert_int_eq(dg_tpm_ek_cert(t, buf, sizeof buf, &len), DG_ERR_NOTFOUND);
	ck_assert_uint_eq(len, 0);
	dg_tpm_close(t);
	tu_swtpm_stop(pid);
}
END_TEST

/*
 * An index larger than the certificate, padded after it (as some vendors do),
 * and larger than one TPM2_NV_Read (swtpm: TPM2_PT_NV_BUFFER_MAX 1024 bytes,
 * TPM2_PT_NV_INDEX_MAX 2048): the reads are chunked and the padding dropped.
 */
START_TEST(test_tpm_padded_index)
{
	char tcti[64], dir[4300];
	int port;
	pid_t pid;
	struct dg_tpm *t;
	uint8_t buf[DG_WIRE_MAX_EK_CERT];
	size_t len = 0;
	const size_t index_size = 2048;

	ck_assert_uint_lt(cert_a_len, index_size);
	snprintf(dir, sizeof dir, "%s/tpm-padded", work);
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	ck_assert_int_eq(tu_swtpm_start(dir, &port, &pid), 0);
	snprintf(tcti, sizeof tcti, "swtpm:host=127.0.0.1,port=%d", port);
	ck_assert_int_eq(
	    tu_sh("cd '%s' && exec >>tpm2-tools.log 2>&1 && export TPM2TOOLS_TCTI='%s' && "
	          "{ cat ../certs-a/ek-rsa2048.crt; head -c %zu /dev/zero | tr '\\0' '\\377'; } "
	          ">padded.bin && "
	          "tpm2_nvdefine 0x01c00002 -C o -s %zu -a 'ownerread|ownerwrite|authread|no_da' && "
	          "tpm2_nvwrite 0x01c00002 -C o -i padded.bin",
	          dir, tcti, index_size - cert_a_len, index_size),
	    0);
	ck_assert_int_eq(dg_tpm_open(tcti, &t), DG_OK);
	ck_assert_int_eq(dg_tpm_ek_cert(t, buf, sizeof buf, &len), DG_OK);
	ck_assert_uint_eq(len, cert_a_len);
	ck_assert_mem_eq(buf, cert_a, cert_a_len);
	ck_assert_int_eq(dg_ekcert_verify(bundle_a, buf, len, ek_a, ek_a_len, NULL, 0), DG_OK);
	dg_tpm_close(t);
	tu_swtpm_stop(pid);
}
END_TEST

/* ---- the verifier's side ---- */

START_TEST(test_valid_cert)
{
	char err[256] = "unchanged";
	ck_assert_int_eq(verify(bundle_a, cert_a, cert_a_len, err, sizeof err), DG_OK);
	ck_assert_str_eq(err, "");
	/* a CA made by openssl works the same way: the module is not swtpm-specific */
	ck_assert_int_eq(verify(bundle_x, cert_x, cert_x_len, err, sizeof err), DG_OK);
	ck_assert_int_eq(dg_ekcert_check_bundle(bundle_a, err, sizeof err), DG_OK);
}
END_TEST

/* The right key, the wrong CA: only the chain fails. */
START_TEST(test_other_ca)
{
	char err[256];
	ck_assert_int_eq(verify(bundle_b, cert_a, cert_a_len, err, sizeof err), DG_ERR_SIGNATURE);
	ck_assert_msg(strstr(err, "unable to get local issuer certificate") != NULL, "%s", err);
	/* CA X's certificate for TPM A's very EK, against vendor A's bundle */
	ck_assert_int_eq(verify(bundle_a, cert_x, cert_x_len, err, sizeof err), DG_ERR_SIGNATURE);
	/* A's own CA, incomplete: the root alone lacks the issuer, and the issuer
	 * alone is not a trust anchor (no partial chains) */
	ck_assert_int_eq(verify(root_only_a, cert_a, cert_a_len, err, sizeof err), DG_ERR_SIGNATURE);
	ck_assert_int_eq(verify(issuer_only_a, cert_a, cert_a_len, err, sizeof err),
	                 DG_ERR_SIGNATURE);
}
END_TEST

/* A valid certificate, from a trusted CA, but not for this EK. */
START_TEST(test_not_this_ek)
{
	char err[256];
	/* TPM B's EK certificate, under B's bundle, presented with TPM A's EK */
	ck_assert_int_eq(verify(bundle_b, cert_b, cert_b_len, err, sizeof err), DG_ERR_DENIED);
	ck_assert_msg(strstr(err, "another key") != NULL, "%s", err);
	/* the EK presented must itself be an EK: TPM A's AK is refused as one */
	ck_assert_int_eq(dg_ekcert_verify(bundle_a, cert_a, cert_a_len, ak_a, ak_a_len, err,
	                                  sizeof err),
	                 DG_ERR_ATTRIBUTES);
}
END_TEST

/* swtpm's platform certificate certifies the EK's key too, under the same CA:
 * only its extended key usage (tcg-kp-PlatformCertificate) tells it apart. */
START_TEST(test_platform_cert)
{
	char err[256];
	ck_assert_int_eq(verify(bundle_a, plat_a, plat_a_len, err, sizeof err), DG_ERR_ATTRIBUTES);
	ck_assert_msg(strstr(err, "tcg-kp-EKCertificate") != NULL, "%s", err);
}
END_TEST

/* A critical extension OpenSSL does not know is refused (RFC 5280); the
 * certificate is otherwise CA X's valid one for this EK. */
START_TEST(test_unknown_critical_extension)
{
	char err[256];
	ck_assert_int_eq(verify(bundle_x, cert_x_crit, cert_x_crit_len, err, sizeof err),
	                 DG_ERR_SIGNATURE);
	ck_assert_msg(strstr(err, "unhandled critical extension") != NULL, "%s", err);
}
END_TEST

START_TEST(test_bad_der)
{
	char err[256];
	uint8_t buf[DG_WIRE_MAX_EK_CERT + 1];

	/* every truncation */
	for (size_t n = 1; n < cert_a_len; n++) {
		uint8_t *copy = malloc(n); /* exact size: ASan sees any over-read */
		ck_assert_ptr_nonnull(copy);
		memcpy(copy, cert_a, n);
		ck_assert_int_eq(verify(bundle_a, copy, n, err, sizeof err), DG_ERR_FORMAT);
		free(copy);
	}
	ck_assert_int_eq(verify(bundle_a, cert_a, 0, err, sizeof err), DG_ERR_FORMAT);
	ck_assert_int_eq(verify(bundle_a, NULL, 0, err, sizeof err), DG_ERR_FORMAT);
	/* trailing bytes, even a single zero */
	memcpy(buf, cert_a, cert_a_len);
	buf[cert_a_len] = 0;
	ck_assert_int_eq(verify(bundle_a, buf, cert_a_len + 1, err, sizeof err), DG_ERR_TRAILING);
	/* garbage */
	ck_assert_int_eq(RAND_bytes(buf, sizeof buf), 1);
	buf[0] = 0x30; /* at least looks like a SEQUENCE */
	ck_assert_int_eq(verify(bundle_a, buf, 1024, err, sizeof err), DG_ERR_FORMAT);
	/* over the wire bound */
	ck_assert_int_eq(verify(bundle_a, buf, sizeof buf, err, sizeof err), DG_ERR_TOOBIG);
	/* one bit of the signature flipped: parses, but does not verify */
	memcpy(buf, cert_a, cert_a_len);
	buf[cert_a_len - 1] ^= 0x01;
	ck_assert_int_eq(verify(bundle_a, buf, cert_a_len, err, sizeof err), DG_ERR_SIGNATURE);
	/* and the unmodified one still passes */
	ck_assert_int_eq(verify(bundle_a, cert_a, cert_a_len, err, sizeof err), DG_OK);
}
END_TEST

START_TEST(test_bad_bundle)
{
	char err[256], path[4300];
	FILE *f;

	snprintf(path, sizeof path, "%s/missing.pem", work);
	ck_assert_int_eq(verify(path, cert_a, cert_a_len, err, sizeof err), DG_ERR_IO);
	ck_assert_int_eq(dg_ekcert_check_bundle(path, err, sizeof err), DG_ERR_IO);
	snprintf(path, sizeof path, "%s/empty.pem", work);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(dg_ekcert_check_bundle(path, err, sizeof err), DG_ERR_FORMAT);
	ck_assert_int_eq(verify(path, cert_a, cert_a_len, err, sizeof err), DG_ERR_FORMAT);
	/* a good bundle followed by a damaged certificate: refused as a whole */
	snprintf(path, sizeof path, "%s/damaged.pem", work);
	ck_assert_int_eq(tu_sh("{ cat '%s'; printf '%%s\\n' '-----BEGIN CERTIFICATE-----' AAAA "
	                       "'-----END CERTIFICATE-----'; } > '%s'",
	                       bundle_a, path),
	                 0);
	ck_assert_int_eq(dg_ekcert_check_bundle(path, err, sizeof err), DG_ERR_FORMAT);
	ck_assert_int_eq(verify(path, cert_a, cert_a_len, err, sizeof err), DG_ERR_FORMAT);
}
END_TEST

static Suite *
ekcert_suite(void)
{
	Suite *s = suite_create("ekcert");
	TCase *tc = tcase_create("core");
	tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_tpm_reads_ek_cert);
	tcase_add_test(tc, test_tpm_padded_index);
	tcase_add_test(tc, test_valid_cert);
	tcase_add_test(tc, test_other_ca);
	tcase_add_test(tc, test_not_this_ek);
	tcase_add_test(tc, test_platform_cert);
	tcase_add_test(tc, test_unknown_critical_extension);
	tcase_add_test(tc, test_bad_der);
	tcase_add_test(tc, test_bad_bundle);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(ekcert_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
