/*
 * libFuzzer target for container records. The same bytes go to both parsers:
 *  - dg_container_parse is strict, so a text it accepts must be exactly the
 *    text encode writes back;
 *  - dg_container_from_oci_json, on success, must give a record that parses
 *    back and encodes to the same bytes, and that differs from itself in
 *    nothing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "driftgate/container.h"
#include "driftgate/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* encode(c) must parse, and its parse must encode to the same bytes. */
static void
check_stable(const struct dg_container *c, const char *want, size_t want_len)
{
	struct dg_container *again = NULL;
	struct dg_reason reasons[4];
	char *text = NULL;
	size_t len = 0, n = 1;

	if (dg_container_encode(c, &text, &len) != DG_OK || len != want_len ||
	    memcmp(text, want, len) != 0 || text[len] != '\0')
		abort();
	free(text);
	if (dg_container_parse(want, want_len, &again) != DG_OK)
		abort();
	if (dg_container_encode(again, &text, &len) != DG_OK || len != want_len ||
	    memcmp(text, want, len) != 0)
		abort();
	if (dg_container_diff(c, again, reasons, 4, &n) != DG_OK || n != 0)
		abort();
	free(text);
	dg_container_free(again);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dg_container *c = NULL;
	char err[256] = "", *text = NULL;
	size_t len = 0;
	int rc;

	if (dg_container_parse((const char *)data, size, &c) == DG_OK) {
		check_stable(c, (const char *)data, size);
		dg_container_free(c);
		c = NULL;
	}
	rc = dg_container_from_oci_json((const char *)data, size, &c, err, sizeof err);
	if (rc == DG_OK) {
		if (dg_container_encode(c, &text, &len) != DG_OK)
			abort();
		check_stable(c, text, len);
		free(text);
		dg_container_free(c);
	} else if (err[0] == '\0' || c != NULL) {
		abort(); /* every refusal says why and hands out nothing */
	}
	return 0;
}
