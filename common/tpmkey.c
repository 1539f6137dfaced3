/*
 * TPM2B_PUBLIC import: strict template checks for EKs and AKs, conversion to
 * an OpenSSL key and computation of the TPM name.
 */
#include "driftgate/tpmkey.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_tpm2_types.h>

#include "driftgate/alg.h"
#include "driftgate/err.h"

#define RSA_KEY_BITS 2048
#define RSA_DEFAULT_EXPONENT 65537u
#define P256_COORD_LEN 32

/* The TCG EK Credential Profile default (low range) templates L-1 and L-2. */
static const TPMA_OBJECT ek_attributes =
	TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
	TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;

/* What tpm2_createak produces: a restricted signing key that never leaves the TPM. */
static const TPMA_OBJECT ak_attributes =
	TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
	TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT;

/* The agent's binding key: an ECDH key for secrets that never leaves its TPM.
 * Not restricted (it decrypts caller data), never a signing key. */
static const TPMA_OBJECT bind_attributes =
	TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
	TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_DECRYPT;

static int
mu_error(TSS2_RC rc)
{
	return rc == TSS2_MU_RC_INSUFFICIENT_BUFFER ? DG_ERR_TRUNCATED : DG_ERR_FORMAT;
}

/* An EK must be a storage key whose seed travels under AES-128-CFB. */
static int
check_ek_symmetric(const TPMT_SYM_DEF_OBJECT *sym)
{
	if (sym->algorithm != TPM2_ALG_AES || sym->keyBits.aes != 128 ||
	    sym->mode.aes != TPM2_ALG_CFB)
		return DG_ERR_UNSUPPORTED;
	return DG_OK;
}

/* An AK's scheme: one the allowlist (alg.h) accepts, for this key type. */
static int
check_sig_scheme(TPM2_ALG_ID scheme, TPM2_ALG_ID hash, TPM2_ALG_ID key_type)
{
	TPM2_ALG_ID scheme_key = TPM2_ALG_NULL;

	if (dg_alg_sig_check(scheme, hash, &scheme_key) != DG_OK || scheme_key != key_type)
		return DG_ERR_UNSUPPORTED;
	return DG_OK;
}

static int
check_rsa(const TPMT_PUBLIC *pub, enum dg_tpmkey_role role)
{
	const TPMS_RSA_PARMS *parms = &pub->parameters.rsaDetail;
	int err;

	if (parms->keyBits != RSA_KEY_BITS ||
	    (parms->exponent != 0 && parms->exponent != RSA_DEFAULT_EXPONENT) ||
	    pub->unique.rsa.size != RSA_KEY_BITS / 8)
		return DG_ERR_UNSUPPORTED;
	if (role == DG_TPMKEY_EK) {
		if ((err = check_ek_symmetric(&parms->symmetric)) != DG_OK)
			return err;
		if (parms->scheme.scheme != TPM2_ALG_NULL)
			return DG_ERR_UNSUPPORTED;
		return DG_OK;
	}
	if (parms->symmetric.algorithm != TPM2_ALG_NULL)
		return DG_ERR_UNSUPPORTED;
	return check_sig_scheme(parms->scheme.scheme, parms->scheme.details.anySig.hashAlg,
	                        TPM2_ALG_RSA);
}

static int
check_ecc(const TPMT_PUBLIC *pub, enum dg_tpmkey_role role)
{
	const TPMS_ECC_PARMS *parms = &pub->parameters.eccDetail;
	int err;

	if (parms->curveID != TPM2_ECC_NIST_P256 || parms->kdf.scheme != TPM2_ALG_NULL ||
	    pub->unique.ecc.x.size == 0 || pub->unique.ecc.x.size > P256_COORD_LEN ||
	    pub->unique.ecc.y.size == 0 || pub->unique.ecc.y.size > P256_COORD_LEN)
		return DG_ERR_UNSUPPORTED;
	if (role == DG_TPMKEY_EK) {
		if ((err = check_ek_symmetric(&parms->symmetric)) != DG_OK)
			return err;
		if (parms->scheme.scheme != TPM2_ALG_NULL)
			return DG_ERR_UNSUPPORTED;
		return DG_OK;
	}
	if (parms->symmetric.algorithm != TPM2_ALG_NULL)
		return DG_ERR_UNSUPPORTED;
	if (role == DG_TPMKEY_BIND)
		return parms->scheme.scheme == TPM2_ALG_ECDH &&
		               parms->scheme.details.ecdh.hashAlg == TPM2_ALG_SHA256
		       ? DG_OK
		       : DG_ERR_UNSUPPORTED;
	return check_sig_scheme(parms->scheme.scheme, parms->scheme.details.anySig.hashAlg,
	                        TPM2_ALG_ECC);
}

static int
check_template(const TPMT_PUBLIC *pub, enum dg_tpmkey_role role)
{
	TPMA_OBJECT want;

	switch (role) {
	case DG_TPMKEY_EK:
		want = ek_attributes;
		break;
	case DG_TPMKEY_AK:
		want = ak_attributes;
		break;
	case DG_TPMKEY_BIND:
		want = bind_attributes;
		if (pub->type != TPM2_ALG_ECC)
			return DG_ERR_UNSUPPORTED;
		break;
	default:
		return DG_ERR_INVAL;
	}
	if (pub->objectAttributes != want)
		return DG_ERR_ATTRIBUTES;
	/* SHA-256 in practice, as in the default EK templates (alg.h says why). */
	if (dg_alg_hash_check(pub->nameAlg, DG_ALG_NAME) != DG_OK)
		return DG_ERR_UNSUPPORTED;
	switch (pub->type) {
	case TPM2_ALG_RSA:
		return check_rsa(pub, role);
	case TPM2_ALG_ECC:
		return check_ecc(pub, role);
	default:
		return DG_ERR_UNSUPPORTED;
	}
}

