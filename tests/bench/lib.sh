#!/bin/bash
# Helpers of the benchmark (sourced by tests/bench/run.sh): the topology,
# CPU placement, the sink and the generator, and one up/down pair per system.
#
# Everything this run creates carries its own id: namespaces
# fbench-<id>-{cli,px,srv}, veths c<id>/pc<id>/ps<id>/s<id> and the direct pair
# dc<id>/ds<id> (unique names system-wide, so each veth's NAPI kthread,
# "napi/<dev>-<n>", can be found and pinned).  bench_cleanup, the EXIT trap,
# kills only the PIDs this run started and deletes only what it created.
#
#   client ns             proxy ns                          server ns
#   c<id> 198.18.1.2 ---- pc<id> 198.18.1.1 | ps<id> 198.18.2.1 ---- s<id> 198.18.2.2
#   dc<id> ------------------------------------------------------ ds<id>  (no proxy)
#
# CPU 0: generator, sink, latency probe and the end hosts' NAPI threads (at
# real-time priority).  CPU 1: the proxy's NAPI threads and the system under
# test.  Neighbours are permanent entries, so no ARP runs during a load.

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-$TOP/build}
BENCH=$BUILD/bench
FERRYD=$BUILD/ferryd
FERRYCTL=$BUILD/ferryctl

ID=$(printf '%06x' $(((RANDOM << 15 | RANDOM) & 0xffffff)))
NS_CLI=fbench-$ID-cli
NS_PX=fbench-$ID-px
NS_SRV=fbench-$ID-srv
DEV_C=c$ID DEV_PC=pc$ID DEV_PS=ps$ID DEV_S=s$ID DEV_DC=dc$ID DEV_DS=ds$ID
WORK=$(mktemp -d /tmp/fbench.XXXXXX)
CREATED_NS=()
STARTED_PIDS=()
CLEANUP_HOOKS=()

CLIENT=198.18.1.2 FLOW_ADDR=198.18.1.1 FLOW_PORT=5000
EGRESS=198.18.2.1 UPSTREAM=198.18.2.2 UPSTREAM_PORT=6000
NAT_PORTS=40000-40999
UMEM_FRAMES=8192 UMEM_FRAME_SIZE=4096
GEN_CPU=0 PROXY_CPU=1
# The app rows (app, relayxor): the transform's key, at the sink too (payloads
# XORed with it are counted as transformed); where app_xor runs, and at what
# SCHED_FIFO priority (0: normal scheduling).  Like ferryd by default: its
# CPU, and its workers' priority, so that ferryd + app have the one CPU the
# relay has.
XOR_KEY=${BENCH_XOR_KEY:-0x5a}
APP_CPU=${BENCH_APP_CPU:-$PROXY_CPU}
APP_PRIORITY=${BENCH_APP_PRIORITY:-${BENCH_FERRY_PRIORITY:-10}}
APP_XOR=$BUILD/examples/app_xor

in_cli() { ip netns exec "$NS_CLI" "$@"; }
in_px() { ip netns exec "$NS_PX" "$@"; }
in_srv() { ip netns exec "$NS_SRV" "$@"; }
say() { printf '%s\n' "$*" >&2; }
track_pid() { STARTED_PIDS+=("$1"); }
on_cleanup() { CLEANUP_HOOKS+=("$1"); }

# stop_pid PID: TERM, up to 5 s, then KILL; only ever a PID this run started.
stop_pid() {
	kill -TERM "$1" 2>/dev/null || return 0
	for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 0
}

bench_cleanup() {
	local pid hook ns
	for pid in "${STARTED_PIDS[@]}"; do stop_pid "$pid"; done
	for hook in "${CLEANUP_HOOKS[@]}"; do eval "$hook" 2>/dev/null; done
	for ns in "${CREATED_NS[@]}"; do ip netns del "$ns" 2>/dev/null; done
	rm -rf "$WORK"
}

