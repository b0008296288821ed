#!/bin/bash
# Reload (SIGHUP) under traffic: flow A carries one UDP stream, exactly
# delivered and echoed, across ten reloads that change, remove, add and move
# flow B, one reload with an invalid config and one that needs a restart.
# A must lose no datagram and keep its single session; after each reload B
# behaves as the new config says (its upstream port), and a refused reload
# leaves the old config working.  Then unprivileged users flooding the
# control socket do not lock root's ferryctl reload out.
. "$(dirname "$0")/../lib.sh"
trap ns_cleanup EXIT

N=${FERRY_TEST_DATAGRAMS:-5000}
RATE=250 # N / RATE = 20 s: the stream spans every reload
Q=${FERRY_TEST_QUEUES:-1} # workers; 2 exercises parking with hand-off rings
CONF=$WORKDIR/ferry.yaml
LOG=$WORKDIR/ferryd.log
# ferryctl reload's socket: traversable by others, so that the unprivileged
# check reaches ferryd and is refused by it, not by the file system.
SOCK=$WORKDIR/ctl/ferryd.sock
mkdir -p "$WORKDIR/ctl" && chmod o+x "$WORKDIR" "$WORKDIR/ctl"
CTL_OUT=$WORKDIR/ctl.out
CTL_ERR=$WORKDIR/ctl.err

flow_a() {
	cat <<-YAML
	  - name: A
	    match: {protocol: udp, destination: 198.18.1.1/32, port: 5000}
	    services:
	      - forward: {upstream: 198.18.2.2:6000}
	YAML
}

# flow_a written another way: the same flow, so a reload must leave it alone.
flow_a_respelled() {
	cat <<-YAML
	  - services:
	      - forward:
	          upstream: "198.18.2.2:6000"
	    on_failure: pass
	    match:
	      port: "5000"
	      destination: 198.18.1.1
	      protocol: udp
	    name: A
	YAML
}

flow_b() { # DPORT UPSTREAM_PORT
	cat <<-YAML
	  - name: B
	    match: {protocol: udp, destination: 198.18.1.1/32, port: $1}
	    services:
	      - forward:
	          upstream: 198.18.2.2:$2
	YAML
}

# write_config [queues N] then the flows' YAML on stdin.
write_config() {
	{
		cat <<-YAML
		interfaces:
		  - name: px-c
		    xdp_mode: native
		  - name: px-s
		    xdp_mode: native
		queues: ${1:-$Q}
		control_socket: $SOCK
		nat:
		  ports: 40000-40999
		flows:
		YAML
		cat
	} >"$CONF.tmp" && mv "$CONF.tmp" "$CONF"
}

reloads() { grep -c 'reload: loading' "$LOG"; }
outcomes() { grep -cE 'reload: .*(flows? added|stays in force|needs a restart)' "$LOG"; }

# reload: SIGHUP, then wait for the outcome line of this reload.
reload() {
	local before
	before=$(grep -cE 'reload: ([0-9]+ flows? added|.*running config stays in force)' "$LOG")
	kill -HUP "$FERRYD_PID"
	wait_for eval "[ \$(grep -cE 'reload: ([0-9]+ flows? added|.*running config stays in force)' '$LOG') -gt $before ]"
}

last_summary() { grep -E 'reload: [0-9]+ flows? added' "$LOG" | tail -1; }

# b_works DPORT UPSTREAM_PORT: 20 datagrams to B arrive at that upstream port, echoed.
b_works() {
	local srv st
	in_srv "$UDPPROBE" server --listen "198.18.2.2:$2" --expect-src 198.18.2.1/32 \
		--expect-sport 40000-40999 --count 20 --timeout 8 >"$WORKDIR/b.out" 2>&1 &
	srv=$!
	track_pid $srv
	wait_for grep -q 'listening on' "$WORKDIR/b.out"
	in_cli "$UDPPROBE" client --to "198.18.1.1:$1" --count 20 --rate 200 --timeout 4 \
		>>"$WORKDIR/b-client.out" 2>&1 || { kill $srv 2>/dev/null; wait $srv; return 1; }
	wait $srv
	st=$?
	return $st
}

