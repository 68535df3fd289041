#!/usr/bin/python3
"""The OCSP responder against the real server with the real `openssl ocsp`:
good, revoked (with reason), unknown; nonce and no nonce; GET and POST;
two certificates in one request; signature verification through the issuer
chain and with -VAfile (the delegated responder certificate, or the issuer
when ocsp_sign_with_issuer); RFC 5019 caching headers on GET; a revocation
changes the answer at once; bad input (truncated, oversized, garbage,
unknown issuer, wrong hash algorithm) is answered with OCSP error statuses
and the server stays up."""

import base64
import json
import os
import re
import sys
import time
import urllib.parse

from cryptography import x509
from cryptography.x509 import ocsp as cocsp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check, eq  # noqa: E402

MOUNT = "ocsppki"
_env = {}

MALFORMED = bytes([0x30, 0x03, 0x0a, 0x01, 0x01])
UNAUTHORIZED = bytes([0x30, 0x03, 0x0a, 0x01, 0x06])


def env():
    """One server and mount for the file: root, intermediate (default issuer), a role, three leaves."""
    if _env:
        return _env
    s = H.dev_server("ocsp")
    root, inter = H.make_ca(s, MOUNT)
    s.ok("POST", MOUNT + "/roles/web", {"allowed_domains": "example.com", "allow_subdomains": True,
                                        "key_type": "ec", "max_ttl": "100h"}, statuses=(200, 204))
    s.ok("POST", MOUNT + "/config/urls", {"ocsp_servers": [s.url + "/v1/%s/ocsp" % MOUNT]}, statuses=(200, 204))
    leaves = {}
    for name in ("good", "bad", "later", "other"):
        d = s.data("POST", MOUNT + "/issue/web", {"common_name": name + ".example.com", "ttl": "10h"})
        leaves[name] = d
    _env.update(s=s, root=root, inter=inter, leaves=leaves,
                files={"root": H.tmpfile(root, "root.pem"), "inter": H.tmpfile(inter, "inter.pem"),
                       "chain": H.tmpfile(inter + "\n" + root + "\n", "chain.pem")})
    for name, d in leaves.items():
        _env["files"][name] = H.tmpfile(d["certificate"], name + ".pem")
    return _env


def url(e, sub=""):
    return e["s"].url + "/v1/%s/%socsp" % (MOUNT, sub)


def ocsp_cli(e, certs, *extra, issuer=None, sub="", md=None):
    """openssl ocsp over POST; returns (rc, stdout+stderr). md (e.g. "-sha256") picks the CertID hash."""
    args = ["ocsp", "-issuer", issuer or e["files"]["inter"]] + ([md] if md else [])
    for c in certs:
        args += ["-cert", e["files"][c]]
    args += ["-url", url(e, sub), "-CAfile", e["files"]["chain"]] + list(extra)
    p = H.openssl(*args, check_rc=False)
    return p.returncode, p.stdout.decode() + p.stderr.decode()


def status_line(out, name):
    m = re.search(re.escape(name) + r"\.pem: (\w+)", out)
    return m.group(1) if m else None


def test_good_post_with_nonce_verified():
    e = env()
    rc, out = ocsp_cli(e, ["good"])
    check(rc == 0 and "Response verify OK" in out, "verify: " + out)
    eq(status_line(out, "good"), "good", "status")
    check("WARNING" not in out, "nonce echoed: " + out)  # openssl warns when its nonce is missing


def test_good_without_nonce_and_cached():
    e = env()
    rc, out = ocsp_cli(e, ["good"], "-no_nonce", "-resp_text")
    check(rc == 0 and "Response verify OK" in out, out)
    eq(status_line(out, "good"), "good", "status")
    check("OCSP Nonce" not in out, "no nonce asked, none given")
    check("Next Update:" in out and "This Update:" in out, "times: " + out[:1500])
    # RFC 5019 2.2.3 byKey responder id, delegated responder certificate included.
    check("Responder Id: " in out and "OCSP Signing" in out and "OCSP No Check" in out, out[:3000])


