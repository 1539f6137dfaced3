#include "control.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>
#include <nng/transport/ipc/ipc.h>
#include <openssl/crypto.h>

#include "driftgate/err.h"
#include "driftgate/transport.h"
#include "driftgate/workload.h"

#define LOG_PREFIX "driftgate-agent: "

/* Append the last verdict in words: "pass" or "fail code: detail; ...". */
static size_t
format_verdict(struct dg_agent *a, char *out, size_t cap)
{
	struct dg_agent_verdict verdict;
	const struct dg_agent_verdict *v = &verdict;
	size_t n = 0;
	int w;
	dg_agent_last_verdict(a, &verdict);
	if (!v->attested)
		return (size_t)snprintf(out, cap, "none");
	w = snprintf(out, cap, "%s", v->pass ? "pass" : "fail");
	for (size_t i = 0; w > 0 && (size_t)w < cap - n && i < v->n_reasons; i++) {
		n += (size_t)w;
		w = snprintf(out + n, cap - n, "%s%s: %s", i ? "; " : " ", v->reasons[i].code,
		             v->reasons[i].detail);
	}
	if (w > 0)
		n += (size_t)w;
	return n < cap ? n : cap - 1;
}

/* Handle one request line; the reply goes into out (cap bytes). */
static size_t
handle(struct dg_agent *a, const char *req, size_t req_len, uint8_t *out, size_t cap)
{
	char line[4200], verdict[2048];
	int rv;
	if (req_len >= sizeof line || memchr(req, '\0', req_len) != NULL)
		return (size_t)snprintf((char *)out, cap, "error %d: malformed request", DG_ERR_FORMAT);
	memcpy(line, req, req_len);
	line[req_len] = '\0';

	if (strncmp(line, "measure ", 8) == 0) {
		unsigned added = 0;
		rv = dg_agent_measure(a, line + 8, &added);
		if (rv != DG_OK)
			return (size_t)snprintf((char *)out, cap, "error %d: %s: %s", rv, line + 8,
			                        dg_strerror(rv));
		/* A new measurement triggers attestation at once, not at the next tick. */
		rv = dg_agent_attest(a);
		format_verdict(a, verdict, sizeof verdict);
		return (size_t)snprintf((char *)out, cap, "ok measured %u file(s), %llu entries; %s%s%s",
		                        added, (unsigned long long)dg_agent_log_count(a), verdict,
		                        rv == DG_OK ? "" : "; attestation error: ",
		                        rv == DG_OK ? "" : dg_strerror(rv));
	}
	if (strncmp(line, "container-create ", 17) == 0) {
		/* "<id> <pid> <bundle>"; the bundle runs to the end: paths may hold spaces. */
		char id[DG_CONTAINER_ID_MAX + 1];
		const char *p = line + 17, *sp = strchr(p, ' ');
		char *end = NULL;
		long pid = sp ? strtol(sp + 1, &end, 10) : 0;
		if (sp == NULL || (size_t)(sp - p) > DG_CONTAINER_ID_MAX || end == NULL ||
		    *end != ' ' || pid <= 0 || pid > INT32_MAX || end[1] == '\0')
			return (size_t)snprintf((char *)out, cap,
			                        "error %d: expected container-create ID PID BUNDLE",
			                        DG_ERR_INVAL);
		memcpy(id, p, (size_t)(sp - p));
		id[sp - p] = '\0';
		rv = dg_agent_container_create(a, id, (int)pid, end + 1);
		if (rv != DG_OK)
			return (size_t)snprintf((char *)out, cap, "error %d: container %s: %s", rv, id,
			                        dg_strerror(rv));
		return (size_t)snprintf((char *)out, cap, "ok container %s measured", id);
	}
	if (strncmp(line, "container-delete ", 17) == 0) {
		dg_agent_container_delete(a, line + 17);
		return (size_t)snprintf((char *)out, cap, "ok");
	}
	if (strcmp(line, "attest") == 0) {
		rv = dg_agent_attest(a);
		format_verdict(a, verdict, sizeof verdict);
		if (rv != DG_OK)
			return (size_t)snprintf((char *)out, cap, "error %d: %s (%s)", rv,
			                        dg_strerror(rv), verdict);
		return (size_t)snprintf((char *)out, cap, "ok %s", verdict);
	}
	if (strcmp(line, "status") == 0) {
		format_verdict(a, verdict, sizeof verdict);
		return (size_t)snprintf((char *)out, cap, "ok entries %llu; last verdict %s",
		                        (unsigned long long)dg_agent_log_count(a), verdict);
	}
	if (strncmp(line, "secret ", 7) == 0) {
		char why[DG_WIRE_MAX_MESSAGE_TEXT + 1] = "";
		size_t len = 0;
		/* NOLINTNEXTLINE(bugprone-not-null-terminated-result): counted bytes */
		memcpy(out, "ok\n", 3);
		/* The control socket is the host's (root only): the node's own secrets. */
		rv = dg_agent_secret(a, "", line + 7, out + 3, cap - 3, &len, why, sizeof why);
		if (rv == DG_OK)
			return 3 + len;
		OPENSSL_cleanse(out, cap);
		format_verdict(a, verdict, sizeof verdict);
		return (size_t)snprintf((char *)out, cap,
		                        "error %d: secret '%s' withheld: %s (last verdict: %s)", rv,
		                        line + 7, why[0] ? why : dg_strerror(rv), verdict);
	}
	return (size_t)snprintf((char *)out, cap, "error %d: unknown request", DG_ERR_INVAL);
}

