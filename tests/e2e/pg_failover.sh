#!/usr/bin/env bash
# Several verifiers on one PostgreSQL state (issue 5, beyond one machine): a
# real PostgreSQL server, two verifiers on it, a real agent given both. It
# enrolls and passes via A; A is SIGKILLed during a burst of measurements; the
# agent fails over to B with no re-enrollment, B's replay continues from the
# position A stored, and no verdict is wrongly failed. The store-level checks
# (nonces single-use across verifiers, the per-agent lock, rows validated as
# SQLite's) run against the same server (test_store's "pg" case), and so does
# the protocol suite (test_attest) with its verifier on PostgreSQL.
# Skipped (77) only if the PostgreSQL server binaries are missing.
set -u
. "$(dirname "$0")/lib.sh"
PGBIN=${DG_PG_BIN:-/usr/lib/postgresql/15/bin}
for b in initdb postgres pg_ctl; do
	[ -x "$PGBIN/$b" ] || { echo "# SKIP: no $PGBIN/$b"; exit 77; }
done
dg_workdir

# PostgreSQL refuses to run as root: the cluster belongs to nobody then.
PGDATA="$DG_WORK/pg"
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u nobody -- "$@"; else "$@"; fi; }
chmod 755 "$DG_WORK"
mkdir -m 700 "$PGDATA"
[ "$(id -u)" -eq 0 ] && chown nobody "$PGDATA"
as_pg "$PGBIN/initdb" -D "$PGDATA" -U driftgate --auth=trust -E UTF8 >"$DG_WORK/initdb.log" 2>&1 ||
	{ cat "$DG_WORK/initdb.log" >&2; dg_fail "initdb"; }
pg_stop() { as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate stop >/dev/null 2>&1; }
trap 'pg_stop; dg_cleanup' EXIT
for attempt in 1 2 3 4 5; do # a port can still be taken between check and start
	PGPORT=$(dg_free_port) || dg_fail "no free port"
	as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -w -t 60 -l "$PGDATA/server.log" \
		-o "-p $PGPORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=" \
		start >/dev/null 2>&1 && break
	PGPORT=
done
[ -n "$PGPORT" ] || { cat "$PGDATA/server.log" >&2; dg_fail "postgres did not start"; }
"$PGBIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U driftgate fleet || dg_fail "createdb"
STATE="postgresql://driftgate@127.0.0.1:$PGPORT/fleet"
dg_note "PostgreSQL on port $PGPORT"

# The store-level checks, against this server.
DG_TEST_PG_URI="postgresql://driftgate@127.0.0.1:$PGPORT/postgres" CK_RUN_CASE=pg \
	DG_SOURCE_ROOT="$DG_SOURCE_ROOT" DG_BUILD_ROOT="$DG_BUILD_ROOT" \
	"$DG_BUILD_ROOT/tests/test_store" >"$DG_WORK/test_store.log" 2>&1 ||
	{ cat "$DG_WORK/test_store.log" >&2; dg_fail "test_store against PostgreSQL"; }
grep -q "100%" "$DG_WORK/test_store.log" || { cat "$DG_WORK/test_store.log" >&2; dg_fail "no pg checks ran"; }
dg_note "store checks on PostgreSQL: $(grep -o '[0-9]*%: Checks: [0-9]*' "$DG_WORK/test_store.log")"
# The whole protocol suite (enrollment, nonces, replay, reboots, drift, secrets)
# with the verifier on the PostgreSQL store.
DG_TEST_PG_URI="postgresql://driftgate@127.0.0.1:$PGPORT/postgres" \
	DG_SOURCE_ROOT="$DG_SOURCE_ROOT" DG_BUILD_ROOT="$DG_BUILD_ROOT" \
	"$DG_BUILD_ROOT/tests/test_attest" >"$DG_WORK/test_attest.log" 2>&1 ||
	{ tail -n 40 "$DG_WORK/test_attest.log" >&2; dg_fail "test_attest with the PostgreSQL store"; }
dg_note "protocol suite on PostgreSQL: $(grep -o '[0-9]*%: Checks: [0-9]*' "$DG_WORK/test_attest.log")"

dg_swtpm_start tpm-1
mkdir -p "$DG_WORK/app/a" "$DG_WORK/app/b" "$DG_WORK/policies" "$DG_WORK/secrets"
chmod 700 "$DG_WORK/secrets"
for i in $(seq 1 10); do echo "a $i" > "$DG_WORK/app/a/f$i"; done
for i in $(seq 1 5); do echo "b $i" > "$DG_WORK/app/b/f$i"; done
"$DG_VERIFIER" baseline --name fleet --agent 'node-*' --secret token "$DG_WORK/app" \
	> "$DG_WORK/policies/fleet.baseline" || dg_fail "baseline"
( umask 077; echo -n "tok-$$" > "$DG_WORK/secrets/token" )

dg_verifier_start --state "$STATE" --audit-log "$DG_WORK/audit-A.jsonl"
A_URL=$VERIFIER_URL A_PID=$VERIFIER_PID
dg_verifier_start --state "$STATE" --audit-log "$DG_WORK/audit-B.jsonl"
B_URL=$VERIFIER_URL
# Both on one database: the verifiers' lock of SQLite files is not in the way.
kill -0 "$A_PID" || dg_fail "verifier A stopped when B started"

