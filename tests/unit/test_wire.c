/* Wire codec: round trips, strict rejections, truncation, hostile nesting. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "driftgate/err.h"
#include "driftgate/wire.h"
#include "wire_eq.h"
#include "testutil.h"

/* ---- a tiny CBOR writer for hand-made inputs (RFC 8949 section 3) ---- */

struct cb {
	uint8_t *buf;
	size_t len, cap;
};

static void
cb_raw(struct cb *c, const void *p, size_t n)
{
	if (c->len + n > c->cap) {
		c->cap = (c->len + n) * 2 + 64;
		c->buf = realloc(c->buf, c->cap);
		ck_assert_ptr_nonnull(c->buf);
	}
	if (n > 0)
		memcpy(c->buf + c->len, p, n);
	c->len += n;
}

/* Head of major type `major` with argument v, shortest form. */
static void
cb_head(struct cb *c, unsigned major, uint64_t v)
{
	uint8_t h[9];
	size_t n;
	if (v < 24) {
		h[0] = (uint8_t)(major << 5 | v);
		n = 1;
	} else if (v <= 0xff) {
		h[0] = (uint8_t)(major << 5 | 24);
		h[1] = (uint8_t)v;
		n = 2;
	} else if (v <= 0xffff) {
		h[0] = (uint8_t)(major << 5 | 25);
		h[1] = (uint8_t)(v >> 8);
		h[2] = (uint8_t)v;
		n = 3;
	} else if (v <= 0xffffffffu) {
		h[0] = (uint8_t)(major << 5 | 26);
		for (int i = 0; i < 4; i++)
			h[1 + i] = (uint8_t)(v >> (24 - 8 * i));
		n = 5;
	} else {
		h[0] = (uint8_t)(major << 5 | 27);
		for (int i = 0; i < 8; i++)
			h[1 + i] = (uint8_t)(v >> (56 - 8 * i));
		n = 9;
	}
	cb_raw(c, h, n);
}

static void
cb_text(struct cb *c, const char *s)
{
	cb_head(c, 3, strlen(s));
	cb_raw(c, s, strlen(s));
}

static void
cb_textn(struct cb *c, const char *s, size_t n)
{
	cb_head(c, 3, n);
	cb_raw(c, s, n);
}

static void
cb_bytes(struct cb *c, size_t n, uint8_t fill)
{
	cb_head(c, 2, n);
	for (size_t i = 0; i < n; i++)
		cb_raw(c, &fill, 1);
}

static void
cb_bool(struct cb *c, bool v)
{
	uint8_t b = v ? 0xf5 : 0xf4;
	cb_raw(c, &b, 1);
}

static void
cb_byte(struct cb *c, uint8_t b)
{
	cb_raw(c, &b, 1);
}

static bool
msg_is_zero(const struct dg_msg *m)
{
	static const struct dg_msg zero;
	return memcmp(m, &zero, sizeof zero) == 0;
}

static int
decode_cb(struct cb *c)
{
	struct dg_msg m;
	int rc = dg_wire_decode(c->buf, c->len, &m);
	if (rc != DG_OK)
		ck_assert(msg_is_zero(&m));
	dg_msg_clear(&m);
	free(c->buf);
	memset(c, 0, sizeof *c);
	return rc;
}

/* ---- message generation and comparison ---- */

static uint64_t rng_state;

