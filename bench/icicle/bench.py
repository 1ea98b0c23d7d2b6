"""bench.py - icicle against coturn: relayed packets/s at <= 0.1 % loss, RTT at that rate, CPU
seconds per million relayed packets, RSS per 1,000 allocations and allocations/s, measured with
build/bin/icicle-bench on the same machine, same load, same relay settings, alternating A/B
rounds (ABBA order). Medians over rounds go into the icicle section of docs/benchmarks.md.

icicle is measured only when build/bin/icicle exists and answers an Allocate; otherwise the table
says so and only coturn is measured.

Knobs (environment):
  QUICK=1             about a minute: 1 round, short steps
  ROUNDS=3            rounds; each runs every server once
  STEP_SECONDS=3      seconds of sending per rate step
  START_RATE=5000     first rate tried (packets/s sent by the client)
  MAX_RATE=1000000    stop doubling here
  BISECT=3            bisection steps after the doubling
  DATA_ALLOCS=100     allocations carrying the traffic
  MEM_ALLOCS=1000     allocations for the memory and allocations/s measurement
  SIZE=160            payload bytes (a 20 ms Opus frame is ~100-160 bytes)
  SERVER_THREADS=1    worker/relay threads of each server (equal for both)
  CLIENT_THREADS=1    icicle-bench threads
  PIN=0               1: taskset, servers on CPU 0, the client on CPU 1. Off by default: on
                      this shared 2-core machine pinning gave no steadier rates and higher
                      latency (each process is then stuck with whatever else runs on its core)
  RETRY=1             a failing step is run once more before it counts as failed (transient
                      stalls from other work on the machine); 0 to disable
  BENCH_DOC=path      file to rewrite (default docs/benchmarks.md; "-" prints the section)
  ICICLE_BASE=path    another icicle binary (an earlier build) measured in the same rotation;
                      its medians and the ratio to it are logged, not written to the document.
                      On this noisy machine, builds compare only within one run

Run with /usr/bin/python3; only the standard library is used."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchlib import fmt, machine, median, write_section  # noqa: E402

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("SUITE_BIN") or os.path.join(TOP, "build", "bin")
TOOL = os.environ.get("ICICLE_BENCH") or os.path.join(BIN, "icicle-bench")
ICICLE = os.path.join(BIN, "icicle")
QUICK = os.environ.get("QUICK") == "1"


def env_num(name, default, quick=None):
    v = os.environ.get(name)
    if v is None:
        return quick if (QUICK and quick is not None) else default
    return type(default)(v)


ROUNDS = env_num("ROUNDS", 3, 1)
STEP = env_num("STEP_SECONDS", 3.0, 1.5)
START_RATE = env_num("START_RATE", 5000)
MAX_RATE = env_num("MAX_RATE", 1000000)
BISECT = env_num("BISECT", 3, 2)
DATA_ALLOCS = env_num("DATA_ALLOCS", 100)
MEM_ALLOCS = env_num("MEM_ALLOCS", 1000)
SIZE = env_num("SIZE", 160)
SERVER_THREADS = env_num("SERVER_THREADS", 1)
CLIENT_THREADS = env_num("CLIENT_THREADS", 1)
PIN = env_num("PIN", 0) == 1 and (os.cpu_count() or 1) >= 2
RETRY = env_num("RETRY", 1)
DOC = os.environ.get("BENCH_DOC") or os.path.join(TOP, "docs", "benchmarks.md")
BASE = os.environ.get("ICICLE_BASE")
LOSS_MAX = 0.1  # percent
SECRET = "bench-secret-%d" % os.getpid()
REALM = "bench.test"
CLK_TCK = os.sysconf("SC_CLK_TCK")
BEGIN, END = "<!-- icicle-bench:begin -->", "<!-- icicle-bench:end -->"


def log(msg):
    print("bench/icicle: " + msg, flush=True)


_GIVEN_PORTS = set()  # handed out already: bind(0) may give one port to two calls in a row


def free_port():
    """A port free for both UDP and TCP on 127.0.0.1 right now, never the same one twice."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            if port in _GIVEN_PORTS:
                continue
            with socket.socket() as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
        _GIVEN_PORTS.add(port)
        return port


