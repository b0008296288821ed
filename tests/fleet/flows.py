#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Many UDP client flows through the fleet, and what became of each.

  flows.py server --listen ADDR:PORT [--listen ...] --duration SEC
  flows.py client --to ADDR:PORT --bind ADDR --flows N --sport BASE
                  --interval SEC --duration SEC --out FILE.json
  flows.py analyze FILE.json --dead-host N --kill NS --restart NS --back NS

server: an upstream per --listen address; echoes every datagram of the
client's format with the upstream's index and the sender's address (the NAT
source, which names the ferry host the datagram came through) appended.

client: flow i is a socket bound to BIND:BASE+i; every INTERVAL each flow
sends datagram (flow id, seq, send time); echoes are matched by (flow,
seq).  Bounded: DURATION seconds of sending, then one second for the last
echoes.  FILE.json: per flow, the send time of each seq (CLOCK_REALTIME ns)
and for each echoed seq the host and upstream it went through.

analyze: prints key=value lines (what the test checks) and a report.
Hosts are numbered by the third octet of the NAT source: 198.18.3N.1 is
host N (tests/fleet/fleet.sh).
"""
import argparse
import json
import selectors
import signal
import socket
import struct
import sys
import time

MAGIC = b"FLT1"
HDR = struct.Struct("!4sIIQ")      # magic, flow, seq, send ns
TAIL = struct.Struct("!B4s")       # upstream index, NAT source address


def big_buffers(s):
    # Root may go past rmem_max: a stalled reader must not lose what the fleet delivered.
    for opt in (getattr(socket, "SO_RCVBUFFORCE", 33), socket.SO_RCVBUF):
        try:
            s.setsockopt(socket.SOL_SOCKET, opt, 4 << 20)
            return
        except OSError:
            pass


def addr(s):
    host, port = s.rsplit(":", 1)
    return host, int(port)


def server(args):
    sel = selectors.DefaultSelector()
    for i, a in enumerate(args.listen):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        big_buffers(s)
        s.bind(addr(a))
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, i)
    end = time.monotonic() + args.duration
    counts = [0] * len(args.listen)
    while time.monotonic() < end:
        for key, _ in sel.select(timeout=0.2):
            s = key.fileobj
            for _ in range(256):
                try:
                    data, peer = s.recvfrom(2048)
                except BlockingIOError:
                    break
                if len(data) < HDR.size or data[:4] != MAGIC:
                    continue
                counts[key.data] += 1
                tail = TAIL.pack(key.data, socket.inet_aton(peer[0]))
                try:
                    s.sendto(data[:HDR.size] + tail, peer)
                except OSError:
                    pass
    print("flows server: " + " ".join(
        "%s=%d" % (a, c) for a, c in zip(args.listen, counts)), flush=True)


def client(args):
    dst = addr(args.to)
    sel = selectors.DefaultSelector()
    socks = []
    for i in range(args.flows):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        big_buffers(s)
        s.bind((args.bind, args.sport + i))
        s.connect(dst)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, i)
        socks.append(s)
    sent = [[] for _ in range(args.flows)]        # send time of each seq
    echo = [{} for _ in range(args.flows)]        # seq -> [host, upstream]
    start = time.monotonic()
    end_send = start + args.duration
    end = end_send + 1.0
    tick = 0
    stop = []
    # SIGUSR1: stop sending now (the test's last step is done), echoes for a second more.
    signal.signal(signal.SIGUSR1, lambda *_: stop.append(True))
    while True:
        now = time.monotonic()
        if stop and now < end_send:
            end_send = now
            end = now + 1.0
        if now >= end:
            break
        due = start + tick * args.interval
        if now >= due and now < end_send:
            for i, s in enumerate(socks):
                t = time.time_ns()
                seq = len(sent[i])
                try:
                    s.send(HDR.pack(MAGIC, i, seq, t))
                except OSError:
                    pass    # counted as lost: no echo
                sent[i].append(t)
            tick += 1
            # A late tick is not made up for: the schedule slips, counts stay whole.
            if start + tick * args.interval < now:
                tick = int((now - start) / args.interval) + 1
            continue
        wait = min(due, end) - now if now < end_send else end - now
        for key, _ in sel.select(timeout=max(wait, 0)):
            s = key.fileobj
            for _ in range(64):
                try:
                    data = s.recv(2048)
                except (BlockingIOError, ConnectionRefusedError):
                    break
                if len(data) != HDR.size + TAIL.size:
                    continue
                magic, flow, seq, _ = HDR.unpack_from(data)
                up, nat = TAIL.unpack_from(data, HDR.size)
                if magic != MAGIC or flow >= args.flows or seq >= len(sent[flow]):
                    continue
                host = socket.inet_ntoa(nat).split(".")[2]
                echo[flow][seq] = [int(host) - 30, up]
    out = {"interval": args.interval, "flows": [
        {"sport": args.sport + i, "sent": sent[i],
         "echo": {str(k): v for k, v in echo[i].items()}}
        for i in range(args.flows)]}
    with open(args.out, "w") as f:
        json.dump(out, f)
    total = sum(len(x) for x in sent)
    got = sum(len(x) for x in echo)
    print("flows client: %d flows, %d sent, %d echoed" % (args.flows, total, got), flush=True)


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else 0


def analyze(args):
    with open(args.file) as f:
        data = json.load(f)
    dead = args.dead_host
    kill, restart, back = args.kill, args.restart, args.back
    flows = data["flows"]
    kv = {}
    report = []
    host_before = []
    per_host = {}
    per_host_during = {}
    ups_bad = 0
    live_lost = []
    moved = []
    live_moved = 0
    back_home = 0
    back_moves = 0
    moved_back_elsewhere = 0
    for i, fl in enumerate(flows):
        sent = fl["sent"]
        echo = {int(k): v for k, v in fl["echo"].items()}
        before = [echo[s] for s in range(len(sent)) if s in echo and sent[s] < kill]
        h0 = before[-1][0] if before else 0
        host_before.append(h0)
        per_host[h0] = per_host.get(h0, 0) + 1
        ups = {v[1] for v in echo.values()}
        if len(ups) != 1:
            ups_bad += 1
            report.append("flow %d (port %d): upstreams %s" % (i, fl["sport"], sorted(ups)))
        lost = [s for s in range(len(sent)) if s not in echo]
        # Where it went while the dead host was out, and after it came back.
        during = [echo[s][0] for s in range(len(sent))
                  if s in echo and kill + 1e9 < sent[s] < restart]
        after = [echo[s][0] for s in range(len(sent)) if s in echo and sent[s] > back + 5e8]
        h_during = during[-1] if during else 0
        per_host_during[h_during] = per_host_during.get(h_during, 0) + 1
        h_after = after[-1] if after else 0
        if h0 == dead:
            # Delivering again: the first datagram after the kill echoed through another host.
            resumed = [sent[s] for s in range(len(sent))
                       if s in echo and sent[s] > kill and echo[s][0] != dead]
            moved.append({"flow": i, "lost": len(lost), "host": h_during,
                          "resume_ms": (resumed[0] - kill) / 1e6 if resumed else None})
        else:
            live_lost.append(len(lost))
            if h_during != h0:
                live_moved += 1
        if h_after == h0:
            back_home += 1
        if h_after != h_during:
            back_moves += 1
            if h_after != dead:
                moved_back_elsewhere += 1
    kv["flows"] = len(flows)
    kv["hosts_before"] = ",".join("h%d:%d" % (h, per_host.get(h, 0)) for h in (1, 2, 3))
    kv["hosts_during"] = ",".join("h%d:%d" % (h, per_host_during.get(h, 0)) for h in (1, 2, 3))
    kv["hosts_used_before"] = sum(1 for h in (1, 2, 3) if per_host.get(h, 0) > 0)
    kv["flows_unplaced"] = per_host.get(0, 0)
    kv["flows_upstream_changed"] = ups_bad
    kv["moved_flows"] = len(moved)
    kv["moved_resumed"] = sum(1 for m in moved if m["resume_ms"] is not None)
    kv["moved_to_dead"] = sum(1 for m in moved if m["host"] in (0, dead))
    lost = [m["lost"] for m in moved]
    res = [m["resume_ms"] for m in moved if m["resume_ms"] is not None]
    kv["moved_lost_min"] = min(lost) if lost else 0
    kv["moved_lost_median"] = median(lost)
    kv["moved_lost_max"] = max(lost) if lost else 0
    kv["moved_resume_ms_median"] = "%.0f" % median(res)
    kv["moved_resume_ms_max"] = "%.0f" % (max(res) if res else 0)
    kv["live_flows"] = len(live_lost)
    kv["live_lost_total"] = sum(live_lost)
    kv["live_flows_with_loss"] = sum(1 for x in live_lost if x)
    kv["live_moved_at_withdraw"] = live_moved
    kv["moved_at_restart"] = back_moves
    kv["moved_at_restart_not_to_restarted"] = moved_back_elsewhere
    kv["back_on_first_host"] = back_home
    for k, v in kv.items():
        print("%s=%s" % (k, v))
    for m in moved:
        print("moved flow %d: lost %d, delivering again via host %d after %s ms" % (
            m["flow"], m["lost"], m["host"],
            "%.0f" % m["resume_ms"] if m["resume_ms"] is not None else "never"))
    for line in report[:10]:
        print(line)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("server")
    s.add_argument("--listen", action="append", required=True)
    s.add_argument("--duration", type=float, required=True)
    c = sub.add_parser("client")
    c.add_argument("--to", required=True)
    c.add_argument("--bind", required=True)
    c.add_argument("--flows", type=int, required=True)
    c.add_argument("--sport", type=int, required=True)
    c.add_argument("--interval", type=float, required=True)
    c.add_argument("--duration", type=float, required=True)
    c.add_argument("--out", required=True)
    a = sub.add_parser("analyze")
    a.add_argument("file")
    a.add_argument("--dead-host", type=int, required=True)
    a.add_argument("--kill", type=int, required=True)
    a.add_argument("--restart", type=int, required=True)
    a.add_argument("--back", type=int, required=True)
    args = ap.parse_args()
    if args.cmd == "server":
        if not 0 < args.duration <= 600:
            sys.exit("flows server: --duration 0..600")
        server(args)
    elif args.cmd == "client":
        if not (0 < args.flows <= 1024 and 0 < args.duration <= 600 and
                0.001 <= args.interval <= 10):
            sys.exit("flows client: --flows 1..1024, --duration 0..600, --interval 0.001..10")
        client(args)
    else:
        analyze(args)


if __name__ == "__main__":
    main()
