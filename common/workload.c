/*
 * Workloads and the appraisal of container events.
 *
 * A workload holds its approved containers by name, each with its parsed
 * record and manifest. The per-agent state is an array of observed containers
 * sorted by id (binary search; insertion shifts, bounded by
 * CONTAINERS_MAX). An observed container keeps its record, whose workload and
 * name fields say which approved container it claims to be; that claim is
 * resolved against the workloads of the current call, so state never points
 * into workloads that may since have been reloaded.
 */
#include "driftgate/workload.h"

#include <fnmatch.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driftgate/container.h"
#include "driftgate/err.h"
#include "driftgate/manifest.h"
#include "driftgate/policy.h"
#include "driftgate/text.h"

#define HEADER_KEYWORD "driftgate-workload"
#define HEADER_VERSION "1"
#define WORKLOAD_MAX_TEXT (1024u * 1024)
#define WORKLOAD_MAX_NAME 64
#define WORKLOAD_MAX_CONTAINERS 256
/* Containers one agent may have announced; more is refused, not forgotten. */
#define CONTAINERS_MAX DG_CONTAINERS_MAX
#define DIGEST_LEN 32
/* How much of an offending token an error message quotes. */
#define ERR_QUOTE_MAX 40

struct approved_container {
	char name[DG_CONTAINER_MAX_NAME + 1];
	struct dg_container *record; /* NULL until dg_workload_set_container */
	struct dg_manifest *manifest;
	uint8_t manifest_digest[DIGEST_LEN]; /* SHA-256 of the manifest text */
};

struct dg_workload {
	char name[WORKLOAD_MAX_NAME + 1];
	char **agents;
	size_t n_agents;
	struct approved_container *containers;
	size_t n_containers;
	char **secrets;
	size_t n_secrets;
	unsigned lease_s; /* 0 until a lease line: DG_LEASE_DEFAULT_S */
};

struct observed_container {
	char id[DG_CONTAINER_ID_MAX + 1];
	struct dg_container *record; /* as logged */
	bool have_rootfs;
	uint8_t rootfs_digest[DIGEST_LEN];
};

struct dg_containers {
	struct observed_container *items; /* sorted by id */
	size_t n_items, cap_items;
};

/* ---- small helpers ---- */

static bool
is_alnum(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool
id_char(char c)
{
	return is_alnum(c) || c == '_' || c == '.' || c == '+' || c == '-';
}

static int
sha256(const void *data, size_t len, uint8_t out[DIGEST_LEN])
{
	return EVP_Digest(data, len, out, NULL, EVP_sha256(), NULL) == 1 ? DG_OK : DG_ERR_CRYPTO;
}

static void
set_err(char *err, size_t err_cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
set_err(char *err, size_t err_cap, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || err_cap == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, err_cap, fmt, ap);
	va_end(ap);
	/* Messages quote workload text: keep them one printable line. */
	for (char *p = err; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = '?';
	}
}

/* ---- event names ---- */

int
dg_event_classify(const char *path, enum dg_event_kind *kind,
                  char id[DG_CONTAINER_ID_MAX + 1], const char **exec_path)
{
	static const struct {
		const char *prefix;
		enum dg_event_kind kind;
	} events[] = {
		{DG_EVENT_CONTAINER, DG_EVENT_KIND_CONTAINER},
		{DG_EVENT_ROOTFS, DG_EVENT_KIND_ROOTFS},
		{DG_EVENT_EXEC, DG_EVENT_KIND_EXEC},
	};
	const char *rest = NULL, *after;
	enum dg_event_kind found = DG_EVENT_NONE;
	size_t id_len = 0;

	*kind = DG_EVENT_NONE;
	id[0] = '\0';
	if (exec_path != NULL)
		*exec_path = NULL;
	if (strncmp(path, DG_EVENT_RESERVED, strlen(DG_EVENT_RESERVED)) != 0)
		return DG_OK;
	for (size_t i = 0; i < sizeof events / sizeof events[0]; i++) {
		if (strncmp(path, events[i].prefix, strlen(events[i].prefix)) == 0) {
			rest = path + strlen(events[i].prefix);
			found = events[i].kind;
			break;
		}
	}
	if (rest == NULL)
		return DG_ERR_FORMAT;
	while (id_len <= DG_CONTAINER_ID_MAX && id_char(rest[id_len]))
		id_len++;
	if (id_len == 0 || id_len > DG_CONTAINER_ID_MAX)
		return DG_ERR_FORMAT;
	after = rest + id_len;
	if (found == DG_EVENT_KIND_EXEC) {
		if (after[0] != ':' ||
		    !(after[1] == '/' || strncmp(after + 1, "volume:/", strlen("volume:/")) == 0))
			return DG_ERR_FORMAT;
	} else if (after[0] != '\0') {
		return DG_ERR_FORMAT;
	}
	memcpy(id, rest, id_len);
	id[id_len] = '\0';
	*kind = found;
	if (exec_path != NULL && found == DG_EVENT_KIND_EXEC)
		*exec_path = after + 1;
	return DG_OK;
}

/* ---- workload files ---- */

struct parse_ctx {
	struct dg_workload *w;
	size_t line;
	bool have_header;
	char *err;
	size_t err_cap;
};

static int
fail(struct parse_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
fail(struct parse_ctx *c, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	set_err(c->err, c->err_cap, "line %zu: %s", c->line, msg);
	return DG_ERR_FORMAT;
}

/* Append a copy of arg to a string list unless it is already there. */
static int
list_add(char ***list, size_t *n, const char *arg, size_t len)
{
	for (size_t i = 0; i < *n; i++) {
		if (strlen((*list)[i]) == len && memcmp((*list)[i], arg, len) == 0)
			return DG_OK;
	}
	char *copy = strndup(arg, len);
	char **grown = copy != NULL ? realloc(*list, (*n + 1) * sizeof *grown) : NULL;
	if (grown == NULL) {
		free(copy);
		return DG_ERR_NOMEM;
	}
	*list = grown;
	(*list)[(*n)++] = copy;
	return DG_OK;
}

static bool
has_blank_or_control(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch <= 0x20 || ch == 0x7f)
			return true;
	}
	return false;
}

