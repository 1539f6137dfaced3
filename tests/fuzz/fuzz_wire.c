/*
 * libFuzzer target for the wire decoder. Anything that decodes must encode,
 * and the encoding must decode to an equal message that encodes to the very
 * same bytes (the encoding is canonical even when the input was not).
 */
#include <stdlib.h>
#include <string.h>

#include "driftgate/err.h"
#include "driftgate/wire.h"
#include "wire_eq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
	if (dg_wire_decode(enc, enc_len, &again) != DG_OK || !wire_msg_eq(&m, &again))
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
