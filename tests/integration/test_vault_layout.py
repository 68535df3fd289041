#!/usr/bin/python3
"""Vault's "build your own CA" tutorial step by step against a production
(config-file) server with no mounts, then mounts (nested, tune, list,
delete), and issuer/key management."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check, eq  # noqa: E402

HOUR = 3600


def srv():
    s = H._shared.get("prod")
    if s is None or not s.running:
        # tls_disable keeps the tutorial's plain VAULT_ADDR; test_tls covers HTTPS.
        s = H.config_server("prod", tls=False)
        H._shared["prod"] = s
    return s


def urls_of(cert):
    """(caIssuers URLs, CRL distribution point URLs) of a certificate."""
    from cryptography import x509
    from cryptography.x509.oid import AuthorityInformationAccessOID
    aia, cdp = [], []
    try:
        for d in cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value:
            if d.access_method == AuthorityInformationAccessOID.CA_ISSUERS:
                aia.append(d.access_location.value)
    except x509.ExtensionNotFound:
        pass
    try:
        for dp in cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value:
            cdp += [n.value for n in dp.full_name or []]
    except x509.ExtensionNotFound:
        pass
    return aia, cdp


def test_fresh_server_has_no_pki_mount():
    s = srv()
    check(os.path.exists(os.path.join(s.data_dir, "root-token")), "no root-token file in the data dir")
    mounts = s.data("GET", "sys/mounts")
    check("pki/" not in mounts, "a production server starts with a pki mount: %r" % list(mounts))
    r = s.req("GET", "pki/ca")
    check(r.status == 404, "GET pki/ca without the mount: HTTP %d, want 404" % r.status)


def test_tutorial_build_your_own_ca():
    """https://developer.hashicorp.com/vault/tutorials/pki/pki-engine, with
    PUT as the vault CLI sends it."""
    s = srv()
    addr = s.url
    # Step 1: the root CA.
    s.ok("PUT", "sys/mounts/pki", {"type": "pki"}, statuses=(200, 204))
    s.ok("PUT", "sys/mounts/pki/tune", {"max_lease_ttl": "87600h"}, statuses=(200, 204))
    t0 = time.time()
    root = s.data("PUT", "pki/root/generate/internal",
                  {"common_name": "example.com", "issuer_name": "root-2023", "ttl": "87600h"})
    check("private_key" not in root, "internal root returned a private key")
    rc = H.load_cert(root["certificate"])
    check(H.is_self_signed(rc), "root is not self-signed")
    eq(H.cert_cn(rc), "example.com", "root CN")
    na = H.not_after(rc)
    check(abs(na - (t0 + 87600 * HOUR)) < 600,
          "root NotAfter is now%+dh, want +87600h (tuned max_lease_ttl)" % ((na - t0) // HOUR))
    eq(root.get("issuer_name"), "root-2023", "issuer_name")
    check(type(root.get("expiration")) is int, "root expiration not an integer")
    s.ok("PUT", "pki/roles/2023-servers", {"allow_any_name": True}, statuses=(200, 204))
    s.ok("PUT", "pki/config/urls", {"issuing_certificates": addr + "/v1/pki/ca",
                                    "crl_distribution_points": addr + "/v1/pki/crl"}, statuses=(200, 204))
    u = s.data("GET", "pki/config/urls")
    eq(u.get("issuing_certificates"), [addr + "/v1/pki/ca"], "config/urls issuing_certificates")
    eq(u.get("crl_distribution_points"), [addr + "/v1/pki/crl"], "config/urls crl_distribution_points")

    # Step 2: the intermediate CA.
    s.ok("PUT", "sys/mounts/pki_int", {"type": "pki"}, statuses=(200, 204))
    s.ok("PUT", "sys/mounts/pki_int/tune", {"max_lease_ttl": "43800h"}, statuses=(200, 204))
    gen = s.data("PUT", "pki_int/intermediate/generate/internal",
                 {"common_name": "example.com Intermediate Authority",
                  "issuer_name": "example-dot-com-intermediate"})
    check("private_key" not in gen, "internal intermediate returned a private key")
    check("BEGIN CERTIFICATE REQUEST" in gen.get("csr", ""), "no CSR: %r" % gen)
    check(gen.get("key_id"), "intermediate/generate returned no key_id")
    signed = s.data("PUT", "pki/root/sign-intermediate",
                    {"issuer_ref": "root-2023", "csr": gen["csr"], "format": "pem_bundle", "ttl": "43800h"})
    bundle = [H.load_cert(c) for c in H.pem_certs(signed["certificate"])]
    check(len(bundle) >= 2, "pem_bundle sign-intermediate holds %d certs" % len(bundle))
    ic = bundle[0]
    eq(H.cert_cn(ic), "example.com Intermediate Authority", "intermediate CN")
    eq(ic.issuer, rc.subject, "intermediate issuer")
    aia, cdp = urls_of(ic)
    eq(aia, [addr + "/v1/pki/ca"], "intermediate AIA caIssuers (from pki/config/urls)")
    eq(cdp, [addr + "/v1/pki/crl"], "intermediate CRL distribution point")
    from cryptography import x509
    bc = ic.extensions.get_extension_for_class(x509.BasicConstraints)
    check(bc.critical and bc.value.ca, "intermediate lacks critical CA:true")
    H.verify_chain(root["certificate"], "", signed["certificate"].split("-----END CERTIFICATE-----")[0] +
                   "-----END CERTIFICATE-----\n")
    imp = s.data("PUT", "pki_int/intermediate/set-signed", {"certificate": signed["certificate"]})
    check(imp.get("imported_issuers"), "set-signed imported no issuer: %r" % imp)
    default = s.data("GET", "pki_int/config/issuers").get("default")
    check(default in imp["imported_issuers"], "default issuer %r not among imported %r" %
          (default, imp["imported_issuers"]))
    di = s.data("GET", "pki_int/issuer/" + default)
    eq(H.pem_certs(di["certificate"])[0], H.pem_certs(signed["certificate"])[0], "default issuer is the intermediate")
    eq(di.get("key_id"), gen["key_id"], "intermediate issuer linked to the generated key")

    # Step 3: a role.
    s.ok("PUT", "pki_int/roles/example-dot-com",
         {"issuer_ref": default, "allowed_domains": "example.com", "allow_subdomains": True, "max_ttl": "720h"},
         statuses=(200, 204))
    rd = s.data("GET", "pki_int/roles/example-dot-com")
    eq(rd.get("max_ttl"), 720 * HOUR, "role max_ttl in seconds")
    eq(rd.get("issuer_ref"), default, "role issuer_ref")

    # Step 4: request a certificate.
    t0 = time.time()
    d = s.data("PUT", "pki_int/issue/example-dot-com", {"common_name": "test.example.com", "ttl": "24h"})
    leaf = H.load_cert(d["certificate"])
    eq(H.cert_cn(leaf), "test.example.com", "leaf CN")
    check(abs(H.not_after(leaf) - (t0 + 24 * HOUR)) < 120, "leaf TTL is not 24h")
    check(any(H.is_self_signed(H.load_cert(c)) for c in d["ca_chain"]), "leaf ca_chain lacks the root")
    H.verify_issued(d, root["certificate"])
    r = s.req("PUT", "pki_int/issue/example-dot-com", {"common_name": "test.example.org"})
    H.expect_error(r, 400, "name outside the role", contains="example.org")

    # Step 5: revoke it.
    rv = s.data("PUT", "pki_int/revoke", {"serial_number": d["serial_number"]})
    check(type(rv.get("revocation_time")) is int and rv["revocation_time"] > 0, "revoke answer: %r" % rv)
    c = s.data("GET", "pki_int/cert/" + d["serial_number"], token="")
    eq(c.get("revocation_time"), rv["revocation_time"], "cert/:serial revocation_time")
    keys = s.data("LIST", "pki_int/certs/revoked")["keys"]
    check(d["serial_number"] in keys, "LIST certs/revoked lacks %s: %r" % (d["serial_number"], keys))


def test_sys_mounts_list():
    s = srv()
    m = s.data("GET", "sys/mounts")
    for p in ("pki/", "pki_int/"):
        check(p in m, "sys/mounts lacks %s: %r" % (p, list(m)))
        eq(m[p].get("type"), "pki", "type of " + p)
        check(isinstance(m[p].get("config"), dict), "%s has no config: %r" % (p, m[p]))
    eq(m["pki/"]["config"].get("max_lease_ttl"), 87600 * HOUR, "pki max_lease_ttl in sys/mounts")


def test_tune_bounds_leaf_ttl():
    s = srv()
    H.enable_pki(s, "pki_tune")
    # The root first (under the default 768h max), so that it outlives the leaves.
    s.data("POST", "pki_tune/root/generate/internal", {"common_name": "tune root", "ttl": "100h"})
    s.ok("POST", "sys/mounts/pki_tune/tune", {"default_lease_ttl": "1h", "max_lease_ttl": "2h"}, statuses=(200, 204))
    t = s.data("GET", "sys/mounts/pki_tune/tune")
    eq(t.get("default_lease_ttl"), HOUR, "tune default_lease_ttl")
    eq(t.get("max_lease_ttl"), 2 * HOUR, "tune max_lease_ttl")
    s.ok("POST", "pki_tune/roles/r", {"allow_any_name": True}, statuses=(200, 204))
    t0 = time.time()
    d = s.data("POST", "pki_tune/issue/r", {"common_name": "a.example.com"})
    na = H.not_after(H.load_cert(d["certificate"]))
    check(abs(na - (t0 + HOUR)) < 120, "no ttl: NotAfter now%+ds, want the mount default +3600" % (na - t0))
    r = s.ok("POST", "pki_tune/issue/r", {"common_name": "a.example.com", "ttl": "5h"})
    na = H.not_after(H.load_cert(r.data["certificate"]))
    check(abs(na - (t0 + 2 * HOUR)) < 120, "ttl 5h on a 2h mount: NotAfter now%+ds, want +7200" % (na - t0))
    check(r.json().get("warnings"), "no warning when the mount max clamped the TTL")
    # A leaf that would outlive its CA is refused (leaf_not_after_behavior err).
    s.ok("POST", "sys/mounts/pki_tune/tune", {"max_lease_ttl": "200h"}, statuses=(200, 204))
    r = s.req("POST", "pki_tune/issue/r", {"common_name": "a.example.com", "ttl": "150h"})
    H.expect_error(r, 400, "leaf beyond the CA's NotAfter", contains="expiration of the ca")


def test_nested_mount_and_delete():
    s = srv()
    H.enable_pki(s, "a/b")
    m = s.data("GET", "sys/mounts")
    check("a/b/" in m, "sys/mounts lacks the nested a/b/: %r" % list(m))
    root = s.data("POST", "a/b/root/generate/internal", {"common_name": "nested root", "key_type": "ec",
                                                         "ttl": "100h"})
    s.ok("POST", "a/b/roles/r", {"allowed_domains": "example.com", "allow_subdomains": True,
                                 "key_type": "ec", "ttl": "1h"}, statuses=(200, 204))
    d = s.data("POST", "a/b/issue/r", {"common_name": "n.example.com"})
    H.verify_chain(root["certificate"], "", d["certificate"])
    eq(H.load_cert(s.ok("GET", "a/b/ca", token="").body), H.load_cert(root["certificate"]), "a/b/ca")
    check(d["serial_number"] in s.data("LIST", "a/b/certs")["keys"], "LIST a/b/certs")
    # Another mount's data is separate.
    r = s.req("GET", "pki/cert/" + d["serial_number"], token="")
    eq(r.status, 404, "a/b certificate visible under pki")
    # Delete the mount: its paths vanish and a new mount at the same path starts empty.
    s.ok("DELETE", "sys/mounts/a/b", statuses=(200, 204))
    check("a/b/" not in s.data("GET", "sys/mounts"), "a/b still listed after DELETE")
    r = s.req("GET", "a/b/ca", token="")
    H.expect_error(r, 404, "GET a/b/ca after the mount was deleted")
    H.enable_pki(s, "a/b")
    r = s.req("GET", "a/b/cert/" + d["serial_number"], token="")
    eq(r.status, 404, "certificate of a deleted mount survives in a new mount at the same path")
    r = s.req("LIST", "a/b/roles")
    eq(r.status, 404, "LIST roles of the re-created mount (empty LIST is 404)")
    r = s.req("POST", "sys/mounts/a/b", {"type": "pki"})
    H.expect_error(r, 400, "enabling a path already in use")
    s.ok("DELETE", "sys/mounts/a/b", statuses=(200, 204))


def test_root_exported_vs_internal():
    s = srv()
    H.enable_pki(s, "pki_exp")
    r = s.ok("POST", "pki_exp/root/generate/exported", {"common_name": "exported root", "key_type": "ec",
                                                        "issuer_name": "exp"})
    d = r.data
    check("PRIVATE KEY" in d.get("private_key", ""), "exported root returned no private key")
    eq(d.get("private_key_type"), "ec", "private_key_type")
    from cryptography.hazmat.primitives import serialization
    key = serialization.load_pem_private_key(d["private_key"].encode(), password=None)
    cert = H.load_cert(d["certificate"])
    pub = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    eq(key.public_key().public_bytes(*pub), cert.public_key().public_bytes(*pub), "exported key matches")
    r = s.ok("POST", "pki_exp/root/generate/internal", {"common_name": "internal root", "issuer_name": "int"})
    check(b"PRIVATE KEY" not in r.body and "private_key" not in r.data, "internal root leaked a private key")
    # The key cannot be read back in any way.
    for path in ("pki_exp/issuer/int", "pki_exp/issuer/exp", "pki_exp/key/" + r.data["key_id"],
                 "pki_exp/issuer/int/json"):
        rr = s.ok("GET", path)
        check(b"PRIVATE KEY" not in rr.body and b"private_key\"" not in rr.body, "%s shows key material" % path)
    csr = s.ok("POST", "pki_exp/intermediate/generate/internal", {"common_name": "x"})
    check(b"PRIVATE KEY" not in csr.body, "intermediate/generate/internal leaked a key")
    csr = s.data("POST", "pki_exp/intermediate/generate/exported", {"common_name": "x", "key_type": "rsa"})
    check("PRIVATE KEY" in csr.get("private_key", ""), "intermediate/generate/exported returned no key")
    eq(csr.get("private_key_type"), "rsa", "exported intermediate key type")


def test_issuers_and_keys():
    s = srv()
    H.enable_pki(s, "pki_iss")
    r1 = s.data("POST", "pki_iss/root/generate/internal", {"common_name": "root one", "issuer_name": "r1",
                                                           "key_name": "k1", "ttl": "700h"})
    r2 = s.data("POST", "pki_iss/root/generate/internal", {"common_name": "root two", "issuer_name": "r2",
                                                           "key_name": "k2", "ttl": "700h"})
    lst = s.data("LIST", "pki_iss/issuers", token="")
    eq(sorted(lst.get("keys", [])), sorted([r1["issuer_id"], r2["issuer_id"]]), "LIST issuers")
    eq(lst.get("key_info", {}).get(r1["issuer_id"], {}).get("issuer_name"), "r1", "key_info issuer_name")

    # Read by name, by id, and "default" (the first issuer).
    by_name = s.data("GET", "pki_iss/issuer/r1")
    by_id = s.data("GET", "pki_iss/issuer/" + r1["issuer_id"])
    dflt = s.data("GET", "pki_iss/issuer/default")
    for d in (by_name, by_id, dflt):
        eq(d.get("issuer_id"), r1["issuer_id"], "issuer read")
    eq(by_name.get("issuer_name"), "r1", "issuer_name")
    eq(by_name.get("key_id"), r1["key_id"], "issuer key_id")
    eq(by_name.get("leaf_not_after_behavior"), "err", "default leaf_not_after_behavior")
    check(isinstance(by_name.get("ca_chain"), list) and by_name["ca_chain"], "issuer ca_chain not a list")
    r = s.ok("GET", "pki_iss/issuer/r1/pem", token="")
    eq(r.ctype, "application/pem-certificate-chain", "issuer/:ref/pem Content-Type")
    eq(H.pem_certs(r.text)[0], H.pem_certs(r1["certificate"])[0], "issuer/:ref/pem")
    r = s.ok("GET", "pki_iss/issuer/r1/der", token="")
    eq(r.ctype, "application/pkix-cert", "issuer/:ref/der Content-Type")
    eq(r.body, H.pem_certs(r1["certificate"])[0], "issuer/:ref/der")
    j = s.data("GET", "pki_iss/issuer/r1/json", token="")
    eq(H.pem_certs(j["certificate"])[0], H.pem_certs(r1["certificate"])[0], "issuer/:ref/json certificate")
    check(isinstance(j.get("ca_chain"), list), "issuer/:ref/json ca_chain")
    H.expect_error(s.req("GET", "pki_iss/issuer/nope"), (400, 404), "unknown issuer read")

    # PATCH merges, POST replaces.
    s.ok("PATCH", "pki_iss/issuer/r1", {"leaf_not_after_behavior": "truncate"},
         headers=("Content-Type: application/merge-patch+json",), statuses=(200, 204))
    eq(s.data("GET", "pki_iss/issuer/r1").get("leaf_not_after_behavior"), "truncate", "after PATCH behaviour")
    s.ok("PATCH", "pki_iss/issuer/r1", {"issuer_name": "r1b"},
         headers=("Content-Type: application/merge-patch+json",), statuses=(200, 204))
    d = s.data("GET", "pki_iss/issuer/r1b")
    eq(d.get("leaf_not_after_behavior"), "truncate", "PATCH of the name kept the behaviour")
    H.expect_error(s.req("GET", "pki_iss/issuer/r1"), (400, 404), "old name after rename")
    s.ok("POST", "pki_iss/issuer/r1b", {"issuer_name": "r1c"}, statuses=(200, 204))
    d = s.data("GET", "pki_iss/issuer/r1c")
    eq(d.get("leaf_not_after_behavior"), "err", "POST without the field resets the behaviour")

    # config/issuers: switch the default.
    eq(s.data("GET", "pki_iss/config/issuers").get("default"), r1["issuer_id"], "first issuer is the default")
    s.ok("POST", "pki_iss/config/issuers", {"default": "r2"}, statuses=(200, 204))
    eq(s.data("GET", "pki_iss/config/issuers").get("default"), r2["issuer_id"], "default after switch")
    eq(H.load_cert(s.ok("GET", "pki_iss/ca", token="").body), H.load_cert(r2["certificate"]), "ca follows default")
    s.ok("POST", "pki_iss/roles/r", {"allow_any_name": True, "ttl": "1h"}, statuses=(200, 204))
    d = s.data("POST", "pki_iss/issue/r", {"common_name": "d.example.com"})
    eq(H.load_cert(d["certificate"]).issuer, H.load_cert(r2["certificate"]).subject, "issue uses the new default")
    d = s.data("POST", "pki_iss/issuer/r1c/issue/r", {"common_name": "d.example.com"})
    eq(H.load_cert(d["certificate"]).issuer, H.load_cert(r1["certificate"]).subject, "issuer/:ref/issue/:role")
    H.expect_error(s.req("POST", "pki_iss/config/issuers", {"default": "no-such-issuer"}), 400,
                   "default set to an unknown issuer")

    # Keys: list, read (no key material), refuse to delete a key in use.
    kl = s.data("LIST", "pki_iss/keys")
    eq(sorted(kl.get("keys", [])), sorted([r1["key_id"], r2["key_id"]]), "LIST keys")
    eq(kl.get("key_info", {}).get(r2["key_id"], {}).get("key_name"), "k2", "key_info key_name")
    k = s.data("GET", "pki_iss/key/k1")
    eq(k.get("key_id"), r1["key_id"], "key read by name")
    eq(k.get("key_type"), "rsa", "root default key_type (Vault default rsa)")
    r = s.req("DELETE", "pki_iss/key/" + r1["key_id"])
    H.expect_error(r, 400, "deleting a key in use", contains=["in use", "issuer", "used"])
    check(r1["key_id"] in s.data("LIST", "pki_iss/keys")["keys"], "key in use was deleted anyway")


def test_import_bundle():
    """config/ca and issuers/import/bundle: an exported root (certificate and
    key) becomes an issuer with its key in another mount; duplicates are
    reported as existing."""
    s = srv()
    H.enable_pki(s, "pki_src")
    ex = s.data("POST", "pki_src/root/generate/exported", {"common_name": "portable root", "key_type": "ec",
                                                             "ttl": "100h"})
    H.enable_pki(s, "pki_dst")
    imp = s.data("POST", "pki_dst/config/ca", {"pem_bundle": ex["private_key"] + "\n" + ex["certificate"]})
    eq(len(imp.get("imported_issuers") or []), 1, "imported issuers")
    eq(len(imp.get("imported_keys") or []), 1, "imported keys")
    iss = s.data("GET", "pki_dst/issuer/" + imp["imported_issuers"][0])
    check(iss.get("key_id"), "imported issuer is not linked to its key")
    s.ok("POST", "pki_dst/roles/r", {"allow_any_name": True, "key_type": "ec", "ttl": "1h"}, statuses=(200, 204))
    d = s.data("POST", "pki_dst/issue/r", {"common_name": "imp.example.com"})
    H.verify_chain(ex["certificate"], "", d["certificate"])
    again = s.data("POST", "pki_dst/issuers/import/bundle", {"pem_bundle": ex["certificate"] + "\n" +
                                                                           ex["private_key"]})
    eq(again.get("imported_issuers") or [], [], "re-import created a new issuer")
    check(imp["imported_issuers"][0] in (again.get("existing_issuers") or []), "re-import not reported existing")


if __name__ == "__main__":
    H.main(globals())
