/* Reading a whole small file the careful way: shared by every loader of
 * policies, bundles and saved state. */
#ifndef DRIFTGATE_FILE_H
#define DRIFTGATE_FILE_H

#include <stddef.h>

/*
 * Read path (relative to dir_fd, or AT_FDCWD) into a malloc'd, NUL-terminated
 * buffer; *len excludes the NUL. Symlinks are not followed and only regular
 * files are read. DG_ERR_IO (cannot open, not a regular file, short read),
 * DG_ERR_TOOBIG (larger than max), DG_ERR_NOMEM.
 */
int dg_file_read(int dir_fd, const char *path, size_t max, char **out, size_t *len);

#endif
