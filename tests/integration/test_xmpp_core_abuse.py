"""xmpp-core under hostile input: what no client should send gets the stream error RFC 6120 names,
the offending stream closes, and a bystander's session goes on as if nothing happened."""

import asyncio
import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import suite  # noqa: E402
import xmpp  # noqa: E402
from xmpp import login, logout, run  # noqa: E402

PW = "correct horse"


class ServerFixture(unittest.TestCase):
    """One server for the class's tests, with alice, bob and mallory."""
    extra = ""

    @classmethod
    def setUpClass(cls):
        cls.tmpdir = suite.tempdir()
        cls.srv = xmpp.Server(cls.tmpdir.name, cls.extra)
        cls.alice = cls.srv.register("alice", PW)
        cls.bob = cls.srv.register("bob", PW)
        cls.mallory = cls.srv.register("mallory", PW)

    @classmethod
    def tearDownClass(cls):
        try:
            status = cls.srv.stop()
            out = cls.srv.output()
            assert status == 0, out
            for mark in suite.SANITIZER_MARKS:
                assert mark not in out, out
        finally:
            cls.srv.close()
            cls.tmpdir.cleanup()


class Abuse(ServerFixture):
    extra = ("c2s:\n  max_stanza: 8k\n  login_timeout: 2s\n  connections_per_source: 20\n"
             "  max_queued: 64k\n  rate: 0\n")

    def bystander_still_served(self):
        """alice and bob exchange a message: the server is fine."""
        async def go():
            a = await login(self.srv, self.alice + "/a", PW)
            b = await login(self.srv, self.bob + "/b", PW)
            a.send_message(mto=self.bob + "/b", mbody="still there?", mtype="chat")
            self.assertEqual((await b.next_message())["body"], "still there?")
            await logout(a, b)
        run(go())

    def stream_error(self, raw, condition, timeout=10):
        out = raw.until("</stream:stream>", timeout)
        self.assertIn("<%s xmlns='%s'/>" % (condition, xmpp.NS_STREAMS), out)
        self.assertTrue(raw.closed(), "the connection stays open after the stream error")
        return out

    def test_entity_bomb(self):
        r = xmpp.Raw(self.srv)
        try:
            r.send("<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>"
                   "<!ENTITY lol2 '&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;'>]>"
                   "<stream:stream to='localhost' version='1.0' xmlns='jabber:client' "
                   "xmlns:stream='http://etherx.jabber.org/streams'>&lol2;")
            self.stream_error(r, "restricted-xml")
        finally:
            r.close()
        self.bystander_still_served()

    def test_not_well_formed(self):
        r = xmpp.Raw(self.srv)
        try:
            r.open()
            r.send("<message><body>unclosed</message>")
            self.stream_error(r, "not-well-formed")
        finally:
            r.close()

    def test_wrong_namespace_and_unknown_host(self):
        r = xmpp.Raw(self.srv)
        try:
            r.send("<?xml version='1.0'?><stream:stream to='localhost' version='1.0' "
                   "xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'>")
            self.stream_error(r, "invalid-namespace")
        finally:
            r.close()
        r = xmpp.Raw(self.srv)
        try:
            r.send("<?xml version='1.0'?><stream:stream to='elsewhere.example' version='1.0' "
                   "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>")
            self.stream_error(r, "host-unknown")
        finally:
            r.close()

    def test_stanza_before_authentication(self):
        r = xmpp.Raw(self.srv)
        try:
            r.open()
            r.starttls()
            r.open()
            r.send("<message to='alice@localhost'><body>who am I?</body></message>")
            self.stream_error(r, "not-authorized")
        finally:
            r.close()

    def test_oversized_stanza(self):
        r = xmpp.Raw(self.srv)
        try:
            r.session(self.mallory, PW, "big")
            r.send("<message to='alice@localhost'><body>" + "A" * 20000 + "</body></message>")
            self.stream_error(r, "policy-violation")
        finally:
            r.close()
        self.bystander_still_served()

    def test_spoofed_from(self):
        async def go():
            b = await login(self.srv, self.bob + "/b", PW)
            r = xmpp.Raw(self.srv)
            try:
                r.session(self.mallory, PW, "spoof")
                r.send("<message from='alice@localhost/a' to='bob@localhost/b'>"
                       "<body>trust me</body></message>")
                self.stream_error(r, "invalid-from")
            finally:
                r.close()
            await asyncio.sleep(0.3)
            self.assertTrue(b.messages.empty(), "the forged message was delivered")
            await logout(b)
        run(go())

    def test_login_timeout(self):
        r = xmpp.Raw(self.srv)
        try:
            r.open()
            t0 = time.monotonic()
            self.stream_error(r, "connection-timeout", timeout=10)
            self.assertLess(time.monotonic() - t0, 6)
        finally:
            r.close()

    def test_connections_per_source(self):
        socks = []
        refused = 0
        try:
            for _ in range(25):
                try:
                    socks.append(socket.create_connection(("127.0.0.1", self.srv.c2s),
                                                          timeout=5))
                except ConnectionResetError:
                    refused += 1  # cut before connect() returned: refused all the same
            time.sleep(0.5)
            for s in socks:
                s.settimeout(0.5)
                try:
                    if s.recv(1) == b"":
                        refused += 1
                except socket.timeout:
                    pass
                except OSError:
                    refused += 1
            self.assertGreaterEqual(refused, 5)
        finally:
            for s in socks:
                s.close()
        time.sleep(0.5)
        self.bystander_still_served()

    def test_client_that_does_not_read_is_cut(self):
        before = self.srv.metric("xmpp_slow_readers_cut_total")

        async def go():
            a = await login(self.srv, self.alice + "/flood", PW)
            r = xmpp.Raw(self.srv, rcvbuf=4096)
            try:
                full = r.session(self.mallory, PW, "sleepy")
                # mallory reads nothing; alice sends it far more than max_queued and what the
                # kernel buffers hold
                body = "x" * 4000
                for _ in range(3000):
                    a.send_message(mto=full, mbody=body, mtype="chat")
                    await asyncio.sleep(0)
                for _ in range(100):
                    if self.srv.metric("xmpp_slow_readers_cut_total") > before:
                        break
                    await asyncio.sleep(0.1)
            finally:
                r.close()
            await logout(a)
        run(go())
        self.assertEqual(self.srv.metric("xmpp_slow_readers_cut_total"), before + 1)
        self.bystander_still_served()

class Shaper(ServerFixture):
    """c2s.rate 32k (a burst of twice that): 200 KB take well over 3 s to be read."""
    extra = "c2s:\n  rate: 32k\n"

    def test_shaper_slows_a_flood(self):
        async def go():
            b = await login(self.srv, self.bob + "/sink", PW)
            r = xmpp.Raw(self.srv)
            try:
                full = r.session(self.mallory, PW, "flood")
                chunk = ("<message to='%s/sink' type='chat'><body>%s</body></message>"
                         % (self.bob, "y" * 1900))
                t0 = time.monotonic()
                r.sock.settimeout(30)
                for _ in range(100):
                    r.send(chunk)
                got = 0
                while got < 100:
                    await b.next_message(timeout=20)
                    got += 1
                elapsed = time.monotonic() - t0
                self.assertGreater(elapsed, 3.0)
                del full
            finally:
                r.close()
            await logout(b)
        run(go(), timeout=120)



if __name__ == "__main__":
    unittest.main()
