#!/usr/bin/python3
"""The HTTP execution model: handlers run on a worker pool while
libmicrohttpd's threads (one per core) only do I/O (DESIGN.md rule 10).
A slow handler must not hold up other connections; a client that goes away
while its request is on a worker must not crash or leak anything; requests
in flight at SIGTERM are answered before the server exits; pipelined
requests on one connection are all answered, in order."""

import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check, eq  # noqa: E402

HEALTH_MAX_S = 1.5  # a health check on an idle worker; an RSA-4096 key under ASan takes far longer


def pki_server(name, threads):
    s = H.config_server(name, tls=False, threads=threads)
    H.enable_pki(s, "pki", "87600h")
    s.data("POST", "pki/root/generate/internal", {"common_name": "workers root", "key_type": "ec", "ttl": "8700h"})
    for role, bits in (("slow", 4096), ("rsa", 2048)):
        s.ok("POST", "pki/roles/" + role, {"allow_any_name": True, "key_type": "rsa", "key_bits": bits,
                                          "max_ttl": "1h"}, statuses=(200, 204))
    return s


def raw_request(method, path, token, body=b"", extra=""):
    head = "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Vault-Token: %s\r\nContent-Length: %d\r\n%s\r\n" % (
        method, path, token, len(body), extra)
    return head.encode() + body


def read_responses(sock, n, timeout=60):
    """Reads n HTTP/1.1 responses (Content-Length framed) from sock: [(status, body)]."""
    sock.settimeout(timeout)
    buf = b""
    out = []
    while len(out) < n:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            head = buf[:end].decode("latin-1")
            lines = head.split("\r\n")
            status = int(lines[0].split()[1])
            length = 0
            for line in lines[1:]:
                k, _, v = line.partition(":")
                if k.strip().lower() == "content-length":
                    length = int(v.strip())
            if len(buf) >= end + 4 + length:
                out.append((status, buf[end + 4:end + 4 + length]))
                buf = buf[end + 4 + length:]
                continue
        chunk = sock.recv(65536)
        check(chunk, "connection closed after %d of %d responses" % (len(out), n))
        buf += chunk
    return out


def test_slow_handlers_leave_other_connections_answered():
    """Two connections keep generating RSA-4096 keys; eight kept-alive connections are answered at once.
    With handlers on libmicrohttpd's threads (4 here), a connection pinned to a busy thread waited."""
    s = pki_server("slow", threads=4)
    idle = [H.Http(s.url) for _ in range(8)]
    for c in idle:
        eq(c.request("GET", "/v1/sys/health").status, 200, "health (connection set-up)")
    stop = threading.Event()
    issued = []

    def slow():
        c = H.Http(s.url, token=s.token)
        while not stop.is_set():
            issued.append(c.request("POST", "/v1/pki/issue/slow", {"common_name": "slow.example.com"}).status)
        c.close()

    workers = [threading.Thread(target=slow, daemon=True) for _ in range(2)]
    for t in workers:
        t.start()
    time.sleep(0.3)
    worst = 0.0
    try:
        for _ in range(3):
            for c in idle:
                t0 = time.time()
                r = c.request("GET", "/v1/sys/health")
                dt = time.time() - t0
                eq(r.status, 200, "health while RSA-4096 keys are generated")
                worst = max(worst, dt)
                check(dt < HEALTH_MAX_S, "health took %.2fs while two handlers generated RSA keys" % dt)
            time.sleep(0.1)
    finally:
        stop.set()
        for t in workers:
            t.join(timeout=120)
        for c in idle:
            c.close()
    H.log("worst health latency %.3fs; %d slow issues meanwhile" % (worst, len(issued)))
    check(all(st == 200 for st in issued), "slow issues answered %r" % issued)
    s.stop()


def test_client_gone_while_its_request_runs():
    """Clients that close (FIN or RST) right after sending: no crash, no leak (ASan at exit), workers stay usable."""
    s = pki_server("gone", threads=4)
    body = b'{"common_name": "gone.example.com"}'
    for i in range(8):
        c = socket.create_connection(("127.0.0.1", s.port))
        c.sendall(raw_request("POST", "/v1/pki/issue/rsa", s.token, body, "Content-Type: application/json\r\n"))
        if i % 2:
            # RST instead of FIN.
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        c.close()
    # Queued behind the abandoned ones (FIFO): answered once they are done.
    d = s.data("POST", "pki/issue/rsa", {"common_name": "after.example.com"})
    check("BEGIN CERTIFICATE" in d["certificate"], "issue after abandoned requests: %r" % d)
    s.assert_healthy("after clients went away mid-request")
    s.stop()  # exit 0, and LeakSanitizer finds nothing at exit


