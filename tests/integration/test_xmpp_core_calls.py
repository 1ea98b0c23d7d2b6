"""Calls through xmpp-core: Jingle Message Initiation (XEP-0353) and Jingle (XEP-0166/0167/0176)
with real clients (slixmpp; the JMI and Jingle payloads written as XML). A propose to the
callee's bare JID rings every resource of the callee, is copied to the caller's other resources
(carbons) and archived for both (MAM), reaches a callee resource that said it is inactive (CSI)
at once, and the answers (proceed, reject, retract, finish) travel back with their copies.
Jingle IQs route between full JIDs, also to an inactive client."""

import asyncio
import os
import sys
import unittest
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(__file__))
import suite  # noqa: E402
import xmpp  # noqa: E402
from test_xmpp_core_mam import form, query  # noqa: E402
from test_xmpp_core_mam import login as mam_login  # noqa: E402
from xmpp import logout, run  # noqa: E402

from slixmpp.xmlstream.handler import Callback  # noqa: E402
from slixmpp.xmlstream.matcher import MatchXPath  # noqa: E402

PW = "correct horse"
JMI = "urn:xmpp:jingle-message:0"
JINGLE = "urn:xmpp:jingle:1"
RTP = "urn:xmpp:jingle:apps:rtp:1"
ICE = "urn:xmpp:jingle:transports:ice-udp:1"
CARBONS = "urn:xmpp:carbons:2"
FWD = "urn:xmpp:forward:0"
CSI = "urn:xmpp:csi:0"
CHATSTATES = "http://jabber.org/protocol/chatstates"
CLIENT = "jabber:client"


async def login(srv, jid, resource):
    """A client with carbons on that records every message and answers Jingle IQs."""
    c = await mam_login(srv, "%s/%s" % (jid, resource))
    await c["xep_0280"].enable()
    c.seen = []
    c.arrived = asyncio.Event()
    c.jingle = []

    def on_message(m):
        c.seen.append(m.xml)
        c.arrived.set()

    def on_jingle(iq):
        if iq["type"] == "set":
            c.jingle.append(iq.xml)
            c.arrived.set()
            iq.reply().send()

    c.register_handler(Callback("all messages", MatchXPath("{%s}message" % CLIENT), on_message))
    c.register_handler(Callback("jingle", MatchXPath("{%s}iq/{%s}jingle" % (CLIENT, JINGLE)),
                                on_jingle))
    return c


def jmi_of(m):
    """(element name, id, how) of the JMI payload of message m: 'direct', or 'sent'/'received'
    for a carbon copy; None without one."""
    for el in m:
        if el.tag.startswith("{%s}" % JMI):
            return el.tag.split("}")[1], el.get("id"), "direct"
        if el.tag in ("{%s}sent" % CARBONS, "{%s}received" % CARBONS):
            inner = el.find("{%s}forwarded/{%s}message" % (FWD, CLIENT))
            if inner is not None:
                r = jmi_of(inner)
                if r:
                    return r[0], r[1], el.tag.split("}")[1]
    return None


async def wait(c, pred, timeout=15):
    """The first stanza c saw (messages, then Jingle IQs) for which pred holds."""
    loop = asyncio.get_event_loop()
    deadline = loop.time() + timeout
    while True:
        for x in c.seen + c.jingle:
            if pred(x):
                return x
        left = deadline - loop.time()
        if left <= 0:
            raise AssertionError("%s: nothing matched in %d stanzas" % (c.boundjid,
                                                                       len(c.seen)))
        c.arrived.clear()
        try:
            await asyncio.wait_for(c.arrived.wait(), left)
        except asyncio.TimeoutError:
            pass


def jmi_pred(name, sid, how="direct"):
    return lambda m: jmi_of(m) == (name, sid, how)


def send_jmi(c, to, name, sid, media=True):
    m = c.make_message(mto=to, mtype="chat")
    el = ET.Element("{%s}%s" % (JMI, name), {"id": sid})
    if media:
        ET.SubElement(el, "{%s}description" % RTP, {"media": "audio"})
    m.append(el)
    m.append(ET.Element("{urn:xmpp:hints}store"))
    m.send()