static int
prepare_ipc_dir(const char *url)
{
	char dir[512];
	if (strncmp(url, "ipc://", 6) != 0)
		return DG_OK;
	snprintf(dir, sizeof dir, "%s", url + 6);
	char *slash = strrchr(dir, '/');
	if (slash == NULL || slash == dir)
		return DG_OK;
	*slash = '\0';
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, LOG_PREFIX "%s: %s\n", dir, strerror(errno));
		return DG_ERR_IO;
	}
	return DG_OK;
}

int
dg_control_serve(struct dg_agent *a, const char *url, volatile sig_atomic_t *stop)
{
	nng_socket s;
	nng_listener l;
	uint8_t *reply = NULL;
	int rv = prepare_ipc_dir(url);
	if (rv != DG_OK)
		return rv;
	if ((rv = nng_rep0_open(&s)) != 0)
		return dg_transport_err(rv);
	if ((reply = malloc(DG_CONTROL_MAX_REPLY)) == NULL) {
		rv = DG_ERR_NOMEM;
		goto out;
	}
	if ((rv = nng_listener_create(&l, s, url)) != 0 ||
	    (strncmp(url, "ipc://", 6) == 0 &&
	     (rv = nng_listener_set_int(l, NNG_OPT_IPC_PERMISSIONS, 0600)) != 0) ||
	    (rv = nng_listener_start(l, 0)) != 0 ||
	    (rv = nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, 8192)) != 0) {
		fprintf(stderr, LOG_PREFIX "control %s: %s\n", url, nng_strerror(rv));
		rv = dg_transport_err(rv);
		goto out;
	}
	fprintf(stderr, LOG_PREFIX "control socket %s\n", url);
	/* A short receive timeout so that *stop is noticed. */
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 500);
	while (!*stop) {
		char *req = NULL;
		size_t req_len = 0;
		int r = nng_recv(s, &req, &req_len, NNG_FLAG_ALLOC);
		if (r == NNG_ETIMEDOUT || r == NNG_EINTR)
			continue;
		if (r != 0) {
			fprintf(stderr, LOG_PREFIX "control: %s\n", nng_strerror(r));
			continue;
		}
		size_t n = handle(a, req, req_len, reply, DG_CONTROL_MAX_REPLY);
		nng_free(req, req_len);
		if ((r = nng_send(s, reply, n, 0)) != 0)
			fprintf(stderr, LOG_PREFIX "control reply: %s\n", nng_strerror(r));
		OPENSSL_cleanse(reply, n);
	}
	rv = DG_OK;
out:
	free(reply);
	nng_close(s);
	return rv;
}

/* Set when the connection to the agent goes away: a req socket would
 * otherwise wait out its whole timeout for an agent that died mid-request. */
static void
on_pipe_removed(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	(void)p;
	(void)ev;
	__atomic_store_n((int *)arg, 1, __ATOMIC_SEQ_CST);
}

int
dg_control_request(const char *url, const char *request, unsigned timeout_ms, char **reply,
                   size_t *reply_len)
{
	nng_socket s;
	int rv, gone = 0;
	if ((rv = nng_req0_open(&s)) != 0)
		return dg_transport_err(rv);
	if ((rv = nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, (nng_duration)timeout_ms)) != 0 ||
	    (rv = nng_pipe_notify(s, NNG_PIPE_EV_REM_POST, on_pipe_removed, &gone)) != 0 ||
	    (rv = nng_dial(s, url, NULL, 0)) != 0 ||
	    (rv = nng_send(s, (void *)request, strlen(request), 0)) != 0)
		goto out;
	/* Poll so that a vanished agent ends the wait at once. */
	for (unsigned waited = 0;; waited += 10) {
		rv = nng_recv(s, reply, reply_len, NNG_FLAG_ALLOC | NNG_FLAG_NONBLOCK);
		if (rv != NNG_EAGAIN)
			break;
		if (__atomic_load_n(&gone, __ATOMIC_SEQ_CST)) {
			rv = NNG_ECONNRESET;
			break;
		}
		if (waited >= timeout_ms) {
			rv = NNG_ETIMEDOUT;
			break;
		}
		nng_msleep(10);
	}
out:
	if (rv != 0)
		fprintf(stderr, "driftgate-agent: %s: %s\n", url, nng_strerror(rv));
	nng_close(s);
	return dg_transport_err(rv);
}
