#!/bin/bash
# Runs every test of ferry: the CUnit unit tests, then each namespace
# integration suite.  Ends with one line, "total: N passed, N failed",
# adding up the tests of every suite.  Exits non-zero when any failed.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP" || exit 1
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

logs=$(mktemp -d /tmp/ferry-check.XXXXXX)
trap 'rm -rf "$logs"' EXIT

echo "== unit tests"
build/tests/unit-tests 2>&1 | tee "$logs/unit.log"
st=${PIPESTATUS[0]}
tally "$logs/unit.log"
[ "$st" = 0 ] || grep -q ' [1-9][0-9]* failed' "$logs/unit.log" || failed=$((failed + 1))

for t in tests/integration/test_*.sh; do
	name=$(basename "$t" .sh)
	echo "== $name"
	timeout 600 "$t" 2>&1 | tee "$logs/$name.log"
	st=${PIPESTATUS[0]}
	tally "$logs/$name.log"
	if [ "$st" != 0 ] && ! grep -qE ' [1-9][0-9]* failed' "$logs/$name.log"; then
		echo "run-all: $name exited $st"
		failed=$((failed + 1))
	fi
done

# Nothing of a run may outlive it.
left=$(ip netns list 2>/dev/null | awk '/^ferry-/ {print $1}')
if [ -n "$left" ]; then
	echo "FAIL: namespaces left behind: $left"
	failed=$((failed + 1))
else
	echo "PASS: no ferry namespace left behind"
	passed=$((passed + 1))
fi

echo "total: $passed passed, $failed failed"
[ "$failed" = 0 ]
