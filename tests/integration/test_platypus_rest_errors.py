"""The errors platypus's REST API gives at the HTTP layer, before a request reaches the API
(malformed requests, unknown paths, other methods, oversize heads and bodies), over HTTP/1.1 and
HTTP/2: the same {"reason": ...} JSON as every other error of the API, while the admin port
keeps its plain text."""

import json
import os
import socket
import sys
import unittest

import h2.config
import h2.connection
import h2.events

sys.path.insert(0, os.path.dirname(__file__))
import suite  # noqa: E402

JSON = "application/json"


def raw_http1(port, data, timeout=5):
    """Send raw bytes; returns (status, headers dict with lower-case names, body bytes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        while len(body) < n:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
        return status, headers, body[:n]


def h2_request(port, headers, body=b"", timeout=5, end=True):
    """One HTTP/2 request with prior knowledge; returns (status, headers dict, body bytes). end:
    the body is all there is (else the request stays unfinished, as an upload in progress)."""
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True,
                                                                header_encoding="utf-8"))
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        conn.initiate_connection()
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, headers, end_stream=end and not body)
        if body:
            conn.send_data(sid, body, end_stream=end)
        s.sendall(conn.data_to_send())
        status, hdrs, data = None, {}, b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            for ev in conn.receive_data(chunk):
                if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                    hdrs = dict(ev.headers)
                    status = int(hdrs[":status"])
                elif isinstance(ev, h2.events.DataReceived) and ev.stream_id == sid:
                    data += ev.data
                    conn.acknowledge_received_data(ev.flow_controlled_length, sid)
                elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)) and \
                        ev.stream_id == sid:
                    return status, hdrs, data
            s.sendall(conn.data_to_send())
        return status, hdrs, data


class RestHttpErrors(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmpdir = suite.tempdir()
        cls.admin = suite.free_port()
        cls.rest = suite.free_port()
        text = ("log:\n  level: info\nadmin:\n  listen: 127.0.0.1:%d\nshutdown_timeout: 5s\n"
                "rest:\n  enabled: true\n  listen: 127.0.0.1:%d\n  tls: false\n  max_body: 4k\n"
                % (cls.admin, cls.rest))
        cls.daemon = suite.Daemon("platypus", text, cls.tmpdir.name)
        suite.wait_http(cls.admin, daemon=cls.daemon)

    @classmethod
    def tearDownClass(cls):
        rc = cls.daemon.stop()
        out = cls.daemon.output()
        cls.daemon.close()
        cls.tmpdir.cleanup()
        for mark in suite.SANITIZER_MARKS:
            assert mark not in out, out
        assert rc == 0, out[-2000:]

    def check(self, answer, status, reason):
        # reasons from MongoosePush's list: clients built for it know no others
        got_status, headers, body = answer
        self.assertEqual(got_status, status, body)
        self.assertEqual(headers.get("content-type"), JSON, body)
        doc = json.loads(body)
        self.assertEqual(doc["reason"], reason, doc)
        self.assertTrue(doc.get("detail"), doc)
        return headers

    def test_http1(self):
        # malformed request line
        self.check(raw_http1(self.rest, b"POST /v3/notification/x HTTP/1.1 junk\r\n\r\n"),
                   400, "invalid_request")
        # a method the route does not take: 405, and Allow is kept
        h = self.check(raw_http1(self.rest, b"PUT /v3/notification/abc HTTP/1.1\r\n"
                                 b"Host: x\r\nContent-Length: 0\r\n\r\n"),
                       405, "invalid_request")
        self.assertEqual(h.get("allow"), "POST")
        # a body over rest.max_body, refused before it is read
        self.check(raw_http1(self.rest, b"POST /v3/notification/abc HTTP/1.1\r\nHost: x\r\n"
                             b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"),
                   413, "payload_too_large")
        # a head over 8 KiB
        self.check(raw_http1(self.rest, b"GET /healthcheck HTTP/1.1\r\nHost: x\r\nX-Big: " +
                             b"a" * 9000 + b"\r\n\r\n"),
                   431, "invalid_request")
        # no such path
        self.check(raw_http1(self.rest, b"GET /v2/notification HTTP/1.1\r\nHost: x\r\n\r\n"),
                   404, "invalid_request")
        # an HTTP version it does not speak
        self.check(raw_http1(self.rest, b"GET /healthcheck HTTP/2.0\r\nHost: x\r\n\r\n"),
                   505, "invalid_request")

    def test_http2(self):
        base = [(":method", "POST"), (":scheme", "http"), (":authority", "localhost"),
                (":path", "/v3/notification/abc"), ("content-type", JSON)]
        # declared too big: answered before the body, which is still coming
        self.check(h2_request(self.rest, base + [("content-length", "100000")], b"{" * 1000,
                              end=False),
                   413, "payload_too_large")
        # not declared, and too big once it has come
        self.check(h2_request(self.rest, base, b"{" * 5000), 413, "payload_too_large")
        self.check(h2_request(self.rest, base[:3] + [(":path", "/v3/notification/abc")] +
                              [("x-big", "a" * 9000)]),
                   431, "invalid_request")
        h = self.check(h2_request(self.rest, [(":method", "GET")] + base[1:]), 405,
                       "invalid_request")
        self.assertEqual(h.get("allow"), "POST")
        self.check(h2_request(self.rest, base[:3] + [(":path", "/nope")]), 404, "invalid_request")

    def test_api_errors_unchanged_and_admin_keeps_text(self):
        # what the API answers itself keeps its own reasons
        status, headers, body = raw_http1(
            self.rest, b"POST /v3/notification/abc HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
        self.assertEqual(status, 400)
        self.assertEqual(headers.get("content-type"), JSON)
        self.assertEqual(json.loads(body)["reason"], "invalid_request")
        # the admin port is not the API: its errors stay plain text
        status, headers, body = raw_http1(self.admin, b"PUT /health HTTP/1.1\r\nHost: x\r\n"
                                          b"Content-Length: 0\r\n\r\n")
        self.assertEqual(status, 405)
        self.assertTrue(headers.get("content-type", "").startswith("text/plain"))


if __name__ == "__main__":
    unittest.main()
