#!/bin/bash
# The XDP fast path (offload) as a user sees it, in native and in generic
# (skb) XDP mode.  In native mode the end hosts' veths have GRO on, so that
# the proxy's veths take XDP redirects (a veth does only while its peer runs
# XDP or has GRO on); in skb mode GRO is off, as redirects need nothing there.
#   1. a UDP stream arrives byte for byte both ways, >= 95% of its packets
#      forwarded in XDP, and the folded counters equal what was sent;
#   2. iperf3 TCP (v4) and curl downloads (v4, v6, sha256) with >= 90% of the
#      flow's packets in XDP, handshake and close in user space, and the
#      sessions expire after the close;
#   3. the route to an upstream moves mid-stream: the stream goes on by the
#      new interface, from XDP;
#   4. an offloaded stream outlives nat.udp_timeout while it flows and expires
#      once idle;
#   5. a reload that adds another flow keeps an offloaded session;
#   6. offload: off, a payload filter and pace keep flows out of XDP, as
#      `ferryctl flows` says;
#   7. with nat.offload_max_sessions: 1, the second session is counted as
#      offload_full and still forwarded completely;
#   8. SIGKILL mid-stream: the offloaded stream keeps flowing; a new ferryd
#      starts on the same pins and a clean stop leaves nothing.
#
#   client ns          proxy ns                                server A ns
#   cli0 198.18.1.2 -- px-c 198.18.1.1 | px-s  198.18.2.1 ---- srv0 198.18.2.2
#        fd00:1::2          fd00:1::1  |       fd00:2::1            fd00:2::2
#                  lo 198.18.8.1 (the  |                            lo 198.18.9.9
#                  nh flow's source)   | px-s2 198.18.4.1 ---- sb0 198.18.4.2
#                                                              server B ns, lo 198.18.9.9
. "$(dirname "$0")/../lib.sh"
trap ns_cleanup EXIT

NS_SRVB=ferry-$RUN_ID-srvb
UDP_TO=3     # nat.udp_timeout (s): check 4
CLOSING_TO=2 # nat.tcp_closing_timeout (s): check 2
BLOB_MIB=8

write_config() { # MODE PIN_PATH [MAX_OFFLOADED [EXTRA_FLOW]]
	cat >"$WORKDIR/ferry.yaml.tmp" <<-YAML
	pin_path: $2
	interfaces:
	  - name: px-c
	    xdp_mode: $1
	  - name: px-s
	    xdp_mode: $1
	  - name: px-s2
	    xdp_mode: $1
	nat:
	  ports: 40000-40999
	  # Small, so that expiry visits every slot on each 100 ms tick.
	  max_sessions: 1024
	  udp_timeout: $UDP_TO
	  tcp_closing_timeout: $CLOSING_TO
	  offload_max_sessions: ${3:-1024}
	flows:
	  - name: udp
	    match: {protocol: udp, destination: 198.18.1.1/32, port: 5000}
	    services: [{forward: {upstream: "198.18.2.2:6000"}}]
	  - name: nh
	    match: {protocol: udp, destination: 198.18.1.1/32, port: 5002}
	    services: [{forward: {upstream: "198.18.9.9:6000", source: 198.18.8.1}}]
	  - name: exp
	    match: {protocol: udp, destination: 198.18.1.1/32, port: 5003}
	    services: [{forward: {upstream: "198.18.2.2:6003"}}]
	  - name: rl
	    match: {protocol: udp, destination: 198.18.1.1/32, port: 5004}
	    services: [{forward: {upstream: "198.18.2.2:6004"}}]
	  - name: off
	    offload: off
	    match: {protocol: udp, destination: 198.18.1.1/32, port: 5005}
	    services: [{forward: {upstream: "198.18.2.2:6005"}}]
	  - name: pay
	    match: {protocol: udp, destination: 198.18.1.1/32, port: 5006}
	    services:
	      - filter:
	          deny: [{payload: {offset: 0, mask: "0xff", value: "0x42"}}]
	          default: allow
	      - forward: {upstream: "198.18.2.2:6006"}
	  - name: paced
	    match: {protocol: udp, destination: 198.18.1.1/32, port: 5007}
	    services:
	      - forward: {upstream: "198.18.2.2:6007"}
	      - pace: {rate_pps: 100000, queue: 512}
	  - name: iperf4
	    match: {protocol: tcp, destination: 198.18.1.1/32, port: 5201}
	    services: [{forward: {upstream: "198.18.2.2:5201"}}]
	  - name: http4
	    match: {protocol: tcp, destination: 198.18.1.1/32, port: 8080}
	    services: [{forward: {upstream: "198.18.2.2:8080"}}]
	  - name: http6
	    match: {protocol: tcp, destination: "fd00:1::1", port: 8080}
	    services: [{forward: {upstream: "[fd00:2::2]:8080"}}]
	YAML
	if [ -n "${4:-}" ]; then
		cat >>"$WORKDIR/ferry.yaml.tmp" <<-YAML
		  - name: extra
		    match: {protocol: udp, destination: 198.18.1.1/32, port: 5010}
		    services: [{forward: {upstream: "198.18.2.2:6010"}}]
		YAML
	fi
	mv "$WORKDIR/ferry.yaml.tmp" "$WORKDIR/ferry.yaml"
}