# b_absent DPORT: nothing steers it any more (the kernel answers, not an upstream).
b_absent() {
	! in_cli "$UDPPROBE" client --to "198.18.1.1:$1" --count 5 --rate 100 --timeout 1 \
		>/dev/null 2>&1
}

pin_dir() { echo "/proc/$FERRYD_PID/root/sys/fs/bpf/ferry"; }
stat_of() { # FLOW JQ-PATH  (from the last `save_stats`)
	jq -r ".flows[] | select(.name == \"$1\") | $2" "$WORKDIR/stats.json"
}
save_stats() { "$FERRYCTL" -p "$(pin_dir)" stats --json >"$WORKDIR/stats.json"; }
flow_names() { "$FERRYCTL" -p "$(pin_dir)" stats --json | jq -r '[.flows[].name] | sort | join(",")'; }

# ferryctl reload [ARGS]: its output in $CTL_OUT and $CTL_ERR; returns its exit status.
ctl_reload() {
	"$FERRYCTL" reload --socket "$SOCK" "$@" >"$CTL_OUT" 2>"$CTL_ERR"
	local st=$?
	sed 's/^/  ferryctl reload: /' "$CTL_OUT" "$CTL_ERR" >&2
	return $st
}
out_has() { grep -qE "$1" "$CTL_OUT"; }
err_has() { grep -qE "$1" "$CTL_ERR"; }
# The report names exactly these flows in these roles: "added:C changed:B unchanged:A".
report_is() {
	[ "$(grep -E '^(added|removed|changed|unchanged|updated) ' "$CTL_OUT" | sed -E 's/^([a-z]+) ([^: ]+).*/\1:\2/' |
		sort | tr '\n' ' ' | sed 's/ $//')" = "$1" ]
}

# step_ctl NAME SUMMARY-REGEX ROLES: the same as step, through ferryctl reload.
step_ctl() {
	ctl_reload
	check "ferryctl reload $1: exits 0" [ $? = 0 ]
	check "ferryctl reload $1: reports $2" out_has "^applied: $2"
	check "ferryctl reload $1: lists $3" report_is "$3"
	check "reload $1: applied ($2)" eval "last_summary | grep -qE '$2'"
}

step() { # NAME EXPECTED-SUMMARY-REGEX  (after write_config)
	reload
	check "reload $1: applied ($2)" eval "last_summary | grep -qE '$2'"
}

require_root "test_reload" || { echo "reload: 0 passed, 1 failed"; exit 1; }
topo_up "$Q" || { echo "FAIL: topology"; echo "reload: 0 passed, 1 failed"; exit 1; }

{ flow_a; flow_b 5001 7001; } | write_config
check "config validates" "$FERRYD" -c "$CONF" --check
start_ferryd "$CONF" "$LOG" || { check "ferryd starts" false; summary reload; exit 1; }
check "ferryd starts" true
check "B forwards to port 7001" b_works 5001 7001

in_srv "$UDPPROBE" server --listen 198.18.2.2:6000 --expect-src 198.18.2.1/32 \
	--expect-sport 40000-40999 --count "$N" --timeout 60 >"$WORKDIR/a-server.out" 2>&1 &
A_SRV=$!
track_pid $A_SRV
wait_for grep -q "listening on" "$WORKDIR/a-server.out"
in_cli "$UDPPROBE" client --to 198.18.1.1:5000 --count "$N" --min-size 16 --max-size 1200 \
	--rate $RATE --timeout 10 >"$WORKDIR/a-client.out" 2>&1 &
A_CLI=$!
track_pid $A_CLI
sleep 1

