/*
 * The verifier's metrics: what one handled request adds (results, reasons
 * once per round, the 64-label bound, histogram buckets, enrollments), the
 * exposition text of a snapshot line for line, and the HTTP endpoint
 * itself, fetched over a plain socket while the recorder keeps writing.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "driftgate/err.h"
#include "metrics.h"
#include "testutil.h"

static void
verdict(struct dg_msg *req, struct dg_msg *reply, bool pass, const char *const *codes,
        size_t n)
{
	dg_msg_init(req);
	dg_msg_init(reply);
	req->type = DG_MSG_ATTEST;
	reply->type = DG_MSG_VERDICT;
	reply->pass = pass;
	for (size_t i = 0; i < n; i++)
		dg_reason_set(&reply->reasons[reply->n_reasons++], codes[i], "detail %zu", i);
}

START_TEST(test_record)
{
	static struct dg_metrics_snapshot s;
	struct dg_msg req, reply;
	const char *three[] = {"file-added", "exec-unknown", "file-added"};
	memset(&s, 0, sizeof s);

	verdict(&req, &reply, true, NULL, 0);
	ck_assert_int_eq(dg_metrics_record(&s, &req, &reply, 1000000), DG_OK); /* on a bound */
	verdict(&req, &reply, false, three, 3);
	ck_assert_int_eq(dg_metrics_record(&s, &req, &reply, 1000001), DG_OK);
	verdict(&req, &reply, false, three, 1);
	ck_assert_int_eq(dg_metrics_record(&s, &req, &reply, 2000000000), DG_OK); /* > 1 s */
	reply.type = DG_MSG_ERROR;
	ck_assert_int_eq(dg_metrics_record(&s, &req, &reply, 5), DG_OK);
	ck_assert_uint_eq(s.attestations[DG_METRICS_PASS], 1);
	ck_assert_uint_eq(s.attestations[DG_METRICS_FAIL], 2);
	ck_assert_uint_eq(s.attestations[DG_METRICS_ERROR], 1);
	/* Each code once per round, in order of first appearance; an ERROR reply
	 * (whatever it carries) counts no reason. */
	ck_assert_uint_eq(s.n_reasons, 2);
	ck_assert_str_eq(s.reasons[0].code, "file-added");
	ck_assert_uint_eq(s.reasons[0].rounds, 2);
	ck_assert_str_eq(s.reasons[1].code, "exec-unknown");
	ck_assert_uint_eq(s.reasons[1].rounds, 1);
	ck_assert_uint_eq(s.buckets[0], 2);  /* 5 ns and exactly 1 ms */
	ck_assert_uint_eq(s.buckets[1], 3);  /* 2.5 ms */
	ck_assert_uint_eq(s.buckets[DG_METRICS_BUCKETS - 1], 3); /* 1 s */
	ck_assert_uint_eq(s.duration_count, 4);
	ck_assert_uint_eq(s.duration_sum_ns, 2002000006u);

	/* A passing verdict's reasons are not failures (none are sent, but the
	 * counter must not depend on that). */
	verdict(&req, &reply, true, three, 2);
	ck_assert_int_eq(dg_metrics_record(&s, &req, &reply, 1), DG_OK);
	ck_assert_uint_eq(s.n_reasons, 2);

	/* Enrollment: only an ENROLL_ACTIVATE answered with ENROLL_DONE. */
	dg_msg_init(&req);
	dg_msg_init(&reply);
	req.type = DG_MSG_ENROLL_ACTIVATE;
	reply.type = DG_MSG_ERROR;
	ck_assert_int_eq(dg_metrics_record(&s, &req, &reply, 1), DG_OK);
	reply.type = DG_MSG_ENROLL_DONE;
	ck_assert_int_eq(dg_metrics_record(&s, &req, &reply, 1), DG_OK);
	ck_assert_uint_eq(s.enrollments, 1);
	/* Other requests change nothing. */
	req.type = DG_MSG_NONCE_REQ;
	reply.type = DG_MSG_NONCE;
	ck_assert_int_eq(dg_metrics_record(&s, &req, &reply, 1), DG_OK);
	ck_assert_uint_eq(s.duration_count, 5);
	ck_assert_uint_eq(s.attestations[DG_METRICS_PASS], 2);
	ck_assert_int_eq(dg_metrics_record(NULL, &req, &reply, 1), DG_ERR_INVAL);
}
END_TEST

