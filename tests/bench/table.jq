# Prints bench-results.json (see report.jq) as the tables of `make bench`:
# delivered Mpps per offered rate, the proxy CPU's busy share, a summary with
# the ratio of ferry to each system, latency, ferryd's memory, and the
# performance targets judged from this run's figures: the earlier ones, then
# those of the XDP fast path (issue 12) with PASS or MISS.  jq -r.

def order: ["direct", "ferry", "ferryoff", "ferrynorm", "chain", "app", "nft", "nftft", "relay", "relayxor", "xdpnat", "testpmd"];
def pad($n): tostring | if length >= $n then . else . + (" " * ($n - length)) end;
def lpad($n): tostring | if length >= $n then . else (" " * ($n - length)) + . end;
def fmt($d): if . == null then "-" else ((. * $d | round) / $d | tostring) end;
def mpps: if . == null then null else . / 1e6 end;
def ratio($a; $b): if $a == null or $b == null or $b == 0 then "-"
	else ($a / $b) as $r | (if $r < 0.1 then ($r * 1000 | round) / 1000 else ($r * 100 | round) / 100 end)
		| tostring + "x" end;
def rate_name: if . == 0 then "unpaced" else (. / 1e6 | tostring) + "M" end;

. as $all
| ($all | map(select(.kind == "throughput" and .status == null))) as $tp
| ($tp | map(.offered_target) | unique | map(select(. > 0)) + (if any(.[]; . == 0) then [0] else [] end)) as $rates
| ($tp | map(.frame_bytes) | unique) as $sizes
| ($all | map(select(.kind == "throughput")) | map(.system) | unique) as $tsys
| [order[] | select(. as $s | $tsys | index($s))] as $systems
| ($all | map({key: .system, value: .label}) | from_entries) as $names
| def point($s; $size; $rate): first($tp[] | select(.system == $s and .frame_bytes == $size and .offered_target == $rate)) // null;
  def na($s; $kind): first($all[] | select(.system == $s and .kind == $kind and .status == "n/a")) // null;
  def peak($s; $size): [$tp[] | select(.system == $s and .frame_bytes == $size) | .delivered_pps] | max;
  def peak_row($s; $size): [$tp[] | select(.system == $s and .frame_bytes == $size)] | max_by(.delivered_pps);
  def runs: ($tp | map(.runs) | max) // 0;
  def xdp_share($s): first($all[] | select(.kind == "offload" and .system == $s)) // null;

(if ($tp | length) == 0 then empty else (
"",
"Throughput: delivered Mpps at the sink, median of \(runs) run(s) (frames without FCS)",
("system" | pad(34)) + ("size" | pad(6)) + ([$rates[] | rate_name | lpad(9)] | join("")),
($systems[] as $s
	| if na($s; "throughput") then ($names[$s] | pad(34)) + "n/a (" + na($s; "throughput").note + ")"
	  else ($sizes[] as $size
		| ($names[$s] | pad(34)) + ("\($size) B" | pad(6))
		  + ([$rates[] as $r | point($s; $size; $r).delivered_pps | mpps | fmt(1000) | lpad(9)] | join("")))
	  end),
"",
"Offered Mpps (measured at the generator) and proxy CPU busy share at each point",
($systems[] as $s | select(na($s; "throughput") == null)
	| $sizes[] as $size
	| ($names[$s] | pad(34)) + ("\($size) B" | pad(6))
	  + ([$rates[] as $r | point($s; $size; $r)
		| ((.offered_pps | mpps | fmt(100)) + "/" + (if .proxy_cpu == null then "-" else (.proxy_cpu * 100 | round | tostring) + "%" end)) | lpad(12)] | join(""))),
"",
"Summary: peak = best delivered rate over the sweep; ratios are ferry / system (higher favours ferry);",
"in XDP = share of the flow's packets the XDP fast path forwarded (ferry_flow_stats, over all runs)",
("system" | pad(34)) + ("64B peak" | lpad(10)) + ("64B unpaced" | lpad(12)) + ("1400B peak" | lpad(11))
	+ ("Gbit/s" | lpad(8)) + ("CPU@peak" | lpad(9)) + ("64B peak" | lpad(10)) + ("64B unp." | lpad(10)) + ("1400B peak" | lpad(11))
	+ ("in XDP" | lpad(8)),
($systems[] as $s
	| if na($s; "throughput") then ($names[$s] | pad(34)) + "n/a (" + na($s; "throughput").note + ")"
	  else ($names[$s] | pad(34))
		+ (peak($s; 64) | mpps | fmt(1000) | lpad(10))
		+ (point($s; 64; 0).delivered_pps | mpps | fmt(1000) | lpad(12))
		+ (peak($s; 1400) | mpps | fmt(1000) | lpad(11))
		+ (peak_row($s; 1400).gbps | fmt(100) | lpad(8))
		+ (peak_row($s; 64).proxy_cpu | if . == null then "-" else (. * 100 | round | tostring) + "%" end | lpad(9))
		+ (ratio(peak("ferry"; 64); peak($s; 64)) | lpad(10))
		+ (ratio(point("ferry"; 64; 0).delivered_pps; point($s; 64; 0).delivered_pps) | lpad(10))
		+ (ratio(peak("ferry"; 1400); peak($s; 1400)) | lpad(11))
		+ (xdp_share($s) | if . == null then "-" elif .share == null then "?"
		   else (.share * 1000 | round / 10 | tostring) + "%" end | lpad(8))
	  end)) end),
