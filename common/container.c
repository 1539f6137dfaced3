/*
 * Container records: an OCI runtime config.json reduced to the fields that
 * decide what runs, as one canonical text (format in container.h).
 *
 * Values are held decoded (raw bytes, never NUL) and escaped only when
 * written, so lists sort by raw bytes and a diff quotes the escaped form.
 * Rules beyond the header, the same for every writer so records compare:
 *  - a missing, null or empty string is written "-", and a value that is
 *    itself "-" is written \x2d, so "-" always means "none";
 *  - the space is escaped like other bytes below 0x21 (\x20), and inside
 *    mount options the comma too (\x2c): a value is one token, and options
 *    split back exactly;
 *  - capability sets and hook stages go in the order container.h lists them
 *    (bounding effective inheritable permitted ambient; prestart ...
 *    poststop), capability names within a set bytewise; a capability named
 *    twice in a set is kept once;
 *  - defaults for missing fields: no args, env, caps, mounts, namespaces or
 *    hooks; cwd "-"; user 0 0; no-new-privileges and readonly-rootfs false;
 *  - two env entries with one name are refused: the record sorts env by
 *    name, so which of them a process would see could not be told.
 */
#include "driftgate/container.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <json-c/json_visit.h>
#include <openssl/evp.h>

#include "driftgate/err.h"
#include "driftgate/log.h"
#include "driftgate/text.h"

#define HEADER_KEYWORD "driftgate-container"
#define HEADER_VERSION "1"
#define NONE "-"
#define DIGEST_PREFIX "sha256:"
#define JSON_MAX_DEPTH 32
/* Bounds on what a record may hold, checked on both the JSON and text side. */
#define MAX_STRING 4096
#define MAX_ENV_STRING (128u * 1024) /* Linux MAX_ARG_STRLEN: execve takes no longer */
#define MAX_ARGS 4096
#define MAX_ENV 4096
#define MAX_GIDS 4096
#define MAX_CAPS_PER_SET 128
#define MAX_MOUNTS 1024
#define MAX_MOUNT_OPTIONS 64
#define MAX_NAMESPACES 32
#define MAX_HOOKS_PER_STAGE 64
#define MAX_HOOK_ARGS 256
/* How much of an offending value an error message quotes. */
#define ERR_QUOTE_MAX 40
/* Room for a value quoted in a diff reason: escaped, cut with ".." if longer. */
#define QUOTE_CAP 128
/* Hex digits of a value's SHA-256 a diff reason shows. */
#define DIFF_HASH_HEX 12

static const char *const cap_sets[] = {"bounding", "effective", "inheritable", "permitted",
                                       "ambient"};
#define N_CAP_SETS (sizeof cap_sets / sizeof cap_sets[0])
static const char *const hook_stages[] = {"prestart", "createRuntime", "createContainer",
                                          "startContainer", "poststart", "poststop"};
#define N_HOOK_STAGES (sizeof hook_stages / sizeof hook_stages[0])

struct strv {
	char **v;
	size_t n;
};

struct env_var {
	char *name;
	uint8_t value_sha256[DG_SHA256_LEN];
};

struct cap {
	size_t set; /* index into cap_sets */
	char *name;
};

struct mount {
	char *destination, *type, *source;
	struct strv options;
};

struct namespace {
	char *type, *path;
};

struct hook {
	size_t stage; /* index into hook_stages */
	char *path;
	struct strv args;
};

/* Strings are never NULL once built; "" means none and is written "-". */
struct dg_container {
	char *workload, *name, *image_ref, *image_digest;
	struct strv args;
	struct env_var *env;
	size_t n_env;
	char *cwd;
	uint32_t uid, gid;
	uint32_t *gids;
	size_t n_gids;
	bool no_new_privileges, readonly_rootfs;
	struct cap *caps;
	size_t n_caps;
	struct mount *mounts;
	size_t n_mounts;
	struct namespace *namespaces;
	size_t n_namespaces;
	struct hook *hooks;
	size_t n_hooks;
};

/* ---- memory ---- */

