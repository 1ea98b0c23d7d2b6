"""xmpp-core keeps an account's avatar the same both ways (XEP-0398), with real clients
(slixmpp): an avatar published with XEP-0084 becomes the vcard-temp PHOTO older clients read
(only when its data node is open to all, by default), a vCard's PHOTO is published to the PEP
nodes and the contacts notified, the hash goes into every available presence (XEP-0153) and
out again when the avatar changes, an imported vCard's hash is learnt at the first login, and
with pep.vcard_avatars off the two stay apart."""

import asyncio
import base64
import hashlib
import os
import sys
import unittest
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(__file__))
import xmpp  # noqa: E402
from test_xmpp_core_pep import befriend, error_of, pubsub  # noqa: E402
from test_xmpp_core_pep import login as pep_login  # noqa: E402
from xmpp import logout, run  # noqa: E402

from slixmpp.xmlstream.handler import Callback  # noqa: E402
from slixmpp.xmlstream.matcher import MatchXPath  # noqa: E402

PW = "correct horse"
PUBSUB = "http://jabber.org/protocol/pubsub"
EVENT = PUBSUB + "#event"
META = "urn:xmpp:avatar:metadata"
DATA = "urn:xmpp:avatar:data"
UPDATE = "vcard-temp:x:update"
CONVERSION = "urn:xmpp:pep-vcard-conversion:0"
DISCO_INFO = "http://jabber.org/protocol/disco#info"

# two small "images": their bytes, base64 and SHA-1 (what XEP-0084 names them by)
IMG1 = bytes(range(200))
IMG2 = b"\x89PNG\r\n\x1a\n" + bytes(range(255, 0, -1))
B64_1, B64_2 = (base64.b64encode(i).decode() for i in (IMG1, IMG2))
SHA_1, SHA_2 = (hashlib.sha1(i).hexdigest() for i in (IMG1, IMG2))


async def login(server, jid, interests=(), presence=True):
    """test_xmpp_core_pep's client, which also queues the presence it gets."""
    c = await pep_login(server, jid, interests, presence=False)
    c.presences = asyncio.Queue()
    c.register_handler(Callback("presence", MatchXPath("{jabber:client}presence"),
                                lambda p: c.presences.put_nowait(p)))
    if presence:
        c.send_presence()
    return c


def photo_of(p):
    """What an available presence says of the avatar: None (no x), or the photo's text ("" for
    an empty photo, "?" for an x without photo)."""
    x = p.xml.find("{%s}x" % UPDATE)
    if x is None:
        return None
    ph = x.find("{%s}photo" % UPDATE)
    return "?" if ph is None else (ph.text or "")


async def presence_photo(c, full, want, timeout=5):
    """Wait for an available presence from full whose photo says want; what the ones before
    said is in the error."""
    seen = []
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        try:
            p = await asyncio.wait_for(c.presences.get(), max(0.05, end - loop.time()))
        except asyncio.TimeoutError:
            raise AssertionError("no presence from %s with photo %r; saw %r"
                                 % (full, want, seen))
        if str(p["from"]) != full or p["type"] in ("unavailable", "subscribe", "subscribed"):
            continue
        seen.append(photo_of(p))
        if seen[-1] == want:
            return


async def meta_event(c, timeout=5):
    """The next metadata notification: (item id, [(info id, bytes, type)])."""
    while True:
        m = await asyncio.wait_for(c.events.get(), timeout)
        its = m.xml.find("{%s}event/{%s}items" % (EVENT, EVENT))
        if its is None or its.get("node") != META:
            continue
        it = its.find("{%s}item" % EVENT)
        md = it.find("{%s}metadata" % META)
        return it.get("id"), [(i.get("id"), i.get("bytes"), i.get("type"))
                              for i in md.findall("{%s}info" % META)]


def open_access():
    return ("<publish-options><x xmlns='jabber:x:data' type='submit'>"
            "<field var='FORM_TYPE' type='hidden'><value>%s#publish-options</value></field>"
            "<field var='pubsub#access_model'><value>open</value></field></x></publish-options>"
            % PUBSUB)


