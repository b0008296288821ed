#!/bin/bash
# make demo: three namespaces (client, proxy, server), ferryd in the proxy
# with configs/demo.yaml, a bounded UDP stream from client to server through
# it and back, the counters read with ferryctl and bpftool, and proof that
# ping and TCP to the proxy still go through the kernel.  Everything is torn
# down on exit, Ctrl-C or failure.
. "$(dirname "$0")/lib.sh"
trap ns_cleanup EXIT
trap 'exit 130' INT TERM

COUNT=${DEMO_DATAGRAMS:-20000}
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
fail() { log "demo: $*"; exit 1; }

require_root "make demo" || exit 1
step "topology: client 198.18.1.2 -> proxy 198.18.1.1 | 198.18.2.1 -> server 198.18.2.2"
topo_up || fail "cannot build the namespaces"
# GRO on the end hosts' veths gives them the NAPI an XDP redirect into them
# needs: established sessions then forward in XDP (docs/design.md, "XDP fast path").
in_cli ethtool -K cli0 gro on >/dev/null && in_srv ethtool -K srv0 gro on >/dev/null ||
	fail "cannot turn GRO on"
ip -n "$NS_PX" -br addr

step "ferryd -c configs/demo.yaml (in the proxy namespace)"
sed -n '/^[^#]/p' "$TOP/configs/demo.yaml"
start_ferryd "$TOP/configs/demo.yaml" "$WORKDIR/ferryd.log" || fail "ferryd did not start"
sed 's/^/  ferryd | /' "$WORKDIR/ferryd.log"
PINS=/proc/$FERRYD_PID/root/sys/fs/bpf/ferry

step "a stream of $COUNT UDP datagrams, 16..1400 bytes: client -> 198.18.1.1:5000 -> server 198.18.2.2:6000, echoed back"
ip netns exec "$NS_SRV" "$UDPPROBE" server --listen 198.18.2.2:6000 --expect-src 198.18.2.1/32 \
	--expect-sport 40000-40999 --count "$COUNT" --timeout 60 &
srv=$!
track_pid $srv
sleep 0.3
in_cli "$UDPPROBE" client --to 198.18.1.1:5000 --count "$COUNT" --rate 20000 --timeout 10 ||
	fail "the stream did not come back intact"
wait $srv || fail "the server did not get every datagram"

step "ping and TCP to the proxy itself: not steered, the kernel answers"
in_cli ping -c 3 -i 0.2 -W 1 198.18.1.1 | tail -n 2
ip netns exec "$NS_PX" timeout 5 nc -l 198.18.1.1 5000 &
nc_pid=$!
track_pid $nc_pid
sleep 0.3
echo "hello over TCP to the proxy's own port 5000" | in_cli timeout 5 nc -N -w 2 198.18.1.1 5000
wait $nc_pid

sleep 1.2 # ferryd publishes the workers' counters once a second
step "ferryctl flows: the flow's rules, and whether its sessions forward in XDP"
"$FERRYCTL" -p "$PINS" flows
step "ferryctl stats (the 'offload' line: the share the XDP fast path forwarded itself)"
"$FERRYCTL" -p "$PINS" stats
step "bpftool map lookup pinned \$PINS/ferry_flow_stats key 0 0 0 0 (XDP side, per CPU, named fields)"
in_px bpftool map lookup pinned "$PINS/ferry_flow_stats" key 0 0 0 0
step "bpftool map lookup pinned \$PINS/ferry_fwd_stats key 0 0 0 0 (workers' side)"
in_px bpftool map lookup pinned "$PINS/ferry_fwd_stats" key 0 0 0 0

step "SIGTERM: ferryd detaches and unpins"
stop_ferryd || fail "ferryd exited non-zero"
tail -n 3 "$WORKDIR/ferryd.log" | sed 's/^/  ferryd | /'
for dev in px-c px-s; do
	xdp_attached "$NS_PX" $dev && fail "an XDP program is still attached to $dev"
done
echo "no XDP program left on px-c and px-s; namespaces are removed on exit"
