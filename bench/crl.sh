#!/usr/bin/env bash
# CRL benchmark over HTTP (the bench's CRL mode): a dev server (release
# build), a mount with an EC P-256 root, N certificates issued, then revoked
# through pki/revoke from C concurrent keep-alive clients; the time from the
# last acknowledged revocation until the served CRL (GET pki/crl, DER) lists
# all N is the rebuild time a relying party sees. Then single revocations on
# top: the revocation -> CRL latency with auto_rebuild (rebuild_delay 250ms).
#
#   make && bench/crl.sh                       CRL_N=5000 CRL_CONCURRENCY=16
#   SIGIL_BUILD=build CRL_N=20000 CRL_SINGLES=20 bench/crl.sh
#
# 100k and 1M entries are measured in process (no HTTP) by sigil-crlbench.
set -euo pipefail

source "$(dirname "$0")/lib.sh"
N=${CRL_N:-5000}
C=${CRL_CONCURRENCY:-16}
SINGLES=${CRL_SINGLES:-10}
bench_init sigil-crlbench "$SIGIL"
bench_start_server

python3 - "$port" "$token" "$N" "$C" "$SINGLES" <<'EOF'
import http.client, json, statistics, sys, threading, time
from cryptography import x509

port, token, n, conc, singles = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
M = "bench-crl"

def conn():
    return http.client.HTTPConnection("127.0.0.1", port, timeout=120)

def api(c, method, path, body=None, tok=True):
    h = {"X-Vault-Token": token} if tok else {}
    if body is not None:
        h["Content-Type"] = "application/json"
    c.request(method, "/v1/" + path, body=json.dumps(body) if body is not None else None, headers=h)
    r = c.getresponse()
    data = r.read()
    if r.status >= 300 and r.status != 304:
        raise SystemExit("bench: %s %s: HTTP %d %s" % (method, path, r.status, data[:300]))
    return r, data

c0 = conn()
api(c0, "POST", "sys/mounts/" + M, {"type": "pki"})
api(c0, "POST", "sys/mounts/%s/tune" % M, {"max_lease_ttl": "87600h"})
api(c0, "POST", M + "/root/generate/internal", {"common_name": "CRL Bench Root", "key_type": "ec", "ttl": "8760h"})
api(c0, "POST", M + "/roles/r", {"allow_any_name": True, "key_type": "ec", "max_ttl": "100h"})
api(c0, "POST", M + "/config/crl", {"auto_rebuild": True})

def parallel(items, fn):
    out, lock = [], threading.Lock()
    def run(k):
        c = conn()
        for i in range(k, len(items), conc):
            v = fn(c, items[i])
            with lock:
                out.append(v)
        c.close()
    ts = [threading.Thread(target=run, args=(k,)) for k in range(conc)]
    for t in ts: t.start()
    for t in ts: t.join()
    return out

def entries(c):
    _, der = api(c, "GET", M + "/crl", tok=False)
    return len(list(x509.load_der_x509_crl(der))), len(der)

def wait_listed(c, serial_hex, etag):
    """Polls with If-None-Match (an unchanged CRL is a 304) until a new CRL lists the serial."""
    want = int(serial_hex.replace(":", ""), 16)
    while True:
        c.request("GET", "/v1/%s/crl" % M, headers={"If-None-Match": etag})
        r = c.getresponse()
        der = r.read()
        if r.status == 200:
            etag = r.getheader("ETag")
            if x509.load_der_x509_crl(der).get_revoked_certificate_by_serial_number(want) is not None:
                return
        time.sleep(0.005)

t0 = time.time()
serials = parallel(list(range(n)), lambda c, i: json.loads(api(c, "POST", M + "/issue/r",
                   {"common_name": "c%d.example.com" % i, "ttl": "10h"})[1])["data"]["serial_number"])
t_issue = time.time() - t0
base, _ = entries(c0)
t0 = time.time()
parallel(serials, lambda c, s: api(c, "POST", M + "/revoke", {"serial_number": s}))
t_last = time.time()
t_revoke = t_last - t0
while True:
    k, size = entries(c0)
    if k >= base + n:
        break
    time.sleep(0.01)
t_crl = time.time() - t_last
print("issued %d in %.1f s (%.0f/s); revoked %d in %.1f s (%.0f/s) with %d clients" %
      (n, t_issue, n / t_issue, n, t_revoke, n / t_revoke, conc))
print("last revocation -> CRL listing all %d: %.3f s (CRL %.1f KiB)" % (k, t_crl, size / 1024))
print("RESULT kind=crl_http n=%d clients=%d revoke_per_s=%.0f last_revoke_to_crl_s=%.3f crl_bytes=%d" %
      (n, conc, n / t_revoke, t_crl, size))

lat = []
extra = [json.loads(api(c0, "POST", M + "/issue/r", {"common_name": "s%d.example.com" % i, "ttl": "10h"})[1])
         ["data"]["serial_number"] for i in range(singles)]
before, _ = entries(c0)
for s in extra:
    r, _ = api(c0, "GET", M + "/crl", tok=False)
    etag = r.getheader("ETag")
    t0 = time.time()
    api(c0, "POST", M + "/revoke", {"serial_number": s})
    wait_listed(c0, s, etag)
    lat.append(time.time() - t0)
print("single revocation -> CRL (%d entries, auto_rebuild, rebuild_delay 250ms): median %.3f s, max %.3f s" %
      (before + len(extra), statistics.median(lat), max(lat)))
print("RESULT kind=crl_single entries=%d median_s=%.3f max_s=%.3f" % (before + len(extra), statistics.median(lat),
                                                                     max(lat)))
EOF
