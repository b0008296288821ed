#!/bin/bash
# Application services on two queues: ferryd runs two workers on 2-queue
# veths with an `app` slot in the flow's chain; one application
# (tests/tools/app_echo, as nobody) serves both queues of the slot's area.
# Eight UDP clients on distinct source ports, four sending on each queue
# (XPS, as in test_multiqueue.sh), each datagram echoed by the server: the
# slot XORs the requests and the echoes, so every echo comes back intact at
# its client while the server finds every datagram transformed (not one a
# valid probe).  The application returned packets on both queues, their sum
# is everything sent both ways, and ferryctl apps counts the same.  In
# native and generic (skb) XDP mode, interrupt driven (the workers sleep on
# the application's eventfd while it has packets), and native busy-poll (the
# workers poll the slot instead).  Then the slot's application (app_xor,
# libferry_app) restarted at once five times attaches each time.
. "$(dirname "$0")/../lib.sh"
trap ns_cleanup EXIT

APP_ECHO=$BUILD/tests/app_echo
N=${FERRY_TEST_DATAGRAMS_PER_CLIENT:-200} # per client
CLIENTS=8
TOTAL=$((CLIENTS * N))
KEY=0x5a
SOCK=$WORKDIR/ctl/ferryd.sock

write_config() { # XDP_MODE POLL_MODE
	cat >"$WORKDIR/ferry.yaml" <<-YAML
	queues: 2
	# px-c and px-s have a third RX queue (see test_multiqueue.sh) that no packet uses.
	unserved_queues: kernel
	cpus: [0, 1]
	control_socket: $SOCK
	interfaces:
	  - name: px-c
	    xdp_mode: $1
	    poll_mode: $2
	  - name: px-s
	    xdp_mode: $1
	    poll_mode: $2
	nat:
	  ports: 40000-40999
	flows:
	  - name: mq
	    match: {protocol: udp, destination: 198.18.1.1/32, port: 5000}
	    services:
	      - app: {name: mq, owner: nobody}
	      - forward: {upstream: "198.18.2.2:6000"}
	YAML
}

# set_xps NS DEV TXQ0_MASK TXQ1_MASK TXQ2_MASK: which CPUs send on which TX queue.
set_xps() {
	ip netns exec "$1" sh -c "echo $3 >/sys/class/net/$2/queues/tx-0/xps_cpus &&
		echo $4 >/sys/class/net/$2/queues/tx-1/xps_cpus &&
		echo $5 >/sys/class/net/$2/queues/tx-2/xps_cpus"
}

apps() {
	"$FERRYCTL" -p "/proc/$FERRYD_PID/root/sys/fs/bpf/ferry" apps --json >"$WORKDIR/apps.json" &&
		[ -s "$WORKDIR/apps.json" ]
}
app() { jq -r ".apps[] | select(.slot == \"mq\") | $1" "$WORKDIR/apps.json"; }
# apps_settle EXPR WANT: until EXPR of the slot equals WANT, up to 10 s.
apps_settle() {
	for _ in $(seq 50); do
		apps && [ "$(app "$1")" = "$2" ] && return 0
		sleep 0.2
	done
	return 1
}

