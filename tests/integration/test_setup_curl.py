#!/usr/bin/python3
"""The dev server and the README's curl flow; issue and sign with every key
type, output formats, chain shape and the raw CA endpoints."""

import base64
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check, eq  # noqa: E402


def srv():
    return H.dev_server()


def root_pem(s, mount="pki"):
    r = s.ok("GET", mount + "/ca_chain", token="")
    roots = [c for c in H.pem_certs(r.text) if H.is_self_signed(H.load_cert(c))]
    check(len(roots) == 1, "%s/ca_chain holds %d self-signed certs" % (mount, len(roots)))
    return H.der_to_pem(roots[0])


def role(s, name, **fields):
    body = {"allowed_domains": "example.com", "allow_subdomains": True}
    body.update(fields)
    s.ok("POST", "pki/roles/" + name, body, statuses=(200, 204))


def public_key_desc(key):
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    if isinstance(key, rsa.RSAPublicKey):
        return ("rsa", key.key_size)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return ("ec", key.curve.key_size)
    if isinstance(key, ed25519.Ed25519PublicKey):
        return ("ed25519", 0)
    return (type(key).__name__, -1)


def spki(key):
    from cryptography.hazmat.primitives import serialization
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_private(pem_or_der):
    from cryptography.hazmat.primitives import serialization
    if isinstance(pem_or_der, str):
        return serialization.load_pem_private_key(pem_or_der.encode(), password=None)
    return serialization.load_der_private_key(pem_or_der, password=None)


# ---------------------------------------------------------------- server up


def test_health():
    s = srv()
    r = s.health()
    eq(r.status, 200, "health status")
    eq(r.ctype, "application/json", "health Content-Type")
    j = r.json()
    eq(j.get("initialized"), True, "initialized")
    eq(j.get("sealed"), False, "sealed")
    eq(j.get("standby"), False, "standby")
    check(isinstance(j.get("version"), str) and j["version"], "health has no version: %r" % j)
    h = s.req("HEAD", "sys/health", token="")
    eq(h.status, 200, "HEAD sys/health")
    # No body after a HEAD answer: the next answer on the same connection must parse.
    c = H.Http(s.url)
    eq(c.request("HEAD", "/v1/sys/health").body, b"", "HEAD body")
    r = c.request("GET", "/v1/sys/health")
    eq((r.status, r.json().get("initialized")), (200, True), "GET after HEAD on one keep-alive connection")
    c.close()


def test_dev_prints_root_token():
    s = srv()
    out = s.stdout_text() + s.stderr_text()
    check(re.search(r"Root Token: " + re.escape(s.token), out),
          "dev server did not print 'Root Token: %s'" % s.token)


def test_dev_mount_layout():
    """First start: a pki mount whose default issuer is an EC P-256
    intermediate under an EC P-256 root."""
    s = srv()
    ca = H.load_cert(s.ok("GET", "pki/ca/pem", token="").text)
    check(not H.is_self_signed(ca), "default issuer of the dev mount is self-signed, want the intermediate")
    from cryptography.hazmat.primitives.asymmetric import ec
    check(isinstance(ca.public_key(), ec.EllipticCurvePublicKey) and ca.public_key().curve.name == "secp256r1",
          "dev intermediate key is %r" % (public_key_desc(ca.public_key()),))
    root = H.load_cert(root_pem(s))
    check(isinstance(root.public_key(), ec.EllipticCurvePublicKey), "dev root is not EC")
    eq(ca.issuer, root.subject, "intermediate issuer")
    H.verify_chain(root_pem(s), "", s.ok("GET", "pki/ca/pem", token="").text)


# ---------------------------------------------------------------- the README


def readme_block():
    with open(os.path.join(H.REPO, "README.md")) as f:
        text = f.read()
    m = re.search(r"^## Your first certificate with curl\s*$(.*?)^## ", text, re.S | re.M)
    check(m, "README has no '## Your first certificate with curl' section")
    blocks = re.findall(r"```(?:sh|bash|shell)\n(.*?)```", m.group(1), re.S)
    check(blocks, "README curl section has no sh block")
    return "\n".join(blocks)


