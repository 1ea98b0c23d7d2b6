"""xmpp-core's HTTP File Upload (XEP-0363), with a real client: slixmpp finds the service
through the server's disco#items, asks for a slot and PUTs the file over HTTPS with aiohttp
(what a phone does to send a photo); anyone with the link fetches it, with its type and the
headers that keep a browser from running it. Refused precisely: files over the size limit
(with the limit), bad names and sizes, the daily quota (with when to try again), PUTs of
another size, type or name, altered or expired URLs, a second PUT; unknown and traversing paths
are not found. Files outlive a restart and go after upload.expire_after."""

import http.client
import io
import os
import ssl
import subprocess
import sys
import time
import unittest
import urllib.parse
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(__file__))
import suite  # noqa: E402
import xmpp  # noqa: E402
from test_xmpp_core_components import Component  # noqa: E402
from xmpp import logout, run  # noqa: E402


PW = "correct horse"
NS = "urn:xmpp:http:upload:0"
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
DISCO_INFO = "http://jabber.org/protocol/disco#info"
SERVICE = "upload.localhost"
PHOTO = os.urandom(40000)


async def login(server, jid):
    c = await xmpp.login(server, jid, PW)
    c.register_plugin("xep_0363")
    return c


def fetch(server, url, method="GET", body=None, headers=None):
    """(status, headers, body) of one HTTPS request to url, trusting the test's certificate."""
    u = urllib.parse.urlsplit(url)
    ctx = ssl.create_default_context(cafile=server.cert)
    c = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=15)
    try:
        c.request(method, u.path + ("?" + u.query if u.query else ""), body=body,
                  headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


async def slot(c, name, size, ctype="image/png"):
    """The (put, get) URLs of a slot."""
    iq = await c["xep_0363"].request_slot(SERVICE, name, size, ctype, timeout=10)
    s = iq.xml.find("{%s}slot" % NS)
    return s.find("{%s}put" % NS).get("url"), s.find("{%s}get" % NS).get("url")


async def refusal(coro):
    """(condition, text, the upload-specific element or None) of a refused request."""
    err, cond = await xmpp.refused(coro)
    app = [ch for ch in err if ch.tag.startswith("{%s}" % NS)]
    return cond, err.findtext("{%s}text" % STANZAS), (app[0] if app else None)


async def raw_request(c, attrs):
    iq = c.make_iq_get(ito=SERVICE)
    iq.append(ET.fromstring("<request xmlns='%s' %s/>" % (NS, attrs)))
    return await iq.send(timeout=10)


def reply_to(k, iq_id, timeout=5):
    """The answer to the IQ iq_id a raw component connection k sent, from its id to </iq>."""
    start = k.until("id='%s'" % iq_id).index("id='%s'" % iq_id)
    deadline = time.monotonic() + timeout
    while "</iq>" not in k.buf.decode(errors="replace")[start:]:
        if time.monotonic() > deadline:
            raise AssertionError("no whole answer to %s: %r" % (iq_id, k.buf[start:]))
        k.sock.settimeout(0.5)
        chunk = k.sock.recv(65536)
        if not chunk:
            break
        k.buf += chunk
    return k.buf.decode(errors="replace")[start:].split("</iq>")[0]


class Base(xmpp.ServerCase):
    more = ""

    def setUp(self):
        self.port = suite.free_port()
        self.extra = ("upload:\n  enabled: true\n  listen: [\"127.0.0.1:%d\"]\n"
                      "  max_file_size: 64k\n  daily_quota: 200k\n" % self.port) + self.more
        super().setUp()
        self.alice = self.srv.register("alice", PW)
        self.bob = self.srv.register("bob", PW)
        # aiohttp (slixmpp's uploads) trusts what OpenSSL's default paths say
        os.environ["SSL_CERT_FILE"] = self.srv.cert

    def tearDown(self):
        os.environ.pop("SSL_CERT_FILE", None)
        super().tearDown()

    def ctl(self, *args):
        env = dict(os.environ, XMPPCTL_URL="http://127.0.0.1:%d" % self.srv.admin,
                   XMPPCTL_TOKEN_FILE=self.srv.token_file)
        return subprocess.run([os.path.join(suite.BIN, "xmppctl")] + list(args),
                              capture_output=True, text=True, env=env, timeout=30)

    def metric(self, name, result):
        return self.srv.metric(name, {"result": result})


class Upload(Base):
    def test_a_photo_sent_and_fetched(self):
        async def go():
            a = await login(self.srv, self.alice + "/phone")
            # found as a client finds it: an item of the server with the feature
            items = await a["xep_0030"].get_items(jid="localhost")
            self.assertIn(SERVICE, [i[0] for i in items["disco_items"]["items"]])
            info = await a["xep_0030"].get_info(jid=SERVICE)
            q = info.xml.find("{%s}query" % DISCO_INFO)
            self.assertIn(NS, [f.get("var") for f in q.findall("{%s}feature" % DISCO_INFO)])
            ident = q.find("{%s}identity" % DISCO_INFO)
            self.assertEqual((ident.get("category"), ident.get("type")), ("store", "file"))
            self.assertIn("<value>65536</value>", str(info))
            # slixmpp's whole upload: discovery, slot, PUT with aiohttp
            # (slixmpp 1.8's own discovery trips on Python 3.11's asyncio.wait: it is told)
            a["xep_0363"].upload_service = SERVICE
            a["xep_0363"].max_file_size = 65536
            url = await a["xep_0363"].upload_file("holiday photo ü.png", size=len(PHOTO),
                                                  content_type="image/png",
                                                  input_file=io.BytesIO(PHOTO),
                                                  domain="localhost", timeout=15)
            self.assertTrue(url.startswith("https://localhost:%d/upload/" % self.port), url)
            self.assertTrue(url.endswith("/holiday%20photo%20%C3%BC.png"), url)
            await logout(a)
            return url
        url = run(go())
        status, h, body = fetch(self.srv, url)
        self.assertEqual(status, 200)
        self.assertEqual(body, PHOTO)
        self.assertEqual(h["content-type"], "image/png")
        self.assertEqual(h["x-content-type-options"], "nosniff")
        self.assertIn("sandbox", h["content-security-policy"])
        self.assertEqual(h["content-disposition"], "inline")
        status, h, body = fetch(self.srv, url, "HEAD")
        self.assertEqual((status, h["content-length"], body), (200, str(len(PHOTO)), b""))
        self.assertEqual(h["accept-ranges"], "bytes")
        # a download cut short goes on where it stopped (one range, RFC 9110 14)
        for rng, want, part in (("bytes=1000-1999", 206, PHOTO[1000:2000]),
                                ("bytes=39000-", 206, PHOTO[39000:]),
                                ("bytes=-10", 206, PHOTO[-10:]),
                                ("bytes=0-9,20-29", 200, PHOTO),
                                ("bytes=40000-", 416, b"")):
            status, h, body = fetch(self.srv, url, headers={"Range": rng})
            self.assertEqual((status, body), (want, part), rng)
        self.assertEqual(h["content-range"], "bytes */%d" % len(PHOTO))
        status, h, _ = fetch(self.srv, url, headers={"Range": "bytes=1000-1999"})
        self.assertEqual(h["content-range"], "bytes 1000-1999/%d" % len(PHOTO))
        # the same file after a restart (the slots' key is new, the links stay)
        self.srv.restart()
        self.assertEqual(fetch(self.srv, url)[2], PHOTO)
        self.assertEqual(self.metric("xmpp_upload_slots_total", "ok"), 0)  # a new process
        self.assertEqual(self.metric("xmpp_upload_gets_total", "ok"), 1)  # since the restart
        # taken down by the operator (abuse): by its link, at once; then it is not there
        r = self.ctl("upload-delete", url)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("removed", r.stdout)
        self.assertEqual(fetch(self.srv, url)[0], 404)
        r = self.ctl("upload-delete", url)
        self.assertEqual(r.returncode, 1)
        self.assertIn("no such file", r.stderr)
        r = self.ctl("upload-delete", "not-a-slot")
        self.assertEqual(r.returncode, 1)
        self.assertIn("not a slot id", r.stderr)
        self.assertEqual(self.srv.api("GET", "uploads/" + "A" * 24)[0], 405)

    def test_refusals(self):
        async def go():
            a = await login(self.srv, self.alice + "/phone")
            # over the limit: the limit is said
            cond, _, app = await refusal(a["xep_0363"].request_slot(SERVICE, "big.bin", 65537))
            self.assertEqual(cond, "not-acceptable")
            self.assertEqual(app.tag, "{%s}file-too-large" % NS)
            self.assertEqual(app.findtext("{%s}max-file-size" % NS), "65536")
            # names, sizes and types that cannot be
            for attrs, why in (("filename='../etc/passwd' size='10'", "name"),
                               ("filename='..' size='10'", "name"),
                               ("filename='' size='10'", "name"),
                               ("filename='x.png' size='0'", "empty"),
                               ("filename='x.png' size='-5'", "size"),
                               ("filename='x.png' size='ten'", "size"),
                               ("filename='x.png'", "size"),
                               ("filename='x.png' size='10' content-type='image/png&#10;'",
                                "type"),
                               ("filename='x.png' size='10' content-type='text/html; x=1'",
                                "type")):
                try:
                    cond, text, _ = await refusal(raw_request(a, attrs))
                except AssertionError:
                    raise AssertionError("not refused: " + attrs)
                self.assertEqual(cond, "bad-request", attrs)
                self.assertIn(why, text, attrs)
            # a slot is asked with a get
            iq = a.make_iq_set(ito=SERVICE)
            iq.append(ET.fromstring("<request xmlns='%s' filename='x' size='1'/>" % NS))
            self.assertEqual((await refusal(iq.send(timeout=10)))[0], "bad-request")

            put, get = await slot(a, "note.txt", 5, "text/plain")
            hdr = {"Content-Type": "text/plain"}
            # another size, type, name; an altered signature; an expired URL
            self.assertEqual(fetch(self.srv, put, "PUT", b"12345678", hdr)[0], 403)
            self.assertEqual(fetch(self.srv, put, "PUT", b"12345",
                                   {"Content-Type": "text/html"})[0], 403)
            self.assertEqual(fetch(self.srv, put.replace("note.txt", "note.html"), "PUT",
                                   b"12345", hdr)[0], 403)
            sig = urllib.parse.parse_qs(urllib.parse.urlsplit(put).query)["s"][0]
            self.assertEqual(fetch(self.srv, put.replace(sig, sig[::-1]), "PUT", b"12345",
                                   hdr)[0], 403)
            e = urllib.parse.parse_qs(urllib.parse.urlsplit(put).query)["e"][0]
            status, _, body = fetch(self.srv, put.replace("e=" + e, "e=1000"), "PUT", b"12345",
                                    hdr)
            self.assertEqual(status, 403)
            self.assertIn(b"expired", body)
            self.assertEqual(fetch(self.srv, get)[0], 404)  # nothing kept by any of those
            # refused from the head alone, before the body is sent (a client without a slot
            # cannot make the listener hold a file's worth of memory): a 60 KB PUT that
            # waits for "100 Continue" hears 403 at once; one without Content-Length, 411
            u = urllib.parse.urlsplit(put)
            ctx = ssl.create_default_context(cafile=self.srv.cert)
            for headers, want in (({"Content-Length": "60000", "Expect": "100-continue",
                                    "Content-Type": "text/plain"}, 403),
                                  ({"Transfer-Encoding": "chunked",
                                    "Content-Type": "text/plain"}, 411)):
                c = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=5)
                c.putrequest("PUT", u.path + "?" + u.query, skip_accept_encoding=True)
                for k, v in headers.items():
                    c.putheader(k, v)
                c.endheaders()
                r = c.getresponse()
                self.assertEqual(r.status, want)
                self.assertIn(b"Content-Length" if want == 411 else b"another file", r.read())
                c.close()
            # the real one, once
            self.assertEqual(fetch(self.srv, put, "PUT", b"hello", hdr)[0], 201)
            self.assertEqual(fetch(self.srv, put, "PUT", b"hello", hdr)[0], 409)
            status, h, body = fetch(self.srv, get)
            self.assertEqual((status, body, h["content-disposition"]),
                             (200, b"hello", "attachment"))
            # paths that are not files
            base = "https://localhost:%d" % self.port
            for path in ("/upload/", "/upload/../../etc/passwd", "/upload/%2e%2e/xmpp-core.db",
                         "/upload/AAAAAAAAAAAAAAAAAAAAAAAA/x", get[len(base):] + "x",
                         "/elsewhere"):
                self.assertEqual(fetch(self.srv, base + path)[0], 404, path)
            # a slot without a type: any type is taken, served as bytes
            res = await raw_request(a, "filename='blob' size='3'")
            s = res.xml.find("{%s}slot" % NS)
            put, get = s.find("{%s}put" % NS).get("url"), s.find("{%s}get" % NS).get("url")
            self.assertEqual(fetch(self.srv, put, "PUT", b"abc",
                                   {"Content-Type": "image/svg+xml"})[0], 201)
            self.assertEqual(fetch(self.srv, get)[1]["content-type"], "application/octet-stream")
            # the quota: 200 KiB of slots a day; bob's is his own
            for _ in range(3):
                await slot(a, "part.bin", 60000)
            cond, text, app = await refusal(a["xep_0363"].request_slot(SERVICE, "more.bin",
                                                                       60000))
            self.assertEqual(cond, "resource-constraint")
            self.assertIn("quota", text)
            retry = time.strptime(app.get("stamp"), "%Y-%m-%dT%H:%M:%SZ")
            self.assertGreater(time.mktime(retry) - time.mktime(time.gmtime()), 86000)
            b = await login(self.srv, self.bob + "/pc")
            await slot(b, "his.bin", 60000)
            await logout(a, b)
        run(go())
        self.assertEqual(self.metric("xmpp_upload_slots_total", "too_large"), 1)
        self.assertEqual(self.metric("xmpp_upload_slots_total", "bad_request"), 9)
        self.assertEqual(self.metric("xmpp_upload_slots_total", "quota"), 1)
        self.assertEqual(self.metric("xmpp_upload_puts_total", "bad_signature"), 5)
        self.assertEqual(self.metric("xmpp_upload_puts_total", "bad_url"), 1)  # the 411
        self.assertEqual(self.metric("xmpp_upload_puts_total", "expired"), 1)
        self.assertEqual(self.metric("xmpp_upload_puts_total", "exists"), 1)
        self.assertEqual(self.metric("xmpp_upload_puts_total", "ok"), 2)

    def test_http2(self):
        """curl over HTTP/2 (ALPN h2), as a browser or a phone's HTTP stack may."""
        async def go():
            a = await login(self.srv, self.alice + "/phone")
            urls = await slot(a, "report.pdf", 5000, "application/pdf")
            await logout(a)
            return urls
        put, get = run(go())
        src, dst = os.path.join(self.tmp, "src"), os.path.join(self.tmp, "dst")
        with open(src, "wb") as f:
            f.write(os.urandom(5000))
        curl = ["curl", "-sS", "--http2", "--cacert", self.srv.cert,
                "-w", "%{http_version} %{http_code}"]
        r = subprocess.run(curl + ["-X", "PUT", "-H", "Content-Type: application/pdf",
                                   "--data-binary", "@" + src, put], capture_output=True, text=True)
        self.assertTrue(r.stdout.endswith("2 201"), (r.stdout, r.stderr))
        r = subprocess.run(curl + ["-o", dst, get], capture_output=True, text=True)
        self.assertEqual(r.stdout, "2 200", r.stderr)
        with open(src, "rb") as a, open(dst, "rb") as b:
            self.assertEqual(a.read(), b.read())
        # HEAD over HTTP/2: the length, no body
        r = subprocess.run(curl + ["-I", get], capture_output=True, text=True)
        self.assertTrue(r.stdout.endswith("2 200"), (r.stdout, r.stderr))
        self.assertIn("\ncontent-length: 5000\n", r.stdout.lower())

    def test_only_local_users_and_iqs(self):
        async def go():
            a = await login(self.srv, self.alice + "/phone")
            # a message to the service is dropped; an unknown IQ is service-unavailable
            a.send_message(mto=SERVICE, mbody="hello?")
            iq = a.make_iq_get(ito=SERVICE)
            iq.append(ET.fromstring("<query xmlns='jabber:iq:version'/>"))
            self.assertEqual((await refusal(iq.send(timeout=10)))[0], "service-unavailable")
            iq = a.make_iq_get(ito="someone@" + SERVICE)
            iq.append(ET.fromstring("<request xmlns='%s' filename='x' size='1'/>" % NS))
            self.assertEqual((await refusal(iq.send(timeout=10)))[0], "service-unavailable")
            await logout(a)
        run(go())
        # a component is not one of this server's users, nor is anyone at its domain
        k = self.keep(Component(self.srv.comp))
        k.until("<handshake/>")
        for i, sender in enumerate(("push.localhost", "bot@push.localhost/x")):
            k.send("<iq type='get' id='c%d' from='%s' to='%s'><request xmlns='%s' filename='x' "
                   "size='1'/></iq>" % (i, sender, SERVICE, NS))
            self.assertIn("<forbidden", reply_to(k, "c%d" % i))
        self.assertEqual(self.metric("xmpp_upload_slots_total", "refused"), 2)
        self.assertEqual(self.metric("xmpp_upload_slots_total", "ok"), 0)


