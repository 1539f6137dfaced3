/*
 * TPM2_MakeCredential in software (verifier side, no TPM), as specified in
 * TPM 2.0 Part 1 section 24: a random seed encrypted to the EK (RSA-OAEP
 * SHA-256, label "IDENTITY\0", or ECDH for an ECC EK), KDFa-derived AES-128-CFB
 * and HMAC keys bound to the AK name.
 */
#ifndef DRIFTGATE_CREDENTIAL_H
#define DRIFTGATE_CREDENTIAL_H

#include <stddef.h>
#include <stdint.h>

#define DG_CRED_MAX_ID_OBJECT 256      /* marshaled TPM2B_ID_OBJECT */
#define DG_CRED_MAX_SECRET 512         /* marshaled TPM2B_ENCRYPTED_SECRET */
#define DG_CRED_MAX_CREDENTIAL 64

/*
 * ek_pub: marshaled TPM2B_PUBLIC of the EK (checked with dg_tpmkey_import).
 * ak_name: the AK's TPM name. credential: the secret to wrap (1..64 bytes).
 * Outputs are marshaled TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET, exactly
 * what Esys_ActivateCredential and tpm2_activatecredential take.
 */
int dg_cred_make(const uint8_t *ek_pub, size_t ek_pub_len,
                 const uint8_t *ak_name, size_t ak_name_len,
                 const uint8_t *credential, size_t credential_len,
                 uint8_t *id_object, size_t id_object_cap, size_t *id_object_len,
                 uint8_t *enc_secret, size_t enc_secret_cap, size_t *enc_secret_len);

/* SP 800-108 counter-mode KDF with HMAC as TPM 2.0 defines KDFa (exposed for tests). */
int dg_cred_kdfa(const char *md_name, const uint8_t *key, size_t key_len,
                 const char *label, const uint8_t *context_u, size_t context_u_len,
                 const uint8_t *context_v, size_t context_v_len,
                 uint32_t bits, uint8_t *out, size_t out_len);

#endif
