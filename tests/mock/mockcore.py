"""mockcore.py - what the strict APNs and FCM mocks share: an asyncio HTTP/2 server over TLS
(hyper-h2), an HTTP/1.1 server over TLS (FCM only), the request record, scripted faults (stall,
GOAWAY, abrupt drop, failure rules) and the plain-HTTP/1.1 JSON control port the tests drive.

Debian's python3-h2 4.1 and python3-cryptography only; run with /usr/bin/python3.
The app (apns_mock.App, fcm_mock.App) decides what a request means; this file decides when and
how the answer travels, and records both."""

import asyncio
import base64
import binascii
import email.utils
import json
import math
import os
import signal
import socket
import ssl
import struct
import sys
import time
import traceback
import urllib.parse

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
from hyperframe.frame import GoAwayFrame

UNLIMITED_STREAMS = 2 ** 31 - 1


def now_ms():
    return int(time.time() * 1000)


def b64url_decode(text):
    """Strict base64url without padding (RFC 7515 section 2); raises ValueError."""
    if not isinstance(text, str) or "=" in text or not text:
        raise ValueError("not unpadded base64url")
    for ch in text:
        if not (ch.isascii() and (ch.isalnum() or ch in "-_")):
            raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as e:
        raise ValueError(str(e))


def jwt_split(token):
    """(header dict, claims dict, signing input bytes, signature bytes) of a compact JWS; the
    signature is NOT verified here. Raises ValueError on any syntax problem."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("a JWT has three dot-separated parts")
    header = json.loads(b64url_decode(parts[0]))
    claims = json.loads(b64url_decode(parts[1]))
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise ValueError("JWT header and claims must be JSON objects")
    sig = b64url_decode(parts[2])
    return header, claims, (parts[0] + "." + parts[1]).encode(), sig


def jwt_peek(token):
    """Header and claims of a JWT for the record, whatever its validity (None if unreadable)."""
    try:
        h, c, _, _ = jwt_split(token)
        return {"header": h, "claims": c}
    except (ValueError, UnicodeDecodeError):
        return None


class Response:
    """One answer: status, extra headers (list of (name, value) str pairs), body bytes.
    `reason` is what the record shows (APNs reason, FCM errorCode or status)."""

    def __init__(self, status, headers=None, body=b"", reason=None):
        self.status = status
        self.headers = list(headers or [])
        self.body = body
        self.reason = reason


def json_response(status, obj, headers=None, reason=None):
    body = json.dumps(obj, separators=(",", ":")).encode()
    return Response(status, [("content-type", "application/json; charset=UTF-8")] + list(headers or []),
                    body, reason)


def retry_after_headers(rule):
    """The retry-after header a fail rule asks for, as a header list: "retry_after" as given
    (delta-seconds, or any text, sent verbatim), or "retry_after_date": that many seconds from
    now (rounded up) as an HTTP-date, in "retry_after_form" "imf" (IMF-fixdate, the default),
    "rfc850" or "asctime"."""
    if rule.get("retry_after") is not None:
        return [("retry-after", str(rule["retry_after"]))]
    if rule.get("retry_after_date") is None:
        return []
    t = math.ceil(time.time() + float(rule["retry_after_date"]))
    form = rule.get("retry_after_form") or "imf"
    if form == "imf":
        text = email.utils.formatdate(t, usegmt=True)
    elif form == "rfc850":
        text = time.strftime("%A, %d-%b-%y %H:%M:%S GMT", time.gmtime(t))
    elif form == "asctime":
        text = time.asctime(time.gmtime(t))
    else:
        raise ValueError("retry_after_form must be imf, rfc850 or asctime")
    return [("retry-after", text)]


def retry_after_rule(body):
    """The Retry-After keys of a /fail body, checked."""
    form = body.get("retry_after_form")
    if form not in (None, "imf", "rfc850", "asctime"):
        raise ValueError("retry_after_form must be imf, rfc850 or asctime")
    return {"retry_after": body.get("retry_after"),
            "retry_after_date": body.get("retry_after_date"), "retry_after_form": form}


class Request:
    """A complete request as the app sees it."""

    def __init__(self, conn, stream_id, method, path, headers, body, proto):
        self.conn = conn
        self.stream_id = stream_id
        self.method = method
        self.path = path
        self.headers = headers  # list of (name, value), names lower case, order kept
        self.body = body
        self.proto = proto  # "h2" or "http/1.1"
        self.arrived = time.time()
        self.record = None

    def header(self, name):
        """The value of a header, None if absent (the first one if repeated)."""
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def header_count(self, name):
        return sum(1 for k, _ in self.headers if k == name)


class Recorder:
    """Every request received, in arrival order, with its outcome filled in when answered."""

    def __init__(self, limit=100000):
        self.items = []
        self.seq = 0
        self.waiters = []
        self.limit = limit  # oldest records dropped beyond this (long benchmark runs)
        self.counters = {}  # endpoint -> {"requests": n, "status": {"401": n, ...}}, never trimmed

    @staticmethod
    def endpoint(req):
        return (getattr(req, "facts", None) or {}).get("endpoint") or "send"

    def count(self, req, status=None):
        c = self.counters.setdefault(self.endpoint(req), {"requests": 0, "status": {}})
        if status is None:
            c["requests"] += 1
        else:
            c["status"][str(status)] = c["status"].get(str(status), 0) + 1

    def add(self, req, extra):
        self.seq += 1
        body = req.body
        try:
            text = body.decode("utf-8")
            body_field = {"body": text}
        except UnicodeDecodeError:
            text = None
            body_field = {"body_base64": base64.b64encode(body).decode()}
        rec = {
            "seq": self.seq, "time": req.arrived, "connection": req.conn.id,
            "stream": req.stream_id, "proto": req.proto, "method": req.method,
            "path": req.path, "headers": [[k, v] for k, v in req.headers],
            "body_length": len(body), "json": None,
            "status": None, "reason": None, "response_headers": None, "response_body": None,
            "answered": None, "outcome": "pending",
        }
        rec.update(body_field)
        if text:
            try:
                rec["json"] = json.loads(text)
            except ValueError:
                pass
        rec.update(extra)
        self.count(req)
        self.items.append(rec)
        if len(self.items) > self.limit:
            del self.items[:len(self.items) - self.limit]
        req.record = rec
        self._wake()
        return rec

    def answered(self, rec, resp, outcome="answered", req=None):
        if req is not None:
            self.count(req, resp.status)
        rec["status"] = resp.status
        rec["reason"] = resp.reason
        rec["response_headers"] = [[k, v] for k, v in resp.headers]
        try:
            rec["response_body"] = resp.body.decode() if resp.body else ""
        except UnicodeDecodeError:
            rec["response_body"] = None
        rec["answered"] = time.time()
        rec["outcome"] = outcome
        self._wake()

    def mark(self, rec, outcome):
        rec["outcome"] = outcome
        rec["answered"] = time.time()
        self._wake()

    def _wake(self):
        for fut in self.waiters:
            if not fut.done():
                fut.set_result(None)
        self.waiters = []

    async def wait(self, pred, timeout):
        deadline = time.monotonic() + timeout
        while not pred():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            fut = asyncio.get_running_loop().create_future()
            self.waiters.append(fut)
            try:
                await asyncio.wait_for(fut, left)
            except asyncio.TimeoutError:
                return pred()
        return True


class Faults:
    """Scripted behaviour set through the control port. Each list holds rule dicts consumed in
    order; a rule with "count" applies to that many matching requests, without it, to all."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.fail = []     # {"count", "match": {...}, ...app fields}
        self.stall = []    # {"count", "ms" (None = until released), "match"}
        self.goaway = []   # {"after", "connection", "last_stream_id", "error_code", "data", "close"}
        self.drop = []     # {"after", "connection"}

    @staticmethod
    def matches(rule, req, facts):
        conn = rule.get("connection")
        if conn is not None and conn != req.conn.id:
            return False
        for k, v in (rule.get("match") or {}).items():
            if facts.get(k) != v:
                return False
        return True

    def take(self, name, req, facts=None):
        """The first rule of list `name` that matches, its count used up by one; or None."""
        rules = getattr(self, name)
        for rule in rules:
            if not self.matches(rule, req, facts or {}):
                continue
            if "count" in rule and rule["count"] is not None:
                rule["count"] -= 1
                if rule["count"] <= 0:
                    rules.remove(rule)
            return rule
        return None

    def arrival(self, name, req):
        """For goaway/drop rules counted in arriving requests: the rule that fires now, if any
        ("after" requests let through first on the matching connections)."""
        rules = getattr(self, name)
        for rule in rules:
            if not self.matches(rule, req, {}):
                continue
            if rule.get("after", 0) > 0:
                rule["after"] -= 1
                continue
            rules.remove(rule)
            return rule
        return None


