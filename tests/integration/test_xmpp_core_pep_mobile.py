"""xmpp-core's PEP as OMEMO clients (Conversations, Monal) use it from phones: the owner's other
devices hear of its publications as their capabilities ask (+notify) and get the last items when
they come online, the roster access model with its groups, deletion told to those who heard of
the node, items paged with a result set (XEP-0059), and publish-options preconditions."""

import asyncio
import os
import sys
import unittest
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(__file__))
from test_xmpp_core_pep import (  # noqa: E402
    Base, DEVICES, DISCO_INFO, DISCO_ITEMS, META, OWNER, PUBSUB, befriend, devices, error_of, items,
    login, metadata, next_event, no_event, options, publish, pubsub)
from xmpp import logout, run  # noqa: E402

from slixmpp.exceptions import IqError  # noqa: E402
from slixmpp.xmlstream.handler import Callback  # noqa: E402
from slixmpp.xmlstream.matcher import MatchXPath  # noqa: E402

RSM = "http://jabber.org/protocol/rsm"
BUNDLE = "eu.siacs.conversations.axolotl.bundles:4242"
GEO = "http://jabber.org/protocol/geoloc"  # no client here asks for it unless told


async def set_groups(c, jid, groups):
    """The roster item jid of c's account in groups (a roster set, answered by the server)."""
    r = c.update_roster(jid, groups=groups)
    if r is not None:
        await r
    for _ in range(100):
        if sorted(c.client_roster[jid]["groups"]) == sorted(groups):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the roster push for %s did not come" % jid)


async def page(c, owner, node, max_=None, after=None, extra=""):
    """A result set request: ([item ids], first, first's index, last, count)."""
    rsm = "<set xmlns='%s'>" % RSM
    if max_ is not None:
        rsm += "<max>%d</max>" % max_
    if after is not None:
        rsm += "<after>%s</after>" % after
    rsm += extra + "</set>"
    res = await pubsub(c, "<items node='%s'/>%s" % (node, rsm), to=owner, itype="get")
    ps = res.xml.find("{%s}pubsub" % PUBSUB)
    ids = [it.get("id") for it in ps.find("{%s}items" % PUBSUB).findall("{%s}item" % PUBSUB)]
    st = ps.find("{%s}set" % RSM)
    first = st.find("{%s}first" % RSM)
    return (ids, first.text if first is not None else None,
            first.get("index") if first is not None else None, st.findtext("{%s}last" % RSM),
            st.findtext("{%s}count" % RSM))


async def login_learnt(server, jid, interests):
    """login(), then wait until the server has asked the new session's capabilities (a hash no
    other session has announced) and had the answer."""
    c = await login(server, jid, interests, presence=False)
    asked = asyncio.Event()
    c.register_handler(Callback("caps asked", MatchXPath("{jabber:client}iq/{%s}query"
                                                         % DISCO_INFO),
                                lambda iq: asked.set() if iq["type"] == "get" else None))
    c.send_presence()
    await asyncio.wait_for(asked.wait(), 15)
    await asyncio.sleep(0.5)  # the answer on its way back
    return c


class OwnDevices(Base):
    def test_own_resources_follow_their_capabilities(self):
        async def go():
            phone = await login(self.srv, self.alice + "/phone", interests=[DEVICES])
            laptop = await login(self.srv, self.alice + "/laptop", interests=[DEVICES])
            # a session whose capabilities ask for locations, not for devices
            tab = await login_learnt(self.srv, self.alice + "/tab", [GEO])
            await publish(phone, DEVICES, devices(1, 2), "current",
                          options(access_model="open"))
            # the other device and the publishing one hear of it: OMEMO's device list
            self.assertEqual((await next_event(laptop, DEVICES))[0], "current")
            self.assertEqual((await next_event(phone, DEVICES))[0], "current")
            await no_event(tab, DEVICES)
            await publish(phone, GEO, "<geoloc xmlns='%s'/>" % GEO, "g1")
            self.assertEqual((await next_event(tab, GEO))[0], "g1")
            await no_event(laptop, GEO)
            # a device coming online gets the last item of the nodes it asks for, only those
            watch = await login(self.srv, self.alice + "/watch", interests=[DEVICES])
            iid, payload = await next_event(watch, DEVICES)
            self.assertEqual(iid, "current")
            self.assertEqual([d.get("id") for d in payload], ["1", "2"])
            await no_event(watch, GEO)
            # whitelist (the owner only) is read by the owner's own devices too
            await publish(phone, BUNDLE, "<bundle xmlns='eu.siacs.conversations.axolotl'/>",
                          "current", options(access_model="whitelist"))
            tv = await login(self.srv, self.alice + "/tv", interests=[BUNDLE])
            self.assertEqual((await next_event(tv, BUNDLE))[0], "current")
            # a presence update is no new session: nothing sent again
            watch.send_presence(pstatus="away")
            await no_event(watch, DEVICES)
            await logout(phone, laptop, tab, watch, tv)
        run(go())


