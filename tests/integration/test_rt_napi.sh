#!/bin/bash
# Real-time workers and the threaded NAPI that feeds them (issue 10, item
# 12).  The proxy's veths have threaded NAPI, their kthreads pinned to the
# worker's CPU, as on a tuned forwarding host; ferryd runs its worker at
# SCHED_FIFO (worker_priority) with coalesce_usecs, and a normal-priority
# CPU hog shares that CPU, as any busy neighbour would.  Before the fix the
# NAPI threads stayed at normal priority: they ran only while the worker
# slept and shared that time with the hog, and frames that arrived meanwhile
# were dropped at the veth's ring, counted by the kernel only.  Now ferryd
# runs them at SCHED_FIFO just below the workers' priority while it runs,
# and puts them back at stop.  A moderate paced load (10000 datagrams/s each way for 3 s) must
# then arrive within 1% (the echoes too), and ferryctl shows the kernel's
# counters of each interface.
. "$(dirname "$0")/../lib.sh"
trap ns_cleanup EXIT

PRIO=10
CPU=1
COUNT=30000
RATE=10000

napi_pids() { # DEV: its NAPI kthreads ("napi/DEV-ID")
	ps -e -o pid=,comm= | awk -v p="napi/$1-" 'index($2, p) == 1 { print $1 }'
}
# policy_of DEV: "FIFO 10" or "OTHER 0" for each NAPI thread, one line each.
policy_of() {
	local p
	for p in $(napi_pids "$1"); do
		chrt -p "$p" | awk -F': ' '/policy/ { sub(/SCHED_/, "", $2); pol = $2 }
			/priority/ { print pol, $2 }'
	done
}
all_are() { # DEV WANT: every NAPI thread of DEV has WANT, and there is one
	local out
	out=$(policy_of "$1")
	[ -n "$out" ] && ! grep -qv "^$2\$" <<<"$out"
}

require_root "test_rt_napi" || { echo "rt_napi: 0 passed, 1 failed"; exit 1; }
if [ "$(nproc)" -lt 2 ]; then
	# The worker needs a CPU of its own to pin to.
	echo "FAIL: needs 2 CPUs"
	echo "rt_napi: 0 passed, 1 failed"
	exit 1
fi
topo_up || { echo "FAIL: topology"; echo "rt_napi: 0 passed, 1 failed"; exit 1; }
for dev in px-c px-s; do
	# A veth has a NAPI only with GRO (or XDP); threaded, it is a kthread.
	in_px ethtool -K "$dev" gro on >/dev/null
	in_px sh -c "echo 1 > /sys/class/net/$dev/threaded"
done

cat >"$WORKDIR/ferry.yaml" <<-YAML
interfaces:
  - name: px-c
  - name: px-s
cpus: [$CPU]
worker_priority: $PRIO
coalesce_usecs: 50
flows:
  - name: paced
    match: {protocol: udp, destination: 198.18.1.1/32, port: 5000}
    services:
      - forward: {upstream: "198.18.2.2:6000"}
YAML
start_ferryd "$WORKDIR/ferry.yaml" "$WORKDIR/ferryd.log" || {
	check "ferryd starts" false
	summary rt_napi
	exit 1
}
check "ferryd starts" true
# The XDP attach may have re-created the NAPI threads: pin them now, as a
# host's tuning would (taskset leaves their scheduling alone).
for dev in px-c px-s; do
	for p in $(napi_pids "$dev"); do taskset -p -c $CPU "$p" >/dev/null; done
done
log "NAPI threads: px-c: $(policy_of px-c | paste -sd,) px-s: $(policy_of px-s | paste -sd,)"
# Just below the worker: it takes the CPU from them whenever its socket has
# frames, and no normal task comes between them.
check "ferryd says it raised the NAPI threads" \
	grep -q "px-c: [0-9]* NAPI threads\? at SCHED_FIFO $((PRIO - 1)) (worker_priority - 1, at least 1)" \
	"$WORKDIR/ferryd.log"
check "px-c's NAPI threads run at SCHED_FIFO $((PRIO - 1))" all_are px-c "FIFO $((PRIO - 1))"
check "px-s's NAPI threads run at SCHED_FIFO $((PRIO - 1))" all_are px-s "FIFO $((PRIO - 1))"

# A busy neighbour at normal priority on the worker's CPU, bounded in time.
timeout 8 taskset -c $CPU sh -c 'while :; do :; done' &
track_pid $!
ip netns exec "$NS_SRV" "$UDPPROBE" server --listen 198.18.2.2:6000 --expect-src 198.18.2.1/32 \
	--count $COUNT --any-count --timeout 15 >"$WORKDIR/server.out" 2>&1 &
srv=$!
track_pid $srv
wait_for grep -q "listening on" "$WORKDIR/server.out"
ip netns exec "$NS_CLI" "$UDPPROBE" client --to 198.18.1.1:5000 --count $COUNT --rate $RATE \
	--min-size 32 --max-size 200 --timeout 10 --window 4096 --min-fraction 0.99 \
	>"$WORKDIR/client.out" 2>&1
cst=$?
# The server waits for the rest: tell it the stream is over.
sleep 0.5
kill -TERM $srv 2>/dev/null
wait $srv
cat "$WORKDIR/client.out" "$WORKDIR/server.out" >&2
got=$(sed -nE 's/.*received ([0-9]+) valid.*/\1/p' "$WORKDIR/server.out" | tail -n 1)
# Where a loss would be counted: the client's veth counts frames px-c's ring
# refused as its own tx_dropped (outside ferry's namespace, so only here).
log "offered $COUNT, delivered ${got:-?}; cli0 tx_dropped: $(ip -n "$NS_CLI" -s -j link show cli0 | jq '.[0].stats64.tx.dropped')"
check "delivered within 1% of offered (>= $((COUNT * 99 / 100)) of $COUNT)" \
	[ "${got:-0}" -ge $((COUNT * 99 / 100)) ]
check "echoes within 1% and none corrupt" [ $cst = 0 ]

sleep 1.2 # a publish
"$FERRYCTL" -p "/proc/$FERRYD_PID/root/sys/fs/bpf/ferry" stats --json >"$WORKDIR/stats.json"
kd=$(jq -r '[.interfaces[] | select(.name == "px-c" or .name == "px-s") | .kernel |
	"\(.rx_dropped)/\(.tx_dropped)"] | join(" ")' "$WORKDIR/stats.json")
log "kernel drops rx/tx: px-c px-s: $kd"
check "ferryctl shows each interface's kernel counters" \
	[ "$(jq '[.interfaces[] | select(.kernel.rx_packets > 0)] | length' "$WORKDIR/stats.json")" = 2 ]

stop_ferryd
check "ferryd exits 0 on SIGTERM" [ $? = 0 ]
check "px-c's NAPI threads are back to SCHED_OTHER" all_are px-c "OTHER 0"
check "px-s's NAPI threads are back to SCHED_OTHER" all_are px-s "OTHER 0"
summary rt_napi
