#!/bin/bash
# Blind RST and FIN (issue 10, item 5), in native and in generic (skb) XDP
# mode.  A TCP connection through ferryd is established and carries data;
# then RSTs and a FIN with the session's exact tuple but sequence numbers far
# outside its window are injected from the upstream's side, as an off-path
# sender who guessed upstream:port and the NAT port would.  ferryd must drop
# and count the RSTs (tcp_out_of_window), forward the FINs for the client to
# ignore without recording them, and keep the session: after idling
# longer than the closing timeout the connection still carries data both
# ways.  Then the server aborts the connection for real (SO_LINGER 0): its
# RST, exactly at the next sequence number, reaches the client and closes
# the session, which expires after the closing timeout; a later segment of
# the old connection is dropped as no_session.
#
# The orchestration is one python3 process that opens the client's sockets
# in the client namespace and the server's (listener, AF_PACKET capture of
# its own segments for the sequence numbers, raw socket for the injection)
# in the server namespace (setns per socket), so the steps keep their order.
. "$(dirname "$0")/../lib.sh"
trap ns_cleanup EXIT

CLOSING_TO=2
PORT=7100
# Out-of-window offsets from the server's next sequence number: RST, RST|ACK
# and FIN|ACK at each.
OOW_OFFSETS=(0x80000000 0x40000000 0xc0000000)
OOW_COUNT=9
OOW_RSTS=6 # of which RST and RST|ACK: dropped; the FIN|ACKs are forwarded

write_config() { # MODE
	cat >"$WORKDIR/ferry.yaml" <<-YAML
	interfaces:
	  - name: px-c
	    xdp_mode: $1
	  - name: px-s
	    xdp_mode: $1
	nat:
	  ports: 40000-40999
	  # Small, so that expiry visits every slot on each 100 ms tick.
	  max_sessions: 1024
	  tcp_syn_timeout: 3
	  tcp_established_timeout: 120
	  tcp_closing_timeout: $CLOSING_TO
	flows:
	  - name: rst4
	    match: {protocol: tcp, destination: 198.18.1.1, port: $PORT}
	    services: [{forward: {upstream: "198.18.2.2:$PORT"}}]
	YAML
}

cat >"$WORKDIR/blind_rst.py" <<'PY'
import ctypes, os, socket, struct, subprocess, sys, time

cli_ns, srv_ns, ctl, idle_s, port = sys.argv[1:6]
offsets = [int(x, 0) for x in sys.argv[6:]]
idle_s, port = float(idle_s), int(port)
libc = ctypes.CDLL(None, use_errno=True)

def enter(ns):
    fd = os.open("/run/netns/" + ns, os.O_RDONLY)
    if libc.setns(fd, 0x40000000) != 0:  # CLONE_NEWNET
        raise OSError(ctypes.get_errno(), "setns " + ns)
    os.close(fd)

def say(*a):
    print(*a, flush=True)

def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff

def tcp_frame(src, sport, dst, dport, seq, ack, flags):
    s, d = socket.inet_aton(src), socket.inet_aton(dst)
    th = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xffffffff, ack & 0xffffffff,
                     5 << 4, flags, 1024, 0, 0)
    c = csum(s + d + struct.pack("!BBH", 0, 6, len(th)) + th)
    th = th[:16] + struct.pack("!H", c) + th[18:]
    # IP_HDRINCL: the kernel fills in the IP checksum.
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(th), 0x1234, 0, 64, 6, 0, s, d)
    return ip + th

def snapshot(name):
    with open(name, "w") as f:
        subprocess.run(ctl + ["stats", "--json"], stdout=f, check=True)

ctl = ctl.split()
enter(srv_ns)
lst = socket.socket()
lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lst.bind(("198.18.2.2", port))
lst.listen(1)
lst.settimeout(5)
# ETH_P_ALL: a socket for one protocol sees only what comes in, not what goes out.
cap = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
cap.bind(("srv0", 3))
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)

enter(cli_ns)
cli = socket.socket()
cli.settimeout(5)
cli.connect(("198.18.1.1", port))
conn, (egress, nat_port) = lst.accept()
conn.settimeout(5)
say("nat port %d" % nat_port)
say("cport=%d" % cli.getsockname()[1])

def exchange(word):
    cli.sendall(word + b"\n")
    got = b""
    while not got.endswith(b"\n"):
        got += conn.recv(100)
    conn.sendall(b"echo " + got)
    got = b""
    while not got.endswith(b"\n"):
        got += cli.recv(100)
    return got == b"echo " + word + b"\n"

if not exchange(b"one"):
    say("FAIL first exchange"); sys.exit(1)
say("OK first exchange")

# The server's next sequence number and last ack, from its own segments.
time.sleep(0.2)
nxt = ack = None
seen = 0
while True:
    try:
        f = cap.recv(2048, socket.MSG_DONTWAIT)
    except BlockingIOError:
        break
    seen += 1
    ip = f[14:]
    ihl = (ip[0] & 15) * 4
    if f[12:14] != b"\x08\x00" or ip[9] != 6 or ip[12:16] != socket.inet_aton("198.18.2.2"):
        continue
    sp, dp, seq, a, off, fl = struct.unpack("!HHIIBB", ip[ihl:ihl + 14])
    if sp != port or dp != nat_port:
        continue
    ln = struct.unpack("!H", ip[2:4])[0] - ihl - (off >> 4) * 4 + (1 if fl & 3 else 0)
    if nxt is None or ((seq + ln - nxt) & 0xffffffff) < 0x80000000:
        nxt = (seq + ln) & 0xffffffff
    ack = a