static struct approved_container *
container_find(const struct dg_workload *w, const char *name, size_t len)
{
	for (size_t i = 0; i < w->n_containers; i++) {
		const char *have = w->containers[i].name;
		if (strlen(have) == len && memcmp(have, name, len) == 0)
			return &w->containers[i];
	}
	return NULL;
}

static int
parse_container(struct parse_ctx *c, const char *arg, size_t len)
{
	struct dg_workload *w = c->w;
	struct approved_container *grown;

	if (!dg_text_name_valid(arg, len, DG_CONTAINER_MAX_NAME))
		return fail(c, "bad container name (want [A-Za-z0-9._-]{1,%d})",
		            DG_CONTAINER_MAX_NAME);
	if (container_find(w, arg, len) != NULL)
		return fail(c, "duplicate container '%.*s'", (int)len, arg);
	if (w->n_containers == WORKLOAD_MAX_CONTAINERS)
		return fail(c, "more than %d containers", WORKLOAD_MAX_CONTAINERS);
	grown = realloc(w->containers, (w->n_containers + 1) * sizeof *grown);
	if (grown == NULL)
		return DG_ERR_NOMEM;
	w->containers = grown;
	memset(&grown[w->n_containers], 0, sizeof *grown);
	memcpy(grown[w->n_containers].name, arg, len);
	w->n_containers++;
	return DG_OK;
}

static int
parse_line(struct parse_ctx *c, const char *s, size_t len)
{
	struct dg_workload *w = c->w;
	struct dg_text_directive d;
	const char *arg;
	size_t arg_len;

	if (dg_text_directive_split(s, len, &d) != DG_OK)
		return fail(c, "NUL byte");
	if (d.keyword_len == 0)
		return DG_OK;
	arg = d.arg;
	arg_len = d.arg_len;

	switch (dg_text_directive_header(&d, HEADER_KEYWORD, HEADER_VERSION, &c->have_header)) {
	case DG_TEXT_HEADER_OK:
		return DG_OK;
	case DG_TEXT_HEADER_MISSING:
		return fail(c, "missing '" HEADER_KEYWORD " " HEADER_VERSION "' header");
	case DG_TEXT_HEADER_VERSION:
		return fail(c, "unsupported workload version '%.*s'",
		            arg_len > ERR_QUOTE_MAX ? ERR_QUOTE_MAX : (int)arg_len, arg);
	case DG_TEXT_HEADER_REPEATED:
		return fail(c, "repeated header");
	case DG_TEXT_HEADER_BODY:
		break;
	}
#define KW_IS(word) dg_text_directive_is(&d, word)
	if (arg_len == 0 && (KW_IS("name") || KW_IS("agent") || KW_IS("container") ||
	                     KW_IS("secret")))
		return fail(c, "'%.*s' needs an argument", (int)d.keyword_len, d.keyword);
	if (KW_IS("name")) {
		if (w->name[0] != '\0')
			return fail(c, "duplicate name");
		if (!dg_text_name_valid(arg, arg_len, WORKLOAD_MAX_NAME))
			return fail(c, "bad name (want [A-Za-z0-9._-]{1,%d})", WORKLOAD_MAX_NAME);
		memcpy(w->name, arg, arg_len);
		w->name[arg_len] = '\0';
		return DG_OK;
	}
	if (KW_IS("agent")) {
		if (has_blank_or_control(arg, arg_len))
			return fail(c, "agent pattern has blanks or control characters");
		return list_add(&w->agents, &w->n_agents, arg, arg_len);
	}
	if (KW_IS("container"))
		return parse_container(c, arg, arg_len);
	if (KW_IS("secret")) {
		if (!dg_text_name_valid(arg, arg_len, WORKLOAD_MAX_NAME))
			return fail(c, "bad secret name (want [A-Za-z0-9._-]{1,%d})",
			            WORKLOAD_MAX_NAME);
		return list_add(&w->secrets, &w->n_secrets, arg, arg_len);
	}
	if (KW_IS("lease")) {
		const char *why = dg_lease_parse(arg, arg_len, &w->lease_s);
		return why != NULL ? fail(c, "%s", why) : DG_OK;
	}
#undef KW_IS
	return fail(c, "unknown directive '%.*s'",
	            d.keyword_len > ERR_QUOTE_MAX ? ERR_QUOTE_MAX : (int)d.keyword_len, d.keyword);
}

