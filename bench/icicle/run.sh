#!/bin/sh
# run.sh - icicle against coturn (Debian's turnserver) on this machine: same load, same relay
# settings, alternating A/B rounds. Rewrites the icicle section of docs/benchmarks.md.
# The work is in bench.py next to this file; see its header for the knobs (QUICK=1, ROUNDS=...).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
exec /usr/bin/python3 "$here/bench.py" "$@"