/* Distinct reason codes beyond 64 count as reason="other": bounded series. */
START_TEST(test_reason_bound)
{
	static struct dg_metrics_snapshot s;
	struct dg_msg req, reply;
	char code[32];
	const char *one[] = {code};
	memset(&s, 0, sizeof s);

	for (int i = 0; i < DG_METRICS_MAX_REASONS + 10; i++) {
		snprintf(code, sizeof code, "code-%03d", i);
		verdict(&req, &reply, false, one, 1);
		ck_assert_int_eq(dg_metrics_record(&s, &req, &reply, 1), DG_OK);
	}
	snprintf(code, sizeof code, "code-%03d", 3); /* a known one still counts as itself */
	verdict(&req, &reply, false, one, 1);
	ck_assert_int_eq(dg_metrics_record(&s, &req, &reply, 1), DG_OK);
	ck_assert_uint_eq(s.n_reasons, DG_METRICS_MAX_REASONS);
	ck_assert_uint_eq(s.other_reasons, 10);
	ck_assert_uint_eq(s.reasons[3].rounds, 2);

	char *text = malloc(DG_METRICS_TEXT_MAX);
	size_t len = 0;
	ck_assert_ptr_nonnull(text);
	ck_assert_int_eq(dg_metrics_render(&s, text, DG_METRICS_TEXT_MAX, &len), DG_OK);
	ck_assert_ptr_nonnull(strstr(text, "\ndg_attestation_failures_total{reason=\"other\"} 10\n"));
	ck_assert_ptr_nonnull(strstr(text, "\ndg_attestation_failures_total{reason=\"code-003\"} 2\n"));
	ck_assert_ptr_null(strstr(text, "code-064"));
	free(text);
}
END_TEST

static const char expected[] =
	"# HELP dg_attestations_total Attestation rounds answered, by result (error: no verdict "
	"was given).\n"
	"# TYPE dg_attestations_total counter\n"
	"dg_attestations_total{result=\"pass\"} 7\n"
	"dg_attestations_total{result=\"fail\"} 3\n"
	"dg_attestations_total{result=\"error\"} 1\n"
	"# HELP dg_attestation_failures_total Failed attestation rounds, by reason code (each "
	"code once per round).\n"
	"# TYPE dg_attestation_failures_total counter\n"
	"dg_attestation_failures_total{reason=\"exec-unknown\"} 1\n"
	"dg_attestation_failures_total{reason=\"odd\\\"code\\\\\"} 1\n"
	"dg_attestation_failures_total{reason=\"spec-changed\"} 2\n"
	"dg_attestation_failures_total{reason=\"other\"} 4\n"
	"# HELP dg_attestation_duration_seconds Time the verifier took to handle an ATTEST "
	"request.\n"
	"# TYPE dg_attestation_duration_seconds histogram\n"
	"dg_attestation_duration_seconds_bucket{le=\"0.001\"} 1\n"
	"dg_attestation_duration_seconds_bucket{le=\"0.0025\"} 2\n"
	"dg_attestation_duration_seconds_bucket{le=\"0.005\"} 3\n"
	"dg_attestation_duration_seconds_bucket{le=\"0.01\"} 4\n"
	"dg_attestation_duration_seconds_bucket{le=\"0.025\"} 5\n"
	"dg_attestation_duration_seconds_bucket{le=\"0.05\"} 6\n"
	"dg_attestation_duration_seconds_bucket{le=\"0.1\"} 7\n"
	"dg_attestation_duration_seconds_bucket{le=\"0.25\"} 8\n"
	"dg_attestation_duration_seconds_bucket{le=\"0.5\"} 9\n"
	"dg_attestation_duration_seconds_bucket{le=\"1\"} 10\n"
	"dg_attestation_duration_seconds_bucket{le=\"+Inf\"} 11\n"
	"dg_attestation_duration_seconds_sum 12.000345678\n"
	"dg_attestation_duration_seconds_count 11\n"
	"# HELP dg_enrollments_total Enrollments completed (credential activation proved EK and "
	"AK share a TPM).\n"
	"# TYPE dg_enrollments_total counter\n"
	"dg_enrollments_total 5\n"
	"# HELP dg_agents Agents known to the verifier, by state.\n"
	"# TYPE dg_agents gauge\n"
	"dg_agents{state=\"enrolling\"} 0\n"
	"dg_agents{state=\"enrolled\"} 1\n"
	"dg_agents{state=\"pass\"} 4\n"
	"dg_agents{state=\"fail\"} 2\n"
	"dg_agents{state=\"silent\"} 3\n";

