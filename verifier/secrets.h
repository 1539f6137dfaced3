/*
 * Workload secrets at rest on the verifier: one file per secret, named after
 * it, in a directory only the verifier's user can read. A secret file that a
 * group or other users could read, a symlink, or a file owned by someone else
 * is refused: a secret that may already have leaked must not be handed out as
 * if it had not.
 */
#ifndef DRIFTGATE_VERIFIER_SECRETS_H
#define DRIFTGATE_VERIFIER_SECRETS_H

#include <stddef.h>
#include <stdint.h>

#define DG_SECRET_MAX 4096

/* Read dir/name into out. The caller cleanses out after use. Errors:
 * DG_ERR_NOTFOUND, DG_ERR_PERM, DG_ERR_TOOBIG, DG_ERR_INVAL (bad name), DG_ERR_IO. */
int dg_secret_read(const char *dir, const char *name, uint8_t out[DG_SECRET_MAX], size_t *len);

#endif
