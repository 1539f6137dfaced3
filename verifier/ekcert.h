/*
 * EK certificates: the TPM manufacturer's statement that an EK lives in a
 * genuine TPM. Without one, an EK is only a key the agent presents, and the
 * verifier trusts it on first use; with one, the EK is tied to a CA the
 * operator chose (--ek-ca).
 */
#ifndef DRIFTGATE_VERIFIER_EKCERT_H
#define DRIFTGATE_VERIFIER_EKCERT_H

#include <stddef.h>
#include <stdint.h>

/* TCG tcg-kp-EKCertificate, the extended key usage of an EK certificate. */
#define DG_EKCERT_EKU_OID "2.23.133.8.1"

/*
 * Verify the DER certificate der/len (exactly one certificate, nothing after
 * it) for the EK ek_pub (marshaled TPM2B_PUBLIC, as on the wire):
 *   - it chains to a self-signed CA in the PEM bundle at ca_bundle_path, with
 *     any intermediates taken from the bundle too (TPMs store only the leaf),
 *     at the current time, and OpenSSL's checks (every critical extension
 *     understood, CA basic constraints on issuers) hold;
 *   - if it has an extended key usage, that includes tcg-kp-EKCertificate
 *     (a platform certificate, which swtpm issues for the same key, is not
 *     an EK certificate);
 *   - its public key is the EK's.
 * Returns DG_OK, or DG_ERR_TOOBIG / DG_ERR_FORMAT / DG_ERR_TRAILING (not one
 * DER certificate), DG_ERR_IO / DG_ERR_FORMAT (bundle unreadable or without a
 * certificate), DG_ERR_SIGNATURE (no chain to the bundle), DG_ERR_ATTRIBUTES
 * (wrong extended key usage), DG_ERR_DENIED (not the EK's key), or the error of
 * dg_tpmkey_import for ek_pub. err (may be NULL) receives a one-line reason
 * made of fixed text only, never of certificate contents.
 */
int dg_ekcert_verify(const char *ca_bundle_path, const uint8_t *der, size_t len,
                     const uint8_t *ek_pub, size_t ek_pub_len, char *err, size_t err_cap);

/* Load the bundle as dg_ekcert_verify does, so that a bad --ek-ca stops the
 * verifier at startup rather than refusing every agent later. */
int dg_ekcert_check_bundle(const char *ca_bundle_path, char *err, size_t err_cap);

#endif
