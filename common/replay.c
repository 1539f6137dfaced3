/*
 * Replay of an IMA log into sha1 and sha256 PCR banks, as the kernel extends:
 *   sha1:   PCR = SHA1(PCR || logged sha1 template hash)
 *   sha256: PCR = SHA256(PCR || SHA256(template data))
 * and for a violation all-0xff of the bank's size instead of the template hash.
 *
 * Replaying 100k entries costs three small hashes each (40 to ~200 bytes).
 * Through EVP in OpenSSL 3.0 every EVP_DigestInit_ex2 looks up an ENGINE and
 * frees and re-allocates the provider context, even with the digest the
 * context already holds: that costs about as much as the hash itself (a
 * third of replay time, measured with driftgate-bench). So these fixed-size
 * hashes use OpenSSL's one-call SHA1/SHA256 functions on a stack context:
 * the same implementation (SHA-NI where present) without the dispatch.
 * They are deprecated in 3.0 in favour of EVP, hence the suppression below;
 * the values are identical (test_replay checks them against python3 hashlib
 * and evmctl). Everything else in driftgate hashes through EVP.
 */
#define OPENSSL_SUPPRESS_DEPRECATED

#include "driftgate/log.h"

#include "driftgate/err.h"

#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

/* out = SHA-1(a || b) / SHA-256(a || b); b may be NULL when b_len is 0. */
static int
replay_sha1(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len, uint8_t *out)
{
	SHA_CTX c;
	if (SHA1_Init(&c) != 1 || SHA1_Update(&c, a, a_len) != 1 ||
	    (b_len != 0 && SHA1_Update(&c, b, b_len) != 1) || SHA1_Final(out, &c) != 1)
		return DG_ERR_CRYPTO;
	return DG_OK;
}

static int
replay_sha256(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len, uint8_t *out)
{
	SHA256_CTX c;
	if (SHA256_Init(&c) != 1 || SHA256_Update(&c, a, a_len) != 1 ||
	    (b_len != 0 && SHA256_Update(&c, b, b_len) != 1) || SHA256_Final(out, &c) != 1)
		return DG_ERR_CRYPTO;
	return DG_OK;
}

void
dg_replay_init(struct dg_replay *s)
{
	memset(s, 0, sizeof *s);
}

void
dg_replay_fini(struct dg_replay *s)
{
	/* hash_ctx is no longer used: nothing to free. */
	memset(s, 0, sizeof *s);
}

void
dg_replay_copy(struct dg_replay *dst, const struct dg_replay *src)
{
	memcpy(dst->sha1, src->sha1, sizeof dst->sha1);
	memcpy(dst->sha256, src->sha256, sizeof dst->sha256);
	dst->used = src->used;
	dst->entries = src->entries;
}

int
dg_replay_extend(struct dg_replay *s, const struct dg_log_entry *e)
{
	static const uint8_t violation[DG_SHA256_LEN] = {
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	};
	uint8_t sha1_pcr[DG_SHA1_LEN], sha256_pcr[DG_SHA256_LEN];
	uint8_t template_sha256[DG_SHA256_LEN];
	const uint8_t *sha1_event = violation, *sha256_event = violation;
	int rc = DG_ERR_FORMAT;

	if (e->pcr >= DG_LOG_MAX_PCR)
		goto out;
	rc = DG_ERR_INVAL;
	if (!e->violation && e->template_data == NULL)
		goto out;
	if (!e->violation) {
		rc = replay_sha256(e->template_data, e->template_data_len, NULL, 0, template_sha256);
		if (rc != DG_OK)
			goto out;
		sha1_event = e->template_hash;
		sha256_event = template_sha256;
	}
	/* Compute both banks before touching the state: all or nothing. */
	rc = replay_sha1(s->sha1[e->pcr], DG_SHA1_LEN, sha1_event, DG_SHA1_LEN, sha1_pcr);
	if (rc != DG_OK)
		goto out;
	rc = replay_sha256(s->sha256[e->pcr], DG_SHA256_LEN, sha256_event, DG_SHA256_LEN,
	                   sha256_pcr);
	if (rc != DG_OK)
		goto out;
	memcpy(s->sha1[e->pcr], sha1_pcr, DG_SHA1_LEN);
	memcpy(s->sha256[e->pcr], sha256_pcr, DG_SHA256_LEN);
	s->used |= UINT32_C(1) << e->pcr;
	s->entries++;
out:
	return rc;
}
