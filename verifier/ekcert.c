/*
 * EK certificate verification with OpenSSL's chain builder.
 *
 * The bundle is read certificate by certificate into an X509_STORE; every
 * certificate in it may serve to build the chain, and the chain must end at a
 * self-signed one (no X509_V_FLAG_PARTIAL_CHAIN), so a bundle holding only an
 * intermediate trusts nothing.
 *
 * Critical extensions: EK certificates carry a critical subjectAltName with a
 * directoryName (TPM manufacturer, model, version; TCG EK Credential Profile),
 * which some X.509 stacks (Go's) do not handle and reject. swtpm-localca's
 * certificates have that SAN plus critical basicConstraints and keyUsage, and
 * OpenSSL processes all three, so verification needs no
 * X509_V_FLAG_IGNORE_CRITICAL: a certificate with a critical extension OpenSSL
 * does not know is refused, as RFC 5280 requires (tests/unit/test_ekcert.c
 * checks both).
 */
#include "ekcert.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "driftgate/err.h"
#include "driftgate/tpmkey.h"
#include "driftgate/wire.h"

/* An operator's bundle is trusted input; the bound only stops a runaway file. */
#define MAX_BUNDLE_CERTS 1024

static int fail(char *err, size_t cap, int rv, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int
fail(char *err, size_t cap, int rv, const char *fmt, ...)
{
	va_list ap;
	if (err != NULL && cap > 0) {
		va_start(ap, fmt);
		vsnprintf(err, cap, fmt, ap);
		va_end(ap);
	}
	return rv;
}

/* Every certificate of a PEM file into a new store. */
static int
load_bundle(const char *path, X509_STORE **out, char *err, size_t cap)
{
	X509_STORE *store = NULL;
	X509 *cert = NULL;
	BIO *bio = NULL;
	size_t n = 0;
	unsigned long e;
	int rv;

	*out = NULL;
	if (path == NULL || path[0] == '\0') {
		rv = fail(err, cap, DG_ERR_INVAL, "no CA bundle configured");
		goto out;
	}
	if ((bio = BIO_new_file(path, "r")) == NULL) {
		rv = fail(err, cap, DG_ERR_IO, "%s: cannot open the EK CA bundle", path);
		goto out;
	}
	if ((store = X509_STORE_new()) == NULL) {
		rv = fail(err, cap, DG_ERR_NOMEM, "out of memory");
		goto out;
	}
	ERR_clear_error();
	while ((cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (++n > MAX_BUNDLE_CERTS) {
			rv = fail(err, cap, DG_ERR_TOOBIG, "%s: more than %d certificates", path,
			          MAX_BUNDLE_CERTS);
			goto out;
		}
		if (X509_STORE_add_cert(store, cert) != 1) {
			rv = fail(err, cap, DG_ERR_CRYPTO, "%s: certificate %zu not accepted", path, n);
			goto out;
		}
		X509_free(cert);
		cert = NULL;
	}
	/* The loop ends at the end of the file ("no start line") or at a block
	 * that does not parse; only the first is a complete bundle. */
	e = ERR_peek_last_error();
	if (ERR_GET_LIB(e) != ERR_LIB_PEM || ERR_GET_REASON(e) != PEM_R_NO_START_LINE) {
		rv = fail(err, cap, DG_ERR_FORMAT, "%s: certificate %zu does not parse", path, n + 1);
		goto out;
	}
	if (n == 0) {
		rv = fail(err, cap, DG_ERR_FORMAT, "%s: no PEM certificate in the EK CA bundle", path);
		goto out;
	}
	*out = store;
	store = NULL;
	rv = DG_OK;
out:
	ERR_clear_error();
	X509_free(cert);
	X509_STORE_free(store);
	BIO_free(bio);
	return rv;
}

int
dg_ekcert_check_bundle(const char *ca_bundle_path, char *err, size_t err_cap)
{
	X509_STORE *store = NULL;
	int rv = load_bundle(ca_bundle_path, &store, err, err_cap);
	X509_STORE_free(store);
	return rv;
}

/* Absent extended key usage is accepted: the TCG profile does not require
 * one, and older manufacturer certificates lack it. */
static bool
eku_allows_ek(X509 *cert)
{
	EXTENDED_KEY_USAGE *eku = NULL;
	ASN1_OBJECT *want = NULL;
	bool ok = false;

	if (!(X509_get_extension_flags(cert) & EXFLAG_XKUSAGE))
		return true;
	if ((eku = X509_get_ext_d2i(cert, NID_ext_key_usage, NULL, NULL)) == NULL ||
	    (want = OBJ_txt2obj(DG_EKCERT_EKU_OID, 1)) == NULL)
		goto out;
	for (int i = 0; i < sk_ASN1_OBJECT_num(eku) && !ok; i++)
		ok = OBJ_cmp(sk_ASN1_OBJECT_value(eku, i), want) == 0;
out:
	ASN1_OBJECT_free(want);
	EXTENDED_KEY_USAGE_free(eku);
	return ok;
}

int
dg_ekcert_verify(const char *ca_bundle_path, const uint8_t *der, size_t len,
                 const uint8_t *ek_pub, size_t ek_pub_len, char *err, size_t err_cap)
{
	const unsigned char *p = der;
	X509 *cert = NULL;
	X509_STORE *store = NULL;
	X509_STORE_CTX *ctx = NULL;
	EVP_PKEY *ek = NULL;
	EVP_PKEY *cert_key;
	int rv, vr;

	if (err != NULL && err_cap > 0)
		err[0] = '\0';
	if (der == NULL || len == 0) {
		rv = fail(err, err_cap, DG_ERR_FORMAT, "empty EK certificate");
		goto out;
	}
	if (len > DG_WIRE_MAX_EK_CERT) {
		rv = fail(err, err_cap, DG_ERR_TOOBIG, "EK certificate over %d bytes",
		          DG_WIRE_MAX_EK_CERT);
		goto out;
	}
	if ((cert = d2i_X509(NULL, &p, (long)len)) == NULL) {
		rv = fail(err, err_cap, DG_ERR_FORMAT, "EK certificate is not a DER X.509 certificate");
		goto out;
	}
	if (p != der + len) {
		rv = fail(err, err_cap, DG_ERR_TRAILING, "%zu bytes after the EK certificate",
		          (size_t)(der + len - p));
		goto out;
	}
	if ((rv = dg_tpmkey_import(ek_pub, ek_pub_len, DG_TPMKEY_EK, &ek, NULL, NULL)) != DG_OK) {
		fail(err, err_cap, rv, "EK rejected: %s", dg_strerror(rv));
		goto out;
	}
	if ((rv = load_bundle(ca_bundle_path, &store, err, err_cap)) != DG_OK)
		goto out;
	if ((ctx = X509_STORE_CTX_new()) == NULL || X509_STORE_CTX_init(ctx, store, cert, NULL) != 1) {
		rv = fail(err, err_cap, DG_ERR_NOMEM, "out of memory");
		goto out;
	}
	/* < 0 is an internal error, 0 a chain that does not verify: both refuse. */
	if ((vr = X509_verify_cert(ctx)) != 1) {
		int e = X509_STORE_CTX_get_error(ctx);
		rv = fail(err, err_cap, DG_ERR_SIGNATURE,
		          "EK certificate does not verify against the CA bundle: %s (depth %d)",
		          vr < 0 && e == X509_V_OK ? "internal error" : X509_verify_cert_error_string(e),
		          X509_STORE_CTX_get_error_depth(ctx));
		goto out;
	}
	if (!eku_allows_ek(cert)) {
		rv = fail(err, err_cap, DG_ERR_ATTRIBUTES,
		          "certificate's extended key usage is not tcg-kp-EKCertificate");
		goto out;
	}
	/* get0: owned by cert. A key type OpenSSL cannot decode gives NULL. */
	if ((cert_key = X509_get0_pubkey(cert)) == NULL || EVP_PKEY_eq(cert_key, ek) != 1) {
		rv = fail(err, err_cap, DG_ERR_DENIED, "EK certificate is for another key than the EK");
		goto out;
	}
	rv = DG_OK;
out:
	ERR_clear_error(); /* nothing of a refused certificate lingers in the thread's queue */
	EVP_PKEY_free(ek);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	X509_free(cert);
	return rv;
}
