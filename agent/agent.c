#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "containers.h"
#include "exec_watch.h"
#include "driftgate/bundle.h"
#include "driftgate/container.h"
#include "driftgate/err.h"
#include "driftgate/fsdigest.h"
#include "driftgate/fswalk.h"
#include "driftgate/log.h"
#include "driftgate/quote.h"
#include "driftgate/release.h"
#include "driftgate/seal.h"
#include "driftgate/tpmkey.h"
#include "driftgate/transport.h"
#include "mlog.h"
#include "tpm.h"

/* A secret released to one scope (a container id, "" for the node), held
 * until its lease ends unless a passing round renews it. */
struct lease {
	struct dg_lease_ref ref;
	uint8_t value[DG_AGENT_MAX_SECRET];
	size_t len;
	uint64_t expiry_ms; /* monotonic */
};

struct dg_agent {
	struct dg_agent_config cfg;
	/* lock guards the TPM, the log, the containers, the verdict and the
	 * leases; it is never held across a network round trip, so an exec
	 * waiting for its measurement never waits for the verifier. */
	pthread_mutex_t lock;
	/* round_lock serialises conversations with the verifier (one req socket). */
	pthread_mutex_t round_lock;
	pthread_cond_t wake; /* with lock: an attestation is wanted */
	bool attest_wanted;
	uint64_t next_heartbeat_ms; /* attester thread only */
	struct dg_tpm *tpm;
	struct dg_mlog *log;
	struct dg_agent_containers *containers;
	struct dg_exec_watch *watch;  /* NULL when exec watching is off */
	struct dg_exec_cache *exec_cache; /* watcher thread only */
	nng_socket verifier;
	bool verifier_open;
	size_t verifier_idx;        /* which address of cfg.verifier_url is dialled */
	char verifier_now[256];     /* that address */
	uint8_t ek_pub[DG_WIRE_MAX_KEY], ak_pub[DG_WIRE_MAX_KEY];
	size_t ek_pub_len, ak_pub_len;
	uint8_t ek_cert[DG_WIRE_MAX_EK_CERT]; /* DER from the TPM's NV; ek_cert_len 0: none */
	size_t ek_cert_len;
	uint8_t bind_pub[DG_WIRE_MAX_KEY]; /* the TPM key secrets are sealed to */
	size_t bind_pub_len;
	uint8_t bind_point[DG_SEAL_POINT_LEN];
	struct dg_agent_verdict verdict;
	size_t n_leases;
	struct lease leases[DG_WIRE_MAX_LEASES];
};

#define LOG_PREFIX "driftgate-agent: "

void
dg_agent_config_defaults(struct dg_agent_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	if (gethostname(cfg->agent_id, sizeof cfg->agent_id - 1) != 0)
		snprintf(cfg->agent_id, sizeof cfg->agent_id, "agent");
	snprintf(cfg->tcti, sizeof cfg->tcti, "%s", DG_AGENT_DEFAULT_TCTI);
	snprintf(cfg->verifier_url, sizeof cfg->verifier_url, "%s", DG_AGENT_DEFAULT_VERIFIER);
	snprintf(cfg->control_url, sizeof cfg->control_url, "%s", DG_AGENT_DEFAULT_CONTROL);
	snprintf(cfg->workload_socket, sizeof cfg->workload_socket, "%s", DG_AGENT_WORKLOAD_SOCKET);
	snprintf(cfg->state_dir, sizeof cfg->state_dir, "%s", DG_AGENT_DEFAULT_STATE_DIR);
	cfg->pcr = DG_AGENT_DEFAULT_PCR;
	cfg->ek_handle = DG_TPM_EK_HANDLE_DEFAULT;
	cfg->ak_handle = DG_TPM_AK_HANDLE_DEFAULT;
	cfg->bind_handle = DG_TPM_BIND_HANDLE_DEFAULT;
	cfg->interval_s = 10;
	cfg->timeout_ms = 10000;
	cfg->exec_watch = true;
}

static uint64_t
monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static bool
ref_eq(const struct dg_lease_ref *x, const struct dg_lease_ref *y)
{
	return strcmp(x->scope, y->scope) == 0 && strcmp(x->secret, y->secret) == 0;
}

/* Cleanse lease i; the last one takes its place. Called with the lock held. */
static void
lease_wipe(struct dg_agent *a, size_t i, const char *why)
{
	fprintf(stderr, LOG_PREFIX "secret %s of %s%s wiped: %s\n", a->leases[i].ref.secret,
	        a->leases[i].ref.scope[0] ? "container " : "the node",
	        a->leases[i].ref.scope, why);
	a->leases[i] = a->leases[--a->n_leases];
	OPENSSL_cleanse(&a->leases[a->n_leases], sizeof a->leases[a->n_leases]);
}

static void
wipe_leases(struct dg_agent *a, const char *why)
{
	while (a->n_leases > 0)
		lease_wipe(a, a->n_leases - 1, why);
}

/* No secret outlives its lease. Called with the lock held. */
static void
expire_leases(struct dg_agent *a)
{
	uint64_t now = monotonic_ms();
	for (size_t i = 0; i < a->n_leases;) {
		if (a->leases[i].expiry_ms <= now)
			lease_wipe(a, i, "lease ended without a renewing attestation");
		else
			i++;
	}
}

static struct lease *
lease_find(struct dg_agent *a, const struct dg_lease_ref *ref)
{
	for (size_t i = 0; i < a->n_leases; i++)
		if (ref_eq(&a->leases[i].ref, ref))
			return &a->leases[i];
	return NULL;
}

