/*
 * The Kubernetes auth method's core: config and role records, the service
 * account in a JWT, TokenReview over HTTPS, and the login check.
 */
#include "auth/kubernetes.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/httpc.h"
#include "auth/rolefields.h"

#define K8S_REVIEW_PATH "/apis/authentication.k8s.io/v1/tokenreviews"
#define K8S_SA_PREFIX "system:serviceaccount:"
#define K8S_LOCAL_TOKEN_MAX (64u << 10)

static void free_secret(char *s)
{
	if (s != NULL) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

/* ---------------- Config ---------------- */

void k8s_config_init(struct k8s_config *c)
{
	memset(c, 0, sizeof(*c));
	c->disable_iss_validation = true;
}

void k8s_config_clear(struct k8s_config *c)
{
	if (c == NULL)
		return;
	free(c->host);
	free(c->ca_cert);
	free_secret(c->reviewer_jwt);
	sg_strlist_clear(&c->pem_keys);
	free(c->issuer);
	memset(c, 0, sizeof(*c));
}

/* Vault accepts "host", "host:port" or a URL; the API is always HTTPS unless the URL says otherwise. */
static int host_normalize(char **host, struct sg_err *err)
{
	char *h = *host;
	size_t n;

	if (h == NULL || *h == '\0')
		return 0;
	if (strpbrk(h, " \t\r\n?#") != NULL)
		return sg_err_set(err, SG_BAD_REQUEST, "kubernetes_host is not a URL");
	if (strncasecmp(h, "https://", 8) != 0 && strncasecmp(h, "http://", 7) != 0) {
		if (strstr(h, "://") != NULL)
			return sg_err_set(err, SG_BAD_REQUEST, "kubernetes_host must be an http(s) URL");
		*host = sg_xasprintf("https://%s", h);
		free(h);
		h = *host;
	}
	n = strlen(h);
	while (n > 0 && h[n - 1] == '/')
		h[--n] = '\0';
	if (n + sizeof(K8S_REVIEW_PATH) > AUTH_HTTPC_MAX_URL)
		return sg_err_set(err, SG_BAD_REQUEST, "kubernetes_host is too long");
	return 0;
}

int k8s_config_apply(struct k8s_config *c, const json_t *body, struct sg_err *err)
{
	struct sg_strlist keys = {0};
	struct jwt_keyset ks = {0};
	int rc, ret = -1;

	if (auth_rolefields_str(body, "kubernetes_host", AUTH_HTTPC_MAX_URL, &c->host, err) < 0 ||
	    auth_rolefields_str(body, "kubernetes_ca_cert", AUTH_ROLE_PEM_MAX, &c->ca_cert, err) < 0 ||
	    auth_rolefields_str(body, "token_reviewer_jwt", JWT_MAX_BYTES, &c->reviewer_jwt, err) < 0 ||
	    auth_rolefields_str(body, "issuer", AUTH_ROLE_FIELD_MAX, &c->issuer, err) < 0 ||
	    sg_json_bool(body, "disable_iss_validation", &c->disable_iss_validation, err) < 0 ||
	    sg_json_bool(body, "disable_local_ca_jwt", &c->disable_local_ca_jwt, err) < 0)
		goto out;
	/* pem_keys: a list of PEM blocks (hvac sends a list; the CLI a comma string would break PEM). */
	if (json_is_array(json_object_get(body, "pem_keys"))) {
		if ((rc = sg_json_list(body, "pem_keys", &keys, err)) < 0)
			goto out;
		sg_strlist_clear(&c->pem_keys);
		sg_strlist_copy(&c->pem_keys, &keys);
	} else if (json_is_string(json_object_get(body, "pem_keys"))) {
		sg_strlist_clear(&c->pem_keys);
		if (*json_string_value(json_object_get(body, "pem_keys")) != '\0')
			sg_strlist_add(&c->pem_keys, json_string_value(json_object_get(body, "pem_keys")));
	} else if (json_object_get(body, "pem_keys") != NULL && !json_is_null(json_object_get(body, "pem_keys"))) {
		sg_err_set(err, SG_BAD_REQUEST, "pem_keys must be a list of PEM public keys");
		goto out;
	}
	if (c->pem_keys.n > JWT_MAX_KEYS) {
		sg_err_set(err, SG_BAD_REQUEST, "at most %d pem_keys", JWT_MAX_KEYS);
		goto out;
	}
	for (size_t i = 0; i < c->pem_keys.n; i++)
		if (jwt_keyset_add_pem(&ks, c->pem_keys.v[i], strlen(c->pem_keys.v[i]), err) != 0)
			goto out;
	if (host_normalize(&c->host, err) != 0)
		goto out;
	if ((c->host == NULL || *c->host == '\0') && c->pem_keys.n == 0) {
		sg_err_set(err, SG_BAD_REQUEST, "no host provided (kubernetes_host is required unless pem_keys is set)");
		goto out;
	}
	if (c->ca_cert != NULL && *c->ca_cert != '\0' && strstr(c->ca_cert, "-----BEGIN CERTIFICATE-----") == NULL) {
		sg_err_set(err, SG_BAD_REQUEST, "kubernetes_ca_cert is not a PEM certificate");
		goto out;
	}
	ret = 0;
out:
	jwt_keyset_clear(&ks);
	sg_strlist_clear(&keys);
	return ret;
}

static void set_str(json_t *o, const char *k, const char *v)
{
	json_object_set_new(o, k, json_string(v != NULL ? v : ""));
}

json_t *k8s_config_encode(const struct k8s_config *c, bool storage)
{
	json_t *o = json_object();

	set_str(o, "kubernetes_host", c->host);
	set_str(o, "kubernetes_ca_cert", c->ca_cert);
	json_object_set_new(o, "pem_keys", sg_strlist_to_json(&c->pem_keys));
	set_str(o, "issuer", c->issuer);
	json_object_set_new(o, "disable_iss_validation", json_boolean(c->disable_iss_validation));
	json_object_set_new(o, "disable_local_ca_jwt", json_boolean(c->disable_local_ca_jwt));
	if (storage)
		set_str(o, "token_reviewer_jwt", c->reviewer_jwt);
	else
		json_object_set_new(o, "token_reviewer_jwt_set",
		                    json_boolean(c->reviewer_jwt != NULL && *c->reviewer_jwt != '\0'));
	return o;
}

static char *dup_member(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s != NULL && *s != '\0' ? sg_xstrdup(s) : NULL;
}

int k8s_config_decode(struct k8s_config *c, const json_t *stored, struct sg_err *err)
{
	if (!json_is_object(stored))
		return sg_err_set(err, SG_STORAGE, "kubernetes config record is not an object");
	k8s_config_clear(c);
	k8s_config_init(c);
	c->host = dup_member(stored, "kubernetes_host");
	c->ca_cert = dup_member(stored, "kubernetes_ca_cert");
	c->reviewer_jwt = dup_member(stored, "token_reviewer_jwt");
	c->issuer = dup_member(stored, "issuer");
	c->disable_iss_validation = json_is_true(json_object_get(stored, "disable_iss_validation"));
	c->disable_local_ca_jwt = json_is_true(json_object_get(stored, "disable_local_ca_jwt"));
	if (sg_json_list(stored, "pem_keys", &c->pem_keys, err) < 0)
		return -1;
	return 0;
}

/* ---------------- Roles ---------------- */

void k8s_role_init(struct k8s_role *r)
{
	memset(r, 0, sizeof(*r));
	auth_tokenfields_init(&r->tf);
	snprintf(r->alias_name_source, sizeof(r->alias_name_source), "serviceaccount_uid");
}

void k8s_role_clear(struct k8s_role *r)
{
	if (r == NULL)
		return;
	sg_strlist_clear(&r->sa_names);
	sg_strlist_clear(&r->sa_namespaces);
	free(r->audience);
	auth_tokenfields_clear(&r->tf);
	memset(r, 0, sizeof(*r));
}

static int bound_list_check(const struct sg_strlist *l, const char *field, struct sg_err *err)
{
	if (l->n == 0)
		return sg_err_set(err, SG_BAD_REQUEST, "\"%s\" can not be empty", field);
	if (l->n > K8S_MAX_BOUND)
		return sg_err_set(err, SG_BAD_REQUEST, "\"%s\" has more than %d entries", field, K8S_MAX_BOUND);
	if (l->n > 1 && sg_strlist_has(l, "*"))
		return sg_err_set(err, SG_BAD_REQUEST, "can not mix \"*\" with values in \"%s\"", field);
	for (size_t i = 0; i < l->n; i++)
		if (strlen(l->v[i]) > K8S_NAME_MAX)
			return sg_err_set(err, SG_BAD_REQUEST, "an entry of \"%s\" is longer than %d", field, K8S_NAME_MAX);
	return 0;
}

int k8s_role_apply(struct k8s_role *r, const json_t *body, struct sg_err *err)
{
	const char *src = NULL;
	int rc;

	if (sg_json_list(body, "bound_service_account_names", &r->sa_names, err) < 0 ||
	    sg_json_list(body, "bound_service_account_namespaces", &r->sa_namespaces, err) < 0 ||
	    auth_rolefields_str(body, "audience", AUTH_ROLE_FIELD_MAX, &r->audience, err) < 0 ||
	    auth_rolefields_apply(&r->tf, body, err) < 0)
		return -1;
	if ((rc = sg_json_str(body, "alias_name_source", &src, err)) < 0)
		return -1;
	if (rc == 1 && *src != '\0') {
		if (strcmp(src, "serviceaccount_uid") != 0 && strcmp(src, "serviceaccount_name") != 0)
			return sg_err_set(err, SG_BAD_REQUEST,
			                  "invalid alias_name_source \"%.32s\" (serviceaccount_uid or serviceaccount_name)", src);
		snprintf(r->alias_name_source, sizeof(r->alias_name_source), "%s", src);
	}
	if (bound_list_check(&r->sa_names, "bound_service_account_names", err) != 0 ||
	    bound_list_check(&r->sa_namespaces, "bound_service_account_namespaces", err) != 0)
		return -1;
	return 0;
}

json_t *k8s_role_encode(const struct k8s_role *r)
{
	json_t *o = json_object();

	json_object_set_new(o, "bound_service_account_names", sg_strlist_to_json(&r->sa_names));
	json_object_set_new(o, "bound_service_account_namespaces", sg_strlist_to_json(&r->sa_namespaces));
	set_str(o, "audience", r->audience);
	set_str(o, "alias_name_source", r->alias_name_source);
	auth_tokenfields_encode(&r->tf, o);
	return o;
}

int k8s_role_decode(struct k8s_role *r, const json_t *stored, struct sg_err *err)
{
	const char *src = json_string_value(json_object_get(stored, "alias_name_source"));

	if (!json_is_object(stored))
		return sg_err_set(err, SG_STORAGE, "kubernetes role record is not an object");
	k8s_role_clear(r);
	k8s_role_init(r);
	if (sg_json_list(stored, "bound_service_account_names", &r->sa_names, err) < 0 ||
	    sg_json_list(stored, "bound_service_account_namespaces", &r->sa_namespaces, err) < 0 ||
	    auth_tokenfields_decode(&r->tf, stored, err) != 0)
		return -1;
	r->audience = dup_member(stored, "audience");
	if (src != NULL && *src != '\0')
		snprintf(r->alias_name_source, sizeof(r->alias_name_source), "%s", src);
	return 0;
}

/* ---------------- Service accounts ---------------- */

void k8s_sa_clear(struct k8s_sa *sa)
{
	if (sa == NULL)
		return;
	free(sa->name);
	free(sa->ns);
	free(sa->uid);
	free(sa->secret_name);
	memset(sa, 0, sizeof(*sa));
}

static char *claim_dup(const json_t *claims, const char *pointer)
{
	const char *s = json_string_value(jwt_claim_get(claims, pointer));

	return s != NULL ? sg_xstrdup(s) : NULL;
}

int k8s_sa_from_claims(const json_t *claims, struct k8s_sa *out, struct sg_err *err)
{
	memset(out, 0, sizeof(*out));
	if (json_is_object(json_object_get(claims, "kubernetes.io"))) {
		/* Bound (projected) service account tokens, Kubernetes >= 1.20. */
		out->ns = claim_dup(claims, "/kubernetes.io/namespace");
		out->name = claim_dup(claims, "/kubernetes.io/serviceaccount/name");
		out->uid = claim_dup(claims, "/kubernetes.io/serviceaccount/uid");
		out->secret_name = sg_xstrdup("");
	} else {
		out->ns = claim_dup(claims, "kubernetes.io/serviceaccount/namespace");
		out->name = claim_dup(claims, "kubernetes.io/serviceaccount/service-account.name");
		out->uid = claim_dup(claims, "kubernetes.io/serviceaccount/service-account.uid");
		out->secret_name = claim_dup(claims, "kubernetes.io/serviceaccount/secret.name");
		if (out->secret_name == NULL)
			out->secret_name = sg_xstrdup("");
	}
	if (out->ns == NULL || out->name == NULL || out->uid == NULL || *out->ns == '\0' || *out->name == '\0' ||
	    *out->uid == '\0' || strlen(out->ns) > K8S_NAME_MAX || strlen(out->name) > K8S_NAME_MAX ||
	    strlen(out->uid) > K8S_NAME_MAX) {
		k8s_sa_clear(out);
		return sg_err_set(err, SG_BAD_REQUEST, "JWT is not a Kubernetes service account token (no service "
		                                       "account name, namespace or uid)");
	}
	return 0;
}

const char *k8s_alias_name(const struct k8s_role *r, const struct k8s_sa *sa, char *buf, size_t cap)
{
	if (strcmp(r->alias_name_source, "serviceaccount_name") == 0)
		snprintf(buf, cap, "%s/%s", sa->ns, sa->name);
	else
		snprintf(buf, cap, "%s", sa->uid);
	return buf;
}

static bool list_allows(const struct sg_strlist *l, const char *v)
{
	for (size_t i = 0; i < l->n; i++)
		if (jwt_glob_match(l->v[i], v))
			return true;
	return false;
}

/* ---------------- TokenReview ---------------- */

void k8s_review_clear(struct k8s_review *rv)
{
	if (rv == NULL)
		return;
	free(rv->name);
	free(rv->ns);
	free(rv->uid);
	free(rv->error);
	sg_strlist_clear(&rv->audiences);
	memset(rv, 0, sizeof(*rv));
}

int k8s_review_parse(const char *body, size_t len, struct k8s_review *out, struct sg_err *err)
{
	json_error_t jerr;
	json_t *doc = json_loadb(body, len, 0, &jerr);
	const json_t *status = json_object_get(doc, "status");
	const char *user, *uid, *e;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(status)) {
		sg_err_set(err, SG_INTERNAL, "lookup failed: TokenReview answer without a status");
		goto out;
	}
	e = json_string_value(json_object_get(status, "error"));
	if (e != NULL && *e != '\0')
		out->error = sg_xstrndup(e, strnlen(e, 256)); /* a bounded copy: sg_xstrndup copies n bytes */
	out->authenticated = json_is_true(json_object_get(status, "authenticated"));
	if (json_is_array(json_object_get(status, "audiences")) &&
	    sg_json_list(status, "audiences", &out->audiences, err) < 0)
		goto out;
	user = json_string_value(json_object_get(json_object_get(status, "user"), "username"));
	uid = json_string_value(json_object_get(json_object_get(status, "user"), "uid"));
	if (out->authenticated) {
		const char *rest, *colon;

		/* "system:serviceaccount:<namespace>:<name>", nothing else is a service account. */
		if (user == NULL || strncmp(user, K8S_SA_PREFIX, strlen(K8S_SA_PREFIX)) != 0) {
			sg_err_set(err, SG_PERMISSION_DENIED, "lookup failed: the token is not a service account's");
			goto out;
		}
		rest = user + strlen(K8S_SA_PREFIX);
		colon = strchr(rest, ':');
		if (colon == NULL || colon == rest || colon[1] == '\0' || strchr(colon + 1, ':') != NULL) {
			sg_err_set(err, SG_PERMISSION_DENIED, "lookup failed: unexpected username format");
			goto out;
		}
		out->ns = sg_xstrndup(rest, (size_t)(colon - rest));
		out->name = sg_xstrdup(colon + 1);
		out->uid = sg_xstrdup(uid != NULL ? uid : "");
	}
	ret = 0;
out:
	if (ret != 0)
		k8s_review_clear(out);
	json_decref(doc);
	return ret;
}

