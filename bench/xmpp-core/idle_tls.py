#!/usr/bin/python3
"""idle_tls.py - 100,000 idle TLS sessions held by xmpp-core, their memory measured.

One process cannot hold them on a machine whose open-file limit is lower than that (each
session is a socket, on both sides), so the sessions are spread over as many xmpp-core
processes as the limit asks, each with its own accounts, ports and database, and over as many
load generators. What is reported is the sum over the server processes: of RSS (which counts a
shared library's pages once per process, so it over-states) and of PSS (which shares them out).
One process holding every session would keep the same per-session state and only one copy of
what each process has once (its libraries, its store, its loops), so it should need no more.

The sessions come up in quarters (STARTTLS, a full TLS 1.3 handshake, SASL PLAIN, bind,
roster get, initial presence: what bench.py's large run does), 200 logins in flight per
process; after each quarter and IDLE_QUIET seconds, RSS and PSS are read, and at the end the
servers' own gauge of bound sessions is read back from their metrics, so that sessions lost on
the way cannot pass for memory saved.

  IDLE_SESSIONS=100000  sessions in all          IDLE_QUIET=10  seconds before each reading
  IDLE_PER_PROCESS=N    at most N sessions per process (default: the open-file limit - 1,000)
  BENCH_DOC=-           print the section instead of writing docs/benchmarks.md
"""
import concurrent.futures
import math
import os
import re
import resource
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B  # noqa: E402
from benchlib import fmt, machine, write_section  # noqa: E402

TOTAL = int(os.environ.get("IDLE_SESSIONS", "100000"))
QUIET = float(os.environ.get("IDLE_QUIET", "10"))
IN_FLIGHT = 200
BEGIN, END = "<!-- xmpp-core-idle:begin -->", "<!-- xmpp-core-idle:end -->"


def log(msg):
    sys.stderr.write("bench/xmpp-core/idle_tls: %s\n" % msg)
    sys.stderr.flush()


def pss_kib(pids):
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/smaps_rollup" % pid) as f:
                m = re.search(r"^Pss:\s+(\d+) kB", f.read(), re.M)
                total += int(m.group(1)) if m else 0
        except OSError:
            pass
    return total


