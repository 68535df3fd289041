#!/usr/bin/python3
"""JWT/OIDC auth against a fake OpenID Provider (discovery document, JWKS,
authorize and token endpoints, HTTPS with its own CA) started here: hvac
logs in with JWTs validated through static PEM keys, a JWKS URL and OIDC
discovery; the authorization-code flow with PKCE runs end to end; IdP
groups map to policies; every hostile token gets its 4xx and no token."""

import hashlib
import json
import os
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import jwtfake as F  # noqa: E402
from harness import check, eq  # noqa: E402

import hvac  # noqa: E402

STATIC = "jwt-static"
JWKS = "jwt-jwks"
OIDC = "oidc"
REDIRECT = "https://app.example.com/oidc/callback"
state = {}


def setup():
    s = H.dev_server()
    if "idp" not in state:
        state["idp"] = F.FakeIdP(H.tmpdir("idp"))
        state["client"] = H.hvac_client(s)
        state["static_key"] = F.ec_key()
        state["jwts"] = []
        # Every request of this file is audited: the last test reads the log.
        state["audit"] = os.path.join(H.tmpdir("audit"), "audit.log")
        state["client"].sys.enable_audit_device("file", path="jwtaudit", options={"file_path": state["audit"]})
    return s, state["client"], state["idp"]


def claims(aud="ci", sub="repo:acme/app:ref:refs/heads/main", exp_in=300, **extra):
    t = F.now()
    c = {"iss": "https://ci.example.com", "sub": sub, "aud": aud, "iat": t - 5, "nbf": t - 5, "exp": t + exp_in,
         "project_path": "acme/app", "ref": "main", "groups": ["devs", "ops", "acme/platform"], "email": "bot@acme.example"}
    c.update(extra)
    return c


def login(s, mount, role, jwt):
    state["jwts"].append(jwt)
    body = {"jwt": jwt}
    if role is not None:
        body["role"] = role
    r = s.req("POST", "auth/%s/login" % mount, body, token="")
    return r.status, (r.json() if r.body else None)


def expect_denied(s, mount, role, jwt, status, contains, what):
    st, body = login(s, mount, role, jwt)
    eq(st, status, "%s: status (%r)" % (what, body))
    errs = " ".join((body or {}).get("errors", []))
    check(contains.lower() in errs.lower(), "%s: error %r lacks %r" % (what, errs, contains))
    check(not (body or {}).get("auth"), what + ": a token was issued")


# ---------------------------------------------------------------- static keys


def test_static_keys_config_and_roles():
    s, c, idp = setup()
    key = state["static_key"]
    c.sys.enable_auth_method("jwt", path=STATIC)
    c.auth.jwt.configure(jwt_validation_pubkeys=[F.pub_pem(key)], bound_issuer="https://ci.example.com",
                         path=STATIC)
    cfg = s.data("GET", "auth/%s/config" % STATIC)
    eq(cfg["bound_issuer"], "https://ci.example.com", "bound_issuer read back")
    eq(len(cfg["jwt_validation_pubkeys"]), 1, "one public key")
    c.auth.jwt.create_role("ci", user_claim="sub", allowed_redirect_uris=[], role_type="jwt",
                           bound_audiences=["ci"], bound_claims={"project_path": "acme/*"}, bound_claims_type="glob",
                           groups_claim="groups", claim_mappings={"email": "email", "ref": "git_ref"},
                           token_policies=["ci-base"], token_ttl="20m", path=STATIC)
    r = s.data("GET", "auth/%s/role/ci" % STATIC)
    eq(r["role_type"], "jwt", "role_type")
    eq(r["bound_claims"], {"project_path": "acme/*"}, "bound_claims")
    eq(r["token_ttl"], 1200, "token_ttl")
    eq(r["clock_skew_leeway"], 60, "default clock_skew_leeway")
    eq(r["expiration_leeway"], 150, "default expiration_leeway")
    # Vault's role validation.
    r = s.req("POST", "auth/%s/role/loose" % STATIC, {"role_type": "jwt", "user_claim": "sub"})
    H.expect_error(r, 400, "jwt role without any binding", contains="bound constraint")
    r = s.req("POST", "auth/%s/role/nouser" % STATIC, {"role_type": "jwt", "bound_subject": "x"})
    H.expect_error(r, 400, "role without user_claim", contains="user claim")
    r = s.req("POST", "auth/%s/role/web" % STATIC, {"user_claim": "sub"})
    H.expect_error(r, 400, "oidc role without redirect URIs", contains="allowed_redirect_uris")
    r = s.req("POST", "auth/%s/role/bad" % STATIC, {"role_type": "jwt", "user_claim": "sub", "bound_subject": "x",
                                                   "claim_mappings": {"a": "role"}})
    H.expect_error(r, 400, "claim mapping onto the reserved 'role'", contains="reserved")
    # Config validation: exactly one key source, algorithms known, keys parse.
    r = s.req("POST", "auth/%s/config" % STATIC, {"jwt_validation_pubkeys": [F.pub_pem(key)],
                                                  "jwks_url": "https://x.example/jwks"})
    H.expect_error(r, 400, "two key sources", contains="exactly one")
    r = s.req("POST", "auth/%s/config" % STATIC, {"jwt_validation_pubkeys": [F.pub_pem(key)],
                                                  "jwt_supported_algs": ["HS256"]})
    H.expect_error(r, 400, "HMAC in jwt_supported_algs")
    r = s.req("POST", "auth/%s/config" % STATIC, {"jwt_validation_pubkeys": ["not a key"]})
    H.expect_error(r, 400, "garbage public key")
    r = s.req("POST", "auth/%s/config" % STATIC, {"oidc_client_id": "x", "jwt_validation_pubkeys": [F.pub_pem(key)]})
    H.expect_error(r, 400, "client id without discovery")