static void
strv_free(struct strv *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

/* items (n elements) reallocated with room for `more` zeroed ones, or NULL
 * (items left as they were). Lists are small and bounded: no slack kept. */
static void *
grow(void *items, size_t n, size_t more, size_t size)
{
	char *grown = reallocarray(items, n + more, size);

	if (grown != NULL)
		memset(grown + n * size, 0, more * size);
	return grown;
}

/* Append s (taken over, freed on failure) to v. */
static int
strv_push(struct strv *v, char *s)
{
	char **grown = grow(v->v, v->n, 1, sizeof *v->v);

	if (grown == NULL) {
		free(s);
		return DG_ERR_NOMEM;
	}
	v->v = grown;
	v->v[v->n++] = s;
	return DG_OK;
}

void
dg_container_free(struct dg_container *c)
{
	if (c == NULL)
		return;
	free(c->workload);
	free(c->name);
	free(c->image_ref);
	free(c->image_digest);
	strv_free(&c->args);
	for (size_t i = 0; i < c->n_env; i++)
		free(c->env[i].name);
	free(c->env);
	free(c->cwd);
	free(c->gids);
	for (size_t i = 0; i < c->n_caps; i++)
		free(c->caps[i].name);
	free(c->caps);
	for (size_t i = 0; i < c->n_mounts; i++) {
		free(c->mounts[i].destination);
		free(c->mounts[i].type);
		free(c->mounts[i].source);
		strv_free(&c->mounts[i].options);
	}
	free(c->mounts);
	for (size_t i = 0; i < c->n_namespaces; i++) {
		free(c->namespaces[i].type);
		free(c->namespaces[i].path);
	}
	free(c->namespaces);
	for (size_t i = 0; i < c->n_hooks; i++) {
		free(c->hooks[i].path);
		strv_free(&c->hooks[i].args);
	}
	free(c->hooks);
	free(c);
}

/* ---- escaping ---- */

static bool
needs_escape(unsigned char ch, bool in_options)
{
	return ch <= 0x20 || ch >= 0x7f || ch == '\\' || (in_options && ch == ',');
}

/* The escaped spelling of one byte of a value; returns its length. */
static size_t
escape_byte(unsigned char ch, bool in_options, char out[4])
{
	static const char digits[] = "0123456789abcdef";

	if (ch == '\\') {
		out[0] = out[1] = '\\';
		return 2;
	}
	if (!needs_escape(ch, in_options)) {
		out[0] = (char)ch;
		return 1;
	}
	out[0] = '\\';
	out[1] = 'x';
	out[2] = digits[ch >> 4];
	out[3] = digits[ch & 0xf];
	return 4;
}

/* Whole values with a spelling of their own: "" is "-", and "-" is \x2d. */
static const char *
special_spelling(const char *raw)
{
	if (raw[0] == '\0')
		return NONE;
	if (strcmp(raw, NONE) == 0)
		return "\\x2d";
	return NULL;
}

/* Text under construction, never longer than max. */
struct buf {
	char *p;
	size_t len, cap, max;
};

static int
buf_put(struct buf *b, const char *s, size_t n)
{
	if (n > b->max - b->len)
		return DG_ERR_TOOBIG;
	if (b->cap - b->len < n + 1) {
		size_t cap = b->cap == 0 ? 4096 : b->cap;
		while (cap - b->len < n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (p == NULL)
			return DG_ERR_NOMEM;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return DG_OK;
}

static int
buf_str(struct buf *b, const char *s)
{
	return buf_put(b, s, strlen(s));
}

static int
buf_token(struct buf *b, const char *raw, bool in_options)
{
	const char *special = special_spelling(raw);
	char esc[4];
	int rc = DG_OK;

	if (special != NULL)
		return buf_str(b, special);
	for (const char *p = raw; *p != '\0' && rc == DG_OK; p++)
		rc = buf_put(b, esc, escape_byte((unsigned char)*p, in_options, esc));
	return rc;
}

/* " token", the separator written before every value. */
static int
buf_field(struct buf *b, const char *raw)
{
	int rc = buf_put(b, " ", 1);
	return rc == DG_OK ? buf_token(b, raw, false) : rc;
}

static int
buf_options(struct buf *b, const struct strv *options)
{
	int rc = DG_OK;

	if (options->n == 0)
		return buf_str(b, NONE);
	for (size_t i = 0; i < options->n && rc == DG_OK; i++) {
		if (i > 0)
			rc = buf_put(b, ",", 1);
		if (rc == DG_OK)
			rc = buf_token(b, options->v[i], true);
	}
	return rc;
}

/* ---- encoding ---- */

static const char *
bool_text(bool v)
{
	return v ? "true" : "false";
}

/* Lines from "arg" to "readonly-rootfs". */
static int
encode_process(struct buf *b, const struct dg_container *c)
{
	char num[32], hex[2 * DG_SHA256_LEN + 1];
	int rc = DG_OK;

	for (size_t i = 0; i < c->args.n && rc == DG_OK; i++) {
		if ((rc = buf_str(b, "arg")) == DG_OK && (rc = buf_field(b, c->args.v[i])) == DG_OK)
			rc = buf_put(b, "\n", 1);
	}
	for (size_t i = 0; i < c->n_env && rc == DG_OK; i++) {
		dg_text_hex_encode(c->env[i].value_sha256, DG_SHA256_LEN, hex);
		if ((rc = buf_str(b, "env")) == DG_OK && (rc = buf_field(b, c->env[i].name)) == DG_OK &&
		    (rc = buf_str(b, " " DIGEST_PREFIX)) == DG_OK && (rc = buf_str(b, hex)) == DG_OK)
			rc = buf_put(b, "\n", 1);
	}
	if (rc == DG_OK && (rc = buf_str(b, "cwd")) == DG_OK && (rc = buf_field(b, c->cwd)) == DG_OK)
		rc = buf_put(b, "\n", 1);
	snprintf(num, sizeof num, "user %u %u", (unsigned)c->uid, (unsigned)c->gid);
	if (rc == DG_OK)
		rc = buf_str(b, num);
	for (size_t i = 0; i < c->n_gids && rc == DG_OK; i++) {
		snprintf(num, sizeof num, " %u", (unsigned)c->gids[i]);
		rc = buf_str(b, num);
	}
	if (rc == DG_OK && (rc = buf_str(b, "\nno-new-privileges ")) == DG_OK &&
	    (rc = buf_str(b, bool_text(c->no_new_privileges))) == DG_OK &&
	    (rc = buf_str(b, "\nreadonly-rootfs ")) == DG_OK &&
	    (rc = buf_str(b, bool_text(c->readonly_rootfs))) == DG_OK)
		rc = buf_put(b, "\n", 1);
	return rc;
}

/* Lines from "cap" to "hook". */
static int
encode_lists(struct buf *b, const struct dg_container *c)
{
	int rc = DG_OK;

	for (size_t i = 0; i < c->n_caps && rc == DG_OK; i++) {
		if ((rc = buf_str(b, "cap ")) == DG_OK &&
		    (rc = buf_str(b, cap_sets[c->caps[i].set])) == DG_OK &&
		    (rc = buf_field(b, c->caps[i].name)) == DG_OK)
			rc = buf_put(b, "\n", 1);
	}
	for (size_t i = 0; i < c->n_mounts && rc == DG_OK; i++) {
		const struct mount *m = &c->mounts[i];
		if ((rc = buf_str(b, "mount")) == DG_OK && (rc = buf_field(b, m->destination)) == DG_OK &&
		    (rc = buf_field(b, m->type)) == DG_OK && (rc = buf_field(b, m->source)) == DG_OK &&
		    (rc = buf_put(b, " ", 1)) == DG_OK && (rc = buf_options(b, &m->options)) == DG_OK)
			rc = buf_put(b, "\n", 1);
	}
	for (size_t i = 0; i < c->n_namespaces && rc == DG_OK; i++) {
		if ((rc = buf_str(b, "namespace")) == DG_OK &&
		    (rc = buf_field(b, c->namespaces[i].type)) == DG_OK &&
		    (rc = buf_field(b, c->namespaces[i].path)) == DG_OK)
			rc = buf_put(b, "\n", 1);
	}
	for (size_t i = 0; i < c->n_hooks && rc == DG_OK; i++) {
		const struct hook *h = &c->hooks[i];
		if ((rc = buf_str(b, "hook ")) == DG_OK &&
		    (rc = buf_str(b, hook_stages[h->stage])) == DG_OK)
			rc = buf_field(b, h->path);
		for (size_t k = 0; k < h->args.n && rc == DG_OK; k++)
			rc = buf_field(b, h->args.v[k]);
		if (rc == DG_OK)
			rc = buf_put(b, "\n", 1);
	}
	return rc;
}

int
dg_container_encode(const struct dg_container *c, char **text, size_t *len)
{
	struct buf b = {NULL, 0, 0, DG_CONTAINER_MAX_RECORD};
	const char *heads[][2] = {{"workload", c != NULL ? c->workload : NULL},
	                          {"name", c != NULL ? c->name : NULL},
	                          {"image-ref", c != NULL ? c->image_ref : NULL},
	                          {"image-digest", c != NULL ? c->image_digest : NULL}};
	int rc;

	if (c == NULL || text == NULL || len == NULL)
		return DG_ERR_INVAL;
	rc = buf_str(&b, HEADER_KEYWORD " " HEADER_VERSION "\n");
	for (size_t i = 0; i < sizeof heads / sizeof heads[0] && rc == DG_OK; i++) {
		if ((rc = buf_str(&b, heads[i][0])) == DG_OK && (rc = buf_field(&b, heads[i][1])) == DG_OK)
			rc = buf_put(&b, "\n", 1);
	}
	if (rc == DG_OK)
		rc = encode_process(&b, c);
	if (rc == DG_OK)
		rc = encode_lists(&b, c);
	if (rc != DG_OK)
		goto out;
	*text = b.p;
	*len = b.len;
	b.p = NULL;
out:
	free(b.p);
	return rc;
}

const char *
dg_container_workload(const struct dg_container *c)
{
	return c->workload[0] != '\0' ? c->workload : NONE;
}

const char *
dg_container_name(const struct dg_container *c)
{
	return c->name[0] != '\0' ? c->name : NONE;
}

/* ---- shared checks and sorting ---- */

/* Workload and container names name files on the verifier. */
static bool
name_valid(const char *s)
{
	return strcmp(s, NONE) != 0 && dg_text_name_valid(s, strlen(s), DG_CONTAINER_MAX_NAME);
}

static int
compare_env(const void *a, const void *b)
{
	return strcmp(((const struct env_var *)a)->name, ((const struct env_var *)b)->name);
}

static int
compare_cap(const struct cap *a, const struct cap *b)
{
	if (a->set != b->set)
		return a->set < b->set ? -1 : 1;
	return strcmp(a->name, b->name);
}

static int
compare_cap_qsort(const void *a, const void *b)
{
	return compare_cap(a, b);
}

static int
compare_namespace(const void *a, const void *b)
{
	return strcmp(((const struct namespace *)a)->type, ((const struct namespace *)b)->type);
}

/* ---- OCI config.json ---- */

struct json_ctx {
	char *err;
	size_t err_cap;
};

static int
jfail(struct json_ctx *j, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int
jfail(struct json_ctx *j, int rc, const char *fmt, ...)
{
	va_list ap;

	if (j->err == NULL || j->err_cap == 0)
		return rc;
	va_start(ap, fmt);
	vsnprintf(j->err, j->err_cap, fmt, ap);
	va_end(ap);
	/* Messages may quote config text: keep them one printable line. */
	for (char *p = j->err; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = '?';
	}
	return rc;
}

/*
 * runc reads config.json with Go's encoding/json, which matches member names
 * regardless of case (U+017F and U+212A count as 's' and 'k') and decodes a
 * repeated member into what the first one left. A member that runc would read
 * as one of ours and json-c would not ("Args", a second "process") could run
 * what the record does not show, so such members are refused.
 */
static bool
go_name_match(const char *key, const char *name)
{
	const unsigned char *k = (const unsigned char *)key;

	for (const char *n = name; *n != '\0'; n++) {
		unsigned char want = (unsigned char)(*n >= 'A' && *n <= 'Z' ? *n - 'A' + 'a' : *n);
		if (k[0] == 0xc5 && k[1] == 0xbf) { /* U+017F LATIN SMALL LETTER LONG S */
			k += 2;
			if (want != 's')
				return false;
			continue;
		}
		if (k[0] == 0xe2 && k[1] == 0x84 && k[2] == 0xaa) { /* U+212A KELVIN SIGN */
			k += 3;
			if (want != 'k')
				return false;
			continue;
		}
		if ((k[0] >= 'A' && k[0] <= 'Z' ? k[0] - 'A' + 'a' : k[0]) != want)
			return false;
		k++;
	}
	return *k == '\0';
}

/* No member of obj may be read by runc as one of names unless it is that name. */
static int
check_member_names(struct json_ctx *j, struct json_object *obj, const char *field,
                   const char *const *names, size_t n_names)
{
	json_object_object_foreach(obj, key, unused) {
		(void)unused;
		for (size_t i = 0; i < n_names; i++) {
			if (strcmp(key, names[i]) != 0 && go_name_match(key, names[i]))
				return jfail(j, DG_ERR_FORMAT,
				             "%s: member '%.*s' would be read as '%s' by runc", field,
				             ERR_QUOTE_MAX, key, names[i]);
		}
	}
	return DG_OK;
}

#define CHECK_NAMES(j, obj, field, ...)                                                           \
	check_member_names(j, obj, field, (const char *const[]){__VA_ARGS__},                       \
	                   sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

/* obj[key] into *out: NULL when absent or null (a default applies), the value
 * when it has the wanted type, DG_ERR_FORMAT naming field otherwise. */
static int
member(struct json_ctx *j, struct json_object *obj, const char *key, json_type type,
       const char *field, struct json_object **out)
{
	struct json_object *v = NULL;

	*out = NULL;
	if (!json_object_object_get_ex(obj, key, &v) || v == NULL)
		return DG_OK;
	if (!json_object_is_type(v, type))
		return jfail(j, DG_ERR_FORMAT, "%s: expected %s, not %s", field, json_type_to_name(type),
		             json_type_to_name(json_object_get_type(v)));
	*out = v;
	return DG_OK;
}

/* The length of array v after checking its type and bound. */
static int
array_len(struct json_ctx *j, struct json_object *v, const char *field, size_t max, size_t *n)
{
	if (!json_object_is_type(v, json_type_array))
		return jfail(j, DG_ERR_FORMAT, "%s: expected array, not %s", field,
		             json_type_to_name(json_object_get_type(v)));
	*n = json_object_array_length(v);
	if (*n > max)
		return jfail(j, DG_ERR_TOOBIG, "%s: more than %zu entries", field, max);
	return DG_OK;
}

/* A string value's bytes, checked for type, bound and NUL (no process can
 * be given one). */
static int
string_bytes(struct json_ctx *j, struct json_object *v, const char *field, size_t max,
             const char **s, size_t *len)
{
	if (!json_object_is_type(v, json_type_string))
		return jfail(j, DG_ERR_FORMAT, "%s: expected string, not %s", field,
		             json_type_to_name(json_object_get_type(v)));
	*s = json_object_get_string(v);
	*len = (size_t)json_object_get_string_len(v);
	if (*len > max)
		return jfail(j, DG_ERR_TOOBIG, "%s: longer than %zu bytes", field, max);
	if (memchr(*s, '\0', *len) != NULL)
		return jfail(j, DG_ERR_FORMAT, "%s: contains a NUL byte", field);
	return DG_OK;
}

/* A copy of string v; required strings must be non-empty. */
static int
copy_string(struct json_ctx *j, struct json_object *v, const char *field, bool required,
            char **out)
{
	const char *s = ""; /* an absent value is empty */
	size_t len = 0;
	int rc;

	if (v == NULL) {
		if (required)
			return jfail(j, DG_ERR_FORMAT, "%s: missing", field);
	} else if ((rc = string_bytes(j, v, field, MAX_STRING, &s, &len)) != DG_OK) {
		return rc;
	}
	if (required && len == 0)
		return jfail(j, DG_ERR_FORMAT, "%s: empty", field);
	*out = strndup(s, len);
	return *out != NULL ? DG_OK : DG_ERR_NOMEM;
}

/* obj[key] as a string copy ("" when absent or null). */
static int
member_string(struct json_ctx *j, struct json_object *obj, const char *key, const char *field,
              bool required, char **out)
{
	struct json_object *v;
	int rc = member(j, obj, key, json_type_string, field, &v);
	return rc == DG_OK ? copy_string(j, v, field, required, out) : rc;
}

/* A list of strings (absent or null: empty); entries non-empty if asked. */
static int
member_strings(struct json_ctx *j, struct json_object *obj, const char *key, const char *field,
               size_t max, bool entries_required, struct strv *out)
{
	struct json_object *v = NULL;
	char item[96];
	size_t n = 0;
	int rc;

	if (!json_object_object_get_ex(obj, key, &v) || v == NULL)
		return DG_OK;
	if ((rc = array_len(j, v, field, max, &n)) != DG_OK)
		return rc;
	for (size_t i = 0; i < n; i++) {
		struct json_object *entry = json_object_array_get_idx(v, i);
		char *s = NULL;
		snprintf(item, sizeof item, "%s[%zu]", field, i);
		if (entry == NULL) /* null is a default for members, not for entries */
			return jfail(j, DG_ERR_FORMAT, "%s: expected string, not null", item);
		if ((rc = copy_string(j, entry, item, entries_required, &s)) != DG_OK ||
		    (rc = strv_push(out, s)) != DG_OK)
			return rc;
	}
	return DG_OK;
}

static int
read_u32(struct json_ctx *j, struct json_object *v, const char *field, uint32_t *out)
{
	int64_t x;

	if (!json_object_is_type(v, json_type_int) || (x = json_object_get_int64(v)) < 0 ||
	    x > (int64_t)UINT32_MAX)
		return jfail(j, DG_ERR_FORMAT, "%s: expected an integer 0..%u", field,
		             (unsigned)UINT32_MAX);
	*out = (uint32_t)x;
	return DG_OK;
}

static int
read_env(struct json_ctx *j, struct dg_container *c, struct json_object *process)
{
	struct json_object *v = NULL;
	char field[64];
	size_t n = 0;
	int rc;

	if (!json_object_object_get_ex(process, "env", &v) || v == NULL)
		return DG_OK;
	if ((rc = array_len(j, v, "process.env", MAX_ENV, &n)) != DG_OK)
		return rc;
	if (n > 0 && (c->env = calloc(n, sizeof *c->env)) == NULL)
		return DG_ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		struct env_var *e = &c->env[i];
		const char *s = "", *eq;
		size_t len = 0;
		snprintf(field, sizeof field, "process.env[%zu]", i);
		rc = string_bytes(j, json_object_array_get_idx(v, i), field, MAX_ENV_STRING, &s, &len);
		if (rc != DG_OK)
			return rc;
		if ((eq = memchr(s, '=', len)) == NULL)
			return jfail(j, DG_ERR_FORMAT, "%s: no '=' (want NAME=value)", field);
		if (eq == s)
			return jfail(j, DG_ERR_FORMAT, "%s: empty name", field);
		if ((size_t)(eq - s) > MAX_STRING)
			return jfail(j, DG_ERR_TOOBIG, "%s: name longer than %d bytes", field, MAX_STRING);
		if ((e->name = strndup(s, (size_t)(eq - s))) == NULL)
			return DG_ERR_NOMEM;
		c->n_env++;
		if (EVP_Digest(eq + 1, len - (size_t)(eq - s) - 1, e->value_sha256, NULL, EVP_sha256(),
		               NULL) != 1)
			return DG_ERR_CRYPTO;
	}
	if (c->n_env > 1) /* qsort may not be given NULL */
		qsort(c->env, c->n_env, sizeof *c->env, compare_env);
	for (size_t i = 1; i < c->n_env; i++) {
		if (strcmp(c->env[i - 1].name, c->env[i].name) == 0)
			return jfail(j, DG_ERR_FORMAT, "process.env: '%.*s' is set twice", ERR_QUOTE_MAX,
			             c->env[i].name);
	}
	return DG_OK;
}

static int
read_user(struct json_ctx *j, struct dg_container *c, struct json_object *process)
{
	struct json_object *user, *v;
	char field[64];
	size_t n = 0;
	int rc;

	if ((rc = member(j, process, "user", json_type_object, "process.user", &user)) != DG_OK ||
	    user == NULL)
		return rc;
	if ((rc = CHECK_NAMES(j, user, "process.user", "uid", "gid", "additionalGids")) != DG_OK)
		return rc;
	if ((rc = member(j, user, "uid", json_type_int, "process.user.uid", &v)) != DG_OK ||
	    (v != NULL && (rc = read_u32(j, v, "process.user.uid", &c->uid)) != DG_OK))
		return rc;
	if ((rc = member(j, user, "gid", json_type_int, "process.user.gid", &v)) != DG_OK ||
	    (v != NULL && (rc = read_u32(j, v, "process.user.gid", &c->gid)) != DG_OK))
		return rc;
	if (!json_object_object_get_ex(user, "additionalGids", &v) || v == NULL)
		return DG_OK;
	if ((rc = array_len(j, v, "process.user.additionalGids", MAX_GIDS, &n)) != DG_OK)
		return rc;
	if (n > 0 && (c->gids = calloc(n, sizeof *c->gids)) == NULL)
		return DG_ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		snprintf(field, sizeof field, "process.user.additionalGids[%zu]", i);
		if ((rc = read_u32(j, json_object_array_get_idx(v, i), field, &c->gids[i])) != DG_OK)
			return rc;
		c->n_gids++;
	}
	return DG_OK;
}

static int
read_caps(struct json_ctx *j, struct dg_container *c, struct json_object *process)
{
	struct json_object *caps;
	char field[64];
	size_t kept = 0;
	int rc;

	if ((rc = member(j, process, "capabilities", json_type_object, "process.capabilities",
	                 &caps)) != DG_OK ||
	    caps == NULL)
		return rc;
	if ((rc = check_member_names(j, caps, "process.capabilities", cap_sets, N_CAP_SETS)) != DG_OK)
		return rc;
	for (size_t set = 0; set < N_CAP_SETS; set++) {
		struct strv names = {NULL, 0};
		snprintf(field, sizeof field, "process.capabilities.%s", cap_sets[set]);
		rc = member_strings(j, caps, cap_sets[set], field, MAX_CAPS_PER_SET, true, &names);
		if (rc == DG_OK && names.n > 0) {
			struct cap *grown = grow(c->caps, c->n_caps, names.n, sizeof *c->caps);
			if (grown != NULL)
				c->caps = grown;
			else
				rc = DG_ERR_NOMEM;
		}
		for (size_t i = 0; i < names.n && rc == DG_OK; i++) {
			c->caps[c->n_caps].set = set;
			c->caps[c->n_caps++].name = names.v[i];
			names.v[i] = NULL;
		}
		strv_free(&names);
		if (rc != DG_OK)
			return rc;
	}
	if (c->n_caps > 1) /* qsort may not be given NULL */
		qsort(c->caps, c->n_caps, sizeof *c->caps, compare_cap_qsort);
	for (size_t i = 0; i < c->n_caps; i++) {
		if (kept > 0 && compare_cap(&c->caps[kept - 1], &c->caps[i]) == 0) {
			free(c->caps[i].name);
			continue;
		}
		c->caps[kept++] = c->caps[i];
	}
	c->n_caps = kept;
	return DG_OK;
}

static int
read_process(struct json_ctx *j, struct dg_container *c, struct json_object *root)
{
	struct json_object *process, *v;
	int rc;

	if ((rc = member(j, root, "process", json_type_object, "process", &process)) != DG_OK)
		return rc;
	if (process == NULL)
		return (c->cwd = strdup("")) != NULL ? DG_OK : DG_ERR_NOMEM;
	if ((rc = CHECK_NAMES(j, process, "process", "args", "env", "cwd", "user", "noNewPrivileges",
	                      "capabilities")) != DG_OK)
		return rc;
	if ((rc = member_strings(j, process, "args", "process.args", MAX_ARGS, false, &c->args)) !=
	        DG_OK ||
	    (rc = read_env(j, c, process)) != DG_OK ||
	    (rc = member_string(j, process, "cwd", "process.cwd", false, &c->cwd)) != DG_OK ||
	    (rc = read_user(j, c, process)) != DG_OK)
		return rc;
	if ((rc = member(j, process, "noNewPrivileges", json_type_boolean, "process.noNewPrivileges",
	                 &v)) != DG_OK)
		return rc;
	c->no_new_privileges = v != NULL && json_object_get_boolean(v);
	return read_caps(j, c, process);
}

static int
read_mounts(struct json_ctx *j, struct dg_container *c, struct json_object *root)
{
	struct json_object *mounts = NULL;
	char field[64], sub[96];
	size_t n = 0;
	int rc;

	if (!json_object_object_get_ex(root, "mounts", &mounts) || mounts == NULL)
		return DG_OK;
	if ((rc = array_len(j, mounts, "mounts", MAX_MOUNTS, &n)) != DG_OK)
		return rc;
	if (n > 0 && (c->mounts = calloc(n, sizeof *c->mounts)) == NULL)
		return DG_ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		struct json_object *m = json_object_array_get_idx(mounts, i);
		struct mount *out = &c->mounts[i];
		snprintf(field, sizeof field, "mounts[%zu]", i);
		if (!json_object_is_type(m, json_type_object))
			return jfail(j, DG_ERR_FORMAT, "%s: expected object, not %s", field,
			             json_type_to_name(json_object_get_type(m)));
		c->n_mounts++;
		if ((rc = CHECK_NAMES(j, m, field, "destination", "type", "source", "options")) != DG_OK)
			return rc;
		snprintf(sub, sizeof sub, "%s.destination", field);
		if ((rc = member_string(j, m, "destination", sub, true, &out->destination)) != DG_OK)
			return rc;
		snprintf(sub, sizeof sub, "%s.type", field);
		if ((rc = member_string(j, m, "type", sub, false, &out->type)) != DG_OK)
			return rc;
		snprintf(sub, sizeof sub, "%s.source", field);
		if ((rc = member_string(j, m, "source", sub, false, &out->source)) != DG_OK)
			return rc;
		snprintf(sub, sizeof sub, "%s.options", field);
		rc = member_strings(j, m, "options", sub, MAX_MOUNT_OPTIONS, true, &out->options);
		if (rc != DG_OK)
			return rc;
	}
	return DG_OK;
}

static int
read_namespaces(struct json_ctx *j, struct dg_container *c, struct json_object *root)
{
	struct json_object *linux_obj, *list = NULL;
	char field[64], sub[96];
	size_t n = 0;
	int rc;

	if ((rc = member(j, root, "linux", json_type_object, "linux", &linux_obj)) != DG_OK ||
	    linux_obj == NULL)
		return rc;
	if ((rc = CHECK_NAMES(j, linux_obj, "linux", "namespaces")) != DG_OK)
		return rc;
	if (!json_object_object_get_ex(linux_obj, "namespaces", &list) || list == NULL)
		return DG_OK;
	if ((rc = array_len(j, list, "linux.namespaces", MAX_NAMESPACES, &n)) != DG_OK)
		return rc;
	if (n > 0 && (c->namespaces = calloc(n, sizeof *c->namespaces)) == NULL)
		return DG_ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		struct json_object *ns = json_object_array_get_idx(list, i);
		snprintf(field, sizeof field, "linux.namespaces[%zu]", i);
		if (!json_object_is_type(ns, json_type_object))
			return jfail(j, DG_ERR_FORMAT, "%s: expected object, not %s", field,
			             json_type_to_name(json_object_get_type(ns)));
		c->n_namespaces++;
		if ((rc = CHECK_NAMES(j, ns, field, "type", "path")) != DG_OK)
			return rc;
		snprintf(sub, sizeof sub, "%s.type", field);
		if ((rc = member_string(j, ns, "type", sub, true, &c->namespaces[i].type)) != DG_OK)
			return rc;
		snprintf(sub, sizeof sub, "%s.path", field);
		if ((rc = member_string(j, ns, "path", sub, false, &c->namespaces[i].path)) != DG_OK)
			return rc;
	}
	if (c->n_namespaces > 1) /* qsort may not be given NULL */
		qsort(c->namespaces, c->n_namespaces, sizeof *c->namespaces, compare_namespace);
	for (size_t i = 1; i < c->n_namespaces; i++) {
		if (strcmp(c->namespaces[i - 1].type, c->namespaces[i].type) == 0)
			return jfail(j, DG_ERR_FORMAT, "linux.namespaces: type '%.*s' given twice",
			             ERR_QUOTE_MAX, c->namespaces[i].type);
	}
	return DG_OK;
}

static int
read_hooks(struct json_ctx *j, struct dg_container *c, struct json_object *root)
{
	struct json_object *hooks, *list;
	char field[64], sub[96];
	size_t n = 0;
	int rc;

	if ((rc = member(j, root, "hooks", json_type_object, "hooks", &hooks)) != DG_OK ||
	    hooks == NULL)
		return rc;
	if ((rc = check_member_names(j, hooks, "hooks", hook_stages, N_HOOK_STAGES)) != DG_OK)
		return rc;
	for (size_t stage = 0; stage < N_HOOK_STAGES; stage++) {
		snprintf(field, sizeof field, "hooks.%s", hook_stages[stage]);
		if (!json_object_object_get_ex(hooks, hook_stages[stage], &list) || list == NULL)
			continue;
		if ((rc = array_len(j, list, field, MAX_HOOKS_PER_STAGE, &n)) != DG_OK)
			return rc;
		for (size_t i = 0; i < n; i++) {
			struct json_object *h = json_object_array_get_idx(list, i);
			snprintf(sub, sizeof sub, "%s[%zu]", field, i);
			if (!json_object_is_type(h, json_type_object))
				return jfail(j, DG_ERR_FORMAT, "%s: expected object, not %s", sub,
				             json_type_to_name(json_object_get_type(h)));
			struct hook *grown = grow(c->hooks, c->n_hooks, 1, sizeof *c->hooks);
			if (grown == NULL)
				return DG_ERR_NOMEM;
			c->hooks = grown;
			struct hook *out = &c->hooks[c->n_hooks++];
			out->stage = stage;
			if ((rc = CHECK_NAMES(j, h, sub, "path", "args")) != DG_OK)
				return rc;
			snprintf(sub, sizeof sub, "%s[%zu].path", field, i);
			if ((rc = member_string(j, h, "path", sub, true, &out->path)) != DG_OK)
				return rc;
			snprintf(sub, sizeof sub, "%s[%zu].args", field, i);
			rc = member_strings(j, h, "args", sub, MAX_HOOK_ARGS, false, &out->args);
			if (rc != DG_OK)
				return rc;
		}
	}
	return DG_OK;
}

/* The first of keys present in annotations, or "". */
static int
read_annotation(struct json_ctx *j, struct json_object *annotations, const char *const *keys,
                size_t n_keys, char **out)
{
	char field[96];
	int rc;

	for (size_t i = 0; i < n_keys && annotations != NULL; i++) {
		struct json_object *v;
		snprintf(field, sizeof field, "annotations.%s", keys[i]);
		if ((rc = member(j, annotations, keys[i], json_type_string, field, &v)) != DG_OK)
			return rc;
		if (v != NULL)
			return copy_string(j, v, field, false, out);
	}
	return (*out = strdup("")) != NULL ? DG_OK : DG_ERR_NOMEM;
}

static int
read_annotations(struct json_ctx *j, struct dg_container *c, struct json_object *root)
{
	static const char *const workload[] = {"io.driftgate.workload"};
	static const char *const name[] = {"io.driftgate.container"};
	static const char *const image_ref[] = {"org.opencontainers.image.ref.name",
	                                        "io.kubernetes.cri.image-name"};
	static const char *const image_digest[] = {"io.driftgate.image.digest",
	                                           "org.opencontainers.image.base.digest"};
	struct json_object *annotations;
	int rc;

	if ((rc = member(j, root, "annotations", json_type_object, "annotations", &annotations)) !=
	        DG_OK ||
	    (rc = read_annotation(j, annotations, workload, 1, &c->workload)) != DG_OK ||
	    (rc = read_annotation(j, annotations, name, 1, &c->name)) != DG_OK ||
	    (rc = read_annotation(j, annotations, image_ref, 2, &c->image_ref)) != DG_OK ||
	    (rc = read_annotation(j, annotations, image_digest, 2, &c->image_digest)) != DG_OK)
		return rc;
	if (c->workload[0] != '\0' && !name_valid(c->workload))
		return jfail(j, DG_ERR_FORMAT,
		             "annotations.%s: bad name (want [A-Za-z0-9._-]{1,%d}, not \"-\")",
		             workload[0], DG_CONTAINER_MAX_NAME);
	if (c->name[0] != '\0' && !name_valid(c->name))
		return jfail(j, DG_ERR_FORMAT,
		             "annotations.%s: bad name (want [A-Za-z0-9._-]{1,%d}, not \"-\")", name[0],
		             DG_CONTAINER_MAX_NAME);
	return DG_OK;
}

static int
read_root(struct json_ctx *j, struct dg_container *c, struct json_object *root)
{
	struct json_object *root_fs, *v = NULL;
	int rc;

	if ((rc = member(j, root, "root", json_type_object, "root", &root_fs)) != DG_OK ||
	    root_fs == NULL)
		return rc;
	if ((rc = CHECK_NAMES(j, root_fs, "root", "readonly")) != DG_OK)
		return rc;
	if ((rc = member(j, root_fs, "readonly", json_type_boolean, "root.readonly", &v)) != DG_OK)
		return rc;
	c->readonly_rootfs = v != NULL && json_object_get_boolean(v);
	return DG_OK;
}

/* Members written in text: each ':' outside a string separates one. Single
 * quotes, which json-c takes for strings, are refused as the non-JSON they are. */
static int
count_written_members(struct json_ctx *j, const char *text, size_t len, size_t *n)
{
	bool in_string = false;

	*n = 0;
	for (size_t i = 0; i < len; i++) {
		if (in_string) {
			if (text[i] == '\\')
				i++;
			else if (text[i] == '"')
				in_string = false;
		} else if (text[i] == '"') {
			in_string = true;
		} else if (text[i] == ':') {
			(*n)++;
		} else if (text[i] == '\'') {
			return jfail(j, DG_ERR_FORMAT, "single quote at offset %zu (not JSON)", i);
		}
	}
	return DG_OK;
}

static int
count_kept_members(json_object *v, int flags, json_object *parent, const char *key,
                   size_t *index, void *arg)
{
	(void)parent;
	(void)key;
	(void)index;
	if (flags != JSON_C_VISIT_SECOND && json_object_is_type(v, json_type_object))
		*(size_t *)arg += (size_t)json_object_object_length(v);
	return JSON_C_VISIT_RETURN_CONTINUE;
}

/* Parse the whole of json as one object, nested at most JSON_MAX_DEPTH. */
static int
json_parse_object(struct json_ctx *j, const char *json, size_t len, struct json_object **out)
{
	struct json_tokener *tok = NULL;
	struct json_object *root = NULL;
	enum json_tokener_error jerr;
	size_t end, written, kept = 0;
	int rc;

	if (len > DG_CONTAINER_MAX_JSON) {
		rc = jfail(j, DG_ERR_TOOBIG, "config larger than %u bytes", DG_CONTAINER_MAX_JSON);
		goto out;
	}
	if (memchr(json, '\0', len) != NULL) {
		rc = jfail(j, DG_ERR_FORMAT, "NUL byte in JSON text");
		goto out;
	}
	if ((tok = json_tokener_new_ex(JSON_MAX_DEPTH)) == NULL) {
		rc = DG_ERR_NOMEM;
		goto out;
	}
	/* Trailing bytes are checked below, to say so plainly. */
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS |
	                                JSON_TOKENER_VALIDATE_UTF8);
	root = json_tokener_parse_ex(tok, json, (int)len);
	jerr = json_tokener_get_error(tok);
	if (root == NULL || jerr != json_tokener_success) {
		if (jerr == json_tokener_continue || jerr == json_tokener_success)
			rc = jfail(j, DG_ERR_FORMAT, "JSON text ends early");
		else if (jerr == json_tokener_error_depth)
			rc = jfail(j, DG_ERR_FORMAT, "JSON nested deeper than %d", JSON_MAX_DEPTH);
		else
			rc = jfail(j, DG_ERR_FORMAT, "bad JSON at offset %zu: %s",
			           json_tokener_get_parse_end(tok), json_tokener_error_desc(jerr));
		goto out;
	}
	for (end = json_tokener_get_parse_end(tok); end < len; end++) {
		if (strchr(" \t\r\n", json[end]) == NULL) {
			rc = jfail(j, DG_ERR_FORMAT, "bytes after the JSON value at offset %zu", end);
			goto out;
		}
	}
	/* json-c keeps the last of repeated members; runc (Go) merges them. */
	if ((rc = count_written_members(j, json, len, &written)) != DG_OK)
		goto out;
	json_c_visit(root, 0, count_kept_members, &kept);
	if (kept != written) {
		rc = jfail(j, DG_ERR_FORMAT, "a JSON object repeats a member name");
		goto out;
	}
	if (!json_object_is_type(root, json_type_object)) {
		rc = jfail(j, DG_ERR_FORMAT, "top level: expected object, not %s",
		           json_type_to_name(json_object_get_type(root)));
		goto out;
	}
	*out = root;
	root = NULL;
	rc = DG_OK;
out:
	json_object_put(root);
	if (tok != NULL)
		json_tokener_free(tok);
	return rc;
}

