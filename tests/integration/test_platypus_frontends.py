"""platypus end to end through both front ends, to the strict APNs mock: the MongoosePush v3 REST
API and the XEP-0357 app server over a XEP-0114 component stream (the XMPP server here is a small
Python implementation of the component protocol's server side)."""

import hashlib
import http.client
import json
import os
import signal
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "mock"))
import suite  # noqa: E402
from mockproc import KEYS, Mock, apns_app_yaml  # noqa: E402

TOKEN = "0123456789abcdef" * 4
DEAD = "dead" * 16
TOPIC = "com.example.app"
SECRET = "component-secret"


def config(admin, rest, mock, component=None, fcm=None):
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
""" % (admin, rest) + apns_app_yaml(mock.port, TOPIC)
    if fcm:
        text += """fcm:
  - name: android
    service_account: %s
    base_url: https://127.0.0.1:%d
    ca_file: %s/ca.pem
""" % (fcm[1], fcm[0].port, KEYS)
    if component:
        text += """component:
  enabled: true
  server: 127.0.0.1:%d
  domain: push.example.com
  secret: %s
  reconnect_min: 100ms
  reconnect_max: 500ms
""" % component
    return text


def post(port, token, body, timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("POST", "/v3/notification/" + token, body=json.dumps(body) if
                  not isinstance(body, str) else body, headers={"content-type": "application/json"})
        r = c.getresponse()
        data = r.read().decode()
        return r.status, (json.loads(data) if data.strip() else None)
    finally:
        c.close()


class XmppServer:
    """The server side of XEP-0114, enough to authenticate a component and exchange IQs."""

    def __init__(self, secret):
        self.secret = secret
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.port = self.listener.getsockname()[1]
        self.sock = None
        self.buf = b""

    def read_until(self, needle, timeout=10):
        deadline = time.monotonic() + timeout
        while needle not in self.buf:
            self.sock.settimeout(max(deadline - time.monotonic(), 0.01))
            data = self.sock.recv(65536)
            if not data:
                raise AssertionError("component closed the stream; got %r" % self.buf)
            self.buf += data
        head, _, self.buf = self.buf.partition(needle)
        return head + needle

    def accept(self, timeout=10):
        self.listener.settimeout(timeout)
        if self.sock:
            self.sock.close()
        self.sock, _ = self.listener.accept()
        self.buf = b""
        header = self.read_until(b">", timeout)
        while b"stream:stream" not in header:
            header = self.read_until(b">", timeout)
        assert b"jabber:component:accept" in header, header
        self.sock.sendall(b"<?xml version='1.0'?><stream:stream xmlns:stream="
                          b"'http://etherx.jabber.org/streams' xmlns='jabber:component:accept'"
                          b" from='push.example.com' id='s1d'>")
        got = self.read_until(b"</handshake>").decode()
        want = hashlib.sha1(b"s1d" + self.secret.encode()).hexdigest()
        assert "<handshake>%s</handshake>" % want in got, got
        self.sock.sendall(b"<handshake/>")

    def publish(self, iq_id, token, extra="", frm="romeo@example.com", to="push.example.com",
                body="Wherefore art thou?"):
        iq = ("<iq type='set' id='%s' from='%s' to='%s'>"
              "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='n1'><item>"
              "<notification xmlns='urn:xmpp:push:0'><x xmlns='jabber:x:data' type='submit'>"
              "<field var='FORM_TYPE'><value>urn:xmpp:push:summary</value></field>"
              "<field var='message-count'><value>2</value></field>"
              "<field var='last-message-sender'><value>juliet@example.com</value></field>"
              "<field var='last-message-body'><value>%s</value></field>"
              "</x></notification></item></publish><publish-options>"
              "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>"
              "http://jabber.org/protocol/pubsub#publish-options</value></field>"
              "<field var='device_id'><value>%s</value></field>"
              "<field var='service'><value>apns</value></field>%s</x></publish-options>"
              "</pubsub></iq>") % (iq_id, frm, to, body, token, extra)
        self.sock.sendall(iq.encode())

    def send(self, text):
        self.sock.sendall(text.encode())

    def until_closed(self, timeout=10):
        """Everything the component sends until it closes the connection."""
        deadline = time.monotonic() + timeout
        while True:
            self.sock.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                return self.buf.decode()
            self.buf += data

    def reply(self, iq_id, timeout=10):
        """The reply to one IQ (self-closed or not)."""
        key = ("id='%s'" % iq_id).encode()
        deadline = time.monotonic() + timeout
        while key not in self.buf:
            self.sock.settimeout(max(deadline - time.monotonic(), 0.01))
            data = self.sock.recv(65536)
            if not data:
                raise AssertionError("stream closed waiting for %s: %r" % (iq_id, self.buf))
            self.buf += data
        start = self.buf.rfind(b"<iq", 0, self.buf.index(key))
        end = self.buf.find(b"<iq", self.buf.index(key))
        return self.buf[start:end if end >= 0 else len(self.buf)].decode()

    def close(self):
        if self.sock:
            self.sock.close()
        self.listener.close()


class Frontends(unittest.TestCase):
    def setUp(self):
        self.tmp = suite.tempdir()
        self.dir = self.tmp.name
        self.mock = Mock("apns_mock.py", "--topics", TOPIC + "," + TOPIC + ".voip")
        self.daemon = None
        self.xmpp = None

    def tearDown(self):
        if self.daemon:
            self.daemon.close()
        if self.xmpp:
            self.xmpp.close()
        self.mock.stop()
        self.tmp.cleanup()

    def start(self, component=False, fcm=None):
        self.admin, self.rest = suite.free_port(), suite.free_port()
        comp = None
        if component:
            self.xmpp = XmppServer(SECRET)
            secret = os.path.join(self.dir, "component.secret")
            with open(secret, "w") as f:
                f.write(SECRET + "\n")
            comp = (self.xmpp.port, secret)
        self.daemon = suite.Daemon("platypus", config(self.admin, self.rest, self.mock, comp,
                                                      fcm), self.dir)
        suite.wait_http(self.admin, daemon=self.daemon)
        if component:
            self.xmpp.accept()

    def stop(self):
        self.assertEqual(self.daemon.stop(), 0)
        suite.assert_clean(self, self.daemon.output())

    def test_rest_delivers_and_maps_errors(self):
        self.start()
        status, body = post(self.rest, TOKEN, {"service": "apns", "alert": {
            "title": "Juliet", "body": "Hi", "badge": 3}, "data": {"k": "v"}})
        self.assertEqual((status, body), (200, None), self.daemon.output())
        rec = self.mock.control.requests(wait=1)[-1]
        self.assertEqual(rec["path"], "/3/device/" + TOKEN)
        headers = dict(rec["headers"])
        self.assertEqual(headers["apns-topic"], TOPIC)
        self.assertEqual(headers["apns-push-type"], "alert")
        self.assertTrue(rec["provider_token_valid"])
        self.assertEqual(rec["json"]["aps"]["alert"]["title"], "Juliet")
        self.assertEqual(rec["json"]["aps"]["badge"], 3)
        self.assertEqual(rec["json"]["k"], "v")

        self.mock.control.post("/dead", {"token": DEAD})
        status, body = post(self.rest, DEAD, {"service": "apns", "alert": {"body": "x"}})
        self.assertEqual((status, body["reason"]), (410, "unregistered"))

        status, body = post(self.rest, TOKEN, "{not json")
        self.assertEqual((status, body["reason"]), (400, "invalid_request"))
        self.assertIn("not JSON", body["detail"])
        status, body = post(self.rest, TOKEN, {"service": "fcm", "data": {"a": "b"}})
        self.assertEqual((status, body["reason"]), (400, "no_matching_pool"))
        status, body = post(self.rest, TOKEN, {"service": "apns", "alert": {
            "title": "t" * 3000, "body": "b" * 3000}})
        self.assertEqual((status, body["reason"]), (413, "payload_too_large"))

        status, _, text = suite.http_get(self.rest, "/healthcheck")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(text)["status"], "ok")
        status, headers, text = suite.http_get(self.rest, "/openapi.json")
        self.assertEqual(status, 200)
        self.assertIn("application/json", headers["Content-Type"])
        with open(os.path.join(suite.TOP, "docs", "platypus-openapi.json")) as f:
            self.assertEqual(text, f.read(), "docs/platypus-openapi.json differs from the served one")
        self.assertIn("/v3/notification/{device_id}", json.loads(text)["paths"])
        metrics = suite.http_get(self.admin, "/metrics")[2]
        self.assertEqual(suite.metric(metrics, "platypus_notifications_total",
                                      {"outcome": "delivered"}), 1)
        self.stop()

    def test_rest_decodes_percent_encoded_device_ids(self):
        """MongoosePush decodes the device id of the path: FCM tokens have ':' in them, which
        clients percent-encode."""
        sa = os.path.join(self.dir, "service-account.json")
        fcm = Mock("fcm_mock.py", "--write-service-account", sa)
        self.addCleanup(fcm.stop)
        self.start(fcm=(fcm, sa))
        token = "cZ1xY2z3:APA91bH-abc_def0123456789ABCDEFGHIJKLMNOP"
        alert = {"service": "fcm", "alert": {"title": "Juliet", "body": "Hi"}}
        for path in (token.replace(":", "%3A"), token.replace(":", "%3a"), token):
            status, body = post(self.rest, path, alert)
            self.assertEqual((status, body), (200, None), self.daemon.output())
        sends = [r for r in fcm.control.requests(wait=4) if r["path"].endswith(":send")]
        self.assertEqual([r["fcm_token"] for r in sends], [token] * 3)
        # %41 is 'A' and %2D '-': any byte may be encoded, APNs tokens too
        status, body = post(self.rest, "%30%31" + TOKEN[2:], {"service": "apns",
                                                               "alert": {"body": "x"}})
        self.assertEqual((status, body), (200, None))
        for bad, detail in (("abc%zz" + token, "%zz"), (token + "%3", "%3"),
                            (token + "%00", "%00")):
            status, body = post(self.rest, bad, alert)
            self.assertEqual((status, body["reason"]), (400, "invalid_request"), bad)
            self.assertIn(detail, body["detail"])
        # a decoded '/' is just a character FCM tokens do not have
        status, body = post(self.rest, "ab%2Fcd" + token, alert)
        self.assertEqual((status, body["reason"]), (400, "invalid_request"))
        self.assertIn("found '/' at 2", body["detail"])
        self.assertEqual(len([r for r in fcm.control.requests() if r["path"].endswith(":send")]),
                         3)
        self.stop()

    def test_rest_fcm_message_for_every_platform(self):
        """An FCM token may belong to an Android, iOS or web app: data goes in message.data
        (android.data reaches Android only), title and body in message.notification, and
        android.notification or apns only when there is something to put in them."""
        sa = os.path.join(self.dir, "service-account.json")
        fcm = Mock("fcm_mock.py", "--write-service-account", sa)
        self.addCleanup(fcm.stop)
        self.start(fcm=(fcm, sa))
        token = "cZ1xY2z3:APA91bH-abc_def0123456789ABCDEFGHIJKLMNOP"

        def sent(body):
            status, answer = post(self.rest, token, dict(body, service="fcm"))
            self.assertEqual((status, answer), (200, None), self.daemon.output())
            return [r for r in fcm.control.requests(answered=True)
                    if r["path"].endswith(":send")][-1]["json"]["message"]

        m = sent({"alert": {"title": "Juliet", "body": "Hi"}, "data": {"k": "v", "n": 3}})
        self.assertEqual(m["notification"], {"title": "Juliet", "body": "Hi"})
        self.assertEqual(m["data"], {"k": "v", "n": "3"})
        self.assertEqual(m["android"], {"priority": "HIGH"})
        self.assertNotIn("apns", m)
        self.assertNotIn("webpush", m)

        m = sent({"alert": {"title": "Juliet", "body": "Hi", "badge": 4, "sound": "ding",
                            "tag": "chat-1"}, "mutable_content": True})
        self.assertEqual(m["android"]["notification"], {"tag": "chat-1", "sound": "ding",
                                                        "notification_count": 4})
        self.assertEqual(m["apns"], {"payload": {"aps": {"badge": 4, "sound": "ding",
                                                         "thread-id": "chat-1",
                                                         "mutable-content": 1}}})
        self.assertNotIn("data", m)

        m = sent({"data": {"k": "v"}})
        self.assertNotIn("notification", m)
        self.assertEqual(m["data"], {"k": "v"})
        self.assertEqual(m["android"], {"priority": "NORMAL"})
        self.assertEqual(m["apns"], {"payload": {"aps": {"content-available": 1}},
                                     "headers": {"apns-push-type": "background",
                                                 "apns-priority": "5"}})
        self.stop()

    def test_rest_errors_as_mongoosepush_v3(self):
        """Provider refusals answer what MongoosePush v3 answers for them (its FCM and APNs
        error handlers and response encoder), with platypus's detail as an extra field."""
        sa = os.path.join(self.dir, "service-account.json")
        fcm = Mock("fcm_mock.py", "--write-service-account", sa)
        self.addCleanup(fcm.stop)
        self.start(fcm=(fcm, sa))
        token = "cZ1xY2z3:APA91bH-abc_def0123456789ABCDEFGHIJKLMNOP"
        alert = {"service": "fcm", "alert": {"title": "Juliet", "body": "Hi"}}
        for code, status, reason in (("INVALID_ARGUMENT", 400, "invalid_request"),
                                     ("SENDER_ID_MISMATCH", 503, "service_internal"),
                                     ("THIRD_PARTY_AUTH_ERROR", 503, "service_internal"),
                                     ("UNREGISTERED", 410, "unregistered")):
            fcm.control.post("/fail", {"code": code})
            got, body = post(self.rest, token, alert)
            self.assertEqual((got, body["reason"], body["detail"]), (status, reason, code))
        fcm.control.post("/register", {"token": token, "project": "another-project"})
        got, body = post(self.rest, token, alert)
        self.assertEqual((got, body["reason"]), (503, "service_internal"))

        apns_alert = {"service": "apns", "alert": {"title": "Juliet", "body": "Hi"}}
        for apns_reason, status, reason in (("BadDeviceToken", 400, "invalid_request"),
                                            ("DeviceTokenNotForTopic", 400, "invalid_request"),
                                            ("BadTopic", 503, "internal_config"),
                                            ("MissingTopic", 503, "internal_config"),
                                            ("BadCertificate", 503, "service_internal"),
                                            ("TooManyProviderTokenUpdates", 429,
                                             "too_many_requests")):
            self.mock.control.post("/fail", {"reason": apns_reason})
            got, body = post(self.rest, TOKEN, apns_alert)
            self.assertEqual((got, body["reason"], body["detail"]), (status, reason, apns_reason))
        self.stop()

    def test_rest_over_tls_and_http2(self):
        import shutil
        import subprocess
        if not shutil.which("curl"):
            self.skipTest("curl is not installed")
        cert, key = suite.make_cert(self.dir)
        self.admin, self.rest = suite.free_port(), suite.free_port()
        text = config(self.admin, self.rest, self.mock).replace("  tls: false\n", "")
        text += "tls:\n  certificate: %s\n  key: %s\n" % (cert, key)
        self.daemon = suite.Daemon("platypus", text, self.dir)
        suite.wait_http(self.admin, daemon=self.daemon)
        for proto in ("--http2", "--http1.1"):
            r = subprocess.run(["curl", "-sS", proto, "--cacert", cert, "-o", "/dev/null",
                                "-w", "%{http_code} %{http_version}",
                                "-H", "content-type: application/json", "--data",
                                json.dumps({"service": "apns", "alert": {"body": "over TLS"}}),
                                "https://localhost:%d/v3/notification/%s" % (self.rest, TOKEN)],
                               capture_output=True, text=True, timeout=30)
            want = "200 2" if proto == "--http2" else "200 1.1"
            self.assertEqual(r.stdout, want, r.stderr + self.daemon.output())
        bodies = [rec["json"]["aps"]["alert"]["body"] for rec in
                  self.mock.control.requests(wait=2)]
        self.assertEqual(bodies.count("over TLS"), 2)
        self.stop()

    def test_component_publish(self):
        self.start(component=True)
        self.xmpp.publish("p1", TOKEN)
        reply = self.xmpp.reply("p1")
        self.assertIn("type='result'", reply)
        self.assertIn("to='romeo@example.com'", reply)
        rec = self.mock.control.requests(wait=1)[-1]
        self.assertEqual(rec["device_token"], TOKEN)
        self.assertEqual(rec["json"]["aps"]["alert"]["body"], "Wherefore art thou?")

        self.mock.control.post("/dead", {"token": DEAD})
        self.xmpp.publish("p2", DEAD)
        reply = self.xmpp.reply("p2")
        self.assertIn("type='cancel'", reply)
        self.assertIn("<item-not-found", reply)

        self.mock.control.post("/fail", {"status": 503, "count": 100})
        self.xmpp.publish("p3", TOKEN, "<field var='priority'><value>high</value></field>")
        reply = self.xmpp.reply("p3", timeout=30)
        self.assertIn("type='wait'", reply)

        self.xmpp.publish("p4", "nothex")
        reply = self.xmpp.reply("p4")
        self.assertIn("type='modify'", reply)
        self.assertIn("<bad-request", reply)
        metrics = suite.http_get(self.admin, "/metrics")[2]
        self.assertEqual(suite.metric(metrics, "platypus_component_connected"), 1)
        self.stop()

    def test_component_publishes_only_from_the_xmpp_server(self):
        """A user who sends a publish to the app server herself (her server stamps her full
        JID on it) or one from a domain the XMPP server does not serve is refused: no alert of
        her choosing reaches a token of her choosing."""
        self.start(component=True)
        self.xmpp.publish("u1", TOKEN, frm="mallory@example.com/phone", body="pay me")
        reply = self.xmpp.reply("u1")
        self.assertIn("type='auth'", reply)
        self.assertIn("<forbidden", reply)
        self.xmpp.publish("u2", TOKEN, frm="mallory@evil.example", body="pay me")
        reply = self.xmpp.reply("u2")
        self.assertIn("type='auth'", reply)
        self.assertIn("<forbidden", reply)
        self.xmpp.publish("u3", TOKEN, frm="example.com/x", body="pay me")
        self.assertIn("<forbidden", self.xmpp.reply("u3"))
        self.xmpp.publish("u4", TOKEN, frm="evil.example", body="pay me")
        self.assertIn("<forbidden", self.xmpp.reply("u4"))
        # What servers send: Prosody publishes from its domain, ejabberd from the user's bare
        # JID; domains compare without regard to case.
        self.xmpp.publish("s1", TOKEN, frm="example.com", body="from the server")
        self.assertIn("type='result'", self.xmpp.reply("s1"))
        self.xmpp.publish("s2", TOKEN, frm="Romeo@Example.COM", body="from a bare JID")
        self.assertIn("type='result'", self.xmpp.reply("s2"))
        bodies = [r["json"]["aps"]["alert"]["body"] for r in self.mock.control.requests(wait=2)]
        self.assertEqual(bodies, ["from the server", "from a bare JID"])
        metrics = suite.http_get(self.admin, "/metrics")[2]
        self.assertEqual(suite.metric(metrics, "platypus_component_publishes_forbidden_total",
                                      {"reason": "full_jid"}), 2)
        self.assertEqual(suite.metric(metrics, "platypus_component_publishes_forbidden_total",
                                      {"reason": "domain"}), 2)
        self.stop()

    def test_component_stream_rules(self):
        """RFC 6120: an IQ get/set carries exactly one child; a stanza for another domain is not
        ours to answer for; bad XML ends the stream with a stream error, not a bare close."""
        self.start(component=True)
        self.xmpp.send("<iq type='get' id='c2' from='romeo@example.com/a' to='push.example.com'>"
                       "<ping xmlns='urn:xmpp:ping'/><query xmlns='jabber:iq:version'/></iq>")
        reply = self.xmpp.reply("c2")
        self.assertIn("type='modify'", reply)
        self.assertIn("<bad-request", reply)
        self.xmpp.send("<iq type='get' id='c0' from='romeo@example.com/a' "
                       "to='push.example.com'/>")
        self.assertIn("<bad-request", self.xmpp.reply("c0"))

        self.xmpp.publish("o1", TOKEN, to="push.other.example")
        reply = self.xmpp.reply("o1")
        self.assertIn("type='cancel'", reply)
        self.assertIn("<item-not-found", reply)
        self.assertIn("from='push.example.com'", reply)
        self.assertNotIn("push.other.example", reply)
        self.xmpp.publish("o2", TOKEN, to="node@push.example.com/r")
        self.assertIn("type='result'", self.xmpp.reply("o2"))
        self.assertEqual(len(self.mock.control.requests(wait=1)), 1)

        self.xmpp.send("<message to='push.example.com'><body>x</bod></message>")
        rest = self.xmpp.until_closed()
        self.assertIn("<stream:error><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'",
                      rest)
        self.assertTrue(rest.rstrip().endswith("</stream:stream>"), rest)
        # and it comes back
        self.xmpp.accept(timeout=10)
        self.xmpp.publish("r1", TOKEN)
        self.assertIn("type='result'", self.xmpp.reply("r1"))
        self.stop()

    def test_component_reconnects(self):
        self.start(component=True)
        self.xmpp.sock.close()
        self.xmpp.accept(timeout=10)
        self.xmpp.publish("r1", TOKEN)
        self.assertIn("type='result'", self.xmpp.reply("r1"))
        self.stop()

    def test_sigterm_answers_what_is_in_flight(self):
        self.start()
        self.mock.control.post("/stall", {"ms": 1000})
        import threading
        result = {}

        def send():
            result["r"] = post(self.rest, TOKEN, {"service": "apns", "alert": {"body": "x"}})
        t = threading.Thread(target=send)
        t.start()
        self.mock.control.requests(wait=1, answered=0)
        self.daemon.signal(signal.SIGTERM)
        t.join(20)
        self.assertEqual(result["r"][0], 200)
        self.assertEqual(self.daemon.proc.wait(timeout=20), 0)


if __name__ == "__main__":
    unittest.main()
