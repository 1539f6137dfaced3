/*
 * libFuzzer target for the "key = value" configuration parser: every setting
 * handed to the callback is trimmed, comment-free and non-empty in its key;
 * a malformed line is reported as "line N: ...".
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "driftgate/conf.h"
#include "driftgate/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_text(const char *s, int allow_empty)
{
	size_t len = strlen(s);

	if ((!allow_empty && len == 0) || strpbrk(s, "#\n") != NULL ||
	    (len > 0 && (isspace((unsigned char)s[0]) || isspace((unsigned char)s[len - 1]))))
		abort();
}

/* A key named "fail" makes the callback refuse, to cover that path too. */
static int
on_setting(const char *key, const char *value, void *arg)
{
	size_t *n = arg;

	check_text(key, 0);
	check_text(value, 1);
	if (strchr(key, '=') != NULL)
		abort();
	(*n)++;
	return strcmp(key, "fail") == 0 ? DG_ERR_INVAL : DG_OK;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256] = "";
	size_t n = 0;
	int rc;

	rc = dg_conf_parse((const char *)data, size, on_setting, &n, err, sizeof err);
	if (rc != DG_OK && rc != DG_ERR_TOOBIG && strncmp(err, "line ", 5) != 0)
		abort();
	return 0;
}
