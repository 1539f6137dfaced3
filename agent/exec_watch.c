#include "exec_watch.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <poll.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <unistd.h>

#include "driftgate/err.h"

#define LOG_PREFIX "driftgate-agent: exec-watch: "
/* How often the loop looks at *stop when no event arrives. */
#define POLL_MS 100
/* Room for many events per read: a burst of execs costs one syscall. */
#define READ_BUF 8192

struct dg_exec_watch {
	int fd;
	/* /proc and /proc/self/fd held open: resolving relative to them saves
	 * two path walks per exec (about 2 us of a 20 us budget here). */
	int proc_fd, self_fd_dir;
	bool enforce;
	size_t n_fs;
	dev_t fs[DG_EXEC_WATCH_MAX_FS];
	/* Written by the loop thread, read by anyone. */
	_Atomic uint64_t events, allowed, denied, errors, overflows;
	char path[PATH_MAX + 1]; /* the current event's path, reused */
};

static uint64_t
bump(_Atomic uint64_t *c)
{
	return atomic_fetch_add_explicit(c, 1, memory_order_relaxed) + 1;
}

int
dg_exec_watch_open(struct dg_exec_watch **out)
{
	return dg_exec_watch_open_flags(0, out);
}

int
dg_exec_watch_open_flags(unsigned flags, struct dg_exec_watch **out)
{
	int rv = DG_ERR_INVAL;
	struct dg_exec_watch *w = NULL;
	if (out == NULL || (flags & ~(unsigned)DG_EXEC_WATCH_BOUNDED_QUEUE) != 0)
		goto out;
	*out = NULL;
	rv = DG_ERR_NOMEM;
	if ((w = calloc(1, sizeof *w)) == NULL)
		goto out;
	w->fd = w->proc_fd = w->self_fd_dir = -1;
	rv = DG_ERR_IO;
	w->proc_fd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
	w->self_fd_dir = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (w->proc_fd < 0 || w->self_fd_dir < 0) {
		fprintf(stderr, LOG_PREFIX "/proc: %s\n", strerror(errno));
		goto out;
	}
	/*
	 * Unlimited queue: a permission event blocks the task that caused it, so
	 * the queue can never hold more events than there are tasks. A bounded
	 * queue would be worse than useless: the kernel ALLOWS a permission
	 * event it drops on overflow, so an exec flood would let one exec pass
	 * unmeasured.
	 */
	unsigned init = FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK;
	if (!(flags & DG_EXEC_WATCH_BOUNDED_QUEUE))
		init |= FAN_UNLIMITED_QUEUE;
	w->fd = fanotify_init(init, O_RDONLY | O_LARGEFILE | O_CLOEXEC);
	if (w->fd < 0) {
		int e = errno;
		fprintf(stderr, LOG_PREFIX "fanotify_init: %s\n", strerror(e));
		rv = e == EPERM ? DG_ERR_PERM
		     : e == EINVAL || e == ENOSYS ? DG_ERR_UNSUPPORTED
		                                  : DG_ERR_IO;
		goto out;
	}
	*out = w;
	w = NULL;
	rv = DG_OK;
out:
	dg_exec_watch_close(w);
	return rv;
}

void
dg_exec_watch_set_enforce(struct dg_exec_watch *w, bool enforce)
{
	if (w != NULL)
		w->enforce = enforce;
}

int
dg_exec_watch_add(struct dg_exec_watch *w, const char *path)
{
	struct stat st;
	if (w == NULL || path == NULL)
		return DG_ERR_INVAL;
	if (stat(path, &st) != 0) {
		fprintf(stderr, LOG_PREFIX "%s: %s\n", path, strerror(errno));
		return DG_ERR_IO;
	}
	for (size_t i = 0; i < w->n_fs; i++)
		if (w->fs[i] == st.st_dev)
			return DG_OK;
	if (w->n_fs == DG_EXEC_WATCH_MAX_FS)
		return DG_ERR_TOOBIG;
	/* A filesystem mark, not a mount mark: a container sees its rootfs
	 * through a bind mount in its own mount namespace, which a mount mark
	 * made from the host would not cover. */
	if (fanotify_mark(w->fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_OPEN_EXEC_PERM, AT_FDCWD,
	                  path) != 0) {
		int e = errno;
		fprintf(stderr, LOG_PREFIX "fanotify_mark %s: %s\n", path, strerror(e));
		return e == EPERM ? DG_ERR_PERM : e == EINVAL || e == ENODEV || e == EXDEV
		                                      ? DG_ERR_UNSUPPORTED
		                                      : DG_ERR_IO;
	}
	w->fs[w->n_fs++] = st.st_dev;
	return DG_OK;
}

