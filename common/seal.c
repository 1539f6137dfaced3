/*
 * Sealing to a TPM-resident P-256 key. The verifier side is ordinary ECDH in
 * OpenSSL; the agent side gets the same shared x-coordinate from its TPM, so
 * the symmetric part (HKDF, AES-256-GCM) is shared here and the private key
 * never exists outside the TPM.
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
#define SEAL_KEY_LEN 32
#define SEAL_INFO "driftgate seal v2"
#define UNCOMPRESSED_LEN (1 + DG_SEAL_POINT_LEN) /* 0x04 || x || y */

/* Offsets into the sealed layout: eph point | iv | ciphertext | tag. */
#define SEAL_IV_OFF DG_SEAL_POINT_LEN
#define SEAL_CT_OFF (DG_SEAL_POINT_LEN + SEAL_IV_LEN)

int
dg_seal_point_of(EVP_PKEY *key, uint8_t point[DG_SEAL_POINT_LEN])
{
	uint8_t buf[UNCOMPRESSED_LEN];
	size_t len = 0;
	char group[16];

	if (key == NULL || point == NULL)
		return DG_ERR_INVAL;
	if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC ||
	    EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
	                                   NULL) != 1 ||
	    strcmp(group, "prime256v1") != 0)
		return DG_ERR_UNSUPPORTED;
	if (EVP_PKEY_set_utf8_string_param(key, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
	                                   "uncompressed") != 1 ||
	    EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, buf, sizeof buf, &len) !=
	            1 ||
	    len != UNCOMPRESSED_LEN || buf[0] != 0x04)
		return DG_ERR_CRYPTO;
	memcpy(point, buf + 1, DG_SEAL_POINT_LEN);
	return DG_OK;
}

/* HKDF-SHA256(z, salt = eph point || recipient point): the key is bound to both ends. */
static int
derive_key(const uint8_t z[DG_SEAL_COORD_LEN], const uint8_t eph[DG_SEAL_POINT_LEN],
           const uint8_t rcpt[DG_SEAL_POINT_LEN], uint8_t key[SEAL_KEY_LEN])
{
	uint8_t salt[2 * DG_SEAL_POINT_LEN];
	EVP_KDF *kdf = NULL;
	EVP_KDF_CTX *kctx = NULL;
	OSSL_PARAM params[5];
	int rc = DG_ERR_CRYPTO;

	memcpy(salt, eph, DG_SEAL_POINT_LEN);
	memcpy(salt + DG_SEAL_POINT_LEN, rcpt, DG_SEAL_POINT_LEN);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)z,
	                                              DG_SEAL_COORD_LEN);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, salt, sizeof salt);
	params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)SEAL_INFO,
	                                              strlen(SEAL_INFO));
	params[4] = OSSL_PARAM_construct_end();

	kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	if (kdf == NULL || (kctx = EVP_KDF_CTX_new(kdf)) == NULL ||
	    EVP_KDF_derive(kctx, key, SEAL_KEY_LEN, params) != 1)
		goto out;
	rc = DG_OK;
out:
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	return rc;
}

/* ECDH(own, peer): the shared x-coordinate, zero-padded as a TPM returns it. */
static int
ecdh_z(EVP_PKEY *own, EVP_PKEY *peer, uint8_t z[DG_SEAL_COORD_LEN])
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(own, NULL);
	size_t len = DG_SEAL_COORD_LEN;
	int rc = DG_ERR_CRYPTO;

	if (ctx == NULL || EVP_PKEY_derive_init(ctx) != 1 ||
	    EVP_PKEY_derive_set_peer(ctx, peer) != 1 || EVP_PKEY_derive(ctx, z, &len) != 1 ||
	    len != DG_SEAL_COORD_LEN)
		goto out;
	rc = DG_OK;
out:
	EVP_PKEY_CTX_free(ctx);
	return rc;
}

int
dg_seal(EVP_PKEY *rcpt, const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t pt_len,
        uint8_t *out, size_t cap, size_t *out_len)
{
	EVP_PKEY *eph = NULL;
	EVP_CIPHER_CTX *cctx = NULL;
	uint8_t rcpt_point[DG_SEAL_POINT_LEN], z[DG_SEAL_COORD_LEN], key[SEAL_KEY_LEN];
	int n, rc;

	if (out_len == NULL || out == NULL || (pt == NULL && pt_len > 0) ||
	    (aad == NULL && aad_len > 0))
		return DG_ERR_INVAL;
	*out_len = 0;
	/* EVP lengths are ints; keep the total representable too. */
	if (pt_len > INT_MAX - DG_SEAL_OVERHEAD || aad_len > INT_MAX)
		return DG_ERR_TOOBIG;
	if (cap < pt_len + DG_SEAL_OVERHEAD)
		return DG_ERR_TOOBIG;
	if ((rc = dg_seal_point_of(rcpt, rcpt_point)) != DG_OK)
		return rc;

	rc = DG_ERR_CRYPTO;
	if ((eph = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")) == NULL)
		goto out;
	if ((rc = dg_seal_point_of(eph, out)) != DG_OK || (rc = ecdh_z(eph, rcpt, z)) != DG_OK ||
	    (rc = derive_key(z, out, rcpt_point, key)) != DG_OK)
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
	OPENSSL_cleanse(z, sizeof z);
	OPENSSL_cleanse(key, sizeof key);
	EVP_CIPHER_CTX_free(cctx);
	EVP_PKEY_free(eph);
	return rc;
}

int
dg_seal_ephemeral(const uint8_t *in, size_t in_len, const uint8_t **point)
{
	if (in == NULL || point == NULL)
		return DG_ERR_INVAL;
	if (in_len < DG_SEAL_OVERHEAD)
		return DG_ERR_TRUNCATED;
	*point = in;
	return DG_OK;
}

int
dg_unseal(const uint8_t z[DG_SEAL_COORD_LEN], const uint8_t rcpt_point[DG_SEAL_POINT_LEN],
          const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t in_len, uint8_t *pt,
          size_t cap, size_t *pt_len)
{
	EVP_CIPHER_CTX *cctx = NULL;
	uint8_t key[SEAL_KEY_LEN], tag[SEAL_TAG_LEN];
	size_t ct_len = 0;
	int n, rc;

	if (z == NULL || rcpt_point == NULL || in == NULL || pt_len == NULL ||
	    (aad == NULL && aad_len > 0))
		return DG_ERR_INVAL;
	*pt_len = 0;
	if (in_len < DG_SEAL_OVERHEAD)
		return DG_ERR_TRUNCATED;
	ct_len = in_len - DG_SEAL_OVERHEAD;
	if (ct_len > INT_MAX || aad_len > INT_MAX)
		return DG_ERR_TOOBIG;
	if (cap < ct_len || (pt == NULL && ct_len > 0))
		return DG_ERR_TOOBIG;
	if ((rc = derive_key(z, in, rcpt_point, key)) != DG_OK)
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
	if (rc != DG_OK && ct_len > 0 && pt != NULL)
		OPENSSL_cleanse(pt, ct_len);
	OPENSSL_cleanse(key, sizeof key);
	EVP_CIPHER_CTX_free(cctx);
	return rc;
}
