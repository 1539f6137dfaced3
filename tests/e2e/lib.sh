# Shared shell helpers for the end-to-end tests. Source it; it defines functions only.
# Every test gets its own temporary directory and its own swtpm on free ports,
# so tests can run side by side and leave nothing behind.

DG_BUILD_ROOT=${DG_BUILD_ROOT:-$(pwd)/build}
DG_SOURCE_ROOT=${DG_SOURCE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
DG_AGENT="$DG_BUILD_ROOT/agent/driftgate-agent"
DG_VERIFIER="$DG_BUILD_ROOT/verifier/driftgate-verifier"

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

# dg_free_port: print a TCP port with it and the next one free on loopback.
dg_free_port() {
	local p
	for _ in $(seq 1 200); do
		p=$(( (RANDOM % 20000) * 2 + 20000 ))
		if ! ss -Htln "sport = :$p or sport = :$((p + 1))" 2>/dev/null | grep -q .; then
			echo "$p"; return 0
		fi
	done
	return 1
}

# dg_swtpm_start NAME: start a swtpm with state in $DG_WORK/NAME; sets
# SWTPM_PORT and TCTI (a tpm2-tss TCTI string) and records the pid.
dg_swtpm_start() {
	local dir="$DG_WORK/$1"
	mkdir -p "$dir"
	SWTPM_PORT=$(dg_free_port) || dg_fail "no free port"
	swtpm socket --tpm2 --tpmstate dir="$dir" \
		--server type=tcp,port="$SWTPM_PORT",bindaddr=127.0.0.1 \
		--ctrl type=tcp,port=$((SWTPM_PORT + 1)),bindaddr=127.0.0.1 \
		--flags not-need-init,startup-clear >"$dir/swtpm.log" 2>&1 &
	DG_PIDS+=($!)
	TCTI="swtpm:host=127.0.0.1,port=$SWTPM_PORT"
	for _ in $(seq 1 100); do
		ss -Htln "sport = :$SWTPM_PORT" | grep -q . && return 0
		sleep 0.05
	done
	dg_fail "swtpm did not start (see $dir/swtpm.log)"
}
