"""Black-box tests of what every daemon does the same way: command line, configuration errors,
admin /health and /metrics, systemd readiness and watchdog, SIGHUP reload, SIGTERM stop, and
`make run`'s script starting the whole suite."""

import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import suite  # noqa: E402


def config(port, cert=None, key=None, extra=""):
    text = "log:\n  level: debug\nadmin:\n  listen: 127.0.0.1:%d\nshutdown_timeout: 5s\n" % port
    if cert:
        text += "tls:\n  certificate: %s\n  key: %s\n" % (cert, key)
    return text + extra


def own_ports(name, tmp):
    """What a daemon needs besides the admin port to start beside others: its own ports and
    state directory."""
    if name != "xmpp-core":
        return ""
    return ("storage:\n  path: %s/xmpp-core.db\nc2s:\n  listen: [\"127.0.0.1:%d\"]\n"
            "  tls_listen: [\"127.0.0.1:%d\"]\ncomponents:\n  listen: [\"127.0.0.1:%d\"]\n"
            "websocket:\n  listen: [\"127.0.0.1:%d\"]\n"
            % (tmp, suite.free_port(), suite.free_port(), suite.free_port(), suite.free_port()))


class CommandLine(unittest.TestCase):
    def test_version_and_help(self):
        for d in suite.DAEMONS:
            r = suite.run([os.path.join(suite.BIN, d), "--version"])
            self.assertEqual(r.returncode, 0)
            self.assertRegex(r.stdout, r"^%s \d+\.\d+\.\d+\n$" % d)
            r = suite.run([os.path.join(suite.BIN, d), "--help"])
            self.assertEqual(r.returncode, 0)
            for opt in ("--config", "--check-config", "--version", "SIGHUP", "SIGTERM"):
                self.assertIn(opt, r.stdout)

    def test_bad_usage_exits_2(self):
        for args in (["--no-such-option"], ["stray-argument"], ["-c"]):
            r = suite.run([os.path.join(suite.BIN, "icicle")] + args)
            self.assertEqual(r.returncode, 2, args)
            self.assertTrue(r.stderr.strip(), args)

    def test_config_reference_lists_every_key(self):
        r = suite.run([os.path.join(suite.BIN, "icicle"), "--config-reference"])
        self.assertEqual(r.returncode, 0)
        for key in ("log.level", "log.format", "admin.listen", "admin.enabled",
                    "shutdown_timeout", "tls.certificate", "tls.key", "tls.chain"):
            self.assertIn("| `" + key + "` |", r.stdout)

    def test_embedded_defaults_are_valid(self):
        for d in suite.DAEMONS:
            r = suite.run([os.path.join(suite.BIN, d), "--check-config"])
            self.assertEqual(r.returncode, 0, r.stderr)
            r = suite.run([os.path.join(suite.BIN, d), "--print-config"])
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("listen:", r.stdout)


