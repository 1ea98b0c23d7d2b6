"""xmpp-core's personal eventing (XEP-0163 with XEP-0060's publish-options) and vCards
(XEP-0054), with a real client (slixmpp): OMEMO device lists and XEP-0084 avatars published,
contacts notified through their entity capabilities (XEP-0115), the last item for a contact that
comes online (a contact's, or another of the owner's own), the access models (roster groups
included), node deletion told, result set paging of items, node limits, and hostile requests
answered precisely."""

import asyncio
import os
import sys
import unittest
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(__file__))
import xmpp  # noqa: E402
from xmpp import logout, run  # noqa: E402

from slixmpp.xmlstream.handler import Callback  # noqa: E402
from slixmpp.xmlstream.matcher import MatchXPath  # noqa: E402

PW = "correct horse"
PUBSUB = "http://jabber.org/protocol/pubsub"
OWNER = PUBSUB + "#owner"
EVENT = PUBSUB + "#event"
ERRORS = PUBSUB + "#errors"
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
DEVICES = "eu.siacs.conversations.axolotl.devicelist"
BUNDLES = "eu.siacs.conversations.axolotl.bundles"
META = "urn:xmpp:avatar:metadata"
DATA = "urn:xmpp:avatar:data"
DISCO_INFO = "http://jabber.org/protocol/disco#info"
DISCO_ITEMS = "http://jabber.org/protocol/disco#items"


async def login(server, jid, interests=(), presence=True):
    """A client with PEP plugins; interests: nodes it asks notifications of (+notify in its
    capabilities), announced with its first presence."""
    c = xmpp.Client(jid, PW, server)
    for p in ("xep_0060", "xep_0163", "xep_0115", "xep_0084", "xep_0054"):
        c.register_plugin(p)
    c.events = asyncio.Queue()
    c.register_handler(Callback("pep events",
                                MatchXPath("{jabber:client}message/{%s}event" % EVENT),
                                lambda m: c.events.put_nowait(m)))
    c.connect(("127.0.0.1", server.c2s))
    if not await asyncio.wait_for(c.started, 15):
        raise AssertionError("%s could not log in" % jid)
    await c.get_roster()
    for ns in interests:
        c["xep_0163"].add_interest(ns)
    await asyncio.sleep(0.3)  # the capabilities hash is recomputed
    if presence:
        c.send_presence()
    return c


def devices(*ids):
    return "<list xmlns='eu.siacs.conversations.axolotl'>%s</list>" % "".join(
        "<device id='%d'/>" % i for i in ids)


def metadata(sha):
    return ("<metadata xmlns='%s'><info bytes='3' id='%s' type='image/png' width='1' "
            "height='1'/></metadata>" % (META, sha))


def options(groups=None, **fields):
    """publish-options with the fields given, and roster_groups_allowed when groups is a list."""
    out = ("<publish-options><x xmlns='jabber:x:data' type='submit'>"
           "<field var='FORM_TYPE' type='hidden'><value>%s#publish-options</value></field>"
           % PUBSUB)
    for var, v in fields.items():
        out += "<field var='pubsub#%s'><value>%s</value></field>" % (var, v)
    if groups is not None:
        out += ("<field var='pubsub#roster_groups_allowed'>%s</field>"
                % "".join("<value>%s</value>" % g for g in groups))
    return out + "</x></publish-options>"


async def pubsub(c, inner, to=None, itype="set", ns=PUBSUB):
    iq = c.make_iq_set() if itype == "set" else c.make_iq_get()
    if to:
        iq["to"] = to
    iq.append(ET.fromstring("<pubsub xmlns='%s'>%s</pubsub>" % (ns, inner)))
    return await iq.send(timeout=10)


async def publish(c, node, payload, item_id=None, opts=""):
    item = "<item id='%s'>" % item_id if item_id else "<item>"
    return await pubsub(c, "<publish node='%s'>%s%s</item></publish>%s"
                        % (node, item, payload, opts))


async def items(c, owner, node, inner="", max_items=None):
    mx = " max_items='%d'" % max_items if max_items else ""
    res = await pubsub(c, "<items node='%s'%s>%s</items>" % (node, mx, inner), to=owner,
                       itype="get")
    its = res.xml.find("{%s}pubsub/{%s}items" % (PUBSUB, PUBSUB))
    return [(it.get("id"), it[0] if len(it) else None)
            for it in its.findall("{%s}item" % PUBSUB)]


