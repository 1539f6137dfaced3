/*
 * Exec watching with fanotify permission events (root required): the callback
 * sees each exec with the right pid, path, identity, mount namespace and a
 * readable fd; a denial makes execve fail; a shebang script and its
 * interpreter are both asked about; callback errors fail open or closed as
 * configured; the agent's own execs never reach the callback; a flood with a
 * slow callback loses nothing (unlimited queue) while the kernel's bounded
 * queue overflows, is counted, and lets execs through; the stop flag ends the
 * loop. The identity cache hits an unchanged file and misses a rewritten one
 * whose mtime was put back. Prints the added exec latency (a benchmark).
 *
 * Every test marks a private tmpfs mounted in a private mount namespace: a
 * filesystem mark on /tmp (the root filesystem here) would hold every exec on
 * the machine, other builds included, behind this test's callback.
 */
#include "driftgate/err.h"
#include "exec_watch.h"
#include "testutil.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_SEEN 64
#define EXEC_ERRNO_BASE 200 /* a child whose execve failed exits 200 + errno */

/* ---- fixture: a private tmpfs with copies of /bin/true and busybox ------ */

static char *dir;
static char true_bin[PATH_MAX], busybox[PATH_MAX];

static void
setup(void)
{
	dir = tu_tmpdir();
	ck_assert_ptr_nonnull(dir);
	ck_assert_msg(mount("tmpfs", dir, "tmpfs", 0, "mode=0755,size=64m") == 0, "mount tmpfs: %s",
	              strerror(errno));
	snprintf(true_bin, sizeof true_bin, "%s/true", dir);
	snprintf(busybox, sizeof busybox, "%s/busybox", dir);
	ck_assert_int_eq(tu_sh("cp /bin/true %s && cp /bin/busybox %s", true_bin, busybox), 0);
}

static void
teardown(void)
{
	umount2(dir, MNT_DETACH);
	rmdir(dir);
	free(dir);
	dir = NULL;
}

static uint64_t
now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* fork + execve; returns the child's pid (not waited for). */
static pid_t
spawn(const char *path)
{
	char *const argv[] = {(char *)path, NULL};
	char *const envp[] = {NULL};
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		execve(path, argv, envp);
		_exit(EXEC_ERRNO_BASE + (errno < 50 ? errno : 50));
	}
	return pid;
}

