"""mam_query.py - archive (XEP-0313) query latency on a large SQLite archive: MAM_ROWS messages
written straight into xmpp-core's database before it starts (one user, u1, holds MAM_SHARE of
them, the rest spread over MAM_USERS others), then MAM_QUERIES queries of u1's archive, pages of
50, over one plain session: the last page, the first, a page after an id, a peer filter, a time
window. Prints the p50 and p99 of each kind and of all (ms, from the IQ sent to its result) as
one JSON line on stdout. Uses bench.py's server set-up (build/bin/xmpp-core).

Knobs: MAM_ROWS=1000000 MAM_SHARE=0.2 MAM_USERS=1000 MAM_QUERIES=500.
Run with /usr/bin/python3."""

import json
import os
import random
import socket
import sqlite3
import sys
import tempfile
import time

os.environ["ARCHIVE"] = "1"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B  # noqa: E402

ROWS = int(os.environ.get("MAM_ROWS", "1000000"))
SHARE = float(os.environ.get("MAM_SHARE", "0.2"))
USERS = int(os.environ.get("MAM_USERS", "1000"))
QUERIES = int(os.environ.get("MAM_QUERIES", "500"))
PAGE = 50


def fill(db):
    """ROWS archived messages, in time order, one a millisecond from a year ago."""
    c = sqlite3.connect(db)
    t0 = int(time.time() * 1000) - 365 * 86400 * 1000
    rnd = random.Random(1)

    def rows():
        for i in range(ROWS):
            owner = 1 if rnd.random() < SHARE else rnd.randint(2, USERS)
            peer = rnd.randint(2, 51) if owner == 1 else 1
            yield ("u%d@%s" % (owner, B.DOMAIN), "%016x" % rnd.getrandbits(64), t0 + i,
                   "u%d@%s" % (peer, B.DOMAIN), "load",
                   "<message xmlns='jabber:client' type='chat' from='u%d@%s/load' to='u%d@%s'>"
                   "<body>message %d of the archive's benchmark, a few words long</body>"
                   "</message>" % (peer, B.DOMAIN, owner, B.DOMAIN, i))
    c.executemany("INSERT INTO archive (owner, sid, stamp, with_bare, with_res, stanza) "
                  "VALUES (?, ?, ?, ?, ?, ?)", rows())
    c.commit()
    ids = [r[0] for r in c.execute("SELECT sid FROM archive WHERE owner = ? ORDER BY stamp",
                                   ("u1@" + B.DOMAIN,))]
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()
    return t0, ids


class Session:
    def __init__(self, port, user, password):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buf = b""
        import base64
        self.open()
        self.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>"
                  % base64.b64encode(("\0%s\0%s" % (user, password)).encode()).decode())
        self.until(b"<success")
        self.buf = b""
        self.open()
        self.send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
        self.until(b"</iq>")
        self.buf = b""

    def send(self, s):
        self.sock.sendall(s.encode())

    def open(self):
        self.send("<?xml version='1.0'?><stream:stream to='%s' version='1.0' xmlns='jabber:client'"
                  " xmlns:stream='http://etherx.jabber.org/streams'>" % B.DOMAIN)
        self.until(b"</stream:features>")

    def until(self, marker):
        while marker not in self.buf:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise RuntimeError("the server closed the stream: %r" % self.buf[-300:])
            self.buf += chunk
        head, _, self.buf = self.buf.partition(marker)
        return head

    def query(self, qid, fields="", rsm=""):
        form = ("<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>"
                "<value>urn:xmpp:mam:2</value></field>%s</x>" % fields) if fields else ""
        t = time.perf_counter()
        self.send("<iq type='set' id='%s'><query xmlns='urn:xmpp:mam:2' queryid='%s'>%s"
                  "<set xmlns='http://jabber.org/protocol/rsm'><max>%d</max>%s</set></query></iq>"
                  % (qid, qid, form, PAGE, rsm))
        got = self.until(("</iq>").encode())
        ms = (time.perf_counter() - t) * 1000
        if b"type='error'" in got[got.rfind(b"<iq"):] or got.count(b"<result") == 0:
            raise RuntimeError("query %s failed: %r" % (qid, got[-300:]))
        return ms, got.count(b"<result")


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def main():
    rnd = random.Random(2)
    with tempfile.TemporaryDirectory(prefix="xmpp-core-mam-") as wd:
        os.chmod(wd, 0o755)
        cert, key = B.make_cert(wd)
        s = B.XmppCore(wd, cert, key)
        s.start()
        try:
            s.register(1, 2)
        finally:
            s.stop()
        db = os.path.join(s.dir, "xmpp-core.db")
        t = time.monotonic()
        t0, ids = fill(db)
        B.chown_tree(s.dir, B.RUN_USER)
        B.log("mam: %d messages written in %.0f s, %d of them u1's" % (ROWS, time.monotonic() - t,
                                                                       len(ids)))
        s.start()
        try:
            c = Session(s.port, "u1", "pw1")
            kinds = {"last page": lambda: ("", "<before/>"),
                     "first page": lambda: ("", ""),
                     "after an id": lambda: ("", "<after>%s</after>" % rnd.choice(ids[:-PAGE])),
                     "one peer": lambda: ("<field var='with'><value>u%d@%s</value></field>"
                                          % (rnd.randint(2, 51), B.DOMAIN), "<before/>"),
                     "a day": lambda: ("<field var='start'><value>%s</value></field>"
                                       % time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(
                                           (t0 + rnd.randint(0, max(ROWS - 86400000, 0))) / 1000)), "")}
            lat = {k: [] for k in kinds}
            for i in range(QUERIES):
                k = list(kinds)[i % len(kinds)]
                fields, rsm = kinds[k]()
                ms, n = c.query("q%d" % i, fields, rsm)
                lat[k].append(ms)
            every = [x for v in lat.values() for x in v]
            out = {"rows": ROWS, "owner_rows": len(ids), "queries": QUERIES, "page": PAGE,
                   "p50_ms": pct(every, 0.5), "p99_ms": pct(every, 0.99),
                   "kinds": {k: {"p50_ms": pct(v, 0.5), "p99_ms": pct(v, 0.99)}
                             for k, v in lat.items()}}
            B.log("mam: %s" % json.dumps(out))
            print(json.dumps(out))
        finally:
            s.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
