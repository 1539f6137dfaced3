/* Shared helpers for the Check suites. */
#ifndef DG_TESTUTIL_H
#define DG_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Decode a hex string into out (cap bytes); returns the byte count or -1. */
int tu_hex(const char *hex, uint8_t *out, size_t cap);
/* Read a whole file into a malloc'd buffer; NULL on error. */
uint8_t *tu_read_file(const char *path, size_t *len);
/* Run a shell command; returns its exit status (or -1). */
int tu_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A fresh temporary directory (static buffer-free: caller owns the string). */
char *tu_tmpdir(void);
/* Path of a program in the build tree, e.g. tu_build_path("agent/driftgate-agent"). */
const char *tu_build_path(const char *rel, char *buf, size_t cap);

#endif