/* The exit status of a spawned child (-1 if it did not exit normally). */
static int
reap(pid_t pid)
{
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int
run_exit(const char *path, pid_t *pid_out)
{
	pid_t pid = spawn(path);
	if (pid_out != NULL)
		*pid_out = pid;
	return reap(pid);
}

static bool
denied_status(int status)
{
	return status == EXEC_ERRNO_BASE + EPERM || status == EXEC_ERRNO_BASE + EACCES;
}

/* ---- a recording callback ----------------------------------------------- */

struct seen {
	pid_t pid;
	char path[PATH_MAX];
	struct stat st;
	uint64_t mnt_ns;
	unsigned char head[4];
	ssize_t head_len;
};

struct rec {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t n;
	struct seen ev[MAX_SEEN];
	const char *deny_suffix; /* deny paths ending with it */
	int fail_with;           /* return this instead (an internal error) */
	bool hold;               /* block the first call until released */
	bool holding, released;
	struct dg_exec_cache *cache; /* if set: cache lookup, insert on miss */
	size_t misses;
};

static void
rec_init(struct rec *r)
{
	memset(r, 0, sizeof *r);
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
}

static bool
ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int
rec_fn(const struct dg_exec_event *ev, void *arg)
{
	struct rec *r = arg;
	pthread_mutex_lock(&r->mu);
	if (r->n < MAX_SEEN) {
		struct seen *s = &r->ev[r->n];
		s->pid = ev->pid;
		snprintf(s->path, sizeof s->path, "%s", ev->path);
		s->st = ev->st;
		s->mnt_ns = ev->mnt_ns;
		s->head_len = pread(ev->fd, s->head, sizeof s->head, 0);
	}
	r->n++;
	if (r->hold && !r->released) {
		r->holding = true;
		pthread_cond_broadcast(&r->cv);
		while (!r->released)
			pthread_cond_wait(&r->cv, &r->mu);
	}
	const char *deny = r->deny_suffix;
	int rv = r->fail_with;
	pthread_mutex_unlock(&r->mu);
	if (deny != NULL && ends_with(ev->path, deny))
		return DG_ERR_DENIED;
	return rv;
}

static void
rec_deny(struct rec *r, const char *suffix)
{
	pthread_mutex_lock(&r->mu);
	r->deny_suffix = suffix;
	pthread_mutex_unlock(&r->mu);
}

static size_t
rec_count(struct rec *r)
{
	pthread_mutex_lock(&r->mu);
	size_t n = r->n;
	pthread_mutex_unlock(&r->mu);
	return n;
}

/* ---- the loop in a thread ----------------------------------------------- */

struct runner {
	struct dg_exec_watch *w;
	dg_exec_watch_fn fn;
	void *arg;
	volatile sig_atomic_t stop;
	pthread_t th;
	int rv;
};

static void *
run_thread(void *p)
{
	struct runner *r = p;
	r->rv = dg_exec_watch_run(r->w, r->fn, r->arg, &r->stop);
	return NULL;
}

static void
runner_start(struct runner *r, struct dg_exec_watch *w, dg_exec_watch_fn fn, void *arg)
{
	r->w = w;
	r->fn = fn;
	r->arg = arg;
	r->stop = 0;
	r->rv = -1;
	ck_assert_int_eq(pthread_create(&r->th, NULL, run_thread, r), 0);
}

static void
runner_stop(struct runner *r)
{
	r->stop = 1;
	ck_assert_int_eq(pthread_join(r->th, NULL), 0);
	ck_assert_int_eq(r->rv, DG_OK);
}

static struct dg_exec_watch *
open_marked(void)
{
	struct dg_exec_watch *w = NULL;
	ck_assert_int_eq(dg_exec_watch_open(&w), DG_OK);
	ck_assert_int_eq(dg_exec_watch_add(w, dir), DG_OK);
	return w;
}

static uint64_t
own_mnt_ns(void)
{
	struct stat st;
	ck_assert_int_eq(stat("/proc/self/ns/mnt", &st), 0);
	return (uint64_t)st.st_ino;
}

/* ---- tests -------------------------------------------------------------- */

START_TEST(test_exec_seen)
{
	struct dg_exec_watch *w = open_marked();
	char sub[PATH_MAX];
	snprintf(sub, sizeof sub, "%s/sub", dir);
	ck_assert_int_eq(mkdir(sub, 0755), 0);
	/* Same filesystem twice, through another path: one mark. */
	ck_assert_int_eq(dg_exec_watch_add(w, dir), DG_OK);
	ck_assert_int_eq(dg_exec_watch_add(w, sub), DG_OK);
	ck_assert_uint_eq(dg_exec_watch_fs_count(w), 1);
	ck_assert_int_eq(dg_exec_watch_add(w, "/nonexistent/driftgate"), DG_ERR_IO);

	struct rec r;
	rec_init(&r);
	struct runner run;
	runner_start(&run, w, rec_fn, &r);
	pid_t pid;
	ck_assert_int_eq(run_exit(true_bin, &pid), 0);
	runner_stop(&run);

	/* /bin/true is dynamic, but its loader lives on the root filesystem,
	 * which is not marked: exactly one event. */
	ck_assert_uint_eq(r.n, 1);
	struct stat st;
	ck_assert_int_eq(stat(true_bin, &st), 0);
	ck_assert_int_eq(r.ev[0].pid, pid);
	ck_assert_str_eq(r.ev[0].path, true_bin);
	ck_assert_uint_eq(r.ev[0].st.st_ino, st.st_ino);
	ck_assert_uint_eq(r.ev[0].st.st_dev, st.st_dev);
	ck_assert_int_eq(r.ev[0].st.st_size, st.st_size);
	ck_assert_uint_eq(r.ev[0].mnt_ns, own_mnt_ns());
	ck_assert_int_eq(r.ev[0].head_len, 4);
	ck_assert_mem_eq(r.ev[0].head, "\177ELF", 4);

	struct dg_exec_watch_stats s;
	dg_exec_watch_get_stats(w, &s);
	ck_assert_uint_eq(s.events, 1);
	ck_assert_uint_eq(s.allowed, 1);
	ck_assert_uint_eq(s.denied + s.errors + s.overflows, 0);
	dg_exec_watch_close(w);
}
END_TEST

START_TEST(test_exec_denied)
{
	struct dg_exec_watch *w = open_marked();
	ck_assert_int_eq(tu_sh("cp %s %s/deny-me", true_bin, dir), 0);
	char deny[PATH_MAX];
	snprintf(deny, sizeof deny, "%s/deny-me", dir);
	struct rec r;
	rec_init(&r);
	r.deny_suffix = "/deny-me";
	struct runner run;
	runner_start(&run, w, rec_fn, &r);
	int status = run_exit(deny, NULL);
	ck_assert_msg(denied_status(status), "denied exec exited %d", status);
	ck_assert_int_eq(run_exit(true_bin, NULL), 0); /* others still run */
	runner_stop(&run);
	ck_assert_uint_eq(r.n, 2);
	ck_assert_str_eq(r.ev[0].path, deny);
	struct dg_exec_watch_stats s;
	dg_exec_watch_get_stats(w, &s);
	ck_assert_uint_eq(s.denied, 1);
	ck_assert_uint_eq(s.allowed, 1);
	ck_assert_uint_eq(s.errors, 0);
	dg_exec_watch_close(w);
}
END_TEST

START_TEST(test_shebang)
{
	struct dg_exec_watch *w = open_marked();
	char script[PATH_MAX];
	snprintf(script, sizeof script, "%s/script.sh", dir);
	ck_assert_int_eq(tu_sh("printf '#!%s sh\\nexit 7\\n' > %s && chmod 755 %s", busybox,
	                       script, script),
	                 0);
	struct rec r;
	rec_init(&r);
	struct runner run;
	runner_start(&run, w, rec_fn, &r);
	pid_t pid;
	ck_assert_int_eq(run_exit(script, &pid), 7); /* it ran */
	/* The script first, then its interpreter, both for the same pid. */
	size_t n = rec_count(&r);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(r.ev[0].path, script);
	ck_assert_int_eq(r.ev[0].pid, pid);
	ck_assert_mem_eq(r.ev[0].head, "#!", 2);
	ck_assert_str_eq(r.ev[1].path, busybox);
	ck_assert_int_eq(r.ev[1].pid, pid);

	/* Denying the script stops it before the interpreter is opened. */
	rec_deny(&r, "/script.sh");
	int status = run_exit(script, NULL);
	ck_assert_msg(denied_status(status), "denied script exited %d", status);
	ck_assert_uint_eq(rec_count(&r), 3);
	/* Denying the interpreter stops the script too. */
	rec_deny(&r, "/busybox");
	status = run_exit(script, NULL);
	ck_assert_msg(denied_status(status), "script with denied interpreter exited %d", status);
	ck_assert_uint_eq(rec_count(&r), 5);
	runner_stop(&run);
	dg_exec_watch_close(w);
}
END_TEST

START_TEST(test_internal_error_policy)
{
	struct dg_exec_watch *w = open_marked();
	struct rec r;
	rec_init(&r);
	r.fail_with = DG_ERR_IO;
	struct runner run;

	/* Detect-only (the default): fail open, counted. */
	runner_start(&run, w, rec_fn, &r);
	ck_assert_int_eq(run_exit(true_bin, NULL), 0);
	runner_stop(&run);
	struct dg_exec_watch_stats s;
	dg_exec_watch_get_stats(w, &s);
	ck_assert_uint_eq(s.errors, 1);
	ck_assert_uint_eq(s.allowed, 1);

	/* Enforce: fail closed. */
	dg_exec_watch_set_enforce(w, true);
	runner_start(&run, w, rec_fn, &r);
	int status = run_exit(true_bin, NULL);
	runner_stop(&run);
	ck_assert_msg(denied_status(status), "exec after an internal error exited %d", status);
	dg_exec_watch_get_stats(w, &s);
	ck_assert_uint_eq(s.errors, 2);
	ck_assert_uint_eq(s.denied, 1);
	ck_assert_uint_eq(s.events, 2);
	dg_exec_watch_close(w);
}
END_TEST

static int
deny_all(const struct dg_exec_event *ev, void *arg)
{
	(void)ev;
	(void)arg;
	return DG_ERR_DENIED;
}

START_TEST(test_own_pid_allowed)
{
	/* A child that watches with a callback denying everything, then execs
	 * itself: its own exec must pass without the callback. */
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct dg_exec_watch *w = NULL;
		struct runner run;
		if (dg_exec_watch_open(&w) != DG_OK || dg_exec_watch_add(w, dir) != DG_OK)
			_exit(99);
		memset(&run, 0, sizeof run);
		run.w = w;
		run.fn = deny_all;
		if (pthread_create(&run.th, NULL, run_thread, &run) != 0)
			_exit(98);
		char *const argv[] = {true_bin, NULL};
		char *const envp[] = {NULL};
		execve(true_bin, argv, envp);
		_exit(EXEC_ERRNO_BASE + (errno < 50 ? errno : 50));
	}
	ck_assert_int_eq(reap(pid), 0);
	/* And the same callback does deny another process's exec. */
	struct dg_exec_watch *w = open_marked();
	struct runner run;
	runner_start(&run, w, deny_all, NULL);
	int status = run_exit(true_bin, NULL);
	runner_stop(&run);
	ck_assert_msg(denied_status(status), "exec exited %d", status);
	dg_exec_watch_close(w);
}
END_TEST