int
dg_container_from_oci_json(const char *json, size_t len, struct dg_container **out, char *err,
                           size_t err_cap)
{
	struct json_ctx j = {err, err_cap};
	struct json_object *root = NULL;
	struct dg_container *c = NULL;
	char *text = NULL;
	size_t text_len;
	int rc;

	if (err != NULL && err_cap > 0)
		err[0] = '\0';
	if (json == NULL || out == NULL)
		return DG_ERR_INVAL;
	if ((rc = json_parse_object(&j, json, len, &root)) != DG_OK)
		goto out;
	if ((c = calloc(1, sizeof *c)) == NULL) {
		rc = DG_ERR_NOMEM;
		goto out;
	}
	if ((rc = CHECK_NAMES(&j, root, "top level", "process", "root", "mounts", "linux", "hooks",
	                      "annotations")) != DG_OK ||
	    (rc = read_annotations(&j, c, root)) != DG_OK || (rc = read_process(&j, c, root)) != DG_OK ||
	    (rc = read_root(&j, c, root)) != DG_OK || (rc = read_mounts(&j, c, root)) != DG_OK ||
	    (rc = read_namespaces(&j, c, root)) != DG_OK || (rc = read_hooks(&j, c, root)) != DG_OK)
		goto out;
	/* Every bound above holds and the record must still fit one log entry. */
	rc = dg_container_encode(c, &text, &text_len);
	if (rc == DG_ERR_TOOBIG)
		jfail(&j, rc, "record larger than %u bytes", DG_CONTAINER_MAX_RECORD);
	if (rc != DG_OK)
		goto out;
	*out = c;
	c = NULL;
out:
	if (rc != DG_OK && err != NULL && err_cap > 0 && err[0] == '\0')
		jfail(&j, rc, "%s", dg_strerror(rc)); /* out of memory, crypto library */
	free(text);
	dg_container_free(c);
	json_object_put(root);
	return rc;
}

