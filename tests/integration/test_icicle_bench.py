"""Black-box smoke test of the TURN load generator (build/bin/icicle-bench) against coturn's
turnserver: allocations with REST credentials, channels and Send indications to its own echo
peer, zero loss at a low rate; and its errors for a wrong secret, no server and bad usage.
Each run stops on its own; the whole file takes a few seconds."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import suite  # noqa: E402

TOOL = os.path.join(suite.BIN, "icicle-bench")
SECRET = "smoke-secret"


def free_udp_tcp_port():
    import socket
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket() as t:
                try:
                    t.bind(("127.0.0.1", port))
                    return port
                except OSError:
                    continue


@unittest.skipUnless(shutil.which("turnserver"), "coturn's turnserver is not installed")
class IcicleBenchAgainstCoturn(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.tmp.name
        cls.port = free_udp_tcp_port()
        cls.secret_file = os.path.join(d, "secret")
        with open(cls.secret_file, "w") as f:
            f.write(SECRET + "\n")
        cls.log = open(os.path.join(d, "turnserver.out"), "w")
        cls.server = subprocess.Popen(
            ["turnserver", "-n", "--listening-ip", "127.0.0.1", "--listening-port",
             str(cls.port), "--relay-ip", "127.0.0.1", "--min-port", "10000", "--max-port",
             "29999", "--use-auth-secret", "--static-auth-secret=" + SECRET, "--realm",
             "smoke.test", "--no-tls", "--no-dtls", "--allow-loopback-peers", "--no-cli",
             "--relay-threads", "1", "--db", os.path.join(d, "turndb"), "--log-file",
             os.path.join(d, "turnserver.log"), "--no-stdout-log", "--pidfile",
             os.path.join(d, "turnserver.pid")],
            stdout=cls.log, stderr=subprocess.STDOUT)
        cls.addr = "127.0.0.1:%d" % cls.port
        deadline = time.monotonic() + 10
        while True:
            r = cls.bench("--allocations", "1", "--rate", "0")
            if r.returncode == 0:
                break
            if time.monotonic() > deadline or cls.server.poll() is not None:
                cls.tearDownClass()
                raise AssertionError("turnserver did not answer an Allocate: " + r.stderr)
            time.sleep(0.2)

    @classmethod
    def tearDownClass(cls):
        if cls.server.poll() is None:
            cls.server.send_signal(signal.SIGTERM)
            try:
                cls.server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                cls.server.kill()
                cls.server.wait()
        cls.log.close()
        cls.tmp.cleanup()

    @classmethod
    def bench(cls, *args, secret_file=None, server=None):
        return suite.run([TOOL, "--server", server or cls.addr, "--secret-file",
                          secret_file or cls.secret_file] + list(args), timeout=25)

    def check_report(self, r, allocations):
        suite.assert_clean(self, r.stderr)
        self.assertEqual(r.returncode, 0, r.stderr)
        rep = json.loads(r.stdout)
        self.assertEqual(rep["allocations"], allocations)
        self.assertEqual(rep["ready"], allocations)
        self.assertGreater(rep["allocations_per_s"], 0)
        self.assertGreater(rep["sent"], 0)
        self.assertGreater(rep["delivered"], 0)
        self.assertEqual(rep["delivered"], rep["sent"], rep)
        self.assertEqual(rep["loss_pct"], 0)
        self.assertEqual(rep["bad_payloads"], 0)
        self.assertGreater(rep["rtt_us"]["p50"], 0)
        self.assertLessEqual(rep["rtt_us"]["p50"], rep["rtt_us"]["p99"])
        return rep

    def test_channels_zero_loss(self):
        r = self.bench("--allocations", "10", "--rate", "500", "--duration", "2", "--json")
        rep = self.check_report(r, 10)
        self.assertEqual(rep["mode"], "channels")
        self.assertGreater(rep["sent"], 800)

    def test_send_indications_two_threads(self):
        r = self.bench("--allocations", "10", "--threads", "2", "--rate", "300",
                       "--duration", "1", "--size", "100", "--send-indications", "--json")
        rep = self.check_report(r, 10)
        self.assertEqual(rep["mode"], "send-indications")
        self.assertEqual(rep["threads"], 2)

    def test_human_report(self):
        r = self.bench("--allocations", "2", "--rate", "100", "--duration", "1")
        self.assertEqual(r.returncode, 0, r.stderr)
        for word in ("allocations/s", "delivered", "loss", "p50", "p99"):
            self.assertIn(word, r.stdout)

    def test_wrong_secret_is_explained(self):
        bad = os.path.join(self.tmp.name, "bad-secret")
        with open(bad, "w") as f:
            f.write("not-the-secret\n")
        r = self.bench("--allocations", "3", "--rate", "0", secret_file=bad)
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, r"icicle-bench: allocate \d+/3 failed: 401 .*check the secret")


class IcicleBenchUsage(unittest.TestCase):
    def test_help_and_usage_errors(self):
        r = suite.run([TOOL, "--help"])
        self.assertEqual(r.returncode, 0)
        for opt in ("--server", "--secret-file", "--allocations", "--rate", "--size",
                    "--duration", "--threads", "--peer", "--channels", "--send-indications",
                    "--json"):
            self.assertIn(opt, r.stdout)
        for args in ([], ["--server", "nonsense"], ["--server", "127.0.0.1:3478"],
                     ["--server", "127.0.0.1:3478", "--secret-file", "/nonexistent"],
                     ["--server", "127.0.0.1:3478", "--user", "u"],
                     ["--rate", "-5"], ["--no-such-option"]):
            r = suite.run([TOOL] + args)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn("icicle-bench", r.stderr, args)

    def test_no_server(self):
        with tempfile.NamedTemporaryFile("w", suffix=".secret") as f:
            f.write("x\n")
            f.flush()
            port = free_udp_tcp_port()
            r = suite.run([TOOL, "--server", "127.0.0.1:%d" % port, "--secret-file", f.name,
                           "--allocations", "2", "--rate", "0"], timeout=25)
        self.assertEqual(r.returncode, 1)
        self.assertIn("failed", r.stderr)


if __name__ == "__main__":
    unittest.main()
