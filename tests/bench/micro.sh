#!/bin/bash
# make bench-micro: ferry's packet path without a network (tests/bench/bench_micro.c).
#
# First the wall clock: ns/packet per stage, which depends on the machine and
# its load.  Then the same stages under callgrind: instructions/packet from
# each stage function's inclusive instruction count, which depends only on
# the code and the compiler (bench_micro fixes the NAT table's hash seed), so
# two builds can be compared on any machine, busy or not.
set -u
MICRO=${1:-build/bench/bench_micro}
ITER=${BENCH_MICRO_ITERATIONS:-200000}
CG_ITER=${BENCH_MICRO_CG_ITERATIONS:-2000}
SESSIONS=${BENCH_MICRO_SESSIONS:-4096}

[ -x "$MICRO" ] || { echo "bench-micro: $MICRO missing (make $MICRO)" >&2; exit 1; }
"$MICRO" --iterations "$ITER" --sessions "$SESSIONS" || exit 1

if ! command -v valgrind >/dev/null || ! command -v callgrind_annotate >/dev/null; then
	echo "bench-micro: valgrind not installed (Debian package valgrind; make bench-deps): no instruction counts"
	exit 0
fi
out=$(mktemp /tmp/fbench-callgrind.XXXXXX)
trap 'rm -f "$out"' EXIT
valgrind --tool=callgrind --callgrind-out-file="$out" "$MICRO" --iterations "$CG_ITER" \
	--sessions "$SESSIONS" >/dev/null 2>&1 || { echo "bench-micro: callgrind run failed" >&2; exit 1; }
echo "callgrind: instructions/packet (inclusive, $CG_ITER batches of 64)"
callgrind_annotate --inclusive=yes "$out" 2>/dev/null | awk -v pkts=$((CG_ITER * 64)) '
	/:stage_[a-z]+ / {
		ir = $1; gsub(/,/, "", ir)
		name = $0; sub(/.*:stage_/, "", name); sub(/ .*/, "", name)
		per[name] = ir / pkts
	}
	END {
		n = split("parse lookup rewrite csum tx path hostile", order, " ")
		for (i = 1; i <= n; i++)
			if (order[i] in per)
				printf "  %-8s %8.1f instructions/%s\n", order[i], per[order[i]],
				       order[i] == "hostile" ? "lookup" : "packet"
	}'