START_TEST(test_stop_and_args)
{
	struct dg_exec_watch *w = open_marked();
	volatile sig_atomic_t stop = 0;
	ck_assert_int_eq(dg_exec_watch_run(NULL, rec_fn, NULL, &stop), DG_ERR_INVAL);
	ck_assert_int_eq(dg_exec_watch_run(w, NULL, NULL, &stop), DG_ERR_INVAL);
	ck_assert_int_eq(dg_exec_watch_run(w, rec_fn, NULL, NULL), DG_ERR_INVAL);
	ck_assert_int_eq(dg_exec_watch_open_flags(1u << 7, &(struct dg_exec_watch *){NULL}),
	                 DG_ERR_INVAL);

	struct rec r;
	rec_init(&r);
	struct runner run;
	runner_start(&run, w, rec_fn, &r);
	usleep(50 * 1000);
	uint64_t t0 = now_ns();
	runner_stop(&run);
	uint64_t ms = (now_ns() - t0) / 1000000;
	ck_assert_msg(ms < 500, "the loop took %llu ms to stop", (unsigned long long)ms);
	ck_assert_uint_eq(r.n, 0);
	dg_exec_watch_close(w);
	dg_exec_watch_close(NULL);
}
END_TEST

#define FLOOD 24
#define MAXQ_PATH "/proc/sys/fs/fanotify/max_queued_events"

