/*
 * IMA measurement log: readers for the kernel's binary and ascii formats,
 * an encoder for the binary format and a formatter for the ascii one.
 *
 * Both readers reduce an entry to its template data and then run the same
 * parser over it, so every view handed out has passed the same checks.
 */
#include "driftgate/log.h"

#include "driftgate/err.h"
#include "driftgate/hash.h"
#include "driftgate/text.h"

#include <stdlib.h>
#include <string.h>

#define LOG_U32_LEN 4
/* u32 pcr | sha1 template hash | u32 template name length */
#define LOG_ENTRY_HEAD_LEN (LOG_U32_LEN + DG_SHA1_LEN + LOG_U32_LEN)
/* The kernel's IMA_TEMPLATE_NAME_LEN_MAX. */
#define LOG_MAX_TEMPLATE_NAME 15
/* Longest supported algorithm name ("sha256") and the ":\0" after it. */
#define LOG_MAX_ALG_NAME 6
#define LOG_ALG_SEPARATOR_LEN 2
/*
 * Longest ascii line: "%2d " pcr, template hash, template name, alg:digest,
 * path, hex extra, with their separating spaces and the newline.
 */
#define LOG_MAX_ASCII_LINE                                                   \
	(3 + 2 * DG_SHA1_LEN + 1 + LOG_MAX_TEMPLATE_NAME + 1 + LOG_MAX_ALG_NAME + \
	 1 + 2 * DG_LOG_MAX_DIGEST + 1 + DG_LOG_MAX_PATH + 1 +                   \
	 2 * DG_LOG_MAX_EXTRA + 1)

struct log_hash_alg {
	const char *name;
	size_t digest_len;
};

static const struct log_hash_alg log_hash_algs[] = {
	{"sha1", 20},
	{"sha256", 32},
	{"sha384", 48},
	{"sha512", 64},
};

static const char *const log_template_names[] = {
	[DG_TEMPLATE_IMA_NG] = "ima-ng",
	[DG_TEMPLATE_IMA_SIG] = "ima-sig",
	[DG_TEMPLATE_IMA_BUF] = "ima-buf",
};

#define LOG_TEMPLATE_COUNT (sizeof log_template_names / sizeof log_template_names[0])


static uint32_t
log_get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint8_t *
log_put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
	return p + LOG_U32_LEN;
}

static const struct log_hash_alg *
log_find_alg(const char *name, size_t name_len)
{
	for (size_t i = 0; i < sizeof log_hash_algs / sizeof log_hash_algs[0]; i++) {
		if (strlen(log_hash_algs[i].name) == name_len &&
		    memcmp(log_hash_algs[i].name, name, name_len) == 0)
			return &log_hash_algs[i];
	}
	return NULL;
}

static int
log_find_template(const char *name, size_t name_len, enum dg_log_template *out)
{
	for (size_t i = 0; i < LOG_TEMPLATE_COUNT; i++) {
		if (strlen(log_template_names[i]) == name_len &&
		    memcmp(log_template_names[i], name, name_len) == 0) {
			*out = (enum dg_log_template)i;
			return DG_OK;
		}
	}
	return DG_ERR_UNSUPPORTED;
}

const char *
dg_log_template_name(enum dg_log_template t)
{
	if ((size_t)t >= LOG_TEMPLATE_COUNT)
		return NULL;
	return log_template_names[t];
}

enum dg_log_format
dg_log_detect_format(const uint8_t *buf, size_t len)
{
	size_t i = 0;

	/* The kernel prints the PCR with "%2d ", so one-digit PCRs lead with a
	 * space. A binary log starts with a u32 PCR < 24: never a digit or space. */
	if (i < len && buf[i] == ' ')
		i++;
	size_t digits = i;
	while (i < len && i - digits < 2 && buf[i] >= '0' && buf[i] <= '9')
		i++;
	if (i > digits && i < len && buf[i] == ' ')
		return DG_LOG_FORMAT_ASCII;
	return DG_LOG_FORMAT_BINARY;
}