def test_pipelined_requests_on_one_connection():
    s = H.dev_server()
    c = socket.create_connection(("127.0.0.1", s.port))
    try:
        body = b'{"common_name": "pipe.example.com"}'
        c.sendall(raw_request("GET", "/v1/sys/health", "") +
                  raw_request("POST", "/v1/pki/roles/pipe", s.token, b'{"allow_any_name": true}') +
                  raw_request("GET", "/v1/pki/roles/pipe", s.token) +
                  raw_request("POST", "/v1/pki/issue/nosuchrole", s.token, body) +
                  raw_request("GET", "/v1/sys/health", ""))
        got = read_responses(c, 5)
    finally:
        c.close()
    statuses = [st for st, _ in got]
    check(statuses[1] in (200, 204), "role write answered %d" % statuses[1])
    eq(statuses[:1] + statuses[2:], [200, 200, 400, 200], "statuses of 5 pipelined requests")
    check(b'"allow_any_name":true' in got[2][1], "role read back in order: %r" % got[2][1][:200])
    s.assert_healthy("after pipelined requests")


def test_sigterm_answers_requests_in_flight():
    """SIGTERM while RSA-2048 keys are generated: every request gets its certificate, then exit 0."""
    s = pki_server("drain", threads=4)
    n = 6
    socks = []
    for i in range(n):
        c = socket.create_connection(("127.0.0.1", s.port))
        c.sendall(raw_request("POST", "/v1/pki/issue/rsa", s.token,
                              b'{"common_name": "drain%d.example.com"}' % i))
        socks.append(c)
    results = [None] * n
    done_at = [0.0] * n

    def one(i):
        try:
            results[i] = read_responses(socks[i], 1)[0]
        except Exception as e:  # noqa: BLE001 - reported below
            results[i] = e
        done_at[i] = time.time()

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    time.sleep(0.1)  # accepted and handed to workers; six keys on two cores take longer
    term_at = time.time()
    s.stop()  # SIGTERM; fails unless the server exits 0 within the harness's stop timeout
    for t in threads:
        t.join(timeout=60)
    for c in socks:
        c.close()
    for i, r in enumerate(results):
        check(isinstance(r, tuple), "request %d in flight at SIGTERM: %r" % (i, r))
        eq(r[0], 200, "request %d in flight at SIGTERM" % i)
        check(b"BEGIN CERTIFICATE" in r[1], "request %d: no certificate" % i)
    check(max(done_at) > term_at, "all RSA-2048 issues finished before SIGTERM: nothing was in flight")


def test_percent_escapes_in_paths_and_query():
    """%HH still decodes (path and query), except into control bytes, which stay encoded and are refused."""
    s = H.dev_server()
    s.ok("POST", "pki/roles/pct", {"allow_any_name": True, "max_ttl": "2h"}, statuses=(200, 204))
    eq(s.data("GET", "pki/roles/%70ct").get("max_ttl"), 7200, "role read through %70 (p)")
    r = s.req("GET", "pki/roles/pct%0a")
    check(r.status in (400, 404), "GET pki/roles/pct%%0a: HTTP %d" % r.status)
    r = s.req("LIST", "pki/roles")
    keys = r.data.get("keys") or []
    check(not any("\n" in k or "\x00" in k for k in keys), "role names with controls: %r" % keys)
    # ?list=%74rue is ?list=true; ?list=true%00 is not.
    check("pct" in (s.data("GET", "pki/roles?list=%74rue").get("keys") or []), "?list=%74rue")
    r = s.req("GET", "pki/roles?list=true%00")
    check(r.status != 200 or "keys" not in (r.json().get("data") or {}),
          "?list=true%%00 listed roles: %r" % r.body[:200])
    s.assert_healthy("after percent escapes")


if __name__ == "__main__":
    H.main(globals())
