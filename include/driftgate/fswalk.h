/* Walking a tree of regular files in a stable (sorted) order, without
 * following symlinks: shared by the agent's measurements and the baseline
 * generator, so both see the same files in the same order. */
#ifndef DRIFTGATE_FSWALK_H
#define DRIFTGATE_FSWALK_H

/* Directory levels walked below the root. Each level costs a PATH_MAX frame of
 * stack, and PATH_MAX alone would allow 2048 levels: 8 MiB, a whole stack. */
#define DG_FSWALK_MAX_DEPTH 256

/* Called for each regular file; a non-DG_OK return stops the walk. */
typedef int (*dg_fswalk_fn)(const char *path, void *arg);

/* root may be a regular file (visited once) or a directory. Other file types
 * are skipped. DG_ERR_IO if root cannot be read, DG_ERR_TOOBIG for a path
 * longer than PATH_MAX or a directory more than DG_FSWALK_MAX_DEPTH levels
 * below root. */
int dg_fswalk(const char *root, dg_fswalk_fn fn, void *arg);

#endif
