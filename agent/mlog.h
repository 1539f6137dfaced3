/*
 * The agent's durable measurement log: the kernel binary format, appended and
 * fdatasync'ed *before* the entry is extended into the PCR. Because only one
 * entry is ever in flight, a crash leaves the file either equal to the PCR or
 * one entry ahead of it (or with a torn, never-extended tail): dg_mlog_open
 * drops a torn tail and dg_mlog_reconcile says which entries still need to be
 * extended, so a restart loses no measurement and raises no false alarm.
 */
#ifndef DRIFTGATE_AGENT_MLOG_H
#define DRIFTGATE_AGENT_MLOG_H

#include <stddef.h>
#include <stdint.h>

struct dg_mlog;

/* Open (create 0600 if missing) and validate the log at path. A partial last
 * entry is truncated away; any other corruption is DG_ERR_FORMAT. */
int dg_mlog_open(const char *path, struct dg_mlog **out);
void dg_mlog_close(struct dg_mlog *l);

uint64_t dg_mlog_count(const struct dg_mlog *l);

/* Durably append one encoded entry (dg_log_encode output). */
int dg_mlog_append(struct dg_mlog *l, const uint8_t *entry, size_t len);

/* Bytes of entries [from, count). DG_ERR_INVAL if from > count. */
int dg_mlog_since(const struct dg_mlog *l, uint64_t from, const uint8_t **data,
                  size_t *len);

/*
 * Compare the log with the TPM's sha256 value of the agent's PCR. On DG_OK *in_pcr is the
 * number of leading entries the PCR already holds (count, or count - 1 after a
 * crash between append and extend). DG_ERR_STATE if the PCR is zero but the
 * log is not (a reboot: the caller starts a new log) and DG_ERR_PCR_DIGEST if
 * they cannot be reconciled.
 */
int dg_mlog_reconcile(const struct dg_mlog *l, const uint8_t tpm_value[32],
                      uint64_t *in_pcr);

/* Template hash (sha256 bank) of entry i, the digest the TPM is extended with. */
int dg_mlog_entry_digest(const struct dg_mlog *l, uint64_t i, uint8_t out[32]);

/* Move the log aside as path + ".boot-<n>" and start an empty one. */
int dg_mlog_rotate(struct dg_mlog *l);

#endif
