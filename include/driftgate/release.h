/*
 * How a released secret is bound to one attestation: the associated data that
 * both sides feed to dg_seal/dg_unseal, so a sealed secret cannot be moved to
 * another agent, workload, round or name, nor its lease stretched.
 */
#ifndef DRIFTGATE_RELEASE_H
#define DRIFTGATE_RELEASE_H

#include <stddef.h>
#include <stdint.h>

#define DG_RELEASE_NONCE_LEN 32
#define DG_RELEASE_AAD_MAX 320 /* label, names of at most 64 + 128 + 64 bytes, nonce, lease */

struct dg_release_ctx {
	const char *agent_id;
	const char *scope;  /* container id, "" for the node */
	const char *secret; /* the secret's name */
	const uint8_t *nonce; /* DG_RELEASE_NONCE_LEN bytes: the round's */
	uint32_t lease_ms;
};

/* aad = "driftgate release v2" 0 agent_id 0 scope 0 secret 0 nonce(32) lease_ms(u32 BE). */
int dg_release_aad(const struct dg_release_ctx *c, uint8_t *out, size_t cap, size_t *out_len);

#endif
