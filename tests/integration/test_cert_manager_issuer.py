#!/usr/bin/python3
"""cert-manager-issuer/: the manifests and the exchanges they lead to.

- Every cert-manager object (Issuer, ClusterIssuer, Certificate) validates
  against the openAPIV3Schema of cert-manager's own CRDs
  (../shared/data/cert-manager-crds, python3-jsonschema), and the validator
  is shown to reject broken copies.
- Kubernetes objects get a structural schema check per kind (kubectl cannot
  validate without an API server) plus the cross references a typo would
  break: volumes, ConfigMaps, Secrets, selectors, ports, RBAC subjects.
- The Sigil config in the ConfigMap starts a real server (paths moved to a
  temporary directory); the placeholder KEK is refused.
- Against that server, over TLS trusted only through the manifests'
  caBundle mechanism: cert-manager's Vault issuer exchange (sys/health,
  Kubernetes login {role, jwt} reviewed by a fake TokenReview API, sign with
  string-typed fields) with the ClusterIssuer's and the namespaced Issuer's
  values, and cert-manager's ACME exchange (directory, HEAD newNonce,
  newAccount with HS256 EAB and an RS256 account key, onlyReturnExisting,
  newOrder 201, http-01, finalize 200, PEM chain) on the ClusterIssuer's
  per-role directory.
"""

import base64
import copy
import glob
import hashlib
import hmac
import json
import os
import re
import ssl
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import jwtfake as F  # noqa: E402
from harness import check, eq  # noqa: E402
import test_cert_manager as CM  # noqa: E402  (cert-manager's chain check)

import jsonschema  # noqa: E402  (Debian python3-jsonschema)
import yaml  # noqa: E402  (Debian python3-yaml)
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding, rsa  # noqa: E402

MANIFESTS = os.path.join(H.REPO, "cert-manager-issuer")
CRDS = os.environ.get("SIGIL_CM_CRDS", os.path.join(os.path.dirname(H.REPO), "shared", "data", "cert-manager-crds"))
if not os.path.isdir(CRDS):
    CRDS = "/work/shared/data/cert-manager-crds"
CM_KINDS = {"Issuer": "issuers", "ClusterIssuer": "clusterissuers", "Certificate": "certificates",
            "CertificateRequest": "certificaterequests"}
# Objects the README has the operator create by hand (they hold cluster-specific
# material): name -> the README must mention how.
MADE_BY_README = {"sigil-tls", "sigil-ca"}
CM_NAMESPACE = "cert-manager"   # cert-manager's cluster resource namespace
ACME_DOMAIN = "acme.localhost"  # resolves to loopback (RFC 6761 6.3) for http-01
state = {}


# ---------------------------------------------------------------- manifests


def docs():
    """[(file name, object)] of every YAML document under cert-manager-issuer/."""
    if "docs" not in state:
        out = []
        files = sorted(glob.glob(os.path.join(MANIFESTS, "*.yaml")))
        check(files, "no manifests in " + MANIFESTS)
        for path in files:
            with open(path) as f:
                for d in yaml.safe_load_all(f):
                    if d is not None:
                        out.append((os.path.basename(path), d))
        state["docs"] = out
    return state["docs"]


def find(kind, name, namespace=None):
    hits = [d for _, d in docs() if d.get("kind") == kind and d["metadata"].get("name") == name and
            (namespace is None or d["metadata"].get("namespace") == namespace)]
    check(len(hits) == 1, "%d %s objects named %s" % (len(hits), kind, name))
    return hits[0]


def of_kind(kind):
    return [d for _, d in docs() if d.get("kind") == kind]


def crd_schema(kind):
    """The CRD (parsed once: the files are large) and its versions by name."""
    cache = state.setdefault("crds", {})
    if kind not in cache:
        path = os.path.join(CRDS, "cert-manager.io_%s.yaml" % CM_KINDS[kind])
        with open(path) as f:
            cache[kind] = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    crd = cache[kind]
    eq(crd["spec"]["names"]["kind"], kind, "CRD kind")
    versions = {v["name"]: v for v in crd["spec"]["versions"]}
    return crd, versions


def validator_for(kind, version):
    crd, versions = crd_schema(kind)
    check(version in versions and versions[version].get("served"), "%s %s is not served by the CRD" % (kind, version))
    schema = versions[version]["schema"]["openAPIV3Schema"]
    # OpenAPI v3 schemas are JSON Schema draft 4 plus x-kubernetes-* keywords
    # the validator ignores.
    return crd, jsonschema.Draft4Validator(schema)


GO_DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$")


def go_duration_seconds(s):
    check(GO_DURATION.match(s), "%r is not a Go duration" % s)
    mult = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * mult[u] for n, _, u in re.findall(r"([0-9]+(\.[0-9]+)?)(ns|us|µs|ms|s|m|h)", s))


def go_duration_string(seconds):
    """Go's time.Duration.String() for whole seconds ("1h0m0s", "20m0s", "45s")."""
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    if h:
        return "%dh%dm%ds" % (h, m, s)
    if m:
        return "%dm%ds" % (m, s)
    return "%ds" % s


def test_cert_manager_objects_validate_against_crds():
    seen = set()
    for fname, d in docs():
        group, _, version = d.get("apiVersion", "").partition("/")
        if group != "cert-manager.io":
            continue
        kind = d.get("kind")
        check(kind in CM_KINDS, "%s: unknown cert-manager kind %r" % (fname, kind))
        crd, v = validator_for(kind, version)
        errors = sorted(v.iter_errors(d), key=lambda e: list(e.path))
        check(not errors, "%s %s/%s: %s at %s" % (fname, kind, d["metadata"].get("name"),
                                                  errors[0].message if errors else "",
                                                  "/".join(map(str, errors[0].path)) if errors else ""))
        namespaced = crd["spec"]["scope"] == "Namespaced"
        eq("namespace" in d["metadata"], namespaced, "%s %s: metadata.namespace present" % (fname, kind))
        seen.add(kind)
    eq(seen, {"Issuer", "ClusterIssuer", "Certificate"}, "cert-manager kinds in the manifests")
    # Both issuer types are there: ACME (per-role directory) and Vault (sign path).
    cis = {d["metadata"]["name"]: d["spec"] for d in of_kind("ClusterIssuer")}
    acme = [s["acme"] for s in cis.values() if "acme" in s]
    vault = [s["vault"] for s in cis.values() if "vault" in s]
    eq((len(acme), len(vault)), (1, 1), "one ACME and one Vault ClusterIssuer")
    check(re.search(r"/v1/[a-z0-9_-]+/roles/[a-z0-9_-]+/acme/directory$", acme[0]["server"]),
          "ACME server is not a per-role Sigil directory: %s" % acme[0]["server"])
    check("externalAccountBinding" in acme[0] and "keyAlgorithm" not in acme[0]["externalAccountBinding"],
          "EAB set, without the deprecated keyAlgorithm")
    kinds = [next(iter(k for k in ("http01", "dns01") if k in s)) for s in acme[0]["solvers"]]
    eq(sorted(kinds), ["dns01", "http01"], "solvers")
    check("ingress" in [s for s in acme[0]["solvers"] if "http01" in s][0]["http01"], "http-01 via Ingress")
    check("rfc2136" in [s for s in acme[0]["solvers"] if "dns01" in s][0]["dns01"], "dns-01 via RFC 2136")
    check(not acme[0].get("skipTLSVerify") and acme[0].get("caBundle"), "ACME trusts Sigil through caBundle")
    for vs in vault + [d["spec"]["vault"] for d in of_kind("Issuer")]:
        check(re.match(r"^[a-z0-9_-]+/sign/[a-z0-9_-]+$", vs["path"]),
              "Vault path must be <mount>/sign/<role> (issue/ makes a CertificateRequest storm): %s" % vs["path"])
        check(vs.get("caBundle") and "kubernetes" in vs["auth"], "caBundle and Kubernetes auth")
        base64.b64decode(vs["caBundle"], validate=True)
    # Short-lived Certificates: renewBefore well inside duration.
    for c in of_kind("Certificate"):
        dur = go_duration_seconds(c["spec"]["duration"])
        rb = go_duration_seconds(c["spec"]["renewBefore"])
        check(dur <= 24 * 3600 and 0 < rb < dur, "%s: duration %s renewBefore %s" %
              (c["metadata"]["name"], c["spec"]["duration"], c["spec"]["renewBefore"]))
        ref = c["spec"]["issuerRef"]
        if ref["kind"] == "ClusterIssuer":
            find("ClusterIssuer", ref["name"])
        else:
            find("Issuer", ref["name"], c["metadata"]["namespace"])
    # The EAB key reference points at a Secret in cert-manager's namespace with that key.
    eab = acme[0]["externalAccountBinding"]["keySecretRef"]
    check(eab["key"] in find("Secret", eab["name"], CM_NAMESPACE)["stringData"], "EAB Secret key")


