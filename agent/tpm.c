/*
 * The agent's TPM access over tpm2-tss ESAPI. Keys live at persistent handles;
 * every transient object and session created here is flushed before returning,
 * because TPMs without a resource manager (swtpm) have only a few slots.
 */
#include "tpm.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include <openssl/crypto.h>

#include "driftgate/err.h"

#define DEFAULT_TCTI "device:/dev/tpmrm0"
#define PUBLIC_CAP 1024 /* tpm.h: caller buffers for publics hold at least this */
#define PCR_COUNT 24    /* PC Client TPMs implement PCRs 0-23 */

struct dg_tpm {
	TSS2_TCTI_CONTEXT *tcti;
	ESYS_CONTEXT *esys;
	ESYS_TR ek; /* ESYS_TR_NONE until dg_tpm_keys succeeds */
	ESYS_TR ak;
	ESYS_TR bind; /* ESYS_TR_NONE until dg_tpm_bind_key succeeds */
};

/* TCG EK Credential Profile, default RSA-2048 EK template (low range). */
static const TPM2B_PUBLIC ek_template = {
	.publicArea = {
		.type = TPM2_ALG_RSA,
		.nameAlg = TPM2_ALG_SHA256,
		.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
			TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_ADMINWITHPOLICY |
			TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT,
		/* PolicySecret(TPM_RH_ENDORSEMENT) */
		.authPolicy = {
			.size = 32,
			.buffer = {
				0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8,
				0x1a, 0x90, 0xcc, 0x8d, 0x46, 0xa5, 0xd7, 0x24,
				0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52, 0x0b, 0x64,
				0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa,
			},
		},
		.parameters.rsaDetail = {
			.symmetric = {
				.algorithm = TPM2_ALG_AES,
				.keyBits.aes = 128,
				.mode.aes = TPM2_ALG_CFB,
			},
			.scheme.scheme = TPM2_ALG_NULL,
			.keyBits = 2048,
		},
		.unique.rsa.size = 256,
	},
};

/* The AK tpm2_createak makes with -G rsa -g sha256 -s rsassa. */
static const TPM2B_PUBLIC ak_template = {
	.publicArea = {
		.type = TPM2_ALG_RSA,
		.nameAlg = TPM2_ALG_SHA256,
		.objectAttributes = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT |
			TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
			TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH,
		.parameters.rsaDetail = {
			.symmetric.algorithm = TPM2_ALG_NULL,
			.scheme = {
				.scheme = TPM2_ALG_RSASSA,
				.details.rsassa.hashAlg = TPM2_ALG_SHA256,
			},
			.keyBits = 2048,
		},
	},
};

/* The binding key secrets are sealed to (tpmkey.h DG_TPMKEY_BIND): an ECDH
 * key that cannot leave this TPM. A primary key, so it needs no parent. */
static const TPM2B_PUBLIC bind_template = {
	.publicArea = {
		.type = TPM2_ALG_ECC,
		.nameAlg = TPM2_ALG_SHA256,
		.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
			TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
			TPMA_OBJECT_DECRYPT,
		.parameters.eccDetail = {
			.symmetric.algorithm = TPM2_ALG_NULL,
			.scheme = {
				.scheme = TPM2_ALG_ECDH,
				.details.ecdh.hashAlg = TPM2_ALG_SHA256,
			},
			.curveID = TPM2_ECC_NIST_P256,
			.kdf.scheme = TPM2_ALG_NULL,
		},
	},
};

static int
tss_fail(const char *fn, TSS2_RC rc)
{
	fprintf(stderr, "driftgate-agent: %s: %s\n", fn, Tss2_RC_Decode(rc));
	return DG_ERR_TPM;
}

static int
unmarshal_fail(TSS2_RC rc)
{
	switch (rc) {
	case TSS2_MU_RC_INSUFFICIENT_BUFFER:
		return DG_ERR_TRUNCATED;
	case TSS2_MU_RC_BAD_SIZE:
		return DG_ERR_TOOBIG;
	default:
		return DG_ERR_FORMAT;
	}
}

