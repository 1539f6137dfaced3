#include "policyset.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "driftgate/err.h"

struct dg_policyset {
	struct dg_policy **policies;
	size_t count;
};

static int
is_baseline(const struct dirent *d)
{
	size_t n = strlen(d->d_name);
	return d->d_name[0] != '.' && n > 9 && strcmp(d->d_name + n - 9, ".baseline") == 0;
}

static int
read_text(int dir_fd, const char *name, char **text, size_t *len)
{
	struct stat st;
	int rv = DG_ERR_IO;
	int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return DG_ERR_IO;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		goto out;
	if ((uint64_t)st.st_size > DG_POLICY_MAX_TEXT) {
		rv = DG_ERR_TOOBIG;
		goto out;
	}
	if ((*text = malloc((size_t)st.st_size + 1)) == NULL) {
		rv = DG_ERR_NOMEM;
		goto out;
	}
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, *text + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got != (size_t)st.st_size) {
		free(*text);
		*text = NULL;
		goto out;
	}
	*len = got;
	rv = DG_OK;
out:
	close(fd);
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
	if ((dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    (n = scandir(dir, &names, is_baseline, alphasort)) < 0) {
		snprintf(err, err_cap, "%s: %s", dir, strerror(errno));
		rv = DG_ERR_IO;
		goto out;
	}
	if (n > 0 && (s->policies = calloc((size_t)n, sizeof *s->policies)) == NULL)
		goto out;
	rv = DG_OK;
	for (int i = 0; i < n && rv == DG_OK; i++) {
		char *text = NULL, why[400];
		size_t len = 0;
		if ((rv = read_text(dir_fd, names[i]->d_name, &text, &len)) != DG_OK) {
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
out:
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (dir_fd >= 0)
		close(dir_fd);
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
	free(s);
}

size_t
dg_policyset_count(const struct dg_policyset *s)
{
	return s->count;
}

const struct dg_policy *
dg_policyset_for_agent(const struct dg_policyset *s, const char *id)
{
	for (size_t i = 0; i < s->count; i++)
		if (dg_policy_applies(s->policies[i], id))
			return s->policies[i];
	return NULL;
}
