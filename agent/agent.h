/*
 * The agent core: TPM keys, the durable log, enrollment, measurement and
 * attestation rounds, and the secrets the last passing round released.
 */
#ifndef DRIFTGATE_AGENT_AGENT_H
#define DRIFTGATE_AGENT_AGENT_H

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "driftgate/verdict.h"
#include "driftgate/workload.h"
#include "driftgate/wire.h"

#define DG_AGENT_DEFAULT_PCR 13
#define DG_AGENT_DEFAULT_VERIFIER "tcp://127.0.0.1:7300"
#define DG_AGENT_MAX_VERIFIERS 8
#define DG_AGENT_DEFAULT_CONTROL "ipc:///run/driftgate/agent.sock"
#define DG_AGENT_WORKLOAD_SOCKET "/run/driftgate/workload/api.sock"
#define DG_AGENT_DEFAULT_STATE_DIR "/var/lib/driftgate"
#define DG_AGENT_DEFAULT_TCTI "device:/dev/tpmrm0"
#define DG_AGENT_MAX_SECRET 4096

struct dg_agent_config {
	char agent_id[DG_WIRE_MAX_AGENT_ID + 1];
	char tcti[256];
	/* One verifier address, or several separated by commas: tried in this
	 * order, the next one after a transport error or timeout (failover to
	 * verifiers sharing one PostgreSQL state). */
	char verifier_url[DG_AGENT_MAX_VERIFIERS * 256];
	char tls_ca[PATH_MAX];       /* for tls+tcp:// verifier urls: what its certificate chains to */
	char tls_server_name[256];   /* checked against the certificate; default: the url's host */
	char control_url[256];
	char workload_socket[108];   /* the workload API (workload_api.h); "" turns it off */
	char state_dir[PATH_MAX];
	uint32_t pcr;
	uint32_t ek_handle, ak_handle, bind_handle;
	unsigned interval_s; /* heartbeat attestation period */
	unsigned timeout_ms; /* per request to the verifier */
	bool exec_watch;     /* measure execs in containers (fanotify; needs root) */
	bool enforce;        /* deny execs that are not in the container's manifest */
};

/* The outcome of the last attestation round. */
struct dg_agent_verdict {
	bool attested; /* a round completed (pass or fail) */
	bool pass;
	size_t n_reasons;
	struct dg_reason reasons[DG_VERDICT_MAX_REASONS];
};

struct dg_agent;

void dg_agent_config_defaults(struct dg_agent_config *cfg);

/* Open the TPM and the log, load or create the keys, reconcile log and PCR. */
int dg_agent_start(const struct dg_agent_config *cfg, struct dg_agent **out);
void dg_agent_stop(struct dg_agent *a);

/* Enroll with the verifier: send EK/AK (and the TPM's EK certificate, if it has
 * one), activate the credential it returns. */
int dg_agent_enroll(struct dg_agent *a);

/* Measure a file, or every regular file under a directory: hash, append to
 * the durable log, extend the PCR, in that order. *added counts new entries. */
int dg_agent_measure(struct dg_agent *a, const char *path, unsigned *added);

/* One attestation round; on pass the released secrets replace the held ones,
 * on fail (or any error) every held secret is wiped. Thread-safe. */
int dg_agent_attest(struct dg_agent *a);

/* Ask the attester thread for a round now (a new measurement was made). */
void dg_agent_request_attest(struct dg_agent *a);
/* The attester thread: rounds on request and every interval until *stop. */
int dg_agent_attester_run(struct dg_agent *a, volatile sig_atomic_t *stop);

/*
 * A container is being created (OCI createRuntime hook): measure its canonical
 * record (from bundle/config.json) and its rootfs manifest, register it for
 * exec attribution by the mount namespace of pid, and watch its filesystem.
 * Returns once both entries are durable and extended.
 */
int dg_agent_container_create(struct dg_agent *a, const char *id, int pid, const char *bundle);
/* The id of the registered container whose mount namespace is mntns (the
 * inode of /proc/<pid>/ns/mnt); DG_ERR_NOTFOUND if none. */
int dg_agent_container_of_mntns(struct dg_agent *a, uint64_t mntns,
                                char id[DG_CONTAINER_ID_MAX + 1]);
/* The container stopped (poststop hook): forget it and wipe its leases. */
void dg_agent_container_delete(struct dg_agent *a, const char *id);

/* The exec watcher thread (fanotify): measure every exec inside a registered
 * container before it may proceed; deny unapproved ones when enforcing. */
int dg_agent_exec_watch_run(struct dg_agent *a, volatile sig_atomic_t *stop);

void dg_agent_last_verdict(struct dg_agent *a, struct dg_agent_verdict *out);
uint64_t dg_agent_log_count(struct dg_agent *a);
uint64_t dg_agent_interval_ms(const struct dg_agent *a);

/*
 * A secret for scope (a container id, "" for the node itself): the leased
 * copy while its lease runs and the last round passed; otherwise a fresh
 * attestation round that asks the verifier to release it, sealed to this
 * TPM's binding key. DG_ERR_DENIED (why says the verifier's reason) if it is
 * not released; other errors if no round completed.
 */
int dg_agent_secret(struct dg_agent *a, const char *scope, const char *name, uint8_t *out,
                    size_t cap, size_t *len, char *why, size_t why_cap);

#endif
