#!/bin/bash
# Soak: ferryd forwards at full rate for SOAK_SECONDS (default 60) while its
# resident set size is sampled every SOAK_SAMPLE_SECONDS (default 2).  After
# a warm-up (a quarter of the run, at least 3 s) the RSS may not grow by more
# than SOAK_RSS_GROWTH_KB (default 1024): the UMEM is populated up front and
# nothing on the packet path allocates, so steady traffic must not move it.
# At the stop the frame-accounting invariant must hold.
#
# SOAK_CLIENTS (default 3) unpaced udpprobe clients each run back-to-back
# rounds of up to SOAK_ROUND datagrams (default 50000), every round a new
# source port and so a new NAT session, until the time is up.  Each round
# must get at least 90% of what it sent echoed back intact and none corrupt.
. "$(dirname "$0")/lib.sh"
trap ns_cleanup EXIT

SOAK_SECONDS=${SOAK_SECONDS:-60}
SOAK_SAMPLE_SECONDS=${SOAK_SAMPLE_SECONDS:-2}
SOAK_RSS_GROWTH_KB=${SOAK_RSS_GROWTH_KB:-1024}
SOAK_CLIENTS=${SOAK_CLIENTS:-3}
SOAK_ROUND=${SOAK_ROUND:-50000}

write_config() {
	cat >"$WORKDIR/ferry.yaml" <<-YAML
	interfaces:
	  - name: px-c
	  - name: px-s
	nat:
	  ports: 40000-49999
	  # Short, so sessions of finished rounds expire during the run too.
	  udp_timeout: 5
	  # The session table is calloc()ed and its pages are touched as new
	  # sessions hash into them: a small table bounds that growth well
	  # below SOAK_RSS_GROWTH_KB, so what remains would be a leak.
	  max_sessions: 1024
	flows:
	  - name: soak
	    match:
	      protocol: udp
	      destination: 198.18.1.1/32
	      port: 5000
	    services:
	      - forward:
	          upstream: 198.18.2.2:6000
	YAML
}

rss_kb() {
	awk '/^VmRSS:/ {print $2}' "/proc/$FERRYD_PID/status" 2>/dev/null
}

# client_loop ID DEADLINE: rounds until the deadline.  A round's exit status
# is not used: the last one is cut short by the deadline; rounds_ok judges.
client_loop() {
	local id=$1 deadline=$2 rounds=0 left
	while :; do
		left=$((deadline - $(date +%s)))
		[ "$left" -gt 1 ] || break
		[ "$left" -gt 10 ] && left=10
		# Not through in_cli: ip netns exec itself must be the process we wait for.
		ip netns exec "$NS_CLI" "$UDPPROBE" client --to 198.18.1.1:5000 \
			--count "$SOAK_ROUND" --rate 0 --min-size 64 --max-size 1400 \
			--timeout "$left" >>"$WORKDIR/client-$id.out" 2>&1
		rounds=$((rounds + 1))
	done
	echo "client $id: $rounds rounds" >>"$WORKDIR/client-$id.out"
	[ "$rounds" -gt 0 ]
}

# Every round: at least 90% of what it sent echoed intact, nothing corrupt.
rounds_ok() {
	cat "$WORKDIR"/client-*.out | awk '
		/udpprobe client: sent/ {
			n++; sent = $4 + 0; echoed = $6 + 0; corrupt = $8 + 0
			if (corrupt || echoed < 0.9 * sent) bad++
		}
		END { exit !(n > 0 && !bad) }'
}

require_root "soak" || { echo "soak: 0 passed, 1 failed"; exit 1; }
topo_up || { echo "FAIL: topology"; echo "soak: 0 passed, 1 failed"; exit 1; }
write_config
start_ferryd "$WORKDIR/ferry.yaml" "$WORKDIR/ferryd.log" || {
	check "ferryd starts" false
	summary soak
	exit 1
}
check "ferryd starts" true

# One echoing server for every client, ended by SIGTERM at the end.
ip netns exec "$NS_SRV" "$UDPPROBE" server --listen 198.18.2.2:6000 --expect-src 198.18.2.1/32 \
	--expect-sport 40000-49999 --count 16000000 --any-count \
	--timeout $((SOAK_SECONDS + 60)) >"$WORKDIR/server.out" 2>&1 &
srv_pid=$!
track_pid $srv_pid
sleep 0.3

deadline=$(($(date +%s) + SOAK_SECONDS))
pids=()
for i in $(seq "$SOAK_CLIENTS"); do
	client_loop "$i" "$deadline" &
	pids+=($!)
	track_pid $!
done

warmup=$((SOAK_SECONDS / 4))
[ "$warmup" -ge 3 ] || warmup=3
start=$(date +%s)
base=
max=0
samples=0
while [ "$(date +%s)" -lt "$deadline" ]; do
	sleep "$SOAK_SAMPLE_SECONDS"
	rss=$(rss_kb)
	[ -n "$rss" ] || break
	elapsed=$(($(date +%s) - start))
	log "soak: t=${elapsed}s ferryd RSS ${rss} kB"
	if [ "$elapsed" -lt "$warmup" ]; then
		continue
	fi
	if [ -z "$base" ]; then
		base=$rss
	fi
	[ "$rss" -gt "$max" ] && max=$rss
	samples=$((samples + 1))
done

clients_ok=true
for p in "${pids[@]}"; do
	wait "$p" || clients_ok=false
done
kill -TERM $srv_pid 2>/dev/null
wait $srv_pid
cat "$WORKDIR"/client-*.out | grep -E 'rounds|corrupt|gave up' | tail -n 20
cat "$WORKDIR/server.out"

check "ferryd ran for the whole soak" kill -0 "$FERRYD_PID"
check "at least 2 RSS samples after warm-up" [ "$samples" -ge 2 ]
check "every client ran rounds" $clients_ok
check "every round got >= 90% of its echoes intact, none corrupt" rounds_ok
check "the server saw no invalid datagram" grep -q " 0 invalid" "$WORKDIR/server.out"
log "soak: RSS after warm-up ${base:-?} kB, highest ${max} kB, bound +${SOAK_RSS_GROWTH_KB} kB"
rss_bounded() { [ -n "$base" ] && [ $((max - base)) -le "$SOAK_RSS_GROWTH_KB" ]; }
check "RSS grew by at most ${SOAK_RSS_GROWTH_KB} kB after warm-up" rss_bounded

sleep 1.5
# ferryd's pins are in its own view of /sys (ip netns exec).
"$FERRYCTL" -p "/proc/$FERRYD_PID/root/sys/fs/bpf/ferry" stats
stop_ferryd
check "ferryd exits 0 on SIGTERM" [ $? = 0 ]
check "frame accounting holds" grep -q "frame accounting holds" "$WORKDIR/ferryd.log"
check "no XDP program left on px-c" eval "! xdp_attached $NS_PX px-c"
summary soak
