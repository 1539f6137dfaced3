/*
 * Workloads: event names, workload files (errors with line numbers), attaching
 * approved records and manifests, and the appraisal of container events, one
 * test per reason code, plus bounds and clone independence. Records are made
 * from small OCI JSON documents with dg_container_from_oci_json; every SHA-256
 * an entry carries is computed by sha256sum, not by driftgate.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "driftgate/container.h"
#include "driftgate/err.h"
#include "driftgate/manifest.h"
#include "driftgate/workload.h"
#include "testutil.h"

/* Hand-made file digests: 32 bytes of 0x11, 0x22, 0x44. */
#define HEX11 "1111111111111111111111111111111111111111111111111111111111111111"
#define HEX22 "2222222222222222222222222222222222222222222222222222222222222222"
#define HEX44 "4444444444444444444444444444444444444444444444444444444444444444"

#define WORKLOAD_TEXT                                                                        \
	"driftgate-workload 1\n"                                                             \
	"name web\n"                                                                         \
	"agent node-*\n"                                                                     \
	"container app\n"                                                                    \
	"container db\n"                                                                     \
	"secret db-password\n"

#define APP_MANIFEST                                                                         \
	HEX11 " 100755 /bin/app\n"                                                           \
	HEX22 " 120777 /bin/sh\n"                                                            \
	HEX22 " 100755 /opt/my\\x20tool\n"
/* APP_MANIFEST with /bin/app changed and /bin/extra added. */
#define APP_MANIFEST_DRIFTED                                                                 \
	HEX44 " 100755 /bin/app\n"                                                           \
	HEX44 " 100755 /bin/extra\n"                                                         \
	HEX22 " 120777 /bin/sh\n"                                                            \
	HEX22 " 100755 /opt/my\\x20tool\n"
#define DB_MANIFEST HEX22 " 100755 /usr/bin/db\n"

#define AGENT "node-1"
#define MAX_REASONS 16

static uint8_t d11[32], d22[32], d44[32];
static char *tmp_dir;

static void
setup(void)
{
	memset(d11, 0x11, 32);
	memset(d22, 0x22, 32);
	memset(d44, 0x44, 32);
	tmp_dir = tu_tmpdir();
	ck_assert_ptr_nonnull(tmp_dir);
}

static void
teardown(void)
{
	tu_sh("rm -rf '%s'", tmp_dir);
	free(tmp_dir);
}

