/*
 * libFuzzer target for the ascii (ascii_runtime_measurements) log reader:
 * every entry must print back as the line it came from (up to hex case),
 * and encode with dg_log_encode into a binary entry whose template data the
 * binary reader finds identical.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "driftgate/err.h"
#include "driftgate/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One binary entry: head, template name, template data. */
#define BIN_CAP (4 + DG_SHA1_LEN + 4 + 16 + 4 + DG_LOG_MAX_TEMPLATE_DATA)

static void
check_binary(const struct dg_log_entry *e, uint8_t *buf)
{
	struct dg_log_reader r;
	struct dg_log_entry b;
	size_t len;

	if (dg_log_encode(e->pcr, e->template_id, e->hash_alg, e->digest, e->digest_len, e->path,
	                  e->extra, e->extra_len, buf, BIN_CAP, &len) != DG_OK)
		abort();
	if (dg_log_reader_init(&r, buf, len, DG_LOG_FORMAT_BINARY) != DG_OK)
		abort();
	if (dg_log_next(&r, &b) != DG_OK || b.pcr != e->pcr || b.template_id != e->template_id ||
	    b.template_data_len != e->template_data_len ||
	    memcmp(b.template_data, e->template_data, e->template_data_len) != 0 ||
	    dg_log_next(&r, &b) != DG_ERR_NOTFOUND)
		abort();
	/* The logged hash is the real one unless the line was a violation. */
	if (!e->violation && memcmp(b.template_hash, e->template_hash, DG_SHA1_LEN) != 0)
		abort();
	dg_log_reader_fini(&r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dg_log_reader r;
	struct dg_log_entry e;
	uint8_t *bin;
	char *line;
	size_t off = 0, len;
	int rc;

	bin = malloc(BIN_CAP);
	line = malloc(BIN_CAP * 2 + 256);
	if (bin == NULL || line == NULL)
		goto out;
	if (dg_log_reader_init(&r, data, size, DG_LOG_FORMAT_ASCII) != DG_OK)
		abort();
	while ((rc = dg_log_next(&r, &e)) == DG_OK) {
		if (e.path[e.path_len] != '\0' || strlen(e.path) != e.path_len)
			abort();
		if (dg_log_format_ascii(&e, line, BIN_CAP * 2 + 256, &len) != DG_OK ||
		    len != r.off - off || strncasecmp(line, (const char *)data + off, len) != 0)
			abort();
		off = r.off;
		check_binary(&e, bin);
	}
	if (rc != DG_ERR_NOTFOUND && rc != DG_ERR_TRUNCATED && rc != DG_ERR_FORMAT &&
	    rc != DG_ERR_TOOBIG && rc != DG_ERR_UNSUPPORTED)
		abort();
	dg_log_reader_fini(&r);
out:
	free(bin);
	free(line);
	return 0;
}
