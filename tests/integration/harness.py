"""Integration harness: runs the real sigil server and drives it with real clients.

A test file defines test_* functions (run in definition order) and ends with
``harness.main(globals())``.  The runner prints ``ok - name`` or
``not ok - name: reason`` per test and a final ``N passed, N failed`` line.

Servers are started on 127.0.0.1 with a random free port and a temporary data
directory, stopped by PID (SIGTERM, then SIGKILL), and everything (processes,
temp dirs) is cleaned up even when a test fails or the runner is killed.  The
server's stderr is scanned for sanitizer reports after every test and when the
server stops; a finding fails the test that was running (or, at shutdown, the
test that started the server).
"""

import base64
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIGIL_BIN = os.path.abspath(os.path.join(REPO, os.environ.get("SIGIL_BIN", "build-san/sigil")))

START_TIMEOUT = float(os.environ.get("SIGIL_START_TIMEOUT", "60"))  # sanitizer builds start slowly
STOP_TIMEOUT = 20.0
REQUEST_TIMEOUT = 60  # seconds, per HTTP request (RSA-4096 keygen under ASan is slow)
TEST_TIMEOUT = int(os.environ.get("SIGIL_TEST_TIMEOUT", "240"))  # seconds per test function

SANITIZER_MARKERS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "runtime error:",
    "ERROR: UndefinedBehaviorSanitizer",
    "WARNING: ThreadSanitizer",
)

os.environ.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
os.environ.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")

# ---------------------------------------------------------------- failures


class TestFailure(AssertionError):
    pass


