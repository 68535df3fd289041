#!/usr/bin/python3
"""Certificates as leases (compat/vault-api.md section 2), driven by hvac
and curl against the real server: generate_lease, sys/leases/lookup, LIST,
renew (refused: PKI leases are not renewable), revoke, revoke-prefix,
revoke-force, tidy, Vault's older aliases, bad input on every endpoint,
token revocation cascading to certificates, leases across a restart, and
the kill switch: 10,000 live leased certificates of one role revoked by
one sys/leases/revoke-prefix/pki/issue/<role>, timed."""

import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check, eq  # noqa: E402
import hvac.exceptions  # noqa: E402  (Debian python3-hvac 0.11)

LEASE_RE = re.compile(r"^pki/(issue|sign)/([a-z0-9-]+)/[0-9A-Za-z]{24}$")
KILL_N = 10000
KILL_THREADS = 8
KILL_BUDGET_RELEASE = 2.0    # seconds: the headline figure
KILL_BUDGET_SANITIZER = 30.0  # ASan+UBSan slow everything several-fold
state = {}


def sanitizer_build():
    """True when the server binary carries AddressSanitizer."""
    with open(H.SIGIL_BIN, "rb") as f:
        return b"__asan_init" in f.read()


def srv():
    return H.dev_server()


def client(token=None):
    return H.hvac_client(srv(), token)


def expect_empty_list(r, what):
    """Vault's answer to an empty LIST: 404 with an empty errors list."""
    eq(r.status, 404, what + " status")
    eq(r.json(), {"errors": []}, what + " body")


def role(name, **kw):
    body = {"allowed_domains": "example.com", "allow_subdomains": True, "key_type": "ec", "key_bits": 256,
            "max_ttl": "72h", "generate_lease": True}
    body.update(kw)
    srv().ok("POST", "pki/roles/" + name, body)


def issue(name, cn="a.example.com", token=None, **kw):
    body = {"common_name": cn}
    body.update(kw)
    r = srv().req("POST", "pki/issue/" + name, body, token=token)
    H.expect_ok(r, "issue " + name)
    return r.json()


def cert_revocation_time(serial):
    r = srv().req("GET", "pki/cert/" + serial, token="")
    H.expect_ok(r, "cert/" + serial)
    return r.data["revocation_time"]


def revoked_serials():
    r = srv().req("LIST", "pki/certs/revoked")
    if r.status == 404:
        return set()
    H.expect_ok(r, "LIST certs/revoked")
    return set(r.data["keys"])


def lease_exists(lease_id):
    r = srv().req("PUT", "sys/leases/lookup", {"lease_id": lease_id})
    if r.status == 400:
        return False
    H.expect_ok(r, "lookup " + lease_id)
    return True


# ---------------------------------------------------------------- issuance


