"""report.py - medians of the platypus benchmark's runs (measure.py's JSON lines) into the
platypus section of docs/benchmarks.md: only the text between "<!-- BEGIN bench platypus -->" and
"<!-- END bench platypus -->" is replaced (the markers are appended if missing), so the intro and
the other benchmarks' sections stay as they are."""

import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys

BEGIN = "<!-- BEGIN bench platypus -->"
END = "<!-- END bench platypus -->"


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True,
                              timeout=20).stdout.strip()
    except Exception:
        return ""


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def med(runs, key, scale=1.0):
    v = [r[key] * scale for r in runs if isinstance(r.get(key), (int, float))]
    return statistics.median(v) if v else None


def fmt(v, nd=0):
    if v is None:
        return "–"
    return f"{v:,.{nd}f}"


def watched(runs, index, key):
    """Median of a watched process's figure: index 0 is the mock, 1 platypus."""
    v = []
    for r in runs:
        w = list((r.get("watch") or {}).values())
        if len(w) > index and isinstance(w[index].get(key), (int, float)):
            v.append(w[index][key])
    return statistics.median(v) if v else None


def mock_cost(runs):
    """The mock's CPU per request in the ceiling runs, and what that allows on every core: a
    figure that other load on the machine disturbs far less than a rate."""
    v = []
    for r in runs:
        w = list((r.get("watch") or {}).values())
        if r.get("ok") and w and isinstance(w[0].get("cpu_s"), (int, float)) and w[0]["cpu_s"]:
            v.append(w[0]["cpu_s"] / r["ok"] * 1e6)
    if not v:
        return ""
    us = statistics.median(v)
    return (f" The mock spent {us:.1f} µs of CPU per request at the ceiling, so it could answer "
            f"roughly {round(os.cpu_count() * 1e6 / us, -4):,.0f} "
            "requests/s with every core to itself: it is not what limits any sender here.")