/* SHA-256 of data by coreutils sha256sum. */
static void
sha256sum(const void *data, size_t len, uint8_t out[32])
{
	char in_path[512], out_path[512];
	FILE *f;
	size_t hex_len = 0;

	snprintf(in_path, sizeof in_path, "%s/sha-in", tmp_dir);
	snprintf(out_path, sizeof out_path, "%s/sha-out", tmp_dir);
	f = fopen(in_path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(data, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(tu_sh("sha256sum < '%s' | cut -c1-64 > '%s'", in_path, out_path), 0);
	char *hex = (char *)tu_read_file(out_path, &hex_len);
	ck_assert_ptr_nonnull(hex);
	ck_assert_uint_eq(hex_len, 65);
	hex[64] = '\0';
	ck_assert_int_eq(tu_hex(hex, out, 32), 32);
	free(hex);
}

/* "web/app (id <id>): rootfs announced twice (first sha256:<SHA-256 of first>)" */
static void
reused_rootfs_detail(const char *id, const char *first, char *out, size_t cap)
{
	uint8_t digest[32];
	int n;

	sha256sum(first, strlen(first), digest);
	n = snprintf(out, cap, "web/app (id %s): rootfs announced twice (first sha256:", id);
	for (int i = 0; i < 32; i++)
		n += snprintf(out + n, cap - (size_t)n, "%02x", digest[i]);
	snprintf(out + n, cap - (size_t)n, ")");
}

/* The canonical record text of a config.json (malloc'd). */
static char *
record_text(const char *json, size_t *len)
{
	struct dg_container *c = NULL;
	char err[256] = "", *text = NULL;
	int rc = dg_container_from_oci_json(json, strlen(json), &c, err, sizeof err);

	ck_assert_msg(rc == DG_OK, "config.json refused: %s", err);
	ck_assert_int_eq(dg_container_encode(c, &text, len), DG_OK);
	dg_container_free(c);
	return text;
}

static char *
record_for(const char *workload, const char *name, const char *arg0, size_t *len)
{
	char json[512];
	snprintf(json, sizeof json,
	         "{\"annotations\": {\"io.driftgate.workload\": \"%s\", "
	         "\"io.driftgate.container\": \"%s\"}, "
	         "\"process\": {\"args\": [\"%s\"], \"cwd\": \"/\", \"env\": [\"A=1\"]}, "
	         "\"root\": {\"path\": \"rootfs\", \"readonly\": true}}",
	         workload, name, arg0);
	return record_text(json, len);
}

static struct dg_workload *
must_parse(const char *text)
{
	struct dg_workload *w = NULL;
	char err[256] = "";
	int rc = dg_workload_parse(text, strlen(text), &w, err, sizeof err);
	ck_assert_msg(rc == DG_OK, "parse failed: %s", err);
	return w;
}

static void
attach(struct dg_workload *w, const char *name, const char *arg0, const char *manifest)
{
	size_t len;
	char err[256] = "", *record = record_for(dg_workload_name(w), name, arg0, &len);
	int rc = dg_workload_set_container(w, name, record, len, manifest, strlen(manifest), err,
	                                   sizeof err);
	ck_assert_msg(rc == DG_OK, "set_container: %s", err);
	free(record);
}

/* The standard fixture: workload web (node-*) with app and db approved. */
static struct dg_workload *
web_workload(void)
{
	struct dg_workload *w = must_parse(WORKLOAD_TEXT);
	attach(w, "app", "/bin/app", APP_MANIFEST);
	attach(w, "db", "/usr/bin/db", DB_MANIFEST);
	ck_assert_int_eq(dg_workload_check_complete(w, NULL, 0), DG_OK);
	return w;
}

/* What one appraisal call needs: an entry with owned buffers. */
struct event {
	char path[4200];
	uint8_t digest[32];
	char *buf;
	size_t buf_len;
	struct dg_log_entry e;
};

static void
event_finish(struct event *ev, enum dg_log_template t)
{
	memset(&ev->e, 0, sizeof ev->e);
	ev->e.pcr = 13;
	ev->e.template_id = t;
	ev->e.hash_alg = "sha256";
	ev->e.digest = ev->digest;
	ev->e.digest_len = 32;
	ev->e.path = ev->path;
	ev->e.path_len = strlen(ev->path);
	ev->e.extra = (const uint8_t *)ev->buf;
	ev->e.extra_len = ev->buf_len;
}

static void
creation_event(struct event *ev, const char *id, char *record, size_t len)
{
	snprintf(ev->path, sizeof ev->path, DG_EVENT_CONTAINER "%s", id);
	ev->buf = record;
	ev->buf_len = len;
	sha256sum(record, len, ev->digest);
	event_finish(ev, DG_TEMPLATE_IMA_BUF);
}

static void
rootfs_event(struct event *ev, const char *id, const char *manifest)
{
	snprintf(ev->path, sizeof ev->path, DG_EVENT_ROOTFS "%s", id);
	ev->buf = NULL;
	ev->buf_len = 0;
	sha256sum(manifest, strlen(manifest), ev->digest);
	event_finish(ev, DG_TEMPLATE_IMA_NG);
}

static void
exec_event(struct event *ev, const char *id, const char *path, const uint8_t digest[32])
{
	snprintf(ev->path, sizeof ev->path, DG_EVENT_EXEC "%s:%s", id, path);
	ev->buf = NULL;
	ev->buf_len = 0;
	memcpy(ev->digest, digest, 32);
	event_finish(ev, DG_TEMPLATE_IMA_NG);
}

/* The manifests the agent "sent": one text for every container id. */
struct sent {
	const char *text;
};

static const char *
sent_manifest(const char *id, size_t *len, void *arg)
{
	const struct sent *s = arg;
	(void)id;
	if (s == NULL || s->text == NULL)
		return NULL;
	*len = strlen(s->text);
	return s->text;
}

struct round {
	struct dg_containers *s;
	const struct dg_workload *const *workloads;
	size_t n_workloads;
	struct sent sent;
	struct dg_reason reasons[MAX_REASONS];
	size_t n;
};

/* Appraise with a fresh reason list; returns the rc. */
static int
appraise(struct round *r, const struct event *ev)
{
	r->n = 0;
	memset(r->reasons, 0, sizeof r->reasons);
	return dg_containers_appraise(r->s, r->workloads, r->n_workloads, AGENT, &ev->e,
	                              sent_manifest, &r->sent, r->reasons, MAX_REASONS, &r->n);
}

static void
expect_pass(struct round *r, const struct event *ev)
{
	ck_assert_int_eq(appraise(r, ev), DG_OK);
	ck_assert_msg(r->n == 0, "unexpected reason %s: %s", r->reasons[0].code,
	              r->reasons[0].detail);
}

static void
expect_one(struct round *r, const struct event *ev, const char *code, const char *detail)
{
	ck_assert_int_eq(appraise(r, ev), DG_OK);
	ck_assert_uint_eq(r->n, 1);
	ck_assert_str_eq(r->reasons[0].code, code);
	ck_assert_str_eq(r->reasons[0].detail, detail);
}

/* Announce an approved container: creation and rootfs pass. */
static void
start_container(struct round *r, const char *id, const char *name, const char *arg0,
                const char *manifest)
{
	struct event ev;
	size_t len;
	char *record = record_for("web", name, arg0, &len);

	creation_event(&ev, id, record, len);
	expect_pass(r, &ev);
	free(record);
	rootfs_event(&ev, id, manifest);
	expect_pass(r, &ev);
}

/* ---- event names ---- */

START_TEST(test_classify)
{
	static const struct {
		const char *path;
		int rc;
		enum dg_event_kind kind;
		const char *id, *exec_path;
	} cases[] = {
		{"/usr/bin/ls", DG_OK, DG_EVENT_NONE, "", NULL},
		{"DG:container:x", DG_OK, DG_EVENT_NONE, "", NULL},
		{"dg:container:abc", DG_OK, DG_EVENT_KIND_CONTAINER, "abc", NULL},
		{"dg:rootfs:a.b_c+d-E9", DG_OK, DG_EVENT_KIND_ROOTFS, "a.b_c+d-E9", NULL},
		{"dg:exec:abc:/bin/sh", DG_OK, DG_EVENT_KIND_EXEC, "abc", "/bin/sh"},
		{"dg:exec:abc:volume:/srv/x", DG_OK, DG_EVENT_KIND_EXEC, "abc", "volume:/srv/x"},
		{"dg:exec:abc:/a:b", DG_OK, DG_EVENT_KIND_EXEC, "abc", "/a:b"},
		{"dg:", DG_ERR_FORMAT, DG_EVENT_NONE, "", NULL},
		{"dg:other:abc", DG_ERR_FORMAT, DG_EVENT_NONE, "", NULL},
		{"dg:Container:abc", DG_ERR_FORMAT, DG_EVENT_NONE, "", NULL},
		{"dg:container:", DG_ERR_FORMAT, DG_EVENT_NONE, "", NULL},
		{"dg:container:a b", DG_ERR_FORMAT, DG_EVENT_NONE, "", NULL},
		{"dg:container:a:b", DG_ERR_FORMAT, DG_EVENT_NONE, "", NULL},
		{"dg:container:a/b", DG_ERR_FORMAT, DG_EVENT_NONE, "", NULL},
		{"dg:rootfs:caf\xc3\xa9", DG_ERR_FORMAT, DG_EVENT_NONE, "", NULL},
		{"dg:exec:abc", DG_ERR_FORMAT, DG_EVENT_NONE, "", NULL},
		{"dg:exec:abc:", DG_ERR_FORMAT, DG_EVENT_NONE, "", NULL},
		{"dg:exec:abc:bin/sh", DG_ERR_FORMAT, DG_EVENT_NONE, "", NULL},
		{"dg:exec:abc:volume:srv", DG_ERR_FORMAT, DG_EVENT_NONE, "", NULL},
		{"dg:exec::/bin/sh", DG_ERR_FORMAT, DG_EVENT_NONE, "", NULL},
		{"dg:exec:a b:/bin/sh", DG_ERR_FORMAT, DG_EVENT_NONE, "", NULL},
	};
	char id[DG_CONTAINER_ID_MAX + 1], path[300];
	enum dg_event_kind kind;
	const char *exec_path;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		memset(id, 'z', sizeof id);
		kind = DG_EVENT_KIND_ROOTFS;
		exec_path = "stale";
		int rc = dg_event_classify(cases[i].path, &kind, id, &exec_path);
		ck_assert_msg(rc == cases[i].rc, "%s: rc %d", cases[i].path, rc);
		ck_assert_int_eq(kind, cases[i].kind);
		ck_assert_str_eq(id, cases[i].id);
		if (cases[i].exec_path == NULL)
			ck_assert_ptr_null(exec_path);
		else
			ck_assert_str_eq(exec_path, cases[i].exec_path);
	}
	/* Ids: 128 characters are accepted, 129 are not. */
	snprintf(path, sizeof path, DG_EVENT_ROOTFS "%0128d", 7);
	ck_assert_int_eq(dg_event_classify(path, &kind, id, NULL), DG_OK);
	ck_assert_uint_eq(strlen(id), 128);
	snprintf(path, sizeof path, DG_EVENT_EXEC "%0129d:/bin/sh", 7);
	ck_assert_int_eq(dg_event_classify(path, &kind, id, &exec_path), DG_ERR_FORMAT);
}
END_TEST

/* ---- workload files ---- */

START_TEST(test_parse_accessors)
{
	struct dg_workload *w = must_parse("# web tier\n"
	                                   "  driftgate-workload 1  \r\n"
	                                   "\n"
	                                   "name web\n"
	                                   "agent node-*\n"
	                                   "agent edge-[0-9]\n"
	                                   "container app\n"
	                                   "container db.v2_x-1\n"
	                                   "secret db-password\n"
	                                   "secret db-password\n"
	                                   "secret api-key\n"
	                                   "lease 45\n");
	ck_assert_str_eq(dg_workload_name(w), "web");
	ck_assert_uint_eq(dg_workload_lease_s(w), 45);
	ck_assert(dg_workload_has_secret(w, "api-key"));
	ck_assert(!dg_workload_has_secret(w, "api"));
	ck_assert(dg_workload_applies(w, "node-1"));
	ck_assert(dg_workload_applies(w, "edge-7"));
	ck_assert(!dg_workload_applies(w, "edge-77"));
	ck_assert(!dg_workload_applies(w, "xnode-1"));
	ck_assert_uint_eq(dg_workload_container_count(w), 2);
	ck_assert_str_eq(dg_workload_container_name(w, 0), "app");
	ck_assert_str_eq(dg_workload_container_name(w, 1), "db.v2_x-1");
	ck_assert_ptr_null(dg_workload_container_name(w, 2));
	ck_assert_uint_eq(dg_workload_secret_count(w), 2);
	ck_assert_str_eq(dg_workload_secret(w, 0), "db-password");
	ck_assert_str_eq(dg_workload_secret(w, 1), "api-key");
	ck_assert_ptr_null(dg_workload_secret(w, 2));
	dg_workload_free(w);
}
END_TEST

START_TEST(test_parse_errors)
{
	static const struct {
		const char *text, *err;
	} cases[] = {
		{"", "line 0: missing 'driftgate-workload 1' header"},
		{"# only\nname web\n", "line 2: missing 'driftgate-workload 1' header"},
		{"driftgate-workload 2\n", "line 1: unsupported workload version '2'"},
		{"driftgate-workload 1\ndriftgate-workload 1\n", "line 2: repeated header"},
		{"driftgate-workload 1\nname web\n", "line 2: missing 'agent'"},
		{"driftgate-workload 1\nagent *\n", "line 2: missing 'name'"},
		{"driftgate-workload 1\nname web\nname web\n", "line 3: duplicate name"},
		{"driftgate-workload 1\nname w/b\n",
		 "line 2: bad name (want [A-Za-z0-9._-]{1,64})"},
		{"driftgate-workload 1\nname\n", "line 2: 'name' needs an argument"},
		{"driftgate-workload 1\nname web\nagent a b\n",
		 "line 3: agent pattern has blanks or control characters"},
		{"driftgate-workload 1\nname web\nagent *\ncontainer app\n\ncontainer app\n",
		 "line 6: duplicate container 'app'"},
		{"driftgate-workload 1\nname web\nagent *\ncontainer a:b\n",
		 "line 4: bad container name (want [A-Za-z0-9._-]{1,64})"},
		{"driftgate-workload 1\nname web\nagent *\ncontainer "
		 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
		 "line 4: bad container name (want [A-Za-z0-9._-]{1,64})"},
		{"driftgate-workload 1\nname web\nagent *\nsecret a b\n",
		 "line 4: bad secret name (want [A-Za-z0-9._-]{1,64})"},
		{"driftgate-workload 1\nname web\nagent *\nlease 0\n",
		 "line 4: bad lease (want seconds, 1..86400)"},
		{"driftgate-workload 1\nname web\nagent *\nlease 5\nlease 5\n",
		 "line 5: duplicate lease"},
		{"driftgate-workload 1\nname web\nagent *\nallow sha256:00 /x\n",
		 "line 4: unknown directive 'allow'"},
		{"driftgate-workload 1\nname web\nagent *\ncontainer\tapp\x01\n",
		 "line 4: bad container name (want [A-Za-z0-9._-]{1,64})"},
	};
	struct dg_workload *sentinel = (struct dg_workload *)&sentinel, *w;
	char err[256];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		w = sentinel;
		size_t len = strlen(cases[i].text);
		ck_assert_int_eq(dg_workload_parse(cases[i].text, len, &w, err, sizeof err),
		                 DG_ERR_FORMAT);
		ck_assert_ptr_eq(w, sentinel);
		ck_assert_str_eq(err, cases[i].err);
	}
	/* A NUL byte, and a text over the 1 MiB bound. */
	w = sentinel;
	static const char with_nul[] = "driftgate-workload 1\nna\0me\n";
	ck_assert_int_eq(dg_workload_parse(with_nul, sizeof with_nul - 1, &w, err, sizeof err),
	                 DG_ERR_FORMAT);
	ck_assert_str_eq(err, "line 2: NUL byte");
	ck_assert_int_eq(dg_workload_parse("", 1024 * 1024 + 1, &w, err, sizeof err),
	                 DG_ERR_TOOBIG);
	ck_assert_ptr_eq(w, sentinel);
	/* 256 containers are accepted, the 257th is not. */
	size_t cap = 300 * 24, len;
	char *text = malloc(cap);
	ck_assert_ptr_nonnull(text);
	len = (size_t)snprintf(text, cap, "driftgate-workload 1\nname web\nagent *\n");
	for (int i = 0; i < 257; i++)
		len += (size_t)snprintf(text + len, cap - len, "container c%d\n", i);
	ck_assert_int_eq(dg_workload_parse(text, len, &w, err, sizeof err), DG_ERR_FORMAT);
	ck_assert_str_eq(err, "line 260: more than 256 containers");
	len -= strlen("container c256\n");
	ck_assert_int_eq(dg_workload_parse(text, len, &w, err, sizeof err), DG_OK);
	ck_assert_uint_eq(dg_workload_container_count(w), 256);
	dg_workload_free(w);
	free(text);
}
END_TEST