size_t
dg_exec_watch_fs_count(const struct dg_exec_watch *w)
{
	return w != NULL ? w->n_fs : 0;
}

/* Tell the kernel; failure here cannot be fixed by us (the fd is the key), so
 * it is logged and counted. */
static void
respond(struct dg_exec_watch *w, int fd, bool allow)
{
	struct fanotify_response r = {.fd = fd, .response = allow ? FAN_ALLOW : FAN_DENY};
	ssize_t n;
	do
		n = write(w->fd, &r, sizeof r);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof r) {
		fprintf(stderr, LOG_PREFIX "answering event fd %d: %s\n", fd,
		        n < 0 ? strerror(errno) : "short write");
		bump(&w->errors);
	}
	bump(&w->events);
	bump(allow ? &w->allowed : &w->denied);
}

static uint64_t
mnt_ns_of(const struct dg_exec_watch *w, pid_t pid)
{
	char p[64];
	struct stat st;
	snprintf(p, sizeof p, "%d/ns/mnt", (int)pid);
	return fstatat(w->proc_fd, p, &st, 0) == 0 ? (uint64_t)st.st_ino : 0;
}

/* Build the event for fn. DG_ERR_IO if the fd cannot be resolved. */
static int
describe(struct dg_exec_watch *w, const struct fanotify_event_metadata *m,
         struct dg_exec_event *ev)
{
	char link[32];
	w->path[0] = '\0';
	snprintf(link, sizeof link, "%d", m->fd);
	ssize_t n = readlinkat(w->self_fd_dir, link, w->path, sizeof w->path);
	if (n < 0 || (size_t)n >= sizeof w->path) {
		fprintf(stderr, LOG_PREFIX "pid %d: cannot resolve the exec'd file: %s\n",
		        (int)m->pid, n < 0 ? strerror(errno) : "path too long");
		w->path[0] = '\0'; /* readlink may have left an unterminated prefix */
		return DG_ERR_IO;
	}
	w->path[n] = '\0';
	if (fstat(m->fd, &ev->st) != 0) {
		fprintf(stderr, LOG_PREFIX "pid %d: fstat %s: %s\n", (int)m->pid, w->path,
		        strerror(errno));
		return DG_ERR_IO;
	}
	ev->pid = m->pid;
	ev->fd = m->fd;
	ev->path = w->path;
	ev->mnt_ns = mnt_ns_of(w, m->pid);
	return DG_OK;
}

static void
handle(struct dg_exec_watch *w, const struct fanotify_event_metadata *m, pid_t self,
       dg_exec_watch_fn fn, void *arg)
{
	if (m->mask & FAN_Q_OVERFLOW) {
		uint64_t n = bump(&w->overflows);
		fprintf(stderr, LOG_PREFIX "EVENT QUEUE OVERFLOW (%llu so far): the kernel let "
		                "execs run without asking; the exec log is incomplete\n",
		        (unsigned long long)n);
	}
	if (m->fd < 0)
		return; /* FAN_NOFD: nothing to answer */
	if (!(m->mask & FAN_OPEN_EXEC_PERM)) {
		close(m->fd); /* never asked for; nothing waits on it */
		return;
	}
	/* Our own execs: answering them through fn could deadlock the agent on
	 * itself, and the agent's binary is the boot chain's to measure. */
	if (m->pid == self) {
		respond(w, m->fd, true);
		close(m->fd);
		return;
	}
	struct dg_exec_event ev;
	int rv = describe(w, m, &ev);
	if (rv == DG_OK)
		rv = fn(&ev, arg);
	bool allow;
	if (rv == DG_OK) {
		allow = true;
	} else if (rv == DG_ERR_DENIED) {
		allow = false;
	} else {
		bump(&w->errors);
		allow = !w->enforce;
		fprintf(stderr, LOG_PREFIX "pid %d exec %s: %s: %s\n", (int)m->pid,
		        w->path[0] ? w->path : "?", dg_strerror(rv),
		        allow ? "allowed (detect-only)" : "denied (enforce)");
	}
	respond(w, m->fd, allow);
	close(m->fd);
}

