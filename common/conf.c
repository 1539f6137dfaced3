#include "driftgate/conf.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driftgate/err.h"

static char *
trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

int
dg_conf_parse(const char *text, size_t len, dg_conf_fn fn, void *arg, char *err,
              size_t err_cap)
{
	char line[4096];
	size_t pos = 0;
	unsigned lineno = 0;

	if (len > DG_CONF_MAX_BYTES)
		return DG_ERR_TOOBIG;
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
		lineno++;
		if (n >= sizeof line) {
			snprintf(err, err_cap, "line %u: longer than %zu bytes", lineno, sizeof line - 1);
			return DG_ERR_FORMAT;
		}
		memcpy(line, text + pos, n);
		line[n] = '\0';
		pos += n + (nl ? 1 : 0);
		if (memchr(line, '\0', n) != NULL) {
			snprintf(err, err_cap, "line %u: NUL byte", lineno);
			return DG_ERR_FORMAT;
		}
		char *hash = strchr(line, '#');
		if (hash != NULL)
			*hash = '\0';
		char *s = trim(line);
		if (*s == '\0')
			continue;
		char *eq = strchr(s, '=');
		if (eq == NULL) {
			snprintf(err, err_cap, "line %u: expected 'key = value'", lineno);
			return DG_ERR_FORMAT;
		}
		*eq = '\0';
		char *key = trim(s), *value = trim(eq + 1);
		if (*key == '\0') {
			snprintf(err, err_cap, "line %u: empty key", lineno);
			return DG_ERR_FORMAT;
		}
		int rv = fn(key, value, arg);
		if (rv != DG_OK) {
			snprintf(err, err_cap, "line %u: %s: %s", lineno, key, dg_strerror(rv));
			return rv;
		}
	}
	return DG_OK;
}

int
dg_conf_load(const char *path, dg_conf_fn fn, void *arg, char *err, size_t err_cap)
{
	char *text = NULL;
	size_t len = 0;
	int rv = DG_ERR_IO;
	FILE *f = fopen(path, "re");
	if (f == NULL) {
		snprintf(err, err_cap, "%s: %s", path, strerror(errno));
		return DG_ERR_IO;
	}
	if ((text = malloc(DG_CONF_MAX_BYTES + 1)) == NULL) {
		rv = DG_ERR_NOMEM;
		goto out;
	}
	len = fread(text, 1, DG_CONF_MAX_BYTES + 1, f);
	if (ferror(f)) {
		snprintf(err, err_cap, "%s: read error", path);
		goto out;
	}
	if (len > DG_CONF_MAX_BYTES) {
		snprintf(err, err_cap, "%s: larger than %d bytes", path, DG_CONF_MAX_BYTES);
		rv = DG_ERR_TOOBIG;
		goto out;
	}
	rv = dg_conf_parse(text, len, fn, arg, err, err_cap);
out:
	free(text);
	(void)fclose(f); /* read only: nothing to lose */
	return rv;
}

int
dg_conf_getopt(const char *prog, int argc, char **argv, const char *shortopts,
               const struct option *longopts, dg_conf_fn fn, void *arg, int *first_arg)
{
	char err[512];
	const char *config = NULL;
	int c;

	for (int i = 2; i + 1 < argc; i++)
		if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0)
			config = argv[i + 1];
	if (config != NULL && dg_conf_load(config, fn, arg, err, sizeof err) != DG_OK) {
		fprintf(stderr, "%s: %s: %s\n", prog, config, err);
		return DG_ERR_INVAL;
	}
	optind = 2;
	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		const struct option *lo = NULL;
		if (c == 'h')
			return DG_ERR_NOTFOUND;
		if (c == '?')
			return DG_ERR_INVAL;
		for (const struct option *p = longopts; p->name != NULL; p++)
			if (p->val == c)
				lo = p;
		if (lo != NULL && strcmp(lo->name, "config") == 0)
			continue; /* already read */
		if (lo == NULL || fn(lo->name, optarg ? optarg : "true", arg) != DG_OK) {
			fprintf(stderr, "%s: invalid value for --%s: '%s'\n", prog, lo ? lo->name : "?",
			        optarg ? optarg : "");
			return DG_ERR_INVAL;
		}
	}
	*first_arg = optind;
	return DG_OK;
}

int
dg_conf_str(char *dst, size_t cap, const char *value)
{
	size_t n = strlen(value);
	if (n == 0 || n >= cap)
		return DG_ERR_INVAL;
	memcpy(dst, value, n + 1);
	return DG_OK;
}

int
dg_conf_uint(const char *value, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(value, &end, 0);
	if (errno != 0 || end == value || *end != '\0' || value[0] == '-' || v < min || v > max)
		return DG_ERR_INVAL;
	*out = v;
	return DG_OK;
}

int
dg_conf_bool(const char *value, bool *out)
{
	if (strcmp(value, "true") == 0 || strcmp(value, "yes") == 0 || strcmp(value, "1") == 0)
		*out = true;
	else if (strcmp(value, "false") == 0 || strcmp(value, "no") == 0 || strcmp(value, "0") == 0)
		*out = false;
	else
		return DG_ERR_INVAL;
	return DG_OK;
}