int
dg_workload_parse(const char *text, size_t len, struct dg_workload **out, char *err,
                  size_t err_cap)
{
	struct parse_ctx c = {NULL, 0, false, err, err_cap};
	size_t off = 0;
	int rc;

	if (err != NULL && err_cap > 0)
		err[0] = '\0';
	if (len > WORKLOAD_MAX_TEXT) {
		set_err(err, err_cap, "line 0: workload larger than %u bytes", WORKLOAD_MAX_TEXT);
		return DG_ERR_TOOBIG;
	}
	if ((c.w = calloc(1, sizeof *c.w)) == NULL) {
		rc = DG_ERR_NOMEM;
		goto out;
	}
	while (off < len) {
		const char *nl = memchr(text + off, '\n', len - off);
		size_t line_len = nl != NULL ? (size_t)(nl - (text + off)) : len - off;
		c.line++;
		if ((rc = parse_line(&c, text + off, line_len)) != DG_OK)
			goto out;
		off += line_len + (nl != NULL ? 1 : 0);
	}
	/* End-of-file problems are reported against the last line. */
	if (!c.have_header) {
		rc = fail(&c, "missing '" HEADER_KEYWORD " " HEADER_VERSION "' header");
		goto out;
	}
	if (c.w->name[0] == '\0') {
		rc = fail(&c, "missing 'name'");
		goto out;
	}
	if (c.w->n_agents == 0) {
		rc = fail(&c, "missing 'agent'");
		goto out;
	}
	*out = c.w;
	c.w = NULL;
	rc = DG_OK;
out:
	if (rc == DG_ERR_NOMEM)
		set_err(err, err_cap, "line %zu: out of memory", c.line);
	dg_workload_free(c.w);
	return rc;
}

int
dg_workload_set_container(struct dg_workload *w, const char *name, const char *record,
                          size_t record_len, const char *manifest, size_t manifest_len,
                          char *err, size_t err_cap)
{
	struct approved_container *slot = container_find(w, name, strlen(name));
	struct dg_container *parsed_record = NULL;
	struct dg_manifest *parsed_manifest = NULL;
	uint8_t digest[DIGEST_LEN];
	int rc;

	if (err != NULL && err_cap > 0)
		err[0] = '\0';
	if (slot == NULL) {
		set_err(err, err_cap, "workload %s lists no container '%.*s'", w->name,
		        ERR_QUOTE_MAX, name);
		rc = DG_ERR_NOTFOUND;
		goto out;
	}
	if ((rc = dg_container_parse(record, record_len, &parsed_record)) != DG_OK) {
		set_err(err, err_cap,
		        "container %s: record is not a canonical container record (%s)", name,
		        dg_strerror(rc));
		goto out;
	}
	if (strcmp(dg_container_workload(parsed_record), w->name) != 0 ||
	    strcmp(dg_container_name(parsed_record), name) != 0) {
		set_err(err, err_cap, "container %s: record is for %.*s/%.*s, not %s/%s", name,
		        ERR_QUOTE_MAX, dg_container_workload(parsed_record), ERR_QUOTE_MAX,
		        dg_container_name(parsed_record), w->name, name);
		rc = DG_ERR_FORMAT;
		goto out;
	}
	if ((rc = dg_manifest_parse(manifest, manifest_len, &parsed_manifest)) != DG_OK) {
		set_err(err, err_cap, "container %s: malformed manifest (%s)", name,
		        dg_strerror(rc));
		goto out;
	}
	if ((rc = sha256(manifest, manifest_len, digest)) != DG_OK)
		goto out;
	dg_container_free(slot->record);
	dg_manifest_free(slot->manifest);
	slot->record = parsed_record;
	slot->manifest = parsed_manifest;
	memcpy(slot->manifest_digest, digest, DIGEST_LEN);
	parsed_record = NULL;
	parsed_manifest = NULL;
out:
	dg_container_free(parsed_record);
	dg_manifest_free(parsed_manifest);
	return rc;
}

int
dg_workload_check_complete(const struct dg_workload *w, char *err, size_t err_cap)
{
	for (size_t i = 0; i < w->n_containers; i++) {
		if (w->containers[i].record == NULL) {
			set_err(err, err_cap,
			        "workload %s: container %s has no record and manifest", w->name,
			        w->containers[i].name);
			return DG_ERR_STATE;
		}
	}
	return DG_OK;
}