/* Bring log and PCR into agreement after a restart or crash. */
static int
agent_reconcile(struct dg_agent *a)
{
	uint8_t pcr_value[32];
	uint64_t in_pcr = 0;
	int rv = dg_tpm_pcr_read(a->tpm, a->cfg.pcr, pcr_value);
	if (rv != DG_OK)
		return rv;
	rv = dg_mlog_reconcile(a->log, pcr_value, &in_pcr);
	if (rv == DG_ERR_STATE) {
		/* PCR reset with a non-empty log: the machine rebooted. */
		fprintf(stderr, LOG_PREFIX "PCR %u is reset: new boot, starting a new log\n",
		        a->cfg.pcr);
		return dg_mlog_rotate(a->log);
	}
	if (rv != DG_OK) {
		fprintf(stderr, LOG_PREFIX "log (%llu entries) does not match PCR %u: %s\n",
		        (unsigned long long)dg_mlog_count(a->log), a->cfg.pcr, dg_strerror(rv));
		return rv;
	}
	for (uint64_t i = in_pcr; i < dg_mlog_count(a->log); i++) {
		uint8_t digest[32];
		fprintf(stderr, LOG_PREFIX "extending entry %llu, logged before a crash\n",
		        (unsigned long long)i);
		if ((rv = dg_mlog_entry_digest(a->log, i, digest)) != DG_OK ||
		    (rv = dg_tpm_extend(a->tpm, a->cfg.pcr, digest)) != DG_OK)
			return rv;
	}
	return DG_OK;
}

/* The manufacturer's EK certificate, if the TPM has one. Whether enrolling
 * without it is acceptable is the verifier's decision (--ek-ca), so a missing
 * or unreadable certificate is reported, not fatal. */
static void
agent_read_ek_cert(struct dg_agent *a)
{
	int rv = dg_tpm_ek_cert(a->tpm, a->ek_cert, sizeof a->ek_cert, &a->ek_cert_len);
	if (rv == DG_OK)
		return;
	a->ek_cert_len = 0;
	if (rv == DG_ERR_NOTFOUND)
		fprintf(stderr, LOG_PREFIX "the TPM has no EK certificate (NV index 0x%08x); "
		                "enrolling without one\n", DG_TPM_EK_CERT_NV_RSA);
	else
		fprintf(stderr, LOG_PREFIX "cannot read the EK certificate (NV index 0x%08x): %s; "
		                "enrolling without one\n", DG_TPM_EK_CERT_NV_RSA, dg_strerror(rv));
}

/* The binding key's public point, which dg_unseal needs: the same key
 * check the verifier applies, so a TPM that made something else fails here. */
static int
bind_point_of(struct dg_agent *a)
{
	EVP_PKEY *key = NULL;
	int rv = dg_tpmkey_import(a->bind_pub, a->bind_pub_len, DG_TPMKEY_BIND, &key, NULL, NULL);
	if (rv == DG_OK)
		rv = dg_seal_point_of(key, a->bind_point);
	if (rv != DG_OK)
		fprintf(stderr, LOG_PREFIX "binding key at 0x%08x unusable: %s\n", a->cfg.bind_handle,
		        dg_strerror(rv));
	EVP_PKEY_free(key);
	return rv;
}

/* How many addresses cfg.verifier_url lists; the idx-th (mod n) into out. */
static size_t
verifier_addr(const char *list, size_t idx, char *out, size_t out_cap)
{
	size_t n = 1, want;
	const char *p;
	for (p = list; *p != '\0'; p++)
		n += *p == ',';
	want = idx % n;
	for (p = list; want > 0; p++)
		want -= *p == ',';
	size_t len = strcspn(p, ",");
	snprintf(out, out_cap, "%.*s", (int)(len < out_cap ? len : out_cap - 1), p);
	return n;
}

static int
open_verifier(struct dg_agent *a)
{
	int rv;
	(void)verifier_addr(a->cfg.verifier_url, a->verifier_idx, a->verifier_now,
	                    sizeof a->verifier_now);
	if ((rv = nng_req0_open(&a->verifier)) != 0)
		return dg_transport_err(rv);
	a->verifier_open = true;
	nng_duration t = (nng_duration)a->cfg.timeout_ms;
	if ((rv = nng_socket_set_ms(a->verifier, NNG_OPT_RECVTIMEO, t)) != 0 ||
	    (rv = nng_socket_set_ms(a->verifier, NNG_OPT_SENDTIMEO, t)) != 0 ||
	    (rv = nng_socket_set_size(a->verifier, NNG_OPT_RECVMAXSZ, 1024 * 1024)) != 0) {
		fprintf(stderr, LOG_PREFIX "%s: %s\n", a->verifier_now, nng_strerror(rv));
		return dg_transport_err(rv);
	}
	return dg_transport_dial(a->verifier, a->verifier_now, a->cfg.tls_ca,
	                         a->cfg.tls_server_name[0] ? a->cfg.tls_server_name : NULL);
}

