"""turn.py - a small raw STUN/TURN client for the icicle black-box tests (standard library only):
builds requests with long-term credentials, MESSAGE-INTEGRITY and FINGERPRINT, parses answers,
and speaks UDP or TCP (with stream framing)."""

import base64
import binascii
import hashlib
import hmac
import ipaddress
import os
import socket
import struct
import time

COOKIE = 0x2112A442

BINDING, ALLOCATE, REFRESH, SEND, DATA, CREATE_PERMISSION, CHANNEL_BIND = 1, 3, 4, 6, 7, 8, 9
REQUEST, INDICATION, SUCCESS, ERROR = 0, 1, 2, 3

USERNAME, MESSAGE_INTEGRITY, ERROR_CODE, UNKNOWN_ATTRIBUTES = 0x0006, 0x0008, 0x0009, 0x000A
CHANNEL_NUMBER, LIFETIME, XOR_PEER_ADDRESS, DATA_ATTR = 0x000C, 0x000D, 0x0012, 0x0013
REALM, NONCE, XOR_RELAYED_ADDRESS, REQUESTED_ADDRESS_FAMILY = 0x0014, 0x0015, 0x0016, 0x0017
EVEN_PORT, REQUESTED_TRANSPORT, DONT_FRAGMENT, XOR_MAPPED_ADDRESS = 0x0018, 0x0019, 0x001A, 0x0020
RESERVATION_TOKEN = 0x0022
MESSAGE_INTEGRITY_SHA256, PASSWORD_ALGORITHM, PASSWORD_ALGORITHMS = 0x001C, 0x001D, 0x8002
MD5, SHA256 = 1, 2  # PASSWORD-ALGORITHM values
ADDITIONAL_ADDRESS_FAMILY, SOFTWARE, FINGERPRINT = 0x8000, 0x8022, 0x8028


def msg_type(method, cls):
    return ((method & 0xF80) << 2) | ((method & 0x70) << 1) | (method & 0xF) | \
        ((cls & 2) << 7) | ((cls & 1) << 4)


def split_type(t):
    method = (t & 0xF) | ((t >> 1) & 0x70) | ((t >> 2) & 0xF80)
    cls = ((t >> 7) & 2) | ((t >> 4) & 1)
    return method, cls


def xor_addr(host, port, tid):
    ip = ipaddress.ip_address(host)
    xport = port ^ (COOKIE >> 16)
    if ip.version == 4:
        x = int(ip) ^ COOKIE
        return struct.pack("!BBH", 0, 1, xport) + struct.pack("!I", x)
    key = struct.pack("!I", COOKIE) + tid
    raw = bytes(a ^ b for a, b in zip(ip.packed, key))
    return struct.pack("!BBH", 0, 2, xport) + raw


def parse_xor_addr(val, tid):
    family = val[1]
    port = struct.unpack("!H", val[2:4])[0] ^ (COOKIE >> 16)
    if family == 1:
        ip = ipaddress.ip_address(struct.unpack("!I", val[4:8])[0] ^ COOKIE)
    else:
        key = struct.pack("!I", COOKIE) + tid
        ip = ipaddress.ip_address(bytes(a ^ b for a, b in zip(val[4:20], key)))
    return str(ip), port


def attr(t, v):
    pad = (4 - len(v) % 4) % 4
    return struct.pack("!HH", t, len(v)) + v + b"\0" * pad


def build(method, cls, attrs, tid=None, key=None, fingerprint=False, sha256=False):
    """A STUN message; attrs is a list of (type, bytes). key adds MESSAGE-INTEGRITY, or
    MESSAGE-INTEGRITY-SHA256 with sha256."""
    tid = tid or os.urandom(12)
    body = b"".join(attr(t, v) for t, v in attrs)
    if key is not None:
        size, digest, t = (32, hashlib.sha256, MESSAGE_INTEGRITY_SHA256) if sha256 else \
            (20, hashlib.sha1, MESSAGE_INTEGRITY)
        hdr = struct.pack("!HHI", msg_type(method, cls), len(body) + 4 + size, COOKIE) + tid
        mac = hmac.new(key, hdr + body, digest).digest()
        body += attr(t, mac)
    if fingerprint:
        hdr = struct.pack("!HHI", msg_type(method, cls), len(body) + 8, COOKIE) + tid
        crc = (binascii.crc32(hdr + body) ^ 0x5354554E) & 0xFFFFFFFF
        body += attr(FINGERPRINT, struct.pack("!I", crc))
    return struct.pack("!HHI", msg_type(method, cls), len(body), COOKIE) + tid + body, tid


