"""xmpp-core's push notifications (XEP-0357) end to end: xmpp-core, platypus attached as its
XEP-0114 component, and the strict APNs mock behind it. A client enables push with the
publish-options MongooseIM-style apps send (the keys platypus reads), goes away, and what is
sent to it wakes it through the mock: one notification per burst, the fields the privacy policy
allows, a call as a VoIP push, a dead token that removes the registration, a transient failure
that keeps it; a hibernated stream management session is woken and resumed."""

import json
import os
import re
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "mock"))
import suite  # noqa: E402
import xmpp  # noqa: E402
from mockproc import KEYS, Mock, apns_app_yaml  # noqa: E402
from xmpp import login, logout, run  # noqa: E402

PW = "correct horse"
TOPIC = "com.example.app"
TOKEN = "0123456789abcdef" * 4
APP = "push.localhost"  # the component xmpp.Server configures
NS_PUSH = "urn:xmpp:push:0"
NS_SM = "urn:xmpp:sm:3"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"


def options(token=TOKEN, extra=""):
    """A publish-options form as MongooseIM-style apps send it."""
    return ("<x xmlns='jabber:x:data' type='submit'>"
            "<field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options"
            "</value></field>"
            "<field var='service'><value>apns</value></field>"
            "<field var='device_id'><value>%s</value></field>"
            "<field var='topic'><value>%s</value></field>%s</x>" % (token, TOPIC, extra))


def enable_iq(iq_id, jid=APP, node="node-1", form=None):
    attrs = (" jid='%s'" % jid if jid is not None else "") + \
        (" node='%s'" % node if node is not None else "")
    return "<iq type='set' id='%s'><enable xmlns='%s'%s>%s</enable></iq>" % (
        iq_id, NS_PUSH, attrs, options() if form is None else form)


def answer(raw, iq_id):
    """The server's answer to IQ iq_id, read on raw."""
    key = "id='%s'" % iq_id
    out = raw.until(key)
    start = out.rfind("<iq", 0, out.index(key))
    head_end = raw.until(">")[start:].index(">") + start
    if out[head_end - 1] == "/":
        return out[start:head_end + 1]
    out = raw.until("</iq>")
    return out[start:out.index("</iq>", start) + 5]


class Session(xmpp.Raw):
    """A raw client session, with stream management when asked."""

    def start(self, user, resource="phone", sm=False, available=True):
        self.session(user, PW, resource)
        self.previd = None
        if sm:
            self.send("<enable xmlns='%s' resume='true'/>" % NS_SM)
            out = self.until("<enabled")
            self.until("/>")
            self.previd = re.search(r"<enabled[^>]*id='([^']+)'", out + self.buf.decode()).group(1)
            self.buf = b""
        if available:
            self.send("<presence/>")
        return self

    def iq(self, text, iq_id):
        self.send(text)
        got = answer(self, iq_id)
        self.buf = b""
        return got


