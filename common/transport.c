#include "driftgate/transport.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/supplemental/tls/tls.h>

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

int
dg_transport_decode_msg(nng_msg *msg, struct dg_msg *m)
{
	int rv = dg_wire_decode(nng_msg_body(msg), nng_msg_len(msg), m);
	OPENSSL_cleanse(nng_msg_body(msg), nng_msg_len(msg));
	return rv;
}

int
dg_transport_encode_msg(const struct dg_msg *m, nng_msg **out)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rv = dg_wire_encode(m, &buf, &len);
	if (rv != DG_OK)
		return rv;
	if ((rv = dg_transport_err(nng_msg_alloc(out, len))) == DG_OK)
		memcpy(nng_msg_body(*out), buf, len);
	OPENSSL_cleanse(buf, len);
	free(buf);
	return rv;
}

static bool
is_tls(const char *url)
{
	return strncmp(url, "tls+tcp://", 10) == 0 || strncmp(url, "tls+tcp4://", 11) == 0 ||
	       strncmp(url, "tls+tcp6://", 11) == 0;
}

/* The host part of a tls+tcp://host:port url, for certificate name checks. */
static void
url_host(const char *url, char *out, size_t cap)
{
	const char *h = strstr(url, "://");
	h = h ? h + 3 : url;
	size_t n = strcspn(h, ":/");
	snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), h);
}

int
dg_transport_listen(nng_socket s, const char *url, const char *cert_key_file)
{
	nng_listener l;
	nng_tls_config *cfg = NULL;
	int rv;
	if (is_tls(url) != (cert_key_file != NULL && cert_key_file[0] != '\0')) {
		fprintf(stderr, "driftgate: %s: a tls+tcp:// address needs a certificate and key, "
		                "and only such an address takes one\n", url);
		return DG_ERR_INVAL;
	}
	if ((rv = nng_listener_create(&l, s, url)) != 0)
		goto out;
	if (is_tls(url)) {
		if ((rv = nng_tls_config_alloc(&cfg, NNG_TLS_MODE_SERVER)) != 0 ||
		    (rv = nng_tls_config_cert_key_file(cfg, cert_key_file, NULL)) != 0 ||
		    (rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, cfg)) != 0)
			goto out;
	}
	rv = nng_listener_start(l, 0);
out:
	if (cfg != NULL)
		nng_tls_config_free(cfg); /* the listener holds its own reference */
	if (rv != 0)
		fprintf(stderr, "driftgate: listen %s: %s\n", url, nng_strerror(rv));
	return dg_transport_err(rv);
}

int
dg_transport_dial(nng_socket s, const char *url, const char *ca_file, const char *server_name)
{
	nng_dialer d;
	nng_tls_config *cfg = NULL;
	char host[256];
	int rv;
	if (is_tls(url) != (ca_file != NULL && ca_file[0] != '\0')) {
		fprintf(stderr, "driftgate: %s: a tls+tcp:// address needs the verifier's CA "
		                "(--tls-ca), and only such an address takes one\n", url);
		return DG_ERR_INVAL;
	}
	if ((rv = nng_dialer_create(&d, s, url)) != 0)
		goto out;
	if (is_tls(url)) {
		url_host(url, host, sizeof host);
		if ((rv = nng_tls_config_alloc(&cfg, NNG_TLS_MODE_CLIENT)) != 0 ||
		    (rv = nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED)) != 0 ||
		    (rv = nng_tls_config_ca_file(cfg, ca_file)) != 0 ||
		    (rv = nng_tls_config_server_name(cfg, server_name ? server_name : host)) != 0 ||
		    (rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cfg)) != 0)
			goto out;
	}
	/* In the background: the verifier may come up after the agent. */
	rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK);
out:
	if (cfg != NULL)
		nng_tls_config_free(cfg);
	if (rv != 0)
		fprintf(stderr, "driftgate: dial %s: %s\n", url, nng_strerror(rv));
	return dg_transport_err(rv);
}
