"""No acknowledged message is lost when xmpp-core dies: senders with stream management (XEP-0198)
stream messages to a recipient online, one whose session is hibernated and one offline; the
server is killed with SIGKILL in the middle of the flow and started again on the same storage.
Every message the server acknowledged (<a h=.../>) must then have reached its recipient, be
waiting in offline storage or be in the recipient's archive, and none may arrive twice."""

import os
import re
import signal
import socket
import ssl
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import suite  # noqa: E402
import xmpp  # noqa: E402
from test_xmpp_core_sm import Sm  # noqa: E402

PW = "correct horse"
SENDERS = 4
FLOW_SECONDS = 3.0
WINDOW = 200  # messages a sender leaves unacknowledged at most, as a phone's client would
BODY = re.compile(r"<body>(m [^<]*)</body>")


def read_some(raw, timeout=0.01):
    """What arrived within timeout (b"" when nothing did); raises OSError when the peer is
    gone."""
    raw.sock.settimeout(timeout)
    try:
        chunk = raw.sock.recv(65536)
    except (socket.timeout, ssl.SSLWantReadError):
        return b""
    if not chunk:
        raise ConnectionResetError("closed")
    return chunk


class Sender(threading.Thread):
    """Sends messages to the recipients in turn, pipelined, asking for acknowledgements every
    ten; remembers what was sent and the highest count the server acknowledged."""

    def __init__(self, raw, name, recipients):
        super().__init__(daemon=True)
        self.raw, self.name, self.recipients = raw, name, recipients
        self.sent = []  # (recipient, body), in order: the n-th is counted n by the server
        self.acked = 0
        self.stop = False
        self.error = None

    def run(self):
        buf = ""
        try:
            while not self.stop:
                if len(self.sent) - self.acked < WINDOW:
                    out = []
                    for _ in range(10):
                        to = self.recipients[len(self.sent) % len(self.recipients)]
                        body = "m %s-%d" % (self.name, len(self.sent))
                        out.append("<message to='%s' type='chat' id='%s'><body>%s</body>"
                                   "</message>" % (to, body[2:], body))
                        self.sent.append((to, body))
                    self.raw.send("".join(out) + "<r xmlns='urn:xmpp:sm:3'/>")
                buf += read_some(self.raw).decode(errors="replace")
                for h in re.findall(r"<a xmlns='urn:xmpp:sm:3' h='(\d+)'", buf):
                    self.acked = max(self.acked, int(h))
                if "<r xmlns='urn:xmpp:sm:3'/>" in buf:
                    self.raw.send("<a xmlns='urn:xmpp:sm:3' h='0'/>")
                buf = buf[buf.rfind(">") + 1:]
        except OSError as e:  # the server was killed
            self.error = e

    def acked_to(self, to):
        return {b for t, b in self.sent[:self.acked] if t == to}


class Reader(threading.Thread):
    """A recipient online without stream management: the bodies it got, in order."""

    def __init__(self, raw):
        super().__init__(daemon=True)
        self.raw = raw
        self.bodies = []
        self.stop = False

    def run(self):
        buf = ""
        try:
            while not self.stop:
                buf += read_some(self.raw, 0.05).decode(errors="replace")
                end = buf.rfind("</message>")
                if end >= 0:
                    self.bodies += BODY.findall(buf[:end])
                    buf = buf[end:]
        except OSError:
            pass