static long
read_sysctl(const char *path)
{
	char buf[32] = {0};
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_gt(read(fd, buf, sizeof buf - 1), 0);
	close(fd);
	return strtol(buf, NULL, 10);
}

static int
write_sysctl(const char *path, long v)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int n = dprintf(fd, "%ld\n", v);
	return close(fd) == 0 && n > 0 ? 0 : -1;
}

/* Open a group while the kernel's queue bound is 4, then put the bound back at
 * once (it is global, and read only by fanotify_init): no shell, no
 * assertion between the two writes. */
static struct dg_exec_watch *
open_with_small_queue(unsigned flags)
{
	long old = read_sysctl(MAXQ_PATH);
	ck_assert_int_gt(old, 4);
	struct dg_exec_watch *w = NULL;
	int set = write_sysctl(MAXQ_PATH, 4);
	int rv = dg_exec_watch_open_flags(flags, &w);
	int restored = write_sysctl(MAXQ_PATH, old);
	ck_assert_int_eq(restored, 0);
	ck_assert_int_eq(read_sysctl(MAXQ_PATH), old);
	ck_assert_int_eq(set, 0);
	ck_assert_int_eq(rv, DG_OK);
	ck_assert_int_eq(dg_exec_watch_add(w, dir), DG_OK);
	return w;
}

