/*
 * Baselines: parsing and appraisal.
 *
 * Allowed (path, digest) pairs are records in one arena. The first record of
 * a path carries the path string inline and sits in an open-addressing hash
 * table (linear probing, load at most 1/2); further approved digests of the
 * same path are chained from it. Appraisal is one hash lookup plus a walk over
 * that path's few digests: a table slot and one record, whose digest and path
 * are adjacent, so a lookup in a large baseline costs few cache misses. The
 * arena is sized from the baseline's length up front (a record is never longer
 * than its allow line), so parsing allocates nothing per line.
 */
#include "driftgate/policy.h"

#include <fnmatch.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driftgate/err.h"
#include "driftgate/text.h"

#define HEADER_KEYWORD "driftgate-baseline"
#define HEADER_VERSION "1"
#define DIGEST_PREFIX "sha256:"
#define MIN_SLOTS 64
/* Exclude expressions: bounds that keep glibc's compiled form small. */
#define EXCLUDE_MAX_LEN 1024
#define EXCLUDE_MAX_DEPTH 8
/* How much of an offending token an error message quotes. */
#define ERR_QUOTE_MAX 40
/* Records are aligned to, and addressed in units of, ALLOW_ALIGN bytes. */
#define ALLOW_ALIGN 8
#define MIN_ARENA 4096

/* One approved (path, digest) pair. Referenced by 1 + offset / ALLOW_ALIGN in
 * the arena (0 = none), which keeps table slots at four bytes. */
struct allow {
	uint64_t hash;     /* path_hash of the path */
	uint32_t path_len; /* 0 in records chained for extra digests */
	uint32_t next;     /* another approved digest of this path, 0 = none */
	uint8_t digest[DG_SHA256_LEN];
	char path[];       /* path_len bytes and a NUL; first record of a path only */
};

struct dg_policy {
	char name[DG_POLICY_MAX_NAME + 1];
	char **agents;
	size_t n_agents;
	char **secrets;
	size_t n_secrets;
	unsigned lease_s; /* 0 until a lease line: DG_LEASE_DEFAULT_S */
	regex_t *excludes;
	size_t n_excludes;
	unsigned char *arena; /* struct allow records, back to back */
	size_t arena_len, arena_cap;
	size_t n_allows;
	uint32_t *slots; /* a path's first record, 0 = empty */
	size_t n_slots;
	size_t n_paths;
};

/* ---- small helpers ---- */

static uint64_t
hash_mix(uint64_t h)
{
	/* MurmurHash3's fmix64: every input bit reaches the low (index) bits. */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

static uint64_t
path_hash(const char *s, size_t len)
{
	/* Unkeyed, eight bytes a step: keys come from the reviewed baseline, not
	 * from the agent, and a lookup costs one probe sequence whatever it hashes
	 * to. Byte order does not matter: only equality with the same function
	 * on the same machine is used. */
	uint64_t h = 0x9e3779b97f4a7c15ull ^ (uint64_t)len, w;
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		memcpy(&w, s + i, 8);
		h = (h ^ w) * 0x100000001b3ull;
		h ^= h >> 29;
	}
	if (i < len) {
		w = 0;
		memcpy(&w, s + i, len - i);
		h = (h ^ w) * 0x100000001b3ull;
	}
	return hash_mix(h);
}

