"""report.py - the push and call section of docs/benchmarks.md, from the JSON lines of
push_latency.py (one per path and round) and call_setup.py (one line), rewritten between its
markers (benchlib.write_section). Run by run.sh; --doc - prints it instead."""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchlib import fmt, machine, median, write_section  # noqa: E402

BEGIN, END = "<!-- push-bench:begin -->", "<!-- push-bench:end -->"
TARGET_P99_MS = 50
LABEL = {"component": "XEP-0114 component (IQ publish)",
         "rest": "REST hand-off (`push.rest`, HTTPS)"}


def load(path):
    out = []
    if path and os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    out.append(json.loads(line))
    return out


def push_table(rows):
    paths = [p for p in ("component", "rest") if any(r["path"] == p for r in rows)]
    if not paths:
        return "Not measured in this run.\n"
    r0 = rows[0]
    rounds = max(r["round"] for r in rows)
    text = ("%s users, each with one push registration; %s messages/s for %s s (%s messages, "
            "one per user each %.0f s, so every message is the first of its burst), %d round(s) "
            "per path; medians over rounds.\n\n" % (
                fmt(r0["users"]), fmt(r0["rate"]), r0["seconds"],
                fmt(r0["rate"] * r0["seconds"]), r0["users"] / r0["rate"], rounds))
    text += ("| path | p50 ms | p99 ms | max ms | pushes at APNs / expected | "
             "xmpp-core CPU ms/push | platypus CPU ms/push | p99 under %d ms |\n"
             "|---|---|---|---|---|---|---|---|\n" % TARGET_P99_MS)
    for p in paths:
        rs = [r for r in rows if r["path"] == p]
        p99 = median([r["p99_ms"] for r in rs])
        text += "| %s | %s | %s | %s | %s / %s | %s | %s | %s |\n" % (
            LABEL[p], fmt(median([r["p50_ms"] for r in rs]), 1), fmt(p99, 1),
            fmt(median([r["max_ms"] for r in rs]), 1),
            fmt(sum(r["received"] for r in rs)), fmt(sum(r["expected"] for r in rs)),
            fmt(median([r["xmpp_core_cpu_ms_per_push"] for r in rs]), 2),
            fmt(median([r["platypus_cpu_ms_per_push"] for r in rs]), 2),
            "n/a" if p99 is None else ("yes" if p99 < TARGET_P99_MS else "**no**"))
    failed = {}
    for r in rows:
        for k, v in r.get("failed_at_xmpp_core", {}).items():
            failed.setdefault(r["path"], {}).setdefault(k, 0)
            failed[r["path"]][k] += v
    for p in paths:
        if p in failed:
            text += ("\nPushes xmpp-core counted as failed on the %s path, all rounds: %s "
                     "(`xmpp_push_results_total`; a failed push is not retried).\n" % (
                         p, ", ".join("%s %s" % (fmt(v), k) for k, v in sorted(failed[p].items()))))
    text += "\nEach round (p50 / p99 / max ms, pushes received):\n\n"
    for p in paths:
        text += "- %s: %s\n" % (p, "; ".join(
            "%s / %s / %s (%s)" % (fmt(r["p50_ms"], 1), fmt(r["p99_ms"], 1),
                                   fmt(r["max_ms"], 1), fmt(r["received"]))
            for r in sorted((r for r in rows if r["path"] == p), key=lambda r: r["round"])))
    return text


