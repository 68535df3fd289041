#!/usr/bin/python3
"""AppRole and auth mounts, driven by hvac 0.11 (client.auth.approle, client.sys.*auth_method*)
and curl for the bad input: sys/auth, several mounts of one type, roles, role ids, secret ids
(generate, lookup, destroy, accessor variants, custom), login, and every refusal (wrong or
reused or expired secret ids, exhausted uses, CIDR bindings on the secret id, the role and the
token) with its status and message."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check, eq  # noqa: E402

state = {}
ISSUE_POLICY = """
# The workload may issue web certificates and nothing else.
path "pki/issue/web" {
  capabilities = ["update"]
}
"""


def srv():
    return H.dev_server("approle")


def client(token=None):
    return H.hvac_client(srv(), token)


def hvac_exc():
    import hvac.exceptions as E
    return E


def expect_raise(exc, fn, what, contains=None):
    try:
        fn()
    except exc as e:
        if contains is not None:
            check(contains.lower() in str(e).lower(), "%s: %r does not mention %r" % (what, str(e), contains))
        return e
    except Exception as e:  # noqa: BLE001
        raise H.TestFailure("%s: raised %s (%s), want %s" % (what, type(e).__name__, e, exc.__name__))
    raise H.TestFailure("%s: no error, want %s" % (what, exc.__name__))


def login_raw(role_id, secret_id=None, mount="approle", **kw):
    body = {"role_id": role_id}
    if secret_id is not None:
        body["secret_id"] = secret_id
    return srv().req("POST", "auth/%s/login" % mount, body, token="", **kw)


def new_secret(role, mount="approle", **params):
    c = client()
    r = c.auth.approle.generate_secret_id(role, mount_point=mount, **params)
    return r["data"]


def role_id(role, mount="approle"):
    return client().auth.approle.read_role_id(role, mount_point=mount)["data"]["role_id"]


# ---------------------------------------------------------------- sys/auth


def test_enable_list_and_mounts_of_one_type():
    s = srv()
    c = client()
    c.sys.enable_auth_method("approle")
    c.sys.enable_auth_method("approle", path="approle-prod", description="production apps")
    c.sys.enable_auth_method("approle", path="approle-dev")
    listing = c.sys.list_auth_methods()
    data = listing.get("data", listing)
    for p in ("token/", "approle/", "approle-prod/", "approle-dev/"):
        check(p in data, "sys/auth lacks %s: %r" % (p, sorted(data)))
    eq(data["approle/"]["type"], "approle", "type")
    eq(data["token/"]["type"], "token", "token/ is built in")
    eq(data["approle-prod/"]["description"], "production apps", "description")
    accs = [data[p]["accessor"] for p in ("approle/", "approle-prod/", "approle-dev/")]
    check(all(a.startswith("auth_approle_") and len(a) == len("auth_approle_") + 8 for a in accs),
          "accessors %r" % accs)
    eq(len(set(accs)), 3, "distinct accessors")
    state["accessor"] = accs[0]
    # The same path twice, a path inside another, the token mount, an unknown type.
    r = s.req("POST", "sys/auth/approle", {"type": "approle"})
    H.expect_error(r, 400, "enable twice", "path is already in use at approle/")
    r = s.req("POST", "sys/auth/approle/nested", {"type": "approle"})
    H.expect_error(r, 400, "enable under another", "already in use")
    r = s.req("DELETE", "sys/auth/token")
    H.expect_error(r, 400, "disable token/", "cannot be disabled")
    r = s.req("POST", "sys/auth/tok2", {"type": "token"})
    H.expect_error(r, 400, "enable type token", "token")
    r = s.req("POST", "sys/auth/x", {"type": "ldap"})
    H.expect_error(r, 400, "unknown type", "plugin not found in the catalog: ldap")
    r = s.req("POST", "sys/auth/x", {})
    H.expect_error(r, 400, "no type", "type")
    r = s.req("POST", "sys/auth/bad%20path", {"type": "approle"})
    H.expect_error(r, 400, "bad path")
    r = s.req("POST", "sys/auth/x", {"type": "approle", "config": {"default_lease_ttl": "2h",
                                                                   "max_lease_ttl": "1h"}})
    H.expect_error(r, 400, "default above max", "max_lease_ttl")
    # Without a token: 403.
    r = s.req("GET", "sys/auth", token="")
    H.expect_error(r, 403, "sys/auth without a token")
    # Read and tune one mount.
    d = s.data("GET", "sys/auth/approle-dev")
    eq(d["type"], "approle", "sys/auth/:path read")
    s.ok("POST", "sys/auth/approle-dev/tune", {"max_lease_ttl": "2h", "default_lease_ttl": "30m"},
         statuses=(200, 204))
    d = s.data("GET", "sys/auth/approle-dev/tune")
    eq((d["default_lease_ttl"], d["max_lease_ttl"]), (1800, 7200), "tuned TTLs")


def test_mounts_are_separate():
    c = client()
    c.auth.approle.create_or_update_approle("shared-name", token_policies=["prod"], mount_point="approle-prod")
    c.auth.approle.create_or_update_approle("shared-name", token_policies=["dev"], mount_point="approle-dev")
    rp = c.auth.approle.read_role("shared-name", mount_point="approle-prod")["data"]
    rd = c.auth.approle.read_role("shared-name", mount_point="approle-dev")["data"]
    eq(rp["token_policies"], ["prod"], "prod role")
    eq(rd["token_policies"], ["dev"], "dev role")
    E = hvac_exc()
    expect_raise(E.InvalidPath, lambda: c.auth.approle.read_role("shared-name"), "role absent from approle/")
    # A secret id of one mount does not log in at the other.
    sid = new_secret("shared-name", mount="approle-prod")["secret_id"]
    rid = role_id("shared-name", mount="approle-prod")
    r = login_raw(rid, sid, mount="approle-dev")
    H.expect_error(r, 400, "prod credentials at approle-dev", "invalid role or secret id")
    auth = H.curl(srv().url + "/v1/auth/approle-prod/login", "POST", {"role_id": rid, "secret_id": sid}).json()
    tok = auth["auth"]["client_token"]
    # A login's TTL defaults to its mount's: the system 768h at approle-prod, the tuned 30m at approle-dev.
    eq(auth["auth"]["lease_duration"], 768 * 3600, "approle-prod login TTL")
    dev = H.curl(srv().url + "/v1/auth/approle-dev/login", "POST",
                 {"role_id": role_id("shared-name", mount="approle-dev"),
                  "secret_id": new_secret("shared-name", mount="approle-dev")["secret_id"]}).json()
    eq(dev["auth"]["lease_duration"], 1800, "approle-dev login TTL (tuned default)")
    eq(dev["auth"]["policies"], ["default", "dev"], "approle-dev policies")
    # Disabling a mount revokes the tokens it issued and purges its roles; other mounts' tokens live on.
    s = srv()
    dev_tok = dev["auth"]["client_token"]
    eq(s.req("GET", "auth/token/lookup-self", token=tok).status, 200, "prod token works")
    eq(s.req("GET", "auth/token/lookup-self", token=dev_tok).status, 200, "dev token works")
    s.ok("DELETE", "sys/auth/approle-dev", statuses=(204,))
    H.expect_error(s.req("GET", "auth/token/lookup-self", token=dev_tok), 403, "dev token after disable")
    eq(s.req("GET", "auth/token/lookup-self", token=tok).status, 200, "prod token after disabling dev")
    s.ok("DELETE", "sys/auth/approle-dev", statuses=(204,))  # absent: still 204, as Vault
    client().sys.enable_auth_method("approle", path="approle-dev")
    expect_raise(E.InvalidPath, lambda: c.auth.approle.read_role("shared-name", mount_point="approle-dev"),
                 "role gone after disable and enable")
    r = s.req("POST", "auth/approle-gone/login", {"role_id": "x"}, token="")
    check(r.status in (403, 404), "login at a path with no mount: HTTP %d" % r.status)


# ---------------------------------------------------------------- roles


def test_role_crud():
    c = client()
    c.auth.approle.create_or_update_approle("web", token_policies=["Web-Issue", "default"], token_ttl="1h",
                                            token_max_ttl="4h", secret_id_ttl="10m", secret_id_num_uses=3,
                                            token_bound_cidrs=["127.0.0.0/8"])
    d = c.auth.approle.read_role("web")["data"]
    eq(d["token_policies"], ["default", "web-issue"], "policies sanitised")
    eq((d["token_ttl"], d["token_max_ttl"], d["secret_id_ttl"], d["secret_id_num_uses"]), (3600, 14400, 600, 3),
       "role durations and counts")
    eq(d["bind_secret_id"], True, "bind_secret_id default")
    eq(d["token_bound_cidrs"], ["127.0.0.0/8"], "token_bound_cidrs")
    eq(d["token_type"], "default", "token_type default")
    # Update keeps what the body does not name.
    c.auth.approle.create_or_update_approle("web", token_policies=["web-issue"])
    d = c.auth.approle.read_role("web")["data"]
    eq((d["token_ttl"], d["token_policies"]), (3600, ["web-issue"]), "partial update")
    c.auth.approle.create_or_update_approle("other")
    keys = c.auth.approle.list_roles()["data"]["keys"]
    eq(sorted(keys), ["other", "web"], "list_roles")
    rid = role_id("web")
    check(len(rid) == 36, "role_id %r" % rid)
    eq(role_id("web"), rid, "role_id stable")
    c.auth.approle.update_role_id("other", "custom-other-id")
    eq(role_id("other"), "custom-other-id", "update_role_id")
    s = srv()
    r = s.req("POST", "auth/approle/role/web/role-id", {"role_id": "custom-other-id"})
    H.expect_error(r, 400, "role_id taken by another role", "already in use")
    c.auth.approle.delete_role("other")
    eq(c.auth.approle.list_roles()["data"]["keys"], ["web"], "list after delete")
    E = hvac_exc()
    expect_raise(E.InvalidPath, lambda: c.auth.approle.read_role_id("other"), "role-id of a deleted role")
    # The freed role id can be taken again.
    c.auth.approle.create_or_update_approle("third")
    c.auth.approle.update_role_id("third", "custom-other-id")
    c.auth.approle.delete_role("third")
    state["rid"] = rid


def test_role_bad_input():
    s = srv()
    cases = [
        ({"bind_secret_id": False}, "at least one constraint"),
        ({"secret_id_num_uses": -1}, "negative"),
        ({"secret_id_ttl": "sometime"}, "secret_id_ttl"),
        ({"token_ttl": "2h", "token_max_ttl": "1h"}, "token_max_ttl"),
        ({"token_bound_cidrs": "10.0.0.0/40"}, "token_bound_cidrs"),
        ({"secret_id_bound_cidrs": ["nonsense"]}, "secret_id_bound_cidrs"),
        ({"token_type": "batch"}, "not supported"),
        ({"token_num_uses": "many"}, "token_num_uses"),
        ({"role_id": "with space"}, "role_id"),
        ({"bind_secret_id": "perhaps"}, "bind_secret_id"),
    ]
    for body, want in cases:
        r = s.req("POST", "auth/approle/role/bad", body)
        H.expect_error(r, 400, "role body %r" % body, want)
    eq(s.req("GET", "auth/approle/role/bad").status, 404, "a refused role was not stored")
    r = s.req("POST", "auth/approle/role/-dash", {})
    H.expect_error(r, 400, "role name starting with '-'", "role name")
    r = s.req("POST", "auth/approle/role/web", "{not json")
    H.expect_error(r, 400, "malformed JSON")
    r = s.req("POST", "auth/approle/role/nope/secret-id", {})
    H.expect_error(r, 400, "secret-id of an absent role", "does not exist")
    s.ok("POST", "auth/approle/role/nobind", {"bind_secret_id": False, "secret_id_bound_cidrs": "127.0.0.1/32"},
         statuses=(204,))
    r = s.req("POST", "auth/approle/role/nobind/secret-id", {})
    H.expect_error(r, 400, "secret-id with bind_secret_id false", "bind_secret_id is not set")
    # Role operations need a token.
    r = s.req("POST", "auth/approle/role/web", {}, token="")
    H.expect_error(r, 403, "role write without a token")


# ---------------------------------------------------------------- secret ids and login


def test_login_and_use_the_token():
    s = srv()
    c = client()
    c.sys.create_or_update_policy("web-issue", ISSUE_POLICY)
    # Dev mode has a ready "pki" mount with a default issuer.
    s.ok("POST", "pki/roles/web", {"allowed_domains": "example.com", "allow_subdomains": True, "key_type": "ec",
                                   "ttl": "1h"}, statuses=(200, 204))
    sec = new_secret("web", metadata={"team": "blue", "env": "test"})
    check(len(sec["secret_id"]) == 36 and len(sec["secret_id_accessor"]) == 36, "secret id %r" % sec)
    eq((sec["secret_id_ttl"], sec["secret_id_num_uses"]), (600, 3), "secret id inherits the role's limits")
    app = H.hvac_client(s, token="")
    resp = app.auth.approle.login(state["rid"], sec["secret_id"])
    auth = resp["auth"]
    tok = auth["client_token"]
    check(tok.startswith("hvs."), "token %r" % tok)
    eq(app.token, tok, "hvac adopted the token")
    eq(sorted(auth["policies"]), ["default", "web-issue"], "login policies")
    eq(auth["metadata"], {"role_name": "web", "team": "blue", "env": "test"}, "login metadata")
    eq(auth["lease_duration"], 3600, "token_ttl")
    eq((auth["renewable"], auth["orphan"], auth["token_type"]), (True, True, "service"), "token shape")
    eq(resp.get("mount_type"), "approle", "mount_type")
    me = app.lookup_token()["data"]
    eq(me["path"], "auth/approle/login", "token path")
    eq(me["display_name"], "approle", "display name")
    eq(me["meta"]["role_name"], "web", "token meta")
    # The token issues what its policy allows and nothing else.
    d = s.data("POST", "pki/issue/web", {"common_name": "svc.example.com"}, token=tok)
    check("BEGIN CERTIFICATE" in d["certificate"], "issued with the AppRole token")
    r = s.req("GET", "sys/mounts", token=tok)
    H.expect_error(r, 403, "sys/mounts with the AppRole token")
    r = s.req("POST", "pki/roles/evil", {"allow_any_name": True}, token=tok)
    H.expect_error(r, 403, "role write with the AppRole token")
    # Renewal up to token_max_ttl.
    r = app.renew_self(increment="2h") if hasattr(app, "renew_self") else app.auth.token.renew_self(increment="2h")
    eq(r["auth"]["lease_duration"], 7200, "renewed")
    state["sec"] = sec


def test_secret_id_lookup_list_destroy():
    s = srv()
    c = client()
    sec = state["sec"]
    d = c.auth.approle.read_secret_id("web", sec["secret_id"])["data"]
    eq(d["secret_id_accessor"], sec["secret_id_accessor"], "lookup accessor")
    eq(d["secret_id_num_uses"], 2, "one use counted")
    eq(d["metadata"], {"team": "blue", "env": "test"}, "lookup metadata")
    check(d["expiration_time"] > d["creation_time"], "expiration after creation: %r" % d)
    check("secret_id" not in d, "lookup does not echo the secret id")
    d2 = c.auth.approle.read_secret_id_accessor("web", sec["secret_id_accessor"])["data"]
    eq(d2["secret_id_num_uses"], 2, "lookup by accessor")
    more = new_secret("web", cidr_list=["127.0.0.1/32"])
    keys = c.auth.approle.list_secret_id_accessors("web")["data"]["keys"]
    eq(sorted(keys), sorted([sec["secret_id_accessor"], more["secret_id_accessor"]]), "LIST secret-id")
    c.auth.approle.destroy_secret_id("web", more["secret_id"])
    r = login_raw(state["rid"], more["secret_id"])
    H.expect_error(r, 400, "destroyed secret id", "invalid role or secret id")
    c.auth.approle.destroy_secret_id_accessor("web", sec["secret_id_accessor"])
    r = login_raw(state["rid"], sec["secret_id"])
    H.expect_error(r, 400, "secret id destroyed by accessor", "invalid role or secret id")
    r = s.req("POST", "auth/approle/role/web/secret-id-accessor/lookup", {"secret_id_accessor": "nope"})
    H.expect_error(r, 404, "lookup of an unknown accessor", "accessor")
    r = s.req("POST", "auth/approle/role/web/secret-id-accessor/destroy", {"secret_id_accessor": "nope"})
    H.expect_error(r, 404, "destroy of an unknown accessor", "accessor")
    r = s.req("POST", "auth/approle/role/web/secret-id/lookup", {"secret_id": "00000000-dead-beef"})
    H.expect_error(r, 404, "lookup of an unknown secret id")
    r = s.req("POST", "auth/approle/role/web/secret-id/lookup", {})
    H.expect_error(r, 400, "lookup without secret_id", "missing secret_id")
    # Custom secret ids, once.
    c.auth.approle.create_custom_secret_id("web", "my-chosen-secret-0001")
    r = s.req("POST", "auth/approle/role/web/custom-secret-id", {"secret_id": "my-chosen-secret-0001"})
    H.expect_error(r, 400, "custom secret id twice", "already registered")
    r = login_raw(state["rid"], "my-chosen-secret-0001")
    eq(r.status, 200, "login with the custom secret id")
    # Secret-id generation narrows, never widens, the role's limits.
    r = s.req("POST", "auth/approle/role/web/secret-id", {"ttl": "1h"})
    H.expect_error(r, 400, "secret id ttl above the role's", "secret_id_ttl")
    r = s.req("POST", "auth/approle/role/web/secret-id", {"num_uses": 10})
    H.expect_error(r, 400, "secret id uses above the role's", "secret_id_num_uses")
    r = s.req("POST", "auth/approle/role/web/secret-id", {"metadata": "not json"})
    H.expect_error(r, 400, "metadata not JSON", "metadata")
    r = s.req("POST", "auth/approle/role/web/secret-id", {"cidr_list": "10.0.0.0/99"})
    H.expect_error(r, 400, "bad cidr_list", "cidr")


def test_login_refusals():
    s = srv()
    rid = state["rid"]
    good = new_secret("web")["secret_id"]
    cases = [
        ({"secret_id": good}, "missing role_id"),
        ({"role_id": rid}, "missing secret_id"),
        ({"role_id": "not-a-role-id", "secret_id": good}, "invalid role or secret ID"),
        ({"role_id": rid, "secret_id": "00000000-0000-4000-8000-000000000000"}, "invalid role or secret ID"),
        ({"role_id": rid, "secret_id": good + "x"}, "invalid role or secret ID"),
        ({"role_id": 12345, "secret_id": good}, "role_id"),
        ({"role_id": rid, "secret_id": ["a"]}, "secret_id"),
        ({"role_id": "r" * 5000, "secret_id": good}, "invalid role or secret ID"),
    ]
    for body, want in cases:
        r = s.req("POST", "auth/approle/login", body, token="")
        H.expect_error(r, 400, "login %r" % {k: str(v)[:20] for k, v in body.items()}, want)
    r = s.req("POST", "auth/approle/login", "{\"role_id\":", token="")
    H.expect_error(r, 400, "login with malformed JSON")
    r = s.req("GET", "auth/approle/login", token="")
    check(r.status in (403, 405), "GET login: HTTP %d" % r.status)
    # The good secret id still works after all that.
    eq(login_raw(rid, good).status, 200, "untouched secret id logs in")
    E = hvac_exc()
    expect_raise(E.InvalidRequest, lambda: H.hvac_client(s, "").auth.approle.login(rid, "wrong"),
                 "hvac login with a wrong secret id", "invalid role or secret id")


def test_reused_and_exhausted_secret_ids():
    c = client()
    c.auth.approle.create_or_update_approle("once", token_policies=["default"], secret_id_num_uses=1)
    c.auth.approle.create_or_update_approle("twice", token_policies=["default"], secret_id_num_uses=2)
    rid1, rid2 = role_id("once"), role_id("twice")
    s1 = new_secret("once")["secret_id"]
    eq(login_raw(rid1, s1).status, 200, "first use")
    H.expect_error(login_raw(rid1, s1), 400, "reused one-use secret id", "invalid role or secret ID")
    s2 = new_secret("twice")["secret_id"]
    eq(login_raw(rid2, s2).status, 200, "use 1/2")
    eq(login_raw(rid2, s2).status, 200, "use 2/2")
    H.expect_error(login_raw(rid2, s2), 400, "exhausted secret_id_num_uses", "invalid role or secret ID")
    r = srv().req("LIST", "auth/approle/role/twice/secret-id")
    eq(r.status, 404, "no secret ids left to list")


def test_expired_secret_id():
    c = client()
    c.auth.approle.create_or_update_approle("brief", token_policies=["default"], secret_id_ttl="2s")
    rid = role_id("brief")
    sid = new_secret("brief")["secret_id"]
    other = new_secret("brief")["secret_id"]
    eq(login_raw(rid, sid).status, 200, "fresh secret id")
    time.sleep(3)
    H.expect_error(login_raw(rid, sid), 400, "expired secret id", "expired")
    H.expect_error(login_raw(rid, sid), 400, "expired secret id again", "invalid role or secret ID")
    r = srv().req("POST", "auth/approle/role/brief/secret-id/lookup", {"secret_id": other})
    eq(r.status, 404, "expired secret id reads as absent")
    srv().ok("POST", "auth/approle/tidy/secret-id", statuses=(200, 204))
    eq(srv().req("LIST", "auth/approle/role/brief/secret-id").status, 404, "tidy removed the expired one")


def test_cidr_bindings():
    s = srv()
    c = client()
    # The role's secret_id_bound_cidrs: tests run from 127.0.0.1, so 10.0.0.0/8 refuses them.
    c.auth.approle.create_or_update_approle("far", secret_id_bound_cidrs=["10.0.0.0/8"])
    rid = role_id("far")
    sid = new_secret("far")["secret_id"]
    H.expect_error(login_raw(rid, sid), 400, "login outside secret_id_bound_cidrs",
                   'source address "127.0.0.1" unauthorized by CIDR restrictions on the role')
    # A secret id's cidr_list must lie inside the role's, and binds the login.
    r = s.req("POST", "auth/approle/role/far/secret-id", {"cidr_list": "192.168.0.0/16"})
    H.expect_error(r, 400, "secret id CIDRs outside the role's", "cidr")
    c.auth.approle.create_or_update_approle("near", secret_id_bound_cidrs=["127.0.0.0/8", "10.0.0.0/8"])
    rid = role_id("near")
    far_sid = new_secret("near", cidr_list=["10.1.0.0/16"])["secret_id"]
    H.expect_error(login_raw(rid, far_sid), 400, "login outside the secret id's cidr_list",
                   'source address "127.0.0.1" unauthorized by CIDR restrictions on the secret ID')
    near_sid = new_secret("near", cidr_list=["127.0.0.1/32"])["secret_id"]
    eq(login_raw(rid, near_sid).status, 200, "login inside the secret id's cidr_list")
    # bind_secret_id false: the role id alone, from inside the CIDRs only.
    c.auth.approle.create_or_update_approle("open", bind_secret_id=False, secret_id_bound_cidrs=["127.0.0.1/32"])
    eq(login_raw(role_id("open")).status, 200, "role-id-only login from an allowed address")
    c.auth.approle.create_or_update_approle("open-far", bind_secret_id=False, secret_id_bound_cidrs=["10.0.0.0/8"])
    H.expect_error(login_raw(role_id("open-far")), 400, "role-id-only login from elsewhere", "unauthorized")
    # token_bound_cidrs: the login succeeds, but the token only works from inside the CIDRs (403 here).
    c.auth.approle.create_or_update_approle("tokfar", token_policies=["default"], token_bound_cidrs=["10.0.0.0/8"])
    r = login_raw(role_id("tokfar"), new_secret("tokfar")["secret_id"])
    eq(r.status, 200, "login with token_bound_cidrs elsewhere")
    tok = r.json()["auth"]["client_token"]
    r = s.req("GET", "auth/token/lookup-self", token=tok)
    H.expect_error(r, 403, "token used outside token_bound_cidrs", "permission denied")
    # A secret id's token_bound_cidrs override the role's (inside them).
    c.auth.approle.create_or_update_approle("tokbind", token_policies=["default"],
                                            token_bound_cidrs=["127.0.0.0/8", "10.0.0.0/8"])
    sec = new_secret("tokbind", token_bound_cidrs=["10.2.0.0/16"])
    tok = login_raw(role_id("tokbind"), sec["secret_id"]).json()["auth"]["client_token"]
    H.expect_error(s.req("GET", "auth/token/lookup-self", token=tok), 403, "secret id's token_bound_cidrs")
    r = s.req("POST", "auth/approle/role/tokbind/secret-id", {"token_bound_cidrs": "172.16.0.0/12"})
    H.expect_error(r, 400, "secret id token CIDRs outside the role's", "token_bound_cidrs")


def test_secrets_stored_hashed_and_persist():
    s = srv()
    sec = new_secret("web")
    rid = state["rid"]
    # Nothing in the store holds the secret id in clear.
    data = b""
    for name in os.listdir(s.data_dir):
        p = os.path.join(s.data_dir, name)
        if os.path.isfile(p) and name.endswith(".mdb"):
            with open(p, "rb") as f:
                data += f.read()
    check(len(data) > 0, "no LMDB files in %s" % s.data_dir)
    check(sec["secret_id"].encode() not in data, "secret id stored in clear")
    check(sec["secret_id_accessor"].encode() in data, "accessor stored (sanity check of the scan)")
    # Mounts, roles and secret ids survive a restart; the mount accessor is stable.
    s.restart()
    listing = client().sys.list_auth_methods()
    data = listing.get("data", listing)
    eq(data["approle/"]["accessor"], state["accessor"], "accessor after restart")
    eq(login_raw(rid, sec["secret_id"]).status, 200, "login after restart")


H.main(globals())