static uint64_t
rng(void)
{
	/* xorshift64: deterministic per seed, good enough to vary shapes. */
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static size_t
rng_len(size_t max)
{
	/* Favour the edges: 0, max, and anything between. */
	switch (rng() % 4) {
	case 0:
		return 0;
	case 1:
		return max;
	default:
		return (size_t)(rng() % (max + 1));
	}
}

static void
fill_bytes(struct dg_bytes *b, size_t max)
{
	size_t n = rng_len(max > 4096 ? 4096 : max);
	uint8_t *tmp = malloc(n + 1);
	ck_assert_ptr_nonnull(tmp);
	for (size_t i = 0; i < n; i++)
		tmp[i] = (uint8_t)rng();
	ck_assert_int_eq(dg_bytes_set(b, tmp, n), DG_OK);
	free(tmp);
}

static void
fill_text(char *dst, size_t min, size_t max, const char *alphabet)
{
	size_t n = rng_len(max);
	size_t na = strlen(alphabet);
	if (n < min)
		n = min;
	for (size_t i = 0; i < n; i++)
		dst[i] = alphabet[rng() % na];
	dst[n] = '\0';
}

static void
fill_bytes_nonempty(struct dg_bytes *b, size_t max)
{
	do
		fill_bytes(b, max);
	while (b->len == 0);
}

static const char name_chars[] = "abcz-._09!~";

/* Scopes may be "" (the node); secret names may not. */
static void
fill_leases(struct dg_lease_ref *list, size_t *n)
{
	*n = rng_len(DG_WIRE_MAX_LEASES);
	for (size_t i = 0; i < *n; i++) {
		fill_text(list[i].scope, 0, DG_WIRE_MAX_BLOB_NAME, name_chars);
		fill_text(list[i].secret, 1, DG_WIRE_MAX_SECRET_NAME, name_chars);
	}
}

static const char id_chars[] = "ABCXYZabcxyz0129._-";
static const char printable[] = " !\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~";

static void
fill_msg(struct dg_msg *m, enum dg_msg_type t)
{
	dg_msg_init(m);
	m->type = t;
	switch (t) {
	case DG_MSG_ENROLL_REQ:
		fill_text(m->agent_id, 1, DG_WIRE_MAX_AGENT_ID, id_chars);
		fill_bytes(&m->ek_pub, DG_WIRE_MAX_KEY);
		fill_bytes(&m->ak_pub, DG_WIRE_MAX_KEY);
		/* optional: an empty one is simply not sent */
		fill_bytes(&m->ek_cert, DG_WIRE_MAX_EK_CERT);
		m->pcr = (uint32_t)rng();
		break;
	case DG_MSG_ENROLL_CHALLENGE:
		fill_bytes(&m->id_object, DG_WIRE_MAX_BLOB);
		fill_bytes(&m->enc_secret, DG_WIRE_MAX_BLOB);
		break;
	case DG_MSG_ENROLL_ACTIVATE:
		fill_text(m->agent_id, 1, DG_WIRE_MAX_AGENT_ID, id_chars);
		fill_bytes(&m->credential, DG_WIRE_MAX_BLOB);
		break;
	case DG_MSG_ENROLL_DONE:
		break;
	case DG_MSG_NONCE_REQ:
		fill_text(m->agent_id, 1, DG_WIRE_MAX_AGENT_ID, id_chars);
		break;
	case DG_MSG_NONCE:
		fill_bytes(&m->nonce, DG_WIRE_MAX_BLOB);
		m->log_from = rng();
		m->pcr = (uint32_t)rng();
		break;
	case DG_MSG_ATTEST:
		fill_text(m->agent_id, 1, DG_WIRE_MAX_AGENT_ID, id_chars);
		fill_bytes(&m->nonce, DG_WIRE_MAX_BLOB);
		fill_bytes(&m->attest, DG_WIRE_MAX_BLOB);
		fill_bytes(&m->signature, DG_WIRE_MAX_BLOB);
		fill_bytes(&m->log, DG_WIRE_MAX_LOG);
		m->log_from = rng() >> (rng() % 64);
		if (rng() & 1) {
			/* a request comes with all three binding fields */
			fill_text(m->request[0].scope, 0, DG_WIRE_MAX_BLOB_NAME, name_chars);
			fill_text(m->request[0].secret, 1, DG_WIRE_MAX_SECRET_NAME, name_chars);
			m->n_request = 1;
			fill_bytes_nonempty(&m->bind_key, DG_WIRE_MAX_KEY);
			fill_bytes_nonempty(&m->bind_attest, DG_WIRE_MAX_BLOB);
			fill_bytes_nonempty(&m->bind_sig, DG_WIRE_MAX_BLOB);
		}
		fill_leases(m->leases, &m->n_leases);
		/* manifests kept small here; their bound has its own test */
		m->n_manifests = rng_len(DG_WIRE_MAX_MANIFESTS);
		for (size_t i = 0; i < m->n_manifests; i++) {
			fill_text(m->manifests[i].name, 1, DG_WIRE_MAX_BLOB_NAME, name_chars);
			fill_bytes(&m->manifests[i].blob, 4096);
		}
		break;
	case DG_MSG_VERDICT:
		m->pass = rng() & 1;
		m->n_reasons = rng_len(DG_VERDICT_MAX_REASONS);
		for (size_t i = 0; i < m->n_reasons; i++) {
			fill_text(m->reasons[i].code, 1, DG_REASON_CODE_MAX - 1, name_chars);
			fill_text(m->reasons[i].detail, 0, DG_REASON_DETAIL_MAX - 1, printable);
		}
		if (m->pass) {
			m->n_sealed = rng_len(DG_WIRE_MAX_SECRETS);
			for (size_t i = 0; i < m->n_sealed; i++) {
				fill_text(m->sealed[i].name, 1, DG_WIRE_MAX_SECRET_NAME, name_chars);
				fill_bytes(&m->sealed[i].blob, DG_WIRE_MAX_SEALED);
			}
		}
		fill_leases(m->renewed, &m->n_renewed);
		m->lease_ms = (uint32_t)rng_len(UINT32_MAX);
		fill_text(m->refused, 0, DG_WIRE_MAX_MESSAGE_TEXT, printable);
		break;
	case DG_MSG_ERROR:
		m->code = (uint32_t)rng();
		fill_text(m->message, 0, DG_WIRE_MAX_MESSAGE_TEXT, printable);
		break;
	}
}

/* ---- tests ---- */

/* Hand-derived from RFC 8949: map(1) 0xa1, text(1) "t" 0x61 0x74, uint 4. */
START_TEST(test_known_encoding)
{
	static const uint8_t done[] = {0xa1, 0x61, 0x74, 0x04};
	/* {"t": 5, "agent_id": "n1"}: map(2), "t", 5, text(8) "agent_id", text(2) "n1" */
	static const uint8_t nonce_req[] = {0xa2, 0x61, 0x74, 0x05, 0x68, 'a', 'g', 'e', 'n',
	                                    't', '_', 'i', 'd', 0x62, 'n', '1'};
	struct dg_msg m;
	uint8_t *out;
	size_t len;

	dg_msg_init(&m);
	m.type = DG_MSG_ENROLL_DONE;
	ck_assert_int_eq(dg_wire_encode(&m, &out, &len), DG_OK);
	ck_assert_uint_eq(len, sizeof done);
	ck_assert_mem_eq(out, done, sizeof done);
	free(out);

	m.type = DG_MSG_NONCE_REQ;
	strcpy(m.agent_id, "n1");
	ck_assert_int_eq(dg_wire_encode(&m, &out, &len), DG_OK);
	ck_assert_uint_eq(len, sizeof nonce_req);
	ck_assert_mem_eq(out, nonce_req, sizeof nonce_req);
	free(out);

	ck_assert_int_eq(dg_wire_decode(nonce_req, sizeof nonce_req, &m), DG_OK);
	ck_assert_int_eq(m.type, DG_MSG_NONCE_REQ);
	ck_assert_str_eq(m.agent_id, "n1");
	dg_msg_clear(&m);
	ck_assert_str_eq(dg_msg_type_name(DG_MSG_ATTEST), "ATTEST");
	ck_assert_str_eq(dg_msg_type_name((enum dg_msg_type)99), "UNKNOWN");
}
END_TEST

/* decode(encode(m)) == m for every type, many random shapes each. */
START_TEST(test_round_trip)
{
	enum dg_msg_type t = (enum dg_msg_type)_i;
	rng_state = 0x9e3779b97f4a7c15ull + (uint64_t)_i;
	for (int iter = 0; iter < 40; iter++) {
		struct dg_msg a, b;
		uint8_t *buf;
		size_t len;
		fill_msg(&a, t);
		ck_assert_int_eq(dg_wire_encode(&a, &buf, &len), DG_OK);
		ck_assert_int_eq(dg_wire_decode(buf, len, &b), DG_OK);
		ck_assert(wire_msg_eq(&a, &b));
		free(buf);
		dg_msg_clear(&a);
		dg_msg_clear(&b);
		ck_assert(msg_is_zero(&a));
	}
}
END_TEST

/* Every proper prefix of a valid encoding fails and leaves m zeroed. */
START_TEST(test_truncation)
{
	enum dg_msg_type t = (enum dg_msg_type)_i;
	struct dg_msg a, b;
	uint8_t *buf;
	size_t len;

	rng_state = 0x1234567ull + (uint64_t)_i;
	do {
		/* Keep the message small so every cut point is cheap to try. */
		fill_msg(&a, t);
		ck_assert_int_eq(dg_wire_encode(&a, &buf, &len), DG_OK);
		dg_msg_clear(&a);
		if (len < 6000)
			break;
		free(buf);
	} while (1);
	for (size_t cut = 0; cut < len; cut++) {
		uint8_t *copy = malloc(cut + 1); /* exact size: ASan catches over-reads */
		ck_assert_ptr_nonnull(copy);
		memcpy(copy, buf, cut);
		ck_assert_int_ne(dg_wire_decode(copy, cut, &b), DG_OK);
		ck_assert(msg_is_zero(&b));
		free(copy);
	}
	ck_assert_int_eq(dg_wire_decode(buf, len, &b), DG_OK);
	dg_msg_clear(&b);
	free(buf);
}
END_TEST

START_TEST(test_reject_keys)
{
	struct cb c = {0};

	/* unknown key */
	cb_head(&c, 5, 3);
	cb_text(&c, "t"), cb_head(&c, 0, DG_MSG_NONCE_REQ);
	cb_text(&c, "agent_id"), cb_text(&c, "a");
	cb_text(&c, "bogus"), cb_head(&c, 0, 1);
	ck_assert_int_eq(decode_cb(&c), DG_ERR_FORMAT);
	/* duplicate field */
	cb_head(&c, 5, 3);
	cb_text(&c, "t"), cb_head(&c, 0, DG_MSG_NONCE_REQ);
	cb_text(&c, "agent_id"), cb_text(&c, "a");
	cb_text(&c, "agent_id"), cb_text(&c, "a");
	ck_assert_int_eq(decode_cb(&c), DG_ERR_FORMAT);
	/* duplicate type key */
	cb_head(&c, 5, 3);
	cb_text(&c, "t"), cb_head(&c, 0, DG_MSG_NONCE_REQ);
	cb_text(&c, "t"), cb_head(&c, 0, DG_MSG_NONCE_REQ);
	cb_text(&c, "agent_id"), cb_text(&c, "a");
	ck_assert_int_eq(decode_cb(&c), DG_ERR_FORMAT);
	/* missing required field */
	cb_head(&c, 5, 1);
	cb_text(&c, "t"), cb_head(&c, 0, DG_MSG_NONCE_REQ);
	ck_assert_int_eq(decode_cb(&c), DG_ERR_FORMAT);
	/* missing type */
	cb_head(&c, 5, 1);
	cb_text(&c, "agent_id"), cb_text(&c, "a");
	ck_assert_int_eq(decode_cb(&c), DG_ERR_FORMAT);
	/* field not allowed for the type */
	cb_head(&c, 5, 2);
	cb_text(&c, "t"), cb_head(&c, 0, DG_MSG_ENROLL_DONE);
	cb_text(&c, "agent_id"), cb_text(&c, "a");
	ck_assert_int_eq(decode_cb(&c), DG_ERR_FORMAT);
	/* key that is bytes, not text */
	cb_head(&c, 5, 1);
	cb_head(&c, 2, 1), cb_byte(&c, 't'), cb_head(&c, 0, DG_MSG_ENROLL_DONE);
	ck_assert_int_eq(decode_cb(&c), DG_ERR_FORMAT);
	/* more pairs than the schema has keys (type + 27 fields) */
	cb_head(&c, 5, 29);
	ck_assert_int_eq(decode_cb(&c), DG_ERR_FORMAT);
	/* sealed without pass */
	cb_head(&c, 5, 4);
	cb_text(&c, "t"), cb_head(&c, 0, DG_MSG_VERDICT);
	cb_text(&c, "pass"), cb_bool(&c, false);
	cb_text(&c, "reasons"), cb_head(&c, 4, 0);
	cb_text(&c, "sealed"), cb_head(&c, 4, 0);
	ck_assert_int_eq(decode_cb(&c), DG_ERR_FORMAT);
	/* with pass, an empty optional list is still refused: the encoder omits
	 * it, so accepting it would give the message a second encoding */
	cb_head(&c, 5, 4);
	cb_text(&c, "t"), cb_head(&c, 0, DG_MSG_VERDICT);
	cb_text(&c, "pass"), cb_bool(&c, true);
	cb_text(&c, "reasons"), cb_head(&c, 4, 0);
	cb_text(&c, "sealed"), cb_head(&c, 4, 0);
	ck_assert_int_eq(decode_cb(&c), DG_ERR_FORMAT);
	/* the same without the empty list is fine */
	cb_head(&c, 5, 3);
	cb_text(&c, "t"), cb_head(&c, 0, DG_MSG_VERDICT);
	cb_text(&c, "pass"), cb_bool(&c, true);
	cb_text(&c, "reasons"), cb_head(&c, 4, 0);
	ck_assert_int_eq(decode_cb(&c), DG_OK);
	/* a zero lease is an absent lease, so it is refused too */
	cb_head(&c, 5, 4);
	cb_text(&c, "t"), cb_head(&c, 0, DG_MSG_VERDICT);
	cb_text(&c, "pass"), cb_bool(&c, true);
	cb_text(&c, "reasons"), cb_head(&c, 4, 0);
	cb_text(&c, "lease_ms"), cb_head(&c, 0, 0);
	ck_assert_int_eq(decode_cb(&c), DG_ERR_FORMAT);
}
END_TEST

/* A binding key travels with its certification or not at all. */
START_TEST(test_bind_fields_together)
{
	struct dg_msg m;
	uint8_t *out = NULL;
	size_t len = 0;

	dg_msg_init(&m);
	m.type = DG_MSG_ATTEST;
	strcpy(m.agent_id, "n1");
	ck_assert_int_eq(dg_bytes_set(&m.nonce, "n", 1), DG_OK);
	ck_assert_int_eq(dg_bytes_set(&m.attest, "a", 1), DG_OK);
	ck_assert_int_eq(dg_bytes_set(&m.signature, "s", 1), DG_OK);
	ck_assert_int_eq(dg_bytes_set(&m.bind_key, "k", 1), DG_OK);
	ck_assert_int_eq(dg_wire_encode(&m, &out, &len), DG_ERR_INVAL);
	ck_assert_int_eq(dg_bytes_set(&m.bind_attest, "c", 1), DG_OK);
	ck_assert_int_eq(dg_wire_encode(&m, &out, &len), DG_ERR_INVAL);
	ck_assert_int_eq(dg_bytes_set(&m.bind_sig, "g", 1), DG_OK);
	ck_assert_int_eq(dg_wire_encode(&m, &out, &len), DG_OK);
	free(out);
	dg_msg_clear(&m);
}
END_TEST

START_TEST(test_reject_types)
{
	struct cb c = {0};
	static const uint8_t not_map[] = {0x80};
	struct dg_msg m;

	ck_assert_int_eq(dg_wire_decode(not_map, sizeof not_map, &m), DG_ERR_FORMAT);
	ck_assert_int_eq(dg_wire_decode(not_map, 0, &m), DG_ERR_TRUNCATED);
	/* agent_id as bytes */
	cb_head(&c, 5, 2);
	cb_text(&c, "t"), cb_head(&c, 0, DG_MSG_NONCE_REQ);
	cb_text(&c, "agent_id"), cb_bytes(&c, 1, 'a');
	ck_assert_int_eq(decode_cb(&c), DG_ERR_FORMAT);
	/* pcr as a negative integer */
	cb_head(&c, 5, 5);
	cb_text(&c, "t"), cb_head(&c, 0, DG_MSG_ENROLL_REQ);
	cb_text(&c, "agent_id"), cb_text(&c, "a");
	cb_text(&c, "ek_pub"), cb_bytes(&c, 1, 1);
	cb_text(&c, "ak_pub"), cb_bytes(&c, 1, 1);
	cb_text(&c, "pcr"), cb_head(&c, 1, 0);
	ck_assert_int_eq(decode_cb(&c), DG_ERR_FORMAT);
	/* pass as uint */
	cb_head(&c, 5, 3);
	cb_text(&c, "t"), cb_head(&c, 0, DG_MSG_VERDICT);
	cb_text(&c, "pass"), cb_head(&c, 0, 1);
	cb_text(&c, "reasons"), cb_head(&c, 4, 0);
	ck_assert_int_eq(decode_cb(&c), DG_ERR_FORMAT);
	/* reasons as a map */
	cb_head(&c, 5, 3);
	cb_text(&c, "t"), cb_head(&c, 0, DG_MSG_VERDICT);
	cb_text(&c, "pass"), cb_bool(&c, true);
	cb_text(&c, "reasons"), cb_head(&c, 5, 0);
	ck_assert_int_eq(decode_cb(&c), DG_ERR_FORMAT);
	/* a reason pair with three elements */
	cb_head(&c, 5, 3);
	cb_text(&c, "t"), cb_head(&c, 0, DG_MSG_VERDICT);
	cb_text(&c, "pass"), cb_bool(&c, false);
	cb_text(&c, "reasons"), cb_head(&c, 4, 1), cb_head(&c, 4, 3);
	cb_text(&c, "a"), cb_text(&c, "b"), cb_text(&c, "c");
	ck_assert_int_eq(decode_cb(&c), DG_ERR_FORMAT);
	/* ERROR code as a text string */
	cb_head(&c, 5, 3);
	cb_text(&c, "t"), cb_head(&c, 0, DG_MSG_ERROR);
	cb_text(&c, "code"), cb_text(&c, "1");
	cb_text(&c, "message"), cb_text(&c, "x");
	ck_assert_int_eq(decode_cb(&c), DG_ERR_FORMAT);
}
END_TEST

/* Indefinite lengths, tags, floats, null, undefined, break: all outside the schema. */
START_TEST(test_reject_encodings)
{
	static const uint8_t indef_map[] = {0xbf, 0x61, 0x74, 0x04, 0xff};
	static const uint8_t tagged[] = {0xa1, 0x61, 0x74, 0xc1, 0x04};
	static const uint8_t float_t[] = {0xa1, 0x61, 0x74, 0xf9, 0x44, 0x00}; /* half 4.0 */
	static const uint8_t null_t[] = {0xa1, 0x61, 0x74, 0xf6};
	static const uint8_t undef_t[] = {0xa1, 0x61, 0x74, 0xf7};
	static const uint8_t brk[] = {0xff};
	static const uint8_t indef_text_key[] = {0xa1, 0x7f, 0x61, 0x74, 0xff, 0x04};
	static const uint8_t reserved[] = {0xa1, 0x61, 0x74, 0x1c}; /* additional info 28 */
	struct dg_msg m;

	ck_assert_int_eq(dg_wire_decode(indef_map, sizeof indef_map, &m), DG_ERR_FORMAT);
	ck_assert_int_eq(dg_wire_decode(tagged, sizeof tagged, &m), DG_ERR_FORMAT);
	ck_assert_int_eq(dg_wire_decode(float_t, sizeof float_t, &m), DG_ERR_FORMAT);
	ck_assert_int_eq(dg_wire_decode(null_t, sizeof null_t, &m), DG_ERR_FORMAT);
	ck_assert_int_eq(dg_wire_decode(undef_t, sizeof undef_t, &m), DG_ERR_FORMAT);
	ck_assert_int_eq(dg_wire_decode(brk, sizeof brk, &m), DG_ERR_FORMAT);
	ck_assert_int_eq(dg_wire_decode(indef_text_key, sizeof indef_text_key, &m), DG_ERR_FORMAT);
	ck_assert_int_eq(dg_wire_decode(reserved, sizeof reserved, &m), DG_ERR_FORMAT);
	ck_assert(msg_is_zero(&m));

	/* indefinite byte string in a field */
	struct cb c = {0};
	cb_head(&c, 5, 2);
	cb_text(&c, "t"), cb_head(&c, 0, DG_MSG_ENROLL_CHALLENGE);
	cb_text(&c, "id_object"), cb_byte(&c, 0x5f), cb_bytes(&c, 1, 0), cb_byte(&c, 0xff);
	ck_assert_int_eq(decode_cb(&c), DG_ERR_FORMAT);
}
END_TEST

static void
enroll_req_with_key(struct cb *c, size_t key_len)
{
	cb_head(c, 5, 5);
	cb_text(c, "t"), cb_head(c, 0, DG_MSG_ENROLL_REQ);
	cb_text(c, "agent_id"), cb_text(c, "node-1");
	cb_text(c, "ek_pub"), cb_bytes(c, key_len, 0xab);
	cb_text(c, "ak_pub"), cb_bytes(c, 1, 1);
	cb_text(c, "pcr"), cb_head(c, 0, 16);
}

START_TEST(test_reject_bounds)
{
	struct cb c = {0};
	char big[DG_WIRE_MAX_MESSAGE_TEXT + 2];

	enroll_req_with_key(&c, DG_WIRE_MAX_KEY);
	ck_assert_int_eq(decode_cb(&c), DG_OK);
	enroll_req_with_key(&c, DG_WIRE_MAX_KEY + 1);
	ck_assert_int_eq(decode_cb(&c), DG_ERR_TOOBIG);

	/* agent_id of 64 ok, 65 too long */
	memset(big, 'a', sizeof big);
	cb_head(&c, 5, 2);
	cb_text(&c, "t"), cb_head(&c, 0, DG_MSG_NONCE_REQ);
	cb_text(&c, "agent_id"), cb_textn(&c, big, DG_WIRE_MAX_AGENT_ID);
	ck_assert_int_eq(decode_cb(&c), DG_OK);
	cb_head(&c, 5, 2);
	cb_text(&c, "t"), cb_head(&c, 0, DG_MSG_NONCE_REQ);
	cb_text(&c, "agent_id"), cb_textn(&c, big, DG_WIRE_MAX_AGENT_ID + 1);
	ck_assert_int_eq(decode_cb(&c), DG_ERR_TOOBIG);

	/* ERROR message text of 257 */
	cb_head(&c, 5, 3);
	cb_text(&c, "t"), cb_head(&c, 0, DG_MSG_ERROR);
	cb_text(&c, "code"), cb_head(&c, 0, 3);
	cb_text(&c, "message"), cb_textn(&c, big, DG_WIRE_MAX_MESSAGE_TEXT + 1);
	ck_assert_int_eq(decode_cb(&c), DG_ERR_TOOBIG);

	/* pcr above 32 bits */
	cb_head(&c, 5, 4);
	cb_text(&c, "t"), cb_head(&c, 0, DG_MSG_NONCE);
	cb_text(&c, "nonce"), cb_bytes(&c, 32, 7);
	cb_text(&c, "log_from"), cb_head(&c, 0, UINT64_MAX);
	cb_text(&c, "pcr"), cb_head(&c, 0, (uint64_t)UINT32_MAX + 1);
	ck_assert_int_eq(decode_cb(&c), DG_ERR_TOOBIG);

	/* 33 reasons */
	cb_head(&c, 5, 3);
	cb_text(&c, "t"), cb_head(&c, 0, DG_MSG_VERDICT);
	cb_text(&c, "pass"), cb_bool(&c, false);
	cb_text(&c, "reasons"), cb_head(&c, 4, DG_VERDICT_MAX_REASONS + 1);
	for (int i = 0; i <= DG_VERDICT_MAX_REASONS; i++)
		cb_head(&c, 4, 2), cb_text(&c, "x"), cb_text(&c, "y");
	ck_assert_int_eq(decode_cb(&c), DG_ERR_TOOBIG);

	/* 17 sealed secrets, and one oversized blob */
	cb_head(&c, 5, 4);
	cb_text(&c, "t"), cb_head(&c, 0, DG_MSG_VERDICT);
	cb_text(&c, "pass"), cb_bool(&c, true);
	cb_text(&c, "reasons"), cb_head(&c, 4, 0);
	cb_text(&c, "sealed"), cb_head(&c, 4, DG_WIRE_MAX_SECRETS + 1);
	for (int i = 0; i <= DG_WIRE_MAX_SECRETS; i++)
		cb_head(&c, 4, 2), cb_text(&c, "s"), cb_bytes(&c, 1, 0);
	ck_assert_int_eq(decode_cb(&c), DG_ERR_TOOBIG);
	cb_head(&c, 5, 4);
	cb_text(&c, "t"), cb_head(&c, 0, DG_MSG_VERDICT);
	cb_text(&c, "pass"), cb_bool(&c, true);
	cb_text(&c, "reasons"), cb_head(&c, 4, 0);
	cb_text(&c, "sealed"), cb_head(&c, 4, 1);
	cb_head(&c, 4, 2), cb_text(&c, "s"), cb_bytes(&c, DG_WIRE_MAX_SEALED + 1, 0);
	ck_assert_int_eq(decode_cb(&c), DG_ERR_TOOBIG);
	/* manifests: only on ATTEST */
	cb_head(&c, 5, 2);
	cb_text(&c, "t"), cb_head(&c, 0, DG_MSG_NONCE_REQ);
	cb_text(&c, "manifests"), cb_head(&c, 4, 0);
	ck_assert_int_eq(decode_cb(&c), DG_ERR_FORMAT);
	{
		/* a manifest over its bound is refused; a name at its bound passes */
		struct dg_msg m;
		uint8_t *out = NULL;
		size_t out_len = 0;
		dg_msg_init(&m);
		m.type = DG_MSG_ATTEST;
		strcpy(m.agent_id, "a");
		m.n_manifests = 1;
		strcpy(m.manifests[0].name, "c1");
		ck_assert_int_eq(dg_wire_encode(&m, &out, &out_len), DG_OK);
		struct dg_msg back;
		ck_assert_int_eq(dg_wire_decode(out, out_len, &back), DG_OK);
		ck_assert_uint_eq(back.n_manifests, 1);
		ck_assert_str_eq(back.manifests[0].name, "c1");
		dg_msg_clear(&back);
		free(out);
		m.manifests[0].blob.data = calloc(1, DG_WIRE_MAX_MANIFEST + 1);
		m.manifests[0].blob.len = DG_WIRE_MAX_MANIFEST + 1;
		ck_assert_int_eq(dg_wire_encode(&m, &out, &out_len), DG_ERR_TOOBIG);
		m.manifests[0].blob.len = 1;
		memset(m.manifests[0].name, 'x', DG_WIRE_MAX_BLOB_NAME);
		m.manifests[0].name[DG_WIRE_MAX_BLOB_NAME] = '\0';
		ck_assert_int_eq(dg_wire_encode(&m, &out, &out_len), DG_OK);
		free(out);
		dg_msg_clear(&m);
	}

	/* reason code longer than the struct holds */
	cb_head(&c, 5, 3);
	cb_text(&c, "t"), cb_head(&c, 0, DG_MSG_VERDICT);
	cb_text(&c, "pass"), cb_bool(&c, false);
	cb_text(&c, "reasons"), cb_head(&c, 4, 1);
	cb_head(&c, 4, 2), cb_textn(&c, big, DG_REASON_CODE_MAX), cb_text(&c, "y");
	ck_assert_int_eq(decode_cb(&c), DG_ERR_TOOBIG);
}
END_TEST

/* ENROLL_REQ with an ek_cert of cert_len bytes. */
static void
enroll_req_with_cert(struct cb *c, size_t cert_len)
{
	cb_head(c, 5, 6);
	cb_text(c, "t"), cb_head(c, 0, DG_MSG_ENROLL_REQ);
	cb_text(c, "agent_id"), cb_text(c, "node-1");
	cb_text(c, "ek_pub"), cb_bytes(c, 1, 1);
	cb_text(c, "ak_pub"), cb_bytes(c, 1, 1);
	cb_text(c, "ek_cert"), cb_bytes(c, cert_len, 0x30);
	cb_text(c, "pcr"), cb_head(c, 0, 16);
}

/* ek_cert: optional on ENROLL_REQ only, bounded, never empty on the wire. */
START_TEST(test_ek_cert_field)
{
	struct cb c = {0};
	struct dg_msg m, back;
	uint8_t *out = NULL;
	size_t out_len = 0;

	enroll_req_with_cert(&c, DG_WIRE_MAX_EK_CERT);
	ck_assert_int_eq(dg_wire_decode(c.buf, c.len, &m), DG_OK);
	ck_assert_uint_eq(m.ek_cert.len, DG_WIRE_MAX_EK_CERT);
	ck_assert_uint_eq(m.ek_cert.data[0], 0x30);
	ck_assert_uint_eq(m.ek_cert.data[DG_WIRE_MAX_EK_CERT - 1], 0x30);
	dg_msg_clear(&m);
	free(c.buf);
	memset(&c, 0, sizeof c);
	enroll_req_with_cert(&c, DG_WIRE_MAX_EK_CERT + 1);
	ck_assert_int_eq(decode_cb(&c), DG_ERR_TOOBIG);
	/* present but empty: the encoder would have left it out */
	enroll_req_with_cert(&c, 0);
	ck_assert_int_eq(decode_cb(&c), DG_ERR_FORMAT);
	/* not a field of any other message */
	cb_head(&c, 5, 3);
	cb_text(&c, "t"), cb_head(&c, 0, DG_MSG_ENROLL_ACTIVATE);
	cb_text(&c, "agent_id"), cb_text(&c, "a");
	cb_text(&c, "ek_cert"), cb_bytes(&c, 8, 0x30);
	ck_assert_int_eq(decode_cb(&c), DG_ERR_FORMAT);
	/* without it, ENROLL_REQ is still complete */
	enroll_req_with_key(&c, 1);
	ck_assert_int_eq(decode_cb(&c), DG_OK);

	/* the encoder: omitted when empty, carried when set, refused when too big */
	dg_msg_init(&m);
	m.type = DG_MSG_ENROLL_REQ;
	strcpy(m.agent_id, "a");
	m.pcr = 13;
	ck_assert_int_eq(dg_bytes_set(&m.ek_pub, "k", 1), DG_OK);
	ck_assert_int_eq(dg_bytes_set(&m.ak_pub, "k", 1), DG_OK);
	ck_assert_int_eq(dg_wire_encode(&m, &out, &out_len), DG_OK);
	ck_assert_ptr_null(memmem(out, out_len, "ek_cert", 7));
	free(out);
	ck_assert_int_eq(dg_bytes_set(&m.ek_cert, "\x30\x03\x02\x01\x05", 5), DG_OK);
	ck_assert_int_eq(dg_wire_encode(&m, &out, &out_len), DG_OK);
	ck_assert_int_eq(dg_wire_decode(out, out_len, &back), DG_OK);
	ck_assert_uint_eq(back.ek_cert.len, 5);
	ck_assert_mem_eq(back.ek_cert.data, "\x30\x03\x02\x01\x05", 5);
	dg_msg_clear(&back);
	free(out);
	uint8_t *big = calloc(1, DG_WIRE_MAX_EK_CERT + 1);
	ck_assert_ptr_nonnull(big);
	ck_assert_int_eq(dg_bytes_set(&m.ek_cert, big, DG_WIRE_MAX_EK_CERT + 1), DG_OK);
	ck_assert_int_eq(dg_wire_encode(&m, &out, &out_len), DG_ERR_TOOBIG);
	free(big);
	dg_msg_clear(&m);
}
END_TEST

/* A byte string announcing 2^63 bytes must fail without allocating. */
START_TEST(test_reject_huge_length)
{
	struct cb c = {0};
	cb_head(&c, 5, 2);
	cb_text(&c, "t"), cb_head(&c, 0, DG_MSG_ENROLL_CHALLENGE);
	cb_text(&c, "id_object"), cb_head(&c, 2, 1ull << 63);
	cb_bytes(&c, 0, 0);
	cb_raw(&c, "abcd", 4);
	ck_assert_int_eq(decode_cb(&c), DG_ERR_TRUNCATED);
	/* the same claim on a map count and an array count */
	cb_head(&c, 5, UINT64_MAX);
	ck_assert_int_eq(decode_cb(&c), DG_ERR_FORMAT);
	cb_head(&c, 5, 2);
	cb_text(&c, "t"), cb_head(&c, 0, DG_MSG_VERDICT);
	cb_text(&c, "reasons"), cb_head(&c, 4, 1ull << 63);
	ck_assert_int_eq(decode_cb(&c), DG_ERR_TOOBIG);
}
END_TEST

START_TEST(test_reject_text)
{
	struct cb c = {0};
	static const char *bad_ids[] = {"", "a b", "a/b", "a\nb", "\xc3\xa9t\xc3\xa9", "a:b"};

	for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
		cb_head(&c, 5, 2);
		cb_text(&c, "t"), cb_head(&c, 0, DG_MSG_NONCE_REQ);
		cb_text(&c, "agent_id"), cb_text(&c, bad_ids[i]);
		ck_assert_int_eq(decode_cb(&c), DG_ERR_FORMAT);
	}
	/* embedded NUL in agent_id and in message */
	cb_head(&c, 5, 2);
	cb_text(&c, "t"), cb_head(&c, 0, DG_MSG_NONCE_REQ);
	cb_text(&c, "agent_id"), cb_textn(&c, "a\0b", 3);
	ck_assert_int_eq(decode_cb(&c), DG_ERR_FORMAT);
	cb_head(&c, 5, 3);
	cb_text(&c, "t"), cb_head(&c, 0, DG_MSG_ERROR);
	cb_text(&c, "code"), cb_head(&c, 0, 3);
	cb_text(&c, "message"), cb_textn(&c, "oops\0more", 9);
	ck_assert_int_eq(decode_cb(&c), DG_ERR_FORMAT);
	/* control character in a reason code, a reason detail, a secret name */
	cb_head(&c, 5, 3);
	cb_text(&c, "t"), cb_head(&c, 0, DG_MSG_VERDICT);
	cb_text(&c, "pass"), cb_bool(&c, false);
	cb_text(&c, "reasons"), cb_head(&c, 4, 1);
	cb_head(&c, 4, 2), cb_text(&c, "bad\x1b[2J"), cb_text(&c, "d");
	ck_assert_int_eq(decode_cb(&c), DG_ERR_FORMAT);
	cb_head(&c, 5, 3);
	cb_text(&c, "t"), cb_head(&c, 0, DG_MSG_VERDICT);
	cb_text(&c, "pass"), cb_bool(&c, false);
	cb_text(&c, "reasons"), cb_head(&c, 4, 1);
	cb_head(&c, 4, 2), cb_text(&c, "code"), cb_text(&c, "line1\nline2");
	ck_assert_int_eq(decode_cb(&c), DG_ERR_FORMAT);
	cb_head(&c, 5, 4);
	cb_text(&c, "t"), cb_head(&c, 0, DG_MSG_VERDICT);
	cb_text(&c, "pass"), cb_bool(&c, true);
	cb_text(&c, "reasons"), cb_head(&c, 4, 0);
	cb_text(&c, "sealed"), cb_head(&c, 4, 1);
	cb_head(&c, 4, 2), cb_text(&c, "db\tpass"), cb_bytes(&c, 4, 0);
	ck_assert_int_eq(decode_cb(&c), DG_ERR_FORMAT);
}
END_TEST

