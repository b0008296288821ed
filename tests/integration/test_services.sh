#!/bin/bash
# Service chains end to end, through two ferryd instances in a row:
#
#   client ns          proxy A ns                        proxy B ns                        server ns
#   cli0 198.18.1.2 -- pa-c 198.18.1.1 | pa-s 198.18.3.1 -- pb-c 198.18.3.2 | pb-s 198.18.2.1 -- srv0 198.18.2.2
#        198.18.1.3 (a denied source)
#
# A (flow "edge", 198.18.1.1:5000) runs filter -> ratelimit -> compress ->
# forward to B, and B (flow "relay", 198.18.3.2:5000) runs decompress ->
# forward to the server (198.18.2.2:6000).  Each ferryd has its own
# namespace, its own bpffs and pin path.
#
#   (a) a UDP stream arrives byte for byte and every echo comes back, while
#       a denied source's packets are dropped and counted as filtered; then,
#       with a low rate, a counted share is dropped as rate_limited.  The
#       per-service counters in ferryctl --json must equal what was sent.
#   (b) the example out-of-tree service (build/services/example_tag.so),
#       installed in a root-owned 0755 service_dir, changes what the server
#       receives; ferryd refuses it when the directory is writable by others.
#   (c) two out-of-tree objects in one config (example_tag, mark_a) and a
#       third (mark_b) added by a reload each load as themselves.
#   (abi) the service ABI: `make install-headers` into a directory of the
#       test's own, the example built against that header alone (no -I into
#       the source tree) is what (b) loads; `nm -D --defined-only` of
#       ferryd lists exactly services/ferry_service.map's functions (plus
#       the C library's copy-relocated variables), each declared in the
#       installed header.
#
# forward holds the first packets towards a neighbour the kernel is still
# resolving and sends them later (counted as held, not sent): its share of
# the chain is sent + held.
#
# Counts, not timing, are checked: how many packets the rate limit lets
# through depends on the clock, so the checks use what the counters and the
# two ends report, and only require the limit to drop some.
. "$(dirname "$0")/../lib.sh"
trap ns_cleanup EXIT

NS_A=ferry-$RUN_ID-pxa
NS_B=ferry-$RUN_ID-pxb
N=${FERRY_TEST_DATAGRAMS:-2000}
DENIED=200
EXAMPLE_SO=$BUILD/services/example_tag.so
SERVICE_MAP=$TOP/services/ferry_service.map

