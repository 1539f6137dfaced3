/*
 * Sealing: X25519 ECDH with a fresh ephemeral key, HKDF-SHA256 over the
 * shared secret (salt = ephemeral public || recipient public, so the key is
 * bound to both ends), AES-256-GCM with the caller's aad.
 */
#include "driftgate/seal.h"

#include <limits.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "driftgate/err.h"

#define SEAL_IV_LEN 12
#define SEAL_TAG_LEN 16
#define SEAL_INFO "driftgate seal v1"

/* Offsets into the sealed layout: eph_pub | iv | ciphertext | tag. */
#define SEAL_IV_OFF DG_SEAL_KEY_LEN
#define SEAL_CT_OFF (DG_SEAL_KEY_LEN + SEAL_IV_LEN)

static int
x25519_from_private(const uint8_t priv[DG_SEAL_KEY_LEN], EVP_PKEY **out)
{
	*out = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, DG_SEAL_KEY_LEN);
	return *out != NULL ? DG_OK : DG_ERR_CRYPTO;
}

static int
x25519_public_of(EVP_PKEY *key, uint8_t pub[DG_SEAL_KEY_LEN])
{
	size_t len = DG_SEAL_KEY_LEN;
	if (EVP_PKEY_get_raw_public_key(key, pub, &len) != 1 || len != DG_SEAL_KEY_LEN)
		return DG_ERR_CRYPTO;
	return DG_OK;
}

/* ECDH between own (private) and peer_pub; OpenSSL rejects an all-zero
 * result, which a small-order peer point would produce. */
static int
x25519_shared(EVP_PKEY *own, const uint8_t peer_pub[DG_SEAL_KEY_LEN],
              uint8_t shared[DG_SEAL_KEY_LEN])
{
	EVP_PKEY *peer = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	size_t len = DG_SEAL_KEY_LEN;
	int rc = DG_ERR_CRYPTO;

	peer = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer_pub, DG_SEAL_KEY_LEN);
	if (peer == NULL)
		goto out;
	ctx = EVP_PKEY_CTX_new(own, NULL);
	if (ctx == NULL || EVP_PKEY_derive_init(ctx) != 1 ||
	    EVP_PKEY_derive_set_peer(ctx, peer) != 1 ||
	    EVP_PKEY_derive(ctx, shared, &len) != 1 || len != DG_SEAL_KEY_LEN)
		goto out;
	rc = DG_OK;
out:
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(peer);
	return rc;
}

static int
derive_key(const uint8_t shared[DG_SEAL_KEY_LEN], const uint8_t eph_pub[DG_SEAL_KEY_LEN],
           const uint8_t rcpt_pub[DG_SEAL_KEY_LEN], uint8_t key[DG_SEAL_KEY_LEN])
{
	uint8_t salt[2 * DG_SEAL_KEY_LEN];
	EVP_KDF *kdf = NULL;
	EVP_KDF_CTX *kctx = NULL;
	OSSL_PARAM params[5];
	int rc = DG_ERR_CRYPTO;

	memcpy(salt, eph_pub, DG_SEAL_KEY_LEN);
	memcpy(salt + DG_SEAL_KEY_LEN, rcpt_pub, DG_SEAL_KEY_LEN);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)shared,
	                                              DG_SEAL_KEY_LEN);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, salt, sizeof salt);
	params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)SEAL_INFO,
	                                              strlen(SEAL_INFO));
	params[4] = OSSL_PARAM_construct_end();

	kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	if (kdf == NULL || (kctx = EVP_KDF_CTX_new(kdf)) == NULL ||
	    EVP_KDF_derive(kctx, key, DG_SEAL_KEY_LEN, params) != 1)
		goto out;
	rc = DG_OK;
out:
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	return rc;
}

int
dg_seal_keygen(uint8_t priv[DG_SEAL_KEY_LEN], uint8_t pub[DG_SEAL_KEY_LEN])
{
	EVP_PKEY *key = NULL;
	size_t len = DG_SEAL_KEY_LEN;
	int rc = DG_ERR_CRYPTO;

	key = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
	if (key == NULL)
		goto out;
	if (EVP_PKEY_get_raw_private_key(key, priv, &len) != 1 || len != DG_SEAL_KEY_LEN)
		goto out;
	rc = x25519_public_of(key, pub);
out:
	if (rc != DG_OK)
		OPENSSL_cleanse(priv, DG_SEAL_KEY_LEN);
	EVP_PKEY_free(key);
	return rc;
}

