#!/bin/bash
# Overload.  Phase 1 overloads what lies behind ferryd: a slow upstream (an
# nftables rate limit in the server's input) under three clients at 5000/s,
# then a full session table (max_sessions 32, many client source ports whose
# sessions the upstream never answers: early-dropped for the new ones,
# counted as sessions_early_dropped).  The worker keeps up with what it
# receives, so a second flow's paced stream, whose session exists before
# the overload, must deliver every datagram exactly.  Phase 2 overloads the
# queue itself: unpaced clients offer more than the worker takes, and the
# kernel drops what does not fit the AF_XDP socket's rings (its rx_dropped);
# the second flow shares the queue, loses its share, and must not stall.
# Afterwards ferryd still forwards, exits 0, and the frame accounting holds.
#
# Not covered: tx_ring_full.  On a veth in copy mode the kernel consumes the
# TX ring synchronously on each kick, so the ring never fills here.
. "$(dirname "$0")/../lib.sh"
trap ns_cleanup EXIT

MAX_SESSIONS=32

write_config() {
	cat >"$WORKDIR/ferry.yaml" <<-YAML
	interfaces:
	  - name: px-c
	  - name: px-s
	nat:
	  ports: 40000-40999
	  max_sessions: $MAX_SESSIONS
	umem:
	  ring_size: 256
	  batch: 64
	flows:
	  - name: bulk
	    match: {protocol: udp, destination: 198.18.1.1/32, port: 5000}
	    services:
	      - forward: {upstream: "198.18.2.2:6000"}
	  - name: steady
	    match: {protocol: udp, destination: 198.18.1.1/32, port: 5100}
	    services:
	      - forward: {upstream: "198.18.2.2:6100"}
	YAML
}

counter() { # FLOW JSON-PATH
	jq -r ".flows[] | select(.name == \"$1\") | $2" "$WORKDIR/stats.json"
}

read_stats() {
	"$FERRYCTL" -p "/proc/$FERRYD_PID/root/sys/fs/bpf/ferry" stats --json >"$WORKDIR/stats.json" &&
		[ -s "$WORKDIR/stats.json" ]
}

require_root "test_overload" || { echo "overload: 0 passed, 1 failed"; exit 1; }
topo_up || { echo "FAIL: topology"; echo "overload: 0 passed, 1 failed"; exit 1; }
write_config
start_ferryd "$WORKDIR/ferry.yaml" "$WORKDIR/ferryd.log" || {
	check "ferryd starts" false
	summary overload
	exit 1
}
check "ferryd starts" true

# The slow upstream: the server's kernel takes 2000 datagrams/s of the bulk flow.
ip netns exec "$NS_SRV" nft -f - <<-NFT
table inet ferry_overload {
	chain input {
		type filter hook input priority 0; policy accept;
		udp dport 6000 limit rate over 2000/second drop
	}
}
NFT
check "nftables rate limit on the upstream" [ $? = 0 ]

# steady_start COUNT: the steady flow's paced stream (200/s), always from
# 198.18.1.2:45100, so every run uses the session made by the first.
steady_start() {
	ip netns exec "$NS_SRV" "$UDPPROBE" server --listen 198.18.2.2:6100 \
		--expect-src 198.18.2.1/32 --count "$1" --any-count --timeout 60 \
		>"$WORKDIR/steady-server.out" 2>&1 &
	steady_srv=$!
	track_pid $steady_srv
	wait_for grep -q "listening on" "$WORKDIR/steady-server.out"
	ip netns exec "$NS_CLI" "$UDPPROBE" client --to 198.18.1.1:5100 --count "$1" --rate 200 \
		--bind 198.18.1.2:45100 --timeout 10 ${2:+--min-fraction $2} \
		>"$WORKDIR/steady-client.out" 2>&1 &
	steady_cli=$!
	track_pid $steady_cli
	sleep 1
}

steady_wait() { # sets steady_st (client) and steady_srv_st (server)
	wait $steady_cli
	steady_st=$?
	cat "$WORKDIR/steady-client.out"
	wait $steady_srv
	steady_srv_st=$?
	cat "$WORKDIR/steady-server.out"
}

ip netns exec "$NS_SRV" "$UDPPROBE" server --listen 198.18.2.2:6000 --expect-src 198.18.2.1/32 \
	--count 16000000 --any-count --no-echo --timeout 90 >"$WORKDIR/bulk-server.out" 2>&1 &
bulk_srv=$!
track_pid $bulk_srv

# Phase 1, overload behind ferryd: three clients at 10000/s each into the
# slow upstream, then many client source ports past max_sessions.  The
# worker keeps up with what it receives, so the steady flow must be exact.
steady_start 1600
bulk=()
for i in 1 2 3; do
	ip netns exec "$NS_CLI" "$UDPPROBE" client --to 198.18.1.1:5000 --count 20000 --rate 5000 \
		--min-size 1000 --max-size 1400 --timeout 2 --no-wait \
		>"$WORKDIR/bulk-$i.out" 2>&1 &
	bulk+=($!)
	track_pid $!
