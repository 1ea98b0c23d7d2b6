"""push_latency.py - how long a message to a user who is away takes to become a request at APNs:
from the moment a sender writes the message to xmpp-core to the moment the mock APNs
(build/bin/apns-mock --arrivals) has read the whole request platypus made of it.

Set-up, all release builds from build/bin, on loopback:
  apns-mock   the C mock APNs (strict about the path, the provider token, the headers and the
              payload size); --arrivals logs each request's wall-clock arrival and device token
  platypus    one APNs app pointing at the mock; the XEP-0114 component push.localhost of
              xmpp-core ("component" path), or its REST API over TLS ("rest" path: xmpp-core's
              push.rest POSTs to https://127.0.0.1:PORT/v3/notification/DEVICE)
  xmpp-core   USERS accounts u0..u{USERS-1}, each with one push registration (its own device
              token, topic com.example.app); push.privacy none (the default), push.coalesce 2s
              (the default), push.rewake 0s (no second push within the run)
The registrations: u0's is made by a real client (an <enable/> IQ after a SASL PLAIN login);
the server is stopped, and the other accounts and registrations are written into its SQLite
store as copies of u0's rows (same password hash, the device token replaced), which takes a
second where 10,000 logins and IQs would take minutes. The server then starts on that store.

Load: SENDERS sessions (asyncio, plain TCP on loopback, SASL PLAIN) send RATE chat messages/s
for SECONDS, paced every millisecond, message i to u{i mod USERS}: with USERS/RATE longer than
push.coalesce each message is the first of its burst and is pushed at once, so each push is
matched to the message it stands for by the recipient's device token (the n-th push to a token
with the n-th message to its user). The send time is taken just before the write.

Per path and round: p50/p99/max latency, pushes received (answered 200) against expected,
CPU (utime + stime) of xmpp-core and of platypus over the round divided by the pushes (for
xmpp-core that includes taking the message in and storing it offline). Rounds alternate the
paths; the report gives the medians over rounds. Prints one JSON line per path and round on
stdout; with --doc, writes the push section of docs/benchmarks.md (bench/push/report.py).

Knobs (environment): PUSH_USERS=10000 PUSH_RATE=1000 PUSH_SECONDS=10 PUSH_ROUNDS=3
PUSH_SENDERS=4 PUSH_PATHS=component,rest PUSH_DRAIN=30 KEEP=1 (keep the work directory, with
the arrivals and the send times) PUSH_PLATYPUS_LOG=warn (platypus's log level).
QUICK=1: PUSH_USERS=3000 PUSH_SECONDS=3 PUSH_ROUNDS=1 unless set.
Run with /usr/bin/python3; only the standard library is used."""

import asyncio
import base64
import http.client
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.abspath(os.path.join(HERE, "..", ".."))
BIN = os.environ.get("SUITE_BIN") or os.path.join(TOP, "build", "bin")
KEYS = os.path.join(TOP, "tests", "mock", "keys")
sys.path.insert(0, os.path.join(TOP, "bench", "xmpp-core"))
import bench as B  # noqa: E402  (free_port, wait_port, tree, proc_cpu, http_bulk)

QUICK = os.environ.get("QUICK") == "1"


def knob(name, full, quick):
    return int(os.environ.get(name, quick if QUICK else full))


USERS = knob("PUSH_USERS", 10000, 3000)
RATE = knob("PUSH_RATE", 1000, 1000)
SECONDS = knob("PUSH_SECONDS", 10, 3)
ROUNDS = knob("PUSH_ROUNDS", 3, 1)
SENDERS = knob("PUSH_SENDERS", 4, 4)
DRAIN = knob("PUSH_DRAIN", 30, 30)
PP_LOG = os.environ.get("PUSH_PLATYPUS_LOG", "warn")  # platypus's log level, to look closer
WARM = 100  # warm-up users u{USERS}.., one message each over a second before the measured load
PATHS = os.environ.get("PUSH_PATHS", "component,rest").split(",")
COALESCE_S = 2.0
DOMAIN = "localhost"
APP = "push.localhost"
TOPIC = "com.example.app"
PW = "bench-password"


def log(msg):
    print("bench/push: " + msg, file=sys.stderr, flush=True)


def token_of(i):
    """The device token of user i: 64 hex digits, distinct per user."""
    return ("%08x" % i) * 8


# --- a minimal XMPP client (plain TCP on loopback, SASL PLAIN) ---------------------------------

