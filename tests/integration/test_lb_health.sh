#!/bin/bash
# lb's health checks, drain and reload, end to end, in native and in generic
# (skb) XDP mode, over three UDP upstreams:
#
#   client ns            proxy ns                          server ns (A, C)
#   cli0 198.18.1.2 ---- px-c 198.18.1.1 | px-s  198.18.2.1 ---- srv0 198.18.2.2 (A)
#                                        |                            198.18.2.3 (C)
#                                        | px-s2 198.18.3.1 ---- srv0 198.18.3.2 (B)
#                                                                     198.18.3.3 (D)
#                                                                server ns (B, D)
#
# Each upstream is an echo server that answers a datagram with its own name
# (and the health probe "hc" with "ok"), so the clients learn which upstream
# each of their flows (a source port) reached.  A streaming client keeps
# FLOWS flows alive throughout.  Then:
#   - C's server (only the PID this test started) is killed mid-stream: lb
#     marks C down within its checks (interval 200 ms, fall 3, a generous
#     margin for a loaded host), the streaming flows of A and B keep their
#     upstream and their replies, new flows go to A and B only, each where
#     it would have gone with all three up unless that was C;
#   - C is started again: marked up after `rise` checks, new flows reach it;
#   - a reload drains A (weight 0): its existing flows still reach it, new
#     flows never do;
#   - a reload adds a fourth upstream (D): every existing flow keeps its
#     upstream, new flows reach D;
#   - passive marking alone, over TCP: of two upstreams whose `exec` check
#     always passes, the one with no listener answers SYNs with RSTs and is
#     marked down by those (fall 1, rise 50), and new connections go to the
#     other.
# ferryctl stats shows each upstream by address with its state and counters.
# The streaming flows' sessions forward in the XDP fast path (offload: auto;
# in native mode the end hosts' veths have GRO on so that ferry's veths take
# XDP redirects): what they keep is their fast-path entry's upstream.
. "$(dirname "$0")/../lib.sh"
trap ns_cleanup EXIT

FLOWS=48       # streaming client flows
NEW=48         # flows of each "new flows" batch
NS_SRV2=ferry-$RUN_ID-srv2
DOWN_WITHIN=10 # seconds: interval 0.2 s * fall 3, and room for a loaded host

in_srv2() { ip netns exec "$NS_SRV2" "$@"; }

topo_up_three() {
	topo_up || return 1
	add_ns "$NS_SRV2" || return 1
	ip link add srv0 netns "$NS_SRV2" type veth peer name px-s2 netns "$NS_PX" || return 1
	ip -n "$NS_PX" addr add 198.18.3.1/24 dev px-s2
	ip -n "$NS_SRV2" addr add 198.18.3.2/24 dev srv0
	ip -n "$NS_SRV" addr add 198.18.2.3/24 dev srv0
	ip -n "$NS_SRV2" addr add 198.18.3.3/24 dev srv0
	ip -n "$NS_PX" link set px-s2 up || return 1
	ip -n "$NS_SRV2" link set srv0 up || return 1
	in_srv2 ethtool -K srv0 tx off >/dev/null
}

