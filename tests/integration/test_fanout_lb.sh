#!/bin/bash
# fanout, lb and mirror end to end, in native and in generic (skb) XDP mode,
# with two servers behind the proxy on links of their own:
#
#   client ns            proxy ns                          server ns (A)
#   cli0 198.18.1.2 ---- px-c 198.18.1.1 | px-s  198.18.2.1 ---- srv0 198.18.2.2
#                                        | px-s2 198.18.3.1 ---- srv0 198.18.3.2
#                                                                server ns (B)
#
# fanout: every datagram of a stream reaches both servers byte for byte, from
# the egress address of each link and the client's source port (one-way: the
# servers do not answer).  lb: many client flows (distinct source ports),
# echoed back through the NAT; each flow's datagrams all reach one server
# (one NAT port per flow, every one with all of its flow's datagrams), and
# both servers get a share.  mirror in front of forward: the client's stream
# is echoed by A as usual and a copy of each datagram reaches B.  lb over
# TCP: HTTP downloads on distinct client ports, each from one whole server,
# both servers used.  Then the counters, no checksum errors, no drop, the
# frame accounting at stop.
. "$(dirname "$0")/../lib.sh"
trap ns_cleanup EXIT

N=${FERRY_TEST_DATAGRAMS:-2000}
FLOWS=24      # lb client flows
PER_FLOW=40   # datagrams per lb flow
TCP_FLOWS=16  # lb HTTP downloads
NS_SRV2=ferry-$RUN_ID-srv2

in_srv2() { ip netns exec "$NS_SRV2" "$@"; }

# topo_up, plus server B on a second proxy link.
topo_up_two_servers() {
	topo_up || return 1
	add_ns "$NS_SRV2" || return 1
	ip link add srv0 netns "$NS_SRV2" type veth peer name px-s2 netns "$NS_PX" || return 1
	ip -n "$NS_PX" addr add 198.18.3.1/24 dev px-s2
	ip -n "$NS_PX" addr add fd00:3::1/64 dev px-s2 nodad
	ip -n "$NS_SRV2" addr add 198.18.3.2/24 dev srv0
	ip -n "$NS_SRV2" addr add fd00:3::2/64 dev srv0 nodad
	ip -n "$NS_PX" link set px-s2 up || return 1
	ip -n "$NS_SRV2" link set srv0 up || return 1
	in_srv2 ethtool -K srv0 tx off >/dev/null
}

write_config() { # MODE PIN_PATH
	cat >"$WORKDIR/ferry.yaml" <<-YAML
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
	flows:
	  - name: fan
	    match: {protocol: udp, destination: 198.18.1.1/32, port: 5000}
	    services:
	      - fanout:
	          subscribers: [198.18.2.2:6000, 198.18.3.2:6000]
	  - name: lb
	    match: {protocol: udp, destination: 198.18.1.1/32, port: 5001}
	    services:
	      - lb:
	          upstreams:
	            - {address: 198.18.2.2:6001, weight: 1}
	            - {address: 198.18.3.2:6001, weight: 1}
	          table_size: 65537
	  - name: mirror
	    match: {protocol: udp, destination: 198.18.1.1/32, port: 5002}
	    services:
	      - mirror:
	          to: [198.18.3.2:7002]
	      - forward:
	          upstream: 198.18.2.2:6002
	  - name: lb-tcp
	    match: {protocol: tcp, destination: 198.18.1.1/32, port: 5003}
	    services:
	      - lb:
	          upstreams: [198.18.2.2:8003, 198.18.3.2:8003]
	YAML
}

counter() { # FLOW JSON-PATH
	jq -r ".flows[] | select(.name == \"$1\") | $2" "$WORKDIR/stats.json"
}

no_csum_errors() { # NS
	local errs
	errs=$(ip netns exec "$1" nstat -az UdpInCsumErrors | awk '/UdpInCsumErrors/ {print $2}')
	[ "${errs:-0}" = 0 ]
}

# Sender lines of a --per-sender summary: "ADDR:PORT COUNT".
senders() { # FILE
	awk '/^udpprobe server: sender / {print $4, $5}' "$1"
}

# Every sender (one NAT port, one flow) sent exactly PER_FLOW datagrams.
whole_flows() { # FILE
	local n
	n=$(senders "$1" | wc -l)
	[ "$n" -ge 1 ] && [ -z "$(senders "$1" | awk -v m=$PER_FLOW '$2 != m')" ]
}

