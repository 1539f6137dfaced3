#include "attest.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "audit.h"
#include "ekcert.h"
#include "driftgate/credential.h"
#include "driftgate/err.h"
#include "driftgate/log.h"
#include "driftgate/policy.h"
#include "driftgate/quote.h"
#include "driftgate/release.h"
#include "driftgate/seal.h"
#include "driftgate/tpmkey.h"
#include "driftgate/workload.h"
#include "policyset.h"
#include "registry.h"
#include "secrets.h"
#include "store.h"
#include "store_impl.h"

struct dg_verifier {
	struct dg_verifier_config cfg;
	struct dg_registry *agents;
	struct dg_store *store; /* the durable copy of agents */
	struct dg_policyset *policies;
	struct dg_audit *audit;
	uint64_t started_ms; /* silence is judged from here for agents not yet seen */
};

static uint64_t now_ms(void);

void
dg_verifier_config_defaults(struct dg_verifier_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	snprintf(cfg->listen_url, sizeof cfg->listen_url, "%s", DG_VERIFIER_DEFAULT_LISTEN);
	snprintf(cfg->policies_dir, sizeof cfg->policies_dir, "%s", DG_VERIFIER_DEFAULT_POLICIES);
	snprintf(cfg->secrets_dir, sizeof cfg->secrets_dir, "%s", DG_VERIFIER_DEFAULT_SECRETS);
	snprintf(cfg->audit_path, sizeof cfg->audit_path, "%s", DG_VERIFIER_DEFAULT_AUDIT);
	snprintf(cfg->state_path, sizeof cfg->state_path, "%s", DG_VERIFIER_DEFAULT_STATE);
	cfg->nonce_ttl_ms = 30000;
	cfg->heartbeat_timeout_ms = 60000;
}

int
dg_verifier_new(const struct dg_verifier_config *cfg, struct dg_verifier **out, char *err,
                size_t err_cap)
{
	struct dg_verifier *v = calloc(1, sizeof *v);
	int rv = DG_ERR_NOMEM;
	if (v == NULL)
		return rv;
	v->cfg = *cfg;
	v->started_ms = now_ms();
	if (cfg->n_ek_exempt > 0 && cfg->ek_ca_path[0] == '\0') {
		/* An exception to a rule that is not in force would read as protection. */
		snprintf(err, err_cap, "--allow-no-ek-cert needs --ek-ca");
		rv = DG_ERR_INVAL;
		goto out;
	}
	if (cfg->ek_ca_path[0] != '\0' &&
	    (rv = dg_ekcert_check_bundle(cfg->ek_ca_path, err, err_cap)) != DG_OK)
		goto out;
	if ((rv = dg_registry_new(&v->agents)) != DG_OK)
		goto out;
	if ((rv = dg_policyset_load(cfg->policies_dir, &v->policies, err, err_cap)) != DG_OK)
		goto out;
	fprintf(stderr, "driftgate-verifier: policies version %s from %s\n",
	        dg_policyset_version(v->policies), cfg->policies_dir);
	/* Agents enrolled before a restart attest on without enrolling again. */
	if ((rv = dg_store_open(cfg->state_path, &v->store, err, err_cap)) != DG_OK ||
	    (rv = dg_store_load(v->store, v->agents, err, err_cap)) != DG_OK)
		goto out;
	if ((rv = dg_audit_open(cfg->audit_path, &v->audit)) != DG_OK) {
		snprintf(err, err_cap, "%s: cannot open the audit log", cfg->audit_path);
		goto out;
	}
out:
	if (rv != DG_OK) {
		dg_verifier_free(v);
		return rv;
	}
	*out = v;
	return DG_OK;
}

void
dg_verifier_free(struct dg_verifier *v)
{
	if (v == NULL)
		return;
	dg_registry_free(v->agents);
	dg_store_close(v->store);
	dg_policyset_free(v->policies);
	dg_audit_close(v->audit);
	free(v);
}

struct dg_registry *
dg_verifier_agents(struct dg_verifier *v)
{
	return v->agents;
}

