#!/bin/bash
# Application services (issue 13): an unprivileged process attaches to a
# flow's `app` slot through ferryd's control socket and works on the
# flow's payloads in a shared packet area, in native and in generic (skb)
# XDP mode.  The application is tests/tools/app_echo (written against
# services/ferry_app.h alone): it XORs every payload with a key.  It runs
# as nobody (setpriv, no groups) in the proxy namespace.
#
#   (a) exact bytes: datagrams of known text sent to the slot's flow reach
#       a receiver behind ferryd XORed with the key, byte for byte.
#   (b) a stream both ways: the slot XORs the requests and the echoes, so
#       every echo is back intact at the client while the server found
#       every datagram transformed (not one a valid probe).
#   (c) a process of another uid is refused (-EACCES) and ferryd logs it;
#       a second process of the owner while one is attached gets -EBUSY.
#   (d) SIGKILL of the application mid-stream, on_failure bypass: the
#       stream goes on untransformed (the server sees valid datagrams after
#       the kill), counted as bypassed, and ferryd logs the detach.
#   (e) the same with on_failure drop: nothing untransformed reaches the
#       server, the rest is counted as app_unavailable.
#   (f) a hostile application (three bad descriptors before each good one):
#       every bad one counted in bad_desc, the stream still intact, ferryd
#       alive, and a plain flow beside it unaffected.  This application is
#       a re-attach after (d): traffic is transformed again.
#   (apps) `ferryctl apps --json` lists the slots, the attached pid and
#       uid, and counters that agree with what was sent.
#   (i) a slow application (holds each batch 3 s) with packets out at it:
#       the worker sleeps on the slot's eventfd instead of polling FROM_APP,
#       so its threads take little CPU over 2 s of that wait (the polling
#       worker took 13% of one), ferryctl apps counts its sleeps, and the
#       held datagrams arrive transformed once returned.  Then 200
#       ping-pongs through app_xor (libferry_app, which wakes the worker).
#   (j) emit: app_xor -e emits each payload as received ahead of the XORed
#       one (ferry_app_emit()): the server gets exactly 2N datagrams, N as
#       sent and N XORed, and ferryctl apps counts N emitted, none dropped.
#   (k) an application restarted at once, five times in a row (as
#       systemd's Restart= would): each attaches, though the last one's
#       area may still be being released (ferryd wakes its workers to let
#       it go, libferry_app tries again on -EAGAIN).
#   (g) a hung application (takes nothing): its packets time out and are
#       dropped (on_failure drop), and after three stalls in a row (timeouts
#       a timeout_ms apart, with no answer) ferryd detaches it, logged, closing its connection.
#   (h) a reload that changes the slot's flow detaches its application
#       (logged, connection closed); a new one attaches to the new slot and
#       transforms again.
. "$(dirname "$0")/../lib.sh"
trap ns_cleanup EXIT

APP_ECHO=$BUILD/tests/app_echo
N=${FERRY_TEST_DATAGRAMS:-1000}
KEY=0x5a
# nobody reaches the socket through the work directory (mktemp makes it 0700).
SOCK=$WORKDIR/ctl/ferryd.sock

write_config() { # MODE
	cat >"$WORKDIR/ferry.yaml" <<-YAML
	control_socket: $SOCK
	interfaces:
	  - name: px-c
	    xdp_mode: $1
	  - name: px-s
	    xdp_mode: $1
	nat:
	  ports: 40000-40999
	flows:
	  - name: xor
	    match: {protocol: udp, destination: 198.18.1.1, port: 5000}
	    services:
	      - app: {name: xor, owner: nobody}
	      - forward: {upstream: "198.18.2.2:6000"}
	  - name: xdrop
	    match: {protocol: udp, destination: 198.18.1.1, port: 5001}
	    services:
	      - app: {name: xdrop, owner: nobody, on_failure: drop, timeout_ms: 50}
	      - forward: {upstream: "198.18.2.2:6001"}
	  - name: xslow
	    match: {protocol: udp, destination: 198.18.1.1, port: 5003}
	    services:
	      - app: {name: xslow, owner: nobody, timeout_ms: 10000}
	      - forward: {upstream: "198.18.2.2:6003"}
	  - name: plain
	    match: {protocol: udp, destination: 198.18.1.1, port: 5002}
	    services:
	      - forward: {upstream: "198.18.2.2:6002"}
	YAML
}

