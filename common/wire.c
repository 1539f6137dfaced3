/*
 * Wire messages: one definite-length CBOR map per message, text keys.
 *
 * Encoding writes CBOR heads with libcbor's encoding helpers in two passes
 * (measure, then fill an exact allocation). Decoding never builds a libcbor
 * item tree: it pulls one item head at a time from cbor_stream_decode and
 * walks the fixed schema (map -> array -> pair -> scalar, depth 3), so nesting
 * beyond the schema is simply a wrong type and costs no stack.
 *
 * Every text field is printable ASCII (0x20..0x7e), a strict subset of the
 * UTF-8 CBOR requires; agent_id is further limited to [A-Za-z0-9._-]{1,64}.
 * The encoder applies the same checks as the decoder, so anything it emits
 * decodes to an equal message.
 */
#include "driftgate/wire.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cbor.h>
#include <openssl/crypto.h>

#include "driftgate/err.h"

enum field {
	F_AGENT_ID,
	F_EK_PUB,
	F_AK_PUB,
	F_EK_CERT,
	F_PCR,
	F_ID_OBJECT,
	F_ENC_SECRET,
	F_CREDENTIAL,
	F_NONCE,
	F_LOG_FROM,
	F_ATTEST,
	F_SIGNATURE,
	F_BIND_KEY,
	F_BIND_ATTEST,
	F_BIND_SIG,
	F_LOG,
	F_REQUEST,
	F_LEASES,
	F_PASS,
	F_REASONS,
	F_SEALED,
	F_MANIFESTS,
	F_LEASE_MS,
	F_RENEWED,
	F_REFUSED,
	F_CODE,
	F_MESSAGE,
	F__COUNT
};

#define BIT(f) (1u << (f))
/* The message type key is tracked with the field bits for duplicate checks. */
#define TYPE_BIT BIT(F__COUNT)
#define TYPE_KEY "t"
/* A map holds at most the type key and every field. */
#define MAX_MAP_PAIRS (F__COUNT + 1)
#define MAX_KEY_LEN 16
#define REASON_CODE_LEN (DG_REASON_CODE_MAX - 1)
#define REASON_DETAIL_LEN (DG_REASON_DETAIL_MAX - 1)

enum field_kind {
	K_AGENT_ID, /* char[DG_WIRE_MAX_AGENT_ID + 1] */
	K_TEXT,     /* char[bound + 1], printable ASCII */
	K_BYTES,    /* struct dg_bytes, at most bound bytes */
	K_U32,
	K_U64,
	K_BOOL,
	K_REASONS,
	K_NAMED, /* list of [name, bytes] pairs: see named_spec_of */
	K_LEASES, /* list of [scope, secret name] pairs: see lease_spec_of */
};

struct field_spec {
	const char *key;
	enum field_kind kind;
	size_t offset; /* into struct dg_msg */
	size_t bound;  /* K_TEXT and K_BYTES */
};