/* The reviewer's bearer: token_reviewer_jwt, else the pod's own token (Sigil inside the cluster), else NULL. */
static char *reviewer_bearer(const struct k8s_config *c)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	struct sg_err ignored;

	if (c->reviewer_jwt != NULL && *c->reviewer_jwt != '\0')
		return sg_xstrdup(c->reviewer_jwt);
	if (c->disable_local_ca_jwt)
		return NULL;
	sg_err_init(&ignored);
	if (sg_file_read(K8S_SA_TOKEN_PATH, K8S_LOCAL_TOKEN_MAX, &buf, &len, &ignored) != 0)
		return NULL;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
		len--;
	{
		char *tok = sg_xstrndup((const char *)buf, len);

		OPENSSL_cleanse(buf, len);
		free(buf);
		return tok;
	}
}

/* The pod's CA when no kubernetes_ca_cert is configured and Sigil runs in the cluster. */
static char *api_ca(const struct k8s_config *c)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	struct sg_err ignored;

	if (c->ca_cert != NULL && *c->ca_cert != '\0')
		return sg_xstrdup(c->ca_cert);
	if (c->disable_local_ca_jwt)
		return NULL;
	sg_err_init(&ignored);
	if (sg_file_read(K8S_SA_CA_PATH, AUTH_ROLE_PEM_MAX, &buf, &len, &ignored) != 0)
		return NULL;
	{
		char *pem = sg_xstrndup((const char *)buf, len);

		free(buf);
		return pem;
	}
}

