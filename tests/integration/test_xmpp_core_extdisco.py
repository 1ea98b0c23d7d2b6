"""xmpp-core's external service discovery (XEP-0215): a real client (slixmpp, with the IQs
written as XML since slixmpp has no XEP-0215 plugin) asks for STUN/TURN services, and the
credentials it gets allocate relays on a real icicle sharing the secret file, with a raw TURN
client and with coturn's turnutils_uclient; a tampered password does not. Also: who may ask,
<credentials/>, metrics, and the configuration errors about the secret file."""

import os
import subprocess
import sys
import time
import unittest
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(__file__))
import suite  # noqa: E402
import turn  # noqa: E402
import xmpp  # noqa: E402
from test_icicle import Icicle, Peer, uclient  # noqa: E402
from test_xmpp_core_components import Component  # noqa: E402
from xmpp import logout, run  # noqa: E402

from slixmpp.exceptions import IqError  # noqa: E402

PW = "correct horse"
NS = "urn:xmpp:extdisco:2"


def extdisco_config(ic, secret_path=None, extra_server=""):
    return ("extdisco:\n  secret_file: %s\n  lifetime: 1h\n  servers:\n"
            "    - host: 127.0.0.1\n      port: %d\n      transports: [udp, tcp]\n"
            "      turns_port: %d\n%s"
            % (secret_path or ic.secret_path, ic.port, ic.tls_port, extra_server))


async def ask(c, child):
    iq = c.make_iq_get(ito="localhost")
    iq.append(ET.fromstring(child))
    return await iq.send(timeout=10)


def services(res, name="services"):
    return [dict(s.attrib) for s in res.xml.find("{%s}%s" % (NS, name))
            if s.tag == "{%s}service" % NS]


class ExtDisco(unittest.TestCase):
    def setUp(self):
        self.tmpdir = suite.tempdir()
        self.ic = Icicle(self.tmpdir.name)
        self.srv = xmpp.Server(self.tmpdir.name, extra=extdisco_config(self.ic))
        self.alice = self.srv.register("alice", PW)

    def tearDown(self):
        try:
            self.assertEqual(self.srv.stop(), 0, self.srv.output())
            suite.assert_clean(self, self.srv.output())
            self.ic.stop(self)
        finally:
            self.srv.close()
            self.tmpdir.cleanup()

    def test_credentials_allocate_on_icicle(self):
        async def go():
            a = await xmpp.login(self.srv, self.alice, PW)
            try:
                info = await a["xep_0030"].get_info(jid="localhost", timeout=10)
                self.assertIn(NS, info["disco_info"]["features"])
                before = time.time()
                res = services(await ask(a, "<services xmlns='%s'/>" % NS))
                typed = services(await ask(a, "<services xmlns='%s' type='turn'/>" % NS))
                one = services(await ask(a, "<credentials xmlns='%s'><service host='127.0.0.1' "
                                            "type='turn' port='%d' transport='tcp'/>"
                                            "</credentials>" % (NS, self.ic.port)),
                               "credentials")
                with self.assertRaises(IqError) as e:
                    await ask(a, "<credentials xmlns='%s'><service host='turn.invalid' "
                                 "type='turn'/></credentials>" % NS)
                self.assertEqual(e.exception.condition, "item-not-found")
                with self.assertRaises(IqError) as e:
                    await ask(a, "<credentials xmlns='%s'><service type='turn'/>"
                                 "</credentials>" % NS)
                self.assertEqual(e.exception.condition, "bad-request")
                return res, typed, one, before
            finally:
                await logout(a)

        res, typed, one, before = run(go())
        kinds = sorted((s["type"], s["transport"], s["port"]) for s in res)
        self.assertEqual(kinds, sorted([("stun", "udp", str(self.ic.port)),
                                        ("turn", "udp", str(self.ic.port)),
                                        ("turn", "tcp", str(self.ic.port)),
                                        ("turns", "tcp", str(self.ic.tls_port))]))
        self.assertEqual(sorted(s["type"] for s in typed), ["turn", "turn"])
        self.assertEqual([(s["type"], s["transport"]) for s in one], [("turn", "tcp")])
        for s in res:
            self.assertEqual(s["host"], "127.0.0.1")
            if s["type"] == "stun":
                self.assertNotIn("username", s)
                continue
            expiry, user = s["username"].split(":", 1)
            self.assertEqual(user, self.alice)
            # lifetime: 1h
            self.assertAlmostEqual(int(expiry), before + 3600, delta=120)
            self.assertEqual(s["expires"], time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                         time.gmtime(int(expiry))))
            self.assertEqual(s["restricted"], "1")

        # the credentials work on icicle, over UDP and TCP
        turn_udp = [s for s in res if s["type"] == "turn" and s["transport"] == "udp"][0]
        for s in (turn_udp, one[0]):
            c = turn.Client("127.0.0.1", int(s["port"]), transport=s["transport"],
                            username=s["username"], password=s["password"])
            try:
                m = c.allocate()
                self.assertEqual(m.cls, turn.SUCCESS, (s, m.code))
                self.assertIsNotNone(m.addr(turn.XOR_RELAYED_ADDRESS))
            finally:
                c.close()
        # ... and a tampered one does not (one character of the password changed)
        pw = turn_udp["password"]
        bad = ("A" if pw[0] != "A" else "B") + pw[1:]
        c = turn.Client("127.0.0.1", self.ic.port, username=turn_udp["username"], password=bad)
        try:
            self.assertEqual(c.allocate().code, 401)
        finally:
            c.close()
        # nor a username stretched past its expiry with the same password
        expiry, user = turn_udp["username"].split(":", 1)
        c = turn.Client("127.0.0.1", self.ic.port, username="%d:%s" % (int(expiry) + 86400, user),
                        password=pw)
        try:
            self.assertEqual(c.allocate().code, 401)
        finally:
            c.close()

        # a real TURN client relays data with them
        peer = Peer()
        try:
            out, totals, lost = uclient(self.ic, peer, ["-u", turn_udp["username"],
                                                        "-w", turn_udp["password"]],
                                        n=10, clients=1)
        finally:
            peer.close()
        self.assertTrue(totals, out[-2000:])
        sent, got = map(int, totals[-1])
        self.assertGreater(sent, 0, out[-2000:])
        self.assertGreater(got, 0, out[-2000:])
        peer = Peer()
        try:
            out, totals, _ = uclient(self.ic, peer, ["-u", turn_udp["username"], "-w", bad],
                                     n=3, clients=1)
        finally:
            peer.close()
        self.assertFalse(totals and int(totals[-1][1]) > 0, out[-2000:])

        self.assertEqual(self.srv.metric("xmpp_extdisco_requests_total",
                                         {"result": "services"}), 2)
        self.assertEqual(self.srv.metric("xmpp_extdisco_requests_total",
                                         {"result": "credentials"}), 1)
        self.assertEqual(self.srv.metric("xmpp_extdisco_requests_total",
                                         {"result": "refused"}), 2)

    def test_only_local_sessions(self):
        # a component (trusted for its own domain, but no user) is refused
        k = Component(self.srv.comp)
        try:
            k.until("<handshake/>")
            k.send("<iq type='get' id='x1' from='push.localhost' to='localhost'>"
                   "<services xmlns='%s'/></iq>" % NS)
            out = k.until("</iq>")
            self.assertIn("type='error'", out.replace('"', "'"))
            self.assertIn("<forbidden", out)
            self.assertNotIn("password", out)
        finally:
            k.close()

        # an IQ set is not how XEP-0215 asks
        async def go():
            a = await xmpp.login(self.srv, self.alice, PW)
            try:
                iq = a.make_iq_set(ito="localhost")
                iq.append(ET.fromstring("<services xmlns='%s'/>" % NS))
                with self.assertRaises(IqError) as e:
                    await iq.send(timeout=10)
                self.assertEqual(e.exception.condition, "bad-request")
            finally:
                await logout(a)

        run(go())


