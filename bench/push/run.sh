#!/bin/sh
# run.sh - the push and call benchmarks: push latency (a message to a user who is away, to the
# request at the mock APNs) through platypus as xmpp-core's component and through the REST
# hand-off (push_latency.py), and call set-up time through two NATs (call_setup.py, root only).
# Rewrites the push section of docs/benchmarks.md (report.py). Needs the release build (make).
# Knobs: QUICK=1 (a reduced size), the PUSH_* of push_latency.py, CALLS, BENCH_DOC=- (print the
# section instead), KEEP=1 (keep push_latency.py's work directory).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
py=/usr/bin/python3
for b in xmpp-core platypus apns-mock icicle; do
	[ -x "$top/build/bin/$b" ] || { echo "bench/push: build/bin/$b is not built (make)" >&2; exit 1; }
done
work=$(mktemp -d /tmp/bench-push-run.XXXXXX)
trap 'rm -rf "$work"' EXIT
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
$py "$here/push_latency.py" >"$work/push.jsonl"
$py "$here/call_setup.py" >"$work/call.jsonl"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
cmd="bench/push/run.sh"
for v in QUICK PUSH_USERS PUSH_RATE PUSH_SECONDS PUSH_ROUNDS PUSH_SENDERS PUSH_PATHS CALLS; do
	eval "val=\${$v:-}"
	[ -n "$val" ] && cmd="$v=$val $cmd"
done
cd "$top"
$py "$here/report.py" --push "$work/push.jsonl" --call "$work/call.jsonl" \
	--doc "${BENCH_DOC:-docs/benchmarks.md}" --command "$cmd" --load "$load_before" \
	--load-after "$load_after" ${PUSH_NOTES:+--notes "$PUSH_NOTES"}