off_topo_up() {
	topo_up || return 1
	add_ns "$NS_SRVB" || return 1
	ip link add sb0 netns "$NS_SRVB" type veth peer name px-s2 netns "$NS_PX" || return 1
	ip -n "$NS_PX" addr add 198.18.4.1/24 dev px-s2 &&
		ip -n "$NS_PX" addr add 198.18.8.1/32 dev lo &&
		ip -n "$NS_SRV" addr add 198.18.9.9/32 dev lo &&
		ip -n "$NS_SRVB" addr add 198.18.4.2/24 dev sb0 &&
		ip -n "$NS_SRVB" addr add 198.18.9.9/32 dev lo || return 1
	ip -n "$NS_PX" link set px-s2 up && ip -n "$NS_SRVB" link set sb0 up || return 1
	# Both servers answer the nh flow's source through their own link.
	ip -n "$NS_SRV" route add 198.18.8.1/32 via 198.18.2.1 dev srv0 &&
		ip -n "$NS_SRVB" route add 198.18.8.1/32 via 198.18.4.1 dev sb0 || return 1
	ip netns exec "$NS_SRVB" ethtool -K sb0 tx off >/dev/null
}

# gro on|off: on the end hosts' veths, the peers of ferry's interfaces.
gro() {
	in_cli ethtool -K cli0 gro "$1" >/dev/null &&
		in_srv ethtool -K srv0 gro "$1" >/dev/null &&
		ip netns exec "$NS_SRVB" ethtool -K sb0 gro "$1" >/dev/null
}

stats() { "$FERRYCTL" -p "$PIN" stats --json >"$WORKDIR/stats.json.tmp" &&
	mv "$WORKDIR/stats.json.tmp" "$WORKDIR/stats.json"; }
# counter FLOW JQ-PATH: from the last stats().
counter() { jq -r ".flows[] | select(.name == \"$1\") | $2 // 0" "$WORKDIR/stats.json"; }

# settle FLOW JQ-EXPR VALUE: wait (up to 6 s) until the published counters
# say VALUE: ferryd publishes, and folds the fast path's packets in, once a second.
settle() {
	local i
	for i in $(seq 30); do
		stats && [ "$(counter "$1" "$2")" = "$3" ] && return 0
		sleep 0.2
	done
	log "$1: $2 is $(counter "$1" "$2"), not $3"
	return 1
}

# share_at_least FLOW PERCENT: steering.offloaded / steering.packets.
share_at_least() {
	local off pk
	off=$(counter "$1" .steering.offloaded)
	pk=$(counter "$1" .steering.packets)
	log "$1: $off of $pk packets forwarded in XDP"
	[ "$pk" -gt 0 ] && [ $((off * 100)) -ge $((pk * $2)) ]
}

at_least() { [ -n "$1" ] && [ "$1" -ge "$2" ]; }

valid_of() { sed -n 's/.*received \([0-9]*\) valid.*/\1/p' "$1" | tail -1; }

