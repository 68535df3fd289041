#!/usr/bin/python3
"""hvac (Debian python3-hvac 0.11) drives the PKI engine unmodified."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check, eq  # noqa: E402

MOUNT = "hvacpki"
state = {}


def client():
    s = H.dev_server()
    if "client" not in state:
        state["client"] = H.hvac_client(s)
    return s, state["client"]


def test_enable_and_generate_root():
    s, c = client()
    c.sys.enable_secrets_engine("pki", path=MOUNT, config={"max_lease_ttl": "87600h"})
    mounts = c.sys.list_mounted_secrets_engines()
    data = mounts.get("data", mounts)
    check(MOUNT + "/" in data, "hvac list_mounted_secrets_engines lacks %s/: %r" % (MOUNT, list(data)))
    r = c.secrets.pki.generate_root("internal", "hvac root", extra_params={"key_type": "ec", "ttl": "8760h"},
                                    mount_point=MOUNT)
    check(isinstance(r, dict) and "certificate" in r["data"], "generate_root: %r" % (r,))
    check("private_key" not in r["data"], "internal root returned a key")
    state["root"] = r["data"]["certificate"]
    eq(type(r["data"]["expiration"]), int, "expiration type")


def test_role_create_read_list():
    s, c = client()
    c.secrets.pki.create_or_update_role("web", extra_params={
        "allowed_domains": ["example.com"], "allow_subdomains": True, "key_type": "ec", "key_bits": 256,
        "ttl": "1h", "max_ttl": "24h"}, mount_point=MOUNT)
    r = c.secrets.pki.read_role("web", mount_point=MOUNT)
    d = r["data"]
    eq(d.get("allowed_domains"), ["example.com"], "role allowed_domains")
    eq(d.get("allow_subdomains"), True, "role allow_subdomains")
    eq(d.get("ttl"), 3600, "role ttl (integer seconds)")
    eq(d.get("max_ttl"), 86400, "role max_ttl")
    eq(d.get("key_type"), "ec", "role key_type")
    eq(d.get("server_flag"), True, "role default server_flag")
    eq(d.get("allow_localhost"), True, "role default allow_localhost")
    eq(d.get("not_before_duration"), 30, "role default not_before_duration")
    c.secrets.pki.create_or_update_role("other", extra_params={"allow_any_name": True}, mount_point=MOUNT)
    keys = c.secrets.pki.list_roles(mount_point=MOUNT)["data"]["keys"]
    eq(sorted(keys), ["other", "web"], "list_roles")


def test_generate_and_sign_certificate():
    s, c = client()
    r = c.secrets.pki.generate_certificate("web", "a.example.com", extra_params={"alt_names": "b.example.com"},
                                           mount_point=MOUNT)
    d = r["data"]
    for f in ("certificate", "issuing_ca", "ca_chain", "private_key", "private_key_type", "serial_number",
              "expiration"):
        check(f in d, "generate_certificate response lacks %s" % f)
    eq(r.get("lease_id"), "", "lease_id without generate_lease")
    eq(r.get("renewable"), False, "renewable")
    H.verify_issued(d, state["root"])
    state["issued"] = d["serial_number"]
    key = H.gen_key("ec256")
    csr = H.make_csr(key, cn="s.example.com", dns=["s.example.com"])
    r = c.secrets.pki.sign_certificate("web", csr, "s.example.com", mount_point=MOUNT)
    d = r["data"]
    check("private_key" not in d, "sign returned a private key")
    H.verify_issued(d, state["root"])
    state["signed"] = d["serial_number"]
    state["signed_pem"] = d["certificate"]


def test_read_and_list_certificates():
    s, c = client()
    r = c.secrets.pki.read_certificate(state["signed"], mount_point=MOUNT)
    eq(H.pem_certs(r["data"]["certificate"]), H.pem_certs(state["signed_pem"]), "read_certificate")
    eq(r["data"].get("revocation_time"), 0, "revocation_time before revoke")
    keys = c.secrets.pki.list_certificates(mount_point=MOUNT)["data"]["keys"]
    for serial in (state["issued"], state["signed"]):
        check(serial in keys, "list_certificates lacks %s: %r" % (serial, keys))


def test_revoke_certificate():
    s, c = client()
    r = c.secrets.pki.revoke_certificate(state["signed"], mount_point=MOUNT)
    check(r["data"]["revocation_time"] > 0, "revoke answer: %r" % (r,))
    rd = c.secrets.pki.read_certificate(state["signed"], mount_point=MOUNT)["data"]
    check(rd.get("revocation_time", 0) != 0, "revocation_time is 0 after revoke: %r" % rd)
    eq(rd["revocation_time"], r["data"]["revocation_time"], "revocation time read back")
    other = c.secrets.pki.read_certificate(state["issued"], mount_point=MOUNT)["data"]
    eq(other.get("revocation_time"), 0, "revoking one cert revoked another")


def test_read_ca_certificate():
    s, c = client()
    pem = c.secrets.pki.read_ca_certificate(mount_point=MOUNT)
    check(isinstance(pem, str) and "BEGIN CERTIFICATE" in pem, "read_ca_certificate: %r" % pem[:80])
    eq(H.pem_certs(pem), H.pem_certs(state["root"]), "read_ca_certificate is the root")
    chain = c.secrets.pki.read_ca_certificate_chain(mount_point="pki")
    check(len(H.pem_certs(chain)) >= 2, "read_ca_certificate_chain of the dev mount")


def test_errors_map_to_exceptions():
    import hvac.exceptions as E
    s, c = client()
    try:
        c.secrets.pki.generate_certificate("web", "evil.org", mount_point=MOUNT)
        raise H.TestFailure("name outside the role accepted")
    except E.InvalidRequest as e:
        check(e.errors and all(isinstance(x, str) and x for x in e.errors),
              "InvalidRequest without errors (Content-Type must be exactly application/json): %r" % (e.errors,))
        check(any("evil.org" in x for x in e.errors), "error does not name the refused name: %r" % e.errors)
    try:
        c.secrets.pki.generate_certificate("no-such-role", "a.example.com", mount_point=MOUNT)
        raise H.TestFailure("unknown role accepted")
    except E.InvalidRequest as e:
        check(any("no-such-role" in x for x in e.errors or []), "unknown role error: %r" % (e.errors,))
    bad = H.hvac_client(s, token="not-a-token")
    try:
        bad.secrets.pki.list_roles(mount_point=MOUNT)
        raise H.TestFailure("wrong token accepted")
    except E.Forbidden as e:
        check(e.errors, "Forbidden without errors: %r" % (e.errors,))


def test_is_authenticated():
    """hvac's usual first call: auth/token/lookup-self."""
    s, c = client()
    check(c.is_authenticated(), "is_authenticated() false for the root token (auth/token/lookup-self)")
    check(not H.hvac_client(s, token="not-a-token").is_authenticated(), "is_authenticated() true with a wrong token")


def test_delete_role():
    import hvac.exceptions as E
    s, c = client()
    c.secrets.pki.delete_role("other", mount_point=MOUNT)
    try:
        c.secrets.pki.read_role("other", mount_point=MOUNT)
        raise H.TestFailure("deleted role still readable")
    except E.InvalidPath:
        pass
    keys = c.secrets.pki.list_roles(mount_point=MOUNT)["data"]["keys"]
    eq(keys, ["web"], "list_roles after delete")
    c.secrets.pki.delete_role("web", mount_point=MOUNT)
    try:
        c.secrets.pki.list_roles(mount_point=MOUNT)
        raise H.TestFailure("LIST of no roles must be 404 (hvac InvalidPath)")
    except E.InvalidPath:
        pass


if __name__ == "__main__":
    H.main(globals())
