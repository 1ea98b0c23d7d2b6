"""xmpp-core's private XML storage (XEP-0049) with a real client (slixmpp): bookmarks and notes kept by one session and read by another of the same account, across
a restart, removed by an empty element; nobody else reads or writes them; the limits
(private_storage.max_bytes, .max_namespaces) and every malformed query answered precisely; the
import route takes them, the export route gives them back, and they go with a deleted account."""

import asyncio
import os
import sys
import unittest
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(__file__))
import xmpp  # noqa: E402
from xmpp import logout, run  # noqa: E402


PW = "correct horse"
PRIVATE = "jabber:iq:private"
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
BOOKMARKS = "storage:bookmarks"
NOTES = "storage:rosternotes"


async def login(server, jid):
    c = xmpp.Client(jid, PW, server)
    c.connect(("127.0.0.1", server.c2s))
    if not await asyncio.wait_for(c.started, 15):
        raise AssertionError("%s could not log in" % jid)
    return c


def bookmarks(*rooms):
    return ("<storage xmlns='%s'>%s</storage>" % (BOOKMARKS, "".join(
        "<conference jid='%s' autojoin='true' name='%s'><nick>al</nick></conference>"
        % (r, r.split("@")[0]) for r in rooms)))


async def private(c, inner, itype="get", to=None):
    """The <query/> of the answer to a private XML request holding inner."""
    iq = c.make_iq_set() if itype == "set" else c.make_iq_get()
    if to:
        iq["to"] = to
    iq.append(ET.fromstring("<query xmlns='%s'>%s</query>" % (PRIVATE, inner)))
    res = await iq.send(timeout=10)
    return res.xml.find("{%s}query" % PRIVATE)


async def refusal(coro):
    """(error type, condition, text) of the error the request got."""
    err, cond = await xmpp.refused(coro)
    return err.get("type"), cond, err.findtext("{%s}text" % STANZAS)


def rooms_of(q):
    st = q.find("{%s}storage" % BOOKMARKS)
    return [c.get("jid") for c in st.findall("{%s}conference" % BOOKMARKS)]


