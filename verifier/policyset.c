#include "policyset.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "driftgate/err.h"
#include "driftgate/file.h"

struct dg_policyset {
	struct dg_policy **policies;
	size_t count;
	struct dg_workload **workloads;
	size_t n_workloads;
	EVP_MD_CTX *digest; /* while loading: every file read, by name and content */
	char version[DG_POLICYSET_VERSION_LEN + 1];
};

/* dg_file_read, and the file's name and bytes into the set's version. */
static int
read_policy_file(struct dg_policyset *s, int dir_fd, const char *name, char **text, size_t *len)
{
	int rv = dg_file_read(dir_fd, name, DG_POLICY_MAX_TEXT, text, len);
	uint8_t n[8];
	if (rv != DG_OK)
		return rv;
	for (int i = 0; i < 8; i++)
		n[i] = (uint8_t)((uint64_t)*len >> (56 - 8 * i));
	/* name with its NUL, then a length: no two file sets hash alike */
	if (EVP_DigestUpdate(s->digest, name, strlen(name) + 1) != 1 ||
	    EVP_DigestUpdate(s->digest, n, sizeof n) != 1 ||
	    EVP_DigestUpdate(s->digest, *text, *len) != 1) {
		free(*text);
		*text = NULL;
		return DG_ERR_CRYPTO;
	}
	return DG_OK;
}

static int
has_suffix(const char *name, const char *suffix)
{
	size_t n = strlen(name), k = strlen(suffix);
	return name[0] != '.' && n > k && strcmp(name + n - k, suffix) == 0;
}

static int
is_baseline(const struct dirent *d)
{
	return has_suffix(d->d_name, ".baseline");
}

static int
is_workload(const struct dirent *d)
{
	return has_suffix(d->d_name, ".workload");
}

/* NAME.workload and the NAME.d/ files of each container it lists. */
static int
load_workload(struct dg_policyset *s, int dir_fd, const char *dir, const char *file,
              struct dg_workload **out, char *err, size_t err_cap)
{
	char *text = NULL, *record = NULL, *manifest = NULL, why[400] = "";
	char stem[256], path[600];
	size_t len = 0, record_len = 0, manifest_len = 0;
	struct dg_workload *w = NULL;
	int rv;

	snprintf(stem, sizeof stem, "%.*s", (int)(strlen(file) - strlen(".workload")), file);
	if ((rv = read_policy_file(s, dir_fd, file, &text, &len)) != DG_OK) {
		snprintf(err, err_cap, "%s/%s: %s", dir, file, dg_strerror(rv));
		goto out;
	}
	if ((rv = dg_workload_parse(text, len, &w, why, sizeof why)) != DG_OK) {
		snprintf(err, err_cap, "%s/%s: %s", dir, file, why);
		goto out;
	}
	for (size_t i = 0; i < dg_workload_container_count(w); i++) {
		const char *name = dg_workload_container_name(w, i);
		free(record);
		free(manifest);
		record = manifest = NULL;
		snprintf(path, sizeof path, "%s.d/%s.record", stem, name);
		if ((rv = read_policy_file(s, dir_fd, path, &record, &record_len)) == DG_OK) {
			snprintf(path, sizeof path, "%s.d/%s.manifest", stem, name);
			rv = read_policy_file(s, dir_fd, path, &manifest, &manifest_len);
		}
		if (rv != DG_OK) {
			snprintf(err, err_cap, "%s/%s: %s", dir, path, dg_strerror(rv));
			goto out;
		}
		if ((rv = dg_workload_set_container(w, name, record, record_len, manifest,
		                                    manifest_len, why, sizeof why)) != DG_OK) {
			snprintf(err, err_cap, "%s/%s.d/%s: %s", dir, stem, name, why);
			goto out;
		}
	}
	if ((rv = dg_workload_check_complete(w, why, sizeof why)) != DG_OK) {
		snprintf(err, err_cap, "%s/%s: %s", dir, file, why);
		goto out;
	}
	*out = w;
	w = NULL;
out:
	dg_workload_free(w);
	free(text);
	free(record);
	free(manifest);
	return rv;
}

