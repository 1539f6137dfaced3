/*
 * Workloads: which containers may run together, each with its approved
 * record (container.h) and rootfs manifest (manifest.h), and the appraisal of
 * the container events in an agent's log against them.
 *
 * Container events are ordinary log entries with reserved names:
 *   dg:container:<id>          ima-buf, buffer = canonical container record
 *   dg:rootfs:<id>             ima-ng, digest = SHA-256 of the manifest text
 *   dg:exec:<id>:<path>        ima-ng, digest = SHA-256 of the exec'd file;
 *                              <path> as seen inside the container, or
 *                              "volume:<host path>" for a file outside its rootfs
 * <id> is the runtime's container id ([A-Za-z0-9_.+-]{1,128}).
 *
 * A workload file (policies/<name>.workload):
 *   driftgate-workload 1
 *   name <workload>            matches the record's "workload" field
 *   agent <fnmatch pattern>    agents that may run it; one or more
 *   container <name>           one line per container allowed in the workload
 *   secret <name>              a secret the workload's containers may ask for
 *   lease <seconds>            lifetime of a released secret without a renewing
 *                              attestation (1..86400; default 60, policy.h)
 * and for each container the files <name>.d/<container>.record and
 * <name>.d/<container>.manifest beside it (made by the baseline generator from
 * the approved bundle). Pure logic: the caller reads the files.
 */
#ifndef DRIFTGATE_WORKLOAD_H
#define DRIFTGATE_WORKLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "driftgate/container.h"
#include "driftgate/log.h"
#include "driftgate/verdict.h"

/* Every name starting with "dg:" is reserved: one that is none of the three
 * events below is malformed. */
#define DG_EVENT_RESERVED "dg:"
#define DG_EVENT_CONTAINER "dg:container:"
#define DG_EVENT_ROOTFS "dg:rootfs:"
#define DG_EVENT_EXEC "dg:exec:"
#define DG_CONTAINER_ID_MAX 128

enum dg_event_kind { DG_EVENT_NONE = 0, DG_EVENT_KIND_CONTAINER, DG_EVENT_KIND_ROOTFS,
                     DG_EVENT_KIND_EXEC };

/* Classify a log entry path. For container events, id receives the container
 * id and *exec_path (exec only) points into path. DG_EVENT_NONE for ordinary
 * file entries; DG_ERR_FORMAT (returned) for a malformed reserved name. */
int dg_event_classify(const char *path, enum dg_event_kind *kind,
                      char id[DG_CONTAINER_ID_MAX + 1], const char **exec_path);

struct dg_workload;

/* Lines, errors ("line N: ...") and *out as in dg_policy_parse; at most 1 MiB
 * of text and 256 containers, container names unique. */
int dg_workload_parse(const char *text, size_t len, struct dg_workload **out, char *err,
                      size_t err_cap);
/* Attach a container's approved record and manifest (texts as the generator
 * wrote them). DG_ERR_NOTFOUND if the workload file does not list name. */
int dg_workload_set_container(struct dg_workload *w, const char *name, const char *record,
                              size_t record_len, const char *manifest, size_t manifest_len,
                              char *err, size_t err_cap);
/* DG_ERR_STATE naming the first listed container that has no record/manifest. */
int dg_workload_check_complete(const struct dg_workload *w, char *err, size_t err_cap);
void dg_workload_free(struct dg_workload *w);
const char *dg_workload_name(const struct dg_workload *w);
bool dg_workload_applies(const struct dg_workload *w, const char *agent_id);
size_t dg_workload_container_count(const struct dg_workload *w);
const char *dg_workload_container_name(const struct dg_workload *w, size_t i);
size_t dg_workload_secret_count(const struct dg_workload *w);
const char *dg_workload_secret(const struct dg_workload *w, size_t i);
bool dg_workload_has_secret(const struct dg_workload *w, const char *name);
unsigned dg_workload_lease_s(const struct dg_workload *w);

/*
 * Per-agent appraisal state: the containers its log has announced (id ->
 * workload, container name, observed record and manifest). The verifier keeps
 * one per agent, clones it before a round and keeps the clone only if the
 * round's quote proves the log.
 */
