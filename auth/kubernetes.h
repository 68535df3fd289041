#ifndef SG_AUTH_KUBERNETES_H
#define SG_AUTH_KUBERNETES_H

/*
 * Vault's Kubernetes auth method (compat/vault-api.md 3): a pod logs in
 * with its service account JWT and a role that binds service account names
 * and namespaces to token policies.
 *
 * Validation, in order:
 *  1. the JWT is parsed ("none" and HMAC refused by auth/jwt);
 *  2. with pem_keys, its signature is verified locally, and exp/nbf/iat
 *     (when present), iss (unless disable_iss_validation) and the role's
 *     audience are checked;
 *  3. the service account name and namespace must match the role (globs);
 *  4. with kubernetes_host, the TokenReview API has the last word: the
 *     token must be authenticated, its audiences must overlap, and the
 *     user it names must be the service account of the claims.
 * A config needs kubernetes_host, pem_keys, or both. Vault always calls
 * TokenReview; here pem_keys alone is the offline mode for clusters whose
 * API server Sigil cannot reach (a deleted service account then stays
 * valid until its token expires).
 */

#include <jansson.h>
#include <stdbool.h>

#include "auth/jwt.h"
#include "auth/tokenfields.h"

#define K8S_MAX_BOUND 256            /* entries of bound_service_account_names / namespaces */
#define K8S_NAME_MAX 253             /* a service account or namespace name (DNS subdomain) */
#define K8S_DEFAULT_ISSUER "kubernetes/serviceaccount"
#define K8S_LEEWAY 60                /* seconds of clock skew on exp/nbf/iat */
#define K8S_SA_TOKEN_PATH "/var/run/secrets/kubernetes.io/serviceaccount/token"
#define K8S_SA_CA_PATH "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"

struct k8s_config {
	char *host;                  /* kubernetes_host: https://api:6443 */
	char *ca_cert;               /* kubernetes_ca_cert (PEM) */
	char *reviewer_jwt;          /* token_reviewer_jwt: a secret, never read back */
	struct sg_strlist pem_keys;
	char *issuer;
	bool disable_iss_validation; /* true (Vault's default since 0.13) */
	bool disable_local_ca_jwt;
};
void k8s_config_init(struct k8s_config *c);
void k8s_config_clear(struct k8s_config *c);
/* POST config: applies the body over c and validates (PEM keys parse, host shape, one of host/pem_keys). */
int k8s_config_apply(struct k8s_config *c, const json_t *body, struct sg_err *err) SG_WUR;
/* Read form (reviewer JWT omitted, "token_reviewer_jwt_set" instead) or storage form (everything). */
json_t *k8s_config_encode(const struct k8s_config *c, bool storage);
int k8s_config_decode(struct k8s_config *c, const json_t *stored, struct sg_err *err) SG_WUR;

struct k8s_role {
	struct sg_strlist sa_names;       /* bound_service_account_names */
	struct sg_strlist sa_namespaces;  /* bound_service_account_namespaces */
	char *audience;
	char alias_name_source[24];       /* "serviceaccount_uid" | "serviceaccount_name" */
	struct auth_tokenfields tf;
};
void k8s_role_init(struct k8s_role *r);
void k8s_role_clear(struct k8s_role *r);
/* POST role/:name over an existing (or fresh) role; validates as Vault does. */
int k8s_role_apply(struct k8s_role *r, const json_t *body, struct sg_err *err) SG_WUR;
json_t *k8s_role_encode(const struct k8s_role *r);
int k8s_role_decode(struct k8s_role *r, const json_t *stored, struct sg_err *err) SG_WUR;

/* The service account a JWT speaks for. */
struct k8s_sa {
	char *name, *ns, *uid, *secret_name; /* secret_name "" for projected tokens */
};
void k8s_sa_clear(struct k8s_sa *sa);
/*
 * Reads the service account from legacy claims ("kubernetes.io/serviceaccount/..."),
 * or from the projected token's nested "kubernetes.io" object. SG_BAD_REQUEST
 * when name, namespace or uid is missing.
 */
int k8s_sa_from_claims(const json_t *claims, struct k8s_sa *out, struct sg_err *err) SG_WUR;

/* What the TokenReview API said. */
struct k8s_review {
	bool authenticated;
	char *name, *ns, *uid;
	struct sg_strlist audiences;
	char *error;
};
void k8s_review_clear(struct k8s_review *rv);
/* Parses a TokenReview answer body (RFC-less: authentication.k8s.io/v1). */
int k8s_review_parse(const char *body, size_t len, struct k8s_review *out, struct sg_err *err) SG_WUR;

/*
 * The whole login check (steps 1-4 above). On success *out is the service
 * account. Denials are SG_PERMISSION_DENIED (403, as Vault's
 * ErrPermissionDenied) with a detail; a malformed JWT is SG_BAD_REQUEST;
 * an unreachable API server SG_INTERNAL.
 */
int k8s_login_check(const struct k8s_config *c, const struct k8s_role *r, const char *jwt, struct k8s_sa *out,
                    struct sg_err *err) SG_WUR;

/* The alias name: the service account UID, or "<namespace>/<name>". */
const char *k8s_alias_name(const struct k8s_role *r, const struct k8s_sa *sa, char *buf, size_t cap);

#endif