class TestTimeout(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def eq(got, want, what):
    if got != want:
        raise TestFailure("%s: got %r, want %r" % (what, got, want))


def log(*args):
    """Diagnostics go to stderr; stdout carries only the TAP-like lines."""
    print(*args, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- temp dirs and processes

_tmp_root = None
_servers = []      # every Server ever started (stopped ones included)
_children = []     # every Popen started by the harness
_current_test = None
_results = []      # (ok, name, reason)


def tmpdir(prefix="t"):
    """A fresh directory under this run's temp root (removed at exit)."""
    global _tmp_root
    if _tmp_root is None:
        _tmp_root = tempfile.mkdtemp(prefix="sigil-it-")
    return tempfile.mkdtemp(prefix=prefix + "-", dir=_tmp_root)


def tmpfile(content, name=None, mode=0o600):
    d = tmpdir("f")
    path = os.path.join(d, name or "data")
    with open(path, "wb") as f:
        f.write(content if isinstance(content, bytes) else content.encode())
    os.chmod(path, mode)
    return path


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


class Http01(http.server.BaseHTTPRequestHandler):
    """An ACME http-01 target (RFC 8555 8.3): /.well-known/acme-challenge/<token> from `tokens`."""
    tokens = {}      # token -> key authorization
    delays = {}      # token -> seconds to wait before answering
    failures = {}    # token -> number of 404 answers before the right one
    hits = {}        # token -> requests seen
    redirects = {}   # Host header -> host:port to redirect to
    hosts = []       # Host headers seen

    def do_GET(self):
        prefix = "/.well-known/acme-challenge/"
        token = self.path[len(prefix):] if self.path.startswith(prefix) else None
        host = self.headers.get("Host")
        self.hosts.append(host)
        if host in self.redirects:
            self.send_response(302)
            self.send_header("Location", "http://%s%s" % (self.redirects[host], self.path))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = self.tokens.get(token)
        if token is not None:
            self.hits[token] = self.hits.get(token, 0) + 1
            if self.delays.get(token):
                time.sleep(self.delays[token])
            if self.failures.get(token, 0) > 0:
                self.failures[token] -= 1
                body = None
        if body is None:
            self.send_response(404)
            self.end_headers()
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


_http01 = []


def http01_port():
    """The port of this process's http-01 target on 127.0.0.1 (started on first use)."""
    if not _http01:
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Http01)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        _http01.append(httpd.server_address[1])
    return _http01[0]


def b64u(b):
    """Unpadded base64url (RFC 7515 2)."""
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


_dying = False  # set by SIGTERM/SIGINT: clean up fast, before a SIGKILL follows


def _cleanup():
    for srv in list(_servers):
        try:
            if _dying and srv.proc is not None and srv.proc.poll() is None:
                srv.proc.kill()
                srv.proc.wait(timeout=5)
            else:
                srv._reap(check=False)
        except Exception:
            pass
    for p in list(_children):
        if p.poll() is None:
            try:
                p.kill()
                p.wait(timeout=5)
            except Exception:
                pass
    if _tmp_root and os.environ.get("SIGIL_KEEP_TMP") != "1":
        shutil.rmtree(_tmp_root, ignore_errors=True)


def _on_signal(signum, frame):
    global _dying
    _dying = True
    raise SystemExit(128 + signum)


# ---------------------------------------------------------------- HTTP responses


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lower-case name -> value (last wins)
        self.body = body

    @property
    def ctype(self):
        return self.headers.get("content-type")

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise TestFailure("response is not JSON (%s): %r" % (e, self.body[:300]))

    @property
    def data(self):
        j = self.json()
        check(isinstance(j, dict) and isinstance(j.get("data"), dict),
              "no data object in %r" % (self.body[:300],))
        return j["data"]

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return "<HTTP %d %s %r>" % (self.status, self.ctype, self.body[:400])


def expect_ok(r, what, statuses=(200,)):
    if r.status not in statuses:
        raise TestFailure("%s: HTTP %d (want %s): %s" % (what, r.status, statuses, r.body[:600]))
    return r


def expect_error(r, status, what, contains=None):
    """An error answer as Vault clients expect it: the status, Content-Type
    exactly application/json, and {"errors":[non-empty strings]}."""
    statuses = status if isinstance(status, (tuple, list)) else (status,)
    if r.status not in statuses:
        raise TestFailure("%s: HTTP %d, want %s: %s" % (what, r.status, "/".join(map(str, statuses)),
                                                         r.body[:400]))
    if r.ctype != "application/json":
        raise TestFailure("%s: Content-Type %r, want exactly application/json" % (what, r.ctype))
    j = r.json()
    errs = j.get("errors") if isinstance(j, dict) else None
    if not isinstance(errs, list) or not errs or not all(isinstance(e, str) and e.strip() for e in errs):
        raise TestFailure("%s: no useful errors list: %r" % (what, r.body[:400]))
    if contains is not None:
        text = " ".join(errs).lower()
        wants = contains if isinstance(contains, (list, tuple)) else [contains]
        if not any(w.lower() in text for w in wants):
            raise TestFailure("%s: errors %r mention none of %r" % (what, errs, wants))
    return errs


# ---------------------------------------------------------------- clients


def curl(url, method="GET", body=None, token=None, headers=(), cacert=None, extra=(), timeout=REQUEST_TIMEOUT):
    """One request with the real curl binary.  body: dict/list (JSON), str or
    bytes (sent verbatim).  Returns a Response; raises TestFailure when curl
    itself fails (no HTTP answer)."""
    r, rc, err = curl_raw(url, method, body, token, headers, cacert, extra, timeout)
    if r is None:
        raise TestFailure("curl %s %s failed (exit %d): %s" % (method, url, rc, err.strip()))
    return r


def curl_raw(url, method="GET", body=None, token=None, headers=(), cacert=None, extra=(), timeout=REQUEST_TIMEOUT):
    """Like curl() but returns (Response or None, curl exit code, stderr)."""
    d = tmpdir("curl")
    hdr_path = os.path.join(d, "headers")
    out_path = os.path.join(d, "body")
    args = ["curl", "-sS", "--max-time", str(timeout), "-D", hdr_path, "-o", out_path, "-w", "%{http_code}"]
    if method == "HEAD":
        args.append("-I")
    elif method != "GET" or body is not None:
        args += ["-X", method]
    if token is not None:
        args += ["-H", "X-Vault-Token: " + token]
    if body is not None:
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        body_path = os.path.join(d, "req")
        with open(body_path, "wb") as f:
            f.write(body)
        args += ["--data-binary", "@" + body_path]
        if not any(h.lower().startswith("content-type:") for h in headers):
            args += ["-H", "Content-Type: application/json"]
    for h in headers:
        args += ["-H", h]
    if cacert:
        args += ["--cacert", cacert]
    args += list(extra)
    args.append(url)
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout + 15)
    code = p.stdout.decode().strip()
    resp = None
    if p.returncode == 0 and code.isdigit() and int(code) > 0:
        with open(hdr_path, "rb") as f:
            raw_headers = f.read().decode("latin-1")
        data = b""
        if method != "HEAD" and os.path.exists(out_path):  # curl -I writes the headers there
            with open(out_path, "rb") as f:
                data = f.read()
        resp = Response(int(code), _last_header_block(raw_headers), data)
    shutil.rmtree(d, ignore_errors=True)
    return resp, p.returncode, p.stderr.decode("utf-8", "replace")