# verdicts AUDIT [LINE]: "<pass|fail> <entries> <new_entries> <codes or ->" per
# verdict of node-1 in AUDIT after its line LINE (read as JSON).
verdicts() {
	python3 - "$1" "${2:-0}" <<'PY'
import json, sys
path, skip = sys.argv[1], int(sys.argv[2])
try:
    lines = open(path).readlines()
except FileNotFoundError:
    lines = []
for n, line in enumerate(lines):
    r = json.loads(line)
    if n >= skip and r["event"] == "verdict" and r["agent"] == "node-1":
        codes = ",".join(x["code"] for x in r["reasons"]) or "-"
        print(r["verdict"], r["entries"], r["new_entries"], codes)
PY
}
count() { # AUDIT EVENT: records of EVENT for node-1
	[ -e "$1" ] || { echo 0; return; }
	python3 -c 'import json,sys; print(sum(1 for l in open(sys.argv[1]) if (lambda r: r["agent"] == "node-1" and r["event"] == sys.argv[2])(json.loads(l))))' "$1" "$2"
}

# 1. Enroll and pass via A (the first address).
VERIFIER_URL=$A_URL
dg_agent_start node-1 --verifier "$B_URL" --measure "$DG_WORK/app/a" --interval 60 --timeout 3000
dg_wait_verdict pass
[ "$(verdicts "$DG_WORK/audit-A.jsonl" | sed -n 1p)" = "pass 10 10 -" ] ||
	dg_fail "first verdict at A: $(verdicts "$DG_WORK/audit-A.jsonl")"
[ "$(count "$DG_WORK/audit-A.jsonl" enrolled)" -eq 1 ] || dg_fail "not enrolled at A"
[ "$(verdicts "$DG_WORK/audit-B.jsonl" | wc -l)" -eq 0 ] || dg_fail "B served before A died"
[ "$(dg_agent_ctl secret token)" = "tok-$$" ] || dg_fail "secret not released via A"
dg_note "enrolled and passed via A: pass 10 10"

# 2. A burst of measurements; SIGKILL A in the middle of it.
(
	i=0
	while [ ! -e "$DG_WORK/stop-burst" ]; do
		i=$((i % 15 + 1))
		if [ "$i" -le 10 ]; then f="$DG_WORK/app/a/f$i"; else f="$DG_WORK/app/b/f$((i - 10))"; fi
		dg_agent_ctl measure "$f" >/dev/null 2>&1
	done
) &
burst=$!
sleep 1.5
kill -9 "$A_PID"; wait "$A_PID" 2>/dev/null
a_entries=$(verdicts "$DG_WORK/audit-A.jsonl" | tail -n 1 | cut -d' ' -f2)
sleep 6 # past the agent's 3 s timeout: the burst's rounds go to B
touch "$DG_WORK/stop-burst"
wait "$burst"
n=$("$DG_AGENT" log --state-dir "$DG_WORK/agent-node-1" --format ascii | wc -l)
[ "$n" -gt "$a_entries" ] || dg_fail "nothing measured after A died ($n entries, A saw $a_entries)"
dg_agent_ctl attest >/dev/null || dg_fail "final attestation (via B)"
last=$(verdicts "$DG_WORK/audit-B.jsonl" | tail -n 1)
case "$last" in "pass $n "*) ;; *) dg_fail "last verdict at B '$last', expected pass $n";; esac
dg_wait_verdict pass
[ "$(dg_agent_ctl secret token)" = "tok-$$" ] || dg_fail "secret not released via B"

# B continued A's replay: its first round replayed only what A had not seen.
first=$(verdicts "$DG_WORK/audit-B.jsonl" | sed -n 1p)
set -- $first
[ "$1" = pass ] || dg_fail "B's first verdict: $first"
[ $(($2 - $3)) -ge "$a_entries" ] ||
	dg_fail "B replayed from entry $(($2 - $3)), but A had stored $a_entries"
fails=$(( $(verdicts "$DG_WORK/audit-A.jsonl" | grep -c '^fail') + $(verdicts "$DG_WORK/audit-B.jsonl" | grep -c '^fail') ))
[ "$fails" -eq 0 ] || dg_fail "node-1 was failed $fails time(s)"
[ "$(count "$DG_WORK/audit-B.jsonl" enrolled)" -eq 0 ] || dg_fail "node-1 enrolled again at B"
grep -q "failing over to $B_URL" "$DG_WORK/agent-node-1.log" || dg_fail "no failover in the agent's log"
dg_note "A SIGKILLed at $a_entries entries: the agent failed over to B, no re-enrollment," \
	"B's first round replayed $3 new of $2, final pass at $n entries, no failed verdict"

# 3. Operators list the shared fleet as they list a SQLite state.
"$DG_VERIFIER" status --state "$STATE" > "$DG_WORK/status.txt" || dg_fail "status on PostgreSQL"
grep -q "node-1" "$DG_WORK/status.txt" || { cat "$DG_WORK/status.txt" >&2; dg_fail "status lists no node-1"; }
dg_note "status over the shared state: $(grep node-1 "$DG_WORK/status.txt")"