int
dg_agent_start(const struct dg_agent_config *cfg, struct dg_agent **out)
{
	char path[PATH_MAX + 32];
	int rv = DG_ERR_NOMEM;
	struct dg_agent *a = calloc(1, sizeof *a);
	if (a == NULL)
		return rv;
	a->cfg = *cfg;
	pthread_mutex_init(&a->lock, NULL);
	pthread_mutex_init(&a->round_lock, NULL);
	pthread_cond_init(&a->wake, NULL);
	if ((rv = dg_agent_containers_new(&a->containers)) != DG_OK)
		goto out;
	if (mkdir(cfg->state_dir, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, LOG_PREFIX "%s: %s\n", cfg->state_dir, strerror(errno));
		rv = DG_ERR_IO;
		goto out;
	}
	snprintf(path, sizeof path, "%s/measurements.bin", cfg->state_dir);
	a->ek_pub_len = sizeof a->ek_pub;
	a->ak_pub_len = sizeof a->ak_pub;
	if ((rv = dg_tpm_open(cfg->tcti, &a->tpm)) != DG_OK ||
	    (rv = dg_tpm_keys(a->tpm, cfg->ek_handle, cfg->ak_handle, a->ek_pub, &a->ek_pub_len,
	                      a->ak_pub, &a->ak_pub_len)) != DG_OK ||
	    (rv = dg_tpm_bind_key(a->tpm, cfg->bind_handle, a->bind_pub, &a->bind_pub_len)) !=
	            DG_OK ||
	    (rv = bind_point_of(a)) != DG_OK ||
	    (rv = dg_mlog_open(path, &a->log)) != DG_OK || (rv = agent_reconcile(a)) != DG_OK ||
	    (rv = open_verifier(a)) != DG_OK)
		goto out;
	agent_read_ek_cert(a);
	if (cfg->exec_watch) {
		if ((rv = dg_exec_watch_open(&a->watch)) == DG_OK)
			rv = dg_exec_cache_new(65536, &a->exec_cache);
		if (rv != DG_OK) {
			fprintf(stderr, LOG_PREFIX "exec watching (fanotify) unavailable: %s%s\n",
			        dg_strerror(rv), cfg->enforce ? "" : "; containers' execs go unmeasured");
			dg_exec_watch_close(a->watch);
			a->watch = NULL;
			if (cfg->enforce)
				goto out; /* enforcing without seeing execs would be a lie */
		} else {
			dg_exec_watch_set_enforce(a->watch, cfg->enforce);
		}
	}
	if ((rv = dg_agent_containers_load(cfg->state_dir, a->containers)) != DG_OK)
		goto out;
	for (size_t i = 0; a->watch != NULL && i < dg_agent_containers_count(a->containers); i++) {
		const struct dg_agent_container *c = dg_agent_containers_at(a->containers, i);
		if ((rv = dg_exec_watch_add(a->watch, c->rootfs_len ? c->rootfs : "/")) != DG_OK)
			goto out;
	}
out:
	if (rv != DG_OK) {
		dg_agent_stop(a);
		return rv;
	}
	*out = a;
	return DG_OK;
}

