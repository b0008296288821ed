#!/bin/bash
# Hostile input: pktinject (tests/tools/pktinject.c) sends crafted frames
# from the client's veth into steered flows while a udpprobe stream runs
# through ferryd on the same interface, queue and worker.  For each case of
# its catalogue: ferryd keeps running, and every injected frame shows up in
# exactly the counter the malformed-input policy (docs/design.md, "Malformed input")
# names for it: passed to the kernel by XDP (passed_malformed,
# passed_fragment, passed), dropped by the worker with a reason (the queue's
# drop_malformed, a flow's drop reasons), dropped by the kernel's AF_XDP
# socket (rx_dropped: over the UMEM frame), or forwarded (a flow's
# tx_packets).  At the end every datagram of the stream has arrived (udpprobe
# exact), and the frame accounting holds at stop.
#
# Bad checksums are forwarded as they are: ferry only rewrites checksums
# incrementally, so a bad one stays bad and the receiver's kernel drops it
# (the server's IP InHdrErrors / UdpInCsumErrors grow).
. "$(dirname "$0")/../lib.sh"
trap ns_cleanup EXIT

PKTINJECT=$BUILD/tests/pktinject
K=5 # frames per case

write_config() { # PIN_PATH
	cat >"$WORKDIR/ferry.yaml" <<-YAML
	pin_path: $1
	interfaces:
	  - name: px-c
	  - name: px-s
	nat:
	  ports: 40000-40999
	umem:
	  frame_size: 2048
	flows:
	  - name: stream
	    match: {protocol: udp, destination: 198.18.1.1/32, port: 5000}
	    services:
	      - forward: {upstream: "198.18.2.2:6000"}
	  - name: target
	    match: {protocol: udp, destination: 198.18.1.1/32, port: 5001}
	    services:
	      - forward: {upstream: "198.18.2.2:6001"}
	  - name: target-tcp
	    match: {protocol: tcp, destination: 198.18.1.1/32, port: 5002}
	    services:
	      - forward: {upstream: "198.18.2.2:6002"}
	  - name: target6
	    match: {protocol: udp, destination: "fd00:1::1/128", port: 5001}
	    services:
	      - forward: {upstream: "[fd00:2::2]:6001"}
	YAML
}

# snapshot: the counters a case may move, as "name=value" words.
snapshot() {
	"$FERRYCTL" -p "$PIN" stats --json >"$WORKDIR/stats.json" 2>/dev/null || return 1
	jq -r '
		(.interfaces[] | select(.name == "px-c")) as $x
		| (.queues[] | select(.interface == "px-c" and .queue == 0)) as $q
		| [.flows[] | select(.name != "stream")] as $t
		| "xdp_packets=\($x.packets) passed=\($x.passed)"
		+ " passed_malformed=\($x.passed_malformed) passed_fragment=\($x.passed_fragment)"
		+ " steered=\($x.steered) drop_malformed=\($q.port.drop_malformed // 0)"
		+ " rx_dropped=\($q.xdp_statistics.rx_dropped // 0)"
		+ " rx=\([$t[].datapath.rx_packets] | add)"
		+ " tx=\([$t[].datapath.tx_packets] | add)"
		+ " drops=\([$t[].datapath.drops | to_entries[].value] | add // 0)"
		+ " reasons=\([$t[].datapath.drops | keys[]] | unique | join(","))"' \
		"$WORKDIR/stats.json"
}

val() { # SNAPSHOT NAME
	sed -nE "s/.*(^| )$2=([^ ]*).*/\2/p" <<<"$1"
}

# What each case must do, as COUNTER (which must grow by exactly K).
# passed, counting everything XDP did not parse as a flow's, may also see
# ND/MLD from the kernel: it must grow by at least K.
declare -A EXPECT=(
	[ok]=tx
	[trunc-ip-10]=passed_malformed
	[trunc-ip-19]=passed_malformed
	[trunc-udp-4]=passed_malformed
	[trunc-tcp-12]=passed_malformed
	[iplen-long]=passed_malformed
	[iplen-short]=drop_malformed
	[udplen-long]=drop_malformed
	[udplen-short]=drop_malformed
	[bad-ipcsum]=tx
	[bad-udpcsum]=tx
	[ipv4-options]=tx
	[frag-first]=passed_fragment
	[frag-later]=passed_fragment
	[tcp-synfin]=tx
	[tcp-noflags]=tx
	[tcp-allflags]=tx
	[v6-ok]=tx
	[v6-hbh]=passed_fragment
	[v6-routing]=passed_fragment
	[v6-frag]=passed_fragment
	[v6-dstopts]=passed_fragment
	[v6-chain]=passed_fragment
	[over-mtu]=drops
	[over-frame]=rx_dropped
	[trailer]=tx
)
CASES="ok trunc-ip-10 trunc-ip-19 trunc-udp-4 trunc-tcp-12 iplen-long iplen-short udplen-long
udplen-short bad-ipcsum bad-udpcsum ipv4-options frag-first frag-later tcp-synfin tcp-noflags
tcp-allflags v6-ok v6-hbh v6-routing v6-frag v6-dstopts v6-chain over-mtu over-frame trailer"

