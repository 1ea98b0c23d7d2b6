"""benchlib.py - what the benchmarks' reports share: medians that skip missing values, numbers
with thousands separators, the machine's description, and rewriting one marked section of
docs/benchmarks.md. Imported by bench/icicle/bench.py and bench/xmpp-core/bench.py."""

import os
import platform
import statistics
import sys


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(v, digits=0):
    if v is None:
        return "n/a"
    return "{:,.{}f}".format(v, digits)


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%d x %s, Linux %s" % (os.cpu_count() or 0, model, platform.release())


def write_section(doc, begin, end, text, log):
    """Put text in place of what stands between begin and end in doc (appended when the
    markers are not there yet); doc "-" prints it instead."""
    if doc == "-":
        sys.stdout.write(text)
        return
    old = open(doc).read() if os.path.exists(doc) else "# Benchmarks\n"
    if begin in old and end in old:
        new = old[:old.index(begin)] + text + old[old.index(end) + len(end) + 1:]
    else:
        new = old.rstrip("\n") + "\n\n" + text
    with open(doc, "w") as f:
        f.write(new)
    log("wrote %s" % doc)
