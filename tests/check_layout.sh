#!/bin/bash
# The README's "Repository layout" section names every file of the tree:
# each tracked file (outside the fuzz seed corpora and kept benchmark
# results) must appear there by name, a .c/.h pair as "name.[ch]" or either
# name.  Prints "layout: N passed, N failed" (one check per file).
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP" || exit 1
section=$(awk '/^## Repository layout/ {on = 1; next} on && /^## / {exit} on' README.md)
passed=0
failed=0
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
		echo "FAIL: README's repository layout does not name $f"
		failed=$((failed + 1))
	fi
done < <(git ls-files | grep -vE '^(tests/fuzz/corpus/|docs/bench/|\.gitignore$|README\.md$)')
echo "layout: $passed passed, $failed failed"
[ "$failed" = 0 ]
