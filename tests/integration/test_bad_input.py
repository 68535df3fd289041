#!/usr/bin/python3
"""Hostile and broken requests for every endpoint class.  Each answer must
have the right status, Content-Type exactly application/json and a useful
{"errors":[...]}; the server must stay up with no sanitizer finding."""

import base64
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check, eq  # noqa: E402

state = {}


def srv():
    s = H.dev_server()
    if "csr" not in state:
        s.ok("POST", "pki/roles/bad", {"allowed_domains": "example.com", "allow_subdomains": True,
                                       "key_type": "ec", "key_bits": 256, "allow_ip_sans": False,
                                       "allow_wildcard_certificates": False, "max_ttl": "24h"},
             statuses=(200, 204))
        state["key"] = H.gen_key("ec256")
        state["csr"] = H.make_csr(state["key"], cn="ok.example.com", dns=["ok.example.com"])
        d = s.data("POST", "pki/issue/bad", {"common_name": "ok.example.com"})
        state["cert"] = d["certificate"]
        state["cert_key"] = d["private_key"]
        state["serial"] = d["serial_number"]
        H.enable_pki(s, "badmnt")
        s.data("POST", "badmnt/root/generate/internal", {"common_name": "bad root", "key_type": "ec",
                                                         "issuer_name": "broot"})
    return s


def bad(s, method, path, body, status, what, contains=None, token=None, headers=()):
    r = s.req(method, path, body, token=token, headers=headers)
    return H.expect_error(r, status, "%s %s (%s)" % (method, path, what), contains)


def pem(der, kind):
    return H.der_to_pem(der, kind)


def csr_der():
    return H.pem_blocks(state["csr"])[0][1]


def corrupt_signature(der):
    b = bytearray(der)
    b[-3] ^= 0x5A  # inside the signature value: still parses, no longer verifies
    return bytes(b)


def corrupt_subject(der):
    b = bytearray(der)
    i = bytes(b).find(b"ok.example.com")
    check(i > 0, "test bug: CN not found in CSR")
    b[i] = ord("x")  # signed content changed
    return bytes(b)


# Endpoint classes that take a JSON body: (path, a valid-looking body).
JSON_ENDPOINTS = [
    ("pki/roles/newrole", {"allowed_domains": "example.com"}),
    ("pki/issue/bad", {"common_name": "a.example.com"}),
    ("pki/sign/bad", {"csr": None}),
    ("pki/sign-verbatim", {"csr": None}),
    ("pki/revoke", {"serial_number": "01:02"}),
    ("pki/revoke-with-key", {"serial_number": "01:02", "private_key": "x"}),
    ("badmnt/root/generate/internal", {"common_name": "x"}),
    ("badmnt/intermediate/generate/internal", {"common_name": "x"}),
    ("badmnt/intermediate/set-signed", {"certificate": "x"}),
    ("badmnt/root/sign-intermediate", {"csr": None}),
    ("badmnt/config/urls", {"issuing_certificates": "http://x/ca"}),
    ("badmnt/config/issuers", {"default": "broot"}),
    ("badmnt/issuer/broot", {"issuer_name": "broot"}),
    ("sys/mounts/newmount", {"type": "pki"}),
    ("sys/mounts/badmnt/tune", {"max_lease_ttl": "1h"}),
]


def test_malformed_json_bodies():
    s = srv()
    for path, _ in JSON_ENDPOINTS:
        bad(s, "POST", path, '{"common_name": ', 400, "truncated JSON", contains="json")
        bad(s, "POST", path, '{"a":1}garbage', 400, "trailing garbage after JSON")
        bad(s, "POST", path, '["a", "b"]', 400, "JSON array body")
        bad(s, "POST", path, "42", 400, "JSON number body")
        bad(s, "POST", path, b'{"common_name":"\xff\xfe.example.com"}', 400, "invalid UTF-8")
        bad(s, "POST", path, '{"common_name":"a\\u0000.example.com","csr":"a\\u0000"}', 400, "NUL in a string")
        bad(s, "POST", path, "[" * 100000 + "]" * 100000, 400, "100000-deep nesting")
        bad(s, "POST", path, '{"a":' * 5000 + "1" + "}" * 5000, 400, "5000-deep objects")
    s.assert_healthy("after malformed JSON")
    check("newrole" not in str(s.req("LIST", "pki/roles").body), "a malformed request created a role")
    check("newmount/" not in s.data("GET", "sys/mounts"), "a malformed request created a mount")


