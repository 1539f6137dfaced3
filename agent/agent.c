#include "agent.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "driftgate/err.h"
#include "driftgate/fsdigest.h"
#include "driftgate/fswalk.h"
#include "driftgate/log.h"
#include "driftgate/quote.h"
#include "driftgate/release.h"
#include "driftgate/seal.h"
#include "driftgate/transport.h"
#include "mlog.h"
#include "tpm.h"

struct held_secret {
	char name[DG_WIRE_MAX_SECRET_NAME + 1];
	uint8_t value[DG_AGENT_MAX_SECRET];
	size_t len;
};

struct dg_agent {
	struct dg_agent_config cfg;
	struct dg_tpm *tpm;
	struct dg_mlog *log;
	nng_socket verifier;
	bool verifier_open;
	uint8_t ek_pub[DG_WIRE_MAX_KEY], ak_pub[DG_WIRE_MAX_KEY];
	size_t ek_pub_len, ak_pub_len;
	struct dg_agent_verdict verdict;
	size_t n_secrets;
	struct held_secret secrets[DG_WIRE_MAX_SECRETS];
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
	snprintf(cfg->state_dir, sizeof cfg->state_dir, "%s", DG_AGENT_DEFAULT_STATE_DIR);
	cfg->pcr = DG_AGENT_DEFAULT_PCR;
	cfg->ek_handle = DG_TPM_EK_HANDLE_DEFAULT;
	cfg->ak_handle = DG_TPM_AK_HANDLE_DEFAULT;
	cfg->interval_s = 10;
	cfg->timeout_ms = 10000;
}

static void
wipe_secrets(struct dg_agent *a)
{
	OPENSSL_cleanse(a->secrets, sizeof a->secrets);
	a->n_secrets = 0;
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

static int
open_verifier(struct dg_agent *a)
{
	int rv;
	if ((rv = nng_req0_open(&a->verifier)) != 0)
		return dg_transport_err(rv);
	a->verifier_open = true;
	nng_duration t = (nng_duration)a->cfg.timeout_ms;
	if ((rv = nng_socket_set_ms(a->verifier, NNG_OPT_RECVTIMEO, t)) != 0 ||
	    (rv = nng_socket_set_ms(a->verifier, NNG_OPT_SENDTIMEO, t)) != 0 ||
	    (rv = nng_socket_set_size(a->verifier, NNG_OPT_RECVMAXSZ, 1024 * 1024)) != 0 ||
	    (rv = nng_dial(a->verifier, a->cfg.verifier_url, NULL, NNG_FLAG_NONBLOCK)) != 0) {
		fprintf(stderr, LOG_PREFIX "%s: %s\n", a->cfg.verifier_url, nng_strerror(rv));
		return dg_transport_err(rv);
	}
	return DG_OK;
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
	    (rv = dg_mlog_open(path, &a->log)) != DG_OK || (rv = agent_reconcile(a)) != DG_OK ||
	    (rv = open_verifier(a)) != DG_OK)
		goto out;
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
	wipe_secrets(a);
	if (a->verifier_open)
		nng_close(a->verifier);
	dg_mlog_close(a->log);
	dg_tpm_close(a->tpm);
	free(a);
}

/* Send req and receive the reply; an ERROR reply becomes its error code. */
static int
call(struct dg_agent *a, const struct dg_msg *req, struct dg_msg *reply,
     enum dg_msg_type expect)
{
	int rv = dg_transport_send(a->verifier, req);
	if (rv == DG_OK)
		rv = dg_transport_recv(a->verifier, reply);
	if (rv != DG_OK) {
		fprintf(stderr, LOG_PREFIX "%s to %s: %s\n", dg_msg_type_name(req->type),
		        a->cfg.verifier_url, dg_strerror(rv));
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
	        a->cfg.verifier_url, a->cfg.pcr);
out:
	OPENSSL_cleanse(credential, sizeof credential);
	dg_msg_clear(&req);
	dg_msg_clear(&reply);
	return rv;
}