void
dg_workload_free(struct dg_workload *w)
{
	if (w == NULL)
		return;
	for (size_t i = 0; i < w->n_agents; i++)
		free(w->agents[i]);
	free(w->agents);
	for (size_t i = 0; i < w->n_containers; i++) {
		dg_container_free(w->containers[i].record);
		dg_manifest_free(w->containers[i].manifest);
	}
	free(w->containers);
	for (size_t i = 0; i < w->n_secrets; i++)
		free(w->secrets[i]);
	free(w->secrets);
	free(w);
}

const char *
dg_workload_name(const struct dg_workload *w)
{
	return w->name;
}

bool
dg_workload_applies(const struct dg_workload *w, const char *agent_id)
{
	for (size_t i = 0; i < w->n_agents; i++) {
		if (fnmatch(w->agents[i], agent_id, 0) == 0)
			return true;
	}
	return false;
}

size_t
dg_workload_container_count(const struct dg_workload *w)
{
	return w->n_containers;
}

const char *
dg_workload_container_name(const struct dg_workload *w, size_t i)
{
	return i < w->n_containers ? w->containers[i].name : NULL;
}

size_t
dg_workload_secret_count(const struct dg_workload *w)
{
	return w->n_secrets;
}

const char *
dg_workload_secret(const struct dg_workload *w, size_t i)
{
	return i < w->n_secrets ? w->secrets[i] : NULL;
}

bool
dg_workload_has_secret(const struct dg_workload *w, const char *name)
{
	for (size_t i = 0; i < w->n_secrets; i++)
		if (strcmp(w->secrets[i], name) == 0)
			return true;
	return false;
}

unsigned
dg_workload_lease_s(const struct dg_workload *w)
{
	return w->lease_s != 0 ? w->lease_s : DG_LEASE_DEFAULT_S;
}

/* ---- per-agent state ---- */

int
dg_containers_new(struct dg_containers **out)
{
	struct dg_containers *s = calloc(1, sizeof *s);
	if (s == NULL)
		return DG_ERR_NOMEM;
	*out = s;
	return DG_OK;
}

void
dg_containers_free(struct dg_containers *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n_items; i++)
		dg_container_free(s->items[i].record);
	free(s->items);
	free(s);
}

size_t
dg_containers_count(const struct dg_containers *s)
{
	return s->n_items;
}

/* Records have no copy function: a copy is the canonical text parsed again. */
static int
record_copy(const struct dg_container *src, struct dg_container **out)
{
	char *text = NULL;
	size_t len = 0;
	int rc = dg_container_encode(src, &text, &len);

	if (rc == DG_OK)
		rc = dg_container_parse(text, len, out);
	free(text);
	return rc;
}

int
dg_containers_clone(const struct dg_containers *src, struct dg_containers **out)
{
	struct dg_containers *s = calloc(1, sizeof *s);
	int rc;

	if (s == NULL)
		return DG_ERR_NOMEM;
	if (src->n_items > 0) {
		if ((s->items = calloc(src->n_items, sizeof *s->items)) == NULL) {
			rc = DG_ERR_NOMEM;
			goto out;
		}
		s->cap_items = src->n_items;
	}
	for (size_t i = 0; i < src->n_items; i++) {
		s->items[i] = src->items[i];
		s->items[i].record = NULL;
		s->n_items++;
		if ((rc = record_copy(src->items[i].record, &s->items[i].record)) != DG_OK)
			goto out;
	}
	*out = s;
	s = NULL;
	rc = DG_OK;
out:
	dg_containers_free(s);
	return rc;
}

/* ---- durable form of the per-agent state ---- */

#define ENCODED_HEADER "driftgate-containers 1 "
#define ENCODED_ITEM "container "

/* A growing output buffer; the first failure sticks in rc. */
struct outbuf {
	uint8_t *data;
	size_t len, cap;
	int rc;
};

static void
out_put(struct outbuf *o, const void *data, size_t len)
{
	if (o->rc != DG_OK)
		return;
	/* The first write allocates, even of nothing: memcpy may not be given NULL. */
	if (o->data == NULL || len > o->cap - o->len) {
		size_t cap = o->cap == 0 ? 4096 : o->cap;
		while (len > cap - o->len)
			cap *= 2;
		uint8_t *grown = realloc(o->data, cap);
		if (grown == NULL) {
			o->rc = DG_ERR_NOMEM;
			return;
		}
		o->data = grown;
		o->cap = cap;
	}
	memcpy(o->data + o->len, data, len);
	o->len += len;
}

int
dg_containers_encode(const struct dg_containers *s, uint8_t **out, size_t *len)
{
	struct outbuf o = {NULL, 0, 0, DG_OK};
	char line[DG_CONTAINERS_ENCODED_LINE], hex[2 * DIGEST_LEN + 1];
	char *record = NULL;
	size_t record_len = 0;
	int n;

	if (s == NULL || out == NULL || len == NULL)
		return DG_ERR_INVAL;
	n = snprintf(line, sizeof line, ENCODED_HEADER "%zu\n", s->n_items);
	out_put(&o, line, (size_t)n);
	for (size_t i = 0; i < s->n_items && o.rc == DG_OK; i++) {
		const struct observed_container *c = &s->items[i];
		if ((o.rc = dg_container_encode(c->record, &record, &record_len)) != DG_OK)
			break;
		if (c->have_rootfs)
			dg_text_hex_encode(c->rootfs_digest, DIGEST_LEN, hex);
		else
			snprintf(hex, sizeof hex, "-");
		n = snprintf(line, sizeof line, ENCODED_ITEM "%s %s %zu\n", c->id, hex, record_len);
		out_put(&o, line, (size_t)n);
		out_put(&o, record, record_len);
		out_put(&o, "\n", 1);
		free(record);
		record = NULL;
	}
	if (o.rc != DG_OK) {
		free(o.data);
		return o.rc;
	}
	*out = o.data;
	*len = o.len;
	return DG_OK;
}

