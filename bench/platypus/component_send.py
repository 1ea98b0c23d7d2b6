"""component_send.py - the XEP-0114 side of the platypus component benchmark.

    component_send.py --port P --secret S --domain D --count N [--inflight W] [--rate R]

Plays the XMPP server: listens on 127.0.0.1:P, waits for platypus (configured as an external
component with that port, domain and secret) to connect, checks its handshake, then sends N
XEP-0357 publish IQs (Conversations-style summary, MongooseIM publish-options) keeping W of
them unanswered at most (and, with --rate, no faster than R per second), and reads the
replies. Prints one JSON line at the end: count, ok
(replies of type result), seconds, rate, p50_ms and p99_ms (IQ sent to reply read).

The replies are matched by their id with a regular expression, not an XML parser: the sender
must stay cheaper than what it measures."""

import argparse
import hashlib
import json
import re
import selectors
import socket
import sys
import time

IQ = ("<iq type='set' id='%d' from='user%d@example.com' to='{domain}'>"
      "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='node%d'><item>"
      "<notification xmlns='urn:xmpp:push:0'><x xmlns='jabber:x:data' type='submit'>"
      "<field var='FORM_TYPE'><value>urn:xmpp:push:summary</value></field>"
      "<field var='message-count'><value>1</value></field>"
      "<field var='last-message-sender'><value>juliet@example.com</value></field>"
      "<field var='last-message-body'><value>A benchmark notification</value></field>"
      "</x></notification></item></publish><publish-options>"
      "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>"
      "http://jabber.org/protocol/pubsub#publish-options</value></field>"
      "<field var='device_id'><value>{token}</value></field>"
      "<field var='service'><value>apns</value></field>"
      "<field var='topic'><value>{topic}</value></field>"
      "</x></publish-options></pubsub></iq>")
REPLY = re.compile(rb"<iq\b([^>]*)>")
ATTR_ID = re.compile(rb"\bid=['\"](\d+)['\"]")
ATTR_TYPE = re.compile(rb"\btype=['\"](\w+)['\"]")


def read_until(sock, buf, needle, deadline):
    while needle not in buf:
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        data = sock.recv(65536)
        if not data:
            raise SystemExit("component_send: platypus closed the stream")
        buf += data
    head, _, rest = buf.partition(needle)
    return head + needle, rest


def handshake(sock, secret, domain, timeout):
    deadline = time.monotonic() + timeout
    buf = b""
    header = b""
    while b"stream:stream" not in header:
        header, buf = read_until(sock, buf, b">", deadline)
    sid = "bench%d" % int(time.time())
    sock.sendall(("<?xml version='1.0'?><stream:stream xmlns:stream="
                  "'http://etherx.jabber.org/streams' xmlns='jabber:component:accept' "
                  "from='%s' id='%s'>" % (domain, sid)).encode())
    got, buf = read_until(sock, buf, b"</handshake>", deadline)
    want = hashlib.sha1((sid + secret).encode()).hexdigest()
    if want.encode() not in got:
        raise SystemExit("component_send: wrong handshake %r" % got)
    sock.sendall(b"<handshake/>")
    return buf


def percentile(sorted_values, q):
    if not sorted_values:
        return None
    i = min(len(sorted_values) - 1, int(round(q * (len(sorted_values) - 1))))
    return round(sorted_values[i] * 1000, 2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--secret", required=True)
    ap.add_argument("--domain", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--inflight", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=100, help="IQs per socket write")
    ap.add_argument("--token", default="ab" * 32)
    ap.add_argument("--topic", default="com.example.app")
    ap.add_argument("--rate", type=float, default=0, help="IQs per second; 0: as fast as allowed")
    ap.add_argument("--timeout", type=float, default=30.0)
    a = ap.parse_args()

    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", a.port))
    listener.listen(1)
    listener.settimeout(a.timeout)
    sock, _ = listener.accept()
    listener.close()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = handshake(sock, a.secret, a.domain, a.timeout)

    template = IQ.format(domain=a.domain, token=a.token, topic=a.topic)
    sent_at = [0.0] * a.count
    lat = []
    sent = answered = ok = 0
    out = b""
    sock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
    start = time.monotonic()
    deadline = start + a.timeout + a.count / 1000.0
    while answered < a.count:
        now = time.monotonic()
        if now > deadline:
            break
        while not out and sent < a.count and sent - answered < a.inflight:
            n = min(a.batch, a.count - sent, a.inflight - (sent - answered))
            if a.rate:
                n = min(n, int((now - start) * a.rate) - sent)
                if n <= 0:
                    break
            out = "".join(template % (i, i, i) for i in range(sent, sent + n)).encode()
            for i in range(sent, sent + n):
                sent_at[i] = now
            sent += n
        sel.modify(sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if out else 0))
        for _, ev in sel.select(0.001 if a.rate else 1.0):
            if ev & selectors.EVENT_WRITE and out:
                try:
                    out = out[sock.send(out):]
                except BlockingIOError:
                    pass
            if ev & selectors.EVENT_READ:
                try:
                    data = sock.recv(262144)
                except BlockingIOError:
                    continue
                if not data:
                    raise SystemExit("component_send: platypus closed the stream")
                buf += data
                t = time.monotonic()
                end = 0
                for m in REPLY.finditer(buf):
                    attrs = m.group(1)
                    mid, mtype = ATTR_ID.search(attrs), ATTR_TYPE.search(attrs)
                    end = m.end()
                    if not mid:
                        continue
                    i = int(mid.group(1))
                    if 0 <= i < a.count:
                        answered += 1
                        lat.append(t - sent_at[i])
                        if mtype and mtype.group(1) == b"result":
                            ok += 1
                # keep only a tag cut off at the end of what arrived
                rest = buf[end:]
                lt = rest.rfind(b"<")
                buf = rest[lt:] if lt >= 0 and b">" not in rest[lt:] else b""
    seconds = time.monotonic() - start
    sock.close()
    lat.sort()
    print(json.dumps({"count": a.count, "ok": ok, "answered": answered,
                      "seconds": round(seconds, 3),
                      "rate": round(ok / seconds, 1) if seconds > 0 else None,
                      "p50_ms": percentile(lat, 0.5), "p99_ms": percentile(lat, 0.99)}))
    return 0 if ok == a.count else 1


if __name__ == "__main__":
    sys.exit(main())
