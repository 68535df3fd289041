#!/usr/bin/python3
"""OCSP stapling with a real nginx (Debian nginx-light): nginx serves a
certificate issued by Sigil whose AIA names Sigil's responder, fetches the
staple from it (`ssl_stapling on`, `ssl_stapling_verify on`), and
`openssl s_client -status` sees a good response. After the certificate is
revoked and nginx refreshes its staple (a reload), nginx fetches the revoked
answer from Sigil: nginx 1.22 logs 'certificate status "revoked" in the OCSP
response' and, by design, never staples a non-good answer
(ngx_ssl_stapling_ocsp_handler), so s_client then sees no staple at all
instead of the old good one; the revoked answer itself is checked with
`openssl ocsp` against the URL nginx used.

nginx runs as root on a random loopback port with its own prefix, config,
pid and temp paths, and is stopped by its PID."""

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
        ssl_certificate {prefix}/fullchain.pem;
        ssl_certificate_key {prefix}/key.pem;
        ssl_stapling on;
        ssl_stapling_verify on;
        ssl_trusted_certificate {prefix}/trusted.pem;
        location / {{ return 200 "stapled\\n"; }}
    }}
}}
"""


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
    root, inter = H.make_ca(s, MOUNT)
    s.ok("POST", MOUNT + "/roles/web", {"allowed_domains": "example.com", "allow_subdomains": True,
                                        "key_type": "ec", "max_ttl": "100h"}, statuses=(200, 204))
    s.ok("POST", MOUNT + "/config/urls", {"ocsp_servers": [s.url + "/v1/%s/ocsp" % MOUNT]}, statuses=(200, 204))
    leaf = s.data("POST", MOUNT + "/issue/web", {"common_name": HOST, "ttl": "10h"})
    prefix = H.tmpdir("nginx")
    for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        os.makedirs(os.path.join(prefix, d), exist_ok=True)

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
    write("nginx.conf", NGINX_CONF.format(prefix=prefix, port=port, host=HOST))
    ng = Nginx(prefix, port)
    try:
        ng.start()
        out = wait_status(port, rootf, "good")
        check("OCSP Response Status: successful" in out, out[-1500:])
        check("Verify return code: 0 (ok)" in out, "chain: " + out[-800:])
        check(re.search(r"GET /v1/%s/ocsp/" % MOUNT, s.stderr_text()) or "ocsp" in s.stderr_text(),
              "the staple came from Sigil")
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


if __name__ == "__main__":
    H.main(globals())
