#!/bin/bash
# ferryctl sessions, in native and in generic (skb) XDP mode: five UDP
# clients with known ports (ten datagrams each, echoed) and two TCP
# connections held open; the listing shows exactly those seven sessions with
# their client address:port, flow address, upstream, the NAT port the
# upstream saw, their state, and each UDP session's packets and bytes both
# ways (where the XDP fast path forwards part of them, as it does on these
# veths in skb mode, its counters must be in the sum).  The filters (--flow, --addr, --limit), --json (jq)
# and the refusal of an unprivileged caller; then 600 sessions more, listed
# over several chunks, each once; then all of it again with two workers
# (native), the listing going on from one table to the next.  About 15 s.
. "$(dirname "$0")/../lib.sh"
trap ns_cleanup EXIT

SOCK=$WORKDIR/ctl/ferryd.sock
mkdir -p "$WORKDIR/ctl" && chmod o+x "$WORKDIR" "$WORKDIR/ctl"
UDP_PORTS="51001 51002 51003 51004 51005"
TCP_PORTS="52001 52002"
PAYLOAD=100
FRAME=$((14 + 20 + 8 + PAYLOAD)) # what the counters count: the whole frame

write_config() { # MODE QUEUES
	cat >"$WORKDIR/ferry.yaml" <<-YAML
	interfaces:
	  - name: px-c
	    xdp_mode: $1
	  - name: px-s
	    xdp_mode: $1
	control_socket: $SOCK
	queues: $2
	nat:
	  ports: 40000-40999
	flows:
	  - name: u5
	    match: {protocol: udp, destination: 198.18.1.1/32, port: 5000}
	    services:
	      - forward: {upstream: 198.18.2.2:6000}
	  - name: t2
	    match: {protocol: tcp, destination: 198.18.1.1/32, port: 5001}
	    services:
	      - forward: {upstream: 198.18.2.2:6001}
	YAML
}

# A TCP server that notes each peer's address:port and holds the connection;
# and a client that connects from a given port, sends a line and holds it.
cat >"$WORKDIR/tcp_hold.py" <<'PY'
import socket, sys, time
if sys.argv[1] == "server":
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("198.18.2.2", 6001)); s.listen(8); s.settimeout(30)
    held = []
    with open(sys.argv[2], "w") as out:
        for _ in range(int(sys.argv[3])):
            c, peer = s.accept(); held.append(c)
            c.recv(100); c.sendall(b"ok\n")
            out.write("%s:%d\n" % peer); out.flush()
    time.sleep(60)
else:
    c = socket.socket(); c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    c.bind(("198.18.1.2", int(sys.argv[2]))); c.settimeout(10)
    c.connect(("198.18.1.1", 5001)); c.sendall(b"hello\n"); c.recv(100)
    time.sleep(60)
PY

# Many UDP sessions, one datagram each from ports FIRST..FIRST+N-1: more than one chunk.
cat >"$WORKDIR/udp_many.py" <<'PY'
import socket, sys
first, n = int(sys.argv[1]), int(sys.argv[2])
for p in range(first, first + n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("198.18.1.2", p)); s.sendto(b"x" * 32, ("198.18.1.1", 5000)); s.close()
PY
MANY=600

sessions() { "$FERRYCTL" sessions --socket "$SOCK" "$@"; }
jcount() { sessions --json "$@" | jq -s length; }
js() { jq -r -s "$1" "$WORKDIR/s.json"; }          # JQ's value on the whole listing
jtrue() { jq -e -s "$1" "$WORKDIR/s.json" >/dev/null; } # JQ holds for it

