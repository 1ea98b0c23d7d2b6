"""archive_cost.py - what archiving every message (XEP-0313) costs xmpp-core: the server's CPU
per routed message of bench.py's chat load with the archive off and on, on the same machine in
the same run, in interleaved rounds. The issue's target: on / off at most 1.5.

Each round starts each variant afresh (its own database, which keeps what earlier rounds
archived), logs CHAT_USERS sessions in over STARTTLS, warms up for a second, then runs STEPS
chat steps of bench.py's kind (STEP seconds at RATE msg/s each, every message to the bare JID of
a random online user; server CPU = utime + stime of its processes over the step, divided by the
messages delivered; of it, the thread named "store" on its own, from /proc/PID/task). Rounds
alternate the order of the variants.

Knobs (environment):
  ROUNDS=4          rounds
  STEPS=3           chat steps per round and variant
  RATE=1000         messages per second in a step
  ARCHIVE_BASE=DIR  also measure, archive on, the xmpp-core in DIR (another build's bin/): a
                    before/after comparison in the same run
  and bench.py's (CHAT_USERS, STEP, ...).

Prints one line per step while it runs, then a Markdown table and a JSON line.
Run: /usr/bin/python3 bench/xmpp-core/archive_cost.py (also run by bench/xmpp-core/run.sh).
"""
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B  # noqa: E402


def store_ticks(pid):
    """utime + stime, in clock ticks, of the server's thread named "store"; None without one."""
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                st = f.read()
        except OSError:
            continue
        if st[st.index("(") + 1:st.rindex(")")] == "store":
            fields = st.rsplit(")", 1)[1].split()
            return int(fields[11]) + int(fields[12])
    return None


def main():
    rounds = int(os.environ.get("ROUNDS", "4"))
    steps = int(os.environ.get("STEPS", "3"))
    rate = int(os.environ.get("RATE", "1000"))
    variants = [("this build", B.BIN, False), ("this build", B.BIN, True)]
    if os.environ.get("ARCHIVE_BASE"):
        variants.append(("base build", os.environ["ARCHIVE_BASE"], True))
    if not os.access(B.LOAD, os.X_OK):
        B.log("missing %s (bench/xmpp-core/run.sh builds it)" % B.LOAD)
        return 1
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load0 = os.getloadavg()
    cpu = {v: [] for v in range(len(variants))}
    p99 = {v: [] for v in range(len(variants))}
    store = {v: [] for v in range(len(variants))}  # the store thread's share, µs per message
    with tempfile.TemporaryDirectory(prefix="xmpp-core-archive-") as wd:
        os.chmod(wd, 0o755)
        cert, key = B.make_cert(wd)
        servers = []
        for i, (_, bindir, archive) in enumerate(variants):
            d = os.path.join(wd, "v%d" % i)
            os.makedirs(d)
            os.chmod(d, 0o755)
            B.ARCHIVE, B.BIN = archive, bindir  # read when the configuration is written
            s = B.XmppCore(d, cert, key)
            s.create_accounts(B.CHAT_USERS)
            servers.append((s, bindir))
        for rnd in range(rounds):
            order = list(range(len(variants)))
            if rnd % 2:
                order.reverse()
            for v in order:
                s, bindir = servers[v]
                B.BIN = bindir
                s.start()
                load = B.Load(s, wd)
                try:
                    r, _ = load.run("online 1 %d starttls scram %d" % (B.CHAT_USERS,
                                                                        B.LOGIN_CONC))
                    if r["ok"] < B.CHAT_USERS * 0.99:
                        raise RuntimeError("only %d of %d sessions logged in" % (
                            r["ok"], B.CHAT_USERS))
                    load.run("chat %d 1 %g" % (rate, B.DRAIN))  # warm-up, not counted
                    for _ in range(steps):
                        t0 = store_ticks(s.main_pid())
                        x = B.chat_step(s, load, rate, "%s, archive %s: " % (
                            variants[v][0], "on" if variants[v][2] else "off"))
                        t1 = store_ticks(s.main_pid())
                        if x["delivered"]:
                            cpu[v].append(x["cpu_us_per_msg"])
                            p99[v].append(x["p99_us"] / 1000)
                            if t0 is not None and t1 is not None and x["received"]:
                                store[v].append((t1 - t0) * 1e6 / B.CLK_TCK / x["received"])
                finally:
                    load.close()
                    s.stop()
    load1 = os.getloadavg()
    med = {v: statistics.median(cpu[v]) if cpu[v] else None for v in cpu}
    off = med[0]
    print()
    print("Started %s; load average %.2f at the start, %.2f at the end; %d rounds x %d steps "
          "of %d s at %d msg/s, %d sessions." % (started, load0[0], load1[0], rounds, steps,
                                                  B.STEP, rate, B.CHAT_USERS))
    print()
    print("| build | archive | server CPU per routed message (µs), median | each step | "
          "of it the store's thread (µs), median | p99 latency (ms), median | / archive off |")
    print("|---|---|---:|---|---:|---:|---:|")
    for v, (name, _, archive) in enumerate(variants):
        if med[v] is None:
            print("| %s | %s | — | every step failed | — | — | — |" % (
                name, "on" if archive else "off"))
            continue
        print("| %s | %s | %.0f | %s | %s | %.1f | %s |" % (
            name, "on" if archive else "off", med[v], ", ".join("%.0f" % c for c in cpu[v]),
            "%.0f" % statistics.median(store[v]) if store[v] else "—",
            statistics.median(p99[v]), "%.2f" % (med[v] / off) if off else "—"))
    print()
    print(json.dumps({"started": started, "rate": rate, "rounds": rounds, "steps": steps,
                      "variants": [{"build": n, "bin": b, "archive": a, "cpu_us": cpu[v],
                                    "median_us": med[v], "store_thread_us": store[v]}
                                   for v, (n, b, a) in enumerate(variants)]}))
    return 0 if off and med[1] else 1


if __name__ == "__main__":
    sys.exit(main())
