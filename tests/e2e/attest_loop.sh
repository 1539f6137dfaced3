#!/usr/bin/env bash
# The attestation loop across restarts: the agent's log survives a restart,
# replay stays incremental, its exported log is read by evmctl and by
# `driftgate-verifier replay`, and both agree with the TPM's own PCR value.
set -u
. "$(dirname "$0")/lib.sh"
dg_workdir
dg_swtpm_start tpm
mkdir -p "$DG_WORK/app" "$DG_WORK/policies" "$DG_WORK/secrets"
chmod 700 "$DG_WORK/secrets"
for i in $(seq 1 20); do echo "file $i" > "$DG_WORK/app/f$i"; done
"$DG_VERIFIER" baseline --name loop --agent 'node-*' --secret token "$DG_WORK/app" \
	> "$DG_WORK/policies/loop.baseline" || dg_fail "baseline"
( umask 077; echo -n "tok-$$" > "$DG_WORK/secrets/token" )
dg_verifier_start

dg_agent_start node-1 --measure "$DG_WORK/app" --interval 1
dg_wait_verdict pass
[ "$(dg_agent_ctl secret token)" = "tok-$$" ] || dg_fail "secret not released"

# Heartbeats keep passing without new entries.
sleep 2.5
n=$(grep -c '"verdict":"pass"' "$DG_WORK/audit.jsonl")
[ "$n" -ge 3 ] || dg_fail "expected heartbeat attestations, saw $n passing verdicts"
grep '"verdict":"pass"' "$DG_WORK/audit.jsonl" | tail -1 | grep -q '"new_entries":0' \
	|| dg_fail "a heartbeat with no new measurement should replay 0 entries"

# Restart the agent: the log is reloaded, the verifier continues from its position.
kill "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null
dg_agent_start node-1 --interval 1
dg_wait_verdict pass
grep -q "new_entries\":20" "$DG_WORK/audit.jsonl" || dg_fail "first round should carry 20 entries"
last=$(grep '"verdict"' "$DG_WORK/audit.jsonl" | tail -1)
case "$last" in *'"verdict":"pass"'*'"entries":20'*) ;; *) dg_fail "after restart: $last" ;; esac
[ "$(dg_agent_ctl secret token)" = "tok-$$" ] || dg_fail "secret not released after restart"

# The exported log, in both kernel formats, replays to the TPM's PCR 13.
"$DG_AGENT" log --state-dir "$DG_WORK/agent-node-1" --format binary > "$DG_WORK/log.bin" || dg_fail "log export"
"$DG_AGENT" log --state-dir "$DG_WORK/agent-node-1" --format ascii > "$DG_WORK/log.txt" || dg_fail "ascii export"
[ "$(wc -l < "$DG_WORK/log.txt")" -eq 20 ] || dg_fail "ascii log should have 20 lines"
tpm=$(tpm2_pcrread -T "$TCTI" sha256:13 | awk '$1 == "13:" {print tolower($2)}' | sed 's/^0x//')
[ -n "$tpm" ] || dg_fail "could not read PCR 13 with tpm2_pcrread"
for f in log.bin log.txt; do
	ours=$("$DG_VERIFIER" replay "$DG_WORK/$f" | awk '$1 == "pcr13" && $2 == "sha256" {print $3}')
	[ "$ours" = "$tpm" ] || dg_fail "$f: replay gives $ours, TPM has $tpm"
done
echo "# replay of the agent's log (binary and ascii) equals tpm2_pcrread: $tpm"

# evmctl (ima-evm-utils) accepts the agent's binary log against the TPM's value.
for i in $(seq 0 23); do
	if [ "$i" -eq 13 ]; then v=$tpm; else v=$(printf '0%.0s' $(seq 1 64)); fi
	printf 'PCR-%02d: %s\n' "$i" "$v"
done > "$DG_WORK/pcrs"
evmctl ima_measurement --pcrs "sha256,$DG_WORK/pcrs" "$DG_WORK/log.bin" > "$DG_WORK/evmctl.out" 2>&1 \
	|| { cat "$DG_WORK/evmctl.out"; dg_fail "evmctl rejected the agent's log"; }
# ...and rejects it against a wrong PCR value, so the check above can fail.
sed -i 's/^PCR-13: ./PCR-13: f/' "$DG_WORK/pcrs"
grep -q '^PCR-13: f' "$DG_WORK/pcrs" || dg_fail "pcrs edit"
if [ "${tpm:0:1}" != f ] && evmctl ima_measurement --pcrs "sha256,$DG_WORK/pcrs" "$DG_WORK/log.bin" >/dev/null 2>&1; then
	dg_fail "evmctl accepted a wrong PCR value"
fi
echo "# evmctl ima_measurement accepts the agent's log and rejects a wrong PCR"