class Message:
    def __init__(self, data):
        t, length, cookie = struct.unpack("!HHI", data[:8])
        if cookie != COOKIE or length + 20 != len(data):
            raise ValueError("not a STUN message")
        self.raw = data
        self.method, self.cls = split_type(t)
        self.tid = data[8:20]
        self.attrs = []
        off = 20
        while off + 4 <= len(data):
            at, al = struct.unpack("!HH", data[off:off + 4])
            self.attrs.append((at, data[off + 4:off + 4 + al], off))
            off += 4 + al + (4 - al % 4) % 4

    def get(self, t):
        for at, v, _ in self.attrs:
            if at == t:
                return v
        return None

    def all(self, t):
        return [v for at, v, _ in self.attrs if at == t]

    @property
    def code(self):
        v = self.get(ERROR_CODE)
        return None if v is None else (v[2] & 7) * 100 + v[3]

    def addr(self, t):
        v = self.get(t)
        return None if v is None else parse_xor_addr(v, self.tid)

    def check_integrity(self, key, sha256=False):
        size, digest, t = (32, hashlib.sha256, MESSAGE_INTEGRITY_SHA256) if sha256 else \
            (20, hashlib.sha1, MESSAGE_INTEGRITY)
        for at, v, off in self.attrs:
            if at == t:
                hdr = self.raw[:2] + struct.pack("!H", off + 4 + size - 20) + self.raw[4:20]
                mac = hmac.new(key, hdr + self.raw[20:off], digest).digest()
                return hmac.compare_digest(mac, v)
        return False


def rest_credentials(secret, user, lifetime=3600, now=None):
    username = "%d:%s" % (int(now if now is not None else time.time()) + lifetime, user)
    mac = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(mac).decode()


def long_term_key(username, realm, password, alg=MD5):
    h = hashlib.sha256 if alg == SHA256 else hashlib.md5
    return h(("%s:%s:%s" % (username, realm, password)).encode()).digest()


