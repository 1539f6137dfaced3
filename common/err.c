#include "driftgate/err.h"

const char *
dg_strerror(int err)
{
	static const char *const text[DG_ERR__COUNT] = {
		[DG_OK] = "success",
		[DG_ERR_NOMEM] = "out of memory",
		[DG_ERR_INVAL] = "invalid argument",
		[DG_ERR_TRUNCATED] = "input truncated",
		[DG_ERR_TOOBIG] = "length exceeds its bound",
		[DG_ERR_FORMAT] = "malformed input",
		[DG_ERR_TRAILING] = "trailing bytes after structure",
		[DG_ERR_UNSUPPORTED] = "unsupported algorithm or format",
		[DG_ERR_CRYPTO] = "cryptographic operation failed",
		[DG_ERR_SIGNATURE] = "signature verification failed",
		[DG_ERR_NONCE] = "nonce unknown, expired, reused or mismatched",
		[DG_ERR_PCR_SELECT] = "PCR selection differs from the requested one",
		[DG_ERR_PCR_DIGEST] = "quoted PCR digest differs from the replayed log",
		[DG_ERR_CLOCK] = "TPM clock or reset counters went backwards",
		[DG_ERR_ATTRIBUTES] = "key attributes are not the required ones",
		[DG_ERR_POLICY] = "appraisal against the baseline failed",
		[DG_ERR_NOTFOUND] = "not found",
		[DG_ERR_EXISTS] = "already exists with a different identity",
		[DG_ERR_STATE] = "operation not valid in the current state",
		[DG_ERR_IO] = "I/O error",
		[DG_ERR_TPM] = "TPM error",
		[DG_ERR_NET] = "transport error",
		[DG_ERR_PERM] = "unsafe file permissions",
		[DG_ERR_DENIED] = "request denied",
		[DG_ERR_TIMEOUT] = "timed out",
		[DG_ERR_KEY] = "key is not the one certified or expected",
	};
	if (err < 0 || err >= DG_ERR__COUNT || text[err] == 0)
		return "unknown error";
	return text[err];
}