class ExtDiscoOff(unittest.TestCase):
    def test_not_configured(self):
        with suite.tempdir() as tmp:
            srv = xmpp.Server(tmp)
            try:
                alice = srv.register("alice", PW)

                async def go():
                    a = await xmpp.login(srv, alice, PW)
                    try:
                        info = await a["xep_0030"].get_info(jid="localhost", timeout=10)
                        self.assertNotIn(NS, info["disco_info"]["features"])
                        with self.assertRaises(IqError) as e:
                            await ask(a, "<services xmlns='%s'/>" % NS)
                        self.assertEqual(e.exception.condition, "service-unavailable")
                    finally:
                        await logout(a)

                run(go())
                self.assertEqual(srv.stop(), 0, srv.output())
            finally:
                srv.close()

    def test_secret_file_errors(self):
        binary = os.path.join(suite.BIN, "xmpp-core")
        with suite.tempdir() as tmp:
            empty = os.path.join(tmp, "empty")
            comments = os.path.join(tmp, "comments")
            open(empty, "w").close()
            with open(comments, "w") as f:
                f.write("# no secret yet\n\n")
            base = ("hosts: [localhost]\nstorage:\n  path: %s/db\nextdisco:\n  servers:\n"
                    "    - host: turn.example.com\n" % tmp)
            cases = [
                ("", "secret_file"),                                   # servers, no secret
                ("  secret_file: %s/missing\n" % tmp, "missing"),      # no such file
                ("  secret_file: %s\n" % empty, "empty"),              # empty file
            ]
            for secret, word in cases:
                path = os.path.join(tmp, "x.yaml")
                with open(path, "w") as f:
                    f.write(base + secret)
                r = subprocess.run([binary, "-c", path, "--check-config"], capture_output=True,
                                   text=True, timeout=30)
                self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
                self.assertIn(word, r.stdout + r.stderr)
            # a transport that is not one
            with open(path, "w") as f:
                f.write(base + "      transports: [udp, sctp]\n  secret_file: %s\n" % comments)
            r = subprocess.run([binary, "-c", path, "--check-config"], capture_output=True,
                               text=True, timeout=30)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("sctp", r.stdout + r.stderr)
            # a file with only comments passes the loader but the daemon refuses to start
            with open(path, "w") as f:
                f.write(base + "  secret_file: %s\nadmin:\n  listen: 127.0.0.1:%d\n"
                        % (comments, suite.free_port()))
            r = subprocess.run([binary, "-c", path], capture_output=True, text=True,
                               timeout=60)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("no secret in it", r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
