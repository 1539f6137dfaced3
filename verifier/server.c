#include "server.h"

#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "driftgate/err.h"
#include "driftgate/transport.h"

static uint64_t
monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int
dg_server_run(struct dg_verifier *v, const char *url, const char *tls_cert_key,
              volatile sig_atomic_t *stop, volatile sig_atomic_t *reload)
{
	nng_socket s;
	struct dg_msg req, reply;
	uint64_t next_tick_ms = 0;
	int rv;

	if ((rv = nng_rep0_open(&s)) != 0)
		return dg_transport_err(rv);
	if ((rv = nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, DG_WIRE_MAX_MSG)) != 0 ||
	    (rv = nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 500)) != 0 ||
	    (rv = nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 5000)) != 0) {
		nng_close(s);
		return dg_transport_err(rv);
	}
	if ((rv = dg_transport_listen(s, url, tls_cert_key)) != DG_OK) {
		nng_close(s);
		return rv;
	}
	fprintf(stderr, "driftgate-verifier: listening on %s\n", url);
	while (!*stop) {
		/* The receive timeout wakes the loop at least twice a second. */
		if (reload != NULL && *reload) {
			char err[1024] = "";
			*reload = 0;
			if (dg_verifier_reload(v, err, sizeof err) != DG_OK)
				fprintf(stderr, "driftgate-verifier: reload refused, policies unchanged: "
				        "%s\n", err);
		}
		if (monotonic_ms() >= next_tick_ms) {
			dg_verifier_tick(v);
			next_tick_ms = monotonic_ms() + 1000;
		}
		rv = dg_transport_recv(s, &req);
		if (rv == DG_ERR_TIMEOUT)
			continue;
		if (rv == DG_ERR_NET) {
			if (!*stop)
				fprintf(stderr, "driftgate-verifier: receive failed\n");
			continue;
		}
		if (rv != DG_OK) {
			/* Undecodable: answer so the peer is not left waiting; keep nothing. */
			fprintf(stderr, "driftgate-verifier: rejected a request: %s\n", dg_strerror(rv));
			dg_msg_init(&reply);
			reply.type = DG_MSG_ERROR;
			reply.code = (uint32_t)rv;
			snprintf(reply.message, sizeof reply.message, "malformed request: %s",
			         dg_strerror(rv));
		} else {
			dg_verifier_handle(v, &req, &reply);
		}
		if ((rv = dg_transport_send(s, &reply)) != DG_OK) {
			/* Never leave the peer waiting out its timeout: say why. */
			fprintf(stderr, "driftgate-verifier: reply failed: %s\n", dg_strerror(rv));
			int why = rv;
			dg_msg_clear(&reply);
			reply.type = DG_MSG_ERROR;
			reply.code = (uint32_t)why;
			snprintf(reply.message, sizeof reply.message, "verifier cannot send its reply: %s",
			         dg_strerror(why));
			(void)dg_transport_send(s, &reply);
		}
		dg_msg_clear(&req);
		dg_msg_clear(&reply);
	}
	nng_close(s);
	return DG_OK;
}