class Client:
    """One client transport (UDP socket or TCP connection) to the server."""

    def __init__(self, host, port, transport="udp", username=None, password=None, timeout=3,
                 pwalg=None, sha256=False):
        """pwalg: send PASSWORD-ALGORITHM (MD5 or SHA256, echoing the server's list) and derive
        the key with it; sha256: sign with MESSAGE-INTEGRITY-SHA256 (RFC 8489 clients)."""
        self.server = (host, port)
        self.transport = transport
        self.username = username
        self.password = password
        self.pwalg = pwalg
        self.sha256 = sha256
        self.pwalgs = None
        self.realm = None
        self.nonce = None
        self.key = None
        self.buf = b""
        if transport == "udp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.connect(self.server)
        else:
            self.sock = socket.create_connection(self.server, timeout=timeout)
        self.sock.settimeout(timeout)

    def close(self):
        self.sock.close()

    def send_raw(self, data):
        if self.transport == "udp":
            self.sock.send(data)
        else:
            self.sock.sendall(data)

    def recv_raw(self):
        """One datagram (UDP) or one frame (TCP: STUN or padded ChannelData)."""
        if self.transport == "udp":
            return self.sock.recv(65535)
        while True:
            if len(self.buf) >= 4:
                if self.buf[0] & 0xC0 == 0x40:
                    n = struct.unpack("!H", self.buf[2:4])[0]
                    total = 4 + n + (4 - n % 4) % 4
                    keep = 4 + n
                else:
                    total = keep = 20 + struct.unpack("!H", self.buf[2:4])[0]
                if len(self.buf) >= total:
                    frame, self.buf = self.buf[:keep], self.buf[total:]
                    return frame
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk

    def transact(self, method, attrs, auth=True, fingerprint=True, key=None, tid=None):
        """Send a request and return the matching response (a Message)."""
        a = list(attrs)
        k = None
        if auth and self.nonce is not None:
            a += [(USERNAME, self.username.encode()), (REALM, self.realm.encode()),
                  (NONCE, self.nonce.encode())]
            if self.pwalg is not None:
                a.append((PASSWORD_ALGORITHM, struct.pack("!HH", self.pwalg, 0)))
                if self.pwalgs is not None:
                    a.append((PASSWORD_ALGORITHMS, self.pwalgs))
            k = key or self.key
        data, tid = build(method, REQUEST, a, tid=tid, key=k, fingerprint=fingerprint,
                          sha256=self.sha256)
        self.send_raw(data)
        while True:
            raw = self.recv_raw()
            if raw[0] & 0xC0:
                continue
            m = Message(raw)
            if m.tid == tid:
                return m

    def authed(self, method, attrs):
        """A request with long-term credentials, answering a 401/438 challenge once."""
        if self.nonce is None:
            m = self.transact(method, attrs, auth=False)
            if m.code not in (401, 438):
                return m
            self._challenge(m)
        m = self.transact(method, attrs)
        if m.code in (401, 438) and m.get(NONCE):
            self._challenge(m)
            m = self.transact(method, attrs)
        return m

    def _challenge(self, m):
        self.realm = m.get(REALM).decode()
        self.nonce = m.get(NONCE).decode()
        self.pwalgs = m.get(PASSWORD_ALGORITHMS)
        self.key = long_term_key(self.username, self.realm, self.password, self.pwalg or MD5)

    def allocate(self, lifetime=None, extra=()):
        attrs = [(REQUESTED_TRANSPORT, bytes([17, 0, 0, 0]))]
        if lifetime is not None:
            attrs.append((LIFETIME, struct.pack("!I", lifetime)))
        return self.authed(ALLOCATE, attrs + list(extra))

    def create_permission(self, host, port=9):
        return self._peer_request(CREATE_PERMISSION, host, port, [])

    def _peer_request(self, method, host, port, extra):
        # XOR-PEER-ADDRESS depends on the transaction id: build the request by hand.
        tid = os.urandom(12)
        attrs = list(extra) + [(XOR_PEER_ADDRESS, xor_addr(host, port, tid))]
        m = self.transact(method, attrs, tid=tid)
        if m.code in (401, 438) and m.get(NONCE):
            self._challenge(m)
            tid = os.urandom(12)
            attrs = list(extra) + [(XOR_PEER_ADDRESS, xor_addr(host, port, tid))]
            m = self.transact(method, attrs, tid=tid)
        return m

    def channel_bind(self, channel, host, port):
        return self._peer_request(CHANNEL_BIND, host, port,
                                  [(CHANNEL_NUMBER, struct.pack("!HH", channel, 0))])

    def refresh(self, lifetime):
        return self.authed(REFRESH, [(LIFETIME, struct.pack("!I", lifetime))])

    def send_indication(self, host, port, payload):
        tid = os.urandom(12)
        data, _ = build(SEND, INDICATION, [(XOR_PEER_ADDRESS, xor_addr(host, port, tid)),
                                            (DATA_ATTR, payload)], tid=tid)
        self.send_raw(data)

    def send_channel(self, channel, payload):
        pad = b"" if self.transport == "udp" else b"\0" * ((4 - len(payload) % 4) % 4)
        self.send_raw(struct.pack("!HH", channel, len(payload)) + payload + pad)

    def binding(self):
        data, tid = build(BINDING, REQUEST, [], fingerprint=True)
        self.send_raw(data)
        while True:
            m = Message(self.recv_raw())
            if m.tid == tid:
                return m
