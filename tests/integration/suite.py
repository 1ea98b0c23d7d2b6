"""suite.py - helpers for the black-box tests: start a real daemon with a generated configuration,
talk to its admin port, listen on a systemd notification socket, stop it, and fail on any
sanitizer report in its output.

Only the Python standard library is used (run with /usr/bin/python3)."""

import http.client
import json
import os
import signal
import socket
import subprocess
import tempfile
import time

TOP = os.environ.get("SUITE_TOP") or os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
BIN = os.environ.get("SUITE_BIN") or os.path.join(TOP, "build", "bin")
DAEMONS = ("xmpp-core", "platypus", "icicle")
TLS_CONTEXT = {"xmpp-core": "c2s", "platypus": "rest", "icicle": "turns"}
# A handle a daemon leaves open at exit is reported by the framework like a sanitizer would.
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "WARNING: AddressSanitizer", "left open at exit")


# Ports this process handed out already. The kernel may give the same free port to two
# bind(0) calls in a row; a daemon configured with it twice would fail to start.
_GIVEN_PORTS = set()


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now, never the same one twice."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _GIVEN_PORTS:
            _GIVEN_PORTS.add(port)
            return port


def make_cert(directory, days=30, name="tls"):
    """A self-signed EC certificate and key for localhost; returns (cert, key) paths."""
    cert = os.path.join(directory, name + ".crt")
    key = os.path.join(directory, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", str(days), "-subj",
                    "/CN=localhost", "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    return cert, key


def cert_not_after(cert):
    """notAfter of a PEM certificate as Unix time."""
    out = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-in", cert],
                         check=True, capture_output=True, text=True).stdout.strip()
    stamp = out.split("=", 1)[1]
    return int(time.mktime(time.strptime(stamp, "%b %d %H:%M:%S %Y %Z")) - time.timezone)


def run(args, env=None, timeout=30):
    """Run a command to completion; returns CompletedProcess with text output."""
    e = dict(os.environ)
    if env:
        e.update(env)
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=e)


def terminate(proc, timeout=10):
    """SIGTERM to proc (a Popen) if it still runs, SIGKILL after timeout seconds; reaped."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def assert_clean(testcase, text):
    for mark in SANITIZER_MARKS:
        testcase.assertNotIn(mark, text, "sanitizer report in daemon output:\n" + text)


class Notify:
    """A systemd notification socket (what NOTIFY_SOCKET points to)."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []

    def wait_for(self, text, timeout=10):
        """Wait until a datagram containing the line `text` arrives; returns all lines so far."""
        deadline = time.monotonic() + timeout
        while True:
            for m in self.messages:
                if text in m.split("\n"):
                    return self.messages
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %r from the daemon within %ss; got %r"
                                     % (text, timeout, self.messages))
            self.sock.settimeout(left)
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except socket.timeout:
                pass

    def close(self):
        self.sock.close()


class Daemon:
    """One daemon process started from a YAML text written to a temporary directory."""

    def __init__(self, name, config_text, workdir, env=None, notify=None):
        self.name = name
        self.workdir = workdir
        self.config = os.path.join(workdir, name + ".yaml")
        with open(self.config, "w") as f:
            f.write(config_text)
        self.log_path = os.path.join(workdir, name + ".log")
        e = dict(os.environ)
        e.pop("NOTIFY_SOCKET", None)
        e.pop("JOURNAL_STREAM", None)
        if notify:
            e["NOTIFY_SOCKET"] = notify.path
        if env:
            e.update(env)
        self.log = open(self.log_path, "w+")
        self.proc = subprocess.Popen([os.path.join(BIN, name), "-c", self.config],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=e)

    def output(self):
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=20):
        """SIGTERM and wait; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("%s did not stop within %ss:\n%s"
                                 % (self.name, timeout, self.output()))

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def http_get(port, path, method="GET", timeout=5):
    """(status, headers dict, body text) of one request to 127.0.0.1:port."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path)
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read().decode()
    finally:
        c.close()


def wait_http(port, path="/health", timeout=15, proc=None, daemon=None):
    """Poll until the admin port answers; returns (status, headers, body). With a Daemon, a
    start-up that fails says what the daemon printed."""
    if daemon is not None:
        proc = daemon.proc
    deadline = time.monotonic() + timeout
    while True:
        try:
            return http_get(port, path)
        except OSError:
            if proc is not None and proc.poll() is not None:
                raise AssertionError("daemon exited with %s before answering%s"
                                     % (proc.returncode,
                                        ":\n" + daemon.output() if daemon else ""))
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def metric(text, name, labels=None):
    """Value of one series in a Prometheus text exposition, or None."""
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        series, _, value = line.rpartition(" ")
        if "{" in series:
            n, _, rest = series.partition("{")
            pairs = {}
            for item in rest.rstrip("}").split(","):
                if item:
                    k, _, v = item.partition("=")
                    pairs[k] = v.strip('"')
        else:
            n, pairs = series, {}
        if n == name and all(pairs.get(k) == v for k, v in (labels or {}).items()):
            return float(value)
    return None


def health(port):
    status, headers, body = http_get(port, "/health")
    return status, json.loads(body)


def tempdir():
    return tempfile.TemporaryDirectory(prefix="suite-test-")