(if ($all | map(select(.kind == "latency")) | length) == 0 then empty else (
"",
"Latency: UDP ping-pong at 1000 msg/s, full round trip in us, median of runs [p99 min-max]; ferry/sys below 1 favours ferry",
("system" | pad(34)) + ("background" | lpad(11)) + ("p50" | lpad(9)) + ("p99" | lpad(9)) + ("p99.9" | lpad(9))
	+ ("max" | lpad(9)) + ("p99 range" | lpad(18)) + ("ferry/sys p50" | lpad(14)) + ("p99" | lpad(7)),
(($all | map(select(.kind == "latency")) | map(.system) | unique) as $lsys
	| order[] as $s | select($lsys | index($s))
	| if na($s; "latency") then ($names[$s] | pad(34)) + "n/a (" + na($s; "latency").note + ")"
	  else ($all[] | select(.kind == "latency" and .system == $s and .status == null)) as $l
		| (first($all[] | select(.kind == "latency" and .system == "ferry" and .status == null
			and .background_pps == $l.background_pps)) // null) as $f
		| ($names[$s] | pad(34))
		+ ((if $l.background_pps == 0 then "idle" else "\($l.background_pps / 1000 | round) kpps" end) | lpad(11))
		+ ($l.p50_us | fmt(1) | lpad(9)) + ($l.p99_us | fmt(1) | lpad(9))
		+ ($l.p999_us | fmt(1) | lpad(9)) + ($l.max_us | fmt(1) | lpad(9))
		+ ("[\($l.p99_us_min | fmt(1))-\($l.p99_us_max | fmt(1))]" | lpad(18))
		+ (ratio($f.p50_us; $l.p50_us) | lpad(14)) + (ratio($f.p99_us; $l.p99_us) | lpad(7))
	  end)) end),
"",
($all[] | select(.kind == "memory" and .status == null)
	| "Memory (ferryd RSS): start \(.rss_start_kb / 1024 | fmt(10)) MiB, under load \(.rss_load_kb / 1024 | fmt(10)) MiB, "
	  + "after \(.sessions) sessions \(.rss_sessions_kb / 1024 | fmt(10)) MiB: \(.bytes_per_session) bytes/session resident; "
	  + "configured: UMEM \(.umem_bytes / 1048576) MiB per worker, max_sessions \(.max_sessions) "
	  + (if .reserved_bytes_per_slot == null then ""
	     else "(\(.reserved_bytes_per_slot) bytes reserved per slot, \(.reserved_bytes_per_slot * .max_sessions / 1048576 | fmt(10)) MiB)" end)),
($all[] | select(.kind == "memory" and .status == "n/a") | "Memory: n/a (\(.note))")
,
# The targets of the performance issue, judged from this run's figures.
(def lat($s; $bg): first($all[] | select(.kind == "latency" and .system == $s and .status == null
		and .background_pps == $bg)) // null;
 def lat_bg($s): first($all[] | select(.kind == "latency" and .system == $s and .status == null
		and .background_pps > 0)) // null;
 def tp: $all | map(select(.kind == "throughput" and .status == null));
 def pk($s): [tp[] | select(.system == $s and .frame_bytes == 64) | .delivered_pps] | max;
 def unp($s): first(tp[] | select(.system == $s and .frame_bytes == 64 and .offered_target == 0)
		| .delivered_pps) // null;
 def r($a; $b): if $a == null or $b == null or $b == 0 then null else $a / $b end;
 def jit($l): if $l == null then null else $l.p999_us - $l.p50_us end;
 def row($name; $v; $op; $t):
	($name | pad(62)) + ($v | if . == null then "-" else (. * 100 | round / 100 | tostring) end | lpad(8))
	+ ("\($op) \($t)" | lpad(9)) + "  "
	+ (if $v == null then "not measured"
	   elif ($op == ">=" and $v >= $t) or ($op == "<=" and $v <= $t) then "holds"
	   else "does not hold" end);
 (first($all[] | select(.kind == "memory" and .status == null)) // null) as $m
 | "",
   "Targets: the ratio this run measured, the target, and whether it holds",
   row("64 B peak, ferry / kernel forwarding with nftables NAT"; r(pk("ferry"); pk("nft")); ">="; 1.5),
   row("64 B peak, ferry / socket relay"; r(pk("ferry"); pk("relay")); ">="; 5),
   row("64 B peak, ferry / DPDK testpmd on net_af_xdp"; r(pk("ferry"); pk("testpmd")); ">="; 1.5),
   row("64 B unpaced, ferry / its own peak"; r(unp("ferry"); pk("ferry")); ">="; 0.9),
   row("64 B peak, three-service chain / forward"; r(pk("chain"); pk("ferry")); ">="; 0.75),
   row("ping-pong p99.9 idle, ferry / nftables NAT"; r(lat("ferry"; 0).p999_us; lat("nft"; 0).p999_us); "<="; 1),
   row("ping-pong p99.9 loaded, ferry / nftables NAT"; r(lat_bg("ferry").p999_us; lat_bg("nft").p999_us); "<="; 1),
   row("jitter (p99.9 - p50) idle, ferry / socket relay"; r(jit(lat("ferry"; 0)); jit(lat("relay"; 0))); "<="; 0.5),
   row("jitter (p99.9 - p50) loaded, ferry / socket relay"; r(jit(lat_bg("ferry")); jit(lat_bg("relay"))); "<="; 0.5),
   row("RSS after sessions / (UMEM + session table + 16 MiB)";
	if $m == null or $m.reserved_bytes_per_slot == null then null
	else $m.rss_sessions_kb * 1024 / ($m.umem_bytes + $m.reserved_bytes_per_slot * $m.max_sessions + 16777216) end;
	"<="; 1),
   row("RSS under load / RSS at start"; if $m == null then null else $m.rss_load_kb / $m.rss_start_kb end; "<="; 1.05)),
# The targets of issue 12 (established sessions forward in XDP), from the
# same run: ferry forward (offload auto) against the kernel with nftables
# NAT, the XDP NAT forwarder and, where the kernel has flowtables, nftables
# with a flowtable, at 64 B in Mpps and 1400 B in Gbit/s; the offloaded chain
# against offloaded forward; unpaced against peak; ping-pong against
# nftables; and the offloaded share of ferry forward's stream (one session
# for its whole sweep: the first packets take the full path, the rest may
# not).  A figure this run could not take is n/a with the reason.
(def tp: $all | map(select(.kind == "throughput" and .status == null));
 def na($s; $kind): first($all[] | select(.system == $s and .kind == $kind and .status == "n/a")) // null;
 def pk($s): [tp[] | select(.system == $s and .frame_bytes == 64) | .delivered_pps] | max;
 def gpk($s): [tp[] | select(.system == $s and .frame_bytes == 1400) | .gbps] | max;
 def unp($s): first(tp[] | select(.system == $s and .frame_bytes == 64 and .offered_target == 0)
		| .delivered_pps) // null;
 def lat($s; $idle): first($all[] | select(.kind == "latency" and .system == $s and .status == null
		and (if $idle then .background_pps == 0 else .background_pps > 0 end))) // null;
 def r($a; $b): if $a == null or $b == null or $b == 0 then null else $a / $b end;
 # Why a figure is missing: a system of the ratio that could not run, else not measured.
 def why($kind; $systems): (first($systems[] as $s | na($s; $kind) | select(. != null)) // null)
	| if . == null then "n/a: not measured"
	  elif (.note | startswith("not supported")) then "n/a: " + (.note | sub(":.*"; ""))
	  else "n/a: \(.label // .system): \(.note)" end;
 def row($name; $v; $op; $t; $why):
	($name | pad(70)) + ($v | if . == null then "-" else (. * 1000 | round / 1000 | tostring) end | lpad(8))
	+ ("\($op) \($t)" | lpad(9)) + "  "
	+ (if $v == null then $why
	   elif ($op == ">=" and $v >= $t) or ($op == "<=" and $v <= $t) then "PASS"
	   else "MISS" end);
 (first($all[] | select(.kind == "offload" and .system == "ferry")) // null) as $off
 | "",
   "Targets (issue 12, XDP fast path): the ratio this run measured, the target, PASS or MISS",
   row("64 B peak Mpps, ferry forward / kernel forwarding + nftables NAT"; r(pk("ferry"); pk("nft")); ">="; 2.5;
	why("throughput"; ["ferry", "nft"])),
   row("64 B peak Mpps, ferry forward / XDP NAT forwarder"; r(pk("ferry"); pk("xdpnat")); ">="; 0.8;
	why("throughput"; ["ferry", "xdpnat"])),
   row("64 B peak Mpps, ferry forward / nftables NAT + flowtable"; r(pk("ferry"); pk("nftft")); ">="; 1.5;
	why("throughput"; ["ferry", "nftft"])),
   row("1400 B peak Gbit/s, ferry forward / kernel forwarding + nftables NAT"; r(gpk("ferry"); gpk("nft")); ">="; 2.5;
	why("throughput"; ["ferry", "nft"])),
   row("1400 B peak Gbit/s, ferry forward / XDP NAT forwarder"; r(gpk("ferry"); gpk("xdpnat")); ">="; 0.8;
	why("throughput"; ["ferry", "xdpnat"])),
   row("1400 B peak Gbit/s, ferry forward / nftables NAT + flowtable"; r(gpk("ferry"); gpk("nftft")); ">="; 1.5;
	why("throughput"; ["ferry", "nftft"])),
   row("64 B peak, filter+ratelimit+forward / forward (offload auto)"; r(pk("chain"); pk("ferry")); ">="; 0.9;
	why("throughput"; ["chain", "ferry"])),
   row("64 B unpaced, ferry forward / its own peak"; r(unp("ferry"); pk("ferry")); ">="; 0.9;
	why("throughput"; ["ferry"])),
   row("ping-pong p50 idle, ferry / nftables NAT"; r(lat("ferry"; true).p50_us; lat("nft"; true).p50_us); "<="; 1;
	why("latency"; ["ferry", "nft"])),
   row("ping-pong p99 idle, ferry / nftables NAT"; r(lat("ferry"; true).p99_us; lat("nft"; true).p99_us); "<="; 1;
	why("latency"; ["ferry", "nft"])),
   row("ping-pong p50 loaded, ferry / nftables NAT"; r(lat("ferry"; false).p50_us; lat("nft"; false).p50_us); "<="; 1;
	why("latency"; ["ferry", "nft"])),
   row("ping-pong p99 loaded, ferry / nftables NAT"; r(lat("ferry"; false).p99_us; lat("nft"; false).p99_us); "<="; 1;
	why("latency"; ["ferry", "nft"])),
   row("ferry forward's stream forwarded in XDP (\(if $off == null or $off.packets == null then "-" else $off.packets end) packets)";
	if $off == null then null else $off.share end; ">="; 0.99;
	if $off == null then why("throughput"; ["ferry"])
	elif $off.packets == null then "n/a: ferryctl shows no offloaded counter"
	else "n/a: the flow counted no packets" end)),
# The targets of issue 13 (application services): ferry forward with an app
# slot and app_xor attached (every payload out to the app's process and
# back) against plain forward (offload auto, as the issue names it, whose
# established sessions never leave XDP; and offload off, the AF_XDP path
# every app packet takes, which bounds the app path on a veth) and against
# the socket relay doing the same XOR in one process, at 64 B; 1400 B
# ratios for reading; ping-pong p99 through each, idle and loaded (the XOR
# systems run key 0 there so that sockperf recognises its messages).
(def tp: $all | map(select(.kind == "throughput" and .status == null));
 def na($s; $kind): first($all[] | select(.system == $s and .kind == $kind and .status == "n/a")) // null;
 def pk($s; $size): [tp[] | select(.system == $s and .frame_bytes == $size) | .delivered_pps] | max;
 def lat($s; $idle): first($all[] | select(.kind == "latency" and .system == $s and .status == null
		and (if $idle then .background_pps == 0 else .background_pps > 0 end))) // null;
 def r($a; $b): if $a == null or $b == null or $b == 0 then null else $a / $b end;
 def why($kind; $systems): (first($systems[] as $s | na($s; $kind) | select(. != null)) // null)
	| if . == null then "n/a: not measured" else "n/a: \(.label // .system): \(.note)" end;
 def row($name; $v; $op; $t; $why):
	($name | pad(70)) + ($v | if . == null then "-" else (. * 1000 | round / 1000 | tostring) end | lpad(8))
	+ (if $op == "" then "" else "\($op) \($t)" end | lpad(9)) + "  "
	+ (if $v == null then $why
	   elif $op == "" then "(for reading)"
	   elif ($op == ">=" and $v >= $t) or ($op == "<" and $v < $t) then "holds"
	   else "misses" end);
 def lost($s; $idle): first($all[] | select(.kind == "latency_lost" and .system == $s
		and (if $idle then .background_pps == 0 else .background_pps > 0 end))) // null;
 # p99 against the XOR relay; where every ping through the relay was lost
 # (no percentiles at all), its p99 is unbounded: the app's is lower.
 def prow($name; $idle):
	if lat("relayxor"; $idle) == null and lost("relayxor"; $idle) != null and lat("app"; $idle) != null
	then ($name | pad(70)) + ("-" | lpad(8)) + ("< 1" | lpad(9))
		+ "  holds: every ping through udp_relay + xor lost (\(lost("relayxor"; $idle).note)); app p99 \(lat("app"; $idle).p99_us | fmt(1)) us"
	else row($name; r(lat("app"; $idle).p99_us; lat("relayxor"; $idle).p99_us); "<"; 1;
		if lost("app"; $idle) != null then "misses: every ping through the app path lost (\(lost("app"; $idle).note))"
		else why("latency"; ["app", "relayxor"]) end) end;
 (first($all[] | select(.kind == "app_placement")) // null) as $pl
 | select($all | any(.[]; .system == "app" or .system == "relayxor"))
 | "",
   "Targets (issue 13, app services): the ratio this run measured, the target, holds or misses",
   (if $pl == null then empty else
    "  ferryd on CPU \($pl.ferryd_cpu), app_xor on CPU \($pl.app_cpu) "
    + (if $pl.app_priority == 0 then "(normal scheduling)" else "(SCHED_FIFO \($pl.app_priority))" end)
    + "; key \($pl.xor_key) (latency: key \($pl.latency_xor_key)); the XOR relay on CPU \($pl.ferryd_cpu)" end),
   ([tp[] | select(.system == "app" or .system == "relayxor") | .untransformed // 0] | add) as $u
   | (if $u > 0 then "  NOTE: \($u) frames reached the sink untransformed (not counted as delivered)" else empty end),
   row("64 B peak Mpps, ferry forward + app / ferry forward"; r(pk("app"; 64); pk("ferry"; 64)); ">="; 0.5;
	why("throughput"; ["app", "ferry"])),
   row("64 B peak Mpps, ferry forward + app / udp_relay + xor"; r(pk("app"; 64); pk("relayxor"; 64)); ">="; 3;
	why("throughput"; ["app", "relayxor"])),
   row("64 B peak Mpps, ferry forward + app / ferry forward (offload: off)"; r(pk("app"; 64); pk("ferryoff"; 64)); ">="; 0.5;
	why("throughput"; ["app", "ferryoff"])),
   row("1400 B peak Mpps, ferry forward + app / ferry forward"; r(pk("app"; 1400); pk("ferry"; 1400)); ""; 0;
	why("throughput"; ["app", "ferry"])),
   row("1400 B peak Mpps, ferry forward + app / udp_relay + xor"; r(pk("app"; 1400); pk("relayxor"; 1400)); ""; 0;
	why("throughput"; ["app", "relayxor"])),
   prow("ping-pong p99 idle, ferry forward + app / udp_relay + xor"; true),
   prow("ping-pong p99 loaded, ferry forward + app / udp_relay + xor"; false),
   row("ping-pong p50 idle, ferry forward + app / udp_relay + xor"; r(lat("app"; true).p50_us; lat("relayxor"; true).p50_us); ""; 0;
	why("latency"; ["app", "relayxor"])))
