#!/bin/bash
# Exhaustion by spoofed sources, in native and in generic (skb) XDP mode.
# A bounded flood (packets and seconds) of UDP datagrams and bare SYNs from
# every address of 198.19.0.0/16, each a new tuple, plus one spoofed source
# opening thousands of sessions, goes into the flows while a legitimate
# client keeps opening new sessions (a new source port each round) and
# exchanging echoes.  The upstream answers everything, as an open resolver
# would, so the flood's sessions get replies too; the proxy routes
# 198.19.0.0/16 back through the client namespace, which blackholes it, so
# no reply leaves the test's namespaces.
#
# With a session table of 2048, the flood fills it within a fraction of a
# second.  The legitimate rounds must still succeed (early drop of sessions
# that are neither assured UDP streams nor established connections), the
# single heavy source must meet nat.max_sessions_per_source, the clients'
# next hops must be looked up off the packet path (nh_lookups counted, the
# known gateway shared), and a stream through a session opened before the
# flood must keep flowing: the worker keeps its loop going.
#
# Then the blind way around early drop: every tuple of a spoofed set
# (ASSURED_SET sources, nearly the table's early-drop mark) is sent
# ASSURED_PASSES times, 2.2 s apart, so that the sessions the upstream
# answered carry a client packet 2 s after their creation and are assured,
# not droppable.  A second after the last pass, new legitimate sessions
# must still get their echoes (early drop takes what is droppable, else
# the idlest assured UDP session of its sample, idle for a second).  A
# table made wholly of assured sessions takes a spoofer many more passes
# than a bounded test affords: above the mark every new tuple evicts an
# unassured one, so a larger set churns instead of settling; the unit
# test nat_guard "early drop: spoofed tuples sent twice ..." starts from
# that full table.  Afterwards
# ferryd still forwards, exits 0 and its frame accounting holds.
. "$(dirname "$0")/../lib.sh"
trap ns_cleanup EXIT

PKTINJECT=$BUILD/tests/pktinject
MAX_SESSIONS=2048
PER_SOURCE=100
ROUNDS=40
NEED=36          # legitimate rounds that must succeed (90%)
UDP_FLOOD=40000  # datagrams at 8000/s: 5 s
SYN_FLOOD=15000  # SYNs at 3000/s: 5 s
HEAVY=3000       # from one spoofed address, at 1000/s
ASSURED_SET=1800 # spoofed tuples, at 3000/s: 0.6 s a pass
ASSURED_PASSES=3 # each sent 3 times, 2.2 s apart
ASSURED_ROUNDS=10
ASSURED_NEED=9

write_config() { # MODE
	cat >"$WORKDIR/ferry.yaml" <<-YAML
	interfaces:
	  - name: px-c
	    xdp_mode: $1
	  - name: px-s
	    xdp_mode: $1
	nat:
	  ports: 10000-29999
	  max_sessions: $MAX_SESSIONS
	  max_sessions_per_source: $PER_SOURCE
	flows:
	  - name: echo
	    match: {protocol: udp, destination: 198.18.1.1/32, port: 5000}
	    services:
	      - forward: {upstream: "198.18.2.2:6000"}
	  - name: syn
	    match: {protocol: tcp, destination: 198.18.1.1/32, port: 5002}
	    services:
	      - forward: {upstream: "198.18.2.2:6002"}
	  - name: steady
	    match: {protocol: udp, destination: 198.18.1.1/32, port: 5100}
	    services:
	      - forward: {upstream: "198.18.2.2:6100"}
	YAML
}

stats() {
	"$FERRYCTL" -p "/proc/$FERRYD_PID/root/sys/fs/bpf/ferry" stats --json >"$WORKDIR/stats.json" &&
		[ -s "$WORKDIR/stats.json" ]
}
counter() { jq -r ".flows[] | select(.name == \"$1\") | $2 // 0" "$WORKDIR/stats.json"; }

