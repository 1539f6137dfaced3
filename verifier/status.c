#include "status.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "driftgate/err.h"
#include "registry.h"
#include "store.h"

/* One table row. The table is printed once every row is known, for the
 * column widths; dg_store_list bounds how many there are. */
struct row {
	char id[DG_WIRE_MAX_AGENT_ID + 1];
	enum dg_registry_state state;
	uint64_t entries;
	bool have_clock;
	uint32_t reset_count;
	size_t containers;
	char *reasons; /* "code: detail; code: detail", NULL if none */
};

struct listing {
	struct row *rows;
	size_t n, cap;
	json_object *agents; /* json: the array being built */
};

/* The drift of a as one line. */
static int
join_reasons(const struct dg_agent_rec *a, char **out)
{
	size_t cap = a->n_drift * (DG_REASON_CODE_MAX + DG_REASON_DETAIL_MAX + 4) + 1, len = 0;
	char *s = malloc(cap);
	if (s == NULL)
		return DG_ERR_NOMEM;
	s[0] = '\0';
	for (size_t i = 0; i < a->n_drift; i++)
		len += (size_t)snprintf(s + len, cap - len, "%s%s: %s", i ? "; " : "",
		                        a->drift[i].code, a->drift[i].detail);
	*out = s;
	return DG_OK;
}

static int
add_row(const struct dg_agent_rec *a, void *arg)
{
	struct listing *l = arg;
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 64;
		struct row *nr = realloc(l->rows, ncap * sizeof *nr);
		if (nr == NULL)
			return DG_ERR_NOMEM;
		l->rows = nr;
		l->cap = ncap;
	}
	struct row *r = &l->rows[l->n];
	memset(r, 0, sizeof *r);
	snprintf(r->id, sizeof r->id, "%s", a->id);
	r->state = dg_registry_state(a);
	r->entries = a->replay.entries;
	r->have_clock = a->have_clock;
	r->reset_count = a->clock.reset_count;
	r->containers = dg_containers_count(a->containers);
	if (a->n_drift > 0) {
		int rv = join_reasons(a, &r->reasons);
		if (rv != DG_OK)
			return rv;
	}
	l->n++;
	return DG_OK;
}

/* Adds are not checked one by one (as in audit.c): an allocation that failed
 * shows as a missing member, and the document as a whole is checked when it
 * is serialized. */
static int
add_json(const struct dg_agent_rec *a, void *arg)
{
	struct listing *l = arg;
	json_object *o = json_object_new_object(), *reasons = json_object_new_array();
	if (o == NULL || reasons == NULL) {
		json_object_put(o);
		json_object_put(reasons);
		return DG_ERR_NOMEM;
	}
	json_object_object_add(o, "id", json_object_new_string(a->id));
	json_object_object_add(o, "state",
	                       json_object_new_string(dg_registry_state_name(dg_registry_state(a))));
	json_object_object_add(o, "entries", json_object_new_uint64(a->replay.entries));
	json_object_object_add(o, "reset_count",
	                       a->have_clock ? json_object_new_uint64(a->clock.reset_count) : NULL);
	json_object_object_add(o, "containers",
	                       json_object_new_uint64(dg_containers_count(a->containers)));
	for (size_t i = 0; i < a->n_drift; i++) {
		json_object *r = json_object_new_object();
		json_object_object_add(r, "code", json_object_new_string(a->drift[i].code));
		json_object_object_add(r, "detail", json_object_new_string(a->drift[i].detail));
		json_object_array_add(reasons, r);
	}
	json_object_object_add(o, "reasons", reasons);
	if (json_object_array_add(l->agents, o) != 0) {
		json_object_put(o);
		return DG_ERR_NOMEM;
	}
	return DG_OK;
}

static int
digits(uint64_t v)
{
	int n = 1;
	while (v >= 10) {
		v /= 10;
		n++;
	}
	return n;
}

static void
print_table(const struct listing *l, FILE *out)
{
	int w_id = (int)strlen("AGENT"), w_state = (int)strlen("STATE");
	int w_entries = (int)strlen("ENTRIES"), w_reset = (int)strlen("RESETCOUNT");
	int w_containers = (int)strlen("CONTAINERS");
	char reset[16];

	for (size_t i = 0; i < l->n; i++) {
		const struct row *r = &l->rows[i];
		int n = (int)strlen(r->id);
		w_id = n > w_id ? n : w_id;
		n = (int)strlen(dg_registry_state_name(r->state));
		w_state = n > w_state ? n : w_state;
		w_entries = digits(r->entries) > w_entries ? digits(r->entries) : w_entries;
		w_reset = digits(r->reset_count) > w_reset ? digits(r->reset_count) : w_reset;
		w_containers = digits(r->containers) > w_containers ? digits(r->containers)
		                                                     : w_containers;
	}
	fprintf(out, "%-*s  %-*s  %*s  %*s  %*s  %s\n", w_id, "AGENT", w_state, "STATE", w_entries,
	        "ENTRIES", w_reset, "RESETCOUNT", w_containers, "CONTAINERS", "REASONS");
	for (size_t i = 0; i < l->n; i++) {
		const struct row *r = &l->rows[i];
		if (r->have_clock)
			snprintf(reset, sizeof reset, "%" PRIu32, r->reset_count);
		else
			snprintf(reset, sizeof reset, "-"); /* no proven round yet */
		fprintf(out, "%-*s  %-*s  %*" PRIu64 "  %*s  %*zu%s%s\n", w_id, r->id, w_state,
		        dg_registry_state_name(r->state), w_entries, r->entries, w_reset, reset,
		        w_containers, r->containers, r->reasons ? "  " : "",
		        r->reasons ? r->reasons : "");
	}
}

int
dg_status_print(const char *path, bool json, FILE *out, char *err, size_t err_cap)
{
	struct dg_store *s = NULL;
	struct listing l = {0};
	json_object *doc = NULL;
	int rv;

	if ((rv = dg_store_open_readonly(path, &s, err, err_cap)) != DG_OK)
		goto out;
	if (json) {
		if ((doc = json_object_new_object()) == NULL ||
		    (l.agents = json_object_new_array()) == NULL ||
		    json_object_object_add(doc, "agents", l.agents) != 0) {
			rv = DG_ERR_NOMEM;
			goto out;
		}
	}
	if ((rv = dg_store_list(s, json ? add_json : add_row, &l, err, err_cap)) != DG_OK)
		goto out;
	if (json) {
		const char *text = json_object_to_json_string_ext(
			doc, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
		if (text == NULL) {
			rv = DG_ERR_NOMEM;
			goto out;
		}
		fprintf(out, "%s\n", text);
	} else {
		print_table(&l, out);
	}
	if (fflush(out) != 0 || ferror(out)) {
		snprintf(err, err_cap, "cannot write the listing");
		rv = DG_ERR_IO;
	}
out:
	if (rv != DG_OK && err != NULL && err_cap > 0 && err[0] == '\0')
		snprintf(err, err_cap, "%s: %s", path, dg_strerror(rv));
	json_object_put(doc);
	for (size_t i = 0; i < l.n; i++)
		free(l.rows[i].reasons);
	free(l.rows);
	dg_store_close(s);
	return rv;
}