struct dg_containers;

int dg_containers_new(struct dg_containers **out);
int dg_containers_clone(const struct dg_containers *src, struct dg_containers **out);
void dg_containers_free(struct dg_containers *s);
/* How many containers the log has announced. */
size_t dg_containers_count(const struct dg_containers *s);

/* The workload a container announced in the log claims to belong to (its
 * record's "workload"), or NULL if the log never announced id. */
const char *dg_containers_workload_of(const struct dg_containers *s, const char *id);

/* Containers one agent may have announced; dg_containers_appraise refuses more. */
#define DG_CONTAINERS_MAX 4096

/*
 * The state as bytes, for the verifier's durable store. Text, so an operator
 * can read it out of the database:
 *   driftgate-containers 1 <count>
 *   then per container, in increasing id order (strcmp), ids unique:
 *   container <id> <rootfs manifest sha256 hex, or "-" if none yet> <record length>
 *   <the canonical record (container.h): exactly <record length> bytes>
 *   (and one "\n" after the record)
 * Numbers are decimal without leading zeros. The count makes a document cut
 * at a container boundary an error instead of a smaller, valid-looking state.
 */
#define DG_CONTAINERS_ENCODED_LINE 256 /* bound on the header and per-container lines */
#define DG_CONTAINERS_MAX_ENCODED                                                              \
	(DG_CONTAINERS_ENCODED_LINE +                                                          \
	 (size_t)DG_CONTAINERS_MAX * (DG_CONTAINERS_ENCODED_LINE + DG_CONTAINER_MAX_RECORD + 1))

/* *out is malloc'd (the caller frees it), *len its size. */
int dg_containers_encode(const struct dg_containers *s, uint8_t **out, size_t *len);
/*
 * Strict inverse of dg_containers_encode: in is untrusted (read back from a
 * database). Anything but exactly what the encoder writes (header, order,
 * duplicate ids, id charset, digest case, lengths, each record as
 * dg_container_parse accepts it, bytes after the last container) is
 * DG_ERR_FORMAT (DG_ERR_TRUNCATED if in ends early, DG_ERR_TRAILING for extra
 * bytes); over the bounds DG_ERR_TOOBIG. Nothing is allocated on error.
 */
int dg_containers_decode(const uint8_t *in, size_t len, struct dg_containers **out);

/* How appraisal gets the manifest text the agent sent for a container id
 * (NULL if it sent none). */
typedef const char *(*dg_manifest_source_fn)(const char *container_id, size_t *len, void *arg);

/*
 * Appraise one container event (entries of kind DG_EVENT_NONE are not for this
 * function). Appends reasons (at most max - *n) and may register state:
 *   container: record parsed; its workload must apply to agent_id and list its
 *     name ("unexpected-container": an injected sidecar or unknown workload);
 *     differences to the approved record -> "spec-changed" reasons;
 *   rootfs: the digest must equal the approved manifest's; if not, the agent's
 *     manifest (checked against the logged digest) gives "file-added",
 *     "file-removed", "file-changed" reasons, else one "rootfs-changed";
 *   exec: the container must be known ("unknown-container"); (path, digest)
 *     must be in the approved manifest; else "exec-moved" (the digest is
 *     approved at another path), "exec-volume" (from outside the rootfs) or
 *     "exec-unknown" (details name the container, path and digest).
 * A second container or rootfs event for one id gives "container-reused"; a
 * rootfs event for an id never announced gives "unknown-container". Events of
 * a container that failed its creation appraisal are appraised all the same.
 * Returns DG_OK (reasons may have been added) or, changing nothing: DG_ERR_FORMAT
 * for a malformed event (name, template, hash, a record that does not parse
 * or hash to the entry's digest), DG_ERR_INVAL for a DG_EVENT_NONE entry,
 * DG_ERR_TOOBIG past 4096 containers.
 */
int dg_containers_appraise(struct dg_containers *s, const struct dg_workload *const *workloads,
                           size_t n_workloads, const char *agent_id,
                           const struct dg_log_entry *e, dg_manifest_source_fn manifests,
                           void *manifests_arg, struct dg_reason *reasons, size_t max,
                           size_t *n);

#endif
