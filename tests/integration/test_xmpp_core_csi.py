"""xmpp-core's client state indication (XEP-0352): an inactive client gets messages with a body
and IQs at once, while presence updates and chat states wait until it is active again (only
the latest presence of each sender, in order with the rest), or until the held queue reaches
its bound; with stream management, held stanzas survive a dropped connection."""

import os
import re
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import xmpp  # noqa: E402

PW = "correct horse"
CSI = "urn:xmpp:csi:0"
SM = "urn:xmpp:sm:3"
CHATSTATES = "http://jabber.org/protocol/chatstates"


class CsiTest(xmpp.ServerCase):
    def setUp(self):
        super().setUp()
        self.srv.register("alice", PW)
        self.srv.register("bob", PW)

    def raw(self):
        return self.keep(xmpp.Raw(self.srv))

    def session(self, user, resource):
        r = self.raw()
        r.session(user, PW, resource)
        return r

    def sync(self, r):
        """A round trip with the server: what r sent before has been handled (and routed on;
        stanzas between two shards keep their order)."""
        r.send("<iq type='get' id='sync'><ping xmlns='urn:xmpp:ping'/></iq>")
        r.until("id='sync'")
        r.buf = r.buf.replace(re.search(rb"<iq[^>]*id='sync'[^>]*(/>|>.*?</iq>)", r.buf,
                                        re.S).group(0), b"")

    def bob_inactive(self):
        """bob on a bound, available session that says it is inactive."""
        b = self.session("bob", "raw")
        b.send("<presence/>")
        b.send("<inactive xmlns='%s'/>" % CSI)
        # so that the state is set before anything is sent to bob
        self.sync(b)
        b.buf = b""
        return b

    def quiet(self, r, seconds=0.5):
        """What r receives within seconds (nothing is expected)."""
        try:
            r.until("\0", timeout=seconds)
        except (AssertionError, socket.timeout):
            pass
        return r.buf.decode()

    def status(self, a, to, text, ptype=None):
        a.send("<presence to='%s'%s><status>%s</status></presence>"
               % (to, " type='%s'" % ptype if ptype else "", text))

    def chatstate(self, a, to, state, mid):
        a.send("<message to='%s' type='chat' id='%s'><%s xmlns='%s'/></message>"
               % (to, mid, state, CHATSTATES))

    def wait_metric(self, name, want, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.srv.metric(name) == want:
                return
            time.sleep(0.05)
        self.assertEqual(self.srv.metric(name), want, name)


class Nonzas(CsiTest):

    def test_offered_after_authentication_only(self):
        r = self.raw()
        out = r.open()
        self.assertNotIn(CSI, out)
        r.starttls()
        r.open()
        self.assertTrue(r.plain("bob", PW))
        r.buf = b""
        self.assertIn("<csi xmlns='%s'/>" % CSI, r.open())

    def test_before_authentication_is_a_stream_error(self):
        r = self.raw()
        r.open()
        r.starttls()
        r.open()
        r.buf = b""
        r.send("<inactive xmlns='%s'/>" % CSI)
        out = r.until("</stream:stream>")
        self.assertIn("<not-authorized xmlns='%s'/>" % xmpp.NS_STREAMS, out)
        self.assertTrue(r.closed())

    def test_unknown_element_is_a_stream_error(self):
        b = self.session("bob", "raw")
        b.send("<sleepy xmlns='%s'/>" % CSI)
        out = b.until("</stream:stream>")
        self.assertIn("unsupported-stanza-type", out)

    def test_no_answer_and_active_twice_is_harmless(self):
        b = self.session("bob", "raw")
        b.send("<active xmlns='%s'/><inactive xmlns='%s'/><inactive xmlns='%s'/>"
               "<active xmlns='%s'/><active xmlns='%s'/>" % ((CSI,) * 5))
        b.send("<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
        out = b.until("id='p'")
        self.assertEqual(len(re.findall(r"<(iq|message|presence|a|failed)[ >/]", out)), 1, out)


class Holding(CsiTest):

    def test_presence_waits_for_active_latest_per_sender_in_order(self):
        b = self.bob_inactive()
        a = self.session("alice", "a")
        a2 = self.session("alice", "a2")
        to = "bob@localhost/raw"
        self.status(a, to, "first")
        self.chatstate(a, to, "composing", "cs1")
        self.sync(a)
        self.status(a2, to, "other")
        self.sync(a2)
        self.status(a, to, "second")
        self.wait_metric("xmpp_csi_superseded_total", 1)
        self.assertEqual(self.quiet(b), "")
        b.send("<active xmlns='%s'/>" % CSI)
        out = b.until("second")
        self.assertNotIn("first", out)
        # in the order they came, the replaced presence at the place of its replacement
        self.assertLess(out.index("cs1"), out.index("other"))
        self.assertLess(out.index("other"), out.index("second"))
        self.assertIn("from='alice@localhost/a2'", out)
        self.wait_metric("xmpp_csi_flushed_total", 3)
        # active again: everything goes at once
        b.buf = b""
        self.status(a, to, "third")
        b.until("third")

    def test_unavailable_replaces_available(self):
        b = self.bob_inactive()
        a = self.session("alice", "a")
        to = "bob@localhost/raw"
        self.status(a, to, "here")
        self.status(a, to, "gone", "unavailable")
        self.wait_metric("xmpp_csi_superseded_total", 1)
        b.send("<active xmlns='%s'/>" % CSI)
        out = b.until("gone")
        self.assertIn("type='unavailable'", out)
        self.assertNotIn("here", out)

    def test_a_message_with_a_body_goes_at_once_after_what_waited(self):
        b = self.bob_inactive()
        a = self.session("alice", "a")
        to = "bob@localhost/raw"
        self.status(a, to, "away-for-now")
        self.chatstate(a, to, "composing", "cs1")
        self.assertEqual(self.quiet(b, 0.3), "")
        a.send("<message to='%s' type='chat' id='m1'><body>hello</body></message>" % to)
        out = b.until("hello")
        self.assertLess(out.index("away-for-now"), out.index("cs1"))
        self.assertLess(out.index("cs1"), out.index("hello"))
        # still inactive: the next chat state waits again
        b.buf = b""
        self.chatstate(a, to, "paused", "cs2")
        self.assertEqual(self.quiet(b, 0.3), "")

    def test_iqs_go_at_once(self):
        b = self.bob_inactive()
        a = self.session("alice", "a")
        to = "bob@localhost/raw"
        self.chatstate(a, to, "composing", "cs1")
        a.send("<iq type='get' id='ping1' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>" % to)
        out = b.until("id='ping1'")
        self.assertLess(out.index("cs1"), out.index("ping1"))
        # bob answers; its own IQ's answer comes at once too
        b.send("<iq type='result' id='ping1' to='alice@localhost/a'/>")
        a.until("id='ping1'")
        b.buf = b""
        b.send("<iq type='get' id='own'><query xmlns='jabber:iq:roster'/></iq>")
        b.until("id='own'")

    def test_an_encrypted_message_and_a_call_go_at_once(self):
        b = self.bob_inactive()
        a = self.session("alice", "a")
        to = "bob@localhost/raw"
        a.send("<message to='%s' type='chat' id='omemo'><encrypted "
               "xmlns='eu.siacs.conversations.axolotl'><header sid='1'/></encrypted></message>"
               % to)
        b.until("id='omemo'")
        a.send("<message to='%s' id='call'><propose xmlns='urn:xmpp:jingle-message:0' "
               "id='c1'/></message>" % to)
        b.until("id='call'")


class Bound(CsiTest):
    extra = "csi:\n  max_held: 3\n"

    def test_the_held_queue_flushes_at_its_bound(self):
        b = self.bob_inactive()
        a = self.session("alice", "a")
        to = "bob@localhost/raw"
        self.chatstate(a, to, "composing", "cs1")
        self.chatstate(a, to, "paused", "cs2")
        self.assertEqual(self.quiet(b), "")
        self.chatstate(a, to, "composing", "cs3")
        out = b.until("cs3")
        self.assertLess(out.index("cs1"), out.index("cs2"))
        self.assertLess(out.index("cs2"), out.index("cs3"))
        self.wait_metric("xmpp_csi_flushed_total", 3)


class Disabled(CsiTest):
    extra = "csi:\n  enabled: false\n"

    def test_not_offered_and_refused(self):
        r = self.raw()
        r.open()
        r.starttls()
        r.open()
        self.assertTrue(r.plain("bob", PW))
        r.buf = b""
        self.assertNotIn(CSI, r.open())
        b = self.session("bob", "raw")
        b.send("<inactive xmlns='%s'/>" % CSI)
        self.assertIn("unsupported-stanza-type", b.until("</stream:stream>"))


class WithStreamManagement(CsiTest):

    def test_held_stanzas_are_counted_only_once_sent(self):
        b = self.raw()
        b.session("bob", PW, "raw")
        b.send("<enable xmlns='%s' resume='true'/>" % SM)
        b.until("<enabled")
        b.until("/>")
        b.buf = b""
        b.send("<presence/><inactive xmlns='%s'/>" % CSI)
        b.send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
        b.until("id='p1'")
        a = self.session("alice", "a")
        to = "bob@localhost/raw"
        self.chatstate(a, to, "composing", "cs1")
        self.status(a, to, "held-status")
        self.sync(a)
        got = self.quiet(b, 0.3)
        self.assertNotIn("cs1", got)
        sent = len(re.findall(r"<(message|presence|iq)[ >]", got))
        # one more than the client received is too many: the held ones do not count
        b.buf = b""
        b.send("<a xmlns='%s' h='%d'/>" % (SM, sent + 1))
        out = b.until("</stream:stream>")
        self.assertIn("send-count='%d'" % sent, out)
        self.assertNotIn("cs1", out)

    def test_a_dropped_connection_keeps_what_was_held(self):
        b = self.raw()
        b.session("bob", PW, "raw")
        b.send("<enable xmlns='%s' resume='true'/>" % SM)
        b.until("<enabled")
        b.until("/>")
        text = b.buf.decode()
        previd = re.search(r"<enabled[^>]*id='([^']+)'", text).group(1)
        b.send("<presence/><inactive xmlns='%s'/>" % CSI)
        self.sync(b)
        a = self.session("alice", "a")
        to = "bob@localhost/raw"
        self.chatstate(a, to, "composing", "cs1")
        self.status(a, to, "held-status")
        self.sync(a)
        self.assertNotIn("cs1", self.quiet(b, 0.3))
        b.close()
        self.wait_metric("xmpp_sm_hibernated_sessions", 1)
        b2 = self.raw()
        b2.open()
        b2.starttls()
        b2.open()
        self.assertTrue(b2.plain("bob", PW))
        b2.buf = b""
        b2.open()
        b2.buf = b""
        b2.send("<resume xmlns='%s' previd='%s' h='1'/>" % (SM, previd))
        out = b2.until("held-status")
        self.assertIn("<resumed", out)
        self.assertLess(out.index("<resumed"), out.index("cs1"))
        self.assertLess(out.index("cs1"), out.index("held-status"))
        # the resumed stream is active: a chat state comes at once
        b2.buf = b""
        self.chatstate(a, to, "paused", "cs2")
        b2.until("cs2")

    def test_a_session_that_ends_routes_what_was_held(self):
        other = self.session("bob", "other")
        other.send("<presence/>")
        self.sync(other)
        b = self.raw()
        b.session("bob", PW, "raw")
        b.send("<enable xmlns='%s'/>" % SM)  # not resumable: the session ends with the stream
        b.until("<enabled")
        b.send("<presence/><inactive xmlns='%s'/>" % CSI)
        self.sync(b)
        a = self.session("alice", "a")
        self.chatstate(a, "bob@localhost/raw", "composing", "cs1")
        self.sync(a)
        self.assertNotIn("cs1", self.quiet(b, 0.3))
        other.buf = b""
        b.close()
        # as a stanza the client never acknowledged: to the user's other session
        out = other.until("id='cs1'")
        self.assertIn("composing", out)
        self.wait_metric("xmpp_sm_rerouted_total", 1)


if __name__ == "__main__":
    unittest.main()
