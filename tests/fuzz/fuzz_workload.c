/*
 * libFuzzer target for workloads, two inputs in one:
 *  - "W" then a workload file: refused with a one-line "line N: ..." message
 *    and nothing returned, or parsed with consistent accessors;
 *  - otherwise a stream of log events, as a compromised agent could send them,
 *    appraised against a fixed workload "web" (agent node-*, container app):
 *    events are separated by an empty line, each "<path>\n<buffer>" (the
 *    buffer keeps its final newline). The buffer is the ima-buf record of a
 *    container event, the manifest "sent" for a rootfs event, and its SHA-256
 *    is every event's digest (SHA-256("app\n") is /bin/app's). The state
 *    is cloned halfway and the clone carries on. Appraisal must return only
 *    the documented codes and write well-formed, bounded reasons;
 *  - "S" then a stored container state (dg_containers_decode, as the verifier
 *    reads it back from its database): refused with a documented code, or
 *    decoded to a state that encodes back to exactly the same bytes.
 */
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driftgate/container.h"
#include "driftgate/err.h"
#include "driftgate/manifest.h"
#include "driftgate/workload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_REASONS 8
#define MAX_EVENTS 64

static const char workload_text[] = "driftgate-workload 1\nname web\nagent node-*\n"
                                    "container app\n";
static const char app_json[] =
	"{\"annotations\": {\"io.driftgate.workload\": \"web\", "
	"\"io.driftgate.container\": \"app\"}, \"process\": {\"args\": [\"/bin/app\"]}}";
static const char *const known_codes[] = {
	"unexpected-container", "spec-changed",  "rootfs-changed", "file-added",
	"file-removed",         "file-changed",  "unknown-container", "exec-moved",
	"exec-volume",          "exec-unknown",  "container-reused",
};

static void
fuzz_workload_text(const char *text, size_t len)
{
	struct dg_workload *sentinel = (struct dg_workload *)&sentinel, *w = sentinel;
	char err[256];
	int rc = dg_workload_parse(text, len, &w, err, sizeof err);

	if (rc != DG_OK) {
		if (w != sentinel || strncmp(err, "line ", 5) != 0 || strchr(err, '\n') != NULL)
			abort();
		return;
	}
	if (dg_workload_name(w)[0] == '\0')
		abort();
	(void)dg_workload_applies(w, "node-1");
	for (size_t i = 0; i < dg_workload_container_count(w); i++) {
		if (dg_workload_container_name(w, i) == NULL)
			abort();
	}
	for (size_t i = 0; i < dg_workload_secret_count(w); i++) {
		if (dg_workload_secret(w, i) == NULL)
			abort();
	}
	rc = dg_workload_check_complete(w, err, sizeof err);
	if (rc != (dg_workload_container_count(w) == 0 ? DG_OK : DG_ERR_STATE))
		abort();
	dg_workload_free(w);
}

/* The app container's approved manifest: /bin/app is SHA-256("app\n"). */
static struct dg_workload *
fixed_workload(void)
{
	struct dg_workload *w = NULL;
	struct dg_container *c = NULL;
	uint8_t digest[32];
	char manifest[128], *record = NULL;
	size_t record_len;

	if (dg_workload_parse(workload_text, strlen(workload_text), &w, NULL, 0) != DG_OK ||
	    dg_container_from_oci_json(app_json, strlen(app_json), &c, NULL, 0) != DG_OK ||
	    dg_container_encode(c, &record, &record_len) != DG_OK ||
	    EVP_Digest("app\n", 4, digest, NULL, EVP_sha256(), NULL) != 1)
		abort();
	for (int i = 0; i < 32; i++)
		snprintf(manifest + 2 * i, 3, "%02x", digest[i]);
	snprintf(manifest + 64, sizeof manifest - 64, " 100755 /bin/app\n");
	if (dg_workload_set_container(w, "app", record, record_len, manifest, strlen(manifest),
	                              NULL, 0) != DG_OK)
		abort();
	free(record);
	dg_container_free(c);
	return w;
}

struct sent {
	const char *text;
	size_t len;
};

static const char *
sent_manifest(const char *id, size_t *len, void *arg)
{
	const struct sent *s = arg;
	(void)id;
	*len = s->len;
	return s->text;
}

