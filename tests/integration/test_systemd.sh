#!/bin/bash
# ferryd under systemd, without systemd: the unit file passes
# `systemd-analyze verify`, and ferryd run against a notification socket this
# test listens on (tests/tools/notify_listen) with WATCHDOG_USEC set sends
# READY=1, STATUS= lines with live counters and WATCHDOG=1 pings, then
# STOPPING=1 on SIGTERM, in that order.  While it runs, its pins must be
# mode 0600 and owned by root, in a directory of mode 0700.  Once running,
# ferryd (started as root with every capability) keeps only what it still
# needs: the main thread CAP_NET_ADMIN, CAP_NET_RAW, CAP_PERFMON and CAP_BPF,
# each worker CAP_NET_ADMIN, no thread more; with that a reload adds a flow
# with a tap on an interface (an AF_PACKET socket) that forwards, and SIGTERM
# detaches cleanly.  Started with only the unit's CapabilityBoundingSet (no
# CAP_SYS_ADMIN; capsh drops the rest, a bpffs already mounted), ferryd
# attaches, forwards, reloads and detaches at stop in native and skb mode;
# SIGKILLed mid-stream and started again with the same set, it detaches its
# old program by the pin it left, forwards, and its clean stop leaves no
# program and no pin.  Its stderr there stands for the journal's stream
# (JOURNAL_STREAM): every line carries its sd-daemon priority (<3> for an
# error, as an invalid config shows, <6> for info) and no libbpf or libxdp
# line comes above debug.
# Every run under the unit's capabilities is also under its SystemCallFilter=
# (tests/tools/syscall_filter, EPERM for the rest, as the unit says) and its
# MemoryDenyWriteExecute= (PR_SET_MDWE).
# systemd-analyze security must rate the units 3.0 or lower.
# Finally the manual pages (docs/man/) must render without a groff warning.
. "$(dirname "$0")/../lib.sh"
trap ns_cleanup EXIT

NOTIFY_LISTEN=$BUILD/tests/notify_listen
SYSCALL_FILTER=$BUILD/tests/syscall_filter
MAN_DIR=$TOP/docs/man

fail_early() { log "FAIL: $1"; echo "systemd: 0 passed, 1 failed"; exit 1; }

# The unit as `make install` writes it, with the build's binaries in place of
# SBINDIR: verify wants every Exec path to exist, and the manual pages of
# Documentation= to be found (MANPATH: the staged install's).
verify_unit() { # UNIT (file name under configs/)
	local stage=$WORKDIR/stage unit
	make -s -C "$TOP" install-docs DESTDIR="$stage" PREFIX=/usr >"$WORKDIR/install.log" 2>&1 ||
		{ sed 's/^/  | /' "$WORKDIR/install.log" >&2; return 1; }
	unit=$WORKDIR/$1
	sed "s|/usr/local/sbin/|$BUILD/|g" "$TOP/configs/$1" >"$unit"
	MANPATH=$stage/usr/share/man SYSTEMD_LOG_LEVEL=warning \
		systemd-analyze verify --man=yes "$unit" >"$WORKDIR/verify.log" 2>&1
	local st=$?
	# Messages about units other than ours (the host's) are not our concern.
	if [ $st != 0 ] || grep -q "$1" "$WORKDIR/verify.log"; then
		sed 's/^/  | /' "$WORKDIR/verify.log" >&2
		return 1
	fi
}

write_config() {
	cat >"$WORKDIR/ferry.yaml" <<-YAML
	log_level: info
	interfaces:
	  - name: px-c
	  - name: px-s
	nat:
	  ports: 40000-40999
	flows:
	  - name: sd-udp
	    match:
	      protocol: udp
	      destination: 198.18.1.1/32
	      port: 5000
	    services:
	      - forward:
	          upstream: 198.18.2.2:6000
	YAML
}

# The flow a reload adds: forward, and tap copies out of a veth (CAP_NET_RAW).
write_config_reload() {
	write_config
	cat >>"$WORKDIR/ferry.yaml" <<-YAML
	  - name: sd-added
	    match: {protocol: udp, destination: 198.18.1.1/32, port: 5001}
	    services:
	      - forward: {upstream: 198.18.2.2:6001}
	      - tap: {interface: sdtap0}
	YAML
}

