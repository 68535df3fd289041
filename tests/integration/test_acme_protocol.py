#!/usr/bin/python3
"""ACME protocol features beyond RFC 8555's core, against the real server:
ARI (RFC 9773: renewalInfo, certIDs, the suggested window, `replaces`),
profiles (draft-ietf-acme-profiles: meta.profiles, a profile's role),
new-order rate limits (503 rateLimited + Retry-After, which cert-manager
retries), alternate chains through a cross-signed intermediate (one Link
field line per alternate), eab_policy always-required against an account
made without EAB, the directory Link on every answer, and the paged orders
list. Requests are hand-made JWS (python3-cryptography), so every header
and status is visible, and python3-acme fetches the alternate chain as
certbot's --preferred-chain does; http-01 is answered on a loopback port."""

import base64
import datetime
import hashlib
import hmac
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check, eq  # noqa: E402

import josepy as jose  # noqa: E402
from acme import challenges, client, crypto_util, messages  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, rsa, utils  # noqa: E402
from cryptography.hazmat.primitives.serialization import Encoding  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

MOUNT = "acmeproto"
ROLE = "web"
SHORT = "short"
DOMAIN = "proto.localhost"
state = {}


# ---------------------------------------------------------------- fixtures


def srv():
    s = H.dev_server("acmeproto")
    if not state.get("setup"):
        state["root"], state["inter"] = H.acme_mount(
            s, MOUNT, ROLE, DOMAIN, roles={SHORT: {"max_ttl": "2h", "ttl": "1h", "organization": "Short Lived Org"}},
            http01_port=H.http01_port())
        state["setup"] = True
    return s


def acme_config(**kw):
    return srv().data("POST", MOUNT + "/config/acme", kw)


def directory_url():
    return srv().url + "/v1/%s/roles/%s/acme/directory" % (MOUNT, ROLE)


class Resp:
    """status, body, and every header line (Link may come several times)."""

    def __init__(self, status, headers, body):
        self.status, self.hdrs, self.body = status, headers, body

    def header(self, name):
        return self.hdrs.get(name)

    def all(self, name):
        return self.hdrs.get_all(name) or []

    def json(self):
        return json.loads(self.body.decode())

    @property
    def text(self):
        return self.body.decode()


def http_req(url, method="GET", body=None, ctype=None):
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    rq = urllib.request.Request(url, data=data, method=method)
    rq.add_header("User-Agent", "sigil-test")
    if ctype:
        rq.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(rq, timeout=60) as r:
            return Resp(r.status, r.headers, r.read())
    except urllib.error.HTTPError as e:
        return Resp(e.code, e.headers, e.read())


def dir_json():
    if "dir" not in state:
        state["dir"] = http_req(directory_url()).json()
    return state["dir"]


def jwk_of(key):
    n = key.public_key().public_numbers()
    return {"crv": "P-256", "kty": "EC", "x": H.b64u(n.x.to_bytes(32, "big")), "y": H.b64u(n.y.to_bytes(32, "big"))}


def thumbprint(key):
    return H.b64u(hashlib.sha256(json.dumps(jwk_of(key), sort_keys=True, separators=(",", ":")).encode()).digest())


def get_nonce():
    r = http_req(dir_json()["newNonce"], method="HEAD")
    return r.header("Replay-Nonce")


def jws_post(url, payload, key, kid=None):
    prot = {"alg": "ES256", "nonce": get_nonce(), "url": url}
    if kid:
        prot["kid"] = kid
    else:
        prot["jwk"] = jwk_of(key)
    p64 = H.b64u(json.dumps(prot).encode())
    pl64 = "" if payload is None else H.b64u(json.dumps(payload).encode())
    r, s = utils.decode_dss_signature(key.sign((p64 + "." + pl64).encode(), ec.ECDSA(hashes.SHA256())))
    body = {"protected": p64, "payload": pl64, "signature": H.b64u(r.to_bytes(32, "big") + s.to_bytes(32, "big"))}
    return http_req(url, "POST", json.dumps(body).encode(), "application/jose+json")


