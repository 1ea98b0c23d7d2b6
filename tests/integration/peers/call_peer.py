"""call_peer.py - one side of a call, as a phone would place or take it, for test_call_nat.py.

It logs in to xmpp-core (slixmpp), asks for STUN/TURN services and credentials (XEP-0215, as
XML), gathers ICE candidates with aioice using the TURN server it was given, and then:
  caller: JMI propose to the callee's bare JID, waits for proceed, Jingle session-initiate with
          its candidates, waits for session-accept, connects ICE, sends datagrams and expects
          each answered, session-terminate, JMI finish;
  callee: prints READY, waits for the propose, answers proceed, waits for session-initiate,
          answers session-accept with its candidates, connects ICE, answers every datagram,
          waits for session-terminate.
The last line it prints is a JSON summary (candidates, the selected pair, datagrams).

Run with /usr/bin/python3 (Debian's slixmpp and aioice):
  call_peer.py caller|callee SERVER_IP PORT CAFILE JID PASSWORD PEER_BARE_JID"""

import asyncio
import json
import logging
import ssl
import sys
import xml.etree.ElementTree as ET

import aioice
import slixmpp
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

logging.getLogger("slixmpp").setLevel(logging.CRITICAL)

EXTDISCO = "urn:xmpp:extdisco:2"
JMI = "urn:xmpp:jingle-message:0"
JINGLE = "urn:xmpp:jingle:1"
RTP = "urn:xmpp:jingle:apps:rtp:1"
ICE = "urn:xmpp:jingle:transports:ice-udp:1"
CLIENT = "jabber:client"
SID = "nat-call-1"
ROUNDS = 10
TIMEOUT = 60


def log(*args):
    print(*args, file=sys.stderr, flush=True)


class Phone(slixmpp.ClientXMPP):
    def __init__(self, jid, password, cafile):
        super().__init__(jid, password)
        self.ssl_context = ssl.create_default_context(cafile=cafile)
        self.started = asyncio.get_event_loop().create_future()
        self.jmi = asyncio.Queue()
        self.jingle = asyncio.Queue()
        self.add_event_handler("session_start", self._start)
        self.add_event_handler("failed_all_auth", self._failed)
        self.add_event_handler("connection_failed", self._failed)
        self.register_handler(Callback("jmi", MatchXPath("{%s}message" % CLIENT), self._message))
        self.register_handler(Callback("jingle", MatchXPath("{%s}iq/{%s}jingle"
                                                            % (CLIENT, JINGLE)), self._jingle))

    def _start(self, _):
        self.send_presence()
        if not self.started.done():
            self.started.set_result(True)

    def _failed(self, *_):
        if not self.started.done():
            self.started.set_result(False)

    def _message(self, m):
        for el in m.xml:
            if el.tag.startswith("{%s}" % JMI):
                self.jmi.put_nowait((el.tag.split("}")[1], el.get("id"), m["from"].full))

    def _jingle(self, iq):
        if iq["type"] == "set":
            self.jingle.put_nowait(iq.xml)
            iq.reply().send()

    async def next_jmi(self, name):
        while True:
            got = await asyncio.wait_for(self.jmi.get(), TIMEOUT)
            if got[0] == name and got[1] == SID:
                return got

    async def next_jingle(self, action):
        while True:
            x = await asyncio.wait_for(self.jingle.get(), TIMEOUT)
            j = x.find("{%s}jingle" % JINGLE)
            if j.get("action") == action and j.get("sid") == SID:
                return x

    def send_jmi(self, to, name, media=False):
        m = self.make_message(mto=to, mtype="chat")
        el = ET.Element("{%s}%s" % (JMI, name), {"id": SID})
        if media:
            ET.SubElement(el, "{%s}description" % RTP, {"media": "audio"})
        m.append(el)
        m.append(ET.Element("{urn:xmpp:hints}store"))
        m.send()

    async def services(self):
        iq = self.make_iq_get(ito=self.boundjid.domain)
        iq.append(ET.Element("{%s}services" % EXTDISCO))
        res = await iq.send(timeout=TIMEOUT)
        return [dict(s.attrib) for s in res.xml.find("{%s}services" % EXTDISCO)]

    async def jingle_set(self, to, action, inner=None, initiator=None):
        iq = self.make_iq_set(ito=to)
        j = ET.Element("{%s}jingle" % JINGLE, {"action": action, "sid": SID,
                                               "initiator": initiator or self.boundjid.full})
        if inner is not None:
            j.append(inner)
        iq.append(j)
        await iq.send(timeout=TIMEOUT)


