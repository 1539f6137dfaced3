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

/* One approved container of a workload: its name and its OCI bundle. */
struct dg_baseline_container {
	const char *name;
	const char *bundle;
};

struct dg_workload_spec {
	const char *name;
	const char *const *agents;
	size_t n_agents;
	const char *const *secrets;
	size_t n_secrets;
	const struct dg_baseline_container *containers;
	size_t n_containers;
};

/*
 * Write dir/<name>.workload and, per container, dir/<name>.d/<container>.record
 * (the canonical record of its config.json, with the workload and container
 * names set as the agent will see them) and .manifest (its rootfs manifest).
 * The bundle's annotations io.driftgate.workload / io.driftgate.container must
 * be absent or equal to those names, else the approval would never match.
 */
int dg_baseline_generate_workload(const struct dg_workload_spec *spec, const char *dir);

#endif
