#include "lease.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driftgate/err.h"

struct dg_lease *
dg_leases_find(struct dg_leases *l, const struct dg_lease_ref *ref)
{
	for (size_t i = 0; l != NULL && i < l->n; i++)
		if (strcmp(l->items[i].ref.scope, ref->scope) == 0 &&
		    strcmp(l->items[i].ref.secret, ref->secret) == 0)
			return &l->items[i];
	return NULL;
}

int
dg_leases_grant(struct dg_leases **l, const struct dg_lease_ref *ref, uint64_t expiry_ms,
                const uint8_t quote_digest[32], bool *renewed)
{
	struct dg_lease *lease = dg_leases_find(*l, ref);

	*renewed = lease != NULL;
	if (lease == NULL) {
		if (*l == NULL && (*l = calloc(1, sizeof **l)) == NULL)
			return DG_ERR_NOMEM;
		if ((*l)->n == DG_WIRE_MAX_LEASES)
			return DG_ERR_TOOBIG;
		lease = &(*l)->items[(*l)->n++];
		lease->ref = *ref;
	}
	lease->expiry_ms = expiry_ms;
	memcpy(lease->quote_digest, quote_digest, sizeof lease->quote_digest);
	return DG_OK;
}

void
dg_leases_remove(struct dg_leases *l, size_t i)
{
	if (l == NULL || i >= l->n)
		return;
	l->items[i] = l->items[--l->n];
	memset(&l->items[l->n], 0, sizeof l->items[l->n]);
}

void
dg_leases_free(struct dg_leases *l)
{
	free(l);
}
