#!/bin/bash
# filter + ratelimit + forward with its established session in the XDP fast
# path, in native and in generic (skb) XDP mode: a UDP stream at ten times
# the configured rate is offloaded (steering.offloaded > 0), the server gets
# what the limit allows (the burst plus the rate over the stream's time),
# and every packet the limit dropped, in XDP or in the worker, is counted
# once: the flow's rate_limited drops, the ratelimit service's dropped and
# over_packets, with the services after it never seeing them.  `ferryctl
# flows` says the chain forwards in XDP.
#
# Buckets are per CPU (bpf/ferry_fastpath.h): on a veth the XDP program runs
# on the sending task's CPU, so the client is pinned to one CPU, as a NIC's
# queue is to its interrupt's.
. "$(dirname "$0")/../lib.sh"
trap ns_cleanup EXIT

N=${FERRY_TEST_DATAGRAMS:-6000}
SEND_RATE=2000 # datagrams per second: 3 s, ten times the limit
RATE=200       # packets_per_second
BURST=50

write_config() { # MODE PIN_PATH
	cat >"$WORKDIR/ferry.yaml" <<-YAML
	pin_path: $2
	interfaces:
	  - name: px-c
	    xdp_mode: $1
	  - name: px-s
	    xdp_mode: $1
	nat:
	  ports: 40000-40999
	flows:
	  - name: limited
	    match:
	      protocol: udp
	      destination: 198.18.1.1/32
	      port: 5000
	    services:
	      - filter:
	          allow:
	            - source: 198.18.1.0/24
	              source_port: 1024-65535
	          default: deny
	      - ratelimit:
	          packets_per_second: $RATE
	          burst_packets: $BURST
	      - forward:
	          upstream: 198.18.2.2:6000
	YAML
}

counter() { # JSON-PATH  (flow "limited")
	jq -r ".flows[] | select(.name == \"limited\") | $1" "$WORKDIR/stats.json"
}