static int token_review(const struct k8s_config *c, const char *jwt, const struct sg_strlist *audiences,
                        struct k8s_review *out, struct sg_err *err)
{
	json_t *req = json_object(), *spec = json_object();
	char *body = NULL, *answer = NULL, *url = NULL, *bearer = NULL, *ca = NULL;
	size_t alen = 0;
	long status = 0;
	struct auth_httpc_req hr = {0};
	struct sg_err herr;
	int ret = -1;

	json_object_set_new(req, "apiVersion", json_string("authentication.k8s.io/v1"));
	json_object_set_new(req, "kind", json_string("TokenReview"));
	json_object_set_new(spec, "token", json_string(jwt));
	if (audiences->n > 0)
		json_object_set_new(spec, "audiences", sg_strlist_to_json(audiences));
	json_object_set_new(req, "spec", spec);
	body = json_dumps(req, JSON_COMPACT);
	if (body == NULL)
		sg_die("json_dumps");
	url = sg_xasprintf("%s%s", c->host, K8S_REVIEW_PATH);
	bearer = reviewer_bearer(c);
	ca = api_ca(c);
	/* Without a reviewer token the client's own JWT asks (it then needs system:auth-delegator). */
	hr.url = url;
	hr.ca_pem = ca;
	hr.bearer = bearer != NULL ? bearer : jwt;
	hr.body = body;
	hr.body_len = strlen(body);
	hr.content_type = "application/json";
	sg_err_init(&herr);
	if (auth_httpc_do(&hr, &status, &answer, &alen, &herr) != 0) {
		sg_err_set(err, SG_INTERNAL, "error looking up the JWT in the Kubernetes API: %s", herr.detail);
		goto out;
	}
	if (status == 401 || status == 403) {
		sg_err_set(err, SG_PERMISSION_DENIED, "lookup failed: the Kubernetes API refused the TokenReview (HTTP %ld)",
		           status);
		goto out;
	}
	if (status < 200 || status > 299) {
		sg_err_set(err, SG_INTERNAL, "lookup failed: TokenReview answered HTTP %ld", status);
		goto out;
	}
	if (k8s_review_parse(answer, alen, out, err) != 0)
		goto out;
	ret = 0;
out:
	if (body != NULL) {
		OPENSSL_cleanse(body, strlen(body));
		free(body);
	}
	free(answer);
	free(url);
	free_secret(bearer);
	free(ca);
	json_decref(req);
	return ret;
}

