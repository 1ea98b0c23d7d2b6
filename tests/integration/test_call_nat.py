"""A call between two phones behind two NATs, through xmpp-core and icicle.

Network namespaces make the topology (root and `ip netns` needed, else the test is skipped):

  home1 (10.0.1.2) -- nat1 (10.0.1.1 | 198.18.1.2) --+
                                                      pub (198.18.0.1: xmpp-core, icicle)
  home2 (10.0.2.2) -- nat2 (10.0.2.1 | 198.18.2.2) --+

The NATs masquerade (nftables) and drop what comes in unasked; pub forwards nothing, so neither
home can reach the other, directly or through the other's NAT: only icicle's relay joins them.
icicle's deny list refuses the benchmark range 198.18.0.0/15 (and the private homes) by
default; the test allows 198.18.0.0/16 explicitly, the public side of this little Internet.

Each phone (tests/integration/peers/call_peer.py, slixmpp + aioice) logs in from its home, gets
TURN credentials from xmpp-core (XEP-0215), and they set the call up with JMI (propose, proceed)
and Jingle (session-initiate and -accept carrying the ICE candidates aioice gathered with
icicle as STUN and TURN server); datagrams then go both ways over the ICE connection, and the
call ends with session-terminate and finish. The test checks that the pair ICE selected goes
through icicle's relay address on both sides, and that icicle counted relayed packets both
ways."""

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import suite  # noqa: E402
import xmpp  # noqa: E402

PW = "correct horse"
PUB_IP = "198.18.0.1"
PEER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers", "call_peer.py")
PYTHON = "/usr/bin/python3"


def sh(*args, check=True):
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=60)
    if check and r.returncode != 0:
        raise AssertionError("%s: %s" % (" ".join(args), r.stderr.strip()))
    return r