def test_wrong_types():
    s = srv()
    cases = [
        ("pki/roles/newrole", {"ttl": {}}),
        ("pki/roles/newrole", {"max_ttl": [1, 2]}),
        ("pki/roles/newrole", {"allowed_domains": {"a": 1}}),
        ("pki/roles/newrole", {"allow_subdomains": {"x": 1}}),
        ("pki/roles/newrole", {"allow_subdomains": "maybe"}),
        ("pki/roles/newrole", {"key_bits": "many"}),
        ("pki/roles/newrole", {"key_type": ["ec"]}),
        ("pki/roles/newrole", {"key_type": "dsa"}),
        ("pki/roles/newrole", {"key_type": "rsa", "key_bits": 1024}),
        ("pki/roles/newrole", {"key_type": "ec", "key_bits": 123}),
        ("pki/roles/newrole", {"ttl": "10h", "max_ttl": "1h"}),
        ("pki/roles/newrole", {"ttl": "-5h"}),
        ("pki/roles/newrole", {"ttl": "5 parsecs"}),
        ("pki/roles/newrole", {"key_usage": "NotAUsage"}),
        ("pki/issue/bad", {"common_name": {}}),
        ("pki/issue/bad", {"common_name": "a.example.com", "ttl": {}}),
        ("pki/issue/bad", {"common_name": "a.example.com", "ttl": "abc"}),
        ("pki/issue/bad", {"common_name": "a.example.com", "ttl": "-1h"}),
        ("pki/issue/bad", {"common_name": "a.example.com", "ttl": "99999999999999999999999h"}),
        ("pki/issue/bad", {"common_name": "a.example.com", "alt_names": {"x": 1}}),
        ("pki/issue/bad", {"common_name": "a.example.com", "exclude_cn_from_sans": {}}),
        ("pki/issue/bad", {"common_name": "a.example.com", "format": "xml"}),
        ("pki/issue/bad", {"common_name": "a.example.com", "format": {}}),
        ("pki/issue/bad", {"common_name": "a.example.com", "private_key_format": "jks"}),
        ("pki/issue/bad", {"common_name": "a.example.com", "not_after": "tomorrow"}),
        ("pki/issue/bad", {"common_name": "a.example.com", "ttl": "1h", "not_after": "2030-01-01T00:00:00Z"}),
        ("pki/issue/bad", {}),
        ("pki/sign/bad", {"csr": {}}),
        ("pki/sign/bad", {"csr": 12}),
        ("pki/sign/bad", {}),
        ("pki/revoke", {"serial_number": {}}),
        ("pki/revoke", {}),
        ("pki/revoke", {"serial_number": "zz:zz:zz"}),
        ("pki/revoke", {"serial_number": "01:" * 100 + "01"}),
        ("badmnt/root/generate/internal", {"common_name": "x", "key_type": "dsa"}),
        ("badmnt/root/generate/internal", {"common_name": "x", "key_bits": "big"}),
        ("badmnt/root/generate/internal", {"common_name": {}}),
        ("badmnt/root/generate/internal", {"common_name": "x", "ttl": {}}),
        ("badmnt/config/urls", {"issuing_certificates": {}}),
        ("badmnt/config/issuers", {"default": {}}),
        ("badmnt/issuer/broot", {"leaf_not_after_behavior": "sometimes"}),
        ("sys/mounts/newmount", {"type": {}}),
        ("sys/mounts/newmount", {"type": "no-such-engine"}),
        ("sys/mounts/newmount", {}),
        ("sys/mounts/badmnt/tune", {"max_lease_ttl": {}}),
        ("sys/mounts/badmnt/tune", {"max_lease_ttl": "forever"}),
    ]
    for path, body in cases:
        bad(s, "POST", path, body, 400, "wrong type/value %r" % (body,))
    s.assert_healthy("after wrong types")
    eq(s.req("GET", "pki/roles/newrole").status, 404, "a rejected role write created the role")
    # Huge but well-formed integers must not overflow (UBSan watches): clamp or refuse.
    for ttl in (9223372036854775807, "9223372036854775807", "2562047h"):
        r = s.req("POST", "pki/issue/bad", {"common_name": "a.example.com", "ttl": ttl})
        check(r.status in (200, 400), "ttl %r: HTTP %d" % (ttl, r.status))
        if r.status == 200:
            na = H.not_after(H.load_cert(r.data["certificate"]))
            import time
            check(na - time.time() <= 24 * 3600 + 60, "ttl %r escaped the role max_ttl" % (ttl,))
        else:
            H.expect_error(r, 400, "ttl %r" % (ttl,))
    s.assert_healthy("after huge TTLs")


