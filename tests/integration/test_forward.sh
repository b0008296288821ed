#!/bin/bash
# A UDP stream through ferryd end to end, in native and in generic (skb) XDP
# mode: every datagram reaches the server byte for byte from the proxy's
# egress address and a NAT port, every reply reaches the client, checksums
# hold, ping and TCP to the proxy itself still go through the kernel, the
# pinned counters equal what was sent, and SIGTERM leaves nothing behind.
. "$(dirname "$0")/../lib.sh"
trap ns_cleanup EXIT

N=${FERRY_TEST_DATAGRAMS:-2000}

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
	  - name: stream
	    match:
	      protocol: udp
	      destination: 198.18.1.1/32
	      port: 5000
	    services:
	      - forward:
	          upstream: 198.18.2.2:6000
	YAML
}

counter() { # JSON-PATH  (flow "stream")
	jq -r ".flows[] | select(.name == \"stream\") | $1" "$WORKDIR/stats.json"
}

no_csum_errors() { # NS
	local errs
	errs=$(ip netns exec "$1" nstat -az UdpInCsumErrors | awk '/UdpInCsumErrors/ {print $2}')
	[ "${errs:-0}" = 0 ]
}

# maps.debug and progs.debug belong to bpffs itself (its preloaded iterators).
no_pins_left() { # DIR
	[ -z "$(ls -A "$1" | grep -vE '^(maps|progs)\.debug$')" ]
}

tcp_to_proxy() {
	ip netns exec "$NS_PX" timeout 5 nc -l 198.18.1.1 5000 >"$WORKDIR/tcp.out" &
	local nc_pid=$!
	track_pid $nc_pid
	sleep 0.3
	echo "hello through the kernel" | in_cli timeout 5 nc -N -w 2 198.18.1.1 5000 || return 1
	wait $nc_pid
	grep -q "hello through the kernel" "$WORKDIR/tcp.out"
}

run_mode() { # MODE PIN_MODE(own|sysfs)
	local mode=$1 pins=$2 pin_path pin_dir st
	if [ "$pins" = own ]; then
		# A bpffs of the test's own, so pins can be checked after ferryd exits.
		mkdir -p "$WORKDIR/bpffs"
		mount -t bpf bpf "$WORKDIR/bpffs" || return 1
		on_cleanup "umount '$WORKDIR/bpffs'"
		pin_path=$WORKDIR/bpffs/ferry
	else
		# The default: ferryd mounts bpffs in its own view of /sys (ip netns exec).
		pin_path=/sys/fs/bpf/ferry
	fi
	write_config "$mode" "$pin_path"
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
	pin_dir=$pin_path
	[ "$pins" = sysfs ] && pin_dir=/proc/$FERRYD_PID/root$pin_path

	ip netns exec "$NS_SRV" "$UDPPROBE" server --listen 198.18.2.2:6000 --expect-src 198.18.2.1/32 \
		--expect-sport 40000-40999 --count "$N" --timeout 30 >"$WORKDIR/server.out" 2>&1 &
	local srv_pid=$!
	track_pid $srv_pid
	wait_for grep -q "listening on" "$WORKDIR/server.out"
	check "$mode: client gets every datagram back intact" \
		in_cli "$UDPPROBE" client --to 198.18.1.1:5000 --count "$N" --min-size 16 \
		--max-size 1400 --rate 5000 --timeout 10
	wait $srv_pid
	st=$?
	cat "$WORKDIR/server.out"
	check "$mode: server got every datagram intact from 198.18.2.1:40000-40999" [ $st = 0 ]
	check "$mode: no UDP checksum errors at the server" no_csum_errors "$NS_SRV"
	check "$mode: no UDP checksum errors at the client" no_csum_errors "$NS_CLI"
	check "$mode: ping to the proxy goes through the kernel" in_cli ping -c 3 -i 0.2 -W 1 198.18.1.1
	check "$mode: TCP to the proxy goes through the kernel" tcp_to_proxy

	sleep 1.5 # ferryd publishes its counters once a second
	"$FERRYCTL" -p "$pin_dir" stats --json >"$WORKDIR/stats.json"
	check "$mode: ferryctl reads the counters" [ -s "$WORKDIR/stats.json" ]
	"$FERRYCTL" -p "$pin_dir" stats
	check "$mode: XDP steered 2N packets (requests and replies)" [ "$(counter .steering.packets)" = $((2 * N)) ]
	# To the workers' sockets, or forwarded by the fast path once the session was offloaded.
	check "$mode: XDP redirected or offloaded all of them" \
		[ $(($(counter .steering.redirected) + $(counter .steering.offloaded))) = $((2 * N)) ]
	check "$mode: N replies matched the reply rule" [ "$(counter .steering.reply_packets)" = "$N" ]
	check "$mode: workers sent N upstream" [ "$(counter .datapath.tx_packets)" = "$N" ]
	check "$mode: workers sent N replies to the client" [ "$(counter .datapath.reply_packets)" = "$N" ]
	check "$mode: one session" [ "$(counter .datapath.sessions_created)" = 1 ]
	in_px bpftool map dump pinned "$pin_dir/ferry_flow_stats" >"$WORKDIR/dump.txt"
	check "$mode: bpftool shows named fields" grep -q '"redirected":' "$WORKDIR/dump.txt"

	stop_ferryd
	st=$?
	check "$mode: ferryd exits 0 on SIGTERM" [ $st = 0 ]
	check "$mode: every UMEM frame accounted for at stop" \
		grep -q "frame accounting holds" "$WORKDIR/ferryd-$mode.log"
	check "$mode: no drop of any reason" [ "$(counter '.datapath.drops | length')" = 0 ]
	check "$mode: no XDP program left on px-c" eval "! xdp_attached $NS_PX px-c"
	check "$mode: no XDP program left on px-s" eval "! xdp_attached $NS_PX px-s"
	if [ "$pins" = own ]; then
		check "$mode: no pin left" no_pins_left "$WORKDIR/bpffs"
	fi
}

require_root "test_forward" || { echo "forward: 0 passed, 1 failed"; exit 1; }
topo_up || { echo "FAIL: topology"; echo "forward: 0 passed, 1 failed"; exit 1; }
run_mode native sysfs
run_mode skb own
summary forward
