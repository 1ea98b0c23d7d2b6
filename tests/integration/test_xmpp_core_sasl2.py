"""xmpp-core's instant reconnection: SASL2 (XEP-0388) with Bind 2 (XEP-0386), inline stream
management and carbons, and FAST tokens (XEP-0484). A client logs in with its password once,
gets a token, and after losing its network comes back in one round trip with its session
resumed and what arrived meanwhile delivered. Tokens rotate, expire, are revoked (admin API,
xmppctl, a new password), refuse a replayed count and a wrong channel binding. SASL of RFC 6120
keeps working beside it."""

import base64
import hashlib
import os
import re
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import xmpp  # noqa: E402
from xmpp import NS_SASL2, NS_BIND2, NS_FAST, NS_SM, sasl2_token  # noqa: E402

PW = "correct horse"
AGENT = "d3b07384-d113-4ec6-a6b2-4c5a7d2e1f90"


def resource_for(tag, agent):
    """What the server binds for tag and user-agent id: tag, a dot, 8 hex digits of SHA-256."""
    return "%s.%s" % (tag, hashlib.sha256(agent.encode()).hexdigest()[:8])


class Sasl2Test(xmpp.ServerCase):
    def setUp(self):
        super().setUp()
        self.alice = self.srv.register("alice", PW)
        self.bob = self.srv.register("bob", PW)

    def client(self, agent=AGENT, **kw):
        c = self.keep(xmpp.Sasl2(self.srv, agent=agent, **kw))
        c.features()
        return c

    def raw(self):
        return self.keep(xmpp.Raw(self.srv))

    def token(self, mech="HT-SHA-256-NONE", agent=AGENT, **inline):
        """A password login that asks for a token; returns (client, token, success)."""
        c = self.client(agent=agent)
        ok, out = c.scram("alice", PW, request_token=mech, **inline)
        self.assertTrue(ok, out)
        tok = sasl2_token(out)
        self.assertIsNotNone(tok, out)
        return c, tok[0], out

    def fast(self, token, agent=AGENT, **kw):
        c = self.client(agent=agent)
        ok, out = c.fast("alice", token, **kw)
        return c, ok, out

    def wait_metric(self, name, labels, want, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.srv.metric(name, labels) == want:
                return
            time.sleep(0.05)
        self.assertEqual(self.srv.metric(name, labels), want, name)


class Features(Sasl2Test):
    def test_offered_over_tls_with_inline_features(self):
        c = self.keep(xmpp.Sasl2(self.srv))
        f = c.features()
        m = re.search(r"<authentication xmlns='%s'>(.*?)</authentication>" % NS_SASL2, f, re.S)
        self.assertTrue(m, f)
        auth = m.group(1)
        mechs = re.findall(r"<mechanism>([^<]+)</mechanism>", auth.split("<inline>")[0])
        # the same as SASL's, -PLUS included on TLS
        self.assertIn("SCRAM-SHA-256", mechs)
        self.assertIn("SCRAM-SHA-256-PLUS", mechs)
        sasl1 = re.search(r"<mechanisms[^>]*>(.*?)</mechanisms>", f, re.S).group(1)
        self.assertEqual(mechs, re.findall(r"<mechanism>([^<]+)</mechanism>", sasl1))
        inline = auth.split("<inline>", 1)[1]
        self.assertIn("<bind xmlns='%s'>" % NS_BIND2, inline)
        self.assertIn("<feature var='%s'/>" % NS_SM, inline)
        self.assertIn("<feature var='urn:xmpp:carbons:2'/>", inline)
        self.assertIn("<sm xmlns='%s'/>" % NS_SM, inline)
        fast = re.search(r"<fast xmlns='%s'>(.*?)</fast>" % NS_FAST, inline).group(1)
        self.assertEqual(re.findall(r"<mechanism>([^<]+)</mechanism>", fast),
                         ["HT-SHA-256-ENDP", "HT-SHA-256-NONE"])

    def test_no_fast_before_tls(self):
        r = self.raw()
        f = r.open()
        # c2s.require_tls (the default): nothing to authenticate with before STARTTLS
        self.assertNotIn("<authentication", f)
        r.send("<authenticate xmlns='%s' mechanism='HT-SHA-256-NONE'/>" % NS_SASL2)
        self.assertIn("<encryption-required", r.until("</failure>"))


class Login(Sasl2Test):
    def test_scram_bind2_sm_carbons_then_fast_resume_in_one_round_trip(self):
        c = self.client()
        ok, out = c.scram("alice", PW, tag="phone", sm=True, carbons=True,
                          request_token="HT-SHA-256-NONE")
        self.assertTrue(ok, out)
        full = "%s/%s" % (self.alice, resource_for("phone", AGENT))
        self.assertIn("<authorization-identifier>%s</authorization-identifier>" % full, out)
        m = re.search(r"<bound xmlns='%s'><enabled xmlns='%s' id='([^']+)' resume='true'"
                      % (NS_BIND2, NS_SM), out)
        self.assertTrue(m, out)
        previd = m.group(1)
        token, expiry = sasl2_token(out)
        self.assertRegex(expiry, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertGreaterEqual(len(base64.b64decode(token)), 32)
        # no restart: the stream's features follow <success/> at once
        self.assertIn("</stream:features>", c.until("</stream:features>"))
        self.assertNotIn("<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'", c.buf.decode())
        c.buf = b""
        # carbons are on: what alice sends from another session is copied here
        a2 = self.raw()
        a2.session("alice", PW, "desk")
        a2.send("<message to='%s' type='chat' id='c1'><body>from desk</body></message>"
                % self.bob)
        got = c.until("</message>")
        self.assertIn("<sent xmlns='urn:xmpp:carbons:2'>", got)
        self.assertIn("from desk", got)
        c.send("<a xmlns='%s' h='1'/>" % NS_SM)
        # the phone loses its network; bob writes meanwhile
        c.close()
        self.wait_metric("xmpp_sm_hibernated_sessions", None, 1)
        b = self.raw()
        b.session("bob", PW, "b")
        for i in range(3):
            b.send("<message to='%s' type='chat' id='m%d'><body>while away %d</body>"
                   "</message>" % (full, i, i))
        # back: FAST and resumption in the one <authenticate/>
        c2 = self.client()
        ok, out = c2.fast("alice", token, tag="phone", sm=True, resume=(previd, 1))
        self.assertTrue(ok, out)
        self.assertEqual(c2.sent_elements, 1)  # one round trip after TLS
        self.assertIn("<resumed xmlns='%s' previd='%s'" % (NS_SM, previd), out)
        self.assertIn("<authorization-identifier>%s</authorization-identifier>" % full, out)
        self.assertNotIn("<bound", out)  # resumed, nothing to bind
        got = c2.until("while away 2")
        for i in range(3):
            self.assertIn("while away %d" % i, got)
        self.assertEqual(self.srv.metric("xmpp_logins_total",
                                         {"mechanism": "HT-SHA-256", "result": "ok"}), 1)
        self.assertEqual(self.srv.metric("xmpp_sm_resumptions_total", {"result": "ok"}), 1)
        self.assertEqual(self.srv.metric("xmpp_fast_tokens_total", {"event": "issued"}), 1)

    def test_inline_inactive_holds_what_can_wait(self):
        c = self.client()
        ok, out = c.scram("alice", PW, tag="phone", inactive=True)
        self.assertTrue(ok, out)
        full = re.search(r"<authorization-identifier>([^<]+)<", out).group(1)
        c.until("</stream:features>")
        c.buf = b""
        b = self.raw()
        b.session("bob", PW, "b")
        b.send("<message to='%s' type='chat' id='s1'><composing "
               "xmlns='http://jabber.org/protocol/chatstates'/></message>" % full)
        # a chat state waits while the client is inactive...
        self.assertFalse(c.closed(1.0))
        self.assertNotIn("composing", c.buf.decode())
        # ...and goes, first, before the message that matters
        b.send("<message to='%s' type='chat' id='s2'><body>hello</body></message>" % full)
        got = c.until("hello")
        self.assertLess(got.index("composing"), got.index("hello"))

    def test_failed_resume_binds_instead(self):
        c, token, _ = self.token()
        ok, out = self.fast(token, tag="phone", resume=("0" * 32, 0))[1:]
        self.assertTrue(ok, out)
        self.assertIn("<failed xmlns='%s'><item-not-found" % NS_SM, out)
        self.assertIn("<bound xmlns='%s'>" % NS_BIND2, out)
        self.assertIn("/%s<" % resource_for("phone", AGENT), out)

    def test_same_agent_same_resource_replaces_its_old_session(self):
        c1 = self.client()
        ok, out = c1.scram("alice", PW, tag="phone")
        self.assertTrue(ok, out)
        c2 = self.client()
        ok, out2 = c2.scram("alice", PW, tag="phone")
        self.assertTrue(ok, out2)
        ident = re.search(r"<authorization-identifier>([^<]+)<", out).group(1)
        self.assertEqual(ident, re.search(r"<authorization-identifier>([^<]+)<", out2).group(1))
        self.assertIn("<conflict", c1.until("</stream:stream>"))
        # another instance of the same software gets another resource
        c3 = self.client(agent="another-instance-0001")
        ok, out3 = c3.scram("alice", PW, tag="phone")
        self.assertTrue(ok, out3)
        self.assertIn("/%s<" % resource_for("phone", "another-instance-0001"), out3)

    def test_without_bind_the_bare_jid_and_the_usual_binding_follow(self):
        c = self.client()
        ok, out = c.scram("alice", PW)
        self.assertTrue(ok, out)
        self.assertIn("<authorization-identifier>%s</authorization-identifier>" % self.alice,
                      out)
        f = c.until("</stream:features>")
        self.assertIn("<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>", f)
        c.buf = b""
        c.send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
               "<resource>r</resource></bind></iq>")
        self.assertIn("<jid>%s/r</jid>" % self.alice, c.until("</iq>"))

    def test_wrong_password_is_a_sasl2_failure_and_sasl1_still_works(self):
        c = self.client()
        ok, out = c.scram("alice", "wrong")
        self.assertFalse(ok)
        self.assertRegex(out, r"<failure xmlns='%s'><not-authorized xmlns='urn:ietf:params:xml:"
                              r"ns:xmpp-sasl'/>" % NS_SASL2)
        # the same stream may try again
        ok, out = c.scram("alice", PW)
        self.assertTrue(ok, out)
        # RFC 6120 SASL, untouched: PLAIN and SCRAM on a raw stream
        r = self.raw()
        r.open()
        r.starttls()
        r.open()
        ok, out = r.scram("bob", PW)
        self.assertTrue(ok, out)
        self.assertIn("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>", out)
        self.assertTrue(self.raw().session("bob", PW, "p").endswith("/p"))

    def test_scram_plus_with_channel_binding(self):
        c = self.client()
        ok, out = c.scram("alice", PW, cb_data=c.endpoint(), tag="t")
        self.assertTrue(ok, out)
        self.assertEqual(self.srv.metric("xmpp_logins_total", {"mechanism": "SCRAM-SHA-256",
                                                              "result": "ok"}), 1)
        # bound to other data: refused
        c2 = self.client()
        ok, out = c2.scram("alice", PW, cb_data=b"\x01" * 32)
        self.assertFalse(ok)
        self.assertIn("<not-authorized", out)

    def test_malformed_requests_fail_with_their_reason(self):
        c = self.client()
        c.element("<authenticate xmlns='%s'/>" % NS_SASL2)
        kind, out = c.outcome()
        self.assertIn("<invalid-mechanism", out)
        c.element("<authenticate xmlns='%s' mechanism='SCRAM-SHA-256'><user-agent id='has "
                  "space'/></authenticate>" % NS_SASL2)
        kind, out = c.outcome()
        self.assertIn("<malformed-request", out)
        self.assertIn("printable ASCII", out)
        # a token for a client that does not say who it is
        c.agent = None
        ok, out = c.scram("alice", PW, request_token="HT-SHA-256-NONE")
        self.assertFalse(ok)
        self.assertIn("user-agent", out)
        # a Bind 2 tag beyond what a resource may take is refused before the exchange
        c2 = self.client()
        ok, out = c2.scram("alice", PW, tag="x" * 40)
        self.assertFalse(ok)
        self.assertIn("longer than 32", out)


class Tokens(Sasl2Test):
    extra = "fast:\n  token_lifetime: 1h\n  rotate_before: 2h\n"

    def test_rotation_keeps_the_old_token_until_the_new_one_is_used(self):
        # every login rotates here (rotate_before > lifetime)
        _, t1, _ = self.token()
        c, ok, out = self.fast(t1)
        self.assertTrue(ok, out)
        t2 = sasl2_token(out)[0]
        self.assertNotEqual(t1, t2)
        # the new token was perhaps never received: the old one still works
        c, ok, out = self.fast(t1)
        self.assertTrue(ok, out)
        t3 = sasl2_token(out)[0]
        # a token issued and never used is replaced by the next one
        c, ok, out = self.fast(t2)
        self.assertFalse(ok)
        self.assertIn("<not-authorized", out)
        c, ok, out = self.fast(t3)
        self.assertTrue(ok, out)
        # t3 used: t1 is done
        c, ok, out = self.fast(t1)
        self.assertFalse(ok)
        self.assertIn("<not-authorized", out)
        self.assertIn("no token of this client matches", out)

    def test_tokens_belong_to_their_client_and_mechanism(self):
        _, t, _ = self.token()
        c, ok, out = self.fast(t, agent="some-other-client")
        self.assertFalse(ok)
        self.assertIn("no token for this client", out)
        c, ok, out = self.fast(t, mech="HT-SHA-256-ENDP")
        self.assertFalse(ok)  # the mac is over other data: no match
        self.assertIn("<not-authorized", out)
        _, t_endp, _ = self.token(mech="HT-SHA-256-ENDP", agent="endp-client")
        c, ok, out = self.fast(t_endp, agent="endp-client", mech="HT-SHA-256-NONE")
        self.assertFalse(ok)  # the right token, without the binding it was issued for
        self.assertIn("another mechanism", out)
        c, ok, out = self.fast("A" * 44)
        self.assertFalse(ok)
        self.assertIn("<not-authorized", out)
        self.assertEqual(self.srv.metric("xmpp_logins_total",
                                         {"mechanism": "HT-SHA-256", "result": "failed"}), 4)
        # the operator sees why, with the account and the client
        deadline = time.monotonic() + 10
        while "FAST login (HT-SHA-256-ENDP) refused for alice@localhost" not in \
                self.srv.output() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIn("client some-other-client: no token for this client", self.srv.output())

    def test_a_replayed_count_is_refused(self):
        _, t, _ = self.token()
        c, ok, out = self.fast(t, fast_count=5)
        self.assertTrue(ok, out)
        t = sasl2_token(out)[0] if sasl2_token(out) else t
        c, ok, out = self.fast(t, fast_count=1)
        self.assertTrue(ok, out)  # a new token starts over
        c, ok, out = self.fast(t, fast_count=1)
        self.assertFalse(ok)
        self.assertIn("a replay", out)
        c, ok, out = self.fast(t, fast_count=2)
        self.assertTrue(ok, out)
        c = self.client()
        ok, out = c.fast("alice", t, fast_count=0)
        self.assertFalse(ok)
        self.assertIn("<malformed-request", out)

    def test_endp_binds_to_the_certificate(self):
        _, t, _ = self.token(mech="HT-SHA-256-ENDP")
        c, ok, out = self.fast(t, mech="HT-SHA-256-ENDP", cb=b"\x00" * 32)
        self.assertFalse(ok)
        self.assertIn("<not-authorized", out)
        c, ok, out = self.fast(t, mech="HT-SHA-256-ENDP", tag="phone")
        self.assertTrue(ok, out)
        self.assertIn("<bound xmlns='%s'/>" % NS_BIND2, out.replace("></bound>", "/>"))

    def test_invalidate_logs_out(self):
        _, t, _ = self.token()
        c, ok, out = self.fast(t, invalidate=True)
        self.assertTrue(ok, out)
        self.assertIsNone(sasl2_token(out))
        c, ok, out = self.fast(t)
        self.assertFalse(ok)
        self.assertIn("no token for this client", out)


class Revocation(Sasl2Test):
    def test_admin_api_xmppctl_and_password_change_revoke(self):
        _, t, _ = self.token()
        _, t_other, _ = self.token(agent="second-device")
        st, body = self.srv.api("DELETE", "fast-tokens/%s?agent=%s" % (self.alice, AGENT))
        self.assertEqual((st, body), (200, {"jid": self.alice, "revoked": 1}))
        c, ok, out = self.fast(t)
        self.assertFalse(ok)
        self.assertIn("no token for this client", out)
        c, ok, out = self.fast(t_other, agent="second-device")
        self.assertTrue(ok, out)
        # xmppctl, every client of the account
        p = subprocess.run([os.path.join(os.environ["SUITE_BIN"], "xmppctl"), "-u",
                            "http://127.0.0.1:%d" % self.srv.admin, "-t", self.srv.token_file,
                            "fast-revoke", self.alice], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("1 FAST token(s) of %s revoked" % self.alice, p.stdout)
        c, ok, out = self.fast(t_other, agent="second-device")
        self.assertFalse(ok)
        # a new password ends them too
        _, t, _ = self.token()
        st, _ = self.srv.api("PUT", "accounts/%s/password" % self.alice,
                             {"password": "a new one"})
        self.assertEqual(st, 204)
        c, ok, out = self.fast(t)
        self.assertFalse(ok)
        self.assertEqual(self.srv.metric("xmpp_fast_tokens_total", {"event": "revoked"}), 3)
        st, body = self.srv.api("DELETE", "fast-tokens/%s?agent=bad%%20id" % self.alice)
        self.assertEqual(st, 400, body)
        st, body = self.srv.api("GET", "fast-tokens/%s" % self.alice)
        self.assertEqual(st, 405, body)


class WebSocketLogin(Sasl2Test):
    def test_sasl2_plain_and_fast_over_websocket(self):
        import asyncio
        import hmac
        import ssl
        import websockets
        framing = "urn:ietf:params:xml:ns:xmpp-framing"
        ctx = ssl.create_default_context(cafile=self.srv.cert)
        url = "wss://localhost:%d/xmpp-websocket" % self.srv.ws

        async def recv(ws, pattern):
            while True:
                m = await asyncio.wait_for(ws.recv(), 10)
                if re.search(pattern, m):
                    return m

        async def login(mech, initial, extra):
            ws = await websockets.connect(url, ssl=ctx, subprotocols=["xmpp"])
            await ws.send("<open xmlns='%s' to='localhost' version='1.0'/>" % framing)
            f = await recv(ws, "<authentication")
            await ws.send("<authenticate xmlns='%s' mechanism='%s'><initial-response>%s"
                          "</initial-response><user-agent id='%s'/><bind xmlns='%s'>"
                          "<tag>web</tag></bind>%s</authenticate>"
                          % (NS_SASL2, mech, base64.b64encode(initial).decode(), AGENT,
                             NS_BIND2, extra))
            out = await recv(ws, "<success|<failure")
            return ws, f, out

        async def go():
            ws, f, out = await login("PLAIN", b"\0alice\0" + PW.encode(),
                                     "<request-token xmlns='%s' mechanism='HT-SHA-256-NONE'/>"
                                     % NS_FAST)
            self.assertIn("<success", out)
            self.assertIn("/%s<" % resource_for("web", AGENT), out)
            token = sasl2_token(out)[0]
            # the features come in a message of their own, and the session works
            await recv(ws, "<stream:features")
            await ws.send("<message xmlns='jabber:client' to='%s' type='chat'><body>from the "
                          "browser</body></message>" % self.bob)
            await ws.close()
            mac = hmac.new(token.encode(), b"Initiator", hashlib.sha256).digest()
            ws, _, out = await login("HT-SHA-256-NONE", b"alice\0" + mac, "")
            self.assertIn("<success", out)
            self.assertIn("<bound xmlns='%s'" % NS_BIND2, out)
            await ws.close()
        xmpp.run(go())


class Throttle(Sasl2Test):
    extra = "auth:\n  failures_per_user: 2\n"

    def test_failed_fast_logins_count_like_wrong_passwords(self):
        _, t, _ = self.token()
        for _ in range(2):
            c, ok, out = self.fast("B" * 44)
            self.assertFalse(ok)
            self.assertIn("<not-authorized", out)
        # the right token now waits like the right password would
        c, ok, out = self.fast(t)
        self.assertFalse(ok)
        self.assertIn("<temporary-auth-failure", out)
        self.assertGreaterEqual(self.srv.metric("xmpp_logins_throttled_total"), 1)
        c = self.client()
        ok, out = c.scram("alice", PW)
        self.assertFalse(ok)
        self.assertIn("<temporary-auth-failure", out)

    def test_five_failures_end_the_stream(self):
        c = self.client(agent="x-client")
        for i in range(5):
            ok, out = c.fast("nobody%d" % i, "C" * 44)
            self.assertFalse(ok)
        self.assertIn("policy-violation", c.until("</stream:stream>"))


class Expiry(Sasl2Test):
    extra = "fast:\n  token_lifetime: 2s\n  rotate_before: 0s\n"

    def test_an_expired_token_fails_with_credentials_expired(self):
        _, t, out = self.token()
        time.sleep(3)
        c, ok, out = self.fast(t)
        self.assertFalse(ok)
        self.assertIn("<credentials-expired", out)
        self.assertIn("expired", out)


if __name__ == "__main__":
    unittest.main()
