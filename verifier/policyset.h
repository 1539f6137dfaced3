/*
 * The policies in force, from one directory:
 *   *.baseline            file baselines (policy.h)
 *   NAME.workload         workloads (workload.h), each with NAME.d/<container>.record
 *                         and NAME.d/<container>.manifest beside it
 */
#ifndef DRIFTGATE_VERIFIER_POLICYSET_H
#define DRIFTGATE_VERIFIER_POLICYSET_H

#include <stddef.h>

#include "driftgate/policy.h"
#include "driftgate/workload.h"

struct dg_policyset;

#define DG_POLICYSET_VERSION_LEN 16 /* hex digits */

/* Load every baseline and workload in dir (sorted by file name). Any bad file
 * fails the whole load with "file: line N: ..." in err: a half-loaded policy
 * set could wrongly pass or fail agents. */
int dg_policyset_load(const char *dir, struct dg_policyset **out, char *err, size_t err_cap);
void dg_policyset_free(struct dg_policyset *s);
size_t dg_policyset_count(const struct dg_policyset *s);
/* The set's version: the first 64 bits, in hex, of SHA-256 over every file
 * loaded (name, length, content, in load order). Same files, same version. */
const char *dg_policyset_version(const struct dg_policyset *s);
/* The first baseline (in file-name order) whose agent patterns match id. */
const struct dg_policy *dg_policyset_for_agent(const struct dg_policyset *s, const char *id);
/* All workloads, for appraisal of container events. */
const struct dg_workload *const *dg_policyset_workloads(const struct dg_policyset *s, size_t *n);
/* The workload named name, or NULL. */
const struct dg_workload *dg_policyset_workload(const struct dg_policyset *s, const char *name);

#endif