async def ping(c):
    iq = c.make_iq_get(ito=c.boundjid.domain)
    iq.append(ET.Element("{urn:xmpp:ping}ping"))
    await iq.send(timeout=10)


def jingle_iq(c, to, action, sid, inner=""):
    iq = c.make_iq_set(ito=to)
    iq.append(ET.fromstring("<jingle xmlns='%s' action='%s' sid='%s' initiator='%s'>%s</jingle>"
                            % (JINGLE, action, sid, c.boundjid.full, inner)))
    return iq.send(timeout=15)


CONTENT = ("<content creator='initiator' name='voice'>"
           "<description xmlns='%s' media='audio'>"
           "<payload-type id='111' name='opus' clockrate='48000' channels='2'/></description>"
           "<transport xmlns='%s' ufrag='8hhy' pwd='asd88fgpdd777uzjYhagZg'>%s</transport>"
           "</content>")
CANDIDATE = ("<candidate component='1' foundation='1' generation='0' id='el0747fg11' "
             "ip='192.0.2.10' network='1' port='%d' priority='2130706431' protocol='udp' "
             "type='relay' rel-addr='10.0.1.1' rel-port='8998'/>")


class Calls(unittest.TestCase):
    def setUp(self):
        self.tmpdir = suite.tempdir()
        self.srv = xmpp.Server(self.tmpdir.name)
        self.alice = self.srv.register("alice", PW)
        self.bob = self.srv.register("bob", PW)

    def tearDown(self):
        try:
            self.assertEqual(self.srv.stop(), 0, self.srv.output())
            suite.assert_clean(self, self.srv.output())
        finally:
            self.srv.close()
            self.tmpdir.cleanup()

    def test_jmi_and_jingle(self):
        async def go():
            a1 = await login(self.srv, self.alice, "phone")
            a2 = await login(self.srv, self.alice, "laptop")
            b1 = await login(self.srv, self.bob, "phone")
            b2 = await login(self.srv, self.bob, "tablet")
            try:
                await self.call(a1, a2, b1, b2)
            finally:
                await logout(a1, a2, b1, b2)

        run(go(), timeout=240)

    async def call(self, a1, a2, b1, b2):
        # b1 (the phone that will answer) and b2 say they are inactive
        for b in (b1, b2):
            b.send_raw("<inactive xmlns='%s'/>" % CSI)
            await ping(b)
        # CSI is really on: a chat state for b2 is held ...
        m = a1.make_message(mto=b2.boundjid.full, mtype="chat")
        m.append(ET.Element("{%s}composing" % CHATSTATES))
        m.send()
        await ping(a1)
        await asyncio.sleep(1)
        composing = lambda x: x.find("{%s}composing" % CHATSTATES) is not None  # noqa: E731
        self.assertFalse(any(composing(x) for x in b2.seen))

        # ... but a propose to bob's bare JID rings every resource at once, inactive or not
        send_jmi(a1, self.bob, "propose", "call-1")
        for b in (b1, b2):
            m = await wait(b, jmi_pred("propose", "call-1"))
            self.assertEqual(m.get("from"), a1.boundjid.full)
            self.assertIsNotNone(m.find("{%s}propose/{%s}description" % (JMI, RTP)))
        # the held chat state came first, flushed before the call
        self.assertLess(b2.seen.index(await wait(b2, composing)),
                        b2.seen.index(await wait(b2, jmi_pred("propose", "call-1"))))
        # alice's other device learns of the call she placed
        await wait(a2, jmi_pred("propose", "call-1", "sent"))
        # the callee's devices ring (ringing) and one answers: proceed to the caller's device
        send_jmi(b1, a1.boundjid.full, "ringing", "call-1", media=False)
        await wait(a1, jmi_pred("ringing", "call-1"))
        send_jmi(b1, a1.boundjid.full, "proceed", "call-1", media=False)
        m = await wait(a1, jmi_pred("proceed", "call-1"))
        self.assertEqual(m.get("from"), b1.boundjid.full)
        # bob's other device stops ringing (its copy of proceed); alice's sees it too
        await wait(b2, jmi_pred("proceed", "call-1", "sent"))
        await wait(a2, jmi_pred("proceed", "call-1", "received"))

        # Jingle between the two full JIDs; the callee's phone is still inactive
        cand = CONTENT % (RTP, ICE, CANDIDATE % 50000)
        await jingle_iq(a1, b1.boundjid.full, "session-initiate", "call-1", cand)
        x = await wait(b1, lambda x: x.find("{%s}jingle" % JINGLE) is not None and
                       x.find("{%s}jingle" % JINGLE).get("action") == "session-initiate")
        self.assertEqual(x.get("from"), a1.boundjid.full)
        self.assertIsNotNone(x.find(".//{%s}candidate" % ICE))
        await jingle_iq(b1, a1.boundjid.full, "session-accept", "call-1",
                        CONTENT % (RTP, ICE, CANDIDATE % 50002))
        await jingle_iq(b1, a1.boundjid.full, "transport-info", "call-1",
                        "<content creator='initiator' name='voice'><transport xmlns='%s' "
                        "ufrag='8hhy' pwd='asd88fgpdd777uzjYhagZg'>%s</transport></content>"
                        % (ICE, CANDIDATE % 50004))
        for action in ("session-accept", "transport-info"):
            await wait(a1, lambda x, a=action: x.find("{%s}jingle" % JINGLE) is not None and
                       x.find("{%s}jingle" % JINGLE).get("action") == a)
        # the Jingle IQs went to b1 alone: not to the other devices
        await jingle_iq(a1, b1.boundjid.full, "session-terminate", "call-1",
                        "<reason><success/></reason>")
        await wait(b1, lambda x: x.find("{%s}jingle" % JINGLE) is not None and
                   x.find("{%s}jingle" % JINGLE).get("action") == "session-terminate")
        self.assertEqual(b2.jingle, [])
        self.assertEqual(a2.jingle, [])
        send_jmi(a1, b1.boundjid.full, "finish", "call-1", media=False)
        await wait(b1, jmi_pred("finish", "call-1"))
        await wait(a2, jmi_pred("finish", "call-1", "sent"))

        # a call the caller gives up: retract reaches every device of the callee
        send_jmi(a1, self.bob, "propose", "call-2")
        for b in (b1, b2):
            await wait(b, jmi_pred("propose", "call-2"))
        send_jmi(a1, self.bob, "retract", "call-2", media=False)
        for b in (b1, b2):
            await wait(b, jmi_pred("retract", "call-2"))
        await wait(a2, jmi_pred("retract", "call-2", "sent"))

        # a call the callee declines from the tablet: the caller and bob's phone hear of it
        send_jmi(a2, self.bob, "propose", "call-3")
        await wait(b2, jmi_pred("propose", "call-3"))
        send_jmi(b2, a2.boundjid.full, "reject", "call-3", media=False)
        await wait(a2, jmi_pred("reject", "call-3"))
        await wait(b1, jmi_pred("reject", "call-3", "sent"))
        await wait(a1, jmi_pred("reject", "call-3", "received"))

        # every step is in both archives
        for c, peer in ((b1, self.alice), (a1, self.bob)):
            page = await query(c, form(**{"with": peer}))
            self.assertTrue(page.complete)
            got = set()
            for r in [m.xml for m in c.results]:
                fwd = r.find(".//{%s}forwarded/{%s}message" % (FWD, CLIENT))
                j = jmi_of(fwd) if fwd is not None else None
                if j:
                    got.add(j[:2])
            for step in (("propose", "call-1"), ("proceed", "call-1"), ("finish", "call-1"),
                         ("propose", "call-2"), ("retract", "call-2"), ("reject", "call-3")):
                self.assertIn(step, got, (c.boundjid, got))


if __name__ == "__main__":
    unittest.main()
