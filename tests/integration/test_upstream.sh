#!/bin/bash
# Sharing an upstream, in native and in generic (skb) XDP mode:
# - two UDP flows (ports 5000 and 5001) forward to the same upstream, so
#   their reply rules are identical: both clients still get every echo, each
#   flow's datapath counters count its own replies, and an ICMP port
#   unreachable about flow two's session reaches flow two's client (issue
#   10, item 2);
# - with the default nat.ports, the proxy host's own UDP and TCP exchanges
#   with that upstream (same address and port as ferry's sessions) work
#   while ferry forwards: ferry does not take their replies (item 3);
# - a forged "reply" (upstream address and port, to a live session's NAT
#   port) sent from the client side is not forwarded: the reply rules are
#   bound to the upstream's interface, and XDP passes it to the kernel,
#   counted in the client interface's `passed` (item 9);
# - a flow's packets with an IPv4 source-route option are dropped and
#   counted in dropped_source_route (item 9).
# Then, once: ferryd refuses at start a nat.ports that overlaps the
# namespace's net.ipv4.ip_local_port_range, or that holds a port a socket of
# the host is bound to (UDP) or listens on (TCP), naming each (item 3).
. "$(dirname "$0")/../lib.sh"
trap ns_cleanup EXIT

PKTINJECT=$BUILD/tests/pktinject
UDPERR=$BUILD/tests/udperr
N=${FERRY_TEST_DATAGRAMS:-1000}
M=200 # datagrams of the host's own exchange
K=5   # forged or source-routed frames

write_config() { # MODE PIN_PATH: no nat section, so nat.ports is the default
	cat >"$WORKDIR/ferry.yaml" <<-YAML
	pin_path: $2
	interfaces:
	  - name: px-c
	    xdp_mode: $1
	  - name: px-s
	    xdp_mode: $1
	flows:
	  - name: one
	    match: {protocol: udp, destination: 198.18.1.1/32, port: 5000}
	    services:
	      - forward: {upstream: "198.18.2.2:6000"}
	  - name: two
	    match: {protocol: udp, destination: 198.18.1.1/32, port: 5001}
	    services:
	      - forward: {upstream: "198.18.2.2:6000"}
	  - name: web
	    match: {protocol: tcp, destination: 198.18.1.1/32, port: 5002}
	    services:
	      - forward: {upstream: "198.18.2.2:6002"}
	YAML
}

stats() { "$FERRYCTL" -p "$PIN" stats --json >"$WORKDIR/stats.json"; }
counter() { # FLOW JSON-PATH
	jq -r ".flows[] | select(.name == \"$1\") | $2" "$WORKDIR/stats.json"
}
iface_counter() { # IFACE FIELD
	jq -r ".interfaces[] | select(.name == \"$1\") | .$2" "$WORKDIR/stats.json"
}

# Both flows at once, to the one upstream: every echo back to each client.
two_flows() { # MODE
	local mode=$1 st1 st2 st
	in_srv "$UDPPROBE" server --listen 198.18.2.2:6000 --expect-src 198.18.2.1/32 \
		--expect-sport 61000-65535 --count $((2 * N)) --timeout 30 --per-sender \
		>"$WORKDIR/server.out" 2>&1 &
	local srv=$!
	track_pid $srv
	wait_for grep -q "listening on" "$WORKDIR/server.out"
	in_cli "$UDPPROBE" client --to 198.18.1.1:5000 --count "$N" --rate 2000 --timeout 10 \
		>"$WORKDIR/client1.out" 2>&1 &
	local c1=$!
	track_pid $c1
	in_cli "$UDPPROBE" client --to 198.18.1.1:5001 --count "$N" --rate 2000 --timeout 10 \
		>"$WORKDIR/client2.out" 2>&1
	st2=$?
	wait $c1
	st1=$?
	wait $srv
	st=$?
	cat "$WORKDIR/client1.out" "$WORKDIR/client2.out" "$WORKDIR/server.out"
	check "$mode: flow one's client gets every echo" [ $st1 = 0 ]
	check "$mode: flow two's client gets every echo (same upstream)" [ $st2 = 0 ]
	check "$mode: the upstream got both streams from default NAT ports" [ $st = 0 ]
	NAT_PORTS=$(sed -nE 's/^udpprobe server: sender 198\.18\.2\.1:([0-9]+) .*/\1/p' \
		"$WORKDIR/server.out")
	sleep 1.5 # ferryd publishes its counters once a second
	stats
	check "$mode: flow one's datapath sent its N replies" [ "$(counter one .datapath.reply_packets)" = "$N" ]
	check "$mode: flow two's datapath sent its N replies" [ "$(counter two .datapath.reply_packets)" = "$N" ]
	check "$mode: flow two's replies are counted on flow two" [ "$(counter two .datapath.rx_packets)" = $((2 * N)) ]
	check "$mode: no drop on flow one" [ "$(counter one '.datapath.drops | length')" = 0 ]
	check "$mode: no drop on flow two" [ "$(counter two '.datapath.drops | length')" = 0 ]
	# XDP counts a reply it hands to the workers on the flow whose reply rule
	# matched first (ferryctl(8), COUNTERS); one it forwards itself (an offloaded session) on
	# the session's flow.
	check "$mode: XDP counted every reply once" \
		[ $(($(counter one .steering.reply_packets) + $(counter two .steering.reply_packets))) = $((2 * N)) ]
	check "$mode: XDP counted the replies it did not forward itself on the first rule's flow" \
		[ "$(counter two .steering.reply_packets)" = "$(counter two .steering.offloaded_reply)" ]
}

