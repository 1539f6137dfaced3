/*
 * The agent's TPM access: a thin shell over tpm2-tss ESAPI. Every function
 * returns a dg_err; TPM response codes are logged with Tss2_RC_Decode.
 */
#ifndef DRIFTGATE_AGENT_TPM_H
#define DRIFTGATE_AGENT_TPM_H

#include <stddef.h>
#include <stdint.h>

#define DG_TPM_EK_HANDLE_DEFAULT 0x81010001u /* TCG EK persistent handle */
#define DG_TPM_AK_HANDLE_DEFAULT 0x81010002u
#define DG_TPM_BIND_HANDLE_DEFAULT 0x81010003u
/* TCG EK Credential Profile 2.0, 2.2.1.4: NV indices of the manufacturer's EK
 * certificates for the low-range (default template) EKs. */
#define DG_TPM_EK_CERT_NV_RSA 0x01c00002u /* RSA-2048 EK certificate */
#define DG_TPM_EK_CERT_NV_ECC 0x01c0000au /* ECC NIST P-256 EK certificate */

struct dg_tpm;

/* Open the TPM through a TCTI string as tpm2-tools spells it
 * ("device:/dev/tpmrm0", "swtpm:host=127.0.0.1,port=2321", ...). */
int dg_tpm_open(const char *tcti, struct dg_tpm **out);
void dg_tpm_close(struct dg_tpm *t);

/*
 * Load the EK (RSA-2048, TCG default template) and AK (restricted RSA-2048
 * RSASSA-SHA256 signing key under the EK, as tpm2_createak makes it) from
 * their persistent handles, creating and persisting them if absent (once
 * per dg_tpm: later calls return the same keys).
 * Returns the marshaled TPM2B_PUBLIC of each (caller buffers, >= 1024 bytes).
 */
int dg_tpm_keys(struct dg_tpm *t, uint32_t ek_handle, uint32_t ak_handle,
                uint8_t *ek_pub, size_t *ek_pub_len,
                uint8_t *ak_pub, size_t *ak_pub_len);

/*
 * Read the certificate of the EK dg_tpm_keys uses (RSA-2048, so the index
 * DG_TPM_EK_CERT_NV_RSA) into out (cap bytes), DER as the manufacturer wrote
 * it, minus any padding after the outer DER SEQUENCE. DG_ERR_NOTFOUND if the
 * index does not exist or was never written, DG_ERR_TOOBIG if it holds more
 * than cap bytes, DG_ERR_UNSUPPORTED if it is readable only with platform auth.
 */
int dg_tpm_ek_cert(struct dg_tpm *t, uint8_t *out, size_t cap, size_t *len);

/* TPM2_ActivateCredential with the loaded AK and EK (EK policy session). */
int dg_tpm_activate(struct dg_tpm *t, const uint8_t *id_object, size_t id_object_len,
                    const uint8_t *enc_secret, size_t enc_secret_len,
                    uint8_t *credential, size_t cap, size_t *credential_len);

/* Extend a sha256 digest into PCR pcr (sha256 bank only; the agent's PCR). */
int dg_tpm_extend(struct dg_tpm *t, uint32_t pcr, const uint8_t digest[32]);

/* Read the sha256 bank value of one PCR. */
int dg_tpm_pcr_read(struct dg_tpm *t, uint32_t pcr, uint8_t out[32]);

/* Quote the sha256 bank of one PCR with the AK. Outputs: marshaled
 * TPMS_ATTEST (contents of TPM2B_ATTEST) and marshaled TPMT_SIGNATURE. */
int dg_tpm_quote(struct dg_tpm *t, uint32_t pcr, const uint8_t *qualifying, size_t qlen,
                 uint8_t *attest, size_t attest_cap, size_t *attest_len,
                 uint8_t *sig, size_t sig_cap, size_t *sig_len);

/*
 * Load the binding key secrets are sealed to (an ECC P-256 ECDH primary key in
 * the owner hierarchy, attributes as tpmkey.h DG_TPMKEY_BIND requires) from
 * its persistent handle, creating and persisting it if absent. Returns its
 * marshaled TPM2B_PUBLIC (caller buffer >= 1024 bytes).
 */
int dg_tpm_bind_key(struct dg_tpm *t, uint32_t handle, uint8_t *pub, size_t *pub_len);

/* TPM2_Certify of the binding key by the AK, qualifying data as given:
 * marshaled TPMS_ATTEST and TPMT_SIGNATURE, as dg_tpm_quote returns them. */
int dg_tpm_certify_bind(struct dg_tpm *t, const uint8_t *qualifying, size_t qlen,
                        uint8_t *attest, size_t attest_cap, size_t *attest_len,
                        uint8_t *sig, size_t sig_cap, size_t *sig_len);

/* TPM2_ECDH_ZGen with the binding key: z = x-coordinate of point * d, the
 * shared value dg_unseal needs. DG_ERR_CRYPTO for a point off the curve. */
int dg_tpm_zgen(struct dg_tpm *t, const uint8_t point[64], uint8_t z[32]);

#endif
