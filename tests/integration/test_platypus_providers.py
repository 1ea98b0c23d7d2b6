"""Black-box tests of platypus's provider side: the real daemon started with apps (APNs token
and certificate auth, FCM) pointing at the strict mocks of tests/mock; configuration checks,
/health per app, metrics, SIGHUP reload of keys and service accounts, SIGTERM drain, start-up
failure on a bad key. (Delivery itself is driven through the front ends once they exist; the
C tests in tests/platypus/ drive the real APNs/FCM clients against the same mocks.)"""

import os
import shutil
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import suite  # noqa: E402

sys.path.insert(0, os.path.join(suite.TOP, "tests", "mock"))
from mockproc import KEYS, Mock  # noqa: E402


def config(admin, apns_port, fcm_port, keydir, extra=""):
    return """
admin:
  listen: 127.0.0.1:%(admin)d
shutdown_timeout: 5s
dispatch:
  queue_max: 100
apns:
  - name: ios
    topic: com.example.app
    tags: [beta]
    key: %(keydir)s/AuthKey.p8
    key_id: ABC123DEFG
    team_id: DEF123GHIJ
    host: 127.0.0.1
    port: %(apns)d
    ca_file: %(keys)s/ca.pem
  - name: ios-cert
    mode: dev
    certificate: %(keys)s/client.pem
    certificate_key: %(keys)s/client.key
    host: 127.0.0.1
    port: %(apns)d
    ca_file: %(keys)s/ca.pem
fcm:
  - name: android
    service_account: %(keydir)s/service-account.json
    base_url: https://127.0.0.1:%(fcm)d
    ca_file: %(keys)s/ca.pem
%(extra)s""" % {"admin": admin, "apns": apns_port, "fcm": fcm_port, "keydir": keydir,
                "keys": KEYS, "extra": extra}