class Off(xmpp.ServerCase):
    """upload.enabled false (the default): no service, no route."""

    def test_off(self):
        self.srv.register("alice", PW)

        async def go():
            a = await login(self.srv, "alice@localhost/phone")
            items = await a["xep_0030"].get_items(jid="localhost")
            self.assertNotIn(SERVICE, [i[0] for i in items["disco_items"]["items"]])
            cond, _, _ = await refusal(a["xep_0363"].request_slot(SERVICE, "x.png", 10))
            self.assertEqual(cond, "remote-server-not-found")
            await logout(a)
        run(go())
        status, body = self.srv.api("DELETE", "uploads/" + "A" * 24)
        self.assertEqual(status, 409)
        self.assertIn("upload.enabled", body["error"])


class DiskFull(Base):
    more = "  min_free_space: 1000000G\n"  # more than this machine has free

    def test_no_room(self):
        async def go():
            a = await login(self.srv, self.alice + "/phone")
            cond, text, _ = await refusal(a["xep_0363"].request_slot(SERVICE, "x.png", 10))
            self.assertEqual(cond, "resource-constraint")
            self.assertIn("no room", text)
            await logout(a)
        run(go())
        self.assertEqual(self.metric("xmpp_upload_slots_total", "disk_full"), 1)
        self.assertEqual(self.metric("xmpp_upload_slots_total", "ok"), 0)