START_TEST(test_set_container)
{
	struct dg_workload *w = must_parse(WORKLOAD_TEXT);
	char err[256], *record, *other;
	size_t len, other_len;

	ck_assert_int_eq(dg_workload_check_complete(w, err, sizeof err), DG_ERR_STATE);
	ck_assert_str_eq(err, "workload web: container app has no record and manifest");
	record = record_for("web", "app", "/bin/app", &len);
	ck_assert_int_eq(dg_workload_set_container(w, "cache", record, len, APP_MANIFEST,
	                                           strlen(APP_MANIFEST), err, sizeof err),
	                 DG_ERR_NOTFOUND);
	ck_assert_str_eq(err, "workload web lists no container 'cache'");
	/* The record must name this workload and this container. */
	other = record_for("web", "db", "/bin/app", &other_len);
	ck_assert_int_eq(dg_workload_set_container(w, "app", other, other_len, APP_MANIFEST,
	                                           strlen(APP_MANIFEST), err, sizeof err),
	                 DG_ERR_FORMAT);
	ck_assert_str_eq(err, "container app: record is for web/db, not web/app");
	free(other);
	other = record_for("shop", "app", "/bin/app", &other_len);
	ck_assert_int_eq(dg_workload_set_container(w, "app", other, other_len, APP_MANIFEST,
	                                           strlen(APP_MANIFEST), err, sizeof err),
	                 DG_ERR_FORMAT);
	ck_assert_str_eq(err, "container app: record is for shop/app, not web/app");
	free(other);
	ck_assert_int_eq(dg_workload_set_container(w, "app", "driftgate-container 1\n", 22,
	                                           APP_MANIFEST, strlen(APP_MANIFEST), err,
	                                           sizeof err),
	                 DG_ERR_FORMAT);
	ck_assert_ptr_nonnull(strstr(err, "container app: record is not a canonical"));
	ck_assert_int_eq(dg_workload_set_container(w, "app", record, len, HEX11 " 100755 bin\n",
	                                           strlen(HEX11) + 12, err, sizeof err),
	                 DG_ERR_FORMAT);
	ck_assert_ptr_nonnull(strstr(err, "container app: malformed manifest"));
	/* Nothing was attached by the failures. */
	ck_assert_int_eq(dg_workload_check_complete(w, err, sizeof err), DG_ERR_STATE);
	ck_assert_str_eq(err, "workload web: container app has no record and manifest");
	ck_assert_int_eq(dg_workload_set_container(w, "app", record, len, APP_MANIFEST,
	                                           strlen(APP_MANIFEST), err, sizeof err),
	                 DG_OK);
	ck_assert_str_eq(err, "");
	ck_assert_int_eq(dg_workload_check_complete(w, err, sizeof err), DG_ERR_STATE);
	ck_assert_str_eq(err, "workload web: container db has no record and manifest");
	attach(w, "db", "/usr/bin/db", DB_MANIFEST);
	ck_assert_int_eq(dg_workload_check_complete(w, err, sizeof err), DG_OK);
	free(record);
	dg_workload_free(w);
}
END_TEST