def test_crd_validation_rejects_broken_copies():
    """The schema check is not vacuous: typical mistakes fail it."""
    ci = copy.deepcopy(find("ClusterIssuer", "sigil-vault"))
    del ci["spec"]["vault"]["path"]
    _expect_invalid(ci, "'path' is a required property")
    ci = copy.deepcopy(find("ClusterIssuer", "sigil-vault"))
    ci["spec"]["vault"]["auth"]["kubernetes"]["serviceAccountRef"] = {"audiences": ["x"]}
    _expect_invalid(ci, "'name' is a required property")
    ci = copy.deepcopy([d for d in of_kind("ClusterIssuer") if "acme" in d["spec"]][0])
    ci["spec"]["acme"]["externalAccountBinding"]["keySecretRef"] = "sigil-acme-eab"
    _expect_invalid(ci, "is not of type 'object'")
    ci = copy.deepcopy([d for d in of_kind("ClusterIssuer") if "acme" in d["spec"]][0])
    ci["spec"]["acme"]["solvers"][0]["http01"]["ingress"]["serviceType"] = 7
    _expect_invalid(ci, "is not of type 'string'")
    cert = copy.deepcopy(of_kind("Certificate")[0])
    del cert["spec"]["secretName"]
    _expect_invalid(cert, "'secretName' is a required property")
    cert = copy.deepcopy(of_kind("Certificate")[0])
    cert["spec"]["privateKey"]["algorithm"] = "DSA"
    _expect_invalid(cert, "is not one of")


def _expect_invalid(obj, contains):
    _, v = validator_for(obj["kind"], obj["apiVersion"].split("/")[1])
    msgs = [e.message for e in v.iter_errors(obj)]
    check(any(contains in m for m in msgs), "%s: broken copy not rejected with %r: %r" % (obj["kind"], contains, msgs))


# ---- Kubernetes objects: a structural schema per kind

DNS1123 = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
STR = {"type": "string"}
STRMAP = {"type": "object", "additionalProperties": STR}
STRLIST = {"type": "array", "items": STR}


def _obj(props, required=(), extra=False):
    return {"type": "object", "properties": props, "required": list(required), "additionalProperties": extra}


METADATA = _obj({"name": {"type": "string", "pattern": DNS1123, "maxLength": 253},
                 "namespace": {"type": "string", "pattern": LABEL, "maxLength": 63},
                 "labels": STRMAP, "annotations": STRMAP}, ["name"])
PORT = {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 65535}, {"type": "string", "pattern": LABEL}]}
VOLUME_MOUNT = _obj({"name": STR, "mountPath": {"type": "string", "pattern": "^/"}, "readOnly": {"type": "boolean"},
                     "subPath": STR}, ["name", "mountPath"])
PROBE = _obj({"httpGet": _obj({"path": STR, "port": PORT, "scheme": {"enum": ["HTTP", "HTTPS"]}, "host": STR},
                              ["port"]),
              "periodSeconds": {"type": "integer"}, "initialDelaySeconds": {"type": "integer"}})
SEC_CTX = _obj({"allowPrivilegeEscalation": {"type": "boolean"}, "readOnlyRootFilesystem": {"type": "boolean"},
                "runAsNonRoot": {"type": "boolean"}, "runAsUser": {"type": "integer"},
                "capabilities": _obj({"drop": STRLIST, "add": STRLIST})})
CONTAINER = _obj({
    "name": {"type": "string", "pattern": LABEL}, "image": STR, "command": STRLIST, "args": STRLIST,
    "ports": {"type": "array", "items": _obj({"name": {"type": "string", "pattern": LABEL, "maxLength": 15},
                                              "containerPort": {"type": "integer", "minimum": 1, "maximum": 65535},
                                              "protocol": {"enum": ["TCP", "UDP", "SCTP"]}}, ["containerPort"])},
    "readinessProbe": PROBE, "livenessProbe": PROBE, "securityContext": SEC_CTX,
    "resources": _obj({"requests": STRMAP, "limits": STRMAP}),
    "volumeMounts": {"type": "array", "items": VOLUME_MOUNT},
    "env": {"type": "array", "items": _obj({"name": STR, "value": STR}, ["name"])}}, ["name", "image"])
VOLUME = {"type": "object", "required": ["name"], "additionalProperties": False, "minProperties": 2,
          "maxProperties": 2, "properties": {
              "name": {"type": "string", "pattern": LABEL},
              "configMap": _obj({"name": STR, "defaultMode": {"type": "integer"}}, ["name"]),
              "secret": _obj({"secretName": STR, "defaultMode": {"type": "integer", "maximum": 0o777}},
                             ["secretName"]),
              "emptyDir": _obj({"medium": {"enum": ["", "Memory"]}, "sizeLimit": STR}),
              "projected": _obj({"sources": {"type": "array", "items": _obj({
                  "serviceAccountToken": _obj({"path": STR, "audience": STR,
                                               "expirationSeconds": {"type": "integer", "minimum": 600}},
                                              ["path"])})}}, ["sources"])}}
POD_SPEC = _obj({"serviceAccountName": STR, "shareProcessNamespace": {"type": "boolean"},
                 "securityContext": _obj({"runAsNonRoot": {"type": "boolean"}, "runAsUser": {"type": "integer"},
                                          "runAsGroup": {"type": "integer"}, "fsGroup": {"type": "integer"}}),
                 "initContainers": {"type": "array", "items": CONTAINER},
                 "containers": {"type": "array", "items": CONTAINER, "minItems": 1},
                 "volumes": {"type": "array", "items": VOLUME}}, ["containers"])
