#include "secrets.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "driftgate/err.h"
#include "driftgate/text.h"

/* A secret's name is a file name in the secrets directory: no hidden files. */
static int
valid_name(const char *name)
{
	return name[0] != '.' && dg_text_name_valid(name, strlen(name), 64);
}

int
dg_secret_read(const char *dir, const char *name, uint8_t out[DG_SECRET_MAX], size_t *len)
{
	char path[4200];
	struct stat st;
	int rv = DG_ERR_IO, fd;
	if (!valid_name(name))
		return DG_ERR_INVAL;
	if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
		return DG_ERR_TOOBIG;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return errno == ENOENT ? DG_ERR_NOTFOUND : errno == ELOOP ? DG_ERR_PERM : DG_ERR_IO;
	if (fstat(fd, &st) != 0)
		goto out;
	if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0 || st.st_uid != geteuid()) {
		rv = DG_ERR_PERM;
		goto out;
	}
	if (st.st_size > DG_SECRET_MAX) {
		rv = DG_ERR_TOOBIG;
		goto out;
	}
	size_t got = 0;
	for (;;) {
		ssize_t n = read(fd, out + got, DG_SECRET_MAX - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto out;
		if (n == 0)
			break;
		got += (size_t)n;
		if (got == DG_SECRET_MAX) {
			rv = DG_ERR_TOOBIG; /* grew since fstat */
			goto out;
		}
	}
	*len = got;
	rv = DG_OK;
out:
	if (rv != DG_OK)
		OPENSSL_cleanse(out, DG_SECRET_MAX);
	close(fd);
	return rv;
}