/* ---- appraisal ---- */

static void
round_init(struct round *r, const struct dg_workload *const *workloads, size_t n)
{
	memset(r, 0, sizeof *r);
	ck_assert_int_eq(dg_containers_new(&r->s), DG_OK);
	r->workloads = workloads;
	r->n_workloads = n;
}

START_TEST(test_approved_and_exec_reasons)
{
	struct dg_workload *w = web_workload();
	const struct dg_workload *ws[] = {w};
	struct round r;
	struct event ev;

	round_init(&r, ws, 1);
	start_container(&r, "c1", "app", "/bin/app", APP_MANIFEST);
	exec_event(&ev, "c1", "/bin/app", d11);
	expect_pass(&r, &ev);
	/* The log shows "/opt/my tool" as "/opt/my_tool". */
	exec_event(&ev, "c1", "/opt/my_tool", d22);
	expect_pass(&r, &ev);
	exec_event(&ev, "c1", "/tmp/app", d11);
	expect_one(&r, &ev, "exec-moved",
	           "web/app (id c1): /tmp/app (sha256:" HEX11 ") is the approved /bin/app at "
	           "another path");
	exec_event(&ev, "c1", "/bin/app", d44);
	expect_one(&r, &ev, "exec-unknown",
	           "web/app (id c1): /bin/app (sha256:" HEX44 ") is not in the approved rootfs");
	/* A symlink's digest is not an executable file's. */
	exec_event(&ev, "c1", "/bin/sh", d22);
	expect_one(&r, &ev, "exec-moved",
	           "web/app (id c1): /bin/sh (sha256:" HEX22 ") is the approved /opt/my tool at "
	           "another path");
	exec_event(&ev, "c1", "volume:/srv/tool", d44);
	expect_one(&r, &ev, "exec-volume",
	           "web/app (id c1): /srv/tool (sha256:" HEX44
	           ") executed from outside the rootfs");
	exec_event(&ev, "c1", "volume:/srv/app", d11);
	expect_one(&r, &ev, "exec-volume",
	           "web/app (id c1): /srv/app (sha256:" HEX11 ") executed from outside the rootfs, "
	           "a copy of the approved /bin/app");
	exec_event(&ev, "c9", "/bin/app", d11);
	expect_one(&r, &ev, "unknown-container",
	           "exec of /bin/app (sha256:" HEX11 ") in unknown container c9");
	rootfs_event(&ev, "c9", APP_MANIFEST);
	ck_assert_int_eq(appraise(&r, &ev), DG_OK);
	ck_assert_uint_eq(r.n, 1);
	ck_assert_str_eq(r.reasons[0].code, "unknown-container");
	/* The other container of the workload has its own manifest. */
	start_container(&r, "c2", "db", "/usr/bin/db", DB_MANIFEST);
	exec_event(&ev, "c2", "/usr/bin/db", d22);
	expect_pass(&r, &ev);
	exec_event(&ev, "c2", "/bin/app", d11);
	expect_one(&r, &ev, "exec-unknown",
	           "web/db (id c2): /bin/app (sha256:" HEX11 ") is not in the approved rootfs");
	dg_containers_free(r.s);
	dg_workload_free(w);
}
END_TEST

START_TEST(test_unexpected_container)
{
	struct dg_workload *w = web_workload();
	struct dg_workload *edge = must_parse("driftgate-workload 1\nname edge\nagent edge-*\n"
	                                      "container app\n");
	const struct dg_workload *ws[] = {edge, w};
	struct round r;
	struct event ev;
	char *record;
	size_t len;

	attach(edge, "app", "/bin/app", APP_MANIFEST);
	round_init(&r, ws, 2);
	record = record_for("web", "sidecar", "/bin/sh", &len);
	creation_event(&ev, "s1", record, len);
	expect_one(&r, &ev, "unexpected-container",
	           "web/sidecar (id s1): workload web has no container sidecar");
	free(record);
	record = record_for("shop", "app", "/bin/app", &len);
	creation_event(&ev, "s2", record, len);
	expect_one(&r, &ev, "unexpected-container", "shop/app (id s2): no workload named shop");
	free(record);
	record = record_for("edge", "app", "/bin/app", &len);
	creation_event(&ev, "s3", record, len);
	expect_one(&r, &ev, "unexpected-container",
	           "edge/app (id s3): workload edge is not for agent node-1");
	free(record);
	/* No annotations at all. */
	record = record_text("{}", &len);
	creation_event(&ev, "s4", record, len);
	expect_one(&r, &ev, "unexpected-container", "-/- (id s4): no workload named -");
	free(record);
	/* An unexpected container is remembered and its events still appraised. */
	rootfs_event(&ev, "s1", APP_MANIFEST);
	ck_assert_int_eq(appraise(&r, &ev), DG_OK);
	ck_assert_uint_eq(r.n, 1);
	ck_assert_str_eq(r.reasons[0].code, "rootfs-changed");
	ck_assert_ptr_nonnull(strstr(r.reasons[0].detail, "web/sidecar (id s1): rootfs sha256:"));
	exec_event(&ev, "s1", "/bin/app", d11);
	expect_one(&r, &ev, "exec-unknown",
	           "web/sidecar (id s1): /bin/app (sha256:" HEX11 ") executed, no rootfs approved "
	           "(workload web has no container sidecar)");
	dg_containers_free(r.s);
	dg_workload_free(w);
	dg_workload_free(edge);
}
END_TEST