done
for p in "${bulk[@]}"; do wait "$p"; done
for i in $(seq $((MAX_SESSIONS * 2))); do
	ip netns exec "$NS_CLI" "$UDPPROBE" client --to 198.18.1.1:5000 --count 2 --rate 100 \
		--timeout 1 --no-wait >/dev/null 2>&1
done
steady_wait
check "phase 1: steady flow: every echo back intact during the overload" [ $steady_st = 0 ]
check "phase 1: steady flow: the server got every datagram" \
	grep -q "received 1600 valid, 0 invalid" "$WORKDIR/steady-server.out"

# Phase 2, overload of the queue itself: unpaced clients offer more than the
# worker can take.  The kernel drops what does not fit the AF_XDP socket's
# rings (counted in its rx_dropped), whichever flow it belongs to: the
# steady flow shares the queue, so it loses its share but must not stall.
steady_start 1600 0.3
bulk=()
for i in 1 2 3; do
	ip netns exec "$NS_CLI" "$UDPPROBE" client --to 198.18.1.1:5000 --count 2000000 --rate 0 \
		--min-size 1000 --max-size 1400 --timeout 5 --no-wait \
		>"$WORKDIR/bulk-$i.out" 2>&1 &
	bulk+=($!)
	track_pid $!
done
for p in "${bulk[@]}"; do wait "$p"; done
steady_wait
check "phase 2: steady flow keeps flowing (>= 30% echoed, none corrupt)" [ $steady_st = 0 ]

sleep 1.5
read_stats
"$FERRYCTL" -p "/proc/$FERRYD_PID/root/sys/fs/bpf/ferry" stats
check "steady flow: no drop inside ferryd" [ "$(counter steady '.datapath.drops | length')" = 0 ]
kdrop=$(jq -r '[.queues[] | select(.interface == "px-c") | .xdp_statistics.rx_dropped] | add // 0' \
	"$WORKDIR/stats.json")
log "px-c: the kernel's AF_XDP rx_dropped: $kdrop"
check "phase 2: the queue's overflow is counted by the kernel (rx_dropped)" [ "${kdrop:-0}" -gt 0 ]
# The interface's own kernel counters (IFLA_STATS64) are in ferryctl too: a
# veth counts a redirect into a full socket as an rx_dropped of its own.
ifdrop=$(jq -r '.interfaces[] | select(.name == "px-c") | .kernel.rx_dropped // -1' "$WORKDIR/stats.json")
log "px-c: the kernel's interface rx_dropped: $ifdrop"
check "phase 2: ferryctl shows px-c's kernel drops (kernel.rx_dropped >= the socket's)" \
	[ "${ifdrop:--1}" -gt 0 -a "${ifdrop:--1}" -ge "${kdrop:-0}" ]

rx=$(counter bulk .datapath.rx_packets)
tx=$(counter bulk .datapath.tx_packets)
drops=$(counter bulk '[.datapath.drops[]] | add // 0')
log "bulk: rx $rx tx $tx drops $(counter bulk .datapath.drops)"
check "bulk: every packet received is sent or dropped with a reason" [ $((tx + drops)) = "$rx" ]
check "bulk: a full session table gives way: unanswered sessions early-dropped" \
	[ "$(counter bulk '.datapath.sessions_early_dropped // 0')" -gt 0 ]
log "bulk: sessions created $(counter bulk .datapath.sessions_created), expired $(counter bulk .datapath.sessions_expired), early dropped $(counter bulk .datapath.sessions_early_dropped)"
check "bulk: live sessions capped at max_sessions (less the steady flow's)" \
	[ $(($(counter bulk .datapath.sessions_created) - $(counter bulk .datapath.sessions_expired) - \
	$(counter bulk .datapath.sessions_early_dropped))) -le $((MAX_SESSIONS - 1)) ]
xdp_rx=$(counter bulk .steering.redirected)
log "bulk: redirected by XDP $xdp_rx, taken by the worker $rx (the rest: AF_XDP RX ring full)"
check "bulk: the worker took at most what XDP redirected" [ "$rx" -le "$xdp_rx" ]

# ferryd is healthy afterwards: the steady flow's session still forwards.
kill $bulk_srv 2>/dev/null
sleep 1
ip netns exec "$NS_SRV" "$UDPPROBE" server --listen 198.18.2.2:6100 --expect-src 198.18.2.1/32 \
	--count 500 --timeout 20 >"$WORKDIR/after.out" 2>&1 &
srv=$!
track_pid $srv
wait_for grep -q "listening on" "$WORKDIR/after.out"
check "after the overload: a stream through an existing session is exact" \
	ip netns exec "$NS_CLI" "$UDPPROBE" client --to 198.18.1.1:5100 --count 500 --rate 2000 \
	--timeout 5 --bind 198.18.1.2:45100
wait $srv
check "after the overload: the server got all of it" [ $? = 0 ]

stop_ferryd
check "ferryd exits 0 on SIGTERM" [ $? = 0 ]
check "frame accounting holds" grep -q "frame accounting holds" "$WORKDIR/ferryd.log"
check "no XDP program left on px-c" eval "! xdp_attached $NS_PX px-c"
summary overload