async def error_of(coro):
    """(condition, pubsub#errors condition or None, text) of the error the request got."""
    err, cond = await xmpp.refused(coro)
    app = [ch.tag.split("}")[1] for ch in err if ch.tag.startswith("{%s}" % ERRORS)]
    return cond, (app[0] if app else None), err.findtext("{%s}text" % STANZAS)


async def next_event(c, node, timeout=5):
    """The next notification about node: (item id, payload element), ('retract', id) or
    ('delete', None)."""
    while True:
        m = await asyncio.wait_for(c.events.get(), timeout)
        d = m.xml.find("{%s}event/{%s}delete" % (EVENT, EVENT))
        if d is not None and d.get("node") == node:
            return "delete", None
        its = m.xml.find("{%s}event/{%s}items" % (EVENT, EVENT))
        if its is None or its.get("node") != node:
            continue
        it = its.find("{%s}item" % EVENT)
        if it is not None:
            return it.get("id"), (it[0] if len(it) else None)
        rt = its.find("{%s}retract" % EVENT)
        return "retract", rt.get("id")


async def no_event(c, node, wait=0.7):
    try:
        got = await next_event(c, node, wait)
    except asyncio.TimeoutError:
        return
    raise AssertionError("an unexpected notification: %r" % (got,))


async def befriend(a, b):
    """Mutual subscription between two logged-in clients."""
    a.send_presence(pto=b.boundjid.bare, ptype="subscribe")
    for _ in range(200):
        if (a.client_roster[b.boundjid.bare]["subscription"] == "both" and
                b.client_roster[a.boundjid.bare]["subscription"] == "both"):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("no mutual subscription")


class Base(xmpp.ServerCase):
    def setUp(self):
        super().setUp()
        self.alice = self.srv.register("alice", PW)
        self.bob = self.srv.register("bob", PW)
        self.carol = self.srv.register("carol", PW)


