/* driftgate-verifier: command line. See README.md ("driftgate-verifier") for the manual. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest.h"
#include "baseline.h"
#include "driftgate/conf.h"
#include "driftgate/err.h"
#include "driftgate/log.h"
#include "server.h"
#include "status.h"

enum exit_code { EXIT_OK = 0, EXIT_ERROR = 1, EXIT_USAGE = 2, EXIT_BAD_INPUT = 3 };

#define MAX_LIST 64

/* The only global state: set by signals, read by the server loop. */
static volatile sig_atomic_t stop_requested, reload_requested;

static void
on_signal(int sig)
{
	if (sig == SIGHUP)
		reload_requested = 1;
	else
		stop_requested = 1;
}

static void
usage(FILE *f)
{
	(void)fputs( /* usage text: a failed write changes nothing */
	    "Usage: driftgate-verifier COMMAND [OPTIONS] [ARGS]\n"
	    "\n"
	    "Enroll driftgate agents, verify their TPM quotes and logs against baselines,\n"
	    "and release workload secrets only to agents that pass.\n"
	    "\n"
	    "Commands:\n"
	    "  serve                 listen for agents (the daemon)\n"
	    "  status [--state FILE|URI] [--json]\n"
	    "                        list the agents the state database records (read\n"
	    "                        only, also while a verifier runs on it): id, state\n"
	    "                        (enrolled, pass, fail), log entries replayed, last\n"
	    "                        resetCount, containers, drift reasons; exit 0 ok,\n"
	    "                        1 usage error, 2 state not readable\n"
	    "  replay FILE           replay an IMA measurement log (kernel binary or ascii\n"
	    "                        format) and print 'pcr<N> <bank> <hex>' per PCR and bank\n"
	    "  baseline PATH...      hash files and directories into a baseline on stdout\n"
	    "  workload --output DIR --container NAME=BUNDLE...\n"
	    "                        approve OCI bundles as one workload: writes\n"
	    "                        DIR/NAME.workload and DIR/NAME.d/<container>.{record,manifest}\n"
	    "\n"
	    "Options for serve:\n"
	    "  -c, --config FILE     read 'option = value' lines (long option names)\n"
	    "  -l, --listen URL      address to listen on (default: " DG_VERIFIER_DEFAULT_LISTEN ");\n"
	    "                        tls+tcp://HOST:PORT for TLS (needs --tls-cert)\n"
	    "      --tls-cert FILE   PEM file with the verifier's certificate and private key\n"
	    "  -P, --policies DIR    directory of *.baseline and *.workload files\n"
	    "                        (default: " DG_VERIFIER_DEFAULT_POLICIES ")\n"
	    "  -S, --secrets DIR     directory of secret files, mode 0600, owned by the\n"
	    "                        verifier's user (default: " DG_VERIFIER_DEFAULT_SECRETS ")\n"
	    "  -a, --audit-log FILE  JSON-lines audit trail, '-' for stdout\n"
	    "                        (default: " DG_VERIFIER_DEFAULT_AUDIT ")\n"
	    "      --state FILE      SQLite database of enrolled agents and their replay\n"
	    "                        state, kept across restarts; ':memory:' keeps nothing\n"
	    "                        (default: " DG_VERIFIER_DEFAULT_STATE "); or a\n"
	    "                        postgresql://USER@HOST:PORT/DB connection URI: a\n"
	    "                        database several verifiers share (README, fleet)\n"
	    "      --nonce-ttl MS    how long a nonce stays valid (default: 30000)\n"
	    "      --heartbeat-timeout S  alert on an agent that has not attested for S\n"
	    "                        seconds and revoke its leases; 0: never (default: 60)\n"
	    "      --ek-ca FILE      PEM bundle of TPM manufacturer CAs (roots and\n"
	    "                        intermediates): enrollment then requires an EK\n"
	    "                        certificate that chains to it and certifies the EK\n"
	    "                        (default: none, the EK is trusted on first use)\n"
	    "      --allow-no-ek-cert ID  let agent ID enroll without a valid EK\n"
	    "                        certificate (audited); repeatable; needs --ek-ca\n"
	    "      --metrics-listen URL  serve Prometheus metrics on GET /metrics at\n"
	    "                        http://HOST:PORT (default: off): dg_attestations_total,\n"
	    "                        dg_attestation_failures_total, dg_enrollments_total,\n"
	    "                        dg_attestation_duration_seconds, dg_agents\n"
	    "\n"
	    "Options for status:\n"
	    "      --state FILE      the state database (default: " DG_VERIFIER_DEFAULT_STATE ")\n"
	    "      --json            one JSON document {\"agents\": [...]} instead of a table\n"
	    "\n"
	    "Options for replay:\n"
	    "  -f, --format FMT      binary or ascii (default: detected)\n"
	    "\n"
	    "Options for baseline and workload:\n"
	    "  -N, --name NAME       baseline or workload name (required)\n"
	    "  -A, --agent PATTERN   agent ids it applies to, fnmatch(3); repeatable (required)\n"
	    "  -s, --secret NAME     a secret its agents may receive; repeatable\n"
	    "  -x, --exclude REGEX   (baseline) paths to leave unappraised (anchored); repeatable\n"
	    "  -k, --container NAME=BUNDLE  (workload) an approved container; repeatable\n"
	    "  -o, --output DIR      (workload) the policies directory to write into\n"
	    "\n"
	    "  -h, --help            show this help\n"
	    "\n"
	    "Exit status: 0 success, 1 error (status: the state cannot be read), 2 usage\n"
	    "error, 3 malformed input (replay).\n",
	    f);
}

