/*
 * TPM2 quote verification. In the verifier's hot path: the parsed structures
 * live on the stack and the only allocations are OpenSSL's digest contexts.
 */
#include "driftgate/quote.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_tpm2_types.h>

#include "driftgate/alg.h"
#include "driftgate/err.h"

#define SHA256_LEN 32
#define P256_COORD_LEN 32
/* SEQUENCE { INTEGER r, INTEGER s }, each with a possible 0x00 sign octet. */
#define ECDSA_DER_MAX (2 + 2 * (2 + 1 + P256_COORD_LEN))

static int
mu_error(TSS2_RC rc)
{
	return rc == TSS2_MU_RC_INSUFFICIENT_BUFFER ? DG_ERR_TRUNCATED : DG_ERR_FORMAT;
}

/* Append a DER INTEGER holding the unsigned big-endian value v. */
static size_t
der_put_uint(uint8_t *out, const uint8_t *v, size_t len)
{
	size_t pos = 0;

	while (len > 1 && v[0] == 0) {
		v++;
		len--;
	}
	out[pos++] = 0x02;
	if (len == 0) {
		out[pos++] = 1;
		out[pos++] = 0;
		return pos;
	}
	out[pos++] = (uint8_t)(len + (v[0] & 0x80 ? 1 : 0));
	if (v[0] & 0x80)
		out[pos++] = 0;
	memcpy(out + pos, v, len);
	return pos + len;
}

/* TPM ECDSA signatures carry raw r and s; OpenSSL verifies DER. */
static int
ecdsa_to_der(const TPMS_SIGNATURE_ECC *ecc, uint8_t der[ECDSA_DER_MAX], size_t *der_len)
{
	size_t body;

	if (ecc->signatureR.size > P256_COORD_LEN || ecc->signatureS.size > P256_COORD_LEN)
		return DG_ERR_SIGNATURE;
	body = der_put_uint(der + 2, ecc->signatureR.buffer, ecc->signatureR.size);
	body += der_put_uint(der + 2 + body, ecc->signatureS.buffer, ecc->signatureS.size);
	der[0] = 0x30;
	der[1] = (uint8_t)body; /* at most 70: the short length form suffices */
	*der_len = 2 + body;
	return DG_OK;
}

/*
 * Check the signature over the attest bytes. A scheme or hash outside the
 * allowlist (alg.h) is DG_ERR_UNSUPPORTED, before any cryptography; a scheme
 * that does not fit the key type is a signature failure. *hash_out gets the
 * signature's hash, which is also the one the TPM used for a quote's pcrDigest.
 */
static int
check_signature(EVP_PKEY *ak, const uint8_t *attest, size_t attest_len,
                const TPMT_SIGNATURE *sig, TPM2_ALG_ID *hash_out)
{
	uint8_t der[ECDSA_DER_MAX];
	const uint8_t *sig_bytes;
	size_t sig_len = 0;
	EVP_MD_CTX *ctx = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	TPM2_ALG_ID hash = TPM2_ALG_NULL, scheme_key = TPM2_ALG_NULL;
	TPM2_ALG_ID ak_type = EVP_PKEY_get_base_id(ak) == EVP_PKEY_RSA  ? TPM2_ALG_RSA
	                      : EVP_PKEY_get_base_id(ak) == EVP_PKEY_EC ? TPM2_ALG_ECC
	                                                                : TPM2_ALG_NULL;
	int err;

	/* Only the union member of a known scheme was filled by the unmarshaler;
	 * rsassa and rsapss share one layout. */
	if (sig->sigAlg == TPM2_ALG_RSASSA || sig->sigAlg == TPM2_ALG_RSAPSS)
		hash = sig->signature.rsassa.hash;
	else if (sig->sigAlg == TPM2_ALG_ECDSA)
		hash = sig->signature.ecdsa.hash;
	if ((err = dg_alg_sig_check(sig->sigAlg, hash, &scheme_key)) != DG_OK)
		goto out;
	err = DG_ERR_SIGNATURE;
	if (scheme_key != ak_type)
		goto out;
	if (scheme_key == TPM2_ALG_ECC) {
		if ((err = ecdsa_to_der(&sig->signature.ecdsa, der, &sig_len)) != DG_OK)
			goto out;
		sig_bytes = der;
	} else {
		sig_bytes = sig->signature.rsassa.sig.buffer;
		sig_len = sig->signature.rsassa.sig.size;
	}
	if ((ctx = EVP_MD_CTX_new()) == NULL) {
		err = DG_ERR_NOMEM;
		goto out;
	}
	if (EVP_DigestVerifyInit(ctx, &pctx, dg_alg_md(hash), NULL, ak) <= 0) {
		err = DG_ERR_CRYPTO;
		goto out;
	}
	if (sig->sigAlg == TPM2_ALG_RSAPSS &&
	    (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
	     /* TPMs use either the digest length or the maximum: accept both. */
	     EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO) <= 0)) {
		err = DG_ERR_CRYPTO;
		goto out;
	}
	err = EVP_DigestVerify(ctx, sig_bytes, sig_len, attest, attest_len) == 1 ? DG_OK
	                                                                         : DG_ERR_SIGNATURE;
	*hash_out = hash;
