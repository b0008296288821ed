#!/bin/bash
# make bench: ferry against its baselines on one topology, in one run.
#
# Phases (each system is set up, measured and torn down in turn):
#   1. throughput: BENCH_RUNS rounds over the systems; in each, every frame
#      size (64, 1400 B) and offered rate (paced sweep, then unpaced) for
#      BENCH_DURATION s: the sink's delivered packets and bytes, the proxy
#      CPU's busy share; after each ferry system's sweep, the share of its
#      flow's packets that the XDP fast path forwarded (ferry_flow_stats)
#   2. latency: sockperf UDP ping-pong at 1000 msg/s through ferry (offload
#      auto and off), nftables (with a flowtable where the kernel has them),
#      the socket relay and testpmd, idle and with a background stream at
#      half the relay's peak
#   3. memory: ferryd's RSS at start, under load and after many sessions
# then the table (tests/bench/report.jq) and bench-results.json, and the
# targets judged from this run's figures (tests/bench/table.jq).
#
# The nftables flowtable system (nftft) needs CONFIG_NF_FLOW_TABLE: a probe at
# the start tries one in a throwaway namespace, and without it the row is
# left out (n/a, with the reason), never a failure.
#
# Every sample is appended to a raw JSON-lines file as it is taken, so an
# interrupted run still leaves its numbers; report.jq reduces them to the
# median, min and max per point.
#
# The app rows (issue 13, docs/benchmarks.md, "Application services: the app rows"): `app` is ferry forward
# with an app slot and services/examples/app_xor attached to it (XOR of every
# payload), `relayxor` the socket relay doing the same XOR in its own
# process; the sink counts only XORed payloads for them.  BENCH_ONLY=app runs
# just these and the forward rows they are judged against.
#
# Knobs: BENCH_QUICK=1 (one run, three rates, short windows: < 5 min),
# BENCH_RUNS, BENCH_DURATION, BENCH_RATES, BENCH_SIZES, BENCH_SYSTEMS,
# BENCH_PHASES, BENCH_SESSIONS, BENCH_OUT, BENCH_RAW, BENCH_GEN_RT, BENCH_ONLY,
# BENCH_XOR_KEY, BENCH_APP_CPU, BENCH_APP_PRIORITY (lib.sh).
set -u
. "$(dirname "$0")/lib.sh"
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
	RUNS=${BENCH_RUNS:-1} DUR=${BENCH_DURATION:-1}
	RATES=${BENCH_RATES:-"250000 1000000 0"}
	LAT_DUR=2 SESSIONS=${BENCH_SESSIONS:-20000}
else
	RUNS=${BENCH_RUNS:-3} DUR=${BENCH_DURATION:-2}
	RATES=${BENCH_RATES:-"100000 250000 500000 1000000 2000000 0"}
	LAT_DUR=5 SESSIONS=${BENCH_SESSIONS:-200000}
fi
SIZES=${BENCH_SIZES:-"64 1400"}
SYSTEMS="" PHASES="" LAT_SYSTEMS=""
case ${BENCH_ONLY:-} in
"") ;;
# The app rows and what their targets compare them with: forward (offload
# auto, and off: the path every app packet takes), and the XOR relay.
app)
	SYSTEMS=${BENCH_SYSTEMS:-"ferry ferryoff app relayxor"}
	PHASES=${BENCH_PHASES:-"throughput latency"}
	LAT_SYSTEMS="app relayxor"
	;;
*)
	say "bench: BENCH_ONLY='$BENCH_ONLY': the only selection is 'app' (else BENCH_SYSTEMS)"
	exit 2
	;;