class Client:
    """One c2s session. until() waits for a string in what the server sent since the last
    consume(); during the load a reader task only counts error stanzas."""

    def __init__(self):
        self.buf = ""
        self.errors = 0
        self.reader_task = None

    async def connect(self, port, user):
        self.r, self.w = await asyncio.open_connection("127.0.0.1", port)
        await self.open_stream()
        plain = base64.b64encode(("\0%s\0%s" % (user, PW)).encode()).decode()
        self.w.write(("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s"
                      "</auth>" % plain).encode())
        got = await self.until(("<success", "<failure"))
        if "<failure" in got:
            raise RuntimeError("%s: SASL PLAIN refused: %s" % (user, got[-300:]))
        self.consume()
        await self.open_stream()
        self.w.write(b"<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
                     b"</iq>")
        await self.until(("</iq>",))
        self.consume()
        return self

    async def open_stream(self):
        self.w.write(("<?xml version='1.0'?><stream:stream to='%s' xmlns='jabber:client' "
                      "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
                      % DOMAIN).encode())
        await self.until(("</stream:features>",))
        self.consume()

    async def until(self, marks, timeout=30):
        deadline = time.monotonic() + timeout
        while not any(m in self.buf for m in marks):
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError("no %s from the server: %s" % (marks, self.buf[-300:]))
            data = await asyncio.wait_for(self.r.read(65536), left)
            if not data:
                raise RuntimeError("the server closed: %s" % self.buf[-300:])
            self.buf += data.decode()
        return self.buf

    def consume(self):
        self.buf = ""

    def start_reader(self):
        async def read():
            while True:
                data = await self.r.read(65536)
                if not data:
                    return
                self.errors += data.count(b"type='error'") + data.count(b'type="error"')
        self.reader_task = asyncio.ensure_future(read())

    async def close(self):
        self.w.write(b"</stream:stream>")
        try:
            await asyncio.wait_for(self.w.drain(), 5)
            if self.reader_task:
                await asyncio.wait_for(self.reader_task, 10)
        except (asyncio.TimeoutError, OSError):
            pass
        self.w.close()


def publish_options(token):
    return ("<x xmlns='jabber:x:data' type='submit'>"
            "<field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options"
            "</value></field><field var='service'><value>apns</value></field>"
            "<field var='device_id'><value>%s</value></field>"
            "<field var='topic'><value>%s</value></field></x>" % (token, TOPIC))


async def enable_push(port):
    """u0 enables push with its token, as an app does; the row the copies are made from."""
    c = await Client().connect(port, "u0")
    c.w.write(("<iq type='set' id='e1'><enable xmlns='urn:xmpp:push:0' jid='%s' node='node-0'>"
               "%s</enable></iq>" % (APP, publish_options(token_of(0)))).encode())
    got = await c.until(("id='e1'", 'id="e1"'))
    await c.until(("</iq>", "/>"))
    if "type='result'" not in c.buf and 'type="result"' not in c.buf:
        raise RuntimeError("enable refused: %s" % got[-300:])
    await c.close()