def test_readme_first_certificate():
    """Runs the README's curl section as written (only the two exports are
    replaced by this server's address and token)."""
    s = srv()
    script = readme_block()
    check("X-Vault-Token" in script and "/v1/pki/issue/" in script, "README flow does not issue with curl")
    body = "\n".join(l for l in script.splitlines() if not re.match(r"\s*export SIGIL_(ADDR|TOKEN)=", l))
    d = H.tmpdir("readme")
    env = dict(os.environ, SIGIL_ADDR=s.url, SIGIL_TOKEN=s.token)
    p = subprocess.run(["bash", "-euo", "pipefail", "-c", body], cwd=d, env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=120)
    out = p.stdout.decode("utf-8", "replace")
    check(p.returncode == 0, "README flow exit %d: %s" % (p.returncode, out[-800:]))
    check(re.search(r"www\.crt: OK", out), "README flow did not verify www.crt: %s" % out[-800:])
    check(re.search(r"api\.crt: OK", out), "README sign flow did not verify api.crt: %s" % out[-800:])
    cert = H.load_cert(open(os.path.join(d, "www.crt")).read())
    eq(H.cert_cn(cert), "www.example.com", "README certificate CN")
    key = load_private(open(os.path.join(d, "www.key")).read())
    eq(spki(key.public_key()), spki(cert.public_key()), "README key matches certificate")
    cert = H.load_cert(open(os.path.join(d, "api.crt")).read())
    eq(H.cert_cn(cert), "api.example.com", "README signed certificate CN")
    key = load_private(open(os.path.join(d, "api.key")).read())
    eq(spki(key.public_key()), spki(cert.public_key()), "README CSR key matches the signed certificate")


# ---------------------------------------------------------------- key types

KINDS = [
    ("ec256", "ec", 256),
    ("ec384", "ec", 384),
    ("rsa2048", "rsa", 2048),
    ("rsa3072", "rsa", 3072),
    ("rsa4096", "rsa", 4096),
    ("ed25519", "ed25519", 0),
]


def _issue_and_sign(kind, key_type, key_bits):
    s = srv()
    name = "kt-" + kind
    role(s, name, key_type=key_type, key_bits=key_bits, ttl="1h")
    roots = root_pem(s)

    # issue: the server generates the key
    d = s.data("POST", "pki/issue/" + name, {"common_name": kind + ".example.com"})
    eq(d.get("private_key_type"), key_type, "issue private_key_type")
    cert = H.load_cert(d["certificate"])
    eq(public_key_desc(cert.public_key()), (key_type, key_bits), "issued certificate key")
    key = load_private(d["private_key"])
    eq(spki(key.public_key()), spki(cert.public_key()), "returned private key matches the certificate")
    eq(d["serial_number"], H.colon_serial(cert), "serial_number is the certificate serial in colon hex")
    H.verify_issued(d, roots)

    # sign: the client keeps its key
    kpem = H.gen_key(kind)
    csr = H.make_csr(kpem, cn="sign-" + kind + ".example.com")
    d = s.data("POST", "pki/sign/" + name, {"csr": csr, "common_name": "sign-" + kind + ".example.com"})
    check("private_key" not in d, "sign returned a private key")
    cert = H.load_cert(d["certificate"])
    eq(spki(cert.public_key()), spki(load_private(kpem).public_key()), "signed certificate carries the CSR key")
    eq(H.cert_cn(cert), "sign-" + kind + ".example.com", "signed CN")
    H.verify_issued(d, roots)
    # A CSR of another key type is refused by this role.
    other = "ed25519" if key_type != "ed25519" else "ec256"
    csr2 = H.make_csr(H.gen_key(other), cn="x.example.com")
    r = s.req("POST", "pki/sign/" + name, {"csr": csr2})
    H.expect_error(r, 400, "sign %s CSR with a %s role" % (other, kind))


