/*
 * Exec watching with fanotify permission events (FAN_OPEN_EXEC_PERM).
 *
 * The kernel holds every execve of a file on a watched filesystem (and the
 * open of a shebang script's interpreter, and of an ELF's PT_INTERP loader)
 * until this module answers. For each event the caller's function sees the
 * pid, a readable fd on the very file being exec'd, its path and identity, and
 * the pid's mount namespace, and decides allow or deny; the module always
 * answers, whatever happens, because an unanswered event hangs the exec for
 * ever. Independent of the rest of the agent: it calls back into it.
 *
 * The identity cache beside it lets the caller measure an unchanged binary
 * once, like IMA, and a changed one again.
 *
 * Not thread-safe except where stated: one thread runs dg_exec_watch_run, and
 * the callback runs on that thread.
 */
#ifndef DRIFTGATE_AGENT_EXEC_WATCH_H
#define DRIFTGATE_AGENT_EXEC_WATCH_H

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

/* One exec about to happen. Valid only during the callback. */
struct dg_exec_event {
	pid_t pid;        /* the exec'ing process (thread group id) */
	int fd;           /* read-only fd on the file; the module closes it */
	const char *path; /* readlink of /proc/self/fd/<fd>: as the agent's root
	                   * sees it; for a file reachable only through another
	                   * mount namespace, the path inside that namespace's
	                   * mount; " (deleted)" is appended to an unlinked file */
	struct stat st;   /* fstat of fd */
	uint64_t mnt_ns;  /* inode of /proc/<pid>/ns/mnt; 0 if the process is gone */
};

/* Return DG_OK to allow, DG_ERR_DENIED to deny. Any other value is an internal
 * error: the exec is allowed (detect-only) or denied (enforce), and counted. */
typedef int (*dg_exec_watch_fn)(const struct dg_exec_event *ev, void *arg);

/* Counters, readable from any thread while the loop runs. */
struct dg_exec_watch_stats {
	uint64_t events;    /* permission events answered, own pid included */
	uint64_t allowed;
	uint64_t denied;    /* by the callback or by enforce after an error */
	uint64_t errors;    /* internal errors (module or callback) */
	uint64_t overflows; /* FAN_Q_OVERFLOW seen: execs went unmeasured */
};

struct dg_exec_watch;

/* Open flags for dg_exec_watch_open_flags. */
enum {
	/* Use the kernel's bounded queue (fs.fanotify.max_queued_events) instead
	 * of an unlimited one. Only for tests of the overflow path: the kernel
	 * ALLOWS a permission event it drops on overflow. */
	DG_EXEC_WATCH_BOUNDED_QUEUE = 1u << 0,
};

/*
 * A fanotify group for exec permission events (CAP_SYS_ADMIN needed):
 * FAN_CLASS_CONTENT, non-blocking, close-on-exec, unlimited queue. Detect-only
 * (enforce off) until dg_exec_watch_set_enforce. DG_ERR_PERM without the
 * capability, DG_ERR_UNSUPPORTED if the kernel lacks permission events.
 */
int dg_exec_watch_open(struct dg_exec_watch **out);
int dg_exec_watch_open_flags(unsigned flags, struct dg_exec_watch **out);

/* Enforce: deny the exec when the module or the callback fails (fail
 * closed). Off: allow it, log it and count it (fail open). */
void dg_exec_watch_set_enforce(struct dg_exec_watch *w, bool enforce);

/*
 * Watch execs on the whole filesystem holding path (FAN_MARK_FILESYSTEM): every
 * mount of it, in every mount namespace, so a container's bind-mounted rootfs
 * included. Idempotent per filesystem (st_dev). DG_ERR_IO if path cannot be
 * stat'ed, DG_ERR_TOOBIG beyond DG_EXEC_WATCH_MAX_FS filesystems.
 */
#define DG_EXEC_WATCH_MAX_FS 64
int dg_exec_watch_add(struct dg_exec_watch *w, const char *path);
size_t dg_exec_watch_fs_count(const struct dg_exec_watch *w);

/*
 * Answer events until *stop becomes non-zero (checked at least every 100 ms).
 * Events of the calling process's own pid are allowed without calling fn.
 * Returns DG_OK when stopped, DG_ERR_IO if reading the group fails; events
 * still queued are answered (allowed) by dg_exec_watch_close.
 */
int dg_exec_watch_run(struct dg_exec_watch *w, dg_exec_watch_fn fn, void *arg,
                      volatile sig_atomic_t *stop);

/* A snapshot of the counters (safe from any thread). */
void dg_exec_watch_get_stats(const struct dg_exec_watch *w, struct dg_exec_watch_stats *out);
/* The overflow count alone: non-zero means some execs were not seen, and the
 * agent should log a violation. */
uint64_t dg_exec_watch_overflows(const struct dg_exec_watch *w);

/* Close the group: the kernel allows every event still pending. NULL is fine. */
void dg_exec_watch_close(struct dg_exec_watch *w);

/*
 * Identity cache: what an exec'd file was when it was last measured, per
 * (device, inode, mount namespace): a file whose change state (mtime, ctime,
 * size, inode generation) and exec path are the same is not measured again.
 * ctime is the guard: a write restores mtime with utimensat only at the cost of
 * a new ctime, which userspace cannot set. Bounded: when full it forgets
 * everything (a miss only costs a measurement).
 */
struct dg_exec_ident {
	uint64_t dev, ino, mnt_ns;
	int64_t mtime_ns, ctime_ns;
	uint64_t size;
	uint64_t generation; /* FS_IOC_GETVERSION, 0 where unsupported */
	const char *path;    /* compared on lookup, copied on insert */
};

struct dg_exec_cache;

/* capacity: entries kept before the cache is flushed (>= 1, <= 1 << 20). */
int dg_exec_cache_new(size_t capacity, struct dg_exec_cache **out);
void dg_exec_cache_free(struct dg_exec_cache *c);

/* Fill id from an event (one ioctl for the generation). id->path points into ev. */
void dg_exec_ident_from_event(const struct dg_exec_event *ev, struct dg_exec_ident *id);

/* DG_OK and the stored digest and verdict if the identity is cached and
 * unchanged; DG_ERR_NOTFOUND if absent or stale. */
int dg_exec_cache_lookup(const struct dg_exec_cache *c, const struct dg_exec_ident *id,
                         uint8_t digest[32], int *verdict);
/* Record (or replace) the measurement of id. DG_ERR_NOMEM, DG_ERR_INVAL. */
int dg_exec_cache_insert(struct dg_exec_cache *c, const struct dg_exec_ident *id,
                         const uint8_t digest[32], int verdict);
size_t dg_exec_cache_count(const struct dg_exec_cache *c);

#endif
