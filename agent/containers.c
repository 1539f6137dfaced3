#include "containers.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "driftgate/err.h"
#include "driftgate/file.h"

/* A small array: containers per node are few, lookups are by exec event. */
struct dg_agent_containers {
	struct dg_agent_container *items[DG_AGENT_MAX_CONTAINERS];
	size_t count;
};

int
dg_agent_containers_new(struct dg_agent_containers **out)
{
	*out = calloc(1, sizeof **out);
	return *out ? DG_OK : DG_ERR_NOMEM;
}

static void
container_free(struct dg_agent_container *c)
{
	if (c == NULL)
		return;
	free(c->manifest_text);
	dg_manifest_free(c->manifest);
	free(c);
}

void
dg_agent_containers_free(struct dg_agent_containers *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->count; i++)
		container_free(t->items[i]);
	free(t);
}

static size_t
index_of(const struct dg_agent_containers *t, const char *id)
{
	for (size_t i = 0; i < t->count; i++)
		if (strcmp(t->items[i]->id, id) == 0)
			return i;
	return t->count;
}

int
dg_agent_containers_add(struct dg_agent_containers *t, struct dg_agent_container *c)
{
	struct dg_agent_container *stale = dg_agent_containers_by_mntns(t, c->mntns);
	if (stale != NULL && strcmp(stale->id, c->id) != 0)
		dg_agent_containers_remove(t, stale->id);
	if (index_of(t, c->id) != t->count)
		return DG_ERR_EXISTS;
	if (t->count == DG_AGENT_MAX_CONTAINERS)
		return DG_ERR_TOOBIG;
	struct dg_agent_container *copy = malloc(sizeof *copy);
	if (copy == NULL)
		return DG_ERR_NOMEM;
	*copy = *c;
	c->manifest_text = NULL;
	c->manifest = NULL;
	t->items[t->count++] = copy;
	return DG_OK;
}

void
dg_agent_containers_remove(struct dg_agent_containers *t, const char *id)
{
	size_t i = index_of(t, id);
	if (i == t->count)
		return;
	container_free(t->items[i]);
	t->items[i] = t->items[--t->count];
}

struct dg_agent_container *
dg_agent_containers_by_mntns(struct dg_agent_containers *t, uint64_t mntns)
{
	for (size_t i = 0; i < t->count; i++)
		if (t->items[i]->mntns == mntns)
			return t->items[i];
	return NULL;
}

struct dg_agent_container *
dg_agent_containers_by_id(struct dg_agent_containers *t, const char *id)
{
	size_t i = index_of(t, id);
	return i < t->count ? t->items[i] : NULL;
}

size_t
dg_agent_containers_count(const struct dg_agent_containers *t)
{
	return t->count;
}

struct dg_agent_container *
dg_agent_containers_at(struct dg_agent_containers *t, size_t i)
{
	return i < t->count ? t->items[i] : NULL;
}

#define INFO_MAX 8192

static int
path_of(char *out, size_t cap, const char *dir, const char *id, const char *suffix)
{
	int n = snprintf(out, cap, "%s/containers/%s%s", dir, id, suffix);
	return n < 0 || (size_t)n >= cap ? DG_ERR_TOOBIG : DG_OK;
}

/* Write data to path atomically: temporary file, fsync, rename. */
static int
write_atomic(const char *path, const char *data, size_t len)
{
	char tmp[PATH_MAX + 16];
	int rv = DG_ERR_IO, fd;
	if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
		return DG_ERR_TOOBIG;
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0)
		return DG_ERR_IO;
	size_t done = 0;
	while (done < len) {
		ssize_t n = write(fd, data + done, len - done);
		if (n <= 0)
			goto out;
		done += (size_t)n;
	}
	if (fsync(fd) != 0)
		goto out;
	rv = rename(tmp, path) == 0 ? DG_OK : DG_ERR_IO;
out:
	close(fd);
	if (rv != DG_OK)
		unlink(tmp);
	return rv;
}

int
dg_agent_containers_save(const char *dir, const struct dg_agent_container *c)
{
	char path[PATH_MAX], info[INFO_MAX];
	int rv;
	if ((rv = path_of(path, sizeof path, dir, "", "")) != DG_OK)
		return rv;
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		return DG_ERR_IO;
	int n = snprintf(info, sizeof info, "mntns %" PRIu64 "\nrootfs %s\n", c->mntns, c->rootfs);
	if (n < 0 || (size_t)n >= sizeof info)
		return DG_ERR_TOOBIG;
	/* The manifest first: an info file never exists without its manifest. */
	if ((rv = path_of(path, sizeof path, dir, c->id, ".manifest")) != DG_OK ||
	    (rv = write_atomic(path, c->manifest_text, c->manifest_len)) != DG_OK ||
	    (rv = path_of(path, sizeof path, dir, c->id, ".info")) != DG_OK)
		return rv;
	return write_atomic(path, info, (size_t)n);
}