def test_oversize_bodies():
    s = srv()
    big = b'{"common_name":"a.example.com","pad":"' + b"x" * (33 << 20) + b'"}'
    r = s.req("POST", "pki/issue/bad", big)
    H.expect_error(r, 413, "33 MiB body with Content-Length")
    # Without Content-Length (chunked) the server must stop reading at its cap:
    # it answers 413 or closes the connection; either way it stays up.
    r, rc, err = H.curl_raw(s.url + "/v1/pki/issue/bad", "POST", big, s.token,
                            headers=("Transfer-Encoding: chunked",))
    if r is not None:
        H.expect_error(r, 413, "33 MiB chunked body")
    s.assert_healthy("after oversize bodies")


def test_max_request_size_config():
    s = H.config_server("small", tls=False, max_request_size=4096)
    H.enable_pki(s, "pki")
    r = s.req("POST", "pki/roles/r", '{"allowed_domains":"example.com","pad":"' + "x" * 5000 + '"}')
    H.expect_error(r, 413, "5000-byte body over max_request_size 4096")
    r = s.req("POST", "pki/roles/r", '{"allowed_domains":"example.com","pad":"' + "x" * 3000 + '"}')
    check(r.status in (200, 204), "3000-byte body under max_request_size 4096: HTTP %d %r" % (r.status, r.body[:200]))
    s.assert_healthy("small max_request_size")
    s.stop()


