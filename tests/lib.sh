#!/bin/bash
# Shared helpers of ferry's namespace tests and demo (sourced).
#
# Every run gets its own namespace prefix; ns_cleanup, installed as an EXIT
# trap, removes exactly what this run created and kills only the PIDs it
# started.  Addresses: 198.18.0.0/15 and fd00::/8 only.
#
#   client ns            proxy ns                         server ns
#   cli0 198.18.1.2 ---- px-c 198.18.1.1 | px-s 198.18.2.1 ---- srv0 198.18.2.2
#        fd00:1::2            fd00:1::1  |      fd00:2::1            fd00:2::2

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$TOP/build}
# Overridable, e.g. with the sanitizer build (build/asan/, see run-all.sh).
FERRYD=${FERRYD:-$BUILD/ferryd}
FERRYCTL=${FERRYCTL:-$BUILD/ferryctl}
UDPPROBE=$BUILD/tests/udpprobe

# make check tags its suites' namespaces (FERRY_RUN_TAG), so that its
# leftover check sees its own only, whatever else runs on the host.
RUN_ID=${RUN_ID:-${FERRY_RUN_TAG:+$FERRY_RUN_TAG-}$$-$RANDOM}
NS_CLI=ferry-$RUN_ID-cli
NS_PX=ferry-$RUN_ID-px
NS_SRV=ferry-$RUN_ID-srv
CREATED_NS=()
STARTED_PIDS=()
CLEANUP_HOOKS=()
WORKDIR=$(mktemp -d /tmp/ferry-test.XXXXXX)

in_cli() { ip netns exec "$NS_CLI" "$@"; }
in_px() { ip netns exec "$NS_PX" "$@"; }
in_srv() { ip netns exec "$NS_SRV" "$@"; }

log() { printf '%s\n' "$*" >&2; }

# Remember a background PID so that cleanup kills it (and only it).
track_pid() { STARTED_PIDS+=("$1"); }
on_cleanup() { CLEANUP_HOOKS+=("$1"); }

ns_cleanup() {
	local pid ns hook
	for pid in "${STARTED_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null
	done
	for pid in "${STARTED_PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null
	done
	for hook in "${CLEANUP_HOOKS[@]}"; do
		eval "$hook" 2>/dev/null
	done
	for ns in "${CREATED_NS[@]}"; do
		ip netns del "$ns" 2>/dev/null
	done
	# FERRY_TEST_KEEP=1 keeps the run's files (ferryd's logs, configs) to read after a failure.
	if [ -n "${FERRY_TEST_KEEP:-}" ]; then
		log "kept: $WORKDIR"
	else
		rm -rf "$WORKDIR"
	fi
}

require_root() {
	if [ "$(id -u)" != 0 ]; then
		log "FAIL: $1 needs root (network namespaces, XDP, AF_XDP)"
		return 1
	fi
}

# Each namespace picks its own connections' ports from 50000-60999, so that
# the suites' nat.ports (40000-49999 and below) stay out of it: ferryd
# refuses a NAT range that overlaps net.ipv4.ip_local_port_range.
add_ns() {
	ip netns add "$1" || return 1
	CREATED_NS+=("$1")
	ip -n "$1" link set lo up
	ip netns exec "$1" sysctl -qw net.ipv4.ip_local_port_range="50000 60999"
}