# udp_server NS ADDR:PORT EXPECT-SRC COUNT TIMEOUT OUT: sets SRV_PID.
udp_server() {
	ip netns exec "$1" timeout $(($5 + 10)) "$UDPPROBE" server --listen "$2" \
		--expect-src "$3" --expect-sport 40000-40999 --count "$4" --timeout "$5" \
		>"$6" 2>&1 &
	SRV_PID=$!
	track_pid "$SRV_PID"
}

# udp_client PORT COUNT RATE OUT [ARGS...]: in the background; sets CLI_PID.
udp_client() {
	local port=$1 count=$2 rate=$3 out=$4
	shift 4
	ip netns exec "$NS_CLI" timeout 60 "$UDPPROBE" client --to "198.18.1.1:$port" \
		--count "$count" --rate "$rate" --timeout 10 "$@" >"$out" 2>&1 &
	CLI_PID=$!
	track_pid "$CLI_PID"
}

# 1. A UDP stream, exact both ways, mostly in XDP.
phase_udp() {
	local m=$1 n=3000 st
	udp_server "$NS_SRV" 198.18.2.2:6000 198.18.2.1/32 $n 20 "$WORKDIR/$m-udp-srv.out"
	local srv=$SRV_PID
	sleep 0.3
	# udpprobe checks each echo by its sequence number: reordering is no error.
	check "$m: udp: the client gets all $n echoes back byte for byte" \
		in_cli "$UDPPROBE" client --to 198.18.1.1:5000 --count $n --min-size 16 \
		--max-size 1400 --rate 3000 --timeout 10
	wait $srv
	st=$?
	cat "$WORKDIR/$m-udp-srv.out"
	check "$m: udp: the server got all $n byte for byte from 198.18.2.1:40000-40999" [ $st = 0 ]
	settle udp .steering.packets $((2 * n))
	settle udp '"\(.datapath.tx_packets)/\(.datapath.reply_packets)"' $n/$n
	check "$m: udp: XDP saw 2x$n packets" [ "$(counter udp .steering.packets)" = $((2 * n)) ]
	check "$m: udp: >= 95% of the packets forwarded in XDP" share_at_least udp 95
	check "$m: udp: XDP forwarded replies too" at_least "$(counter udp .steering.offloaded_reply)" 1
	check "$m: udp: datapath tx_packets = $n (fast path folded in)" \
		[ "$(counter udp .datapath.tx_packets)" = $n ]
	check "$m: udp: datapath reply_packets = $n (fast path folded in)" \
		[ "$(counter udp .datapath.reply_packets)" = $n ]
	check "$m: udp: forward's packets_in = the flow's packets" \
		[ "$(counter udp '.services[0].packets_in')" = "$(counter udp .steering.packets)" ]
	check "$m: udp: one session" [ "$(counter udp .datapath.sessions_created)" = 1 ]
	check "$m: udp: sessions_offloaded >= 1" at_least "$(counter udp .datapath.sessions_offloaded)" 1
	check "$m: udp: no drop" [ "$(counter udp '.datapath.drops | length')" = 0 ]
}

download() { # NAME URL
	local out=$WORKDIR/dl-$1 sum
	rm -f "$out"
	in_cli timeout 60 curl -gsS --max-time 60 -o "$out" "$2" || { log "$1: curl failed"; return 1; }
	sum=$(sha256sum <"$out")
	rm -f "$out"
	[ "$sum" = "$BLOB_SUM" ] || { log "$1: sha256 differs"; return 1; }
}

iperf3_tcp() { # NAME
	local json=$WORKDIR/iperf-$1.json
	in_cli timeout 30 iperf3 --json -t 2 -c 198.18.1.1 >"$json" 2>&1 ||
		{ log "$1: iperf3 failed"; tail -n 5 "$json" >&2; return 1; }
	log "$1: iperf3 sent $(jq -r '.end.sum_sent.bytes' "$json") bytes, received $(jq -r '.end.sum_received.bytes' "$json")"
	[ "$(jq -r '.end.sum_received.bytes' "$json")" -gt 0 ]
}

# Every session of FLOW expired (TCP: closed, then tcp_closing_timeout).
all_expired() { # FLOW
	local i c e
	for i in $(seq 40); do
		stats
		c=$(counter "$1" .datapath.sessions_created)
		e=$(counter "$1" .datapath.sessions_expired)
		[ "$c" -gt 0 ] && [ "$c" = "$e" ] && return 0
		sleep 0.25
	done
	log "$1: $c sessions created, $e expired"
	return 1
}

