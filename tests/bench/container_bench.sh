#!/usr/bin/env bash
# Container benchmarks with real processes: a real agent (fanotify exec watch),
# verifier and swtpm, and real runc containers on a tmpfs rootfs. Prints the
# lines of driftgate-bench:
#
#   <name>: ours <value> <unit>, peer <value> <unit>, ratio <r>
#
# ratio > 1 means ours is better. Needs root, runc, busybox-static, swtpm and a
# C compiler that can link statically (cc -static).
#
#   exec-latency-p50, -p99   fork + exec + wait of a small static binary inside
#                            a running container, cached (approved, measured
#                            once), timed in the container by the binary itself:
#                            ours = container registered by the agent's hook,
#                            rootfs filesystem watched (FAN_OPEN_EXEC_PERM);
#                            peer = the same rootfs bytes on an unwatched tmpfs,
#                            a container without hooks (no fanotify event at
#                            all: what the exec costs without the agent).
#                            Rounds rotate between the two and a floor (the
#                            peer container with a fanotify responder that
#                            allows at once: the kernel's own round trip);
#                            samples pooled per contender.
#   detect-latency-p50, -p99 from the moment an unapproved binary is exec'd in
#                            the container (CLOCK_REALTIME taken right before
#                            execve) until the agent holds the verifier's failing
#                            verdict naming that binary (its log line, seen by
#                            inotify; the secrets are wiped at that moment). A
#                            fresh binary every run. peer = the agent's heartbeat
#                            interval: what timer-only attestation would take at
#                            worst.
#
# Knobs (environment): DG_BENCH_EXEC_N (timed execs per round, 2000),
# DG_BENCH_EXEC_ROUNDS (rounds per contender, 5), DG_BENCH_DETECT_RUNS (20,
# at most 30: each run adds a sticky reason and a verdict holds 32).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../e2e/lib.sh"
. "$HERE/../e2e/lib_runc.sh"
[ "$(id -u)" -eq 0 ] || dg_fail "container_bench needs root (runc, fanotify)"

EXEC_N=${DG_BENCH_EXEC_N:-2000}
EXEC_WARM=200
EXEC_ROUNDS=${DG_BENCH_EXEC_ROUNDS:-5}
DETECT_RUNS=${DG_BENCH_DETECT_RUNS:-20}
INTERVAL=10 # the agent's default heartbeat (seconds); the detection peer
[ "$DETECT_RUNS" -ge 1 ] && [ "$DETECT_RUNS" -le 30 ] || dg_fail "DG_BENCH_DETECT_RUNS: 1..30"
T0=$(date +%s.%N)

dg_workdir
PROBE="$DG_WORK/container_probe"
${CC:-cc} -static -O2 -o "$PROBE" "$HERE/container_probe.c" \
	|| dg_fail "cannot build a static container_probe (needs libc6-dev's libc.a)"

# Two tmpfs: the agent watches the one holding a registered container's rootfs
# (a fanotify filesystem mark), never the other.
CTR="$DG_WORK/ctr"
PLAIN="$DG_WORK/plain"
dg_runc_tmpfs "$CTR" || dg_fail "tmpfs $CTR"
dg_runc_tmpfs "$PLAIN" || dg_fail "tmpfs $PLAIN"
mkdir -p "$DG_WORK/policies" "$DG_WORK/secrets"
chmod 700 "$DG_WORK/secrets"
( umask 077; printf 'tok-%s' "$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" \
	> "$DG_WORK/secrets/api-token" )

AGENT_ID=bench-1
CTL_URL="ipc://$DG_WORK/agent-$AGENT_ID.sock" # what dg_agent_start uses
export DG_WORKLOAD=bench DG_CONTAINER=main DG_IMAGE_REF=registry.example/bench:1 \
	DG_IMAGE_DIGEST=sha256:3333333333333333333333333333333333333333333333333333333333333333

# The approved bundle: busybox rootfs plus /probe, so the probe is in the manifest.
dg_runc_rootfs "$CTR/bench/rootfs" || dg_fail "rootfs"
cp "$PROBE" "$CTR/bench/rootfs/probe"
DG_RUNC_HOOK_CREATE_RUNTIME="$DG_AGENT hook --control $CTL_URL" \
DG_RUNC_HOOK_POSTSTOP="$DG_AGENT hook --control $CTL_URL" \
	dg_runc_bundle "$CTR/bench" /bin/sleep 600 || dg_fail "bundle"
"$DG_VERIFIER" workload --name bench --agent 'bench-*' --secret api-token \
	--container "main=$CTR/bench" --output "$DG_WORK/policies" >/dev/null \
	|| dg_fail "workload approval"
# Its unwatched twin: the same rootfs bytes, no hooks.
mkdir -p "$PLAIN/bench"
cp -a "$CTR/bench/rootfs" "$PLAIN/bench/rootfs"
dg_runc_bundle "$PLAIN/bench" /bin/sleep 600 || dg_fail "plain bundle"

