"""archive_growth.py - how the archive's cost moves as the archive grows: one xmpp-core with the
archive on, CHAT_USERS sessions over STARTTLS, then STEPS consecutive chat steps of bench.py's
kind at RATE msg/s on the same server (each step archives 2 x RATE x STEP rows more). For each
step: the server's CPU per routed message, and its store thread's (the thread named "store",
user and system), from /proc.

Knobs (environment): STEPS=10, RATE=4000, GROWTH_BIN=DIR (another build's bin/; builds
without named threads show only the server's total), and bench.py's.
Run: /usr/bin/python3 bench/xmpp-core/archive_growth.py
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B  # noqa: E402


def store_ticks(pid):
    """(utime, stime) in clock ticks of pid's thread named store, or None."""
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                if f.read().strip() != "store":
                    continue
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                x = f.read().rsplit(")", 1)[1].split()
            return int(x[11]), int(x[12])
        except OSError:
            continue
    return None


def main():
    steps = int(os.environ.get("STEPS", "10"))
    rate = int(os.environ.get("RATE", "4000"))
    tick = os.sysconf("SC_CLK_TCK")
    B.ARCHIVE = True
    if os.environ.get("GROWTH_BIN"):
        B.BIN = os.environ["GROWTH_BIN"]
    out = []
    with B.chat_server("xmpp-core-growth-") as (s, load):
        load.run("online 1 %d starttls scram %d" % (B.CHAT_USERS, B.LOGIN_CONC))
        rows = 0
        for i in range(steps):
            a = store_ticks(s.main_pid())
            r = B.chat_step(s, load, rate, "step %d: " % (i + 1))
            b = store_ticks(s.main_pid())
            got = r["received"] or 1
            rows += 2 * r["received"]
            step = {"step": i + 1, "rows_after": rows, "server_us": r["cpu_us_per_msg"]}
            if a and b:
                step["store_user_us"] = (b[0] - a[0]) * 1e6 / tick / got
                step["store_sys_us"] = (b[1] - a[1]) * 1e6 / tick / got
            out.append(step)
    print()
    print("| step | rows the steps archived so far | server CPU per routed message (µs) | "
          "store thread, user + system (µs) |")
    print("|---:|---:|---:|---:|")
    for st in out:
        store = ("%.0f + %.0f" % (st["store_user_us"], st["store_sys_us"])
                 if "store_user_us" in st else "—")
        print("| %d | %d | %.0f | %s |" % (st["step"], st["rows_after"], st["server_us"] or 0,
                                           store))
    print()
    print(json.dumps({"rate": rate, "steps": out}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