def test_revoked_with_reason_at_once():
    e = env()
    s = e["s"]
    rc, out = ocsp_cli(e, ["bad"], "-no_nonce")
    eq(status_line(out, "bad"), "good", "before revocation")
    s.data("POST", MOUNT + "/revoke", {"serial_number": e["leaves"]["bad"]["serial_number"], "reason": "keyCompromise"})
    # No wait: the pre-signed answer was replaced by the revocation itself.
    rc, out = ocsp_cli(e, ["bad"], "-no_nonce")
    check(rc == 0 and "Response verify OK" in out, out)
    eq(status_line(out, "bad"), "revoked", "after revocation")
    check("Reason: keyCompromise" in out, "reason: " + out)
    check("Revocation Time:" in out, out)


def test_unknown_serial():
    e = env()
    # A certificate the intermediate never issued: same issuer name and key hashes, a foreign serial.
    out = H.openssl("ocsp", "-issuer", e["files"]["inter"], "-serial", "0x7e57ab1e0000000000000001",
                    "-url", url(e), "-CAfile", e["files"]["chain"], check_rc=False)
    text = out.stdout.decode() + out.stderr.decode()
    check("Response verify OK" in text and re.search(r"0x7[eE]57[aA][bB]1[eE]0+1: unknown", text), text)


def test_two_certificates_in_one_request():
    e = env()
    rc, out = ocsp_cli(e, ["good", "bad"])
    check(rc == 0 and "Response verify OK" in out, out)
    eq(status_line(out, "good"), "good", "first")
    eq(status_line(out, "bad"), "revoked", "second")


def _reqout(e, cert, *extra):
    path = os.path.join(H.tmpdir("req"), "req.der")
    H.openssl("ocsp", "-issuer", e["files"]["inter"], "-cert", e["files"][cert], "-reqout", path, *extra)
    with open(path, "rb") as f:
        return f.read()


def _check_resp(e, cert, body, *extra):
    path = os.path.join(H.tmpdir("resp"), "resp.der")
    with open(path, "wb") as f:
        f.write(body)
    p = H.openssl("ocsp", "-respin", path, "-issuer", e["files"]["inter"], "-cert", e["files"][cert],
                  "-CAfile", e["files"]["chain"], *extra, check_rc=False)
    return p.returncode, p.stdout.decode() + p.stderr.decode()


def test_get_with_caching_headers():
    e = env()
    s = e["s"]
    der = _reqout(e, "good", "-no_nonce")
    b64 = base64.b64encode(der).decode()
    r = s.req("GET", MOUNT + "/ocsp/" + urllib.parse.quote(b64, safe=""), token="")
    eq(r.status, 200, "GET status")
    eq(r.ctype, "application/ocsp-response", "content type")
    cc = r.headers.get("cache-control", "")
    m = re.search(r"max-age=(\d+)", cc)
    check(m and int(m.group(1)) > 0 and "public" in cc and "no-transform" in cc, "Cache-Control " + cc)
    for h in ("etag", "last-modified", "expires"):
        check(r.headers.get(h), "missing " + h + " in " + repr(r.headers))
    rc, out = _check_resp(e, "good", r.body, "-no_nonce")
    check(rc == 0 and "Response verify OK" in out and status_line(out, "good") == "good", out)
    # Pre-signed: the same GET returns the same bytes, and a matching ETag a 304.
    r2 = s.req("GET", MOUNT + "/ocsp/" + urllib.parse.quote(b64, safe=""), token="")
    eq(r2.body, r.body, "cached answer")
    r3 = s.req("GET", MOUNT + "/ocsp/" + urllib.parse.quote(b64, safe=""), token="",
               headers=["If-None-Match: " + r.headers["etag"]])
    eq(r3.status, 304, "conditional GET")
    # Unescaped base64 (with '/' and '+') in the path works too, and under issuer/:ref/.
    r4 = s.req("GET", MOUNT + "/issuer/default/ocsp/" + b64, token="")
    rc, out = _check_resp(e, "good", r4.body, "-no_nonce")
    check(rc == 0 and status_line(out, "good") == "good", out)