/* FLOOD execs while the callback is stuck on the first: returns how many the
 * callback saw; every child must have run (exit 0). */
static size_t
flood(struct dg_exec_watch *w)
{
	struct rec r;
	rec_init(&r);
	r.hold = true;
	struct runner run;
	pid_t pids[FLOOD];
	runner_start(&run, w, rec_fn, &r);
	pids[0] = spawn(true_bin);
	pthread_mutex_lock(&r.mu);
	while (!r.holding)
		pthread_cond_wait(&r.cv, &r.mu);
	pthread_mutex_unlock(&r.mu);
	for (int i = 1; i < FLOOD; i++)
		pids[i] = spawn(true_bin);
	usleep(300 * 1000); /* let them all reach the kernel */
	pthread_mutex_lock(&r.mu);
	r.released = true;
	pthread_cond_broadcast(&r.cv);
	pthread_mutex_unlock(&r.mu);
	for (int i = 0; i < FLOOD; i++)
		ck_assert_int_eq(reap(pids[i]), 0);
	usleep(100 * 1000); /* the overflow event may trail the last exec */
	runner_stop(&run);
	return r.n;
}

START_TEST(test_flood_unlimited_queue)
{
	/* The default group ignores the bound: nothing is lost. */
	struct dg_exec_watch *w = open_with_small_queue(0);
	ck_assert_uint_eq(flood(w), FLOOD);
	ck_assert_uint_eq(dg_exec_watch_overflows(w), 0);
	dg_exec_watch_close(w);
}
END_TEST

START_TEST(test_flood_bounded_queue_overflows)
{
	/* With a bounded queue the kernel drops (and allows!) execs it cannot
	 * queue; the module must notice and count it. */
	struct dg_exec_watch *w = open_with_small_queue(DG_EXEC_WATCH_BOUNDED_QUEUE);
	size_t seen = flood(w);
	ck_assert_msg(seen < FLOOD, "expected lost events, saw all %zu", seen);
	ck_assert_uint_ge(dg_exec_watch_overflows(w), 1);
	dg_exec_watch_close(w);
}
END_TEST

/* ---- identity cache ----------------------------------------------------- */

/* What the watcher would hand the callback for path, in mount namespace ns. */
static void
ident_of(const char *path, uint64_t ns, int *fd, struct dg_exec_event *ev,
         struct dg_exec_ident *id)
{
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(*fd, 0);
	memset(ev, 0, sizeof *ev);
	ev->fd = *fd;
	ev->path = path;
	ev->mnt_ns = ns;
	ck_assert_int_eq(fstat(*fd, &ev->st), 0);
	dg_exec_ident_from_event(ev, id);
}