def test_groups_map_to_policies():
    s, c, idp = setup()
    s.ok("POST", "auth/%s/groups/devs" % STATIC, {"policies": "dev-read,dev-write"}, statuses=(204,))
    s.ok("POST", "auth/%s/groups/admins" % STATIC, {"policies": ["admin"]}, statuses=(204,))
    # GitLab-style nested group names keep their slash.
    s.ok("POST", "auth/%s/groups/acme/platform" % STATIC, {"policies": ["platform"]}, statuses=(204,))
    eq(s.data("GET", "auth/%s/groups/acme/platform" % STATIC)["policies"], ["platform"], "nested group read")
    eq(s.data("GET", "auth/%s/groups/devs" % STATIC)["policies"], ["dev-read", "dev-write"], "group read")
    keys = s.data("LIST", "auth/%s/groups" % STATIC)["keys"]
    eq(sorted(keys), ["acme/platform", "admins", "devs"], "group list")


def test_static_key_login_with_hvac():
    s, c, idp = setup()
    key = state["static_key"]
    jwt = F.sign_jwt(key, claims(), "ES256")
    a = c.auth.jwt.jwt_login("ci", jwt, use_token=False, path=STATIC)["auth"]
    pol = a["policies"]
    for p in ("ci-base", "dev-read", "dev-write", "platform", "default"):
        check(p in pol, "policy %s in %r" % (p, pol))
    check("admin" not in pol, "not a member of admins: %r" % pol)
    eq(a["metadata"]["role"], "ci", "metadata role")
    eq(a["metadata"]["email"], "bot@acme.example", "claim_mappings email")
    eq(a["metadata"]["git_ref"], "main", "claim_mappings ref")
    check(1190 <= a["lease_duration"] <= 1200, "ttl from the role: %r" % a["lease_duration"])
    me = H.hvac_client(s, a["client_token"]).lookup_token()["data"]
    # The user claim, with the mount path in front and Vault's sanitising of the characters in between.
    check(me["display_name"].startswith(STATIC + "-repo") and "acme" in me["display_name"],
          "display name from the user claim: %r" % me["display_name"])
    # A group claim given as a single string.
    a = c.auth.jwt.jwt_login("ci", F.sign_jwt(key, claims(groups="admins"), "ES256"), use_token=False,
                             path=STATIC)["auth"]
    check("admin" in a["policies"], "single-string groups claim: %r" % a["policies"])
    # Without a role, default_role.
    s.ok("POST", "auth/%s/config" % STATIC, {"jwt_validation_pubkeys": [F.pub_pem(key)],
                                             "bound_issuer": "https://ci.example.com", "default_role": "ci"},
         statuses=(204,))
    st, body = login(s, STATIC, None, jwt)
    eq(st, 200, "default_role login (%r)" % (body,))


