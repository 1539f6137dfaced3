#include "driftgate/fswalk.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "driftgate/err.h"

static int
/* NOLINTNEXTLINE(misc-no-recursion): bounded by DG_FSWALK_MAX_DEPTH */
fswalk_at(const char *root, unsigned depth, dg_fswalk_fn fn, void *arg)
{
	struct stat st;
	struct dirent **names = NULL;
	int n, rv = DG_OK;

	if (lstat(root, &st) != 0)
		return DG_ERR_IO;
	if (S_ISREG(st.st_mode))
		return fn(root, arg);
	if (!S_ISDIR(st.st_mode))
		return DG_OK;
	if (depth > DG_FSWALK_MAX_DEPTH)
		return DG_ERR_TOOBIG;
	if ((n = scandir(root, &names, NULL, alphasort)) < 0)
		return DG_ERR_IO;
	size_t root_len = strlen(root);
	const char *sep = root_len > 0 && root[root_len - 1] == '/' ? "" : "/";
	for (int i = 0; i < n; i++) {
		const char *name = names[i]->d_name;
		char child[PATH_MAX];
		if (rv == DG_OK && strcmp(name, ".") != 0 && strcmp(name, "..") != 0) {
			int len = snprintf(child, sizeof child, "%s%s%s", root, sep, name);
			rv = len < 0 || (size_t)len >= sizeof child ? DG_ERR_TOOBIG
			                                            : fswalk_at(child, depth + 1, fn, arg);
		}
		free(names[i]);
	}
	free(names);
	return rv;
}

int
dg_fswalk(const char *root, dg_fswalk_fn fn, void *arg)
{
	return fswalk_at(root, 0, fn, arg);
}
