#include "mlog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "driftgate/err.h"
#include "driftgate/log.h"

#define MLOG_MAX_BYTES (1024u * 1024 * 1024)

struct dg_mlog {
	char *path;
	int fd;
	uint8_t *buf; /* the whole log, mirrored in memory */
	size_t len, cap;
	size_t *offsets; /* offsets[i] = start of entry i; offsets[count] = len */
	uint64_t count;
	size_t offsets_cap;
};

static int
mlog_reserve(struct dg_mlog *l, size_t extra_bytes)
{
	if (extra_bytes > MLOG_MAX_BYTES - l->len)
		return DG_ERR_TOOBIG;
	if (l->len + extra_bytes > l->cap) {
		size_t cap = l->cap ? l->cap : 64 * 1024;
		while (cap < l->len + extra_bytes)
			cap *= 2;
		uint8_t *b = realloc(l->buf, cap);
		if (b == NULL)
			return DG_ERR_NOMEM;
		l->buf = b;
		l->cap = cap;
	}
	if (l->count + 2 > l->offsets_cap) {
		size_t cap = l->offsets_cap ? l->offsets_cap * 2 : 1024;
		size_t *o = realloc(l->offsets, cap * sizeof *o);
		if (o == NULL)
			return DG_ERR_NOMEM;
		l->offsets = o;
		l->offsets_cap = cap;
	}
	return DG_OK;
}

