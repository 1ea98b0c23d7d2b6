"""scripts/push-demo.py, the newcomer's way to see a push appear: the first demo account enables
push towards platypus and logs out, the second writes to it, and the JSON line platypus's
development log provider writes is printed.

The script runs against a suite this test starts on free ports (xmpp-core, platypus attached as
its component with the log provider), and, when make run's fixed loopback ports are free,
against scripts/run-suite.sh itself with the built binaries: there the test runs the very
command `make run` prints."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import suite  # noqa: E402
import xmpp  # noqa: E402

DEMO = os.path.join(suite.TOP, "scripts", "push-demo.py")
RUN_SUITE = os.path.join(suite.TOP, "scripts", "run-suite.sh")
DEVICE = "feedface" * 8  # the token push-demo.py registers
# what make run listens on (config/*.yaml)
RUN_PORTS = (5222, 5223, 5443, 5347, 5280, 8443, 9642, 3478, 5349, 9641)


def push_lines(text):
    """The notifications push-demo.py printed, parsed."""
    return [json.loads(m) for m in re.findall(r"^   (\{.*\})$", text, re.M)]


def port_in_use(port):
    import socket
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class DemoAgainstATestSuite(unittest.TestCase):
    def setUp(self):
        self.tmpdir = suite.tempdir()
        self.tmp = self.tmpdir.name
        self.srv = xmpp.Server(self.tmp)
        self.pp = None
        self.addCleanup(self.cleanup)
        self.accounts = os.path.join(self.tmp, "demo-accounts")
        with open(self.accounts, "w") as f:
            for user in ("alice", "bob"):
                f.write("%s pw-of-%s\n" % (self.srv.register(user, "pw-of-" + user), user))
        self.push_log = os.path.join(self.tmp, "push.log")
        self.pp_admin = suite.free_port()
        self.pp = suite.Daemon("platypus", """log:
  level: debug
admin:
  listen: 127.0.0.1:%d
shutdown_timeout: 5s
production: false
rest:
  enabled: false
component:
  enabled: true
  server: 127.0.0.1:%d
  domain: push.localhost
  secret: %s/comp.secret
  xmpp_domains: [localhost]
  reconnect_min: 100ms
  reconnect_max: 500ms
log_apps:
  - name: dev-ios
    service: apns
    mode: prod
    file: %s
""" % (self.pp_admin, self.srv.comp, self.tmp, self.push_log), self.tmp)
        suite.wait_http(self.pp_admin, daemon=self.pp)
        deadline = time.monotonic() + 20
        while "push.localhost connected" not in self.srv.output():
            self.assertLess(time.monotonic(), deadline, self.srv.output())
            time.sleep(0.1)

    def cleanup(self):
        try:
            if self.pp:
                self.assertEqual(self.pp.stop(), 0, self.pp.output())
                suite.assert_clean(self, self.pp.output())
            self.assertEqual(self.srv.stop(), 0, self.srv.output())
            suite.assert_clean(self, self.srv.output())
        finally:
            if self.pp:
                self.pp.close()
            self.srv.close()
            self.tmpdir.cleanup()

    def demo(self, *extra):
        return suite.run(["/usr/bin/python3", DEMO, "--accounts", self.accounts,
                          "--cafile", self.srv.cert, "--push-log", self.push_log,
                          "--port", str(self.srv.c2s)] + list(extra), timeout=60)

    def test_the_push_appears(self):
        r = self.demo()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        got = push_lines(r.stdout)
        self.assertEqual(len(got), 1, r.stdout)
        # what was printed is what platypus wrote
        with open(self.push_log) as f:
            written = [json.loads(x) for x in f.read().splitlines()]
        self.assertEqual(got, written)
        n = got[0]
        self.assertEqual((n["app"], n["service"], n["token"], n["topic"]),
                         ("dev-ios", "apns", DEVICE, "com.example.app"))
        self.assertEqual(n["data"]["message-count"], "1")
        self.assertIn("<enable xmlns='urn:xmpp:push:0' jid='push.localhost'", r.stdout)
        self.assertEqual(self.srv.metric("xmpp_push_results_total", {"result": "ok"}), 1)
        # again at once: alice was back online in between, so bob's next message is a new
        # burst, pushed at once, and the count starts again
        r = self.demo()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + self.srv.output()[-5000:])
        self.assertEqual([x["data"]["message-count"] for x in push_lines(r.stdout)], ["1"])
        self.assertEqual(self.srv.metric("xmpp_push_results_total", {"result": "ok"}), 2)

    def test_no_push_is_a_failure(self):
        """Without platypus the push goes nowhere: the script says so and exits 1."""
        self.assertEqual(self.pp.stop(), 0, self.pp.output())
        suite.assert_clean(self, self.pp.output())
        self.pp.close()
        self.pp = None
        r = self.demo("--timeout", "3")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("no notification for the demo device", r.stderr)

    def test_without_accounts(self):
        r = suite.run(["/usr/bin/python3", DEMO, "--accounts",
                       os.path.join(self.tmp, "missing")], timeout=30)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("cannot read the demo accounts", r.stderr)


@unittest.skipIf(any(port_in_use(p) for p in RUN_PORTS),
                 "make run's loopback ports are in use (a suite runs already)")
class DemoAgainstMakeRun(unittest.TestCase):
    def test_the_printed_command_shows_a_push(self):
        with suite.tempdir() as tmp:
            run_dir = os.path.join(tmp, "run")
            out_path = os.path.join(tmp, "run-suite.out")
            env = dict(os.environ, SUITE_BIN=suite.BIN, SUITE_RUN_DIR=run_dir)
            env.pop("NOTIFY_SOCKET", None)
            with open(out_path, "w") as out:
                proc = subprocess.Popen(["sh", RUN_SUITE], stdout=out, stderr=subprocess.STDOUT,
                                        env=env, start_new_session=True)
            try:
                text = self.wait_for(proc, out_path, "run: press Ctrl-C to stop.")
                m = re.search(r"^run: to see a push appear, run in another terminal:  (.+)$",
                              text, re.M)
                self.assertTrue(m, text)
                command = m.group(1).split()
                self.assertEqual(command[:2], ["/usr/bin/python3", DEMO])
                r = suite.run(command, timeout=60)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr + self.tail(out_path))
                got = push_lines(r.stdout)
                self.assertEqual([(x["app"], x["token"]) for x in got], [("dev-ios", DEVICE)])
                self.assertIn(os.path.join(run_dir, "state", "push.log"), text)
            finally:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                try:
                    rc = proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    raise
            self.assertEqual(rc, 0, self.tail(out_path))
            with open(out_path) as f:
                suite.assert_clean(self, f.read())

    def wait_for(self, proc, path, line, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            with open(path) as f:
                text = f.read()
            if line in text:
                return text
            if proc.poll() is not None:
                raise AssertionError("run-suite.sh exited with %s:\n%s" % (proc.returncode,
                                                                           text[-6000:]))
            if time.monotonic() > deadline:
                raise AssertionError("no %r from run-suite.sh:\n%s" % (line, text[-6000:]))
            time.sleep(0.1)

    def tail(self, path):
        with open(path) as f:
            return "\n--- run-suite.sh:\n" + f.read()[-6000:]


if __name__ == "__main__":
    unittest.main()