def content(conn):
    """<content/> with an audio description and the ICE transport of conn's candidates."""
    c = ET.Element("{%s}content" % JINGLE, {"creator": "initiator", "name": "voice"})
    d = ET.SubElement(c, "{%s}description" % RTP, {"media": "audio"})
    ET.SubElement(d, "{%s}payload-type" % RTP, {"id": "111", "name": "opus",
                                                 "clockrate": "48000", "channels": "2"})
    t = ET.SubElement(c, "{%s}transport" % ICE, {"ufrag": conn.local_username,
                                                  "pwd": conn.local_password})
    for i, cand in enumerate(conn.local_candidates):
        a = {"component": str(cand.component), "foundation": cand.foundation,
             "generation": "0", "id": "c%d" % i, "ip": cand.host, "network": "0",
             "port": str(cand.port), "priority": str(cand.priority),
             "protocol": cand.transport.lower(), "type": cand.type}
        if cand.related_address:
            a["rel-addr"] = cand.related_address
            a["rel-port"] = str(cand.related_port)
        ET.SubElement(t, "{%s}candidate" % ICE, a)
    return c


async def use_remote(conn, x):
    """Take the remote ICE credentials and candidates from a Jingle IQ."""
    t = x.find(".//{%s}transport" % ICE)
    conn.remote_username = t.get("ufrag")
    conn.remote_password = t.get("pwd")
    n = 0
    for c in t.findall("{%s}candidate" % ICE):
        rel = c.get("rel-addr")
        await conn.add_remote_candidate(aioice.Candidate(
            component=int(c.get("component")), foundation=c.get("foundation"),
            host=c.get("ip"), port=int(c.get("port")), priority=int(c.get("priority")),
            transport=c.get("protocol"), type=c.get("type"), related_address=rel,
            related_port=int(c.get("rel-port")) if rel else None))
        n += 1
    await conn.add_remote_candidate(None)
    return n


def describe(cand):
    return {"type": cand.type, "ip": cand.host, "port": cand.port}


async def main(role, server, port, cafile, jid, password, peer):
    phone = Phone(jid + "/" + role, password, cafile)
    phone.connect((server, port))
    if not await asyncio.wait_for(phone.started, TIMEOUT):
        raise SystemExit("%s could not log in" % jid)
    services = await phone.services()
    turn = [s for s in services if s["type"] == "turn" and s["transport"] == "udp"][0]
    stun = [s for s in services if s["type"] == "stun"][0]
    conn = aioice.Connection(ice_controlling=(role == "caller"),
                             stun_server=(stun["host"], int(stun["port"])),
                             turn_server=(turn["host"], int(turn["port"])),
                             turn_username=turn["username"], turn_password=turn["password"],
                             use_ipv6=False)
    await conn.gather_candidates()
    local = [describe(c) for c in conn.local_candidates]
    log(role, "candidates", local)
    replies = 0
    if role == "callee":
        print("READY", flush=True)
        _, _, caller = await phone.next_jmi("propose")
        phone.send_jmi(caller, "ringing")
        phone.send_jmi(caller, "proceed")
        x = await phone.next_jingle("session-initiate")
        nremote = await use_remote(conn, x)
        await phone.jingle_set(caller, "session-accept", content(conn), initiator=caller)
        await asyncio.wait_for(conn.connect(), TIMEOUT)
        for _ in range(ROUNDS):
            data = await asyncio.wait_for(conn.recv(), TIMEOUT)
            await conn.send(b"reply:" + data)
            replies += 1
        await phone.next_jingle("session-terminate")
        await phone.next_jmi("finish")
    else:
        phone.send_jmi(peer, "propose", media=True)
        _, _, callee = await phone.next_jmi("proceed")
        await phone.jingle_set(callee, "session-initiate", content(conn))
        x = await phone.next_jingle("session-accept")
        nremote = await use_remote(conn, x)
        await asyncio.wait_for(conn.connect(), TIMEOUT)
        for i in range(ROUNDS):
            msg = b"media-%d" % i
            await conn.send(msg)
            data = await asyncio.wait_for(conn.recv(), TIMEOUT)
            if data != b"reply:" + msg:
                raise SystemExit("unexpected datagram %r" % data)
            replies += 1
        reason = ET.Element("{%s}reason" % JINGLE)
        ET.SubElement(reason, "{%s}success" % JINGLE)
        await phone.jingle_set(callee, "session-terminate", reason)
        phone.send_jmi(callee, "finish")
    pair = conn._nominated[1]  # aioice keeps the selected pair per component here
    summary = {"role": role, "local_candidates": local, "remote_candidates": nremote,
               "selected": {"local": describe(pair.local_candidate),
                            "remote": describe(pair.remote_candidate)},
               "datagrams": replies}
    await asyncio.sleep(0.5)
    await conn.close()
    phone.disconnect()
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    r, srv, p, ca, j, pw, peer = sys.argv[1:8]
    asyncio.run(main(r, srv, int(p), ca, j, pw, peer))
