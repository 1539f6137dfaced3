/* driftgate-agent: command line. See README.md ("driftgate-agent") for the manual. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <nng/nng.h>
#include <openssl/crypto.h>
#include <pthread.h>

#include "agent.h"
#include "workload_api.h"
#include "control.h"
#include "driftgate/conf.h"
#include "driftgate/err.h"
#include "driftgate/log.h"
#include "mlog.h"

enum exit_code { EXIT_OK = 0, EXIT_ERROR = 1, EXIT_USAGE = 2, EXIT_REFUSED = 3 };

/* The one piece of global state: set by SIGINT/SIGTERM, read by the loop. */
static volatile sig_atomic_t stop_requested;

static void
on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void
usage(FILE *f)
{
	(void)fputs( /* usage text: a failed write changes nothing */
	    "Usage: driftgate-agent COMMAND [OPTIONS]\n"
	    "\n"
	    "Measure files into a TPM-backed log and prove it to a driftgate-verifier.\n"
	    "\n"
	    "Commands:\n"
	    "  run                 enroll, measure the --measure paths, attest, then serve\n"
	    "                      the control socket and attest every --interval seconds\n"
	    "  measure PATH...     ask the running agent to measure files or directories\n"
	    "                      (absolute paths) and attest at once\n"
	    "  attest              ask the running agent for an attestation round now\n"
	    "  status              print the log size and the last verdict\n"
	    "  secret NAME         print a secret released by the last passing round\n"
	    "  log                 print the measurement log (no running agent needed)\n"
	    "  hook                OCI runtime hook (createRuntime and poststop): reads the\n"
	    "                      container state JSON on stdin and has the running agent\n"
	    "                      measure (or forget) the container; fails closed\n"
	    "\n"
	    "Options:\n"
	    "  -c, --config FILE       read 'option = value' lines (long option names)\n"
	    "  -i, --agent-id ID       agent identity, [A-Za-z0-9._-]{1,64} (default: hostname)\n"
	    "  -T, --tcti TCTI         TPM access, as tpm2-tools spells it\n"
	    "                          (default: " DG_AGENT_DEFAULT_TCTI ")\n"
	    "  -v, --verifier URL      verifier address (default: " DG_AGENT_DEFAULT_VERIFIER ");\n"
	    "                          repeat it (or separate with commas) for verifiers\n"
	    "                          sharing one PostgreSQL state: a round that gets no\n"
	    "                          answer (transport error, timeout) moves to the next;\n"
	    "                          tls+tcp://HOST:PORT for TLS (needs --tls-ca)\n"
	    "      --tls-ca FILE       PEM certificates the verifier's must chain to (give\n"
	    "                          its own certificate to pin it)\n"
	    "      --tls-server-name N name the verifier's certificate must carry (default:\n"
	    "                          the host in --verifier)\n"
	    "  -C, --control URL       control socket (default: " DG_AGENT_DEFAULT_CONTROL ")\n"
	    "  -W, --workload-socket P the workload API socket; bind-mount its directory into\n"
	    "                          containers; '' turns it off\n"
	    "                          (default: " DG_AGENT_WORKLOAD_SOCKET ")\n"
	    "  -s, --state-dir DIR     log and state directory (default: " DG_AGENT_DEFAULT_STATE_DIR ")\n"
	    "  -p, --pcr N             PCR to extend, 8..15 (default: 13; see README)\n"
	    "      --ek-handle H       persistent EK handle (default: 0x81010001)\n"
	    "      --ak-handle H       persistent AK handle (default: 0x81010002)\n"
	    "      --bind-handle H     persistent handle of the key secrets are sealed to\n"
	    "                          (default: 0x81010003)\n"
	    "  -n, --interval SEC      heartbeat attestation period (default: 10)\n"
	    "  -t, --timeout MS        per-request timeout to the verifier (default: 10000)\n"
	    "  -m, --measure PATH      (run) measure PATH before the first attestation;\n"
	    "                          repeatable\n"
	    "  -e, --enforce           (run) deny execs in a container that are not in its\n"
	    "                          rootfs manifest (default: detect only)\n"
	    "      --no-exec-watch     (run) do not watch execs (fanotify) in containers\n"
	    "  -f, --format FMT        (log) binary (kernel binary_runtime_measurements) or\n"
	    "                          ascii (default: ascii)\n"
	    "  -h, --help              show this help\n"
	    "\n"
	    "Exit status: 0 success, 1 error, 2 usage error, 3 attestation failed or secret\n"
	    "withheld.\n",
	    f);
}

