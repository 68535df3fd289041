/*
 * The pure parts of the Kubernetes and JWT/OIDC methods: config and role
 * validation, service accounts from claims, TokenReview answers, the local
 * (pem_keys) login check, redirect URIs, pending OIDC flows, identities.
 */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>

#include "auth/kubernetes.h"
#include "auth/oidc.h"
#include "t.h"

static json_t *J(const char *s)
{
	json_error_t e;
	json_t *j = json_loads(s, 0, &e);

	if (j == NULL)
		fprintf(stderr, "bad test JSON: %s: %s\n", s, e.text);
	return j;
}

static char *pub_pem(EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *d;
	long n;
	char *out;

	PEM_write_bio_PUBKEY(b, k);
	n = BIO_get_mem_data(b, &d);
	out = sg_xstrndup(d, (size_t)n);
	BIO_free(b);
	return out;
}

static char *b64j(const char *json)
{
	return sg_b64url((const unsigned char *)json, strlen(json));
}

/* An RS256 JWT over claims_json. */
static char *rs256(EVP_PKEY *k, const char *claims_json)
{
	char *h = b64j("{\"alg\":\"RS256\",\"typ\":\"JWT\"}"), *p = b64j(claims_json);
	char *input = sg_xasprintf("%s.%s", h, p);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char sig[1024];
	size_t n = sizeof(sig);
	char *s, *out;

	EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k);
	EVP_DigestSign(md, sig, &n, (const unsigned char *)input, strlen(input));
	EVP_MD_CTX_free(md);
	s = sg_b64url(sig, n);
	out = sg_xasprintf("%s.%s", input, s);
	free(h);
	free(p);
	free(input);
	free(s);
	return out;
}

/* ---------------- Kubernetes ---------------- */

static int k8s_cfg(const char *body_json, struct k8s_config *c, char *detail)
{
	json_t *b = J(body_json);
	struct sg_err err;
	int rc;

	sg_err_init(&err);
	k8s_config_init(c);
	rc = k8s_config_apply(c, b, &err);
	if (detail != NULL)
		snprintf(detail, SG_ERR_DETAIL_MAX, "%s", err.detail);
	json_decref(b);
	return rc;
}

static void test_k8s_config(EVP_PKEY *sa)
{
	struct k8s_config c, d;
	char detail[SG_ERR_DETAIL_MAX];
	char *pem = pub_pem(sa);
	json_t *enc;
	struct sg_err err;

	T_OK(k8s_cfg("{\"kubernetes_host\":\"k8s.example:6443\"}", &c, NULL) == 0);
	T_STREQ(c.host, "https://k8s.example:6443"); /* host:port becomes an https URL */
	T_OK(c.disable_iss_validation);                /* Vault's default */
	k8s_config_clear(&c);
	T_OK(k8s_cfg("{\"kubernetes_host\":\"https://api/\"}", &c, NULL) == 0);
	T_STREQ(c.host, "https://api");
	k8s_config_clear(&c);
	T_OK(k8s_cfg("{}", &c, detail) == -1 && strstr(detail, "host") != NULL);
	k8s_config_clear(&c);
	T_OK(k8s_cfg("{\"kubernetes_host\":\"ftp://x\"}", &c, NULL) == -1);
	k8s_config_clear(&c);
	T_OK(k8s_cfg("{\"kubernetes_host\":\"https://a b\"}", &c, NULL) == -1);
	k8s_config_clear(&c);
	T_OK(k8s_cfg("{\"kubernetes_host\":\"https://api\",\"kubernetes_ca_cert\":\"nope\"}", &c, NULL) == -1);
	k8s_config_clear(&c);
	T_OK(k8s_cfg("{\"pem_keys\":5}", &c, NULL) == -1);
	k8s_config_clear(&c);
	T_OK(k8s_cfg("{\"pem_keys\":[\"-----BEGIN PUBLIC KEY-----\\nAAAA\\n-----END PUBLIC KEY-----\\n\"]}", &c, NULL) ==
	     -1);
	k8s_config_clear(&c);

	/* pem_keys alone (offline mode), round trip through storage; the reviewer JWT is never read back. */
	{
		json_t *b = json_pack("{s:[s], s:s, s:s}", "pem_keys", pem, "token_reviewer_jwt", "secret-jwt", "issuer",
		                      "iss");

		sg_err_init(&err);
		k8s_config_init(&c);
		T_OK(k8s_config_apply(&c, b, &err) == 0 && c.pem_keys.n == 1);
		json_decref(b);
	}
	enc = k8s_config_encode(&c, false);
	T_OK(json_object_get(enc, "token_reviewer_jwt") == NULL);
	T_OK(json_is_true(json_object_get(enc, "token_reviewer_jwt_set")));
	json_decref(enc);
	enc = k8s_config_encode(&c, true);
	k8s_config_init(&d);
	T_OK(k8s_config_decode(&d, enc, &err) == 0);
	T_STREQ(d.reviewer_jwt, "secret-jwt");
	T_STREQ(d.issuer, "iss");
	T_OK(d.pem_keys.n == 1 && d.host == NULL);
	json_decref(enc);
	k8s_config_clear(&d);
	k8s_config_clear(&c);
	free(pem);
}