START_TEST(test_spec_changed)
{
	struct dg_workload *w = web_workload();
	const struct dg_workload *ws[] = {w};
	struct round r;
	struct event ev;
	char *record;
	size_t len;

	round_init(&r, ws, 1);
	record = record_for("web", "app", "/wrap.sh", &len);
	creation_event(&ev, "c1", record, len);
	ck_assert_int_eq(appraise(&r, &ev), DG_OK);
	/* Only the first argument differs; the detail after the label is
	 * dg_container_diff's (its format is container.h's example). */
	ck_assert_uint_eq(r.n, 1);
	ck_assert_str_eq(r.reasons[0].code, "spec-changed");
	ck_assert_str_eq(r.reasons[0].detail, "web/app (id c1): arg[0]: /bin/app -> /wrap.sh");
	free(record);
	/* Its rootfs and execs are still appraised against the approved ones. */
	rootfs_event(&ev, "c1", APP_MANIFEST);
	expect_pass(&r, &ev);
	exec_event(&ev, "c1", "/wrap.sh", d44);
	expect_one(&r, &ev, "exec-unknown",
	           "web/app (id c1): /wrap.sh (sha256:" HEX44 ") is not in the approved rootfs");
	dg_containers_free(r.s);
	dg_workload_free(w);
}
END_TEST

START_TEST(test_rootfs_changed)
{
	struct dg_workload *w = web_workload();
	const struct dg_workload *ws[] = {w};
	struct round r;
	struct event ev;
	char *record, approved_hex[65], drifted_hex[65], reused[DG_REASON_DETAIL_MAX];
	uint8_t approved[32];
	size_t len;

	sha256sum(APP_MANIFEST, strlen(APP_MANIFEST), approved);
	for (int i = 0; i < 32; i++)
		snprintf(approved_hex + 2 * i, 3, "%02x", approved[i]);
	round_init(&r, ws, 1);
	record = record_for("web", "app", "/bin/app", &len);
	/* The agent sent the manifest it logged: the files are named. */
	creation_event(&ev, "c1", record, len);
	expect_pass(&r, &ev);
	r.sent.text = APP_MANIFEST_DRIFTED;
	rootfs_event(&ev, "c1", APP_MANIFEST_DRIFTED);
	ck_assert_int_eq(appraise(&r, &ev), DG_OK);
	ck_assert_uint_eq(r.n, 2);
	ck_assert_str_eq(r.reasons[0].code, "file-changed");
	ck_assert_str_eq(r.reasons[0].detail, "web/app (id c1): /bin/app: sha256:111111111111.. "
	                                      "-> sha256:444444444444..");
	ck_assert_str_eq(r.reasons[1].code, "file-added");
	ck_assert_str_eq(r.reasons[1].detail,
	                 "web/app (id c1): /bin/extra (sha256:444444444444.., mode 100755)");
	/* Execs follow the approved manifest, not the agent's. */
	exec_event(&ev, "c1", "/bin/extra", d44);
	expect_one(&r, &ev, "exec-unknown",
	           "web/app (id c1): /bin/extra (sha256:" HEX44 ") is not in the approved rootfs");
	/* A second rootfs for the same container. */
	rootfs_event(&ev, "c1", APP_MANIFEST);
	reused_rootfs_detail("c1", APP_MANIFEST_DRIFTED, reused, sizeof reused);
	expect_one(&r, &ev, "container-reused", reused);

	/* A manifest that does not hash to the logged digest, then none at all. */
	rootfs_event(&ev, "c2", APP_MANIFEST_DRIFTED);
	for (int i = 0; i < 32; i++)
		snprintf(drifted_hex + 2 * i, 3, "%02x", ev.digest[i]);
	const char *problems[] = {"the manifest sent does not match the logged digest",
	                          "no manifest was sent"};
	const char *sent[] = {APP_MANIFEST, NULL};
	const char *ids[] = {"c2", "c3"};
	for (int i = 0; i < 2; i++) {
		char want[DG_REASON_DETAIL_MAX];
		creation_event(&ev, ids[i], record, len);
		expect_pass(&r, &ev);
		r.sent.text = sent[i];
		rootfs_event(&ev, ids[i], APP_MANIFEST_DRIFTED);
		snprintf(want, sizeof want, "web/app (id %s): rootfs sha256:%s -> sha256:%s (%s)",
		         ids[i], approved_hex, drifted_hex, problems[i]);
		expect_one(&r, &ev, "rootfs-changed", want);
	}
	free(record);
	dg_containers_free(r.s);
	dg_workload_free(w);
}
END_TEST

START_TEST(test_reused_and_malformed)
{
	struct dg_workload *w = web_workload();
	const struct dg_workload *ws[] = {w};
	struct round r;
	struct event ev;
	char *record, *other;
	size_t len, other_len;

	round_init(&r, ws, 1);
	start_container(&r, "c1", "app", "/bin/app", APP_MANIFEST);
	other = record_for("web", "db", "/usr/bin/db", &other_len);
	creation_event(&ev, "c1", other, other_len);
	expect_one(&r, &ev, "container-reused", "container c1 announced twice (first as web/app)");
	/* The first announcement still holds. */
	exec_event(&ev, "c1", "/bin/app", d11);
	expect_pass(&r, &ev);

	record = record_for("web", "db", "/usr/bin/db", &len);
	/* Malformed events change nothing: c2 stays unknown. */
	creation_event(&ev, "c2", record, len);
	ev.e.template_id = DG_TEMPLATE_IMA_NG;
	ck_assert_int_eq(appraise(&r, &ev), DG_ERR_FORMAT);
	creation_event(&ev, "c2", record, len);
	ev.digest[0] ^= 1; /* not the buffer's hash */
	ck_assert_int_eq(appraise(&r, &ev), DG_ERR_FORMAT);
	creation_event(&ev, "c2", record, len - 1);
	ck_assert_int_eq(appraise(&r, &ev), DG_ERR_FORMAT);
	creation_event(&ev, "c2", record, len);
	ev.e.hash_alg = "sha1";
	ck_assert_int_eq(appraise(&r, &ev), DG_ERR_FORMAT);
	creation_event(&ev, "c2", record, len);
	ev.e.violation = true;
	ck_assert_int_eq(appraise(&r, &ev), DG_ERR_FORMAT);
	exec_event(&ev, "c2", "/usr/bin/db", d22);
	ev.e.path_len += 1; /* an embedded NUL */
	ck_assert_int_eq(appraise(&r, &ev), DG_ERR_FORMAT);
	exec_event(&ev, "c2:x", "/usr/bin/db", d22);
	ck_assert_int_eq(appraise(&r, &ev), DG_ERR_FORMAT);
	ck_assert_uint_eq(r.n, 0);
	exec_event(&ev, "c2", "/usr/bin/db", d22);
	ck_assert_int_eq(appraise(&r, &ev), DG_OK);
	ck_assert_str_eq(r.reasons[0].code, "unknown-container");
	/* Ordinary file entries are not for this function. */
	snprintf(ev.path, sizeof ev.path, "/usr/bin/db");
	event_finish(&ev, DG_TEMPLATE_IMA_NG);
	ck_assert_int_eq(appraise(&r, &ev), DG_ERR_INVAL);
	free(record);
	free(other);
	dg_containers_free(r.s);
	dg_workload_free(w);
}
END_TEST

