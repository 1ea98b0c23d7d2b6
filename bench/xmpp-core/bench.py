"""bench.py - xmpp-core against Prosody and ejabberd (Debian's packages) on this machine: the
same accounts, the same load from the same load generator (xmpp-load, built from xmpp-load.c
next to this file by run.sh), interleaved rounds. Each round starts every server afresh and
measures, for each in turn:

  memory   RSS added per idle authenticated session (bound, available presence, roster read),
           MEM_SESSIONS over plain TCP, then MEM_SESSIONS more over STARTTLS on top of them
  logins   logins/s over STARTTLS (full TLS 1.3 handshake each time) with SCRAM-SHA-1 and with
           PLAIN, LOGIN_CONC logins in flight for LOGIN_SECONDS each, shared by LOGIN_PROCS load
           generator processes; server CPU per login
  chat     CHAT_USERS sessions online over STARTTLS chat one-to-one (each message to a random
           other online user's bare JID) at a paced rate: first EQUAL_RATE messages/s (every
           server, the same load), then the rate is doubled from START_RATE while every message
           arrives with p99 <= CEIL_P99_MS, and bisected BISECT times: the highest such rate is
           the server's ceiling; last, half of that ceiling for the latency there. Server CPU
           (utime + stime of its processes, /proc/PID/stat) over each step divided by the
           messages delivered gives the CPU per routed message. Latency twice: from when a
           message was due (the load generator's delays included), and on the wire, from the
           clock read before the write that carries the message to the kernel's receive
           timestamp of the server's copy (and from the clock read before the batch of sends
           that holds it: the wire latency before 2026-12-07, logged beside it). Each step's
           log line also says how long the server's threads waited for a CPU while runnable,
           per message (/proc/PID/task/TID/schedstat): the machine's share of that latency

After the rounds, xmpp-core alone holds BIG_SESSIONS idle TLS sessions (as many as the file
descriptor limit allows) for the RSS at that size, and the extrapolation to 100,000.

The servers run as an unprivileged user when this runs as root (nobody; ejabberd as its own
user through ejabberdctl, which insists on it), on private loopback ports, with generated
configurations, data and logs in a temporary directory; every process is stopped at the end.

Knobs (environment):
  QUICK=1            a few minutes: 1 round, fewer sessions, shorter steps
  ROUNDS=3           rounds; the order of the servers rotates from round to round
  SERVERS=xmpp-core,prosody,ejabberd
  MEM_SESSIONS=2000  sessions per memory measurement (plain, then as many over TLS)
  BIG_SESSIONS=19000 idle TLS sessions for xmpp-core's large run (0: skip)
  CHAT_USERS=1000    sessions online during the chat steps
  STEP_SECONDS=3     seconds of sending per chat step
  DRAIN=10           at most this long for the last messages of a step to arrive
  EQUAL_RATE=1000    messages/s every server is measured at
  START_RATE=1000    first rate of the ceiling search
  MAX_RATE=256000    the search stops doubling here
  BISECT=3           bisection steps after the doubling
  CEIL_P99_MS=100    a step is kept up with when every message arrived and p99 <= this
  LOGIN_SECONDS=5    seconds per login-rate measurement
  LOGIN_CONC=50      logins in flight
  LOGIN_POOL=500     accounts the login-rate runs cycle through
  LOGIN_PROCS=2      load generator processes for the logins, each with its share of
                     LOGIN_CONC and of LOGIN_POOL (the client's half of a TLS handshake costs
                     about what the server's does: one process, one core, would cap the rate)
  SOURCES=8          client source addresses 127.0.0.1 .. 127.0.0.SOURCES
  WORKERS=0          xmpp-core's worker loops (0: its default, one per CPU)
  ARCHIVE=1          xmpp-core archives every message (XEP-0313; off by default here, since
                     the peers are measured without an archive)
  MEM_QUIET=7        seconds of quiet before each memory reading (xmpp-core's c2s.trim_after
                     is 5 s: a session quiet that long gives back its parser and buffers)
  BENCH_DOC=path     file to rewrite (default docs/benchmarks.md; "-" prints the section)
  KEEP=1             keep the work directory (configurations, logs, results.json)
  RENDER=results.json  rewrite the section from a kept run's results, measuring nothing

Run with /usr/bin/python3; only the standard library is used."""

import contextlib
import http.client
import json
import os
import pwd
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchlib import fmt, machine, median, write_section  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests",
                                "integration"))
from suite import free_port  # noqa: E402,F401  (never the same port twice; bench.free_port too)

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.abspath(os.path.join(HERE, "..", ".."))
BIN = os.environ.get("SUITE_BIN") or os.path.join(TOP, "build", "bin")
LOAD = os.environ.get("XMPP_LOAD") or os.path.join(TOP, "build", "bench", "xmpp-load")
QUICK = os.environ.get("QUICK") == "1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
BEGIN, END = "<!-- xmpp-core-bench:begin -->", "<!-- xmpp-core-bench:end -->"
DOMAIN = "localhost"


def env_num(name, default, quick=None):
    v = os.environ.get(name)
    if v is None:
        return quick if (QUICK and quick is not None) else default
    return type(default)(v)


ROUNDS = env_num("ROUNDS", 3, 1)
MEM_SESSIONS = env_num("MEM_SESSIONS", 2000, 500)
BIG_SESSIONS = env_num("BIG_SESSIONS", 19000, 4000)
CHAT_USERS = env_num("CHAT_USERS", 1000, 300)
STEP = env_num("STEP_SECONDS", 3.0, 2.0)
DRAIN = env_num("DRAIN", 10.0)
EQUAL_RATE = env_num("EQUAL_RATE", 1000)
START_RATE = env_num("START_RATE", 1000)
MAX_RATE = env_num("MAX_RATE", 256000)
BISECT = env_num("BISECT", 3, 2)
CEIL_P99_MS = env_num("CEIL_P99_MS", 100.0)
LOGIN_SECONDS = env_num("LOGIN_SECONDS", 5.0, 3.0)
LOGIN_CONC = env_num("LOGIN_CONC", 50)
LOGIN_POOL = env_num("LOGIN_POOL", 500, 200)
LOGIN_PROCS = max(1, env_num("LOGIN_PROCS", 2))
SOURCES = env_num("SOURCES", 8)
MEM_QUIET = env_num("MEM_QUIET", 7.0)
ARCHIVE = os.environ.get("ARCHIVE") == "1"
WORKERS = env_num("WORKERS", 0)
SERVERS = [s.strip() for s in os.environ.get("SERVERS", "xmpp-core,prosody,ejabberd").split(",")
           if s.strip()]
DOC = os.environ.get("BENCH_DOC") or os.path.join(TOP, "docs", "benchmarks.md")
KEEP = os.environ.get("KEEP") == "1"
# accounts: memory (plain + TLS) and the rest come from the same numbered users u1, u2...
PEER_ACCOUNTS = max(2 * MEM_SESSIONS, CHAT_USERS, LOGIN_POOL)
RUN_USER = "nobody"  # when root, the servers run as this user (ejabberd: as ejabberd)


def make_cert(workdir):
    """A throwaway self-signed ECDSA P-256 certificate for DOMAIN in workdir: (cert, key)."""
    cert, key = os.path.join(workdir, "cert.pem"), os.path.join(workdir, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "365", "-subj", "/CN=" + DOMAIN, "-addext",
                    "subjectAltName=DNS:" + DOMAIN], check=True, capture_output=True)
    os.chmod(key, 0o644)  # read by servers running as other users
    return cert, key


def log(msg):
    print("bench/xmpp-core: " + msg, flush=True)


