#!/usr/bin/env bash
# The full test suite: a normal build and an ASan+UBSan build, each running the
# Check suites and the end-to-end tests (real swtpm, agent, verifier, nng),
# then every libFuzzer target for a bounded time. Ends with "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
# runc and fanotify need root: come back through sudo when run as a user.
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then
	exec sudo --preserve-env=DG_FUZZ_SECONDS,DG_CRASH_RUNS_RELEASE,DG_CRASH_RUNS_ASAN bash "$0" "$@"
fi
root=$(pwd)
fuzz_seconds=${DG_FUZZ_SECONDS:-30}
passed=0
failed=0

count_meson() { # build dir: add its meson test results to the totals
	local counts
	counts=$(python3 "$root/tests/count_results.py" "$1/meson-logs/testlog.json") || counts="0 1"
	passed=$((passed + ${counts% *}))
	failed=$((failed + ${counts#* }))
}

run_build() { # name, meson options... (the environment passes through to the tests)
	local dir="$root/build-$1"; shift
	echo "### build $(basename "$dir") $*"
	if ! { [ -d "$dir" ] || meson setup "$dir" "$@" >/dev/null; } || ! ninja -C "$dir" >/dev/null; then
		echo "### build failed: $dir"
		meson setup --reconfigure "$dir" "$@" >/dev/null 2>&1; ninja -C "$dir" 2>&1 | tail -30
		failed=$((failed + 1))
		return
	fi
	meson test -C "$dir" --print-errorlogs --num-processes 2 || true
	count_meson "$dir"
}

export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1

# Hundreds of agent SIGKILLs in the fast build; fewer under the sanitizers.
DG_CRASH_RUNS=${DG_CRASH_RUNS_RELEASE:-150} run_build release -Dbuildtype=debugoptimized
DG_CRASH_RUNS=${DG_CRASH_RUNS_ASAN:-20} run_build asan -Dbuildtype=debug -Db_sanitize=address,undefined -Db_lundef=false

echo "### cppcheck (warning, performance, portability) over common/ agent/ verifier/"
if cppcheck --quiet --enable=warning,performance,portability --inline-suppr --std=c11 \
	-I include -I agent -I verifier --suppress=missingIncludeSystem --error-exitcode=1 \
	common agent verifier; then
	echo "cppcheck ok"; passed=$((passed + 1))
else
	echo "cppcheck FAILED"; failed=$((failed + 1))
fi

# The checks and their exclusions are in .clang-tidy; the release build's
# compile_commands.json gives each file its real flags. Two files at a time.
echo "### clang-tidy (.clang-tidy) over common/ agent/ verifier/"
tidy_rc=1
if [ -f "$root/build-release/compile_commands.json" ]; then
	printf '%s\0' common/*.c agent/*.c verifier/*.c |
		xargs -0 -n1 -P2 clang-tidy -p "$root/build-release" --quiet 2>&1 |
		grep -v '^[0-9]* warnings\? generated\.$'
	tidy_rc=${PIPESTATUS[1]}
fi
if [ "$tidy_rc" -eq 0 ]; then
	echo "clang-tidy ok"; passed=$((passed + 1))
else
	echo "clang-tidy FAILED"; failed=$((failed + 1))
fi

if [ -f tests/fuzz/run.sh ]; then
	echo "### fuzzing, ${fuzz_seconds}s per target"
	if out=$(bash tests/fuzz/run.sh "$root/build-fuzz" "$fuzz_seconds"); then
		echo "$out"
		passed=$((passed + $(echo "$out" | grep -c '^fuzz .* ok')))
		failed=$((failed + $(echo "$out" | grep -c '^fuzz .* FAILED')))
	else
		echo "$out"
		failed=$((failed + 1))
	fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
