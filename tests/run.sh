#!/usr/bin/env bash
# The whole test suite: every unit binary in $SIGIL_BUILD/tests/unit/, then
# every tests/integration/test_*.py against $SIGIL_BUILD/sigil.
# Each suite ends with "N passed, N failed"; a suite that crashes, times out
# or ends without that line counts as one failure. The last line of output is
# the total, "N passed, N failed"; the exit status is non-zero on any failure.
#
#   SIGIL_BUILD=build-san tests/run.sh            (default build-san)
#   tests/run.sh test_hvac test_tls               only these integration files
#   SIGIL_SKIP_UNIT=1 tests/run.sh                integration only
set -uo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD=${SIGIL_BUILD:-build-san}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac

# Time bounds: a suite gets at most its own timeout and what is left of the
# whole run's budget, so the run ends within ~10 minutes even if something
# hangs (a normal run takes 1-2 minutes on 2 cores).
UNIT_TIMEOUT=${SIGIL_UNIT_TIMEOUT:-180}
IT_TIMEOUT=${SIGIL_IT_TIMEOUT:-300}
BUDGET=${SIGIL_SUITE_BUDGET:-570}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export SIGIL_BIN=$BUILD/sigil
export PYTHONDONTWRITEBYTECODE=1

LOGDIR=$BUILD/test-logs
mkdir -p "$LOGDIR"

total_pass=0
total_fail=0
summaries=()

# run_suite NAME LOG CMD...: runs one suite with a timeout, prints its
# failures and summary, adds its counts to the totals.
run_suite() {
	local name=$1 log=$2
	shift 2
	local start=$SECONDS rc line p f limit=$TIMEOUT left=$((BUDGET - SECONDS))
	[ "$left" -lt "$limit" ] && limit=$left
	if [ "$limit" -le 0 ]; then
		echo "    not ok - $name: not run, the suite's time budget (${BUDGET}s) is spent"
		summaries+=("$(printf '%-28s 0 passed, 1 failed (not run)' "$name")")
		total_fail=$((total_fail + 1))
		return
	fi
	timeout --kill-after=10 "$limit" "$@" >"$log" 2>"$log.err"
	rc=$?
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
	if [ -n "$line" ]; then
		p=${line%% passed*}
		f=${line#*, }
		f=${f%% failed}
	else
		p=0 f=0
	fi
	grep -E '^not ok ' "$log" | sed 's/^/    /'
	if [ -z "$line" ] || { [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; }; then
		# Crash, sanitizer abort, timeout (124/137) or a missing summary line.
		f=$((f + 1))
		echo "    not ok - $name: exit status $rc$([ "$rc" -eq 124 ] && echo ' (timeout)')$([ -z "$line" ] && echo ', no summary line')"
	fi
	if [ "$f" -ne 0 ]; then
		echo "    --- last lines of $log.err ---"
		tail -n 40 "$log.err" | sed 's/^/    | /'
	fi
	printf '%-28s %s passed, %s failed  (%ds)\n' "$name" "$p" "$f" $((SECONDS - start))
	summaries+=("$(printf '%-28s %s passed, %s failed' "$name" "$p" "$f")")
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
}

only=("$@")

if [ "${SIGIL_SKIP_UNIT:-0}" != 1 ] && [ ${#only[@]} -eq 0 ]; then
	echo "== unit tests ($BUILD/tests/unit)"
	found=0
	for bin in "$BUILD"/tests/unit/test_*; do
		[ -f "$bin" ] && [ -x "$bin" ] || continue
		case $bin in *.o | *.d) continue ;; esac
		found=1
		name=unit/$(basename "$bin")
		TIMEOUT=$UNIT_TIMEOUT run_suite "$name" "$LOGDIR/$(basename "$bin").log" "$bin"
	done
	if [ $found -eq 0 ]; then
		echo "    not ok - no unit test binaries in $BUILD/tests/unit"
		total_fail=$((total_fail + 1))
	fi
fi

echo "== integration tests (server $SIGIL_BIN)"
if [ ! -x "$SIGIL_BIN" ]; then
	echo "    not ok - $SIGIL_BIN is not built"
	total_fail=$((total_fail + 1))
fi
for t in tests/integration/test_*.py; do
	name=$(basename "$t" .py)
	if [ ${#only[@]} -gt 0 ]; then
		match=0
		for o in "${only[@]}"; do [ "$o" = "$name" ] && match=1; done
		[ $match -eq 1 ] || continue
	fi
	TIMEOUT=$IT_TIMEOUT run_suite "integration/$name" "$LOGDIR/$name.log" /usr/bin/python3 "$t"
done

echo "== summary"
for s in "${summaries[@]}"; do echo "  $s"; done
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
