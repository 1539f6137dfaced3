#!/usr/bin/env bash
# Fleet benchmark: one real driftgate-verifier, many simulated agents
# (driftgate-loadgen: software EK/AK, real nng sockets, real quotes and logs).
# For each state backend and fleet size it starts a fresh verifier, enrolls the
# fleet, attests at a 2 s heartbeat equivalent (rate = N / 2) and, unless
# DG_FLEET_MAX=0, once more as fast as the loadgen can drive it; then prints a
# table and one comparison line per backend in driftgate-bench's format:
#
#   fleet-<backend>-max-rate: ours <attestations/s>, peer <RSA-2048 verifies/s>, ratio <r>
#
# Backends: disk = --state and --audit-log on disk in a temp dir (the
# default deployment: SQLite WAL synchronous=FULL plus the audit fdatasync,
# once per batch of rounds in flight);
# memory = --state :memory: (no state fsync, audit still on disk);
# nosync = --state :memory: --audit-log - (no fsync at all: the CPU bound).
#
# Usage: fleet_bench.sh [BUILD_DIR]   (default $DG_BUILD_ROOT, else ./build)
# Knobs (environment): DG_FLEET_AGENTS ("1000"; e.g. "1000 10000" for the big
# run), DG_FLEET_DURATION (10 s per run), DG_FLEET_BACKENDS ("disk memory"),
# DG_FLEET_HEARTBEAT (2 s), DG_FLEET_ENTRIES (1 new entry per round),
# DG_FLEET_THREADS (128: rounds in flight), DG_FLEET_MAX (1), DG_FLEET_KEYS
# (loadgen's default), DG_FLEET_DIR (/var/tmp: where the state lives).
# Exit status 1 if any round failed or erred: with the loadgen's baseline every
# round must pass.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
export DG_BUILD_ROOT=${1:-${DG_BUILD_ROOT:-$(pwd)/build}}
. "$HERE/../e2e/lib.sh"

LOADGEN="$DG_BUILD_ROOT/tests/driftgate-loadgen"
AGENTS=${DG_FLEET_AGENTS:-1000}
DURATION=${DG_FLEET_DURATION:-10}
BACKENDS=${DG_FLEET_BACKENDS:-disk memory}
HEARTBEAT=${DG_FLEET_HEARTBEAT:-2}
ENTRIES=${DG_FLEET_ENTRIES:-1}
THREADS=${DG_FLEET_THREADS:-128}
MAX=${DG_FLEET_MAX:-1}
[ -x "$LOADGEN" ] || dg_fail "$LOADGEN not built"
[ -x "$DG_VERIFIER" ] || dg_fail "$DG_VERIFIER not built"

# Not dg_workdir: the state must be on disk (/tmp may be tmpfs), in a
# directory of our own that no cleanup of /tmp/dg-e2e.* takes away mid-run.
DG_WORK=$(mktemp -d "${DG_FLEET_DIR:-/var/tmp}/driftgate-fleet.XXXXXX") || dg_fail "mktemp"
DG_PIDS=()
trap dg_cleanup EXIT
[ "$(stat -f -c %T "$DG_WORK")" != tmpfs ] \
	|| dg_note "warning: $DG_WORK is on tmpfs: the disk backend syncs nothing"
"$LOADGEN" --make-policies "$DG_WORK/policies" >/dev/null || dg_fail "make-policies"
mkdir -m 700 "$DG_WORK/secrets"

ROWS=()
BAD=0
# The loadgen shares the machine with the verifier: other load skews both.
dg_note "load average at start: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
# run BACKEND N RATE: a fresh verifier, one loadgen run, one table row.
run() {
	local backend=$1 n=$2 rate=$3 tag="$1-$2-$3" opts=() out
	rm -f "$DG_WORK"/verifier.db* "$DG_WORK/audit.jsonl"
	case $backend in
	disk) ;;
	memory) opts=(--state :memory:) ;;
	nosync) opts=(--state :memory: --audit-log -) ;;
	*) dg_fail "unknown backend $backend" ;;
	esac
	dg_verifier_start "${opts[@]}"
	out="$DG_WORK/loadgen-$tag.log"
	"$LOADGEN" --verifier "$VERIFIER_URL" --verifier-pid "$VERIFIER_PID" --agents "$n" \
		--rate "$rate" --duration "$DURATION" --entries "$ENTRIES" --threads "$THREADS" \
		${DG_FLEET_KEYS:+--keys "$DG_FLEET_KEYS"} >"$out" 2>&1
	local rc=$?
	kill "$VERIFIER_PID" 2>/dev/null
	wait "$VERIFIER_PID" 2>/dev/null
	DG_PIDS=() # gone: the exit trap must not signal a pid reused since
	grep -v '^loadgen-result' "$out" | sed "s/^/# [$tag] /"
	local res
	res=$(grep '^loadgen-result' "$out") || { BAD=1; dg_note "[$tag] no result (exit $rc)"; return; }
	[ "$rc" -eq 0 ] || { BAD=1; echo "*** [$tag] FAILED ROUNDS OR ERRORS (exit $rc) ***"; }
	ROWS+=("$backend $rate $res")
}

for n in $AGENTS; do
	for b in $BACKENDS; do
		run "$b" "$n" "$(awk -v n="$n" -v h="$HEARTBEAT" 'BEGIN { printf "%g", n / h }')"
		[ "$MAX" = 0 ] || run "$b" "$n" 0
	done
done

val() { # val KEY ROW: the value of KEY=... in a loadgen-result row
	local k
	for k in $2; do
		case $k in "$1="*) echo "${k#*=}"; return ;; esac
	done
}
echo
printf '%-7s %6s %8s %8s %9s %8s %8s %8s %9s %9s %8s %8s %s\n' backend agents enroll/s \
	target/s achieved/s p50_ms p99_ms max_ms att_p50 att_p99 cpu_ms kib/agt pass/fail/error
for row in "${ROWS[@]}"; do
	set -- $row
	target=$2; [ "$target" = 0 ] && target=max
	printf '%-7s %6s %8.0f %8s %9.0f %8.2f %8.2f %8.2f %9.2f %9.2f %8.3f %8.1f %s/%s/%s\n' \
		"$1" "$(val agents "$row")" "$(val enroll_per_s "$row")" "$target" \
		"$(val achieved "$row")" "$(val p50_ms "$row")" "$(val p99_ms "$row")" \
		"$(val max_ms "$row")" "$(val attest_p50_ms "$row")" "$(val attest_p99_ms "$row")" \
		"$(val verifier_cpu_ms_per_round "$row")" "$(val rss_kib_per_agent "$row")" \
		"$(val pass "$row")" "$(val fail "$row")" "$(val error "$row")"
done
echo "(latencies: NONCE_REQ->VERDICT, and att_ = ATTEST->VERDICT; cpu_ms: verifier CPU per"
echo " round; kib/agt: verifier VmRSS growth per enrolled agent; load average at the end:"
echo " $(cut -d' ' -f1-3 /proc/loadavg))"
echo
for row in "${ROWS[@]}"; do
	set -- $row
	[ "$2" = 0 ] || continue
	awk -v b="$1" -v n="$(val agents "$row")" -v a="$(val achieved "$row")" \
		-v v="$(val rsa_verify_per_s "$row")" 'BEGIN {
		printf "fleet-%s-%s-max-rate: ours %.0f attestations/s, peer %.0f verifies/s " \
		       "(bare OpenSSL RSA-2048, 1 thread), ratio %.3f\n", b, n, a, v, a / v }'
done
[ "$BAD" -eq 0 ] || dg_fail "some rounds failed or erred (see above)"
