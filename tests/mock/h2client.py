"""h2client.py - a small blocking HTTP/2-over-TLS client (hyper-h2 + ssl) for the mocks'
self-tests, and a tiny client for their JSON control port. It can deliberately open more streams
than the server allows (force=True) to test that the limit is enforced.

Also JWT helpers: es256_jwt (APNs provider token) and rs256_jwt (Google service-account
assertion), signed with python3-cryptography."""

import base64
import http.client
import json
import select
import socket
import ssl
import time

import h2.config
import h2.connection
import h2.events
import h2.settings
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, utils


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt_input(header, claims):
    return (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
            b64url(json.dumps(claims, separators=(",", ":")).encode()))


def load_key(path):
    with open(path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), None)


def es256_jwt(key, kid, iss, iat=None, header=None, claims=None, der=False):
    """An APNs provider token. header/claims override or add fields; der=True signs with the
    DER signature encoding instead of JWS's raw r||s (a classic client bug)."""
    h = {"alg": "ES256", "kid": kid}
    h.update(header or {})
    c = {"iss": iss, "iat": int(time.time()) if iat is None else iat}
    c.update(claims or {})
    si = _jwt_input(h, c)
    der_sig = key.sign(si.encode(), ec.ECDSA(hashes.SHA256()))
    if der:
        return si + "." + b64url(der_sig)
    r, s = utils.decode_dss_signature(der_sig)
    return si + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def rs256_jwt(key, claims, header=None):
    h = {"alg": "RS256", "typ": "JWT"}
    h.update(header or {})
    si = _jwt_input(h, claims)
    sig = key.sign(si.encode(), padding.PKCS1v15(), hashes.SHA256())
    return si + "." + b64url(sig)


class Resp:
    def __init__(self, stream_id):
        self.stream_id = stream_id
        self.status = None
        self.headers = []
        self.body = bytearray()
        self.done = False
        self.reset = None   # RST_STREAM error code, if the server reset the stream

    def header(self, name):
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def json(self):
        return json.loads(bytes(self.body))

    def __repr__(self):
        return "<Resp %d status=%s reset=%s body=%r>" % (self.stream_id, self.status, self.reset,
                                                          bytes(self.body))


class H2Client:
    """One HTTP/2 connection over TLS."""

    def __init__(self, port, ca, host="127.0.0.1", server_name="localhost", cert=None, key=None,
                 alpn=("h2",), timeout=5.0):
        self.timeout = timeout
        ctx = ssl.create_default_context(cafile=ca)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_alpn_protocols(list(alpn))
        if cert:
            ctx.load_cert_chain(cert, key)
        raw = socket.create_connection((host, port), timeout=timeout)
        self.sock = ctx.wrap_socket(raw, server_hostname=server_name)
        self.alpn = self.sock.selected_alpn_protocol()
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        self.responses = {}
        self.goaway = None      # (error code, last stream id, additional data)
        self.closed = False
        self.settings_seen = False
        self.events = []
        self._send()

    def _send(self):
        data = self.conn.data_to_send()
        if data and not self.closed:
            try:
                self.sock.sendall(data)
            except OSError:
                self.closed = True

    def send(self, path, headers=(), body=b"", method="POST", authority="127.0.0.1",
             force=False, end=True):
        """Open a stream; returns its id. force=True ignores the server's stream limit."""
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(":method", method), (":scheme", "https"), (":path", path),
                (":authority", authority)] + list(headers)
        dq = self.conn.remote_settings._settings.get(h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS)
        saved = None
        if force and dq:
            saved = dq[0]
            dq[0] = 2 ** 31 - 1
        try:
            self.conn.send_headers(sid, hdrs, end_stream=not body and end)
        finally:
            if saved is not None:
                dq[0] = saved
        if body:
            self.conn.send_data(sid, body, end_stream=end)
        self.responses[sid] = Resp(sid)
        self._send()
        return sid

    def pump(self, timeout):
        """Read once (up to timeout seconds) and process the events. False if nothing came."""
        if self.closed:
            return False
        if not self.sock.pending():
            r, _, _ = select.select([self.sock], [], [], timeout)
            if not r:
                return False
        try:
            data = self.sock.recv(65536)
        except (ssl.SSLError, OSError):
            data = b""
        if not data:
            self.closed = True
            return True
        for ev in self.conn.receive_data(data):
            self.events.append(ev)
            if isinstance(ev, h2.events.ResponseReceived):
                r = self.responses.get(ev.stream_id)
                if r:
                    r.headers = ev.headers
                    r.status = int(dict(ev.headers)[":status"])
                    r.done = r.done or ev.stream_ended is not None
            elif isinstance(ev, h2.events.DataReceived):
                r = self.responses.get(ev.stream_id)
                if r:
                    r.body.extend(ev.data)
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                r = self.responses.get(ev.stream_id)
                if r:
                    r.done = True
            elif isinstance(ev, h2.events.StreamReset):
                r = self.responses.get(ev.stream_id)
                if r:
                    r.reset = ev.error_code
                    r.done = True
            elif isinstance(ev, h2.events.RemoteSettingsChanged):
                self.settings_seen = True
            elif isinstance(ev, h2.events.ConnectionTerminated):
                self.goaway = (ev.error_code, ev.last_stream_id, ev.additional_data)
        self._send()
        return True

    def wait(self, cond, timeout=None):
        """Pump until cond() is true; raises AssertionError on timeout."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while not cond():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("timed out waiting on the server")
            if self.closed:
                if cond():
                    return
                raise AssertionError("connection closed while waiting")
            self.pump(min(left, 0.5))

    def response(self, sid, timeout=None):
        r = self.responses[sid]
        self.wait(lambda: r.done, timeout)
        return r

    def request(self, path, headers=(), body=b"", **kw):
        return self.response(self.send(path, headers, body, **kw))

    def max_streams(self):
        return self.conn.remote_settings.max_concurrent_streams

    def wait_settings(self):
        self.wait(lambda: self.settings_seen)

    def ping(self):
        self.conn.ping(b"12345678")
        self._send()

    def close(self):
        if not self.closed:
            try:
                self.conn.close_connection()
                self._send()
            except Exception:
                pass
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass


class Control:
    """The mock's JSON control port."""

    def __init__(self, port):
        self.port = port

    def call(self, method, path, body=None, timeout=15):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            data = json.dumps(body).encode() if body is not None else None
            c.request(method, path, body=data,
                      headers={"content-type": "application/json", "connection": "close"})
            r = c.getresponse()
            obj = json.loads(r.read() or b"null")
            if r.status != 200:
                raise AssertionError("control %s %s: %d %r" % (method, path, r.status, obj))
            return obj
        finally:
            c.close()

    def post(self, path, body=None):
        return self.call("POST", path, body or {})

    def get(self, path):
        return self.call("GET", path)

    def requests(self, since=0, wait=0, timeout=5, answered=False):
        q = "/requests?since=%d&wait=%d&timeout=%s%s" % (since, wait, timeout,
                                                         "&answered=1" if answered else "")
        return self.get(q)["requests"]