class ConfigErrors(unittest.TestCase):
    """Every error is FILE:LINE: key: what is wrong, exit 2, never a crash."""

    def check(self, text, expected, daemon="icicle", env=None):
        with suite.tempdir() as tmp:
            path = os.path.join(tmp, "c.yaml")
            with open(path, "w") as f:
                f.write(text)
            r = suite.run([os.path.join(suite.BIN, daemon), "-c", path, "--check-config"],
                          env=env)
            suite.assert_clean(self, r.stderr)
            self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
            for e in expected:
                self.assertIn(e.replace("FILE", path), r.stderr)
            return r.stderr

    def test_unknown_key(self):
        self.check("log:\n  level: info\n  colour: red\n", ["FILE:3: log.colour: unknown key"])

    def test_contact_address_not_a_uri(self):
        self.check("contact:\n  abuse: [\"abuse@example.org\"]\n  support: [\"https://x\"]\n",
                   ["FILE:2: contact.abuse: \"abuse@example.org\" is not a URI"],
                   daemon="xmpp-core")

    def test_wrong_type(self):
        self.check("shutdown_timeout: [1, 2]\n", ["FILE:1: shutdown_timeout:"])
        self.check("log:\n  level: loud\n", ["FILE:2: log.level:", "error", "debug"])

    def test_every_error_reported_at_once(self):
        err = self.check("log:\n  level: loud\nadmin:\n  listen: nowhere\nbogus: 1\n",
                         ["FILE:2: log.level", "FILE:4: admin.listen", "FILE:5: bogus"])
        self.assertEqual(len(err.strip().splitlines()), 3, err)

    def test_missing_required_value(self):
        with suite.tempdir() as tmp:
            cert, _ = suite.make_cert(tmp)
            self.check("tls:\n  certificate: %s\n" % cert, ["FILE:", "tls.key: required"])

    def test_unreadable_files(self):
        r = suite.run([os.path.join(suite.BIN, "platypus"), "-c", "/nonexistent/p.yaml",
                       "--check-config"])
        self.assertEqual(r.returncode, 2)
        self.assertIn("/nonexistent/p.yaml", r.stderr)
        self.check("tls:\n  certificate: /nonexistent.pem\n  key: /nonexistent.key\n",
                   ["FILE:2: tls.certificate:", "/nonexistent.pem"])

    def test_numeric_listen_address_required(self):
        self.check("admin:\n  listen: localhost:9641\n", ["FILE:2: admin.listen:"])

    def test_unset_environment_variable(self):
        for d in suite.DAEMONS:
            path = os.path.join(suite.TOP, "config", d + ".yaml")
            env = dict(os.environ)
            env.pop("CREDENTIALS_DIRECTORY", None)
            r = subprocess.run([os.path.join(suite.BIN, d), "-c", path, "--check-config"],
                               capture_output=True, text=True, env=env, timeout=30)
            self.assertEqual(r.returncode, 2)
            self.assertIn("tls.certificate: environment variable CREDENTIALS_DIRECTORY is not set",
                          r.stderr)

    def test_example_configs_are_valid(self):
        with suite.tempdir() as tmp:
            suite.make_cert(tmp)
            for secret in ("turn-secret", "api.token", "push-component.secret"):
                with open(os.path.join(tmp, secret), "w") as f:
                    f.write("not-a-real-secret\n")
            for d in suite.DAEMONS:
                path = os.path.join(suite.TOP, "config", d + ".yaml")
                r = suite.run([os.path.join(suite.BIN, d), "-c", path, "--check-config"],
                              env={"CREDENTIALS_DIRECTORY": tmp, "STATE_DIRECTORY": tmp})
                self.assertEqual(r.returncode, 0, r.stderr)