int
dg_log_reader_init(struct dg_log_reader *r, const uint8_t *buf, size_t len,
                   enum dg_log_format format)
{
	int rc = DG_ERR_INVAL;

	memset(r, 0, sizeof *r);
	if ((buf == NULL && len != 0) ||
	    (format != DG_LOG_FORMAT_BINARY && format != DG_LOG_FORMAT_ASCII))
		goto out;
	if (format == DG_LOG_FORMAT_ASCII) {
		rc = DG_ERR_NOMEM;
		if ((r->scratch = malloc(DG_LOG_MAX_TEMPLATE_DATA)) == NULL)
			goto out;
		r->scratch_cap = DG_LOG_MAX_TEMPLATE_DATA;
	}
	r->buf = buf;
	r->len = len;
	r->format = format;
	r->ready = true;
	rc = DG_OK;
out:
	return rc;
}

void
dg_log_reader_fini(struct dg_log_reader *r)
{
	free(r->scratch);
	memset(r, 0, sizeof *r);
}

/*
 * Take one "u32 len | bytes" field off the front of *p / *rem. A field that
 * runs past the template data is malformed (the outer length was complete).
 */
static int
log_take_field(const uint8_t **p, size_t *rem, size_t bound, const uint8_t **field,
               size_t *field_len)
{
	if (*rem < LOG_U32_LEN)
		return DG_ERR_FORMAT;
	uint32_t len = log_get_u32(*p);
	if (len > bound)
		return DG_ERR_TOOBIG;
	if (len > *rem - LOG_U32_LEN)
		return DG_ERR_FORMAT;
	*field = *p + LOG_U32_LEN;
	*field_len = len;
	*p += LOG_U32_LEN + len;
	*rem -= LOG_U32_LEN + len;
	return DG_OK;
}

/* Parse template data of template t into the views of e. */
static int
log_parse_template_data(enum dg_log_template t, const uint8_t *data, size_t len,
                        struct dg_log_entry *e)
{
	const uint8_t *p = data, *field, *nul;
	size_t rem = len, field_len;
	const struct log_hash_alg *alg;
	int rc;

	/* d-ng: "<alg>:\0" <digest> */
	rc = log_take_field(&p, &rem, LOG_MAX_ALG_NAME + LOG_ALG_SEPARATOR_LEN +
	                    DG_LOG_MAX_DIGEST, &field, &field_len);
	if (rc != DG_OK)
		goto out;
	rc = DG_ERR_FORMAT;
	nul = memchr(field, '\0', field_len);
	if (nul == NULL || nul == field || nul[-1] != ':')
		goto out;
	rc = DG_ERR_UNSUPPORTED;
	if ((alg = log_find_alg((const char *)field, (size_t)(nul - 1 - field))) == NULL)
		goto out;
	rc = DG_ERR_FORMAT;
	if (field_len - (size_t)(nul + 1 - field) != alg->digest_len)
		goto out;
	e->hash_alg = alg->name;
	e->digest = nul + 1;
	e->digest_len = alg->digest_len;

	/* n-ng: path "\0", non-empty, no other NUL */
	rc = log_take_field(&p, &rem, DG_LOG_MAX_PATH + 1, &field, &field_len);
	if (rc != DG_OK)
		goto out;
	rc = DG_ERR_FORMAT;
	if (field_len < 2 || memchr(field, '\0', field_len) != field + field_len - 1)
		goto out;
	e->path = (const char *)field;
	e->path_len = field_len - 1;

	e->extra = NULL;
	e->extra_len = 0;
	if (t != DG_TEMPLATE_IMA_NG) {
		rc = log_take_field(&p, &rem, DG_LOG_MAX_EXTRA, &field, &field_len);
		if (rc != DG_OK)
			goto out;
		e->extra = field_len != 0 ? field : NULL;
		e->extra_len = field_len;
	}
	rc = rem == 0 ? DG_OK : DG_ERR_FORMAT;
out:
	return rc;
}

