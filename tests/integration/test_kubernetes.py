#!/usr/bin/python3
"""Kubernetes auth: hvac logs in with service account JWTs, validated by
TokenReview against a fake Kubernetes API server (HTTPS, its own test CA)
started here, or locally against pem_keys. Every refusal is checked for
its status; PKI roles templated from the service account limit a pod to
<its service account>.<its namespace>.svc."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import jwtfake as F  # noqa: E402
from harness import check, eq  # noqa: E402

import hvac  # noqa: E402

PROD = "kubernetes-prod"
LOCAL = "kubernetes-local"
PKI = "k8spki"
UID_WEB = "1f0e6a9c-0000-4000-8000-00000000web1"
UID_API = "1f0e6a9c-0000-4000-8000-00000000api1"
UID_DB = "1f0e6a9c-0000-4000-8000-000000000db1"
state = {}


def setup():
    s = H.dev_server()
    if "kube" not in state:
        state["kube"] = F.FakeKubeAPI(H.tmpdir("kube"))
        state["client"] = H.hvac_client(s)
        state["jwts"] = []
        state["audit"] = os.path.join(H.tmpdir("audit"), "audit.log")
        state["client"].sys.enable_audit_device("file", path="k8saudit", options={"file_path": state["audit"]})
    return s, state["client"], state["kube"]


def login_status(s, mount, role, jwt):
    """POST login without hvac: (status, json)."""
    body = {}
    if jwt:
        state["jwts"].append(jwt)
    if role is not None:
        body["role"] = role
    if jwt is not None:
        body["jwt"] = jwt
    r = s.req("POST", "auth/%s/login" % mount, body, token="")
    return r.status, r.json() if r.body else None


def expect_denied(s, mount, role, jwt, status, contains, what):
    st, body = login_status(s, mount, role, jwt)
    eq(st, status, what + " status (%r)" % (body,))
    errs = " ".join((body or {}).get("errors", []))
    check(contains.lower() in errs.lower(), "%s: error %r lacks %r" % (what, errs, contains))
    check("auth" not in (body or {}) or not body.get("auth"), what + ": a token was issued")


def test_enable_two_mounts_of_one_type():
    s, c, kube = setup()
    c.sys.enable_auth_method("kubernetes", path=PROD)
    c.sys.enable_auth_method("kubernetes", path=LOCAL)
    methods = c.sys.list_auth_methods()
    data = methods.get("data", methods)
    for m in (PROD, LOCAL):
        check(m + "/" in data, "sys/auth lacks %s/: %r" % (m, list(data)))
        eq(data[m + "/"]["type"], "kubernetes", m + " type")
    check(data[PROD + "/"]["accessor"] != data[LOCAL + "/"]["accessor"], "accessors differ")
    state["accessor"] = data[PROD + "/"]["accessor"]
    check(state["accessor"].startswith("auth_kubernetes_"), "accessor shape %r" % state["accessor"])


def test_configure_and_roles_with_hvac():
    s, c, kube = setup()
    c.auth.kubernetes.configure(kube.url, kubernetes_ca_cert=kube.ca_pem, token_reviewer_jwt=kube.reviewer_token,
                                mount_point=PROD)
    cfg = c.auth.kubernetes.read_config(mount_point=PROD)  # hvac returns the data
    eq(cfg["kubernetes_host"], kube.url, "kubernetes_host read back")
    check(kube.reviewer_token not in str(cfg), "token_reviewer_jwt must not be read back")
    eq(cfg.get("token_reviewer_jwt_set"), True, "token_reviewer_jwt_set")
    c.auth.kubernetes.create_role("web", ["web", "api"], ["prod"], ttl="1h", policies=["k8s-web"],
                                  mount_point=PROD)
    c.auth.kubernetes.create_role("any", ["*"], ["team-*"], policies=["k8s-any"], mount_point=PROD)
    r = c.auth.kubernetes.read_role("web", mount_point=PROD)
    eq(r["bound_service_account_names"], ["web", "api"], "role names")
    eq(r["bound_service_account_namespaces"], ["prod"], "role namespaces")
    eq(r["token_ttl"], 3600, "deprecated ttl lands in token_ttl")
    eq(r["token_policies"], ["k8s-web"], "policies")
    eq(r["alias_name_source"], "serviceaccount_uid", "alias_name_source default")
    eq(sorted(c.auth.kubernetes.list_roles(mount_point=PROD)["keys"]), ["any", "web"], "list roles")
    # Vault's role validation.
    r = s.req("POST", "auth/%s/role/bad" % PROD, {"bound_service_account_names": ["*", "x"],
                                                   "bound_service_account_namespaces": ["a"]})
    H.expect_error(r, 400, "mixing * with names", contains="can not mix")
    r = s.req("POST", "auth/%s/role/bad" % PROD, {"bound_service_account_names": ["x"]})
    H.expect_error(r, 400, "no namespaces", contains="bound_service_account_namespaces")
    r = s.req("POST", "auth/%s/config" % PROD, {"kubernetes_ca_cert": kube.ca_pem})
    H.expect_error(r, 400, "config without host or pem_keys", contains="host")
    r = s.req("POST", "auth/%s/config" % LOCAL, {"pem_keys": ["-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"]})
    H.expect_error(r, 400, "garbage pem_keys")


def test_login_with_token_review():
    s, c, kube = setup()
    jwt = kube.legacy_token("prod", "web", UID_WEB)
    before = len(kube.reviews())
    r = c.auth.kubernetes.login("web", jwt, use_token=False, mount_point=PROD)
    a = r["auth"]
    check(a["client_token"].startswith("hvs."), "client token %r" % a["client_token"])
    check("k8s-web" in a["policies"] and "default" in a["policies"], "policies %r" % a["policies"])
    eq(a["metadata"]["service_account_name"], "web", "metadata name")
    eq(a["metadata"]["service_account_namespace"], "prod", "metadata namespace")
    eq(a["metadata"]["service_account_uid"], UID_WEB, "metadata uid")
    eq(a["metadata"]["role"], "web", "metadata role")
    check(3590 <= a["lease_duration"] <= 3600, "token ttl from the role: %r" % a["lease_duration"])
    eq(a["orphan"], True, "login tokens are orphans")
    reviews = kube.reviews()[before:]
    eq(len(reviews), 1, "one TokenReview per login")
    eq(reviews[0]["spec"]["token"], jwt, "the JWT was reviewed")
    rq = kube.srv.requests_to(kube.REVIEW)[-1]
    eq(rq["headers"]["authorization"], "Bearer " + kube.reviewer_token, "reviewer JWT as bearer")
    # The token works and says who it is.
    me = H.hvac_client(s, a["client_token"]).lookup_token()["data"]
    eq(me["display_name"], PROD + "-prod-web", "display name")
    eq(me["meta"]["service_account_name"], "web", "token meta")
    eq(me["path"], "auth/%s/login" % PROD, "token path")
    # Projected (bound) tokens with audiences; glob role on namespaces.
    jwt2 = kube.projected_token("team-blue", "worker", UID_API, aud=["https://kubernetes.default.svc.cluster.local"])
    a2 = c.auth.kubernetes.login("any", jwt2, use_token=False, mount_point=PROD)["auth"]
    check("k8s-any" in a2["policies"], "glob role policies %r" % a2["policies"])
    eq(a2["metadata"]["service_account_secret_name"], "", "projected tokens have no secret")
    eq(kube.reviews()[-1]["spec"]["audiences"], ["https://kubernetes.default.svc.cluster.local"],
       "the token's own audiences go to TokenReview")


def test_login_refusals():
    s, c, kube = setup()
    good = kube.legacy_token("prod", "web", UID_WEB)
    expect_denied(s, PROD, "web", kube.legacy_token("prod", "db", UID_DB), 403, "service account name not authorized",
                  "service account not bound")
    expect_denied(s, PROD, "web", kube.legacy_token("dev", "web", UID_WEB), 403, "namespace not authorized",
                  "namespace not bound")
    expect_denied(s, PROD, "any", kube.legacy_token("prod", "web", UID_WEB), 403, "namespace not authorized",
                  "namespace outside the glob")
    expect_denied(s, PROD, "nope", good, 400, 'invalid role name "nope"', "unknown role")
    expect_denied(s, PROD, None, good, 400, "missing role", "no role")
    expect_denied(s, PROD, "web", None, 400, "missing jwt", "no jwt")
    expect_denied(s, PROD, "web", "not-a-jwt", 400, "error parsing token", "malformed JWT")
    expect_denied(s, PROD, "web", good.rsplit(".", 1)[0], 400, "error parsing token", "JWT without signature")
    claims = {"kubernetes.io/serviceaccount/namespace": "prod",
              "kubernetes.io/serviceaccount/service-account.name": "web",
              "kubernetes.io/serviceaccount/service-account.uid": UID_WEB}
    expect_denied(s, PROD, "web", F.none_jwt(claims), 400, "none", "alg none")
    expect_denied(s, PROD, "web", F.hmac_jwt(F.pub_pem(kube.sa_key), claims), 400, "HMAC",
                  "HS256 keyed with the public key")
    # The API server has the last word: a forged signature passes the claim checks but not TokenReview.
    forged = kube.legacy_token("prod", "web", UID_WEB, key=F.rsa_key())
    expect_denied(s, PROD, "web", forged, 403, "lookup failed", "TokenReview: bad signature")
    # Deleted service account: TokenReview says unauthenticated.
    kube.deleted.add(UID_API)
    expect_denied(s, PROD, "web", kube.legacy_token("prod", "api", UID_API), 403, "lookup failed",
                  "TokenReview: deleted service account")
    kube.deleted.discard(UID_API)
    # Recreated account: TokenReview reports another uid than the JWT.
    jwt = kube.legacy_token("prod", "api", UID_API)
    kube.uid_override[jwt] = "another-uid"
    expect_denied(s, PROD, "web", jwt, 403, "UIDs did not match", "uid mismatch")
    kube.uid_override.clear()
    # Expired projected token: the API server refuses it.
    expect_denied(s, PROD, "any", kube.projected_token("team-a", "w", UID_API, exp_in=-600), 403, "lookup failed",
                  "expired projected token")


def test_audience_binding():
    s, c, kube = setup()
    s.ok("POST", "auth/%s/role/aud" % PROD, {"bound_service_account_names": ["web"],
                                              "bound_service_account_namespaces": ["prod"], "audience": "sigil",
                                              "token_policies": ["k8s-web"]}, statuses=(204,))
    ok = kube.projected_token("prod", "web", UID_WEB, aud=["sigil"])
    a = c.auth.kubernetes.login("aud", ok, use_token=False, mount_point=PROD)["auth"]
    check(a["client_token"], "audience-bound login")
    eq(kube.reviews()[-1]["spec"]["audiences"], ["sigil"], "role audience sent to TokenReview")
    expect_denied(s, PROD, "aud", kube.projected_token("prod", "web", UID_WEB, aud=["other"]), 403, "lookup failed",
                  "wrong audience")


def test_reviewer_and_api_failures():
    s, c, kube = setup()
    good = kube.legacy_token("prod", "web", UID_WEB)
    # A reviewer token the API server refuses.
    c.auth.kubernetes.configure(kube.url, kubernetes_ca_cert=kube.ca_pem, token_reviewer_jwt="wrong",
                                mount_point=PROD)
    expect_denied(s, PROD, "web", good, 403, "refused the TokenReview", "reviewer refused")
    # No reviewer token: the client's own JWT is the bearer (the fake refuses it).
    c.auth.kubernetes.configure(kube.url, kubernetes_ca_cert=kube.ca_pem, mount_point=PROD)
    expect_denied(s, PROD, "web", good, 403, "refused", "client JWT as bearer")
    eq(kube.srv.requests_to(kube.REVIEW)[-1]["headers"]["authorization"], "Bearer " + good,
       "client JWT used as bearer")
    # An API server whose certificate the configured CA does not vouch for.
    c.auth.kubernetes.configure(kube.url, kubernetes_ca_cert=F.TestCA("Other CA").pem,
                                token_reviewer_jwt=kube.reviewer_token, mount_point=PROD)
    r = s.req("POST", "auth/%s/login" % PROD, {"role": "web", "jwt": good}, token="")
    eq(r.status, 500, "untrusted API server certificate (Vault: 500)")
    check("Kubernetes API" in " ".join(r.json()["errors"]), "error names the API: %r" % r.json())
    # Unreachable API server.
    c.auth.kubernetes.configure("https://127.0.0.1:%d" % H.free_port(), kubernetes_ca_cert=kube.ca_pem,
                                token_reviewer_jwt=kube.reviewer_token, mount_point=PROD)
    r = s.req("POST", "auth/%s/login" % PROD, {"role": "web", "jwt": good}, token="")
    eq(r.status, 500, "unreachable API server")
    # Back to a working config.
    c.auth.kubernetes.configure(kube.url, kubernetes_ca_cert=kube.ca_pem, token_reviewer_jwt=kube.reviewer_token,
                                mount_point=PROD)
    check(c.auth.kubernetes.login("web", good, use_token=False, mount_point=PROD)["auth"]["client_token"],
          "login works again")


def test_local_pem_keys():
    s, c, kube = setup()
    before = len(kube.reviews())
    # hvac requires kubernetes_host ("" selects the offline mode) and certificates as pem_keys.
    c.auth.kubernetes.configure("", pem_keys=[F.self_signed_pem(kube.sa_key)], mount_point=LOCAL)
    c.auth.kubernetes.create_role("web", ["web"], ["prod"], policies=["k8s-local"], mount_point=LOCAL)
    a = c.auth.kubernetes.login("web", kube.legacy_token("prod", "web", UID_WEB), use_token=False,
                                mount_point=LOCAL)["auth"]
    check("k8s-local" in a["policies"], "local login policies %r" % a["policies"])
    a = c.auth.kubernetes.login("web", kube.projected_token("prod", "web", UID_WEB), use_token=False,
                                mount_point=LOCAL)["auth"]
    check(a["client_token"], "local login with a projected token")
    eq(len(kube.reviews()), before, "no TokenReview in the offline mode")

    other = F.rsa_key()
    expect_denied(s, LOCAL, "web", kube.legacy_token("prod", "web", UID_WEB, key=other), 403,
                  "no known key successfully validated", "wrong signature")
    ec = F.ec_key()
    expect_denied(s, LOCAL, "web", F.sign_jwt(ec, kube.projected_claims("prod", "web", UID_WEB),
                                              "ES256"), 403, "no known key fits", "EC token, RSA key")
    expect_denied(s, LOCAL, "web", kube.projected_token("prod", "web", UID_WEB, exp_in=-300), 403, "expired",
                  "expired token")
    claims = kube.projected_claims("prod", "web", UID_WEB)
    expect_denied(s, LOCAL, "web", F.hmac_jwt(F.pub_pem(kube.sa_key), claims), 400, "HMAC",
                  "HMAC with the public key as secret")
    expect_denied(s, LOCAL, "web", F.none_jwt(claims), 400, "none", "alg none")
    # A JWT whose payload was edited after signing.
    tok = kube.projected_token("prod", "db", UID_DB)
    h, p, sig = tok.split(".")
    edited = F.b64u_json(dict(kube.projected_claims("prod", "web", UID_WEB)))
    expect_denied(s, LOCAL, "web", h + "." + edited + "." + sig, 403, "no known key successfully validated",
                  "payload swapped under a valid signature")
    expect_denied(s, LOCAL, "web", kube.legacy_token("prod", "db", UID_DB), 403, "service account name not authorized",
                  "offline: name not bound")
    # Issuer validation on, with the cluster's issuer.
    s.ok("POST", "auth/%s/config" % LOCAL, {"pem_keys": [F.pub_pem(kube.sa_key)], "disable_iss_validation": False,
                                             "issuer": "https://kubernetes.default.svc.cluster.local"},
         statuses=(204,))
    check(c.auth.kubernetes.login("web", kube.projected_token("prod", "web", UID_WEB), use_token=False,
                                  mount_point=LOCAL)["auth"]["client_token"], "issuer accepted")
    expect_denied(s, LOCAL, "web", kube.projected_token("prod", "web", UID_WEB, iss="https://evil"), 403, "iss",
                  "wrong issuer")
    # Audience on the role, checked locally.
    s.ok("POST", "auth/%s/role/web" % LOCAL, {"audience": "sigil"}, statuses=(204,))
    expect_denied(s, LOCAL, "web", kube.projected_token("prod", "web", UID_WEB, aud=["other"]), 403, "aud",
                  "offline: wrong audience")
    check(c.auth.kubernetes.login("web", kube.projected_token("prod", "web", UID_WEB, aud=["sigil"]),
                                  use_token=False, mount_point=LOCAL)["auth"]["client_token"], "audience accepted")


def test_token_bound_cidrs_gate_login():
    s, c, kube = setup()
    s.ok("POST", "auth/%s/role/cidr" % PROD, {"bound_service_account_names": ["web"],
                                               "bound_service_account_namespaces": ["prod"],
                                               "token_bound_cidrs": ["10.99.0.0/16"]}, statuses=(204,))
    expect_denied(s, PROD, "cidr", kube.legacy_token("prod", "web", UID_WEB), 403, "permission denied",
                  "login from outside token_bound_cidrs")


def test_templated_pki_role_limits_pods_to_their_own_name():
    s, c, kube = setup()
    acc = state["accessor"]
    sa = "{{identity.entity.aliases.%s.metadata.service_account_name}}" % acc
    ns = "{{identity.entity.aliases.%s.metadata.service_account_namespace}}" % acc
    H.enable_pki(s, PKI, "8760h")
    s.ok("POST", PKI + "/root/generate/internal", {"common_name": "k8s root", "key_type": "ec", "ttl": "8000h"})
    s.ok("POST", PKI + "/roles/pods", {
        "allowed_domains": ["%s.%s.svc" % (sa, ns), "%s.%s.svc.cluster.local" % (sa, ns)],
        "allowed_domains_template": True, "allow_bare_domains": True, "allow_subdomains": False,
        "allowed_uri_sans": ["spiffe://cluster.local/ns/%s/sa/%s" % (ns, sa)], "allowed_uri_sans_template": True,
        "key_type": "ec", "ttl": "1h"}, statuses=(200, 204))
    c.sys.create_or_update_policy("k8s-web", 'path "%s/issue/pods" { capabilities = ["update"] }' % PKI)

    web = c.auth.kubernetes.login("web", kube.legacy_token("prod", "web", UID_WEB), use_token=False,
                                  mount_point=PROD)["auth"]["client_token"]
    api = c.auth.kubernetes.login("web", kube.legacy_token("prod", "api", UID_API), use_token=False,
                                  mount_point=PROD)["auth"]["client_token"]
    r = s.req("POST", PKI + "/issue/pods", {"common_name": "web.prod.svc",
                                            "alt_names": "web.prod.svc.cluster.local",
                                            "uri_sans": "spiffe://cluster.local/ns/prod/sa/web"}, token=web)
    H.expect_ok(r, "web pod gets web.prod.svc")
    cert = H.load_cert(r.json()["data"]["certificate"])
    check("web.prod.svc" in str(H.cert_sans(cert)), "SANs %r" % (H.cert_sans(cert),))
    for cn, uri, who in (("api.prod.svc", None, "another service account's name"),
                         ("web.dev.svc", None, "another namespace"),
                         ("x.web.prod.svc", None, "a subdomain"),
                         ("web.prod.svc", "spiffe://cluster.local/ns/prod/sa/api", "another account's SPIFFE id")):
        body = {"common_name": cn}
        if uri:
            body["uri_sans"] = uri
        r = s.req("POST", PKI + "/issue/pods", body, token=web)
        H.expect_error(r, 400, "web pod asks for " + who)
    r = s.req("POST", PKI + "/issue/pods", {"common_name": "api.prod.svc"}, token=api)
    H.expect_ok(r, "api pod gets api.prod.svc")
    r = s.req("POST", PKI + "/issue/pods", {"common_name": "web.prod.svc"}, token=api)
    H.expect_error(r, 400, "api pod cannot take web's name")
    # The root token has no Kubernetes identity: the templated entries allow nothing.
    r = s.req("POST", PKI + "/issue/pods", {"common_name": "web.prod.svc"})
    H.expect_error(r, 400, "no identity, no templated names")


def test_hvac_errors_are_exceptions():
    s, c, kube = setup()
    try:
        c.auth.kubernetes.login("web", kube.legacy_token("prod", "db", UID_DB), mount_point=PROD)
    except hvac.exceptions.Forbidden:
        pass
    else:
        raise H.TestFailure("hvac did not raise Forbidden for an unbound service account")
    try:
        c.auth.kubernetes.login("nope", kube.legacy_token("prod", "web", UID_WEB), mount_point=PROD)
    except hvac.exceptions.InvalidRequest:
        pass
    else:
        raise H.TestFailure("hvac did not raise InvalidRequest for an unknown role")


def test_disable_mount_purges_roles():
    s, c, kube = setup()
    c.sys.disable_auth_method(LOCAL)
    c.sys.enable_auth_method("kubernetes", path=LOCAL)
    r = s.req("GET", "auth/%s/role/web" % LOCAL)
    eq(r.status, 404, "a re-enabled mount starts empty")
    r = s.req("POST", "auth/%s/login" % LOCAL, {"role": "web", "jwt": kube.legacy_token("prod", "web", UID_WEB)},
              token="")
    H.expect_error(r, 400, "login on an unconfigured mount")


def test_audit_records_denials_without_secrets():
    s, c, kube = setup()
    with open(state["audit"]) as f:
        text = f.read()
    lines = [json.loads(ln) for ln in text.splitlines() if ln.strip()]
    denials = [e for e in lines if e["type"] == "response" and e["request"]["path"].endswith("/login")
               and e["response"]["status"] >= 400]
    check(len(denials) >= 20, "refused logins audited: %d" % len(denials))
    errors = " | ".join(e["error"] for e in denials)
    for needle in ("service account name not authorized", "namespace not authorized", "lookup failed",
                   "UIDs did not match", "no known key", "HMAC", "none", "expired"):
        check(needle.lower() in errors.lower(), "audited denials mention %r" % needle)
    check(kube.reviewer_token not in text, "the reviewer JWT appears in clear in the audit log")
    for jwt in state["jwts"]:
        sig = jwt.rsplit(".", 1)[-1]
        check(jwt not in text and (len(sig) < 16 or sig not in text), "a service account JWT appears in clear")


if __name__ == "__main__":
    try:
        H.main(globals())
    finally:
        if "kube" in state:
            state["kube"].stop()
