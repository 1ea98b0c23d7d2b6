#!/bin/sh
# gen-docs.sh [--check] - rewrite the configuration tables of docs/operations.md from the daemons'
# own schemas (`<daemon> --config-reference`). With --check, change nothing and exit 1 when the
# document is out of date (make test runs that).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${SUITE_BIN:-$top/build/bin}
doc=$top/docs/operations.md
tmp=$(mktemp)
trap 'rm -f "$tmp" "$tmp.table"' EXIT
cp "$doc" "$tmp"
for d in xmpp-core platypus icicle; do
	"$bin/$d" --config-reference >"$tmp.table"
	awk -v d="$d" -v table="$tmp.table" '
		$0 == "<!-- BEGIN config-reference " d " -->" {
			print; while ((getline line < table) > 0) print line; skip = 1; next }
		$0 == "<!-- END config-reference " d " -->" { skip = 0 }
		!skip { print }' "$tmp" >"$tmp.new"
	mv "$tmp.new" "$tmp"
done
if [ "${1:-}" = "--check" ]; then
	if ! cmp -s "$tmp" "$doc"; then
		echo "docs/operations.md is out of date; run scripts/gen-docs.sh" >&2
		diff -u "$doc" "$tmp" >&2 || true
		exit 1
	fi
	echo "docs/operations.md matches the schemas"
else
	cp "$tmp" "$doc"
fi
