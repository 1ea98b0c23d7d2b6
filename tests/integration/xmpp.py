"""xmpp.py - what the xmpp-core tests share: a server started with its own ports, accounts made
through its admin API, clients (slixmpp, the real thing) and a raw XML stream for the tests that
must send what no well-behaved client would.

Run with /usr/bin/python3 (Debian's slixmpp)."""

import asyncio
import http.client
import json
import logging
import os
import re
import socket
import ssl
import subprocess
import time
import unittest

import suite

logging.getLogger("slixmpp").setLevel(logging.CRITICAL)

import slixmpp  # noqa: E402
from slixmpp.exceptions import IqError  # noqa: E402

HOST = "localhost"
NS_STREAMS = "urn:ietf:params:xml:ns:xmpp-streams"


class Server:
    """xmpp-core on free ports in tmp, with a token for the admin API."""

    def __init__(self, tmp, extra="", workers=2, name="xmpp-core"):
        self.tmp = tmp
        self.cert, self.key = make_cert(tmp)
        self.admin = suite.free_port()
        self.c2s = suite.free_port()
        self.tls = suite.free_port()
        self.comp = suite.free_port()
        self.ws = suite.free_port()
        self.token_file = os.path.join(tmp, "api.token")
        with open(self.token_file, "w") as f:
            f.write("test-token-%d\n" % os.getpid())
        with open(os.path.join(tmp, "comp.secret"), "w") as f:
            f.write("component-secret\n")
        self.token = open(self.token_file).read().strip()
        text = (
            "log:\n  level: debug\n"
            "admin:\n  listen: 127.0.0.1:%d\n"
            "shutdown_timeout: 5s\n"
            "tls:\n  certificate: %s\n  key: %s\n"
            "hosts: [localhost, example.org]\n"
            "workers: %d\n"
            "storage:\n  path: %s/xmpp-core.db\n"
            "api_token: %s\n"
            "components:\n  listen: [\"127.0.0.1:%d\"]\n"
            "  list:\n    - domain: push.localhost\n      secret: %s/comp.secret\n"
            % (self.admin, self.cert, self.key, workers, tmp, self.token_file, self.comp, tmp))
        if "websocket:" not in extra:
            text += "websocket:\n  listen: [\"127.0.0.1:%d\"]\n" % self.ws
        text = merge_c2s(text, "c2s:\n  listen: [\"127.0.0.1:%d\"]\n  tls_listen: [\"127.0.0.1:%d\"]\n"
                         % (self.c2s, self.tls), extra)
        self.name, self.text = name, text
        self.daemon = suite.Daemon(name, text, tmp)
        suite.wait_http(self.admin, daemon=self.daemon)

    def restart(self):
        """Start the server again on the same configuration, ports and storage (after it
        stopped, or was killed); the earlier run's output is kept in <name>.log.<n>."""
        self.daemon.close()
        n = 1
        while os.path.exists("%s.%d" % (self.daemon.log_path, n)):
            n += 1
        os.rename(self.daemon.log_path, "%s.%d" % (self.daemon.log_path, n))
        self.daemon = suite.Daemon(self.name, self.text, self.tmp)
        suite.wait_http(self.admin, daemon=self.daemon)

    def api(self, method, path, body=None, token=None):
        """(status, parsed JSON or None) of one admin API request."""
        c = http.client.HTTPConnection("127.0.0.1", self.admin, timeout=30)
        headers = {"Authorization": "Bearer " + (token if token is not None else self.token)}
        data = None
        if body is not None:
            data = json.dumps(body) if not isinstance(body, (bytes, str)) else body
            headers["Content-Type"] = "application/json"
        try:
            c.request(method, "/api/v1/" + path, body=data, headers=headers)
            r = c.getresponse()
            text = r.read().decode()
            return r.status, (json.loads(text) if text else None)
        finally:
            c.close()

    def register(self, local, password="pw-" + "x" * 8, host=HOST):
        status, body = self.api("POST", "accounts", {"jid": "%s@%s" % (local, host),
                                                     "password": password})
        assert status == 201, (status, body)
        return "%s@%s" % (local, host)

    def metrics(self):
        return suite.http_get(self.admin, "/metrics")[2]

    def metric(self, name, labels=None):
        return suite.metric(self.metrics(), name, labels) or 0

    def stop(self):
        return self.daemon.stop()

    def close(self):
        self.daemon.close()

    def output(self):
        return self.daemon.output()