int
dg_exec_watch_run(struct dg_exec_watch *w, dg_exec_watch_fn fn, void *arg,
                  volatile sig_atomic_t *stop)
{
	alignas(struct fanotify_event_metadata) char buf[READ_BUF];
	if (w == NULL || fn == NULL || stop == NULL)
		return DG_ERR_INVAL;
	pid_t self = getpid();
	int rv = DG_OK;
	while (!*stop) {
		struct pollfd p = {.fd = w->fd, .events = POLLIN};
		int n = poll(&p, 1, POLL_MS);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, LOG_PREFIX "poll: %s\n", strerror(errno));
			rv = DG_ERR_IO;
			goto out;
		}
		if (n == 0)
			continue;
		ssize_t len = read(w->fd, buf, sizeof buf);
		if (len < 0) {
			int e = errno;
			if (e == EAGAIN || e == EINTR)
				continue;
			if (e == EBADF || e == EINVAL || e == EFAULT) {
				fprintf(stderr, LOG_PREFIX "read: %s\n", strerror(e));
				rv = DG_ERR_IO;
				goto out;
			}
			/* The kernel could not open an fd for the event (EMFILE,
			 * ENFILE, a vanished file...): it has denied that exec
			 * itself. Count it and go on. */
			fprintf(stderr, LOG_PREFIX "an event was lost (the kernel denied it): %s\n",
			        strerror(e));
			bump(&w->errors);
			continue;
		}
		const struct fanotify_event_metadata *m = (const void *)buf;
		for (; FAN_EVENT_OK(m, len); m = FAN_EVENT_NEXT(m, len)) {
			if (m->vers != FANOTIFY_METADATA_VERSION) {
				/* Cannot parse what follows; closing the group
				 * (the caller's next step) answers it all. */
				fprintf(stderr, LOG_PREFIX "fanotify metadata version %u, expected %u\n",
				        m->vers, FANOTIFY_METADATA_VERSION);
				rv = DG_ERR_UNSUPPORTED;
				goto out;
			}
			handle(w, m, self, fn, arg);
		}
	}
out:
	return rv;
}

void
dg_exec_watch_get_stats(const struct dg_exec_watch *w, struct dg_exec_watch_stats *out)
{
	memset(out, 0, sizeof *out);
	if (w == NULL)
		return;
	/* Each field is read atomically; the set is a snapshot only roughly. */
	struct dg_exec_watch *mw = (struct dg_exec_watch *)w;
	out->events = atomic_load_explicit(&mw->events, memory_order_relaxed);
	out->allowed = atomic_load_explicit(&mw->allowed, memory_order_relaxed);
	out->denied = atomic_load_explicit(&mw->denied, memory_order_relaxed);
	out->errors = atomic_load_explicit(&mw->errors, memory_order_relaxed);
	out->overflows = atomic_load_explicit(&mw->overflows, memory_order_relaxed);
}

uint64_t
dg_exec_watch_overflows(const struct dg_exec_watch *w)
{
	struct dg_exec_watch_stats s;
	dg_exec_watch_get_stats(w, &s);
	return s.overflows;
}

void
dg_exec_watch_close(struct dg_exec_watch *w)
{
	if (w == NULL)
		return;
	if (w->fd >= 0)
		close(w->fd);
	if (w->proc_fd >= 0)
		close(w->proc_fd);
	if (w->self_fd_dir >= 0)
		close(w->self_fd_dir);
	free(w);
}

/* ---- identity cache ---------------------------------------------------- */

struct cache_slot {
	bool used;
	struct dg_exec_ident id; /* id.path owned (malloc'd) */
	uint8_t digest[32];
	int verdict;
};

struct dg_exec_cache {
	size_t mask;        /* slots - 1; slots a power of two >= 2 * max_entries */
	size_t max_entries; /* flush when reached: keeps probe chains short */
	size_t count;
	uint64_t seed; /* random: inode numbers are chosen by whoever creates files */
	struct cache_slot *slots;
};

#define CACHE_MAX_CAPACITY ((size_t)1 << 20)

int
dg_exec_cache_new(size_t capacity, struct dg_exec_cache **out)
{
	int rv = DG_ERR_INVAL;
	struct dg_exec_cache *c = NULL;
	if (out == NULL || capacity == 0 || capacity > CACHE_MAX_CAPACITY)
		goto out;
	*out = NULL;
	rv = DG_ERR_NOMEM;
	if ((c = calloc(1, sizeof *c)) == NULL)
		goto out;
	size_t slots = 2;
	while (slots < 2 * capacity)
		slots <<= 1;
	if ((c->slots = calloc(slots, sizeof *c->slots)) == NULL)
		goto out;
	c->mask = slots - 1;
	c->max_entries = capacity;
	if (getrandom(&c->seed, sizeof c->seed, 0) != (ssize_t)sizeof c->seed)
		c->seed = (uint64_t)(uintptr_t)c ^ (uint64_t)getpid(); /* only spreads load */
	*out = c;
	c = NULL;
	rv = DG_OK;
out:
	if (c != NULL)
		free(c->slots);
	free(c);
	return rv;
}