# What ferryd keeps once running (lib/caps.h): CAP_NET_ADMIN 12, CAP_NET_RAW
# 13, CAP_PERFMON 38, CAP_BPF 39; its workers only CAP_NET_ADMIN.
CAPS_MAIN=000000c000003000
CAPS_WORKER=0000000000001000

cap_of() { # STATUS-FILE FIELD
	awk -v f="$2:" '$1 == f {print $2}' "$1"
}

main_caps_reduced() {
	local st=/proc/$FERRYD_PID/status f
	for f in CapEff CapPrm; do
		[ "$(cap_of "$st" $f)" = $CAPS_MAIN ] || { log "  main $f: $(cap_of "$st" $f)"; return 1; }
	done
	for f in CapInh CapAmb; do
		[ $((0x$(cap_of "$st" $f) & ~0x$CAPS_MAIN)) = 0 ] ||
			{ log "  main $f: $(cap_of "$st" $f)"; return 1; }
	done
}

# Every thread: nothing beyond the main thread's set; the workers only theirs.
threads_caps_reduced() {
	local t name eff prm workers=0
	for t in /proc/$FERRYD_PID/task/*; do
		name=$(cat "$t/comm")
		eff=$(cap_of "$t/status" CapEff)
		prm=$(cap_of "$t/status" CapPrm)
		log "  thread $name: CapEff $eff CapPrm $prm"
		[ $((0x$eff & ~0x$CAPS_MAIN)) = 0 ] && [ $((0x$prm & ~0x$CAPS_MAIN)) = 0 ] || return 1
		if [ "$t" != "/proc/$FERRYD_PID/task/$FERRYD_PID" ] && [[ $name == ferry-q* ]]; then
			[ "$eff" = $CAPS_WORKER ] && [ "$prm" = $CAPS_WORKER ] || return 1
			workers=$((workers + 1))
		fi
	done
	[ $workers -ge 1 ]
}

# With those, a reload adds a flow with a tap on an interface, and it forwards.
run_reload_reduced() {
	ip -n "$NS_PX" link add sdtap0 type veth peer name sdtap1 &&
		ip -n "$NS_PX" link set sdtap0 up && ip -n "$NS_PX" link set sdtap1 up ||
		{ check "reload: tap interface" false; return; }
	write_config_reload
	kill -HUP "$FERRYD_PID"
	check "reload with reduced capabilities: the flow with a tap interface is added" \
		wait_for grep -q 'reload: 1 flow added' "$WORKDIR/ferryd.log"
	check "reload: no error" eval "! grep -qE 'reload: .*(cannot|failed|stays in force)' \
		'$WORKDIR/ferryd.log'"
	ip netns exec "$NS_SRV" "$UDPPROBE" server --listen 198.18.2.2:6001 --count 50 \
		--timeout 20 >"$WORKDIR/server-added.log" 2>&1 &
	track_pid $!
	wait_for grep -q "listening on" "$WORKDIR/server-added.log"
	check "reload: the added flow forwards and echoes 50 datagrams" \
		in_cli "$UDPPROBE" client --to 198.18.1.1:5001 --count 50 --rate 200 --timeout 10
	check "reload: still only the running set" main_caps_reduced
}

# The unit's bounding set, as capsh names: what ferryd may have under systemd.
unit_caps() {
	sed -n 's/^CapabilityBoundingSet=//p' "$TOP/configs/ferryd.service" | tr 'A-Z ' 'a-z\n'
}

# The system calls the unit's SystemCallFilter= allows, one per line: its
# groups expanded, as systemd-analyze syscall-filter lists them.
expand_syscalls() { # NAME|@GROUP...
	local g x
	for g in "$@"; do
		case $g in
		@*) systemd-analyze syscall-filter --no-pager "$g" | sed -n '2,$s/^ *//p' |
			grep -vE '^(#|$)' | while read -r x; do expand_syscalls "$x"; done ;;
		*) echo "$g" ;;
		esac
	done
}
unit_syscalls() {
	# shellcheck disable=SC2046 # the filter's words, one argument each
	expand_syscalls $(sed -n 's/^SystemCallFilter=//p' "$TOP/configs/ferryd.service") | sort -u
}

