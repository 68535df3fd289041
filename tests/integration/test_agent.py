#!/usr/bin/python3
"""`sigil agent` against a real server: config refusals, one-shot AppRole login with
secret_id removal writing certificate, key, chain and bundle with their modes and a token
sink; a denied role giving up with a clear message; token-file login; and the sidecar run:
1-minute certificates renewed several times while a TLS workload is reloaded by signal and
keeps serving, the server stopped mid-way and the agent recovering when it returns, every
file always complete (the bundle always a matching key and certificate), the health
endpoint, token renewal, and revocation of the lease on shutdown."""

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check, eq  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
state = {}

AGENT_POLICY = """
path "apki/issue/web" {
  capabilities = ["update"]
}
path "sys/leases/revoke" {
  capabilities = ["update"]
}
path "auth/token/renew-self" {
  capabilities = ["update"]
}
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
"""


def srv():
    s = state.get("srv")
    if s is None or not s.running:
        s = H.Server("dev", name="agent").start()
        root, _ = H.make_ca(s, "apki")
        state["root"] = root
        s.ok("POST", "apki/roles/web", {"allowed_domains": "example.com", "allow_subdomains": True,
                                       "max_ttl": "1h", "generate_lease": True, "key_type": "ec",
                                       "key_bits": 256, "allow_ip_sans": True,
                                       "allowed_uri_sans": "spiffe://example.com/*"}, statuses=(200, 204))
        s.ok("POST", "apki/roles/other", {"allowed_domains": "example.com", "allow_subdomains": True,
                                         "max_ttl": "1h"}, statuses=(200, 204))
        s.ok("POST", "sys/policies/acl/agent", {"policy": AGENT_POLICY}, statuses=(200, 204))
        s.ok("POST", "sys/auth/approle", {"type": "approle"}, statuses=(200, 204))
        # Short renewable tokens: the sidecar test sees renew-self and, past the max, a new login.
        s.ok("POST", "auth/approle/role/agent", {"token_policies": "agent", "token_ttl": "12s",
                                                 "token_max_ttl": "30s"}, statuses=(200, 204))
        state["role_id"] = s.data("GET", "auth/approle/role/agent/role-id")["role_id"]
        state["srv"] = s
    return s


def secret_id():
    return srv().data("POST", "auth/approle/role/agent/secret-id", {})["secret_id"]


def approle_files(d, remove=False):
    rid = os.path.join(d, "role_id")
    sid = os.path.join(d, "secret_id")
    with open(rid, "w") as f:
        f.write(state["role_id"] + "\n")
    with open(sid, "w") as f:
        f.write(secret_id() + "\n")
    os.chmod(sid, 0o600)
    return {"method": "approle", "role_id_file": rid, "secret_id_file": sid,
            "remove_secret_id_file_after_reading": remove}


def write_config(d, cfg):
    path = os.path.join(d, "agent.json")
    with open(path, "w") as f:
        json.dump(cfg, f, indent=1)
    return path


class Agent:
    def __init__(self, d, cfg, args=(), log="agent.log"):
        self.d = d
        self.config = write_config(d, cfg)
        self.log_path = os.path.join(d, log)
        self.proc = None
        self.args = list(args)

    def start(self):
        env = dict(os.environ)
        for k in ("SIGIL_TOKEN", "VAULT_TOKEN", "SIGIL_ADDR", "VAULT_ADDR"):
            env.pop(k, None)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([H.SIGIL_BIN, "agent", "-config", self.config] + self.args,
                                     stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env,
                                     start_new_session=True)
        log.close()
        H._children.append(self.proc)
        return self

    def wait(self, timeout):
        try:
            rc = self.proc.wait(timeout=timeout)
            self.check_sanitizer()
            return rc
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise H.TestFailure("agent still running after %ds: %s" % (timeout, self.tail()))

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        rc = self.wait(30)
        self.check_sanitizer()
        return rc

    def text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def tail(self, n=15):
        return "\n".join(self.text().splitlines()[-n:])

    def events(self):
        out = []
        for line in self.text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def msgs(self, msg):
        return [e for e in self.events() if e.get("msg") == msg]

    def check_sanitizer(self):
        bad = [l for l in self.text().splitlines() if any(m in l for m in H.SANITIZER_MARKERS)]
        check(not bad, "sanitizer finding in the agent: %s" % (bad[:1],))