static void
cache_flush(struct dg_exec_cache *c)
{
	for (size_t i = 0; i <= c->mask; i++)
		free((char *)c->slots[i].id.path);
	memset(c->slots, 0, (c->mask + 1) * sizeof *c->slots);
	c->count = 0;
}

void
dg_exec_cache_free(struct dg_exec_cache *c)
{
	if (c == NULL)
		return;
	cache_flush(c);
	free(c->slots);
	free(c);
}

static uint64_t
mix(uint64_t x)
{
	/* splitmix64 finaliser */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

static size_t
cache_home(const struct dg_exec_cache *c, const struct dg_exec_ident *id)
{
	uint64_t h = mix(c->seed ^ id->dev);
	h = mix(h ^ id->ino);
	h = mix(h ^ id->mnt_ns);
	return (size_t)h & c->mask;
}

static bool
same_key(const struct dg_exec_ident *a, const struct dg_exec_ident *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->mnt_ns == b->mnt_ns;
}

/* The slot holding id's key, or the empty slot where it would go. Never full:
 * count < max_entries <= slots / 2. */
static struct cache_slot *
cache_probe(const struct dg_exec_cache *c, const struct dg_exec_ident *id)
{
	size_t i = cache_home(c, id);
	while (c->slots[i].used && !same_key(&c->slots[i].id, id))
		i = (i + 1) & c->mask;
	return &c->slots[i];
}

void
dg_exec_ident_from_event(const struct dg_exec_event *ev, struct dg_exec_ident *id)
{
	unsigned int gen = 0;
	memset(id, 0, sizeof *id);
	id->dev = (uint64_t)ev->st.st_dev;
	id->ino = (uint64_t)ev->st.st_ino;
	id->mnt_ns = ev->mnt_ns;
	id->mtime_ns = (int64_t)ev->st.st_mtim.tv_sec * 1000000000 + ev->st.st_mtim.tv_nsec;
	id->ctime_ns = (int64_t)ev->st.st_ctim.tv_sec * 1000000000 + ev->st.st_ctim.tv_nsec;
	id->size = (uint64_t)ev->st.st_size;
	/* The generation tells a reused inode number apart where the filesystem
	 * keeps one (ext4, xfs, btrfs); the kernel writes an int. */
	if (ioctl(ev->fd, FS_IOC_GETVERSION, &gen) == 0)
		id->generation = gen;
	id->path = ev->path;
}

int
dg_exec_cache_lookup(const struct dg_exec_cache *c, const struct dg_exec_ident *id,
                     uint8_t digest[32], int *verdict)
{
	if (c == NULL || id == NULL || id->path == NULL)
		return DG_ERR_INVAL;
	const struct cache_slot *s = cache_probe(c, id);
	if (!s->used || s->id.mtime_ns != id->mtime_ns || s->id.ctime_ns != id->ctime_ns ||
	    s->id.size != id->size || s->id.generation != id->generation ||
	    strcmp(s->id.path, id->path) != 0)
		return DG_ERR_NOTFOUND;
	if (digest != NULL)
		memcpy(digest, s->digest, 32);
	if (verdict != NULL)
		*verdict = s->verdict;
	return DG_OK;
}

int
dg_exec_cache_insert(struct dg_exec_cache *c, const struct dg_exec_ident *id,
                     const uint8_t digest[32], int verdict)
{
	if (c == NULL || id == NULL || id->path == NULL || digest == NULL)
		return DG_ERR_INVAL;
	char *path = strdup(id->path);
	if (path == NULL)
		return DG_ERR_NOMEM;
	struct cache_slot *s = cache_probe(c, id);
	if (!s->used && c->count >= c->max_entries) {
		/* Forget everything rather than evict one entry: linear probing
		 * has no cheap delete, and a miss only costs a measurement. */
		cache_flush(c);
		s = cache_probe(c, id);
	}
	if (s->used) {
		free((char *)s->id.path);
	} else {
		c->count++;
	}
	s->used = true;
	s->id = *id;
	s->id.path = path;
	memcpy(s->digest, digest, 32);
	s->verdict = verdict;
	return DG_OK;
}

size_t
dg_exec_cache_count(const struct dg_exec_cache *c)
{
	return c != NULL ? c->count : 0;
}