def test_static_key_refusals():
    s, c, idp = setup()
    key = state["static_key"]
    other = F.ec_key()
    pem = F.pub_pem(key)
    expect_denied(s, STATIC, "ci", "abc.def", 400, "error parsing token", "malformed JWT")
    expect_denied(s, STATIC, "ci", "a.b.c", 400, "error parsing token", "garbage JWT")
    expect_denied(s, STATIC, "ci", F.sign_jwt(key, claims(exp_in=-3600), "ES256"), 400, "expired", "expired JWT")
    expect_denied(s, STATIC, "ci", F.sign_jwt(key, claims(nbf=F.now() + 3600), "ES256"), 400, "nbf",
                  "not yet valid")
    expect_denied(s, STATIC, "ci", F.sign_jwt(other, claims(), "ES256"), 400, "no known key", "wrong signature")
    expect_denied(s, STATIC, "ci", F.none_jwt(claims()), 400, "none", "alg none")
    expect_denied(s, STATIC, "ci", F.hmac_jwt(pem, claims()), 400, "HMAC", "HS256 keyed with the public key PEM")
    expect_denied(s, STATIC, "ci", F.hmac_jwt(pem.encode().strip(), claims()), 400, "HMAC",
                  "HS256 keyed with the trimmed PEM")
    expect_denied(s, STATIC, "ci", F.sign_jwt(key, claims(), "ES256", header={"alg": "ES384"}), 400, "",
                  "alg relabelled ES384")
    expect_denied(s, STATIC, "ci", F.sign_jwt(key, claims(aud="other"), "ES256"), 400, "aud",
                  "wrong audience")
    expect_denied(s, STATIC, "ci", F.sign_jwt(key, claims(iss="https://evil.example.com"), "ES256"), 400, "iss",
                  "wrong issuer")
    expect_denied(s, STATIC, "ci", F.sign_jwt(key, claims(project_path="evil/app"), "ES256"), 400,
                  "does not match", "bound_claims mismatch")
    c2 = claims()
    del c2["project_path"]
    expect_denied(s, STATIC, "ci", F.sign_jwt(key, c2, "ES256"), 400, "missing", "bound claim absent")
    expect_denied(s, STATIC, "ci", F.sign_jwt(key, claims(groups={"x": 1}), "ES256"), 400, "groups",
                  "groups claim not a list")
    c3 = claims()
    del c3["exp"], c3["iat"], c3["nbf"]
    expect_denied(s, STATIC, "ci", F.sign_jwt(key, c3, "ES256"), 400, "no issue time", "no time claims")
    # A signed token with its payload swapped.
    tok = F.sign_jwt(key, claims(sub="someone"), "ES256")
    h, p, sig = tok.split(".")
    expect_denied(s, STATIC, "ci", h + "." + F.b64u_json(claims(sub="admin")) + "." + sig, 400, "no known key",
                  "payload swapped")
    # bound_subject, and an aud with no audiences bound.
    s.ok("POST", "auth/%s/role/subj" % STATIC, {"role_type": "jwt", "user_claim": "sub",
                                                 "bound_subject": "repo:acme/app:ref:refs/heads/main"},
         statuses=(204,))
    c4 = claims()
    del c4["aud"]
    st, body = login(s, STATIC, "subj", F.sign_jwt(key, c4, "ES256"))
    eq(st, 200, "bound_subject login without aud (%r)" % (body,))
    c4["sub"] = "repo:acme/app:ref:refs/heads/evil"
    expect_denied(s, STATIC, "subj", F.sign_jwt(key, c4, "ES256"), 400, "bound subject", "bound_subject mismatch")
    expect_denied(s, STATIC, "subj", F.sign_jwt(key, claims(), "ES256"), 400,
                  "no audiences bound", "aud present, none bound")
    expect_denied(s, STATIC, "nope", F.sign_jwt(key, claims(), "ES256"), 400, "could not be found", "unknown role")
    s.ok("POST", "auth/%s/role/human" % STATIC, {"user_claim": "sub", "allowed_redirect_uris": [REDIRECT],
                                                  "bound_audiences": ["ci"]}, statuses=(204,))
    expect_denied(s, STATIC, "human", F.sign_jwt(key, claims(), "ES256"), 400, "oidc role_type",
                  "oidc role used for JWT login")
    # CIDR binding: a role only usable from elsewhere.
    s.ok("POST", "auth/%s/role/cidr" % STATIC, {"role_type": "jwt", "user_claim": "sub", "bound_audiences": ["ci"],
                                                 "token_bound_cidrs": ["10.77.0.0/16"]}, statuses=(204,))
    expect_denied(s, STATIC, "cidr", F.sign_jwt(key, claims(), "ES256"), 403, "permission denied",
                  "CIDR mismatch")
    # hvac maps these to exceptions.
    try:
        c.auth.jwt.jwt_login("ci", F.sign_jwt(other, claims(), "ES256"), path=STATIC)
    except hvac.exceptions.InvalidRequest:
        pass
    else:
        raise H.TestFailure("hvac did not raise InvalidRequest")


