#!/usr/bin/env bash
# Per-workload secret release with real runc containers, a real agent and
# verifier and swtpm. Each step asserts what the container gets and what the
# audit trail records:
#   1 the approved container reads its secret through the workload API
#   2 a second container (another workload) asking for it is refused; it gets its own
#   3 a host process outside any container is refused
#   4 the verifier is killed: the leased copy lives until the lease ends, then
#     is gone; a restarted verifier releases it again after a fresh attestation
#   5 an agent that falls silent: the verifier alerts and revokes its leases
#   6 drift inside the container: the lease is revoked and the secret gone within
#     one attestation interval, for every container of the node
# (A sealed secret replayed or relayed to another TPM opens nowhere: test_attest.c.)
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_runc.sh"
[ "$(id -u)" -eq 0 ] || dg_fail "workload_secrets needs root (runc, fanotify)"
dg_workdir
CTR="$DG_WORK/ctr"
dg_runc_tmpfs "$CTR" || dg_fail "tmpfs for the rootfs"
mkdir -p "$DG_WORK/policies" "$DG_WORK/secrets"
chmod 700 "$DG_WORK/secrets"
web_token="web-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
batch_key="batch-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
( umask 077; printf '%s' "$web_token" > "$DG_WORK/secrets/api-token"
  printf '%s' "$batch_key" > "$DG_WORK/secrets/batch-key" )
LEASE=4
AGENT_CTL="ipc://$DG_WORK/agent-node-1.sock"
hooks="$DG_AGENT hook --control $AGENT_CTL"

# Two workloads, one container each; every bundle reaches the workload API.
for spec in "shop web api-token" "reports batch batch-key"; do
	set -- $spec
	DG_WORKLOAD=$1 DG_CONTAINER=$2 DG_RUNC_BINDS="$(dg_runc_workload_bind)" \
		DG_RUNC_HOOK_CREATE_RUNTIME="$hooks" DG_RUNC_HOOK_POSTSTOP="$hooks" \
		dg_runc_bundle "$CTR/$2" /bin/sh -c 'while true; do sleep 1; done' || dg_fail "bundle $2"
	"$DG_VERIFIER" workload --name "$1" --agent 'node-*' --secret "$3" \
		--container "$2=$CTR/$2" --output "$DG_WORK/policies" || dg_fail "approve $1"
	echo "lease $LEASE" >> "$DG_WORK/policies/$1.workload"
done
dg_verifier_start --heartbeat-timeout 3
dg_swtpm_start tpm
dg_agent_start node-1 --interval 1 --timeout 1000
dg_wait_verdict pass

ask() { dg_runc exec "$1" /bin/driftgate-secret "$2"; }     # CONTAINER SECRET
audit_has() { grep "\"event\":\"$1\"" "$DG_WORK/audit.jsonl" | grep -q "$2"; }

