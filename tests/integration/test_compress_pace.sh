#!/bin/bash
# Two ferry proxies in a row carry a UDP stream compressed between them, a
# pacer spreads a burst out, and taps record what leaves, in native and in
# generic (skb) XDP mode:
#
#   client ns        proxy A ns                     proxy B ns                       server ns
#   cli0 198.18.1.2 - pa-c 198.18.1.1 | pa-s 198.18.3.1 - pb-c 198.18.3.2 | pb-s 198.18.2.1 - srv0 198.18.2.2
#
#   flow zipped (udp 5000): A: compress -> decompress (replies) -> forward to B -> tap (pcap, interface)
#                           B: decompress -> compress (replies) -> forward to the server
#   flow paced  (udp 5001): A: forward to B -> pace 200 pps;  B: forward to the server
#
# Checks: every datagram of a compressible and of an incompressible stream
# reaches the server byte for byte and every echo comes back, both ways
# compressed between A and B; ferryctl on A shows the bytes saved and B
# inflated what A compressed, with no bad_payload; the pcap A's tap wrote
# reads with tcpdump -r and holds one packet per datagram sent to B, the
# copies A's tap sent out of a veth reach tcpdump at the other end; a burst
# of 300 datagrams through the pacer all arrive, spread over at least 70 %
# of 300/200 s; both ferryds stop with exit status 0 and every frame
# accounted for.
. "$(dirname "$0")/../lib.sh"
trap ns_cleanup EXIT

N=${FERRY_TEST_DATAGRAMS:-1000}
PACE_N=300
PACE_PPS=200
NS_A=ferry-$RUN_ID-pxa
NS_B=ferry-$RUN_ID-pxb