static int k8s_role_from(const char *body_json, struct k8s_role *r, char *detail)
{
	json_t *b = J(body_json);
	struct sg_err err;
	int rc;

	sg_err_init(&err);
	k8s_role_init(r);
	rc = k8s_role_apply(r, b, &err);
	if (detail != NULL)
		snprintf(detail, SG_ERR_DETAIL_MAX, "%s", err.detail);
	json_decref(b);
	return rc;
}

static void test_k8s_role(void)
{
	struct k8s_role r, r2;
	char d[SG_ERR_DETAIL_MAX];
	json_t *enc;
	struct sg_err err;

	T_OK(k8s_role_from("{\"bound_service_account_names\":\"web,api\",\"bound_service_account_namespaces\":[\"prod\"],"
	                   "\"ttl\":\"1h\",\"max_ttl\":7200,\"policies\":\"a,b\",\"audience\":\"sigil\"}",
	                   &r, d) == 0);
	T_OK(r.sa_names.n == 2 && r.tf.ttl == 3600 && r.tf.max_ttl == 7200 && r.tf.policies.n == 2);
	T_STREQ(r.alias_name_source, "serviceaccount_uid");
	enc = k8s_role_encode(&r);
	sg_err_init(&err);
	k8s_role_init(&r2);
	T_OK(k8s_role_decode(&r2, enc, &err) == 0);
	T_OK(r2.sa_names.n == 2 && r2.tf.ttl == 3600 && strcmp(r2.audience, "sigil") == 0);
	json_decref(enc);
	k8s_role_clear(&r2);
	k8s_role_clear(&r);
	T_OK(k8s_role_from("{\"bound_service_account_names\":[\"*\",\"x\"],\"bound_service_account_namespaces\":[\"a\"]}",
	                   &r, d) == -1 && strstr(d, "can not mix") != NULL);
	k8s_role_clear(&r);
	T_OK(k8s_role_from("{\"bound_service_account_names\":[\"x\"]}", &r, d) == -1 &&
	     strstr(d, "namespaces") != NULL);
	k8s_role_clear(&r);
	T_OK(k8s_role_from("{\"bound_service_account_names\":[\"x\"],\"bound_service_account_namespaces\":[\"a\"],"
	                   "\"alias_name_source\":\"pod\"}",
	                   &r, d) == -1);
	k8s_role_clear(&r);
	T_OK(k8s_role_from("{\"bound_service_account_names\":[\"x\"],\"bound_service_account_namespaces\":[\"a\"],"
	                   "\"ttl\":\"2h\",\"max_ttl\":\"1h\"}",
	                   &r, d) == -1);
	k8s_role_clear(&r);
}

