#!/usr/bin/python3
"""ACME server-side pitfalls seen in the wild (compat/acme-cert-manager.md
section 4), one test per row that applies to a server, with hand-made JWS.
Helpers and the server fixture (dev server, mount acmepki, role web, the
http-01 target on a loopback port) come from test_acme.py.

Rows already covered by test_acme.py, not repeated here:
  - Replay-Nonce on HEAD (200) and GET (204) newNonce, Cache-Control
    no-store: test_directory_and_nonces.
  - Replay-Nonce on badNonce and on every problem its tests provoke,
    type urn:ietf:params:acme:error:*, body status = HTTP status:
    expect_problem, used by test_jws_refusals (replayed and forged nonce).
  - application/pem-certificate-chain without parameters, finalize 200
    valid (not processing), newOrder 201: test_cert_manager_flow_raw.
  - JWS url mismatch (403 unauthorized) and non-jose Content-Type (415):
    test_jws_refusals.
  - Retry-After on a processing authorization: test_slow_validation_...
  - Re-POST of a valid challenge returns it: test_cert_manager_flow_raw.
  - newAccount for an EAB-bound key with a stale "externalAccountBinding"
    member answers 200: test_eab_required (the exact cert-manager#2882
    shape, a well-formed HS256 EAB JWS, is below).
  - EAB MAC key without '=', '+', '/': test_eab_required.
  - keyChange routed and working: test_key_change.
  - A failed http-01 fetch retried server-side: test_failed_attempt_retried;
    a wrong key authorization makes the challenge and authz invalid (no
    challenge left pending for ever): test_failed_challenge.
  - Wildcard without dns-01 refused as rejectedIdentifier: test_names_outside_role.
Covered by test_acme_protocol.py: Retry-After on rate limits
(test_rate_limit_answers_503_then_works), one Link line per alternate chain
(test_alternate_chains).
Not applicable: Boulder's staging/prod nonce scopes (one server here)."""

import base64
import datetime
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check, eq  # noqa: E402
import test_acme as A  # noqa: E402
import test_acme_clients as C  # noqa: E402  (its bind9 fixture)

import josepy as jose  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: E402
from cryptography.hazmat.primitives.serialization import Encoding  # noqa: E402

PROBLEM_CT = "application/problem+json"
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def problem(r, status, typ, what):
    """Stricter than test_acme.expect_problem: the Content-Type exactly
    application/problem+json (acme2certifier#85), and a fresh nonce."""
    eq(r.status, status, what + " status (%s)" % r.body[:300])
    eq(r.ctype, PROBLEM_CT, what + " Content-Type")
    j = r.json()
    eq(j.get("type"), "urn:ietf:params:acme:error:" + typ, what + " type")
    eq(j.get("status"), status, what + " body status")
    check(isinstance(j.get("detail"), str) and j["detail"], what + ": no detail")
    n = r.headers.get("replay-nonce")
    check(n and re.match(r"^[A-Za-z0-9_-]+$", n), what + ": Replay-Nonce %r" % n)
    return n


def new_account(key=None):
    key = key or ec.generate_private_key(ec.SECP256R1())
    r = A.jws_post(A.dir_json()["newAccount"], {"termsOfServiceAgreed": True}, key)
    eq(r.status, 201, "newAccount: %s" % r.body[:200])
    return key, r.headers["location"]


def pending_order(key, kid, name, answer=True):
    """newOrder for name, its authz and http-01 challenge (the key
    authorization served when answer). Returns (order_url, order, authz_url, authz, challenge)."""
    r = A.jws_post(A.dir_json()["newOrder"], {"identifiers": [{"type": "dns", "value": name}]}, key, kid=kid)
    eq(r.status, 201, "newOrder: %s" % r.body[:300])
    order_url, order = r.headers["location"], r.json()
    az_url = order["authorizations"][0]
    az = A.jws_post(az_url, None, key, kid=kid).json()
    ch = [c for c in az["challenges"] if c["type"] == "http-01"][0]
    if answer:
        thumb = jose.JWK.from_json(A.jwk_of(key)[0]).thumbprint()
        H.Http01.tokens[ch["token"]] = ch["token"] + "." + H.b64u(thumb)
    return order_url, order, az_url, az, ch


