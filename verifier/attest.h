/*
 * The verifier's protocol logic: enrollment (EK/AK check, credential
 * activation), single-use nonces, and the attestation pipeline
 *   quote signature and nonce -> incremental replay of the new entries ->
 *   appraisal against the agent's baseline -> PCR digest -> verdict
 *   -> audit record -> secrets sealed to the round's bound key.
 * No sockets here: the server feeds it decoded messages.
 */
#ifndef DRIFTGATE_VERIFIER_ATTEST_H
#define DRIFTGATE_VERIFIER_ATTEST_H

#include <limits.h>
#include <stdint.h>

#include "driftgate/wire.h"

#define DG_VERIFIER_DEFAULT_LISTEN "tcp://127.0.0.1:7300"
#define DG_VERIFIER_DEFAULT_POLICIES "/etc/driftgate/policies"
#define DG_VERIFIER_DEFAULT_SECRETS "/etc/driftgate/secrets"
#define DG_VERIFIER_DEFAULT_AUDIT "/var/log/driftgate/audit.jsonl"
#define DG_VERIFIER_DEFAULT_STATE "/var/lib/driftgate/verifier.db"
#define DG_VERIFIER_MAX_EK_EXEMPT 64 /* --allow-no-ek-cert ids */

struct dg_verifier_config {
	char listen_url[256];
	char tls_cert_key[PATH_MAX]; /* for tls+tcp:// listen urls */
	char policies_dir[PATH_MAX];
	char secrets_dir[PATH_MAX];
	char audit_path[PATH_MAX];
	/* SQLite database of the per-agent state (store.h); ":memory:" keeps it
	 * for the process's life only; a postgresql:// URI shares it with other
	 * verifiers. */
	char state_path[PATH_MAX];
	unsigned nonce_ttl_ms;
	/* An agent without a trusted quote for this long is alerted on and its
	 * leases revoked (--heartbeat-timeout); 0: never. */
	unsigned heartbeat_timeout_ms;
	/* PEM bundle of the TPM manufacturers' CAs (--ek-ca); empty: no EK
	 * certificate is required and an EK is trusted on first use. */
	char ek_ca_path[PATH_MAX];
	/* Agent ids that may enroll without a valid EK certificate (--allow-no-ek-cert). */
	size_t n_ek_exempt;
	char ek_exempt[DG_VERIFIER_MAX_EK_EXEMPT][DG_WIRE_MAX_AGENT_ID + 1];
};

struct dg_verifier;

void dg_verifier_config_defaults(struct dg_verifier_config *cfg);
/* Load the baselines and open the audit trail. err receives a readable reason. */
int dg_verifier_new(const struct dg_verifier_config *cfg, struct dg_verifier **out, char *err,
                    size_t err_cap);
void dg_verifier_free(struct dg_verifier *v);
/* The agents' in-memory state, for views such as the metrics' agents gauge;
 * only the thread that calls dg_verifier_handle may use it, and only to read. */
struct dg_registry;
struct dg_registry *dg_verifier_agents(struct dg_verifier *v);

/* Handle one request; reply is always filled (a result or DG_MSG_ERROR). */
void dg_verifier_handle(struct dg_verifier *v, const struct dg_msg *req, struct dg_msg *reply);

/* Load the policies directory again and put it in force, keeping every
 * agent's enrollment, replay position, drift and leases (renewals are then
 * judged by the new policies). On any error the policies in force stay and
 * err says why. Both outcomes are audited, with the versions. */
int dg_verifier_reload(struct dg_verifier *v, char *err, size_t err_cap);

/*
 * Group commit around several dg_verifier_handle calls: their state writes
 * share one transaction and their audit records one sync. No reply of the
 * batch may be sent before dg_verifier_batch_commit returns DG_OK; if it
 * fails, memory is ahead of disk: send nothing and stop (a restart reloads).
 */
int dg_verifier_batch_begin(struct dg_verifier *v);
int dg_verifier_batch_commit(struct dg_verifier *v);

/* Housekeeping, called about once a second: expire leases that were not
 * renewed, alert on agents that stopped attesting. */
void dg_verifier_tick(struct dg_verifier *v);

#endif