/* ---------------- Login ---------------- */

static int local_verify(const struct k8s_config *c, const struct k8s_role *r, const struct jwt *t,
                        struct sg_err *err)
{
	struct jwt_keyset ks = {0};
	struct jwt_expect e = {0};
	struct sg_strlist aud = {0};
	struct sg_err verr;
	int ret = -1;

	for (size_t i = 0; i < c->pem_keys.n; i++)
		if (jwt_keyset_add_pem(&ks, c->pem_keys.v[i], strlen(c->pem_keys.v[i]), err) != 0)
			goto out;
	sg_err_init(&verr);
	if (jwt_verify(t, &ks, NULL, &verr) != 0) {
		sg_err_set(err, SG_PERMISSION_DENIED, "%s", verr.detail);
		goto out;
	}
	e.now = sg_now();
	e.leeway = K8S_LEEWAY;
	if (!c->disable_iss_validation)
		e.issuer = c->issuer != NULL && *c->issuer != '\0' ? c->issuer : K8S_DEFAULT_ISSUER;
	if (r->audience != NULL && *r->audience != '\0') {
		sg_strlist_add(&aud, r->audience);
		e.audiences = &aud;
	}
	if (jwt_claims_validate(t->claims, &e, &verr) != 0) {
		sg_err_set(err, SG_PERMISSION_DENIED, "%s", verr.detail);
		goto out;
	}
	ret = 0;
out:
	sg_strlist_clear(&aud);
	jwt_keyset_clear(&ks);
	return ret;
}

