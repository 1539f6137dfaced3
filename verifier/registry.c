#include "registry.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "driftgate/err.h"

/* Open addressing on the agent id; records never move once created. */
struct dg_registry {
	struct dg_agent_rec **slots;
	size_t cap, count;
};

static uint64_t
hash_id(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

int
dg_registry_new(struct dg_registry **out)
{
	struct dg_registry *r = calloc(1, sizeof *r);
	if (r == NULL)
		return DG_ERR_NOMEM;
	r->cap = 256;
	/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers */
	if ((r->slots = calloc(r->cap, sizeof *r->slots)) == NULL) {
		free(r);
		return DG_ERR_NOMEM;
	}
	*out = r;
	return DG_OK;
}

void
dg_registry_free(struct dg_registry *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->cap; i++) {
		struct dg_agent_rec *a = r->slots[i];
		if (a == NULL)
			continue;
		EVP_PKEY_free(a->ak);
		dg_replay_fini(&a->replay);
		dg_containers_free(a->containers);
		dg_leases_free(a->leases);
		OPENSSL_cleanse(a, sizeof *a);
		free(a);
	}
	free(r->slots);
	free(r);
}

static size_t
slot_of(const struct dg_registry *r, const char *id)
{
	size_t i = (size_t)hash_id(id) & (r->cap - 1);
	while (r->slots[i] != NULL && strcmp(r->slots[i]->id, id) != 0)
		i = (i + 1) & (r->cap - 1);
	return i;
}

struct dg_agent_rec *
dg_registry_find(struct dg_registry *r, const char *id)
{
	return r->slots[slot_of(r, id)];
}

static int
grow(struct dg_registry *r)
{
	size_t old_cap = r->cap;
	struct dg_agent_rec **old = r->slots;
	r->cap *= 2;
	/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers */
	if ((r->slots = calloc(r->cap, sizeof *r->slots)) == NULL) {
		r->slots = old;
		r->cap = old_cap;
		return DG_ERR_NOMEM;
	}
	for (size_t i = 0; i < old_cap; i++)
		if (old[i] != NULL)
			r->slots[slot_of(r, old[i]->id)] = old[i];
	free(old);
	return DG_OK;
}

int
dg_registry_add(struct dg_registry *r, const char *id, struct dg_agent_rec **out)
{
	int rv;
	if (strlen(id) > DG_WIRE_MAX_AGENT_ID)
		return DG_ERR_INVAL;
	if (dg_registry_find(r, id) != NULL)
		return DG_ERR_EXISTS;
	if (r->count >= DG_REGISTRY_MAX_AGENTS)
		return DG_ERR_TOOBIG;
	if (2 * (r->count + 1) > r->cap && (rv = grow(r)) != DG_OK)
		return rv;
	struct dg_agent_rec *a = calloc(1, sizeof *a);
	if (a == NULL)
		return DG_ERR_NOMEM;
	if ((rv = dg_containers_new(&a->containers)) != DG_OK) {
		free(a);
		return rv;
	}
	memcpy(a->id, id, strlen(id) + 1);
	dg_replay_init(&a->replay);
	r->slots[slot_of(r, id)] = a;
	r->count++;
	*out = a;
	return DG_OK;
}

size_t
dg_registry_count(const struct dg_registry *r)
{
	return r->count;
}

void
dg_registry_foreach(struct dg_registry *r, void (*fn)(struct dg_agent_rec *a, void *arg),
                    void *arg)
{
	for (size_t i = 0; i < r->cap; i++)
		if (r->slots[i] != NULL)
			fn(r->slots[i], arg);
}

enum dg_registry_state
dg_registry_state(const struct dg_agent_rec *a)
{
	if (!a->activated)
		return DG_REGISTRY_ENROLLING;
	if (a->n_drift > 0)
		return DG_REGISTRY_FAIL;
	if (a->heartbeat_missed)
		return DG_REGISTRY_SILENT;
	return a->have_clock ? DG_REGISTRY_PASS : DG_REGISTRY_ENROLLED;
}

const char *
dg_registry_state_name(enum dg_registry_state s)
{
	static const char *const names[DG_REGISTRY_STATES] = {
		[DG_REGISTRY_ENROLLING] = "enrolling",
		[DG_REGISTRY_ENROLLED] = "enrolled",
		[DG_REGISTRY_PASS] = "pass",
		[DG_REGISTRY_FAIL] = "fail",
		[DG_REGISTRY_SILENT] = "silent",
	};
	return (unsigned)s < DG_REGISTRY_STATES ? names[s] : "unknown";
}
