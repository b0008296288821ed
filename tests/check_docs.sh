#!/bin/bash
# The manual pages (docs/man/*.[0-9]) render without a warning, both through
# groff with every warning on and through man-db's own pipeline (`man -l`),
# and ferry.yaml(5) documents every config key the parser accepts: each key
# that build/tests/config_keys lists from the parser's own tables is the
# term of an entry (.TP) of the page, a service's argument inside that
# service's section (.SS naming the service).  Two checks per page and one
# per key; prints "check_docs: N passed, N failed".  No page may point to
# the README, which is not installed.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP" || exit 1
CONFIG_KEYS=${CONFIG_KEYS:-$TOP/build/tests/config_keys}
PAGE=docs/man/ferry.yaml.5
passed=0
failed=0

pass() { passed=$((passed + 1)); }
fail() { echo "FAIL: $1"; failed=$((failed + 1)); }

render() { # PAGE: prints any warning
	LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z "$1" 2>&1
	LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$1" 2>&1 >/dev/null
}

pages=$(ls docs/man/*.[0-9] 2>/dev/null)
[ -n "$pages" ] || fail "no manual page in docs/man"
for p in $pages; do
	err=$(render "$p")
	if [ -z "$err" ]; then
		pass
	else
		fail "$p does not render cleanly:"
		sed 's/^/  | /' <<<"$err"
	fi
	# Installed pages are the reference: none sends the reader to the README,
	# which is not installed.
	if grep -n 'README' "$p"; then
		fail "$p points to the README"
	else
		pass
	fi
done

# The terms of the page's entries, each line prefixed with the title of
# the .SS section it is in ("" before the first).
terms=$(awk '
	/^\.SS/ { ss = $0; sub(/^\.SS +/, "", ss); gsub(/"/, "", ss); next }
	/^\.SH/ { ss = "" ; next }
	tp { print ss "\t" $0; tp = 0; next }
	/^\.TP/ { tp = 1 }' "$PAGE")

if ! keys=$("$CONFIG_KEYS"); then
	fail "$CONFIG_KEYS could not list the parser's keys (make $CONFIG_KEYS)"
	keys=""
fi
while IFS=$'\t' read -r section key; do
	[ -n "$key" ] || continue
	# The key as a word of a term (a dotted path like match.port counts).
	word="(^|[^A-Za-z0-9_])$key([^A-Za-z0-9_]|\$)"
	if [ "$section" = - ]; then
		where="any entry"
		lines=$(cut -f2- <<<"$terms")
	else
		where="an entry of a section naming service '$section'"
		lines=$(awk -F'\t' -v s="$section" '
			{ n = split($1, w, /[^A-Za-z0-9_]+/); for (i = 1; i <= n; i++) if (w[i] == s) { print $2; next } }' <<<"$terms")
	fi
	# Bold in the term: .B/.BR/.BI KEY... or \fBKEY\fR.
	if grep -E '^\.(B|BR|BI|IR|RB) ' <<<"$lines" | sed -E 's/^\.[A-Z]+ //' | grep -qE -- "$word" ||
		grep -oE '\\fB[^\\]*' <<<"$lines" | sed 's/^\\fB//' | grep -qE -- "$word"; then
		pass
	else
		[ "$section" = - ] && what="config key '$key'" || what="$section argument '$key'"
		fail "$PAGE: $what is not the term of $where"
	fi
done <<<"$keys"

echo "check_docs: $passed passed, $failed failed"
[ "$failed" = 0 ]