START_TEST(test_cache_change_state)
{
	struct dg_exec_cache *c = NULL;
	ck_assert_int_eq(dg_exec_cache_new(0, &c), DG_ERR_INVAL);
	ck_assert_int_eq(dg_exec_cache_new((size_t)1 << 21, &c), DG_ERR_INVAL);
	ck_assert_int_eq(dg_exec_cache_new(64, &c), DG_OK);

	char file[PATH_MAX], link[PATH_MAX];
	snprintf(file, sizeof file, "%s/tool", dir);
	snprintf(link, sizeof link, "%s/tool-link", dir);
	ck_assert_int_eq(tu_sh("cp %s %s && ln %s %s", true_bin, file, file, link), 0);
	uint8_t d1[32], d2[32], got[32];
	memset(d1, 0x11, sizeof d1);
	memset(d2, 0x22, sizeof d2);
	int fd, verdict = -1;
	struct dg_exec_event ev;
	struct dg_exec_ident id;

	ident_of(file, 7, &fd, &ev, &id);
	ck_assert_int_eq(dg_exec_cache_lookup(c, &id, got, &verdict), DG_ERR_NOTFOUND);
	ck_assert_int_eq(dg_exec_cache_insert(c, &id, d1, DG_OK), DG_OK);
	close(fd);
	struct stat before = ev.st;

	/* Unchanged, looked at again through a fresh fd: a hit. */
	ident_of(file, 7, &fd, &ev, &id);
	ck_assert_int_eq(dg_exec_cache_lookup(c, &id, got, &verdict), DG_OK);
	ck_assert_mem_eq(got, d1, 32);
	ck_assert_int_eq(verdict, DG_OK);
	close(fd);

	/* Same inode from another container, or by another path: a miss. */
	ident_of(file, 8, &fd, &ev, &id);
	ck_assert_int_eq(dg_exec_cache_lookup(c, &id, got, &verdict), DG_ERR_NOTFOUND);
	close(fd);
	ident_of(link, 7, &fd, &ev, &id);
	ck_assert_int_eq(dg_exec_cache_lookup(c, &id, got, &verdict), DG_ERR_NOTFOUND);
	close(fd);

	/* Rewrite bytes in place (same size) and put mtime back: ctime moves. */
	usleep(20 * 1000); /* past a coarse clock tick, whatever the filesystem */
	fd = open(file, O_WRONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, "XXXX", 4, 64), 4);
	struct timespec times[2] = {before.st_atim, before.st_mtim};
	ck_assert_int_eq(futimens(fd, times), 0);
	close(fd);
	ident_of(file, 7, &fd, &ev, &id);
	ck_assert_int_eq(ev.st.st_size, before.st_size);
	ck_assert_int_eq(ev.st.st_mtim.tv_sec, before.st_mtim.tv_sec);
	ck_assert_int_eq(ev.st.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
	ck_assert_msg(ev.st.st_ctim.tv_sec != before.st_ctim.tv_sec ||
	                  ev.st.st_ctim.tv_nsec != before.st_ctim.tv_nsec,
	              "precondition: ctime did not change");
	ck_assert_int_eq(dg_exec_cache_lookup(c, &id, got, &verdict), DG_ERR_NOTFOUND);
	/* Measured again: the new state replaces the old one. */
	ck_assert_int_eq(dg_exec_cache_insert(c, &id, d2, DG_ERR_DENIED), DG_OK);
	ck_assert_uint_eq(dg_exec_cache_count(c), 1);
	ck_assert_int_eq(dg_exec_cache_lookup(c, &id, got, &verdict), DG_OK);
	ck_assert_mem_eq(got, d2, 32);
	ck_assert_int_eq(verdict, DG_ERR_DENIED);
	close(fd);

	/* A plain write (mtime moves too) misses as well. */
	usleep(20 * 1000);
	ck_assert_int_eq(tu_sh("printf x >> %s", file), 0);
	ident_of(file, 7, &fd, &ev, &id);
	ck_assert_int_eq(dg_exec_cache_lookup(c, &id, got, &verdict), DG_ERR_NOTFOUND);
	close(fd);
	dg_exec_cache_free(c);
}
END_TEST

START_TEST(test_cache_bounded)
{
	struct dg_exec_cache *c = NULL;
	ck_assert_int_eq(dg_exec_cache_new(4, &c), DG_OK);
	uint8_t d[32] = {0};
	struct dg_exec_ident id = {.dev = 1, .path = "/bin/x"};
	for (uint64_t i = 1; i <= 4; i++) {
		id.ino = i;
		d[0] = (uint8_t)i;
		ck_assert_int_eq(dg_exec_cache_insert(c, &id, d, DG_OK), DG_OK);
	}
	ck_assert_uint_eq(dg_exec_cache_count(c), 4);
	id.ino = 2; /* replacing an entry does not grow the table */
	ck_assert_int_eq(dg_exec_cache_insert(c, &id, d, DG_OK), DG_OK);
	ck_assert_uint_eq(dg_exec_cache_count(c), 4);
	for (uint64_t i = 1; i <= 4; i++) {
		id.ino = i;
		ck_assert_int_eq(dg_exec_cache_lookup(c, &id, NULL, NULL), DG_OK);
	}
	/* The fifth distinct file flushes the table: the old ones miss, it hits. */
	id.ino = 5;
	d[0] = 5;
	ck_assert_int_eq(dg_exec_cache_insert(c, &id, d, DG_OK), DG_OK);
	ck_assert_uint_eq(dg_exec_cache_count(c), 1);
	uint8_t got[32];
	ck_assert_int_eq(dg_exec_cache_lookup(c, &id, got, NULL), DG_OK);
	ck_assert_uint_eq(got[0], 5);
	id.ino = 1;
	ck_assert_int_eq(dg_exec_cache_lookup(c, &id, NULL, NULL), DG_ERR_NOTFOUND);
	id.path = NULL;
	ck_assert_int_eq(dg_exec_cache_insert(c, &id, d, DG_OK), DG_ERR_INVAL);
	ck_assert_int_eq(dg_exec_cache_lookup(c, &id, NULL, NULL), DG_ERR_INVAL);
	dg_exec_cache_free(c);
	dg_exec_cache_free(NULL);
}
END_TEST