int
dg_policyset_load(const char *dir, struct dg_policyset **out, char *err, size_t err_cap)
{
	struct dirent **names = NULL;
	struct dg_policyset *s = calloc(1, sizeof *s);
	int n = -1, rv = DG_ERR_NOMEM, dir_fd = -1;
	if (s == NULL)
		return rv;
	if ((s->digest = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(s->digest, EVP_sha256(), NULL) != 1)
		goto out;
	if ((dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    (n = scandir(dir, &names, is_baseline, alphasort)) < 0) {
		snprintf(err, err_cap, "%s: %s", dir, strerror(errno));
		rv = DG_ERR_IO;
		goto out;
	}
	/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers */
	if (n > 0 && (s->policies = calloc((size_t)n, sizeof *s->policies)) == NULL)
		goto out;
	rv = DG_OK;
	for (int i = 0; i < n && rv == DG_OK; i++) {
		char *text = NULL, why[400];
		size_t len = 0;
		if ((rv = read_policy_file(s, dir_fd, names[i]->d_name, &text, &len)) != DG_OK) {
			snprintf(err, err_cap, "%s/%s: %s", dir, names[i]->d_name, dg_strerror(rv));
			break;
		}
		rv = dg_policy_parse(text, len, &s->policies[s->count], why, sizeof why);
		free(text);
		if (rv != DG_OK) {
			snprintf(err, err_cap, "%s/%s: %s", dir, names[i]->d_name, why);
			break;
		}
		s->count++;
	}
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	names = NULL;
	n = 0;
	if (rv == DG_OK && (n = scandir(dir, &names, is_workload, alphasort)) < 0) {
		snprintf(err, err_cap, "%s: %s", dir, strerror(errno));
		rv = DG_ERR_IO;
	}
	/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers */
	if (rv == DG_OK && n > 0 && (s->workloads = calloc((size_t)n, sizeof *s->workloads)) == NULL)
		rv = DG_ERR_NOMEM;
	for (int i = 0; i < n && rv == DG_OK; i++) {
		rv = load_workload(s, dir_fd, dir, names[i]->d_name, &s->workloads[s->n_workloads],
		                   err, err_cap);
		if (rv == DG_OK)
			s->n_workloads++;
	}
	if (rv == DG_OK) {
		uint8_t md[32];
		static const char hex[] = "0123456789abcdef";
		if (EVP_DigestFinal_ex(s->digest, md, NULL) != 1)
			rv = DG_ERR_CRYPTO;
		for (size_t i = 0; i < DG_POLICYSET_VERSION_LEN / 2; i++) {
			s->version[2 * i] = hex[md[i] >> 4];
			s->version[2 * i + 1] = hex[md[i] & 15];
		}
	}
out:
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (dir_fd >= 0)
		close(dir_fd);
	EVP_MD_CTX_free(s->digest);
	s->digest = NULL;
	if (rv != DG_OK) {
		dg_policyset_free(s);
		return rv;
	}
	*out = s;
	return DG_OK;
}

void
dg_policyset_free(struct dg_policyset *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->count; i++)
		dg_policy_free(s->policies[i]);
	free(s->policies);
	for (size_t i = 0; i < s->n_workloads; i++)
		dg_workload_free(s->workloads[i]);
	free(s->workloads);
	free(s);
}

size_t
dg_policyset_count(const struct dg_policyset *s)
{
	return s->count;
}

const char *
dg_policyset_version(const struct dg_policyset *s)
{
	return s->version;
}

const struct dg_policy *
dg_policyset_for_agent(const struct dg_policyset *s, const char *id)
{
	for (size_t i = 0; i < s->count; i++)
		if (dg_policy_applies(s->policies[i], id))
			return s->policies[i];
	return NULL;
}

const struct dg_workload *const *
dg_policyset_workloads(const struct dg_policyset *s, size_t *n)
{
	*n = s->n_workloads;
	return (const struct dg_workload *const *)s->workloads;
}

const struct dg_workload *
dg_policyset_workload(const struct dg_policyset *s, const char *name)
{
	size_t n;
	const struct dg_workload *const *w = dg_policyset_workloads(s, &n);
	for (size_t i = 0; i < n; i++)
		if (strcmp(dg_workload_name(w[i]), name) == 0)
			return w[i];
	return NULL;
}
