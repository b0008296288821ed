#!/bin/bash
# ferryctl metrics: Prometheus text over HTTP.  ferryd forwards a bounded
# UDP stream through a flow whose chain is an app slot (no application: its
# packets bypass it) then forward; `ferryctl metrics --listen
# 198.18.1.1:9464` in the proxy namespace is scraped with curl from the
# client's.  The scrape must carry what `ferryctl stats --json` and
# `ferryctl apps --json` show (flow, data-path, service and service's own
# counters, per-interface XDP, per-queue, app slots) with equal values,
# build info, a HELP and TYPE line per family, and pass a format check
# (promtool's is not available: a regex per line).  Another path is a 404,
# a POST a 405; once ferryd stops, a scrape is a 503; SIGTERM stops it.
# The textfile mode (stats --format prometheus) has the same families.
. "$(dirname "$0")/../lib.sh"
trap ns_cleanup EXIT

N=300
LISTEN=198.18.1.1:9464
URL=http://$LISTEN/metrics

write_config() {
	cat >"$WORKDIR/ferry.yaml" <<-YAML
	control_socket: $WORKDIR/ferryd.sock
	interfaces:
	  - name: px-c
	  - name: px-s
	nat:
	  ports: 40000-40999
	flows:
	  - name: m
	    match: {protocol: udp, destination: 198.18.1.1/32, port: 5000}
	    offload: off
	    services:
	      - app: {name: tap1, owner: nobody}
	      - forward: {upstream: 198.18.2.2:6000}
	YAML
}

# sample NAME{LABELS}: its value in the scrape, or "missing".
sample() {
	awk -v k="$1" '$1 == k { v = $2 } END { print (v == "" ? "missing" : v) }' "$WORKDIR/scrape.txt"
}
jstat() { jq -r "$1" "$WORKDIR/stats.json"; }

# Equal, and more than a trivial 0 (the stream went through it).
same() { # NAME{LABELS} JSON-VALUE
	local got
	got=$(sample "$1")
	[ "$got" = "$2" ] && [ "$got" -ge "$N" ] 2>/dev/null && return 0
	log "  $1: scrape $got, ferryctl $2"
	return 1
}

# The exposition format, line by line: comments are HELP or TYPE of a
# family, each family has both before its first sample, once; a sample is
# NAME{LABEL="VALUE",...} NUMBER, of a declared family, never twice.
valid_format() {
	awk '
	function fail(why) { print "  line " NR ": " why ": " $0 > "/dev/stderr"; bad = 1 }
	/^# HELP / { if ($3 in help) fail("second HELP"); help[$3] = 1; next }
	/^# TYPE / {
		if ($3 in type) fail("second TYPE")
		if ($4 !~ /^(counter|gauge)$/) fail("type")
		type[$3] = $4; next
	}
	/^#/ { fail("comment"); next }
	{
		if ($0 !~ /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*"(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*")*\})? -?[0-9]+(\.[0-9]+)?$/)
			fail("not a sample")
		name = $1; sub(/\{.*/, "", name)
		if (!(name in type) || !(name in help)) fail("no HELP or TYPE before it")
		if (type[name] == "counter" && name !~ /_total$/) fail("a counter not named _total")
		if ($1 in seen) fail("second sample of a series")
		seen[$1] = 1; samples++
	}
	END { exit bad || samples < 50 }' "$1"
}

require_root "test_metrics" || { echo "metrics: 0 passed, 1 failed"; exit 1; }
command -v curl >/dev/null || { echo "FAIL: curl missing (make deps)"; echo "metrics: 0 passed, 1 failed"; exit 1; }
topo_up || { echo "FAIL: topology"; echo "metrics: 0 passed, 1 failed"; exit 1; }
write_config
start_ferryd "$WORKDIR/ferry.yaml" "$WORKDIR/ferryd.log" || {
	check "ferryd starts" false
	summary metrics
	exit 1
}
PINS=/proc/$FERRYD_PID/root/sys/fs/bpf/ferry
in_srv "$UDPPROBE" server --listen 198.18.2.2:6000 --count $N --timeout 30 >"$WORKDIR/server.out" 2>&1 &
track_pid $!
wait_for grep -q "listening on" "$WORKDIR/server.out"
check "$N datagrams forwarded and echoed" \
	in_cli "$UDPPROBE" client --to 198.18.1.1:5000 --count $N --rate 1000 --timeout 20
sleep 1.5 # ferryd publishes its counters once a second