# topo_up [QUEUES [HOST_TXQ]]: the three namespaces and two veth pairs above.
# With QUEUES > 1 (default 1) the veths get QUEUES queues, except that the end
# hosts' cli0 and srv0 get HOST_TXQ TX queues (default QUEUES), and px-c and
# px-s as many RX queues (at least QUEUES): native XDP on a veth needs an RX
# queue for each of the peer's TX queues.  A veth hands a frame sent on its
# TX queue q to the peer's RX queue q, where native XDP sees it; generic
# (skb) XDP sees it on RX queue q - 1 (0 for q 0), so reaching RX queue q in
# skb mode takes a sender with q + 2 TX queues.
topo_up() {
	local nq=${1:-1} htxq=${2:-${1:-1}} qopt=() hopt=()
	if [ "$nq" -gt 1 ]; then
		qopt=(numtxqueues "$nq" numrxqueues $((htxq > nq ? htxq : nq)))
		hopt=(numtxqueues "$htxq" numrxqueues "$nq")
	fi
	add_ns "$NS_CLI" && add_ns "$NS_PX" && add_ns "$NS_SRV" || return 1
	ip link add cli0 netns "$NS_CLI" "${hopt[@]}" type veth \
		peer name px-c netns "$NS_PX" "${qopt[@]}" || return 1
	ip link add srv0 netns "$NS_SRV" "${hopt[@]}" type veth \
		peer name px-s netns "$NS_PX" "${qopt[@]}" || return 1
	ip -n "$NS_CLI" addr add 198.18.1.2/24 dev cli0
	ip -n "$NS_CLI" addr add fd00:1::2/64 dev cli0 nodad
	ip -n "$NS_PX" addr add 198.18.1.1/24 dev px-c
	ip -n "$NS_PX" addr add fd00:1::1/64 dev px-c nodad
	ip -n "$NS_PX" addr add 198.18.2.1/24 dev px-s
	ip -n "$NS_PX" addr add fd00:2::1/64 dev px-s nodad
	ip -n "$NS_SRV" addr add 198.18.2.2/24 dev srv0
	ip -n "$NS_SRV" addr add fd00:2::2/64 dev srv0 nodad
	local ns dev
	for ns_dev in "$NS_CLI:cli0" "$NS_PX:px-c" "$NS_PX:px-s" "$NS_SRV:srv0"; do
		ns=${ns_dev%%:*} dev=${ns_dev#*:}
		ip -n "$ns" link set "$dev" up || return 1
	done
	# Frames the end hosts send must carry full checksums: AF_XDP sees raw frames,
	# and a veth would otherwise leave them to an offload that never happens.
	in_cli ethtool -K cli0 tx off >/dev/null
	in_srv ethtool -K srv0 tx off >/dev/null
}

# wait_for CMD... : retry for up to 10 s.
wait_for() {
	local i
	for i in $(seq 100); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

# start_ferryd CONFIG LOGFILE: ferryd in the proxy namespace; sets FERRYD_PID.
start_ferryd() {
	# Not through in_px: $! must be ferryd itself (ip netns exec execs it), not a subshell.
	ip netns exec "$NS_PX" "$FERRYD" -c "$1" -v >"$2" 2>&1 &
	FERRYD_PID=$!
	track_pid "$FERRYD_PID"
	if ! wait_for grep -q 'running:' "$2"; then
		log "ferryd did not start; its log:"
		sed 's/^/  | /' "$2" >&2
		return 1
	fi
}

# stop_ferryd: SIGTERM and wait; returns ferryd's exit status.
stop_ferryd() {
	local st
	kill -TERM "$FERRYD_PID" 2>/dev/null
	for _ in $(seq 100); do
		kill -0 "$FERRYD_PID" 2>/dev/null || break
		sleep 0.1
	done
	wait "$FERRYD_PID"
	st=$?
	return $st
}

# xdp_attached NS DEV: true when any XDP program is attached.
xdp_attached() {
	ip -n "$1" -d link show dev "$2" | grep -qE 'prog/xdp|xdpgeneric|xdpdrv|xdp '
}

# A tiny result ledger: check NAME CMD... prints PASS/FAIL lines.
PASSED=0
FAILED=0
check() {
	local name=$1
	shift
	if "$@"; then
		PASSED=$((PASSED + 1))
		printf 'PASS: %s\n' "$name"
	else
		FAILED=$((FAILED + 1))
		printf 'FAIL: %s\n' "$name"
	fi
}
summary() {
	printf '%s: %d passed, %d failed\n' "$1" "$PASSED" "$FAILED"
	[ "$FAILED" = 0 ]
}
