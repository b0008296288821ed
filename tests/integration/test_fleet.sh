#!/bin/bash
# A fleet of three ferry hosts behind an ECMP router, announced by BGP with
# BIRD while `ferryctl health --watch` finds ferryd healthy (tests/fleet/,
# docs/fleet.md).  Many UDP client flows (distinct source ports) to the
# service address spread over the three hosts; host 2's ferryd is
# SIGKILLed: its watcher withdraws the route, the router's route loses that
# next hop, the dead host's flows move to the others and reach the SAME
# upstreams (Maglev from the same config on every host), the other hosts'
# flows lose nothing; ferryd restarted, the host is announced again and
# every flow is back on the host it had before (ECMP hashing over the same
# next hops).  Prints the convergence time and the loss per moved flow.
# Also: two ferryds in two namespaces with the default pin path do not
# share pins; a frozen ferryd, an interface down, a restarted BIRD (the
# watcher's --refresh announces again), a stopped watcher and a host gone
# silent (the router's BFD) each withdraw the host.
#
# Bounded: 48 flows x 40 datagrams/s for 12-60 s; the suite takes about 40 s.
# FLEET_XDP_MODE=skb runs it in generic XDP mode (default native).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../fleet/fleet.sh"
trap ns_cleanup EXIT

FLOWS=${FLEET_FLOWS:-48}
INTERVAL=0.025
# At most; the client is told to stop 3 s after the restarted host is back.
DURATION=60
DEAD=2

fail_setup() {
	echo "FAIL: $1"
	echo "fleet: 0 passed, 1 failed"
	exit 1
}

# Two ferryds, host 1's and host 2's namespaces, the default pin path: each
# `ip netns exec` has a /sys of its own where ferryd mounts a bpffs, so
# each has its own /sys/fs/bpf/ferry, and ferryctl health there names it.
default_pins_apart() {
	local n pid ok=0
	declare -A pids
	for n in 1 2; do
		sed '/^pin_path:/d' "$WORKDIR/h$n/ferry.yaml" >"$WORKDIR/h$n/default.yaml"
		ip netns exec "$(ns_host $n)" "$FERRYD" -c "$WORKDIR/h$n/default.yaml" \
			>"$WORKDIR/h$n/default.log" 2>&1 &
		pids[$n]=$!
		track_pid $!
	done
	for n in 1 2; do
		wait_for grep -q 'running:' "$WORKDIR/h$n/default.log" || ok=1
	done
	for n in 1 2; do
		pid=${pids[$n]}
		in_host $n "$FERRYCTL" -p "/proc/$pid/root/sys/fs/bpf/ferry" health \
			>"$WORKDIR/h$n/default.health" 2>&1 || ok=1
		grep -q "ferryd (pid $pid) running" "$WORKDIR/h$n/default.health" || ok=1
		cat "$WORKDIR/h$n/default.health"
	done
	for n in 1 2; do
		kill -TERM "${pids[$n]}"
		wait "${pids[$n]}" || ok=1
	done
	return $ok
}

require_root "test_fleet" || { echo "fleet: 0 passed, 1 failed"; exit 1; }
for tool in bird birdc python3 jq nft; do
	command -v $tool >/dev/null || fail_setup "$tool is missing (make deps: bird2)"
done
# Private copies: a rebuild by someone else during the run must not break a run.
mkdir -p "$WORKDIR/bin" && cp "$FERRYD" "$FERRYCTL" "$WORKDIR/bin/" || exit 1
FERRYD=$WORKDIR/bin/ferryd FERRYCTL=$WORKDIR/bin/ferryctl
fleet_topo_up || fail_setup "topology"

check "two ferryds, two namespaces, default pin path: their own pins each" default_pins_apart

fleet_start_router_bird || fail_setup "router BIRD"
for n in 1 2 3; do
	fleet_start_host_bird $n || fail_setup "host $n BIRD"
	fleet_start_ferryd $n || fail_setup "host $n ferryd"
	fleet_start_watcher $n
done
fleet_start_upstreams $((DURATION + 40))
check "the router learns the service from the three hosts (ECMP, 3 next hops)" \
	fleet_wait_nexthops 3 300