# --mdwe when the unit sets MemoryDenyWriteExecute=yes.
unit_mdwe() {
	grep -qx 'MemoryDenyWriteExecute=yes' "$TOP/configs/ferryd.service" && echo --mdwe
}

# capsh --drop= list: every capability the unit's bounding set lacks.
unit_drop_list() {
	capsh --decode=000001ffffffffff | sed 's/^[^=]*=//' | tr ',' '\n' |
		grep -vxF -f <(unit_caps) | paste -sd, -
}

run_unit_caps() { # MODE
	local mode=$1 pins=$WORKDIR/bpffs-unit-$1 st port
	# An upstream port of its own: the earlier servers may still hold theirs.
	port=$([ "$mode" = native ] && echo 6010 || echo 6011)
	mkdir -p "$pins" && mount -t bpf bpf "$pins" || { check "$mode: bpffs" false; return; }
	on_cleanup "umount '$pins'"
	write_config
	sed -i "1i pin_path: $pins/ferry" "$WORKDIR/ferry.yaml"
	sed -i -e "s/^  - name: px-\(.\)$/  - {name: px-\1, xdp_mode: $mode}/" \
		-e "s/198.18.2.2:6000/198.18.2.2:$port/" "$WORKDIR/ferry.yaml"
	# Its stderr stands for the journal's stream (JOURNAL_STREAM names it, as
	# systemd does): every line must carry its priority.
	: >"$WORKDIR/ferryd-unit-$mode.log"
	JOURNAL_STREAM=$(stat -c %d:%i "$WORKDIR/ferryd-unit-$mode.log") \
	ip netns exec "$NS_PX" capsh --drop="$(unit_drop_list)" -- \
		-c "exec '$SYSCALL_FILTER' $(unit_mdwe) '$WORKDIR/syscalls.txt' '$FERRYD' -c '$WORKDIR/ferry.yaml'" \
		>>"$WORKDIR/ferryd-unit-$mode.log" 2>&1 &
	FERRYD_PID=$!
	track_pid "$FERRYD_PID"
	if ! wait_for grep -q 'running:' "$WORKDIR/ferryd-unit-$mode.log"; then
		sed 's/^/  | /' "$WORKDIR/ferryd-unit-$mode.log" >&2
		check "unit's capabilities, $mode: ferryd starts without CAP_SYS_ADMIN" false
		return
	fi
	check "unit's capabilities, $mode: ferryd starts without CAP_SYS_ADMIN" \
		[ $((0x$(cap_of /proc/$FERRYD_PID/status CapBnd) & (1 << 21))) = 0 ]
	check "unit's capabilities, $mode: attached alone in $mode mode" grep -q \
		"iface px-c: XDP program attached in $mode mode" "$WORKDIR/ferryd-unit-$mode.log"
	check "unit's capabilities, $mode: then only the running set" main_caps_reduced
	ip netns exec "$NS_SRV" "$UDPPROBE" server --listen 198.18.2.2:$port --count 100 \
		--timeout 20 >"$WORKDIR/server-unit-$mode.log" 2>&1 &
	track_pid $!
	wait_for grep -q "listening on" "$WORKDIR/server-unit-$mode.log"
	check "unit's capabilities, $mode: 100 datagrams forwarded and echoed" \
		in_cli "$UDPPROBE" client --to 198.18.1.1:5000 --count 100 --rate 400 --timeout 10
	cat "$WORKDIR/server-unit-$mode.log" >&2
	kill -HUP "$FERRYD_PID"
	check "unit's capabilities, $mode: a reload works" \
		wait_for grep -q 'reload: 0 flows added, 0 changed, 0 removed, 1 unchanged' \
		"$WORKDIR/ferryd-unit-$mode.log"
	stop_ferryd
	st=$?
	check "unit's capabilities, $mode: exits 0 on SIGTERM" [ $st = 0 ]
	check "unit's capabilities, $mode: no XDP program left" \
		eval "! xdp_attached $NS_PX px-c && ! xdp_attached $NS_PX px-s"
	check "unit's capabilities, $mode: no pin left" no_pins_left "$pins/ferry"
	check "unit's capabilities, $mode: no warning" \
		eval "! grep -E '\[(warn|error)\]' '$WORKDIR/ferryd-unit-$mode.log'"
	check "unit's capabilities, $mode: journal priorities, <6> for info" \
		grep -q '^<6>ferryd\[info\]: running: ' "$WORKDIR/ferryd-unit-$mode.log"
	check "unit's capabilities, $mode: every line has a priority, none a timestamp" \
		eval "! grep -vE '^<[3467]>ferryd\[(error|warn|info|debug)\]: ' '$WORKDIR/ferryd-unit-$mode.log'"
	# libxdp's fallback from its dispatcher, libbpf's probes: debug only.
	check "unit's capabilities, $mode: no libbpf or libxdp line above debug" \
		eval "! grep -E '^<[0-6]>ferryd\\[[a-z]+\\]: (libbpf|libxdp): ' '$WORKDIR/ferryd-unit-$mode.log'"
	run_unit_crash "$mode" "$pins" "$port"
}