static int
marshal_fail(TSS2_RC rc)
{
	return rc == TSS2_MU_RC_INSUFFICIENT_BUFFER ? DG_ERR_TOOBIG : DG_ERR_FORMAT;
}

static void
flush(struct dg_tpm *t, ESYS_TR *handle)
{
	if (*handle == ESYS_TR_NONE)
		return;
	TSS2_RC rc = Esys_FlushContext(t->esys, *handle);
	if (rc != TSS2_RC_SUCCESS)
		tss_fail("Esys_FlushContext", rc);
	*handle = ESYS_TR_NONE;
}

static TPML_PCR_SELECTION
sha256_selection(uint32_t pcr)
{
	TPML_PCR_SELECTION sel = {
		.count = 1,
		.pcrSelections[0] = {
			.hash = TPM2_ALG_SHA256,
			.sizeofSelect = PCR_COUNT / 8,
		},
	};
	sel.pcrSelections[0].pcrSelect[pcr / 8] = (BYTE)(1u << (pcr % 8));
	return sel;
}

int
dg_tpm_open(const char *tcti, struct dg_tpm **out)
{
	struct dg_tpm *t;
	TSS2_RC rc;
	int err;

	if (out == NULL)
		return DG_ERR_INVAL;
	if (tcti == NULL || tcti[0] == '\0')
		tcti = DEFAULT_TCTI;
	t = calloc(1, sizeof *t);
	if (t == NULL)
		return DG_ERR_NOMEM;
	t->ek = ESYS_TR_NONE;
	t->ak = ESYS_TR_NONE;
	t->bind = ESYS_TR_NONE;
	rc = Tss2_TctiLdr_Initialize(tcti, &t->tcti);
	if (rc != TSS2_RC_SUCCESS) {
		fprintf(stderr, "driftgate-agent: Tss2_TctiLdr_Initialize(\"%s\"): %s\n", tcti,
		        Tss2_RC_Decode(rc));
		err = DG_ERR_TPM;
		goto out;
	}
	rc = Esys_Initialize(&t->esys, t->tcti, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		err = tss_fail("Esys_Initialize", rc);
		goto out;
	}
	*out = t;
	t = NULL;
	err = DG_OK;
out:
	dg_tpm_close(t);
	return err;
}

void
dg_tpm_close(struct dg_tpm *t)
{
	if (t == NULL)
		return;
	/* Finalize releases the ESYS_TR metadata of the persistent keys too. */
	Esys_Finalize(&t->esys);
	Tss2_TctiLdr_Finalize(&t->tcti);
	free(t);
}

/* Whether a persistent object or an NV index is defined at handle. */
static int
handle_exists(struct dg_tpm *t, TPM2_HANDLE handle, bool *exists)
{
	TPMS_CAPABILITY_DATA *cap = NULL;
	TSS2_RC rc = Esys_GetCapability(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
	                                TPM2_CAP_HANDLES, handle, 1, NULL, &cap);
	if (rc != TSS2_RC_SUCCESS)
		return tss_fail("Esys_GetCapability", rc);
	/* The TPM lists handles from `handle` upwards: the first is ours or a later one. */
	*exists = cap->data.handles.count > 0 && cap->data.handles.handle[0] == handle;
	Esys_Free(cap);
	return DG_OK;
}

/* EvictControl a loaded transient object to handle, then flush the transient. */
static int
persist(struct dg_tpm *t, ESYS_TR *transient, TPM2_HANDLE handle, ESYS_TR *out)
{
	TSS2_RC rc = Esys_EvictControl(t->esys, ESYS_TR_RH_OWNER, *transient, ESYS_TR_PASSWORD,
	                               ESYS_TR_NONE, ESYS_TR_NONE, handle, out);
	flush(t, transient);
	if (rc != TSS2_RC_SUCCESS)
		return tss_fail("Esys_EvictControl", rc);
	return DG_OK;
}

