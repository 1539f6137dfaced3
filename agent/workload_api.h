/*
 * The workload API: a Unix socket that containers reach through a bind mount
 * of its directory. A process asks "get NAME"; the agent learns who asks from
 * the kernel (SO_PEERCRED and SO_PEERPIDFD -> the peer's mount namespace ->
 * the container the OCI hook registered), never from the request, and
 * answers with the secret only if the verifier released it to that container
 * (agent.h dg_agent_secret). Protocol, one request per connection:
 *   request:  "get <name>\n"                     (at most 128 bytes)
 *   reply:    "ok <length>\n" <length bytes>  or  "error <code> <message>\n"
 */
#ifndef DRIFTGATE_AGENT_WORKLOAD_API_H
#define DRIFTGATE_AGENT_WORKLOAD_API_H

#include <signal.h>

#include "agent.h"

/* Listen on path (its directory is made 0755; the socket is 0666: who may
 * have a secret is decided per request, by container, not by file mode).
 * Serves until *stop; one request at a time. */
int dg_workload_api_serve(struct dg_agent *a, const char *path, volatile sig_atomic_t *stop);

#endif