struct options {
	struct dg_agent_config cfg;
	char measure[16][PATH_MAX];
	size_t n_measure;
	size_t n_verifier; /* addresses given so far */
	enum dg_log_format format;
};

/*
 * --verifier URL[,URL...], repeatable: each address is appended in failover
 * order (agent.h); the first one replaces the default.
 */
static int
add_verifiers(struct options *o, const char *value)
{
	char *list = o->cfg.verifier_url;
	size_t cap = sizeof o->cfg.verifier_url;
	do {
		size_t n = strcspn(value, ","), len = o->n_verifier > 0 ? strlen(list) : 0;
		if (n == 0 || n >= 256 || o->n_verifier >= DG_AGENT_MAX_VERIFIERS ||
		    len + 1 + n >= cap) {
			fprintf(stderr, "driftgate-agent: --verifier: an empty or too long address, or "
			                "more than %d\n", DG_AGENT_MAX_VERIFIERS);
			return DG_ERR_INVAL;
		}
		snprintf(list + len, cap - len, "%s%.*s", len > 0 ? "," : "", (int)n, value);
		o->n_verifier++;
		value += n;
	} while (*value++ == ',');
	return DG_OK;
}

/* One setter for the command line and the config file alike. */
static int
set_option(const char *key, const char *value, void *arg)
{
	struct options *o = arg;
	struct dg_agent_config *c = &o->cfg;
	unsigned long v;
	int rv;
	if (strcmp(key, "agent-id") == 0)
		return dg_conf_str(c->agent_id, sizeof c->agent_id, value);
	if (strcmp(key, "tcti") == 0)
		return dg_conf_str(c->tcti, sizeof c->tcti, value);
	if (strcmp(key, "verifier") == 0)
		return add_verifiers(o, value);
	if (strcmp(key, "tls-ca") == 0)
		return dg_conf_str(c->tls_ca, sizeof c->tls_ca, value);
	if (strcmp(key, "tls-server-name") == 0)
		return dg_conf_str(c->tls_server_name, sizeof c->tls_server_name, value);
	if (strcmp(key, "workload-socket") == 0)
		return dg_conf_str(c->workload_socket, sizeof c->workload_socket, value);
	if (strcmp(key, "control") == 0)
		return dg_conf_str(c->control_url, sizeof c->control_url, value);
	if (strcmp(key, "state-dir") == 0)
		return dg_conf_str(c->state_dir, sizeof c->state_dir, value);
	if (strcmp(key, "pcr") == 0) {
		/* 0-7 belong to firmware; 16 and 23 are resettable from locality 0,
		 * 17-22 belong to DRTM: an agent PCR must be one of 8..15. */
		if ((rv = dg_conf_uint(value, 8, 15, &v)) != DG_OK)
			return rv;
		c->pcr = (uint32_t)v;
		return DG_OK;
	}
	if (strcmp(key, "ek-handle") == 0 || strcmp(key, "ak-handle") == 0 ||
	    strcmp(key, "bind-handle") == 0) {
		if ((rv = dg_conf_uint(value, 0x81000000, 0x81ffffff, &v)) != DG_OK)
			return rv;
		*(key[0] == 'e' ? &c->ek_handle : key[0] == 'a' ? &c->ak_handle : &c->bind_handle) =
			(uint32_t)v;
		return DG_OK;
	}
	if (strcmp(key, "interval") == 0) {
		if ((rv = dg_conf_uint(value, 1, 86400, &v)) != DG_OK)
			return rv;
		c->interval_s = (unsigned)v;
		return DG_OK;
	}
	if (strcmp(key, "timeout") == 0) {
		if ((rv = dg_conf_uint(value, 1, 600000, &v)) != DG_OK)
			return rv;
		c->timeout_ms = (unsigned)v;
		return DG_OK;
	}
	if (strcmp(key, "measure") == 0) {
		if (o->n_measure == sizeof o->measure / sizeof o->measure[0] || value[0] != '/')
			return DG_ERR_INVAL;
		return dg_conf_str(o->measure[o->n_measure++], sizeof o->measure[0], value);
	}
	if (strcmp(key, "enforce") == 0)
		return dg_conf_bool(value, &c->enforce);
	if (strcmp(key, "exec-watch") == 0)
		return dg_conf_bool(value, &c->exec_watch);
	if (strcmp(key, "no-exec-watch") == 0) {
		bool off;
		if ((rv = dg_conf_bool(value, &off)) == DG_OK)
			c->exec_watch = !off;
		return rv;
	}
	if (strcmp(key, "format") == 0) {
		if (strcmp(value, "binary") == 0)
			o->format = DG_LOG_FORMAT_BINARY;
		else if (strcmp(value, "ascii") == 0)
			o->format = DG_LOG_FORMAT_ASCII;
		else
			return DG_ERR_INVAL;
		return DG_OK;
	}
	return DG_ERR_NOTFOUND;
}