def mode_of(path):
    return os.stat(path).st_mode & 0o7777


def cert_of(path):
    with open(path) as f:
        return H.load_cert(f.read())


def wait_for(pred, timeout, what, agent=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        if agent is not None and agent.proc.poll() is not None:
            raise H.TestFailure("agent exited (%s) while waiting for %s: %s" % (agent.proc.returncode, what,
                                                                                 agent.tail()))
        time.sleep(0.25)
    raise H.TestFailure("timed out waiting for %s%s" % (what, (": " + agent.tail()) if agent else ""))


def cert_template(d, **kw):
    t = {"name": "web", "mount": "apki", "role": "web", "common_name": "app.example.com",
         "alt_names": ["www.example.com"], "ip_sans": ["127.0.0.1"],
         "uri_sans": ["spiffe://example.com/app"], "ttl": "1m",
         "cert_file": os.path.join(d, "tls.crt"), "key_file": os.path.join(d, "tls.key"),
         "chain_file": os.path.join(d, "chain.pem"), "bundle_file": os.path.join(d, "bundle.pem"),
         "mode": "0640", "key_mode": "0600"}
    t.update(kw)
    return t


# ---------------------------------------------------------------- refusals


def test_usage_and_config_errors():
    d = H.tmpdir("agent-cfg")
    p = subprocess.run([H.SIGIL_BIN, "agent"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    eq(p.returncode, 2, "no -config exit status")
    check(b"-config FILE is required" in p.stderr, "usage message: %r" % p.stderr)
    p = subprocess.run([H.SIGIL_BIN, "agent", "-bogus"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    eq(p.returncode, 2, "unknown flag exit status")
    p = subprocess.run([H.SIGIL_BIN, "agent", "-h"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    eq(p.returncode, 0, "-h exit status")
    check(b"example:" in p.stdout, "help has an example")
    cases = [
        ({"auto_auth": {"method": "approle", "role_id_file": "/x"}, "certificats": []}, "unknown key \"certificats\""),
        ({"auto_auth": {"method": "ldap"}}, "unknown method"),
        ({"auto_auth": {"method": "approle"}}, "role_id_file"),
        ({"auto_auth": {"method": "token_file", "token_file": "/x"},
          "certificates": [{"common_name": "a.example.com", "cert_file": "/x", "key_file": "/y"}]}, "\"role\" is required"),
        ({"auto_auth": {"method": "token_file", "token_file": "/x"},
          "certificates": [{"role": "web", "common_name": "a", "cert_file": "/x", "key_file": "/y",
                            "mode": "rw-r"}]}, "octal mode"),
        ({"auto_auth": {"method": "token_file", "token_file": "/x"},
          "certificates": [{"role": "web", "common_name": "a", "cert_file": "/x", "key_file": "/y",
                            "renew_fraction": 1.5}]}, "renew_fraction"),
        ({"auto_auth": {"method": "token_file", "token_file": "/x"},
          "certificates": [{"role": "web", "common_name": "a", "cert_file": "/x"}]}, "key_file"),
    ]
    for cfg, want in cases:
        path = write_config(d, cfg)
        p = subprocess.run([H.SIGIL_BIN, "agent", "-config", path], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        eq(p.returncode, 1, "exit status for %s" % want)
        check(want.encode() in p.stderr, "message for %r: %r" % (want, p.stderr))
    with open(os.path.join(d, "agent.json"), "w") as f:
        f.write("{not json")
    p = subprocess.run([H.SIGIL_BIN, "agent", "-config", os.path.join(d, "agent.json")],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    eq(p.returncode, 1, "bad JSON exit status")
    check(b"not a JSON object" in p.stderr, "bad JSON message: %r" % p.stderr)


# ---------------------------------------------------------------- one-shot


def test_oneshot_approle_files_and_modes():
    s = srv()
    d = H.tmpdir("agent-once")
    auth = approle_files(d, remove=True)
    auth["sink"] = {"path": os.path.join(d, "token"), "mode": "0600"}
    with open(auth["secret_id_file"]) as f:
        sid = f.read().strip()
    a = Agent(d, {"address": s.url, "auto_auth": auth, "certificates": [cert_template(d)]},
              ["-exit-after-auth"]).start()
    eq(a.wait(60), 0, "one-shot exit status (%s)" % a.tail())
    a.check_sanitizer()
    check(not os.path.exists(auth["secret_id_file"]), "secret_id file removed after reading")
    check(os.path.exists(auth["role_id_file"]), "role_id file kept")
    eq(mode_of(os.path.join(d, "tls.crt")), 0o640, "cert mode")
    eq(mode_of(os.path.join(d, "chain.pem")), 0o640, "chain mode")
    eq(mode_of(os.path.join(d, "tls.key")), 0o600, "key mode")
    eq(mode_of(os.path.join(d, "bundle.pem")), 0o600, "bundle mode")
    eq(mode_of(os.path.join(d, "token")), 0o600, "token sink mode")
    leftovers = [n for n in os.listdir(d) if ".agent-" in n]
    eq(leftovers, [], "temporary files left behind")
    with open(os.path.join(d, "tls.crt")) as f:
        leaf = f.read()
    with open(os.path.join(d, "chain.pem")) as f:
        chain = f.read()
    H.verify_chain(state["root"], chain, leaf)
    c = H.load_cert(leaf)
    eq(H.cert_cn(c), "app.example.com", "CN")
    dns, ips, uris, _ = H.cert_sans(c)
    check("www.example.com" in dns, "alt name in %r" % dns)
    eq(ips, ["127.0.0.1"], "IP SANs")
    eq(uris, ["spiffe://example.com/app"], "URI SANs")
    left = H.not_after(c) - time.time()
    check(45 <= left <= 65, "1-minute certificate, %ds left" % left)
    # The key matches the certificate.
    pub_key = H.openssl("pkey", "-in", os.path.join(d, "tls.key"), "-pubout").stdout
    pub_crt = H.openssl("x509", "-in", os.path.join(d, "tls.crt"), "-noout", "-pubkey").stdout
    eq(pub_key, pub_crt, "key matches certificate")
    with open(os.path.join(d, "bundle.pem")) as f:
        bundle = f.read()
    check(bundle.startswith(leaf) and "PRIVATE KEY" in bundle and len(H.pem_certs(bundle)) >= 2,
          "bundle is leaf + chain + key")
    # The sink holds a working token.
    with open(os.path.join(d, "token")) as f:
        tok = f.read().strip()
    r = s.req("GET", "auth/token/lookup-self", token=tok)
    H.expect_ok(r, "sink token lookup-self")
    log = a.text()
    check(sid not in log and tok not in log and "PRIVATE KEY" not in log, "no secret in the agent's log")
    ev = a.msgs("certificate written")
    check(len(ev) == 1 and ev[0].get("serial") == H.colon_serial(c) and ev[0].get("expiry"),
          "JSON log with serial and expiry: %r" % ev)
    # A second one-shot with the certificate still fresh on disk does not reissue,
    # and cannot log in again (the secret_id is gone): it keeps the files.
    before = os.stat(os.path.join(d, "tls.crt")).st_ino
    a2 = Agent(d, {"address": s.url, "auto_auth": dict(auth, sink=None), "certificates": [cert_template(d)],
                   "retry": {"min_backoff": "1s", "max_backoff": "1s", "oneshot_attempts": 2}},
               ["-exit-after-auth"], log="agent2.log").start()
    eq(a2.wait(60), 1, "one-shot without a secret_id")
    check("secret_id" in a2.tail(), "message names the secret_id file: %s" % a2.tail())
    eq(os.stat(os.path.join(d, "tls.crt")).st_ino, before, "certificate left in place")


def test_oneshot_denied_role_gives_up_clearly():
    s = srv()
    d = H.tmpdir("agent-denied")
    auth = approle_files(d)
    a = Agent(d, {"address": s.url, "auto_auth": auth,
                  "certificates": [cert_template(d, role="other", name="denied")],
                  "retry": {"min_backoff": "1s", "max_backoff": "1s", "oneshot_attempts": 2}},
              ["-exit-after-auth"]).start()
    eq(a.wait(60), 1, "exit status with a denied role")
    fails = a.msgs("certificate renewal failed")
    check(fails and "403" in fails[0].get("error", "") and "permission denied" in fails[0]["error"].lower(),
          "clear denial in the log: %r" % fails[:1])
    check(not os.path.exists(os.path.join(d, "tls.crt")), "nothing written")
    check(a.msgs("one-shot run gave up"), "gives up: %s" % a.tail())


def test_oneshot_token_file_and_unreachable_server():
    s = srv()
    d = H.tmpdir("agent-tokfile")
    r = s.ok("POST", "auth/token/create", {"policies": ["agent"], "ttl": "10m"})
    tok = r.json()["auth"]["client_token"]
    with open(os.path.join(d, "token"), "w") as f:
        f.write(tok + "\n")
    cfg = {"address": s.url, "auto_auth": {"method": "token_file", "token_file": os.path.join(d, "token")},
           "certificates": [cert_template(d, cert_file=os.path.join(d, "a.crt"), key_file=os.path.join(d, "a.key"),
                                          chain_file=None, bundle_file=None)]}
    a = Agent(d, cfg, ["-exit-after-auth"]).start()
    eq(a.wait(60), 0, "token_file one-shot (%s)" % a.tail())
    eq(H.cert_cn(cert_of(os.path.join(d, "a.crt"))), "app.example.com", "issued with the file's token")
    # Nothing listens there: clear transport errors, bounded retries, exit 1.
    d2 = H.tmpdir("agent-down")
    cfg["address"] = "http://127.0.0.1:%d" % H.free_port()
    cfg["certificates"] = [cert_template(d2, chain_file=None, bundle_file=None)]
    cfg["retry"] = {"min_backoff": "1s", "max_backoff": "1s", "oneshot_attempts": 2}
    a = Agent(d2, cfg, ["-exit-after-auth"]).start()
    eq(a.wait(60), 1, "unreachable server exit status")
    fails = a.msgs("authentication failed")
    check(fails and "127.0.0.1" in fails[0].get("error", ""), "error names the address: %r" % fails[:1])


def test_oneshot_kubernetes_service_account():
    import jwtfake as F
    s = srv()
    kube = F.FakeKubeAPI(H.tmpdir("kube"))
    s.ok("POST", "sys/auth/kubernetes", {"type": "kubernetes"}, statuses=(200, 204))
    s.ok("POST", "auth/kubernetes/config", {"kubernetes_host": kube.url, "kubernetes_ca_cert": kube.ca_pem,
                                            "token_reviewer_jwt": kube.reviewer_token}, statuses=(200, 204))
    s.ok("POST", "auth/kubernetes/role/app", {"bound_service_account_names": ["app"],
                                              "bound_service_account_namespaces": ["prod"],
                                              "token_policies": "agent", "token_ttl": "10m"}, statuses=(200, 204))
    d = H.tmpdir("agent-k8s")
    jwt_file = os.path.join(d, "sa-token")
    with open(jwt_file, "w") as f:
        f.write(kube.legacy_token("prod", "app", "1f0e6a9c-0000-4000-8000-0000000agent"))
    cfg = {"address": s.url, "auto_auth": {"method": "kubernetes", "role": "app", "jwt_file": jwt_file},
           "certificates": [cert_template(d, chain_file=None)]}
    a = Agent(d, cfg, ["-exit-after-auth"]).start()
    eq(a.wait(60), 0, "kubernetes one-shot (%s)" % a.tail())
    eq(len(kube.reviews()), 1, "one TokenReview")
    check(H.cert_cn(cert_of(os.path.join(d, "tls.crt"))) == "app.example.com", "certificate issued")
    # A service account the role does not bind: refused, clear, bounded.
    with open(jwt_file, "w") as f:
        f.write(kube.legacy_token("prod", "intruder", "1f0e6a9c-0000-4000-8000-0000000intru"))
    d2 = H.tmpdir("agent-k8s-bad")
    cfg["certificates"] = [cert_template(d2, chain_file=None)]
    cfg["retry"] = {"min_backoff": "1s", "max_backoff": "1s", "oneshot_attempts": 2}
    a = Agent(d2, cfg, ["-exit-after-auth"]).start()
    eq(a.wait(60), 1, "unbound service account")
    fails = a.msgs("authentication failed")
    check(fails and "403" in fails[0].get("error", ""), "login refusal in the log: %r" % fails[:1])


def test_oneshot_tls_certificate_login():
    s = H.config_server("agentmtls", tls=True)
    H.enable_pki(s, "pki", "87600h")
    root = s.data("POST", "pki/root/generate/internal", {"common_name": "Agent Root", "key_type": "ec",
                                                         "ttl": "8760h"})["certificate"]
    s.ok("POST", "pki/roles/web", {"allowed_domains": "example.com", "allow_subdomains": True, "key_type": "ec",
                                   "max_ttl": "1h", "client_flag": True, "allow_ip_sans": True,
                                   "allowed_uri_sans": "spiffe://example.com/*"}, statuses=(200, 204))
    s.ok("POST", "sys/policies/acl/agent", {"policy": AGENT_POLICY.replace("apki/", "pki/")}, statuses=(200, 204))
    s.ok("POST", "sys/auth/cert", {"type": "cert"}, statuses=(200, 204))
    s.ok("POST", "auth/cert/certs/workload", {"certificate": root, "allowed_common_names": "*.example.com",
                                              "token_policies": "agent", "token_ttl": "10m"}, statuses=(200, 204))
    d = H.tmpdir("agent-mtls")
    boot = s.data("POST", "pki/issue/web", {"common_name": "boot.example.com", "ttl": "10m"})
    with open(os.path.join(d, "boot.crt"), "w") as f:
        f.write(boot["certificate"] + "\n")
    with open(os.path.join(d, "boot.key"), "w") as f:
        f.write(boot["private_key"] + "\n")
    os.chmod(os.path.join(d, "boot.key"), 0o600)
    cfg = {"address": s.url, "ca_cert": s.cacert,
           "auto_auth": {"method": "cert", "role": "workload", "client_cert": os.path.join(d, "boot.crt"),
                         "client_key": os.path.join(d, "boot.key")},
           "certificates": [cert_template(d, mount="pki", chain_file=None, bundle_file=None)]}
    a = Agent(d, cfg, ["-exit-after-auth"]).start()
    eq(a.wait(60), 0, "cert one-shot (%s)" % a.tail())
    with open(os.path.join(d, "tls.crt")) as f:
        H.verify_chain(root, "", f.read())
    # Without the listener's CA the agent refuses the server (no silent trust).
    d2 = H.tmpdir("agent-mtls-noca")
    cfg2 = dict(cfg, ca_cert=None, retry={"min_backoff": "1s", "max_backoff": "1s", "oneshot_attempts": 1})
    cfg2["certificates"] = [cert_template(d2, mount="pki", chain_file=None, bundle_file=None)]
    a = Agent(d2, cfg2, ["-exit-after-auth"]).start()
    eq(a.wait(60), 1, "untrusted server certificate")
    check(not os.path.exists(os.path.join(d2, "tls.crt")), "nothing written")
    s.stop()


def test_oneshot_owner_and_group():
    import pwd
    s = srv()
    d = H.tmpdir("agent-owner")
    os.chmod(d, 0o755)
    nobody = pwd.getpwnam("nobody")
    cfg = {"address": s.url, "auto_auth": approle_files(d),
           "certificates": [cert_template(d, owner="nobody", group=str(nobody.pw_gid), chain_file=None,
                                          bundle_file=None)],
           "retry": {"min_backoff": "1s", "max_backoff": "1s", "oneshot_attempts": 1}}
    a = Agent(d, cfg, ["-exit-after-auth"]).start()
    rc = a.wait(60)
    if os.geteuid() == 0:
        eq(rc, 0, "one-shot as root (%s)" % a.tail())
        for name in ("tls.crt", "tls.key"):
            st = os.stat(os.path.join(d, name))
            eq((st.st_uid, st.st_gid), (nobody.pw_uid, nobody.pw_gid), name + " owner")
        eq(mode_of(os.path.join(d, "tls.key")), 0o600, "key mode with an owner")
    else:
        # Without the right to chown, the write fails clearly and leaves nothing behind.
        eq(rc, 1, "one-shot without chown rights")
        check("cannot write" in a.text(), "clear error: %s" % a.tail())
        eq([n for n in os.listdir(d) if ".agent-" in n], [], "temporary files left behind")


# ---------------------------------------------------------------- the sidecar


def tls_serial(port, cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="app.example.com") as tls:
            der = tls.getpeercert(binary_form=True)
            line = tls.recv(100).decode().strip()
    c = H.load_cert(der)
    eq("%x" % c.serial_number, line, "workload answers with the serial it serves")
    return c.serial_number


class Watcher(threading.Thread):
    """Reads the agent's files in a loop while it renews: every read must be a
    complete PEM; the bundle must always hold a certificate matching its key."""

    def __init__(self, d):
        super().__init__(daemon=True)
        self.d = d
        self.stop = False
        self.reads = 0
        self.errors = []

    def run(self):
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.serialization import load_pem_private_key
        while not self.stop:
            try:
                for name in ("tls.crt", "chain.pem"):
                    with open(os.path.join(self.d, name)) as f:
                        text = f.read()
                    if not H.pem_certs(text) or not text.rstrip().endswith("-----END CERTIFICATE-----"):
                        self.errors.append("%s incomplete: %r" % (name, text[-80:]))
                with open(os.path.join(self.d, "tls.key"), "rb") as f:
                    load_pem_private_key(f.read(), None)
                with open(os.path.join(self.d, "bundle.pem"), "rb") as f:
                    b = f.read()
                leaf = H.load_cert(b.decode())
                start = b.index(b"-----BEGIN", b.index(b"PRIVATE KEY-----") - 40)
                key = load_pem_private_key(b[start:], None)
                fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
                if key.public_key().public_bytes(*fmt) != leaf.public_key().public_bytes(*fmt):
                    self.errors.append("bundle key does not match its certificate")
                self.reads += 1
            except Exception as e:  # noqa: BLE001
                self.errors.append("read: %s: %s" % (type(e).__name__, e))
            time.sleep(0.01)


def test_sidecar_renews_reloads_and_recovers():
    s = srv()
    d = H.tmpdir("agent-sidecar")
    root_path = os.path.join(d, "root.pem")
    with open(root_path, "w") as f:
        f.write(state["root"])
    auth = approle_files(d)
    health_port = H.free_port()
    tls_port = H.free_port()
    pidfile = os.path.join(d, "workload.pid")
    # Renewal at a quarter of the 1-minute lifetime: a renewal about every 12-15s.
    tmpl = cert_template(d, renew_fraction=0.25, jitter=0.05, pid_file=pidfile, reload_signal="SIGHUP",
                         revoke_on_shutdown=True)
    tmpl2 = cert_template(d, name="second", common_name="b.example.com", alt_names=[], ip_sans=[], uri_sans=[],
                          cert_file=os.path.join(d, "b.crt"), key_file=os.path.join(d, "b.key"),
                          chain_file=None, bundle_file=None, renew_fraction=0.25, jitter=0.05,
                          reload_command="echo reloaded >> %s" % os.path.join(d, "b.reloads"))
    cfg = {"address": s.url, "auto_auth": auth, "certificates": [tmpl, tmpl2],
           "health": {"listen_address": "127.0.0.1:%d" % health_port,
                      "status_file": os.path.join(d, "status.json")},
           "retry": {"min_backoff": "1s", "max_backoff": "3s"}}
    # Seed files so the workload can start; the agent replaces them.
    a = Agent(d, cfg).start()
    wait_for(lambda: os.path.exists(os.path.join(d, "bundle.pem")) and os.path.exists(os.path.join(d, "b.crt")),
             60, "first certificates", a)
    wl = subprocess.Popen([sys.executable, os.path.join(HERE, "tlsworkload.py"), str(tls_port),
                           os.path.join(d, "tls.crt"), os.path.join(d, "tls.key"), os.path.join(d, "chain.pem"),
                           pidfile],
                          stdout=subprocess.DEVNULL, stderr=open(os.path.join(d, "workload.log"), "ab"),
                          start_new_session=True)
    H._children.append(wl)
    watcher = Watcher(d)
    try:
        wait_for(lambda: os.path.exists(pidfile), 30, "workload pid file")
        watcher.start()
        served = [tls_serial(tls_port, root_path)]
        # Health: 200 with each certificate's serial and expiry.
        r = H.curl("http://127.0.0.1:%d/" % health_port)
        eq(r.status, 200, "health status")
        hj = r.json()
        check(hj["healthy"] and len(hj["certificates"]) == 2 and hj["certificates"][0]["serial"]
              and hj["certificates"][0]["expiry"], "health body %r" % hj)
        with open(os.path.join(d, "status.json")) as f:
            check(json.load(f)["certificates"][0]["serial"], "status file")

        def serials_written():
            return [e["serial"] for e in a.msgs("certificate written") if e.get("certificate") == "web"]

        # Two renewals while the server is up; the workload is reloaded and serves each new one.
        for n in (2, 3):
            wait_for(lambda: len(serials_written()) >= n, 45, "renewal %d" % (n - 1), a)
            want = int(serials_written()[-1].replace(":", ""), 16)
            wait_for(lambda: tls_serial(tls_port, root_path) == want, 15, "workload serving renewal %d" % (n - 1))
            served.append(want)
        check(len(set(served)) == 3, "three distinct certificates served: %r" % served)

        # The server goes away. The agent keeps the current certificate and retries with backoff.
        n_before = len(serials_written())
        current = os.path.join(d, "tls.crt")
        kept_serial = cert_of(current).serial_number
        s.stop()
        wait_for(lambda: any("127.0.0.1" in e.get("error", "") for e in a.msgs("certificate renewal failed")
                             + a.msgs("token renewal failed") + a.msgs("authentication failed")),
                 45, "a failure while the server is down", a)
        eq(cert_of(current).serial_number, kept_serial, "current certificate kept during the outage")
        eq(tls_serial(tls_port, root_path), kept_serial, "workload keeps serving during the outage")
        r = H.curl("http://127.0.0.1:%d/" % health_port)
        eq(r.status, 200, "healthy while the current certificate is valid")
        fails = a.msgs("certificate renewal failed")
        if fails:
            check(fails[-1].get("current_kept") is True, "failure log says the current one is kept")
        time.sleep(3)
        s.start()
        wait_for(lambda: len(serials_written()) > n_before, 45, "renewal after the server returns", a)
        want = int(serials_written()[-1].replace(":", ""), 16)
        wait_for(lambda: tls_serial(tls_port, root_path) == want, 15, "workload serving the post-outage certificate")

        # The second certificate was renewed too and ran its reload command each time.
        with open(os.path.join(d, "b.reloads")) as f:
            reloads = f.read().split()
        second = [e for e in a.msgs("certificate written") if e.get("certificate") == "second"]
        check(len(second) >= 3, "second certificate renewed: %d" % len(second))
        check(len(reloads) >= len(second) - 1, "reload command ran %d times for %d writes" % (len(reloads), len(second)))
        check(a.msgs("token renewed"), "token renewed while renewable: %s" % a.tail())
        # Past the token's max TTL renew-self is refused and the agent logs in again.
        wait_for(lambda: len(a.msgs("authenticated")) >= 2, 40, "a new login past the token's max TTL", a)
        check(a.msgs("workload reloaded"), "reload logged")
    finally:
        watcher.stop = True
        watcher.join(5)
    check(watcher.reads > 100, "watcher read the files %d times" % watcher.reads)
    eq(watcher.errors[:3], [], "files always complete during renewals")
    eq([n for n in os.listdir(d) if ".agent-" in n], [], "temporary files left behind")

    # Shutdown revokes the web certificate's lease (revoke_on_shutdown) and not the second one.
    last = cert_of(os.path.join(d, "tls.crt"))
    second = cert_of(os.path.join(d, "b.crt"))
    t_stop = int(time.time())
    eq(a.stop(), 0, "agent exit status on SIGTERM")
    check(a.msgs("certificate revoked on shutdown"), "revocation logged: %s" % a.tail())
    rec = s.data("GET", "apki/cert/" + H.colon_serial(last))
    check(int(rec.get("revocation_time") or 0) > 0, "leaf revoked on shutdown: %r" % rec)
    rec2 = s.data("GET", "apki/cert/" + H.colon_serial(second))
    # Not revoked by the shutdown. It may have gone earlier with its token: the first token's
    # leases are revoked when that token expires (Vault's semantics), and the test runs past it.
    rev2 = int(rec2.get("revocation_time") or 0)
    check(rev2 == 0 or rev2 < t_stop, "second certificate revoked at shutdown (%d >= %d)" % (rev2, t_stop))
    wl.terminate()
    wl.wait(10)


def test_restarted_agent_keeps_fresh_certificate():
    s = srv()
    d = H.tmpdir("agent-restart")
    auth = approle_files(d)
    cfg = {"address": s.url, "auto_auth": auth,
           "certificates": [cert_template(d, ttl="10m", chain_file=None, bundle_file=None)]}
    a = Agent(d, cfg, ["-exit-after-auth"]).start()
    eq(a.wait(60), 0, "first one-shot")
    serial = cert_of(os.path.join(d, "tls.crt")).serial_number
    a = Agent(d, cfg, ["-exit-after-auth"], log="agent2.log").start()
    eq(a.wait(60), 0, "second one-shot")
    eq(cert_of(os.path.join(d, "tls.crt")).serial_number, serial, "a fresh certificate on disk is kept")
    check(a.msgs("certificate found on disk") and not a.msgs("certificate written"), "no reissue: %s" % a.tail())


H.main(globals())
