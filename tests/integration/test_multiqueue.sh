#!/bin/bash
# ferryd with two queues and two workers pinned to CPUs 0 and 1: eight UDP
# clients on distinct source ports, four sending on each queue, every
# datagram echoed back intact, in native and skb XDP mode and with the
# busy-poll and spin poll modes.  The sessions of the clients on queue 1
# belong to worker 1, but all the server's replies arrive on queue 0, so
# worker 0 must hand exactly those replies to worker 1; worker 1 hands none.
#
# Which queue a packet arrives on is made deterministic with XPS: each
# client is pinned to a CPU (taskset), and each CPU sends on a TX queue of
# its own (xps_cpus).  A veth delivers a frame sent on TX queue q to the
# peer's RX queue q for native XDP, but for generic (skb) XDP to RX queue
# q - 1 (0 for q 0), so in skb mode the clients of CPU 1 send on TX queue 2:
# the end hosts' veths have 3 TX queues (topo_up 2 3; px-c and px-s then get
# 3 RX queues, which native XDP on a veth requires, of which ferry serves 0
# and 1).  The server sends everything on TX queue 0.
. "$(dirname "$0")/../lib.sh"
trap ns_cleanup EXIT

N=${FERRY_TEST_DATAGRAMS_PER_CLIENT:-400} # per client
CLIENTS=8
TOTAL=$((CLIENTS * N))

write_config() { # XDP_MODE POLL_C POLL_S [WORKER_PRIORITY [COALESCE_USECS]]
	cat >"$WORKDIR/ferry.yaml" <<-YAML
	queues: 2
	# px-c and px-s have a third RX queue (see above) that no packet uses.
	unserved_queues: kernel
	cpus: [0, 1]
	worker_priority: ${4:-0}
	coalesce_usecs: ${5:-0}
	interfaces:
	  - name: px-c
	    xdp_mode: $1
	    poll_mode: $2
	  - name: px-s
	    xdp_mode: $1
	    poll_mode: $3
	nat:
	  ports: 40000-40999
	flows:
	  - name: mq
	    match:
	      protocol: udp
	      destination: 198.18.1.1/32
	      port: 5000
	    # The workers' hand-off is under test: no session leaves them for XDP
	    # (test_offload.sh forwards in XDP with two queues).
	    offload: off
	    services:
	      - forward:
	          upstream: 198.18.2.2:6000
	YAML
}

# set_xps NS DEV TXQ0_MASK TXQ1_MASK TXQ2_MASK: which CPUs send on which TX queue.
set_xps() {
	ip netns exec "$1" sh -c "echo $3 >/sys/class/net/$2/queues/tx-0/xps_cpus &&
		echo $4 >/sys/class/net/$2/queues/tx-1/xps_cpus &&
		echo $5 >/sys/class/net/$2/queues/tx-2/xps_cpus"
}

counter() { # JSON-PATH (flow "mq")
	jq -r ".flows[] | select(.name == \"mq\") | $1" "$WORKDIR/stats.json"
}

queues() { # NS DEV rx|tx: how many queues of that kind DEV has
	ip netns exec "$1" ls "/sys/class/net/$2/queues" | grep -c "^$3-"
}

no_csum_errors() { # NS
	local errs
	errs=$(ip netns exec "$1" nstat -az UdpInCsumErrors | awk '/UdpInCsumErrors/ {print $2}')
	[ "${errs:-0}" = 0 ]
}

# worker_line LOG ID: the worker's hand-off summary, logged at stop.
worker_line() {
	grep -o "worker $2: received .*" "$1"
}

# pinned_to PID COMM CPU: the thread named COMM of process PID may run only on CPU.
pinned_to() {
	local t
	for t in /proc/"$1"/task/*; do
		[ "$(cat "$t/comm" 2>/dev/null)" = "$2" ] || continue
		[ "$(taskset -cp "${t##*/}" 2>/dev/null | awk '{print $NF}')" = "$3" ]
		return
	done
	return 1
}

# sched_of PID COMM: "POLICY PRIORITY" of that thread of PID, e.g. "SCHED_FIFO 5".
sched_of() {
	local t
	for t in /proc/$1/task/*; do
		[ "$(cat "$t/comm" 2>/dev/null)" = "$2" ] || continue
		chrt -p "${t##*/}" | awk -F': ' '/policy/ { p = $2 } /priority/ { print p, $2 }'
		return
	done
}

