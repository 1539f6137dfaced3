/*
 * driftgate-verifier status: the agents a state database records, read
 * without disturbing a verifier that is running on it (store.h,
 * dg_store_open_readonly). One row per agent: id, state (enrolled, pass,
 * fail: dg_registry_state), log entries replayed, the last resetCount,
 * containers known and, for a failed agent, its drift reasons.
 */
#ifndef DRIFTGATE_VERIFIER_STATUS_H
#define DRIFTGATE_VERIFIER_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/*
 * Print the agents of the state at path to out: a table with a header line
 * and aligned columns, or (json) one document {"agents": [{"id", "state",
 * "entries", "reset_count" (null before the first proven round),
 * "containers", "reasons": [{"code", "detail"}]}]}. Store errors as
 * dg_store_open_readonly and dg_store_list return them, with err naming the
 * cause; DG_ERR_IO if out cannot be written.
 */
int dg_status_print(const char *path, bool json, FILE *out, char *err, size_t err_cap);

#endif