static const struct field_spec field_specs[F__COUNT] = {
	[F_AGENT_ID] = {"agent_id", K_AGENT_ID, offsetof(struct dg_msg, agent_id), DG_WIRE_MAX_AGENT_ID},
	[F_EK_PUB] = {"ek_pub", K_BYTES, offsetof(struct dg_msg, ek_pub), DG_WIRE_MAX_KEY},
	[F_AK_PUB] = {"ak_pub", K_BYTES, offsetof(struct dg_msg, ak_pub), DG_WIRE_MAX_KEY},
	[F_EK_CERT] = {"ek_cert", K_BYTES, offsetof(struct dg_msg, ek_cert), DG_WIRE_MAX_EK_CERT},
	[F_PCR] = {"pcr", K_U32, offsetof(struct dg_msg, pcr), 0},
	[F_ID_OBJECT] = {"id_object", K_BYTES, offsetof(struct dg_msg, id_object), DG_WIRE_MAX_BLOB},
	[F_ENC_SECRET] = {"enc_secret", K_BYTES, offsetof(struct dg_msg, enc_secret), DG_WIRE_MAX_BLOB},
	[F_CREDENTIAL] = {"credential", K_BYTES, offsetof(struct dg_msg, credential), DG_WIRE_MAX_BLOB},
	[F_NONCE] = {"nonce", K_BYTES, offsetof(struct dg_msg, nonce), DG_WIRE_MAX_BLOB},
	[F_LOG_FROM] = {"log_from", K_U64, offsetof(struct dg_msg, log_from), 0},
	[F_ATTEST] = {"attest", K_BYTES, offsetof(struct dg_msg, attest), DG_WIRE_MAX_BLOB},
	[F_SIGNATURE] = {"signature", K_BYTES, offsetof(struct dg_msg, signature), DG_WIRE_MAX_BLOB},
	[F_BIND_KEY] = {"bind_key", K_BYTES, offsetof(struct dg_msg, bind_key), DG_WIRE_MAX_KEY},
	[F_BIND_ATTEST] = {"bind_attest", K_BYTES, offsetof(struct dg_msg, bind_attest), DG_WIRE_MAX_BLOB},
	[F_BIND_SIG] = {"bind_sig", K_BYTES, offsetof(struct dg_msg, bind_sig), DG_WIRE_MAX_BLOB},
	[F_LOG] = {"log", K_BYTES, offsetof(struct dg_msg, log), DG_WIRE_MAX_LOG},
	[F_REQUEST] = {"request", K_LEASES, offsetof(struct dg_msg, request), 0},
	[F_LEASES] = {"leases", K_LEASES, offsetof(struct dg_msg, leases), 0},
	[F_PASS] = {"pass", K_BOOL, offsetof(struct dg_msg, pass), 0},
	[F_REASONS] = {"reasons", K_REASONS, offsetof(struct dg_msg, reasons), 0},
	[F_SEALED] = {"sealed", K_NAMED, offsetof(struct dg_msg, sealed), 0},
	[F_MANIFESTS] = {"manifests", K_NAMED, offsetof(struct dg_msg, manifests), 0},
	[F_LEASE_MS] = {"lease_ms", K_U32, offsetof(struct dg_msg, lease_ms), 0},
	[F_RENEWED] = {"renewed", K_LEASES, offsetof(struct dg_msg, renewed), 0},
	[F_REFUSED] = {"refused", K_TEXT, offsetof(struct dg_msg, refused), DG_WIRE_MAX_MESSAGE_TEXT},
	[F_CODE] = {"code", K_U32, offsetof(struct dg_msg, code), 0},
	[F_MESSAGE] = {"message", K_TEXT, offsetof(struct dg_msg, message), DG_WIRE_MAX_MESSAGE_TEXT},
};

/* Bounds of the [name, bytes] lists. */
struct named_spec {
	size_t count_offset; /* of the size_t count in struct dg_msg */
	size_t max_count, max_name, max_blob;
};

static const struct named_spec *
named_spec_of(enum field f)
{
	static const struct named_spec sealed = {offsetof(struct dg_msg, n_sealed),
		DG_WIRE_MAX_SECRETS, DG_WIRE_MAX_SECRET_NAME, DG_WIRE_MAX_SEALED};
	static const struct named_spec manifests = {offsetof(struct dg_msg, n_manifests),
		DG_WIRE_MAX_MANIFESTS, DG_WIRE_MAX_BLOB_NAME, DG_WIRE_MAX_MANIFEST};
	return f == F_SEALED ? &sealed : &manifests;
}

static struct dg_named_blob *
named_list(const struct dg_msg *m, enum field f, size_t **count)
{
	const struct named_spec *ns = named_spec_of(f);
	*count = (size_t *)(void *)((char *)m + ns->count_offset);
	return (struct dg_named_blob *)(void *)((char *)m + field_specs[f].offset);
}

/* Bounds of the [scope, secret name] lists. */
struct lease_spec {
	size_t count_offset;
	size_t max_count;
};

static const struct lease_spec *
lease_spec_of(enum field f)
{
	static const struct lease_spec request = {offsetof(struct dg_msg, n_request), 1};
	static const struct lease_spec leases = {offsetof(struct dg_msg, n_leases),
		DG_WIRE_MAX_LEASES};
	static const struct lease_spec renewed = {offsetof(struct dg_msg, n_renewed),
		DG_WIRE_MAX_LEASES};
	return f == F_REQUEST ? &request : f == F_LEASES ? &leases : &renewed;
}

static struct dg_lease_ref *
lease_list(const struct dg_msg *m, enum field f, size_t **count)
{
	*count = (size_t *)(void *)((char *)m + lease_spec_of(f)->count_offset);
	return (struct dg_lease_ref *)(void *)((char *)m + field_specs[f].offset);
}

#define BIND_FIELDS (BIT(F_BIND_KEY) | BIT(F_BIND_ATTEST) | BIT(F_BIND_SIG))

struct type_spec {
	const char *name;
	unsigned required;
	unsigned optional;
};

