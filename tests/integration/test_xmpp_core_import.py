"""Moving from Prosody to xmpp-core: a real Prosody 0.12 (Debian's) is given accounts, rosters,
pending subscription requests and a block list by real clients (slixmpp), stopped, and its
file store copied into SQLite with prosody-migrator as docs/xmpp-core.md tells an operator to;
`xmppctl import-prosody` brings the accounts over into a running xmpp-core. The users then log
in to xmpp-core with the passwords they had on Prosody, which xmpp-core never saw: the
SCRAM-SHA-1 keys Prosody kept are enough. Their rosters, requests and block lists are there, and
so is the private XML (XEP-0049) they kept: read back with an IQ get as on Prosody.
A PLAIN login gives an account its SCRAM-SHA-256 keys, after which SCRAM-SHA-256 can be offered
again.

The Prosody keeps its message archive (mod_mam) in SQLite already (its sql store, into the file
the migrator then fills): alice and bob chat there, and after the import each finds, in a MAM
query (XEP-0313) to xmpp-core, what Prosody's own answered: the same messages, in the same
order, with the same times.

Also here: the import route refuses bad documents precisely and leaves existing accounts
alone."""

import asyncio
import base64
import hashlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import time
import unittest
import xml.etree.ElementTree as ET
from datetime import datetime

sys.path.insert(0, os.path.dirname(__file__))
import suite  # noqa: E402
import xmpp  # noqa: E402

from slixmpp.xmlstream.handler import Callback  # noqa: E402
from slixmpp.xmlstream.matcher import MatchXPath  # noqa: E402

PROSODY = shutil.which("prosody") or "/usr/bin/prosody"
PROSODYCTL = shutil.which("prosodyctl") or "/usr/bin/prosodyctl"
MIGRATOR = shutil.which("prosody-migrator") or "/usr/bin/prosody-migrator"
XMPPCTL = os.path.join(suite.BIN, "xmppctl")
HASHED, PLAIN = "example.org", "localhost"  # Prosody's hosts: keys only, and passwords kept
PASSWORDS = {"alice": "alice-on-prosody", "bob": "bob-on-prosody", "carol": "carol-on-prosody"}
DAVE = "dave-on-prosody"
ERIN = "erin-on-prosody"  # on the plain host too, whose vCards mod_vcard keeps
SHA256_OFF = "auth:\n  disabled_mechanisms: [SCRAM-SHA-256, SCRAM-SHA-256-PLUS]\n"
PRIVATE = "jabber:iq:private"
NOTES = "storage:rosternotes"  # XEP-0145's roster notes, kept in private XML
NOTE = "met at work & <after>"  # alice's note on bob, text XML escapes
MAM = "urn:xmpp:mam:2"
# alice and bob's chat on Prosody: sender, receiver, body (one as large as a stanza of 5 KB:
# over the smallest c2s.max_stanza xmpp-core takes)
CHAT = [("alice", "bob", "hello bob"), ("bob", "alice", "hi alice"),
        ("alice", "bob", "moving to xmpp-core <tonight> & all, \"quoted\""),
        ("bob", "alice", "x" * 5000), ("alice", "bob", "good: see you there"),
        ("bob", "alice", "bye \u2764")]


def notes_xml(note=NOTE, about="bob@example.org"):
    """A <notes/> element of XEP-0145 with one note."""
    return ("<notes xmlns='%s'><note jid='%s' cdate='2024-01-02T03:04:05Z'>%s</note></notes>"
            % (NOTES, about, note.replace("&", "&amp;").replace("<", "&lt;")))


async def private_set(client, xml):
    """Keep the element xml in client's private XML storage (XEP-0049)."""
    iq = client.make_iq_set()
    iq.append(xmpp.slixmpp.xmlstream.ET.fromstring("<query xmlns='%s'>%s</query>"
                                                   % (PRIVATE, xml)))
    await iq.send(timeout=10)


async def private_note(client, about="bob@example.org"):
    """The text of the roster note on about that client's server keeps for it in private XML,
    read with an IQ get (<notes xmlns='storage:rosternotes'/> asked), or None."""
    iq = client.make_iq_get()
    iq.append(xmpp.slixmpp.xmlstream.ET.fromstring("<query xmlns='%s'><notes xmlns='%s'/>"
                                                   "</query>" % (PRIVATE, NOTES)))
    res = await iq.send(timeout=10)
    notes = res.xml.find("{%s}query/{%s}notes" % (PRIVATE, NOTES))
    for n in (notes if notes is not None else []):
        if n.tag == "{%s}note" % NOTES and n.get("jid") == about:
            return n.text
    return None