class Expiry(Base):
    more = "  expire_after: 1s\n"

    def test_files_go(self):
        async def go():
            a = await login(self.srv, self.alice + "/phone")
            put, get = await slot(a, "short.txt", 4, "text/plain")
            await logout(a)
            return put, get
        put, get = run(go())
        self.assertEqual(fetch(self.srv, put, "PUT", b"gone", {"Content-Type": "text/plain"})[0],
                         201)
        self.assertEqual(fetch(self.srv, get)[2], b"gone")
        # what a crash in the middle of a PUT leaves: gone once an hour old
        uploads = os.path.join(self.tmp, "uploads")
        for name, age in ((".old.part", 7200), (".new.part", 0)):
            with open(os.path.join(uploads, name), "wb") as f:
                f.write(b"half")
            os.utime(os.path.join(uploads, name), (time.time() - age, time.time() - age))
        time.sleep(1.2)
        # the sweep runs at start, then hourly
        self.srv.restart()
        for _ in range(50):
            if fetch(self.srv, get)[0] == 404:
                break
            time.sleep(0.1)
        self.assertEqual(fetch(self.srv, get)[0], 404)
        self.assertEqual(os.listdir(uploads), [".new.part"])
        self.assertEqual(self.srv.metric("xmpp_upload_expired_total"), 1)


if __name__ == "__main__":
    unittest.main()