fleet_show "the fleet is up"
for n in 1 2 3; do
	check "host $n: ferryctl health exits 0" in_host $n "$FERRYCTL" -p "$(host_pin $n)" health
done

ip netns exec "$NS_CLI" python3 "$FLEET_DIR/flows.py" client --to "$FLEET_SERVICE:$FLEET_PORT" \
	--bind 198.18.20.2 --flows "$FLOWS" --sport 20000 --interval $INTERVAL \
	--duration $DURATION --out "$WORKDIR/flows.json" >"$WORKDIR/client.out" 2>&1 &
CLIENT=$!
track_pid $CLIENT
sleep 4
for n in 1 2 3; do rx_before[$n]=$(fleet_host_rx $n); done
fleet_show "$FLOWS client flows running"
for n in 1 2 3; do
	check "host $n carries some of the flows before the failure" [ "${rx_before[$n]:-0}" -gt 0 ]
done

T_KILL=$(now_ns)
kill -KILL "${FERRYD_PIDS[$DEAD]}"
wait "${FERRYD_PIDS[$DEAD]}" 2>/dev/null
# The XDP program stays attached with its maps: its fast path keeps forwarding
# the sessions it had offloaded (README "XDP fast path") until the route moves them.
OFFL_KILL=$(fleet_host_offloaded $DEAD)
check "SIGKILL of host $DEAD's ferryd: the router's route has 2 next hops" fleet_wait_nexthops 2 100
T_ROUTE=$(now_ns)
CONV_MS=$(((T_ROUTE - T_KILL) / 1000000))
check "host $DEAD's next hop is the one gone" eval "! fleet_nexthops | grep -qx 198.18.1$DEAD.2"
check "host $DEAD: ferryctl health exits 1, ferryd not running" \
	eval "! in_host $DEAD $FERRYCTL -p $(host_pin $DEAD) health >$WORKDIR/dead.health"
cat "$WORKDIR/dead.health"
check "host $DEAD: the watcher withdrew" grep -q withdraw "$WORKDIR/h$DEAD/watch.out"
OFFL_AFTER=$(fleet_host_offloaded $DEAD)
sleep 4
fleet_show "host $DEAD's ferryd was SIGKILLed ${CONV_MS} ms before the route lost it"

T_RESTART=$(now_ns)
fleet_start_ferryd $DEAD || fail_setup "host $DEAD ferryd restart"
check "restart: the router's route has 3 next hops again" fleet_wait_nexthops 3 150
T_BACK=$(now_ns)
BACK_MS=$(((T_BACK - T_RESTART) / 1000000))
fleet_show "host $DEAD's ferryd restarted, announced again ${BACK_MS} ms after its start"

sleep 3
kill -USR1 $CLIENT
wait $CLIENT
cat "$WORKDIR/client.out"
python3 "$FLEET_DIR/flows.py" analyze "$WORKDIR/flows.json" --dead-host $DEAD --kill "$T_KILL" \
	--restart "$T_RESTART" --back "$T_BACK" >"$WORKDIR/analysis.out"
cat "$WORKDIR/analysis.out"
val() { sed -n "s/^$1=//p" "$WORKDIR/analysis.out"; }

check "every flow was delivered before the failure" [ "$(val flows_unplaced)" = 0 ]
check "flows spread over the three hosts ($(val hosts_before))" [ "$(val hosts_used_before)" = 3 ]
check "host $DEAD's flows ($(val moved_flows)) all deliver again through the others" \
	[ "$(val moved_resumed)" = "$(val moved_flows)" -a "$(val moved_to_dead)" = 0 ]
check "every flow reached one upstream only, before and after moving" \
	[ "$(val flows_upstream_changed)" = 0 ]
check "the live hosts' flows ($(val live_flows)) lost nothing" [ "$(val live_lost_total)" = 0 ]
# Linux ECMP is hash-threshold: the same next hops give every flow the same one again.
check "after the restart every flow is on its first host again" \
	[ "$(val back_on_first_host)" = "$FLOWS" ]
check "host $DEAD forwards again after its restart" \
	eval "[ \"\$(fleet_host_rx $DEAD)\" -gt 0 ]"

