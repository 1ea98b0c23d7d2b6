"""Black-box tests of icicle, the STUN/TURN server: the real daemon with a generated configuration
on loopback, driven by real clients (coturn's turnutils_stunclient / turnutils_uclient /
turnutils_peer, python3-aioice) and by a raw TURN client (turn.py) for the security cases."""

import base64
import hashlib
import hmac
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import suite  # noqa: E402
import turn  # noqa: E402

SECRET = "s3cret-rest"
USER, PASSWORD = "alice", "wonderland"


def free_udp_port():
    while True:
        port = suite.free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


class Icicle:
    """icicle on 127.0.0.1 with UDP+TCP on one port, TLS on another, relays on loopback."""

    def __init__(self, tmp, allow_loopback=True, extra="", threads=2, tls=True,
                 nonce_lifetime="10m", ipv6=False):
        self.tmp = tmp
        self.port = free_udp_port()
        self.tls_port = suite.free_port()
        self.admin = suite.free_port()
        self.secret_path = os.path.join(tmp, "secret")
        self.users_path = os.path.join(tmp, "users")
        with open(self.secret_path, "w") as f:
            f.write(SECRET + "\n")
        with open(self.users_path, "w") as f:
            f.write("%s:%s\nbob:builder\n" % (USER, PASSWORD))
        lo = random.randrange(20000, 30000, 1000)
        text = ("log:\n  level: debug\nadmin:\n  listen: 127.0.0.1:%d\nshutdown_timeout: 5s\n"
                "listen:\n  udp: [\"127.0.0.1:%d\"]\n  tcp: [\"127.0.0.1:%d\"]\n"
                "  tls: [\"127.0.0.1:%d\"]\n"
                "realm: icicle.test\nauth:\n  secret_file: %s\n  users_file: %s\n"
                "  nonce_lifetime: %s\n"
                "relay:\n  ipv4: 127.0.0.1\n  ipv6: \"%s\"\n  min_port: %d\n  max_port: %d\n"
                "threads: %d\n"
                % (self.admin, self.port, self.port, self.tls_port, self.secret_path,
                   self.users_path, nonce_lifetime, "::1" if ipv6 else "", lo, lo + 999,
                   threads))
        if tls:
            cert, key = suite.make_cert(tmp)
            text += "tls:\n  certificate: %s\n  key: %s\n" % (cert, key)
        if allow_loopback:
            text += "filter:\n  allow: [127.0.0.1/32, \"::1/128\"]\n"
        self.daemon = suite.Daemon("icicle", text + extra, tmp)
        suite.wait_http(self.admin, daemon=self.daemon)
        self.wait_udp()

    def wait_udp(self):
        deadline = time.monotonic() + 10
        while True:
            c = turn.Client("127.0.0.1", self.port, timeout=0.5)
            try:
                c.binding()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
            finally:
                c.close()

    def metrics(self):
        return suite.http_get(self.admin, "/metrics")[2]

    def stop(self, testcase):
        rc = self.daemon.stop()
        out = self.daemon.output()
        self.daemon.close()
        suite.assert_clean(testcase, out)
        testcase.assertEqual(rc, 0, out[-3000:])
        return out