esac
SYSTEMS=${SYSTEMS:-${BENCH_SYSTEMS:-"direct ferry ferryoff ferrynorm chain app nft nftft relay relayxor xdpnat testpmd"}}
PHASES=${PHASES:-${BENCH_PHASES:-"throughput latency memory"}}
LAT_SYSTEMS=${LAT_SYSTEMS:-"ferry ferryoff app nft nftft relay relayxor testpmd"}
# The systems run by ferryd: their flow's offloaded share is read after each sweep.
FERRY_SYSTEMS="ferry ferryoff ferrynorm chain app"
# The systems whose delivery counts only payloads XORed with XOR_KEY (lib.sh).
XOR_SYSTEMS="app relayxor"
OUT=${BENCH_OUT:-$TOP/bench-results.json}
RAW=${BENCH_RAW:-$TOP/build/bench/bench-raw.jsonl}

declare -A LABEL=(
	[direct]="no proxy (generator ceiling)"
	[ferry]="ferry forward"
	[ferryoff]="ferry forward (offload: off)"
	[ferrynorm]="ferry forward, default tuning"
	[chain]="ferry filter+ratelimit+forward"
	[nft]="kernel forwarding + nftables NAT"
	[nftft]="nftables NAT + flowtable"
	[relay]="udp_relay (recvmmsg/sendmmsg)"
	[app]="ferry forward + app (app_xor)"
	[relayxor]="udp_relay + xor (recvmmsg)"
	[xdpnat]="XDP NAT forwarder"
	[testpmd]="DPDK testpmd af_xdp (MAC only)"
)

record() { printf '%s\n' "$1" >>"$RAW"; }

# One throughput sample: SYSTEM SIZE RATE RUN.  For the XOR systems only
# payloads that arrive XORed count as delivered; the others are untransformed.
measure() {
	local sys=$1 size=$2 rate=$3 run=$4 before after g xor=false
	before=$(sink_read) || return 1
	g=$(gen "$size" "$rate" "$DUR") || { say "  generator failed: $g"; return 1; }
	sleep 0.1 # what is still in the rings reaches the sink
	after=$(sink_read) || return 1
	case " $XOR_SYSTEMS " in *" $sys "*) xor=true ;; esac
	record "$(jq -cn --arg sys "$sys" --argjson size "$size" --argjson rate "$rate" \
		--argjson run "$run" --argjson b "$before" --argjson a "$after" --argjson g "$g" \
		--argjson xor $xor '
		($a.packets - $b.packets) as $all | (($a.xored // 0) - ($b.xored // 0)) as $x
		| (if $xor then $x else $all end) as $good
		| {
		kind: "throughput", system: $sys, frame_bytes: $size, offered_target: $rate, run: $run,
		offered_pps: $g.offered_pps,
		delivered_pps: ($good / $g.elapsed_s),
		# An XOR system: its frames are all of one size, so bytes scale with the count.
		gbps: (($a.bytes - $b.bytes) * (if $all > 0 then $good / $all else 1 end) * 8 / $g.elapsed_s / 1e9),
		proxy_cpu: $g.cpu_busy,
		bad_dst: ($a.bad_dst - $b.bad_dst),
		bad_ip_csum: ($a.bad_ip_csum - $b.bad_ip_csum),
		bad_udp_csum: ($a.bad_udp_csum - $b.bad_udp_csum)}
		+ if $xor then {untransformed: ($all - $x)} else {} end')"
	tail -n 1 "$RAW" | jq -r '"  \(.frame_bytes) B  offered \(.offered_pps / 1e6 * 1000 | round / 1000) Mpps" +
		"  delivered \(.delivered_pps / 1e6 * 1000 | round / 1000) Mpps" +
		"  \(.gbps * 100 | round / 100) Gbit/s  proxy CPU \(.proxy_cpu * 100 | round)%" +
		(if .bad_dst + .bad_ip_csum + .bad_udp_csum > 0
		 then "  BAD dst \(.bad_dst) ip_csum \(.bad_ip_csum) udp_csum \(.bad_udp_csum)" else "" end) +
		(if (.untransformed // 0) > 0 then "  UNTRANSFORMED \(.untransformed)" else "" end)' >&2
}

not_available() { # SYSTEM KIND REASON
	say "  ${LABEL[$1]}: n/a ($3)"
	record "$(jq -cn --arg sys "$1" --arg kind "$2" --arg note "$3" \
		'{kind: $kind, system: $sys, status: "n/a", note: $note}')"
}

# After a ferry system's sweep (one session: warm-up and every sample): how
# many of its flow's packets the XDP fast path forwarded, from ferryd's
# counters, which count every packet whichever path it took.
offload_sample() { # SYSTEM RUN
	local c
	c=$(ferry_offload_counts) || { say "  offloaded share: ferryctl failed"; return; }
	record "$(jq -cn --arg sys "$1" --argjson run "$2" --argjson c "$c" \
		'{kind: "offload", system: $sys, run: $run, packets: $c.packets, offloaded: $c.offloaded}')"
	say "  $(jq -r 'if .packets == null or .offloaded == null then "offloaded share: ferryctl shows no such counter"
		else "forwarded in XDP: \(.offloaded) of \(.packets) packets (\(if .packets > 0
			then .offloaded * 1000 / .packets | round / 10 else 0 end)%)" end' <<<"$c")"
}

# Every system's flow is warmed up first: its session, conntrack entry or
# relay socket exists before the first measured frame.
warm_up() { gen 64 10000 0.2 --count 1000 >/dev/null; sleep 0.2; }

# Runs are interleaved: run 1 of every system, then run 2 of every system,
# and so on.  The speed of a shared VM drifts over minutes; with each system
# measured in one block, that drift would land between systems, while
# interleaved, every system's median spans the whole phase.
throughput_phase() {
	local sys size rate run
	local -A unavailable=()
	for ((run = 1; run <= RUNS; run++)); do
		for sys in $SYSTEMS; do
			[ -n "${unavailable[$sys]:-}" ] && continue
			say "== throughput: ${LABEL[$sys]} (run $run of $RUNS)"
			NA=""
			if ! "sys_${sys}_up"; then
				not_available "$sys" throughput "${NA:-setup failed}"
				unavailable[$sys]=1
				continue
			fi
			warm_up
			for size in $SIZES; do
				for rate in $RATES; do
					measure "$sys" "$size" "$rate" "$run" || say "  sample lost"
				done
			done
			case " $FERRY_SYSTEMS " in *" $sys "*) offload_sample "$sys" "$run" ;; esac
			"sys_${sys}_down"
		done
	done
}

