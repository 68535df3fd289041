#!/usr/bin/python3
"""ACME (RFC 8555) against the real server with real clients: python3-acme
(Debian) for the full http-01 flow with and without External Account
Binding, revocation by account key and by certificate key, deactivation;
hand-made JWS for the protocol's refusals (wrong url, replayed or unknown
nonce, alg none/HS256, kid vs jwk, Content-Type); names outside the role;
a CSR that does not match its order; the lease owned by the ACME account
revoked by the role's kill switch; and certbot standalone obtaining a
certificate that `openssl verify` accepts against Sigil's chain.

The http-01 answers are served on a loopback port set as config/acme
http01_port; identifiers are under acme.localhost, which libcurl resolves to
loopback by itself (RFC 6761 6.3)."""

import datetime
import json
import os
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check, eq  # noqa: E402

import josepy as jose  # noqa: E402
import OpenSSL  # noqa: E402
from acme import challenges, client, crypto_util, errors, messages  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils  # noqa: E402
from cryptography.hazmat.primitives.serialization import Encoding  # noqa: E402

MOUNT = "acmepki"
ROLE = "web"
DOMAIN = "acme.localhost"
state = {}


# ---------------------------------------------------------------- fixtures


def srv():
    s = H.dev_server("acme")
    if not state.get("setup"):
        state["root"], state["inter"] = H.acme_mount(s, MOUNT, ROLE, DOMAIN, http01_port=H.http01_port())
        state["setup"] = True
    return s


def directory_url(role=True):
    base = srv().url + "/v1/" + MOUNT + "/"
    return base + ("roles/%s/acme/directory" % ROLE if role else "acme/directory")


