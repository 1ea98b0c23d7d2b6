"""xmpp-core's message archive (XEP-0313 with XEP-0359 stanza ids and XEP-0059 paging) and
message carbons (XEP-0280), with a real client (slixmpp): two users, two resources, queries
paged and filtered every way, preferences, hints, and copies between a user's sessions."""

import asyncio
import os
import sys
import time
import unittest
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(__file__))
import xmpp  # noqa: E402
from xmpp import logout, run  # noqa: E402

from slixmpp.exceptions import IqError  # noqa: E402
from slixmpp.xmlstream.handler import Callback  # noqa: E402
from slixmpp.xmlstream.matcher import MatchXPath  # noqa: E402

PW = "correct horse"
MAM = "urn:xmpp:mam:2"
RSM = "http://jabber.org/protocol/rsm"
SID = "urn:xmpp:sid:0"
CARBONS = "urn:xmpp:carbons:2"
FWD = "urn:xmpp:forward:0"


async def login(server, jid, password=PW, presence=True):
    c = xmpp.Client(jid, password, server)
    for p in ("xep_0059", "xep_0297", "xep_0313", "xep_0359", "xep_0280"):
        c.register_plugin(p)
    c.results = []
    c.register_handler(Callback("mam results", MatchXPath("{jabber:client}message/{%s}result"
                                                          % MAM),
                                lambda m: c.results.append(m)))
    c.carbons = asyncio.Queue()
    c.add_event_handler("carbon_received", lambda m: c.carbons.put_nowait(("received", m)))
    c.add_event_handler("carbon_sent", lambda m: c.carbons.put_nowait(("sent", m)))
    c.connect(("127.0.0.1", server.c2s))
    if not await asyncio.wait_for(c.started, 15):
        raise AssertionError("%s could not log in" % jid)
    await c.get_roster()
    if presence:
        c.send_presence()
    return c


def form(**fields):
    """A submitted MAM form: values are strings or lists (several values)."""
    out = ("<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>"
           "<value>%s</value></field>" % MAM)
    for var, v in fields.items():
        var = var.replace("_", "-")
        vals = v if isinstance(v, list) else [v]
        out += "<field var='%s'>%s</field>" % (var, "".join("<value>%s</value>" % x
                                                            for x in vals))
    return out + "</x>"


def rsm(max_=None, after=None, before=None):
    out = "<set xmlns='%s'>" % RSM
    if max_ is not None:
        out += "<max>%d</max>" % max_
    if after is not None:
        out += "<after>%s</after>" % after
    if before is not None:
        out += "<before>%s</before>" % before
    return out + "</set>"


class Page:
    def __init__(self, iq, results):
        fin = iq.xml.find("{%s}fin" % MAM)
        self.fin = fin
        self.complete = fin.get("complete") == "true"
        s = fin.find("{%s}set" % RSM)
        self.first = s.findtext("{%s}first" % RSM)
        self.last = s.findtext("{%s}last" % RSM)
        self.count = int(s.findtext("{%s}count" % RSM))
        self.ids = [m.xml.find("{%s}result" % MAM).get("id") for m in results]
        self.bodies = []
        self.stamps = []
        for m in results:
            fwd = m.xml.find("{%s}result/{%s}forwarded" % (MAM, FWD))
            self.stamps.append(fwd.find("{urn:xmpp:delay}delay").get("stamp"))
            inner = fwd.find("{jabber:client}message")
            self.bodies.append(inner.findtext("{jabber:client}body"))


async def query(c, inner, qid="q1"):
    """Send an archive query (inner: the form and RSM set as XML); a Page, or IqError."""
    iq = c.make_iq_set()
    q = ET.fromstring("<query xmlns='%s' queryid='%s'>%s</query>" % (MAM, qid, inner))
    iq.append(q)
    c.results = []
    res = await iq.send(timeout=10)
    await asyncio.sleep(0)
    return Page(res, [m for m in c.results
                      if m.xml.find("{%s}result" % MAM).get("queryid") == qid])


