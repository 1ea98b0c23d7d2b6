"""platypus when Apple or Google refuse its credentials for good (a revoked FCM service account,
an APNs key Apple no longer honours): under concurrent load it takes one new access token or
provider token per app, sends each notification at most twice, then marks the app unhealthy
(/healthcheck, metrics, one log line) and fails further notifications at once, checking the
credentials again after a backoff. The real daemon, behind its REST API, against the strict
mocks with their counters."""

import concurrent.futures
import json
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "mock"))
import suite  # noqa: E402
from mockproc import KEYS, Mock, apns_app_yaml  # noqa: E402
from test_platypus_frontends import post  # noqa: E402

TOPIC = "com.example.app"
APNS_TOKEN = "0123456789abcdef" * 4
FCM_TOKEN = "cZ1xY2z3:APA91bH-abc_def0123456789ABCDEFGHIJKLMNOP"
BURST = 20
REFUSED_LINE = "refuses our credentials"


def config(admin, rest, apns, fcm, sa):
    return """log:
  level: info
admin:
  listen: 127.0.0.1:%d
shutdown_timeout: 5s
rest:
  enabled: true
  listen: 127.0.0.1:%d
  tls: false
dispatch:
  max_attempts: 5
  backoff_min: 20ms
  backoff_max: 100ms
  retry_window: 20s
apns:
""" % (admin, rest) + apns_app_yaml(apns.port, TOPIC) + """fcm:
  - name: android
    service_account: %s
    base_url: https://127.0.0.1:%d
    ca_file: %s/ca.pem
""" % (sa, fcm.port, KEYS)