static void
set_err(char *err, size_t err_cap, size_t line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void
set_err(char *err, size_t err_cap, size_t line, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (err == NULL || err_cap == 0)
		return;
	n = snprintf(err, err_cap, "line %zu: ", line);
	if (n < 0 || (size_t)n >= err_cap)
		return;
	va_start(ap, fmt);
	vsnprintf(err + n, err_cap - (size_t)n, fmt, ap);
	va_end(ap);
	/* Messages quote baseline text: keep them one printable line. */
	for (char *p = err; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = '?';
	}
}

/* ---- allow table ---- */

static const struct allow *
allow_get(const struct dg_policy *p, uint32_t ref)
{
	return (const struct allow *)(p->arena + (size_t)(ref - 1) * ALLOW_ALIGN);
}

static struct allow *
allow_mut(struct dg_policy *p, uint32_t ref)
{
	return (struct allow *)(p->arena + (size_t)(ref - 1) * ALLOW_ALIGN);
}

static size_t
slot_find(const struct dg_policy *p, const char *path, size_t len, uint64_t hash)
{
	size_t mask = p->n_slots - 1;
	for (size_t i = (size_t)hash & mask;; i = (i + 1) & mask) {
		uint32_t ref = p->slots[i];
		if (ref == 0)
			return i;
		const struct allow *a = allow_get(p, ref);
		if (a->hash == hash && a->path_len == len && memcmp(a->path, path, len) == 0)
			return i;
	}
}

static int
slots_grow(struct dg_policy *p)
{
	size_t n = p->n_slots == 0 ? MIN_SLOTS : p->n_slots * 2, mask = n - 1;
	uint32_t *slots = calloc(n, sizeof *slots);

	if (slots == NULL)
		return DG_ERR_NOMEM;
	/* Re-insert every path's first record, walking the arena in order; the
	 * paths are distinct, so each goes to the first free slot. */
	for (size_t off = 0; off < p->arena_len;) {
		const struct allow *a = (const struct allow *)(p->arena + off);
		size_t size = sizeof *a;
		if (a->path_len != 0) {
			size_t i = (size_t)a->hash & mask;
			while (slots[i] != 0)
				i = (i + 1) & mask;
			slots[i] = (uint32_t)(off / ALLOW_ALIGN + 1);
			size += a->path_len + 1;
		}
		off += (size + ALLOW_ALIGN - 1) / ALLOW_ALIGN * ALLOW_ALIGN;
	}
	free(p->slots);
	p->slots = slots;
	p->n_slots = n;
	return DG_OK;
}

/* Room for size more bytes of records; *ref receives their reference. */
static int
arena_alloc(struct dg_policy *p, size_t size, uint32_t *ref)
{
	size = (size + ALLOW_ALIGN - 1) / ALLOW_ALIGN * ALLOW_ALIGN;
	if (p->arena_cap - p->arena_len < size) {
		size_t cap = p->arena_cap < MIN_ARENA ? MIN_ARENA : p->arena_cap;
		while (cap - p->arena_len < size)
			cap *= 2;
		/* References are 32-bit: far beyond DG_POLICY_MAX_TEXT's needs. */
		if (cap / ALLOW_ALIGN >= UINT32_MAX)
			return DG_ERR_TOOBIG;
		unsigned char *arena = realloc(p->arena, cap);
		if (arena == NULL)
			return DG_ERR_NOMEM;
		p->arena = arena;
		p->arena_cap = cap;
	}
	*ref = (uint32_t)(p->arena_len / ALLOW_ALIGN + 1);
	p->arena_len += size;
	return DG_OK;
}

/* Add one (path, digest); path is copied. Exact repeats are folded into the
 * existing record. */
static int
allow_add(struct dg_policy *p, const char *path, size_t len,
          const uint8_t digest[DG_SHA256_LEN])
{
	uint64_t hash;
	size_t slot;
	uint32_t head, ref;
	struct allow *a;
	int rc;

	/* unescape_path never yields an empty path; memcpy below may not see NULL. */
	if (path == NULL || len == 0)
		return DG_ERR_INVAL;
	hash = path_hash(path, len);
	if ((p->n_paths + 1) * 2 > p->n_slots && (rc = slots_grow(p)) != DG_OK)
		return rc;
	slot = slot_find(p, path, len, hash);
	head = p->slots[slot];
	for (uint32_t r = head; r != 0; r = allow_get(p, r)->next) {
		if (memcmp(allow_get(p, r)->digest, digest, DG_SHA256_LEN) == 0)
			return DG_OK;
	}
	if ((rc = arena_alloc(p, sizeof *a + (head == 0 ? len + 1 : 0), &ref)) != DG_OK)
		return rc;
	a = allow_mut(p, ref);
	a->hash = hash;
	a->path_len = head == 0 ? (uint32_t)len : 0;
	a->next = 0;
	memcpy(a->digest, digest, DG_SHA256_LEN);
	if (head == 0) {
		memcpy(a->path, path, len);
		a->path[len] = '\0';
		p->slots[slot] = ref;
		p->n_paths++;
	} else {
		struct allow *first = allow_mut(p, head);
		a->next = first->next;
		first->next = ref;
	}
	p->n_allows++;
	return DG_OK;
}

/* ---- line parsing ---- */

struct parse_ctx {
	struct dg_policy *p;
	size_t line;
	bool have_header;
	char *err;
	size_t err_cap;
	char *scratch; /* unescaped path of the current line */
	size_t scratch_cap;
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
	set_err(c->err, c->err_cap, c->line, "%s", msg);
	return DG_ERR_FORMAT;
}

/* Decode an allow path: \\ and \xHH escapes; the result has no NUL. It lives
 * in c->scratch until the next line. */
static int
unescape_path(struct parse_ctx *c, const char *s, size_t len, char **out, size_t *out_len)
{
	char *buf;
	size_t n = 0;

	if (c->scratch_cap < len + 1) {
		size_t cap = len + 1 > 2 * c->scratch_cap ? len + 1 : 2 * c->scratch_cap;
		if ((buf = realloc(c->scratch, cap)) == NULL)
			return DG_ERR_NOMEM;
		c->scratch = buf;
		c->scratch_cap = cap;
	}
	buf = c->scratch;
	for (size_t i = 0; i < len; i++) {
		/* Copy the run up to the next escape in one go. */
		const char *bs = memchr(s + i, '\\', len - i);
		size_t run = bs != NULL ? (size_t)(bs - (s + i)) : len - i;
		memcpy(buf + n, s + i, run);
		n += run;
		i += run;
		if (i == len)
			break;
		if (i + 1 < len && s[i + 1] == '\\') {
			buf[n++] = '\\';
			i++;
			continue;
		}
		int hi = i + 3 < len && s[i + 1] == 'x' ? dg_text_hex_digit(s[i + 2], false) : -1;
		int lo = hi >= 0 ? dg_text_hex_digit(s[i + 3], false) : -1;
		if (lo < 0)
			return fail(c, "bad escape at path offset %zu", i);
		if ((hi | lo) == 0)
			return fail(c, "NUL byte escaped in path");
		buf[n++] = (char)(hi << 4 | lo);
		i += 3;
	}
	if (n == 0 || buf[0] != '/')
		return fail(c, "path is not absolute");
	if (n > DG_LOG_MAX_PATH)
		return fail(c, "path longer than %d bytes", DG_LOG_MAX_PATH);
	/* The kernel logs a path with its spaces turned into '_' (so ascii logs
	 * stay splittable); baselines name real paths, so match the logged form. */
	for (size_t i = 0; i < n; i++)
		if (buf[i] == ' ')
			buf[i] = '_';
	buf[n] = '\0';
	*out = buf;
	*out_len = n;
	return DG_OK;
}

static int
parse_allow(struct parse_ctx *c, const char *arg, size_t len)
{
	const size_t prefix_len = strlen(DIGEST_PREFIX);
	uint8_t digest[DG_SHA256_LEN];
	char *path = NULL;
	size_t path_len = 0, i = prefix_len + 2 * DG_SHA256_LEN;
	int rc;

	if (len < prefix_len || memcmp(arg, DIGEST_PREFIX, prefix_len) != 0) {
		rc = fail(c, "allow needs 'sha256:<64 hex digits> <path>'");
		goto out;
	}
	if (len < i ||
	    dg_text_hex_decode(arg + prefix_len, 2 * DG_SHA256_LEN, digest, false) != DG_OK) {
		rc = fail(c, "bad sha256 hex digest");
		goto out;
	}
	if (i == len || !dg_text_is_blank(arg[i])) {
		rc = fail(c, i == len ? "allow has no path" : "bad sha256 hex digest");
		goto out;
	}
	while (i < len && dg_text_is_blank(arg[i]))
		i++;
	if ((rc = unescape_path(c, arg + i, len - i, &path, &path_len)) != DG_OK)
		goto out;
	rc = allow_add(c->p, path, path_len, digest);
out:
	return rc;
}

/*
 * Shape rules for an exclude expression, checked before regcomp ever sees it.
 * Returns what is wrong, or NULL.
 *  - Parentheses must balance outside escapes and brackets: glibc's ERE takes
 *    a stray ')' literally, and "/)|(.*)" wrapped as "^(/)|(.*))$" would match
 *    every path starting with '/'.
 *  - glibc compiles '+' and intervals by copying their operand, so stacked
 *    repetitions ("a+++", undefined in POSIX anyway), intervals and deep
 *    groups grow the compiled form exponentially: the first two are refused
 *    and group depth is bounded.
 */
static const char *
exclude_shape_problem(const char *re)
{
	size_t depth = 0;
	bool after_repeat = false;

	for (size_t i = 0; re[i] != '\0'; i++) {
		bool repeat = false;
		if (re[i] == '\\') {
			if (re[i + 1] != '\0')
				i++;
		} else if (re[i] == '[') {
			i++;
			if (re[i] == '^')
				i++;
			if (re[i] == ']')
				i++; /* a leading ']' is a member */
			while (re[i] != '\0' && re[i] != ']') {
				/* [:class:], [=equiv=], [.coll.] hold their own ']' */
				if (re[i] == '[' && re[i + 1] != '\0' && strchr(":=.", re[i + 1]) != NULL) {
					char close = re[i + 1];
					i += 2;
					while (re[i] != '\0' && !(re[i] == close && re[i + 1] == ']'))
						i++;
					if (re[i] != '\0')
						i++;
				}
				if (re[i] != '\0')
					i++;
			}
			if (re[i] == '\0')
				return "unclosed '['";
		} else if (re[i] == '(') {
			if (++depth > EXCLUDE_MAX_DEPTH)
				return "groups nested too deeply";
		} else if (re[i] == ')') {
			if (depth == 0)
				return "unmatched ')'";
			depth--;
		} else if (re[i] == '{') {
			return "interval expressions are not supported";
		} else if (re[i] == '+' || re[i] == '*' || re[i] == '?') {
			if (after_repeat)
				return "repetition of a repetition";
			repeat = true;
		}
		after_repeat = repeat;
	}
	return depth == 0 ? NULL : "unmatched '('";
}

static int
parse_exclude(struct parse_ctx *c, const char *arg, size_t len)
{
	struct dg_policy *p = c->p;
	char *re = NULL, *anchored = NULL;
	const char *problem;
	int rc, rerr;

	if (len > EXCLUDE_MAX_LEN) {
		rc = fail(c, "exclude regex longer than %d bytes", EXCLUDE_MAX_LEN);
		goto out;
	}
	re = strndup(arg, len);
	anchored = malloc(len + 5);
	if (re == NULL || anchored == NULL) {
		rc = DG_ERR_NOMEM;
		goto out;
	}
	if ((problem = exclude_shape_problem(re)) != NULL) {
		rc = fail(c, "bad exclude regex: %s", problem);
		goto out;
	}
	snprintf(anchored, len + 5, "^(%s)$", re);
	regex_t *grown = realloc(p->excludes, (p->n_excludes + 1) * sizeof *grown);
	if (grown == NULL) {
		rc = DG_ERR_NOMEM;
		goto out;
	}
	p->excludes = grown;
	rerr = regcomp(&p->excludes[p->n_excludes], anchored, REG_EXTENDED | REG_NOSUB);
	if (rerr != 0) {
		char why[128];
		regerror(rerr, &p->excludes[p->n_excludes], why, sizeof why);
		rc = fail(c, "bad exclude regex: %s", why);
		goto out;
	}
	p->n_excludes++;
	rc = DG_OK;
out:
	free(anchored);
	free(re);
	return rc;
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

static int
parse_line(struct parse_ctx *c, const char *s, size_t len)
{
	struct dg_policy *p = c->p;
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
		return fail(c, "unsupported baseline version '%.*s'",
		            arg_len > ERR_QUOTE_MAX ? ERR_QUOTE_MAX : (int)arg_len, arg);
	case DG_TEXT_HEADER_REPEATED:
		return fail(c, "repeated header");
	case DG_TEXT_HEADER_BODY:
		break;
	}
#define KW_IS(word) dg_text_directive_is(&d, word)
	if (KW_IS("allow"))
		return parse_allow(c, arg, arg_len);
	if (arg_len == 0 && (KW_IS("name") || KW_IS("agent") || KW_IS("exclude") ||
	                     KW_IS("secret")))
		return fail(c, "'%.*s' needs an argument", (int)d.keyword_len, d.keyword);
	if (KW_IS("name")) {
		if (p->name[0] != '\0')
			return fail(c, "duplicate name");
		if (!dg_text_name_valid(arg, arg_len, DG_POLICY_MAX_NAME))
			return fail(c, "bad name (want [A-Za-z0-9._-]{1,%d})", DG_POLICY_MAX_NAME);
		memcpy(p->name, arg, arg_len);
		p->name[arg_len] = '\0';
		return DG_OK;
	}
	if (KW_IS("agent")) {
		if (has_blank_or_control(arg, arg_len))
			return fail(c, "agent pattern has blanks or control characters");
		return list_add(&p->agents, &p->n_agents, arg, arg_len);
	}
	if (KW_IS("secret")) {
		if (!dg_text_name_valid(arg, arg_len, DG_POLICY_MAX_NAME))
			return fail(c, "bad secret name (want [A-Za-z0-9._-]{1,%d})",
			            DG_POLICY_MAX_NAME);
		return list_add(&p->secrets, &p->n_secrets, arg, arg_len);
	}
	if (KW_IS("exclude"))
		return parse_exclude(c, arg, arg_len);
	if (KW_IS("lease")) {
		const char *why = dg_lease_parse(arg, arg_len, &p->lease_s);
		return why != NULL ? fail(c, "%s", why) : DG_OK;
	}
#undef KW_IS
	return fail(c, "unknown directive '%.*s'",
	            d.keyword_len > ERR_QUOTE_MAX ? ERR_QUOTE_MAX : (int)d.keyword_len, d.keyword);
}

int
dg_policy_parse(const char *text, size_t len, struct dg_policy **out,
                char *err, size_t err_cap)
{
	struct parse_ctx c = {NULL, 0, false, err, err_cap, NULL, 0};
	size_t off = 0;
	int rc;

	if (err != NULL && err_cap > 0)
		err[0] = '\0';
	if (len > DG_POLICY_MAX_TEXT) {
		set_err(err, err_cap, 0, "baseline larger than %u bytes", DG_POLICY_MAX_TEXT);
		return DG_ERR_TOOBIG;
	}
	c.p = calloc(1, sizeof *c.p);
	if (c.p == NULL) {
		rc = DG_ERR_NOMEM;
		goto out;
	}
	/* A record (header, path, NUL, padding) is shorter than its allow line
	 * ("allow sha256:" 64 hex, blank, path, newline), so the text's length
	 * bounds the arena: one allocation, touched only as far as it is used. */
	if (len > MIN_ARENA) {
		if ((c.p->arena = malloc(len)) == NULL) {
			rc = DG_ERR_NOMEM;
			goto out;
		}
		c.p->arena_cap = len;
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
	if (c.p->name[0] == '\0') {
		rc = fail(&c, "missing 'name'");
		goto out;
	}
	if (c.p->n_agents == 0) {
		rc = fail(&c, "missing 'agent'");
		goto out;
	}
	*out = c.p;
	c.p = NULL;
	rc = DG_OK;
out:
	if (rc == DG_ERR_NOMEM)
		set_err(err, err_cap, c.line, "out of memory");
	dg_policy_free(c.p);
	free(c.scratch);
	return rc;
}

void
dg_policy_free(struct dg_policy *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->n_agents; i++)
		free(p->agents[i]);
	free(p->agents);
	for (size_t i = 0; i < p->n_secrets; i++)
		free(p->secrets[i]);
	free(p->secrets);
	for (size_t i = 0; i < p->n_excludes; i++)
		regfree(&p->excludes[i]);
	free(p->excludes);
	free(p->arena);
	free(p->slots);
	free(p);
}

/* ---- queries ---- */

const char *
dg_policy_name(const struct dg_policy *p)
{
	return p->name;
}

bool
dg_policy_applies(const struct dg_policy *p, const char *agent_id)
{
	for (size_t i = 0; i < p->n_agents; i++) {
		if (fnmatch(p->agents[i], agent_id, 0) == 0)
			return true;
	}
	return false;
}

size_t
dg_policy_secret_count(const struct dg_policy *p)
{
	return p->n_secrets;
}

const char *
dg_policy_secret(const struct dg_policy *p, size_t i)
{
	return i < p->n_secrets ? p->secrets[i] : NULL;
}

bool
dg_policy_allows_secret(const struct dg_policy *p, const char *name)
{
	for (size_t i = 0; i < p->n_secrets; i++) {
		if (strcmp(p->secrets[i], name) == 0)
			return true;
	}
	return false;
}

_Static_assert(DG_LEASE_MAX_S == 86400, "the message below names the bound");

const char *
dg_lease_parse(const char *arg, size_t len, unsigned *lease_s)
{
	uint64_t seconds;
	if (*lease_s != 0)
		return "duplicate lease";
	if (dg_text_uint(arg, len, 1, DG_LEASE_MAX_S, &seconds) != DG_OK)
		return "bad lease (want seconds, 1..86400)";
	*lease_s = (unsigned)seconds;
	return NULL;
}

unsigned
dg_policy_lease_s(const struct dg_policy *p)
{
	return p->lease_s != 0 ? p->lease_s : DG_LEASE_DEFAULT_S;
}

size_t
dg_policy_allow_count(const struct dg_policy *p)
{
	return p->n_allows;
}

int
dg_policy_appraise(const struct dg_policy *p, const struct dg_log_entry *e,
                   struct dg_reason *why)
{
	char hex[2 * DG_LOG_MAX_DIGEST + 1];
	const char *alg = e->hash_alg != NULL ? e->hash_alg : "";
	const char *path = e->path != NULL ? e->path : "";
	size_t path_len = e->path != NULL ? e->path_len : 0;
	/* A path with an embedded NUL would look shorter to regexec. */
	bool path_clean = memchr(path, '\0', path_len) == NULL;
	int shown = path_len > DG_REASON_DETAIL_MAX ? DG_REASON_DETAIL_MAX : (int)path_len;

	/* The digest in hex is only needed to explain a failure. */
#define DIGEST_HEX() \
	dg_text_hex_encode(e->digest, e->digest_len <= DG_LOG_MAX_DIGEST ? e->digest_len : 0, hex)
	if (path_clean) {
		for (size_t i = 0; i < p->n_excludes; i++) {
			if (regexec(&p->excludes[i], path, 0, NULL, 0) == 0)
				return DG_OK;
		}
	}
	if (e->violation) {
		dg_reason_set(why, "violation", "IMA violation for %.*s", shown, path);
		return DG_ERR_POLICY;
	}
	if (strcmp(alg, "sha256") != 0 || e->digest_len != DG_SHA256_LEN) {
		DIGEST_HEX();
		dg_reason_set(why, "unsupported-hash", "%.*s measured with %.16s:%s", shown, path,
		              alg, hex);
		return DG_ERR_POLICY;
	}
	if (path_clean && p->n_slots > 0) {
		uint32_t head = p->slots[slot_find(p, path, path_len, path_hash(path, path_len))];
		if (head != 0) {
			for (uint32_t r = head; r != 0; r = allow_get(p, r)->next) {
				if (memcmp(allow_get(p, r)->digest, e->digest, DG_SHA256_LEN) == 0)
					return DG_OK;
			}
			DIGEST_HEX();
			dg_reason_set(why, "hash-mismatch", "%.*s has sha256:%s, not an approved digest",
			              shown, path, hex);
			return DG_ERR_POLICY;
		}
	}
	DIGEST_HEX();
	dg_reason_set(why, "unknown-file", "%.*s (sha256:%s) is not in the baseline", shown, path,
	              hex);
	return DG_ERR_POLICY;
#undef DIGEST_HEX
}

/* ---- generator helper ---- */

int
dg_policy_format_allow(const char *path, const uint8_t digest[DG_SHA256_LEN],
                       char *out, size_t cap, size_t *out_len)
{
	static const char digits[] = "0123456789abcdef";
	size_t len = strlen(path), n = 0;
	char hex[2 * DG_SHA256_LEN + 1];

	*out_len = 0;
	if (len == 0 || path[0] != '/')
		return DG_ERR_INVAL;
	if (len > DG_LOG_MAX_PATH)
		return DG_ERR_TOOBIG;
	dg_text_hex_encode(digest, DG_SHA256_LEN, hex);
	int head = snprintf(out, cap, "allow " DIGEST_PREFIX "%s ", hex);
	if (head < 0 || (size_t)head >= cap)
		return DG_ERR_TOOBIG;
	n = (size_t)head;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)path[i];
		/* A final space would be trimmed by the parser, so it is escaped too. */
		bool escape = ch < 0x20 || ch >= 0x7f || (ch == ' ' && i + 1 == len);
		size_t need = ch == '\\' ? 2 : escape ? 4 : 1;
		if (cap - n < need + 2)
			return DG_ERR_TOOBIG;
		if (ch == '\\') {
			out[n++] = '\\';
			out[n++] = '\\';
		} else if (escape) {
			out[n++] = '\\';
			out[n++] = 'x';
			out[n++] = digits[ch >> 4];
			out[n++] = digits[ch & 0xf];
		} else {
			out[n++] = (char)ch;
		}
	}
	out[n++] = '\n';
	out[n] = '\0';
	*out_len = n;
	return DG_OK;
}