class Lifecycle(unittest.TestCase):
    """Start, serve the admin port, reload on SIGHUP, stop on SIGTERM, talking to systemd."""

    def lifecycle(self, name):
        with suite.tempdir() as tmp:
            cert, key = suite.make_cert(tmp, days=30)
            port = suite.free_port()
            notify = suite.Notify(tmp)
            d = suite.Daemon(name, config(port, cert, key, own_ports(name, tmp)), tmp,
                             notify=notify)
            try:
                notify.wait_for("READY=1")
                status, h = suite.health(port)
                self.assertEqual(status, 200)
                self.assertEqual(h["status"], "ok")
                self.assertEqual(h["daemon"], name)

                status, headers, text = suite.http_get(port, "/metrics")
                self.assertEqual(status, 200)
                self.assertIn("text/plain", headers["Content-Type"])
                self.assertEqual(suite.metric(text, "suite_build_info", {"daemon": name}), 1)
                self.assertGreater(suite.metric(text, "process_resident_memory_bytes"), 1e6)
                ctx = {"context": suite.TLS_CONTEXT[name]}
                first = suite.cert_not_after(cert)
                self.assertEqual(suite.metric(text, "tls_certificate_expiry_timestamp_seconds",
                                              ctx), first)

                # SIGHUP with a new certificate: the metric follows.
                os.unlink(cert)
                os.unlink(key)
                suite.make_cert(tmp, days=90)
                second = suite.cert_not_after(cert)
                self.assertNotEqual(first, second)
                notify.messages.clear()
                d.signal(signal.SIGHUP)
                notify.wait_for("RELOADING=1")
                notify.wait_for("READY=1")
                text = suite.http_get(port, "/metrics")[2]
                self.assertEqual(suite.metric(text, "tls_certificate_expiry_timestamp_seconds",
                                              ctx), second)
                self.assertEqual(suite.metric(text, "daemon_reloads_total", {"result": "ok"}), 1)

                # SIGHUP with a key that does not match: refused, the old certificate stays.
                _, other_key = suite.make_cert(tmp, name="other")
                shutil.copy(other_key, key)
                notify.messages.clear()
                d.signal(signal.SIGHUP)
                notify.wait_for("READY=1")
                text = suite.http_get(port, "/metrics")[2]
                self.assertEqual(suite.metric(text, "daemon_reloads_total",
                                              {"result": "failed"}), 1)
                self.assertEqual(suite.metric(text, "tls_certificate_expiry_timestamp_seconds",
                                              ctx), second)

                # SIGHUP with a broken configuration file: refused, still serving.
                with open(d.config, "a") as f:
                    f.write("nonsense: 1\n")
                notify.messages.clear()
                d.signal(signal.SIGHUP)
                notify.wait_for("READY=1")
                text = suite.http_get(port, "/metrics")[2]
                self.assertEqual(suite.metric(text, "daemon_reloads_total",
                                              {"result": "failed"}), 2)
                self.assertEqual(suite.health(port)[0], 200)

                notify.messages.clear()
                self.assertEqual(d.stop(), 0)
                notify.wait_for("STOPPING=1")
                out = d.output()
                suite.assert_clean(self, out)
                self.assertIn("nonsense: unknown key", out)
                self.assertIn("keeping the previous certificate", out)
                self.assertIn("stopped", out.splitlines()[-1])
            finally:
                d.close()
                notify.close()

    def test_icicle(self):
        self.lifecycle("icicle")

    def test_platypus(self):
        self.lifecycle("platypus")

    def test_xmpp_core(self):
        self.lifecycle("xmpp-core")

    def test_sigint_stops_too(self):
        with suite.tempdir() as tmp:
            port = suite.free_port()
            d = suite.Daemon("icicle", config(port), tmp)
            try:
                suite.wait_http(port, daemon=d)
                d.signal(signal.SIGINT)
                self.assertEqual(d.proc.wait(timeout=20), 0)
                suite.assert_clean(self, d.output())
            finally:
                d.close()

    def test_watchdog_pings(self):
        with suite.tempdir() as tmp:
            port = suite.free_port()
            notify = suite.Notify(tmp)
            d = suite.Daemon("platypus", config(port), tmp, notify=notify,
                             env={"WATCHDOG_USEC": "300000"})
            try:
                notify.wait_for("READY=1")
                notify.messages.clear()
                notify.wait_for("WATCHDOG=1", timeout=2)
                notify.messages.clear()
                notify.wait_for("WATCHDOG=1", timeout=2)
                self.assertEqual(d.stop(), 0)
            finally:
                d.close()
                notify.close()

    def test_admin_port_in_use(self):
        with suite.tempdir() as tmp, socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            d = suite.Daemon("xmpp-core", config(port), tmp)
            try:
                self.assertEqual(d.proc.wait(timeout=20), 1)
                out = d.output()
                suite.assert_clean(self, out)
                self.assertIn("admin.listen 127.0.0.1:%d" % port, out)
                self.assertIn("address already in use", out)
            finally:
                d.close()

    def test_admin_disabled(self):
        with suite.tempdir() as tmp:
            port = suite.free_port()
            notify = suite.Notify(tmp)
            d = suite.Daemon("icicle", config(port).replace("admin:\n", "admin:\n  enabled: false\n"),
                             tmp, notify=notify)
            try:
                notify.wait_for("READY=1")
                with self.assertRaises(OSError):
                    suite.http_get(port, "/health")
                self.assertEqual(d.stop(), 0)
            finally:
                d.close()
                notify.close()

    def test_json_logs(self):
        with suite.tempdir() as tmp:
            port = suite.free_port()
            text = config(port).replace("level: debug", "level: info\n  format: json")
            d = suite.Daemon("platypus", text, tmp)
            try:
                suite.wait_http(port, daemon=d)
                self.assertEqual(d.stop(), 0)
                lines = d.output().strip().splitlines()
                self.assertGreater(len(lines), 2)
                for line in lines:
                    rec = json.loads(line)
                    self.assertEqual(rec["daemon"], "platypus")
                    self.assertIn(rec["level"], ("error", "warn", "info", "debug"))
                    self.assertTrue(rec["msg"])
            finally:
                d.close()