dg_note "1: the approved container reads its secret"
dg_runc_run_bg web "$CTR/web" || dg_fail "runc run web"
dg_runc_run_bg batch "$CTR/batch" || dg_fail "runc run batch"
[ "$(ask web api-token)" = "$web_token" ] || dg_fail "web did not get api-token"
audit_has secret-released '"container":"web","secret":"api-token"' || dg_fail "release not audited"
grep -qF "$web_token" "$DG_WORK"/*.log "$DG_WORK/audit.jsonl" && dg_fail "the secret value reached a log"

dg_note "2: another workload's container is refused, and gets its own"
ask batch api-token 2>"$DG_WORK/refused.err" && dg_fail "batch received web's secret"
grep -q "does not name secret api-token" "$DG_WORK/refused.err" || dg_fail "refusal reason: $(cat "$DG_WORK/refused.err")"
audit_has release-refused '"container":"batch","secret":"api-token"' || dg_fail "refusal not audited"
[ "$(ask batch batch-key)" = "$batch_key" ] || dg_fail "batch did not get batch-key"

dg_note "3: a host process is refused"
"$DG_SECRET_CLIENT" --socket "$DG_WORK/wl/api.sock" api-token 2>/dev/null \
	&& dg_fail "a host process received a secret"

dg_note "4: verifier killed: the secret lives until its lease ends, then is gone"
sleep 2   # renewals keep the leases alive past their first term
[ "$(ask web api-token)" = "$web_token" ] || dg_fail "lease not renewed"
audit_has lease-renewed '"container":"web"' || dg_fail "renewal not audited"
port=${VERIFIER_URL##*:}
kill -9 "$VERIFIER_PID"; wait "$VERIFIER_PID" 2>/dev/null
killed=$(date +%s%N)
[ "$(ask web api-token)" = "$web_token" ] || dg_fail "the leased copy vanished before its lease ended"
gone=""
for _ in $(seq 1 100); do
	if ! ask web api-token >/dev/null 2>&1; then gone=$(date +%s%N); break; fi
	sleep 0.1
done
[ -n "$gone" ] || dg_fail "the secret outlived its lease"
ms=$(( (gone - killed) / 1000000 ))
# The lease was last renewed at most one interval (1 s) before the kill; an
# ask after its end may first wait out one failed round (--timeout 1 s).
[ "$ms" -le $(( LEASE * 1000 + 2500 )) ] || dg_fail "the secret lived ${ms} ms after the verifier died"
grep -q "wiped: lease ended" "$DG_WORK/agent-node-1.log" || dg_fail "the agent did not wipe on expiry"
dg_note "  -> gone ${ms} ms after the verifier died (lease ${LEASE} s)"
"$DG_VERIFIER" serve --listen "$VERIFIER_URL" --policies "$DG_WORK/policies" \
	--secrets "$DG_WORK/secrets" --audit-log "$DG_WORK/audit.jsonl" --state "$DG_WORK/verifier.db" \
	--heartbeat-timeout 3 >>"$DG_WORK/verifier.log" 2>&1 &
VERIFIER_PID=$!
DG_PIDS+=("$VERIFIER_PID")
for _ in $(seq 1 200); do ss -Htln "sport = :$port" | grep -q . && break; sleep 0.05; done
ok=""
for _ in $(seq 1 100); do
	[ "$(ask web api-token 2>/dev/null)" = "$web_token" ] && { ok=1; break; }
	sleep 0.1
done
[ -n "$ok" ] || dg_fail "no fresh release after the verifier came back"

dg_note "5: a silent agent is alerted on and its leases revoked"
kill -STOP "$AGENT_PID"
for _ in $(seq 1 100); do
	grep -q '"event":"heartbeat-missed"' "$DG_WORK/audit.jsonl" && break
	sleep 0.1
done
kill -CONT "$AGENT_PID"
audit_has heartbeat-missed node-1 || dg_fail "no heartbeat-missed alert"
audit_has lease-revoked '"reason":"heartbeat-missed"' || dg_fail "leases not revoked on silence"
# It recovers only through a fresh passing attestation, which then releases again.
ok=""
for _ in $(seq 1 100); do
	[ "$(ask web api-token 2>/dev/null)" = "$web_token" ] && { ok=1; break; }
	sleep 0.1
done
[ -n "$ok" ] || dg_fail "no release after the agent attested again"

dg_note "6: drift inside the container revokes every lease of the node"
[ "$(ask batch batch-key)" = "$batch_key" ] || dg_fail "batch lost its secret early"
printf '#!/bin/sh\necho drift\n' > "$CTR/web/rootfs/tmp/drift"; chmod +x "$CTR/web/rootfs/tmp/drift"
dg_runc exec web /tmp/drift >/dev/null
drifted=$(date +%s%N)
gone=""
for _ in $(seq 1 100); do
	if ! ask web api-token >/dev/null 2>&1 && ! ask batch batch-key >/dev/null 2>&1; then
		gone=$(date +%s%N); break
	fi
	sleep 0.05
done
[ -n "$gone" ] || dg_fail "secrets still delivered after drift"
ms=$(( (gone - drifted) / 1000000 ))
[ "$ms" -le 1500 ] || dg_fail "drift took ${ms} ms to revoke (interval 1 s)"
audit_has lease-revoked '"reason":"exec-unknown"' || dg_fail "revocation not audited"
dg_note "  -> both containers refused ${ms} ms after the drift"
grep -qF "$web_token" "$DG_WORK"/*.log "$DG_WORK/audit.jsonl" && dg_fail "the secret value reached a log"
grep -qF "$batch_key" "$DG_WORK"/*.log "$DG_WORK/audit.jsonl" && dg_fail "the secret value reached a log"
dg_note "per-workload release, refusal, lease expiry, silence and drift revocation all hold"
