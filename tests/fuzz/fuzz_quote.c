/*
 * libFuzzer target for quote verification: input = one length byte n, then n
 * bytes of marshaled TPMS_ATTEST, then a marshaled TPMT_SIGNATURE. Checked
 * against fixed RSA and ECC AKs (from a swtpm); only an attest those AKs
 * really signed may ever verify.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "driftgate/err.h"
#include "driftgate/quote.h"
#include "driftgate/tpmkey.h"
#include "quote_fixture.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PCR 16

static EVP_PKEY *
load_ak(const uint8_t *pub, size_t len)
{
	EVP_PKEY *key = NULL;

	if (dg_tpmkey_import(pub, len, DG_TPMKEY_AK, &key, NULL, NULL) != DG_OK)
		abort();
	return key;
}

static void
check(EVP_PKEY *ak, const uint8_t *attest, size_t attest_len, const uint8_t *sig,
      size_t sig_len, const uint8_t *genuine, size_t genuine_len)
{
	static const struct dg_quote_clock last = {0, 0, 0, 0};
	const struct dg_quote_expect expect = {
		.qualifying = (const uint8_t *)fx_qualifying,
		.qualifying_len = DG_QUOTE_NONCE_LEN,
		.pcr = PCR,
		.pcr_value = fx_pcr16_bin,
		.last = &last,
	};
	const int is_genuine = attest_len == genuine_len && memcmp(attest, genuine, genuine_len) == 0;
	struct dg_quote_clock clock;
	int rc;

	rc = dg_quote_check_signed(ak, attest, attest_len, sig, sig_len, expect.qualifying,
	                           expect.qualifying_len, PCR, &clock);
	if ((rc == DG_OK && !is_genuine) || rc < DG_OK || rc >= DG_ERR__COUNT)
		abort();
	/* The verifier's split must decide as the whole check does. */
	int signed_ok = rc == DG_OK;
	int tail = signed_ok ? dg_quote_check_pcr(attest, attest_len, sig, sig_len, &expect) : -1;
	rc = dg_quote_verify(ak, attest, attest_len, sig, sig_len, &expect, &clock);
	if ((rc == DG_OK && !is_genuine) || rc < DG_OK || rc >= DG_ERR__COUNT)
		abort();
	if (signed_ok && tail != rc)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static EVP_PKEY *ak_rsa, *ak_ecc; /* created once, never changed */
	size_t attest_len;

	if (ak_rsa == NULL) {
		ak_rsa = load_ak(fx_ak_rsa_pub, sizeof fx_ak_rsa_pub);
		ak_ecc = load_ak(fx_ak_ecc_pub, sizeof fx_ak_ecc_pub);
	}
	if (size < 1)
		return 0;
	attest_len = data[0] < size - 1 ? data[0] : size - 1;
	check(ak_rsa, data + 1, attest_len, data + 1 + attest_len, size - 1 - attest_len,
	      fx_q_rsa_msg, sizeof fx_q_rsa_msg);
	check(ak_ecc, data + 1, attest_len, data + 1 + attest_len, size - 1 - attest_len,
	      fx_q_ecc_msg, sizeof fx_q_ecc_msg);
	return 0;
}
