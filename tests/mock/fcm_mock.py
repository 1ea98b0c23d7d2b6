#!/usr/bin/python3
"""fcm_mock.py - a strict mock of Google's OAuth2 token endpoint (service-account JWT bearer
grant, RS256) and of the FCM HTTP v1 send endpoint, over TLS with HTTP/2 and HTTP/1.1 (ALPN), for
the platypus tests. It checks the assertion and the message the way Google does and answers with
Google's error bodies. Tests steer it and read what it received through a plain-HTTP/1.1 JSON
control port. See README.md in this folder.

Run with /usr/bin/python3 (Debian's python3-h2 and python3-cryptography)."""

import argparse
import json
import os
import re
import secrets
import sys
import time
import urllib.parse

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mockcore  # noqa: E402
from mockcore import json_response, jwt_peek, jwt_split, now_ms  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SCOPES_OK = ("https://www.googleapis.com/auth/firebase.messaging",
             "https://www.googleapis.com/auth/cloud-platform")
SEND_RE = re.compile(r"^/v1/projects/([^/]+)/messages:send$")
TOKEN_RE = re.compile(r"^[A-Za-z0-9_:\-]+$")
DURATION_RE = re.compile(r"^([0-9]+)(\.[0-9]{1,9})?s$")
MAX_TTL = 28 * 24 * 3600
MAX_PAYLOAD = 4096
FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
# FCM errorCode -> (HTTP status, Google status, message)
ERRORS = {
    "INVALID_ARGUMENT": (400, "INVALID_ARGUMENT", "Request contains an invalid argument."),
    "UNREGISTERED": (404, "NOT_FOUND", "Requested entity was not found."),
    "SENDER_ID_MISMATCH": (403, "PERMISSION_DENIED", "SenderId mismatch"),
    "QUOTA_EXCEEDED": (429, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Send requests'."),
    "UNAVAILABLE": (503, "UNAVAILABLE", "The service is currently unavailable."),
    "INTERNAL": (500, "INTERNAL", "Internal error encountered."),
    "THIRD_PARTY_AUTH_ERROR": (401, "UNAUTHENTICATED", "Auth error from APNS or Web Push Service"),
}
UNAUTH_MISSING = ("Request is missing required authentication credential. Expected OAuth 2 access "
                  "token, login cookie or other valid authentication credential. See "
                  "https://developers.google.com/identity/sign-in/web/devconsole-project.")
UNAUTH_INVALID = ("Request had invalid authentication credentials. Expected OAuth 2 access token, "
                  "login cookie or other valid authentication credential. See "
                  "https://developers.google.com/identity/sign-in/web/devconsole-project.")
BAD_TIMES = ("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
             "timeframe. Check your iat and exp values in the JWT claim.")

# The FCM v1 Message schema (field -> kind), proto3 JSON: both snake_case and lowerCamelCase
# names are accepted. Kinds: "str", "bool", "map" (string -> string), "struct" (any JSON
# object), "duration", "enum:A|B", or a nested schema dict.
NOTIFICATION = {"title": "str", "body": "str", "image": "str"}
ANDROID_NOTIFICATION = {
    "title": "str", "body": "str", "icon": "str", "color": "str", "sound": "str", "tag": "str",
    "click_action": "str", "body_loc_key": "str", "body_loc_args": "strlist",
    "title_loc_key": "str", "title_loc_args": "strlist", "channel_id": "str", "ticker": "str",
    "sticky": "bool", "event_time": "str", "local_only": "bool",
    "notification_priority": "enum:PRIORITY_UNSPECIFIED|PRIORITY_MIN|PRIORITY_LOW|PRIORITY_DEFAULT|PRIORITY_HIGH|PRIORITY_MAX",
    "default_sound": "bool", "default_vibrate_timings": "bool", "default_light_settings": "bool",
    "vibrate_timings": "strlist", "visibility": "enum:VISIBILITY_UNSPECIFIED|PRIVATE|PUBLIC|SECRET",
    "notification_count": "int", "light_settings": "struct", "image": "str", "bypass_proxy_notification": "bool",
    "proxy": "enum:PROXY_UNSPECIFIED|ALLOW|DENY|IF_PRIORITY_LOWERED",
}
FCM_OPTIONS = {"analytics_label": "str"}
ANDROID = {"collapse_key": "str", "priority": "enum:NORMAL|HIGH", "ttl": "duration",
           "restricted_package_name": "str", "data": "map", "notification": ANDROID_NOTIFICATION,
           "fcm_options": FCM_OPTIONS, "direct_boot_ok": "bool",
           "bandwidth_constrained_ok": "bool", "restricted_satellite_ok": "bool"}
APNS = {"headers": "map", "payload": "struct", "fcm_options": {"analytics_label": "str", "image": "str"},
        "live_activity_token": "str"}
WEBPUSH = {"headers": "map", "data": "map", "notification": "struct",
           "fcm_options": {"link": "str", "analytics_label": "str"}}
MESSAGE = {"name": "str", "data": "map", "notification": NOTIFICATION, "android": ANDROID,
           "webpush": WEBPUSH, "apns": APNS, "fcm_options": FCM_OPTIONS, "token": "str",
           "topic": "str", "condition": "str"}
RESERVED_DATA_KEYS = ("from", "notification", "message_type")


def camel(name):
    head, *rest = name.split("_")
    return head + "".join(w.title() for w in rest)


class SchemaError(Exception):
    """A request the JSON-to-proto layer refuses: 400 INVALID_ARGUMENT with a google.rpc.BadRequest
    detail and no FcmError (what Google answers for unknown fields and wrong value types)."""

    def __init__(self, field, description):
        super().__init__(description)
        self.field = field
        self.description = description


class FcmReject(Exception):
    def __init__(self, code, message=None, field=None, headers=None):
        super().__init__(code)
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or []


def type_name(v):
    return {str: "TYPE_STRING", bool: "TYPE_BOOL", int: "TYPE_INT64", float: "TYPE_DOUBLE",
            dict: "TYPE_MESSAGE", list: "TYPE_LIST", type(None): "TYPE_NULL"}.get(type(v), "?")


def check_schema(obj, schema, where):
    if not isinstance(obj, dict):
        raise SchemaError(where, "Invalid value at '%s', %s" % (where, json.dumps(obj)))
    names = {}
    for f in schema:
        names[f] = f
        names[camel(f)] = f
    seen = set()
    for k, v in obj.items():
        f = names.get(k)
        if f is None:
            raise SchemaError(where, "Invalid JSON payload received. Unknown name \"%s\" at '%s': "
                              "Cannot find field." % (k, where))
        if f in seen:
            raise SchemaError(where, "Invalid JSON payload received. Duplicate field \"%s\"." % k)
        seen.add(f)
        kind = schema[f]
        path = "%s.%s" % (where, f) if where else f
        if v is None:
            continue
        if isinstance(kind, dict):
            check_schema(v, kind, path)
        elif kind == "str" or kind == "duration" or kind.startswith("enum:"):
            if not isinstance(v, str):
                raise SchemaError(path, "Invalid value at '%s' (%s), %s" % (path, "TYPE_STRING"
                                  if kind != "duration" else "type.googleapis.com/google.protobuf.Duration",
                                  json.dumps(v)))
            if kind.startswith("enum:") and v not in kind[5:].split("|"):
                raise SchemaError(path, "Invalid value at '%s' (%s), \"%s\"" % (path, "TYPE_ENUM", v))
            if kind == "duration":
                m = DURATION_RE.match(v)
                if not m:
                    raise SchemaError(path, "Invalid value at '%s' (type.googleapis.com/google.protobuf"
                                      ".Duration), Field '%s', Illegal duration format; duration must "
                                      "end with 's'" % (path, path))
        elif kind == "bool":
            if not isinstance(v, bool):
                raise SchemaError(path, "Invalid value at '%s' (TYPE_BOOL), %s" % (path, json.dumps(v)))
        elif kind == "int":
            if isinstance(v, bool) or not isinstance(v, int):
                raise SchemaError(path, "Invalid value at '%s' (TYPE_INT32), %s" % (path, json.dumps(v)))
        elif kind == "strlist":
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                raise SchemaError(path, "Invalid value at '%s' (TYPE_STRING), %s" % (path, json.dumps(v)))
        elif kind == "struct":
            if not isinstance(v, dict):
                raise SchemaError(path, "Invalid value at '%s' (type.googleapis.com/google.protobuf."
                                  "Struct), %s" % (path, json.dumps(v)))
        elif kind == "map":
            if not isinstance(v, dict):
                raise SchemaError(path, "Invalid value at '%s' (%s), %s" % (path, "TYPE_MAP", json.dumps(v)))
            for i, (mk, mv) in enumerate(v.items()):
                if not isinstance(mv, str):
                    p = "%s[%d].value" % (path, i)
                    raise SchemaError(p, "Invalid value at '%s' (TYPE_STRING), %s" % (p, json.dumps(mv)))


def fcm_error(code, message=None, field=None, headers=None, details_fcm=True):
    status, gstatus, default = ERRORS[code]
    err = {"code": status, "message": message or default, "status": gstatus}
    details = []
    if details_fcm:
        details.append({"@type": FCM_ERROR, "errorCode": code})
    if field:
        details.append({"@type": BAD_REQUEST, "fieldViolations": [
            {"field": field, "description": message or default}]})
    if details:
        err["details"] = details
    return json_response(status, {"error": err}, headers, code)


class App:
    HTTP1 = True
    WANTS_CLIENT_CERT = False

    def __init__(self, args):
        self.args = args
        with open(args.service_account) as f:
            self.sa = json.load(f)
        self.client_email = self.sa["client_email"]
        self.key_id = self.sa.get("private_key_id")
        key = serialization.load_pem_private_key(self.sa["private_key"].encode(), None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise SystemExit("the service account's private_key must be RSA")
        self.public_key = key.public_key()
        self.project = args.project or self.sa["project_id"]
        self.token_uri = args.token_uri
        self.lifetime = args.token_lifetime
        self.grants = []
        self.reset()

    def reset(self):
        self.dead = set()
        self.token_project = {}   # registration token -> the project it belongs to
        self.access = {}          # access token -> expiry (unix time)
        self.grants = []

    def started(self, port):
        if not self.token_uri:
            self.token_uri = "https://%s:%d/token" % (self.args.host, port)
        if self.args.write_service_account:
            sa = dict(self.sa)
            sa["token_uri"] = self.token_uri
            tmp = self.args.write_service_account + ".tmp"
            with open(tmp, "w") as f:
                json.dump(sa, f, indent=2)
            os.replace(tmp, self.args.write_service_account)

    def initial_max_streams(self, conn):
        return self.args.max_streams

    def connection_info(self, conn):
        return {}

    def connection_closed(self, conn):
        pass

    def answered(self, req, resp):
        pass

    # --- requests
    def handle(self, req, extra):
        path = urllib.parse.urlsplit(req.path or "").path
        req.facts = {"endpoint": None}
        if path == urllib.parse.urlsplit(self.token_uri).path:
            req.facts["endpoint"] = "token"
            return self.token(req, extra)
        m = SEND_RE.match(path)
        if m:
            req.facts["endpoint"] = "send"
            return self.send(req, extra, m.group(1))
        return json_response(404, {"error": {"code": 404, "message": "Not Found: %s" % path,
                                             "status": "NOT_FOUND"}}, reason="NOT_FOUND")

    @staticmethod
    def grant_error(error, description, status=400):
        return json_response(status, {"error": error, "error_description": description}, reason=error)

    def token(self, req, extra):
        grant = {"time": time.time(), "connection": req.conn.id, "outcome": None}
        resp = self._token(req, extra, grant)
        grant["status"] = resp.status
        grant["outcome"] = resp.reason or "granted"
        self.grants.append(grant)
        extra["grant"] = grant
        return resp

    def _token(self, req, extra, grant):
        if req.method != "POST":
            return json_response(405, {"error": "invalid_request",
                                       "error_description": "POST required"}, reason="invalid_request")
        ctype = (req.header("content-type") or "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            return self.grant_error("invalid_request", "Bad Request: content type must be "
                                    "application/x-www-form-urlencoded")
        try:
            form = urllib.parse.parse_qs(req.body.decode("ascii"), keep_blank_values=True,
                                         strict_parsing=True)
        except (UnicodeDecodeError, ValueError):
            return self.grant_error("invalid_request", "Bad Request")
        if any(len(v) != 1 for v in form.values()):
            return self.grant_error("invalid_request", "Bad Request: repeated parameter")
        gt = form.get("grant_type", [None])[0]
        if gt != GRANT_TYPE:
            return self.grant_error("unsupported_grant_type", "Invalid grant_type: %s" % (gt or ""))
        assertion = form.get("assertion", [None])[0]
        if not assertion:
            return self.grant_error("invalid_request", "Missing required parameter: assertion")
        grant["jwt"] = jwt_peek(assertion)
        try:
            header, claims, signing_input, sig = jwt_split(assertion)
        except (ValueError, UnicodeDecodeError):
            return self.grant_error("invalid_grant", "Invalid JWT Signature.")
        if header.get("alg") != "RS256" or header.get("typ", "JWT") != "JWT":
            return self.grant_error("invalid_grant", "Invalid JWT Signature.")
        if "kid" in header and header["kid"] != self.key_id:
            return self.grant_error("invalid_grant", "Invalid JWT Signature.")
        try:
            self.public_key.verify(sig, signing_input, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return self.grant_error("invalid_grant", "Invalid JWT Signature.")
        if claims.get("iss") != self.client_email:
            return self.grant_error("invalid_grant", "Invalid grant: account not found")
        if claims.get("aud") != self.token_uri:
            return self.grant_error("invalid_grant", "Invalid JWT: Failed audience check. The "
                                    "expected audience is %s." % self.token_uri)
        scope = claims.get("scope")
        if not isinstance(scope, str) or not any(s in SCOPES_OK for s in scope.split(" ")):
            return self.grant_error("invalid_scope", "Invalid OAuth scope or ID token audience provided.")
        iat, exp = claims.get("iat"), claims.get("exp")
        now = time.time()
        if not all(isinstance(x, int) and not isinstance(x, bool) for x in (iat, exp)) or \
                iat > now + self.args.clock_skew or exp - iat > 3600 or exp <= now or exp <= iat:
            return self.grant_error("invalid_grant", BAD_TIMES)
        rule = self.server.faults.take("fail", req, req.facts)
        if rule is not None:
            hdrs = mockcore.retry_after_headers(rule)
            return json_response(rule["status"], {"error": rule.get("error") or "internal_failure",
                                                  "error_description": rule.get("message") or "scripted"},
                                 hdrs, rule.get("error") or "internal_failure")
        access = "ya29.mock-" + secrets.token_urlsafe(24)
        self.access[access] = now + self.lifetime
        grant["access_token"] = access
        grant["expires_in"] = self.lifetime
        return json_response(200, {"access_token": access, "expires_in": self.lifetime,
                                   "token_type": "Bearer"}, [("cache-control", "no-store")])

    def send(self, req, extra, project):
        if req.method != "POST":
            return json_response(404, {"error": {"code": 404, "message": "Method not found.",
                                                 "status": "NOT_FOUND"}}, reason="NOT_FOUND")
        auth = req.header("authorization")
        www = [("www-authenticate", 'Bearer realm="https://accounts.google.com/"')]
        if auth is None:
            return json_response(401, {"error": {"code": 401, "message": UNAUTH_MISSING,
                                                 "status": "UNAUTHENTICATED"}}, www, "UNAUTHENTICATED")
        scheme, _, tok = auth.partition(" ")
        extra["access_token"] = tok.strip()
        exp = self.access.get(tok.strip()) if scheme.lower() == "bearer" else None
        if exp is None or exp <= time.time():
            extra["access_token_valid"] = False
            return self.unauthenticated()
        extra["access_token_valid"] = True
        if project != self.project:
            return fcm_error("SENDER_ID_MISMATCH")
        try:
            msg = self.validate(req)
        except SchemaError as e:
            return json_response(400, {"error": {
                "code": 400, "message": e.description, "status": "INVALID_ARGUMENT",
                "details": [{"@type": BAD_REQUEST, "fieldViolations": [
                    {"field": e.field, "description": e.description}]}]}}, reason="INVALID_ARGUMENT")
        except FcmReject as e:
            return fcm_error(e.code, e.message, e.field, e.headers)
        token = msg.get("token")
        extra["fcm_token"] = token
        req.facts["token"] = token
        if token is not None:
            other = self.token_project.get(token)
            if other is not None and other != self.project:
                return fcm_error("SENDER_ID_MISMATCH")
        rule = self.server.faults.take("fail", req, req.facts)
        if rule is not None and rule["code"] == "UNAUTHENTICATED":
            # As Google refuses an access token it no longer honours (revoked credentials, a
            # disabled service account): 401 without an FcmError, whatever the token.
            return self.unauthenticated()
        if rule is not None:
            hdrs = mockcore.retry_after_headers(rule)
            return fcm_error(rule["code"], rule.get("message"), None, hdrs)
        if token is not None and token in self.dead:
            return fcm_error("UNREGISTERED")
        if req.validate_only:
            name = "projects/%s/messages/fake_message_id" % self.project
        else:
            name = "projects/%s/messages/0:%d%%%s" % (self.project, now_ms(), secrets.token_hex(8))
        return json_response(200, {"name": name})

    @staticmethod
    def unauthenticated():
        return json_response(401, {"error": {"code": 401, "message": UNAUTH_INVALID,
                                             "status": "UNAUTHENTICATED"}},
                             [("www-authenticate", 'Bearer realm="https://accounts.google.com/", '
                               'error="invalid_token"')], "UNAUTHENTICATED")

    def validate(self, req):
        ctype = (req.header("content-type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise SchemaError("", "Invalid JSON payload received. Unexpected token.")
        try:
            body = json.loads(req.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise SchemaError("", "Invalid JSON payload received. Unexpected token.")
        check_schema(body, {"message": MESSAGE, "validate_only": "bool"}, "")
        req.validate_only = bool(body.get("validate_only") or body.get("validateOnly"))
        msg = body.get("message")
        if not isinstance(msg, dict):
            raise FcmReject("INVALID_ARGUMENT", "Request contains an invalid argument.", "message")
        norm = {}
        for k, v in msg.items():
            norm[{camel(f): f for f in MESSAGE}.get(k, k)] = v
        targets = [t for t in ("token", "topic", "condition") if norm.get(t) is not None]
        if len(targets) != 1:
            raise FcmReject("INVALID_ARGUMENT", "Exactly one of token, topic or condition must be "
                            "specified.", "message")
        if "token" in targets:
            t = norm["token"]
            if len(t) < self.args.min_token_length or not TOKEN_RE.match(t):
                raise FcmReject("INVALID_ARGUMENT", "The registration token is not a valid FCM "
                                "registration token", "message.token")
        android = norm.get("android") or {}
        a = {}
        for k, v in android.items():
            a[{camel(f): f for f in ANDROID}.get(k, k)] = v
        ttl = a.get("ttl")
        if ttl is not None:
            m = DURATION_RE.match(ttl)
            if float(m.group(1) + (m.group(2) or "")) > MAX_TTL:
                raise FcmReject("INVALID_ARGUMENT", "Invalid value for ttl: exceeds 28 days",
                                "message.android.ttl")
        size = 0
        for data in (norm.get("data"), a.get("data")):
            for k, v in (data or {}).items():
                if k in RESERVED_DATA_KEYS or k.startswith("google.") or k.startswith("gcm."):
                    raise FcmReject("INVALID_ARGUMENT", "Invalid data payload key: %s" % k, "message.data")
                size += len(k.encode()) + len(v.encode())
        for n in (norm.get("notification"), a.get("notification")):
            for k in ("title", "body"):
                v = (n or {}).get(k)
                if isinstance(v, str):
                    size += len(v.encode())
        if size > MAX_PAYLOAD:
            raise FcmReject("INVALID_ARGUMENT", "Message is too big (%d bytes of payload, at most "
                            "%d)" % (size, MAX_PAYLOAD), "message")
        return norm

    # --- control
    def check_fail_rule(self, body):
        endpoint = body.get("endpoint", "send")
        rule = dict(mockcore.retry_after_rule(body), count=body.get("count", 1),
                    message=body.get("message"), connection=body.get("connection"),
                    match=dict(body.get("match") or {}, endpoint=endpoint))
        if endpoint == "send":
            code = body.get("code") or body.get("reason")
            if code not in ERRORS and code != "UNAUTHENTICATED":
                raise ValueError("code must be one of %s, UNAUTHENTICATED" % ", ".join(ERRORS))
            rule["code"] = code
            rule["status"] = ERRORS[code][0] if code in ERRORS else 401
        elif endpoint == "token":
            rule["status"] = int(body.get("status", 400))
            rule["error"] = body.get("error", "invalid_grant")
        else:
            raise ValueError("endpoint must be send or token")
        return rule

    async def control(self, method, path, query, body):
        if method == "POST" and path == "/dead":
            for t in body.get("tokens") or [body["token"]]:
                self.dead.add(t)
            return 200, {"ok": True}
        if method == "POST" and path == "/alive":
            for t in body.get("tokens") or [body["token"]]:
                self.dead.discard(t)
            return 200, {"ok": True}
        if method == "POST" and path == "/register":
            # {"token": ..., "project": ...}: a token of another project -> SENDER_ID_MISMATCH
            self.token_project[body["token"]] = body["project"]
            return 200, {"ok": True}
        if method == "GET" and path == "/grants":
            want = int(query.get("wait", 0))
            if want:
                await self.server.recorder.wait(lambda: len(self.grants) >= want,
                                                float(query.get("timeout", 5)))
            return 200, {"grants": self.grants}
        if method == "POST" and path == "/expire":
            # Expire access tokens now (all, or {"tokens": [...]}) to test the 401 -> refresh path.
            ts = body.get("tokens") or list(self.access)
            for t in ts:
                if t in self.access:
                    self.access[t] = 0
            return 200, {"expired": len(ts)}
        if method == "POST" and path == "/settings":
            if "token_lifetime" in body:
                self.lifetime = int(body["token_lifetime"])
            if "max_concurrent_streams" in body:
                self.args.max_streams = int(body["max_concurrent_streams"])
                for p in self.server.connections.values():
                    p.update_max_streams(self.args.max_streams)
            return 200, self.info()
        if method == "GET" and path == "/info":
            return 200, self.info()
        return 404, None

    def info(self):
        return {"service": "fcm", "port": self.server.port, "control_port": self.server.control_port,
                "project": self.project, "client_email": self.client_email,
                "token_uri": self.token_uri, "token_lifetime": self.lifetime,
                "max_concurrent_streams": self.args.max_streams}


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mockcore.add_common_args(ap, 8444)
    ap.add_argument("--service-account", default=os.path.join(HERE, "keys", "service-account.json"),
                    help="the service-account JSON whose key signs the assertions")
    ap.add_argument("--write-service-account", metavar="FILE",
                    help="write a copy of the service account with token_uri set to this mock")
    ap.add_argument("--project", help="project id (default: the service account's project_id)")
    ap.add_argument("--token-uri", help="the aud an assertion must carry (default "
                    "https://HOST:PORT/token of this mock)")
    ap.add_argument("--token-lifetime", type=int, default=3599, help="expires_in of access tokens")
    ap.add_argument("--clock-skew", type=float, default=60.0, help="seconds iat may lie ahead")
    ap.add_argument("--max-streams", type=int, default=100, help="SETTINGS_MAX_CONCURRENT_STREAMS")
    ap.add_argument("--min-token-length", type=int, default=32,
                    help="shortest registration token accepted")
    return ap.parse_args(argv)


if __name__ == "__main__":
    args = parse_args(sys.argv[1:])
    sys.exit(mockcore.main(App(args), args))
