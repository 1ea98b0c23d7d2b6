"""call_setup.py - how long a call takes to set up between two phones behind two NATs: from the
caller's JMI propose to the first media datagram the callee receives through icicle's relay.

The topology, icicle and xmpp-core (release builds, build/bin) are those of
tests/integration/test_call_nat.py, whose Net and NsDaemon classes are imported from it (root
and `ip netns` needed; without them this prints a JSON line saying why and exits 0). The phones
are call_peer_timed.py (next to this file): CALLS calls in a row between the same two logged-in
phones; see its header for the order of the steps and what is timed.

Per call, along the critical path (ms):
  propose           caller's propose -> the callee has it (XMPP, one way)
  callee_extdisco   the callee's XEP-0215 credentials request (XMPP round trip)
  callee_stun       its STUN binding at icicle (server-reflexive candidate)
  callee_turn       its TURN allocation at icicle (401, then the authenticated Allocate)
  callee_gather_other  the rest of its ICE gathering (host candidates; aioice)
  proceed           the callee's proceed -> the caller has it (XMPP, one way)
  caller_wait       how long the caller's own credentials and gathering, started at the
                    propose, still held it after proceed arrived (0 when it was done before)
  jingle            session-initiate sent -> session-accept at the caller (two XMPP IQs and
                    the callee taking the candidates)
  ice_checks        the caller's ICE connectivity checks (aioice; through icicle's relay)
  callee_checks_after  how much longer the callee's checks ran after the caller had sent its
                    first datagram: aioice hands a datagram over only once connect() is done
  first_media       from then (the later of the two) to the callee having the datagram
  total             propose -> the callee has the first datagram (measured, not summed)
The suite's share is propose + callee_extdisco + callee_stun + callee_turn + proceed + jingle;
ICE's is callee_gather_other + ice_checks + callee_checks_after (caller_wait is both, and
first_media is the relay's forwarding plus the phones' own scheduling). Also reported: the
caller's own extdisco/STUN/TURN times, off the critical path.

Prints one JSON line: the per-call records and their medians. Knobs: CALLS=7 (QUICK=1: 3)."""

import json
import os
import shutil
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.abspath(os.path.join(HERE, "..", ".."))
os.environ.setdefault("SUITE_BIN", os.path.join(TOP, "build", "bin"))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))
import suite  # noqa: E402
import test_call_nat as T  # noqa: E402
import xmpp  # noqa: E402

CALLS = int(os.environ.get("CALLS", "3" if os.environ.get("QUICK") == "1" else "7"))
PEER = os.path.join(HERE, "call_peer_timed.py")
PW = T.PW


class Phone(T.Phone):
    """test_call_nat's phone process, running call_peer_timed.py for CALLS calls."""

    def __init__(self, ns, role, cafile, jid, peer):
        self.proc = T.subprocess.Popen(
            ["ip", "netns", "exec", ns, T.PYTHON, PEER, role, T.PUB_IP, "5222", cafile, jid, PW,
             peer, str(CALLS)], stdout=T.subprocess.PIPE, stderr=T.subprocess.PIPE, text=True)
        self.lines = T.queue.Queue()
        self.err = []
        threading.Thread(target=self._read, args=(self.proc.stdout, self.lines.put),
                         daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stderr, self.err.append),
                         daemon=True).start()

    def records(self, timeout):
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < CALLS:
            line = self.line(max(1, deadline - time.monotonic()))
            if line.startswith("{"):
                out.append(json.loads(line))
        return out


def start_servers(net, tmp):
    secret = os.path.join(tmp, "turn-secret")
    with open(secret, "w") as f:
        f.write("call-bench-secret-%d\n" % os.getpid())
    token = "token-%d" % os.getpid()
    with open(os.path.join(tmp, "api.token"), "w") as f:
        f.write(token + "\n")
    cert, key = xmpp.make_cert(tmp)
    icicle = T.NsDaemon(net, net.pub, "icicle", (
        "log:\n  level: warn\nadmin:\n  listen: 127.0.0.1:9641\nshutdown_timeout: 5s\n"
        "listen:\n  udp: [\"%s:3478\"]\n  tcp: [\"%s:3478\"]\n  tls: []\n"
        "realm: icicle.test\nauth:\n  secret_file: %s\n"
        "relay:\n  ipv4: %s\n  min_port: 40000\n  max_port: 40999\n"
        "filter:\n  deny_defaults: true\n  allow: [198.18.0.0/16]\nthreads: 2\n"
        % (T.PUB_IP, T.PUB_IP, secret, T.PUB_IP)), tmp)
    xc = T.NsDaemon(net, net.pub, "xmpp-core", (
        "log:\n  level: warn\nadmin:\n  listen: 127.0.0.1:5280\nshutdown_timeout: 5s\n"
        "tls:\n  certificate: %s\n  key: %s\nhosts: [localhost]\nworkers: 2\n"
        "storage:\n  path: %s/xmpp-core.db\napi_token: %s/api.token\n"
        "c2s:\n  listen: [\"%s:5222\"]\n  tls_listen: []\n"
        "websocket:\n  listen: []\ncomponents:\n  listen: []\n"
        "extdisco:\n  secret_file: %s\n  servers:\n    - host: %s\n      port: 3478\n"
        % (cert, key, tmp, tmp, T.PUB_IP, secret, T.PUB_IP)), tmp)
    icicle.wait(9641)
    xc.wait(5280)
    for user in ("alice", "bob"):
        code, body = xc.http(5280, "/api/v1/accounts", "POST",
                             {"jid": user + "@localhost", "password": PW}, token)
        if code != 201:
            raise RuntimeError("account %s: %s %s" % (user, code, body))
    return icicle, xc, cert


