/*
 * Replay of an IMA log into sha1 and sha256 PCR banks, as the kernel extends:
 *   sha1:   PCR = SHA1(PCR || logged sha1 template hash)
 *   sha256: PCR = SHA256(PCR || SHA256(template data))
 * and for a violation all-0xff of the bank's size instead of the template hash.
 *
 * The hashes go through hash.h (see there for why not EVP).
 */
#include "driftgate/log.h"

#include <string.h>

#include "driftgate/err.h"
#include "driftgate/hash.h"

void
dg_replay_init(struct dg_replay *s)
{
	memset(s, 0, sizeof *s);
}

void
dg_replay_fini(struct dg_replay *s)
{
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
		rc = dg_hash_sha256(e->template_data, e->template_data_len, NULL, 0, template_sha256);
		if (rc != DG_OK)
			goto out;
		sha1_event = e->template_hash;
		sha256_event = template_sha256;
	}
	/* Compute both banks before touching the state: all or nothing. */
	rc = dg_hash_sha1(s->sha1[e->pcr], DG_SHA1_LEN, sha1_event, DG_SHA1_LEN, sha1_pcr);
	if (rc != DG_OK)
		goto out;
	rc = dg_hash_sha256(s->sha256[e->pcr], DG_SHA256_LEN, sha256_event, DG_SHA256_LEN,
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
