# Shared shell helpers for the end-to-end tests. Source it; it defines functions only.
# Every test gets its own temporary directory and its own swtpm on free ports,
# so tests can run side by side and leave nothing behind.

DG_BUILD_ROOT=${DG_BUILD_ROOT:-$(pwd)/build}
DG_SOURCE_ROOT=${DG_SOURCE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
DG_AGENT="$DG_BUILD_ROOT/agent/driftgate-agent"
DG_VERIFIER="$DG_BUILD_ROOT/verifier/driftgate-verifier"
DG_SECRET_CLIENT="$DG_BUILD_ROOT/agent/driftgate-secret"

dg_fail() { echo "FAIL: $*" >&2; exit 1; }
dg_note() { echo "# $*"; }

# dg_workdir: make $DG_WORK and remove it (and stop our processes) on exit.
dg_workdir() {
	DG_WORK=$(mktemp -d /tmp/dg-e2e.XXXXXX)
	DG_PIDS=()
	trap dg_cleanup EXIT
}

dg_cleanup() {
	local p
	for p in "${DG_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${DG_PIDS[@]}"; do wait "$p" 2>/dev/null; done
	[ -n "${DG_KEEP:-}" ] || rm -rf "$DG_WORK"
}

# dg_free_port: print a TCP port with it and the next one unused on loopback.
# Below the kernel's ephemeral range (32768 and up), so that no outgoing
# connection can be holding it; any socket on it, listening or not, disqualifies.
dg_free_port() {
	local p
	for _ in $(seq 1 200); do
		p=$(( (RANDOM % 11000) * 2 + 10000 ))
		if ! ss -Htan "sport = :$p or sport = :$((p + 1))" 2>/dev/null | grep -q .; then
			echo "$p"; return 0
		fi
	done
	return 1
}

# dg_swtpm_start NAME: start a swtpm with state in $DG_WORK/NAME; sets
# SWTPM_PORT and TCTI (a tpm2-tss TCTI string) and records the pid.
dg_swtpm_start() {
	local dir="$DG_WORK/$1" pid attempt
	mkdir -p "$dir"
	for attempt in 1 2 3 4 5; do # a port can still be taken between check and bind
		SWTPM_PORT=$(dg_free_port) || dg_fail "no free port"
		swtpm socket --tpm2 --tpmstate dir="$dir" \
			--server type=tcp,port="$SWTPM_PORT",bindaddr=127.0.0.1 \
			--ctrl type=tcp,port=$((SWTPM_PORT + 1)),bindaddr=127.0.0.1 \
			--flags not-need-init,startup-clear >>"$dir/swtpm.log" 2>&1 &
		pid=$!
		TCTI="swtpm:host=127.0.0.1,port=$SWTPM_PORT"
		for _ in $(seq 1 100); do
			if ss -Htln "sport = :$SWTPM_PORT" | grep -q . && kill -0 "$pid" 2>/dev/null; then
				DG_PIDS+=("$pid")
				return 0
			fi
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
		kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
	done
	cat "$dir/swtpm.log" >&2
	dg_fail "swtpm did not start (see $dir/swtpm.log)"
}

# dg_verifier_start [verifier options...]: start a verifier on a free port with
# policies in $DG_WORK/policies, secrets in $DG_WORK/secrets and its state in
# $DG_WORK/verifier.db (never the system default; a --state in the options
# wins); sets VERIFIER_URL and VERIFIER_PID.
dg_verifier_start() {
	local port attempt
	for attempt in 1 2 3 4 5; do # a port can still be taken between check and bind
		port=$(dg_free_port) || dg_fail "no free port"
		VERIFIER_URL="tcp://127.0.0.1:$port"
		"$DG_VERIFIER" serve --listen "$VERIFIER_URL" --policies "$DG_WORK/policies" \
			--secrets "$DG_WORK/secrets" --audit-log "$DG_WORK/audit.jsonl" \
			--state "$DG_WORK/verifier.db" "$@" \
			>>"$DG_WORK/verifier.log" 2>&1 &
		VERIFIER_PID=$!
		for _ in $(seq 1 100); do
			if ss -Htln "sport = :$port" | grep -q . && kill -0 "$VERIFIER_PID" 2>/dev/null; then
				DG_PIDS+=("$VERIFIER_PID")
				return 0
			fi
			kill -0 "$VERIFIER_PID" 2>/dev/null || break
			sleep 0.05
		done
		kill "$VERIFIER_PID" 2>/dev/null; wait "$VERIFIER_PID" 2>/dev/null
	done
	cat "$DG_WORK/verifier.log" >&2
	dg_fail "verifier did not start"
}

# dg_agent_start ID [agent options...]: run an agent against $VERIFIER_URL and
# $TCTI with state in $DG_WORK/agent-ID; sets AGENT_CTL (its control URL).
dg_agent_start() {
	local id=$1; shift
	AGENT_CTL="ipc://$DG_WORK/agent-$id.sock"
	"$DG_AGENT" run --agent-id "$id" --tcti "$TCTI" --verifier "$VERIFIER_URL" \
		--control "$AGENT_CTL" --state-dir "$DG_WORK/agent-$id" \
		--workload-socket "$DG_WORK/wl/api.sock" "$@" \
		>>"$DG_WORK/agent-$id.log" 2>&1 &
	AGENT_PID=$!
	DG_PIDS+=("$AGENT_PID")
}

# dg_agent_ctl VERB [ARGS]: talk to the agent started last.
dg_agent_ctl() {
	"$DG_AGENT" "$1" --control "$AGENT_CTL" "${@:2}"
}

# dg_wait_verdict WORD: wait (up to 60 s) until the agent's last verdict is WORD.
dg_wait_verdict() {
	local out
	for _ in $(seq 1 600); do
		out=$(dg_agent_ctl status 2>/dev/null) && case "$out" in
			*"last verdict $1"*) return 0 ;;
		esac
		kill -0 "$AGENT_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "last status: $out" >&2
	tail -20 "$DG_WORK"/agent-*.log >&2
	tail -20 "$DG_WORK/verifier.log" >&2
	dg_fail "agent never reached verdict '$1'"
}