eq() { # NAME GOT WANT
	printf '  %s: got %s, want %s\n' "$1" "$2" "$3"
	check "$1" [ "$2" = "$3" ]
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

run_mode() { # MODE
	local mode=$1 pin_path=/sys/fs/bpf/ferry pin_dir srv_pid st t0 t1 ms valid lo hi rl
	write_config "$mode" "$pin_path"
	check "$mode: config validates" "$FERRYD" -c "$WORKDIR/ferry.yaml" --check
	if [ "$mode" = native ]; then
		# A veth takes XDP redirects only while its peer has GRO on (or an XDP program).
		in_cli ethtool -K cli0 gro on >/dev/null
		in_srv ethtool -K srv0 gro on >/dev/null
	fi
	start_ferryd "$WORKDIR/ferry.yaml" "$WORKDIR/ferryd-$mode.log" || {
		check "$mode: ferryd starts" false
		return 1
	}
	check "$mode: ferryd starts" true
	pin_dir=/proc/$FERRYD_PID/root$pin_path
	"$FERRYCTL" -p "$pin_dir" flows >"$WORKDIR/flows.txt"
	cat "$WORKDIR/flows.txt"
	check "$mode: ferryctl flows says the chain forwards in XDP" \
		grep -qE "offload +established sessions forward in XDP" "$WORKDIR/flows.txt"

	ip netns exec "$NS_SRV" "$UDPPROBE" server --listen 198.18.2.2:6000 --no-echo --any-count \
		--expect-src 198.18.2.1/32 --expect-sport 40000-40999 --count "$N" --timeout 60 \
		>"$WORKDIR/server.out" 2>&1 &
	srv_pid=$!
	track_pid $srv_pid
	wait_for grep -q "listening on" "$WORKDIR/server.out"
	t0=$(now_ms)
	in_cli taskset -c 0 "$UDPPROBE" client --to 198.18.1.1:5000 --count "$N" --min-size 64 \
		--max-size 64 --rate $SEND_RATE --no-wait --timeout 30 >"$WORKDIR/client.out"
	st=$?
	t1=$(now_ms)
	cat "$WORKDIR/client.out"
	check "$mode: the client sent every datagram" [ $st = 0 ]
	sleep 0.5
	kill -TERM $srv_pid 2>/dev/null
	wait $srv_pid
	cat "$WORKDIR/server.out"
	valid=$(sed -nE 's/.*received ([0-9]+) valid, 0 invalid.*/\1/p' "$WORKDIR/server.out")
	valid=${valid:-0}

	sleep 1.5 # ferryd publishes its counters once a second
	"$FERRYCTL" -p "$pin_dir" stats --json >"$WORKDIR/stats.json"
	"$FERRYCTL" -p "$pin_dir" stats
	check "$mode: the session was offloaded (steering.offloaded > 0)" \
		[ "$(counter .steering.offloaded)" -gt 0 ]
	check "$mode: XDP dropped over the limit (steering.offload_rate_limited > 0)" \
		[ "$(counter .steering.offload_rate_limited)" -gt 0 ]
	# The limit: a bucket of BURST refilled at RATE over the stream's time,
	# which lasts at most t1 - t0 (the client's whole run).  Above it: at most
	# that, plus what the worker's own bucket passed before the session was
	# offloaded (no more than what was steered to the worker).  Below it: the
	# stream keeps the bucket empty, so every token of the time it lasts is
	# used; it lasts at least t1 - t0 less the client's start and exit (0.5
	# s, generous), and a quarter less for a loaded machine's slow sender.
	ms=$((t1 - t0))
	hi=$((BURST + RATE * ms / 1000 + $(counter .steering.redirected) + 1))
	lo=$((RATE * (ms - 500) * 3 / 4 / 1000))
	printf '  delivered %s in %s ms: want %s..%s\n' "$valid" "$ms" "$lo" "$hi"
	check "$mode: the server got at most burst + rate * time (+ the worker's share)" \
		[ "$valid" -le "$hi" ]
	check "$mode: and at least the rate over most of that time" [ "$valid" -ge "$lo" ]

	# Each datagram was delivered or dropped by the limit, counted once.
	rl=$(counter '.datapath.drops.rate_limited // 0')
	eq "$mode: drops rate_limited = sent - delivered" "$rl" $((N - valid))
	eq "$mode: rx counts every datagram" "$(counter .datapath.rx_packets)" "$N"
	eq "$mode: tx counts the delivered ones" "$(counter .datapath.tx_packets)" "$valid"
	eq "$mode: filter allowed every datagram" "$(counter '.services[0].counters.allowed')" "$N"
	eq "$mode: ratelimit saw every datagram" "$(counter '.services[1].packets_in')" "$N"
	eq "$mode: ratelimit dropped the rate_limited ones" "$(counter '.services[1].dropped')" "$rl"
	eq "$mode: its over_packets too" "$(counter '.services[1].counters.over_packets')" "$rl"
	eq "$mode: forward saw only the rest" "$(counter '.services[2].packets_in')" "$valid"
	eq "$mode: and sent them" "$(counter '.services[2].sent')" "$valid"

	stop_ferryd
	st=$?
	check "$mode: ferryd exits 0 on SIGTERM" [ $st = 0 ]
	check "$mode: every UMEM frame accounted for at stop" \
		grep -q "frame accounting holds" "$WORKDIR/ferryd-$mode.log"
}

require_root "test_offload_ratelimit" || {
	echo "offload_ratelimit: 0 passed, 1 failed"
	exit 1
}
for f in "$FERRYD" "$FERRYCTL" "$UDPPROBE"; do
	[ -x "$f" ] || {
		echo "FAIL: $f not built"
		echo "offload_ratelimit: 0 passed, 1 failed"
		exit 1
	}
done
topo_up || {
	echo "FAIL: topology"
	echo "offload_ratelimit: 0 passed, 1 failed"
	exit 1
}
run_mode native
run_mode skb
summary offload_ratelimit
