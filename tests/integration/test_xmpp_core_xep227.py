"""Moving from ejabberd or Prosody to xmpp-core through XEP-0227 (Portable Import/Export Format).

A real ejabberd 23.01 (Debian's) is given accounts, rosters, requests left unanswered, a block
list, a vCard and a message kept for an absent user by real clients (slixmpp), and exported with
`ejabberdctl export_piefxis` as an operator would (one main file pulling in one file per host with
xi:include, its SCRAM keys base64-encoded twice). A real Prosody 0.12 is given its state by
test_xmpp_core_import.py's clients and written out by prosody-migrator to its xep0227 store (one
file per account, vCards kept in PEP). `xmppctl import-xep227` brings either over into a running
xmpp-core: the users log in with the passwords they had, which xmpp-core never saw, and find what
they had, their private XML (XEP-0049) included, read back with an IQ get. Also here: what is not XEP-0227 is refused whole, and an account that cannot be carried
is named while the others come over."""

import asyncio
import base64
import datetime
import hashlib
import hmac
import os
import re
import subprocess
import sys
import unittest
import xml.etree.ElementTree as ET

from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

sys.path.insert(0, os.path.dirname(__file__))
import ejabberd  # noqa: E402
import suite  # noqa: E402
import test_xmpp_core_import as prosody  # noqa: E402  (its Prosody, clients and state)
import xmpp  # noqa: E402

XMPPCTL = os.path.join(suite.BIN, "xmppctl")
HOST = "example.org"  # ejabberd's first host; dave lives on its second, localhost
EJ_PASSWORDS = {"alice": "alice-on-ejabberd", "bob": "bob-on-ejabberd",
                "carol": "carol-on-ejabberd", "dave": "dave-on-ejabberd"}
PIE = "{urn:xmpp:pie:0}"
XI = "{http://www.w3.org/2001/XInclude}"
CLIENT = "{jabber:client}"
PUBSUB = "{http://jabber.org/protocol/pubsub}"
OWNER = "{http://jabber.org/protocol/pubsub#owner}"


class PeerClient(prosody.ProsodyClient):
    """A client of a peer server over plain TCP (no certificate there) that records who asked
    to see its presence."""

    def __init__(self, jid, password):
        super().__init__(jid, password)
        self.asked_by = set()
        self.add_event_handler("presence_subscribe",
                               lambda p: self.asked_by.add(p["from"].bare))

    async def iq_set(self, xml):
        iq = self.make_iq_set()
        iq.append(xmpp.slixmpp.xmlstream.ET.fromstring(xml))
        return await iq.send()


async def ejabberd_login(e, user, host=HOST):
    c = PeerClient("%s@%s" % (user, host), EJ_PASSWORDS[user])
    c.connect(("127.0.0.1", e.c2s))
    if not await asyncio.wait_for(c.started, 15):
        raise AssertionError("%s could not log in to ejabberd" % user)
    await c.get_roster()
    return c


async def until(what, cond, timeout=10):
    """Poll cond() until it is true; fails saying what did not happen."""
    end = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > end:
            raise AssertionError("ejabberd: %s did not happen within %ss" % (what, timeout))
        await asyncio.sleep(0.05)


def has(client, jid, **want):
    """Whether client's roster has jid with the values want (as the server pushed them)."""
    return lambda: jid in client.client_roster and \
        all(client.client_roster[jid][k] == v for k, v in want.items())