# ferryd frozen (its main loop and workers stop, as a hang would): once its
# health is older than --max-age (3 s), the watcher withdraws; it comes back.
kill -STOP "${FERRYD_PIDS[1]}"
check "host 1's ferryd frozen (SIGSTOP): withdrawn (2 next hops)" fleet_wait_nexthops 2 100
kill -CONT "${FERRYD_PIDS[1]}"
check "host 1: the watcher said why" grep -q "has not written its health" "$WORKDIR/h1/watch.out"
check "host 1's ferryd thawed: announced again (3 next hops)" fleet_wait_nexthops 3 100
# An interface of ferryd's down (the upstream side: BGP still runs on up0).
ip -n "$(ns_host 3)" link set dn0 down
check "host 3's dn0 down: withdrawn (2 next hops)" fleet_wait_nexthops 2 100
check "host 3: the watcher said why" grep -q "interface dn0 is down" "$WORKDIR/h3/watch.out"
ip -n "$(ns_host 3)" link set dn0 up
check "host 3's dn0 up again: announced (3 next hops)" fleet_wait_nexthops 3 100

# BIRD restarted starts with ferry_service disabled (it never announces on its
# own): the watcher's --refresh (5 s) enables it again.
kill -TERM "${BIRD_PIDS[3]}"
wait "${BIRD_PIDS[3]}"
check "host 3's BIRD stopped: withdrawn (2 next hops)" fleet_wait_nexthops 2 100
fleet_start_host_bird 3 || fail_setup "host 3 BIRD restart"
check "host 3's BIRD restarted: announced again by the watcher's refresh" \
	fleet_wait_nexthops 3 250

# The watcher stopped (SIGTERM) withdraws its host.
kill -TERM "${WATCH_PIDS[3]}"
wait "${WATCH_PIDS[3]}"
check "a watcher stopped withdraws its host (2 next hops)" fleet_wait_nexthops 2 100

# The whole host gone silent (nftables drops all it receives and sends, as a
# power cut would: no FIN, no RST): the router's BFD session (200 ms x 5
# here) withdraws it, before the hold time (3 s).
in_host 1 nft -f - <<-'NFT'
	table inet fleet_dead {
		chain in { type filter hook input priority 0; policy drop; }
		chain out { type filter hook output priority 0; policy drop; }
	}
NFT
T_HOST=$(now_ns)
check "host 1 silent: the router withdraws it (1 next hop left)" fleet_wait_nexthops 1 100
HOST_MS=$((($(now_ns) - T_HOST) / 1000000))
check "the router saw host 1 go by BFD" grep -qi "h1:.*BFD session down" "$WORKDIR/bird-rtr.log"

if [ "$FAILED" != 0 ]; then
	for n in 1 2 3; do sed "s/^/  h$n watcher | /" "$WORKDIR/h$n/watch.out"; done
	grep -E "BGP|BFD|state changed" "$WORKDIR/bird-rtr.log" | sed 's/^/  router | /' | tail -40
fi
echo "fleet: flows per host before the failure: $(val hosts_before); while host $DEAD was out: $(val hosts_during)"
echo "fleet: convergence: route withdrawn ${CONV_MS} ms after the SIGKILL (watcher every ${FLEET_WATCH} s);" \
	"moved flows deliver again after $(val moved_resume_ms_median) ms (median), $(val moved_resume_ms_max) ms (max)"
echo "fleet: packets lost per moved flow (one every ${INTERVAL} s): min $(val moved_lost_min)," \
	"median $(val moved_lost_median), max $(val moved_lost_max); live hosts' flows: $(val live_lost_total) lost"
echo "fleet: the dead host's XDP fast path forwarded $((${OFFL_AFTER:-0} - ${OFFL_KILL:-0})) packets after its ferryd was killed"
echo "fleet: live flows moved by the withdraw (hash-threshold): $(val live_moved_at_withdraw);" \
	"flows moved at the restart: $(val moved_at_restart); restarted host announced ${BACK_MS} ms after its start"
echo "fleet: a host gone silent withdrawn by the router ${HOST_MS} ms after (BFD 200 ms x 5);" \
	"BGP sessions that went up at the router: $(grep -cE "h[123]: State changed to up" "$WORKDIR/bird-rtr.log") (4: three, then host 3's BIRD restarted; more if one flapped)"
summary fleet