async def error_of(coro):
    try:
        await coro
    except IqError as e:
        err = e.iq.xml.find("{jabber:client}error")
        cond = [ch.tag.split("}")[1] for ch in err if "text" not in ch.tag][0]
        return cond, err.findtext("{urn:ietf:params:xml:ns:xmpp-stanzas}text")
    raise AssertionError("the query was not refused")


def send(c, to, body=None, mtype="chat", extra=""):
    m = c.make_message(mto=to, mbody=body, mtype=mtype)
    for x in ([extra] if isinstance(extra, str) and extra else extra or []):
        m.append(ET.fromstring(x))
    m.send()


class Base(xmpp.ServerCase):
    def setUp(self):
        super().setUp()
        self.alice = self.srv.register("alice", PW)
        self.bob = self.srv.register("bob", PW)

    async def wait_archived(self, n):
        deadline = time.monotonic() + 10
        while self.srv.metric("xmpp_archive_messages_total", {"result": "stored"}) < n:
            if time.monotonic() > deadline:
                raise AssertionError("%d messages not archived" % n)
            await asyncio.sleep(0.05)


class Archive(Base):
    def test_both_archives_and_stanza_ids(self):
        async def go():
            a = await login(self.srv, self.alice + "/phone")
            b = await login(self.srv, self.bob + "/laptop")
            send(a, self.bob, "hello bob")
            m = await b.next_message()
            sid = m.xml.find("{%s}stanza-id" % SID)
            self.assertIsNotNone(sid)
            self.assertEqual(sid.get("by"), self.bob)
            send(b, self.alice + "/phone", "hello alice")
            m2 = await a.next_message()
            self.assertEqual(m2.xml.find("{%s}stanza-id" % SID).get("by"), self.alice)
            await self.wait_archived(4)
            pa = await query(a, "")
            pb = await query(b, "")
            self.assertEqual(pa.bodies, ["hello bob", "hello alice"])
            self.assertEqual(pb.bodies, ["hello bob", "hello alice"])
            self.assertTrue(pa.complete)
            self.assertEqual(pa.count, 2)
            # the id on the delivered message is the recipient's archive id
            self.assertEqual(pb.ids[0], sid.get("id"))
            self.assertEqual(pa.ids[1], m2.xml.find("{%s}stanza-id" % SID).get("id"))
            # slixmpp's own MAM plugin reads the same answers
            res = await a["xep_0313"].retrieve(with_jid=self.bob)
            self.assertEqual(len(res["mam"]["results"]), 2)
            await logout(a, b)
        run(go())
        self.assertEqual(self.srv.metric("xmpp_archive_queries_total", {"result": "ok"}), 3)

    def test_paging(self):
        async def go():
            a = await login(self.srv, self.alice + "/phone")
            for i in range(25):
                send(a, self.bob, "m%02d" % i)
            await self.wait_archived(50)  # both archives (bob is offline: stored too)
            want = ["m%02d" % i for i in range(25)]
            got, after = [], None
            pages = 0
            while True:
                p = await query(a, rsm(10, after=after))
                pages += 1
                self.assertEqual(p.count, 25)
                got += p.bodies
                self.assertEqual(p.first, p.ids[0])
                self.assertEqual(p.last, p.ids[-1])
                after = p.last
                if p.complete:
                    break
                self.assertLess(pages, 5)
            self.assertEqual(got, want)
            self.assertEqual(pages, 3)
            # the last page, then backwards
            p = await query(a, rsm(10, before=""))
            self.assertEqual(p.bodies, want[15:])
            self.assertFalse(p.complete)
            p2 = await query(a, rsm(10, before=p.first))
            self.assertEqual(p2.bodies, want[5:15])
            p3 = await query(a, rsm(10, before=p2.first))
            self.assertEqual(p3.bodies, want[:5])
            self.assertTrue(p3.complete)
            # max 0: the count alone
            p = await query(a, rsm(0))
            self.assertEqual((p.count, p.ids), (25, []))
            # the page size is capped by archive.max_page (100 here): ask for more, get 25
            p = await query(a, rsm(100000))
            self.assertEqual(len(p.ids), 25)
            # an id the archive does not hold
            cond, text = await error_of(query(a, rsm(10, after="nope")))
            self.assertEqual(cond, "item-not-found")
            await logout(a)
        run(go())

    def test_filters(self):
        async def go():
            a = await login(self.srv, self.alice + "/phone")
            b1 = await login(self.srv, self.bob + "/one")
            b2 = await login(self.srv, self.bob + "/two")
            carol = self.srv.register("carol", PW)
            c = await login(self.srv, carol + "/x")
            send(a, self.bob + "/one", "to b1")
            send(a, self.bob + "/two", "to b2")
            send(a, carol, "to carol")
            await self.wait_archived(6)
            await asyncio.sleep(1.1)
            t_mid = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            await asyncio.sleep(1.1)
            send(a, self.bob + "/one", "to b1 later")
            await self.wait_archived(8)
            # with: a bare JID matches every resource, a full JID only itself
            p = await query(a, form(**{"with": self.bob}))
            self.assertEqual(p.bodies, ["to b1", "to b2", "to b1 later"])
            p = await query(a, form(**{"with": self.bob + "/two"}))
            self.assertEqual(p.bodies, ["to b2"])
            p = await query(a, form(**{"with": carol}))
            self.assertEqual(p.bodies, ["to carol"])
            # start and end
            p = await query(a, form(start=t_mid))
            self.assertEqual(p.bodies, ["to b1 later"])
            p = await query(a, form(end=t_mid))
            self.assertEqual(p.bodies, ["to b1", "to b2", "to carol"])
            p = await query(a, form(start="2000-01-01T00:00:00+01:00", end=t_mid,
                                    **{"with": self.bob}))
            self.assertEqual(p.bodies, ["to b1", "to b2"])
            everything = await query(a, "")
            ids = everything.ids
            # after-id and before-id (filters: they count)
            p = await query(a, form(after_id=ids[0], before_id=ids[3]))
            self.assertEqual(p.bodies, ["to b2", "to carol"])
            self.assertEqual(p.count, 2)
            # ids
            p = await query(a, form(ids=[ids[3], ids[1]]))
            self.assertEqual(p.bodies, ["to b2", "to b1 later"])
            cond, _ = await error_of(query(a, form(after_id="unknown")))
            self.assertEqual(cond, "item-not-found")
            await logout(a, b1, b2, c)
        run(go())

    def test_what_is_kept(self):
        async def go():
            a = await login(self.srv, self.alice + "/phone")
            b = await login(self.srv, self.bob + "/laptop")
            hints = "urn:xmpp:hints"
            send(a, self.bob, "secret", extra="<no-store xmlns='%s'/>" % hints)
            send(a, self.bob, "fleeting", extra="<no-permanent-store xmlns='%s'/>" % hints)
            send(a, self.bob, "news", mtype="headline")
            send(a, self.bob, None, extra="<active xmlns='http://jabber.org/protocol/"
                                          "chatstates'/>")
            send(a, self.bob, None, extra=["<store xmlns='%s'/>" % hints,
                                           "<x xmlns='urn:example'/>"])
            send(a, self.bob, None, extra="<propose xmlns='urn:xmpp:jingle-message:0' "
                                          "id='call1'><description xmlns='urn:xmpp:jingle:"
                                          "apps:rtp:1' media='audio'/></propose>")
            # a stanza-id in the server's name is never the sender's to give
            send(a, self.bob, "forged", extra="<stanza-id xmlns='%s' by='%s' id='fake'/>"
                                              % (SID, self.bob))
            while True:
                m = await b.next_message()
                if m["body"] == "forged":
                    break
            ids = m.xml.findall("{%s}stanza-id" % SID)
            self.assertEqual(len(ids), 1)
            self.assertNotEqual(ids[0].get("id"), "fake")
            await self.wait_archived(6)
            p = await query(b, "")
            self.assertEqual(len(p.ids), 3)
            self.assertEqual(p.bodies, [None, None, "forged"])
            await logout(a, b)
        run(go())

    def test_offline_message_is_archived_with_its_id(self):
        async def go():
            a = await login(self.srv, self.alice + "/phone")
            send(a, self.bob, "while you were away")
            await self.wait_archived(2)
            b = await login(self.srv, self.bob + "/laptop")
            m = await b.next_message()
            sid = m.xml.find("{%s}stanza-id" % SID)
            p = await query(b, "")
            self.assertEqual(p.ids, [sid.get("id")])
            await logout(a, b)
        run(go())

    def test_preferences(self):
        async def go():
            a = await login(self.srv, self.alice + "/phone")
            b = await login(self.srv, self.bob + "/laptop")
            iq = b.make_iq_get()
            iq.append(ET.fromstring("<prefs xmlns='%s'/>" % MAM))
            res = await iq.send(timeout=10)
            self.assertEqual(res.xml.find("{%s}prefs" % MAM).get("default"), "always")
            # bob archives nothing but alice
            carol = self.srv.register("carol", PW)
            c = await login(self.srv, carol + "/x")
            iq = b.make_iq_set()
            iq.append(ET.fromstring("<prefs xmlns='%s' default='never'><always><jid>%s</jid>"
                                    "</always><never/></prefs>" % (MAM, self.alice)))
            res = await iq.send(timeout=10)
            p = res.xml.find("{%s}prefs" % MAM)
            self.assertEqual(p.get("default"), "never")
            self.assertEqual(p.findtext("{%s}always/{%s}jid" % (MAM, MAM)), self.alice)
            send(c, self.bob, "from carol")
            m = await b.next_message()
            self.assertIsNone(m.xml.find("{%s}stanza-id" % SID))
            send(a, self.bob, "from alice")
            m = await b.next_message()
            self.assertIsNotNone(m.xml.find("{%s}stanza-id" % SID))
            await self.wait_archived(3)  # carol's, alice's, bob's of alice's
            p = await query(b, "")
            self.assertEqual(p.bodies, ["from alice"])
            # default 'roster': alice goes into bob's roster, carol does not
            iq = b.make_iq_set()
            iq.append(ET.fromstring("<prefs xmlns='%s' default='roster'/>" % MAM))
            await iq.send(timeout=10)
            iq = b.make_iq_set()
            iq.append(ET.fromstring("<query xmlns='jabber:iq:roster'><item jid='%s'/></query>"
                                    % self.alice))
            await iq.send(timeout=10)
            send(c, self.bob, "from carol again")
            m = await b.next_message()
            self.assertIsNone(m.xml.find("{%s}stanza-id" % SID))
            send(a, self.bob, "from alice again")
            m = await b.next_message()
            self.assertIsNotNone(m.xml.find("{%s}stanza-id" % SID))
            await self.wait_archived(6)  # carol's twice, alice's twice, bob's of alice's twice
            p = await query(b, "")
            self.assertEqual(p.bodies, ["from alice", "from alice again"])
            # they are kept across sessions
            await logout(b)
            b = await login(self.srv, self.bob + "/laptop")
            iq = b.make_iq_get()
            iq.append(ET.fromstring("<prefs xmlns='%s'/>" % MAM))
            res = await iq.send(timeout=10)
            self.assertEqual(res.xml.find("{%s}prefs" % MAM).get("default"), "roster")
            await logout(a, b, c)
        run(go())

    def test_refusals_form_and_disco(self):
        async def go():
            a = await login(self.srv, self.alice + "/phone")
            cases = [
                (form(start="yesterday"), "bad-request", "start"),
                (form(start="2024-02-30T00:00:00Z"), "bad-request", "start"),
                (form(colour="blue"), "bad-request", "unknown field 'colour'"),
                (form(**{"with": "@@"}), "bad-request", "with"),
                (rsm() .replace("</set>", "<max>ten</max></set>"), "bad-request", "max"),
                (rsm().replace("</set>", "<index>3</index></set>"), "feature-not-implemented",
                 "index"),
                ("<x xmlns='jabber:x:data' type='form'/>", "bad-request", "submit"),
                (form(ids=["x" * 200]), "bad-request", "ids"),
            ]
            for inner, want, text in cases:
                cond, t = await error_of(query(a, inner))
                self.assertEqual(cond, want, inner)
                self.assertIn(text, t or "", inner)
            # the form
            iq = a.make_iq_get()
            iq.append(ET.fromstring("<query xmlns='%s'/>" % MAM))
            res = await iq.send(timeout=10)
            fields = [f.get("var") for f in res.xml.iter("{jabber:x:data}field")]
            for f in ("FORM_TYPE", "with", "start", "end", "after-id", "before-id", "ids"):
                self.assertIn(f, fields)
            info = await a["xep_0030"].get_info(jid=self.alice)
            feats = info["disco_info"]["features"]
            for f in (MAM, MAM + "#extended", SID):
                self.assertIn(f, feats)
            info = await a["xep_0030"].get_info(jid="localhost")
            self.assertIn(CARBONS, info["disco_info"]["features"])
            # somebody else's archive is not theirs to read
            b = await login(self.srv, self.bob + "/laptop")
            iq = b.make_iq_set(ito=self.alice)
            iq.append(ET.fromstring("<query xmlns='%s'/>" % MAM))
            with self.assertRaises(IqError) as e:
                await iq.send(timeout=10)
            self.assertEqual(e.exception.iq["error"]["condition"], "forbidden")
            await logout(a, b)
        run(go())
        self.assertGreaterEqual(self.srv.metric("xmpp_archive_queries_total",
                                                {"result": "error"}), 8)