static int
create_ek(struct dg_tpm *t, TPM2_HANDLE handle, ESYS_TR *out)
{
	const TPM2B_SENSITIVE_CREATE no_auth = { 0 };
	const TPM2B_DATA no_outside_info = { 0 };
	const TPML_PCR_SELECTION no_pcrs = { 0 };
	ESYS_TR transient = ESYS_TR_NONE;

	TSS2_RC rc = Esys_CreatePrimary(t->esys, ESYS_TR_RH_ENDORSEMENT, ESYS_TR_PASSWORD,
	                                ESYS_TR_NONE, ESYS_TR_NONE, &no_auth, &ek_template,
	                                &no_outside_info, &no_pcrs, &transient,
	                                NULL, NULL, NULL, NULL);
	if (rc != TSS2_RC_SUCCESS)
		return tss_fail("Esys_CreatePrimary", rc);
	return persist(t, &transient, handle, out);
}

/* A policy session satisfying the EK's authPolicy, PolicySecret(endorsement). */
static int
ek_policy_session(struct dg_tpm *t, ESYS_TR *session)
{
	const TPMT_SYM_DEF no_symmetric = { .algorithm = TPM2_ALG_NULL };
	TSS2_RC rc;

	rc = Esys_StartAuthSession(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
	                           ESYS_TR_NONE, NULL, TPM2_SE_POLICY, &no_symmetric,
	                           TPM2_ALG_SHA256, session);
	if (rc != TSS2_RC_SUCCESS)
		return tss_fail("Esys_StartAuthSession", rc);
	rc = Esys_PolicySecret(t->esys, ESYS_TR_RH_ENDORSEMENT, *session, ESYS_TR_PASSWORD,
	                       ESYS_TR_NONE, ESYS_TR_NONE, NULL, NULL, NULL, 0, NULL, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		flush(t, session);
		return tss_fail("Esys_PolicySecret", rc);
	}
	return DG_OK;
}

/* Create and load the AK under the EK; each use of the EK needs a fresh policy. */
static int
create_ak(struct dg_tpm *t, ESYS_TR ek, TPM2_HANDLE handle, ESYS_TR *out)
{
	const TPM2B_SENSITIVE_CREATE no_auth = { 0 };
	const TPM2B_DATA no_outside_info = { 0 };
	const TPML_PCR_SELECTION no_pcrs = { 0 };
	ESYS_TR session = ESYS_TR_NONE;
	ESYS_TR transient = ESYS_TR_NONE;
	TPM2B_PRIVATE *private = NULL;
	TPM2B_PUBLIC *public = NULL;
	TSS2_RC rc;
	int err;

	err = ek_policy_session(t, &session);
	if (err != DG_OK)
		goto out;
	rc = Esys_Create(t->esys, ek, session, ESYS_TR_NONE, ESYS_TR_NONE, &no_auth, &ak_template,
	                 &no_outside_info, &no_pcrs, &private, &public, NULL, NULL, NULL);
	flush(t, &session);
	if (rc != TSS2_RC_SUCCESS) {
		err = tss_fail("Esys_Create", rc);
		goto out;
	}
	err = ek_policy_session(t, &session);
	if (err != DG_OK)
		goto out;
	rc = Esys_Load(t->esys, ek, session, ESYS_TR_NONE, ESYS_TR_NONE, private, public,
	               &transient);
	flush(t, &session);
	if (rc != TSS2_RC_SUCCESS) {
		err = tss_fail("Esys_Load", rc);
		goto out;
	}
	err = persist(t, &transient, handle, out);
out:
	Esys_Free(private);
	Esys_Free(public);
	return err;
}

static int
marshal_public(struct dg_tpm *t, ESYS_TR key, uint8_t *buf, size_t *len)
{
	TPM2B_PUBLIC *public = NULL;
	size_t offset = 0;
	TSS2_RC rc;
	int err;

	rc = Esys_ReadPublic(t->esys, key, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &public,
	                     NULL, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		err = tss_fail("Esys_ReadPublic", rc);
		goto out;
	}
	rc = Tss2_MU_TPM2B_PUBLIC_Marshal(public, buf, PUBLIC_CAP, &offset);
	if (rc != TSS2_RC_SUCCESS) {
		err = marshal_fail(rc);
		goto out;
	}
	*len = offset;
	err = DG_OK;
out:
	Esys_Free(public);
	return err;
}