write_tools() {
	# An upstream: its name to every datagram, "ok" to the health probe.
	cat >"$WORKDIR/lbsrv.py" <<-'PY'
	import socket, sys
	name, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
	s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
	s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
	s.bind((addr, port))
	while True:
	    data, peer = s.recvfrom(2048)
	    s.sendto(b"ok" if data == b"hc" else name.encode(), peer)
	PY
	# A TCP upstream: accepts and closes.
	cat >"$WORKDIR/tcpsrv.py" <<-'PY'
	import socket, sys
	s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
	s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
	s.bind((sys.argv[1], int(sys.argv[2])))
	s.listen(64)
	while True:
	    c, _ = s.accept()
	    c.close()
	PY
	# TCP clients from source ports FIRST..: "PORT ok" or "PORT refused".
	cat >"$WORKDIR/tcpcli.py" <<-'PY'
	import socket, sys
	first, count = int(sys.argv[1]), int(sys.argv[2])
	for p in range(first, first + count):
	    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
	    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
	    s.bind(("198.18.1.2", p))
	    s.settimeout(2)
	    try:
	        s.connect(("198.18.1.1", 5001))
	        print(p, "ok")
	    except OSError:
	        print(p, "refused")
	    s.close()
	PY
	# Clients: "once FIRST COUNT" prints "PORT NAME" for flows of source ports
	# FIRST.., retrying a few times; "stream FIRST COUNT STOPFILE" sends on
	# every flow each 50 ms until STOPFILE exists, printing "TIME PORT NAME"
	# per reply (TIME: CLOCK_REALTIME seconds).
	cat >"$WORKDIR/lbcli.py" <<-'PY'
	import os, select, socket, sys, time
	mode, first, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
	socks = {}
	for p in range(first, first + count):
	    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
	    s.bind(("198.18.1.2", p))
	    s.connect(("198.18.1.1", 5000))
	    s.setblocking(False)
	    socks[s.fileno()] = (s, p)
	def drain(timeout, on_reply):
	    end = time.time() + timeout
	    while True:
	        left = end - time.time()
	        if left <= 0:
	            return
	        r, _, _ = select.select(list(socks), [], [], left)
	        for fd in r:
	            s, p = socks[fd]
	            try:
	                on_reply(p, s.recv(2048).decode())
	            except OSError:
	                pass  # ICMP port unreachable from a dead upstream
	if mode == "once":
	    got = {}
	    for attempt in range(5):
	        for s, p in socks.values():
	            if p not in got:
	                try:
	                    s.send(b"q")
	                except OSError:
	                    pass
	        drain(0.5, lambda p, n: got.setdefault(p, n))
	        if len(got) == count:
	            break
	    for p in sorted(got):
	        print(p, got[p])
	else:
	    stop = sys.argv[4]
	    out = sys.stdout
	    while not os.path.exists(stop):
	        for s, p in socks.values():
	            try:
	                s.send(b"q")
	            except OSError:
	                pass
	        drain(0.05, lambda p, n: print("%.3f %d %s" % (time.time(), p, n), file=out))
	        out.flush()
	PY
}

write_config() { # MODE PIN_PATH WEIGHT_A [EXTRA_UPSTREAM]
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
	  - name: lb
	    match: {protocol: udp, destination: 198.18.1.1/32, port: 5000}
	    services:
	      - lb:
	          upstreams:
	            - {address: 198.18.2.2:6000, weight: $3}
	            - {address: 198.18.3.2:6000, weight: 1}
	            - {address: 198.18.2.3:6000, weight: 1}
	$([ -n "${4:-}" ] && echo "            - {address: $4, weight: 1}")
	          health: {type: udp, send: hc, expect: ok, interval_ms: 200, timeout_ms: 150,
	                   rise: 2, fall: 3}
	  - name: lbt
	    match: {protocol: tcp, destination: 198.18.1.1/32, port: 5001}
	    services:
	      - lb:
	          upstreams: [198.18.2.2:7000, 198.18.2.3:7000]
	          # One fork slower than its timeout would mark A down (fall 1): a second each.
	          health: {type: exec, command: 'exit 0', interval_ms: 1000, timeout_ms: 1000,
	                   rise: 50, fall: 1}
	YAML
}

# gro on|off: on the end hosts' veths, the peers of ferry's interfaces.
gro() {
	in_cli ethtool -K cli0 gro "$1" >/dev/null &&
		in_srv ethtool -K srv0 gro "$1" >/dev/null &&
		in_srv2 ethtool -K srv0 gro "$1" >/dev/null
}