void
dg_agent_stop(struct dg_agent *a)
{
	if (a == NULL)
		return;
	wipe_leases(a, "agent stopping");
	if (a->verifier_open)
		nng_close(a->verifier);
	dg_mlog_close(a->log);
	dg_tpm_close(a->tpm);
	dg_agent_containers_free(a->containers);
	dg_exec_watch_close(a->watch);
	dg_exec_cache_free(a->exec_cache);
	pthread_cond_destroy(&a->wake);
	pthread_mutex_destroy(&a->round_lock);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

static bool
transport_failed(int rv)
{
	return rv == DG_ERR_NET || rv == DG_ERR_TIMEOUT;
}

/*
 * After a transport error or timeout, dial the next verifier address (if
 * there are several): the failed request is not resent there, since a round
 * is retried from its NONCE_REQ (dg_agent_attest) and the dead verifier may
 * already have consumed the nonce. The dial does not wait for the peer.
 */
static void
fail_over(struct dg_agent *a)
{
	char next[256];
	size_t n = verifier_addr(a->cfg.verifier_url, a->verifier_idx + 1, next, sizeof next);
	if (n < 2)
		return; /* one verifier: nng redials it by itself */
	if (a->verifier_open)
		nng_close(a->verifier);
	a->verifier_open = false;
	a->verifier_idx = (a->verifier_idx + 1) % n;
	fprintf(stderr, LOG_PREFIX "verifier %s unreachable: failing over to %s\n",
	        a->verifier_now, next);
	if (open_verifier(a) != DG_OK)
		fprintf(stderr, LOG_PREFIX "cannot dial %s\n", a->verifier_now);
}

/* Send req and receive the reply; an ERROR reply becomes its error code. */
static int
call(struct dg_agent *a, const struct dg_msg *req, struct dg_msg *reply,
     enum dg_msg_type expect)
{
	int rv = a->verifier_open ? dg_transport_send(a->verifier, req) : DG_ERR_NET;
	if (rv == DG_OK)
		rv = dg_transport_recv(a->verifier, reply);
	if (rv != DG_OK) {
		fprintf(stderr, LOG_PREFIX "%s to %s: %s\n", dg_msg_type_name(req->type),
		        a->verifier_now, dg_strerror(rv));
		if (transport_failed(rv))
			fail_over(a);
		return rv;
	}
	if (reply->type == DG_MSG_ERROR) {
		fprintf(stderr, LOG_PREFIX "verifier refused %s: %s\n", dg_msg_type_name(req->type),
		        reply->message);
		rv = reply->code > DG_OK && reply->code < DG_ERR__COUNT ? (int)reply->code
		                                                         : DG_ERR_DENIED;
		dg_msg_clear(reply);
		return rv;
	}
	if (reply->type != expect) {
		dg_msg_clear(reply);
		return DG_ERR_FORMAT;
	}
	return DG_OK;
}

int
dg_agent_enroll(struct dg_agent *a)
{
	struct dg_msg req, reply;
	uint8_t credential[DG_WIRE_MAX_BLOB];
	size_t credential_len = 0;
	int rv;

	dg_msg_init(&req);
	dg_msg_init(&reply);
	req.type = DG_MSG_ENROLL_REQ;
	snprintf(req.agent_id, sizeof req.agent_id, "%s", a->cfg.agent_id);
	req.pcr = a->cfg.pcr;
	if ((rv = dg_bytes_set(&req.ek_pub, a->ek_pub, a->ek_pub_len)) != DG_OK ||
	    (rv = dg_bytes_set(&req.ak_pub, a->ak_pub, a->ak_pub_len)) != DG_OK ||
	    (rv = dg_bytes_set(&req.ek_cert, a->ek_cert, a->ek_cert_len)) != DG_OK ||
	    (rv = call(a, &req, &reply, DG_MSG_ENROLL_CHALLENGE)) != DG_OK)
		goto out;
	if ((rv = dg_tpm_activate(a->tpm, reply.id_object.data, reply.id_object.len,
	                          reply.enc_secret.data, reply.enc_secret.len, credential,
	                          sizeof credential, &credential_len)) != DG_OK)
		goto out;
	dg_msg_clear(&req);
	dg_msg_clear(&reply);
	req.type = DG_MSG_ENROLL_ACTIVATE;
	snprintf(req.agent_id, sizeof req.agent_id, "%s", a->cfg.agent_id);
	if ((rv = dg_bytes_set(&req.credential, credential, credential_len)) != DG_OK ||
	    (rv = call(a, &req, &reply, DG_MSG_ENROLL_DONE)) != DG_OK)
		goto out;
	fprintf(stderr, LOG_PREFIX "enrolled as '%s' with %s (PCR %u)\n", a->cfg.agent_id,
	        a->verifier_now, a->cfg.pcr);
out:
	OPENSSL_cleanse(credential, sizeof credential);
	dg_msg_clear(&req);
	dg_msg_clear(&reply);
	return rv;
}

/* Append-then-extend, under the lock: the entry is durable before the PCR
 * moves, and the PCR moves before the caller lets the measured event proceed.
 * *index receives the entry's position in the log. */
static int
log_and_extend(struct dg_agent *a, const uint8_t *entry, size_t entry_len, uint64_t *index)
{
	uint8_t template_hash[32];
	int rv;
	pthread_mutex_lock(&a->lock);
	uint64_t at = dg_mlog_count(a->log);
	if ((rv = dg_mlog_append(a->log, entry, entry_len)) == DG_OK &&
	    (rv = dg_mlog_entry_digest(a->log, at, template_hash)) == DG_OK)
		rv = dg_tpm_extend(a->tpm, a->cfg.pcr, template_hash);
	pthread_mutex_unlock(&a->lock);
	if (index != NULL)
		*index = at;
	return rv;
}

/* Log one ima-ng (extra == NULL) or ima-buf entry for name. */
static int
measure_named(struct dg_agent *a, const char *name, const uint8_t digest[32],
              const uint8_t *extra, size_t extra_len, uint64_t *index)
{
	size_t cap = DG_LOG_MAX_TEMPLATE_DATA + 64, entry_len;
	uint8_t *entry = malloc(cap);
	int rv;
	if (entry == NULL)
		return DG_ERR_NOMEM;
	rv = dg_log_encode(a->cfg.pcr, extra ? DG_TEMPLATE_IMA_BUF : DG_TEMPLATE_IMA_NG, "sha256",
	                   digest, 32, name, extra, extra_len, entry, cap, &entry_len);
	if (rv == DG_OK)
		rv = log_and_extend(a, entry, entry_len, index);
	free(entry);
	return rv;
}

static int
measure_file(struct dg_agent *a, const char *path)
{
	uint8_t digest[32];
	int rv = dg_fsdigest_path(path, digest);
	if (rv != DG_OK) {
		fprintf(stderr, LOG_PREFIX "%s: %s\n", path, dg_strerror(rv));
		return rv;
	}
	return measure_named(a, path, digest, NULL, 0, NULL);
}

struct measure_walk {
	struct dg_agent *agent;
	unsigned added;
};

static int
measure_one(const char *path, void *arg)
{
	struct measure_walk *w = arg;
	int rv = measure_file(w->agent, path);
	if (rv == DG_OK)
		w->added++;
	return rv;
}

int
dg_agent_measure(struct dg_agent *a, const char *path, unsigned *added)
{
	struct measure_walk w = {.agent = a, .added = 0};
	int rv;
	if (path[0] != '/')
		return DG_ERR_INVAL;
	rv = dg_fswalk(path, measure_one, &w);
	if (rv == DG_ERR_IO)
		fprintf(stderr, LOG_PREFIX "%s: %s\n", path, strerror(errno));
	*added = w.added;
	return rv;
}

/* Open the released secret with the TPM (ECDH_ZGen on the binding key) and
 * hold it on lease. Called with the lock held. */
static int
take_secret(struct dg_agent *a, const struct dg_msg *verdict, const struct dg_lease_ref *ref,
            const uint8_t nonce[DG_QUOTE_NONCE_LEN])
{
	const struct dg_named_blob *s = &verdict->sealed[0];
	uint8_t aad[DG_RELEASE_AAD_MAX], z[DG_SEAL_COORD_LEN];
	const uint8_t *point;
	size_t aad_len;
	struct lease fresh;
	int rv;

	memset(&fresh, 0, sizeof fresh);
	if (verdict->n_sealed != 1 || strcmp(s->name, ref->secret) != 0 || verdict->lease_ms == 0)
		return DG_ERR_FORMAT;
	const struct dg_release_ctx ctx = {
		.agent_id = a->cfg.agent_id, .scope = ref->scope, .secret = ref->secret,
		.nonce = nonce, .lease_ms = verdict->lease_ms,
	};
	if ((rv = dg_release_aad(&ctx, aad, sizeof aad, &aad_len)) != DG_OK ||
	    (rv = dg_seal_ephemeral(s->blob.data, s->blob.len, &point)) != DG_OK ||
	    (rv = dg_tpm_zgen(a->tpm, point, z)) != DG_OK ||
	    (rv = dg_unseal(z, a->bind_point, aad, aad_len, s->blob.data, s->blob.len, fresh.value,
	                    sizeof fresh.value, &fresh.len)) != DG_OK)
		goto out;
	fresh.ref = *ref;
	fresh.expiry_ms = monotonic_ms() + verdict->lease_ms;
	struct lease *slot = lease_find(a, ref);
	if (slot == NULL) {
		if (a->n_leases == DG_WIRE_MAX_LEASES) {
			rv = DG_ERR_TOOBIG;
			goto out;
		}
		slot = &a->leases[a->n_leases++];
	}
	*slot = fresh;
out:
	OPENSSL_cleanse(z, sizeof z);
	OPENSSL_cleanse(&fresh, sizeof fresh);
	return rv;
}

/*
 * A passing round's renewals: what the verifier renewed lives on for
 * lease_ms; what this round reported and it did not renew was revoked.
 * Called with the lock held.
 */
static void
apply_renewals(struct dg_agent *a, const struct dg_msg *req, const struct dg_msg *verdict)
{
	uint64_t expiry = monotonic_ms() + verdict->lease_ms;
	for (size_t i = 0; i < req->n_leases; i++) {
		bool renewed = false;
		for (size_t j = 0; j < verdict->n_renewed && !renewed; j++)
			renewed = ref_eq(&verdict->renewed[j], &req->leases[i]);
		struct lease *l = lease_find(a, &req->leases[i]);
		if (l == NULL)
			continue;
		if (renewed && verdict->lease_ms > 0)
			l->expiry_ms = expiry;
		else
			lease_wipe(a, (size_t)(l - a->leases), "revoked by the verifier");
	}
}

/* Called with the lock held. */
static void
record_verdict(struct dg_agent *a, const struct dg_msg *v)
{
	a->verdict.attested = true;
	a->verdict.pass = v->pass;
	a->verdict.n_reasons = v->n_reasons;
	memcpy(a->verdict.reasons, v->reasons, v->n_reasons * sizeof v->reasons[0]);
	if (v->pass) {
		fprintf(stderr, LOG_PREFIX "attestation passed (%llu entries)\n",
		        (unsigned long long)dg_mlog_count(a->log));
		return;
	}
	fprintf(stderr, LOG_PREFIX "attestation FAILED, every secret wiped:\n");
	for (size_t i = 0; i < v->n_reasons; i++)
		fprintf(stderr, LOG_PREFIX "  %s: %s\n", v->reasons[i].code, v->reasons[i].detail);
}

/* Under the lock: quote, and snapshot the entries, manifests and leases it
 * covers, so that measurements made while the round is on the wire wait for
 * the next one. With a request, also certify the binding key for this nonce. */
static int
prepare_attest(struct dg_agent *a, struct dg_msg *req, const uint8_t nonce[32],
               uint64_t log_from, const struct dg_lease_ref *request)
{
	uint8_t attest[DG_QUOTE_MAX_ATTEST], sig[DG_QUOTE_MAX_SIG];
	size_t attest_len, sig_len, log_len;
	const uint8_t *log_bytes;
	int rv;

	pthread_mutex_lock(&a->lock);
	/* After a reboot the verifier still counts the old boot's entries. */
	uint64_t from = log_from <= dg_mlog_count(a->log) ? log_from : 0;
	req->type = DG_MSG_ATTEST;
	snprintf(req->agent_id, sizeof req->agent_id, "%s", a->cfg.agent_id);
	req->log_from = from;
	if ((rv = dg_tpm_quote(a->tpm, a->cfg.pcr, nonce, DG_QUOTE_NONCE_LEN, attest,
	                       sizeof attest, &attest_len, sig, sizeof sig, &sig_len)) != DG_OK ||
	    (rv = dg_mlog_since(a->log, from, &log_bytes, &log_len)) != DG_OK ||
	    (rv = dg_bytes_set(&req->nonce, nonce, DG_QUOTE_NONCE_LEN)) != DG_OK ||
	    (rv = dg_bytes_set(&req->attest, attest, attest_len)) != DG_OK ||
	    (rv = dg_bytes_set(&req->signature, sig, sig_len)) != DG_OK ||
	    (rv = dg_bytes_set(&req->log, log_bytes, log_len)) != DG_OK)
		goto out;
	if (request != NULL) {
		req->request[0] = *request;
		req->n_request = 1;
		if ((rv = dg_tpm_certify_bind(a->tpm, nonce, DG_QUOTE_NONCE_LEN, attest, sizeof attest,
		                              &attest_len, sig, sizeof sig, &sig_len)) != DG_OK ||
		    (rv = dg_bytes_set(&req->bind_key, a->bind_pub, a->bind_pub_len)) != DG_OK ||
		    (rv = dg_bytes_set(&req->bind_attest, attest, attest_len)) != DG_OK ||
		    (rv = dg_bytes_set(&req->bind_sig, sig, sig_len)) != DG_OK)
			goto out;
	}
	expire_leases(a);
	for (size_t i = 0; i < a->n_leases; i++)
		req->leases[req->n_leases++] = a->leases[i].ref;
	/* The verifier needs the manifest of every container these entries create. */
	for (size_t i = 0; i < dg_agent_containers_count(a->containers); i++) {
		const struct dg_agent_container *c = dg_agent_containers_at(a->containers, i);
		if (c->rootfs_entry < from || req->n_manifests == DG_WIRE_MAX_MANIFESTS)
			continue;
		struct dg_named_blob *m = &req->manifests[req->n_manifests];
		snprintf(m->name, sizeof m->name, "%s", c->id);
		if ((rv = dg_bytes_set(&m->blob, c->manifest_text, c->manifest_len)) != DG_OK)
			goto out;
		req->n_manifests++;
	}
out:
	pthread_mutex_unlock(&a->lock);
	return rv;
}

/*
 * One round; with a request, it also asks for that secret. *resync is set
 * when the verifier's replay position no longer fits this boot's log (after
 * a reboot it resets and asks again). A failed verdict wipes every lease; a
 * round that gets no verdict leaves them to run out. refused (may be NULL)
 * receives why a request got nothing.
 */
static int
attest_round(struct dg_agent *a, const struct dg_lease_ref *request, bool *resync,
             char *refused, size_t refused_cap)
{
	struct dg_msg req, reply;
	uint8_t nonce[DG_QUOTE_NONCE_LEN];
	int rv;

	dg_msg_init(&req);
	dg_msg_init(&reply);
	pthread_mutex_lock(&a->round_lock);
	req.type = DG_MSG_NONCE_REQ;
	snprintf(req.agent_id, sizeof req.agent_id, "%s", a->cfg.agent_id);
	if ((rv = call(a, &req, &reply, DG_MSG_NONCE)) != DG_OK)
		goto out;
	if (reply.nonce.len != DG_QUOTE_NONCE_LEN || reply.pcr != a->cfg.pcr) {
		rv = DG_ERR_FORMAT;
		goto out;
	}
	memcpy(nonce, reply.nonce.data, sizeof nonce);
	uint64_t log_from = reply.log_from;
	dg_msg_clear(&req);
	dg_msg_clear(&reply);

	if ((rv = prepare_attest(a, &req, nonce, log_from, request)) != DG_OK ||
	    (rv = call(a, &req, &reply, DG_MSG_VERDICT)) != DG_OK)
		goto out;
	*resync = !reply.pass && reply.n_reasons == 1 &&
	          strcmp(reply.reasons[0].code, "log-gap") == 0;
	pthread_mutex_lock(&a->lock);
	record_verdict(a, &reply);
	if (!reply.pass) {
		wipe_leases(a, "attestation failed");
	} else {
		apply_renewals(a, &req, &reply);
		if (request != NULL && reply.n_sealed > 0 &&
		    (rv = take_secret(a, &reply, request, nonce)) != DG_OK)
			fprintf(stderr, LOG_PREFIX "released secret %s cannot be opened: %s\n",
			        request->secret, dg_strerror(rv));
	}
	pthread_mutex_unlock(&a->lock);
	if (request != NULL && reply.n_sealed == 0 && refused != NULL)
		snprintf(refused, refused_cap, "%s",
		         reply.refused[0] ? reply.refused : "the attestation failed");
out:
	pthread_mutex_unlock(&a->round_lock);
	dg_msg_clear(&req);
	dg_msg_clear(&reply);
	return rv;
}

int
dg_agent_attest(struct dg_agent *a)
{
	bool resync = false;
	char addr[8];
	size_t n = verifier_addr(a->cfg.verifier_url, 0, addr, sizeof addr);
	int rv = attest_round(a, NULL, &resync, NULL, 0);
	/* Failover: the round again, from a fresh nonce, at each other address once. */
	for (size_t i = 1; i < n && transport_failed(rv); i++)
		rv = attest_round(a, NULL, &resync, NULL, 0);
	if (rv == DG_OK && resync)
		rv = attest_round(a, NULL, &resync, NULL, 0);
	return rv;
}

void
dg_agent_request_attest(struct dg_agent *a)
{
	pthread_mutex_lock(&a->lock);
	a->attest_wanted = true;
	pthread_cond_signal(&a->wake);
	pthread_mutex_unlock(&a->lock);
}

int
dg_agent_attester_run(struct dg_agent *a, volatile sig_atomic_t *stop)
{
	while (!*stop) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1; /* wake at least every second to notice *stop */
		pthread_mutex_lock(&a->lock);
		if (!a->attest_wanted)
			pthread_cond_timedwait(&a->wake, &a->lock, &until);
		bool due = a->attest_wanted;
		a->attest_wanted = false;
		expire_leases(a); /* even when no one asks and no round runs */
		pthread_mutex_unlock(&a->lock);
		uint64_t now_ms = monotonic_ms();
		if (due || now_ms >= a->next_heartbeat_ms) {
			(void)dg_agent_attest(a); /* failures are logged; a fail wipes the leases */
			a->next_heartbeat_ms = now_ms + dg_agent_interval_ms(a);
		}
	}
	return DG_OK;
}

