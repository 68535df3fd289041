"""Test doubles for the Kubernetes and JWT/OIDC auth tests (not a test file).

- TestCA: a throwaway CA and a server certificate for 127.0.0.1/localhost.
- Signing helpers: compact JWS with RS*/PS*/ES*/EdDSA keys, JWKs, and the
  hostile forms (alg "none", HS256 keyed with a public key's PEM).
- FakeServer: an HTTPS server in a thread of the test process with a
  handler function per (method, path); it records every request.
- FakeKubeAPI: the TokenReview endpoint of a Kubernetes API server.
- FakeIdP: an OpenID Provider (discovery document, JWKS, authorize, token
  endpoint with PKCE checks).
"""

import base64
import datetime
import hashlib
import hmac
import http.server
import json
import os
import secrets
import ssl
import threading
import time
import urllib.parse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils as asym_utils
from cryptography.x509.oid import NameOID
import ipaddress


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def b64u_json(obj):
    return b64u(json.dumps(obj, separators=(",", ":")).encode())


# ---------------------------------------------------------------- keys and JWS

def rsa_key(bits=2048):
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def ec_key(curve=None):
    return ec.generate_private_key(curve or ec.SECP256R1())


def ed_key():
    return ed25519.Ed25519PrivateKey.generate()


def pub_pem(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def self_signed_pem(key, cn="service-account-signer"):
    """A certificate wrapping key's public half (hvac 0.11 only passes CERTIFICATE blocks as pem_keys)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    t = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(t - datetime.timedelta(minutes=5))
            .not_valid_after(t + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


_HASH = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}


def _sign(key, alg, data):
    if alg.startswith("RS"):
        return key.sign(data, padding.PKCS1v15(), _HASH[alg[2:]]())
    if alg.startswith("PS"):
        h = _HASH[alg[2:]]
        return key.sign(data, padding.PSS(mgf=padding.MGF1(h()), salt_length=h().digest_size), h())
    if alg.startswith("ES"):
        der = key.sign(data, ec.ECDSA(_HASH[alg[2:]]()))
        r, s = asym_utils.decode_dss_signature(der)
        n = (key.curve.key_size + 7) // 8
        return r.to_bytes(n, "big") + s.to_bytes(n, "big")
    if alg == "EdDSA":
        return key.sign(data)
    raise ValueError(alg)


def sign_jwt(key, claims, alg="RS256", kid=None, header=None):
    h = {"alg": alg, "typ": "JWT"}
    if kid:
        h["kid"] = kid
    if header:
        h.update(header)
    signing_input = b64u_json(h) + "." + b64u_json(claims)
    return signing_input + "." + b64u(_sign(key, alg, signing_input.encode()))


def hmac_jwt(secret, claims, alg="HS256"):
    """The key-confusion attack: an HMAC token keyed with bytes the verifier knows (a public key PEM)."""
    signing_input = b64u_json({"alg": alg, "typ": "JWT"}) + "." + b64u_json(claims)
    mac = hmac.new(secret if isinstance(secret, bytes) else secret.encode(), signing_input.encode(),
                   hashlib.sha256).digest()
    return signing_input + "." + b64u(mac)


def none_jwt(claims):
    return b64u_json({"alg": "none", "typ": "JWT"}) + "." + b64u_json(claims) + "."


def jwk(key, kid, alg=None):
    pub = key.public_key()
    if isinstance(pub, rsa.RSAPublicKey):
        nums = pub.public_numbers()
        d = {"kty": "RSA", "n": b64u(nums.n.to_bytes((nums.n.bit_length() + 7) // 8, "big")),
             "e": b64u(nums.e.to_bytes((nums.e.bit_length() + 7) // 8, "big"))}
    elif isinstance(pub, ec.EllipticCurvePublicKey):
        nums = pub.public_numbers()
        n = (pub.curve.key_size + 7) // 8
        crv = {256: "P-256", 384: "P-384", 521: "P-521"}[pub.curve.key_size]
        d = {"kty": "EC", "crv": crv, "x": b64u(nums.x.to_bytes(n, "big")), "y": b64u(nums.y.to_bytes(n, "big"))}
    else:
        raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        d = {"kty": "OKP", "crv": "Ed25519", "x": b64u(raw)}
    d["kid"] = kid
    d["use"] = "sig"
    if alg:
        d["alg"] = alg
    return d


def now():
    return int(time.time())


# ---------------------------------------------------------------- TLS

class TestCA:
    def __init__(self, name="Sigil Test CA"):
        self.key = ec_key()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        t = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(t - datetime.timedelta(minutes=5))
                     .not_valid_after(t + datetime.timedelta(days=2))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                                    critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.pem = self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def server_files(self, directory):
        """Writes a server certificate (127.0.0.1, localhost) and key; returns (cert_path, key_path)."""
        key = ec_key()
        t = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
                .issuer_name(self.cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(t - datetime.timedelta(minutes=5))
                .not_valid_after(t + datetime.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                            x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                               critical=False)
                .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .sign(self.key, hashes.SHA256()))
        cp, kp = os.path.join(directory, "srv.pem"), os.path.join(directory, "srv.key")
        with open(cp, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(kp, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        os.chmod(kp, 0o600)
        return cp, kp


# ---------------------------------------------------------------- HTTPS server

class FakeServer:
    """HTTPS (or HTTP with tls=False) server; routes[(method, path)] = fn(req) -> (status, headers, body)."""

    def __init__(self, directory, ca=None, tls=True):
        self.routes = {}
        self.requests = []
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _do(self, method):
                u = urllib.parse.urlsplit(self.path)
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                req = {"method": method, "path": u.path, "query": dict(urllib.parse.parse_qsl(u.query)),
                       "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
                with outer.lock:
                    outer.requests.append(req)
                fn = outer.routes.get((method, u.path))
                if fn is None:
                    status, headers, out = 404, {}, b'{"error":"not found"}'
                else:
                    status, headers, out = fn(req)
                if isinstance(out, (dict, list)):
                    out = json.dumps(out).encode()
                    headers = dict(headers, **{"Content-Type": "application/json"})
                elif isinstance(out, str):
                    out = out.encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def do_GET(self):
                self._do("GET")

            def do_POST(self):
                self._do("POST")

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.scheme = "http"
        if tls:
            ca = ca or TestCA()
            cp, kp = ca.server_files(directory)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cp, kp)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        self.ca = ca
        self.port = self.httpd.server_address[1]
        self.url = "%s://127.0.0.1:%d" % (self.scheme, self.port)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def requests_to(self, path):
        with self.lock:
            return [r for r in self.requests if r["path"] == path]

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


# ---------------------------------------------------------------- Kubernetes API

class FakeKubeAPI:
    """POST /apis/authentication.k8s.io/v1/tokenreviews for tokens this 'cluster' issued."""

    REVIEW = "/apis/authentication.k8s.io/v1/tokenreviews"
    API_AUDIENCE = "https://kubernetes.default.svc.cluster.local"

    def __init__(self, directory):
        self.sa_key = rsa_key()
        self.reviewer_token = "reviewer-" + secrets.token_hex(16)
        self.deleted = set()          # uids whose service accounts were deleted
        self.uid_override = {}        # jwt -> uid the API reports (a recreated account)
        self.srv = FakeServer(directory)
        self.srv.routes[("POST", self.REVIEW)] = self._review
        self.ca_pem = self.srv.ca.pem
        self.url = self.srv.url

    def legacy_token(self, ns, name, uid, key=None):
        claims = {"iss": "kubernetes/serviceaccount",
                  "kubernetes.io/serviceaccount/namespace": ns,
                  "kubernetes.io/serviceaccount/secret.name": name + "-token-x1y2z",
                  "kubernetes.io/serviceaccount/service-account.name": name,
                  "kubernetes.io/serviceaccount/service-account.uid": uid,
                  "sub": "system:serviceaccount:%s:%s" % (ns, name)}
        return sign_jwt(key or self.sa_key, claims, "RS256", kid="sa-1")

    def projected_claims(self, ns, name, uid, aud=None, exp_in=600, iss=None):
        t = now()
        return {"aud": aud or [self.API_AUDIENCE], "exp": t + exp_in, "iat": t - 5, "nbf": t - 5,
                "iss": iss or "https://kubernetes.default.svc.cluster.local",
                "kubernetes.io": {"namespace": ns, "serviceaccount": {"name": name, "uid": uid},
                                  "pod": {"name": name + "-pod", "uid": "pod-" + uid}},
                "sub": "system:serviceaccount:%s:%s" % (ns, name)}

    def projected_token(self, ns, name, uid, aud=None, exp_in=600, key=None, iss=None):
        return sign_jwt(key or self.sa_key, self.projected_claims(ns, name, uid, aud, exp_in, iss), "RS256",
                        kid="sa-1")

    def _review(self, req):
        auth = req["headers"].get("authorization", "")
        if auth != "Bearer " + self.reviewer_token:
            return 401, {}, {"kind": "Status", "status": "Failure", "reason": "Unauthorized", "code": 401}
        spec = json.loads(req["body"])["spec"]
        tok = spec["token"]
        want = spec.get("audiences") or []
        status = {"authenticated": False, "user": {}}
        try:
            h, p, s = tok.split(".")
            signing_input = (h + "." + p).encode()
            sig = base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
            self.sa_key.public_key().verify(sig, signing_input, padding.PKCS1v15(), hashes.SHA256())
            claims = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
        except Exception:
            status["error"] = "invalid bearer token"
            return 201, {}, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "status": status}
        if "kubernetes.io" in claims:
            ns = claims["kubernetes.io"]["namespace"]
            name = claims["kubernetes.io"]["serviceaccount"]["name"]
            uid = claims["kubernetes.io"]["serviceaccount"]["uid"]
            aud = claims.get("aud") or []
            if isinstance(aud, str):
                aud = [aud]
            if claims.get("exp", 0) < now():
                status["error"] = "token has expired"
                return 201, {}, {"kind": "TokenReview", "status": status}
        else:
            ns = claims["kubernetes.io/serviceaccount/namespace"]
            name = claims["kubernetes.io/serviceaccount/service-account.name"]
            uid = claims["kubernetes.io/serviceaccount/service-account.uid"]
            aud = [self.API_AUDIENCE]
        if uid in self.deleted:
            status["error"] = "service account %s/%s has been deleted" % (ns, name)
            return 201, {}, {"kind": "TokenReview", "status": status}
        audiences = [a for a in want if a in aud] if want else [self.API_AUDIENCE]
        if want and not audiences:
            status["error"] = "token audiences %s is invalid for the target audiences %s" % (aud, want)
            return 201, {}, {"kind": "TokenReview", "status": status}
        status = {"authenticated": True, "audiences": audiences,
                  "user": {"username": "system:serviceaccount:%s:%s" % (ns, name),
                           "uid": self.uid_override.get(tok, uid),
                           "groups": ["system:serviceaccounts", "system:serviceaccounts:" + ns]}}
        return 201, {}, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "status": status}

    def reviews(self):
        return [json.loads(r["body"]) for r in self.srv.requests_to(self.REVIEW)]

    def stop(self):
        self.srv.stop()


# ---------------------------------------------------------------- OpenID Provider

class FakeIdP:
    """Discovery, JWKS, /authorize (returns the redirect) and /token (code + PKCE) of an OpenID Provider."""

    def __init__(self, directory, client_id="sigil", client_secret=None):
        self.srv = FakeServer(directory)
        self.ca_pem = self.srv.ca.pem
        self.issuer = self.srv.url
        self.client_id = client_id
        self.client_secret = client_secret or "secret-" + secrets.token_hex(8)
        self.keys = {"k1": (rsa_key(), "RS256")}
        self.active = "k1"
        self.jwks_up = True
        self.codes = {}              # code -> grant
        self.token_log = []          # what /token checked
        self.claims_extra = {}       # merged into the next ID tokens
        self.bad_nonce = False
        self.srv.routes[("GET", "/.well-known/openid-configuration")] = self._discovery
        self.srv.routes[("GET", "/jwks")] = self._jwks
        self.srv.routes[("GET", "/authorize")] = self._authorize
        self.srv.routes[("POST", "/token")] = self._token

    # keys
    def rotate(self, kid, key=None, alg="RS256"):
        self.keys[kid] = (key or rsa_key(), alg)
        self.active = kid

    def sign(self, claims, kid=None):
        kid = kid or self.active
        key, alg = self.keys[kid]
        return sign_jwt(key, claims, alg, kid=kid)

    def claims(self, sub="alice", aud=None, exp_in=300, **extra):
        t = now()
        c = {"iss": self.issuer, "sub": sub, "aud": aud if aud is not None else self.client_id,
             "iat": t - 5, "nbf": t - 5, "exp": t + exp_in, "groups": ["everyone"]}
        c.update(extra)
        return c

    # endpoints
    def _discovery(self, req):
        return 200, {}, {"issuer": self.issuer, "authorization_endpoint": self.issuer + "/authorize",
                         "token_endpoint": self.issuer + "/token", "jwks_uri": self.issuer + "/jwks",
                         "response_types_supported": ["code"], "subject_types_supported": ["public"],
                         "id_token_signing_alg_values_supported": ["RS256", "ES256"],
                         "code_challenge_methods_supported": ["S256"]}

    def _jwks(self, req):
        if not self.jwks_up:
            return 503, {}, {"error": "down"}
        return 200, {}, {"keys": [jwk(k, kid, alg) for kid, (k, alg) in self.keys.items()]}

    def _authorize(self, req):
        """Stands in for the user's browser session: logs 'user' in and redirects with a code."""
        q = req["query"]
        if q.get("client_id") != self.client_id or q.get("response_type") != "code":
            return 400, {}, {"error": "invalid_request"}
        if q.get("code_challenge_method") != "S256" or len(q.get("code_challenge", "")) != 43:
            return 400, {}, {"error": "invalid_request", "error_description": "PKCE S256 required"}
        code = "code-" + secrets.token_urlsafe(16)
        self.codes[code] = {"redirect_uri": q["redirect_uri"], "challenge": q["code_challenge"],
                            "nonce": q.get("nonce"), "scope": q.get("scope"), "user": q.get("login_hint", "alice"),
                            "used": False}
        loc = q["redirect_uri"] + ("&" if "?" in q["redirect_uri"] else "?") + urllib.parse.urlencode(
            {"code": code, "state": q["state"]})
        return 302, {"Location": loc}, ""

    def _token(self, req):
        form = dict(urllib.parse.parse_qsl(req["body"].decode()))
        auth = req["headers"].get("authorization", "")
        entry = {"form": form, "auth": auth}
        self.token_log.append(entry)
        want = "Basic " + base64.b64encode(("%s:%s" % (urllib.parse.quote(self.client_id, safe=""),
                                                        urllib.parse.quote(self.client_secret, safe=""))
                                            ).encode()).decode()
        if auth != want:
            entry["result"] = "invalid_client"
            return 401, {}, {"error": "invalid_client"}
        grant = self.codes.get(form.get("code"))
        if form.get("grant_type") != "authorization_code" or grant is None or grant["used"]:
            entry["result"] = "invalid_grant"
            return 400, {}, {"error": "invalid_grant"}
        grant["used"] = True
        if form.get("redirect_uri") != grant["redirect_uri"]:
            entry["result"] = "redirect_uri mismatch"
            return 400, {}, {"error": "invalid_grant"}
        verifier = form.get("code_verifier", "")
        if b64u(hashlib.sha256(verifier.encode()).digest()) != grant["challenge"]:
            entry["result"] = "pkce mismatch"
            return 400, {}, {"error": "invalid_grant", "error_description": "PKCE verification failed"}
        entry["result"] = "ok"
        c = self.claims(sub=grant["user"], nonce="wrong-nonce" if self.bad_nonce else grant["nonce"])
        c.update(self.claims_extra)
        return 200, {}, {"access_token": "at-" + secrets.token_hex(8), "token_type": "Bearer", "expires_in": 300,
                         "id_token": self.sign(c)}

    def stop(self):
        self.srv.stop()