# ferryd under the unit's capabilities: START-LOG
start_unit_ferryd() {
	ip netns exec "$NS_PX" capsh --drop="$(unit_drop_list)" -- \
		-c "exec '$SYSCALL_FILTER' $(unit_mdwe) '$WORKDIR/syscalls.txt' '$FERRYD' -c '$WORKDIR/ferry.yaml'" \
		>"$1" 2>&1 &
	FERRYD_PID=$!
	track_pid "$FERRYD_PID"
	wait_for grep -q 'running:' "$1"
}

# No pin of ferry's left in DIR (the directory itself is removed at stop).
no_pins_left() { # DIR
	[ -z "$(ls -A "$1" 2>/dev/null)" ]
}

# Killed mid-stream (SIGKILL: a crash, the OOM killer, the watchdog's abort),
# ferry_steer stays attached; restarted with the same capabilities, without
# CAP_SYS_ADMIN, ferryd must take its own old program off and forward again
# (Restart=on-failure, no manual cleanup).
run_unit_crash() { # MODE PINS PORT
	local mode=$1 pins=$2 port=$3 log=$WORKDIR/ferryd-unit-$1-restart.log st pid cpid
	start_unit_ferryd "$WORKDIR/ferryd-unit-$mode-crash.log" ||
		{ check "crash, $mode: ferryd starts" false; return; }
	ip netns exec "$NS_SRV" "$UDPPROBE" server --listen 198.18.2.2:$port --count 400 \
		--timeout 5 >/dev/null 2>&1 &
	pid=$!
	track_pid $pid
	in_cli "$UDPPROBE" client --to 198.18.1.1:5000 --count 400 --rate 200 --timeout 3 \
		--no-wait >/dev/null 2>&1 &
	cpid=$!
	track_pid $cpid
	sleep 0.5
	kill -KILL "$FERRYD_PID"
	wait "$FERRYD_PID" 2>/dev/null
	# Its late datagrams must not count for the server after the restart.
	wait "$cpid" 2>/dev/null
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	check "crash, $mode: SIGKILL leaves ferry_steer attached" xdp_attached "$NS_PX" px-c
	if ! start_unit_ferryd "$log"; then
		sed 's/^/  | /' "$log" >&2
		check "crash, $mode: restarts without CAP_SYS_ADMIN" false
		return
	fi
	check "crash, $mode: restarts without CAP_SYS_ADMIN" \
		[ $((0x$(cap_of /proc/$FERRYD_PID/status CapBnd) & (1 << 21))) = 0 ]
	# Replaced in one step: its offloaded sessions never stop (test_offload.sh).
	check "crash, $mode: the old ferry_steer replaced in place" \
		grep -q "iface px-c: replaced the earlier run's ferry_steer in place" "$log"
	check "crash, $mode: attached again in $mode mode" grep -q \
		"iface px-c: XDP program attached in $mode mode" "$log"
	ip netns exec "$NS_SRV" "$UDPPROBE" server --listen 198.18.2.2:$port --count 100 \
		--timeout 20 >"$WORKDIR/server-unit-$mode-restart.log" 2>&1 &
	track_pid $!
	wait_for grep -q "listening on" "$WORKDIR/server-unit-$mode-restart.log"
	check "crash, $mode: after the restart 100 datagrams forwarded and echoed" \
		in_cli "$UDPPROBE" client --to 198.18.1.1:5000 --count 100 --rate 400 --timeout 10
	stop_ferryd
	st=$?
	check "crash, $mode: exits 0 on SIGTERM" [ $st = 0 ]
	check "crash, $mode: no XDP program left" \
		eval "! xdp_attached $NS_PX px-c && ! xdp_attached $NS_PX px-s"
	check "crash, $mode: no pin left" no_pins_left "$pins/ferry"
	check "crash, $mode: no error" eval "! grep -E '\[error\]' '$log'"
}