def expect_problem(r, status, typ, what):
    eq(r.status, status, what + " status (%s)" % r.body[:300])
    check((r.header("Content-Type") or "").startswith("application/problem+json"), what + ": content type")
    eq(r.json()["type"], "urn:ietf:params:acme:error:" + typ, what + " type")
    eq(r.json()["status"], status, what + " body status")
    check(r.header("Replay-Nonce"), what + ": no Replay-Nonce")


def new_account(eab=None):
    key = ec.generate_private_key(ec.SECP256R1())
    payload = {"termsOfServiceAgreed": True}
    if eab is not None:
        payload["externalAccountBinding"] = eab_payload(key, eab)
    r = jws_post(dir_json()["newAccount"], payload, key)
    eq(r.status, 201, "newAccount: %s" % r.body[:300])
    return key, r.header("Location")


def csr_der(names):
    k = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])).add_extension(
        x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False).sign(k, hashes.SHA256())
    return csr.public_bytes(Encoding.DER)


def new_order(key, kid, names, **extra):
    body = {"identifiers": [{"type": "dns", "value": n} for n in names]}
    body.update(extra)
    return jws_post(dir_json()["newOrder"], body, key, kid=kid)


def complete(key, kid, order_resp, names):
    """Solves http-01 for an order answered by newOrder, finalizes and downloads. Returns (order, cert resp)."""
    eq(order_resp.status, 201, "newOrder: %s" % order_resp.body[:300])
    order = order_resp.json()
    for az_url in order["authorizations"]:
        az = jws_post(az_url, None, key, kid=kid).json()
        ch = [c for c in az["challenges"] if c["type"] == "http-01"][0]
        H.Http01.tokens[ch["token"]] = ch["token"] + "." + thumbprint(key)
        r = jws_post(ch["url"], {}, key, kid=kid)
        eq(r.json()["status"], "valid", "challenge: %s" % r.body[:300])
        state["last_challenge_resp"] = (r, az_url)
    r = jws_post(order["finalize"], {"csr": H.b64u(csr_der(names))}, key, kid=kid)
    eq(r.status, 200, "finalize: %s" % r.body[:300])
    order = r.json()
    cert = jws_post(order["certificate"], None, key, kid=kid)
    eq(cert.status, 200, "certificate download")
    return order, cert


def issue(key, kid, names, **extra):
    return complete(key, kid, new_order(key, kid, names, **extra), names)


def pem_list(t):
    return [H.der_to_pem(der) for der in H.pem_certs(t)]


def leaf_of(cert_resp):
    return x509.load_pem_x509_certificate(pem_list(cert_resp.text)[0].encode())


