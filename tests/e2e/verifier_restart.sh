#!/usr/bin/env bash
# The verifier's state survives SIGKILL (issue 5, durable state): after a
# restart on the same --state an enrolled agent attests on without enrolling
# again and its replay continues from the stored position; drift stays sticky;
# and SIGKILLs at random moments while an agent measures and attests never
# fail the agent.
set -u
. "$(dirname "$0")/lib.sh"
dg_workdir
dg_swtpm_start tpm-1
TCTI1=$TCTI
mkdir -p "$DG_WORK/app/a" "$DG_WORK/app/b" "$DG_WORK/policies" "$DG_WORK/secrets"
chmod 700 "$DG_WORK/secrets"
for i in $(seq 1 10); do echo "a $i" > "$DG_WORK/app/a/f$i"; done
for i in $(seq 1 5); do echo "b $i" > "$DG_WORK/app/b/f$i"; done
echo "not approved" > "$DG_WORK/rogue"
"$DG_VERIFIER" baseline --name restart --agent 'node-*' --secret token "$DG_WORK/app" \
	> "$DG_WORK/policies/restart.baseline" || dg_fail "baseline"
( umask 077; echo -n "tok-$$" > "$DG_WORK/secrets/token" )
dg_verifier_start
AUDIT="$DG_WORK/audit.jsonl"

# verifier_kill_restart: SIGKILL the verifier and start it again on the same
# address and state file, as a supervisor would.
verifier_kill_restart() {
	local port=${VERIFIER_URL##*:} old=$VERIFIER_PID p keep=()
	kill -9 "$old" 2>/dev/null; wait "$old" 2>/dev/null
	for p in "${DG_PIDS[@]}"; do [ "$p" = "$old" ] || keep+=("$p"); done
	DG_PIDS=("${keep[@]}")
	"$DG_VERIFIER" serve --listen "$VERIFIER_URL" --policies "$DG_WORK/policies" \
		--secrets "$DG_WORK/secrets" --audit-log "$AUDIT" --state "$DG_WORK/verifier.db" \
		>>"$DG_WORK/verifier.log" 2>&1 &
	VERIFIER_PID=$!
	DG_PIDS+=("$VERIFIER_PID")
	for _ in $(seq 1 200); do
		ss -Htln "sport = :$port" | grep -q . && return 0
		kill -0 "$VERIFIER_PID" 2>/dev/null || break
		sleep 0.05
	done
	tail -20 "$DG_WORK/verifier.log" >&2
	dg_fail "the verifier did not restart on $VERIFIER_URL"
}

# verdicts AGENT [LINE]: one line "<pass|fail> <entries> <new_entries> <reason
# codes or ->" per verdict of AGENT in the audit trail after its line LINE (read
# as JSON, not by pattern).
verdicts() {
	python3 - "$AUDIT" "$1" "${2:-0}" <<'PY'
import json, sys
path, agent, skip = sys.argv[1], sys.argv[2], int(sys.argv[3])
for n, line in enumerate(open(path)):
    r = json.loads(line)
    if n >= skip and r["event"] == "verdict" and r["agent"] == agent:
        codes = ",".join(x["code"] for x in r["reasons"]) or "-"
        print(r["verdict"], r["entries"], r["new_entries"], codes)
PY
}

# count AGENT EVENT [VERDICT]: how many audit records of that event (and verdict).
count() {
	python3 - "$AUDIT" "$@" <<'PY'
import json, sys
path, agent, event = sys.argv[1:4]
verdict = sys.argv[4] if len(sys.argv) > 4 else None
n = 0
for line in open(path):
    r = json.loads(line)
    if r["agent"] == agent and r["event"] == event and (verdict is None or r.get("verdict") == verdict):
        n += 1
print(n)
PY
}

# expect_verdict AGENT first|last LINE WANT: wait (up to 60 s) for a verdict of
# AGENT after audit line LINE; the first (or the last) one must start with WANT.
expect_verdict() {
	local got="" deadline=$((SECONDS + 60))
	while [ "$SECONDS" -lt "$deadline" ]; do
		if [ "$2" = first ]; then got=$(verdicts "$1" "$3" | head -n 1)
		else got=$(verdicts "$1" "$3" | tail -n 1); fi
		case "$got" in "$4"*) return 0 ;; esac
		[ "$2" = first ] && [ -n "$got" ] && break
		sleep 0.2
	done
	tail -n 20 "$DG_WORK/verifier.log" "$DG_WORK/agent-$1.log" >&2
	dg_fail "$1: $2 verdict after line $3 is '$got', expected '$4...'"
}

