#!/usr/bin/python3
"""ACL policies end to end.

The matrix: for EVERY route of the server (the tables as `sigil routes`
prints them: sys/, the PKI engine, every auth method type this build has)
and each of its methods, a token whose policy grants every capability but
the one the route needs is refused with 403 before the handler runs, and a
token holding exactly that capability is not (any status but 403).
Root-protected routes also need sudo; routes with an existence check need
"create" for a new object and "update" for an existing one.

Then hvac writes and reads policies in both forms, and the precedence,
default-policy and capabilities behaviour is checked over HTTP.
"""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check, eq  # noqa: E402

PKI = "aclpki"
CAPS = ["create", "read", "update", "patch", "delete", "list"]
METHOD_CAP = {"GET": "read", "LIST": "list", "DELETE": "delete", "PATCH": "patch", "POST": "update"}
# Bodies that make a valid object on create-or-update routes (the other half of the check needs one to exist).
JWT_ROLE = {"role_type": "jwt", "user_claim": "sub", "bound_audiences": ["acl"]}
OBJECT_BODIES = {
    ("kubernetes", "role/:name"): {"bound_service_account_names": ["sa"], "bound_service_account_namespaces": ["ns"]},
    ("jwt", "role/:name"): JWT_ROLE,
    ("oidc", "role/:name"): JWT_ROLE,
    ("kubernetes", "config"): {"kubernetes_host": "https://127.0.0.1:6443"},
}
state = {}


def server():
    if "srv" not in state:
        srv = H.Server("dev", name="acl").start()
        state["srv"] = srv
        state["http"] = H.Http(srv.url, token=srv.token)
        state["n"] = 0
        # A PKI mount of its own: the matrix may delete its CA ("root" DELETE) without harm.
        H.enable_pki(srv, PKI)
    return state["srv"]


def http():
    server()
    return state["http"]