static const struct type_spec type_specs[] = {
	[DG_MSG_ENROLL_REQ] = {"ENROLL_REQ",
		BIT(F_AGENT_ID) | BIT(F_EK_PUB) | BIT(F_AK_PUB) | BIT(F_PCR), BIT(F_EK_CERT)},
	[DG_MSG_ENROLL_CHALLENGE] = {"ENROLL_CHALLENGE", BIT(F_ID_OBJECT) | BIT(F_ENC_SECRET), 0},
	[DG_MSG_ENROLL_ACTIVATE] = {"ENROLL_ACTIVATE", BIT(F_AGENT_ID) | BIT(F_CREDENTIAL), 0},
	[DG_MSG_ENROLL_DONE] = {"ENROLL_DONE", 0, 0},
	[DG_MSG_NONCE_REQ] = {"NONCE_REQ", BIT(F_AGENT_ID), 0},
	[DG_MSG_NONCE] = {"NONCE", BIT(F_NONCE) | BIT(F_LOG_FROM) | BIT(F_PCR), 0},
	[DG_MSG_ATTEST] = {"ATTEST",
		BIT(F_AGENT_ID) | BIT(F_NONCE) | BIT(F_ATTEST) | BIT(F_SIGNATURE) |
		BIT(F_LOG_FROM) | BIT(F_LOG),
		BIT(F_MANIFESTS) | BIT(F_REQUEST) | BIND_FIELDS | BIT(F_LEASES)},
	[DG_MSG_VERDICT] = {"VERDICT", BIT(F_PASS) | BIT(F_REASONS),
		BIT(F_SEALED) | BIT(F_LEASE_MS) | BIT(F_RENEWED) | BIT(F_REFUSED)},
	[DG_MSG_ERROR] = {"ERROR", BIT(F_CODE) | BIT(F_MESSAGE), 0},
};

#define N_TYPES (sizeof type_specs / sizeof type_specs[0])

static const struct type_spec *
type_spec_of(uint64_t t)
{
	if (t < DG_MSG_ENROLL_REQ || t >= N_TYPES)
		return NULL;
	return &type_specs[t];
}

const char *
dg_msg_type_name(enum dg_msg_type t)
{
	const struct type_spec *ts = type_spec_of((uint64_t)t);
	return ts != NULL ? ts->name : "UNKNOWN";
}

void
dg_msg_init(struct dg_msg *m)
{
	memset(m, 0, sizeof *m);
}

static void
bytes_clear(struct dg_bytes *b)
{
	if (b->data != NULL) {
		OPENSSL_cleanse(b->data, b->len);
		free(b->data);
	}
	b->data = NULL;
	b->len = 0;
}

void
dg_msg_clear(struct dg_msg *m)
{
	for (size_t f = 0; f < F__COUNT; f++) {
		if (field_specs[f].kind == K_BYTES)
			bytes_clear((struct dg_bytes *)((char *)m + field_specs[f].offset));
	}
	for (size_t i = 0; i < DG_WIRE_MAX_SECRETS; i++)
		bytes_clear(&m->sealed[i].blob);
	for (size_t i = 0; i < DG_WIRE_MAX_MANIFESTS; i++)
		bytes_clear(&m->manifests[i].blob);
	OPENSSL_cleanse(m, sizeof *m);
	dg_msg_init(m);
}

int
dg_bytes_set(struct dg_bytes *b, const void *data, size_t len)
{
	bytes_clear(b);
	if (len == 0)
		return DG_OK;
	if (data == NULL)
		return DG_ERR_INVAL;
	b->data = malloc(len);
	if (b->data == NULL)
		return DG_ERR_NOMEM;
	memcpy(b->data, data, len);
	b->len = len;
	return DG_OK;
}

/* ---- validation shared by encoder and decoder ---- */

static bool
text_printable(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c > 0x7e)
			return false;
	}
	return true;
}

static bool
agent_id_valid(const char *s, size_t len)
{
	if (len == 0 || len > DG_WIRE_MAX_AGENT_ID)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		          (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
		if (!ok)
			return false;
	}
	return true;
}

/* Reason codes and secret names are identifiers: no spaces either. */
static bool
name_valid(const char *s, size_t len, size_t bound)
{
	if (len == 0 || len > bound || !text_printable(s, len))
		return false;
	return memchr(s, ' ', len) == NULL;
}

/* A scope: "" (the node) or a name as long as a container id. */
static bool
scope_valid(const char *s, size_t len)
{
	return len == 0 || name_valid(s, len, DG_WIRE_MAX_BLOB_NAME);
}

