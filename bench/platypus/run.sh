#!/bin/bash
# run.sh - the platypus benchmark (issue 4): notifications per second over TLS HTTP/2 to a local
# mock APNs, for each sender, repeated; the medians go to the platypus section of
# docs/benchmarks.md (rewritten only between its markers, by report.py).
#
# The mock is tools/apns-mock.c (build/bin/apns-mock), not the strict Python mock, which tops
# out near 1.5-5k requests/s. Senders, each run ROUNDS times against the same mock process:
#   ceiling   h2load straight at the mock: what the mock and this machine allow
#   latency   h2load straight at the mock at a fixed 25,000/s (half the target), with
#             per-request times: the baseline platypus's added latency is measured against
#   aioapns   Debian's python3-aioapns sending directly (aioapns_send.py)
#   node-apn  npm @parse/node-apn sending directly (node_apn_send.js; npm ci at run time)
#   platypus  h2load posting MongoosePush v3 REST notifications to build/bin/platypus, which
#             delivers them to the same mock: measured once platypus answers the probe
#             (bench_platypus below; the config it starts platypus with is platypus.yaml.in)
#   component the same platypus as a XEP-0114 component: component_send.py plays the XMPP
#             server and sends XEP-0357 publish IQs, at saturation and at a fixed rate
#
# QUICK=1: one short round of each (about a minute). KEEP=1: keep the work directory.
# MOCK_ARGS: extra apns-mock options (e.g. "--latency-ms 20").
# NO_DOCS=1: print the section instead of writing docs/benchmarks.md.
# PLATYPUS_BASE=path: another platypus binary (an earlier build, e.g. from a scratch worktree)
#   started beside this one on the same configuration and mock; its REST and component senders
#   run in the same rounds, right after this build's, and the section compares the two (medians
#   and ratios). On this shared machine builds compare only within one run.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
cd "$top"
bin=${SUITE_BIN:-$top/build/bin}
keys=$top/tests/mock/keys
py=/usr/bin/python3
QUICK=${QUICK:-0}

if [ "$QUICK" = 1 ]; then
	ROUNDS=1 CEIL_N=300000 LAT_S=5 AIOAPNS_N=5000 NODE_N=15000 PLAT_N=100000 COMP_N=50000
else
	ROUNDS=3 CEIL_N=1000000 LAT_S=10 AIOAPNS_N=20000 NODE_N=60000 PLAT_N=500000 COMP_N=200000
fi
LAT_RATE=25000 # requests/s for the latency runs: half the issue's 50,000 target
AIOAPNS_INFLIGHT=200 AIOAPNS_CONNS=10 # aioapns's default pool size
NODE_INFLIGHT=100                     # node-apn needs 50-200 (docs/benchmarks.md)
DEVICE=$(printf 'ab%.0s' $(seq 32))
TOPIC=com.example.app
COMP_SECRET=bench-component-secret
comp_port=""