# Dry run: B changed, C added, A unchanged; reported, nothing applied.
{
	flow_a
	flow_b 5001 7002
	cat <<-YAML
	  - name: C
	    match: {protocol: udp, destination: 198.18.1.1/32, port: 5003}
	    services:
	      - forward: {upstream: 198.18.2.2:7003}
	YAML
} | write_config
ctl_reload --dry-run
check "dry run: exits 0" [ $? = 0 ]
check "dry run: lists added C, changed B, unchanged A" report_is "added:C changed:B unchanged:A"
check "dry run: B changed in its forward arguments" out_has "^changed B: services: forward's arguments$"
check "dry run: says nothing was applied" \
	out_has "^dry run: 1 flow would be added, 1 changed, 0 removed, 1 unchanged, 0 updated in place; nothing applied$"
check "dry run: B still forwards to port 7001" b_works 5001 7001
check "dry run: C is not steered" b_absent 5003
check "dry run: ferryctl still lists A and B" [ "$(flow_names)" = A,B ]
check "dry run: no reload happened" [ "$(grep -cE 'reload: [0-9]+ flows? added' "$LOG")" = 0 ]
# Dry run of a match change: the why names it.
{ flow_a; flow_b 5002 7001; } | write_config
ctl_reload -n
check "dry run: a port change is reported as such" out_has "^changed B: match: port$"

# 1: B's upstream changes.
{ flow_a; flow_b 5001 7002; } | write_config
step_ctl 1 "0 flows added, 1 changed, 0 removed, 1 unchanged" "changed:B unchanged:A"
check "reload 1: B forwards to port 7002" b_works 5001 7002
# 2: B removed.
flow_a | write_config
step_ctl 2 "0 flows added, 0 changed, 1 removed, 1 unchanged" "removed:B unchanged:A"
check "reload 2: B is no longer steered" b_absent 5001
check "reload 2: ferryctl lists only A" [ "$(flow_names)" = A ]
# 3: B added again.
{ flow_a; flow_b 5001 7003; } | write_config
step 3 "1 flow added, 0 changed, 0 removed, 1 unchanged"
check "reload 3: B forwards to port 7003" b_works 5001 7003
check "reload 3: ferryctl lists A and B" [ "$(flow_names)" = A,B ]

# Refused through ferryctl: a syntax error, then an unknown service.
{ flow_a; flow_b 5001 7100; echo "  - name: [broken"; } | write_config
ctl_reload
st=$?
check "ferryctl reload, syntax error: exits 1" [ $st = 1 ]
check "ferryctl reload, syntax error: says refused" err_has "^refused: $CONF: 1 error; the running config stays in force"
check "ferryctl reload, syntax error: the error at FILE:LINE:COL" err_has "^$CONF:[0-9]+:[0-9]+: "
{
	flow_a
	flow_b 5001 7100
	cat <<-YAML
	  - name: D
	    match: {protocol: udp, destination: 198.18.1.1/32, port: 5004}
	    services:
	      - no_such_service: {x: 1}
	YAML
} | write_config
ctl_reload
st=$?
check "ferryctl reload, unknown service: exits 1" [ $st = 1 ]
check "ferryctl reload, unknown service: named at FILE:LINE:COL" \
	err_has "^$CONF:[0-9]+:[0-9]+: .*no_such_service"
check "ferryctl reload, refused: B still forwards to port 7003" b_works 5001 7003
check "ferryctl reload, refused: ferryctl still lists A and B" [ "$(flow_names)" = A,B ]
# Not root, not ferryd's user: refused by ferryd, nothing reloaded.
before=$(reloads)
{ flow_a; flow_b 5001 7100; } | write_config
setpriv --reuid=nobody --regid=nogroup --clear-groups \
	"$FERRYCTL" reload --socket "$SOCK" >"$CTL_OUT" 2>"$CTL_ERR"
