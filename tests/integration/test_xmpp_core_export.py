"""Leaving xmpp-core, or copying accounts elsewhere: `xmppctl export-xep227 DIR` writes each
account as an XEP-0227 file (DIR/user@host.xml, as Prosody lays them out). A second xmpp-core
takes the files with `xmppctl import-xep227` and then holds the same accounts, read back through
the admin API field by field; a real Prosody 0.12 (Debian's) takes them with prosody-migrator
(its xep0227 store as the input) and its users log in there with the passwords they had here
and find their contacts and private XML (XEP-0049, read with an IQ get); so do those of a real
ejabberd 23.01 which took them with import_piefxis, written for it (--ejabberd: its SCRAM values
in base64 twice)."""

import asyncio
import os
import subprocess
import sys
import unittest
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(__file__))
import suite  # noqa: E402
import ejabberd  # noqa: E402
import test_xmpp_core_import as prosody  # noqa: E402  (its Prosody and clients)
import test_xmpp_core_xep227 as xep227  # noqa: E402  (its migrator reading a directory)
import xmpp  # noqa: E402

XMPPCTL = os.path.join(suite.BIN, "xmppctl")
HOST = "example.org"  # what Prosody's hashed host is in test_xmpp_core_import
PW = {"alice": "alice-here", "bob": "bob-here", "carol": "carol-here"}
PIE = "{urn:xmpp:pie:0}"


def xmppctl(srv, *args):
    return suite.run([XMPPCTL, "-u", "http://127.0.0.1:%d" % srv.admin, "-t", srv.token_file]
                     + list(args), timeout=120)


async def make_state(srv):
    """alice and bob see each other (bob named and grouped); carol asks alice, who does not
    answer; alice blocks a JID, sets her vCard and a roster note in private XML (XEP-0049), and
    bob writes to dave, who is away."""
    alice, bob, carol = ("%s@%s" % (u, HOST) for u in ("alice", "bob", "carol"))
    a = await xmpp.login(srv, alice, PW["alice"])
    b = await xmpp.login(srv, bob, PW["bob"])
    await a.update_roster(bob, name="Bobby", groups=["Friends"])
    a.send_presence(pto=bob, ptype="subscribe")
    await prosody.presence_from(b, "subscribe", alice)
    b.send_presence(pto=alice, ptype="subscribed")
    b.send_presence(pto=alice, ptype="subscribe")
    await prosody.presence_from(a, "subscribe", bob)
    a.send_presence(pto=bob, ptype="subscribed")
    await a["xep_0191"].block(["spam@evil.example"])
    a.register_plugin("xep_0054")
    vc = a["xep_0054"].make_vcard()
    vc["FN"] = "Alice Here"
    await a["xep_0054"].publish_vcard(vc)
    await prosody.private_set(a, prosody.notes_xml())
    # a chat both archive
    a.send_message(mto=bob, mbody="kept in both archives", mtype="chat")
    await b.next_message()
    b.send_message(mto="dave@localhost", mbody="for dave, later", mtype="chat")
    c = await xmpp.login(srv, carol, PW["carol"])
    # carol's request stays unanswered: alice's client does not answer it
    a.auto_authorize = None
    c.send_presence(pto=alice, ptype="subscribe")
    await prosody.presence_from(a, "subscribe", carol)
    await asyncio.sleep(0.3)
    await xmpp.logout(a, b, c)