def test_issue_and_sign_give_leases():
    s = srv()
    role("web")
    role("webx")
    role("nolease", generate_lease=False)
    t0 = time.time()
    j = issue("web", ttl="2h")
    lid = j["lease_id"]
    check(LEASE_RE.match(lid) and lid.startswith("pki/issue/web/"), "lease id shape: %r" % lid)
    eq(j["renewable"], False, "renewable")
    cert = H.load_cert(j["data"]["certificate"])
    want = H.not_after(cert) - t0
    check(abs(j["lease_duration"] - want) <= 5, "lease_duration %r, NotAfter - now %r" % (j["lease_duration"], want))
    eq(j["data"]["serial_number"], H.colon_serial(cert), "serial")
    state["web"] = [(lid, j["data"]["serial_number"])]
    # sign: "pki/sign/<role>/..."
    key = H.gen_key("ec256")
    csr = H.make_csr(key, cn="s.example.com", dns=["s.example.com"])
    r = s.req("POST", "pki/sign/web", {"csr": csr, "common_name": "s.example.com"})
    H.expect_ok(r, "sign web")
    check(r.json()["lease_id"].startswith("pki/sign/web/") and LEASE_RE.match(r.json()["lease_id"]),
          "sign lease id %r" % r.json()["lease_id"])
    state["signed"] = (r.json()["lease_id"], r.data["serial_number"])
    # sign-verbatim under a role with generate_lease: "pki/sign-verbatim/<role>/...".
    r = s.req("POST", "pki/sign-verbatim/web", {"csr": csr})
    H.expect_ok(r, "sign-verbatim/web")
    check(re.match(r"^pki/sign-verbatim/web/[0-9A-Za-z]{24}$", r.json()["lease_id"]),
          "sign-verbatim lease id %r" % r.json()["lease_id"])
    H.expect_ok(s.req("PUT", "sys/leases/revoke", {"lease_id": r.json()["lease_id"]}), "revoke verbatim", (204,))
    check(cert_revocation_time(r.data["serial_number"]) > 0, "sign-verbatim lease revocation")
    # sign-verbatim without a role has no role to ask for a lease.
    r = s.req("POST", "pki/sign-verbatim", {"csr": csr})
    H.expect_ok(r, "sign-verbatim")
    eq(r.json()["lease_id"], "", "role-less sign-verbatim lease id")
    # The issuer-addressed form leases under the role's issue prefix, so the role's kill switch covers it.
    r = s.req("POST", "pki/issuer/default/issue/web", {"common_name": "i.example.com"})
    H.expect_ok(r, "issuer/default/issue/web")
    check(r.json()["lease_id"].startswith("pki/issue/web/"), "issuer-path lease id %r" % r.json()["lease_id"])
    state["web"].append((r.json()["lease_id"], r.data["serial_number"]))
    # Without generate_lease: no lease, as Vault.
    j = issue("nolease")
    eq(j["lease_id"], "", "lease_id without generate_lease")
    eq(j["lease_duration"], 0, "lease_duration without generate_lease")
    state["nolease"] = j["data"]["serial_number"]
    # no_store wins over generate_lease (Vault refuses the pair, or drops the lease).
    r = s.req("POST", "pki/roles/nostore", {"allow_any_name": True, "no_store": True, "generate_lease": True})
    if r.status == 200:
        j = issue("nostore")
        eq(j["lease_id"], "", "no_store role lease id")
    else:
        H.expect_error(r, 400, "no_store with generate_lease")
    for _ in range(2):
        j = issue("webx", cn="x.example.com")
        state.setdefault("webx", []).append((j["lease_id"], j["data"]["serial_number"]))


# ---------------------------------------------------------------- lookup, list, renew


