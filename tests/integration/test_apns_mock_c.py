"""test_apns_mock_c.py - smoke test of the benchmark's C mock APNs (tools/apns-mock.c): it
answers a valid request 200 with an apns-id, refuses a bad path, an oversized payload and a badly
signed provider token with Apple's statuses and reasons, raises the stream limit after the first
success, logs each request's arrival time, device token and status with --arrivals (what the
push benchmark correlates), and exits 0 on SIGTERM with its counters. The strict checks are the Python mock's job
(test_mock_apns.py); this only guards the benchmark against a mock that accepts anything."""

import os
import select
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(TOP, "tests", "mock"))
from h2client import H2Client, es256_jwt, load_key  # noqa: E402

KEYS = os.path.join(TOP, "tests", "mock", "keys")
BIN = os.environ.get("SUITE_BIN", os.path.join(TOP, "build", "bin"))
KID = "ABC123DEFG"
TEAM = "DEF123GHIJ"
PATH = "/3/device/" + "a1b2c3d4" * 8
ALERT = b'{"aps":{"alert":{"title":"Hi","body":"there"}}}'


class CMockAPNsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        exe = os.path.join(BIN, "apns-mock")
        if not os.access(exe, os.X_OK):
            raise unittest.SkipTest("%s is not built" % exe)
        cls.tmp = tempfile.TemporaryDirectory()
        cls.arrivals = os.path.join(cls.tmp.name, "arrivals.log")
        cls.started_us = time.time_ns() // 1000
        cls.proc = subprocess.Popen(
            [exe, "--port", "0", "--threads", "2",
             "--cert", os.path.join(KEYS, "server.pem"), "--key", os.path.join(KEYS, "server.key"),
             "--public-key", os.path.join(KEYS, "AuthKey_ABC123DEFG.pub.pem"),
             "--arrivals", cls.arrivals],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = b""
        deadline = time.monotonic() + 10
        while not line.endswith(b"\n"):
            r, _, _ = select.select([cls.proc.stdout], [], [], max(deadline - time.monotonic(), 0))
            ch = os.read(cls.proc.stdout.fileno(), 1) if r else b""
            if not ch:
                cls.proc.kill()
                raise AssertionError("apns-mock did not start: %s" % cls.proc.stderr.read())
            line += ch
        words = line.decode().split()
        assert words[0] == "listening", line
        cls.port = int(words[1].rsplit(":", 1)[1])
        cls.key = load_key(os.path.join(KEYS, "AuthKey_ABC123DEFG.p8"))
        cls.wrong_key = load_key(os.path.join(KEYS, "AuthKey_WRONG.p8"))
        cls.token = es256_jwt(cls.key, KID, TEAM)

    @classmethod
    def tearDownClass(cls):
        if cls.proc.poll() is None:
            cls.proc.kill()
            cls.proc.wait()
        cls.tmp.cleanup()

    def client(self):
        c = H2Client(self.port, os.path.join(KEYS, "ca.pem"))
        self.addCleanup(c.close)
        self.assertEqual(c.alpn, "h2")
        return c

    def headers(self, token=None, push_type="alert"):
        return [("authorization", "bearer " + (token or self.token)),
                ("apns-topic", "com.example.app"), ("apns-push-type", push_type)]

    def test_1_ok_then_streams_raised(self):
        c = self.client()
        for _ in range(3):
            r = c.request(PATH, self.headers(), ALERT)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(len(r.header("apns-id") or ""), 36)
            self.assertEqual(bytes(r.body), b"")
        c.wait(lambda: c.max_streams() == 1000)
        mine = "0A1B2C3D-4E5F-4071-8293-A4B5C6D7E8F9"
        r = c.request(PATH, self.headers() + [("apns-id", mine)], ALERT)
        self.assertEqual((r.status, r.header("apns-id")), (200, mine))

    def test_2_bad_path(self):
        c = self.client()
        r = c.request("/3/devices/" + "ab" * 32, self.headers(), ALERT)
        self.assertEqual((r.status, r.json()), (404, {"reason": "BadPath"}))
        r = c.request("/3/device/xyz", self.headers(), ALERT)
        self.assertEqual((r.status, r.json()), (400, {"reason": "BadDeviceToken"}))

    def test_3_payload_too_large(self):
        c = self.client()
        big = b'{"aps":{},"x":"' + b"a" * 4100 + b'"}'
        r = c.request(PATH, self.headers(), big)
        self.assertEqual((r.status, r.json()), (413, {"reason": "PayloadTooLarge"}))
        # VoIP allows 5120 bytes
        r = c.request(PATH, self.headers(push_type="voip"), big)
        self.assertEqual(r.status, 200, r)

    def test_4_bad_token(self):
        c = self.client()
        bad = es256_jwt(self.wrong_key, KID, TEAM)
        r = c.request(PATH, self.headers(token=bad), ALERT)
        self.assertEqual((r.status, r.json()), (403, {"reason": "InvalidProviderToken"}))
        r = c.request(PATH, self.headers(token=es256_jwt(self.key, KID, "OTHERTEAM1")), ALERT)
        self.assertEqual((r.status, r.json()), (403, {"reason": "InvalidProviderToken"}))
        r = c.request(PATH, [("apns-topic", "com.example.app"), ("apns-push-type", "alert")],
                      ALERT)
        self.assertEqual((r.status, r.json()), (403, {"reason": "MissingProviderToken"}))

    def test_5_sigterm(self):
        self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=10)
        self.assertEqual(self.proc.returncode, 0, err)
        self.assertIn(b"requests ", out)
        requests = int(out.split(b"requests ", 1)[1].split()[0])
        ended_us = time.time_ns() // 1000
        with open(self.arrivals) as f:
            lines = [line.split() for line in f]
        self.assertEqual(len(lines), requests, lines)
        for when, _, _ in lines:
            self.assertTrue(self.started_us <= int(when) <= ended_us, lines)
        got = [(dev, int(status)) for _, dev, status in lines]
        token = PATH.rsplit("/", 1)[1]
        self.assertEqual(got.count((token, 200)), 5, got)  # test_1: 4, test_3: the voip one
        self.assertIn(("-", 404), got)  # test_2: no device path
        self.assertIn(("-", 400), got)  # test_2: a malformed token
        self.assertIn((token, 413), got)
        self.assertEqual(got.count((token, 403)), 3, got)
        self.assertNotIn(b"ERROR: AddressSanitizer", err)
        self.assertNotIn(b"runtime error", err)


if __name__ == "__main__":
    unittest.main()