# sockperf's summary: percentiles of the full round trip in microseconds.
sockperf_json() { # FILE
	awk '
		/---> percentile 50.000 =/ { p50 = $NF }
		/---> percentile 99.000 =/ { p99 = $NF }
		/---> percentile 99.900 =/ { p999 = $NF }
		/---> <MAX> observation =/ { max = $NF }
		/\[Valid Duration\]/ { for (i = 1; i <= NF; i++) if ($i ~ /^ReceivedMessages=/) { sub(/.*=/, "", $i); n = $i } }
		END {
			if (p50 == "") exit 1
			printf "{\"p50_us\":%s,\"p99_us\":%s,\"p999_us\":%s,\"max_us\":%s,\"samples\":%s}\n",
				p50, p99, p999, max, n == "" ? 0 : n
		}' "$1"
}

latency_phase() {
	local sys run bg relay_peak load
	if ! command -v sockperf >/dev/null; then
		for sys in $LAT_SYSTEMS; do not_available "$sys" latency "sockperf not installed"; done
		return
	fi
	# The background stream: half the relay's best 64-byte delivery (the XOR
	# relay's when the plain one did not run; 50 kpps if unknown).
	relay_peak=$(jq -s '[.[] | select(.kind == "throughput" and .frame_bytes == 64 and .status == null)]
		| ([.[] | select(.system == "relay") | .delivered_pps] | max)
		  // ([.[] | select(.system == "relayxor") | .delivered_pps] | max) // 0
		| if . > 2000 then . else 100000 end' "$RAW")
	bg=$(awk -v p="$relay_peak" 'BEGIN { printf "%d", p / 2 }')
	say "== latency: sockperf ping-pong, 1000 msg/s, 64-byte frames, ${LAT_DUR} s per run; background $bg pps"
	# The XOR systems run key 0 here: the same work per byte, but sockperf's
	# server must recognise its client's messages (it would ignore XORed ones).
	RUN_KEY=0
	# sockperf busy-waits between sends; above the generator's priority (nice -10)
	# it keeps its schedule, and the generator still gets the gaps while it waits
	# for a reply, which is all a background stream of this rate needs.
	ip netns exec "$NS_SRV" nice -n -15 taskset -c $GEN_CPU sockperf server -i $UPSTREAM \
		-p $UPSTREAM_PORT >"$WORK/sockperf-server.log" 2>&1 &
	track_pid $!
	sleep 0.5
	local -A unavailable=()
	# Interleaved like the throughput runs.
	for ((run = 1; run <= RUNS; run++)); do
		for sys in $LAT_SYSTEMS; do
			case " $SYSTEMS " in *" $sys "*) ;; *) continue ;; esac
			[ -n "${unavailable[$sys]:-}" ] && continue
			NA=""
			if ! "sys_${sys}_up"; then
				not_available "$sys" latency "${NA:-setup failed}"
				unavailable[$sys]=1
				continue
			fi
			warm_up
			for load in 0 "$bg"; do
				latency_sample "$sys" "$load" "$run"
			done
			"sys_${sys}_down"
		done
	done
}

