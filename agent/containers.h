/*
 * The containers the agent has measured at creation: how an exec event is
 * attributed (by the mount namespace of the exec'ing process) and checked
 * against its rootfs as seen from the host, and the
 * rootfs manifest the verifier may ask for (and enforcement checks against).
 */
#ifndef DRIFTGATE_AGENT_CONTAINERS_H
#define DRIFTGATE_AGENT_CONTAINERS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "driftgate/manifest.h"
#include "driftgate/workload.h"

#define DG_AGENT_MAX_CONTAINERS 1024

struct dg_agent_container {
	char id[DG_CONTAINER_ID_MAX + 1];
	uint64_t mntns;          /* inode of /proc/<pid>/ns/mnt at creation */
	char rootfs[PATH_MAX];   /* realpath of the rootfs, no trailing '/' */
	size_t rootfs_len;
	char *manifest_text;     /* as logged (its SHA-256 is the rootfs entry) */
	size_t manifest_len;
	struct dg_manifest *manifest;
	uint64_t rootfs_entry;   /* log index of its dg:rootfs entry; UINT64_MAX until logged */
};

struct dg_agent_containers;

int dg_agent_containers_new(struct dg_agent_containers **out);
void dg_agent_containers_free(struct dg_agent_containers *t);
/* Takes ownership of c->manifest_text and c->manifest on success. A
 * registration with the same mount namespace is dropped first: namespace
 * inodes are reused once the old container is gone. DG_ERR_EXISTS for a live
 * id, DG_ERR_TOOBIG when full. */
int dg_agent_containers_add(struct dg_agent_containers *t, struct dg_agent_container *c);
void dg_agent_containers_remove(struct dg_agent_containers *t, const char *id);
struct dg_agent_container *dg_agent_containers_by_mntns(struct dg_agent_containers *t,
                                                        uint64_t mntns);
struct dg_agent_container *dg_agent_containers_by_id(struct dg_agent_containers *t,
                                                     const char *id);
size_t dg_agent_containers_count(const struct dg_agent_containers *t);
struct dg_agent_container *dg_agent_containers_at(struct dg_agent_containers *t, size_t i);

/*
 * Persistence in dir (the agent's state directory), so that a restarted agent
 * still attributes and appraises the execs of containers that kept running:
 * dir/containers/<id>.manifest and dir/containers/<id>.info, written to a
 * temporary name, synced and renamed.
 */
int dg_agent_containers_save(const char *dir, const struct dg_agent_container *c);
void dg_agent_containers_forget(const char *dir, const char *id);
/* Load every saved container whose mount namespace still exists (a process
 * of it is alive: checked through /proc); forget the others. */
int dg_agent_containers_load(const char *dir, struct dg_agent_containers *t);

#endif
