"""xmpp-core's XEP-0114 component listener: the handshake with the configured secret, stanzas
both ways between users and a component, what a component may not do - and platypus, the
suite's push daemon, attaching to it as it attaches to Prosody."""

import asyncio
import hashlib
import os
import re
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import suite  # noqa: E402
import xmpp  # noqa: E402
from xmpp import login, logout, run  # noqa: E402

PW = "correct horse"
SECRET = "component-secret"  # what xmpp.Server writes to comp.secret


class Component:
    """A raw XEP-0114 component connection."""

    def __init__(self, port, domain="push.localhost", secret=SECRET):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""
        self.sock.sendall(("<?xml version='1.0'?><stream:stream "
                           "xmlns='jabber:component:accept' "
                           "xmlns:stream='http://etherx.jabber.org/streams' to='%s'>"
                           % domain).encode())
        head = self.until(">")
        m = re.search(r"id='([^']+)'", head)
        self.id = m.group(1) if m else None
        if self.id:
            digest = hashlib.sha1((self.id + secret).encode()).hexdigest()
            self.sock.sendall(("<handshake>%s</handshake>" % digest).encode())

    def until(self, text, timeout=10):
        deadline = time.monotonic() + timeout
        while text not in self.buf.decode(errors="replace"):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %r; got %r" % (text, self.buf))
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                break
            self.buf += chunk
        return self.buf.decode(errors="replace")

    def send(self, xml):
        self.sock.sendall(xml.encode())

    def close(self):
        self.sock.close()


class Components(xmpp.ServerCase):
    def test_handshake_and_stanzas_both_ways(self):
        alice = self.srv.register("alice", PW)
        k = Component(self.srv.comp)
        try:
            self.assertIn("<handshake/>", k.until("<handshake/>"))

            async def go():
                a = await login(self.srv, alice + "/a", PW)
                a.send_message(mto="push.localhost", mbody="to the component", mtype="chat")
                out = await asyncio.get_event_loop().run_in_executor(
                    None, k.until, "to the component")
                # the component reads its own namespace, and a trusted sender
                self.assertRegex(out, r"<message [^>]*from='alice@localhost/a'")
                self.assertNotIn("jabber:client", out.split("<handshake/>")[1])
                k.send("<message from='push.localhost' to='%s/a' type='chat'>"
                       "<body>from the component</body></message>" % alice)
                self.assertEqual((await a.next_message())["body"], "from the component")
                # a subdomain sender of the component's own domain is its own business
                k.send("<message from='node@push.localhost/x' to='%s/a'>"
                       "<body>from a user of the component</body></message>" % alice)
                m = await a.next_message()
                self.assertEqual(str(m["from"]), "node@push.localhost/x")
                await logout(a)
            run(go())
        finally:
            k.close()

    def test_wrong_secret_unknown_domain_forged_sender(self):
        k = Component(self.srv.comp, secret="not-the-secret")
        try:
            out = k.until("</stream:stream>")
            self.assertIn("<not-authorized", out)
        finally:
            k.close()
        k = Component(self.srv.comp, domain="other.localhost")
        try:
            out = k.until("</stream:stream>")
            self.assertIn("<host-unknown", out)
        finally:
            k.close()
        self.srv.register("alice", PW)
        k = Component(self.srv.comp)
        try:
            k.until("<handshake/>")
            k.send("<message from='alice@localhost' to='alice@localhost'><body>forged</body>"
                   "</message>")
            out = k.until("</stream:stream>")
            self.assertIn("<invalid-from", out)
        finally:
            k.close()

    def test_a_second_connection_replaces_the_first(self):
        k1 = Component(self.srv.comp)
        try:
            k1.until("<handshake/>")
            k2 = Component(self.srv.comp)
            try:
                k2.until("<handshake/>")
                out = k1.until("</stream:stream>")
                self.assertIn("<conflict", out)
            finally:
                k2.close()
        finally:
            k1.close()

    def test_unconnected_component_bounces(self):
        alice = self.srv.register("alice", PW)

        async def go():
            a = await login(self.srv, alice + "/a", PW)
            a.send_message(mto="push.localhost", mbody="anyone?", mtype="chat")
            m = await a.next_message(body=False)
            self.assertEqual(m["type"], "error")
            self.assertEqual(m["error"]["condition"], "service-unavailable")
            await logout(a)
        run(go())


class Platypus(unittest.TestCase):
    """platypus's component front end, against xmpp-core instead of Prosody."""

    def test_platypus_attaches_and_answers(self):
        with suite.tempdir() as tmp:
            srv = xmpp.Server(tmp)
            admin = suite.free_port()
            pp = None
            try:
                alice = srv.register("alice", PW)
                pp = suite.Daemon("platypus", """log:
  level: debug
admin:
  listen: 127.0.0.1:%d
shutdown_timeout: 5s
rest:
  enabled: false
component:
  enabled: true
  server: 127.0.0.1:%d
  domain: push.localhost
  secret: %s/comp.secret
  reconnect_min: 100ms
  reconnect_max: 500ms
""" % (admin, srv.comp, tmp), tmp)
                suite.wait_http(admin, daemon=pp)
                deadline = time.monotonic() + 15
                while "push.localhost connected" not in srv.output():
                    self.assertLess(time.monotonic(), deadline, srv.output())
                    time.sleep(0.1)

                async def go():
                    a = await login(srv, alice + "/a", PW)
                    info = await a["xep_0030"].get_info(jid="push.localhost")
                    self.assertIn(("pubsub", "push"), [
                        (i[0], i[1]) for i in info["disco_info"]["identities"]])
                    self.assertIn("urn:xmpp:push:0", info["disco_info"]["features"])
                    pong = await a["xep_0199"].send_ping("push.localhost", timeout=10)
                    self.assertEqual((pong["type"], str(pong["from"])),
                                     ("result", "push.localhost"))
                    # the server lists its component
                    items = await a["xep_0030"].get_items(jid="localhost")
                    self.assertIn("push.localhost",
                                  [i[0] for i in items["disco_items"]["items"]])
                    await logout(a)
                run(go())
                self.assertEqual(pp.stop(), 0, pp.output())
                suite.assert_clean(self, pp.output())
            finally:
                if pp:
                    pp.close()
                self.assertEqual(srv.stop(), 0)
                suite.assert_clean(self, srv.output())
                srv.close()


if __name__ == "__main__":
    unittest.main()
