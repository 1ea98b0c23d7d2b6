"""A phone's real journey through the suite, from login to a call: SASL2 (SCRAM) with Bind 2,
inline stream management and a FAST token request; push enabled towards platypus (attached to
xmpp-core as its XEP-0114 component, delivering to the strict APNs mock); the phone's TCP
connection cut without a stream end, so its session hibernates; a message from another user
wakes it with exactly one push; the phone comes back with FAST and an inline <resume/> in one
round trip after TLS and gets the message, once. Then a Jingle Message Initiation <propose/>
wakes the sleeping callee with a VoIP push, and the callee resumes again and gets the propose.
Last, APNs says the token is dead: the registration goes and nothing more is pushed.

503 from APNs keeping the registration, and a burst making one push, are covered for the same
wiring by test_xmpp_core_push.py; they are not repeated here."""

import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import xmpp  # noqa: E402
from test_xmpp_core_push import APP, NS_PUSH, PW, TOKEN, TOPIC, PushBase, options  # noqa: E402
from xmpp import NS_BIND2, NS_SM, sasl2_token  # noqa: E402

AGENT = "5b0f4c2e-8a7d-4f3b-9e61-2c4d8a9b7e10"
NS_JMI = "urn:xmpp:jingle-message:0"
# "within a second" is the product's promise on a quiet machine; the bound below leaves the
# sanitizer build on a loaded machine some room without losing sight of it
PUSH_WITHIN = 1.0
STANZA = re.compile(r"<(iq|message|presence)[\s/>]")


class Phone:
    """One phone: its successive SASL2 connections, and the count of stanzas it received over
    the life of its stream management session (what it tells the server when it resumes)."""

    def __init__(self, test, user):
        self.test, self.user = test, user
        self.conn = None
        self.received = 0
        self.token = self.previd = None

    def connect(self):
        c = xmpp.Sasl2(self.test.srv, agent=AGENT)
        self.test.raws.append(c)
        c.features()
        self.conn = c
        return c

    def count(self, text):
        """Counts the stanzas in text (received after the login's answer)."""
        self.received += len(STANZA.findall(text))

    def read_until(self, marker, timeout=10):
        out = self.conn.until(marker, timeout)
        self.conn.buf = b""
        self.count(out)
        return out

    def drop(self):
        """The network goes: no </stream:stream>, no <a/>."""
        self.conn.close()