SUBJECT = _obj({"kind": {"enum": ["ServiceAccount", "User", "Group"]}, "name": STR, "namespace": STR,
                "apiGroup": STR}, ["kind", "name"])
ROLE_REF = _obj({"apiGroup": {"const": "rbac.authorization.k8s.io"}, "kind": {"enum": ["Role", "ClusterRole"]},
                 "name": STR}, ["apiGroup", "kind", "name"])


def _top(api, kind, props, required=()):
    p = {"apiVersion": {"const": api}, "kind": {"const": kind}, "metadata": METADATA}
    p.update(props)
    return _obj(p, ["apiVersion", "kind", "metadata"] + list(required))


K8S_SCHEMAS = {
    "Namespace": _top("v1", "Namespace", {}),
    "ServiceAccount": _top("v1", "ServiceAccount", {}),
    "ConfigMap": _top("v1", "ConfigMap", {"data": STRMAP}),
    "Secret": _top("v1", "Secret", {"type": STR, "stringData": STRMAP, "data": STRMAP}),
    "Service": _top("v1", "Service", {"spec": _obj({
        "type": {"enum": ["ClusterIP", "NodePort", "LoadBalancer"]}, "selector": STRMAP,
        "ports": {"type": "array", "minItems": 1, "items": _obj({
            "name": STR, "port": {"type": "integer", "minimum": 1, "maximum": 65535}, "targetPort": PORT,
            "protocol": {"enum": ["TCP", "UDP"]}}, ["port"])}}, ["ports", "selector"])}, ["spec"]),
    "StatefulSet": _top("apps/v1", "StatefulSet", {"spec": _obj({
        "replicas": {"type": "integer", "minimum": 0}, "serviceName": STR,
        "selector": _obj({"matchLabels": STRMAP}, ["matchLabels"]),
        "template": _obj({"metadata": _obj({"labels": STRMAP}, ["labels"]), "spec": POD_SPEC},
                         ["metadata", "spec"]),
        "volumeClaimTemplates": {"type": "array", "items": _obj({
            "metadata": _obj({"name": STR}, ["name"]),
            "spec": _obj({"accessModes": STRLIST, "resources": _obj({"requests": _obj({"storage": STR},
                                                                                        ["storage"])})},
                         ["accessModes", "resources"])}, ["metadata", "spec"])}},
        ["selector", "serviceName", "template"])}, ["spec"]),
    "Pod": _top("v1", "Pod", {"spec": POD_SPEC}, ["spec"]),
    "ClusterRoleBinding": _top("rbac.authorization.k8s.io/v1", "ClusterRoleBinding",
                               {"roleRef": ROLE_REF, "subjects": {"type": "array", "items": SUBJECT, "minItems": 1}},
                               ["roleRef", "subjects"]),
    "RoleBinding": _top("rbac.authorization.k8s.io/v1", "RoleBinding",
                        {"roleRef": ROLE_REF, "subjects": {"type": "array", "items": SUBJECT, "minItems": 1}},
                        ["roleRef", "subjects"]),
    "Role": _top("rbac.authorization.k8s.io/v1", "Role", {"rules": {"type": "array", "minItems": 1, "items": _obj({
        "apiGroups": STRLIST, "resources": STRLIST, "resourceNames": STRLIST, "verbs": STRLIST},
        ["apiGroups", "resources", "verbs"])}}, ["rules"]),
}
NAMESPACED = {"ServiceAccount", "ConfigMap", "Secret", "Service", "StatefulSet", "Pod", "Role", "RoleBinding"}


def _pod_specs():
    """(object, pod spec, pod labels) of every Pod and StatefulSet."""
    out = []
    for d in of_kind("Pod"):
        out.append((d, d["spec"], d["metadata"].get("labels", {})))
    for d in of_kind("StatefulSet"):
        out.append((d, d["spec"]["template"]["spec"], d["spec"]["template"]["metadata"]["labels"]))
    return out


def _defined(kind, name, ns):
    return any(x["metadata"]["name"] == name and x["metadata"].get("namespace") == ns for x in of_kind(kind))


