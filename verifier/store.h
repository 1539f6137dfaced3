/*
 * The verifier's durable per-agent state: one SQLite database in WAL mode
 * with synchronous=FULL, so that once dg_store_save returns the state is on
 * disk, and a verifier killed at any moment (SIGKILL, power loss) restarts
 * where its last acknowledged verdict left it.
 *
 * Durable, per activated agent: its identity (EK and AK public areas, AK name,
 * PCR), its replay position (both PCR banks, used mask, entry count), the last
 * clockInfo, the sticky drift reasons and the container state. Not durable:
 * nonces and enrollment challenges. They live for seconds; a restart
 * invalidates them and the agent asks again (a round in flight across a
 * restart gets an error, not a verdict). An agent that enrolled but never
 * completed activation is not stored either: it enrolls again.
 *
 * Everything read back is treated as untrusted: a row that does not hold
 * together is an error at load, never a crash and never a silently reset
 * agent. One verifier owns a state file at a time (an flock held while it is
 * open): two would overwrite each other's agents. Readers may open it at any
 * time (dg_store_open_readonly): WAL gives them the last committed state and
 * never makes a save wait for them.
 */
#ifndef DRIFTGATE_VERIFIER_STORE_H
#define DRIFTGATE_VERIFIER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "registry.h"

#define DG_STORE_MEMORY ":memory:" /* a store that dies with the process (tests) */
#define DG_STORE_SCHEMA_VERSION 1

struct dg_store;

/*
 * Open (creating a missing file, mode 0600) and check the schema. err
 * receives a readable reason. DG_ERR_PERM if the file is not a regular file
 * of the verifier's user or group or others may write it (whoever can write
 * it can clear an agent's drift); DG_ERR_STATE if another process has it
 * open; DG_ERR_UNSUPPORTED for another schema version; DG_ERR_FORMAT for a
 * database that is not a driftgate state; DG_ERR_IO otherwise.
 */
int dg_store_open(const char *path, struct dg_store **out, char *err, size_t err_cap);
void dg_store_close(struct dg_store *s);

/*
 * Add every stored agent to r (which must hold none of them yet) as
 * activated, its AK key rebuilt from the stored public area. A row that does
 * not hold together (types, lengths, keys that do not import or whose name
 * differs, replay state for another PCR, undecodable containers, drift rows
 * out of sequence or for no agent) is DG_ERR_FORMAT (DG_ERR_TOOBIG past a
 * bound) with err naming the agent and the field; the caller then discards r.
 */
int dg_store_load(struct dg_store *s, struct dg_registry *r, char *err, size_t err_cap);

/* Write a's identity and state (not its nonce or challenge) in one
 * transaction; durable when DG_OK is returned, unchanged otherwise. Inside a
 * batch: part of the batch's transaction (a failed save undoes only itself),
 * durable once dg_store_batch_commit returns DG_OK. */
int dg_store_save(struct dg_store *s, const struct dg_agent_rec *a);

/*
 * Group commit: saves between begin and commit share one transaction and one
 * sync to disk. If the commit fails none of them is stored, while the caller's
 * memory already holds them: the caller must not acknowledge any of them and
 * must stop (a restart reloads what is on disk).
 */
int dg_store_batch_begin(struct dg_store *s);
int dg_store_batch_commit(struct dg_store *s);

/*
 * For listings while a verifier may be running (driftgate-verifier status):
 * open an existing state read-only, without the verifier's lock and without
 * creating anything. DG_ERR_FORMAT for a database that is not a driftgate
 * state, DG_ERR_UNSUPPORTED for another schema version. A store opened so
 * serves dg_store_list only.
 */
int dg_store_open_readonly(const char *path, struct dg_store **out, char *err, size_t err_cap);

typedef int (*dg_store_list_fn)(const struct dg_agent_rec *a, void *arg);
/*
 * Call fn on every stored agent in id order, as dg_store_load would rebuild
 * it (every row checked the same way; at most DG_REGISTRY_MAX_AGENTS), all
 * from one committed state. a is valid during the call only. A non-DG_OK
 * return from fn stops the listing and is returned; a bad row is
 * DG_ERR_FORMAT with err naming the agent and the field.
 */
int dg_store_list(struct dg_store *s, dg_store_list_fn fn, void *arg, char *err, size_t err_cap);

/*
 * PostgreSQL: a path that is a libpq connection URI (postgresql://...,
 * postgres://...) opens a database that several verifiers share, with the
 * same tables and the same checks on every row read back. No flock there:
 * any verifier may serve any agent, so a verifier must not trust its memory
 * of an agent. Each round (enrollment, NONCE_REQ, ATTEST) runs in one
 * transaction that locks the agent (dg_store_round_begin), re-reads its row
 * (dg_store_fetch), and ends with dg_store_round_end; dg_store_save inside
 * it is part of it. Nonces live in the agent's row, so that one issued by
 * one verifier is consumed once, at whichever verifier. Batches are no-ops
 * there: every round commits on its own.
 */
bool dg_store_shared(const struct dg_store *s);
/* Begin the round's transaction and lock agent id (whether stored or not)
 * until its end. DG_ERR_UNSUPPORTED for SQLite. */
int dg_store_round_begin(struct dg_store *s, const char *id);
/* Commit (or roll back) the round; DG_OK also when none is open. */
int dg_store_round_end(struct dg_store *s, bool commit);
/* The stored agent id into a (zeroed, or reset with its AK and containers
 * freed by the caller), every field checked as dg_store_load checks it.
 * DG_ERR_NOTFOUND if not stored. */
int dg_store_fetch(struct dg_store *s, const char *id, struct dg_agent_rec *a, char *err,
                   size_t err_cap);
/* Store the agent's one live nonce, valid ttl_ms by the database's clock. */
int dg_store_nonce_put(struct dg_store *s, const char *id, const uint8_t *nonce, size_t len,
                       unsigned ttl_ms);
/* Consume nonce if it is the agent's live, unexpired one: DG_OK once, then
 * DG_ERR_NONCE (also for an unknown or expired one, which is retired too). */
int dg_store_nonce_take(struct dg_store *s, const char *id, const uint8_t *nonce, size_t len);

#endif