async def archive_of(client):
    """(body, stamp in Unix seconds) of each message of client's archive, oldest first, as its
    server answers a query for all of it (XEP-0313; fewer messages than a page)."""
    got = []
    qid = "all-%d" % time.monotonic_ns()
    client.register_handler(Callback(qid, MatchXPath("{jabber:client}message/{%s}result" % MAM),
                                     lambda m: got.append(m.xml)))
    iq = client.make_iq_set()
    iq.append(ET.fromstring("<query xmlns='%s' queryid='%s'/>" % (MAM, qid)))
    res = await iq.send(timeout=10)
    await asyncio.sleep(0.1)
    client.remove_handler(qid)
    fin = res.xml.find("{%s}fin" % MAM)
    assert fin is not None and fin.get("complete") == "true", "more than a page"
    out = []
    for m in got:
        r = m.find("{%s}result" % MAM)
        if r.get("queryid") != qid:
            continue
        fwd = r.find("{urn:xmpp:forward:0}forwarded")
        stamp = fwd.find("{urn:xmpp:delay}delay").get("stamp").replace("Z", "+00:00")
        out.append((fwd.find("{jabber:client}message").findtext("{jabber:client}body"),
                    datetime.fromisoformat(stamp).timestamp()))
    return out


def have_peers():
    """Prosody, and the SQLite driver its migrator writes with (lua-dbi-sqlite3)."""
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "lua-dbi-sqlite3"],
                       capture_output=True, text=True)
    return all(os.path.exists(p) for p in (PROSODY, PROSODYCTL, MIGRATOR)) and \
        "install ok installed" in r.stdout


def prosody_config(d, c2s):
    return """-- generated by test_xmpp_core_import.py
run_as_root = true
daemonize = false
pidfile = "{d}/prosody.pid"
data_path = "{d}/data"
certificates = "{d}/certs"
log = {{ debug = "{d}/prosody.log" }}
interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {c2s} }}
c2s_direct_tls_ports = {{ }}
legacy_ssl_ports = {{ }}
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
default_storage = "internal"
-- mod_mam's archive in SQLite (the migrator copies the other stores into the same file)
storage = {{ archive = "sql" }}
sql = {{ driver = "SQLite3", database = "{d}/prosody.sqlite" }}
archive_expires_after = "never"
modules_enabled = {{ "roster", "saslauth", "disco", "ping", "blocklist", "vcard_legacy",
                    "offline", "private", "mam" }}
modules_disabled = {{ "s2s" }}

VirtualHost "{hashed}"
    authentication = "internal_hashed"

VirtualHost "{plain}"
    authentication = "internal_plain"
    modules_enabled = {{ "roster", "saslauth", "disco", "ping", "blocklist", "vcard",
                        "offline", "private", "mam" }}
""".format(d=d, c2s=c2s, hashed=HASHED, plain=PLAIN)


def migrator_config(d):
    stores = ('"accounts", "roster", "blocklist", "vcard", "offline-archive", "pep-pubsub", '
              '"private"')
    return """input {{
	hosts = {{ ["{hashed}"] = {{ {s} }}; ["{plain}"] = {{ {s} }} }};
	type = "internal";
	path = "{d}/data";
}}
output {{
	type = "sql";
	driver = "SQLite3";
	database = "{d}/prosody.sqlite";
}}
""".format(d=d, hashed=HASHED, plain=PLAIN, s=stores)


class ProsodyClient(xmpp.slixmpp.ClientXMPP):
    """A client of the Prosody (no TLS: Prosody here has no certificate)."""

    def __init__(self, jid, password):
        super().__init__(jid, password)
        self.register_plugin("xep_0191")
        self.register_plugin("xep_0054")
        self["feature_mechanisms"].unencrypted_plain = True
        self.enable_starttls = False
        self.enable_direct_tls = False
        self.auto_authorize = None  # the users answer requests themselves, or leave them
        self.auto_subscribe = False
        self.started = asyncio.get_event_loop().create_future()
        self.messages = asyncio.Queue()
        self.add_event_handler("message", self.messages.put_nowait)
        self.add_event_handler("session_start", lambda _: self.started.set_result(True))
        self.add_event_handler("failed_all_auth",
                               lambda _: self.started.done() or self.started.set_result(False))


