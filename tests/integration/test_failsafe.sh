#!/bin/bash
# Fail-safe: ferryd is SIGKILLed mid-stream.  The XDP program and its pins
# stay by design: ping and TCP to the proxy go on through the kernel, a flow
# with on_failure: pass reaches the kernel (a UDP listener on the flow
# address gets it, counted as passed_no_socket), a flow with on_failure: drop
# is dropped (counted as dropped_no_socket, the listener gets nothing).  A new
# ferryd then starts without any manual cleanup, removing the stale pins and
# detaching the stale program, and both streams work again; a clean stop
# leaves no XDP program and no pin.
#
# The pins live on a bpffs the test mounts itself: with the default pin path
# ferryd's private /sys (ip netns exec) would vanish with the killed process,
# and there would be no stale pin for the restart to recover from.
. "$(dirname "$0")/../lib.sh"
trap ns_cleanup EXIT

N=${FERRY_TEST_DATAGRAMS:-1000}
K=50 # datagrams sent to each flow while ferryd is dead

write_config() { # PIN_PATH
	cat >"$WORKDIR/ferry.yaml" <<-YAML
	pin_path: $1
	interfaces:
	  - name: px-c
	  - name: px-s
	nat:
	  ports: 40000-40999
	flows:
	  - name: open
	    on_failure: pass
	    match:
	      protocol: udp
	      destination: 198.18.1.1/32
	      port: 5000
	    services:
	      - forward:
	          upstream: 198.18.2.2:6000
	  - name: closed
	    on_failure: drop
	    match:
	      protocol: udp
	      destination: 198.18.1.1/32
	      port: 5001
	    services:
	      - forward:
	          upstream: 198.18.2.2:6001
	YAML
}

counter() { # FLOW JSON-PATH
	jq -r ".flows[] | select(.name == \"$1\") | $2" "$WORKDIR/stats.json"
}

read_stats() {
	"$FERRYCTL" -p "$PIN" stats --json >"$WORKDIR/stats.json" && [ -s "$WORKDIR/stats.json" ]
}

no_pins_left() { # DIR
	[ -z "$(ls -A "$1" | grep -vE '^(maps|progs)\.debug$')" ]
}

tcp_to_proxy() {
	ip netns exec "$NS_PX" timeout 5 nc -l 198.18.1.1 7000 >"$WORKDIR/tcp.out" &
	local nc_pid=$!
	track_pid $nc_pid
	sleep 0.3
	echo "hello through the kernel" | in_cli timeout 5 nc -N -w 2 198.18.1.1 7000 || return 1
	wait $nc_pid
	grep -q "hello through the kernel" "$WORKDIR/tcp.out"
}

# stream PORT UPSTREAM_PORT COUNT: a udpprobe stream through ferryd, exact.
stream() {
	local st
	ip netns exec "$NS_SRV" "$UDPPROBE" server --listen 198.18.2.2:"$2" \
		--expect-src 198.18.2.1/32 --expect-sport 40000-40999 --count "$3" --timeout 20 \
		>"$WORKDIR/server-$2.out" 2>&1 &
	local srv_pid=$!
	track_pid $srv_pid
	wait_for grep -q "listening on" "$WORKDIR/server-$2.out"
	in_cli "$UDPPROBE" client --to 198.18.1.1:"$1" --count "$3" --rate 5000 --timeout 10 ||
		return 1
	wait $srv_pid
	st=$?
	cat "$WORKDIR/server-$2.out"
	return $st
}

require_root "test_failsafe" || { echo "failsafe: 0 passed, 1 failed"; exit 1; }
topo_up || { echo "FAIL: topology"; echo "failsafe: 0 passed, 1 failed"; exit 1; }

mkdir -p "$WORKDIR/bpffs"
mount -t bpf bpf "$WORKDIR/bpffs" || { echo "FAIL: bpffs"; echo "failsafe: 0 passed, 1 failed"; exit 1; }
on_cleanup "umount '$WORKDIR/bpffs'"
PIN=$WORKDIR/bpffs/ferry
write_config "$PIN"
check "config with on_failure validates" "$FERRYD" -c "$WORKDIR/ferry.yaml" --check

start_ferryd "$WORKDIR/ferry.yaml" "$WORKDIR/ferryd-1.log" || {
	check "first ferryd starts" false
	summary failsafe
	exit 1
}
check "first ferryd starts" true
check "pass flow streams through ferryd" stream 5000 6000 "$N"
check "drop flow streams through ferryd" stream 5001 6001 "$N"

