#!/bin/bash
# Next hops that follow the kernel while ferryd runs, in native and in skb
# XDP mode.  Two servers hold the same upstream address 198.18.9.9; the proxy
# routes it via server A.  Without restarting ferryd:
#   1. mid-stream the route moves to server B: the rest of the stream reaches
#      B and comes back (replies now arrive on another interface);
#   2. mid-stream server B's MAC changes (it announces it with a gratuitous
#      ARP): the stream follows the new MAC;
#   3. the proxy's neighbour entry for B is flushed, then a brand-new session
#      starts: its first datagrams wait for ARP and are all delivered.
#
#   client ns          proxy ns (lo 198.18.8.1, the egress source)     server A ns
#   cli0 198.18.1.2 -- px-c 198.18.1.1 | px-s  198.18.2.1 ------------ sa0 198.18.2.2
#                                      | px-s2 198.18.4.1 ----+        lo 198.18.9.9
#                                                             |        server B ns
#                                                             +------- sb0 198.18.4.2
#                                                                      lo 198.18.9.9
. "$(dirname "$0")/../lib.sh"
trap ns_cleanup EXIT

NS_SRVB=ferry-$RUN_ID-srvb
RATE=500
N1=${FERRY_TEST_NH_DATAGRAMS:-3000} # route switch stream: 6 s at $RATE
N2=2500                             # MAC change stream: 5 s
N3=20                               # the new session after the flush
# "A handful of in-flight datagrams lost at the switch": at most 1%.
MIN_FRACTION=0.99

