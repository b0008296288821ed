#!/bin/bash
# The worker's budget of held frames, in native and in generic (skb) XDP
# mode.  Four flows are paced at 10 pps with queues of a quarter of the UMEM
# each (as much as pace allows one flow), and all four are flooded at once
# (bounded: 800 datagrams each): unbounded, their queues would hold every
# frame of the worker's UMEM, its FILL rings would run dry, and every flow on
# the queue would stall.  The worker lets its services hold only what leaves
# the FILL rings, the frames in flight on TX and a chain run their frames
# (umem.frames - 2 ports * 2 * ring_size - 512 = 512 here) and drops the rest as hold_budget, so an unpaced flow on
# the same interface and queue, running while the pacers are full and the
# flood goes on (each frame a pacer releases would otherwise go to the next
# flood datagram), still gets every datagram and every echo.  ferryd stops with exit status 0 and
# every frame accounted for.
. "$(dirname "$0")/../lib.sh"
trap ns_cleanup EXIT

PACED="5001 5002 5003 5004"
FLOOD=2500      # datagrams per paced flow, at FLOOD_RATE: 5 s, 10000 in all
FLOOD_RATE=500  # per flow: the queues fill in about a second
STEADY=400      # datagrams of the unpaced flow, at 200/s, while the flood goes on
BUDGET=512      # umem.frames 2048 - 2 ports * 2 * ring_size 256 - a chain run's 512

write_config() { # MODE
	{
		cat <<-YAML
		interfaces:
		  - {name: px-c, xdp_mode: $1}
		  - {name: px-s, xdp_mode: $1}
		nat:
		  ports: 40000-40999
		umem:
		  frames: 2048
		  ring_size: 256
		  batch: 64
		flows:
		  - name: steady
		    match: {protocol: udp, destination: 198.18.1.1/32, port: 5100}
		    services:
		      - forward: {upstream: "198.18.2.2:6100"}
		YAML
		for p in $PACED; do
			cat <<-YAML
			  - name: paced$p
			    match: {protocol: udp, destination: 198.18.1.1/32, port: $p}
			    services:
			      - forward: {upstream: "198.18.2.2:$((p + 1000))"}
			      - pace: {rate_pps: 10, queue: 512, direction: client}
			YAML
		done
	} >"$WORKDIR/ferry.yaml"
}

# sum JQ: adds up JQ over the paced flows of the last stats.
paced_sum() {
	jq -r "[.flows[] | select(.name | startswith(\"paced\")) | $1 // 0] | add" \
		"$WORKDIR/stats.json"
}

steady() { # JQ
	jq -r ".flows[] | select(.name == \"steady\") | $1 // 0" "$WORKDIR/stats.json"
}

run_mode() { # MODE
	local mode=$1 pin st srv_pid pids=() p
	mkdir -p "$WORKDIR/bpffs-$mode"
	mount -t bpf bpf "$WORKDIR/bpffs-$mode" || return 1
	on_cleanup "umount '$WORKDIR/bpffs-$mode'"
	pin=$WORKDIR/bpffs-$mode/ferry
	write_config "$mode"
	sed -i "1i pin_path: $pin" "$WORKDIR/ferry.yaml"
	start_ferryd "$WORKDIR/ferry.yaml" "$WORKDIR/ferryd-$mode.log" || {
		check "$mode: ferryd starts" false
		return 1
	}
	check "$mode: ferryd starts" true

	ip netns exec "$NS_SRV" "$UDPPROBE" server --listen 198.18.2.2:6100 \
		--expect-src 198.18.2.1/32 --expect-sport 40000-40999 --count $STEADY \
		--timeout 30 >"$WORKDIR/server-$mode.out" 2>&1 &
	srv_pid=$!
	track_pid $srv_pid
	# The flood: all four paced flows at once.
	for p in $PACED; do
		in_cli "$UDPPROBE" client --to 198.18.1.1:$p --count $FLOOD --min-size 64 \
			--max-size 64 --rate $FLOOD_RATE --timeout 20 --no-wait >/dev/null 2>&1 &
		pids+=($!)
		track_pid $!
	done
	sleep 1.5
	# The pacers are full now (they drain at 40/s in all): the unpaced flow must not notice.
	check "$mode: the unpaced flow gets every echo while the pacers are full" \
		in_cli "$UDPPROBE" client --to 198.18.1.1:5100 --count $STEADY --rate 200 --timeout 10
	for p in "${pids[@]}"; do
		wait "$p"
	done
	wait $srv_pid
	st=$?
	cat "$WORKDIR/server-$mode.out"
	check "$mode: the server got every datagram of the unpaced flow" [ $st = 0 ]

	sleep 1.5 # ferryd publishes its counters once a second
	"$FERRYCTL" -p "$pin" stats --json >"$WORKDIR/stats.json"
	"$FERRYCTL" -p "$pin" stats
	log "$mode: paced: held $(paced_sum '.services[1].held'), hold_budget" \
		"$(paced_sum '.datapath.drops.hold_budget'), queue_full $(paced_sum '.datapath.drops.queue_full')"
	check "$mode: the paced flows hit the worker's budget (hold_budget drops)" \
		[ "$(paced_sum '.datapath.drops.hold_budget')" -gt 0 ]
	check "$mode: they held at least the budget's worth" \
		[ "$(paced_sum '.services[1].held')" -ge $BUDGET ]
	check "$mode: the unpaced flow dropped nothing" [ "$(steady '.datapath.drops | length')" = 0 ]
	check "$mode: the unpaced flow sent every datagram and echo" \
		[ "$(steady '.datapath.tx_packets')" = $STEADY ] && [ "$(steady '.datapath.reply_packets')" = $STEADY ]

	stop_ferryd
	st=$?
	check "$mode: ferryd exits 0 on SIGTERM, frames still held" [ $st = 0 ]
	check "$mode: every UMEM frame accounted for at stop" \
		grep -q "frame accounting holds" "$WORKDIR/ferryd-$mode.log"
}

require_root "test_hold_budget" || { echo "hold_budget: 0 passed, 1 failed"; exit 1; }
topo_up || { echo "FAIL: topology"; echo "hold_budget: 0 passed, 1 failed"; exit 1; }
for mode in ${FERRY_TEST_MODES:-native skb}; do
	run_mode "$mode"
done
summary hold_budget