static int
load_persistent(struct dg_tpm *t, TPM2_HANDLE handle, ESYS_TR *out)
{
	TSS2_RC rc = Esys_TR_FromTPMPublic(t->esys, handle, ESYS_TR_NONE, ESYS_TR_NONE,
	                                   ESYS_TR_NONE, out);
	if (rc != TSS2_RC_SUCCESS)
		return tss_fail("Esys_TR_FromTPMPublic", rc);
	return DG_OK;
}

/* Drops ESYS's metadata for a handle; the TPM object itself stays. */
static void
close_tr(struct dg_tpm *t, ESYS_TR *handle)
{
	if (*handle != ESYS_TR_NONE)
		Esys_TR_Close(t->esys, handle);
}

static bool
is_persistent(uint32_t handle)
{
	/* Not TPM2_PERSISTENT_FIRST/LAST: those macros shift a signed int into the sign bit. */
	return handle >> TPM2_HR_SHIFT == TPM2_HT_PERSISTENT;
}

int
dg_tpm_keys(struct dg_tpm *t, uint32_t ek_handle, uint32_t ak_handle,
            uint8_t *ek_pub, size_t *ek_pub_len,
            uint8_t *ak_pub, size_t *ak_pub_len)
{
	ESYS_TR ek = ESYS_TR_NONE;
	ESYS_TR ak = ESYS_TR_NONE;
	bool exists;
	int err;

	if (t == NULL || ek_pub == NULL || ek_pub_len == NULL || ak_pub == NULL ||
	    ak_pub_len == NULL || !is_persistent(ek_handle) || !is_persistent(ak_handle) ||
	    ek_handle == ak_handle)
		return DG_ERR_INVAL;
	/* Loaded already: ESYS hands out one ESYS_TR per TPM handle, so loading
	 * again would return (and then close) the very same objects. */
	if (t->ek != ESYS_TR_NONE && t->ak != ESYS_TR_NONE) {
		err = marshal_public(t, t->ek, ek_pub, ek_pub_len);
		return err != DG_OK ? err : marshal_public(t, t->ak, ak_pub, ak_pub_len);
	}
	err = handle_exists(t, ek_handle, &exists);
	if (err != DG_OK)
		goto out;
	err = exists ? load_persistent(t, ek_handle, &ek) : create_ek(t, ek_handle, &ek);
	if (err != DG_OK)
		goto out;
	err = handle_exists(t, ak_handle, &exists);
	if (err != DG_OK)
		goto out;
	err = exists ? load_persistent(t, ak_handle, &ak) : create_ak(t, ek, ak_handle, &ak);
	if (err != DG_OK)
		goto out;
	err = marshal_public(t, ek, ek_pub, ek_pub_len);
	if (err != DG_OK)
		goto out;
	err = marshal_public(t, ak, ak_pub, ak_pub_len);
	if (err != DG_OK)
		goto out;
	close_tr(t, &t->ek);
	close_tr(t, &t->ak);
	t->ek = ek;
	t->ak = ak;
	ek = ESYS_TR_NONE;
	ak = ESYS_TR_NONE;
out:
	close_tr(t, &ek);
	close_tr(t, &ak);
	return err;
}

/* Bytes one TPM2_NV_Read may ask for: what the TPM reports, and never more than
 * a TPM2B_MAX_NV_BUFFER holds. */
static int
nv_chunk_size(struct dg_tpm *t, uint16_t *chunk)
{
	TPMS_CAPABILITY_DATA *cap = NULL;
	uint32_t reported = 0;
	TSS2_RC rc = Esys_GetCapability(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
	                                TPM2_CAP_TPM_PROPERTIES, TPM2_PT_NV_BUFFER_MAX, 1, NULL,
	                                &cap);
	if (rc != TSS2_RC_SUCCESS)
		return tss_fail("Esys_GetCapability", rc);
	if (cap->data.tpmProperties.count > 0 &&
	    cap->data.tpmProperties.tpmProperty[0].property == TPM2_PT_NV_BUFFER_MAX)
		reported = cap->data.tpmProperties.tpmProperty[0].value;
	Esys_Free(cap);
	/* The property is mandatory; a TPM that omits it gets small reads, which
	 * cost a few more round trips and nothing else. */
	if (reported == 0)
		reported = 256;
	*chunk = (uint16_t)(reported < TPM2_MAX_NV_BUFFER_SIZE ? reported : TPM2_MAX_NV_BUFFER_SIZE);
	return DG_OK;
}

