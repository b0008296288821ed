#!/bin/bash
# Runs ferry's libFuzzer harnesses, each for SECONDS, one after the other.
#
#   tests/fuzz/run.sh SECONDS [HARNESS...]     (default: packet config chain app)
#
# Each harness starts from its committed seeds (tests/fuzz/corpus/NAME, only
# read) plus what earlier runs found (build/fuzz/corpus/NAME, grown), with
# tests/fuzz/NAME.dict as its dictionary when there is one.  A run
# passes when libFuzzer stops at the time limit without a crash, a leak, a
# sanitizer report, a timeout or an out-of-memory; a failing input is kept
# as build/fuzz/artifacts/NAME-crash-* (or leak-, timeout-, oom-).
# fuzz_chain then runs its committed seeds once more with FUZZ_CHAIN_COVERAGE=1
# and fails unless every built-in service ran on them (the seeds must keep
# reaching each service; the harness counts them).
# Prints "PASS:"/"FAIL:" per harness and ends with "fuzz: N passed, N failed".
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
cd "$TOP" || exit 1
FUZZ_DIR=${FUZZ_DIR:-build/fuzz}

secs=${1:-20}
shift
harnesses=("$@")
[ ${#harnesses[@]} -gt 0 ] || harnesses=(packet config chain app)

passed=0
failed=0
mkdir -p "$FUZZ_DIR/logs" "$FUZZ_DIR/artifacts"
# fuzz_chain's tap writes pcap files into a directory it makes here and
# removes at exit; one left by a crash goes with this one.
mkdir -p "$FUZZ_DIR/tmp"
TMPDIR=$(cd "$FUZZ_DIR/tmp" && pwd) || exit 1
export TMPDIR
find "$TMPDIR" -mindepth 1 -delete
trap 'rm -rf "$TMPDIR"' EXIT
for h in "${harnesses[@]}"; do
	bin=$FUZZ_DIR/fuzz_$h
	log=$FUZZ_DIR/logs/$h.log
	corpus=$FUZZ_DIR/corpus/$h
	mkdir -p "$corpus"
	dict=()
	[ -f "tests/fuzz/$h.dict" ] && dict=(-dict="tests/fuzz/$h.dict")
	# Room for the shipped configs/ferry.yaml; frames fit a UMEM frame anyway.
	max_len=4096
	[ "$h" = config ] && max_len=8192
	if [ ! -x "$bin" ]; then
		echo "FAIL: fuzz_$h: $bin is not built (make fuzz-build)"
		failed=$((failed + 1))
		continue
	fi
	# Leaks, UB and timeouts are failures too; stderr of the code under test
	# (config errors) goes to the log with libFuzzer's own output.
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1} \
		UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
		"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=$max_len \
		-print_final_stats=1 -artifact_prefix="$FUZZ_DIR/artifacts/$h-" "${dict[@]}" \
		"$corpus" "tests/fuzz/corpus/$h" >"$log" 2>&1
	st=$?
	runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -n 1)
	cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1)
	ok=false
	if [ "$st" = 0 ] && ! grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:' "$log"; then
		echo "PASS: fuzz_$h: ${runs:-?} runs in ${secs}s, ${cov:-no coverage line}"
		# A part a harness could not run here (fuzz_packet's BPF comparison without root).
		grep -m1 '^fuzz_[a-z]*: SKIPPED:' "$log" | sed 's/^/  /'
		passed=$((passed + 1))
		ok=true
	fi
	if [ "$h" = chain ] && $ok; then
		covlog=$FUZZ_DIR/logs/chain-coverage.log
		FUZZ_CHAIN_COVERAGE=1 "$bin" tests/fuzz/corpus/chain/* >"$covlog" 2>&1
		cst=$?
		if [ "$cst" = 0 ] && grep -q '^fuzz_chain: coverage: all [0-9]* built-in services ran' "$covlog"; then
			echo "PASS: fuzz_chain seeds reach every service: $(grep -c '^fuzz_chain: coverage: .* ran in' "$covlog") services"
			passed=$((passed + 1))
		else
			echo "FAIL: fuzz_chain seeds do not reach every service (exit $cst); $covlog:"
			grep '^fuzz_chain: coverage' "$covlog" | sed 's/^/  | /'
			[ "$cst" = 0 ] || tail -n 20 "$covlog" | sed 's/^/  | /'
			failed=$((failed + 1))
		fi
	fi
	if ! $ok; then
		echo "FAIL: fuzz_$h exited $st; the end of $log:"
		grep -vE '^[0-9:.]+ fuzz_[a-z]+\[error\]' "$log" | tail -n 40 | sed 's/^/  | /'
		ls "$FUZZ_DIR/artifacts/$h-"* 2>/dev/null | sed 's/^/  input: /'
		failed=$((failed + 1))
	fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" = 0 ]