def wait_port(port, proc, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


# --- processes ----------------------------------------------------------------------------------

def children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    return kids


def tree(pid):
    """pid and every process below it."""
    kids, out, todo = children_map(), [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def proc_times(pids):
    """(utime, stime) of processes (all their threads, the ended ones too), in seconds."""
    user = system = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            user, system = user + int(fields[11]), system + int(fields[12])
        except (OSError, IndexError):
            pass
    return user / CLK_TCK, system / CLK_TCK


def proc_cpu(pids):
    """utime + stime of processes (all threads), in seconds."""
    return sum(proc_times(pids))


def proc_runq_wait(pids):
    """Seconds the threads of processes spent runnable but waiting for a CPU
    (/proc/PID/task/TID/schedstat, second field), or None without schedstats."""
    total, seen = 0, False
    for pid in pids:
        try:
            tids = os.listdir("/proc/%d/task" % pid)
        except OSError:
            continue
        for tid in tids:
            try:
                with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                    total += int(f.read().split()[1])
                seen = True
            except (OSError, IndexError, ValueError):
                pass
    return total / 1e9 if seen else None


def proc_rss_kib(pids):
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/statm" % pid) as f:
                total += int(f.read().split()[1]) * PAGE_KIB
        except (OSError, IndexError):
            pass
    return total


def as_user():
    """Popen arguments that run a server as RUN_USER when this runs as root."""
    if os.geteuid() != 0:
        return {}
    pw = pwd.getpwnam(RUN_USER)
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}


def chown_tree(path, user):
    if os.geteuid() != 0:
        return
    pw = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        os.chown(root, pw.pw_uid, pw.pw_gid)
        for n in files:
            os.chown(os.path.join(root, n), pw.pw_uid, pw.pw_gid)


class Server:
    """One server: its directory, configuration, accounts, process."""
    name = ""
    label = ""

    def __init__(self, workdir, cert, key):
        self.dir = os.path.join(workdir, self.name)
        os.makedirs(self.dir, exist_ok=True)
        self.cert, self.key = cert, key
        self.port, self.tls_port = free_port(), free_port()
        self.proc = None
        self.logf = None
        self.why_not = None
        self.setup()

    def setup(self):
        pass

    def command(self):
        raise NotImplementedError

    def popen_args(self):
        return as_user()

    def start(self):
        self.logf = open(os.path.join(self.dir, "server.out"), "a")
        self.proc = subprocess.Popen(self.command(), stdout=self.logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.dir,
                                     env=self.env(), **self.popen_args())
        if not wait_port(self.port, self.proc, 60) or not wait_port(self.tls_port, self.proc, 10):
            self.stop()
            raise RuntimeError("%s did not start: %s" % (self.name, self.tail()))

    def env(self):
        return dict(os.environ)

    def pids(self):
        return tree(self.proc.pid) if self.proc else []

    def main_pid(self):
        return self.proc.pid

    def cpu(self):
        return proc_cpu(self.pids())

    def rss_kib(self):
        return proc_rss_kib(self.pids())

    def tail(self, n=1500):
        try:
            with open(os.path.join(self.dir, "server.out")) as f:
                return f.read()[-n:]
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                for p in reversed(self.pids()):
                    try:
                        os.kill(p, signal.SIGKILL)
                    except OSError:
                        pass
                self.proc.wait()
        if self.logf:
            self.logf.close()
            self.logf = None
        self.proc = None

    def register(self, first, count):
        raise NotImplementedError

    def create_accounts(self, count):
        """Start, create u1 ... u<count>, stop; RuntimeError when any could not be made."""
        self.start()
        try:
            failed = self.register(1, count)
        finally:
            self.stop()
        if failed:
            raise RuntimeError("%s: %d accounts could not be created" % (self.name, failed))

    def version(self):
        return ""


def http_bulk(port, requests, threads=4, timeout=60):
    """POST (path, body, headers) requests over keep-alive connections; count of non-2xx."""
    failures, lock = [0], threading.Lock()

    def work(part):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        for path, body, headers in part:
            try:
                c.request("POST", path, body, headers)
                r = c.getresponse()
                data = r.read()
                ok = 200 <= r.status < 300 or b"already" in data.lower() or r.status == 409
            except (OSError, http.client.HTTPException):
                c.close()
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
                ok = False
            if not ok:
                with lock:
                    failures[0] += 1
        c.close()

    parts = [requests[i::threads] for i in range(threads)]
    ts = [threading.Thread(target=work, args=(p,)) for p in parts]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return failures[0]


class XmppCore(Server):
    name = "xmpp-core"

    def setup(self):
        self.admin = free_port()
        self.token = os.path.join(self.dir, "api.token")
        with open(self.token, "w") as f:
            f.write(os.urandom(24).hex() + "\n")
        shutil.copy(self.cert, os.path.join(self.dir, "tls.crt"))
        shutil.copy(self.key, os.path.join(self.dir, "tls.key"))
        self.cfg = os.path.join(self.dir, "xmpp-core.yaml")
        with open(self.cfg, "w") as f:
            f.write("""# generated by bench/xmpp-core/bench.py
log:
  level: warn
admin:
  listen: 127.0.0.1:%(admin)d
tls:
  certificate: %(dir)s/tls.crt
  key: %(dir)s/tls.key
hosts: [%(domain)s]
workers: %(workers)d                    # 0: one per CPU (the default)
c2s:
  listen: ["127.0.0.1:%(port)d"]
  tls_listen: ["127.0.0.1:%(tls)d"]
  require_tls: false          # plain sessions for the memory measurement
  plain_cleartext: true
  connections_per_source: 0   # the load comes from a few loopback addresses
  max_connections: 200000
  rate: 0                     # no shaper: the peers have none either
auth:
  failures_per_ip: 100000
  failures_per_user: 100000
storage:
  path: %(dir)s/xmpp-core.db
api_token: %(dir)s/api.token
components:
  listen: []
websocket:
  listen: []                  # not measured (and 5443 may be taken by a running suite)
archive:
  enabled: %(archive)s        # the peers archive nothing either (ARCHIVE=1: on)
""" % {"archive": "true" if ARCHIVE else "false", "workers": WORKERS, "admin": self.admin, "dir": self.dir, "domain": DOMAIN, "port": self.port,
                "tls": self.tls_port})
        chown_tree(self.dir, RUN_USER)

    def command(self):
        return [os.path.join(BIN, "xmpp-core"), "-c", self.cfg]

    def register(self, first, count):
        tok = open(self.token).read().strip()
        hdr = {"Authorization": "Bearer " + tok, "Content-Type": "application/json"}
        reqs = [("/api/v1/accounts", json.dumps({"jid": "u%d@%s" % (i, DOMAIN),
                                                 "password": "pw%d" % i}), hdr)
                for i in range(first, first + count)]
        return http_bulk(self.admin, reqs)

    def version(self):
        try:
            r = subprocess.run([os.path.join(BIN, "xmpp-core"), "--version"],
                               capture_output=True, text=True, timeout=5)
            return (r.stdout or r.stderr).strip().splitlines()[0].replace("xmpp-core", "").strip()
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return ""


class Prosody(Server):
    name = "prosody"

    def setup(self):
        for d in ("data", "certs"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        crt = os.path.join(self.dir, "certs", DOMAIN + ".crt")
        key = os.path.join(self.dir, "certs", DOMAIN + ".key")
        shutil.copy(self.cert, crt)
        shutil.copy(self.key, key)
        self.cfg = os.path.join(self.dir, "prosody.cfg.lua")
        with open(self.cfg, "w") as f:
            f.write("""-- generated by bench/xmpp-core/bench.py
daemonize = false
pidfile = "%(d)s/prosody.pid"
data_path = "%(d)s/data"
log = { warn = "%(d)s/prosody.log" }
interfaces = { "127.0.0.1" }
c2s_ports = { %(port)d }
c2s_direct_tls_ports = { %(tls)d }
legacy_ssl_ports = { }
s2s_ports = { }
admin_socket = "%(d)s/prosody.sock"
network_backend = "epoll"
c2s_require_encryption = false      -- plain sessions for the memory measurement
allow_unencrypted_plain_auth = true
authentication = "internal_hashed"  -- SCRAM-SHA-1 keys, like the others
default_iteration_count = 4096      -- as xmpp-core and ejabberd
storage = "internal"
modules_enabled = { "roster", "saslauth", "tls", "disco", "ping", "offline", "admin_shell" }
modules_disabled = { "s2s" }
ssl = { certificate = "%(crt)s", key = "%(key)s" }
c2s_direct_tls_ssl = { certificate = "%(crt)s", key = "%(key)s" }

VirtualHost "%(domain)s"
""" % {"d": self.dir, "port": self.port, "tls": self.tls_port, "crt": crt, "key": key,
                "domain": DOMAIN})
        chown_tree(self.dir, RUN_USER)

    def command(self):
        return ["prosody", "--config", self.cfg, "-F"]

    def register(self, first, count):
        """prosodyctl shell: one console session creates every account (prosodyctl register
        costs a Lua start-up each, about 65 ms)."""
        lines = "".join('user:create("u%d@%s", "pw%d")\n' % (i, DOMAIN, i)
                        for i in range(first, first + count))
        r = subprocess.run(["prosodyctl", "--config", self.cfg, "shell"], input=lines,
                           capture_output=True, text=True, timeout=600, cwd=self.dir,
                           **self.popen_args())
        created = r.stdout.count("User created")
        return count - created

    def version(self):
        try:
            out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "prosody"],
                                 capture_output=True, text=True, timeout=5).stdout
            return out.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""