# One ping-pong run through SYSTEM, with a background stream of LOAD pps (0: none).
latency_sample() { # SYSTEM LOAD RUN
	local sys=$1 load=$2 run=$3 lat
	GEN_PID=""
	if [ "$load" != 0 ]; then
		gen_bg "$WORK/bg.json" 64 "$load" $((LAT_DUR + 2)) --sport 20000
		sleep 0.5
	fi
	in_cli nice -n -15 taskset -c $GEN_CPU sockperf ping-pong -i "${LAT_DST%:*}" \
		-p "${LAT_DST#*:}" --mps=1000 -t $LAT_DUR -m 22 --full-rtt >"$WORK/sockperf.log" 2>&1
	if [ -n "$GEN_PID" ]; then
		wait "$GEN_PID"
		say "  (background stream: $(jq -r '"offered \(.offered_pps / 1000 | round) kpps"' "$WORK/bg.json"))"
	fi
	if lat=$(sockperf_json "$WORK/sockperf.log"); then
		record "$(jq -cn --arg sys "$sys" --argjson bg "$load" --argjson run "$run" \
			--argjson l "$lat" '{kind: "latency", system: $sys, frame_bytes: 64,
			background_pps: $bg, run: $run} + $l')"
		say "  ${LABEL[$sys]}, background $load pps: $(tail -n 1 "$RAW" | jq -r '"p50 \(.p50_us) p99 \(.p99_us) p99.9 \(.p999_us) max \(.max_us) us (\(.samples) samples)"')"
	else
		say "  ${LABEL[$sys]}, background $load pps: no result: $(tail -n 3 "$WORK/sockperf.log" | tr '\n' ' ')"
		# Kept, so a target can tell "every ping lost" from "not measured".
		record "$(jq -cn --arg sys "$sys" --argjson bg "$load" --argjson run "$run" \
			--arg note "$(grep -m1 -o 'No messages were received[^.]*' "$WORK/sockperf.log" ||
				tail -n 1 "$WORK/sockperf.log")" \
			'{kind: "latency_lost", system: $sys, frame_bytes: 64, background_pps: $bg, run: $run, note: $note}')"
	fi
}

status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; } # PID VmRSS|VmSize