# line_of PATTERN: the line number of the first notification matching it.
line_of() { grep -n -m1 -E "$1" "$WORKDIR/notify.out" | cut -d: -f1; }

# in_order PATTERN...: each first appears after the one before it.
in_order() {
	local prev=0 n
	for p in "$@"; do
		n=$(line_of "$p")
		[ -n "$n" ] && [ "$n" -gt "$prev" ] || return 1
		prev=$n
	done
}

pins_private() { # DIR
	local dir=$1 f bad=0
	[ "$(stat -c '%a %U' "$dir")" = "700 root" ] || { log "  $dir: $(stat -c '%a %U' "$dir")"; bad=1; }
	for f in "$dir"/*; do
		[ -e "$f" ] || return 1
		[ "$(stat -c '%a %U' "$f")" = "600 root" ] ||
			{ log "  $f: $(stat -c '%a %U' "$f")"; bad=1; }
	done
	[ $bad = 0 ]
}

run_notify() {
	local sock=$WORKDIR/notify.sock st
	"$NOTIFY_LISTEN" "$sock" 60 >"$WORKDIR/notify.out" 2>&1 &
	track_pid $!
	wait_for test -S "$sock" || { check "notify socket is listening" false; return; }
	write_config
	# Pings every 0.5 s; STATUS follows each publish (1 s).
	NOTIFY_SOCKET=$sock WATCHDOG_USEC=1000000 \
		ip netns exec "$NS_PX" "$FERRYD" -c "$WORKDIR/ferry.yaml" >"$WORKDIR/ferryd.log" 2>&1 &
	FERRYD_PID=$!
	track_pid "$FERRYD_PID"
	if ! wait_for grep -q 'running:' "$WORKDIR/ferryd.log"; then
		sed 's/^/  | /' "$WORKDIR/ferryd.log" >&2
		check "ferryd starts" false
		return
	fi
	check "READY=1 sent" wait_for grep -qx 'READY=1' "$WORKDIR/notify.out"
	check "STATUS= with live counters sent" \
		wait_for grep -qE '^STATUS=1 flow, [0-9]+ sessions?, [0-9]+ pkt/s forwarded, [0-9]+ drops$' \
		"$WORKDIR/notify.out"
	check "WATCHDOG=1 pings sent" wait_for grep -qx 'WATCHDOG=1' "$WORKDIR/notify.out"
	sleep 1.2
	check "pings keep coming (>= 3)" [ "$(grep -cx 'WATCHDOG=1' "$WORKDIR/notify.out")" -ge 3 ]
	check "pin directory 0700, pins 0600, owned by root" \
		pins_private "/proc/$FERRYD_PID/root/sys/fs/bpf/ferry"
	run_traffic
	run_ferryctl "/proc/$FERRYD_PID/root/sys/fs/bpf/ferry"
	check "main thread keeps CAP_NET_ADMIN, CAP_NET_RAW, CAP_PERFMON, CAP_BPF only" \
		main_caps_reduced
	check "no thread has more; the workers keep CAP_NET_ADMIN only" threads_caps_reduced
	run_reload_reduced

	stop_ferryd
	st=$?
	check "ferryd exits 0 on SIGTERM" [ $st = 0 ]
	# With every capability libxdp tries its dispatcher and falls back
	# (libbpf: "permission error ... try raising 'ulimit -l'"): debug only.
	check "libbpf's and libxdp's messages are not shown at info" \
		eval "! grep -E 'ferryd\\[(info|warn|error)\\]: (libbpf|libxdp): ' '$WORKDIR/ferryd.log'"
	check "no XDP program left on px-c or px-s after the stop" \
		eval "! xdp_attached $NS_PX px-c && ! xdp_attached $NS_PX px-s"
	check "STOPPING=1 sent" wait_for grep -qx 'STOPPING=1' "$WORKDIR/notify.out"
	# The first ping (half a watchdog interval) may come before the first publish.
	check "READY=1 first, then STATUS=, then STOPPING=1" \
		in_order '^READY=1$' '^STATUS=' '^STOPPING=1$'
	check "READY=1 first, then WATCHDOG=1, then STOPPING=1" \
		in_order '^READY=1$' '^WATCHDOG=1$' '^STOPPING=1$'
	check "READY=1 is the first message" [ "$(head -n1 "$WORKDIR/notify.out")" = "READY=1" ]
	check "nothing after STOPPING=1" [ "$(tail -n1 "$WORKDIR/notify.out")" = "STOPPING=1" ]
	sed 's/^/  notify: /' "$WORKDIR/notify.out" | sort | uniq -c | sort -rn | head -5 >&2
}

# 200 datagrams through the flow, echoed: STATUS shows a session and a rate.
run_traffic() {
	ip netns exec "$NS_SRV" "$UDPPROBE" server --listen 198.18.2.2:6000 --count 200 \
		--timeout 20 >"$WORKDIR/server.log" 2>&1 &
	track_pid $!
	wait_for grep -q "listening on" "$WORKDIR/server.log"
	check "200 datagrams forwarded and echoed" \
		in_cli "$UDPPROBE" client --to 198.18.1.1:5000 --count 200 --rate 400 --timeout 10
	check "STATUS= counts the session" \
		wait_for grep -qE '^STATUS=1 flow, 1 session, ' "$WORKDIR/notify.out"
	check "STATUS= shows a forwarding rate" \
		grep -qE '^STATUS=1 flow, 1 session, [1-9][0-9]* pkt/s forwarded' "$WORKDIR/notify.out"
}

# The socket counters are published once a second: wait for the traffic's.
# What px-c received for the flow: on queue 0's socket, or in XDP once offloaded.
queue_rx_ge() { # PIN_DIR N
	"$FERRYCTL" -p "$1" stats --json >"$WORKDIR/stats.json" &&
		[ "$(jq '[(.queues[] | select(.interface == "px-c" and .queue == 0) | .port.rx_packets),
			 (.flows[] | select(.name == "sd-udp") | .steering.offloaded -
				   .steering.offloaded_reply)] | add' "$WORKDIR/stats.json")" -ge "$2" ]
}

run_ferryctl() { # PIN_DIR
	local pins=$1 st
	wait_for queue_rx_ge "$pins" 200
	check "stats --json: a queue entry per interface" \
		[ "$(jq '.queues | length' "$WORKDIR/stats.json")" = 2 ]
	check "stats --json: px-c received >= 200 on queue 0's socket or in XDP" queue_rx_ge "$pins" 200
	check "stats --json: XDP_STATISTICS fields present" \
		jq -e '.queues[0].xdp_statistics | has("rx_dropped") and has("rx_ring_full") and
			has("rx_fill_ring_empty_descs") and has("tx_ring_empty_descs") and
			has("rx_invalid_descs") and has("tx_invalid_descs")' "$WORKDIR/stats.json" >/dev/null
	"$FERRYCTL" -p "$pins" stats | sed -n '/^interface px-c queue/,$p' | head -3 >&2
	"$FERRYCTL" -p "$pins" sessions --count --json >"$WORKDIR/sessions.json"
	check "sessions --json: one session for sd-udp" \
		[ "$(jq '.flows[] | select(.name == "sd-udp") | .sessions' "$WORKDIR/sessions.json")" = 1 ]
	check "sessions --json: on worker 0" \
		[ "$(jq -c '.flows[0].per_worker' "$WORKDIR/sessions.json")" = "[1]" ]
	"$FERRYCTL" -p "$pins" flows >"$WORKDIR/flows.txt"
	sed 's/^/  flows: /' "$WORKDIR/flows.txt" >&2
	check "flows: the client match" \
		grep -qE '^  match +udp to 198.18.1.1/32 port 5000 from any port any$' "$WORKDIR/flows.txt"
	check "flows: forward's reply rule" grep -qE '^  reply +udp ' "$WORKDIR/flows.txt"
	check "flows: on_failure and the chain" \
		grep -qE '^  services +forward$' "$WORKDIR/flows.txt"
	"$FERRYCTL" -p "$pins" flows --json >"$WORKDIR/flows.json"
	check "flows --json: the chain and on_failure" \
		jq -e '.flows[0].services == ["forward"] and .flows[0].on_failure == "pass"' \
		"$WORKDIR/flows.json" >/dev/null
	"$FERRYCTL" -p "$pins" stats --format prometheus >"$WORKDIR/ferry.prom"
	check "prometheus: HELP/TYPE and ferry_flow_packets_total{flow=\"sd-udp\"}" eval \
		"grep -qx '# TYPE ferry_flow_packets_total counter' '$WORKDIR/ferry.prom' &&
		 grep -qE '^ferry_flow_packets_total\{flow=\"sd-udp\"\} [1-9][0-9]*$' '$WORKDIR/ferry.prom'"
	check "prometheus: every sample's family has a TYPE line" eval \
		"! awk '/^# TYPE/ {t[\$3] = 1; next} /^#/ {next} {n = \$1; sub(/\\{.*/, \"\", n); if (!(n in t)) {print n; bad = 1}} END {exit bad}' '$WORKDIR/ferry.prom' | grep -q ."
	# Traffic while watching, so that the rates are not all zero.
	ip netns exec "$NS_SRV" "$UDPPROBE" server --listen 198.18.2.2:6000 --count 400 \
		--timeout 10 --no-echo --any-count >/dev/null 2>&1 &
	track_pid $!
	ip netns exec "$NS_CLI" "$UDPPROBE" client --to 198.18.1.1:5000 --count 400 --rate 100 \
		--no-wait >/dev/null 2>&1 &
	track_pid $!
	timeout 3.5 "$FERRYCTL" -p "$pins" stats --watch 1 >"$WORKDIR/watch.txt"
	check "stats --watch 1: refreshes until interrupted" \
		[ "$(grep -c 'flow sd-udp (id 0)' "$WORKDIR/watch.txt")" -ge 3 ]
	check "stats --watch 1: shows rates" grep -qE ' rx_packets [0-9]+ \([0-9]+/s\)' "$WORKDIR/watch.txt"
	"$FERRYCTL" -p "$WORKDIR/nothing" stats >/dev/null 2>&1
	st=$?
	check "exit 1 when ferryd is not running" [ $st = 1 ]
	"$FERRYCTL" -p "$pins" stats --bogus >/dev/null 2>&1
	st=$?
	check "exit 2 on a usage error" [ $st = 2 ]
	if command -v setpriv >/dev/null; then
		setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
			"$FERRYCTL" -p "$pins" stats >/dev/null 2>&1
		st=$?
		check "exit 3 when not allowed to open the pins" [ $st = 3 ]
	fi
}