async def make_ejabberd_state(e):
    """alice and bob see each other (bob named and grouped in alice's roster); alice asks carol,
    who is away; carol asks bob, who does not answer; alice blocks two JIDs (XEP-0191), keeps
    a vcard-temp vCard and a private XML item, and writes to dave (on the second host), who has
    not come yet; bob keeps a privacy list of his own, which blocking does not cover."""
    alice, bob, carol = ("%s@%s" % (u, HOST) for u in ("alice", "bob", "carol"))
    a = await ejabberd_login(e, "alice")
    b = await ejabberd_login(e, "bob")
    a.send_presence()
    b.send_presence()
    await a.update_roster(bob, name="Bobby", groups=["Friends", "Work"])
    a.send_presence(pto=bob, ptype="subscribe")
    await until("alice's request reaching bob", lambda: alice in b.asked_by)
    b.send_presence(pto=alice, ptype="subscribed")
    b.send_presence(pto=alice, ptype="subscribe")
    await until("bob's request reaching alice", lambda: bob in a.asked_by)
    a.send_presence(pto=bob, ptype="subscribed")
    await until("alice and bob seeing each other", has(a, bob, subscription="both"))
    a.send_presence(pto=carol, ptype="subscribe")
    await until("alice asking carol", has(a, carol, pending_out=True))
    await a["xep_0191"].block(["spam@evil.example", "evil.example/bot"])
    a.send_message(mto="dave@localhost", mbody="kept while away", mtype="chat")
    vc = a["xep_0054"].make_vcard()
    vc["FN"] = "Alice Liddell"
    await a["xep_0054"].publish_vcard(vc)  # (after the message: it has been handled too)
    await prosody.private_set(a, prosody.notes_xml())
    await b.iq_set("<query xmlns='jabber:iq:privacy'><list name='quiet'><item type='jid' "
                   "value='noisy@example.org' action='deny' order='1'><message/></item>"
                   "</list></query>")
    c = await ejabberd_login(e, "carol")
    c.send_presence(pto=bob, ptype="subscribe")
    await until("carol asking bob", has(c, bob, pending_out=True))
    await until("carol's request reaching bob", lambda: carol in b.asked_by)
    ends = [x.disconnect() for x in (a, b, c)]
    await asyncio.wait_for(asyncio.gather(*ends), 15)