topo_chain_up() {
	add_ns "$NS_CLI" && add_ns "$NS_A" && add_ns "$NS_B" && add_ns "$NS_SRV" || return 1
	ip link add cli0 netns "$NS_CLI" type veth peer name pa-c netns "$NS_A" || return 1
	ip link add pa-s netns "$NS_A" type veth peer name pb-c netns "$NS_B" || return 1
	ip link add pb-s netns "$NS_B" type veth peer name srv0 netns "$NS_SRV" || return 1
	# Where A's tap sends its copies: tcpdump listens at the other end.
	ip -n "$NS_A" link add tapa0 type veth peer name tapa1 || return 1
	ip -n "$NS_CLI" addr add 198.18.1.2/24 dev cli0
	ip -n "$NS_A" addr add 198.18.1.1/24 dev pa-c
	ip -n "$NS_A" addr add 198.18.3.1/24 dev pa-s
	ip -n "$NS_B" addr add 198.18.3.2/24 dev pb-c
	ip -n "$NS_B" addr add 198.18.2.1/24 dev pb-s
	ip -n "$NS_SRV" addr add 198.18.2.2/24 dev srv0
	local ns_dev ns dev
	for ns_dev in "$NS_CLI:cli0" "$NS_A:pa-c" "$NS_A:pa-s" "$NS_A:tapa0" "$NS_A:tapa1" \
		"$NS_B:pb-c" "$NS_B:pb-s" "$NS_SRV:srv0"; do
		ns=${ns_dev%%:*} dev=${ns_dev#*:}
		ip -n "$ns" link set "$dev" up || return 1
	done
	# Frames the end hosts send must carry full checksums (see lib.sh).
	in_cli ethtool -K cli0 tx off >/dev/null
	in_srv ethtool -K srv0 tx off >/dev/null
}

write_configs() { # MODE
	cat >"$WORKDIR/a.yaml" <<-YAML
	interfaces:
	  - {name: pa-c, xdp_mode: $1}
	  - {name: pa-s, xdp_mode: $1}
	nat:
	  ports: 40000-40999
	flows:
	  - name: zipped
	    match: {protocol: udp, destination: 198.18.1.1, port: 5000}
	    services:
	      - compress: {level: 6}
	      - decompress: {direction: reply}
	      - forward: {upstream: '198.18.3.2:5000'}
	      - tap: {pcap: '$WORKDIR/a-$1.pcap', direction: client}
	      - tap: {interface: tapa0, direction: client}
	  - name: paced
	    match: {protocol: udp, destination: 198.18.1.1, port: 5001}
	    services:
	      - forward: {upstream: '198.18.3.2:5001'}
	      - pace: {rate_pps: $PACE_PPS, queue: 512, direction: client}
	YAML
	cat >"$WORKDIR/b.yaml" <<-YAML
	interfaces:
	  - {name: pb-c, xdp_mode: $1}
	  - {name: pb-s, xdp_mode: $1}
	nat:
	  ports: 41000-41999
	flows:
	  - name: zipped
	    match: {protocol: udp, destination: 198.18.3.2, port: 5000}
	    services:
	      - decompress: {max_size: 1500}
	      - compress: {direction: reply}
	      - forward: {upstream: '198.18.2.2:6000'}
	  - name: paced
	    match: {protocol: udp, destination: 198.18.3.2, port: 5001}
	    services:
	      - forward: {upstream: '198.18.2.2:6001'}
	YAML
}

start_in() { # NS CONFIG LOG -> sets STARTED_PID
	ip netns exec "$1" "$FERRYD" -c "$2" -v >"$3" 2>&1 &
	STARTED_PID=$!
	track_pid "$STARTED_PID"
	if ! wait_for grep -q 'running:' "$3"; then
		log "ferryd in $1 did not start; its log:"
		sed 's/^/  | /' "$3" >&2
		return 1
	fi
}

stop_pid() { # PID -> its exit status
	kill -TERM "$1" 2>/dev/null
	for _ in $(seq 100); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	wait "$1"
}

stats_of() { # PID OUT
	"$FERRYCTL" -p "/proc/$1/root/sys/fs/bpf/ferry" stats --json >"$2"
}

# svc JSON FLOW SERVICE-INDEX JQ-PATH: a value from a flow's service in ferryctl --json.
svc() {
	jq -r ".flows[] | select(.name == \"$2\") | .services[$3] | $4" "$1"
}

flow() { # JSON FLOW JQ-PATH
	jq -r ".flows[] | select(.name == \"$2\") | $3" "$1"
}

no_csum_errors() { # NS
	local errs
	errs=$(ip netns exec "$1" nstat -az UdpInCsumErrors | awk '/UdpInCsumErrors/ {print $2}')
	[ "${errs:-0}" = 0 ]
}

stream() { # MODE LABEL COUNT CLIENT-OPTIONS...
	local mode=$1 label=$2 count=$3 st
	shift 3
	ip netns exec "$NS_SRV" "$UDPPROBE" server --listen 198.18.2.2:6000 \
		--expect-src 198.18.2.1/32 --expect-sport 41000-41999 --count "$count" \
		--timeout 30 >"$WORKDIR/server-$label.out" 2>&1 &
	local srv_pid=$!
	track_pid $srv_pid
	wait_for grep -q "listening on" "$WORKDIR/server-$label.out"
	check "$mode: $label: client gets every datagram back intact" \
		in_cli "$UDPPROBE" client --to 198.18.1.1:5000 --count "$count" --rate 2000 \
		--timeout 10 "$@"
	wait $srv_pid
	st=$?
	cat "$WORKDIR/server-$label.out"
	check "$mode: $label: server got every datagram intact" [ $st = 0 ]
}

run_mode() { # MODE
	local mode=$1 pid_a pid_b st t0 t1 ms min_ms n_pcap n_if dump_pid saved

	write_configs "$mode"
	check "$mode: A's config validates" "$FERRYD" -c "$WORKDIR/a.yaml" --check
	check "$mode: B's config validates" "$FERRYD" -c "$WORKDIR/b.yaml" --check
	start_in "$NS_B" "$WORKDIR/b.yaml" "$WORKDIR/b-$mode.log" || {
		check "$mode: ferryd B starts" false
		return 1
	}
	pid_b=$STARTED_PID
	start_in "$NS_A" "$WORKDIR/a.yaml" "$WORKDIR/a-$mode.log" || {
		check "$mode: ferryd A starts" false
		stop_pid "$pid_b"
		return 1
	}
	pid_a=$STARTED_PID
	check "$mode: both ferryds start" true
	check "$mode: A attached in $mode mode" grep -q "attached in $mode mode" "$WORKDIR/a-$mode.log"

	ip netns exec "$NS_A" timeout 60 tcpdump -l -ni tapa1 -w "$WORKDIR/tapa1-$mode.pcap" udp \
		2>"$WORKDIR/tcpdump-$mode.err" &
	dump_pid=$!
	track_pid $dump_pid
	wait_for grep -q "listening on" "$WORKDIR/tcpdump-$mode.err"

	stream "$mode" text "$N" --text --min-size 64 --max-size 1400
	stream "$mode" random 500 --min-size 16 --max-size 1400
	check "$mode: no UDP checksum errors at the server" no_csum_errors "$NS_SRV"
	check "$mode: no UDP checksum errors at the client" no_csum_errors "$NS_CLI"

	# The pacer: a burst of PACE_N, released at PACE_PPS.
	ip netns exec "$NS_SRV" "$UDPPROBE" server --listen 198.18.2.2:6001 --count "$PACE_N" \
		--timeout 30 >"$WORKDIR/server-paced.out" 2>&1 &
	local srv_pid=$!
	track_pid $srv_pid
	wait_for grep -q "listening on" "$WORKDIR/server-paced.out"
	t0=$(date +%s%N)
	check "$mode: paced: client gets all $PACE_N back" \
		in_cli "$UDPPROBE" client --to 198.18.1.1:5001 --count "$PACE_N" --rate 0 \
		--window "$PACE_N" --min-size 100 --max-size 100 --timeout 20
	t1=$(date +%s%N)
	wait $srv_pid
	st=$?
	cat "$WORKDIR/server-paced.out"
	check "$mode: paced: server got all $PACE_N" [ $st = 0 ]
	ms=$(((t1 - t0) / 1000000))
	min_ms=$((PACE_N * 1000 * 7 / 10 / PACE_PPS))
	log "paced: $PACE_N datagrams in $ms ms at $PACE_PPS pps (at least $min_ms ms expected)"
	check "$mode: paced: the burst took at least 70% of $PACE_N/$PACE_PPS s" [ "$ms" -ge "$min_ms" ]

	sleep 1.5 # ferryd publishes its counters once a second
	stats_of "$pid_a" "$WORKDIR/a-$mode.json"
	stats_of "$pid_b" "$WORKDIR/b-$mode.json"
	"$FERRYCTL" -p "/proc/$pid_a/root/sys/fs/bpf/ferry" stats
	"$FERRYCTL" -p "/proc/$pid_b/root/sys/fs/bpf/ferry" stats
	saved=$(svc "$WORKDIR/a-$mode.json" zipped 0 .counters.bytes_saved)
	log "A: compress saved ${saved:-?} bytes"
	check "$mode: ferryctl on A shows bytes saved" [ "${saved:-0}" -gt 0 ]
	check "$mode: A compressed at least the text stream" \
		[ "$(svc "$WORKDIR/a-$mode.json" zipped 0 .counters.compressed)" -ge "$N" ]
	check "$mode: B inflated what A compressed" [ "$(svc "$WORKDIR/b-$mode.json" zipped 0 \
		.counters.inflated)" = "$(svc "$WORKDIR/a-$mode.json" zipped 0 .counters.compressed)" ]
	check "$mode: B stored what A stored" [ "$(svc "$WORKDIR/b-$mode.json" zipped 0 \
		.counters.stored)" = "$(svc "$WORKDIR/a-$mode.json" zipped 0 .counters.stored)" ]
	check "$mode: the replies came back compressed too" \
		[ "$(svc "$WORKDIR/a-$mode.json" zipped 1 .counters.inflated)" -gt 0 ]
	check "$mode: no drops on A" [ "$(flow "$WORKDIR/a-$mode.json" zipped '.datapath.drops | length')" = 0 ]
	check "$mode: no drops on B" [ "$(flow "$WORKDIR/b-$mode.json" zipped '.datapath.drops | length')" = 0 ]
	check "$mode: pace delayed packets" [ "$(svc "$WORKDIR/a-$mode.json" paced 1 .counters.delayed)" -gt 0 ]
	check "$mode: pace dropped nothing" [ "$(flow "$WORKDIR/a-$mode.json" paced '.datapath.drops | length')" = 0 ]
	check "$mode: A's taps copied every datagram sent to B" \
		[ "$(svc "$WORKDIR/a-$mode.json" zipped 3 .counters.captured)" = $((N + 500)) ]

	stop_pid "$pid_a"
	st=$?
	check "$mode: ferryd A exits 0 on SIGTERM" [ $st = 0 ]
	stop_pid "$pid_b"
	st=$?
	check "$mode: ferryd B exits 0 on SIGTERM" [ $st = 0 ]
	check "$mode: A: every UMEM frame accounted for" grep -q "frame accounting holds" "$WORKDIR/a-$mode.log"
	check "$mode: B: every UMEM frame accounted for" grep -q "frame accounting holds" "$WORKDIR/b-$mode.log"

	n_pcap=$(tcpdump -nr "$WORKDIR/a-$mode.pcap" 2>/dev/null | grep -c '198.18.3.1.* > 198.18.3.2.5000: UDP')
	log "A's pcap: $n_pcap packets to B"
	check "$mode: tcpdump -r reads A's pcap: one packet per datagram sent to B" [ "$n_pcap" = $((N + 500)) ]
	kill -INT "$dump_pid" 2>/dev/null
	wait "$dump_pid"
	n_if=$(tcpdump -nr "$WORKDIR/tapa1-$mode.pcap" 2>/dev/null | grep -c '> 198.18.3.2.5000: UDP')
	log "tcpdump on tapa1: $n_if copies"
	check "$mode: the interface tap's copies reach tcpdump at tapa1" [ "$n_if" = $((N + 500)) ]
}

require_root "test_compress_pace" || { echo "compress_pace: 0 passed, 1 failed"; exit 1; }
topo_chain_up || { echo "FAIL: topology"; echo "compress_pace: 0 passed, 1 failed"; exit 1; }
run_mode native
run_mode skb
summary compress_pace