run_case() { # NAME XDP_MODE POLL_MODE
	local name=$1 mode=$2 log=$WORKDIR/ferryd-$1.log out=$WORKDIR/app-$1.out st i srv q0 q1
	local -a pids=()

	write_config "$mode" "$3"
	# A veth hands TX queue q to the peer's RX queue q natively, q - 1 in skb mode.
	if [ "$mode" = skb ]; then
		set_xps "$NS_CLI" cli0 1 0 2 || return 1
	else
		set_xps "$NS_CLI" cli0 1 2 0 || return 1
	fi
	set_xps "$NS_SRV" srv0 3 0 0 || return 1
	start_ferryd "$WORKDIR/ferry.yaml" "$log" || {
		check "$name: ferryd starts" false
		return 1
	}
	check "$name: ferryd starts with two workers" grep -q "worker 1: queue 1" "$log"
	ip netns exec "$NS_PX" setpriv --reuid=65534 --regid=65534 --clear-groups \
		"$APP_ECHO" --socket "$SOCK" --slot mq --key "$KEY" >"$out" 2>&1 &
	local app_pid=$!
	track_pid $app_pid
	check "$name: app_echo attaches to both queues" \
		wait_for grep -q 'app_echo: attached slot mq, 2 queues' "$out"
	# Every datagram on its client's CPU's queue (see test_multiqueue.sh).
	ip -n "$NS_CLI" neigh replace 198.18.1.1 dev cli0 nud permanent \
		lladdr "$(ip -n "$NS_PX" -j link show px-c | jq -r '.[0].address')" || return 1

	ip netns exec "$NS_SRV" "$UDPPROBE" server --listen 198.18.2.2:6000 --count "$TOTAL" \
		--timeout 60 --echo-any --any-count >"$WORKDIR/server-$name.out" 2>&1 &
	srv=$!
	track_pid $srv
	wait_for grep -q "listening on" "$WORKDIR/server-$name.out"
	for i in $(seq 0 $((CLIENTS - 1))); do
		# Clients 0-3 on CPU 0 (queue 0), clients 4-7 on CPU 1 (queue 1).
		ip netns exec "$NS_CLI" taskset -c $((i / 4)) "$UDPPROBE" client --to 198.18.1.1:5000 \
			--bind 198.18.1.2:$((30000 + i)) --count "$N" --min-size 16 --max-size 1400 \
			--rate 500 --window 8 --timeout 30 >"$WORKDIR/client-$name-$i.out" 2>&1 &
		pids+=($!)
		track_pid $!
	done
	for i in $(seq 0 $((CLIENTS - 1))); do
		wait "${pids[$i]}"
		st=$?
		check "$name: client $i (port $((30000 + i))) gets all $N echoes back intact" [ $st = 0 ]
		[ $st = 0 ] || cat "$WORKDIR/client-$name-$i.out"
	done
	kill -TERM $srv 2>/dev/null
	wait $srv
	cat "$WORKDIR/server-$name.out"
	check "$name: the server saw every datagram transformed" \
		grep -q "received 0 valid, $TOTAL invalid" "$WORKDIR/server-$name.out"
	check "$name: ferryctl apps: in and out are both ways of every datagram" \
		apps_settle .out $((2 * TOTAL))
	check "$name: ferryctl apps: in = out, nothing dropped, bypassed or bad" \
		[ "$(app '"\(.in) \(.dropped) \(.bypassed) \(.bad_desc) \(.queue_depth)"')" = "$((2 * TOTAL)) 0 0 0 0" ]
	kill -TERM $app_pid
	wait $app_pid
	cat "$out"
	q0=$(sed -n 's/^app_echo: queue 0 returned \([0-9]*\)$/\1/p' "$out")
	q1=$(sed -n 's/^app_echo: queue 1 returned \([0-9]*\)$/\1/p' "$out")
	check "$name: the application served queue 0 ($q0 packets)" [ "${q0:-0}" -gt 0 ]
	check "$name: and queue 1 ($q1 packets)" [ "${q1:-0}" -gt 0 ]
	check "$name: together everything sent both ways" [ $((${q0:-0} + ${q1:-0})) = $((2 * TOTAL)) ]
	# Restarted at once (systemd's Restart=), five times: each attaches
	# while both workers let the last one's area go (test_app.sh (k)).
	local r ok=""
	for r in 1 2 3 4 5; do
		ip netns exec "$NS_PX" setpriv --reuid=65534 --regid=65534 --clear-groups \
			"$BUILD/examples/app_xor" -s "$SOCK" mq $((KEY)) >"$WORKDIR/app-$name-r$r.out" 2>&1 &
		app_pid=$!
		track_pid $app_pid
		wait_for grep -q "app_xor: attached to 'mq'" "$WORKDIR/app-$name-r$r.out" || break
		ok="$ok $r"
		kill -TERM $app_pid
		wait $app_pid
	done
	check "$name: restarted at once, 5 times, the application attaches each time" \
		[ "$ok" = " 1 2 3 4 5" ]
	[ "$ok" = " 1 2 3 4 5" ] || cat "$WORKDIR/app-$name-r$r.out"
	stop_ferryd
	check "$name: ferryd exits 0 on SIGTERM" [ $? = 0 ]
	check "$name: every UMEM frame accounted for, in both workers" \
		[ "$(grep -c "frame accounting holds" "$log")" = 2 ]
}

require_root test_app_mq || { echo "test_app_mq: 0 passed, 1 failed"; exit 1; }
if [ "$(nproc)" -lt 2 ]; then
	echo "FAIL: test_app_mq needs 2 CPUs (cpus: [0, 1])"
	echo "test_app_mq: 0 passed, 1 failed"
	exit 1
fi
if [ ! -x "$APP_ECHO" ]; then
	log "FAIL: $APP_ECHO is missing (make build/tests/app_echo)"
	echo "test_app_mq: 0 passed, 1 failed"
	exit 1
fi
chmod 0711 "$WORKDIR"
topo_up 2 3 || { echo "FAIL: topology"; echo "test_app_mq: 0 passed, 1 failed"; exit 1; }
for mode in ${1:-native skb busy-poll}; do
	case $mode in
	busy-poll) run_case busy-poll native busy-poll ;;
	*) run_case "$mode" "$mode" interrupt ;;
	esac
done
summary test_app_mq