static int
check_field(const struct dg_msg *m, enum field f)
{
	const struct field_spec *fs = &field_specs[f];
	const char *base = (const char *)m + fs->offset;
	size_t len;

	switch (fs->kind) {
	case K_AGENT_ID:
		len = strnlen(base, DG_WIRE_MAX_AGENT_ID + 1);
		return agent_id_valid(base, len) ? DG_OK : DG_ERR_FORMAT;
	case K_TEXT:
		len = strnlen(base, fs->bound + 1);
		if (len > fs->bound)
			return DG_ERR_TOOBIG;
		return text_printable(base, len) ? DG_OK : DG_ERR_FORMAT;
	case K_BYTES: {
		const struct dg_bytes *b = (const struct dg_bytes *)base;
		if (b->len > fs->bound)
			return DG_ERR_TOOBIG;
		return (b->len > 0 && b->data == NULL) ? DG_ERR_INVAL : DG_OK;
	}
	case K_REASONS:
		if (m->n_reasons > DG_VERDICT_MAX_REASONS)
			return DG_ERR_TOOBIG;
		for (size_t i = 0; i < m->n_reasons; i++) {
			const struct dg_reason *r = &m->reasons[i];
			size_t code_len = strnlen(r->code, sizeof r->code);
			size_t detail_len = strnlen(r->detail, sizeof r->detail);
			if (!name_valid(r->code, code_len, REASON_CODE_LEN) ||
			    detail_len > REASON_DETAIL_LEN || !text_printable(r->detail, detail_len))
				return DG_ERR_FORMAT;
		}
		return DG_OK;
	case K_NAMED: {
		const struct named_spec *ns = named_spec_of(f);
		size_t *count;
		const struct dg_named_blob *list = named_list(m, f, &count);
		if (*count > ns->max_count)
			return DG_ERR_TOOBIG;
		for (size_t i = 0; i < *count; i++) {
			const struct dg_named_blob *s = &list[i];
			size_t name_len = strnlen(s->name, sizeof s->name);
			if (!name_valid(s->name, name_len, ns->max_name))
				return DG_ERR_FORMAT;
			if (s->blob.len > ns->max_blob)
				return DG_ERR_TOOBIG;
			if (s->blob.len > 0 && s->blob.data == NULL)
				return DG_ERR_INVAL;
		}
		return DG_OK;
	}
	case K_LEASES: {
		size_t *count;
		const struct dg_lease_ref *list = lease_list(m, f, &count);
		if (*count > lease_spec_of(f)->max_count)
			return DG_ERR_TOOBIG;
		for (size_t i = 0; i < *count; i++)
			if (!scope_valid(list[i].scope, strnlen(list[i].scope, sizeof list[i].scope)) ||
			    !name_valid(list[i].secret, strnlen(list[i].secret, sizeof list[i].secret),
			                DG_WIRE_MAX_SECRET_NAME))
				return DG_ERR_FORMAT;
		return DG_OK;
	}
	case K_U32:
	case K_U64:
	case K_BOOL:
		return DG_OK;
	}
	return DG_ERR_INVAL;
}

/* Whether an optional field has content: only such fields are encoded, and a
 * decoded optional field without content is refused (one encoding each). */
static bool
field_present(const struct dg_msg *m, enum field f)
{
	const struct field_spec *fs = &field_specs[f];
	const char *base = (const char *)m + fs->offset;
	size_t *count;

	switch (fs->kind) {
	case K_TEXT:
		return base[0] != '\0';
	case K_BYTES:
		return ((const struct dg_bytes *)(const void *)base)->len > 0;
	case K_U32:
		return *(const uint32_t *)(const void *)base != 0;
	case K_NAMED:
		(void)named_list(m, f, &count);
		return *count > 0;
	case K_LEASES:
		(void)lease_list(m, f, &count);
		return *count > 0;
	default:
		return true;
	}
}

/* Fields the encoder emits: required ones and the optional ones with content. */
static unsigned
fields_to_emit(const struct dg_msg *m, const struct type_spec *ts)
{
	unsigned mask = ts->required;
	for (size_t f = 0; f < F__COUNT; f++)
		if ((ts->optional & BIT(f)) && field_present(m, (enum field)f))
			mask |= BIT(f);
	return mask;
}

/* Rules across fields, applied to what is encoded and what was decoded. */
static int
check_combination(const struct dg_msg *m, unsigned present)
{
	/* Sealed secrets travel only with a pass. */
	if ((present & BIT(F_SEALED)) && !m->pass)
		return DG_ERR_FORMAT;
	/* A bind key comes with its certification, or not at all. */
	if ((present & BIND_FIELDS) != 0 && (present & BIND_FIELDS) != BIND_FIELDS)
		return DG_ERR_FORMAT;
	return DG_OK;
}

/* ---- encoder ---- */

/* With buf == NULL the writer only measures. */
struct writer {
	uint8_t *buf;
	size_t len;
};