static int
rsa_to_pkey(const TPMT_PUBLIC *pub, EVP_PKEY **out)
{
	const TPMS_RSA_PARMS *parms = &pub->parameters.rsaDetail;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	BIGNUM *n = NULL, *e = NULL;
	int err = DG_ERR_CRYPTO;

	n = BN_bin2bn(pub->unique.rsa.buffer, pub->unique.rsa.size, NULL);
	e = BN_new();
	if (n == NULL || e == NULL ||
	    !BN_set_word(e, parms->exponent == 0 ? RSA_DEFAULT_EXPONENT : parms->exponent))
		goto out;
	/* A leading zero byte would make this a smaller key than it claims. */
	if (BN_num_bits(n) != RSA_KEY_BITS) {
		err = DG_ERR_FORMAT;
		goto out;
	}
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL)
		goto out;
	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		goto out;
	err = DG_OK;
out:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	return err;
}

static int
ecc_to_pkey(const TPMT_PUBLIC *pub, EVP_PKEY **out)
{
	const TPM2B_ECC_PARAMETER *x = &pub->unique.ecc.x, *y = &pub->unique.ecc.y;
	uint8_t point[1 + 2 * P256_COORD_LEN] = { 0x04 }; /* SEC1 uncompressed */
	OSSL_PARAM params[3];
	EVP_PKEY_CTX *ctx = NULL;
	int err = DG_ERR_CRYPTO;

	/* The TPM may drop leading zero octets; SEC1 wants fixed-width coordinates. */
	memcpy(point + 1 + P256_COORD_LEN - x->size, x->buffer, x->size);
	memcpy(point + 1 + 2 * P256_COORD_LEN - y->size, y->buffer, y->size);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
	                                             (char *)"prime256v1", 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point,
	                                              sizeof point);
	params[2] = OSSL_PARAM_construct_end();
	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) <= 0)
		goto out;
	/* fromdata rejects a point that is not on the curve. */
	if (EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
		err = DG_ERR_FORMAT;
		goto out;
	}
	err = DG_OK;
out:
	EVP_PKEY_CTX_free(ctx);
	return err;
}

int
dg_tpmkey_import(const uint8_t *pub, size_t pub_len, enum dg_tpmkey_role role,
                 EVP_PKEY **out_key, uint8_t name[DG_TPMKEY_MAX_NAME], size_t *name_len)
{
	TPM2B_PUBLIC parsed = { 0 };
	uint8_t canonical[DG_TPMKEY_MAX_PUBLIC];
	uint8_t computed_name[DG_TPMKEY_MAX_NAME];
	size_t offset = 0, canonical_len = 0;
	unsigned int digest_len = 0;
	EVP_PKEY *key = NULL;
	TSS2_RC rc;
	int err;

	if (pub == NULL || (name == NULL) != (name_len == NULL)) {
		err = DG_ERR_INVAL;
		goto out;
	}
	if (pub_len > DG_TPMKEY_MAX_PUBLIC) {
		err = DG_ERR_TOOBIG;
		goto out;
	}
	if ((rc = Tss2_MU_TPM2B_PUBLIC_Unmarshal(pub, pub_len, &offset, &parsed)) != TSS2_RC_SUCCESS) {
		err = mu_error(rc);
		goto out;
	}
	if (offset != pub_len) {
		err = DG_ERR_TRAILING;
		goto out;
	}
	/*
	 * The name is a hash of the marshaled TPMT_PUBLIC. Re-marshal and insist
	 * the input was already in that form (size prefix included), so the name
	 * we compute is the one the TPM computed for the same bytes.
	 */
	rc = Tss2_MU_TPMT_PUBLIC_Marshal(&parsed.publicArea, canonical, sizeof canonical,
	                                 &canonical_len);
	if (rc != TSS2_RC_SUCCESS) {
		err = DG_ERR_FORMAT;
		goto out;
	}
	if (parsed.size != canonical_len || canonical_len + 2 != pub_len ||
	    memcmp(canonical, pub + 2, canonical_len) != 0) {
		err = DG_ERR_FORMAT;
		goto out;
	}
	if ((err = check_template(&parsed.publicArea, role)) != DG_OK)
		goto out;
	if (out_key != NULL) {
		err = parsed.publicArea.type == TPM2_ALG_RSA ? rsa_to_pkey(&parsed.publicArea, &key)
		                                             : ecc_to_pkey(&parsed.publicArea, &key);
		if (err != DG_OK)
			goto out;
	}
	computed_name[0] = (uint8_t)(parsed.publicArea.nameAlg >> 8);
	computed_name[1] = (uint8_t)parsed.publicArea.nameAlg;
	/* check_template let only an allowlisted nameAlg through. */
	if (!EVP_Digest(canonical, canonical_len, computed_name + 2, &digest_len,
	                dg_alg_md(parsed.publicArea.nameAlg), NULL) ||
	    digest_len > DG_TPMKEY_MAX_NAME - 2) {
		err = DG_ERR_CRYPTO;
		goto out;
	}
	/* Outputs are written only once nothing can fail. */
	if (name != NULL) {
		memcpy(name, computed_name, 2 + digest_len);
		*name_len = 2 + digest_len;
	}
	if (out_key != NULL) {
		*out_key = key;
		key = NULL;
	}
	err = DG_OK;
out:
	EVP_PKEY_free(key);
	return err;
}