audit_lines() { wc -l < "$AUDIT"; }

# 1. Enroll and attest 10 measurements; SIGKILL; the next round needs no enrollment
#    and replays only the 5 new measurements.
dg_agent_start node-1 --measure "$DG_WORK/app/a" --interval 60 --timeout 5000
A1_PID=$AGENT_PID A1_CTL=$AGENT_CTL
dg_wait_verdict pass
expect_verdict node-1 first 0 "pass 10 10 -"
mark=$(audit_lines)
verifier_kill_restart
dg_agent_ctl measure "$DG_WORK/app/b" >/dev/null || dg_fail "measure after the restart"
expect_verdict node-1 first "$mark" "pass 15 5 -"
[ "$(count node-1 enrolled)" -eq 1 ] || dg_fail "node-1 enrolled again after the restart"
dg_wait_verdict pass
[ "$(dg_agent_ctl secret token)" = "tok-$$" ] || dg_fail "secret not released after the restart"
dg_note "after SIGKILL and restart: no re-enrollment, the next round replayed 5 new entries of 15"

# 2. Drift is sticky across a restart: the round after it carries no new entry
#    and still fails with the stored reason.
dg_swtpm_start tpm-2
dg_agent_start node-2 --measure "$DG_WORK/rogue" --interval 60 --timeout 5000
expect_verdict node-2 first 0 "fail 1 1 unknown-file"
mark=$(audit_lines)
verifier_kill_restart
dg_agent_ctl attest >/dev/null 2>&1
expect_verdict node-2 first "$mark" "fail 1 0 unknown-file"
[ "$(count node-2 verdict pass)" -eq 0 ] || dg_fail "node-2 passed a round after its drift"
if dg_agent_ctl secret token >/dev/null 2>&1; then dg_fail "node-2: secret released after drift"; fi
[ "$(count node-2 enrolled)" -eq 1 ] || dg_fail "node-2 enrolled again after the restart"
kill "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null
dg_note "drift stays sticky across a restart: unknown-file on a round with 0 new entries"

# 3. SIGKILL the verifier at random moments while node-1 measures and attests.
AGENT_PID=$A1_PID AGENT_CTL=$A1_CTL TCTI=$TCTI1
runs=${DG_VERIFIER_CRASH_RUNS:-20} # 10 catch a wrong failure about half the time, 20 nearly always
(
	i=0
	while [ ! -e "$DG_WORK/stop-burst" ]; do
		i=$((i % 15 + 1))
		if [ "$i" -le 10 ]; then f="$DG_WORK/app/a/f$i"; else f="$DG_WORK/app/b/f$((i - 10))"; fi
		dg_agent_ctl measure "$f" >/dev/null 2>&1
	done
) &
burst=$!
for run in $(seq 1 "$runs"); do
	sleep "0.$(( RANDOM % 60 + 10 ))"
	verifier_kill_restart
done
touch "$DG_WORK/stop-burst"
wait "$burst"
n=$("$DG_AGENT" log --state-dir "$DG_WORK/agent-node-1" --format ascii | wc -l)
[ "$n" -gt 15 ] || dg_fail "the burst measured nothing ($n entries)"
dg_agent_ctl attest >/dev/null || dg_fail "final attestation"
expect_verdict node-1 last 0 "pass $n "
dg_wait_verdict pass
[ "$(dg_agent_ctl secret token)" = "tok-$$" ] || dg_fail "secret not released at the end"
fails=$(count node-1 verdict fail)
[ "$fails" -eq 0 ] || { grep '"fail"' "$AUDIT" | grep '"node-1"' >&2; dg_fail "node-1 was failed $fails time(s)"; }
[ "$(count node-1 enrolled)" -eq 1 ] || dg_fail "node-1 enrolled again during the SIGKILLs"
[ "$(count node-1 verdict-withheld)" -eq 0 ] || dg_fail "a state write failed"
passes=$(count node-1 verdict pass)
straddled=$(count node-1 attest-refused)
dg_note "$runs SIGKILLs of the verifier during measurements: $n entries, $passes passing rounds," \
	"$straddled round(s) across a restart refused and retried, no failed verdict, no re-enrollment"