# 2. TCP: iperf3 and curl, mostly in XDP; handshake and close in user space.
phase_tcp() {
	local m=$1 f
	check "$m: tcp: iperf3 TCP over IPv4 (2 s) completes" iperf3_tcp "$m"
	check "$m: tcp: curl IPv4 ${BLOB_MIB} MiB, sha256 equal" download "$m-v4" http://198.18.1.1:8080/blob
	check "$m: tcp: curl IPv6 ${BLOB_MIB} MiB, sha256 equal" download "$m-v6" "http://[fd00:1::1]:8080/blob"
	sleep 1.5
	stats
	for f in iperf4 http4 http6; do
		check "$m: tcp: $f: >= 90% of the packets forwarded in XDP" share_at_least $f 90
		check "$m: tcp: $f: sessions created and offloaded in user space" eval \
			"[ $(counter $f .datapath.sessions_created) -ge 1 ] && [ $(counter $f .datapath.sessions_offloaded) -ge 1 ]"
		# SYN, SYN-ACK and both FINs at least go up to the workers.
		check "$m: tcp: $f: handshake and close went through user space" \
			at_least "$(counter $f .steering.redirected)" $((4 * $(counter $f .datapath.sessions_created)))
	done
	for f in iperf4 http4 http6; do
		check "$m: tcp: $f: every session expires after the close" all_expired $f
	done
	check "$m: tcp: no drop" [ "$(jq '[.flows[] | select(.name | test("iperf4|http")) | .datapath.drops | length] | add' "$WORKDIR/stats.json")" = 0 ]
}

# 3. The route to the nh flow's upstream moves from server A to server B mid-stream.
phase_route_switch() {
	local m=$1 n=2000 a b st off_mid
	udp_server "$NS_SRV" 198.18.9.9:6000 198.18.8.1/32 $n 14 "$WORKDIR/$m-nh-a.out"
	local pa=$SRV_PID
	udp_server "$NS_SRVB" 198.18.9.9:6000 198.18.8.1/32 $n 14 "$WORKDIR/$m-nh-b.out"
	local pb=$SRV_PID
	sleep 0.3
	udp_client 5002 $n 500 "$WORKDIR/$m-nh-c.out" --min-fraction 0.99
	local pc=$CLI_PID
	# B's address known first: the switch is what is under test, ARP is
	# test_nexthop's (held frames), and 1% is only 20 datagrams here.
	in_px ping -c 1 -W 2 198.18.4.2 >/dev/null
	sleep 1.5
	ip -n "$NS_PX" route replace 198.18.9.9/32 via 198.18.4.2 dev px-s2
	sleep 1.2
	stats
	off_mid=$(counter nh .steering.offloaded)
	wait $pc
	st=$?
	cat "$WORKDIR/$m-nh-c.out"
	check "$m: route switch: the client gets >= 99% of $n echoes back intact" [ $st = 0 ]
	wait $pa
	wait $pb
	a=$(valid_of "$WORKDIR/$m-nh-a.out")
	b=$(valid_of "$WORKDIR/$m-nh-b.out")
	log "$m: route switch: server A got $a, server B $b"
	check "$m: route switch: server A got the start" at_least "$a" 1
	check "$m: route switch: server B (by px-s2) got the rest" at_least "$b" 1
	check "$m: route switch: A and B together got >= 99% of $n" at_least $((a + b)) $((n * 99 / 100))
	check "$m: route switch: ferryd followed the route (log)" \
		grep -qE "next hop 198\.18\.9\.9: new route" "$FERRYD_LOG"
	settle nh .datapath.tx_packets $((a + b))
	check "$m: route switch: XDP kept forwarding after the switch" \
		at_least "$(counter nh .steering.offloaded)" $((off_mid + 100))
	check "$m: route switch: ferryd was not restarted" kill -0 "$FERRYD_PID"
	ip -n "$NS_PX" route replace 198.18.9.9/32 via 198.18.2.2 dev px-s
}

