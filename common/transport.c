#include "driftgate/transport.h"

#include <stdlib.h>

#include <openssl/crypto.h>

#include "driftgate/err.h"

int
dg_transport_err(int nng_rv)
{
	switch (nng_rv) {
	case 0:
		return DG_OK;
	case NNG_ETIMEDOUT:
		return DG_ERR_TIMEOUT;
	case NNG_ENOMEM:
		return DG_ERR_NOMEM;
	case NNG_EMSGSIZE:
		return DG_ERR_TOOBIG;
	default:
		return DG_ERR_NET;
	}
}

int
dg_transport_send(nng_socket s, const struct dg_msg *m)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rv = dg_wire_encode(m, &buf, &len);
	if (rv != DG_OK)
		return rv;
	rv = dg_transport_err(nng_send(s, buf, len, 0));
	/* Messages may carry sealed secrets or credentials: no copy left behind. */
	OPENSSL_cleanse(buf, len);
	free(buf);
	return rv;
}

int
dg_transport_recv(nng_socket s, struct dg_msg *m)
{
	void *buf = NULL;
	size_t len = 0;
	int rv = dg_transport_err(nng_recv(s, &buf, &len, NNG_FLAG_ALLOC));
	if (rv != DG_OK)
		return rv;
	rv = dg_wire_decode(buf, len, m);
	OPENSSL_cleanse(buf, len);
	nng_free(buf, len);
	return rv;
}