/* ---- canonical text ---- */

enum section {
	SEC_HEADER, SEC_WORKLOAD, SEC_NAME, SEC_IMAGE_REF, SEC_IMAGE_DIGEST, SEC_ARG, SEC_ENV,
	SEC_CWD, SEC_USER, SEC_NO_NEW_PRIVILEGES, SEC_READONLY_ROOTFS, SEC_CAP, SEC_MOUNT,
	SEC_NAMESPACE, SEC_HOOK, SEC_COUNT
};

static const struct {
	const char *keyword;
	bool repeated;
} sections[SEC_COUNT] = {
	{HEADER_KEYWORD, false}, {"workload", false}, {"name", false}, {"image-ref", false},
	{"image-digest", false}, {"arg", true}, {"env", true}, {"cwd", false}, {"user", false},
	{"no-new-privileges", false}, {"readonly-rootfs", false}, {"cap", true}, {"mount", true},
	{"namespace", true}, {"hook", true},
};

/* One line being read: tokens are separated by exactly one space. */
struct line {
	const char *p, *end;
};

static bool
next_token(struct line *l, const char **tok, size_t *len)
{
	const char *sp;

	if (l->p == NULL)
		return false;
	sp = memchr(l->p, ' ', (size_t)(l->end - l->p));
	*tok = l->p;
	*len = (size_t)((sp != NULL ? sp : l->end) - l->p);
	l->p = sp != NULL ? sp + 1 : NULL;
	return true;
}