class KillTest(xmpp.ServerCase):
    # room enough that no quota refuses a message: the test is about crashes
    extra = "stream_management:\n  max_queue: 100000\noffline:\n  max_per_user: 100000\n"

    def raw(self):
        return self.keep(Sm(self.srv))

    def session(self, user, sm=False, resume=False):
        r = self.raw()
        r.auth(user, PW)
        r.bind(user)
        if sm:
            r.enable(resume)
        return r

    def archive(self, user):
        """Every body in user's archive, through paged MAM queries on a fresh session."""
        r = self.session(user)
        bodies, after, n = [], "", 0
        while True:
            n += 1
            r.buf = b""
            rsm = "<max>500</max>" + ("<after>%s</after>" % after if after else "")
            r.send("<iq type='set' id='q%d'><query xmlns='urn:xmpp:mam:2' queryid='k'>"
                   "<set xmlns='http://jabber.org/protocol/rsm'>%s</set></query></iq>"
                   % (n, rsm))
            out = r.until("<fin", 30)
            out = r.until("</iq>", 30)
            bodies += BODY.findall(out)
            last = re.search(r"<last>([^<]+)</last>", out)
            if "complete='true'" in out or not last:
                break
            after = last.group(1)
        r.close()
        return bodies

    def offline(self, user, expect=False):
        """The bodies user gets when it becomes available: what offline storage kept. With
        expect, messages are known to wait: the first may take a while on a busy machine (the
        server just started); then they keep coming until a quiet spell."""
        r = self.session(user)
        r.send("<presence/>")
        buf, quiet = b"", time.monotonic()
        first = time.monotonic() + (30 if expect else 0)
        while time.monotonic() - quiet < 2 or (not BODY.search(buf.decode(errors="replace"))
                                                and time.monotonic() < first):
            chunk = read_some(r, 0.1)
            if chunk:
                buf += chunk
                quiet = time.monotonic()
        r.close()
        return BODY.findall(buf.decode(errors="replace"))

    def test_sigkill_mid_flow_loses_no_acknowledged_message(self):
        users = ["bob", "carol", "dave"] + ["s%d" % i for i in range(SENDERS)]
        for u in users:
            self.srv.register(u, PW)
        bob, carol, dave = ("%s@%s" % (u, xmpp.HOST) for u in users[:3])
        # bob is online; carol's connection drops with her session resumable; dave is away
        b = self.session("bob")
        b.send("<presence/>")
        reader = Reader(b)
        reader.start()
        c = self.session("carol", sm=True, resume=True)
        c.send("<presence/>")
        c.drop()
        deadline = time.monotonic() + 10
        while self.srv.metric("xmpp_sm_hibernated_sessions") != 1:
            self.assertLess(time.monotonic(), deadline, "carol's session did not hibernate")
            time.sleep(0.05)
        senders = []
        for i in range(SENDERS):
            s = Sender(self.session("s%d" % i, sm=True), "s%d" % i, [bob, carol, dave])
            senders.append(s)
            s.start()
        time.sleep(FLOW_SECONDS)
        self.srv.daemon.proc.send_signal(signal.SIGKILL)
        self.srv.daemon.proc.wait()
        for s in senders:
            s.join(10)
            self.assertFalse(s.is_alive())
        time.sleep(0.3)
        reader.stop = True
        reader.join(10)
        sent = sum(len(s.sent) for s in senders)
        acked = sum(s.acked for s in senders)
        # a steady flow was cut: much was acknowledged, and some was on its way
        self.assertGreater(acked, 100, (sent, acked))
        self.assertGreater(sent, acked)

        self.srv.restart()
        live = reader.bodies
        waiting = {u: self.offline(u, expect=u == "dave" and any(
            s.acked_to(dave) for s in senders)) for u in ("bob", "carol", "dave")}
        kept = {u: set(self.archive(u)) for u in ("bob", "carol", "dave")}
        for u in ("bob", "carol", "dave"):
            got = (live if u == "bob" else []) + waiting[u]
            self.assertEqual(len(got), len(set(got)),
                             "%s got a message twice: %r" % (u, sorted(
                                 x for x in set(got) if got.count(x) > 1)[:10]))
        lost = {}
        for u, jid in (("bob", bob), ("carol", carol), ("dave", dave)):
            have = kept[u] | set(waiting[u]) | (set(live) if u == "bob" else set())
            for s in senders:
                missing = s.acked_to(jid) - have
                if missing:
                    lost.setdefault(u, []).extend(sorted(missing))
        self.assertEqual({u: len(v) for u, v in lost.items()}, {},
                         "acknowledged, then lost (sent %d, acknowledged %d), for example %r"
                         % (sent, acked, {u: v[:5] for u, v in lost.items()}))
        if os.environ.get("SUITE_VERBOSE"):
            print("sent %d, acknowledged %d" % (sent, acked), file=sys.stderr)
        # dave was offline all along: what was acknowledged for him is in his offline store
        for s in senders:
            missing = sorted(s.acked_to(dave) - set(waiting["dave"]))
            self.assertEqual(len(missing), 0, "acknowledged for dave, not in his offline store "
                             "(%d of them, offline delivery gave %d), for example %r"
                             % (len(missing), len(waiting["dave"]), missing[:5]))


class StopTest(xmpp.ServerCase):
    """A graceful stop (SIGTERM) with writes in flight: the stop waits for the store's answers
    to them, so each runs on a loop that is still up (none is dropped with what it holds: the
    sanitizer's leak check at exit would say so) and every write is there after a restart."""

    CONTACTS = 300

    def test_sigterm_with_roster_writes_in_flight(self):
        self.srv.register("writer", PW)
        r = self.keep(xmpp.Raw(self.srv))
        r.session("writer", PW)
        r.send("".join("<iq type='set' id='s%d'><query xmlns='jabber:iq:roster'><item "
                       "jid='c%d@localhost' name='n%d'/></query></iq>" % (i, i, i)
                       for i in range(self.CONTACTS)))
        # and vCards heavy enough to keep the store busy past the stream's end
        card = "<vCard xmlns='vcard-temp'><DESC>%s</DESC></vCard>" % ("x" * 60000)
        for k in range(40):
            r.send("<iq type='set' id='v%d'>%s</iq>" % (k, card))
        r.until("id='s0'", 30)
        # the stop comes while the other writes are queued in the store or on their way back
        self.srv.daemon.proc.send_signal(signal.SIGTERM)
        self.assertTrue(r.closed(30))
        self.assertEqual(self.srv.daemon.proc.wait(timeout=30), 0, self.srv.output())
        suite.assert_clean(self, self.srv.output())
        self.assertIn("drained; exiting", self.srv.output())
        text = r.buf.decode(errors="replace")
        answered = sorted(int(a or b) for a, b in re.findall(
            r"type='result'[^>]*id='s(\d+)'|id='s(\d+)'[^>]*type='result'", text))
        self.assertGreater(len(answered), 0)
        self.srv.restart()
        r = self.keep(xmpp.Raw(self.srv))
        r.session("writer", PW, resource="again")
        r.send("<iq type='get' id='g'><query xmlns='jabber:iq:roster'/></iq>")
        out = r.until("</iq>", 30)
        # each write was answered only once its transaction had committed
        for i in answered:
            self.assertIn("jid='c%d@localhost'" % i, out)


if __name__ == "__main__":
    unittest.main()