struct options {
	struct dg_verifier_config cfg;
	int format; /* -1: detect */
	const char *name;
	const char *agents[MAX_LIST], *secrets[MAX_LIST], *excludes[MAX_LIST], *containers[MAX_LIST];
	size_t n_agents, n_secrets, n_excludes, n_containers;
	const char *output;
	char metrics_listen[256]; /* serve: empty means no metrics */
	bool json;                /* status */
	char *owned[4 * MAX_LIST + 2]; /* values copied from a config file */
	size_t n_owned;
};

static int
push(struct options *o, const char **list, size_t *n, const char *value)
{
	if (*n == MAX_LIST || o->n_owned == sizeof o->owned / sizeof o->owned[0])
		return DG_ERR_TOOBIG;
	if ((o->owned[o->n_owned] = strdup(value)) == NULL)
		return DG_ERR_NOMEM;
	list[(*n)++] = o->owned[o->n_owned++];
	return DG_OK;
}

static int
set_option(const char *key, const char *value, void *arg)
{
	struct options *o = arg;
	struct dg_verifier_config *c = &o->cfg;
	if (strcmp(key, "listen") == 0)
		return dg_conf_str(c->listen_url, sizeof c->listen_url, value);
	if (strcmp(key, "tls-cert") == 0)
		return dg_conf_str(c->tls_cert_key, sizeof c->tls_cert_key, value);
	if (strcmp(key, "policies") == 0)
		return dg_conf_str(c->policies_dir, sizeof c->policies_dir, value);
	if (strcmp(key, "secrets") == 0)
		return dg_conf_str(c->secrets_dir, sizeof c->secrets_dir, value);
	if (strcmp(key, "audit-log") == 0)
		return dg_conf_str(c->audit_path, sizeof c->audit_path, value);
	if (strcmp(key, "state") == 0)
		return dg_conf_str(c->state_path, sizeof c->state_path, value);
	if (strcmp(key, "nonce-ttl") == 0) {
		unsigned long v;
		int rv = dg_conf_uint(value, 100, 3600000, &v);
		if (rv == DG_OK)
			c->nonce_ttl_ms = (unsigned)v;
		return rv;
	}
	if (strcmp(key, "heartbeat-timeout") == 0) {
		unsigned long v;
		int rv = dg_conf_uint(value, 0, 86400, &v);
		if (rv == DG_OK)
			c->heartbeat_timeout_ms = (unsigned)v * 1000u;
		return rv;
	}
	if (strcmp(key, "ek-ca") == 0)
		return dg_conf_str(c->ek_ca_path, sizeof c->ek_ca_path, value);
	if (strcmp(key, "metrics-listen") == 0)
		return dg_conf_str(o->metrics_listen, sizeof o->metrics_listen, value);
	if (strcmp(key, "json") == 0)
		return dg_conf_bool(value, &o->json);
	if (strcmp(key, "allow-no-ek-cert") == 0) {
		/* An agent id exactly as the wire admits it: a typo must not pass silently. */
		size_t len = strlen(value);
		if (len == 0 || len > DG_WIRE_MAX_AGENT_ID ||
		    strspn(value, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") !=
		        len)
			return DG_ERR_INVAL;
		if (c->n_ek_exempt == DG_VERIFIER_MAX_EK_EXEMPT)
			return DG_ERR_TOOBIG;
		memcpy(c->ek_exempt[c->n_ek_exempt++], value, len + 1);
		return DG_OK;
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
	if (strcmp(key, "name") == 0) {
		const char *one[1];
		size_t n = 0;
		int rv = push(o, one, &n, value);
		o->name = rv == DG_OK ? one[0] : NULL;
		return rv;
	}
	if (strcmp(key, "agent") == 0)
		return push(o, o->agents, &o->n_agents, value);
	if (strcmp(key, "secret") == 0)
		return push(o, o->secrets, &o->n_secrets, value);
	if (strcmp(key, "exclude") == 0)
		return push(o, o->excludes, &o->n_excludes, value);
	if (strcmp(key, "container") == 0)
		return strchr(value, '=') ? push(o, o->containers, &o->n_containers, value)
		                          : DG_ERR_INVAL;
	if (strcmp(key, "output") == 0) {
		const char *one[1];
		size_t n = 0;
		int rv = push(o, one, &n, value);
		o->output = rv == DG_OK ? one[0] : NULL;
		return rv;
	}
	return DG_ERR_NOTFOUND;
}

static const struct option long_options[] = {
	{"config", required_argument, NULL, 'c'},  {"listen", required_argument, NULL, 'l'},
	{"policies", required_argument, NULL, 'P'}, {"secrets", required_argument, NULL, 'S'},
	{"audit-log", required_argument, NULL, 'a'}, {"nonce-ttl", required_argument, NULL, 1},
	{"format", required_argument, NULL, 'f'},  {"name", required_argument, NULL, 'N'},
	{"agent", required_argument, NULL, 'A'},   {"secret", required_argument, NULL, 's'},
	{"exclude", required_argument, NULL, 'x'}, {"help", no_argument, NULL, 'h'},
	{"container", required_argument, NULL, 'k'}, {"output", required_argument, NULL, 'o'},
	{"ek-ca", required_argument, NULL, 2},     {"allow-no-ek-cert", required_argument, NULL, 3},
	{"state", required_argument, NULL, 4},     {"tls-cert", required_argument, NULL, 5},
	{"heartbeat-timeout", required_argument, NULL, 20},
	{"metrics-listen", required_argument, NULL, 0x101}, {"json", no_argument, NULL, 0x102},
	{NULL, 0, NULL, 0},
};

static int
cmd_serve(struct options *o)
{
	struct dg_verifier *v = NULL;
	char err[1024] = "";
	struct sigaction sa;
	int rv;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL); /* reload the policies */
	(void)signal(SIGPIPE, SIG_IGN); /* fails only for an invalid signal */
	if ((rv = dg_verifier_new(&o->cfg, &v, err, sizeof err)) != DG_OK) {
		fprintf(stderr, "driftgate-verifier: %s\n", err[0] ? err : dg_strerror(rv));
		return EXIT_ERROR;
	}
	rv = dg_server_run(v, o->cfg.listen_url, o->cfg.tls_cert_key,
	                   o->metrics_listen[0] ? o->metrics_listen : NULL, &stop_requested,
	                   &reload_requested);
	dg_verifier_free(v);
	return rv == DG_OK ? EXIT_OK : EXIT_ERROR;
}

static int
cmd_status(struct options *o)
{
	char err[1024] = "";
	int rv = dg_status_print(o->cfg.state_path, o->json, stdout, err, sizeof err);
	if (rv != DG_OK) {
		fprintf(stderr, "driftgate-verifier: status: %s\n", err[0] ? err : dg_strerror(rv));
		return EXIT_ERROR;
	}
	return EXIT_OK;
}

static uint8_t *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "re");
	uint8_t *buf = NULL;
	size_t cap = 0;
	*len = 0;
	if (f == NULL)
		return NULL;
	for (;;) {
		if (*len == cap) {
			size_t ncap = cap ? cap * 2 : 1 << 20;
			uint8_t *nb = ncap > (size_t)1 << 32 ? NULL : realloc(buf, ncap);
			if (nb == NULL) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap = ncap;
		}
		size_t n = fread(buf + *len, 1, cap - *len, f);
		*len += n;
		if (n == 0) {
			if (ferror(f)) {
				free(buf);
				buf = NULL;
			}
			break;
		}
	}
	(void)fclose(f); /* read only: nothing to lose */
	return buf;
}

