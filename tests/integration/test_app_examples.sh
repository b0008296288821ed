#!/bin/bash
# Application services' client side end to end, without ferryd or a network:
# the example applications (services/examples/app_*.c, python/examples/
# app_upper.py) run as an unprivileged user (nobody) against
# build/tests/app_fake_ferryd, which serves one attach on a control socket
# and plays a worker's side of the shared area's rings (libferry_app's unit
# tests, tests/unit/test_app_client.c, cover the library's refusals).
#
#   (xor)     app_xor KEY=0x20 flips letters' case, byte for byte, all PASS;
#             it exits 3 (detached) when the fake closes the connection
#   (filter)  app_filter drops the payloads holding the pattern (text and -x
#             hex), passes the others unchanged
#   (python)  app_upper.py through the ctypes binding: uppercase ASCII
#   (refused) a slot the fake does not serve: the app exits 2 and says why
#   (signal)  SIGTERM: the app detaches cleanly (exit 0, the fake sees EOF)
#   (install) make install into a DESTDIR: libferry_app.so.1 (SONAME), its
#             link name, both headers, ferry_app(3); a program built against
#             the installed header and library alone attaches and runs
#   (unit)    configs/ferry-app@.service passes systemd-analyze verify
#
# No namespaces: nothing here touches a network (the control socket is a
# file in the test's own directory).  Every wait is bounded (the fake gives
# up after 10 s; each command runs under timeout).
. "$(dirname "$0")/../lib.sh"
trap ns_cleanup EXIT
require_root test_app_examples || { echo "app_examples: 0 passed, 1 failed"; exit 1; }

FAKE=$BUILD/tests/app_fake_ferryd
EX=$BUILD/examples
PY=/usr/bin/python3
export PYTHONDONTWRITEBYTECODE=1
# nobody must reach the socket's directory; the socket itself is 0666.
chmod 0755 "$WORKDIR"
SOCK=$WORKDIR/ferryd.sock
as_nobody() { timeout 20 setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }

# run_app NAME FAKE_ARGS -- APP...: the fake in the background, the app as
# nobody; the fake's output in $WORKDIR/NAME.out, the app's exit status in
# $WORKDIR/NAME.rc and its stderr in $WORKDIR/NAME.err.
run_app() {
	local name=$1 fake_args=() pid
	shift
	while [ "$1" != -- ]; do fake_args+=("$1"); shift; done
	shift
	rm -f "$SOCK"
	timeout 30 "$FAKE" "${fake_args[@]}" >"$WORKDIR/$name.out" 2>"$WORKDIR/$name.fake" &
	pid=$!
	track_pid "$pid"
	wait_for test -S "$SOCK" || log "$name: the fake never listened"
	as_nobody "$@" 2>"$WORKDIR/$name.err"
	echo $? >"$WORKDIR/$name.rc"
	wait "$pid"
	echo $? >"$WORKDIR/$name.fakerc"
}

same() { # NAME EXPECTED-FILE-CONTENT
	if [ "$(cat "$WORKDIR/$1.out")" != "$2" ]; then
		log "$1: got:"; sed 's/^/  | /' "$WORKDIR/$1.out" "$WORKDIR/$1.err" "$WORKDIR/$1.fake" >&2
		return 1
	fi
}
rc_is() { [ "$(cat "$WORKDIR/$1.rc")" = "$2" ] && [ "$(cat "$WORKDIR/$1.fakerc")" = "${3:-0}" ]; }

# (xor)
run_app xor "$SOCK" xform hello World 'mixed CASE' -- "$EX/app_xor" -s "$SOCK" xform 0x20
check "xor: every byte XORed with the key, all passed" same xor "0 PASS HELLO
1 PASS wORLD
2 PASS MIXED\\x00case"
check "xor: exits 3 when ferryd closes the connection" rc_is xor 3

# (filter)
run_app filter "$SOCK" flt 'keep one' 'a secret here' 'keep two' secret -- \
	"$EX/app_filter" -s "$SOCK" flt secret
check "filter: payloads holding the pattern dropped, the rest passed unchanged" same filter "0 PASS keep one
1 DROP a secret here
2 PASS keep two
3 DROP secret"
run_app filterx "$SOCK" flt 'ab' 'xyz' -- "$EX/app_filter" -s "$SOCK" -x flt 797a
check "filter -x: a hex pattern" same filterx "0 PASS ab
1 DROP xyz"

# (python)
check "python: the binding imports and finds build/libferry_app.so" \
	env PYTHONPATH="$TOP/python" "$PY" -c 'import ferry_app; ferry_app._load()'