class Prosody:
    """A Prosody of our own in directory d, on its internal file store."""

    def __init__(self, d):
        self.dir = d
        self.c2s = suite.free_port()
        self.cfg = os.path.join(d, "prosody.cfg.lua")
        os.makedirs(os.path.join(d, "data"))
        os.makedirs(os.path.join(d, "certs"))
        with open(self.cfg, "w") as f:
            f.write(prosody_config(d, self.c2s))
        self.proc = None

    def log(self):
        try:
            with open(os.path.join(self.dir, "prosody.log")) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def register(self, user, host, password):
        r = suite.run([PROSODYCTL, "--config", self.cfg, "register", user, host, password])
        if r.returncode != 0:
            raise AssertionError("prosodyctl register failed:\n%s%s" % (r.stdout, r.stderr))

    def start(self):
        self.out = open(os.path.join(self.dir, "prosody.out"), "a")
        self.proc = subprocess.Popen([PROSODY, "--config", self.cfg, "-F"], stdout=self.out,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        want = "Activated service 'c2s' on [127.0.0.1]:%d" % self.c2s
        while want not in self.log():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("prosody did not start:\n%s" % self.log()[-4000:])
            time.sleep(0.05)

    def stop(self):
        if self.proc:
            suite.terminate(self.proc)
            self.out.close()
        self.proc = None

    async def login(self, user, host=HASHED):
        c = ProsodyClient("%s@%s" % (user, host),
                          PASSWORDS.get(user, {"dave": DAVE, "erin": ERIN}.get(user)))
        c.connect(("127.0.0.1", self.c2s))
        if not await asyncio.wait_for(c.started, 15):
            raise AssertionError("%s could not log in to Prosody" % user)
        await c.get_roster()
        return c

    async def make_state(self):
        """alice and bob see each other (bob named and grouped in alice's roster); alice asks
        carol, who is away; carol asks bob, who does not answer; alice blocks two JIDs,
        keeps a roster note on bob in private XML (XEP-0049) and writes to dave (on the host
        that keeps passwords), who has not come yet."""
        a = await self.login("alice")
        b = await self.login("bob")
        a.send_presence()
        b.send_presence()
        await a.update_roster("bob@%s" % HASHED, name="Bobby", groups=["Friends", "Work"])
        a.send_presence(pto="bob@%s" % HASHED, ptype="subscribe")
        await asyncio.sleep(0.3)
        b.send_presence(pto="alice@%s" % HASHED, ptype="subscribed")
        b.send_presence(pto="alice@%s" % HASHED, ptype="subscribe")
        await asyncio.sleep(0.3)
        a.send_presence(pto="bob@%s" % HASHED, ptype="subscribed")
        a.send_presence(pto="carol@%s" % HASHED, ptype="subscribe")
        await a["xep_0191"].block(["spam@evil.example", "evil.example/bot"])
        a.send_message(mto="dave@%s" % PLAIN, mbody="see you on the new server", mtype="chat")
        vc = a["xep_0054"].make_vcard()
        vc["FN"] = "Alice Liddell"
        await a["xep_0054"].publish_vcard(vc)
        await private_set(a, notes_xml())
        await asyncio.sleep(0.3)
        c = await self.login("carol")
        c.send_presence(pto="bob@%s" % HASHED, ptype="subscribe")
        e = await self.login("erin", PLAIN)
        vc = e["xep_0054"].make_vcard()
        vc["FN"] = "Erin Example"
        vc["PHOTO"]["TYPE"] = "image/png"
        vc["PHOTO"]["BINVAL"] = b"\x89PNG not really"
        await e["xep_0054"].publish_vcard(vc)
        await asyncio.sleep(0.5)
        for x in (a, b, c, e):
            x.disconnect()
        await asyncio.sleep(0.5)

    async def chat(self):
        """alice and bob chat (CHAT), each message received before the next, some seconds
        apart; what Prosody's archive then answers each of them, and when each message was sent
        (body: Unix time). (dave stays away: his offline message waits for him.)"""
        users = {u: await self.login(u) for u in ("alice", "bob")}
        for c in users.values():
            c.send_presence()  # available: messages to the bare JID reach the session
        await asyncio.sleep(0.3)
        sent = {}
        for i, (frm, to, body) in enumerate(CHAT):
            if i % 2 == 0:
                await asyncio.sleep(1.1)  # stamps of more than one second
            sent[body] = time.time()
            users[frm].send_message(mto="%s@%s" % (to, HASHED), mbody=body, mtype="chat")
            m = await asyncio.wait_for(users[to].messages.get(), 10)
            assert m["body"] == body, m
        archives = {u: await archive_of(c) for u, c in users.items()}
        for c in users.values():
            c.disconnect()
        await asyncio.sleep(0.5)
        return archives, sent


async def presence_from(client, ptype, sender):
    """The next presence of ptype from sender (bare JID); the clients answer requests on
    their own (slixmpp's default), so others come and go meanwhile."""
    while True:
        p = await client.next_presence(ptype)
        if p["from"].bare == sender:
            return p


def b64(b):
    return base64.b64encode(b).decode()


@unittest.skipUnless(have_peers(), "needs prosody and lua-dbi-sqlite3 (scripts/deps.sh test)")
class ImportFromProsody(xmpp.ServerCase):
    extra = SHA256_OFF

    @classmethod
    def setUpClass(cls):
        """One Prosody's data for every test: made once, migrated once."""
        cls.pdir = suite.tempdir()
        d = cls.pdir.name
        p = Prosody(d)
        for u, pw in PASSWORDS.items():
            p.register(u, HASHED, pw)
        p.register("dave", PLAIN, DAVE)
        p.register("erin", PLAIN, ERIN)
        p.start()
        try:
            xmpp.run(p.make_state())
            cls.archives, cls.sent = xmpp.run(p.chat())
        finally:
            p.stop()
        with open(os.path.join(d, "migrator.cfg.lua"), "w") as f:
            f.write(migrator_config(d))
        if os.geteuid() == 0:  # the migrator runs as Prosody's user when started as root
            subprocess.run(["chown", "-R", "prosody:prosody", d], check=True)
        r = suite.run([MIGRATOR, "--config=" + os.path.join(d, "migrator.cfg.lua"), "input",
                       "output"], timeout=60)
        cls.db = os.path.join(d, "prosody.sqlite")
        if r.returncode != 0 or not os.path.exists(cls.db):
            raise AssertionError("prosody-migrator failed:\n%s%s" % (r.stdout, r.stderr))

    @classmethod
    def tearDownClass(cls):
        cls.pdir.cleanup()

    def xmppctl(self, *args):
        return suite.run([XMPPCTL, "-u", "http://127.0.0.1:%d" % self.srv.admin, "-t",
                          self.srv.token_file] + list(args), timeout=60)

    def import_all(self):
        r = self.xmppctl("import-prosody", self.db)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r.stdout

    def test_accounts_rosters_and_block_lists_come_over(self):
        out = self.import_all()
        self.assertIn("alice@example.org\timported: 2 contact(s), 0 request(s), 2 blocked, "
                      "0 offline message(s), 1 PEP item(s), a vCard, 1 private XML "
                      "element(s)\n", out)
        self.assertIn("bob@example.org\timported: 1 contact(s), 1 request(s), 0 blocked", out)
        self.assertIn("carol@example.org\timported: 1 contact(s), 1 request(s), 0 blocked", out)
        self.assertIn("dave@localhost\timported: 0 contact(s), 0 request(s), 0 blocked, "
                      "1 offline message(s), 0 PEP item(s)", out)
        # (Prosody publishes the avatar of erin's vCard to PEP too: those items come along)
        self.assertRegex(out, "erin@localhost\timported: 0 contact\\(s\\), 0 request\\(s\\), "
                              "0 blocked, 0 offline message\\(s\\), [0-9]+ PEP item\\(s\\), a vCard\n")
        self.assertIn("5 imported, 0 already there, 0 not imported", out)
        self.assertNotIn("note:", out)  # nothing of what these users have is left behind
        self.assertIn("3 account(s) came with SCRAM-SHA-1 keys only", out)
        # a second run changes nothing
        again = self.import_all()
        self.assertIn("0 imported, 5 already there, 0 not imported", again)

        async def go():
            # the Prosody password, by SCRAM-SHA-1: the only SCRAM offered here
            a = await xmpp.login(self.srv, "alice@example.org", PASSWORDS["alice"])
            items = a.client_roster
            bob = items["bob@example.org"]
            self.assertEqual(bob["subscription"], "both")
            self.assertEqual(bob["name"], "Bobby")
            self.assertEqual(sorted(bob["groups"]), ["Friends", "Work"])
            carol = items["carol@example.org"]
            self.assertEqual(carol["subscription"], "none")
            self.assertTrue(carol["pending_out"])
            # her vCard (Prosody 0.12 keeps vcard-temp as vCard4 in PEP) came with her
            a.register_plugin("xep_0060")
            a.register_plugin("xep_0054")
            got = await a["xep_0060"].get_items(jid="alice@example.org", node="urn:xmpp:vcard4")
            vcards = list(got["pubsub"]["items"])
            self.assertEqual(len(vcards), 1)
            self.assertIn("Alice Liddell", str(vcards[0]))
            # and as vcard-temp, made from it; erin's as mod_vcard kept it, photo included
            mine = await a["xep_0054"].get_vcard("alice@example.org")
            self.assertEqual(mine["vcard_temp"]["FN"], "Alice Liddell")
            hers = await a["xep_0054"].get_vcard("erin@localhost")
            self.assertEqual(hers["vcard_temp"]["FN"], "Erin Example")
            self.assertEqual(hers["vcard_temp"]["PHOTO"]["BINVAL"], b"\x89PNG not really")
            blocked = await a["xep_0191"].get_blocked()
            self.assertEqual(sorted(str(j) for j in blocked["blocklist"]["items"]),
                             ["evil.example/bot", "spam@evil.example"])
            # her private XML, as she kept it on Prosody
            self.assertEqual(await private_note(a), NOTE)
            # carol was away when alice asked: the request waits for her, as on Prosody
            c = xmpp.Client("carol@example.org", PASSWORDS["carol"], self.srv)
            c.connect(("127.0.0.1", self.srv.c2s))
            self.assertTrue(await asyncio.wait_for(c.started, 15))
            await c.get_roster()
            c.send_presence()
            await presence_from(c, "subscribe", "alice@example.org")
            self.assertTrue(c.client_roster["bob@example.org"]["pending_out"])
            # bob's pending request from carol, and his answer reaching her
            b = await xmpp.login(self.srv, "bob@example.org", PASSWORDS["bob"])
            await presence_from(b, "subscribe", "carol@example.org")
            b.send_presence(pto="carol@example.org", ptype="subscribed")
            await presence_from(c, "subscribed", "bob@example.org")
            # and alice and bob chat
            a.send_message(mto="bob@example.org", mbody="moved in", mtype="chat")
            m = await b.next_message()
            self.assertEqual(m["body"], "moved in")
            # dave gets what alice wrote him on Prosody, stamped when Prosody kept it
            d = await xmpp.login(self.srv, "dave@localhost", DAVE)
            m = await d.next_message()
            self.assertEqual(m["body"], "see you on the new server")
            self.assertEqual(m["from"].bare, "alice@example.org")
            age = time.time() - m["delay"]["stamp"].timestamp()
            self.assertTrue(0 < age < 600, age)
            # erin's avatar: its hash, learnt from her vCard at her first login, is in her
            # presence (XEP-0153, XEP-0398), which goes out again once it is known
            e = await xmpp.login(self.srv, "erin@localhost", ERIN)
            want, saw = hashlib.sha1(b"\x89PNG not really").hexdigest(), []
            while want not in saw:
                p = await e.next_presence()
                if p["from"] == e.boundjid and p["type"] != "unavailable":
                    saw.append(p.xml.findtext("{vcard-temp:x:update}x/"
                                              "{vcard-temp:x:update}photo"))
            await xmpp.logout(a, b, c, d, e)
        xmpp.run(go())

    def test_message_archives_come_over(self):
        alice, bob = self.archives["alice"], self.archives["bob"]
        # what Prosody answered: alice's message to dave, then the chat, which bob has too
        chat = [body for _, _, body in CHAT]
        self.assertEqual([b for b, _ in alice], ["see you on the new server"] + chat)
        self.assertEqual([b for b, _ in bob], chat)
        out = self.import_all()
        self.assertIn("alice@example.org\tarchive: %d message(s)\n" % len(alice), out)
        self.assertIn("bob@example.org\tarchive: %d message(s)\n" % len(bob), out)
        self.assertIn("dave@localhost\tarchive: 1 message(s)\n", out)
        self.assertNotIn("carol@example.org\tarchive", out)  # she has none
        self.assertIn("\n%d archived message(s) imported\n" % (len(alice) + len(bob) + 1), out)
        self.assertNotIn("note:", out)
        # a second run finds the accounts there: their archives are not sent again
        again = self.import_all()
        self.assertIn("0 imported, 5 already there, 0 not imported", again)
        self.assertNotIn("\tarchive", again)
        self.assertNotIn("archived message", again)

        async def go():
            for user, want in (("alice", alice), ("bob", bob)):
                c = await xmpp.login(self.srv, "%s@%s" % (user, HASHED), PASSWORDS[user])
                got = await archive_of(c)
                self.assertEqual([b for b, _ in got], [b for b, _ in want], user)
                for (body, stamp), (_, theirs) in zip(got, want):
                    self.assertEqual(stamp, theirs, (user, body[:20]))  # Prosody's second
                    if body in self.sent:  # and within a second of when it was sent
                        self.assertTrue(-0.5 < self.sent[body] - stamp < 1.0,
                                        (user, body[:20], self.sent[body], stamp))
                await xmpp.logout(c)
            d = await xmpp.login(self.srv, "dave@localhost", DAVE)
            self.assertEqual([b for b, _ in await archive_of(d)], ["see you on the new server"])
            await xmpp.logout(d)
        xmpp.run(go())

    def test_a_refused_archive_fails_the_account(self):
        """A server that takes stanzas of 4 KiB: xmppctl asks it its limit and
        leaves bob's message of 5 KB behind, named, and the rest comes. Told a larger limit
        with --max-stanza, it sends that message, the server refuses the request, and alice and
        bob are imported without their archives and fail, saying what to do. A server whose
        archive is off leaves every archive behind and takes the accounts."""
        self.srv.text = self.srv.text.replace("c2s:\n", "c2s:\n  max_stanza: 4096\n", 1)
        self.srv.stop()
        self.srv.restart()
        self.assertEqual(self.srv.api("GET", "limits"), (200, {"max_stanza": 4096}))
        self.assertEqual(self.srv.api("POST", "limits", {})[0], 405)
        r = self.xmppctl("import-prosody", self.db, HASHED)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        for user in ("alice", "bob"):
            self.assertIn("%s@example.org\tarchive: %d message(s)\n  note: %s@example.org: "
                          "message archive (mod_mam): 1 message(s) left behind: over 4096 "
                          "bytes (c2s.max_stanza)\n"
                          % (user, len(self.archives[user]) - 1, user), r.stdout)
        self.assertIn("3 imported, 0 already there, 0 not imported; 2 note(s)", r.stdout)
        for user in ("alice", "bob"):
            self.assertEqual(self.srv.api("DELETE", "accounts/%s@%s" % (user, HASHED))[0], 204)
        r = self.xmppctl("--max-stanza", "1m", "import-prosody", self.db, HASHED)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        for user in ("alice", "bob"):
            self.assertRegex(r.stdout, "%s@example.org\tarchive not imported: messages\\[[0-9]+\\]"
                                       ".*c2s.max_stanza.*\\(HTTP 400\\)\n" % user)
            self.assertIn("%s@example.org\tthe account was imported with 0 of its archived "
                          "messages: unregister it and import it again to bring the whole "
                          "archive\n" % user, r.stdout)
        self.assertIn("0 imported, 1 already there, 2 not imported", r.stdout)
        r = self.xmppctl("--max-stanza", "1k", "import-prosody", self.db)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--max-stanza takes bytes from 4096", r.stderr)

        self.srv.text += "archive:\n  enabled: false\n"
        self.srv.stop()
        self.srv.restart()
        # an archive the server does not keep is left behind, the accounts come all the same
        r = self.xmppctl("import-prosody", self.db, PLAIN)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("dave@localhost\tarchive left behind: the server's archive is off "
                      "(archive.enabled)\n", r.stdout)
        self.assertIn("2 imported, 0 already there, 0 not imported", r.stdout)
        self.assertNotIn("archived message(s) imported", r.stdout)

    def test_sha256_keys_come_with_a_plain_login(self):
        self.import_all()
        _, stats = self.srv.api("GET", "stats")
        self.assertEqual(stats["accounts_missing_keys"], {"example.org": 3, "localhost": 0})
        # SCRAM-SHA-256 is neither offered nor taken while it is disabled
        raw = self.keep(xmpp.Raw(self.srv))
        raw.open(HASHED)
        raw.starttls()
        feats = raw.open(HASHED)
        self.assertIn("<mechanism>SCRAM-SHA-1</mechanism>", feats)
        self.assertNotIn("SCRAM-SHA-256", feats)
        raw.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>"
                 "biwsbj1ib2Iscj1hYmNkZWY=</auth>")
        self.assertIn("<invalid-mechanism/>", raw.until("</failure>"))

        async def plain_login():
            b = await xmpp.login(self.srv, "bob@example.org", PASSWORDS["bob"], mech="PLAIN")
            await xmpp.logout(b)
        xmpp.run(plain_login())
        deadline = time.monotonic() + 10
        while self.srv.api("GET", "stats")[1]["accounts_missing_keys"]["example.org"] != 2:
            self.assertLess(time.monotonic(), deadline, "bob's keys were not completed")
            time.sleep(0.1)
        self.assertIn("bob@example.org logged in with PLAIN: its missing SCRAM keys are being "
                      "stored", self.srv.output())

        # SCRAM-SHA-256 on again: bob (completed) and dave (his password came over) use it;
        # alice, still with SCRAM-SHA-1 keys only, fails with it and succeeds with SCRAM-SHA-1
        self.srv.text = self.srv.text.replace(SHA256_OFF, "")
        self.srv.stop()
        self.srv.restart()
        for user, host, pw in (("bob", HASHED, PASSWORDS["bob"]), ("dave", PLAIN, DAVE)):
            r = self.keep(xmpp.Raw(self.srv))
            r.open(host)
            r.starttls()
            r.open(host)
            ok, said = r.scram(user, pw, mech="SCRAM-SHA-256")
            self.assertTrue(ok, (user, said))
        r = self.keep(xmpp.Raw(self.srv))
        r.open(HASHED)
        r.starttls()
        r.open(HASHED)
        ok, said = r.scram("alice", PASSWORDS["alice"], mech="SCRAM-SHA-256")
        self.assertFalse(ok)
        self.assertIn("<not-authorized/>", said)
        self.assertIn("has no SCRAM-SHA-256 keys", self.srv.output())
        ok, said = r.scram("alice", PASSWORDS["alice"], mech="SCRAM-SHA-1")
        self.assertTrue(ok, said)

    def test_dry_run_sends_nothing(self):
        r = suite.run([XMPPCTL, "--dry-run", "import-prosody", self.db, HASHED])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("alice@example.org\twould be imported: 2 contact(s), 0 request(s), "
                      "2 blocked, 0 offline message(s), 1 PEP item(s), a vCard, 1 private XML "
                      "element(s)\n", r.stdout)
        self.assertIn("3 to import, 0 already there, 0 not imported", r.stdout)
        for user in ("alice", "bob"):
            self.assertIn("%s@example.org\tarchive: %d message(s) to import\n"
                          % (user, len(self.archives[user])), r.stdout)
        self.assertIn("\n%d archived message(s) to import\n"
                      % (len(self.archives["alice"]) + len(self.archives["bob"])), r.stdout)
        self.assertNotIn("dave", r.stdout)
        self.assertEqual(self.srv.api("GET", "accounts?host=example.org")[1]["accounts"], [])

    def test_not_a_prosody_database(self):
        bad = os.path.join(self.tmp, "other.sqlite")
        subprocess.run(["/usr/bin/python3", "-c", "import sqlite3,sys; "
                        "sqlite3.connect(sys.argv[1]).execute('create table t(x)')", bad],
                       check=True)
        r = self.xmppctl("import-prosody", bad)
        self.assertEqual(r.returncode, 2)
        self.assertIn("is not Prosody's SQL store", r.stderr)
        r = self.xmppctl("import-prosody", os.path.join(self.tmp, "missing.sqlite"))
        self.assertEqual(r.returncode, 2)
        self.assertIn("cannot open", r.stderr)