def pinned(args, cpu):
    return (["taskset", "-c", str(cpu)] + args) if PIN else args


def proc_cpu(pid):
    """utime + stime of a process (all threads), in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Server:
    """A TURN server process on 127.0.0.1:port with REST auth and loopback peers allowed."""

    def __init__(self, name, workdir):
        self.name = name
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.secret_file = os.path.join(self.dir, "secret")
        with open(self.secret_file, "w") as f:
            f.write(SECRET + "\n")
        self.log = open(os.path.join(self.dir, "server.log"), "a")
        self.proc = subprocess.Popen(pinned(self.command(), 0), stdout=self.log,
                                     stderr=subprocess.STDOUT, cwd=self.dir)

    def command(self):
        raise NotImplementedError

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def wait_ready(self, timeout=10):
        """True once an Allocate succeeds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            r = tool(self, ["--allocations", "1", "--rate", "0"], timeout=15)
            if r is not None:
                return True
            time.sleep(0.3)
        return False

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Coturn(Server):
    def command(self):
        return ["turnserver", "-n", "--listening-ip", "127.0.0.1", "--listening-port",
                str(self.port), "--relay-ip", "127.0.0.1", "--min-port", "10000",
                "--max-port", "29999", "--use-auth-secret",
                "--static-auth-secret=" + SECRET, "--realm", REALM, "--no-tls", "--no-dtls",
                "--allow-loopback-peers", "--no-cli", "--relay-threads",
                str(SERVER_THREADS), "--db", os.path.join(self.dir, "turndb"),
                "--log-file", os.path.join(self.dir, "turnserver.log"), "--simple-log",
                "--no-stdout-log", "--pidfile", os.path.join(self.dir, "turnserver.pid")]


class Icicle(Server):
    def command(self):
        cfg = os.path.join(self.dir, "icicle.yaml")
        with open(cfg, "w") as f:
            f.write("""log:
  level: warn
admin:
  listen: 127.0.0.1:%d
listen:
  udp: ["127.0.0.1:%d"]
  tcp: []
  tls: []
realm: %s
auth:
  secret_file: %s
relay:
  ipv4: 127.0.0.1
  min_port: 10000
  max_port: 29999
filter:
  allow: ["127.0.0.1/32"]
quotas:
  allocations_per_user: 100000
  allocations_total: 100000
  unauthenticated_rate: 1000000
  unauthenticated_burst: 1000000
threads: %d
""" % (free_port(), self.port, REALM, self.secret_file, SERVER_THREADS))
        return [ICICLE, "-c", cfg]


class IcicleBase(Icicle):
    """The same configuration run by the ICICLE_BASE binary."""

    def command(self):
        return [os.path.abspath(BASE)] + super().command()[1:]


def log_base(results):
    """Log ICICLE_BASE's medians next to this build's, then drop them from results."""
    base, new = results.pop("iciclebase", []), results.get("icicle", [])
    if not base or not new:
        return
    for key, what, digits in (("relayed_pps", "relayed packets/s", 0),
                              ("cpu_per_m", "CPU seconds per million packets", 2)):
        b = median([r[key] for r in base])
        n = median([r[key] for r in new])
        log("%s: icicle %s, ICICLE_BASE %s, ratio %s" %
            (what, fmt(n, digits), fmt(b, digits), fmt(n / b, 2) if n and b else "n/a"))


def tool(server, args, timeout=60):
    """Run icicle-bench against server; its JSON report, or None when it failed."""
    cmd = pinned([TOOL, "--server", server.addr, "--secret-file", server.secret_file,
                  "--threads", str(CLIENT_THREADS), "--size", str(SIZE), "--json"] + args, 1)
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        log("%s: icicle-bench timed out: %s" % (server.name, " ".join(cmd)))
        return None
    if r.returncode != 0:
        server.last_error = r.stderr.strip()
        return None
    return json.loads(r.stdout)


