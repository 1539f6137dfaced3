/*
 * How a released secret is bound to one attestation: the associated data that
 * both sides feed to dg_seal/dg_unseal, so a sealed secret cannot be moved to
 * another agent, another round or another name.
 */
#ifndef DRIFTGATE_RELEASE_H
#define DRIFTGATE_RELEASE_H

#include <stddef.h>
#include <stdint.h>

#define DG_RELEASE_AAD_MAX 192 /* label, two names of at most 64 bytes, nonce */

/* aad = "driftgate release v1" 0 agent_id 0 name 0 nonce(32). */
int dg_release_aad(const char *agent_id, const char *secret_name, const uint8_t nonce[32],
                   uint8_t *out, size_t cap, size_t *out_len);

#endif
