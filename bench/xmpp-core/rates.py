#!/usr/bin/python3
"""rates.py - why a routed message costs xmpp-core less CPU the higher the rate: bench.py's chat
load at a few rates on one server, and for each step what the server's threads spent per
delivered message, from /proc alone (no perf):

  user and system CPU time (µs)        /proc/PID/stat
  read and write system calls           /proc/PID/io (syscr, syscw: every call of the read and
                                        write families, the mailbox's eventfd included)
  context switches, voluntary (the      /proc/PID/task/*/status
  thread waited for work) and not
  (the scheduler took the CPU)

and the wire p99 and the host's steal during the step. Prints a small table (docs/benchmarks.md
quotes it). The archive is off, as in bench.py's table.

  COST_RATES=4000,16000,30000,48000,64000   (its own name: run.sh runs workers.py, whose RATES
                                            are other rates, in the same environment)
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B  # noqa: E402
from benchlib import fmt  # noqa: E402

RATES = [int(x) for x in
         os.environ.get("COST_RATES", "4000,16000,30000,48000,64000").split(",")]


def counters(pid):
    """user s, system s (the process's, ended threads included), read calls, write calls,
    voluntary and involuntary switches (summed over the threads: /proc/PID/status counts only
    the first thread's)."""
    user, system = B.proc_times([pid])
    vol = invol = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        vol += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches:"):
                        invol += int(line.split()[1])
        except OSError:
            continue  # a thread that ended in between
    io = {}
    with open("/proc/%d/io" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            io[k] = int(v)
    return [user, system, io["syscr"], io["syscw"], vol, invol]


def main():
    B.ARCHIVE = False
    rows = []
    with B.chat_server("xmpp-core-rates-") as (s, load):
        load.run("online 1 %d starttls scram 50" % B.CHAT_USERS)
        load.run("chat 1000 1 10")  # warm-up
        pid = s.pids()[0]
        for rate in RATES:
            c0 = counters(pid)
            x = B.chat_step(s, load, rate)
            c1 = counters(pid)
            n = x["received"] or 1
            d = [(b - a) / n for a, b in zip(c0, c1)]
            rows.append((rate, d, x))
    print("| rate (msg/s) | user CPU (µs) | system CPU (µs) | reads | writes | switches, "
          "voluntary | switches, involuntary | p99 on the wire (ms) | steal (%) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for rate, d, x in rows:
        print("| %s%s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            fmt(rate), "" if x["ok"] else " (not kept up)", fmt(d[0] * 1e6, 1),
            fmt(d[1] * 1e6, 1), fmt(d[2], 2), fmt(d[3], 2), fmt(d[4], 3), fmt(d[5], 3),
            fmt(x["wire_p99_us"] / 1000, 1), fmt(100 * (x["steal"] or 0), 1)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
