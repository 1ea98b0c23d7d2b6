#!/usr/bin/python3
"""push-demo.py - see a push notification appear, on the suite `make run` started.

The first demo account (alice) logs in, enables push towards platypus (the component
push.localhost) with the publish-options a MongooseIM-style app sends, and logs out; the second
(bob) writes to her; xmpp-core pushes to platypus, whose development log provider writes the
notification it would have sent to Apple as one JSON line to push.log. The script prints the
stanzas that matter and that line.

    /usr/bin/python3 scripts/push-demo.py            # after `make run`, from another terminal

Options say where the suite is when it is not `make run`'s (tests use them). Exit status: 0 the
push appeared, 1 it did not, 2 the suite could not be used (no accounts, no login)."""

import argparse
import asyncio
import importlib.util
import logging
import os
import ssl
import sys
import time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
NS_PUSH = "urn:xmpp:push:0"
NODE = "push-demo"
DEVICE = "feedface" * 8  # an APNs device token (64 hex digits); the log provider sends nothing


def enable_stanza(app_server, device, topic):
    return ("<enable xmlns='%s' jid='%s' node='%s'>"
            "<x xmlns='jabber:x:data' type='submit'>"
            "<field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options"
            "</value></field>"
            "<field var='service'><value>apns</value></field>"
            "<field var='device_id'><value>%s</value></field>"
            "<field var='topic'><value>%s</value></field>"
            "</x></enable>") % (NS_PUSH, app_server, NODE, device, topic)


def parse_args():
    run = os.environ.get("SUITE_RUN_DIR") or os.path.join(TOP, "build", "run")
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run-dir", default=run,
                   help="make run's directory (default: $SUITE_RUN_DIR or build/run)")
    p.add_argument("--accounts", help="'JID password' lines, the first two are used "
                   "(default: RUN_DIR/credentials/demo-accounts)")
    p.add_argument("--cafile", help="the certificate xmpp-core presents, or its CA "
                   "(default: RUN_DIR/credentials/tls.crt)")
    p.add_argument("--system-ca", action="store_true",
                   help="verify xmpp-core's certificate with the system's CAs instead")
    p.add_argument("--push-log", help="the log provider's file "
                   "(default: RUN_DIR/state/push.log)")
    p.add_argument("--host", default="127.0.0.1", help="xmpp-core's address (127.0.0.1)")
    p.add_argument("--port", type=int, default=5222, help="its STARTTLS port (5222)")
    p.add_argument("--app-server", default="push.localhost",
                   help="platypus's component domain (push.localhost)")
    p.add_argument("--topic", default="com.example.app", help="the app's APNs topic")
    p.add_argument("--timeout", type=float, default=15, help="seconds to wait for the push")
    a = p.parse_args()
    a.accounts = a.accounts or os.path.join(a.run_dir, "credentials", "demo-accounts")
    a.cafile = a.cafile or os.path.join(a.run_dir, "credentials", "tls.crt")
    a.push_log = a.push_log or os.path.join(a.run_dir, "state", "push.log")
    return a


def fail(why):
    print("push-demo: " + why, file=sys.stderr)
    sys.exit(2)


def accounts(path):
    try:
        with open(path) as f:
            pairs = [line.split(None, 1) for line in f if line.strip()]
    except OSError as e:
        fail("cannot read the demo accounts: %s (is `make run` running?)" % e)
    if len(pairs) < 2 or any(len(p) != 2 for p in pairs[:2]):
        fail("%s: expected two 'JID password' lines" % path)
    return [(jid, pw.strip()) for jid, pw in pairs[:2]]


async def session(args, jid, password, work):
    """Log in as jid (STARTTLS, trusting cafile or the system's CAs), run work(client), log
    out."""
    import slixmpp
    c = slixmpp.ClientXMPP(jid, password)
    c.register_plugin("xep_0199")
    c.ssl_context = ssl.create_default_context(cafile=None if args.system_ca else args.cafile)
    loop = asyncio.get_running_loop()
    started, failed = loop.create_future(), loop.create_future()
    c.add_event_handler("session_start", lambda _: started.done() or started.set_result(1))
    for event in ("failed_all_auth", "connection_failed", "disconnected"):
        c.add_event_handler(event, lambda e, event=event: failed.done() or
                            failed.set_result(event))
    c.connect((args.host, args.port))
    done, _ = await asyncio.wait([started, failed], timeout=20,
                                 return_when=asyncio.FIRST_COMPLETED)
    if started not in done:
        print("push-demo: %s could not log in (%s)" % (
            jid, failed.result() if failed.done() else "no answer"), file=sys.stderr)
        c.abort()
        return False
    try:
        await work(c)
    finally:
        await c.disconnect()
    return True


def push_lines(path, offset):
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace").splitlines()
    except FileNotFoundError:
        return []


async def demo(args):
    from slixmpp.xmlstream import ET
    (user1, pw1), (user2, pw2) = accounts(args.accounts)
    enable = enable_stanza(args.app_server, DEVICE, args.topic)

    async def enable_push(c):
        c.send_presence()  # online, as an app is when it registers
        print("1. %s enables push to %s, sending:\n   <iq type='set'>%s</iq>"
              % (user1, args.app_server, enable))
        iq = c.make_iq_set()
        iq.append(ET.fromstring(enable))
        await iq.send(timeout=10)  # raises on an error answer
        print("   xmpp-core answered result; %s logs out (offline now)" % user1)

    async def write(c):
        body = "Hello from %s, %s" % (user2, time.strftime("%H:%M:%S"))
        print("2. %s writes to %s:\n   <message to='%s' type='chat'><body>%s</body></message>"
              % (user2, user1, user1, body))
        c.send_message(mto=user1, mbody=body, mtype="chat")
        await c.plugin["xep_0199"].ping(jid=user2.split("@")[1], timeout=10)  # it has left

    if not await session(args, user1, pw1, enable_push):
        return 2
    offset = os.path.getsize(args.push_log) if os.path.exists(args.push_log) else 0
    if not await session(args, user2, pw2, write):
        return 2
    print("3. xmpp-core stores the message offline and pushes to %s; platypus's log provider "
          "writes\n   what it would send to Apple to %s:" % (args.app_server, args.push_log))
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        lines = [ln for ln in push_lines(args.push_log, offset) if DEVICE in ln]
        if lines:
            for ln in lines:
                print("   " + ln)
            return 0
        await asyncio.sleep(0.1)
    print("push-demo: no notification for the demo device in %s within %g s"
          % (args.push_log, args.timeout), file=sys.stderr)
    return 1


def main():
    args = parse_args()
    logging.getLogger("slixmpp").setLevel(logging.CRITICAL)
    if importlib.util.find_spec("slixmpp") is None:
        fail("needs slixmpp (Debian: apt-get install python3-slixmpp)")
    return asyncio.run(demo(args))


if __name__ == "__main__":
    sys.exit(main())