class MakeRun(unittest.TestCase):
    """scripts/run-suite.sh (what `make run` starts): all three up, Ctrl-C stops them all."""

    def test_suite_starts_and_stops(self):
        ports = {"xmpp-core": 5280, "platypus": 9642, "icicle": 9641}
        # every TCP port of the example configurations: one in use makes a daemon exit
        for p in list(ports.values()) + [3478, 5222, 5223, 5281, 5347, 5349, 5443, 8443]:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", p)) == 0:
                    self.skipTest("port %d is in use on this machine" % p)
        with suite.tempdir() as tmp:
            env = dict(os.environ, SUITE_RUN_DIR=tmp)
            proc = subprocess.Popen([os.path.join(suite.TOP, "scripts", "run-suite.sh")],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    env=env, start_new_session=True)
            try:
                for name, port in ports.items():
                    status, _, body = suite.wait_http(port, proc=proc, timeout=30)
                    self.assertEqual(status, 200)
                    self.assertEqual(json.loads(body)["daemon"], name)
                self.assertTrue(os.path.exists(os.path.join(tmp, "credentials", "tls.key")))
                # the demo accounts: made, written down, and known to xmpp-core
                accounts = os.path.join(tmp, "credentials", "demo-accounts")
                deadline = time.monotonic() + 30
                while not os.path.exists(accounts) and time.monotonic() < deadline:
                    time.sleep(0.1)
                with open(accounts) as f:
                    jids = [line.split()[0] for line in f]
                self.assertEqual(jids, ["alice@localhost", "bob@localhost"])
                self.assertEqual(os.stat(accounts).st_mode & 0o077, 0)
                while True:
                    listed = suite.run([os.path.join(suite.BIN, "xmppctl"), "-t",
                                        os.path.join(tmp, "credentials", "api.token"),
                                        "accounts"], env={"XMPPCTL_URL": "http://127.0.0.1:5280"})
                    self.assertEqual(listed.returncode, 0, listed.stderr)
                    if listed.stdout.split() == jids or time.monotonic() > deadline:
                        break
                    time.sleep(0.1)
                self.assertEqual(listed.stdout.split(), jids)
                # the upload service's files listener (XEP-0363), over TLS with the run's
                # certificate
                ctx = ssl.create_default_context(
                    cafile=os.path.join(tmp, "credentials", "tls.crt"))
                c = http.client.HTTPSConnection("localhost", 5281, context=ctx, timeout=10)
                c.request("GET", "/upload/nothing-here/x")
                self.assertEqual(c.getresponse().status, 404)
                c.close()
                os.killpg(proc.pid, signal.SIGINT)
                out, _ = proc.communicate(timeout=30)
                self.assertEqual(proc.returncode, 0, out)
                suite.assert_clean(self, out)
                self.assertEqual(out.count("/daemon: stopped\n"), 3, out)
                for port in ports.values():
                    with socket.socket() as s:
                        self.assertNotEqual(s.connect_ex(("127.0.0.1", port)), 0)
            finally:
                if proc.poll() is None:
                    # the daemons run in sessions of their own: only the script can stop them
                    os.killpg(proc.pid, signal.SIGINT)
                    try:
                        proc.communicate(timeout=30)
                    except subprocess.TimeoutExpired:
                        os.killpg(proc.pid, signal.SIGKILL)
                        proc.wait()


if __name__ == "__main__":
    unittest.main()
