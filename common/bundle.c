#include "driftgate/bundle.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>

#include <json-c/json.h>

#include "driftgate/container.h"
#include "driftgate/err.h"
#include "driftgate/file.h"

int
dg_bundle_read_config(const char *bundle, char **json, size_t *len)
{
	char path[PATH_MAX + 16];
	if (snprintf(path, sizeof path, "%s/config.json", bundle) >= (int)sizeof path)
		return DG_ERR_TOOBIG;
	return dg_file_read(AT_FDCWD, path, DG_CONTAINER_MAX_JSON, json, len);
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