static int
cmd_replay(struct options *o, const char *path)
{
	struct dg_log_reader r;
	struct dg_log_entry e;
	struct dg_replay state;
	size_t len;
	int rv, code = EXIT_BAD_INPUT;
	uint8_t *buf = read_file(path, &len);
	if (buf == NULL) {
		fprintf(stderr, "driftgate-verifier: %s: %s\n", path, strerror(errno ? errno : EIO));
		return EXIT_ERROR;
	}
	enum dg_log_format fmt = o->format >= 0 ? (enum dg_log_format)o->format
	                                        : dg_log_detect_format(buf, len);
	dg_replay_init(&state);
	if ((rv = dg_log_reader_init(&r, buf, len, fmt)) != DG_OK) {
		fprintf(stderr, "driftgate-verifier: %s: %s\n", path, dg_strerror(rv));
		code = EXIT_ERROR;
		goto out_state;
	}
	while ((rv = dg_log_next(&r, &e)) == DG_OK)
		if ((rv = dg_replay_extend(&state, &e)) != DG_OK)
			break;
	if (rv != DG_ERR_NOTFOUND) {
		fprintf(stderr, "driftgate-verifier: %s: entry %llu at byte offset %zu: %s\n", path,
		        (unsigned long long)r.index, r.off, dg_strerror(rv));
		goto out;
	}
	for (unsigned pcr = 0; pcr < DG_LOG_MAX_PCR; pcr++) {
		if (!(state.used & (1u << pcr)))
			continue;
		printf("pcr%u sha1 ", pcr);
		for (int i = 0; i < DG_SHA1_LEN; i++)
			printf("%02x", state.sha1[pcr][i]);
		printf("\npcr%u sha256 ", pcr);
		for (int i = 0; i < DG_SHA256_LEN; i++)
			printf("%02x", state.sha256[pcr][i]);
		printf("\n");
	}
	code = fflush(stdout) == 0 ? EXIT_OK : EXIT_ERROR;
out:
	dg_log_reader_fini(&r);
out_state:
	dg_replay_fini(&state);
	free(buf);
	return code;
}