static void
sample(struct dg_metrics_snapshot *s)
{
	memset(s, 0, sizeof *s);
	s->attestations[DG_METRICS_PASS] = 7;
	s->attestations[DG_METRICS_FAIL] = 3;
	s->attestations[DG_METRICS_ERROR] = 1;
	/* Out of order, and one code the label syntax must escape. */
	snprintf(s->reasons[0].code, sizeof s->reasons[0].code, "spec-changed");
	s->reasons[0].rounds = 2;
	snprintf(s->reasons[1].code, sizeof s->reasons[1].code, "odd\"code\\");
	s->reasons[1].rounds = 1;
	snprintf(s->reasons[2].code, sizeof s->reasons[2].code, "exec-unknown");
	s->reasons[2].rounds = 1;
	s->n_reasons = 3;
	s->other_reasons = 4;
	for (int i = 0; i < DG_METRICS_BUCKETS; i++)
		s->buckets[i] = (uint64_t)i + 1;
	s->duration_count = 11;
	s->duration_sum_ns = 12000345678u;
	s->enrollments = 5;
	s->agents[DG_REGISTRY_ENROLLED] = 1;
	s->agents[DG_REGISTRY_PASS] = 4;
	s->agents[DG_REGISTRY_FAIL] = 2;
	s->agents[DG_REGISTRY_SILENT] = 3;
}

/* Compared line by line, so a failure names the first line that differs. */
START_TEST(test_render_exact)
{
	struct dg_metrics_snapshot s;
	char buf[DG_METRICS_TEXT_MAX];
	size_t len = 0;
	sample(&s);
	ck_assert_int_eq(dg_metrics_render(&s, buf, sizeof buf, &len), DG_OK);
	ck_assert_uint_eq(len, strlen(buf));
	const char *g = buf, *w = expected;
	for (int line = 1; *w != '\0'; line++) {
		size_t wl = strcspn(w, "\n"), gl = strcspn(g, "\n");
		ck_assert_msg(wl == gl && memcmp(w, g, wl) == 0, "line %d: got '%.*s', want '%.*s'",
		              line, (int)gl, g, (int)wl, w);
		w += wl + (w[wl] == '\n');
		g += gl + (g[gl] == '\n');
	}
	ck_assert_str_eq(buf, expected);

	/* An empty snapshot: every family still has its HELP and TYPE, zero
	 * samples where a label set is fixed, none where it is not. */
	memset(&s, 0, sizeof s);
	ck_assert_int_eq(dg_metrics_render(&s, buf, sizeof buf, &len), DG_OK);
	ck_assert_ptr_nonnull(strstr(buf, "# TYPE dg_attestation_failures_total counter\n"
	                                  "# HELP dg_attestation_duration_seconds "));
	ck_assert_ptr_nonnull(strstr(buf, "\ndg_attestation_duration_seconds_sum 0.000000000\n"));
	ck_assert_ptr_nonnull(strstr(buf, "\ndg_attestations_total{result=\"error\"} 0\n"));

	/* Too small a buffer is an error, never a truncated exposition. */
	sample(&s);
	ck_assert_int_eq(dg_metrics_render(&s, buf, strlen(expected), &len), DG_ERR_TOOBIG);
	ck_assert_str_eq(buf, "");
	ck_assert_int_eq(dg_metrics_render(&s, buf, strlen(expected) + 1, &len), DG_OK);
	ck_assert_uint_eq(len, strlen(expected));
}
END_TEST

/* Every reason at its longest, every label escaped twice over: still fits. */
START_TEST(test_render_worst_case_fits)
{
	static struct dg_metrics_snapshot s;
	static char buf[DG_METRICS_TEXT_MAX];
	size_t len = 0;
	memset(&s, 0xff, sizeof s);
	s.n_reasons = DG_METRICS_MAX_REASONS;
	for (int i = 0; i < DG_METRICS_MAX_REASONS; i++) {
		memset(s.reasons[i].code, '"', DG_REASON_CODE_MAX - 1);
		s.reasons[i].code[DG_REASON_CODE_MAX - 1] = '\0';
	}
	ck_assert_int_eq(dg_metrics_render(&s, buf, sizeof buf, &len), DG_OK);
}
END_TEST