topo4_up() {
	add_ns "$NS_CLI" && add_ns "$NS_A" && add_ns "$NS_B" && add_ns "$NS_SRV" || return 1
	ip link add cli0 netns "$NS_CLI" type veth peer name pa-c netns "$NS_A" || return 1
	ip link add pa-s netns "$NS_A" type veth peer name pb-c netns "$NS_B" || return 1
	ip link add pb-s netns "$NS_B" type veth peer name srv0 netns "$NS_SRV" || return 1
	ip -n "$NS_CLI" addr add 198.18.1.2/24 dev cli0
	ip -n "$NS_CLI" addr add 198.18.1.3/24 dev cli0
	ip -n "$NS_A" addr add 198.18.1.1/24 dev pa-c
	ip -n "$NS_A" addr add 198.18.3.1/24 dev pa-s
	ip -n "$NS_B" addr add 198.18.3.2/24 dev pb-c
	ip -n "$NS_B" addr add 198.18.2.1/24 dev pb-s
	ip -n "$NS_SRV" addr add 198.18.2.2/24 dev srv0
	local ns_dev ns dev
	for ns_dev in "$NS_CLI:cli0" "$NS_A:pa-c" "$NS_A:pa-s" "$NS_B:pb-c" "$NS_B:pb-s" \
		"$NS_SRV:srv0"; do
		ns=${ns_dev%%:*} dev=${ns_dev#*:}
		ip -n "$ns" link set "$dev" up || return 1
	done
	# The end hosts' frames must carry full checksums (see tests/lib.sh).
	ip netns exec "$NS_CLI" ethtool -K cli0 tx off >/dev/null
	ip netns exec "$NS_SRV" ethtool -K srv0 tx off >/dev/null
}

# A bpffs of each instance's own, so that the two pin paths cannot meet.
own_bpffs() { # NAME VAR: the pin path in $VAR
	mkdir -p "$WORKDIR/bpffs-$1" || return 1
	mount -t bpf bpf "$WORKDIR/bpffs-$1" || return 1
	on_cleanup "umount '$WORKDIR/bpffs-$1'"
	printf -v "$2" '%s' "$WORKDIR/bpffs-$1/ferry"
}

# start_in NS CONFIG LOG VAR: ferryd in NS; its PID in $VAR.
start_in() {
	# Not through a function: $! must be ferryd itself (ip netns exec execs it).
	ip netns exec "$1" "$FERRYD" -c "$2" -v >"$3" 2>&1 &
	local pid=$!
	track_pid "$pid"
	printf -v "$4" '%s' "$pid"
	if ! wait_for grep -q 'running:' "$3"; then
		log "ferryd in $1 did not start; its log:"
		sed 's/^/  | /' "$3" >&2
		return 1
	fi
}

stop_pid() { # PID: SIGTERM and wait; returns the exit status
	kill -TERM "$1" 2>/dev/null
	for _ in $(seq 100); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	wait "$1"
}

# B: decompress, then on to the server.  The same in every run.
write_config_b() {
	cat >"$WORKDIR/b.yaml" <<-YAML
	pin_path: $PIN_B
	interfaces:
	  - name: pb-c
	  - name: pb-s
	nat:
	  ports: 41000-41999
	flows:
	  - name: relay
	    match: {protocol: udp, destination: 198.18.3.2, port: 5000}
	    services:
	      - decompress
	      - forward: {upstream: 198.18.2.2:6000}
	YAML
}

write_config_a() { # RATELIMIT_ARGS
	cat >"$WORKDIR/a.yaml" <<-YAML
	pin_path: $PIN_A
	interfaces:
	  - name: pa-c
	  - name: pa-s
	nat:
	  ports: 40000-40999
	flows:
	  - name: edge
	    match: {protocol: udp, destination: 198.18.1.1, port: 5000}
	    services:
	      - filter:
	          deny: [{source: 198.18.1.3/32}]
	          default: allow
	      - ratelimit: $1
	      - compress
	      - forward: {upstream: 198.18.3.2:5000}
	YAML
}

# stats PIN OUT: ferryctl --json into OUT.
stats() { "$FERRYCTL" -p "$1" stats --json >"$2"; }

# jqv FILE FLOW EXPR: EXPR of flow FLOW, e.g. '.services[0].dropped'.
jqv() { jq -r ".flows[] | select(.name == \"$2\") | $3" "$1"; }

# settle PIN OUT FLOW EXPR WANT: reads the counters until EXPR equals WANT,
# for up to 10 s (ferryd publishes once a second).  The caller checks.
settle() {
	local i
	for i in $(seq 50); do
		stats "$1" "$2" && [ "$(jqv "$2" "$3" "$4")" = "$5" ] && return 0
		sleep 0.2
	done
	return 1
}

between() { [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]; } # V LO HI

eq() { # NAME GOT WANT
	if [ "$2" = "$3" ]; then
		check "$1 ($2)" true
	else
		check "$1: got '$2', want '$3'" false
	fi
}

start_pair() { # LABEL
	start_in "$NS_B" "$WORKDIR/b.yaml" "$WORKDIR/b-$1.log" PID_B || {
		check "$1: ferryd B starts" false
		return 1
	}
	start_in "$NS_A" "$WORKDIR/a.yaml" "$WORKDIR/a-$1.log" PID_A || {
		check "$1: ferryd A starts" false
		stop_pid "$PID_B"
		return 1
	}
	check "$1: both ferryd start" true
}

stop_pair() { # LABEL
	local st
	stop_pid "$PID_A"
	st=$?
	check "$1: ferryd A exits 0" [ $st = 0 ]
	stop_pid "$PID_B"
	st=$?
	check "$1: ferryd B exits 0" [ $st = 0 ]
	check "$1: A's frames all accounted for" grep -q "frame accounting holds" "$WORKDIR/a-$1.log"
	check "$1: B's frames all accounted for" grep -q "frame accounting holds" "$WORKDIR/b-$1.log"
}

# (a), first run: everything passes the rate limit; one source is denied.
run_filter() {
	local a=$WORKDIR/a.json b=$WORKDIR/b.json srv_pid den_pid st
	write_config_a "{packets_per_second: 1000000, burst_packets: 100000}"
	write_config_b
	check "filter: A's config validates" "$FERRYD" -c "$WORKDIR/a.yaml" --check
	start_pair filter || return 1

	ip netns exec "$NS_SRV" "$UDPPROBE" server --listen 198.18.2.2:6000 \
		--expect-src 198.18.2.1/32 --expect-sport 41000-41999 --count "$N" --timeout 30 \
		>"$WORKDIR/server-filter.out" 2>&1 &
	srv_pid=$!
	track_pid $srv_pid
	wait_for grep -q "listening on" "$WORKDIR/server-filter.out"
	# The denied source sends at the same time, into the same bursts.
	ip netns exec "$NS_CLI" "$UDPPROBE" client --to 198.18.1.1:5000 --bind 198.18.1.3 \
		--count "$DENIED" --rate 500 --no-wait --timeout 10 >"$WORKDIR/denied.out" 2>&1 &
	den_pid=$!
	track_pid $den_pid
	check "filter: the allowed client gets every datagram back intact" \
		ip netns exec "$NS_CLI" "$UDPPROBE" client --to 198.18.1.1:5000 --count "$N" \
		--min-size 16 --max-size 1400 --rate 2000 --timeout 10 --text
	wait $den_pid
	st=$?
	check "filter: the denied client sent $DENIED datagrams" [ $st = 0 ]
	wait $srv_pid
	st=$?
	cat "$WORKDIR/server-filter.out"
	check "filter: the server got all $N datagrams intact through both proxies" [ $st = 0 ]

	# Counters of the first and the last step, so no publication mid-way is taken.
	settle "$PIN_A" "$a" edge '"\(.services[0].packets_in) \(.datapath.reply_packets)"' \
		"$((2 * N + DENIED)) $N"
	settle "$PIN_B" "$b" relay '"\(.services[0].packets_in) \(.datapath.reply_packets)"' \
		"$((2 * N)) $N"
	"$FERRYCTL" -p "$PIN_A" stats
	"$FERRYCTL" -p "$PIN_B" stats
	# filter: N requests allowed, N replies skipped, DENIED dropped.
	eq "filter: filter saw requests, replies and denied packets" \
		"$(jqv "$a" edge '.services[0].packets_in')" $((2 * N + DENIED))
	eq "filter: filter passed requests and replies" "$(jqv "$a" edge '.services[0].passed')" $((2 * N))
	eq "filter: filter dropped the denied source" "$(jqv "$a" edge '.services[0].dropped')" "$DENIED"
	eq "filter: filter's own count of denied" "$(jqv "$a" edge '.services[0].counters.denied')" "$DENIED"
	eq "filter: filter's own count of allowed" "$(jqv "$a" edge '.services[0].counters.allowed')" "$N"
	eq "filter: filter skipped the replies" "$(jqv "$a" edge '.services[0].counters.skipped')" "$N"
	eq "filter: the flow's drops say filtered" "$(jqv "$a" edge '.datapath.drops.filtered')" "$DENIED"
	eq "filter: no other drop on A" "$(jqv "$a" edge '.datapath.drops | length')" 1
	eq "filter: ratelimit passed all it saw" "$(jqv "$a" edge '.services[1].passed')" $((2 * N))
	eq "filter: ratelimit dropped none" "$(jqv "$a" edge '.services[1].dropped')" 0
	eq "filter: compress handled N requests" \
		"$(jqv "$a" edge '(.services[2].counters.compressed + .services[2].counters.stored)')" "$N"
	eq "filter: forward on A sent requests and replies" "$(jqv "$a" edge '.services[3].sent + .services[3].held')" $((2 * N))
	eq "filter: A sent N upstream" "$(jqv "$a" edge '.datapath.tx_packets')" "$N"
	eq "filter: A sent N back" "$(jqv "$a" edge '.datapath.reply_packets')" "$N"
	eq "filter: the chain is named in order" \
		"$(jqv "$a" edge '[.services[].name] | join(",")')" "filter,ratelimit,compress,forward"
	eq "filter: decompress on B restored N" \
		"$(jqv "$b" relay '(.services[0].counters.inflated + .services[0].counters.stored)')" "$N"
	eq "filter: forward on B sent requests and replies" "$(jqv "$b" relay '.services[1].sent + .services[1].held')" $((2 * N))
	eq "filter: no drop on B" "$(jqv "$b" relay '.datapath.drops | length')" 0
	in_a() { ip netns exec "$NS_A" "$@"; }
	in_a bpftool map dump pinned "$PIN_A/ferry_svc_stats" >"$WORKDIR/svc_dump.txt"
	check "filter: bpftool shows ferry_svc_stats by field" grep -q '"packets_in":' "$WORKDIR/svc_dump.txt"
	in_a bpftool map dump pinned "$PIN_A/ferry_svc_info" >"$WORKDIR/svc_info.txt"
	check "filter: bpftool shows ferry_svc_info by field" grep -q '"counter_names":' "$WORKDIR/svc_info.txt"
	"$FERRYCTL" -p "$PIN_A" stats >"$WORKDIR/a.txt"
	check "filter: ferryctl prints each service's line" grep -qE \
		"^  service +0 filter packets_in $((2 * N + DENIED)) .* \| allowed $N denied $DENIED " "$WORKDIR/a.txt"
	stop_pair filter
}

# (a), second run: a low rate drops a counted share; the rest is delivered.
run_ratelimit() {
	local a=$WORKDIR/a.json b=$WORKDIR/b.json srv_pid st sent echoed valid dropped n2=1000
	write_config_a "{packets_per_second: 10, burst_packets: 20}"
	write_config_b
	start_pair ratelimit || return 1

	ip netns exec "$NS_SRV" "$UDPPROBE" server --listen 198.18.2.2:6000 \
		--expect-src 198.18.2.1/32 --expect-sport 41000-41999 --count $n2 --any-count \
		--timeout 60 >"$WORKDIR/server-rl.out" 2>&1 &
	srv_pid=$!
	track_pid $srv_pid
	wait_for grep -q "listening on" "$WORKDIR/server-rl.out"
	# A window as large as the count: dropped datagrams never stall the sender.
	ip netns exec "$NS_CLI" "$UDPPROBE" client --to 198.18.1.1:5000 --count $n2 \
		--rate 2000 --window $n2 --timeout 3 --min-fraction 0.001 >"$WORKDIR/client-rl.out"
	st=$?
	cat "$WORKDIR/client-rl.out"
	check "ratelimit: some echoes come back, none corrupt" [ $st = 0 ]
	kill -TERM $srv_pid 2>/dev/null
	wait $srv_pid
	cat "$WORKDIR/server-rl.out"
	sent=$(sed -nE 's/.*sent ([0-9]+), echoed.*/\1/p' "$WORKDIR/client-rl.out")
	echoed=$(sed -nE 's/.*echoed ([0-9]+) intact.*/\1/p' "$WORKDIR/client-rl.out")
	valid=$(sed -nE 's/.*received ([0-9]+) valid, 0 invalid.*/\1/p' "$WORKDIR/server-rl.out")
	eq "ratelimit: the client sent them all" "$sent" $n2

	settle "$PIN_A" "$a" edge '"\(.services[0].packets_in) \(.datapath.reply_packets)"' \
		"$((n2 + echoed)) $echoed"
	settle "$PIN_B" "$b" relay '"\(.services[0].packets_in) \(.datapath.reply_packets)"' \
		"$((2 * echoed)) $echoed"
	"$FERRYCTL" -p "$PIN_A" stats
	dropped=$(jqv "$a" edge '.services[1].dropped')
	check "ratelimit: the limit dropped a share ($dropped of $n2)" \
		between "${dropped:-0}" 1 $((n2 - 1))
	eq "ratelimit: the server got exactly what the limit let through" "$valid" $((n2 - dropped))
	eq "ratelimit: and every one of those came back" "$echoed" $((n2 - dropped))
	eq "ratelimit: filter allowed every request" "$(jqv "$a" edge '.services[0].counters.allowed')" $n2
	eq "ratelimit: ratelimit saw requests and replies" \
		"$(jqv "$a" edge '.services[1].packets_in')" $((n2 + echoed))
	eq "ratelimit: ratelimit passed the rest" "$(jqv "$a" edge '.services[1].passed')" $((n2 - dropped + echoed))
	eq "ratelimit: its own count of over-rate packets" \
		"$(jqv "$a" edge '.services[1].counters.over_packets')" "$dropped"
	eq "ratelimit: the flow's drops say rate_limited" \
		"$(jqv "$a" edge '.datapath.drops.rate_limited')" "$dropped"
	eq "ratelimit: one bucket (one worker)" "$(jqv "$a" edge '.services[1].counters.buckets_in_use')" 1
	eq "ratelimit: forward on A sent the rest and the replies" \
		"$(jqv "$a" edge '.services[3].sent + .services[3].held')" $((n2 - dropped + echoed))
	eq "ratelimit: B forwarded exactly those" "$(jqv "$b" relay '.services[1].sent + .services[1].held')" $((2 * echoed))
	stop_pair ratelimit
}

# (b) the example out-of-tree service.
write_config_tag() { # SERVICE_NAME
	cat >"$WORKDIR/a.yaml" <<-YAML
	pin_path: $PIN_A
	service_dir: $SVC_DIR
	interfaces:
	  - name: pa-c
	  - name: pa-s
	nat:
	  ports: 40000-40999
	flows:
	  - name: edge
	    match: {protocol: udp, destination: 198.18.1.1, port: 5000}
	    services:
	      - filter: {deny: [{source: 198.18.1.3/32}]}
	      - $1: {offset: 0, value: 0x42}
	      - forward: {upstream: 198.18.3.2:5000}
	YAML
}

run_example() {
	local a=$WORKDIR/a.json st k=20 got
	SVC_DIR=$WORKDIR/services
	install -d -m 0755 -o root -g root "$SVC_DIR"
	install -m 0644 -o root -g root "$EXAMPLE_SO" "$SVC_DIR/example_tag.so" || {
		check "example: $EXAMPLE_SO is built" false
		return 1
	}
	write_config_b
	# B without decompress: A does not compress in this run.
	sed -i '/- decompress/d' "$WORKDIR/b.yaml"

	# Refusals first, each at the service's FILE:LINE:COL.
	write_config_tag example_nope
	"$FERRYD" -c "$WORKDIR/a.yaml" --check >"$WORKDIR/check.out" 2>&1
	check "example: an unknown service is refused" grep -q \
		"a.yaml:13:9: unknown service 'example_nope': not built in, and there is no $SVC_DIR/example_nope.so" \
		"$WORKDIR/check.out"
	write_config_tag example_tag
	chmod 0775 "$SVC_DIR"
	"$FERRYD" -c "$WORKDIR/a.yaml" --check >"$WORKDIR/check.out" 2>&1
	st=$?
	check "example: a group-writable service_dir is refused" grep -q \
		"a.yaml:13:9: service 'example_tag': service_dir $SVC_DIR is writable by group or others (mode 0775)" \
		"$WORKDIR/check.out"
	check "example: ... and --check fails" [ $st = 1 ]
	chmod 0755 "$SVC_DIR"
	check "example: the config validates with the service installed" \
		"$FERRYD" -c "$WORKDIR/a.yaml" --check

	start_pair example || return 1
	check "example: ferryd logs where it loaded the service from" \
		grep -q "service 'example_tag': loaded from $SVC_DIR/example_tag.so" "$WORKDIR/a-example.log"
	# The server prints each payload; nothing echoes (the client does not wait).
	ip netns exec "$NS_SRV" timeout 20 python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("198.18.2.2", 6000))
s.settimeout(10)
for _ in range(int(sys.argv[1])):
    data, _ = s.recvfrom(2048)
    print(data.decode("ascii", "replace"), flush=True)
' $k >"$WORKDIR/tagged.out" 2>"$WORKDIR/tagged.err" &
	local srv_pid=$!
	track_pid $srv_pid
	sleep 0.5
	ip netns exec "$NS_CLI" python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(int(sys.argv[1])):
    s.sendto(b"ferry-%04d" % i, ("198.18.1.1", 5000))
    time.sleep(0.01)
' $k
	wait $srv_pid
	st=$?
	check "example: the server received all $k datagrams" [ $st = 0 ]
	got=$(grep -c '^Berry-[0-9]\{4\}$' "$WORKDIR/tagged.out")
	eq "example: the service's byte is in every payload, the rest unchanged" "$got" $k
	settle "$PIN_A" "$a" edge '"\(.services[1].counters.tagged) \(.datapath.tx_packets)"' "$k $k"
	"$FERRYCTL" -p "$PIN_A" stats
	eq "example: the service counted what it tagged" "$(jqv "$a" edge '.services[1].counters.tagged')" $k
	eq "example: its name comes from the object" "$(jqv "$a" edge '.services[1].name')" example_tag
	eq "example: forward sent them on" "$(jqv "$a" edge '.datapath.tx_packets')" $k
	stop_pair example
}

