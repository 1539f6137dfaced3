#include "testutil.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int
tu_hex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = strlen(hex);
	if (n % 2 != 0 || n / 2 > cap)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned int v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (uint8_t)v;
	}
	return (int)(n / 2);
}

uint8_t *
tu_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long size;
	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
		goto out;
	buf = malloc((size_t)size + 1);
	if (buf == NULL)
		goto out;
	if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
		free(buf);
		buf = NULL;
		goto out;
	}
	*len = (size_t)size;
out:
	fclose(f);
	return buf;
}

int
tu_sh(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof cmd)
		return -1;
	int st = system(cmd);
	if (st == -1 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

char *
tu_tmpdir(void)
{
	char tmpl[] = "/tmp/dgtest.XXXXXX";
	char *d = mkdtemp(tmpl);
	return d ? strdup(d) : NULL;
}

const char *
tu_build_path(const char *rel, char *buf, size_t cap)
{
	const char *root = getenv("DG_BUILD_ROOT");
	snprintf(buf, cap, "%s/%s", root ? root : ".", rel);
	return buf;
}

/* swtpm's server socket accepts once it is ready; a refused connect means not yet. */
static int
tu_port_accepts(int port)
{
	struct sockaddr_in addr = {
		.sin_family = AF_INET,
		.sin_port = htons((uint16_t)port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return 0;
	int ok = connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0;
	close(fd);
	return ok;
}

static pid_t
tu_swtpm_spawn(const char *dir, int port)
{
	char state[4096], server[64], ctrl[64];
	pid_t parent = getpid();
	snprintf(state, sizeof state, "dir=%s", dir);
	snprintf(server, sizeof server, "type=tcp,port=%d,bindaddr=127.0.0.1", port);
	snprintf(ctrl, sizeof ctrl, "type=tcp,port=%d,bindaddr=127.0.0.1", port + 1);
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	/* Die with the test even when it fails before tu_swtpm_stop. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
		_exit(127);
	int devnull = open("/dev/null", O_WRONLY);
	if (devnull >= 0)
		dup2(devnull, STDOUT_FILENO);
	execlp("swtpm", "swtpm", "socket", "--tpm2", "--tpmstate", state, "--server", server,
	       "--ctrl", ctrl, "--flags", "not-need-init,startup-clear", (char *)NULL);
	_exit(127);
}

int
tu_swtpm_start(const char *dir, int *port, pid_t *pid)
{
	/* Seeded per call, not per second: two swtpms started by one process in
	 * the same second must not pick the same ports. */
	unsigned int seed = (unsigned int)getpid() ^ (unsigned int)time(NULL);
	int urandom = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (urandom >= 0) {
		if (read(urandom, &seed, sizeof seed) != (ssize_t)sizeof seed)
			seed ^= (unsigned int)clock();
		close(urandom);
	}
	for (int attempt = 0; attempt < 20; attempt++) {
		int p = 10000 + 2 * (int)(rand_r(&seed) % 11000); /* below the ephemeral range */
		/* A port someone already answers on would fool the readiness check. */
		if (tu_port_accepts(p) || tu_port_accepts(p + 1))
			continue;
		pid_t child = tu_swtpm_spawn(dir, p);
		if (child < 0)
			return -1;
		/* Up to 5 s for startup; an early exit means the port pair was taken. */
		for (int i = 0; i < 500 && child > 0; i++) {
			if (waitpid(child, NULL, WNOHANG) == child) {
				child = 0;
			} else if (tu_port_accepts(p)) {
				*port = p;
				*pid = child;
				return 0;
			} else {
				usleep(10000);
			}
		}
		if (child > 0)
			tu_swtpm_stop(child);
	}
	return -1;
}

void
tu_swtpm_stop(pid_t pid)
{
	if (kill(pid, SIGTERM) == 0)
		waitpid(pid, NULL, 0);
}

int
tu_tpm2(const char *dir, const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof cmd)
		return -1;
	return tu_sh("cd '%s' && { %s; } >>tpm2-tools.log 2>&1; rc=$?; "
	             "tpm2_flushcontext -t >/dev/null 2>&1; exit $rc", dir, cmd);
}