class ImportRoute(xmpp.ServerCase):
    """POST /api/v1/import with documents no importer of ours writes."""

    KEYS = {"SCRAM-SHA-1": {"iterations": 4096, "salt": b64(b"salt-of-sixteen!"),
                            "stored_key": b64(b"\x01" * 20), "server_key": b64(b"\x02" * 20)}}

    def refused(self, doc, status=400):
        st, body = self.srv.api("POST", "import", doc)
        self.assertEqual(st, status, body)
        return body["error"]

    def test_bad_documents_are_refused_precisely(self):
        ok = {"jid": "eve@localhost", "scram": self.KEYS}
        cases = [
            ({"jid": "eve@localhost", "scram": self.KEYS, "avatar": "x"},
             'unknown member "avatar"'),
            ({"jid": "eve@localhost", "scram": self.KEYS, "vcard": "<vcard/>"},
             "\"vcard\" is not one <vCard xmlns='vcard-temp'/>"),
            ({"jid": "eve@localhost"}, 'one of "password" and "scram" is required'),
            ({"jid": "eve@localhost", "password": "x", "scram": self.KEYS}, "not both"),
            ({"jid": "eve@elsewhere.example", "password": "x"}, "not one of the hosts served"),
            ({"jid": "localhost", "password": "x"}, "must be a bare JID (user@host)"),
            ({"jid": "eve@localhost/phone", "password": "x"}, "must be a bare JID"),
            ({"jid": "eve@localhost", "scram": {"SCRAM-SHA-512": {}}},
             "is not SCRAM-SHA-1 or SCRAM-SHA-256"),
            ({"jid": "eve@localhost",
              "scram": {"SCRAM-SHA-1": dict(self.KEYS["SCRAM-SHA-1"], stored_key=b64(b"x"))}},
             '"stored_key" must be 20 bytes in base64'),
            ({"jid": "eve@localhost",
              "scram": {"SCRAM-SHA-1": dict(self.KEYS["SCRAM-SHA-1"], iterations=0)}},
             '"iterations" must be an integer from 1'),
            (dict(ok, roster=[{"jid": "bob@localhost", "subscription": "both", "ask": True}]),
             '"ask" with subscription both'),
            (dict(ok, roster=[{"jid": "bob@localhost", "subscription": "from",
                               "pending_in": True}]), '"pending_in" with subscription from'),
            (dict(ok, roster=[{"jid": "bob@localhost", "subscription": "sideways"}]),
             '"subscription" must be none, to, from or both'),
            (dict(ok, roster=[{"jid": "bob@localhost", "groups": ["a", "a"]}]),
             'group "a" twice'),
            (dict(ok, roster=[{"jid": "bob@localhost", "name": "bell\u0007"}]),
             "text XML can carry"),
            (dict(ok, roster=[{"jid": "bob@localhost"}], requests=["BOB@localhost"]),
             "bob@localhost is named twice"),
            (dict(ok, roster=[{"jid": "x@localhost", "groups": ["g%d" % i for i in range(33)]}]),
             '"groups" must be an array of 32 at most'),
            (dict(ok, requests=["x%d@localhost" % i for i in range(1001)]),
             "a roster holds 1000 at most"),
            (dict(ok, blocklist=["@@"]), "blocklist[0]"),
            ('{"jid": "eve@localhost", "jid": "eve@localhost"}', "the body must be a JSON"),
        ]
        for doc, why in cases:
            self.assertIn(why, self.refused(doc), doc if isinstance(doc, str) else
                          {k: v for k, v in doc.items() if k != "requests"})
        # nothing of the refused documents was stored
        self.assertEqual(self.srv.api("GET", "accounts?host=localhost")[1]["accounts"], [])

    def test_large_accounts(self):
        """A full roster with a full offline store (about 1 MB) comes in one document; one over
        the import route's 8 MiB is refused before it is read, and the other admin routes
        refuse what is over 64 KiB."""
        doc = {"jid": "big@localhost", "password": "pw-big",
               "roster": [{"jid": "c%d@localhost" % i, "name": "Contact %d" % i,
                           "groups": ["Friends", "Work"], "subscription": "both"}
                          for i in range(1000)],
               "offline": [{"stamp_ms": 1000 + i,
                            "stanza": "<message to='big@localhost' type='chat'><body>%d %s"
                                      "</body></message>" % (i, "x" * 900)}
                           for i in range(1000)]}
        st, body = self.srv.api("POST", "import", doc)
        self.assertEqual(st, 201, body)
        self.assertEqual((body["roster"], body["offline"]), (1000, 1000))
        huge = json.dumps({"jid": "huge@localhost", "password": "pw",
                           "offline": [{"stamp_ms": 1, "stanza": "<message to='huge@localhost'>"
                                        "<body>%s</body></message>" % ("y" * 200000)}] * 45})
        c = http.client.HTTPConnection("127.0.0.1", self.srv.admin, timeout=30)
        c.request("POST", "/api/v1/import", body=huge,
                  headers={"Authorization": "Bearer " + self.srv.token})
        self.assertEqual(c.getresponse().status, 413)
        c.close()
        # only the import route reads that much: every other admin route keeps 64 KiB, token
        # or not
        for path in ("/api/v1/accounts", "/api/v1/importx", "/api/v1/sessions"):
            c = http.client.HTTPConnection("127.0.0.1", self.srv.admin, timeout=30)
            c.request("POST", path, body=json.dumps({"jid": "x@localhost", "pad": "z" * 70000}),
                      headers={"Authorization": "Bearer " + self.srv.token})
            self.assertEqual(c.getresponse().status, 413, path)
            c.close()

        async def go():
            b = await xmpp.login(self.srv, "big@localhost", "pw-big", roster=False)
            first = await b.next_message()
            self.assertTrue(first["body"].startswith("0 "), first["body"][:20])
            await xmpp.logout(b)
        xmpp.run(go())

    def test_an_existing_account_is_left_alone(self):
        self.srv.register("frank", password="franks-own")
        self.assertIn("exists already", self.refused(
            {"jid": "frank@localhost", "password": "another",
             "roster": [{"jid": "x@localhost", "subscription": "both"}]}, status=409))

        async def go():
            f = await xmpp.login(self.srv, "frank@localhost", "franks-own")
            self.assertNotIn("x@localhost", f.client_roster)
            await xmpp.logout(f)
        xmpp.run(go())

    def test_a_normalised_import(self):
        st, body = self.srv.api("POST", "import", {
            "jid": "Grace@LocalHost", "password": "graces-password",
            "roster": [{"jid": "Heidi@LocalHost", "name": "H", "subscription": "to",
                        "pending_in": True, "approved": True}],
            "requests": ["ivan@localhost"], "blocklist": ["X@Evil.Example", "x@evil.example"]})
        self.assertEqual(st, 201, body)
        self.assertEqual(body, {"jid": "grace@localhost",
                                "scram": ["SCRAM-SHA-1", "SCRAM-SHA-256"], "roster": 1,
                                "requests": 1, "blocklist": 1, "offline": 0, "pep_nodes": 0,
                                "pep_items": 0, "vcard": False, "private": 0})

        async def go():
            g = await xmpp.login(self.srv, "grace@localhost", "graces-password")
            h = g.client_roster["heidi@localhost"]
            self.assertEqual((h["subscription"], h["name"]), ("to", "H"))
            self.assertNotIn("ivan@localhost", g.client_roster.keys())
            p = await g.next_presence("subscribe")
            self.assertIn(p["from"].bare, ("heidi@localhost", "ivan@localhost"))
            await xmpp.logout(g)
        xmpp.run(go())


