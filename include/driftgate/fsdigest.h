/* SHA-256 of files: shared by the agent (measuring) and the baseline generator. */
#ifndef DRIFTGATE_FSDIGEST_H
#define DRIFTGATE_FSDIGEST_H

#include <stddef.h>
#include <stdint.h>

/* SHA-256 of everything readable from fd (read from its current offset). */
int dg_fsdigest_fd(int fd, uint8_t out[32]);
/* Open path read-only (O_NOFOLLOW unless follow) and hash it. */
int dg_fsdigest_path(const char *path, uint8_t out[32]);

#endif