class Pep(Base):
    def test_account_advertises_pep(self):
        async def go():
            a = await login(self.srv, self.alice + "/phone")
            info = await a["xep_0030"].get_info(jid=self.alice, local=False)
            q = info.xml.find("{%s}query" % DISCO_INFO)
            ids = [(i.get("category"), i.get("type")) for i in q.findall("{%s}identity"
                                                                         % DISCO_INFO)]
            self.assertIn(("pubsub", "pep"), ids)
            feats = [f.get("var") for f in q.findall("{%s}feature" % DISCO_INFO)]
            for f in ("publish", "publish-options", "auto-create", "retrieve-items", "config-node",
                      "persistent-items", "access-presence", "access-open",
                      "last-published", "delete-nodes", "retract-items"):
                self.assertIn(PUBSUB + "#" + f, feats)
            self.assertIn("vcard-temp", feats)
            await logout(a)
        run(go())

    def test_publish_notifies_contacts_with_notify(self):
        async def go():
            a = await login(self.srv, self.alice + "/phone", interests=[DEVICES])
            b = await login(self.srv, self.bob + "/laptop", interests=[DEVICES])
            c = await login(self.srv, self.carol + "/tab", interests=[DEVICES])
            await befriend(a, b)
            await asyncio.sleep(0.5)  # the server learns bob's capabilities
            res = await publish(a, DEVICES, devices(11, 22), "current",
                                options(access_model="open"))
            pub = res.xml.find("{%s}pubsub/{%s}publish" % (PUBSUB, PUBSUB))
            self.assertEqual(pub.get("node"), DEVICES)
            self.assertEqual(pub.find("{%s}item" % PUBSUB).get("id"), "current")
            iid, payload = await next_event(b, DEVICES)
            self.assertEqual(iid, "current")
            self.assertEqual([d.get("id") for d in payload], ["11", "22"])
            # the owner's own session hears of it too
            iid, _ = await next_event(a, DEVICES)
            self.assertEqual(iid, "current")
            # carol is no contact: she never sent alice her presence, so she is not told
            await no_event(c, DEVICES)
            # an avatar (XEP-0084): data with the default access, then its metadata
            await publish(a, DATA, "<data xmlns='%s'>iVBO</data>" % DATA, "abc")
            await publish(a, META, metadata("abc"), "abc")
            iid, payload = await next_event(b, META)  # slixmpp's xep_0084 wants metadata
            self.assertEqual(iid, "abc")
            self.assertEqual(payload.tag, "{%s}metadata" % META)
            got = await items(b, self.alice, DATA)
            self.assertEqual([i for i, _ in got], ["abc"])
            self.assertEqual(got[0][1].text, "iVBO")
            # slixmpp's own PEP client reads the same answers
            res = await b["xep_0060"].get_items(self.alice, DEVICES)
            self.assertEqual(len(res["pubsub"]["items"]), 1)
            await logout(a, b, c)
        run(go())
        self.assertGreaterEqual(self.srv.metric("xmpp_pep_publishes_total", {"result": "ok"}),
                                3)
        self.assertGreaterEqual(self.srv.metric("xmpp_pep_notifications_total"), 3)

    def test_contact_coming_online_gets_the_last_item(self):
        async def go():
            a = await login(self.srv, self.alice + "/phone")
            b = await login(self.srv, self.bob + "/laptop", interests=[DEVICES])
            await befriend(a, b)
            await logout(b)
            await publish(a, DEVICES, devices(1), "current", options(access_model="open"))
            await publish(a, DEVICES, devices(1, 2), "current", options(access_model="open"))
            await publish(a, META, metadata("x1"), "x1")
            b = await login(self.srv, self.bob + "/laptop", interests=[DEVICES, META])
            iid, payload = await next_event(b, DEVICES)
            self.assertEqual([d.get("id") for d in payload], ["1", "2"])
            iid, payload = await next_event(b, META)
            self.assertEqual(iid, "x1")
            # a second resource with the same capabilities: its hash is known, no question
            b2 = await login(self.srv, self.bob + "/phone", interests=[DEVICES, META])
            iid, _ = await next_event(b2, DEVICES)
            self.assertEqual(iid, "current")
            # a presence update does not send them again
            b.send_presence(pstatus="busy")
            await no_event(b, DEVICES)
            await logout(a, b, b2)
        run(go())

    def test_access_models(self):
        async def go():
            a = await login(self.srv, self.alice + "/phone")
            b = await login(self.srv, self.bob + "/laptop")
            c = await login(self.srv, self.carol + "/tab")
            await befriend(a, b)
            await asyncio.sleep(0.5)  # the server learns bob's capabilities
            await publish(a, DEVICES, devices(7), "current", options(access_model="open"))
            await publish(a, META, metadata("m"), "m")  # presence, the default
            # bob's capabilities ask for avatars (slixmpp's xep_0084), not for devices
            self.assertEqual((await next_event(b, META))[0], "m")
            await no_event(b, DEVICES)
            await publish(a, "urn:xmpp:private", "<secret xmlns='x'/>", "s",
                          options(access_model="whitelist"))
            # anyone reads an open node
            self.assertEqual([i for i, _ in await items(c, self.alice, DEVICES)], ["current"])
            # a presence node: contacts subscribed to alice's presence only
            self.assertEqual([i for i, _ in await items(b, self.alice, META)], ["m"])
            self.assertEqual(await error_of(items(c, self.alice, META)),
                             ("not-authorized", "presence-subscription-required", None))
            # a whitelist node: the owner only
            self.assertEqual((await error_of(items(b, self.alice, "urn:xmpp:private")))[:2],
                             ("not-allowed", "closed-node"))
            self.assertEqual(len(await items(a, None, "urn:xmpp:private")), 1)
            # nodes listed to each as they may read them
            res = await c["xep_0030"].get_items(jid=self.alice)
            nodes = sorted(i.get("node") for i in
                           res.xml.find("{%s}query" % DISCO_ITEMS))
            self.assertEqual(nodes, [DEVICES])
            res = await a["xep_0030"].get_items(jid=self.alice)
            self.assertEqual(len(res.xml.find("{%s}query" % DISCO_ITEMS)), 3)
            # only the owner writes
            self.assertEqual((await error_of(pubsub(c, "<publish node='x'><item>"
                                                       "<a xmlns='y'/></item></publish>",
                                                    to=self.alice)))[0], "forbidden")
            self.assertEqual(await error_of(items(c, self.alice, "nothing")),
                             ("item-not-found", None, "no such node"))
            await logout(a, b, c)
        run(go())

    def test_publish_options_must_match_the_node(self):
        async def go():
            a = await login(self.srv, self.alice + "/phone")
            await publish(a, META, metadata("1"), "1")
            cond = await error_of(publish(a, META, metadata("2"), "2",
                                          options(access_model="open")))
            self.assertEqual(cond[:2], ("conflict", "precondition-not-met"))
            # the same options as the node's are fine
            await publish(a, META, metadata("2"), "2", options(access_model="presence",
                                                               max_items=1))
            cond = await error_of(publish(a, META, metadata("3"), "3", options(max_items="max")))
            self.assertEqual(cond[:2], ("conflict", "precondition-not-met"))
            self.assertEqual(await error_of(publish(a, META, metadata("3"), "3",
                                                    options(access_model="authorize"))),
                             ("not-acceptable", "unsupported-access-model",
                              "the authorize access model is not supported"))
            # what an OMEMO client does then: read the node's configuration, open it, publish
            res = await pubsub(a, "<configure node='%s'/>" % META, itype="get", ns=OWNER)
            x = res.xml.find("{%s}pubsub/{%s}configure/{jabber:x:data}x" % (OWNER, OWNER))
            fields = {f.get("var"): f.findtext("{jabber:x:data}value")
                      for f in x.findall("{jabber:x:data}field")}
            self.assertEqual(fields["FORM_TYPE"], PUBSUB + "#node_config")
            self.assertEqual(fields["pubsub#access_model"], "presence")
            self.assertEqual(fields["pubsub#max_items"], "1")
            await pubsub(a, "<configure node='%s'><x xmlns='jabber:x:data' type='submit'>"
                            "<field var='FORM_TYPE' type='hidden'><value>%s#node_config</value>"
                            "</field><field var='pubsub#access_model'><value>open</value>"
                            "</field></x></configure>" % (META, PUBSUB), ns=OWNER)
            await publish(a, META, metadata("3"), "3", options(access_model="open"))
            self.assertEqual((await error_of(pubsub(a, "<configure node='none'/>", itype="get",
                                                    ns=OWNER)))[0], "item-not-found")
            await logout(a)
        run(go())

    def test_max_items_retract_and_delete(self):
        async def go():
            node = "urn:xmpp:bookmarks:1"
            a = await login(self.srv, self.alice + "/phone", interests=[node])
            for i in range(4):
                await publish(a, node, "<conference xmlns='%s' name='r%d'/>" % (node, i),
                              "room%d" % i, options(max_items=3, persist_items="true"))
            got = await items(a, None, node)
            self.assertEqual([i for i, _ in got], ["room3", "room2", "room1"])
            self.assertEqual([i for i, _ in await items(a, None, node, max_items=1)],
                             ["room3"])
            got = await items(a, None, node, "<item id='room1'/><item id='gone'/>")
            self.assertEqual([i for i, _ in got], ["room1"])
            # a republished id is the newest again
            await publish(a, node, "<conference xmlns='%s' name='again'/>" % node, "room1",
                          options(max_items=3))
            self.assertEqual([i for i, _ in await items(a, None, node)],
                             ["room1", "room3", "room2"])
            await asyncio.sleep(0.2)
            while not a.events.empty():  # the publications' own notifications
                a.events.get_nowait()
            await pubsub(a, "<retract node='%s' notify='1'><item id='room3'/></retract>"
                         % node)
            self.assertEqual(await next_event(a, node), ("retract", "room3"))
            self.assertEqual([i for i, _ in await items(a, None, node)], ["room1", "room2"])
            self.assertEqual((await error_of(pubsub(
                a, "<retract node='%s'><item id='room3'/></retract>" % node)))[0],
                "item-not-found")
            await pubsub(a, "<delete node='%s'/>" % node, ns=OWNER)
            self.assertEqual((await error_of(items(a, None, node)))[0], "item-not-found")
            await logout(a)
        run(go())

    def test_hostile_requests(self):
        async def go():
            a = await login(self.srv, self.alice + "/phone")
            cases = [
                ("<publish><item><a xmlns='x'/></item></publish>",
                 ("bad-request", "nodeid-required", "the node is not named")),
                ("<publish node=''><item><a xmlns='x'/></item></publish>",
                 ("bad-request", "nodeid-required", "the node name is empty or too long")),
                ("<publish node='%s'><item><a xmlns='x'/></item></publish>" % ("n" * 1024),
                 ("bad-request", "nodeid-required", "the node name is empty or too long")),
                ("<publish node='n'/>",
                 ("bad-request", "item-required", "publish holds an item")),
                ("<publish node='n'><item/><item/></publish>",
                 ("bad-request", "invalid-payload", "one item is published at a time")),
                ("<publish node='n'><item/></publish>",
                 ("bad-request", "payload-required", "the item has no payload")),
                ("<publish node='n'><item><a xmlns='x'/><b xmlns='x'/></item></publish>",
                 ("bad-request", "invalid-payload", "an item holds one payload element")),
                ("<publish node='n'><item id=''><a xmlns='x'/></item></publish>",
                 ("bad-request", None, "the item id is empty or too long")),
                ("<publish node='n'><item><a xmlns='x'/></item></publish>"
                 "<publish node='m'><item><a xmlns='x'/></item></publish>",
                 ("bad-request", None, "pubsub holds one action")),
                ("<publish node='n'><item><a xmlns='x'/></item></publish>" +
                 options(max_items="0"),
                 ("bad-request", "invalid-options",
                  "pubsub#max_items is a positive number or max")),
                ("<publish node='n'><item><a xmlns='x'/></item></publish>" +
                 options(persist_items="perhaps"),
                 ("bad-request", "invalid-options", "pubsub#persist_items is a boolean")),
                ("<publish node='n'><item><a xmlns='x'/></item></publish>"
                 "<publish-options><x xmlns='jabber:x:data' type='submit'/></publish-options>",
                 ("bad-request", "invalid-options",
                  "the form's FORM_TYPE is not pubsub#publish-options")),
                ("<publish node='n'><item><a xmlns='x'>%s</a></item></publish>" % ("z" * 3000),
                 ("not-acceptable", "payload-too-big",
                  "the payload is larger than this server keeps (pep.max_payload)")),
            ]
            for inner, want in cases:
                self.assertEqual(await error_of(pubsub(a, inner)), want, inner[:80])
            self.assertEqual(await error_of(pubsub(a, "<items node='n' max_items='x'/>",
                                                   itype="get")),
                             ("bad-request", None, "max_items is a positive number"))
            # nothing was made by all that
            self.assertEqual((await error_of(items(a, None, "n")))[0], "item-not-found")
            # node count bounded (pep.max_nodes: 3)
            for n in ("n1", "n2", "n3"):
                await publish(a, n, "<a xmlns='x'/>")
            self.assertEqual((await error_of(publish(a, "n4", "<a xmlns='x'/>")))[:2],
                             ("not-allowed", "max-nodes-exceeded"))
            await logout(a)
        run(go())
        # the nine refused publishes that named a node, and the node too many
        self.assertEqual(self.srv.metric("xmpp_pep_publishes_total", {"result": "refused"}), 10)

    extra = "pep:\n  max_payload: 2k\n  max_nodes: 3\n"