static const struct option long_options[] = {
	{"config", required_argument, NULL, 'c'},   {"agent-id", required_argument, NULL, 'i'},
	{"tcti", required_argument, NULL, 'T'},     {"verifier", required_argument, NULL, 'v'},
	{"control", required_argument, NULL, 'C'},  {"workload-socket", required_argument, NULL, 'W'},  {"state-dir", required_argument, NULL, 's'},
	{"pcr", required_argument, NULL, 'p'},      {"ek-handle", required_argument, NULL, 1},
	{"ak-handle", required_argument, NULL, 2},  {"bind-handle", required_argument, NULL, 20},  {"interval", required_argument, NULL, 'n'},
	{"timeout", required_argument, NULL, 't'},  {"measure", required_argument, NULL, 'm'},
	{"format", required_argument, NULL, 'f'},   {"help", no_argument, NULL, 'h'},
	{"enforce", no_argument, NULL, 'e'},        {"no-exec-watch", no_argument, NULL, 3},
	{"tls-ca", required_argument, NULL, 4},     {"tls-server-name", required_argument, NULL, 5},
	{NULL, 0, NULL, 0},
};

static void *
attester_main(void *arg)
{
	dg_agent_attester_run(arg, &stop_requested);
	return NULL;
}

struct workload_args {
	struct dg_agent *agent;
	const char *socket;
};

static void *
workload_main(void *arg)
{
	const struct workload_args *w = arg;
	if (dg_workload_api_serve(w->agent, w->socket, &stop_requested) != DG_OK)
		fprintf(stderr, "driftgate-agent: workload API unavailable: containers get no "
		        "secrets\n");
	return NULL;
}

static void *
watcher_main(void *arg)
{
	if (dg_agent_exec_watch_run(arg, &stop_requested) != DG_OK)
		fprintf(stderr, "driftgate-agent: exec watcher stopped on an error\n");
	return NULL;
}

static int
cmd_run(struct options *o)
{
	struct dg_agent *a = NULL;
	pthread_t attester, watcher, workload;
	struct workload_args wargs;
	unsigned threads = 0;
	int rv, code = EXIT_ERROR;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	(void)signal(SIGPIPE, SIG_IGN); /* fails only for an invalid signal */

	if ((rv = dg_agent_start(&o->cfg, &a)) != DG_OK) {
		fprintf(stderr, "driftgate-agent: start: %s\n", dg_strerror(rv));
		goto out;
	}
	/* The verifier may come up after us: retry enrollment until it answers. */
	while ((rv = dg_agent_enroll(a)) != DG_OK && !stop_requested) {
		if (rv != DG_ERR_TIMEOUT && rv != DG_ERR_NET) {
			fprintf(stderr, "driftgate-agent: enrollment refused: %s\n", dg_strerror(rv));
			goto out;
		}
		sleep(1);
	}
	for (size_t i = 0; i < o->n_measure && !stop_requested; i++) {
		unsigned added = 0;
		if ((rv = dg_agent_measure(a, o->measure[i], &added)) != DG_OK) {
			fprintf(stderr, "driftgate-agent: measure %s: %s\n", o->measure[i],
			        dg_strerror(rv));
			goto out;
		}
		fprintf(stderr, "driftgate-agent: measured %u file(s) under %s\n", added,
		        o->measure[i]);
	}
	if (!stop_requested)
		(void)dg_agent_attest(a);
	/* Attestation rounds and exec events get their own threads, so that an
	 * exec never waits for the verifier and a control request never waits
	 * for an exec. */
	if (pthread_create(&attester, NULL, attester_main, a) != 0)
		goto out;
	threads |= 1;
	if (pthread_create(&watcher, NULL, watcher_main, a) != 0)
		goto out;
	threads |= 2;
	if (o->cfg.workload_socket[0] != '\0') {
		wargs = (struct workload_args){a, o->cfg.workload_socket};
		if (pthread_create(&workload, NULL, workload_main, &wargs) != 0)
			goto out;
		threads |= 4;
	}
	if (!stop_requested && dg_control_serve(a, o->cfg.control_url, &stop_requested) != DG_OK)
		goto out;
	code = EXIT_OK;
out:
	stop_requested = 1;
	if (threads & 1)
		pthread_join(attester, NULL);
	if (threads & 2)
		pthread_join(watcher, NULL);
	if (threads & 4)
		pthread_join(workload, NULL);
	dg_agent_stop(a);
	return code;
}

