#include "driftgate/release.h"

#include <string.h>

#include "driftgate/err.h"

int
dg_release_aad(const struct dg_release_ctx *c, uint8_t *out, size_t cap, size_t *out_len)
{
	static const char label[] = "driftgate release v2";
	const char *parts[] = {c->agent_id, c->scope, c->secret};
	size_t need = sizeof label + DG_RELEASE_NONCE_LEN + 4;
	uint8_t *p = out;

	for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
		need += strlen(parts[i]) + 1;
	if (need > cap)
		return DG_ERR_TOOBIG;
	memcpy(p, label, sizeof label); /* with its NUL */
	p += sizeof label;
	/* Each name with its NUL: none may contain one, so the split is unique. */
	for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
		size_t len = strlen(parts[i]) + 1;
		memcpy(p, parts[i], len);
		p += len;
	}
	memcpy(p, c->nonce, DG_RELEASE_NONCE_LEN);
	p += DG_RELEASE_NONCE_LEN;
	*p++ = (uint8_t)(c->lease_ms >> 24);
	*p++ = (uint8_t)(c->lease_ms >> 16);
	*p++ = (uint8_t)(c->lease_ms >> 8);
	*p = (uint8_t)c->lease_ms;
	*out_len = need;
	return DG_OK;
}