work=$(mktemp -d /tmp/bench-platypus.XXXXXX)
results=$work/results.jsonl
: >"$results"
mock_pid="" plat_pid="" base_pid=""
watch_pid="" # the platypus process a sender drives, watched like the mock
cleanup() {
	if [ -n "$plat_pid" ]; then kill -TERM "$plat_pid" 2>/dev/null || true; wait "$plat_pid" 2>/dev/null || true; fi
	if [ -n "$base_pid" ]; then kill -TERM "$base_pid" 2>/dev/null || true; wait "$base_pid" 2>/dev/null || true; fi
	if [ -n "$mock_pid" ]; then kill -TERM "$mock_pid" 2>/dev/null || true; wait "$mock_pid" 2>/dev/null || true; fi
	if [ "${KEEP:-0}" = 1 ]; then echo "bench: work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

need() { command -v "$1" >/dev/null 2>&1 || { echo "bench: $1 is missing ($2)" >&2; exit 1; }; }
need h2load "Debian package nghttp2-client"
need node "nodejs"
need npm "npm"
[ -x "$bin/apns-mock" ] || { echo "bench: $bin/apns-mock is not built (make build)" >&2; exit 1; }
if ! $py -c 'import aioapns' 2>/dev/null; then
	echo "bench: installing python3-aioapns (it belongs in scripts/deps.sh)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-aioapns \
		>"$work/apt.log" 2>&1 || { cat "$work/apt.log" >&2; exit 1; }
fi
# node-apn at the exact version of package-lock.json, into bench/platypus/node_modules
if [ ! -f "$here/node_modules/@parse/node-apn/package.json" ]; then
	echo "bench: npm ci (@parse/node-apn)"
	(cd "$here" && npm ci --no-audit --no-fund --loglevel=error) >"$work/npm.log" 2>&1 ||
		{ cat "$work/npm.log" >&2; exit 1; }
fi

# start_mock ARGS...: build/bin/apns-mock on a free port; sets mock_pid and mock_port.
start_mock() {
	"$bin/apns-mock" --port 0 --threads 2 --cert "$keys/server.pem" --key "$keys/server.key" \
		--public-key "$keys/AuthKey_ABC123DEFG.pub.pem" "$@" >"$work/mock.out" 2>"$work/mock.err" &
	mock_pid=$!
	local i=0
	until grep -q '^listening ' "$work/mock.out" 2>/dev/null; do
		i=$((i + 1))
		if [ $i -gt 100 ] || ! kill -0 "$mock_pid" 2>/dev/null; then
			echo "bench: the mock did not start" >&2
			cat "$work/mock.err" >&2
			exit 1
		fi
		sleep 0.05
	done
	mock_port=$(sed -n 's/^listening .*:\([0-9]*\)$/\1/p' "$work/mock.out" | head -n 1)
}

# measure NAME [measure.py options] -- CMD...: one run of one sender command, a JSON line in the
# results (rate, p50/p99, the sender's CPU and RSS, the mock's and platypus's CPU and RSS).
measure() {
	local name=$1
	shift
	$py "$here/measure.py" --name "$name" --watch "$mock_pid" \
		${watch_pid:+--watch "$watch_pid"} "$@" >>"$results" || echo "bench: $name failed" >&2
	tail -n 1 "$results" | $py -c 'import json, sys
r = json.loads(sys.stdin.read())
print("  %-16s %9s/s  ok %-8s p50 %-6s p99 %-7s ms  sender CPU %5s s RSS %6s kB  rc %s" % (
    r["name"], r.get("rate"), r.get("ok"), r.get("p50_ms"), r.get("p99_ms"),
    r.get("sender_cpu_s"), r.get("sender_maxrss_kb"), r["rc"]))'
}

jwt=$($py -c 'import sys; sys.path.insert(0, "tests/mock")
from h2client import es256_jwt, load_key
print(es256_jwt(load_key(sys.argv[1]), "ABC123DEFG", "DEF123GHIJ"))' "$keys/AuthKey_ABC123DEFG.p8")
printf '%s' '{"aps":{"alert":{"title":"Hello","body":"A benchmark notification"},"sound":"default"}}' \
	>"$work/payload.json"

# MOCK_ARGS: more apns-mock options, e.g. MOCK_ARGS="--latency-ms 20" for an Apple-like delay
# shellcheck disable=SC2086
start_mock ${MOCK_ARGS:-}
echo "bench: platypus: mock APNs on port $mock_port, $ROUNDS round(s)"
apns_h2load=(-H "authorization: bearer $jwt" -H "apns-topic: $TOPIC" -H 'apns-push-type: alert'
	-d "$work/payload.json" "https://127.0.0.1:$mock_port/3/device/$DEVICE")

# The senders of one round. Rounds interleave the senders, so that load from outside (the
# machine is shared) spreads over all of them rather than hitting one.
sender_ceiling() { # (a) h2load straight at the mock
	measure ceiling -- h2load -t 2 -c 8 -m 100 -n "$CEIL_N" "${apns_h2load[@]}"
}
sender_latency() { # (a) the direct latency at half the target rate
	measure latency --h2load-log "$work/h2load-latency.log" -- \
		h2load -t 1 -c 4 -m 100 --rps $((LAT_RATE / 4)) -D "$LAT_S" \
		--log-file="$work/h2load-latency.log" "${apns_h2load[@]}"
}
sender_aioapns() { # (b)
	measure aioapns -- $py "$here/aioapns_send.py" --port "$mock_port" --count "$AIOAPNS_N" \
		--inflight "$AIOAPNS_INFLIGHT" --connections "$AIOAPNS_CONNS" --ca "$keys/ca.pem" \
		--key "$keys/AuthKey_ABC123DEFG.p8"
}
sender_node_apn() { # (c)
	measure node-apn -- node "$here/node_apn_send.js" --port "$mock_port" --count "$NODE_N" \
		--inflight "$NODE_INFLIGHT" --ca "$keys/ca.pem" --key "$keys/AuthKey_ABC123DEFG.p8"
}
senders="sender_ceiling sender_latency sender_aioapns sender_node_apn"

# (d) platypus, when it delivers REST notifications. The config template has @MOCK_PORT@,
# @REST_PORT@, @ADMIN_PORT@, @KEYS@ and @WORK@ filled in; the probe is one POST that must
# answer 200 (the mock's counters at exit show that the notifications reached it).
platypus_status="not measured yet"
# free_ports N: N distinct free TCP ports on 127.0.0.1, one per line (the sockets stay bound until
# all N are chosen, so the kernel cannot hand one port out twice).
free_ports() { $py -c 'import socket, sys
s = [socket.socket() for _ in range(int(sys.argv[1]))]
for x in s: x.bind(("127.0.0.1", 0))
print("\n".join(str(x.getsockname()[1]) for x in s))' "$1"; }
printf '%s' "$COMP_SECRET" >"$work/component.secret"
printf '%s' '{"service":"apns","topic":"com.example.app","alert":{"title":"Hello","body":"A benchmark notification"}}' \
	>"$work/rest.json"
# start_platypus NAME BINARY: start BINARY on the bench config (its own ports) and probe it.
# Sets started_pid, started_rest and started_comp; 0 when it delivers, else 1 with
# platypus_status saying why (and nothing left running).
start_platypus() {
	local name=$1 binary=$2 rest_port admin_port comp i code=""
	{ read -r rest_port; read -r admin_port; read -r comp; } < <(free_ports 3)
	sed -e "s|@MOCK_PORT@|$mock_port|g" -e "s|@REST_PORT@|$rest_port|g" \
		-e "s|@ADMIN_PORT@|$admin_port|g" -e "s|@KEYS@|$keys|g" -e "s|@WORK@|$work|g" \
		-e "s|@COMP_PORT@|$comp|g" "$here/platypus.yaml.in" >"$work/$name.yaml"
	if ! "$binary" -c "$work/$name.yaml" --check-config >"$work/$name-check.log" 2>&1; then
		platypus_status="not measured yet: $binary --check-config refuses bench/platypus/platypus.yaml.in: $(head -n 1 "$work/$name-check.log" | sed 's/^[^:]*:\([0-9]*:\)/line \1/' | head -c 120)"
		return 1
	fi
	"$binary" -c "$work/$name.yaml" >"$work/$name.log" 2>&1 &
	started_pid=$!
	for i in $(seq 50); do
		code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'content-type: application/json' \
			--data-binary @"$work/rest.json" "http://127.0.0.1:$rest_port/v3/notification/$DEVICE" || true)
		[ "$code" = 200 ] && break
		kill -0 "$started_pid" 2>/dev/null || break
		sleep 0.1
	done
	if [ "${code:-}" != 200 ]; then
		platypus_status="not measured yet: POST /v3/notification to $binary answered ${code:-nothing}"
		kill -TERM "$started_pid" 2>/dev/null || true
		wait "$started_pid" 2>/dev/null || true
		started_pid=""
		return 1
	fi
	started_rest=$rest_port
	started_comp=$comp
	return 0
}
# bench_platypus: start build/bin/platypus (and PLATYPUS_BASE) and, when it delivers, add its
# senders to the rounds (platypus keeps running through them: its CPU and RSS are watched like
# the mock's), REST and component inbound both.
rest_h2load=() base_h2load=() base_comp_port=""
bench_platypus() {
	if [ ! -x "$bin/platypus" ] || [ ! -f "$here/platypus.yaml.in" ]; then
		platypus_status="not measured yet: no build/bin/platypus or bench/platypus/platypus.yaml.in"
		return 0
	fi
	need curl "Debian package curl"
	start_platypus platypus "$bin/platypus" || return 0
	plat_pid=$started_pid
	comp_port=$started_comp
	platypus_status=measured
	rest_h2load=(-H 'content-type: application/json' -d "$work/rest.json"
		"http://127.0.0.1:$started_rest/v3/notification/$DEVICE")
	senders="$senders sender_platypus sender_platypus_latency sender_component"
	senders="$senders sender_component_latency"
	if [ -n "${PLATYPUS_BASE:-}" ]; then
		if ! start_platypus base "$PLATYPUS_BASE"; then
			echo "bench: PLATYPUS_BASE: $platypus_status" >&2
			exit 1
		fi
		base_pid=$started_pid
		base_comp_port=$started_comp
		base_h2load=(-H 'content-type: application/json' -d "$work/rest.json"
			"http://127.0.0.1:$started_rest/v3/notification/$DEVICE")
		# each right after this build's: both see the same moment's load
		senders="sender_ceiling sender_latency sender_aioapns sender_node_apn"
		senders="$senders sender_platypus sender_base sender_platypus_latency"
		senders="$senders sender_base_latency sender_component sender_base_component"
		senders="$senders sender_component_latency sender_base_component_latency"
	fi
}
# The platypus senders: NAME TARGET... for this build ("platypus*") and the base ("base*").
rest_saturation() { # (d) REST inbound, at saturation
	local name=$1
	shift
	measure "$name" -- h2load -t 1 -c 8 -m 100 -n "$PLAT_N" "$@"
}
rest_latency() { # (d) at half the target rate: minus the direct latency = added
	local name=$1
	shift
	measure "$name" --h2load-log "$work/h2load-$name.log" -- \
		h2load -t 1 -c 4 -m 100 --rps $((LAT_RATE / 4)) -D "$LAT_S" \
		--log-file="$work/h2load-$name.log" "$@"
}
component_saturation() { # (e) XEP-0114 inbound: platypus reconnects to each run's listener
	measure "$1" -- $py "$here/component_send.py" --port "$2" \
		--secret "$COMP_SECRET" --domain push.example.com --count "$COMP_N" --inflight 2000 \
		--token "$DEVICE" --topic "$TOPIC"
}
component_latency() { # (e) at half the target rate
	measure "$1" -- $py "$here/component_send.py" --port "$2" \
		--secret "$COMP_SECRET" --domain push.example.com --count $((LAT_RATE * LAT_S)) \
		--inflight 5000 --rate "$LAT_RATE" --token "$DEVICE" --topic "$TOPIC"
}
sender_platypus() { watch_pid=$plat_pid rest_saturation platypus "${rest_h2load[@]}"; }
sender_platypus_latency() { watch_pid=$plat_pid rest_latency platypus-latency "${rest_h2load[@]}"; }
sender_component() { watch_pid=$plat_pid component_saturation platypus-component "$comp_port"; }
sender_component_latency() {
	watch_pid=$plat_pid component_latency platypus-component-latency "$comp_port"
}
sender_base() { watch_pid=$base_pid rest_saturation base "${base_h2load[@]}"; }
sender_base_latency() { watch_pid=$base_pid rest_latency base-latency "${base_h2load[@]}"; }
sender_base_component() { watch_pid=$base_pid component_saturation base-component "$base_comp_port"; }
sender_base_component_latency() {
	watch_pid=$base_pid component_latency base-component-latency "$base_comp_port"
}

loadavg_before=$(cut -d' ' -f1-3 /proc/loadavg)
bench_platypus
echo "bench: platypus: $platypus_status"
for round in $(seq "$ROUNDS"); do
	echo "bench: platypus: round $round of $ROUNDS"
	for s in $senders; do
		"$s"
	done
done
loadavg_after=$(cut -d' ' -f1-3 /proc/loadavg)
for pid in "$plat_pid" "$base_pid"; do
	if [ -n "$pid" ]; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
done
plat_pid="" base_pid=""

kill -TERM "$mock_pid"
wait "$mock_pid" || echo "bench: the mock exited $?" >&2
mock_pid=""
echo "bench: mock: $(tail -n 1 "$work/mock.out")"

cmd="bench/platypus/run.sh"
[ "$QUICK" = 1 ] && cmd="QUICK=1 bench/platypus/run.sh"
[ -n "${MOCK_ARGS:-}" ] && cmd="MOCK_ARGS='$MOCK_ARGS' $cmd"
[ -n "${PLATYPUS_BASE:-}" ] && cmd="PLATYPUS_BASE=$PLATYPUS_BASE $cmd"
$py "$here/report.py" --results "$results" --doc "$top/docs/benchmarks.md" --command "$cmd" \
	--rounds "$ROUNDS" --platypus "$platypus_status" --mock-line "$(tail -n 1 "$work/mock.out")" \
	--lat-rate "$LAT_RATE" --aioapns "$AIOAPNS_N ×, $AIOAPNS_INFLIGHT in flight, $AIOAPNS_CONNS connections" \
	--node "$NODE_N ×, $NODE_INFLIGHT in flight" --ceiling "$CEIL_N ×, h2load -t 2 -c 8 -m 100" \
	--load "$loadavg_before" --load-after "$loadavg_after" \
	${PLATYPUS_BASE:+--base "$PLATYPUS_BASE"} ${NO_DOCS:+--print}