# flood NAME ARGS...: pktinject from the client's interface into px-c, in the background.
flood() {
	local name=$1
	shift
	in_cli "$PKTINJECT" --dev cli0 --dst-mac "$PXC_MAC" "$@" >"$WORKDIR/flood-$name.out" 2>&1 &
	FLOODS+=($!)
	track_pid $!
}

# round N: a new session (new source port) with four echoes; half must come back.
round() {
	in_cli "$UDPPROBE" client --to 198.18.1.1:5000 --count 4 --rate 200 --timeout 1 \
		--min-fraction 0.5 >>"$WORKDIR/rounds.out" 2>&1
}

run_mode() { # MODE
	local mode=$1 ok=0 before=0 st steady_cli steady_srv
	FLOODS=()
	write_config "$mode"
	start_ferryd "$WORKDIR/ferry.yaml" "$WORKDIR/ferryd-$mode.log" || {
		check "$mode: ferryd starts" false
		return
	}
	check "$mode: ferryd starts" true

	# A stream through a session opened before the flood (and assured by
	# then, 2 s on): 200/s for 10 s, 90% of it echoed.
	in_srv "$UDPPROBE" server --listen 198.18.2.2:6100 --expect-src 198.18.2.1/32 \
		--count 2000 --any-count --timeout 40 >"$WORKDIR/steady-server.out" 2>&1 &
	steady_srv=$!
	track_pid $steady_srv
	wait_for grep -q "listening on" "$WORKDIR/steady-server.out"
	in_cli "$UDPPROBE" client --to 198.18.1.1:5100 --bind 198.18.1.2:45100 --count 2000 \
		--rate 200 --timeout 5 --min-fraction 0.9 >"$WORKDIR/steady-client.out" 2>&1 &
	steady_cli=$!
	track_pid $steady_cli
	for r in 1 2 3; do round && before=$((before + 1)); done
	check "$mode: before the flood, new sessions get their echoes" [ $before = 3 ]
	sleep 2.5

	flood udp --case ok --udp-port 5000 --src4 198.19.0.0 --vary-src 65536 --vary-sport \
		--rate 8000 --count $UDP_FLOOD
	flood syn --case tcp-syn --tcp-port 5002 --src4 198.19.0.0 --vary-src 65536 \
		--vary-sport --rate 3000 --count $SYN_FLOOD
	flood heavy --case ok --udp-port 5000 --src4 198.19.255.254 --vary-sport --rate 1000 \
		--count $HEAVY
	sleep 0.5
	for r in $(seq $ROUNDS); do
		round && ok=$((ok + 1))
	done
	st=0
	for p in "${FLOODS[@]}"; do wait "$p" || st=1; done
	cat "$WORKDIR"/flood-*.out
	check "$mode: every flood frame was sent" [ $st = 0 ]
	log "$mode: legitimate rounds during the flood: $ok of $ROUNDS got their echoes"
	check "$mode: at least $NEED of $ROUNDS new legitimate sessions exchange echoes" \
		[ "$ok" -ge $NEED ]
	wait $steady_cli
	st=$?
	cat "$WORKDIR/steady-client.out"
	check "$mode: a stream opened before the flood keeps flowing (90% echoed)" [ $st = 0 ]
	kill $steady_srv 2>/dev/null
	wait $steady_srv

	sleep 1
	stats
	"$FERRYCTL" -p "/proc/$FERRYD_PID/root/sys/fs/bpf/ferry" stats
	log "$mode: echo: created $(counter echo .datapath.sessions_created)," \
		"early dropped $(counter echo .datapath.sessions_early_dropped)," \
		"nh_lookups $(counter echo .datapath.nh_lookups)," \
		"drops $(counter echo .datapath.drops)"
	check "$mode: the flood's sessions were early-dropped (sessions_early_dropped)" \
		[ "$(counter echo .datapath.sessions_early_dropped)" -gt 1000 ]
	check "$mode: the SYN flood's sessions too" \
		[ "$(counter syn .datapath.sessions_early_dropped)" -gt 100 ]
	check "$mode: the heavy source met its limit (drop source_session_limit)" \
		[ "$(counter echo .datapath.drops.source_session_limit)" -gt 0 ]
	check "$mode: clients' next hops were looked up off the packet path (nh_lookups)" \
		[ "$(counter echo .datapath.nh_lookups)" -gt 0 ]
	check "$mode: live sessions within the table" \
		[ "$(jq '[.flows[].datapath | .sessions_created - .sessions_expired -
			.sessions_early_dropped] | add' "$WORKDIR/stats.json")" -le $MAX_SESSIONS ]

	# Spoofed tuples sent again and again, 2.2 s apart: assured sessions fill the table.
	local dropped_before full_before replies_before i
	dropped_before=$(counter echo .datapath.sessions_early_dropped)
	replies_before=$(counter echo .datapath.reply_packets)
	FLOODS=()
	st=0
	for i in $(seq $ASSURED_PASSES); do
		[ $i = 1 ] || sleep 2.2
		flood assured$i --case ok --udp-port 5000 --src4 198.19.128.0 --udp-sport 2000 \
			--vary-src $ASSURED_SET --rate 3000 --count $ASSURED_SET
		wait "${FLOODS[-1]}" || st=1
	done
	sleep 1
	stats
	log "$mode: spoofed passes: replies $replies_before -> $(counter echo .datapath.reply_packets)," \
		"created $(counter echo .datapath.sessions_created)," \
		"early dropped $dropped_before -> $(counter echo .datapath.sessions_early_dropped)"
	full_before=$(counter echo .datapath.drops.session_table_full)
	ok=0
	for r in $(seq $ASSURED_ROUNDS); do
		round && ok=$((ok + 1))
	done
	stats
	log "$mode: after spoofed tuples sent $ASSURED_PASSES times: $ok of $ASSURED_ROUNDS rounds got echoes," \
		"session_table_full $full_before -> $(counter echo .datapath.drops.session_table_full)," \
		"early dropped $dropped_before -> $(counter echo .datapath.sessions_early_dropped)"
	check "$mode: every frame of the spoofed passes was sent" [ $st = 0 ]
	check "$mode: $ASSURED_NEED of $ASSURED_ROUNDS new sessions get echoes among assured spoofed ones" \
		[ "$ok" -ge $ASSURED_NEED ]

	stop_ferryd
	check "$mode: ferryd exits 0 on SIGTERM" [ $? = 0 ]
	check "$mode: frame accounting holds" grep -q "frame accounting holds" \
		"$WORKDIR/ferryd-$mode.log"
	check "$mode: no XDP program left on px-c" eval "! xdp_attached $NS_PX px-c"
}

