#!/bin/bash
# docs/layout.md names every file of the tree: each tracked file (outside
# the fuzz seed corpora and kept benchmark results) must appear in its
# layout block by name, a .c/.h pair as "name.[ch]" or either name.  And
# the other way round, so that the layout cannot drift: each file name the
# block gives (a word ending in a known extension, or "name.[ch]") must be
# the name of a tracked file.  Prints "layout: N passed, N failed" (one
# check per file either way).
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP" || exit 1
LAYOUT=docs/layout.md
# The fenced block of the page.
section=$(awk '/^```/ {n++; next} n == 1' "$LAYOUT")
passed=0
failed=0
[ -n "$section" ] || { echo "FAIL: $LAYOUT has no layout block"; failed=$((failed + 1)); }
files=$(git ls-files | grep -vE '^(tests/fuzz/corpus/|docs/bench/|\.gitignore$)')
basenames=$(sed 's#.*/##' <<<"$files")
while IFS= read -r f; do
	base=${f##*/}
	stem=${base%.*}
	case "$base" in
	*.c | *.h) pair="$stem.[ch]" ;;
	*) pair="" ;;
	esac
	if grep -qF -- "$base" <<<"$section" || { [ -n "$pair" ] && grep -qF -- "$pair" <<<"$section"; }; then
		passed=$((passed + 1))
	else
		echo "FAIL: $LAYOUT does not name $f"
		failed=$((failed + 1))
	fi
done <<<"$files"

# Every file name of the block (its directory part dropped: "man/ferryd.8",
# "installed as ferry/ferry_service.h"): some tracked file has that name.
names=$(grep -oE '[A-Za-z0-9_@./-]+\.(\[ch\]|c|h|sh|py|jq|yaml|service|map|dict|md|json|[0-9])\b' <<<"$section" |
	grep -vE '^(\.|[0-9.]+$)' | sort -u)
while IFS= read -r n; do
	[ -n "$n" ] || continue
	case "$n" in
	*.\[ch\]) cands="${n%.\[ch\]}.c ${n%.\[ch\]}.h" ;;
	*) cands=$n ;;
	esac
	found=""
	for c in $cands; do
		grep -qxF -- "${c##*/}" <<<"$basenames" && found=1
	done
	if [ -n "$found" ]; then
		passed=$((passed + 1))
	else
		echo "FAIL: $LAYOUT names $n, which is not in the tree"
		failed=$((failed + 1))
	fi
done <<<"$names"
echo "layout: $passed passed, $failed failed"
[ "$failed" = 0 ]
