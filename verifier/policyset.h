/* The baselines in force: every *.baseline file of the policies directory. */
#ifndef DRIFTGATE_VERIFIER_POLICYSET_H
#define DRIFTGATE_VERIFIER_POLICYSET_H

#include <stddef.h>

#include "driftgate/policy.h"

struct dg_policyset;

/* Load every *.baseline in dir (sorted by file name). Any bad file fails the
 * whole load with "file: line N: ..." in err: a half-loaded policy set could
 * wrongly pass or fail agents. */
int dg_policyset_load(const char *dir, struct dg_policyset **out, char *err, size_t err_cap);
void dg_policyset_free(struct dg_policyset *s);
size_t dg_policyset_count(const struct dg_policyset *s);
/* The first baseline (in file-name order) whose agent patterns match id. */
const struct dg_policy *dg_policyset_for_agent(const struct dg_policyset *s, const char *id);

#endif
