/*
 * TPM2_MakeCredential in software (TPM 2.0 Part 1, "Protection of
 * Credentials"): the verifier wraps a secret so that only the TPM holding the
 * EK, and only for a loaded object with the given name, can recover it.
 */
#include "driftgate/credential.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <tss2/tss2_tpm2_types.h>

#include "driftgate/err.h"
#include "driftgate/tpmkey.h"

#define SHA256_LEN 32
#define AES128_KEY_LEN 16
#define P256_COORD_LEN 32
/* KDF labels, including their terminating NUL as the TPM hashes them. */
#define IDENTITY_LABEL "IDENTITY"
#define STORAGE_LABEL "STORAGE"
#define INTEGRITY_LABEL "INTEGRITY"
/*
 * TPM2_MakeCredential refuses a credential longer than the EK nameAlg digest,
 * which is SHA-256 for every EK dg_tpmkey_import accepts.
 */
#define CREDENTIAL_MAX (SHA256_LEN < DG_CRED_MAX_CREDENTIAL ? SHA256_LEN : DG_CRED_MAX_CREDENTIAL)
/* encIdentity: TPM2B_DIGEST holding the credential. */
#define ENC_IDENTITY_MAX (2 + CREDENTIAL_MAX)
/* TPM2B_ID_OBJECT: size || TPM2B_DIGEST integrityHMAC || encIdentity. */
#define ID_OBJECT_LEN(cred_len) (2 + 2 + SHA256_LEN + 2 + (cred_len))

static void
put_u16(uint8_t *p, size_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void
put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

int
dg_cred_kdfa(const char *md_name, const uint8_t *key, size_t key_len, const char *label,
             const uint8_t *context_u, size_t context_u_len, const uint8_t *context_v,
             size_t context_v_len, uint32_t bits, uint8_t *out, size_t out_len)
{
	uint8_t block[EVP_MAX_MD_SIZE], counter_be[4], bits_be[4];
	OSSL_PARAM params[2];
	EVP_MAC *mac = NULL;
	EVP_MAC_CTX *ctx = NULL;
	size_t done = 0, block_len = 0;
	uint32_t counter = 0;
	int err = DG_ERR_CRYPTO;

	/* Callers here only need whole octets; the TPM's bit masking is not needed. */
	if (md_name == NULL || key == NULL || out == NULL || bits == 0 || bits % 8 != 0 ||
	    out_len != bits / 8 || (context_u == NULL && context_u_len != 0) ||
	    (context_v == NULL && context_v_len != 0)) {
		err = DG_ERR_INVAL;
		goto out;
	}
	if ((mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL || (ctx = EVP_MAC_CTX_new(mac)) == NULL)
		goto out;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)md_name, 0);
	params[1] = OSSL_PARAM_construct_end();
	if (!EVP_MAC_CTX_set_params(ctx, params)) {
		err = DG_ERR_UNSUPPORTED;
		goto out;
	}
	put_u32(bits_be, bits);
	while (done < out_len) {
		size_t take;

		put_u32(counter_be, ++counter);
		if (!EVP_MAC_init(ctx, key, key_len, NULL) ||
		    !EVP_MAC_update(ctx, counter_be, sizeof counter_be) ||
		    (label != NULL &&
		     !EVP_MAC_update(ctx, (const uint8_t *)label, strlen(label) + 1)) ||
		    (context_u_len != 0 && !EVP_MAC_update(ctx, context_u, context_u_len)) ||
		    (context_v_len != 0 && !EVP_MAC_update(ctx, context_v, context_v_len)) ||
		    !EVP_MAC_update(ctx, bits_be, sizeof bits_be) ||
		    !EVP_MAC_final(ctx, block, &block_len, sizeof block))
			goto out;
		take = out_len - done < block_len ? out_len - done : block_len;
		memcpy(out + done, block, take);
		done += take;
	}
	err = DG_OK;
out:
	if (err != DG_OK && out != NULL && out_len != 0)
		OPENSSL_cleanse(out, out_len);
	OPENSSL_cleanse(block, sizeof block);
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	return err;
}