# (c) several out-of-tree objects: two in one config, a third added by a
# reload.  Each must load as itself, not as an object loaded before it
# (tests/unit/svc/mark_service.c, built with the unit tests).
run_several_objects() {
	local a=$WORKDIR/a.json so
	for so in mark_a mark_b; do
		install -m 0644 -o root -g root "$BUILD/tests/svc/$so.so" "$SVC_DIR/$so.so" || {
			check "several: $BUILD/tests/svc/$so.so is built (make build/tests/unit-tests)" false
			return 1
		}
	done
	write_config_tag example_tag
	sed -i 's/^\(\s*\)- forward: {upstream: 198.18.3.2:5000}/\1- mark_a\n&/' "$WORKDIR/a.yaml"
	start_in "$NS_A" "$WORKDIR/a.yaml" "$WORKDIR/a-several.log" PID_A || {
		check "several: ferryd starts with example_tag and mark_a" false
		return 1
	}
	check "several: ferryd starts with example_tag and mark_a" true
	check "several: mark_a loaded from its own file" \
		grep -q "service 'mark_a': loaded from $SVC_DIR/mark_a.so" "$WORKDIR/a-several.log"
	cat >>"$WORKDIR/a.yaml" <<-YAML
	  - name: edge2
	    match: {protocol: udp, destination: 198.18.1.1, port: 5001}
	    services:
	      - mark_b
	      - forward: {upstream: 198.18.3.2:5001}
	YAML
	kill -HUP "$PID_A"
	check "several: a reload adds a flow with mark_b" \
		wait_for grep -q 'reload: 1 flow added' "$WORKDIR/a-several.log"
	check "several: mark_b loaded from its own file" \
		grep -q "service 'mark_b': loaded from $SVC_DIR/mark_b.so" "$WORKDIR/a-several.log"
	settle "$PIN_A" "$a" edge2 '.services[0].name' mark_b
	eq "several: the services' names come from three different objects" \
		"$(jqv "$a" edge '.services[1].name + " " + .services[2].name') $(jqv "$a" edge2 '.services[0].name')" \
		"example_tag mark_a mark_b"
	eq "several: mark_b's counter is its own" "$(jq -r '[.flows[] | select(.name == "edge2") | .services[0].counters | keys[]] | join(",")' "$a")" mark_b
	stop_pid "$PID_A"
	check "several: ferryd exits 0" [ $? = 0 ]
}