def test_pki_role_templated_from_jwt_claims():
    """A CI job gets certificates only for <its project>.ci.example.com, from a claim mapped into its alias."""
    s, c, idp = setup()
    key = state["static_key"]
    acc = c.sys.list_auth_methods()["data"][STATIC + "/"]["accessor"]
    H.enable_pki(s, "jwtpki", "8760h")
    s.ok("POST", "jwtpki/root/generate/internal", {"common_name": "ci root", "key_type": "ec", "ttl": "8000h"})
    s.ok("POST", "jwtpki/roles/builds", {
        "allowed_domains": ["{{identity.entity.aliases.%s.metadata.project}}.ci.example.com" % acc],
        "allowed_domains_template": True, "allow_bare_domains": True, "key_type": "ec", "ttl": "1h"},
        statuses=(200, 204))
    c.sys.create_or_update_policy("ci-pki", 'path "jwtpki/issue/builds" { capabilities = ["update"] }')
    c.auth.jwt.create_role("build", user_claim="sub", allowed_redirect_uris=[], role_type="jwt",
                           bound_audiences=["ci"], claim_mappings={"project_name": "project"},
                           token_policies=["ci-pki"], path=STATIC)
    tok = c.auth.jwt.jwt_login("build", F.sign_jwt(key, claims(project_name="app"), "ES256"), use_token=False,
                               path=STATIC)["auth"]["client_token"]
    H.expect_ok(s.req("POST", "jwtpki/issue/builds", {"common_name": "app.ci.example.com"}, token=tok),
                "job of project app gets app.ci.example.com")
    H.expect_error(s.req("POST", "jwtpki/issue/builds", {"common_name": "web.ci.example.com"}, token=tok), 400,
                   "job of project app asks for web's name")
    # A claim that would widen the pattern is refused as a template value, not matched as a glob.
    tok = c.auth.jwt.jwt_login("build", F.sign_jwt(key, claims(project_name="*"), "ES256"), use_token=False,
                               path=STATIC)["auth"]["client_token"]
    H.expect_error(s.req("POST", "jwtpki/issue/builds", {"common_name": "web.ci.example.com"}, token=tok), 400,
                   "a '*' claim grants nothing")
    tok = c.auth.jwt.jwt_login("build", F.sign_jwt(key, claims(project_name="evil.com.x"), "ES256"),
                               use_token=False, path=STATIC)["auth"]["client_token"]
    H.expect_error(s.req("POST", "jwtpki/issue/builds", {"common_name": "evil.com.x.ci.example.com"}, token=tok),
                   400, "a dotted claim cannot add labels")


# ---------------------------------------------------------------- JWKS URL