run_case() { # NAME
	local name=$1 want=${EXPECT[$1]} before after b a
	before=$(snapshot) || return 1
	ip netns exec "$NS_CLI" "$PKTINJECT" --dev cli0 --dst-mac "$PX_MAC" --case "$name" \
		--count $K >/dev/null || return 1
	b=$(val "$before" "$want")
	# ferryd publishes the workers' counters once a second: up to 6 s for all K.
	for _ in $(seq 20); do
		sleep 0.3
		after=$(snapshot) || return 1
		a=$(val "$after" "$want")
		[ $((a - b)) -ge $K ] && break
	done
	kill -0 "$FERRYD_PID" || return 1
	log "case $name: $want $b -> $a; after: $after"
	if [ "$want" = passed ]; then
		[ $((a - b)) -ge $K ]
	else
		[ $((a - b)) = $K ]
	fi
}

require_root "test_malformed" || { echo "malformed: 0 passed, 1 failed"; exit 1; }
[ -x "$PKTINJECT" ] || { echo "FAIL: $PKTINJECT not built"; echo "malformed: 0 passed, 1 failed"; exit 1; }
topo_up || { echo "FAIL: topology"; echo "malformed: 0 passed, 1 failed"; exit 1; }
# Room for frames over the 1500 of px-s and over the 2048-byte UMEM frame.
ip -n "$NS_CLI" link set cli0 mtu 3000
ip -n "$NS_PX" link set px-c mtu 3000
PX_MAC=$(ip -n "$NS_PX" -br link show px-c | awk '{print $3}')
in_cli ip neigh replace 198.18.1.1 lladdr "$PX_MAC" dev cli0
in_cli ip -6 neigh replace fd00:1::1 lladdr "$PX_MAC" dev cli0

mkdir -p "$WORKDIR/bpffs"
mount -t bpf bpf "$WORKDIR/bpffs" || { echo "FAIL: bpffs"; echo "malformed: 0 passed, 1 failed"; exit 1; }
on_cleanup "umount '$WORKDIR/bpffs'"
PIN=$WORKDIR/bpffs/ferry
write_config "$PIN"
start_ferryd "$WORKDIR/ferry.yaml" "$WORKDIR/ferryd.log" || {
	check "ferryd starts" false
	summary malformed
	exit 1
}
check "ferryd starts" true

# The stream runs through every case: 400/s for up to 60 s.
N=24000
ip netns exec "$NS_SRV" "$UDPPROBE" server --listen 198.18.2.2:6000 --expect-src 198.18.2.1/32 \
	--expect-sport 40000-40999 --count $N --timeout 90 >"$WORKDIR/server.out" 2>&1 &
srv_pid=$!
track_pid $srv_pid
wait_for grep -q "listening on" "$WORKDIR/server.out"
ip netns exec "$NS_CLI" "$UDPPROBE" client --to 198.18.1.1:5000 --count $N --rate 400 \
	--timeout 20 >"$WORKDIR/client.out" 2>&1 &
cli_pid=$!
track_pid $cli_pid
sleep 0.5

srv_errs() { # the server's kernel: IP header and UDP checksum errors
	ip netns exec "$NS_SRV" nstat -az IpInHdrErrors UdpInCsumErrors |
		awk '/InHdrErrors|InCsumErrors/ {s += $2} END {print s + 0}'
}

# What srv0 receives on the trailer case's port, with frame lengths (tcpdump -e).
capture_start() {
	in_srv timeout 20 tcpdump -i srv0 -e -n -l -c $K 'udp dst port 6001' \
		>"$WORKDIR/trailer.txt" 2>"$WORKDIR/trailer.err" &
	cap_pid=$!
	track_pid $cap_pid
	wait_for grep -q "listening on" "$WORKDIR/trailer.err"
}

for c in $CASES; do
	[ "$c" = bad-ipcsum ] && e0=$(srv_errs)
	[ "$c" = trailer ] && capture_start
	check "$c: ferryd survives, ${EXPECT[$c]} counts it" run_case "$c"
	if [ "$c" = trailer ]; then
		wait $cap_pid
		cat "$WORKDIR/trailer.txt" >&2
		# 14 + 20 + 8 + 32: the trailer stays behind, so the frame fits px-s's MTU.
		check "trailer: the server got all $K datagrams in 74-byte frames" [ "$(grep -c \
			'ethertype IPv4 (0x0800), length 74: .*UDP, length 32' "$WORKDIR/trailer.txt")" = $K ]
	fi
	if [ "$c" = bad-udpcsum ]; then
		check "bad checksums: forwarded still bad, the server's kernel dropped them" \
			[ $(($(srv_errs) - e0)) -ge $((2 * K)) ]
	fi
done

# Everything at once, many times, mixed into the stream.
for r in $(seq 20); do
	for c in $CASES; do
		ip netns exec "$NS_CLI" "$PKTINJECT" --dev cli0 --dst-mac "$PX_MAC" --case "$c" \
			--count 3 >/dev/null || break
	done
done
check "ferryd survives every case 60 more times" kill -0 "$FERRYD_PID"

wait $cli_pid
st=$?
cat "$WORKDIR/client.out"
check "every datagram of the stream echoed intact" [ $st = 0 ]
wait $srv_pid
st=$?
cat "$WORKDIR/server.out"
check "the server got every datagram of the stream intact" [ $st = 0 ]
"$FERRYCTL" -p "$PIN" stats

stop_ferryd
check "ferryd exits 0 on SIGTERM" [ $? = 0 ]
check "frame accounting holds" grep -q "frame accounting holds" "$WORKDIR/ferryd.log"
check "no XDP program left on px-c" eval "! xdp_attached $NS_PX px-c"
summary malformed