class PepOff(Base):
    extra = "pep:\n  enabled: false\n"

    def test_off(self):
        async def go():
            a = await login(self.srv, self.alice + "/phone", interests=[DEVICES])
            b = await login(self.srv, self.bob + "/laptop", interests=[DEVICES])
            await befriend(a, b)
            info = await a["xep_0030"].get_info(jid=self.alice, local=False)
            q = info.xml.find("{%s}query" % DISCO_INFO)
            feats = [f.get("var") for f in q.findall("{%s}feature" % DISCO_INFO)]
            self.assertNotIn(PUBSUB + "#publish", feats)
            self.assertEqual((await error_of(publish(a, DEVICES, devices(1))))[0],
                             "service-unavailable")
            res = await b["xep_0030"].get_items(jid=self.alice)
            self.assertEqual(len(res.xml.find("{%s}query" % DISCO_ITEMS)), 0)
            await logout(a, b)
        run(go())


class Vcard(Base):
    def test_set_and_get(self):
        async def go():
            a = await login(self.srv, self.alice + "/phone")
            b = await login(self.srv, self.bob + "/laptop")
            # nothing set yet: an empty vCard
            v = await b["xep_0054"].get_vcard(self.alice, local=False, cached=False)
            self.assertEqual(v["vcard_temp"]["FN"], "")
            card = a["xep_0054"].make_vcard()
            card["FN"] = "Alice Liddell"
            card["NICKNAME"] = "al"
            await a["xep_0054"].publish_vcard(card)
            v = await b["xep_0054"].get_vcard(self.alice, local=False, cached=False)
            self.assertEqual(v["vcard_temp"]["FN"], "Alice Liddell")
            self.assertEqual(v["vcard_temp"]["NICKNAME"], ["al"])
            v = await a["xep_0054"].get_vcard(local=False, cached=False)
            self.assertEqual(v["vcard_temp"]["FN"], "Alice Liddell")
            # only the owner sets it
            iq = b.make_iq_set(ito=self.alice)
            iq.append(ET.fromstring("<vCard xmlns='vcard-temp'><FN>mallory</FN></vCard>"))
            self.assertEqual((await error_of(iq.send(timeout=10)))[0], "forbidden")
            # bounded (pep.max_payload)
            iq = a.make_iq_set()
            iq.append(ET.fromstring("<vCard xmlns='vcard-temp'><DESC>%s</DESC></vCard>"
                                    % ("d" * 3000)))
            self.assertEqual((await error_of(iq.send(timeout=10)))[0], "not-acceptable")
            await logout(a, b)
        run(go())

    extra = "pep:\n  max_payload: 2k\n"


if __name__ == "__main__":
    unittest.main()
