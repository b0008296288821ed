#!/bin/bash
# The fleet of tests/integration/test_fleet.sh and `make fleet-demo`
# (sourced, after tests/lib.sh): three ferry hosts behind a router that
# learns the service address from each by BGP (BIRD) and spreads clients'
# flows over them by ECMP, an L4 hash.  docs/fleet.md explains the pieces.
#
#   cli ns                rtr ns (BIRD, ECMP)           hN ns (ferryd, BIRD, watcher)      srv ns
#   c0 198.18.20.2 --- r-cli 198.18.20.1
#                        r-h1 198.18.11.1 --- up0 198.18.11.2 | dn0 198.18.31.1 --- s-h1 198.18.31.2
#                        r-h2 198.18.12.1 --- up0 198.18.12.2 | dn0 198.18.32.1 --- s-h2 198.18.32.2
#                        r-h3 198.18.13.1 --- up0 198.18.13.2 | dn0 198.18.33.1 --- s-h3 198.18.33.2
#
# The service, 198.18.100.1 UDP port 7000, is an lb flow over the upstreams
# 198.18.40.1-3 port 7001 (addresses of srv's lo), the same config on
# every host: the interfaces have the same names in each host namespace,
# only the pin path differs.  Each host has a bpffs of its own, mounted
# here, so that ferryctl and the watcher, in other `ip netns exec`
# instances than ferryd, see its pins.  Router AS 65000, hosts AS 65001.

FLEET_DIR=$TOP/tests/fleet
FLEET_SERVICE=198.18.100.1
FLEET_PORT=7000
FLEET_UPSTREAMS="198.18.40.1:7001 198.18.40.2:7001 198.18.40.3:7001"
FLEET_XDP_MODE=${FLEET_XDP_MODE:-native}
# How often the watcher asks ferryctl health (seconds).
FLEET_WATCH=${FLEET_WATCH:-0.2}
NS_CLI=ferry-$RUN_ID-cli
NS_RTR=ferry-$RUN_ID-rtr
NS_UP=ferry-$RUN_ID-srv
FERRYD_PIDS=()
WATCH_PIDS=()
BIRD_PIDS=()

ns_host() { echo "ferry-$RUN_ID-h$1"; }
in_rtr() { ip netns exec "$NS_RTR" "$@"; }
in_host() { local n=$1; shift; ip netns exec "$(ns_host "$n")" "$@"; }
host_pin() { echo "$WORKDIR/h$1/bpffs/ferry"; }

fleet_topo_up() {
	local n ns
	add_ns "$NS_CLI" && add_ns "$NS_RTR" && add_ns "$NS_UP" || return 1
	ip link add c0 netns "$NS_CLI" type veth peer name r-cli netns "$NS_RTR" || return 1
	ip -n "$NS_CLI" addr add 198.18.20.2/24 dev c0
	ip -n "$NS_RTR" addr add 198.18.20.1/24 dev r-cli
	ip -n "$NS_CLI" link set c0 up && ip -n "$NS_RTR" link set r-cli up || return 1
	ip -n "$NS_CLI" route add default via 198.18.20.1 || return 1
	# ECMP by the L4 hash (policy 1: addresses, protocol and ports).
	in_rtr sysctl -qw net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=1 \
		net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 || return 1
	for a in 198.18.40.1 198.18.40.2 198.18.40.3; do
		ip -n "$NS_UP" addr add "$a/32" dev lo
	done
	for n in 1 2 3; do
		ns=$(ns_host "$n")
		add_ns "$ns" || return 1
		ip link add "r-h$n" netns "$NS_RTR" type veth peer name up0 netns "$ns" || return 1
		ip link add "s-h$n" netns "$NS_UP" type veth peer name dn0 netns "$ns" || return 1
		ip -n "$NS_RTR" addr add "198.18.1$n.1/24" dev "r-h$n"
		ip -n "$ns" addr add "198.18.1$n.2/24" dev up0
		ip -n "$ns" addr add "198.18.3$n.1/24" dev dn0
		ip -n "$NS_UP" addr add "198.18.3$n.2/24" dev "s-h$n"
		ip -n "$NS_RTR" link set "r-h$n" up && ip -n "$ns" link set up0 up &&
			ip -n "$ns" link set dn0 up && ip -n "$NS_UP" link set "s-h$n" up || return 1
		ip -n "$ns" route add default via "198.18.1$n.1" || return 1
		ip -n "$ns" route add 198.18.40.0/24 via "198.18.3$n.2" || return 1
		# Replies to host n's NAT source go back through host n.
		mkdir -p "$WORKDIR/h$n/bpffs" || return 1
		mount -t bpf bpf "$WORKDIR/h$n/bpffs" || return 1
		on_cleanup "umount '$WORKDIR/h$n/bpffs'"
		fleet_write_ferry_conf "$n"
	done
	# Frames AF_XDP sees must carry full checksums (tests/lib.sh).
	ip netns exec "$NS_CLI" ethtool -K c0 tx off >/dev/null
	for n in 1 2 3; do
		ip netns exec "$NS_UP" ethtool -K "s-h$n" tx off >/dev/null
	done
}

# The same flows and interfaces on every host; only the pin path is the host's.
fleet_write_ferry_conf() { # N
	local ups
	ups=$(echo $FLEET_UPSTREAMS | sed 's/ /, /g')
	cat >"$WORKDIR/h$1/ferry.yaml" <<-YAML
	pin_path: $(host_pin "$1")
	interfaces:
	  - name: up0
	    xdp_mode: $FLEET_XDP_MODE
	  - name: dn0
	    xdp_mode: $FLEET_XDP_MODE
	nat:
	  ports: 40000-40999
	flows:
	  - name: svc
	    match: {protocol: udp, destination: $FLEET_SERVICE/32, port: $FLEET_PORT}
	    services:
	      - lb:
	          upstreams: [$ups]
	YAML
}

