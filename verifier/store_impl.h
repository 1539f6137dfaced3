/*
 * Inside dg_store: what its two backends (SQLite in store.c, PostgreSQL in
 * store_pg.c) share. Each backend turns a row into dg_store_val columns; one
 * set of checks (dg_store_row_*) then decides whether it holds together, so
 * that a row is judged the same whichever database it came from.
 */
#ifndef DRIFTGATE_VERIFIER_STORE_IMPL_H
#define DRIFTGATE_VERIFIER_STORE_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* The agents columns, in this order, for the upsert and the load. */
#define DG_STORE_AGENT_COLUMNS                                                                 \
	"id, ek_pub, ak_pub, ak_name, pcr, replay_sha1, replay_sha256, replay_used, "          \
	"replay_entries, have_clock, clock, reset_count, restart_count, safe, containers"
enum dg_store_agent_column {
	C_ID, C_EK_PUB, C_AK_PUB, C_AK_NAME, C_PCR, C_SHA1, C_SHA256, C_USED, C_ENTRIES,
	C_HAVE_CLOCK, C_CLOCK, C_RESET, C_RESTART, C_SAFE, C_CONTAINERS, C_COUNT
};

enum dg_store_val_type { DG_STORE_NULL, DG_STORE_INT, DG_STORE_TEXT, DG_STORE_BLOB };

/* One column as read back; p/n valid until the backend moves to the next row. */
struct dg_store_val {
	enum dg_store_val_type type;
	int64_t i;        /* DG_STORE_INT */
	const uint8_t *p; /* DG_STORE_TEXT, DG_STORE_BLOB */
	size_t n;
};

/* The TPM clock is a uint64: kept bit for bit in a database's int64. */
/* err (may be NULL or err_cap 0) receives the formatted reason; both backends use it. */
void dg_store_set_err(char *err, size_t err_cap, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int64_t dg_store_u64_bits(uint64_t v);

/* v as an agent id into name; false (err set, naming row) if it is not one. */
bool dg_store_row_id(const struct dg_store_val *v, size_t row, char name[DG_WIRE_MAX_AGENT_ID + 1],
                     char *err, size_t err_cap);
/* Fill a (whose id is set) from the C_COUNT agents columns in row. DG_ERR_FORMAT
 * (or DG_ERR_NOMEM) with err naming the agent and the field. */
int dg_store_row_agent(const struct dg_store_val *row, struct dg_agent_rec *a, char *err,
                       size_t err_cap);
/* Append the reason in v[0] (seq), v[1] (code), v[2] (detail) to a's drift;
 * rows must come sorted by seq. */
int dg_store_row_reason(const struct dg_store_val *v, struct dg_agent_rec *a, char *err,
                        size_t err_cap);
/* Forget a's stored state (keys, containers): a zeroed record again. */
void dg_store_rec_reset(struct dg_agent_rec *a);

/* ---- PostgreSQL (store_pg.c); the same contracts as in store.h ---- */
struct dg_store_pg;
bool dg_store_pg_uri(const char *path);
int dg_store_pg_open(const char *uri, bool readonly, struct dg_store_pg **out, char *err,
                     size_t err_cap);
void dg_store_pg_close(struct dg_store_pg *s);
int dg_store_pg_load(struct dg_store_pg *s, struct dg_registry *r, char *err, size_t err_cap);
int dg_store_pg_save(struct dg_store_pg *s, const struct dg_agent_rec *a);
int dg_store_pg_list(struct dg_store_pg *s, dg_store_list_fn fn, void *arg, char *err,
                     size_t err_cap);
int dg_store_pg_round_begin(struct dg_store_pg *s, const char *id);
int dg_store_pg_round_end(struct dg_store_pg *s, bool commit);
int dg_store_pg_fetch(struct dg_store_pg *s, const char *id, struct dg_agent_rec *a, char *err,
                      size_t err_cap);
int dg_store_pg_nonce_put(struct dg_store_pg *s, const char *id, const uint8_t *nonce, size_t len,
                          unsigned ttl_ms);
int dg_store_pg_nonce_take(struct dg_store_pg *s, const char *id, const uint8_t *nonce,
                           size_t len);

#endif