/* RSA EK: the seed travels under RSA-OAEP(SHA-256) with label "IDENTITY\0". */
static int
rsa_share_seed(EVP_PKEY *ek, const uint8_t *seed, size_t seed_len, uint8_t *secret,
               size_t secret_cap, size_t *secret_len)
{
	OSSL_PARAM params[5];
	EVP_PKEY_CTX *ctx = NULL;
	size_t len = secret_cap - 2;
	int err = DG_ERR_CRYPTO;

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_ASYM_CIPHER_PARAM_PAD_MODE,
	                                             (char *)OSSL_PKEY_RSA_PAD_MODE_OAEP, 0);
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST,
	                                             (char *)"SHA256", 0);
	params[2] = OSSL_PARAM_construct_utf8_string(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST,
	                                             (char *)"SHA256", 0);
	params[3] = OSSL_PARAM_construct_octet_string(OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL,
	                                              (char *)IDENTITY_LABEL,
	                                              sizeof IDENTITY_LABEL);
	params[4] = OSSL_PARAM_construct_end();
	if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, ek, NULL)) == NULL ||
	    EVP_PKEY_encrypt_init_ex(ctx, params) <= 0 ||
	    EVP_PKEY_encrypt(ctx, secret + 2, &len, seed, seed_len) <= 0)
		goto out;
	put_u16(secret, len);
	*secret_len = 2 + len;
	err = DG_OK;
out:
	EVP_PKEY_CTX_free(ctx);
	return err;
}

static int
get_p256_point(EVP_PKEY *key, uint8_t x[P256_COORD_LEN], uint8_t y[P256_COORD_LEN])
{
	uint8_t point[1 + 2 * P256_COORD_LEN];
	size_t len = 0;

	if (!EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
	                                     sizeof point, &len) ||
	    len != sizeof point || point[0] != 0x04)
		return DG_ERR_CRYPTO;
	memcpy(x, point + 1, P256_COORD_LEN);
	memcpy(y, point + 1 + P256_COORD_LEN, P256_COORD_LEN);
	return DG_OK;
}

/*
 * KDFe (Part 1, 11.4.10.3): H(counter || Z || label\0 || partyU || partyV),
 * counter from 1; one block suffices for a seed of one digest.
 */
static int
kdfe_sha256(const uint8_t z[P256_COORD_LEN], const uint8_t party_u[P256_COORD_LEN],
            const uint8_t party_v[P256_COORD_LEN], uint8_t out[SHA256_LEN])
{
	static const uint8_t counter_one[4] = { 0, 0, 0, 1 };
	EVP_MD_CTX *ctx = NULL;
	unsigned int len = 0;
	int err = DG_ERR_CRYPTO;

	if ((ctx = EVP_MD_CTX_new()) == NULL) {
		err = DG_ERR_NOMEM;
		goto out;
	}
	if (!EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) ||
	    !EVP_DigestUpdate(ctx, counter_one, sizeof counter_one) ||
	    !EVP_DigestUpdate(ctx, z, P256_COORD_LEN) ||
	    !EVP_DigestUpdate(ctx, IDENTITY_LABEL, sizeof IDENTITY_LABEL) ||
	    !EVP_DigestUpdate(ctx, party_u, P256_COORD_LEN) ||
	    !EVP_DigestUpdate(ctx, party_v, P256_COORD_LEN) ||
	    !EVP_DigestFinal_ex(ctx, out, &len) || len != SHA256_LEN)
		goto out;
	err = DG_OK;
out:
	EVP_MD_CTX_free(ctx);
	return err;
}

/*
 * ECC EK: one-pass ECDH with a fresh ephemeral key. The seed is KDFe over the
 * shared x coordinate; the "encrypted secret" is the ephemeral public point.
 */
#define ECC_SECRET_LEN (2 + 2 * (2 + P256_COORD_LEN))
_Static_assert(ECC_SECRET_LEN <= DG_CRED_MAX_SECRET, "ECC secret must fit its bound");