static int
cmd_baseline(struct options *o, char **roots, int n_roots)
{
	if (o->name == NULL || o->n_agents == 0 || n_roots == 0) {
		fprintf(stderr, "driftgate-verifier: baseline needs --name, --agent and a PATH\n");
		return EXIT_USAGE;
	}
	struct dg_baseline_spec spec = {
		.name = o->name,
		.agents = o->agents, .n_agents = o->n_agents,
		.secrets = o->secrets, .n_secrets = o->n_secrets,
		.excludes = o->excludes, .n_excludes = o->n_excludes,
		.roots = (const char *const *)roots, .n_roots = (size_t)n_roots,
	};
	return dg_baseline_generate(&spec, stdout) == DG_OK ? EXIT_OK : EXIT_ERROR;
}

static int
cmd_workload(struct options *o)
{
	struct dg_baseline_container containers[MAX_LIST];
	char names[MAX_LIST][128];
	if (o->name == NULL || o->n_agents == 0 || o->n_containers == 0 || o->output == NULL) {
		fprintf(stderr, "driftgate-verifier: workload needs --name, --agent, --container "
		                "NAME=BUNDLE and --output DIR\n");
		return EXIT_USAGE;
	}
	for (size_t i = 0; i < o->n_containers; i++) {
		const char *eq = strchr(o->containers[i], '=');
		size_t n = (size_t)(eq - o->containers[i]);
		if (n == 0 || n >= sizeof names[i]) {
			fprintf(stderr, "driftgate-verifier: bad --container '%s'\n", o->containers[i]);
			return EXIT_USAGE;
		}
		memcpy(names[i], o->containers[i], n);
		names[i][n] = '\0';
		containers[i] = (struct dg_baseline_container){.name = names[i], .bundle = eq + 1};
	}
	struct dg_workload_spec spec = {
		.name = o->name,
		.agents = o->agents, .n_agents = o->n_agents,
		.secrets = o->secrets, .n_secrets = o->n_secrets,
		.containers = containers, .n_containers = o->n_containers,
	};
	return dg_baseline_generate_workload(&spec, o->output) == DG_OK ? EXIT_OK : EXIT_ERROR;
}

static int
run(struct options *o, int argc, char **argv)
{
	int rv;
	if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	const char *cmd = argv[1];
	int first = 0;
	rv = dg_conf_getopt("driftgate-verifier", argc, argv, "c:l:P:S:a:f:N:A:s:x:k:o:h",
	                    long_options, set_option, o, &first);
	if (rv == DG_ERR_NOTFOUND) {
		usage(stdout);
		return EXIT_OK;
	}
	if (rv != DG_OK)
		return EXIT_USAGE;
	int nargs = argc - first;
	if (strcmp(cmd, "serve") == 0 && nargs == 0)
		return cmd_serve(o);
	if (strcmp(cmd, "replay") == 0 && nargs == 1)
		return cmd_replay(o, argv[first]);
	if (strcmp(cmd, "baseline") == 0)
		return cmd_baseline(o, argv + first, nargs);
	if (strcmp(cmd, "workload") == 0 && nargs == 0)
		return cmd_workload(o);
	if (strcmp(cmd, "status") == 0) {
		if (nargs == 0)
			return cmd_status(o);
		fprintf(stderr, "driftgate-verifier: status takes no arguments (try --help)\n");
		return EXIT_USAGE;
	}
	fprintf(stderr, "driftgate-verifier: unknown command or wrong arguments: '%s' "
	                "(try --help)\n", cmd);
	return EXIT_USAGE;
}

int
main(int argc, char **argv)
{
	static struct options o;
	dg_verifier_config_defaults(&o.cfg);
	o.format = -1;
	int code = run(&o, argc, argv);
	for (size_t i = 0; i < o.n_owned; i++)
		free(o.owned[i]);
	return code;
}
