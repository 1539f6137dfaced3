#!/usr/bin/env bash
# The end-to-end demo: a swtpm-backed agent and verifier and a real runc
# container. The approved container runs and receives its secret; then a
# binary that is not in the approved image is written into it and run, the
# attestation that follows fails with a precise reason, and the secret is
# withheld. Exits 0 only if all of that happened. Needs root (runc, fanotify).
set -u
# runc and fanotify need root: come back through sudo when run as a user.
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then
	exec sudo DG_BUILD_ROOT="${DG_BUILD_ROOT:-$PWD/build}" bash "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_runc.sh"
if [ "$(id -u)" -ne 0 ]; then
	echo "The demo runs a real container and watches its execs: run it as root (sudo)." >&2
	exit 2
fi
dg_workdir
say() { printf '\n== %s\n' "$*"; }

say "Starting a software TPM (swtpm)"
dg_swtpm_start tpm
echo "TPM reachable as $TCTI"

say "Approving a workload: container 'web' (busybox image) may receive the secret api-token"
CTR="$DG_WORK/containers"
dg_runc_tmpfs "$CTR" || dg_fail "tmpfs for the container rootfs"
mkdir -p "$DG_WORK/policies" "$DG_WORK/secrets"
chmod 700 "$DG_WORK/secrets"
AGENT_CTL="ipc://$DG_WORK/agent.sock"
export DG_WORKLOAD=shop DG_CONTAINER=web DG_IMAGE_REF=registry.example/shop/web:1.4 \
	DG_IMAGE_DIGEST=sha256:4b1c0e7f3a5d2c9e8f6a1b0c3d5e7f9a2b4c6d8e0f1a3b5c7d9e1f2a4b6c8d0e \
	DG_RUNC_ENV="API_URL=https://api.internal/v1" DG_RUNC_BINDS="$(dg_runc_workload_bind)" \
	DG_RUNC_HOOK_CREATE_RUNTIME="$DG_AGENT hook --control $AGENT_CTL" \
	DG_RUNC_HOOK_POSTSTOP="$DG_AGENT hook --control $AGENT_CTL"
dg_runc_bundle "$CTR/web" /bin/sh -c 'while true; do sleep 1; done' || dg_fail "bundle"
"$DG_VERIFIER" workload --name shop --agent 'node-*' --secret api-token \
	--container "web=$CTR/web" --output "$DG_WORK/policies" || dg_fail "workload approval"
sed 's/^/  /' "$DG_WORK/policies/shop.workload"
echo "  (approved record: $(wc -l < "$DG_WORK/policies/shop.d/web.record") lines, rootfs manifest: $(wc -l < "$DG_WORK/policies/shop.d/web.manifest") files)"
secret="tok-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
( umask 077; printf '%s' "$secret" > "$DG_WORK/secrets/api-token" )

say "Starting driftgate-verifier"
dg_verifier_start
echo "verifier listening on $VERIFIER_URL"

say "Starting driftgate-agent: enrolls (EK/AK, credential activation) and attests"
"$DG_AGENT" run --agent-id node-1 --tcti "$TCTI" --verifier "$VERIFIER_URL" \
	--control "$AGENT_CTL" --state-dir "$DG_WORK/agent" --interval 5 \
	--workload-socket "$DG_WORK/wl/api.sock" \
	>>"$DG_WORK/agent.log" 2>&1 &
AGENT_PID=$!
DG_PIDS+=("$AGENT_PID")
dg_wait_verdict pass
dg_agent_ctl status

say "Running the approved container with runc (its hook has the agent measure it first)"
dg_runc_run_bg web "$CTR/web" || { cat "$DG_WORK/runc-web.err" >&2; dg_fail "runc run"; }
dg_runc exec web /bin/true || dg_fail "exec in the container"
dg_agent_ctl attest || dg_fail "the approved container should attest"
say "Inside the container, the workload asks the agent's workload API for its secret"
echo "$ runc exec web driftgate-secret api-token"
got=$(dg_runc exec web /bin/driftgate-secret api-token) \
	|| dg_fail "the approved workload did not receive its secret"
[ "$got" = "$secret" ] || dg_fail "released secret differs from the one on the verifier"
echo "secret api-token released to container web (${#got} bytes, matches the verifier's copy;"
echo "sealed to this node's TPM key, leased for 60 s, renewed while attestations pass)"
echo "$ driftgate-secret api-token   # the same request from a host process, outside any container"
if "$DG_SECRET_CLIENT" --socket "$DG_WORK/wl/api.sock" api-token; then
	dg_fail "a host process outside the container received the secret"
fi
echo "the agent's log now holds:"
"$DG_AGENT" log --state-dir "$DG_WORK/agent" | awk '{print "  " substr($4, 1, 23) "...  " $5}'

say "Drift: a binary that is not in the approved image is written into the container and run"
printf '#!/bin/sh\necho "exfiltrating $API_URL"\n' > "$CTR/web/rootfs/tmp/helper"
chmod +x "$CTR/web/rootfs/tmp/helper"
dg_runc exec web /tmp/helper
for _ in $(seq 1 50); do
	out=$(dg_agent_ctl status 2>/dev/null)
	case "$out" in *"last verdict fail"*) break ;; esac
	sleep 0.1
done
echo "$out"
case "$out" in *"exec-unknown"*"/tmp/helper"*) ;; *) dg_fail "the verdict does not name the unapproved exec" ;; esac

say "The secret is now withheld: the lease was revoked and the agent wiped its copy"
echo "$ runc exec web driftgate-secret api-token"
if dg_runc exec web /bin/driftgate-secret api-token >/dev/null 2>"$DG_WORK/secret.err"; then
	dg_fail "secret still available after drift"
fi
cat "$DG_WORK/secret.err"

say "Audit trail (JSON lines)"
cat "$DG_WORK/audit.jsonl"
grep -q '"verdict":"pass"' "$DG_WORK/audit.jsonl" || dg_fail "no passing verdict in the audit log"
grep -q '"code":"exec-unknown"' "$DG_WORK/audit.jsonl" || dg_fail "no exec-unknown verdict in the audit log"
grep '"event":"secret-released"' "$DG_WORK/audit.jsonl" | grep -q '"container":"web"' \
	|| dg_fail "no release to container web in the audit log"
grep -q '"event":"lease-revoked"' "$DG_WORK/audit.jsonl" || dg_fail "no revocation in the audit log"
if grep -qF "$secret" "$DG_WORK/audit.jsonl" "$DG_WORK"/*.log; then
	dg_fail "the secret value leaked into a log"
fi

say "Demo complete: the approved container received its secret; drift was detected and the secret withheld"
