#!/usr/bin/python3
"""Audit devices: hvac enables a file device; every request and response is a
hash-chained JSON line with secrets HMAC-ed; `sigil audit verify` names the
first broken line of an edited, cut, reordered or extended file; and with no
device able to write, requests fail with 500 and nothing is issued."""

import json
import os
import shutil
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check, eq  # noqa: E402

ROLE = "audited"
state = {}


def srv():
    s = H.dev_server("audit")
    if "dir" not in state:
        state["dir"] = H.tmpdir("audit")
        state["file"] = os.path.join(state["dir"], "audit.log")
    return s


def entries(path=None):
    with open(path or state["file"], "rb") as f:
        return [json.loads(line) for line in f.read().decode().splitlines()]


def verify(path, *flags):
    p = subprocess.run([H.SIGIL_BIN, "audit", "verify"] + list(flags) + [path], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    return p.returncode, (p.stdout + p.stderr).decode()


def pair(es, path, rtype="response"):
    """The last entry of type rtype for request path."""
    found = [e for e in es if e["type"] == rtype and e["request"]["path"] == path]
    check(found, "no %s entry for %s" % (rtype, path))
    return found[-1]


def chain_head(s, dev="file"):
    d = s.data("GET", "sys/audit")
    return d[dev + "/"]["chain"]


def can_chattr(path):
    if shutil.which("chattr") is None:
        return False
    p = subprocess.run(["chattr", "+i", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        return False
    subprocess.run(["chattr", "-i", path], check=True)
    return True


# ---------------------------------------------------------------- tests


def test_enable_with_hvac():
    s = srv()
    c = H.hvac_client(s)
    r = c.sys.enable_audit_device("file", description="tamper-evident log", options={"file_path": state["file"]})
    check(getattr(r, "status_code", 204) in (200, 204), "enable: %r" % (r,))
    devs = c.sys.list_enabled_audit_devices()
    data = devs.get("data", devs)
    check("file/" in data, "list lacks file/: %r" % list(data))
    eq(data["file/"]["type"], "file", "type")
    eq(data["file/"]["options"]["file_path"], state["file"], "file_path echoed")
    eq(data["file/"]["description"], "tamper-evident log", "description")
    check(data["file/"]["chain"]["seq"] >= 1, "chain seq reported: %r" % data["file/"])
    h = c.sys.calculate_hash("file", "some input")
    hv = h["data"]["hash"] if "data" in h else h["hash"]
    check(hv.startswith("hmac-sha256:") and len(hv) == 12 + 64, "audit-hash: %r" % hv)
    # The same input hashes the same; another device would not.
    eq(s.data("POST", "sys/audit-hash/file", {"input": "some input"})["hash"], hv, "audit-hash stable")
    H.expect_error(s.req("POST", "sys/audit/file", {"type": "file", "options": {"file_path": state["file"] + "2"}}),
                   400, "enable twice", "path already in use")
    H.expect_error(s.req("POST", "sys/audit/bad", {"type": "socket", "options": {"file_path": "/tmp/x"}}), 400,
                   "socket type", "not supported")
    H.expect_error(s.req("POST", "sys/audit/full", {"type": "file", "options": {"file_path": "/dev/full"}}), 400,
                   "unwritable device", "cannot write")
    H.expect_error(s.req("POST", "sys/audit-hash/nope", {"input": "x"}), 400, "unknown device", "unknown audit")
    H.expect_error(s.req("GET", "sys/audit", token=""), 403, "list without a token")
    first = entries()[0]
    eq(first["type"], "request", "the device's first line is the enabling request")
    eq(first["request"]["path"], "sys/audit/file", "first line path")
    eq(first["seq"], 1, "first seq")


def test_entries_and_secrets():
    s = srv()
    s.ok("POST", "pki/roles/" + ROLE, {"allowed_domains": "example.com", "allow_subdomains": True,
                                       "ttl": "1h", "key_type": "ec", "key_bits": 256}, statuses=(200, 204))
    issued = s.data("POST", "pki/issue/" + ROLE, {"common_name": "a.example.com"})
    key_pem = H.gen_key("ec256")
    csr = H.make_csr(key_pem, cn="b.example.com")
    signed = s.data("POST", "pki/sign/" + ROLE, {"csr": csr})
    s.ok("POST", "pki/revoke", {"serial_number": issued["serial_number"]})
    bad_token = "hvs.not-a-real-token-" + os.urandom(6).hex()
    H.expect_error(s.req("GET", "sys/mounts", token=bad_token), 403, "bad token")
    H.expect_error(s.req("GET", "pki/roles/" + ROLE + "/nope"), 404, "unknown path")
    lookup = s.data("GET", "auth/token/lookup-self")
    accessor = lookup.get("accessor")
    s.health()  # exempt: not audited

    es = entries()
    text = open(state["file"]).read()
    # Nothing secret in clear.
    body = lambda pem: "".join(l for l in pem.splitlines() if "-----" not in l)  # noqa: E731
    check(body(issued["private_key"])[:40] not in text, "issued private key in the audit file")
    check(s.token not in text, "root token in the audit file")
    check(bad_token not in text, "refused token in the audit file")
    check(body(csr)[:40] not in text, "CSR in the audit file")
    check(accessor is None or accessor not in text, "accessor in clear (hmac_accessor defaults to true)")
    check("sys/health" not in text, "sys/health was audited")
    check('"input":"some input"' not in text, "sys/audit-hash input in clear")

    hash_of = lambda v: s.data("POST", "sys/audit-hash/file", {"input": v})["hash"]  # noqa: E731
    req = pair(es, "pki/issue/" + ROLE, "request")
    resp = pair(es, "pki/issue/" + ROLE)
    check(es.index(req) < es.index(resp), "request line after its response")
    eq(req["request"]["operation"], "update", "operation")
    eq(req["request"]["mount_type"], "pki", "mount_type")
    eq(req["request"]["remote_address"], "127.0.0.1", "remote address")
    eq(req["request"]["id"], resp["request"]["id"], "request ids pair up")
    eq(req["request"]["data"]["common_name"], "a.example.com", "request data in clear")
    eq(req["auth"]["client_token"], hash_of(s.token), "client token HMAC")
    eq(req["auth"]["policies"], ["root"], "policies")
    if accessor:
        eq(req["auth"]["accessor"], hash_of(accessor), "accessor HMAC")
    d = resp["response"]["data"]
    eq(resp["response"]["status"], 200, "status")
    eq(d["private_key"], hash_of(issued["private_key"]), "private key HMAC")
    eq(d["certificate"], issued["certificate"], "certificate in clear")
    eq(d["serial_number"], issued["serial_number"], "serial in clear")
    sreq = pair(es, "pki/sign/" + ROLE, "request")
    eq(sreq["request"]["data"]["csr"], hash_of(csr), "CSR HMAC")
    eq(pair(es, "pki/sign/" + ROLE)["response"]["data"]["serial_number"], signed["serial_number"], "sign serial")
    rv = pair(es, "pki/revoke", "request")
    eq(rv["request"]["data"]["serial_number"], issued["serial_number"], "revoked serial in clear")
    denied = [e for e in es if e["type"] == "response" and e["request"]["path"] == "sys/mounts"
              and e["response"]["status"] == 403]
    check(denied, "the 403 was not audited")
    eq(denied[-1]["error"], "permission denied", "denial error")
    eq(denied[-1]["auth"]["client_token"], hash_of(bad_token), "refused token HMAC")
    dreq = [e for e in es if e["type"] == "request" and e["request"]["path"] == "sys/mounts"
            and e["error"] == "permission denied"]
    check(dreq, "the denied request line is missing")
    nf = pair(es, "pki/roles/" + ROLE + "/nope")
    eq(nf["response"]["status"], 404, "404 audited")
    look = pair(es, "auth/token/lookup-self")
    check(look["response"]["data"].get("id", "hmac-sha256:").startswith("hmac-sha256:"),
          "token id in lookup-self data not HMAC-ed: %r" % look["response"]["data"].get("id"))
    seqs = [e["seq"] for e in es]
    eq(seqs, list(range(1, len(es) + 1)), "seq runs 1..n")


def test_login_and_denials():
    """AppRole: role id, secret id and the new token are HMAC-ed; a bad login
    and a refused certificate are on record as denials."""
    s = srv()
    s.ok("POST", "sys/auth/approle", {"type": "approle"}, statuses=(200, 204))
    s.ok("POST", "auth/approle/role/audit-role", {"token_policies": "default"}, statuses=(200, 204))
    role_id = s.data("GET", "auth/approle/role/audit-role/role-id")["role_id"]
    sec = s.data("POST", "auth/approle/role/audit-role/secret-id")
    secret_id, sid_acc = sec["secret_id"], sec["secret_id_accessor"]
    wrong = "0" * 8 + secret_id[8:] if not secret_id.startswith("0" * 8) else "1" + secret_id[1:]
    bad = s.req("POST", "auth/approle/login", {"role_id": role_id, "secret_id": wrong}, token="")
    check(400 <= bad.status < 500, "bad login: HTTP %d" % bad.status)
    auth = s.ok("POST", "auth/approle/login", {"role_id": role_id, "secret_id": secret_id}, token="").json()["auth"]
    # Bad input on a PKI endpoint: a name the role does not allow.
    H.expect_error(s.req("POST", "pki/issue/" + ROLE, {"common_name": "evil.example.org"}), 400, "role denial")

    es = entries()
    text = open(state["file"]).read()
    for secret in (role_id, secret_id, wrong, auth["client_token"], auth["accessor"], sid_acc):
        check(secret not in text, "a login secret in clear in the audit file: %s..." % secret[:6])
    hash_of = lambda v: s.data("POST", "sys/audit-hash/file", {"input": v})["hash"]  # noqa: E731
    logins = [e for e in es if e["type"] == "response" and e["request"]["path"] == "auth/approle/login"]
    check(len(logins) >= 2, "logins not audited: %d" % len(logins))
    failed, ok = logins[-2], logins[-1]
    eq(failed["response"]["status"], bad.status, "denied login status")
    check(failed["error"], "denied login has no error text")
    eq(failed["request"]["data"]["secret_id"], hash_of(wrong), "wrong secret id HMAC")
    eq(failed["request"]["data"]["role_id"], hash_of(role_id), "role id HMAC")
    eq(failed["request"]["mount_type"], "approle", "auth mount type")
    eq(failed["request"]["mount_point"], "auth/approle/", "auth mount point")
    eq(ok["response"]["auth"]["client_token"], hash_of(auth["client_token"]), "new token HMAC")
    eq(ok["response"]["auth"]["accessor"], hash_of(auth["accessor"]), "new accessor HMAC")
    gen = pair(es, "auth/approle/role/audit-role/secret-id")
    eq(gen["response"]["data"]["secret_id"], hash_of(secret_id), "generated secret id HMAC")
    denial = [e for e in es if e["type"] == "response" and e["request"]["path"] == "pki/issue/" + ROLE
              and e["response"]["status"] == 400]
    check(denial and denial[-1]["error"], "the role denial was not audited with its error")
    # A token obtained by login shows up as the caller with its policies and metadata.
    s.req("GET", "auth/token/lookup-self", token=auth["client_token"])
    me = pair(entries(), "auth/token/lookup-self", "request")
    eq(me["auth"]["client_token"], hash_of(auth["client_token"]), "caller token HMAC")
    eq(me["auth"]["policies"], ["default"], "caller policies")
    eq(me["auth"]["metadata"].get("role_name"), "audit-role", "caller metadata")
    # The policy refuses it a certificate: a 403 on record, with who asked.
    H.expect_error(s.req("POST", "pki/issue/" + ROLE, {"common_name": "x.example.com"},
                         token=auth["client_token"]), 403, "ACL denial")
    acl = [e for e in entries() if e["type"] == "response" and e["request"]["path"] == "pki/issue/" + ROLE
           and e["response"]["status"] == 403]
    check(acl, "the ACL denial was not audited")
    eq(acl[-1]["auth"]["accessor"], hash_of(auth["accessor"]), "denied caller's accessor")
    eq(acl[-1]["auth"]["policies"], ["default"], "denied caller's policies")
    eq(acl[-1]["error"], "permission denied", "ACL denial error")


def test_verify_detects_tampering():
    s = srv()
    head = chain_head(s)
    src = state["file"]
    rc, out = verify(src)
    eq(rc, 0, "verify of the live file: " + out)
    check(out.startswith("OK"), out)
    rc, out = verify(src, "-expect-seq", str(head["seq"]), "-expect-hash", head["hash"])
    eq(rc, 0, "verify against the server's head: " + out)

    with open(src, "rb") as f:
        lines = f.read().split(b"\n")[:-1]
    check(len(lines) >= 10, "too few lines: %d" % len(lines))
    work = os.path.join(state["dir"], "tampered.log")

    def write(ls):
        with open(work, "wb") as f:
            f.write(b"".join(l + b"\n" for l in ls))

    # Edited: the time of line 6 moved back a millennium.
    ls = list(lines)
    check(ls[5].startswith(b'{"time":"2'), "unexpected line 6: %r" % ls[5][:40])
    ls[5] = ls[5].replace(b'{"time":"2', b'{"time":"1', 1)
    write(ls)
    rc, out = verify(work)
    eq(rc, 1, "edited: " + out)
    check("line 6:" in out and "edited" in out, "edited line not named: " + out)

    # Deleted line 4.
    write(lines[:3] + lines[4:])
    rc, out = verify(work)
    eq(rc, 1, "deleted: " + out)
    check("line 4:" in out, "deleted line not named: " + out)

    # Reordered lines 7 and 8.
    ls = list(lines)
    ls[6], ls[7] = ls[7], ls[6]
    write(ls)
    rc, out = verify(work)
    eq(rc, 1, "reordered: " + out)
    check("line 7:" in out, "reordered line not named: " + out)

    # A line inserted (a copy of line 2 placed at line 5).
    write(lines[:4] + [lines[1]] + lines[4:])
    rc, out = verify(work)
    eq(rc, 1, "inserted: " + out)
    check("line 5:" in out, "inserted line not named: " + out)

    # The last three lines cut: only the server's head reveals it.
    write(lines[:-3])
    rc, out = verify(work)
    eq(rc, 0, "a cut file alone is a valid chain: " + out)
    rc, out = verify(work, "-expect-seq", str(head["seq"]), "-expect-hash", head["hash"])
    eq(rc, 1, "cut tail against the head: " + out)
    check("line %d:" % (len(lines) - 2) in out and "removed" in out, "cut tail not named: " + out)

    rc, out = verify(os.path.join(state["dir"], "absent.log"))
    eq(rc, 2, "missing file: " + out)


def test_concurrent_issuance_keeps_the_chain():
    s = srv()
    errors = []

    def worker(n):
        c = H.Http(s.url, token=s.token)
        try:
            for i in range(8):
                r = c.request("POST", "/v1/pki/issue/" + ROLE, {"common_name": "c%d-%d.example.com" % (n, i)})
                if r.status != 200:
                    errors.append(r.status)
        finally:
            c.close()

    th = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    eq(errors, [], "concurrent issues")
    head = chain_head(s)
    rc, out = verify(state["file"], "-expect-seq", str(head["seq"]), "-expect-hash", head["hash"])
    eq(rc, 0, "chain after concurrent writers: " + out)
    es = entries()
    issued = [e for e in es if e["type"] == "response" and e["request"]["path"] == "pki/issue/" + ROLE]
    check(len(issued) >= 48, "only %d issue responses" % len(issued))


def test_restart_continues_the_chain():
    s = srv()
    h1 = s.data("POST", "sys/audit-hash/file", {"input": "salt check"})["hash"]
    n1 = len(entries())
    s.restart()
    h2 = s.data("POST", "sys/audit-hash/file", {"input": "salt check"})["hash"]
    eq(h2, h1, "the salt survives a restart")
    es = entries()
    check(len(es) > n1, "nothing logged after the restart")
    head = chain_head(s)
    rc, out = verify(state["file"], "-expect-seq", str(head["seq"]), "-expect-hash", head["hash"])
    eq(rc, 0, "chain across a restart: " + out)


def count_certs(s):
    r = s.req("LIST", "pki/certs")
    return len(r.data.get("keys", [])) if r.status == 200 else -1


def test_fail_closed_immutable_file():
    s = srv()
    if not can_chattr(state["file"]):
        H.log("chattr +i unavailable: immutable-file case skipped (the FIFO test still covers fail-closed)")
        return
    before = count_certs(s)
    check(before > 0, "no certificates listed")
    subprocess.run(["chattr", "+i", state["file"]], check=True)
    try:
        r = s.req("POST", "pki/issue/" + ROLE, {"common_name": "never.example.com"})
        H.expect_error(r, 500, "issue with an unwritable audit log")
        check("private_key" not in r.text and "BEGIN" not in r.text, "a certificate leaked: %s" % r.text[:200])
        H.expect_error(s.req("GET", "sys/mounts"), 500, "read with an unwritable audit log")
        H.expect_error(s.req("GET", "sys/mounts", token="bad-token-xyz"), 500, "denial with an unwritable log")
        eq(s.health().status, 200, "health is not audited")
    finally:
        subprocess.run(["chattr", "-i", state["file"]], check=True)
    eq(count_certs(s), before, "a certificate was issued while nothing could audit it")
    head = chain_head(s)
    check("error" not in head, "device still failing after recovery: %r" % head)
    rc, out = verify(state["file"], "-expect-seq", str(head["seq"]), "-expect-hash", head["hash"])
    eq(rc, 0, "chain after the refused requests: " + out)


def test_fail_closed_fifo_and_second_device():
    s = srv()
    fifo = os.path.join(state["dir"], "audit.fifo")
    os.mkfifo(fifo, 0o600)
    rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    got = []
    stop = threading.Event()

    def drain(fd):
        while not stop.is_set():
            try:
                b = os.read(fd, 65536)
                if b:
                    got.append(b)
            except BlockingIOError:
                pass
            except OSError:
                return
            stop.wait(0.01)

    t = threading.Thread(target=drain, args=(rfd,), daemon=True)
    t.start()
    s.ok("POST", "sys/audit/pipe", {"type": "file", "options": {"file_path": fifo}}, statuses=(200, 204))
    # Two devices: losing one still leaves a record, so requests succeed.
    s.ok("DELETE", "sys/audit/file", statuses=(200, 204))
    file2 = os.path.join(state["dir"], "second.log")
    s.ok("POST", "sys/audit/second", {"type": "file", "options": {"file_path": file2}}, statuses=(200, 204))
    stop.set()
    t.join()
    os.close(rfd)  # the FIFO loses its reader: writes fail with EPIPE, even for root
    s.data("POST", "pki/issue/" + ROLE, {"common_name": "one-device.example.com"})
    check(any("one-device.example.com" in json.dumps(e) for e in entries(file2)), "second device missed it")
    before = count_certs(s)
    check(before > 0, "no certificates listed")
    # Only the FIFO left, and its reader gone: fail closed. (Disabling the last
    # working device while the other is broken would itself be refused: its
    # answer could not be audited.)
    rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    s.ok("DELETE", "sys/audit/second", statuses=(200, 204))
    os.close(rfd)
    before_lines = len(entries(file2))
    r = s.req("POST", "pki/issue/" + ROLE, {"common_name": "refused.example.com"})
    H.expect_error(r, 500, "issue with only a broken device")
    check("BEGIN" not in r.text, "certificate material in a refused answer")
    H.expect_error(s.req("POST", "sys/audit-hash/pipe", {"input": "x"}), 500, "any request is refused")
    # A reader again: the device writes, and the refused issue left no certificate behind.
    rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        eq(count_certs(s), before, "a certificate was issued while no device could audit it")
        s.ok("DELETE", "sys/audit/pipe", statuses=(200, 204))
    finally:
        os.close(rfd)
    eq(len(entries(file2)), before_lines, "a disabled device still written")
    eq(s.data("GET", "sys/audit"), {}, "devices left after disabling")
    s.data("POST", "pki/issue/" + ROLE, {"common_name": "no-audit.example.com"})  # no device: not refused


if __name__ == "__main__":
    H.main(globals())
