#!/usr/bin/python3
"""apns_mock.py - a strict mock of Apple's APNs provider API (HTTP/2 over TLS, ALPN h2 only) for
the platypus tests: it checks what APNs checks (ES256 provider token, headers, push type against
topic and payload, payload size) and answers with APNs' statuses and reasons. Tests steer it and
read what it received through a plain-HTTP/1.1 JSON control port. See README.md in this folder.

Run with /usr/bin/python3 (Debian's python3-h2 and python3-cryptography)."""

import argparse
import json
import os
import re
import sys
import time
import uuid

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mockcore  # noqa: E402
from mockcore import json_response, jwt_peek, jwt_split, now_ms  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PATH_PREFIX = "/3/device/"
TOKEN_RE = re.compile(r"^[0-9a-fA-F]{64}$")
TOPIC_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
PUSH_TYPES = ("alert", "background", "voip", "complication", "fileprovider", "mdm",
              "liveactivity", "pushtotalk", "location")
# Topic suffix that a push type requires (Apple's "apns-push-type" documentation); alert and
# background use the bare bundle id, mdm the MDM certificate's topic.
SUFFIX_OF_TYPE = {"voip": ".voip", "complication": ".complication",
                  "fileprovider": ".pushkit.fileprovider", "liveactivity": ".push-type.liveactivity",
                  "pushtotalk": ".voip-ptt", "location": ".location-query"}
MAX_PAYLOAD = 4096
MAX_PAYLOAD_VOIP = 5120
STATUS_OF_REASON = {
    "BadCollapseId": 400, "BadDeviceToken": 400, "BadExpirationDate": 400, "BadMessageId": 400,
    "BadPriority": 400, "BadTopic": 400, "DeviceTokenNotForTopic": 400, "DuplicateHeaders": 400,
    "IdleTimeout": 400, "InvalidPushType": 400, "MissingDeviceToken": 400, "MissingTopic": 400,
    "PayloadEmpty": 400, "TopicDisallowed": 400, "BadPayload": 400,
    "BadCertificate": 403, "BadCertificateEnvironment": 403, "ExpiredProviderToken": 403,
    "Forbidden": 403, "InvalidProviderToken": 403, "MissingProviderToken": 403,
    "BadPath": 404, "MethodNotAllowed": 405, "Unregistered": 410, "ExpiredToken": 410,
    "PayloadTooLarge": 413, "TooManyProviderTokenUpdates": 429, "TooManyRequests": 429,
    "InternalServerError": 500, "ServiceUnavailable": 503, "Shutdown": 503,
}


class Reject(Exception):
    def __init__(self, reason, status=None, headers=None, timestamp=None):
        super().__init__(reason)
        self.reason = reason
        self.timestamp = timestamp
        self.status = status or STATUS_OF_REASON[reason]
        self.headers = headers or []


def suffix_type(topic):
    """The push type a topic's suffix demands, or None for a bare bundle id."""
    for t, suf in SUFFIX_OF_TYPE.items():
        if topic.endswith(suf):
            return t
    return None