static int
ecc_share_seed(EVP_PKEY *ek, uint8_t seed[SHA256_LEN], uint8_t secret[ECC_SECRET_LEN],
               size_t *secret_len)
{
	uint8_t z[P256_COORD_LEN], eph_x[P256_COORD_LEN], eph_y[P256_COORD_LEN];
	uint8_t ek_x[P256_COORD_LEN], ek_y[P256_COORD_LEN];
	EVP_PKEY *eph = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	size_t z_len = sizeof z;
	int err = DG_ERR_CRYPTO;

	if ((eph = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "prime256v1")) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_pkey(NULL, eph, NULL)) == NULL ||
	    EVP_PKEY_derive_init(ctx) <= 0 || EVP_PKEY_derive_set_peer(ctx, ek) <= 0 ||
	    EVP_PKEY_derive(ctx, z, &z_len) <= 0 || z_len != sizeof z)
		goto out;
	if ((err = get_p256_point(eph, eph_x, eph_y)) != DG_OK ||
	    (err = get_p256_point(ek, ek_x, ek_y)) != DG_OK ||
	    (err = kdfe_sha256(z, eph_x, ek_x, seed)) != DG_OK)
		goto out;
	/* TPM2B_ENCRYPTED_SECRET holding a TPMS_ECC_POINT. */
	put_u16(secret, ECC_SECRET_LEN - 2);
	put_u16(secret + 2, P256_COORD_LEN);
	memcpy(secret + 4, eph_x, P256_COORD_LEN);
	put_u16(secret + 4 + P256_COORD_LEN, P256_COORD_LEN);
	memcpy(secret + 6 + P256_COORD_LEN, eph_y, P256_COORD_LEN);
	*secret_len = ECC_SECRET_LEN;
out:
	OPENSSL_cleanse(z, sizeof z);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(eph);
	return err;
}

static int
aes128_cfb_encrypt(const uint8_t key[AES128_KEY_LEN], const uint8_t *in, size_t len,
                   uint8_t *out)
{
	static const uint8_t zero_iv[16];
	EVP_CIPHER_CTX *ctx = NULL;
	int out_len = 0, final_len = 0;
	int err = DG_ERR_CRYPTO;

	if ((ctx = EVP_CIPHER_CTX_new()) == NULL) {
		err = DG_ERR_NOMEM;
		goto out;
	}
	if (!EVP_EncryptInit_ex(ctx, EVP_aes_128_cfb128(), NULL, key, zero_iv) ||
	    !EVP_EncryptUpdate(ctx, out, &out_len, in, (int)len) ||
	    !EVP_EncryptFinal_ex(ctx, out + out_len, &final_len) ||
	    (size_t)out_len + (size_t)final_len != len)
		goto out;
	err = DG_OK;
out:
	EVP_CIPHER_CTX_free(ctx);
	return err;
}