/* Decimal without sign or leading zeros, at most max. */
static int
parse_decimal(const char *s, size_t n, size_t max, size_t *out)
{
	size_t v = 0;

	if (n == 0 || (n > 1 && s[0] == '0'))
		return DG_ERR_FORMAT;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return DG_ERR_FORMAT;
	}
	for (size_t i = 0; i < n; i++) {
		v = v * 10 + (size_t)(s[i] - '0');
		if (v > max) /* before it could overflow */
			return DG_ERR_TOOBIG;
	}
	*out = v;
	return DG_OK;
}

/* The next line of in[*off..len), without its '\n'; lines are short by format. */
static int
next_line(const uint8_t *in, size_t len, size_t *off, const char **line, size_t *line_len)
{
	size_t room = len - *off < DG_CONTAINERS_ENCODED_LINE ? len - *off
	                                                      : DG_CONTAINERS_ENCODED_LINE;
	const uint8_t *nl = memchr(in + *off, '\n', room);

	if (nl == NULL)
		return room < DG_CONTAINERS_ENCODED_LINE ? DG_ERR_TRUNCATED : DG_ERR_FORMAT;
	*line = (const char *)in + *off;
	*line_len = (size_t)(nl - (in + *off));
	*off += *line_len + 1;
	return DG_OK;
}

/* "container <id> <hex|-> <length>" into c (id, rootfs) and *record_len. */
static int
parse_item_line(const char *s, size_t n, struct observed_container *c, size_t *record_len)
{
	const size_t kw = strlen(ENCODED_ITEM);
	const char *id, *digest, *length, *end = s + n;
	size_t id_len, digest_len;

	if (n < kw || memcmp(s, ENCODED_ITEM, kw) != 0)
		return DG_ERR_FORMAT;
	id = s + kw;
	if ((digest = memchr(id, ' ', (size_t)(end - id))) == NULL)
		return DG_ERR_FORMAT;
	id_len = (size_t)(digest - id);
	digest++;
	if ((length = memchr(digest, ' ', (size_t)(end - digest))) == NULL)
		return DG_ERR_FORMAT;
	digest_len = (size_t)(length - digest);
	length++;
	if (id_len == 0 || id_len > DG_CONTAINER_ID_MAX)
		return DG_ERR_FORMAT;
	for (size_t i = 0; i < id_len; i++) {
		if (!id_char(id[i]))
			return DG_ERR_FORMAT;
	}
	memcpy(c->id, id, id_len);
	c->id[id_len] = '\0';
	if (digest_len == 1 && digest[0] == '-') {
		c->have_rootfs = false;
	} else if (digest_len == 2 * DIGEST_LEN) {
		/* the encoder writes lower case only */
		if (dg_text_hex_decode(digest, digest_len, c->rootfs_digest, true) != DG_OK)
			return DG_ERR_FORMAT;
		c->have_rootfs = true;
	} else {
		return DG_ERR_FORMAT;
	}
	/* A record always has its header line: length 0 is malformed, not empty. */
	int rc = parse_decimal(length, (size_t)(end - length), DG_CONTAINER_MAX_RECORD, record_len);
	if (rc == DG_OK && *record_len == 0)
		rc = DG_ERR_FORMAT;
	return rc;
}