def _last_header_block(raw):
    blocks = [b for b in re.split(r"\r?\n\r?\n", raw) if b.strip()]
    headers = {}
    if not blocks:
        return headers
    for line in blocks[-1].splitlines()[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return headers


class Http:
    """A keep-alive HTTP/1.1 client (http.client) for load and many small
    requests; one instance per thread."""

    def __init__(self, base_url, token=None, timeout=REQUEST_TIMEOUT, cacert=None):
        m = re.match(r"^(https?)://([^/:]+):(\d+)$", base_url)
        if not m:
            raise ValueError("bad base url " + base_url)
        self.scheme, self.host, self.port = m.group(1), m.group(2), int(m.group(3))
        self.token = token
        self.timeout = timeout
        self.cacert = cacert
        self.conn = None

    def _connect(self):
        if self.scheme == "https":
            ctx = ssl.create_default_context(cafile=self.cacert)
            self.conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=ctx)
        else:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def request(self, method, path, body=None, headers=None, token=None):
        if self.conn is None:
            self._connect()
        h = {}
        tok = token if token is not None else self.token
        if tok:
            h["X-Vault-Token"] = tok
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            h["Content-Type"] = "application/json"
        if isinstance(body, str):
            body = body.encode()
        if headers:
            h.update(headers)
        try:
            self.conn.request(method, path, body=body, headers=h)
            r = self.conn.getresponse()
            data = r.read()
        except Exception:
            self.close()
            raise
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        if r.getheader("connection", "").lower() == "close":
            self.close()
        return Response(r.status, hdrs, data)

    def close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
            self.conn = None


def openssl(*args, input=None, check_rc=True, timeout=120):
    """Runs the openssl binary; returns CompletedProcess (bytes)."""
    if isinstance(input, str):
        input = input.encode()
    p = subprocess.run(["openssl"] + list(args), input=input, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    if check_rc and p.returncode != 0:
        raise TestFailure("openssl %s failed: %s" % (" ".join(args[:3]), p.stderr.decode()[-500:]))
    return p


def hvac_client(srv, token=None):
    import hvac  # Debian python3-hvac 0.11.x
    return hvac.Client(url=srv.url, token=srv.token if token is None else token, timeout=REQUEST_TIMEOUT)


# ---------------------------------------------------------------- PKI helpers


def gen_key(kind, path=None):
    """PEM private key of kind 'ec256', 'ec384', 'rsa2048', 'rsa3072',
    'rsa4096' or 'ed25519' (openssl genpkey)."""
    if kind.startswith("ec"):
        args = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-" + kind[2:]]
    elif kind.startswith("rsa"):
        args = ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:" + kind[3:]]
    elif kind == "ed25519":
        args = ["-algorithm", "ED25519"]
    else:
        raise ValueError(kind)
    pem = openssl("genpkey", *args).stdout.decode()
    if path:
        with open(path, "w") as f:
            f.write(pem)
        os.chmod(path, 0o600)
    return pem


def make_csr(key_pem, cn=None, dns=(), ips=(), uris=(), emails=()):
    """A PEM CSR signed by key_pem with the given CN and SANs."""
    d = tmpdir("csr")
    kp = os.path.join(d, "key.pem")
    with open(kp, "w") as f:
        f.write(key_pem)
    subj = "/CN=" + cn if cn else "/"
    args = ["req", "-new", "-key", kp, "-subj", subj]
    sans = ["DNS:" + n for n in dns] + ["IP:" + n for n in ips] + ["URI:" + n for n in uris] + \
           ["email:" + n for n in emails]
    if sans:
        args += ["-addext", "subjectAltName=" + ",".join(sans)]
    pem = openssl(*args).stdout.decode()
    shutil.rmtree(d, ignore_errors=True)
    return pem


PEM_RE = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----", re.S)


def pem_blocks(text):
    """[(type, der bytes)] of every PEM block in text."""
    return [(m.group(1), base64.b64decode("".join(m.group(2).split()))) for m in PEM_RE.finditer(text)]


def pem_certs(text):
    return [der for t, der in pem_blocks(text) if t == "CERTIFICATE"]


def der_to_pem(der, kind="CERTIFICATE"):
    b = base64.b64encode(der).decode()
    return "-----BEGIN %s-----\n%s\n-----END %s-----\n" % (
        kind, "\n".join(b[i:i + 64] for i in range(0, len(b), 64)), kind)


def load_cert(pem_or_der):
    from cryptography import x509
    if isinstance(pem_or_der, str):
        ders = pem_certs(pem_or_der)
        check(len(ders) >= 1, "no certificate in %r" % pem_or_der[:100])
        pem_or_der = ders[0]
    return x509.load_der_x509_certificate(pem_or_der)


def cert_sans(cert):
    """(dns, ips, uris, emails) of a cryptography certificate."""
    from cryptography import x509
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], [], [], []
    return (ext.get_values_for_type(x509.DNSName),
            [str(i) for i in ext.get_values_for_type(x509.IPAddress)],
            ext.get_values_for_type(x509.UniformResourceIdentifier),
            ext.get_values_for_type(x509.RFC822Name))


