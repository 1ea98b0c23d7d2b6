"""test_mock_apns.py - self-tests of the strict mock APNs (tests/mock/apns_mock.py): what it
accepts, what it rejects with which status and reason, and the faults it can be told to
produce. The platypus tests rely on these behaviours."""

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "mock"))
from h2client import H2Client, es256_jwt, load_key  # noqa: E402
from mockproc import KEYS, Mock  # noqa: E402

KID = "ABC123DEFG"
TEAM = "DEF123GHIJ"
TOPIC = "com.example.app"
DEVICE = "a1b2c3d4" * 8
PATH = "/3/device/" + DEVICE
ALERT = b'{"aps":{"alert":{"title":"Hi","body":"there"}},"x":"y"}'
SILENT = b'{"aps":{"content-available":1}}'
REFUSED_STREAM = 7


class MockAPNsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.mock = Mock("apns_mock.py")
        cls.ctl = cls.mock.control
        cls.key = load_key(os.path.join(KEYS, "AuthKey_ABC123DEFG.p8"))
        cls.wrong_key = load_key(os.path.join(KEYS, "AuthKey_WRONG.p8"))

    @classmethod
    def tearDownClass(cls):
        rc = cls.mock.stop()
        assert rc == 0, "the mock must exit 0 on SIGTERM, got %r: %s" % (rc, cls.mock.stderr)
        assert "Traceback" not in cls.mock.stderr, cls.mock.stderr

    def setUp(self):
        self.ctl.post("/reset")
        self.ctl.post("/settings", {"max_concurrent_streams": 1000, "token_update_window": 1200,
                                    "revoked_key_ids": []})
        self.token = es256_jwt(self.key, KID, TEAM)

    def client(self, **kw):
        c = H2Client(self.mock.port, os.path.join(KEYS, "ca.pem"), **kw)
        self.addCleanup(c.close)
        return c

    def headers(self, topic=TOPIC, push_type="alert", token=None, extra=()):
        h = [("authorization", "bearer " + (token or self.token))]
        if topic is not None:
            h.append(("apns-topic", topic))
        if push_type is not None:
            h.append(("apns-push-type", push_type))
        return h + list(extra)

    def assertReject(self, resp, status, reason):
        self.assertEqual(resp.status, status, resp)
        self.assertEqual(resp.json()["reason"], reason, resp)
        self.assertTrue(resp.header("apns-id"), "every answer carries an apns-id")

    def test_accepts_a_correct_request(self):
        c = self.client()
        mid = "123e4567-e89b-12d3-a456-426614174000"
        r = c.request(PATH, self.headers(extra=[("apns-id", mid), ("apns-priority", "10"),
                                                ("apns-expiration", "0"),
                                                ("apns-collapse-id", "c" * 64)]), ALERT)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("apns-id"), mid)
        self.assertEqual(bytes(r.body), b"")
        r = c.request(PATH, self.headers(), ALERT)
        self.assertEqual(r.status, 200, r)
        self.assertRegex(r.header("apns-id"), r"^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$")
        recs = self.ctl.requests(wait=2)
        self.assertEqual(len(recs), 2)
        rec = recs[0]
        self.assertEqual((rec["method"], rec["path"], rec["status"], rec["auth"]), ("POST", PATH, 200, "token"))
        self.assertEqual(rec["jwt"]["header"], {"alg": "ES256", "kid": KID})
        self.assertEqual(rec["jwt"]["claims"]["iss"], TEAM)
        self.assertEqual(rec["json"]["aps"]["alert"]["title"], "Hi")
        self.assertIn(["apns-topic", TOPIC], rec["headers"])
        self.assertEqual(rec["device_token"], DEVICE)
        self.assertEqual(recs[1]["stream"], 3)
        self.assertEqual(recs[0]["connection"], recs[1]["connection"])

    def test_provider_token_rejections(self):
        now = int(time.time())
        cases = [
            (es256_jwt(self.wrong_key, KID, TEAM), 403, "InvalidProviderToken"),
            (es256_jwt(self.key, KID, TEAM, der=True), 403, "InvalidProviderToken"),
            (es256_jwt(self.key, "ZZZ999ZZZZ", TEAM), 403, "InvalidProviderToken"),
            (es256_jwt(self.key, KID, "WRONGTEAM1"), 403, "InvalidProviderToken"),
            (es256_jwt(self.key, KID, TEAM, header={"alg": "HS256"}), 403, "InvalidProviderToken"),
            (es256_jwt(self.key, KID, TEAM, iat=now - 3700), 403, "ExpiredProviderToken"),
            (es256_jwt(self.key, KID, TEAM, iat=now + 3600), 403, "InvalidProviderToken"),
            ("not.a.jwt", 403, "InvalidProviderToken"),
        ]
        for tok, status, reason in cases:
            with self.subTest(reason=reason, tok=tok[:30]):
                c = self.client()
                self.assertReject(c.request(PATH, self.headers(token=tok), ALERT), status, reason)
        c = self.client()
        self.assertReject(c.request(PATH, self.headers()[1:], ALERT), 403, "MissingProviderToken")
        r = c.request(PATH, [("authorization", "basic " + self.token), ("apns-topic", TOPIC),
                             ("apns-push-type", "alert")], ALERT)
        self.assertReject(r, 403, "InvalidProviderToken")
        # iat 59 minutes ago is still fine
        c = self.client()
        r = c.request(PATH, self.headers(token=es256_jwt(self.key, KID, TEAM, iat=now - 3540)), ALERT)
        self.assertEqual(r.status, 200, r)

    def test_too_many_provider_token_updates(self):
        c = self.client()
        self.assertEqual(c.request(PATH, self.headers(), ALERT).status, 200)
        self.assertEqual(c.request(PATH, self.headers(), ALERT).status, 200)
        fresh = es256_jwt(self.key, KID, TEAM)
        self.assertReject(c.request(PATH, self.headers(token=fresh), ALERT), 429,
                          "TooManyProviderTokenUpdates")
        # The old token keeps working; another connection may use the new one.
        self.assertEqual(c.request(PATH, self.headers(), ALERT).status, 200)
        self.assertEqual(self.client().request(PATH, self.headers(token=fresh), ALERT).status, 200)
        # Past the window the change is accepted.
        self.ctl.post("/settings", {"token_update_window": 0.3})
        time.sleep(0.4)
        self.assertEqual(c.request(PATH, self.headers(token=fresh), ALERT).status, 200)
        conns = self.ctl.get("/connections")["open"]
        self.assertIn(1, [x["provider_token_changes"] for x in conns])

    def test_token_update_scope_team(self):
        m = Mock("apns_mock.py", "--token-update-scope", "team", "--token-update-window", "60")
        try:
            c1 = H2Client(m.port, os.path.join(KEYS, "ca.pem"))
            c2 = H2Client(m.port, os.path.join(KEYS, "ca.pem"))
            self.addCleanup(c1.close)
            self.addCleanup(c2.close)
            self.assertEqual(c1.request(PATH, self.headers(), ALERT).status, 200)
            self.assertEqual(c2.request(PATH, self.headers(), ALERT).status, 200, "shared token")
            other = es256_jwt(self.key, KID, TEAM)
            self.assertReject(c2.request(PATH, self.headers(token=other), ALERT), 429,
                              "TooManyProviderTokenUpdates")
            c3 = H2Client(m.port, os.path.join(KEYS, "ca.pem"))
            self.addCleanup(c3.close)
            self.assertReject(c3.request(PATH, self.headers(token=other), ALERT), 429,
                              "TooManyProviderTokenUpdates")
        finally:
            self.assertEqual(m.stop(), 0)

    def test_idle_timeout(self):
        m = Mock("apns_mock.py", "--idle-timeout", "1.0")
        try:
            c = H2Client(m.port, os.path.join(KEYS, "ca.pem"))
            self.addCleanup(c.close)
            self.assertEqual(c.request(PATH, self.headers(), ALERT).status, 200)
            for _ in range(6):  # PINGs keep it alive past the timeout
                time.sleep(0.25)
                c.ping()
                c.pump(0.05)
            self.assertIsNone(c.goaway)
            c.wait(lambda: c.goaway is not None and c.closed, timeout=5)
            self.assertEqual((c.goaway[1], json.loads(c.goaway[2])), (1, {"reason": "IdleTimeout"}))
        finally:
            self.assertEqual(m.stop(), 0)

    def test_path_and_method(self):
        c = self.client()
        self.assertReject(c.request(PATH, self.headers(), ALERT, method="GET"), 405, "MethodNotAllowed")
        self.assertReject(c.request("/3/device/xyz", self.headers(), ALERT), 400, "BadDeviceToken")
        self.assertReject(c.request("/3/device/" + "ab" * 31, self.headers(), ALERT), 400, "BadDeviceToken")
        self.assertReject(c.request("/3/device/", self.headers(), ALERT), 400, "MissingDeviceToken")
        self.assertReject(c.request("/3/devices/" + DEVICE, self.headers(), ALERT), 404, "BadPath")
        self.assertReject(c.request("/", self.headers(), ALERT), 404, "BadPath")

    def test_topic(self):
        c = self.client()
        self.assertReject(c.request(PATH, self.headers(topic=None), ALERT), 400, "MissingTopic")
        self.assertReject(c.request(PATH, self.headers(topic="com.other.app"), ALERT), 400, "TopicDisallowed")
        self.assertReject(c.request(PATH, self.headers(topic="bad topic"), ALERT), 400, "BadTopic")
        self.ctl.post("/register", {"token": DEVICE, "topic": "com.example.app.voip"})
        self.assertReject(c.request(PATH, self.headers(), ALERT), 400, "DeviceTokenNotForTopic")

    def test_push_type_against_topic_and_payload(self):
        c = self.client()
        voip = "com.example.app.voip"
        self.assertReject(c.request(PATH, self.headers(push_type="voip"), ALERT), 400, "InvalidPushType")
        self.assertReject(c.request(PATH, self.headers(topic=voip), ALERT), 400, "InvalidPushType")
        self.assertReject(c.request(PATH, self.headers(topic=voip, push_type="background",
                                                       extra=[("apns-priority", "5")]), SILENT),
                          400, "InvalidPushType")
        self.assertReject(c.request(PATH, self.headers(push_type=None), ALERT), 400, "InvalidPushType")
        self.assertReject(c.request(PATH, self.headers(push_type="banner"), ALERT), 400, "InvalidPushType")
        self.assertEqual(c.request(PATH, self.headers(topic=voip, push_type="voip"), ALERT).status, 200)

    def test_background(self):
        c = self.client()
        bg = self.headers(push_type="background")
        self.assertReject(c.request(PATH, bg, SILENT), 400, "BadPriority")
        self.assertReject(c.request(PATH, bg + [("apns-priority", "10")], SILENT), 400, "BadPriority")
        self.assertReject(c.request(PATH, bg + [("apns-priority", "5")], ALERT), 400, "InvalidPushType")
        self.assertEqual(c.request(PATH, bg + [("apns-priority", "5")], SILENT).status, 200)

    def test_other_headers(self):
        c = self.client()
        cases = [
            ([("apns-priority", "7")], "BadPriority"),
            ([("apns-priority", "high")], "BadPriority"),
            ([("apns-expiration", "tomorrow")], "BadExpirationDate"),
            ([("apns-expiration", "-1")], "BadExpirationDate"),
            ([("apns-collapse-id", "c" * 65)], "BadCollapseId"),
            ([("apns-id", "not-a-uuid")], "BadMessageId"),
            ([("apns-topic", TOPIC)], "DuplicateHeaders"),
        ]
        for extra, reason in cases:
            with self.subTest(reason=reason, extra=extra):
                self.assertReject(c.request(PATH, self.headers(extra=extra), ALERT), 400, reason)
        r = c.request(PATH, self.headers(extra=[("apns-id", "not-a-uuid")]), ALERT)
        self.assertNotEqual(r.header("apns-id"), "not-a-uuid")

    def test_payload(self):
        c = self.client()
        self.assertReject(c.request(PATH, self.headers(), b""), 400, "PayloadEmpty")
        self.assertReject(c.request(PATH, self.headers(), b"{not json"), 400, "BadPayload")
        self.assertReject(c.request(PATH, self.headers(), b'{"alert":"x"}'), 400, "BadPayload")

        def sized(n):
            base = b'{"aps":{"alert":"x"},"pad":""}'
            return base[:-2] + b"p" * (n - len(base)) + b'"}'
        self.assertEqual(len(sized(4096)), 4096)
        self.assertEqual(c.request(PATH, self.headers(), sized(4096)).status, 200)
        self.assertReject(c.request(PATH, self.headers(), sized(4097)), 413, "PayloadTooLarge")
        voip = self.headers(topic="com.example.app.voip", push_type="voip")
        self.assertEqual(c.request(PATH, voip, sized(5120)).status, 200)
        self.assertReject(c.request(PATH, voip, sized(5121)), 413, "PayloadTooLarge")

    def test_dead_token_410(self):
        c = self.client()
        self.ctl.post("/dead", {"token": DEVICE, "timestamp": 1700000000123})
        r = c.request(PATH, self.headers(), ALERT)
        self.assertReject(r, 410, "Unregistered")
        self.assertEqual(r.json()["timestamp"], 1700000000123)
        other = "/3/device/" + "f" * 64
        self.ctl.post("/dead", {"tokens": ["F" * 64], "reason": "ExpiredToken"})
        r = c.request(other, self.headers(), ALERT)
        self.assertReject(r, 410, "ExpiredToken")
        self.assertIsInstance(r.json()["timestamp"], int)
        self.assertGreater(r.json()["timestamp"], 1700000000000)
        # A request the mock would refuse anyway is refused for that reason first.
        self.assertReject(c.request(PATH, self.headers(topic=None), ALERT), 400, "MissingTopic")
        self.ctl.post("/alive", {"token": DEVICE})
        self.assertEqual(c.request(PATH, self.headers(), ALERT).status, 200)

    def test_scripted_failures(self):
        c = self.client()
        self.ctl.post("/fail", {"status": 429, "retry_after": 3, "count": 2})
        for _ in range(2):
            r = c.request(PATH, self.headers(), ALERT)
            self.assertReject(r, 429, "TooManyRequests")
            self.assertEqual(r.header("retry-after"), "3")
        self.assertEqual(c.request(PATH, self.headers(), ALERT).status, 200)
        self.ctl.post("/fail", {"status": 503, "reason": "Shutdown"})
        self.ctl.post("/fail", {"status": 500})
        self.ctl.post("/fail", {"reason": "BadDeviceToken"})
        self.assertReject(c.request(PATH, self.headers(), ALERT), 503, "Shutdown")
        self.assertReject(c.request(PATH, self.headers(), ALERT), 500, "InternalServerError")
        self.assertReject(c.request(PATH, self.headers(), ALERT), 400, "BadDeviceToken")
        self.assertEqual(c.request(PATH, self.headers(), ALERT).status, 200)
        # A rule can be aimed at one device token.
        self.ctl.post("/fail", {"status": 503, "match": {"token": "e" * 64}})
        self.assertEqual(c.request(PATH, self.headers(), ALERT).status, 200)
        self.assertReject(c.request("/3/device/" + "e" * 64, self.headers(), ALERT), 503, "ServiceUnavailable")
        # Refused provider tokens as long as asked ("count": null), counted per status.
        self.ctl.post("/reset")
        self.ctl.post("/fail", {"reason": "InvalidProviderToken", "count": None})
        for _ in range(3):
            self.assertReject(c.request(PATH, self.headers(), ALERT), 403, "InvalidProviderToken")
        self.assertEqual(self.ctl.get("/counters")["counters"],
                         {"send": {"requests": 3, "status": {"403": 3}}})

    def test_revoked_key(self):
        """A key Apple revoked: every token it signs is InvalidProviderToken, and, refused, it
        never becomes the connection's token (a new one is no TooManyProviderTokenUpdates)."""
        c = self.client()
        self.ctl.post("/settings", {"revoked_key_ids": [KID]})
        self.assertReject(c.request(PATH, self.headers(), ALERT), 403, "InvalidProviderToken")
        self.ctl.post("/settings", {"revoked_key_ids": []})
        self.token = es256_jwt(self.key, KID, TEAM, iat=int(time.time()) - 1)
        self.assertEqual(c.request(PATH, self.headers(), ALERT).status, 200)

    def test_goaway_after_k_streams(self):
        c = self.client()
        self.assertEqual(c.request(PATH, self.headers(), ALERT).status, 200)  # stream 1
        c.wait(lambda: c.max_streams() == 1000)
        self.ctl.post("/goaway", {"after": 2, "reason": "Shutdown"})
        sids = [c.send(PATH, self.headers(), ALERT) for _ in range(4)]  # 3, 5, 7, 9
        c.wait(lambda: c.goaway is not None and c.closed)
        code, last, data = c.goaway
        self.assertEqual((code, last), (0, 5))
        self.assertEqual(json.loads(data), {"reason": "Shutdown"})
        self.assertEqual([c.responses[s].status for s in sids], [200, 200, None, None])
        recs = self.ctl.requests(wait=5)
        self.assertEqual([r["outcome"] for r in recs[1:]],
                         ["answered", "answered", "ignored_after_goaway", "ignored_after_goaway"])
        # A new connection works.
        self.assertEqual(self.client().request(PATH, self.headers(), ALERT).status, 200)

    def test_goaway_now(self):
        c = self.client()
        self.assertEqual(c.request(PATH, self.headers(), ALERT).status, 200)
        self.ctl.post("/goaway", {"now": True, "error_code": 0, "data": '{"reason":"IdleTimeout"}'})
        c.wait(lambda: c.goaway is not None)
        self.assertEqual(c.goaway[1], 1)
        self.assertEqual(json.loads(c.goaway[2])["reason"], "IdleTimeout")

    def test_one_stream_until_authenticated(self):
        c = self.client()
        c.wait_settings()
        self.assertEqual(c.max_streams(), 1)
        self.ctl.post("/stall", {"count": 1, "ms": None})
        first = c.send(PATH, self.headers(), ALERT)
        self.ctl.requests(wait=1)  # the first stream is open at the mock
        second = c.send(PATH, self.headers(), ALERT, force=True)
        self.assertEqual(c.response(second).reset, REFUSED_STREAM)
        self.assertEqual(self.ctl.post("/release")["released"], 1)
        self.assertEqual(c.response(first).status, 200)
        c.wait(lambda: c.max_streams() == 1000)
        sids = [c.send(PATH, self.headers(), ALERT) for _ in range(5)]
        self.assertEqual([c.response(s).status for s in sids], [200] * 5)
        # A failed authentication does not lift the limit.
        c2 = self.client()
        bad = es256_jwt(self.wrong_key, KID, TEAM)
        self.assertEqual(c2.request(PATH, self.headers(token=bad), ALERT).status, 403)
        c2.pump(0.2)
        self.assertEqual(c2.max_streams(), 1)

    def test_max_concurrent_streams_enforced(self):
        self.ctl.post("/settings", {"max_concurrent_streams": 2})
        c = self.client()
        self.assertEqual(c.request(PATH, self.headers(), ALERT).status, 200)
        c.wait(lambda: c.max_streams() == 2)
        self.ctl.post("/stall", {"count": 2, "ms": None})
        a = c.send(PATH, self.headers(), ALERT)
        b = c.send(PATH, self.headers(), ALERT)
        self.ctl.requests(since=1, wait=2)
        x = c.send(PATH, self.headers(), ALERT, force=True)
        self.assertEqual(c.response(x).reset, REFUSED_STREAM)
        self.assertEqual(self.ctl.post("/release")["released"], 2)
        self.assertEqual([c.response(a).status, c.response(b).status], [200, 200])
        # Lowered on a live connection, the new limit is announced by SETTINGS.
        self.ctl.post("/settings", {"max_concurrent_streams": 1})
        c.wait(lambda: c.max_streams() == 1)
        recs = self.ctl.requests(wait=4)
        self.assertEqual(sorted(r["outcome"] for r in recs), ["answered"] * 3 + ["refused"])

    def test_stall_and_drop(self):
        c = self.client()
        self.ctl.post("/stall", {"count": 1, "ms": 300})
        t0 = time.monotonic()
        self.assertEqual(c.request(PATH, self.headers(), ALERT).status, 200)
        self.assertGreaterEqual(time.monotonic() - t0, 0.28)
        self.ctl.post("/drop", {"after": 1})
        self.assertEqual(c.request(PATH, self.headers(), ALERT).status, 200)
        sid = c.send(PATH, self.headers(), ALERT)
        c.wait(lambda: c.closed)
        self.assertIsNone(c.responses[sid].status)
        self.assertIsNone(c.goaway, "an abrupt drop sends no GOAWAY")
        recs = self.ctl.requests(wait=3)
        self.assertEqual(recs[-1]["outcome"], "dropped")

    def test_certificate_auth(self):
        c = self.client(cert=os.path.join(KEYS, "client.pem"), key=os.path.join(KEYS, "client.key"))
        c.wait_settings()
        self.assertEqual(c.max_streams(), 1000)
        r = c.request(PATH, [("apns-push-type", "alert")], ALERT)
        self.assertEqual(r.status, 200, r)
        r = c.request(PATH, [("apns-topic", "com.example.app.voip"), ("apns-push-type", "voip")], ALERT)
        self.assertEqual(r.status, 200, r)
        r = c.request(PATH, [("apns-topic", "com.other.app"), ("apns-push-type", "alert")], ALERT)
        self.assertReject(r, 400, "TopicDisallowed")
        rec = self.ctl.requests(wait=1)[0]
        self.assertEqual(rec["auth"], "certificate")
        with self.assertRaises((ssl.SSLError, OSError, AssertionError)):
            c2 = self.client(cert=os.path.join(KEYS, "rogue.pem"), key=os.path.join(KEYS, "rogue.key"))
            c2.request(PATH, [("apns-push-type", "alert")], ALERT)

    def test_tls_and_alpn(self):
        ctx = ssl.create_default_context(cafile=os.path.join(KEYS, "ca.pem"))
        ctx.set_alpn_protocols(["http/1.1"])
        with socket.create_connection(("127.0.0.1", self.mock.port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                self.assertIsNone(s.selected_alpn_protocol())
                s.sendall(b"POST " + PATH.encode() + b" HTTP/1.1\r\nhost: x\r\n\r\n")
                self.assertEqual(s.recv(100), b"", "no HTTP/1.1 at APNs")
        ctx = ssl.create_default_context(cafile=os.path.join(KEYS, "ca.pem"))
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_alpn_protocols(["h2"])
        with socket.create_connection(("127.0.0.1", self.mock.port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                self.assertEqual((s.version(), s.selected_alpn_protocol()), ("TLSv1.2", "h2"))

    @unittest.skipUnless(shutil.which("curl"), "curl not installed")
    def test_curl_nghttp2_client(self):
        """libcurl's HTTP/2 (nghttp2, like platypus) gets the same answers."""
        url = "https://localhost:%d%s" % (self.mock.port, PATH)
        base = ["curl", "-sS", "--http2", "--cacert", os.path.join(KEYS, "ca.pem"), "-o", "-",
                "-w", "\n%{http_version} %{http_code}", "--max-time", "10"]
        hdrs = []
        for k, v in self.headers():
            hdrs += ["-H", "%s: %s" % (k, v)]
        out = subprocess.run(base + hdrs + ["--data-binary", ALERT.decode(), url],
                             capture_output=True, text=True, timeout=20)
        self.assertTrue(out.stdout.endswith("\n2 200"), out)
        # without apns-push-type (the last header)
        out = subprocess.run(base + hdrs[:-2] + ["--data-binary", ALERT.decode(), url],
                             capture_output=True, text=True, timeout=20)
        body, status = out.stdout.split("\n")
        self.assertEqual((status, json.loads(body)["reason"]), ("2 400", "InvalidPushType"))

    def test_ping_counted(self):
        c = self.client()
        c.ping()
        c.wait(lambda: any(isinstance(e, __import__("h2").events.PingAckReceived) for e in c.events))
        conns = self.ctl.get("/connections")["open"]
        self.assertIn(1, [x["pings"] for x in conns])


if __name__ == "__main__":
    unittest.main()
