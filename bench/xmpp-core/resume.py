"""resume.py - how long it takes to bring back RESUME_SESSIONS hibernated sessions (XEP-0198),
as after a network outage that cut every phone off at once: the sessions log in (STARTTLS,
SCRAM-SHA-1), enable resumable stream management, lose their connections without closing their
streams, and each comes back on a new connection (STARTTLS, SCRAM-SHA-1, <resume/>), at most
RESUME_CONC at once. Measures the wall time, resumptions per second, p50/p99 of one resumption
and the server's CPU per resumption, next to a full login of the same sessions on the same
server (the cost a client without resumption pays, plus the roster and presence it then
fetches again). xmpp-core, and Prosody with mod_smacks when it is installed, in the same run.
Prints one JSON line per server on stdout.

Knobs: RESUME_SESSIONS=10000 RESUME_CONC=100 RESUME_SERVERS=xmpp-core,prosody.
Uses bench.py's server set-up (build/bin/xmpp-core, build/bench/xmpp-load).
Run with /usr/bin/python3."""

import json
import os
import resource
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B  # noqa: E402

SESSIONS = int(os.environ.get("RESUME_SESSIONS", "10000"))
CONC = int(os.environ.get("RESUME_CONC", "100"))
SERVERS = os.environ.get("RESUME_SERVERS", "xmpp-core,prosody").split(",")


class ProsodySmacks(B.Prosody):
    """The benchmark's Prosody with stream management (mod_smacks, in Prosody 0.12) on."""

    def setup(self):
        super().setup()
        with open(self.cfg) as f:
            text = f.read()
        text = text.replace('"offline", "admin_shell" }', '"offline", "admin_shell", "smacks" }')
        text += "\nsmacks_hibernation_time = 600\nsmacks_max_hibernated_sessions = %d\n" % (
            2 * SESSIONS)
        with open(self.cfg, "w") as f:
            f.write(text)


def measure(s, workdir):
    load = B.Load(s, workdir)
    out = {"server": s.name, "sessions": SESSIONS, "concurrency": CONC}
    try:
        r, cpu = load.run("online 1 %d starttls scram %d" % (SESSIONS, CONC), timeout=1800)
        out.update(login_s=r["seconds"], login_per_s=r["per_s"], login_p99_ms=r["p99_ms"],
                   login_cpu_ms=cpu * 1000 / max(r["ok"], 1), login_failed=r["failed"])
        r, _ = load.run("sm")
        out["sm_enabled"] = r["ok"]
        r, _ = load.run("drop")
        B.quiesce(s)
        B.settle(2)
        rss = s.rss_kib()
        r, cpu = load.run("resume starttls scram %d" % CONC, timeout=1800)
        out.update(resume_s=r["seconds"], resume_per_s=r["per_s"], resume_p50_ms=r["p50_ms"],
                   resume_p99_ms=r["p99_ms"], resume_cpu_ms=cpu * 1000 / max(r["ok"], 1),
                   resumed=r["ok"], resume_failed=r["failed"], last_error=r["last_error"],
                   rss_hibernated_mib=rss / 1024.0 if rss else None)
        load.run("close")
    finally:
        load.close()
    return out


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < SESSIONS + 500:
        print("RESUME_SESSIONS=%d needs more open files than the limit %d" % (SESSIONS, hard),
              file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="xmpp-core-resume-") as workdir:
        os.chmod(workdir, 0o755)
        cert, key = B.make_cert(workdir)
        for name in SERVERS:
            if name == "prosody" and not shutil.which("prosody"):
                print(json.dumps({"server": name, "note": "not installed"}))
                continue
            cls = ProsodySmacks if name == "prosody" else B.XmppCore
            s = cls(workdir, cert, key)
            t0 = time.monotonic()
            s.start()
            try:
                failed = s.register(1, SESSIONS)
            finally:
                s.stop()
            B.log("%s: %d accounts in %.0f s (%d failed)" % (name, SESSIONS,
                                                             time.monotonic() - t0, failed))
            s.start()
            try:
                print(json.dumps(measure(s, workdir)), flush=True)
            finally:
                s.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