def test_get_base64_with_empty_segments():
    """RFC 6960 A.1 base64 holds "//" often: the route must not see an empty path segment there."""
    e = env()
    s = e["s"]
    path = os.path.join(H.tmpdir("req"), "req.der")
    # 32 one bits in the serial always make four '/' in a row in the base64 text, whatever the alignment.
    H.openssl("ocsp", "-issuer", e["files"]["inter"], "-serial", "0x01FFFFFFFF01", "-no_nonce", "-reqout", path)
    with open(path, "rb") as f:
        der = f.read()
    b64 = base64.b64encode(der).decode()
    check("//" in b64, b64)
    for what, text in (("escaped", urllib.parse.quote(b64, safe="")), ("raw", b64)):
        r = s.req("GET", MOUNT + "/ocsp/" + text, token="")
        eq(r.status, 200, what + " status")
        eq(r.ctype, "application/ocsp-response", what + " type")
        rc, out = _check_resp(e, "good", r.body, "-no_nonce", "-resp_text")
        check("Response verify OK" in out and re.search(r"Cert Status: unknown", out), what + ": " + out)


def test_audited_with_an_audit_device():
    """OCSP answers run on libmicrohttpd's thread only while no audit device is enabled
    (DESIGN.md rule 6: with one, the request and response lines are durable first)."""
    e = env()
    s = e["s"]
    der = _reqout(e, "good", "-no_nonce")
    path = MOUNT + "/ocsp/" + urllib.parse.quote(base64.b64encode(der).decode(), safe="")
    first = s.req("GET", path, token="")  # cached, answered inline
    log = os.path.join(H.tmpdir("audit"), "audit.log")
    s.ok("POST", "sys/audit/ocspfile", {"type": "file", "options": {"file_path": log}}, statuses=(200, 204))
    try:
        r = s.req("GET", path, token="")
        eq(r.status, 200, "status")
        eq(r.body, first.body, "the same pre-signed answer")
        r = s.req("POST", MOUNT + "/ocsp", body=der, token="", headers=["Content-Type: application/ocsp-request"])
        eq(r.status, 200, "POST status")
    finally:
        s.ok("DELETE", "sys/audit/ocspfile", statuses=(200, 204))
    with open(log) as f:
        lines = [json.loads(x) for x in f if x.strip()]
    got = [(x.get("type"), x.get("request", {}).get("path") or "", x.get("request", {}).get("operation"))
           for x in lines]
    for t in ("request", "response"):
        check(any(g[0] == t and g[1].startswith(MOUNT + "/ocsp/") and g[2] == "read" for g in got),
              "GET %s line: %r" % (t, got))
        check((t, MOUNT + "/ocsp", "update") in got, "POST %s line: %r" % (t, got))


def test_get_nonce_is_fresh():
    e = env()
    s = e["s"]
    der = _reqout(e, "good")  # openssl adds a nonce by default
    path = MOUNT + "/ocsp/" + urllib.parse.quote(base64.b64encode(der).decode(), safe="")
    r1 = s.req("GET", path, token="")
    r2 = s.req("GET", path, token="")
    rc, out = _check_resp(e, "good", r1.body, "-resp_text", "-no_nonce")  # the nonce is our own request's, not a new one
    check(rc == 0 and "OCSP Nonce" in out and "Response verify OK" in out, out)
    check(r1.body != r2.body, "a nonce answer is signed per request")
    check("no-store" in r1.headers.get("cache-control", ""), "nonce answer must not be cached: %r" % r1.headers)


