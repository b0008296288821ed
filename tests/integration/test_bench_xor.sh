#!/bin/bash
# The benchmark's app rows rest on two tools doing the transform and
# counting it right (docs/benchmarks.md, "Application services: the app rows"); this checks both, in the
# test topology, without ferryd and without a load:
#
#   (relay)  udp_relay --xor 0x5a in the proxy namespace: datagrams of known
#            text reach the server XORed with the key, byte for byte, and
#            the server's echoes (sent back as received) reach the client
#            XORed again, i.e. as the client sent them.
#   (sink)   bench_sink --xor 0x5a on the server's veth counts a marked
#            payload that arrives XORed with the key in packets and in
#            xored, one that arrives as sent in packets only (the bench's
#            "untransformed"), and one XORed with another key not at all.
#   (usage)  out-of-range keys are refused with a message (exit 2).
#
# Bounded: 5 datagrams each way for (relay), 30 frames for (sink), every
# receive under a timeout.  Takes a few seconds.
. "$(dirname "$0")/../lib.sh"
trap ns_cleanup EXIT
require_root test_bench_xor || { echo "bench_xor: 0 passed, 1 failed"; exit 1; }

RELAY=$BUILD/bench/udp_relay
SINK=$BUILD/bench/bench_sink
KEY=0x5a
for t in "$RELAY" "$SINK"; do
	[ -x "$t" ] || { log "$t missing: make bench-tools"; echo "bench_xor: 0 passed, 1 failed"; exit 1; }
done

topo_up || { echo "bench_xor: 0 passed, 1 failed"; exit 1; }
# The relay's own datagrams and the sink test's frames: whole checksums.
in_px ethtool -K px-s tx off >/dev/null
in_px ethtool -K px-c tx off >/dev/null

cat >"$WORKDIR/xor.py" <<'PY'
import socket, sys
role, key = sys.argv[1], int(sys.argv[2], 0)
msgs = [("ferry bench %02d: the quick brown fox jumps over the lazy dog" % i).encode() for i in range(5)]
xor = lambda m, k: bytes(b ^ k for b in m)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
if role == "server":
    # Echoes what it receives, unchanged; says whether it was the key's XOR of the text.
    s.bind(("198.18.2.2", 6000))
    want = {xor(m, key) for m in msgs}
    got = 0
    try:
        while got < len(msgs):
            d, a = s.recvfrom(2048)
            if d in want:
                got += 1
            else:
                print("server: unexpected", d[:60])
            s.sendto(d, a)
    except socket.timeout:
        pass
    print("server: %d of %d XORed exactly" % (got, len(msgs)))
    sys.exit(0 if got == len(msgs) else 1)
elif role == "client":
    ok = 0
    for m in msgs:
        s.sendto(m, ("198.18.1.1", 5000))
        try:
            d, _ = s.recvfrom(2048)
        except socket.timeout:
            break
        ok += d == m
    print("client: %d of %d echoes as sent" % (ok, len(msgs)))
    sys.exit(0 if ok == len(msgs) else 1)
else:
    # sink: 10 frames each with the mark as sent, XORed with the key, XORed with another key.
    mark = b"FERRYBNC" + bytes(range(24))
    for payload in (mark, xor(mark, key), xor(mark, 0x33)):
        for _ in range(10):
            s.sendto(payload, ("198.18.2.2", 6000))
PY

# (relay)
ip netns exec "$NS_PX" "$RELAY" --listen 198.18.1.1:5000 --upstream 198.18.2.2:6000 \
	--source 198.18.2.1 --xor $KEY --max-time 60 2>"$WORKDIR/relay.log" &
RELAY_PID=$!
track_pid $RELAY_PID
check "(relay) udp_relay --xor starts and says its key" wait_for grep -q "ready, batch 64, xor $KEY" "$WORKDIR/relay.log"
in_srv python3 "$WORKDIR/xor.py" server $KEY >"$WORKDIR/server.out" 2>&1 &
SRV=$!
track_pid $SRV
sleep 0.3
in_cli timeout 20 python3 "$WORKDIR/xor.py" client $KEY >"$WORKDIR/client.out" 2>&1
wait $SRV
check "(relay) the server receives every payload XORed with the key" \
	grep -q 'server: 5 of 5 XORed exactly' "$WORKDIR/server.out"
check "(relay) the client gets every echo back as it sent it" \
	grep -q 'client: 5 of 5 echoes as sent' "$WORKDIR/client.out"
kill -TERM $RELAY_PID
wait $RELAY_PID
check "(relay) its counters: 5 each way" \
	grep -q 'rx_client 5 tx_upstream 5 rx_upstream 5 tx_client 5 tx_errors 0' "$WORKDIR/relay.log"

# (sink)
ip netns exec "$NS_SRV" "$SINK" --dev srv0 --expect 198.18.2.2:6000 --xor $KEY --max-time 60 \
	>"$WORKDIR/sink.out" 2>"$WORKDIR/sink.err" &
SINK_PID=$!
track_pid $SINK_PID
check "(sink) bench_sink --xor attaches" wait_for grep -q ready "$WORKDIR/sink.out"
# The server's neighbour entry first (the frames must not wait on ARP).
in_px ping -c1 -W2 198.18.2.2 >/dev/null 2>&1
in_px timeout 20 python3 "$WORKDIR/xor.py" sink $KEY
sleep 0.3
kill -USR1 $SINK_PID
wait_for grep -q '"xored"' "$WORKDIR/sink.out"
counts=$(grep '"xored"' "$WORKDIR/sink.out" | tail -n 1)
log "sink: $counts"
check "(sink) the XORed and the plain marked frames are counted, every check passing" \
	[ "$(jq .packets <<<"$counts")" = 20 ]
check "(sink) only the XORed ones in xored" [ "$(jq .xored <<<"$counts")" = 10 ]
check "(sink) none failed a check" \
	[ "$(jq '.bad_dst + .bad_ip_csum + .bad_udp_csum' <<<"$counts")" = 0 ]
check "(sink) the frames XORed with another key are not the generator's (other)" \
	[ "$(jq .other <<<"$counts")" -ge 10 ]

# (usage)
refused() { [ "$1" = 2 ] && grep -q "$2" <<<"$3"; } # STATUS WHAT OUTPUT
out=$("$RELAY" --listen 198.18.1.1:5000 --upstream 198.18.2.2:6000 --source 198.18.2.1 --xor 256 2>&1)
check "(usage) udp_relay --xor 256 is refused (exit 2, says why)" refused $? "invalid value '256'" "$out"
out=$("$SINK" --dev srv0 --expect 198.18.2.2:6000 --xor 0 2>&1)
check "(usage) bench_sink --xor 0 is refused (exit 2, says why)" refused $? "bad --xor '0'" "$out"

summary bench_xor
