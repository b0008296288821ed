# Reduces the raw samples of tests/bench/run.sh (jq -s: one array) to
# bench-results.json: one object per measured point with the median of its
# runs and the min and max beside it (FIELD, FIELD_min, FIELD_max), plus the
# n/a rows and the memory row as they were recorded.
#
#   throughput: system, frame_bytes, offered_target (pps, 0 = unpaced),
#               offered_pps, delivered_pps, gbps, proxy_cpu (busy share of
#               the proxy's CPU, 0..1), bad_* (sums over the runs);
#               the XOR systems (app, relayxor) count only payloads that
#               arrived XORed, and untransformed (sum over the runs) the
#               marked frames that arrived as sent
#   latency:    system, frame_bytes, background_pps, p50_us, p99_us,
#               p999_us, max_us (full round trip)
#   offload:    system, runs, packets, offloaded (sums over the runs of the
#               flow's ferry_flow_stats after each sweep; null if ferryctl
#               had no such counter), share (offloaded / packets)
#   latency_lost: system, background_pps, runs: ping-pong runs in which
#               sockperf got no reply at all (so no percentiles), and why
#   app_placement: where the app rows ran (ferryd_cpu, app_cpu,
#               app_priority, xor_key, latency_xor_key), as recorded
#
# $labels maps a system's key to its name in the table.

def median:
	sort | if length == 0 then null
	elif length % 2 == 1 then .[(length - 1) / 2]
	else (.[length / 2 - 1] + .[length / 2]) / 2 end;

def round_to($d): if . == null then null else (. * $d | round) / $d end;

# FIELD, FIELD_min and FIELD_max over the runs of one point.
def spread($f; $d):
	(map(.[$f]) | map(select(. != null))) as $v
	| {($f): ($v | median | round_to($d)), ($f + "_min"): ($v | min | round_to($d)),
	   ($f + "_max"): ($v | max | round_to($d))};

def with_label: . + {label: ($labels[.system] // .system)};

(map(select(.status == "n/a")) | unique_by([.kind, .system]) | map(with_label)) +
(map(select(.kind == "throughput" and .status == null))
	| group_by([.system, .frame_bytes, .offered_target])
	| map({kind: "throughput", system: .[0].system, frame_bytes: .[0].frame_bytes,
	       offered_target: .[0].offered_target, runs: length}
	      + spread("offered_pps"; 1) + spread("delivered_pps"; 1) + spread("gbps"; 1000)
	      + spread("proxy_cpu"; 1000)
	      + {bad_dst: (map(.bad_dst) | add), bad_ip_csum: (map(.bad_ip_csum) | add),
	         bad_udp_csum: (map(.bad_udp_csum) | add)}
	      + (if any(.[]; has("untransformed")) then {untransformed: (map(.untransformed // 0) | add)} else {} end)
	      | with_label)) +
(map(select(.kind == "latency" and .status == null))
	| group_by([.system, .background_pps])
	| map({kind: "latency", system: .[0].system, frame_bytes: .[0].frame_bytes,
	       background_pps: .[0].background_pps, runs: length}
	      + spread("p50_us"; 1000) + spread("p99_us"; 1000) + spread("p999_us"; 1000)
	      + spread("max_us"; 1000)
	      | with_label)) +
(map(select(.kind == "memory" and .status == null)) | map(with_label)) +
(map(select(.kind == "app_placement")) | unique | map(with_label)) +
# Ping-pong runs that got no reply at all, counted per point.
(map(select(.kind == "latency_lost")) | group_by([.system, .background_pps])
	| map({kind: "latency_lost", system: .[0].system, frame_bytes: .[0].frame_bytes,
	       background_pps: .[0].background_pps, runs: length, note: .[0].note} | with_label)) +
(map(select(.kind == "offload"))
	| group_by(.system)
	| map((all(.[]; .packets != null and .offloaded != null)) as $known
	      | {kind: "offload", system: .[0].system, runs: length}
	      + if $known then {packets: (map(.packets) | add), offloaded: (map(.offloaded) | add)}
	        else {packets: null, offloaded: null} end
	      | . + {share: (if .packets != null and .packets > 0
	                     then (.offloaded / .packets | round_to(10000)) else null end)}
	      | with_label))