# ferryd's memory: RSS at start, under load, after SESSIONS distinct sessions;
# and what a configured session slot reserves, from the virtual size of two
# starts that differ only in nat.max_sessions.
memory_phase() {
	local flows per_flow max_sessions small=1024 vm_small vm_big rss_start rss_load rss_sessions
	local created=0 pass
	case " $SYSTEMS " in *" ferry "*) ;; *) return ;; esac
	# A NAT port is unique per upstream, so every 50000 sessions get a flow of their own.
	per_flow=50000
	[ "$SESSIONS" -lt $per_flow ] && per_flow=$SESSIONS
	flows=$(((SESSIONS + per_flow - 1) / per_flow))
	[ $flows -gt 16 ] && { flows=16; SESSIONS=$((16 * per_flow)); }
	max_sessions=$((SESSIONS + SESSIONS / 4))
	say "== memory: ferryd with $flows flows, $SESSIONS sessions wanted (max_sessions $max_sessions)"
	# Below the proxy's local port range (60000-60999, lib.sh).
	ferry_config "$WORK/mem-small.yaml" $flows 1024-59999 $small
	ferry_config "$WORK/mem.yaml" $flows 1024-59999 $max_sessions
	if ! ferryd_start "$WORK/mem-small.yaml"; then
		not_available ferry memory "${NA:-setup failed}"
		return
	fi
	sleep 1
	vm_small=$(status_kb "$FERRYD_PID" VmSize)
	ferryd_stop
	if ! ferryd_start "$WORK/mem.yaml"; then
		not_available ferry memory "${NA:-setup failed}"
		return
	fi
	target_flow
	sleep 1
	vm_big=$(status_kb "$FERRYD_PID" VmSize)
	rss_start=$(status_kb "$FERRYD_PID" VmRSS)
	gen_bg "$WORK/load.json" 64 0 1.5
	sleep 1
	rss_load=$(status_kb "$FERRYD_PID" VmRSS)
	wait "$GEN_PID"
	# Paced so that session creation (a route lookup each) keeps up; up to 4 passes.
	for pass in 1 2 3 4; do
		gen 64 200000 $((SESSIONS / 50000 + 5)) --flows "$SESSIONS" --sports "$per_flow" \
			--sport 10000 >/dev/null
		sleep 1.5 # the workers publish their counters once a second
		created=$(ferry_stats | jq '[.flows[].datapath.sessions_created] | add')
		say "  pass $pass: $created sessions"
		[ "$created" -ge "$SESSIONS" ] && break
	done
	rss_sessions=$(status_kb "$FERRYD_PID" VmRSS)
	record "$(jq -cn --argjson s "$rss_start" --argjson l "$rss_load" --argjson n "$rss_sessions" \
		--argjson created "${created:-0}" --argjson max "$max_sessions" --argjson small $small \
		--argjson vs "$vm_small" --argjson vb "$vm_big" \
		--argjson frames $UMEM_FRAMES --argjson fsize $UMEM_FRAME_SIZE '{
		kind: "memory", system: "ferry", rss_start_kb: $s, rss_load_kb: $l,
		rss_sessions_kb: $n, sessions: $created, max_sessions: $max,
		umem_bytes: ($frames * $fsize),
		# RSS growth per live session: what sessions touch beyond the start
		bytes_per_session:
			(if $created > 0 then (($n - $l) * 1024 / $created | round) else null end),
		# what each configured slot reserves (table and indexes), touched or not
		reserved_bytes_per_slot: ((($vb - $vs) * 1024 / ($max - $small)) | round)}')"
	ferryd_stop
}