# 4. An offloaded stream longer than udp_timeout is not expired; idle, it is.
phase_expiry() {
	local m=$1 n=2500 st e max_e=0 i
	udp_server "$NS_SRV" 198.18.2.2:6003 198.18.2.1/32 $n 20 "$WORKDIR/$m-exp-srv.out"
	local srv=$SRV_PID
	sleep 0.3
	udp_client 5003 $n 500 "$WORKDIR/$m-exp-c.out" # 5 s > udp_timeout
	local pc=$CLI_PID
	while kill -0 $pc 2>/dev/null; do
		stats && e=$(counter exp .datapath.sessions_expired) && [ "$e" -gt "$max_e" ] && max_e=$e
		sleep 0.5
	done
	wait $pc
	st=$?
	cat "$WORKDIR/$m-exp-c.out"
	check "$m: expiry: a $((n / 500)) s stream (udp_timeout $UDP_TO s): every echo back" [ $st = 0 ]
	wait $srv
	check "$m: expiry: the server got all $n" [ $? = 0 ]
	check "$m: expiry: sessions_expired stayed 0 while it flowed" [ "$max_e" = 0 ]
	stats
	check "$m: expiry: the stream was forwarded in XDP (>= 90%)" share_at_least exp 90
	for i in $(seq $(((UDP_TO + 4) * 4))); do
		stats
		[ "$(counter exp .datapath.sessions_expired)" = 1 ] && break
		sleep 0.25
	done
	log "$m: expiry: after about $((i / 4)) s idle: $(counter exp .datapath.sessions_expired) of $(counter exp .datapath.sessions_created) sessions expired"
	check "$m: expiry: idle, the session expires within udp_timeout + 4 s" \
		[ "$(counter exp .datapath.sessions_expired)/$(counter exp .datapath.sessions_created)" = 1/1 ]
}

# 5. A reload that adds a flow keeps the offloaded session of another.
phase_reload() {
	local m=$1 n=2000 st off_at before
	udp_server "$NS_SRV" 198.18.2.2:6004 198.18.2.1/32 $n 20 "$WORKDIR/$m-rl-srv.out"
	local srv=$SRV_PID
	sleep 0.3
	udp_client 5004 $n 500 "$WORKDIR/$m-rl-c.out"
	local pc=$CLI_PID
	sleep 1.5
	write_config "$m" "$PIN_PATH" 1024 extra
	before=$(grep -c 'reload: [0-9]* flows\? added' "$FERRYD_LOG")
	stats
	off_at=$(counter rl .steering.offloaded)
	kill -HUP "$FERRYD_PID"
	check "$m: reload: applied (1 flow added)" wait_for eval \
		"[ \$(grep -c 'reload: [0-9]* flows\\? added' '$FERRYD_LOG') -gt $before ] &&
		grep 'reload: [0-9]* flows\\? added' '$FERRYD_LOG' | tail -1 | grep -q '1 flow added, 0 changed, 0 removed'"
	wait $pc
	st=$?
	cat "$WORKDIR/$m-rl-c.out"
	check "$m: reload: the stream's client got every echo" [ $st = 0 ]
	wait $srv
	check "$m: reload: the server got all $n" [ $? = 0 ]
	settle rl .datapath.tx_packets $n
	log "$m: reload: offloaded $off_at at the reload, $(counter rl .steering.offloaded) at the end"
	check "$m: reload: offloaded grew after the reload" \
		at_least "$(counter rl .steering.offloaded)" $((off_at + 200))
	check "$m: reload: still one session" [ "$(counter rl .datapath.sessions_created)" = 1 ]
	check "$m: reload: the new flow is listed" eval "jq -e '.flows[] | select(.name == \"extra\")' '$WORKDIR/stats.json' >/dev/null"
}

flow_block() { # FLOW: its part of `ferryctl flows`
	awk -v f="flow $1 (" 'index($0, f) == 1 {on = 1; print; next} /^flow / {on = 0} on' \
		"$WORKDIR/flows.txt"
}