def cert_id(cert):
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    n = cert.serial_number
    return H.b64u(aki) + "." + H.b64u(n.to_bytes(n.bit_length() // 8 + 1, "big"))


def renewal_info(cid):
    return http_req(dir_json()["renewalInfo"] + "/" + cid)


def rfc3339(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)


def index_link():
    return '<%s>;rel="index"' % directory_url()


def openssl_verify(ca_pem, untrusted, leaf_pem):
    d = H.tmpdir("verify")
    paths = []
    for name, pem in (("ca", ca_pem), ("untrusted", "".join(untrusted)), ("leaf", leaf_pem)):
        p = os.path.join(d, name + ".pem")
        with open(p, "w") as f:
            f.write(pem)
        paths.append(p)
    args = ["openssl", "verify", "-CAfile", paths[0]] + (["-untrusted", paths[1]] if untrusted else [])
    return subprocess.run(args + [paths[2]], capture_output=True, text=True)


# ---------------------------------------------------------------- tests


def test_directory_renewal_info_and_links():
    d = dir_json()
    eq(d.get("renewalInfo"), directory_url().replace("directory", "renewal-info"), "renewalInfo URL")
    check("profiles" not in d["meta"], "no meta.profiles before profiles are configured")
    r = http_req(directory_url())
    check(index_link() in r.all("Link"), "directory Link rel=index: %r" % r.all("Link"))
    key, kid = new_account()
    r = jws_post(kid, None, key, kid=kid)
    eq(r.status, 200, "account POST-as-GET")
    check(r.json()["orders"] == kid + "/orders", "account orders URL %r" % r.json().get("orders"))
    check(index_link() in r.all("Link"), "account Link rel=index")
    state["acct"] = (key, kid)
    name = "links." + DOMAIN
    _, cert = issue(key, kid, [name])
    ch_resp, az_url = state["last_challenge_resp"]
    links = ch_resp.all("Link")
    check('<%s>;rel="up"' % az_url in links and index_link() in links,
          "challenge: rel=up and rel=index on their own lines: %r" % links)
    check(index_link() in cert.all("Link"), "certificate Link rel=index %r" % cert.all("Link"))
    check(not any("alternate" in l for l in cert.all("Link")), "no alternates without a cross-signed issuer")
    state["links_cert"] = leaf_of(cert)


def test_ari_window_and_headers():
    leaf = state["links_cert"]
    r = renewal_info(cert_id(leaf))
    eq(r.status, 200, "renewalInfo: %s" % r.body[:300])
    check(r.header("Content-Type").startswith("application/json"), "renewalInfo content type")
    w = r.json()["suggestedWindow"]
    start, end = rfc3339(w["start"]), rfc3339(w["end"])
    nb = leaf.not_valid_before.replace(tzinfo=datetime.timezone.utc)
    na = leaf.not_valid_after.replace(tzinfo=datetime.timezone.utc)
    life = (na - nb).total_seconds()
    check(start < end < na, "window %s..%s inside the lifetime ending %s" % (start, end, na))
    frac = (start - nb).total_seconds() / life
    check(0.6 <= frac <= 0.75, "window starts at %.2f of the lifetime" % frac)
    ra = int(r.header("Retry-After"))
    check(60 <= ra <= 6 * 3600, "Retry-After %d" % ra)
    # The window opens in ~16 h: Retry-After stays 6 h.
    eq(ra, 6 * 3600, "Retry-After far from the window")


def test_ari_malformed_and_unknown():
    leaf = state["links_cert"]
    aki, serial = cert_id(leaf).split(".")
    for bad in ("nodot", "a.b.c", "!!!." + serial, aki + ".", "." + serial, aki + ".AH8",  # non-minimal serial
                aki + ".gA"):  # negative serial
        r = renewal_info(bad)
        expect_problem(r, 400, "malformed", "certID %r" % bad)
    r = renewal_info(aki + "." + H.b64u(b"\x01" + os.urandom(15)))
    eq(r.status, 404, "unknown serial: %s" % r.body[:200])
    r = renewal_info(H.b64u(b"\x01" * 20) + "." + serial)
    eq(r.status, 404, "serial with another AKI: %s" % r.body[:200])


def test_ari_revoked_window_in_the_past():
    key, kid = state["acct"]
    _, cert = issue(key, kid, ["revoked-ari." + DOMAIN])
    leaf = leaf_of(cert)
    r = jws_post(dir_json()["revokeCert"], {"certificate": H.b64u(leaf.public_bytes(Encoding.DER)), "reason": 4},
                 key, kid=kid)
    eq(r.status, 200, "revoke: %s" % r.body[:300])
    r = renewal_info(cert_id(leaf))
    eq(r.status, 200, "renewalInfo of a revoked certificate")
    w = r.json()["suggestedWindow"]
    now = datetime.datetime.now(datetime.timezone.utc)
    check(rfc3339(w["start"]) < rfc3339(w["end"]) < now, "revoked: window in the past %r" % w)
    check(r.header("Retry-After") is not None, "Retry-After on a revoked certificate")


def test_replaces_once_then_already_replaced():
    key, kid = state["acct"]
    name = "renew." + DOMAIN
    _, cert = issue(key, kid, [name])
    cid = cert_id(leaf_of(cert))
    # Another account may not replace it (malformed naming "replaces": cert-manager retries without it).
    okey, okid = new_account()
    r = new_order(okey, okid, [name], replaces=cid)
    expect_problem(r, 400, "malformed", "replaces for another account")
    check("replaces" in r.json()["detail"], "detail names replaces: %r" % r.json()["detail"])
    # No shared identifier.
    r = new_order(key, kid, ["other." + DOMAIN], replaces=cid)
    expect_problem(r, 400, "malformed", "replaces without a shared identifier")
    r = new_order(key, kid, [name], replaces="garbage")
    expect_problem(r, 400, "malformed", "replaces not a certID")
    # Accepted once: recorded on the order, marked replaced at finalize.
    first = new_order(key, kid, [name], replaces=cid)
    eq(first.status, 201, "newOrder replaces: %s" % first.body[:300])
    eq(first.json().get("replaces"), cid, "order shows replaces")
    # A second pending order may also name it until one is finalized.
    second = new_order(key, kid, [name], replaces=cid)
    eq(second.status, 201, "second pending replacement")
    order, _ = complete(key, kid, first, [name])
    eq(order["status"], "valid", "replacement issued")
    r = new_order(key, kid, [name], replaces=cid)
    expect_problem(r, 409, "alreadyReplaced", "replacing again")
    # The other pending order loses at finalize.
    o2 = second.json()
    for az_url in o2["authorizations"]:
        az = jws_post(az_url, None, key, kid=kid).json()
        ch = [c for c in az["challenges"] if c["type"] == "http-01"][0]
        H.Http01.tokens[ch["token"]] = ch["token"] + "." + thumbprint(key)
        jws_post(ch["url"], {}, key, kid=kid)
    r = jws_post(o2["finalize"], {"csr": H.b64u(csr_der([name]))}, key, kid=kid)
    expect_problem(r, 409, "alreadyReplaced", "finalize of a second replacement")
    r = jws_post(second.header("Location"), None, key, kid=kid)
    eq(r.json()["status"], "ready", "the losing order stays ready (no certificate)")


def test_profiles():
    key, kid = state["acct"]
    r = new_order(key, kid, ["p." + DOMAIN], profile="shortlived")
    expect_problem(r, 400, "invalidProfile", "profile without profiles configured")
    r = srv().req("POST", MOUNT + "/config/acme", {"profiles": {"x": "nosuchrole"}})
    eq(r.status, 400, "profile of a role outside allowed_roles: %s" % r.body[:200])
    for bad in ({"bad name": ROLE}, {"x": {"description": "no role"}}, {"x": ""}, ["x"],
                {"p%d" % i: ROLE for i in range(33)}):
        r = srv().req("POST", MOUNT + "/config/acme", {"profiles": bad})
        eq(r.status, 400, "profiles %r: %s" % (str(bad)[:60], r.body[:200]))
    cfg = acme_config(profiles={"shortlived": {"role": SHORT, "description": "one hour"}, "classic": ROLE})
    eq(cfg["profiles"]["classic"]["role"], ROLE, "config/acme profiles")
    state.pop("dir", None)
    meta = dir_json()["meta"]
    eq(meta.get("profiles"), {"shortlived": "one hour", "classic": "certificates of role " + ROLE}, "meta.profiles")
    r = new_order(key, kid, ["p." + DOMAIN], profile="nosuch")
    expect_problem(r, 400, "invalidProfile", "unknown profile")
    r = new_order(key, kid, ["p." + DOMAIN], profile=5)
    expect_problem(r, 400, "invalidProfile", "profile not a string")
    order, cert = issue(key, kid, ["p." + DOMAIN], profile="shortlived")
    eq(order.get("profile"), "shortlived", "order profile")
    leaf = leaf_of(cert)
    life = (leaf.not_valid_after - leaf.not_valid_before).total_seconds()
    check(life <= 2 * 3600, "shortlived profile: lifetime %ds within the short role's max_ttl" % life)
    orgs = [a.value for a in leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    eq(orgs, ["Short Lived Org"], "issued under the short role")
    _, cert = issue(key, kid, ["c." + DOMAIN], profile="classic")
    leaf = leaf_of(cert)
    check((leaf.not_valid_after - leaf.not_valid_before).total_seconds() > 20 * 3600, "classic: the web role's 24h")


def test_rate_limit_answers_503_then_works():
    for bad in ({"orders_per_account_per_hour": -1}, {"orders_per_identifier_per_hour": "many"}, 5):
        r = srv().req("POST", MOUNT + "/config/acme", {"rate_limits": bad})
        eq(r.status, 400, "rate_limits %r: %s" % (bad, r.body[:200]))
    eq(srv().data("GET", MOUNT + "/config/acme")["rate_limits"],
       {"orders_per_account_per_hour": 0, "orders_per_identifier_per_hour": 0}, "unlimited by default")
    acme_config(rate_limits={"orders_per_account_per_hour": 2})
    key, kid = new_account()
    for i in range(2):
        eq(new_order(key, kid, ["rl%d.%s" % (i, DOMAIN)]).status, 201, "order %d under the limit" % i)
    r = new_order(key, kid, ["rl9." + DOMAIN])
    expect_problem(r, 503, "rateLimited", "third order in the hour")
    ra = int(r.header("Retry-After"))
    check(0 < ra <= 3 * 3600, "Retry-After %d: seconds until a slot frees" % ra)
    # Other accounts have their own count.
    okey, okid = new_account()
    eq(new_order(okey, okid, ["rl9." + DOMAIN]).status, 201, "another account is not limited")
    # Per identifier, across accounts.
    acme_config(rate_limits={"orders_per_account_per_hour": 0, "orders_per_identifier_per_hour": 1})
    eq(new_order(key, kid, ["rlid." + DOMAIN]).status, 201, "first order for the identifier")
    r = new_order(okey, okid, ["x." + DOMAIN, "rlid." + DOMAIN])
    expect_problem(r, 503, "rateLimited", "identifier limit")
    eq(new_order(okey, okid, ["x." + DOMAIN]).status, 201, "x not taken by the refused order")
    acme_config(rate_limits={"orders_per_account_per_hour": 0, "orders_per_identifier_per_hour": 0})
    eq(new_order(key, kid, ["rl9." + DOMAIN]).status, 201, "unlimited again")
    eq(new_order(okey, okid, ["rlid." + DOMAIN]).status, 201, "identifier unlimited again")


def test_max_ttl_caps_acme_certificates():
    """config/acme max_ttl (Vault's field; 90 days unless set) caps validity below the role's own."""
    eq(srv().data("GET", MOUNT + "/config/acme")["max_ttl"], 2160 * 3600, "default 2160h")
    for bad in ("-1h", "forever", 101 * 365 * 86400):
        r = srv().req("POST", MOUNT + "/config/acme", {"max_ttl": bad})
        eq(r.status, 400, "max_ttl %r: %s" % (bad, r.body[:200]))
    acme_config(max_ttl="1h")
    try:
        key, kid = new_account()
        _, cert = issue(key, kid, ["maxttl." + DOMAIN])
        leaf = leaf_of(cert)
        life = (leaf.not_valid_after - leaf.not_valid_before).total_seconds()
        check(life <= 3600 + 60, "role ttl 24h capped to 1h (+ backdate): %ds" % life)
        late = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=3))
        r = new_order(key, kid, ["late." + DOMAIN], notAfter=late.strftime("%Y-%m-%dT%H:%M:%SZ"))
        expect_problem(r, 400, "malformed", "notAfter past config/acme max_ttl")
    finally:
        acme_config(max_ttl="")
    eq(srv().data("GET", MOUNT + "/config/acme")["max_ttl"], 2160 * 3600, "\"\" is the default again")


def make_cross_signed(inter_pem):
    """A second root and a copy of the intermediate (same subject, same key, same SKI) it signs."""
    inter = x509.load_pem_x509_certificate(inter_pem.encode())
    rkey = ec.generate_private_key(ec.SECP256R1())
    rname = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Other Root")])
    now = datetime.datetime.now(datetime.timezone.utc)
    rski = x509.SubjectKeyIdentifier.from_public_key(rkey.public_key())
    root2 = (x509.CertificateBuilder().subject_name(rname).issuer_name(rname).public_key(rkey.public_key())
             .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
             .not_valid_after(now + datetime.timedelta(days=365))
             .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
             .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
             .add_extension(rski, critical=False)
             .sign(rkey, hashes.SHA256()))
    cross = (x509.CertificateBuilder().subject_name(inter.subject).issuer_name(rname).public_key(inter.public_key())
             .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
             .not_valid_after(now + datetime.timedelta(days=300))
             .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
             .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
             .add_extension(inter.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value, critical=False)
             .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(rski), critical=False)
             .sign(rkey, hashes.SHA256()))
    return root2.public_bytes(Encoding.PEM).decode(), cross.public_bytes(Encoding.PEM).decode()