static void test_k8s_claims_and_review(void)
{
	json_t *legacy = J("{\"kubernetes.io/serviceaccount/namespace\":\"prod\","
	                   "\"kubernetes.io/serviceaccount/service-account.name\":\"web\","
	                   "\"kubernetes.io/serviceaccount/service-account.uid\":\"u1\","
	                   "\"kubernetes.io/serviceaccount/secret.name\":\"web-token\"}");
	json_t *proj = J("{\"kubernetes.io\":{\"namespace\":\"prod\",\"serviceaccount\":{\"name\":\"web\",\"uid\":\"u1\"}}}");
	json_t *bad = J("{\"kubernetes.io\":{\"namespace\":\"prod\",\"serviceaccount\":{\"name\":\"web\"}}}");
	struct k8s_sa sa;
	struct k8s_role r;
	struct k8s_review rv;
	struct sg_err err;
	char buf[600];
	const char *ok = "{\"status\":{\"authenticated\":true,\"audiences\":[\"a\"],"
	                 "\"user\":{\"username\":\"system:serviceaccount:prod:web\",\"uid\":\"u1\"}}}";

	sg_err_init(&err);
	T_OK(k8s_sa_from_claims(legacy, &sa, &err) == 0);
	T_STREQ(sa.name, "web");
	T_STREQ(sa.ns, "prod");
	T_STREQ(sa.secret_name, "web-token");
	k8s_role_init(&r);
	T_STREQ(k8s_alias_name(&r, &sa, buf, sizeof(buf)), "u1");
	snprintf(r.alias_name_source, sizeof(r.alias_name_source), "serviceaccount_name");
	T_STREQ(k8s_alias_name(&r, &sa, buf, sizeof(buf)), "prod/web");
	k8s_role_clear(&r);
	k8s_sa_clear(&sa);
	T_OK(k8s_sa_from_claims(proj, &sa, &err) == 0);
	T_STREQ(sa.uid, "u1");
	T_STREQ(sa.secret_name, "");
	k8s_sa_clear(&sa);
	sg_err_init(&err);
	T_OK(k8s_sa_from_claims(bad, &sa, &err) == -1 && err.code == SG_BAD_REQUEST);

	sg_err_init(&err);
	T_OK(k8s_review_parse(ok, strlen(ok), &rv, &err) == 0 && rv.authenticated);
	T_STREQ(rv.ns, "prod");
	T_STREQ(rv.name, "web");
	T_STREQ(rv.uid, "u1");
	T_OK(rv.audiences.n == 1);
	k8s_review_clear(&rv);
	{
		const char *unauth = "{\"status\":{\"authenticated\":false,\"error\":\"token expired\"}}";
		const char *node = "{\"status\":{\"authenticated\":true,\"user\":{\"username\":\"system:node:n1\"}}}";
		const char *colon = "{\"status\":{\"authenticated\":true,\"user\":{\"username\":"
		                    "\"system:serviceaccount:prod:web:extra\"}}}";
		const char *nostatus = "{\"kind\":\"Status\"}";

		sg_err_init(&err);
		T_OK(k8s_review_parse(unauth, strlen(unauth), &rv, &err) == 0 && !rv.authenticated &&
		     strcmp(rv.error, "token expired") == 0);
		k8s_review_clear(&rv);
		sg_err_init(&err);
		T_OK(k8s_review_parse(node, strlen(node), &rv, &err) == -1 && err.code == SG_PERMISSION_DENIED);
		sg_err_init(&err);
		T_OK(k8s_review_parse(colon, strlen(colon), &rv, &err) == -1);
		sg_err_init(&err);
		T_OK(k8s_review_parse(nostatus, strlen(nostatus), &rv, &err) == -1);
		sg_err_init(&err);
		T_OK(k8s_review_parse("garbage", 7, &rv, &err) == -1);
	}
	json_decref(legacy);
	json_decref(proj);
	json_decref(bad);
}