int
dg_containers_decode(const uint8_t *in, size_t len, struct dg_containers **out)
{
	struct dg_containers *s = NULL;
	struct observed_container item;
	const char *line;
	size_t off = 0, line_len, count, record_len;
	const size_t header = strlen(ENCODED_HEADER);
	int rc;

	if (in == NULL || out == NULL)
		return DG_ERR_INVAL;
	if (len > DG_CONTAINERS_MAX_ENCODED)
		return DG_ERR_TOOBIG;
	if ((rc = next_line(in, len, &off, &line, &line_len)) != DG_OK)
		goto out;
	if (line_len <= header || memcmp(line, ENCODED_HEADER, header) != 0) {
		rc = DG_ERR_FORMAT;
		goto out;
	}
	if ((rc = parse_decimal(line + header, line_len - header, DG_CONTAINERS_MAX, &count)) !=
	    DG_OK)
		goto out;
	if ((rc = dg_containers_new(&s)) != DG_OK)
		goto out;
	if (count > 0) {
		/* count is bounded above, so this allocation is too. */
		if ((s->items = calloc(count, sizeof *s->items)) == NULL) {
			rc = DG_ERR_NOMEM;
			goto out;
		}
		s->cap_items = count;
	}
	for (size_t i = 0; i < count; i++) {
		memset(&item, 0, sizeof item);
		if ((rc = next_line(in, len, &off, &line, &line_len)) != DG_OK ||
		    (rc = parse_item_line(line, line_len, &item, &record_len)) != DG_OK)
			goto out;
		/* Sorted and unique, as observed_insert keeps them: binary search relies on it. */
		if (i > 0 && strcmp(s->items[i - 1].id, item.id) >= 0) {
			rc = DG_ERR_FORMAT;
			goto out;
		}
		if (len - off < record_len + 1) {
			rc = DG_ERR_TRUNCATED;
			goto out;
		}
		if (in[off + record_len] != '\n') {
			rc = DG_ERR_FORMAT;
			goto out;
		}
		if ((rc = dg_container_parse((const char *)in + off, record_len, &item.record)) !=
		    DG_OK) {
			if (rc != DG_ERR_NOMEM)
				rc = DG_ERR_FORMAT;
			goto out;
		}
		off += record_len + 1;
		s->items[s->n_items++] = item;
	}
	if (off != len) {
		rc = DG_ERR_TRAILING;
		goto out;
	}
	*out = s;
	s = NULL;
	rc = DG_OK;
out:
	dg_containers_free(s);
	return rc;
}

/* Index of id, or of where it would be inserted. */
static size_t
observed_lower_bound(const struct dg_containers *s, const char *id)
{
	size_t lo = 0, hi = s->n_items;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(s->items[mid].id, id) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct observed_container *
observed_find(struct dg_containers *s, const char *id)
{
	size_t i = observed_lower_bound(s, id);
	return i < s->n_items && strcmp(s->items[i].id, id) == 0 ? &s->items[i] : NULL;
}

const char *
dg_containers_workload_of(const struct dg_containers *s, const char *id)
{
	size_t i = observed_lower_bound(s, id);
	if (i == s->n_items || strcmp(s->items[i].id, id) != 0)
		return NULL;
	return dg_container_workload(s->items[i].record);
}

/* Takes over record on success. */
static int
observed_insert(struct dg_containers *s, const char *id, struct dg_container *record)
{
	size_t i = observed_lower_bound(s, id);

	if (s->n_items == CONTAINERS_MAX)
		return DG_ERR_TOOBIG;
	if (s->n_items == s->cap_items) {
		size_t cap = s->cap_items == 0 ? 16 : 2 * s->cap_items;
		struct observed_container *grown = realloc(s->items, cap * sizeof *grown);
		if (grown == NULL)
			return DG_ERR_NOMEM;
		s->items = grown;
		s->cap_items = cap;
	}
	memmove(&s->items[i + 1], &s->items[i], (s->n_items - i) * sizeof *s->items);
	memset(&s->items[i], 0, sizeof s->items[i]);
	snprintf(s->items[i].id, sizeof s->items[i].id, "%s", id);
	s->items[i].record = record;
	s->n_items++;
	return DG_OK;
}

/* ---- appraisal ---- */

/* Where appraisal writes its reasons: room for at most max - n more. */
struct reason_sink {
	struct dg_reason *reasons;
	size_t max, n;
};

static struct dg_reason *
sink_next(struct reason_sink *r)
{
	return r->n < r->max ? &r->reasons[r->n++] : NULL;
}

/* The free part of the array, for functions that fill it themselves. */
static struct dg_reason *
sink_rest(const struct reason_sink *r)
{
	return r->n < r->max ? r->reasons + r->n : NULL;
}

static void
add_reason(struct reason_sink *r, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
add_reason(struct reason_sink *r, const char *code, const char *fmt, ...)
{
	char detail[DG_REASON_DETAIL_MAX];
	struct dg_reason *slot = sink_next(r);
	va_list ap;

	if (slot == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof detail, fmt, ap);
	va_end(ap);
	dg_reason_set(slot, code, "%s", detail);
}

/* Put "<workload>/<name> (id <id>): " before reasons[from..r->n). */
static void
prefix_reasons(struct reason_sink *r, size_t from, const char *label)
{
	for (size_t i = from; i < r->n; i++) {
		struct dg_reason old = r->reasons[i];
		dg_reason_set(&r->reasons[i], old.code, "%s: %s", label, old.detail);
	}
}

static void
container_label(const struct observed_container *o, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%s (id %s)", dg_container_workload(o->record),
	         dg_container_name(o->record), o->id);
}

static const struct dg_workload *
workload_find(const struct dg_workload *const *workloads, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(workloads[i]->name, name) == 0)
			return workloads[i];
	}
	return NULL;
}

