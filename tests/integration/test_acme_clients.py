#!/usr/bin/python3
"""Real ACME clients from Debian against the real server on loopback: lego
(http-01 with External Account Binding, renew, revoke), uacme with a hook
script (with and without EAB, revoke), dehydrated with a hook script (EAB),
and a Go program on golang.org/x/crypto/acme (the library cert-manager's
client is forked from) replaying cert-manager's exact request sequence
(tests/integration/acme_go). Every certificate must pass `openssl verify`
against Sigil's root with the returned chain, and names outside the role are
refused.

Identifiers are under acme.localhost, which the server's libcurl resolves to
loopback by itself (RFC 6761 6.3); config/acme http01_port is pointed at
the loopback port each client (or its web server) listens on.

lego also solves tls-alpn-01 (its own TLS listener on config/acme
tls_alpn01_port) and dns-01 through its rfc2136 provider against a bind9
started by the test (TSIG-signed updates; the server's dns_resolver points
at it, and it answers 127.0.0.1 for every name under acme.localhost).

Not covered: renewal with ARI (lego 4.9.1 has no ARI option; `lego renew
--help` lists none)."""

import base64
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check, eq  # noqa: E402

from cryptography import x509  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MOUNT = "acmecli"
ROLE = "web"
DOMAIN = "acme.localhost"
DENIED = "www.evil.example"
CLIENT_TIMEOUT = 150
state = {}


# ---------------------------------------------------------------- fixtures


def srv():
    s = H.dev_server("acmeclients")
    if not state.get("setup"):
        state["root"], state["inter"] = H.acme_mount(s, MOUNT, ROLE, DOMAIN)
        state["setup"] = True
    return s


def directory_url(role=ROLE):
    return srv().url + "/v1/%s/roles/%s/acme/directory" % (MOUNT, role)


def set_acme(**cfg):
    srv().ok("POST", MOUNT + "/config/acme", cfg)


def new_eab():
    return srv().data("POST", MOUNT + "/roles/%s/acme/new-eab" % ROLE)


def run(args, what, env=None, timeout=CLIENT_TIMEOUT, cwd=None):
    """Runs a client; returns (rc, combined output)."""
    e = dict(os.environ)
    e.update(env or {})
    try:
        p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=e, timeout=timeout,
                           cwd=cwd, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as ex:
        raise H.TestFailure("%s: no answer in %ds: %s" % (what, timeout, (ex.output or b"")[-1500:]))
    return p.returncode, p.stdout.decode("utf-8", "replace")


def run_ok(args, what, **kw):
    rc, out = run(args, what, **kw)
    if rc != 0:
        H.log("---- %s output ----\n%s\n----" % (what, out[-6000:]))
    check(rc == 0, "%s exited %d: ...%s" % (what, rc, out[-450:]))
    return out


def need(exe):
    path = shutil.which(exe)
    check(path is not None, "%s not installed (make deps)" % exe)
    return path


