/* The baseline generator: an approved tree in, a reviewable baseline out. */
#ifndef DRIFTGATE_VERIFIER_BASELINE_H
#define DRIFTGATE_VERIFIER_BASELINE_H

#include <stdio.h>

struct dg_baseline_spec {
	const char *name;
	const char *const *agents;   /* fnmatch patterns */
	size_t n_agents;
	const char *const *secrets;
	size_t n_secrets;
	const char *const *excludes; /* regexes */
	size_t n_excludes;
	const char *const *roots;    /* absolute files or directories to hash */
	size_t n_roots;
};

/* Hash every regular file under the roots (symlinks are not followed) and
 * write the baseline to out, files in sorted order so regenerating an
 * unchanged tree gives an identical file. */
int dg_baseline_generate(const struct dg_baseline_spec *spec, FILE *out);

#endif