def _make_kind_test(kind, key_type, key_bits):
    def t():
        _issue_and_sign(kind, key_type, key_bits)
    t.__name__ = "test_issue_sign_" + kind
    return t


for _k, _t, _b in KINDS:
    globals()["test_issue_sign_" + _k] = _make_kind_test(_k, _t, _b)


# ---------------------------------------------------------------- formats


def test_format_der():
    s = srv()
    role(s, "fmt", key_type="ec", key_bits=256)
    d = s.data("POST", "pki/issue/fmt", {"common_name": "der.example.com", "format": "der"})
    for field in ("certificate", "issuing_ca", "private_key"):
        check("-----BEGIN" not in d[field], "format=der: %s is PEM" % field)
    der = base64.b64decode(d["certificate"], validate=True)
    cert = H.load_cert(der)
    eq(H.colon_serial(cert), d["serial_number"], "der certificate serial")
    ca = H.load_cert(base64.b64decode(d["issuing_ca"], validate=True))
    eq(cert.issuer, ca.subject, "der issuing_ca is the issuer")
    for c in d.get("ca_chain") or []:
        H.load_cert(base64.b64decode(c, validate=True))
    key = load_private(base64.b64decode(d["private_key"], validate=True))
    eq(spki(key.public_key()), spki(cert.public_key()), "der private key matches")


def test_format_pem_bundle():
    s = srv()
    role(s, "fmt", key_type="ec", key_bits=256)
    d = s.data("POST", "pki/issue/fmt", {"common_name": "bundle.example.com", "format": "pem_bundle"})
    blocks = H.pem_blocks(d["certificate"])
    kinds = [t for t, _ in blocks]
    check(any(t.endswith("PRIVATE KEY") for t in kinds), "issue pem_bundle certificate lacks the key: %r" % kinds)
    certs = [H.load_cert(der) for t, der in blocks if t == "CERTIFICATE"]
    check(len(certs) >= 2, "pem_bundle holds %d certificates, want leaf + chain" % len(certs))
    eq(H.colon_serial(certs[0]), d["serial_number"], "first certificate of the bundle is the leaf")
    ca = H.load_cert(d["issuing_ca"])
    check(any(c.subject == ca.subject and not H.is_self_signed(c) for c in certs[1:]),
          "pem_bundle lacks the issuing CA")
    # sign: no key in the bundle
    csr = H.make_csr(H.gen_key("ec256"), cn="bundle2.example.com")
    d = s.data("POST", "pki/sign/fmt", {"csr": csr, "format": "pem_bundle"})
    kinds = [t for t, _ in H.pem_blocks(d["certificate"])]
    check(not any(t.endswith("PRIVATE KEY") for t in kinds), "sign pem_bundle holds a private key")
    check(kinds.count("CERTIFICATE") >= 2, "sign pem_bundle lacks the chain: %r" % kinds)


def test_private_key_format():
    s = srv()
    role(s, "pkf-ec", key_type="ec", key_bits=256)
    role(s, "pkf-rsa", key_type="rsa", key_bits=2048)
    d = s.data("POST", "pki/issue/pkf-ec", {"common_name": "k.example.com"})
    check(d["private_key"].startswith("-----BEGIN EC PRIVATE KEY-----"),
          "default EC key is not SEC1 PEM: %r" % d["private_key"][:40])
    d = s.data("POST", "pki/issue/pkf-ec", {"common_name": "k.example.com", "private_key_format": "pkcs8"})
    check(d["private_key"].startswith("-----BEGIN PRIVATE KEY-----"),
          "pkcs8 EC key: %r" % d["private_key"][:40])
    load_private(d["private_key"])
    d = s.data("POST", "pki/issue/pkf-rsa", {"common_name": "k.example.com"})
    check(d["private_key"].startswith("-----BEGIN RSA PRIVATE KEY-----"),
          "default RSA key is not PKCS#1 PEM: %r" % d["private_key"][:40])
    d = s.data("POST", "pki/issue/pkf-rsa", {"common_name": "k.example.com", "private_key_format": "pkcs8"})
    check(d["private_key"].startswith("-----BEGIN PRIVATE KEY-----"), "pkcs8 RSA key")


