#include "containers.h"

#include <stdlib.h>
#include <string.h>

#include "driftgate/err.h"

/* A small array: containers per node are few, lookups are by exec event. */
struct dg_agent_containers {
	struct dg_agent_container *items[DG_AGENT_MAX_CONTAINERS];
	size_t count;
};

int
dg_agent_containers_new(struct dg_agent_containers **out)
{
	*out = calloc(1, sizeof **out);
	return *out ? DG_OK : DG_ERR_NOMEM;
}

static void
container_free(struct dg_agent_container *c)
{
	if (c == NULL)
		return;
	free(c->manifest_text);
	dg_manifest_free(c->manifest);
	free(c);
}

void
dg_agent_containers_free(struct dg_agent_containers *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->count; i++)
		container_free(t->items[i]);
	free(t);
}

static size_t
index_of(const struct dg_agent_containers *t, const char *id)
{
	for (size_t i = 0; i < t->count; i++)
		if (strcmp(t->items[i]->id, id) == 0)
			return i;
	return t->count;
}

int
dg_agent_containers_add(struct dg_agent_containers *t, struct dg_agent_container *c)
{
	if (index_of(t, c->id) != t->count)
		return DG_ERR_EXISTS;
	if (t->count == DG_AGENT_MAX_CONTAINERS)
		return DG_ERR_TOOBIG;
	struct dg_agent_container *copy = malloc(sizeof *copy);
	if (copy == NULL)
		return DG_ERR_NOMEM;
	*copy = *c;
	c->manifest_text = NULL;
	c->manifest = NULL;
	t->items[t->count++] = copy;
	return DG_OK;
}

void
dg_agent_containers_remove(struct dg_agent_containers *t, const char *id)
{
	size_t i = index_of(t, id);
	if (i == t->count)
		return;
	container_free(t->items[i]);
	t->items[i] = t->items[--t->count];
}

struct dg_agent_container *
dg_agent_containers_by_mntns(struct dg_agent_containers *t, uint64_t mntns)
{
	for (size_t i = 0; i < t->count; i++)
		if (t->items[i]->mntns == mntns)
			return t->items[i];
	return NULL;
}

size_t
dg_agent_containers_count(const struct dg_agent_containers *t)
{
	return t->count;
}

struct dg_agent_container *
dg_agent_containers_at(struct dg_agent_containers *t, size_t i)
{
	return i < t->count ? t->items[i] : NULL;
}
