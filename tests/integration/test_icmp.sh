#!/bin/bash
# ICMP errors about NAT sessions, end to end, in native and in generic (skb)
# XDP mode.  ferryd forwards UDP 198.18.1.1:5000 -> 198.18.2.2:6000 and
# [fd00:1::1]:5000 -> [fd00:2::2]:6000, and nothing listens on the server:
# the server's kernel answers ferry's packets with port unreachable, ferry
# translates it, and the client's connected socket gets ECONNREFUSED from
# the flow address, about its own packet.  Ping to the proxy and errors
# about the proxy's own traffic stay with the kernel.
. "$(dirname "$0")/../lib.sh"
trap ns_cleanup EXIT

UDPERR=$BUILD/tests/udperr

write_config() { # MODE
	cat >"$WORKDIR/ferry.yaml" <<-YAML
	interfaces:
	  - name: px-c
	    xdp_mode: $1
	  - name: px-s
	    xdp_mode: $1
	nat:
	  ports: 40000-40999
	flows:
	  - name: icmp4
	    match:
	      protocol: udp
	      destination: 198.18.1.1/32
	      port: 5000
	    services:
	      - forward:
	          upstream: 198.18.2.2:6000
	  - name: icmp6
	    match:
	      protocol: udp
	      destination: fd00:1::1/128
	      port: 5000
	    services:
	      - forward:
	          upstream: "[fd00:2::2]:6000"
	YAML
}

# ferryctl's view of flow NAME: counter JSON-PATH.
counter() { # NAME JSON-PATH
	jq -r ".flows[] | select(.name == \"$1\") | $2" "$WORKDIR/stats.json"
}

# A field of a per-CPU pinned map, summed over the CPUs.  ferryctl does not
# print the ICMP fields, bpftool does (by name, from BTF).
map_sum() { # MAP FLOW_ID FIELD
	in_px timeout 10 bpftool map lookup pinned "$PIN_DIR/$1" key "$2" 0 0 0 |
		jq "[.values[].value.$3] | add"
}

run_mode() { # MODE
	local mode=$1 st
	write_config "$mode"
	check "$mode: config validates" "$FERRYD" -c "$WORKDIR/ferry.yaml" --check
	start_ferryd "$WORKDIR/ferry.yaml" "$WORKDIR/ferryd-$mode.log" || {
		check "$mode: ferryd starts" false
		return 1
	}
	check "$mode: ferryd starts" true
	if [ "$mode" = skb ]; then
		check "$mode: attached in skb mode" grep -q "attached in skb mode" "$WORKDIR/ferryd-$mode.log"
	else
		check "$mode: attached in native mode" grep -q "attached in native mode" "$WORKDIR/ferryd-$mode.log"
	fi
	PIN_DIR=/proc/$FERRYD_PID/root/sys/fs/bpf/ferry

	check "$mode: IPv4 client gets ECONNREFUSED from the flow address" \
		in_cli timeout 30 "$UDPERR" --to 198.18.1.1:5000 --expect-from 198.18.1.1 --tries 10 --timeout 20
	check "$mode: IPv6 client gets ECONNREFUSED from the flow address" \
		in_cli timeout 30 "$UDPERR" --to "[fd00:1::1]:5000" --expect-from fd00:1::1 --tries 10 --timeout 20
	# A second socket of each family, on sessions of their own.
	check "$mode: again, IPv4" \
		in_cli timeout 30 "$UDPERR" --to 198.18.1.1:5000 --expect-from 198.18.1.1 --tries 10 --timeout 20
	check "$mode: again, IPv6" \
		in_cli timeout 30 "$UDPERR" --to "[fd00:1::1]:5000" --expect-from fd00:1::1 --tries 10 --timeout 20
	check "$mode: ping to the proxy goes through the kernel" \
		in_cli timeout 20 ping -c 3 -i 0.2 -W 2 198.18.1.1
	check "$mode: ping6 to the proxy goes through the kernel" \
		in_cli timeout 20 ping -6 -c 3 -i 0.2 -W 2 fd00:1::1
	# The proxy's own traffic, from a port outside the NAT range: the kernel's error.
	check "$mode: errors about the proxy's own traffic reach its kernel" \
		in_px timeout 30 "$UDPERR" --to 198.18.2.2:6000 --bind 198.18.2.1:39999 \
		--expect-from 198.18.2.2 --tries 10 --timeout 20
	check "$mode: same for IPv6" \
		in_px timeout 30 "$UDPERR" --to "[fd00:2::2]:6000" --bind "[fd00:2::1]:39999" \
		--expect-from fd00:2::2 --tries 10 --timeout 20

	sleep 1.5 # ferryd publishes its counters once a second
	"$FERRYCTL" -p "$PIN_DIR" stats --json >"$WORKDIR/stats.json"
	check "$mode: ferryctl reads the counters" [ -s "$WORKDIR/stats.json" ]
	"$FERRYCTL" -p "$PIN_DIR" stats
	local f id xdp_icmp translated
	for f in icmp4 icmp6; do
		id=$(counter $f .id)
		xdp_icmp=$(map_sum ferry_flow_stats "$id" icmp_errors)
		translated=$(map_sum ferry_fwd_stats "$id" icmp_translated)
		log "$mode: flow $f: XDP steered $xdp_icmp ICMP errors, workers translated $translated"
		check "$mode: $f: XDP steered ICMP errors" [ "${xdp_icmp:-0}" -ge 2 ]
		check "$mode: $f: workers translated every one" [ "$translated" = "$xdp_icmp" ]
		check "$mode: $f: each went back to the client" \
			[ "$(counter $f .datapath.reply_packets)" = "$translated" ]
		check "$mode: $f: all replies were errors" \
			[ "$(counter $f .steering.reply_packets)" = "$xdp_icmp" ]
		check "$mode: $f: none without a session" \
			[ "$(counter $f '.datapath.drops.no_session // 0')" = 0 ]
		check "$mode: $f: none malformed" \
			[ "$(counter $f '.datapath.drops.malformed // 0')" = 0 ]
	done

	stop_ferryd
	st=$?
	check "$mode: ferryd exits 0 on SIGTERM" [ $st = 0 ]
	check "$mode: every UMEM frame accounted for at stop" \
		grep -q "frame accounting holds" "$WORKDIR/ferryd-$mode.log"
	check "$mode: no XDP program left on px-c" eval "! xdp_attached $NS_PX px-c"
	check "$mode: no XDP program left on px-s" eval "! xdp_attached $NS_PX px-s"
}

require_root "test_icmp" || { echo "icmp: 0 passed, 1 failed"; exit 1; }
[ -x "$UDPERR" ] || { log "FAIL: $UDPERR is not built (make build/tests/udperr)"; echo "icmp: 0 passed, 1 failed"; exit 1; }
topo_up || { echo "FAIL: topology"; echo "icmp: 0 passed, 1 failed"; exit 1; }
# The server's kernel must answer every probe: no per-peer ICMP rate limit there.
in_srv sysctl -qw net.ipv4.icmp_ratelimit=0 net.ipv6.icmp.ratelimit=0
run_mode native
run_mode skb
summary icmp