/* Decode one value as buf_token writes it, refusing every other spelling
 * (so a record has exactly one text): no raw byte that would be escaped, no
 * escape of a byte that would not, lowercase hex, no NUL. */
static int
decode_token(const char *tok, size_t len, bool in_options, char **out)
{
	char *s;
	size_t n = 0;
	int rc = DG_ERR_FORMAT;

	if (len == 0)
		return DG_ERR_FORMAT;
	if (len > 4 * (size_t)MAX_STRING)
		return DG_ERR_TOOBIG;
	if ((s = malloc(len + 1)) == NULL)
		return DG_ERR_NOMEM;
	if (len == strlen(NONE) && memcmp(tok, NONE, len) == 0) {
		s[0] = '\0';
		*out = s;
		return DG_OK;
	}
	if (len == 4 && memcmp(tok, "\\x2d", 4) == 0) {
		memcpy(s, NONE, sizeof NONE);
		*out = s;
		return DG_OK;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)tok[i];
		if (ch != '\\') {
			if (needs_escape(ch, in_options))
				goto out;
			s[n++] = (char)ch;
			continue;
		}
		if (i + 1 < len && tok[i + 1] == '\\') {
			s[n++] = '\\';
			i++;
			continue;
		}
		int hi = i + 3 < len && tok[i + 1] == 'x' ? dg_text_hex_digit(tok[i + 2], true) : -1;
		int lo = hi >= 0 ? dg_text_hex_digit(tok[i + 3], true) : -1;
		if (lo < 0)
			goto out;
		ch = (unsigned char)(hi << 4 | lo);
		if (ch == '\0' || ch == '\\' || !needs_escape(ch, in_options))
			goto out;
		s[n++] = (char)ch;
		i += 3;
	}
	if (n > MAX_STRING) {
		rc = DG_ERR_TOOBIG;
		goto out;
	}
	s[n] = '\0';
	*out = s;
	s = NULL;
	rc = DG_OK;
