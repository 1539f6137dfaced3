#!/usr/bin/env bash
# A rolled-back TPM: the swtpm state is snapshotted, the node runs on, then
# the old state is restored (as a VM snapshot restore would). The quote is
# genuine and fresh, but its clock goes back within the same boot counter:
# the verifier must refuse it (clock-rollback) and release nothing.
set -u
. "$(dirname "$0")/lib.sh"
dg_workdir
mkdir -p "$DG_WORK/app" "$DG_WORK/policies" "$DG_WORK/secrets"
chmod 700 "$DG_WORK/secrets"
echo "approved" > "$DG_WORK/app/f"
"$DG_VERIFIER" baseline --name rb --agent rb-node --secret s "$DG_WORK/app" \
	> "$DG_WORK/policies/rb.baseline" || dg_fail "baseline"
( umask 077; echo -n "secret-$$" > "$DG_WORK/secrets/s" )
dg_verifier_start

# stop_node: stop the agent, then the TPM (its state is saved on the way out).
stop_node() {
	kill "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null
	kill "$SWTPM_PID"; wait "$SWTPM_PID" 2>/dev/null
}
start_node() {
	dg_swtpm_start tpm
	SWTPM_PID=${DG_PIDS[-1]}
	dg_agent_start rb-node --measure "$DG_WORK/app/f" --interval 60
}

start_node
dg_wait_verdict pass
stop_node
cp -a "$DG_WORK/tpm" "$DG_WORK/tpm-snapshot"        # the snapshot

start_node                                          # boot 2 from the same state
dg_wait_verdict pass
sleep 2                                             # the TPM clock moves on
dg_agent_ctl attest >/dev/null || dg_fail "boot 2 should attest"
stop_node

rm -rf "$DG_WORK/tpm"; mv "$DG_WORK/tpm-snapshot" "$DG_WORK/tpm"   # the restore
start_node
dg_wait_verdict fail
out=$(dg_agent_ctl status)
case "$out" in *"clock-rollback"*) ;; *) dg_fail "expected clock-rollback, got: $out" ;; esac
dg_agent_ctl secret s >/dev/null 2>&1 && dg_fail "a secret was released to a rolled-back TPM"
grep -q '"event":"release-refused"' "$DG_WORK/audit.jsonl" || dg_fail "the refusal is not audited"
tail -1 "$DG_WORK/audit.jsonl" | grep -q '"event":"secret-released"' && dg_fail "audit shows a release"
dg_note "restored TPM snapshot refused: $out"