/* Reasons are appended after the caller's and never past max. */
START_TEST(test_reason_bounds)
{
	struct dg_workload *w = web_workload();
	const struct dg_workload *ws[] = {w};
	struct dg_containers *s;
	struct dg_reason reasons[3];
	struct event ev;
	struct sent sent = {APP_MANIFEST_DRIFTED};
	char *record;
	size_t len, n;

	ck_assert_int_eq(dg_containers_new(&s), DG_OK);
	record = record_for("web", "app", "/bin/app", &len);
	creation_event(&ev, "c1", record, len);
	n = 0;
	ck_assert_int_eq(dg_containers_appraise(s, ws, 1, AGENT, &ev.e, sent_manifest, &sent,
	                                        reasons, 3, &n),
	                 DG_OK);
	ck_assert_uint_eq(n, 0);
	rootfs_event(&ev, "c1", APP_MANIFEST_DRIFTED);
	memset(reasons, 0, sizeof reasons);
	dg_reason_set(&reasons[0], "earlier", "kept");
	dg_reason_set(&reasons[1], "earlier", "kept too");
	n = 2;
	ck_assert_int_eq(dg_containers_appraise(s, ws, 1, AGENT, &ev.e, sent_manifest, &sent,
	                                        reasons, 3, &n),
	                 DG_OK);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(reasons[1].detail, "kept too");
	ck_assert_str_eq(reasons[2].code, "file-changed");
	/* With no room the event is still recorded: a repeat is "reused". */
	exec_event(&ev, "c1", "/bin/nope", d44);
	ck_assert_int_eq(dg_containers_appraise(s, ws, 1, AGENT, &ev.e, sent_manifest, &sent,
	                                        reasons, 3, &n),
	                 DG_OK);
	ck_assert_uint_eq(n, 3);
	rootfs_event(&ev, "c1", APP_MANIFEST);
	n = 0;
	ck_assert_int_eq(dg_containers_appraise(s, ws, 1, AGENT, &ev.e, sent_manifest, &sent,
	                                        reasons, 3, &n),
	                 DG_OK);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(reasons[0].code, "container-reused");
	free(record);
	/* No array at all: a changed spec is registered, nothing written. */
	record = record_for("web", "app", "/wrap.sh", &len);
	creation_event(&ev, "c2", record, len);
	n = 0;
	ck_assert_int_eq(
		dg_containers_appraise(s, ws, 1, AGENT, &ev.e, sent_manifest, &sent, NULL, 0, &n),
		DG_OK);
	ck_assert_uint_eq(n, 0);
	exec_event(&ev, "c2", "/bin/app", d11);
	ck_assert_int_eq(dg_containers_appraise(s, ws, 1, AGENT, &ev.e, sent_manifest, &sent,
	                                        reasons, 3, &n),
	                 DG_OK);
	ck_assert_uint_eq(n, 0); /* known, and /bin/app is approved */
	free(record);
	dg_containers_free(s);
	dg_workload_free(w);
}
END_TEST

static double
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

START_TEST(test_clone_and_table_bound)
{
	struct dg_workload *w = web_workload();
	const struct dg_workload *ws[] = {w};
	struct dg_containers *clone = NULL, *orig;
	struct round r;
	struct event ev;
	char *record, reused[DG_REASON_DETAIL_MAX];
	size_t len;

	round_init(&r, ws, 1);
	start_container(&r, "c1", "app", "/bin/app", APP_MANIFEST);
	/* c3 is created but its rootfs not yet announced. */
	record = record_for("web", "app", "/bin/app", &len);
	creation_event(&ev, "c3", record, len);
	expect_pass(&r, &ev);
	ck_assert_int_eq(dg_containers_clone(r.s, &clone), DG_OK);
	orig = r.s;
	/* The clone learns c2 and c3's rootfs; the original does not. */
	r.s = clone;
	start_container(&r, "c2", "db", "/usr/bin/db", DB_MANIFEST);
	rootfs_event(&ev, "c3", APP_MANIFEST);
	expect_pass(&r, &ev);
	reused_rootfs_detail("c1", APP_MANIFEST, reused, sizeof reused);
	rootfs_event(&ev, "c1", APP_MANIFEST);
	expect_one(&r, &ev, "container-reused", reused);
	r.s = orig;
	exec_event(&ev, "c2", "/usr/bin/db", d22);
	ck_assert_int_eq(appraise(&r, &ev), DG_OK);
	ck_assert_str_eq(r.reasons[0].code, "unknown-container");
	rootfs_event(&ev, "c1", APP_MANIFEST);
	expect_one(&r, &ev, "container-reused", reused);
	rootfs_event(&ev, "c3", APP_MANIFEST);
	expect_pass(&r, &ev);
	/* The clone owns its records: it outlives the original. */
	dg_containers_free(orig);
	r.s = clone;
	exec_event(&ev, "c1", "/bin/app", d11);
	expect_pass(&r, &ev);
	exec_event(&ev, "c2", "/usr/bin/db", d22);
	expect_pass(&r, &ev);
	dg_containers_free(clone);

	/* 4096 containers per agent; the next one is refused and not recorded. */
	ck_assert_int_eq(dg_containers_new(&r.s), DG_OK);
	creation_event(&ev, "x", record, len);
	size_t failures = 0;
	double t0 = now_ms();
	for (int i = 0; i < 4096; i++) {
		snprintf(ev.path, sizeof ev.path, DG_EVENT_CONTAINER "id%d", i);
		ev.e.path_len = strlen(ev.path);
		failures += appraise(&r, &ev) != DG_OK || r.n != 0;
	}
	double t1 = now_ms();
	ck_assert_uint_eq(failures, 0);
	snprintf(ev.path, sizeof ev.path, DG_EVENT_CONTAINER "one-more");
	ev.e.path_len = strlen(ev.path);
	ck_assert_int_eq(appraise(&r, &ev), DG_ERR_TOOBIG);
	exec_event(&ev, "one-more", "/bin/app", d11);
	ck_assert_int_eq(appraise(&r, &ev), DG_OK);
	ck_assert_str_eq(r.reasons[0].code, "unknown-container");
	exec_event(&ev, "id4095", "/bin/app", d11);
	expect_pass(&r, &ev);
	double t2 = now_ms();
	ck_assert_int_eq(dg_containers_clone(r.s, &clone), DG_OK);
	double t3 = now_ms();
	fprintf(stderr, "workload: 4096 creations appraised in %.1f ms, clone of 4096 in %.1f ms\n",
	        t1 - t0, t3 - t2);
	dg_containers_free(r.s);
	r.s = clone;
	exec_event(&ev, "id0", "/bin/app", d11);
	expect_pass(&r, &ev);
	dg_containers_free(clone);
	free(record);
	dg_workload_free(w);
}
END_TEST