class DisabledMechanismsConfig(unittest.TestCase):
    """auth.disabled_mechanisms names only known mechanisms and leaves a SCRAM one."""

    def test_checked(self):
        with suite.tempdir() as tmp:
            path = os.path.join(tmp, "x.yaml")
            for value, said in (("[SCRAM-SHA-512]", '"SCRAM-SHA-512" is not one of PLAIN'),
                                ("[SCRAM-SHA-1, SCRAM-SHA-256]",
                                 "SCRAM-SHA-1 or SCRAM-SHA-256 must stay enabled"),
                                ("[SCRAM-SHA-256, SCRAM-SHA-256-PLUS, PLAIN]", None)):
                with open(path, "w") as f:
                    f.write("hosts: [localhost]\nauth:\n  disabled_mechanisms: %s\n" % value)
                r = subprocess.run([os.path.join(suite.BIN, "xmpp-core"), "-c", path,
                                    "--check-config"], capture_output=True, text=True,
                                   timeout=30)
                if said is None:
                    self.assertNotIn("disabled_mechanisms", r.stdout + r.stderr)
                else:
                    self.assertNotEqual(r.returncode, 0, value)
                    self.assertIn("auth.disabled_mechanisms", r.stdout + r.stderr)
                    self.assertIn(said, r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