def compare_base(runs, a):
    """This build against PLATYPUS_BASE, sender by sender, from the same rounds: medians of each,
    and this build's over the base's."""
    ok = lambda n: [r for r in runs.get(n, []) if r.get("rc") == 0 and r.get("ok")]

    def plat_cpu_10k(rs):
        v = []
        for r in rs:
            w = list((r.get("watch") or {}).values())
            if len(w) > 1 and isinstance(w[1].get("cpu_s"), (int, float)) and r.get("ok"):
                v.append(w[1]["cpu_s"] / r["ok"] * 10000)
        return statistics.median(v) if v else None

    def ratio(x, y, nd=2):
        return f"{x / y:.{nd}f}" if x is not None and y else "–"

    rev = sh("git -C %s rev-parse --short HEAD" % os.path.dirname(os.path.abspath(a.base)))
    out = [
        f"This build ({sh('git rev-parse --short HEAD') or '?'}) against `PLATYPUS_BASE` "
        f"({a.base}{', built from ' + rev if rev else ''}), the same configuration on the same "
        "mock, each sender run right after this build's in every round (medians; ratio = this "
        "build ÷ base; platypus CPU is its user + system time per 10,000 notifications):",
        "",
        "| sender | notifications/s: this, base, ratio | p50 ms: this, base | p99 ms: this, base "
        "| platypus CPU s per 10k: this, base, ratio | platypus peak RSS MB: this, base | "
        "runs ok |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for new, base, label in (
            ("platypus", "base", "REST, h2load -c 8 -m 100 (saturation)"),
            ("platypus-latency", "base-latency", f"REST at {a.lat_rate:,}/s"),
            ("platypus-component", "base-component", "component, 2000 in flight (saturation)"),
            ("platypus-component-latency", "base-component-latency",
             f"component at {a.lat_rate:,}/s")):
        n, b = ok(new), ok(base)
        if not n or not b:
            out.append(f"| {label} | failed ({len(n)}/{len(runs.get(new, []))} and "
                       f"{len(b)}/{len(runs.get(base, []))} runs ok) | | | | | |")
            continue
        nr, br = med(n, "rate"), med(b, "rate")
        nc, bc = plat_cpu_10k(n), plat_cpu_10k(b)
        nh, bh = watched(n, 1, "VmHWM"), watched(b, 1, "VmHWM")
        out.append(
            f"| {label} | {fmt(nr)}, {fmt(br)}, **{ratio(nr, br)}** | "
            f"{fmt(med(n, 'p50_ms'), 2)}, {fmt(med(b, 'p50_ms'), 2)} | "
            f"{fmt(med(n, 'p99_ms'), 2)}, {fmt(med(b, 'p99_ms'), 2)} | "
            f"{fmt(nc, 3)}, {fmt(bc, 3)}, **{ratio(nc, bc)}** | "
            f"{fmt(nh / 1024 if nh else None, 1)}, {fmt(bh / 1024 if bh else None, 1)} | "
            f"{len(n)}/{len(runs.get(new, []))}, {len(b)}/{len(runs.get(base, []))} |")
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--results", required=True)
    p.add_argument("--doc", required=True)
    p.add_argument("--command", required=True)
    p.add_argument("--rounds", type=int, required=True)
    p.add_argument("--platypus", required=True)
    p.add_argument("--mock-line", default="")
    p.add_argument("--lat-rate", type=int, default=25000)
    p.add_argument("--aioapns", default="")
    p.add_argument("--node", default="")
    p.add_argument("--ceiling", default="")
    p.add_argument("--load", default="")
    p.add_argument("--load-after", default="")
    p.add_argument("--base", default="", help="PLATYPUS_BASE: the binary compared with")
    p.add_argument("--print", action="store_true")
    a = p.parse_args()

    runs = {}
    with open(a.results) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                runs.setdefault(r["name"], []).append(r)

    def row(name, label, how):
        rs = [r for r in runs.get(name, []) if r.get("rc") == 0 and r.get("ok")]
        n = len(runs.get(name, []))
        if not rs:
            return f"| {label} | {how} | failed ({n} runs) | | | | | | | |"
        rate = med(rs, "rate")
        cpu10k = statistics.median(r["sender_cpu_s"] / r["ok"] * 10000 for r in rs)
        return (f"| {label} | {how} | **{fmt(rate)}** | {fmt(med(rs, 'p50_ms'), 2)} | "
                f"{fmt(med(rs, 'p99_ms'), 2)} | {fmt(med(rs, 'sender_cpu_s'), 2)} "
                f"({fmt(cpu10k, 2)}) | {fmt(med(rs, 'sender_maxrss_kb', 1 / 1024), 1)} | "
                f"{fmt(watched(rs, 0, 'cpu_s'), 2)} | "
                f"{plat(rs) if name.startswith('platypus') else ''} | {len(rs)}/{n} |")

    def plat(rs):
        cpu, hwm = watched(rs, 1, "cpu_s"), watched(rs, 1, "VmHWM")
        return "" if cpu is None else f"{fmt(cpu, 2)} s, {fmt(hwm / 1024 if hwm else None, 1)} MB"

    rates = {k: med([r for r in v if r.get("rc") == 0], "rate") for k, v in runs.items()}
    faster = max([x for x in (rates.get("aioapns"), rates.get("node-apn")) if x] or [0])
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    vers = {
        "h2load": sh("h2load --version | head -n 1"),
        "aioapns": sh("dpkg-query -W -f='${Version}' python3-aioapns"),
        "node-apn": sh("node -p \"require('%s/node_modules/@parse/node-apn/package.json').version\""
                       % os.path.dirname(os.path.abspath(__file__))),
        "node": sh("node --version"),
        "python": sh("/usr/bin/python3 --version"),
    }
    lines = [
        BEGIN,
        "## platypus: APNs notifications per second",
        "",
        f"Measured {now} with `{a.command}` on this machine: {os.cpu_count()} cores "
        f"({sh('nproc')} usable), {cpu_model()}, {platform.system()} {platform.release()}. "
        f"{a.rounds} round(s), each running every sender in turn against one mock process; "
        "the table gives the medians. Senders, the mock and h2load share the same cores. "
        f"Load average (1, 5, 15 min) before the run {a.load}, after {a.load_after}"
        + (" (other work was running: absolute numbers are low, compare ratios)."
           if a.load and float(a.load.split()[0]) > 0.7 else "."),
        "",
        "The mock is `build/bin/apns-mock` (`tools/apns-mock.c`): HTTP/2 over TLS, 2 threads, "
        "like Apple 1 stream until the first success and 1000 after; it checks method, path, "
        "device token, topic, push type, payload size and the ES256 provider token (verified "
        "once per distinct token, then cached) and answers 200 with an `apns-id`. Every "
        "notification is a 95-byte alert to one device token, with token auth.",
        "",
        "| sender | how | notifications/s | p50 ms | p99 ms | sender CPU s (per 10k) | "
        "sender RSS MB | mock CPU s | platypus CPU, peak RSS | runs ok |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        row("ceiling", "h2load → mock (ceiling)", a.ceiling),
        row("latency", f"h2load → mock at {a.lat_rate:,}/s", "h2load --rps, 4 connections; "
            "request → answer"),
        row("aioapns", f"python3-aioapns {vers['aioapns']} → mock", a.aioapns),
        row("node-apn", f"@parse/node-apn {vers['node-apn']} → mock", a.node),
    ]
    if a.platypus == "measured":
        lines.append(row("platypus", "h2load → platypus REST → mock", "h2load -t 1 -c 8 -m 100, "
                         "POST /v3/notification (MongoosePush v3 JSON)"))
        lines.append(row("platypus-latency", f"h2load → platypus REST → mock at "
                         f"{a.lat_rate:,}/s", "the added latency is this row minus the "
                         "direct one"))
        lines.append(row("platypus-component", "component_send.py → platypus component → mock",
                         "XEP-0114, XEP-0357 publish IQs, 2000 in flight (IQ → result)"))
        lines.append(row("platypus-component-latency", "component_send.py → platypus component "
                         f"→ mock at {a.lat_rate:,}/s", "paced IQs; the sender is Python, its "
                         "own time is in the figures"))
    else:
        lines.append(f"| platypus (REST, component) | | {a.platypus} | | | | | | | |")
    lines += [
        "",
        f"Notifications/s counts answers with status 200 over the sender's own run time. p50/p99: "
        "per notification, from the client's send call to its result (h2load: request to "
        "response). Sender CPU is user + system seconds of the whole sender process (wait4), "
        "RSS its peak. Versions: "
        f"{vers['h2load'] or 'h2load ?'}, node {vers['node']}, {vers['python']}.",
    ]
    ok_runs = lambda n: [r for r in runs.get(n, []) if r.get("rc") == 0 and r.get("ok")]
    if a.platypus == "measured" and ok_runs("platypus-latency") and ok_runs("latency"):
        d50 = med(ok_runs("platypus-latency"), "p50_ms") - med(ok_runs("latency"), "p50_ms")
        d99 = med(ok_runs("platypus-latency"), "p99_ms") - med(ok_runs("latency"), "p99_ms")
        lines += ["", f"Latency added by platypus at {a.lat_rate:,}/s (its median p50/p99 minus "
                  f"those of h2load straight at the mock): p50 {d50:+.2f} ms, p99 {d99:+.2f} ms"
                  + (" — but platypus did not keep up with that rate, so this is queueing."
                     if (med(ok_runs("platypus-latency"), "rate") or 0) < 0.95 * a.lat_rate
                     else ".")]
    if a.platypus == "measured" and ok_runs("platypus-component-latency") and ok_runs("latency"):
        c50 = med(ok_runs("platypus-component-latency"), "p50_ms") - med(ok_runs("latency"),
                                                                         "p50_ms")
        c99 = med(ok_runs("platypus-component-latency"), "p99_ms") - med(ok_runs("latency"),
                                                                         "p99_ms")
        lines += ["", f"The same through the component at {a.lat_rate:,}/s: p50 {c50:+.2f} ms, "
                  f"p99 {c99:+.2f} ms (an upper bound: the Python sender's own delays count)."]
    if a.base and a.platypus == "measured":
        lines += [""] + compare_base(runs, a)
    m = re.search(r"2xx (\d+)", a.mock_line)
    sent = sum(r.get("ok") or 0 for v in runs.values() for r in v)
    if m and int(m.group(1)) < sent:
        lines += ["", f"**Warning**: the senders counted {sent:,} successes but the mock answered "
                  f"only {int(m.group(1)):,} requests with 200: something answered without "
                  "delivering."]
    if faster:
        lines.append("")
        lines.append(f"The issue's target for platypus: at least 50,000/s and at least 3× the "
                     f"faster direct client here ({fmt(faster)}/s → {fmt(3 * faster)}/s), "
                     "p99 added latency under 5 ms at half that rate, RSS under 30 MB.")
    lines += [
        "",
        "Known behaviour of the clients, seen here: aioapns 2.2 lowers its per-connection stream "
        "budget to Apple's initial 1 and, when the server then raises the limit to 1000, its "
        "`DynamicBoundedSemaphore` caps the released slots at the old bound, so each connection "
        "keeps about one stream in flight: its throughput comes from its 10 connections. "
        "node-apn is run with 100 sends in flight; far more breaks its HTTP/2 session. "
        "h2load's --rps sends each connection's requests in bursts at its timer ticks, up to "
        "the streams it may have open (-m 100 here): platypus, one event loop, works through a "
        "burst in order, so most of its added p50 is the time to handle a whole burst (with "
        "-m 10 the bursts, and that delay, are much smaller).",
        f"Mock at exit: `{a.mock_line}`." + mock_cost(runs.get("ceiling", [])),
        END,
    ]
    section = "\n".join(lines) + "\n"
    if a.print:
        sys.stdout.write(section)
        return 0
    with open(a.doc) as f:
        doc = f.read()
    m = re.search(re.escape(BEGIN) + r".*?" + re.escape(END) + r"\n?", doc, re.S)
    if m:
        doc = doc[:m.start()] + section + doc[m.end():]
    else:
        doc = doc.rstrip("\n") + "\n\n" + section
    tmp = a.doc + ".tmp-platypus"
    with open(tmp, "w") as f:
        f.write(doc)
    os.replace(tmp, a.doc)
    print("bench: platypus: wrote its section of %s" % a.doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
