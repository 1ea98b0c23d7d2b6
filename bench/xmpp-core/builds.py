#!/usr/bin/python3
"""builds.py - the chat load of bench.py against one or more builds of xmpp-core, interleaved.

For a change to the hot path: CPU per routed message, p99 from the schedule and p99 on the wire
(xmpp-load's two latencies), how long the server's threads waited for a CPU while runnable
(schedstat: the machine's contention) and the host's steal (/proc/stat: the CPU time the
hypervisor gave to other guests), at a few rates, each build with a fresh server per round,
the order of the builds reversed every other round, so that the machine's slow minutes fall on
every build alike. With one build: the same figures at fixed rates, as the table's ceiling search
does not give them. The archive is off, as in bench.py's table. Prints a table of medians with
each round's figure (docs/benchmarks.md quotes such tables).

  BUILDS=before:/tmp/before/build/bin,after:build/bin   (required: name:directory of the
                                                          binaries, one or more)
  RATES=1000,16000,32000  ROUNDS=4

A build of an older commit, beside the working tree:
  git worktree add /tmp/before <commit> && make -C /tmp/before build
"""
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B  # noqa: E402
from benchlib import fmt  # noqa: E402

RATES = [int(x) for x in os.environ.get("RATES", "1000,16000,32000").split(",")]
ROUNDS = int(os.environ.get("ROUNDS", "4"))


def builds():
    spec = os.environ.get("BUILDS", "")
    out = []
    for item in spec.split(","):
        name, sep, path = item.partition(":")
        if not sep or not name or not path:
            raise SystemExit("builds.py: BUILDS=name:dir,name:dir (got %r)" % spec)
        path = os.path.abspath(path)
        if not os.access(os.path.join(path, "xmpp-core"), os.X_OK):
            raise SystemExit("builds.py: no xmpp-core binary in " + path)
        out.append((name, path))
    if not out:
        raise SystemExit("builds.py: BUILDS names at least one build")
    return out


def one(name, path, res):
    B.BIN = path
    with B.chat_server("xmpp-core-builds-") as (s, load):
        load.run("online 1 %d starttls scram 50" % B.CHAT_USERS)
        load.run("chat 1000 1 10")  # warm-up
        for r in RATES:
            x = B.chat_step(s, load, r, name + " ")
            res[(name, r)].append((x["cpu_us_per_msg"], x["p99_us"] / 1000,
                                   x["wire_p99_us"] / 1000, x["runq_wait_us_per_msg"] or 0,
                                   100 * (x["steal"] or 0)))


def main():
    bs = builds()
    B.ARCHIVE = False
    res = {(n, r): [] for n, _ in bs for r in RATES}
    for k in range(ROUNDS):
        for name, path in (bs if k % 2 == 0 else bs[::-1]):
            one(name, path, res)
    print("| rate (msg/s) | build | CPU per message (µs), median (rounds) | p99 from the "
          "schedule (ms), median (rounds) | p99 on the wire (ms), median (rounds) | server "
          "threads waiting for a CPU (µs per message), median (rounds) | the host's steal (% of "
          "the machine's CPU time), median (rounds) |")
    print("|---:|---|---|---|---|---|---|")

    def cell(v, digits):
        return "%s (%s)" % (fmt(statistics.median(v), digits),
                            ", ".join(fmt(c, digits) for c in v))

    for r in RATES:
        for name, _ in bs:
            cols = list(zip(*res[(name, r)]))
            print("| %s | %s | %s | %s | %s | %s | %s |" % (
                fmt(r), name, cell(cols[0], 0), cell(cols[1], 1), cell(cols[2], 1),
                cell(cols[3], 1), cell(cols[4], 1)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