static void
put_raw(struct writer *w, const void *data, size_t len)
{
	if (w->buf != NULL && len > 0)
		memcpy(w->buf + w->len, data, len);
	w->len += len;
}

enum head_kind { H_UINT, H_BYTES, H_TEXT, H_ARRAY, H_MAP, H_BOOL };

static void
put_head(struct writer *w, enum head_kind kind, uint64_t value)
{
	unsigned char head[9];
	size_t n = 0;

	switch (kind) {
	case H_UINT:
		n = cbor_encode_uint(value, head, sizeof head);
		break;
	case H_BYTES:
		n = cbor_encode_bytestring_start((size_t)value, head, sizeof head);
		break;
	case H_TEXT:
		n = cbor_encode_string_start((size_t)value, head, sizeof head);
		break;
	case H_ARRAY:
		n = cbor_encode_array_start((size_t)value, head, sizeof head);
		break;
	case H_MAP:
		n = cbor_encode_map_start((size_t)value, head, sizeof head);
		break;
	case H_BOOL:
		n = cbor_encode_bool(value != 0, head, sizeof head);
		break;
	}
	put_raw(w, head, n);
}

static void
put_text(struct writer *w, const char *s)
{
	size_t len = strlen(s);
	put_head(w, H_TEXT, len);
	put_raw(w, s, len);
}

static void
put_bytes(struct writer *w, const uint8_t *data, size_t len)
{
	put_head(w, H_BYTES, len);
	put_raw(w, data, len);
}

static void
put_field(struct writer *w, const struct dg_msg *m, enum field f)
{
	const struct field_spec *fs = &field_specs[f];
	const char *base = (const char *)m + fs->offset;

	put_text(w, fs->key);
	switch (fs->kind) {
	case K_AGENT_ID:
	case K_TEXT:
		put_text(w, base);
		break;
	case K_BYTES: {
		const struct dg_bytes *b = (const struct dg_bytes *)base;
		put_bytes(w, b->data, b->len);
		break;
	}
	case K_U32:
		put_head(w, H_UINT, *(const uint32_t *)(const void *)base);
		break;
	case K_U64:
		put_head(w, H_UINT, *(const uint64_t *)(const void *)base);
		break;
	case K_BOOL:
		put_head(w, H_BOOL, *(const bool *)(const void *)base);
		break;
	case K_REASONS:
		put_head(w, H_ARRAY, m->n_reasons);
		for (size_t i = 0; i < m->n_reasons; i++) {
			put_head(w, H_ARRAY, 2);
			put_text(w, m->reasons[i].code);
			put_text(w, m->reasons[i].detail);
		}
		break;
	case K_NAMED: {
		size_t *count;
		const struct dg_named_blob *list = named_list(m, f, &count);
		put_head(w, H_ARRAY, *count);
		for (size_t i = 0; i < *count; i++) {
			put_head(w, H_ARRAY, 2);
			put_text(w, list[i].name);
			put_bytes(w, list[i].blob.data, list[i].blob.len);
		}
		break;
	}
	case K_LEASES: {
		size_t *count;
		const struct dg_lease_ref *list = lease_list(m, f, &count);
		put_head(w, H_ARRAY, *count);
		for (size_t i = 0; i < *count; i++) {
			put_head(w, H_ARRAY, 2);
			put_text(w, list[i].scope);
			put_text(w, list[i].secret);
		}
		break;
	}
	}
}

static void
put_msg(struct writer *w, const struct dg_msg *m, unsigned mask)
{
	put_head(w, H_MAP, 1 + (uint64_t)__builtin_popcount(mask));
	put_text(w, TYPE_KEY);
	put_head(w, H_UINT, (uint64_t)m->type);
	for (size_t f = 0; f < F__COUNT; f++) {
		if (mask & BIT(f))
			put_field(w, m, (enum field)f);
	}
}

int
dg_wire_encode(const struct dg_msg *m, uint8_t **out, size_t *out_len)
{
	const struct type_spec *ts = type_spec_of((uint64_t)m->type);
	struct writer w = {NULL, 0};
	unsigned mask;
	int rc;

	*out = NULL;
	*out_len = 0;
	if (ts == NULL)
		return DG_ERR_INVAL;
	mask = fields_to_emit(m, ts);
	/* What would not survive decoding is the caller's mistake. */
	if (check_combination(m, mask) != DG_OK)
		return DG_ERR_INVAL;
	for (size_t f = 0; f < F__COUNT; f++) {
		if ((mask & BIT(f)) && (rc = check_field(m, (enum field)f)) != DG_OK)
			return rc;
	}
	put_msg(&w, m, mask);
	if (w.len > DG_WIRE_MAX_MSG)
		return DG_ERR_TOOBIG;
	w.buf = malloc(w.len);
	if (w.buf == NULL)
		return DG_ERR_NOMEM;
	*out_len = w.len;
	w.len = 0;
	put_msg(&w, m, mask);
	*out = w.buf;
	return DG_OK;
}

