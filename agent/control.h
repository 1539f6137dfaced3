/*
 * The agent's local control socket (nng rep0 over ipc, mode 0600): how an
 * operator, a hook or a test asks the running agent to measure, attest, report
 * its status or hand over a released secret. Requests are one text line:
 *   measure <absolute path>   attest   status   secret <name>
 *   container-create <id> <pid> <bundle>   container-delete <id>   (OCI hooks)
 * Replies start with "ok" or "error <code>:"; a secret reply is "ok\n" + bytes.
 */
#ifndef DRIFTGATE_AGENT_CONTROL_H
#define DRIFTGATE_AGENT_CONTROL_H

#include <signal.h>
#include <stddef.h>

#include "agent.h"

#define DG_CONTROL_MAX_REPLY (64 * 1024)

/* Serve control requests until *stop is set. */
int dg_control_serve(struct dg_agent *a, const char *url, volatile sig_atomic_t *stop);

/* Client: send one request; *reply is freed by the caller with nng_free(). */
int dg_control_request(const char *url, const char *request, unsigned timeout_ms,
                       char **reply, size_t *reply_len);

#endif
