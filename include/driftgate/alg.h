/*
 * The one list of TPM algorithms driftgate bases decisions on: which hash may
 * serve for what, and which signature schemes a quote may be signed with.
 * Quote verification (quote.h) and key import (tpmkey.h) ask here and nowhere
 * else. The list is fixed, not configurable:
 *
 *   hash     quote signature / AK scheme   key nameAlg   quoted PCR bank
 *   sha1     no                            no            no
 *   sha256   yes                           yes           yes
 *   sha384   yes                           no            no
 *
 *   schemes: RSASSA and RSAPSS (RSA keys), ECDSA (ECC keys), each with a
 *   signature hash above; nothing else (no HMAC, ECDAA, SM2, ECSchnorr).
 *
 * SHA-1 is in no column: it has practical collisions (SHAttered, 2017;
 * chosen-prefix, 2020). sha384 names and PCR banks would be sound, but
 * MakeCredential (credential.h) and the replay (log.h) implement SHA-256 only,
 * so accepting them would only move the refusal somewhere less clear.
 * Pure logic, no state.
 */
#ifndef DRIFTGATE_ALG_H
#define DRIFTGATE_ALG_H

#include <openssl/evp.h>
#include <tss2/tss2_tpm2_types.h>

/* What a hash is used for; a set of these is a bit mask. */
enum dg_alg_use {
	DG_ALG_SIGN = 1u << 0,     /* digest signed by a quote signature or an AK's scheme */
	DG_ALG_NAME = 1u << 1,     /* nameAlg of an EK or an AK */
	DG_ALG_PCR_BANK = 1u << 2, /* bank of the quoted PCR selection */
};

/* DG_OK if hash may serve for every use in uses, DG_ERR_UNSUPPORTED otherwise. */
int dg_alg_hash_check(TPM2_ALG_ID hash, unsigned uses);

/*
 * DG_OK if scheme with hash is an accepted signature scheme, with *key_type
 * (may be NULL) the key type it belongs to (TPM2_ALG_RSA or TPM2_ALG_ECC);
 * DG_ERR_UNSUPPORTED otherwise.
 */
int dg_alg_sig_check(TPM2_ALG_ID scheme, TPM2_ALG_ID hash, TPM2_ALG_ID *key_type);

/* The OpenSSL digest of a hash accepted for any use, NULL for any other. */
const EVP_MD *dg_alg_md(TPM2_ALG_ID hash);

#endif
