#!/usr/bin/env bash
# Crash consistency of the agent's log: an entry logged but never extended, a
# torn half-written entry, and SIGKILL at random points of measurement bursts
# must all reconcile on restart with no false alarm and no lost measurement.
set -u
. "$(dirname "$0")/lib.sh"
dg_workdir
dg_swtpm_start tpm
mkdir -p "$DG_WORK/app" "$DG_WORK/policies" "$DG_WORK/secrets"
chmod 700 "$DG_WORK/secrets"
for i in $(seq 1 40); do echo "approved $i" > "$DG_WORK/app/f$i"; done
"$DG_VERIFIER" baseline --name crash --agent crash-node "$DG_WORK/app" \
	> "$DG_WORK/policies/crash.baseline" || dg_fail "baseline"
dg_verifier_start
LOG="$DG_WORK/agent-crash-node/measurements.bin"

entries() { "$DG_AGENT" log --state-dir "$DG_WORK/agent-crash-node" --format ascii | wc -l; }

dg_agent_start crash-node --measure "$DG_WORK/app/f1" --interval 60
dg_wait_verdict pass
kill "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null

# 1. Logged, not extended: the state a crash between fdatasync and extend leaves.
# The entry is built here by python3 from the kernel's ima-ng layout, not by driftgate.
python3 - "$DG_WORK/app/f2" "$LOG" <<'PY'
import hashlib, struct, sys
path, log = sys.argv[1], sys.argv[2]
digest = hashlib.sha256(open(path, "rb").read()).digest()
d = b"sha256:\0" + digest
n = path.encode() + b"\0"
data = struct.pack("<I", len(d)) + d + struct.pack("<I", len(n)) + n
entry = struct.pack("<I", 13) + hashlib.sha1(data).digest() + struct.pack("<I", 6) + b"ima-ng" + struct.pack("<I", len(data)) + data
open(log, "ab").write(entry)
PY
before=$(entries)
dg_agent_start crash-node --interval 60
dg_wait_verdict pass
grep -q "extending entry 1, logged before a crash" "$DG_WORK/agent-crash-node.log" \
	|| dg_fail "agent did not complete the pending extend"
[ "$(entries)" -eq "$before" ] || dg_fail "pending entry lost"
echo "# a logged-but-unextended entry is extended on restart and attests"
kill "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null

# 2. A torn write (half an entry) is dropped: it was never extended.
head -c 30 "$LOG" >> "$LOG"
dg_agent_start crash-node --interval 60
dg_wait_verdict pass
grep -q "dropping a torn entry" "$DG_WORK/agent-crash-node.log" || dg_fail "torn tail not reported"
[ "$(entries)" -eq "$before" ] || dg_fail "torn tail changed the entry count"
echo "# a torn entry is dropped on restart and attests"

# 3. SIGKILL at random points during bursts of measurements.
runs=${DG_CRASH_RUNS:-15}
for run in $(seq 1 "$runs"); do
	( for i in $(seq 1 40); do dg_agent_ctl measure "$DG_WORK/app/f$i" >/dev/null 2>&1 || exit 0; done ) &
	burst=$!
	sleep "0.$(( RANDOM % 40 + 5 ))"
	kill -9 "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null
	wait "$burst" 2>/dev/null
	dg_agent_start crash-node --interval 60
	dg_wait_verdict pass
done
# Nothing was measured that is not in the log, and the verifier agrees with all of it.
n=$(entries)
dg_agent_ctl attest >/dev/null || dg_fail "final attestation"
last=$(grep '"verdict"' "$DG_WORK/audit.jsonl" | tail -1)
case "$last" in *'"verdict":"pass"'*"\"entries\":$n,"*) ;; *) dg_fail "verifier disagrees with $n log entries: $last" ;; esac
grep -q '"verdict":"fail"' "$DG_WORK/audit.jsonl" && dg_fail "a crash caused a false alarm"
echo "# $runs SIGKILLs during bursts: log ($n entries) and PCR reconciled every time, no false alarm"