def measure_memory(server):
    """(allocations/s, RSS KiB per 1,000 allocations) from one run holding MEM_ALLOCS."""
    time.sleep(0.5)
    base = proc_rss_kib(server.proc.pid)
    ready = os.path.join(server.dir, "ready")
    if os.path.exists(ready):
        os.unlink(ready)
    cmd = pinned([TOOL, "--server", server.addr, "--secret-file", server.secret_file,
                  "--threads", str(CLIENT_THREADS), "--allocations", str(MEM_ALLOCS),
                  "--rate", "0", "--hold", "2", "--ready-file", ready, "--json"], 1)
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rss = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and p.poll() is None:
        if os.path.exists(ready):
            time.sleep(0.5)
            rss = proc_rss_kib(server.proc.pid)
            break
        time.sleep(0.05)
    out, err = p.communicate(timeout=60)
    if p.returncode != 0 or rss is None:
        log("%s: memory run failed: %s" % (server.name, err.strip()))
        return None, None
    r = json.loads(out)
    return r["allocations_per_s"], (rss - base) * 1000.0 / MEM_ALLOCS


def step(server, rate):
    """One rate step, retried RETRY times when it fails."""
    r = one_step(server, rate)
    for _ in range(RETRY):
        if r is not None and r["ok"]:
            break
        log("%s: %d/s again" % (server.name, rate))
        r2 = one_step(server, rate)
        if r2 is not None and (r is None or r2["ok"] or r2["loss_pct"] < r["loss_pct"]):
            r = r2
    return r


def one_step(server, rate):
    """One rate step: the tool's report plus the server's CPU seconds during it."""
    c0 = proc_cpu(server.proc.pid)
    r = tool(server, ["--allocations", str(DATA_ALLOCS), "--rate", str(rate), "--duration",
                      str(STEP), "--drain", "1"], timeout=STEP + 60)
    if r is None:
        log("%s: step at %d/s failed: %s" % (server.name, rate,
                                            getattr(server, "last_error", "?")))
        return None
    r["server_cpu_s"] = proc_cpu(server.proc.pid) - c0
    r["client_limited"] = r["sent_pps"] < 0.97 * rate
    r["client_cpu"] = r["client_cpu_s"] / max(r["duration_s"] + 1.0, 1e-9)  # drain included
    ok = r["loss_pct"] <= LOSS_MAX and not r["client_limited"]
    log("%s: %7d/s sent %8.0f/s delivered %8.0f/s loss %.3f%% p50 %dus p99 %dus "
        "cpu server %.0f%% client %.0f%% %s" %
        (server.name, rate, r["sent_pps"], r["delivered_pps"], r["loss_pct"],
         r["rtt_us"]["p50"], r["rtt_us"]["p99"], 100 * r["server_cpu_s"] / (STEP + 1.0),
         100 * r["client_cpu"],
         "ok" if ok else ("client-limited" if r["client_limited"] else "too much loss")))
    r["ok"] = ok
    return r


def search(server):
    """The highest rate with loss <= LOSS_MAX: doubling, then bisecting. Its step report."""
    best, bad, rate, first = None, None, START_RATE, None
    while rate <= MAX_RATE:
        r = step(server, rate)
        if first is None:
            first = r
        if r is None or not r["ok"]:
            bad = (rate, r)
            break
        best = (rate, r)
        rate *= 2
    if best is None:
        return None, bad, first
    for _ in range(BISECT if bad else 0):
        mid = (best[0] + bad[0]) // 2
        if mid <= best[0] or bad[0] - best[0] < best[0] * 0.05:
            break
        r = step(server, mid)
        if r is not None and r["ok"]:
            best = (mid, r)
        else:
            bad = (mid, r)
    return best[1], bad, first