/* k8s_login_check in the offline mode (pem_keys, no host): no network involved. */
static void test_k8s_local_login(EVP_PKEY *sa_key)
{
	EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	char *pem = pub_pem(sa_key);
	struct k8s_config c;
	struct k8s_role r;
	struct k8s_sa sa;
	struct sg_err err;
	char *tok;
	char claims[1024];
	long now = (long)sg_now();

	k8s_config_init(&c);
	sg_strlist_add(&c.pem_keys, pem);
	k8s_role_init(&r);
	sg_strlist_add(&r.sa_names, "web*");
	sg_strlist_add(&r.sa_namespaces, "prod");

#define PROJ(ns, name, extra)                                                                                   \
	snprintf(claims, sizeof(claims),                                                                        \
	         "{\"iss\":\"https://k8s\",\"aud\":[\"sigil\"],\"exp\":%ld,\"iat\":%ld,\"kubernetes.io\":{\"namespace\":\"" \
	         ns "\",\"serviceaccount\":{\"name\":\"" name "\",\"uid\":\"u1\"}}" extra "}",                       \
	         now + 300, now - 5)

	PROJ("prod", "web-1", "");
	tok = rs256(sa_key, claims);
	sg_err_init(&err);
	T_CHECK(k8s_login_check(&c, &r, tok, &sa, &err) == 0, "local login: %s", err.detail);
	T_STREQ(sa.name, "web-1");
	k8s_sa_clear(&sa);
	free(tok);

	tok = rs256(other, claims);
	sg_err_init(&err);
	T_OK(k8s_login_check(&c, &r, tok, &sa, &err) == -1 && err.code == SG_PERMISSION_DENIED);
	free(tok);

	PROJ("dev", "web-1", "");
	tok = rs256(sa_key, claims);
	sg_err_init(&err);
	T_OK(k8s_login_check(&c, &r, tok, &sa, &err) == -1 && err.code == SG_PERMISSION_DENIED &&
	     strstr(err.detail, "namespace") != NULL);
	free(tok);

	PROJ("prod", "api", "");
	tok = rs256(sa_key, claims);
	sg_err_init(&err);
	T_OK(k8s_login_check(&c, &r, tok, &sa, &err) == -1 && strstr(err.detail, "service account name") != NULL);
	free(tok);

	/* The role's audience, then issuer validation. */
	r.audience = sg_xstrdup("vault");
	PROJ("prod", "web-1", "");
	tok = rs256(sa_key, claims);
	sg_err_init(&err);
	T_OK(k8s_login_check(&c, &r, tok, &sa, &err) == -1 && strstr(err.detail, "aud") != NULL);
	free(r.audience);
	r.audience = NULL;
	c.disable_iss_validation = false;
	sg_err_init(&err);
	T_OK(k8s_login_check(&c, &r, tok, &sa, &err) == -1 && strstr(err.detail, "iss") != NULL);
	c.issuer = sg_xstrdup("https://k8s");
	sg_err_init(&err);
	T_OK(k8s_login_check(&c, &r, tok, &sa, &err) == 0);
	k8s_sa_clear(&sa);
	free(tok);

	/* Expired beyond the leeway. */
	now -= 1000;
	PROJ("prod", "web-1", "");
	tok = rs256(sa_key, claims);
	sg_err_init(&err);
	T_OK(k8s_login_check(&c, &r, tok, &sa, &err) == -1 && strstr(err.detail, "expired") != NULL);
	free(tok);
#undef PROJ

	k8s_role_clear(&r);
	k8s_config_clear(&c);
	free(pem);
	EVP_PKEY_free(other);
}

/* ---------------- OIDC ---------------- */

static int oidc_cfg(const char *body_json, char *detail)
{
	json_t *b = J(body_json);
	struct oidc_config c;
	struct sg_err err;
	int rc;

	sg_err_init(&err);
	oidc_config_init(&c);
	rc = oidc_config_apply(&c, b, &err);
	if (detail != NULL)
		snprintf(detail, SG_ERR_DETAIL_MAX, "%s", err.detail);
	oidc_config_clear(&c);
	json_decref(b);
	return rc;
}