async def publish_avatar(c, b64, sha, opts="", data=True):
    """XEP-0084's way: the data, then the metadata naming it."""
    if data:
        await pubsub(c, "<publish node='%s'><item id='%s'><data xmlns='%s'>%s</data></item>"
                     "</publish>%s" % (DATA, sha, DATA, b64, opts))
    await pubsub(c, "<publish node='%s'><item id='%s'><metadata xmlns='%s'><info bytes='%d' "
                 "id='%s' type='image/png' width='8' height='8'/></metadata></item></publish>"
                 % (META, sha, META, len(base64.b64decode(b64)), sha))


async def vcard_photo(c, jid):
    """(TYPE, BINVAL) of jid's vCard as c reads it, or None without a PHOTO."""
    iq = c.make_iq_get(ito=jid)
    iq.append(ET.fromstring("<vCard xmlns='vcard-temp'/>"))
    res = await iq.send(timeout=10)
    ph = res.xml.find("{vcard-temp}vCard/{vcard-temp}PHOTO")
    if ph is None:
        return None
    return ph.findtext("{vcard-temp}TYPE"), "".join(ph.findtext("{vcard-temp}BINVAL").split())


async def vcard_of(c, jid):
    iq = c.make_iq_get(ito=jid)
    iq.append(ET.fromstring("<vCard xmlns='vcard-temp'/>"))
    return (await iq.send(timeout=10)).xml.find("{vcard-temp}vCard")


async def set_vcard(c, inner):
    iq = c.make_iq_set()
    iq.append(ET.fromstring("<vCard xmlns='vcard-temp'>%s</vCard>" % inner))
    return await iq.send(timeout=10)


async def until(pred, what, timeout=5):
    for _ in range(int(timeout / 0.05)):
        v = await pred()
        if v:
            return v
        await asyncio.sleep(0.05)
    raise AssertionError(what)


async def features_of(c, jid):
    info = await c["xep_0030"].get_info(jid=jid, local=False)
    q = info.xml.find("{%s}query" % DISCO_INFO)
    return [f.get("var") for f in q.findall("{%s}feature" % DISCO_INFO)]


class Base(xmpp.ServerCase):
    def setUp(self):
        super().setUp()
        self.alice = self.srv.register("alice", PW)
        self.bob = self.srv.register("bob", PW)

    def conversions(self, result):
        return self.srv.metric("xmpp_avatar_conversions_total", {"result": result})


