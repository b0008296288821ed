#!/bin/bash
# The bash completion of ferryctl (configs/ferryctl.bash-completion), run as
# bash-completion runs it: commands, global and per-command options, option
# values, and flow names after --flow from the ferryctl being completed (a
# stand-in here that prints what `ferryctl flows` prints; it also shows
# that the line's -p reaches it).  No root, no namespace.
. "$(dirname "$0")/../lib.sh"
trap ns_cleanup EXIT

COMPLETION=$TOP/configs/ferryctl.bash-completion
BASH_COMPLETION=/usr/share/bash-completion/bash_completion

# complete LINE: what <TAB> at the end of LINE offers, sorted, one line.
complete_line() {
	bash -c '
		. "$1" && . "$2" || exit 1
		read -r -a COMP_WORDS <<<"$3"
		[[ $3 == *" " ]] && COMP_WORDS+=("")
		COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		COMP_LINE=$3
		COMP_POINT=${#COMP_LINE}
		_ferryctl
		printf "%s\n" "${COMPREPLY[@]}" | sort | paste -sd" "
	' _ "$BASH_COMPLETION" "$COMPLETION" "$1"
}

offers() { # LINE EXPECTED
	local got
	got=$(complete_line "$1")
	[ "$got" = "$2" ] && return 0
	log "  '$1': offered '$got', expected '$2'"
	return 1
}

[ -r "$BASH_COMPLETION" ] || {
	echo "FAIL: bash-completion missing (make deps)"
	echo "completion: 0 passed, 1 failed"
	exit 1
}

# A ferryctl that knows two flows, and says which pin path it was given.
cat >"$WORKDIR/ferryctl" <<'SH'
#!/bin/sh
[ "$1" = -p ] && { echo "flow pinned-at-$2 (id 0)"; exit 0; }
printf 'flow dns (id 0)\n  on_failure pass\nflow web tls (id 3)\n'
SH
chmod +x "$WORKDIR/ferryctl"
FAKE=$WORKDIR/ferryctl

check "commands" offers "ferryctl " "apps flows metrics sessions stats"
check "a command's prefix" offers "ferryctl s" "sessions stats"
check "global options" offers "ferryctl --" "--help --pin-path"
check "after -p DIR, the commands" offers "ferryctl -p /sys/fs/bpf/ferry " \
	"apps flows metrics sessions stats"
check "stats options" offers "ferryctl stats --" "--format --help --json --watch"
check "--format values" offers "ferryctl stats --format " "json prometheus text"
check "metrics options" offers "ferryctl metrics --" "--help --listen"
check "--listen suggestions" offers "ferryctl metrics --listen 127" "127.0.0.1:9464"
check "-p completes directories" \
	eval "complete_line 'ferryctl -p $TOP/confi' | grep -qx '$TOP/configs'"
check "--flow: the flow names ferryctl flows prints" offers "$FAKE sessions --flow " "dns web tls"
check "--flow: with the line's -p" offers "$FAKE -p /x sessions --flow " "pinned-at-/x"
check "--flow: ferryd not running, nothing" offers "/bin/false sessions --flow " ""
summary completion
