"""XMPP over WebSocket (RFC 7395) on xmpp-core, with Debian's python3-websockets as the
browser: the handshake and its subprotocol, <open/> and <close/> framing, SASL, binding, and a
chat with a slixmpp user on a plain XMPP stream."""

import asyncio
import base64
import os
import re
import ssl
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import suite  # noqa: E402
import xmpp  # noqa: E402
from xmpp import login, logout, run  # noqa: E402

import websockets  # noqa: E402
import websockets.exceptions  # noqa: E402

PW = "correct horse"
FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"
OPEN = "<open xmlns='%s' to='localhost' version='1.0'/>" % FRAMING


class WsClient:
    """A browser's XMPP over WebSocket session, by hand."""

    def __init__(self, ws):
        self.ws = ws

    async def recv(self, timeout=10):
        return await asyncio.wait_for(self.ws.recv(), timeout)

    async def until(self, pattern, timeout=10):
        while True:
            m = await self.recv(timeout)
            if re.search(pattern, m):
                return m

    async def session(self, user, password, resource="browser"):
        await self.ws.send(OPEN)
        opened = await self.recv()
        assert opened.startswith("<open xmlns='%s'" % FRAMING), opened
        features = await self.recv()
        assert "PLAIN" in features and "starttls" not in features, features
        auth = base64.b64encode(("\0%s\0%s" % (user, password)).encode()).decode()
        await self.ws.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
                           "%s</auth>" % auth)
        assert "<success" in await self.recv()
        await self.ws.send(OPEN)
        await self.until("<open ")
        assert "urn:ietf:params:xml:ns:xmpp-bind" in await self.recv()
        await self.ws.send("<iq xmlns='jabber:client' type='set' id='b'>"
                           "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>%s"
                           "</resource></bind></iq>" % resource)
        bound = await self.until("<jid>")
        return re.search(r"<jid>([^<]+)</jid>", bound).group(1)


class WebSocket(unittest.TestCase):
    def setUp(self):
        self.tmpdir = suite.tempdir()
        # quiet sessions are trimmed (parser given back) within the tests
        self.srv = xmpp.Server(self.tmpdir.name, extra="c2s:\n  trim_after: 300ms\n")
        self.ctx = ssl.create_default_context(cafile=self.srv.cert)
        self.url = "wss://localhost:%d/xmpp-websocket" % self.srv.ws

    def tearDown(self):
        try:
            self.assertEqual(self.srv.stop(), 0, self.srv.output())
            suite.assert_clean(self, self.srv.output())
        finally:
            self.srv.close()
            self.tmpdir.cleanup()

    def connect(self, **kw):
        kw.setdefault("subprotocols", ["xmpp"])
        return websockets.connect(self.url, ssl=self.ctx, **kw)

    def test_chat_with_a_stream_client(self):
        alice = self.srv.register("alice", PW)
        bob = self.srv.register("bob", PW)

        async def go():
            b = await login(self.srv, bob + "/desk", PW)
            async with self.connect() as ws:
                self.assertEqual(ws.subprotocol, "xmpp")
                w = WsClient(ws)
                full = await w.session("alice", PW)
                self.assertEqual(full, alice + "/browser")
                await asyncio.sleep(0.8)  # quiet: trimmed, then on as before
                self.assertGreaterEqual(self.srv.metric("xmpp_c2s_trims_total"), 1)
                await ws.send("<presence xmlns='jabber:client'/>")
                await ws.send("<message xmlns='jabber:client' to='%s' type='chat'>"
                              "<body>from the browser</body></message>" % bob)
                m = await b.next_message()
                self.assertEqual(m["body"], "from the browser")
                self.assertEqual(str(m["from"]), full)
                b.send_message(mto=full, mbody="to the browser", mtype="chat")
                got = await w.until("to the browser")
                # one element per message, declaring its own namespace
                self.assertTrue(got.startswith("<message xmlns='jabber:client'"), got)
                st, body = self.srv.api("GET", "sessions")
                self.assertIn(full, [s["jid"] for s in body["sessions"]])
                self.assertEqual(self.srv.metric("xmpp_connections",
                                                 {"listener": "websocket"}), 1)
                await ws.send("<close xmlns='%s'/>" % FRAMING)
                self.assertIn("<close", await w.until("<close"))
                with self.assertRaises(websockets.exceptions.ConnectionClosed):
                    await w.recv()
            # gone: counted off the WebSocket gauge, not the stream one
            for _ in range(50):
                if self.srv.metric("xmpp_connections", {"listener": "websocket"}) == 0:
                    break
                await asyncio.sleep(0.1)
            self.assertEqual(self.srv.metric("xmpp_connections", {"listener": "websocket"}), 0)
            self.assertEqual(self.srv.metric("xmpp_connections", {"listener": "c2s"}), 1)
            await logout(b)
        run(go())

    def test_handshake_and_framing_errors(self):
        self.srv.register("alice", PW)

        async def go():
            # no xmpp subprotocol: refused at the handshake
            with self.assertRaises(websockets.exceptions.InvalidStatusCode) as e:
                async with self.connect(subprotocols=["chat"]):
                    pass
            self.assertEqual(e.exception.status_code, 400)
            # a stanza before <open/>
            async with self.connect() as ws:
                await ws.send("<message xmlns='jabber:client'><body>x</body></message>")
                err = await WsClient(ws).until("stream:error")
                self.assertIn("bad-format", err)
                self.assertIn("<close", await WsClient(ws).until("<close"))
            # binary messages are not XMPP
            async with self.connect() as ws:
                await ws.send(OPEN)
                await WsClient(ws).until("stream:features")
                await ws.send(b"\x00\x01")
                self.assertIn("bad-format", await WsClient(ws).until("stream:error"))
            # what a stream error looks like over WebSocket: its own namespace declaration
            async with self.connect() as ws:
                await ws.send("<open xmlns='%s' to='elsewhere.example' version='1.0'/>"
                              % FRAMING)
                err = await WsClient(ws).until("stream:error")
                self.assertIn("xmlns:stream='http://etherx.jabber.org/streams'", err)
                self.assertIn("host-unknown", err)
        run(go())

    def test_session_moves_home_and_stops_cleanly(self):
        # several sessions: with two workers some go to another shard after SASL
        names = ["u%d" % i for i in range(6)]
        for n in names:
            self.srv.register(n, PW)

        async def go():
            conns = []
            for n in names:
                ws = await self.connect().__aenter__()
                conns.append((ws, await WsClient(ws).session(n, PW)))
            for ws, full in conns:
                await ws.send("<message xmlns='jabber:client' to='%s'><body>ping %s</body>"
                              "</message>" % (conns[0][1], full))
            w0 = WsClient(conns[0][0])
            senders = set()
            while len(senders) < len(conns):
                m = await w0.until("ping ")
                senders.add(re.search(r"ping ([^<]+)<", m).group(1))
            self.assertEqual(senders, {full for _ws, full in conns})
            st, body = self.srv.api("GET", "stats")
            self.assertEqual(body["sessions"], len(names))
            for ws, _ in conns:
                await ws.close()
        run(go())


if __name__ == "__main__":
    unittest.main()