/* Client commands: one request to the running agent per argument. */
static int
cmd_client(struct options *o, const char *verb, char **args, int nargs)
{
	int code = EXIT_OK;
	for (int i = 0; i < (nargs ? nargs : 1); i++) {
		char request[PATH_MAX + 16], abs_path[PATH_MAX];
		char *reply = NULL;
		size_t len = 0;
		const char *arg = nargs ? args[i] : "";
		/* The agent runs elsewhere: hand it an absolute path. */
		if (strcmp(verb, "measure") == 0) {
			if (realpath(arg, abs_path) == NULL) {
				fprintf(stderr, "driftgate-agent: %s: %s\n", arg, strerror(errno));
				return EXIT_ERROR;
			}
			arg = abs_path;
		}
		snprintf(request, sizeof request, "%s%s%s", verb, nargs ? " " : "", arg);
		int rv = dg_control_request(o->cfg.control_url, request,
		                            o->cfg.timeout_ms * 3 + 1000, &reply, &len);
		if (rv != DG_OK)
			return EXIT_ERROR;
		bool ok = len >= 2 && memcmp(reply, "ok", 2) == 0;
		/* The reply is not NUL-terminated: every look at it is bounded by len. */
		FILE *to = ok ? stdout : stderr;
		bool written;
		if (strcmp(verb, "secret") == 0 && ok)
			written = len <= 3 || fwrite(reply + 3, 1, len - 3, to) == len - 3;
		else
			written = fwrite(reply, 1, len, to) == len && fputc('\n', to) != EOF;
		/* A reply (a secret) that never reached the caller is not a success. */
		if (ok && (!written || fflush(to) != 0))
			code = EXIT_ERROR;
		if (!ok || (len >= 7 && memmem(reply, len, "; fail", 6) != NULL) ||
		    (strcmp(verb, "attest") == 0 && (len < 7 || memcmp(reply, "ok pass", 7) != 0)))
			code = code == EXIT_OK ? EXIT_REFUSED : code;
		OPENSSL_cleanse(reply, len);
		nng_free(reply, len);
	}
	return code;
}

/* OCI hook: the runtime passes the container state on stdin and waits; a
 * non-zero exit makes it abort the container, so an agent that cannot
 * measure keeps the container from starting. */
static int
cmd_hook(struct options *o)
{
	char state[65536], request[8192];
	size_t len = fread(state, 1, sizeof state - 1, stdin);
	json_object *root = NULL, *id, *pid, *bundle, *status;
	char *reply = NULL;
	size_t reply_len = 0;
	int code = EXIT_ERROR;
	state[len] = '\0';
	if (len == sizeof state - 1 || (root = json_tokener_parse(state)) == NULL ||
	    !json_object_object_get_ex(root, "id", &id) || !json_object_is_type(id, json_type_string) ||
	    !json_object_object_get_ex(root, "status", &status) ||
	    !json_object_is_type(status, json_type_string)) {
		fprintf(stderr, "driftgate-agent: hook: stdin is not an OCI state document\n");
		goto out;
	}
	if (strcmp(json_object_get_string(status), "stopped") == 0) {
		snprintf(request, sizeof request, "container-delete %s", json_object_get_string(id));
	} else if (!json_object_object_get_ex(root, "pid", &pid) ||
	           !json_object_is_type(pid, json_type_int) ||
	           !json_object_object_get_ex(root, "bundle", &bundle) ||
	           !json_object_is_type(bundle, json_type_string) ||
	           snprintf(request, sizeof request, "container-create %s %d %s",
	                    json_object_get_string(id), json_object_get_int(pid),
	                    json_object_get_string(bundle)) >= (int)sizeof request) {
		fprintf(stderr, "driftgate-agent: hook: state lacks pid or bundle\n");
		goto out;
	}
	if (dg_control_request(o->cfg.control_url, request, o->cfg.timeout_ms, &reply,
	                       &reply_len) != DG_OK)
		goto out;
	if (reply_len < 2 || memcmp(reply, "ok", 2) != 0) {
		fprintf(stderr, "driftgate-agent: hook: %.*s\n", (int)reply_len, reply);
		goto out;
	}
	code = EXIT_OK;
out:
	if (reply != NULL)
		nng_free(reply, reply_len);
	json_object_put(root);
	return code;
}

