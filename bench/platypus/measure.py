"""measure.py - run one sender command to completion and print one JSON line about it.

    measure.py --name NAME [--watch PID]... [--h2load-log FILE] -- CMD ARGS...

The sender's CPU seconds and peak RSS come from wait4() (the whole process, however it reports
itself). Throughput and latency: a sender that prints a JSON line last (aioapns_send.py,
node_apn_send.js) reports count/ok/seconds/p50/p99 itself; h2load's text is parsed, and with
--h2load-log (its --log-file: start, status, microseconds per request) p50/p99 are computed.
Each --watch PID (the mock, later platypus) gets its CPU seconds over the run and its RSS
(VmRSS at the end, VmHWM) from /proc."""

import argparse
import json
import os
import re
import subprocess
import sys
import time


def proc_cpu(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return None


def proc_mem(pid):
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM"):
                    out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


def parse_h2load(text, log):
    r = {}
    m = re.search(r"finished in ([\d.]+)(m?s)", text)
    if m:
        r["seconds"] = float(m.group(1)) / (1000 if m.group(2) == "ms" else 1)
    m = re.search(r"requests: (\d+) total.*?(\d+) succeeded, (\d+) failed", text)
    if m:
        r["count"], r["ok"], r["failed"] = int(m.group(1)), int(m.group(2)), int(m.group(3))
    m = re.search(r"status codes: (\d+) 2xx", text)
    if m:
        r["ok"] = int(m.group(1))  # "succeeded" counts 4xx answers too
    if "seconds" in r and r.get("ok"):
        r["rate"] = round(r["ok"] / r["seconds"], 1)
    if log and os.path.exists(log):
        lat = []
        with open(log) as f:
            for line in f:
                p = line.split()
                if len(p) == 3 and p[1] == "200":
                    lat.append(int(p[2]) / 1000.0)
        lat.sort()
        if lat:
            r["p50_ms"] = round(lat[len(lat) // 2], 2)
            r["p99_ms"] = round(lat[min(len(lat) - 1, int(0.99 * len(lat)))], 2)
    return r


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--name", required=True)
    p.add_argument("--watch", type=int, action="append", default=[])
    p.add_argument("--h2load-log")
    p.add_argument("--timeout", type=float, default=300)
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    a = p.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    before = {pid: proc_cpu(pid) for pid in a.watch}
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=a.timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        err += b"\nmeasure.py: killed after %d s" % a.timeout
    wall = time.monotonic() - t0
    r = {"name": a.name, "rc": proc.returncode, "wall_s": round(wall, 2)}
    text = out.decode(errors="replace")
    last = text.strip().splitlines()[-1] if text.strip() else ""
    if last.startswith("{"):
        r.update(json.loads(last))
    else:
        r.update(parse_h2load(text, a.h2load_log))
    for pid in a.watch:
        c = proc_cpu(pid)
        w = {"cpu_s": round(c - before[pid], 2) if c is not None and before[pid] is not None
             else None}
        w.update(proc_mem(pid))
        r.setdefault("watch", {})[str(pid)] = w
    if proc.returncode != 0:
        r["stderr"] = err.decode(errors="replace")[-400:]
    return r


if __name__ == "__main__":
    import resource
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    res = main()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    # the sender is this process's only child: its CPU and peak RSS as the kernel counted them
    res["sender_cpu_s"] = round(ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime, 2)
    res["sender_maxrss_kb"] = ru1.ru_maxrss
    print(json.dumps(res))
    sys.exit(0)