def new_client(key=None, role=True):
    key = key or jose.JWKRSA(key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    net = client.ClientNetwork(key, user_agent="sigil-test", verify_ssl=False)
    directory = client.ClientV2.get_directory(directory_url(role), net)
    return client.ClientV2(directory, net), key


def csr_for(names, key=None):
    key = key or ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return crypto_util.make_csr(pem, names), key


def solve(cl, orderr):
    for authz in orderr.authorizations:
        chall = [c for c in authz.body.challenges if isinstance(c.chall, challenges.HTTP01)][0]
        response, validation = chall.response_and_validation(cl.net.key)
        H.Http01.tokens[chall.chall.encode("token")] = validation
        cl.answer_challenge(chall, response)


def issue(cl, names, key=None):
    csr, ckey = csr_for(names, key)
    orderr = cl.new_order(csr)
    solve(cl, orderr)
    return cl.poll_and_finalize(orderr), ckey


def verify_chain(fullchain):
    """openssl verify of the leaf against Sigil's root, the intermediate untrusted."""
    if isinstance(fullchain, bytes):
        fullchain = fullchain.decode()
    d = H.tmpdir("verify")
    certs = pems(fullchain)
    paths = []
    for name, pem in (("root", state["root"]), ("leaf", certs[0]), ("chain", "".join(certs[1:]))):
        p = os.path.join(d, name + ".pem")
        with open(p, "w") as f:
            f.write(pem if pem.endswith("\n") else pem + "\n")
        paths.append(p)
    args = ["openssl", "verify", "-CAfile", paths[0]] + (["-untrusted", paths[2]] if len(certs) > 1 else [])
    r = subprocess.run(args + [paths[1]], capture_output=True, text=True)
    check(r.returncode == 0 and "OK" in r.stdout, "openssl verify: %s %s" % (r.stdout, r.stderr))


def pems(t):
    """The PEM text of each certificate in t, in order."""
    return [H.der_to_pem(der) for der in H.pem_certs(text(t))]


def text(b):
    return b.decode() if isinstance(b, bytes) else b


# ---- hand-made JWS, for what real clients never send

def jwk_of(key):
    key = getattr(key, "_wrapped", key)  # josepy's ComparableRSAKey
    if isinstance(key, rsa.RSAPrivateKey):
        return jose.JWKRSA(key=key.public_key()).to_partial_json(), "RS256"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        j = jose.JWKEC(key=key.public_key()).to_partial_json()
        return j, "ES256" if key.curve.name == "secp256r1" else "ES384"
    raw = key.public_key().public_bytes(Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": H.b64u(raw)}, "EdDSA"


def sign(key, alg, data):
    key = getattr(key, "_wrapped", key)
    if alg == "RS256":
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    if alg in ("ES256", "ES384"):
        h = hashes.SHA256() if alg == "ES256" else hashes.SHA384()
        size = 32 if alg == "ES256" else 48
        r, s = utils.decode_dss_signature(key.sign(data, ec.ECDSA(h)))
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    return key.sign(data)


def get_nonce():
    r = H.curl(directory_url().replace("directory", "new-nonce"), method="HEAD")
    eq(r.status, 200, "HEAD new-nonce")
    return r.headers["replay-nonce"]


def jws_post(url, payload, key, kid=None, nonce=None, alg=None, header_url=None, extra=None, ctype=None):
    jwk, kalg = jwk_of(key)
    prot = {"alg": alg or kalg, "nonce": nonce or get_nonce(), "url": header_url or url}
    if kid:
        prot["kid"] = kid
    else:
        prot["jwk"] = jwk
    if extra:
        prot.update(extra)
    p64 = H.b64u(json.dumps(prot).encode())
    pl64 = "" if payload is None else H.b64u(json.dumps(payload).encode())
    sig = sign(key, kalg, (p64 + "." + pl64).encode())
    body = {"protected": p64, "payload": pl64, "signature": H.b64u(sig)}
    return H.curl(url, method="POST", body=body,
                  headers=("Content-Type: " + (ctype or "application/jose+json"),))


def expect_problem(r, status, typ, what):
    eq(r.status, status, what + " status (%s)" % r.body[:300])
    check(r.ctype.startswith("application/problem+json"), what + ": content type %r" % r.ctype)
    eq(r.json()["type"], "urn:ietf:params:acme:error:" + typ, what + " type")
    eq(r.json()["status"], status, what + " body status")
    check("replay-nonce" in r.headers, what + ": no Replay-Nonce on the error")


def dir_json():
    return H.curl(directory_url()).json()


# ---------------------------------------------------------------- tests


def test_directory_and_nonces():
    d = dir_json()
    for k in ("newNonce", "newAccount", "newOrder", "revokeCert"):
        check(d[k].startswith(srv().url + "/v1/%s/roles/%s/acme/" % (MOUNT, ROLE)), "%s: %r" % (k, d[k]))
    check(d["keyChange"].endswith("/acme/key-change"), "keyChange %r" % d.get("keyChange"))
    head = H.curl(d["newNonce"], method="HEAD")
    eq(head.status, 200, "HEAD newNonce")
    get = H.curl(d["newNonce"])
    eq(get.status, 204, "GET newNonce")
    n1, n2 = head.headers.get("replay-nonce"), get.headers.get("replay-nonce")
    check(n1 and n2 and n1 != n2, "nonces %r %r" % (n1, n2))
    check("no-store" in head.headers.get("cache-control", ""), "nonce cacheable")
    # The default directory is governed by default_directory_policy (role:web here).
    check(H.curl(directory_url(role=False)).json()["newOrder"].endswith("/v1/%s/acme/new-order" % MOUNT),
          "default directory")


def test_disabled_and_forbidden_directories():
    s = srv()
    H.enable_pki(s, "acmeoff")
    r = H.curl(s.url + "/v1/acmeoff/acme/directory")
    expect_problem(r, 403, "unauthorized", "ACME disabled")
    s.ok("POST", "acmeoff/config/acme", {"enabled": True})
    r = H.curl(s.url + "/v1/acmeoff/acme/directory")
    expect_problem(r, 403, "unauthorized", "default directory forbidden")
    r = H.curl(s.url + "/v1/%s/roles/nosuch/acme/directory" % MOUNT)
    expect_problem(r, 403, "unauthorized", "role outside allowed_roles")
    cfg = s.data("GET", MOUNT + "/config/acme")
    eq(cfg["http01_port"], H.http01_port(), "config http01_port")
    eq(cfg["eab_policy"], "not-required", "config eab_policy")
    r = s.req("POST", MOUNT + "/config/acme", {"eab_policy": "sometimes"})
    H.expect_error(r, 400, "bad eab_policy")


def test_full_flow_python_acme():
    cl, key = new_client()
    regr = cl.new_account(messages.NewRegistration.from_data(email="ops@example.com",
                                                             terms_of_service_agreed=True))
    check(regr.uri and "/account/" in regr.uri, "account uri %r" % regr.uri)
    name = "www." + DOMAIN
    final, ckey = issue(cl, [name, "api." + DOMAIN])
    eq(final.body.status, messages.STATUS_VALID, "order status")
    verify_chain(final.fullchain_pem)
    leaf = x509.load_pem_x509_certificate(pems(text(final.fullchain_pem))[0].encode())
    sans = sorted(leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                  .get_values_for_type(x509.DNSName))
    eq(sans, sorted([name, "api." + DOMAIN]), "SANs")
    check(leaf.public_key().public_numbers() == ckey.public_key().public_numbers(), "leaf key is the CSR key")
    state["flow"] = (cl, key, final, ckey)
    # The certificate is stored and is a lease owned by the account.
    rec = srv().data("GET", MOUNT + "/cert/" + H.colon_serial(leaf))
    check("BEGIN CERTIFICATE" in rec["certificate"], "stored certificate")
    keys = srv().req("LIST", "sys/leases/lookup/%s/issue/%s" % (MOUNT, ROLE))
    H.expect_ok(keys, "list ACME leases")
    check(len(keys.data["keys"]) >= 1, "no lease for the ACME certificate")
    # Same key again: 200 + Location of the same account (python-acme raises ConflictError on it).
    cl2, _ = new_client(key)
    try:
        cl2.new_account(messages.NewRegistration.from_data(terms_of_service_agreed=True))
        raise H.TestFailure("existing key registered twice")
    except errors.ConflictError as e:
        eq(str(e.location) if hasattr(e, "location") else e.args[0], regr.uri, "existing account location")


def test_only_return_existing_and_account_update():
    cl, key, _, _ = state["flow"]
    d = dir_json()
    r = jws_post(d["newAccount"], {"onlyReturnExisting": True}, key.key)
    eq(r.status, 200, "onlyReturnExisting existing: %s" % r.body[:200])
    check(r.headers.get("location", "").endswith(cl.net.account.uri.rsplit("/", 1)[1]), "location")
    fresh = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    r = jws_post(d["newAccount"], {"onlyReturnExisting": True}, fresh)
    expect_problem(r, 400, "accountDoesNotExist", "onlyReturnExisting unknown key")
    kid = cl.net.account.uri
    r2 = jws_post(kid, {"contact": ["mailto:new@example.com"]}, key.key, kid=kid)
    eq(r2.status, 200, "contact update: %s" % r2.body[:200])
    eq(r2.json()["contact"], ["mailto:new@example.com"], "updated contact")
    r3 = jws_post(kid, {"contact": ["tel:+1555"]}, key.key, kid=kid)
    expect_problem(r3, 400, "unsupportedContact", "tel contact")


def test_jws_algorithms():
    d = dir_json()
    for key in (ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP384R1()),
                ed25519.Ed25519PrivateKey.generate(),
                rsa.generate_private_key(public_exponent=65537, key_size=2048)):
        r = jws_post(d["newAccount"], {"termsOfServiceAgreed": True}, key)
        eq(r.status, 201, "newAccount with %s: %s" % (jwk_of(key)[1], r.body[:200]))
        check(r.headers.get("location"), "Location on 201")
        kid = r.headers["location"]
        r = jws_post(d["newOrder"], {"identifiers": [{"type": "dns", "value": "alg." + DOMAIN}]}, key, kid=kid)
        eq(r.status, 201, "newOrder signed with %s: %s" % (jwk_of(key)[1], r.body[:200]))
        check(r.headers.get("location", "").startswith(d["newOrder"].replace("new-order", "order/")), "order Location")
        state.setdefault("kids", []).append((key, kid))


def test_jws_refusals():
    d = dir_json()
    key = ec.generate_private_key(ec.SECP256R1())
    # Wrong url in the protected header (RFC 8555 6.4).
    r = jws_post(d["newAccount"], {}, key, header_url=d["newOrder"])
    expect_problem(r, 403, "unauthorized", "url mismatch")
    # alg none and HMAC are refused (RFC 8555 6.2).
    r = jws_post(d["newAccount"], {}, key, alg="none")
    expect_problem(r, 400, "badSignatureAlgorithm", "alg none")
    r = jws_post(d["newAccount"], {}, key, alg="HS256")
    expect_problem(r, 400, "badSignatureAlgorithm", "alg HS256")
    # alg not matching the key.
    r = jws_post(d["newAccount"], {}, key, alg="RS256")
    expect_problem(r, 400, "badSignatureAlgorithm", "RS256 with an EC key")
    # Replayed nonce.
    n = get_nonce()
    r = jws_post(d["newAccount"], {"termsOfServiceAgreed": True}, key, nonce=n)
    eq(r.status, 201, "first use of a nonce: %s" % r.body[:200])
    r = jws_post(d["newAccount"], {"termsOfServiceAgreed": True}, key, nonce=n)
    expect_problem(r, 400, "badNonce", "replayed nonce")
    # Unknown / forged nonce.
    r = jws_post(d["newAccount"], {}, key, nonce="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    expect_problem(r, 400, "badNonce", "forged nonce")
    # jwk where kid is required, and both at once.
    r = jws_post(d["newOrder"], {"identifiers": [{"type": "dns", "value": "x." + DOMAIN}]}, key)
    expect_problem(r, 400, "malformed", "jwk on newOrder")
    kid = r.headers.get("location")
    r = jws_post(d["newAccount"], {}, key, extra={"kid": "http://x/"})
    expect_problem(r, 400, "malformed", "jwk and kid")
    # Content-Type must be application/jose+json.
    r = jws_post(d["newAccount"], {}, key, ctype="application/json")
    expect_problem(r, 415, "malformed", "Content-Type")
    # Not JSON, and duplicate members: problem documents with a nonce, not the router's envelope.
    r = H.curl(d["newAccount"], method="POST", body="{not json", headers=("Content-Type: application/jose+json",))
    expect_problem(r, 400, "malformed", "non-JSON body")
    r = H.curl(d["newAccount"], method="POST", body='{"protected":"e30","protected":"e30","payload":"","signature":""}',
               headers=("Content-Type: application/jose+json",))
    expect_problem(r, 400, "malformed", "duplicate JWS members")
    # Plain GET on a resource: 405 problem, not Vault's envelope (RFC 8555 6.3).
    r = H.curl(d["newOrder"])
    expect_problem(r, 405, "malformed", "GET newOrder")
    # Unknown account kid.
    r = jws_post(d["newOrder"], {"identifiers": []}, key, kid=d["newAccount"].replace("new-account", "account/" + "A" * 32))
    expect_problem(r, 400, "accountDoesNotExist", "unknown kid")
    # A bad signature.
    other = ec.generate_private_key(ec.SECP256R1())
    jwk, _ = jwk_of(key)
    prot = H.b64u(json.dumps({"alg": "ES256", "nonce": get_nonce(), "url": d["newAccount"], "jwk": jwk}).encode())
    pl = H.b64u(b"{}")
    sig = sign(other, "ES256", (prot + "." + pl).encode())
    r = H.curl(d["newAccount"], method="POST", body={"protected": prot, "payload": pl, "signature": H.b64u(sig)},
               headers=("Content-Type: application/jose+json",))
    expect_problem(r, 400, "malformed", "bad signature")
    check(kid is None, "no Location on an error")


def test_names_outside_role():
    cl, _, _, _ = state["flow"]
    csr, _ = csr_for(["www.evil.example"])
    try:
        cl.new_order(csr)
        raise H.TestFailure("order for a name outside the role accepted")
    except messages.Error as e:
        eq(e.typ, "urn:ietf:params:acme:error:rejectedIdentifier", "denied name type")
    key, kid = state["kids"][0]
    d = dir_json()
    r = jws_post(d["newOrder"], {"identifiers": [{"type": "dns", "value": "*.evil.example"}]}, key, kid=kid)
    expect_problem(r, 400, "rejectedIdentifier", "wildcard outside the role")
    r = jws_post(d["newOrder"], {"identifiers": [{"type": "dns", "value": "a*." + DOMAIN}]}, key, kid=kid)
    expect_problem(r, 400, "rejectedIdentifier", "partial-label wildcard (RFC 8555 7.1.3: only \"*.\")")
    r = jws_post(d["newOrder"], {"identifiers": [{"type": "email", "value": "a@b.c"}]}, key, kid=kid)
    expect_problem(r, 400, "unsupportedIdentifier", "email identifier")


def test_csr_not_matching_order():
    cl, _, _, _ = state["flow"]
    csr, _ = csr_for(["m1." + DOMAIN])
    orderr = cl.new_order(csr)
    solve(cl, orderr)
    other, _ = csr_for(["m1." + DOMAIN, "m2." + DOMAIN])
    orderr = orderr.update(csr_pem=other)
    try:
        cl.poll_and_finalize(orderr)
        raise H.TestFailure("CSR with an extra name accepted")
    except messages.Error as e:
        eq(e.typ, "urn:ietf:params:acme:error:badCSR", "CSR mismatch type")
    # Finalizing before the challenges are done: orderNotReady.
    csr, _ = csr_for(["m3." + DOMAIN])
    orderr = cl.new_order(csr)
    try:
        cl.finalize_order(orderr, datetime.datetime.now() + datetime.timedelta(seconds=5))
        raise H.TestFailure("finalize of a pending order accepted")
    except messages.Error as e:
        eq(e.typ, "urn:ietf:params:acme:error:orderNotReady", "pending finalize type")


def test_failed_challenge():
    cl, _, _, _ = state["flow"]
    csr, _ = csr_for(["bad." + DOMAIN])
    orderr = cl.new_order(csr)
    authz = orderr.authorizations[0]
    chall = [c for c in authz.body.challenges if isinstance(c.chall, challenges.HTTP01)][0]
    response, _ = chall.response_and_validation(cl.net.key)
    H.Http01.tokens[chall.chall.encode("token")] = "wrong-key-authorization"
    cr = cl.answer_challenge(chall, response)
    eq(cr.body.status, messages.STATUS_INVALID, "challenge status")
    eq(cr.body.error.typ, "urn:ietf:params:acme:error:incorrectResponse", "challenge error")
    authz2, _ = cl.poll(authz)
    eq(authz2.body.status, messages.STATUS_INVALID, "authz status")


def _pending_http01(cl, name):
    csr, _ = csr_for([name])
    orderr = cl.new_order(csr)
    authz = orderr.authorizations[0]
    chall = [c for c in authz.body.challenges if isinstance(c.chall, challenges.HTTP01)][0]
    response, validation = chall.response_and_validation(cl.net.key)
    token = chall.chall.encode("token")
    H.Http01.tokens[token] = validation
    return orderr, authz, chall, response, token


def test_slow_validation_answers_processing_with_retry_after():
    cl, _, _, _ = state["flow"]
    orderr, authz, chall, response, token = _pending_http01(cl, "slow." + DOMAIN)
    H.Http01.delays[token] = 5  # longer than the server waits inside the POST (3 s)
    t0 = time.time()
    cr = cl.answer_challenge(chall, response)
    took = time.time() - t0
    eq(cr.body.status.name, "processing", "challenge status while the target is slow")
    check(took < 4.5, "the POST waited %.1fs" % took)
    r = jws_post(authz.uri, None, state["flow"][1].key, kid=cl.net.account.uri)
    eq(r.status, 200, "authz poll")
    eq(r.headers.get("retry-after"), "1", "Retry-After on a processing authorization")
    eq(r.json()["status"], "pending", "authz pending while processing")
    deadline = time.time() + 20
    while time.time() < deadline:
        authz2, _ = cl.poll(authz)
        if authz2.body.status != messages.STATUS_PENDING:
            break
        time.sleep(1)
    eq(authz2.body.status, messages.STATUS_VALID, "authz after the slow target answered")
    final = cl.poll_and_finalize(orderr)
    verify_chain(final.fullchain_pem)


def test_failed_attempt_retried():
    cl, _, _, _ = state["flow"]
    orderr, authz, chall, response, token = _pending_http01(cl, "retry." + DOMAIN)
    H.Http01.failures[token] = 1  # the first fetch fails, the retry (2 s later) succeeds
    cl.answer_challenge(chall, response)
    deadline = time.time() + 20
    while time.time() < deadline:
        authz2, _ = cl.poll(authz)
        if authz2.body.status != messages.STATUS_PENDING:
            break
        time.sleep(0.5)
    eq(authz2.body.status, messages.STATUS_VALID, "authz after a retried validation")
    check(H.Http01.hits.get(token, 0) >= 2, "target fetched %r times" % H.Http01.hits.get(token))


def test_revoke_with_account_key_and_cert_key():
    cl, _, final, ckey = state["flow"]
    cert = jose.ComparableX509(OpenSSL.crypto.load_certificate(
        OpenSSL.crypto.FILETYPE_PEM, pems(text(final.fullchain_pem))[0].encode()))
    cl.revoke(cert, 4)
    try:
        cl.revoke(cert, 4)
        raise H.TestFailure("second revocation accepted")
    except messages.Error as e:
        eq(e.typ, "urn:ietf:params:acme:error:alreadyRevoked", "already revoked")
    rec = srv().data("GET", MOUNT + "/cert/" + H.colon_serial(
        x509.load_pem_x509_certificate(pems(text(final.fullchain_pem))[0].encode())))
    check(rec.get("revocation_time", 0) > 0, "not revoked by the account: %r" % rec)
    # Revocation with the certificate's own key (jwk), from a client without an account.
    final2, ckey2 = issue(cl, ["k." + DOMAIN])
    pem2 = pems(text(final2.fullchain_pem))[0]
    der2 = x509.load_pem_x509_certificate(pem2.encode()).public_bytes(Encoding.DER)
    d = dir_json()
    stranger = ec.generate_private_key(ec.SECP256R1())
    r = jws_post(d["revokeCert"], {"certificate": H.b64u(der2), "reason": 1}, stranger)
    expect_problem(r, 403, "unauthorized", "revoke with an unrelated key")
    r = jws_post(d["revokeCert"], {"certificate": H.b64u(der2), "reason": 7}, ckey2)
    expect_problem(r, 400, "badRevocationReason", "reason 7")
    r = jws_post(d["revokeCert"], {"certificate": H.b64u(der2), "reason": 1}, ckey2)
    eq(r.status, 200, "revoke with the certificate key: %s" % r.body[:200])
    check("replay-nonce" in r.headers, "nonce on revoke")
    rec = srv().data("GET", MOUNT + "/cert/" + H.colon_serial(x509.load_pem_x509_certificate(pem2.encode())))
    check(rec.get("revocation_time", 0) > 0, "revoked record %r" % rec)


def test_kill_switch_revokes_acme_certificates():
    cl, _, _, _ = state["flow"]
    final, _ = issue(cl, ["kill." + DOMAIN])
    leaf = x509.load_pem_x509_certificate(pems(text(final.fullchain_pem))[0].encode())
    srv().ok("POST", "sys/leases/revoke-prefix/%s/issue/%s" % (MOUNT, ROLE), statuses=(200, 204))
    rec = srv().data("GET", MOUNT + "/cert/" + H.colon_serial(leaf))
    check(rec.get("revocation_time", 0) > 0, "ACME certificate not revoked by the kill switch: %r" % rec)


def test_issuer_directory():
    """issuer/:ref/roles/:role/acme: the named issuer signs, under the role; allowed_issuers gates it."""
    s = srv()
    base = s.url + "/v1/%s/issuer/root/roles/%s/acme/directory" % (MOUNT, ROLE)
    key = jose.JWKRSA(key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    net = client.ClientNetwork(key, user_agent="sigil-test", verify_ssl=False)
    cl = client.ClientV2(client.ClientV2.get_directory(base, net), net)
    cl.new_account(messages.NewRegistration.from_data(terms_of_service_agreed=True))
    final, _ = issue(cl, ["byroot." + DOMAIN])
    certs = pems(final.fullchain_pem)
    eq(len(certs), 1, "chain below a root (the root itself is left out)")
    leaf = x509.load_pem_x509_certificate(certs[0].encode())
    root = x509.load_pem_x509_certificate(state["root"].encode())
    eq(leaf.issuer, root.subject, "signed by the directory's issuer")
    verify_chain(final.fullchain_pem)
    s.ok("POST", MOUNT + "/config/acme", {"allowed_issuers": ["nosuch"]})
    try:
        expect_problem(H.curl(base), 403, "unauthorized", "issuer outside allowed_issuers")
    finally:
        s.ok("POST", MOUNT + "/config/acme", {"allowed_issuers": ["*"]})
    expect_problem(H.curl(s.url + "/v1/%s/issuer/nosuch/acme/directory" % MOUNT), 403, "unauthorized",
                   "unknown issuer")


def test_eab_required():
    s = srv()
    s.ok("POST", MOUNT + "/config/acme", {"eab_policy": "new-account-required"})
    try:
        check(dir_json()["meta"]["externalAccountRequired"] is True, "meta.externalAccountRequired")
        cl, key = new_client()
        try:
            cl.new_account(messages.NewRegistration.from_data(terms_of_service_agreed=True))
            raise H.TestFailure("account without EAB accepted")
        except messages.Error as e:
            eq(e.typ, "urn:ietf:params:acme:error:externalAccountRequired", "missing EAB")
        eab = s.data("POST", MOUNT + "/roles/%s/acme/new-eab" % ROLE)
        check("=" not in eab["key"] and "+" not in eab["key"] and "/" not in eab["key"], "key not base64url")
        eq(eab["acme_directory"], "roles/%s/acme/" % ROLE, "EAB directory")
        listing = s.data("LIST", MOUNT + "/acme/eab")
        check(eab["id"] in listing["keys"], "EAB listed")
        check("key" not in json.dumps(listing["key_info"]).replace("key_type", ""), "MAC key in listing")
        # A wrong MAC key.
        bad = messages.ExternalAccountBinding.from_data(account_public_key=key.public_key(), kid=eab["id"],
                                                       hmac_key=H.b64u(os.urandom(32)), directory=cl.directory)
        try:
            cl.new_account(messages.NewRegistration.from_data(terms_of_service_agreed=True,
                                                              external_account_binding=bad))
            raise H.TestFailure("wrong EAB MAC accepted")
        except messages.Error as e:
            eq(e.typ, "urn:ietf:params:acme:error:unauthorized", "wrong EAB MAC")
        # An EAB key bound to another directory.
        other = s.data("POST", MOUNT + "/acme/new-eab")
        wrong_dir = messages.ExternalAccountBinding.from_data(account_public_key=key.public_key(), kid=other["id"],
                                                             hmac_key=other["key"], directory=cl.directory)
        try:
            cl.new_account(messages.NewRegistration.from_data(terms_of_service_agreed=True,
                                                              external_account_binding=wrong_dir))
            raise H.TestFailure("EAB of another directory accepted")
        except messages.Error as e:
            eq(e.typ, "urn:ietf:params:acme:error:unauthorized", "EAB of another directory")
        good = messages.ExternalAccountBinding.from_data(account_public_key=key.public_key(), kid=eab["id"],
                                                        hmac_key=eab["key"], directory=cl.directory)
        regr = cl.new_account(messages.NewRegistration.from_data(terms_of_service_agreed=True,
                                                                 external_account_binding=good))
        check(regr.uri, "EAB account")
        final, _ = issue(cl, ["eab." + DOMAIN])
        verify_chain(final.fullchain_pem)
        # The key is consumed, and re-registration of the bound key returns the account before EAB.
        listing = s.req("LIST", MOUNT + "/acme/eab")
        check(listing.status == 404 or eab["id"] not in listing.data["keys"], "EAB key not consumed")
        d = dir_json()
        r = jws_post(d["newAccount"], {"termsOfServiceAgreed": True, "externalAccountBinding": {}}, key.key)
        eq(r.status, 200, "re-registration with a stale EAB: %s" % r.body[:200])
        s.ok("DELETE", MOUNT + "/acme/eab/" + other["id"], statuses=(200, 204))
    finally:
        s.ok("POST", MOUNT + "/config/acme", {"eab_policy": "not-required"})


def test_cert_manager_flow_raw():
    """cert-manager's exact sequence (compat 1.3) with an RS256 key and strict status codes (compat 1.7)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    d = dir_json()
    r = jws_post(d["newAccount"], {"termsOfServiceAgreed": True, "contact": ["mailto:cm@example.com"]}, key)
    eq(r.status, 201, "newAccount")
    kid = r.headers["location"]
    check(r.json()["orders"].startswith(kid), "orders URL")
    r = jws_post(d["newAccount"], {"onlyReturnExisting": True}, key)
    eq((r.status, r.headers.get("location")), (200, kid), "onlyReturnExisting")
    r = jws_post(d["newOrder"], {"identifiers": [{"type": "dns", "value": "cm." + DOMAIN}]}, key, kid=kid)
    eq(r.status, 201, "newOrder must be 201")
    order_url, order = r.headers["location"], r.json()
    for k in ("status", "expires", "identifiers", "authorizations", "finalize"):
        check(k in order, "order lacks %s" % k)
    r = jws_post(order["authorizations"][0], None, key, kid=kid)
    eq(r.status, 200, "authz POST-as-GET")
    az = r.json()
    eq(az["identifier"], {"type": "dns", "value": "cm." + DOMAIN}, "authz identifier")
    check("validated" not in az["challenges"][0] and az.get("expires"), "no empty timestamps")
    ch = [c for c in az["challenges"] if c["type"] == "http-01"][0]
    thumb = jose.JWKRSA(key=key.public_key()).thumbprint()
    H.Http01.tokens[ch["token"]] = ch["token"] + "." + H.b64u(thumb)
    r = jws_post(ch["url"], {}, key, kid=kid)
    eq(r.status, 200, "challenge POST")
    eq(r.json()["status"], "valid", "validated inside the POST")
    check(order["authorizations"][0] in r.headers.get("link", ""), "Link rel=up")
    # Responding again to a valid challenge returns it, never malformed (cert-manager would expire it).
    r = jws_post(ch["url"], {}, key, kid=kid)
    eq((r.status, r.json()["status"]), (200, "valid"), "second challenge POST")
    r = jws_post(order_url, None, key, kid=kid)
    eq(r.json()["status"], "ready", "order ready")
    csr, _ = csr_for(["cm." + DOMAIN])
    der = x509.load_pem_x509_csr(csr).public_bytes(Encoding.DER)
    r = jws_post(order["finalize"], {"csr": H.b64u(der)}, key, kid=kid)
    eq(r.status, 200, "finalize must be 200")
    eq(r.json()["status"], "valid", "finalize answers valid")
    r = jws_post(r.json()["certificate"], None, key, kid=kid)
    eq(r.status, 200, "certificate download")
    eq(r.ctype, "application/pem-certificate-chain", "content type without parameters")
    blocks = H.pem_blocks(r.text)
    check(0 < len(blocks) <= 5 and all(t == "CERTIFICATE" for t, _ in blocks), "chain blocks %r" % [t for t, _ in blocks])
    verify_chain(r.text)
    # Finalizing again: orderNotReady (403), as for any order not ready.
    r = jws_post(order["finalize"], {"csr": H.b64u(der)}, key, kid=kid)
    expect_problem(r, 403, "orderNotReady", "second finalize")
    # Orders list.
    r = jws_post(kid + "/orders", None, key, kid=kid)
    eq(r.json()["orders"], [order_url], "account orders")


def inner_jws(url, payload, key, nonce=None):
    """The inner JWS of keyChange: jwk of the new key, the same url, no nonce (RFC 8555 7.3.5)."""
    jwk, alg = jwk_of(key)
    prot = {"alg": alg, "url": url, "jwk": jwk}
    if nonce:
        prot["nonce"] = nonce
    p64 = H.b64u(json.dumps(prot).encode())
    pl64 = H.b64u(json.dumps(payload).encode())
    return {"protected": p64, "payload": pl64, "signature": H.b64u(sign(key, alg, (p64 + "." + pl64).encode()))}


def test_key_change():
    d = dir_json()
    old = ec.generate_private_key(ec.SECP256R1())
    new = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    r = jws_post(d["newAccount"], {"termsOfServiceAgreed": True}, old)
    eq(r.status, 201, "account")
    kid = r.headers["location"]
    kc = d["keyChange"]
    # The inner JWS must not carry a nonce, and must name the old key.
    r = jws_post(kc, inner_jws(kc, {"account": kid, "oldKey": jwk_of(old)[0]}, new, nonce=get_nonce()), old, kid=kid)
    expect_problem(r, 400, "malformed", "inner JWS with a nonce")
    r = jws_post(kc, inner_jws(kc, {"account": kid, "oldKey": jwk_of(new)[0]}, new), old, kid=kid)
    expect_problem(r, 403, "unauthorized", "wrong oldKey")
    r = jws_post(kc, inner_jws(kc, {"account": kid, "oldKey": jwk_of(old)[0]}, new), old, kid=kid)
    eq(r.status, 200, "keyChange: %s" % r.body[:300])
    # The new key works, the old one no longer does.
    r = jws_post(d["newOrder"], {"identifiers": [{"type": "dns", "value": "rekey." + DOMAIN}]}, new, kid=kid)
    eq(r.status, 201, "order signed with the new key")
    r = jws_post(d["newOrder"], {"identifiers": [{"type": "dns", "value": "rekey." + DOMAIN}]}, old, kid=kid)
    expect_problem(r, 400, "badSignatureAlgorithm", "order signed with the old (EC) key for an RSA account key")
    r = jws_post(d["newAccount"], {"onlyReturnExisting": True}, old)
    expect_problem(r, 400, "accountDoesNotExist", "old key unbound")
    r = jws_post(d["newAccount"], {"onlyReturnExisting": True}, new)
    eq((r.status, r.headers.get("location")), (200, kid), "new key bound")
    # A key bound to another account: 409 with that account's URL.
    other = ec.generate_private_key(ec.SECP384R1())
    r = jws_post(d["newAccount"], {"termsOfServiceAgreed": True}, other)
    other_kid = r.headers["location"]
    r = jws_post(kc, inner_jws(kc, {"account": kid, "oldKey": jwk_of(new)[0]}, other), new, kid=kid)
    eq(r.status, 409, "key of another account: %s" % r.body[:200])
    eq(r.headers.get("location"), other_kid, "409 Location")


def raw_issue(key, kid, name, **order_extra):
    """newOrder (+ extra members), http-01, finalize, download, by hand. Returns (order JSON, chain PEM)."""
    d = dir_json()
    body = {"identifiers": [{"type": "dns", "value": name}]}
    body.update(order_extra)
    r = jws_post(d["newOrder"], body, key, kid=kid)
    eq(r.status, 201, "newOrder: %s" % r.body[:300])
    order = r.json()
    az = jws_post(order["authorizations"][0], None, key, kid=kid).json()
    ch = [c for c in az["challenges"] if c["type"] == "http-01"][0]
    jwk, _ = jwk_of(key)
    thumb = jose.JWK.from_json(jwk).thumbprint()
    H.Http01.tokens[ch["token"]] = ch["token"] + "." + H.b64u(thumb)
    eq(jws_post(ch["url"], {}, key, kid=kid).json()["status"], "valid", "challenge")
    csr, _ = csr_for([name])
    der = x509.load_pem_x509_csr(csr).public_bytes(Encoding.DER)
    r = jws_post(order["finalize"], {"csr": H.b64u(der)}, key, kid=kid)
    eq(r.status, 200, "finalize: %s" % r.body[:300])
    order = r.json()
    return order, jws_post(order["certificate"], None, key, kid=kid).text


def test_concurrent_finalize_issues_once():
    key = ec.generate_private_key(ec.SECP256R1())
    d = dir_json()
    kid = jws_post(d["newAccount"], {"termsOfServiceAgreed": True}, key).headers["location"]
    name = "race." + DOMAIN
    order = jws_post(d["newOrder"], {"identifiers": [{"type": "dns", "value": name}]}, key, kid=kid).json()
    az = jws_post(order["authorizations"][0], None, key, kid=kid).json()
    ch = az["challenges"][0]
    H.Http01.tokens[ch["token"]] = ch["token"] + "." + H.b64u(jose.JWK.from_json(jwk_of(key)[0]).thumbprint())
    eq(jws_post(ch["url"], {}, key, kid=kid).json()["status"], "valid", "challenge")
    csr, _ = csr_for([name])
    der = x509.load_pem_x509_csr(csr).public_bytes(Encoding.DER)
    nonces = [get_nonce() for _ in range(4)]
    results = []

    def go(n):
        results.append(jws_post(order["finalize"], {"csr": H.b64u(der)}, key, kid=kid, nonce=n).status)

    threads = [threading.Thread(target=go, args=(n,)) for n in nonces]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    eq(sorted(results), [200, 403, 403, 403], "one finalize wins")


def test_order_not_after():
    key = ec.generate_private_key(ec.SECP256R1())
    d = dir_json()
    r = jws_post(d["newAccount"], {"termsOfServiceAgreed": True}, key)
    kid = r.headers["location"]
    want = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) + datetime.timedelta(hours=2)
    text_na = want.strftime("%Y-%m-%dT%H:%M:%SZ")
    order, chain = raw_issue(key, kid, "na." + DOMAIN, notAfter=text_na)
    eq(order.get("notAfter"), text_na, "order notAfter")
    leaf = x509.load_pem_x509_certificate(pems(chain)[0].encode())
    eq(leaf.not_valid_after.replace(tzinfo=datetime.timezone.utc), want, "certificate NotAfter")
    verify_chain(chain)
    far = (want + datetime.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    r = jws_post(d["newOrder"], {"identifiers": [{"type": "dns", "value": "na." + DOMAIN}], "notAfter": far}, key,
                 kid=kid)
    expect_problem(r, 400, "malformed", "notAfter beyond the role's max_ttl")
    r = jws_post(d["newOrder"], {"identifiers": [{"type": "dns", "value": "na." + DOMAIN}], "notBefore": text_na},
                 key, kid=kid)
    expect_problem(r, 400, "malformed", "notBefore")


def test_deactivate_account():
    key, kid = state["kids"][0]
    r = jws_post(kid, {"status": "deactivated"}, key, kid=kid)
    eq(r.status, 200, "deactivate: %s" % r.body[:200])
    eq(r.json()["status"], "deactivated", "status")
    d = dir_json()
    r = jws_post(d["newOrder"], {"identifiers": [{"type": "dns", "value": "z." + DOMAIN}]}, key, kid=kid)
    expect_problem(r, 403, "unauthorized", "deactivated account")
    r = jws_post(d["newAccount"], {"termsOfServiceAgreed": True}, key)
    expect_problem(r, 403, "unauthorized", "newAccount with a deactivated key")


def certbot(name, extra=(), eab_required=False):
    """certbot certonly --standalone against the role directory; returns the fullchain PEM."""
    exe = shutil.which("certbot")
    check(exe is not None, "certbot not installed (make deps)")
    d = H.tmpdir("certbot")
    port = H.free_port()
    cfg = {"http01_port": port}
    if eab_required:
        cfg["eab_policy"] = "new-account-required"
    srv().ok("POST", MOUNT + "/config/acme", cfg)
    try:
        r = subprocess.run([exe, "certonly", "--standalone", "--http-01-port", str(port),
                            "--http-01-address", "127.0.0.1", "--server", directory_url(),
                            "--config-dir", os.path.join(d, "c"), "--work-dir", os.path.join(d, "w"),
                            "--logs-dir", os.path.join(d, "l"), "--non-interactive", "--agree-tos",
                            "--register-unsafely-without-email", "--no-verify-ssl", "-d", name] + list(extra),
                           capture_output=True, text=True, timeout=180)
    finally:
        srv().ok("POST", MOUNT + "/config/acme", {"http01_port": H.http01_port(), "eab_policy": "not-required"})
    if r.returncode != 0:
        return None, r.stdout[-1500:] + r.stderr[-1500:]
    with open(os.path.join(d, "c", "live", name, "fullchain.pem")) as f:
        return f.read(), ""


def test_certbot_standalone():
    chain, why = certbot("certbot." + DOMAIN)
    check(chain is not None, "certbot failed: " + why)
    verify_chain(chain)


def test_certbot_standalone_eab():
    chain, why = certbot("certbot-noeab." + DOMAIN, eab_required=True)
    check(chain is None and ("externalAccountRequired" in why or "external account" in why.lower()),
          "certbot without EAB on an EAB directory: %s" % why[-400:])
    eab = srv().data("POST", MOUNT + "/roles/%s/acme/new-eab" % ROLE)
    # "=" form: a base64url key may start with "-", which argparse would take for an option.
    chain, why = certbot("certbot-eab." + DOMAIN, ["--eab-kid=" + eab["id"], "--eab-hmac-key=" + eab["key"]],
                         eab_required=True)
    check(chain is not None, "certbot with EAB failed: " + why)
    verify_chain(chain)


if __name__ == "__main__":
    H.main(globals())