class Private(xmpp.ServerCase):
    extra = "private_storage:\n  max_bytes: 2k\n  max_namespaces: 3\n"

    def setUp(self):
        super().setUp()
        self.alice = self.srv.register("alice", PW)
        self.bob = self.srv.register("bob", PW)

    def test_kept_read_elsewhere_and_across_restart(self):
        async def go():
            a = await login(self.srv, self.alice + "/laptop")
            # nothing kept yet: the element asked comes back as asked
            q = await private(a, "<storage xmlns='%s'/>" % BOOKMARKS)
            self.assertEqual(len(q), 1)
            self.assertEqual(q[0].tag, "{%s}storage" % BOOKMARKS)
            self.assertEqual(len(q[0]), 0)
            await private(a, bookmarks("tea@conference.localhost", "cake@conference.localhost"),
                          "set")
            await private(a, "<notes xmlns='%s'><note jid='%s'>met at the party</note></notes>"
                          % (NOTES, self.bob), "set")
            # the same account's other device reads both, one namespace per request
            p = await login(self.srv, self.alice + "/phone")
            q = await private(p, "<storage xmlns='%s'/>" % BOOKMARKS)
            self.assertEqual(rooms_of(q), ["tea@conference.localhost",
                                           "cake@conference.localhost"])
            self.assertEqual(q.find("{%s}storage/{%s}conference/{%s}nick"
                                    % (BOOKMARKS, BOOKMARKS, BOOKMARKS)).text, "al")
            q = await private(p, "<notes xmlns='%s'/>" % NOTES)
            self.assertEqual(q.find("{%s}notes/{%s}note" % (NOTES, NOTES)).text,
                             "met at the party")
            # both in one get, answered in the order asked
            q = await private(p, "<notes xmlns='%s'/><storage xmlns='%s'/>" % (NOTES, BOOKMARKS))
            self.assertEqual([c.tag for c in q], ["{%s}notes" % NOTES,
                                                  "{%s}storage" % BOOKMARKS])
            # a set replaces what the namespace held, and leaves the others alone
            await private(p, bookmarks("tea@conference.localhost"), "set")
            q = await private(a, "<storage xmlns='%s'/>" % BOOKMARKS)
            self.assertEqual(rooms_of(q), ["tea@conference.localhost"])
            await logout(a, p)
        run(go())
        self.srv.restart()

        async def again():
            a = await login(self.srv, self.alice + "/laptop")
            q = await private(a, "<storage xmlns='%s'/>" % BOOKMARKS)
            self.assertEqual(rooms_of(q), ["tea@conference.localhost"])
            # an empty element removes the namespace's element
            await private(a, "<notes xmlns='%s'/>" % NOTES, "set")
            q = await private(a, "<notes xmlns='%s'/>" % NOTES)
            self.assertEqual(len(q[0]), 0)
            await logout(a)
        run(again())

    def test_nobody_else(self):
        async def go():
            a = await login(self.srv, self.alice + "/laptop")
            b = await login(self.srv, self.bob + "/laptop")
            await private(a, bookmarks("secret@conference.localhost"), "set")
            # bob may neither read nor write alice's
            for itype, inner in (("get", "<storage xmlns='%s'/>" % BOOKMARKS),
                                 ("set", bookmarks("evil@conference.localhost"))):
                etype, cond, _ = await refusal(private(b, inner, itype, to=self.alice))
                self.assertEqual((etype, cond), ("auth", "forbidden"))
            # his own is his own
            q = await private(b, "<storage xmlns='%s'/>" % BOOKMARKS)
            self.assertEqual(len(q[0]), 0)
            q = await private(a, "<storage xmlns='%s'/>" % BOOKMARKS, to=self.alice)
            self.assertEqual(rooms_of(q), ["secret@conference.localhost"])
            await logout(a, b)
        run(go())

    def test_refusals(self):
        async def go():
            a = await login(self.srv, self.alice + "/laptop")
            cases = [
                # no element: not-acceptable, as XEP-0049 says
                ("get", "", "not-acceptable"),
                ("set", "", "not-acceptable"),
                ("set", "text only", "not-acceptable"),
                # no namespace of its own, or a reserved one
                ("set", "<prefs>x</prefs>", "not-acceptable"),
                ("set", "<q xmlns='%s'/>" % PRIVATE, "not-acceptable"),
                ("set", "<message xmlns='jabber:client'/>", "not-acceptable"),
                ("get", "<x xmlns='jabber:server'/>", "not-acceptable"),
                # one element per namespace
                ("set", "<a xmlns='x:1'>1</a><b xmlns='x:1'>2</b>", "bad-request"),
                # over max_bytes (2k)
                ("set", "<big xmlns='x:big'>%s</big>" % ("b" * 3000), "not-acceptable"),
                # more namespaces in one request than an account keeps (3)
                ("get", "".join("<e xmlns='x:%d'/>" % i for i in range(4)), "not-acceptable"),
            ]
            for itype, inner, cond in cases:
                got = await refusal(private(a, inner, itype))
                self.assertEqual(got[1], cond, (itype, inner[:60], got))
                self.assertTrue(got[2], "the refusal says why: %r" % (got,))
            # nothing of those was kept
            q = await private(a, "<a xmlns='x:1'/>")
            self.assertEqual(len(q[0]), 0)
            # a query in another element than <query/>
            iq = a.make_iq_get()
            iq.append(ET.fromstring("<other xmlns='%s'><a xmlns='x:1'/></other>" % PRIVATE))
            self.assertEqual((await refusal(iq.send(timeout=10)))[1], "bad-request")
            # three namespaces fit; a fourth is refused, all or nothing
            await private(a, "<a xmlns='x:1'>1</a><b xmlns='x:2'>2</b>", "set")
            await private(a, "<c xmlns='x:3'>3</c>", "set")
            got = await refusal(private(a, "<c xmlns='x:3'>33</c><d xmlns='x:4'>4</d>", "set"))
            self.assertEqual(got[:2], ("modify", "not-acceptable"))
            self.assertIn("max_namespaces", got[2])
            q = await private(a, "<c xmlns='x:3'/>")
            self.assertEqual(q[0].text, "3", "the refused set changed nothing")
            # replacing and removing still work at the limit, and free a place
            await private(a, "<c xmlns='x:3'>333</c><b xmlns='x:2'/>", "set")
            await private(a, "<d xmlns='x:4'>4</d>", "set")
            q = await private(a, "<c xmlns='x:3'/><d xmlns='x:4'/><b xmlns='x:2'/>")
            self.assertEqual([(c.tag, c.text) for c in q],
                             [("{x:3}c", "333"), ("{x:4}d", "4"), ("{x:2}b", None)])
            await logout(a)
        run(go())

    def test_import_export_and_delete(self):
        # (an empty element, as ejabberd exports an account without bookmarks, is nothing)
        doc = {"jid": "carol@localhost", "password": PW,
               "private": [bookmarks("imported@conference.localhost"),
                           "<notes xmlns='%s'><note jid='x@y'>n</note></notes>" % NOTES,
                           "<metacontacts xmlns='storage:metacontacts'/>"]}
        st, body = self.srv.api("POST", "import", doc)
        self.assertEqual(st, 201, body)
        self.assertEqual(body["private"], 2)
        # refused documents: bad elements are named
        for bad, word in (([1], "private[0]"), (["<x/>"], "namespace"),
                          (["<a xmlns='x:1'>1</a>", "<b xmlns='x:1'>2</b>"], "second element"),
                          (["<a xmlns='x:%d'/>" % i for i in range(4)], "max_namespaces"),
                          (["<a xmlns='x:1'>%s</a>" % ("z" * 3000)], "max_bytes"),
                          ("<a xmlns='x:1'/>", "array")):
            st, body = self.srv.api("POST", "import", {"jid": "dan@localhost", "password": PW,
                                                       "private": bad})
            self.assertEqual(st, 400, body)
            self.assertIn(word, body["error"])
        st, body = self.srv.api("GET", "export/carol@localhost")
        self.assertEqual(st, 200, body)
        self.assertEqual(len(body["private"]), 2)
        self.assertIn("imported@conference.localhost", body["private"][0])
        self.assertIn(NOTES, body["private"][1])

        async def go():
            c = await login(self.srv, "carol@localhost/pc")
            q = await private(c, "<storage xmlns='%s'/>" % BOOKMARKS)
            self.assertEqual(rooms_of(q), ["imported@conference.localhost"])
            await logout(c)
        run(go())
        # an account deleted and made again starts without any
        st, _ = self.srv.api("DELETE", "accounts/carol@localhost")
        self.assertEqual(st, 204)
        self.srv.register("carol", PW)

        async def after():
            c = await login(self.srv, "carol@localhost/pc")
            q = await private(c, "<storage xmlns='%s'/>" % BOOKMARKS)
            self.assertEqual(len(q[0]), 0)
            await logout(c)
        run(after())
        st, body = self.srv.api("GET", "export/carol@localhost")
        self.assertNotIn("private", body)


class Off(xmpp.ServerCase):
    extra = "private_storage:\n  enabled: false\n"

    def test_off(self):
        alice = self.srv.register("alice", PW)

        async def go():
            a = await login(self.srv, alice + "/laptop")
            got = await refusal(private(a, bookmarks("r@conference.localhost"), "set"))
            self.assertEqual(got[1], "service-unavailable")
            await logout(a)
        run(go())


if __name__ == "__main__":
    unittest.main()
