#!/usr/bin/python3
"""OCSP stapling with a real nginx (Debian nginx-light) and Sigil's responder.

1. nginx serves a certificate issued by Sigil whose AIA names Sigil's
   responder and fetches the staple itself (`ssl_stapling on`,
   `ssl_stapling_verify on`): `openssl s_client -status` sees a good answer
   signed by Sigil's delegated responder, fetched with a GET on Sigil's
   `<mount>/ocsp/`. After revocation and a reload nginx fetches the revoked
   answer and, by design, drops it: nginx 1.22 logs 'certificate status
   "revoked" in the OCSP response' and never staples a non-good answer
   (ngx_ssl_stapling_ocsp_handler), so clients then see no staple at all.
2. The operator's way to staple revocations: `sigil agent` keeps the
   certificate and an `ocsp_staple_file` next to it (fetched from the
   certificate's AIA responder, verified, written atomically, refreshed
   halfway through its validity) and reloads nginx, which serves it with
   `ssl_stapling_file`. After `revoke`, s_client -status shows
   "Cert Status: revoked" with the reason.

nginx runs as root on a random loopback port with its own prefix, config,
pid and temp paths, and is stopped by its PID."""

import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check, eq  # noqa: E402

MOUNT = "staplepki"
NGINX = "/usr/sbin/nginx"
HOST = "stapling.example.com"

NGINX_CONF = """
worker_processes 1;
user root;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name {host};
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_stapling on;
{stapling}
        location / {{ return 200 "stapled\\n"; }}
    }}
}}
"""


# nginx fetches the staple from the certificate's AIA responder and verifies it.
FETCH_STAPLING = """        ssl_stapling_verify on;
        ssl_trusted_certificate {prefix}/trusted.pem;"""
# nginx staples the file the agent keeps fresh (and re-reads it on reload).
FILE_STAPLING = """        ssl_stapling_file {staple};"""


def nginx_prefix(name):
    prefix = H.tmpdir(name)
    for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        os.makedirs(os.path.join(prefix, d), exist_ok=True)
    return prefix


def sigil_ocsp_gets(s, mount):
    """The access log lines of GETs on the mount's OCSP responder."""
    out = []
    for line in s.stderr_text().splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("msg") == "request" and e.get("method") == "GET" and e.get("path", "").startswith(mount + "/ocsp/"):
            out.append(e)
    return out


def setup_pki(s, mount):
    root, inter = H.make_ca(s, mount)
    s.ok("POST", mount + "/roles/web", {"allowed_domains": "example.com", "allow_subdomains": True,
                                        "key_type": "ec", "max_ttl": "100h"}, statuses=(200, 204))
    s.ok("POST", mount + "/config/urls", {"ocsp_servers": [s.url + "/v1/%s/ocsp" % mount]}, statuses=(200, 204))
    return root, inter