int
dg_seal(const uint8_t pub[DG_SEAL_KEY_LEN], const uint8_t *aad, size_t aad_len,
        const uint8_t *pt, size_t pt_len, uint8_t *out, size_t cap, size_t *out_len)
{
	EVP_PKEY *eph = NULL;
	EVP_CIPHER_CTX *cctx = NULL;
	uint8_t shared[DG_SEAL_KEY_LEN], key[DG_SEAL_KEY_LEN];
	int n, rc;

	*out_len = 0;
	/* EVP lengths are ints; keep the total representable too. */
	if (pt_len > INT_MAX - DG_SEAL_OVERHEAD || aad_len > INT_MAX)
		return DG_ERR_TOOBIG;
	if (cap < pt_len + DG_SEAL_OVERHEAD)
		return DG_ERR_TOOBIG;

	rc = DG_ERR_CRYPTO;
	eph = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
	if (eph == NULL)
		goto out;
	if ((rc = x25519_public_of(eph, out)) != DG_OK ||
	    (rc = x25519_shared(eph, pub, shared)) != DG_OK ||
	    (rc = derive_key(shared, out, pub, key)) != DG_OK)
		goto out;

	rc = DG_ERR_CRYPTO;
	if (RAND_bytes(out + SEAL_IV_OFF, SEAL_IV_LEN) != 1)
		goto out;
	cctx = EVP_CIPHER_CTX_new();
	if (cctx == NULL ||
	    EVP_EncryptInit_ex(cctx, EVP_aes_256_gcm(), NULL, key, out + SEAL_IV_OFF) != 1 ||
	    (aad_len > 0 && EVP_EncryptUpdate(cctx, NULL, &n, aad, (int)aad_len) != 1) ||
	    (pt_len > 0 && EVP_EncryptUpdate(cctx, out + SEAL_CT_OFF, &n, pt, (int)pt_len) != 1) ||
	    EVP_EncryptFinal_ex(cctx, out + SEAL_CT_OFF + pt_len, &n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(cctx, EVP_CTRL_GCM_GET_TAG, SEAL_TAG_LEN,
	                        out + SEAL_CT_OFF + pt_len) != 1)
		goto out;
	*out_len = pt_len + DG_SEAL_OVERHEAD;
	rc = DG_OK;
out:
	if (rc != DG_OK)
		OPENSSL_cleanse(out, pt_len + DG_SEAL_OVERHEAD);
	OPENSSL_cleanse(shared, sizeof shared);
	OPENSSL_cleanse(key, sizeof key);
	EVP_CIPHER_CTX_free(cctx);
	EVP_PKEY_free(eph);
	return rc;
}

int
dg_unseal(const uint8_t priv[DG_SEAL_KEY_LEN], const uint8_t *aad, size_t aad_len,
          const uint8_t *in, size_t in_len, uint8_t *pt, size_t cap, size_t *pt_len)
{
	EVP_PKEY *own = NULL;
	EVP_CIPHER_CTX *cctx = NULL;
	uint8_t own_pub[DG_SEAL_KEY_LEN], shared[DG_SEAL_KEY_LEN], key[DG_SEAL_KEY_LEN];
	uint8_t tag[SEAL_TAG_LEN];
	size_t ct_len;
	int n, rc;

	*pt_len = 0;
	if (in_len < DG_SEAL_OVERHEAD)
		return DG_ERR_TRUNCATED;
	ct_len = in_len - DG_SEAL_OVERHEAD;
	if (ct_len > INT_MAX || aad_len > INT_MAX)
		return DG_ERR_TOOBIG;
	if (cap < ct_len)
		return DG_ERR_TOOBIG;

	if ((rc = x25519_from_private(priv, &own)) != DG_OK ||
	    (rc = x25519_public_of(own, own_pub)) != DG_OK ||
	    (rc = x25519_shared(own, in, shared)) != DG_OK ||
	    (rc = derive_key(shared, in, own_pub, key)) != DG_OK)
		goto out;

	/* The tag is copied because EVP's set-tag ctrl takes a mutable pointer. */
	memcpy(tag, in + SEAL_CT_OFF + ct_len, SEAL_TAG_LEN);
	rc = DG_ERR_CRYPTO;
	cctx = EVP_CIPHER_CTX_new();
	if (cctx == NULL ||
	    EVP_DecryptInit_ex(cctx, EVP_aes_256_gcm(), NULL, key, in + SEAL_IV_OFF) != 1 ||
	    (aad_len > 0 && EVP_DecryptUpdate(cctx, NULL, &n, aad, (int)aad_len) != 1) ||
	    (ct_len > 0 && EVP_DecryptUpdate(cctx, pt, &n, in + SEAL_CT_OFF, (int)ct_len) != 1) ||
	    EVP_CIPHER_CTX_ctrl(cctx, EVP_CTRL_GCM_SET_TAG, SEAL_TAG_LEN, tag) != 1 ||
	    EVP_DecryptFinal_ex(cctx, pt + ct_len, &n) != 1)
		goto out;
	*pt_len = ct_len;
	rc = DG_OK;
out:
	/* GCM writes plaintext before the tag is checked: never leave it behind. */
	if (rc != DG_OK && ct_len > 0)
		OPENSSL_cleanse(pt, ct_len);
	OPENSSL_cleanse(shared, sizeof shared);
	OPENSSL_cleanse(key, sizeof key);
	EVP_CIPHER_CTX_free(cctx);
	EVP_PKEY_free(own);
	return rc;
}
