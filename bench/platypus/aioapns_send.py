"""aioapns_send.py - the python3-aioapns client (Debian's package) sending notifications
straight to a mock APNs, as an application would use it: APNs(key=...).send_notification()
with at most --inflight notifications awaiting their answer.

aioapns has no host/port option: the production protocol class's APNS_SERVER/APNS_PORT class
attributes are overridden, and it gets an SSL context that trusts the test CA and offers ALPN h2
(it offers none by itself). Prints one JSON line: count, ok, seconds, rate, p50_ms, p99_ms
(per-notification time from send_notification() to its result), cpu_s, maxrss_kb."""

import argparse
import asyncio
import json
import resource
import ssl
import sys
import time

from aioapns import APNs, NotificationRequest, PushType
from aioapns.connection import APNsProductionClientProtocol

ALERT = {"aps": {"alert": {"title": "Hello", "body": "A benchmark notification"},
                 "sound": "default"}}


async def run(a):
    APNsProductionClientProtocol.APNS_SERVER = a.host
    APNsProductionClientProtocol.APNS_PORT = a.port
    ctx = ssl.create_default_context(cafile=a.ca)
    ctx.set_alpn_protocols(["h2"])
    client = APNs(key=a.key, key_id=a.key_id, team_id=a.team_id, topic=a.topic,
                  max_connections=a.connections, use_sandbox=False, ssl_context=ctx)
    token = "ab" * 32
    lat = []
    ok = 0
    sem = asyncio.Semaphore(a.inflight)

    async def one():
        nonlocal ok
        t0 = time.perf_counter()
        try:
            r = await client.send_notification(NotificationRequest(
                device_token=token, message=ALERT, push_type=PushType.ALERT))
            ok += r.is_successful
        finally:
            lat.append(time.perf_counter() - t0)
            sem.release()

    # warm-up: the connection, the token, the raised stream limit
    await asyncio.gather(*[one() for _ in range(1) if await sem.acquire()])
    ok, lat = 0, []
    tasks = set()
    start = time.perf_counter()
    for _ in range(a.count):
        await sem.acquire()
        t = asyncio.ensure_future(one())
        tasks.add(t)
        t.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)
    secs = time.perf_counter() - start
    client.pool.close()
    return ok, secs, lat


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--count", type=int, default=20000)
    p.add_argument("--inflight", type=int, default=1000)
    p.add_argument("--connections", type=int, default=1)
    p.add_argument("--ca", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--key-id", default="ABC123DEFG")
    p.add_argument("--team-id", default="DEF123GHIJ")
    p.add_argument("--topic", default="com.example.app")
    a = p.parse_args()
    ok, secs, lat = asyncio.run(run(a))
    lat.sort()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    pct = lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 2) if lat else None
    print(json.dumps({"client": "aioapns", "count": a.count, "ok": ok, "seconds": round(secs, 3),
                      "rate": round(ok / secs, 1), "p50_ms": pct(0.50), "p99_ms": pct(0.99),
                      "cpu_s": round(ru.ru_utime + ru.ru_stime, 2), "maxrss_kb": ru.ru_maxrss}))
    return 0 if ok == a.count else 1


if __name__ == "__main__":
    sys.exit(main())
