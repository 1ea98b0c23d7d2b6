"""call_peer_timed.py - one side of CALLS calls in a row, timed, for bench/push/call_setup.py.

The phone of tests/integration/peers/call_peer.py (slixmpp + aioice, the same stanzas), logged
in once; each call is set up the way an app does it once the user taps "call":
  caller: JMI propose; while it waits for proceed, XEP-0215 credentials and ICE gathering (host,
          STUN at icicle, a TURN allocation at icicle); on proceed, Jingle session-initiate with
          its candidates; on session-accept, ICE connectivity checks; then the first datagram
  callee: on propose, XEP-0215 credentials and ICE gathering, then proceed; on
          session-initiate, session-accept with its candidates; ICE checks; it stamps the
          first datagram's arrival (the call's media has started) and answers each datagram
Every time is the wall clock (both phones run on the same machine, in two namespaces). aioice's
STUN binding and TURN allocation are timed by wrapping the two functions it calls for them.
Prints one JSON line per call on stdout (the callee prints READY first).

Run with /usr/bin/python3:
  call_peer_timed.py caller|callee SERVER_IP PORT CAFILE JID PASSWORD PEER_BARE_JID CALLS"""

import asyncio
import json
import os
import sys
import time
import xml.etree.ElementTree as ET

import aioice
import aioice.ice
import aioice.turn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests",
                                "integration", "peers"))
import call_peer as P  # noqa: E402

ROUNDS = 3  # datagrams each way per call, after the first
PAUSE = 0.5  # seconds between calls (the caller's)

timed = {}  # the current call's aioice timings, ms


def wrap(name, fn):
    async def timed_fn(*args, **kwargs):
        t0 = time.monotonic()
        try:
            return await fn(*args, **kwargs)
        finally:
            timed[name] = timed.get(name, 0) + (time.monotonic() - t0) * 1000
    return timed_fn


aioice.turn.create_turn_endpoint = wrap("turn_alloc_ms", aioice.turn.create_turn_endpoint)
aioice.ice.server_reflexive_candidate = wrap("stun_ms", aioice.ice.server_reflexive_candidate)


class Phone(P.Phone):
    """call_peer's phone that notes when each JMI message and Jingle IQ arrived."""

    def __init__(self, *args):
        super().__init__(*args)
        self.arrived = {}

    def _message(self, m):
        for el in m.xml:
            if el.tag.startswith("{%s}" % P.JMI):
                self.arrived.setdefault((el.tag.split("}")[1], el.get("id")), time.time())
        super()._message(m)

    def _jingle(self, iq):
        j = iq.xml.find("{%s}jingle" % P.JINGLE)
        if iq["type"] == "set" and j is not None:
            self.arrived.setdefault((j.get("action"), j.get("sid")), time.time())
        super()._jingle(iq)


async def prepare(phone):
    """XEP-0215 credentials, then an ICE agent with its candidates gathered."""
    out = {}
    t0 = time.time()
    services = await phone.services()
    t1 = time.time()
    out["extdisco_ms"] = (t1 - t0) * 1000
    turn = [s for s in services if s["type"] == "turn" and s["transport"] == "udp"][0]
    stun = [s for s in services if s["type"] == "stun"][0]
    conn = aioice.Connection(ice_controlling=phone.role == "caller",
                             stun_server=(stun["host"], int(stun["port"])),
                             turn_server=(turn["host"], int(turn["port"])),
                             turn_username=turn["username"], turn_password=turn["password"],
                             use_ipv6=False)
    timed.clear()
    await conn.gather_candidates()
    t2 = time.time()
    out.update(gather_ms=(t2 - t1) * 1000, turn_alloc_ms=timed.get("turn_alloc_ms"),
               stun_ms=timed.get("stun_ms"), prepared_at=t2)
    return conn, out


async def caller_call(phone, peer):
    r = {}
    r["propose_at"] = time.time()
    phone.send_jmi(peer, "propose", media=True)
    conn, prep = await prepare(phone)
    r.update(prep)
    _, _, callee = await phone.next_jmi("proceed")
    r["proceed_at"] = phone.arrived[("proceed", P.SID)]
    r["initiate_at"] = time.time()
    await phone.jingle_set(callee, "session-initiate", P.content(conn))
    x = await phone.next_jingle("session-accept")
    r["accept_at"] = phone.arrived[("session-accept", P.SID)]
    await P.use_remote(conn, x)
    r["checks_start_at"] = time.time()
    await asyncio.wait_for(conn.connect(), P.TIMEOUT)
    r["checks_end_at"] = time.time()
    pair = conn._nominated[1]  # aioice keeps the selected pair per component here
    r["selected"] = {"local": P.describe(pair.local_candidate),
                     "remote": P.describe(pair.remote_candidate)}
    r["first_sent_at"] = time.time()
    for i in range(ROUNDS + 1):
        msg = b"media-%d" % i
        await conn.send(msg)
        data = await asyncio.wait_for(conn.recv(), P.TIMEOUT)
        if data != b"reply:" + msg:
            raise SystemExit("unexpected datagram %r" % data)
        if i == 0:
            r["first_reply_at"] = time.time()
    reason = ET.Element("{%s}reason" % P.JINGLE)
    ET.SubElement(reason, "{%s}success" % P.JINGLE)
    await phone.jingle_set(callee, "session-terminate", reason)
    phone.send_jmi(callee, "finish")
    await conn.close()
    return r


async def callee_call(phone):
    r = {}
    _, _, caller = await phone.next_jmi("propose")
    r["propose_at"] = phone.arrived[("propose", P.SID)]
    conn, prep = await prepare(phone)
    r.update(prep)
    phone.send_jmi(caller, "ringing")
    r["proceed_sent_at"] = time.time()
    phone.send_jmi(caller, "proceed")
    x = await phone.next_jingle("session-initiate")
    r["initiate_at"] = phone.arrived[("session-initiate", P.SID)]
    await P.use_remote(conn, x)
    r["accept_sent_at"] = time.time()
    await phone.jingle_set(caller, "session-accept", P.content(conn), initiator=caller)
    r["checks_start_at"] = time.time()
    await asyncio.wait_for(conn.connect(), P.TIMEOUT)
    r["checks_end_at"] = time.time()
    for i in range(ROUNDS + 1):
        data = await asyncio.wait_for(conn.recv(), P.TIMEOUT)
        if i == 0:
            r["first_media_at"] = time.time()
        await conn.send(b"reply:" + data)
    await phone.next_jingle("session-terminate")
    await phone.next_jmi("finish")
    await conn.close()
    return r


async def main(role, server, port, cafile, jid, password, peer, calls):
    phone = Phone(jid + "/" + role, password, cafile)
    phone.role = role
    phone.connect((server, port))
    if not await asyncio.wait_for(phone.started, P.TIMEOUT):
        raise SystemExit("%s could not log in" % jid)
    if role == "callee":
        print("READY", flush=True)
    for k in range(calls):
        P.SID = "bench-call-%d" % k  # call_peer's functions read the module's SID
        if role == "caller":
            r = await caller_call(phone, peer)
            await asyncio.sleep(PAUSE)
        else:
            r = await callee_call(phone)
        r.update(role=role, call=k)
        print(json.dumps(r), flush=True)
    phone.disconnect()


if __name__ == "__main__":
    a = sys.argv[1:9]
    asyncio.run(main(a[0], a[1], int(a[2]), a[3], a[4], a[5], a[6], int(a[7])))