# The run uses copies: a 15-minute run must not break when someone rebuilds
# build/ meanwhile, and all of it then measures one version.
snapshot_binaries() {
	local bin=$WORK/bin t
	mkdir -p "$bin"
	for t in bench_gen bench_sink udp_relay xdp_nat_fwd; do cp "$BENCH/$t" "$bin/" || return 1; done
	cp "$FERRYD" "$FERRYCTL" "$bin/" || return 1
	BENCH=$bin FERRYD=$bin/ferryd FERRYCTL=$bin/ferryctl
	# app_xor runs as nobody: its copy must be reachable and executable by it.
	# (Not built: the app row says so, n/a.)
	case " $SYSTEMS " in *" app "*)
		if [ -x "$APP_XOR" ]; then
			install -m 0755 "$APP_XOR" "$bin/app_xor" && chmod 0711 "$WORK" "$bin" || return 1
			APP_XOR=$bin/app_xor
		fi ;;
	esac
}

# Without flowtable support the nftft row is left out: said once, recorded as
# n/a for the tables, and dropped from the systems.
flowtable_check() {
	local phase kind
	case " $SYSTEMS " in *" nftft "*) ;; *) return ;; esac
	NA=""
	nft_flowtable_probe && return
	say "bench: ${LABEL[nftft]}: $NA: row left out"
	for phase in $PHASES; do
		case $phase in throughput | latency) kind=$phase ;; *) continue ;; esac
		[ $kind = latency ] && case " $LAT_SYSTEMS " in *" nftft "*) ;; *) continue ;; esac
		record "$(jq -cn --arg kind "$kind" --arg note "$NA" \
			'{kind: $kind, system: "nftft", status: "n/a", note: $note}')"
	done
	SYSTEMS=$(printf '%s\n' $SYSTEMS | grep -vx nftft | tr '\n' ' ')
}

main() {
	local t0=$SECONDS labels t phase
	if [ "$(id -u)" != 0 ]; then say "bench: needs root (namespaces, XDP)"; exit 1; fi
	for t in bench_gen bench_sink udp_relay xdp_nat_fwd; do
		[ -x "$BENCH/$t" ] || { say "bench: $BENCH/$t missing: make bench-tools"; exit 1; }
	done
	mkdir -p "$(dirname "$RAW")"
	: >"$RAW"
	say "bench: run $ID, $(nproc) CPUs, kernel $(uname -r); runs $RUNS x ${DUR} s; rates: $RATES; sizes: $SIZES"
	say "bench: the machine is shared: $(cut -d' ' -f1-3 /proc/loadavg) load average at start"
	case " $SYSTEMS " in *" app "*)
		say "bench: app rows: ferryd on CPU $PROXY_CPU, app_xor on CPU $APP_CPU" \
			"$([ "$APP_PRIORITY" = 0 ] && echo "(normal scheduling)" || echo "(SCHED_FIFO $APP_PRIORITY)"), key $XOR_KEY"
		record "$(jq -cn --argjson f $PROXY_CPU --argjson a $APP_CPU --argjson p "$APP_PRIORITY" \
			--arg k "$XOR_KEY" '{kind: "app_placement", system: "app", ferryd_cpu: $f,
			app_cpu: $a, app_priority: $p, xor_key: $k, latency_xor_key: "0"}')" ;;
	esac
	snapshot_binaries || { say "bench: cannot copy the binaries"; exit 1; }
	# The script's own work (jq, the sink's counter reads) stays off the proxy's
	# CPU; every system under test is placed on it explicitly.
	taskset -p -c $GEN_CPU $$ >/dev/null
	topo_up || { say "bench: topology setup failed"; exit 1; }
	sink_up || { say "bench: the sink did not start"; exit 1; }
	flowtable_check
	for phase in $PHASES; do "${phase}_phase"; done
	labels=$(for k in "${!LABEL[@]}"; do jq -cn --arg k "$k" --arg v "${LABEL[$k]}" '{($k): $v}'; done | jq -cs add)
	jq -s --argjson labels "$labels" -f "$TOP/tests/bench/report.jq" "$RAW" >"$OUT" || exit 1
	jq -r -f "$TOP/tests/bench/table.jq" "$OUT"
	say "bench: $(jq length "$OUT") result rows in $OUT (raw samples: $RAW); $((SECONDS - t0)) s"
}

main "$@"