def test_jwks_url_login_and_rotation():
    s, c, idp = setup()
    c.sys.enable_auth_method("jwt", path=JWKS)
    c.auth.jwt.configure(jwks_url=idp.issuer + "/jwks", jwks_ca_pem=idp.ca_pem, bound_issuer=idp.issuer,
                         path=JWKS)
    c.auth.jwt.create_role("svc", user_claim="sub", allowed_redirect_uris=[], role_type="jwt",
                           bound_audiences=["svc"], token_policies=["svc"], path=JWKS)
    a = c.auth.jwt.jwt_login("svc", idp.sign(idp.claims(sub="svc-1", aud="svc")), use_token=False,
                             path=JWKS)["auth"]
    check("svc" in a["policies"], "jwks login policies %r" % a["policies"])
    # The provider rotates to a new EC key: an unknown kid makes Sigil refetch the JWKS once.
    time.sleep(2.2)  # OIDC_REFRESH_MIN: the cached copy must be old enough to refresh
    idp.rotate("k2", F.ec_key(), "ES256")
    n = len(idp.srv.requests_to("/jwks"))
    a = c.auth.jwt.jwt_login("svc", idp.sign(idp.claims(sub="svc-2", aud="svc")), use_token=False,
                             path=JWKS)["auth"]
    check(a["client_token"], "login after key rotation")
    check(len(idp.srv.requests_to("/jwks")) > n, "the JWKS was fetched again")
    # Unknown kids do not make Sigil hammer the provider.
    stranger = F.rsa_key()
    n = len(idp.srv.requests_to("/jwks"))
    for i in range(5):
        expect_denied(s, JWKS, "svc", F.sign_jwt(stranger, idp.claims(aud="svc"), "RS256", kid="nope-%d" % i),
                      400, "error verifying token", "unknown kid")
    check(len(idp.srv.requests_to("/jwks")) <= n + 1, "refreshes are rate limited (%d fetches)" %
          (len(idp.srv.requests_to("/jwks")) - n))
    expect_denied(s, JWKS, "svc", F.sign_jwt(idp.keys["k1"][0], idp.claims(aud="svc"), "RS256", kid="k2"), 400,
                  "error verifying token", "k1's signature under k2's kid")
    expect_denied(s, JWKS, "svc", idp.sign(idp.claims(aud="other")), 400, "aud", "jwks: wrong audience")
    expect_denied(s, JWKS, "svc", idp.sign(idp.claims(aud="svc", iss="https://other")), 400, "iss",
                  "jwks: wrong issuer")


def test_jwks_unreachable():
    s, c, idp = setup()
    # A JWKS URL that cannot be reached is refused at config time, as Vault does.
    r = s.req("POST", "auth/%s/config" % JWKS, {"jwks_url": "https://127.0.0.1:%d/jwks" % H.free_port(),
                                                "jwks_ca_pem": idp.ca_pem})
    H.expect_error(r, 400, "unreachable JWKS at config", contains="jwks")
    # A provider whose certificate the configured CA does not vouch for.
    r = s.req("POST", "auth/%s/config" % JWKS, {"jwks_url": idp.issuer + "/jwks",
                                                "jwks_ca_pem": F.TestCA("Other").pem})
    H.expect_error(r, 400, "untrusted JWKS server", contains="jwks")
    # It goes down after the config was written. Keys already fetched stay usable from the cache (as
    # go-oidc's key set does); a token signed with a key Sigil has not seen needs the JWKS and is refused.
    s.ok("POST", "auth/%s/config" % JWKS, {"jwks_url": idp.issuer + "/jwks", "jwks_ca_pem": idp.ca_pem,
                                           "bound_issuer": idp.issuer}, statuses=(204,))
    idp.jwks_up = False
    try:
        time.sleep(2.2)  # past OIDC_REFRESH_MIN, so a refresh is attempted
        idp.rotate("k3", F.rsa_key(), "RS256")
        expect_denied(s, JWKS, "svc", idp.sign(idp.claims(sub="svc-1", aud="svc")), 400, "error fetching jwks",
                      "JWKS unreachable at login")
    finally:
        idp.jwks_up = True
    time.sleep(2.2)
    a = c.auth.jwt.jwt_login("svc", idp.sign(idp.claims(sub="svc-1", aud="svc")), use_token=False,
                             path=JWKS)["auth"]
    check(a["client_token"], "login once the JWKS is back")


# ---------------------------------------------------------------- OIDC discovery and the code flow