out:
	free(s);
	return rc;
}

/* The next token of l decoded; required values may not be "-". */
static int
take_value(struct line *l, bool required, char **out)
{
	const char *tok;
	size_t len;
	int rc;

	if (!next_token(l, &tok, &len))
		return DG_ERR_FORMAT;
	if ((rc = decode_token(tok, len, false, out)) != DG_OK)
		return rc;
	if (required && (*out)[0] == '\0') {
		free(*out);
		*out = NULL;
		return DG_ERR_FORMAT;
	}
	return DG_OK;
}

/* The next token of l must be one of words; *index receives which. */
static int
take_word(struct line *l, const char *const *words, size_t n_words, size_t *index)
{
	const char *tok;
	size_t len;

	if (!next_token(l, &tok, &len))
		return DG_ERR_FORMAT;
	for (size_t i = 0; i < n_words; i++) {
		if (strlen(words[i]) == len && memcmp(words[i], tok, len) == 0) {
			*index = i;
			return DG_OK;
		}
	}
	return DG_ERR_FORMAT;
}

/* A decimal 0..UINT32_MAX as snprintf("%u") writes it (no sign, no leading 0). */
static int
take_u32(struct line *l, uint32_t *out)
{
	const char *tok;
	size_t len;
	uint64_t v = 0;

	if (!next_token(l, &tok, &len) || len == 0 || len > 10 || (tok[0] == '0' && len > 1))
		return DG_ERR_FORMAT;
	for (size_t i = 0; i < len; i++) {
		if (tok[i] < '0' || tok[i] > '9')
			return DG_ERR_FORMAT;
		v = v * 10 + (uint64_t)(tok[i] - '0');
	}
	if (v > UINT32_MAX)
		return DG_ERR_FORMAT;
	*out = (uint32_t)v;
	return DG_OK;
}

static int
take_bool(struct line *l, bool *out)
{
	static const char *const words[] = {"false", "true"};
	size_t i = 0;
	int rc = take_word(l, words, 2, &i);

	*out = i == 1;
	return rc;
}

static int
parse_env(struct line *l, struct dg_container *c)
{
	const size_t prefix_len = strlen(DIGEST_PREFIX);
	struct env_var *e;
	const char *tok;
	size_t len;
	int rc;

	if (c->n_env == MAX_ENV)
		return DG_ERR_TOOBIG;
	if ((e = grow(c->env, c->n_env, 1, sizeof *c->env)) == NULL)
		return DG_ERR_NOMEM;
	c->env = e;
	e = &c->env[c->n_env];
	if ((rc = take_value(l, true, &e->name)) != DG_OK)
		return rc;
	c->n_env++;
	if (c->n_env > 1 && strcmp(c->env[c->n_env - 2].name, e->name) >= 0)
		return DG_ERR_FORMAT;
	if (!next_token(l, &tok, &len) || len != prefix_len + 2 * DG_SHA256_LEN ||
	    memcmp(tok, DIGEST_PREFIX, prefix_len) != 0)
		return DG_ERR_FORMAT;
	return dg_text_hex_decode(tok + prefix_len, 2 * DG_SHA256_LEN, e->value_sha256, true);
}

static int
parse_user(struct line *l, struct dg_container *c)
{
	int rc;

	if ((rc = take_u32(l, &c->uid)) != DG_OK || (rc = take_u32(l, &c->gid)) != DG_OK)
		return rc;
	while (l->p != NULL) {
		if (c->n_gids == MAX_GIDS)
			return DG_ERR_TOOBIG;
		uint32_t *grown = grow(c->gids, c->n_gids, 1, sizeof *c->gids);
		if (grown == NULL)
			return DG_ERR_NOMEM;
		c->gids = grown;
		if ((rc = take_u32(l, &c->gids[c->n_gids])) != DG_OK)
			return rc;
		c->n_gids++;
	}
	return DG_OK;
}

static int
parse_cap(struct line *l, struct dg_container *c)
{
	struct cap *cap;
	size_t in_set = 0;
	int rc;

	if ((cap = grow(c->caps, c->n_caps, 1, sizeof *c->caps)) == NULL)
		return DG_ERR_NOMEM;
	c->caps = cap;
	cap = &c->caps[c->n_caps];
	if ((rc = take_word(l, cap_sets, N_CAP_SETS, &cap->set)) != DG_OK ||
	    (rc = take_value(l, true, &cap->name)) != DG_OK)
		return rc;
	c->n_caps++;
	if (c->n_caps > 1 && compare_cap(&c->caps[c->n_caps - 2], cap) >= 0)
		return DG_ERR_FORMAT;
	for (size_t i = c->n_caps; i > 0 && c->caps[i - 1].set == cap->set; i--)
		in_set++;
	return in_set > MAX_CAPS_PER_SET ? DG_ERR_TOOBIG : DG_OK;
}

static int
parse_options(const char *tok, size_t len, struct strv *options)
{
	const char *end = tok + len, *p = tok, *comma;
	int rc;

	if (len == strlen(NONE) && memcmp(tok, NONE, len) == 0)
		return DG_OK;
	do {
		comma = memchr(p, ',', (size_t)(end - p));
		const char *stop = comma != NULL ? comma : end;
		char *option = NULL;
		if (options->n == MAX_MOUNT_OPTIONS)
			return DG_ERR_TOOBIG;
		if ((rc = decode_token(p, (size_t)(stop - p), true, &option)) != DG_OK)
			return rc;
		if (option[0] == '\0') {
			free(option);
			return DG_ERR_FORMAT;
		}
		if ((rc = strv_push(options, option)) != DG_OK)
			return rc;
		p = stop + 1;
	} while (comma != NULL);
	return DG_OK;
}

static int
parse_mount(struct line *l, struct dg_container *c)
{
	struct mount *m;
	const char *tok;
	size_t len;
	int rc;

	if (c->n_mounts == MAX_MOUNTS)
		return DG_ERR_TOOBIG;
	if ((m = grow(c->mounts, c->n_mounts, 1, sizeof *c->mounts)) == NULL)
		return DG_ERR_NOMEM;
	c->mounts = m;
	m = &c->mounts[c->n_mounts++];
	if ((rc = take_value(l, true, &m->destination)) != DG_OK ||
	    (rc = take_value(l, false, &m->type)) != DG_OK ||
	    (rc = take_value(l, false, &m->source)) != DG_OK)
		return rc;
	if (!next_token(l, &tok, &len))
		return DG_ERR_FORMAT;
	return parse_options(tok, len, &m->options);
}

static int
parse_namespace(struct line *l, struct dg_container *c)
{
	struct namespace *ns;
	int rc;

	if (c->n_namespaces == MAX_NAMESPACES)
		return DG_ERR_TOOBIG;
	if ((ns = grow(c->namespaces, c->n_namespaces, 1, sizeof *c->namespaces)) == NULL)
		return DG_ERR_NOMEM;
	c->namespaces = ns;
	ns = &c->namespaces[c->n_namespaces++];
	if ((rc = take_value(l, true, &ns->type)) != DG_OK ||
	    (rc = take_value(l, false, &ns->path)) != DG_OK)
		return rc;
	if (c->n_namespaces > 1 && compare_namespace(ns - 1, ns) >= 0)
		return DG_ERR_FORMAT;
	return DG_OK;
}