static uint64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void reply_error(struct dg_msg *reply, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
reply_error(struct dg_msg *reply, int code, const char *fmt, ...)
{
	va_list ap;
	dg_msg_clear(reply);
	reply->type = DG_MSG_ERROR;
	reply->code = (uint32_t)code;
	va_start(ap, fmt);
	vsnprintf(reply->message, sizeof reply->message, fmt, ap);
	va_end(ap);
}

static bool
ek_cert_exempt(const struct dg_verifier_config *cfg, const char *agent_id)
{
	for (size_t i = 0; i < cfg->n_ek_exempt; i++)
		if (strcmp(cfg->ek_exempt[i], agent_id) == 0)
			return true;
	return false;
}

/*
 * With --ek-ca, an EK must come with a certificate that chains to the bundle
 * and certifies this very key, unless the operator named the agent id in
 * --allow-no-ek-cert. Exceptions and refusals are audited, saying whether the
 * certificate was missing or invalid. Runs before the registry is touched, so
 * a refusal leaves no state. Returns DG_OK or the code already in reply.
 */
static int
check_ek_cert(struct dg_verifier *v, const struct dg_msg *req, struct dg_msg *reply)
{
	char why[256], detail[384];
	int rv;

	if (v->cfg.ek_ca_path[0] == '\0')
		return DG_OK; /* trust on first use: README, threat model */
	if (req->ek_cert.len == 0) {
		rv = DG_ERR_DENIED;
		snprintf(detail, sizeof detail, "no EK certificate");
	} else {
		rv = dg_ekcert_verify(v->cfg.ek_ca_path, req->ek_cert.data, req->ek_cert.len,
		                      req->ek_pub.data, req->ek_pub.len, why, sizeof why);
		if (rv == DG_OK)
			return DG_OK;
		snprintf(detail, sizeof detail, "invalid EK certificate: %s", why);
	}
	if (ek_cert_exempt(&v->cfg, req->agent_id)) {
		snprintf(why, sizeof why, "%.200s; allowed by --allow-no-ek-cert", detail);
		dg_audit_event(v->audit, "ek-cert-exempt", req->agent_id, why);
		return DG_OK;
	}
	dg_audit_event(v->audit, "enroll-refused", req->agent_id, detail);
	if (rv == DG_ERR_IO || rv == DG_ERR_NOMEM || rv == DG_ERR_CRYPTO)
		/* the verifier's own failure (its bundle): the details, with its paths,
		 * stay in the audit trail */
		reply_error(reply, rv, "%s", "the verifier could not check the EK certificate");
	else
		reply_error(reply, rv, "%s", detail);
	return rv;
}

static void
handle_enroll(struct dg_verifier *v, const struct dg_msg *req, struct dg_msg *reply)
{
	uint8_t name[DG_TPMKEY_MAX_NAME], id_object[DG_CRED_MAX_ID_OBJECT];
	uint8_t enc_secret[DG_CRED_MAX_SECRET], credential[32];
	size_t name_len = 0, id_len = 0, secret_len = 0;
	EVP_PKEY *ak = NULL;
	struct dg_agent_rec *a;
	int rv;

	if ((rv = dg_tpmkey_import(req->ek_pub.data, req->ek_pub.len, DG_TPMKEY_EK, NULL, NULL,
	                           NULL)) != DG_OK) {
		reply_error(reply, rv, "EK rejected: %s", dg_strerror(rv));
		goto out;
	}
	if ((rv = dg_tpmkey_import(req->ak_pub.data, req->ak_pub.len, DG_TPMKEY_AK, &ak, name,
	                           &name_len)) != DG_OK) {
		reply_error(reply, rv, "AK rejected: %s", dg_strerror(rv));
		goto out;
	}
	if (req->pcr < 8 || req->pcr > 15) {
		reply_error(reply, DG_ERR_INVAL, "PCR %u is not one of 8..15", req->pcr);
		goto out;
	}
	if (check_ek_cert(v, req, reply) != DG_OK)
		goto out;
	a = dg_registry_find(v->agents, req->agent_id);
	if (a != NULL && a->activated &&
	    (a->ek_pub_len != req->ek_pub.len || a->ak_pub_len != req->ak_pub.len ||
	     memcmp(a->ek_pub, req->ek_pub.data, a->ek_pub_len) != 0 ||
	     memcmp(a->ak_pub, req->ak_pub.data, a->ak_pub_len) != 0 || a->pcr != req->pcr)) {
		/* An id never moves to another TPM or PCR without an operator. */
		dg_audit_event(v->audit, "enroll-refused", req->agent_id,
		               "agent id already enrolled with a different TPM identity");
		reply_error(reply, DG_ERR_EXISTS, "%s",
		            "agent id already enrolled with a different TPM identity");
		goto out;
	}
	if (a == NULL && (rv = dg_registry_add(v->agents, req->agent_id, &a)) != DG_OK) {
		reply_error(reply, rv, "cannot register agent: %s", dg_strerror(rv));
		goto out;
	}
	if (RAND_bytes(credential, sizeof credential) != 1 ||
	    dg_cred_make(req->ek_pub.data, req->ek_pub.len, name, name_len, credential,
	                 sizeof credential, id_object, sizeof id_object, &id_len, enc_secret,
	                 sizeof enc_secret, &secret_len) != DG_OK) {
		reply_error(reply, DG_ERR_CRYPTO, "%s", "MakeCredential failed");
		goto out;
	}
	if (!a->activated) {
		memcpy(a->ek_pub, req->ek_pub.data, req->ek_pub.len);
		a->ek_pub_len = req->ek_pub.len;
		memcpy(a->ak_pub, req->ak_pub.data, req->ak_pub.len);
		a->ak_pub_len = req->ak_pub.len;
		memcpy(a->ak_name, name, name_len);
		a->ak_name_len = name_len;
		EVP_PKEY_free(a->ak);
		a->ak = ak;
		ak = NULL;
		a->pcr = req->pcr;
	}
	memcpy(a->credential, credential, sizeof credential);
	a->challenge_live = true;
	reply->type = DG_MSG_ENROLL_CHALLENGE;
	if (dg_bytes_set(&reply->id_object, id_object, id_len) != DG_OK ||
	    dg_bytes_set(&reply->enc_secret, enc_secret, secret_len) != DG_OK)
		reply_error(reply, DG_ERR_NOMEM, "%s", "out of memory");
out:
	OPENSSL_cleanse(credential, sizeof credential);
	EVP_PKEY_free(ak);
}

static void
handle_activate(struct dg_verifier *v, const struct dg_msg *req, struct dg_msg *reply)
{
	struct dg_agent_rec *a = dg_registry_find(v->agents, req->agent_id);
	if (a == NULL || !a->challenge_live) {
		reply_error(reply, DG_ERR_STATE, "%s", "no enrollment challenge outstanding");
		return;
	}
	a->challenge_live = false; /* one answer per challenge */
	if (req->credential.len != sizeof a->credential ||
	    CRYPTO_memcmp(req->credential.data, a->credential, sizeof a->credential) != 0) {
		OPENSSL_cleanse(a->credential, sizeof a->credential);
		dg_audit_event(v->audit, "enroll-refused", a->id, "credential activation failed");
		reply_error(reply, DG_ERR_DENIED, "%s", "credential activation failed");
		return;
	}
	OPENSSL_cleanse(a->credential, sizeof a->credential);
	/* Enrolled only once the identity is durable: otherwise a restart would
	 * forget an agent that was told it is enrolled. */
	bool was_activated = a->activated;
	a->activated = true;
	if (dg_store_save(v->store, a) != DG_OK) {
		a->activated = was_activated;
		reply_error(reply, DG_ERR_IO, "%s", "verifier cannot store the enrollment");
		return;
	}
	dg_audit_event(v->audit, "enrolled", a->id, NULL);
	reply->type = DG_MSG_ENROLL_DONE;
}

static void
handle_nonce(struct dg_verifier *v, const struct dg_msg *req, struct dg_msg *reply)
{
	struct dg_agent_rec *a = dg_registry_find(v->agents, req->agent_id);
	if (a == NULL || !a->activated) {
		reply_error(reply, DG_ERR_NOTFOUND, "agent '%s' is not enrolled", req->agent_id);
		return;
	}
	if (RAND_bytes(a->nonce, sizeof a->nonce) != 1) {
		reply_error(reply, DG_ERR_CRYPTO, "%s", "no randomness");
		return;
	}
	/* One live nonce per agent: asking again retires the previous one. */
	if (dg_store_shared(v->store)) {
		if (dg_store_nonce_put(v->store, a->id, a->nonce, sizeof a->nonce,
		                       v->cfg.nonce_ttl_ms) != DG_OK) {
			reply_error(reply, DG_ERR_IO, "%s", "verifier cannot store the nonce");
			return;
		}
	} else {
		a->nonce_live = true;
		a->nonce_expiry_ms = now_ms() + v->cfg.nonce_ttl_ms;
	}
	reply->type = DG_MSG_NONCE;
	reply->log_from = a->replay.entries;
	reply->pcr = a->pcr;
	if (dg_bytes_set(&reply->nonce, a->nonce, sizeof a->nonce) != DG_OK)
		reply_error(reply, DG_ERR_NOMEM, "%s", "out of memory");
}

/* The reasons of one attestation round. */
struct round {
	size_t n;
	struct dg_reason r[DG_VERDICT_MAX_REASONS];
};

static struct dg_reason *
round_add(struct round *rd)
{
	return rd->n < DG_VERDICT_MAX_REASONS ? &rd->r[rd->n++] : NULL;
}

#define REASON(rd, code, ...)                                                                  \
	do {                                                                                   \
		struct dg_reason *r_ = round_add(rd);                                          \
		if (r_ != NULL)                                                                \
			dg_reason_set(r_, code, __VA_ARGS__);                                  \
	} while (0)

static const char *
quote_reason(int rv)
{
	switch (rv) {
	case DG_ERR_SIGNATURE: return "signature";
	case DG_ERR_NONCE: return "nonce";
	case DG_ERR_PCR_SELECT: return "pcr-selection";
	case DG_ERR_PCR_DIGEST: return "pcr-mismatch";
	case DG_ERR_CLOCK: return "clock-rollback";
	default: return "quote-malformed";
	}
}

/* The manifest the agent sent with this round for a container, if any. */
static const char *
manifest_from_request(const char *container_id, size_t *len, void *arg)
{
	const struct dg_msg *req = arg;
	for (size_t i = 0; i < req->n_manifests; i++) {
		if (strcmp(req->manifests[i].name, container_id) == 0) {
			*len = req->manifests[i].blob.len;
			return (const char *)req->manifests[i].blob.data;
		}
	}
	return NULL;
}

/* Appraise one entry: container events against the workloads, other files
 * against the agent's baseline. Reasons go to drift. */
static void
appraise_entry(struct dg_verifier *v, const struct dg_agent_rec *a, const struct dg_policy *policy,
               struct dg_containers *containers, const struct dg_msg *req,
               const struct dg_log_entry *e, struct round *drift, struct round *errors)
{
	enum dg_event_kind kind;
	char id[DG_CONTAINER_ID_MAX + 1];
	const char *exec_path;
	struct dg_reason why;
	size_t n_workloads, n = 0;

	if (dg_event_classify(e->path, &kind, id, &exec_path) != DG_OK) {
		REASON(drift, "malformed-event", "%s", e->path);
		return;
	}
	if (kind != DG_EVENT_NONE) {
		const struct dg_workload *const *w = dg_policyset_workloads(v->policies, &n_workloads);
		size_t room = DG_VERDICT_MAX_REASONS - drift->n;
		if (dg_containers_appraise(containers, w, n_workloads, a->id, e, manifest_from_request,
		                           (void *)req, drift->r + drift->n, room, &n) != DG_OK)
			REASON(errors, "log-malformed", "container event %s cannot be appraised", e->path);
		drift->n += n;
		return;
	}
	if (policy == NULL) {
		REASON(drift, "no-baseline", "%s measured, but no baseline applies to agent '%s'",
		       e->path, a->id);
		return;
	}
	if (dg_policy_appraise(policy, e, &why) != DG_OK) {
		struct dg_reason *slot = round_add(drift);
		if (slot != NULL)
			*slot = why;
	}
}

/* Replay and appraise the new entries onto work; drift reasons go to drift. */
static void
replay_new_entries(struct dg_verifier *v, const struct dg_agent_rec *a,
                   const struct dg_policy *policy, struct dg_containers *containers,
                   const struct dg_msg *req, struct dg_replay *work, struct round *errors,
                   struct round *drift)
{
	struct dg_log_reader r;
	struct dg_log_entry e;
	int rv = dg_log_reader_init(&r, req->log.data, req->log.len, DG_LOG_FORMAT_BINARY);
	if (rv != DG_OK) {
		REASON(errors, "log-malformed", "%s", dg_strerror(rv));
		return;
	}
	while ((rv = dg_log_next(&r, &e)) == DG_OK) {
		if (e.pcr != a->pcr) {
			REASON(errors, "wrong-pcr", "entry %llu extends PCR %u, agent uses PCR %u",
			       (unsigned long long)(req->log_from + r.index - 1), e.pcr, a->pcr);
			break;
		}
		if ((rv = dg_replay_extend(work, &e)) != DG_OK)
			break;
		appraise_entry(v, a, policy, containers, req, &e, drift, errors);
	}
	if (rv != DG_ERR_NOTFOUND && rv != DG_OK)
		REASON(errors, "log-malformed", "entry %llu at byte offset %zu: %s",
		       (unsigned long long)(req->log_from + r.index), r.off, dg_strerror(rv));
	dg_log_reader_fini(&r);
}

/*
 * Whether scope may hold secret on this agent now: the node's own secrets
 * ("" scope) are those of its baseline; a container's are those of the
 * workload its announced record names, if that workload applies to the
 * agent. *lease_s receives the policy's lease. why says no.
 */
static bool
entitled(struct dg_verifier *v, const struct dg_agent_rec *a, const struct dg_policy *policy,
         const struct dg_lease_ref *ref, unsigned *lease_s, char *why, size_t why_cap)
{
	if (ref->scope[0] == '\0') {
		if (policy == NULL || !dg_policy_allows_secret(policy, ref->secret)) {
			snprintf(why, why_cap, "the node's baseline does not name secret %s", ref->secret);
			return false;
		}
		*lease_s = dg_policy_lease_s(policy);
		return true;
	}
	const char *name = dg_containers_workload_of(a->containers, ref->scope);
	const struct dg_workload *w = name != NULL ? dg_policyset_workload(v->policies, name) : NULL;
	if (name == NULL) {
		snprintf(why, why_cap, "container %s was never announced in the log", ref->scope);
		return false;
	}
	if (w == NULL || !dg_workload_applies(w, a->id) || !dg_workload_has_secret(w, ref->secret)) {
		snprintf(why, why_cap, "workload %s of container %s does not name secret %s", name,
		         ref->scope, ref->secret);
		return false;
	}
	*lease_s = dg_workload_lease_s(w);
	return true;
}

static void
audit_lease(struct dg_verifier *v, const struct dg_agent_rec *a, const char *event,
            const struct dg_lease_ref *ref, const char *reason, uint32_t lease_ms,
            const uint8_t *quote_digest)
{
	const struct dg_audit_lease rec = {
		.event = event, .agent_id = a->id, .scope = ref->scope, .secret = ref->secret,
		.reason = reason, .lease_ms = lease_ms, .quote_digest = quote_digest,
	};
	(void)dg_audit_lease(v->audit, &rec);
}

/* Take back every lease of a: the agent failed, or went silent. */
static void
revoke_all(struct dg_verifier *v, struct dg_agent_rec *a, const char *event, const char *reason)
{
	while (a->leases != NULL && a->leases->n > 0) {
		audit_lease(v, a, event, &a->leases->items[0].ref, reason, 0, NULL);
		dg_leases_remove(a->leases, 0);
	}
}

/* The lease the verdict grants: the shortest of the secrets it covers. */
static void
lease_take_min(struct dg_msg *reply, unsigned lease_s)
{
	uint32_t ms = lease_s * 1000u;
	if (reply->lease_ms == 0 || ms < reply->lease_ms)
		reply->lease_ms = ms;
}

/*
 * A passing round: renew what the agent still holds and may hold; what it may
 * no longer hold is revoked (absent from renewed, so the agent wipes it), and
 * what it no longer reports is forgotten.
 */
static void
renew_leases(struct dg_verifier *v, struct dg_agent_rec *a, const struct dg_policy *policy,
             const struct dg_msg *req, struct dg_msg *reply, const uint8_t quote_digest[32])
{
	char why[DG_WIRE_MAX_MESSAGE_TEXT];
	unsigned lease_s;
	bool renewed;

	for (size_t i = 0; a->leases != NULL && i < a->leases->n;) {
		bool reported = false;
		for (size_t j = 0; j < req->n_leases && !reported; j++)
			reported = strcmp(req->leases[j].scope, a->leases->items[i].ref.scope) == 0 &&
			           strcmp(req->leases[j].secret, a->leases->items[i].ref.secret) == 0;
		if (reported)
			i++;
		else
			dg_leases_remove(a->leases, i); /* the agent let it go */
	}
	for (size_t i = 0; i < req->n_leases; i++) {
		const struct dg_lease_ref *ref = &req->leases[i];
		if (!entitled(v, a, policy, ref, &lease_s, why, sizeof why)) {
			struct dg_lease *held = dg_leases_find(a->leases, ref);
			audit_lease(v, a, "lease-revoked", ref, why, 0, quote_digest);
			if (held != NULL)
				dg_leases_remove(a->leases, (size_t)(held - a->leases->items));
			continue;
		}
		if (dg_leases_grant(&a->leases, ref, now_ms() + lease_s * 1000ull, quote_digest,
		                    &renewed) != DG_OK)
			continue; /* not renewed: the agent wipes it */
		reply->renewed[reply->n_renewed++] = *ref;
		lease_take_min(reply, lease_s);
		audit_lease(v, a, "lease-renewed", ref, NULL, lease_s * 1000u, quote_digest);
	}
}

/*
 * Check the binding key the agent asks the secret to be sealed to: a
 * DG_TPMKEY_BIND key, certified by this agent's AK in this round (the
 * certification's extraData is the round's nonce). *key receives it.
 */
static int
check_bind_key(const struct dg_agent_rec *a, const struct dg_msg *req, EVP_PKEY **key,
               char *why, size_t why_cap)
{
	uint8_t name[DG_TPMKEY_MAX_NAME];
	size_t name_len = 0;
	int rv;

	if (req->bind_key.len == 0) {
		snprintf(why, why_cap, "no binding key was presented");
		return DG_ERR_KEY;
	}
	if ((rv = dg_tpmkey_import(req->bind_key.data, req->bind_key.len, DG_TPMKEY_BIND, key, name,
	                           &name_len)) != DG_OK) {
		snprintf(why, why_cap, "binding key rejected: %s", dg_strerror(rv));
		return rv;
	}
	rv = dg_quote_check_certify(a->ak, req->bind_attest.data, req->bind_attest.len,
	                            req->bind_sig.data, req->bind_sig.len, req->nonce.data,
	                            req->nonce.len, name, name_len);
	if (rv != DG_OK) {
		snprintf(why, why_cap, "binding key not certified by the agent's AK this round: %s",
		         dg_strerror(rv));
		EVP_PKEY_free(*key);
		*key = NULL;
	}
	return rv;
}

/* The round's request: seal the secret to the certified binding key, or say why not. */
static void
release_requested(struct dg_verifier *v, struct dg_agent_rec *a, const struct dg_policy *policy,
                  const struct dg_msg *req, struct dg_msg *reply,
                  const uint8_t quote_digest[32])
{
	const struct dg_lease_ref *ref = &req->request[0];
	uint8_t secret[DG_SECRET_MAX], aad[DG_RELEASE_AAD_MAX];
	uint8_t sealed[DG_SECRET_MAX + DG_SEAL_OVERHEAD];
	size_t secret_len = 0, aad_len = 0, sealed_len = 0;
	char why[DG_WIRE_MAX_MESSAGE_TEXT];
	EVP_PKEY *key = NULL;
	struct dg_lease *held;
	unsigned lease_s = 0;
	bool renewed = false;
	int rv;

	if (!entitled(v, a, policy, ref, &lease_s, why, sizeof why) ||
	    check_bind_key(a, req, &key, why, sizeof why) != DG_OK)
		goto refuse;
	const struct dg_release_ctx ctx = {
		.agent_id = a->id, .scope = ref->scope, .secret = ref->secret,
		.nonce = req->nonce.data, .lease_ms = lease_s * 1000u,
	};
	if ((rv = dg_secret_read(v->cfg.secrets_dir, ref->secret, secret, &secret_len)) != DG_OK ||
	    (rv = dg_release_aad(&ctx, aad, sizeof aad, &aad_len)) != DG_OK ||
	    (rv = dg_seal(key, aad, aad_len, secret, secret_len, sealed, sizeof sealed,
	                  &sealed_len)) != DG_OK ||
	    (rv = dg_bytes_set(&reply->sealed[0].blob, sealed, sealed_len)) != DG_OK ||
	    (rv = dg_leases_grant(&a->leases, ref, now_ms() + lease_s * 1000ull, quote_digest,
	                          &renewed)) != DG_OK) {
		/* The operator's side (a missing or unsafe secret file): details to
		 * stderr, where the paths are; the agent hears only that it failed. */
		fprintf(stderr, "driftgate-verifier: secret '%s' for %s not released: %s\n",
		        ref->secret, a->id, dg_strerror(rv));
		snprintf(why, sizeof why, "the verifier cannot release secret %s: %s", ref->secret,
		         dg_strerror(rv));
		(void)dg_bytes_set(&reply->sealed[0].blob, NULL, 0);
		goto refuse;
	}
	const struct dg_audit_lease rec = {
		.event = "secret-released", .agent_id = a->id, .scope = ref->scope,
		.secret = ref->secret, .lease_ms = lease_s * 1000u, .quote_digest = quote_digest,
	};
	if (dg_audit_lease(v->audit, &rec) != DG_OK) {
		/* An unrecorded release must not happen. */
		(void)dg_bytes_set(&reply->sealed[0].blob, NULL, 0);
		if ((held = dg_leases_find(a->leases, ref)) != NULL && !renewed)
			dg_leases_remove(a->leases, (size_t)(held - a->leases->items));
		snprintf(reply->refused, sizeof reply->refused, "%s",
		         "the verifier cannot record the release");
		goto out;
	}
	snprintf(reply->sealed[0].name, sizeof reply->sealed[0].name, "%s", ref->secret);
	reply->n_sealed = 1;
	lease_take_min(reply, lease_s);
	goto out;
refuse:
	snprintf(reply->refused, sizeof reply->refused, "%s", why);
	audit_lease(v, a, "release-refused", ref, why, 0, quote_digest);
out:
	OPENSSL_cleanse(secret, sizeof secret);
	OPENSSL_cleanse(sealed, sizeof sealed);
	EVP_PKEY_free(key);
}

static bool
any_workload_applies(struct dg_verifier *v, const char *agent_id)
{
	size_t n;
	const struct dg_workload *const *w = dg_policyset_workloads(v->policies, &n);
	for (size_t i = 0; i < n; i++)
		if (dg_workload_applies(w[i], agent_id))
			return true;
	return false;
}

/*
 * Make a proven round a's state: stage the new record, save it, and only then
 * replace a (so a failed save leaves a as it was, matching the store). Takes
 * *containers on success.
 */
static int
commit_round(struct dg_verifier *v, struct dg_agent_rec *a, const struct dg_replay *work,
             struct dg_containers **containers, const struct dg_quote_clock *clock, bool reboot,
             const struct round *drift)
{
	struct dg_agent_rec *next = malloc(sizeof *next); /* ~20 KiB: not on the stack */
	int rv;

	if (next == NULL)
		return DG_ERR_NOMEM;
	memcpy(next, a, sizeof *next); /* shares a's AK key: never freed through next */
	if (reboot)
		next->n_drift = 0; /* earlier drift belongs to the old boot */
	dg_replay_copy(&next->replay, work);
	next->containers = *containers;
	next->clock = *clock;
	next->have_clock = true;
	for (size_t i = 0; i < drift->n && next->n_drift < DG_VERDICT_MAX_REASONS; i++)
		next->drift[next->n_drift++] = drift->r[i];
	rv = dg_store_save(v->store, next);
	/* Shared store: durable (and visible to the other verifiers) before
	 * anything is audited or answered, as with SQLite. */
	if (rv == DG_OK && dg_store_shared(v->store))
		rv = dg_store_round_end(v->store, true);
	if (rv == DG_OK) {
		dg_containers_free(a->containers);
		memcpy(a, next, sizeof *a);
		*containers = NULL;
	}
	free(next);
	return rv;
}

static void
handle_attest(struct dg_verifier *v, const struct dg_msg *req, struct dg_msg *reply)
{
	struct dg_agent_rec *a = dg_registry_find(v->agents, req->agent_id);
	struct round errors = {0}, drift = {0};
	struct dg_replay work;
	struct dg_containers *containers = NULL;
	struct dg_quote_clock clock;
	uint8_t quote_digest[32];
	bool trusted_quote = false, committed = false, reboot = false;
	uint64_t expected_from, new_entries = 0;
	struct dg_quote_expect expect;
	int rv;

	if (a == NULL || !a->activated) {
		reply_error(reply, DG_ERR_NOTFOUND, "agent '%s' is not enrolled", req->agent_id);
		return;
	}
	if (!dg_store_shared(v->store) && a->nonce_expiry_ms == 0) {
		/* This process never gave the agent a nonce: the round began before
		 * a verifier restart (nonces are not durable, store.h). Nothing is
		 * wrong with the agent, so no failed verdict: an error it retries
		 * with a fresh nonce. A replayed message gets no further either. */
		dg_audit_event(v->audit, "attest-refused", a->id,
		               "nonce issued before the verifier restarted");
		reply_error(reply, DG_ERR_NONCE, "%s",
		            "no nonce was issued to this agent since the verifier started");
		return;
	}
	dg_replay_init(&work);
	const struct dg_policy *policy = dg_policyset_for_agent(v->policies, a->id);

	/* Nonce: issued to this agent, unexpired, used once (whatever the outcome). */
	bool nonce_ok;
	if (dg_store_shared(v->store)) {
		/* Whichever verifier issued it: the database holds the live one. */
		nonce_ok = req->nonce.len == sizeof a->nonce &&
		           dg_store_nonce_take(v->store, a->id, req->nonce.data, req->nonce.len) ==
		               DG_OK;
	} else {
		nonce_ok = a->nonce_live && req->nonce.len == sizeof a->nonce &&
		           CRYPTO_memcmp(req->nonce.data, a->nonce, sizeof a->nonce) == 0 &&
		           now_ms() <= a->nonce_expiry_ms;
	}
	a->nonce_live = false;
	if (!nonce_ok) {
		REASON(&errors, "nonce", "nonce unknown, expired or already used");
		goto verdict;
	}
	/* The quote's extraData is the nonce itself: a secret's binding key is
	 * tied to the round by its own certification (check_bind_key). */
	rv = dg_quote_check_signed(a->ak, req->attest.data, req->attest.len, req->signature.data,
	                           req->signature.len, req->nonce.data, req->nonce.len, a->pcr,
	                           &clock);
	if (rv != DG_OK) {
		REASON(&errors, quote_reason(rv), "%s", dg_strerror(rv));
		goto verdict;
	}
	trusted_quote = true;
	EVP_Digest(req->attest.data, req->attest.len, quote_digest, NULL, EVP_sha256(), NULL);
	/* A TPM whose counters or clock went back was rolled back (a restored
	 * snapshot) or is replaying: nothing it says about its log counts. */
	if (dg_quote_clock_check(&clock, a->have_clock ? &a->clock : NULL) != DG_OK) {
		REASON(&errors, "clock-rollback",
		       "TPM clock went back: resetCount %u restartCount %u clock %llu after %u/%u/%llu",
		       clock.reset_count, clock.restart_count, (unsigned long long)clock.clock,
		       a->clock.reset_count, a->clock.restart_count,
		       (unsigned long long)a->clock.clock);
		goto verdict;
	}

	/* A reboot resets the PCR: replay starts over, earlier drift belongs to the old boot. */
	reboot = a->have_clock && clock.reset_count > a->clock.reset_count;
	if (!reboot)
		dg_replay_copy(&work, &a->replay);
	/* Container state moves with the replay: on a copy, kept only if proven. */
	if ((reboot ? dg_containers_new(&containers)
	            : dg_containers_clone(a->containers, &containers)) != DG_OK) {
		REASON(&errors, "verifier-error", "out of memory");
		goto verdict;
	}
	expected_from = work.entries;
	if (req->log_from != expected_from) {
		REASON(&errors, "log-gap", "agent sent entries from %llu, expected %llu",
		       (unsigned long long)req->log_from, (unsigned long long)expected_from);
		/* After a (signed) reboot the old position is void: the next nonce
		 * asks for the new boot's log from entry 0. The clock is not
		 * committed, so that round still counts as the reboot. */
		if (reboot) {
			dg_replay_fini(&a->replay);
			dg_replay_init(&a->replay);
			/* Shared store: the next round re-reads the row, maybe elsewhere. */
			if (dg_store_shared(v->store) && dg_store_save(v->store, a) != DG_OK)
				fprintf(stderr, "driftgate-verifier: %s: reboot not stored\n", a->id);
		}
		goto verdict;
	}
	replay_new_entries(v, a, policy, containers, req, &work, &errors, &drift);
	if (errors.n > 0)
		goto verdict;

	expect = (struct dg_quote_expect){
		.qualifying = req->nonce.data,
		.qualifying_len = req->nonce.len,
		.pcr = a->pcr,
		.pcr_value = work.sha256[a->pcr],
		.last = a->have_clock ? &a->clock : NULL,
	};
	/* The signature was verified above (dg_quote_check_signed, same bytes). */
	rv = dg_quote_check_pcr(req->attest.data, req->attest.len, req->signature.data,
	                        req->signature.len, &expect);
	if (rv != DG_OK) {
		if (rv == DG_ERR_PCR_DIGEST)
			REASON(&errors, "pcr-mismatch",
			       "quoted PCR %u differs from the replay of %llu log entries", a->pcr,
			       (unsigned long long)work.entries);
		else
			REASON(&errors, quote_reason(rv), "%s", dg_strerror(rv));
		goto verdict;
	}
	/* The log is proven: commit the replay position and any drift it shows,
	 * durably before anything is audited or answered. */
	if ((rv = commit_round(v, a, &work, &containers, &clock, reboot, &drift)) != DG_OK) {
		dg_replay_fini(&work);
		dg_containers_free(containers);
		/* No verdict without its state on disk: a restart would forget the
		 * position or the drift it was based on. The agent retries. */
		fprintf(stderr, "driftgate-verifier: %s: state not stored (%s): withholding the "
		        "verdict\n", a->id, dg_strerror(rv));
		dg_audit_event(v->audit, "verdict-withheld", a->id,
		               "the verifier could not store the agent's state");
		reply_error(reply, DG_ERR_IO, "%s", "verifier cannot store the agent's state");
		return;
	}
	committed = true;
	new_entries = work.entries - expected_from;

verdict:
	dg_replay_fini(&work);
	dg_containers_free(containers);
	reply->type = DG_MSG_VERDICT;
	for (size_t i = 0; i < errors.n; i++)
		reply->reasons[reply->n_reasons++] = errors.r[i];
	if (committed) {
		for (size_t i = 0; i < a->n_drift && reply->n_reasons < DG_VERDICT_MAX_REASONS; i++)
			reply->reasons[reply->n_reasons++] = a->drift[i];
		if (policy == NULL && !any_workload_applies(v, a->id) &&
		    reply->n_reasons < DG_VERDICT_MAX_REASONS)
			dg_reason_set(&reply->reasons[reply->n_reasons++], "no-baseline",
			              "no baseline or workload in %s applies to agent '%s'",
			              v->cfg.policies_dir, a->id);
	}
	reply->pass = committed && reply->n_reasons == 0;
	struct dg_audit_verdict record = {
		.agent_id = a->id,
		.baseline = policy ? dg_policy_name(policy) : NULL,
		.policy_version = dg_policyset_version(v->policies),
		.pass = reply->pass,
		.n_reasons = reply->n_reasons,
		.reasons = reply->reasons,
		.entries = a->replay.entries,
		.new_entries = new_entries,
		.clock = trusted_quote ? &clock : NULL,
		.quote_digest = trusted_quote ? quote_digest : NULL,
	};
	if (dg_audit_verdict(v->audit, &record) != DG_OK) {
		/* An unrecorded verdict must not release anything. */
		fprintf(stderr, "driftgate-verifier: audit write failed: withholding the verdict\n");
		reply_error(reply, DG_ERR_IO, "%s", "verifier cannot record the verdict");
		return;
	}
	if (trusted_quote)
		a->last_seen_ms = now_ms();
	if (reply->pass) {
		a->heartbeat_missed = false;
		renew_leases(v, a, policy, req, reply, quote_digest);
		if (req->n_request > 0)
			release_requested(v, a, policy, req, reply, quote_digest);
	} else {
		/* Only a round the agent's TPM signed speaks for the agent: a
		 * forged or replayed message must not cost it its leases. */
		if (trusted_quote)
			revoke_all(v, a, "lease-revoked",
			           reply->n_reasons > 0 ? reply->reasons[0].code : "attestation failed");
		if (req->n_request > 0) {
			snprintf(reply->refused, sizeof reply->refused, "%s",
			         "the attestation failed: no secret is released");
			audit_lease(v, a, "release-refused", &req->request[0], "attestation failed",
			            0, trusted_quote ? quote_digest : NULL);
		}
	}

}

/*
 * Take the stored state of agent a into memory: another verifier on the
 * shared store may have enrolled it or moved its replay on. What is not
 * stored (nonce, challenge, leases, last seen) stays this verifier's own.
 */
static void
adopt(struct dg_agent_rec *a, struct dg_agent_rec *fresh)
{
	bool same = a->ek_pub_len == fresh->ek_pub_len && a->ak_pub_len == fresh->ak_pub_len &&
	            memcmp(a->ek_pub, fresh->ek_pub, a->ek_pub_len) == 0 &&
	            memcmp(a->ak_pub, fresh->ak_pub, a->ak_pub_len) == 0 && a->pcr == fresh->pcr;
	if (!same) {
		/* A challenge made for another identity must not activate this one. */
		a->challenge_live = false;
		OPENSSL_cleanse(a->credential, sizeof a->credential);
	}
	memcpy(a->ek_pub, fresh->ek_pub, fresh->ek_pub_len);
	a->ek_pub_len = fresh->ek_pub_len;
	memcpy(a->ak_pub, fresh->ak_pub, fresh->ak_pub_len);
	a->ak_pub_len = fresh->ak_pub_len;
	memcpy(a->ak_name, fresh->ak_name, fresh->ak_name_len);
	a->ak_name_len = fresh->ak_name_len;
	EVP_PKEY_free(a->ak);
	a->ak = fresh->ak;
	fresh->ak = NULL;
	a->pcr = fresh->pcr;
	a->activated = true;
	dg_replay_copy(&a->replay, &fresh->replay);
	a->have_clock = fresh->have_clock;
	a->clock = fresh->clock;
	dg_containers_free(a->containers);
	a->containers = fresh->containers;
	fresh->containers = NULL;
	a->n_drift = fresh->n_drift;
	memcpy(a->drift, fresh->drift, sizeof a->drift);
}

/* Shared store: lock the agent for this round and re-read it. */
static int
shared_begin(struct dg_verifier *v, const char *id)
{
	struct dg_agent_rec *fresh = calloc(1, sizeof *fresh), *a;
	char err[256] = "";
	int rv;

	if (fresh == NULL)
		return DG_ERR_NOMEM;
	if ((rv = dg_store_round_begin(v->store, id)) != DG_OK)
		goto out;
	rv = dg_store_fetch(v->store, id, fresh, err, sizeof err);
	a = dg_registry_find(v->agents, id);
	if (rv == DG_ERR_NOTFOUND) {
		/* Not (or no longer) enrolled, whatever this verifier remembers. */
		if (a != NULL)
			a->activated = false;
		rv = DG_OK;
		goto out;
	}
	if (rv != DG_OK) {
		fprintf(stderr, "driftgate-verifier: %s: %s\n", id, err[0] ? err : dg_strerror(rv));
		goto out;
	}
	if (a == NULL && (rv = dg_registry_add(v->agents, id, &a)) != DG_OK)
		goto out;
	adopt(a, fresh);
out:
	if (rv != DG_OK)
		(void)dg_store_round_end(v->store, false);
	dg_store_rec_reset(fresh);
	free(fresh);
	return rv;
}

/*
 * One request. With a shared store, as one round of the database: the agent
 * locked and re-read first, so two verifiers never both advance it, and
 * committed at the end (a passing round's state is already committed by
 * commit_round; what is left is a consumed nonce).
 */
static void
handle_round(struct dg_verifier *v, const struct dg_msg *req, struct dg_msg *reply,
             void (*fn)(struct dg_verifier *, const struct dg_msg *, struct dg_msg *))
{
	int rv;
	if (!dg_store_shared(v->store)) {
		fn(v, req, reply);
		return;
	}
	if ((rv = shared_begin(v, req->agent_id)) != DG_OK) {
		reply_error(reply, rv == DG_ERR_STATE ? DG_ERR_STATE : DG_ERR_IO, "%s",
		            rv == DG_ERR_STATE ? "agent busy at another verifier, retry"
		                               : "verifier cannot read the agent's state");
		return;
	}
	fn(v, req, reply);
	if (dg_store_round_end(v->store, true) != DG_OK && reply->type != DG_MSG_ERROR)
		reply_error(reply, DG_ERR_IO, "%s", "verifier cannot store the agent's state");
}

void
dg_verifier_handle(struct dg_verifier *v, const struct dg_msg *req, struct dg_msg *reply)
{
	dg_msg_init(reply);
	switch (req->type) {
	case DG_MSG_ENROLL_REQ: handle_round(v, req, reply, handle_enroll); break;
	case DG_MSG_ENROLL_ACTIVATE: handle_round(v, req, reply, handle_activate); break;
	case DG_MSG_NONCE_REQ: handle_round(v, req, reply, handle_nonce); break;
	case DG_MSG_ATTEST: handle_round(v, req, reply, handle_attest); break;
	default:
		reply_error(reply, DG_ERR_INVAL, "unexpected message %s", dg_msg_type_name(req->type));
	}
}

/* Leases past their end, and agents silent past the heartbeat timeout. */
static void
tick_agent(struct dg_agent_rec *a, void *arg)
{
	struct dg_verifier *v = arg;
	uint64_t now = now_ms();

	for (size_t i = 0; a->leases != NULL && i < a->leases->n;) {
		if (a->leases->items[i].expiry_ms > now) {
			i++;
			continue;
		}
		audit_lease(v, a, "lease-expired", &a->leases->items[i].ref,
		            "not renewed by a passing attestation in time", 0, NULL);
		dg_leases_remove(a->leases, i);
	}
	uint64_t last = a->last_seen_ms > v->started_ms ? a->last_seen_ms : v->started_ms;
	/* Shared store: an agent this verifier never served is another's to watch. */
	if (dg_store_shared(v->store) && a->last_seen_ms == 0)
		return;
	if (!a->activated || a->heartbeat_missed || v->cfg.heartbeat_timeout_ms == 0 ||
	    now - last <= v->cfg.heartbeat_timeout_ms)
		return;
	/* Fail closed: only a fresh passing round brings it back. */
	a->heartbeat_missed = true;
	char detail[128];
	snprintf(detail, sizeof detail, "no attestation for %llu ms (timeout %u ms)",
	         (unsigned long long)(now - last), v->cfg.heartbeat_timeout_ms);
	fprintf(stderr, "driftgate-verifier: ALERT %s: heartbeat missed: %s\n", a->id, detail);
	dg_audit_event(v->audit, "heartbeat-missed", a->id, detail);
	revoke_all(v, a, "lease-revoked", "heartbeat-missed");
}

void
dg_verifier_tick(struct dg_verifier *v)
{
	dg_registry_foreach(v->agents, tick_agent, v);
}

int
dg_verifier_reload(struct dg_verifier *v, char *err, size_t err_cap)
{
	struct dg_policyset *fresh = NULL;
	char detail[1200];
	int rv = dg_policyset_load(v->cfg.policies_dir, &fresh, err, err_cap);

	if (rv != DG_OK) {
		/* The policies in force stay: a half-edited directory must not
		 * pass or fail anyone. */
		snprintf(detail, sizeof detail, "kept version %s: %s",
		         dg_policyset_version(v->policies), err);
		dg_audit_event(v->audit, "policy-reload-failed", "-", detail);
		return rv;
	}
	snprintf(detail, sizeof detail, "version %s -> %s", dg_policyset_version(v->policies),
	         dg_policyset_version(fresh));
	dg_policyset_free(v->policies);
	v->policies = fresh;
	dg_audit_event(v->audit, "policy-reloaded", "-", detail);
	fprintf(stderr, "driftgate-verifier: policies reloaded: %s\n", detail);
	return DG_OK;
}

int
dg_verifier_batch_begin(struct dg_verifier *v)
{
	int rv = dg_store_batch_begin(v->store);
	if (rv == DG_OK)
		dg_audit_defer_sync(v->audit, true);
	return rv;
}

int
dg_verifier_batch_commit(struct dg_verifier *v)
{
	/* State first, then its audit records: as for a single round. */
	int rv = dg_store_batch_commit(v->store);
	int audit_rv = dg_audit_sync(v->audit);
	dg_audit_defer_sync(v->audit, false);
	return rv != DG_OK ? rv : audit_rv;
}