static void
check_reasons(const struct dg_reason *r, size_t n)
{
	if (n > MAX_REASONS)
		abort();
	for (size_t i = 0; i < n; i++) {
		bool known = false;
		for (size_t k = 0; k < sizeof known_codes / sizeof known_codes[0]; k++)
			known = known || strcmp(r[i].code, known_codes[k]) == 0;
		if (!known || r[i].detail[0] == '\0')
			abort();
		for (const char *p = r[i].detail; *p != '\0'; p++) {
			if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
				abort();
		}
	}
}

static void
fuzz_events(const char *data, size_t size)
{
	const struct dg_workload *ws[1];
	struct dg_workload *w = fixed_workload();
	struct dg_containers *s = NULL, *clone = NULL;
	struct dg_reason reasons[MAX_REASONS];
	size_t off = 0;

	ws[0] = w;
	if (dg_containers_new(&s) != DG_OK)
		abort();
	for (int event = 0; event < MAX_EVENTS && off < size; event++) {
		const char *start = data + off, *end = data + size;
		const char *sep = memmem(start, (size_t)(end - start), "\n\n", 2);
		const char *stop = sep != NULL ? sep : end;
		const char *nl = memchr(start, '\n', (size_t)(stop - start));
		const char *buf = nl != NULL ? nl + 1 : stop;
		size_t path_len = (size_t)((nl != NULL ? nl : stop) - start);
		size_t buf_len = (size_t)(stop - buf) + (sep != NULL ? 1 : 0);
		char *path = malloc(path_len + 1);
		uint8_t digest[32];
		struct dg_log_entry e;
		struct sent sent = {buf, buf_len};
		size_t n = 0;
		int rc;

		if (path == NULL || EVP_Digest(buf, buf_len, digest, NULL, EVP_sha256(), NULL) != 1)
			abort();
		memcpy(path, start, path_len);
		path[path_len] = '\0';
		memset(&e, 0, sizeof e);
		e.pcr = 13;
		e.template_id = strncmp(path, DG_EVENT_CONTAINER, strlen(DG_EVENT_CONTAINER)) == 0
		                        ? DG_TEMPLATE_IMA_BUF
		                        : DG_TEMPLATE_IMA_NG;
		e.hash_alg = "sha256";
		e.digest = digest;
		e.digest_len = sizeof digest;
		e.path = path;
		e.path_len = path_len;
		e.extra = (const uint8_t *)buf;
		e.extra_len = buf_len;
		rc = dg_containers_appraise(s, ws, 1, "node-1", &e, sent_manifest, &sent, reasons,
		                            MAX_REASONS, &n);
		if (rc != DG_OK && rc != DG_ERR_FORMAT && rc != DG_ERR_INVAL && rc != DG_ERR_TOOBIG)
			abort();
		if (rc != DG_OK && n != 0)
			abort();
		check_reasons(reasons, n);
		free(path);
		if (event == MAX_EVENTS / 2 || sep == NULL) {
			if (dg_containers_clone(s, &clone) != DG_OK)
				abort();
			dg_containers_free(s);
			s = clone;
		}
		off = (size_t)(stop - data) + (sep != NULL ? 2 : 0);
	}
	dg_containers_free(s);
	dg_workload_free(w);
}

static void
fuzz_state(const uint8_t *data, size_t size)
{
	struct dg_containers *s = NULL;
	uint8_t *again = NULL;
	size_t len = 0;
	int rc = dg_containers_decode(data, size, &s);

	if (rc != DG_OK) {
		if (s != NULL || (rc != DG_ERR_FORMAT && rc != DG_ERR_TRUNCATED &&
		                  rc != DG_ERR_TRAILING && rc != DG_ERR_TOOBIG && rc != DG_ERR_NOMEM))
			abort();
		return;
	}
	/* One encoding per state: anything else accepted would be a second reading. */
	if (dg_containers_encode(s, &again, &len) != DG_OK || len != size ||
	    memcmp(again, data, size) != 0)
		abort();
	free(again);
	dg_containers_free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 0 && data[0] == 'W')
		fuzz_workload_text((const char *)data + 1, size - 1);
	else if (size > 0 && data[0] == 'S')
		fuzz_state(data + 1, size - 1);
	else
		fuzz_events((const char *)data, size);
	return 0;
}