# app_start NAME SLOT [ARGS...]: app_echo as nobody; its PID in APP_PID.
app_start() {
	local name=$1 slot=$2
	shift 2
	ip netns exec "$NS_PX" setpriv --reuid=65534 --regid=65534 --clear-groups \
		"$APP_ECHO" --socket "$SOCK" --slot "$slot" --key "$KEY" "$@" \
		>"$WORKDIR/app-$name.out" 2>&1 &
	APP_PID=$!
	track_pid "$APP_PID"
	wait_for grep -q 'app_echo: attached' "$WORKDIR/app-$name.out"
}

stats() {
	"$FERRYCTL" -p "/proc/$FERRYD_PID/root/sys/fs/bpf/ferry" stats --json >"$WORKDIR/stats.json" &&
		[ -s "$WORKDIR/stats.json" ]
}
counter() { jq -r ".flows[] | select(.name == \"$1\") | $2 // 0" "$WORKDIR/stats.json"; }
# settle FLOW EXPR MIN: until EXPR of FLOW is at least MIN, up to 10 s (published once a second).
settle() {
	for _ in $(seq 50); do
		stats && [ "$(counter "$1" "$2")" -ge "$3" ] && return 0
		sleep 0.2
	done
	return 1
}

apps() {
	"$FERRYCTL" -p "/proc/$FERRYD_PID/root/sys/fs/bpf/ferry" apps --json >"$WORKDIR/apps.json" &&
		[ -s "$WORKDIR/apps.json" ]
}
app() { jq -r ".apps[] | select(.slot == \"$1\") | $2" "$WORKDIR/apps.json"; }
# worker_ticks: CPU time (utime + stime, clock ticks) of ferryd's worker threads together.
worker_ticks() {
	local t sum=0
	for t in /proc/"$FERRYD_PID"/task/*; do
		case "$(cat "$t/comm" 2>/dev/null)" in ferry-q*) ;; *) continue ;; esac
		# Fields 14 and 15, after the comm in parentheses.
		sum=$((sum + $(sed 's/.*) //' "$t/stat" | awk '{print $12 + $13}')))
	done
	echo "$sum"
}
# apps_settle SLOT EXPR WANT: until EXPR of SLOT equals WANT, up to 10 s.
apps_settle() {
	for _ in $(seq 50); do
		apps && [ "$(app "$1" "$2")" = "$3" ] && return 0
		sleep 0.2
	done
	return 1
}

# The exact-bytes receiver (server namespace) and sender (client namespace).
cat >"$WORKDIR/xor_check.py" <<'PY'
import socket, sys, time
role, key = sys.argv[1], int(sys.argv[2], 0)
msgs = [("ferry app %02d: The quick brown fox jumps over the lazy dog" % i).encode() for i in range(5)]
if role == "recv":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("198.18.2.2", 6000))
    s.settimeout(10)
    want = {bytes(b ^ key for b in m) for m in msgs}
    got = set()
    try:
        while got != want:
            d, _ = s.recvfrom(2048)
            if d in want:
                got.add(d)
            else:
                print("unexpected datagram:", d[:80])
    except socket.timeout:
        pass
    print("received %d of %d transformed exactly" % (len(got), len(want)))
    sys.exit(0 if got == want else 1)
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # Again for a while: forward may hold the first ones while the neighbour resolves.
    for _ in range(10):
        for m in msgs:
            s.sendto(m, ("198.18.1.1", 5000))
        time.sleep(0.2)
PY

run_mode() {
	local mode=$1 out srv cli kill_at got n_ret bad
	write_config "$mode"
	start_ferryd "$WORKDIR/ferry.yaml" "$WORKDIR/ferryd-$mode.log" || {
		check "$mode: ferryd starts" false
		return
	}
	check "$mode: the control socket is there, mode 0666" \
		[ "$(stat -c %a "$SOCK" 2>/dev/null)" = 666 ]

	# (a)
	check "$mode: app_echo attaches as nobody" app_start a xor
	ip netns exec "$NS_SRV" python3 "$WORKDIR/xor_check.py" recv "$KEY" >"$WORKDIR/xor-$mode.out" 2>&1 &
	srv=$!
	track_pid $srv
	sleep 0.3
	in_cli python3 "$WORKDIR/xor_check.py" send "$KEY"
	wait $srv
	check "$mode: (a) the server receives every payload XORed with the key, byte for byte" \
		grep -q 'received 5 of 5 transformed exactly' "$WORKDIR/xor-$mode.out"

	# (b)
	ip netns exec "$NS_SRV" "$UDPPROBE" server --listen 198.18.2.2:6000 --count "$N" --timeout 20 --echo-any --any-count \
		>"$WORKDIR/srv-b-$mode.out" 2>&1 &
	srv=$!
	track_pid $srv
	wait_for grep -q "listening on" "$WORKDIR/srv-b-$mode.out"
	check "$mode: (b) every echo through the slot both ways comes back intact" \
		in_cli "$UDPPROBE" client --to 198.18.1.1:5000 --count "$N" --timeout 20
	kill -TERM $srv 2>/dev/null
	wait $srv
	check "$mode: (b) the server saw every datagram transformed" \
		grep -q "received 0 valid, $N invalid" "$WORKDIR/srv-b-$mode.out"
	check "$mode: (b) to_app counted both directions" \
		settle xor '.services[0].counters.to_app' $((2 * N))

	# (apps)
	check "$mode: (apps) ferryctl apps shows the attached pid" apps_settle xor .pid "$APP_PID"
	check "$mode: (apps) and its uid" [ "$(app xor .uid)" = 65534 ]
	check "$mode: (apps) the owner and flow" [ "$(app xor .owner_uid):$(app xor .flow)" = 65534:xor ]
	check "$mode: (apps) in = out, nothing out now" \
		[ "$(app xor .in)" = "$(app xor .out)" ] && [ "$(app xor .queue_depth)" = 0 ]
	check "$mode: (apps) in counts the stream both ways" [ "$(app xor .in)" -ge $((2 * N)) ]
	check "$mode: (apps) a round trip measured" [ "$(app xor .rtt_avg_ns)" -gt 0 ]
	check "$mode: (apps) the drop slot: nobody attached" [ "$(app xdrop .attached)" = false ]
	"$FERRYCTL" -p "/proc/$FERRYD_PID/root/sys/fs/bpf/ferry" apps >"$WORKDIR/apps-$mode.txt"
	check "$mode: (apps) text output" \
		grep -q "^app xor (flow xor, owner uid 65534, on_failure bypass): attached pid $APP_PID uid 65534" \
		"$WORKDIR/apps-$mode.txt"

	# (i): (d) kills the application of (a), in APP_PID again after this.
	local a_pid=$APP_PID t0 t1
	check "$mode: (i) a slow application attaches" app_start i xslow --hold-ms 3000
	cat >"$WORKDIR/slow_recv.py" <<-'PY'
	import socket, sys
	key = int(sys.argv[1], 0)
	want = {bytes(b ^ key for b in ("slow %d" % i).encode()) for i in range(5)}
	s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
	s.bind(("198.18.2.2", 6003))
	s.settimeout(15)
	got = set()
	try:
	    while got != want:
	        got.add(s.recvfrom(2048)[0])
	except socket.timeout:
	    pass
	print("slow: %d of %d transformed" % (len(got & want), len(want)))
	PY
	ip netns exec "$NS_SRV" python3 "$WORKDIR/slow_recv.py" "$KEY" >"$WORKDIR/slow-$mode.out" 2>&1 &
	srv=$!
	track_pid $srv
	sleep 0.3
	in_cli python3 -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(5): s.sendto(("slow %d" % i).encode(), ("198.18.1.1", 5003))'
	sleep 0.5
	t0=$(worker_ticks)
	sleep 2
	t1=$(worker_ticks)
	apps
	log "$mode: (i) worker CPU over 2 s with packets out: $((t1 - t0)) ticks of $(getconf CLK_TCK)/s, depth $(app xslow .queue_depth)"
	check "$mode: (i) packets were out at the application meanwhile" [ "$(app xslow .queue_depth)" -gt 0 ]
	# A polling worker took 26 of 200 ticks here (measured), a sleeping one 0.
	check "$mode: (i) the worker sleeps meanwhile (under 4% of a CPU)" [ $((t1 - t0)) -lt 8 ]
	check "$mode: (i) ferryctl apps counts its sleeps" [ "$(app xslow .sleeps)" -gt 0 ]
	wait $srv
	check "$mode: (i) the held datagrams arrive transformed" \
		grep -q 'slow: 5 of 5 transformed' "$WORKDIR/slow-$mode.out"
	kill -TERM "$APP_PID"
	wait "$APP_PID"
	APP_PID=$a_pid

	# (c)
	ip netns exec "$NS_PX" setpriv --reuid=4242 --regid=4242 --clear-groups \
		"$APP_ECHO" --socket "$SOCK" --slot xor --key 1 >"$WORKDIR/app-c-$mode.out" 2>&1
	check "$mode: (c) another uid is refused with -EACCES" \
		grep -q 'refused: -13 ' "$WORKDIR/app-c-$mode.out"
	check "$mode: (c) ferryd logs the refusal with pid and uid" \
		grep -q 'app slot xor: refused pid [0-9]* uid 4242' "$WORKDIR/ferryd-$mode.log"
	ip netns exec "$NS_PX" setpriv --reuid=65534 --regid=65534 --clear-groups \
		"$APP_ECHO" --socket "$SOCK" --slot xor --key 1 >"$WORKDIR/app-c2-$mode.out" 2>&1
	check "$mode: (c) a second application of the owner gets -EBUSY" \
		grep -q 'refused: -16 ' "$WORKDIR/app-c2-$mode.out"
	ip netns exec "$NS_PX" setpriv --reuid=65534 --regid=65534 --clear-groups \
		"$APP_ECHO" --socket "$SOCK" --slot nope --key 1 >"$WORKDIR/app-c3-$mode.out" 2>&1
	check "$mode: (c) an unknown slot gets -ENOENT" \
		grep -q 'refused: -2 ' "$WORKDIR/app-c3-$mode.out"

	# (d): one way, the server counts what arrives transformed (invalid) and not (valid).
	ip netns exec "$NS_SRV" "$UDPPROBE" server --listen 198.18.2.2:6000 --count "$N" --timeout 20 --no-echo \
		--any-count >"$WORKDIR/srv-d-$mode.out" 2>&1 &
	srv=$!
	track_pid $srv
	wait_for grep -q "listening on" "$WORKDIR/srv-d-$mode.out"
	in_cli "$UDPPROBE" client --to 198.18.1.1:5000 --count "$N" --rate 500 --no-wait \
		>/dev/null 2>&1 &
	cli=$!
	track_pid $cli
	sleep 0.8
	kill -KILL "$APP_PID"
	wait "$APP_PID" 2>/dev/null
	wait $cli
	sleep 0.5
	kill -TERM $srv 2>/dev/null
	wait $srv
	out=$(grep -o 'received [0-9]* valid, [0-9]* invalid' "$WORKDIR/srv-d-$mode.out")
	log "$mode: (d) server: $out"
	check "$mode: (d) transformed before the kill" [ "$(echo "$out" | awk '{print $4}')" -gt 0 ]
	check "$mode: (d) untransformed after it (bypass)" [ "$(echo "$out" | awk '{print $2}')" -gt 0 ]
	check "$mode: (d) ferryd logs the detach" \
		grep -q 'app slot xor: pid [0-9]* closed its connection: detached' "$WORKDIR/ferryd-$mode.log"
	check "$mode: (d) bypassed counted" settle xor '.services[0].counters.bypassed' 1
	check "$mode: (d) ferryctl apps: detached" apps_settle xor .attached false

	# (lib) The shipped example on libferry_app, against the real ferryd:
	# the same transform as app_echo's, the same bytes at the server.
	ip netns exec "$NS_PX" setpriv --reuid=65534 --regid=65534 --clear-groups \
		"$BUILD/examples/app_xor" -s "$SOCK" xor $((KEY)) >"$WORKDIR/app-lib-$mode.out" 2>&1 &
	local lib_pid=$!
	track_pid $lib_pid
	check "$mode: (lib) the example app_xor (libferry_app) attaches as nobody" \
		wait_for grep -q "app_xor: attached to 'xor'" "$WORKDIR/app-lib-$mode.out"
	ip netns exec "$NS_SRV" python3 "$WORKDIR/xor_check.py" recv "$KEY" >"$WORKDIR/xor-lib-$mode.out" 2>&1 &
	srv=$!
	track_pid $srv
	sleep 0.3
	in_cli python3 "$WORKDIR/xor_check.py" send "$KEY"
	wait $srv
	check "$mode: (lib) the server receives every payload XORed by app_xor, byte for byte" \
		grep -q 'received 5 of 5 transformed exactly' "$WORKDIR/xor-lib-$mode.out"
	ip netns exec "$NS_SRV" "$UDPPROBE" server --listen 198.18.2.2:6000 --count 200 --timeout 20 --echo-any --any-count \
		>"$WORKDIR/srv-pp-$mode.out" 2>&1 &
	srv=$!
	track_pid $srv
	wait_for grep -q "listening on" "$WORKDIR/srv-pp-$mode.out"
	check "$mode: (i) 200 ping-pongs through app_xor, one at a time, all intact" \
		in_cli "$UDPPROBE" client --to 198.18.1.1:5000 --count 200 --window 1 --timeout 20
	kill -TERM $srv 2>/dev/null
	wait $srv
	kill -TERM $lib_pid
	wait $lib_pid
	check "$mode: (lib) app_xor exits 0 on SIGTERM" [ $? = 0 ]
	check "$mode: (lib) ferryd saw it detach" apps_settle xor .attached false

	# (j)
	cat >"$WORKDIR/emit_check.py" <<-'PY'
	import socket, sys, time
	role, key, n = sys.argv[1], int(sys.argv[2], 0), int(sys.argv[3])
	msgs = [("emit %03d: ferry app emits a copy" % i).encode() for i in range(n)]
	if role == "recv":
	    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
	    s.bind(("198.18.2.2", 6000))
	    s.settimeout(3)
	    got = []
	    try:
	        while True:
	            got.append(s.recvfrom(2048)[0])
	    except socket.timeout:
	        pass
	    plain = sorted(d for d in got if d in set(msgs))
	    xored = sorted(d for d in got if d in {bytes(b ^ key for b in m) for m in msgs})
	    print("emit: %d datagrams, %d as sent, %d transformed, %d other" %
	          (len(got), len(plain), len(xored), len(got) - len(plain) - len(xored)))
	    ok = plain == sorted(msgs) and len(xored) == n and len(set(xored)) == n
	    sys.exit(0 if ok and len(got) == 2 * n else 1)
	else:
	    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
	    for m in msgs:
	        s.sendto(m, ("198.18.1.1", 5000))
	        time.sleep(0.005)
	PY
	ip netns exec "$NS_PX" setpriv --reuid=65534 --regid=65534 --clear-groups \
		"$BUILD/examples/app_xor" -e -s "$SOCK" xor $((KEY)) >"$WORKDIR/app-emit-$mode.out" 2>&1 &
	lib_pid=$!
	track_pid $lib_pid
	check "$mode: (j) app_xor -e attaches" \
		wait_for grep -q "app_xor: attached to 'xor'" "$WORKDIR/app-emit-$mode.out"
	ip netns exec "$NS_SRV" python3 "$WORKDIR/emit_check.py" recv "$KEY" 100 >"$WORKDIR/emit-$mode.out" 2>&1 &
	srv=$!
	track_pid $srv
	sleep 0.3
	in_cli python3 "$WORKDIR/emit_check.py" send "$KEY" 100
	check "$mode: (j) the server gets exactly 2N: each datagram as sent and XORed" wait $srv
	log "$mode: (j) $(cat "$WORKDIR/emit-$mode.out")"
	check "$mode: (j) ferryctl apps: 100 emitted" apps_settle xor .emitted 100
	check "$mode: (j) none dropped" [ "$(app xor .emit_dropped)" = 0 ]
	kill -TERM $lib_pid
	wait $lib_pid
	check "$mode: (j) app_xor: every emit accepted" \
		grep -q 'app_xor: emitted 100, failed 0' "$WORKDIR/app-emit-$mode.out"
	apps_settle xor .attached false

	# (k)
	local r pids="" before
	before=$(grep -c "app slot xor: pid .* closed its connection: detached" "$WORKDIR/ferryd-$mode.log")
	for r in 1 2 3 4 5; do
		ip netns exec "$NS_PX" setpriv --reuid=65534 --regid=65534 --clear-groups \
			"$BUILD/examples/app_xor" -s "$SOCK" xor $((KEY)) >"$WORKDIR/app-k$r-$mode.out" 2>&1 &
		lib_pid=$!
		track_pid $lib_pid
		wait_for grep -q "app_xor: attached to 'xor'" "$WORKDIR/app-k$r-$mode.out" || break
		pids="$pids $r"
		kill -TERM $lib_pid
		wait $lib_pid
	done
	check "$mode: (k) restarted at once, 5 times, the application attaches each time" \
		[ "$pids" = " 1 2 3 4 5" ]
	[ "$pids" = " 1 2 3 4 5" ] || log "$mode: (k) run $r: $(cat "$WORKDIR/app-k$r-$mode.out")"
	apps_settle xor .attached false
	check "$mode: (k) ferryd logs the detach of each" \
		[ "$(grep -c "app slot xor: pid .* closed its connection: detached" "$WORKDIR/ferryd-$mode.log")" = $((before + 5)) ]

	# (e)
	check "$mode: (e) app_echo attaches to the drop slot" app_start e xdrop
	ip netns exec "$NS_SRV" "$UDPPROBE" server --listen 198.18.2.2:6001 --count "$N" --timeout 20 --no-echo \
		--any-count >"$WORKDIR/srv-e-$mode.out" 2>&1 &
	srv=$!
	track_pid $srv
	wait_for grep -q "listening on" "$WORKDIR/srv-e-$mode.out"
	in_cli "$UDPPROBE" client --to 198.18.1.1:5001 --count "$N" --rate 500 --no-wait \
		>/dev/null 2>&1 &
	cli=$!
	track_pid $cli
	sleep 0.8
	kill -KILL "$APP_PID"
	wait "$APP_PID" 2>/dev/null
	wait $cli
	sleep 0.5
	kill -TERM $srv 2>/dev/null
	wait $srv
	out=$(grep -o 'received [0-9]* valid, [0-9]* invalid' "$WORKDIR/srv-e-$mode.out")
	log "$mode: (e) server: $out"
	check "$mode: (e) transformed before the kill" [ "$(echo "$out" | awk '{print $4}')" -gt 0 ]
	check "$mode: (e) nothing untransformed after it (drop)" [ "$(echo "$out" | awk '{print $2}')" = 0 ]
	check "$mode: (e) the rest counted as app_unavailable" \
		settle xdrop '.datapath.drops.app_unavailable' 1

	# (f)
	check "$mode: (f) a hostile application re-attaches to the slot" app_start f xor --hostile
	ip netns exec "$NS_SRV" "$UDPPROBE" server --listen 198.18.2.2:6000 --count "$N" --timeout 20 --echo-any --any-count \
		>"$WORKDIR/srv-f-$mode.out" 2>&1 &
	srv=$!
	track_pid $srv
	ip netns exec "$NS_SRV" "$UDPPROBE" server --listen 198.18.2.2:6002 --count "$N" --timeout 20 \
		>"$WORKDIR/srv-p-$mode.out" 2>&1 &
	track_pid $!
	wait_for grep -q "listening on" "$WORKDIR/srv-p-$mode.out"
	in_cli "$UDPPROBE" client --to 198.18.1.1:5002 --count "$N" --timeout 20 \
		>"$WORKDIR/cli-p-$mode.out" 2>&1 &
	cli=$!
	track_pid $cli
	check "$mode: (f) the stream through the hostile application is still intact" \
		in_cli "$UDPPROBE" client --to 198.18.1.1:5000 --count "$N" --timeout 20
	check "$mode: (f) a plain flow beside it is unaffected" wait $cli
	kill -TERM $srv 2>/dev/null
	wait $srv
	check "$mode: (f) transformed again after the re-attach" \
		grep -q "received 0 valid, $N invalid" "$WORKDIR/srv-f-$mode.out"
	kill -TERM "$APP_PID"
	wait "$APP_PID"
	n_ret=$(sed -n 's/^app_echo: returned \([0-9]*\), bad \([0-9]*\)$/\1/p' "$WORKDIR/app-f.out")
	bad=$(sed -n 's/^app_echo: returned \([0-9]*\), bad \([0-9]*\)$/\2/p' "$WORKDIR/app-f.out")
	log "$mode: (f) app_echo returned ${n_ret:-?}, wrote ${bad:-?} bad descriptors"
	check "$mode: (f) the application wrote bad descriptors" [ "${bad:-0}" -gt 0 ]
	check "$mode: (f) every bad descriptor counted in bad_desc" \
		settle xor '.services[0].counters.bad_desc' "${bad:-1}"
	check "$mode: (f) and no more than written" \
		[ "$(counter xor '.services[0].counters.bad_desc')" = "${bad:-x}" ]

	# (g)
	check "$mode: (g) a hung application attaches" app_start g xdrop --stall
	# 0.4 s of packets: timeouts through more than three timeouts (50 ms) of a stall.
	in_cli "$UDPPROBE" client --to 198.18.1.1:5001 --count 40 --rate 100 --no-wait >/dev/null 2>&1
	check "$mode: (g) ferryd detaches it" \
		wait_for grep -q 'app_echo: detached by ferryd' "$WORKDIR/app-g.out"
	check "$mode: (g) and logs why" \
		grep -q "app slot xdrop: pid $APP_PID stopped answering: detached" "$WORKDIR/ferryd-$mode.log"
	check "$mode: (g) its packets timed out" settle xdrop '.services[0].counters.timeouts' 3
	wait "$APP_PID"

	# (h)
	check "$mode: (h) an application attaches before the reload" app_start h1 xor
	sed -i 's/{name: xor, owner: nobody}/{name: xor, owner: nobody, timeout_ms: 60}/' \
		"$WORKDIR/ferry.yaml"
	kill -HUP "$FERRYD_PID"
	check "$mode: (h) the reload changes the flow" \
		wait_for grep -q 'reload: 0 flows added, 1 changed' "$WORKDIR/ferryd-$mode.log"
	check "$mode: (h) its application is detached, logged" \
		wait_for grep -q "app slot xor: pid $APP_PID its slot changed in a reload: detached" \
		"$WORKDIR/ferryd-$mode.log"
	check "$mode: (h) and its connection closed" wait_for grep -q '^app_echo: returned' \
		"$WORKDIR/app-h1.out"
	wait "$APP_PID"
	check "$mode: (h) a new application attaches to the new slot" app_start h2 xor
	ip netns exec "$NS_SRV" python3 "$WORKDIR/xor_check.py" recv "$KEY" >"$WORKDIR/xor-h-$mode.out" 2>&1 &
	srv=$!
	track_pid $srv
	sleep 0.3
	in_cli python3 "$WORKDIR/xor_check.py" send "$KEY"
	wait $srv
	check "$mode: (h) and transforms" \
		grep -q 'received 5 of 5 transformed exactly' "$WORKDIR/xor-h-$mode.out"
	kill -TERM "$APP_PID"
	wait "$APP_PID"
	check "$mode: ferryd is alive" kill -0 "$FERRYD_PID"
	check "$mode: ferryd stops cleanly" stop_ferryd
	check "$mode: the control socket is removed at stop" [ ! -e "$SOCK" ]
}

require_root test_app || exit 1
if [ ! -x "$APP_ECHO" ]; then
	log "FAIL: $APP_ECHO is missing (make build/tests/app_echo)"
	exit 1
fi
chmod 0711 "$WORKDIR"
topo_up || exit 1
for mode in ${1:-native skb}; do
	run_mode "$mode"
done
summary test_app
