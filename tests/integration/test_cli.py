#!/usr/bin/python3
"""The operator CLI driven as a user would: `sigil <command>` as a subprocess
against a real dev server, with its environment (SIGIL_* and the VAULT_*
fallbacks), the token file in $HOME, and the exit codes (0 ok, 1 error,
2 usage).  Covers wrong flags, an unreachable server, an expired token, a
denied role and a policy that does not allow a role, issuing to files
checked with openssl, signing a CSR, listing and revoking, the issuer
commands (root, intermediate CSR, signing, set-signed), the OIDC login flow
through its localhost callback, bash completion and the man page."""

import json
import os
import re
import stat
import subprocess
import sys
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check, eq  # noqa: E402

state = {}


def srv():
    s = H.dev_server("cli")
    if "ca" not in state:
        # The dev server mounts pki/ already: the same root + intermediate as H.make_ca, on it.
        s.ok("POST", "sys/mounts/pki/tune", {"max_lease_ttl": "87600h"}, statuses=(200, 204))
        state["root"] = s.data("POST", "pki/root/generate/internal",
                               {"common_name": "Test Root", "key_type": "ec", "key_bits": 256, "ttl": "87000h",
                                "issuer_name": "root"})["certificate"]
        csr = s.data("POST", "pki/intermediate/generate/internal",
                     {"common_name": "Test Root Intermediate", "key_type": "ec", "key_bits": 256})["csr"]
        inter = s.data("POST", "pki/root/sign-intermediate",
                       {"csr": csr, "common_name": "Test Root Intermediate", "issuer_ref": "root",
                        "ttl": "43800h", "format": "pem"})["certificate"]
        imp = s.data("POST", "pki/intermediate/set-signed", {"certificate": inter})
        s.ok("POST", "pki/config/issuers", {"default": imp["imported_issuers"][0]}, statuses=(200, 204))
        s.ok("POST", "pki/roles/web", {"allowed_domains": "example.com", "allow_subdomains": True,
                                       "allow_ip_sans": True, "max_ttl": "24h", "key_type": "ec",
                                       "key_bits": 256}, statuses=(200, 204))
        s.ok("POST", "pki/roles/leased", {"allowed_domains": "example.com", "allow_subdomains": True,
                                          "generate_lease": True, "max_ttl": "1h", "key_type": "ec",
                                          "key_bits": 256}, statuses=(200, 204))
        state["ca"] = True
        state["home"] = H.tmpdir("home")
    return s


def env_for(s=None, token=True, **extra):
    """A clean environment: no inherited SIGIL_/VAULT_ variables, HOME in a temp dir."""
    e = {k: v for k, v in os.environ.items() if not k.startswith(("SIGIL_", "VAULT_"))}
    e["HOME"] = extra.pop("home", None) or state.get("home") or H.tmpdir("home")
    if s is not None:
        e["SIGIL_ADDR"] = s.url
        if token:
            e["SIGIL_TOKEN"] = s.token if token is True else token
    e.update(extra)
    return e


