#include "driftgate/bundle.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "driftgate/container.h"
#include "driftgate/err.h"

int
dg_bundle_read_config(const char *bundle, char **json, size_t *len)
{
	char path[PATH_MAX + 16];
	struct stat st;
	char *buf = NULL;
	int rv = DG_ERR_IO, fd;
	if (snprintf(path, sizeof path, "%s/config.json", bundle) >= (int)sizeof path)
		return DG_ERR_TOOBIG;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return DG_ERR_IO;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		goto out;
	if ((uint64_t)st.st_size > DG_CONTAINER_MAX_JSON) {
		rv = DG_ERR_TOOBIG;
		goto out;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		rv = DG_ERR_NOMEM;
		goto out;
	}
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n <= 0)
			goto out;
		got += (size_t)n;
	}
	buf[got] = '\0';
	*json = buf;
	*len = got;
	buf = NULL;
	rv = DG_OK;
out:
	free(buf);
	close(fd);
	return rv;
}

int
dg_bundle_rootfs(const char *bundle, const char *json, char out[PATH_MAX])
{
	char joined[2 * PATH_MAX];
	int rv = DG_ERR_FORMAT;
	json_object *root = json_tokener_parse(json), *r, *p;
	if (root == NULL || !json_object_object_get_ex(root, "root", &r) ||
	    !json_object_object_get_ex(r, "path", &p) || !json_object_is_type(p, json_type_string))
		goto out;
	const char *path = json_object_get_string(p);
	int n = snprintf(joined, sizeof joined, "%s%s%s", path[0] == '/' ? "" : bundle,
	                 path[0] == '/' ? "" : "/", path);
	if (n < 0 || (size_t)n >= sizeof joined) {
		rv = DG_ERR_TOOBIG;
		goto out;
	}
	rv = realpath(joined, out) != NULL ? DG_OK : DG_ERR_IO;
out:
	json_object_put(root);
	return rv;
}