dg_verifier_start
dg_swtpm_start tpm
dg_agent_start "$AGENT_ID" --interval "$INTERVAL"
[ "$AGENT_CTL" = "$CTL_URL" ] || dg_fail "control URL mismatch"
# The hook needs the agent's control socket: wait for its first verdict.
for _ in $(seq 1 300); do
	case "$(dg_agent_ctl status 2>/dev/null)" in *"last verdict pass"*|*"last verdict fail"*) break ;; esac
	sleep 0.1
done
dg_runc_run_bg watched "$CTR/bench" || dg_fail "runc run watched"
WATCHED_PID=$RUNC_PID
dg_runc_run_bg plain "$PLAIN/bench" || dg_fail "runc run plain"
PLAIN_PID=$RUNC_PID
dg_agent_ctl attest >/dev/null 2>&1
dg_wait_verdict pass
dg_agent_ctl secret api-token >/dev/null || dg_fail "the approved container got no secret"

# pct FILE P: the P-th percentile (nearest rank) of the numbers in FILE, in µs.
pct() {
	sort -n "$1" | awk -v p="$2" '{ v[NR] = $1 } END {
		r = int(NR * p / 100 + 0.999999); if (r < 1) r = 1; printf "%.1f", v[r] / 1000 }'
}
# line NAME OURS PEER UNIT: lower is better.
line() {
	awk -v n="$1" -v o="$2" -v p="$3" -v u="$4" \
		'BEGIN { printf "%s: ours %.5g %s, peer %.5g %s, ratio %.2f\n", n, o, u, p, u, p / o }'
}

# ---------------------------------------------------------------- exec latency
dg_note "container_bench: $(nproc) CPUs, $(uname -r), runc $(runc --version | sed -n 's/^runc version //p'), swtpm; ratio > 1 means ours is better"
dg_note "exec: /probe (static, $(stat -c %s "$PROBE") bytes) fork+execv+waitpid in the container, $EXEC_ROUNDS alternating rounds x $EXEC_N timed execs per contender ($EXEC_WARM warm-up each); ours = watched container (agent hook, fanotify FAN_OPEN_EXEC_PERM, cached identity); peer = the same rootfs on an unwatched tmpfs, no hooks; floor = the peer container with a do-nothing fanotify responder"
: > "$DG_WORK/ours.ns"
: > "$DG_WORK/peer.ns"
: > "$DG_WORK/floor.ns"
entries_before=$("$DG_AGENT" log --state-dir "$DG_WORK/agent-$AGENT_ID" | grep -c 'dg:exec:watched:/probe')
# exec_round WHO: one round of EXEC_N timed execs for ours, peer or floor
# (floor: the plain container with a do-nothing fanotify responder on its tmpfs).
exec_round() {
	local who=$1 ctr=plain fpid=""
	[ "$who" = ours ] && ctr=watched
	if [ "$who" = floor ]; then
		rm -f "$DG_WORK/ready"
		"$PROBE" allow "$PLAIN" "$DG_WORK/ready" &
		fpid=$!
		for _ in $(seq 1 500); do [ -e "$DG_WORK/ready" ] && break; sleep 0.01; done
		[ -e "$DG_WORK/ready" ] || dg_fail "fanotify responder not ready"
	fi
	dg_runc exec "$ctr" /probe loop "$EXEC_N" "$EXEC_WARM" /probe >> "$DG_WORK/$who.ns" \
		|| dg_fail "exec loop in $ctr ($who)"
	if [ -n "$fpid" ]; then kill "$fpid"; wait "$fpid" 2>/dev/null; fi
}
for r in $(seq 1 "$EXEC_ROUNDS"); do
	case $((r % 3)) in
	1) order="peer ours floor" ;; 2) order="ours floor peer" ;; 0) order="floor peer ours" ;;
	esac
	for who in $order; do exec_round "$who"; done
done
# The watched execs really went through the agent: /probe was measured (once:
# the cache answers the rest) and attributed to the container.
n_probe=$("$DG_AGENT" log --state-dir "$DG_WORK/agent-$AGENT_ID" | grep -c 'dg:exec:watched:/probe')
[ "$n_probe" -ge 1 ] || dg_fail "the agent never measured /probe in the watched container"
[ "$n_probe" -le $((entries_before + 1)) ] || dg_fail "/probe was measured $n_probe times: cache miss"
grep -q 'dg:exec:plain' <("$DG_AGENT" log --state-dir "$DG_WORK/agent-$AGENT_ID") \
	&& dg_fail "the unwatched container's execs were seen"
ours50=$(pct "$DG_WORK/ours.ns" 50); peer50=$(pct "$DG_WORK/peer.ns" 50)
ours99=$(pct "$DG_WORK/ours.ns" 99); peer99=$(pct "$DG_WORK/peer.ns" 99)
line exec-latency-p50 "$ours50" "$peer50" us
line exec-latency-p99 "$ours99" "$peer99" us
awk -v o5="$ours50" -v p5="$peer50" -v o9="$ours99" -v p9="$peer99" -v n="$(wc -l < "$DG_WORK/ours.ns")" \
	'BEGIN { printf "# exec-latency: added by the agent %+.1f us at p50, %+.1f us at p99 (%d samples each; goal: p50 under 20 us added)\n", o5 - p5, o9 - p9, n }'