void
dg_agent_last_verdict(struct dg_agent *a, struct dg_agent_verdict *out)
{
	pthread_mutex_lock(&a->lock);
	*out = a->verdict;
	pthread_mutex_unlock(&a->lock);
}

uint64_t
dg_agent_log_count(struct dg_agent *a)
{
	pthread_mutex_lock(&a->lock);
	uint64_t n = dg_mlog_count(a->log);
	pthread_mutex_unlock(&a->lock);
	return n;
}

uint64_t
dg_agent_interval_ms(const struct dg_agent *a)
{
	return (uint64_t)a->cfg.interval_s * 1000u;
}

/* Copy a live lease out. Called with the lock held. */
static int
lease_copy(struct dg_agent *a, const struct dg_lease_ref *ref, uint8_t *out, size_t cap,
           size_t *len)
{
	expire_leases(a);
	const struct lease *l = a->verdict.pass ? lease_find(a, ref) : NULL;
	if (l == NULL)
		return DG_ERR_NOTFOUND;
	if (l->len > cap)
		return DG_ERR_TOOBIG;
	memcpy(out, l->value, l->len);
	*len = l->len;
	return DG_OK;
}

int
dg_agent_secret(struct dg_agent *a, const char *scope, const char *name, uint8_t *out,
                size_t cap, size_t *len, char *why, size_t why_cap)
{
	struct dg_lease_ref ref;
	bool resync = false;
	int rv;

	memset(&ref, 0, sizeof ref);
	if (strlen(scope) >= sizeof ref.scope || strlen(name) >= sizeof ref.secret ||
	    name[0] == '\0') {
		snprintf(why, why_cap, "bad secret name");
		return DG_ERR_INVAL;
	}
	snprintf(ref.scope, sizeof ref.scope, "%s", scope);
	snprintf(ref.secret, sizeof ref.secret, "%s", name);
	pthread_mutex_lock(&a->lock);
	rv = lease_copy(a, &ref, out, cap, len);
	pthread_mutex_unlock(&a->lock);
	if (rv != DG_ERR_NOTFOUND)
		return rv;
	/* Not held: a release needs a fresh attestation of its own. */
	why[0] = '\0';
	rv = attest_round(a, &ref, &resync, why, why_cap);
	if (rv == DG_OK && resync)
		rv = attest_round(a, &ref, &resync, why, why_cap);
	if (rv != DG_OK) {
		snprintf(why, why_cap, "no attestation: %s", dg_strerror(rv));
		return rv;
	}
	pthread_mutex_lock(&a->lock);
	rv = lease_copy(a, &ref, out, cap, len);
	pthread_mutex_unlock(&a->lock);
	if (rv == DG_ERR_NOTFOUND) {
		if (why[0] == '\0')
			snprintf(why, why_cap, "the released secret could not be opened");
		rv = DG_ERR_DENIED;
	}
	return rv;
}