/* Length of the DER SEQUENCE at the start of buf, or len if it does not parse:
 * some TPMs size the certificate's index larger than the certificate and pad
 * it, and the verifier accepts exactly one DER structure, nothing after it. */
static size_t
der_outer_length(const uint8_t *buf, size_t len)
{
	size_t header, body = 0, n;

	if (len < 2 || buf[0] != 0x30)
		return len;
	if (buf[1] < 0x80) {
		header = 2;
		body = buf[1];
	} else {
		n = buf[1] & 0x7fu; /* long form: n length bytes follow */
		if (n == 0 || n > 3 || len < 2 + n)
			return len;
		for (size_t i = 0; i < n; i++)
			body = body << 8 | buf[2 + i];
		header = 2 + n;
	}
	return body <= len - header ? header + body : len;
}

int
dg_tpm_ek_cert(struct dg_tpm *t, uint8_t *out, size_t cap, size_t *len)
{
	const TPM2_HANDLE index = DG_TPM_EK_CERT_NV_RSA;
	ESYS_TR nv = ESYS_TR_NONE, auth;
	TPM2B_NV_PUBLIC *pub = NULL;
	TPM2B_MAX_NV_BUFFER *data = NULL;
	TPMA_NV attrs;
	uint16_t size, chunk;
	bool exists;
	TSS2_RC rc;
	int err;

	if (t == NULL || out == NULL || len == NULL)
		return DG_ERR_INVAL;
	*len = 0;
	/* Asking first keeps "no certificate", the common case on virtual TPMs,
	 * apart from a TPM that fails. */
	if ((err = handle_exists(t, index, &exists)) != DG_OK)
		goto out;
	if (!exists) {
		err = DG_ERR_NOTFOUND;
		goto out;
	}
	rc = Esys_TR_FromTPMPublic(t->esys, index, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &nv);
	if (rc != TSS2_RC_SUCCESS) {
		err = tss_fail("Esys_TR_FromTPMPublic", rc);
		goto out;
	}
	rc = Esys_NV_ReadPublic(t->esys, nv, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		err = tss_fail("Esys_NV_ReadPublic", rc);
		goto out;
	}
	attrs = pub->nvPublic.attributes;
	size = pub->nvPublic.dataSize;
	if (!(attrs & TPMA_NV_WRITTEN) || size == 0) {
		err = DG_ERR_NOTFOUND; /* defined, but no certificate in it */
		goto out;
	}
	if (((attrs & TPMA_NV_TPM2_NT_MASK) >> TPMA_NV_TPM2_NT_SHIFT) != TPM2_NT_ORDINARY) {
		err = DG_ERR_FORMAT;
		goto out;
	}
	if (size > cap) {
		err = DG_ERR_TOOBIG;
		goto out;
	}
	/* The TCG profile makes EK certificate indices readable with an empty
	 * authValue (AUTHREAD) and by the owner; the index's own auth does not
	 * depend on whether an owner password was set. */
	if (attrs & TPMA_NV_AUTHREAD) {
		auth = nv;
	} else if (attrs & TPMA_NV_OWNERREAD) {
		auth = ESYS_TR_RH_OWNER;
	} else {
		err = DG_ERR_UNSUPPORTED;
		goto out;
	}
	if ((err = nv_chunk_size(t, &chunk)) != DG_OK)
		goto out;
	for (uint16_t off = 0; off < size;) {
		uint16_t n = (uint16_t)(size - off < chunk ? size - off : chunk);
		rc = Esys_NV_Read(t->esys, auth, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, n,
		                  off, &data);
		if (rc != TSS2_RC_SUCCESS) {
			err = tss_fail("Esys_NV_Read", rc);
			goto out;
		}
		if (data->size != n) {
			err = DG_ERR_FORMAT;
			goto out;
		}
		memcpy(out + off, data->buffer, n);
		off = (uint16_t)(off + n);
		Esys_Free(data);
		data = NULL;
	}
	*len = der_outer_length(out, size);
	err = DG_OK;
out:
	Esys_Free(data);
	Esys_Free(pub);
	close_tr(t, &nv);
	return err;
}

