/*
 * The listener. nng contexts keep up to DG_SERVER_CONTEXTS requests in flight
 * on one rep0 socket; their receive callbacks only queue them. One thread
 * owns the verifier's state and serves the queue in batches: every request of
 * a batch is handled, their state writes and audit records are committed with
 * one sync each (dg_verifier_batch_commit), and only then are the replies
 * sent. A round's cost is a few signature checks and hashes (tens of µs); the
 * sync to disk is what costs milliseconds, and a batch pays it once.
 */
#include "server.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "driftgate/err.h"
#include "driftgate/transport.h"
#include "metrics.h"

#define DG_SERVER_CONTEXTS 256 /* requests in flight; also the largest batch */
#define WAIT_MS 500            /* the loop wakes at least this often */

struct server;

struct slot {
	struct server *srv;
	nng_ctx ctx;
	nng_aio *aio;
	bool sending; /* the aio carries a reply; else it waits for a request */
};

struct server {
	pthread_mutex_t lock; /* guards ready and n_ready */
	pthread_cond_t wake;
	size_t ready[DG_SERVER_CONTEXTS]; /* slots holding a received request */
	size_t n_ready;
	struct slot slots[DG_SERVER_CONTEXTS];
};

static uint64_t
monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t
monotonic_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* nng's thread: a request arrived (queue it) or a reply left (wait again). */
static void
on_aio(void *arg)
{
	struct slot *sl = arg;
	struct server *srv = sl->srv;
	int rv = nng_aio_result(sl->aio);

	if (sl->sending) {
		sl->sending = false;
		if (rv != 0)
			nng_msg_free(nng_aio_get_msg(sl->aio)); /* not sent: still ours */
		if (rv != NNG_ECLOSED)
			nng_ctx_recv(sl->ctx, sl->aio);
		return;
	}
	if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
		return; /* shutting down */
	if (rv != 0) {
		nng_ctx_recv(sl->ctx, sl->aio);
		return;
	}
	pthread_mutex_lock(&srv->lock);
	srv->ready[srv->n_ready++] = (size_t)(sl - srv->slots);
	pthread_cond_signal(&srv->wake);
	pthread_mutex_unlock(&srv->lock);
}

/* Take every queued request (waiting up to WAIT_MS for the first). */
static size_t
take_batch(struct server *srv, size_t *out)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += (long)WAIT_MS * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&srv->lock);
	if (srv->n_ready == 0)
		pthread_cond_timedwait(&srv->wake, &srv->lock, &until);
	size_t n = srv->n_ready;
	memcpy(out, srv->ready, n * sizeof *out);
	srv->n_ready = 0;
	pthread_mutex_unlock(&srv->lock);
	return n;
}

static void
error_reply(struct dg_msg *reply, int code, const char *what)
{
	dg_msg_clear(reply);
	reply->type = DG_MSG_ERROR;
	reply->code = (uint32_t)code;
	snprintf(reply->message, sizeof reply->message, "%s: %s", what, dg_strerror(code));
}

/* Handle one request into an encoded reply (NULL only if even an ERROR
 * cannot be encoded: out of memory; the peer then times out), counted in
 * metrics (NULL: none). */
static nng_msg *
serve_one(struct dg_verifier *v, struct dg_metrics *metrics, nng_msg *in)
{
	struct dg_msg req, reply;
	nng_msg *out = NULL;
	int rv = dg_transport_decode_msg(in, &req);

	nng_msg_free(in);
	if (rv != DG_OK) {
		/* Undecodable: answer so the peer is not left waiting; keep nothing. */
		fprintf(stderr, "driftgate-verifier: rejected a request: %s\n", dg_strerror(rv));
		dg_msg_init(&reply);
		error_reply(&reply, rv, "malformed request");
	} else {
		uint64_t start = monotonic_ns();
		dg_verifier_handle(v, &req, &reply);
		if (metrics != NULL)
			(void)dg_metrics_observe(metrics, &req, &reply, monotonic_ns() - start);
	}
	if ((rv = dg_transport_encode_msg(&reply, &out)) != DG_OK) {
		fprintf(stderr, "driftgate-verifier: reply failed: %s\n", dg_strerror(rv));
		error_reply(&reply, rv, "verifier cannot encode its reply");
		(void)dg_transport_encode_msg(&reply, &out);
	}
	dg_msg_clear(&req);
	dg_msg_clear(&reply);
	return out;
}

static void
housekeeping(struct dg_verifier *v, struct dg_metrics *metrics, volatile sig_atomic_t *reload,
             uint64_t *next_tick_ms)
{
	if (reload != NULL && *reload) {
		char err[1024] = "";
		*reload = 0;
		if (dg_verifier_reload(v, err, sizeof err) != DG_OK)
			fprintf(stderr, "driftgate-verifier: reload refused, policies unchanged: %s\n",
			        err);
	}
	if (monotonic_ms() >= *next_tick_ms) {
		dg_verifier_tick(v);
		if (metrics != NULL) /* walks the registry: once a second too */
			(void)dg_metrics_set_agents(metrics, dg_verifier_agents(v));
		*next_tick_ms = monotonic_ms() + 1000;
	}
}