/* The approved container a record claims to be, or NULL with why filled. */
static const struct approved_container *
approved_for(const struct dg_container *record, const struct dg_workload *const *workloads,
             size_t n_workloads, const char *agent_id, char *why, size_t why_cap)
{
	const char *wl_name = dg_container_workload(record), *name = dg_container_name(record);
	const struct dg_workload *w = workload_find(workloads, n_workloads, wl_name);
	const struct approved_container *c;

	if (w == NULL) {
		snprintf(why, why_cap, "no workload named %s", wl_name);
		return NULL;
	}
	if (!dg_workload_applies(w, agent_id)) {
		snprintf(why, why_cap, "workload %s is not for agent %s", wl_name, agent_id);
		return NULL;
	}
	if ((c = container_find(w, name, strlen(name))) == NULL) {
		snprintf(why, why_cap, "workload %s has no container %s", wl_name, name);
		return NULL;
	}
	if (c->record == NULL) {
		snprintf(why, why_cap, "workload %s has no approved record for %s", wl_name, name);
		return NULL;
	}
	return c;
}

static int
appraise_creation(struct dg_containers *s, const struct dg_workload *const *workloads,
                  size_t n_workloads, const char *agent_id, const char *id,
                  const struct dg_log_entry *e, struct reason_sink *r)
{
	struct dg_container *record = NULL;
	const struct observed_container *known;
	const struct approved_container *approved;
	struct observed_container probe;
	uint8_t digest[DIGEST_LEN];
	size_t from, added = 0;
	char label[DG_REASON_DETAIL_MAX], why[DG_REASON_DETAIL_MAX];
	int rc;

	/* The buffer is the record; the entry's digest must be its hash, as
	 * the kernel's ima-buf entries are. */
	if (e->template_id != DG_TEMPLATE_IMA_BUF || e->extra == NULL) {
		rc = DG_ERR_FORMAT;
		goto out;
	}
	if ((rc = sha256(e->extra, e->extra_len, digest)) != DG_OK)
		goto out;
	if (memcmp(digest, e->digest, DIGEST_LEN) != 0) {
		rc = DG_ERR_FORMAT;
		goto out;
	}
	if ((rc = dg_container_parse((const char *)e->extra, e->extra_len, &record)) != DG_OK)
		goto out;
	if ((known = observed_find(s, id)) != NULL) {
		add_reason(r, "container-reused", "container %s announced twice (first as %s/%s)",
		           id, dg_container_workload(known->record),
		           dg_container_name(known->record));
		rc = DG_OK;
		goto out;
	}
	snprintf(probe.id, sizeof probe.id, "%s", id);
	probe.record = record;
	container_label(&probe, label, sizeof label);
	approved = approved_for(record, workloads, n_workloads, agent_id, why, sizeof why);
	if (approved == NULL) {
		add_reason(r, "unexpected-container", "%s: %s", label, why);
	} else {
		from = r->n;
		if ((rc = dg_container_diff(approved->record, record, sink_rest(r), r->max - r->n,
		                            &added)) != DG_OK)
			goto out;
		r->n += added;
		prefix_reasons(r, from, label);
	}
	if ((rc = observed_insert(s, id, record)) != DG_OK)
		goto out;
	record = NULL;
out:
	dg_container_free(record);
	return rc;
}

/* The agent's manifest for o, if it hashes to the logged digest and parses. */
static const char *
agent_manifest(const struct observed_container *o, const uint8_t logged[DIGEST_LEN],
               dg_manifest_source_fn manifests, void *arg, struct dg_manifest **out)
{
	size_t len = 0;
	const char *text = manifests != NULL ? manifests(o->id, &len, arg) : NULL;
	uint8_t digest[DIGEST_LEN];

	if (text == NULL)
		return "no manifest was sent";
	if (len > DG_MANIFEST_MAX_TEXT || sha256(text, len, digest) != DG_OK ||
	    memcmp(digest, logged, DIGEST_LEN) != 0)
		return "the manifest sent does not match the logged digest";
	if (dg_manifest_parse(text, len, out) != DG_OK)
		return "the manifest sent is malformed";
	return NULL;
}

static int
appraise_rootfs(struct dg_containers *s, const struct dg_workload *const *workloads,
                size_t n_workloads, const char *agent_id, const char *id,
                const struct dg_log_entry *e, dg_manifest_source_fn manifests,
                void *manifests_arg, struct reason_sink *r)
{
	struct observed_container *o = observed_find(s, id);
	const struct approved_container *approved;
	struct dg_manifest *seen = NULL;
	char label[DG_REASON_DETAIL_MAX], why[DG_REASON_DETAIL_MAX];
	char logged_hex[2 * DIGEST_LEN + 1], approved_hex[2 * DIGEST_LEN + 1];
	const char *problem;
	size_t from, added = 0;
	int rc = DG_OK;

	dg_text_hex_encode(e->digest, DIGEST_LEN, logged_hex);
	if (o == NULL) {
		add_reason(r, "unknown-container", "rootfs sha256:%s of unknown container %s",
		           logged_hex, id);
		goto out;
	}
	container_label(o, label, sizeof label);
	if (o->have_rootfs) {
		char first_hex[2 * DIGEST_LEN + 1];
		dg_text_hex_encode(o->rootfs_digest, DIGEST_LEN, first_hex);
		add_reason(r, "container-reused", "%s: rootfs announced twice (first sha256:%s)",
		           label, first_hex);
		goto out;
	}
	approved = approved_for(o->record, workloads, n_workloads, agent_id, why, sizeof why);
	if (approved == NULL) {
		add_reason(r, "rootfs-changed", "%s: rootfs sha256:%s, none approved (%s)", label,
		           logged_hex, why);
	} else if (memcmp(approved->manifest_digest, e->digest, DIGEST_LEN) != 0) {
		dg_text_hex_encode(approved->manifest_digest, DIGEST_LEN, approved_hex);
		problem = agent_manifest(o, e->digest, manifests, manifests_arg, &seen);
		from = r->n;
		if (problem == NULL &&
		    (rc = dg_manifest_diff(approved->manifest, seen, sink_rest(r), r->max - r->n,
		                           &added)) != DG_OK)
			goto out;
		r->n += added;
		prefix_reasons(r, from, label);
		if (problem != NULL)
			add_reason(r, "rootfs-changed", "%s: rootfs sha256:%s -> sha256:%s (%s)",
			           label, approved_hex, logged_hex, problem);
	}
	o->have_rootfs = true;
	memcpy(o->rootfs_digest, e->digest, DIGEST_LEN);
out:
	dg_manifest_free(seen);
	return rc;
}