# bird NS NAME CONF: BIRD in the foreground, its own control socket and pid file.
fleet_bird() {
	ip netns exec "$1" bird -f -s "$WORKDIR/bird-$2.ctl" -c "$3" -P "$WORKDIR/bird-$2.pid" \
		>"$WORKDIR/bird-$2.out" 2>&1 &
	BIRD_PIDS+=($!)
	track_pid $!
	wait_for test -S "$WORKDIR/bird-$2.ctl"
}

birdc_of() { # NAME CMD...
	local name=$1
	shift
	birdc -s "$WORKDIR/bird-$name.ctl" "$@"
}

fleet_start_router_bird() {
	sed "s#@LOG@#$WORKDIR/bird-rtr.log#" "$FLEET_DIR/bird-router.conf.in" >"$WORKDIR/bird-rtr.conf"
	fleet_bird "$NS_RTR" rtr "$WORKDIR/bird-rtr.conf"
}

fleet_start_host_bird() { # N
	sed -e "s#@LOG@#$WORKDIR/bird-h$1.log#" -e "s#@ADDR@#198.18.1$1.2#g" \
		-e "s#@ROUTER@#198.18.1$1.1#" -e "s#@SERVICE@#$FLEET_SERVICE#" \
		"$FLEET_DIR/bird-host.conf.in" >"$WORKDIR/bird-h$1.conf"
	fleet_bird "$(ns_host "$1")" "h$1" "$WORKDIR/bird-h$1.conf"
}

fleet_start_ferryd() { # N
	local log=$WORKDIR/h$1/ferryd.log
	# Not through in_host: $! must be ferryd itself.
	ip netns exec "$(ns_host "$1")" "$FERRYD" -c "$WORKDIR/h$1/ferry.yaml" >>"$log" 2>&1 &
	FERRYD_PIDS[$1]=$!
	track_pid $!
	if ! wait_for grep -q 'running:' "$log"; then
		log "ferryd of host $1 did not start; its log:"
		sed 's/^/  | /' "$log" >&2
		return 1
	fi
}

# The announcer: ferryctl health --watch enabling and disabling ferry_service.
fleet_start_watcher() { # N
	local ctl="birdc -s $WORKDIR/bird-h$1.ctl"
	ip netns exec "$(ns_host "$1")" "$FERRYCTL" -p "$(host_pin "$1")" health \
		--watch "$FLEET_WATCH" --rise 2 --fall 1 --refresh 5 \
		--up "$ctl enable ferry_service >/dev/null" \
		--down "$ctl disable ferry_service >/dev/null" >"$WORKDIR/h$1/watch.out" 2>&1 &
	WATCH_PIDS[$1]=$!
	track_pid $!
}

fleet_start_upstreams() { # SECONDS
	local listen=()
	for u in $FLEET_UPSTREAMS; do listen+=(--listen "$u"); done
	ip netns exec "$NS_UP" python3 "$FLEET_DIR/flows.py" server "${listen[@]}" --duration "$1" \
		>"$WORKDIR/upstreams.out" 2>&1 &
	UPSTREAMS_PID=$!
	track_pid $!
}

# The router's next hops for the service address, one per line (none: nothing).
fleet_nexthops() {
	ip -n "$NS_RTR" route show "$FLEET_SERVICE/32" |
		awk '/^'"$FLEET_SERVICE"' via/ {print $3} $1 == "nexthop" {print $3}'
}

# fleet_wait_nexthops COUNT TENTHS: until the route has COUNT next hops,
# asked every 20 ms or so (the convergence time is read off this).
fleet_wait_nexthops() {
	local i
	for i in $(seq $(($2 * 5))); do
		[ "$(fleet_nexthops | wc -l)" = "$1" ] && return 0
		sleep 0.02
	done
	return 1
}

# The packets host N's ferryd took from clients for the service (ferryctl stats).
fleet_host_rx() { # N
	"$FERRYCTL" -p "$(host_pin "$1")" stats --json 2>/dev/null |
		jq -r '.flows[] | select(.name == "svc") | .datapath.rx_packets // 0' 2>/dev/null
}

# The packets host N's XDP fast path forwarded for the service, both ways.
fleet_host_offloaded() { # N
	"$FERRYCTL" -p "$(host_pin "$1")" stats --json 2>/dev/null |
		jq -r '.flows[] | select(.name == "svc") |
			(.steering.offloaded // 0) + (.steering.offloaded_reply // 0)' 2>/dev/null
}

now_ns() { date +%s%N; }

# What `make fleet-demo` shows at each step: the router's BGP sessions, the
# route it learned, and each host's health and packets so far.
fleet_show() { # TITLE
	local n
	echo "---- $1"
	birdc_of rtr show protocols | awk '$2 == "BGP" || $2 == "BFD" {print "  router: " $0}'
	birdc_of rtr show route "$FLEET_SERVICE/32" all | awk '/unicast|BGP.next_hop/ {print "  router learned: " $0}'
	echo "  router's kernel route: $(ip -n "$NS_RTR" route show "$FLEET_SERVICE/32" | tr -s ' \n\t' ' ')"
	for n in 1 2 3; do
		printf '  host %d (up0 198.18.1%d.2): %s; %s packets\n' "$n" "$n" \
			"$(in_host $n "$FERRYCTL" -p "$(host_pin $n)" health 2>&1)" "$(fleet_host_rx $n)"
	done
}
