#!/usr/bin/env bash
# Operators see the fleet (issue 5): with a verifier running, `driftgate-verifier
# status` reads its state database (table and --json) and /metrics serves the
# Prometheus counters; both follow an agent from pass to fail.
set -u
. "$(dirname "$0")/lib.sh"
dg_workdir
dg_swtpm_start tpm
mkdir -p "$DG_WORK/app" "$DG_WORK/policies" "$DG_WORK/secrets"
chmod 700 "$DG_WORK/secrets"
for i in $(seq 1 5); do echo "file $i" > "$DG_WORK/app/f$i"; done
echo "not approved" > "$DG_WORK/rogue"
"$DG_VERIFIER" baseline --name fleet --agent 'node-*' "$DG_WORK/app" \
	> "$DG_WORK/policies/fleet.baseline" || dg_fail "baseline"

# The metrics port: below dg_free_port's range (10000 and up), so no other
# listener of this test can take it, and checked free.
MPORT=
for p in $(seq 9301 2 9399); do
	if ! ss -Htan "sport = :$p" 2>/dev/null | grep -q .; then MPORT=$p; break; fi
done
[ -n "$MPORT" ] || dg_fail "no free metrics port"
METRICS="http://127.0.0.1:$MPORT/metrics"
dg_verifier_start --metrics-listen "http://127.0.0.1:$MPORT"
for _ in $(seq 1 100); do ss -Htln "sport = :$MPORT" | grep -q . && break; sleep 0.05; done
STATE="$DG_WORK/verifier.db"

# metric SAMPLE: the value of one sample line ('name{labels}'), 0 if absent.
metric() {
	curl -sf "$METRICS" | awk -v s="$1" '$1 == s { v = $2 } END { print v == "" ? 0 : v }'
}
# wait_metric SAMPLE MIN: until the sample is at least MIN (the agents gauge
# is refreshed once a second).
wait_metric() {
	local v
	for _ in $(seq 1 50); do
		v=$(metric "$1")
		awk -v v="$v" -v m="$2" 'BEGIN { exit !(v >= m) }' && return 0
		sleep 0.1
	done
	dg_fail "$1 is $v, expected at least $2"
}
# json_field EXPR: evaluate a python expression over `status --json` (as j).
json_field() {
	"$DG_VERIFIER" status --state "$STATE" --json \
		| python3 -c 'import json, sys; j = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"
}

# Before any agent: the exposition, its content type, every family.
curl -sf -D "$DG_WORK/headers" "$METRICS" > "$DG_WORK/metrics0" || dg_fail "GET /metrics"
grep -qi '^content-type: text/plain; version=0.0.4; charset=utf-8' "$DG_WORK/headers" \
	|| dg_fail "content type: $(cat "$DG_WORK/headers")"
for m in "dg_attestations_total counter" "dg_attestation_failures_total counter" \
	"dg_attestation_duration_seconds histogram" "dg_enrollments_total counter" "dg_agents gauge"; do
	grep -qx "# TYPE $m" "$DG_WORK/metrics0" || dg_fail "no '# TYPE $m'"
	grep -q "^# HELP ${m%% *} " "$DG_WORK/metrics0" || dg_fail "no HELP for ${m%% *}"
done
grep -qx 'dg_attestations_total{result="pass"} 0' "$DG_WORK/metrics0" || dg_fail "pass not 0 at start"
grep -qx 'dg_enrollments_total 0' "$DG_WORK/metrics0" || dg_fail "enrollments not 0 at start"
out=$("$DG_VERIFIER" status --state "$STATE") || dg_fail "status of an empty state"
[ "$out" = "$(printf 'AGENT  STATE  ENTRIES  RESETCOUNT  CONTAINERS  REASONS')" ] \
	|| dg_fail "empty status: $out"

# 1. An agent that passes.
dg_agent_start node-1 --measure "$DG_WORK/app" --interval 60
dg_wait_verdict pass
pass=$(metric 'dg_attestations_total{result="pass"}')
[ "$pass" -ge 1 ] || dg_fail "pass counter $pass after a passing round"
count=$(metric dg_attestation_duration_seconds_count)
rounds=$(( pass + $(metric 'dg_attestations_total{result="fail"}') + \
	$(metric 'dg_attestations_total{result="error"}') ))