def test_exclude_cn_from_sans():
    s = srv()
    role(s, "sans", key_type="ec", key_bits=256)
    d = s.data("POST", "pki/issue/sans", {"common_name": "cn.example.com", "alt_names": "alt.example.com"})
    dns = H.cert_sans(H.load_cert(d["certificate"]))[0]
    eq(sorted(dns), ["alt.example.com", "cn.example.com"], "SANs by default include the CN")
    d = s.data("POST", "pki/issue/sans", {"common_name": "cn.example.com", "alt_names": "alt.example.com",
                                          "exclude_cn_from_sans": True})
    cert = H.load_cert(d["certificate"])
    eq(H.cert_sans(cert)[0], ["alt.example.com"], "SANs with exclude_cn_from_sans")
    eq(H.cert_cn(cert), "cn.example.com", "CN still in the subject")


def test_remove_roots_from_chain():
    s = srv()
    role(s, "chain", key_type="ec", key_bits=256)
    d = s.data("POST", "pki/issue/chain", {"common_name": "c.example.com"})
    chain = [H.load_cert(c) for c in d["ca_chain"]]
    check(any(H.is_self_signed(c) for c in chain), "ca_chain lacks the root")
    d = s.data("POST", "pki/issue/chain", {"common_name": "c.example.com", "remove_roots_from_chain": True})
    chain = [H.load_cert(c) for c in d.get("ca_chain") or []]
    check(chain, "ca_chain empty after remove_roots_from_chain (the intermediate must stay)")
    check(not any(H.is_self_signed(c) for c in chain), "remove_roots_from_chain left a self-signed cert")


def test_ttl_clamp_warning():
    s = srv()
    role(s, "short", key_type="ec", key_bits=256, max_ttl="1h")
    t0 = time.time()
    r = s.ok("POST", "pki/issue/short", {"common_name": "t.example.com", "ttl": "2h"})
    j = r.json()
    warnings = j.get("warnings")
    check(isinstance(warnings, list) and warnings, "no warning when the TTL was clamped: %r" % warnings)
    check(any("ttl" in w.lower() for w in warnings), "warning does not mention the TTL: %r" % warnings)
    cert = H.load_cert(j["data"]["certificate"])
    na = H.not_after(cert)
    check(abs(na - (t0 + 3600)) < 60, "clamped NotAfter is now%+ds, want +3600" % (na - t0))
    nb = H.not_before(cert)
    check(abs(nb - (t0 - 30)) < 15, "NotBefore is now%+ds, want -30 (backdate)" % (nb - t0))
    j = s.ok("POST", "pki/issue/short", {"common_name": "t.example.com", "ttl": "30m"}).json()
    check(not j.get("warnings"), "warnings without clamping: %r" % j.get("warnings"))
    na = H.not_after(H.load_cert(j["data"]["certificate"]))
    check(abs(na - (time.time() + 1800)) < 60, "NotAfter for ttl=30m is now%+ds" % (na - time.time()))


def test_expiration_is_integer():
    s = srv()
    role(s, "exp", key_type="ec", key_bits=256)
    r = s.ok("POST", "pki/issue/exp", {"common_name": "e.example.com", "ttl": "3h"})
    check(re.search(rb'"expiration"\s*:\s*\d', r.body), "expiration is not a JSON number: %r" % r.body[:300])
    d = r.data
    check(type(d["expiration"]) is int, "expiration type %s" % type(d["expiration"]).__name__)
    eq(d["expiration"], H.not_after(H.load_cert(d["certificate"])), "expiration == NotAfter")


