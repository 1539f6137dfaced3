/* driftgate error codes: every fallible function returns one of these. */
#ifndef DRIFTGATE_ERR_H
#define DRIFTGATE_ERR_H

enum dg_err {
	DG_OK = 0,
	DG_ERR_NOMEM,       /* allocation failed */
	DG_ERR_INVAL,       /* invalid argument from the caller */
	DG_ERR_TRUNCATED,   /* input ends before a field it announces */
	DG_ERR_TOOBIG,      /* a length exceeds its bound */
	DG_ERR_FORMAT,      /* input is malformed */
	DG_ERR_TRAILING,    /* bytes left after a complete structure */
	DG_ERR_UNSUPPORTED, /* well formed but not supported (algorithm, template) */
	DG_ERR_CRYPTO,      /* a cryptographic library call failed */
	DG_ERR_SIGNATURE,   /* signature does not verify */
	DG_ERR_NONCE,       /* nonce unknown, expired, reused or mismatched */
	DG_ERR_PCR_SELECT,  /* quoted PCR selection is not the requested one */
	DG_ERR_PCR_DIGEST,  /* quoted PCR digest differs from the replayed log */
	DG_ERR_CLOCK,       /* clockInfo went backwards */
	DG_ERR_ATTRIBUTES,  /* key attributes are not the required ones */
	DG_ERR_POLICY,      /* appraisal failed against the baseline */
	DG_ERR_NOTFOUND,    /* no such agent, baseline, secret or entry */
	DG_ERR_EXISTS,      /* already present with a different identity */
	DG_ERR_STATE,       /* operation not valid in the current state */
	DG_ERR_IO,          /* file or socket I/O failed (see errno) */
	DG_ERR_TPM,         /* the TPM or tpm2-tss returned an error */
	DG_ERR_NET,         /* transport (nng) failure */
	DG_ERR_PERM,        /* unsafe file permissions or ownership */
	DG_ERR_DENIED,      /* request refused (e.g. secret withheld) */
	DG_ERR_TIMEOUT,     /* no answer in time */
	DG_ERR_KEY,         /* a key is not the one certified or expected */
	DG_ERR__COUNT
};

/* A short, static, human-readable description of an error code. */
const char *dg_strerror(int err);

#endif
