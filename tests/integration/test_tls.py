#!/usr/bin/python3
"""Production mode: HTTPS from a config file, the KEK file's permissions and
the root-token file."""

import os
import ssl
import stat
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check, eq  # noqa: E402


def srv():
    s = H._shared.get("tls")
    if s is None or not s.running:
        s = H.config_server("tls", tls=True, log_level="info")
        H._shared["tls"] = s
    return s


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_https_with_cacert():
    s = srv()
    check(s.url.startswith("https://"), "server url %s" % s.url)
    r = H.curl(s.url + "/v1/sys/health", cacert=s.cacert)
    eq(r.status, 200, "health over HTTPS")
    r = H.curl(s.url + "/v1/sys/mounts", token=s.token, cacert=s.cacert)
    eq(r.status, 200, "sys/mounts over HTTPS with the root token")
    H.enable_pki(s, "pki")
    root = s.data("POST", "pki/root/generate/internal", {"common_name": "tls root", "key_type": "ec"})
    s.ok("POST", "pki/roles/r", {"allowed_domains": "example.com", "allow_subdomains": True, "key_type": "ec",
                                 "ttl": "1h"},
         statuses=(200, 204))
    d = s.data("POST", "pki/issue/r", {"common_name": "h.example.com"})
    H.verify_chain(root["certificate"], "", d["certificate"])
    # The certificate served is the configured one.
    served = ssl.get_server_certificate(("127.0.0.1", s.port))
    eq(H.pem_certs(served), H.pem_certs(open(s.cfg["tls_cert_file"]).read()), "served TLS certificate")


def test_wrong_ca_is_refused_by_curl():
    s = srv()
    other, _ = H.make_tls_cert(H.tmpdir("otherca"), cn="other")
    r, rc, err = H.curl_raw(s.url + "/v1/sys/health", cacert=other)
    check(r is None and rc == 60, "curl with an unrelated CA file: exit %d (want 60, verify failure)" % rc)


def test_plain_http_to_tls_port_fails():
    s = srv()
    r, rc, err = H.curl_raw("http://127.0.0.1:%d/v1/sys/health" % s.port, timeout=10)
    check(r is None or r.status >= 400, "plain HTTP to the TLS port answered HTTP %s" % (r and r.status))
    r, rc, err = H.curl_raw("http://127.0.0.1:%d/v1/pki/ca" % s.port, timeout=10)
    check(r is None or r.status >= 400, "plain HTTP to the TLS port served pki/ca")
    s.assert_healthy("after plain HTTP on the TLS port")


def test_root_token_file():
    s = srv()
    path = os.path.join(s.data_dir, "root-token")
    check(os.path.exists(path), "no %s" % path)
    eq(oct(mode(path)), oct(0o600), "root-token file mode")
    tok = open(path).read().strip()
    check(len(tok) >= 16, "root token too short: %d chars" % len(tok))
    r = H.curl(s.url + "/v1/sys/mounts", token=tok, cacert=s.cacert)
    eq(r.status, 200, "root token from the file works")
    check(tok not in s.stderr_text() + s.stdout_text(), "production server logged its root token")


def test_restart_reads_same_kek():
    s = srv()
    s.restart()
    s.ok("POST", "pki/roles/r2", {"allow_any_name": True, "key_type": "ec", "ttl": "1h"}, statuses=(200, 204))
    d = s.data("POST", "pki/issue/r2", {"common_name": "after.example.com"})
    ca = s.ok("GET", "pki/ca/pem", token="").text
    H.verify_chain(ca, "", d["certificate"])


def test_kek_0644_refused():
    t = H.config_server("kek644", tls=True, start=False)
    os.chmod(t.cfg["kek_file"], 0o644)
    rc, out = t.expect_start_failure()
    check(rc != 0, "server exited 0 with a 0644 KEK file")
    low = out.lower()
    check(t.cfg["kek_file"] in out or "kek" in low, "start-up error does not name the KEK file: %r" % out[-400:])
    check(any(w in low for w in ("0600", "permission", "mode", "readable")),
          "start-up error does not explain the permissions: %r" % out[-400:])
    os.chmod(t.cfg["kek_file"], 0o600)
    t.start()  # the same file with 0600 is accepted
    t.stop()


def test_missing_tls_key_refused():
    t = H.config_server("nokey", tls=True, start=False)
    os.unlink(t.cfg["tls_key_file"])
    rc, out = t.expect_start_failure()
    check(rc != 0, "server exited 0 without its TLS key")
    check(t.cfg["tls_key_file"] in out or "tls" in out.lower(), "error does not name the TLS key: %r" % out[-400:])


def test_bad_config_refused():
    t = H.config_server("badcfg", tls=False, start=False)
    t.argv = lambda: [H.SIGIL_BIN, "server", "-config", _write(t, '{"listen_address": "127.0.0.1:1", "data_dir": ')]
    rc, out = t.expect_start_failure()
    check(rc != 0, "server exited 0 with a truncated config file")
    check("config" in out.lower() or "json" in out.lower(), "error does not mention the config: %r" % out[-400:])


def _write(t, text):
    path = os.path.join(t.base, "broken.json")
    with open(path, "w") as f:
        f.write(text)
    return path


if __name__ == "__main__":
    H.main(globals())