/*
 * Fill the template part of e from data and check the logged sha1 template
 * hash (already in e->template_hash) against it.
 */
static int
log_finish_entry(enum dg_log_template t, const uint8_t *data, size_t len,
                 struct dg_log_entry *e)
{
	static const uint8_t zero[DG_SHA1_LEN];
	uint8_t computed[DG_SHA1_LEN];
	int rc;

	if ((rc = log_parse_template_data(t, data, len, e)) != DG_OK)
		goto out;
	e->template_id = t;
	e->template_data = data;
	e->template_data_len = len;
	e->violation = memcmp(e->template_hash, zero, DG_SHA1_LEN) == 0;
	if (e->violation)
		goto out;
	if ((rc = dg_hash_sha1(data, len, NULL, 0, computed)) != DG_OK)
		goto out;
	rc = memcmp(computed, e->template_hash, DG_SHA1_LEN) == 0 ? DG_OK : DG_ERR_FORMAT;
out:
	return rc;
}

static int
log_next_binary(struct dg_log_reader *r, struct dg_log_entry *e, size_t *consumed)
{
	const uint8_t *p = r->buf + r->off;
	size_t rem = r->len - r->off;
	enum dg_log_template t;
	uint32_t name_len, data_len;
	int rc = DG_ERR_TRUNCATED;

	if (rem < LOG_ENTRY_HEAD_LEN)
		goto out;
	e->pcr = log_get_u32(p);
	rc = DG_ERR_FORMAT;
	if (e->pcr >= DG_LOG_MAX_PCR)
		goto out;
	memcpy(e->template_hash, p + LOG_U32_LEN, DG_SHA1_LEN);
	name_len = log_get_u32(p + LOG_U32_LEN + DG_SHA1_LEN);
	p += LOG_ENTRY_HEAD_LEN;
	rem -= LOG_ENTRY_HEAD_LEN;
	if (name_len == 0)
		goto out;
	rc = DG_ERR_TOOBIG;
	if (name_len > LOG_MAX_TEMPLATE_NAME)
		goto out;
	rc = DG_ERR_TRUNCATED;
	if (name_len > rem)
		goto out;
	if ((rc = log_find_template((const char *)p, name_len, &t)) != DG_OK)
		goto out;
	p += name_len;
	rem -= name_len;
	rc = DG_ERR_TRUNCATED;
	if (rem < LOG_U32_LEN)
		goto out;
	data_len = log_get_u32(p);
	p += LOG_U32_LEN;
	rem -= LOG_U32_LEN;
	rc = DG_ERR_TOOBIG;
	if (data_len > DG_LOG_MAX_TEMPLATE_DATA)
		goto out;
	rc = DG_ERR_TRUNCATED;
	if (data_len > rem)
		goto out;
	if ((rc = log_finish_entry(t, p, data_len, e)) != DG_OK)
		goto out;
	*consumed = LOG_ENTRY_HEAD_LEN + name_len + LOG_U32_LEN + data_len;
out:
	return rc;
}

/* Decode exactly hex_len hex digits, either case, into out. */
static int
log_unhex(const uint8_t *hex, size_t hex_len, uint8_t *out)
{
	return dg_text_hex_decode((const char *)hex, hex_len, out, false);
}

/* Length of the token at p (up to a space or the end of the line). */
static size_t
log_token_len(const uint8_t *p, const uint8_t *end)
{
	const uint8_t *space = memchr(p, ' ', (size_t)(end - p));
	return (size_t)((space != NULL ? space : end) - p);
}

/*
 * One ascii line, exactly as the kernel prints it:
 *   "%2d " pcr, sha1 template hash hex, " " template, " " alg ":" digest hex,
 *   " " path, and for ima-sig / ima-buf " " hex (empty when the field is).
 * Paths never contain spaces: the kernel turns them into '_' when logging.
 */
