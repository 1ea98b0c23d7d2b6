"""test_mock_fcm.py - self-tests of the strict mock FCM (tests/mock/fcm_mock.py): the OAuth2
service-account grant (RS256 assertion), the HTTP v1 send endpoint over HTTP/2 and HTTP/1.1, and
Google's error bodies. The platypus tests rely on these behaviours."""

import http.client
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "mock"))
from h2client import H2Client, load_key, rs256_jwt  # noqa: E402
from mockproc import KEYS, Mock  # noqa: E402

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
PROJECT = "platypus-test"
SEND = "/v1/projects/%s/messages:send" % PROJECT
DEVICE = "fcm-token-" + "x" * 40
FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"


class MockFCMTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="fcm-mock-")
        cls.sa_path = os.path.join(cls.tmp, "sa.json")
        cls.mock = Mock("fcm_mock.py", "--write-service-account", cls.sa_path)
        cls.ctl = cls.mock.control
        with open(cls.sa_path) as f:
            cls.sa = json.load(f)
        cls.key = load_key(os.path.join(KEYS, "service-account.key"))
        cls.wrong_key = load_key(os.path.join(KEYS, "service-account-wrong.key"))
        cls.ctx = ssl.create_default_context(cafile=os.path.join(KEYS, "ca.pem"))

    @classmethod
    def tearDownClass(cls):
        rc = cls.mock.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        assert rc == 0, "the mock must exit 0 on SIGTERM, got %r: %s" % (rc, cls.mock.stderr)
        assert "Traceback" not in cls.mock.stderr, cls.mock.stderr

    def setUp(self):
        self.ctl.post("/reset")
        self.ctl.post("/settings", {"token_lifetime": 3599})

    # --- helpers
    def assertion(self, key=None, **over):
        now = int(time.time())
        claims = {"iss": self.sa["client_email"], "scope": SCOPE, "aud": self.sa["token_uri"],
                  "iat": now, "exp": now + 3600}
        header = over.pop("header", None)
        claims.update(over)
        claims = {k: v for k, v in claims.items() if v is not None}
        return rs256_jwt(key or self.key, claims, header)

    def h1(self, method, path, body=b"", headers=None):
        c = http.client.HTTPSConnection("localhost", self.mock.port, context=self.ctx, timeout=5)
        try:
            c.request(method, path, body, headers or {})
            r = c.getresponse()
            return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
        finally:
            c.close()

    def grant(self, assertion=None, grant_type=GRANT):
        form = urllib.parse.urlencode({"grant_type": grant_type,
                                       "assertion": assertion or self.assertion()})
        status, _, body = self.h1("POST", urllib.parse.urlsplit(self.sa["token_uri"]).path, form,
                                  {"content-type": "application/x-www-form-urlencoded"})
        return status, json.loads(body)

    def access_token(self):
        status, body = self.grant()
        self.assertEqual(status, 200, body)
        return body["access_token"]

    def client(self):
        c = H2Client(self.mock.port, os.path.join(KEYS, "ca.pem"))
        self.addCleanup(c.close)
        return c

    def send(self, c, message, token=None, project=PROJECT, raw=None):
        hdrs = [("content-type", "application/json")]
        if token is not False:
            hdrs.append(("authorization", "Bearer " + (token or self.token)))
        body = raw if raw is not None else json.dumps({"message": message}).encode()
        return c.request("/v1/projects/%s/messages:send" % project, hdrs, body)

    def msg(self, **kw):
        m = {"token": DEVICE, "notification": {"title": "Hi", "body": "there"},
             "data": {"k": "v"}, "android": {"priority": "HIGH", "ttl": "3600s",
                                             "collapse_key": "c"}}
        m.update(kw)
        return m

    def assertFcmError(self, r, status, gstatus, code=None):
        self.assertEqual(r.status, status, r)
        err = r.json()["error"]
        self.assertEqual((err["code"], err["status"]), (status, gstatus), err)
        codes = [d.get("errorCode") for d in err.get("details", []) if d["@type"] == FCM_ERROR]
        self.assertEqual(codes, [code] if code else [], err)
        return err

    # --- token endpoint
    def test_grant_valid_assertion(self):
        status, body = self.grant()
        self.assertEqual(status, 200, body)
        self.assertEqual((body["token_type"], body["expires_in"]), ("Bearer", 3599))
        self.assertTrue(body["access_token"])
        self.ctl.post("/settings", {"token_lifetime": 5})
        self.assertEqual(self.grant()[1]["expires_in"], 5)
        grants = self.ctl.get("/grants")["grants"]
        self.assertEqual([g["outcome"] for g in grants], ["granted", "granted"])
        self.assertEqual(grants[0]["jwt"]["claims"]["scope"], SCOPE)
        # with kid = private_key_id, and the cloud-platform scope, also fine
        self.assertEqual(self.grant(self.assertion(header={"kid": self.sa["private_key_id"]}))[0], 200)
        self.assertEqual(self.grant(self.assertion(
            scope="https://www.googleapis.com/auth/cloud-platform"))[0], 200)

    def test_grant_rejections(self):
        now = int(time.time())
        cases = [
            (self.assertion(key=self.wrong_key), "invalid_grant"),
            (self.assertion(aud="https://oauth2.googleapis.com/token"), "invalid_grant"),
            (self.assertion(iss="someone@else.iam.gserviceaccount.com"), "invalid_grant"),
            # iat given with exp: the helper's own clock may already be a second later
            (self.assertion(iat=now, exp=now + 3601), "invalid_grant"),
            (self.assertion(iat=now - 7200, exp=now - 3600), "invalid_grant"),
            (self.assertion(iat=now + 600, exp=now + 1200), "invalid_grant"),
            (self.assertion(exp=None), "invalid_grant"),
            (self.assertion(header={"alg": "RS512"}), "invalid_grant"),
            (self.assertion(header={"kid": "0" * 40}), "invalid_grant"),
            (self.assertion(scope="https://www.googleapis.com/auth/userinfo.email"), "invalid_scope"),
            (self.assertion(scope=None), "invalid_scope"),
            ("a.b.c", "invalid_grant"),
        ]
        for a, err in cases:
            with self.subTest(err=err, claims=a[:40]):
                status, body = self.grant(a)
                self.assertEqual((status, body["error"]), (400, err), body)
                self.assertIn("error_description", body)
        status, body = self.grant(grant_type="client_credentials")
        self.assertEqual((status, body["error"]), (400, "unsupported_grant_type"))
        status, _, body = self.h1("POST", "/token", json.dumps({"grant_type": GRANT}),
                                  {"content-type": "application/json"})
        self.assertEqual((status, json.loads(body)["error"]), (400, "invalid_request"))
        grants = self.ctl.get("/grants")["grants"]
        self.assertFalse([g for g in grants if g["outcome"] == "granted"])

    # --- send
    def test_send_ok_h2_and_http11(self):
        self.token = self.access_token()
        c = self.client()
        self.assertEqual(c.alpn, "h2")
        r = self.send(c, self.msg())
        self.assertEqual(r.status, 200, r)
        self.assertRegex(r.json()["name"], r"^projects/%s/messages/.+" % PROJECT)
        status, _, body = self.h1("POST", SEND, json.dumps({"message": self.msg()}),
                                  {"authorization": "Bearer " + self.token,
                                   "content-type": "application/json; charset=UTF-8"})
        self.assertEqual(status, 200, body)
        recs = self.ctl.requests(wait=3)
        sends = [x for x in recs if x["path"] == SEND]
        self.assertEqual([x["proto"] for x in sends], ["h2", "http/1.1"])
        self.assertEqual(sends[0]["json"]["message"]["android"]["ttl"], "3600s")
        self.assertTrue(sends[0]["access_token_valid"])
        self.assertEqual(sends[0]["fcm_token"], DEVICE)
        # camelCase field names are proto3 JSON too; validate_only answers a fake id
        r = c.request(SEND, [("authorization", "Bearer " + self.token), ("content-type", "application/json")],
                      json.dumps({"validateOnly": True, "message": {"token": DEVICE, "android": {
                          "collapseKey": "x", "directBootOk": True}}}).encode())
        self.assertEqual(r.json()["name"], "projects/%s/messages/fake_message_id" % PROJECT)

    def test_message_validation(self):
        self.token = self.access_token()
        c = self.client()
        schema = [
            self.msg(data={"k": 1}),
            self.msg(data={"k": {"x": "y"}}),
            self.msg(android={"priority": "URGENT"}),
            self.msg(android={"priority": "high"}),
            self.msg(android={"ttl": 3600}),
            self.msg(android={"ttl": "3600"}),
            self.msg(notification={"title": 5}),
            self.msg(unknown_field="x"),
        ]
        for m in schema:
            with self.subTest(message=m):
                err = self.assertFcmError(self.send(c, m), 400, "INVALID_ARGUMENT")
                self.assertEqual(err["details"][0]["@type"], "type.googleapis.com/google.rpc.BadRequest")
        semantic = [
            {"data": {"k": "v"}},                                   # no target
            self.msg(topic="news"),                                 # two targets
            self.msg(token="short"),                                # not a registration token
            self.msg(data={"from": "x"}),                           # reserved key
            self.msg(data={"google.x": "x"}),
            self.msg(android={"ttl": "2419201s"}),                  # over 28 days
            self.msg(data={"big": "x" * 4094}),                     # 4097 bytes of payload
        ]
        for m in semantic:
            with self.subTest(message=str(m)[:80]):
                self.assertFcmError(self.send(c, m), 400, "INVALID_ARGUMENT", "INVALID_ARGUMENT")
        self.assertEqual(self.send(c, self.msg(data={"big": "x" * 4093}, notification=None)).status, 200)
        self.assertFcmError(self.send(c, None, raw=b"{oops"), 400, "INVALID_ARGUMENT")
        self.assertFcmError(self.send(c, None, raw=b'{"msg":{}}'), 400, "INVALID_ARGUMENT")
        r = c.request(SEND, [("authorization", "Bearer " + self.token)],
                      json.dumps({"message": self.msg()}).encode())
        self.assertFcmError(r, 400, "INVALID_ARGUMENT")  # no content-type: application/json

    def test_auth_errors(self):
        self.token = self.access_token()
        c = self.client()
        err = self.assertFcmError(self.send(c, self.msg(), token="ya29.bogus"), 401, "UNAUTHENTICATED")
        self.assertIn("invalid authentication credentials", err["message"])
        self.assertFcmError(self.send(c, self.msg(), token=False), 401, "UNAUTHENTICATED")
        self.assertEqual(self.send(c, self.msg()).status, 200)
        self.ctl.post("/expire")
        r = self.send(c, self.msg())
        self.assertFcmError(r, 401, "UNAUTHENTICATED")
        self.assertIn("invalid_token", r.header("www-authenticate"))
        self.token = self.access_token()
        self.assertEqual(self.send(c, self.msg()).status, 200)
        self.assertFcmError(self.send(c, self.msg(), project="another-project"), 403,
                            "PERMISSION_DENIED", "SENDER_ID_MISMATCH")
        self.ctl.post("/register", {"token": DEVICE, "project": "another-project"})
        self.assertFcmError(self.send(c, self.msg()), 403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH")

    def test_access_token_expires_after_expires_in(self):
        self.ctl.post("/settings", {"token_lifetime": 1})
        self.token = self.access_token()
        c = self.client()
        self.assertEqual(self.send(c, self.msg()).status, 200)
        time.sleep(1.1)
        self.assertFcmError(self.send(c, self.msg()), 401, "UNAUTHENTICATED")

    def test_unregistered_and_scripted_errors(self):
        self.token = self.access_token()
        c = self.client()
        self.ctl.post("/dead", {"token": DEVICE})
        err = self.assertFcmError(self.send(c, self.msg()), 404, "NOT_FOUND", "UNREGISTERED")
        self.assertEqual(err["message"], "Requested entity was not found.")
        self.ctl.post("/alive", {"token": DEVICE})
        self.ctl.post("/fail", {"code": "QUOTA_EXCEEDED", "retry_after": 7})
        r = self.send(c, self.msg())
        self.assertFcmError(r, 429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED")
        self.assertEqual(r.header("retry-after"), "7")
        for code, status, gstatus in [("UNAVAILABLE", 503, "UNAVAILABLE"), ("INTERNAL", 500, "INTERNAL"),
                                      ("THIRD_PARTY_AUTH_ERROR", 401, "UNAUTHENTICATED"),
                                      ("INVALID_ARGUMENT", 400, "INVALID_ARGUMENT")]:
            self.ctl.post("/fail", {"code": code})
            self.assertFcmError(self.send(c, self.msg()), status, gstatus, code)
        self.assertEqual(self.send(c, self.msg()).status, 200)
        # The token endpoint can fail too.
        self.ctl.post("/fail", {"endpoint": "token", "status": 503, "error": "internal_failure",
                                "retry_after": 2})
        self.assertEqual(self.grant()[0], 503)
        self.assertEqual(self.grant()[0], 200)

    def test_refuse_every_access_token_and_count(self):
        """Revoked credentials as FCM answers them: every send 401 (no FcmError), while grants
        still succeed; /counters counts requests and statuses per endpoint."""
        self.token = self.access_token()
        c = self.client()
        self.assertEqual(self.send(c, self.msg()).status, 200)
        self.ctl.post("/fail", {"code": "UNAUTHENTICATED", "count": None})
        for _ in range(3):
            r = self.send(c, self.msg())
            self.assertFcmError(r, 401, "UNAUTHENTICATED")
            self.assertIn("invalid_token", r.header("www-authenticate"))
        self.token = self.access_token()
        self.assertFcmError(self.send(c, self.msg()), 401, "UNAUTHENTICATED")
        # invalid requests still get their own error first
        self.assertFcmError(self.send(c, self.msg(token="short")), 400, "INVALID_ARGUMENT",
                            "INVALID_ARGUMENT")
        counters = self.ctl.get("/counters")["counters"]
        self.assertEqual(counters["token"], {"requests": 2, "status": {"200": 2}})
        self.assertEqual(counters["send"], {"requests": 6, "status": {"200": 1, "401": 4,
                                                                     "400": 1}})
        self.ctl.post("/reset")
        self.assertEqual(self.ctl.get("/counters")["counters"], {})

    def test_goaway_h2_and_close_http11(self):
        self.token = self.access_token()
        c = self.client()
        self.assertEqual(self.send(c, self.msg()).status, 200)
        self.ctl.post("/goaway", {"after": 1})
        a = c.send(SEND, [("authorization", "Bearer " + self.token), ("content-type", "application/json")],
                   json.dumps({"message": self.msg()}).encode())
        b = c.send(SEND, [("authorization", "Bearer " + self.token), ("content-type", "application/json")],
                   json.dumps({"message": self.msg()}).encode())
        c.wait(lambda: c.goaway is not None and c.closed)
        self.assertEqual((c.goaway[1], c.responses[a].status, c.responses[b].status), (a, 200, None))
        # HTTP/1.1 has no GOAWAY: the connection just closes without an answer.
        self.ctl.post("/goaway", {"after": 0})
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            self.h1("POST", SEND, json.dumps({"message": self.msg()}),
                    {"authorization": "Bearer " + self.token, "content-type": "application/json"})
        outcomes = [r["outcome"] for r in self.ctl.requests(wait=4) if r["path"] == SEND]
        self.assertEqual(outcomes, ["answered", "answered", "ignored_after_goaway",
                                    "ignored_after_goaway"])

    @unittest.skipUnless(shutil.which("curl"), "curl not installed")
    def test_curl_client(self):
        """libcurl (platypus's FCM client) over HTTP/2 and HTTP/1.1: grant, then send."""
        base = ["curl", "-sS", "--cacert", os.path.join(KEYS, "ca.pem"), "--max-time", "10",
                "-w", "\n%{http_version} %{http_code}"]
        out = subprocess.run(base + ["--http2", "--data-urlencode", "grant_type=" + GRANT,
                                     "--data-urlencode", "assertion=" + self.assertion(),
                                     self.sa["token_uri"]], capture_output=True, text=True, timeout=20)
        body, status = out.stdout.split("\n")
        self.assertEqual(status, "2 200", out)
        token = json.loads(body)["access_token"]
        for version, want in (("--http2", "2 200"), ("--http1.1", "1.1 200")):
            out = subprocess.run(base + [version, "-H", "authorization: Bearer " + token, "-H",
                                         "content-type: application/json", "--data-binary",
                                         json.dumps({"message": self.msg()}),
                                         "https://localhost:%d%s" % (self.mock.port, SEND)],
                                 capture_output=True, text=True, timeout=20)
            body, status = out.stdout.split("\n")
            self.assertEqual(status, want, out)
            self.assertIn("/messages/", json.loads(body)["name"])

    def test_stall_http11(self):
        self.token = self.access_token()
        self.ctl.post("/stall", {"count": 1, "ms": 300, "match": {"endpoint": "send"}})
        t0 = time.monotonic()
        status, _, _ = self.h1("POST", SEND, json.dumps({"message": self.msg()}),
                               {"authorization": "Bearer " + self.token,
                                "content-type": "application/json"})
        self.assertEqual(status, 200)
        self.assertGreaterEqual(time.monotonic() - t0, 0.28)


if __name__ == "__main__":
    unittest.main()