static int
parse_hook(struct line *l, struct dg_container *c)
{
	struct hook *h;
	size_t in_stage = 0;
	int rc;

	if ((h = grow(c->hooks, c->n_hooks, 1, sizeof *c->hooks)) == NULL)
		return DG_ERR_NOMEM;
	c->hooks = h;
	h = &c->hooks[c->n_hooks++];
	if ((rc = take_word(l, hook_stages, N_HOOK_STAGES, &h->stage)) != DG_OK ||
	    (rc = take_value(l, true, &h->path)) != DG_OK)
		return rc;
	if (c->n_hooks > 1 && h[-1].stage > h->stage)
		return DG_ERR_FORMAT;
	for (size_t i = c->n_hooks; i > 0 && c->hooks[i - 1].stage == h->stage; i--)
		in_stage++;
	if (in_stage > MAX_HOOKS_PER_STAGE)
		return DG_ERR_TOOBIG;
	while (l->p != NULL) {
		char *arg = NULL;
		if (h->args.n == MAX_HOOK_ARGS)
			return DG_ERR_TOOBIG;
		if ((rc = take_value(l, false, &arg)) != DG_OK || (rc = strv_push(&h->args, arg)) != DG_OK)
			return rc;
	}
	return DG_OK;
}

static int
parse_name(struct line *l, char **out)
{
	int rc = take_value(l, false, out);
	if (rc == DG_OK && (*out)[0] != '\0' && !name_valid(*out))
		return DG_ERR_FORMAT;
	return rc;
}

/* The fields of one line after its keyword. */
static int
parse_fields(struct line *l, enum section sec, struct dg_container *c)
{
	static const char *const version[] = {HEADER_VERSION};
	size_t unused;
	char *arg = NULL;
	int rc;

	switch (sec) {
	case SEC_HEADER:
		return take_word(l, version, 1, &unused);
	case SEC_WORKLOAD:
		return parse_name(l, &c->workload);
	case SEC_NAME:
		return parse_name(l, &c->name);
	case SEC_IMAGE_REF:
		return take_value(l, false, &c->image_ref);
	case SEC_IMAGE_DIGEST:
		return take_value(l, false, &c->image_digest);
	case SEC_ARG:
		if (c->args.n == MAX_ARGS)
			return DG_ERR_TOOBIG;
		rc = take_value(l, false, &arg);
		return rc == DG_OK ? strv_push(&c->args, arg) : rc;
	case SEC_ENV:
		return parse_env(l, c);
	case SEC_CWD:
		return take_value(l, false, &c->cwd);
	case SEC_USER:
		return parse_user(l, c);
	case SEC_NO_NEW_PRIVILEGES:
		return take_bool(l, &c->no_new_privileges);
	case SEC_READONLY_ROOTFS:
		return take_bool(l, &c->readonly_rootfs);
	case SEC_CAP:
		return parse_cap(l, c);
	case SEC_MOUNT:
		return parse_mount(l, c);
	case SEC_NAMESPACE:
		return parse_namespace(l, c);
	case SEC_HOOK:
		return parse_hook(l, c);
	case SEC_COUNT:
		break;
	}
	return DG_ERR_FORMAT;
}

/* Read one line; *next is the first section still allowed, and no section
 * that must appear once may be skipped. */
static int
parse_line(const char *s, size_t len, enum section *next, struct dg_container *c)
{
	struct line l = {s, s + len};
	const char *kw;
	size_t kw_len;
	enum section sec;
	int rc;

	next_token(&l, &kw, &kw_len);
	for (sec = 0; sec < SEC_COUNT; sec++) {
		if (strlen(sections[sec].keyword) == kw_len &&
		    memcmp(sections[sec].keyword, kw, kw_len) == 0)
			break;
	}
	if (sec == SEC_COUNT || sec < *next)
		return DG_ERR_FORMAT;
	for (enum section skipped = *next; skipped < sec; skipped++) {
		if (!sections[skipped].repeated)
			return DG_ERR_FORMAT;
	}
	if ((rc = parse_fields(&l, sec, c)) != DG_OK)
		return rc;
	if (l.p != NULL) /* more tokens than the line has fields */
		return DG_ERR_FORMAT;
	*next = sections[sec].repeated ? sec : sec + 1;
	return DG_OK;
}

int
dg_container_parse(const char *text, size_t len, struct dg_container **out)
{
	struct dg_container *c = NULL;
	enum section next = SEC_HEADER;
	size_t off = 0;
	int rc;

	if (text == NULL || out == NULL)
		return DG_ERR_INVAL;
	if (len > DG_CONTAINER_MAX_RECORD)
		return DG_ERR_TOOBIG;
	if ((c = calloc(1, sizeof *c)) == NULL)
		return DG_ERR_NOMEM;
	while (off < len) {
		const char *nl = memchr(text + off, '\n', len - off);
		if (nl == NULL) { /* encode ends every line */
			rc = DG_ERR_FORMAT;
			goto out;
		}
		if ((rc = parse_line(text + off, (size_t)(nl - (text + off)), &next, c)) != DG_OK)
			goto out;
		off = (size_t)(nl - text) + 1;
	}
	for (enum section missing = next; missing < SEC_COUNT; missing++) {
		if (!sections[missing].repeated) {
			rc = DG_ERR_FORMAT;
			goto out;
		}
	}
	*out = c;
	c = NULL;
	rc = DG_OK;
out:
	dg_container_free(c);
	return rc;
}

/* ---- diff ---- */

struct diff {
	struct dg_reason *reasons;
	size_t max, n;
};

static void
report(struct diff *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
report(struct diff *d, const char *fmt, ...)
{
	char detail[DG_REASON_DETAIL_MAX];
	va_list ap;

	if (d->n == d->max)
		return;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof detail, fmt, ap);
	va_end(ap);
	dg_reason_set(&d->reasons[d->n++], "spec-changed", "%s", detail);
}

/* Append text to a QUOTE_CAP buffer, ending it ".." when it does not fit:
 * reasons show values, records carry them. */
static void
quote_put(char *out, const char *text, size_t len)
{
	const size_t room = QUOTE_CAP - 3; /* keeps space for ".." and the NUL */
	size_t used = strlen(out);

	if (used > room) /* already cut */
		return;
	if (len <= room - used) {
		memcpy(out + used, text, len);
		out[used + len] = '\0';
		return;
	}
	memcpy(out + used, text, room - used);
	memcpy(out + room, "..", 3);
}

static void
quote_token(char *out, const char *raw, bool in_options)
{
	const char *special = special_spelling(raw);
	char esc[4];

	if (special != NULL) {
		quote_put(out, special, strlen(special));
		return;
	}
	for (const char *p = raw; *p != '\0'; p++)
		quote_put(out, esc, escape_byte((unsigned char)*p, in_options, esc));
}

/* The escaped form of one value, as the record writes it. */
static const char *
quote(char out[QUOTE_CAP], const char *raw)
{
	out[0] = '\0';
	quote_token(out, raw, false);
	return out;
}

static const char *
quote_options(char out[QUOTE_CAP], const struct strv *options)
{
	out[0] = '\0';
	if (options->n == 0)
		quote_put(out, NONE, strlen(NONE));
	for (size_t i = 0; i < options->n; i++) {
		if (i > 0)
			quote_put(out, ",", 1);
		quote_token(out, options->v[i], true);
	}
	return out;
}

static const char *
quote_user(char out[QUOTE_CAP], const struct dg_container *c)
{
	char num[16];

	snprintf(out, QUOTE_CAP, "%u %u", (unsigned)c->uid, (unsigned)c->gid);
	for (size_t i = 0; i < c->n_gids; i++) {
		snprintf(num, sizeof num, " %u", (unsigned)c->gids[i]);
		quote_put(out, num, strlen(num));
	}
	return out;
}

static bool
user_equal(const struct dg_container *a, const struct dg_container *b)
{
	return a->uid == b->uid && a->gid == b->gid && a->n_gids == b->n_gids &&
	       (a->n_gids == 0 || memcmp(a->gids, b->gids, a->n_gids * sizeof *a->gids) == 0);
}

/* A hook as its record line writes it, after the keyword. */
static const char *
quote_hook(char out[QUOTE_CAP], const struct hook *h)
{
	out[0] = '\0';
	quote_put(out, hook_stages[h->stage], strlen(hook_stages[h->stage]));
	quote_put(out, " ", 1);
	quote_token(out, h->path, false);
	for (size_t i = 0; i < h->args.n; i++) {
		quote_put(out, " ", 1);
		quote_token(out, h->args.v[i], false);
	}
	return out;
}

static void
diff_value(struct diff *d, const char *field, const char *old, const char *new)
{
	char a[QUOTE_CAP], b[QUOTE_CAP];

	if (strcmp(old, new) != 0)
		report(d, "%s: %s -> %s", field, quote(a, old), quote(b, new));
}

