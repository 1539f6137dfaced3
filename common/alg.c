/* The algorithm allowlist (see alg.h for the table and the reasons). */
#include "driftgate/alg.h"

#include <stddef.h>

#include "driftgate/err.h"

struct alg_hash {
	TPM2_ALG_ID id;
	unsigned uses;
	const EVP_MD *(*md)(void);
};

/* SHA-1 is absent on purpose: absent means refused for every use. */
static const struct alg_hash alg_hashes[] = {
	{ TPM2_ALG_SHA256, DG_ALG_SIGN | DG_ALG_NAME | DG_ALG_PCR_BANK, EVP_sha256 },
	{ TPM2_ALG_SHA384, DG_ALG_SIGN, EVP_sha384 },
};

struct alg_scheme {
	TPM2_ALG_ID scheme;
	TPM2_ALG_ID key_type;
};

static const struct alg_scheme alg_schemes[] = {
	{ TPM2_ALG_RSASSA, TPM2_ALG_RSA },
	{ TPM2_ALG_RSAPSS, TPM2_ALG_RSA },
	{ TPM2_ALG_ECDSA, TPM2_ALG_ECC },
};

static const struct alg_hash *
alg_find_hash(TPM2_ALG_ID id)
{
	for (size_t i = 0; i < sizeof alg_hashes / sizeof alg_hashes[0]; i++) {
		if (alg_hashes[i].id == id)
			return &alg_hashes[i];
	}
	return NULL;
}

int
dg_alg_hash_check(TPM2_ALG_ID hash, unsigned uses)
{
	const struct alg_hash *h = alg_find_hash(hash);

	/* An empty set of uses would make any hash pass. */
	if (uses == 0)
		return DG_ERR_INVAL;
	return h != NULL && (h->uses & uses) == uses ? DG_OK : DG_ERR_UNSUPPORTED;
}

int
dg_alg_sig_check(TPM2_ALG_ID scheme, TPM2_ALG_ID hash, TPM2_ALG_ID *key_type)
{
	if (dg_alg_hash_check(hash, DG_ALG_SIGN) != DG_OK)
		return DG_ERR_UNSUPPORTED;
	for (size_t i = 0; i < sizeof alg_schemes / sizeof alg_schemes[0]; i++) {
		if (alg_schemes[i].scheme == scheme) {
			if (key_type != NULL)
				*key_type = alg_schemes[i].key_type;
			return DG_OK;
		}
	}
	return DG_ERR_UNSUPPORTED;
}

const EVP_MD *
dg_alg_md(TPM2_ALG_ID hash)
{
	const struct alg_hash *h = alg_find_hash(hash);

	return h != NULL ? h->md() : NULL;
}