# An error reaches the journal's stream at priority err (<3>), a
# warning at warning (<4>): what `journalctl -p err` selects by.
run_journal_priorities() {
	local log=$WORKDIR/journal-stream.log
	write_config
	sed -i 's/port: 5000$/port: 70000/' "$WORKDIR/ferry.yaml"
	: >"$log"
	JOURNAL_STREAM=$(stat -c %d:%i "$log") "$FERRYD" -c "$WORKDIR/ferry.yaml" 2>>"$log"
	check "journal stream: an invalid config exits 1" [ $? = 1 ]
	check "journal stream: its error at priority err (<3>), with FILE:LINE:COL" \
		grep -qE "^<3>ferryd\[error\]: $WORKDIR/ferry.yaml:[0-9]+:[0-9]+: .*70000" "$log"
	check "journal stream: no timestamp (journald adds its own)" \
		eval "! grep -vE '^<[3467]>ferryd\[' '$log'"
	# Not the journal's stream (another file): no prefix.
	"$FERRYD" -c "$WORKDIR/ferry.yaml" 2>"$log.2"
	check "not the journal: no priority prefix" eval "! grep -q '^<' '$log.2'"
	sed -s 's/^/  | /' "$log" >&2
}

# systemd-analyze security's exposure of a unit, printed, at most 3.0.
security_score() { # UNIT (file name under configs/)
	local score
	score=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze security --offline=yes --no-pager \
		"$TOP/configs/$1" 2>&1 | sed -n 's/^→ Overall exposure level for [^:]*: \([0-9.]*\) .*/\1/p')
	log "systemd-analyze security $1: $score"
	[ -n "$score" ] && awk -v s="$score" 'BEGIN { exit !(s <= 3.0) }'
}