def test_kubernetes_objects_structure():
    kinds = set()
    for fname, d in docs():
        if d.get("apiVersion", "").startswith("cert-manager.io/"):
            continue
        kind = d.get("kind")
        check(kind in K8S_SCHEMAS, "%s: no structural schema for kind %r" % (fname, kind))
        errors = list(jsonschema.Draft7Validator(K8S_SCHEMAS[kind]).iter_errors(d))
        check(not errors, "%s %s/%s: %s at %s" % (fname, kind, d["metadata"].get("name"),
                                                  errors[0].message if errors else "",
                                                  "/".join(map(str, errors[0].path)) if errors else ""))
        eq("namespace" in d["metadata"], kind in NAMESPACED, "%s %s namespaced" % (fname, kind))
        kinds.add(kind)
    for k in ("Namespace", "ServiceAccount", "ClusterRoleBinding", "ConfigMap", "Secret", "Service", "StatefulSet",
              "Pod"):
        check(k in kinds, "no %s in the manifests" % k)
    # The schema check is not vacuous.
    bad = copy.deepcopy(find("StatefulSet", "sigil", "sigil"))
    bad["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "8200"
    check(list(jsonschema.Draft7Validator(K8S_SCHEMAS["StatefulSet"]).iter_errors(bad)), "string port accepted")
    bad = copy.deepcopy(find("Service", "sigil", "sigil"))
    bad["spec"]["prots"] = bad["spec"].pop("ports")
    check(list(jsonschema.Draft7Validator(K8S_SCHEMAS["Service"]).iter_errors(bad)), "misspelt key accepted")

    with open(os.path.join(MANIFESTS, "README.md")) as f:
        readme = f.read()
    for obj, spec, labels in _pod_specs():
        ns = obj["metadata"]["namespace"]
        where = "%s/%s" % (obj["kind"], obj["metadata"]["name"])
        vols = {v["name"]: v for v in spec.get("volumes", [])}
        claims = {c["metadata"]["name"] for c in obj.get("spec", {}).get("volumeClaimTemplates", [])}
        for c in spec.get("initContainers", []) + spec["containers"]:
            ports = {p.get("name") for p in c.get("ports", [])} | {p["containerPort"] for p in c.get("ports", [])}
            for m in c.get("volumeMounts", []):
                check(m["name"] in vols or m["name"] in claims, "%s: %s mounts unknown volume %s" %
                      (where, c["name"], m["name"]))
            for probe in ("readinessProbe", "livenessProbe"):
                p = c.get(probe, {}).get("httpGet")
                if p and "host" not in p:
                    check(p["port"] in ports, "%s: %s %s port %r not a container port" % (where, c["name"], probe,
                                                                                         p["port"]))
        for v in vols.values():
            ref = (v.get("configMap") or {}).get("name") or (v.get("secret") or {}).get("secretName")
            if ref is None:
                continue
            kind = "ConfigMap" if "configMap" in v else "Secret"
            if ref in MADE_BY_README:
                check(ref in readme, "%s: %s %s is neither defined nor explained in the README" % (where, kind, ref))
            else:
                check(_defined(kind, ref, ns), "%s: volume %s refers to missing %s %s/%s" %
                      (where, v["name"], kind, ns, ref))
        sa = spec.get("serviceAccountName")
        if sa:
            check(_defined("ServiceAccount", sa, ns), "%s: service account %s/%s not defined" % (where, ns, sa))
    for sts in of_kind("StatefulSet"):
        sel = sts["spec"]["selector"]["matchLabels"]
        tl = sts["spec"]["template"]["metadata"]["labels"]
        check(all(tl.get(k) == v for k, v in sel.items()), "StatefulSet selector does not match its pods")
        svc = find("Service", sts["spec"]["serviceName"], sts["metadata"]["namespace"])
        check(all(tl.get(k) == v for k, v in svc["spec"]["selector"].items()), "Service selects no Sigil pod")
        names = {p.get("name") for c in sts["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}
        for p in svc["spec"]["ports"]:
            check(p.get("targetPort") in names or isinstance(p.get("targetPort"), int), "Service targetPort")
    for b in of_kind("RoleBinding") + of_kind("ClusterRoleBinding"):
        for s in b["subjects"]:
            if s["kind"] == "ServiceAccount" and s["namespace"] != CM_NAMESPACE:
                check(_defined("ServiceAccount", s["name"], s["namespace"]), "binding subject %s/%s missing" %
                      (s["namespace"], s["name"]))
        if b["roleRef"]["kind"] == "Role":
            role = find("Role", b["roleRef"]["name"], b["metadata"]["namespace"])
            rule = role["rules"][0]
            # cert-manager's serviceAccountRef needs create on serviceaccounts/token of that account.
            eq((rule["resources"], rule["verbs"]), (["serviceaccounts/token"], ["create"]), "token request rule")
            check(_defined("ServiceAccount", rule["resourceNames"][0], b["metadata"]["namespace"]),
                  "token request for an undefined account")
    # TokenReview permission for Sigil's own service account.
    crb = [b for b in of_kind("ClusterRoleBinding") if b["roleRef"]["name"] == "system:auth-delegator"]
    check(crb and any(s["name"] == find("StatefulSet", "sigil", "sigil")["spec"]["template"]["spec"]
                      ["serviceAccountName"] for s in crb[0]["subjects"]),
          "Sigil's service account is not bound to system:auth-delegator")
    # Every Vault issuer's token request is allowed by a Role in the issuer's namespace.
    for iss in of_kind("ClusterIssuer") + of_kind("Issuer"):
        ref = iss["spec"].get("vault", {}).get("auth", {}).get("kubernetes", {}).get("serviceAccountRef")
        if ref:
            ns = iss["metadata"].get("namespace", CM_NAMESPACE)
            check(_defined("ServiceAccount", ref["name"], ns), "issuer %s: account %s/%s missing" %
                  (iss["metadata"]["name"], ns, ref["name"]))
            check(any(r["metadata"]["namespace"] == ns and ref["name"] in r["rules"][0].get("resourceNames", [])
                      for r in of_kind("Role")), "no token-request Role for %s/%s" % (ns, ref["name"]))


# ---------------------------------------------------------------- the server from the ConfigMap


def sigil_config():
    cm = find("ConfigMap", "sigil-config", "sigil")
    return json.loads(cm["data"]["sigil.json"])


def _mounts_of(name):
    sts = find("StatefulSet", "sigil", "sigil")
    c = [c for c in sts["spec"]["template"]["spec"]["containers"] if c["name"] == name][0]
    return {m["mountPath"]: m["name"] for m in c["volumeMounts"]}, c


def test_configmap_config_matches_the_pod():
    cfg = sigil_config()
    mounts, c = _mounts_of("sigil")
    vols = {v["name"]: v for v in find("StatefulSet", "sigil", "sigil")["spec"]["template"]["spec"]["volumes"]}

    def volume_of(path):
        best = max((m for m in mounts if path.startswith(m.rstrip("/") + "/")), key=len, default=None)
        check(best is not None, "%s is on no volume of the sigil container" % path)
        return mounts[best]

    eq(vols[volume_of(cfg["tls_cert_file"])].get("secret", {}).get("secretName"), "sigil-tls", "TLS cert volume")
    eq(volume_of(cfg["tls_key_file"]), volume_of(cfg["tls_cert_file"]), "TLS key volume")
    check(volume_of(cfg["data_dir"]) in {t["metadata"]["name"] for t in
                                         find("StatefulSet", "sigil", "sigil")["spec"]["volumeClaimTemplates"]},
          "data_dir is not on the persistent volume")
    kv = vols[volume_of(cfg["kek_file"])]
    check("emptyDir" in kv and kv["emptyDir"].get("medium") == "Memory", "KEK copy not in a memory volume")
    init = find("StatefulSet", "sigil", "sigil")["spec"]["template"]["spec"]["initContainers"][0]
    check(cfg["kek_file"] in " ".join(init["command"]) and "0600" in " ".join(init["command"]),
          "init container does not install the KEK 0600 at kek_file")
    port = int(cfg["listen_address"].rsplit(":", 1)[1])
    eq([p["containerPort"] for p in c["ports"]], [port], "container port = listen port")
    svc = find("Service", "sigil", "sigil")
    ext = urllib.parse.urlsplit(cfg["external_url"])
    eq(ext.hostname, "%s.%s.svc" % (svc["metadata"]["name"], svc["metadata"]["namespace"]), "external_url host")
    eq(ext.port, svc["spec"]["ports"][0]["port"], "external_url port")
    for d in of_kind("ClusterIssuer") + of_kind("Issuer"):
        url = (d["spec"].get("vault") or d["spec"].get("acme"))["server"]
        check(url.startswith(cfg["external_url"] + "/") or url == cfg["external_url"],
              "%s server %s is not under external_url" % (d["metadata"]["name"], url))


def server():
    """A TLS server started from the ConfigMap's config, paths moved to a temp dir."""
    s = state.get("srv")
    if s is not None and s.running:
        return s
    cfg = sigil_config()
    s = H.Server("config", name="cm-issuer")
    crt, key = H.make_tls_cert(s.base)
    s.cacert = crt
    s.port = H.free_port()
    moved = {"tls_cert_file": crt, "tls_key_file": key, "data_dir": os.path.join(s.base, "data"),
             "kek_file": os.path.join(s.base, "kek")}
    fd = os.open(moved["kek_file"], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, (os.urandom(32).hex() + "\n").encode())
    os.close(fd)
    for k, v in moved.items():
        check(k in cfg, "ConfigMap config lacks %s" % k)
        cfg[k] = v
    # The in-cluster name is not resolvable here: the URL clients use in the test.
    cfg["external_url"] = "https://127.0.0.1:%d" % s.port
    s.cfg = cfg
    s.data_dir = moved["data_dir"]
    s.start()
    state["srv"] = s
    return s


def test_configmap_config_starts_server_and_placeholder_kek_is_refused():
    s = server()
    s.assert_healthy("config from the ConfigMap")
    check(os.path.exists(os.path.join(s.data_dir, "root-token")), "first start wrote no root token")
    # The Secret's placeholder must stop the server, never be taken as a key.
    placeholder = find("Secret", "sigil-kek", "sigil")["stringData"]["kek"]
    bad = H.Server("config", name="cm-badkek")
    bad.cfg = dict(sigil_config(), tls_disable=True, data_dir=os.path.join(bad.base, "data"),
                   kek_file=H.tmpfile(placeholder + "\n", "kek"))
    for k in ("tls_cert_file", "tls_key_file", "external_url"):
        bad.cfg.pop(k, None)
    rc, out = bad.expect_start_failure()
    check(rc != 0 and "64 hex" in out, "placeholder KEK: exit %d, %s" % (rc, out[-300:]))


# ---------------------------------------------------------------- cert-manager's Vault issuer


def ca_bundle_b64(s):
    """What the README has operators put into caBundle: base64 of the PEM CA."""
    with open(s.cacert, "rb") as f:
        return base64.b64encode(f.read()).decode()


class CMClient:
    """cert-manager's HTTP client for an issuer: TLS trust only from caBundle."""

    def __init__(self, s, ca_bundle):
        self.base = s.url
        self.ctx = ssl.create_default_context(cadata=base64.b64decode(ca_bundle).decode())

    def request(self, method, url, body=None, headers=None):
        import http.client
        u = urllib.parse.urlsplit(url if url.startswith("http") else self.base + url)
        conn = http.client.HTTPSConnection(u.hostname, u.port, context=self.ctx, timeout=H.REQUEST_TIMEOUT)
        try:
            path = u.path + ("?" + u.query if u.query else "")
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            data = r.read()
            hdrs = {}
            for k, v in r.getheaders():
                hdrs.setdefault(k.lower(), []).append(v)
            return H.Response(r.status, {k: v[-1] for k, v in hdrs.items()}, data), hdrs
        finally:
            conn.close()


def setup_vault_side():
    """What the README's Vault-issuer steps do on a fresh server: CA, roles,
    Kubernetes auth (here against a fake API server), policies."""
    s = server()
    if state.get("vault_setup"):
        return s
    state["root"], _ = H.make_ca(s, "pki", cn="Sigil Cluster Root")
    kube = F.FakeKubeAPI(H.tmpdir("kube"))
    state["kube"] = kube
    # Roles named by the issuers' paths, allowing the Certificates' names.
    s.ok("POST", "pki/roles/web", {"allowed_domains": ["shop.svc.cluster.local", "shop.svc", ACME_DOMAIN],
                                   "allow_subdomains": True, "allow_ip_sans": True, "max_ttl": "24h",
                                   "key_type": "any"}, statuses=(200, 204))
    s.ok("POST", "pki/roles/shop", {"allowed_domains": ["shop.svc.cluster.local", "shop.svc"],
                                    "allow_subdomains": True, "max_ttl": "24h", "key_type": "any"},
         statuses=(200, 204))
    for iss in of_kind("ClusterIssuer") + of_kind("Issuer"):
        v = iss["spec"].get("vault")
        if not v:
            continue
        k = v["auth"]["kubernetes"]
        mount = k["mountPath"][len("/v1/auth/"):]
        if mount not in state.setdefault("kmounts", set()):
            r = s.req("POST", "sys/auth/" + mount, {"type": "kubernetes"})
            expect = r.status in (200, 204)
            check(expect, "enable kubernetes auth: %r" % r)
            s.ok("POST", "auth/%s/config" % mount, {"kubernetes_host": kube.url, "kubernetes_ca_cert": kube.ca_pem,
                                                    "token_reviewer_jwt": kube.reviewer_token},
                 statuses=(200, 204))
            state["kmounts"].add(mount)
        ns = iss["metadata"].get("namespace", CM_NAMESPACE)
        policy = "cm-" + k["role"]
        s.ok("POST", "sys/policies/acl/" + policy,
             {"policy": 'path "%s" { capabilities = ["create", "update"] }' % v["path"]}, statuses=(200, 204))
        # cert-manager's token audiences: vault://<ns>/<issuer> or vault://<clusterissuer>.
        aud = ("vault://%s/%s" % (ns, iss["metadata"]["name"]) if iss["kind"] == "Issuer"
               else "vault://" + iss["metadata"]["name"])
        s.ok("POST", "auth/%s/role/%s" % (mount, k["role"]),
             {"bound_service_account_names": [k["serviceAccountRef"]["name"]],
              "bound_service_account_namespaces": [ns], "audience": aud, "token_policies": [policy],
              "token_ttl": "10m"}, statuses=(200, 204))
    state["vault_setup"] = True
    return s


def cm_vault_sign(s, issuer, cert_spec, sa_name=None, ns=None, uid="0000-uid-cm"):
    """cert-manager's exchange for one CertificateRequest against a Vault issuer
    (internal/vault/vault.go): health, login with a requested token, sign."""
    v = issuer["spec"]["vault"]
    k = v["auth"]["kubernetes"]
    ns = ns or issuer["metadata"].get("namespace", CM_NAMESPACE)
    cl = CMClient(s, v["caBundle"])
    go = {"User-Agent": "Go-http-client/1.1", "X-Vault-Request": "true"}
    r, _ = cl.request("GET", "/v1/sys/health", headers=go)
    check(r.status in (200, 429, 472, 473), "sys/health (issuer Ready): %r" % r)
    aud = ["vault://%s/%s" % (ns, issuer["metadata"]["name"]) if issuer["kind"] == "Issuer"
           else "vault://" + issuer["metadata"]["name"], v["server"]]
    jwt = state["kube"].projected_token(ns, sa_name or k["serviceAccountRef"]["name"], uid, aud=aud)
    r, _ = cl.request("POST", k["mountPath"] + "/login", json.dumps({"role": k["role"], "jwt": jwt}).encode(), go)
    if r.status != 200:
        return r, None
    token = r.json()["auth"]["client_token"]
    check(token, "empty client_token")
    key = H.gen_key("ec256")
    csr = H.make_csr(key, cn=cert_spec.get("commonName"), dns=cert_spec.get("dnsNames", []),
                     ips=cert_spec.get("ipAddresses", []), uris=cert_spec.get("uris", []))
    params = {"common_name": cert_spec.get("commonName", ""),
              "alt_names": ",".join(cert_spec.get("dnsNames", [])),
              "ip_sans": ",".join(cert_spec.get("ipAddresses", [])),
              "uri_sans": ",".join(cert_spec.get("uris", [])),
              "ttl": go_duration_string(go_duration_seconds(cert_spec["duration"])),
              "csr": csr, "exclude_cn_from_sans": "true"}
    check(all(isinstance(x, str) for x in params.values()), "test bug: cert-manager sends strings only")
    r, _ = cl.request("POST", "/v1/" + v["path"], json.dumps(params).encode(), dict(go, **{"X-Vault-Token": token}))
    return r, token


def test_vault_clusterissuer_exchange():
    s = setup_vault_side()
    iss = find("ClusterIssuer", "sigil-vault")
    iss = copy.deepcopy(iss)
    iss["spec"]["vault"]["caBundle"] = ca_bundle_b64(s)
    cert = [c for c in of_kind("Certificate") if c["spec"]["issuerRef"]["name"] == "sigil-vault"][0]["spec"]
    before = len(state["kube"].reviews())
    t0 = time.time()
    r, token = cm_vault_sign(s, iss, cert)
    check(r.status == 200, "sign: %r" % r)
    eq(len(state["kube"].reviews()) - before, 1, "one TokenReview per login")
    d = r.data
    check(isinstance(d["ca_chain"], list) and all(isinstance(x, str) for x in d["ca_chain"]), "ca_chain []string")
    chain = CM.single_chain(d["ca_chain"] + [d["issuing_ca"], d["certificate"]])
    check(H.is_self_signed(chain[-1]), "the root is in the chain (ca.crt)")
    leaf = chain[0]
    eq(H.cert_cn(leaf), cert["commonName"], "CN")
    dns, ips, _, _ = H.cert_sans(leaf)
    eq(sorted(dns), sorted(cert["dnsNames"]), "DNS SANs")
    eq(ips, cert["ipAddresses"], "IP SANs")
    na = H.not_after(leaf)
    check(abs(na - (t0 + go_duration_seconds(cert["duration"]))) < 60, "NotAfter now%+ds, want duration %s" %
          (na - t0, cert["duration"]))
    H.verify_chain(state["root"], "".join(c if c.endswith("\n") else c + "\n" for c in d["ca_chain"]
                                          if not H.is_self_signed(H.load_cert(c))), d["certificate"])
    # The policy of the login allows only the issuer's own path.
    cl = CMClient(s, iss["spec"]["vault"]["caBundle"])
    r, _ = cl.request("POST", "/v1/pki/sign/shop", json.dumps({"csr": "x", "common_name": "a.shop.svc"}).encode(),
                      {"X-Vault-Token": token})
    eq(r.status, 403, "the cert-manager token signing on another role")
    # A token of another service account is refused at login.
    r, _ = cm_vault_sign(s, iss, cert, sa_name="default")
    H.expect_error(r, (400, 403), "login as an account the role does not bind")


def test_vault_clusterissuer_wrong_ca_bundle_fails_tls():
    s = setup_vault_side()
    other = H.make_tls_cert(H.tmpdir("otherca"))[0]
    with open(other, "rb") as f:
        cl = CMClient(s, base64.b64encode(f.read()).decode())
    try:
        cl.request("GET", "/v1/sys/health")
    except ssl.SSLError:
        return
    raise H.TestFailure("TLS succeeded with a caBundle that did not sign Sigil's certificate")


def test_namespaced_issuer_exchange():
    s = setup_vault_side()
    iss = copy.deepcopy(find("Issuer", "sigil", "shop"))
    iss["spec"]["vault"]["caBundle"] = ca_bundle_b64(s)
    spec = {"commonName": "api.shop.svc.cluster.local", "dnsNames": ["api.shop.svc"], "duration": "30m"}
    r, _ = cm_vault_sign(s, iss, spec)
    check(r.status == 200, "sign through the namespaced issuer: %r" % r)
    leaf = H.load_cert(r.data["certificate"])
    eq(H.cert_cn(leaf), "api.shop.svc.cluster.local", "CN")
    # The shop role refuses names outside the namespace's domains.
    r, _ = cm_vault_sign(s, iss, {"commonName": "evil.example.com", "duration": "30m"})
    H.expect_error(r, 400, "name outside the shop role", contains="evil.example.com")
    # A token from another namespace's account does not log in with the shop role.
    r, _ = cm_vault_sign(s, iss, spec, ns="other")
    H.expect_error(r, (400, 403), "login from another namespace")


# ---------------------------------------------------------------- cert-manager's ACME issuer


def rsa_jwk(key):
    """RFC 7638 member order, as cert-manager serialises it."""
    n = key.public_key().public_numbers()
    return '{"e":"%s","kty":"RSA","n":"%s"}' % (H.b64u(n.e.to_bytes((n.e.bit_length() + 7) // 8, "big")),
                                               H.b64u(n.n.to_bytes((n.n.bit_length() + 7) // 8, "big")))


class CMAcme:
    """The forked x/crypto/acme client as cert-manager drives it (compat 1.3/1.4)."""

    def __init__(self, cl, directory_url, key):
        self.cl, self.key, self.kid, self.nonces = cl, key, None, []
        r, _ = cl.request("GET", directory_url)
        eq(r.status, 200, "directory")
        self.dir = r.json()
        check(self.dir.get("newOrder"), "directory without newOrder (not RFC 8555)")

    def nonce(self):
        if self.nonces:
            return self.nonces.pop()
        r, _ = self.cl.request("HEAD", self.dir["newNonce"])
        check("replay-nonce" in r.headers, "acme: nonce not found (HEAD newNonce %d)" % r.status)
        return r.headers["replay-nonce"]

    def post(self, url, payload, use_jwk=False, extra_payload=None):
        prot = {"alg": "RS256", "nonce": self.nonce(), "url": url}
        p = json.dumps(prot)[:-1]
        p += ',"jwk":%s}' % rsa_jwk(self.key) if use_jwk or not self.kid else ',"kid":"%s"}' % self.kid
        p64 = H.b64u(p.encode())
        pl64 = "" if payload is None else H.b64u(payload.encode() if isinstance(payload, str)
                                               else json.dumps(payload).encode())
        sig = self.key.sign((p64 + "." + pl64).encode(), padding.PKCS1v15(), hashes.SHA256())
        body = json.dumps({"protected": p64, "payload": pl64, "signature": H.b64u(sig)}).encode()
        r, hdrs = self.cl.request("POST", url, body, {"Content-Type": "application/jose+json"})
        if "replay-nonce" in r.headers:
            self.nonces.append(r.headers["replay-nonce"])
        else:
            raise H.TestFailure("no Replay-Nonce on the %d answer to POST %s" % (r.status, url))
        return r, hdrs

    def eab(self, kid, mac_key_b64u):
        """Inner JWS: HS256, kid, url = newAccount, no nonce; payload = the account JWK."""
        prot = H.b64u(json.dumps({"alg": "HS256", "kid": kid, "url": self.dir["newAccount"]}).encode())
        pl = H.b64u(rsa_jwk(self.key).encode())
        mac_key = base64.urlsafe_b64decode(mac_key_b64u + "=" * (-len(mac_key_b64u) % 4))
        check(H.b64u(mac_key) == mac_key_b64u, "EAB key is not unpadded base64url (RawURLEncoding)")
        mac = hmac.new(mac_key, (prot + "." + pl).encode(), hashlib.sha256).digest()
        return {"protected": prot, "payload": pl, "signature": H.b64u(mac)}


def acme_setup():
    s = setup_vault_side()
    iss = [d for d in of_kind("ClusterIssuer") if "acme" in d["spec"]][0]
    path = urllib.parse.urlsplit(iss["spec"]["acme"]["server"]).path
    m = re.match(r"^/v1/([^/]+)/roles/([^/]+)/acme/directory$", path)
    check(m, "ACME server path %s" % path)
    mount, role = m.group(1), m.group(2)
    s.ok("POST", mount + "/config/acme", {"enabled": True, "allowed_roles": [role],
                                         "eab_policy": "always-required",
                                         "http01_port": H.http01_port()}, statuses=(200, 204))
    return s, iss, mount, role, path


def test_acme_clusterissuer_exchange():
    s, iss, mount, role, path = acme_setup()
    acme = iss["spec"]["acme"]
    cl = CMClient(s, ca_bundle_b64(s))
    # EAB key as the README has the operator make it and store it in the Secret.
    eab = s.data("POST", "%s/roles/%s/acme/new-eab" % (mount, role))
    eq(acme["externalAccountBinding"]["keySecretRef"]["key"], "key", "Secret key name")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # cert-manager's account key
    c = CMAcme(cl, s.url + path, key)
    for k in ("newNonce", "newAccount", "newOrder", "revokeCert", "keyChange"):
        check(c.dir.get(k, "").startswith(s.url + path.rsplit("/", 1)[0] + "/"), "directory %s: %r" %
              (k, c.dir.get(k)))
    check(c.dir.get("meta", {}).get("externalAccountRequired") is True, "externalAccountRequired")
    # Without EAB: refused (4xx, the issuer goes Ready=False with the reason).
    r, _ = c.post(c.dir["newAccount"], {"contact": ["mailto:" + acme["email"]], "termsOfServiceAgreed": True},
                  use_jwk=True)
    check(400 <= r.status < 500 and r.ctype.startswith("application/problem+json"), "no EAB: %r" % r)
    eq(r.json()["type"], "urn:ietf:params:acme:error:externalAccountRequired", "problem type")
    # With EAB (HS256): 201 + Location.
    payload = {"contact": ["mailto:" + acme["email"].lower()], "termsOfServiceAgreed": True,
               "externalAccountBinding": c.eab(eab["id"], eab["key"])}
    if "termsOfService" not in c.dir.get("meta", {}):
        del payload["termsOfServiceAgreed"]
    r, _ = c.post(c.dir["newAccount"], payload, use_jwk=True)
    eq(r.status, 201, "newAccount with EAB: %s" % r.body[:300])
    kid = r.headers["location"]
    eq(r.json()["status"], "valid", "account status")
    # Issuer re-sync and controller restart: newAccount again with EAB (cm#2882) and onlyReturnExisting.
    r, _ = c.post(c.dir["newAccount"], payload, use_jwk=True)
    eq((r.status, r.headers.get("location")), (200, kid), "re-registration of the bound key")
    r, _ = c.post(c.dir["newAccount"], {"onlyReturnExisting": True}, use_jwk=True)
    eq((r.status, r.headers.get("location")), (200, kid), "onlyReturnExisting")
    c.kid = kid
    # One Certificate: newOrder (201 only).
    name = "shop." + ACME_DOMAIN
    r, _ = c.post(c.dir["newOrder"], {"identifiers": [{"type": "dns", "value": name}]})
    eq(r.status, 201, "newOrder: %s" % r.body[:300])
    order_url, order = r.headers["location"], r.json()
    for k in ("status", "expires", "identifiers", "authorizations", "finalize"):
        check(k in order, "order lacks " + k)
    r, _ = c.post(order["authorizations"][0], None)
    eq(r.status, 200, "authz POST-as-GET")
    az = r.json()
    eq(az["identifier"], {"type": "dns", "value": name}, "authz identifier")
    types = sorted(ch["type"] for ch in az["challenges"])
    # cert-manager solves http-01 and dns-01 (compat 0, row 3): both are offered for a name.
    check("http-01" in types and "dns-01" in types, "http-01 and dns-01 offered: %r" % types)
    ch = [x for x in az["challenges"] if x["type"] == "http-01"][0]
    thumb = H.b64u(hashlib.sha256(rsa_jwk(key).encode()).digest())
    H.Http01.tokens[ch["token"]] = ch["token"] + "." + thumb
    r, _ = c.post(ch["url"], {})
    check(r.status in (200, 202), "challenge accept: %r" % r)
    deadline = time.time() + 60
    while True:
        r, _ = c.post(order["authorizations"][0], None)
        check(r.status in (200, 202), "authz poll: %r" % r)
        if r.json()["status"] in ("valid", "invalid") or time.time() > deadline:
            break
        time.sleep(float(r.headers.get("retry-after", "1")))
    eq(r.json()["status"], "valid", "authorization")
    r, _ = c.post(order_url, None)
    eq((r.status, r.json()["status"]), (200, "ready"), "order ready")
    ckey = H.gen_key("rsa2048")
    csr_pem = H.make_csr(ckey, dns=[name])
    der = x509.load_pem_x509_csr(csr_pem.encode()).public_bytes(serialization.Encoding.DER)
    r, _ = c.post(order["finalize"], {"csr": H.b64u(der)})
    eq(r.status, 200, "finalize must be 200: %s" % r.body[:300])
    fin = r.json()
    while fin["status"] == "processing" and time.time() < deadline:
        time.sleep(float(r.headers.get("retry-after", "1")))
        r, _ = c.post(order_url, None)
        fin = r.json()
    eq(fin["status"], "valid", "order after finalize")
    r, hdrs = c.post(fin["certificate"], None)
    eq(r.status, 200, "certificate download")
    blocks = H.pem_blocks(r.text)
    check(0 < len(blocks) <= 5 and all(t == "CERTIFICATE" for t, _ in blocks), "chain blocks %r" %
          [t for t, _ in blocks])
    for line in hdrs.get("link", []):
        check(line.count("<") <= 1, "several links folded into one Link header: %r" % line)
    leaf = H.load_cert(blocks[0][1])
    eq(H.cert_sans(leaf)[0], [name], "leaf SANs")
    # The leaf carries the CSR's key (otherwise cert-manager starts over).
    want = serialization.load_pem_private_key(ckey.encode(), None).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    eq(leaf.public_key().public_bytes(serialization.Encoding.DER,
                                      serialization.PublicFormat.SubjectPublicKeyInfo), want, "leaf key")
    pems = [H.der_to_pem(der) for _, der in blocks]
    H.verify_chain(state["root"], "".join(p for p in pems[1:] if not H.is_self_signed(H.load_cert(p))), pems[0])
    # The EAB key is single use: a second account cannot reuse it.
    c2 = CMAcme(cl, s.url + path, rsa.generate_private_key(public_exponent=65537, key_size=2048))
    r, _ = c2.post(c2.dir["newAccount"], {"contact": ["mailto:x@example.com"],
                                          "externalAccountBinding": c2.eab(eab["id"], eab["key"])}, use_jwk=True)
    check(400 <= r.status < 500, "EAB key reused by another account: %r" % r)


def test_acme_names_outside_role_refused_at_new_order():
    """A name outside the role is a 4xx on newOrder (cert-manager fails the Order, no retry storm)."""
    s, iss, mount, role, path = acme_setup()
    cl = CMClient(s, ca_bundle_b64(s))
    eab = s.data("POST", "%s/roles/%s/acme/new-eab" % (mount, role))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    c = CMAcme(cl, s.url + path, key)
    r, _ = c.post(c.dir["newAccount"], {"externalAccountBinding": c.eab(eab["id"], eab["key"])}, use_jwk=True)
    eq(r.status, 201, "account")
    c.kid = r.headers["location"]
    r, _ = c.post(c.dir["newOrder"], {"identifiers": [{"type": "dns", "value": "evil.example.org"}]})
    check(400 <= r.status < 500 and r.ctype.startswith("application/problem+json"), "outside the role: %r" % r)
    check("evil.example.org" in r.json().get("detail", "") or r.json().get("subproblems"), "detail names it")


# ---------------------------------------------------------------- the agent sidecar


def test_agent_sidecar_config_one_shot():
    """The init container's command with the ConfigMap's agent config (paths
    moved to a temp dir) gets the certificate through Kubernetes auth."""
    s = setup_vault_side()
    pod = find("Pod", "web", "shop")
    cfg = json.loads(find("ConfigMap", pod["spec"]["volumes"][1]["configMap"]["name"], "shop")["data"]["agent.json"])
    init = pod["spec"]["initContainers"][0]
    argv = init["command"]
    check(argv[:2] == ["sigil", "agent"] and "-exit-after-auth" in argv, "init command %r" % argv)
    cfg_path_in_pod = argv[argv.index("-config") + 1]
    mounts = {m["mountPath"]: m["name"] for m in init["volumeMounts"]}
    eq(mounts.get(os.path.dirname(cfg_path_in_pod)), "agent-config", "config file on the ConfigMap volume")
    eq(mounts.get(os.path.dirname(cfg["ca_cert"])), "sigil-ca", "ca_cert on the CA bundle volume")
    eq(mounts.get(os.path.dirname(cfg["auto_auth"]["jwt_file"])), "sigil-token", "jwt_file on the projected token")
    tok_vol = [v for v in pod["spec"]["volumes"] if v["name"] == "sigil-token"][0]
    aud = tok_vol["projected"]["sources"][0]["serviceAccountToken"]["audience"]
    c0 = cfg["certificates"][0]
    for k in ("cert_file", "key_file", "chain_file", "pid_file"):
        eq(mounts.get(os.path.dirname(c0[k])), "certs", k + " on the shared emptyDir")
    nginx = [c for c in pod["spec"]["containers"] if c["name"] == "nginx"][0]
    conf = find("ConfigMap", "web-sigil-agent", "shop")["data"]["nginx.conf"]
    for k in ("cert_file", "key_file", "pid_file"):
        check(c0[k] in conf, "nginx.conf does not use %s %s" % (k, c0[k]))
    check(any(m["name"] == "certs" and m["mountPath"] == os.path.dirname(c0["cert_file"])
              for m in nginx["volumeMounts"]), "nginx does not mount the certificate volume")
    # Sigil's side (README step 4): role shop-web for the pod's account.
    role = cfg["auto_auth"]["role"]
    mount = cfg["auto_auth"]["mount_path"]
    s.ok("POST", "sys/policies/acl/" + role, {"policy": 'path "%s/issue/%s" { capabilities = ["update"] }' %
                                                        (c0["mount"], c0["role"])}, statuses=(200, 204))
    s.ok("POST", "auth/%s/role/%s" % (mount, role),
         {"bound_service_account_names": [pod["spec"]["serviceAccountName"]],
          "bound_service_account_namespaces": [pod["metadata"]["namespace"]], "audience": aud,
          "token_policies": [role], "token_ttl": "1h"}, statuses=(200, 204))
    d = H.tmpdir("agent")
    jwt = state["kube"].projected_token(pod["metadata"]["namespace"], pod["spec"]["serviceAccountName"],
                                        "0000-uid-web", aud=[aud])
    cfg["address"] = s.url
    cfg["ca_cert"] = s.cacert
    cfg["auto_auth"]["jwt_file"] = H.tmpfile(jwt, "token")
    for k in ("cert_file", "key_file", "chain_file", "pid_file"):
        c0[k] = os.path.join(d, os.path.basename(c0[k]))
    with open(c0["pid_file"], "w") as f:
        f.write("%d\n" % os.getpid())  # SIGHUP to the test process is ignored below
    # The manifest's host (the kubelet probes the pod IP), a free port here.
    health_host, health_port = cfg["health"]["listen_address"].rsplit(":", 1)
    probe = [c for c in pod["spec"]["containers"] if c["name"] == "sigil-agent"][0]["readinessProbe"]["httpGet"]
    check("host" not in probe and health_host != "127.0.0.1", "health on loopback cannot be probed by the kubelet")
    eq([p["containerPort"] for c in pod["spec"]["containers"] if c["name"] == "sigil-agent" for p in c["ports"]
        if p.get("name") == probe["port"]], [int(health_port)], "readiness probe port = health listener")
    cfg["health"]["listen_address"] = "%s:%d" % (health_host, H.free_port())
    path = os.path.join(d, "agent.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    import signal
    import subprocess
    old = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        t0 = time.time()
        p = subprocess.run([H.SIGIL_BIN] + argv[1:argv.index("-config") + 1] + [path] +
                           argv[argv.index("-config") + 2:], capture_output=True, text=True, timeout=120)
    finally:
        signal.signal(signal.SIGHUP, old)
    eq(p.returncode, 0, "one-shot agent exit status (%s)" % p.stderr[-600:])
    eq(os.stat(c0["key_file"]).st_mode & 0o777, int(c0["key_mode"], 8), "key file mode")
    eq(os.stat(c0["cert_file"]).st_mode & 0o777, int(c0["mode"], 8), "certificate file mode")
    with open(c0["cert_file"]) as f:
        leaf_pem = f.read()
    with open(c0["chain_file"]) as f:
        chain_pem = f.read()
    leaf = H.load_cert(leaf_pem)
    eq(H.cert_cn(leaf), c0["common_name"], "agent certificate CN")
    check(set(c0["alt_names"]) <= set(H.cert_sans(leaf)[0]), "agent certificate SANs %r" % (H.cert_sans(leaf),))
    life = go_duration_seconds(c0["ttl"])
    check(abs(H.not_after(leaf) - (t0 + life)) < 60, "lifetime %ds, want ttl %s" % (H.not_after(leaf) - t0, c0["ttl"]))
    H.verify_chain(state["root"], "".join(H.der_to_pem(x) for x in H.pem_certs(chain_pem)
                                          if not H.is_self_signed(H.load_cert(x))), leaf_pem)
    with open(c0["key_file"]) as f:
        key = serialization.load_pem_private_key(f.read().encode(), None)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    eq(key.public_key().public_bytes(serialization.Encoding.DER, spki),
       leaf.public_key().public_bytes(serialization.Encoding.DER, spki), "key matches the certificate")
    check(jwt not in p.stdout + p.stderr, "the service-account JWT was logged")


# ---------------------------------------------------------------- README


def test_readme_walkthrough_mentions_every_step():
    with open(os.path.join(MANIFESTS, "README.md")) as f:
        text = f.read()
    for f in sorted(glob.glob(os.path.join(MANIFESTS, "*.yaml"))):
        check(os.path.basename(f) in text, "README never applies %s" % os.path.basename(f))
    for needle in ("caBundle", "sigil-tls", "sigil-ca", "new-eab", "auth/kubernetes/config",
                   "system:auth-delegator", "intermediate/generate", "intermediate/set-signed", "config/issuers",
                   "root-token", "renewBefore", "openssl rand -hex 32"):
        check(needle in text, "README does not cover %r" % needle)


if __name__ == "__main__":
    H.main(globals())