static int
cmd_log(struct options *o)
{
	char path[PATH_MAX + 32];
	struct dg_mlog *log = NULL;
	const uint8_t *bytes;
	size_t len;
	int rv, code = EXIT_ERROR;
	snprintf(path, sizeof path, "%s/measurements.bin", o->cfg.state_dir);
	if (access(path, R_OK) != 0) {
		fprintf(stderr, "driftgate-agent: %s: %s\n", path, strerror(errno));
		return EXIT_ERROR;
	}
	if ((rv = dg_mlog_open(path, &log)) != DG_OK || (rv = dg_mlog_since(log, 0, &bytes, &len)) != DG_OK)
		goto out;
	/* A log cut short on stdout would read as a shorter, valid log: every write counts. */
	if (o->format == DG_LOG_FORMAT_BINARY) {
		if (fwrite(bytes, 1, len, stdout) != len) {
			rv = DG_ERR_IO;
			goto out;
		}
	} else {
		struct dg_log_reader r;
		struct dg_log_entry e;
		char line[2 * DG_LOG_MAX_TEMPLATE_DATA + 256];
		size_t n;
		if ((rv = dg_log_reader_init(&r, bytes, len, DG_LOG_FORMAT_BINARY)) != DG_OK)
			goto out;
		while ((rv = dg_log_next(&r, &e)) == DG_OK &&
		       (rv = dg_log_format_ascii(&e, line, sizeof line, &n)) == DG_OK) {
			if (fwrite(line, 1, n, stdout) != n) {
				rv = DG_ERR_IO;
				break;
			}
		}
		dg_log_reader_fini(&r);
		if (rv != DG_ERR_NOTFOUND)
			goto out;
	}
	rv = fflush(stdout) == 0 ? DG_OK : DG_ERR_IO;
	code = rv == DG_OK ? EXIT_OK : EXIT_ERROR;
out:
	if (rv != DG_OK)
		fprintf(stderr, "driftgate-agent: log %s: %s\n", path, dg_strerror(rv));
	dg_mlog_close(log);
	return code;
}

int
main(int argc, char **argv)
{
	static struct options o; /* large (the ascii line buffer lives in cmd_log) */
	int rv;

	dg_agent_config_defaults(&o.cfg);
	o.format = DG_LOG_FORMAT_ASCII;
	if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	const char *cmd = argv[1];
	int first = 0;
	rv = dg_conf_getopt("driftgate-agent", argc, argv, "c:i:T:v:C:W:s:p:n:t:m:f:eh", long_options,
	                    set_option, &o, &first);
	if (rv == DG_ERR_NOTFOUND) {
		usage(stdout);
		return EXIT_OK;
	}
	if (rv != DG_OK)
		return EXIT_USAGE;
	char **args = argv + first;
	int nargs = argc - first;
	if (strcmp(cmd, "run") == 0 && nargs == 0)
		return cmd_run(&o);
	if (strcmp(cmd, "log") == 0 && nargs == 0)
		return cmd_log(&o);
	if (strcmp(cmd, "hook") == 0 && nargs == 0)
		return cmd_hook(&o);
	if ((strcmp(cmd, "measure") == 0 && nargs > 0) || (strcmp(cmd, "secret") == 0 && nargs == 1))
		return cmd_client(&o, cmd, args, nargs);
	if ((strcmp(cmd, "attest") == 0 || strcmp(cmd, "status") == 0) && nargs == 0)
		return cmd_client(&o, cmd, args, 0);
	fprintf(stderr, "driftgate-agent: unknown command or wrong arguments: '%s' "
	                "(try --help)\n", cmd);
	return EXIT_USAGE;
}