render_man() { # PAGE
	local err
	err=$(LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z "$1" 2>&1) || return 1
	[ -z "$err" ] || { log "$err"; return 1; }
	# man-db's own pipeline too (preconv, tbl), as `man -l` shows it.
	err=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$1" 2>&1 >/dev/null) || return 1
	[ -z "$err" ] || { log "$err"; return 1; }
}

require_root "test_systemd" || fail_early "needs root"
[ -x "$NOTIFY_LISTEN" ] || fail_early "$NOTIFY_LISTEN is not built (make build/tests/notify_listen)"
[ -x "$SYSCALL_FILTER" ] || fail_early "$SYSCALL_FILTER is not built (make build/tests/syscall_filter)"
command -v systemd-analyze >/dev/null || fail_early "systemd-analyze missing (make deps)"

check "systemd-analyze verify configs/ferryd.service" verify_unit ferryd.service
check "systemd-analyze verify configs/ferry-metrics.service" verify_unit ferry-metrics.service
check "systemd-analyze security rates configs/ferryd.service 3.0 or lower" \
	security_score ferryd.service
check "systemd-analyze security rates configs/ferry-metrics.service 3.0 or lower" \
	security_score ferry-metrics.service
for page in ferryd.8 ferryctl.8 ferry.yaml.5; do
	check "man page $page renders without warnings" render_man "$MAN_DIR/$page"