START_TEST(test_reject_framing)
{
	struct cb c = {0};
	struct dg_msg m;

	/* trailing byte after the map */
	cb_head(&c, 5, 1);
	cb_text(&c, "t"), cb_head(&c, 0, DG_MSG_ENROLL_DONE);
	cb_byte(&c, 0x00);
	ck_assert_int_eq(decode_cb(&c), DG_ERR_TRAILING);
	/* unknown message types */
	static const uint64_t bad_types[] = {0, DG_MSG_ERROR + 1, 1ull << 40};
	for (size_t i = 0; i < 3; i++) {
		cb_head(&c, 5, 1);
		cb_text(&c, "t"), cb_head(&c, 0, bad_types[i]);
		ck_assert_int_eq(decode_cb(&c), DG_ERR_UNSUPPORTED);
	}
	/* over the whole-message bound, checked before anything is read */
	uint8_t *huge = calloc(1, (size_t)DG_WIRE_MAX_MSG + 1);
	ck_assert_ptr_nonnull(huge);
	ck_assert_int_eq(dg_wire_decode(huge, (size_t)DG_WIRE_MAX_MSG + 1, &m), DG_ERR_TOOBIG);
	ck_assert(msg_is_zero(&m));
	free(huge);
}
END_TEST

/* 100,000 nested arrays, at the top and where the schema expects a reason. */
START_TEST(test_reject_deep_nesting)
{
	const size_t depth = 100000;
	struct cb c = {0};

	for (size_t i = 0; i < depth; i++)
		cb_head(&c, 4, 1);
	cb_head(&c, 0, 0);
	ck_assert_int_eq(decode_cb(&c), DG_ERR_FORMAT);

	cb_head(&c, 5, 3);
	cb_text(&c, "t"), cb_head(&c, 0, DG_MSG_VERDICT);
	cb_text(&c, "pass"), cb_bool(&c, false);
	cb_text(&c, "reasons"), cb_head(&c, 4, 1);
	for (size_t i = 0; i < depth; i++)
		cb_head(&c, 4, 2);
	ck_assert_int_eq(decode_cb(&c), DG_ERR_FORMAT);

	/* nested maps as a field value */
	cb_head(&c, 5, 2);
	cb_text(&c, "t"), cb_head(&c, 0, DG_MSG_NONCE_REQ);
	cb_text(&c, "agent_id");
	for (size_t i = 0; i < depth; i++)
		cb_head(&c, 5, 1), cb_text(&c, "k");
	ck_assert_int_eq(decode_cb(&c), DG_ERR_FORMAT);
}
END_TEST

