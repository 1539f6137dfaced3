/*
 * Sealing secrets to a fresh agent key that the quote's qualifying data binds:
 * X25519 ECDH with an ephemeral verifier key, HKDF-SHA256, AES-256-GCM with
 * the caller's context (nonce, agent id, secret name) as associated data.
 * Output: ephemeral public (32) || iv (12) || ciphertext || tag (16).
 */
#ifndef DRIFTGATE_SEAL_H
#define DRIFTGATE_SEAL_H

#include <stddef.h>
#include <stdint.h>

#define DG_SEAL_KEY_LEN 32
#define DG_SEAL_OVERHEAD (32 + 12 + 16)

/* New X25519 key pair. Cleanse priv after use. */
int dg_seal_keygen(uint8_t priv[DG_SEAL_KEY_LEN], uint8_t pub[DG_SEAL_KEY_LEN]);

int dg_seal(const uint8_t pub[DG_SEAL_KEY_LEN], const uint8_t *aad, size_t aad_len,
            const uint8_t *pt, size_t pt_len, uint8_t *out, size_t cap, size_t *out_len);

/* DG_ERR_CRYPTO if the tag does not verify (wrong key, tampered, wrong aad). */
int dg_unseal(const uint8_t priv[DG_SEAL_KEY_LEN], const uint8_t *aad, size_t aad_len,
              const uint8_t *in, size_t in_len, uint8_t *pt, size_t cap, size_t *pt_len);

#endif