def test_ca_chain_array_with_root():
    s = srv()
    role(s, "exp", key_type="ec", key_bits=256)
    d = s.data("POST", "pki/issue/exp", {"common_name": "e.example.com"})
    chain = d.get("ca_chain")
    check(isinstance(chain, list) and len(chain) >= 2, "ca_chain is not an array of >= 2: %r" % (chain,))
    check(all(isinstance(c, str) and len(H.pem_certs(c)) == 1 for c in chain),
          "each ca_chain entry must be one PEM certificate")
    eq(H.pem_certs(chain[0]), H.pem_certs(d["issuing_ca"]), "ca_chain[0] is issuing_ca")
    certs = [H.load_cert(c) for c in chain]
    check(H.is_self_signed(certs[-1]), "ca_chain does not end with the root")
    for child, parent in zip(certs, certs[1:]):
        eq(child.issuer, parent.subject, "ca_chain order (issuer first, then parents)")
    H.verify_chain(chain[-1], "".join(c + "\n" for c in chain[:-1]), d["certificate"])


def test_ca_endpoints_content_types():
    s = srv()
    r = s.ok("GET", "pki/ca", token="")
    eq(r.ctype, "application/pkix-cert", "pki/ca Content-Type")
    ca = H.load_cert(r.body)
    r = s.ok("GET", "pki/ca/pem", token="")
    eq(r.ctype, "application/pem-certificate-chain", "pki/ca/pem Content-Type")
    eq(len(H.pem_certs(r.text)), 1, "number of certificates in ca/pem")
    eq(H.load_cert(r.text), ca, "ca/pem is the same certificate as ca")
    r = s.ok("GET", "pki/ca_chain", token="")
    eq(r.ctype, "application/pem-certificate-chain", "pki/ca_chain Content-Type")
    certs = [H.load_cert(c) for c in H.pem_certs(r.text)]
    check(len(certs) >= 2, "ca_chain has %d certificates" % len(certs))
    eq(certs[0], ca, "ca_chain starts with the default issuer")
    check(H.is_self_signed(certs[-1]), "ca_chain does not end with the root")


def test_cert_read_public():
    s = srv()
    role(s, "exp", key_type="ec", key_bits=256)
    d = s.data("POST", "pki/issue/exp", {"common_name": "read.example.com"})
    serial = d["serial_number"]
    r = s.ok("GET", "pki/cert/" + serial, token="")
    eq(H.pem_certs(r.data["certificate"]), H.pem_certs(d["certificate"]), "cert/:serial certificate")
    eq(r.data.get("revocation_time"), 0, "revocation_time of a valid cert")
    r = s.ok("GET", "pki/cert/" + serial.replace(":", "-"), token="")
    eq(H.pem_certs(r.data["certificate"]), H.pem_certs(d["certificate"]), "cert/:serial with hyphens")
    r = s.ok("GET", "pki/cert/%s/raw" % serial, token="")
    eq(r.ctype, "application/pkix-cert", "cert/:serial/raw Content-Type")
    eq(r.body, H.pem_certs(d["certificate"])[0], "cert/:serial/raw is the DER")
    r = s.ok("GET", "pki/cert/%s/raw/pem" % serial, token="")
    eq(r.ctype, "application/pem-certificate-chain", "cert/:serial/raw/pem Content-Type")
    eq(H.pem_certs(r.text), H.pem_certs(d["certificate"]), "cert/:serial/raw/pem")