class PushBase(unittest.TestCase):
    push = ("push:\n  coalesce: 1500ms\n  rewake: 0s\n  privacy: full\n"
            "stream_management:\n  resume_timeout: 5s\n")

    fcm = False

    def setUp(self):
        self.tmpdir = suite.tempdir()
        self.tmp = self.tmpdir.name
        self.mock = Mock("apns_mock.py", "--topics", TOPIC + "," + TOPIC + ".voip")
        self.addCleanup(self.mock.stop)
        if self.fcm:
            self.sa = os.path.join(self.tmp, "service-account.json")
            self.fcm_mock = Mock("fcm_mock.py", "--write-service-account", self.sa)
            self.addCleanup(self.fcm_mock.stop)
        self.pp = None
        self.raws = []
        self.srv = xmpp.Server(self.tmp, self.push)
        self.alice = self.srv.register("alice", PW)
        self.bob = self.srv.register("bob", PW)
        self.start_platypus()

    def start_platypus(self):
        self.pp_admin = suite.free_port()
        text = """log:
  level: debug
admin:
  listen: 127.0.0.1:%d
shutdown_timeout: 5s
rest:
  enabled: false
component:
  enabled: true
  server: 127.0.0.1:%d
  domain: %s
  secret: %s/comp.secret
  reconnect_min: 100ms
  reconnect_max: 500ms
apns:
""" % (self.pp_admin, self.srv.comp, APP, self.tmp) + apns_app_yaml(self.mock.port, TOPIC)
        if self.fcm:
            text += """fcm:
  - name: android
    service_account: %s
    base_url: https://127.0.0.1:%d
    ca_file: %s/ca.pem
""" % (self.sa, self.fcm_mock.port, KEYS)
        self.pp = suite.Daemon("platypus", text, self.tmp)
        suite.wait_http(self.pp_admin, daemon=self.pp)
        deadline = time.monotonic() + 20
        while "%s connected" % APP not in self.srv.output():
            self.assertLess(time.monotonic(), deadline, self.srv.output())
            time.sleep(0.1)

    def tearDown(self):
        try:
            for r in self.raws:
                r.close()
            if self.pp:
                self.assertEqual(self.pp.stop(), 0, self.pp.output())
                suite.assert_clean(self, self.pp.output())
            if self.srv.daemon.proc.poll() is None:
                self.assertEqual(self.srv.stop(), 0, self.srv.output())
            suite.assert_clean(self, self.srv.output())
        finally:
            if self.pp:
                self.pp.close()
            self.srv.close()
            self.tmpdir.cleanup()

    def raw(self):
        r = Session(self.srv)
        self.raws.append(r)
        return r

    def say(self, raw, to, body, extra=""):
        raw.send("<message to='%s' type='chat' id='m%d'><body>%s</body>%s</message>"
                 % (to, int(time.monotonic() * 1e6), body, extra))

    def metric(self, name, labels=None):
        return self.srv.metric(name, labels) or 0

    def wait_metric(self, name, labels, want, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.metric(name, labels) == want:
                return
            time.sleep(0.05)
        self.assertEqual(self.metric(name, labels), want, "%s %s" % (name, labels))

    def pushes(self, since=0, wait=0, timeout=5):
        """What reached the APNs mock (the record's entries after seq since)."""
        return self.mock.control.requests(since=since, wait=wait, timeout=timeout, answered=True)

    def enable_and_leave(self, user="bob", form=None):
        """user enables push on a raw session and closes its stream."""
        b = self.raw().start(user)
        got = b.iq(enable_iq("e1", form=form), "e1")
        self.assertIn("type='result'", got)
        b.send("</stream:stream>")
        b.closed(10)
        self.wait_metric("xmpp_sessions", {"listener": "c2s"}, 0)
        return b


class Journey(PushBase):
    def test_burst_wakes_once_and_messages_wait_offline(self):
        """A slixmpp client enables push (a raw IQ: slixmpp has no XEP-0357) and goes away; a
        burst of five messages makes exactly one well-formed APNs notification, at once, with
        the sender and the first body (privacy full); back, the client gets all five."""
        from slixmpp.xmlstream import ET

        async def go():
            b = await login(self.srv, self.bob + "/phone", PW)
            iq = b.make_iq_set()
            iq.append(ET.fromstring("<enable xmlns='%s' jid='%s' node='node-1'>%s</enable>"
                                    % (NS_PUSH, APP, options())))
            res = await iq.send(timeout=10)
            self.assertEqual(res["type"], "result")
            self.assertEqual(self.metric("xmpp_push_registrations"), 1)
            await logout(b)
        run(go())
        self.wait_metric("xmpp_sessions", {"listener": "c2s"}, 0)

        a = self.raw().start("alice", "desk")
        t0 = time.monotonic()
        for i in range(5):
            self.say(a, self.bob, "burst %d" % i)
        got = self.pushes(wait=1, timeout=10)
        took = time.monotonic() - t0
        self.assertEqual(len(got), 1, got)
        self.assertLess(took, 5.0)  # at once (a generous bound for a loaded machine)
        rec = got[0]
        self.assertEqual(rec["status"], 200, rec)
        self.assertEqual(rec["device_token"], TOKEN)
        headers = dict(rec["headers"])
        self.assertEqual(headers["apns-topic"], TOPIC)
        self.assertEqual(headers["apns-push-type"], "alert")
        body = rec["json"]
        self.assertEqual(body["aps"]["alert"]["title"], self.alice)
        self.assertEqual(body["aps"]["alert"]["body"], "burst 0")
        self.assertEqual(body["message-count"], "1")
        self.assertEqual(body["last-message-sender"], self.alice)
        # the rest of the burst made no push of its own (the window is 1.5 s)
        self.wait_metric("xmpp_offline_messages_total", {"result": "stored"}, 5)
        time.sleep(2.5)
        self.assertEqual(len(self.pushes()), 1)
        self.assertEqual(self.metric("xmpp_push_sent_total"), 1)
        self.assertEqual(self.metric("xmpp_push_results_total", {"result": "ok"}), 1)
        self.assertEqual(self.metric("xmpp_push_coalesced_total"), 4)

        # a later message is a new burst; it tells the count since the user left
        self.say(a, self.bob, "after the burst")
        got = self.pushes(since=rec["seq"], wait=1, timeout=10)
        self.assertEqual(len(got), 1, got)
        self.assertEqual(got[0]["json"]["message-count"], "6")
        self.assertEqual(got[0]["json"]["aps"]["alert"]["body"], "after the burst")

        async def back():
            b = await login(self.srv, self.bob + "/phone", PW)
            bodies = [(await b.next_message(timeout=10))["body"] for _ in range(6)]
            self.assertEqual(bodies, ["burst %d" % i for i in range(5)] + ["after the burst"])
            await logout(b)
        run(back())

    def test_hibernated_session_is_woken_and_resumed(self):
        """A session with stream management loses its TCP connection without closing its
        stream: it hibernates, and stays resumable longer than stream_management's 5 s because
        push is on. A message queued for it fires a push; the client resumes and gets it."""
        b = self.raw().start("bob", sm=True)
        self.assertIn("type='result'", b.iq(enable_iq("e1"), "e1"))
        previd = b.previd
        b.close()  # no </stream:stream>: the phone lost its network
        self.wait_metric("xmpp_sm_hibernated_sessions", None, 1)
        time.sleep(6)  # past stream_management.resume_timeout: push keeps it
        self.assertEqual(self.metric("xmpp_sm_hibernated_sessions"), 1)

        a = self.raw().start("alice", "desk")
        self.say(a, self.bob, "wake up")
        got = self.pushes(wait=1, timeout=10)
        self.assertEqual(len(got), 1, got)
        self.assertEqual(got[0]["json"]["aps"]["alert"]["body"], "wake up")
        # queued for the session, not stored offline
        self.assertEqual(self.metric("xmpp_offline_messages_total", {"result": "stored"}), 0)

        r = self.raw()
        r.open()
        r.starttls()
        r.open()
        self.assertTrue(r.plain("bob", PW))
        r.buf = b""
        r.open()
        r.buf = b""
        r.send("<resume xmlns='%s' previd='%s' h='0'/>" % (NS_SM, previd))
        out = r.until("wake up")
        self.assertIn("<resumed", out)
        self.assertEqual(self.metric("xmpp_sm_resumptions_total", {"result": "ok"}), 1)

    def test_call_is_a_voip_push(self):
        """A Jingle Message Initiation <propose/> to a callee who is away reaches the mock as
        a VoIP push (apns-push-type voip, topic .voip) at once, even inside a burst's window."""
        self.enable_and_leave()
        a = self.raw().start("alice", "desk")
        self.say(a, self.bob, "are you there?")
        got = self.pushes(wait=1, timeout=10)
        self.assertEqual(len(got), 1, got)
        a.send("<message to='%s' type='chat' id='call-1'><propose xmlns="
               "'urn:xmpp:jingle-message:0' id='c1'><description xmlns='urn:xmpp:jingle:"
               "apps:rtp:1' media='audio'/></propose></message>" % self.bob)
        got = self.pushes(since=got[0]["seq"], wait=1, timeout=10)
        self.assertEqual(len(got), 1, got)
        headers = dict(got[0]["headers"])
        self.assertEqual(headers["apns-push-type"], "voip")
        self.assertEqual(headers["apns-topic"], TOPIC + ".voip")
        self.assertEqual(headers["apns-priority"], "10")
        self.assertEqual(got[0]["status"], 200, got[0])
        self.assertIn("jingle-message", got[0]["json"])

    def test_dead_token_removes_the_registration(self):
        """APNs says the token is gone (410): platypus answers the push with a cancel error,
        xmpp-core removes the registration, and nothing is pushed to it any more."""
        self.enable_and_leave()
        self.mock.control.post("/dead", {"token": TOKEN})
        a = self.raw().start("alice", "desk")
        self.say(a, self.bob, "anyone?")
        got = self.pushes(wait=1, timeout=10)
        self.assertEqual(got[0]["status"], 410, got)
        self.wait_metric("xmpp_push_registrations_removed_total", {"reason": "rejected"}, 1)
        self.wait_metric("xmpp_push_registrations", None, 0)
        self.assertEqual(self.metric("xmpp_push_results_total", {"result": "rejected"}), 1)
        time.sleep(2)  # past the burst window
        self.say(a, self.bob, "still there?")
        self.wait_metric("xmpp_offline_messages_total", {"result": "stored"}, 2)
        time.sleep(1)
        self.assertEqual(len(self.pushes()), 1)
        self.assertEqual(self.metric("xmpp_push_sent_total"), 1)

    def test_unavailable_provider_keeps_the_registration(self):
        """APNs answers 503: platypus retries and answers wait (or xmpp-core gives up
        waiting); either way the registration stays, and the next burst is pushed."""
        self.enable_and_leave()
        self.mock.control.post("/fail", {"status": 503, "count": None})
        a = self.raw().start("alice", "desk")
        self.say(a, self.bob, "first")
        deadline = time.monotonic() + 60
        while (self.metric("xmpp_push_results_total", {"result": "wait"}) +
               self.metric("xmpp_push_results_total", {"result": "timeout"})) == 0:
            self.assertLess(time.monotonic(), deadline, self.srv.output())
            time.sleep(0.2)
        self.assertGreaterEqual(len(self.pushes()), 1)
        self.assertEqual(self.pushes()[0]["status"], 503)
        self.assertEqual(self.metric("xmpp_push_registrations"), 1)
        self.assertEqual(self.metric("xmpp_push_registrations_removed_total",
                                     {"reason": "rejected"}), 0)
        self.mock.control.post("/reset")
        time.sleep(2)  # past the burst window
        self.say(a, self.bob, "second")
        got = self.pushes(wait=1, timeout=15)
        self.assertEqual(got[0]["status"], 200, got)
        self.assertEqual(got[0]["json"]["aps"]["alert"]["body"], "second")
        self.assertEqual(got[0]["json"]["message-count"], "2")

    def test_not_for_presence_chat_states_or_headlines(self):
        """Presence, a chat state without a body and a headline wake nobody; a body does."""
        self.enable_and_leave()
        a = self.raw().start("alice", "desk")
        a.send("<presence to='%s' type='subscribe'/>" % self.bob)
        a.send("<message to='%s' type='chat'><composing xmlns="
               "'http://jabber.org/protocol/chatstates'/></message>" % self.bob)
        a.send("<message to='%s' type='headline'><body>news</body></message>" % self.bob)
        time.sleep(2)
        self.assertEqual(self.pushes(), [])
        self.assertEqual(self.metric("xmpp_push_sent_total"), 0)
        self.say(a, self.bob, "real")
        self.assertEqual(len(self.pushes(wait=1, timeout=10)), 1)


class Android(PushBase):
    """An Android app registered with its FCM token is woken through the FCM mock."""
    fcm = True
    push = "push:\n  rewake: 0s\n  privacy: sender\n"

    def test_fcm_registration(self):
        token = "cZ1xY2z3:APA91bH-abc_def0123456789ABCDEFGHIJKLMNOP"
        form = ("<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>"
                "http://jabber.org/protocol/pubsub#publish-options</value></field>"
                "<field var='service'><value>fcm</value></field>"
                "<field var='device_id'><value>%s</value></field></x>" % token)
        self.enable_and_leave(form=form)
        a = self.raw().start("alice", "desk")
        self.say(a, self.bob, "hello android")
        got = [r for r in self.fcm_mock.control.requests(wait=2, timeout=15, answered=True)
               if r["path"].endswith(":send")]
        self.assertEqual(len(got), 1, got)
        self.assertEqual(got[0]["status"], 200, got[0])
        m = got[0]["json"]["message"]
        self.assertEqual(m["token"], token)
        self.assertEqual(m["data"]["message-count"], "1")
        self.assertEqual(m["data"]["last-message-sender"], self.alice)
        self.assertNotIn("last-message-body", m["data"])  # privacy sender: no body
        self.assertEqual(m["notification"]["title"], self.alice)
        self.assertEqual(self.pushes(), [])  # nothing went to APNs


class Rest(PushBase):
    """push.rest: the pushes of host localhost are POSTed to platypus's MongoosePush v3 API
    (plain HTTP on loopback here) instead of going as IQs to its component."""
    push = "push:\n  coalesce: 1500ms\n  rewake: 0s\n  privacy: full\n"

    def setUp(self):
        self.rest_port = suite.free_port()
        self.push = type(self).push + (
            "  rest:\n    - host: localhost\n      url: http://127.0.0.1:%d/\n"
            % self.rest_port)
        super().setUp()

    def start_platypus(self):
        self.pp_admin = suite.free_port()
        text = """log:
  level: debug
admin:
  listen: 127.0.0.1:%d
shutdown_timeout: 5s
rest:
  enabled: true
  listen: 127.0.0.1:%d
  tls: false
apns:
""" % (self.pp_admin, self.rest_port) + apns_app_yaml(self.mock.port, TOPIC)
        self.pp = suite.Daemon("platypus", text, self.tmp)
        suite.wait_http(self.pp_admin, daemon=self.pp)

    def test_rest_hand_off(self):
        self.enable_and_leave()
        a = self.raw().start("alice", "desk")
        for i in range(3):
            self.say(a, self.bob, "rest %d" % i)
        got = self.pushes(wait=1, timeout=10)
        self.assertEqual(len(got), 1, got)
        rec = got[0]
        self.assertEqual(rec["status"], 200, rec)
        self.assertEqual(rec["device_token"], TOKEN)
        self.assertEqual(dict(rec["headers"])["apns-push-type"], "alert")
        self.assertEqual(rec["json"]["aps"]["alert"], {"title": self.alice, "body": "rest 0"})
        self.assertEqual(rec["json"]["message-count"], "1")
        self.assertIn("by REST", self.srv.output())
        self.wait_metric("xmpp_push_results_total", {"result": "ok"}, 1)
        time.sleep(2.5)
        self.assertEqual(len(self.pushes()), 1)  # one per burst, as with IQs

        # a call goes to the VoIP topic
        a.send("<message to='%s' type='chat' id='call-1'><propose xmlns="
               "'urn:xmpp:jingle-message:0' id='c1'/></message>" % self.bob)
        got = self.pushes(since=rec["seq"], wait=1, timeout=10)
        self.assertEqual(len(got), 1, got)
        self.assertEqual(dict(got[0]["headers"])["apns-push-type"], "voip")
        self.assertEqual(dict(got[0]["headers"])["apns-topic"], TOPIC + ".voip")

        # 503 keeps the registration
        self.mock.control.post("/fail", {"status": 503, "count": None})
        time.sleep(2)
        self.say(a, self.bob, "try later")
        deadline = time.monotonic() + 60
        while (self.metric("xmpp_push_results_total", {"result": "wait"}) +
               self.metric("xmpp_push_results_total", {"result": "timeout"})) == 0:
            self.assertLess(time.monotonic(), deadline, self.srv.output())
            time.sleep(0.2)
        self.assertEqual(self.metric("xmpp_push_registrations"), 1)

        # 410 removes it
        self.mock.control.post("/reset")
        self.mock.control.post("/dead", {"token": TOKEN})
        time.sleep(2)
        self.say(a, self.bob, "gone?")
        self.wait_metric("xmpp_push_registrations_removed_total", {"reason": "rejected"}, 1)
        self.wait_metric("xmpp_push_registrations", None, 0)
        self.assertIn("HTTP 410", self.srv.output())

    def test_registration_without_device_id_is_removed(self):
        form = ("<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>"
                "http://jabber.org/protocol/pubsub#publish-options</value></field></x>")
        self.enable_and_leave(form=form)
        a = self.raw().start("alice", "desk")
        self.say(a, self.bob, "hello")
        self.wait_metric("xmpp_push_registrations", None, 0)
        self.assertIn("no device_id", self.srv.output())
        self.assertEqual(self.pushes(), [])



class DropFirst(threading.Thread):
    """A TCP relay on port front to port back that reads the first connection's request and
    closes it unanswered (a connection lost under a request, as its client sees it), then
    relays every later connection."""

    def __init__(self, front, back):
        super().__init__(daemon=True)
        self.back = back
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", front))
        self.lsock.listen(16)
        self.accepted = 0

    def run(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            self.accepted += 1
            if self.accepted == 1:
                c.settimeout(10)
                try:
                    c.recv(65536)
                except OSError:
                    pass
                c.close()
                continue
            u = socket.create_connection(("127.0.0.1", self.back))
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self.pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def pipe(a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        for x in (a, b):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.lsock.close()


class RestLostConnection(Rest):
    """A POST whose connection is lost before any answer is sent again at once on a new
    connection: the phone is woken all the same, and nothing is counted as failed."""
    test_rest_hand_off = None  # Rest's tests run once, in Rest
    test_registration_without_device_id_is_removed = None

    def start_platypus(self):
        front = self.rest_port  # what xmpp-core posts to
        self.rest_port = suite.free_port()
        super().start_platypus()
        self.relay = DropFirst(front, self.rest_port)
        self.relay.start()
        self.addCleanup(self.relay.close)

    def test_a_lost_connection_is_tried_again(self):
        self.enable_and_leave()
        a = self.raw().start("alice", "desk")
        self.say(a, self.bob, "are you there?")
        got = self.pushes(wait=1, timeout=15)
        self.assertEqual(len(got), 1, got)
        self.assertEqual(got[0]["status"], 200, got[0])
        self.assertEqual(got[0]["json"]["aps"]["alert"]["body"], "are you there?")
        self.wait_metric("xmpp_push_results_total", {"result": "ok"}, 1)
        self.assertEqual(self.metric("xmpp_push_results_total", {"result": "unroutable"}), 0)
        self.assertEqual(self.metric("xmpp_push_registrations"), 1)
        self.assertGreaterEqual(self.relay.accepted, 2)
        self.assertIn("sending it again", self.srv.output())

class Privacy(PushBase):
    """The default policy: a push tells nothing about who wrote or what."""
    push = "push:\n  coalesce: 1s\n  rewake: 2s\n"

    def test_default_policy_hides_sender_and_body_and_rewakes(self):
        self.enable_and_leave()
        a = self.raw().start("alice", "desk")
        self.say(a, self.bob, "secret text")
        got = self.pushes(wait=1, timeout=10)
        self.assertEqual(len(got), 1, got)
        text = json.dumps(got[0]["json"])
        self.assertNotIn("secret text", text)
        self.assertNotIn("alice", text)
        self.assertEqual(got[0]["json"]["message-count"], "1")
        # nobody came back within push.rewake: one more push, and only one
        got = self.pushes(wait=2, timeout=15)
        self.assertEqual(len(got), 2, got)
        time.sleep(3)
        self.assertEqual(len(self.pushes()), 2)
        self.assertEqual(self.metric("xmpp_push_sent_total"), 2)


class Registrations(PushBase):
    push = "push:\n  max_registrations: 2\n  rewake: 0s\n"

    def test_enable_and_disable_errors_and_disco(self):
        b = self.raw().start("bob")
        me = "%s/phone" % self.bob
        # the feature on the account's bare JID
        got = b.iq("<iq type='get' id='d1' to='%s'><query xmlns="
                   "'http://jabber.org/protocol/disco#info'/></iq>" % self.bob, "d1")
        self.assertIn("var='%s'" % NS_PUSH, got)
        cases = [
            (enable_iq("x1", jid=None), "modify", "bad-request", "jid"),
            (enable_iq("x2", jid=""), "modify", "bad-request", "jid"),
            (enable_iq("x3", jid=self.bob), "cancel", "not-acceptable", "itself"),
            (enable_iq("x4", jid=me), "cancel", "not-acceptable", "itself"),
            (enable_iq("x5", node=None), "modify", "bad-request", "node"),
            (enable_iq("x6", jid="a@b@c"), "modify", "jid-malformed", None),
            (enable_iq("x7", form="<x xmlns='jabber:x:data' type='submit'><field var="
                       "'FORM_TYPE'><value>urn:example</value></field></x>"),
             "modify", "bad-request", "FORM_TYPE"),
            ("<iq type='get' id='x8'><enable xmlns='%s' jid='%s' node='n'/></iq>"
             % (NS_PUSH, APP), "modify", "bad-request", "IQ set"),
            ("<iq type='set' id='x9'><disable xmlns='%s'/></iq>" % NS_PUSH,
             "modify", "bad-request", "jid"),
        ]
        for text, etype, cond, why in cases:
            iq_id = re.search(r"id='([^']+)'", text).group(1)
            got = b.iq(text, iq_id)
            self.assertIn("type='error'", got, text)
            self.assertIn("type='%s'" % etype, got, text)
            self.assertIn("<%s xmlns='%s'/>" % (cond, NS_STANZAS), got, text)
            if why:
                self.assertRegex(got, "<text[^>]*>[^<]*%s" % re.escape(why))
        self.assertEqual(self.metric("xmpp_push_registrations"), 0)
        # someone else may not enable push on bob's account
        a = self.raw().start("alice", "desk")
        got = a.iq("<iq type='set' id='o1' to='%s'><enable xmlns='%s' jid='%s' node='n'/></iq>"
                   % (self.bob, NS_PUSH, APP), "o1")
        self.assertIn("<forbidden", got)

        # three devices with a cap of two: the oldest goes
        for i in range(3):
            got = b.iq(enable_iq("e%d" % i, node="node-%d" % i), "e%d" % i)
            self.assertIn("type='result'", got)
        self.assertEqual(self.metric("xmpp_push_registrations"), 2)
        self.assertEqual(self.metric("xmpp_push_registrations_removed_total",
                                     {"reason": "replaced"}), 1)
        # enabling the same node again replaces it
        self.assertIn("type='result'", b.iq(enable_iq("e9", node="node-2"), "e9"))
        self.assertEqual(self.metric("xmpp_push_registrations"), 2)
        # kept across a restart: the stored registrations are counted at start
        b.close()
        self.assertEqual(self.srv.stop(), 0)
        suite.assert_clean(self, self.srv.output())
        self.assertEqual(self.pp.stop(), 0)
        self.pp.close()
        self.srv.close()
        self.srv = xmpp.Server(self.tmp, self.push)
        self.start_platypus()
        self.wait_metric("xmpp_push_registrations", None, 2)
        # the first device was replaced: only node-1 and node-2 are pushed to
        self.enable_and_leave_check_nodes(["node-1", "node-2"])
        # disable one node, then every node of the app server
        b = self.raw().start("bob")
        got = b.iq("<iq type='set' id='q1'><disable xmlns='%s' jid='%s' node='node-1'/></iq>"
                   % (NS_PUSH, APP), "q1")
        self.assertIn("type='result'", got)
        self.assertEqual(self.metric("xmpp_push_registrations"), 1)
        got = b.iq("<iq type='set' id='q2'><disable xmlns='%s' jid='%s'/></iq>"
                   % (NS_PUSH, APP), "q2")
        self.assertIn("type='result'", got)
        self.assertEqual(self.metric("xmpp_push_registrations"), 0)

    def enable_and_leave_check_nodes(self, nodes):
        """A message for bob (away) is pushed once per registration: to these nodes."""
        a = self.raw().start("alice", "desk")
        self.say(a, self.bob, "to every device")
        self.wait_metric("xmpp_push_results_total", {"result": "ok"}, len(nodes))
        self.assertEqual(len(self.pushes()), len(nodes))
        sent = re.findall(r"push (push-\S+) to %s node (\S+) " % re.escape(APP),
                          self.srv.output())
        self.assertEqual(sorted(n for _, n in sent), sorted(nodes))


class ConfigErrors(unittest.TestCase):
    """push.rest names a host that is served and an http(s) URL; push.privacy is one of four."""

    def check(self, text, expected):
        with suite.tempdir() as tmp:
            path = os.path.join(tmp, "c.yaml")
            with open(path, "w") as f:
                f.write(text)
            r = suite.run([os.path.join(suite.BIN, "xmpp-core"), "-c", path,
                           "--check-config"])
            suite.assert_clean(self, r.stderr)
            self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
            self.assertIn(expected.replace("FILE", path), r.stderr)

    def test_errors(self):
        self.check("hosts: [localhost]\npush:\n  rest:\n    - host: other.org\n"
                   "      url: http://127.0.0.1:8443\n",
                   'FILE:3: push.rest: host "other.org" is not one of the hosts served')
        self.check("hosts: [localhost]\npush:\n  rest:\n    - host: localhost\n"
                   "      url: ftp://127.0.0.1\n",
                   'FILE:5: push.rest[0].url: "ftp://127.0.0.1" is not an http:// or https:// '
                   "URL")
        self.check("push:\n  privacy: everything\n", "FILE:2: push.privacy:")
        self.check("push:\n  max_registrations: 0\n", "FILE:2: push.max_registrations:")


if __name__ == "__main__":
    unittest.main()