def test_oidc_discovery_config():
    s, c, idp = setup()
    c.sys.enable_auth_method("oidc", path=OIDC)
    r = s.req("POST", "auth/%s/config" % OIDC, {"oidc_discovery_url": idp.issuer + "/wrong",
                                                "oidc_discovery_ca_pem": idp.ca_pem})
    H.expect_error(r, 400, "discovery URL without a document")
    c.auth.oidc.configure(oidc_discovery_url=idp.issuer, oidc_discovery_ca_pem=idp.ca_pem,
                          oidc_client_id=idp.client_id, oidc_client_secret=idp.client_secret,
                          default_role="people", path=OIDC)
    cfg = s.data("GET", "auth/%s/config" % OIDC)
    eq(cfg["oidc_client_id"], idp.client_id, "client id read back")
    check(idp.client_secret not in str(cfg), "the client secret is never read back")
    c.auth.oidc.create_role("people", user_claim="sub", allowed_redirect_uris=[REDIRECT, "http://localhost:8250/cb"],
                            role_type="oidc", bound_audiences=[idp.client_id], groups_claim="groups",
                            oidc_scopes=["profile", "email"], token_policies=["people"], path=OIDC)
    c.auth.oidc.create_role("machines", user_claim="sub", allowed_redirect_uris=[], role_type="jwt",
                            bound_audiences=["machines"], token_policies=["machines"], path=OIDC)
    s.ok("POST", "auth/%s/groups/staff" % OIDC, {"policies": ["staff"]}, statuses=(204,))


def test_oidc_discovery_jwt_login():
    s, c, idp = setup()
    a = c.auth.jwt.jwt_login("machines", idp.sign(idp.claims(sub="m1", aud="machines")), use_token=False,
                             path=OIDC)["auth"]
    check("machines" in a["policies"], "discovery JWT login %r" % a["policies"])
    expect_denied(s, OIDC, "machines", idp.sign(idp.claims(sub="m1", aud="machines", iss="https://evil")), 400,
                  "iss", "discovery: issuer is the provider's")
    c5 = idp.claims(sub="m1", aud="machines")
    del c5["exp"]
    expect_denied(s, OIDC, "machines", idp.sign(c5), 400, "exp", "discovery: tokens must expire")


def auth_url(s, role="people", redirect=REDIRECT, **extra):
    body = {"role": role, "redirect_uri": redirect}
    body.update(extra)
    return s.req("POST", "auth/%s/oidc/auth_url" % OIDC, body, token="")


def idp_authorize(idp, url, user="alice"):
    """Follows the auth URL at the fake provider (as the user's browser would): (code, state, query)."""
    u = urllib.parse.urlsplit(url)
    eq(u.scheme + "://" + u.netloc + u.path, idp.issuer + "/authorize", "auth_url points at the provider")
    q = dict(urllib.parse.parse_qsl(u.query))
    r = H.curl(url + "&login_hint=" + user, cacert=H.tmpfile(idp.ca_pem))
    eq(r.status, 302, "provider redirect (%r)" % (r.body[:200],))
    loc = r.headers.get("location") or r.headers.get("Location")
    back = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(loc).query))
    eq(back["state"], q["state"], "state comes back")
    return back["code"], back["state"], q


def callback(s, state_, code, **extra):
    q = {"state": state_, "code": code}
    q.update(extra)
    return s.req("GET", "auth/%s/oidc/callback?%s" % (OIDC, urllib.parse.urlencode(q)), token="")


