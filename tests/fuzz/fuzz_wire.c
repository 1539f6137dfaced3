/*
 * libFuzzer target for the wire decoder. Anything that decodes must encode,
 * and the encoding must decode to an equal message that encodes to the very
 * same bytes (the encoding is canonical even when the input was not).
 */
#include <stdlib.h>
#include <string.h>

#include "driftgate/err.h"
#include "driftgate/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
bytes_eq(const struct dg_bytes *a, const struct dg_bytes *b)
{
	return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

static int
msg_eq(const struct dg_msg *a, const struct dg_msg *b)
{
	if (a->type != b->type || strcmp(a->agent_id, b->agent_id) != 0 ||
	    !bytes_eq(&a->ek_pub, &b->ek_pub) || !bytes_eq(&a->ak_pub, &b->ak_pub) ||
	    !bytes_eq(&a->ek_cert, &b->ek_cert) ||
	    !bytes_eq(&a->id_object, &b->id_object) || !bytes_eq(&a->enc_secret, &b->enc_secret) ||
	    !bytes_eq(&a->credential, &b->credential) || !bytes_eq(&a->nonce, &b->nonce) ||
	    !bytes_eq(&a->attest, &b->attest) || !bytes_eq(&a->signature, &b->signature) ||
	    !bytes_eq(&a->bind_key, &b->bind_key) || !bytes_eq(&a->log, &b->log) ||
	    a->log_from != b->log_from || a->pcr != b->pcr ||
	    a->want_secrets != b->want_secrets || a->pass != b->pass ||
	    a->n_reasons != b->n_reasons || a->n_sealed != b->n_sealed || a->code != b->code ||
	    strcmp(a->message, b->message) != 0)
		return 0;
	for (size_t i = 0; i < a->n_reasons; i++) {
		if (strcmp(a->reasons[i].code, b->reasons[i].code) != 0 ||
		    strcmp(a->reasons[i].detail, b->reasons[i].detail) != 0)
			return 0;
	}
	for (size_t i = 0; i < a->n_sealed; i++) {
		if (strcmp(a->sealed[i].name, b->sealed[i].name) != 0 ||
		    !bytes_eq(&a->sealed[i].blob, &b->sealed[i].blob))
			return 0;
	}
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dg_msg m, again;
	uint8_t *enc = NULL, *enc2 = NULL;
	size_t enc_len, enc2_len;
	int rc;

	rc = dg_wire_decode(data, size, &m);
	if (rc != DG_OK) {
		if (rc == DG_ERR__COUNT || m.type != 0 || m.log.data != NULL)
			abort(); /* a failed decode must leave a cleared message */
		return 0;
	}
	if (dg_wire_encode(&m, &enc, &enc_len) != DG_OK)
		abort();
	if (dg_wire_decode(enc, enc_len, &again) != DG_OK || !msg_eq(&m, &again))
		abort();
	if (dg_wire_encode(&again, &enc2, &enc2_len) != DG_OK || enc2_len != enc_len ||
	    memcmp(enc, enc2, enc_len) != 0)
		abort();
	free(enc);
	free(enc2);
	dg_msg_clear(&m);
	dg_msg_clear(&again);
	return 0;
}