static int
log_next_ascii(struct dg_log_reader *r, struct dg_log_entry *e, size_t *consumed)
{
	const uint8_t *line = r->buf + r->off, *nl, *end, *p, *colon;
	size_t rem = r->len - r->off, tok, path_len, extra_hex_len = 0;
	const uint8_t *path, *digest_hex, *extra_hex = NULL;
	const struct log_hash_alg *alg;
	size_t alg_len;
	enum dg_log_template t;
	uint8_t *w;
	int rc;

	nl = memchr(line, '\n', rem < LOG_MAX_ASCII_LINE ? rem : LOG_MAX_ASCII_LINE);
	if (nl == NULL) {
		rc = rem < LOG_MAX_ASCII_LINE ? DG_ERR_TRUNCATED : DG_ERR_TOOBIG;
		goto out;
	}
	end = nl;
	rc = DG_ERR_FORMAT;
	if (memchr(line, '\0', (size_t)(end - line)) != NULL)
		goto out;

	/* PCR as "%2d ": " 0".." 9" or "10".."23". */
	p = line;
	if (end - p < 3)
		goto out;
	if (p[0] == ' ' && p[1] >= '0' && p[1] <= '9')
		e->pcr = (uint32_t)(p[1] - '0');
	else if (p[0] >= '1' && p[0] <= '9' && p[1] >= '0' && p[1] <= '9')
		e->pcr = (uint32_t)((p[0] - '0') * 10 + (p[1] - '0'));
	else
		goto out;
	if (p[2] != ' ' || e->pcr >= DG_LOG_MAX_PCR)
		goto out;
	p += 3;

	if (end - p < 2 * DG_SHA1_LEN + 1 || p[2 * DG_SHA1_LEN] != ' ' ||
	    log_unhex(p, 2 * DG_SHA1_LEN, e->template_hash) != DG_OK)
		goto out;
	p += 2 * DG_SHA1_LEN + 1;

	tok = log_token_len(p, end);
	if (tok == (size_t)(end - p))
		goto out;
	if ((rc = log_find_template((const char *)p, tok, &t)) != DG_OK)
		goto out;
	p += tok + 1;

	rc = DG_ERR_FORMAT;
	tok = log_token_len(p, end);
	if (tok == (size_t)(end - p) || (colon = memchr(p, ':', tok)) == NULL)
		goto out;
	rc = DG_ERR_UNSUPPORTED;
	if ((alg = log_find_alg((const char *)p, (size_t)(colon - p))) == NULL)
		goto out;
	rc = DG_ERR_FORMAT;
	if (tok - (size_t)(colon + 1 - p) != 2 * alg->digest_len)
		goto out;
	digest_hex = colon + 1;
	p += tok + 1;

	path = p;
	path_len = log_token_len(p, end);
	p += path_len;
	if (t == DG_TEMPLATE_IMA_NG) {
		if (p != end)
			goto out;
	} else {
		if (p == end)
			goto out;
		extra_hex = p + 1;
		extra_hex_len = (size_t)(end - extra_hex);
		if (log_token_len(extra_hex, end) != extra_hex_len)
			goto out;
	}
	if (path_len == 0)
		goto out;
	rc = DG_ERR_TOOBIG;
	if (path_len > DG_LOG_MAX_PATH || extra_hex_len > 2 * DG_LOG_MAX_EXTRA)
		goto out;

	/* Rebuild the template data the kernel hashed; the line bound keeps it
	 * within DG_LOG_MAX_TEMPLATE_DATA, the size of the scratch. */
	alg_len = strlen(alg->name);
	w = r->scratch;
	w = log_put_u32(w, (uint32_t)(alg_len + LOG_ALG_SEPARATOR_LEN + alg->digest_len));
	memcpy(w, alg->name, alg_len);
	w += alg_len;
	*w++ = ':';
	*w++ = '\0';
	rc = log_unhex(digest_hex, 2 * alg->digest_len, w);
	if (rc != DG_OK)
		goto out;
	w += alg->digest_len;
	w = log_put_u32(w, (uint32_t)(path_len + 1));
	memcpy(w, path, path_len);
	w += path_len;
	*w++ = '\0';
	if (t != DG_TEMPLATE_IMA_NG) {
		w = log_put_u32(w, (uint32_t)(extra_hex_len / 2));
		if ((rc = log_unhex(extra_hex, extra_hex_len, w)) != DG_OK)
			goto out;
		w += extra_hex_len / 2;
	}
	rc = log_finish_entry(t, r->scratch, (size_t)(w - r->scratch), e);
	if (rc != DG_OK)
		goto out;
	*consumed = (size_t)(nl + 1 - line);
out:
	return rc;
}