def test_oidc_code_flow_with_pkce():
    s, c, idp = setup()
    r = auth_url(s)
    H.expect_ok(r, "auth_url")
    url = r.json()["data"]["auth_url"]
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    eq(q["client_id"], idp.client_id, "client_id")
    eq(q["redirect_uri"], REDIRECT, "redirect_uri")
    eq(q["response_type"], "code", "response_type")
    eq(q["code_challenge_method"], "S256", "PKCE method")
    eq(len(q["code_challenge"]), 43, "S256 challenge length")
    eq(q["scope"].split(), ["openid", "profile", "email"], "scopes")
    check(q["state"].startswith("st_") and q["nonce"].startswith("n_"), "state and nonce %r" % q)
    # Two requests never share state, nonce or challenge.
    q2 = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(auth_url(s).json()["data"]["auth_url"]).query))
    for k in ("state", "nonce", "code_challenge"):
        check(q[k] != q2[k], "%s differs between flows" % k)

    idp.claims_extra = {"groups": ["staff"], "email": "alice@example.com"}
    code, st, _ = idp_authorize(idp, url, user="alice")
    r = callback(s, st, code)
    H.expect_ok(r, "callback")
    a = r.json()["auth"]
    check("people" in a["policies"] and "staff" in a["policies"], "OIDC policies %r" % a["policies"])
    eq(a["metadata"]["role"], "people", "metadata role")
    tok = idp.token_log[-1]
    eq(tok["result"], "ok", "the provider accepted the exchange")
    verifier = tok["form"]["code_verifier"]
    eq(F.b64u(hashlib.sha256(verifier.encode()).digest()), q["code_challenge"], "verifier matches the challenge")
    eq(tok["form"]["redirect_uri"], REDIRECT, "same redirect_uri at the token endpoint")
    check(tok["auth"].startswith("Basic "), "client authenticated with Basic")
    me = H.hvac_client(s, a["client_token"]).lookup_token()["data"]
    eq(me["display_name"], OIDC + "-alice", "display name")

    # A state is single-use: replaying the callback fails without touching the provider.
    n = len(idp.token_log)
    H.expect_error(callback(s, st, code), 400, "state replay", contains="state")
    eq(len(idp.token_log), n, "no exchange for a replayed state")
    idp.claims_extra = {}


def test_oidc_hvac_helpers():
    s, c, idp = setup()
    r = c.auth.oidc.oidc_authorization_url_request("people", REDIRECT, path=OIDC)
    url = r["data"]["auth_url"]
    code, st, q = idp_authorize(idp, url, user="bob")
    r = c.auth.oidc.oidc_callback(st, q["nonce"], code, path=OIDC)
    check(r["auth"]["client_token"], "hvac oidc_callback login")
    # Loopback redirect URIs match whatever their port (RFC 8252 7.3).
    H.expect_ok(auth_url(s, redirect="http://localhost:43111/cb"), "loopback redirect, other port")


def test_oidc_flow_refusals():
    s, c, idp = setup()
    H.expect_error(auth_url(s, redirect="https://evil.example.com/cb"), 400, "unlisted redirect_uri",
                   contains="redirect_uri")
    H.expect_error(auth_url(s, redirect=""), 400, "no redirect_uri", contains="redirect_uri")
    H.expect_error(auth_url(s, role="machines"), 400, "jwt role in the OIDC flow", contains="role_type")
    H.expect_error(auth_url(s, role="nope"), 400, "unknown role", contains="could not be found")
    H.expect_error(callback(s, "st_bogus", "code-x"), 400, "unknown state", contains="state")
    H.expect_error(callback(s, "", "code-x"), 400, "empty state", contains="state")

    # A state from another mount is not this mount's.
    url = auth_url(s).json()["data"]["auth_url"]
    code, st, _ = idp_authorize(idp, url)
    r = s.req("GET", "auth/%s/oidc/callback?state=%s&code=%s" % (JWKS, st, code), token="")
    H.expect_error(r, 400, "state used on another mount")
    H.expect_ok(callback(s, st, code), "state still valid on its own mount")

    # A code the provider refuses (already used).
    url = auth_url(s).json()["data"]["auth_url"]
    code, st, _ = idp_authorize(idp, url)
    idp.codes[code]["used"] = True
    H.expect_error(callback(s, st, code), 400, "provider refuses the code", contains="invalid_grant")

    # An ID token carrying the wrong nonce.
    url = auth_url(s).json()["data"]["auth_url"]
    code, st, _ = idp_authorize(idp, url)
    idp.bad_nonce = True
    try:
        H.expect_error(callback(s, st, code), 400, "wrong nonce", contains="nonce")
    finally:
        idp.bad_nonce = False

    # An ID token for another client, and one from another issuer.
    for extra, what, needle in (({"aud": "someone-else"}, "aud of another client", "aud"),
                                ({"iss": "https://evil.example.com"}, "another issuer", "iss"),
                                ({"exp": F.now() - 3600}, "expired ID token", "expired"),
                                ({"azp": "other"}, "azp of another client", "azp")):
        url = auth_url(s).json()["data"]["auth_url"]
        code, st, _ = idp_authorize(idp, url)
        idp.claims_extra = extra
        try:
            H.expect_error(callback(s, st, code), 400, what, contains=needle)
        finally:
            idp.claims_extra = {}

    # The provider reports an error instead of a code.
    url = auth_url(s).json()["data"]["auth_url"]
    code, st, _ = idp_authorize(idp, url)
    H.expect_error(callback(s, st, "", error_description="access_denied by user"), 400, "provider error",
                   contains="access_denied")

    # client_nonce given at auth_url must come back at the callback.
    url = auth_url(s, client_nonce="cn-123").json()["data"]["auth_url"]
    code, st, _ = idp_authorize(idp, url)
    H.expect_error(callback(s, st, code), 400, "missing client_nonce", contains="client_nonce")
    url = auth_url(s, client_nonce="cn-123").json()["data"]["auth_url"]
    code, st, _ = idp_authorize(idp, url)
    H.expect_ok(callback(s, st, code, client_nonce="cn-123"), "matching client_nonce")

    # A role binding that the ID token does not satisfy.
    s.ok("POST", "auth/%s/role/admins" % OIDC, {"user_claim": "sub", "allowed_redirect_uris": [REDIRECT],
                                                "bound_claims": {"groups": "admins"}}, statuses=(204,))
    url = auth_url(s, role="admins").json()["data"]["auth_url"]
    code, st, _ = idp_authorize(idp, url)
    idp.claims_extra = {"groups": ["staff"]}
    try:
        H.expect_error(callback(s, st, code), 400, "bound_claims in the code flow", contains="groups")
    finally:
        idp.claims_extra = {}