int
dg_tpm_activate(struct dg_tpm *t, const uint8_t *id_object, size_t id_object_len,
                const uint8_t *enc_secret, size_t enc_secret_len,
                uint8_t *credential, size_t cap, size_t *credential_len)
{
	TPM2B_ID_OBJECT blob = { 0 };
	TPM2B_ENCRYPTED_SECRET secret = { 0 };
	TPM2B_DIGEST *cert_info = NULL;
	ESYS_TR session = ESYS_TR_NONE;
	size_t offset = 0;
	TSS2_RC rc;
	int err;

	if (t == NULL || id_object == NULL || enc_secret == NULL || credential == NULL ||
	    credential_len == NULL)
		return DG_ERR_INVAL;
	if (t->ek == ESYS_TR_NONE || t->ak == ESYS_TR_NONE)
		return DG_ERR_STATE;
	rc = Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(id_object, id_object_len, &offset, &blob);
	if (rc != TSS2_RC_SUCCESS)
		return unmarshal_fail(rc);
	if (offset != id_object_len)
		return DG_ERR_TRAILING;
	offset = 0;
	rc = Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(enc_secret, enc_secret_len, &offset,
	                                              &secret);
	if (rc != TSS2_RC_SUCCESS)
		return unmarshal_fail(rc);
	if (offset != enc_secret_len)
		return DG_ERR_TRAILING;

	err = ek_policy_session(t, &session);
	if (err != DG_OK)
		goto out;
	rc = Esys_ActivateCredential(t->esys, t->ak, t->ek, ESYS_TR_PASSWORD, session,
	                             ESYS_TR_NONE, &blob, &secret, &cert_info);
	if (rc != TSS2_RC_SUCCESS) {
		err = tss_fail("Esys_ActivateCredential", rc);
		goto out;
	}
	if (cert_info->size > cap) {
		err = DG_ERR_TOOBIG;
		goto out;
	}
	memcpy(credential, cert_info->buffer, cert_info->size);
	*credential_len = cert_info->size;
	err = DG_OK;
out:
	flush(t, &session);
	if (cert_info != NULL)
		explicit_bzero(cert_info, sizeof *cert_info);
	Esys_Free(cert_info);
	return err;
}

int
dg_tpm_extend(struct dg_tpm *t, uint32_t pcr, const uint8_t digest[32])
{
	TPML_DIGEST_VALUES values = {
		.count = 1,
		.digests[0].hashAlg = TPM2_ALG_SHA256,
	};

	if (t == NULL || digest == NULL || pcr >= PCR_COUNT)
		return DG_ERR_INVAL;
	memcpy(values.digests[0].digest.sha256, digest, TPM2_SHA256_DIGEST_SIZE);
	TSS2_RC rc = Esys_PCR_Extend(t->esys, ESYS_TR_PCR0 + pcr, ESYS_TR_PASSWORD, ESYS_TR_NONE,
	                             ESYS_TR_NONE, &values);
	if (rc != TSS2_RC_SUCCESS)
		return tss_fail("Esys_PCR_Extend", rc);
	return DG_OK;
}

int
dg_tpm_pcr_read(struct dg_tpm *t, uint32_t pcr, uint8_t out[32])
{
	TPML_PCR_SELECTION sel;
	TPML_DIGEST *values = NULL;
	TSS2_RC rc;
	int err;

	if (t == NULL || out == NULL || pcr >= PCR_COUNT)
		return DG_ERR_INVAL;
	sel = sha256_selection(pcr);
	rc = Esys_PCR_Read(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &sel, NULL, NULL,
	                   &values);
	if (rc != TSS2_RC_SUCCESS) {
		err = tss_fail("Esys_PCR_Read", rc);
		goto out;
	}
	/* An unallocated sha256 bank or an absent PCR comes back as an empty list. */
	if (values->count != 1 || values->digests[0].size != TPM2_SHA256_DIGEST_SIZE) {
		err = DG_ERR_UNSUPPORTED;
		goto out;
	}
	memcpy(out, values->digests[0].buffer, TPM2_SHA256_DIGEST_SIZE);
	err = DG_OK;
out:
	Esys_Free(values);
	return err;
}