void
dg_agent_containers_forget(const char *dir, const char *id)
{
	char path[PATH_MAX];
	if (path_of(path, sizeof path, dir, id, ".info") == DG_OK)
		unlink(path);
	if (path_of(path, sizeof path, dir, id, ".manifest") == DG_OK)
		unlink(path);
}

/* Is a process still in the mount namespace with this inode? */
static bool
mntns_alive(uint64_t mntns)
{
	DIR *proc = opendir("/proc");
	struct dirent *d;
	bool alive = false;
	if (proc == NULL)
		return false;
	while (!alive && (d = readdir(proc)) != NULL) {
		char ns[300];
		struct stat st;
		if (d->d_name[0] < '1' || d->d_name[0] > '9')
			continue;
		snprintf(ns, sizeof ns, "/proc/%s/ns/mnt", d->d_name);
		alive = stat(ns, &st) == 0 && (uint64_t)st.st_ino == mntns;
	}
	closedir(proc);
	return alive;
}

/* One saved container: bounded, strict, or refused. */
static int
load_one(const char *dir, const char *id, struct dg_agent_containers *t)
{
	char path[PATH_MAX], *info = NULL, rootfs_line[PATH_MAX + 16];
	struct dg_agent_container c;
	size_t info_len = 0;
	int rv;

	memset(&c, 0, sizeof c);
	if (strlen(id) > DG_CONTAINER_ID_MAX)
		return DG_ERR_FORMAT;
	snprintf(c.id, sizeof c.id, "%s", id);
	if ((rv = path_of(path, sizeof path, dir, id, ".info")) != DG_OK ||
	    (rv = dg_file_read(AT_FDCWD, path, INFO_MAX, &info, &info_len)) != DG_OK)
		goto out;
	rv = DG_ERR_FORMAT;
	char *nl = strchr(info, '\n'), *end = NULL;
	/* strtoull, unlike sscanf, reports overflow; digits only, up to the newline. */
	if (nl == NULL || strncmp(info, "mntns ", 6) != 0 || info[6] < '0' || info[6] > '9')
		goto out;
	errno = 0;
	c.mntns = strtoull(info + 6, &end, 10);
	if (errno != 0 || end != nl)
		goto out;
	snprintf(rootfs_line, sizeof rootfs_line, "%s", nl + 1);
	if (strncmp(rootfs_line, "rootfs ", 7) != 0 || strchr(rootfs_line, '\n') == NULL)
		goto out;
	*strchr(rootfs_line, '\n') = '\0';
	c.rootfs_len = strlen(rootfs_line + 7);
	if (c.rootfs_len >= sizeof c.rootfs)
		goto out;
	memcpy(c.rootfs, rootfs_line + 7, c.rootfs_len + 1);
	if (!mntns_alive(c.mntns)) {
		rv = DG_ERR_NOTFOUND;
		goto out;
	}
	if ((rv = path_of(path, sizeof path, dir, id, ".manifest")) != DG_OK ||
	    (rv = dg_file_read(AT_FDCWD, path, DG_MANIFEST_MAX_TEXT, &c.manifest_text,
	                         &c.manifest_len)) != DG_OK ||
	    (rv = dg_manifest_parse(c.manifest_text, c.manifest_len, &c.manifest)) != DG_OK)
		goto out;
	/* Its entries were logged in an earlier run; the verifier has them. */
	c.rootfs_entry = 0;
	rv = dg_agent_containers_add(t, &c);
out:
	free(info);
	free(c.manifest_text);
	dg_manifest_free(c.manifest);
	return rv;
}

int
dg_agent_containers_load(const char *dir, struct dg_agent_containers *t)
{
	char path[PATH_MAX];
	struct dirent *d;
	DIR *dp;
	int rv = path_of(path, sizeof path, dir, "", "");
	if (rv != DG_OK)
		return rv;
	if ((dp = opendir(path)) == NULL)
		return errno == ENOENT ? DG_OK : DG_ERR_IO;
	while ((d = readdir(dp)) != NULL) {
		size_t n = strlen(d->d_name);
		if (n <= 5 || strcmp(d->d_name + n - 5, ".info") != 0)
			continue;
		char id[NAME_MAX + 1];
		snprintf(id, sizeof id, "%.*s", (int)(n - 5), d->d_name);
		rv = load_one(dir, id, t);
		if (rv == DG_OK) {
			fprintf(stderr, "driftgate-agent: container %s still runs: watching it again\n", id);
			continue;
		}
		fprintf(stderr, "driftgate-agent: forgetting saved container %s: %s\n", id,
		        rv == DG_ERR_NOTFOUND ? "no longer runs" : dg_strerror(rv));
		dg_agent_containers_forget(dir, id);
	}
	closedir(dp);
	return DG_OK;
}
