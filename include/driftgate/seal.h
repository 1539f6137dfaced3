/*
 * Sealing secrets to an agent's TPM-resident binding key (an ECC P-256 ECDH
 * key, tpmkey.h DG_TPMKEY_BIND): ECDH with an ephemeral verifier key,
 * HKDF-SHA256 over the shared x-coordinate, AES-256-GCM with the caller's
 * context (release.h) as associated data. Only the TPM holding the binding
 * key can compute the shared value (TPM2_ECDH_ZGen), so a sealed secret
 * relayed to another node, or replayed later, opens nowhere else.
 * Output: ephemeral point x || y (64) || iv (12) || ciphertext || tag (16).
 */
#ifndef DRIFTGATE_SEAL_H
#define DRIFTGATE_SEAL_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>

#define DG_SEAL_COORD_LEN 32 /* P-256 coordinate, big-endian, zero-padded */
#define DG_SEAL_POINT_LEN (2 * DG_SEAL_COORD_LEN) /* x || y */
#define DG_SEAL_OVERHEAD (DG_SEAL_POINT_LEN + 12 + 16)

/* The point x || y of a P-256 public key. */
int dg_seal_point_of(EVP_PKEY *key, uint8_t point[DG_SEAL_POINT_LEN]);

/* Seal pt to rcpt (a P-256 public key) into out (cap >= pt_len + DG_SEAL_OVERHEAD). */
int dg_seal(EVP_PKEY *rcpt, const uint8_t *aad, size_t aad_len, const uint8_t *pt,
            size_t pt_len, uint8_t *out, size_t cap, size_t *out_len);

/* The ephemeral point of a sealed blob: what the recipient multiplies by its
 * private key (TPM2_ECDH_ZGen) to get z. DG_ERR_TRUNCATED for a short blob. */
int dg_seal_ephemeral(const uint8_t *in, size_t in_len, const uint8_t **point);

/*
 * Open a sealed blob given z, the x-coordinate of the shared point, and the
 * recipient's own public point. DG_ERR_CRYPTO if the tag does not verify
 * (wrong key, tampered, wrong aad); pt is cleansed then.
 */
int dg_unseal(const uint8_t z[DG_SEAL_COORD_LEN], const uint8_t rcpt_point[DG_SEAL_POINT_LEN],
              const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t in_len,
              uint8_t *pt, size_t cap, size_t *pt_len);

#endif