run_mode() { # MODE [QUEUES]
	local mode=$1 q=${2:-1} srv tsrv p pids=() st seen_nat listed_nat
	write_config "$mode" "$q"
	[ "$q" = 1 ] || mode="$mode, $q workers"
	start_ferryd "$WORKDIR/ferry.yaml" "$WORKDIR/ferryd-$mode.log" ||
		{ check "$mode: ferryd starts" false; return; }
	check "$mode: ferryd starts" true

	in_srv "$UDPPROBE" server --listen 198.18.2.2:6000 --expect-src 198.18.2.1/32 \
		--expect-sport 40000-40999 --count 50 --per-sender --timeout 20 \
		>"$WORKDIR/udp-srv-$mode.out" 2>&1 &
	srv=$!
	track_pid $srv
	ip netns exec "$NS_SRV" python3 "$WORKDIR/tcp_hold.py" server "$WORKDIR/tcp-peers-$mode" 2 \
		>/dev/null 2>&1 &
	tsrv=$!
	track_pid $tsrv
	sleep 0.3
	st=0
	for p in $UDP_PORTS; do
		in_cli "$UDPPROBE" client --bind "198.18.1.2:$p" --to 198.18.1.1:5000 --count 10 \
			--min-size $PAYLOAD --max-size $PAYLOAD --rate 100 --timeout 5 \
			>>"$WORKDIR/udp-cli-$mode.out" 2>&1 || st=1
	done
	check "$mode: the five UDP clients got their echoes" [ $st = 0 ]
	wait $srv
	check "$mode: the UDP server got all 50" [ $? = 0 ]
	for p in $TCP_PORTS; do
		ip netns exec "$NS_CLI" python3 "$WORKDIR/tcp_hold.py" client "$p" >/dev/null 2>&1 &
		pids+=($!)
		track_pid $!
	done
	check "$mode: the TCP server holds two connections" \
		wait_for eval "[ \$(wc -l <'$WORKDIR/tcp-peers-$mode' 2>/dev/null) = 2 ]"
	sleep 0.5

	sessions --json >"$WORKDIR/s.json"
	check "$mode: --json parses, seven sessions" [ "$(js length)" = 7 ]
	sed 's/^/  | /' "$WORKDIR/s.json" >&2
	check "$mode: UDP: exactly the five clients' ports, flow u5" \
		[ "$(js '[.[] | select(.protocol == "udp" and .flow == "u5" and .client == "198.18.1.2") | .client_port] | sort | map(tostring) | join(" ")')" = "$UDP_PORTS" ]
	check "$mode: TCP: exactly the two clients' ports, flow t2" \
		[ "$(js '[.[] | select(.protocol == "tcp" and .flow == "t2" and .client == "198.18.1.2") | .client_port] | sort | map(tostring) | join(" ")')" = "$TCP_PORTS" ]
	check "$mode: flow address and upstream of each" \
		jtrue 'all(.[]; .flow_address == "198.18.1.1" and .upstream == "198.18.2.2" and .nat_address == "198.18.2.1" and
			((.protocol == "udp" and .flow_port == 5000 and .upstream_port == 6000) or
			 (.protocol == "tcp" and .flow_port == 5001 and .upstream_port == 6001)))'
	seen_nat=$(grep -oE 'sender 198\.18\.2\.1:[0-9]+' "$WORKDIR/udp-srv-$mode.out" | cut -d: -f2 | sort -n | tr '\n' ' ')
	listed_nat=$(js '[.[] | select(.protocol == "udp") | .nat_port] | sort | map(tostring) | join(" ")')
	check "$mode: UDP NAT ports are those the upstream saw ($seen_nat)" [ "$seen_nat" = "$listed_nat " ]
	seen_nat=$(cut -d: -f2 "$WORKDIR/tcp-peers-$mode" | sort -n | tr '\n' ' ')
	listed_nat=$(js '[.[] | select(.protocol == "tcp") | .nat_port] | sort | map(tostring) | join(" ")')
	check "$mode: TCP NAT ports are those the upstream saw ($seen_nat)" [ "$seen_nat" = "$listed_nat " ]
	check "$mode: TCP sessions ESTABLISHED" jtrue 'all(.[] | select(.protocol == "tcp"); .state == "ESTABLISHED")'
	check "$mode: UDP sessions answered (REPLIED or ASSURED)" \
		jtrue 'all(.[] | select(.protocol == "udp"); .state == "REPLIED" or .state == "ASSURED")'
	check "$mode: UDP: 10 packets of $FRAME bytes each way, per session" \
		jtrue "all(.[] | select(.protocol == \"udp\"); .packets_out == 10 and .packets_in == 10 and
			.bytes_out == $((10 * FRAME)) and .bytes_in == $((10 * FRAME)))"
	check "$mode: ages and idle times are sane" \
		jtrue 'all(.[]; .age_ms >= .idle_ms and .age_ms < 120000)'
	log "$mode: $(js '[.[] | select(.offloaded)] | length') of 7 sessions offloaded to XDP," \
		"on workers $(js '[.[].worker] | unique | map(tostring) | join(",")')"

	sessions >"$WORKDIR/s.txt"
	sed 's/^/  | /' "$WORKDIR/s.txt" >&2
	check "$mode: text: a header, seven lines, the count" \
		[ "$(grep -c ' 198\.18\.1\.2:5[12]00[1-5] ' "$WORKDIR/s.txt")" = 7 -a "$(tail -1 "$WORKDIR/s.txt")" = "7 sessions" ]
	check "$mode: text: conntrack-style columns" \
		grep -qE '^t2 +tcp 198\.18\.1\.2:52001 +198\.18\.1\.1:5001 +198\.18\.2\.1:[0-9]+ +198\.18\.2\.2:6001 +ESTABLISHED ' "$WORKDIR/s.txt"
	check "$mode: --flow t2: two" [ "$(jcount --flow t2)" = 2 ]
	check "$mode: --flow u5: five" [ "$(jcount --flow u5)" = 5 ]
	check "$mode: --addr the client: seven" [ "$(jcount --addr 198.18.1.2)" = 7 ]
	check "$mode: --addr the upstream: seven" [ "$(jcount --addr 198.18.2.2)" = 7 ]
	check "$mode: --addr another: none" [ "$(jcount --addr 198.18.1.99)" = 0 ]
	check "$mode: --limit 3: three" [ "$(jcount --limit 3)" = 3 ]
	check "$mode: --flow of no flow: an error" eval '! sessions --flow nosuch >/dev/null 2>&1'
	# More than two chunks of 256: the cursor carries the listing on, each session once.
	in_cli python3 "$WORKDIR/udp_many.py" 53000 $MANY
	check "$mode: $MANY more UDP sessions listed, over several chunks" \
		wait_for eval "[ \$(sessions --json --flow u5 | jq -s length) = $((MANY + 5)) ]"
	sessions --json --flow u5 >"$WORKDIR/s.json"
	log "$mode: $(js length) listed, per worker $(js '[.[].worker] | group_by(.) | map(length) | map(tostring) | join(",")')"
	check "$mode: each of them once" \
		[ "$(js '[.[] | .client_port] | unique | length')" = $((MANY + 5)) ]
	check "$mode: --limit 300 over chunks: 300" [ "$(jcount --limit 300)" = 300 ]
	setpriv --reuid=nobody --regid=nogroup --clear-groups "$FERRYCTL" sessions --socket "$SOCK" \
		>/dev/null 2>"$WORKDIR/nobody.err"
	st=$?
	check "$mode: as nobody: refused (exit 3, not permitted)" \
		[ $st = 3 ] && grep -q "not permitted" "$WORKDIR/nobody.err"
	# The next mode's server binds the same port.
	for p in "${pids[@]}" $tsrv; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	stop_ferryd
	check "$mode: ferryd exits 0" [ $? = 0 ]
}

require_root "test_sessions" || { echo "sessions: 0 passed, 1 failed"; exit 1; }
topo_up || { echo "FAIL: topology"; echo "sessions: 0 passed, 1 failed"; exit 1; }
run_mode native
run_mode skb
# Two workers, two tables: the listing goes on from one to the next.  Native
# only: a veth hands generic XDP its frames on the queue below (tests/lib.sh).
for ns in "$NS_CLI" "$NS_PX" "$NS_SRV"; do ip netns del "$ns"; done
topo_up 2 || { check "topology with 2 queues" false; summary sessions; exit 1; }
run_mode native 2
check "native, 2 workers: the sessions were on both" \
	[ "$(js '[.[].worker] | unique | length')" = 2 ]
summary sessions
