/*
 * libFuzzer target for TPM2B_PUBLIC import, in both roles: an accepted key
 * has a SHA-256 TPM name and converts to an OpenSSL key of the right type.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "driftgate/err.h"
#include "driftgate/tpmkey.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
import(const uint8_t *data, size_t size, enum dg_tpmkey_role role)
{
	uint8_t name[DG_TPMKEY_MAX_NAME];
	size_t name_len = 0;
	EVP_PKEY *key = NULL;
	int rc, type;

	rc = dg_tpmkey_import(data, size, role, &key, name, &name_len);
	if (rc != DG_OK) {
		if (key != NULL || name_len != 0 || rc <= DG_OK || rc >= DG_ERR__COUNT)
			abort();
		return;
	}
	type = key != NULL ? EVP_PKEY_get_base_id(key) : 0;
	if (name_len != 34 || name[0] != 0x00 || name[1] != 0x0b ||
	    (type != EVP_PKEY_RSA && type != EVP_PKEY_EC))
		abort();
	EVP_PKEY_free(key);
	/* Without the optional outputs the verdict is the same. */
	if (dg_tpmkey_import(data, size, role, NULL, NULL, NULL) != DG_OK)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	import(data, size, DG_TPMKEY_EK);
	import(data, size, DG_TPMKEY_AK);
	return 0;
}