# 6. Flows kept out of XDP, and what `ferryctl flows` says of each.
phase_not_offloaded() {
	local m=$1 n=500 st
	"$FERRYCTL" -p "$PIN" flows >"$WORKDIR/flows.txt"
	check "$m: flows: an auto flow: established sessions forward in XDP" \
		eval "flow_block udp | grep -qE '^  offload +established sessions forward in XDP$'"
	check "$m: flows: offload: off says so" \
		eval "flow_block off | grep -qE '^  offload +no: offload: off$'"
	check "$m: flows: a payload filter says so" \
		eval "flow_block pay | grep -qE '^  offload +no: filter: rule 1 matches payload bytes$'"
	check "$m: flows: a chain with pace is not offloaded" \
		eval "flow_block paced | grep -qE '^  offload +no: pace'"
	"$FERRYCTL" -p "$PIN" flows --json >"$WORKDIR/flows.json"
	check "$m: flows --json: offload false with the reason for off" \
		[ "$(jq -r '.flows[] | select(.name == "off") | "\(.offload) \(.offload_why)"' "$WORKDIR/flows.json")" = "false offload: off" ]
	check "$m: flows --json: offload true for an auto flow" \
		[ "$(jq -r '.flows[] | select(.name == "udp") | .offload' "$WORKDIR/flows.json")" = true ]

	udp_server "$NS_SRV" 198.18.2.2:6005 198.18.2.1/32 $n 15 "$WORKDIR/$m-off-srv.out"
	local srv=$SRV_PID
	sleep 0.3
	check "$m: offload off: every echo back" \
		in_cli "$UDPPROBE" client --to 198.18.1.1:5005 --count $n --rate 2000 --timeout 10
	wait $srv
	check "$m: offload off: the server got all $n" [ $? = 0 ]
	settle off .datapath.tx_packets $n
	check "$m: offload off: forwarded by the workers: tx $n, replies $n" \
		[ "$(counter off .datapath.tx_packets)/$(counter off .datapath.reply_packets)" = $n/$n ]
	check "$m: offload off: nothing offloaded" \
		[ "$(counter off .steering.offloaded)/$(counter off .datapath.sessions_offloaded)" = 0/0 ]
}

no_pins_left() { # DIR
	[ -z "$(ls -A "$1" | grep -vE '^(maps|progs)\.debug$')" ]
}

# 8. SIGKILL mid-stream: the offloaded session keeps forwarding; a new
# ferryd started at once on the same pins replaces the program in place and
# adopts the session with its NAT port, so the stream loses nothing and
# reaches the server from one port; then it stops cleanly.
phase_sigkill() {
	local m=$1 n=3000 st v need off0
	need=$n
	stats
	off0=$(counter udp .steering.offloaded)
	udp_server "$NS_SRV" 198.18.2.2:6000 198.18.2.1/32 $n 20 "$WORKDIR/$m-kill-srv.out"
	local srv=$SRV_PID
	sleep 0.3
	udp_client 5000 $n 1000 "$WORKDIR/$m-kill-c.out" --min-fraction 0.95
	local pc=$CLI_PID
	sleep 1
	stats
	log "$m: sigkill: $(($(counter udp .steering.offloaded) - off0)) of the stream's packets in XDP before the kill"
	# Not checked after the kill: only the stream's arrival can tell then.
	check "$m: sigkill: the stream is offloaded before the kill" \
		at_least "$(counter udp .steering.offloaded)" $((off0 + 100))
	kill -KILL "$FERRYD_PID"
	wait "$FERRYD_PID" 2>/dev/null
	check "$m: sigkill: ferryd is gone" eval "! kill -0 $FERRYD_PID 2>/dev/null"
	check "$m: sigkill: the XDP program stays on px-c" xdp_attached "$NS_PX" px-c
	sleep 0.3 # the stream goes on with nobody but the fast path

	# Restarted while the stream still flows (as systemd's Restart= would).
	start_ferryd "$WORKDIR/ferry.yaml" "$WORKDIR/ferryd-$m-2.log"
	check "$m: sigkill: a new ferryd starts on the same config and pins" [ $? = 0 ]
	FERRYD_LOG=$WORKDIR/ferryd-$m-2.log
	for dev in px-c px-s; do
		check "$m: sigkill: the earlier program on $dev replaced in place" \
			grep -q "iface $dev: replaced the earlier run's ferry_steer in place" "$FERRYD_LOG"
	done
	check "$m: sigkill: the new ferryd took the offloaded session over" \
		grep -qE "offload: took over [1-9][0-9]* sessions? an earlier run" "$FERRYD_LOG"
	wait $pc
	st=$?
	cat "$WORKDIR/$m-kill-c.out"
	check "$m: sigkill: the client got every echo (2/3 sent after the kill)" \
		grep -q "echoed $n intact" "$WORKDIR/$m-kill-c.out"
	wait $srv
	v=$(valid_of "$WORKDIR/$m-kill-srv.out")
	cat "$WORKDIR/$m-kill-srv.out"
	check "$m: sigkill: the server got all $n" at_least "$v" $need
	# One sender: the adopted session kept its NAT port (no new session, no new port).
	check "$m: sigkill: from one NAT port throughout" \
		grep -qE "senders: 198\.18\.2\.1:[0-9]+$" "$WORKDIR/$m-kill-srv.out"
	stats
	# Published once a second: the new ferryd may not have published yet.
	check "$m: sigkill: the adopted session is counted as offloaded by the new ferryd" \
		settle udp '.datapath.sessions_offloaded >= 1' true
	udp_server "$NS_SRV" 198.18.2.2:6003 198.18.2.1/32 200 10 "$WORKDIR/$m-after-srv.out"
	srv=$SRV_PID
	sleep 0.3
	check "$m: sigkill: the new ferryd forwards a new stream" \
		in_cli "$UDPPROBE" client --to 198.18.1.1:5003 --count 200 --rate 2000 --timeout 5
	wait $srv
	stop_ferryd
	check "$m: sigkill: the new ferryd exits 0 on SIGTERM" [ $? = 0 ]
	for dev in px-c px-s px-s2; do
		check "$m: sigkill: no XDP program left on $dev" eval "! xdp_attached $NS_PX $dev"
	done
	check "$m: sigkill: no pin left" no_pins_left "$WORKDIR/bpffs"
}

