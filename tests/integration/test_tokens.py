#!/usr/bin/python3
"""auth/token against the real server: hvac (python3-hvac 0.11) and curl.

Creation (child, orphan, subset rule, default policy, sudo-only options),
lookups (self, token, accessor), renewals with the caps Vault applies,
revocation of trees and revoke-orphan, use-limited and expiring tokens (and
the sweeper removing them), restart persistence, tokens never stored in
clear, the cascade from a token to the certificates it leased, and bad input
on every endpoint answering the right 4xx with a useful message.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check, eq  # noqa: E402

state = {}

# What a non-root caller needs once the ACL enforces policies: the token
# paths this file exercises (Vault's "default" policy covers the -self ones).
TOKEN_USER_POLICY = '''
# children and lookups of other tokens
path "auth/token/create" { capabilities = ["update"] }
path "auth/token/create-orphan" { capabilities = ["update"] }
path "auth/token/lookup" { capabilities = ["update", "read"] }
path "auth/token/lookup-accessor" { capabilities = ["update"] }
path "auth/token/renew" { capabilities = ["update"] }
path "auth/token/renew-accessor" { capabilities = ["update"] }
path "auth/token/revoke" { capabilities = ["update"] }
path "auth/token/revoke-accessor" { capabilities = ["update"] }
path "auth/token/revoke-orphan" { capabilities = ["update"] }
path "auth/token/accessors" { capabilities = ["list"] }
'''


def srv():
    s = H.dev_server()
    if "policies" not in state:
        # The policy store may not be mounted in every build of the tree; where
        # it is, the non-root tokens below get exactly what they use.
        r = s.req("POST", "sys/policies/acl/tok-user", {"policy": TOKEN_USER_POLICY})
        check(r.status in (200, 204, 404), "writing policy tok-user: %r" % (r,))
        r = s.req("POST", "sys/policies/acl/web", {"policy": 'path "pki/issue/web" { capabilities = ["update"] }'})
        check(r.status in (200, 204, 404), "writing policy web: %r" % (r,))
        state["policies"] = True
    return s


def hv(token=None):
    return H.hvac_client(srv(), token=token)


def create(body, token=None, path="auth/token/create", status=200):
    """POST a create with curl; returns the auth block."""
    s = srv()
    r = s.req("POST", path, body, token=token)
    H.expect_ok(r, "create %r" % (body,), (status,))
    a = r.json()["auth"]
    check(isinstance(a, dict), "no auth block: %r" % (r,))
    return a


def lookup_self(token):
    return srv().req("GET", "auth/token/lookup-self", token=token)


def alive(token):
    r = lookup_self(token)
    check(r.status in (200, 403), "lookup-self: %r" % (r,))
    return r.status == 200


# ---------------------------------------------------------------- lookups


def test_root_lookup_self_hvac():
    s = srv()
    c = hv()
    check(c.is_authenticated(), "hvac is_authenticated() false for the root token")
    d = c.auth.token.lookup_self()["data"]
    eq(d["id"], s.token, "lookup-self id")
    eq(d["policies"], ["root"], "root policies")
    eq(d["display_name"], "root", "root display_name")
    eq(d["path"], "auth/token/root", "root path")
    eq(d["expire_time"], None, "root expire_time")
    eq(d["ttl"], 0, "root ttl")
    eq(d["orphan"], True, "root orphan")
    eq(d["renewable"], False, "root renewable")
    eq(d["type"], "service", "type")
    eq(len(d["accessor"]), 24, "accessor length")
    for k in ("creation_time", "creation_ttl", "explicit_max_ttl", "num_uses", "entity_id", "meta", "issue_time"):
        check(k in d, "lookup-self lacks %s: %r" % (k, d))
    check(not H.hvac_client(s, token="hvs.not-a-real-token").is_authenticated(), "a made-up token authenticated")


def test_bearer_header_and_long_token():
    s = srv()
    r = H.curl(s.url + "/v1/auth/token/lookup-self", headers=("Authorization: Bearer " + s.token,))
    H.expect_ok(r, "lookup-self with Authorization: Bearer")
    eq(r.data["id"], s.token, "bearer lookup id")
    r = s.req("GET", "auth/token/lookup-self", token="x" * 300)
    H.expect_error(r, 403, "a 300-byte token", "permission denied")
    r = s.req("GET", "auth/token/lookup-self", token="")
    H.expect_error(r, 403, "no token", "permission denied")


# ---------------------------------------------------------------- creation


def test_create_child_hvac():
    c = hv()
    r = c.auth.token.create(policies=["web", "tok-user"], ttl="1h", meta={"team": "pki"}, display_name="ci bot!")
    a = r["auth"]
    check(a["client_token"].startswith("hvs.") and len(a["client_token"]) >= 28, "token %r" % a["client_token"])
    eq(len(a["accessor"]), 24, "accessor length")
    eq(a["policies"], ["default", "tok-user", "web"], "policies (default added, sorted)")
    eq(a["token_policies"], a["policies"], "token_policies")
    check(3590 <= a["lease_duration"] <= 3600, "lease_duration %r" % a["lease_duration"])
    eq(a["renewable"], True, "renewable")
    eq(a["orphan"], False, "orphan")
    eq(a["metadata"], {"team": "pki"}, "metadata")
    eq(a["token_type"], "service", "token_type")
    state["child"] = a["client_token"]
    state["child_accessor"] = a["accessor"]

    d = c.auth.token.lookup(a["client_token"])["data"]
    eq(d["id"], a["client_token"], "lookup id")
    eq(d["display_name"], "token-ci-bot", "display_name sanitised as Vault")
    eq(d["path"], "auth/token/create", "path")
    eq(d["meta"], {"team": "pki"}, "meta")
    check(isinstance(d["expire_time"], str) and d["expire_time"].endswith("Z"), "expire_time %r" % d["expire_time"])

    d = c.auth.token.lookup_accessor(a["accessor"])["data"]
    eq(d["id"], "", "lookup-accessor never returns the token")
    eq(d["accessor"], a["accessor"], "lookup-accessor accessor")

    cc = hv(a["client_token"])
    check(cc.is_authenticated(), "child is_authenticated")
    d = cc.auth.token.lookup_self()["data"]
    eq(d["policies"], ["default", "tok-user", "web"], "child lookup-self policies")
    eq(d["orphan"], False, "child orphan")

    # The older client API (hvac.v1) takes the same paths.
    d = c.lookup_token(a["client_token"])["data"]
    eq(d["accessor"], a["accessor"], "v1 lookup_token")
    d = c.lookup_token(a["accessor"], accessor=True)["data"]
    eq(d["accessor"], a["accessor"], "v1 lookup_token(accessor=True)")


def test_child_rules():
    child = state["child"]
    s = srv()
    # Subset of the parent's policies only.
    r = s.req("POST", "auth/token/create", {"policies": ["admin"]}, token=child)
    H.expect_error(r, 400, "child asks for a policy its parent lacks", "child policies must be subset of parent")
    a = create({"policies": ["web"]}, token=child)
    eq(a["policies"], ["default", "web"], "subset child (default from the parent)")
    a = create({"policies": ["web"], "no_default_policy": True}, token=child)
    eq(a["policies"], ["web"], "no_default_policy")
    a = create({}, token=child)
    eq(a["policies"], ["default", "tok-user", "web"], "no policies: the parent's")
    # Options Vault keeps for root/sudo.
    r = s.req("POST", "auth/token/create", {"no_parent": True}, token=child)
    H.expect_error(r, 400, "no_parent without sudo", "root or sudo privileges required to create orphan token")
    r = s.req("POST", "auth/token/create", {"period": "1h"}, token=child)
    H.expect_error(r, 400, "period without sudo", "root or sudo privileges required to create periodic token")
    r = s.req("POST", "auth/token/create", {"policies": ["root"]}, token=child)
    H.expect_error(r, 400, "root policy from a non-root parent", ["subset of parent", "root tokens may not"])
    # create-orphan is its own path: allowed, within the subset rule.
    a = create({"policies": ["web"]}, token=child, path="auth/token/create-orphan")
    eq(a["orphan"], True, "create-orphan orphan")
    d = s.data("GET", "auth/token/lookup-self", token=a["client_token"])
    eq(d["path"], "auth/token/create-orphan", "create-orphan path")


def test_root_options():
    c = hv()
    a = c.auth.token.create(policies=["web"], no_parent=True, ttl="10m")["auth"]
    eq(a["orphan"], True, "no_parent from root")
    a = c.create_token(policies=["web"], period="30m")["auth"]
    check(1790 <= a["lease_duration"] <= 1800, "periodic lease_duration %r" % a["lease_duration"])
    d = c.lookup_token(a["client_token"])["data"]
    eq(d["period"], 1800, "period in lookup")
    a = c.create_token(policies=["root"])["auth"]
    eq(a["policies"], ["root"], "root child")
    eq(a["lease_duration"], 0, "root child never expires")
    eq(a["renewable"], False, "non-expiring root child is not renewable")
    a = c.create_token(policies=["web"], ttl="1h", explicit_max_ttl="10m")["auth"]
    check(590 <= a["lease_duration"] <= 600, "explicit_max_ttl caps ttl: %r" % a["lease_duration"])
    a = c.create_token(policies=["web"], ttl="2000h")["auth"]
    check(a["lease_duration"] <= 768 * 3600, "ttl capped by the system max: %r" % a["lease_duration"])


# ---------------------------------------------------------------- renewals


def test_renew():
    c = hv()
    a = c.auth.token.create(policies=["web", "tok-user"], ttl="60s", explicit_max_ttl="120s")["auth"]
    tok = a["client_token"]
    cc = hv(tok)
    r = cc.auth.token.renew_self(increment="1h")
    check(r["auth"]["lease_duration"] <= 120, "renew-self capped by explicit_max_ttl: %r" % r["auth"])
    check(r["warnings"] and "capped" in r["warnings"][0], "no cap warning: %r" % r.get("warnings"))
    eq(r["auth"]["client_token"], tok, "renew-self client_token")
    r = c.auth.token.renew(tok, increment="30s")
    check(25 <= r["auth"]["lease_duration"] <= 30, "renew by token: %r" % r["auth"])
    r = c.auth.token.renew_accessor(a["accessor"], increment="40s")
    check(35 <= r["auth"]["lease_duration"] <= 40, "renew-accessor: %r" % r["auth"])
    eq(r["auth"]["client_token"], "", "renew-accessor hides the token")
    d = c.auth.token.lookup(tok)["data"]
    check(d.get("last_renewal_time", 0) > 0, "last_renewal_time after renewals: %r" % d)
    # v1 API: renew_token(None) is renew-self.
    r = cc.renew_token(increment=20)
    check(r["auth"]["lease_duration"] <= 20, "v1 renew_token: %r" % r["auth"])

    s = srv()
    nr = create({"policies": ["web"], "renewable": False, "ttl": "1h"})
    r = s.req("POST", "auth/token/renew-self", {}, token=nr["client_token"])
    H.expect_error(r, 400, "renewing a non-renewable token", "lease is not renewable")
    r = s.req("POST", "auth/token/renew-self", {})
    H.expect_error(r, 400, "renewing the non-expiring root token", "lease is not renewable")


# ---------------------------------------------------------------- revocation


def test_revoke_tree_hvac():
    c = hv()
    p = c.auth.token.create(policies=["web", "tok-user"], ttl="1h")["auth"]
    ch = create({"policies": ["web", "tok-user"]}, token=p["client_token"])
    gc = create({"policies": ["web"]}, token=ch["client_token"])
    orphan = create({"policies": ["web"]}, token=p["client_token"], path="auth/token/create-orphan")
    check(all(alive(t["client_token"]) for t in (p, ch, gc, orphan)), "tree not alive before revoke")
    c.auth.token.revoke(p["client_token"])
    check(not alive(p["client_token"]), "revoked parent still works")
    check(not alive(ch["client_token"]), "child outlived its parent")
    check(not alive(gc["client_token"]), "grandchild outlived its grandparent")
    check(alive(orphan["client_token"]), "an orphan made by the parent died with it")

    # revoke-accessor and revoke-self.
    t1 = create({"policies": ["web"]})
    c.auth.token.revoke_accessor(t1["accessor"])
    check(not alive(t1["client_token"]), "revoke-accessor")
    t2 = create({"policies": ["web"]})
    hv(t2["client_token"]).auth.token.revoke_self()
    check(not alive(t2["client_token"]), "revoke-self")
    keys = c.auth.token.list_accessors()["data"]["keys"]
    check(t1["accessor"] not in keys and t2["accessor"] not in keys, "revoked accessors still listed")
    check(orphan["accessor"] in keys, "live accessor not listed")


def test_revoke_orphan():
    c = hv()
    p = c.auth.token.create(policies=["web", "tok-user"], ttl="1h")["auth"]
    ch = create({"policies": ["web", "tok-user"]}, token=p["client_token"])
    gc = create({"policies": ["web"]}, token=ch["client_token"])
    c.auth.token.revoke_and_orphan_children(p["client_token"])
    check(not alive(p["client_token"]), "revoke-orphan left the token alive")
    check(alive(ch["client_token"]) and alive(gc["client_token"]), "revoke-orphan killed the children")
    d = srv().data("GET", "auth/token/lookup-self", token=ch["client_token"])
    eq(d["orphan"], True, "child is an orphan after revoke-orphan")
    d = srv().data("GET", "auth/token/lookup-self", token=gc["client_token"])
    eq(d["orphan"], False, "grandchild keeps its parent")
    # The former child is now the root of its own tree.
    c.auth.token.revoke(ch["client_token"])
    check(not alive(gc["client_token"]), "grandchild survived its new root's revocation")


# ---------------------------------------------------------------- limits in time and uses


def test_use_limited():
    s = srv()
    a = create({"policies": ["web", "tok-user"], "num_uses": 3})
    tok = a["client_token"]
    eq(a["num_uses"], 3, "num_uses in auth")
    d = s.data("GET", "auth/token/lookup-self", token=tok)
    eq(d["num_uses"], 2, "uses left after one use")
    r = s.req("POST", "auth/token/create", {"policies": ["web"]}, token=tok)
    H.expect_error(r, 400, "child of a use-limited token", "restricted use token cannot generate child tokens")
    d = s.data("GET", "auth/token/lookup-self", token=tok)  # the last use
    eq(d["num_uses"], 0, "no uses left after the last")
    r = lookup_self(tok)
    H.expect_error(r, 403, "a used-up token", "permission denied")
    r = s.req("POST", "auth/token/lookup-accessor", {"accessor": a["accessor"]})
    H.expect_error(r, 400, "lookup of a used-up token's accessor", "invalid accessor")


def test_expiry_and_sweeper():
    s = srv()
    p = create({"policies": ["web", "tok-user"], "ttl": "2s"})
    ch = create({"policies": ["web"], "ttl": "1h"}, token=p["client_token"])
    check(alive(p["client_token"]), "fresh 2s token dead already")
    time.sleep(3)
    r = lookup_self(p["client_token"])
    H.expect_error(r, 403, "an expired token", "permission denied")
    r = s.req("POST", "auth/token/lookup", {"token": p["client_token"]})
    H.expect_error(r, 403, "lookup of an expired token", "bad token")
    r = lookup_self(ch["client_token"])
    H.expect_error(r, 403, "the child of an expired token, before any sweep", "permission denied")
    # The sweeper (every 5s) revokes it with its child and removes the records.
    deadline = time.time() + 20
    keys = None
    while time.time() < deadline:
        keys = s.data("LIST", "auth/token/accessors")["keys"]
        if p["accessor"] not in keys and ch["accessor"] not in keys:
            break
        time.sleep(0.5)
    check(p["accessor"] not in keys, "the sweeper left the expired token's accessor")
    check(ch["accessor"] not in keys, "the sweeper left the expired token's child")
    check(not alive(ch["client_token"]), "child of an expired token still works")


# ---------------------------------------------------------------- storage


def test_restart_and_hashed_storage():
    s = H.Server("dev", name="restart").start()
    a = create_on(s, {"policies": ["web"], "ttl": "1h"})
    tok = a["client_token"]
    s.restart()
    r = s.req("GET", "auth/token/lookup-self", token=tok)
    H.expect_ok(r, "child token after restart")
    eq(r.data["accessor"], a["accessor"], "accessor after restart")
    s.stop()
    # Neither the child nor the root token appears in the store files.
    blob = b""
    for root, _, files in os.walk(s.data_dir):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                blob += fh.read()
    check(len(blob) > 0, "no store files under %s" % s.data_dir)
    check(tok.encode() not in blob, "a token is stored in clear")
    check(s.token.encode() not in blob, "the root token is stored in clear")
    check(tok[4:].encode() not in blob, "a token's random part is stored in clear")


def create_on(s, body):
    r = s.req("POST", "auth/token/create", body)
    H.expect_ok(r, "create on %s" % s.name)
    return r.json()["auth"]


# ---------------------------------------------------------------- cascade to certificates


def test_revoke_cascades_to_certificates():
    s = srv()
    if "pki_ready" not in state:
        H.make_ca(s, "tokpki")  # mounts it too
        s.ok("POST", "tokpki/roles/web", {"allow_any_name": True, "generate_lease": True, "ttl": "1h",
                                          "key_type": "ec", "key_bits": 256}, statuses=(200, 204))
        state["pki_ready"] = True
    s.req("POST", "sys/policies/acl/tokpki", {"policy": 'path "tokpki/issue/web" { capabilities = ["update"] }'})
    p = create({"policies": ["tokpki", "tok-user"], "ttl": "1h"})
    ch = create({"policies": ["tokpki"]}, token=p["client_token"])
    serials = []
    for t in (p, ch):
        r = s.req("POST", "tokpki/issue/web", {"common_name": "a.example.com"}, token=t["client_token"])
        H.expect_ok(r, "issue with a child token")
        j = r.json()
        check(j.get("lease_id", "").startswith("tokpki/issue/web/"), "no lease for a generate_lease role: %r" % j)
        serials.append(j["data"]["serial_number"])
    for sn in serials:
        eq(s.data("GET", "tokpki/cert/" + sn, token="").get("revocation_time", 0), 0, "fresh cert revoked")
    s.ok("POST", "auth/token/revoke", {"token": p["client_token"]}, statuses=(204,))
    for sn in serials:
        check(s.data("GET", "tokpki/cert/" + sn, token="").get("revocation_time", 0) > 0,
              "certificate %s not revoked with its token (or its parent)" % sn)


# ---------------------------------------------------------------- token roles


def test_token_roles_hvac():
    c = hv()
    s = srv()
    c.auth.token.create_or_update_role("ci", allowed_policies=["web", "ops"], orphan=True, path_suffix="v1")
    d = c.auth.token.read_role("ci")["data"]
    eq(d["allowed_policies"], ["ops", "web"], "role allowed_policies")
    eq(d["orphan"], True, "role orphan")
    eq(d["renewable"], True, "role renewable default")
    eq(d["path_suffix"], "v1", "role path_suffix")
    c.create_token_role("ops-only", allowed_policies="ops", period="1h", explicit_max_ttl="2h")
    d = c.token_role("ops-only")["data"]
    eq(d["token_period"], 3600, "v1 role period")
    eq(d["token_explicit_max_ttl"], 7200, "v1 role explicit_max_ttl")
    keys = c.auth.token.list_roles()["data"]["keys"]
    check("ci" in keys and "ops-only" in keys, "list_roles %r" % keys)

    # A non-root caller gets policies its own token lacks, within the role's list.
    parent = create({"policies": ["web", "tok-user"]})
    s.req("POST", "sys/policies/acl/tok-role", {"policy": 'path "auth/token/create/ci" { capabilities = ["update"] }'})
    pt = create({"policies": ["web", "tok-user", "tok-role"]})
    a = create({"policies": ["ops"]}, token=pt["client_token"], path="auth/token/create/ci")
    eq(a["policies"], ["default", "ops"], "role token policies")
    eq(a["orphan"], True, "role token orphan")
    d = s.data("GET", "auth/token/lookup-self", token=a["client_token"])
    eq(d["path"], "auth/token/create/ci/v1", "role token path with suffix")
    r = s.req("POST", "auth/token/create/ci", {"policies": ["admin"]}, token=pt["client_token"])
    H.expect_error(r, 400, "policy outside allowed_policies", "must be subset of the role's allowed policies")
    # Role period and explicit max apply without sudo.
    a = c.auth.token.create(role_name="ops-only")["auth"]
    check(3590 <= a["lease_duration"] <= 3600, "role period: %r" % a)
    eq(a["policies"], ["default", "ops"], "role's allowed policies when none asked")
    c.auth.token.delete_role("ci")
    r = s.req("GET", "auth/token/roles/ci")
    eq(r.status, 404, "deleted role read")
    r = s.req("POST", "auth/token/create/ci", {})
    H.expect_error(r, 400, "create against a deleted role", "unknown role")
    check(alive(parent["client_token"]), "role tests disturbed an unrelated token")


def test_bad_input_roles():
    s = srv()
    cases = [
        ("POST", "auth/token/roles/bad..name", {}, (400, 404), ["role name", "route"]),
        ("POST", "auth/token/roles/-x", {}, 400, "role name"),
        ("POST", "auth/token/roles/r1", {"allowed_policies": 5}, 400, "allowed_policies"),
        ("POST", "auth/token/roles/r1", {"orphan": "perhaps"}, 400, "orphan"),
        ("POST", "auth/token/roles/r1", {"path_suffix": "a/b"}, 400, "path suffix"),
        ("POST", "auth/token/roles/r1", {"token_bound_cidrs": ["10.0.0.0/99"]}, 400, "cidr"),
        ("POST", "auth/token/roles/r1", {"token_explicit_max_ttl": "soon"}, 400, "token_explicit_max_ttl"),
        ("POST", "auth/token/roles/r1", {"token_num_uses": -2}, 400, "token_num_uses"),
        ("POST", "auth/token/roles/r1", {"token_type": "batch"}, 400, "batch"),
        ("POST", "auth/token/roles/r1", "{nope", 400, "json"),
        ("POST", "auth/token/create/no-such-role", {}, 400, "unknown role"),
    ]
    for method, path, body, status, words in cases:
        r = s.req(method, path, body)
        H.expect_error(r, status, "%s %s %r" % (method, path, body), words)
    eq(s.req("GET", "auth/token/roles/r1").status, 404, "a refused role write stored something")


# ---------------------------------------------------------------- bad input


def test_bad_input_create():
    s = srv()
    cases = [
        ("{not json", 400, ["json"]),
        ("[1,2]", 400, ["json", "object"]),
        ({"policies": 5}, 400, ["policies"]),
        ({"policies": [{"a": 1}]}, 400, ["policies"]),
        ({"policies": ["bad/name"]}, 400, ["policy name"]),
        ({"policies": ["p%d" % i for i in range(70)]}, 400, ["too many policies"]),
        ({"ttl": "forever"}, 400, ["ttl"]),
        ({"ttl": {"h": 1}}, 400, ["ttl"]),
        ({"ttl": -5}, 400, ["ttl"]),
        ({"explicit_max_ttl": "-1h"}, 400, ["explicit_max_ttl"]),
        ({"num_uses": "many"}, 400, ["num_uses"]),
        ({"num_uses": -1}, 400, ["number of uses cannot be negative"]),
        ({"renewable": "maybe"}, 400, ["renewable"]),
        ({"no_parent": [True]}, 400, ["no_parent"]),
        ({"meta": "team=pki"}, 400, ["meta"]),
        ({"meta": {"n": 1}}, 400, ["meta"]),
        ({"meta": {"k%d" % i: "v" for i in range(70)}}, 400, ["too many meta"]),
        ({"display_name": 7}, 400, ["display_name"]),
        ({"display_name": "x" * 300}, 400, ["display_name"]),
        ({"type": "batch"}, 400, ["batch"]),
        ({"type": "weird"}, 400, ["token_type"]),
        ({"id": "my-own-token"}, 400, ["custom token ids"]),
        ({"entity_alias": "bob"}, 400, ["entity_alias"]),
    ]
    for body, status, words in cases:
        for path in ("auth/token/create", "auth/token/create-orphan"):
            r = s.req("POST", path, body)
            H.expect_error(r, status, "%s %r" % (path, body), words)


def test_bad_input_lookup_renew_revoke():
    s = srv()
    live_tok = create({"policies": ["web"], "ttl": "1h"})
    cases = [
        ("POST", "auth/token/lookup", {"token": 5}, 400, "token"),
        ("POST", "auth/token/lookup", {"token": "hvs.unknownunknownunknown"}, 403, "bad token"),
        ("POST", "auth/token/lookup", "{bad", 400, "json"),
        ("POST", "auth/token/lookup-accessor", {}, 400, "missing accessor"),
        ("POST", "auth/token/lookup-accessor", {"accessor": ["x"]}, 400, "accessor"),
        ("POST", "auth/token/lookup-accessor", {"accessor": "nosuchaccessor00000000000"}, 400, "invalid accessor"),
        ("POST", "auth/token/lookup-accessor", {"accessor": "../../etc/passwd"}, 400, "invalid accessor"),
        ("POST", "auth/token/lookup-accessor", {"accessor": "a" * 5000}, 400, "invalid accessor"),
        ("POST", "auth/token/renew", {}, 400, "missing token ID"),
        ("POST", "auth/token/renew", {"token": "hvs.unknownunknownunknown"}, 400, "token not found"),
        ("POST", "auth/token/renew", {"token": live_tok["client_token"], "increment": "soon"}, 400, "increment"),
        ("POST", "auth/token/renew", {"token": live_tok["client_token"], "increment": -60}, 400, "increment"),
        ("POST", "auth/token/renew-self", {"increment": [1]}, 400, "increment"),
        ("POST", "auth/token/renew-accessor", {"accessor": "nosuch"}, 400, "invalid accessor"),
        ("POST", "auth/token/revoke", {}, 400, "missing token ID"),
        ("POST", "auth/token/revoke", {"token": 12}, 400, "token"),
        ("POST", "auth/token/revoke-accessor", {}, 400, "missing accessor"),
        ("POST", "auth/token/revoke-accessor", {"accessor": "nosuch"}, 400, "invalid accessor"),
        ("POST", "auth/token/revoke-orphan", {}, 400, "missing token ID"),
        ("POST", "auth/token/revoke-orphan", {"token": "hvs.unknownunknownunknown"}, 400, "token to revoke not found"),
        ("GET", "auth/token/create", None, 405, "unsupported operation"),
        ("DELETE", "auth/token/lookup-self", None, 405, "unsupported operation"),
        ("POST", "auth/token/no-such-path", {}, 404, "route"),
    ]
    for method, path, body, status, words in cases:
        r = s.req(method, path, body)
        H.expect_error(r, status, "%s %s %r" % (method, path, body), words)
    # Revoking an unknown token is not an error, as in Vault.
    s.ok("POST", "auth/token/revoke", {"token": "hvs.unknownunknownunknown"}, statuses=(204,))
    check(alive(live_tok["client_token"]), "a bad request changed a live token")


def test_bad_tokens_everywhere():
    """Expired, revoked, used-up and made-up tokens get 403 on every token endpoint."""
    s = srv()
    expired = create({"policies": ["web", "tok-user"], "ttl": "1s"})["client_token"]
    revoked = create({"policies": ["web", "tok-user"]})
    s.ok("POST", "auth/token/revoke-accessor", {"accessor": revoked["accessor"]}, statuses=(204,))
    used = create({"policies": ["web", "tok-user"], "num_uses": 1})["client_token"]
    s.ok("GET", "auth/token/lookup-self", token=used)
    time.sleep(2)
    paths = [("GET", "auth/token/lookup-self", None), ("POST", "auth/token/create", {}),
             ("POST", "auth/token/create-orphan", {}), ("POST", "auth/token/lookup", {"token": "x"}),
             ("POST", "auth/token/lookup-accessor", {"accessor": "x"}), ("POST", "auth/token/renew-self", {}),
             ("POST", "auth/token/renew", {"token": "x"}), ("POST", "auth/token/renew-accessor", {"accessor": "x"}),
             ("POST", "auth/token/revoke-self", {}), ("POST", "auth/token/revoke", {"token": "x"}),
             ("POST", "auth/token/revoke-accessor", {"accessor": "x"}),
             ("POST", "auth/token/revoke-orphan", {"token": "x"}), ("LIST", "auth/token/accessors", None)]
    for name, tok in (("expired", expired), ("revoked", revoked["client_token"]), ("used-up", used),
                      ("made-up", "hvs.AAAAAAAAAAAAAAAAAAAAAAAA")):
        for method, path, body in paths:
            r = s.req(method, path, body, token=tok)
            H.expect_error(r, 403, "%s token on %s %s" % (name, method, path), "permission denied")


def test_sudo_paths_for_non_root():
    s = srv()
    t = create({"policies": ["web", "tok-user"]})["client_token"]
    victim = create({"policies": ["web"]})
    r = s.req("POST", "auth/token/revoke-orphan", {"token": victim["client_token"]}, token=t)
    H.expect_error(r, (400, 403), "revoke-orphan without sudo", ["sudo", "permission denied"])
    r = s.req("LIST", "auth/token/accessors", token=t)
    H.expect_error(r, 403, "LIST accessors without sudo", "permission denied")
    check(alive(victim["client_token"]), "a refused revoke-orphan revoked the token")
    # Without a policy granting auth/token/create, the router's ACL refuses before the handler.
    plain = create({"policies": ["web"]})["client_token"]
    r = s.req("POST", "auth/token/create", {"policies": ["web"]}, token=plain)
    H.expect_error(r, 403, "create without the capability", "permission denied")
    s.ok("GET", "auth/token/lookup-self", token=plain)  # the default policy covers the -self paths


H.main(globals())