def test_lookup_and_list_with_hvac():
    c = client()
    lid, serial = state["web"][0]
    d = c.sys.read_lease(lid)["data"]
    eq(d["id"], lid, "lookup id")
    eq(d["renewable"], False, "lookup renewable")
    eq(d["last_renewal"], None, "lookup last_renewal")
    check(isinstance(d["ttl"], int) and 7000 < d["ttl"] <= 7200, "lookup ttl %r" % d["ttl"])
    for f in ("issue_time", "expire_time"):
        check(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", d[f] or ""), "lookup %s %r" % (f, d[f]))
    keys = c.sys.list_leases("pki/issue/")["data"]["keys"]
    check("web/" in keys and "webx/" in keys, "LIST pki/issue/: %r" % keys)
    keys = c.sys.list_leases("pki/issue/web")["data"]["keys"]
    want = sorted(l.rsplit("/", 1)[1] for l, _ in state["web"])
    eq(sorted(keys), want, "LIST pki/issue/web")
    keys = c.sys.list_leases("pki")["data"]["keys"]
    check("issue/" in keys and "sign/" in keys, "LIST pki: %r" % keys)
    r = srv().req("LIST", "sys/leases/lookup")
    H.expect_ok(r, "LIST sys/leases/lookup (top)")
    check("pki/" in r.data["keys"], "top-level LIST %r" % r.data["keys"])
    # GET ?list=true is LIST too.
    r = srv().req("GET", "sys/leases/lookup/pki/issue/webx?list=true")
    H.expect_ok(r, "GET ?list=true")
    eq(len(r.data["keys"]), 2, "webx leases")
    # Nothing under a prefix: Vault's empty LIST, 404.
    expect_empty_list(srv().req("LIST", "sys/leases/lookup/pki/issue/nosuchrole"), "empty LIST")
    try:
        c.sys.list_leases("pki/issue/nosuchrole")
        raise H.TestFailure("LIST of an empty prefix did not fail")
    except hvac.exceptions.InvalidPath:
        pass


def test_renew_is_refused():
    c = client()
    lid, _ = state["web"][0]
    try:
        c.sys.renew_lease(lid, increment=3600)
        raise H.TestFailure("renewing a PKI lease succeeded")
    except hvac.exceptions.InvalidRequest as e:
        check("lease is not renewable" in str(e), "renew error: %s" % e)
    for path, body in (("sys/leases/renew", {"lease_id": lid}), ("sys/leases/renew/" + lid, None),
                       ("sys/renew", {"lease_id": lid}), ("sys/renew/" + lid, {})):
        H.expect_error(srv().req("PUT", path, body), 400, "renew via " + path, "lease is not renewable")
    # The refused renewal changed nothing.
    d = c.sys.read_lease(lid)["data"]
    eq(d["last_renewal"], None, "last_renewal after a refused renew")


# ---------------------------------------------------------------- revocation


def test_revoke_one_with_hvac():
    c = client()
    lid, serial = state["web"].pop(0)
    check(cert_revocation_time(serial) == 0, "not revoked before")
    r = c.sys.revoke_lease(lid)
    eq(r.status_code, 204, "revoke_lease status")
    check(cert_revocation_time(serial) > 0, "cert/%s not revoked after its lease" % serial)
    check(serial in revoked_serials(), "LIST certs/revoked lacks %s" % serial)
    check(not lease_exists(lid), "the lease survived its revocation")
    H.expect_error(srv().req("PUT", "sys/leases/revoke", {"lease_id": lid}), 400, "revoke twice", "invalid lease ID")
    # URL form and the old alias.
    lid2, serial2 = state["signed"]
    H.expect_ok(srv().req("PUT", "sys/leases/revoke/" + lid2), "revoke/<id>", (204,))
    check(cert_revocation_time(serial2) > 0, "signed cert not revoked")
    j = issue("web")
    H.expect_ok(srv().req("PUT", "sys/revoke/" + j["lease_id"], {"sync": False}), "sys/revoke/<id>", (204,))
    check(cert_revocation_time(j["data"]["serial_number"]) > 0, "sys/revoke alias did not revoke")
    j = issue("web")
    H.expect_ok(srv().req("PUT", "sys/revoke", {"lease_id": j["lease_id"]}), "sys/revoke", (204,))
    check(cert_revocation_time(j["data"]["serial_number"]) > 0, "sys/revoke (body) did not revoke")


def test_revoke_prefix_is_segment_wise():
    c = client()
    more = [issue("web", cn="p%d.example.com" % i) for i in range(3)]
    web = state["web"] + [(j["lease_id"], j["data"]["serial_number"]) for j in more]
    r = c.sys.revoke_prefix("pki/issue/web")
    eq(r.status_code, 204, "revoke_prefix status")
    for lid, serial in web:
        check(cert_revocation_time(serial) > 0, "%s not revoked by its role's prefix" % serial)
        check(not lease_exists(lid), "lease %s survived" % lid)
    # "pki/issue/web" never covers "pki/issue/webx".
    for lid, serial in state["webx"]:
        eq(cert_revocation_time(serial), 0, "webx certificate revoked by pki/issue/web")
        check(lease_exists(lid), "webx lease revoked by pki/issue/web")
    eq(cert_revocation_time(state["nolease"]), 0, "unleased certificate revoked")
    # A prefix with nothing under it is not an error (Vault), and a trailing slash is the same prefix.
    eq(c.sys.revoke_prefix("pki/issue/web").status_code, 204, "empty prefix")
    H.expect_ok(srv().req("PUT", "sys/leases/revoke-prefix/pki/issue/web/"), "trailing slash", (204,))
    # revoke-force and the old aliases.
    j = issue("webx", cn="f.example.com")
    eq(c.sys.revoke_force("pki/issue/webx").status_code, 204, "revoke_force status")
    for lid, serial in state["webx"] + [(j["lease_id"], j["data"]["serial_number"])]:
        check(cert_revocation_time(serial) > 0, "revoke-force left %s" % serial)
        check(not lease_exists(lid), "revoke-force left lease %s" % lid)
    for path in ("sys/revoke-prefix/pki/issue/web", "sys/revoke-force/pki/issue/web"):
        j = issue("web")
        H.expect_ok(srv().req("PUT", path), path, (204,))
        check(cert_revocation_time(j["data"]["serial_number"]) > 0, "%s did not revoke" % path)


def test_prefix_revocation_needs_sudo():
    """revoke-prefix, revoke-force and LIST are root-protected: update alone is 403."""
    c = client()
    c.sys.create_or_update_policy("lease-update", 'path "sys/leases/*" { capabilities = ["update", "list"] }\n'
                                  'path "sys/revoke-prefix/*" { capabilities = ["update"] }')
    c.sys.create_or_update_policy("lease-sudo", 'path "sys/leases/*" { capabilities = ["update", "list", "sudo"] }')
    plain = c.auth.token.create(policies=["lease-update"], ttl="10m")["auth"]["client_token"]
    sudo = c.auth.token.create(policies=["lease-sudo"], ttl="10m")["auth"]["client_token"]
    j = issue("web")
    for method, path in (("PUT", "sys/leases/revoke-prefix/pki/issue/web"),
                         ("PUT", "sys/leases/revoke-force/pki/issue/web"),
                         ("PUT", "sys/revoke-prefix/pki/issue/web"),
                         ("LIST", "sys/leases/lookup/pki/issue")):
        H.expect_error(srv().req(method, path, token=plain), 403, "%s %s without sudo" % (method, path))
    check(cert_revocation_time(j["data"]["serial_number"]) == 0, "a refused prefix revocation revoked")
    # Lookup and single revocation need no sudo.
    H.expect_ok(srv().req("PUT", "sys/leases/lookup", {"lease_id": j["lease_id"]}, token=plain), "lookup, no sudo")
    H.expect_ok(srv().req("LIST", "sys/leases/lookup/pki/issue", token=sudo), "LIST with sudo")
    H.expect_ok(srv().req("PUT", "sys/leases/revoke-prefix/pki/issue/web", token=sudo), "prefix with sudo", (204,))
    check(cert_revocation_time(j["data"]["serial_number"]) > 0, "sudo prefix revocation did not revoke")


# ---------------------------------------------------------------- bad input


def test_bad_input():
    s = srv()
    j = issue("web")
    lid = j["lease_id"]
    long_id = "pki/issue/web/" + "a" * 600
    # lookup
    H.expect_error(s.req("PUT", "sys/leases/lookup", {}), 400, "lookup without id", "lease_id must be specified")
    H.expect_error(s.req("PUT", "sys/leases/lookup", {"lease_id": "pki/issue/web/nope"}), 400, "unknown", "invalid lease")
    H.expect_error(s.req("PUT", "sys/leases/lookup", {"lease_id": 42}), 400, "numeric lease_id")
    H.expect_error(s.req("PUT", "sys/leases/lookup", {"lease_id": "pki//issue"}), 400, "malformed id", "invalid lease")
    H.expect_error(s.req("PUT", "sys/leases/lookup", {"lease_id": long_id}), 400, "over-long id", "invalid lease")
    H.expect_error(s.req("PUT", "sys/leases/lookup", "{not json"), 400, "broken JSON")
    # renew
    H.expect_error(s.req("PUT", "sys/leases/renew", {"lease_id": "pki/issue/web/nope"}), 400, "renew unknown",
                   "invalid lease ID")
    H.expect_error(s.req("PUT", "sys/leases/renew", {}), 400, "renew without id", "lease_id must be specified")
    H.expect_error(s.req("PUT", "sys/leases/renew", {"lease_id": lid, "increment": "soon"}), 400, "bad increment")
    H.expect_error(s.req("PUT", "sys/leases/renew", {"lease_id": lid, "increment": -5}), 400, "negative increment")
    # revoke
    H.expect_error(s.req("PUT", "sys/leases/revoke", {"lease_id": "pki/issue/web/nope"}), 400, "revoke unknown",
                   "invalid lease ID")
    H.expect_error(s.req("PUT", "sys/leases/revoke", {}), 400, "revoke without id", "lease_id must be specified")
    H.expect_error(s.req("PUT", "sys/leases/revoke", {"lease_id": lid, "sync": "maybe"}), 400, "bad sync")
    H.expect_error(s.req("PUT", "sys/leases/revoke", {"lease_id": ["x"]}), 400, "list lease_id")
    H.expect_error(s.req("PUT", "sys/leases/revoke/" + long_id), 400, "revoke over-long id", "invalid lease ID")
    # revoke-prefix, revoke-force, LIST: malformed prefixes
    bad = ("pki/issue/w%20b", "pki/issue/%C3%A9", "pki/%2E%2E/issue", "pki/./issue", "p" * 450)
    for p in bad:
        for path in ("sys/leases/revoke-prefix/", "sys/leases/revoke-force/", "sys/revoke-prefix/"):
            r = H.curl(s.url + "/v1/" + path + p, "PUT", token=s.token, extra=("--path-as-is",))
            H.expect_error(r, 400, "%s%s" % (path, p), "malformed lease prefix")
        r = H.curl(s.url + "/v1/sys/leases/lookup/" + p, "LIST", token=s.token, extra=("--path-as-is",))
        H.expect_error(r, 400, "LIST %s" % p, "malformed lease prefix")
    H.expect_error(s.req("PUT", "sys/leases/revoke-prefix/pki/issue/web", {"sync": "perhaps"}), 400, "prefix sync")
    check(lease_exists(lid), "a refused request revoked the lease")
    # Methods and authentication.
    H.expect_error(s.req("GET", "sys/leases/lookup"), 405, "GET lookup")
    H.expect_error(s.req("DELETE", "sys/leases/revoke-prefix/pki"), 405, "DELETE revoke-prefix")
    H.expect_error(s.req("GET", "sys/leases/tidy"), 405, "GET tidy")
    for method, path, body in (("PUT", "sys/leases/lookup", {"lease_id": lid}), ("LIST", "sys/leases/lookup/pki", None),
                               ("PUT", "sys/leases/renew", {"lease_id": lid}),
                               ("PUT", "sys/leases/revoke", {"lease_id": lid}),
                               ("PUT", "sys/leases/revoke-prefix/pki/issue/web", None),
                               ("PUT", "sys/leases/revoke-force/pki/issue/web", None),
                               ("PUT", "sys/leases/tidy", None), ("PUT", "sys/revoke", {"lease_id": lid})):
        H.expect_error(s.req(method, path, body, token=""), 403, "%s %s without a token" % (method, path))
        H.expect_error(s.req(method, path, body, token="not-a-token"), 403, "%s %s with a bad token" % (method, path))
    check(lease_exists(lid), "an unauthenticated request revoked the lease")
    eq(cert_revocation_time(j["data"]["serial_number"]), 0, "certificate revoked by bad input")


# ---------------------------------------------------------------- expiry


def test_expiry_and_tidy():
    s = srv()
    role("brief", ttl="3s")
    j = issue("brief", ttl="3s")
    lid, serial = j["lease_id"], j["data"]["serial_number"]
    check(1 <= j["lease_duration"] <= 3, "short lease_duration %r" % j["lease_duration"])
    time.sleep(4.5)
    # Expired: gone for lookup, renew and revoke, and never added to the CRL.
    H.expect_error(s.req("PUT", "sys/leases/lookup", {"lease_id": lid}), 400, "expired lookup", "invalid lease")
    H.expect_error(s.req("PUT", "sys/leases/revoke", {"lease_id": lid}), 400, "expired revoke")
    r = s.req("PUT", "sys/leases/tidy")
    H.expect_ok(r, "tidy")
    warns = r.json().get("warnings") or []
    check(any("Tidy operation" in w for w in warns), "tidy warnings %r" % warns)
    expect_empty_list(s.req("LIST", "sys/leases/lookup/pki/issue/brief"), "LIST after tidy")
    eq(cert_revocation_time(serial), 0, "an expired lease's certificate was revoked")
    H.expect_ok(s.req("PUT", "sys/leases/revoke-prefix/pki/issue/brief"), "prefix of tidied role", (204,))


# ---------------------------------------------------------------- tokens


def test_token_revocation_cascades_to_certificates():
    """Revoking a token revokes every lease it and its children own, and nobody else's."""
    c = client()
    role("casc")
    c.sys.create_or_update_policy("casc-issuer", 'path "pki/issue/casc" { capabilities = ["update"] }\n'
                                  'path "auth/token/create" { capabilities = ["update"] }')
    parent = c.auth.token.create(policies=["casc-issuer"], ttl="1h")["auth"]["client_token"]
    child = client(parent).auth.token.create(policies=["casc-issuer"], ttl="30m")["auth"]["client_token"]
    grandchild = client(child).auth.token.create(policies=["casc-issuer"], ttl="20m")["auth"]["client_token"]
    bystander = c.auth.token.create(policies=["casc-issuer"], ttl="1h")["auth"]["client_token"]
    owned = {}
    for name, tok in (("parent", parent), ("child", child), ("grandchild", grandchild), ("bystander", bystander)):
        owned[name] = [issue("casc", cn="%s%d.example.com" % (name, i), token=tok) for i in range(3)]
    c.auth.token.revoke(parent)
    for name in ("parent", "child", "grandchild"):
        for j in owned[name]:
            check(cert_revocation_time(j["data"]["serial_number"]) > 0,
                  "%s's certificate survived the parent's revocation" % name)
            check(not lease_exists(j["lease_id"]), "%s's lease survived" % name)
    for j in owned["bystander"]:
        eq(cert_revocation_time(j["data"]["serial_number"]), 0, "bystander's certificate revoked")
        check(lease_exists(j["lease_id"]), "bystander's lease revoked")
    revoked = revoked_serials()
    for name in ("parent", "child", "grandchild"):
        for j in owned[name]:
            check(j["data"]["serial_number"] in revoked, "LIST certs/revoked lacks %s's" % name)
    # The tokens are gone: they cannot issue any more.
    H.expect_error(srv().req("POST", "pki/issue/casc", {"common_name": "z.example.com"}, token=child), 403,
                   "issue with a revoked child token")
    state["bystander"] = (bystander, owned["bystander"])


def test_token_expiry_revokes_its_certificates():
    c = client()
    short = c.auth.token.create(policies=["casc-issuer"], ttl="2s")["auth"]["client_token"]
    j = issue("casc", cn="short.example.com", token=short)
    check(j["lease_duration"] > 3000, "the certificate's lease is as long as the certificate")
    deadline = time.time() + 30
    while time.time() < deadline and cert_revocation_time(j["data"]["serial_number"]) == 0:
        time.sleep(0.5)
    check(cert_revocation_time(j["data"]["serial_number"]) > 0,
          "an expired token's certificate was not revoked within 30 s")
    check(not lease_exists(j["lease_id"]), "an expired token's lease survived")
    tok, owned = state["bystander"]
    for jj in owned:
        eq(cert_revocation_time(jj["data"]["serial_number"]), 0, "another token's certificate revoked")


def test_unmount_drops_the_mounts_leases():
    s = srv()
    H.make_ca(s, "gone")
    H.make_ca(s, "gone2")  # a mount whose path extends the other's keeps its leases
    for m in ("gone", "gone2"):
        s.ok("POST", m + "/roles/web", {"allowed_domains": "example.com", "allow_subdomains": True,
                                        "key_type": "ec", "generate_lease": True})
    leases = {}
    for m in ("gone", "gone2"):
        r = s.req("POST", m + "/issue/web", {"common_name": "u.example.com"})
        H.expect_ok(r, "issue on " + m)
        leases[m] = r.json()["lease_id"]
        check(leases[m].startswith(m + "/issue/web/"), "lease id %r" % leases[m])
    H.expect_ok(s.req("DELETE", "sys/mounts/gone"), "unmount", (200, 204))
    check(not lease_exists(leases["gone"]), "a deleted mount's lease survived")
    expect_empty_list(s.req("LIST", "sys/leases/lookup/gone"), "LIST a deleted mount's leases")
    check(lease_exists(leases["gone2"]), "unmounting gone/ dropped gone2/'s lease")
    H.expect_ok(s.req("DELETE", "sys/mounts/gone2"), "unmount gone2", (200, 204))
    check(not lease_exists(leases["gone2"]), "gone2's lease survived its mount")


# ---------------------------------------------------------------- restart


def test_leases_survive_restart():
    s = H.Server("dev", name="restart").start()
    s.ok("POST", "pki/roles/web", {"allowed_domains": "example.com", "allow_subdomains": True, "key_type": "ec",
                                   "generate_lease": True})
    issued = []
    for i in range(3):
        r = s.req("POST", "pki/issue/web", {"common_name": "r%d.example.com" % i})
        H.expect_ok(r, "issue before restart")
        issued.append((r.json()["lease_id"], r.data["serial_number"]))
    s.restart()
    r = s.req("PUT", "sys/leases/lookup", {"lease_id": issued[0][0]})
    H.expect_ok(r, "lookup after restart")
    H.expect_ok(s.req("PUT", "sys/leases/revoke-prefix/pki/issue/web"), "revoke-prefix after restart", (204,))
    for lid, serial in issued:
        r = s.req("GET", "pki/cert/" + serial, token="")
        H.expect_ok(r, "cert after restart")
        check(r.data["revocation_time"] > 0, "revoke-prefix after a restart left %s" % serial)
    s.stop()


# ---------------------------------------------------------------- the kill switch


def _issue_many(s, name, n, threads):
    out, errors = [], []
    lock = threading.Lock()

    def work(count):
        h = H.Http(s.url, token=s.token)
        mine = []
        try:
            for _ in range(count):
                r = h.request("POST", "/v1/pki/issue/" + name, {"common_name": "node.example.com"})
                if r.status != 200:
                    raise H.TestFailure("issue: HTTP %d %r" % (r.status, r.body[:200]))
                j = r.json()
                mine.append((j["lease_id"], j["data"]["serial_number"]))
        except Exception as e:  # reported below, the other threads finish
            errors.append(e)
        finally:
            h.close()
            with lock:
                out.extend(mine)

    per = [n // threads + (1 if i < n % threads else 0) for i in range(threads)]
    ts = [threading.Thread(target=work, args=(k,)) for k in per]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    check(not errors, "issuing failed: %s" % (errors[:1],))
    return out


def _revocation_times(s, serials, threads):
    """cert/:serial revocation_time of every serial (concurrently)."""
    times, errors = {}, []
    lock = threading.Lock()
    chunks = [serials[i::threads] for i in range(threads)]

    def work(chunk):
        h = H.Http(s.url)
        got = {}
        try:
            for serial in chunk:
                r = h.request("GET", "/v1/pki/cert/" + serial)
                if r.status != 200:
                    raise H.TestFailure("cert/%s: HTTP %d" % (serial, r.status))
                got[serial] = r.data["revocation_time"]
        except Exception as e:
            errors.append(e)
        finally:
            h.close()
            with lock:
                times.update(got)

    ts = [threading.Thread(target=work, args=(c,)) for c in chunks]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    check(not errors, "reading certificates failed: %s" % (errors[:1],))
    return times


def test_kill_switch_10000_certificates():
    s = srv()
    role("fleet", ttl="24h")
    role("fleet2", ttl="24h")
    role("nolease", generate_lease=False)
    c = client()
    t0 = time.time()
    fleet = _issue_many(s, "fleet", KILL_N, KILL_THREADS)
    H.log("   issued %d leased certificates in %.1f s" % (len(fleet), time.time() - t0))
    eq(len(fleet), KILL_N, "issued")
    eq(len({sn for _, sn in fleet}), KILL_N, "distinct serials")
    check(all(l.startswith("pki/issue/fleet/") for l, _ in fleet), "fleet lease ids")
    keys = c.sys.list_leases("pki/issue/fleet")["data"]["keys"]
    eq(len(keys), KILL_N, "live leases under pki/issue/fleet before the kill switch")
    # The neighbours: another role whose name extends this one, and an unleased certificate.
    others = [issue("fleet2", cn="n%d.example.com" % i) for i in range(3)]
    plain = issue("nolease", cn="plain.example.com")["data"]["serial_number"]

    t0 = time.monotonic()
    r = c.sys.revoke_prefix("pki/issue/fleet")
    elapsed = time.monotonic() - t0
    eq(r.status_code, 204, "revoke-prefix status")
    san = sanitizer_build()
    budget = KILL_BUDGET_SANITIZER if san else KILL_BUDGET_RELEASE
    print("# kill switch: PUT /v1/sys/leases/revoke-prefix/pki/issue/fleet revoked %d leased certificates "
          "in %.3f s (%s build, budget %.0f s)" % (KILL_N, elapsed, "sanitizer" if san else "release", budget),
          flush=True)
    H.log("   kill switch: %d certificates in %.3f s" % (KILL_N, elapsed))
    check(elapsed < budget, "revoke-prefix of %d leases took %.3f s (budget %.1f s)" % (KILL_N, elapsed, budget))

    # Every certificate reads as revoked, by itself and in LIST certs/revoked.
    revoked = revoked_serials()
    missing = [sn for _, sn in fleet if sn not in revoked]
    check(not missing, "%d of %d serials missing from LIST certs/revoked, e.g. %s" %
          (len(missing), KILL_N, missing[:1]))
    times = _revocation_times(s, [sn for _, sn in fleet], KILL_THREADS)
    unrevoked = [sn for sn, t in times.items() if not t]
    eq(len(times), KILL_N, "certificates read")
    check(not unrevoked, "%d certificates read as unrevoked, e.g. %s" % (len(unrevoked), unrevoked[:1]))
    # Their leases are gone; the neighbours are untouched.
    expect_empty_list(s.req("LIST", "sys/leases/lookup/pki/issue/fleet"), "LIST after the kill switch")
    for j in others:
        check(lease_exists(j["lease_id"]), "pki/issue/fleet revoked a pki/issue/fleet2 lease")
        eq(cert_revocation_time(j["data"]["serial_number"]), 0, "fleet2 certificate revoked")
    eq(cert_revocation_time(plain), 0, "unleased certificate revoked")
    # Again: nothing left, quickly.
    t0 = time.monotonic()
    eq(c.sys.revoke_prefix("pki/issue/fleet").status_code, 204, "second kill switch")
    check(time.monotonic() - t0 < budget, "an empty kill switch was slow")
    s.assert_healthy("after the kill switch")


H.main(globals())