def finalize(key, kid, order, name):
    csr, _ = A.csr_for([name])
    der = x509.load_pem_x509_csr(csr).public_bytes(Encoding.DER)
    r = A.jws_post(order["finalize"], {"csr": H.b64u(der)}, key, kid=kid)
    eq(r.status, 200, "finalize: %s" % r.body[:300])
    return r.json()


# ---------------------------------------------------------------- rows


def test_nonce_and_problem_on_every_error():
    """Vault#31536, nginx-acme#200/#47, acme2certifier#111/#85/#92: every error
    answer, from the router's refusals to the ACME handlers', is
    application/problem+json with type, detail, status = HTTP status and a
    fresh Replay-Nonce; the nonces differ from each other."""
    A.srv()
    d = A.dir_json()
    key, kid = new_account()
    order_url, order, az_url, _, ch = pending_order(key, kid, "pit-err." + A.DOMAIN, answer=False)
    base = d["newOrder"].rsplit("/", 1)[0]
    nonces = set()
    cases = [
        ("GET newAccount", H.curl(d["newAccount"]), 405, "malformed"),
        ("GET order", H.curl(order_url), 405, "malformed"),
        ("GET authz", H.curl(az_url), 405, "malformed"),
        ("GET challenge", H.curl(ch["url"]), 405, "malformed"),
        ("text/plain body", A.jws_post(d["newAccount"], {}, key, ctype="text/plain"), 415, "malformed"),
        ("no body", H.curl(d["newOrder"], method="POST", body=b"",
                           headers=("Content-Type: application/jose+json",)), 400, "malformed"),
        ("badNonce", A.jws_post(d["newOrder"], {}, key, kid=kid, nonce="bm90LWEtbm9uY2U"), 400, "badNonce"),
        ("url mismatch", A.jws_post(d["newOrder"], {}, key, kid=kid, header_url=order_url), 403, "unauthorized"),
        ("unknown account", A.jws_post(d["newOrder"], {}, key, kid=base + "/account/" + "B" * 32), 400,
         "accountDoesNotExist"),
        ("finalize not ready", A.jws_post(order["finalize"], {"csr": "AA"}, key, kid=kid), 403, "orderNotReady"),
        ("outside the role", A.jws_post(d["newOrder"], {"identifiers": [{"type": "dns", "value": "x.evil.example"}]},
                                        key, kid=kid), 400, "rejectedIdentifier"),
    ]
    for what, r, status, typ in cases:
        n = problem(r, status, typ, what)
        check(n not in nonces, what + ": nonce repeated")
        nonces.add(n)
    # The nonce on the answer to HEAD newNonce of the default directory too.
    default_nonce = A.srv().url + "/v1/%s/acme/new-nonce" % A.MOUNT
    r = H.curl(default_nonce, method="HEAD")
    check(r.status == 200 and r.headers.get("replay-nonce"), "HEAD default newNonce: %r" % r)


def test_bad_nonce_answer_carries_a_usable_nonce():
    """node-acme-client#103, Posh-ACME via acme2certifier#111, cert-manager's
    badNonce retry (compat 1.6): the client retries with the nonce of the
    badNonce answer, and that retry succeeds."""
    A.srv()
    key = ec.generate_private_key(ec.SECP256R1())
    d = A.dir_json()
    used = A.get_nonce()
    r = A.jws_post(d["newAccount"], {"termsOfServiceAgreed": True}, key, nonce=used)
    eq(r.status, 201, "first use")
    r = A.jws_post(d["newAccount"], {"termsOfServiceAgreed": True}, key, nonce=used)
    fresh = problem(r, 400, "badNonce", "replayed nonce")
    r = A.jws_post(d["newAccount"], {"termsOfServiceAgreed": True}, key, nonce=fresh)
    eq(r.status, 200, "retry with the badNonce answer's nonce: %s" % r.body[:200])
    check(r.headers.get("replay-nonce") not in (None, fresh, used), "a new nonce on the retried answer")