def sigil(*args, env=None, input=None, timeout=120):
    p = subprocess.run([H.SIGIL_BIN] + list(args), env=env, input=input, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def ok(*args, env=None, **kw):
    rc, out, err = sigil(*args, env=env, **kw)
    check(rc == 0, "sigil %s: exit %d, stderr %r" % (" ".join(args), rc, err[-800:]))
    return out


def fails(want_rc, contains, *args, env=None):
    rc, out, err = sigil(*args, env=env)
    check(rc == want_rc, "sigil %s: exit %d, want %d (stderr %r)" % (" ".join(args), rc, want_rc, err[-500:]))
    for c in ([contains] if isinstance(contains, str) else contains):
        check(c.lower() in err.lower(), "sigil %s: stderr %r lacks %r" % (" ".join(args), err[-800:], c))
    return out, err


def test_usage_errors_exit_2():
    e = env_for()
    fails(2, "usage: sigil", env=e)
    fails(2, "unknown command \"frobnicate\"", "frobnicate", env=e)
    fails(2, "unknown flag -bogus for \"sigil issue\"", "issue", "web", "--bogus", "x", env=e)
    fails(2, "needs a value", "issue", "web", "--cn", env=e)
    fails(2, "\"sigil issue\" needs ROLE", "issue", env=e)
    fails(2, "unexpected \"extra\"", "list", "pki/roles", "extra", env=e)
    fails(2, "-format must be table or json", "read", "sys/health", "-format=xml", env=e)
    fails(2, "missing subcommand", "role", env=e)
    fails(2, "unknown subcommand", "issuer", "frob", env=e)
    fails(2, "expected K=V", "write", "pki/roles/x", "novalue", env=e)
    fails(2, "unknown -method", "login", "-method=ldap", env=e)
    fails(2, "give either a SERIAL", "revoke", env=e)
    fails(2, "--expiring takes a duration", "certs", "--expiring", "soon", env=e)
    fails(2, "--csr FILE is required", "sign", "web", env=e)
    fails(2, "only bash", "completion", "zsh", env=e)
    # A usage error prints the command's help, with its example.
    _, err = fails(2, "example:", "issue", "web", "--nope", env=e)
    check("sigil issue web --cn" in err, "usage shows the example: %r" % err)


def test_help_on_every_command():
    e = env_for()
    out = ok("--help", env=e)
    names = re.findall(r"^  (\S+(?: \S+)?)\s{2,}", out, re.M)
    check(len(names) >= 25, "command list: %r" % names)
    for n in names:
        if n in ("server", "agent", "routes", "audit verify"):
            continue  # dispatched before the CLI table; help comes from those programs
        h = ok(*(n.split() + ["-help"]), env=e)
        check(h.startswith("usage: sigil " + n), "%s help: %r" % (n, h[:80]))
        check("\nexample:\n  sigil " in h or "\nexample:\n  source <(sigil" in h, "%s help has an example" % n)
    h = ok("help", "issuer", "generate-root", env=e)
    check("-cn NAME" in h and "-ttl DURATION" in h, "help COMMAND: %r" % h)


def test_unreachable_server():
    port = H.free_port()
    e = env_for(SIGIL_ADDR="http://127.0.0.1:%d" % port, SIGIL_TOKEN="x")
    for args in (("status",), ("read", "pki/roles/web"), ("issue", "web", "--cn", "a.example.com"),
                 ("certs",), ("login", "sometoken")):
        _, err = fails(1, "cannot reach http://127.0.0.1:%d" % port, *args, env=e)
        check(err.startswith("Error: "), "one clear line: %r" % err)
        check("usage:" not in err, "no usage text for a transport error")


def test_status_and_env_fallback():
    s = srv()
    out = ok("status", env=env_for(s, token=False))
    check(re.search(r"^Sealed\s+false$", out, re.M), "status table: %r" % out)
    check(re.search(r"^Initialized\s+true$", out, re.M), "status initialized: %r" % out)
    j = json.loads(ok("status", "-format=json", env=env_for(s, token=False)))
    eq(j["sealed"], False, "status json sealed")
    # VAULT_* when SIGIL_* is unset ...
    e = env_for(VAULT_ADDR=s.url, VAULT_TOKEN=s.token)
    j = json.loads(ok("read", "pki/roles/web", "-format=json", env=e))
    eq(j["data"]["allowed_domains"], ["example.com"], "read through VAULT_ADDR/VAULT_TOKEN")
    # ... and SIGIL_* wins over VAULT_*.
    e = env_for(SIGIL_ADDR=s.url, SIGIL_TOKEN=s.token, VAULT_ADDR="http://127.0.0.1:1", VAULT_TOKEN="bad")
    ok("read", "pki/roles/web", env=e)
    # -address overrides both.
    e = env_for(SIGIL_ADDR="http://127.0.0.1:1", SIGIL_TOKEN=s.token)
    ok("read", "pki/roles/web", "-address=" + s.url, env=e)


def test_login_token_file_0600_and_logout():
    s = srv()
    home = H.tmpdir("home-login")
    e = env_for(s, token=False, home=home)
    fails(1, "no token", "read", "pki/roles/web", env=e)
    out = ok("login", s.token, env=e)
    check("Success!" in out, "login output: %r" % out)
    path = os.path.join(home, ".sigil-token")
    eq(stat.S_IMODE(os.stat(path).st_mode), 0o600, "token file mode")
    eq(open(path).read(), s.token, "token file content")
    ok("read", "pki/roles/web", env=e)  # the stored token is used
    # A wrong token is refused and the stored one stays.
    fails(1, "invalid or expired", "login", "s.notatoken", env=e)
    eq(open(path).read(), s.token, "token file unchanged after a failed login")
    ok("logout", env=e)
    check(not os.path.exists(path), "logout removes the token file")
    fails(1, "no token", "read", "pki/roles/web", env=e)


def test_login_approle_with_secret_file():
    s = srv()
    s.ok("POST", "sys/auth/approle", {"type": "approle"}, statuses=(200, 204))
    s.ok("POST", "sys/policies/acl/web-issuer",
         {"policy": 'path "pki/issue/web" { capabilities = ["update"] }'}, statuses=(200, 204))
    s.ok("POST", "auth/approle/role/app", {"token_policies": "web-issuer", "token_ttl": "1h"}, statuses=(200, 204))
    role_id = s.data("GET", "auth/approle/role/app/role-id")["role_id"]
    secret_id = s.data("POST", "auth/approle/role/app/secret-id")["secret_id"]
    sfile = H.tmpfile(secret_id, "secret_id")
    home = H.tmpdir("home-approle")
    e = env_for(s, token=False, home=home)
    out = ok("login", "-method=approle", "role_id=" + role_id, "secret_id=@" + sfile, env=e)
    check("web-issuer" in out, "login table shows the policies: %r" % out)
    tok = open(os.path.join(home, ".sigil-token")).read()
    check(tok and tok != s.token, "approle token stored")
    j = json.loads(ok("read", "auth/token/lookup-self", "-format=json", env=e))
    check("web-issuer" in j["data"]["policies"], "lookup-self policies %r" % j["data"]["policies"])
    state["approle_home"] = home
    # The policy allows pki/issue/web only: another role is a 403 explained as a policy matter.
    _, err = fails(1, "policies do not allow", "issue", "leased", "--cn", "a.example.com", env=e)
    check("invalid or expired" not in err, "not blamed on the token: %r" % err)
    # Wrong secret: a 4xx with the server's reason, exit 1.
    fails(1, "Error:", "login", "-method=approle", "role_id=" + role_id, "secret_id=wrong", env=e)


def test_expired_token():
    s = srv()
    r = s.ok("POST", "auth/token/create", {"ttl": "2s"})
    token = r.json()["auth"]["client_token"]
    e = env_for(s, token=token)
    ok("read", "auth/token/lookup-self", env=e)
    time.sleep(3.5)
    _, err = fails(1, "the token is invalid or expired", "read", "pki/roles/web", env=e)
    check("sigil login" in err, "hint to log in again: %r" % err)


def test_denied_role():
    s = srv()
    e = env_for(s)
    _, err = fails(1, "Error: 400", "issue", "web", "--cn", "www.evil.org", env=e)
    check("evil.org" in err or "not allowed" in err.lower() or "denied" in err.lower(),
          "the role's reason is shown: %r" % err)
    fails(1, "Error:", "issue", "nosuchrole", "--cn", "a.example.com", env=e)


def _verify(crt, chain):
    p = H.openssl("verify", "-CAfile", state["root_file"], "-untrusted", chain, crt, check_rc=False)
    check(p.returncode == 0 and b": OK" in p.stdout, "openssl verify: %r %r" % (p.stdout, p.stderr))


def _root_file():
    if "root_file" not in state:
        state["root_file"] = H.tmpfile(state["root"], "root.pem", 0o644)
    return state["root_file"]


def test_issue_writes_crt_key_chain():
    s = srv()
    _root_file()
    d = H.tmpdir("issue")
    prefix = os.path.join(d, "www")
    out = ok("issue", "web", "--cn", "www.example.com", "--san", "api.example.com", "--ip", "127.0.0.1",
             "--ttl", "15m", "--out", prefix, env=env_for(s))
    for suffix in (".crt", ".key", ".chain.pem"):
        check(os.path.exists(prefix + suffix), "%s written (%r)" % (suffix, out))
    eq(stat.S_IMODE(os.stat(prefix + ".key").st_mode), 0o600, "key mode")
    check(re.search(r"^serial_number\s+([0-9a-f]{2}:)+[0-9a-f]{2}$", out, re.M), "serial shown: %r" % out)
    check(re.search(r"^expiration\s+\S+Z \(in 1[45]m\)$", out, re.M), "relative expiry: %r" % out)
    _verify(prefix + ".crt", prefix + ".chain.pem")
    cert = H.load_cert(open(prefix + ".crt").read())
    eq(H.cert_cn(cert), "www.example.com", "CN")
    sans = H.cert_sans(cert)
    check("api.example.com" in str(sans) and "127.0.0.1" in str(sans), "SANs %r" % (sans,))
    life = H.not_after(cert) - H.not_before(cert)
    check(14 * 60 <= life <= 16 * 60 + 60, "15m lifetime: %r" % life)
    # The key belongs to the certificate.
    pub_c = H.openssl("x509", "-in", prefix + ".crt", "-noout", "-pubkey").stdout
    pub_k = H.openssl("pkey", "-in", prefix + ".key", "-pubout").stdout
    eq(pub_c, pub_k, "key matches certificate")
    state["issued_serial"] = H.colon_serial(cert)
    # JSON output names the files and never the key material.
    prefix2 = os.path.join(d, "j")
    j = json.loads(ok("issue", "web", "--cn", "j.example.com", "--out", prefix2, "-format=json", env=env_for(s)))
    eq(j["private_key_file"], prefix2 + ".key", "json names the key file")
    check("PRIVATE KEY" not in json.dumps(j), "no key in JSON output")
    # Without --out the response is printed (as `vault write pki/issue/...` does).
    j = json.loads(ok("issue", "web", "--cn", "p.example.com", "-format=json", env=env_for(s)))
    check(j["data"]["certificate"].startswith("-----BEGIN CERTIFICATE-----"), "printed certificate")


def test_sign_csr():
    s = srv()
    _root_file()
    d = H.tmpdir("sign")
    key = os.path.join(d, "k.pem")
    H.gen_key("ec256", key)
    csr = os.path.join(d, "req.csr")
    H.openssl("req", "-new", "-key", key, "-subj", "/CN=csr.example.com", "-out", csr)
    prefix = os.path.join(d, "signed")
    ok("sign", "web", "--csr", csr, "--ttl", "10m", "--out", prefix, env=env_for(s))
    check(not os.path.exists(prefix + ".key"), "no key file when signing a CSR")
    _verify(prefix + ".crt", prefix + ".chain.pem")
    eq(H.cert_cn(H.load_cert(open(prefix + ".crt").read())), "csr.example.com", "CN from the CSR")
    fails(1, "Error:", "sign", "web", "--csr", os.path.join(d, "missing.csr"), env=env_for(s))
    bad = H.tmpfile("not a csr", "bad.csr")
    fails(1, "Error: 400", "sign", "web", "--csr", bad, env=env_for(s))


def test_certs_table_and_revoke():
    s = srv()
    e = env_for(s)
    if "issued_serial" not in state:
        test_issue_writes_crt_key_chain()
    serial = state["issued_serial"]
    out = ok("certs", env=e)
    check(out.startswith("SERIAL"), "table header: %r" % out[:100])
    line = [l for l in out.splitlines() if l.startswith(serial)]
    check(line, "issued serial %s listed: %r" % (serial, out))
    check("www.example.com" in line[0] and re.search(r"in 1[45]m", line[0]) and line[0].endswith("valid"),
          "row: %r" % line[0])
    out = ok("certs", "--expiring", "1h", env=e)
    check(serial in out, "expiring within 1h lists it")
    check("Test Root" not in out, "the 87000h root is not expiring within 1h: %r" % out)
    j = json.loads(ok("certs", "-format=json", env=e))
    row = [r for r in j if r["serial_number"] == serial][0]
    eq(row["common_name"], "www.example.com", "json row")
    # revoke by serial
    out = ok("revoke", serial, env=e)
    check("revocation_time" in out, "revoke output: %r" % out)
    out = ok("certs", "--revoked", env=e)
    line = [l for l in out.splitlines() if l.startswith(serial)]
    check(line and line[0].endswith("revoked"), "revoked listing: %r" % out)
    ok("crl", "rotate", env=e)
    crl = s.req("GET", "pki/crl/pem", token="").text
    crl_txt = H.openssl("crl", "-noout", "-text", input=crl).stdout.decode()
    check(serial.replace(":", "").upper() in crl_txt.replace(":", "").upper(), "serial on the CRL")
    # revoke by lease id, and every lease of a role
    d = H.tmpdir("leased")
    j = json.loads(ok("issue", "leased", "--cn", "l1.example.com", "--out", os.path.join(d, "l1"),
                      "-format=json", env=e))
    lease = j["lease_id"]
    check(lease and lease.startswith("pki/issue/leased/"), "lease id %r" % lease)
    out = ok("revoke", lease, env=e)
    check("Revoked lease" in out, out)
    r = s.req("POST", "sys/leases/lookup", {"lease_id": lease})
    check(r.status in (400, 404), "lease gone: %d" % r.status)
    ok("issue", "leased", "--cn", "l2.example.com", "--out", os.path.join(d, "l2"), env=e)
    ok("issue", "leased", "--cn", "l3.example.com", "--out", os.path.join(d, "l3"), env=e)
    out = ok("revoke", "--role", "leased", env=e)
    check("pki/issue/leased" in out, out)
    r = s.req("LIST", "sys/leases/lookup/pki/issue/leased/")
    eq(r.status, 404, "no leases left under the role")
    fails(1, "Error:", "revoke", "ff:ff:ff:ff", env=e)
    # A reason goes to pki/revoke and onto the CRL entry; a bad one is the server's 400.
    j = json.loads(ok("issue", "web", "--cn", "kc.example.com", "-format=json", env=e))
    kc = j["data"]["serial_number"]
    ok("revoke", kc, "--reason", "keyCompromise", env=e)
    ok("crl", "rotate", env=e)
    crl_txt = H.openssl("crl", "-noout", "-text", input=s.req("GET", "pki/crl/pem", token="").text).stdout.decode()
    check("Key Compromise" in crl_txt, "reason on the CRL")
    j = json.loads(ok("issue", "web", "--cn", "kc2.example.com", "-format=json", env=e))
    fails(1, "Error: 400", "revoke", j["data"]["serial_number"], "--reason", "bored", env=e)
    fails(2, "--reason applies to a revocation by serial", "revoke", "--role", "web", "--reason", "superseded",
          env=e)
    # --role filters on the role cert/:serial reports.
    rc, out, err = sigil("certs", "--role", "web", env=e)
    check(rc == 0 and "kc.example.com" in out, "certs --role web: %d %r %r" % (rc, out, err))
    rc, out, err = sigil("certs", "--role", "leased", env=e)
    check(rc == 0 and "kc.example.com" not in out, "certs --role leased: %d %r %r" % (rc, out, err))


def test_generic_read_write_list_delete_and_roles():
    s = srv()
    e = env_for(s)
    out = ok("write", "pki/roles/tmp", "allowed_domains=tmp.example.com", "allow_subdomains=true", "max_ttl=1h",
             env=e)
    check("Success" in out or "allowed_domains" in out, "write output: %r" % out)
    j = json.loads(ok("read", "pki/roles/tmp", "-format=json", env=e))
    eq(j["data"]["allowed_domains"], ["tmp.example.com"], "read back")
    eq(j["data"]["max_ttl"], 3600, "max_ttl")
    out = ok("read", "pki/roles/tmp", env=e)
    check(re.search(r"^allow_subdomains\s+true$", out, re.M), "table row: %r" % out)
    out = ok("list", "pki/roles", env=e)
    check(out.startswith("Keys\n----\n") and "\ntmp\n" in out and "\nweb\n" in out, "list: %r" % out)
    out = ok("role", "list", env=e)
    check("tmp" in out.split(), "role list: %r" % out)
    ok("role", "write", "tmp2", "allowed_domains=a.example.com,b.example.com", "allow_subdomains=true", env=e)
    j = json.loads(ok("role", "read", "tmp2", "-format=json", env=e))
    eq(sorted(j["data"]["allowed_domains"]), ["a.example.com", "b.example.com"], "role write list field")
    ok("role", "delete", "tmp2", env=e)
    out = ok("delete", "pki/roles/tmp", env=e)
    check("Success" in out, out)
    fails(1, "Error: 404", "read", "pki/roles/tmp", env=e)
    # k=@file and a repeated key
    pol = H.tmpfile('path "secret/*" { capabilities = ["read"] }', "pol.hcl")
    ok("write", "sys/policies/acl/clitest", "policy=@" + pol, env=e)
    j = json.loads(ok("read", "sys/policies/acl/clitest", "-format=json", env=e))
    check("secret/*" in j["data"]["policy"], "policy from @file")
    fails(2, "no K=V fields", "write", "pki/roles/x", env=e)


def test_issuer_commands_root_intermediate_set_signed():
    s = srv()
    e = env_for(s)
    d = H.tmpdir("issuers")
    ok("write", "sys/mounts/cliroot", "type=pki", env=e)
    ok("write", "sys/mounts/cliint", "type=pki", env=e)
    ok("write", "sys/mounts/cliroot/tune", "max_lease_ttl=87600h", env=e)
    root = os.path.join(d, "root.pem")
    out = ok("issuer", "generate-root", "--mount", "cliroot", "--cn", "CLI Root", "--ttl", "8760h",
             "--name", "cli-root", "key_type=ec", "key_bits=256", "--out", root, env=e)
    check("certificate written to " + root in out, out)
    eq(H.cert_cn(H.load_cert(open(root).read())), "CLI Root", "root CN")
    csr = os.path.join(d, "int.csr")
    ok("issuer", "generate-intermediate", "--mount", "cliint", "--cn", "CLI Intermediate", "key_type=ec",
       "--out", csr, env=e)
    check("CERTIFICATE REQUEST" in open(csr).read(), "CSR written")
    inter = os.path.join(d, "int.crt")
    ok("issuer", "sign-intermediate", "--mount", "cliroot", "--csr", csr, "--ttl", "4380h", "--issuer",
       "cli-root", "--out", inter, env=e)
    pems = H.pem_certs(open(inter).read())
    check(len(pems) >= 2, "intermediate and its issuer written: %d" % len(pems))
    out = ok("issuer", "set-signed", "--mount", "cliint", "--cert", inter, env=e)
    check("imported_issuers" in out, out)
    out = ok("issuer", "list", "--mount", "cliint", env=e)
    check(out.startswith("ID"), out)
    ids = [l.split()[0] for l in out.splitlines()[1:] if l.strip()]
    check(ids, "issuer ids: %r" % out)
    j = json.loads(ok("issuer", "read", ids[0], "--mount", "cliint", "-format=json", env=e))
    check("CLI" in j["data"]["certificate"] or j["data"]["certificate"].startswith("-----BEGIN"), "issuer read")
    out = ok("issuer", "list", "--mount", "cliroot", env=e)
    check("cli-root" in out, "root issuer name listed: %r" % out)


def test_tidy():
    s = srv()
    out = ok("tidy", "safety_buffer=1s", env=env_for(s))
    check("Success" in out or "tidy" in out.lower() or "WARNING" in out, "tidy output: %r" % out)


def test_oidc_login_via_localhost_callback():
    import jwtfake as F
    s = srv()
    idp = F.FakeIdP(H.tmpdir("idp"))
    s.ok("POST", "sys/auth/oidc", {"type": "oidc"}, statuses=(200, 204))
    s.ok("POST", "auth/oidc/config", {"oidc_discovery_url": idp.issuer, "oidc_discovery_ca_pem": idp.ca_pem,
                                      "oidc_client_id": idp.client_id, "oidc_client_secret": idp.client_secret,
                                      "default_role": "people"}, statuses=(200, 204))
    port = H.free_port()
    redirect = "http://localhost:%d/oidc/callback" % port
    s.ok("POST", "auth/oidc/role/people", {"user_claim": "sub", "allowed_redirect_uris": [redirect],
                                           "role_type": "oidc", "bound_audiences": [idp.client_id],
                                           "token_policies": ["default"]}, statuses=(200, 204))
    home = H.tmpdir("home-oidc")
    e = env_for(s, token=False, home=home)
    p = subprocess.Popen([H.SIGIL_BIN, "login", "-method=oidc", "role=people", "port=%d" % port,
                          "skip_browser=true"], env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    H._children.append(p)
    # The auth URL appears on stderr; the "browser" here is the fake IdP's authorize endpoint.
    url, buf, deadline = None, b"", time.time() + 30
    while time.time() < deadline and url is None:
        line = p.stderr.readline()
        if not line:
            break
        buf += line
        m = re.search(rb"(https://\S+)", line)
        if m:
            url = m.group(1).decode()
    check(url is not None, "auth URL printed: %r" % buf)
    location = idp_authorize(idp, url)
    check(location.startswith(redirect + "?"), "IdP redirects to the CLI's listener: %r" % location)
    with urllib.request.urlopen(location, timeout=30) as r:
        page = r.read().decode()
    check("Signed in" in page, "callback page: %r" % page)
    out, err = p.communicate(timeout=60)
    check(p.returncode == 0, "oidc login exit %d: %r" % (p.returncode, (buf + err).decode()[-800:]))
    tok = open(os.path.join(home, ".sigil-token")).read()
    check(tok, "OIDC token stored")
    j = json.loads(ok("read", "auth/token/lookup-self", "-format=json", env=e))
    check(j["data"]["path"].startswith("auth/oidc/"), "token from the oidc mount: %r" % j["data"].get("path"))


def idp_authorize(idp, url, user="alice"):
    """The user's browser at the fake IdP: follows the auth URL, returns the redirect Location."""
    r = H.curl(url + "&login_hint=" + user, cacert=H.tmpfile(idp.ca_pem))
    eq(r.status, 302, "provider redirect (%r)" % (r.body[:200],))
    return r.headers.get("location") or r.headers.get("Location")


def test_tls_cacert_and_cert_login():
    s = H.config_server("cli-tls", tls=True)
    H.enable_pki(s, "pki", "87600h")
    root = s.data("POST", "pki/root/generate/internal", {"common_name": "CLI mTLS Root", "key_type": "ec",
                                                         "ttl": "8760h"})["certificate"]
    s.ok("POST", "pki/roles/client", {"allowed_domains": "example.com", "allow_subdomains": True,
                                      "key_type": "ec", "ttl": "1h", "client_flag": True}, statuses=(200, 204))
    s.ok("POST", "sys/auth/cert", {"type": "cert"}, statuses=(200, 204))
    s.ok("POST", "auth/cert/certs/web", {"certificate": root, "allowed_common_names": "*.example.com",
                                         "token_ttl": "30m", "display_name": "workloads"}, statuses=(200, 204))
    # The server's certificate is self-signed: without its CA the handshake fails, clearly.
    _, err = fails(1, "cannot reach https://127.0.0.1:%d" % s.port, "status", env=env_for(s, token=False))
    check("certificate" in err.lower() or "ssl" in err.lower(), "TLS reason given: %r" % err)
    ok("status", env=env_for(s, token=False, SIGIL_CACERT=s.cacert))
    ok("status", env=env_for(s, token=False, VAULT_CACERT=s.cacert))
    home = H.tmpdir("home-cert")
    d = H.tmpdir("mtls")
    prefix = os.path.join(d, "app")
    ok("issue", "client", "--cn", "app.example.com", "--out", prefix, env=env_for(s, SIGIL_CACERT=s.cacert))
    e = env_for(s, token=False, home=home, SIGIL_CACERT=s.cacert)
    out = ok("login", "-method=cert", "client_cert=" + prefix + ".crt", "client_key=" + prefix + ".key",
             "name=web", env=e)
    check("Success!" in out, out)
    j = json.loads(ok("read", "auth/token/lookup-self", "-format=json", env=e))
    eq(j["data"]["display_name"], "cert-workloads", "token from the cert login")
    # The same through SIGIL_CLIENT_CERT/SIGIL_CLIENT_KEY; no certificate at all is a usage error.
    e2 = env_for(s, token=False, home=H.tmpdir("home-cert2"), SIGIL_CACERT=s.cacert,
                 SIGIL_CLIENT_CERT=prefix + ".crt", SIGIL_CLIENT_KEY=prefix + ".key")
    ok("login", "-method=cert", "name=web", env=e2)
    fails(2, "cert login needs client_cert", "login", "-method=cert", env=e)
    s.stop()


def test_completion_and_man_page():
    e = env_for()
    script = ok("completion", "bash", env=e)
    path = H.tmpfile(script, "sigil.bash", 0o644)
    p = subprocess.run(["bash", "-n", path], stderr=subprocess.PIPE)
    eq(p.returncode, 0, "bash -n: %r" % p.stderr)

    def complete(*words):
        line = " ".join(words)
        prog = ('source %s; COMP_WORDS=(%s); COMP_CWORD=%d; _sigil; echo "${COMPREPLY[@]}"'
                % (path, line, len(words) - 1))
        return subprocess.run(["bash", "-c", prog], stdout=subprocess.PIPE).stdout.decode().split()

    eq(sorted(complete("sigil", "iss")), ["issue", "issuer"], "first word")
    eq(sorted(complete("sigil", "issuer", "gen")), ["generate-intermediate", "generate-root"], "subcommand")
    check("--cn" in complete("sigil", "issue", "--c"), "issue flags")
    check("--csr" in complete("sigil", "issuer", "sign-intermediate", "--cs"), "subcommand flags")
    man = ok("man", env=e)
    check(man.startswith(".TH SIGIL 1"), "roff header")
    for n in ("issue", "issuer generate\\-root", "certs", "login", "SIGIL_ADDR", "EXIT STATUS"):
        check(n in man, "man page mentions %s" % n)
    committed = os.path.join(H.REPO, "docs", "sigil.1")
    eq(open(committed).read(), man, "docs/sigil.1 is `sigil man` (regenerate it)")


if __name__ == "__main__":
    H.main(globals())