int k8s_login_check(const struct k8s_config *c, const struct k8s_role *r, const char *jwt, struct k8s_sa *out,
                    struct sg_err *err)
{
	struct jwt t;
	struct k8s_review rv = {0};
	struct sg_strlist auds = {0};
	int ret = -1;

	memset(out, 0, sizeof(*out));
	if (jwt_parse(jwt, strlen(jwt), &t, err) != 0)
		return -1;
	if (c->pem_keys.n > 0 && local_verify(c, r, &t, err) != 0)
		goto out;
	if (k8s_sa_from_claims(t.claims, out, err) != 0)
		goto out;
	if (!(r->sa_namespaces.n == 1 && strcmp(r->sa_namespaces.v[0], "*") == 0) &&
	    !list_allows(&r->sa_namespaces, out->ns)) {
		sg_err_set(err, SG_PERMISSION_DENIED, "namespace not authorized");
		goto out;
	}
	if (!(r->sa_names.n == 1 && strcmp(r->sa_names.v[0], "*") == 0) && !list_allows(&r->sa_names, out->name)) {
		sg_err_set(err, SG_PERMISSION_DENIED, "service account name not authorized");
		goto out;
	}
	if (c->host == NULL || *c->host == '\0') {
		ret = 0; /* offline mode: the local signature check above was the authority */
		goto out;
	}
	/* Vault: the role's audience, else the token's own (an audience-aware API server checks them). */
	if (r->audience != NULL && *r->audience != '\0') {
		sg_strlist_add(&auds, r->audience);
	} else {
		const json_t *aud = json_object_get(t.claims, "aud");

		if (json_is_string(aud))
			sg_strlist_add(&auds, json_string_value(aud));
		else if (json_is_array(aud) && sg_json_list(t.claims, "aud", &auds, err) < 0)
			goto out;
	}
	if (token_review(c, jwt, &auds, &rv, err) != 0)
		goto out;
	if (rv.error != NULL && !rv.authenticated) {
		sg_err_set(err, SG_PERMISSION_DENIED, "lookup failed: %s", rv.error);
		goto out;
	}
	if (!rv.authenticated) {
		sg_err_set(err, SG_PERMISSION_DENIED, "lookup failed: service account unauthorized; this could mean it has "
		                                      "been deleted or recreated with the same name");
		goto out;
	}
	if (auds.n > 0) {
		bool overlap = false;

		for (size_t i = 0; i < auds.n && !overlap; i++)
			overlap = sg_strlist_has(&rv.audiences, auds.v[i]);
		if (!overlap) {
			sg_err_set(err, SG_PERMISSION_DENIED, "lookup failed: token audiences do not match");
			goto out;
		}
	}
	if (strcmp(rv.name, out->name) != 0) {
		sg_err_set(err, SG_PERMISSION_DENIED, "JWT names did not match");
		goto out;
	}
	if (strcmp(rv.ns, out->ns) != 0) {
		sg_err_set(err, SG_PERMISSION_DENIED, "JWT namespaces did not match");
		goto out;
	}
	if (strcmp(rv.uid, out->uid) != 0) {
		sg_err_set(err, SG_PERMISSION_DENIED, "JWT UIDs did not match");
		goto out;
	}
	ret = 0;
out:
	if (ret != 0)
		k8s_sa_clear(out);
	sg_strlist_clear(&auds);
	k8s_review_clear(&rv);
	jwt_clear(&t);
	return ret;
}
