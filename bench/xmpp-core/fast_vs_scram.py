"""fast_vs_scram.py - what a FAST token (XEP-0484) saves over a password login when a phone
reconnects: N logins over SASL2 with Bind 2 using SCRAM-SHA-256, then N with HT-SHA-256-NONE,
each on a new direct TLS connection (port c2s.tls_listen) to a release build of xmpp-core
(build/bin). For each kind: the round trips after TLS (the stream header, then each element
the client had to wait an answer for), the median and p90 time from TCP connect to <success/>,
and the server's CPU (utime + stime of the process, /proc/PID/stat) per login. One account,
one client instance: each login replaces the previous session, as a reconnecting phone does.

Knobs: N=200 (logins of each kind), ROUNDS=3 (the two kinds interleaved, medians over rounds).
Run with /usr/bin/python3 from the top of the tree, after `make`."""

import os
import statistics
import sys
import tempfile
import time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
os.environ.setdefault("SUITE_BIN", os.path.join(TOP, "build", "bin"))
os.environ.setdefault("SUITE_TOP", TOP)
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))
sys.path.insert(0, os.path.join(TOP, "bench"))
import benchlib  # noqa: E402
import suite  # noqa: E402
import xmpp  # noqa: E402

N = int(os.environ.get("N", "200"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
PW = "a password of some length"
TICK = os.sysconf("SC_CLK_TCK")


class Server:
    """xmpp-core at log level info (what a production server logs), direct TLS only."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.cert, self.key = xmpp.make_cert(tmp)
        self.admin, self.c2s, self.tls = (suite.free_port() for _ in range(3))
        self.token_file = os.path.join(tmp, "api.token")
        with open(self.token_file, "w") as f:
            f.write("bench-token\n")
        self.token = "bench-token"
        text = ("log:\n  level: info\nadmin:\n  listen: 127.0.0.1:%d\nshutdown_timeout: 5s\n"
                "tls:\n  certificate: %s\n  key: %s\nhosts: [localhost]\nworkers: 2\n"
                "storage:\n  path: %s/xmpp-core.db\napi_token: %s\n"
                "c2s:\n  listen: [\"127.0.0.1:%d\"]\n  tls_listen: [\"127.0.0.1:%d\"]\n"
                % (self.admin, self.cert, self.key, tmp, self.token_file, self.c2s, self.tls))
        self.daemon = suite.Daemon("xmpp-core", text, tmp)
        suite.wait_http(self.admin, daemon=self.daemon)

    api = xmpp.Server.api
    register = xmpp.Server.register

    def cpu(self):
        """Seconds of CPU the server has used so far."""
        with open("/proc/%d/stat" % self.daemon.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK


def login(srv, kind, token):
    """One login; returns (seconds from connect to <success/>, round trips after TLS, the
    <success/>)."""
    t0 = time.monotonic()
    c = xmpp.Sasl2(srv)
    c.features()
    if kind == "scram":
        ok, out = c.scram("alice", PW, tag="bench", sm=True)
    else:
        ok, out = c.fast("alice", token, tag="bench", sm=True)
    took = time.monotonic() - t0
    c.close()
    if not ok:
        raise SystemExit("fast_vs_scram: a %s login failed: %s" % (kind, out))
    return took, 1 + c.sent_elements, out


def phase(srv, kind, token):
    times, trips = [], None
    cpu0 = srv.cpu()
    for _ in range(N):
        took, trips, _ = login(srv, kind, token)
        times.append(took)
    cpu = srv.cpu() - cpu0
    times.sort()
    return {"trips": trips, "p50": statistics.median(times) * 1000,
            "p90": times[int(len(times) * 0.9) - 1] * 1000, "cpu": cpu / N * 1e6}


def main():
    with tempfile.TemporaryDirectory(prefix="fast-bench-") as tmp:
        srv = Server(tmp)
        try:
            srv.register("alice", PW)
            c = xmpp.Sasl2(srv)
            c.features()
            ok, out = c.scram("alice", PW, request_token="HT-SHA-256-NONE")
            c.close()
            token = xmpp.sasl2_token(out)[0]
            res = {"scram": [], "fast": []}
            for _ in range(ROUNDS):
                for kind in ("scram", "fast"):
                    res[kind].append(phase(srv, kind, token))
        finally:
            srv.daemon.stop()
            srv.daemon.close()
    print("xmpp-core reconnection, SASL2 + Bind 2 + SM enable, %d logins x %d rounds, %s"
          % (N, ROUNDS, benchlib.machine()))
    print("%-22s %12s %10s %10s %16s" % ("login", "round trips", "p50 ms", "p90 ms",
                                         "server CPU us"))
    for kind, name in (("scram", "SCRAM-SHA-256"), ("fast", "FAST HT-SHA-256-NONE")):
        r = res[kind]
        print("%-22s %12d %10s %10s %16s" % (
            name, r[0]["trips"], benchlib.fmt(benchlib.median([x["p50"] for x in r]), 2),
            benchlib.fmt(benchlib.median([x["p90"] for x in r]), 2),
            benchlib.fmt(benchlib.median([x["cpu"] for x in r]), 0)))
    print("(round trips after TLS: the stream header and features, then each element waited "
          "for; times include the client's own work, PBKDF2 for SCRAM among it)")


if __name__ == "__main__":
    main()
