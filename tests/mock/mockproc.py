"""mockproc.py - start a mock (apns_mock.py or fcm_mock.py) as a subprocess on free ports, read
its "listening 127.0.0.1:PORT control PORT2" line, and stop it with SIGTERM. For the tests."""

import os
import select
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
KEYS = os.path.join(HERE, "keys")


def apns_app_yaml(port, topic, name="ios"):
    """One entry of platypus's `apns:` list: a production app with token auth (the test team
    key) whose provider is the mock listening on 127.0.0.1:port."""
    return """  - name: %s
    mode: prod
    topic: %s
    key: %s/AuthKey_ABC123DEFG.p8
    key_id: ABC123DEFG
    team_id: DEF123GHIJ
    host: 127.0.0.1
    port: %d
    ca_file: %s/ca.pem
""" % (name, topic, KEYS, port, KEYS)
PYTHON = "/usr/bin/python3"

sys.path.insert(0, HERE)
from h2client import Control  # noqa: E402


class Mock:
    """A running mock. `port` is its TLS port, `control` its Control client."""

    def __init__(self, script, *args, startup=10.0):
        self.proc = subprocess.Popen([PYTHON, os.path.join(HERE, script), "--port", "0"] + list(args),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + startup
        line = ""
        while not line.endswith("\n"):
            left = deadline - time.monotonic()
            r, _, _ = select.select([self.proc.stdout], [], [], max(left, 0))
            if not r:
                self.proc.kill()
                raise AssertionError("%s did not start" % script)
            ch = os.read(self.proc.stdout.fileno(), 1)  # unbuffered: select stays truthful
            if not ch:
                self.proc.wait()
                raise AssertionError("%s exited: %s" % (script, self.proc.stderr.read().decode()))
            line += ch.decode()
        words = line.split()
        if len(words) != 4 or words[0] != "listening" or words[2] != "control":
            self.proc.kill()
            raise AssertionError("unexpected first line %r" % line)
        self.host, port = words[1].rsplit(":", 1)
        self.port = int(port)
        self.control_port = int(words[3])
        self.control = Control(self.control_port)

    def stop(self, timeout=10):
        """SIGTERM; returns the exit status (raises if it does not exit in time)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("mock did not exit on SIGTERM")
        self.stderr = self.proc.stderr.read().decode(errors="replace")
        self.proc.stdout.close()
        self.proc.stderr.close()
        return rc