# Mid-stream: a paced stream (1 s) runs while ferryd is killed.
ip netns exec "$NS_CLI" "$UDPPROBE" client --to 198.18.1.1:5000 --count 2000 --rate 2000 \
	--timeout 5 --no-wait >/dev/null 2>&1 &
bg_pid=$!
track_pid $bg_pid
sleep 0.5
kill -KILL "$FERRYD_PID"
wait "$FERRYD_PID" 2>/dev/null
check "ferryd is gone after SIGKILL" eval "! kill -0 $FERRYD_PID 2>/dev/null"
# Its end goes to the kernel (nobody listens there yet): let it finish.
wait $bg_pid 2>/dev/null

check "XDP program stays on px-c after SIGKILL" xdp_attached "$NS_PX" px-c
check "pins stay after SIGKILL" test -e "$PIN/ferry_flow_stats"
check "ping to the proxy still goes through the kernel" in_cli ping -c 3 -i 0.2 -W 1 198.18.1.1
check "TCP to the proxy still goes through the kernel" tcp_to_proxy

read_stats
pass0=$(counter open .steering.passed_no_socket)
drop0=$(counter closed .steering.dropped_no_socket)

# The pass flow reaches the kernel: a listener on the flow address answers.
ip netns exec "$NS_PX" "$UDPPROBE" server --listen 198.18.1.1:5000 --expect-src 198.18.1.2/32 \
	--count $K --timeout 10 >"$WORKDIR/open.out" 2>&1 &
lpid=$!
track_pid $lpid
wait_for grep -q "listening on" "$WORKDIR/open.out"
check "pass flow: the kernel's listener echoes every datagram" \
	in_cli "$UDPPROBE" client --to 198.18.1.1:5000 --count $K --rate 1000 --timeout 5
wait $lpid
check "pass flow: the listener on the flow address got all of them" [ $? = 0 ]

# The drop flow does not: the listener gets nothing.
ip netns exec "$NS_PX" "$UDPPROBE" server --listen 198.18.1.1:5001 --count $K --timeout 3 \
	--no-echo --any-count >"$WORKDIR/closed.out" 2>&1 &
lpid=$!
track_pid $lpid
wait_for grep -q "listening on" "$WORKDIR/closed.out"
in_cli "$UDPPROBE" client --to 198.18.1.1:5001 --count $K --rate 1000 --timeout 2 --no-wait \
	>/dev/null 2>&1
wait $lpid
cat "$WORKDIR/closed.out"
check "drop flow: the listener on the flow address got nothing" \
	grep -q "received 0 valid, 0 invalid" "$WORKDIR/closed.out"

read_stats
"$FERRYCTL" -p "$PIN" stats
check "pass flow: passed_no_socket grew by $K" \
	[ "$(counter open .steering.passed_no_socket)" -ge $((pass0 + K)) ]
check "drop flow: dropped_no_socket grew by $K" \
	[ "$(counter closed .steering.dropped_no_socket)" = $((drop0 + K)) ]
check "pass flow: nothing dropped" [ "$(counter open .steering.dropped_no_socket)" = 0 ]

# A new ferryd recovers on its own.
start_ferryd "$WORKDIR/ferry.yaml" "$WORKDIR/ferryd-2.log"
check "second ferryd starts without manual cleanup" [ $? = 0 ]
check "it removed the stale pins" grep -q "removing stale pin" "$WORKDIR/ferryd-2.log"
check "it detached the stale program" grep -q "left by an earlier run" "$WORKDIR/ferryd-2.log"
check "pass flow streams again" stream 5000 6000 "$N"
check "drop flow streams again" stream 5001 6001 "$N"
check "ping to the proxy still works" in_cli ping -c 2 -i 0.2 -W 1 198.18.1.1

# A second ferryd on the same pin path while one runs is refused (the lock).
ip netns exec "$NS_PX" timeout 10 "$FERRYD" -c "$WORKDIR/ferry.yaml" >"$WORKDIR/ferryd-3.log" 2>&1
st=$?
check "a second live ferryd on the same pin path fails" [ $st = 1 ]
check "... saying the pin path is in use" grep -q "in use by another running ferryd" \
	"$WORKDIR/ferryd-3.log"
check "... and the running one still streams" stream 5000 6000 200

stop_ferryd
check "ferryd exits 0 on SIGTERM" [ $? = 0 ]
check "frame accounting holds" grep -q "frame accounting holds" "$WORKDIR/ferryd-2.log"
check "no XDP program left on px-c" eval "! xdp_attached $NS_PX px-c"
check "no XDP program left on px-s" eval "! xdp_attached $NS_PX px-s"
check "no pin left" no_pins_left "$WORKDIR/bpffs"
summary failsafe