# Not through in_px: $! must be ferryctl itself (ip netns exec execs it).
ip netns exec "$NS_PX" "$FERRYCTL" -p "$PINS" metrics --listen "$LISTEN" 2>"$WORKDIR/metrics.log" &
METRICS_PID=$!
track_pid $METRICS_PID
check "ferryctl metrics listens" wait_for in_cli curl -sf -o /dev/null "$URL"
"$FERRYCTL" -p "$PINS" stats --json >"$WORKDIR/stats.json"
"$FERRYCTL" -p "$PINS" apps --json >"$WORKDIR/apps.json"
in_cli curl -s -D "$WORKDIR/headers.txt" -o "$WORKDIR/scrape.txt" "$URL"
check "GET /metrics: 200" grep -q '^HTTP/1.1 200' "$WORKDIR/headers.txt"
check "GET /metrics: Prometheus text 0.0.4" \
	grep -qi '^Content-Type: text/plain; version=0.0.4' "$WORKDIR/headers.txt"
check "the scrape passes the format check" valid_format "$WORKDIR/scrape.txt"
check "HELP and TYPE of a flow counter" eval "grep -q '^# HELP ferry_flow_packets_total ' '$WORKDIR/scrape.txt' &&
	grep -qx '# TYPE ferry_flow_packets_total counter' '$WORKDIR/scrape.txt'"

F='.flows[] | select(.name == "m")'
check "flow: steering packets as ferryctl stats" \
	same 'ferry_flow_packets_total{flow="m"}' "$(jstat "$F.steering.packets")"
check "flow: data-path tx_packets as ferryctl stats" \
	same 'ferry_datapath_tx_packets_total{flow="m"}' "$(jstat "$F.datapath.tx_packets")"
check "service forward (position 1): packets_in as ferryctl stats" \
	same 'ferry_service_packets_in_total{flow="m",position="1",service="forward"}' \
	"$(jstat "$F.services[1].packets_in")"
check "service app: its own counter bypassed as ferryctl stats" \
	same 'ferry_service_counter_total{flow="m",position="0",service="app",counter="bypassed"}' \
	"$(jstat "$F.services[0].counters.bypassed")"
check "interface px-c: XDP packets as ferryctl stats" \
	same 'ferry_interface_xdp_steered_total{interface="px-c"}' \
	"$(jstat '.interfaces[] | select(.name == "px-c") | .steered')"
check "queue px-c/0: rx_packets as ferryctl stats" \
	same 'ferry_queue_rx_packets_total{interface="px-c",queue="0"}' \
	"$(jstat '.queues[] | select(.interface == "px-c" and .queue == 0) | .port.rx_packets')"
check "app slot tap1: bypassed as ferryctl apps" \
	same 'ferry_app_bypassed_total{slot="tap1",flow="m"}' \
	"$(jq -r '.apps[] | select(.slot == "tap1") | .bypassed' "$WORKDIR/apps.json")"
check "app slot tap1: not attached" [ "$(sample 'ferry_app_attached{slot="tap1",flow="m"}')" = 0 ]
check "build info" grep -qE '^ferry_build_info\{version="[^"]+"\} 1$' "$WORKDIR/scrape.txt"

"$FERRYCTL" -p "$PINS" stats --format prometheus >"$WORKDIR/textfile.txt"
check "the textfile mode has the same families" \
	diff <(grep '^# TYPE' "$WORKDIR/textfile.txt") <(grep '^# TYPE' "$WORKDIR/scrape.txt")

check "another path: 404" [ "$(in_cli curl -s -o /dev/null -w '%{http_code}' "http://$LISTEN/")" = 404 ]
check "another path: 404 (/metricsx)" \
	[ "$(in_cli curl -s -o /dev/null -w '%{http_code}' "http://$LISTEN/metricsx")" = 404 ]
check "POST: 405" [ "$(in_cli curl -s -o /dev/null -w '%{http_code}' -X POST "$URL")" = 405 ]

stop_ferryd
check "with ferryd stopped: 503" [ "$(in_cli curl -s -o /dev/null -w '%{http_code}' "$URL")" = 503 ]
kill -TERM $METRICS_PID
wait $METRICS_PID
check "ferryctl metrics exits 0 on SIGTERM" [ $? = 0 ]
usage_error() { "$FERRYCTL" "$@" 2>/dev/null; [ $? = 2 ]; }
check "--listen without a port: usage error" usage_error metrics --listen 198.18.1.1
check "--listen with a bad address: usage error" usage_error metrics --listen 198.18.1:80
summary metrics