class Agent:
    """`sigil agent -config` as a sidecar, its JSON log in <dir>/agent.log."""

    def __init__(self, d, cfg):
        self.d = d
        self.config = os.path.join(d, "agent.json")
        with open(self.config, "w") as f:
            json.dump(cfg, f)
        self.log_path = os.path.join(d, "agent.log")
        self.proc = None

    def start(self):
        env = {k: v for k, v in os.environ.items() if k not in ("SIGIL_TOKEN", "VAULT_TOKEN", "SIGIL_ADDR", "VAULT_ADDR")}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([H.SIGIL_BIN, "agent", "-config", self.config], stdout=log, stderr=log,
                                         stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        H._children.append(self.proc)
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        bad = [line for line in self.text().splitlines() if any(m in line for m in H.SANITIZER_MARKERS)]
        check(not bad, "sanitizer finding in the agent: %s" % bad[:1])

    def text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def tail(self, n=15):
        return "\n".join(self.text().splitlines()[-n:])

    def msgs(self, msg):
        out = []
        for line in self.text().splitlines():
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if e.get("msg") == msg:
                out.append(e)
        return out


class Nginx:
    def __init__(self, prefix, port):
        self.prefix, self.port = prefix, port
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([NGINX, "-p", self.prefix, "-c", os.path.join(self.prefix, "nginx.conf"),
                                      "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 20
        while time.time() < deadline:
            check(self.proc.poll() is None, "nginx exited: %s" % self.proc.stderr.read().decode()[-800:])
            try:
                import socket
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        raise H.TestFailure("nginx did not listen on %d" % self.port)

    def reload(self):
        os.kill(self.proc.pid, signal.SIGHUP)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None

    def log(self):
        try:
            with open(os.path.join(self.prefix, "error.log")) as f:
                return f.read()[-1500:]
        except OSError:
            return ""


def s_client_status(port, cafile):
    p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-servername", HOST, "-status",
                        "-CAfile", cafile], input=b"", stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    out = p.stdout.decode("utf-8", "replace")
    m = re.search(r"Cert Status: (\w+)", out)
    return (m.group(1) if m else None), out


def wait_status(port, cafile, want, seconds=30):
    """nginx fetches a staple on the first handshake that needs it and staples from the next one on."""
    deadline = time.time() + seconds
    last = ""
    while time.time() < deadline:
        st, last = s_client_status(port, cafile)
        if st == want:
            return last
        time.sleep(0.3)
    raise H.TestFailure("no %s staple within %ds; last s_client output: %s" % (want, seconds, last[-1500:]))


def test_nginx_staples_good_then_fetches_revoked():
    if not os.path.exists(NGINX):
        raise H.TestFailure("nginx-light is not installed (make deps)")
    s = H.dev_server("stapling")
    root, inter = setup_pki(s, MOUNT)
    leaf = s.data("POST", MOUNT + "/issue/web", {"common_name": HOST, "ttl": "10h"})
    prefix = nginx_prefix("nginx")

    def write(name, text, mode=0o644):
        path = os.path.join(prefix, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    write("fullchain.pem", leaf["certificate"] + "\n" + inter + "\n")
    write("key.pem", leaf["private_key"] + "\n", 0o600)
    trusted = write("trusted.pem", inter + "\n" + root + "\n")
    rootf = write("root.pem", root + "\n")
    port = H.free_port()
    write("nginx.conf", NGINX_CONF.format(prefix=prefix, port=port, host=HOST, cert=prefix + "/fullchain.pem",
                                          key=prefix + "/key.pem", stapling=FETCH_STAPLING.format(prefix=prefix)))
    ng = Nginx(prefix, port)
    try:
        ng.start()
        out = wait_status(port, rootf, "good")
        check("OCSP Response Status: successful" in out, out[-1500:])
        check("Verify return code: 0 (ok)" in out, "chain: " + out[-800:])
        gets = sigil_ocsp_gets(s, MOUNT)
        check(gets and all(g["status"] == 200 for g in gets), "nginx fetched the staple from Sigil: %r" % gets)
        check("Responder Id:" in out and "This Update:" in out, out[-1500:])
        s.data("POST", MOUNT + "/revoke", {"serial_number": leaf["serial_number"], "reason": "keyCompromise"})
        # nginx keeps a good staple for up to an hour; a reload makes it fetch a fresh one.
        ng.reload()
        deadline = time.time() + 30
        while time.time() < deadline and 'certificate status "revoked"' not in ng.log():
            s_client_status(port, rootf)  # a handshake makes the new worker fetch its staple
            time.sleep(0.3)
        check('certificate status "revoked" in the OCSP response' in ng.log(),
              "nginx fetched the revoked answer: " + ng.log())
        st, out = s_client_status(port, rootf)
        check(st is None and "OCSP response: no response sent" in out, "the good staple is gone: " + out[-1500:])
        # What nginx received, asked the same way: revoked, with the reason, signed by the delegated responder.
        p = H.openssl("ocsp", "-issuer", write("inter.pem", inter + "\n"), "-cert", write("leaf.pem", leaf["certificate"]),
                      "-url", s.url + "/v1/%s/ocsp" % MOUNT, "-CAfile", trusted, check_rc=False)
        text = p.stdout.decode() + p.stderr.decode()
        check("Response verify OK" in text and "leaf.pem: revoked" in text and "keyCompromise" in text, text)
        s.assert_healthy("after stapling")
    except H.TestFailure:
        H.log("nginx error.log: " + ng.log())
        raise
    finally:
        ng.stop()


AGENT_MOUNT = "staplepki2"


def test_agent_staple_file_shows_revocation():
    if not os.path.exists(NGINX):
        raise H.TestFailure("nginx-light is not installed (make deps)")
    s = H.dev_server("stapling")
    root, inter = setup_pki(s, AGENT_MOUNT)
    # Short-lived answers: the agent refreshes halfway (4 s), so a revocation shows within seconds.
    s.ok("POST", AGENT_MOUNT + "/config/crl", {"ocsp_expiry": "8s"}, statuses=(200, 204))
    prefix = nginx_prefix("nginx-agent")
    tokf = os.path.join(prefix, "token")
    with open(tokf, "w") as f:
        f.write(s.token)
    os.chmod(tokf, 0o600)
    bundle, staple, pidf = (os.path.join(prefix, n) for n in ("bundle.pem", "staple.der", "nginx.pid"))
    cfg = {"address": s.url, "auto_auth": {"method": "token_file", "token_file": tokf},
           "certificates": [{"name": "web", "mount": AGENT_MOUNT, "role": "web", "common_name": HOST, "ttl": "10h",
                             "bundle_file": bundle, "ocsp_staple_file": staple, "pid_file": pidf,
                             "reload_signal": "HUP"}],
           "retry": {"min_backoff": "1s", "max_backoff": "2s"}}
    agent = Agent(prefix, cfg).start()
    ng = Nginx(prefix, H.free_port())
    rootf = os.path.join(prefix, "root.pem")
    with open(rootf, "w") as f:
        f.write(root + "\n")
    try:
        deadline = time.time() + 30
        while time.time() < deadline and not (os.path.exists(staple) and agent.msgs("ocsp staple written")):
            check(agent.proc.poll() is None, "agent exited: " + agent.tail())
            time.sleep(0.2)
        check(os.path.exists(staple), "no staple written: " + agent.tail())
        eq(oct(os.stat(staple).st_mode & 0o777), oct(0o644), "staple file mode")
        ev = agent.msgs("ocsp staple written")[0]
        eq(ev.get("ocsp_status"), "good", "first staple")
        check(ev.get("responder") == s.url + "/v1/%s/ocsp" % AGENT_MOUNT, "fetched from the AIA responder: %r" % ev)
        with open(os.path.join(prefix, "nginx.conf"), "w") as f:
            f.write(NGINX_CONF.format(prefix=prefix, port=ng.port, host=HOST, cert=bundle, key=bundle,
                                      stapling=FILE_STAPLING.format(staple=staple)))
        ng.start()
        out = wait_status(ng.port, rootf, "good", seconds=15)
        check("Verify return code: 0 (ok)" in out, "chain: " + out[-800:])
        with open(bundle) as f:
            leaf_pem = f.read().split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
        from cryptography import x509
        sn = x509.load_pem_x509_certificate(leaf_pem.encode()).serial_number
        serial = ":".join("%02x" % b for b in sn.to_bytes((sn.bit_length() + 7) // 8, "big"))
        s.data("POST", AGENT_MOUNT + "/revoke", {"serial_number": serial, "reason": "keyCompromise"})
        # The agent's next refresh (at most ~4 s) writes the revoked answer and reloads nginx.
        out = wait_status(ng.port, rootf, "revoked", seconds=40)
        check(re.search(r"Revocation Reason: keyCompromise", out), "reason in the staple: " + out[-1500:])
        check("OCSP Response Status: successful" in out, out[-1500:])
        revoked = [e for e in agent.msgs("ocsp staple written") if e.get("ocsp_status") == "revoked"]
        check(revoked and revoked[0].get("revocation_reason") == 1, "agent log: " + agent.tail())
        check(agent.msgs("workload reloaded"), "nginx reloaded by the agent: " + agent.tail())
        # The file itself, read back with openssl: revoked, verified through the chain.
        interf = os.path.join(prefix, "inter.pem")
        with open(interf, "w") as f:
            f.write(inter + "\n")
        leaff = os.path.join(prefix, "leaf.pem")
        with open(leaff, "w") as f:
            f.write(leaf_pem)
        p = H.openssl("ocsp", "-respin", staple, "-issuer", interf, "-cert", leaff, "-CAfile", rootf,
                      "-no_nonce", check_rc=False)
        text = p.stdout.decode() + p.stderr.decode()
        check("Response verify OK" in text and "leaf.pem: revoked" in text, text)
        s.assert_healthy("after agent stapling")
    except H.TestFailure:
        H.log("nginx error.log: " + ng.log())
        H.log("agent log: " + agent.tail(30))
        raise
    finally:
        ng.stop()
        agent.stop()
        s.ok("POST", AGENT_MOUNT + "/config/crl", {"ocsp_expiry": "12h"}, statuses=(200, 204))


if __name__ == "__main__":
    H.main(globals())