async def send_load(port, sends, mark):
    """SENDERS sessions send RATE messages/s for SECONDS to u{i mod USERS}; sends[user] gets
    each message's send time (wall clock, microseconds). Returns (sent, error stanzas, lag):
    lag is how far behind its schedule the pacing loop fell at most, in ms. mark() runs after
    the warm-up, right before the measured load."""
    clients = [await Client().connect(port, "s%d" % k) for k in range(SENDERS)]
    for c in clients:
        c.start_reader()
    # the warm-up: platypus's connection to APNs (and curl's to platypus) open, not measured
    for k in range(WARM):
        clients[k % SENDERS].w.write(("<message to='u%d@%s' type='chat'><body>warm-up</body>"
                                      "</message>" % (USERS + k, DOMAIN)).encode())
        await asyncio.sleep(1.0 / WARM)
    await asyncio.sleep(1)
    mark()
    total, i, lag = RATE * SECONDS, 0, 0.0
    t0 = time.monotonic()
    while i < total:
        now = time.monotonic()
        due = min(total, int((now - t0) * RATE) + 1)
        if due - i > 1:
            lag = max(lag, (now - t0 - i / RATE) * 1000)
        while i < due:
            user = i % USERS
            c = clients[i % SENDERS]
            stanza = ("<message to='u%d@%s' type='chat' id='m%d'><body>bench %d</body></message>"
                      % (user, DOMAIN, i, i)).encode()
            sends.setdefault(user, []).append(time.time_ns() // 1000)
            c.w.write(stanza)
            i += 1
        await asyncio.sleep(0.001)
    for c in clients:
        await c.w.drain()
    await asyncio.sleep(1)
    errors = sum(c.errors for c in clients)
    for c in clients:
        await c.close()
    return total, errors, lag


# --- processes ----------------------------------------------------------------------------------

class Proc:
    def __init__(self, name, args, workdir):
        self.name = name
        self.out_path = os.path.join(workdir, "%s.out" % name)
        self.out = open(self.out_path, "a")
        self.proc = subprocess.Popen(args, stdout=self.out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=workdir)

    def cpu(self):
        return B.proc_cpu(B.tree(self.proc.pid))

    def tail(self, n=1500):
        with open(self.out_path) as f:
            return f.read()[-n:]

    def stop(self):
        """SIGTERM; the exit status (the mock prints its counters then)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()
        return self.proc.returncode


def metrics(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode()
    finally:
        c.close()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            try:
                out[k] = out.get(k, 0) + float(v)
            except ValueError:
                pass
    return out


def metric_sum(m, name):
    return sum(v for k, v in m.items() if k == name or k.startswith(name + "{"))


def wait_for(what, check, timeout, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.proc.poll() is not None:
            raise RuntimeError("%s exited: %s" % (proc.name, proc.tail()))
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("timed out waiting for " + what)


class Bench:
    def __init__(self, workdir):
        self.dir = workdir
        self.admin, self.c2s, self.comp = B.free_port(), B.free_port(), B.free_port()
        self.pp_admin, self.rest = B.free_port(), B.free_port()
        self.secret = os.path.join(workdir, "comp.secret")
        with open(self.secret, "w") as f:
            f.write(os.urandom(16).hex() + "\n")
        self.api_token = os.path.join(workdir, "api.token")
        with open(self.api_token, "w") as f:
            f.write(os.urandom(24).hex() + "\n")
        self.db = os.path.join(workdir, "xmpp-core.db")

    def xmpp_core_yaml(self, path):
        rest = ""
        if path == "rest":
            rest = ("  rest:\n    - host: %s\n      url: https://127.0.0.1:%d/\n"
                    "      ca_file: %s/ca.pem\n" % (DOMAIN, self.rest, KEYS))
        return """# generated by bench/push/push_latency.py
log:
  level: warn
admin:
  listen: 127.0.0.1:%(admin)d
tls:
  certificate: %(keys)s/server.pem
  key: %(keys)s/server.key
hosts: [%(domain)s]
workers: 0
c2s:
  listen: ["127.0.0.1:%(c2s)d"]
  tls_listen: []
  require_tls: false
  plain_cleartext: true
  connections_per_source: 0
  rate: 0
storage:
  path: %(db)s
api_token: %(token)s
websocket:
  listen: []
archive:
  enabled: false
components:
  listen: ["127.0.0.1:%(comp)d"]
  list:
    - domain: %(app)s
      secret: %(secret)s
push:
  privacy: none
  coalesce: 2s
  rewake: 0s
%(rest)s""" % {"admin": self.admin, "keys": KEYS, "domain": DOMAIN, "c2s": self.c2s,
               "db": self.db, "token": self.api_token, "comp": self.comp, "app": APP,
               "secret": self.secret, "rest": rest}

    def platypus_yaml(self, path, mock_port):
        if path == "rest":
            front = """rest:
  enabled: true
  listen: 127.0.0.1:%d
  tls: true
tls:
  certificate: %s/server.pem
  key: %s/server.key
""" % (self.rest, KEYS, KEYS)
        else:
            front = """component:
  enabled: true
  server: 127.0.0.1:%d
  domain: %s
  secret: %s
  reconnect_min: 50ms
  reconnect_max: 200ms
""" % (self.comp, APP, self.secret)
        return """# generated by bench/push/push_latency.py
log:
  level: %s
admin:
  listen: 127.0.0.1:%d
shutdown_timeout: 5s
dispatch:
  queue_max: 100000
%sapns:
  - name: bench
    mode: prod
    topic: %s
    key: %s/AuthKey_ABC123DEFG.p8
    key_id: ABC123DEFG
    team_id: DEF123GHIJ
    host: 127.0.0.1
    port: %d
    ca_file: %s/ca.pem
""" % (PP_LOG, self.pp_admin, front, TOPIC, KEYS, mock_port, KEYS)

    def start_xmpp_core(self, path):
        cfg = os.path.join(self.dir, "xmpp-core-%s.yaml" % path)
        with open(cfg, "w") as f:
            f.write(self.xmpp_core_yaml(path))
        p = Proc("xmpp-core", [os.path.join(BIN, "xmpp-core"), "-c", cfg], self.dir)
        if not B.wait_port(self.admin, p.proc, 60) or not B.wait_port(self.c2s, p.proc, 10):
            p.stop()
            raise RuntimeError("xmpp-core did not start: %s" % p.tail())
        return p

    def start_mock(self, arrivals):
        name = "apns-mock-" + os.path.basename(arrivals).split(".")[0].split("-", 1)[1]
        p = Proc(name, [os.path.join(BIN, "apns-mock"), "--port", "0", "--threads", "1",
                               "--cert", os.path.join(KEYS, "server.pem"),
                               "--key", os.path.join(KEYS, "server.key"),
                               "--public-key", os.path.join(KEYS, "AuthKey_ABC123DEFG.pub.pem"),
                               "--arrivals", arrivals], self.dir)
        port = []

        def listening():
            for line in open(p.out_path):
                if line.startswith("listening "):
                    port.append(int(line.split(":")[-1]))
                    return True
            return False
        wait_for("the mock", listening, 10, p)
        return p, port[0]

    def start_platypus(self, path, mock_port):
        cfg = os.path.join(self.dir, "platypus-%s.yaml" % path)
        with open(cfg, "w") as f:
            f.write(self.platypus_yaml(path, mock_port))
        p = Proc("platypus", [os.path.join(BIN, "platypus"), "-c", cfg], self.dir)
        if path == "component":
            wait_for("platypus's component link", lambda: metric_sum(
                metrics(self.pp_admin), "platypus_component_connected") == 1, 30, p)
        else:
            wait_for("platypus's REST port", lambda: B.wait_port(self.rest, p.proc, 0.5), 30, p)
        return p

    def prepare(self):
        """The store: senders s0..s{SENDERS-1} and u0 registered through the admin API, u0's
        push enabled by a client; then u1..u{USERS-1} copied from u0 in the stopped store."""
        s = self.start_xmpp_core("component")
        try:
            tok = open(self.api_token).read().strip()
            hdr = {"Authorization": "Bearer " + tok, "Content-Type": "application/json"}
            reqs = [("/api/v1/accounts", json.dumps({"jid": j, "password": PW}), hdr)
                    for j in ["u0@" + DOMAIN] + ["s%d@%s" % (k, DOMAIN) for k in range(SENDERS)]]
            if B.http_bulk(self.admin, reqs, threads=1):
                raise RuntimeError("account creation failed: %s" % s.tail())
            asyncio.run(enable_push(self.c2s))
        finally:
            if s.stop() != 0:
                raise RuntimeError("xmpp-core exited badly: %s" % s.tail())
        db = sqlite3.connect(self.db)
        try:
            creds, = db.execute("SELECT creds FROM accounts WHERE host = ? AND user = 'u0'",
                                (DOMAIN,)).fetchone()
            regs = db.execute("SELECT owner, jid, node, form, created FROM push_regs").fetchall()
            if len(regs) != 1 or token_of(0) not in regs[0][3]:
                raise RuntimeError("u0's registration is not in the store as expected: %r" % regs)
            owner, jid, node, form, created = regs[0]
            db.executemany("INSERT INTO accounts (host, user, creds, created) "
                           "VALUES (?, ?, ?, strftime('%s','now'))",
                           [(DOMAIN, "u%d" % i, creds) for i in range(1, USERS + WARM)])
            db.executemany("INSERT INTO push_regs (owner, jid, node, form, created) "
                           "VALUES (?, ?, ?, ?, ?)",
                           [(owner.replace("u0@", "u%d@" % i, 1), jid, node,
                             form.replace(token_of(0), token_of(i)), created)
                            for i in range(1, USERS + WARM)])
            db.commit()
        finally:
            db.close()

    def one(self, path, rnd):
        arrivals = os.path.join(self.dir, "arrivals-%s-%d.log" % (path, rnd))
        mock, mock_port = self.start_mock(arrivals)
        srv = pp = None
        try:
            srv = self.start_xmpp_core(path)
            regs = metric_sum(metrics(self.admin), "xmpp_push_registrations")
            if regs != USERS + WARM:
                raise RuntimeError("%d registrations in the store, not %d" % (regs, USERS + WARM))
            pp = self.start_platypus(path, mock_port)
            time.sleep(1)
            sends, at = {}, {}

            def mark():
                at.update(m0=metrics(self.admin), c0=srv.cpu(), p0=pp.cpu())
            sent, errors, lag = asyncio.run(send_load(self.c2s, sends, mark))
            m0, c0, p0 = at["m0"], at["c0"], at["p0"]

            def settled():
                m = metrics(self.admin)
                pushed = metric_sum(m, "xmpp_push_sent_total") - metric_sum(
                    m0, "xmpp_push_sent_total")
                done = metric_sum(m, "xmpp_push_results_total") - metric_sum(
                    m0, "xmpp_push_results_total")
                return pushed >= sent and done >= pushed
            try:
                wait_for("the pushes' outcomes", settled, DRAIN, srv)
            except RuntimeError as e:
                log("%s round %d: %s" % (path, rnd, e))
            c1, p1 = srv.cpu(), pp.cpu()
            m1 = metrics(self.admin)
        finally:
            for p in (pp, srv):
                if p and p.stop() != 0:
                    log("%s exited badly: %s" % (p.name, p.tail()))
            mock_rc = mock.stop()
        if mock_rc != 0:
            raise RuntimeError("the mock exited %d: %s" % (mock_rc, mock.tail()))
        if os.environ.get("KEEP") == "1":  # for a look at latency against time
            with open(arrivals.replace("arrivals-", "sends-"), "w") as f:
                json.dump(sends, f)
        res = correlate(arrivals, sends)
        delta = {k: metric_sum(m1, k) - metric_sum(m0, k) for k in (
            "xmpp_push_sent_total", "xmpp_push_coalesced_total")}
        failed = {k: int(m1.get('xmpp_push_results_total{result="%s"}' % k, 0) -
                         m0.get('xmpp_push_results_total{result="%s"}' % k, 0))
                  for k in ("wait", "timeout", "unroutable", "rejected")}
        res.update(path=path, round=rnd, sent=sent, sender_errors=errors,
                   failed_at_xmpp_core={k: v for k, v in failed.items() if v},
                   pacing_lag_ms=round(lag, 1),
                   pushes_by_xmpp_core=int(delta["xmpp_push_sent_total"]),
                   coalesced=int(delta["xmpp_push_coalesced_total"]),
                   xmpp_core_cpu_ms_per_push=(c1 - c0) * 1000 / max(res["received"], 1),
                   platypus_cpu_ms_per_push=(p1 - p0) * 1000 / max(res["received"], 1),
                   users=USERS, rate=RATE, seconds=SECONDS)
        return res


def correlate(arrivals, sends):
    """Latencies (ms) of the pushes answered 200: the n-th arrival for a user's token with the
    n-th message sent to that user."""
    by_token = {token_of(u): u for u in sends}
    warm = {token_of(USERS + k) for k in range(WARM)}
    got, other, warmed = {}, 0, 0
    with open(arrivals) as f:
        for line in f:
            when, dev, status = line.split()
            if dev in warm:
                warmed += 1
                continue
            if status != "200" or dev not in by_token:
                other += 1
                continue
            got.setdefault(by_token[dev], []).append(int(when))
    lat, extra = [], 0
    for u, times in got.items():
        times.sort()
        sent = sends[u]
        extra += max(0, len(times) - len(sent))
        lat.extend((a - s) / 1000.0 for a, s in zip(times, sent))
    lat.sort()
    expected = sum(len(v) for v in sends.values())

    def pct(p):
        return round(lat[min(len(lat) - 1, int(p * len(lat)))], 2) if lat else None
    return {"expected": expected, "received": len(lat), "extra": extra, "not_200": other,
            "warm_up": warmed,
            "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": round(lat[-1], 2) if lat else None,
            "min_ms": round(lat[0], 2) if lat else None}


def main():
    if USERS / RATE <= COALESCE_S:
        log("PUSH_USERS/PUSH_RATE must be over push.coalesce (%g s): each message must be the "
            "first of its burst" % COALESCE_S)
        return 2
    for exe in ("xmpp-core", "platypus", "apns-mock"):
        if not os.access(os.path.join(BIN, exe), os.X_OK):
            log("%s/%s is not built (make)" % (BIN, exe))
            return 1
    work = tempfile.mkdtemp(prefix="bench-push-")
    try:
        b = Bench(work)
        t0 = time.monotonic()
        b.prepare()
        log("%d accounts with a push registration in %.1f s" % (USERS, time.monotonic() - t0))
        for rnd in range(1, ROUNDS + 1):
            for path in (PATHS if rnd % 2 else PATHS[::-1]):
                r = b.one(path, rnd)
                log("%s round %d: p50 %s p99 %s max %s ms, %d/%d pushes" % (
                    path, rnd, r["p50_ms"], r["p99_ms"], r["max_ms"], r["received"],
                    r["expected"]))
                print(json.dumps(r), flush=True)
    finally:
        if os.environ.get("KEEP") == "1":
            log("work directory kept: " + work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
