/*
 * The audit trail: one JSON object per line for every enrollment and verdict,
 * flushed and synced before the verdict is sent, so an acknowledged verdict
 * is never missing from it. It names secrets, never their values.
 */
#ifndef DRIFTGATE_VERIFIER_AUDIT_H
#define DRIFTGATE_VERIFIER_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "driftgate/quote.h"
#include "driftgate/verdict.h"

struct dg_audit;

struct dg_audit_verdict {
	const char *agent_id;
	const char *baseline; /* NULL if none applied */
	const char *policy_version; /* policyset.h: the policies the verdict rests on */
	bool pass;
	size_t n_reasons;
	const struct dg_reason *reasons;
	uint64_t entries, new_entries;
	const struct dg_quote_clock *clock; /* NULL if the quote was not trusted */
	const uint8_t *quote_digest;        /* SHA-256 of the attest bytes, or NULL */
};

/* One release, renewal, refusal, revocation or expiry of a leased secret. */
struct dg_audit_lease {
	const char *event; /* "secret-released", "lease-renewed", "release-refused",
	                    * "lease-revoked", "lease-expired" */
	const char *agent_id;
	const char *scope;  /* container id, "" for the node's own secrets */
	const char *secret; /* the name, never the value */
	const char *reason; /* why (refusals, revocations), or NULL */
	uint32_t lease_ms;  /* granted lease, 0 if none */
	const uint8_t *quote_digest; /* SHA-256 of the quote it rests on, or NULL */
};

/* path "-" writes to stdout. */
int dg_audit_open(const char *path, struct dg_audit **out);
void dg_audit_close(struct dg_audit *a);
int dg_audit_verdict(struct dg_audit *a, const struct dg_audit_verdict *v);
/* event: "enroll-challenge", "enrolled", "enroll-refused", "attest-refused" (a round
 * begun before a restart), "verdict-withheld" (state not stored); detail may be NULL. */
int dg_audit_lease(struct dg_audit *a, const struct dg_audit_lease *l);
/* Group commit: while deferred, records are written but synced only by
 * dg_audit_sync (which a caller must see succeed before acknowledging them). */
void dg_audit_defer_sync(struct dg_audit *a, bool defer);
int dg_audit_sync(struct dg_audit *a);
int dg_audit_event(struct dg_audit *a, const char *event, const char *agent_id,
                   const char *detail);

#endif