# (abi) The installed header alone builds the example, and ferryd exports the ABI and nothing else.
run_abi() {
	local sdk=$WORKDIR/sdk hdr want got extra missing undeclared=""
	hdr=$sdk/usr/include/ferry/ferry_service.h
	check "abi: make install-headers installs the public header" \
		make -s -C "$TOP" install-headers DESTDIR="$sdk" PREFIX=/usr
	check "abi: the example builds against the installed header alone" \
		${CC:-cc} -std=gnu11 -O2 -Wall -Wextra -Werror -Wno-unused-parameter -fPIC -shared \
		-I"$sdk/usr/include" -o "$WORKDIR/example_tag.so" "$TOP/services/examples/svc_example_tag.c"
	# (b) loads this object, not the one make built.
	[ -f "$WORKDIR/example_tag.so" ] && EXAMPLE_SO=$WORKDIR/example_tag.so

	want=$(sed -n 's/^[[:space:]]*\([a-z_][a-z0-9_]*\);$/\1/p' "$SERVICE_MAP" | sort)
	# name@GLIBC_x: the C library's variables ferryd's code reads (stderr, optarg), copied in.
	# Always make's ferryd: a sanitized one (FERRYD under run-all.sh) also exports its runtime.
	got=$(nm -D --defined-only "$BUILD/ferryd" | awk '$3 !~ /@/ { print $3 }' | sort)
	extra=$(comm -13 <(echo "$want") <(echo "$got") | tr '\n' ' ')
	missing=$(comm -23 <(echo "$want") <(echo "$got") | tr '\n' ' ')
	eq "abi: ferryd exports nothing beyond the ABI" "$extra" ""
	eq "abi: ferryd exports every function of the ABI" "$missing" ""
	if [ "$FERRYD" != "$BUILD/ferryd" ]; then
		got=$(nm -D --defined-only "$FERRYD" | awk '{ print $3 }' | sort)
		missing=$(comm -23 <(echo "$want") <(echo "$got") | tr '\n' ' ')
		eq "abi: $FERRYD exports every function of the ABI" "$missing" ""
	fi
	for f in $want; do
		grep -q "\b$f(" "$hdr" 2>/dev/null || undeclared="$undeclared $f"
	done
	eq "abi: every exported function is declared in the installed header" "$undeclared" ""
}

require_root "test_services" || { echo "services: 0 passed, 1 failed"; exit 1; }
topo4_up || { echo "FAIL: topology"; echo "services: 0 passed, 1 failed"; exit 1; }
for f in "$FERRYD" "$FERRYCTL" "$UDPPROBE" "$EXAMPLE_SO"; do
	[ -x "$f" ] || [ -f "$f" ] || { echo "FAIL: $f is not built"; echo "services: 0 passed, 1 failed"; exit 1; }
done
own_bpffs a PIN_A && own_bpffs b PIN_B || {
	echo "FAIL: bpffs"
	echo "services: 0 passed, 1 failed"
	exit 1
}
run_abi
run_filter
run_ratelimit
run_example
run_several_objects
summary services