/* GET path over a plain socket; returns the whole response (malloc'd). */
static char *
http_get(int port, const char *path)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	size_t cap = 65536, len = 0;
	char *resp = calloc(1, cap), req[256];
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	ssize_t n;
	ck_assert_ptr_nonnull(resp);
	ck_assert_int_ge(fd, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
	ck_assert_int_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	while ((n = read(fd, resp + len, cap - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	return resp;
}

struct writer {
	struct dg_metrics *m;
	volatile int stop;
};

static void *
write_loop(void *arg)
{
	struct writer *w = arg;
	struct dg_msg req, reply;
	const char *codes[] = {"exec-unknown"};
	while (!w->stop) {
		verdict(&req, &reply, false, codes, 1);
		dg_metrics_observe(w->m, &req, &reply, 1500000);
	}
	return NULL;
}

START_TEST(test_http)
{
	struct dg_metrics *m = NULL, *other = NULL;
	struct dg_registry *r = NULL;
	struct dg_agent_rec *a;
	struct dg_msg req, reply;
	char url[64], err[256] = "";
	int port = 0, rv = DG_ERR_NET;

	ck_assert_int_eq(dg_metrics_new(&m), DG_OK);
	ck_assert_int_eq(dg_metrics_listen(m, "tcp://127.0.0.1:1", err, sizeof err), DG_ERR_INVAL);
	ck_assert_ptr_nonnull(strstr(err, "http://"));
	for (int i = 0; i < 50 && rv == DG_ERR_NET; i++) { /* a port that may be taken: retry */
		port = 20000 + (int)((getpid() * 7 + i * 131) % 10000);
		snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
		rv = dg_metrics_listen(m, url, err, sizeof err);
	}
	ck_assert_msg(rv == DG_OK, "%s", err);
	/* Listening twice, or a second listener on the address, is refused. */
	ck_assert_int_eq(dg_metrics_listen(m, url, err, sizeof err), DG_ERR_STATE);
	ck_assert_int_eq(dg_metrics_new(&other), DG_OK);
	ck_assert_int_eq(dg_metrics_listen(other, url, err, sizeof err), DG_ERR_NET);
	ck_assert_ptr_nonnull(strstr(err, "cannot listen on"));
	dg_metrics_free(other);

	ck_assert_int_eq(dg_registry_new(&r), DG_OK);
	ck_assert_int_eq(dg_registry_add(r, "booting", &a), DG_OK);
	ck_assert_int_eq(dg_registry_add(r, "healthy", &a), DG_OK);
	a->activated = a->have_clock = true;
	ck_assert_int_eq(dg_metrics_set_agents(m, r), DG_OK);
	verdict(&req, &reply, true, NULL, 0);
	ck_assert_int_eq(dg_metrics_observe(m, &req, &reply, 3000000), DG_OK);

	char *resp = http_get(port, "/metrics");
	ck_assert_msg(strncmp(resp, "HTTP/1.1 200", 12) == 0, "%s", resp);
	ck_assert_ptr_nonnull(strstr(resp, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
	ck_assert_ptr_nonnull(strstr(resp, "\r\n\r\n# HELP dg_attestations_total "));
	ck_assert_ptr_nonnull(strstr(resp, "\ndg_attestations_total{result=\"pass\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(resp, "\ndg_attestation_duration_seconds_bucket{le=\"0.0025\"} 0\n"));
	ck_assert_ptr_nonnull(strstr(resp, "\ndg_attestation_duration_seconds_bucket{le=\"0.005\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(resp, "\ndg_agents{state=\"enrolling\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(resp, "\ndg_agents{state=\"pass\"} 1\n"));
	free(resp);
	resp = http_get(port, "/other");
	ck_assert_msg(strncmp(resp, "HTTP/1.1 404", 12) == 0, "%s", resp);
	free(resp);

	/* Scrapes while the server thread records: every response whole. */
	struct writer w = {.m = m};
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, write_loop, &w), 0);
	for (int i = 0; i < 50; i++) {
		resp = http_get(port, "/metrics");
		ck_assert_ptr_nonnull(strstr(resp, "\ndg_agents{state=\"fail\"} 0\n"));
		free(resp);
	}
	w.stop = 1;
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	dg_metrics_free(m);
	dg_registry_free(r);
}
END_TEST

static Suite *
metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_record);
	tcase_add_test(tc, test_reason_bound);
	tcase_add_test(tc, test_render_exact);
	tcase_add_test(tc, test_render_worst_case_fits);
	tcase_add_test(tc, test_http);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(metrics_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
