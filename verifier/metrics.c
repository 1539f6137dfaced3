/*
 * Prometheus metrics. Recording and rendering are pure functions over a
 * dg_metrics_snapshot; struct dg_metrics adds the lock and the nng HTTP
 * server. nng calls the handler on its own threads and may do so until it
 * frees the handler, possibly after dg_metrics_free has returned, so the
 * struct is reference-counted: one reference for the owner, one for the
 * handler (dropped by nng's destructor for the handler's data).
 */
#include "metrics.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include "driftgate/err.h"

/* Bucket bounds in nanoseconds (exact comparisons) and as printed in "le". */
static const struct {
	uint64_t ns;
	const char *le;
} buckets[DG_METRICS_BUCKETS] = {
	{1000000, "0.001"},    {2500000, "0.0025"},  {5000000, "0.005"},
	{10000000, "0.01"},    {25000000, "0.025"},  {50000000, "0.05"},
	{100000000, "0.1"},    {250000000, "0.25"},  {500000000, "0.5"},
	{1000000000, "1"},
};

static const char *const result_names[DG_METRICS_RESULTS] = {
	[DG_METRICS_PASS] = "pass", [DG_METRICS_FAIL] = "fail", [DG_METRICS_ERROR] = "error",
};

/* ---- recording ---- */

static void
count_reason(struct dg_metrics_snapshot *s, const char *code)
{
	for (size_t i = 0; i < s->n_reasons; i++) {
		if (strcmp(s->reasons[i].code, code) == 0) {
			s->reasons[i].rounds++;
			return;
		}
	}
	if (s->n_reasons == DG_METRICS_MAX_REASONS) {
		s->other_reasons++;
		return;
	}
	struct dg_metrics_reason *r = &s->reasons[s->n_reasons++];
	snprintf(r->code, sizeof r->code, "%s", code);
	r->rounds = 1;
}

int
dg_metrics_record(struct dg_metrics_snapshot *s, const struct dg_msg *req,
                  const struct dg_msg *reply, uint64_t duration_ns)
{
	if (s == NULL || req == NULL || reply == NULL)
		return DG_ERR_INVAL;
	if (req->type == DG_MSG_ENROLL_ACTIVATE && reply->type == DG_MSG_ENROLL_DONE) {
		s->enrollments++;
		return DG_OK;
	}
	if (req->type != DG_MSG_ATTEST)
		return DG_OK;
	if (reply->type != DG_MSG_VERDICT)
		s->attestations[DG_METRICS_ERROR]++;
	else
		s->attestations[reply->pass ? DG_METRICS_PASS : DG_METRICS_FAIL]++;
	/* Each code once per round, so the counter reads "rounds failed for
	 * this reason", however many files one round names. */
	size_t n = reply->n_reasons < DG_VERDICT_MAX_REASONS ? reply->n_reasons
	                                                     : DG_VERDICT_MAX_REASONS;
	for (size_t i = 0; reply->type == DG_MSG_VERDICT && !reply->pass && i < n; i++) {
		char code[DG_REASON_CODE_MAX];
		bool seen = false;
		snprintf(code, sizeof code, "%.*s", DG_REASON_CODE_MAX - 1, reply->reasons[i].code);
		for (size_t j = 0; j < i && !seen; j++)
			seen = strncmp(reply->reasons[j].code, code, sizeof code) == 0;
		if (!seen)
			count_reason(s, code[0] ? code : "unknown");
	}
	for (size_t i = 0; i < DG_METRICS_BUCKETS; i++)
		if (duration_ns <= buckets[i].ns)
			s->buckets[i]++;
	s->duration_count++;
	s->duration_sum_ns += duration_ns;
	return DG_OK;
}

/* ---- rendering ---- */

struct out {
	char *buf;
	size_t cap, len;
	bool full;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	if (o->full)
		return;
	va_start(ap, fmt);
	int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->cap - o->len) {
		o->full = true;
		return;
	}
	o->len += (size_t)n;
}

/* A label value as the format wants it: \, " and newline escaped. */
static void
put_label(struct out *o, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			put(o, "\\%c", *v);
		else if (*v == '\n')
			put(o, "\\n");
		else
			put(o, "%c", *v);
	}
}