class ServerCase(unittest.TestCase):
    """A test with its own xmpp-core (configured with the class's extra YAML) in a fresh
    directory; the connections it keeps (keep()) are closed, and the server stopped and its
    output checked for sanitizer reports, when the test ends."""
    extra = ""

    def setUp(self):
        self.tmpdir = suite.tempdir()
        self.tmp = self.tmpdir.name
        self.srv = Server(self.tmp, self.extra)
        self.kept = []

    def keep(self, conn):
        """conn (anything with close()), closed at the end of the test; returned."""
        self.kept.append(conn)
        return conn

    def tearDown(self):
        try:
            for c in self.kept:
                c.close()
            if self.srv.daemon.proc.poll() is None:
                self.assertEqual(self.srv.stop(), 0, self.srv.output())
            suite.assert_clean(self, self.srv.output())
        finally:
            self.srv.close()
            self.tmpdir.cleanup()


def make_cert(directory):
    """A certificate for localhost with the subjectAltName clients check."""
    cert = os.path.join(directory, "xmpp.crt")
    key = os.path.join(directory, "xmpp.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "30", "-subj",
                    "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost,DNS:example.org", "-keyout", key,
                    "-out", cert], check=True, capture_output=True)
    return cert, key


def merge_c2s(text, c2s, extra):
    """The configuration with the c2s section, extra's c2s keys added to it; extra's other
    sections appended."""
    m = re.search(r"^c2s:\n((?:  .*\n)*)", extra, re.M)
    if m:
        c2s += m.group(1)
        extra = extra[:m.start()] + extra[m.end():]
    return text + c2s + extra


class Client(slixmpp.ClientXMPP):
    """A slixmpp client that records what it receives."""

    def __init__(self, jid, password, server, mech=None, cafile=None):
        cfg = {"feature_mechanisms": {"use_mech": mech}} if mech else {}
        super().__init__(jid, password, plugin_config=cfg)
        self.test_server = server
        self.ssl_context = ssl.create_default_context(cafile=cafile or server.cert)
        for p in ("xep_0030", "xep_0092", "xep_0199", "xep_0203", "xep_0191", "xep_0077"):
            self.register_plugin(p)
        self.messages = asyncio.Queue()
        self.presences = asyncio.Queue()
        self.started = asyncio.get_event_loop().create_future()
        self.ended = asyncio.get_event_loop().create_future()
        self.stream_errors = []
        self.add_event_handler("session_start", self._start)
        self.add_event_handler("failed_all_auth", self._failed)
        self.add_event_handler("message", lambda m: self.messages.put_nowait(m))
        self.add_event_handler("presence", lambda p: self.presences.put_nowait(p))
        self.add_event_handler("stream_error", lambda e: self.stream_errors.append(e))
        self.add_event_handler("disconnected", self._gone)
        self.add_event_handler("connection_failed", self._failed)

    def _start(self, _):
        if not self.started.done():
            self.started.set_result(True)

    def _failed(self, *_):
        if not self.started.done():
            self.started.set_result(False)

    def _gone(self, *_):
        if not self.started.done():
            self.started.set_result(False)
        if not self.ended.done():
            self.ended.set_result(True)

    async def next_message(self, timeout=5, body=True):
        while True:
            m = await asyncio.wait_for(self.messages.get(), timeout)
            if not body or m["body"]:
                return m

    async def next_presence(self, ptype=None, timeout=5):
        while True:
            p = await asyncio.wait_for(self.presences.get(), timeout)
            if ptype is None or p["type"] == ptype:
                return p


async def login(server, jid, password, mech=None, direct_tls=False, presence=True,
                roster=True):
    """A client with a session (and, by default, its roster and initial presence sent)."""
    c = Client(jid, password, server, mech=mech)
    if direct_tls:
        c.enable_direct_tls = True
        c.connect(("127.0.0.1", server.tls), use_ssl=True)
    else:
        c.connect(("127.0.0.1", server.c2s))
    ok = await asyncio.wait_for(c.started, 15)
    if not ok:
        raise AssertionError("%s could not log in" % jid)
    if roster:
        await c.get_roster()
    if presence:
        c.send_presence()
    return c