/* ---- benchmark: added latency per exec ---------------------------------- */

/*
 * Two measures, each interleaved in rounds (none / watcher allowing / watcher
 * with a cache hit) so that load from other processes on this shared machine
 * hits all three alike:
 *  - execve of an executable file the kernel cannot run (ENOEXEC): the
 *    permission event happens, then execve returns into the same process, so
 *    the fanotify round trip is timed without fork, exec and wait around it;
 *  - fork + execve + wait of /bin/true, the whole thing.
 */
#define BENCH_ROUNDS 5
#define BENCH_ENOEXEC_PER_ROUND 400
#define BENCH_SPAWN_PER_ROUND 100
#define BENCH_MODES 3

static int
allow_all(const struct dg_exec_event *ev, void *arg)
{
	(void)ev;
	(void)arg;
	return DG_OK;
}

/* The agent's fast path for a known binary: identity, cache lookup (the first
 * exec misses and is inserted with a dummy digest). */
static int
allow_cached(const struct dg_exec_event *ev, void *arg)
{
	struct rec *r = arg;
	struct dg_exec_ident id;
	uint8_t digest[32] = {0};
	dg_exec_ident_from_event(ev, &id);
	if (dg_exec_cache_lookup(r->cache, &id, digest, NULL) == DG_OK)
		return DG_OK;
	r->misses++;
	return dg_exec_cache_insert(r->cache, &id, digest, DG_OK);
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* n execve calls failing with ENOEXEC, timed in a child (the watcher lets its
 * own pid through unasked, so the caller cannot time itself). */
static void
time_enoexec(const char *bad, uint64_t *out, int n)
{
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char *const argv[] = {(char *)bad, NULL};
		char *const envp[] = {NULL};
		close(p[0]);
		for (int i = 0; i < n; i++) {
			uint64_t t0 = now_ns();
			execve(bad, argv, envp);
			uint64_t t = errno == ENOEXEC ? now_ns() - t0 : 0;
			if (write(p[1], &t, sizeof t) != (ssize_t)sizeof t)
				_exit(2);
		}
		_exit(0);
	}
	close(p[1]);
	for (int i = 0; i < n; i++) {
		ck_assert_int_eq(read(p[0], &out[i], sizeof out[i]), (ssize_t)sizeof out[i]);
		ck_assert_msg(out[i] != 0, "execve of the bad file did not fail with ENOEXEC");
	}
	close(p[0]);
	ck_assert_int_eq(reap(pid), 0);
}

static void
time_spawn(uint64_t *out, int n)
{
	for (int i = 0; i < n; i++) {
		uint64_t t0 = now_ns();
		ck_assert_int_eq(run_exit(true_bin, NULL), 0);
		out[i] = now_ns() - t0;
	}
}

static void
report(const char *what, const char *const names[BENCH_MODES], uint64_t *t[BENCH_MODES], int n)
{
	printf("%s, %d each (us):\n", what, n);
	for (int m = 0; m < BENCH_MODES; m++) {
		qsort(t[m], (size_t)n, sizeof t[m][0], cmp_u64);
		double p50 = t[m][n / 2] / 1e3, p99 = t[m][n * 99 / 100] / 1e3;
		printf("  %-20s p50 %8.1f  p99 %8.1f", names[m], p50, p99);
		if (m > 0)
			printf("   added: p50 %+7.1f  p99 %+8.1f", p50 - t[0][n / 2] / 1e3,
			       p99 - t[0][n * 99 / 100] / 1e3);
		printf("\n");
	}
}