def wait_port(port, proc, what, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        check(proc.poll() is None, "%s exited with %s" % (what, proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise H.TestFailure("%s not listening on %d" % (what, port))


def web_root():
    """A loopback web server (python3 -m http.server) over a directory whose
    .well-known/acme-challenge the hook scripts write into; the server's
    http01_port points at it. Returns (document root, challenge dir, port)."""
    if "web" not in state:
        root = H.tmpdir("webroot")
        chal = os.path.join(root, ".well-known", "acme-challenge")
        os.makedirs(chal)
        for attempt in range(3):
            port = H.free_port()
            p = subprocess.Popen(["/usr/bin/python3", "-m", "http.server", str(port), "--bind", "127.0.0.1",
                                  "--directory", root], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
            H._children.append(p)
            try:
                wait_port(port, p, "http.server")
                break
            except H.TestFailure:
                if attempt == 2:
                    raise
        state["web"] = (root, chal, port)
    return state["web"]


def verify_chain(leaf_pem, chain_pem):
    """openssl verify of the leaf against Sigil's root, the rest untrusted."""
    d = H.tmpdir("verify")
    paths = {}
    for name, pem in (("root", state["root"]), ("leaf", leaf_pem), ("chain", chain_pem)):
        paths[name] = os.path.join(d, name + ".pem")
        with open(paths[name], "w") as f:
            f.write(pem if pem.endswith("\n") else pem + "\n")
    args = ["openssl", "verify", "-CAfile", paths["root"]]
    if H.pem_certs(chain_pem):
        args += ["-untrusted", paths["chain"]]
    r = subprocess.run(args + [paths["leaf"]], capture_output=True, text=True)
    check(r.returncode == 0 and "OK" in r.stdout, "openssl verify: %s %s" % (r.stdout, r.stderr))


def verify_fullchain(text, name):
    """The leaf (first block) is for name, and verifies with the rest of the blocks."""
    ders = H.pem_certs(text)
    check(len(ders) >= 2, "chain of %d certificates, want leaf + intermediate" % len(ders))
    leaf = x509.load_der_x509_certificate(ders[0])
    dns, _, _, _ = H.cert_sans(leaf)
    eq(dns, [name], "leaf DNS SANs")
    verify_chain(H.der_to_pem(ders[0]), "".join(H.der_to_pem(d) for d in ders[1:]))
    return leaf


def revoked(leaf):
    rec = srv().data("GET", MOUNT + "/cert/" + H.colon_serial(leaf))
    return rec.get("revocation_time", 0) > 0


def read(path):
    with open(path) as f:
        return f.read()


def write_script(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o755)


def refused(out):
    """Whether a client's output names the role's refusal of an identifier."""
    return "rejectedIdentifier" in out


# ---------------------------------------------------------------- lego


def lego_args(home, port, *extra):
    return [need("lego"), "--server", directory_url(), "--path", home, "--email", "lego@example.com",
            "--accept-tos", "--key-type", "ec256", "--http", "--http.port", "127.0.0.1:%d" % port] + list(extra)


def test_lego_http01_eab_renew_revoke():
    home = H.tmpdir("lego")
    port = H.free_port()
    name = "lego." + DOMAIN
    set_acme(http01_port=port, eab_policy="new-account-required")
    try:
        # Without EAB: lego reads meta.externalAccountRequired and stops before registering.
        rc, out = run(lego_args(H.tmpdir("lego-noeab"), port, "-d", name, "run"), "lego without EAB")
        check(rc != 0 and "requires External Account Binding" in out, "lego without EAB: rc %d %s" % (rc, out[-800:]))
        eab = new_eab()
        run_ok(lego_args(home, port, "--eab", "--kid", eab["id"], "--hmac", eab["key"], "-d", name, "run"),
               "lego run")
    finally:
        set_acme(eab_policy="not-required")
    crt = os.path.join(home, "certificates", name + ".crt")
    leaf = verify_fullchain(read(crt), name)
    # renew: --days beyond the certificate's lifetime forces it now.
    run_ok(lego_args(home, port, "-d", name, "renew", "--days", "3650", "--no-random-sleep"), "lego renew")
    leaf2 = verify_fullchain(read(crt), name)
    check(leaf2.serial_number != leaf.serial_number, "renew kept the same certificate")
    # revoke (signed with the account key) reaches the store.
    run_ok(lego_args(home, port, "-d", name, "revoke"), "lego revoke")
    check(revoked(leaf2), "lego revoke did not revoke %s" % H.colon_serial(leaf2))
    check(not revoked(leaf), "the first certificate was revoked too")
    # A name outside the role.
    rc, out = run(lego_args(home, port, "-d", DENIED, "run"), "lego outside the role")
    check(rc != 0 and refused(out), "lego for %s: rc %d %s" % (DENIED, rc, out[-800:]))
    srv().assert_healthy("after lego")


# ---------------------------------------------------------------- uacme

UACME_HOOK = """#!/bin/sh
# uacme hook: method type ident token auth. Accept http-01 only: write the
# key authorization where the loopback web server serves it.
set -e
method=$1 type=$2 ident=$3 token=$4 auth=$5
echo "$method $type $ident" >> "%(log)s"
[ "$type" = http-01 ] || exit 1
case "$method" in
begin) printf '%%s' "$auth" > "%(chal)s/$token" ;;
done|failed) rm -f "%(chal)s/$token" ;;
esac
"""


def uacme_setup():
    _, chal, port = web_root()
    d = H.tmpdir("uacme")
    hook = os.path.join(d, "hook.sh")
    log = os.path.join(d, "hook.log")
    write_script(hook, UACME_HOOK % {"log": log, "chal": chal})
    set_acme(http01_port=port)
    return d, hook, log


def uacme(conf, hook, *args, role=ROLE):
    return [need("uacme"), "-v", "-y", "-a", directory_url(role), "-c", conf, "-h", hook, "-t", "EC"] + list(args)


def test_uacme_hook_http01():
    d, hook, log = uacme_setup()
    conf = os.path.join(d, "conf")
    name = "uacme." + DOMAIN
    run_ok(uacme(conf, hook, "new", "uacme@example.com"), "uacme new")
    run_ok(uacme(conf, hook, "issue", name), "uacme issue")
    lines = read(log).split("\n")
    check("begin http-01 " + name in lines and "done http-01 " + name in lines, "hook calls %r" % lines)
    cert = os.path.join(conf, name, "cert.pem")
    leaf = verify_fullchain(read(cert), name)
    rc, out = run(uacme(conf, hook, "issue", DENIED), "uacme outside the role")
    check(rc != 0 and refused(out), "uacme for %s: rc %d %s" % (DENIED, rc, out[-800:]))
    # revoke with the account key.
    run_ok(uacme(conf, hook, "revoke", cert), "uacme revoke")
    check(revoked(leaf), "uacme revoke did not revoke")


def test_uacme_ip_identifier():
    """RFC 8738: uacme orders an "ip" identifier (http-01 fetched from
    127.0.0.1 itself) under a role with require_cn (Vault's default): an
    IP-only order has no common name, and uacme's CSR CN=127.0.0.1 stays an
    IP SAN."""
    d, hook, log = uacme_setup()
    conf = os.path.join(d, "conf")
    run_ok(uacme(conf, hook, "new"), "uacme new")
    run_ok(uacme(conf, hook, "issue", "127.0.0.1"), "uacme issue 127.0.0.1")
    check("begin http-01 127.0.0.1" in read(log).split("\n"), "hook calls %r" % read(log))
    ders = H.pem_certs(read(os.path.join(conf, "127.0.0.1", "cert.pem")))
    leaf = x509.load_der_x509_certificate(ders[0])
    dns, ips, _, _ = H.cert_sans(leaf)
    eq((dns, ips), ([], ["127.0.0.1"]), "IP identifier SANs")
    verify_chain(H.der_to_pem(ders[0]), "".join(H.der_to_pem(x) for x in ders[1:]))


def test_uacme_eab():
    d, hook, _ = uacme_setup()
    conf = os.path.join(d, "conf")
    name = "uacme-eab." + DOMAIN
    set_acme(eab_policy="new-account-required")
    try:
        # uacme reads meta.externalAccountRequired and asks for -e.
        rc, out = run(uacme(conf, hook, "new"), "uacme new without EAB")
        check(rc != 0 and "requires external credentials" in out, "uacme without EAB: rc %d %s" % (rc, out[-800:]))
        shutil.rmtree(conf, ignore_errors=True)
        eab = new_eab()
        run_ok(uacme(conf, hook, "-e", "%s:%s" % (eab["id"], eab["key"]), "new"), "uacme new with EAB")
        run_ok(uacme(conf, hook, "issue", name), "uacme issue (EAB account)")
    finally:
        set_acme(eab_policy="not-required")
    verify_fullchain(read(os.path.join(conf, name, "cert.pem")), name)


# ---------------------------------------------------------------- dehydrated

DEHYDRATED_HOOK = """#!/bin/sh
# dehydrated hook: logs the calls; deploy_challenge checks that dehydrated
# put the key authorization into WELLKNOWN (served by the loopback server).
op=$1
case "$op" in
deploy_challenge)
    echo "deploy_challenge $2" >> "%(log)s"
    [ "$(cat "%(chal)s/$3")" = "$4" ] || { echo "challenge file missing" >&2; exit 1; } ;;
clean_challenge) echo "clean_challenge $2" >> "%(log)s" ;;
deploy_cert) echo "deploy_cert $2 $5" >> "%(log)s" ;;
invalid_challenge) echo "invalid_challenge $2" >> "%(log)s" ;;
esac
exit 0
"""


def dehydrated_setup(eab=None):
    _, chal, port = web_root()
    d = H.tmpdir("dehydrated")
    hook = os.path.join(d, "hook.sh")
    log = os.path.join(d, "hook.log")
    write_script(hook, DEHYDRATED_HOOK % {"log": log, "chal": chal})
    lines = ['BASEDIR="%s"' % d, 'CA="%s"' % directory_url(), 'WELLKNOWN="%s"' % chal,
             'CHALLENGETYPE="http-01"', 'HOOK="%s"' % hook, 'KEY_ALGO=prime256v1', 'KEYSIZE=2048',
             'CONTACT_EMAIL="dehydrated@example.com"']
    if eab:
        lines += ['EAB_KID="%s"' % eab["id"], 'EAB_HMAC_KEY="%s"' % eab["key"]]
    cfg = os.path.join(d, "config")
    with open(cfg, "w") as f:
        f.write("\n".join(lines) + "\n")
    set_acme(http01_port=port)
    return d, cfg, log


def test_dehydrated_hook_http01_eab():
    exe = need("dehydrated")
    set_acme(eab_policy="new-account-required")
    try:
        d, cfg, _ = dehydrated_setup()
        rc, out = run([exe, "--config", cfg, "--register", "--accept-terms"], "dehydrated without EAB")
        # dehydrated reads meta.externalAccountRequired and refuses to register.
        check(rc != 0 and "requires an external account" in out, "dehydrated without EAB: rc %d %s" % (rc, out[-800:]))
        d, cfg, log = dehydrated_setup(new_eab())
        run_ok([exe, "--config", cfg, "--register", "--accept-terms"], "dehydrated --register")
    finally:
        set_acme(eab_policy="not-required")
    name = "dehydrated." + DOMAIN
    run_ok([exe, "--config", cfg, "--cron", "--domain", name], "dehydrated --cron")
    calls = read(log).split("\n")
    for want in ("deploy_challenge " + name, "clean_challenge " + name):
        check(want in calls, "hook calls %r lack %r" % (calls, want))
    check(any(c.startswith("deploy_cert " + name) for c in calls), "no deploy_cert in %r" % calls)
    verify_fullchain(read(os.path.join(d, "certs", name, "fullchain.pem")), name)
    rc, out = run([exe, "--config", cfg, "--cron", "--domain", DENIED], "dehydrated outside the role")
    check(rc != 0 and refused(out), "dehydrated for %s: rc %d %s" % (DENIED, rc, out[-800:]))


# ---------------------------------------------------------------- bind9 + lego dns-01 / tls-alpn-01

TSIG_NAME = "sigil-test."


def bind9():
    """named -g on a random loopback port, primary for DOMAIN: every name
    under it has an A record 127.0.0.1; dynamic updates signed with a TSIG
    key (hmac-sha256) are allowed, for lego's rfc2136 provider. Returns
    (port, TSIG secret)."""
    if "bind" in state:
        return state["bind"]
    named = shutil.which("named") or "/usr/sbin/named"
    check(os.access(named, os.X_OK), "bind9 not installed (make deps)")
    d = H.tmpdir("bind")
    secret = base64.b64encode(os.urandom(32)).decode()
    with open(os.path.join(d, "zone.db"), "w") as f:
        f.write("$TTL 5\n@ IN SOA ns.%(z)s. hostmaster.%(z)s. 1 60 60 600 5\n"
                "@ IN NS ns.%(z)s.\n@ IN A 127.0.0.1\n* IN A 127.0.0.1\n" % {"z": DOMAIN})
    for attempt in range(3):
        port = H.free_port()
        conf = os.path.join(d, "named.conf")
        with open(conf, "w") as f:
            f.write('options { directory "%(d)s"; pid-file "%(d)s/named.pid"; session-keyfile none;\n'
                    '  managed-keys-directory "%(d)s"; listen-on port %(p)d { 127.0.0.1; }; listen-on-v6 { none; };\n'
                    '  recursion no; dnssec-validation no; notify no; allow-query { any; }; querylog yes; };\n'
                    'controls { };\n'
                    'key "%(k)s" { algorithm hmac-sha256; secret "%(s)s"; };\n'
                    'zone "%(z)s" { type primary; file "%(d)s/zone.db"; allow-update { key "%(k)s"; }; };\n'
                    % {"d": d, "p": port, "k": TSIG_NAME, "s": secret, "z": DOMAIN})
        log = open(os.path.join(d, "named.log"), "ab")
        p = subprocess.Popen([named, "-g", "-4", "-c", conf], stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        log.close()
        H._children.append(p)
        deadline = time.time() + 20
        up = False
        while time.time() < deadline and p.poll() is None:
            q = subprocess.run(["dig", "+short", "+time=1", "+tries=1", "-p", str(port), "@127.0.0.1",
                                "probe." + DOMAIN, "A"], capture_output=True, text=True)
            if q.stdout.strip() == "127.0.0.1":
                up = True
                break
            time.sleep(0.2)
        if up:
            state["bind"] = (port, secret, p)
            state["bind_log"] = os.path.join(d, "named.log")  # queries are logged (querylog)
            return state["bind"]
        if p.poll() is None:
            p.kill()
            p.wait(timeout=5)
        if attempt == 2:
            raise H.TestFailure("named did not answer: %s" % read(os.path.join(d, "named.log"))[-1500:])
    raise H.TestFailure("unreachable")


def test_lego_dns01_rfc2136_bind9():
    port, secret, _ = bind9()
    home = H.tmpdir("lego-dns")
    resolver = "127.0.0.1:%d" % port
    env = {"RFC2136_NAMESERVER": resolver, "RFC2136_TSIG_ALGORITHM": "hmac-sha256.",
           "RFC2136_TSIG_KEY": TSIG_NAME, "RFC2136_TSIG_SECRET": secret,
           "RFC2136_PROPAGATION_TIMEOUT": "30", "RFC2136_POLLING_INTERVAL": "1", "RFC2136_TTL": "5",
           # Both names share one TXT owner: lego solves them in sequence, 60 s apart by default.
           "RFC2136_SEQUENCE_INTERVAL": "1"}
    args = [need("lego"), "--server", directory_url(), "--path", home, "--email", "lego@example.com",
            "--accept-tos", "--key-type", "ec256", "--dns", "rfc2136", "--dns.resolvers", resolver,
            # The zone's NS is not reachable on port 53: no authoritative propagation check.
            "--dns.disable-cp"]
    set_acme(dns_resolver=resolver)
    try:
        # A wildcard needs dns-01 (RFC 8555 7.1.3); the base name rides along.
        run_ok(args + ["-d", "*.dns." + DOMAIN, "-d", "dns." + DOMAIN, "run"], "lego dns-01", env=env)
        rc, out = run(args + ["-d", DENIED, "run"], "lego dns-01 outside the role", env=env)
    finally:
        set_acme(dns_resolver="")
    check(rc != 0 and refused(out), "lego dns-01 for %s: rc %d %s" % (DENIED, rc, out[-800:]))
    text = read(os.path.join(home, "certificates", "_.dns." + DOMAIN + ".crt"))
    ders = H.pem_certs(text)
    leaf = x509.load_der_x509_certificate(ders[0])
    eq(sorted(H.cert_sans(leaf)[0]), sorted(["*.dns." + DOMAIN, "dns." + DOMAIN]), "dns-01 SANs")
    verify_chain(H.der_to_pem(ders[0]), "".join(H.der_to_pem(d) for d in ders[1:]))


def test_lego_tls_alpn01():
    port, _, _ = bind9()  # the name resolves to 127.0.0.1 through bind9
    home = H.tmpdir("lego-tls")
    tls_port = H.free_port()
    name = "tls." + DOMAIN
    set_acme(dns_resolver="127.0.0.1:%d" % port, tls_alpn01_port=tls_port)
    try:
        run_ok([need("lego"), "--server", directory_url(), "--path", home, "--email", "lego@example.com",
                "--accept-tos", "--key-type", "rsa2048", "--tls", "--tls.port", "127.0.0.1:%d" % tls_port,
                "-d", name, "run"], "lego tls-alpn-01")
    finally:
        set_acme(dns_resolver="", tls_alpn01_port=443)
    verify_fullchain(read(os.path.join(home, "certificates", name + ".crt")), name)


# ---------------------------------------------------------------- Go (x/crypto/acme), cert-manager's flow


def go_binary():
    """Builds acme_go offline (GOPATH mode over Debian's /usr/share/gocode),
    cached under the build directory by the hash of the source."""
    go = need("go")
    check(os.path.isdir("/usr/share/gocode/src/golang.org/x/crypto/acme"),
          "golang-golang-x-crypto-dev not installed (make deps)")
    src = os.path.join(HERE, "acme_go")
    h = hashlib.sha256()
    for f in sorted(os.listdir(src)):
        if f.endswith(".go"):
            h.update(f.encode() + b"\0" + open(os.path.join(src, f), "rb").read())
    cache = os.path.join(os.path.dirname(H.SIGIL_BIN), "acme_go")
    exe = os.path.join(cache, "acmecm-" + h.hexdigest()[:16])
    if not os.access(exe, os.X_OK):
        os.makedirs(cache, exist_ok=True)
        tmp = exe + ".tmp%d" % os.getpid()
        env = {"GO111MODULE": "off", "GOPATH": "/usr/share/gocode", "GOFLAGS": "", "GOPROXY": "off",
               "GOCACHE": os.path.join(cache, "gocache"), "CGO_ENABLED": "0"}
        run_ok([go, "build", "-o", tmp, "."], "go build acme_go", env=env, cwd=src, timeout=240)
        os.rename(tmp, exe)
    return exe


def acmecm(name, port, out, eab=None, denied=None):
    args = [go_binary(), "-dir", directory_url(), "-name", name, "-port", str(port), "-out", out]
    if eab:
        args += ["-eab-kid", eab["id"], "-eab-key", eab["key"]]
    if denied:
        args += ["-denied", denied]
    return run(args, "acmecm")


def test_go_x_crypto_cert_manager_flow():
    port = H.free_port()
    name = "cm-go." + DOMAIN
    out = os.path.join(H.tmpdir("acmecm"), "chain.pem")
    set_acme(http01_port=port, eab_policy="new-account-required")
    try:
        rc, text = acmecm(name, port, out, eab=new_eab(), denied=DENIED)
    finally:
        set_acme(eab_policy="not-required")
    check(rc == 0, "acmecm exited %d: %s" % (rc, text[-2000:]))
    check("acmecm: ok" in text, "acmecm output %r" % text[-500:])
    verify_fullchain(read(out), name)
    # The program fails on a deviation: without an EAB on an EAB directory it must exit non-zero.
    set_acme(eab_policy="new-account-required")
    try:
        rc, text = acmecm("cm-go2." + DOMAIN, port, out + ".2")
    finally:
        set_acme(eab_policy="not-required")
    check(rc != 0 and "externalAccountRequired" in text, "acmecm without EAB: rc %d %s" % (rc, text[-500:]))
    srv().assert_healthy("after acmecm")


if __name__ == "__main__":
    H.main(globals())