class Peer:
    """coturn's turnutils_peer: a UDP echo server on 127.0.0.1."""

    def __init__(self):
        self.port = free_udp_port()
        self.proc = subprocess.Popen(["turnutils_peer", "-L", "127.0.0.1", "-p", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def uclient(ic, peer, args, n=30, clients=2):
    r = suite.run(["turnutils_uclient", "-p", str(ic.tls_port if "-S" in args else ic.port),
                   "-e", "127.0.0.1", "-r", str(peer.port), "-n", str(n), "-m", str(clients),
                   "-l", "120", "-z", "10", "-c"] + args + ["127.0.0.1"], timeout=60)
    out = r.stdout + r.stderr
    totals = re.findall(r"tot_send_msgs=(\d+), tot_recv_msgs=(\d+)", out)
    lost = re.findall(r"Total lost packets (\d+)", out)
    return out, totals, lost


class Interop(unittest.TestCase):
    """Real clients against icicle."""

    @classmethod
    def setUpClass(cls):
        cls.tmpdir = suite.tempdir()
        cls.ic = Icicle(cls.tmpdir.name)
        cls.peer = Peer()

    @classmethod
    def tearDownClass(cls):
        cls.peer.close()
        out = cls.ic.daemon.output()
        rc = cls.ic.daemon.stop()
        cls.ic.daemon.close()
        cls.tmpdir.cleanup()
        for mark in suite.SANITIZER_MARKS:
            assert mark not in out, out
        assert rc == 0, out[-2000:]

    def check_uclient(self, args, n=30, clients=2):
        out, totals, lost = uclient(self.ic, self.peer, args, n, clients)
        if not totals and "Cannot complete Allocation" in out:
            # Seen once in a clean-clone run of the suite, and not reproduced since: the client
            # gave up before an allocation answered. What icicle counted goes to the log, and
            # the client runs once more; a second failure fails the test.
            counts = "\n".join(line for line in self.ic.metrics().splitlines()
                                if line.startswith(("icicle_allocations", "icicle_quota",
                                                    "icicle_requests", "icicle_auth",
                                                    "icicle_rate", "icicle_dropped",
                                                    "icicle_malformed")))
            sys.stderr.write("uclient %s: no allocation; icicle's counts:\n%s\n%s\n"
                             % (" ".join(args), counts, out[-1500:]))
            out, totals, lost = uclient(self.ic, self.peer, args, n, clients)
        self.assertTrue(totals and lost, out[-3000:])
        sent, received = map(int, totals[-1])
        self.assertEqual(sent, n * clients, out[-3000:])
        self.assertEqual(received, sent, out[-3000:])
        self.assertEqual(int(lost[-1]), 0, out[-3000:])

    def test_stunclient_binding(self):
        r = suite.run(["turnutils_stunclient", "-p", str(self.ic.port), "127.0.0.1"])
        self.assertIn("UDP reflexive addr: 127.0.0.1:", r.stdout + r.stderr)

    def test_binding_over_tcp_and_tls(self):
        c = turn.Client("127.0.0.1", self.ic.port, transport="tcp")
        m = c.binding()
        c.close()
        self.assertEqual(m.cls, turn.SUCCESS)
        self.assertEqual(m.addr(turn.XOR_MAPPED_ADDRESS)[0], "127.0.0.1")

    def test_udp_rest_channels(self):
        self.check_uclient(["-W", SECRET, "-u", "rest-user"])

    def test_udp_rest_send_indications(self):
        self.check_uclient(["-W", SECRET, "-u", "rest-user", "-s"])

    def test_udp_static_channels(self):
        self.check_uclient(["-u", USER, "-w", PASSWORD])

    def test_udp_static_send_indications(self):
        self.check_uclient(["-u", USER, "-w", PASSWORD, "-s"])

    def test_udp_client_to_client(self):
        self.check_uclient(["-u", USER, "-w", PASSWORD, "-y"])
        self.check_uclient(["-W", SECRET, "-u", "rest-user", "-y", "-s"])

    def test_tcp(self):
        self.check_uclient(["-t", "-W", SECRET, "-u", "rest-user"])
        self.check_uclient(["-t", "-u", USER, "-w", PASSWORD, "-s"])
        self.check_uclient(["-t", "-u", USER, "-w", PASSWORD, "-y"])

    def test_tls(self):
        self.check_uclient(["-t", "-S", "-W", SECRET, "-u", "rest-user"])
        self.check_uclient(["-t", "-S", "-u", USER, "-w", PASSWORD, "-s"])
        self.check_uclient(["-t", "-S", "-u", USER, "-w", PASSWORD, "-y"])

    def test_aioice_relayed_candidates(self):
        code = r"""
import asyncio, sys
import aioice

async def main(port, user, password):
    kw = dict(turn_server=("127.0.0.1", port), turn_username=user, turn_password=password,
              turn_transport="udp", use_ipv6=False)
    a = aioice.Connection(ice_controlling=True, **kw)
    b = aioice.Connection(ice_controlling=False, **kw)
    await asyncio.gather(a.gather_candidates(), b.gather_candidates())
    ra = [c for c in a.local_candidates if c.type == "relay"]
    rb = [c for c in b.local_candidates if c.type == "relay"]
    assert ra and rb, (a.local_candidates, b.local_candidates)
    print("relayed", ra[0].host, ra[0].port, rb[0].host, rb[0].port)
    # only relayed candidates are exchanged: the media must go through icicle
    for c in rb:
        await a.add_remote_candidate(c)
    for c in ra:
        await b.add_remote_candidate(c)
    await a.add_remote_candidate(None)
    await b.add_remote_candidate(None)
    a.remote_username, a.remote_password = b.local_username, b.local_password
    b.remote_username, b.remote_password = a.local_username, a.local_password
    await asyncio.wait_for(asyncio.gather(a.connect(), b.connect()), 20)
    for i in range(5):
        await a.send(b"ping %d" % i)
        data = await asyncio.wait_for(b.recv(), 5)
        assert data == b"ping %d" % i, data
        await b.send(b"pong %d" % i)
        data = await asyncio.wait_for(a.recv(), 5)
        assert data == b"pong %d" % i, data
    print("exchanged")
    await a.close()
    await b.close()

asyncio.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3]))
"""
        user, password = turn.rest_credentials(SECRET, "aioice")
        r = suite.run(["/usr/bin/python3", "-c", code, str(self.ic.port), user, password],
                      timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("relayed 127.0.0.1", r.stdout)
        self.assertIn("exchanged", r.stdout)

    def test_metrics(self):
        c = turn.Client("127.0.0.1", self.ic.port, username=USER, password=PASSWORD)
        m = c.allocate()
        self.assertEqual(m.cls, turn.SUCCESS, m.code)
        text = self.ic.metrics()
        self.assertGreaterEqual(suite.metric(text, "icicle_allocations"), 1)
        self.assertIsNotNone(suite.metric(text, "icicle_relayed_packets_total",
                                          {"direction": "client_to_peer"}))
        self.assertIsNotNone(suite.metric(text, "icicle_auth_failures_total",
                                          {"reason": "no_credentials"}))
        self.assertEqual(c.refresh(0).cls, turn.SUCCESS)
        c.close()


class Security(unittest.TestCase):
    """What icicle refuses, with the codes RFC 8656 gives."""

    def setUp(self):
        self.tmpdir = suite.tempdir()
        self.ic = None

    def tearDown(self):
        if self.ic:
            self.ic.stop(self)
        self.tmpdir.cleanup()

    def start(self, **kw):
        self.ic = Icicle(self.tmpdir.name, **kw)
        return self.ic

    def client(self, user=USER, password=PASSWORD, transport="udp"):
        c = turn.Client("127.0.0.1", self.ic.port, transport=transport, username=user,
                        password=password)
        self.addCleanup(c.close)
        return c

    def test_denied_peers(self):
        self.start(allow_loopback=False)
        c = self.client()
        m = c.allocate()
        self.assertEqual(m.cls, turn.SUCCESS, m.code)
        self.assertTrue(m.check_integrity(c.key))
        channel = 0x4000
        for host in ("127.0.0.1", "0.0.0.0", "::1", "::ffff:127.0.0.1", "10.0.0.1",
                     "169.254.169.254", "::", "192.168.1.1", "100.64.0.1", "224.0.0.1",
                     "64:ff9b::7f00:1", "fe80::1"):
            m = c.create_permission(host, 3478)
            self.assertEqual(m.code, 403, host)
            m = c.channel_bind(channel, host, 3478)
            self.assertEqual(m.code, 403, host)
            channel += 1
        # a Send indication to a denied peer is dropped and counted
        before = suite.metric(self.ic.metrics(), "icicle_denied_peers_total")
        c.send_indication("127.0.0.1", self.ic.port, b"x")
        time.sleep(0.3)
        self.assertGreater(suite.metric(self.ic.metrics(), "icicle_denied_peers_total"), before)
        # nothing came back through the relay
        c.sock.settimeout(0.3)
        with self.assertRaises(socket.timeout):
            c.recv_raw()
        for host in ("127.0.0.1", "10.0.0.1"):
            self.assertEqual(c.create_permission(host, 0).code, 403, host)
        # a public address is fine, on any port (CreatePermission ignores it)
        self.assertEqual(c.create_permission("198.51.99.1", 3478).cls, turn.SUCCESS)
        self.assertEqual(c.create_permission("198.51.99.2", 0).cls, turn.SUCCESS)
        # ChannelBind needs a real port
        self.assertEqual(c.channel_bind(0x4fff, "198.51.99.1", 0).code, 403)

    def test_wrong_password_and_unknown_user(self):
        self.start()
        c = self.client(password="wrong")
        m = c.allocate()
        self.assertEqual(m.code, 401)
        self.assertIsNotNone(m.get(turn.NONCE))
        self.assertIsNone(m.get(turn.MESSAGE_INTEGRITY))
        m = self.client(user="mallory", password="x").allocate()
        self.assertEqual(m.code, 401)
        user, _ = turn.rest_credentials(SECRET, "bob")
        m = self.client(user=user, password="not-the-hmac").allocate()
        self.assertEqual(m.code, 401)
        # wrong secret
        user, pw = turn.rest_credentials("other-secret", "bob")
        self.assertEqual(self.client(user=user, password=pw).allocate().code, 401)
        text = self.ic.metrics()
        self.assertGreater(suite.metric(text, "icicle_auth_failures_total",
                                        {"reason": "bad_integrity"}), 0)
        self.assertGreater(suite.metric(text, "icicle_auth_failures_total",
                                        {"reason": "unknown_user"}), 0)

    def test_expired_rest_username(self):
        self.start()
        user, pw = turn.rest_credentials(SECRET, "bob", lifetime=-10)
        self.assertEqual(self.client(user=user, password=pw).allocate().code, 401)
        user, pw = turn.rest_credentials(SECRET, "bob", lifetime=60)
        self.assertEqual(self.client(user=user, password=pw).allocate().cls, turn.SUCCESS)

    def test_stale_nonce(self):
        ic = self.start(nonce_lifetime="1s")
        port = ic.port
        c = turn.Client("127.0.0.1", port, username=USER, password=PASSWORD)
        self.addCleanup(c.close)
        m = c.allocate()
        self.assertEqual(m.cls, turn.SUCCESS, m.code)
        time.sleep(2.2)
        # the same nonce, replayed after its lifetime: 438 with a fresh one
        old = c.nonce
        m = c.transact(turn.REFRESH, [(turn.LIFETIME, b"\0\0\2\x58")])
        self.assertEqual(m.code, 438)
        self.assertNotEqual(m.get(turn.NONCE).decode(), old)
        # the client retries with the new nonce and the allocation is still there
        c.nonce = m.get(turn.NONCE).decode()
        m = c.transact(turn.REFRESH, [(turn.LIFETIME, b"\0\0\2\x58")])
        self.assertEqual(m.cls, turn.SUCCESS, m.code)
        # a nonce issued to another client address is refused as stale
        c2 = turn.Client("127.0.0.1", port, username=USER, password=PASSWORD)
        self.addCleanup(c2.close)
        c2.realm, c2.nonce, c2.key = c.realm, c.nonce, c.key
        self.assertEqual(c2.transact(turn.ALLOCATE, [(turn.REQUESTED_TRANSPORT,
                                                      b"\x11\0\0\0")]).code, 438)

    def test_quotas(self):
        self.start(extra="quotas:\n  allocations_per_user: 2\n  permissions_per_allocation: 2\n")
        clients = [self.client() for _ in range(3)]
        self.assertEqual(clients[0].allocate().cls, turn.SUCCESS)
        self.assertEqual(clients[1].allocate().cls, turn.SUCCESS)
        self.assertEqual(clients[2].allocate().code, 486)
        # another user is not affected
        self.assertEqual(self.client(user="bob", password="builder").allocate().cls,
                         turn.SUCCESS)
        # freeing one makes room
        self.assertEqual(clients[0].refresh(0).cls, turn.SUCCESS)
        self.assertEqual(clients[2].allocate().cls, turn.SUCCESS)
        # permissions per allocation
        c = clients[1]
        self.assertEqual(c.create_permission("198.51.99.1").cls, turn.SUCCESS)
        self.assertEqual(c.create_permission("198.51.99.2").cls, turn.SUCCESS)
        self.assertEqual(c.create_permission("198.51.99.3").code, 508)
        text = self.ic.metrics()
        self.assertGreater(suite.metric(text, "icicle_quota_rejections_total",
                                        {"quota": "allocations_per_user"}), 0)

    def test_quotas_count_the_user_of_rest_credentials(self):
        # A REST username is EXPIRY:USER; credentials minted at different times for one user are
        # one user to the quotas, or a user could take every relay port with fresh credentials.
        self.start(extra="quotas:\n  allocations_per_user: 2\n")
        now = int(time.time())
        creds = [turn.rest_credentials(SECRET, "mallory", now=now + i) for i in range(4)]
        mallory = [self.client(user=user, password=pw) for user, pw in creds]
        codes = []
        for c in mallory:
            m = c.allocate()
            codes.append(m.code if m.cls == turn.ERROR else "ok")
        self.assertEqual(codes, ["ok", "ok", 486, 486])
        # other REST users, and a static user of the same name, have quotas of their own
        user, pw = turn.rest_credentials(SECRET, "bob")
        self.assertEqual(self.client(user=user, password=pw).allocate().cls, turn.SUCCESS)
        user, pw = turn.rest_credentials(SECRET, USER)
        self.assertEqual(self.client(user=user, password=pw).allocate().cls, turn.SUCCESS)
        self.assertEqual(self.client().allocate().cls, turn.SUCCESS)
        self.assertEqual(self.client().allocate().cls, turn.SUCCESS)
        self.assertEqual(self.client().allocate().code, 486)
        # usernames without a user part ("EXPIRY") all count as one anonymous user
        codes = []
        for i in range(3):
            username = str(now + 3600 + i)
            pw = base64.b64encode(hmac.new(SECRET.encode(), username.encode(),
                                           hashlib.sha1).digest()).decode()
            m = self.client(user=username, password=pw).allocate()
            codes.append(m.code if m.cls == turn.ERROR else "ok")
        self.assertEqual(codes, ["ok", "ok", 486])
        # once one of mallory's allocations ends, another credential of hers takes its place
        self.assertEqual(mallory[0].refresh(0).cls, turn.SUCCESS)
        self.assertEqual(mallory[2].allocate().cls, turn.SUCCESS)
        self.assertEqual(mallory[3].allocate().code, 486)
        self.assertGreater(suite.metric(self.ic.metrics(), "icicle_quota_rejections_total",
                                        {"quota": "allocations_per_user"}), 0)

    def test_allocation_errors(self):
        self.start()
        c = self.client()
        self.assertEqual(c.allocate().cls, turn.SUCCESS)
        # a second Allocate on the same 5-tuple with another transaction: 437
        self.assertEqual(c.allocate().code, 437)
        # TCP relays are not offered
        c2 = self.client()
        m = c2.authed(turn.ALLOCATE, [(turn.REQUESTED_TRANSPORT, b"\x06\0\0\0")])
        self.assertEqual(m.code, 442)
        m = c2.authed(turn.ALLOCATE, [])
        self.assertEqual(m.code, 400)
        # requests needing an allocation without one: 437
        self.assertEqual(c2.create_permission("198.51.99.1").code, 437)
        # an unknown comprehension-required attribute: 420
        m = c2.authed(turn.ALLOCATE, [(turn.REQUESTED_TRANSPORT, b"\x11\0\0\0"),
                                      (0x0031, b"abcd")])
        self.assertEqual(m.code, 420)
        self.assertEqual(m.get(turn.UNKNOWN_ATTRIBUTES), b"\x00\x31")
        # IPv6 relays are not configured here: both families asked, IPv4 given, and
        # ADDRESS-ERROR-CODE 440 for IPv6
        c3 = self.client()
        m = c3.allocate(extra=[(turn.ADDITIONAL_ADDRESS_FAMILY, b"\x02\0\0\0")])
        self.assertEqual(m.cls, turn.SUCCESS, m.code)
        self.assertTrue(m.check_integrity(c3.key))
        self.assertEqual(len(m.all(turn.XOR_RELAYED_ADDRESS)), 1)
        self.assertEqual(m.get(0x8001)[:4], b"\x02\x00\x04\x28")
        m = c2.authed(turn.ALLOCATE, [(turn.REQUESTED_TRANSPORT, b"\x11\0\0\0"),
                                      (turn.REQUESTED_ADDRESS_FAMILY, b"\x02\0\0\0")])
        self.assertEqual(m.code, 440)
        # lifetime 0 deletes, and then the allocation is gone
        self.assertEqual(c.refresh(0).cls, turn.SUCCESS)
        self.assertEqual(c.refresh(600).code, 437)

    def test_even_port_reservation(self):
        self.start()
        c = self.client()
        m = c.allocate(extra=[(turn.EVEN_PORT, b"\x80")])
        self.assertEqual(m.cls, turn.SUCCESS, m.code)
        self.assertTrue(m.check_integrity(c.key))
        port = m.addr(turn.XOR_RELAYED_ADDRESS)[1]
        self.assertEqual(port % 2, 0)
        token = m.get(turn.RESERVATION_TOKEN)
        self.assertEqual(len(token), 8)
        # a retransmission of that Allocate gets the same answer, token included
        again = c.transact(turn.ALLOCATE, [(turn.REQUESTED_TRANSPORT, b"\x11\0\0\0"),
                                           (turn.EVEN_PORT, b"\x80")], tid=m.tid)
        self.assertEqual(again.get(turn.RESERVATION_TOKEN), token)
        c2 = self.client(user="bob", password="builder")
        # a token goes alone: not with EVEN-PORT, REQUESTED- or ADDITIONAL-ADDRESS-FAMILY
        for extra in ((turn.EVEN_PORT, b"\0"), (turn.REQUESTED_ADDRESS_FAMILY, b"\x01\0\0\0"),
                      (turn.ADDITIONAL_ADDRESS_FAMILY, b"\x02\0\0\0")):
            m = c2.allocate(extra=[(turn.RESERVATION_TOKEN, token), extra])
            self.assertEqual(m.code, 400, extra)
        # EVEN-PORT with R and both families: 400
        m = c2.allocate(extra=[(turn.EVEN_PORT, b"\x80"),
                               (turn.ADDITIONAL_ADDRESS_FAMILY, b"\x02\0\0\0")])
        self.assertEqual(m.code, 400)
        # a token never issued: 508
        bad = bytes(b ^ 0x5A for b in token)
        self.assertEqual(c2.allocate(extra=[(turn.RESERVATION_TOKEN, bad)]).code, 508)
        # the token gives the port above, once
        m = c2.allocate(extra=[(turn.RESERVATION_TOKEN, token)])
        self.assertEqual(m.cls, turn.SUCCESS, m.code)
        self.assertEqual(m.addr(turn.XOR_RELAYED_ADDRESS), ("127.0.0.1", port + 1))
        self.assertIsNone(m.get(turn.RESERVATION_TOKEN))
        c3 = self.client(user="bob", password="builder")
        self.assertEqual(c3.allocate(extra=[(turn.RESERVATION_TOKEN, token)]).code, 508)
        # and the reserved port relays like any other
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(peer.close)
        peer.bind(("127.0.0.1", 0))
        peer.settimeout(3)
        self.assertEqual(c2.create_permission("127.0.0.1", peer.getsockname()[1]).cls,
                         turn.SUCCESS)
        c2.send_indication("127.0.0.1", peer.getsockname()[1], b"odd port")
        data, src = peer.recvfrom(100)
        self.assertEqual((data, src), (b"odd port", ("127.0.0.1", port + 1)))

    def test_rfc8489_password_algorithms_and_sha256_integrity(self):
        self.start()
        # the challenge: a nonce with the security-feature cookie, and the algorithms
        c = self.client()
        m = c.transact(turn.ALLOCATE, [(turn.REQUESTED_TRANSPORT, b"\x11\0\0\0")], auth=False)
        self.assertEqual(m.code, 401)
        self.assertTrue(m.get(turn.NONCE).startswith(b"obMatJos2AAAB"), m.get(turn.NONCE))
        self.assertEqual(m.get(turn.PASSWORD_ALGORITHMS), b"\0\2\0\0\0\1\0\0")
        # an RFC 8489 client: SHA-256 key, MESSAGE-INTEGRITY-SHA256, answered the same way
        c = turn.Client("127.0.0.1", self.ic.port, username=USER, password=PASSWORD,
                        pwalg=turn.SHA256, sha256=True)
        self.addCleanup(c.close)
        m = c.allocate()
        self.assertEqual(m.cls, turn.SUCCESS, m.code)
        self.assertEqual(c.key, turn.long_term_key(USER, "icicle.test", PASSWORD, turn.SHA256))
        self.assertTrue(m.check_integrity(c.key, sha256=True))
        self.assertIsNone(m.get(turn.MESSAGE_INTEGRITY))
        self.assertEqual(c.create_permission("198.51.99.1").cls, turn.SUCCESS)
        m = c.refresh(600)
        self.assertEqual(m.cls, turn.SUCCESS, m.code)
        self.assertTrue(m.check_integrity(c.key, sha256=True))
        # the SHA-256 key with classic MESSAGE-INTEGRITY; MD5 chosen explicitly with SHA-256 MI
        for alg, sha in ((turn.SHA256, False), (turn.MD5, True)):
            user, pw = turn.rest_credentials(SECRET, "rfc8489")
            c = turn.Client("127.0.0.1", self.ic.port, username=user, password=pw, pwalg=alg,
                            sha256=sha)
            self.addCleanup(c.close)
            m = c.allocate()
            self.assertEqual(m.cls, turn.SUCCESS, (alg, sha, m.code))
            self.assertTrue(m.check_integrity(c.key, sha256=sha))
        # a wrong password is still a 401
        c = turn.Client("127.0.0.1", self.ic.port, username=USER, password="wrong",
                        pwalg=turn.SHA256, sha256=True)
        self.addCleanup(c.close)
        self.assertEqual(c.allocate().code, 401)
        # PASSWORD-ALGORITHM without the list, or with a list not the server's: 400
        c = turn.Client("127.0.0.1", self.ic.port, username=USER, password=PASSWORD,
                        pwalg=turn.SHA256, sha256=True)
        self.addCleanup(c.close)
        self.assertEqual(c.allocate().cls, turn.SUCCESS)
        c.pwalgs = b"\0\2\0\0"  # SHA-256 alone: the offer was tampered with
        self.assertEqual(c.refresh(600).code, 400)
        c.pwalgs = None
        self.assertEqual(c.refresh(600).code, 400)

    def test_relay_end_to_end_raw(self):
        self.start()
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(peer.close)
        peer.bind(("127.0.0.1", 0))
        peer.settimeout(3)
        pport = peer.getsockname()[1]
        for transport in ("udp", "tcp"):
            c = self.client(transport=transport)
            m = c.allocate()
            self.assertEqual(m.cls, turn.SUCCESS, m.code)
            rhost, rport = m.addr(turn.XOR_RELAYED_ADDRESS)
            self.assertEqual(rhost, "127.0.0.1")
            self.assertEqual(m.addr(turn.XOR_MAPPED_ADDRESS)[0], "127.0.0.1")
            # without a permission nothing passes either way
            peer.sendto(b"early", (rhost, rport))
            time.sleep(0.3)  # read (and dropped) before the permission exists
            self.assertEqual(c.create_permission("127.0.0.1", pport).cls, turn.SUCCESS)
            c.send_indication("127.0.0.1", pport, b"via send")
            data, src = peer.recvfrom(100)
            self.assertEqual((data, src), (b"via send", (rhost, rport)))
            peer.sendto(b"back", src)
            m = turn.Message(c.recv_raw())
            self.assertEqual((m.method, m.cls), (turn.DATA, turn.INDICATION))
            self.assertEqual(m.get(turn.DATA_ATTR), b"back")
            self.assertEqual(m.addr(turn.XOR_PEER_ADDRESS), ("127.0.0.1", pport))
            self.assertEqual(c.channel_bind(0x4001, "127.0.0.1", pport).cls, turn.SUCCESS)
            c.send_channel(0x4001, b"odd")
            self.assertEqual(peer.recvfrom(100)[0], b"odd")
            peer.sendto(b"12345", src)
            self.assertEqual(c.recv_raw(), b"\x40\x01\x00\x0512345")
            # the same channel for another peer, or another channel for this peer: 400
            self.assertEqual(c.channel_bind(0x4001, "127.0.0.1", pport + 1).code, 400)
            self.assertEqual(c.channel_bind(0x4002, "127.0.0.1", pport).code, 400)
            self.assertEqual(c.refresh(0).cls, turn.SUCCESS)

    def test_bandwidth_per_allocation(self):
        self.start(extra="quotas:\n  bandwidth_per_allocation: 1000\n")
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(peer.close)
        peer.bind(("127.0.0.1", 0))
        peer.settimeout(0.5)
        pport = peer.getsockname()[1]
        c = self.client()
        self.assertEqual(c.allocate().cls, turn.SUCCESS)
        self.assertEqual(c.channel_bind(0x4000, "127.0.0.1", pport).cls, turn.SUCCESS)
        for _ in range(20):
            c.send_channel(0x4000, b"x" * 200)
        got = 0
        try:
            while True:
                peer.recvfrom(1000)
                got += 1
        except socket.timeout:
            pass
        # a bucket of 1000 bytes: five datagrams of 200, the rest dropped
        self.assertGreaterEqual(got, 4)
        self.assertLessEqual(got, 7)
        self.assertGreater(suite.metric(self.ic.metrics(), "icicle_quota_rejections_total",
                                        {"quota": "bandwidth_per_allocation"}), 0)

    def test_bandwidth_per_user(self):
        self.start(extra="quotas:\n  bandwidth_per_user: 1000\n")
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(peer.close)
        peer.bind(("127.0.0.1", 0))
        peer.settimeout(0.5)
        pport = peer.getsockname()[1]
        # two allocations of one user share 1000 bytes/s; another user has its own budget
        clients = [self.client(), self.client(), self.client(user="bob", password="builder")]
        relays = []
        for c in clients:
            m = c.allocate()
            self.assertEqual(m.cls, turn.SUCCESS)
            relays.append(m.addr(turn.XOR_RELAYED_ADDRESS))
            self.assertEqual(c.channel_bind(0x4000, "127.0.0.1", pport).cls, turn.SUCCESS)
        for _ in range(10):
            for c in clients:
                c.send_channel(0x4000, b"x" * 200)
        got = {}
        try:
            while True:
                _, src = peer.recvfrom(1000)
                got[src] = got.get(src, 0) + 1
        except socket.timeout:
            pass
        alice = got.get(relays[0], 0) + got.get(relays[1], 0)
        self.assertGreaterEqual(got.get(relays[2], 0), 4)
        self.assertGreaterEqual(alice, 4)
        self.assertLessEqual(alice, 7)
        self.assertGreater(suite.metric(self.ic.metrics(), "icicle_quota_rejections_total",
                                        {"quota": "bandwidth_per_user"}), 0)

    def test_bandwidth_per_user_across_rest_credentials(self):
        # bandwidth_per_user is keyed like the allocation quota: two credentials of one REST user
        # share one budget
        self.start(extra="quotas:\n  bandwidth_per_user: 1000\n")
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(peer.close)
        peer.bind(("127.0.0.1", 0))
        peer.settimeout(0.5)
        pport = peer.getsockname()[1]
        now = int(time.time())
        clients = []
        for i in range(2):
            user, pw = turn.rest_credentials(SECRET, "mallory", now=now + i)
            clients.append(self.client(user=user, password=pw))
        relays = []
        for c in clients:
            m = c.allocate()
            self.assertEqual(m.cls, turn.SUCCESS)
            relays.append(m.addr(turn.XOR_RELAYED_ADDRESS))
            self.assertEqual(c.channel_bind(0x4000, "127.0.0.1", pport).cls, turn.SUCCESS)
        for _ in range(10):
            for c in clients:
                c.send_channel(0x4000, b"x" * 200)
        got = 0
        try:
            while True:
                peer.recvfrom(1000)
                got += 1
        except socket.timeout:
            pass
        # one bucket of 1000 bytes for both: about five datagrams of 200, not ten
        self.assertGreaterEqual(got, 4)
        self.assertLessEqual(got, 7)

    def test_ipv6_relays(self):
        self.start(ipv6=True)
        peer = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        self.addCleanup(peer.close)
        peer.bind(("::1", 0))
        peer.settimeout(3)
        pport = peer.getsockname()[1]
        # both families at once (RFC 8656 ADDITIONAL-ADDRESS-FAMILY)
        c = self.client()
        m = c.allocate(extra=[(turn.ADDITIONAL_ADDRESS_FAMILY, b"\x02\0\0\0")])
        self.assertEqual(m.cls, turn.SUCCESS, m.code)
        relayed = [turn.parse_xor_addr(v, m.tid) for v in m.all(turn.XOR_RELAYED_ADDRESS)]
        self.assertEqual([h for h, _ in relayed], ["127.0.0.1", "::1"])
        # an IPv6 peer goes out of the IPv6 relay
        self.assertEqual(c.create_permission("::1", pport).cls, turn.SUCCESS)
        c.send_indication("::1", pport, b"six")
        data, src = peer.recvfrom(100)
        self.assertEqual((data, src[:2]), (b"six", relayed[1]))
        peer.sendto(b"back", src)
        m = turn.Message(c.recv_raw())
        self.assertEqual(m.get(turn.DATA_ATTR), b"back")
        self.assertEqual(m.addr(turn.XOR_PEER_ADDRESS), ("::1", pport))
        # IPv6 only (REQUESTED-ADDRESS-FAMILY); an IPv4 peer then mismatches (443)
        c2 = self.client()
        m = c2.allocate(extra=[(turn.REQUESTED_ADDRESS_FAMILY, b"\x02\0\0\0")])
        self.assertEqual(m.cls, turn.SUCCESS, m.code)
        self.assertEqual(m.addr(turn.XOR_RELAYED_ADDRESS)[0], "::1")
        self.assertEqual(c2.create_permission("127.0.0.1", 9).code, 443)

    def test_malformed_input_does_not_crash(self):
        self.start(extra="quotas:\n  unauthenticated_rate: 0\n")
        rnd = random.Random(7)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(s.close)
        good, _ = turn.build(turn.ALLOCATE, turn.REQUEST,
                             [(turn.REQUESTED_TRANSPORT, b"\x11\0\0\0"),
                              (turn.USERNAME, b"alice"), (turn.REALM, b"x"),
                              (turn.NONCE, b"y" * 40)], key=b"k" * 16, fingerprint=True)
        samples = [b"", b"\0", b"\x40\x00", b"\x40\x00\xff\xff", b"\x00\x01\x00\x04" + b"\0" * 20,
                   b"\xff" * 100, good[:-1], good[:30], good + b"\0\0\0\0"]
        for _ in range(300):
            b = bytearray(good)
            for _ in range(rnd.randrange(1, 6)):
                b[rnd.randrange(len(b))] = rnd.randrange(256)
            samples.append(bytes(b))
        for _ in range(100):
            samples.append(bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 200))))
        for data in samples:
            s.sendto(data, ("127.0.0.1", self.ic.port))
        # over TCP too: garbage closes the connection, nothing else
        for data in samples[:20]:
            try:
                t = socket.create_connection(("127.0.0.1", self.ic.port), timeout=2)
                t.sendall(data)
                t.close()
            except OSError:
                pass
        time.sleep(0.5)
        c = self.client()
        self.assertEqual(c.binding().cls, turn.SUCCESS)
        self.assertEqual(c.allocate().cls, turn.SUCCESS)

    def test_unauthenticated_rate_limit(self):
        self.start(extra="quotas:\n  unauthenticated_rate: 2\n  unauthenticated_burst: 5\n",
                   threads=1)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(s.close)
        s.settimeout(0.5)
        for _ in range(30):
            data, _ = turn.build(turn.BINDING, turn.REQUEST, [])
            s.sendto(data, ("127.0.0.1", self.ic.port))
        answers = 0
        try:
            while True:
                s.recv(1000)
                answers += 1
        except socket.timeout:
            pass
        # the burst (less the Binding the start-up check made), and nothing more
        self.assertGreaterEqual(answers, 3)
        self.assertLessEqual(answers, 6)
        self.assertGreater(suite.metric(self.ic.metrics(), "icicle_rate_limited_total"), 0)

    def test_tcp_connection_cap_and_rate_limit(self):
        self.start(extra="quotas:\n  connections_per_worker: 2\n  unauthenticated_rate: 2\n"
                   "  unauthenticated_burst: 5\n", threads=1)
        a = self.client(transport="tcp")
        b = self.client(transport="tcp")
        self.assertEqual(a.binding().cls, turn.SUCCESS)
        self.assertEqual(b.binding().cls, turn.SUCCESS)
        # a third connection to the same worker is closed as soon as it is accepted (the reset
        # can even reach the client while its connect() is still returning)
        try:
            c = socket.create_connection(("127.0.0.1", self.ic.port), timeout=2)
            self.addCleanup(c.close)
            self.assertEqual(c.recv(100), b"")
        except ConnectionResetError:
            pass
        self.assertGreater(suite.metric(self.ic.metrics(), "icicle_connections_refused_total",
                                        {"limit": "connections_per_worker"}), 0)
        # the unauthenticated budget counts over TCP too: once spent, the connection ends
        before = suite.metric(self.ic.metrics(), "icicle_rate_limited_total")
        # in one write: the server may end the connection before a tenth separate send
        a.send_raw(b"".join(turn.build(turn.BINDING, turn.REQUEST, [])[0] for _ in range(10)))
        answers = 0
        with self.assertRaises((ConnectionError, OSError)):
            while True:
                turn.Message(a.recv_raw())
                answers += 1
        self.assertLessEqual(answers, 4)  # the burst of 5, less a's and b's first Binding
        self.assertGreater(suite.metric(self.ic.metrics(), "icicle_rate_limited_total"), before)
        # UDP sources have a budget of their own
        u = self.client()
        self.assertEqual(u.binding().cls, turn.SUCCESS)

    def test_sighup_rotates_secrets_without_dropping_allocations(self):
        ic = self.start()
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(peer.close)
        peer.bind(("127.0.0.1", 0))
        peer.settimeout(3)
        pport = peer.getsockname()[1]
        user, pw = turn.rest_credentials(SECRET, "carol")
        c = self.client(user=user, password=pw)
        self.assertEqual(c.allocate().cls, turn.SUCCESS)
        self.assertEqual(c.channel_bind(0x4000, "127.0.0.1", pport).cls, turn.SUCCESS)
        # rotation, step 1: new secret first, old one still accepted
        with open(ic.secret_path, "w") as f:
            f.write("new-secret\n%s\n" % SECRET)
        ic.daemon.signal(signal.SIGHUP)
        time.sleep(1)
        u2, p2 = turn.rest_credentials("new-secret", "dave")
        self.assertEqual(self.client(user=u2, password=p2).allocate().cls, turn.SUCCESS)
        u3, p3 = turn.rest_credentials(SECRET, "erin")
        self.assertEqual(self.client(user=u3, password=p3).allocate().cls, turn.SUCCESS)
        # step 2: the old secret removed
        with open(ic.secret_path, "w") as f:
            f.write("new-secret\n")
        ic.daemon.signal(signal.SIGHUP)
        time.sleep(1)
        u4, p4 = turn.rest_credentials(SECRET, "frank")
        self.assertEqual(self.client(user=u4, password=p4).allocate().code, 401)
        # the allocation made with the old secret lives on: relays and refreshes
        c.send_channel(0x4000, b"still here")
        self.assertEqual(peer.recvfrom(100)[0], b"still here")
        self.assertEqual(c.refresh(600).cls, turn.SUCCESS)
        self.assertIn("credentials reloaded", ic.daemon.output())


if __name__ == "__main__":
    unittest.main()