class PlatypusProviders(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.apns = Mock("apns_mock.py")
        cls.fcm = Mock("fcm_mock.py")

    @classmethod
    def tearDownClass(cls):
        assert cls.apns.stop() == 0
        assert cls.fcm.stop() == 0

    def setUp(self):
        self.tmp = suite.tempdir()
        self.dir = self.tmp.name
        shutil.copy(os.path.join(KEYS, "AuthKey_ABC123DEFG.p8"), os.path.join(self.dir, "AuthKey.p8"))
        shutil.copy(os.path.join(KEYS, "service-account.json"),
                    os.path.join(self.dir, "service-account.json"))
        self.admin = suite.free_port()

    def tearDown(self):
        self.tmp.cleanup()

    def start(self, extra=""):
        d = suite.Daemon("platypus", config(self.admin, self.apns.port, self.fcm.port, self.dir,
                                            extra), self.dir)
        self.addCleanup(d.close)
        suite.wait_http(self.admin, daemon=d)
        return d

    def test_health_metrics_reload_and_drain(self):
        d = self.start()
        status, h = suite.health(self.admin)
        self.assertEqual(status, 200)
        self.assertEqual(h["apps"]["ios"], {"service": "apns", "connections": 0, "usable": 0,
                                            "pending": 0, "credentials": "ok"})
        self.assertEqual(h["apps"]["ios-cert"]["service"], "apns")
        self.assertEqual(h["apps"]["android"], {"service": "fcm", "pending": 0,
                                                "credentials": "ok"})
        _, _, text = suite.http_get(self.admin, "/metrics")
        self.assertEqual(suite.metric(text, "platypus_queue_depth"), 0)
        self.assertEqual(suite.metric(text, "platypus_notifications_total",
                                      {"service": "apns", "app": "ios", "outcome": "delivered"}), 0)
        self.assertEqual(suite.metric(text, "platypus_apns_connections", {"app": "ios"}), 0)

        # A new key and a new service account: taken on SIGHUP.
        shutil.copy(os.path.join(KEYS, "AuthKey_WRONG.p8"), os.path.join(self.dir, "AuthKey.p8"))
        d.signal(signal.SIGHUP)
        self._wait_log(d, "reload done")
        self.assertNotIn("old key stays", d.output())
        # A broken key: refused, the old one stays, the daemon keeps running.
        with open(os.path.join(self.dir, "AuthKey.p8"), "w") as f:
            f.write("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
        d.signal(signal.SIGHUP)
        self._wait_log(d, "the old key stays")
        self.assertEqual(suite.health(self.admin)[0], 200)

        self.assertEqual(d.stop(), 0)
        out = d.output()
        self.assertIn("every notification has its outcome", out)
        suite.assert_clean(self, out)

    def _wait_log(self, d, text, timeout=10):
        deadline = time.monotonic() + timeout
        while text not in d.output():
            if time.monotonic() > deadline:
                self.fail("no %r in:\n%s" % (text, d.output()))
            time.sleep(0.05)

    def check_config(self, extra_apps):
        path = os.path.join(self.dir, "check.yaml")
        with open(path, "w") as f:
            f.write("admin:\n  listen: 127.0.0.1:%d\n%s" % (self.admin, extra_apps))
        return suite.run([os.path.join(suite.BIN, "platypus"), "-c", path, "--check-config"])

    def test_config_errors_are_precise(self):
        r = self.check_config("""apns:
  - name: both
    topic: com.example.app
    key: %s/AuthKey.p8
    key_id: ABC123DEFG
    team_id: DEF123GHIJ
    certificate: %s/client.pem
  - name: noid
    topic: com.example.app
    key: %s/AuthKey.p8
    key_id: short
    team_id: DEF123GHIJ
fcm:
  - name: both
    service_account: %s/service-account.json
    base_url: http://insecure
""" % (self.dir, KEYS, self.dir, self.dir))
        self.assertNotEqual(r.returncode, 0)
        err = r.stderr + r.stdout
        self.assertIn("give either key", err)
        self.assertIn("key_id: token auth needs Apple's 10-character key id", err)
        self.assertIn("base_url: must start with https://", err)
        suite.assert_clean(self, err)
        # Names are unique across both services.
        r = self.check_config("""apns:
  - name: both
    certificate: %s/client.pem
fcm:
  - name: both
    service_account: %s/service-account.json
""" % (KEYS, self.dir))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('app name "both" is used twice', r.stderr + r.stdout)
        # Who may publish: the XMPP server's domains, by default the component's parent.
        secret = os.path.join(self.dir, "component.secret")
        with open(secret, "w") as f:
            f.write("s\n")
        r = self.check_config("component:\n  enabled: true\n  domain: push\n  secret: %s\n"
                              % secret)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("xmpp_domains: required when component.domain (push) has no parent "
                      "domain", r.stderr + r.stdout)
        r = self.check_config("component:\n  enabled: true\n  domain: push\n  secret: %s\n"
                              "  xmpp_domains: [chat.example.org, alice@example.org]\n" % secret)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('"alice@example.org" is not a domain', r.stderr + r.stdout)
        self.assertNotIn("chat.example.org\" is not", r.stderr + r.stdout)
        r = self.check_config("component:\n  enabled: true\n  domain: push\n  secret: %s\n"
                              "  xmpp_domains: [chat.example.org]\n" % secret)
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)

    def test_bad_key_fails_start_cleanly(self):
        with open(os.path.join(self.dir, "AuthKey.p8"), "w") as f:
            f.write("garbage\n")
        d = suite.Daemon("platypus", config(self.admin, self.apns.port, self.fcm.port, self.dir),
                         self.dir)
        self.addCleanup(d.close)
        self.assertEqual(d.proc.wait(timeout=20), 1)
        out = d.output()
        self.assertIn("AuthKey.p8", out)
        suite.assert_clean(self, out)


if __name__ == "__main__":
    unittest.main()