class Ejabberd(Server):
    name = "ejabberd"

    def setup(self):
        for d in ("conf", "spool", "logs"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        self.http = free_port()
        self.dist = free_port()
        self.node = "xcbench%d@localhost" % os.getpid()
        conf = os.path.join(self.dir, "conf")
        with open(os.path.join(conf, "server.pem"), "w") as f:
            f.write(open(self.cert).read() + open(self.key).read())
        shutil.copy("/etc/ejabberd/inetrc", os.path.join(conf, "inetrc")) \
            if os.path.exists("/etc/ejabberd/inetrc") else open(os.path.join(conf, "inetrc"), "w")
        self.yml = os.path.join(conf, "ejabberd.yml")
        with open(self.yml, "w") as f:
            f.write("""# generated by bench/xmpp-core/bench.py
loglevel: warning
log_rotate_count: 0
hosts:
  - %(domain)s
certfiles:
  - "%(conf)s/server.pem"
listen:
  -
    port: %(port)d
    ip: "127.0.0.1"
    module: ejabberd_c2s
    max_stanza_size: 262144
    access: c2s
    starttls: true
    starttls_required: false   # plain sessions for the memory measurement
  -
    port: %(tls)d
    ip: "127.0.0.1"
    module: ejabberd_c2s
    max_stanza_size: 262144
    access: c2s
    tls: true
  -
    port: %(http)d
    ip: "127.0.0.1"
    module: ejabberd_http
    request_handlers:
      /api: mod_http_api
auth_method: internal
auth_password_format: scram    # SCRAM-SHA-1 keys, 4096 iterations, like the others
auth_scram_hash: sha
acl:
  loopback:
    ip:
      - 127.0.0.0/8
access_rules:
  c2s:
    allow: all
api_permissions:
  "bench":
    from:
      - ejabberd_ctl
      - mod_http_api
    who:
      ip: 127.0.0.1/8
    what: "*"
modules:
  mod_roster: {}
  mod_offline: {}
  mod_disco: {}
  mod_ping: {}
  mod_http_api: {}
""" % {"domain": DOMAIN, "conf": conf, "port": self.port, "tls": self.tls_port,
                "http": self.http})
        with open(os.path.join(conf, "ejabberdctl.cfg"), "w") as f:
            # a distribution port of its own: no epmd daemon is started or needed
            f.write("ERL_DIST_PORT=%d\nERLANG_NODE=%s\n" % (self.dist, self.node))
        chown_tree(self.dir, "ejabberd" if os.geteuid() == 0 else pwd.getpwuid(os.getuid())[0])

    def ctl(self):
        d = self.dir
        return ["ejabberdctl", "--config-dir", d + "/conf", "--config", self.yml,
                "--ctl-config", d + "/conf/ejabberdctl.cfg", "--spool", d + "/spool",
                "--logs", d + "/logs", "--node", self.node]

    def command(self):
        return self.ctl() + ["foreground"]

    def popen_args(self):
        # ejabberdctl runs erl itself when it runs as the ejabberd user; as root it would go
        # through su, whose pam_limits sets the file limit back to 1024 (ejabberd then stops
        # accepting near 1,000 connections)
        if os.geteuid() != 0:
            return {}
        pw = pwd.getpwnam("ejabberd")
        return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}

    def env(self):
        e = dict(os.environ)
        e["HOME"] = self.dir  # its Erlang cookie lives here, not in /var/lib/ejabberd
        return e

    def start(self):
        me = pwd.getpwuid(os.geteuid())[0]
        if me not in ("root", "ejabberd"):
            raise RuntimeError("ejabberdctl runs only as root or as the ejabberd user, "
                               "and this runs as %s" % me)
        super().start()
        # the HTTP API too, for the accounts
        if not wait_port(self.http, self.proc, 30):
            self.stop()
            raise RuntimeError("ejabberd's HTTP API did not start: %s" % self.tail())

    def main_pid(self):
        for p in self.pids():
            try:
                with open("/proc/%d/comm" % p) as f:
                    if f.read().strip() == "beam.smp":
                        return p
            except OSError:
                pass
        return self.proc.pid

    def stop(self):
        if self.proc and self.proc.poll() is None:
            beam = self.main_pid()
            # SIGTERM to the VM: Erlang stops its applications in order (OTP 20 and later)
            try:
                os.kill(beam, signal.SIGTERM)
            except OSError:
                pass
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        super().stop()

    def register(self, first, count):
        hdr = {"Content-Type": "application/json"}
        reqs = [("/api/register", json.dumps({"user": "u%d" % i, "host": DOMAIN,
                                              "password": "pw%d" % i}), hdr)
                for i in range(first, first + count)]
        return http_bulk(self.http, reqs)

    def version(self):
        try:
            out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "ejabberd"],
                                 capture_output=True, text=True, timeout=5).stdout
            return out.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""


CLASSES = {"xmpp-core": XmppCore, "prosody": Prosody, "ejabberd": Ejabberd}
LABELS = {"xmpp-core": "xmpp-core", "prosody": "Prosody", "ejabberd": "ejabberd"}


# --- the load generator ---------------------------------------------------------------------------