/* Append-then-extend: the entry is durable before the PCR moves, and the PCR
 * moves before the caller lets the measured event proceed. */
static int
measure_file(struct dg_agent *a, const char *path)
{
	uint8_t digest[32], entry[DG_LOG_MAX_PATH + 256], template_hash[32];
	size_t entry_len;
	struct dg_log_reader r;
	struct dg_log_entry e;
	int rv = dg_fsdigest_path(path, digest);
	if (rv != DG_OK) {
		fprintf(stderr, LOG_PREFIX "%s: %s\n", path, dg_strerror(rv));
		return rv;
	}
	if ((rv = dg_log_encode(a->cfg.pcr, DG_TEMPLATE_IMA_NG, "sha256", digest, sizeof digest,
	                        path, NULL, 0, entry, sizeof entry, &entry_len)) != DG_OK)
		return rv;
	if ((rv = dg_log_reader_init(&r, entry, entry_len, DG_LOG_FORMAT_BINARY)) != DG_OK)
		return rv;
	if ((rv = dg_log_next(&r, &e)) == DG_OK &&
	    EVP_Digest(e.template_data, e.template_data_len, template_hash, NULL, EVP_sha256(),
	               NULL) != 1)
		rv = DG_ERR_CRYPTO;
	dg_log_reader_fini(&r);
	if (rv != DG_OK)
		return rv;
	if ((rv = dg_mlog_append(a->log, entry, entry_len)) != DG_OK)
		return rv;
	return dg_tpm_extend(a->tpm, a->cfg.pcr, template_hash);
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

/* Unseal every released secret with the round's private key. All or nothing. */
static int
take_secrets(struct dg_agent *a, const struct dg_msg *verdict, const uint8_t *nonce,
             const uint8_t priv[DG_SEAL_KEY_LEN])
{
	uint8_t aad[DG_RELEASE_AAD_MAX];
	size_t aad_len;
	int rv = DG_OK;
	wipe_secrets(a);
	for (size_t i = 0; i < verdict->n_sealed && rv == DG_OK; i++) {
		const struct dg_named_blob *s = &verdict->sealed[i];
		struct held_secret *h = &a->secrets[i];
		if ((rv = dg_release_aad(a->cfg.agent_id, s->name, nonce, aad, sizeof aad,
		                         &aad_len)) != DG_OK)
			break;
		rv = dg_unseal(priv, aad, aad_len, s->blob.data, s->blob.len, h->value,
		               sizeof h->value, &h->len);
		if (rv == DG_OK) {
			snprintf(h->name, sizeof h->name, "%s", s->name);
			a->n_secrets = i + 1;
		}
	}
	if (rv != DG_OK)
		wipe_secrets(a);
	return rv;
}

static void
record_verdict(struct dg_agent *a, const struct dg_msg *v)
{
	a->verdict.attested = true;
	a->verdict.pass = v->pass;
	a->verdict.n_reasons = v->n_reasons;
	memcpy(a->verdict.reasons, v->reasons, v->n_reasons * sizeof v->reasons[0]);
	if (v->pass) {
		fprintf(stderr, LOG_PREFIX "attestation passed (%llu entries), %zu secret(s) released\n",
		        (unsigned long long)dg_mlog_count(a->log), v->n_sealed);
		return;
	}
	fprintf(stderr, LOG_PREFIX "attestation FAILED, secrets wiped:\n");
	for (size_t i = 0; i < v->n_reasons; i++)
		fprintf(stderr, LOG_PREFIX "  %s: %s\n", v->reasons[i].code, v->reasons[i].detail);
}

int
dg_agent_attest(struct dg_agent *a)
{
	struct dg_msg req, reply;
	uint8_t priv[DG_SEAL_KEY_LEN], pub[DG_SEAL_KEY_LEN], nonce[DG_QUOTE_NONCE_LEN];
	uint8_t qualifying[DG_QUOTE_QUALIFYING_LEN];
	uint8_t attest[DG_QUOTE_MAX_ATTEST], sig[DG_QUOTE_MAX_SIG];
	size_t attest_len, sig_len, log_len;
	const uint8_t *log_bytes;
	uint64_t from;
	int rv;

	dg_msg_init(&req);
	dg_msg_init(&reply);
	req.type = DG_MSG_NONCE_REQ;
	snprintf(req.agent_id, sizeof req.agent_id, "%s", a->cfg.agent_id);
	if ((rv = call(a, &req, &reply, DG_MSG_NONCE)) != DG_OK)
		goto out;
	if (reply.nonce.len != DG_QUOTE_NONCE_LEN || reply.pcr != a->cfg.pcr) {
		rv = DG_ERR_FORMAT;
		goto out;
	}
	memcpy(nonce, reply.nonce.data, sizeof nonce);
	/* After a reboot the verifier still counts the old boot's entries. */
	from = reply.log_from <= dg_mlog_count(a->log) ? reply.log_from : 0;

	/* A fresh key per round, bound into the quote: only this round can unseal. */
	if ((rv = dg_seal_keygen(priv, pub)) != DG_OK ||
	    (rv = dg_quote_qualifying(nonce, pub, qualifying)) != DG_OK ||
	    (rv = dg_tpm_quote(a->tpm, a->cfg.pcr, qualifying, sizeof qualifying, attest,
	                       sizeof attest, &attest_len, sig, sizeof sig, &sig_len)) != DG_OK ||
	    (rv = dg_mlog_since(a->log, from, &log_bytes, &log_len)) != DG_OK)
		goto out;

	dg_msg_clear(&req);
	dg_msg_clear(&reply);
	req.type = DG_MSG_ATTEST;
	snprintf(req.agent_id, sizeof req.agent_id, "%s", a->cfg.agent_id);
	req.log_from = from;
	req.want_secrets = true;
	if ((rv = dg_bytes_set(&req.nonce, nonce, sizeof nonce)) != DG_OK ||
	    (rv = dg_bytes_set(&req.attest, attest, attest_len)) != DG_OK ||
	    (rv = dg_bytes_set(&req.signature, sig, sig_len)) != DG_OK ||
	    (rv = dg_bytes_set(&req.bind_key, pub, sizeof pub)) != DG_OK ||
	    (rv = dg_bytes_set(&req.log, log_bytes, log_len)) != DG_OK ||
	    (rv = call(a, &req, &reply, DG_MSG_VERDICT)) != DG_OK)
		goto out;
	record_verdict(a, &reply);
	if (reply.pass)
		rv = take_secrets(a, &reply, nonce, priv);
	else
		wipe_secrets(a);
out:
	if (rv != DG_OK)
		wipe_secrets(a); /* fail closed: no proof, no secret */
	OPENSSL_cleanse(priv, sizeof priv);
	dg_msg_clear(&req);
	dg_msg_clear(&reply);
	return rv;
}

const struct dg_agent_verdict *
dg_agent_last_verdict(const struct dg_agent *a)
{
	return &a->verdict;
}

uint64_t
dg_agent_log_count(const struct dg_agent *a)
{
	return dg_mlog_count(a->log);
}

uint64_t
dg_agent_interval_ms(const struct dg_agent *a)
{
	return (uint64_t)a->cfg.interval_s * 1000u;
}

int
dg_agent_secret(const struct dg_agent *a, const char *name, uint8_t *out, size_t cap,
                size_t *len)
{
	if (!a->verdict.pass)
		return DG_ERR_DENIED;
	for (size_t i = 0; i < a->n_secrets; i++) {
		const struct held_secret *h = &a->secrets[i];
		if (strcmp(h->name, name) != 0)
			continue;
		if (h->len > cap)
			return DG_ERR_TOOBIG;
		memcpy(out, h->value, h->len);
		*len = h->len;
		return DG_OK;
	}
	return DG_ERR_NOTFOUND;
}