int
dg_log_next(struct dg_log_reader *r, struct dg_log_entry *e)
{
	struct dg_log_entry parsed;
	size_t consumed = 0;
	int rc = DG_ERR_INVAL;

	if (!r->ready)
		goto out;
	rc = DG_ERR_NOTFOUND;
	if (r->off >= r->len)
		goto out;
	memset(&parsed, 0, sizeof parsed);
	if (r->format == DG_LOG_FORMAT_BINARY)
		rc = log_next_binary(r, &parsed, &consumed);
	else
		rc = log_next_ascii(r, &parsed, &consumed);
	if (rc != DG_OK)
		goto out;
	*e = parsed;
	r->off += consumed;
	r->index++;
out:
	return rc;
}

int
dg_log_encode(uint32_t pcr, enum dg_log_template template_id, const char *hash_alg,
              const uint8_t *digest, size_t digest_len, const char *path,
              const uint8_t *extra, size_t extra_len, uint8_t *out, size_t cap,
              size_t *out_len)
{
	const struct log_hash_alg *alg;
	const char *name;
	size_t name_len, alg_len, path_len, data_len, total;
	uint8_t *w, *hash_slot, *data;
	int rc = DG_ERR_INVAL;

	if (pcr >= DG_LOG_MAX_PCR || hash_alg == NULL || digest == NULL || path == NULL ||
	    out_len == NULL || (name = dg_log_template_name(template_id)) == NULL ||
	    (extra == NULL && extra_len != 0) ||
	    (template_id == DG_TEMPLATE_IMA_NG && extra_len != 0))
		goto out;
	alg_len = strlen(hash_alg);
	rc = DG_ERR_UNSUPPORTED;
	if ((alg = log_find_alg(hash_alg, alg_len)) == NULL)
		goto out;
	rc = DG_ERR_INVAL;
	path_len = strlen(path);
	if (digest_len != alg->digest_len || path_len == 0)
		goto out;
	rc = DG_ERR_TOOBIG;
	if (path_len > DG_LOG_MAX_PATH || extra_len > DG_LOG_MAX_EXTRA)
		goto out;

	name_len = strlen(name);
	data_len = LOG_U32_LEN + alg_len + LOG_ALG_SEPARATOR_LEN + digest_len +
	           LOG_U32_LEN + path_len + 1;
	if (template_id != DG_TEMPLATE_IMA_NG)
		data_len += LOG_U32_LEN + extra_len;
	total = LOG_ENTRY_HEAD_LEN + name_len + LOG_U32_LEN + data_len;
	if (out == NULL || cap < total)
		goto out;

	w = log_put_u32(out, pcr);
	hash_slot = w;
	w += DG_SHA1_LEN;
	w = log_put_u32(w, (uint32_t)name_len);
	memcpy(w, name, name_len);
	w += name_len;
	w = log_put_u32(w, (uint32_t)data_len);
	data = w;
	w = log_put_u32(w, (uint32_t)(alg_len + LOG_ALG_SEPARATOR_LEN + digest_len));
	memcpy(w, hash_alg, alg_len);
	w += alg_len;
	*w++ = ':';
	*w++ = '\0';
	memcpy(w, digest, digest_len);
	w += digest_len;
	w = log_put_u32(w, (uint32_t)(path_len + 1));
	/* As the kernel does: spaces become '_' so the ascii form stays parsable. */
	for (size_t i = 0; i < path_len; i++)
		w[i] = path[i] == ' ' ? '_' : (uint8_t)path[i];
	w += path_len;
	*w++ = '\0';
	if (template_id != DG_TEMPLATE_IMA_NG) {
		w = log_put_u32(w, (uint32_t)extra_len);
		if (extra_len != 0)
			memcpy(w, extra, extra_len);
	}
	if ((rc = dg_hash_sha1(data, data_len, NULL, 0, hash_slot)) != DG_OK)
		goto out;
	*out_len = total;
	rc = DG_OK;
out:
	return rc;
}