def msg(frm, to, body, extra=""):
    return ("<message from='%s' to='%s' type='chat' id='m-%s'><body>%s</body>%s</message>"
            % (frm, to, abs(hash(body)), body, extra))


class ArchiveImport(Base):
    """POST /api/v1/archive (what xmppctl import-prosody sends after an account): messages
    from another server's archive, with their stamps, found by archive queries in order,
    filed under the right peer, with ids of this server's; refusals precise, nothing
    half-written."""

    def test_import_then_query(self):
        t0 = 1767225600000  # 2026-01-01T00:00:00Z
        rows = [
            {"stamp_ms": t0, "stanza": msg(self.alice + "/phone", self.bob, "hello bob")},
            {"stamp_ms": t0 + 1500, "stanza": msg(self.bob + "/pc", self.alice, "hi alice",
                                                  "<stanza-id xmlns='%s' by='%s' id='old-1'/>"
                                                  % (SID, self.alice))},
            {"stamp_ms": t0 + 60000, "stanza": msg(self.alice + "/phone",
                                                   "carol@example.org", "and carol")},
        ]
        st, body = self.srv.api("POST", "archive", {"jid": self.alice, "messages": rows})
        self.assertEqual((st, body), (201, {"jid": self.alice, "archived": 3}), body)
        # read back as export-xep227 pages through it: oldest first, then after an id
        st, page = self.srv.api("GET", "archive/" + self.alice)
        self.assertEqual(st, 200, page)
        self.assertTrue(page["complete"])
        self.assertEqual([m["stamp_ms"] for m in page["messages"]],
                         [t0, t0 + 1500, t0 + 60000])
        self.assertIn("hi alice", page["messages"][1]["stanza"])
        self.assertNotIn("old-1", page["messages"][1]["stanza"])
        st, rest = self.srv.api("GET", "archive/%s?after=%s" % (self.alice,
                                                               page["messages"][0]["id"]))
        self.assertEqual([m["id"] for m in rest["messages"]],
                         [m["id"] for m in page["messages"][1:]])
        for path, status in (("archive/%s?after=nosuchid" % self.alice, 404),
                             ("archive/%s?after=a%%20b" % self.alice, 400),
                             ("archive/%s?max=3" % self.alice, 400),
                             ("archive/not-a-jid@", 400)):
            st, body = self.srv.api("GET", path)
            self.assertEqual(st, status, (path, body))
        self.assertEqual(self.srv.api("DELETE", "archive/" + self.alice)[0], 405)

        async def go():
            a = await login(self.srv, self.alice + "/phone")
            p = await query(a, "")
            self.assertEqual(p.bodies, ["hello bob", "hi alice", "and carol"])
            self.assertEqual(p.stamps, ["2026-01-01T00:00:00.000Z", "2026-01-01T00:00:01.500Z",
                                        "2026-01-01T00:01:00.000Z"])
            self.assertNotIn("old-1", p.ids)
            # filed under the peer: with bob, two; with carol, one
            p = await query(a, form(**{"with": self.bob}))
            self.assertEqual(p.bodies, ["hello bob", "hi alice"])
            p = await query(a, form(**{"with": "carol@example.org"}))
            self.assertEqual(p.bodies, ["and carol"])
            # what comes after the import is archived after it
            b = await login(self.srv, self.bob + "/pc")
            send(b, self.alice, "new here")
            await a.next_message()
            await self.wait_archived(1)
            p = await query(a, "")
            self.assertEqual(p.bodies[-1], "new here")
            self.assertEqual(p.count, 4)
            await logout(a, b)
        run(go())

    def test_refusals(self):
        good = {"stamp_ms": 1, "stanza": msg(self.alice + "/x", self.bob, "ok")}
        cases = [
            ({"jid": self.alice}, 400, "\"messages\""),
            ({"jid": self.alice, "messages": []}, 400, "1 to 5000"),
            ({"jid": self.alice, "messages": [good] * 5001}, 400, "1 to 5000"),
            ({"jid": "nobody@elsewhere.example", "messages": [good]}, 400, "of a host served"),
            ({"jid": self.alice + "/res", "messages": [good]}, 400, "not an account"),
            ({"jid": self.alice, "messages": [good], "extra": 1}, 400, "unknown member"),
            ({"jid": self.alice, "messages": [good, {"stamp_ms": -1, "stanza": good["stanza"]}]},
             400, "messages[1]: \"stamp_ms\""),
            ({"jid": self.alice, "messages": [{"stamp_ms": 1, "stanza": "<presence/>"}]},
             400, "messages[0]: \"stanza\" is not one <message/>"),
            ({"jid": self.alice, "messages": [{"stamp_ms": 1, "stanza": "<message"}]},
             400, "messages[0]: \"stanza\" is not one <message/>"),
            ({"jid": self.alice, "messages": [{"stamp_ms": 1, "stanza": msg(
                "x@example.org", "y@example.org", "not hers")}]}, 400,
             "neither its 'from' nor its 'to' is alice@localhost"),
            ({"jid": self.alice, "messages": [{"stamp_ms": 1, "stanza": good["stanza"],
                                               "with": "bob@localhost"}]},
             400, "messages[0]: unknown member \"with\""),
            ({"jid": "nobody@localhost", "messages": [{"stamp_ms": 1, "stanza": msg(
                "nobody@localhost/x", self.bob, "from nobody")}]}, 404, "no such account"),
        ]
        for doc, status, word in cases:
            st, body = self.srv.api("POST", "archive", doc)
            self.assertEqual(st, status, (str(doc)[:80], body))
            self.assertIn(word, body["error"], str(doc)[:80])
        st, body = self.srv.api("GET", "archive")
        self.assertEqual(st, 405)

        # nothing of those was written
        async def go():
            a = await login(self.srv, self.alice + "/phone")
            p = await query(a, "")
            self.assertEqual(p.count, 0)
            await logout(a)
        run(go())