static void test_oidc_config(EVP_PKEY *k)
{
	char d[SG_ERR_DETAIL_MAX];
	char *pem = pub_pem(k);
	json_t *b = json_pack("{s:[s], s:[s,s], s:s}", "jwt_validation_pubkeys", pem, "jwt_supported_algs", "RS256",
	                      "ES256", "bound_issuer", "https://ci");
	struct oidc_config c, c2;
	struct sg_err err;
	json_t *enc;

	sg_err_init(&err);
	oidc_config_init(&c);
	T_OK(oidc_config_apply(&c, b, &err) == 0 && oidc_config_source(&c) == OIDC_SRC_PUBKEYS && !oidc_config_flow(&c));
	enc = oidc_config_encode(&c, true);
	oidc_config_init(&c2);
	T_OK(oidc_config_decode(&c2, enc, &err) == 0 && c2.pubkeys.n == 1 && c2.supported_algs.n == 2);
	json_decref(enc);
	oidc_config_clear(&c2);
	oidc_config_clear(&c);
	json_decref(b);

	T_OK(oidc_cfg("{}", d) == -1 && strstr(d, "exactly one") != NULL);
	T_OK(oidc_cfg("{\"jwks_url\":\"https://a/jwks\",\"oidc_discovery_url\":\"https://a\"}", d) == -1);
	T_OK(oidc_cfg("{\"jwks_url\":\"file:///etc/passwd\"}", NULL) == -1);
	T_OK(oidc_cfg("{\"jwks_url\":\"https://a/jwks\",\"oidc_client_id\":\"x\"}", d) == -1 &&
	     strstr(d, "oidc_discovery_url") != NULL);
	T_OK(oidc_cfg("{\"oidc_discovery_url\":\"https://a\",\"oidc_client_secret\":\"s\"}", NULL) == -1);
	T_OK(oidc_cfg("{\"jwks_url\":\"https://a/jwks\",\"jwt_supported_algs\":[\"none\"]}", NULL) == -1);
	T_OK(oidc_cfg("{\"jwks_url\":\"https://a/jwks\",\"jwt_supported_algs\":\"HS256\"}", NULL) == -1);
	T_OK(oidc_cfg("{\"jwt_validation_pubkeys\":\"garbage\"}", NULL) == -1);
	T_OK(oidc_cfg("{\"oidc_discovery_url\":\"https://a\",\"oidc_client_id\":\"c\",\"oidc_client_secret\":\"s\"}",
	              NULL) == 0);
	{
		struct oidc_config f;
		json_t *fb = J("{\"oidc_discovery_url\":\"https://a\",\"oidc_client_id\":\"c\",\"oidc_client_secret\":\"s\"}");

		oidc_config_init(&f);
		sg_err_init(&err);
		T_OK(oidc_config_apply(&f, fb, &err) == 0 && oidc_config_flow(&f));
		enc = oidc_config_encode(&f, false);
		T_OK(json_object_get(enc, "oidc_client_secret") == NULL);
		json_decref(enc);
		oidc_config_clear(&f);
		json_decref(fb);
	}
	free(pem);
}

static int oidc_role_from(const char *body_json, struct oidc_role *r, char *detail)
{
	json_t *b = J(body_json);
	struct sg_err err;
	int rc;

	sg_err_init(&err);
	oidc_role_init(r);
	rc = oidc_role_apply(r, b, &err);
	if (detail != NULL)
		snprintf(detail, SG_ERR_DETAIL_MAX, "%s", err.detail);
	json_decref(b);
	return rc;
}