/* ---- durable form of the state ---- */

/* doc with the first occurrence of from replaced by to (malloc'd, *len updated). */
static uint8_t *
replaced(const uint8_t *doc, size_t *len, const char *from, const char *to)
{
	size_t from_len = strlen(from), to_len = strlen(to), at;
	uint8_t *hit = memmem(doc, *len, from, from_len), *out;

	ck_assert_msg(hit != NULL, "'%s' not in the document", from);
	at = (size_t)(hit - doc);
	out = malloc(*len - from_len + to_len + 1);
	ck_assert_ptr_nonnull(out);
	memcpy(out, doc, at);
	memcpy(out + at, to, to_len);
	memcpy(out + at + to_len, doc + at + from_len, *len - at - from_len);
	*len = *len - from_len + to_len;
	return out;
}

static int
decode_replaced(const uint8_t *doc, size_t len, const char *from, const char *to)
{
	struct dg_containers *s = NULL;
	uint8_t *bad = replaced(doc, &len, from, to);
	int rc = dg_containers_decode(bad, len, &s);

	ck_assert_msg(rc != DG_OK || s != NULL, "decode said OK without a state");
	dg_containers_free(s);
	free(bad);
	return rc;
}

static void
hex_of(const char *text, char out[65])
{
	uint8_t d[32];
	sha256sum(text, strlen(text), d);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* Three containers: c1 approved with its rootfs, c2 created only, c3 with a changed spec. */
static void
three_containers(struct round *r)
{
	struct event ev;
	size_t len;
	char *record;

	start_container(r, "c1", "app", "/bin/app", APP_MANIFEST);
	record = record_for("web", "db", "/usr/bin/db", &len);
	creation_event(&ev, "c2", record, len);
	expect_pass(r, &ev);
	free(record);
	record = record_for("web", "app", "/wrap.sh", &len);
	creation_event(&ev, "c3", record, len);
	ck_assert_int_eq(appraise(r, &ev), DG_OK);
	ck_assert_str_eq(r->reasons[0].code, "spec-changed");
	free(record);
}

START_TEST(test_encode_round_trip)
{
	struct dg_workload *w = web_workload();
	const struct dg_workload *ws[] = {w};
	struct dg_containers *back = NULL;
	struct round r;
	struct event ev;
	uint8_t *doc = NULL, *again = NULL;
	size_t len = 0, again_len = 0, rec_len;
	char hex[65], line[256], reused[DG_REASON_DETAIL_MAX], *record;

	round_init(&r, ws, 1);
	three_containers(&r);
	ck_assert_int_eq(dg_containers_encode(r.s, &doc, &len), DG_OK);
	/* The layout as documented, the digest computed by sha256sum. */
	ck_assert_int_eq(memcmp(doc, "driftgate-containers 1 3\n", 25), 0);
	hex_of(APP_MANIFEST, hex);
	record = record_for("web", "app", "/bin/app", &rec_len);
	snprintf(line, sizeof line, "\ncontainer c1 %s %zu\n", hex, rec_len);
	ck_assert_ptr_nonnull(memmem(doc, len, line, strlen(line)));
	ck_assert_ptr_nonnull(memmem(doc, len, record, rec_len));
	free(record);
	ck_assert_ptr_nonnull(memmem(doc, len, "\ncontainer c2 - ", 16));

	/* Decoded, it encodes to the same bytes... */
	ck_assert_int_eq(dg_containers_decode(doc, len, &back), DG_OK);
	ck_assert_int_eq(dg_containers_encode(back, &again, &again_len), DG_OK);
	ck_assert_uint_eq(again_len, len);
	ck_assert_int_eq(memcmp(again, doc, len), 0);
	free(again);
	dg_containers_free(r.s);
	/* ...and appraises exactly as the original would. */
	r.s = back;
	exec_event(&ev, "c1", "/bin/app", d11);
	expect_pass(&r, &ev);
	reused_rootfs_detail("c1", APP_MANIFEST, reused, sizeof reused);
	rootfs_event(&ev, "c1", APP_MANIFEST);
	expect_one(&r, &ev, "container-reused", reused);
	rootfs_event(&ev, "c2", DB_MANIFEST);
	expect_pass(&r, &ev);
	record = record_for("web", "db", "/usr/bin/db", &rec_len);
	creation_event(&ev, "c3", record, rec_len);
	expect_one(&r, &ev, "container-reused", "container c3 announced twice (first as web/app)");
	free(record);
	exec_event(&ev, "c9", "/bin/app", d11);
	ck_assert_int_eq(appraise(&r, &ev), DG_OK);
	ck_assert_str_eq(r.reasons[0].code, "unknown-container");
	dg_containers_free(r.s);
	free(doc);

	/* The empty state. */
	ck_assert_int_eq(dg_containers_new(&r.s), DG_OK);
	ck_assert_int_eq(dg_containers_encode(r.s, &doc, &len), DG_OK);
	ck_assert_uint_eq(len, 25);
	ck_assert_int_eq(memcmp(doc, "driftgate-containers 1 0\n", len), 0);
	dg_containers_free(r.s);
	ck_assert_int_eq(dg_containers_decode(doc, len, &r.s), DG_OK);
	exec_event(&ev, "c1", "/bin/app", d11);
	ck_assert_int_eq(appraise(&r, &ev), DG_OK);
	ck_assert_str_eq(r.reasons[0].code, "unknown-container");
	dg_containers_free(r.s);
	free(doc);
	dg_workload_free(w);
}
END_TEST

START_TEST(test_decode_rejects)
{
	struct dg_workload *w = web_workload();
	const struct dg_workload *ws[] = {w};
	struct dg_containers *s = NULL;
	struct round r;
	uint8_t *doc = NULL, *copy, *again;
	size_t len = 0, again_len, c2_len;
	char hex[65], upper[65], from[128], to[512], id[DG_CONTAINER_ID_MAX + 2];
	unsigned seed = 5;

	round_init(&r, ws, 1);
	three_containers(&r);
	ck_assert_int_eq(dg_containers_encode(r.s, &doc, &len), DG_OK);
	dg_containers_free(r.s);
	hex_of(APP_MANIFEST, hex);

	/* Every cut is an error, including cuts at a container boundary. */
	for (size_t cut = 0; cut < len; cut++) {
		int rc = dg_containers_decode(doc, cut, &s);
		ck_assert_msg(rc != DG_OK, "a document cut at %zu of %zu was accepted", cut, len);
	}
	/* Header and count. */
	ck_assert_int_eq(decode_replaced(doc, len, "containers 1 3", "containers 2 3"),
	                 DG_ERR_FORMAT);
	ck_assert_int_eq(decode_replaced(doc, len, "containers 1 3", "containers 1 03"),
	                 DG_ERR_FORMAT);
	ck_assert_int_eq(decode_replaced(doc, len, "containers 1 3", "containers 1 4"),
	                 DG_ERR_TRUNCATED);
	ck_assert_int_eq(decode_replaced(doc, len, "containers 1 3", "containers 1 2"),
	                 DG_ERR_TRAILING);
	ck_assert_int_eq(decode_replaced(doc, len, "containers 1 3", "containers 1 4097"),
	                 DG_ERR_TOOBIG);
	ck_assert_int_eq(decode_replaced(doc, len, "containers 1 3",
	                                 "containers 1 99999999999999999999999"),
	                 DG_ERR_TOOBIG);
	ck_assert_int_eq(decode_replaced(doc, len, "containers 1 3", "containers 1 -3"),
	                 DG_ERR_FORMAT);
	/* Ids: charset, length, order, uniqueness. */
	ck_assert_int_eq(decode_replaced(doc, len, "container c1 ", "container c:1 "),
	                 DG_ERR_FORMAT);
	ck_assert_int_eq(decode_replaced(doc, len, "container c1 ", "container  "), DG_ERR_FORMAT);
	memset(id, 'a', DG_CONTAINER_ID_MAX + 1);
	id[DG_CONTAINER_ID_MAX + 1] = '\0';
	snprintf(to, sizeof to, "container %s ", id);
	ck_assert_int_eq(decode_replaced(doc, len, "container c1 ", to), DG_ERR_FORMAT);
	ck_assert_int_eq(decode_replaced(doc, len, "container c1 ", "container c4 "),
	                 DG_ERR_FORMAT); /* c4 before c2 */
	ck_assert_int_eq(decode_replaced(doc, len, "container c2 ", "container c1 "),
	                 DG_ERR_FORMAT); /* duplicate */
	/* Digest: case, length, hex. */
	for (int i = 0; i < 64; i++)
		upper[i] = (char)(hex[i] >= 'a' ? hex[i] - 'a' + 'A' : hex[i]);
	upper[64] = '\0';
	ck_assert_int_eq(decode_replaced(doc, len, hex, upper), DG_ERR_FORMAT);
	snprintf(from, sizeof from, "%s ", hex);
	snprintf(to, sizeof to, "%.63s ", hex);
	ck_assert_int_eq(decode_replaced(doc, len, from, to), DG_ERR_FORMAT);
	snprintf(to, sizeof to, "%.63sg ", hex);
	ck_assert_int_eq(decode_replaced(doc, len, from, to), DG_ERR_FORMAT);
	ck_assert_int_eq(decode_replaced(doc, len, "container c2 - ", "container c2 + "),
	                 DG_ERR_FORMAT);
	/* Record lengths: zero, leading zero, past the bound, one too many. */
	ck_assert_int_eq(decode_replaced(doc, len, "container c2 - ", "container c2 - 0"),
	                 DG_ERR_FORMAT);
	free(record_for("web", "db", "/usr/bin/db", &c2_len));
	snprintf(from, sizeof from, "container c2 - %zu\n", c2_len);
	snprintf(to, sizeof to, "container c2 - %zu\n", c2_len + 1);
	ck_assert_int_eq(decode_replaced(doc, len, from, to), DG_ERR_FORMAT);
	snprintf(to, sizeof to, "container c2 - %zu\n", c2_len - 1);
	ck_assert_int_eq(decode_replaced(doc, len, from, to), DG_ERR_FORMAT);
	snprintf(to, sizeof to, "container c2 - 1%zu\n", c2_len);
	ck_assert_int_eq(decode_replaced(doc, len, from, to), DG_ERR_TRUNCATED);
	ck_assert_int_eq(decode_replaced(doc, len, "container c2 - ", "container c2 - 99999999"),
	                 DG_ERR_TOOBIG);
	/* A record that is not canonical. */
	ck_assert_int_eq(decode_replaced(doc, len, "driftgate-container 1\n", "driftgate-container 2\n"),
	                 DG_ERR_FORMAT);
	/* Bytes after the last container; a length past the bound is refused unread. */
	copy = malloc(len + 1);
	ck_assert_ptr_nonnull(copy);
	memcpy(copy, doc, len);
	copy[len] = '\n';
	ck_assert_int_eq(dg_containers_decode(copy, len + 1, &s), DG_ERR_TRAILING);
	ck_assert_int_eq(dg_containers_decode(copy, DG_CONTAINERS_MAX_ENCODED + 1, &s),
	                 DG_ERR_TOOBIG);
	ck_assert_int_eq(dg_containers_decode((const uint8_t *)"garbage", 7, &s),
	                 DG_ERR_TRUNCATED);

	/* Random single-byte changes: never a crash (ASan), and anything accepted is
	 * canonical, i.e. encodes back to exactly the bytes read. */
	size_t accepted = 0;
	for (int i = 0; i < 3000; i++) {
		memcpy(copy, doc, len);
		copy[rand_r(&seed) % len] = (uint8_t)rand_r(&seed);
		if (dg_containers_decode(copy, len, &s) != DG_OK)
			continue;
		accepted++;
		ck_assert_int_eq(dg_containers_encode(s, &again, &again_len), DG_OK);
		ck_assert_msg(again_len == len && memcmp(again, copy, len) == 0,
		              "a changed document decoded to a state that encodes differently");
		free(again);
		dg_containers_free(s);
	}
	fprintf(stderr, "workload: %zu of 3000 single-byte changes still decode (canonically)\n",
	        accepted);
	free(copy);
	free(doc);
	dg_workload_free(w);
}
END_TEST

static Suite *
workload_suite(void)
{
	Suite *s = suite_create("workload");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_classify);
	tcase_add_test(tc, test_parse_accessors);
	tcase_add_test(tc, test_parse_errors);
	tcase_add_test(tc, test_set_container);
	tcase_add_test(tc, test_approved_and_exec_reasons);
	tcase_add_test(tc, test_unexpected_container);
	tcase_add_test(tc, test_spec_changed);
	tcase_add_test(tc, test_rootfs_changed);
	tcase_add_test(tc, test_reused_and_malformed);
	tcase_add_test(tc, test_reason_bounds);
	tcase_add_test(tc, test_clone_and_table_bound);
	tcase_add_test(tc, test_encode_round_trip);
	tcase_add_test(tc, test_decode_rejects);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(workload_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
