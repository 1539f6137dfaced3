#include "audit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "driftgate/err.h"

struct dg_audit {
	int fd;
	bool own_fd;
	bool deferred; /* inside a batch: one sync at its end */
	bool dirty;    /* written since the last sync */
};

int
dg_audit_open(const char *path, struct dg_audit **out)
{
	struct dg_audit *a = calloc(1, sizeof *a);
	if (a == NULL)
		return DG_ERR_NOMEM;
	if (strcmp(path, "-") == 0) {
		a->fd = STDOUT_FILENO;
	} else {
		a->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (a->fd < 0) {
			fprintf(stderr, "driftgate-verifier: %s: %s\n", path, strerror(errno));
			free(a);
			return DG_ERR_IO;
		}
		a->own_fd = true;
	}
	*out = a;
	return DG_OK;
}

void
dg_audit_close(struct dg_audit *a)
{
	if (a == NULL)
		return;
	if (a->own_fd)
		close(a->fd);
	free(a);
}

static json_object *
record_new(const char *event, const char *agent_id)
{
	char stamp[64];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	         (int)(ts.tv_nsec / 1000000));
	json_object *o = json_object_new_object();
	if (o == NULL)
		return NULL;
	json_object_object_add(o, "time", json_object_new_string(stamp));
	json_object_object_add(o, "event", json_object_new_string(event));
	json_object_object_add(o, "agent", json_object_new_string(agent_id));
	return o;
}

/* One write(2) per record, then fdatasync: lines never interleave or tear. */
int
dg_audit_sync(struct dg_audit *a)
{
	if (a->dirty && a->own_fd && fdatasync(a->fd) != 0)
		return DG_ERR_IO;
	a->dirty = false;
	return DG_OK;
}

void
dg_audit_defer_sync(struct dg_audit *a, bool defer)
{
	a->deferred = defer;
}

static int
record_write(struct dg_audit *a, json_object *o)
{
	size_t len;
	int rv = DG_ERR_IO;
	const char *s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	char *line = s ? malloc(len + 1) : NULL;
	if (line == NULL) {
		rv = DG_ERR_NOMEM;
		goto out;
	}
	memcpy(line, s, len);
	line[len] = '\n';
	if (write(a->fd, line, len + 1) != (ssize_t)(len + 1))
		goto out;
	a->dirty = true;
	if (!a->deferred && (rv = dg_audit_sync(a)) != DG_OK)
		goto out;
	rv = DG_OK;
out:
	free(line);
	json_object_put(o);
	return rv;
}

int
dg_audit_event(struct dg_audit *a, const char *event, const char *agent_id, const char *detail)
{
	json_object *o = record_new(event, agent_id);
	if (o == NULL)
		return DG_ERR_NOMEM;
	if (detail != NULL)
		json_object_object_add(o, "detail", json_object_new_string(detail));
	return record_write(a, o);
}

int
dg_audit_verdict(struct dg_audit *a, const struct dg_audit_verdict *v)
{
	char hex[65];
	json_object *o = record_new("verdict", v->agent_id);
	if (o == NULL)
		return DG_ERR_NOMEM;
	json_object_object_add(o, "verdict", json_object_new_string(v->pass ? "pass" : "fail"));
	json_object_object_add(o, "baseline", v->baseline ? json_object_new_string(v->baseline) : NULL);
	if (v->policy_version != NULL)
		json_object_object_add(o, "policy", json_object_new_string(v->policy_version));
	json_object *reasons = json_object_new_array();
	for (size_t i = 0; i < v->n_reasons; i++) {
		json_object *r = json_object_new_object();
		json_object_object_add(r, "code", json_object_new_string(v->reasons[i].code));
		json_object_object_add(r, "detail", json_object_new_string(v->reasons[i].detail));
		json_object_array_add(reasons, r);
	}
	json_object_object_add(o, "reasons", reasons);
	json_object_object_add(o, "entries", json_object_new_uint64(v->entries));
	json_object_object_add(o, "new_entries", json_object_new_uint64(v->new_entries));
	if (v->clock != NULL) {
		json_object_object_add(o, "reset_count", json_object_new_uint64(v->clock->reset_count));
		json_object_object_add(o, "restart_count",
		                       json_object_new_uint64(v->clock->restart_count));
		json_object_object_add(o, "clock", json_object_new_uint64(v->clock->clock));
	}
	if (v->quote_digest != NULL) {
		for (int i = 0; i < 32; i++)
			snprintf(hex + 2 * i, 3, "%02x", v->quote_digest[i]);
		json_object_object_add(o, "quote_sha256", json_object_new_string(hex));
	}
	return record_write(a, o);
}

int
dg_audit_lease(struct dg_audit *a, const struct dg_audit_lease *l)
{
	char hex[65];
	json_object *o = record_new(l->event, l->agent_id);
	if (o == NULL)
		return DG_ERR_NOMEM;
	/* The node's own secrets have scope "": named so in the record. */
	json_object_object_add(o, "container",
	                       json_object_new_string(l->scope[0] != '\0' ? l->scope : "(node)"));
	json_object_object_add(o, "secret", json_object_new_string(l->secret));
	if (l->reason != NULL)
		json_object_object_add(o, "reason", json_object_new_string(l->reason));
	if (l->lease_ms != 0)
		json_object_object_add(o, "lease_ms", json_object_new_uint64(l->lease_ms));
	if (l->quote_digest != NULL) {
		for (int i = 0; i < 32; i++)
			snprintf(hex + 2 * i, 3, "%02x", l->quote_digest[i]);
		json_object_object_add(o, "quote_sha256", json_object_new_string(hex));
	}
	return record_write(a, o);
}