class Connection:
    """Transport-independent state of one client connection, shared by the app."""

    next_id = 1

    def __init__(self, server, transport, proto):
        self.id = Connection.next_id
        Connection.next_id += 1
        self.server = server
        self.transport = transport
        self.proto = proto
        self.peer = transport.get_extra_info("peername")
        self.opened = time.time()
        self.closed = None
        self.requests = 0
        self.refused = 0
        self.pings = 0
        self.last_ping = None
        self.goaway = None      # dict describing the GOAWAY we sent
        self.app_state = {}     # the app's per-connection state (auth, tokens, ...)
        ssl_obj = transport.get_extra_info("ssl_object")
        self.tls_version = ssl_obj.version() if ssl_obj else None
        self.alpn = ssl_obj.selected_alpn_protocol() if ssl_obj else None
        self.peer_cert = transport.get_extra_info("peercert")

    def info(self):
        d = {"id": self.id, "peer": list(self.peer) if self.peer else None,
             "opened": self.opened, "closed": self.closed, "proto": self.proto,
             "tls_version": self.tls_version, "alpn": self.alpn, "requests": self.requests,
             "refused_streams": self.refused, "pings": self.pings, "last_ping": self.last_ping,
             "goaway": self.goaway}
        d.update(self.server.app.connection_info(self))
        return d

    def abort(self):
        """Drop the TCP connection abruptly: RST, no TLS close_notify, no GOAWAY."""
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        self.transport.abort()