/* ---- decoder ---- */

enum tok_kind { T_NONE, T_UINT, T_BYTES, T_TEXT, T_ARRAY, T_MAP, T_BOOL };

/* One CBOR item head; strings point into the input. */
struct tok {
	enum tok_kind kind;
	uint64_t value; /* T_UINT, T_BOOL; element count for T_ARRAY, T_MAP */
	const uint8_t *data;
	size_t len;
};

struct reader {
	const uint8_t *buf;
	size_t len;
	size_t off;
};

static void
on_u8(void *ctx, uint8_t v)
{
	struct tok *t = ctx;
	t->kind = T_UINT;
	t->value = v;
}

static void
on_u16(void *ctx, uint16_t v)
{
	struct tok *t = ctx;
	t->kind = T_UINT;
	t->value = v;
}

static void
on_u32(void *ctx, uint32_t v)
{
	struct tok *t = ctx;
	t->kind = T_UINT;
	t->value = v;
}

static void
on_u64(void *ctx, uint64_t v)
{
	struct tok *t = ctx;
	t->kind = T_UINT;
	t->value = v;
}

static void
on_bytes(void *ctx, cbor_data data, size_t len)
{
	struct tok *t = ctx;
	t->kind = T_BYTES;
	t->data = data;
	t->len = len;
}

static void
on_text(void *ctx, cbor_data data, size_t len)
{
	struct tok *t = ctx;
	t->kind = T_TEXT;
	t->data = data;
	t->len = len;
}

static void
on_array(void *ctx, size_t n)
{
	struct tok *t = ctx;
	t->kind = T_ARRAY;
	t->value = n;
}

static void
on_map(void *ctx, size_t n)
{
	struct tok *t = ctx;
	t->kind = T_MAP;
	t->value = n;
}

static void
on_bool(void *ctx, bool v)
{
	struct tok *t = ctx;
	t->kind = T_BOOL;
	t->value = v;
}

/* Items outside the schema (negative ints, indefinite lengths, tags, floats,
 * null, undefined, break) keep libcbor's no-op callbacks and so leave the
 * token T_NONE, which next_tok rejects. */
static struct cbor_callbacks
make_callbacks(void)
{
	struct cbor_callbacks cb = cbor_empty_callbacks;
	cb.uint8 = on_u8;
	cb.uint16 = on_u16;
	cb.uint32 = on_u32;
	cb.uint64 = on_u64;
	cb.byte_string = on_bytes;
	cb.string = on_text;
	cb.array_start = on_array;
	cb.map_start = on_map;
	cb.boolean = on_bool;
	return cb;
}

static int
next_tok(struct reader *r, const struct cbor_callbacks *cb, struct tok *t)
{
	struct cbor_decoder_result res;

	memset(t, 0, sizeof *t);
	if (r->off >= r->len)
		return DG_ERR_TRUNCATED;
	/* Decodes one head; a definite string is reported only when all of its
	 * announced bytes are present, so a huge claimed length is NEDATA. */
	res = cbor_stream_decode(r->buf + r->off, r->len - r->off, cb, t);
	switch (res.status) {
	case CBOR_DECODER_FINISHED:
		break;
	case CBOR_DECODER_NEDATA:
		return DG_ERR_TRUNCATED;
	default:
		return DG_ERR_FORMAT;
	}
	if (t->kind == T_NONE || res.read == 0 || res.read > r->len - r->off)
		return DG_ERR_FORMAT;
	r->off += res.read;
	return DG_OK;
}

static int
expect(struct reader *r, const struct cbor_callbacks *cb, enum tok_kind kind, struct tok *t)
{
	int rc = next_tok(r, cb, t);
	if (rc != DG_OK)
		return rc;
	return t->kind == kind ? DG_OK : DG_ERR_FORMAT;
}

/* Copy a text token into a char[bound + 1] after checking it. */
static int
copy_text(const struct tok *t, size_t bound, char *dst)
{
	if (t->len > bound)
		return DG_ERR_TOOBIG;
	if (!text_printable((const char *)t->data, t->len))
		return DG_ERR_FORMAT;
	memcpy(dst, t->data, t->len);
	dst[t->len] = '\0';
	return DG_OK;
}

static int
copy_name(const struct tok *t, size_t bound, char *dst)
{
	if (t->len > bound)
		return DG_ERR_TOOBIG;
	if (!name_valid((const char *)t->data, t->len, bound))
		return DG_ERR_FORMAT;
	memcpy(dst, t->data, t->len);
	dst[t->len] = '\0';
	return DG_OK;
}