class PepToVcard(Base):
    def test_open_avatar_becomes_the_photo(self):
        async def go():
            a = await login(self.srv, self.alice + "/phone")
            b = await login(self.srv, self.bob + "/laptop", interests=[META])
            await befriend(a, b)
            self.assertIn(CONVERSION, await features_of(a, self.alice))
            self.assertIsNone(await vcard_photo(b, self.alice))
            # published open to all: the vCard's PHOTO, and the presence says its hash
            await publish_avatar(a, B64_1, SHA_1, open_access())
            self.assertEqual(await until(lambda: vcard_photo(b, self.alice), "no PHOTO"),
                             ("image/png", B64_1))
            await presence_photo(b, self.alice + "/phone", SHA_1)
            # a new presence of the client's own gets it as well, as does a directed one
            a.send_presence(pstatus="here")
            await presence_photo(b, self.alice + "/phone", SHA_1)
            a.send_presence(pto=self.bob + "/laptop", pstatus="to you")
            await presence_photo(b, self.alice + "/phone", SHA_1)
            # an empty photo is the client's to say
            p = a.make_presence()
            p.append(ET.fromstring("<x xmlns='%s'><photo/></x>" % UPDATE))
            p.send()
            await presence_photo(b, self.alice + "/phone", "")
            # the rest of the vCard stays when the avatar changes
            await set_vcard(a, "<FN>Alice</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>%s</BINVAL>"
                            "</PHOTO>" % B64_1)
            await publish_avatar(a, B64_2, SHA_2, open_access())
            self.assertEqual(await until(
                lambda: _differs(vcard_photo(b, self.alice), ("image/png", B64_1)),
                "the PHOTO did not change"), ("image/png", B64_2))
            self.assertEqual((await vcard_of(b, self.alice)).findtext("{vcard-temp}FN"),
                             "Alice")
            a.send_presence()
            await presence_photo(b, self.alice + "/phone", SHA_2)
            # taken away: the PHOTO goes, and the presence sent again says so
            await pubsub(a, "<publish node='%s'><item id='gone'><metadata xmlns='%s'/></item>"
                         "</publish>" % (META, META))
            await until(
                lambda: _differs(vcard_photo(b, self.alice), ("image/png", B64_2), none=True),
                "the PHOTO stayed")
            self.assertIsNone(await vcard_photo(b, self.alice))
            await presence_photo(b, self.alice + "/phone", "")
            self.assertEqual((await vcard_of(b, self.alice)).findtext("{vcard-temp}FN"),
                             "Alice")
            await logout(a, b)
        run(go())
        self.assertGreaterEqual(self.conversions("pep_to_vcard"), 3)

    def test_private_avatar_and_bad_metadata(self):
        async def go():
            a = await login(self.srv, self.alice + "/phone")
            b = await login(self.srv, self.bob + "/laptop")
            await befriend(a, b)
            await publish_avatar(a, B64_1, SHA_1, open_access())
            await until(lambda: vcard_photo(b, self.alice), "no PHOTO")
            # a second image in the (open) data node, named by its SHA-1
            await pubsub(a, "<publish node='%s'><item id='%s'><data xmlns='%s'>%s</data></item>"
                         "</publish>" % (DATA, SHA_2, DATA, B64_2))
            # metadata naming an image that is not there, or whose bytes are not its id:
            # the vCard stays as it is
            await publish_avatar(a, B64_1, "0" * 40, data=False)
            await pubsub(a, "<publish node='%s'><item id='%s'><data xmlns='%s'>%s</data></item>"
                         "</publish>" % (DATA, "1" * 40, DATA, B64_2))
            await publish_avatar(a, B64_2, "1" * 40, data=False)
            await asyncio.sleep(0.5)
            self.assertEqual(await vcard_photo(b, self.alice), ("image/png", B64_1))
            await logout(a, b)

            # carol's avatar, published with the default access model (presence): not copied
            carol = self.srv.register("carol", PW)
            c = await login(self.srv, carol + "/pc")
            await publish_avatar(c, B64_2, SHA_2)
            await asyncio.sleep(0.5)
            self.assertIsNone(await vcard_photo(c, carol))
            await logout(c)
        run(go())
        self.assertEqual(self.conversions("refused"), 2)
        self.assertEqual(self.conversions("private_not_copied"), 1)


async def _differs(coro, old, none=False):
    """coro's value when it is not old (None counts only with none=True)."""
    v = await coro
    if v == old:
        return False
    if v is None:
        return True if none else False
    return v


class PepToVcardAll(Base):
    extra = "pep:\n  vcard_avatars: all\n"

    def test_private_avatar_copied(self):
        async def go():
            a = await login(self.srv, self.alice + "/phone")
            b = await login(self.srv, self.bob + "/laptop")
            await publish_avatar(a, B64_2, SHA_2)
            self.assertEqual(await until(lambda: vcard_photo(b, self.alice), "no PHOTO"),
                             ("image/png", B64_2))
            await logout(a, b)
        run(go())


