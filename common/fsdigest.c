/* SHA-256 of files, read in large chunks straight into the digest. */
#include "driftgate/fsdigest.h"

#include "driftgate/err.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* Large reads keep syscall overhead well below the hashing cost. */
#define FSDIGEST_CHUNK (256 * 1024)

int
dg_fsdigest_fd(int fd, uint8_t out[32])
{
	EVP_MD *sha256 = NULL;
	EVP_MD_CTX *ctx = NULL;
	uint8_t *chunk = NULL;
	ssize_t n;
	int rc = DG_ERR_NOMEM;

	if ((chunk = malloc(FSDIGEST_CHUNK)) == NULL || (ctx = EVP_MD_CTX_new()) == NULL)
		goto out;
	rc = DG_ERR_CRYPTO;
	if ((sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL ||
	    EVP_DigestInit_ex2(ctx, sha256, NULL) != 1)
		goto out;
	for (;;) {
		n = read(fd, chunk, FSDIGEST_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		rc = DG_ERR_IO;
		if (n < 0)
			goto out;
		if (n == 0)
			break;
		rc = DG_ERR_CRYPTO;
		if (EVP_DigestUpdate(ctx, chunk, (size_t)n) != 1)
			goto out;
	}
	rc = DG_ERR_CRYPTO;
	if (EVP_DigestFinal_ex(ctx, out, NULL) != 1)
		goto out;
	rc = DG_OK;
out:
	EVP_MD_CTX_free(ctx);
	EVP_MD_free(sha256);
	free(chunk);
	return rc;
}

int
dg_fsdigest_path(const char *path, uint8_t out[32])
{
	struct stat st;
	int fd, rc = DG_ERR_IO;

	/* O_NONBLOCK so a FIFO planted at path cannot stall us before the
	 * regular-file check; it changes nothing for regular files. */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		goto out;
	if (fstat(fd, &st) != 0)
		goto out;
	if (!S_ISREG(st.st_mode)) {
		errno = EINVAL;
		goto out;
	}
	rc = dg_fsdigest_fd(fd, out);
out:
	if (fd >= 0)
		close(fd);
	return rc;
}