class Credentials(unittest.TestCase):
    def setUp(self):
        self.tmp = suite.tempdir()
        self.dir = self.tmp.name
        sa = os.path.join(self.dir, "service-account.json")
        self.apns = Mock("apns_mock.py", "--topics", TOPIC)
        self.fcm = Mock("fcm_mock.py", "--write-service-account", sa)
        self.admin, self.rest = suite.free_port(), suite.free_port()
        self.daemon = suite.Daemon("platypus", config(self.admin, self.rest, self.apns, self.fcm,
                                                      sa), self.dir)
        suite.wait_http(self.admin, daemon=self.daemon)

    def tearDown(self):
        self.daemon.close()
        self.apns.stop()
        self.fcm.stop()
        self.tmp.cleanup()

    def burst(self, service, n=BURST):
        """n notifications at once; their answers (status, body) and the time they took."""
        token = FCM_TOKEN if service == "fcm" else APNS_TOKEN
        body = {"service": service, "alert": {"title": "Juliet", "body": "Hi"}}
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(n) as pool:
            answers = list(pool.map(lambda _: post(self.rest, token, body, timeout=30),
                                    range(n)))
        return answers, time.monotonic() - t0

    def counters(self, mock):
        c = mock.control.get("/counters")["counters"]
        return {k: v["requests"] for k, v in c.items()}

    def metric(self, name, labels=None):
        return suite.metric(suite.http_get(self.admin, "/metrics")[2], name, labels)

    def health(self):
        status, _, text = suite.http_get(self.rest, "/healthcheck")
        return status, json.loads(text)

    def until_delivered(self, service, timeout=15):
        """Post one notification after another until one is delivered (the credentials check
        runs after its backoff); returns how many it took."""
        deadline = time.monotonic() + timeout
        tries = 0
        while time.monotonic() < deadline:
            tries += 1
            status, body = self.burst(service, 1)[0][0]
            if status == 200:
                return tries
            time.sleep(0.2)
        self.fail("never delivered again:\n" + self.daemon.output()[-4000:])

    def test_fcm_401_forever(self):
        self.fcm.control.post("/fail", {"code": "UNAUTHENTICATED", "count": None})
        answers, _ = self.burst("fcm")
        self.assertEqual({a[0] for a in answers}, {503}, answers)
        c = self.counters(self.fcm)
        # One access token, then one new one for the whole app; each notification sent at most
        # twice (before: 5 sends a notification and a grant for nearly each). Those that
        # arrive once the credentials are refused are not sent at all; on a slow machine a
        # check (one grant, one send) may come before the burst is over.
        self.assertIn(c["token"], (2, 3), c)
        self.assertLessEqual(c["send"], 2 * BURST + 1, c)
        self.assertGreaterEqual(c["send"], 2, c)
        self.assertEqual(self.daemon.output().count(REFUSED_LINE), 1, self.daemon.output())
        self.assertEqual(self.metric("platypus_app_credentials_ok", {"app": "android"}), 0)
        self.assertEqual(self.metric("platypus_app_credentials_ok", {"app": "ios"}), 1)
        status, h = self.health()
        self.assertEqual(status, 200, h)  # the APNs app can still deliver
        self.assertEqual(h["apps"]["android"]["credentials"], "refused", h)
        self.assertEqual(h["apps"]["ios"]["credentials"], "ok", h)

        # While refused: at once, without a send (at most one check if its time has come).
        answers, took = self.burst("fcm")
        self.assertEqual({a[0] for a in answers}, {503}, answers)
        self.assertEqual({a[1]["reason"] for a in answers}, {"service_internal"})
        self.assertIn("FCM refuses our credentials", answers[-1][1]["detail"])
        after = self.counters(self.fcm)
        self.assertLessEqual(after["token"] - c["token"], 1, after)
        self.assertLessEqual(after["send"] - c["send"], 1, after)
        self.assertLess(took, 5)

        # The credentials work again: a check finds out, and notifications flow.
        self.fcm.control.post("/reset")
        self.until_delivered("fcm")
        self.assertEqual(self.metric("platypus_app_credentials_ok", {"app": "android"}), 1)
        self.assertEqual(self.health()[1]["apps"]["android"]["credentials"], "ok")
        self.assertIn("accepts our credentials again", self.daemon.output())
        self.assertEqual(self.daemon.output().count(REFUSED_LINE), 1)
        answers, _ = self.burst("fcm")
        self.assertEqual({a[0] for a in answers}, {200}, answers)
        self.stop()

    def test_fcm_reload_tries_new_credentials_at_once(self):
        self.fcm.control.post("/fail", {"code": "UNAUTHENTICATED", "count": None})
        self.burst("fcm", 5)
        self.assertEqual(self.metric("platypus_app_credentials_ok", {"app": "android"}), 0)
        # The operator fixes the account (here: the mock honours tokens again) and reloads a
        # changed file: no waiting for the next check.
        self.fcm.control.post("/reset")
        sa = os.path.join(self.dir, "service-account.json")
        with open(sa) as f:
            account = json.load(f)
        with open(sa, "w") as f:
            json.dump(account, f, indent=4)
        self.daemon.signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "new credentials loaded" not in self.daemon.output():
            self.assertLess(time.monotonic(), deadline, self.daemon.output())
            time.sleep(0.05)
        self.assertEqual(self.metric("platypus_app_credentials_ok", {"app": "android"}), 1)
        self.assertEqual(self.health()[1]["apps"]["android"]["credentials"], "ok")
        answers, _ = self.burst("fcm", 5)
        self.assertEqual({a[0] for a in answers}, {200}, answers)
        self.stop()

    def apns_refused(self, setup):
        setup()
        answers, _ = self.burst("apns")
        self.assertEqual({a[0] for a in answers}, {503}, answers)
        c = self.counters(self.apns)
        self.assertLessEqual(c["send"], 2 * BURST + 1, c)
        # two tokens (a third if a check came before the burst was over)
        self.assertLessEqual(self.metric("platypus_apns_token_refreshes_total", {"app": "ios"}), 3)
        self.assertEqual(self.daemon.output().count(REFUSED_LINE), 1, self.daemon.output())
        self.assertEqual(self.metric("platypus_app_credentials_ok", {"app": "ios"}), 0)
        self.assertEqual(self.health()[1]["apps"]["ios"]["credentials"], "refused")
        answers, took = self.burst("apns")
        self.assertEqual({a[0] for a in answers}, {503}, answers)
        self.assertLessEqual(self.counters(self.apns)["send"] - c["send"], 1)
        self.assertLess(took, 5)
        return c

    def test_apns_invalid_provider_token_forever(self):
        # Apple revoked the key: every token it signs is InvalidProviderToken
        self.apns_refused(lambda: self.apns.control.post(
            "/settings", {"revoked_key_ids": ["ABC123DEFG"]}))
        self.apns.control.post("/settings", {"revoked_key_ids": []})
        self.until_delivered("apns")
        self.assertEqual(self.metric("platypus_app_credentials_ok", {"app": "ios"}), 1)
        self.assertIn("accepts our credentials again", self.daemon.output())
        self.stop()

    def test_apns_expired_provider_token_forever(self):
        # every token is too old for the mock: what a clock far behind would cause
        self.apns_refused(lambda: self.apns.control.post("/settings", {"token_max_age": 0}))
        refreshes = self.metric("platypus_apns_token_refreshes_total", {"app": "ios"})
        self.assertLessEqual(refreshes, 3)
        self.stop()

    def stop(self):
        self.assertEqual(self.daemon.stop(), 0)
        suite.assert_clean(self, self.daemon.output())


if __name__ == "__main__":
    unittest.main()
