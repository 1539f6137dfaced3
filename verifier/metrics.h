/*
 * The verifier's Prometheus metrics, served as text exposition format 0.0.4
 * on GET /metrics (--metrics-listen):
 *   dg_attestations_total{result="pass|fail|error"}     ATTEST requests answered
 *   dg_attestation_failures_total{reason="<code>"}       failed rounds per reason code
 *   dg_attestation_duration_seconds (histogram)          time to handle an ATTEST
 *   dg_enrollments_total                                 enrollments activated
 *   dg_agents{state="enrolling|enrolled|pass|fail|silent"} agents by registry state
 * The server thread records; nng's HTTP thread copies a snapshot under a
 * mutex and renders it with dg_metrics_render, a pure function.
 */
#ifndef DRIFTGATE_VERIFIER_METRICS_H
#define DRIFTGATE_VERIFIER_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "driftgate/verdict.h"
#include "driftgate/wire.h"
#include "registry.h"

/* Distinct reason labels; codes past this many count as reason="other", so
 * the number of series stays bounded whatever the verdicts say. */
#define DG_METRICS_MAX_REASONS 64
/* Upper bounds of the latency buckets, 1 ms to 1 s (plus +Inf). */
#define DG_METRICS_BUCKETS 10
/* Room for the rendered text of any snapshot. */
#define DG_METRICS_TEXT_MAX 16384

enum dg_metrics_result { DG_METRICS_PASS, DG_METRICS_FAIL, DG_METRICS_ERROR, DG_METRICS_RESULTS };

struct dg_metrics_reason {
	char code[DG_REASON_CODE_MAX];
	uint64_t rounds;
};

/* Every value, as plain data: recorded into by the server, copied for rendering. */
struct dg_metrics_snapshot {
	uint64_t attestations[DG_METRICS_RESULTS];
	size_t n_reasons;                  /* in order of first appearance */
	struct dg_metrics_reason reasons[DG_METRICS_MAX_REASONS];
	uint64_t other_reasons;            /* rounds with a code beyond the bound */
	uint64_t buckets[DG_METRICS_BUCKETS]; /* cumulative: duration <= bound */
	uint64_t duration_count;
	uint64_t duration_sum_ns;
	uint64_t enrollments;
	uint64_t agents[DG_REGISTRY_STATES];
};

/*
 * Account for one handled request: an ATTEST's result (a passing or failing
 * VERDICT, or an ERROR reply), each distinct reason code of a failing
 * verdict once, and duration_ns in the histogram; an ENROLL_ACTIVATE answered
 * with ENROLL_DONE as an enrollment. Other requests change nothing.
 */
int dg_metrics_record(struct dg_metrics_snapshot *s, const struct dg_msg *req,
                      const struct dg_msg *reply, uint64_t duration_ns);

/* Write the exposition text of s into buf (NUL-terminated), *len its length
 * without the NUL. DG_ERR_TOOBIG if cap is too small. */
int dg_metrics_render(const struct dg_metrics_snapshot *s, char *buf, size_t cap, size_t *len);

struct dg_metrics;

int dg_metrics_new(struct dg_metrics **out);
/* Stop serving, then free (the HTTP thread may still hold it for a moment:
 * the last of the two frees it). */
void dg_metrics_free(struct dg_metrics *m);

/* Serve GET /metrics at url (http://HOST:PORT, any path ignored); err gets
 * a readable reason. DG_ERR_INVAL for a URL that is not http://, DG_ERR_NET
 * if nng cannot listen there. */
int dg_metrics_listen(struct dg_metrics *m, const char *url, char *err, size_t err_cap);

/* dg_metrics_record under the lock. */
int dg_metrics_observe(struct dg_metrics *m, const struct dg_msg *req, const struct dg_msg *reply,
                       uint64_t duration_ns);
/* Count r's agents by state (in the caller's thread, which must own r). */
int dg_metrics_set_agents(struct dg_metrics *m, struct dg_registry *r);
/* A consistent copy of every value. */
int dg_metrics_snapshot(struct dg_metrics *m, struct dg_metrics_snapshot *out);

#endif