def test_put_list_and_loose_typing():
    """PUT is POST (the Go client), ?list=true is LIST, booleans may be
    strings and durations integers."""
    s = srv()
    s.ok("PUT", "pki/roles/loose", {"allowed_domains": "example.com", "allow_subdomains": "true",
                                    "key_type": "ec", "key_bits": "256", "max_ttl": 7200},
         statuses=(200, 204))
    rd = s.data("GET", "pki/roles/loose")
    eq(rd.get("max_ttl"), 7200, "role max_ttl read back as integer seconds")
    eq(rd.get("allow_subdomains"), True, "string 'true' stored as boolean")
    d = s.data("PUT", "pki/issue/loose", {"common_name": "put.example.com", "ttl": 600})
    na = H.not_after(H.load_cert(d["certificate"]))
    check(abs(na - (time.time() + 600)) < 60, "integer ttl 600 gave NotAfter now%+ds" % (na - time.time()))
    keys = s.data("GET", "pki/roles?list=true")["keys"]
    check("loose" in keys, "GET ?list=true roles: %r" % keys)
    keys = s.data("LIST", "pki/roles")["keys"]
    check("loose" in keys, "LIST roles: %r" % keys)


def test_revoke_reason_and_list_paging():
    """Sigil's documented extensions: an RFC 5280 revocation reason, and
    after/limit paging of LIST certs (the full list stays the default)."""
    s = srv()
    role(s, "page", key_type="ec", key_bits=256, ttl="1h")
    serials = [s.data("POST", "pki/issue/page", {"common_name": "p%d.example.com" % i})["serial_number"]
               for i in range(5)]
    full = s.data("LIST", "pki/certs")["keys"]
    check(set(serials) <= set(full), "LIST certs lacks issued serials")
    paged, after = [], None
    for _ in range(len(full) + 2):
        q = "pki/certs?limit=2" + ("&after=" + after if after else "")
        r = s.req("LIST", q)
        if r.status == 404:
            break
        keys = H.expect_ok(r, "LIST " + q).data["keys"]
        check(0 < len(keys) <= 2, "page of %d keys with limit=2" % len(keys))
        paged += keys
        after = keys[-1]
        if len(keys) < 2:
            break
    eq(paged, full, "LIST certs pages joined == the full list")
    r = s.req("POST", "pki/revoke", {"serial_number": serials[0], "reason": "bogus"})
    H.expect_error(r, 400, "unknown revocation reason", contains="bogus")
    eq(s.data("GET", "pki/cert/" + serials[0], token="")["revocation_time"], 0, "refused revoke revoked anyway")
    rv = s.data("POST", "pki/revoke", {"serial_number": serials[0], "reason": "keyCompromise"})
    check(rv.get("revocation_time", 0) > 0, "revoke with reason: %r" % rv)
    check(serials[0] in s.data("LIST", "pki/certs/revoked")["keys"], "revoked serial not in certs/revoked")
    rv2 = s.data("POST", "pki/revoke", {"serial_number": serials[0]})
    eq(rv2.get("revocation_time"), rv["revocation_time"], "second revoke keeps the first time")


def test_role_post_replaces_patch_merges():
    s = srv()
    s.ok("POST", "pki/roles/merge", {"allowed_domains": "example.com", "allow_subdomains": True,
                                     "key_type": "ec", "max_ttl": "5h"}, statuses=(200, 204))
    s.ok("PATCH", "pki/roles/merge", {"max_ttl": "2h"}, headers=("Content-Type: application/merge-patch+json",),
         statuses=(200, 204))
    r = s.data("GET", "pki/roles/merge")
    eq((r.get("max_ttl"), r.get("allowed_domains"), r.get("key_type")), (7200, ["example.com"], "ec"),
       "PATCH kept the other fields")
    s.ok("POST", "pki/roles/merge", {"max_ttl": "2h"}, statuses=(200, 204))
    r = s.data("GET", "pki/roles/merge")
    eq((r.get("allowed_domains"), r.get("allow_subdomains"), r.get("key_type")), ([], False, "rsa"),
       "POST reset the unspecified fields to their defaults")
    H.expect_error(s.req("PATCH", "pki/roles/no-such-role", {"max_ttl": "1h"},
                         headers=("Content-Type: application/merge-patch+json",)), 404, "PATCH of a missing role")
    s.ok("DELETE", "pki/roles/merge", statuses=(200, 204))
    eq(s.req("GET", "pki/roles/merge").status, 404, "role after DELETE")