/* One batch: handle, commit, then reply. DG_OK, or the commit's error (stop). */
static int
serve_batch(struct dg_verifier *v, struct server *srv, struct dg_metrics *metrics,
            const size_t *idx, size_t n)
{
	nng_msg *replies[DG_SERVER_CONTEXTS];
	int rv = dg_verifier_batch_begin(v);

	if (rv != DG_OK) {
		fprintf(stderr, "driftgate-verifier: state database: cannot begin: %s\n",
		        dg_strerror(rv));
		return rv;
	}
	for (size_t i = 0; i < n; i++)
		replies[i] = serve_one(v, metrics, nng_aio_get_msg(srv->slots[idx[i]].aio));
	if ((rv = dg_verifier_batch_commit(v)) != DG_OK) {
		/* Memory is ahead of disk: acknowledge nothing, stop, and let the
		 * restart reload what is durable. */
		fprintf(stderr, "driftgate-verifier: state or audit not synced (%s): stopping "
		        "without answering %zu request(s)\n", dg_strerror(rv), n);
		for (size_t i = 0; i < n; i++)
			nng_msg_free(replies[i]);
		return rv;
	}
	for (size_t i = 0; i < n; i++) {
		struct slot *sl = &srv->slots[idx[i]];
		if (replies[i] == NULL) {
			nng_ctx_recv(sl->ctx, sl->aio);
			continue;
		}
		sl->sending = true;
		nng_aio_set_msg(sl->aio, replies[i]);
		nng_ctx_send(sl->ctx, sl->aio);
	}
	return DG_OK;
}

int
dg_server_run(struct dg_verifier *v, const char *url, const char *tls_cert_key,
              const char *metrics_url, volatile sig_atomic_t *stop,
              volatile sig_atomic_t *reload)
{
	struct server *srv = calloc(1, sizeof *srv);
	struct dg_metrics *metrics = NULL;
	char merr[512] = "";
	size_t idx[DG_SERVER_CONTEXTS], n_slots = 0;
	uint64_t next_tick_ms = 0;
	bool open = false;
	nng_socket s;
	int rv;

	if (srv == NULL)
		return DG_ERR_NOMEM;
	pthread_mutex_init(&srv->lock, NULL);
	pthread_cond_init(&srv->wake, NULL);
	if ((rv = dg_transport_err(nng_rep0_open(&s))) != DG_OK)
		goto out;
	open = true;
	if ((rv = dg_transport_err(nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, DG_WIRE_MAX_MSG))) !=
	        DG_OK ||
	    (rv = dg_transport_err(nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 5000))) != DG_OK)
		goto out;
	for (; n_slots < DG_SERVER_CONTEXTS; n_slots++) {
		struct slot *sl = &srv->slots[n_slots];
		sl->srv = srv;
		if ((rv = dg_transport_err(nng_aio_alloc(&sl->aio, on_aio, sl))) != DG_OK)
			goto out;
		if ((rv = dg_transport_err(nng_ctx_open(&sl->ctx, s))) != DG_OK) {
			nng_aio_free(sl->aio);
			goto out;
		}
	}
	if ((rv = dg_transport_listen(s, url, tls_cert_key)) != DG_OK)
		goto out;
	if (metrics_url != NULL && ((rv = dg_metrics_new(&metrics)) != DG_OK ||
	                            (rv = dg_metrics_listen(metrics, metrics_url, merr,
	                                                    sizeof merr)) != DG_OK)) {
		fprintf(stderr, "driftgate-verifier: %s\n", merr[0] ? merr : dg_strerror(rv));
		goto out;
	}
	for (size_t i = 0; i < n_slots; i++)
		nng_ctx_recv(srv->slots[i].ctx, srv->slots[i].aio);
	fprintf(stderr, "driftgate-verifier: listening on %s\n", url);
	if (metrics != NULL)
		fprintf(stderr, "driftgate-verifier: metrics on %s (GET /metrics)\n", metrics_url);
	while (!*stop) {
		housekeeping(v, metrics, reload, &next_tick_ms);
		size_t n = take_batch(srv, idx);
		if (n > 0 && (rv = serve_batch(v, srv, metrics, idx, n)) != DG_OK)
			goto out;
	}
	rv = DG_OK;
out:
	/* Closing the socket completes every aio (ECLOSED); freeing waits for it. */
	if (open)
		nng_close(s);
	for (size_t i = 0; i < n_slots; i++)
		nng_aio_stop(srv->slots[i].aio);
	/* Requests received but never served are still ours. */
	for (size_t i = 0; i < srv->n_ready; i++)
		nng_msg_free(nng_aio_get_msg(srv->slots[srv->ready[i]].aio));
	for (size_t i = 0; i < n_slots; i++)
		nng_aio_free(srv->slots[i].aio);
	pthread_cond_destroy(&srv->wake);
	pthread_mutex_destroy(&srv->lock);
	free(srv);
	dg_metrics_free(metrics);
	return rv;
}