/* The encoder refuses what the decoder would reject. */
START_TEST(test_encode_rejects)
{
	struct dg_msg m;
	uint8_t *out = (uint8_t *)&m;
	size_t len = 1;

	dg_msg_init(&m);
	m.type = DG_MSG_NONCE_REQ;
	strcpy(m.agent_id, "bad id");
	ck_assert_int_eq(dg_wire_encode(&m, &out, &len), DG_ERR_FORMAT);
	ck_assert_ptr_null(out);
	ck_assert_uint_eq(len, 0);

	dg_msg_init(&m);
	m.type = (enum dg_msg_type)0;
	ck_assert_int_eq(dg_wire_encode(&m, &out, &len), DG_ERR_INVAL);

	dg_msg_init(&m);
	m.type = DG_MSG_VERDICT;
	m.n_sealed = 1;
	strcpy(m.sealed[0].name, "s");
	ck_assert_int_eq(dg_wire_encode(&m, &out, &len), DG_ERR_INVAL); /* sealed without pass */
	m.pass = true;
	m.n_reasons = DG_VERDICT_MAX_REASONS + 1;
	ck_assert_int_eq(dg_wire_encode(&m, &out, &len), DG_ERR_TOOBIG);

	dg_msg_init(&m);
	m.type = DG_MSG_ENROLL_CHALLENGE;
	uint8_t blob[DG_WIRE_MAX_BLOB + 1] = {0};
	ck_assert_int_eq(dg_bytes_set(&m.id_object, blob, sizeof blob), DG_OK);
	ck_assert_int_eq(dg_wire_encode(&m, &out, &len), DG_ERR_TOOBIG);
	dg_msg_clear(&m);
	ck_assert(msg_is_zero(&m));
}
END_TEST

static Suite *
wire_suite(void)
{
	Suite *s = suite_create("wire");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_known_encoding);
	tcase_add_loop_test(tc, test_round_trip, DG_MSG_ENROLL_REQ, DG_MSG_ERROR + 1);
	tcase_add_loop_test(tc, test_truncation, DG_MSG_ENROLL_REQ, DG_MSG_ERROR + 1);
	tcase_add_test(tc, test_reject_keys);
	tcase_add_test(tc, test_bind_fields_together);
	tcase_add_test(tc, test_reject_types);
	tcase_add_test(tc, test_reject_encodings);
	tcase_add_test(tc, test_reject_bounds);
	tcase_add_test(tc, test_ek_cert_field);
	tcase_add_test(tc, test_reject_huge_length);
	tcase_add_test(tc, test_reject_text);
	tcase_add_test(tc, test_reject_framing);
	tcase_add_test(tc, test_reject_deep_nesting);
	tcase_add_test(tc, test_encode_rejects);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(wire_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