out:
	EVP_MD_CTX_free(ctx);
	return err;
}

/*
 * Exactly one bank, SHA-256 (the replay's), with only bit `pcr` set. A bank
 * outside the allowlist (SHA-1) is DG_ERR_UNSUPPORTED, not a selection error.
 */
static int
check_selection(const TPML_PCR_SELECTION *list, uint32_t pcr)
{
	const TPMS_PCR_SELECTION *sel = &list->pcrSelections[0];

	if (list->count != 1)
		return DG_ERR_PCR_SELECT;
	if (dg_alg_hash_check(sel->hash, DG_ALG_PCR_BANK) != DG_OK)
		return DG_ERR_UNSUPPORTED;
	if (sel->hash != TPM2_ALG_SHA256 || sel->sizeofSelect > sizeof sel->pcrSelect ||
	    pcr / 8 >= sel->sizeofSelect)
		return DG_ERR_PCR_SELECT;
	for (uint32_t i = 0; i < sel->sizeofSelect; i++) {
		uint8_t want = (uint8_t)(i == pcr / 8 ? 1u << (pcr % 8) : 0);
		if (sel->pcrSelect[i] != want)
			return DG_ERR_PCR_SELECT;
	}
	return DG_OK;
}

/*
 * The checks every TPMS_ATTEST gets, in order: unmarshal (nothing trailing),
 * magic, type, signature by the AK (scheme and hash allowlisted), extraData
 * (constant time). *sig_hash gets the signature's hash.
 */
static int
check_attest(EVP_PKEY *ak, const uint8_t *attest, size_t attest_len, const uint8_t *sig,
             size_t sig_len, const uint8_t *qualifying, size_t qualifying_len,
             TPMI_ST_ATTEST type, TPMS_ATTEST *parsed, TPM2_ALG_ID *sig_hash)
{
	TPMT_SIGNATURE signature;
	size_t offset = 0;
	TSS2_RC rc;
	int err;

	if (ak == NULL || attest == NULL || sig == NULL ||
	    (qualifying == NULL && qualifying_len != 0))
		return DG_ERR_INVAL;
	if (attest_len > DG_QUOTE_MAX_ATTEST || sig_len > DG_QUOTE_MAX_SIG)
		return DG_ERR_TOOBIG;
	if ((rc = Tss2_MU_TPMS_ATTEST_Unmarshal(attest, attest_len, &offset, parsed)) !=
	    TSS2_RC_SUCCESS)
		return mu_error(rc);
	if (offset != attest_len)
		return DG_ERR_TRAILING;
	if (parsed->magic != TPM2_GENERATED_VALUE || parsed->type != type)
		return DG_ERR_FORMAT;
	offset = 0;
	if ((rc = Tss2_MU_TPMT_SIGNATURE_Unmarshal(sig, sig_len, &offset, &signature)) !=
	    TSS2_RC_SUCCESS)
		return mu_error(rc);
	if (offset != sig_len)
		return DG_ERR_TRAILING;
	if ((err = check_signature(ak, attest, attest_len, &signature, sig_hash)) != DG_OK)
		return err;
	if (parsed->extraData.size != qualifying_len ||
	    CRYPTO_memcmp(parsed->extraData.buffer, qualifying, qualifying_len) != 0)
		return DG_ERR_NONCE;
	return DG_OK;
}