static int
copy_bytes(const struct tok *t, size_t bound, struct dg_bytes *dst)
{
	if (t->len > bound)
		return DG_ERR_TOOBIG;
	return dg_bytes_set(dst, t->data, t->len);
}

/* An array header with at most max elements. */
static int
read_array(struct reader *r, const struct cbor_callbacks *cb, size_t max, size_t *n)
{
	struct tok t;
	int rc = expect(r, cb, T_ARRAY, &t);
	if (rc != DG_OK)
		return rc;
	if (t.value > max)
		return DG_ERR_TOOBIG;
	*n = (size_t)t.value;
	return DG_OK;
}

/* The [name, value] pairs of reasons and sealed: exactly two elements. */
static int
read_pair_header(struct reader *r, const struct cbor_callbacks *cb)
{
	struct tok t;
	int rc = expect(r, cb, T_ARRAY, &t);
	if (rc != DG_OK)
		return rc;
	return t.value == 2 ? DG_OK : DG_ERR_FORMAT;
}

static int
read_reasons(struct reader *r, const struct cbor_callbacks *cb, struct dg_msg *m)
{
	struct tok t;
	size_t n;
	int rc;

	if ((rc = read_array(r, cb, DG_VERDICT_MAX_REASONS, &n)) != DG_OK)
		goto out;
	for (size_t i = 0; i < n; i++) {
		struct dg_reason *reason = &m->reasons[i];
		if ((rc = read_pair_header(r, cb)) != DG_OK ||
		    (rc = expect(r, cb, T_TEXT, &t)) != DG_OK ||
		    (rc = copy_name(&t, REASON_CODE_LEN, reason->code)) != DG_OK ||
		    (rc = expect(r, cb, T_TEXT, &t)) != DG_OK ||
		    (rc = copy_text(&t, REASON_DETAIL_LEN, reason->detail)) != DG_OK)
			goto out;
		m->n_reasons = i + 1;
	}
out:
	return rc;
}

static int
read_named(struct reader *r, const struct cbor_callbacks *cb, struct dg_msg *m, enum field f)
{
	const struct named_spec *ns = named_spec_of(f);
	size_t *count;
	struct dg_named_blob *list = named_list(m, f, &count);
	struct tok t;
	size_t n;
	int rc;

	if ((rc = read_array(r, cb, ns->max_count, &n)) != DG_OK)
		goto out;
	for (size_t i = 0; i < n; i++) {
		struct dg_named_blob *s = &list[i];
		if ((rc = read_pair_header(r, cb)) != DG_OK ||
		    (rc = expect(r, cb, T_TEXT, &t)) != DG_OK ||
		    (rc = copy_name(&t, ns->max_name, s->name)) != DG_OK ||
		    (rc = expect(r, cb, T_BYTES, &t)) != DG_OK ||
		    (rc = copy_bytes(&t, ns->max_blob, &s->blob)) != DG_OK)
			goto out;
		*count = i + 1;
	}
out:
	return rc;
}

static int
read_leases(struct reader *r, const struct cbor_callbacks *cb, struct dg_msg *m, enum field f)
{
	size_t *count;
	struct dg_lease_ref *list = lease_list(m, f, &count);
	struct tok t;
	size_t n;
	int rc;

	if ((rc = read_array(r, cb, lease_spec_of(f)->max_count, &n)) != DG_OK)
		goto out;
	for (size_t i = 0; i < n; i++) {
		struct dg_lease_ref *l = &list[i];
		if ((rc = read_pair_header(r, cb)) != DG_OK ||
		    (rc = expect(r, cb, T_TEXT, &t)) != DG_OK)
			goto out;
		if (t.len > 0 && (rc = copy_name(&t, DG_WIRE_MAX_BLOB_NAME, l->scope)) != DG_OK)
			goto out;
		if ((rc = expect(r, cb, T_TEXT, &t)) != DG_OK ||
		    (rc = copy_name(&t, DG_WIRE_MAX_SECRET_NAME, l->secret)) != DG_OK)
			goto out;
		*count = i + 1;
	}
out:
	return rc;
}