/* A TPM-signed structure as the wire carries it: the attest bytes and the
 * marshaled signature, into caller buffers. */
static int
export_signed(const TPM2B_ATTEST *signed_attest, const TPMT_SIGNATURE *signature,
              uint8_t *attest, size_t attest_cap, size_t *attest_len, uint8_t *sig,
              size_t sig_cap, size_t *sig_len)
{
	size_t offset = 0;
	TSS2_RC rc;

	if (signed_attest->size > attest_cap)
		return DG_ERR_TOOBIG;
	if ((rc = Tss2_MU_TPMT_SIGNATURE_Marshal(signature, sig, sig_cap, &offset)) !=
	    TSS2_RC_SUCCESS)
		return marshal_fail(rc);
	memcpy(attest, signed_attest->attestationData, signed_attest->size);
	*attest_len = signed_attest->size;
	*sig_len = offset;
	return DG_OK;
}

/* The caller's qualifying data as the TPM's extraData. */
static int
set_extra(TPM2B_DATA *extra, const uint8_t *qualifying, size_t qlen)
{
	if (qlen > sizeof extra->buffer)
		return DG_ERR_TOOBIG;
	if (qlen > 0)
		memcpy(extra->buffer, qualifying, qlen);
	extra->size = (UINT16)qlen;
	return DG_OK;
}

int
dg_tpm_quote(struct dg_tpm *t, uint32_t pcr, const uint8_t *qualifying, size_t qlen,
             uint8_t *attest, size_t attest_cap, size_t *attest_len,
             uint8_t *sig, size_t sig_cap, size_t *sig_len)
{
	const TPMT_SIG_SCHEME key_scheme = { .scheme = TPM2_ALG_NULL };
	TPM2B_DATA extra = { 0 };
	TPML_PCR_SELECTION sel;
	TPM2B_ATTEST *quoted = NULL;
	TPMT_SIGNATURE *signature = NULL;
	TSS2_RC rc;
	int err;

	if (t == NULL || (qualifying == NULL && qlen > 0) || attest == NULL ||
	    attest_len == NULL || sig == NULL || sig_len == NULL || pcr >= PCR_COUNT)
		return DG_ERR_INVAL;
	if (t->ak == ESYS_TR_NONE)
		return DG_ERR_STATE;
	if ((err = set_extra(&extra, qualifying, qlen)) != DG_OK)
		return err;
	sel = sha256_selection(pcr);
	rc = Esys_Quote(t->esys, t->ak, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &extra,
	                &key_scheme, &sel, &quoted, &signature);
	if (rc != TSS2_RC_SUCCESS) {
		err = tss_fail("Esys_Quote", rc);
		goto out;
	}
	err = export_signed(quoted, signature, attest, attest_cap, attest_len, sig, sig_cap,
	                    sig_len);
out:
	Esys_Free(quoted);
	Esys_Free(signature);
	return err;
}

static int
create_bind(struct dg_tpm *t, TPM2_HANDLE handle, ESYS_TR *out)
{
	const TPM2B_SENSITIVE_CREATE no_auth = { 0 };
	const TPM2B_DATA no_outside_info = { 0 };
	const TPML_PCR_SELECTION no_pcrs = { 0 };
	ESYS_TR transient = ESYS_TR_NONE;

	TSS2_RC rc = Esys_CreatePrimary(t->esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
	                                ESYS_TR_NONE, &no_auth, &bind_template, &no_outside_info,
	                                &no_pcrs, &transient, NULL, NULL, NULL, NULL);
	if (rc != TSS2_RC_SUCCESS)
		return tss_fail("Esys_CreatePrimary", rc);
	return persist(t, &transient, handle, out);
}

