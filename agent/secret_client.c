/*
 * driftgate-secret: ask the node's driftgate agent for a secret, from inside
 * a container, through the workload API (workload_api.h). Linked statically
 * so it runs in any image; it prints the secret on stdout and nothing else.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define DEFAULT_SOCKET "/run/driftgate/workload/api.sock"
#define MAX_SECRET 4096
#define EXIT_USAGE 1
#define EXIT_UNREACHABLE 2
#define EXIT_REFUSED 3

static int
usage(FILE *f, int code)
{
	fprintf(f,
	        "Usage: driftgate-secret [--socket PATH] NAME\n"
	        "Print the secret NAME that the verifier released to this container.\n"
	        "The node's agent identifies the container from the kernel; a container\n"
	        "that is not approved, or drifted, gets nothing.\n"
	        "  --socket PATH  the workload API socket (default: " DEFAULT_SOCKET ")\n"
	        "Exit status: 0 printed, 1 usage, 2 agent unreachable, 3 refused.\n");
	return code;
}

/* Read until EOF or cap bytes; the agent closes after its reply. */
static size_t
read_all(int fd, char *buf, size_t cap)
{
	size_t len = 0;
	while (len < cap) {
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	return len;
}

int
main(int argc, char **argv)
{
	static char reply[64 + MAX_SECRET];
	const char *path = DEFAULT_SOCKET, *name = NULL;
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	char request[160];
	int fd, code = EXIT_UNREACHABLE;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return usage(stdout, 0);
		if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc)
			path = argv[++i];
		else if (name == NULL && argv[i][0] != '-')
			name = argv[i];
		else
			return usage(stderr, EXIT_USAGE);
	}
	if (name == NULL || strlen(path) >= sizeof addr.sun_path ||
	    snprintf(request, sizeof request, "get %s\n", name) >= (int)sizeof request ||
	    strchr(name, '\n') != NULL)
		return usage(stderr, EXIT_USAGE);
	memcpy(addr.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0 ||
	    connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
		fprintf(stderr, "driftgate-secret: %s: %s\n", path, strerror(errno));
		goto out;
	}
	if (write(fd, request, strlen(request)) != (ssize_t)strlen(request)) {
		fprintf(stderr, "driftgate-secret: %s: %s\n", path, strerror(errno));
		goto out;
	}
	size_t len = read_all(fd, reply, sizeof reply);
	char *nl = memchr(reply, '\n', len);
	size_t secret_len;
	char *end;
	if (nl != NULL && strncmp(reply, "ok ", 3) == 0 &&
	    (secret_len = strtoul(reply + 3, &end, 10), end == nl) &&
	    secret_len == len - (size_t)(nl + 1 - reply)) {
		code = fwrite(nl + 1, 1, secret_len, stdout) == secret_len ? 0 : EXIT_UNREACHABLE;
	} else {
		code = EXIT_REFUSED;
		if (nl != NULL)
			*nl = '\0';
		fprintf(stderr, "driftgate-secret: %s: %.*s\n", name, (int)(nl ? nl - reply : 0),
		        reply);
	}
out:
	explicit_bzero(reply, sizeof reply);
	if (fd >= 0)
		close(fd);
	return code;
}
