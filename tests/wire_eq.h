/*
 * Field-by-field equality of two wire messages, for the round-trip property
 * decode(encode(m)) == m that the unit tests and the fuzz target both check.
 */
#ifndef DRIFTGATE_TESTS_WIRE_EQ_H
#define DRIFTGATE_TESTS_WIRE_EQ_H

#include <stdbool.h>
#include <string.h>

#include "driftgate/wire.h"

static inline bool
wire_bytes_eq(const struct dg_bytes *a, const struct dg_bytes *b)
{
	return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

static inline bool
wire_named_eq(const struct dg_named_blob *a, const struct dg_named_blob *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(a[i].name, b[i].name) != 0 || !wire_bytes_eq(&a[i].blob, &b[i].blob))
			return false;
	return true;
}

static inline bool
wire_leases_eq(const struct dg_lease_ref *a, const struct dg_lease_ref *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(a[i].scope, b[i].scope) != 0 || strcmp(a[i].secret, b[i].secret) != 0)
			return false;
	return true;
}

static inline bool
wire_msg_eq(const struct dg_msg *a, const struct dg_msg *b)
{
	const struct dg_bytes *fa[] = {&a->ek_pub, &a->ak_pub, &a->ek_cert, &a->id_object,
		&a->enc_secret, &a->credential, &a->nonce, &a->attest, &a->signature,
		&a->bind_key, &a->bind_attest, &a->bind_sig, &a->log};
	const struct dg_bytes *fb[] = {&b->ek_pub, &b->ak_pub, &b->ek_cert, &b->id_object,
		&b->enc_secret, &b->credential, &b->nonce, &b->attest, &b->signature,
		&b->bind_key, &b->bind_attest, &b->bind_sig, &b->log};

	for (size_t i = 0; i < sizeof fa / sizeof fa[0]; i++)
		if (!wire_bytes_eq(fa[i], fb[i]))
			return false;
	if (a->type != b->type || strcmp(a->agent_id, b->agent_id) != 0 ||
	    a->log_from != b->log_from || a->pcr != b->pcr || a->pass != b->pass ||
	    a->n_reasons != b->n_reasons || a->n_sealed != b->n_sealed ||
	    a->n_manifests != b->n_manifests || a->n_request != b->n_request ||
	    a->n_leases != b->n_leases || a->n_renewed != b->n_renewed ||
	    a->lease_ms != b->lease_ms || strcmp(a->refused, b->refused) != 0 ||
	    a->code != b->code || strcmp(a->message, b->message) != 0)
		return false;
	for (size_t i = 0; i < a->n_reasons; i++)
		if (strcmp(a->reasons[i].code, b->reasons[i].code) != 0 ||
		    strcmp(a->reasons[i].detail, b->reasons[i].detail) != 0)
			return false;
	return wire_named_eq(a->sealed, b->sealed, a->n_sealed) &&
	       wire_named_eq(a->manifests, b->manifests, a->n_manifests) &&
	       wire_leases_eq(a->request, b->request, a->n_request) &&
	       wire_leases_eq(a->leases, b->leases, a->n_leases) &&
	       wire_leases_eq(a->renewed, b->renewed, a->n_renewed);
}

#endif