run_fanout() { # MODE
	local mode=$1 a b st_a st_b
	ip netns exec "$NS_SRV" "$UDPPROBE" server --listen 198.18.2.2:6000 --no-echo \
		--expect-src 198.18.2.1/32 --expect-sport 33333 --count "$N" --timeout 30 \
		>"$WORKDIR/fan-a.out" 2>&1 &
	a=$!
	track_pid $a
	ip netns exec "$NS_SRV2" "$UDPPROBE" server --listen 198.18.3.2:6000 --no-echo \
		--expect-src 198.18.3.1/32 --expect-sport 33333 --count "$N" --timeout 30 \
		>"$WORKDIR/fan-b.out" 2>&1 &
	b=$!
	track_pid $b
	wait_for grep -q "listening on" "$WORKDIR/fan-b.out"
	check "$mode: fanout: client sends the whole stream" \
		in_cli "$UDPPROBE" client --to 198.18.1.1:5000 --bind 198.18.1.2:33333 --count "$N" \
		--min-size 16 --max-size 1400 --rate 2000 --timeout 10 --no-wait
	wait $a
	st_a=$?
	wait $b
	st_b=$?
	cat "$WORKDIR/fan-a.out" "$WORKDIR/fan-b.out"
	check "$mode: fanout: server A got every datagram intact from 198.18.2.1:33333" [ $st_a = 0 ]
	check "$mode: fanout: server B got every datagram intact from 198.18.3.1:33333" [ $st_b = 0 ]
}

run_lb() { # MODE
	local mode=$1 a b i ok=true
	ip netns exec "$NS_SRV" "$UDPPROBE" server --listen 198.18.2.2:6001 --any-count \
		--per-sender --expect-src 198.18.2.1/32 --expect-sport 40000-40999 \
		--count $((FLOWS * PER_FLOW)) --timeout 120 >"$WORKDIR/lb-a.out" 2>&1 &
	a=$!
	track_pid $a
	ip netns exec "$NS_SRV2" "$UDPPROBE" server --listen 198.18.3.2:6001 --any-count \
		--per-sender --expect-src 198.18.3.1/32 --expect-sport 40000-40999 \
		--count $((FLOWS * PER_FLOW)) --timeout 120 >"$WORKDIR/lb-b.out" 2>&1 &
	b=$!
	track_pid $b
	wait_for grep -q "listening on" "$WORKDIR/lb-b.out"
	for i in $(seq "$FLOWS"); do
		in_cli "$UDPPROBE" client --to 198.18.1.1:5001 --bind 198.18.1.2:$((20000 + i)) \
			--count "$PER_FLOW" --min-size 16 --max-size 1200 --rate 1000 --timeout 5 \
			>>"$WORKDIR/lb-clients.out" 2>&1 || ok=false
	done
	check "$mode: lb: every one of $FLOWS flows gets all its echoes" $ok
	$ok || cat "$WORKDIR/lb-clients.out"
	# Every echo came back, so every datagram has arrived: stop the servers.
	kill -TERM $a $b
	wait $a
	local st_a=$?
	wait $b
	local st_b=$?
	cat "$WORKDIR/lb-a.out" "$WORKDIR/lb-b.out"
	check "$mode: lb: server A got a share, all intact" [ $st_a = 0 ]
	check "$mode: lb: server B got a share, all intact" [ $st_b = 0 ]
	check "$mode: lb: each of A's flows is whole at A" whole_flows "$WORKDIR/lb-a.out"
	check "$mode: lb: each of B's flows is whole at B" whole_flows "$WORKDIR/lb-b.out"
	check "$mode: lb: $FLOWS flows in all, each at one server" \
		[ $(( $(senders "$WORKDIR/lb-a.out" | wc -l) + $(senders "$WORKDIR/lb-b.out" | wc -l) )) = "$FLOWS" ]
}