def routes():
    """The route tables, read from the binary itself."""
    if "routes" not in state:
        p = subprocess.run([H.SIGIL_BIN, "routes"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        eq(p.returncode, 0, "sigil routes exit status (%s)" % p.stderr.decode()[-300:])
        state["routes"] = json.loads(p.stdout.decode())
    return state["routes"]


def uniq():
    server()
    state["n"] += 1
    return state["n"]


def req(method, path, token, body=None):
    h = http()
    if method in ("POST", "PATCH", "PUT") and body is None:
        body = {}
    headers = {"Content-Type": "application/merge-patch+json"} if method == "PATCH" else None
    return h.request(method, "/v1/" + path, body=body, token=token, headers=headers)


def root_ok(method, path, body=None, statuses=(200, 204)):
    r = req(method, path, server().token, body)
    H.expect_ok(r, "%s %s (root)" % (method, path), statuses)
    return r


def put_policy(name, text):
    root_ok("POST", "sys/policies/acl/" + name, {"policy": text})


def token_with(caps_by_path, label):
    """A token whose only policy grants caps_by_path {path: [caps]} (no default policy)."""
    name = "m%d-%s" % (uniq(), label)
    if caps_by_path:
        text = "\n".join('path "%s" {\n  capabilities = %s\n}' % (p, json.dumps(c))
                         for p, c in caps_by_path.items() if c)
    else:
        text = "# nothing"
    put_policy(name, text or "# nothing")
    r = root_ok("POST", "auth/token/create", {"policies": [name], "no_default_policy": True, "ttl": "30m"},
                statuses=(200,))
    return r.json()["auth"]["client_token"]


def concrete(pattern, tag):
    """A path for a pattern: every capture becomes a name no test created."""
    return "/".join(("acl%s%s" % (tag, seg[1:].replace("_", "")) if seg[:1] in (":", "*") else seg)
                    for seg in pattern.split("/"))


def expect_denied(r, what):
    H.expect_error(r, 403, what, contains="permission denied")


def expect_not_denied(r, what):
    check(r.status != 403, "%s: HTTP 403 with the capability granted: %s" % (what, r.body[:300]))
    if r.status >= 500:
        # Not this test's business (the handler ran, so authorization passed), but worth seeing.
        H.log("note: %s answered %d: %s" % (what, r.status, r.body[:200]))


def exists(path):
    return req("GET", path, server().token).status == 200


def check_route(prefix, route, counts, table_name):
    """Every method of one route: denied without its capability, not denied with exactly it."""
    if route["auth"] == "none":
        counts["public"] += 1
        return
    tag = str(uniq())
    path = prefix + concrete(route["pattern"], tag)
    for method in route["methods"]:
        what = "%s %s [%s]" % (method, path, route["pattern"])
        need = METHOD_CAP[method]
        extra = ["sudo"] if route["sudo"] else []
        # No token at all.
        expect_denied(req(method, path, ""), what + " without a token")
        if method == "POST" and route["existence"]:
            check_existence_route(path, what, extra, counts, OBJECT_BODIES.get((table_name, route["pattern"]), {}))
            continue
        others = [c for c in CAPS if c != need] + extra
        expect_denied(req(method, path, token_with({path: others}, "all-but-" + need)),
                      what + " with every capability but %s" % need)
        if route["sudo"]:
            expect_denied(req(method, path, token_with({path: [need]}, need + "-no-sudo")),
                          what + " with %s but without sudo" % need)
        # A broader grant elsewhere must not leak in either.
        expect_denied(req(method, path, token_with({"nothing/here/*": CAPS + ["sudo"]}, "elsewhere")),
                      what + " with capabilities on another path only")
        expect_not_denied(req(method, path, token_with({path: [need] + extra}, "only-" + need)),
                          what + " with exactly %s" % "+".join([need] + extra))
        counts["checked"] += 1


def check_existence_route(path, what, extra, counts, body):
    """POST on a route with an existence check: create for a new object, update for an existing one."""
    check(not exists(path), "%s: the object exists before the test" % what)
    expect_denied(req("POST", path, token_with({path: ["update"] + extra}, "update-new"), body),
                  what + " (new object) with update only")
    expect_denied(req("POST", path, token_with({path: [c for c in CAPS if c != "create"] + extra}, "no-create"),
                      body), what + " (new object) with every capability but create")
    check(not exists(path), "%s: a refused request created the object" % what)
    r = req("POST", path, token_with({path: ["create"] + extra}, "create-new"), body)
    expect_not_denied(r, what + " (new object) with create")
    check(exists(path), "%s: POST %s with create did not make the object: %s" % (what, json.dumps(body), r.body[:300]))
    expect_denied(req("POST", path, token_with({path: ["create"] + extra}, "create-old"), body),
                  what + " (existing object) with create only")
    expect_not_denied(req("POST", path, token_with({path: ["update"] + extra}, "update-old"), body),
                      what + " (existing object) with update")
    counts["checked"] += 1
    counts["existence"] += 1


def run_table(prefix, table, what, table_name):
    counts = {"checked": 0, "public": 0, "existence": 0}
    for route in table:
        check_route(prefix, route, counts, table_name)
    H.log("%s: %d token routes checked (%d with an existence check), %d public" %
          (what, counts["checked"], counts["existence"], counts["public"]))
    check(counts["checked"] > 0, "%s: no token route checked" % what)
    return counts


# ------------------------------------------------------------------ the matrix


def test_routes_listing():
    t = routes()
    check(len(t["sys"]["routes"]) > 10 and len(t["pki"]["routes"]) > 40, "route tables look empty: %r" %
          {k: len(v.get("routes", [])) for k, v in t.items() if isinstance(v, dict)})
    pki = {(r["pattern"], tuple(r["methods"])): r for r in t["pki"]["routes"]}
    check(pki[("roles/:name", ("POST",))]["existence"], "pki roles/:name POST declares no existence check")
    check(pki[("root", ("DELETE",))]["sudo"], "pki root DELETE is not root-protected")
    check(not pki[("issue/:role", ("POST",))]["existence"], "issue/:role must need update, not create")
    check(pki[("ca", ("GET",))]["auth"] == "none", "pki ca is public")
    check("token" in t["auth"]["types"], "no auth/token table listed: %r" % list(t["auth"]["types"]))


def test_matrix_sys():
    run_table("sys/", routes()["sys"]["routes"], "sys", "sys")


def test_matrix_pki():
    c = run_table(PKI + "/", routes()["pki"]["routes"], "pki", "pki")
    check(c["existence"] >= 1, "pki roles/:name was not checked as create-or-update")


def test_matrix_auth_token():
    run_table("auth/token/", routes()["auth"]["types"]["token"], "auth/token", "token")


def test_matrix_auth_methods():
    """Every other auth method type this build has, each mounted once."""
    types = [t for t in routes()["auth"]["types"] if t != "token"]
    for t in types:
        mount = "acl-" + t
        root_ok("POST", "sys/auth/" + mount, {"type": t})
        c = run_table("auth/%s/" % mount, routes()["auth"]["types"][t], "auth/" + t, t)
        if t in ("approle", "kubernetes", "jwt", "oidc"):
            check(c["existence"] >= 1, "auth/%s: its role route was not checked as create-or-update" % t)
    H.log("auth method types checked: %s" % (", ".join(types) or "(none in this build)"))
    check("approle" in types, "approle is not among the auth method tables: %r" % types)


def test_unknown_paths_hide_behind_403():
    """A path or method that does not exist answers 404/405 only to a caller allowed there."""
    srv = server()
    nobody = token_with({"nothing/*": ["read"]}, "nobody")
    expect_denied(req("GET", "sys/no-such-thing", nobody), "unknown sys path, no grant")
    expect_denied(req("GET", PKI + "/no-such-thing", nobody), "unknown pki path, no grant")
    expect_denied(req("DELETE", PKI + "/issue/web", nobody), "unsupported method, no grant")
    eq(req("GET", "sys/no-such-thing", srv.token).status, 404, "unknown sys path, root")
    eq(req("DELETE", PKI + "/issue/web", srv.token).status, 405, "unsupported method, root")
    granted = token_with({PKI + "/*": ["read", "delete"]}, "pki-reader")
    eq(req("GET", PKI + "/no-such-thing", granted).status, 404, "unknown pki path, read granted")
    eq(req("DELETE", PKI + "/issue/web", granted).status, 405, "unsupported method, delete granted")


# ------------------------------------------------------------------ policies over the API


HCL = '''
# Requesters of web certificates
path "%(m)s/issue/web" {
  capabilities = ["update"]   // the issue endpoint has no existence check
}

/* everything under the mount is readable ... */
path "%(m)s/*" {
  capabilities = ["read", "list"]
}

# ... except the issuer-override paths
path "%(m)s/issuer/+/issue/+" {
  capabilities = ["deny"]
}
'''


def test_hvac_policy_crud_hcl_and_json():
    srv = server()
    c = H.hvac_client(srv)
    text = HCL % {"m": PKI}
    c.sys.create_or_update_policy("web-hcl", text)
    got = c.sys.read_policy("web-hcl")
    eq(got["data"]["rules"], text, "sys/policy read returns the HCL as written")
    eq(got["rules"], text, "sys/policy read repeats rules at the top level (Vault's system envelope)")
    as_json = {"path": {PKI + "/issue/web": {"capabilities": ["update"]},
                        PKI + "/*": {"capabilities": ["read", "list"]},
                        PKI + "/issuer/+/issue/+": {"capabilities": ["deny"]}}}
    c.sys.create_or_update_policy("Web-JSON", as_json)  # hvac sends JSON text; the name is lower-cased
    raw = c.sys.read_policy("web-json")["data"]["rules"]
    eq(json.loads(raw), as_json, "JSON policy read back")
    pols = c.sys.list_policies()["data"]["policies"]
    check("web-hcl" in pols and "web-json" in pols and "default" in pols, "list_policies: %r" % pols)
    eq(pols[-1], "root", "root is listed last")
    r = root_ok("LIST", "sys/policies/acl", statuses=(200,)).json()
    eq(r["data"]["keys"], pols, "LIST sys/policies/acl and GET sys/policy agree")
    r = root_ok("GET", "sys/policies/acl/web-hcl", statuses=(200,)).json()
    eq(r["data"], {"name": "web-hcl", "policy": text}, "sys/policies/acl read")
    # Both forms grant the same.
    for name in ("web-hcl", "web-json"):
        tok = root_ok("POST", "auth/token/create", {"policies": [name], "no_default_policy": True},
                      statuses=(200,)).json()["auth"]["client_token"]
        # The token has no default policy, so it may not ask for itself: root asks for it.
        caps = c.sys.get_capabilities(
            [PKI + "/issue/web", PKI + "/roles/x", PKI + "/issuer/default/issue/web", "sys/mounts"], token=tok)
        expect_denied(req("POST", "sys/capabilities-self", tok, {"paths": ["sys"]}), name + ": capabilities-self")
        eq(caps["data"][PKI + "/issue/web"], ["update"], name + ": issue/web")
        eq(caps["data"][PKI + "/roles/x"], ["list", "read"], name + ": roles/x")
        eq(caps["data"][PKI + "/issuer/default/issue/web"], ["deny"], name + ": issuer override")
        eq(caps["data"]["sys/mounts"], ["deny"], name + ": sys/mounts")
        expect_not_denied(req("POST", PKI + "/issue/web", tok, {"common_name": "a.example.com"}), name + " issue")
        expect_denied(req("POST", PKI + "/issuer/default/issue/web", tok, {"common_name": "a.example.com"}),
                      name + " issuer override")
        expect_denied(req("POST", PKI + "/roles/web", tok, {}), name + " role write")
        eq(req("LIST", PKI + "/roles", tok).status, 200, name + " LIST roles through the prefix rule")
    c.sys.delete_policy("web-json")
    check("web-json" not in c.sys.list_policies()["data"]["policies"], "deleted policy still listed")
    eq(req("GET", "sys/policy/web-json", srv.token).status, 404, "read of a deleted policy")


def test_policy_write_errors():
    srv = server()
    r = req("POST", "sys/policies/acl/bad", srv.token, {"policy": 'path "a" {\n  capabilities = ["fly"]\n}'})
    H.expect_error(r, 400, "bad capability", contains='path "a": invalid capability "fly" on line 2')
    r = req("POST", "sys/policies/acl/bad", srv.token, {"policy": "path \"a\" { capabilities = [\"read\" }"})
    H.expect_error(r, 400, "HCL syntax", contains="expected ',' or ']'")
    r = req("POST", "sys/policies/acl/bad", srv.token, {"policy": '{"path": {"a": {"capabilities": ["read"]}}'})
    H.expect_error(r, 400, "JSON syntax", contains="failed to parse policy")
    r = req("POST", "sys/policies/acl/bad", srv.token, {})
    H.expect_error(r, 400, "no policy", contains="'policy' parameter not supplied or empty")
    r = req("POST", "sys/policies/acl/root", srv.token, {"policy": 'path "a" { capabilities = ["read"] }'})
    H.expect_error(r, 400, "root is immutable", contains='cannot update "root" policy')
    H.expect_error(req("DELETE", "sys/policies/acl/default", srv.token), 400, "default", contains="default")
    H.expect_error(req("DELETE", "sys/policy/root", srv.token), 400, "root", contains='"root"')
    eq(req("GET", "sys/policies/acl/bad", srv.token).status, 404, "refused policy was not stored")
    # The legacy field name still works, with Vault's warning.
    r = req("POST", "sys/policy/legacy", srv.token, {"rules": 'path "a" { capabilities = ["read"] }'})
    H.expect_ok(r, "legacy rules", (200,))
    check(any("deprecated" in w for w in (r.json().get("warnings") or [])), "no deprecation warning: %r" % r.body)
    # A base64-encoded policy is decoded, as Vault does.
    import base64
    b64 = base64.b64encode(b'path "b64/*" { capabilities = ["list"] }').decode()
    root_ok("POST", "sys/policies/acl/b64", {"policy": b64})
    eq(root_ok("GET", "sys/policies/acl/b64", statuses=(200,)).json()["data"]["policy"],
       'path "b64/*" { capabilities = ["list"] }', "base64 policy stored decoded")


def test_default_policy_and_self_paths():
    srv = server()
    d = root_ok("GET", "sys/policies/acl/default", statuses=(200,)).json()["data"]["policy"]
    for p in ("auth/token/lookup-self", "auth/token/renew-self", "auth/token/revoke-self", "sys/capabilities-self"):
        check('path "%s"' % p in d, "default policy lacks %s" % p)
    # A token with only the default policy can look itself up and ask its capabilities, nothing more.
    tok = root_ok("POST", "auth/token/create", {"policies": ["default"]}, statuses=(200,)).json()["auth"]["client_token"]
    eq(req("GET", "auth/token/lookup-self", tok).status, 200, "default: lookup-self")
    r = req("POST", "sys/capabilities-self", tok, {"paths": ["auth/token/renew-self", PKI + "/issue/web"]})
    H.expect_ok(r, "capabilities-self", (200,))
    j = r.json()
    eq(j["data"]["auth/token/renew-self"], ["update"], "default: renew-self")
    eq(j["data"][PKI + "/issue/web"], ["deny"], "default: pki")
    eq(j[PKI + "/issue/web"], ["deny"], "capabilities repeated at the top level")
    expect_denied(req("POST", PKI + "/issue/web", tok, {"common_name": "x"}), "default: issue")
    expect_denied(req("GET", "sys/mounts", tok), "default: sys/mounts")
    # Without the default policy, not even lookup-self.
    bare = token_with({"x": ["read"]}, "bare")
    expect_denied(req("GET", "auth/token/lookup-self", bare), "no default: lookup-self")
    # The single-path form keeps Vault's "capabilities" key; root answers ["root"].
    j = root_ok("POST", "sys/capabilities-self", {"path": PKI + "/roles/x"}, statuses=(200,)).json()
    eq(j["data"]["capabilities"], ["root"], "root capabilities")
    # sys/capabilities and sys/capabilities-accessor ask for another token.
    acc = root_ok("POST", "auth/token/lookup", {"token": tok}, statuses=(200,)).json()["data"]["accessor"]
    j = root_ok("POST", "sys/capabilities", {"token": tok, "paths": "sys/capabilities-self"}, statuses=(200,)).json()
    eq(j["data"]["capabilities"], ["update"], "sys/capabilities for the default token")
    j = root_ok("POST", "sys/capabilities-accessor", {"accessor": acc, "paths": ["sys/mounts"]},
                statuses=(200,)).json()
    eq(j["data"]["sys/mounts"], ["deny"], "sys/capabilities-accessor")
    H.expect_error(req("POST", "sys/capabilities", srv.token, {"token": "hvs.nope", "paths": ["a"]}), 400,
                   "unknown token", contains="invalid token")
    H.expect_error(req("POST", "sys/capabilities-accessor", srv.token, {"accessor": "nope", "paths": ["a"]}), 400,
                   "unknown accessor", contains="invalid accessor")
    H.expect_error(req("POST", "sys/capabilities-self", srv.token, {}), 400, "no paths", contains="paths")
    # hvac's three forms.
    c = H.hvac_client(srv)
    eq(c.sys.get_capabilities(["sys/mounts"], token=tok)["data"]["sys/mounts"], ["deny"], "hvac token=")
    eq(c.sys.get_capabilities(["sys/capabilities-self"], accessor=acc)["data"]["capabilities"], ["update"],
       "hvac accessor=")


def test_precedence_over_http():
    """Vault's rules between overlapping paths, seen through real requests."""
    server()
    root_ok("POST", PKI + "/roles/web", {"allow_any_name": True, "key_type": "ec", "key_bits": 256})
    put_policy("prec-a", '''
path "%(m)s/*"              { capabilities = ["read", "list"] }
path "%(m)s/roles/web"      { capabilities = ["deny"] }
path "%(m)s/roles/we*"      { capabilities = ["update"] }
path "%(m)s/+/web"          { capabilities = ["patch"] }
''' % {"m": PKI})
    put_policy("prec-b", 'path "%s/*" { capabilities = ["delete"] }' % PKI)
    put_policy("prec-deny", 'path "%s/*" { capabilities = ["deny"] }' % PKI)

    def tok(*names):
        return root_ok("POST", "auth/token/create", {"policies": list(names), "no_default_policy": True},
                       statuses=(200,)).json()["auth"]["client_token"]

    a, ab, abd = tok("prec-a"), tok("prec-a", "prec-b"), tok("prec-a", "prec-b", "prec-deny")
    # Exact deny beats everything else on roles/web.
    expect_denied(req("GET", PKI + "/roles/web", a), "exact deny")
    # roles/west: the longer prefix "roles/we" (update only) wins over the mount prefix (read).
    expect_denied(req("GET", PKI + "/roles/west", a), "longer prefix takes nothing from the shorter")
    # issue/web: "+/web" and the mount prefix have their first wildcard at the same
    # place; the pattern that is not a prefix wins, so patch (only) is granted there.
    expect_denied(req("POST", PKI + "/issue/web", a, {"common_name": "a.example.com"}), "issue/web: update")
    expect_denied(req("GET", PKI + "/issue/web", a), "issue/web: read is not merged in from the prefix")
    eq(req("PATCH", PKI + "/issue/web", a).status, 405, "issue/web: patch granted, so the caller learns 405")
    # The same pattern in two policies unions; deny on it in a third wins.
    eq(req("DELETE", PKI + "/roles/nothing", ab).status in (200, 204), True, "union of read and delete")
    expect_denied(req("DELETE", PKI + "/roles/nothing", abd), "deny on the same pattern wins")
    expect_denied(req("LIST", PKI + "/roles", abd), "deny on the same pattern wins for LIST")
    eq(req("LIST", PKI + "/roles", ab).status, 200, "LIST through the prefix rule")


def test_parameters_over_http():
    srv = server()
    root_ok("POST", PKI + "/roles/params", {"allow_any_name": True, "key_type": "ec", "key_bits": 256})
    if req("GET", PKI + "/issuer/default", srv.token).status != 200:
        root_ok("POST", PKI + "/root/generate/internal", {"common_name": "acl root", "key_type": "ec"},
                statuses=(200,))
    put_policy("params", '''
path "%s/issue/params" {
  capabilities = ["update"]
  allowed_parameters = { "common_name" = ["*.example.com"], "ttl" = [] }
  denied_parameters = { "ttl" = ["9999h"] }
  required_parameters = ["common_name"]
}''' % PKI)
    t = root_ok("POST", "auth/token/create", {"policies": ["params"], "no_default_policy": True},
                statuses=(200,)).json()["auth"]["client_token"]
    p = PKI + "/issue/params"
    eq(req("POST", p, t, {"common_name": "a.example.com", "ttl": "1h"}).status, 200, "allowed parameters")
    expect_denied(req("POST", p, t, {"common_name": "a.evil.com"}), "value outside allowed_parameters")
    expect_denied(req("POST", p, t, {"common_name": "a.example.com", "ttl": "9999h"}), "denied_parameters")
    expect_denied(req("POST", p, t, {"ttl": "1h"}), "required parameter missing")
    expect_denied(req("POST", p, t, {"common_name": "a.example.com", "alt_names": "b.example.com"}),
                  "parameter not in allowed_parameters")


def test_policy_change_applies_at_once():
    srv = server()
    put_policy("flip", 'path "%s/roles" { capabilities = ["list"] }' % PKI)
    t = root_ok("POST", "auth/token/create", {"policies": ["flip"], "no_default_policy": True},
                statuses=(200,)).json()["auth"]["client_token"]
    eq(req("LIST", PKI + "/roles", t).status, 200, "before the change")
    put_policy("flip", 'path "%s/roles" { capabilities = ["read"] }' % PKI)
    expect_denied(req("LIST", PKI + "/roles", t), "after the change (cache invalidated on write)")
    root_ok("DELETE", "sys/policies/acl/flip")
    expect_denied(req("LIST", PKI + "/roles", t), "after the delete")
    put_policy("flip", 'path "%s/roles" { capabilities = ["list"] }' % PKI)
    eq(req("LIST", PKI + "/roles", t).status, 200, "recreated")
    # Policies survive a restart.
    srv.restart()
    state["http"].close()
    eq(req("LIST", PKI + "/roles", t).status, 200, "after a restart")
    eq(root_ok("GET", "sys/policy/flip", statuses=(200,)).json()["data"]["rules"],
       'path "%s/roles" { capabilities = ["list"] }' % PKI, "policy text after restart")


H.main(globals())
