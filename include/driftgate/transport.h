/*
 * Transport: one wire message per nng message, on req0/rep0 sockets. The
 * agent dials, the verifier listens. A thin layer: encoding lives in wire.h.
 */
#ifndef DRIFTGATE_TRANSPORT_H
#define DRIFTGATE_TRANSPORT_H

#include <nng/nng.h>

#include "driftgate/wire.h"

/* Encode and send m on s. */
int dg_transport_send(nng_socket s, const struct dg_msg *m);
/* Receive and strictly decode one message. DG_ERR_TIMEOUT on receive timeout. */
int dg_transport_recv(nng_socket s, struct dg_msg *m);
/* Map an nng error to a dg_err. */
int dg_transport_err(int nng_rv);

#endif