async def logout(*clients):
    for c in clients:
        if not c.ended.done():
            c.disconnect()
    for c in clients:
        try:
            await asyncio.wait_for(c.ended, 10)
        except asyncio.TimeoutError:
            pass


class Raw:
    """A bare XML stream over a socket, for what no well-behaved client sends."""

    def __init__(self, server, port=None, tls=False, rcvbuf=None):
        self.sock = socket.socket()
        if rcvbuf:
            # before connecting, so that the window the server sees stays small
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port or server.c2s))
        self.server = server
        if tls:
            self._wrap()
        self.buf = b""

    def _wrap(self):
        ctx = ssl.create_default_context(cafile=self.server.cert)
        self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")

    def send(self, data):
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def open(self, to=HOST):
        self.send("<?xml version='1.0'?><stream:stream to='%s' version='1.0' "
                  "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>" % to)
        return self.until("</stream:features>")

    def until(self, text, timeout=10):
        """Read until text has arrived (or the peer closed); returns everything read so far."""
        deadline = time.monotonic() + timeout
        while text not in self.buf.decode(errors="replace"):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %r within %ss; got %r" % (text, timeout, self.buf))
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, ssl.SSLError):
                chunk = b""
            if not chunk:
                break
            self.buf += chunk
        return self.buf.decode(errors="replace")

    def closed(self, timeout=10):
        """Whether the server closes the connection within timeout (reading what comes)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, ssl.SSLError, OSError):
                return True
            if not chunk:
                return True
            self.buf += chunk
        return False

    def starttls(self):
        self.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        self.until("<proceed")
        self.buf = b""
        self._wrap()

    def plain(self, user, password):
        import base64
        data = base64.b64encode(("\0%s\0%s" % (user, password)).encode()).decode()
        self.buf = b""
        self.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>"
                  % data)
        out = self.until("</", 10)
        return "<success" in out

    def scram(self, user, password, mech="SCRAM-SHA-256", cb_type=None, cb_data=None,
              gs2_flag=None):
        """A SCRAM exchange (RFC 5802) done by hand; with cb_type, the -PLUS form bound to
        cb_data (default: the right data for tls-server-end-point). Returns (ok, what the server
        said last)."""
        import base64
        import hashlib
        import hmac
        import os as _os
        h = hashlib.sha256 if "256" in mech else hashlib.sha1
        if cb_type and cb_data is None and cb_type == "tls-server-end-point":
            cb_data = hashlib.sha256(self.sock.getpeercert(binary_form=True)).digest()
        gs2 = ("p=%s,," % cb_type) if cb_type else (gs2_flag or "n,,")
        nonce = base64.b64encode(_os.urandom(18)).decode()
        first_bare = "n=%s,r=%s" % (user, nonce)
        self.buf = b""
        self.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='%s'>%s</auth>"
                  % (mech + ("-PLUS" if cb_type else ""),
                     base64.b64encode((gs2 + first_bare).encode()).decode()))
        out = self.until("</", 10)
        m = re.search(r"<challenge[^>]*>([^<]*)</challenge>", out)
        if not m:
            return False, out
        server_first = base64.b64decode(m.group(1)).decode()
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        salted = hashlib.pbkdf2_hmac(h().name, password.encode(), base64.b64decode(attrs["s"]),
                                     int(attrs["i"]))
        client_key = hmac.new(salted, b"Client Key", h).digest()
        stored = h(client_key).digest()
        cbind = base64.b64encode(gs2.encode() + (cb_data or b"")).decode()
        final_bare = "c=%s,r=%s" % (cbind, attrs["r"])
        auth_msg = "%s,%s,%s" % (first_bare, server_first, final_bare)
        sig = hmac.new(stored, auth_msg.encode(), h).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, sig))
        self.buf = b""
        self.send("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>%s</response>"
                  % base64.b64encode(("%s,p=%s" % (final_bare, base64.b64encode(proof)
                                                   .decode())).encode()).decode())
        out = self.until("</", 10)
        if "<success" not in out:
            return False, out
        # the server proves it knows the password too
        m = re.search(r"<success[^>]*>([^<]*)</success>", out)
        server_key = hmac.new(salted, b"Server Key", h).digest()
        want = "v=" + base64.b64encode(hmac.new(server_key, auth_msg.encode(), h).digest()
                                       ).decode()
        return base64.b64decode(m.group(1)).decode() == want, out

    def session(self, user, password, resource="raw"):
        """STARTTLS, PLAIN, bind: a bound session. Returns the full JID."""
        self.open()
        self.starttls()
        self.open()
        assert self.plain(user.split("@")[0], password), self.buf
        self.buf = b""
        self.open()
        self.buf = b""
        self.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                  "<resource>%s</resource></bind></iq>" % resource)
        out = self.until("</iq>")
        m = re.search(r"<jid>([^<]+)</jid>", out)
        assert m, out
        self.buf = b""
        return m.group(1)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


NS_SASL2 = "urn:xmpp:sasl:2"
NS_BIND2 = "urn:xmpp:bind:0"
NS_FAST = "urn:xmpp:fast:0"
NS_SM = "urn:xmpp:sm:3"


class Sasl2(Raw):
    """SASL2 (XEP-0388) with Bind 2 (XEP-0386) and FAST (XEP-0484), by hand: slixmpp 1.8.3 has
    none of them. Direct TLS by default; sent() counts the top-level elements a login sent, so
    a test can tell how many round trips it took."""

    def __init__(self, server, starttls=False, agent="7f6c3b8e-2d4a-4e8f-9c1b-5a6d7e8f9a0b"):
        super().__init__(server, port=None if starttls else server.tls, tls=not starttls)
        self.agent = agent
        self.sent_elements = 0
        if starttls:
            self.open()
            self.starttls()

    def element(self, xml):
        self.sent_elements += 1
        self.send(xml)

    def features(self):
        self.buf = b""
        out = self.open()
        self.buf = b""
        return out

    def endpoint(self):
        """tls-server-end-point data of this connection (the certificate's SHA-256)."""
        import hashlib
        return hashlib.sha256(self.sock.getpeercert(binary_form=True)).digest()

    def inline(self, tag=None, sm=False, carbons=False, inactive=False, resume=None,
               request_token=None, fast_count=None, invalidate=False):
        """What goes into <authenticate/> besides the mechanism."""
        x = ""
        if self.agent is not None:
            x += ("<user-agent id='%s'><software>suite-test</software>"
                  "<device>loopback</device></user-agent>" % self.agent)
        if resume:
            x += "<resume xmlns='%s' previd='%s' h='%d'/>" % (NS_SM, resume[0], resume[1])
        if tag is not None:
            x += "<bind xmlns='%s'>%s%s%s%s</bind>" % (
                NS_BIND2, "<tag>%s</tag>" % tag if tag else "",
                "<enable xmlns='%s' resume='true'/>" % NS_SM if sm else "",
                "<enable xmlns='urn:xmpp:carbons:2'/>" if carbons else "",
                "<inactive xmlns='urn:xmpp:csi:0'/>" if inactive else "")
        if request_token:
            x += "<request-token xmlns='%s' mechanism='%s'/>" % (NS_FAST, request_token)
        if fast_count is not None or invalidate:
            x += "<fast xmlns='%s'%s%s/>" % (
                NS_FAST, " count='%d'" % fast_count if fast_count is not None else "",
                " invalidate='true'" if invalidate else "")
        return x

    def outcome(self, timeout=10):
        """Read up to the end of <success/>, <failure/> or <challenge/>; returns (its name, the
        element's text), and keeps what followed in buf."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.buf.decode(errors="replace")
            for name in ("success", "failure", "challenge"):
                m = re.search(r"<%s xmlns='%s'.*?</%s>" % (name, NS_SASL2, name), text, re.S)
                if m:
                    self.buf = text[m.end():].encode()
                    return name, m.group(0)
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no SASL2 outcome; got %r" % text)
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            except (ConnectionResetError, ssl.SSLError, OSError):
                chunk = b""
            if not chunk:
                raise AssertionError("closed without a SASL2 outcome; got %r" % text)
            self.buf += chunk

    def scram(self, user, password, mech="SCRAM-SHA-256", cb_data=None, **inline):
        """A SCRAM login over SASL2; with cb_data, SCRAM-...-PLUS bound to it as
        tls-server-end-point. Returns (ok, the <success/> or <failure/>); ok also means the
        server's signature in <additional-data/> was right."""
        import base64
        import hashlib
        import hmac
        h = hashlib.sha256 if "256" in mech else hashlib.sha1
        gs2 = "p=tls-server-end-point,," if cb_data is not None else "n,,"
        nonce = base64.b64encode(os.urandom(18)).decode()
        first_bare = "n=%s,r=%s" % (user, nonce)
        self.buf = b""
        self.element("<authenticate xmlns='%s' mechanism='%s'><initial-response>%s"
                     "</initial-response>%s</authenticate>"
                     % (NS_SASL2, mech + ("-PLUS" if cb_data is not None else ""),
                        base64.b64encode((gs2 + first_bare).encode()).decode(),
                        self.inline(**inline)))
        kind, out = self.outcome()
        if kind != "challenge":
            return False, out
        server_first = base64.b64decode(re.search(r">([^<]*)<", out).group(1)).decode()
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        salted = hashlib.pbkdf2_hmac(h().name, password.encode(), base64.b64decode(attrs["s"]),
                                     int(attrs["i"]))
        client_key = hmac.new(salted, b"Client Key", h).digest()
        cbind = base64.b64encode(gs2.encode() + (cb_data or b"")).decode()
        final_bare = "c=%s,r=%s" % (cbind, attrs["r"])
        auth_msg = "%s,%s,%s" % (first_bare, server_first, final_bare)
        sig = hmac.new(h(client_key).digest(), auth_msg.encode(), h).digest()
        proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, sig))).decode()
        self.element("<response xmlns='%s'>%s</response>"
                     % (NS_SASL2, base64.b64encode(("%s,p=%s" % (final_bare, proof)).encode())
                        .decode()))
        kind, out = self.outcome()
        if kind != "success":
            return False, out
        server_key = hmac.new(salted, b"Server Key", h).digest()
        want = b"v=" + base64.b64encode(hmac.new(server_key, auth_msg.encode(), h).digest())
        m = re.search(r"<additional-data>([^<]*)</additional-data>", out)
        return bool(m) and base64.b64decode(m.group(1)) == want, out

    def fast(self, user, token, mech="HT-SHA-256-NONE", cb=None, **inline):
        """A FAST login: one <authenticate/>, one answer. cb: the channel binding data the
        client binds to (default: none for -NONE, this connection's for -ENDP). Returns (ok,
        the answer); ok also means the server's Responder mac was right."""
        import base64
        import hashlib
        import hmac
        if cb is None:
            cb = self.endpoint() if mech.endswith("-ENDP") else b""
        mac = hmac.new(token.encode(), b"Initiator" + cb, hashlib.sha256).digest()
        self.buf = b""
        self.element("<authenticate xmlns='%s' mechanism='%s'><initial-response>%s"
                     "</initial-response>%s</authenticate>"
                     % (NS_SASL2, mech, base64.b64encode(user.encode() + b"\0" + mac)
                        .decode(), self.inline(**inline)))
        kind, out = self.outcome()
        if kind != "success":
            return False, out
        want = hmac.new(token.encode(), b"Responder" + cb, hashlib.sha256).digest()
        m = re.search(r"<additional-data>([^<]*)</additional-data>", out)
        return bool(m) and base64.b64decode(m.group(1)) == want, out


def sasl2_token(success):
    """(token, expiry) of the FAST <token/> in a <success/>, or None."""
    m = re.search(r"<token xmlns='%s' expiry='([^']+)' token='([^']+)'/>" % NS_FAST, success)
    return (m.group(2), m.group(1)) if m else None


STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"


async def refused(coro):
    """(the <error/> element, its RFC 6120 condition) of the IQ error the request coro got;
    AssertionError when it was answered with a result."""
    try:
        await coro
    except IqError as e:
        err = e.iq.xml.find("{jabber:client}error")
        return err, [ch.tag.split("}")[1] for ch in err if ch.tag.startswith("{%s}" % STANZAS)
                     and not ch.tag.endswith("}text")][0]
    raise AssertionError("the request was not refused")


def run(coro, timeout=120):
    """Run one test's coroutine in a fresh event loop."""
    return asyncio.run(asyncio.wait_for(coro, timeout))