static void
diff_args(struct diff *d, const struct strv *old, const struct strv *new)
{
	char a[QUOTE_CAP], b[QUOTE_CAP];

	for (size_t i = 0; i < old->n || i < new->n; i++) {
		if (i >= new->n)
			report(d, "arg[%zu] removed: %s", i, quote(a, old->v[i]));
		else if (i >= old->n)
			report(d, "arg[%zu] added: %s", i, quote(b, new->v[i]));
		else if (strcmp(old->v[i], new->v[i]) != 0)
			report(d, "arg[%zu]: %s -> %s", i, quote(a, old->v[i]), quote(b, new->v[i]));
	}
}

static void
diff_env(struct diff *d, const struct dg_container *old, const struct dg_container *new)
{
	char q[QUOTE_CAP], a[2 * DG_SHA256_LEN + 1], b[2 * DG_SHA256_LEN + 1];
	size_t i = 0, k = 0;

	while (i < old->n_env || k < new->n_env) {
		const struct env_var *o = i < old->n_env ? &old->env[i] : NULL;
		const struct env_var *s = k < new->n_env ? &new->env[k] : NULL;
		/* On the indices, not the pointers: one side always has an entry left. */
		int cmp = i == old->n_env ? 1 : k == new->n_env ? -1 : strcmp(o->name, s->name);
		if (cmp < 0) {
			report(d, "env %s removed", quote(q, o->name));
			i++;
		} else if (cmp > 0) {
			report(d, "env %s added", quote(q, s->name));
			k++;
		} else {
			if (memcmp(o->value_sha256, s->value_sha256, DG_SHA256_LEN) != 0) {
				dg_text_hex_encode(o->value_sha256, DG_SHA256_LEN, a);
				dg_text_hex_encode(s->value_sha256, DG_SHA256_LEN, b);
				report(d, "env %s: " DIGEST_PREFIX "%.*s.. -> " DIGEST_PREFIX "%.*s..",
				       quote(q, o->name), DIFF_HASH_HEX, a, DIFF_HASH_HEX, b);
			}
			i++;
			k++;
		}
	}
}

static void
diff_caps(struct diff *d, const struct dg_container *old, const struct dg_container *new)
{
	char q[QUOTE_CAP];
	size_t i = 0, k = 0;

	while (i < old->n_caps || k < new->n_caps) {
		const struct cap *o = i < old->n_caps ? &old->caps[i] : NULL;
		const struct cap *s = k < new->n_caps ? &new->caps[k] : NULL;
		int cmp = i == old->n_caps ? 1 : k == new->n_caps ? -1 : compare_cap(o, s);
		if (cmp < 0) {
			report(d, "cap %s %s removed", cap_sets[o->set], quote(q, o->name));
			i++;
		} else if (cmp > 0) {
			report(d, "cap %s %s added", cap_sets[s->set], quote(q, s->name));
			k++;
		} else {
			i++;
			k++;
		}
	}
}

/* The index in to of the mount that pairs with from[i]: the same destination,
 * as often seen before it. n_to if none. */
static size_t
mount_partner(const struct mount *from, size_t i, const struct mount *to, size_t n_to)
{
	size_t earlier = 0;

	for (size_t k = 0; k < i; k++)
		earlier += strcmp(from[k].destination, from[i].destination) == 0;
	for (size_t k = 0; k < n_to; k++) {
		if (strcmp(to[k].destination, from[i].destination) == 0 && earlier-- == 0)
			return k;
	}
	return n_to;
}

static bool
strv_equal(const struct strv *a, const struct strv *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++) {
		if (strcmp(a->v[i], b->v[i]) != 0)
			return false;
	}
	return true;
}

static void
diff_mounts(struct diff *d, const struct dg_container *old, const struct dg_container *new)
{
	char dst[QUOTE_CAP], a[QUOTE_CAP], b[QUOTE_CAP];
	bool reordered = false;
	size_t last = 0;

	for (size_t i = 0; i < old->n_mounts; i++) {
		const struct mount *m = &old->mounts[i];
		size_t k = mount_partner(old->mounts, i, new->mounts, new->n_mounts);
		quote(dst, m->destination);
		if (k == new->n_mounts) {
			report(d, "mount %s removed", dst);
			continue;
		}
		const struct mount *s = &new->mounts[k];
		if (strcmp(m->type, s->type) != 0)
			report(d, "mount %s: type %s -> %s", dst, quote(a, m->type), quote(b, s->type));
		if (strcmp(m->source, s->source) != 0)
			report(d, "mount %s: source %s -> %s", dst, quote(a, m->source),
			       quote(b, s->source));
		if (!strv_equal(&m->options, &s->options))
			report(d, "mount %s: options %s -> %s", dst, quote_options(a, &m->options),
			       quote_options(b, &s->options));
		/* Order matters: a mount can hide what an earlier one put below it. */
		reordered |= k < last;
		last = k;
	}
	for (size_t k = 0; k < new->n_mounts; k++) {
		if (mount_partner(new->mounts, k, old->mounts, old->n_mounts) == old->n_mounts)
			report(d, "mount %s added", quote(dst, new->mounts[k].destination));
	}
	if (reordered)
		report(d, "mount order changed");
}

static void
diff_namespaces(struct diff *d, const struct dg_container *old, const struct dg_container *new)
{
	char q[QUOTE_CAP], a[QUOTE_CAP], b[QUOTE_CAP];
	size_t i = 0, k = 0;

	while (i < old->n_namespaces || k < new->n_namespaces) {
		const struct namespace *o = i < old->n_namespaces ? &old->namespaces[i] : NULL;
		const struct namespace *s = k < new->n_namespaces ? &new->namespaces[k] : NULL;
		int cmp = i == old->n_namespaces   ? 1
		          : k == new->n_namespaces ? -1
		                                   : compare_namespace(o, s);
		if (cmp < 0) {
			report(d, "namespace %s removed", quote(q, o->type));
			i++;
		} else if (cmp > 0) {
			report(d, "namespace %s added", quote(q, s->type));
			k++;
		} else {
			if (strcmp(o->path, s->path) != 0)
				report(d, "namespace %s: path %s -> %s", quote(q, o->type),
				       quote(a, o->path), quote(b, s->path));
			i++;
			k++;
		}
	}
}

static bool
hook_equal(const struct hook *a, const struct hook *b)
{
	return a->stage == b->stage && strcmp(a->path, b->path) == 0 && strv_equal(&a->args, &b->args);
}

/* Like mount_partner, for hooks equal in every field. */
static size_t
hook_partner(const struct hook *from, size_t i, const struct hook *to, size_t n_to)
{
	size_t earlier = 0;

	for (size_t k = 0; k < i; k++)
		earlier += hook_equal(&from[k], &from[i]);
	for (size_t k = 0; k < n_to; k++) {
		if (hook_equal(&to[k], &from[i]) && earlier-- == 0)
			return k;
	}
	return n_to;
}

static void
diff_hooks(struct diff *d, const struct dg_container *old, const struct dg_container *new)
{
	char q[QUOTE_CAP];
	bool reordered = false;
	size_t last = 0;

	for (size_t i = 0; i < old->n_hooks; i++) {
		size_t k = hook_partner(old->hooks, i, new->hooks, new->n_hooks);
		if (k == new->n_hooks) {
			report(d, "hook %s removed", quote_hook(q, &old->hooks[i]));
			continue;
		}
		/* A stage runs its hooks in order. */
		reordered |= k < last;
		last = k;
	}
	for (size_t k = 0; k < new->n_hooks; k++) {
		if (hook_partner(new->hooks, k, old->hooks, old->n_hooks) == old->n_hooks)
			report(d, "hook %s added", quote_hook(q, &new->hooks[k]));
	}
	if (reordered)
		report(d, "hook order changed");
}

int
dg_container_diff(const struct dg_container *approved, const struct dg_container *seen,
                  struct dg_reason *reasons, size_t max, size_t *n)
{
	struct diff d = {reasons, max, 0};
	char a[QUOTE_CAP], b[QUOTE_CAP];

	if (approved == NULL || seen == NULL || n == NULL || (reasons == NULL && max > 0))
		return DG_ERR_INVAL;
	diff_value(&d, "workload", approved->workload, seen->workload);
	diff_value(&d, "name", approved->name, seen->name);
	diff_value(&d, "image-ref", approved->image_ref, seen->image_ref);
	diff_value(&d, "image-digest", approved->image_digest, seen->image_digest);
	diff_args(&d, &approved->args, &seen->args);
	diff_env(&d, approved, seen);
	diff_value(&d, "cwd", approved->cwd, seen->cwd);
	if (!user_equal(approved, seen))
		report(&d, "user: %s -> %s", quote_user(a, approved), quote_user(b, seen));
	if (approved->no_new_privileges != seen->no_new_privileges)
		report(&d, "no-new-privileges: %s -> %s", bool_text(approved->no_new_privileges),
		       bool_text(seen->no_new_privileges));
	if (approved->readonly_rootfs != seen->readonly_rootfs)
		report(&d, "readonly-rootfs: %s -> %s", bool_text(approved->readonly_rootfs),
		       bool_text(seen->readonly_rootfs));
	diff_caps(&d, approved, seen);
	diff_mounts(&d, approved, seen);
	diff_namespaces(&d, approved, seen);
	diff_hooks(&d, approved, seen);
	*n = d.n;
	return DG_OK;
}