require_root "test_flood" || { echo "flood: 0 passed, 1 failed"; exit 1; }
for tool in jq; do
	command -v $tool >/dev/null || { echo "FAIL: $tool is missing"; echo "flood: 0 passed, 1 failed"; exit 1; }
done
[ -x "$PKTINJECT" ] && [ -x "$UDPPROBE" ] || {
	echo "FAIL: build the test tools first"
	echo "flood: 0 passed, 1 failed"
	exit 1
}
topo_up || { echo "FAIL: topology"; echo "flood: 0 passed, 1 failed"; exit 1; }
# Replies to the spoofed /16 go back through the client namespace, which drops them.
in_px ip route add 198.19.0.0/16 via 198.18.1.2 dev px-c
in_cli ip route add blackhole 198.19.0.0/16
in_cli sysctl -qw net.ipv4.ip_forward=0
PXC_MAC=$(ip -n "$NS_PX" -j link show dev px-c | jq -r '.[0].address')
# The upstream answers everything, valid probe or not, as an open resolver would.
in_srv "$UDPPROBE" server --listen 198.18.2.2:6000 --echo-any --count 1000000 --any-count \
	--timeout 300 >"$WORKDIR/echo-server.out" 2>"$WORKDIR/echo-server.err" &
track_pid $!

run_mode native
run_mode skb
summary flood