static int
hmac_sha256_2(const uint8_t key[SHA256_LEN], const uint8_t *a, size_t a_len, const uint8_t *b,
              size_t b_len, uint8_t out[SHA256_LEN])
{
	OSSL_PARAM params[2];
	EVP_MAC *mac = NULL;
	EVP_MAC_CTX *ctx = NULL;
	size_t len = 0;
	int err = DG_ERR_CRYPTO;

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if ((mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL ||
	    (ctx = EVP_MAC_CTX_new(mac)) == NULL || !EVP_MAC_init(ctx, key, SHA256_LEN, params) ||
	    !EVP_MAC_update(ctx, a, a_len) || !EVP_MAC_update(ctx, b, b_len) ||
	    !EVP_MAC_final(ctx, out, &len, SHA256_LEN) || len != SHA256_LEN)
		goto out;
	err = DG_OK;
out:
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	return err;
}

int
dg_cred_make(const uint8_t *ek_pub, size_t ek_pub_len, const uint8_t *ak_name,
             size_t ak_name_len, const uint8_t *credential, size_t credential_len,
             uint8_t *id_object, size_t id_object_cap, size_t *id_object_len,
             uint8_t *enc_secret, size_t enc_secret_cap, size_t *enc_secret_len)
{
	uint8_t seed[SHA256_LEN], sym_key[AES128_KEY_LEN], hmac_key[SHA256_LEN];
	uint8_t plain[ENC_IDENTITY_MAX], id[ID_OBJECT_LEN(CREDENTIAL_MAX)];
	uint8_t secret[DG_CRED_MAX_SECRET];
	size_t secret_len = 0, id_len, enc_len;
	EVP_PKEY *ek = NULL;
	int err;

	if (ek_pub == NULL || ak_name == NULL || credential == NULL || id_object == NULL ||
	    id_object_len == NULL || enc_secret == NULL || enc_secret_len == NULL) {
		err = DG_ERR_INVAL;
		goto out;
	}
	/* An AK name here is always SHA-256 (see dg_tpmkey_import). */
	if (ak_name_len != 2 + SHA256_LEN || ak_name[0] != (uint8_t)(TPM2_ALG_SHA256 >> 8) ||
	    ak_name[1] != (uint8_t)TPM2_ALG_SHA256) {
		err = DG_ERR_FORMAT;
		goto out;
	}
	if (credential_len == 0) {
		err = DG_ERR_INVAL;
		goto out;
	}
	if (credential_len > CREDENTIAL_MAX) {
		err = DG_ERR_TOOBIG;
		goto out;
	}
	id_len = ID_OBJECT_LEN(credential_len);
	if (id_object_cap < id_len) {
		err = DG_ERR_TOOBIG;
		goto out;
	}
	if ((err = dg_tpmkey_import(ek_pub, ek_pub_len, DG_TPMKEY_EK, &ek, NULL, NULL)) != DG_OK)
		goto out;
	/* dg_tpmkey_import admits only SHA-256 names: the seed is one SHA-256 digest. */
	switch (EVP_PKEY_get_base_id(ek)) {
	case EVP_PKEY_RSA:
		if (RAND_priv_bytes(seed, sizeof seed) != 1) {
			err = DG_ERR_CRYPTO;
			goto out;
		}
		err = rsa_share_seed(ek, seed, sizeof seed, secret, sizeof secret, &secret_len);
		break;
	case EVP_PKEY_EC:
		err = ecc_share_seed(ek, seed, secret, &secret_len);
		break;
	default:
		err = DG_ERR_UNSUPPORTED;
		break;
	}
	if (err != DG_OK)
		goto out;
	if (secret_len > enc_secret_cap) {
		err = DG_ERR_TOOBIG;
		goto out;
	}
	if ((err = dg_cred_kdfa("SHA256", seed, sizeof seed, STORAGE_LABEL, ak_name, ak_name_len,
	                        NULL, 0, 8 * AES128_KEY_LEN, sym_key, sizeof sym_key)) != DG_OK ||
	    (err = dg_cred_kdfa("SHA256", seed, sizeof seed, INTEGRITY_LABEL, NULL, 0, NULL, 0,
	                        8 * SHA256_LEN, hmac_key, sizeof hmac_key)) != DG_OK)
		goto out;
	/* id = size || hmacSize || HMAC(encIdentity || name) || encIdentity */
	enc_len = 2 + credential_len;
	put_u16(plain, credential_len);
	memcpy(plain + 2, credential, credential_len);
	if ((err = aes128_cfb_encrypt(sym_key, plain, enc_len, id + 2 + 2 + SHA256_LEN)) != DG_OK ||
	    (err = hmac_sha256_2(hmac_key, id + 2 + 2 + SHA256_LEN, enc_len, ak_name, ak_name_len,
	                         id + 2 + 2)) != DG_OK)
		goto out;
	put_u16(id, id_len - 2);
	put_u16(id + 2, SHA256_LEN);
	memcpy(id_object, id, id_len);
	*id_object_len = id_len;
	memcpy(enc_secret, secret, secret_len);
	*enc_secret_len = secret_len;
	err = DG_OK;
out:
	OPENSSL_cleanse(seed, sizeof seed);
	OPENSSL_cleanse(sym_key, sizeof sym_key);
	OPENSSL_cleanse(hmac_key, sizeof hmac_key);
	OPENSSL_cleanse(plain, sizeof plain);
	EVP_PKEY_free(ek);
	return err;
}