def one_round(cls, workdir):
    s = cls(cls.__name__.lower(), workdir)
    try:
        if not s.wait_ready():
            log("%s: no Allocate succeeded: %s" % (s.name, getattr(s, "last_error", "")))
            return None
        aps, rss = measure_memory(s)
        best, bad, first = search(s)
        if best is None:
            return None
        res = {
            "allocations_per_s": aps,
            "rss_kib_per_1000": rss,
            "rate": best["target_pps"],
            # one delivered round trip = two relayed packets (client->peer, peer->client)
            "relayed_pps": 2 * best["delivered_pps"],
            "p50": best["rtt_us"]["p50"],
            "p99": best["rtt_us"]["p99"],
            "cpu_per_m": best["server_cpu_s"] / (2 * best["delivered"] / 1e6)
            if best["delivered"] else None,
            "client_limited": bool(bad and bad[1] and bad[1]["client_limited"]),
            # the client's CPU (one core when pinned) at the first failing step: near 100 %
            # means the load generator, not the server, may have set the ceiling
            "client_cpu_at_limit": bad[1]["client_cpu"] if bad and bad[1] else None,
            "p50_common": first["rtt_us"]["p50"] if first else None,
            "p99_common": first["rtt_us"]["p99"] if first else None,
        }
        return res
    finally:
        s.stop()


def icicle_can_relay(workdir):
    if not os.access(ICICLE, os.X_OK):
        return False, "no build/bin/icicle"
    s = Icicle("icicle-probe", workdir)
    try:
        ok = s.wait_ready(timeout=5)
        return ok, "" if ok else "no TURN yet"
    finally:
        s.stop()








def section(results, icicle_note, started):
    rows = [
        ("relayed packets/s at <= 0.1 % loss", "relayed_pps", 0, True),
        ("RTT p50 at that rate (us)", "p50", 0, False),
        ("RTT p99 at that rate (us)", "p99", 0, False),
        ("RTT p50 at %d round trips/s, both servers (us)" % START_RATE, "p50_common", 0, False),
        ("RTT p99 at %d round trips/s, both servers (us)" % START_RATE, "p99_common", 0, False),
        ("server CPU seconds per million relayed packets", "cpu_per_m", 2, False),
        ("server RSS per 1,000 allocations (KiB)", "rss_kib_per_1000", 0, False),
        ("allocations per second", "allocations_per_s", 0, True),
        ("client CPU at the first failing rate (% of one core)", "client_cpu_pct", 0, False),
    ]
    for rs in results.values():
        for r in rs:
            c = r.get("client_cpu_at_limit")
            r["client_cpu_pct"] = 100 * c if c is not None else None
    med = {name: {k: median([r[k] for r in rs]) for _, k, _, _ in rows}
           for name, rs in results.items()}
    lines = [BEGIN, "## icicle against coturn (TURN relay)", ""]
    lines.append("Measured %s on %s; %d round%s, medians shown. Reproduce with `make bench` or "
                 "`bench/icicle/run.sh` (`QUICK=1` for a one-minute run)."
                 % (started, machine(), ROUNDS, "" if ROUNDS == 1 else "s"))
    lines.append("")
    lines.append("| metric | icicle | coturn %s | icicle / coturn |" % coturn_version())
    lines.append("|---|---|---|---|")
    for label, k, digits, _ in rows:
        c = med.get("coturn", {}).get(k)
        i = med.get("icicle", {}).get(k) if "icicle" in med else None
        ratio = "%.2f" % (i / c) if (i is not None and c) else "n/a"
        lines.append("| %s | %s | %s | %s |" % (
            label, fmt(i, digits) if "icicle" in med else icicle_note, fmt(c, digits), ratio))
    lines.append("")
    lines.append("Relayed packets/s in each round: " + "; ".join(
        "%s %s" % (n, ", ".join(fmt(r["relayed_pps"]) for r in rs))
        for n, rs in sorted(results.items())) + ".")
    lines.append("")
    limited = ["%s in %d of %d rounds" % (n, sum(r["client_limited"] for r in rs), len(rs))
               for n, rs in sorted(results.items()) if any(r["client_limited"] for r in rs)]
    lines += [
        "How it is measured: both servers listen on UDP 127.0.0.1 with TURN REST credentials, "
        "relay ports 10000-29999 on 127.0.0.1, loopback peers allowed, %d relay thread%s each, "
        "and are restarted for every round (order ABBA over rounds). `build/bin/icicle-bench` "
        "creates %d allocations, binds a channel on each to its own UDP echo peer and sends "
        "%d-byte ChannelData payloads spread over them; each packet goes client -> server -> "
        "peer -> server -> client, so one delivered round trip is two relayed packets, and "
        "\"relayed packets/s\" counts both directions. The rate is doubled from %d/s while "
        "loss stays at or under 0.1 %% (and the client keeps up), then bisected %d times; "
        "each step sends for %g s, and a failing step is tried %d more time%s before it "
        "counts. CPU is the server's utime+stime (/proc/PID/stat) during "
        "the best step; RSS is VmRSS with %d allocations held minus VmRSS before, per 1,000; "
        "allocations/s is the rate of those %d Allocates (401 round trip included)."
        % (SERVER_THREADS, "" if SERVER_THREADS == 1 else "s", DATA_ALLOCS, SIZE, START_RATE,
           BISECT, STEP, RETRY, "" if RETRY == 1 else "s", MEM_ALLOCS, MEM_ALLOCS),
        "",
        "The machine has %d cores shared by client, echo peer and server%s. Loss shows up "
        "first as drops on the server's receive socket when the server does not get the CPU "
        "for a few milliseconds, so other work on a shared machine moves the rates a lot "
        "between rounds; the ratio measured in the same run and the CPU seconds per million "
        "packets (which do not depend on how much CPU the server was given) are the steadier "
        "figures. The RTT \"at that rate\" is measured at each server's own ceiling, where "
        "queues are full; the RTT at %d round trips/s compares both at the same load."
        % (os.cpu_count() or 0,
           ": the server is pinned to CPU 0, icicle-bench and its peer to CPU 1" if PIN
           else " (not pinned: PIN=1 pins the server to CPU 0 and the client to CPU 1)",
           START_RATE),
    ]
    if limited:
        lines += ["", "At the first failing rate the client itself fell behind (sent under 97 % "
                  "of the target), so the load generator may have set the ceiling: "
                  + ", ".join(limited) + "."]
    lines.append(END)
    return "\n".join(lines) + "\n"