/* Lowercase hex of bytes at w; returns the end. dg_text_hex_encode's NUL at
 * the end is overwritten by the separator or newline that always follows. */
static char *
log_put_hex(char *w, const uint8_t *bytes, size_t len)
{
	dg_text_hex_encode(bytes, len, w);
	return w + 2 * len;
}

/* Writes the line and a terminating NUL (not counted in *out_len). */
int
dg_log_format_ascii(const struct dg_log_entry *e, char *out, size_t cap, size_t *out_len)
{
	const struct log_hash_alg *alg;
	const char *name;
	size_t name_len, alg_len, total;
	char *w;
	int rc = DG_ERR_INVAL;

	if (e == NULL || out_len == NULL || e->pcr >= DG_LOG_MAX_PCR ||
	    (name = dg_log_template_name(e->template_id)) == NULL || e->hash_alg == NULL ||
	    e->digest == NULL || e->path == NULL || (e->extra == NULL && e->extra_len != 0) ||
	    (e->template_id == DG_TEMPLATE_IMA_NG && e->extra_len != 0))
		goto out;
	alg_len = strlen(e->hash_alg);
	if ((alg = log_find_alg(e->hash_alg, alg_len)) == NULL ||
	    e->digest_len != alg->digest_len || e->path_len == 0 ||
	    e->path_len > DG_LOG_MAX_PATH || e->extra_len > DG_LOG_MAX_EXTRA)
		goto out;
	/* A space or newline in the path would make the line unparsable (and
	 * let a file name forge entries), so refuse rather than print it. */
	rc = DG_ERR_FORMAT;
	for (size_t i = 0; i < e->path_len; i++) {
		if (e->path[i] == ' ' || e->path[i] == '\n' || e->path[i] == '\0')
			goto out;
	}

	name_len = strlen(name);
	total = 3 + 2 * DG_SHA1_LEN + 1 + name_len + 1 + alg_len + 1 + 2 * e->digest_len +
	        1 + e->path_len + 1;
	if (e->template_id != DG_TEMPLATE_IMA_NG)
		total += 1 + 2 * e->extra_len;
	rc = DG_ERR_TOOBIG;
	if (out == NULL || cap < total + 1)
		goto out;

	w = out;
	*w++ = (char)(e->pcr < 10 ? ' ' : '0' + e->pcr / 10); /* pcr < DG_LOG_MAX_PCR */
	*w++ = (char)('0' + e->pcr % 10);
	*w++ = ' ';
	w = log_put_hex(w, e->template_hash, DG_SHA1_LEN);
	*w++ = ' ';
	memcpy(w, name, name_len);
	w += name_len;
	*w++ = ' ';
	memcpy(w, e->hash_alg, alg_len);
	w += alg_len;
	*w++ = ':';
	w = log_put_hex(w, e->digest, e->digest_len);
	*w++ = ' ';
	memcpy(w, e->path, e->path_len);
	w += e->path_len;
	if (e->template_id != DG_TEMPLATE_IMA_NG) {
		*w++ = ' ';
		if (e->extra_len != 0)
			w = log_put_hex(w, e->extra, e->extra_len);
	}
	*w++ = '\n';
	*w = '\0';
	*out_len = total;
	rc = DG_OK;
out:
	return rc;
}
