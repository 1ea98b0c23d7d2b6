#!/usr/bin/python3
"""instructions.py - user-space instructions per routed message, by library, counted by callgrind.

Timing on a shared machine moves by a tenth from run to run; the instructions a message costs
move by a few hundredths, so small changes to the hot path are measured here first. The server
runs under valgrind's callgrind twice with the same set-up (CHAT_USERS sessions over STARTTLS,
SCRAM-SHA-1, bench.py's configuration): once without chat, once with MESSAGES one-to-one
messages at RATE msg/s; the difference of the two runs' instruction counts, per object (the
server itself, libcrypto, libssl, expat, libc, libuv...), divided by the messages delivered is
what a message costs. What batching the slower server under valgrind sees differs a little from
run to run: the total moves by about 2 %. The kernel's share is not counted (see syscost.c).

  CHAT_USERS=200  MESSAGES=3000  RATE=1000  TOP=25 (functions listed)
  SUITE_BIN=dir   the build to measure (default build/bin)
  KEEP=dir        keep both runs' callgrind outputs there (base.out, full.out), for
                  `callgrind_annotate --tree=caller` and the like

Needs valgrind (`make bench` installs it). Prints a table and one JSON line.
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B  # noqa: E402

USERS = int(os.environ.get("CHAT_USERS", "200"))
MESSAGES = int(os.environ.get("MESSAGES", "3000"))
RATE = int(os.environ.get("RATE", "1000"))
TOP = int(os.environ.get("TOP", "25"))

# callgrind_annotate's lines: "count (pct) file:function [object]" (pct with --show-percs)
LINE = re.compile(r"\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(\S+?):(\S.*?)\s*\[(.*)\]\s*$")


class Callgrind(B.XmppCore):
    def command(self):
        return ["valgrind", "--tool=callgrind",
                "--callgrind-out-file=" + os.path.join(self.dir, "callgrind.out.%p"),
                os.path.join(B.BIN, "xmpp-core"), "-c", self.cfg]


def costs(path):
    """{(object, function): instructions} of one callgrind output, self cost."""
    out = subprocess.run(["callgrind_annotate", "--threshold=100", path], check=True,
                         capture_output=True, text=True).stdout
    d = {}
    for line in out.splitlines():
        m = LINE.match(line)
        if m:
            k = (os.path.basename(m.group(4)), m.group(3).split(" ")[0])
            d[k] = d.get(k, 0) + int(m.group(1).replace(",", ""))
    if not d:
        raise RuntimeError("no costs read from %s" % path)
    return d


def run(messages):
    """Self costs of the server's process over a run with that many messages, and how many
    arrived."""
    got = 0
    with B.chat_server("xmpp-core-instructions-", cls=Callgrind) as (s, load):
        r, _ = load.run("online 1 %d starttls scram 20" % USERS)
        if r["ok"] < USERS:
            raise RuntimeError("only %d of %d sessions logged in" % (r["ok"], USERS))
        load.run("chat 100 1 10")  # the same warm-up in both runs
        if messages:
            got = B.chat_step(s, load, RATE, "callgrind ", None)["received"]
        load.close()
        s.stop()  # callgrind writes its counts as the server exits
        # the server's own process is the last to exit (account creation runs before it)
        outs = sorted(glob.glob(os.path.join(s.dir, "callgrind.out.*")), key=os.path.getmtime)
        if not outs:
            raise RuntimeError("callgrind wrote nothing in " + s.dir)
        keep = os.environ.get("KEEP")
        if keep:
            os.makedirs(keep, exist_ok=True)
            shutil.copy(outs[-1], os.path.join(keep, "full.out" if messages else "base.out"))
        return costs(outs[-1]), got


def main():
    if not shutil.which("valgrind") or not shutil.which("callgrind_annotate"):
        print("instructions.py: needs valgrind (apt-get install valgrind; `make bench` does)",
              file=sys.stderr)
        return 2
    B.STEP = MESSAGES / RATE  # seconds: one step sends MESSAGES messages
    B.ARCHIVE = False
    B.CHAT_USERS = USERS
    base, _ = run(0)
    full, got = run(MESSAGES)
    if got < MESSAGES * 0.99:
        raise RuntimeError("only %d of %d messages arrived" % (got, MESSAGES))
    per = {k: (full.get(k, 0) - base.get(k, 0)) / got for k in set(base) | set(full)}
    objs = {}
    for (obj, _), v in per.items():
        objs[obj] = objs.get(obj, 0) + v
    total = sum(objs.values())
    print("instructions per routed message: %.0f (%d messages, %d sessions, %d msg/s, %s)" % (
        total, got, USERS, RATE, B.BIN))
    print("| object | instructions per message |")
    print("|---|---:|")
    for obj, v in sorted(objs.items(), key=lambda x: -x[1]):
        if v >= 10:
            print("| %s | %s |" % (obj, B.fmt(v)))
    print("\nfunctions (self cost):")
    for (obj, fn), v in sorted(per.items(), key=lambda x: -x[1])[:TOP]:
        print("%8.0f  %s (%s)" % (v, fn, obj))
    print(json.dumps({"instructions_per_message": round(total), "messages": got,
                      "by_object": {k: round(v) for k, v in objs.items() if v >= 10}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
