/*
 * container_probe: the timing helper of container_bench.sh. Built there as a
 * static binary (no loader, so one exec is one fanotify event) and copied into
 * the container's rootfs before approval, so it is in the approved manifest.
 *
 *   container_probe                      exit 0 at once (the exec'd child)
 *   container_probe loop N WARM PATH     WARM untimed, then N timed rounds of
 *                                        fork + execv(PATH) + waitpid; prints
 *                                        each round's time in ns, one a line
 *   container_probe stamp PATH           print CLOCK_REALTIME in ns, then
 *                                        execv(PATH) in this process
 *   container_probe watch FILE MARKER TIMEOUT_MS READY
 *                                        from FILE's current end, wait (inotify)
 *                                        until MARKER is appended; print
 *                                        CLOCK_REALTIME in ns when seen. READY
 *                                        is created once the watch is set.
 *                                        Exit 1 on timeout.
 *   container_probe allow DIR READY      the floor of exec watching: a fanotify
 *                                        group that marks DIR's filesystem for
 *                                        FAN_OPEN_EXEC_PERM (as the agent does)
 *                                        and allows every event at once, doing
 *                                        nothing else, until SIGTERM. READY is
 *                                        created once the mark is set.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/inotify.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t
ns(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int
run_once(const char *path)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		char *argv[] = {(char *)path, NULL};
		execv(path, argv);
		_exit(127);
	}
	int st;
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return -1;
	return 0;
}

static int
loop(long n, long warm, const char *path)
{
	uint64_t *t = malloc((size_t)n * sizeof *t);
	if (t == NULL)
		return 1;
	for (long i = 0; i < warm; i++)
		if (run_once(path) != 0) {
			fprintf(stderr, "container_probe: exec of %s failed\n", path);
			return 1;
		}
	for (long i = 0; i < n; i++) {
		uint64_t t0 = ns(CLOCK_MONOTONIC);
		if (run_once(path) != 0) {
			fprintf(stderr, "container_probe: exec of %s failed\n", path);
			return 1;
		}
		t[i] = ns(CLOCK_MONOTONIC) - t0;
	}
	for (long i = 0; i < n; i++)
		printf("%llu\n", (unsigned long long)t[i]);
	free(t);
	return fflush(stdout) == 0 ? 0 : 1;
}

static int
stamp(const char *path)
{
	char *argv[] = {(char *)path, NULL};
	printf("%llu\n", (unsigned long long)ns(CLOCK_REALTIME));
	fflush(stdout);
	execv(path, argv);
	perror("container_probe: execv");
	return 127;
}

static int
watch(const char *file, const char *marker, long timeout_ms, const char *ready)
{
	static char buf[1 << 16];
	size_t mlen = strlen(marker), have = 0;
	int fd = open(file, O_RDONLY | O_CLOEXEC), in = inotify_init1(IN_CLOEXEC);
	if (fd < 0 || in < 0 || mlen == 0 || mlen >= sizeof buf / 2 ||
	    inotify_add_watch(in, file, IN_MODIFY) < 0 || lseek(fd, 0, SEEK_END) < 0) {
		perror("container_probe: watch");
		return 2;
	}
	int r = open(ready, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (r < 0)
		return 2;
	close(r);
	uint64_t end = ns(CLOCK_MONOTONIC) + (uint64_t)timeout_ms * 1000000u;
	for (;;) {
		/* Read whatever was appended; keep a marker's length of overlap. */
		for (;;) {
			ssize_t n = read(fd, buf + have, sizeof buf - have);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			have += (size_t)n;
			if (memmem(buf, have, marker, mlen) != NULL) {
				printf("%llu\n", (unsigned long long)ns(CLOCK_REALTIME));
				return 0;
			}
			if (have > mlen) {
				memmove(buf, buf + have - mlen, mlen);
				have = mlen;
			}
		}
		uint64_t now = ns(CLOCK_MONOTONIC);
		if (now >= end)
			return 1;
		struct pollfd p = {.fd = in, .events = POLLIN};
		int left = (int)((end - now) / 1000000u) + 1;
		if (poll(&p, 1, left) > 0) {
			char ev[4096];
			(void)!read(in, ev, sizeof ev);
		}
	}
}

static int
allow(const char *dir, const char *ready)
{
	static char buf[4096] __attribute__((aligned(8)));
	int fd = fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_UNLIMITED_QUEUE, O_RDONLY);
	if (fd < 0 || fanotify_mark(fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_OPEN_EXEC_PERM,
	                            AT_FDCWD, dir) != 0) {
		perror("container_probe: fanotify");
		return 2;
	}
	int r = open(ready, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (r < 0)
		return 2;
	close(r);
	for (;;) {
		ssize_t len = read(fd, buf, sizeof buf);
		if (len < 0 && errno == EINTR)
			continue;
		if (len <= 0)
			return 2;
		struct fanotify_event_metadata *m = (struct fanotify_event_metadata *)buf;
		for (; FAN_EVENT_OK(m, len); m = FAN_EVENT_NEXT(m, len)) {
			if (m->fd < 0)
				continue;
			if (m->mask & FAN_OPEN_EXEC_PERM) {
				struct fanotify_response resp = {.fd = m->fd, .response = FAN_ALLOW};
				(void)!write(fd, &resp, sizeof resp);
			}
			close(m->fd);
		}
	}
}

int
main(int argc, char **argv)
{
	if (argc < 2)
		return 0;
	if (strcmp(argv[1], "loop") == 0 && argc == 5)
		return loop(atol(argv[2]), atol(argv[3]), argv[4]);
	if (strcmp(argv[1], "stamp") == 0 && argc == 3)
		return stamp(argv[2]);
	if (strcmp(argv[1], "watch") == 0 && argc == 6)
		return watch(argv[2], argv[3], atol(argv[4]), argv[5]);
	if (strcmp(argv[1], "allow") == 0 && argc == 4)
		return allow(argv[2], argv[3]);
	fprintf(stderr, "usage: container_probe [loop N WARM PATH | stamp PATH | "
	                "watch FILE MARKER TIMEOUT_MS READY | allow DIR READY]\n");
	return 2;
}