def breakdown(caller, callee):
    """The critical path of one call (ms), from the two phones' records."""
    ms = lambda a, b: (b - a) * 1000  # noqa: E731
    proceed_at = caller["proceed_at"]
    caller_ready = caller["prepared_at"]
    gather_other = callee["gather_ms"] - (callee["stun_ms"] or 0) - (callee["turn_alloc_ms"] or 0)
    return {
        "total": ms(caller["propose_at"], callee["first_media_at"]),
        "propose": ms(caller["propose_at"], callee["propose_at"]),
        "callee_extdisco": callee["extdisco_ms"],
        "callee_stun": callee["stun_ms"],
        "callee_turn": callee["turn_alloc_ms"],
        "callee_gather_other": gather_other,
        "proceed": ms(callee["proceed_sent_at"], proceed_at),
        "caller_wait": max(0.0, ms(proceed_at, caller_ready)),
        "jingle": ms(caller["initiate_at"], caller["accept_at"]),
        "ice_checks": ms(caller["checks_start_at"], caller["checks_end_at"]),
        "callee_checks_after": max(0.0, ms(caller["first_sent_at"], callee["checks_end_at"])),
        "first_media": ms(max(caller["first_sent_at"], callee["checks_end_at"]),
                          callee["first_media_at"]),
        "caller_extdisco": caller["extdisco_ms"],
        "caller_turn": caller["turn_alloc_ms"],
        "caller_stun": caller["stun_ms"],
        "relayed": T.PUB_IP in (caller["selected"]["local"]["ip"],
                                caller["selected"]["remote"]["ip"]),
    }


def main():
    why = T.SKIP or (None if shutil.which("nft") else "needs nft (nftables)")
    if why:
        print(json.dumps({"bench": "call-setup", "skipped": why}), flush=True)
        return 0
    tmpdir = suite.tempdir()
    net = T.Net()
    daemons, phones = [], []
    try:
        icicle, xc, cert = start_servers(net, tmpdir.name)
        daemons += [icicle, xc]
        callee = Phone(net.home2, "callee", cert, "bob@localhost", "alice@localhost")
        phones.append(callee)
        if callee.line(120) != "READY":
            raise RuntimeError("the callee did not log in: %s" % callee.err[-10:])
        caller = Phone(net.home1, "caller", cert, "alice@localhost", "bob@localhost")
        phones.append(caller)
        er, ee = caller.records(120 * CALLS), callee.records(120 * CALLS)
        calls = [breakdown(a, b) for a, b in zip(er, ee)]
        keys = [k for k in calls[0] if k != "relayed"]
        med = {k: round(statistics.median(c[k] for c in calls if c[k] is not None), 1)
               for k in keys}
        med["suite"] = round(statistics.median(
            c["propose"] + c["callee_extdisco"] + (c["callee_stun"] or 0) +
            (c["callee_turn"] or 0) + c["proceed"] + c["jingle"] for c in calls), 1)
        med["ice"] = round(statistics.median(
            c["callee_gather_other"] + c["ice_checks"] + c["callee_checks_after"]
            for c in calls), 1)
        print(json.dumps({"bench": "call-setup", "calls": len(calls),
                          "relayed": sum(c["relayed"] for c in calls), "median_ms": med,
                          "per_call": calls}), flush=True)
        for p in phones:
            p.proc.wait(timeout=60)
    finally:
        for p in phones:
            p.close()
        for d in daemons:
            d.stop()
            d.close()
        net.close()
        tmpdir.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
