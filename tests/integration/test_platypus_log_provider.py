"""platypus's development log provider: notifications that reach it through the REST API and
through the XEP-0357 component are written as JSON lines (to a file, or to the daemon's log) and
answered as delivered; platypus refuses to start with it in production mode."""

import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import suite  # noqa: E402
from test_platypus_frontends import XmppServer, post  # noqa: E402

TOKEN = "0123456789abcdef" * 4
SECRET = "component-secret"


def config(admin, rest, log_file, component=None, extra=""):
    text = """log:
  level: debug
admin:
  listen: 127.0.0.1:%d
shutdown_timeout: 5s
production: false
rest:
  enabled: true
  listen: 127.0.0.1:%d
  tls: false
log_apps:
  - name: dev-ios
    service: apns
    mode: prod
    file: %s
  - name: dev-android
    service: fcm
    mode: dev
""" % (admin, rest, log_file)
    if component:
        text += """component:
  enabled: true
  server: 127.0.0.1:%d
  domain: push.example.com
  secret: %s
  reconnect_min: 100ms
  reconnect_max: 500ms
""" % component
    return text + extra


def lines(path):
    with open(path) as f:
        return [json.loads(x) for x in f.read().splitlines()]


class LogProvider(unittest.TestCase):
    def setUp(self):
        self.tmp = suite.tempdir()
        self.dir = self.tmp.name
        self.log = os.path.join(self.dir, "push.log")
        self.daemon = None
        self.xmpp = None

    def tearDown(self):
        if self.daemon:
            self.daemon.close()
        if self.xmpp:
            self.xmpp.close()
        self.tmp.cleanup()

    def start(self):
        self.admin, self.rest = suite.free_port(), suite.free_port()
        self.xmpp = XmppServer(SECRET)
        secret = os.path.join(self.dir, "component.secret")
        with open(secret, "w") as f:
            f.write(SECRET + "\n")
        self.daemon = suite.Daemon("platypus", config(self.admin, self.rest, self.log,
                                                      (self.xmpp.port, secret)), self.dir)
        suite.wait_http(self.admin, daemon=self.daemon)
        self.xmpp.accept()

    def test_rest_and_component(self):
        self.start()
        out = self.daemon.output()
        self.assertIn("DEVELOPMENT log provider", out)
        # REST: an alert to the APNs stand-in (mode prod is the default)
        status, body = post(self.rest, TOKEN, {"service": "apns", "alert": {
            "title": "alice@localhost", "body": "hi"}, "data": {"k": "v"}})
        self.assertEqual((status, body), (200, None))
        # REST: a data push to the FCM stand-in, which logs to the daemon's log
        status, _ = post(self.rest, "fcm-token-1", {"service": "fcm", "mode": "dev",
                                                    "data": {"call": "1"}})
        self.assertEqual(status, 200)
        # nothing for an FCM app in mode prod: no app matches, as with real providers
        status, body = post(self.rest, "fcm-token-2", {"service": "fcm", "data": {"a": "b"}})
        self.assertEqual(status, 400, body)
        # the component: a XEP-0357 publish for a call (voip)
        self.xmpp.publish("p1", TOKEN, "<field var='voip'><value>1</value></field>",
                          frm="example.com", body="incoming call")
        reply = self.xmpp.reply("p1")
        self.assertIn("type='result'", reply.replace('"', "'"))

        got = lines(self.log)
        self.assertEqual(len(got), 2, got)
        rest, comp = got
        self.assertEqual(rest["app"], "dev-ios")
        self.assertEqual(rest["service"], "apns")
        self.assertEqual(rest["token"], TOKEN)
        self.assertEqual(rest["alert"]["title"], "alice@localhost")
        self.assertEqual(rest["alert"]["body"], "hi")
        self.assertEqual(rest["data"], {"k": "v"})
        self.assertFalse(rest["voip"])
        self.assertEqual(comp["token"], TOKEN)
        self.assertTrue(comp["voip"])
        self.assertEqual(comp["priority"], "high")
        deadline = time.monotonic() + 10
        while "fcm-token-1" not in self.daemon.output() and time.monotonic() < deadline:
            time.sleep(0.1)
        logged = [x for x in self.daemon.output().splitlines() if "would send" in x]
        self.assertEqual(len(logged), 1, logged)
        self.assertIn('"token":"fcm-token-1"', logged[0])
        self.assertIn('"app":"dev-android"', logged[0])
        metrics = suite.http_get(self.admin, "/metrics")[2]
        self.assertEqual(suite.metric(metrics, "platypus_notifications_total",
                                      {"app": "dev-ios", "outcome": "delivered"}), 2)
        health = json.loads(suite.http_get(self.admin, "/health")[2])
        self.assertIn("dev-ios", json.dumps(health))
        self.assertEqual(self.daemon.stop(), 0)
        suite.assert_clean(self, self.daemon.output())

    def test_refused_in_production(self):
        binary = os.path.join(suite.BIN, "platypus")
        path = os.path.join(self.dir, "p.yaml")
        base = config(suite.free_port(), suite.free_port(), self.log)
        cases = [
            # the default is production
            (base.replace("production: false\n", ""), "production: false"),
            (base.replace("production: false", "production: true"), "development only"),
            # a real app in mode prod makes it production too
            (base + "fcm:\n  - name: android\n    service_account: %s\n" % path,
             "\"android\" is in mode prod"),
        ]
        for text, want in cases:
            with open(path, "w") as f:
                f.write(text)
            r = subprocess.run([binary, "-c", path, "--check-config"], capture_output=True,
                               text=True, timeout=30)
            self.assertNotEqual(r.returncode, 0, text)
            self.assertIn(want, r.stdout + r.stderr)
        # a directory that does not exist: refused at start, naming the file
        with open(path, "w") as f:
            f.write(base.replace(self.log, "/nonexistent-dir/push.log"))
        r = subprocess.run([binary, "-c", path], capture_output=True, text=True, timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("/nonexistent-dir/push.log", r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
