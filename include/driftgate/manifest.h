/*
 * A rootfs manifest: every regular file and symlink under a container's root,
 * as sorted lines "<sha256 hex> <mode octal> <escaped path>\n" (path relative
 * to the root, starting with '/'; a symlink's digest is the SHA-256 of its
 * target string, its mode includes S_IFLNK; other file types are not listed).
 * Paths are escaped as in baselines, except that every space is escaped too,
 * so a line is exactly three tokens: "\\" for a backslash, "\xHH" (lowercase)
 * for each byte up to 0x20, 0x7f and above, nothing else. Lines are sorted by
 * the decoded paths' bytes; the parser accepts only this form, so one tree has
 * one text. Its SHA-256 is what the agent logs; the text itself is kept by the
 * agent and sent to the verifier so that it can name the exact files added,
 * removed or changed.
 */
#ifndef DRIFTGATE_MANIFEST_H
#define DRIFTGATE_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "driftgate/verdict.h"

#define DG_MANIFEST_MAX_TEXT (64u * 1024 * 1024)

struct dg_manifest;

/* Walk root (no symlink followed, not even root itself; entries on other
 * filesystems skipped) and build the manifest text (malloc'd, NUL-terminated,
 * *len excludes the NUL). This is the one function with I/O. DG_ERR_IO if
 * something cannot be read or changes during the walk, DG_ERR_TOOBIG past
 * DG_LOG_MAX_PATH, 256 directory levels or DG_MANIFEST_MAX_TEXT. */
int dg_manifest_build(const char *root, char **text, size_t *len);

/* Strict parse: sorted, unique paths, valid hex and modes, canonical escapes,
 * no empty, "." or ".." path component. DG_ERR_FORMAT or DG_ERR_TOOBIG and
 * *out untouched on bad input. */
int dg_manifest_parse(const char *text, size_t len, struct dg_manifest **out);
void dg_manifest_free(struct dg_manifest *m);
size_t dg_manifest_count(const struct dg_manifest *m);

/* Is (path, digest) a regular file of the manifest? path may be in the log's
 * form, where every space shows as '_'. */
bool dg_manifest_has(const struct dg_manifest *m, const char *path, const uint8_t digest[32]);
/* The first (in path order) regular file with this digest, or NULL. */
const char *dg_manifest_path_of(const struct dg_manifest *m, const uint8_t digest[32]);

/* File-level difference: reasons "file-added", "file-removed", "file-changed"
 * (detail: the path, and for changes old -> new digest prefix or mode), in
 * path order; at most max are written and *n receives how many. */
int dg_manifest_diff(const struct dg_manifest *approved, const struct dg_manifest *seen,
                     struct dg_reason *reasons, size_t max, size_t *n);

#endif