def stamp_of(text):
    """Unix time of an XEP-0082 stamp such as 2024-01-02T03:04:05.678901Z."""
    t = datetime.datetime.strptime(text.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z")
    return t.timestamp()


def xmppctl(srv, *args):
    """xmppctl against srv's admin port with its token."""
    return suite.run([XMPPCTL, "-u", "http://127.0.0.1:%d" % srv.admin, "-t", srv.token_file]
                     + list(args), timeout=60)


def accounts(srv, host):
    st, body = srv.api("GET", "accounts?host=" + host)
    assert st == 200, (st, body)
    return body["accounts"]


def account_block(out, jid):
    """The line of jid in xmppctl's output and the note lines after it."""
    m = re.search(r"^%s\t.*\n(?:  note: .*\n)*" % re.escape(jid), out, re.M)
    return m.group(0) if m else ""


@unittest.skipUnless(ejabberd.why_not() is None, ejabberd.why_not() or "")
class ImportFromEjabberd(xmpp.ServerCase):
    extra = prosody.SHA256_OFF  # ejabberd keeps SCRAM-SHA-1 keys only here

    @classmethod
    def setUpClass(cls):
        """One ejabberd's state for every test: made once, exported once."""
        cls.edir = suite.tempdir()
        try:
            d = cls.edir.name
            e = ejabberd.Ejabberd(os.path.join(d, "ejabberd"), [HOST, "localhost"])
            e.start()
            try:
                for user in ("alice", "bob", "carol"):
                    e.register(user, HOST, EJ_PASSWORDS[user])
                e.register("dave", "localhost", EJ_PASSWORDS["dave"])
                xmpp.run(make_ejabberd_state(e))
                cls.export = os.path.join(d, "export")
                files = e.export_piefxis(cls.export)
            finally:
                e.stop()
        except BaseException:
            cls.edir.cleanup()
            raise
        # <stamp>.xml, and <stamp>_example_org.xml and <stamp>_localhost.xml it includes
        mains = [f for f in files if re.fullmatch(r"[0-9-]+\.xml", f)]
        if len(mains) != 1 or len(files) != 3:
            cls.edir.cleanup()
            raise AssertionError("export_piefxis wrote %r" % files)
        cls.main = os.path.join(cls.export, mains[0])
        cls.hosts = [ET.parse(os.path.join(cls.export, f)).getroot() for f in files
                     if f not in mains]
        cls.users = {"%s@%s" % (u.get("name"), h.get("jid")): u
                     for h in cls.hosts for u in h.findall(PIE + "user")}

    @classmethod
    def tearDownClass(cls):
        cls.edir.cleanup()

    def test_what_ejabberd_exports(self):
        """The export has what the import is tested with below (if ejabberd changed what it
        writes, this says so first)."""
        main = ET.parse(self.main).getroot()
        self.assertEqual(main.tag, PIE + "server-data")
        self.assertEqual(len(main.findall(XI + "include")), 2)
        self.assertEqual([h.tag for h in self.hosts], [PIE + "host"] * 2)
        users = self.users
        self.assertEqual(sorted(users), ["alice@example.org", "bob@example.org",
                                         "carol@example.org", "dave@localhost"])
        alice = users["alice@example.org"]
        # the keys base64-encoded twice: the salt's text is the base64 of a base64 text
        scram = alice.find("{urn:xmpp:pie:0#scram}scram-credentials")
        self.assertEqual(scram.get("mechanism"), "SCRAM-SHA-1")
        salt = scram.findtext("{urn:xmpp:pie:0#scram}salt")
        self.assertEqual(len(base64.b64decode(base64.b64decode(salt))), 16)
        self.assertIsNone(alice.get("password"))
        # requests not answered: presences in the user's element, not roster items
        for who, by in (("bob", "carol"), ("carol", "alice")):
            u = users[who + "@example.org"]
            asks = [(p.get("from"), p.get("type")) for p in u.findall(CLIENT + "presence")]
            self.assertEqual(asks, [(by + "@example.org", "subscribe")], who)
            roster = [i.get("jid") for i in u.iter("{jabber:iq:roster}item")]
            self.assertNotIn(by + "@example.org", roster)
        # the XEP-0191 block list: mod_blocking's privacy list, items without children
        lists = alice.findall("{jabber:iq:privacy}query/{jabber:iq:privacy}list")
        self.assertEqual([x.get("name") for x in lists], ["Blocked contacts"])
        self.assertEqual([(i.get("type"), i.get("value"), i.get("action"), len(i))
                          for i in lists[0]],
                         [("jid", "spam@evil.example", "deny", 0),
                          ("jid", "evil.example/bot", "deny", 0)])
        note = alice.find("{jabber:iq:private}query/{storage:rosternotes}notes/"
                          "{storage:rosternotes}note")
        self.assertEqual((note.get("jid"), note.text), ("bob@example.org", prosody.NOTE))
        self.assertEqual(alice.findtext("{vcard-temp}vCard/{vcard-temp}FN"), "Alice Liddell")
        bobs = users["bob@example.org"].findall("{jabber:iq:privacy}query/"
                                               "{jabber:iq:privacy}list")
        self.assertEqual([x.get("name") for x in bobs], ["quiet"])
        kept = users["dave@localhost"].findall(PIE + "offline-messages/" + CLIENT + "message")
        self.assertEqual([m.findtext(CLIENT + "body") for m in kept], ["kept while away"])
        self.assertIsNotNone(kept[0].find("{urn:xmpp:delay}delay").get("stamp"))

    def test_accounts_come_over(self):
        r = xmppctl(self.srv, "import-xep227", self.main)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        out = r.stdout
        alice = account_block(out, "alice@example.org")
        self.assertIn("alice@example.org\timported: 2 contact(s), 0 request(s), 2 blocked, "
                      "0 offline message(s), 0 PEP item(s), a vCard, 1 private XML "
                      "element(s)\n", alice)
        self.assertNotRegex(alice, r"  note: .*private", "her private XML comes over")
        bob = account_block(out, "bob@example.org")
        self.assertIn("bob@example.org\timported: 1 contact(s), 1 request(s), 0 blocked, "
                      "0 offline message(s), 0 PEP item(s)\n", bob)
        self.assertRegex(bob, r"  note: .*privacy", "his own privacy list is left behind")
        self.assertIn("carol@example.org\timported: 1 contact(s), 1 request(s), 0 blocked, "
                      "0 offline message(s), 0 PEP item(s)\n", out)
        self.assertIn("dave@localhost\timported: 0 contact(s), 0 request(s), 0 blocked, "
                      "1 offline message(s), 0 PEP item(s)\n", out)
        self.assertNotIn("note:", account_block(out, "carol@example.org") +
                         account_block(out, "dave@localhost"))
        self.assertIn("4 imported, 0 already there, 0 not imported", out)
        self.assertEqual(sorted(accounts(self.srv, "example.org")),
                         ["alice@example.org", "bob@example.org", "carol@example.org"])
        # a second run changes nothing
        again = xmppctl(self.srv, "import-xep227", self.main)
        self.assertEqual(again.returncode, 0, again.stdout + again.stderr)
        self.assertIn("alice@example.org\talready there: left as it is\n", again.stdout)
        self.assertIn("0 imported, 4 already there, 0 not imported", again.stdout)

        stamp = stamp_of(self.users["dave@localhost"].find(
            PIE + "offline-messages/" + CLIENT + "message/{urn:xmpp:delay}delay").get("stamp"))

        async def go():
            # ejabberd's passwords, by SCRAM-SHA-1 (the only SCRAM offered here)
            a = await xmpp.login(self.srv, "alice@example.org", EJ_PASSWORDS["alice"],
                                 mech="SCRAM-SHA-1")
            bob = a.client_roster["bob@example.org"]
            self.assertEqual((bob["subscription"], bob["name"]), ("both", "Bobby"))
            self.assertEqual(sorted(bob["groups"]), ["Friends", "Work"])
            carol = a.client_roster["carol@example.org"]
            self.assertEqual(carol["subscription"], "none")
            self.assertTrue(carol["pending_out"])
            blocked = await a["xep_0191"].get_blocked()
            self.assertEqual(sorted(str(j) for j in blocked["blocklist"]["items"]),
                             ["evil.example/bot", "spam@evil.example"])
            a.register_plugin("xep_0054")
            mine = await a["xep_0054"].get_vcard("alice@example.org")
            self.assertEqual(mine["vcard_temp"]["FN"], "Alice Liddell")
            # her private XML, as she kept it on ejabberd
            self.assertEqual(await prosody.private_note(a), prosody.NOTE)
            # carol was away when alice asked: the request waits for her
            c = await xmpp.login(self.srv, "carol@example.org", EJ_PASSWORDS["carol"])
            await prosody.presence_from(c, "subscribe", "alice@example.org")
            self.assertTrue(c.client_roster["bob@example.org"]["pending_out"])
            # bob's pending request from carol, and his answer reaching her
            b = await xmpp.login(self.srv, "bob@example.org", EJ_PASSWORDS["bob"])
            await prosody.presence_from(b, "subscribe", "carol@example.org")
            b.send_presence(pto="carol@example.org", ptype="subscribed")
            await prosody.presence_from(c, "subscribed", "bob@example.org")
            # dave gets what alice wrote him on ejabberd, stamped when ejabberd kept it
            d = await xmpp.login(self.srv, "dave@localhost", EJ_PASSWORDS["dave"])
            m = await d.next_message()
            self.assertEqual(m["body"], "kept while away")
            self.assertEqual(m["from"].bare, "alice@example.org")
            self.assertAlmostEqual(m["delay"]["stamp"].timestamp(), stamp, delta=0.002)
            await xmpp.logout(a, b, c, d)
        xmpp.run(go())
        # the keys are checked, not just present: a wrong password fails, hers then succeeds
        raw = self.keep(xmpp.Raw(self.srv))
        raw.open(HOST)
        raw.starttls()
        raw.open(HOST)
        ok, said = raw.scram("alice", "not-her-password", mech="SCRAM-SHA-1")
        self.assertFalse(ok, said)
        self.assertIn("<not-authorized/>", said)
        ok, said = raw.scram("alice", EJ_PASSWORDS["alice"], mech="SCRAM-SHA-1")
        self.assertTrue(ok, said)

    def test_dry_run_and_one_host(self):
        """--dry-run reads (the main file, or the export's directory: the same accounts, each
        once) and sends nothing; HOST takes that host's accounts only."""
        for path in (self.main, self.export):
            r = xmppctl(self.srv, "--dry-run", "import-xep227", path)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            for jid in ("alice@example.org", "bob@example.org", "carol@example.org",
                        "dave@localhost"):
                self.assertEqual(len(re.findall(r"^%s\t" % re.escape(jid), r.stdout, re.M)),
                                 1, (path, r.stdout))
            self.assertIn("alice@example.org\twould be imported: 2 contact(s), 0 request(s), "
                          "2 blocked, 0 offline message(s), 0 PEP item(s), a vCard, 1 private "
                          "XML element(s)\n", r.stdout)
            self.assertIn("4 to import, 0 already there, 0 not imported", r.stdout)
        self.assertEqual(accounts(self.srv, "example.org"), [])
        self.assertEqual(accounts(self.srv, "localhost"), [])
        r = xmppctl(self.srv, "import-xep227", self.main, "localhost")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("dave@localhost\timported: ", r.stdout)
        self.assertNotIn("example.org\t", r.stdout)
        self.assertIn("1 imported, 0 already there, 0 not imported", r.stdout)
        self.assertEqual(accounts(self.srv, "localhost"), ["dave@localhost"])
        self.assertEqual(accounts(self.srv, "example.org"), [])


def prosody_xep0227_config(d, out):
    """The migrator's configuration: Prosody's file store to its xep0227 store, with the
    stores that store has (no block lists, no offline messages)."""
    stores = '"accounts", "roster", "vcard", "private", "pep-pubsub"'
    return """input {{
	hosts = {{ ["{hashed}"] = {{ {s} }}; ["{plain}"] = {{ {s} }} }};
	type = "internal";
	path = "{d}/data";
}}
output {{
	type = "xep0227";
	path = "{out}";
}}
""".format(d=d, out=out, hashed=prosody.HASHED, plain=prosody.PLAIN, s=stores)


def migrator_writing_to(d, out):
    """prosody-migrator as Debian installs it, but with its data directory set to out.
    Prosody 0.12's migrator ignores the output's path for the xep0227 store, which writes in
    the data directory (/var/lib/prosody, the system's): a test must not write there."""
    with open(prosody.MIGRATOR) as f:
        text = f.read()
    line = re.search(r"^CFG_DATADIR='[^']*';$", text, re.M)
    if not line:
        raise AssertionError("prosody-migrator sets no CFG_DATADIR: %s" % prosody.MIGRATOR)
    path = os.path.join(d, "prosody-migrator")
    with open(path, "w") as f:
        f.write(text[:line.start()] + "CFG_DATADIR=%r;" % out + text[line.end():])
    interpreter = text.splitlines()[0][2:].split()  # "#!/usr/bin/env lua5.4"
    return interpreter + [path]


def have_prosody():
    return all(os.path.exists(p) for p in (prosody.PROSODY, prosody.PROSODYCTL,
                                            prosody.MIGRATOR))


@unittest.skipUnless(have_prosody(), "needs prosody (scripts/deps.sh test)")
class ImportFromProsody(xmpp.ServerCase):
    extra = prosody.SHA256_OFF

    @classmethod
    def setUpClass(cls):
        cls.pdir = suite.tempdir()
        try:
            d = cls.pdir.name
            p = prosody.Prosody(d)
            for u, pw in prosody.PASSWORDS.items():
                p.register(u, prosody.HASHED, pw)
            p.register("dave", prosody.PLAIN, prosody.DAVE)
            p.register("erin", prosody.PLAIN, prosody.ERIN)
            p.start()
            try:
                xmpp.run(p.make_state())
            finally:
                p.stop()
            cls.out = os.path.join(d, "xep0227")
            os.makedirs(cls.out)
            cfg = os.path.join(d, "migrator.cfg.lua")
            with open(cfg, "w") as f:
                f.write(prosody_xep0227_config(d, cls.out))
            if os.geteuid() == 0:  # the migrator runs as Prosody's user when started as root
                subprocess.run(["chown", "-R", "prosody:prosody", d], check=True)
            r = suite.run(migrator_writing_to(d, cls.out) + ["--config=" + cfg, "input",
                                                              "output"], timeout=60)
            cls.files = sorted(os.listdir(cls.out))
            if r.returncode != 0 or "alice@example.org.xml" not in cls.files:
                raise AssertionError("prosody-migrator failed (%r):\n%s%s"
                                     % (cls.files, r.stdout, r.stderr))
        except BaseException:
            cls.pdir.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.pdir.cleanup()

    def user(self, jid):
        """The <user/> element of jid's file."""
        root = ET.parse(os.path.join(self.out, jid + ".xml")).getroot()
        self.assertEqual(root.tag, PIE + "server-data")
        host = root.find(PIE + "host")
        self.assertEqual(host.get("jid"), jid.split("@")[1])
        return host.find(PIE + "user")

    def test_what_prosody_exports(self):
        """What the import is tested with below (attributes in no fixed order: Lua tables)."""
        self.assertEqual(self.files, ["alice@example.org.xml", "bob@example.org.xml",
                                      "carol@example.org.xml", "dave@localhost.xml",
                                      "erin@localhost.xml"])
        # the request not answered, in the format's own namespace (Prosody gives it none)
        bob = self.user("bob@example.org")
        self.assertEqual([(p.get("from"), p.get("type")) for p in bob.findall(PIE + "presence")],
                         [("carol@example.org", "subscribe")])
        self.assertEqual(self.user("dave@localhost").get("password"), "dave-on-prosody")
        alice = self.user("alice@example.org")
        scram = alice.find("{urn:xmpp:pie:0#scram}scram-credentials")
        self.assertEqual(len(base64.b64decode(scram.findtext("{urn:xmpp:pie:0#scram}"
                                                             "stored-key"))), 20)
        self.assertEqual([c.get("node") for c in alice.find(OWNER + "pubsub")],
                         ["urn:xmpp:vcard4"])
        items = alice.findall(PUBSUB + "pubsub/" + PUBSUB + "items")
        self.assertEqual([(i.get("node"), [x.get("id") for x in i]) for i in items],
                         [("urn:xmpp:vcard4", ["current"])])
        # her roster note in private XML, the element as she set it
        note = alice.find("{jabber:iq:private}query/{storage:rosternotes}notes/"
                          "{storage:rosternotes}note")
        self.assertEqual((note.get("jid"), note.text), ("bob@example.org", prosody.NOTE))
        # no block list (alice had two), no vcard-temp (kept as vCard4 in PEP here)
        self.assertEqual([c.tag for c in alice],
                         ["{urn:xmpp:pie:0#scram}scram-credentials", "{jabber:iq:roster}query",
                          "{jabber:iq:private}query", OWNER + "pubsub", PUBSUB + "pubsub"])

    def test_accounts_come_over(self):
        r = xmppctl(self.srv, "import-xep227", self.out)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        out = r.stdout
        # Prosody's xep0227 store has no block lists and no offline messages
        self.assertIn("alice@example.org\timported: 2 contact(s), 0 request(s), 0 blocked, "
                      "0 offline message(s), 1 PEP item(s), a vCard, 1 private XML "
                      "element(s)\n", out)
        self.assertIn("bob@example.org\timported: 1 contact(s), 1 request(s), 0 blocked", out)
        self.assertIn("carol@example.org\timported: 1 contact(s), 1 request(s), 0 blocked", out)
        self.assertIn("dave@localhost\timported: 0 contact(s), 0 request(s), 0 blocked, "
                      "0 offline message(s), 0 PEP item(s)\n", out)
        self.assertIn("erin@localhost\timported: 0 contact(s), 0 request(s), 0 blocked, "
                      "0 offline message(s), 3 PEP item(s)", out)
        self.assertIn("5 imported, 0 already there, 0 not imported", out)

        async def go():
            # Prosody's password by SCRAM-SHA-1 (its keys, 10000 iterations)
            a = await xmpp.login(self.srv, "alice@example.org", prosody.PASSWORDS["alice"],
                                 mech="SCRAM-SHA-1")
            bob = a.client_roster["bob@example.org"]
            self.assertEqual((bob["subscription"], bob["name"]), ("both", "Bobby"))
            self.assertEqual(sorted(bob["groups"]), ["Friends", "Work"])
            self.assertTrue(a.client_roster["carol@example.org"]["pending_out"])
            a.register_plugin("xep_0060")
            got = await a["xep_0060"].get_items(jid="alice@example.org", node="urn:xmpp:vcard4")
            items = list(got["pubsub"]["items"])
            self.assertEqual(len(items), 1)
            self.assertIn("Alice Liddell", str(items[0]))
            # no vcard-temp in the file: one is made from the vCard4, as Prosody showed it
            a.register_plugin("xep_0054")
            mine = await a["xep_0054"].get_vcard("alice@example.org")
            self.assertEqual(mine["vcard_temp"]["FN"], "Alice Liddell")
            # her private XML, as she kept it on Prosody
            self.assertEqual(await prosody.private_note(a), prosody.NOTE)
            # erin's avatar, both nodes, and the plaintext password of her host
            e = await xmpp.login(self.srv, "erin@localhost", prosody.ERIN)
            e.register_plugin("xep_0060")
            got = await e["xep_0060"].get_items(jid="erin@localhost",
                                                node="urn:xmpp:avatar:data")
            data = list(got["pubsub"]["items"])
            self.assertEqual(len(data), 1)
            self.assertIn("iVBORyBub3QgcmVhbGx5", str(data[0]))  # b"\x89PNG not really"
            got = await e["xep_0060"].get_items(jid="erin@localhost",
                                                node="urn:xmpp:avatar:metadata")
            self.assertIn("image/png", str(list(got["pubsub"]["items"])[0]))
            e.register_plugin("xep_0054")
            hers = await e["xep_0054"].get_vcard("erin@localhost")
            self.assertEqual(hers["vcard_temp"]["PHOTO"]["TYPE"], "image/png")
            self.assertEqual(hers["vcard_temp"]["PHOTO"]["BINVAL"], b"\x89PNG not really")
            # the node's access model came along: open on Prosody (xmpp-core's default is
            # presence), so dave, who is no contact of hers, reads it
            d = await xmpp.login(self.srv, "dave@localhost", prosody.DAVE)
            d.register_plugin("xep_0060")
            got = await d["xep_0060"].get_items(jid="alice@example.org", node="urn:xmpp:vcard4")
            self.assertIn("Alice Liddell", str(list(got["pubsub"]["items"])[0]))
            # bob's pending request from carol
            b = await xmpp.login(self.srv, "bob@example.org", prosody.PASSWORDS["bob"])
            await prosody.presence_from(b, "subscribe", "carol@example.org")
            await xmpp.logout(a, b, d, e)
        xmpp.run(go())


def scram_keys(password, salt, iterations, h):
    """(stored key, server key) of a password, as RFC 5802 makes them."""
    salted = hashlib.pbkdf2_hmac(h().name, password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", h).digest()
    return h(client_key).digest(), hmac.new(salted, b"Server Key", h).digest()


def scram_element(password, mech, salt=b"sixteen-byte-slt", iterations=4096, cut=0):
    h = hashlib.sha256 if mech == "SCRAM-SHA-256" else hashlib.sha1
    stored, server = scram_keys(password, salt, iterations, h)
    return ("<scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='%s'>"
            "<iter-count>%d</iter-count><salt>%s</salt><server-key>%s</server-key>"
            "<stored-key>%s</stored-key></scram-credentials>"
            % (mech, iterations, base64.b64encode(salt).decode(),
               base64.b64encode(server[cut:]).decode(), base64.b64encode(stored).decode()))


class Xep227Files(xmpp.ServerCase):
    """Files no server of ours wrote: another server's export, made by hand."""

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_not_xep227(self):
        """Refused whole, before any account is sent: exit 2 and a message naming the file."""
        os.makedirs(os.path.join(self.tmp, "empty"))
        for path, said in (
                (self.write("other.xml", "<?xml version='1.0'?><rss version='2.0'><channel/>"
                                         "</rss>"), "not XEP-0227"),
                # the format's names without its namespace are not the format
                (self.write("bare.xml", "<server-data><host jid='localhost'><user name='x' "
                                        "password='x'/></host></server-data>"), "not XEP-0227"),
                # a good account first, then the file breaks off
                (self.write("broken.xml", "<server-data xmlns='urn:xmpp:pie:0'><host "
                                          "jid='localhost'><user name='good' password='x'/>"
                                          "<user name='x'>"), "line 1"),
                (self.write("dtd.xml", "<?xml version='1.0'?><!DOCTYPE server-data [<!ENTITY "
                                       "a 'b'>]><server-data xmlns='urn:xmpp:pie:0'><host "
                                       "jid='localhost'><user name='x' password='&a;'/></host>"
                                       "</server-data>"), "DTD"),
                # an include reaches only a file beside the one including it
                (self.write("include.xml", "<server-data xmlns='urn:xmpp:pie:0' xmlns:xi="
                                           "'http://www.w3.org/2001/XInclude'><xi:include "
                                           "href='../etc/passwd'/></server-data>"),
                 "../etc/passwd"),
                (os.path.join(self.tmp, "missing.xml"), "missing.xml"),
                (os.path.join(self.tmp, "empty"), "empty")):
            r = xmppctl(self.srv, "import-xep227", path)
            self.assertEqual(r.returncode, 2, (path, r.stdout, r.stderr))
            self.assertIn(said, r.stderr, path)
            self.assertIn(os.path.basename(path), r.stderr)
            self.assertEqual(r.stdout, "", path)
        self.assertEqual(accounts(self.srv, "localhost"), [])

    def test_a_bad_account_is_named_and_the_others_come(self):
        path = self.write("export.xml", (
            "<?xml version='1.0' encoding='UTF-8'?>"
            "<server-data xmlns='urn:xmpp:pie:0'><host jid='localhost'>"
            # keys of the wrong length (a server key of 12 bytes)
            "<user name='mallory'>%s</user>"
            # SCRAM-SHA-256 keys, base64 once as the XEP writes them, private XML (one element
            # without a namespace of its own, which cannot be kept), and what has no place here
            "<user name='grace'>%s"
            "<query xmlns='jabber:iq:roster'><item jid='heidi@localhost' subscription='to' "
            "name='Heidi'><group>Team</group></item></query>"
            "<query xmlns='jabber:iq:private'><x xmlns='a:private' n='1'>kept</x><y/></query>"
            "<archive xmlns='urn:xmpp:pie:0#mam'><result xmlns='urn:xmpp:mam:2' id='1'>"
            "<forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' "
            "stamp='2024-01-02T03:04:05Z'/><message xmlns='jabber:client' to='grace@localhost' "
            "from='heidi@localhost' type='chat'><body>old</body></message></forwarded>"
            "</result></archive></user>"
            # a plaintext password
            "<user name='heidi' password='heidis-password'/>"
            "</host><host jid='elsewhere.example'><user name='ivan' password='x'/></host>"
            "</server-data>")
            % (scram_element("mallorys-password", "SCRAM-SHA-1", cut=8),
               scram_element("graces-password", "SCRAM-SHA-256")))
        r = xmppctl(self.srv, "import-xep227", path)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"(?m)^mallory@localhost\tnot imported: .*SCRAM-SHA-1.*"
                                   r"20 bytes")
        # refused by the server (not a host it serves): its reason comes through
        self.assertRegex(r.stdout, r"(?m)^ivan@elsewhere.example\tnot imported: .*not one of "
                                   r"the hosts served")
        self.assertIn("grace@localhost\timported: 1 contact(s), 0 request(s), 0 blocked, "
                      "0 offline message(s), 0 PEP item(s), 1 private XML element(s)\n",
                      r.stdout)
        grace = account_block(r.stdout, "grace@localhost")
        self.assertRegex(grace, r"  note: grace@localhost: private XML storage \(XEP-0049\): 1 "
                                r"element\(s\) left behind: in no namespace")
        # her archive comes after her, through the archive route
        self.assertIn("grace@localhost\tarchive: 1 message(s)\n", r.stdout)
        self.assertNotRegex(grace, r"  note: .*archive")
        self.assertIn("heidi@localhost\timported: 0 contact(s)", r.stdout)
        self.assertIn("2 imported, 0 already there, 2 not imported", r.stdout)
        self.assertEqual(sorted(accounts(self.srv, "localhost")),
                         ["grace@localhost", "heidi@localhost"])
        # the keys work: SCRAM-SHA-256 (not disabled here) for grace, both for heidi
        for user, pw, mech in (("grace", "graces-password", "SCRAM-SHA-256"),
                               ("heidi", "heidis-password", "SCRAM-SHA-256"),
                               ("heidi", "heidis-password", "SCRAM-SHA-1")):
            raw = self.keep(xmpp.Raw(self.srv))
            raw.open()
            raw.starttls()
            raw.open()
            ok, said = raw.scram(user, pw, mech=mech)
            self.assertTrue(ok, (user, mech, said))

        async def go():
            g = await xmpp.login(self.srv, "grace@localhost", "graces-password")
            h = g.client_roster["heidi@localhost"]
            self.assertEqual((h["subscription"], h["name"], h["groups"]),
                             ("to", "Heidi", ["Team"]))
            iq = g.make_iq_get()
            iq.append(ET.fromstring("<query xmlns='jabber:iq:private'><x xmlns='a:private'/>"
                                    "</query>"))
            x = (await iq.send(timeout=10)).xml.find("{jabber:iq:private}query/{a:private}x")
            self.assertEqual((x.get("n"), x.text), ("1", "kept"))
            # the archived message, with its time, found by an archive query
            results = []
            g.register_handler(Callback("mam", MatchXPath("{jabber:client}message/"
                                                          "{urn:xmpp:mam:2}result"),
                                        results.append))
            iq = g.make_iq_set()
            iq.append(ET.fromstring("<query xmlns='urn:xmpp:mam:2' queryid='q'/>"))
            await iq.send(timeout=10)
            await asyncio.sleep(0.2)
            self.assertEqual(len(results), 1)
            fwd = results[0].xml.find("{urn:xmpp:mam:2}result/{urn:xmpp:forward:0}forwarded")
            self.assertEqual(fwd.find("{urn:xmpp:delay}delay").get("stamp"),
                             "2024-01-02T03:04:05.000Z")
            m = fwd.find("{jabber:client}message")
            self.assertEqual((m.get("from"), m.findtext("{jabber:client}body")),
                             ("heidi@localhost", "old"))
            await xmpp.logout(g)
        xmpp.run(go())


if __name__ == "__main__":
    unittest.main()