static bool
container_id_valid(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > DG_CONTAINER_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '+' || c == '-'))
			return false;
	}
	return true;
}

int
dg_agent_container_create(struct dg_agent *a, const char *id, int pid, const char *bundle)
{
	char name[DG_CONTAINER_ID_MAX + 32], err[PATH_MAX + 512] = "";
	char ns_path[64];
	struct dg_agent_container c;
	struct dg_container *spec = NULL;
	char *json = NULL, *record = NULL;
	size_t json_len = 0, record_len = 0;
	uint8_t record_digest[32], rootfs_digest[32];
	uint64_t rootfs_entry = 0;
	struct stat st;
	int rv;

	memset(&c, 0, sizeof c);
	if (!container_id_valid(id) || pid <= 0)
		return DG_ERR_INVAL;
	snprintf(c.id, sizeof c.id, "%s", id);
	snprintf(ns_path, sizeof ns_path, "/proc/%d/ns/mnt", pid);
	if ((rv = dg_bundle_read_config(bundle, &json, &json_len)) != DG_OK) {
		snprintf(err, sizeof err, "%s/config.json: %s", bundle, dg_strerror(rv));
		goto out;
	}
	if ((rv = dg_container_from_oci_json(json, json_len, &spec, err, sizeof err)) != DG_OK ||
	    (rv = dg_container_encode(spec, &record, &record_len)) != DG_OK)
		goto out;
	if ((rv = dg_bundle_rootfs(bundle, json, c.rootfs)) != DG_OK) {
		snprintf(err, sizeof err, "cannot resolve root.path of %s/config.json", bundle);
		goto out;
	}
	if (strcmp(c.rootfs, "/") == 0)
		c.rootfs[0] = '\0';
	c.rootfs_len = strlen(c.rootfs);
	if (stat(ns_path, &st) != 0) {
		snprintf(err, sizeof err, "%s: %s", ns_path, strerror(errno));
		rv = DG_ERR_IO;
		goto out;
	}
	c.mntns = (uint64_t)st.st_ino;
	if ((rv = dg_manifest_build(c.rootfs_len ? c.rootfs : "/", &c.manifest_text,
	                            &c.manifest_len)) != DG_OK ||
	    (rv = dg_manifest_parse(c.manifest_text, c.manifest_len, &c.manifest)) != DG_OK) {
		snprintf(err, sizeof err, "rootfs manifest of %s: %s", c.rootfs, dg_strerror(rv));
		goto out;
	}
	if (EVP_Digest(record, record_len, record_digest, NULL, EVP_sha256(), NULL) != 1 ||
	    EVP_Digest(c.manifest_text, c.manifest_len, rootfs_digest, NULL, EVP_sha256(),
	               NULL) != 1) {
		rv = DG_ERR_CRYPTO;
		goto out;
	}
	size_t n_files = dg_manifest_count(c.manifest);
	/* Saved, so that a restarted agent keeps watching it; then registered (the
	 * table takes the manifest), so its manifest rides with any round that
	 * covers its entries; watched before its process can exec anything. */
	c.rootfs_entry = UINT64_MAX;
	if ((rv = dg_agent_containers_save(a->cfg.state_dir, &c)) != DG_OK) {
		snprintf(err, sizeof err, "cannot save its state in %s: %s", a->cfg.state_dir,
		         dg_strerror(rv));
		goto out;
	}
	pthread_mutex_lock(&a->lock);
	rv = dg_agent_containers_add(a->containers, &c);
	if (rv == DG_OK && a->watch != NULL)
		rv = dg_exec_watch_add(a->watch, c.rootfs_len ? c.rootfs : "/");
	pthread_mutex_unlock(&a->lock);
	if (rv != DG_OK) {
		snprintf(err, sizeof err, "cannot register container: %s", dg_strerror(rv));
		goto out;
	}
	snprintf(name, sizeof name, "%s%s", DG_EVENT_CONTAINER, id);
	if ((rv = measure_named(a, name, record_digest, (const uint8_t *)record, record_len,
	                        NULL)) != DG_OK)
		goto out;
	snprintf(name, sizeof name, "%s%s", DG_EVENT_ROOTFS, id);
	if ((rv = measure_named(a, name, rootfs_digest, NULL, 0, &rootfs_entry)) != DG_OK)
		goto out;
	pthread_mutex_lock(&a->lock);
	struct dg_agent_container *registered = dg_agent_containers_by_id(a->containers, id);
	if (registered != NULL)
		registered->rootfs_entry = rootfs_entry;
	pthread_mutex_unlock(&a->lock);
	fprintf(stderr, LOG_PREFIX "container %s (%s/%s) measured: record, rootfs of %zu files\n",
	        id, dg_container_workload(spec), dg_container_name(spec),
	        n_files);
	dg_agent_request_attest(a);
out:
	if (rv != DG_OK)
		fprintf(stderr, LOG_PREFIX "container %s: %s\n", id, err[0] ? err : dg_strerror(rv));
	free(c.manifest_text);
	dg_manifest_free(c.manifest);
	dg_container_free(spec);
	free(record);
	free(json);
	return rv;
}

