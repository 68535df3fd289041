#!/usr/bin/python3
"""sigil-bench -mode acme (bench/acmeload.c) against the real server: a few
complete orders with http-01 served by the load generator itself, dns names
under bench.localhost and the IP identifier 127.0.0.1, accounts with External
Account Binding when the directory requires it; every order ends with a
certificate the server has stored; a refused directory is exit status 1.
The binary is sigil-bench next to $SIGIL_BIN."""

import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check, eq  # noqa: E402

MOUNT = "benchacme"
ROLE = "bench"
BENCH = os.path.join(os.path.dirname(H.SIGIL_BIN), "sigil-bench")
state = {}


def srv():
    s = H.dev_server("bench-acme")
    if not state.get("setup"):
        H.make_ca(s, MOUNT)
        s.ok("POST", MOUNT + "/roles/" + ROLE,
             {"allowed_domains": "bench.localhost", "allow_subdomains": True, "allow_ip_sans": True,
              "require_cn": False, "key_type": "ec", "ttl": "1h", "max_ttl": "2h"})
        state["http01"] = H.free_port()
        s.ok("POST", MOUNT + "/config/acme", {"enabled": True, "allowed_roles": [ROLE],
                                             "http01_port": state["http01"]})
        state["setup"] = True
    return s


def bench(*args, role=ROLE, token=None):
    """Runs sigil-bench -mode acme; (exit status, RESULT dict, stdout, stderr)."""
    check(os.access(BENCH, os.X_OK), "%s is not built" % BENCH)
    s = srv()
    argv = [BENCH, "-mode", "acme", "-url", s.url, "-mount", MOUNT, "-role", role,
            "-http01", str(state["http01"]), "-d", "60s", "-timeout", "30s"] + list(args)
    if token:
        argv += ["-token", token]
    env = dict(os.environ)
    env.pop("SIGIL_TOKEN", None)
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=90, env=env)
    out, err = p.stdout.decode(), p.stderr.decode()
    m = re.search(r"^RESULT (.*)$", out, re.M)
    res = dict(kv.split("=", 1) for kv in m.group(1).split()) if m else {}
    return p.returncode, res, out, err


def cert_count():
    r = srv().req("LIST", MOUNT + "/certs")
    return len(r.json()["data"]["keys"]) if r.status == 200 else 0


def test_dns_orders():
    before = cert_count()
    rc, res, out, err = bench("-c", "2", "-n", "6")
    eq(rc, 0, "exit status (stderr %r)" % err[-500:])
    eq((res.get("mode"), res.get("ok"), res.get("errors")), ("acme", "6", "0"), "RESULT " + out[-600:])
    check(float(res["rps"]) > 0 and float(res["p50"]) > 0, "rates and latencies: %r" % res)
    # Five requests per order at least, and one http-01 answer per order from the load generator.
    m = re.search(r"requests +(\d+) ACME requests .* (\d+) http-01 answers \((\d+) not found\)", out)
    check(m is not None, "no requests line: " + out)
    check(int(m.group(1)) >= 30, "ACME requests %s for 6 orders" % m.group(1))
    eq((m.group(2), m.group(3)), ("6", "0"), "http-01 answers / not found")
    # The server stored a certificate per order (two accounts, one per worker).
    eq(cert_count() - before, 6, "certificates stored")


def test_ip_orders_with_eab():
    s = srv()
    s.ok("POST", MOUNT + "/config/acme", {"eab_policy": "new-account-required"})
    try:
        rc, res, out, err = bench("-c", "1", "-n", "2", "-ident", "ip")
        eq(rc, 2, "exit status (usage) without a token for EAB keys")
        check("External Account Binding" in err, "EAB message: %r" % err[-300:])
        before = cert_count()
        rc, res, out, err = bench("-c", "2", "-n", "4", "-ident", "ip", "-csr-pool", "2", token=s.token)
        eq(rc, 0, "exit status (stderr %r)" % err[-500:])
        eq((res.get("ok"), res.get("errors")), ("4", "0"), "RESULT " + out[-600:])
        check("pool" in out and "ip 127.0.0.1" in out, "summary names the pool and the IP identifier: " + out)
        eq(cert_count() - before, 4, "certificates stored")
    finally:
        s.ok("POST", MOUNT + "/config/acme", {"eab_policy": "not-required"})


def test_refused_directory():
    rc, res, out, err = bench("-c", "1", "-n", "1", role="nosuch")
    eq(rc, 1, "exit status for a role outside allowed_roles")
    check("HTTP 4" in err, "the refusal is shown: %r" % err[-300:])
    eq(res, {}, "no RESULT line")


if __name__ == "__main__":
    H.main(globals())