def cert_cn(cert):
    from cryptography.x509.oid import NameOID
    attrs = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return attrs[0].value if attrs else None


def colon_serial(cert):
    h = "%x" % cert.serial_number
    if len(h) % 2:
        h = "0" + h
    return ":".join(h[i:i + 2] for i in range(0, len(h), 2))


def epoch(dt):
    import calendar
    return calendar.timegm(dt.utctimetuple())


def not_after(cert):
    """NotAfter as unix seconds (cryptography 38 .. 42+)."""
    return epoch(getattr(cert, "not_valid_after_utc", None) or cert.not_valid_after)


def not_before(cert):
    return epoch(getattr(cert, "not_valid_before_utc", None) or cert.not_valid_before)


def is_self_signed(cert):
    return cert.subject == cert.issuer


def verify_chain(root_pem, intermediates_pem, leaf_pem, purpose=None):
    """openssl verify -CAfile root -untrusted intermediates leaf; raises on failure."""
    d = tmpdir("verify")
    paths = {}
    for name, content in (("root", root_pem), ("untrusted", intermediates_pem), ("leaf", leaf_pem)):
        paths[name] = os.path.join(d, name + ".pem")
        with open(paths[name], "w") as f:
            f.write(content)
    args = ["verify", "-CAfile", paths["root"]]
    if intermediates_pem.strip():
        args += ["-untrusted", paths["untrusted"]]
    if purpose:
        args += ["-purpose", purpose]
    args.append(paths["leaf"])
    p = openssl(*args, check_rc=False)
    out = (p.stdout + p.stderr).decode()
    shutil.rmtree(d, ignore_errors=True)
    check(p.returncode == 0 and ": OK" in out, "openssl verify failed: %s" % out.strip())


def verify_issued(data, roots_pem):
    """Verifies an issue/sign response: leaf against the returned chain up to
    a root in roots_pem (PEM text)."""
    chain = data.get("ca_chain") or [data["issuing_ca"]]
    inter = "".join(c if c.endswith("\n") else c + "\n" for c in chain
                    if not is_self_signed(load_cert(c)))
    verify_chain(roots_pem, inter, data["certificate"])


# ---------------------------------------------------------------- the server