def test_broken_pem_and_der():
    s = srv()
    der = csr_der()
    cert_der = H.pem_certs(state["cert"])[0]
    garbage = [
        ("garbage text", "this is not a PEM"),
        ("empty", ""),
        ("armor with garbage inside", "-----BEGIN CERTIFICATE REQUEST-----\n!!!!not base64!!!!\n"
                                      "-----END CERTIFICATE REQUEST-----\n"),
        ("truncated PEM", state["csr"][:len(state["csr"]) // 2]),
        ("PEM without END", state["csr"].split("-----END")[0]),
        ("truncated DER in armor", pem(der[:len(der) // 2], "CERTIFICATE REQUEST")),
        ("DER with trailing bytes", pem(der + b"\x00\x01\x02", "CERTIFICATE REQUEST")),
        ("random DER", pem(os.urandom(300), "CERTIFICATE REQUEST")),
        ("ASN.1 length bomb", pem(b"\x30\x84\x7f\xff\xff\xff" + b"\x00" * 20, "CERTIFICATE REQUEST")),
        ("bare base64 DER", base64.b64encode(der).decode()),
        ("a certificate, not a CSR", state["cert"]),
        ("corrupted signature", pem(corrupt_signature(der), "CERTIFICATE REQUEST")),
        ("signed content altered", pem(corrupt_subject(der), "CERTIFICATE REQUEST")),
    ]
    for what, csr in garbage:
        for path in ("pki/sign/bad", "pki/sign-verbatim", "badmnt/root/sign-intermediate"):
            body = {"csr": csr, "common_name": "ok.example.com"}
            bad(s, "POST", path, body, 400, "csr: " + what)
    sig_errs = bad(s, "POST", "pki/sign/bad", {"csr": pem(corrupt_signature(der), "CERTIFICATE REQUEST")}, 400,
                   "corrupted CSR signature", contains=["signature", "verif"])
    H.log("   corrupted CSR signature -> %s" % sig_errs)
    s.assert_healthy("after broken CSRs")

    cert_garbage = [
        ("garbage text", "not a certificate"),
        ("truncated PEM", state["cert"][:len(state["cert"]) // 2]),
        ("truncated DER in armor", pem(cert_der[:len(cert_der) // 2], "CERTIFICATE")),
        ("DER with trailing bytes", pem(cert_der + b"\x05\x00", "CERTIFICATE")),
        ("random DER", pem(os.urandom(500), "CERTIFICATE")),
        ("a CSR, not a certificate", state["csr"]),
    ]
    for what, c in cert_garbage:
        bad(s, "POST", "pki/revoke", {"certificate": c}, 400, "revoke certificate: " + what)
        bad(s, "POST", "badmnt/intermediate/set-signed", {"certificate": c}, 400, "set-signed: " + what)
        bad(s, "POST", "pki/revoke-with-key", {"certificate": c, "private_key": state["cert_key"]}, 400,
            "revoke-with-key certificate: " + what)
    key_der = H.pem_blocks(state["key"])[0][1]
    bundle_garbage = cert_garbage + [
        ("empty", ""),
        ("key only, truncated", state["key"][: len(state["key"]) // 2]),
        ("garbage key block", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
        ("truncated key DER", pem(key_der[: len(key_der) // 2], "PRIVATE KEY")),
        ("encrypted key", "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n"),
        ("unknown block type", "-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n"),
    ]
    for what, b in bundle_garbage:
        for path in ("badmnt/config/ca", "badmnt/issuers/import/bundle"):
            bad(s, "POST", path, {"pem_bundle": b}, 400, "pem_bundle: " + what)
    bad(s, "POST", "badmnt/issuers/import/cert", {"pem_bundle": state["key"]}, 400,
        "issuers/import/cert with a private key")
    # A certificate this mount never issued.
    foreign = s.data("POST", "badmnt/root/generate/exported", {"common_name": "foreign", "key_type": "ec",
                                                                "issuer_name": "foreign"})["certificate"]
    bad(s, "POST", "pki/revoke", {"certificate": foreign}, 400, "revoke a certificate of another CA")
    for what, k in [("garbage key", "nope"), ("truncated key", state["cert_key"][:60])]:
        bad(s, "POST", "pki/revoke-with-key", {"serial_number": state["serial"], "private_key": k}, 400,
            "revoke-with-key: " + what)
    # A well-formed key that is not the certificate's: no proof of possession.
    bad(s, "POST", "pki/revoke-with-key", {"serial_number": state["serial"], "private_key": state["key"]},
        (400, 403), "revoke-with-key: other key", contains="match")
    eq(s.data("GET", "pki/cert/" + state["serial"], token="").get("revocation_time"), 0,
       "a failed revoke-with-key revoked the certificate")
    s.assert_healthy("after broken certificates")


def test_names_outside_role():
    s = srv()
    cases = [
        ({"common_name": "evil.org"}, "evil.org"),
        ({"common_name": "a.example.com", "alt_names": "b.example.com,evil.org"}, "evil.org"),
        ({"common_name": "a.example.com", "ip_sans": "10.0.0.1"}, "10.0.0.1"),
        ({"common_name": "*.example.com"}, "*.example.com"),
        ({"common_name": "a.example.com", "uri_sans": "spiffe://x/y"}, "spiffe://x/y"),
        ({"common_name": "bad_name!.example.com"}, "bad_name!.example.com"),
        ({"common_name": "example.com"}, "example.com"),  # bare domain not allowed
        ({"common_name": "a.example.com.evil.org"}, "a.example.com.evil.org"),
    ]
    for body, name in cases:
        bad(s, "POST", "pki/issue/bad", body, 400, "outside the role: %r" % body, contains=name)
    k = state["key"]
    for what, csr, name in [
        ("CSR CN outside", H.make_csr(k, cn="evil.org"), "evil.org"),
        ("CSR SAN outside", H.make_csr(k, cn="a.example.com", dns=["a.example.com", "evil.org"]), "evil.org"),
        ("CSR IP SAN", H.make_csr(k, cn="a.example.com", ips=["10.1.1.1"]), "10.1.1.1"),
    ]:
        bad(s, "POST", "pki/sign/bad", {"csr": csr}, 400, what, contains=name)
    rsa = H.make_csr(H.gen_key("rsa2048"), cn="a.example.com")
    bad(s, "POST", "pki/sign/bad", {"csr": rsa}, 400, "RSA CSR for an EC role", contains=["key", "rsa"])
    s.assert_healthy("after names outside the role")


def test_unknown_role_and_issuer():
    s = srv()
    bad(s, "POST", "pki/issue/nope", {"common_name": "a.example.com"}, 400, "unknown role", contains="nope")
    bad(s, "POST", "pki/sign/nope", {"csr": state["csr"]}, 400, "unknown role", contains="nope")
    bad(s, "GET", "pki/roles/nope", None, 404, "read unknown role")
    bad(s, "POST", "pki/issuer/nope/issue/bad", {"common_name": "a.example.com"}, 400, "unknown issuer",
        contains="nope")
    bad(s, "POST", "pki/issuer/nope/sign/bad", {"csr": state["csr"]}, 400, "unknown issuer", contains="nope")
    s.ok("POST", "pki/roles/orphan", {"allow_any_name": True, "issuer_ref": "ghost"}, statuses=(200, 204))
    bad(s, "POST", "pki/issue/orphan", {"common_name": "a.example.com"}, 400, "role with an unknown issuer_ref",
        contains="ghost")
    bad(s, "POST", "badmnt/config/issuers", {"default": "ghost"}, 400, "unknown default issuer")
    bad(s, "GET", "pki/issuer/ghost", None, (400, 404), "read unknown issuer")
    bad(s, "GET", "pki/cert/01:02:03:04", None, 404, "unknown serial", token="")
    bad(s, "GET", "pki/cert/not-hex!", None, (400, 404), "garbage serial", token="")
    bad(s, "POST", "pki/revoke", {"serial_number": "01:02:03:04"}, (400, 404), "revoke unknown serial")
    s.assert_healthy("after unknown role/issuer")


def test_wrong_methods():
    s = srv()
    cases = [
        ("GET", "pki/issue/bad"), ("DELETE", "pki/issue/bad"), ("LIST", "pki/issue/bad"),
        ("PATCH", "pki/issue/bad"), ("GET", "pki/sign/bad"), ("DELETE", "pki/sign/bad"),
        ("POST", "pki/ca"), ("DELETE", "pki/ca"), ("POST", "pki/ca_chain"), ("POST", "pki/cert/" + "01:02"),
        ("GET", "pki/revoke"), ("DELETE", "pki/revoke"), ("GET", "pki/root/generate/internal"),
        ("POST", "sys/health"), ("DELETE", "sys/health"), ("PATCH", "sys/mounts/pki"),
        ("GET", "pki/intermediate/set-signed"),
    ]
    for method, path in cases:
        body = {} if method in ("POST", "PATCH") else None
        bad(s, method, path, body, 405, "wrong method")
    s.assert_healthy("after wrong methods")


def test_missing_and_wrong_token():
    s = srv()
    body = {"common_name": "a.example.com"}
    for path, method, b in [("pki/issue/bad", "POST", body), ("pki/roles/bad", "GET", None),
                            ("pki/certs", "LIST", None), ("sys/mounts", "GET", None),
                            ("sys/mounts/x", "POST", {"type": "pki"}), ("pki/revoke", "POST", {"serial_number": "01"}),
                            ("pki/nonexistent", "GET", None)]:
        bad(s, method, path, b, 403, "no token", token="")
        bad(s, method, path, b, 403, "wrong token", token="wrong-" + s.token)
        bad(s, method, path, b, 403, "wrong bearer", token="", headers=("Authorization: Bearer nope",))
    r = s.req("POST", "pki/issue/bad", body, token="", headers=("Authorization: Bearer " + s.token,))
    H.expect_ok(r, "Authorization: Bearer with the right token")
    # A token prefix or the token with junk appended is not the token.
    bad(s, "GET", "pki/roles/bad", None, 403, "token prefix", token=s.token[:-1])
    bad(s, "GET", "pki/roles/bad", None, 403, "token + junk", token=s.token + "x")
    s.assert_healthy("after token checks")


def test_unknown_paths():
    s = srv()
    for method, path in [("GET", "pki/nonexistent"), ("POST", "pki/nonexistent"), ("GET", "nomount/x"),
                         ("GET", "sys/nonexistent"), ("GET", "pki/issue"), ("POST", "pki/issue/"),
                         ("GET", "a/b/c/d/e/f/g"), ("GET", "pki/issuer/broot/nonexistent")]:
        bad(s, method, path, {} if method == "POST" else None, 404, "unknown path")
    r = H.curl(s.url + "/v2/sys/health")
    H.expect_error(r, 404, "outside /v1")
    r = H.curl(s.url + "/")
    check(r.status in (404, 307, 301, 302), "GET /: HTTP %d" % r.status)
    long_path = "pki/" + "a" * 5000
    bad(s, "GET", long_path, None, (400, 404, 414), "5000-byte path")
    s.assert_healthy("after unknown paths")


def test_caps_on_names_and_sizes():
    s = srv()
    many = ",".join("n%d.example.com" % i for i in range(1000))
    bad(s, "POST", "pki/issue/bad", {"common_name": "a.example.com", "alt_names": many}, 400, "1000 SANs")
    bad(s, "POST", "pki/issue/bad", {"common_name": "a" * 10000 + ".example.com"}, 400, "10000-char CN")
    bad(s, "POST", "pki/issue/bad", {"common_name": "a.example.com", "ip_sans": "1.2.3.4" + ",x" * 5000}, 400,
        "5000 bogus IP SANs")
    # A CSR over the 64 KiB cap (thousands of SANs).
    big = H.make_csr(state["key"], cn="ok.example.com", dns=["d%05d.example.com" % i for i in range(3500)])
    check(len(big) > 64 * 1024, "test bug: CSR only %d bytes" % len(big))
    bad(s, "POST", "pki/sign/bad", {"csr": big}, (400, 413), "CSR over 64 KiB")
    s.assert_healthy("after oversized names")


def test_http_framing():
    """Valid HTTP/1.1 framings work; broken ones fail without hurting the server."""
    s = srv()
    body = {"common_name": "chunk.example.com"}
    r = s.req("POST", "pki/issue/bad", body, headers=("Transfer-Encoding: chunked",))
    H.expect_ok(r, "chunked request body")
    r = s.req("POST", "pki/issue/bad", body, headers=("Expect: 100-continue",))
    H.expect_ok(r, "Expect: 100-continue")
    # Two pipelined requests in one write: two answers, in order.
    req = ("GET /v1/sys/health HTTP/1.1\r\nHost: x\r\n\r\n"
           "GET /v1/pki/ca/pem HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").encode()
    data = _raw(s, req)
    eq(data.count(b"HTTP/1.1 200"), 2, "answers to two pipelined requests")
    check(data.find(b'"initialized"') < data.find(b"BEGIN CERTIFICATE"), "pipelined answers out of order")
    # Garbage and lies: the server answers 4xx or closes, and stays up.
    for raw in (b"HELLO\r\n\r\n", b"GET\r\n\r\n", b"GET /v1/sys/health HTTP/9.9\r\n\r\n",
                b"POST /v1/pki/issue/bad HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
                b"POST /v1/pki/issue/bad HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
                b"POST /v1/pki/issue/bad HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                b"POST /v1/pki/issue/bad HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"a\":"):
        data = _raw(s, raw, timeout=3)
        check(not data.startswith(b"HTTP/1.1 2"), "%r answered %r" % (raw[:40], data[:40]))
    s.assert_healthy("after broken HTTP framing")


def _raw(s, payload, timeout=10):
    import socket
    c = socket.create_connection(("127.0.0.1", s.port), timeout=timeout)
    try:
        c.sendall(payload)
        if b"Content-Length: 100\r\n" in payload:
            c.shutdown(socket.SHUT_WR)  # the promised body never comes
        out = b""
        while True:
            try:
                chunk = c.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        c.close()


def test_percent_encoded_nul_in_path():
    """%00 in a path must not truncate it: 'roles/keep%00x' is not 'roles/keep'."""
    s = srv()
    s.ok("POST", "pki/roles/keep", {"allow_any_name": True, "max_ttl": "1h"}, statuses=(200, 204))
    r = s.req("POST", "pki/roles/nul%00trunc", {"allow_any_name": True})
    check(r.status >= 400, "POST pki/roles/nul%%00trunc answered HTTP %d" % r.status)
    H.expect_error(r, (400, 404), "NUL in a role name")
    eq(s.req("GET", "pki/roles/nul").status, 404, "POST roles/nul%00trunc created role 'nul'")
    r = s.req("DELETE", "pki/roles/keep%00x")
    check(r.status >= 400, "DELETE pki/roles/keep%%00x answered HTTP %d" % r.status)
    eq(s.data("GET", "pki/roles/keep").get("max_ttl"), 3600, "role 'keep' after DELETE keep%00x")
    r = s.req("POST", "pki/roles/keep%00x", {"allow_any_name": True, "max_ttl": "9h"})
    check(r.status >= 400, "POST pki/roles/keep%%00x answered HTTP %d" % r.status)
    eq(s.data("GET", "pki/roles/keep").get("max_ttl"), 3600, "role 'keep' overwritten through keep%00x")
    for path in ("sys/mounts/pki%00x", "pki%00/roles/keep", "pki/issue/keep%00x"):
        r = s.req("POST", path, {"common_name": "a.example.com", "type": "pki"})
        check(r.status >= 400, "POST %s answered HTTP %d" % (path, r.status))
    s.assert_healthy("after %00 paths")


ROLE_FIELDS = ["issuer_ref", "ttl", "max_ttl", "allow_localhost", "allowed_domains", "allowed_domains_template",
               "allow_bare_domains", "allow_subdomains", "allow_glob_domains", "allow_wildcard_certificates",
               "allow_any_name", "enforce_hostnames", "allow_ip_sans", "allowed_uri_sans", "allowed_other_sans",
               "allowed_serial_numbers", "allowed_user_ids", "cn_validations", "require_cn", "server_flag",
               "client_flag", "code_signing_flag", "email_protection_flag", "key_usage", "ext_key_usage",
               "ext_key_usage_oids", "key_type", "key_bits", "signature_bits", "use_pss", "use_csr_common_name",
               "use_csr_sans", "ou", "organization", "country", "policy_identifiers",
               "basic_constraints_valid_for_non_ca", "not_before_duration", "not_after", "generate_lease",
               "no_store"]
ISSUE_FIELDS = ["common_name", "alt_names", "ip_sans", "uri_sans", "other_sans", "user_ids", "serial_number",
                "ttl", "not_after", "format", "private_key_format", "exclude_cn_from_sans",
                "remove_roots_from_chain", "csr"]


def _random_value(rnd, depth=0):
    kind = rnd.randrange(14 if depth < 2 else 10)
    if kind == 0:
        return rnd.choice([0, 1, -1, 2 ** 31, 2 ** 63 - 1, -2 ** 63, 2 ** 64, 10 ** 30, 30, 256, 384, 4096])
    if kind == 1:
        return rnd.choice([0.5, -1.5, 1e308, 1e-308, 3.0])
    if kind == 2:
        return rnd.choice([True, False, None])
    if kind == 3:
        return rnd.choice(["", " ", "true", "false", "1h", "2160h0m0s", "-1s", "99999999999h", "1e9", "0x10",
                           "rsa", "ec", "ed25519", "any", "pem", "der", "pem_bundle", "pkcs8", "default",
                           "*", "*.example.com", "a.example.com", "a.example.com,b.example.com", "127.0.0.1",
                           "::1", "spiffe://x/*", "1.2.3.4;UTF8:x", "DigitalSignature", "ServerAuth",
                           "1.2.3.4", "2030-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "email,hostname"])
    if kind == 4:
        return "".join(rnd.choice("abc.-*,;:/@%\\\"'{}[]\u00e9\u4e2d\U0001f600 \t\n") for _ in range(rnd.randrange(1, 40)))
    if kind == 5:
        return "x" * rnd.choice([64, 65, 255, 256, 4096, 70000])
    if kind == 6:
        return ",".join(rnd.choice(["a.example.com", "", "*", "10.0.0.1", "x@y.z"]) for _ in range(rnd.randrange(1, 30)))
    if kind == 7:
        return state["csr"] if rnd.random() < 0.5 else state["csr"][: rnd.randrange(1, len(state["csr"]))]
    if kind == 8:
        return rnd.randrange(-5, 100000)
    if kind == 9:
        return "-----BEGIN CERTIFICATE-----\n" + "QUFB" * rnd.randrange(0, 50) + "\n-----END CERTIFICATE-----\n"
    if kind in (10, 11):
        return [_random_value(rnd, depth + 1) for _ in range(rnd.randrange(0, 5))]
    return {str(_random_value(rnd, depth + 1))[:10]: _random_value(rnd, depth + 1) for _ in range(rnd.randrange(0, 4))}


def test_random_field_values():
    """Every documented field with random types and values: the answer is a
    success or a well-formed 4xx, never a 5xx, a hang or a sanitizer report."""
    import random
    s = srv()
    seed = int(os.environ.get("SIGIL_FUZZ_SEED", str(random.randrange(1 << 30))))
    rounds = int(os.environ.get("SIGIL_FUZZ_ROUNDS", "400"))
    H.log("   random field values: seed %d, %d requests (SIGIL_FUZZ_SEED to replay)" % (seed, rounds))
    rnd = random.Random(seed)
    H.enable_pki(s, "fuzzmnt")
    s.data("POST", "fuzzmnt/root/generate/internal", {"common_name": "fuzz root", "key_type": "ec",
                                                      "issuer_name": "fz"})
    c = H.Http(s.url, s.token)
    targets = [
        ("POST", "/v1/fuzzmnt/roles/fz", ROLE_FIELDS),
        ("PATCH", "/v1/fuzzmnt/roles/fz", ROLE_FIELDS),
        ("POST", "/v1/pki/issue/bad", ISSUE_FIELDS),
        ("POST", "/v1/pki/sign/bad", ISSUE_FIELDS),
        ("POST", "/v1/pki/sign-verbatim", ISSUE_FIELDS + ["key_usage", "ext_key_usage"]),
        ("POST", "/v1/pki/revoke", ["serial_number", "certificate", "reason"]),
        ("POST", "/v1/fuzzmnt/config/urls", ["issuing_certificates", "crl_distribution_points", "ocsp_servers",
                                             "enable_templating"]),
        ("POST", "/v1/sys/mounts/fuzzmnt/tune", ["default_lease_ttl", "max_lease_ttl", "description"]),
        ("PATCH", "/v1/fuzzmnt/issuer/default", ["issuer_name", "leaf_not_after_behavior", "usage", "manual_chain",
                                                 "issuing_certificates"]),
        ("POST", "/v1/fuzzmnt/intermediate/generate/internal", ["common_name", "alt_names", "ttl", "key_name",
                                                                "ou", "exclude_cn_from_sans", "max_path_length"]),
    ]
    for i in range(rounds):
        method, path, fields = rnd.choice(targets)
        body = {f: _random_value(rnd) for f in rnd.sample(fields, rnd.randrange(1, min(6, len(fields)) + 1))}
        if "sign" in path and rnd.random() < 0.7:
            body["csr"] = state["csr"]
        if method == "POST" and "intermediate/generate" in path:
            body["key_type"] = "ec"  # keep key generation cheap
        try:
            r = c.request(method, path, body)
        except Exception as e:
            raise H.TestFailure("seed %d request %d %s %s %r: no answer (%s)" % (seed, i, method, path, body, e))
        if r.status >= 500 or r.status not in (200, 204, 400, 404):
            raise H.TestFailure("seed %d request %d %s %s %r: HTTP %d %r" %
                                (seed, i, method, path, body, r.status, r.body[:300]))
        if r.status >= 400:
            H.expect_error(r, r.status, "seed %d request %d %s %s %r" % (seed, i, method, path, body))
        if i % 50 == 49:
            s.assert_healthy("after %d random requests (seed %d)" % (i + 1, seed))
    c.close()
    s.assert_healthy("after random field values (seed %d)" % seed)


if __name__ == "__main__":
    H.main(globals())
