"""Backups while the server runs: `xmppctl backup` has xmpp-core copy its database, as it was at
one moment, while accounts keep being made and messages kept; the copy is a sound SQLite
database, and a server started on it (the restore: the copy put where the database was) has
what was there when it was made. Names are checked, none is overwritten, one runs at a time,
and the metrics say when the last one was written."""

import asyncio
import os
import re
import shutil
import sqlite3
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import suite  # noqa: E402
import xmpp  # noqa: E402

XMPPCTL = os.path.join(suite.BIN, "xmppctl")


def xmppctl(srv, *args):
    return suite.run([XMPPCTL, "-u", "http://127.0.0.1:%d" % srv.admin, "-t", srv.token_file]
                     + list(args), timeout=120)


class Registrar(threading.Thread):
    """Makes accounts through the admin API until told to stop: writes going on beside the
    backup. Remembers which were answered 201, in order."""

    def __init__(self, srv):
        super().__init__(daemon=True)
        self.srv, self.made, self.stop, self.error = srv, [], False, None

    def run(self):
        try:
            while not self.stop:
                jid = "w%d@localhost" % len(self.made)
                st, body = self.srv.api("POST", "accounts", {"jid": jid, "password": "pw"})
                if st != 201:
                    raise AssertionError("%s: %s %r" % (jid, st, body))
                self.made.append(jid)
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e


def accounts(srv):
    st, body = srv.api("GET", "accounts?host=localhost")
    assert st == 200, (st, body)
    return set(body["accounts"])


class BackupTest(xmpp.ServerCase):

    def test_backup_while_writing_and_restore(self):
        """A backup taken while accounts are being made holds each account made before it
        began and none made after it answered; a server started on it is the server then:
        logins, rosters and the message kept offline are there."""
        alice = self.srv.register("alice", "pw-alice")
        bob = self.srv.register("bob", "pw-bob")

        async def before():
            a = await xmpp.login(self.srv, alice, "pw-alice")
            await a.update_roster(bob, name="Bob B", groups=["Friends"])
            a.send_message(mto=bob, mbody="kept for bob", mtype="chat")
            await asyncio.sleep(0.3)
            await xmpp.logout(a)
        xmpp.run(before())
        # enough rows that the copy takes a moment: an archive of messages
        w = Registrar(self.srv)
        w.start()
        deadline = time.monotonic() + 10
        while len(w.made) < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        made_before = set(w.made)
        r = xmppctl(self.srv, "backup", "nightly")
        made_after = set(w.made)
        w.stop = True
        w.join(30)
        self.assertIsNone(w.error)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        m = re.fullmatch(r"backup written: (\S+) \((\d+) bytes in (\d+) ms\)\n", r.stdout)
        self.assertIsNotNone(m, r.stdout)
        path = m.group(1)
        self.assertEqual(path, os.path.join(self.tmp, "backups", "nightly.db"))
        self.assertEqual(os.path.getsize(path), int(m.group(2)))
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        self.assertEqual(os.stat(os.path.dirname(path)).st_mode & 0o777, 0o700)
        self.assertFalse(os.path.exists(path + ".part"))
        self.assertIn("backup written: %s" % path, self.srv.output())
        self.assertEqual(self.srv.metric("xmpp_backups_total", {"result": "ok"}), 1)
        self.assertGreater(self.srv.metric("xmpp_backup_last_success_timestamp_seconds"),
                           time.time() - 120)
        # a sound database, one moment's: what was made before the backup began, nothing made
        # after it answered
        with sqlite3.connect("file:%s?mode=ro" % path, uri=True) as db:
            self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0], "ok")
        # the restore: the server stopped, the copy put where its database was
        self.assertEqual(self.srv.stop(), 0, self.srv.output())
        later = accounts_of_file(os.path.join(self.tmp, "xmpp-core.db"))
        self.assertTrue(made_after <= later)
        for suffix in ("", "-wal", "-shm"):
            p = os.path.join(self.tmp, "xmpp-core.db" + suffix)
            if os.path.exists(p):
                os.unlink(p)
        shutil.copy(path, os.path.join(self.tmp, "xmpp-core.db"))
        self.srv.restart()
        have = accounts(self.srv)
        self.assertTrue({alice, bob} | made_before <= have, sorted(made_before - have))
        # nothing made after the answer; the registrar has one request out at a time, which the
        # copy may hold before its answer reached the registrar
        in_flight = {"w%d@localhost" % len(made_after)}
        self.assertTrue(have - ({alice, bob} | made_after) <= in_flight,
                        sorted(have - ({alice, bob} | made_after)))

        async def after():
            b = await xmpp.login(self.srv, bob, "pw-bob")
            m = await b.next_message()
            self.assertEqual(m["body"], "kept for bob")
            a = await xmpp.login(self.srv, alice, "pw-alice")
            self.assertEqual(a.client_roster[bob]["name"], "Bob B")
            await xmpp.logout(a, b)
        xmpp.run(after())

    def test_names_and_refusals(self):
        # a name with the time when none is given
        r = xmppctl(self.srv, "backup")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"backups/xmpp-core-\d{8}T\d{6}Z\.db ")
        # never overwritten
        self.assertEqual(xmppctl(self.srv, "backup", "one.db").returncode, 0)
        r = xmppctl(self.srv, "backup", "one")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("exists already", r.stderr)
        # names that could leave the directory, or hide in it
        for bad in ("../escape", "a/b", ".hidden", "x" * 65, "sp ace", ""):
            st, body = self.srv.api("POST", "backup", {"name": bad})
            self.assertEqual(st, 400, (bad, body))
            self.assertIn("a backup's name is 1 to 64", body["error"])
        for body in ({"name": 1}, {"nam": "x"}, [1]):
            st, ans = self.srv.api("POST", "backup", body)
            self.assertEqual(st, 400, (body, ans))
        st, _ = self.srv.api("GET", "backup")
        self.assertEqual(st, 405)
        st, _ = self.srv.api("POST", "backup", {"name": "x"}, token="wrong")
        self.assertEqual(st, 401)
        names = sorted(os.listdir(os.path.join(self.tmp, "backups")))
        self.assertEqual(len(names), 2, names)  # nothing made of the refusals, no .part left
        self.assertEqual(names[0], "one.db")
        self.assertEqual(self.srv.metric("xmpp_backups_total", {"result": "ok"}), 2)
        # one at a time: of two asked at once, one is refused or both succeed one after the other
        results = []

        def ask(n):
            results.append(self.srv.api("POST", "backup", {"name": "par%d" % n})[0])
        ts = [threading.Thread(target=ask, args=(n,)) for n in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        self.assertIn(201, results)
        self.assertTrue(set(results) <= {201, 409}, results)


class BackupDirTest(xmpp.ServerCase):

    def test_a_directory_that_cannot_be_made(self):
        self.assertEqual(self.srv.stop(), 0, self.srv.output())
        self.srv.text = self.srv.text.replace(
            "storage:\n", "storage:\n  backup_dir: /proc/no-such-place\n", 1)
        self.srv.restart()
        r = xmppctl(self.srv, "backup")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("cannot make the directory of backups /proc/no-such-place", r.stderr)


def accounts_of_file(path):
    with sqlite3.connect("file:%s?mode=ro" % path, uri=True) as db:
        return {"%s@%s" % row for row in db.execute("SELECT user, host FROM accounts")}


if __name__ == "__main__":
    unittest.main()
