/*
 * The canonical container record: what an OCI runtime was asked to run, as one
 * deterministic text document. The agent builds it from the bundle's
 * config.json when the container is created and logs it (ima-buf); the
 * verifier builds the approved one from the approved bundle with the same
 * code, so equal specs give byte-identical records and equal hashes.
 *
 * Format (one field per line, in this order, repeated fields in spec order
 * except where noted; values escaped as in baselines: \\ and \xHH for bytes
 * below 0x21, 0x7f and above, so a value is one token):
 *   driftgate-container 1
 *   workload <name>          annotation io.driftgate.workload, else "-"
 *   name <name>              annotation io.driftgate.container, else "-"
 *   image-ref <ref>          org.opencontainers.image.ref.name or
 *                            io.kubernetes.cri.image-name, else "-"
 *   image-digest <digest>    io.driftgate.image.digest or
 *                            org.opencontainers.image.base.digest, else "-"
 *   arg <value>              process.args, in order
 *   env <NAME> sha256:<hex>  process.env, sorted by name; values only hashed
 *                            (they may hold secrets)
 *   cwd <path>
 *   user <uid> <gid> [<additional gid>...]
 *   no-new-privileges <true|false>
 *   readonly-rootfs <true|false>
 *   cap <set> <CAP_NAME>     bounding/effective/inheritable/permitted/ambient,
 *                            sorted by set then name
 *   mount <destination> <type> <source> <options,comma,joined>   in spec order
 *   namespace <type> <path or ->   sorted by type
 *   hook <stage> <path> [<arg>...] stages: prestart createRuntime
 *                            createContainer startContainer poststart poststop
 * Pure logic except dg_container_from_oci_json, which only parses text.
 */
#ifndef DRIFTGATE_CONTAINER_H
#define DRIFTGATE_CONTAINER_H

#include <stddef.h>
#include <stdint.h>

#include "driftgate/verdict.h"

#define DG_CONTAINER_MAX_JSON (4u * 1024 * 1024)
#define DG_CONTAINER_MAX_RECORD (64u * 1024) /* fits an ima-buf entry */
#define DG_CONTAINER_MAX_NAME 64

struct dg_container;

/* Parse an OCI runtime config.json (json-c) into a record. On error returns
 * DG_ERR_FORMAT/TOOBIG/NOMEM with a readable reason in err. */
int dg_container_from_oci_json(const char *json, size_t len, struct dg_container **out,
                               char *err, size_t err_cap);
/* Parse a canonical record (as logged). Strict: any deviation from the format,
 * including non-canonical order, is DG_ERR_FORMAT. */
int dg_container_parse(const char *text, size_t len, struct dg_container **out);
void dg_container_free(struct dg_container *c);

/* The canonical text (malloc'd, NUL-terminated; *len excludes the NUL). */
int dg_container_encode(const struct dg_container *c, char **text, size_t *len);

const char *dg_container_workload(const struct dg_container *c); /* "-" if none */
const char *dg_container_name(const struct dg_container *c);     /* "-" if none */

/*
 * Compare an observed record with the approved one. Appends one reason per
 * difference (code "spec-changed", detail naming the field and how it changed,
 * e.g. "env API_URL: sha256:ab12.. -> sha256:cd34..", "arg[0]: /app -> /wrap.sh",
 * "mount /run/secrets: source /srv/a -> /srv/b", "image-digest: sha256:.. -> ..").
 * At most max reasons are written; *n receives how many. Identical -> *n = 0.
 */
int dg_container_diff(const struct dg_container *approved, const struct dg_container *seen,
                      struct dg_reason *reasons, size_t max, size_t *n);

#endif
