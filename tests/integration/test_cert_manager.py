#!/usr/bin/python3
"""The exact requests cert-manager's Vault issuer sends
(internal/vault/vault.go), and the checks it applies to the answer."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check, eq  # noqa: E402

HOUR = 3600
GO_HEADERS = {"User-Agent": "Go-http-client/1.1", "Accept-Encoding": "gzip", "X-Vault-Request": "true"}


def go_request(s, method, path, params=None, token=True):
    """As the Vault Go client sends it: JSON body of string values, no
    Content-Type, X-Vault-Token when the client holds one."""
    c = H.Http(s.url)
    h = dict(GO_HEADERS)
    if token:
        h["X-Vault-Token"] = s.token
    body = json.dumps(params).encode() if params is not None else None
    try:
        return c.request(method, path, body=body, headers=h, token="")
    finally:
        c.close()


def setup_role(s, name, max_ttl):
    s.ok("POST", "pki/roles/" + name, {
        "allowed_domains": "example.com", "allow_subdomains": True,
        "allowed_uri_sans": "spiffe://cluster.local/*", "max_ttl": max_ttl}, statuses=(200, 204))


def cm_sign(s, role, cn, dns, ips, uris, duration="2160h0m0s"):
    key = H.gen_key("rsa2048")  # cert-manager's default private key: RSA 2048
    csr = H.make_csr(key, cn=cn, dns=dns, ips=ips, uris=uris)
    params = {
        "common_name": cn,
        "alt_names": ",".join(dns),
        "ip_sans": ",".join(ips),
        "uri_sans": ",".join(uris),
        "ttl": duration,
        "csr": csr,
        "exclude_cn_from_sans": "true",
    }
    check(all(isinstance(v, str) for v in params.values()), "test bug: cert-manager sends strings only")
    t0 = time.time()
    r = go_request(s, "POST", "/v1/pki/sign/" + role, params)
    return r, t0


def single_chain(pems):
    """cert-manager's ParseSingleCertificateChainPEM: deduplicate, then the
    certificates must form one linear chain.  Returns it leaf first."""
    certs, seen = [], set()
    for p in pems:
        for der in H.pem_certs(p):
            if der not in seen:
                seen.add(der)
                certs.append(H.load_cert(der))
    check(0 < len(certs) <= 1000, "chain has %d certificates" % len(certs))
    parents = {}
    for c in certs:
        if H.is_self_signed(c):
            continue
        ps = [p for p in certs if p is not c and p.subject == c.issuer]
        check(len(ps) == 1, "certificate %s has %d candidate parents: chain malformed" % (c.subject, len(ps)))
        parents[id(c)] = ps[0]
    children = {id(p) for p in parents.values()}
    leaves = [c for c in certs if id(c) not in children]
    check(len(leaves) == 1, "%d certificates are nobody's issuer: chain is not linear" % len(leaves))
    chain = [leaves[0]]
    while id(chain[-1]) in parents:
        chain.append(parents[id(chain[-1])])
        check(len(chain) <= len(certs), "chain loops")
    eq(len(chain), len(certs), "certificates on the single chain")
    return chain


def test_health_ready():
    s = H.dev_server()
    for tok in (False, True):
        r = go_request(s, "GET", "/v1/sys/health", token=tok)
        eq(r.status, 200, "sys/health (Issuer Ready needs 200/429/472/473)")
        j = r.json()
        eq((j.get("initialized"), j.get("sealed")), (True, False), "health initialized/sealed")


def test_sign_as_cert_manager():
    s = H.dev_server()
    setup_role(s, "cm", "2200h")
    dns = ["a.example.com", "b.example.com"]
    ips = ["10.0.0.1", "127.0.0.1"]
    uris = ["spiffe://cluster.local/ns/default/sa/app"]
    r, t0 = cm_sign(s, "cm", "cm.example.com", dns, ips, uris)
    check(r.status == 200, "sign: HTTP %d: %s" % (r.status, r.body[:500]))
    eq(r.ctype, "application/json", "Content-Type")
    d = r.data
    for f in ("certificate", "issuing_ca", "serial_number"):
        check(isinstance(d.get(f), str) and d[f], "%s is not a non-empty string: %r" % (f, d.get(f)))
    check(isinstance(d.get("ca_chain"), list) and all(isinstance(x, str) for x in d["ca_chain"]),
          "ca_chain must decode as []string: %r" % (d.get("ca_chain"),))
    chain = single_chain(d["ca_chain"] + [d["issuing_ca"], d["certificate"]])
    leaf = chain[0]
    eq(H.colon_serial(leaf), d["serial_number"], "leaf is the certificate")
    check(H.is_self_signed(chain[-1]), "chain does not reach a self-signed root (ca.crt would be the intermediate)")
    H.verify_chain(H.der_to_pem(chain[-1].public_bytes(_der())),
                   "".join(H.der_to_pem(c.public_bytes(_der())) for c in chain[1:-1]), d["certificate"])

    eq(H.cert_cn(leaf), "cm.example.com", "CN")
    got_dns, got_ips, got_uris, _ = H.cert_sans(leaf)
    eq(sorted(got_dns), dns, "DNS SANs (CN excluded)")
    eq(sorted(got_ips), ips, "IP SANs")
    eq(got_uris, uris, "URI SANs")

    na, nb = H.not_after(leaf), H.not_before(leaf)
    check(abs(na - (t0 + 2160 * HOUR)) < 60, "NotAfter is now%+ds, want ttl 2160h" % (na - t0))
    check(abs(nb - (t0 - 30)) < 15, "NotBefore is now%+ds, want -30s (backdate)" % (nb - t0))


def test_ttl_clamped_to_role_max():
    s = H.dev_server()
    setup_role(s, "cm-short", "720h")
    r, t0 = cm_sign(s, "cm-short", "short.example.com", ["short.example.com"], [], [])
    check(r.status == 200, "sign: HTTP %d: %s" % (r.status, r.body[:500]))
    leaf = H.load_cert(r.data["certificate"])
    na, nb = H.not_after(leaf), H.not_before(leaf)
    check(abs(na - (t0 + 720 * HOUR)) < 60, "NotAfter is now%+ds, want min(2160h, max_ttl 720h)" % (na - t0))
    check(abs(nb - (t0 - 30)) < 15, "NotBefore is now%+ds, want -30s" % (nb - t0))
    check(r.json().get("warnings"), "clamping without a warning")
    # CN in the CSR's SANs stays there (use_csr_sans), even with exclude_cn_from_sans.
    eq(H.cert_sans(leaf)[0], ["short.example.com"], "SANs from the CSR")


def test_sign_refusals_are_json():
    """cert-manager surfaces the errors text in the CertificateRequest."""
    s = H.dev_server()
    setup_role(s, "cm", "2200h")
    r, _ = cm_sign(s, "cm", "evil.org", ["evil.org"], [], [])
    H.expect_error(r, 400, "name outside the role", contains="evil.org")
    r, _ = cm_sign(s, "cm", "u.example.com", ["u.example.com"], [], ["spiffe://other/x"])
    H.expect_error(r, 400, "URI SAN outside the role", contains="spiffe://other/x")
    r, _ = cm_sign(s, "no-such-role", "u.example.com", ["u.example.com"], [], [])
    H.expect_error(r, 400, "unknown role", contains="no-such-role")


def _der():
    from cryptography.hazmat.primitives import serialization
    return serialization.Encoding.DER


if __name__ == "__main__":
    H.main(globals())
