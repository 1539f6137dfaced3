/*
 * libFuzzer target for the binary (binary_runtime_measurements) log reader:
 * every entry it hands out must replay, and when it can be printed as an
 * ascii line, the ascii reader must rebuild the very same template data.
 */
#include <stdlib.h>
#include <string.h>

#include "driftgate/err.h"
#include "driftgate/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Longest ascii line for the bounds in log.h, with room for the NUL. */
#define LINE_CAP (3 + 40 + 1 + 16 + 1 + 7 + 128 + 1 + DG_LOG_MAX_PATH + 1 + \
                  2 * DG_LOG_MAX_EXTRA + 2)

/* Parse one ascii line and compare it with the binary entry it came from. */
static void
check_ascii(const struct dg_log_entry *e, const char *line, size_t len)
{
	struct dg_log_reader r;
	struct dg_log_entry a;

	if (dg_log_reader_init(&r, (const uint8_t *)line, len, DG_LOG_FORMAT_ASCII) != DG_OK)
		abort();
	if (dg_log_next(&r, &a) != DG_OK || a.pcr != e->pcr ||
	    a.template_id != e->template_id || a.violation != e->violation ||
	    memcmp(a.template_hash, e->template_hash, DG_SHA1_LEN) != 0 ||
	    a.template_data_len != e->template_data_len ||
	    memcmp(a.template_data, e->template_data, e->template_data_len) != 0 ||
	    dg_log_next(&r, &a) != DG_ERR_NOTFOUND)
		abort();
	dg_log_reader_fini(&r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dg_log_reader r;
	struct dg_log_entry e;
	struct dg_replay s;
	char *line;
	size_t len;
	int rc;

	(void)dg_log_detect_format(data, size);
	if ((line = malloc(LINE_CAP)) == NULL)
		return 0;
	if (dg_log_reader_init(&r, data, size, DG_LOG_FORMAT_BINARY) != DG_OK)
		abort();
	dg_replay_init(&s);
	while ((rc = dg_log_next(&r, &e)) == DG_OK) {
		if (e.template_data < data || e.template_data + e.template_data_len > data + size ||
		    e.path[e.path_len] != '\0' || strlen(e.path) != e.path_len)
			abort();
		if (dg_replay_extend(&s, &e) != DG_OK)
			abort();
		rc = dg_log_format_ascii(&e, line, LINE_CAP, &len);
		if (rc == DG_OK)
			check_ascii(&e, line, len);
		else if (rc != DG_ERR_FORMAT) /* only a path with a space or newline */
			abort();
	}
	if (rc != DG_ERR_NOTFOUND && rc != DG_ERR_TRUNCATED && rc != DG_ERR_FORMAT &&
	    rc != DG_ERR_TOOBIG && rc != DG_ERR_UNSUPPORTED)
		abort();
	if (s.entries != r.index)
		abort();
	dg_replay_fini(&s);
	dg_log_reader_fini(&r);
	free(line);
	return 0;
}
