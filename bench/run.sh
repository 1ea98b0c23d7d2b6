#!/bin/sh
# run.sh - `make bench`: run each bench/*/run.sh in turn. Each benchmark writes its own section of
# docs/benchmarks.md. Benchmarks are never part of `make test`.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
found=0
for b in "$top"/bench/*/run.sh; do
	[ -x "$b" ] || continue
	found=1
	echo "bench: $b"
	"$b"
done
[ "$found" -eq 1 ] || echo "bench: no benchmark is defined yet (see docs/benchmarks.md)"
