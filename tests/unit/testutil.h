/* Shared helpers for the Check suites. */
#ifndef DG_TESTUTIL_H
#define DG_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

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

/* Start swtpm (TPM 2.0, already started up) with its state in dir, serving on
 * 127.0.0.1:*port (control on *port + 1, a free pair picked at random). The process
 * dies with the caller; stop it with tu_swtpm_stop. Returns 0 or -1. */
int tu_swtpm_start(const char *dir, int *port, pid_t *pid);
/* Stop a swtpm started by tu_swtpm_start and reap it. */
void tu_swtpm_stop(pid_t pid);

/* Run a tpm2-tools command line in dir (TCTI from TPM2TOOLS_TCTI), its output appended
 * to dir/tpm2-tools.log, then flush transient objects: without a resource manager
 * tpm2-tools leave them loaded and swtpm runs out of slots. Returns the command's status. */
int tu_tpm2(const char *dir, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