static void test_oidc_role(void)
{
	struct oidc_role r, r2;
	char d[SG_ERR_DETAIL_MAX];
	json_t *enc;
	struct sg_err err;

	T_OK(oidc_role_from("{\"role_type\":\"jwt\",\"user_claim\":\"sub\",\"bound_audiences\":\"a,b\","
	                    "\"bound_claims\":{\"/x/y\":[\"v\",true]},\"claim_mappings\":{\"email\":\"mail\"},"
	                    "\"clock_skew_leeway\":-1,\"expiration_leeway\":\"5m\",\"token_policies\":[\"p\"]}",
	                    &r, d) == 0);
	T_OK(r.clock_skew_leeway == -1 && r.expiration_leeway == 300 && r.not_before_leeway == 150);
	enc = oidc_role_encode(&r);
	sg_err_init(&err);
	oidc_role_init(&r2);
	T_OK(oidc_role_decode(&r2, enc, &err) == 0 && r2.bound_audiences.n == 2 && r2.bound_claims != NULL &&
	     r2.clock_skew_leeway == -1 && strcmp(r2.role_type, "jwt") == 0);
	json_decref(enc);
	oidc_role_clear(&r2);
	oidc_role_clear(&r);

	T_OK(oidc_role_from("{\"role_type\":\"jwt\",\"user_claim\":\"sub\"}", &r, d) == -1 &&
	     strstr(d, "bound constraint") != NULL);
	oidc_role_clear(&r);
	T_OK(oidc_role_from("{\"role_type\":\"jwt\",\"bound_subject\":\"x\"}", &r, d) == -1 &&
	     strstr(d, "user claim") != NULL);
	oidc_role_clear(&r);
	T_OK(oidc_role_from("{\"user_claim\":\"sub\"}", &r, d) == -1 && strstr(d, "allowed_redirect_uris") != NULL);
	oidc_role_clear(&r);
	T_OK(oidc_role_from("{\"role_type\":\"human\",\"user_claim\":\"sub\"}", &r, NULL) == -1);
	oidc_role_clear(&r);
	T_OK(oidc_role_from("{\"user_claim\":\"sub\",\"allowed_redirect_uris\":[\"javascript:alert(1)\"]}", &r, NULL) ==
	     -1);
	oidc_role_clear(&r);
	T_OK(oidc_role_from("{\"role_type\":\"jwt\",\"user_claim\":\"sub\",\"bound_subject\":\"x\","
	                    "\"claim_mappings\":{\"a\":\"k\",\"b\":\"k\"}}",
	                    &r, d) == -1 && strstr(d, "multiple") != NULL);
	oidc_role_clear(&r);
	T_OK(oidc_role_from("{\"role_type\":\"jwt\",\"user_claim\":\"sub\",\"bound_subject\":\"x\","
	                    "\"bound_claims\":{\"a\":{\"nested\":1}}}",
	                    &r, NULL) == -1);
	oidc_role_clear(&r);
	T_OK(oidc_role_from("{\"role_type\":\"jwt\",\"user_claim\":\"sub\",\"bound_claims_type\":\"glob\","
	                    "\"bound_claims\":{\"a\":true}}",
	                    &r, NULL) == -1);
	oidc_role_clear(&r);
}

static void test_redirects(void)
{
	struct oidc_role r;

	oidc_role_init(&r);
	sg_strlist_add(&r.allowed_redirect_uris, "https://app.example.com/cb");
	sg_strlist_add(&r.allowed_redirect_uris, "http://localhost:8250/oidc/callback");
	sg_strlist_add(&r.allowed_redirect_uris, "http://127.0.0.1/cb");
	T_OK(oidc_redirect_allowed(&r, "https://app.example.com/cb"));
	T_OK(oidc_redirect_allowed(&r, "HTTPS://APP.EXAMPLE.COM/CB")); /* Vault compares case-insensitively */
	T_OK(!oidc_redirect_allowed(&r, "https://app.example.com/cb/x"));
	T_OK(!oidc_redirect_allowed(&r, "https://app.example.com:8443/cb"));
	T_OK(oidc_redirect_allowed(&r, "http://localhost:9999/oidc/callback"));
	T_OK(oidc_redirect_allowed(&r, "http://localhost/oidc/callback"));
	T_OK(!oidc_redirect_allowed(&r, "http://localhost:9999/other"));
	T_OK(oidc_redirect_allowed(&r, "http://127.0.0.1:1234/cb"));
	T_OK(!oidc_redirect_allowed(&r, "http://127.0.0.1.evil.com/cb"));
	T_OK(!oidc_redirect_allowed(&r, "http://localhost.evil.com:8250/oidc/callback"));
	T_OK(!oidc_redirect_allowed(&r, ""));
	oidc_role_clear(&r);
}