def pyacme_alternates(root2):
    key = jose.JWKRSA(key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    net = client.ClientNetwork(key, user_agent="sigil-test", verify_ssl=False)
    cl = client.ClientV2(client.ClientV2.get_directory(directory_url(), net), net)
    cl.new_account(messages.NewRegistration.from_data(terms_of_service_agreed=True))
    ck = ec.generate_private_key(ec.SECP256R1())
    pem = ck.private_bytes(Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    orderr = cl.new_order(crypto_util.make_csr(pem, ["pyalt." + DOMAIN]))
    for authz in orderr.authorizations:
        chall = [c for c in authz.body.challenges if isinstance(c.chall, challenges.HTTP01)][0]
        response, validation = chall.response_and_validation(cl.net.key)
        H.Http01.tokens[chall.chall.encode("token")] = validation
        cl.answer_challenge(chall, response)
    deadline = datetime.datetime.now() + datetime.timedelta(seconds=60)
    orderr = cl.poll_authorizations(orderr, deadline)
    orderr = cl.finalize_order(orderr, deadline, fetch_alternative_chains=True)
    alts = orderr.alternative_fullchains_pem
    eq(len(alts), 1, "python3-acme found one alternative chain")
    chain = pem_list(alts[0])
    last = x509.load_pem_x509_certificate(chain[-1].encode())
    eq(last.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value, "Other Root", "python3-acme alternate")
    r = openssl_verify(root2, chain[1:], chain[0])
    check(r.returncode == 0, "python3-acme alternate verifies: %s %s" % (r.stdout, r.stderr))


def test_alternate_chains():
    root2, cross = make_cross_signed(state["inter"])
    imp = srv().data("POST", MOUNT + "/issuers/import/cert", {"pem_bundle": cross})
    check(len(imp.get("imported_issuers") or []) == 1, "cross-signed intermediate imported: %r" % imp)
    key, kid = state["acct"]
    order, cert = issue(key, kid, ["alt." + DOMAIN])
    links = cert.all("Link")
    alts = [l for l in links if l.endswith(';rel="alternate"')]
    eq(alts, ['<%s/1>;rel="alternate"' % order["certificate"]], "one Link line per alternate: %r" % links)
    check(index_link() in links, "rel=index beside the alternates")
    default = pem_list(cert.text)
    r = openssl_verify(state["root"], default[1:], default[0])
    check(r.returncode == 0, "default chain verifies to the mount's root: %s %s" % (r.stdout, r.stderr))
    alt = jws_post(order["certificate"] + "/1", None, key, kid=kid)
    eq(alt.status, 200, "alternate chain download: %s" % alt.body[:200])
    eq(alt.header("Content-Type"), "application/pem-certificate-chain", "alternate content type")
    chain = pem_list(alt.text)
    eq(chain[0], default[0], "same leaf")
    last = x509.load_pem_x509_certificate(chain[-1].encode())
    eq(last.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value, "Other Root",
       "alternate chain ends at the other root (cert-manager's preferredChain rule)")
    r = openssl_verify(root2, chain[1:], chain[0])
    check(r.returncode == 0 and "OK" in r.stdout, "alternate verifies to the other root: %s %s" % (r.stdout, r.stderr))
    r = openssl_verify(state["root"], chain[1:], chain[0])
    check(r.returncode != 0, "alternate does not verify to the mount's root alone")
    check('<%s>;rel="alternate"' % order["certificate"] in alt.all("Link"), "the alternate links the default")
    # python3-acme follows the Link header as certbot's --preferred-chain does.
    pyacme_alternates(root2)
    r = jws_post(order["certificate"] + "/2", None, key, kid=kid)
    eq(r.status, 404, "no second alternate")
    r = jws_post(order["certificate"] + "/x", None, key, kid=kid)
    eq(r.status, 404, "alternate index not a number")


def test_orders_list_paged():
    key, kid = new_account()
    urls = []
    for i in range(101):
        r = new_order(key, kid, ["page%d.%s" % (i, DOMAIN)])
        eq(r.status, 201, "order %d" % i)
        urls.append(r.header("Location"))
    r = jws_post(kid + "/orders", None, key, kid=kid)
    eq(r.status, 200, "orders page 1")
    page1 = r.json()["orders"]
    eq(len(page1), 100, "first page size")
    nxt = [l for l in r.all("Link") if l.endswith(';rel="next"')]
    eq(len(nxt), 1, "rel=next: %r" % r.all("Link"))
    check(index_link() in r.all("Link"), "orders list Link rel=index")
    url = nxt[0][1:nxt[0].index(">")]
    r = jws_post(url, None, key, kid=kid)
    eq(r.status, 200, "orders page 2: %s" % r.body[:200])
    page2 = r.json()["orders"]
    eq(sorted(page1 + page2), sorted(urls), "both pages hold every order once")
    check(not any(l.endswith(';rel="next"') for l in r.all("Link")), "last page has no next")
    r = http_req(url)
    eq(r.status, 405, "plain GET on a page of orders (POST-as-GET only)")


def eab_payload(key, eab):
    url = dir_json()["newAccount"]
    prot = H.b64u(json.dumps({"alg": "HS256", "kid": eab["id"], "url": url}).encode())
    pl = H.b64u(json.dumps(jwk_of(key)).encode())
    mac = hmac.new(base64.urlsafe_b64decode(eab["key"] + "=" * (-len(eab["key"]) % 4)),
                   (prot + "." + pl).encode(), hashlib.sha256).digest()
    return {"protected": prot, "payload": pl, "signature": H.b64u(mac)}


def test_eab_always_required_refuses_old_accounts():
    key, kid = new_account()  # made while EAB is not required
    acme_config(eab_policy="new-account-required")
    eq(new_order(key, kid, ["eab1." + DOMAIN]).status, 201, "new-account-required leaves old accounts alone")
    acme_config(eab_policy="always-required")
    r = new_order(key, kid, ["eab2." + DOMAIN])
    expect_problem(r, 403, "unauthorized", "always-required: account without EAB")
    check("external account" in r.json()["detail"], "detail: %r" % r.json()["detail"])
    expect_problem(jws_post(kid + "/orders", None, key, kid=kid), 403, "unauthorized", "orders list")
    # The account itself stays readable (and could be deactivated).
    eq(jws_post(kid, None, key, kid=kid).status, 200, "account POST-as-GET")
    r = jws_post(dir_json()["newAccount"], {"onlyReturnExisting": True}, key)
    expect_problem(r, 400, "externalAccountRequired", "onlyReturnExisting of an account without EAB")
    # A newAccount with EAB for the old key binds it: the account orders again.
    eab = srv().data("POST", MOUNT + "/roles/%s/acme/new-eab" % ROLE)
    r = jws_post(dir_json()["newAccount"], {"externalAccountBinding": eab_payload(key, eab)}, key)
    eq((r.status, r.header("Location")), (200, kid), "EAB bound to the existing account: %s" % r.body[:200])
    eq(new_order(key, kid, ["eab2." + DOMAIN]).status, 201, "bound account orders")
    # The EAB key is spent.
    other = ec.generate_private_key(ec.SECP256R1())
    r = jws_post(dir_json()["newAccount"], {"externalAccountBinding": eab_payload(other, eab)}, other)
    check(r.status in (400, 403), "a spent EAB key: %d %s" % (r.status, r.body[:200]))
    # A new account with EAB orders under always-required.
    ekey, ekid = new_account(eab=srv().data("POST", MOUNT + "/roles/%s/acme/new-eab" % ROLE))
    order, _ = issue(ekey, ekid, ["eab3." + DOMAIN])
    eq(order["status"], "valid", "an EAB-bound account orders under always-required")
    acme_config(eab_policy="not-required")
    key2, kid2 = new_account()
    eq(new_order(key2, kid2, ["eab4." + DOMAIN]).status, 201, "not-required again")


if __name__ == "__main__":
    H.main(globals())
