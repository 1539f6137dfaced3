/*
 * Replay of an IMA log into sha1 and sha256 PCR banks, as the kernel extends:
 *   sha1:   PCR = SHA1(PCR || logged sha1 template hash)
 *   sha256: PCR = SHA256(PCR || SHA256(template data))
 * and for a violation all-0xff of the bank's size instead of the template hash.
 *
 * Replaying 100k entries costs four small hashes each, so the digests are
 * fetched once per state and each bank keeps its own reusable EVP_MD_CTX:
 * re-initialising a context with the digest it already holds skips the
 * provider lookup and allocation that a fresh context would pay.
 */
#include "driftgate/log.h"

#include "driftgate/err.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

struct replay_hash_ctx {
	EVP_MD *sha1;
	EVP_MD *sha256;
	EVP_MD_CTX *sha1_ctx;
	EVP_MD_CTX *sha256_ctx;
};

static void
replay_hash_ctx_free(struct replay_hash_ctx *hc)
{
	if (hc == NULL)
		return;
	EVP_MD_CTX_free(hc->sha1_ctx);
	EVP_MD_CTX_free(hc->sha256_ctx);
	EVP_MD_free(hc->sha1);
	EVP_MD_free(hc->sha256);
	free(hc);
}

static int
replay_hash_ctx_new(struct replay_hash_ctx **out)
{
	struct replay_hash_ctx *hc;
	int rc = DG_ERR_NOMEM;

	if ((hc = calloc(1, sizeof *hc)) == NULL)
		goto out;
	if ((hc->sha1_ctx = EVP_MD_CTX_new()) == NULL ||
	    (hc->sha256_ctx = EVP_MD_CTX_new()) == NULL)
		goto out;
	rc = DG_ERR_CRYPTO;
	if ((hc->sha1 = EVP_MD_fetch(NULL, "SHA1", NULL)) == NULL ||
	    (hc->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL)
		goto out;
	*out = hc;
	hc = NULL;
	rc = DG_OK;
out:
	replay_hash_ctx_free(hc);
	return rc;
}

/* out = md(a || b); b may be NULL when b_len is 0. */
static int
replay_hash2(EVP_MD_CTX *ctx, const EVP_MD *md, const uint8_t *a, size_t a_len,
             const uint8_t *b, size_t b_len, uint8_t *out)
{
	if (EVP_DigestInit_ex2(ctx, md, NULL) != 1 || EVP_DigestUpdate(ctx, a, a_len) != 1 ||
	    (b_len != 0 && EVP_DigestUpdate(ctx, b, b_len) != 1) ||
	    EVP_DigestFinal_ex(ctx, out, NULL) != 1)
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
	replay_hash_ctx_free(s->hash_ctx);
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
	struct replay_hash_ctx *hc;
	int rc = DG_ERR_FORMAT;

	if (e->pcr >= DG_LOG_MAX_PCR)
		goto out;
	rc = DG_ERR_INVAL;
	if (!e->violation && e->template_data == NULL)
		goto out;
	if (s->hash_ctx == NULL) {
		if ((rc = replay_hash_ctx_new(&hc)) != DG_OK)
			goto out;
		s->hash_ctx = hc;
	}
	hc = s->hash_ctx;
	if (!e->violation) {
		rc = replay_hash2(hc->sha256_ctx, hc->sha256, e->template_data,
		                  e->template_data_len, NULL, 0, template_sha256);
		if (rc != DG_OK)
			goto out;
		sha1_event = e->template_hash;
		sha256_event = template_sha256;
	}
	/* Compute both banks before touching the state: all or nothing. */
	rc = replay_hash2(hc->sha1_ctx, hc->sha1, s->sha1[e->pcr], DG_SHA1_LEN, sha1_event,
	                  DG_SHA1_LEN, sha1_pcr);
	if (rc != DG_OK)
		goto out;
	rc = replay_hash2(hc->sha256_ctx, hc->sha256, s->sha256[e->pcr], DG_SHA256_LEN,
	                  sha256_event, DG_SHA256_LEN, sha256_pcr);
	if (rc != DG_OK)
		goto out;
	memcpy(s->sha1[e->pcr], sha1_pcr, DG_SHA1_LEN);
	memcpy(s->sha256[e->pcr], sha256_pcr, DG_SHA256_LEN);
	s->used |= UINT32_C(1) << e->pcr;
	s->entries++;
out:
	return rc;
}