st=$?
sed 's/^/  nobody: /' "$CTL_ERR" >&2
check "ferryctl reload as nobody: exits 3" [ $st = 3 ]
check "ferryctl reload as nobody: says not permitted" err_has "not permitted"
check "ferryctl reload as nobody: nothing was loaded" [ "$(reloads)" = "$before" ]
check "ferryctl reload as nobody: B still forwards to port 7003" b_works 5001 7003

# An invalid config: every error logged with FILE:LINE:COL, nothing changes.
{
	flow_a
	flow_b 5001 70000
	cat <<-YAML
	  - name: C
	    match: {protocol: udp, destination: 198.18.1.1/32, port: 5003}
	    services:
	      - forward: {upstream: 198.18.2.2:6000, bogus: 1}
	YAML
} | write_config
reload
check "invalid config: refused" \
	grep -qE "reload: $CONF: [0-9]+ errors; the running config stays in force" "$LOG"
check "invalid config: the port error at its line and column" \
	grep -qE "$CONF:[0-9]+:[0-9]+: .*70000" "$LOG"
check "invalid config: the other error at its line and column" \
	grep -qE "$CONF:[0-9]+:[0-9]+: .*bogus" "$LOG"
check "invalid config: B still forwards to port 7003" b_works 5001 7003

# Not reloadable: refused with the reason, nothing changes.
{ flow_a; flow_b 5001 7100; } | write_config $((Q + 1))
reload
check "queues change: refused as needing a restart" grep -q "changing queues needs a restart" "$LOG"
check "queues change: B still forwards to port 7003" b_works 5001 7003

# 4: B's upstream again.
{ flow_a; flow_b 5001 7004; } | write_config
step 4 "0 flows added, 1 changed, 0 removed, 1 unchanged"
check "reload 4: B forwards to port 7004" b_works 5001 7004
# 5: B's match moves to another port.
{ flow_a; flow_b 5002 7005; } | write_config
step 5 "0 flows added, 1 changed, 0 removed, 1 unchanged"
check "reload 5: B forwards from port 5002 to 7005" b_works 5002 7005
check "reload 5: port 5001 is no longer steered" b_absent 5001
# 6: flows listed the other way round, B changed: A is still unchanged.
{ flow_b 5002 7006; flow_a; } | write_config
step 6 "0 flows added, 1 changed, 0 removed, 1 unchanged"
check "reload 6: B forwards to port 7006" b_works 5002 7006
# 7: nothing changed at all.
{ flow_b 5002 7006; flow_a; } | write_config
step 7 "0 flows added, 0 changed, 0 removed, 2 unchanged"
check "reload 7: B still forwards to port 7006" b_works 5002 7006
# 7b: A respelled (bare address, quoted numbers, a default spelled out, key order): unchanged.
{ flow_b 5002 7006; flow_a_respelled; } | write_config
step 7b "0 flows added, 0 changed, 0 removed, 2 unchanged"
# 8: B removed.
flow_a | write_config
step 8 "0 flows added, 0 changed, 1 removed, 1 unchanged"
check "reload 8: B is no longer steered" b_absent 5002
# 9: B added.
{ flow_a; flow_b 5001 7009; } | write_config
step 9 "1 flow added, 0 changed, 0 removed, 1 unchanged"
check "reload 9: B forwards to port 7009" b_works 5001 7009
# 10: B's upstream once more.
{ flow_a; flow_b 5001 7010; } | write_config
step 10 "0 flows added, 1 changed, 0 removed, 1 unchanged"
check "reload 10: B forwards to port 7010" b_works 5001 7010

check "eleven reloads applied, two refused" [ "$(grep -cE 'reload: [0-9]+ flows? added' "$LOG")" = 11 ]
check "the stream on A was still running after the last reload" kill -0 $A_CLI
wait $A_CLI
st=$?
cat "$WORKDIR/a-client.out"
check "A: the client got every echo back intact" [ $st = 0 ]
wait $A_SRV
st=$?
cat "$WORKDIR/a-server.out"
check "A: the server got all $N datagrams intact" [ $st = 0 ]
sleep 1.5 # counters are published once a second
check "ferryctl reads the counters" save_stats
check "A: one session across all reloads" [ "$(stat_of A .datapath.sessions_created)" = 1 ]
check "A: no drop" [ "$(stat_of A '.datapath.drops | length')" = 0 ]
"$FERRYCTL" -p "$(pin_dir)" stats || cat "$WORKDIR/stats.json"