def test_revoke_forms():
    """revoke by serial, by certificate PEM, revoke-with-key; issuers refused."""
    s = srv()
    role(s, "rev", key_type="ec", key_bits=256, ttl="1h")
    a, b, c = (s.data("POST", "pki/issue/rev", {"common_name": "r%d.example.com" % i}) for i in range(3))
    rv = s.data("POST", "pki/revoke", {"certificate": b["certificate"]})
    check(rv.get("revocation_time", 0) > 0, "revoke by certificate: %r" % rv)
    check(s.data("GET", "pki/cert/" + b["serial_number"], token="")["revocation_time"] > 0,
          "revoke by certificate did not revoke it")
    rv = s.data("POST", "pki/revoke-with-key", {"serial_number": c["serial_number"], "private_key": c["private_key"]})
    check(rv.get("revocation_time", 0) > 0, "revoke-with-key: %r" % rv)
    rd = s.data("GET", "pki/cert/" + c["serial_number"], token="")
    check(rd["revocation_time"] > 0 and rd.get("revocation_time_rfc3339"), "revoke-with-key read back: %r" %
          {k: v for k, v in rd.items() if k != "certificate"})
    eq(s.data("GET", "pki/cert/" + a["serial_number"], token="")["revocation_time"], 0, "untouched cert revoked")
    revoked = s.data("LIST", "pki/certs/revoked")["keys"]
    check(b["serial_number"] in revoked and c["serial_number"] in revoked and a["serial_number"] not in revoked,
          "certs/revoked: %r" % revoked)
    # The issuing CA itself cannot be revoked through pki/revoke.
    ca = H.load_cert(a["issuing_ca"])
    r = s.req("POST", "pki/revoke", {"serial_number": H.colon_serial(ca)})
    H.expect_error(r, 400, "revoking the issuer through pki/revoke")
    H.expect_ok(s.health(), "health")
    eq(H.load_cert(s.ok("GET", "pki/ca", token="").body), ca, "CA still served")


def test_sign_verbatim_and_issuer_paths():
    s = srv()
    key = H.gen_key("ec256")
    csr = H.make_csr(key, cn="verbatim.other.org", dns=["verbatim.other.org", "x.other.org"], ips=["10.9.8.7"])
    d = s.data("POST", "pki/sign-verbatim", {"csr": csr, "ttl": "1h"})
    cert = H.load_cert(d["certificate"])
    eq(H.cert_cn(cert), "verbatim.other.org", "sign-verbatim CN from the CSR")
    dns, ips, _, _ = H.cert_sans(cert)
    eq((sorted(dns), ips), (["verbatim.other.org", "x.other.org"], ["10.9.8.7"]), "sign-verbatim SANs")
    from cryptography import x509
    bc = None
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        pass
    check(bc is None or not bc.ca, "sign-verbatim produced a CA certificate")
    H.verify_issued(d, root_pem(s))
    # issuer/:ref/{issue,sign}/:role pick the issuer from the path.
    role(s, "ipath", key_type="ec", key_bits=256, ttl="1h")
    dflt = s.data("GET", "pki/issuer/default")
    d = s.data("POST", "pki/issuer/%s/issue/ipath" % dflt["issuer_id"], {"common_name": "ip.example.com"})
    eq(H.load_cert(d["certificate"]).issuer, H.load_cert(dflt["certificate"]).subject, "issuer/:ref/issue")
    d = s.data("POST", "pki/issuer/default/sign/ipath", {"csr": H.make_csr(key, cn="ip2.example.com")})
    eq(H.load_cert(d["certificate"]).issuer, H.load_cert(dflt["certificate"]).subject, "issuer/:ref/sign")


if __name__ == "__main__":
    H.main(globals())