class ArchiveOff(Base):
    extra = "archive:\n  enabled: false\n"

    def test_import_refused(self):
        st, body = self.srv.api("POST", "archive", {"jid": self.alice, "messages": [
            {"stamp_ms": 1, "stanza": msg(self.alice, self.bob, "x")}]})
        self.assertEqual(st, 409)
        self.assertIn("archive.enabled", body["error"])

    def test_nothing_archived_nor_offered(self):
        async def go():
            a = await login(self.srv, self.alice + "/phone")
            b = await login(self.srv, self.bob + "/laptop")
            send(a, self.bob, "hi")
            m = await b.next_message()
            self.assertIsNone(m.xml.find("{%s}stanza-id" % SID))
            cond, _ = await error_of(query(a, ""))
            self.assertEqual(cond, "service-unavailable")
            info = await a["xep_0030"].get_info(jid=self.alice)
            self.assertNotIn(MAM, info["disco_info"]["features"])
            await logout(a, b)
        run(go())


class Carbons(Base):
    def test_sent_and_received_copies(self):
        async def go():
            a1 = await login(self.srv, self.alice + "/phone")
            a2 = await login(self.srv, self.alice + "/laptop")
            a3 = await login(self.srv, self.alice + "/old")  # never enables carbons
            b = await login(self.srv, self.bob + "/x")
            await a1["xep_0280"].enable(timeout=10)
            await a2["xep_0280"].enable(timeout=10)
            # bob writes to the phone: the laptop gets a received copy, with the stanza-id
            send(b, self.alice + "/phone", "to your phone")
            m = await a1.next_message()
            self.assertEqual(m["body"], "to your phone")
            kind, cm = await asyncio.wait_for(a2.carbons.get(), 5)
            self.assertEqual(kind, "received")
            inner = cm["carbon_received"]
            self.assertEqual(inner["body"], "to your phone")
            self.assertEqual(str(cm["from"]), self.alice)
            self.assertIsNotNone(inner.xml.find("{%s}stanza-id" % SID))
            # the phone writes to bob: the laptop gets a sent copy
            send(a1, self.bob, "from my phone")
            kind, cm = await asyncio.wait_for(a2.carbons.get(), 5)
            self.assertEqual(kind, "sent")
            self.assertEqual(cm["carbon_sent"]["body"], "from my phone")
            self.assertEqual(str(cm["carbon_sent"]["to"]), self.bob)
            self.assertEqual((await b.next_message())["body"], "from my phone")
            # private and no-copy: no copies
            send(a1, self.bob, "private", extra="<private xmlns='%s'/>" % CARBONS)
            send(a1, self.bob, "no copy", extra="<no-copy xmlns='urn:xmpp:hints'/>")
            send(b, self.alice + "/phone", "private too",
                 extra="<private xmlns='%s'/>" % CARBONS)
            # a chat state without a body is copied, a headline is not
            send(b, self.alice + "/phone", None, extra="<composing xmlns='http://jabber.org/"
                                                       "protocol/chatstates'/>")
            send(b, self.alice + "/phone", "headline", mtype="headline")
            send(b, self.alice + "/phone", "last")
            kinds = []
            while True:
                kind, cm = await asyncio.wait_for(a2.carbons.get(), 5)
                inner = cm["carbon_" + kind]
                kinds.append((kind, inner["body"] or "composing"))
                if inner["body"] == "last":
                    break
            self.assertEqual(kinds, [("received", "composing"), ("received", "last")])
            # the session without carbons saw none of it
            self.assertTrue(a3.carbons.empty())
            # disabled: no more copies
            await a2["xep_0280"].disable(timeout=10)
            send(b, self.alice + "/phone", "after disable")
            send(a1, self.bob, "after disable too")
            await a1.next_message()
            await b.next_message()
            await asyncio.sleep(0.5)
            self.assertTrue(a2.carbons.empty())
            await logout(a1, a2, a3, b)
        run(go())

    def test_message_to_the_bare_jid(self):
        # delivered to the highest priority; the other session with carbons gets a copy
        async def go():
            a1 = await login(self.srv, self.alice + "/phone", presence=False)
            a2 = await login(self.srv, self.alice + "/laptop", presence=False)
            a1.send_presence(ppriority=10)
            a2.send_presence(ppriority=1)
            b = await login(self.srv, self.bob + "/x")
            await a2["xep_0280"].enable(timeout=10)
            await asyncio.sleep(0.3)
            send(b, self.alice, "to the account")
            self.assertEqual((await a1.next_message())["body"], "to the account")
            kind, cm = await asyncio.wait_for(a2.carbons.get(), 5)
            self.assertEqual((kind, cm["carbon_received"]["body"]),
                             ("received", "to the account"))
            await logout(a1, a2, b)
        run(go())


if __name__ == "__main__":
    unittest.main()
