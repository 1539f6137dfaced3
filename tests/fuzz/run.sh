#!/usr/bin/env bash
# Build the libFuzzer targets (clang, ASan+UBSan) in BUILD_DIR and run each one
# for SECONDS on a temporary copy of its seed corpus (tests/fuzz/corpus/NAME),
# one after another. Prints one line per target:
#   fuzz NAME ok N execs (R/s)
#   fuzz NAME FAILED (REASON, see LOG)
# and exits non-zero if any target failed. Logs and crash inputs stay in
# BUILD_DIR/fuzz-logs; the repository is never written to.
set -u

# All in one function: bash reads it whole, so editing this file mid-run is safe.
main() {
	if [ $# -ne 2 ] || ! [[ $2 =~ ^[1-9][0-9]*$ ]]; then
		echo "usage: $0 BUILD_DIR SECONDS" >&2
		exit 2
	fi
	src=$(cd "$(dirname "$0")/../.." && pwd)
	build=$(mkdir -p "$1" && cd "$1" && pwd)
	seconds=$2
	logs="$build/fuzz-logs"
	mkdir -p "$logs"

	# Every tests/fuzz/fuzz_NAME.c is a target (each must be listed in
	# tests/fuzz/meson.build). max_len: text and logs get room for many lines or
	# entries (the policy seed above 4 KiB reaches the preallocated arena);
	# tpmkey just past DG_TPMKEY_MAX_PUBLIC; quote past 1 + 255 + DG_QUOTE_MAX_SIG.
	max_len_of() {
		case $1 in
		wire) echo 4096 ;;
		policy) echo 16384 ;;
		tpmkey) echo 1100 ;;
		quote) echo 1400 ;;
		*) echo 8192 ;;
		esac
	}
	targets=()
	for f in "$src"/tests/fuzz/fuzz_*.c; do
		f=${f##*/fuzz_}
		targets+=("${f%.c}")
	done

	export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
	# tpm2-tss logs every failed unmarshal: gigabytes of log, and slow.
	export TSS2_LOG=all+NONE
	export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}

	all_failed() { # reason, log
		for t in "${targets[@]}"; do echo "fuzz $t FAILED ($1, see $2)"; done
		exit 1
	}

	build_log="$logs/build.log"
	: >"$build_log"
	if ! [ -f "$build/build.ninja" ]; then
		wipe=; [ -d "$build/meson-private" ] && wipe=--wipe # a setup that failed half-way
		CC=clang meson setup $wipe "$build" "$src" -Dfuzz=true -Dtests=false \
			-Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debugoptimized \
			>"$build_log" 2>&1 || all_failed "meson setup failed" "$build_log"
	fi
	ninja -C "$build" $(for t in "${targets[@]}"; do echo "tests/fuzz/fuzz_$t"; done) \
		>>"$build_log" 2>&1 || all_failed "build failed" "$build_log"

	work=$(mktemp -d /tmp/dg-fuzz.XXXXXX)
	trap 'rm -rf "$work"' EXIT

	# reason LOG RC: the first sanitizer verdict in a failed run's log, else libFuzzer's
	reason() {
		local r
		r=$(grep -m1 -oE 'ERROR: (AddressSanitizer|LeakSanitizer): .*' "$1" ||
			grep -m1 -oE 'runtime error: .*' "$1" ||
			grep -m1 -oE 'ERROR: libFuzzer: .*' "$1")
		r=$(printf '%s' "$r" | sed -E 's/^ERROR: //; s/ on (unknown )?address.*//; s/[(),]//g' | cut -c1-80)
		echo "${r:-exit $2}"
	}

	failed=0
	for name in "${targets[@]}"; do
		max_len=$(max_len_of "$name")
		log="$logs/$name.log"
		corpus="$work/$name"
		mkdir -p "$corpus"
		[ -d "$src/tests/fuzz/corpus/$name" ] && cp -r "$src/tests/fuzz/corpus/$name/." "$corpus/"
		# In a subshell that outlives it, so a crash's "Aborted" goes to the log.
		("$build/tests/fuzz/fuzz_$name" -max_total_time="$seconds" -rss_limit_mb=2048 \
			-max_len="$max_len" -timeout=10 -print_final_stats=1 \
			-artifact_prefix="$logs/$name-" "$corpus"; exit $?) >"$log" 2>&1
		rc=$?
		execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
		if [ "$rc" -ne 0 ] || [ -z "$execs" ]; then
			echo "fuzz $name FAILED ($(reason "$log" "$rc"), see $log)"
			failed=$((failed + 1))
			continue
		fi
		rate=$(sed -nE 's/^#[0-9]+[[:space:]]+DONE .* exec\/s: ([0-9]+).*/\1/p' "$log" | tail -1)
		echo "fuzz $name ok $execs execs (${rate:-$((execs / seconds))}/s)"
	done
	[ "$failed" -eq 0 ]
}

main "$@"
