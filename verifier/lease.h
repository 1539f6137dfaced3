/*
 * The secrets an agent holds on lease, as the verifier granted them: which
 * secret for which scope, until when, and the quote the grant rests on.
 * In memory; pure bookkeeping (no I/O), audited by the caller.
 */
#ifndef DRIFTGATE_VERIFIER_LEASE_H
#define DRIFTGATE_VERIFIER_LEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "driftgate/wire.h"

struct dg_lease {
	struct dg_lease_ref ref;
	uint64_t expiry_ms; /* monotonic */
	uint8_t quote_digest[32];
};

struct dg_leases {
	size_t n;
	struct dg_lease items[DG_WIRE_MAX_LEASES];
};

/* The lease for ref, or NULL. l may be NULL (no leases yet). */
struct dg_lease *dg_leases_find(struct dg_leases *l, const struct dg_lease_ref *ref);
/* Add ref (allocating *l on first use) or extend it; *renewed says which.
 * DG_ERR_TOOBIG past DG_WIRE_MAX_LEASES. */
int dg_leases_grant(struct dg_leases **l, const struct dg_lease_ref *ref, uint64_t expiry_ms,
                    const uint8_t quote_digest[32], bool *renewed);
/* Remove item i (order is not kept). */
void dg_leases_remove(struct dg_leases *l, size_t i);
void dg_leases_free(struct dg_leases *l);

#endif