# 7. One offload slot, two concurrent sessions.
phase_map_full() {
	local m=$1 n=1500 st1 st2 st
	write_config "$m" "$PIN_PATH" 1
	FERRYD_LOG=$WORKDIR/ferryd-$m-3.log
	start_ferryd "$WORKDIR/ferry.yaml" "$FERRYD_LOG" || { check "$m: map full: ferryd starts" false; return 1; }
	udp_server "$NS_SRV" 198.18.2.2:6000 198.18.2.1/32 $((2 * n)) 20 "$WORKDIR/$m-full-srv.out"
	local srv=$SRV_PID
	sleep 0.3
	udp_client 5000 $n 1000 "$WORKDIR/$m-full-c1.out"
	local c1=$CLI_PID
	udp_client 5000 $n 1000 "$WORKDIR/$m-full-c2.out"
	local c2=$CLI_PID
	wait $c1
	st1=$?
	wait $c2
	st2=$?
	cat "$WORKDIR/$m-full-c1.out" "$WORKDIR/$m-full-c2.out"
	check "$m: map full: both clients got every echo" [ $st1/$st2 = 0/0 ]
	wait $srv
	st=$?
	cat "$WORKDIR/$m-full-srv.out"
	check "$m: map full: the server got all $((2 * n))" [ $st = 0 ]
	settle udp .datapath.tx_packets $((2 * n))
	check "$m: map full: two sessions, one offloaded" \
		[ "$(counter udp .datapath.sessions_created)/$(counter udp .datapath.sessions_offloaded)" = 2/1 ]
	check "$m: map full: the other counted in offload_full" at_least "$(counter udp .datapath.offload_full)" 1
	check "$m: map full: the offloaded one forwarded in XDP" at_least "$(counter udp .steering.offloaded)" $n
	check "$m: map full: the other one by the workers (replies $((2 * n)))" \
		[ "$(counter udp .datapath.reply_packets)" = $((2 * n)) ]
	stop_ferryd
	check "$m: map full: ferryd exits 0 on SIGTERM" [ $? = 0 ]
	check "$m: map full: no pin left" no_pins_left "$WORKDIR/bpffs"
}