def test_vafile_delegated_and_issuer_signed():
    e = env()
    s = e["s"]
    der = _reqout(e, "good", "-no_nonce")
    r = s.req("POST", MOUNT + "/ocsp", body=der, token="", headers=["Content-Type: application/ocsp-request"])
    resp = cocsp.load_der_ocsp_response(r.body)
    check(len(resp.certificates) == 1, "responder certificate included")
    rcert = resp.certificates[0]
    eku = rcert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    check(x509.oid.ExtendedKeyUsageOID.OCSP_SIGNING in eku, "EKU")
    rcert.extensions.get_extension_for_oid(x509.ObjectIdentifier("1.3.6.1.5.5.7.48.1.5"))  # ocsp-nocheck
    life = H.epoch(rcert.not_valid_after) - H.epoch(rcert.not_valid_before)
    check(life <= 8 * 86400, "short-lived responder: %d s" % life)
    va = H.tmpfile(rcert.public_bytes(__import__("cryptography.hazmat.primitives.serialization",
                                                 fromlist=["Encoding"]).Encoding.PEM), "va.pem")
    rc, out = _check_resp(e, "good", r.body, "-VAfile", va, "-no_nonce")
    check(rc == 0 and "Response verify OK" in out, "-VAfile responder: " + out)
    # Signed by the issuer itself when configured: -VAfile with the intermediate.
    s.ok("POST", MOUNT + "/config/crl", {"ocsp_sign_with_issuer": True}, statuses=(200, 204))
    try:
        rc, out = ocsp_cli(e, ["good"], "-VAfile", e["files"]["inter"])
        check(rc == 0 and "Response verify OK" in out and status_line(out, "good") == "good", out)
        r = s.req("POST", MOUNT + "/ocsp", body=der, token="", headers=["Content-Type: application/ocsp-request"])
        check(len(cocsp.load_der_ocsp_response(r.body).certificates) == 0, "issuer-signed: no certificates")
    finally:
        s.ok("POST", MOUNT + "/config/crl", {"ocsp_sign_with_issuer": False}, statuses=(200, 204))


def test_hash_algorithms():
    e = env()
    for md in ("-sha256", "-sha384", "-sha512"):
        rc, out = ocsp_cli(e, ["good"], md=md)
        check(rc == 0 and status_line(out, "good") == "good", md + ": " + out)
    rc, out = ocsp_cli(e, ["good"], md="-md5")
    check("unauthorized" in out, "md5 CertID: " + out)


def test_unknown_issuer():
    e = env()
    rc, out = ocsp_cli(e, ["good"], sub="issuer/no-such-issuer/")
    check("unauthorized" in out, "unknown issuer ref: " + out)
    # A certificate of the right shape from a CA this mount does not have.
    d = H.tmpdir("foreign")
    k = os.path.join(d, "k.pem")
    c = os.path.join(d, "c.pem")
    H.gen_key("ec256", k)
    H.openssl("req", "-x509", "-new", "-key", k, "-subj", "/CN=Foreign", "-days", "1", "-out", c)
    p = H.openssl("ocsp", "-issuer", c, "-cert", c, "-url", url(e), check_rc=False)
    check("unauthorized" in (p.stdout + p.stderr).decode(), (p.stdout + p.stderr).decode())


