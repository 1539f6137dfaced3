/* The verifier's listener: nng rep0, one decoded request at a time. */
#ifndef DRIFTGATE_VERIFIER_SERVER_H
#define DRIFTGATE_VERIFIER_SERVER_H

#include <signal.h>

#include "attest.h"

/* Listen on url and serve until *stop is set; when *reload is set (may be
 * NULL), reload the policies between requests and clear it. Malformed
 * requests get an ERROR reply and change nothing. tls_cert_key: see
 * dg_transport_listen. metrics_url: serve Prometheus metrics there
 * (metrics.h); NULL: none. */
int dg_server_run(struct dg_verifier *v, const char *url, const char *tls_cert_key,
                  const char *metrics_url, volatile sig_atomic_t *stop,
                  volatile sig_atomic_t *reload);

#endif