wait_for() { # TRIES(0.1 s each) CMD...
	local n=$1
	shift
	for _ in $(seq "$n"); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

mac_of() { ip netns exec "$1" cat "/sys/class/net/$2/address"; }

add_ns() {
	ip netns add "$1" || return 1
	CREATED_NS+=("$1")
	ip -n "$1" link set lo up
}

# ns DEV: threaded NAPI (GRO on so the veth has a NAPI at all, which an XDP
# transmit into its peer needs even without an XDP program on it).
napi_on() {
	ip netns exec "$1" ethtool -K "$2" gro on >/dev/null || return 1
	ip netns exec "$1" sh -c "echo 1 > /sys/class/net/$2/threaded"
}

# The kthread of DEV's NAPI; its comm is "napi/DEV-<id>", cut to 15 characters.
napi_pids() { ps -e -o pid=,comm= | awk -v p="napi/$1-" 'index($2, p) == 1 { print $1 }'; }

# pin DEV CPU [rt]: where a veth's NAPI thread runs, and at what priority.
pin_napi() {
	local pid
	for pid in $(napi_pids "$1"); do
		taskset -p -c "$2" "$pid" >/dev/null || return 1
		if [ "${3:-}" = rt ]; then chrt -f -p 50 "$pid" || return 1; fi
	done
}

# The end hosts' receive paths (the sink, and the client's for the latency
# probe's replies) run at real-time priority: they must never wait behind the
# spinning generator on CPU 0.
pin_all_napi() {
	pin_napi "$DEV_PC" $PROXY_CPU && pin_napi "$DEV_PS" $PROXY_CPU &&
		pin_napi "$DEV_C" $GEN_CPU rt && pin_napi "$DEV_DC" $GEN_CPU &&
		pin_napi "$DEV_S" $GEN_CPU rt && pin_napi "$DEV_DS" $GEN_CPU rt
}

topo_up() {
	add_ns "$NS_CLI" && add_ns "$NS_PX" && add_ns "$NS_SRV" || return 1
	ip link add "$DEV_C" netns "$NS_CLI" type veth peer name "$DEV_PC" netns "$NS_PX" || return 1
	ip link add "$DEV_S" netns "$NS_SRV" type veth peer name "$DEV_PS" netns "$NS_PX" || return 1
	ip link add "$DEV_DC" netns "$NS_CLI" type veth peer name "$DEV_DS" netns "$NS_SRV" || return 1
	ip -n "$NS_CLI" addr add $CLIENT/24 dev "$DEV_C"
	ip -n "$NS_PX" addr add $FLOW_ADDR/24 dev "$DEV_PC"
	ip -n "$NS_PX" addr add $EGRESS/24 dev "$DEV_PS"
	ip -n "$NS_SRV" addr add $UPSTREAM/24 dev "$DEV_S"
	local nd ns dev
	for nd in "$NS_CLI:$DEV_C" "$NS_CLI:$DEV_DC" "$NS_PX:$DEV_PC" "$NS_PX:$DEV_PS" \
		"$NS_SRV:$DEV_S" "$NS_SRV:$DEV_DS"; do
		ns=${nd%%:*} dev=${nd#*:}
		ip -n "$ns" link set "$dev" up || return 1
		napi_on "$ns" "$dev" || return 1
	done
	# Every frame must carry a whole checksum: XDP forwarders and the sink see
	# raw frames, and with TX offload on, a veth leaves a locally sent datagram's
	# checksum partial (a NIC would finish it in hardware; a veth never does).
	# Off on the proxy's veths too, for the socket relay's own datagrams.
	for nd in "$NS_CLI:$DEV_C" "$NS_CLI:$DEV_DC" "$NS_SRV:$DEV_S" "$NS_SRV:$DEV_DS" \
		"$NS_PX:$DEV_PC" "$NS_PX:$DEV_PS"; do
		ip netns exec "${nd%%:*}" ethtool -K "${nd#*:}" tx off >/dev/null || return 1
	done
	MAC_C=$(mac_of "$NS_CLI" "$DEV_C") MAC_PC=$(mac_of "$NS_PX" "$DEV_PC")
	MAC_PS=$(mac_of "$NS_PX" "$DEV_PS") MAC_S=$(mac_of "$NS_SRV" "$DEV_S")
	MAC_DS=$(mac_of "$NS_SRV" "$DEV_DS")
	ip -n "$NS_CLI" neigh replace $FLOW_ADDR lladdr "$MAC_PC" dev "$DEV_C" nud permanent
	ip -n "$NS_PX" neigh replace $CLIENT lladdr "$MAC_C" dev "$DEV_PC" nud permanent
	ip -n "$NS_PX" neigh replace $UPSTREAM lladdr "$MAC_S" dev "$DEV_PS" nud permanent
	ip -n "$NS_SRV" neigh replace $EGRESS lladdr "$MAC_PS" dev "$DEV_S" nud permanent
	# Routed end to end only for testpmd, which forwards without NAT.
	ip -n "$NS_CLI" route add 198.18.2.0/24 via $FLOW_ADDR
	ip -n "$NS_SRV" route add 198.18.1.0/24 via $EGRESS
	in_px sysctl -qw net.ipv4.ip_forward=0
	# ferryd refuses nat.ports overlapping the proxy's own local port range.
	in_px sysctl -qw net.ipv4.ip_local_port_range="60000 60999"
	pin_all_napi
}

# --- the sink ---------------------------------------------------------------

sink_up() {
	SINK_OUT=$WORK/sink.out
	ip netns exec "$NS_SRV" "$BENCH/bench_sink" --dev "$DEV_S" --dev "$DEV_DS" \
		--expect $UPSTREAM:$UPSTREAM_PORT --xor "$XOR_KEY" --max-time 3600 >"$SINK_OUT" 2>"$WORK/sink.err" &
	SINK_PID=$!
	track_pid $SINK_PID
	wait_for 100 grep -q ready "$SINK_OUT" || { cat "$WORK/sink.err" >&2; return 1; }
	# Attaching XDP may have re-created the NAPI threads.
	pin_all_napi
}

# sink_read: the sink's cumulative counters, one JSON object.
sink_read() {
	local n
	n=$(wc -l <"$SINK_OUT")
	kill -USR1 "$SINK_PID" || return 1
	# Polled finely: this runs twice per sample, hundreds of times per run.
	for _ in $(seq 500); do
		if [ "$(wc -l <"$SINK_OUT")" -gt "$n" ]; then
			tail -n 1 "$SINK_OUT"
			return 0
		fi
		sleep 0.01
	done
	return 1
}

# --- the generator -----------------------------------------------------------

# gen SIZE RATE DURATION [bench_gen options...]: one JSON object.  Sends to the
# current system's GEN_DEV / GEN_MAC / GEN_DST.  The generator runs at nice -10
# so it keeps its pacing against other tasks on its CPU, while the sink's
# real-time NAPI thread still preempts it.  BENCH_GEN_RT=1 makes it SCHED_FIFO
# (below the sink): steadier offered rates on a busy machine, but it then takes
# CPU 0 from everyone else for the whole run.
if [ "${BENCH_GEN_RT:-0}" = 1 ]; then GEN_SCHED=(chrt -f 10); else GEN_SCHED=(nice -n -10); fi
gen_cmd() {
	local size=$1 rate=$2 dur=$3
	shift 3
	# timeout is only a backstop: bench_gen stops itself after DURATION.
	GEN_CMD=(ip netns exec "$NS_CLI" timeout -s INT "$(awk -v d="$dur" 'BEGIN { print int(d) + 10 }')"
		"${GEN_SCHED[@]}" taskset -c $GEN_CPU "$BENCH/bench_gen" --dev "$GEN_DEV" --dst-mac "$GEN_MAC"
		--src $CLIENT --dst "$GEN_DST" --size "$size" --rate "$rate" --duration "$dur"
		--count "${GEN_COUNT:-4e9}" --cpu $PROXY_CPU "$@")
}
gen() {
	gen_cmd "$@"
	"${GEN_CMD[@]}"
}
# gen_bg OUTFILE SIZE RATE DURATION [options...]: the same in the background; sets GEN_PID.
gen_bg() {
	local out=$1
	shift
	gen_cmd "$@"
	"${GEN_CMD[@]}" >"$out" &
	GEN_PID=$!
	track_pid $GEN_PID
}

# What the generator aims at: through the proxy to the flow, or straight at the
# upstream (no proxy, and testpmd, which does no NAT).
target_flow() { GEN_DEV=$DEV_C GEN_MAC=$MAC_PC GEN_DST=$FLOW_ADDR:$FLOW_PORT; }
target_upstream() { GEN_DEV=$DEV_C GEN_MAC=$MAC_PC GEN_DST=$UPSTREAM:$UPSTREAM_PORT; }
target_direct() { GEN_DEV=$DEV_DC GEN_MAC=$MAC_DS GEN_DST=$UPSTREAM:$UPSTREAM_PORT; }

# --- systems ----------------------------------------------------------------
# sys_NAME_up sets GEN_* (and LAT_DST for latency) or sets NA and fails;
# sys_NAME_down undoes it.  Each leaves IP forwarding off in the proxy.

ferry_config() { # FILE FLOWS PORTS MAX_SESSIONS [SERVICES-YAML]
	local i
	{
		echo "pin_path: $WORK/bpffs/ferry"
		echo "interfaces:"
		echo "  - {name: $DEV_PC, xdp_mode: native-only${BENCH_FERRY_IFACE:+, $BENCH_FERRY_IFACE}}"
		echo "  - {name: $DEV_PS, xdp_mode: native-only${BENCH_FERRY_IFACE:+, $BENCH_FERRY_IFACE}}"
		# Tuned for a forwarding host (docs/design.md, Real-time workers): workers above
		# the proxy's NAPI threads, and 50 us naps while packets trickle in.
		echo "worker_priority: ${BENCH_FERRY_PRIORITY:-10}"
		echo "coalesce_usecs: ${BENCH_FERRY_COALESCE:-50}"
		# The generator's sessions all come from one address: no per-source limit.
		echo "nat: {ports: $3, max_sessions: $4, max_sessions_per_source: 0}"
		# Spelled out so the memory report's configured sizes stay true if defaults change.
		echo "umem: {frames: $UMEM_FRAMES, frame_size: $UMEM_FRAME_SIZE}"
		echo "flows:"
		for ((i = 0; i < $2; i++)); do
			echo "  - name: bench$i"
			echo "    match: {protocol: udp, destination: $FLOW_ADDR/32, port: $((FLOW_PORT + i))}"
			# Unset: ferry's default (auto: established sessions forward in XDP).
			if [ -n "${FLOW_OFFLOAD:-}" ]; then echo "    offload: $FLOW_OFFLOAD"; fi
			echo "    services:"
			if [ -n "${5:-}" ]; then printf '%s\n' "$5"; fi
			echo "      - forward: {upstream: '$UPSTREAM:$((UPSTREAM_PORT + i))'}"
		done
	} >"$1"
}

bpffs_up() {
	[ -d "$WORK/bpffs" ] && return 0
	mkdir -p "$WORK/bpffs" && mount -t bpf bpf "$WORK/bpffs" || return 1
	on_cleanup "umount '$WORK/bpffs'"
}

# ferryd_start CONFIG: on the proxy CPU (ferryd has no cpus setting yet).
ferryd_start() {
	bpffs_up || return 1
	FERRYD_LOG=$WORK/ferryd.$(date +%s%N).log
	ip netns exec "$NS_PX" taskset -c $PROXY_CPU "$FERRYD" -c "$1" >"$FERRYD_LOG" 2>&1 &
	FERRYD_PID=$!
	track_pid $FERRYD_PID
	if ! wait_for 150 grep -q 'running:' "$FERRYD_LOG"; then
		NA="ferryd did not start: $(grep -m1 -E 'error|fail' "$FERRYD_LOG")"
		stop_pid $FERRYD_PID
		return 1
	fi
	pin_all_napi
	if [ -n "${BENCH_NAPI_DEFER:-}" ]; then
		local d
		for d in $DEV_PC $DEV_PS; do
			in_px sh -c "echo ${BENCH_NAPI_DEFER%%:*} > /sys/class/net/$d/napi_defer_hard_irqs; echo ${BENCH_NAPI_DEFER#*:} > /sys/class/net/$d/gro_flush_timeout"
		done
	fi
}

ferryd_stop() {
	# Where the packets that did not reach the sink went, by ferry's own counters.
	ferry_stats 2>/dev/null | jq -r '.flows[] | "  ferry \(.name): rx \(.datapath.rx_packets) tx \(.datapath.tx_packets) sessions \(.datapath.sessions_created) drops \(.datapath.drops | tostring)"' >&2 2>/dev/null
	stop_pid "$FERRYD_PID"
	grep -q 'frame accounting holds' "$FERRYD_LOG" || say "  note: ferryd did not report its frame accounting at stop"
}

ferry_stats() { "$FERRYCTL" -p "$WORK/bpffs/ferry" stats --json; }

# The first flow's XDP counters (ferry_flow_stats, summed over CPUs by
# ferryctl): {packets, offloaded}, offloaded being those of packets that the
# fast path forwarded without a worker.  null where ferryctl has no such field.
ferry_offload_counts() {
	ferry_stats | jq -c 'first(.flows[] | select(.name == "bench0")) // {}
		| {packets: .steering.packets, offloaded: .steering.offloaded}'
}

sys_ferry_up() {
	ferry_config "$WORK/ferry.yaml" 1 $NAT_PORTS 65536 && ferryd_start "$WORK/ferry.yaml" || return 1
	target_flow
	LAT_DST=$FLOW_ADDR:$FLOW_PORT
}
sys_ferry_down() { ferryd_stop; }

# The same flow with `offload: off`: every packet through the AF_XDP path, as
# before the fast path.
sys_ferryoff_up() { FLOW_OFFLOAD=off sys_ferry_up; }
sys_ferryoff_down() { ferryd_stop; }

# The same with ferryd's defaults (normal scheduling, no naps): what the tuning buys.
sys_ferrynorm_up() { BENCH_FERRY_PRIORITY=0 BENCH_FERRY_COALESCE=0 sys_ferry_up; }
sys_ferrynorm_down() { ferryd_stop; }

# Until its services are built, --check rejects the chain's config and the row is n/a.
# The chain: an access list on addresses and ports only (no payload rule, so
# the chain stays offloadable) that allows the client's prefix and ports
# (every packet is judged), and a per-flow rate limit far above anything
# offered here (every packet takes a token, none is dropped), then the same
# forward, with the flow's default offload (auto).
CHAIN_SERVICES="      - filter: {allow: [{source: 198.18.1.0/24, source_port: 1024-65535, destination_port: $FLOW_PORT}], default: deny}
      - ratelimit: {packets_per_second: 100000000, burst_packets: 1000000, per: flow}"
sys_chain_up() {
	ferry_config "$WORK/chain.yaml" 1 $NAT_PORTS 65536 "$CHAIN_SERVICES"
	if ! "$FERRYD" -c "$WORK/chain.yaml" --check >"$WORK/chain.check" 2>&1; then
		NA="services not built yet"
		say "  ferryd --check: $(grep -m1 -o "unknown service.*" "$WORK/chain.check" || head -n1 "$WORK/chain.check")"
		return 1
	fi
	ferryd_start "$WORK/chain.yaml" || return 1
	target_flow
	LAT_DST=$FLOW_ADDR:$FLOW_PORT
}
sys_chain_down() { ferryd_stop; }

# Kernel forwarding with the same full NAT: DNAT F:f -> U:u, SNAT to E:ports.
sys_nft_up() {
	in_px sysctl -qw net.ipv4.ip_forward=1
	in_px nft -f - <<-EOF || { NA="nft rules refused"; return 1; }
	table ip fbench {
		chain pre {
			type nat hook prerouting priority dstnat; policy accept;
			ip daddr $FLOW_ADDR udp dport $FLOW_PORT dnat to $UPSTREAM:$UPSTREAM_PORT
		}
		chain post {
			type nat hook postrouting priority srcnat; policy accept;
			oifname "$DEV_PS" ip daddr $UPSTREAM udp dport $UPSTREAM_PORT snat to $EGRESS:$NAT_PORTS
		}
	}
	EOF
	target_flow
	LAT_DST=$FLOW_ADDR:$FLOW_PORT
}
sys_nft_down() {
	in_px nft delete table ip fbench
	in_px sysctl -qw net.ipv4.ip_forward=0
}

# nft_flowtable_probe: 0 if this kernel creates an nftables flowtable and a
# rule that adds flows to it (CONFIG_NF_FLOW_TABLE); else 1 with the reason
# in NA.  Tried in a namespace of its own on a veth pair of its own, deleted
# before it returns (and by the EXIT trap if the run stops meanwhile).
nft_flowtable_probe() {
	local ns=fbench-$ID-ftprobe out rc
	command -v nft >/dev/null || { NA="nft not installed"; return 1; }
	add_ns "$ns" || { NA="could not create the probe's namespace"; return 1; }
	if ! ip -n "$ns" link add ftp0 type veth peer name ftp1; then
		ip netns del "$ns"
		NA="could not create the probe's veths"
		return 1
	fi
	out=$(ip netns exec "$ns" nft -f - 2>&1 <<-EOF
	table inet probe {
		flowtable ft { hook ingress priority 0; devices = { ftp0, ftp1 }; }
		chain fw {
			type filter hook forward priority filter; policy accept;
			ip protocol { udp, tcp } flow add @ft
		}
	}
	EOF
	)
	rc=$?
	ip netns del "$ns"
	[ $rc = 0 ] && return 0
	NA="not supported by this kernel: nft says '$(printf '%s\n' "$out" | grep -m1 -o 'Error: .*' |
		sed 's/^Error: //')' (CONFIG_NF_FLOW_TABLE)"
	return 1
}

# Kernel forwarding with the same NAT, plus the kernel's software fast path:
# a flowtable on both veths.  The forward chain adds each UDP and TCP flow
# to it, and from then on its packets skip the forwarding path and the NAT
# chains (the rewrite comes from the conntrack entry), at the ingress hook.
sys_nftft_up() {
	local out
	in_px sysctl -qw net.ipv4.ip_forward=1
	if ! out=$(in_px nft -f - 2>&1 <<-EOF
	table inet fbenchft {
		flowtable ft { hook ingress priority 0; devices = { $DEV_PC, $DEV_PS }; }
		chain pre {
			type nat hook prerouting priority dstnat; policy accept;
			ip daddr $FLOW_ADDR udp dport $FLOW_PORT dnat ip to $UPSTREAM:$UPSTREAM_PORT
		}
		chain post {
			type nat hook postrouting priority srcnat; policy accept;
			oifname "$DEV_PS" ip daddr $UPSTREAM udp dport $UPSTREAM_PORT snat ip to $EGRESS:$NAT_PORTS
		}
		chain fw {
			type filter hook forward priority filter; policy accept;
			ip protocol { udp, tcp } flow add @ft
		}
	}
	EOF
	); then
		NA="nft rules refused: $(printf '%s\n' "$out" | grep -m1 -o 'Error: .*')"
		in_px sysctl -qw net.ipv4.ip_forward=0
		return 1
	fi
	target_flow
	LAT_DST=$FLOW_ADDR:$FLOW_PORT
}
sys_nftft_down() {
	in_px nft delete table inet fbenchft
	in_px sysctl -qw net.ipv4.ip_forward=0
}

sys_relay_up() {
	ip netns exec "$NS_PX" taskset -c $PROXY_CPU "$BENCH/udp_relay" \
		--listen $FLOW_ADDR:$FLOW_PORT --upstream $UPSTREAM:$UPSTREAM_PORT --source $EGRESS \
		--batch 64 --max-time 3600 2>"$WORK/relay.log" &
	RELAY_PID=$!
	track_pid $RELAY_PID
	wait_for 50 grep -q ready "$WORK/relay.log" || { NA="udp_relay did not start"; return 1; }
	target_flow
	LAT_DST=$FLOW_ADDR:$FLOW_PORT
}
sys_relay_down() {
	stop_pid "$RELAY_PID"
	say "  $(tail -n 1 "$WORK/relay.log")"
}

# The same relay doing the app rows' transform in its own process: each
# datagram's payload, both ways, XORed with the key (RUN_KEY: the key of this
# phase, see sys_app_up).
sys_relayxor_up() {
	ip netns exec "$NS_PX" taskset -c $PROXY_CPU "$BENCH/udp_relay" \
		--listen $FLOW_ADDR:$FLOW_PORT --upstream $UPSTREAM:$UPSTREAM_PORT --source $EGRESS \
		--batch 64 --xor "${RUN_KEY:-$XOR_KEY}" --max-time 3600 2>"$WORK/relay.log" &
	RELAY_PID=$!
	track_pid $RELAY_PID
	wait_for 50 grep -q ready "$WORK/relay.log" || { NA="udp_relay --xor did not start"; return 1; }
	target_flow
	LAT_DST=$FLOW_ADDR:$FLOW_PORT
}
sys_relayxor_down() { sys_relay_down; }

# ferry forward with an app slot before the forward, and the example app
# services/examples/app_xor attached to it as nobody: every payload goes
# out to the app's process and back.  on_failure: drop, so a packet the app
# did not return never reaches the sink (nor would it count there: the sink
# counts only XORed payloads for this row).  The app runs on APP_CPU at
# SCHED_FIFO APP_PRIORITY (set before it drops to nobody; an unprivileged
# process inherits it).  timeout_ms 1000: on a shared CPU a starved app is
# slow, not hung; the row measures throughput, not the hang detection.
APP_SERVICES="      - app: {name: bench, owner: nobody, on_failure: drop, timeout_ms: 1000}"
sys_app_up() {
	local sched=()
	# nobody reaches the control socket through the work directory.
	chmod 0711 "$WORK" && mkdir -p -m 0755 "$WORK/ctl" || return 1
	[ -x "$APP_XOR" ] || { NA="$APP_XOR missing (make all)"; return 1; }
	ferry_config "$WORK/app.yaml" 1 $NAT_PORTS 65536 "$APP_SERVICES" || return 1
	echo "control_socket: $WORK/ctl/ferryd.sock" >>"$WORK/app.yaml"
	ferryd_start "$WORK/app.yaml" || return 1
	[ "$APP_PRIORITY" != 0 ] && sched=(chrt -f "$APP_PRIORITY")
	APP_LOG=$WORK/app.$(date +%s%N).log
	ip netns exec "$NS_PX" "${sched[@]}" taskset -c $APP_CPU setpriv --reuid=65534 --regid=65534 \
		--clear-groups "$APP_XOR" -s "$WORK/ctl/ferryd.sock" bench "${RUN_KEY:-$XOR_KEY}" \
		>"$APP_LOG" 2>&1 &
	APP_PID=$!
	track_pid $APP_PID
	if ! wait_for 50 grep -q 'app_xor: attached' "$APP_LOG"; then
		NA="app_xor did not attach: $(head -n1 "$APP_LOG")"
		stop_pid $APP_PID
		ferryd_stop
		return 1
	fi
	target_flow
	LAT_DST=$FLOW_ADDR:$FLOW_PORT
}
sys_app_down() {
	# What the slot did, by ferryd's counters: in = out unless it dropped
	# (published once a second: one more publish after the last sample).
	sleep 1.1
	"$FERRYCTL" -p "$WORK/bpffs/ferry" apps --json 2>/dev/null | jq -r '.apps[]
		| "  app \(.slot): in \(.in) out \(.out) dropped \(.dropped) bypassed \(.bypassed) timeouts \(.timeouts) bad_desc \(.bad_desc) rtt avg \(.rtt_avg_ns / 1000 | round) us"' >&2 2>/dev/null
	# Anything app_xor said after it attached (a detach by ferryd: exit 3).
	tail -n +2 "$APP_LOG" | head -n 3 | sed 's/^/  /' >&2
	stop_pid "$APP_PID"
	ferryd_stop
}

sys_xdpnat_up() {
	ip netns exec "$NS_PX" "$BENCH/xdp_nat_fwd" --client-dev "$DEV_PC" --upstream-dev "$DEV_PS" \
		--flow $FLOW_ADDR:$FLOW_PORT --upstream $UPSTREAM:$UPSTREAM_PORT \
		--upstream-mac "$MAC_S" --egress $EGRESS --ports $NAT_PORTS --max-time 3600 \
		>"$WORK/xdpnat.out" 2>"$WORK/xdpnat.err" &
	XDPNAT_PID=$!
	track_pid $XDPNAT_PID
	wait_for 50 grep -q ready "$WORK/xdpnat.out" || { NA="xdp_nat_fwd: $(head -n1 "$WORK/xdpnat.err")"; return 1; }
	pin_all_napi
	target_flow
	LAT_DST=$FLOW_ADDR:$FLOW_PORT
}
sys_xdpnat_down() { stop_pid "$XDPNAT_PID"; }

# DPDK testpmd, mac forwarding between two net_af_xdp ports: MAC rewrite only,
# no NAT, so the generator and the latency probe address the upstream itself.
sys_testpmd_up() {
	local pmd
	pmd=$(command -v dpdk-testpmd) || { NA="dpdk-testpmd not installed (Debian package dpdk-dev)"; return 1; }
	ip netns exec "$NS_PX" "$pmd" -l $GEN_CPU,$PROXY_CPU --main-lcore $GEN_CPU --no-pci --no-huge -m 512 \
		--file-prefix "fbench$ID" --log-level=pmd.net.af_xdp:info \
		--vdev "net_af_xdp0,iface=$DEV_PC,start_queue=0,queue_count=1" \
		--vdev "net_af_xdp1,iface=$DEV_PS,start_queue=0,queue_count=1" -- \
		--forward-mode=mac --eth-peer="0,$MAC_C" --eth-peer="1,$MAC_S" --nb-cores=1 \
		--rxq=1 --txq=1 --total-num-mbufs=16384 --stats-period=3600 </dev/null >"$WORK/testpmd.log" 2>&1 &
	TESTPMD_PID=$!
	track_pid $TESTPMD_PID
	# EAL's runtime directory (--in-memory would avoid it, but not with --no-huge).
	on_cleanup "rm -rf '/var/run/dpdk/fbench$ID'; rmdir /var/run/dpdk"
	if ! wait_for 150 grep -q 'start packet forwarding' "$WORK/testpmd.log" ||
		! kill -0 $TESTPMD_PID 2>/dev/null; then
		NA="testpmd could not run: $(grep -m1 -E 'Cause:|^EAL: .*(not|rror|fail|annot)' "$WORK/testpmd.log" | cut -c1-120)"
		stop_pid $TESTPMD_PID
		return 1
	fi
	sleep 0.5
	pin_all_napi
	target_upstream
	LAT_DST=$UPSTREAM:$UPSTREAM_PORT
}
sys_testpmd_down() { stop_pid "$TESTPMD_PID"; }

sys_direct_up() { target_direct; }
sys_direct_down() { :; }
