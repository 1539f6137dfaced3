/*
 * Wire messages between agent and verifier: one CBOR map per message,
 * text keys, encoded and strictly decoded with libcbor. The decoder bounds
 * every length before it copies, rejects unknown, duplicate and missing
 * fields, indefinite lengths, and nesting deeper than the schema.
 * TPM structures travel as Tss2_MU-marshaled byte strings. An optional field
 * is either absent or non-empty (non-zero), so each message has one encoding.
 * A scope names who a secret is for: a container id, or "" for the node.
 *
 *   type              fields (all required unless marked optional)
 *   ENROLL_REQ        agent_id, ek_pub, ak_pub, pcr, ek_cert (optional: the DER EK
 *                     certificate from the TPM's NV index; omitted, never empty,
 *                     when the TPM has none)
 *   ENROLL_CHALLENGE  id_object, enc_secret
 *   ENROLL_ACTIVATE   agent_id, credential
 *   ENROLL_DONE       (none)
 *   NONCE_REQ         agent_id
 *   NONCE             nonce, log_from, pcr
 *   ATTEST            agent_id, nonce, attest, signature, log_from, log; optional:
 *                     manifests ([container id, rootfs manifest] for the
 *                     containers the new entries create), request (the one
 *                     secret this round asks for: [scope, secret name]),
 *                     bind_key, bind_attest, bind_sig (with a request: the TPM
 *                     key to seal to, and TPM2_Certify of it by the AK),
 *                     leases ([scope, name] of every secret the agent holds,
 *                     to renew)
 *   VERDICT           pass, reasons; optional: sealed (only when pass; the
 *                     requested secret), lease_ms (with sealed or renewed),
 *                     renewed (the held leases that stand), refused (why the
 *                     request got nothing although the node passed)
 *   ERROR             code, message
 */
#ifndef DRIFTGATE_WIRE_H
#define DRIFTGATE_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "driftgate/verdict.h"

#define DG_WIRE_MAX_MSG (64u * 1024 * 1024)  /* whole message */
#define DG_WIRE_MAX_AGENT_ID 64
#define DG_WIRE_MAX_KEY 1024                 /* TPM2B_PUBLIC */
#define DG_WIRE_MAX_EK_CERT 4096             /* DER EK certificate (real ones: 1-2 KiB) */
#define DG_WIRE_MAX_BLOB 1024                /* id_object, enc_secret, attest, signature */
#define DG_WIRE_MAX_LOG (48u * 1024 * 1024)  /* log bytes in one ATTEST */
#define DG_WIRE_MAX_SECRET_NAME 64
#define DG_WIRE_MAX_SEALED 8192              /* one sealed secret */
#define DG_WIRE_MAX_SECRETS 16
#define DG_WIRE_MAX_BLOB_NAME 128            /* container ids; secret names stay <= 64 */
#define DG_WIRE_MAX_MANIFEST (8u * 1024 * 1024) /* one rootfs manifest */
#define DG_WIRE_MAX_MANIFESTS 16
#define DG_WIRE_MAX_MESSAGE_TEXT 256
#define DG_WIRE_MAX_LEASES 64                /* secrets one agent holds at once */

enum dg_msg_type {
	DG_MSG_ENROLL_REQ = 1,
	DG_MSG_ENROLL_CHALLENGE,
	DG_MSG_ENROLL_ACTIVATE,
	DG_MSG_ENROLL_DONE,
	DG_MSG_NONCE_REQ,
	DG_MSG_NONCE,
	DG_MSG_ATTEST,
	DG_MSG_VERDICT,
	DG_MSG_ERROR,
};

struct dg_bytes {
	uint8_t *data; /* owned by the message */
	size_t len;
};

/* A named byte string: a sealed secret (dg_seal output) or a manifest. */
struct dg_named_blob {
	char name[DG_WIRE_MAX_BLOB_NAME + 1];
	struct dg_bytes blob;
};

/* Who a secret is for, and which: scope is a container id, "" for the node. */
struct dg_lease_ref {
	char scope[DG_WIRE_MAX_BLOB_NAME + 1];
	char secret[DG_WIRE_MAX_SECRET_NAME + 1];
};

/* One flat struct for every message type; fields not used by a type are zero. */
struct dg_msg {
	enum dg_msg_type type;
	char agent_id[DG_WIRE_MAX_AGENT_ID + 1];
	struct dg_bytes ek_pub, ak_pub;
	struct dg_bytes ek_cert;                     /* ENROLL_REQ, optional */
	struct dg_bytes id_object, enc_secret, credential;
	struct dg_bytes nonce;
	struct dg_bytes attest, signature;
	struct dg_bytes bind_key, bind_attest, bind_sig; /* ATTEST with a request */
	struct dg_bytes log;
	uint64_t log_from;
	uint32_t pcr;
	size_t n_request;                            /* ATTEST: 0 or 1 */
	struct dg_lease_ref request[1];
	size_t n_leases;                             /* ATTEST: held, to renew */
	struct dg_lease_ref leases[DG_WIRE_MAX_LEASES];
	bool pass;
	size_t n_reasons;
	struct dg_reason reasons[DG_VERDICT_MAX_REASONS];
	size_t n_sealed;
	struct dg_named_blob sealed[DG_WIRE_MAX_SECRETS];
	size_t n_manifests;
	struct dg_named_blob manifests[DG_WIRE_MAX_MANIFESTS];
	uint32_t lease_ms;                           /* VERDICT: lease of sealed and renewed */
	size_t n_renewed;                            /* VERDICT */
	struct dg_lease_ref renewed[DG_WIRE_MAX_LEASES];
	char refused[DG_WIRE_MAX_MESSAGE_TEXT + 1];  /* VERDICT */
	uint32_t code;                               /* ERROR: a dg_err */
	char message[DG_WIRE_MAX_MESSAGE_TEXT + 1];  /* ERROR */
};

/* Zero a message struct (no allocation). */
void dg_msg_init(struct dg_msg *m);
/* Free and cleanse every owned buffer, then zero the struct. */
void dg_msg_clear(struct dg_msg *m);
/* Copy len bytes into an owned field (cleared first). */
int dg_bytes_set(struct dg_bytes *b, const void *data, size_t len);

/* Encode m into a new buffer (*out, freed by the caller with free()). */
int dg_wire_encode(const struct dg_msg *m, uint8_t **out, size_t *out_len);
/* Strictly decode buf into m (dg_msg_init'ed by the callee). On error m is
 * cleared and nothing is retained. */
int dg_wire_decode(const uint8_t *buf, size_t len, struct dg_msg *m);

const char *dg_msg_type_name(enum dg_msg_type t);

#endif