class VcardToPep(Base):
    def test_photo_published(self):
        async def go():
            a = await login(self.srv, self.alice + "/phone")
            b = await login(self.srv, self.bob + "/laptop", interests=[META])
            await befriend(a, b)
            await set_vcard(a, "<FN>Alice</FN><PHOTO><TYPE>image/gif</TYPE><BINVAL>%s</BINVAL>"
                            "</PHOTO>" % "\n".join(B64_1[i:i + 76]
                                                   for i in range(0, len(B64_1), 76)))
            item, infos = await meta_event(b)
            self.assertEqual(item, SHA_1)
            self.assertEqual(infos, [(SHA_1, str(len(IMG1)), "image/gif")])
            res = await pubsub(b, "<items node='%s'><item id='%s'/></items>" % (DATA, SHA_1),
                               to=self.alice, itype="get")
            data = res.xml.find("{%s}pubsub/{%s}items/{%s}item/{%s}data"
                                % (PUBSUB, PUBSUB, PUBSUB, DATA))
            self.assertEqual(data.text, B64_1)
            await presence_photo(b, self.alice + "/phone", SHA_1)
            # the same PHOTO again, with another name: nothing new to publish
            await set_vcard(a, "<FN>Alice L.</FN><PHOTO><TYPE>image/gif</TYPE><BINVAL>%s"
                            "</BINVAL></PHOTO>" % B64_1)
            # a second session logging in says the hash from its first presence
            a2 = await login(self.srv, self.alice + "/tablet")
            await presence_photo(b, self.alice + "/tablet", SHA_1)
            # the PHOTO removed: the avatar is taken away
            await set_vcard(a, "<FN>Alice</FN>")
            item, infos = await meta_event(b)
            self.assertEqual(infos, [])
            await presence_photo(b, self.alice + "/phone", "")
            # hostile: a BINVAL that is not base64
            cond, _, text = await error_of(set_vcard(
                a, "<PHOTO><TYPE>image/png</TYPE><BINVAL>not*base64</BINVAL></PHOTO>"))
            self.assertEqual(cond, "bad-request")
            self.assertIn("BINVAL", text)
            await logout(a, a2, b)
        run(go())
        self.assertEqual(self.conversions("vcard_to_pep"), 2)

    def test_imported_vcard_learnt_at_login(self):
        status, body = self.srv.api("POST", "import", {
            "jid": "dora@localhost", "password": PW,
            "roster": [{"jid": self.bob, "subscription": "both"}],
            "vcard": "<vCard xmlns='vcard-temp'><PHOTO><TYPE>image/png</TYPE><BINVAL>%s"
                     "</BINVAL></PHOTO></vCard>" % B64_2})
        self.assertEqual(status, 201, body)

        async def go():
            b = await login(self.srv, self.bob + "/laptop")
            # the import kept no hash: it is read from the vCard at the first login, and the
            # presence goes out again with it
            d = await login(self.srv, "dora@localhost/phone")
            await presence_photo(b, "dora@localhost/phone", SHA_2)
            await presence_photo(d, "dora@localhost/phone", SHA_2)
            await logout(b, d)
        run(go())


class Off(Base):
    extra = "pep:\n  vcard_avatars: off\n"

    def test_apart(self):
        async def go():
            a = await login(self.srv, self.alice + "/phone")
            b = await login(self.srv, self.bob + "/laptop", interests=[META])
            await befriend(a, b)
            self.assertNotIn(CONVERSION, await features_of(a, self.alice))
            await publish_avatar(a, B64_1, SHA_1, open_access())
            await set_vcard(a, "<FN>Alice</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>%s</BINVAL>"
                            "</PHOTO>" % B64_2)
            item, _ = await meta_event(b)
            self.assertEqual(item, SHA_1)  # the client's own, and no other
            with self.assertRaises(asyncio.TimeoutError):
                await meta_event(b, timeout=0.7)
            self.assertEqual(await vcard_photo(b, self.alice), ("image/png", B64_2))
            a.send_presence(pstatus="plain")
            await presence_photo(b, self.alice + "/phone", None)
            await logout(a, b)
        run(go())
        self.assertEqual(self.conversions("vcard_to_pep"), 0)
        self.assertEqual(self.conversions("pep_to_vcard"), 0)


if __name__ == "__main__":
    unittest.main()
