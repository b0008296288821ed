#!/bin/bash
# queues against the interfaces' channels (lib/queues.h), on veths with two
# queues each, native XDP:
# - without `queues` (auto) ferryd starts a worker per channel, and a client
#   sending on each queue is served by that queue's socket (the per-queue
#   counters of both sockets on px-c count its datagrams, nothing passes to
#   the kernel for want of a socket);
# - an explicit `queues: 1` is refused at start, naming the interface;
# - `queues: 1` with `unserved_queues: kernel` starts and warns.
# Which queue a datagram arrives on is made deterministic with XPS, as in
# test_multiqueue.sh: client i runs on CPU i and CPU i sends on TX queue i.
. "$(dirname "$0")/../lib.sh"
trap ns_cleanup EXIT

N=100 # datagrams per client

write_config() { # EXTRA-TOP-LEVEL-YAML
	cat >"$WORKDIR/ferry.yaml" <<-YAML
	$1
	control_socket: $WORKDIR/ferryd.sock
	interfaces:
	  - name: px-c
	    xdp_mode: native
	  - name: px-s
	    xdp_mode: native
	nat:
	  ports: 40000-40999
	flows:
	  - name: q
	    match: {protocol: udp, destination: 198.18.1.1/32, port: 5000}
	    offload: off
	    services:
	      - forward: {upstream: 198.18.2.2:6000}
	YAML
}

rx_of_queue() { # QUEUE: what px-c's socket on that queue received
	jq -r "[.queues[] | select(.interface == \"px-c\" and .queue == $1) | .port.rx_packets] | add // 0" \
		"$WORKDIR/stats.json"
}

require_root "test_queues" || { echo "queues: 0 passed, 1 failed"; exit 1; }
if [ "$(nproc)" -lt 2 ]; then
	echo "FAIL: test_queues needs 2 CPUs"
	echo "queues: 0 passed, 1 failed"
	exit 1
fi
topo_up 2 || { echo "FAIL: topology"; echo "queues: 0 passed, 1 failed"; exit 1; }
check "topology: px-c has 2 channels" \
	[ "$(in_px ethtool -l px-c | awk '/^Current/ {c = 1} c && /^RX:/ {print $2}')" = 2 ]
in_cli sh -c 'echo 1 >/sys/class/net/cli0/queues/tx-0/xps_cpus &&
	echo 2 >/sys/class/net/cli0/queues/tx-1/xps_cpus' || { check "xps" false; summary queues; exit 1; }
# A datagram queued behind ARP would leave on the CPU that takes the reply.
ip -n "$NS_CLI" neigh replace 198.18.1.1 dev cli0 nud permanent \
	lladdr "$(ip -n "$NS_PX" -j link show px-c | jq -r '.[0].address')"

# 1. auto: both queues served.
write_config "# queues: auto (the default)"
LOG=$WORKDIR/ferryd-auto.log
if start_ferryd "$WORKDIR/ferry.yaml" "$LOG"; then
	check "auto: ferryd starts" true
	check "auto: two workers for px-c's and px-s's two channels" \
		grep -q "running: 2 interfaces, 1 flow, 2 workers" "$LOG"
	check "auto: the log says where the count came from" grep -q "queues: auto: 2" "$LOG"
	in_srv "$UDPPROBE" server --listen 198.18.2.2:6000 --count $((2 * N)) --timeout 30 \
		>"$WORKDIR/server.out" 2>&1 &
	SRV=$!
	track_pid $SRV
	wait_for grep -q "listening on" "$WORKDIR/server.out"
	for i in 0 1; do
		in_cli taskset -c $i "$UDPPROBE" client --to 198.18.1.1:5000 \
			--bind 198.18.1.2:$((30000 + i)) --count $N --rate 500 --timeout 20 \
			>"$WORKDIR/client-$i.out" 2>&1 &
		CLI[$i]=$!
		track_pid ${CLI[$i]}
	done
	for i in 0 1; do
		wait ${CLI[$i]}
		check "auto: client $i on queue $i gets its $N datagrams back" [ $? = 0 ]
	done
	wait $SRV
	sleep 1.5 # ferryd publishes its counters once a second
	"$FERRYCTL" -p "/proc/$FERRYD_PID/root/sys/fs/bpf/ferry" stats --json >"$WORKDIR/stats.json"
	check "auto: px-c's queue 0 socket received client 0's datagrams" [ "$(rx_of_queue 0)" -ge $N ]
	check "auto: px-c's queue 1 socket received client 1's datagrams" [ "$(rx_of_queue 1)" -ge $N ]
	check "auto: nothing passed to the kernel for want of a socket" \
		[ "$(jq -r '.flows[] | select(.name == "q") | .steering.passed_no_socket' "$WORKDIR/stats.json")" = 0 ]
	stop_ferryd
	check "auto: exits 0 on SIGTERM" [ $? = 0 ]
else
	check "auto: ferryd starts" false
fi

# 2. Fewer queues than channels: refused at start, naming the interface.
write_config "queues: 1"
LOG=$WORKDIR/ferryd-one.log
in_px timeout 20 "$FERRYD" -c "$WORKDIR/ferry.yaml" >"$LOG" 2>&1
st=$?
check "queues: 1: ferryd refuses to start" [ $st = 1 ]
check "queues: 1: the error names px-c and its channels" \
	grep -q "ferry.yaml:4:5: iface px-c: has 2 channels but queues is 1" "$LOG"
check "queues: 1: and px-s" grep -q "iface px-s: has 2 channels but queues is 1" "$LOG"
check "queues: 1: no XDP program left on px-c" eval "! xdp_attached $NS_PX px-c"

# 3. ...unless the config accepts that queue 1's packets go to the kernel.
write_config "queues: 1
unserved_queues: kernel"
LOG=$WORKDIR/ferryd-partial.log
if start_ferryd "$WORKDIR/ferry.yaml" "$LOG"; then
	check "unserved_queues: kernel: ferryd starts with one worker" \
		grep -q "running: 2 interfaces, 1 flow, 1 worker$" "$LOG"
	check "unserved_queues: kernel: a warning names px-c's unserved queue" \
		grep -q "\[warn\]: iface px-c: serving 1 of its 2 channels (unserved_queues: kernel): packets arriving on queues 1-1 go to the kernel" "$LOG"
	stop_ferryd
	check "unserved_queues: kernel: exits 0 on SIGTERM" [ $? = 0 ]
else
	check "unserved_queues: kernel: ferryd starts" false
fi
summary queues
