#!/usr/bin/python3
"""Tidy against the real server: tidy, tidy-status, tidy-cancel and
config/auto-tidy as Vault has them; expired certificates and revocations go
after the safety buffer (the server's clock is moved with
SIGIL_CLOCK_OFFSET), revoked ones leave the CRL, unexpired ones stay;
issuance keeps working while a tidy runs; bad input."""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check, eq  # noqa: E402

ISSUE_THREADS = 8


def mount_with_role(s, mount):
    H.enable_pki(s, mount, "87600h")
    s.data("POST", mount + "/root/generate/internal", {"common_name": "Tidy Root", "key_type": "ec",
                                                       "ttl": "87000h"})
    s.ok("POST", mount + "/roles/web", {"allowed_domains": "example.com", "allow_subdomains": True,
                                        "key_type": "ec", "max_ttl": "1000h"}, statuses=(200, 204))


def issue_many(s, mount, n, ttl):
    """n certificates from ISSUE_THREADS keep-alive connections; returns their serials."""
    out, lock, errors = [], threading.Lock(), []

    def run(k):
        c = H.Http(s.url, s.token, timeout=60)
        try:
            for i in range(k, n, ISSUE_THREADS):
                r = c.request("POST", "/v1/%s/issue/web" % mount, {"common_name": "t%d.example.com" % i,
                                                                    "ttl": ttl})
                with lock:
                    if r.status == 200:
                        out.append(r.data["serial_number"])
                    else:
                        errors.append(r.status)
        finally:
            c.close()

    ts = [threading.Thread(target=run, args=(k,)) for k in range(ISSUE_THREADS)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    check(not errors, "issuance failed: %r" % errors[:5])
    eq(len(out), n, "issued")
    return out


def restart_later(s, offset):
    """Restarts the server with its clock moved forward (DESIGN.md rule 9: one clock)."""
    s.stop()
    old = os.environ.get("SIGIL_CLOCK_OFFSET")
    os.environ["SIGIL_CLOCK_OFFSET"] = offset
    try:
        s.start()
    finally:
        if old is None:
            del os.environ["SIGIL_CLOCK_OFFSET"]
        else:
            os.environ["SIGIL_CLOCK_OFFSET"] = old


def wait_state(s, mount, states, timeout=60.0):
    t0 = time.time()
    while time.time() - t0 < timeout:
        st = s.data("GET", mount + "/tidy-status")
        if st["state"] in states:
            return st
        time.sleep(0.05)
    raise H.TestFailure("tidy-status never reached %r: %r" % (states, st))


def list_certs(s, mount):
    r = s.req("LIST", mount + "/certs")
    if r.status == 404:
        return []
    return H.expect_ok(r, "LIST certs").data["keys"]


def crl_serials(s, mount):
    r = s.req("GET", mount + "/crl/pem", token="")
    eq(r.status, 200, "crl/pem")
    text = H.openssl("crl", "-noout", "-text", input=r.body).stdout.decode()
    return {line.split(":", 1)[1].strip().lower() for line in text.splitlines()
            if line.strip().startswith("Serial Number:")}


def hexs(serial):
    return serial.replace(":", "").lower()


def test_refusals():
    s = H.dev_server()
    mount_with_role(s, "tref")
    st = s.data("GET", "tref/tidy-status")
    eq(st["state"], "Inactive", "tidy-status before any tidy")
    H.expect_error(s.req("POST", "tref/tidy", {}), 400, "tidy without an operation", "at least one")
    H.expect_error(s.req("POST", "tref/tidy", {"tidy_cert_store": True, "safety_buffer": "soon"}), 400,
                   "bad safety_buffer", "safety_buffer")
    H.expect_error(s.req("POST", "tref/tidy", {"tidy_cert_store": True, "safety_buffer": 0}), 400,
                   "zero safety_buffer", "safety_buffer")
    H.expect_error(s.req("POST", "tref/tidy", {"tidy_cert_store": "yes please"}), 400, "bad boolean")
    H.expect_error(s.req("POST", "tref/tidy-cancel"), 400, "tidy-cancel with nothing running", "cancel")
    H.expect_error(s.req("POST", "tref/tidy", {"tidy_cert_store": True}, token=""), 403, "tidy without a token")
    H.expect_error(s.req("GET", "tref/tidy-status", token=""), 403, "tidy-status without a token")
    H.expect_error(s.req("POST", "tref/config/auto-tidy", {"enabled": True}), 400,
                   "auto-tidy enabled without an operation", "at least one")
    H.expect_error(s.req("POST", "tref/config/auto-tidy", {"interval_duration": "often"}), 400,
                   "bad interval")
    s.assert_healthy("after tidy refusals")


def test_tidy_removes_expired_and_updates_crl():
    s = H.Server("dev", name="tidy").start()
    mount_with_role(s, "tp")
    short = [s.data("POST", "tp/issue/web", {"common_name": "s%d.example.com" % i, "ttl": "1m"})["serial_number"]
             for i in range(6)]
    long_ = s.data("POST", "tp/issue/web", {"common_name": "long.example.com", "ttl": "100h"})["serial_number"]
    for serial in short[:2] + [long_]:
        s.data("POST", "tp/revoke", {"serial_number": serial})
    t0 = time.time()
    while time.time() - t0 < 5 and not {hexs(x) for x in short[:2] + [long_]} <= crl_serials(s, "tp"):
        time.sleep(0.05)
    check({hexs(x) for x in short[:2] + [long_]} <= crl_serials(s, "tp"), "revocations in the CRL")
    before = set(list_certs(s, "tp"))
    restart_later(s, "3h")
    # Not past NotAfter + safety_buffer yet with a 4h buffer: nothing goes.
    r = s.req("POST", "tp/tidy", {"tidy_cert_store": True, "tidy_revoked_certs": True, "safety_buffer": "4h"})
    eq(r.status, 202, "tidy answer")
    check(any("Tidy operation successfully started" in w for w in r.json().get("warnings") or []),
          "tidy warning: %r" % r.body)
    st = wait_state(s, "tp", ("Finished",))
    eq((st["cert_store_deleted_count"], st["revoked_cert_deleted_count"]), (0, 0), "nothing old enough")
    eq(set(list_certs(s, "tp")), before, "nothing deleted")
    # With a 1h buffer the six 1-minute certificates (two of them revoked) go; the 100h one stays.
    r = s.req("POST", "tp/tidy", {"tidy_cert_store": "true", "tidy_revoked_certs": "true", "safety_buffer": "1h"})
    eq(r.status, 202, "tidy answer")
    st = wait_state(s, "tp", ("Finished",))
    eq(st["cert_store_deleted_count"], 6, "cert_store_deleted_count")
    eq(st["revoked_cert_deleted_count"], 2, "revoked_cert_deleted_count")
    eq(st["missing_issuer_cert_count"], 0, "missing_issuer_cert_count")
    eq((st["tidy_cert_store"], st["tidy_revoked_certs"], st["safety_buffer"]), (True, True, 3600),
       "parameters echoed")
    check(st["error"] is None and st["time_started"] and st["time_finished"], "status times: %r" % st)
    check("checking" in (st["message"] or ""), "message %r" % st["message"])
    left = set(list_certs(s, "tp"))
    for x in short:
        check(x not in left, "expired certificate %s kept" % x)
    check(long_ in left, "unexpired certificate deleted")
    eq(s.data("GET", "tp/cert/" + long_, token="")["revocation_time"] > 0, True, "long one still revoked")
    H.expect_error(s.req("GET", "tp/cert/" + short[0], token=""), 404, "tidied certificate")
    # The CRL follows: the expired revocations leave it, the unexpired one stays.
    t0 = time.time()
    while time.time() - t0 < 5 and crl_serials(s, "tp") != {hexs(long_)}:
        time.sleep(0.05)
    eq(crl_serials(s, "tp"), {hexs(long_)}, "CRL after tidy")
    s.stop()


def test_cancel_and_issuance_during_tidy():
    s = H.Server("dev", name="tidycancel").start()
    mount_with_role(s, "tc")
    n = 1200
    expired = issue_many(s, "tc", n, "1m")
    restart_later(s, "2h")
    # pause_duration 3s after each batch of 500 deletions: time to cancel.
    r = s.req("POST", "tc/tidy", {"tidy_cert_store": True, "safety_buffer": "1h", "pause_duration": "3s"})
    eq(r.status, 202, "tidy")
    # 1,200 deletions with a 3 s pause after each 500: the first run is still going.
    H.expect_error(s.req("POST", "tc/tidy", {"tidy_cert_store": True}), 400, "second tidy while one runs",
                   "already running")
    t0 = time.time()
    while s.data("GET", "tc/tidy-status")["cert_store_deleted_count"] < 500 and time.time() - t0 < 60:
        time.sleep(0.05)
    # Issuance is not held up by the running tidy.
    t1 = time.time()
    during = s.data("POST", "tc/issue/web", {"common_name": "during.example.com", "ttl": "10h"})["serial_number"]
    check(time.time() - t1 < 2.0, "issuance during tidy took %.2fs" % (time.time() - t1))
    st = s.data("POST", "tc/tidy-cancel")
    check(st["state"] in ("Cancelling", "Cancelled"), "tidy-cancel answer %r" % st["state"])
    st = wait_state(s, "tc", ("Cancelled",))
    check(500 <= st["cert_store_deleted_count"] < n, "deleted before the cancel: %d" % st["cert_store_deleted_count"])
    first = st["cert_store_deleted_count"]
    s.ok("POST", "tc/tidy", {"tidy_cert_store": True, "safety_buffer": "1h"}, statuses=(202,))
    st = wait_state(s, "tc", ("Finished",))
    eq(first + st["cert_store_deleted_count"], n, "all expired certificates deleted over both runs")
    left = set(list_certs(s, "tc"))
    check(during in left, "the unexpired certificate was deleted")
    check(not left & set(expired), "expired certificates left: %d" % len(left & set(expired)))
    s.stop()


def test_auto_tidy():
    s = H.dev_server()
    mount_with_role(s, "ta")
    d = s.data("GET", "ta/config/auto-tidy")
    eq((d["enabled"], d["interval_duration"], d["safety_buffer"], d["tidy_cert_store"]), (False, 43200, 259200, False),
       "auto-tidy defaults")
    d = s.data("POST", "ta/config/auto-tidy", {"enabled": True, "interval_duration": "2s", "tidy_cert_store": True,
                                               "safety_buffer": "1h"})
    eq((d["enabled"], d["interval_duration"], d["safety_buffer"]), (True, 2, 3600), "auto-tidy written")
    eq(s.data("GET", "ta/config/auto-tidy")["interval_duration"], 2, "auto-tidy read back")
    t0 = time.time()
    st = s.data("GET", "ta/tidy-status")
    while st.get("last_auto_tidy_finished") is None and time.time() - t0 < 15:
        time.sleep(0.2)
        st = s.data("GET", "ta/tidy-status")
    check(st.get("last_auto_tidy_finished") is not None, "auto-tidy never ran: %r" % st)
    s.ok("POST", "ta/config/auto-tidy", {"enabled": False}, statuses=(200,))
    eq(s.data("GET", "ta/config/auto-tidy")["enabled"], False, "auto-tidy disabled")


H.main(globals())
