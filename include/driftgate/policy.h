/*
 * Baselines: the approved state a log is appraised against. A baseline is a
 * line-oriented text file meant to be reviewed in a diff:
 *
 *   # comment
 *   driftgate-baseline 1            first non-comment line, required
 *   name web-frontend               required, [A-Za-z0-9._-]{1,64}
 *   agent node-*                    fnmatch(3) pattern of agent ids; 1 or more
 *   allow sha256:<64 hex> <path>    path runs to end of line; \\ and \xHH escapes
 *   exclude <regex>                 POSIX ERE, anchored at both ends
 *   secret <name>                   a secret this baseline's agents may receive
 *   lease <seconds>                 how long a released secret lives without a
 *                                   renewing attestation (1..86400; default 60)
 *
 * Pure logic: parsing and appraisal only; reading files is the caller's job.
 */
#ifndef DRIFTGATE_POLICY_H
#define DRIFTGATE_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "driftgate/log.h"
#include "driftgate/verdict.h"

#define DG_POLICY_MAX_TEXT (256u * 1024 * 1024)
#define DG_POLICY_MAX_NAME 64
#define DG_LEASE_DEFAULT_S 60
#define DG_LEASE_MAX_S 86400

struct dg_policy;

/*
 * Parse a baseline. On error returns DG_ERR_FORMAT (or DG_ERR_TOOBIG,
 * DG_ERR_NOMEM) and writes "line N: what is wrong" into err; *out is untouched.
 */
int dg_policy_parse(const char *text, size_t len, struct dg_policy **out,
                    char *err, size_t err_cap);
void dg_policy_free(struct dg_policy *p);

const char *dg_policy_name(const struct dg_policy *p);
bool dg_policy_applies(const struct dg_policy *p, const char *agent_id);
size_t dg_policy_secret_count(const struct dg_policy *p);
const char *dg_policy_secret(const struct dg_policy *p, size_t i);
bool dg_policy_allows_secret(const struct dg_policy *p, const char *name);
/* The argument of a "lease" line (baselines and workloads) into *lease_s,
 * which must still be 0 (unset): NULL, or why the line is refused. */
const char *dg_lease_parse(const char *arg, size_t len, unsigned *lease_s);
/* The lease of this baseline's secrets, in seconds. */
unsigned dg_policy_lease_s(const struct dg_policy *p);
size_t dg_policy_allow_count(const struct dg_policy *p);

/*
 * Appraise one log entry. DG_OK if its path is excluded or its (path, sha256)
 * pair is allowed; otherwise DG_ERR_POLICY with *why filled:
 *   violation        the entry is an IMA violation (measurement unreliable)
 *   unsupported-hash the file digest is not sha256
 *   unknown-file     no allow line names this path
 *   hash-mismatch    the path is allowed with other digests
 */
int dg_policy_appraise(const struct dg_policy *p, const struct dg_log_entry *e,
                       struct dg_reason *why);

/* Write one "allow sha256:<hex> <escaped path>\n" line (generator helper). */
int dg_policy_format_allow(const char *path, const uint8_t digest[DG_SHA256_LEN],
                           char *out, size_t cap, size_t *out_len);

#endif
