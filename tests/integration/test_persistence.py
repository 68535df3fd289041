#!/usr/bin/python3
"""Durability: a clean restart keeps everything, and a kill -9 in the middle
of concurrent issuance loses nothing that was acknowledged."""

import glob
import os
import random
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check, eq  # noqa: E402

LOAD_THREADS = int(os.environ.get("SIGIL_LOAD_THREADS", "8"))
ROUNDS = 3


def list_certs(s, mount):
    r = s.req("LIST", mount + "/certs")
    if r.status == 404:
        return []
    H.expect_ok(r, "LIST %s/certs" % mount)
    return r.data["keys"]


def store_opens_cleanly(s):
    """mdb_stat (lmdb-utils) opens every LMDB environment in the data dir
    while the server is stopped."""
    envs = sorted({os.path.dirname(p) for p in glob.glob(os.path.join(s.data_dir, "**", "data.mdb"),
                                                        recursive=True)})
    check(envs, "no LMDB environment (data.mdb) under %s" % s.data_dir)
    for env in envs:
        p = subprocess.run(["mdb_stat", "-a", env], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        check(p.returncode == 0, "mdb_stat %s: %s" % (env, p.stderr.decode()[-300:]))


def test_restart_keeps_everything():
    s = H.Server("dev", name="restart").start()
    H.make_ca(s, "keep", key_type="ec", key_bits=256)
    s.ok("POST", "keep/roles/r", {"allowed_domains": "example.com", "allow_subdomains": True, "key_type": "ec",
                                  "max_ttl": "10h"}, statuses=(200, 204))
    s.ok("POST", "sys/mounts/keep/tune", {"default_lease_ttl": "2h"}, statuses=(200, 204))
    issued = [s.data("POST", "keep/issue/r", {"common_name": "k%d.example.com" % i}) for i in range(3)]
    rv = s.data("POST", "keep/revoke", {"serial_number": issued[0]["serial_number"]})
    before = {
        "mounts": sorted(k for k in s.data("GET", "sys/mounts") if k.endswith("/")),
        "tune": s.data("GET", "sys/mounts/keep/tune"),
        "issuers": sorted(s.data("LIST", "keep/issuers")["keys"]),
        "default": s.data("GET", "keep/config/issuers")["default"],
        "keys": sorted(s.data("LIST", "keep/keys")["keys"]),
        "role": s.data("GET", "keep/roles/r"),
        "certs": sorted(list_certs(s, "keep")),
        "revoked": s.data("LIST", "keep/certs/revoked")["keys"],
        "ca": s.ok("GET", "keep/ca", token="").body,
        "ca_chain": s.ok("GET", "keep/ca_chain", token="").body,
    }
    s.stop()
    store_opens_cleanly(s)
    s.start()
    eq(sorted(k for k in s.data("GET", "sys/mounts") if k.endswith("/")), before["mounts"], "mounts after restart")
    t = s.data("GET", "sys/mounts/keep/tune")
    eq(t.get("default_lease_ttl"), before["tune"].get("default_lease_ttl"), "tune after restart")
    eq(sorted(s.data("LIST", "keep/issuers")["keys"]), before["issuers"], "issuers after restart")
    eq(s.data("GET", "keep/config/issuers")["default"], before["default"], "default issuer after restart")
    eq(sorted(s.data("LIST", "keep/keys")["keys"]), before["keys"], "keys after restart")
    eq(s.data("GET", "keep/roles/r"), before["role"], "role after restart")
    eq(s.ok("GET", "keep/ca", token="").body, before["ca"], "ca after restart")
    eq(s.ok("GET", "keep/ca_chain", token="").body, before["ca_chain"], "ca_chain after restart")
    certs = sorted(list_certs(s, "keep"))
    for d in issued:
        check(d["serial_number"] in certs, "certificate %s lost" % d["serial_number"])
    check(set(before["certs"]) <= set(certs), "LIST certs shrank after restart")
    eq(s.data("LIST", "keep/certs/revoked")["keys"], before["revoked"], "revoked list after restart")
    c = s.data("GET", "keep/cert/" + issued[0]["serial_number"], token="")
    eq(c["revocation_time"], rv["revocation_time"], "revocation time after restart")
    eq(s.data("GET", "keep/cert/" + issued[1]["serial_number"], token="")["revocation_time"], 0,
       "unrevoked cert after restart")
    # The keys still sign: issue again and verify under the same root.
    d = s.data("POST", "keep/issue/r", {"common_name": "after.example.com"})
    roots = [c for c in H.pem_certs(before["ca_chain"].decode()) if H.is_self_signed(H.load_cert(c))]
    H.verify_issued(d, H.der_to_pem(roots[0]))
    check(d["serial_number"] not in certs, "serial reused after restart")
    s.stop()


class Load:
    """N threads issuing/signing on keep-alive connections, recording every
    acknowledged (HTTP 200) serial until the server goes away."""

    def __init__(self, s, mount, role):
        self.s, self.mount, self.role = s, mount, role
        self.acked = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.bad = []
        self.csr = H.make_csr(H.gen_key("ec256"), cn="load.example.com")
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(LOAD_THREADS)]

    def run(self, i):
        c = H.Http(self.s.url, self.s.token, timeout=30)
        n = 0
        while not self.stop.is_set():
            n += 1
            if (i + n) % 2:
                path, body = "/v1/%s/sign/%s" % (self.mount, self.role), {"csr": self.csr,
                                                                          "common_name": "load.example.com"}
            else:
                path, body = "/v1/%s/issue/%s" % (self.mount, self.role), {"common_name": "t%d.example.com" % i}
            try:
                r = c.request("POST", path, body)
            except Exception:
                # The server was killed: this request was never acknowledged.
                c.close()
                time.sleep(0.05)
                continue
            if r.status == 200:
                with self.lock:
                    self.acked.append(r.data["serial_number"])
            else:
                with self.lock:
                    self.bad.append((r.status, r.body[:200]))
        c.close()

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)