static int
mlog_read_all(struct dg_mlog *l)
{
	struct stat st;
	if (fstat(l->fd, &st) != 0)
		return DG_ERR_IO;
	if ((uint64_t)st.st_size > MLOG_MAX_BYTES)
		return DG_ERR_TOOBIG;
	int rv = mlog_reserve(l, (size_t)st.st_size);
	if (rv != DG_OK)
		return rv;
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t n = pread(l->fd, l->buf + got, (size_t)st.st_size - got, (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return DG_ERR_IO;
		got += (size_t)n;
	}
	l->len = got;
	return DG_OK;
}

/* Index the entries; a torn tail (never extended: it was not yet durable)
 * is cut off, anything else malformed is refused. */
static int
mlog_index(struct dg_mlog *l)
{
	struct dg_log_reader r;
	struct dg_log_entry e;
	int rv = dg_log_reader_init(&r, l->buf, l->len, DG_LOG_FORMAT_BINARY);
	if (rv != DG_OK)
		return rv;
	l->count = 0;
	for (;;) {
		size_t start = r.off;
		rv = dg_log_next(&r, &e);
		if (rv == DG_ERR_NOTFOUND) {
			rv = DG_OK;
			break;
		}
		if (rv == DG_ERR_TRUNCATED) {
			fprintf(stderr, "driftgate-agent: %s: dropping a torn entry at byte %zu "
			        "(written, never extended)\n", l->path, start);
			if (ftruncate(l->fd, (off_t)start) != 0 || fdatasync(l->fd) != 0) {
				rv = DG_ERR_IO;
				break;
			}
			l->len = start;
			rv = DG_OK;
			break;
		}
		if (rv != DG_OK) {
			fprintf(stderr, "driftgate-agent: %s: entry %llu at byte %zu: %s\n", l->path,
			        (unsigned long long)r.index, start, dg_strerror(rv));
			break;
		}
		if ((rv = mlog_reserve(l, 0)) != DG_OK)
			break;
		l->offsets[l->count++] = start;
	}
	if (rv == DG_OK)
		l->offsets[l->count] = l->len;
	dg_log_reader_fini(&r);
	return rv;
}

int
dg_mlog_open(const char *path, struct dg_mlog **out)
{
	struct dg_mlog *l = calloc(1, sizeof *l);
	int rv = DG_ERR_NOMEM;
	if (l == NULL)
		return DG_ERR_NOMEM;
	l->fd = -1;
	if ((l->path = strdup(path)) == NULL)
		goto out;
	l->fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (l->fd < 0) {
		fprintf(stderr, "driftgate-agent: %s: %s\n", path, strerror(errno));
		rv = DG_ERR_IO;
		goto out;
	}
	if ((rv = mlog_read_all(l)) != DG_OK || (rv = mlog_reserve(l, 0)) != DG_OK)
		goto out;
	rv = mlog_index(l);
out:
	if (rv != DG_OK) {
		dg_mlog_close(l);
		return rv;
	}
	*out = l;
	return DG_OK;
}

void
dg_mlog_close(struct dg_mlog *l)
{
	if (l == NULL)
		return;
	if (l->fd >= 0)
		close(l->fd);
	free(l->buf);
	free(l->offsets);
	free(l->path);
	free(l);
}

uint64_t
dg_mlog_count(const struct dg_mlog *l)
{
	return l->count;
}

int
dg_mlog_append(struct dg_mlog *l, const uint8_t *entry, size_t len)
{
	int rv = mlog_reserve(l, len);
	if (rv != DG_OK)
		return rv;
	size_t done = 0;
	while (done < len) {
		ssize_t n = write(l->fd, entry + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* Leave no half entry behind that a later append would follow. */
			if (ftruncate(l->fd, (off_t)l->len) != 0)
				fprintf(stderr, "driftgate-agent: %s: cannot undo a partial write\n", l->path);
			return DG_ERR_IO;
		}
		done += (size_t)n;
	}
	if (fdatasync(l->fd) != 0)
		return DG_ERR_IO;
	memcpy(l->buf + l->len, entry, len);
	l->offsets[l->count] = l->len;
	l->len += len;
	l->count++;
	l->offsets[l->count] = l->len;
	return DG_OK;
}

int
dg_mlog_since(const struct dg_mlog *l, uint64_t from, const uint8_t **data, size_t *len)
{
	if (from > l->count)
		return DG_ERR_INVAL;
	*data = l->buf + l->offsets[from];
	*len = l->len - l->offsets[from];
	return DG_OK;
}

int
dg_mlog_entry_digest(const struct dg_mlog *l, uint64_t i, uint8_t out[32])
{
	struct dg_log_reader r;
	struct dg_log_entry e;
	int rv;
	if (i >= l->count)
		return DG_ERR_INVAL;
	rv = dg_log_reader_init(&r, l->buf + l->offsets[i], l->offsets[i + 1] - l->offsets[i],
	                        DG_LOG_FORMAT_BINARY);
	if (rv != DG_OK)
		return rv;
	if ((rv = dg_log_next(&r, &e)) == DG_OK) {
		if (e.violation)
			memset(out, 0xff, 32);
		else if (EVP_Digest(e.template_data, e.template_data_len, out, NULL, EVP_sha256(),
		                    NULL) != 1)
			rv = DG_ERR_CRYPTO;
	}
	dg_log_reader_fini(&r);
	return rv;
}

int
dg_mlog_reconcile(const struct dg_mlog *l, const uint8_t tpm_value[32], uint64_t *in_pcr)
{
	static const uint8_t zero[32];
	uint8_t value[32] = {0}, before_last[32] = {0};
	struct dg_log_reader r;
	struct dg_log_entry e;
	struct dg_replay replay;
	int rv;

	if (l->count > 0 && CRYPTO_memcmp(tpm_value, zero, 32) == 0)
		return DG_ERR_STATE;
	/* The same replay the verifier runs; every entry is for the agent's PCR. */
	dg_replay_init(&replay);
	if ((rv = dg_log_reader_init(&r, l->buf, l->len, DG_LOG_FORMAT_BINARY)) != DG_OK)
		goto out_replay;
	while ((rv = dg_log_next(&r, &e)) == DG_OK) {
		memcpy(before_last, value, 32);
		if ((rv = dg_replay_extend(&replay, &e)) != DG_OK)
			break;
		memcpy(value, replay.sha256[e.pcr], 32);
	}
	dg_log_reader_fini(&r);
	if (rv != DG_ERR_NOTFOUND)
		goto out_replay;
	rv = DG_OK;
	if (CRYPTO_memcmp(value, tpm_value, 32) == 0)
		*in_pcr = l->count;
	else if (l->count > 0 && CRYPTO_memcmp(before_last, tpm_value, 32) == 0)
		*in_pcr = l->count - 1;
	else
		rv = DG_ERR_PCR_DIGEST;
out_replay:
	dg_replay_fini(&replay);
	return rv;
}

int
dg_mlog_rotate(struct dg_mlog *l)
{
	char aside[4096];
	int rv = DG_ERR_IO;
	for (unsigned n = 1; n < 100000; n++) {
		if (snprintf(aside, sizeof aside, "%s.boot-%u", l->path, n) >= (int)sizeof aside)
			return DG_ERR_TOOBIG;
		if (access(aside, F_OK) != 0)
			break;
	}
	if (rename(l->path, aside) != 0)
		return DG_ERR_IO;
	close(l->fd);
	l->fd = open(l->path, O_RDWR | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (l->fd < 0)
		return rv;
	l->len = 0;
	l->count = 0;
	l->offsets[0] = 0;
	return DG_OK;
}
