/*
 * TPM2 quote verification, in the order the careful verifiers use:
 * unmarshal TPMS_ATTEST (no trailing bytes), magic, type, signature over the
 * attest bytes with the AK, extraData (constant time), PCR selection, PCR digest
 * against the verifier's own replay, clockInfo against the last round.
 * Pure logic (Tss2_MU + OpenSSL).
 */
#ifndef DRIFTGATE_QUOTE_H
#define DRIFTGATE_QUOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>

#define DG_QUOTE_MAX_ATTEST 1024   /* bound on marshaled TPMS_ATTEST */
#define DG_QUOTE_MAX_SIG 1024      /* bound on marshaled TPMT_SIGNATURE */
#define DG_QUOTE_NONCE_LEN 32

struct dg_quote_clock {
	uint64_t clock;
	uint32_t reset_count;
	uint32_t restart_count;
	uint8_t safe;
};

struct dg_quote_expect {
	const uint8_t *qualifying; /* expected extraData */
	size_t qualifying_len;
	uint32_t pcr;              /* the one PCR asked for, sha256 bank */
	const uint8_t *pcr_value;  /* 32 bytes: value from the verifier's replay */
	const struct dg_quote_clock *last; /* previous round, or NULL */
};

/*
 * Verify a quote. attest is a marshaled TPMS_ATTEST (the contents of
 * TPM2B_ATTEST), sig a marshaled TPMT_SIGNATURE. Checks run in order and the
 * first failure is returned: DG_ERR_FORMAT/TRUNCATED/TRAILING,
 * DG_ERR_UNSUPPORTED (signature scheme or hash outside alg.h's allowlist),
 * DG_ERR_SIGNATURE, DG_ERR_NONCE (extraData), DG_ERR_PCR_SELECT (or
 * DG_ERR_UNSUPPORTED for a bank outside the allowlist), DG_ERR_CLOCK (counters
 * or clock went backwards), DG_ERR_PCR_DIGEST. clock_out (may be NULL) receives the
 * quote's clockInfo once the signature and extraData check out.
 * A resetCount increase (reboot) is not an error here; callers that detect
 * one via clock_out must replay from the start of the log.
 */
int dg_quote_verify(EVP_PKEY *ak, const uint8_t *attest, size_t attest_len,
                    const uint8_t *sig, size_t sig_len,
                    const struct dg_quote_expect *expect,
                    struct dg_quote_clock *clock_out);

/*
 * Signature, extraData and selection only, and clockInfo out: what a verifier
 * needs to decide whether replay must restart (reboot) before it compares the
 * PCR digest with dg_quote_verify.
 */
int dg_quote_check_signed(EVP_PKEY *ak, const uint8_t *attest, size_t attest_len,
                          const uint8_t *sig, size_t sig_len,
                          const uint8_t *qualifying, size_t qualifying_len,
                          uint32_t pcr, struct dg_quote_clock *clock_out);

/*
 * The rest of dg_quote_verify for a quote whose very bytes (attest and sig)
 * dg_quote_check_signed accepted: clockInfo against expect->last, then the
 * PCR digest. The signature is not verified again (the verifier's hot path
 * would otherwise pay for it twice); never call it on bytes not checked so.
 */
int dg_quote_check_pcr(const uint8_t *attest, size_t attest_len, const uint8_t *sig,
                       size_t sig_len, const struct dg_quote_expect *expect);

/*
 * Verify a TPM2_Certify of a key by the AK: a TPMS_ATTEST of type
 * TPM_ST_ATTEST_CERTIFY, signed by ak, whose extraData is qualifying and whose
 * certified name is name (the key's TPM name, from dg_tpmkey_import). Checks
 * and errors as for quotes, in the same order; a different name is
 * DG_ERR_KEY. Proves the key is loaded in the TPM that holds the AK.
 */
int dg_quote_check_certify(EVP_PKEY *ak, const uint8_t *attest, size_t attest_len,
                           const uint8_t *sig, size_t sig_len, const uint8_t *qualifying,
                           size_t qualifying_len, const uint8_t *name, size_t name_len);

/*
 * DG_ERR_CLOCK if now goes backwards from last (a rolled-back or replayed TPM
 * state): a lower resetCount; the same resetCount and a lower restartCount;
 * or both the same and a lower clock. A higher resetCount (a reboot) is fine.
 * last may be NULL (first round).
 */
int dg_quote_clock_check(const struct dg_quote_clock *now, const struct dg_quote_clock *last);

#endif
