/*
 * libFuzzer target for the rootfs manifest parser: arbitrary text is refused
 * without leaving anything behind, or yields a manifest whose lookups agree
 * with each other and whose differences to itself and to a fixed manifest are
 * bounded, well formed and empty exactly against itself.
 */
#include <stdlib.h>
#include <string.h>

#include "driftgate/err.h"
#include "driftgate/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HEX11 "1111111111111111111111111111111111111111111111111111111111111111"
#define HEX22 "2222222222222222222222222222222222222222222222222222222222222222"
#define MAX_REASONS 8

/* The seeds use these digests and paths too. */
static const char fixed_text[] = HEX11 " 100755 /bin/app\n"
                                 HEX22 " 120777 /bin/sh\n"
                                 HEX22 " 100644 /etc/my\\x20conf\n";
static const char *const probe_paths[] = {"/bin/app", "/bin/sh", "/etc/my_conf", "/etc/my conf",
                                          "/"};

static void
check_reasons(const struct dg_reason *r, size_t n)
{
	if (n > MAX_REASONS)
		abort();
	for (size_t i = 0; i < n; i++) {
		const char *code = r[i].code;
		if (strcmp(code, "file-added") != 0 && strcmp(code, "file-removed") != 0 &&
		    strcmp(code, "file-changed") != 0)
			abort();
		for (const char *p = r[i].detail; *p != '\0'; p++) {
			if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
				abort();
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dg_manifest *sentinel = (struct dg_manifest *)&sentinel, *m = sentinel;
	struct dg_manifest *fixed = NULL;
	struct dg_reason reasons[MAX_REASONS];
	uint8_t digest[32];
	size_t n = 0;
	int rc;

	rc = dg_manifest_parse((const char *)data, size, &m);
	if (rc != DG_OK) {
		if (m != sentinel || (rc != DG_ERR_FORMAT && rc != DG_ERR_TOOBIG))
			abort();
		return 0;
	}
	if ((dg_manifest_count(m) == 0) != (size == 0))
		abort();
	for (int v = 0; v < 256; v += 0x11) {
		memset(digest, v, sizeof digest);
		const char *path = dg_manifest_path_of(m, digest);
		if (path != NULL && !dg_manifest_has(m, path, digest))
			abort();
		for (size_t i = 0; i < sizeof probe_paths / sizeof probe_paths[0]; i++) {
			if (dg_manifest_has(m, probe_paths[i], digest) && path == NULL)
				abort();
		}
	}
	if (dg_manifest_diff(m, m, reasons, MAX_REASONS, &n) != DG_OK || n != 0)
		abort();
	if (dg_manifest_parse(fixed_text, strlen(fixed_text), &fixed) != DG_OK)
		abort();
	if (dg_manifest_diff(fixed, m, reasons, MAX_REASONS, &n) != DG_OK)
		abort();
	check_reasons(reasons, n);
	if (dg_manifest_diff(m, fixed, reasons, MAX_REASONS, &n) != DG_OK)
		abort();
	check_reasons(reasons, n);
	dg_manifest_free(fixed);
	dg_manifest_free(m);
	return 0;
}