def coturn_version():
    try:
        r = subprocess.run(["turnserver", "--version"], capture_output=True, text=True, timeout=5)
        v = (r.stdout or r.stderr).strip().splitlines()
        return v[0] if v else ""
    except (OSError, subprocess.TimeoutExpired):
        return ""


def write_doc(text):
    write_section(DOC, BEGIN, END, text, log)


def main():
    for need in (TOOL, shutil.which("turnserver")):
        if not need or not os.access(need, os.X_OK):
            log("missing %s (make build; coturn package)" % (need or "turnserver"))
            return 1
    if PIN and not shutil.which("taskset"):
        log("no taskset: not pinning")
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with tempfile.TemporaryDirectory(prefix="icicle-bench-") as workdir:
        ok, why = icicle_can_relay(workdir)
        icicle_note = "not measured (%s)" % why
        servers = [Coturn] + ([Icicle] if ok else []) + ([IcicleBase] if ok and BASE else [])
        log("servers: %s%s" % (", ".join(c.__name__.lower() for c in servers),
                               "" if ok else " (icicle: %s)" % why))
        results = {c.__name__.lower(): [] for c in servers}
        for rnd in range(ROUNDS):
            order = servers if rnd % 2 == 0 else list(reversed(servers))
            for cls in order:
                log("round %d/%d: %s" % (rnd + 1, ROUNDS, cls.__name__.lower()))
                r = one_round(cls, workdir)
                if r is None:
                    log("round %d: %s failed" % (rnd + 1, cls.__name__.lower()))
                    continue
                results[cls.__name__.lower()].append(r)
                log("%s: %s" % (cls.__name__.lower(), json.dumps(r)))
        log_base(results)
        if not results["coturn"]:
            log("coturn could not be measured")
            return 1
        if ok and not results.get("icicle"):
            results.pop("icicle", None)
            icicle_note = "not measured (every round failed)"
        write_doc(section(results, icicle_note, started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