# Nothing listens on the upstream's port now: its ICMP error about flow two's
# session matches flow one's reply rule, and must still reach flow two's client.
icmp_second_flow() { # MODE
	check "$1: flow two's client gets the ICMP error about its session" \
		in_cli timeout 30 "$UDPERR" --to 198.18.1.1:5001 --expect-from 198.18.1.1 --tries 10 \
		--timeout 20
}

host_tcp() {
	in_srv timeout 10 nc -l 198.18.2.2 6002 >"$WORKDIR/tcp.out" &
	local srv=$!
	track_pid $srv
	sleep 0.3
	echo "the host's own" | in_px timeout 5 nc -N -w 3 198.18.2.2 6002 || return 1
	wait $srv
	grep -q "the host's own" "$WORKDIR/tcp.out"
}

# The proxy host talks to the upstream itself while a client's stream goes through ferry.
host_traffic() { # MODE
	local mode=$1 st_cli st_host st
	in_srv "$UDPPROBE" server --listen 198.18.2.2:6000 --expect-src 198.18.2.1/32 \
		--count $((N + M)) --timeout 30 >"$WORKDIR/server2.out" 2>&1 &
	local srv=$!
	track_pid $srv
	wait_for grep -q "listening on" "$WORKDIR/server2.out"
	in_cli "$UDPPROBE" client --to 198.18.1.1:5000 --count "$N" --rate 1000 --timeout 10 \
		>"$WORKDIR/client3.out" 2>&1 &
	local c=$!
	track_pid $c
	in_px "$UDPPROBE" client --to 198.18.2.2:6000 --count "$M" --rate 200 --timeout 5 \
		>"$WORKDIR/host.out" 2>&1
	st_host=$?
	wait $c
	st_cli=$?
	wait $srv
	st=$?
	cat "$WORKDIR/host.out" "$WORKDIR/client3.out"
	check "$mode: the host's own UDP exchange with the upstream gets every echo" [ $st_host = 0 ]
	check "$mode: the client's stream through ferry at the same time gets every echo" [ $st_cli = 0 ]
	check "$mode: the upstream got both" [ $st = 0 ]
	check "$mode: the host's own TCP connection to the upstream works" host_tcp
}

# From the client side: "replies" from the upstream to each live NAT port.
forged_replies() { # MODE
	local mode=$1 before_one before_two before_steer before_passed p
	sleep 1.5 # the last stream's counters published first
	stats
	before_one=$(counter one .datapath.reply_packets)
	before_two=$(counter two .datapath.reply_packets)
	before_steer=$(( $(counter one .steering.reply_packets) + $(counter two .steering.reply_packets) ))
	before_passed=$(iface_counter px-c passed)
	for p in $NAT_PORTS; do
		in_cli "$PKTINJECT" --dev cli0 --dst-mac "$PX_MAC" --case ok --count $K \
			--src4 198.18.2.2 --dst4 198.18.2.1 --udp-sport 6000 --udp-port "$p" >/dev/null
	done
	sleep 1.5
	stats
	check "$mode: two live NAT ports to forge replies to" [ "$(wc -w <<<"$NAT_PORTS")" = 2 ]
	check "$mode: forged replies from the client side are not forwarded" \
		[ "$(counter one .datapath.reply_packets)" = "$before_one" -a \
		"$(counter two .datapath.reply_packets)" = "$before_two" ]
	check "$mode: no reply rule matched them" \
		[ $(( $(counter one .steering.reply_packets) + $(counter two .steering.reply_packets) )) = "$before_steer" ]
	check "$mode: XDP passed them to the kernel, counted on px-c" \
		[ $(( $(iface_counter px-c passed) - before_passed )) -ge $((2 * K)) ]
}

source_route() { # MODE
	local mode=$1 before_tx
	sleep 1.5
	stats
	before_tx=$(counter one .datapath.tx_packets)
	in_cli "$PKTINJECT" --dev cli0 --dst-mac "$PX_MAC" --case ipv4-lsrr --count $K \
		--udp-port 5000 >/dev/null
	in_cli "$PKTINJECT" --dev cli0 --dst-mac "$PX_MAC" --case ipv4-ssrr --count $K \
		--udp-port 5000 >/dev/null
	sleep 1.5
	stats
	check "$mode: source-routed packets of a flow dropped, counted in dropped_source_route" \
		[ "$(counter one .steering.dropped_source_route)" = $((2 * K)) ]
	check "$mode: ... and in px-c's dropped_policy" [ "$(iface_counter px-c dropped_policy)" = $((2 * K)) ]
	check "$mode: ... and not forwarded" [ "$(counter one .datapath.tx_packets)" = "$before_tx" ]
}