class H2Conn(h2.connection.H2Connection):
    """hyper-h2 answers an excess stream with a connection error (GOAWAY PROTOCOL_ERROR); RFC 9113
    section 5.1.2 also allows, and servers such as APNs use, a stream error REFUSED_STREAM. So
    the limit check is done here: the headers are still decoded (HPACK state must stay in step)
    and the stream is marked to be refused."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.over_limit = set()

    def _receive_headers_frame(self, frame):
        if frame.stream_id not in self.streams and \
                self.open_inbound_streams + 1 > self.local_settings.max_concurrent_streams:
            self.over_limit.add(frame.stream_id)
            dq = self.local_settings._settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS]
            saved = dq[0]
            dq[0] = UNLIMITED_STREAMS
            try:
                return super()._receive_headers_frame(frame)
            finally:
                dq[0] = saved
        return super()._receive_headers_frame(frame)


class H2Protocol(asyncio.Protocol):
    """One HTTP/2 connection. Requests are handed to Server.dispatch once complete."""

    def __init__(self, server):
        self.server = server
        self.conn = None
        self.h2 = None
        self.streams = {}       # stream id -> [headers, bytearray body]
        self.pending = {}       # stream id -> bytes still to send (flow control)
        self.answering = set()  # streams accepted and not yet answered
        self.highest_accepted = 0

    # --- asyncio.Protocol
    def connection_made(self, transport):
        ssl_obj = transport.get_extra_info("ssl_object")
        if ssl_obj is not None and ssl_obj.selected_alpn_protocol() != "h2" and \
                self.server.h1_allowed and ssl_obj.selected_alpn_protocol() in (None, "http/1.1"):
            # Not ours: hand over to HTTP/1.1 (FCM accepts both).
            h1 = H1Protocol(self.server)
            transport.set_protocol(h1)
            h1.connection_made(transport)
            self.h2 = None
            return
        self.conn = Connection(self.server, transport, "h2")
        self.server.connections[self.conn.id] = self
        if ssl_obj is not None and ssl_obj.selected_alpn_protocol() != "h2":
            # APNs: HTTP/2 only; no ALPN h2 means no service.
            self.conn.closed = time.time()
            transport.close()
            return
        cfg = h2.config.H2Configuration(client_side=False, header_encoding="utf-8",
                                        validate_inbound_headers=True)
        self.h2 = H2Conn(config=cfg)
        limit = self.server.app.initial_max_streams(self.conn)
        self.h2.local_settings = h2.settings.Settings(client=False, initial_values={
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: limit,
            h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: 65536,
        })
        self.h2.initiate_connection()
        self.flush()
        self.idle_timer = None
        self.arm_idle()

    def arm_idle(self):
        """--idle-timeout: GOAWAY {"reason": "IdleTimeout"} and close after that long without a
        frame from the client (PINGs count as traffic)."""
        t = self.server.args.idle_timeout
        if not t:
            return
        if self.idle_timer is not None:
            self.idle_timer.cancel()
        self.idle_timer = asyncio.get_running_loop().call_later(t, self.idle)

    def idle(self):
        if self.answering or self.conn.transport.is_closing():
            self.arm_idle()
            return
        self.send_goaway({"reason": "IdleTimeout"})

    def data_received(self, data):
        if self.h2 is None:
            return
        self.arm_idle()
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as e:
            self.server.log("connection %d protocol error: %s" % (self.conn.id, e))
            self.flush()
            self.transport_close()
            return
        for ev in events:
            if isinstance(ev, h2.events.RequestReceived):
                self.streams[ev.stream_id] = [ev.headers, bytearray()]
                if ev.stream_id in self.h2.over_limit:
                    self.refuse(ev.stream_id)
                elif ev.stream_ended:
                    self.complete(ev.stream_id)
            elif isinstance(ev, h2.events.DataReceived):
                if ev.stream_id in self.streams:
                    self.streams[ev.stream_id][1].extend(ev.data)
                if ev.flow_controlled_length:
                    self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                self.complete(ev.stream_id)
            elif isinstance(ev, h2.events.StreamReset):
                self.streams.pop(ev.stream_id, None)
                self.pending.pop(ev.stream_id, None)
                self.answering.discard(ev.stream_id)
            elif isinstance(ev, h2.events.WindowUpdated):
                self.send_pending()
            elif isinstance(ev, h2.events.PingReceived):
                self.conn.pings += 1
                self.conn.last_ping = time.time()
            elif isinstance(ev, h2.events.ConnectionTerminated):
                self.transport_close()
                return
        self.flush()
        self.maybe_close_after_goaway()

    def connection_lost(self, exc):
        if getattr(self, "idle_timer", None) is not None:
            self.idle_timer.cancel()
        if self.conn is not None:
            self.conn.closed = self.conn.closed or time.time()
            self.server.connection_closed(self.conn)

    # --- helpers
    def flush(self):
        if self.h2 is not None and not self.conn.transport.is_closing():
            data = self.h2.data_to_send()
            if data:
                self.conn.transport.write(data)

    def transport_close(self):
        if self.conn and not self.conn.transport.is_closing():
            self.conn.transport.close()

    def make_request(self, stream_id):
        headers, body = self.streams.pop(stream_id)
        pseudo = {k: v for k, v in headers if k.startswith(":")}
        regular = [(k, v) for k, v in headers if not k.startswith(":")]
        req = Request(self.conn, stream_id, pseudo.get(":method"), pseudo.get(":path"),
                      regular, bytes(body), "h2")
        req.pseudo = pseudo
        return req

    def refuse(self, stream_id):
        """A stream beyond SETTINGS_MAX_CONCURRENT_STREAMS: RST_STREAM REFUSED_STREAM at once
        (the client may retry it; nothing of it was processed)."""
        self.h2.over_limit.discard(stream_id)
        self.conn.refused += 1
        self.server.recorder.add(self.make_request(stream_id), {"outcome": "refused"})
        self.reset(stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)

    def complete(self, stream_id):
        if stream_id not in self.streams:
            return
        req = self.make_request(stream_id)
        if self.conn.goaway is not None and stream_id > self.conn.goaway["last_stream_id"]:
            # After our GOAWAY: not processed, the client must retry elsewhere.
            self.server.recorder.add(req, {"outcome": "ignored_after_goaway"})
            return
        self.answering.add(stream_id)
        self.server.dispatch(self, req)

    def reset(self, stream_id, code):
        try:
            self.h2.reset_stream(stream_id, code)
        except h2.exceptions.ProtocolError:
            pass
        self.flush()

    def accepted(self, stream_id):
        self.highest_accepted = max(self.highest_accepted, stream_id)

    def respond(self, req, resp):
        """Send the response of `req` (if its stream is still there)."""
        sid = req.stream_id
        self.answering.discard(sid)
        if self.h2 is None or self.conn.transport.is_closing():
            return False
        headers = [(":status", str(resp.status))] + \
            [(k.lower(), str(v)) for k, v in resp.headers] + \
            [("content-length", str(len(resp.body)))]
        try:
            self.h2.send_headers(sid, headers, end_stream=not resp.body)
            if resp.body:
                self.pending[sid] = resp.body
                self.send_pending()
        except (h2.exceptions.ProtocolError, KeyError) as e:
            self.server.log("stream %d gone: %s" % (sid, e))
            return False
        self.flush()
        self.maybe_close_after_goaway()
        return True

    def send_pending(self):
        for sid in list(self.pending):
            data = self.pending[sid]
            try:
                window = min(self.h2.local_flow_control_window(sid), self.h2.max_outbound_frame_size)
            except (h2.exceptions.ProtocolError, KeyError):
                del self.pending[sid]
                continue
            while data and window > 0:
                chunk = data[:window]
                data = data[len(chunk):]
                self.h2.send_data(sid, chunk, end_stream=not data)
                window = min(self.h2.local_flow_control_window(sid), self.h2.max_outbound_frame_size)
            if data:
                self.pending[sid] = data
            else:
                del self.pending[sid]
        self.flush()

    def send_goaway(self, rule):
        """GOAWAY written as a raw frame so that hyper-h2 still lets us answer the streams up to
        last_stream_id (a graceful shutdown); later streams are ignored."""
        if self.conn.goaway is not None or self.conn.transport.is_closing():
            return
        last = rule.get("last_stream_id")
        if last is None:
            last = self.highest_accepted
        data = rule.get("data")
        if data is None and rule.get("reason") is not None:
            data = json.dumps({"reason": rule["reason"]})
        f = GoAwayFrame(0)
        f.last_stream_id = last
        f.error_code = int(rule.get("error_code", 0))
        f.additional_data = (data or "").encode()
        self.flush()
        self.conn.transport.write(f.serialize())
        self.conn.goaway = {"last_stream_id": last, "error_code": f.error_code,
                            "data": data, "time": time.time(),
                            "close": rule.get("close", True)}
        self.maybe_close_after_goaway()

    def maybe_close_after_goaway(self):
        g = self.conn.goaway if self.conn else None
        if g is None or not g["close"] or self.conn.transport.is_closing():
            return
        if any(s <= g["last_stream_id"] for s in self.answering) or self.pending:
            return
        self.flush()
        self.conn.transport.close()

    def update_max_streams(self, n):
        if self.h2 is None or self.conn.transport.is_closing():
            return
        if self.h2.local_settings.max_concurrent_streams == n:
            return
        self.h2.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: n})
        self.flush()

    def advertised_max_streams(self):
        """(current acknowledged value, value awaiting the client's ACK or None)"""
        if self.h2 is None:
            return None, None
        dq = self.h2.local_settings._settings.get(h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS)
        return (dq[0], dq[-1] if len(dq) > 1 else None) if dq else (None, None)


class H1Protocol(asyncio.Protocol):
    """HTTP/1.1 over TLS (FCM also speaks it): one request at a time, keep-alive, Content-Length
    or chunked bodies, Expect: 100-continue."""

    MAX_HEAD = 65536

    def __init__(self, server):
        self.server = server
        self.buf = bytearray()
        self.busy = False
        self.conn = None
        self.next_stream = 1
        self.highest_accepted = 0
        self.close_after = False
        self.sent_continue = False

    def connection_made(self, transport):
        self.conn = Connection(self.server, transport, "http/1.1")
        self.server.connections[self.conn.id] = self

    def connection_lost(self, exc):
        self.conn.closed = self.conn.closed or time.time()
        self.server.connection_closed(self.conn)

    def data_received(self, data):
        self.buf.extend(data)
        self.try_parse()

    def bad(self, why):
        self.server.log("connection %d bad HTTP/1.1: %s" % (self.conn.id, why))
        body = json.dumps({"error": {"code": 400, "message": why, "status": "INVALID_ARGUMENT"}}).encode()
        self.conn.transport.write(b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
                                  b"connection: close\r\ncontent-length: %d\r\n\r\n" % len(body) + body)
        self.conn.transport.close()

    def try_parse(self):
        if self.busy or self.conn.transport.is_closing():
            return
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buf) > self.MAX_HEAD:
                self.bad("request head too large")
            return
        head = bytes(self.buf[:end]).decode("latin-1")
        lines = head.split("\r\n")
        try:
            method, target, version = lines[0].split(" ")
        except ValueError:
            return self.bad("bad request line")
        if version not in ("HTTP/1.1", "HTTP/1.0"):
            return self.bad("bad version")
        headers = []
        for line in lines[1:]:
            if ":" not in line or line[0] in " \t":
                return self.bad("bad header line")
            k, v = line.split(":", 1)
            headers.append((k.strip().lower(), v.strip()))
        hd = {}
        for k, v in headers:
            hd.setdefault(k, v)
        rest = self.buf[end + 4:]
        if "chunked" in hd.get("transfer-encoding", "").lower():
            body = bytearray()
            pos = 0
            while True:
                nl = rest.find(b"\r\n", pos)
                if nl < 0:
                    return self.expect_continue(hd)
                try:
                    size = int(bytes(rest[pos:nl]).split(b";")[0], 16)
                except ValueError:
                    return self.bad("bad chunk size")
                if size == 0:
                    tend = rest.find(b"\r\n\r\n", nl)
                    if rest[nl:nl + 4] == b"\r\n\r\n":
                        tend = nl
                    if tend < 0:
                        return
                    consumed = tend + 4
                    break
                if len(rest) < nl + 2 + size + 2:
                    return self.expect_continue(hd)
                body.extend(rest[nl + 2:nl + 2 + size])
                pos = nl + 2 + size + 2
        else:
            try:
                length = int(hd.get("content-length", "0"))
            except ValueError:
                return self.bad("bad content-length")
            if len(rest) < length:
                return self.expect_continue(hd)
            body = rest[:length]
            consumed = length
        del self.buf[:end + 4 + consumed]
        self.sent_continue = False
        stream = self.next_stream
        self.next_stream += 1
        req = Request(self.conn, stream, method, target, headers, bytes(body), "http/1.1")
        req.pseudo = {":method": method, ":path": target, ":authority": hd.get("host")}
        if version == "HTTP/1.0" or hd.get("connection", "").lower() == "close":
            self.close_after = True
        self.busy = True
        self.server.dispatch(self, req)

    def expect_continue(self, hd):
        if hd.get("expect", "").lower() == "100-continue" and not self.sent_continue:
            self.sent_continue = True
            self.conn.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def accepted(self, stream_id):
        self.highest_accepted = max(self.highest_accepted, stream_id)

    def respond(self, req, resp):
        self.busy = False
        if self.conn.transport.is_closing():
            return False
        out = ["HTTP/1.1 %d %s" % (resp.status, REASONS.get(resp.status, "Status"))]
        for k, v in resp.headers:
            out.append("%s: %s" % (k, v))
        out.append("content-length: %d" % len(resp.body))
        if self.close_after or self.conn.goaway is not None:
            out.append("connection: close")
        self.conn.transport.write(("\r\n".join(out) + "\r\n\r\n").encode() + resp.body)
        if self.close_after or self.conn.goaway is not None:
            self.conn.transport.close()
            return True
        asyncio.get_running_loop().call_soon(self.try_parse)
        return True

    def send_goaway(self, rule):
        # HTTP/1.1 has no GOAWAY: answer what is in progress with "connection: close".
        self.conn.goaway = {"last_stream_id": self.highest_accepted, "error_code": 0,
                            "data": None, "time": time.time(), "close": True}
        if not self.busy:
            self.conn.transport.close()

    def update_max_streams(self, n):
        pass

    def advertised_max_streams(self):
        return None, None


REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
           404: "Not Found", 405: "Method Not Allowed", 410: "Gone", 413: "Payload Too Large",
           429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}


class Server:
    """The listening TLS server, its connections, record and faults, and the control port."""

    def __init__(self, app, args):
        self.app = app
        self.args = args
        self.recorder = Recorder(args.max_records)
        self.faults = Faults()
        self.connections = {}   # id -> protocol
        self.closed_conns = []
        self.h1_allowed = app.HTTP1
        self.stalled = []       # [(req, proto, resp, timer handle or None)]
        self.verbose = args.verbose
        app.server = self

    def log(self, msg):
        if self.verbose:
            print("mock: " + msg, file=sys.stderr, flush=True)

    def ssl_context(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.args.cert, self.args.key)
        ctx.set_alpn_protocols(["h2", "http/1.1"] if self.h1_allowed else ["h2"])
        if self.args.ca and self.app.WANTS_CLIENT_CERT:
            ctx.load_verify_locations(self.args.ca)
            ctx.verify_mode = ssl.CERT_OPTIONAL
        # RFC 9113 section 9.2.2: TLS 1.2 needs an AEAD ephemeral suite for HTTP/2.
        ctx.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20")
        return ctx

    def connection_closed(self, conn):
        proto = self.connections.pop(conn.id, None)
        if proto is not None:
            self.closed_conns.append(conn)
            del self.closed_conns[:-200]
        self.app.connection_closed(conn)
        for item in list(self.stalled):
            if item[0].conn is conn:
                self.stalled.remove(item)
                if item[3] is not None:
                    item[3].cancel()
                self.recorder.mark(item[0].record, "lost_connection_closed")

    # --- the request path
    def dispatch(self, proto, req):
        conn = req.conn
        conn.requests += 1
        rule = self.faults.arrival("drop", req)
        if rule is not None:
            self.recorder.add(req, {"outcome": "dropped"})
            conn.abort()
            return
        rule = self.faults.arrival("goaway", req)
        if rule is not None:
            if rule.get("last_stream_id") is None:
                rule = dict(rule, last_stream_id=proto.highest_accepted)
            proto.send_goaway(rule)
            if req.stream_id > conn.goaway["last_stream_id"]:
                self.recorder.add(req, {"outcome": "ignored_after_goaway"})
                if isinstance(proto, H2Protocol):
                    proto.answering.discard(req.stream_id)
                    proto.maybe_close_after_goaway()
                else:
                    conn.transport.close()
                return
        proto.accepted(req.stream_id)
        extra = {}
        try:
            resp = self.app.handle(req, extra)
        except Exception as e:  # a mock bug must show, not hang the client
            traceback.print_exc()
            resp = Response(500, [], b'{"reason":"MockBug"}', "MockBug: %s" % e)
        if req.record is None:
            self.recorder.add(req, extra)
        stall = self.faults.take("stall", req, getattr(req, "facts", {}))
        if stall is not None:
            ms = stall.get("ms")
            req.record["stalled_ms"] = ms
            item = [req, proto, resp, None]
            if ms is not None:
                item[3] = asyncio.get_running_loop().call_later(ms / 1000.0, self.release_one, item)
            self.stalled.append(item)
            return
        self.send(proto, req, resp)

    def send(self, proto, req, resp):
        if proto.respond(req, resp):
            self.recorder.answered(req.record, resp, req=req)
            self.app.answered(req, resp)
        else:
            self.recorder.mark(req.record, "lost_stream_gone")

    def release_one(self, item):
        if item in self.stalled:
            self.stalled.remove(item)
            self.send(item[1], item[0], item[2])

    def release_all(self):
        n = 0
        for item in list(self.stalled):
            if item[3] is not None:
                item[3].cancel()
            self.release_one(item)
            n += 1
        return n

    # --- control port
    async def control(self, method, path, query, body):
        """(status, JSON object) for one control request."""
        if method == "GET" and path == "/requests":
            since = int(query.get("since", 0))
            want = int(query.get("wait", 0))
            timeout = float(query.get("timeout", 5))
            answered = query.get("answered") in ("1", "true")

            def items():
                return [r for r in self.recorder.items if r["seq"] > since and
                        (not answered or r["outcome"] != "pending")]
            if want:
                await self.recorder.wait(lambda: len(items()) >= want, timeout)
            return 200, {"requests": items(), "last_seq": self.recorder.seq}
        if method == "GET" and path == "/counters":
            return 200, {"counters": self.recorder.counters}
        if method == "GET" and path == "/connections":
            conns = [p.conn.info() for p in self.connections.values() if p.conn is not None]
            closed = [c.info() for c in self.closed_conns]
            return 200, {"open": conns, "closed": closed}
        if method == "POST" and path == "/reset":
            self.recorder.items.clear()
            self.recorder.counters = {}
            self.faults.reset()
            self.release_all()
            self.app.reset()
            return 200, {"ok": True}
        if method == "POST" and path == "/fail":
            rule = self.app.check_fail_rule(body)
            self.faults.fail.append(rule)
            return 200, {"ok": True, "rule": rule}
        if method == "POST" and path == "/stall":
            rule = {"count": body.get("count", 1), "ms": body.get("ms"),
                    "connection": body.get("connection"), "match": body.get("match")}
            self.faults.stall.append(rule)
            return 200, {"ok": True}
        if method == "POST" and path == "/release":
            return 200, {"released": self.release_all()}
        if method == "POST" and path == "/goaway":
            rule = {"after": int(body.get("after", 0)), "connection": body.get("connection"),
                    "last_stream_id": body.get("last_stream_id"),
                    "error_code": int(body.get("error_code", 0)), "reason": body.get("reason"),
                    "data": body.get("data"), "close": body.get("close", True)}
            if body.get("now"):
                n = 0
                for p in list(self.connections.values()):
                    if p.conn is None or (rule["connection"] not in (None, p.conn.id)):
                        continue
                    p.send_goaway(rule)
                    n += 1
                return 200, {"sent": n}
            self.faults.goaway.append(rule)
            return 200, {"ok": True}
        if method == "POST" and path == "/drop":
            rule = {"after": int(body.get("after", 0)), "connection": body.get("connection")}
            if body.get("now"):
                n = 0
                for p in list(self.connections.values()):
                    if p.conn is not None and rule["connection"] in (None, p.conn.id):
                        p.conn.abort()
                        n += 1
                return 200, {"dropped": n}
            self.faults.drop.append(rule)
            return 200, {"ok": True}
        return await self.app.control(method, path, query, body)

    async def control_client(self, reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                hd = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        hd[k.strip().lower()] = v.strip()
                n = int(hd.get("content-length", "0"))
                raw = await reader.readexactly(n) if n else b""
                u = urllib.parse.urlsplit(target)
                query = dict(urllib.parse.parse_qsl(u.query))
                try:
                    body = json.loads(raw) if raw.strip() else {}
                    if not isinstance(body, dict):
                        raise ValueError("the body must be a JSON object")
                    status, obj = await self.control(method, u.path, query, body)
                except (ValueError, KeyError, TypeError) as e:
                    status, obj = 400, {"error": str(e)}
                if status == 404 and obj is None:
                    obj = {"error": "no such control endpoint: %s %s" % (method, u.path)}
                out = json.dumps(obj, default=str).encode()
                writer.write(b"HTTP/1.1 %d X\r\ncontent-type: application/json\r\n"
                             b"content-length: %d\r\n\r\n" % (status, len(out)) + out)
                await writer.drain()
                if hd.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def run(self):
        loop = asyncio.get_running_loop()
        ctx = self.ssl_context()
        srv = await loop.create_server(lambda: H2Protocol(self), self.args.host, self.args.port,
                                       ssl=ctx, reuse_address=True, backlog=1024)
        ctl = await asyncio.start_server(self.control_client, "127.0.0.1", self.args.control_port)
        port = srv.sockets[0].getsockname()[1]
        cport = ctl.sockets[0].getsockname()[1]
        self.port = port
        self.control_port = cport
        self.app.started(port)
        print("listening %s:%d control %d" % (self.args.host, port, cport), flush=True)
        stop = loop.create_future()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
        await stop
        srv.close()
        ctl.close()
        for p in list(self.connections.values()):
            if p.conn is not None:
                p.conn.transport.abort()
        await asyncio.sleep(0)


def add_common_args(ap, default_port):
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on")
    ap.add_argument("--port", type=int, default=default_port, help="TLS port (0: any free one)")
    ap.add_argument("--control-port", type=int, default=0,
                    help="plain HTTP/1.1 JSON control port on 127.0.0.1 (0: any free one)")
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--cert", default=os.path.join(here, "keys", "server.pem"))
    ap.add_argument("--key", default=os.path.join(here, "keys", "server.key"))
    ap.add_argument("--ca", default=os.path.join(here, "keys", "ca.pem"),
                    help="CA that client certificates must chain to")
    ap.add_argument("--idle-timeout", type=float, default=0,
                    help="seconds without client traffic before GOAWAY IdleTimeout (0: never)")
    ap.add_argument("--max-records", type=int, default=100000,
                    help="requests kept in the record (oldest dropped first)")
    ap.add_argument("--verbose", action="store_true", help="log to stderr")


def main(app, args):
    server = Server(app, args)
    try:
        asyncio.run(server.run())
    except KeyboardInterrupt:
        pass
    return 0
