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
/* The same for one nng message (contexts, aio): decode msg's body; encode
 * m into a new message (*out, the caller's until nng takes it). */
int dg_transport_decode_msg(nng_msg *msg, struct dg_msg *m);
int dg_transport_encode_msg(const struct dg_msg *m, nng_msg **out);
/* Map an nng error to a dg_err. */
int dg_transport_err(int nng_rv);

/*
 * Listen on url (verifier). A tls+tcp:// url needs cert_key_file: one PEM file
 * with the verifier's certificate (chain) and private key; other urls must not
 * name one. Errors are printed.
 */
int dg_transport_listen(nng_socket s, const char *url, const char *cert_key_file);

/*
 * Dial url in the background (agent). A tls+tcp:// url needs ca_file: the PEM
 * certificates the verifier's certificate must chain to (pin the verifier by
 * giving its own self-signed certificate); server_name (may be NULL: the
 * url's host) is checked against the certificate. Errors are printed.
 */
int dg_transport_dial(nng_socket s, const char *url, const char *ca_file,
                      const char *server_name);

#endif