run_case() { # NAME XDP_MODE POLL_C POLL_S [WORKER_PRIORITY [COALESCE_USECS]]
	local name=$1 mode=$2 log=$WORKDIR/ferryd-$1.log st i srv_pid pin_dir prio=${5:-0} sched
	local -a pids=()

	write_config "$mode" "$3" "$4" "$prio" "${6:-0}"
	if [ "$mode" = skb ]; then
		set_xps "$NS_CLI" cli0 1 0 2 || return 1
	else
		set_xps "$NS_CLI" cli0 1 2 0 || return 1
	fi
	set_xps "$NS_SRV" srv0 3 0 0 || return 1
	check "$name: config validates" "$FERRYD" -c "$WORKDIR/ferry.yaml" --check
	start_ferryd "$WORKDIR/ferry.yaml" "$log" || {
		check "$name: ferryd starts" false
		return 1
	}
	check "$name: ferryd starts" true
	check "$name: attached in $mode mode" grep -q "px-c: XDP program attached in $mode mode" "$log"
	check "$name: worker 0 pinned to CPU 0 (log)" grep -q "worker 0: queue 0, pinned to CPU 0" "$log"
	check "$name: worker 1 pinned to CPU 1 (log)" grep -q "worker 1: queue 1, pinned to CPU 1" "$log"
	check "$name: thread ferry-q0 runs only on CPU 0" pinned_to "$FERRYD_PID" ferry-q0 0
	check "$name: thread ferry-q1 runs only on CPU 1" pinned_to "$FERRYD_PID" ferry-q1 1
	if [ "$prio" != 0 ]; then
		sched="SCHED_FIFO $prio"
	else
		sched="SCHED_OTHER 0"
	fi
	check "$name: worker threads run $sched" \
		[ "$(sched_of "$FERRYD_PID" ferry-q0)/$(sched_of "$FERRYD_PID" ferry-q1)" = "$sched/$sched" ]
	check "$name: the main thread keeps normal scheduling" \
		[ "$(sched_of "$FERRYD_PID" ferryd)" = "SCHED_OTHER 0" ]
	pin_dir=/proc/$FERRYD_PID/root/sys/fs/bpf/ferry
	# A datagram sent while the client's ARP entry for the proxy resolves is
	# queued and sent later by whichever CPU takes the ARP reply, so XPS may
	# put it on the other CPU's queue (a second session for that client).  A
	# permanent entry keeps every datagram on its client's CPU's queue, as a
	# NIC's RSS keeps a flow on one queue.
	ip -n "$NS_CLI" neigh replace 198.18.1.1 dev cli0 nud permanent \
		lladdr "$(ip -n "$NS_PX" -j link show px-c | jq -r '.[0].address')" || return 1

	ip netns exec "$NS_SRV" "$UDPPROBE" server --listen 198.18.2.2:6000 --expect-src 198.18.2.1/32 \
		--expect-sport 40000-40999 --count "$TOTAL" --timeout 60 >"$WORKDIR/server.out" 2>&1 &
	srv_pid=$!
	track_pid $srv_pid
	wait_for grep -q "listening on" "$WORKDIR/server.out"
	for i in $(seq 0 $((CLIENTS - 1))); do
		# Clients 0-3 on CPU 0 (queue 0), clients 4-7 on CPU 1 (queue 1).
		ip netns exec "$NS_CLI" taskset -c $((i / 4)) "$UDPPROBE" client --to 198.18.1.1:5000 \
			--bind 198.18.1.2:$((30000 + i)) --count "$N" --min-size 16 --max-size 1400 \
			--rate 500 --window 8 --timeout 20 >"$WORKDIR/client-$i.out" 2>&1 &
		pids+=($!)
		track_pid $!
	done
	for i in $(seq 0 $((CLIENTS - 1))); do
		wait "${pids[$i]}"
		st=$?
		check "$name: client $i (port $((30000 + i))) gets all $N datagrams back intact" [ $st = 0 ]
		[ $st = 0 ] || cat "$WORKDIR/client-$i.out"
	done
	wait $srv_pid
	st=$?
	cat "$WORKDIR/server.out"
	check "$name: server got all $TOTAL datagrams intact from 198.18.2.1:40000-40999" [ $st = 0 ]
	check "$name: no UDP checksum errors at the server" no_csum_errors "$NS_SRV"
	check "$name: no UDP checksum errors at the clients" no_csum_errors "$NS_CLI"

	sleep 1.5 # ferryd publishes its counters once a second
	"$FERRYCTL" -p "$pin_dir" stats --json >"$WORKDIR/stats.json"
	"$FERRYCTL" -p "$pin_dir" stats
	check "$name: XDP redirected every request and reply" [ "$(counter .steering.redirected)" = $((2 * TOTAL)) ]
	check "$name: none fell back to the kernel for want of a socket" [ "$(counter .steering.passed_no_socket)" = 0 ]
	check "$name: workers sent $TOTAL upstream" [ "$(counter .datapath.tx_packets)" = $TOTAL ]
	check "$name: workers sent $TOTAL replies to the clients" [ "$(counter .datapath.reply_packets)" = $TOTAL ]
	check "$name: one session per client" [ "$(counter .datapath.sessions_created)" = $CLIENTS ]
	check "$name: the replies of queue 1's clients were handed off" \
		[ "$(counter .datapath.handoff_packets)" = $((TOTAL / 2)) ]
	check "$name: no drop of any reason" [ "$(counter '.datapath.drops | length')" = 0 ]

	stop_ferryd
	st=$?
	check "$name: ferryd exits 0 on SIGTERM" [ $st = 0 ]
	worker_line "$log" 0
	worker_line "$log" 1
	# Worker 0: its clients' requests and every reply; worker 1: its clients' requests.
	check "$name: worker 0 carried its clients and all replies, handed off half of them" \
		[ "$(worker_line "$log" 0)" = "worker 0: received $((TOTAL / 2 + TOTAL)) packets, handed $((TOTAL / 2)) replies to their owners, took over 0, 0 hand-off drops" ]
	check "$name: worker 1 carried its clients and took over their replies" \
		[ "$(worker_line "$log" 1)" = "worker 1: received $((TOTAL / 2)) packets, handed 0 replies to their owners, took over $((TOTAL / 2)), 0 hand-off drops" ]
	check "$name: every UMEM frame accounted for, in both workers" \
		[ "$(grep -c "frame accounting holds" "$log")" = 2 ]
	check "$name: no XDP program left on px-c" eval "! xdp_attached $NS_PX px-c"
}