if nxt is None:
    say("FAIL no server segment captured (%d frames)" % seen); sys.exit(1)
say("server next seq %u ack %u" % (nxt, ack))

# Blind injections: the session's tuple, sequence numbers far from the window.
for o in offsets:
    for flags, a in ((0x04, 0), (0x14, ack), (0x11, ack)):
        raw.sendto(tcp_frame("198.18.2.2", port, egress, nat_port, nxt + o, a, flags),
                   (egress, 0))
say("OK injected %d" % (3 * len(offsets)))

# Idle past the closing timeout: a session wrongly closed would expire now.
time.sleep(idle_s)
snapshot(os.environ["SNAP_IDLE"])
if not exchange(b"two"):
    say("FAIL exchange after idle"); sys.exit(1)
say("OK exchange after idle")

# The server aborts: its RST is in the window and exact.
conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
conn.close()
try:
    got = cli.recv(100)
    say("FAIL client read %r instead of a reset" % got); sys.exit(1)
except ConnectionResetError:
    say("OK reset reached the client")
PY

stats() { "$FERRYCTL" -p "$PIN_DIR" stats --json >"$WORKDIR/stats.json"; }
# counter FILE JQ-PATH: the flow's counter in a stats snapshot.
counter() { jq -r ".flows[] | select(.name == \"rst4\") | $2 // 0" "$1"; }
live() { echo $(($(counter "$1" .datapath.sessions_created) - $(counter "$1" .datapath.sessions_expired))); }

blind_rst() {
	SNAP_IDLE=$WORKDIR/idle.json timeout 60 python3 "$WORKDIR/blind_rst.py" "$NS_CLI" "$NS_SRV" \
		"$FERRYCTL -p $PIN_DIR" $((CLOSING_TO * 2 + 1)) $PORT "${OOW_OFFSETS[@]}" \
		>"$WORKDIR/blind.out" 2>&1
	BLIND_RC=$?
	sed 's/^/  | /' "$WORKDIR/blind.out" >&2
	CPORT=$(sed -n 's/^cport=//p' "$WORKDIR/blind.out")
}
blind_ok() { grep -qx "OK $1" "$WORKDIR/blind.out"; }

# The session goes after the closing timeout once the real RST closed it.
expired_after_rst() {
	for _ in $(seq $((CLOSING_TO * 5 + 10))); do
		stats
		[ "$(live "$WORKDIR/stats.json")" = 0 ] && return 0
		sleep 0.5
	done
	log "live sessions: $(live "$WORKDIR/stats.json")"
	return 1
}

# A segment of the old connection finds no session any more.
STRAY_PY='
import socket, struct, sys
src, dst = socket.inet_aton("198.18.1.2"), socket.inet_aton("198.18.1.1")
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
h = struct.pack("!HHIIBBHHH", int(sys.argv[1]), int(sys.argv[2]), 1000, 0, 5 << 4, 0x18, 65535, 0, 0)
c = csum(src + dst + struct.pack("!BBH", 0, 6, len(h)) + h)
s.sendto(h[:16] + struct.pack("!H", c) + h[18:], ("198.18.1.1", 0))
'
stray_after_close() {
	local before after
	before=$(counter "$WORKDIR/stats.json" .datapath.drops.no_session)
	[ -n "$CPORT" ] || return 1
	in_cli python3 -c "$STRAY_PY" "$CPORT" $PORT || return 1
	sleep 1.5
	stats
	after=$(counter "$WORKDIR/stats.json" .datapath.drops.no_session)
	[ "$after" = $((before + 1)) ]
}

run_mode() { # MODE
	local mode=$1
	write_config "$mode"
	check "$mode: config validates" "$FERRYD" -c "$WORKDIR/ferry.yaml" --check
	start_ferryd "$WORKDIR/ferry.yaml" "$WORKDIR/ferryd-$mode.log" || {
		check "$mode: ferryd starts" false
		return 1
	}
	check "$mode: ferryd starts" true
	PIN_DIR=/proc/$FERRYD_PID/root/sys/fs/bpf/ferry

	blind_rst
	check "$mode: connection established, data both ways" blind_ok "first exchange"
	check "$mode: $OOW_COUNT blind RST/FIN injected" blind_ok "injected $OOW_COUNT"
	check "$mode: the blind RSTs are dropped as tcp_out_of_window" \
		[ "$(counter "$WORKDIR/idle.json" .datapath.drops.tcp_out_of_window)" = $OOW_RSTS ]
	check "$mode: the session outlives the closing timeout" \
		[ "$(live "$WORKDIR/idle.json")" = 1 ]
	check "$mode: nat_port_probes counts the NAT port search" \
		[ "$(counter "$WORKDIR/idle.json" .datapath.nat_port_probes)" -ge 1 ]
	check "$mode: the connection still works after the idle time" blind_ok "exchange after idle"
	check "$mode: the server's real RST reaches the client" blind_ok "reset reached the client"
	check "$mode: the orchestrator exits 0" [ "$BLIND_RC" = 0 ]
	check "$mode: the RST closed the session: it expires" expired_after_rst
	check "$mode: the real RST was not counted out of window" \
		[ "$(counter "$WORKDIR/stats.json" .datapath.drops.tcp_out_of_window)" = $OOW_RSTS ]
	check "$mode: a later segment of the old connection is dropped as no_session" \
		stray_after_close
	check "$mode: ferryd stops cleanly" stop_ferryd
}

require_root
topo_up || { log "topology setup failed"; exit 1; }
run_mode native
run_mode skb
summary test_tcp_rst