done
run_journal_priorities
topo_up || fail_early "topology"
# The peers take XDP redirects (GRO on gives a veth its NAPI): the fast path
# runs under the unit's capabilities too, in both modes, without a warning.
in_cli ethtool -K cli0 gro on >/dev/null && in_srv ethtool -K srv0 gro on >/dev/null ||
	fail_early "GRO on the peers"
run_notify
unit_syscalls >"$WORKDIR/syscalls.txt"
check "the unit's SystemCallFilter= expands to a list of calls, bpf among them" \
	eval "[ \$(wc -l <'$WORKDIR/syscalls.txt') -gt 100 ] && grep -qx bpf '$WORKDIR/syscalls.txt'"
# The filter bites: without bpf() ferryd cannot load its program.
write_config
grep -vx bpf "$WORKDIR/syscalls.txt" >"$WORKDIR/syscalls-nobpf.txt"
in_px "$SYSCALL_FILTER" "$WORKDIR/syscalls-nobpf.txt" "$FERRYD" -c "$WORKDIR/ferry.yaml" \
	>"$WORKDIR/ferryd-nobpf.log" 2>&1
check "under a filter without bpf(), ferryd fails to start (exit 1)" [ $? = 1 ]
for mode in ${FERRY_TEST_MODES:-native skb}; do
	run_unit_caps "$mode"
done
summary systemd