START_TEST(test_bench_exec_latency)
{
	static uint64_t enoexec[BENCH_MODES][BENCH_ROUNDS * BENCH_ENOEXEC_PER_ROUND];
	static uint64_t spawned[BENCH_MODES][BENCH_ROUNDS * BENCH_SPAWN_PER_ROUND];
	char bad[PATH_MAX];
	snprintf(bad, sizeof bad, "%s/not-a-program", dir);
	ck_assert_int_eq(tu_sh("head -c 512 /dev/zero > %s && chmod 755 %s", bad, bad), 0);
	struct rec r;
	rec_init(&r);
	ck_assert_int_eq(dg_exec_cache_new(1024, &r.cache), DG_OK);

	for (int round = 0; round < BENCH_ROUNDS; round++) {
		for (int m = 0; m < BENCH_MODES; m++) {
			struct dg_exec_watch *w = NULL;
			struct runner run;
			if (m > 0) {
				w = open_marked();
				runner_start(&run, w, m == 1 ? allow_all : allow_cached, &r);
			}
			time_enoexec(bad, enoexec[m] + round * BENCH_ENOEXEC_PER_ROUND,
			             BENCH_ENOEXEC_PER_ROUND);
			time_spawn(spawned[m] + round * BENCH_SPAWN_PER_ROUND, BENCH_SPAWN_PER_ROUND);
			if (m > 0) {
				runner_stop(&run);
				dg_exec_watch_close(w);
			}
		}
	}
	/* Two files (the bad one, true), each unchanged: measured once each. */
	ck_assert_uint_eq(r.misses, 2);
	dg_exec_cache_free(r.cache);

	const char *const names[BENCH_MODES] = {"no watcher", "watcher, allow", "watcher, cache hit"};
	uint64_t *te[BENCH_MODES] = {enoexec[0], enoexec[1], enoexec[2]};
	uint64_t *ts[BENCH_MODES] = {spawned[0], spawned[1], spawned[2]};
	char load[64] = "?";
	FILE *f = fopen("/proc/loadavg", "r");
	if (f != NULL) {
		if (fgets(load, sizeof load, f) == NULL)
			snprintf(load, sizeof load, "?\n");
		fclose(f);
	}
	printf("exec latency benchmark (load average %.*s)\n", (int)strcspn(load, "\n"), load);
	report("execve of an ENOEXEC file (the permission round trip alone)", names, te,
	       BENCH_ROUNDS * BENCH_ENOEXEC_PER_ROUND);
	report("fork + execve + wait of a copy of /bin/true", names, ts,
	       BENCH_ROUNDS * BENCH_SPAWN_PER_ROUND);
	fflush(stdout);
}
END_TEST

static Suite *
exec_watch_suite(void)
{
	Suite *s = suite_create("exec_watch");
	TCase *tc = tcase_create("fanotify");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_exec_seen);
	tcase_add_test(tc, test_exec_denied);
	tcase_add_test(tc, test_shebang);
	tcase_add_test(tc, test_internal_error_policy);
	tcase_add_test(tc, test_own_pid_allowed);
	tcase_add_test(tc, test_stop_and_args);
	tcase_add_test(tc, test_flood_unlimited_queue);
	tcase_add_test(tc, test_flood_bounded_queue_overflows);
	tcase_add_test(tc, test_cache_change_state);
	tcase_add_test(tc, test_cache_bounded);
	tcase_add_test(tc, test_bench_exec_latency);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "test_exec_watch: needs root (fanotify permission events, "
		                "tmpfs mounts); run it as root\n");
		return 1;
	}
	/* A private mount namespace: the test's tmpfs mounts are invisible to
	 * the rest of the machine and vanish with the process. */
	if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
		fprintf(stderr, "test_exec_watch: private mount namespace: %s\n", strerror(errno));
		return 1;
	}
	int failed;
	SRunner *sr = srunner_create(exec_watch_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
