#include "driftgate/release.h"

#include <string.h>

#include "driftgate/err.h"

int
dg_release_aad(const char *agent_id, const char *secret_name, const uint8_t nonce[32],
               uint8_t *out, size_t cap, size_t *out_len)
{
	static const char label[] = "driftgate release v1";
	size_t id_len = strlen(agent_id), name_len = strlen(secret_name);
	size_t need = sizeof label + id_len + 1 + name_len + 1 + 32;
	if (need > cap)
		return DG_ERR_TOOBIG;
	uint8_t *p = out;
	memcpy(p, label, sizeof label); /* with its NUL */
	p += sizeof label;
	memcpy(p, agent_id, id_len + 1);
	p += id_len + 1;
	memcpy(p, secret_name, name_len + 1);
	p += name_len + 1;
	memcpy(p, nonce, 32);
	*out_len = need;
	return DG_OK;
}