def test_new_account_201_then_200_with_location_exact_json():
    """acme4j#39 (Venafi answered 200 and 'application/json; utf-8' for a new
    account): 201 for a new key, 200 for a known one, Location on both, and
    Content-Type exactly application/json on account and order objects."""
    A.srv()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    d = A.dir_json()
    r1 = A.jws_post(d["newAccount"], {"termsOfServiceAgreed": True, "contact": ["mailto:p@example.com"]}, key)
    eq(r1.status, 201, "new account")
    eq(r1.ctype, "application/json", "201 Content-Type")
    kid = r1.headers.get("location")
    check(kid and kid.startswith(d["newAccount"].rsplit("/", 1)[0] + "/account/"), "Location %r" % kid)
    body = r1.json()
    eq(body.get("status"), "valid", "account status")
    eq(body.get("contact"), ["mailto:p@example.com"], "contact")
    check(isinstance(body.get("orders"), str) and body["orders"].startswith(kid), "orders URL %r" % body.get("orders"))
    r2 = A.jws_post(d["newAccount"], {"termsOfServiceAgreed": True}, key)
    eq(r2.status, 200, "known key")
    eq(r2.headers.get("location"), kid, "Location on 200")
    eq(r2.ctype, "application/json", "200 Content-Type")
    eq(r2.json().get("status"), "valid", "existing account body")
    r3 = A.jws_post(d["newOrder"], {"identifiers": [{"type": "dns", "value": "pit-ct." + A.DOMAIN}]}, key, kid=kid)
    eq((r3.status, r3.ctype), (201, "application/json"), "newOrder status and Content-Type")
    r4 = A.jws_post(r3.headers["location"], None, key, kid=kid)
    eq((r4.status, r4.ctype), (200, "application/json"), "order POST-as-GET")
    eq(A.H.curl(A.directory_url()).ctype, "application/json", "directory Content-Type")


def test_post_as_get_only_on_resources():
    """acme4j#85, boulder#4251: every resource answers POST-as-GET; a plain
    GET is a 405 problem with a nonce, never the Vault envelope (the orders
    list and keyChange included)."""
    A.srv()
    key, kid = new_account()
    name = "pit-pag." + A.DOMAIN
    order_url, order, az_url, _, ch = pending_order(key, kid, name)
    eq(A.jws_post(ch["url"], {}, key, kid=kid).json()["status"], "valid", "challenge")
    fin = finalize(key, kid, order, name)
    for what, url in (("account", kid), ("order", order_url), ("authz", az_url), ("challenge", ch["url"]),
                      ("certificate", fin["certificate"]), ("orders", kid + "/orders")):
        r = A.jws_post(url, None, key, kid=kid)
        eq(r.status, 200, "POST-as-GET %s: %s" % (what, r.body[:200]))
        check(r.headers.get("replay-nonce"), "nonce on POST-as-GET %s" % what)
        r = H.curl(url)
        problem(r, 405, "malformed", "plain GET " + what)
    problem(H.curl(A.dir_json()["keyChange"]), 405, "malformed", "plain GET keyChange")


def test_processing_challenge_has_retry_after_and_repost_returns_it():
    """acme.sh#2939 / boulder#6700 (processing without Retry-After) and
    compat 1.7 (re-POST of a processing challenge must not be malformed,
    cert-manager turns malformed into expired)."""
    A.srv()
    key, kid = new_account()
    name = "pit-proc." + A.DOMAIN
    order_url, order, az_url, _, ch = pending_order(key, kid, name)
    H.Http01.delays[ch["token"]] = 5  # past the 3 s the server waits inside the POST
    t0 = time.time()
    r = A.jws_post(ch["url"], {}, key, kid=kid)
    eq((r.status, r.json().get("status")), (200, "processing"), "challenge POST on a slow target")
    check(re.match(r"^\d+$", r.headers.get("retry-after", "")), "Retry-After on processing: %r" % r.headers)
    r2 = A.jws_post(ch["url"], {}, key, kid=kid)
    eq(r2.status, 200, "re-POST of a processing challenge: %s" % r2.body[:300])
    check(r2.json().get("status") in ("processing", "valid"), "re-POST status %r" % r2.json().get("status"))
    eq(r2.json().get("url"), ch["url"], "re-POST returns the challenge")
    r3 = A.jws_post(order_url, None, key, kid=kid)
    eq(r3.json().get("status"), "pending", "order while the challenge is processing")
    deadline = t0 + 25
    status = None
    while time.time() < deadline:
        status = A.jws_post(ch["url"], None, key, kid=kid).json().get("status")
        if status not in ("pending", "processing"):
            break
        time.sleep(1)
    eq(status, "valid", "challenge once the slow target answered")
    eq(A.jws_post(ch["url"], {}, key, kid=kid).json().get("status"), "valid", "re-POST of a valid challenge")
    H.Http01.delays.pop(ch["token"], None)


