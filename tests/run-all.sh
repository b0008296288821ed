#!/bin/bash
# Runs every test of ferry: the CUnit unit tests, then each namespace
# integration suite.  Ends with one line, "total: N passed, N failed",
# adding up the tests of every suite.  Exits non-zero when any failed.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP" || exit 1
# Every namespace of this run is ferry-$FERRY_RUN_TAG-... (tests/lib.sh).
export FERRY_RUN_TAG=ck$$
passed=0
failed=0

tally() { # LOGFILE: adds up the last "X: N passed, N failed" line
	local line p f
	line=$(grep -E '^[a-z_-]+: [0-9]+ passed, [0-9]+ failed' "$1" | tail -n 1)
	if [ -z "$line" ]; then
		failed=$((failed + 1))
		echo "run-all: $1 printed no summary: counted as a failure"
		return
	fi
	p=$(sed -E 's/.*: ([0-9]+) passed.*/\1/' <<<"$line")
	f=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")
	passed=$((passed + p))
	failed=$((failed + f))
}

# A suite that exited non-zero without counting a failed test (it crashed,
# or timed out part way) is one failure more.
check_exit() { # NAME STATUS LOGFILE
	if [ "$2" != 0 ] && ! grep -qE ' [1-9][0-9]* failed' "$3"; then
		echo "run-all: $1 exited $2"
		failed=$((failed + 1))
	fi
}

suite() { # NAME CMD...: runs CMD, its output also in $logs/NAME.log, and counts it
	local name=$1 st
	shift
	"$@" 2>&1 | tee "$logs/$name.log"
	st=${PIPESTATUS[0]}
	tally "$logs/$name.log"
	check_exit "$name" "$st" "$logs/$name.log"
}

logs=$(mktemp -d /tmp/ferry-check.XXXXXX)
trap 'rm -rf "$logs"' EXIT

echo "== unit tests"
suite unit build/tests/unit-tests

# docs/layout.md names every file of the tree.
echo "== layout"
suite layout tests/check_layout.sh

# The manual pages render without a warning, and ferry.yaml(5) names every
# config key the parser accepts (build/tests/config_keys lists them).
echo "== docs"
suite docs tests/check_docs.sh

for t in tests/integration/test_*.sh; do
	name=$(basename "$t" .sh)
	echo "== $name"
	suite "$name" timeout 600 "$t"
done

# Fuzzing (make fuzz-build): each libFuzzer harness for FUZZ_SMOKE_SECONDS,
# one test per harness (and one for fuzz_chain's seeds reaching every service);
# tests/fuzz/run.sh prints "fuzz: N passed, N failed".
echo "== fuzz"
suite fuzz tests/fuzz/run.sh "${FUZZ_SMOKE_SECONDS:-20}"

# The ASan + UBSan build (make asan): the unit tests, then test_forward with
# the sanitized ferryd and ferryctl.  Any error or leak is fatal (UBSan is
# built without recovery); reports also go to files, since ferryd's own log
# is removed with the test's directory, and a suite with a report fails.
san_suite() { # NAME LOG CMD...: runs CMD with the sanitizers' reports in $logs/NAME.san
	local name=$1 log=$2 st reports
	shift 2
	mkdir -p "$logs/$name.san"
	ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:fast_unwind_on_malloc=0:log_path=$logs/$name.san/asan" \
		UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$logs/$name.san/ubsan" \
		"$@" 2>&1 | sed -u -E "s/^[a-z_-]+: ([0-9]+ passed, [0-9]+ failed)/$name: \1/" | tee "$log"
	st=${PIPESTATUS[0]}
	tally "$log"
	reports=$(find "$logs/$name.san" -type f -size +0 2>/dev/null)
	if [ -n "$reports" ] || grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$log"; then
		echo "FAIL: $name: sanitizer report:"
		[ -z "$reports" ] || cat $reports | sed 's/^/  | /' | head -n 200
		failed=$((failed + 1))
	else
		check_exit "$name" "$st" "$log"
	fi
}
echo "== asan-unit"
san_suite asan-unit "$logs/asan-unit.log" build/asan/tests/unit-tests
# The integration suites that drive the most daemon code under the sanitizers:
# forwarding, hostile input, floods of new sessions, replies of flows sharing
# an upstream, the service chains, reload and application services.
for t in forward malformed flood upstream services reload app; do
	echo "== asan-$t"
	san_suite "asan-$t" "$logs/asan-$t.log" env FERRYD="$TOP/build/asan/ferryd" \
		FERRYCTL="$TOP/build/asan/ferryctl" timeout 600 "tests/integration/test_$t.sh"
done

# A short soak (make soak runs the full one): steady forwarding, flat RSS,
# frame accounting at stop.
echo "== soak"
suite soak env SOAK_SECONDS="${CHECK_SOAK_SECONDS:-10}" timeout 120 tests/soak.sh

# Nothing of a run may outlive it (its namespaces carry its tag: tests/lib.sh).
left=$(ip netns list 2>/dev/null | awk -v p="ferry-$FERRY_RUN_TAG-" 'index($1, p) == 1 {print $1}')
if [ -n "$left" ]; then
	echo "FAIL: namespaces left behind: $left"
	failed=$((failed + 1))
else
	echo "PASS: no ferry namespace left behind"
	passed=$((passed + 1))
fi

echo "total: $passed passed, $failed failed"
[ "$failed" = 0 ]