class Roster(Base):
    def test_roster_access_model(self):
        async def go():
            a = await login(self.srv, self.alice + "/phone")
            b = await login(self.srv, self.bob + "/laptop", interests=[META])
            c = await login(self.srv, self.carol + "/tab", interests=[META])
            await befriend(a, b)
            await befriend(a, c)
            await set_groups(a, self.bob, ["Friends"])
            await set_groups(a, self.carol, ["Work"])
            await asyncio.sleep(0.5)  # the server learns the contacts' capabilities
            await publish(a, META, metadata("r1"), "r1",
                          options(access_model="roster", groups=["Friends", "Family"]))
            # told: bob, in Friends; not carol, in Work (she sees alice's presence all the same)
            self.assertEqual((await next_event(b, META))[0], "r1")
            await no_event(c, META)
            self.assertEqual([i for i, _ in await items(b, self.alice, META)], ["r1"])
            self.assertEqual(await error_of(items(c, self.alice, META)),
                             ("not-authorized", "not-in-roster-group", None))
            res = await c["xep_0030"].get_items(jid=self.alice)
            self.assertEqual(len(res.xml.find("{%s}query" % DISCO_ITEMS)), 0)
            res = await b["xep_0030"].get_items(jid=self.alice)
            self.assertEqual([i.get("node") for i in res.xml.find("{%s}query" % DISCO_ITEMS)],
                             [META])
            # the node's configuration shows its groups
            res = await pubsub(a, "<configure node='%s'/>" % META, itype="get", ns=OWNER)
            x = res.xml.find("{%s}pubsub/{%s}configure/{jabber:x:data}x" % (OWNER, OWNER))
            f = {f.get("var"): [v.text for v in f.findall("{jabber:x:data}value")]
                 for f in x.findall("{jabber:x:data}field")}
            self.assertEqual(f["pubsub#access_model"], ["roster"])
            self.assertEqual(f["pubsub#roster_groups_allowed"], ["Family", "Friends"])
            # the same groups in another order meet the precondition; other groups do not
            await publish(a, META, metadata("r2"), "r2",
                          options(access_model="roster", groups=["Family", "Friends"]))
            self.assertEqual((await next_event(b, META))[0], "r2")
            self.assertEqual((await error_of(publish(a, META, metadata("r3"), "r3",
                                                     options(groups=["Work"]))))[:2],
                             ("conflict", "precondition-not-met"))
            # carol moved into Family: she reads it, and is told of what comes next
            await set_groups(a, self.carol, ["Family"])
            self.assertEqual([i for i, _ in await items(c, self.alice, META)], ["r2"])
            await publish(a, META, metadata("r4"), "r4")
            self.assertEqual((await next_event(c, META))[0], "r4")
            # bob out of the groups: a new session of his gets no last item
            await set_groups(a, self.bob, [])
            b2 = await login(self.srv, self.bob + "/phone", interests=[META])
            await no_event(b2, META)
            c2 = await login(self.srv, self.carol + "/phone", interests=[META])
            self.assertEqual((await next_event(c2, META))[0], "r4")
            await logout(a, b, c, b2, c2)
        run(go())

    def test_authorize_is_refused_precisely(self):
        async def go():
            a = await login(self.srv, self.alice + "/phone")
            self.assertEqual(await error_of(publish(a, META, metadata("1"), "1",
                                                    options(access_model="authorize"))),
                             ("not-acceptable", "unsupported-access-model",
                              "the authorize access model is not supported"))
            await publish(a, META, metadata("1"), "1")
            self.assertEqual(await error_of(pubsub(
                a, "<configure node='%s'><x xmlns='jabber:x:data' type='submit'>"
                   "<field var='FORM_TYPE' type='hidden'><value>%s#node_config</value>"
                   "</field><field var='pubsub#access_model'><value>authorize</value>"
                   "</field></x></configure>" % (META, PUBSUB), ns=OWNER)),
                ("not-acceptable", "unsupported-access-model",
                 "the authorize access model is not supported"))
            self.assertEqual(await error_of(publish(a, META, metadata("2"), "2",
                                                    options(groups=["a", ""]))),
                             ("bad-request", "invalid-options",
                              "a roster group in pubsub#roster_groups_allowed is empty, too "
                              "long or has a line break"))
            await logout(a)
        run(go())