run_app upper "$SOCK" up 'hello, world 1' 'ALREADY' -- "$PY" "$TOP/python/examples/app_upper.py" -s "$SOCK" up
check "python: app_upper.py uppercases ASCII payloads" same upper "0 PASS HELLO, WORLD 1
1 PASS ALREADY"
check "python: exits 3 when ferryd closes the connection" rc_is upper 3

# (refused)
run_app refused "$SOCK" xform x -- "$EX/app_xor" -s "$SOCK" other 1
check "refused: a slot ferryd does not serve, exit 2" rc_is refused 2 1
check "refused: the app says why" grep -q "refused slot 'other': no such slot" "$WORKDIR/refused.err"

# (signal): the app is still attached when the fake, having got its packets
# back, waits for the detach; SIGTERM to the app must end it cleanly.
rm -f "$SOCK"
timeout 30 "$FAKE" -k "$SOCK" xform 'one' >"$WORKDIR/sig.out" 2>"$WORKDIR/sig.fake" &
fpid=$!
track_pid "$fpid"
wait_for test -S "$SOCK"
# setpriv execs the app: $! is the app itself (bounded: the fake gives up after 10 s).
setpriv --reuid=nobody --regid=nogroup --clear-groups "$EX/app_xor" -s "$SOCK" xform 1 \
	2>"$WORKDIR/sig.err" &
apid=$!
track_pid "$apid"
wait_for grep -q '^0 PASS' "$WORKDIR/sig.out"
kill -TERM "$apid"
wait "$apid"
echo $? >"$WORKDIR/sig.rc"
wait "$fpid"
echo $? >"$WORKDIR/sig.fakerc"
check "signal: SIGTERM ends the app with 0 and detaches it" rc_is sig 0
check "signal: the fake saw the connection closed" grep -qx detached "$WORKDIR/sig.out"

# (install)
dest=$WORKDIR/dest
make -C "$TOP" --no-print-directory -s install-headers install-docs install-app-lib \
	DESTDIR="$dest" PREFIX=/usr >"$WORKDIR/install.log" 2>&1
check "install: libferry_app.so.1 with its SONAME" \
	sh -c "readelf -d '$dest/usr/lib/libferry_app.so.1' | grep -q 'SONAME.*libferry_app.so.1'"
check "install: the link name libferry_app.so" test -L "$dest/usr/lib/libferry_app.so"
check "install: both headers" test -f "$dest/usr/include/ferry/ferry_app.h" -a \
	-f "$dest/usr/include/ferry/ferry_app_client.h"
check "install: ferry_app(3)" test -f "$dest/usr/share/man/man3/ferry_app.3"
cat >"$WORKDIR/user.c" <<'C'
#include <ferry/ferry_app_client.h>
#include <stdio.h>
int main(int argc, char **argv)
{
	struct ferry_app_pkt p[4];
	struct ferry_app *a;
	char err[128];
	int n;

	if (ferry_app_attach(argv[1], "xform", &a, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	while ((n = ferry_app_recv(a, p, 4, 5000)) > 0)
		for (int i = 0; i < n; i++) {
			p[i].len = 2;
			p[i].data[0] = 'o';
			p[i].data[1] = 'k';
			ferry_app_done(a, &p[i], 1, NULL);
		}
	ferry_app_detach(a);
	return argc > 1 ? 0 : 1;
}
C
cc -std=gnu11 -Wall -Werror -I"$dest/usr/include" -o "$WORKDIR/user" "$WORKDIR/user.c" \
	-L"$dest/usr/lib" -lferry_app -Wl,-rpath,"$dest/usr/lib" 2>"$WORKDIR/user.cc"
check "install: a program builds against the installed header and library alone" test -x "$WORKDIR/user"
run_app user "$SOCK" xform 'anything at all' -- "$WORKDIR/user" "$SOCK"
check "install: and runs against ferryd's side (payload shrunk and rewritten)" same user "0 PASS ok"

# (unit) configs/ferry-app@.service, the confined application's example
# unit, passes systemd-analyze verify (its program: the built app_xor).
verify_app_unit() {
	local unit=$WORKDIR/ferry-app@xform.service
	sed "s|/usr/local/libexec/ferry-apps/%i|$EX/app_xor|" "$TOP/configs/ferry-app@.service" >"$unit"
	MANPATH=$dest/usr/share/man SYSTEMD_LOG_LEVEL=warning \
		systemd-analyze verify --man=yes "$unit" >"$WORKDIR/verify.log" 2>&1
	local st=$?
	# Messages about units other than ours (the host's) are not our concern.
	if [ $st != 0 ] || grep -q "ferry-app@" "$WORKDIR/verify.log"; then
		sed 's/^/  | /' "$WORKDIR/verify.log" >&2
		return 1
	fi
}
check "unit: configs/ferry-app@.service passes systemd-analyze verify" verify_app_unit

summary app_examples
