/* See hash.h for why these bypass EVP. */
#define OPENSSL_SUPPRESS_DEPRECATED

#include "driftgate/hash.h"

#include <openssl/sha.h>

#include "driftgate/err.h"

int
dg_hash_sha1(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len, uint8_t out[20])
{
	SHA_CTX c;
	if (SHA1_Init(&c) != 1 || SHA1_Update(&c, a, a_len) != 1 ||
	    (b_len != 0 && SHA1_Update(&c, b, b_len) != 1) || SHA1_Final(out, &c) != 1)
		return DG_ERR_CRYPTO;
	return DG_OK;
}

int
dg_hash_sha256(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len, uint8_t out[32])
{
	SHA256_CTX c;
	if (SHA256_Init(&c) != 1 || SHA256_Update(&c, a, a_len) != 1 ||
	    (b_len != 0 && SHA256_Update(&c, b, b_len) != 1) || SHA256_Final(out, &c) != 1)
		return DG_ERR_CRYPTO;
	return DG_OK;
}