class Load:
    """xmpp-load against one server, one command at a time."""

    def __init__(self, server, workdir, tag=""):
        """tag tells apart the SCRAM caches of several generators for one server."""
        self.server = server
        self.workdir = workdir
        cache = os.path.join(workdir, "scram-%s%s.cache" % (server.name, tag))
        self.proc = subprocess.Popen(
            [LOAD, "--port", str(server.port), "--tls-port", str(server.tls_port),
             "--domain", DOMAIN, "--sources", str(SOURCES), "--scram-cache", cache],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def run(self, cmd, timeout=600):
        """(the tool's JSON answer, server CPU seconds during the command); timeout as in
        answer()."""
        c0 = self.server.cpu()
        self.send(cmd)
        r = self.answer(timeout)
        return r, self.server.cpu() - c0

    def send(self, cmd):
        self.last_cmd = cmd
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()

    def answer(self, timeout=600):
        """The answer to the command sent last. A generator that gives none within timeout
        seconds is killed, which ends the read: one that hangs fails its step instead of
        hanging the bench."""
        lock, waiting, fired = threading.Lock(), [True], [False]

        def kill():
            with lock:  # not once the answer is in: the generator then stays usable
                if waiting[0]:
                    fired[0] = True
                    self.proc.kill()

        timer = threading.Timer(timeout, kill)
        timer.daemon = True
        timer.start()
        try:
            line = self.proc.stdout.readline()
        finally:
            with lock:
                waiting[0] = False
            timer.cancel()
        if not line:
            if fired[0]:
                raise RuntimeError("xmpp-load gave no answer to \"%s\" in %g s, and was "
                                   "killed" % (self.last_cmd, timeout))
            raise RuntimeError("xmpp-load exited: %s" % self.proc.stderr.read()[-500:])
        return json.loads(line)

    def close(self):
        """Stop the load generator; a second call does nothing."""
        if self.proc is None:
            return
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        self.proc = None


@contextlib.contextmanager
def chat_server(prefix, cls=None, configure=None):
    """A fresh xmpp-core in a temporary directory (prefix names it) with bench.py's
    configuration, CHAT_USERS accounts, started, and a load generator for it: yields (server,
    load). configure(server) may change the configuration before the accounts are made; cls
    replaces XmppCore (a subclass that runs the server differently). Both are stopped on the way
    out, the directory removed after."""
    with tempfile.TemporaryDirectory(prefix=prefix) as wd:
        os.chmod(wd, 0o755)
        cert, key = make_cert(wd)
        s = (cls or XmppCore)(wd, cert, key)
        if configure:
            configure(s)
        s.create_accounts(CHAT_USERS)
        s.start()
        try:
            load = Load(s, wd)
            try:
                yield s, load
            finally:
                load.close()
        finally:
            s.stop()


def settle(seconds=2.0):
    time.sleep(seconds)


# --- the measurements ---------------------------------------------------------------------------

def measure_memory(s, load, res):
    """RSS per idle session: MEM_SESSIONS plain, then MEM_SESSIONS over TLS on top."""
    n = MEM_SESSIONS
    settle(1.0)
    rss0 = s.rss_kib()
    r1, _ = load.run("online 1 %d plain scram %d" % (n, LOGIN_CONC))
    settle(MEM_QUIET)
    rss1 = s.rss_kib()
    r2, _ = load.run("online %d %d starttls scram %d" % (n + 1, n, LOGIN_CONC))
    settle(MEM_QUIET)
    rss2 = s.rss_kib()
    load.run("close")
    res["mem_plain_kib"] = (rss1 - rss0) / r1["ok"] if r1["ok"] else None
    res["mem_tls_kib"] = (rss2 - rss1) / r2["ok"] if r2["ok"] else None
    res["mem_rss0_kib"] = rss0
    res["mem_failed"] = r1["failed"] + r2["failed"]
    log("%s: RSS %d KiB, +%d plain sessions %d KiB, +%d TLS sessions %d KiB: %.1f / %.1f KiB "
        "per session%s" % (s.name, rss0, r1["ok"], rss1, r2["ok"], rss2,
                           res["mem_plain_kib"] or 0, res["mem_tls_kib"] or 0,
                           " (%d logins failed: %s)" % (res["mem_failed"], r2["last_error"] or
                                                        r1["last_error"])
                           if res["mem_failed"] else ""))


def login_shares(procs):
    """(first account, accounts, logins in flight) of each of procs generators."""
    cut = lambda total, i: total * i // procs  # noqa: E731
    return [(1 + cut(LOGIN_POOL, i), cut(LOGIN_POOL, i + 1) - cut(LOGIN_POOL, i),
             cut(LOGIN_CONC, i + 1) - cut(LOGIN_CONC, i)) for i in range(procs)]


def logins_together(s, loads, seconds, mech):
    """Every generator runs its share of the logins at once: the sums (the slowest one's
    duration, the worst p99), and the server's CPU meanwhile."""
    c0 = s.cpu()
    for load, (first, count, conc) in zip(loads, login_shares(len(loads))):
        load.send("logins %g %d %d starttls %s %d" % (seconds, first, count, mech, conc))
    rs = [load.answer() for load in loads]
    cpu = s.cpu() - c0
    r = {k: sum(x[k] for x in rs) for k in ("ok", "failed", "client_cpu_s")}
    r["seconds"] = max(x["seconds"] for x in rs)
    r["per_s"] = r["ok"] / r["seconds"] if r["seconds"] > 0 else 0.0
    r["p50_ms"] = median([x["p50_ms"] for x in rs])
    r["p99_ms"] = max(x["p99_ms"] for x in rs)
    r["last_error"] = next((x.get("last_error") for x in rs if x.get("failed")), "")
    return r, cpu


def measure_logins(s, load, res):
    procs = max(1, min(LOGIN_PROCS, LOGIN_CONC, LOGIN_POOL))
    loads = [load]
    try:
        for i in range(1, procs):
            loads.append(Load(s, load.workdir, "-%d" % i))
        # the first pass over the pool fills the clients' SCRAM caches and warms the server
        logins_together(s, loads, 2, "scram")
        res["login_procs"] = procs
        for mech in ("scram", "plain"):
            r, cpu = logins_together(s, loads, LOGIN_SECONDS, mech)
            res["logins_%s" % mech] = r["per_s"]
            res["login_cpu_ms_%s" % mech] = cpu * 1000 / r["ok"] if r["ok"] else None
            res["login_p99_ms_%s" % mech] = r["p99_ms"]
            res["login_client_cpu_%s" % mech] = r["client_cpu_s"] / r["seconds"]
            res["login_failed_%s" % mech] = r["failed"]
            log("%s: STARTTLS + %s: %.0f logins/s, p50 %.0f ms, p99 %.0f ms, server %.2f ms CPU "
                "per login, client CPU %.0f %% (%d process%s)%s" % (
                    s.name, "SCRAM-SHA-1" if mech == "scram" else "PLAIN", r["per_s"],
                    r["p50_ms"], r["p99_ms"], res["login_cpu_ms_%s" % mech] or 0,
                    100 * r["client_cpu_s"] / r["seconds"], procs, "" if procs == 1 else "es",
                    " (%d failed: %s)" % (r["failed"], r["last_error"]) if r["failed"] else ""))
    finally:
        for extra in loads[1:]:
            extra.close()


def quiesce(s, limit=20.0):
    """Wait until the server uses under 10 % of a core (a backlog it could not keep up with
    is worked off before the next step)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        c0 = s.cpu()
        time.sleep(0.5)
        if s.cpu() - c0 < 0.05:
            return


def psi_total():
    """Microseconds some task waited for a CPU (PSI), or None."""
    try:
        with open("/proc/pressure/cpu") as f:
            return int(f.readline().split()[4].split("=")[1])
    except (OSError, IndexError, ValueError):
        return None


def steal_ticks():
    """The time the hypervisor ran something else while this machine's CPUs had work (the
    steal column of /proc/stat, all CPUs), in clock ticks, or None."""
    try:
        with open("/proc/stat") as f:
            return int(f.readline().split()[8])
    except (OSError, IndexError, ValueError):
        return None


def steal_share(ticks0, ticks1, seconds):
    """The share of the machine's CPU time the host gave to other guests between two
    steal_ticks() readings taken seconds apart, or None."""
    if ticks0 is None or ticks1 is None or seconds <= 0:
        return None
    return (ticks1 - ticks0) / os.sysconf("SC_CLK_TCK") / seconds / (os.cpu_count() or 1)


def chat_step(s, load, rate, tag="", steps=None):
    p0, w0, st0 = psi_total(), proc_runq_wait(s.pids()), steal_ticks()
    r, cpu = load.run("chat %d %g %g" % (rate, STEP, DRAIN))
    p1, w1, st1 = psi_total(), proc_runq_wait(s.pids()), steal_ticks()
    r["psi"] = (p1 - p0) / 1e6 / r["took_s"] if p0 is not None and p1 is not None else None
    # the share of the machine's CPU time the host gave to others: the noise no server controls
    r["steal"] = steal_share(st0, st1, r["took_s"])
    got = r["received"]
    r["server_cpu_s"] = cpu
    r["cpu_us_per_msg"] = cpu * 1e6 / got if got else None
    # how long the server's threads waited for a CPU while runnable, per message: the part of
    # its latency that is the machine's contention, not its own work
    r["runq_wait_us_per_msg"] = ((w1 - w0) * 1e6 / got if got and w0 is not None
                                 and w1 is not None else None)
    r["delivered"] = got >= 0.999 * r["sent"] and r["errors"] == 0
    r["ok"] = r["delivered"] and r["p99_us"] <= CEIL_P99_MS * 1000
    r["client_cpu"] = r["client_cpu_s"] / max(r["took_s"], 1e-9)
    log("%s: %s%6d msg/s: received %d/%d errors %d p50 %.1f ms p99 %.1f ms (wire %.1f ms, "
        "%.1f from the batch), "
        "server %.1f us CPU/msg (%.0f %% of a core), %.1f us/msg waiting for a CPU, client "
        "%.0f %%, late %.1f ms, CPU pressure %.0f %%, steal %.1f %%: %s" % (
            s.name, tag, rate, got, r["sent"], r["errors"], r["p50_us"] / 1000,
            r["p99_us"] / 1000, r["wire_p99_us"] / 1000,
            r.get("batch_wire_p99_us", r["wire_p99_us"]) / 1000, r["cpu_us_per_msg"] or 0,
            100 * cpu / max(r["took_s"], 1e-9), r["runq_wait_us_per_msg"] or 0,
            100 * r["client_cpu"], r["late_max_us"] / 1000, 100 * (r["psi"] or 0),
            100 * (r["steal"] or 0),
            "ok" if r["ok"] else "not kept up"))
    if not r["ok"]:
        quiesce(s)
    if steps is not None:
        steps.append({"rate": rate, "cpu_us": r["cpu_us_per_msg"], "p99_us": r["p99_us"],
                      "runq_us": r["runq_wait_us_per_msg"], "steal": r["steal"], "ok": r["ok"]})
    return r


def measure_chat(s, load, res):
    steps = res.setdefault("steps", [])
    r, _ = load.run("online 1 %d starttls scram %d" % (CHAT_USERS, LOGIN_CONC))
    if r["ok"] < CHAT_USERS * 0.99:
        raise RuntimeError("only %d of %d chat sessions logged in: %s" % (
            r["ok"], CHAT_USERS, r["last_error"]))
    load.run("chat %d 1 %g" % (min(EQUAL_RATE, 1000), DRAIN))  # warm-up, not counted
    eq = chat_step(s, load, EQUAL_RATE, "equal load ")
    res["eq"] = eq
    best, bad, rate = None, None, START_RATE
    while rate <= MAX_RATE:
        r = chat_step(s, load, rate, steps=steps)
        if not r["ok"]:
            bad = (rate, r)
            break
        best = (rate, r)
        rate *= 2
    # not even the first rate: halve, down to an eighth of it
    rate = START_RATE // 2
    while best is None and rate >= max(START_RATE // 8, 1):
        r = chat_step(s, load, rate, steps=steps)
        if r["ok"]:
            best = (rate, r)
        else:
            bad = (rate, r)
        rate //= 2
    for _ in range(BISECT if best and bad and bad[0] > best[0] else 0):
        mid = (best[0] + bad[0]) // 2
        if bad[0] - best[0] < best[0] * 0.05:
            break
        r = chat_step(s, load, mid, steps=steps)
        if r["ok"]:
            best = (mid, r)
        else:
            bad = (mid, r)
    if best:
        res["ceiling"] = best[0]
        res["ceil"] = best[1]
        res["ceil_first_bad_client_cpu"] = bad[1]["client_cpu"] if bad else None
        half = chat_step(s, load, max(best[0] // 2, 1), "half ceiling ")
        res["half"] = half
    load.run("close")


def one_round(name, workdir, servers):
    """Memory, logins and chat, each on a freshly started server, so that what one
    measurement leaves behind (garbage, caches, a grown heap) does not weigh on the next."""
    s = servers[name]
    res = {}
    for measure in (measure_memory, measure_logins, measure_chat):
        try:
            s.start()
        except RuntimeError as e:
            log(str(e))
            return None
        load = Load(s, workdir)
        try:
            load.run("online 1 100 starttls scram 20")  # warm-up
            load.run("close")
            measure(s, load, res)
        except (RuntimeError, ValueError, KeyError) as e:
            log("%s: round failed: %s" % (name, e))
            return None
        finally:
            load.close()
            s.stop()
    return res


def big_run(servers, sessions):
    """xmpp-core with that many idle TLS sessions, RSS on the way up."""
    s = servers["xmpp-core"]
    s.start()
    load = Load(s, os.path.dirname(s.dir))
    points = []
    try:
        load.run("online 1 100 starttls scram 20")
        load.run("close")
        settle(1.0)
        rss0 = s.rss_kib()
        points.append((0, rss0))
        chunks = 4
        done = 0
        first = PEER_ACCOUNTS + 1
        t0 = time.monotonic()
        for k in range(chunks):
            n = sessions // chunks + (sessions % chunks if k == chunks - 1 else 0)
            r, _ = load.run("online %d %d starttls plain 200" % (first + done, n), timeout=1800)
            done += r["ok"]
            if r["failed"]:
                log("xmpp-core: %d of %d logins failed: %s" % (r["failed"], n, r["last_error"]))
            settle(MEM_QUIET)
            points.append((done, s.rss_kib()))
            log("xmpp-core: %d idle TLS sessions: RSS %d KiB" % (done, points[-1][1]))
        took = time.monotonic() - t0
        load.run("close")
    finally:
        load.close()
        s.stop()
    return {"points": points, "took_s": took}


# --- the report ---------------------------------------------------------------------------------







def cpu_pressure():
    try:
        with open("/proc/pressure/cpu") as f:
            return f.readline().split()[2].split("=")[1]  # "some" avg60
    except (OSError, IndexError):
        return None


def get(r, *path):
    for p in path:
        if r is None:
            return None
        r = r.get(p)
    return r


def half_rates(rs):
    """The rates of the rounds' half-ceiling steps, as a row states them: "28,000/s", or
    "28,000 to 32,000/s" when the rounds ran at different rates; None when none ran."""
    rates = sorted(set(get(r, "half", "rate") for r in rs) - {None})
    if not rates:
        return None
    if len(rates) == 1:
        return "%s/s" % fmt(rates[0])
    return "%s to %s/s" % (fmt(rates[0]), fmt(rates[-1]))


def fit(points):
    """Least-squares slope (KiB per session) and intercept of RSS against sessions."""
    n = len(points)
    if n < 2:
        return None, None
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    sxx = sum((p[0] - mx) ** 2 for p in points)
    if not sxx:
        return None, None
    slope = sum((p[0] - mx) * (p[1] - my) for p in points) / sxx
    return slope, my - slope * mx


def section(results, notes, versions, started, conditions, big):
    names = [n for n in SERVERS if n in results]
    med = {}
    for n in names:
        rs = results[n]
        med[n] = {
            "eq_cpu": median([get(r, "eq", "cpu_us_per_msg") for r in rs]),
            "ceil_cpu": median([get(r, "ceil", "cpu_us_per_msg") for r in rs]),
            "ceiling": median([r.get("ceiling") for r in rs]),
            # the medians of the half-ceiling rows may come from different rounds: the rows
            # give the rounds' rates, not one rate as if the median p99 were measured there
            "half_rates": half_rates(rs),
            "half_p50": median([get(r, "half", "p50_us") for r in rs]),
            "half_p99": median([get(r, "half", "p99_us") for r in rs]),
            "eq_p50": median([get(r, "eq", "p50_us") for r in rs]),
            "eq_p99": median([get(r, "eq", "p99_us") for r in rs]),
            "half_wire_p50": median([get(r, "half", "wire_p50_us") for r in rs]),
            "half_wire_p99": median([get(r, "half", "wire_p99_us") for r in rs]),
            "eq_wire_p50": median([get(r, "eq", "wire_p50_us") for r in rs]),
            "eq_wire_p99": median([get(r, "eq", "wire_p99_us") for r in rs]),
            "ceil_p99": median([get(r, "ceil", "p99_us") for r in rs]),
            "ceil_client": median([get(r, "ceil", "client_cpu") for r in rs]),
            "ceil_server": median([get(r, "ceil", "server_cpu_s") / get(r, "ceil", "took_s")
                                   if get(r, "ceil") else None for r in rs]),
            "logins_scram": median([r.get("logins_scram") for r in rs]),
            "logins_plain": median([r.get("logins_plain") for r in rs]),
            "lcpu_scram": median([r.get("login_cpu_ms_scram") for r in rs]),
            "lcpu_plain": median([r.get("login_cpu_ms_plain") for r in rs]),
            "lclient_scram": median([r.get("login_client_cpu_scram") for r in rs]),
            "mem_plain": median([r.get("mem_plain_kib") for r in rs]),
            "mem_tls": median([r.get("mem_tls_kib") for r in rs]),
        }
    # runs before 2026-12-07 read the wire latency's clock once per batch of sends, not at
    # each write (their results have no batch_wire_* figures)
    per_write = any(get(r, "half", "batch_wire_p99_us") is not None
                    for n in names for r in results[n])
    wire_from = "write" if per_write else "batch of writes"
    # runs before LOGIN_PROCS had one generator for the logins
    lprocs = max([r.get("login_procs") or 1 for n in names for r in results[n]] or [1])
    lfrom = "" if lprocs == 1 else " from %d load generators" % lprocs
    us = lambda v: None if v is None else v / 1000.0  # noqa: E731
    pctv = lambda v: None if v is None else 100 * v  # noqa: E731
    rows = [
        ("server CPU per routed message (µs)", "at %s msg/s, every server (equal load)"
         % fmt(EQUAL_RATE), "eq_cpu", 1, None),
        ("server CPU per routed message (µs)", "at each server's own ceiling (row 3)",
         "ceil_cpu", 1, None),
        ("messages/s at p99 ≤ %g ms (ceiling)" % CEIL_P99_MS, "every message delivered; the "
         "same latency bound for every server", "ceiling", 0, None),
        ("latency p50 / p99 (ms) at half the ceiling", "each at half its own row 3",
         ("half_p50", "half_p99", "half_rates"), 1, us),
        ("latency p50 / p99 (ms)", "at %s msg/s, every server (equal load)" % fmt(EQUAL_RATE),
         ("eq_p50", "eq_p99"), 1, us),
        ("wire latency p50 / p99 (ms) at half the ceiling", "the steps of row 4, from the "
         "sender's %s to the server's copy queued at the recipient's socket" % wire_from,
         ("half_wire_p50", "half_wire_p99", "half_rates"), 1, us),
        ("wire latency p50 / p99 (ms)", "the steps of row 5", ("eq_wire_p50", "eq_wire_p99"),
         1, us),
        ("logins/s, STARTTLS + SCRAM-SHA-1", "%d in flight%s, a full TLS 1.3 handshake each; "
         "each server's ceiling" % (LOGIN_CONC, lfrom), "logins_scram", 0, None),
        ("server CPU per login (ms), SCRAM-SHA-1", "the runs of row 8", "lcpu_scram", 2, None),
        ("logins/s, STARTTLS + PLAIN", "%d in flight%s; the server runs PBKDF2 (4096 "
         "iterations) for each" % (LOGIN_CONC, lfrom), "logins_plain", 0, None),
        ("server CPU per login (ms), PLAIN", "the runs of row 10", "lcpu_plain", 2, None),
        ("RSS per idle session, plain TCP (KiB)", "%s sessions: bound, available, roster read"
         % fmt(MEM_SESSIONS), "mem_plain", 1, None),
        ("RSS per idle session, TLS (KiB)", "%s more over STARTTLS, on top of those"
         % fmt(MEM_SESSIONS), "mem_tls", 1, None),
        ("load generator CPU (% of a core)", "at the ceiling of row 3",
         "ceil_client", 0, pctv),
        ("load generator CPU (% of a core)", "during the logins of row 8%s"
         % ("" if lprocs == 1 else ", its processes together"), "lclient_scram", 0, pctv),
    ]

    def cell(n, key, digits, conv):
        if n not in med:
            return notes.get(n, "not measured")
        if isinstance(key, tuple):
            vs = [med[n][k] for k in key]
            text = " / ".join(fmt(conv(v) if conv else v, digits) for v in vs[:2])
            if len(key) > 2 and vs[2]:
                text += " (at %s)" % vs[2]
            return text
        v = med[n][key]
        return fmt(conv(v) if conv else v, digits)

    def ratio(a, b, key):
        if a not in med or b not in med or isinstance(key, tuple) or key.endswith("client") \
                or key.startswith("lclient"):
            return "–"
        x, y = med[a][key], med[b][key]
        return "%.2f" % (x / y) if x is not None and y else "n/a"

    head = ["metric", "conditions"] + [("%s %s" % (LABELS[n], versions.get(n, ""))).strip()
                                       for n in SERVERS]
    has = "xmpp-core" in SERVERS
    peers = [n for n in SERVERS if n != "xmpp-core"]
    if has:
        head += ["xmpp-core / %s" % LABELS[p] for p in peers]
    lines = [BEGIN, "## xmpp-core against Prosody and ejabberd (XMPP client connections)", ""]
    lines.append(
        "Measured %s on %s with `bench/xmpp-core/run.sh` (also run by `make bench`; `QUICK=1` "
        "for a short run). %d round%s; each round starts every server afresh, in an order that "
        "rotates from round to round; the table gives the medians of the rounds. %s"
        % (started, machine(), ROUNDS, "" if ROUNDS == 1 else "s", conditions))
    lines.append("")
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for i, (label, cond, key, digits, conv) in enumerate(rows, 1):
        cells = [cell(n, key, digits, conv) for n in SERVERS]
        if has:
            cells += [ratio("xmpp-core", p, key) for p in peers]
        lines.append("| %d. %s | %s | %s |" % (i, label, cond, " | ".join(cells)))
    lines.append("")
    # each round's values for the figures the machine moves most
    per_round = []
    for n in names:
        per_round.append("%s: ceilings %s msg/s (steal %s %%), CPU at %s msg/s %s µs, logins/s "
                         "(SCRAM) %s" % (
            LABELS[n], ", ".join(fmt(r.get("ceiling")) for r in results[n]),
            ", ".join(fmt(pctv(get(r, "ceil", "steal")), 1) for r in results[n]), fmt(EQUAL_RATE),
            ", ".join(fmt(get(r, "eq", "cpu_us_per_msg"), 1) for r in results[n]),
            ", ".join(fmt(r.get("logins_scram")) for r in results[n])))
    lines.append("Each round: " + "; ".join(per_round) + ".")
    lines.append("")
    halves = []
    for n in names:
        halves.append("%s: %s" % (LABELS[n], ", ".join(
            "%s/s %s (wire %s%s, steal %s %%)" % (
                fmt(get(r, "half", "rate")), fmt(us(get(r, "half", "p99_us")), 1),
                fmt(us(get(r, "half", "wire_p99_us")), 1),
                "" if get(r, "half", "batch_wire_p99_us") is None else
                ", %s from the batch" % fmt(us(get(r, "half", "batch_wire_p99_us")), 1),
                fmt(pctv(get(r, "half", "steal")), 1))
            for r in results[n])))
    lines.append("p99 (ms) at half the ceiling, each round, with the host's steal during the "
                 "step (the share of this machine's CPU time its host gave to other guests): " +
                 "; ".join(halves) + ".")
    lines.append("")
    curve = []
    for n in names:
        by_rate = {}
        for r in results[n]:
            for st in r.get("steps", []):
                by_rate.setdefault(st["rate"], []).append(st)
        doubling = sorted(k for k in by_rate if k >= START_RATE and
                          (k // START_RATE) & (k // START_RATE - 1) == 0 and k % START_RATE == 0)
        pts = []
        for k in doubling:
            sts = by_rate[k]
            kept = sum(1 for st in sts if st["ok"])
            pts.append("%s/s %s%s" % (fmt(k), fmt(median([st["cpu_us"] for st in sts]), 0),
                                      "" if kept * 2 > len(sts) else "*"))
        curve.append("%s: %s" % (LABELS[n], ", ".join(pts)))
    shares = []
    for n in names:
        firsts = []
        for r in results[n]:
            bad = [st for st in r.get("steps", []) if not st["ok"] and st["cpu_us"]]
            if bad:
                firsts.append(bad[0]["cpu_us"] * bad[0]["rate"] / 1e4)  # % of a core
        if firsts:
            shares.append("%s about %s %%" % (LABELS[n], fmt(median(firsts))))
    if shares:
        lines.append("At the first rate of the search each server did not keep up with, it "
                     "used (CPU per message × rate, median over the rounds) " +
                     ", ".join(shares) + " of one core. Where that is well under what the "
                     "server can use (one core for Prosody, both for xmpp-core and ejabberd), "
                     "it missed the latency bound before it ran out of CPU: its latency tail "
                     "and the other work on the machine set row 3.")
        lines.append("")
    lines.append("Server CPU per routed message (µs) at each rate of the doubling search, median "
                 "over the rounds that ran it (* where most of them did not keep up): " +
                 "; ".join(curve) + ". It falls as the rate rises: at low rates every message "
                 "costs the server its own wake-ups and system calls, at high rates they are "
                 "shared by a batch.")
    lines.append("")
    for n in SERVERS:
        if n in notes and n not in med:
            lines.append("%s was not measured: %s" % (LABELS[n], notes[n]))
            lines.append("")
    if big:
        pts = big["points"]
        slope, icpt = fit(pts)
        last = pts[-1]
        lines.append(
            "**xmpp-core with many idle TLS sessions.** In one more run, xmpp-core alone took "
            "%s idle sessions over STARTTLS (PLAIN, %s at a time, in %.0f s), RSS measured after "
            "each quarter: %s. RSS grows by %s KiB per session (least squares over those "
            "points), from %s MiB with none; at that rate 100,000 would take about %s MiB "
            "(%s GiB) in one process. One process cannot hold 100,000 here (the open-file "
            "limit is %s and cannot be raised without CAP_SYS_RESOURCE); "
            "`bench/xmpp-core/idle_tls.py` holds them over several processes and measures "
            "them (\"xmpp-core: 100,000 idle TLS sessions\" below)."
            % (fmt(last[0]), 200, big["took_s"],
               ", ".join("%s → %s MiB" % (fmt(p[0]), fmt(p[1] / 1024, 1)) for p in pts),
               fmt(slope, 1), fmt(icpt / 1024, 1),
               fmt((icpt + 100000 * slope) / 1024), fmt((icpt + 100000 * slope) / 1048576, 2),
               fmt(resource.getrlimit(resource.RLIMIT_NOFILE)[1])))
        lines.append("")
    lines += targets(med)
    lines += [
        "**How it is measured.** The three servers run on this machine on private loopback "
        "ports with generated configurations (in `bench/xmpp-core/bench.py`), one at a time, "
        "with the same %s accounts (u1@localhost ..., and for xmpp-core those of the large "
        "run; xmpp-core's through its admin API, Prosody's "
        "through `prosodyctl shell`, ejabberd's through its HTTP API), all stored as SCRAM-SHA-1 "
        "keys with 4096 PBKDF2 iterations, the same self-signed ECDSA P-256 certificate, "
        "STARTTLS offered but not required, no traffic shaper, no stream management, carbons "
        "or archive; roster, offline messages, disco and ping in each. Each measurement "
        "(memory, logins, chat) starts its server afresh: after thousands of sessions came "
        "and went, Prosody's chat latency was several times worse. xmpp-core runs %s "
        "worker loops (one per CPU), Prosody its one thread, ejabberd the BEAM's default "
        "schedulers (one per CPU, Debian's ejabberdctl flags). Servers run as `nobody` "
        "(ejabberd as `ejabberd`, which ejabberdctl insists on)."
        % (fmt(PEER_ACCOUNTS), os.cpu_count() or 1),
        "",
        "The load comes from `bench/xmpp-core/xmpp-load.c`, built by run.sh: one thread, "
        "epoll, OpenSSL, many sessions, driven step by step by bench.py. A session does what "
        "a phone does when it comes online: TCP, STARTTLS and a full TLS 1.3 handshake, SASL, "
        "resource binding, the session IQ when advertised, roster get, initial presence. "
        "Chat: %s sessions online; every message goes from the next session in turn to the "
        "bare JID of a random other online user, each sent when it is due (in batches at least "
        "0.1 ms apart); latency runs from the "
        "moment a message was due to be sent to its arrival, so a load generator that falls "
        "behind is not hidden. The wire latency (rows 6 and 7) leaves the load generator's "
        "own delays out: it runs from the wall clock read just before %s to the kernel's "
        "timestamp (SO_TIMESTAMPNS) of the newest bytes "
        "read with it at the recipient, the moment the server's copy was queued on that "
        "socket; it is the server's routing latency with loopback TCP on both sides, never "
        "shorter. A chat step sends for %g s and waits up to %g s for the last "
        "messages; the server's CPU (utime + stime of all its processes, /proc/PID/stat) over "
        "the step, divided by the messages delivered, is its CPU per routed message. The "
        "rate search doubles from %s msg/s while every message arrives with p99 ≤ %g ms, then "
        "bisects %d times. Logins: %d at a time for %g s, each a new connection that ends its "
        "stream once online, cycling through %d accounts (the client keeps each account's "
        "salted password, as real clients do)%s. Memory: VmRSS of the server's processes after "
        "the sessions are up and %g s of quiet (xmpp-core gives back an idle session's parser and "
        "buffers after 5 s, its c2s.trim_after), minus VmRSS before, per session."
        % (fmt(CHAT_USERS),
           "the write that carries a message (the time the generator spends writing the "
           "messages before it in the same batch is not counted; the half-ceiling p99s of "
           "each round, above, give the figure from the clock read before the batch as well, "
           "this table's measure before 2026-12-07)" if per_write else
           "the batch that carries a message is written", STEP, DRAIN, fmt(START_RATE),
           CEIL_P99_MS, BISECT, LOGIN_CONC,
           LOGIN_SECONDS, LOGIN_POOL, "" if lprocs == 1 else
           ", shared by %d load generator processes, each with its part of the accounts and of "
           "the logins in flight: the client's half of a TLS handshake costs about what the "
           "server's does, and one process, on one core, capped xmpp-core's rate" % lprocs,
           MEM_QUIET),
        "",
        "Why not tsung: on two shared cores the load generator takes CPU from the server it "
        "measures, so it must cost much less per message than the servers do. Debian's tsung "
        "1.7.0, run by hand against xmpp-core on this machine (2026-12-05; 147 users online "
        "after SASL PLAIN, bind, session, presence and roster get, each sending a 64-byte chat "
        "message to a random online user every 0.1 s: 1,335 messages/s), spent 360 µs of its "
        "own CPU per message sent; xmpp-load spends 10 to 90 µs per message (sent and "
        "received, TLS both ways; the more the lower the rate), and rows 14 and 15 say how "
        "busy it was in this run. Server "
        "CPU per message and per login move much less with the other work on the machine "
        "than rates and latencies, which here move a lot from round to round. "
        "Not covered here: the memory an idle session keeps after it sent or received a large "
        "stanza (every session here only ever saw small ones).",
    ]
    lines.append(END)
    return "\n".join(lines) + "\n"


def targets(med):
    out = []
    x, p = med.get("xmpp-core"), med.get("prosody")
    if not x:
        return out

    def verdict(ok):
        return "met" if ok else "not met"

    t = []
    if x.get("eq_cpu") is not None:
        best = min(v for v in (x.get("eq_cpu"), x.get("ceil_cpu")) if v is not None)
        t.append("CPU per routed message ≤ 20 µs: %s here (%s µs at %s msg/s, %s µs at its "
                 "ceiling of %s msg/s)" % (verdict(best <= 20), fmt(x["eq_cpu"], 1),
                                            fmt(EQUAL_RATE), fmt(x.get("ceil_cpu"), 1),
                                            fmt(x.get("ceiling"))))
    if p and x.get("logins_scram") and p.get("logins_scram"):
        a = x["logins_scram"] / p["logins_scram"]
        b = x["logins_plain"] / p["logins_plain"] if p.get("logins_plain") else 0
        t.append("logins/s over TLS ≥ 3× Prosody's: %s (%.1f× with SCRAM-SHA-1, %.1f× with "
                 "PLAIN; server CPU per login %.1f× and %.1f× less)" % (
                     verdict(a >= 3 and b >= 3), a, b,
                     p["lcpu_scram"] / x["lcpu_scram"] if x.get("lcpu_scram") else 0,
                     p["lcpu_plain"] / x["lcpu_plain"] if x.get("lcpu_plain") else 0))
    if p and x.get("mem_tls") and p.get("mem_tls"):
        a, b = x["mem_plain"] / p["mem_plain"], x["mem_tls"] / p["mem_tls"]
        t.append("memory per idle session ≤ half of Prosody's: %s over plain TCP (%.2f of "
                 "it), %s over TLS (%.2f)" % (verdict(a <= 0.5), a, verdict(b <= 0.5), b))
    if x.get("half_wire_p99") is not None:
        t.append("p99 routing latency < 5 ms at half the saturation rate: %s (%s ms, the "
                 "median of the rounds at %s, on the wire, row 6, which says from which "
                 "clock; %s ms counted from when each message was due, with the load "
                 "generator's own delays, row 4)" % (
                     verdict(x["half_wire_p99"] < 5000), fmt(x["half_wire_p99"] / 1000, 1),
                     x.get("half_rates"), fmt(x["half_p99"] / 1000, 1)))
    elif x.get("half_p99") is not None:
        t.append("p99 routing latency < 5 ms at half the saturation rate: %s (%s ms, the "
                 "median of the rounds at %s)" % (verdict(x["half_p99"] < 5000),
                                                  fmt(x["half_p99"] / 1000, 1),
                                                  x.get("half_rates")))
    t.append("100,000 idle TLS sessions in under 2 GB: measured by `idle_tls.py`, its own "
             "section below")
    if t:
        out.append("The issue's targets for xmpp-core, against these medians: " +
                   "; ".join(t) + ".")
        out.append("")
    return out


def write_doc(text):
    write_section(DOC, BEGIN, END, text, log)


def main():
    if os.environ.get("RENDER"):
        # the document again from a run's results.json (KEEP=1 keeps it), without measuring
        with open(os.environ["RENDER"]) as f:
            write_doc(render(json.load(f)))
        return 0
    # SIGTERM, SIGINT: unwind through the finally blocks, which stop every server we started
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(130))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the servers inherit it
    if not os.access(LOAD, os.X_OK):
        log("missing %s (bench/xmpp-core/run.sh builds it)" % LOAD)
        return 1
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load0, psi0 = os.getloadavg(), cpu_pressure()
    steal0, t_start = steal_ticks(), time.monotonic()
    notes, versions = {}, {}
    big_sessions = min(BIG_SESSIONS, hard - 500)
    with tempfile.TemporaryDirectory(prefix="xmpp-core-bench-") as workdir:
        os.chmod(workdir, 0o755)
        cert, key = make_cert(workdir)
        servers = {}
        for n in SERVERS:
            if n == "xmpp-core" and not os.access(os.path.join(BIN, "xmpp-core"), os.X_OK):
                notes[n] = "no build/bin/xmpp-core (make build)"
                continue
            if n in ("prosody", "ejabberd") and not shutil.which(
                    "prosody" if n == "prosody" else "ejabberdctl"):
                notes[n] = "not installed (scripts/deps.sh test)"
                continue
            s = CLASSES[n](workdir, cert, key)
            versions[n] = s.version()
            count = PEER_ACCOUNTS + (big_sessions if n == "xmpp-core" else 0)
            t0 = time.monotonic()
            try:
                s.start()
                failed = s.register(1, count)
            except (RuntimeError, OSError, subprocess.SubprocessError) as e:
                notes[n] = str(e).replace("\n", " ")[:300]
                log("%s: %s" % (n, notes[n]))
                s.stop()
                continue
            s.stop()
            log("%s %s: %d accounts in %.0f s%s" % (n, versions[n], count,
                                                    time.monotonic() - t0,
                                                    ", %d failed" % failed if failed else ""))
            if failed > count // 100:
                notes[n] = "%d of %d accounts could not be created" % (failed, count)
                continue
            servers[n] = s
        results = {n: [] for n in servers}
        order = list(servers)
        for rnd in range(ROUNDS):
            k = rnd % max(len(order), 1)
            turn = order[k:] + order[:k]
            for n in turn:
                log("round %d/%d: %s" % (rnd + 1, ROUNDS, n))
                r = one_round(n, workdir, servers)
                if r is not None:
                    results[n].append(r)
        big = None
        if "xmpp-core" in servers and big_sessions > 0:
            log("xmpp-core: %d idle TLS sessions" % big_sessions)
            try:
                big = big_run(servers, big_sessions)
            except (RuntimeError, ValueError, KeyError) as e:
                log("xmpp-core: the large run failed: %s" % e)
        for n in list(results):
            if not results[n]:
                del results[n]
                notes.setdefault(n, "every round failed (see the log of bench/xmpp-core/run.sh)")
        load1, psi1, steal1 = os.getloadavg(), cpu_pressure(), steal_ticks()
        steal = steal_share(steal0, steal1, time.monotonic() - t_start)
        steal = "n/a" if steal is None else "%.1f" % (100 * steal)
        conditions = (
            "Load generator and server share the machine's %d cores (not pinned); the machine "
            "is shared with other work: load average (1, 5, 15 min) %s before and %s after, "
            "CPU pressure (PSI some, avg60) %s %% before and %s %% after; over the whole run "
            "the host gave %s %% of this machine's CPU time to other guests (steal)."
            % (os.cpu_count() or 0, " ".join("%.2f" % v for v in load0),
               " ".join("%.2f" % v for v in load1), psi0 or "n/a", psi1 or "n/a", steal))
        if WORKERS:
            conditions += " xmpp-core with workers: %d (WORKERS), not its default of one per CPU." % WORKERS
        run = {"results": results, "big": big, "notes": notes, "versions": versions,
               "started": started, "conditions": conditions}
        with open(os.path.join(workdir, "results.json"), "w") as f:
            json.dump(run, f)
        if KEEP:
            keep = tempfile.mkdtemp(prefix="xmpp-core-bench-kept-")
            shutil.copytree(workdir, keep, dirs_exist_ok=True)
            log("work directory kept in %s" % keep)
        log("results: %s" % json.dumps(run))
        write_doc(render(run))
    return 0


def render(run):
    return section(run["results"], run["notes"], run["versions"], run["started"],
                   run["conditions"], run["big"])


if __name__ == "__main__":
    sys.exit(main())
