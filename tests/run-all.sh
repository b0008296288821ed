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

logs=$(mktemp -d /tmp/ferry-check.XXXXXX)
trap 'rm -rf "$logs"' EXIT

# Suites run as jobs, CHECK_JOBS at a time (default 2): most of a namespace
# suite's time is spent waiting on its clients and timers, and every suite has
# namespaces of its own (tests/lib.sh), so two at once share nothing but the
# CPUs.  A job's output is printed whole when it ends, with its duration.
# The suites that measure CPU placement, scheduling or a queue's saturation
# run alone (run_alone).
CHECK_JOBS=${CHECK_JOBS:-2}
declare -A job_name=() job_kind=() job_start=()

# finish NAME KIND STATUS: prints a job's output and counts it.
finish() {
	local name=$1 kind=$2 st=$3 log=$logs/$1.log reports
	echo "== $name ($(($(date +%s) - ${job_start[$name]}))s)"
	cat "$log"
	tally "$log"
	if [ "$kind" = san ]; then
		reports=$(find "$logs/$name.san" -type f -size +0 2>/dev/null)
		if [ -n "$reports" ] || grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$log"; then
			echo "FAIL: $name: sanitizer report:"
			[ -z "$reports" ] || cat $reports | sed 's/^/  | /' | head -n 200
			failed=$((failed + 1))
			return
		fi
	fi
	check_exit "$name" "$st" "$log"
}

# reap: waits for one job to end and reports it.
reap() {
	local pid st
	wait -n -p pid
	st=$?
	[ -n "${pid:-}" ] || return 1
	finish "${job_name[$pid]}" "${job_kind[$pid]}" "$st"
	unset "job_name[$pid]" "job_kind[$pid]"
}

reap_all() { while [ "${#job_name[@]}" -gt 0 ]; do reap || break; done; }

# start KIND NAME CMD...: runs CMD as a job once a slot is free.  KIND san
# runs it under ASan + UBSan: any error or leak is fatal (UBSan is built
# without recovery); reports also go to files, since ferryd's own log is
# removed with the test's directory, and a suite with a report fails.
start() {
	local kind=$1 name=$2
	shift 2
	while [ "${#job_name[@]}" -ge "$CHECK_JOBS" ]; do reap || break; done
	job_start[$name]=$(date +%s)
	if [ "$kind" = san ]; then
		mkdir -p "$logs/$name.san"
		ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:fast_unwind_on_malloc=0:log_path=$logs/$name.san/asan" \
			UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$logs/$name.san/ubsan" \
			bash -c '"$@" 2>&1 | sed -u -E "s/^[a-z_-]+: ([0-9]+ passed, [0-9]+ failed)/$0: \1/"
				exit "${PIPESTATUS[0]}"' "$name" "$@" >"$logs/$name.log" &
	else
		"$@" >"$logs/$name.log" 2>&1 &
	fi
	job_name[$!]=$name
	job_kind[$!]=$kind
}

# run_alone NAME CMD...: waits for every job, then runs CMD with the machine
# to itself.
run_alone() {
	reap_all
	start plain "$@"
	reap_all
}

start plain unit build/tests/unit-tests
# docs/layout.md names every file of the tree.
start plain layout tests/check_layout.sh
# The manual pages render without a warning, and ferry.yaml(5) names every
# config key the parser accepts (build/tests/config_keys lists them).
start plain docs tests/check_docs.sh

# CPU placement, real-time scheduling, saturated queues and RSS: alone.
alone=" test_multiqueue test_rt_napi test_overload test_hold_budget test_offload_ratelimit "
for t in tests/integration/test_*.sh; do
	name=$(basename "$t" .sh)
	case "$alone" in *" $name "*) continue ;; esac
	start plain "$name" timeout 600 "$t"
done
# The fleet suite takes one XDP mode a run: generic mode as well.
start plain test_fleet_skb env FLEET_XDP_MODE=skb timeout 600 tests/integration/test_fleet.sh

# Fuzzing (make fuzz-build): each libFuzzer harness for FUZZ_SMOKE_SECONDS,
# one test per harness (and one for fuzz_chain's seeds reaching every service);
# tests/fuzz/run.sh prints "fuzz: N passed, N failed".
start plain fuzz tests/fuzz/run.sh "${FUZZ_SMOKE_SECONDS:-20}"

# The ASan + UBSan build (make asan): the unit tests, then the integration
# suites that drive the most daemon code under the sanitizers: forwarding,
# hostile input, floods of new sessions, replies of flows sharing an
# upstream, the service chains, reload and application services.
start san asan-unit build/asan/tests/unit-tests
for t in forward malformed flood upstream services reload app; do
	start san "asan-$t" env FERRYD="$TOP/build/asan/ferryd" \
		FERRYCTL="$TOP/build/asan/ferryctl" timeout 600 "tests/integration/test_$t.sh"
done

for name in $alone; do
	run_alone "$name" timeout 600 "tests/integration/$name.sh"
done

# A short soak (make soak runs the full one): steady forwarding, flat RSS,
# frame accounting at stop.
run_alone soak env SOAK_SECONDS="${CHECK_SOAK_SECONDS:-10}" timeout 120 tests/soak.sh

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