# Each server's page: its name, then the same random bytes.
http_servers() {
	local who ns addr
	head -c $((256 << 10)) /dev/urandom >"$WORKDIR/blob"
	for who in A B; do
		mkdir -p "$WORKDIR/www-$who"
		{ echo "$who"; cat "$WORKDIR/blob"; } >"$WORKDIR/www-$who/page"
	done
	ip netns exec "$NS_SRV" python3 -m http.server 8003 --bind 198.18.2.2 \
		--directory "$WORKDIR/www-A" >"$WORKDIR/http-a.log" 2>&1 &
	track_pid $!
	ip netns exec "$NS_SRV2" python3 -m http.server 8003 --bind 198.18.3.2 \
		--directory "$WORKDIR/www-B" >"$WORKDIR/http-b.log" 2>&1 &
	track_pid $!
	wait_for in_srv bash -c "ss -Htln | grep -q '198.18.2.2:8003 '" &&
		wait_for in_srv2 bash -c "ss -Htln | grep -q '198.18.3.2:8003 '"
}

# TCP_FLOWS downloads from distinct client ports: each whole, from A or B.
tcp_downloads() { # MODE BASE_PORT
	local i out who
	: >"$WORKDIR/who-$1"
	for i in $(seq "$TCP_FLOWS"); do
		out=$WORKDIR/page-$1-$i
		in_cli timeout 20 curl -sS --max-time 15 --local-port $(($2 + i)) -o "$out" \
			http://198.18.1.1:5003/page || { log "download $i failed"; return 1; }
		who=$(head -n 1 "$out")
		case $who in A | B) ;; *) log "download $i: from '$who'"; return 1 ;; esac
		tail -c +3 "$out" | cmp -s - "$WORKDIR/blob" || { log "download $i differs"; return 1; }
		echo "$who" >>"$WORKDIR/who-$1"
	done
}

run_lb_tcp() { # MODE BASE_PORT
	check "$1: lb over TCP: $TCP_FLOWS downloads, each whole" tcp_downloads "$1" "$2"
	check "$1: lb over TCP: server A served some" grep -q A "$WORKDIR/who-$1"
	check "$1: lb over TCP: server B served some" grep -q B "$WORKDIR/who-$1"
}

run_mirror() { # MODE
	local mode=$1 a b st
	ip netns exec "$NS_SRV" "$UDPPROBE" server --listen 198.18.2.2:6002 \
		--expect-src 198.18.2.1/32 --expect-sport 40000-40999 --count "$N" --timeout 30 \
		>"$WORKDIR/mirror-a.out" 2>&1 &
	a=$!
	track_pid $a
	ip netns exec "$NS_SRV2" "$UDPPROBE" server --listen 198.18.3.2:7002 --no-echo \
		--expect-src 198.18.3.1/32 --expect-sport 34444 --count "$N" --timeout 30 \
		>"$WORKDIR/mirror-b.out" 2>&1 &
	b=$!
	track_pid $b
	wait_for grep -q "listening on" "$WORKDIR/mirror-b.out"
	check "$mode: mirror: client gets every datagram back intact (forward after mirror)" \
		in_cli "$UDPPROBE" client --to 198.18.1.1:5002 --bind 198.18.1.2:34444 --count "$N" \
		--min-size 16 --max-size 1400 --rate 2000 --timeout 10
	wait $a
	st=$?
	check "$mode: mirror: server A (forward's upstream) got every datagram intact" [ $st = 0 ]
	wait $b
	st=$?
	cat "$WORKDIR/mirror-a.out" "$WORKDIR/mirror-b.out"
	check "$mode: mirror: server B got a copy of every datagram from 198.18.3.1:34444" [ $st = 0 ]
}