[ "$count" -eq "$rounds" ] || dg_fail "histogram count $count, $rounds rounds answered"
[ "$(metric 'dg_attestation_duration_seconds_bucket{le="+Inf"}')" -eq "$count" ] \
	|| dg_fail "+Inf bucket differs from the count"
[ "$(metric dg_enrollments_total)" -eq 1 ] || dg_fail "enrollments: $(metric dg_enrollments_total)"
wait_metric 'dg_agents{state="pass"}' 1
dg_note "/metrics after a pass: $pass passing round(s), histogram count $count"

# status, on the live database: the table and the JSON say pass, 5 entries.
"$DG_VERIFIER" status --state "$STATE" > "$DG_WORK/status1" || dg_fail "status exit $?"
cat "$DG_WORK/status1"
head -1 "$DG_WORK/status1" | grep -q '^AGENT  *STATE  *ENTRIES  *RESETCOUNT  *CONTAINERS  *REASONS$' \
	|| dg_fail "status header"
row=$(awk '$1 == "node-1" { print $2, $3, $5, NF }' "$DG_WORK/status1")
[ "$row" = "pass 5 0 5" ] || dg_fail "status row for node-1: '$row' (want pass, 5 entries, 0 containers, no reasons)"
[ "$(json_field 'len(j["agents"])')" = 1 ] || dg_fail "status --json: not one agent"
[ "$(json_field '[j["agents"][0][k] for k in ("id", "state", "entries", "containers", "reasons")]')" \
	= "['node-1', 'pass', 5, 0, []]" ] || dg_fail "status --json: $(json_field 'j')"
[ "$(json_field 'type(j["agents"][0]["reset_count"]).__name__')" = int ] \
	|| dg_fail "status --json: reset_count is not a number after a proven round"

# 2. It measures a file that is not in the baseline: fail, sticky.
dg_agent_ctl measure "$DG_WORK/rogue" >/dev/null
dg_wait_verdict fail
wait_metric 'dg_attestation_failures_total{reason="unknown-file"}' 1
wait_metric 'dg_attestations_total{result="fail"}' 1
wait_metric 'dg_agents{state="fail"}' 1
[ "$(metric 'dg_agents{state="pass"}')" -eq 0 ] || dg_fail "the agent still counted as pass"
"$DG_VERIFIER" status --state "$STATE" > "$DG_WORK/status2" || dg_fail "status exit $?"
cat "$DG_WORK/status2"
row=$(awk '$1 == "node-1" { print $2, $3, $6 }' "$DG_WORK/status2")
[ "$row" = "fail 6 unknown-file:" ] || dg_fail "status row after drift: '$row'"
grep -q "unknown-file: $DG_WORK/rogue (sha256:" "$DG_WORK/status2" || dg_fail "status: no detail"
[ "$(json_field '[j["agents"][0][k] for k in ("state", "entries")]')" = "['fail', 6]" ] \
	|| dg_fail "status --json after drift: $(json_field 'j')"
[ "$(json_field '[(r["code"], r["detail"].split(" ")[0]) for r in j["agents"][0]["reasons"]]')" \
	= "[('unknown-file', '$DG_WORK/rogue')]" ] || dg_fail "status --json reasons: $(json_field 'j')"

# The drift is sticky: each further round fails again, and counts again.
before=$(metric 'dg_attestation_failures_total{reason="unknown-file"}')
dg_agent_ctl attest >/dev/null 2>&1
wait_metric 'dg_attestation_failures_total{reason="unknown-file"}' $((before + 1))
dg_note "unknown-file failures: $before, then $(metric 'dg_attestation_failures_total{reason="unknown-file"}')"

# Exit codes: 2 when the state cannot be read, 1 on a usage error; the
# read-only status created nothing.
"$DG_VERIFIER" status --state "$DG_WORK/no-such.db" >/dev/null 2>&1
[ $? -eq 1 ] || dg_fail "status on a missing file should exit 1"
[ ! -e "$DG_WORK/no-such.db" ] || dg_fail "status created the state file"
"$DG_VERIFIER" status --state "$STATE" --no-such-option >/dev/null 2>&1
[ $? -eq 2 ] || dg_fail "status with a bad option should exit 2"
"$DG_VERIFIER" status --state "$STATE" extra >/dev/null 2>&1
[ $? -eq 2 ] || dg_fail "status with an argument should exit 2"
kill -0 "$VERIFIER_PID" || dg_fail "the verifier died"
echo "PASS: status_metrics"
