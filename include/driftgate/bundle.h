/* OCI bundles on disk: the config.json and the rootfs it names. Shared by the
 * agent (measuring at creation) and the baseline generator (approving). */
#ifndef DRIFTGATE_BUNDLE_H
#define DRIFTGATE_BUNDLE_H

#include <limits.h>
#include <stddef.h>

/* Read bundle/config.json (at most DG_CONTAINER_MAX_JSON bytes, no symlink),
 * NUL-terminated, malloc'd. */
int dg_bundle_read_config(const char *bundle, char **json, size_t *len);

/* The real path of root.path of config json, resolved against the bundle.
 * The canonical record leaves it out on purpose: it is a host detail. */
int dg_bundle_rootfs(const char *bundle, const char *json, char out[PATH_MAX]);

#endif
