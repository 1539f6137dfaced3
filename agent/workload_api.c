#include "workload_api.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "driftgate/err.h"
#include "driftgate/workload.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77 /* Linux 6.5; older glibc headers lack it */
#endif

#define LOG_PREFIX "driftgate-agent: workload api: "
#define REQUEST_MAX 128
#define IO_TIMEOUT_S 5

/* A reply buffer: header, then the secret. Cleansed after every request. */
struct reply {
	uint8_t buf[64 + DG_AGENT_MAX_SECRET];
	size_t len;
};

static void
reply_error(struct reply *r, int code, const char *msg)
{
	OPENSSL_cleanse(r->buf, sizeof r->buf);
	int n = snprintf((char *)r->buf, sizeof r->buf, "error %d %s\n", code, msg);
	r->len = n > 0 && (size_t)n < sizeof r->buf ? (size_t)n : 0;
}

/*
 * The container the peer runs in. The pidfd the kernel took at connect()
 * pins the peer: if it still refers to a live process after /proc/<pid> was
 * read, that pid was not reused in between.
 */
static int
peer_container(struct dg_agent *a, int fd, char id[DG_CONTAINER_ID_MAX + 1])
{
	struct ucred cred;
	socklen_t len = sizeof cred;
	char path[64];
	struct stat st;
	int pidfd = -1, rv = DG_ERR_DENIED;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.pid <= 0)
		return DG_ERR_IO;
	len = sizeof pidfd;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) != 0)
		pidfd = -1; /* kernel < 6.5: the pid alone (README, known gaps) */
	snprintf(path, sizeof path, "/proc/%d/ns/mnt", (int)cred.pid);
	if (stat(path, &st) != 0)
		goto out;
	if (pidfd >= 0 && syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) != 0)
		goto out; /* the peer is gone: its pid may name another process now */
	rv = dg_agent_container_of_mntns(a, (uint64_t)st.st_ino, id);
out:
	if (pidfd >= 0)
		close(pidfd);
	return rv;
}

/* Read one request line, bounded and with a timeout. */
static int
read_request(int fd, char *line, size_t cap)
{
	size_t len = 0;
	while (len < cap - 1) {
		ssize_t n = read(fd, line + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return DG_ERR_TRUNCATED;
		len += (size_t)n;
		char *nl = memchr(line, '\n', len);
		if (nl != NULL) {
			if ((size_t)(nl - line) != len - 1)
				return DG_ERR_TRAILING;
			*nl = '\0';
			return DG_OK;
		}
	}
	return DG_ERR_TOOBIG;
}

static void
handle(struct dg_agent *a, int fd, struct reply *r)
{
	char line[REQUEST_MAX + 1], id[DG_CONTAINER_ID_MAX + 1], why[DG_WIRE_MAX_MESSAGE_TEXT + 1];
	size_t len = 0;
	int rv;

	if ((rv = read_request(fd, line, sizeof line)) != DG_OK) {
		reply_error(r, rv, "bad request: want \"get NAME\\n\"");
		return;
	}
	if (strncmp(line, "get ", 4) != 0 || line[4] == '\0') {
		reply_error(r, DG_ERR_INVAL, "bad request: want \"get NAME\\n\"");
		return;
	}
	if (peer_container(a, fd, id) != DG_OK) {
		fprintf(stderr, LOG_PREFIX "secret %s refused: the caller is not in a container "
		        "this agent registered\n", line + 4);
		reply_error(r, DG_ERR_DENIED, "the caller is not in a registered container");
		return;
	}
	why[0] = '\0';
	/* The secret goes 64 bytes in, its header right before it: one send. */
	rv = dg_agent_secret(a, id, line + 4, r->buf + 64, sizeof r->buf - 64, &len, why,
	                     sizeof why);
	if (rv != DG_OK) {
		fprintf(stderr, LOG_PREFIX "secret %s for container %s refused: %s\n", line + 4, id,
		        why[0] ? why : dg_strerror(rv));
		reply_error(r, rv == DG_ERR_NOTFOUND ? DG_ERR_DENIED : rv,
		            why[0] ? why : dg_strerror(rv));
		return;
	}
	char head[32];
	int n = snprintf(head, sizeof head, "ok %zu\n", len);
	memcpy(r->buf + 64 - (size_t)n, head, (size_t)n);
	memmove(r->buf, r->buf + 64 - (size_t)n, (size_t)n + len);
	r->len = (size_t)n + len;
	fprintf(stderr, LOG_PREFIX "secret %s delivered to container %s\n", line + 4, id);
}

static int
listen_on(const char *path, int *out)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	char dir[PATH_MAX];
	int fd = -1;

	if (strlen(path) >= sizeof addr.sun_path)
		return DG_ERR_TOOBIG;
	snprintf(dir, sizeof dir, "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash != NULL && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) != 0 && errno != EEXIST)
			return DG_ERR_IO;
	}
	memcpy(addr.sun_path, path, strlen(path) + 1);
	(void)unlink(path); /* a socket left by an earlier run */
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || chmod(path, 0666) != 0 ||
	    listen(fd, 16) != 0) {
		fprintf(stderr, LOG_PREFIX "%s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return DG_ERR_IO;
	}
	*out = fd;
	return DG_OK;
}

int
dg_workload_api_serve(struct dg_agent *a, const char *path, volatile sig_atomic_t *stop)
{
	struct timeval timeout = {.tv_sec = IO_TIMEOUT_S};
	struct reply *r = NULL;
	int lfd = -1, rv;

	if ((r = calloc(1, sizeof *r)) == NULL)
		return DG_ERR_NOMEM;
	if ((rv = listen_on(path, &lfd)) != DG_OK)
		goto out;
	fprintf(stderr, LOG_PREFIX "listening on %s\n", path);
	while (!*stop) {
		struct pollfd p = {.fd = lfd, .events = POLLIN};
		if (poll(&p, 1, 1000) <= 0)
			continue;
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
		handle(a, fd, r);
		for (size_t off = 0; off < r->len;) {
			ssize_t n = send(fd, r->buf + off, r->len - off, MSG_NOSIGNAL);
			if (n <= 0)
				break;
			off += (size_t)n;
		}
		OPENSSL_cleanse(r, sizeof *r);
		close(fd);
	}
	(void)unlink(path);
	rv = DG_OK;
out:
	if (lfd >= 0)
		close(lfd);
	free(r);
	return rv;
}