def _times(obj, where, out):
    for k in ("expires", "validated", "notBefore", "notAfter"):
        if k in obj:
            out.append(("%s.%s" % (where, k), obj[k]))


def test_timestamps_rfc3339_never_empty():
    """Go's encoding/json rejects "" for time.Time: every timestamp of order,
    authz and challenge is RFC 3339 or absent, before and after validation;
    a valid challenge carries validated."""
    A.srv()
    key, kid = new_account()
    name = "pit-time." + A.DOMAIN
    order_url, order, az_url, az, ch = pending_order(key, kid, name)
    seen = []
    _times(order, "order", seen)
    _times(az, "authz", seen)
    for c in az["challenges"]:
        _times(c, "pending " + c["type"], seen)
    A.jws_post(ch["url"], {}, key, kid=kid)
    az2 = A.jws_post(az_url, None, key, kid=kid).json()
    eq(az2["status"], "valid", "authz")
    _times(az2, "valid authz", seen)
    vch = [c for c in az2["challenges"] if c["type"] == "http-01"][0]
    check("validated" in vch, "valid challenge without validated: %r" % vch)
    for c in az2["challenges"]:
        _times(c, "valid-authz " + c["type"], seen)
    fin = finalize(key, kid, order, name)
    _times(fin, "valid order", seen)
    for where, v in seen:
        check(isinstance(v, str) and RFC3339.match(v), "%s = %r is not RFC 3339" % (where, v))
        datetime.datetime.fromisoformat(v.replace("Z", "+00:00"))
    check(any(w == "order.expires" for w, _ in seen) and any(w == "authz.expires" for w, _ in seen),
          "expires missing: %r" % seen)


def eab_jws(kid_eab, mac_key_b64, url, account_key):
    """An External Account Binding as cert-manager builds it: HS256, no
    nonce, payload the account JWK (RFC 8555 7.3.4)."""
    prot = H.b64u(json.dumps({"alg": "HS256", "kid": kid_eab, "url": url}).encode())
    payload = H.b64u(json.dumps(A.jwk_of(account_key)[0]).encode())
    mac = base64.urlsafe_b64decode(mac_key_b64 + "=" * (-len(mac_key_b64) % 4))
    sig = hmac.new(mac, (prot + "." + payload).encode(), hashlib.sha256).digest()
    return {"protected": prot, "payload": payload, "signature": H.b64u(sig)}


def test_eab_resent_for_bound_key_and_key_encoding():
    """cert-manager#2882 (Sectigo refused a re-sent EAB for an existing
    account) and #2897 (MAC keys unpadded base64url): the bound key gets 200
    + its Location although the resent EAB's key id is consumed, and even
    with a wrong MAC; the MAC key decodes as unpadded base64url."""
    s = A.srv()
    s.ok("POST", A.MOUNT + "/config/acme", {"eab_policy": "new-account-required"})
    try:
        eab = s.data("POST", A.MOUNT + "/roles/%s/acme/new-eab" % A.ROLE)
        check(re.match(r"^[A-Za-z0-9_-]+$", eab["key"]), "MAC key %d chars not base64url" % len(eab["key"]))
        check(len(eab["key"]) % 4 != 1, "impossible base64 length")
        mac = base64.urlsafe_b64decode(eab["key"] + "=" * (-len(eab["key"]) % 4))
        check(len(mac) >= 32, "MAC key of %d bytes" % len(mac))
        d = A.dir_json()
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        body = {"termsOfServiceAgreed": True,
                "externalAccountBinding": eab_jws(eab["id"], eab["key"], d["newAccount"], key)}
        r = A.jws_post(d["newAccount"], body, key)
        eq(r.status, 201, "account with EAB: %s" % r.body[:200])
        kid = r.headers["location"]
        # The same EAB again (its key id now consumed): 200 before EAB is looked at.
        r = A.jws_post(d["newAccount"], body, key)
        eq((r.status, r.headers.get("location")), (200, kid), "resent EAB for the bound key: %s" % r.body[:200])
        wrong = dict(body, externalAccountBinding=eab_jws(eab["id"], H.b64u(os.urandom(32)), d["newAccount"], key))
        r = A.jws_post(d["newAccount"], wrong, key)
        eq((r.status, r.headers.get("location")), (200, kid), "wrong-MAC EAB for the bound key")
        # A new key with the consumed EAB is refused.
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        r = A.jws_post(d["newAccount"], dict(body, externalAccountBinding=eab_jws(eab["id"], eab["key"],
                                                                                 d["newAccount"], other)), other)
        problem(r, 403, "unauthorized", "consumed EAB for a new key")
    finally:
        s.ok("POST", A.MOUNT + "/config/acme", {"eab_policy": "not-required"})