/*
 * A quote, up to and including the PCR selection; fills *parsed, *sig_hash
 * and, once signature and extraData hold, *clock_out.
 */
static int
check_signed(EVP_PKEY *ak, const uint8_t *attest, size_t attest_len, const uint8_t *sig,
             size_t sig_len, const uint8_t *qualifying, size_t qualifying_len, uint32_t pcr,
             TPMS_ATTEST *parsed, TPM2_ALG_ID *sig_hash, struct dg_quote_clock *clock_out)
{
	int err;

	if (pcr >= TPM2_MAX_PCRS)
		return DG_ERR_INVAL;
	if ((err = check_attest(ak, attest, attest_len, sig, sig_len, qualifying, qualifying_len,
	                        TPM2_ST_ATTEST_QUOTE, parsed, sig_hash)) != DG_OK)
		return err;
	if (clock_out != NULL) {
		clock_out->clock = parsed->clockInfo.clock;
		clock_out->reset_count = parsed->clockInfo.resetCount;
		clock_out->restart_count = parsed->clockInfo.restartCount;
		clock_out->safe = parsed->clockInfo.safe;
	}
	return check_selection(&parsed->attested.quote.pcrSelect, pcr);
}

int
dg_quote_check_certify(EVP_PKEY *ak, const uint8_t *attest, size_t attest_len,
                       const uint8_t *sig, size_t sig_len, const uint8_t *qualifying,
                       size_t qualifying_len, const uint8_t *name, size_t name_len)
{
	TPMS_ATTEST parsed;
	TPM2_ALG_ID sig_hash;
	const TPM2B_NAME *certified;
	int err;

	if (name == NULL || name_len == 0)
		return DG_ERR_INVAL;
	if ((err = check_attest(ak, attest, attest_len, sig, sig_len, qualifying, qualifying_len,
	                        TPM2_ST_ATTEST_CERTIFY, &parsed, &sig_hash)) != DG_OK)
		return err;
	certified = &parsed.attested.certify.name;
	if (certified->size != name_len || memcmp(certified->name, name, name_len) != 0)
		return DG_ERR_KEY;
	return DG_OK;
}

int
dg_quote_check_signed(EVP_PKEY *ak, const uint8_t *attest, size_t attest_len,
                      const uint8_t *sig, size_t sig_len, const uint8_t *qualifying,
                      size_t qualifying_len, uint32_t pcr, struct dg_quote_clock *clock_out)
{
	TPMS_ATTEST parsed;
	TPM2_ALG_ID sig_hash;

	return check_signed(ak, attest, attest_len, sig, sig_len, qualifying, qualifying_len, pcr,
	                    &parsed, &sig_hash, clock_out);
}

/* A decrease within one boot (or of the boot counter itself) is a replay or rollback. */
int
dg_quote_clock_check(const struct dg_quote_clock *now, const struct dg_quote_clock *last)
{
	if (last == NULL)
		return DG_OK;
	if (now->reset_count != last->reset_count)
		return now->reset_count < last->reset_count ? DG_ERR_CLOCK : DG_OK;
	if (now->restart_count != last->restart_count)
		return now->restart_count < last->restart_count ? DG_ERR_CLOCK : DG_OK;
	return now->clock < last->clock ? DG_ERR_CLOCK : DG_OK;
}