class PhoneJourney(PushBase):
    # coalesce as in the example configuration; rewake off so that every push is one the test
    # caused; privacy full so the push can be checked against the message
    push = ("push:\n  coalesce: 2s\n  rewake: 0s\n  privacy: full\n"
            "stream_management:\n  resume_timeout: 5s\n")

    def wait_hibernated(self, n=1):
        self.wait_metric("xmpp_sm_hibernated_sessions", None, n, timeout=20)

    def login(self, phone):
        """The first login: password (SCRAM), Bind 2 with SM enabled, a FAST token asked
        for; push enabled; available."""
        c = phone.connect()
        ok, out = c.scram(phone.user.split("@")[0], PW, tag="phone", sm=True,
                          request_token="HT-SHA-256-NONE")
        self.assertTrue(ok, out)
        m = re.search(r"<bound xmlns='%s'><enabled xmlns='%s' id='([^']+)' resume='true'"
                      % (NS_BIND2, NS_SM), out)
        self.assertTrue(m, out)
        phone.previd = m.group(1)
        phone.token = sasl2_token(out)[0]
        phone.full = re.search(r"<authorization-identifier>([^<]+)<", out).group(1)
        # no stream restart: the features follow <success/>
        phone.count(c.until("</stream:features>").split("</stream:features>", 1)[1])
        c.buf = b""
        c.send("<iq type='set' id='push-1'><enable xmlns='%s' jid='%s' node='phone-node'>%s"
               "</enable></iq>" % (NS_PUSH, APP, options()))
        # available: its own presence comes back to it; a ping orders what it receives
        c.send("<presence/>")
        c.send("<iq type='get' id='ping-1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        got = phone.read_until("id='ping-1'")
        enabled = re.search(r"<iq[^>]*id='push-1'[^>]*>", got)
        self.assertTrue(enabled, got)
        self.assertIn("type='result'", enabled.group(0))
        self.assertEqual(self.metric("xmpp_push_registrations"), 1)

    def fast_resume(self, phone, until):
        """Back with FAST and an inline <resume/>: one element sent after TLS. Returns what
        arrived up to `until` (and a short while after, to see nothing comes twice)."""
        c = phone.connect()
        ok, out = c.fast(phone.user.split("@")[0], phone.token, tag="phone", sm=True,
                         resume=(phone.previd, phone.received))
        self.assertTrue(ok, out)
        self.assertEqual(c.sent_elements, 1, "one round trip after TLS")
        self.assertIn("<resumed xmlns='%s' previd='%s'" % (NS_SM, phone.previd), out)
        self.assertIn("<authorization-identifier>%s</authorization-identifier>" % phone.full,
                      out)
        self.assertNotIn("<bound", out)  # the old session goes on; nothing is bound anew
        new = sasl2_token(out)
        if new:  # rotated: the phone keeps the newest
            phone.token = new[0]
        got = c.until(until, 10)
        self.assertFalse(c.closed(1.5))  # what else comes meanwhile (nothing twice)
        got = c.buf.decode()
        c.buf = b""
        phone.count(got)
        return got

    def push_after(self, t_sent, since):
        """The one push the last event caused, within PUSH_WITHIN of it; none more."""
        got = self.pushes(since=since, wait=1, timeout=10)
        self.assertEqual(len(got), 1, got)
        rec = got[0]
        delay = rec["time"] - t_sent
        self.delays.append(delay)
        self.assertLess(delay, PUSH_WITHIN, "push %.3f s after the event" % delay)
        self.assertEqual(rec["status"], 200, rec)
        self.assertEqual(rec["device_token"], TOKEN)
        self.assertEqual(rec["path"], "/3/device/" + TOKEN)
        return rec

    def test_login_hibernate_push_fast_resume_call_and_dead_token(self):
        self.delays = []
        phone = Phone(self, self.bob)
        self.login(phone)

        # 1. the network goes: the session hibernates (kept by push beyond 5 s)
        phone.drop()
        self.wait_hibernated()

        # 2. alice writes: exactly one well-formed push, at once
        a = self.raw().start("alice", "desk")
        t0 = time.time()
        self.say(a, self.bob, "are you awake?")
        rec = self.push_after(t0, 0)
        headers = dict(rec["headers"])
        self.assertEqual(headers["apns-topic"], TOPIC)
        self.assertEqual(headers["apns-push-type"], "alert")
        self.assertEqual(headers["apns-priority"], "10")
        self.assertTrue(rec["provider_token_valid"])
        self.assertEqual(rec["json"]["aps"]["alert"], {"title": self.alice,
                                                       "body": "are you awake?"})
        self.assertEqual(rec["json"]["message-count"], "1")
        self.assertEqual(rec["json"]["last-message-sender"], self.alice)
        # queued in the hibernated session, not stored offline
        self.assertEqual(self.metric("xmpp_offline_messages_total", {"result": "stored"}), 0)

        # 3. the phone wakes and comes back with FAST + <resume/>: the message, once
        got = self.fast_resume(phone, "are you awake?")
        self.assertEqual(got.count("are you awake?"), 1, got)
        self.assertEqual(self.metric("xmpp_sm_resumptions_total", {"result": "ok"}), 1)
        self.assertEqual(self.metric("xmpp_logins_total",
                                     {"mechanism": "HT-SHA-256", "result": "ok"}), 1)
        self.assertEqual(self.metric("xmpp_sm_hibernated_sessions"), 0)
        time.sleep(2.5)  # past the burst window: the delivered message made no second push
        self.assertEqual(len(self.pushes(since=rec["seq"])), 0)

        # 4. asleep again; alice calls: a VoIP push at once, and the propose after resuming
        phone.drop()
        self.wait_hibernated()
        t0 = time.time()
        a.send("<message to='%s' type='chat' id='call-1'><propose xmlns='%s' id='call-77'>"
               "<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose>"
               "</message>" % (self.bob, NS_JMI))
        call = self.push_after(t0, rec["seq"])
        headers = dict(call["headers"])
        self.assertEqual(headers["apns-push-type"], "voip")
        self.assertEqual(headers["apns-topic"], TOPIC + ".voip")
        self.assertEqual(headers["apns-priority"], "10")
        self.assertIn("jingle-message", call["json"])
        got = self.fast_resume(phone, "call-77")
        self.assertEqual(got.count("<propose xmlns='%s' id='call-77'" % NS_JMI), 1, got)
        self.assertNotIn("are you awake?", got)  # acknowledged by the first resumption
        self.assertEqual(self.metric("xmpp_sm_resumptions_total", {"result": "ok"}), 2)

        # 5. the app was uninstalled: APNs answers 410, the registration goes, and a later
        # message waits in the session without a push
        phone.drop()
        self.wait_hibernated()
        self.mock.control.post("/dead", {"token": TOKEN})
        time.sleep(2.5)  # a new burst
        self.say(a, self.bob, "hello?")
        got = self.pushes(since=call["seq"], wait=1, timeout=10)
        self.assertEqual([r["status"] for r in got], [410], got)
        self.wait_metric("xmpp_push_registrations_removed_total", {"reason": "rejected"}, 1)
        self.wait_metric("xmpp_push_registrations", None, 0)
        time.sleep(2.5)
        self.say(a, self.bob, "last try")
        time.sleep(2.5)
        self.assertEqual(len(self.pushes(since=call["seq"])), 1)
        self.assertEqual(self.metric("xmpp_push_sent_total"), 3)
        got = self.fast_resume(phone, "last try")
        self.assertEqual((got.count("hello?"), got.count("last try")), (1, 1), got)
        print("\npush delays after the event: %s s"
              % ", ".join("%.3f" % d for d in self.delays), file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