run_mode() { # MODE
	local mode=$1 dev
	if [ "$mode" = native ]; then gro on; else gro off; fi
	ip -n "$NS_PX" route replace 198.18.9.9/32 via 198.18.2.2 dev px-s || return 1
	PIN_PATH=$WORKDIR/bpffs/ferry
	PIN=$PIN_PATH
	write_config "$mode" "$PIN_PATH"
	check "$mode: config validates" "$FERRYD" -c "$WORKDIR/ferry.yaml" --check
	FERRYD_LOG=$WORKDIR/ferryd-$mode.log
	start_ferryd "$WORKDIR/ferry.yaml" "$FERRYD_LOG" || { check "$mode: ferryd starts" false; return 1; }
	check "$mode: ferryd starts" true
	check "$mode: attached in $mode mode" grep -q "attached in $mode mode" "$FERRYD_LOG"
	for dev in px-c px-s px-s2; do
		check "$mode: $dev takes XDP redirects (log)" \
			wait_for grep -q "iface $dev: takes XDP redirects" "$FERRYD_LOG"
	done

	phase_udp "$mode"
	phase_tcp "$mode"
	phase_route_switch "$mode"
	phase_expiry "$mode"
	phase_not_offloaded "$mode"
	phase_reload "$mode"
	phase_sigkill "$mode"
	phase_map_full "$mode"
	if [ "$FAILED" != 0 ]; then
		log "ferryd log ($mode), last lines:"
		tail -n 30 "$WORKDIR/ferryd-$mode.log" | sed 's/^/  | /' >&2
	fi
}

require_root "test_offload" || { echo "offload: 0 passed, 1 failed"; exit 1; }
# Private copies: a rebuild during the run must not pair this ferryd with
# a ferryctl of another map layout.
mkdir -p "$WORKDIR/bin" && cp "$FERRYD" "$FERRYCTL" "$WORKDIR/bin/" || exit 1
FERRYD=$WORKDIR/bin/ferryd FERRYCTL=$WORKDIR/bin/ferryctl
for tool in iperf3 curl python3 jq ethtool; do
	command -v $tool >/dev/null || { echo "FAIL: $tool is missing (make deps)"; echo "offload: 0 passed, 1 failed"; exit 1; }
done
[ -x "$UDPPROBE" ] || { echo "FAIL: $UDPPROBE is not built"; echo "offload: 0 passed, 1 failed"; exit 1; }
off_topo_up || { echo "FAIL: topology"; echo "offload: 0 passed, 1 failed"; exit 1; }
# A bpffs of the test's own: pins outlive a SIGKILLed ferryd and can be checked.
mkdir -p "$WORKDIR/bpffs"
mount -t bpf bpf "$WORKDIR/bpffs" || { echo "FAIL: bpffs"; echo "offload: 0 passed, 1 failed"; exit 1; }
on_cleanup "umount '$WORKDIR/bpffs'"

mkdir -p "$WORKDIR/www"
head -c $((BLOB_MIB << 20)) /dev/urandom >"$WORKDIR/www/blob"
BLOB_SUM=$(sha256sum <"$WORKDIR/www/blob")
ip netns exec "$NS_SRV" iperf3 -s -p 5201 >"$WORKDIR/iperf3-server.log" 2>&1 &
track_pid $!
ip netns exec "$NS_SRV" python3 -m http.server 8080 --bind 198.18.2.2 \
	--directory "$WORKDIR/www" >"$WORKDIR/http4.log" 2>&1 &
track_pid $!
ip netns exec "$NS_SRV" python3 -m http.server 8080 --bind fd00:2::2 \
	--directory "$WORKDIR/www" >"$WORKDIR/http6.log" 2>&1 &
track_pid $!
servers_listen() {
	in_srv ss -Htln >"$WORKDIR/listen.txt" &&
		grep -q ':5201 ' "$WORKDIR/listen.txt" &&
		grep -q '198.18.2.2:8080 ' "$WORKDIR/listen.txt" &&
		grep -q '\[fd00:2::2\]:8080 ' "$WORKDIR/listen.txt"
}
check "iperf3 and HTTP servers listen" wait_for servers_listen

for mode in ${FERRY_TEST_MODES:-native skb}; do
	run_mode "$mode"
done
summary offload
