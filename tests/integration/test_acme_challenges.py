#!/usr/bin/python3
"""ACME dns-01, tls-alpn-01, http-01 through the configured resolver, and
CAA, against the real server with real peers: a bind9 `named` on a random
loopback port is authoritative for the zones "test" and
"delegated.example" and accepts RFC 2136 updates signed with a TSIG key;
challenge records are published with `nsupdate`, as cert-manager's RFC2136
solver does. config/acme dns_resolver points Sigil at that named, so every
lookup (TXT, CNAME, A/AAAA for http-01 and tls-alpn-01, CAA with its climb
up to "test") is answered by it. python3-acme obtains the certificates;
each is checked with `openssl verify` against Sigil's chain."""

import base64
import hashlib
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import datetime

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check, eq  # noqa: E402

import josepy as jose  # noqa: E402
from acme import challenges, client, crypto_util, messages  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: E402
from cryptography.hazmat.primitives.serialization import Encoding  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

MOUNT = "chalpki"
ROLE = "dns"
CAA_ID = "sigil.ca.example"
TSIG_NAME = "sigil-test-key"
state = {}


# ---------------------------------------------------------------- named


def named():
    """A named authoritative for "test" and "delegated.example" (started once)."""
    if "named" in state:
        return state["named"]
    d = H.tmpdir("named")
    port = H.free_port()
    secret = base64.b64encode(os.urandom(32)).decode()
    soa = "@ 60 IN SOA ns.test. admin.test. 1 3600 600 86400 60\n@ 60 IN NS ns.test.\n"
    with open(os.path.join(d, "test.zone"), "w") as f:
        f.write("$TTL 60\n" + soa + "ns 60 IN A 127.0.0.1\n")
    with open(os.path.join(d, "delegated.zone"), "w") as f:
        f.write("$TTL 60\n" + soa)
    conf = os.path.join(d, "named.conf")
    zones = ""
    for zone, fname in (("test", "test.zone"), ("delegated.example", "delegated.zone")):
        zones += ('zone "%s" { type primary; file "%s/%s"; allow-update { key "%s"; }; };\n'
                  % (zone, d, fname, TSIG_NAME))
    with open(conf, "w") as f:
        f.write("""options {
  directory "%(d)s";
  pid-file "%(d)s/named.pid";
  session-keyfile "%(d)s/session.key";
  managed-keys-directory "%(d)s";
  listen-on port %(port)d { 127.0.0.1; };
  listen-on-v6 { none; };
  recursion no;
  allow-query { any; };
  dnssec-validation no;
  notify no;
};
controls { };
key "%(key)s" { algorithm hmac-sha256; secret "%(secret)s"; };
%(zones)s""" % {"d": d, "port": port, "key": TSIG_NAME, "secret": secret, "zones": zones})
    log = open(os.path.join(d, "named.log"), "wb")
    proc = subprocess.Popen(["named", "-g", "-n", "1", "-c", conf], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()
    H._children.append(proc)  # killed by the harness's cleanup if a test dies first
    state["named"] = {"proc": proc, "port": port, "secret": secret, "dir": d}
    deadline = time.time() + 30
    while time.time() < deadline:
        check(proc.poll() is None, "named exited: %s" % _named_log())
        r = subprocess.run(["dig", "@127.0.0.1", "-p", str(port), "test", "SOA", "+short", "+time=1", "+tries=1"],
                           capture_output=True, text=True)
        if "ns.test." in r.stdout:
            return state["named"]
        time.sleep(0.2)
    raise H.TestFailure("named not answering: %s" % _named_log())


def _named_log():
    d = state.get("named", {}).get("dir")
    try:
        with open(os.path.join(d, "named.log")) as f:
            return f.read()[-1500:]
    except (OSError, TypeError):
        return "(no log)"


def nsupdate(*lines, zone="test"):
    """RFC 2136 update signed with the TSIG key (what cert-manager's RFC2136 solver sends)."""
    n = named()
    script = "server 127.0.0.1 %d\nzone %s\n%s\nsend\n" % (n["port"], zone, "\n".join(lines))
    r = subprocess.run(["nsupdate", "-y", "hmac-sha256:%s:%s" % (TSIG_NAME, n["secret"])], input=script,
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, "nsupdate failed: %s %s" % (r.stdout, r.stderr))


def dig(name, rtype):
    r = subprocess.run(["dig", "@127.0.0.1", "-p", str(named()["port"]), name, rtype, "+short"],
                       capture_output=True, text=True)
    return r.stdout.split()


# ---------------------------------------------------------------- challenge peers


class TlsAlpnServer:
    """Answers TLS handshakes with ALPN acme-tls/1 and the certificate made for the SNI name."""

    def __init__(self):
        self.contexts = {}   # SNI name -> SSLContext
        self.snis = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.base = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.base.set_alpn_protocols(["acme-tls/1"])
        self.base.sni_callback = self._sni
        threading.Thread(target=self._serve, daemon=True).start()

    def _sni(self, sslsock, name, ctx):
        self.snis.append(name)
        if name in self.contexts:
            sslsock.context = self.contexts[name]
        return None

    def add(self, name, key_authz, san=None, critical=True):
        """A self-signed certificate (RFC 8737 3) for the SNI name, made with python3-cryptography."""
        key = ec.generate_private_key(ec.SECP256R1())
        digest = hashlib.sha256(key_authz.encode()).digest()
        now = datetime.datetime.now(datetime.timezone.utc)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "acme-tls-alpn-01")])
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName([san or x509.DNSName(name)]), critical=False)
                # id-pe-acmeIdentifier: the DER OCTET STRING of SHA-256(key authorization).
                .add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31"),
                                                          b"\x04\x20" + digest), critical=critical)
                .sign(key, hashes.SHA256()))
        d = H.tmpdir("alpn")
        cp, kp = os.path.join(d, "c.pem"), os.path.join(d, "k.pem")
        with open(cp, "wb") as f:
            f.write(cert.public_bytes(Encoding.PEM))
        with open(kp, "wb") as f:
            f.write(key.private_bytes(Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.set_alpn_protocols(["acme-tls/1"])
        ctx.load_cert_chain(cp, kp)
        self.contexts[name] = ctx
        if len(self.contexts) == 1:
            self.base.load_cert_chain(cp, kp)

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                c.settimeout(5)
                s = self.base.wrap_socket(c, server_side=True)
                s.close()
            except (OSError, ssl.SSLError):
                c.close()


def tls_server():
    if "tls" not in state:
        state["tls"] = TlsAlpnServer()
    return state["tls"]


# ---------------------------------------------------------------- Sigil


def srv():
    s = H.dev_server("chal")
    if not state.get("setup"):
        n = named()
        nsupdate("update add web.acme.test 60 A 127.0.0.1",
                 "update add alpn.acme.test 60 A 127.0.0.1",
                 "update add caa-other.acme.test 60 CAA 0 issue \"other-ca.example\"",
                 "update add caa-ours.acme.test 60 CAA 0 issue \"%s\"" % CAA_ID,
                 "update add w.acme.test 60 CAA 0 issue \"%s\"" % CAA_ID,
                 "update add w.acme.test 60 CAA 0 issuewild \"other-ca.example\"")
        state["root"], state["inter"] = H.acme_mount(
            s, MOUNT, ROLE, "acme.test", dns_resolver="127.0.0.1:%d" % n["port"], http01_port=H.http01_port(),
            tls_alpn01_port=tls_server().port, caa_identities=[CAA_ID])
        state["setup"] = True
    return s


def new_client():
    key = jose.JWKRSA(key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    net = client.ClientNetwork(key, user_agent="sigil-challenges-test", verify_ssl=False)
    url = srv().url + "/v1/" + MOUNT + "/roles/%s/acme/directory" % ROLE
    cl = client.ClientV2(client.ClientV2.get_directory(url, net), net)
    cl.new_account(messages.NewRegistration.from_data(terms_of_service_agreed=True))
    return cl


def account():
    if "client" not in state:
        state["client"] = new_client()
    return state["client"]


def order(names):
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return account().new_order(crypto_util.make_csr(pem, names))


def pick(authz, cls):
    found = [c for c in authz.body.challenges if isinstance(c.chall, cls)]
    check(found, "no %s challenge offered for %s" % (cls.typ, authz.body.identifier.value))
    return found[0]


def publish_dns01(orderr, wrong=False):
    """TXT records for every authorization (two values at one name for a wildcard and its base)."""
    cl = account()
    lines, answers = [], []
    for authz in orderr.authorizations:
        ch = pick(authz, challenges.DNS01)
        value = "not-the-digest" if wrong else ch.validation(cl.net.key)
        lines.append('update add %s 60 TXT "%s"' % (ch.validation_domain_name(authz.body.identifier.value), value))
        answers.append((authz, ch))
    nsupdate(*lines)
    return answers


def finalize(orderr):
    return account().poll_and_finalize(orderr, datetime.datetime.now() + datetime.timedelta(seconds=60))


def verify_chain(fullchain):
    certs = H.pem_certs(fullchain if isinstance(fullchain, str) else fullchain.decode())
    d = H.tmpdir("verify")
    paths = {}
    for name, pem in (("root", state["root"]), ("leaf", H.der_to_pem(certs[0])),
                      ("chain", "".join(H.der_to_pem(c) for c in certs[1:]))):
        paths[name] = os.path.join(d, name + ".pem")
        with open(paths[name], "w") as f:
            f.write(pem if pem.endswith("\n") else pem + "\n")
    args = ["openssl", "verify", "-CAfile", paths["root"]]
    if len(certs) > 1:
        args += ["-untrusted", paths["chain"]]
    r = subprocess.run(args + [paths["leaf"]], capture_output=True, text=True)
    check(r.returncode == 0 and "OK" in r.stdout, "openssl verify: %s %s" % (r.stdout, r.stderr))
    return x509.load_der_x509_certificate(certs[0])


def sans(cert):
    return sorted(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                  .get_values_for_type(x509.DNSName))


def problem_type(body):
    err = body.error
    return err.typ if err is not None else None


# ---------------------------------------------------------------- tests


def test_directory_and_challenges_offered():
    s = srv()
    d = s.ok("GET", MOUNT + "/roles/%s/acme/directory" % ROLE).json()
    eq(d["meta"].get("caaIdentities"), [CAA_ID], "meta.caaIdentities")
    cfg = s.data("GET", MOUNT + "/config/acme")
    eq((cfg["tls_alpn01_port"], cfg["caa_identities"]), (tls_server().port, [CAA_ID]), "config/acme read back")
    r = s.req("POST", MOUNT + "/config/acme", {"dns_resolver": "ns.example:53"})
    eq(r.status, 400, "a resolver that is not an address")
    orderr = order(["plain.acme.test", "*.wild.acme.test"])
    kinds = {}
    for authz in orderr.authorizations:
        kinds[(authz.body.identifier.value, bool(authz.body.wildcard))] = sorted(
            c.chall.typ for c in authz.body.challenges)
    eq(kinds, {("plain.acme.test", False): ["dns-01", "http-01", "tls-alpn-01"],
               ("wild.acme.test", True): ["dns-01"]}, "challenges per authorization")


def test_config_refuses_bad_validation_fields():
    s = srv()
    before = s.data("GET", MOUNT + "/config/acme")
    bad = [{"dns_resolver": "ns.example:53"}, {"dns_resolver": "127.0.0.1:99999"}, {"dns_resolver": "[::1"},
           {"tls_alpn01_port": 0}, {"tls_alpn01_port": 70000}, {"tls_alpn01_port": "x"},
           {"http01_port": -1}, {"caa_identities": ["ca.example; accounturi=x"]},
           {"caa_identities": ["ca%d.example" % i for i in range(17)]}]
    for body in bad:
        r = s.req("POST", MOUNT + "/config/acme", body)
        H.expect_error(r, 400, "config/acme %r" % body)
    eq(s.data("GET", MOUNT + "/config/acme"), before, "a refused write changes nothing")


def test_dns01_name():
    orderr = order(["one.acme.test"])
    for authz, ch in publish_dns01(orderr):
        cr = account().answer_challenge(ch, ch.response(account().net.key))
        eq(cr.body.status, messages.STATUS_VALID, "dns-01 validated in the POST")
    cert = verify_chain(finalize(orderr).fullchain_pem)
    eq(sans(cert), ["one.acme.test"], "SANs")


def test_dns01_wildcard_and_name():
    orderr = order(["*.w.acme.test", "w.acme.test"])
    eq(len(orderr.authorizations), 2, "two authorizations")
    for authz, ch in publish_dns01(orderr):
        eq(authz.body.identifier.value, "w.acme.test", "authz identifier without *.")
        account().answer_challenge(ch, ch.response(account().net.key))
    # CAA at w.acme.test: issue names us, issuewild names another CA, so the wildcard fails.
    types = sorted(problem_type(pick(account().poll(a)[0], challenges.DNS01)) or "valid"
                   for a in orderr.authorizations)
    eq(types, ["urn:ietf:params:acme:error:caa", "valid"], "issuewild decides for the wildcard only")
    nsupdate('update delete w.acme.test CAA', 'update add w.acme.test 60 CAA 0 issuewild "%s"' % CAA_ID)
    orderr = order(["*.w.acme.test", "w.acme.test"])
    for authz, ch in publish_dns01(orderr):
        account().answer_challenge(ch, ch.response(account().net.key))
    cert = verify_chain(finalize(orderr).fullchain_pem)
    eq(sans(cert), ["*.w.acme.test", "w.acme.test"], "wildcard certificate SANs")


def test_dns01_cname_delegated():
    """_acme-challenge CNAMEd into another zone (cert-manager's cnameStrategy: Follow)."""
    orderr = order(["cn.acme.test"])
    authz = orderr.authorizations[0]
    ch = pick(authz, challenges.DNS01)
    nsupdate("update add _acme-challenge.cn.acme.test 60 CNAME cn-target.delegated.example.")
    nsupdate('update add cn-target.delegated.example 60 TXT "%s"' % ch.validation(account().net.key),
             zone="delegated.example")
    eq(dig("_acme-challenge.cn.acme.test", "TXT"), ["cn-target.delegated.example."], "named answers the alias only")
    cr = account().answer_challenge(ch, ch.response(account().net.key))
    eq(cr.body.status, messages.STATUS_VALID, "validated through the CNAME")
    verify_chain(finalize(orderr).fullchain_pem)


def test_dns01_wrong_txt_fails():
    orderr = order(["wrong.acme.test"])
    (authz, ch), = publish_dns01(orderr, wrong=True)
    cr = account().answer_challenge(ch, ch.response(account().net.key))
    eq(cr.body.status, messages.STATUS_INVALID, "wrong TXT value")
    eq(problem_type(cr.body), "urn:ietf:params:acme:error:incorrectResponse", "error type")
    eq(account().poll(authz)[0].body.status, messages.STATUS_INVALID, "authz invalid")


def test_tls_alpn01():
    orderr = order(["alpn.acme.test"])
    authz = orderr.authorizations[0]
    ch = pick(authz, challenges.TLSALPN01)
    ka = ch.chall.key_authorization(account().net.key)
    tls_server().add("alpn.acme.test", ka)
    cr = account().answer_challenge(ch, ch.response(account().net.key))
    eq(cr.body.status, messages.STATUS_VALID, "tls-alpn-01 (%s)" % (cr.body.error,))
    check("alpn.acme.test" in tls_server().snis, "SNI was the identifier: %r" % tls_server().snis)
    verify_chain(finalize(orderr).fullchain_pem)
    # A certificate whose acmeIdentifier is not critical fails (RFC 8737 3).
    orderr = order(["alpn2.acme.test"])
    nsupdate("update add alpn2.acme.test 60 A 127.0.0.1")
    ch = pick(orderr.authorizations[0], challenges.TLSALPN01)
    tls_server().add("alpn2.acme.test", ch.chall.key_authorization(account().net.key), critical=False)
    cr = account().answer_challenge(ch, ch.response(account().net.key))
    eq((cr.body.status, problem_type(cr.body)),
       (messages.STATUS_INVALID, "urn:ietf:params:acme:error:incorrectResponse"), "non-critical acmeIdentifier")


def test_http01_through_configured_resolver():
    """web.acme.test exists only in the test named: the http-01 fetch must use it."""
    orderr = order(["web.acme.test"])
    ch = pick(orderr.authorizations[0], challenges.HTTP01)
    response, validation = ch.response_and_validation(account().net.key)
    H.Http01.tokens[ch.chall.encode("token")] = validation
    cr = account().answer_challenge(ch, response)
    eq(cr.body.status, messages.STATUS_VALID, "http-01 (%s)" % (cr.body.error,))
    check("web.acme.test:%d" % H.http01_port() in H.Http01.hosts, "Host header: %r" % H.Http01.hosts)
    verify_chain(finalize(orderr).fullchain_pem)
    # A redirect to another name that only the test named knows: each hop is resolved through it.
    nsupdate("update add web2.acme.test 60 A 127.0.0.1", "update add web3.acme.test 60 A 127.0.0.1")
    H.Http01.redirects["web2.acme.test:%d" % H.http01_port()] = "web3.acme.test:%d" % H.http01_port()
    orderr = order(["web2.acme.test"])
    ch = pick(orderr.authorizations[0], challenges.HTTP01)
    response, validation = ch.response_and_validation(account().net.key)
    H.Http01.tokens[ch.chall.encode("token")] = validation
    cr = account().answer_challenge(ch, response)
    eq(cr.body.status, messages.STATUS_VALID, "http-01 through a redirect (%s)" % (cr.body.error,))
    check("web3.acme.test:%d" % H.http01_port() in H.Http01.hosts, "redirect followed: %r" % H.Http01.hosts)


def test_caa():
    # Another CA named at the name itself: refused with the caa problem type.
    orderr = order(["caa-other.acme.test"])
    (authz, ch), = publish_dns01(orderr)
    cr = account().answer_challenge(ch, ch.response(account().net.key))
    eq((cr.body.status, problem_type(cr.body)), (messages.STATUS_INVALID, "urn:ietf:params:acme:error:caa"),
       "CAA naming another CA")
    # Ours named, found by climbing from a child name.
    orderr = order(["sub.caa-ours.acme.test"])
    (authz, ch), = publish_dns01(orderr)
    cr = account().answer_challenge(ch, ch.response(account().net.key))
    eq(cr.body.status, messages.STATUS_VALID, "CAA naming us, one label up (%s)" % (cr.body.error,))
    verify_chain(finalize(orderr).fullchain_pem)


def test_named_stopped():
    n = state.get("named")
    if n is None:
        return
    n["proc"].terminate()
    try:
        n["proc"].wait(timeout=15)
    except subprocess.TimeoutExpired:
        n["proc"].kill()
        n["proc"].wait(timeout=5)
    # With the resolver gone a dns-01 attempt is a dns problem, not a crash.
    orderr = order(["gone.acme.test"])
    ch = pick(orderr.authorizations[0], challenges.DNS01)
    cr = account().answer_challenge(ch, ch.response(account().net.key))
    check(cr.body.status in (messages.STATUS_PROCESSING, messages.STATUS_INVALID), "status %s" % cr.body.status)
    deadline = time.time() + 60
    authz = orderr.authorizations[0]
    while time.time() < deadline:
        authz, _ = account().poll(authz)
        if authz.body.status != messages.STATUS_PENDING:
            break
        time.sleep(1)
    eq(authz.body.status, messages.STATUS_INVALID, "authz after the retries")
    eq(problem_type(pick(authz, challenges.DNS01)), "urn:ietf:params:acme:error:dns", "error type")
    srv().assert_healthy("after DNS failures")


if __name__ == "__main__":
    H.main(globals())
