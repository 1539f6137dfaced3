/* SHA-256 of files: shared by the agent (measuring) and the baseline generator. */
#ifndef DRIFTGATE_FSDIGEST_H
#define DRIFTGATE_FSDIGEST_H

#include <stddef.h>
#include <stdint.h>

/* SHA-256 of everything readable from fd (read from its current offset). */
int dg_fsdigest_fd(int fd, uint8_t out[32]);
/* Open path read-only (O_NOFOLLOW unless follow) and hash it. */
int dg_fsdigest_path(const char *path, uint8_t out[32]);

/* Called once per regular file, in walk order; a non-DG_OK return stops. */
typedef int (*dg_fsdigest_tree_fn)(const char *path, const uint8_t digest[32], void *arg);

/*
 * Hash every regular file under root (dg_fswalk: sorted, symlinks not followed;
 * each file opened as dg_fsdigest_path does) on `threads` threads, the calling
 * thread included (0 = number of online CPUs). fn is always called from the
 * calling thread, in the walk's order, so the output is deterministic; files
 * are walked, hashed and reported in a pipeline.
 *
 * The first failure in walk order stops everything and is returned: a file
 * that cannot be hashed (its dg_fsdigest_path error; its path is copied into
 * failed, which may be NULL, truncated to failed_cap), fn's return value, or
 * dg_fswalk's error (DG_ERR_IO for an unreadable root or directory,
 * DG_ERR_TOOBIG), reported after every file walked before it. failed is the
 * empty string unless a file could not be hashed. DG_ERR_NOMEM on allocation
 * failure.
 */
int dg_fsdigest_tree(const char *root, unsigned threads, dg_fsdigest_tree_fn fn, void *arg,
                     char *failed, size_t failed_cap);

#endif