class Server:
    """One sigil server process.  mode 'dev' (plain HTTP, -dev flags) or
    'config' (JSON config file; cfg dict, listen_address/data_dir filled in
    when absent)."""

    def __init__(self, mode="dev", cfg=None, token=None, name="sigil"):
        self.mode = mode
        self.name = name
        self.base = tmpdir(name)
        self.data_dir = os.path.join(self.base, "data")
        self.token = token or ("root-" + base64.b32encode(os.urandom(10)).decode().lower())
        self.cfg = dict(cfg or {})
        self.port = None
        self.proc = None
        self.started_by = _current_test or "(setup)"
        self.stderr_path = os.path.join(self.base, "stderr.log")
        self.stdout_path = os.path.join(self.base, "stdout.log")
        self._scan_offset = 0
        self.starts = 0
        self.cacert = None
        self._reaped = False
        _servers.append(self)

    # -- lifecycle

    @property
    def url(self):
        scheme = "https" if self.mode == "config" and not self.cfg.get("tls_disable") else "http"
        return "%s://127.0.0.1:%d" % (scheme, self.port)

    def argv(self):
        if self.mode == "dev":
            return [SIGIL_BIN, "server", "-dev",
                    "-dev-listen-address=127.0.0.1:%d" % self.port,
                    "-dev-root-token-id=" + self.token,
                    "-dev-data-dir=" + self.data_dir]
        cfg = dict(self.cfg)
        cfg["listen_address"] = "127.0.0.1:%d" % self.port
        cfg.setdefault("data_dir", self.data_dir)
        self.data_dir = cfg["data_dir"]
        path = os.path.join(self.base, "config.json")
        with open(path, "w") as f:
            json.dump(cfg, f, indent=1)
        return [SIGIL_BIN, "server", "-config", path]

    def spawn(self):
        """Starts the process without waiting for readiness."""
        check(self.proc is None or self.proc.poll() is not None, "server already running")
        check(os.access(SIGIL_BIN, os.X_OK), "server binary %s not built" % SIGIL_BIN)
        if self.port is None:
            self.port = free_port()
        out = open(self.stdout_path, "ab")
        err = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(self.argv(), stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                     cwd=self.base, start_new_session=True)
        out.close()
        err.close()
        _children.append(self.proc)
        self._reaped = False
        self.starts += 1
        return self.proc

    def start(self, timeout=START_TIMEOUT):
        for attempt in range(3):
            self.spawn()
            try:
                self.wait_ready(timeout)
                break
            except TestFailure:
                # Another process may have taken the port between our probe and the bind.
                if self.proc.poll() is not None and attempt < 2 and "in use" in self.stderr_tail(5).lower():
                    self._reaped = True
                    self.port = None
                    continue
                raise
        if self.mode == "config" and os.path.exists(os.path.join(self.data_dir, "root-token")):
            with open(os.path.join(self.data_dir, "root-token")) as f:
                self.token = f.read().strip()
        return self

    def wait_ready(self, timeout=START_TIMEOUT):
        deadline = time.time() + timeout
        last = "no answer"
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise TestFailure("server exited with status %s during start-up: %s" %
                                  (self.proc.returncode, self.stderr_tail(15)))
            c = Http(self.url, cacert=self.cacert, timeout=5)
            try:
                r = c.request("GET", "/v1/sys/health")
                if r.status == 200:
                    return
                last = "HTTP %d" % r.status
            except (OSError, http.client.HTTPException) as e:
                last = str(e)
            finally:
                c.close()
            time.sleep(0.1)
        raise TestFailure("server not healthy after %.0fs (%s): %s" % (timeout, last, self.stderr_tail(15)))

    def stop(self):
        """SIGTERM, wait, then SIGKILL.  Fails the test when the server did
        not exit 0 on SIGTERM or reported sanitizer findings (leaks are only
        reported at exit)."""
        self._reap(check=True)

    def _reap(self, check):
        p = self.proc
        if p is None or self._reaped:
            return
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
                self._reaped = True
                if check:
                    self.check_sanitizer()
                    raise TestFailure("server ignored SIGTERM for %.0fs (killed)" % STOP_TIMEOUT)
                return
        self._reaped = True
        if check:
            self.check_sanitizer()
            if p.returncode != 0:
                raise TestFailure("server exit status %d (want 0 after SIGTERM): %s" %
                                  (p.returncode, self.stderr_tail(10)))

    def expect_start_failure(self, timeout=30):
        """Spawns the server expecting it to refuse to start.  Returns
        (exit status, stderr+stdout text); fails if it keeps running."""
        self.spawn()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._reap(check=False)
            raise TestFailure("server kept running for %ds, expected it to refuse to start" % timeout)
        self._reaped = True
        self.check_sanitizer()
        return self.proc.returncode, self.stderr_text() + self.stdout_text()

    def kill9(self):
        p = self.proc
        check(p is not None and p.poll() is None, "server not running")
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=10)
        self._reaped = True  # a non-zero status is expected here

    def restart(self, timeout=START_TIMEOUT):
        """Stops (if running) and starts again on the same port and data dir."""
        if self.proc is not None and self.proc.poll() is None:
            self.stop()
        return self.start(timeout)

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    # -- diagnostics

    def stderr_text(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def stdout_text(self):
        try:
            with open(self.stdout_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def stderr_tail(self, n=20):
        lines = self.stderr_text().splitlines()
        return "\n".join(lines[-n:])

    def new_sanitizer_findings(self):
        """Sanitizer report lines written since the last call."""
        text = self.stderr_text()
        new = text[self._scan_offset:]
        self._scan_offset = len(text)
        found = [l for l in new.splitlines() if any(m in l for m in SANITIZER_MARKERS)]
        if found:
            log("---- sanitizer report from %s (port %s) ----\n%s\n----" % (self.name, self.port, new[-8000:]))
        return found

    def check_sanitizer(self):
        found = self.new_sanitizer_findings()
        if found:
            raise TestFailure("sanitizer finding in server: %s" % found[0].strip())

    # -- requests

    def req(self, method, path, body=None, token=None, headers=(), **kw):
        """curl against /v1/<path> with the root token (token='' for none)."""
        tok = self.token if token is None else (token or None)
        return curl(self.url + "/v1/" + path.lstrip("/"), method, body, tok, headers,
                    cacert=self.cacert, **kw)

    def ok(self, method, path, body=None, statuses=(200,), **kw):
        r = self.req(method, path, body, **kw)
        return expect_ok(r, "%s %s" % (method, path), statuses)

    def data(self, method, path, body=None, **kw):
        return self.ok(method, path, body, **kw).data

    def health(self):
        return self.req("GET", "sys/health", token="")

    def assert_healthy(self, what=""):
        check(self.running, "server died %s: %s" % (what, self.stderr_tail(20)))
        r = self.health()
        check(r.status == 200, "health %s: HTTP %d" % (what, r.status))
        self.check_sanitizer()


def make_tls_cert(directory, cn="127.0.0.1"):
    """A self-signed EC server certificate for 127.0.0.1/localhost.
    Returns (cert_path, key_path); the certificate is its own CA file."""
    key = os.path.join(directory, "tls.key")
    crt = os.path.join(directory, "tls.crt")
    gen_key("ec256", key)
    openssl("req", "-x509", "-new", "-key", key, "-subj", "/CN=" + cn, "-days", "2",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-out", crt)
    return crt, key


def config_server(name="prod", tls=True, start=True, **cfg):
    """A server started from a JSON config file (production mode).  With tls,
    a fresh self-signed certificate is made and used as the client CA file."""
    srv = Server("config", cfg=cfg, name=name)
    srv.cfg.setdefault("data_dir", srv.data_dir)
    if "kek_file" not in srv.cfg:
        # 64 hex characters, mode 0600, as the README tells operators to make it.
        srv.cfg["kek_file"] = os.path.join(srv.base, "kek")
        fd = os.open(srv.cfg["kek_file"], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, (os.urandom(32).hex() + "\n").encode())
        os.close(fd)
    if tls:
        crt, key = make_tls_cert(srv.base)
        srv.cfg.setdefault("tls_cert_file", crt)
        srv.cfg.setdefault("tls_key_file", key)
        srv.cacert = crt
    else:
        srv.cfg["tls_disable"] = True
    if start:
        srv.start()
    return srv


_shared = {}


def dev_server(key="default"):
    """A dev server shared by the tests of one file (started on first use)."""
    srv = _shared.get(key)
    if srv is None or not srv.running:
        srv = Server("dev", name="dev-" + key).start()
        _shared[key] = srv
    return srv


def enable_pki(srv, path, max_lease_ttl=None):
    srv.ok("POST", "sys/mounts/" + path, {"type": "pki"}, statuses=(200, 204))
    if max_lease_ttl:
        srv.ok("POST", "sys/mounts/%s/tune" % path, {"max_lease_ttl": max_lease_ttl}, statuses=(200, 204))


def make_ca(srv, mount, key_type="ec", key_bits=256, cn="Test Root"):
    """A fresh mount with a root and an intermediate of the given key type;
    the intermediate becomes the default issuer.  Returns (root_pem, int_pem)."""
    enable_pki(srv, mount, "87600h")
    root = srv.data("POST", mount + "/root/generate/internal",
                    {"common_name": cn, "key_type": key_type, "key_bits": key_bits,
                     "ttl": "87000h", "issuer_name": "root"})["certificate"]
    csr = srv.data("POST", mount + "/intermediate/generate/internal",
                   {"common_name": cn + " Intermediate", "key_type": key_type, "key_bits": key_bits})["csr"]
    inter = srv.data("POST", mount + "/root/sign-intermediate",
                     {"csr": csr, "common_name": cn + " Intermediate", "issuer_ref": "root", "ttl": "43800h",
                      "format": "pem"})["certificate"]
    imp = srv.data("POST", mount + "/intermediate/set-signed", {"certificate": inter})
    check(len(imp.get("imported_issuers") or []) == 1, "set-signed imported %r" % imp)
    srv.ok("POST", mount + "/config/issuers", {"default": imp["imported_issuers"][0]}, statuses=(200, 204))
    return root, inter


def acme_mount(srv, mount, role, domain, roles=None, **acme_config):
    """make_ca, a role for names under domain (ttl 24h, max 72h) and ACME enabled with that role
    behind the default directory; roles adds more roles {name: fields}. Returns (root_pem, int_pem)."""
    root, inter = make_ca(srv, mount)
    fields = {"allowed_domains": domain, "allow_subdomains": True, "key_type": "any", "max_ttl": "72h", "ttl": "24h"}
    srv.ok("POST", mount + "/roles/" + role, fields)
    for name, extra in (roles or {}).items():
        srv.ok("POST", mount + "/roles/" + name, dict(fields, **extra))
    cfg = {"enabled": True, "allowed_roles": [role] + list(roles or {}), "default_directory_policy": "role:" + role}
    cfg.update(acme_config)
    srv.ok("POST", mount + "/config/acme", cfg)
    return root, inter


# ---------------------------------------------------------------- the runner


def _alarm(signum, frame):
    raise TestTimeout("test exceeded %ds" % TEST_TIMEOUT)


def _record(ok, name, reason=None):
    _results.append((ok, name, reason))
    if ok:
        print("ok - %s" % name, flush=True)
    else:
        reason = " ".join(str(reason).split())
        if len(reason) > 600:
            reason = reason[:600] + "..."
        print("not ok - %s: %s" % (name, reason), flush=True)


def main(ns):
    """Runs the test_* functions of a module namespace; exits 0 when all pass."""
    global _current_test
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGALRM, _alarm)
    only = sys.argv[1:]
    tests = [(n, f) for n, f in ns.items() if n.startswith("test_") and callable(f)
             and (not only or n in only)]
    try:
        for name, fn in tests:
            _current_test = name
            t0 = time.time()
            try:
                signal.alarm(TEST_TIMEOUT)
                try:
                    fn()
                finally:
                    signal.alarm(0)
                for srv in _servers:
                    srv.check_sanitizer()
                _record(True, name)
            except (TestFailure, TestTimeout) as e:
                _record(False, name, e)
                _dump_servers()
            except Exception as e:
                _record(False, name, "%s: %s" % (type(e).__name__, e))
                log(traceback.format_exc())
                _dump_servers()
            finally:
                # A finding that showed up while a test failed is still logged.
                for srv in _servers:
                    srv.new_sanitizer_findings()
                log("   (%s: %.1fs)" % (name, time.time() - t0))
        _current_test = None
        # Shared servers stop here; leaks are reported at exit and fail the
        # test that started the server.
        for srv in _servers:
            if srv.proc is not None and not srv._reaped:
                try:
                    srv.stop()
                except TestFailure as e:
                    _record(False, "%s [server exit]" % srv.started_by, e)
    finally:
        _cleanup()
    passed = sum(1 for r in _results if r[0])
    failed = len(_results) - passed
    print("%d passed, %d failed" % (passed, failed), flush=True)
    sys.exit(1 if failed else 0)


def _dump_servers():
    for srv in _servers:
        if srv.proc is not None:
            tail = srv.stderr_tail(15)
            if tail:
                log("---- %s stderr (last lines) ----\n%s\n----" % (srv.name, tail))