static void
put_head(struct out *o, const char *name, const char *type, const char *help)
{
	put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

int
dg_metrics_render(const struct dg_metrics_snapshot *s, char *buf, size_t cap, size_t *len)
{
	struct out o = {.buf = buf, .cap = cap};
	size_t order[DG_METRICS_MAX_REASONS], n_reasons;

	if (s == NULL || buf == NULL || cap == 0 || len == NULL)
		return DG_ERR_INVAL;
	buf[0] = '\0';
	put_head(&o, "dg_attestations_total", "counter",
	         "Attestation rounds answered, by result (error: no verdict was given).");
	for (int i = 0; i < DG_METRICS_RESULTS; i++)
		put(&o, "dg_attestations_total{result=\"%s\"} %" PRIu64 "\n", result_names[i],
		    s->attestations[i]);

	/* Reasons sorted by code, so the text does not depend on arrival order. */
	n_reasons = s->n_reasons < DG_METRICS_MAX_REASONS ? s->n_reasons : DG_METRICS_MAX_REASONS;
	for (size_t i = 0; i < n_reasons; i++) {
		size_t j = i;
		for (; j > 0 && strcmp(s->reasons[order[j - 1]].code, s->reasons[i].code) > 0; j--)
			order[j] = order[j - 1];
		order[j] = i;
	}
	put_head(&o, "dg_attestation_failures_total", "counter",
	         "Failed attestation rounds, by reason code (each code once per round).");
	for (size_t i = 0; i < n_reasons; i++) {
		const struct dg_metrics_reason *r = &s->reasons[order[i]];
		char code[DG_REASON_CODE_MAX];
		snprintf(code, sizeof code, "%.*s", DG_REASON_CODE_MAX - 1, r->code);
		put(&o, "dg_attestation_failures_total{reason=\"");
		put_label(&o, code);
		put(&o, "\"} %" PRIu64 "\n", r->rounds);
	}
	if (s->other_reasons > 0)
		put(&o, "dg_attestation_failures_total{reason=\"other\"} %" PRIu64 "\n",
		    s->other_reasons);

	put_head(&o, "dg_attestation_duration_seconds", "histogram",
	         "Time the verifier took to handle an ATTEST request.");
	for (int i = 0; i < DG_METRICS_BUCKETS; i++)
		put(&o, "dg_attestation_duration_seconds_bucket{le=\"%s\"} %" PRIu64 "\n",
		    buckets[i].le, s->buckets[i]);
	put(&o, "dg_attestation_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n",
	    s->duration_count);
	put(&o, "dg_attestation_duration_seconds_sum %" PRIu64 ".%09" PRIu64 "\n",
	    s->duration_sum_ns / 1000000000u, s->duration_sum_ns % 1000000000u);
	put(&o, "dg_attestation_duration_seconds_count %" PRIu64 "\n", s->duration_count);

	put_head(&o, "dg_enrollments_total", "counter",
	         "Enrollments completed (credential activation proved EK and AK share a TPM).");
	put(&o, "dg_enrollments_total %" PRIu64 "\n", s->enrollments);

	put_head(&o, "dg_agents", "gauge", "Agents known to the verifier, by state.");
	for (int i = 0; i < DG_REGISTRY_STATES; i++)
		put(&o, "dg_agents{state=\"%s\"} %" PRIu64 "\n",
		    dg_registry_state_name((enum dg_registry_state)i), s->agents[i]);

	if (o.full) {
		buf[0] = '\0';
		return DG_ERR_TOOBIG;
	}
	*len = o.len;
	return DG_OK;
}

/* ---- the shared state and the HTTP server ---- */

struct dg_metrics {
	pthread_mutex_t lock;
	unsigned refs; /* under lock: the owner, and nng's handler while it holds it */
	struct dg_metrics_snapshot s;
	nng_http_server *server; /* owner's thread only */
};

static void
unref(void *arg)
{
	struct dg_metrics *m = arg;
	pthread_mutex_lock(&m->lock);
	unsigned left = --m->refs;
	pthread_mutex_unlock(&m->lock);
	if (left > 0)
		return;
	pthread_mutex_destroy(&m->lock);
	free(m);
}

int
dg_metrics_new(struct dg_metrics **out)
{
	struct dg_metrics *m = calloc(1, sizeof *m);
	if (m == NULL)
		return DG_ERR_NOMEM;
	if (pthread_mutex_init(&m->lock, NULL) != 0) {
		free(m);
		return DG_ERR_NOMEM;
	}
	m->refs = 1;
	*out = m;
	return DG_OK;
}

void
dg_metrics_free(struct dg_metrics *m)
{
	if (m == NULL)
		return;
	if (m->server != NULL) {
		nng_http_server_stop(m->server);
		nng_http_server_release(m->server);
	}
	unref(m);
}

int
dg_metrics_snapshot(struct dg_metrics *m, struct dg_metrics_snapshot *out)
{
	pthread_mutex_lock(&m->lock);
	*out = m->s;
	pthread_mutex_unlock(&m->lock);
	return DG_OK;
}

int
dg_metrics_observe(struct dg_metrics *m, const struct dg_msg *req, const struct dg_msg *reply,
                   uint64_t duration_ns)
{
	pthread_mutex_lock(&m->lock);
	int rv = dg_metrics_record(&m->s, req, reply, duration_ns);
	pthread_mutex_unlock(&m->lock);
	return rv;
}

static void
count_state(struct dg_agent_rec *a, void *arg)
{
	uint64_t *agents = arg;
	agents[dg_registry_state(a)]++;
}

int
dg_metrics_set_agents(struct dg_metrics *m, struct dg_registry *r)
{
	uint64_t agents[DG_REGISTRY_STATES] = {0};
	dg_registry_foreach(r, count_state, agents);
	pthread_mutex_lock(&m->lock);
	memcpy(m->s.agents, agents, sizeof agents);
	pthread_mutex_unlock(&m->lock);
	return DG_OK;
}

/* GET /metrics, on an nng thread. */
static void
serve_metrics(nng_aio *aio)
{
	struct dg_metrics *m = nng_http_handler_get_data(nng_aio_get_input(aio, 1));
	struct dg_metrics_snapshot *snap = malloc(sizeof *snap);
	char *text = malloc(DG_METRICS_TEXT_MAX);
	nng_http_res *res = NULL;
	size_t len = 0;
	int rv = NNG_ENOMEM;

	if (snap == NULL || text == NULL)
		goto out;
	dg_metrics_snapshot(m, snap);
	if (dg_metrics_render(snap, text, DG_METRICS_TEXT_MAX, &len) != DG_OK) {
		rv = NNG_EINTERNAL;
		goto out;
	}
	if ((rv = nng_http_res_alloc(&res)) != 0 ||
	    (rv = nng_http_res_set_header(res, "Content-Type",
	                                  "text/plain; version=0.0.4; charset=utf-8")) != 0 ||
	    (rv = nng_http_res_copy_data(res, text, len)) != 0)
		goto out;
	nng_aio_set_output(aio, 0, res);
	res = NULL;
out:
	nng_http_res_free(res);
	free(text);
	free(snap);
	nng_aio_finish(aio, rv); /* an error closes the connection */
}

int
dg_metrics_listen(struct dg_metrics *m, const char *url, char *err, size_t err_cap)
{
	nng_url *u = NULL;
	nng_http_server *srv = NULL;
	nng_http_handler *h = NULL;
	int nrv = 0, rv = DG_ERR_NET;

	if (m->server != NULL)
		return DG_ERR_STATE;
	if (nng_url_parse(&u, url) != 0 || strcmp(u->u_scheme, "http") != 0) {
		snprintf(err, err_cap, "metrics: '%s' is not an http://HOST:PORT URL", url);
		rv = DG_ERR_INVAL;
		goto out;
	}
	if ((nrv = nng_http_server_hold(&srv, u)) != 0 ||
	    (nrv = nng_http_handler_alloc(&h, "/metrics", serve_metrics)) != 0 ||
	    (nrv = nng_http_handler_set_method(h, "GET")) != 0 ||
	    (nrv = nng_http_handler_collect_body(h, true, 0)) != 0)
		goto out;
	/* From here the handler holds a reference, dropped when nng frees it. */
	pthread_mutex_lock(&m->lock);
	m->refs++;
	pthread_mutex_unlock(&m->lock);
	if ((nrv = nng_http_handler_set_data(h, m, unref)) != 0) {
		unref(m);
		goto out;
	}
	if ((nrv = nng_http_server_add_handler(srv, h)) != 0)
		goto out;
	h = NULL; /* the server's now */
	if ((nrv = nng_http_server_start(srv)) != 0)
		goto out;
	m->server = srv;
	srv = NULL;
	rv = DG_OK;
out:
	if (nrv != 0)
		snprintf(err, err_cap, "metrics: cannot listen on %s: %s", url, nng_strerror(nrv));
	if (h != NULL)
		nng_http_handler_free(h);
	if (srv != NULL)
		nng_http_server_release(srv);
	if (u != NULL)
		nng_url_free(u);
	return rv;
}