# Bad requests from an unprivileged user, one connection after another:
# each is dropped, the log says so at a bounded rate (10 per 5 s).
cat >"$WORKDIR/ctl_bad.py" <<'PY'
import os, socket, sys
os.setgroups([]); os.setgid(65534); os.setuid(65534)  # nobody
for _ in range(int(sys.argv[2])):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(2)
    s.connect(sys.argv[1])
    s.send(b"garbage")
    try:
        s.recv(64)  # EOF once ferryd dropped it
    except OSError:
        pass
    s.close()
PY
before=$(grep -c "uid 65534: bad request" "$LOG")
timeout 30 python3 "$WORKDIR/ctl_bad.py" "$SOCK" 60
bad=$(($(grep -c "uid 65534: bad request" "$LOG") - before))
log "60 bad requests as nobody: $bad lines in ferryd's log"
check "60 bad requests as nobody: logged at a bounded rate (1 to 24 lines)" [ "$bad" -ge 1 -a "$bad" -lt 25 ]

# The control socket is every user's: unprivileged users holding as many
# connections as they can (nobody 100, 19 other uids 8 each, reconnecting
# what ferryd closes, across ferryd's 5 s drop of connections that do not
# attach) must not lock root's ferryctl out.
cat >"$WORKDIR/ctl_flood.py" <<'PY'
import os, socket, sys, time
path, dur = sys.argv[1], float(sys.argv[2])
kids = []
for spec in sys.argv[3].split(","):
    uid, want = (int(x) for x in spec.split(":"))
    pid = os.fork()
    if pid:
        kids.append(pid)
        continue
    os.setgroups([]); os.setgid(65534); os.setuid(uid)
    socks, end = [], time.monotonic() + dur
    while time.monotonic() < end:
        alive = []
        for s in socks:
            try:
                s.recv(1, socket.MSG_DONTWAIT)
                s.close()  # EOF: ferryd closed it
            except BlockingIOError:
                alive.append(s)
            except OSError:
                s.close()  # never connected (backlog full)
        socks = alive
        while len(socks) < want:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            s.setblocking(False)
            try:
                s.connect(path)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                s.close()
                break
            socks.append(s)
        time.sleep(0.05)
    os._exit(0)
for k in kids:
    os.waitpid(k, 0)
PY
flood_uids="65534:100$(for u in $(seq 60001 60019); do printf ',%s:8' "$u"; done)"
timeout 20 python3 "$WORKDIR/ctl_flood.py" "$SOCK" 7 "$flood_uids" &
FLOOD=$!
track_pid $FLOOD
sleep 1.5
ctl_reload --dry-run
check "control socket flooded by 20 unprivileged uids: ferryctl reload --dry-run as root works" [ $? = 0 ]
check "flooded: the dry run reports A and B unchanged" report_is "unchanged:A unchanged:B"
sleep 4.5 # past the 5 s after which ferryd drops connections that did not attach
ctl_reload --dry-run
check "flooded, after the 5 s renewal: ferryctl reload --dry-run as root works" [ $? = 0 ]
wait $FLOOD
check "flooded: a uid's connections beyond its share refused, logged" \
	grep -q "connections of its uid not attached yet" "$LOG"
check "flooded: the last slots kept for root, logged" grep -q "slots are for root" "$LOG"

stop_ferryd
st=$?
check "ferryd exits 0 on SIGTERM" [ $st = 0 ]
check "every UMEM frame accounted for at stop" grep -q "frame accounting holds" "$LOG"
grep 'reload' "$LOG" | sed 's/^/  | /'
summary reload
