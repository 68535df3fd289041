#!/usr/bin/python3
"""TLS-certificate login (auth/cert) over mutual TLS on the HTTPS listener, with curl
--cert/--key: cert roles, a workload renewing with the certificate Sigil's own PKI mount
issued it, chains through an intermediate, pinned leaves, constraints, and the refusals
(no client certificate, untrusted, expired, wrong purpose, unknown role, constraints unmet,
plain HTTP)."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check, eq  # noqa: E402

state = {}
RENEW_POLICY = """
path "pki/issue/client" {
  capabilities = ["update"]
}
"""


def srv():
    s = H._shared.get("mtls")
    if s is None or not s.running:
        s = H.config_server("mtls", tls=True, log_level="info")
        H._shared["mtls"] = s
    return s


def write(name, text):
    d = state.setdefault("dir", H.tmpdir("certs"))
    p = os.path.join(d, name)
    with open(p, "w") as f:
        f.write(text)
    os.chmod(p, 0o600)
    return p


def issue(s, role, cn, mount="pki", token=None, **extra):
    body = {"common_name": cn}
    body.update(extra)
    d = s.data("POST", "%s/issue/%s" % (mount, role), body, token=token)
    return d


def keypair_files(tag, d):
    """cert (leaf only), key, and bundle (leaf + chain) files for an issue response."""
    cert = write(tag + ".crt", d["certificate"] + "\n")
    key = write(tag + ".key", d["private_key"] + "\n")
    chain = [c for c in (d.get("ca_chain") or []) if c.strip()]
    bundle = write(tag + ".bundle", d["certificate"] + "\n" + "".join(c + "\n" for c in chain))
    return cert, key, bundle


def login(s, cert=None, key=None, name=None, mount="cert", body=None):
    """POST auth/<mount>/login over HTTPS, presenting cert/key when given."""
    extra = []
    if cert:
        extra += ["--cert", cert, "--key", key]
    if body is None:
        body = {"name": name} if name is not None else {}
    return H.curl(s.url + "/v1/auth/%s/login" % mount, "POST", body, cacert=s.cacert, extra=extra)


def test_setup_pki_and_cert_role():
    s = srv()
    H.enable_pki(s, "pki", "87600h")
    root = s.data("POST", "pki/root/generate/internal", {"common_name": "Workload Root", "key_type": "ec",
                                                         "ttl": "8760h"})["certificate"]
    state["root"] = root
    s.ok("POST", "pki/roles/client", {"allowed_domains": "example.com", "allow_subdomains": True,
                                      "key_type": "ec", "ttl": "1h", "client_flag": True, "server_flag": False},
         statuses=(200, 204))
    s.ok("POST", "pki/roles/serveronly", {"allowed_domains": "example.com", "allow_subdomains": True,
                                          "key_type": "ec", "ttl": "1h", "client_flag": False,
                                          "server_flag": True}, statuses=(200, 204))
    s.ok("POST", "pki/roles/anyname", {"allow_any_name": True, "key_type": "ec", "ttl": "1h",
                                       "client_flag": True}, statuses=(200, 204))
    s.ok("POST", "sys/policies/acl/renew", {"policy": RENEW_POLICY}, statuses=(200, 204))
    s.ok("POST", "sys/auth/cert", {"type": "cert"}, statuses=(200, 204))
    s.ok("POST", "auth/cert/certs/web", {"certificate": root, "allowed_common_names": "*.example.com",
                                         "token_policies": "renew", "token_ttl": "30m",
                                         "display_name": "workloads"}, statuses=(200, 204))
    d = s.data("GET", "auth/cert/certs/web")
    eq(d["allowed_common_names"], ["*.example.com"], "role constraints")
    eq(d["token_policies"], ["renew"], "role policies")
    check("BEGIN CERTIFICATE" in d["certificate"], "role certificate read back")
    eq(s.data("LIST", "auth/cert/certs")["keys"], ["web"], "LIST certs")


def test_workload_logs_in_and_renews_its_certificate():
    s = srv()
    d = issue(s, "client", "app.example.com")
    cert, key, _ = keypair_files("app", d)
    r = login(s, cert, key, name="web")
    H.expect_ok(r, "cert login with a Sigil-issued certificate")
    auth = r.json()["auth"]
    tok = auth["client_token"]
    eq(sorted(auth["policies"]), ["default", "renew"], "policies")
    eq(auth["metadata"]["cert_name"], "web", "metadata cert_name")
    eq(auth["metadata"]["common_name"], "app.example.com", "metadata common_name")
    leaf = H.load_cert(d["certificate"])
    eq(auth["metadata"]["serial_number"], str(leaf.serial_number), "metadata serial (decimal, as Vault)")
    eq(auth["lease_duration"], 1800, "token_ttl")
    eq(r.json().get("mount_type"), "cert", "mount_type")
    me = H.curl(s.url + "/v1/auth/token/lookup-self", token=tok, cacert=s.cacert).json()["data"]
    eq(me["display_name"], "cert-workloads", "display name")
    eq(me["path"], "auth/cert/login", "token path")
    # The workload renews: a new certificate with the token its old one earned ...
    d2 = issue(s, "client", "app.example.com", token=tok)
    H.verify_chain(state["root"], "", d2["certificate"])
    check(d2["serial_number"] != d["serial_number"], "a new certificate")
    # ... and logs in with the new one next time. The token can do nothing else.
    cert2, key2, _ = keypair_files("app2", d2)
    H.expect_ok(login(s, cert2, key2, name="web"), "login with the renewed certificate")
    r = H.curl(s.url + "/v1/sys/mounts", token=tok, cacert=s.cacert)
    H.expect_error(r, 403, "sys/mounts with the cert token")
    r = H.curl(s.url + "/v1/pki/issue/anyname", "POST", {"common_name": "x.example.com"}, token=tok,
               cacert=s.cacert)
    H.expect_error(r, 403, "another role with the cert token")
    # Without "name" every role is tried.
    H.expect_ok(login(s, cert, key), "login without a role name")
    state["app"] = (cert, key, d)


def test_hvac_cert_login():
    s = srv()
    cert, key, _ = state["app"]
    import hvac
    # hvac 0.11 wants the listener CA as the client's verify path (its cacert argument takes PEM text
    # and then hands it to requests as a path), the client certificate and key as file paths.
    c = hvac.Client(url=s.url, verify=s.cacert, timeout=H.REQUEST_TIMEOUT)
    r = c.auth.cert.login(name="web", cert_pem=cert, key_pem=key)
    auth = r["auth"] if isinstance(r, dict) else r.json()["auth"]
    eq(auth["metadata"]["common_name"], "app.example.com", "hvac cert login")


def test_plain_api_still_works_without_client_certificate():
    s = srv()
    eq(H.curl(s.url + "/v1/sys/health", cacert=s.cacert).status, 200, "health without a client cert")
    eq(H.curl(s.url + "/v1/sys/mounts", token=s.token, cacert=s.cacert).status, 200, "root token over TLS")
    cert, key, _ = state["app"]
    r = H.curl(s.url + "/v1/sys/mounts", token=s.token, cacert=s.cacert, extra=["--cert", cert, "--key", key])
    eq(r.status, 200, "a client certificate changes nothing for token requests")


def test_chain_through_an_intermediate_and_pinned_leaf():
    s = srv()
    root, inter = H.make_ca(s, "pki_int", cn="Chain Root")
    s.ok("POST", "pki_int/roles/svc", {"allowed_domains": "svc.test", "allow_subdomains": True,
                                       "key_type": "ec", "ttl": "1h"}, statuses=(200, 204))
    d = issue(s, "svc", "api.svc.test", mount="pki_int")
    cert, key, bundle = keypair_files("svc", d)
    # Trusting the root: the client sends its intermediate along.
    s.ok("POST", "auth/cert/certs/byroot", {"certificate": root, "allowed_dns_sans": "*.SVC.test",
                                            "token_policies": "default"}, statuses=(200, 204))
    H.expect_ok(login(s, bundle, key, name="byroot"), "leaf + intermediate against the root")
    r = login(s, cert, key, name="byroot")
    H.expect_error(r, 400, "leaf alone against the root (intermediate missing)",
                   "unable to get local issuer certificate")
    # Trusting the intermediate (the PKI mount's issuer) alone is enough for the bare leaf.
    s.ok("POST", "auth/cert/certs/byint", {"certificate": inter, "token_policies": "default"},
         statuses=(200, 204))
    H.expect_ok(login(s, cert, key, name="byint"), "leaf against its issuing intermediate")
    # A pinned leaf: that certificate only.
    s.ok("POST", "auth/cert/certs/pinned", {"certificate": d["certificate"], "token_policies": "default"},
         statuses=(200, 204))
    H.expect_ok(login(s, cert, key, name="pinned"), "pinned leaf")
    other = issue(s, "svc", "other.svc.test", mount="pki_int")
    ocert, okey, _ = keypair_files("svc-other", other)
    H.expect_error(login(s, ocert, okey, name="pinned"), 400, "another leaf against a pinned one",
                   "invalid certificate")
    for n in ("byroot", "byint", "pinned"):
        s.ok("DELETE", "auth/cert/certs/" + n, statuses=(204,))


def test_refusals():
    s = srv()
    cert, key, d = state["app"]
    # No client certificate.
    r = login(s, name="web")
    H.expect_error(r, 400, "login without a client certificate", "client certificate must be supplied")
    # A self-signed certificate nobody trusts.
    dd = H.tmpdir("selfsigned")
    skey = os.path.join(dd, "k.pem")
    scrt = os.path.join(dd, "c.pem")
    H.gen_key("ec256", skey)
    H.openssl("req", "-x509", "-new", "-key", skey, "-subj", "/CN=app.example.com", "-days", "1",
              "-addext", "extendedKeyUsage=clientAuth", "-out", scrt)
    r = login(s, scrt, skey, name="web")
    H.expect_error(r, 400, "untrusted client certificate", "invalid certificate or no client certificate supplied")
    r = login(s, scrt, skey)
    H.expect_error(r, 400, "untrusted client certificate, all roles", "invalid certificate")
    # An unknown role, a malformed role name.
    H.expect_error(login(s, cert, key, name="nope"), 400, "unknown cert role", 'no certificate role named "nope"')
    H.expect_error(login(s, cert, key, name="../web"), 400, "bad cert role name", "role name")
    H.expect_error(login(s, cert, key, body={"name": 7}), 400, "name of the wrong type", "name")
    # Trusted, but the common name is outside the role's constraints.
    other = issue(s, "anyname", "intruder.other.net")
    ocert, okey, _ = keypair_files("intruder", other)
    H.expect_error(login(s, ocert, okey, name="web"), 400, "constraints unmet",
                   "no chain matching all constraints")
    # Trusted, but only for TLS servers (EKU serverAuth alone).
    srvonly = issue(s, "serveronly", "srv.example.com")
    scert, skey2, _ = keypair_files("serveronly", srvonly)
    H.expect_error(login(s, scert, skey2, name="web"), 400, "serverAuth-only certificate",
                   "unsuitable certificate purpose")
    # Expired.
    short = issue(s, "client", "brief.example.com", ttl="3s")
    ecert, ekey, _ = keypair_files("brief", short)
    H.expect_ok(login(s, ecert, ekey, name="web"), "fresh short-lived certificate")
    time.sleep(4)
    H.expect_error(login(s, ecert, ekey, name="web"), 400, "expired certificate", "certificate has expired")
    # A certificate of the right name but whose key the client does not hold never gets past TLS.
    r, rc, err = H.curl_raw(s.url + "/v1/auth/cert/login", "POST", {"name": "web"}, cacert=s.cacert,
                            extra=["--cert", cert, "--key", okey])
    check(r is None, "mismatched key accepted: %r" % (r,))
    s.assert_healthy("after the refusals")


def test_role_bad_input():
    s = srv()
    cases = [
        ({}, "missing certificate"),
        ({"certificate": "not a pem"}, "failed to parse certificate"),
        ({"certificate": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}, "certificate"),
        ({"certificate": state["root"], "token_ttl": "forever"}, "token_ttl"),
        ({"certificate": state["root"], "allowed_common_names": 5}, "allowed_common_names"),
        ({"certificate": state["root"], "display_name": "x" * 300}, "display_name"),
        ({"certificate": (state["root"] + "\n") * 20}, "more than"),
    ]
    for body, want in cases:
        r = s.req("POST", "auth/cert/certs/bad", body)
        H.expect_error(r, 400, "cert role body %s" % json.dumps(body)[:60], want)
    eq(s.req("GET", "auth/cert/certs/bad").status, 404, "refused role absent")
    r = s.req("POST", "auth/cert/certs/-x", {"certificate": state["root"]})
    H.expect_error(r, 400, "bad role name", "role name")
    r = s.req("POST", "auth/cert/certs/web", {"certificate": state["root"]}, token="")
    H.expect_error(r, 403, "role write without a token")
    # A pinned leaf that names usages must allow client authentication (as Vault).
    srvonly = issue(s, "serveronly", "pin.example.com")
    r = s.req("POST", "auth/cert/certs/pinsrv", {"certificate": srvonly["certificate"]})
    H.expect_error(r, 400, "pinned serverAuth-only leaf", "tls client authentication")
    # Names are case-insensitive and the display name defaults to the name.
    s.ok("POST", "auth/cert/certs/MixedCase", {"certificate": state["root"]}, statuses=(204,))
    d = s.data("GET", "auth/cert/certs/mixedcase")
    eq(d["display_name"], "mixedcase", "display_name default")
    s.ok("DELETE", "auth/cert/certs/MIXEDCASE", statuses=(204,))
    eq(s.req("GET", "auth/cert/certs/mixedcase").status, 404, "deleted through another case")
    # An update keeps the certificate.
    s.ok("POST", "auth/cert/certs/web", {"token_ttl": "20m"}, statuses=(204,))
    d = s.data("GET", "auth/cert/certs/web")
    eq((d["token_ttl"], d["certificate"].strip() == state["root"].strip()), (1200, True), "partial update")


def test_restart_keeps_roles():
    s = srv()
    s.restart()
    cert, key, _ = state["app"]
    H.expect_ok(login(s, cert, key, name="web"), "cert login after a restart")
    s.ok("DELETE", "auth/cert/certs/web", statuses=(204,))
    H.expect_error(login(s, cert, key, name="web"), 400, "deleted role", 'no certificate role named "web"')
    H.expect_error(login(s, cert, key), 400, "no roles left", "invalid certificate")


def test_plain_http_listener_refuses_cert_login():
    s = H.dev_server("plain")
    s.ok("POST", "sys/auth/cert", {"type": "cert"}, statuses=(200, 204))
    r = s.req("POST", "auth/cert/login", {}, token="")
    H.expect_error(r, 400, "cert login over plain HTTP", "tls connection required")


H.main(globals())