static int
read_value(struct reader *r, const struct cbor_callbacks *cb, struct dg_msg *m, enum field f)
{
	const struct field_spec *fs = &field_specs[f];
	char *base = (char *)m + fs->offset;
	struct tok t;
	int rc;

	switch (fs->kind) {
	case K_AGENT_ID:
		if ((rc = expect(r, cb, T_TEXT, &t)) != DG_OK)
			return rc;
		if (t.len > DG_WIRE_MAX_AGENT_ID)
			return DG_ERR_TOOBIG;
		if (!agent_id_valid((const char *)t.data, t.len))
			return DG_ERR_FORMAT;
		memcpy(base, t.data, t.len);
		base[t.len] = '\0';
		return DG_OK;
	case K_TEXT:
		if ((rc = expect(r, cb, T_TEXT, &t)) != DG_OK)
			return rc;
		return copy_text(&t, fs->bound, base);
	case K_BYTES:
		if ((rc = expect(r, cb, T_BYTES, &t)) != DG_OK)
			return rc;
		return copy_bytes(&t, fs->bound, (struct dg_bytes *)(void *)base);
	case K_U32:
		if ((rc = expect(r, cb, T_UINT, &t)) != DG_OK)
			return rc;
		if (t.value > UINT32_MAX)
			return DG_ERR_TOOBIG;
		*(uint32_t *)(void *)base = (uint32_t)t.value;
		return DG_OK;
	case K_U64:
		if ((rc = expect(r, cb, T_UINT, &t)) != DG_OK)
			return rc;
		*(uint64_t *)(void *)base = t.value;
		return DG_OK;
	case K_BOOL:
		if ((rc = expect(r, cb, T_BOOL, &t)) != DG_OK)
			return rc;
		*(bool *)(void *)base = t.value != 0;
		return DG_OK;
	case K_REASONS:
		return read_reasons(r, cb, m);
	case K_NAMED:
		return read_named(r, cb, m, f);
	case K_LEASES:
		return read_leases(r, cb, m, f);
	}
	return DG_ERR_FORMAT;
}

/* Map a key token to a field index, F__COUNT for the type key, -1 if unknown. */
static int
lookup_key(const struct tok *t)
{
	if (t->len > MAX_KEY_LEN)
		return -1;
	if (t->len == strlen(TYPE_KEY) && memcmp(t->data, TYPE_KEY, t->len) == 0)
		return F__COUNT;
	for (int f = 0; f < F__COUNT; f++) {
		const char *key = field_specs[f].key;
		if (strlen(key) == t->len && memcmp(key, t->data, t->len) == 0)
			return f;
	}
	return -1;
}

int
dg_wire_decode(const uint8_t *buf, size_t len, struct dg_msg *m)
{
	const struct cbor_callbacks cb = make_callbacks();
	struct reader r = {buf, len, 0};
	const struct type_spec *ts = NULL;
	unsigned seen = 0;
	struct tok t;
	size_t pairs;
	int rc;

	dg_msg_init(m);
	if (len > DG_WIRE_MAX_MSG) {
		rc = DG_ERR_TOOBIG;
		goto out;
	}
	if ((rc = expect(&r, &cb, T_MAP, &t)) != DG_OK)
		goto out;
	if (t.value > MAX_MAP_PAIRS) {
		rc = DG_ERR_FORMAT;
		goto out;
	}
	pairs = (size_t)t.value;
	for (size_t i = 0; i < pairs; i++) {
		int f;
		if ((rc = expect(&r, &cb, T_TEXT, &t)) != DG_OK)
			goto out;
		f = lookup_key(&t);
		if (f < 0 || (seen & BIT(f))) {
			rc = DG_ERR_FORMAT; /* unknown or duplicate key */
			goto out;
		}
		seen |= BIT(f);
		if (f == F__COUNT) {
			if ((rc = expect(&r, &cb, T_UINT, &t)) != DG_OK)
				goto out;
			if ((ts = type_spec_of(t.value)) == NULL) {
				rc = DG_ERR_UNSUPPORTED;
				goto out;
			}
			m->type = (enum dg_msg_type)t.value;
		} else if ((rc = read_value(&r, &cb, m, (enum field)f)) != DG_OK) {
			goto out;
		}
	}
	if (r.off != r.len) {
		rc = DG_ERR_TRAILING;
		goto out;
	}
	seen &= ~TYPE_BIT;
	if (ts == NULL || (seen & ts->required) != ts->required ||
	    (seen & ~(ts->required | ts->optional)) != 0) {
		rc = DG_ERR_FORMAT;
		goto out;
	}
	for (size_t f = 0; f < F__COUNT; f++) {
		/* The encoder omits an empty optional field; accepting one would
		 * give a message two encodings. */
		if ((seen & ts->optional & BIT(f)) && !field_present(m, (enum field)f)) {
			rc = DG_ERR_FORMAT;
			goto out;
		}
	}
	rc = check_combination(m, seen);
out:
	if (rc != DG_OK)
		dg_msg_clear(m);
	return rc;
}