def test_bad_input_answers_malformed():
    e = env()
    s = e["s"]
    der = _reqout(e, "good", "-no_nonce")
    ct = ["Content-Type: application/ocsp-request"]
    for what, body in (("truncated", der[:len(der) // 2]), ("garbage", os.urandom(64)),
                       ("oversized", b"\x30\x82\x40\x00" + b"\x00" * 16384), ("trailing", der + b"\x00"),
                       ("empty-seq", b"\x30\x00")):
        r = s.req("POST", MOUNT + "/ocsp", body=body, token="", headers=ct)
        eq(r.status, 200, what + " status")
        eq(r.ctype, "application/ocsp-response", what + " type")
        eq(r.body, MALFORMED, what)
    for what, path in (("not base64", "!!notbase64!!"), ("base64 garbage", base64.b64encode(os.urandom(40)).decode()),
                       ("truncated", base64.b64encode(der[:10]).decode())):
        r = s.req("GET", MOUNT + "/ocsp/" + urllib.parse.quote(path, safe=""), token="")
        eq(r.status, 200, what + " status")
        eq(r.body, MALFORMED, what)
    s.assert_healthy("after bad OCSP input")


def test_nonce_limits():
    e = env()
    # openssl cannot make a 33-byte nonce from the CLI; build one with cryptography.
    leaf = x509.load_pem_x509_certificate(e["leaves"]["good"]["certificate"].encode())
    inter = x509.load_pem_x509_certificate(e["inter"].encode())
    from cryptography.hazmat.primitives import hashes
    for n, want_ok in ((32, True), (33, False)):
        b = cocsp.OCSPRequestBuilder().add_certificate(leaf, inter, hashes.SHA1())
        b = b.add_extension(x509.OCSPNonce(os.urandom(n)), critical=False)
        der = b.build().public_bytes(__import__("cryptography.hazmat.primitives.serialization",
                                                fromlist=["Encoding"]).Encoding.DER)
        r = e["s"].req("POST", MOUNT + "/ocsp", body=der, token="",
                       headers=["Content-Type: application/ocsp-request"])
        if want_ok:
            resp = cocsp.load_der_ocsp_response(r.body)
            eq(resp.response_status, cocsp.OCSPResponseStatus.SUCCESSFUL, "32-byte nonce")
            nonce = resp.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
            eq(len(nonce), 32, "nonce echoed")
        else:
            eq(r.body, MALFORMED, "33-byte nonce")


def test_ocsp_url_in_aia_and_later_revocation():
    e = env()
    s = e["s"]
    cert = x509.load_pem_x509_certificate(e["leaves"]["later"]["certificate"].encode())
    aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    urls = [d.access_location.value for d in aia if d.access_method == x509.oid.AuthorityInformationAccessOID.OCSP]
    eq(urls, [url(e)], "AIA OCSP URL")
    # Use the AIA URL as a client would, revoke, ask again.
    rc, out = ocsp_cli(e, ["later"], "-no_nonce")
    eq(status_line(out, "later"), "good", "before")
    s.data("POST", MOUNT + "/revoke", {"serial_number": e["leaves"]["later"]["serial_number"],
                                       "reason": "cessationOfOperation"})
    rc, out = ocsp_cli(e, ["later"], "-no_nonce")
    eq(status_line(out, "later"), "revoked", "after")
    check("cessationOfOperation" in out, out)


def test_issuer_scoped_post():
    e = env()
    rc, out = ocsp_cli(e, ["good"], sub="issuer/default/")
    check(rc == 0 and "Response verify OK" in out and status_line(out, "good") == "good", out)
    # The root's route does not answer for the intermediate's certificates.
    rc, out = ocsp_cli(e, ["good"], sub="issuer/root/")
    check("unauthorized" in out, "root-scoped: " + out)


def test_background_refresh_before_next_update():
    e = env()
    s = e["s"]
    s.ok("POST", MOUNT + "/config/crl", {"ocsp_expiry": "6s"}, statuses=(200, 204))
    try:
        der = _reqout(e, "good", "-no_nonce")
        path = MOUNT + "/ocsp/" + urllib.parse.quote(base64.b64encode(der).decode(), safe="")
        first = cocsp.load_der_ocsp_response(s.req("GET", path, token="").body)
        t0 = first.this_update
        life = (first.next_update - first.this_update).total_seconds()
        check(4 <= life <= 6, "nextUpdate - thisUpdate = %s" % life)
        # Halfway through its life the refresh thread re-signs it; a request before nextUpdate
        # then gets the new answer, never an expired one and never a miss.
        time.sleep(4.5)
        second = cocsp.load_der_ocsp_response(s.req("GET", path, token="").body)
        check(second.this_update > t0, "refreshed in the background: %s then %s" % (t0, second.this_update))
        check(second.next_update > first.next_update, "new nextUpdate")
    finally:
        s.ok("POST", MOUNT + "/config/crl", {"ocsp_expiry": "12h"}, statuses=(200, 204))


def test_ocsp_disable():
    e = env()
    s = e["s"]
    s.ok("POST", MOUNT + "/config/crl", {"ocsp_disable": True}, statuses=(200, 204))
    try:
        rc, out = ocsp_cli(e, ["good"])
        check("unauthorized" in out, out)
    finally:
        s.ok("POST", MOUNT + "/config/crl", {"ocsp_disable": False}, statuses=(200, 204))
    rc, out = ocsp_cli(e, ["good"])
    eq(status_line(out, "good"), "good", "re-enabled")
    s.assert_healthy("end")


if __name__ == "__main__":
    H.main(globals())