run_mode() { # MODE
	local mode=$1
	PIN=$WORKDIR/bpffs/ferry-$mode
	write_config "$mode" "$PIN"
	start_ferryd "$WORKDIR/ferry.yaml" "$WORKDIR/ferryd-$mode.log" || {
		check "$mode: ferryd starts" false
		return 1
	}
	check "$mode: ferryd starts with the default nat.ports" true
	two_flows "$mode"
	icmp_second_flow "$mode"
	host_traffic "$mode"
	forged_replies "$mode"
	source_route "$mode"
	"$FERRYCTL" -p "$PIN" stats
	stop_ferryd
	check "$mode: ferryd exits 0 on SIGTERM" [ $? = 0 ]
	check "$mode: every UMEM frame accounted for at stop" \
		grep -q "frame accounting holds" "$WORKDIR/ferryd-$mode.log"
}

# ferryd must refuse to start: exit 1 (not killed by the timeout) with MESSAGE in its log.
refuses() { # LOG MESSAGE...
	local log=$1 st
	shift
	ip netns exec "$NS_PX" timeout 20 "$FERRYD" -c "$WORKDIR/refuse.yaml" >"$log" 2>&1
	st=$?
	sed 's/^/  | /' "$log"
	[ $st != 0 ] && [ $st != 124 ] || return 1
	for m in "$@"; do
		grep -qF -- "$m" "$log" || return 1
	done
}

refusals() {
	cat >"$WORKDIR/refuse.yaml" <<-YAML
	pin_path: $WORKDIR/bpffs/ferry-refuse
	interfaces:
	  - name: px-c
	  - name: px-s
	nat:
	  ports: 50500-51000
	flows:
	  - name: one
	    match: {protocol: udp, destination: 198.18.1.1/32, port: 5000}
	    services:
	      - forward: {upstream: "198.18.2.2:6000"}
	YAML
	check "ferryd refuses nat.ports overlapping ip_local_port_range" refuses "$WORKDIR/refuse1.log" \
		"refuse.yaml:6:10: nat.ports: range 50500-51000 overlaps this host's local port range 50000-60999"

	# A UDP socket and a TCP listener of the host inside the default range.
	in_px timeout 30 nc -u -l 198.18.2.1 62000 </dev/null >/dev/null 2>&1 &
	track_pid $!
	in_px timeout 30 nc -l 198.18.2.1 63000 </dev/null >/dev/null 2>&1 &
	track_pid $!
	wait_for eval "in_px ss -Hunl | grep -q ':62000 ' && in_px ss -Htnl | grep -q ':63000 '"
	cat >"$WORKDIR/refuse.yaml" <<-YAML
	pin_path: $WORKDIR/bpffs/ferry-refuse
	interfaces:
	  - name: px-c
	  - name: px-s
	flows:
	  - name: one
	    match: {protocol: udp, destination: 198.18.1.1/32, port: 5000}
	    services:
	      - forward: {upstream: "198.18.2.2:6000"}
	  - name: web
	    match: {protocol: tcp, destination: 198.18.1.1/32, port: 5002}
	    services:
	      - forward: {upstream: "198.18.2.2:6002"}
	YAML
	check "ferryd refuses nat.ports holding the host's UDP and TCP ports" refuses "$WORKDIR/refuse2.log" \
		"nat.ports: range 61000-65535 contains UDP port 62000, which a socket of this host is bound to" \
		"nat.ports: range 61000-65535 contains TCP port 63000, which a socket of this host listens on"
	check "no XDP program left on px-c after the refusals" eval "! xdp_attached $NS_PX px-c"
}

require_root "test_upstream" || { echo "upstream: 0 passed, 1 failed"; exit 1; }
for tool in "$PKTINJECT" "$UDPERR"; do
	[ -x "$tool" ] || { echo "FAIL: $tool not built"; echo "upstream: 0 passed, 1 failed"; exit 1; }
done
topo_up || { echo "FAIL: topology"; echo "upstream: 0 passed, 1 failed"; exit 1; }
PX_MAC=$(ip -n "$NS_PX" -br link show px-c | awk '{print $3}')
in_cli ip neigh replace 198.18.1.1 lladdr "$PX_MAC" dev cli0
# Two streams start at once: with the proxy's neighbours known, none of
# their first packets waits in (or overflows) the next-hop hold queue.
in_px ping -c 1 -W 1 198.18.1.2 >/dev/null
in_px ping -c 1 -W 1 198.18.2.2 >/dev/null
mkdir -p "$WORKDIR/bpffs"
mount -t bpf bpf "$WORKDIR/bpffs" || { echo "FAIL: bpffs"; echo "upstream: 0 passed, 1 failed"; exit 1; }
on_cleanup "umount '$WORKDIR/bpffs'"

run_mode native
run_mode skb
refusals
summary upstream