require_root "test_multiqueue" || { echo "multiqueue: 0 passed, 1 failed"; exit 1; }
if [ "$(nproc)" -lt 2 ]; then
	echo "FAIL: test_multiqueue needs 2 CPUs (cpus: [0, 1])"
	echo "multiqueue: 0 passed, 1 failed"
	exit 1
fi
topo_up 2 3 || { echo "FAIL: topology"; echo "multiqueue: 0 passed, 1 failed"; exit 1; }
check "topology: cli0 has 3 TX queues" [ "$(queues "$NS_CLI" cli0 tx)" = 3 ]
check "topology: px-c has 2 TX queues" [ "$(queues "$NS_PX" px-c tx)" = 2 ]

# Real-time workers (worker_priority) that nap after busy loops (coalesce_usecs)
# in one case: both need interrupt mode.
run_case native native interrupt interrupt 5 50
check "native: the log names the workers' scheduling and coalescing" \
	[ "$(grep -c 'pinned to CPU [01], SCHED_FIFO 5, idle mode interrupt, coalesce 50 us' "$WORKDIR/ferryd-native.log")" = 2 ]
run_case skb skb interrupt interrupt

run_case busy-poll native busy-poll busy-poll
check "busy-poll: each socket set up for busy polling" \
	[ "$(grep -c 'poll mode busy-poll (SO_BUSY_POLL 20 us, budget 64)' "$WORKDIR/ferryd-busy-poll.log")" = 4 ]
check "busy-poll: workers idle by busy polling" grep -q "worker 1: queue 1, pinned to CPU 1, SCHED_OTHER, idle mode busy-poll" \
	"$WORKDIR/ferryd-busy-poll.log"
check "busy-poll: the workers ran the queues' NAPI" \
	[ "$(grep -cE 'queue [01]: [1-9][0-9]* busy polls' "$WORKDIR/ferryd-busy-poll.log")" = 4 ]

# Mixed modes: a worker follows the most active of its interfaces.
run_case spin native spin interrupt
check "spin: px-c spins, px-s is interrupt driven" \
	grep -q "iface px-s queue 0: poll mode interrupt" "$WORKDIR/ferryd-spin.log"
check "spin: workers never sleep (px-c's mode wins)" \
	[ "$(grep -c 'idle mode spin' "$WORKDIR/ferryd-spin.log")" = 2 ]
summary multiqueue
