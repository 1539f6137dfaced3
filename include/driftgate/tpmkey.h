/*
 * TPM public keys as carried on the wire: Tss2_MU-marshaled TPM2B_PUBLIC.
 * Pure logic (Tss2_MU + OpenSSL), no TPM needed.
 */
#ifndef DRIFTGATE_TPMKEY_H
#define DRIFTGATE_TPMKEY_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>

#define DG_TPMKEY_MAX_PUBLIC 1024 /* bound on a marshaled TPM2B_PUBLIC */
#define DG_TPMKEY_MAX_NAME 66     /* nameAlg (2) + digest (up to 64) */

enum dg_tpmkey_role {
	DG_TPMKEY_EK, /* storage key: restricted, decrypt, fixedTPM, fixedParent */
	DG_TPMKEY_AK, /* restricted, sign, fixedTPM, fixedParent, sensitiveDataOrigin,
	               * userWithAuth, not decrypt */
	DG_TPMKEY_BIND, /* the agent's secret-binding key: ECC P-256, ECDH-SHA256,
	                 * decrypt, fixedTPM, fixedParent, sensitiveDataOrigin,
	                 * userWithAuth, not restricted, not sign */
};

/*
 * Check that pub (TPM2B_PUBLIC bytes, nothing trailing) is an RSA-2048 or
 * ECC P-256 key (BIND: ECC only) with exactly the attributes the role requires
 * (DG_ERR_ATTRIBUTES otherwise), whose nameAlg and (AK) signing scheme are in
 * alg.h's allowlist (DG_ERR_UNSUPPORTED otherwise), and optionally convert it.
 * out_key (may be NULL) receives a new EVP_PKEY the caller frees.
 * name/name_len (may be NULL) receive the TPM name: nameAlg || H(TPMT_PUBLIC).
 */
int dg_tpmkey_import(const uint8_t *pub, size_t pub_len, enum dg_tpmkey_role role,
                     EVP_PKEY **out_key, uint8_t name[DG_TPMKEY_MAX_NAME],
                     size_t *name_len);

#endif