def test_certificate_not_before_not_in_the_future():
    """boulder#8012 / step-ca#927 (clock skew): the leaf is valid from the
    moment it is issued on a client whose clock is behind; NotBefore is
    not after the time of the finalize request."""
    A.srv()
    key, kid = new_account()
    name = "pit-nb." + A.DOMAIN
    _, order, _, _, ch = pending_order(key, kid, name)
    eq(A.jws_post(ch["url"], {}, key, kid=kid).json()["status"], "valid", "challenge")
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    fin = finalize(key, kid, order, name)
    chain = A.jws_post(fin["certificate"], None, key, kid=kid).text
    leaf = x509.load_pem_x509_certificate(A.pems(chain)[0].encode())
    nb = leaf.not_valid_before.replace(tzinfo=datetime.timezone.utc)
    check(nb <= before, "NotBefore %s after the request (%s)" % (nb, before))
    check(before - nb <= datetime.timedelta(hours=2), "NotBefore %s backdated too far" % nb)


def test_dns01_record_published_late_is_retried():
    """cert-manager#7834: the client's self-check passed but the CA's
    resolver does not see the TXT record yet. The first lookup finds none;
    the server retries (RFC 8555 8.2) instead of failing the challenge, and
    the record published a moment later validates it."""
    s = A.srv()
    port, secret, _ = C.bind9()
    key, kid = new_account()
    name = "pit-dns." + A.DOMAIN
    r = A.jws_post(A.dir_json()["newOrder"], {"identifiers": [{"type": "dns", "value": name}]}, key, kid=kid)
    eq(r.status, 201, "newOrder")
    az_url = r.json()["authorizations"][0]
    az = A.jws_post(az_url, None, key, kid=kid).json()
    ch = [c for c in az["challenges"] if c["type"] == "dns-01"][0]
    thumb = H.b64u(jose.JWK.from_json(A.jwk_of(key)[0]).thumbprint())
    txt = H.b64u(hashlib.sha256((ch["token"] + "." + thumb).encode()).digest())
    added = []

    def publish():
        # Only once the server has asked bind9 for the record (and found none).
        end = time.time() + 15
        while time.time() < end and ("_acme-challenge." + name) not in C.read(C.state["bind_log"]):
            time.sleep(0.1)
        time.sleep(0.2)
        p = subprocess.run(["nsupdate", "-y", "hmac-sha256:%s:%s" % (C.TSIG_NAME, secret)],
                           input="server 127.0.0.1 %d\nupdate add _acme-challenge.%s. 5 TXT \"%s\"\nsend\n"
                           % (port, name, txt), capture_output=True, text=True, timeout=20)
        added.append((p.returncode, p.stderr))

    s.ok("POST", A.MOUNT + "/config/acme", {"dns_resolver": "127.0.0.1:%d" % port})
    try:
        t = threading.Thread(target=publish)
        t.start()
        r = A.jws_post(ch["url"], {}, key, kid=kid)
        t.join()
        eq(added, [(0, "")], "nsupdate")
        eq(r.status, 200, "challenge POST: %s" % r.body[:300])
        check(r.json()["status"] in ("processing", "valid"), "challenge after a failed lookup: %r" % r.json())
        deadline = time.time() + 20
        status = r.json()["status"]
        while status == "processing" and time.time() < deadline:
            time.sleep(1)
            status = A.jws_post(ch["url"], None, key, kid=kid).json()["status"]
        eq(status, "valid", "challenge once the record is visible")
    finally:
        s.ok("POST", A.MOUNT + "/config/acme", {"dns_resolver": ""})


if __name__ == "__main__":
    H.main(globals())