class Delete(Base):
    def test_deletion_is_told(self):
        async def go():
            a = await login(self.srv, self.alice + "/phone", interests=[DEVICES])
            a2 = await login(self.srv, self.alice + "/laptop", interests=[DEVICES])
            b = await login(self.srv, self.bob + "/laptop", interests=[DEVICES])
            c = await login(self.srv, self.carol + "/tab", interests=[DEVICES])
            await befriend(a, b)
            await asyncio.sleep(0.8)
            await publish(a, DEVICES, devices(5), "current", options(access_model="open"))
            for x in (a, a2, b):
                self.assertEqual((await next_event(x, DEVICES))[0], "current")
            await pubsub(a, "<delete node='%s'/>" % DEVICES, ns=OWNER)
            for x in (a, a2, b):
                self.assertEqual(await next_event(x, DEVICES), ("delete", None))
            await no_event(c, DEVICES)  # carol never heard of it
            # a presence node: only those who may read it hear it go
            await publish(a, META, metadata("m"), "m", options(access_model="presence"))
            c2 = await login(self.srv, self.carol + "/phone", interests=[META])
            await befriend(c2, a)  # carol sees alice now...
            await pubsub(a, "<configure node='%s'><x xmlns='jabber:x:data' type='submit'>"
                            "<field var='FORM_TYPE' type='hidden'><value>%s#node_config"
                            "</value></field><field var='pubsub#access_model'>"
                            "<value>whitelist</value></field></x></configure>"
                            % (META, PUBSUB), ns=OWNER)
            await asyncio.sleep(0.3)
            while not c2.events.empty():
                c2.events.get_nowait()
            await pubsub(a, "<delete node='%s'/>" % META, ns=OWNER)
            await no_event(c2, META)  # ...but the node was the owner's only when it went
            await logout(a, a2, b, c, c2)
        run(go())


class Paging(Base):
    def test_items_in_pages(self):
        async def go():
            a = await login(self.srv, self.alice + "/phone")
            b = await login(self.srv, self.bob + "/laptop")
            node = "urn:xmpp:bookmarks:1"
            for i in range(5):
                await publish(a, node, "<conference xmlns='%s' name='r%d'/>" % (node, i),
                              "room%d" % i, options(max_items="max", access_model="open"))
            # newest first, max at a time, with first (its index), last and count
            self.assertEqual(await page(b, self.alice, node, 2),
                             (["room4", "room3"], "room4", "0", "room3", "5"))
            self.assertEqual(await page(b, self.alice, node, 2, "room3"),
                             (["room2", "room1"], "room2", "2", "room1", "5"))
            self.assertEqual(await page(b, self.alice, node, 2, "room1"),
                             (["room0"], "room0", "4", "room0", "5"))
            self.assertEqual(await page(b, self.alice, node, 2, "room0"),
                             ([], None, None, None, "5"))
            # max 0: the count only; no max: as many as the server gives
            self.assertEqual(await page(b, self.alice, node, 0), ([], None, None, None, "5"))
            self.assertEqual((await page(b, self.alice, node))[0],
                             ["room4", "room3", "room2", "room1", "room0"])
            # precise refusals
            self.assertEqual(await error_of(page(b, self.alice, node, 2, "gone")),
                             ("item-not-found", None, "no such item to page after"))
            self.assertEqual(await error_of(page(b, self.alice, node, 2, extra="<before/>")),
                             ("feature-not-implemented", None,
                              "items are paged from the newest on: before and index are not "
                              "supported"))
            self.assertEqual(await error_of(page(b, self.alice, node, 0, extra="<max>1</max>")),
                             ("bad-request", None, "the result set's max is given twice"))
            self.assertEqual(await error_of(pubsub(
                b, "<items node='%s' max_items='2'/><set xmlns='%s'><max>1</max></set>"
                   % (node, RSM), to=self.alice, itype="get")),
                ("bad-request", None,
                 "a result set pages the node's items: no max_items or item ids with it"))
            self.assertEqual(await error_of(pubsub(
                a, "<retract node='%s'><item id='room1'/></retract><set xmlns='%s'/>"
                   % (node, RSM))),
                ("bad-request", None, "a result set pages items only"))
            await logout(a, b)
        run(go())


class PublishOptions(Base):
    def test_preconditions(self):
        async def go():
            a = await login(self.srv, self.alice + "/phone")
            # what Conversations publishes its bundles with: open, max_items max
            for i in range(3):
                await publish(a, BUNDLE, "<bundle xmlns='eu.siacs.conversations.axolotl'/>",
                              "current", options(access_model="open", max_items="max"))
            iq = a.make_iq_set()
            iq.append(ET.fromstring(
                "<pubsub xmlns='%s'><publish node='%s'><item id='current'>"
                "<bundle xmlns='eu.siacs.conversations.axolotl'/></item></publish>%s</pubsub>"
                % (PUBSUB, BUNDLE, options(access_model="open", max_items="1"))))
            try:
                await iq.send(timeout=10)
                raise AssertionError("a publish against the node's configuration went through")
            except IqError as e:
                err = e.iq.xml.find("{jabber:client}error")
                # XEP-0060 7.1.5: conflict, precondition-not-met, of type cancel
                self.assertEqual(err.get("type"), "cancel")
                self.assertIsNotNone(err.find("{urn:ietf:params:xml:ns:xmpp-stanzas}conflict"))
                self.assertIsNotNone(err.find("{%s#errors}precondition-not-met" % PUBSUB))
            self.assertEqual(len(await items(a, None, BUNDLE)), 1)
            await logout(a)
        run(go())


if __name__ == "__main__":
    unittest.main()