nh_topo_up() {
	local ns_dev ns dev
	add_ns "$NS_CLI" && add_ns "$NS_PX" && add_ns "$NS_SRV" && add_ns "$NS_SRVB" || return 1
	ip link add cli0 netns "$NS_CLI" type veth peer name px-c netns "$NS_PX" || return 1
	ip link add sa0 netns "$NS_SRV" type veth peer name px-s netns "$NS_PX" || return 1
	ip link add sb0 netns "$NS_SRVB" type veth peer name px-s2 netns "$NS_PX" || return 1
	ip -n "$NS_CLI" addr add 198.18.1.2/24 dev cli0 &&
		ip -n "$NS_PX" addr add 198.18.1.1/24 dev px-c &&
		ip -n "$NS_PX" addr add 198.18.2.1/24 dev px-s &&
		ip -n "$NS_PX" addr add 198.18.4.1/24 dev px-s2 &&
		ip -n "$NS_PX" addr add 198.18.8.1/32 dev lo &&
		ip -n "$NS_SRV" addr add 198.18.2.2/24 dev sa0 &&
		ip -n "$NS_SRV" addr add 198.18.9.9/32 dev lo &&
		ip -n "$NS_SRVB" addr add 198.18.4.2/24 dev sb0 &&
		ip -n "$NS_SRVB" addr add 198.18.9.9/32 dev lo || return 1
	for ns_dev in "$NS_CLI:cli0" "$NS_PX:px-c" "$NS_PX:px-s" "$NS_PX:px-s2" \
		"$NS_SRV:sa0" "$NS_SRVB:sb0"; do
		ns=${ns_dev%%:*} dev=${ns_dev#*:}
		ip -n "$ns" link set "$dev" up || return 1
	done
	# Both servers answer the egress source through their own link.
	ip -n "$NS_SRV" route add 198.18.8.1/32 via 198.18.2.1 dev sa0 &&
		ip -n "$NS_SRVB" route add 198.18.8.1/32 via 198.18.4.1 dev sb0 || return 1
	# Server B announces a new MAC with a gratuitous ARP (phase 2).
	ip netns exec "$NS_SRVB" sysctl -qw net.ipv4.conf.sb0.arp_notify=1 || return 1
	# Complete checksums from the end hosts: AF_XDP sees raw frames.
	ip netns exec "$NS_CLI" ethtool -K cli0 tx off >/dev/null &&
		ip netns exec "$NS_SRV" ethtool -K sa0 tx off >/dev/null &&
		ip netns exec "$NS_SRVB" ethtool -K sb0 tx off >/dev/null
}

write_config() { # MODE
	cat >"$WORKDIR/ferry.yaml" <<-YAML
	interfaces:
	  - name: px-c
	    xdp_mode: $1
	  - name: px-s
	    xdp_mode: $1
	  - name: px-s2
	    xdp_mode: $1
	nat:
	  ports: 40000-40999
	flows:
	  - name: nh
	    match:
	      protocol: udp
	      destination: 198.18.1.1/32
	      port: 5000
	    # The workers' next-hop path is under test, held frames included
	    # (test_offload.sh switches routes under offloaded sessions).
	    offload: off
	    services:
	      - forward:
	          upstream: 198.18.9.9:6000
	          source: 198.18.8.1
	YAML
}

# start_server NS OUTFILE COUNT TIMEOUT: sets SRV_PID.
start_server() {
	ip netns exec "$1" timeout $(($4 + 10)) "$UDPPROBE" server --listen 198.18.9.9:6000 \
		--expect-src 198.18.8.1/32 --expect-sport 40000-40999 --count "$3" \
		--timeout "$4" >"$2" 2>&1 &
	SRV_PID=$!
	track_pid "$SRV_PID"
}

# start_client OUTFILE COUNT [ARGS...]: sets CLI_PID.
start_client() {
	local out=$1 count=$2
	shift 2
	ip netns exec "$NS_CLI" timeout 60 "$UDPPROBE" client --to 198.18.1.1:5000 \
		--count "$count" --rate "$RATE" --timeout 10 "$@" >"$out" 2>&1 &
	CLI_PID=$!
	track_pid "$CLI_PID"
}

valid_of() { # SERVER-OUTPUT: valid datagrams it received
	sed -n 's/.*received \([0-9]*\) valid.*/\1/p' "$1" | tail -1
}

invalid_of() {
	sed -n 's/.*valid, \([0-9]*\) invalid.*/\1/p' "$1" | tail -1
}

at_least() { # A B: A >= B, both integers
	[ -n "$1" ] && [ "$1" -ge "$2" ]
}

sum_at_least() { # A B MIN
	[ -n "$1" ] && [ -n "$2" ] && [ $(($1 + $2)) -ge "$3" ]
}

ferryd_alive() {
	kill -0 "$FERRYD_PID" 2>/dev/null
}

# log_since LINE PATTERN: the pattern in the ferryd log after line LINE.
log_since() {
	tail -n +"$(($1 + 1))" "$FERRYD_LOG" | grep -qE "$2"
}

counter() { # JSON-PATH (flow "nh")
	jq -r ".flows[] | select(.name == \"nh\") | $1" "$WORKDIR/stats.json"
}

# Phase 1: the route to 198.18.9.9 moves from server A to server B mid-stream.
phase_route_switch() {
	local m=$1 a b need st
	need=$(awk -v n="$N1" -v f="$MIN_FRACTION" 'BEGIN { x = n * f; print (x == int(x)) ? x : int(x) + 1 }')
	start_server "$NS_SRV" "$WORKDIR/$m-a1.out" "$N1" 16
	local pa=$SRV_PID
	start_server "$NS_SRVB" "$WORKDIR/$m-b1.out" "$N1" 16
	local pb=$SRV_PID
	sleep 0.3
	start_client "$WORKDIR/$m-c1.out" "$N1" --min-fraction "$MIN_FRACTION"
	local pc=$CLI_PID
	sleep 2
	ip -n "$NS_PX" route replace 198.18.9.9/32 via 198.18.4.2 dev px-s2
	wait "$pc"
	st=$?
	cat "$WORKDIR/$m-c1.out"
	check "$m: route switch: the client gets >= $MIN_FRACTION of $N1 echoes back intact" [ $st = 0 ]
	wait "$pa"
	wait "$pb"
	a=$(valid_of "$WORKDIR/$m-a1.out")
	b=$(valid_of "$WORKDIR/$m-b1.out")
	log "$m: server A: $(cat "$WORKDIR/$m-a1.out" | tail -1)"
	log "$m: server B: $(cat "$WORKDIR/$m-b1.out" | tail -1)"
	check "$m: route switch: server A got the start of the stream" at_least "$a" 1
	check "$m: route switch: server B got the rest of the stream" at_least "$b" 1
	check "$m: route switch: A and B together got >= $need of $N1" sum_at_least "$a" "$b" "$need"
	check "$m: route switch: no invalid datagram at A or B" \
		[ "$(invalid_of "$WORKDIR/$m-a1.out")$(invalid_of "$WORKDIR/$m-b1.out")" = 00 ]
	check "$m: route switch: ferryd followed the route (log)" \
		grep -qE "next hop 198\.18\.9\.9: new route" "$FERRYD_LOG"
	# Reply rules take replies only on the upstream's interface: they moved too.
	check "$m: route switch: the reply rule moved to px-s2 (log)" \
		grep -qE "replies from 198\.18\.9\.9 port [0-9]+ now arrive on px-s2, not px-s" "$FERRYD_LOG"
	check "$m: route switch: ferryd was not restarted" ferryd_alive
}

# Phase 2: server B's MAC changes mid-stream and it says so with a gratuitous ARP.
phase_mac_change() {
	local m=$1 mac=$2 b st
	start_server "$NS_SRVB" "$WORKDIR/$m-b2.out" "$N2" 14
	local pb=$SRV_PID
	sleep 0.3
	start_client "$WORKDIR/$m-c2.out" "$N2" --min-fraction "$MIN_FRACTION"
	local pc=$CLI_PID
	sleep 2
	ip -n "$NS_SRVB" link set dev sb0 address "$mac"
	wait "$pc"
	st=$?
	cat "$WORKDIR/$m-c2.out"
	check "$m: MAC change: the client gets >= $MIN_FRACTION of $N2 echoes back intact" [ $st = 0 ]
	wait "$pb"
	b=$(valid_of "$WORKDIR/$m-b2.out")
	log "$m: server B: $(tail -1 "$WORKDIR/$m-b2.out")"
	check "$m: MAC change: server B got the stream" at_least "$b" 1
	check "$m: MAC change: ferryd sends to the new MAC $mac (log)" \
		grep -qE "next hop 198\.18\.9\.9: neighbour known: .* mac $mac" "$FERRYD_LOG"
	check "$m: MAC change: ferryd was not restarted" ferryd_alive
}

# Phase 3: no neighbour entry for B; a new session's first datagrams wait, then go.
phase_held() {
	local m=$1 mark st
	ip -n "$NS_PX" neigh flush dev px-s2
	# Let ferryd read the removal (it drains notifications at least every 100 ms).
	sleep 0.5
	mark=$(wc -l <"$FERRYD_LOG")
	start_server "$NS_SRVB" "$WORKDIR/$m-b3.out" "$N3" 10
	local pb=$SRV_PID
	sleep 0.3
	# A new socket, so a new source port: a brand-new session.
	start_client "$WORKDIR/$m-c3.out" "$N3"
	local pc=$CLI_PID
	wait "$pc"
	st=$?
	cat "$WORKDIR/$m-c3.out"
	check "$m: new session after a neighbour flush: every datagram and echo delivered" [ $st = 0 ]
	wait "$pb"
	st=$?
	check "$m: new session after a neighbour flush: server B got all $N3" [ $st = 0 ]
	check "$m: new session after a neighbour flush: the first datagrams were held, then sent (log)" \
		log_since "$mark" "next hop 198\.18\.9\.9: [0-9]+ held frames sent"
	check "$m: new session after a neighbour flush: ferryd was not restarted" ferryd_alive
	if [ "$FAILED" != 0 ]; then
		log "$m: ferryd's next-hop log since the flush:"
		tail -n +"$((mark + 1))" "$FERRYD_LOG" | head -60 | sed 's/^/  | /' >&2
	fi
}

run_mode() { # MODE NEW-MAC-OF-B
	local mode=$1 st pin_dir
	# A fresh start: the route via A, no neighbours known.
	ip -n "$NS_PX" route replace 198.18.9.9/32 via 198.18.2.2 dev px-s || return 1
	ip -n "$NS_PX" neigh flush all
	write_config "$mode"
	check "$mode: config validates" "$FERRYD" -c "$WORKDIR/ferry.yaml" --check
	FERRYD_LOG=$WORKDIR/ferryd-$mode.log
	start_ferryd "$WORKDIR/ferry.yaml" "$FERRYD_LOG" || {
		check "$mode: ferryd starts" false
		return 1
	}
	check "$mode: ferryd starts" true
	if [ "$mode" = skb ]; then
		check "$mode: attached in skb mode" grep -q "attached in skb mode" "$FERRYD_LOG"
	else
		check "$mode: attached in native mode" grep -q "attached in native mode" "$FERRYD_LOG"
	fi
	pin_dir=/proc/$FERRYD_PID/root/sys/fs/bpf/ferry

	phase_route_switch "$mode"
	phase_mac_change "$mode" "$2"
	phase_held "$mode"

	sleep 1.5 # ferryd publishes its counters once a second
	"$FERRYCTL" -p "$pin_dir" stats --json >"$WORKDIR/stats.json"
	"$FERRYCTL" -p "$pin_dir" stats
	check "$mode: no datagram dropped for want of a neighbour" \
		[ "$(counter '.datapath.drops.no_neighbour // 0')" = 0 ]
	check "$mode: no datagram dropped for want of a route" \
		[ "$(counter '.datapath.drops.no_route // 0')" = 0 ]
	stop_ferryd
	st=$?
	check "$mode: ferryd exits 0 on SIGTERM" [ $st = 0 ]
	check "$mode: every UMEM frame accounted for at stop" \
		grep -q "frame accounting holds" "$FERRYD_LOG"
	for dev in px-c px-s px-s2; do
		check "$mode: no XDP program left on $dev" eval "! xdp_attached $NS_PX $dev"
	done
}

require_root "test_nexthop" || { echo "nexthop: 0 passed, 1 failed"; exit 1; }
for tool in "$FERRYD" "$FERRYCTL" "$UDPPROBE"; do
	[ -x "$tool" ] || { echo "FAIL: $tool is not built"; echo "nexthop: 0 passed, 1 failed"; exit 1; }
done
nh_topo_up || { echo "FAIL: topology"; echo "nexthop: 0 passed, 1 failed"; exit 1; }
run_mode native 02:fe:00:00:04:02
run_mode skb 02:fe:00:00:04:03
summary nexthop