floor50=$(pct "$DG_WORK/floor.ns" 50); floor99=$(pct "$DG_WORK/floor.ns" 99)
awk -v f5="$floor50" -v p5="$peer50" -v o5="$ours50" -v f9="$floor99" -v p9="$peer99" \
	'BEGIN { printf "# exec-latency floor: a do-nothing fanotify responder (allow at once, same mark) on the plain tmpfs: p50 %.1f us (%+.1f us), p99 %.1f us (%+.1f us); the agent above that floor: %+.1f us at p50\n", f5, f5 - p5, f9, f9 - p9, o5 - f5 }'

# ---------------------------------------------------------------- detection latency
dg_note "detect: $DETECT_RUNS runs, each a fresh unapproved binary (the probe plus a different trailing line) written into the running watched container's /tmp and exec'd by \`/probe stamp\`; end = the agent's log line naming it in the failing verdict (inotify); peer = heartbeat interval ${INTERVAL} s (timer-only detection, worst case)"
: > "$DG_WORK/detect.ns"
: > "$DG_WORK/detect-audit.ns"
for i in $(seq 1 "$DETECT_RUNS"); do
	name=$(printf 'unk-%03d' "$i")
	cp "$PROBE" "$CTR/bench/rootfs/tmp/$name"
	printf '\ndriftgate-bench unapproved %s\n' "$name" >> "$CTR/bench/rootfs/tmp/$name"
	rm -f "$DG_WORK/ready"
	"$PROBE" watch "$DG_WORK/agent-$AGENT_ID.log" "/tmp/$name (sha256:" 10000 "$DG_WORK/ready" \
		> "$DG_WORK/end" &
	wpid=$!
	for _ in $(seq 1 500); do [ -e "$DG_WORK/ready" ] && break; sleep 0.01; done
	[ -e "$DG_WORK/ready" ] || dg_fail "watcher not ready"
	dg_runc exec watched /probe stamp "/tmp/$name" > "$DG_WORK/start" \
		|| dg_fail "detect-only must let /tmp/$name run"
	wait "$wpid" || { tail -30 "$DG_WORK/agent-$AGENT_ID.log" >&2; dg_fail "no failing verdict named /tmp/$name within 10 s"; }
	start=$(cat "$DG_WORK/start"); end=$(cat "$DG_WORK/end")
	echo $(( (end - start) )) >> "$DG_WORK/detect.ns"
	# The verifier's side: its audit record (time in ms) for the same binary.
	python3 - "$DG_WORK/audit.jsonl" "/tmp/$name (sha256:" "$start" >> "$DG_WORK/detect-audit.ns" <<-'EOF'
	import datetime, json, sys
	path, marker, start = sys.argv[1], sys.argv[2], int(sys.argv[3])
	for l in open(path):
	    if marker in l:
	        r = json.loads(l)
	        assert r["verdict"] == "fail", r
	        t = datetime.datetime.strptime(r["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
	        t = t.replace(tzinfo=datetime.timezone.utc).timestamp()
	        print(int(round(t * 1000)) * 1000000 - start)
	        break
	else:
	    sys.exit("no audit record names " + marker)
	EOF
	[ $? -eq 0 ] || dg_fail "audit record for /tmp/$name"
	rm -f "$CTR/bench/rootfs/tmp/$name"
done
dg_agent_ctl secret api-token >/dev/null 2>&1 && dg_fail "a secret is still held after the drift"
d50=$(pct "$DG_WORK/detect.ns" 50); d99=$(pct "$DG_WORK/detect.ns" 99)
a50=$(pct "$DG_WORK/detect-audit.ns" 50); a99=$(pct "$DG_WORK/detect-audit.ns" 99)
ms() { awk -v v="$1" 'BEGIN { printf "%.2f", v / 1000 }'; }
line detect-latency-p50 "$(ms "$d50")" $((INTERVAL * 1000)) ms
line detect-latency-p99 "$(ms "$d99")" $((INTERVAL * 1000)) ms
dg_note "detect-latency: $DETECT_RUNS runs, percentiles by nearest rank (below 100 runs p99 is the slowest run); min $(ms "$(pct "$DG_WORK/detect.ns" 0)") ms, max $(ms "$(pct "$DG_WORK/detect.ns" 100)") ms; to the verifier's audit record (its 'time', ms resolution): p50 $(ms "$a50") ms, p99 $(ms "$a99") ms (goal: p99 under 50 ms)"

dg_runc kill watched KILL; dg_runc kill plain KILL
wait "$WATCHED_PID" "$PLAIN_PID" 2>/dev/null
dg_note "total $(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