run_mode() { # MODE
	local mode=$1 pin_path st
	mkdir -p "$WORKDIR/bpffs-$mode"
	mount -t bpf bpf "$WORKDIR/bpffs-$mode" || return 1
	on_cleanup "umount '$WORKDIR/bpffs-$mode'"
	pin_path=$WORKDIR/bpffs-$mode/ferry
	write_config "$mode" "$pin_path"
	check "$mode: config validates" "$FERRYD" -c "$WORKDIR/ferry.yaml" --check
	start_ferryd "$WORKDIR/ferry.yaml" "$WORKDIR/ferryd-$mode.log" || {
		check "$mode: ferryd starts" false
		return 1
	}
	check "$mode: ferryd starts" true
	check "$mode: attached in $mode mode" grep -q "px-s2: XDP program attached in $mode mode" \
		"$WORKDIR/ferryd-$mode.log"

	run_fanout "$mode"
	run_lb "$mode"
	run_mirror "$mode"
	run_lb_tcp "$mode" $([ "$mode" = native ] && echo 21000 || echo 21100)
	check "$mode: no UDP checksum errors at server A" no_csum_errors "$NS_SRV"
	check "$mode: no UDP checksum errors at server B" no_csum_errors "$NS_SRV2"
	check "$mode: no UDP checksum errors at the client" no_csum_errors "$NS_CLI"

	sleep 1.5 # ferryd publishes its counters once a second
	"$FERRYCTL" -p "$pin_path" stats --json >"$WORKDIR/stats.json"
	"$FERRYCTL" -p "$pin_path" stats
	check "$mode: fanout: N datagrams to subscriber 0" \
		[ "$(counter fan '.services[0].counters.subscriber0')" = "$N" ]
	check "$mode: fanout: N datagrams to subscriber 1" \
		[ "$(counter fan '.services[0].counters.subscriber1')" = "$N" ]
	check "$mode: fanout: N copies emitted" [ "$(counter fan '.services[0].emitted')" = "$N" ]
	check "$mode: fanout: 2N datagrams out" [ "$(counter fan .datapath.tx_packets)" = $((2 * N)) ]
	check "$mode: lb: one session per flow" \
		[ "$(counter lb .datapath.sessions_created)" = "$FLOWS" ]
	local s0 s1
	s0=$(counter lb '.services[0].counters.upstream0_sessions')
	s1=$(counter lb '.services[0].counters.upstream1_sessions')
	check "$mode: lb: sessions per upstream add up ($s0 + $s1)" [ $((s0 + s1)) = "$FLOWS" ]
	check "$mode: lb: upstream 0 has sessions" [ "$s0" -gt 0 ]
	check "$mode: lb: upstream 1 has sessions" [ "$s1" -gt 0 ]
	check "$mode: lb: every request went upstream" \
		[ "$(counter lb .datapath.tx_packets)" = $((FLOWS * PER_FLOW)) ]
	check "$mode: lb: every reply came back" \
		[ "$(counter lb .datapath.reply_packets)" = $((FLOWS * PER_FLOW)) ]
	check "$mode: mirror: N copies" [ "$(counter mirror '.services[0].counters.copies_to0')" = "$N" ]
	check "$mode: mirror: 2N out" [ "$(counter mirror .datapath.tx_packets)" = $((2 * N)) ]
	check "$mode: mirror: N replies" [ "$(counter mirror .datapath.reply_packets)" = "$N" ]
	check "$mode: lb over TCP: one session per download" \
		[ "$(counter lb-tcp .datapath.sessions_created)" = "$TCP_FLOWS" ]
	for flow in fan lb mirror; do
		check "$mode: $flow: no drop of any reason" [ "$(counter $flow '.datapath.drops | length')" = 0 ]
	done

	stop_ferryd
	st=$?
	check "$mode: ferryd exits 0 on SIGTERM" [ $st = 0 ]
	check "$mode: every UMEM frame accounted for at stop" \
		grep -q "frame accounting holds" "$WORKDIR/ferryd-$mode.log"
	for dev in px-c px-s px-s2; do
		check "$mode: no XDP program left on $dev" eval "! xdp_attached $NS_PX $dev"
	done
}

require_root "test_fanout_lb" || { echo "fanout_lb: 0 passed, 1 failed"; exit 1; }
# Private copies: a rebuild by someone else during the run must not break a run.
mkdir -p "$WORKDIR/bin" && cp "$FERRYD" "$FERRYCTL" "$UDPPROBE" "$WORKDIR/bin/" || exit 1
FERRYD=$WORKDIR/bin/ferryd FERRYCTL=$WORKDIR/bin/ferryctl UDPPROBE=$WORKDIR/bin/udpprobe
for tool in curl python3 jq; do
	command -v $tool >/dev/null || { echo "FAIL: $tool is missing (make deps)"; echo "fanout_lb: 0 passed, 1 failed"; exit 1; }
done
topo_up_two_servers || { echo "FAIL: topology"; echo "fanout_lb: 0 passed, 1 failed"; exit 1; }
check "HTTP servers listen" http_servers
for mode in ${FERRY_TEST_MODES:-native skb}; do
	run_mode "$mode"
done
summary fanout_lb