static void
appraise_exec(struct dg_containers *s, const struct dg_workload *const *workloads,
              size_t n_workloads, const char *agent_id, const char *id, const char *path,
              const struct dg_log_entry *e, struct reason_sink *r)
{
	static const char volume_prefix[] = "volume:";
	const struct observed_container *o = observed_find(s, id);
	const struct approved_container *approved;
	const char *elsewhere;
	char label[DG_REASON_DETAIL_MAX], why[DG_REASON_DETAIL_MAX], hex[2 * DIGEST_LEN + 1];

	dg_text_hex_encode(e->digest, DIGEST_LEN, hex);
	if (o == NULL) {
		add_reason(r, "unknown-container", "exec of %s (sha256:%s) in unknown container %s",
		           path, hex, id);
		return;
	}
	container_label(o, label, sizeof label);
	approved = approved_for(o->record, workloads, n_workloads, agent_id, why, sizeof why);
	if (approved == NULL) {
		add_reason(r, "exec-unknown",
		           "%s: %s (sha256:%s) executed, no rootfs approved (%s)", label, path, hex,
		           why);
		return;
	}
	elsewhere = dg_manifest_path_of(approved->manifest, e->digest);
	if (strncmp(path, volume_prefix, strlen(volume_prefix)) == 0) {
		add_reason(r, "exec-volume",
		           "%s: %s (sha256:%s) executed from outside the rootfs%s%s", label,
		           path + strlen(volume_prefix), hex,
		           elsewhere != NULL ? ", a copy of the approved " : "",
		           elsewhere != NULL ? elsewhere : "");
	} else if (dg_manifest_has(approved->manifest, path, e->digest)) {
		return;
	} else if (elsewhere != NULL) {
		add_reason(r, "exec-moved", "%s: %s (sha256:%s) is the approved %s at another path",
		           label, path, hex, elsewhere);
	} else {
		add_reason(r, "exec-unknown", "%s: %s (sha256:%s) is not in the approved rootfs",
		           label, path, hex);
	}
}

int
dg_containers_appraise(struct dg_containers *s, const struct dg_workload *const *workloads,
                       size_t n_workloads, const char *agent_id,
                       const struct dg_log_entry *e, dg_manifest_source_fn manifests,
                       void *manifests_arg, struct dg_reason *reasons, size_t max,
                       size_t *n)
{
	struct reason_sink r = {reasons, max, *n < max ? *n : max};
	char id[DG_CONTAINER_ID_MAX + 1];
	enum dg_event_kind kind;
	const char *exec_path = NULL;
	int rc;

	/* A path with an embedded NUL would be read shorter than logged. */
	if (e->path == NULL || memchr(e->path, '\0', e->path_len) != NULL) {
		rc = DG_ERR_FORMAT;
		goto out;
	}
	if ((rc = dg_event_classify(e->path, &kind, id, &exec_path)) != DG_OK)
		goto out;
	if (kind == DG_EVENT_NONE) {
		rc = DG_ERR_INVAL;
		goto out;
	}
	if (e->violation || e->hash_alg == NULL || strcmp(e->hash_alg, "sha256") != 0 ||
	    e->digest_len != DIGEST_LEN ||
	    (kind != DG_EVENT_KIND_CONTAINER && e->template_id != DG_TEMPLATE_IMA_NG)) {
		rc = DG_ERR_FORMAT;
		goto out;
	}
	if (kind == DG_EVENT_KIND_CONTAINER) {
		rc = appraise_creation(s, workloads, n_workloads, agent_id, id, e, &r);
	} else if (kind == DG_EVENT_KIND_ROOTFS) {
		rc = appraise_rootfs(s, workloads, n_workloads, agent_id, id, e, manifests,
		                     manifests_arg, &r);
	} else {
		appraise_exec(s, workloads, n_workloads, agent_id, id, exec_path, e, &r);
	}
	if (rc == DG_OK)
		*n = r.n;
out:
	return rc;
}
