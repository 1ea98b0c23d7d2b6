#!/usr/bin/python3
"""workers.py - the chat load of bench.py with one worker loop and with two, interleaved rounds.

Half of that load's messages go between users of different loops when there are two; each such
hand-off goes through the other loop's mailbox and may wake its thread. This measures what that
costs: CPU per routed message and p99 at a few rates, a fresh server per round, the order of the
two alternating. Prints a small table (docs/benchmarks.md quotes it).

  RATES=1000,8000,16000  ROUNDS=3
"""
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B  # noqa: E402

RATES = [int(x) for x in os.environ.get("RATES", "1000,8000,16000").split(",")]
ROUNDS = int(os.environ.get("ROUNDS", "3"))


def one(workers, res):
    def configure(s):
        text = open(s.cfg).read()
        if "workers: 0 " not in text:
            raise RuntimeError("bench.py's configuration no longer sets workers: 0")
        with open(s.cfg, "w") as f:
            f.write(text.replace("workers: 0 ", "workers: %d " % workers))

    with B.chat_server("xmpp-core-workers-", configure=configure) as (s, load):
        load.run("online 1 %d starttls scram 50" % B.CHAT_USERS)
        load.run("chat 1000 1 10")  # warm-up
        for r in RATES:
            x = B.chat_step(s, load, r, "%d worker(s) " % workers)
            res[(workers, r)].append((x["cpu_us_per_msg"], x["p99_us"] / 1000,
                                      x["wire_p99_us"] / 1000))


def main():
    res = {(w, r): [] for w in (1, 2) for r in RATES}
    for k in range(ROUNDS):
        for w in ((1, 2) if k % 2 == 0 else (2, 1)):
            one(w, res)
    print("| rate (msg/s) | CPU per message, 1 worker (µs) | 2 workers (µs) "
          "| p99, 1 worker (ms) | 2 workers (ms) | p99 on the wire, 1 worker (ms) "
          "| 2 workers (ms) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in RATES:
        cells = []
        for w in (1, 2):
            v = [x[0] for x in res[(w, r)]]
            cells.append("%s (%s)" % (B.fmt(statistics.median(v)),
                                      ", ".join(B.fmt(c) for c in v)))
        for k in (1, 2):
            cells += [B.fmt(statistics.median([x[k] for x in res[(w, r)]]), 1)
                      for w in (1, 2)]
        print("| %s | %s |" % (B.fmt(r), " | ".join(cells)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
