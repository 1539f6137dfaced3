/*
 * The small fixed-size hashes of log replay: SHA-1 and SHA-256 of (a || b).
 *
 * Replaying 100k entries costs four hashes of 40 to ~200 bytes each. Through
 * EVP in OpenSSL 3.0 every EVP_DigestInit_ex2 looks up an ENGINE and frees and
 * re-allocates the provider context, even for the digest it already holds:
 * about as much as the hash itself (a third of replay time, measured with
 * driftgate-bench). These use OpenSSL's one-call SHA1/SHA256 functions on a
 * stack context instead: the same implementation (SHA-NI where present)
 * without the dispatch. They are deprecated in 3.0 in favour of EVP and
 * bypass the provider (so a FIPS provider does not cover them); everything
 * else in driftgate hashes through EVP.
 */
#ifndef DRIFTGATE_HASH_H
#define DRIFTGATE_HASH_H

#include <stddef.h>
#include <stdint.h>

/* out = SHA-1(a || b); b may be NULL when b_len is 0. */
int dg_hash_sha1(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len,
                 uint8_t out[20]);
/* out = SHA-256(a || b); b may be NULL when b_len is 0. */
int dg_hash_sha256(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len,
                   uint8_t out[32]);

#endif