class Export(xmpp.ServerCase):

    def setUp(self):
        super().setUp()
        for u, pw in PW.items():
            self.srv.register(u, pw, host=HOST)
        self.srv.register("dave", "dave-here", host="localhost")
        xmpp.run(make_state(self.srv))
        self.out = os.path.join(self.tmp, "export")

    def exported(self, srv, jid):
        st, doc = srv.api("GET", "export/" + jid)
        self.assertEqual(st, 200, doc)
        return doc

    def test_export_and_back(self):
        r = xmppctl(self.srv, "export-xep227", self.out)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("alice@example.org\texported: 1 contact(s), 1 request(s), 1 blocked, "
                      "0 offline message(s), 0 PEP item(s), a vCard, 1 private XML "
                      "element(s)\n", r.stdout)
        self.assertIn("dave@localhost\texported: 0 contact(s), 0 request(s), 0 blocked, "
                      "1 offline message(s), 0 PEP item(s)\n", r.stdout)
        self.assertIn("alice@example.org\tarchive: 1 message(s)\n", r.stdout)
        self.assertIn("bob@example.org\tarchive: 2 message(s)\n", r.stdout)
        self.assertIn("4 exported, 0 not exported", r.stdout)
        self.assertEqual(sorted(os.listdir(self.out)),
                         ["alice@example.org.xml", "bob@example.org.xml",
                          "carol@example.org.xml", "dave@localhost.xml"])
        self.assertEqual(os.stat(self.out).st_mode & 0o777, 0o700)
        self.assertEqual(os.stat(os.path.join(self.out, "alice@example.org.xml")).st_mode
                         & 0o777, 0o600)
        # XEP-0227 as the others write it
        root = ET.parse(os.path.join(self.out, "alice@example.org.xml")).getroot()
        self.assertEqual(root.tag, PIE + "server-data")
        user = root.find(PIE + "host/" + PIE + "user")
        self.assertEqual(user.get("name"), "alice")
        self.assertEqual(sorted(s.get("mechanism") for s in
                                user.findall("{urn:xmpp:pie:0#scram}scram-credentials")),
                         ["SCRAM-SHA-1", "SCRAM-SHA-256"])
        self.assertEqual([p.get("from") for p in user.findall("{jabber:client}presence")],
                         ["carol@example.org"])
        # private XML where XEP-0227 puts it, each element in its namespace
        note = user.find("{jabber:iq:private}query/{storage:rosternotes}notes/"
                         "{storage:rosternotes}note")
        self.assertEqual((note.get("jid"), note.text), ("bob@example.org", prosody.NOTE))
        # the archive, as Prosody's xep0227 store writes it
        res = user.findall("{urn:xmpp:pie:0#mam}archive/{urn:xmpp:mam:2}result")
        self.assertEqual(len(res), 1)
        self.assertEqual(res[0].find("{urn:xmpp:forward:0}forwarded/{jabber:client}message")
                         .findtext("{jabber:client}body"), "kept in both archives")

        async def archives(srv):
            out = []
            for u in ("alice", "bob"):
                c = await xmpp.login(srv, "%s@example.org" % u, PW[u])
                out.append(await prosody.archive_of(c))
                await xmpp.logout(c)
            return out
        before = xmpp.run(archives(self.srv))
        self.assertEqual([[b for b, _ in a] for a in before],
                         [["kept in both archives"],
                          ["kept in both archives", "for dave, later"]])
        # never over a file that is there
        again = xmppctl(self.srv, "export-xep227", self.out)
        self.assertEqual(again.returncode, 1, again.stdout)
        self.assertIn("alice@example.org\tnot exported: %s/alice@example.org.xml: File exists"
                      % self.out, again.stdout)

        # a second xmpp-core takes them, and holds the same accounts
        tmp2 = suite.tempdir()
        self.addCleanup(tmp2.cleanup)
        other = xmpp.Server(tmp2.name)
        self.addCleanup(other.close)
        r = xmppctl(other, "import-xep227", self.out)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("4 imported, 0 already there, 0 not imported; 0 note(s)", r.stdout)
        self.assertIn("4 archived message(s) imported", r.stdout)  # dave has bob's too
        # the archives came, stamps to the second (XEP-0227's own <delay/>s keep no more)
        after = xmpp.run(archives(other))
        self.assertEqual([[(b, int(t)) for b, t in a] for a in after],
                         [[(b, int(t)) for b, t in a] for a in before])
        for jid in ("alice@example.org", "bob@example.org", "carol@example.org",
                    "dave@localhost"):
            self.maxDiff = None
            self.assertEqual(self.exported(other, jid), self.exported(self.srv, jid), jid)
        self.assertEqual(len(self.exported(other, "alice@example.org")["private"]), 1)

        async def there():
            a = await xmpp.login(other, "alice@example.org", PW["alice"])
            bob = a.client_roster["bob@example.org"]
            self.assertEqual((bob["subscription"], bob["name"], bob["groups"]),
                             ("both", "Bobby", ["Friends"]))
            self.assertEqual(await prosody.private_note(a), prosody.NOTE)
            d = await xmpp.login(other, "dave@localhost", "dave-here")
            m = await d.next_message()
            self.assertEqual(m["body"], "for dave, later")
            self.assertEqual(m["from"].bare, "bob@example.org")
            await xmpp.logout(a, d)
        xmpp.run(there())
        self.assertEqual(other.stop(), 0, other.output())
        suite.assert_clean(self, other.output())

    def test_an_account_that_is_not_there(self):
        st, body = self.srv.api("GET", "export/nobody@example.org")
        self.assertEqual(st, 404, body)
        st, body = self.srv.api("GET", "export/nobody@elsewhere.example")
        self.assertEqual(st, 400, body)
        st, body = self.srv.api("POST", "export/alice@example.org", {})
        self.assertEqual(st, 405, body)
        r = xmppctl(self.srv, "export-xep227", self.out, "elsewhere.example")
        self.assertNotEqual(r.returncode, 0, r.stdout)

    @unittest.skipUnless(xep227.have_prosody(), "needs prosody (scripts/deps.sh test)")
    def test_prosody_takes_them(self):
        r = xmppctl(self.srv, "export-xep227", self.out, HOST)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("3 exported", r.stdout)
        d = os.path.join(self.tmp, "prosody")
        os.makedirs(d)
        p = prosody.Prosody(d)
        cfg = os.path.join(d, "migrator.cfg.lua")
        with open(cfg, "w") as f:
            f.write("""input {{
	hosts = {{ ["{h}"] = {{ "accounts", "roster", "vcard", "private" }} }};
	type = "xep0227";
}}
output {{
	type = "internal";
	path = "{d}/data";
}}
""".format(h=HOST, d=d))
        if os.geteuid() == 0:  # the migrator runs as Prosody's user when started as root
            os.chmod(self.tmp, 0o711)
            subprocess.run(["chown", "-R", "prosody:prosody", d, self.out], check=True)
        m = suite.run(xep227.migrator_writing_to(d, self.out) + ["--config=" + cfg, "input",
                                                                  "output"], timeout=60)
        self.assertEqual(m.returncode, 0, m.stdout + m.stderr)
        self.assertTrue(os.listdir(os.path.join(d, "data")), m.stdout + m.stderr)
        p.start()
        self.addCleanup(p.stop)

        async def on_prosody():
            c = prosody.ProsodyClient("alice@" + HOST, PW["alice"])
            c.connect(("127.0.0.1", p.c2s))
            self.assertTrue(await asyncio.wait_for(c.started, 15), p.log()[-3000:])
            await c.get_roster()
            bob = c.client_roster["bob@example.org"]
            self.assertEqual((bob["subscription"], bob["name"]), ("both", "Bobby"))
            self.assertEqual(list(bob["groups"]), ["Friends"])
            # her private XML, read from Prosody's mod_private
            self.assertEqual(await prosody.private_note(c), prosody.NOTE)
            c.disconnect()
            # a wrong password does not
            w = prosody.ProsodyClient("bob@" + HOST, "not-bobs")
            w.connect(("127.0.0.1", p.c2s))
            self.assertFalse(await asyncio.wait_for(w.started, 15))
            w.disconnect()
        xmpp.run(on_prosody())


    @unittest.skipUnless(ejabberd.why_not() is None, ejabberd.why_not() or "")
    def test_ejabberd_takes_them(self):
        self.srv.register("erin", "erin-here", host=HOST)
        r = xmppctl(self.srv, "--ejabberd", "export-xep227", self.out, HOST)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # erin as the format itself writes keys (base64 once): what --ejabberd is for
        single = os.path.join(self.tmp, "single")
        r = xmppctl(self.srv, "export-xep227", single, HOST)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        os.replace(os.path.join(single, "erin@%s.xml" % HOST),
                   os.path.join(self.out, "erin@%s.xml" % HOST))
        e = ejabberd.Ejabberd(os.path.join(self.tmp, "ejabberd"), [HOST])
        e.start()
        self.addCleanup(e.stop)
        ejabberd.give(self.out)
        for name in sorted(os.listdir(self.out)):
            m = e.ctl("import_piefxis", os.path.join(self.out, name))
            self.assertEqual(m.returncode, 0, m.stdout + m.stderr + e.log())
        st, roster = e.api("get_roster", {"user": "alice", "host": HOST})
        self.assertEqual(st, 200, roster)
        bob = [i for i in roster if i["jid"] == "bob@" + HOST]
        self.assertEqual([(i["subscription"], i["nick"], i["group"]) for i in bob],
                         [("both", "Bobby", "Friends")])

        async def on_ejabberd(user, password):
            c = xep227.PeerClient("%s@%s" % (user, HOST), password)
            c.connect(("127.0.0.1", e.c2s))
            try:
                return await asyncio.wait_for(c.started, 10)
            except asyncio.TimeoutError:
                return False
            finally:
                c.disconnect()
        # the keys work there: her password logs in (by SCRAM-SHA-1 or SCRAM-SHA-256), a wrong
        # one does not
        self.assertTrue(xmpp.run(on_ejabberd("alice", PW["alice"])), e.log())

        async def note_on_ejabberd():
            c = xep227.PeerClient("alice@" + HOST, PW["alice"])
            c.connect(("127.0.0.1", e.c2s))
            self.assertTrue(await asyncio.wait_for(c.started, 10), e.log()[-3000:])
            try:
                return await prosody.private_note(c)
            finally:
                c.disconnect()
        # her private XML, read from ejabberd's mod_private
        self.assertEqual(xmpp.run(note_on_ejabberd()), prosody.NOTE)
        self.assertFalse(xmpp.run(on_ejabberd("bob", "not-bobs")))
        # keys in base64 once: ejabberd 23.01 takes the file, and the password no longer works
        self.assertFalse(xmpp.run(on_ejabberd("erin", "erin-here")))


if __name__ == "__main__":
    unittest.main()