int
dg_tpm_bind_key(struct dg_tpm *t, uint32_t handle, uint8_t *pub, size_t *pub_len)
{
	ESYS_TR bind = ESYS_TR_NONE;
	bool exists;
	int err;

	if (t == NULL || pub == NULL || pub_len == NULL || !is_persistent(handle))
		return DG_ERR_INVAL;
	/* Loaded already: ESYS hands out one ESYS_TR per TPM handle. */
	if (t->bind != ESYS_TR_NONE)
		return marshal_public(t, t->bind, pub, pub_len);
	if ((err = handle_exists(t, handle, &exists)) != DG_OK)
		goto out;
	err = exists ? load_persistent(t, handle, &bind) : create_bind(t, handle, &bind);
	if (err != DG_OK || (err = marshal_public(t, bind, pub, pub_len)) != DG_OK)
		goto out;
	t->bind = bind;
	bind = ESYS_TR_NONE;
out:
	close_tr(t, &bind);
	return err;
}

int
dg_tpm_certify_bind(struct dg_tpm *t, const uint8_t *qualifying, size_t qlen, uint8_t *attest,
                    size_t attest_cap, size_t *attest_len, uint8_t *sig, size_t sig_cap,
                    size_t *sig_len)
{
	const TPMT_SIG_SCHEME key_scheme = { .scheme = TPM2_ALG_NULL };
	TPM2B_DATA extra = { 0 };
	TPM2B_ATTEST *certified = NULL;
	TPMT_SIGNATURE *signature = NULL;
	TSS2_RC rc;
	int err;

	if (t == NULL || (qualifying == NULL && qlen > 0) || attest == NULL ||
	    attest_len == NULL || sig == NULL || sig_len == NULL)
		return DG_ERR_INVAL;
	if (t->ak == ESYS_TR_NONE || t->bind == ESYS_TR_NONE)
		return DG_ERR_STATE;
	if ((err = set_extra(&extra, qualifying, qlen)) != DG_OK)
		return err;
	rc = Esys_Certify(t->esys, t->bind, t->ak, ESYS_TR_PASSWORD, ESYS_TR_PASSWORD,
	                  ESYS_TR_NONE, &extra, &key_scheme, &certified, &signature);
	if (rc != TSS2_RC_SUCCESS) {
		err = tss_fail("Esys_Certify", rc);
		goto out;
	}
	err = export_signed(certified, signature, attest, attest_cap, attest_len, sig, sig_cap,
	                    sig_len);
out:
	Esys_Free(certified);
	Esys_Free(signature);
	return err;
}

/* A coordinate as the TPM wants it: minimal, without leading zero bytes. */
static void
set_coord(TPM2B_ECC_PARAMETER *p, const uint8_t *v, size_t len)
{
	while (len > 1 && v[0] == 0) {
		v++;
		len--;
	}
	memcpy(p->buffer, v, len);
	p->size = (UINT16)len;
}

int
dg_tpm_zgen(struct dg_tpm *t, const uint8_t point[64], uint8_t z[32])
{
	TPM2B_ECC_POINT in = { 0 };
	TPM2B_ECC_POINT *shared = NULL;
	TSS2_RC rc;
	int err;

	if (t == NULL || point == NULL || z == NULL)
		return DG_ERR_INVAL;
	if (t->bind == ESYS_TR_NONE)
		return DG_ERR_STATE;
	set_coord(&in.point.x, point, 32);
	set_coord(&in.point.y, point + 32, 32);
	rc = Esys_ECDH_ZGen(t->esys, t->bind, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &in,
	                    &shared);
	if (rc != TSS2_RC_SUCCESS) {
		/* A point off the curve is the sender's fault, not the TPM's. */
		err = (rc & 0xfff) == TPM2_RC_ECC_POINT ? DG_ERR_CRYPTO : tss_fail("Esys_ECDH_ZGen", rc);
		goto out;
	}
	if (shared->point.x.size == 0 || shared->point.x.size > 32) {
		err = DG_ERR_TPM;
		goto out;
	}
	memset(z, 0, 32 - shared->point.x.size);
	memcpy(z + 32 - shared->point.x.size, shared->point.x.buffer, shared->point.x.size);
	err = DG_OK;
out:
	if (shared != NULL)
		OPENSSL_cleanse(shared, sizeof *shared);
	Esys_Free(shared);
	return err;
}