static int
check_clock(const TPMS_CLOCK_INFO *info, const struct dg_quote_clock *last)
{
	const struct dg_quote_clock now = {
		.clock = info->clock,
		.reset_count = info->resetCount,
		.restart_count = info->restartCount,
		.safe = info->safe,
	};
	return dg_quote_clock_check(&now, last);
}

/* After the signature: clockInfo against the last round, then the PCR digest. */
static int
check_tail(const TPMS_ATTEST *parsed, TPM2_ALG_ID sig_hash, const struct dg_quote_expect *expect)
{
	uint8_t digest[EVP_MAX_MD_SIZE];
	unsigned int digest_len = 0;
	const TPM2B_DIGEST *quoted;
	int err;

	if ((err = check_clock(&parsed->clockInfo, expect->last)) != DG_OK)
		return err;
	/* With one PCR selected, pcrDigest is the hash of that PCR's value alone,
	 * taken with the signing scheme's hash (TPM2_Quote), not the bank's. */
	if (!EVP_Digest(expect->pcr_value, SHA256_LEN, digest, &digest_len, dg_alg_md(sig_hash),
	                NULL))
		return DG_ERR_CRYPTO;
	quoted = &parsed->attested.quote.pcrDigest;
	if (quoted->size != digest_len || CRYPTO_memcmp(quoted->buffer, digest, digest_len) != 0)
		return DG_ERR_PCR_DIGEST;
	return DG_OK;
}

int
dg_quote_verify(EVP_PKEY *ak, const uint8_t *attest, size_t attest_len, const uint8_t *sig,
                size_t sig_len, const struct dg_quote_expect *expect,
                struct dg_quote_clock *clock_out)
{
	TPMS_ATTEST parsed;
	TPM2_ALG_ID sig_hash = TPM2_ALG_NULL;
	int err;

	if (expect == NULL || expect->pcr_value == NULL)
		return DG_ERR_INVAL;
	err = check_signed(ak, attest, attest_len, sig, sig_len, expect->qualifying,
	                   expect->qualifying_len, expect->pcr, &parsed, &sig_hash, clock_out);
	if (err != DG_OK)
		return err;
	return check_tail(&parsed, sig_hash, expect);
}

int
dg_quote_check_pcr(const uint8_t *attest, size_t attest_len, const uint8_t *sig, size_t sig_len,
                   const struct dg_quote_expect *expect)
{
	TPMS_ATTEST parsed;
	TPMT_SIGNATURE signature;
	TPM2_ALG_ID sig_hash;
	size_t offset = 0;

	if (attest == NULL || sig == NULL || expect == NULL || expect->pcr_value == NULL)
		return DG_ERR_INVAL;
	if (attest_len > DG_QUOTE_MAX_ATTEST || sig_len > DG_QUOTE_MAX_SIG)
		return DG_ERR_TOOBIG;
	/* The same bytes dg_quote_check_signed accepted: parsed again (cheap),
	 * not verified again (the expensive part). */
	if (Tss2_MU_TPMS_ATTEST_Unmarshal(attest, attest_len, &offset, &parsed) != TSS2_RC_SUCCESS ||
	    offset != attest_len || parsed.type != TPM2_ST_ATTEST_QUOTE)
		return DG_ERR_FORMAT;
	offset = 0;
	if (Tss2_MU_TPMT_SIGNATURE_Unmarshal(sig, sig_len, &offset, &signature) != TSS2_RC_SUCCESS ||
	    offset != sig_len)
		return DG_ERR_FORMAT;
	switch (signature.sigAlg) {
	case TPM2_ALG_RSASSA:
	case TPM2_ALG_RSAPSS:
		sig_hash = signature.signature.rsassa.hash;
		break;
	case TPM2_ALG_ECDSA:
		sig_hash = signature.signature.ecdsa.hash;
		break;
	default:
		return DG_ERR_SIGNATURE;
	}
	if (dg_alg_md(sig_hash) == NULL)
		return DG_ERR_UNSUPPORTED;
	return check_tail(&parsed, sig_hash, expect);
}