def test_oidc_pkce_is_enforced_by_the_provider_view():
    """The verifier Sigil sends must match the challenge it published: tamper with the stored challenge."""
    s, c, idp = setup()
    url = auth_url(s).json()["data"]["auth_url"]
    code, st, q = idp_authorize(idp, url)
    idp.codes[code]["challenge"] = F.b64u(hashlib.sha256(b"another verifier").digest())
    H.expect_error(callback(s, st, code), 400, "PKCE mismatch at the provider", contains="invalid_grant")
    eq(idp.token_log[-1]["result"], "pkce mismatch", "the provider saw a verifier for another challenge")


def test_audit_records_denials_without_secrets():
    """Every refused login is in the audit log as a denial, and no JWT, code or client secret is in clear."""
    s, c, idp = setup()
    with open(state["audit"]) as f:
        text = f.read()
    lines = [json.loads(ln) for ln in text.splitlines() if ln.strip()]
    denials = [e for e in lines if e["type"] == "response" and e["request"]["path"].endswith("/login")
               and e["response"]["status"] >= 400]
    errors = " | ".join(e["error"] for e in denials)
    check(len(denials) >= 25, "refused logins audited: %d" % len(denials))
    for needle in ("no known key", "expired", "HMAC", "none", "aud claim does not match", "iss",
                   "does not match any associated bound claim", "error fetching jwks", "permission denied"):
        check(needle.lower() in errors.lower(), "audited denials mention %r" % needle)
    check(all(e["error"] for e in denials), "every denial carries its error")
    callbacks = [e for e in lines if e["type"] == "response" and e["request"]["path"].endswith("/oidc/callback")]
    check(any(e["response"]["status"] == 400 for e in callbacks), "refused callbacks audited")
    ok_logins = [e for e in lines if e["type"] == "response" and e["request"]["path"].endswith("/login")
                 and e["response"]["status"] == 200]
    check(ok_logins and all(e["response"]["auth"]["client_token"].startswith("hmac-sha256:") for e in ok_logins),
          "login tokens HMAC-ed in the audit log")
    for jwt in state["jwts"]:
        sig = jwt.rsplit(".", 1)[-1]
        check(jwt not in text and (len(sig) < 16 or sig not in text), "a JWT appears in clear in the audit log")
    for code in idp.codes:
        check(code not in text, "an authorization code appears in clear")
    check(idp.client_secret not in text, "the client secret appears in clear")
    req_lines = [e for e in lines if e["type"] == "request" and e["request"]["path"].endswith("/login")]
    check(req_lines and all(str(e["request"]["data"].get("jwt", "hmac-sha256:")).startswith("hmac-sha256:")
                            for e in req_lines), "request jwt fields HMAC-ed")


if __name__ == "__main__":
    try:
        H.main(globals())
    finally:
        if "idp" in state:
            state["idp"].stop()
