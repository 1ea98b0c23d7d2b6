// node_apn_send.js - the npm @parse/node-apn client sending notifications straight to a mock
// APNs, as an application would use it: new apn.Provider({token}) and provider.send(), with at
// most --inflight sends awaiting their answer (node-apn's HTTP/2 session breaks down when too
// many are in flight; 50-200 is what works). The mock's address goes in `address` as host:port
// (node-apn connects to https://<address>), the test CA in `ca`.
// Prints one JSON line: count, ok, seconds, rate, p50_ms, p99_ms (per-notification time from
// send() to its result), cpu_s, maxrss_kb.
'use strict';
const fs = require('fs');
const path = require('path');
const apn = require(path.join(__dirname, 'node_modules', '@parse', 'node-apn'));

function args() {
  const a = { host: '127.0.0.1', count: 20000, inflight: 100, keyId: 'ABC123DEFG',
              teamId: 'DEF123GHIJ', topic: 'com.example.app' };
  const v = process.argv.slice(2);
  for (let i = 0; i < v.length; i += 2) {
    const k = v[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    a[k] = /^(port|count|inflight)$/.test(k) ? Number(v[i + 1]) : v[i + 1];
  }
  return a;
}

async function main() {
  const a = args();
  const provider = new apn.Provider({
    token: { key: fs.readFileSync(a.key), keyId: a.keyId, teamId: a.teamId },
    address: `${a.host}:${a.port}`,
    port: a.port,
    ca: fs.readFileSync(a.ca),
    production: true,
  });
  const token = 'ab'.repeat(32);
  const note = () => {
    const n = new apn.Notification();
    n.topic = a.topic;
    n.pushType = 'alert';
    n.alert = { title: 'Hello', body: 'A benchmark notification' };
    n.sound = 'default';
    return n;
  };
  // warm-up: connection, token, the raised stream limit
  await provider.send(note(), token);
  const lat = [];
  let ok = 0, failed = 0, started = 0, firstError = null;
  const t0 = process.hrtime.bigint();
  await new Promise(resolve => {
    let inflight = 0;
    const pump = () => {
      while (inflight < a.inflight && started < a.count) {
        started++;
        inflight++;
        const s = process.hrtime.bigint();
        provider.send(note(), token).then(r => {
          lat.push(Number(process.hrtime.bigint() - s) / 1e6);
          ok += r.sent.length;
          failed += r.failed.length;
          if (r.failed.length && !firstError) firstError = r.failed[0];
          inflight--;
          if (ok + failed >= a.count) resolve();
          else pump();
        });
      }
    };
    pump();
  });
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  provider.shutdown();
  lat.sort((x, y) => x - y);
  const pct = q => Math.round(lat[Math.min(lat.length - 1, Math.floor(q * lat.length))] * 100) / 100;
  const cpu = process.cpuUsage();
  if (firstError) console.error('first failure:', JSON.stringify(firstError));
  console.log(JSON.stringify({
    client: 'node-apn', count: a.count, ok, seconds: Math.round(secs * 1000) / 1000,
    rate: Math.round((ok / secs) * 10) / 10, p50_ms: pct(0.5), p99_ms: pct(0.99),
    cpu_s: Math.round((cpu.user + cpu.system) / 1e4) / 100,
    maxrss_kb: process.resourceUsage().maxRSS,
  }));
  process.exit(ok === a.count ? 0 : 1);
}

main().catch(e => { console.error(e); process.exit(2); });