def call_table(c):
    if not c:
        return "Not measured in this run.\n"
    if c.get("skipped"):
        return "Not measured in this run: %s.\n" % c["skipped"]
    m = c["median_ms"]
    rows = [
        ("propose reaches the callee (XMPP)", "propose", "suite"),
        ("callee's XEP-0215 credentials (XMPP round trip)", "callee_extdisco", "suite"),
        ("callee's STUN binding at icicle", "callee_stun", "suite"),
        ("callee's TURN allocation at icicle", "callee_turn", "suite"),
        ("callee's other ICE gathering (host candidates)", "callee_gather_other", "ICE"),
        ("proceed reaches the caller (XMPP)", "proceed", "suite"),
        ("caller still gathering after proceed", "caller_wait", "both"),
        ("session-initiate to session-accept (XMPP, two IQs)", "jingle", "suite"),
        ("caller's ICE connectivity checks", "ice_checks", "ICE"),
        ("callee's checks still running after the caller's first datagram", "callee_checks_after",
         "ICE"),
        ("first datagram through the relay to the callee", "first_media", "relay"),
    ]
    text = ("%d calls in a row between the same two logged-in phones, %d of them over icicle's "
            "relay; medians (ms) of each step on the critical path:\n\n"
            "| step | share | median ms |\n|---|---|---|\n" % (c["calls"], c["relayed"]))
    for label, key, share in rows:
        text += "| %s | %s | %s |\n" % (label, share, fmt(m.get(key), 1))
    text += "| **propose to first media (measured)** | | **%s** |\n" % fmt(m.get("total"), 1)
    text += ("\nThe suite's share (XMPP round trips, XEP-0215, STUN and TURN at icicle): "
             "**%s ms**; ICE's (aioice's gathering and connectivity checks): **%s ms**. Off the "
             "critical path, the caller's own credentials, STUN binding and TURN allocation "
             "(made while the callee is being reached): %s, %s and %s ms.\n" % (
                 fmt(m.get("suite"), 1), fmt(m.get("ice"), 1), fmt(m.get("caller_extdisco"), 1),
                 fmt(m.get("caller_stun"), 1), fmt(m.get("caller_turn"), 1)))
    return text


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--push")
    ap.add_argument("--call")
    ap.add_argument("--doc", default="docs/benchmarks.md")
    ap.add_argument("--command", default="bench/push/run.sh")
    ap.add_argument("--load", default="")
    ap.add_argument("--load-after", default="")
    ap.add_argument("--notes", default="")
    a = ap.parse_args()
    push = load(a.push)
    calls = load(a.call)
    text = BEGIN + "\n## Push latency and call set-up (xmpp-core, platypus, icicle)\n\n"
    text += ("Measured %s on %s (a shared machine: other builds and tests ran meanwhile; load "
             "average %s before, %s after). Reproduce with `%s` (release builds from `make`; "
             "root for the call part). Written by bench/push/report.py.\n\n" % (
                 time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), machine(), a.load or "?",
                 a.load_after or "?", a.command))
    text += """### Push latency: a message to a user who is away, to the request at APNs

From the moment a sender writes a chat message to xmpp-core (plain c2s on loopback) to the
moment the mock APNs (`build/bin/apns-mock --arrivals`, the C mock) has read the whole request
platypus made of it, matched by the recipient's device token. xmpp-core with `push.privacy: none`,
`push.coalesce: 2s` (the defaults) and `push.rewake: 0s`; platypus with one APNs app pointing at
the mock. The registrations: one made by a client's `<enable/>` IQ, the others copied
from it into the stopped server's store (push_latency.py says how). A warm-up of 100 pushes to
other users opens the connections first; the CPU is the processes' utime + stime over the
measured load (for xmpp-core it includes taking each message in and storing it offline).

"""
    text += push_table(push)
    if a.notes:
        text += "\n" + a.notes.strip() + "\n"
    text += """
### Call set-up through two NATs

The topology of tests/integration/test_call_nat.py (network namespaces, nftables masquerade on
both NATs, no path between the homes but icicle's relay); the phones are slixmpp + aioice
(bench/push/call_peer_timed.py): the caller proposes (JMI), fetches its credentials and gathers
while it waits; the callee, on the propose, fetches credentials (XEP-0215), gathers (host, STUN
and a TURN allocation at icicle) and proceeds; then Jingle session-initiate/accept with the
candidates, ICE checks, and the first datagram. Wall-clock stamps of both phones (one machine).

"""
    text += call_table(calls[0] if calls else None)
    text += END + "\n"
    write_section(a.doc, BEGIN, END, text, lambda m: print("bench/push: " + m))
    return 0


if __name__ == "__main__":
    sys.exit(main())