class App:
    HTTP1 = False
    WANTS_CLIENT_CERT = True

    def __init__(self, args):
        self.args = args
        self.key_id = args.key_id
        self.team_id = args.team_id
        with open(args.public_key, "rb") as f:
            self.public_key = serialization.load_pem_public_key(f.read())
        if not isinstance(self.public_key, ec.EllipticCurvePublicKey) or \
                self.public_key.curve.name != "secp256r1":
            raise SystemExit("--public-key must be an EC P-256 public key")
        self.topics = [t for t in args.topics.split(",") if t]
        self.max_streams = args.max_streams
        self.token_window = args.token_update_window
        self.token_max_age = args.token_max_age
        self.team_tokens = {}   # team -> (token, first seen) for --token-update-scope team
        self.revoked = set()    # key ids Apple no longer honours (/settings revoked_key_ids)
        self.reset()

    def reset(self):
        self.dead = {}          # device token -> {"reason", "timestamp"}
        self.token_topic = {}   # device token -> topic it is registered to

    def started(self, port):
        pass

    # --- connection state
    def initial_max_streams(self, conn):
        st = conn.app_state
        st.update(auth=None, authenticated=False, token=None, token_since=None,
                  token_changes=0, cert_topic=None)
        if conn.peer_cert:
            st["cert_topic"] = self.args.cert_topic or self.cert_uid(conn.peer_cert)
        if st["cert_topic"]:
            # Certificate auth: the TLS handshake already authenticated the provider.
            st["authenticated"] = True
            return self.max_streams
        return 1

    @staticmethod
    def cert_uid(cert):
        for rdn in cert.get("subject", ()):
            for k, v in rdn:
                if k == "userId":
                    return v
        return None

    def connection_info(self, conn):
        st = conn.app_state
        proto = self.server.connections.get(conn.id)
        cur, pending = proto.advertised_max_streams() if proto else (None, None)
        return {"authenticated": st.get("authenticated"), "cert_topic": st.get("cert_topic"),
                "provider_token_changes": st.get("token_changes"),
                "max_concurrent_streams": cur, "max_concurrent_streams_pending": pending}

    def connection_closed(self, conn):
        pass

    def answered(self, req, resp):
        st = req.conn.app_state
        if resp.status == 200 and not st["authenticated"] and getattr(req, "token_ok", False):
            st["authenticated"] = True
            proto = self.server.connections.get(req.conn.id)
            if proto is not None:
                proto.update_max_streams(self.max_streams)

    # --- the request
    def handle(self, req, extra):
        auth = req.header("authorization")
        if auth is not None:
            tok = auth.split(" ", 1)[1] if " " in auth else auth
            extra["jwt"] = jwt_peek(tok.strip())
        extra["auth"] = "token" if auth is not None else \
            ("certificate" if req.conn.app_state.get("cert_topic") else None)
        path = req.path or ""
        device = path[len(PATH_PREFIX):] if path.startswith(PATH_PREFIX) else None
        extra["device_token"] = device
        req.facts = {"token": device, "topic": req.header("apns-topic"),
                     "push_type": req.header("apns-push-type")}
        apns_id = req.header("apns-id")
        echo_id = apns_id if apns_id is not None and UUID_RE.match(apns_id) else \
            str(uuid.uuid4()).upper()
        extra["apns_id"] = echo_id
        try:
            self.validate(req, device)
        except Reject as r:
            extra["provider_token_valid"] = getattr(req, "token_ok", False)
            body = {"reason": r.reason}
            if r.status == 410:
                body["timestamp"] = r.timestamp or now_ms()
            return json_response(r.status, body, [("apns-id", echo_id)] + r.headers, r.reason)
        extra["provider_token_valid"] = getattr(req, "token_ok", False)
        return mockcore.Response(200, [("apns-id", echo_id),
                                       ("apns-unique-id", str(uuid.uuid4()))], b"", None)

    def validate(self, req, device):
        st = req.conn.app_state
        if req.method != "POST":
            raise Reject("MethodNotAllowed")
        if device is None:
            raise Reject("BadPath")
        if device == "":
            raise Reject("MissingDeviceToken")
        if not TOKEN_RE.match(device):
            raise Reject("BadDeviceToken")
        if req.pseudo.get(":scheme") != "https" or not req.pseudo.get(":authority"):
            raise Reject("BadPath")
        seen = set()
        for k, _ in req.headers:
            if k in seen:
                raise Reject("DuplicateHeaders")
            seen.add(k)

        # Provider authentication.
        auth = req.header("authorization")
        cert_topic = st.get("cert_topic")
        if auth is not None:
            self.check_token(req, auth)
            req.token_ok = True
        elif not cert_topic:
            raise Reject("MissingProviderToken")

        # Topic.
        topic = req.header("apns-topic")
        if topic is None:
            if auth is not None or not cert_topic:
                raise Reject("MissingTopic")
            topic = cert_topic
        if not TOPIC_RE.match(topic):
            raise Reject("BadTopic")
        if auth is not None:
            allowed = self.topics
        else:
            allowed = [cert_topic, cert_topic + ".voip", cert_topic + ".complication"]
        if topic not in allowed:
            raise Reject("TopicDisallowed")

        # Push type against topic.
        ptype = req.header("apns-push-type")
        if ptype is None:
            if not self.args.allow_missing_push_type:
                raise Reject("InvalidPushType")
            ptype = "alert"
        if ptype not in PUSH_TYPES:
            raise Reject("InvalidPushType")
        want = suffix_type(topic)
        if ptype == "mdm":
            if want is not None:
                raise Reject("InvalidPushType")
        elif want != (ptype if ptype in SUFFIX_OF_TYPE else None):
            raise Reject("InvalidPushType")

        # Priority, expiration, collapse id, message id.
        prio = req.header("apns-priority")
        if prio is not None and prio not in ("1", "5", "10"):
            raise Reject("BadPriority")
        prio = int(prio) if prio is not None else 10
        if ptype == "background" and prio != 5:
            raise Reject("BadPriority")
        exp = req.header("apns-expiration")
        if exp is not None and not re.fullmatch(r"[0-9]{1,19}", exp):
            raise Reject("BadExpirationDate")
        cid = req.header("apns-collapse-id")
        if cid is not None and len(cid.encode()) > 64:
            raise Reject("BadCollapseId")
        mid = req.header("apns-id")
        if mid is not None and not UUID_RE.match(mid):
            raise Reject("BadMessageId")

        # Payload.
        if not req.body:
            raise Reject("PayloadEmpty")
        limit = MAX_PAYLOAD_VOIP if ptype == "voip" else MAX_PAYLOAD
        if len(req.body) > limit:
            raise Reject("PayloadTooLarge")
        try:
            payload = json.loads(req.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise Reject("BadPayload")
        if not isinstance(payload, dict) or not isinstance(payload.get("aps"), dict):
            raise Reject("BadPayload")
        aps = payload["aps"]
        if ptype == "background":
            if aps.get("content-available") != 1:
                raise Reject("InvalidPushType")

        # The device token itself.
        reg = self.token_topic.get(device.lower())
        if reg is not None and reg != topic:
            raise Reject("DeviceTokenNotForTopic")
        rule = self.server.faults.take("fail", req, req.facts)
        if rule is not None:
            raise Reject(rule["reason"], rule["status"], mockcore.retry_after_headers(rule),
                         rule.get("timestamp"))
        d = self.dead.get(device.lower())
        if d is not None:
            raise Reject(d["reason"], 410, [], d["timestamp"])

    def check_token(self, req, auth):
        st = req.conn.app_state
        scheme, _, tok = auth.partition(" ")
        if scheme.lower() != "bearer" or not tok:
            raise Reject("InvalidProviderToken")
        tok = tok.strip()
        try:
            header, claims, signing_input, sig = jwt_split(tok)
        except (ValueError, UnicodeDecodeError):
            raise Reject("InvalidProviderToken")
        if header.get("alg") != "ES256" or header.get("kid") != self.key_id:
            raise Reject("InvalidProviderToken")
        if header.get("kid") in self.revoked:
            raise Reject("InvalidProviderToken")
        if len(sig) != 64:  # JWS ES256 is raw r||s, not DER
            raise Reject("InvalidProviderToken")
        r = int.from_bytes(sig[:32], "big")
        s = int.from_bytes(sig[32:], "big")
        try:
            self.public_key.verify(utils.encode_dss_signature(r, s), signing_input,
                                   ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise Reject("InvalidProviderToken")
        if claims.get("iss") != self.team_id:
            raise Reject("InvalidProviderToken")
        iat = claims.get("iat")
        if not isinstance(iat, int) or isinstance(iat, bool):
            raise Reject("InvalidProviderToken")
        now = time.time()
        if iat > now + self.args.clock_skew:
            raise Reject("InvalidProviderToken")
        if now - iat > self.token_max_age:
            raise Reject("ExpiredProviderToken")
        # Token changes: a new token on a connection (or for the team) sooner than the window.
        if self.args.token_update_scope == "team":
            prev = self.team_tokens.get(self.team_id)
            if prev is not None and prev[0] != tok:
                if now - prev[1] < self.token_window:
                    raise Reject("TooManyProviderTokenUpdates")
            if prev is None or prev[0] != tok:
                self.team_tokens[self.team_id] = (tok, now)
        if st["token"] != tok:
            if st["token"] is not None and self.args.token_update_scope == "connection" and \
                    now - st["token_since"] < self.token_window:
                raise Reject("TooManyProviderTokenUpdates")
            if st["token"] is not None:
                st["token_changes"] += 1
            st["token"] = tok
            st["token_since"] = now

    # --- control endpoints of this mock
    def check_fail_rule(self, body):
        reason = body.get("reason")
        status = body.get("status")
        if reason is None:
            reason = {400: "BadDeviceToken", 403: "Forbidden", 410: "Unregistered",
                      413: "PayloadTooLarge", 429: "TooManyRequests", 500: "InternalServerError",
                      503: "ServiceUnavailable"}.get(status)
        if status is None:
            status = STATUS_OF_REASON.get(reason)
        if reason is None or status is None:
            raise ValueError("a fail rule needs a known status or reason")
        return dict(mockcore.retry_after_rule(body), status=int(status), reason=reason,
                    count=body.get("count", 1), timestamp=body.get("timestamp"),
                    match=body.get("match"), connection=body.get("connection"))

    async def control(self, method, path, query, body):
        if method == "POST" and path == "/dead":
            tokens = body.get("tokens") or [body["token"]]
            reason = body.get("reason", "Unregistered")
            if reason not in ("Unregistered", "ExpiredToken"):
                raise ValueError("reason must be Unregistered or ExpiredToken")
            for t in tokens:
                self.dead[t.lower()] = {"reason": reason, "timestamp": body.get("timestamp") or now_ms()}
            return 200, {"ok": True}
        if method == "POST" and path == "/alive":
            for t in body.get("tokens") or [body["token"]]:
                self.dead.pop(t.lower(), None)
            return 200, {"ok": True}
        if method == "POST" and path == "/register":
            # {"token": ..., "topic": ...}: requests to another topic get DeviceTokenNotForTopic
            self.token_topic[body["token"].lower()] = body["topic"]
            return 200, {"ok": True}
        if method == "POST" and path == "/settings":
            if "max_concurrent_streams" in body:
                self.max_streams = int(body["max_concurrent_streams"])
                for p in self.server.connections.values():
                    if p.conn is not None and p.conn.app_state.get("authenticated"):
                        p.update_max_streams(self.max_streams)
            if "token_update_window" in body:
                self.token_window = float(body["token_update_window"])
            if "token_max_age" in body:
                self.token_max_age = float(body["token_max_age"])
            if "topics" in body:
                self.topics = list(body["topics"])
            if "revoked_key_ids" in body:
                self.revoked = set(body["revoked_key_ids"])
            return 200, self.info()
        if method == "GET" and path == "/info":
            return 200, self.info()
        return 404, None

    def info(self):
        return {"service": "apns", "port": self.server.port, "control_port": self.server.control_port,
                "key_id": self.key_id, "team_id": self.team_id, "topics": self.topics,
                "max_concurrent_streams": self.max_streams,
                "token_update_window": self.token_window, "token_max_age": self.token_max_age,
                "revoked_key_ids": sorted(self.revoked)}


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mockcore.add_common_args(ap, 2197)
    ap.add_argument("--key-id", default="ABC123DEFG", help="kid the provider token must carry")
    ap.add_argument("--team-id", default="DEF123GHIJ", help="iss the provider token must carry")
    ap.add_argument("--public-key", default=os.path.join(HERE, "keys", "AuthKey_ABC123DEFG.pub.pem"),
                    help="PEM EC P-256 public key of the .p8 signing key")
    ap.add_argument("--topics", default="com.example.app,com.example.app.voip",
                    help="comma-separated topics the token-auth team may push to")
    ap.add_argument("--cert-topic", default=None,
                    help="topic of certificate-auth clients (default: the client cert's subject UID)")
    ap.add_argument("--max-streams", type=int, default=1000,
                    help="SETTINGS_MAX_CONCURRENT_STREAMS once authenticated")
    ap.add_argument("--token-update-window", type=float, default=1200.0,
                    help="seconds a provider token must be used before a new one (429 otherwise)")
    ap.add_argument("--token-update-scope", choices=("connection", "team"), default="connection")
    ap.add_argument("--token-max-age", type=float, default=3600.0,
                    help="seconds after iat a provider token expires (403 ExpiredProviderToken)")
    ap.add_argument("--clock-skew", type=float, default=300.0,
                    help="seconds an iat may lie in the future")
    ap.add_argument("--allow-missing-push-type", action="store_true",
                    help="treat a request without apns-push-type as alert (APNs does; default: 400)")
    return ap.parse_args(argv)


if __name__ == "__main__":
    args = parse_args(sys.argv[1:])
    sys.exit(mockcore.main(App(args), args))
