/*
 * libFuzzer target for the baseline parser: arbitrary text either fails with
 * a "line N: ..." message or yields a policy that appraises a few fixed
 * entries (allowed, mismatched, excluded-looking, violation, other hash).
 */
#include <stdlib.h>
#include <string.h>

#include "driftgate/err.h"
#include "driftgate/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The seeds allow sha256:1111...11 for /usr/bin/app. */
static const uint8_t digest_11[DG_SHA256_LEN] = {
	0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
	0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
	0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
};
static const uint8_t digest_22[DG_SHA256_LEN] = {0x22};

struct fixed_entry {
	const char *path;
	const char *alg;
	const uint8_t *digest;
	size_t digest_len;
	bool violation;
};

static const struct fixed_entry entries[] = {
	{"/usr/bin/app", "sha256", digest_11, DG_SHA256_LEN, false},
	{"/usr/bin/app", "sha256", digest_22, DG_SHA256_LEN, false},
	{"/tmp/scratch/run.py", "sha256", digest_11, DG_SHA256_LEN, false},
	{"/etc/shadow", "sha256", digest_11, DG_SHA256_LEN, true},
	{"/usr/bin/app", "sha1", digest_11, DG_SHA1_LEN, false},
	{"/opt/app/run\tme ", "sha256", digest_11, DG_SHA256_LEN, false},
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dg_policy *p = NULL;
	struct dg_log_entry e;
	struct dg_reason why;
	char err[256];
	int rc;

	rc = dg_policy_parse((const char *)data, size, &p, err, sizeof err);
	if (rc != DG_OK) {
		if (p != NULL || strncmp(err, "line ", 5) != 0 || strchr(err, '\n') != NULL)
			abort();
		return 0;
	}
	if (dg_policy_name(p)[0] == '\0')
		abort();
	for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++) {
		memset(&e, 0, sizeof e);
		memset(&why, 0, sizeof why);
		e.hash_alg = entries[i].alg;
		e.digest = entries[i].digest;
		e.digest_len = entries[i].digest_len;
		e.path = entries[i].path;
		e.path_len = strlen(entries[i].path);
		e.violation = entries[i].violation;
		rc = dg_policy_appraise(p, &e, &why);
		if (rc == DG_ERR_POLICY ? why.code[0] == '\0' : rc != DG_OK)
			abort();
	}
	(void)dg_policy_applies(p, "node-1");
	(void)dg_policy_allows_secret(p, "db-password");
	for (size_t i = 0; i < dg_policy_secret_count(p); i++) {
		if (dg_policy_secret(p, i) == NULL)
			abort();
	}
	(void)dg_policy_allow_count(p);
	dg_policy_free(p);
	return 0;
}