int
dg_agent_container_of_mntns(struct dg_agent *a, uint64_t mntns, char id[DG_CONTAINER_ID_MAX + 1])
{
	int rv = DG_ERR_NOTFOUND;
	pthread_mutex_lock(&a->lock);
	const struct dg_agent_container *c = dg_agent_containers_by_mntns(a->containers, mntns);
	if (c != NULL) {
		snprintf(id, DG_CONTAINER_ID_MAX + 1, "%s", c->id);
		rv = DG_OK;
	}
	pthread_mutex_unlock(&a->lock);
	return rv;
}

void
dg_agent_container_delete(struct dg_agent *a, const char *id)
{
	pthread_mutex_lock(&a->lock);
	dg_agent_containers_remove(a->containers, id);
	for (size_t i = 0; i < a->n_leases;) {
		if (strcmp(a->leases[i].ref.scope, id) == 0)
			lease_wipe(a, i, "container deleted");
		else
			i++;
	}
	pthread_mutex_unlock(&a->lock);
	if (container_id_valid(id))
		dg_agent_containers_forget(a->cfg.state_dir, id);
}

/* One exec, on the watcher thread: attribute, hash, log, extend, decide. */
static int
on_exec(const struct dg_exec_event *ev, void *arg)
{
	struct dg_agent *a = arg;
	struct dg_exec_ident ident;
	char id[DG_CONTAINER_ID_MAX + 1], name[DG_LOG_MAX_PATH + 1], host_path[2 * PATH_MAX];
	uint8_t digest[32];
	struct stat st;
	int verdict = DG_OK, rv = 0;
	bool approved = false;

	pthread_mutex_lock(&a->lock);
	struct dg_agent_container *c = dg_agent_containers_by_mntns(a->containers, ev->mnt_ns);
	if (c != NULL) {
		snprintf(id, sizeof id, "%s", c->id);
		rv = snprintf(host_path, sizeof host_path, "%s%s", c->rootfs, ev->path);
	}
	pthread_mutex_unlock(&a->lock);
	if (c == NULL)
		return DG_OK; /* not a container this agent measures */
	if (rv < 0 || (size_t)rv >= sizeof host_path || ev->path[0] != '/')
		return DG_ERR_TOOBIG;
	/* An unchanged file seen before at this path in this container: its
	 * measurement stands (the hot path: no hashing, no logging). */
	dg_exec_ident_from_event(ev, &ident);
	if (dg_exec_cache_lookup(a->exec_cache, &ident, digest, &verdict) == DG_OK)
		return verdict;
	/* The event names the file as the container sees it. It lies in the
	 * rootfs only if the rootfs holds that very inode at that path; anything
	 * else came from a volume or another mount. */
	bool inside = lstat(host_path, &st) == 0 && st.st_dev == ev->st.st_dev &&
	              st.st_ino == ev->st.st_ino;
	rv = snprintf(name, sizeof name, "%s%s:%s%s", DG_EVENT_EXEC, id, inside ? "" : "volume:",
	              ev->path);
	if (rv < 0 || (size_t)rv >= sizeof name)
		return DG_ERR_TOOBIG;
	if ((rv = dg_fsdigest_fd(ev->fd, digest)) != DG_OK)
		return rv;
	if (a->cfg.enforce) {
		pthread_mutex_lock(&a->lock);
		c = dg_agent_containers_by_mntns(a->containers, ev->mnt_ns);
		approved = c != NULL && inside && dg_manifest_has(c->manifest, ev->path, digest);
		pthread_mutex_unlock(&a->lock);
		verdict = approved ? DG_OK : DG_ERR_DENIED;
	}
	/* Logged whether allowed or not: an attempt is evidence too. */
	if ((rv = measure_named(a, name, digest, NULL, 0, NULL)) != DG_OK)
		return rv;
	if (verdict != DG_OK)
		fprintf(stderr, LOG_PREFIX "enforce: denied exec of %s in container %s "
		        "(not in its manifest)\n", ev->path, id);
	(void)dg_exec_cache_insert(a->exec_cache, &ident, digest, verdict);
	dg_agent_request_attest(a);
	return verdict;
}

int
dg_agent_exec_watch_run(struct dg_agent *a, volatile sig_atomic_t *stop)
{
	if (a->watch == NULL)
		return DG_OK;
	return dg_exec_watch_run(a->watch, on_exec, a, stop);
}