static void test_identity(void)
{
	json_t *claims = J("{\"sub\":\"alice\",\"/odd\":\"slash\",\"groups\":[\"a\",\"b\"],\"email\":\"a@x\","
	                   "\"n\":{\"id\":\"deep\"}}");
	struct oidc_role r;
	struct oidc_identity id;
	struct sg_err err;

	oidc_role_init(&r);
	r.user_claim = sg_xstrdup("sub");
	r.groups_claim = sg_xstrdup("groups");
	r.claim_mappings = J("{\"email\":\"mail\",\"/n/id\":\"nid\"}");
	sg_err_init(&err);
	T_OK(oidc_identity_from_claims(&r, claims, &id, &err) == 0);
	T_STREQ(id.user, "alice");
	T_OK(id.groups.n == 2);
	T_STREQ(json_string_value(json_object_get(id.metadata, "mail")), "a@x");
	T_STREQ(json_string_value(json_object_get(id.metadata, "nid")), "deep");
	oidc_identity_clear(&id);
	/* A leading '/' is part of the name unless user_claim_json_pointer is set. */
	free(r.user_claim);
	r.user_claim = sg_xstrdup("/odd");
	sg_err_init(&err);
	T_OK(oidc_identity_from_claims(&r, claims, &id, &err) == 0);
	T_STREQ(id.user, "slash");
	oidc_identity_clear(&id);
	free(r.user_claim);
	r.user_claim = sg_xstrdup("/n/id");
	r.user_claim_json_pointer = true;
	sg_err_init(&err);
	T_OK(oidc_identity_from_claims(&r, claims, &id, &err) == 0);
	T_STREQ(id.user, "deep");
	oidc_identity_clear(&id);
	free(r.user_claim);
	r.user_claim = sg_xstrdup("missing");
	sg_err_init(&err);
	T_OK(oidc_identity_from_claims(&r, claims, &id, &err) == -1 && err.code == SG_BAD_REQUEST);
	free(r.groups_claim);
	r.groups_claim = sg_xstrdup("nogroups");
	free(r.user_claim);
	r.user_claim = sg_xstrdup("sub");
	sg_err_init(&err);
	T_OK(oidc_identity_from_claims(&r, claims, &id, &err) == -1 && strstr(err.detail, "nogroups") != NULL);
	oidc_role_clear(&r);
	json_decref(claims);
}