def test_kill9_under_load():
    s = H.Server("dev", name="kill9").start()
    s.ok("POST", "pki/roles/load", {"allowed_domains": "example.com", "allow_subdomains": True,
                                    "key_type": "ec", "key_bits": 256}, statuses=(200, 204))
    all_acked = []
    for rnd in range(ROUNDS):
        with Load(s, "pki", "load") as load:
            # Let the load build up, then kill at a random moment.
            deadline = time.time() + 30
            while len(load.acked) < 20 and time.time() < deadline:
                time.sleep(0.05)
            time.sleep(random.uniform(0.2, 1.5))
            s.kill9()
        acked = list(load.acked)  # threads joined: nothing more can arrive
        n_at_kill = len(acked)
        check(n_at_kill >= 20, "round %d: only %d certificates acknowledged before the kill" % (rnd, n_at_kill))
        check(not load.bad, "round %d: non-200 answers under load: %r" % (rnd, load.bad[:3]))
        all_acked += acked
        store_opens_cleanly(s)
        s.start()
        listed = set(list_certs(s, "pki"))
        missing = [x for x in all_acked if x not in listed]
        check(not missing, "round %d: %d of %d acknowledged serials missing from LIST certs after kill -9, e.g. %s"
              % (rnd, len(missing), len(all_acked), missing[:3]))
        # Every acknowledged serial of this round is readable (plus a sample of older rounds).
        sample = acked if len(acked) <= 3000 else random.sample(acked, 3000)
        sample += random.sample(all_acked, min(50, len(all_acked)))
        c = H.Http(s.url)
        for serial in sample:
            r = c.request("GET", "/v1/pki/cert/" + serial)
            check(r.status == 200, "round %d: cert/%s HTTP %d after kill -9" % (rnd, serial, r.status))
            eq(H.colon_serial(H.load_cert(r.data["certificate"])), serial, "stored certificate serial")
        c.close()
        check(len(set(all_acked)) == len(all_acked), "duplicate serials acknowledged")
        H.log("   round %d: %d acknowledged before kill -9, all present" % (rnd, n_at_kill))
    # Still serving after the last restart.
    d = s.data("POST", "pki/issue/load", {"common_name": "final.example.com"})
    check(d["serial_number"] not in all_acked, "serial reused")
    s.stop()


if __name__ == "__main__":
    H.main(globals())
