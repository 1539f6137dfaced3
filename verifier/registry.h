/*
 * The verifier's view of each enrolled agent: identity (EK, AK), the nonce
 * it was last given, its incremental replay position, its last clockInfo and
 * the drift it has shown. Held in memory in this version; one interface so a
 * durable store can sit behind it.
 */
#ifndef DRIFTGATE_VERIFIER_REGISTRY_H
#define DRIFTGATE_VERIFIER_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "driftgate/log.h"
#include "driftgate/quote.h"
#include "driftgate/tpmkey.h"
#include "driftgate/verdict.h"
#include "driftgate/wire.h"
#include "driftgate/workload.h"
#include "lease.h"

#define DG_REGISTRY_MAX_AGENTS 100000

struct dg_agent_rec {
	char id[DG_WIRE_MAX_AGENT_ID + 1];
	uint8_t ek_pub[DG_TPMKEY_MAX_PUBLIC], ak_pub[DG_TPMKEY_MAX_PUBLIC];
	size_t ek_pub_len, ak_pub_len;
	uint8_t ak_name[DG_TPMKEY_MAX_NAME];
	size_t ak_name_len;
	EVP_PKEY *ak;
	uint32_t pcr;
	bool activated;                /* proved EK and AK live in one TPM */
	bool challenge_live;
	uint8_t credential[32];        /* expected answer to the live challenge */
	bool nonce_live;
	uint8_t nonce[DG_QUOTE_NONCE_LEN];
	uint64_t nonce_expiry_ms;
	struct dg_replay replay;       /* PCR values after the accepted entries */
	bool have_clock;
	struct dg_quote_clock clock;
	struct dg_containers *containers; /* announced by the accepted log */
	size_t n_drift;                /* sticky until the agent's next boot */
	struct dg_reason drift[DG_VERDICT_MAX_REASONS];
	/* Not stored: a restarted verifier learns leases again from renewals,
	 * and silence is judged from its own start. */
	struct dg_leases *leases;      /* secrets out on lease; NULL: none yet */
	uint64_t last_seen_ms;         /* monotonic: the last trusted quote */
	bool heartbeat_missed;         /* until the next passing round */
};

struct dg_registry;

int dg_registry_new(struct dg_registry **out);
void dg_registry_free(struct dg_registry *r);
/* NULL if unknown. */
struct dg_agent_rec *dg_registry_find(struct dg_registry *r, const char *id);
/* A new zeroed record for id; DG_ERR_EXISTS if present, DG_ERR_TOOBIG if full. */
int dg_registry_add(struct dg_registry *r, const char *id, struct dg_agent_rec **out);
size_t dg_registry_count(const struct dg_registry *r);
/* Call fn on every record, in no particular order; fn must not add or remove. */
void dg_registry_foreach(struct dg_registry *r, void (*fn)(struct dg_agent_rec *a, void *arg),
                         void *arg);

/*
 * An agent's state for operators (status, metrics), from what the record
 * holds: enrolling (challenge not yet answered), enrolled (no round has
 * proven its log yet), fail (sticky drift in this boot), pass (its last
 * proven round showed none). Round-only failures (nonce, signature, a log
 * that does not replay) leave no trace in the record, so they do not show.
 */
enum dg_registry_state {
	DG_REGISTRY_ENROLLING,
	DG_REGISTRY_ENROLLED,
	DG_REGISTRY_PASS,
	DG_REGISTRY_FAIL,
	DG_REGISTRY_SILENT, /* no drift, but missed its heartbeat (attest.h) */
	DG_REGISTRY_STATES
};
enum dg_registry_state dg_registry_state(const struct dg_agent_rec *a);
/* "enrolling", "enrolled", "pass", "fail". */
const char *dg_registry_state_name(enum dg_registry_state s);

#endif