/* JWT login through static keys: Vault's time rules and bindings (no network). */
static void test_oidc_static_login(EVP_PKEY *k)
{
	char *pem = pub_pem(k);
	struct oidc_config c;
	struct oidc_role r;
	struct sg_err err;
	json_t *claims = NULL;
	char buf[512];
	char *tok;
	long now = (long)sg_now();

	oidc_config_init(&c);
	sg_strlist_add(&c.pubkeys, pem);
	c.bound_issuer = sg_xstrdup("https://ci");
	oidc_role_init(&r);
	snprintf(r.role_type, sizeof(r.role_type), "jwt");
	r.user_claim = sg_xstrdup("sub");
	sg_strlist_add(&r.bound_audiences, "ci");
	r.bound_claims = J("{\"ref\":\"main\"}");

#define TOK(fmt, ...)                                          \
	do {                                                   \
		snprintf(buf, sizeof(buf), fmt, __VA_ARGS__);  \
		tok = rs256(k, buf);                           \
	} while (0)
#define LOGIN_RC() (sg_err_init(&err), json_decref(claims), claims = NULL, oidc_jwt_login_validate(&c, &r, tok, &claims, &err))

	TOK("{\"iss\":\"https://ci\",\"sub\":\"job\",\"aud\":\"ci\",\"exp\":%ld,\"ref\":\"main\"}", now + 60);
	T_CHECK(LOGIN_RC() == 0, "static login: %s", err.detail);
	T_STREQ(json_string_value(json_object_get(claims, "sub")), "job");
	free(tok);
	TOK("{\"iss\":\"https://ci\",\"sub\":\"job\",\"aud\":\"ci\",\"exp\":%ld,\"ref\":\"dev\"}", now + 60);
	T_OK(LOGIN_RC() == -1 && strstr(err.detail, "ref") != NULL);
	free(tok);
	TOK("{\"iss\":\"https://other\",\"sub\":\"job\",\"aud\":\"ci\",\"exp\":%ld,\"ref\":\"main\"}", now + 60);
	T_OK(LOGIN_RC() == -1 && strstr(err.detail, "iss") != NULL);
	free(tok);
	/* Only iat: valid for expiration_leeway (150 s) plus the skew (60 s). */
	TOK("{\"iss\":\"https://ci\",\"sub\":\"job\",\"aud\":\"ci\",\"iat\":%ld,\"ref\":\"main\"}", now - 100);
	T_OK(LOGIN_RC() == 0);
	free(tok);
	TOK("{\"iss\":\"https://ci\",\"sub\":\"job\",\"aud\":\"ci\",\"iat\":%ld,\"ref\":\"main\"}", now - 300);
	T_OK(LOGIN_RC() == -1 && strstr(err.detail, "expired") != NULL);
	free(tok);
	/* A negative leeway turns the skew off: expired 30 s ago is expired. */
	r.clock_skew_leeway = -1;
	TOK("{\"iss\":\"https://ci\",\"sub\":\"job\",\"aud\":\"ci\",\"exp\":%ld,\"ref\":\"main\"}", now - 30);
	T_OK(LOGIN_RC() == -1);
	r.clock_skew_leeway = 0; /* 0 = the default 60 s */
	T_OK(LOGIN_RC() == 0);
	free(tok);
	/* jwt_supported_algs without RS256. */
	sg_strlist_add(&c.supported_algs, "ES256");
	TOK("{\"iss\":\"https://ci\",\"sub\":\"job\",\"aud\":\"ci\",\"exp\":%ld,\"ref\":\"main\"}", now + 60);
	T_OK(LOGIN_RC() == -1);
	free(tok);
#undef TOK
#undef LOGIN_RC
	json_decref(claims);
	oidc_role_clear(&r);
	oidc_config_clear(&c);
	free(pem);
}

static void test_pending_states(void)
{
	struct oidc_state got;
	struct oidc_config c;
	struct oidc_role r;
	struct sg_err err;
	char *url = NULL;

	/* The auth_url path refuses before any network work. */
	oidc_config_init(&c);
	oidc_role_init(&r);
	sg_err_init(&err);
	T_OK(oidc_auth_url(&c, &r, "acc", "r", "https://x/cb", NULL, &url, &err) == -1 &&
	     strstr(err.detail, "not configured") != NULL);
	c.discovery_url = sg_xstrdup("https://idp");
	c.client_id = sg_xstrdup("cid");
	sg_strlist_add(&r.allowed_redirect_uris, "https://x/cb");
	sg_err_init(&err);
	T_OK(oidc_auth_url(&c, &r, "acc", "r", "https://evil/cb", NULL, &url, &err) == -1 &&
	     strstr(err.detail, "redirect_uri") != NULL);
	snprintf(r.role_type, sizeof(r.role_type), "jwt");
	sg_err_init(&err);
	T_OK(oidc_auth_url(&c, &r, "acc", "r", "https://x/cb", NULL, &url, &err) == -1 &&
	     strstr(err.detail, "role_type") != NULL);
	oidc_role_clear(&r);
	oidc_config_clear(&c);

	T_OK(oidc_state_take("acc", "st_none", &got) == 0);
	T_OK(oidc_state_take("acc", "", &got) == 0);
	T_OK(oidc_state_take("acc", NULL, &got) == 0);
}

int main(void)
{
	EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);

	test_k8s_config(rsa);
	test_k8s_role();
	test_k8s_claims_and_review();
	test_k8s_local_login(rsa);
	test_oidc_config(rsa);
	test_oidc_role();
	test_redirects();
	test_identity();
	test_oidc_static_login(rsa);
	test_pending_states();
	EVP_PKEY_free(rsa);
	oidc_cache_flush();
	ERR_clear_error();
	return t_done();
}