def bound_sessions(s):
    """The server's xmpp_sessions gauge (all listeners), from its admin API."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % s.admin, timeout=10) as r:
        text = r.read().decode()
    return sum(float(v) for v in re.findall(r"^xmpp_sessions(?:\{[^}]*\})? (\S+)$", text, re.M))


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    # listeners, database, loops, log: well under a thousand descriptors besides the sessions
    per_max = int(os.environ.get("IDLE_PER_PROCESS", "0")) or hard - 1000
    procs = max(1, math.ceil(TOTAL / per_max))
    shares = [TOTAL // procs + (1 if i < TOTAL % procs else 0) for i in range(procs)]
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    log("%d sessions over %d processes (open-file limit %d)" % (TOTAL, procs, hard))
    servers, loads = [], []
    with tempfile.TemporaryDirectory(prefix="xmpp-core-idle-") as wd:
        os.chmod(wd, 0o755)
        cert, key = B.make_cert(wd)
        pool = concurrent.futures.ThreadPoolExecutor(procs)
        try:
            for i in range(procs):
                d = os.path.join(wd, "p%d" % i)
                os.makedirs(d)
                os.chmod(d, 0o755)
                servers.append(B.XmppCore(d, cert, key))
            t0 = time.monotonic()
            list(pool.map(lambda x: x[0].create_accounts(x[1]), zip(servers, shares)))
            log("%d accounts created in %.0f s" % (TOTAL, time.monotonic() - t0))
            for s in servers:
                s.start()
                loads.append(B.Load(s, os.path.dirname(s.dir)))
            time.sleep(2)
            pids = [p for s in servers for p in s.pids()]
            points = [(0, B.proc_rss_kib(pids), pss_kib(pids))]
            done = [0] * procs
            failed = 0
            took = 0.0  # logging in, the quiet spells left out
            for q in range(4):
                def step(i):
                    n = shares[i] // 4 + (shares[i] % 4 if q == 3 else 0)
                    r, _ = loads[i].run("online %d %d starttls plain %d"
                                        % (done[i] + 1, n, IN_FLIGHT), timeout=3600)
                    return i, r
                t0 = time.monotonic()
                for i, r in pool.map(step, range(procs)):
                    done[i] += r["ok"]
                    if r["failed"]:
                        failed += r["failed"]
                        log("process %d: %d logins failed: %s" % (i, r["failed"],
                                                                  r.get("last_error")))
                took += time.monotonic() - t0
                time.sleep(QUIET)
                points.append((sum(done), B.proc_rss_kib(pids), pss_kib(pids)))
                log("%d sessions: RSS %d MiB, PSS %d MiB" % (points[-1][0], points[-1][1] // 1024,
                                                           points[-1][2] // 1024))
            bound = sum(bound_sessions(s) for s in servers)
            per_proc_rss = [B.proc_rss_kib(s.pids()) for s in servers]
            for ld in loads:
                ld.run("close")
        finally:
            for ld in loads:
                ld.close()
            for s in servers:
                s.stop()
            pool.shutdown()
    res = {"started": started, "total": TOTAL, "procs": procs, "shares": shares,
           "points": points, "bound": bound, "failed": failed, "took_s": took,
           "per_proc_rss_kib": per_proc_rss, "limit": hard}
    print(res)
    write_section(B.DOC, BEGIN, END, render(res), log)
    return 0 if failed == 0 and bound == points[-1][0] else 1


def render(r):
    last = r["points"][-1]
    first = r["points"][0]
    mib = lambda k: k / 1024.0  # noqa: E731
    gib2, gb2 = 2 * 1024 * 1024, 2e9 / 1024  # 2 GiB and 2 x 10^9 bytes, in KiB
    verdict = lambda limit: "under" if last[1] < limit and last[0] >= 100000 else "not under"  # noqa: E731
    lines = [
        BEGIN,
        "### xmpp-core: %s idle TLS sessions (issue 11)" % fmt(r["total"]),
        "",
        "Measured %s on %s with `bench/xmpp-core/idle_tls.py` (in `make bench`). The open-file "
        "limit here is %s and cannot be raised (no CAP_SYS_RESOURCE), so the sessions are held "
        "by %d xmpp-core processes (%s sessions each, their own accounts, ports and databases, "
        "2 worker loops each) and as many load generators. Every session: STARTTLS with a full "
        "TLS 1.3 handshake, SASL PLAIN, bind, roster get, initial presence, then quiet."
        % (r["started"], machine(), fmt(r["limit"]), r["procs"],
           " / ".join(fmt(n) for n in sorted(set(r["shares"]))), ),
        "",
        "| sessions | RSS, sum over the processes (MiB) | PSS, sum (MiB) |",
        "|---:|---:|---:|",
    ]
    for n, rss, pss in r["points"]:
        lines.append("| %s | %s | %s |" % (fmt(n), fmt(mib(rss), 1), fmt(mib(pss), 1)))
    lines += [
        "",
        "The logins took %.0f s in all. After the last quarter the servers' own gauge "
        "`xmpp_sessions` counted %s bound sessions (%s logins failed); each process had %s to %s "
        "MiB of RSS. With all %s up: RSS %s MiB (%s GiB), PSS %s MiB (%s GiB); above the "
        "processes' own start (%s MiB of RSS for %d processes with no session) %s KiB of RSS per "
        "session. The target, 100,000 idle TLS sessions in under 2 GB: %s MiB of RSS is **%s 2 GiB** "
        "(2,048 MiB) and **%s 2 x 10^9 bytes** (1,907 MiB). A single process holding them all "
        "would keep the same per-session state and one copy, not %d, of its start."
        % (r["took_s"], fmt(r["bound"]), fmt(r["failed"]), fmt(mib(min(r["per_proc_rss_kib"])), 1),
           fmt(mib(max(r["per_proc_rss_kib"])), 1), fmt(last[0]), fmt(mib(last[1]), 1),
           fmt(last[1] / 1048576.0, 2), fmt(mib(last[2]), 1), fmt(last[2] / 1048576.0, 2),
           fmt(mib(first[1]), 1), r["procs"],
           fmt((last[1] - first[1]) / max(1, last[0]), 1),
           fmt(mib(last[1]), 1), verdict(gib2), verdict(gb2), r["procs"]),
        END,
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
