#!/bin/sh
# run.sh - xmpp-core against Prosody and ejabberd (Debian's packages) on this machine: the same
# accounts, the same load, interleaved rounds. Rewrites the xmpp-core section of
# docs/benchmarks.md. Builds the load generator (xmpp-load.c, next to this file) into
# build/bench/, then hands over to bench.py; see its header for the knobs (QUICK=1, ROUNDS=...);
# then mam_query.py measures archive queries on a million stored messages and resume.py the
# resumption of 10,000 hibernated sessions (XEP-0198) next to Prosody's, and fast_vs_scram.py
# what a FAST token (XEP-0484) saves over a SCRAM login, and archive_cost.py what archiving every
# message costs per routed message (archive_growth.py: as the archive grows); idle_tls.py holds
# 100,000 idle TLS sessions over as many processes as the open-file limit asks and measures their
# memory, syscost (syscost.c) what the kernel calls under a routed message cost here,
# workers.py the chat load with one worker loop against two, rates.py the system calls and
# context switches behind a routed message at each rate, and instructions.py the user-space
# instructions of a routed message (callgrind). builds.py, not run here, compares builds.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
out=$top/build/bench/xmpp-load
mkdir -p "$top/build/bench"
if [ ! -x "$out" ] || [ "$here/xmpp-load.c" -nt "$out" ]; then
	${CC:-cc} -std=c11 -O2 -g -Wall -Wextra -Wshadow -Werror -o "$out" "$here/xmpp-load.c" \
		-lssl -lcrypto
fi
if [ ! -x "$top/build/bench/syscost" ] || [ "$here/syscost.c" -nt "$top/build/bench/syscost" ]; then
	${CC:-cc} -std=c11 -O2 -g -Wall -Wextra -Wshadow -Werror -o "$top/build/bench/syscost" -pthread \
		"$here/syscost.c"
fi
/usr/bin/python3 "$here/bench.py" "$@"
# the archive's query latency on a million stored messages (MAM=0 skips it; prints one JSON line)
if [ "${MAM:-1}" != 0 ] && [ -z "${RENDER:-}" ]; then
	/usr/bin/python3 "$here/mam_query.py"
fi
# 10,000 hibernated sessions resumed at once, xmpp-core and Prosody (RESUME=0 skips it; one JSON
# line per server)
if [ "${RESUME:-1}" != 0 ] && [ -z "${RENDER:-}" ]; then
	/usr/bin/python3 "$here/resume.py"
fi
# a FAST token's reconnection against a SCRAM login (FAST=0 skips it; prints a small table)
if [ "${FAST:-1}" != 0 ] && [ -z "${RENDER:-}" ]; then
	/usr/bin/python3 "$top/bench/xmpp-core/fast_vs_scram.py"
fi
# the chat load's CPU per routed message with the archive off and on (ARCHIVE_COST=0 skips it;
# prints a small table)
if [ "${ARCHIVE_COST:-1}" != 0 ] && [ -z "${RENDER:-}" ]; then
	/usr/bin/python3 "$here/archive_cost.py"
fi
# the same with the archive growing: one server, consecutive steps at 4,000 msg/s
# (ARCHIVE_GROWTH=0 skips it; prints a small table)
if [ "${ARCHIVE_GROWTH:-1}" != 0 ] && [ -z "${RENDER:-}" ]; then
	/usr/bin/python3 "$here/archive_growth.py"
fi
# the chat load with one worker loop and with two: what the hand-off between loops costs
# (WORKERS=0 skips it; prints a small table)
if [ "${WORKERS:-1}" != 0 ] && [ -z "${RENDER:-}" ]; then
	/usr/bin/python3 "$here/workers.py"
fi
# the chat load at a few rates: what a routed message costs in user and system time, system
# calls and context switches at each (RATES_COST=0 skips it, COST_RATES=... sets the rates;
# prints a small table)
if [ "${RATES_COST:-1}" != 0 ] && [ -z "${RENDER:-}" ]; then
	/usr/bin/python3 "$here/rates.py"
fi
# 100,000 idle TLS sessions and their memory (IDLE=0 skips it; rewrites its section of
# docs/benchmarks.md)
if [ "${IDLE:-1}" != 0 ] && [ -z "${RENDER:-}" ]; then
	/usr/bin/python3 "$here/idle_tls.py"
fi
# user-space instructions per routed message, by library, counted by callgrind (INSTRUCTIONS=0
# skips it; prints a small table and one JSON line)
if [ "${INSTRUCTIONS:-1}" != 0 ] && [ -z "${RENDER:-}" ]; then
	/usr/bin/python3 "$here/instructions.py"
fi
# the kernel's price of one message's system calls on this machine (prints one JSON line)
if [ -z "${RENDER:-}" ]; then
	"$top/build/bench/syscost"
fi