def netns_usable():
    """Why the test cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    if not shutil.which("ip"):
        return "needs ip (iproute2)"
    probe = "callsprobe%d" % os.getpid()
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if r.returncode != 0:
        return "ip netns is not available: %s" % r.stderr.strip()
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


SKIP = netns_usable()


class Net:
    """The namespaces and links; close() removes them (and everything in them)."""

    def __init__(self):
        n = os.getpid() % 100000
        self.pub, self.nat1, self.nat2 = "cpub%d" % n, "cnat1-%d" % n, "cnat2-%d" % n
        self.home1, self.home2 = "chome1-%d" % n, "chome2-%d" % n
        self.names = []
        try:
            self.build(n)
        except BaseException:
            self.close()
            raise

    def build(self, n):
        for ns in (self.pub, self.nat1, self.nat2, self.home1, self.home2):
            sh("ip", "netns", "add", ns)
            self.names.append(ns)
            self.ns(ns, "ip", "link", "set", "lo", "up")
        self.ns(self.pub, "ip", "addr", "add", PUB_IP + "/32", "dev", "lo")
        self.ns(self.pub, "sysctl", "-qw", "net.ipv4.ip_forward=0")
        for i, nat, home in ((1, self.nat1, self.home1), (2, self.nat2, self.home2)):
            wan, up = "w%d-%d" % (i, n), "p%d-%d" % (i, n)
            lan, dev = "l%d-%d" % (i, n), "e%d-%d" % (i, n)
            self.link(self.pub, up, "198.18.%d.1/24" % i, nat, wan, "198.18.%d.2/24" % i)
            self.link(nat, lan, "10.0.%d.1/24" % i, home, dev, "10.0.%d.2/24" % i)
            self.ns(nat, "ip", "route", "add", "default", "via", "198.18.%d.1" % i)
            self.ns(home, "ip", "route", "add", "default", "via", "10.0.%d.1" % i)
            self.ns(nat, "sysctl", "-qw", "net.ipv4.ip_forward=1")
            rules = ("table ip nat {\n"
                     " chain post { type nat hook postrouting priority 100; "
                     "oifname \"%s\" masquerade; }\n}\n"
                     "table ip filter {\n"
                     " chain forward_filter { type filter hook forward priority 0; policy drop;\n"
                     "  ct state established,related accept\n"
                     "  iifname \"%s\" oifname \"%s\" accept\n }\n}\n" % (wan, lan, wan))
            r = subprocess.run(["ip", "netns", "exec", nat, "nft", "-f", "-"], input=rules,
                               capture_output=True, text=True, timeout=30)
            if r.returncode != 0:
                raise AssertionError("nft: %s" % r.stderr.strip())

    def ns(self, ns, *args, check=True):
        return sh("ip", "netns", "exec", ns, *args, check=check)

    def link(self, ns_a, a, addr_a, ns_b, b, addr_b):
        sh("ip", "link", "add", a, "netns", ns_a, "type", "veth", "peer", "name", b, "netns",
           ns_b)
        self.ns(ns_a, "ip", "addr", "add", addr_a, "dev", a)
        self.ns(ns_b, "ip", "addr", "add", addr_b, "dev", b)
        self.ns(ns_a, "ip", "link", "set", a, "up")
        self.ns(ns_b, "ip", "link", "set", b, "up")

    def close(self):
        for ns in reversed(self.names):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=60)
        self.names = []


class NsDaemon:
    """A daemon in a namespace, started from a YAML text."""

    def __init__(self, net, ns, name, text, workdir):
        self.net, self.ns_name, self.name = net, ns, name
        self.config = os.path.join(workdir, name + ".yaml")
        with open(self.config, "w") as f:
            f.write(text)
        self.log_path = os.path.join(workdir, name + ".log")
        self.log = open(self.log_path, "w+")
        self.proc = subprocess.Popen(["ip", "netns", "exec", ns, os.path.join(suite.BIN, name),
                                      "-c", self.config], stdout=self.log,
                                     stderr=subprocess.STDOUT)

    def http(self, port, path, method="GET", body=None, token=None):
        args = ["curl", "-s", "-m", "10", "-X", method, "-w", "\n%{http_code}"]
        if token:
            args += ["-H", "Authorization: Bearer " + token]
        if body is not None:
            args += ["-H", "Content-Type: application/json", "-d", json.dumps(body)]
        r = self.net.ns(self.ns_name, *args, "http://127.0.0.1:%d%s" % (port, path),
                        check=False)
        text, _, code = r.stdout.rpartition("\n")
        return int(code or 0), text

    def wait(self, port, timeout=30):
        deadline = time.monotonic() + timeout
        while self.http(port, "/health")[0] != 200:
            if self.proc.poll() is not None:
                raise AssertionError("%s exited: %s" % (self.name, self.output()[-3000:]))
            if time.monotonic() > deadline:
                raise AssertionError("%s did not come up" % self.name)
            time.sleep(0.2)

    def output(self):
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


class Phone:
    """call_peer.py in a home namespace; its output lines in a queue."""

    def __init__(self, ns, role, cafile, jid, peer):
        self.proc = subprocess.Popen(["ip", "netns", "exec", ns, PYTHON, PEER, role, PUB_IP,
                                      "5222", cafile, jid, PW, peer],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        self.err = []
        threading.Thread(target=self._read, args=(self.proc.stdout, self.lines.put),
                         daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stderr, self.err.append),
                         daemon=True).start()

    @staticmethod
    def _read(f, put):
        for line in f:
            put(line.rstrip("\n"))

    def line(self, timeout):
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no output; stderr:\n" + "\n".join(self.err[-30:]))

    def summary(self, timeout=180):
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError("phone did not finish; stderr:\n" + "\n".join(self.err[-30:]))
        time.sleep(0.2)
        out = []
        while not self.lines.empty():
            out.append(self.lines.get())
        if rc != 0 or not out:
            raise AssertionError("phone failed (%s); stderr:\n%s" % (rc, "\n".join(self.err[-40:])))
        return json.loads(out[-1])

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@unittest.skipIf(SKIP, SKIP)
class CallThroughNats(unittest.TestCase):
    def setUp(self):
        self.tmpdir = suite.tempdir()
        self.tmp = self.tmpdir.name
        self.daemons, self.phones = [], []
        self.net = None
        if not shutil.which("nft"):
            self.fail("needs nft (nftables): make deps-test installs it")
        self.net = Net()

    def tearDown(self):
        try:
            for p in self.phones:
                p.close()
            for d in self.daemons:
                rc = d.stop()
                out = d.output()
                d.close()
                suite.assert_clean(self, out)
                self.assertEqual(rc, 0, out[-3000:])
        finally:
            if self.net:
                self.net.close()
            self.tmpdir.cleanup()

    def start_servers(self):
        tmp = self.tmp
        secret = os.path.join(tmp, "turn-secret")
        with open(secret, "w") as f:
            f.write("nat-test-secret-%d\n" % os.getpid())
        token = os.path.join(tmp, "api.token")
        with open(token, "w") as f:
            f.write("token-%d\n" % os.getpid())
        self.token = "token-%d" % os.getpid()
        self.cert, key = xmpp.make_cert(tmp)
        self.icicle = NsDaemon(self.net, self.net.pub, "icicle", (
            "log:\n  level: debug\nadmin:\n  listen: 127.0.0.1:9641\nshutdown_timeout: 5s\n"
            "listen:\n  udp: [\"%s:3478\"]\n  tcp: [\"%s:3478\"]\n  tls: []\n"
            "realm: icicle.test\nauth:\n  secret_file: %s\n"
            "relay:\n  ipv4: %s\n  min_port: 40000\n  max_port: 40999\n"
            "filter:\n  deny_defaults: true\n  allow: [198.18.0.0/16]\nthreads: 2\n"
            % (PUB_IP, PUB_IP, secret, PUB_IP)), tmp)
        self.daemons.append(self.icicle)
        self.xc = NsDaemon(self.net, self.net.pub, "xmpp-core", (
            "log:\n  level: debug\nadmin:\n  listen: 127.0.0.1:5280\nshutdown_timeout: 5s\n"
            "tls:\n  certificate: %s\n  key: %s\nhosts: [localhost]\nworkers: 2\n"
            "storage:\n  path: %s/xmpp-core.db\napi_token: %s\n"
            "c2s:\n  listen: [\"%s:5222\"]\n  tls_listen: []\n"
            "websocket:\n  listen: []\ncomponents:\n  listen: []\n"
            "extdisco:\n  secret_file: %s\n  servers:\n    - host: %s\n      port: 3478\n"
            % (self.cert, key, tmp, token, PUB_IP, secret, PUB_IP)), tmp)
        self.daemons.append(self.xc)
        self.icicle.wait(9641)
        self.xc.wait(5280)
        for user in ("alice", "bob"):
            code, body = self.xc.http(5280, "/api/v1/accounts", "POST",
                                      {"jid": user + "@localhost", "password": PW}, self.token)
            self.assertEqual(code, 201, body)

    def can_connect(self, ns, host, port):
        r = self.net.ns(ns, PYTHON, "-c", "import socket; socket.create_connection((%r, %d), "
                        "timeout=3).close()" % (host, port), check=False)
        return r.returncode == 0

    def relayed(self):
        text = self.icicle.http(9641, "/metrics")[1]
        return {d: suite.metric(text, "icicle_relayed_packets_total", {"direction": d}) or 0
                for d in ("client_to_peer", "peer_to_client")}

    def test_call(self):
        # no path between the homes: a listener in home2 cannot be reached from home1
        listener = subprocess.Popen(["ip", "netns", "exec", self.net.home2, PYTHON, "-c",
                                     "import socket,time; s=socket.socket(); "
                                     "s.bind(('10.0.2.2', 7000)); s.listen(); time.sleep(60)"])
        try:
            time.sleep(0.5)
            self.assertFalse(self.can_connect(self.net.home1, "10.0.2.2", 7000))
            self.assertTrue(self.can_connect(self.net.home2, "10.0.2.2", 7000))
        finally:
            listener.kill()
            listener.wait()
        self.start_servers()
        # ... while both reach the public side
        self.assertTrue(self.can_connect(self.net.home1, PUB_IP, 5222))
        self.assertTrue(self.can_connect(self.net.home2, PUB_IP, 5222))
        before = self.relayed()

        callee = Phone(self.net.home2, "callee", self.cert, "bob@localhost", "alice@localhost")
        self.phones.append(callee)
        self.assertEqual(callee.line(120), "READY")
        caller = Phone(self.net.home1, "caller", self.cert, "alice@localhost", "bob@localhost")
        self.phones.append(caller)
        got = {"caller": caller.summary(), "callee": callee.summary()}
        after = self.relayed()

        for role, s in got.items():
            types = {c["type"] for c in s["local_candidates"]}
            # host (the home's private address), srflx (the NAT's), relay (icicle's)
            self.assertEqual(types, {"host", "srflx", "relay"}, (role, s))
            self.assertTrue(any(c["type"] == "srflx" and c["ip"].startswith("198.18.")
                                for c in s["local_candidates"]), s)
            self.assertGreater(s["remote_candidates"], 0, s)
            self.assertEqual(s["datagrams"], 10, s)
            sel = s["selected"]
            # the pair ICE chose goes through icicle's relay, on one end or the other
            self.assertTrue(sel["local"]["type"] == "relay" or sel["remote"]["ip"] == PUB_IP,
                            (role, sel))
            self.assertIn(PUB_IP, (sel["local"]["ip"], sel["remote"]["ip"]), (role, sel))
        for d in ("client_to_peer", "peer_to_client"):
            # ten datagrams each way at least, plus the ICE checks
            self.assertGreaterEqual(after[d] - before[d], 10, (before, after))


if __name__ == "__main__":
    unittest.main()