# Starts an upstream and waits until it listens (its first checks must not fail).
start_server() { # NAME ADDR NS
	ip netns exec "$3" python3 "$WORKDIR/lbsrv.py" "$1" "$2" 6000 &
	SERVER_PID=$!
	track_pid "$SERVER_PID"
	wait_for eval "ip netns exec '$3' ss -Hlun 'src $2:6000' | grep -q ."
}

# SIGHUP, and wait for ferryd's verdict on it; true when it updated the lb flow in place.
reload_updated() { # LOG
	local before verdict='reload: ([0-9]+ flows? added|.*running config stays in force)'
	before=$(grep -cE "$verdict" "$1")
	kill -HUP "$FERRYD_PID"
	# The verdict itself: with -v, a debug line about the pause comes just before it.
	wait_for eval "[ \$(grep -cE '$verdict' '$1') -gt $before ]"
	grep -E "$verdict" "$1" | tail -n 1 | grep -q " 1 updated in place;"
}

once() { # FIRST COUNT OUTFILE
	in_cli python3 "$WORKDIR/lbcli.py" once "$1" "$2" >"$3"
}

# The state ferryctl shows for upstream ADDR:PORT of flow FLOW (default lb).
up_state() { # PIN_PATH ADDRESS [FLOW]
	"$FERRYCTL" -p "$1" stats --json |
		jq -r ".flows[] | select(.name == \"${3:-lb}\") | .lb_upstreams[] |
			select(.address == \"$2\") | .state"
}
up_counter() { # PIN_PATH ADDRESS COUNTER [FLOW]
	"$FERRYCTL" -p "$1" stats --json |
		jq -r ".flows[] | select(.name == \"${4:-lb}\") | .lb_upstreams[] |
			select(.address == \"$2\") | .counters.$3"
}
state_is() { [ "$(up_state "$1" "$2" "${4:-lb}")" = "$3" ]; }

# Waits up to SECONDS for upstream ADDRESS to show STATE; prints the seconds it took.
wait_state() { # PIN_PATH ADDRESS STATE SECONDS
	local t0 now
	t0=$(date +%s.%N)
	while ! state_is "$1" "$2" "$3"; do
		now=$(date +%s.%N)
		if awk -v a="$t0" -v b="$now" -v m="$4" 'BEGIN { exit !(b - a > m) }'; then
			return 1
		fi
		sleep 0.05
	done
	now=$(date +%s.%N)
	awk -v a="$t0" -v b="$now" 'BEGIN { printf "%.2f\n", b - a }'
}

# All NEW flows of FILE ("PORT NAME") answered, each by one of NAMES.
only_from() { # FILE NAMES...
	local f=$1
	shift
	[ "$(wc -l <"$f")" = "$NEW" ] &&
		[ -z "$(awk -v ok=" $* " 'index(ok, " " $2 " ") == 0' "$f")" ]
}
count_from() { # FILE NAME
	awk -v n="$2" '$2 == n' "$1" | wc -l
}

# Flows of BEFORE whose upstream is not NAME have the same upstream in AFTER.
same_unless() { # BEFORE AFTER NAME
	[ -z "$(join "$1" "$2" | awk -v n="$3" '$2 != n && $2 != $3')" ] &&
		[ "$(join "$1" "$2" | awk -v n="$3" '$2 != n' | wc -l)" -gt 0 ]
}

# Streaming flows: each flow's upstream is its first reply's; flows on NAMES
# answered only by it, before and after time T, with replies after T.
stream_kept() { # STREAMFILE T NAMES...
	python3 - "$@" <<-'PY'
	import sys
	f, t, names = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
	first, seen_after, bad = {}, {}, 0
	for line in open(f):
	    ts, port, name = line.split()
	    first.setdefault(port, name)
	    if first[port] != name:
	        print("flow", port, "moved from", first[port], "to", name)
	        bad += 1
	    if float(ts) > t:
	        seen_after[port] = True
	kept = [p for p, n in first.items() if n in names]
	silent = [p for p in kept if p not in seen_after]
	print(len(kept), "flows on", names, ";", len(silent), "without replies after", t)
	sys.exit(1 if bad or silent or not kept else 0)
	PY
}

run_mode() { # MODE
	local mode=$1 pin_path a_pid b_pid c_pid d_pid t_pid t_down t_reload took stop b_sessions
	mkdir -p "$WORKDIR/bpffs-$mode"
	mount -t bpf bpf "$WORKDIR/bpffs-$mode" || return 1
	on_cleanup "umount '$WORKDIR/bpffs-$mode'"
	pin_path=$WORKDIR/bpffs-$mode/ferry
	write_config "$mode" "$pin_path" 1
	if [ "$mode" = native ]; then gro on; else gro off; fi
	check "$mode: config validates" "$FERRYD" -c "$WORKDIR/ferry.yaml" --check
	start_server A 198.18.2.2 "$NS_SRV"
	a_pid=$SERVER_PID
	start_server B 198.18.3.2 "$NS_SRV2"
	b_pid=$SERVER_PID
	start_server C 198.18.2.3 "$NS_SRV"
	c_pid=$SERVER_PID
	start_ferryd "$WORKDIR/ferry.yaml" "$WORKDIR/ferryd-$mode.log" || {
		check "$mode: ferryd starts" false
		return 1
	}
	check "$mode: ferryd starts" true
	check "$mode: all three upstreams up" wait_for state_is "$pin_path" 198.18.2.3:6000 up
	check "$mode: upstreams are checked" \
		[ "$(up_counter "$pin_path" 198.18.3.2:6000 checks_ok)" -gt 0 ]

	# Where flows of ports 23001.. go with all three up (sessions of their own).
	once 23001 "$NEW" "$WORKDIR/ref-$mode"
	check "$mode: reference flows reach all three" eval \
		"[ \$(count_from $WORKDIR/ref-$mode A) -gt 0 ] && [ \$(count_from $WORKDIR/ref-$mode B) -gt 0 ] && [ \$(count_from $WORKDIR/ref-$mode C) -gt 0 ]"

	stop=$WORKDIR/stop-$mode
	in_cli python3 "$WORKDIR/lbcli.py" stream 20001 "$FLOWS" "$stop" >"$WORKDIR/stream-$mode" &
	track_pid $!
	sleep 1.5
	check "$mode: streaming flows reach C" grep -q " C$" "$WORKDIR/stream-$mode"
	check "$mode: streaming sessions forward in XDP" \
		[ "$("$FERRYCTL" -p "$pin_path" stats --json |
			jq -r '.flows[] | select(.name == "lb") | .datapath.sessions_offloaded')" -gt 0 ]

	# C dies mid-stream.
	check "$mode: C never went down before" \
		[ "$(up_counter "$pin_path" 198.18.2.3:6000 went_down)" = 0 ]
	kill -KILL "$c_pid"
	wait "$c_pid" 2>/dev/null
	took=$(wait_state "$pin_path" 198.18.2.3:6000 down "$DOWN_WITHIN")
	check "$mode: C marked down within ${DOWN_WITHIN}s of its death (took ${took:-never}s)" \
		[ -n "$took" ]
	t_down=$(date +%s.%N)
	check "$mode: C went down once" [ "$(up_counter "$pin_path" 198.18.2.3:6000 went_down)" = 1 ]
	check "$mode: A and B stay up" eval "state_is $pin_path 198.18.2.2:6000 up && state_is $pin_path 198.18.3.2:6000 up"

	# New flows: A and B only; each where the full table put it unless that was C.
	once 23001 "$NEW" "$WORKDIR/old-again-$mode"
	check "$mode: the reference flows' sessions keep A and B" \
		same_unless "$WORKDIR/ref-$mode" "$WORKDIR/old-again-$mode" C
	once 24001 "$NEW" "$WORKDIR/new1-$mode"
	check "$mode: new flows go to A and B only" only_from "$WORKDIR/new1-$mode" A B
	sleep 1
	check "$mode: streaming flows of A and B kept their upstream and their replies" \
		stream_kept "$WORKDIR/stream-$mode" "$t_down" A B
	check "$mode: passive failures counted for C (ICMP port unreachable)" \
		[ "$(up_counter "$pin_path" 198.18.2.3:6000 passive_failures)" -gt 0 ]

	# C comes back: up after rise good checks, new flows reach it again.
	start_server C 198.18.2.3 "$NS_SRV"
	c_pid=$SERVER_PID
	took=$(wait_state "$pin_path" 198.18.2.3:6000 up "$DOWN_WITHIN")
	check "$mode: C marked up again (took ${took:-never}s)" [ -n "$took" ]
	check "$mode: C went up once" [ "$(up_counter "$pin_path" 198.18.2.3:6000 went_up)" = 1 ]
	once 25001 "$NEW" "$WORKDIR/new2-$mode"
	check "$mode: new flows reach C again" [ "$(count_from "$WORKDIR/new2-$mode" C)" -gt 0 ]

	# Drain A by a reload: its sessions stay with it, new flows never reach it.
	once 26001 "$NEW" "$WORKDIR/pre-drain-$mode"
	check "$mode: flows on A before the drain" [ "$(count_from "$WORKDIR/pre-drain-$mode" A)" -gt 0 ]
	b_sessions=$(up_counter "$pin_path" 198.18.3.2:6000 sessions)
	write_config "$mode" "$pin_path" 0
	t_reload=$(date +%s.%N)
	check "$mode: drain: reload updates the flow in place" \
		reload_updated "$WORKDIR/ferryd-$mode.log"
	check "$mode: drain: ferryctl shows A drained" \
		wait_for state_is "$pin_path" 198.18.2.2:6000 drained
	check "$mode: drain: B's session count goes on ($b_sessions before)" \
		[ "$(up_counter "$pin_path" 198.18.3.2:6000 sessions)" -ge "$b_sessions" -a "$b_sessions" -gt 0 ]
	"$FERRYCTL" -p "$pin_path" stats --format prometheus >"$WORKDIR/prom-$mode"
	check "$mode: drain: prometheus: A not usable, B usable, sessions by address" eval \
		"grep -qx 'ferry_lb_upstream_usable{flow=\"lb\",upstream=\"198.18.2.2:6000\"} 0' '$WORKDIR/prom-$mode' &&
		 grep -qx 'ferry_lb_upstream_usable{flow=\"lb\",upstream=\"198.18.3.2:6000\"} 1' '$WORKDIR/prom-$mode' &&
		 grep -q '^ferry_lb_upstream_went_down_total{flow=\"lb\",upstream=\"198.18.2.3:6000\"} 1$' '$WORKDIR/prom-$mode'"
	once 26001 "$NEW" "$WORKDIR/post-drain-$mode"
	check "$mode: drain: every existing flow keeps its upstream, A's too" \
		cmp "$WORKDIR/pre-drain-$mode" "$WORKDIR/post-drain-$mode"
	once 27001 "$NEW" "$WORKDIR/new3-$mode"
	check "$mode: drain: new flows go to B and C only" only_from "$WORKDIR/new3-$mode" B C
	sleep 0.5
	check "$mode: drain: streaming flows of A and B kept their upstream and their replies" \
		stream_kept "$WORKDIR/stream-$mode" "$t_reload" A B

	# Add D by a reload: nothing existing moves, new flows reach D.
	start_server D 198.18.3.3 "$NS_SRV2"
	d_pid=$SERVER_PID
	write_config "$mode" "$pin_path" 0 198.18.3.3:6000
	t_reload=$(date +%s.%N)
	check "$mode: add: reload updates the flow in place" \
		reload_updated "$WORKDIR/ferryd-$mode.log"
	check "$mode: add: D is up" wait_for state_is "$pin_path" 198.18.3.3:6000 up
	once 26001 "$NEW" "$WORKDIR/post-add-$mode"
	check "$mode: add: every existing flow keeps its upstream" \
		cmp "$WORKDIR/pre-drain-$mode" "$WORKDIR/post-add-$mode"
	once 28001 "$NEW" "$WORKDIR/new4-$mode"
	check "$mode: add: new flows reach D" [ "$(count_from "$WORKDIR/new4-$mode" D)" -gt 0 ]
	check "$mode: add: and never the drained A" only_from "$WORKDIR/new4-$mode" B C D
	sleep 0.5
	check "$mode: add: streaming flows of A and B kept their upstream and their replies" \
		stream_kept "$WORKDIR/stream-$mode" "$t_reload" A B

	# Passive marking alone: C has no TCP listener on 7000, its RSTs mark it down.
	ip netns exec "$NS_SRV" python3 "$WORKDIR/tcpsrv.py" 198.18.2.2 7000 &
	t_pid=$!
	track_pid $t_pid
	wait_for eval "ip netns exec '$NS_SRV' ss -Hltn 'src 198.18.2.2:7000' | grep -q ."
	check "$mode: tcp: both upstreams up by their exec checks" \
		eval "state_is $pin_path 198.18.2.3:7000 up lbt && state_is $pin_path 198.18.2.2:7000 up lbt"
	in_cli python3 "$WORKDIR/tcpcli.py" 29001 24 >"$WORKDIR/tcp1-$mode"
	check "$mode: tcp: some connections refused (C's RSTs)" grep -q refused "$WORKDIR/tcp1-$mode"
	check "$mode: tcp: C marked down by its RSTs although its check passes" \
		wait_for state_is "$pin_path" 198.18.2.3:7000 down lbt
	check "$mode: tcp: passive failures counted for C" \
		[ "$(up_counter "$pin_path" 198.18.2.3:7000 passive_failures lbt)" -gt 0 ]
	check "$mode: tcp: none for A" \
		[ "$(up_counter "$pin_path" 198.18.2.2:7000 passive_failures lbt)" = 0 ]
	in_cli python3 "$WORKDIR/tcpcli.py" 29101 24 >"$WORKDIR/tcp2-$mode"
	check "$mode: tcp: new connections all reach A" \
		[ "$(grep -c " ok$" "$WORKDIR/tcp2-$mode")" = 24 ]

	touch "$stop"
	sleep 0.3
	"$FERRYCTL" -p "$pin_path" stats
	stop_ferryd
	check "$mode: ferryd exits 0 on SIGTERM" [ $? = 0 ]
	check "$mode: every UMEM frame accounted for at stop" \
		grep -q "frame accounting holds" "$WORKDIR/ferryd-$mode.log"
	# The next mode starts servers of its own on the same ports.
	kill -KILL "$a_pid" "$b_pid" "$c_pid" "$d_pid" "$t_pid" 2>/dev/null
	wait "$a_pid" "$b_pid" "$c_pid" "$d_pid" "$t_pid" 2>/dev/null
}

require_root "test_lb_health" || { echo "lb_health: 0 passed, 1 failed"; exit 1; }
mkdir -p "$WORKDIR/bin" && cp "$FERRYD" "$FERRYCTL" "$WORKDIR/bin/" || exit 1
FERRYD=$WORKDIR/bin/ferryd FERRYCTL=$WORKDIR/bin/ferryctl
for tool in python3 jq; do
	command -v $tool >/dev/null || { echo "FAIL: $tool is missing (make deps)"; echo "lb_health: 0 passed, 1 failed"; exit 1; }
done
topo_up_three || { echo "FAIL: topology"; echo "lb_health: 0 passed, 1 failed"; exit 1; }
write_tools
for mode in ${FERRY_TEST_MODES:-native skb}; do
	run_mode "$mode"
done
summary lb_health
