/*
 * The JWT/OIDC auth method's core: config and role records, key sources
 * with an in-memory document cache, JWT login validation, and the
 * authorization-code flow with PKCE.
 *
 * Differences from Vault, each on the safe side:
 * - oidc/auth_url answers 400 for a redirect URI the role does not allow
 *   (Vault answers 200 with an empty auth_url).
 * - A role of type "jwt" cannot start the OIDC flow.
 * - The ID token must carry the nonce that was sent (Core 1.0 3.1.3.7 11),
 *   and an "azp" other than the client id is refused.
 */
#include "auth/oidc.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/httpc.h"
#include "auth/rolefields.h"

#define WELL_KNOWN "/.well-known/openid-configuration"
#define STATE_RANDOM 40
#define VERIFIER_LEN 43   /* RFC 7636 4.1: 43..128 unreserved characters */
#define OIDC_CLIENT_NONCE_MAX 256

static void free_secret(char *s)
{
	if (s != NULL) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

static bool empty(const char *s)
{
	return s == NULL || *s == '\0';
}

/* ---------------- Config ---------------- */

void oidc_config_init(struct oidc_config *c)
{
	memset(c, 0, sizeof(*c));
}

void oidc_config_clear(struct oidc_config *c)
{
	if (c == NULL)
		return;
	free(c->discovery_url);
	free(c->discovery_ca_pem);
	free(c->client_id);
	free_secret(c->client_secret);
	free(c->jwks_url);
	free(c->jwks_ca_pem);
	sg_strlist_clear(&c->pubkeys);
	sg_strlist_clear(&c->supported_algs);
	free(c->bound_issuer);
	free(c->default_role);
	memset(c, 0, sizeof(*c));
}

enum oidc_key_source oidc_config_source(const struct oidc_config *c)
{
	if (!empty(c->discovery_url))
		return OIDC_SRC_DISCOVERY;
	if (!empty(c->jwks_url))
		return OIDC_SRC_JWKS;
	if (c->pubkeys.n > 0)
		return OIDC_SRC_PUBKEYS;
	return OIDC_SRC_NONE;
}

bool oidc_config_flow(const struct oidc_config *c)
{
	return !empty(c->discovery_url) && !empty(c->client_id);
}

static int url_check(const char *u, const char *field, struct sg_err *err)
{
	if (empty(u))
		return 0;
	if ((strncasecmp(u, "https://", 8) != 0 && strncasecmp(u, "http://", 7) != 0) || strpbrk(u, " \t\r\n") != NULL ||
	    strlen(u) + sizeof(WELL_KNOWN) > AUTH_HTTPC_MAX_URL)
		return sg_err_set(err, SG_BAD_REQUEST, "'%s' must be an http(s) URL", field);
	return 0;
}

int oidc_config_apply(struct oidc_config *c, const json_t *body, struct sg_err *err)
{
	struct jwt_keyset ks = {0};
	int ret = -1;
	int sources;

	if (auth_rolefields_str(body, "oidc_discovery_url", AUTH_HTTPC_MAX_URL, &c->discovery_url, err) < 0 ||
	    auth_rolefields_str(body, "oidc_discovery_ca_pem", AUTH_ROLE_PEM_MAX, &c->discovery_ca_pem, err) < 0 ||
	    auth_rolefields_str(body, "oidc_client_id", AUTH_ROLE_FIELD_MAX, &c->client_id, err) < 0 ||
	    auth_rolefields_str(body, "oidc_client_secret", AUTH_ROLE_FIELD_MAX, &c->client_secret, err) < 0 ||
	    auth_rolefields_str(body, "jwks_url", AUTH_HTTPC_MAX_URL, &c->jwks_url, err) < 0 ||
	    auth_rolefields_str(body, "jwks_ca_pem", AUTH_ROLE_PEM_MAX, &c->jwks_ca_pem, err) < 0 ||
	    auth_rolefields_str(body, "bound_issuer", AUTH_ROLE_FIELD_MAX, &c->bound_issuer, err) < 0 ||
	    auth_rolefields_str(body, "default_role", AUTH_ROLE_NAME_MAX, &c->default_role, err) < 0 ||
	    sg_json_list(body, "jwt_supported_algs", &c->supported_algs, err) < 0)
		goto out;
	if (json_is_string(json_object_get(body, "jwt_validation_pubkeys"))) {
		/* One PEM given as a string: a comma split would cut it. */
		sg_strlist_clear(&c->pubkeys);
		if (*json_string_value(json_object_get(body, "jwt_validation_pubkeys")) != '\0')
			sg_strlist_add(&c->pubkeys, json_string_value(json_object_get(body, "jwt_validation_pubkeys")));
	} else if (sg_json_list(body, "jwt_validation_pubkeys", &c->pubkeys, err) < 0) {
		goto out;
	}
	if (c->pubkeys.n > OIDC_MAX_LIST || c->supported_algs.n > OIDC_MAX_LIST) {
		sg_err_set(err, SG_BAD_REQUEST, "too many jwt_validation_pubkeys or jwt_supported_algs");
		goto out;
	}
	sources = !empty(c->discovery_url) + !empty(c->jwks_url) + (c->pubkeys.n > 0);
	if (sources != 1) {
		sg_err_set(err, SG_BAD_REQUEST,
		           "exactly one of 'jwt_validation_pubkeys', 'jwks_url' or 'oidc_discovery_url' must be set");
		goto out;
	}
	if (url_check(c->discovery_url, "oidc_discovery_url", err) != 0 || url_check(c->jwks_url, "jwks_url", err) != 0)
		goto out;
	if (!empty(c->client_id) && empty(c->discovery_url)) {
		sg_err_set(err, SG_BAD_REQUEST, "'oidc_discovery_url' must be set for OIDC");
		goto out;
	}
	if (!empty(c->client_secret) && empty(c->client_id)) {
		sg_err_set(err, SG_BAD_REQUEST, "both 'oidc_client_id' and 'oidc_client_secret' must be set for OIDC");
		goto out;
	}
	for (size_t i = 0; i < c->supported_algs.n; i++)
		if (jwt_alg_from_name(c->supported_algs.v[i]) == JWT_ALG_UNKNOWN) {
			sg_err_set(err, SG_BAD_REQUEST, "invalid jwt_supported_algs entry \"%.16s\" (RS*, PS*, ES*, EdDSA)",
			           c->supported_algs.v[i]);
			goto out;
		}
	for (size_t i = 0; i < c->pubkeys.n; i++)
		if (jwt_keyset_add_pem(&ks, c->pubkeys.v[i], strlen(c->pubkeys.v[i]), err) != 0)
			goto out;
	ret = 0;
out:
	jwt_keyset_clear(&ks);
	return ret;
}

static void set_str(json_t *o, const char *k, const char *v)
{
	json_object_set_new(o, k, json_string(v != NULL ? v : ""));
}

json_t *oidc_config_encode(const struct oidc_config *c, bool storage)
{
	json_t *o = json_object();

	set_str(o, "oidc_discovery_url", c->discovery_url);
	set_str(o, "oidc_discovery_ca_pem", c->discovery_ca_pem);
	set_str(o, "oidc_client_id", c->client_id);
	if (storage)
		set_str(o, "oidc_client_secret", c->client_secret);
	set_str(o, "jwks_url", c->jwks_url);
	set_str(o, "jwks_ca_pem", c->jwks_ca_pem);
	json_object_set_new(o, "jwt_validation_pubkeys", sg_strlist_to_json(&c->pubkeys));
	json_object_set_new(o, "jwt_supported_algs", sg_strlist_to_json(&c->supported_algs));
	set_str(o, "bound_issuer", c->bound_issuer);
	set_str(o, "default_role", c->default_role);
	return o;
}

static char *dup_member(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return !empty(s) ? sg_xstrdup(s) : NULL;
}

int oidc_config_decode(struct oidc_config *c, const json_t *stored, struct sg_err *err)
{
	if (!json_is_object(stored))
		return sg_err_set(err, SG_STORAGE, "jwt config record is not an object");
	oidc_config_clear(c);
	c->discovery_url = dup_member(stored, "oidc_discovery_url");
	c->discovery_ca_pem = dup_member(stored, "oidc_discovery_ca_pem");
	c->client_id = dup_member(stored, "oidc_client_id");
	c->client_secret = dup_member(stored, "oidc_client_secret");
	c->jwks_url = dup_member(stored, "jwks_url");
	c->jwks_ca_pem = dup_member(stored, "jwks_ca_pem");
	c->bound_issuer = dup_member(stored, "bound_issuer");
	c->default_role = dup_member(stored, "default_role");
	if (sg_json_list(stored, "jwt_validation_pubkeys", &c->pubkeys, err) < 0 ||
	    sg_json_list(stored, "jwt_supported_algs", &c->supported_algs, err) < 0)
		return -1;
	return 0;
}

/* ---------------- Roles ---------------- */

void oidc_role_init(struct oidc_role *r)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->role_type, sizeof(r->role_type), "oidc");
	snprintf(r->bound_claims_type, sizeof(r->bound_claims_type), "string");
	r->clock_skew_leeway = OIDC_DEFAULT_CLOCK_SKEW;
	r->expiration_leeway = OIDC_DEFAULT_EXP_LEEWAY;
	r->not_before_leeway = OIDC_DEFAULT_NBF_LEEWAY;
	auth_tokenfields_init(&r->tf);
}

void oidc_role_clear(struct oidc_role *r)
{
	if (r == NULL)
		return;
	sg_strlist_clear(&r->bound_audiences);
	free(r->bound_subject);
	json_decref(r->bound_claims);
	free(r->user_claim);
	free(r->groups_claim);
	json_decref(r->claim_mappings);
	sg_strlist_clear(&r->allowed_redirect_uris);
	sg_strlist_clear(&r->oidc_scopes);
	auth_tokenfields_clear(&r->tf);
	memset(r, 0, sizeof(*r));
}

/* A signed duration: Go duration / seconds, or a negative integer to disable. */
static int leeway_field(const json_t *body, const char *key, int64_t *out, struct sg_err *err)
{
	const json_t *v = json_object_get(body, key);

	if (json_is_integer(v) && json_integer_value(v) < 0) {
		*out = -1;
		return 1;
	}
	if (json_is_string(v) && json_string_value(v)[0] == '-') {
		*out = -1;
		return 1;
	}
	return sg_json_duration(body, key, out, err);
}

static int claim_mappings_check(const json_t *m, struct sg_err *err)
{
	const char *k;
	json_t *v, *seen = json_object();
	int ret = -1;

	if (!json_is_object(m)) {
		sg_err_set(err, SG_BAD_REQUEST, "claim_mappings must be an object");
		goto out;
	}
	if (json_object_size(m) > JWT_MAX_CLAIM_MAPPINGS) {
		sg_err_set(err, SG_BAD_REQUEST, "claim_mappings has more than %d entries", JWT_MAX_CLAIM_MAPPINGS);
		goto out;
	}
	json_object_foreach((json_t *)m, k, v) {
		const char *dst = json_string_value(v);

		if (dst == NULL || *dst == '\0' || *k == '\0') {
			sg_err_set(err, SG_BAD_REQUEST, "claim_mappings must map claim names to metadata keys (strings)");
			goto out;
		}
		if (strcmp(dst, "role") == 0) {
			sg_err_set(err, SG_BAD_REQUEST, "metadata key \"role\" is reserved and may not be a mapping destination");
			goto out;
		}
		if (json_object_get(seen, dst) != NULL) {
			sg_err_set(err, SG_BAD_REQUEST, "multiple keys are mapped to metadata key \"%.64s\"", dst);
			goto out;
		}
		json_object_set_new(seen, dst, json_true());
	}
	ret = 0;
out:
	json_decref(seen);
	return ret;
}

int oidc_role_apply(struct oidc_role *r, const json_t *body, struct sg_err *err)
{
	const char *s = NULL;
	const json_t *v;
	int rc;

	if ((rc = sg_json_str(body, "role_type", &s, err)) < 0)
		return -1;
	if (rc == 1 && *s != '\0') {
		if (strcmp(s, "oidc") != 0 && strcmp(s, "jwt") != 0)
			return sg_err_set(err, SG_BAD_REQUEST, "invalid 'role_type': %.16s", s);
		snprintf(r->role_type, sizeof(r->role_type), "%s", s);
	}
	if ((rc = sg_json_str(body, "bound_claims_type", &s, err)) < 0)
		return -1;
	if (rc == 1 && *s != '\0') {
		if (strcmp(s, "string") != 0 && strcmp(s, "glob") != 0)
			return sg_err_set(err, SG_BAD_REQUEST, "invalid 'bound_claims_type': %.16s", s);
		snprintf(r->bound_claims_type, sizeof(r->bound_claims_type), "%s", s);
	}
	if (sg_json_list(body, "bound_audiences", &r->bound_audiences, err) < 0 ||
	    auth_rolefields_str(body, "bound_subject", AUTH_ROLE_FIELD_MAX, &r->bound_subject, err) < 0 ||
	    auth_rolefields_str(body, "user_claim", AUTH_ROLE_FIELD_MAX, &r->user_claim, err) < 0 ||
	    sg_json_bool(body, "user_claim_json_pointer", &r->user_claim_json_pointer, err) < 0 ||
	    auth_rolefields_str(body, "groups_claim", AUTH_ROLE_FIELD_MAX, &r->groups_claim, err) < 0 ||
	    sg_json_list(body, "allowed_redirect_uris", &r->allowed_redirect_uris, err) < 0 ||
	    sg_json_list(body, "oidc_scopes", &r->oidc_scopes, err) < 0 ||
	    leeway_field(body, "clock_skew_leeway", &r->clock_skew_leeway, err) < 0 ||
	    leeway_field(body, "expiration_leeway", &r->expiration_leeway, err) < 0 ||
	    leeway_field(body, "not_before_leeway", &r->not_before_leeway, err) < 0 ||
	    sg_json_duration(body, "max_age", &r->max_age, err) < 0 || auth_rolefields_apply(&r->tf, body, err) < 0)
		return -1;
	if (r->bound_audiences.n > OIDC_MAX_LIST || r->allowed_redirect_uris.n > OIDC_MAX_LIST ||
	    r->oidc_scopes.n > OIDC_MAX_LIST)
		return sg_err_set(err, SG_BAD_REQUEST, "bound_audiences, allowed_redirect_uris and oidc_scopes: at most %d "
		                                       "entries each", OIDC_MAX_LIST);
	for (size_t i = 0; i < r->allowed_redirect_uris.n; i++)
		if (url_check(r->allowed_redirect_uris.v[i], "allowed_redirect_uris", err) != 0)
			return -1;
	v = json_object_get(body, "bound_claims");
	if (v != NULL) {
		if (json_is_null(v) || (json_is_object(v) && json_object_size(v) == 0)) {
			json_decref(r->bound_claims);
			r->bound_claims = NULL;
		} else {
			if (jwt_bound_claims_validate(v, err) != 0)
				return -1;
			json_decref(r->bound_claims);
			r->bound_claims = json_deep_copy(v);
		}
	}
	v = json_object_get(body, "claim_mappings");
	if (v != NULL) {
		if (json_is_null(v) || (json_is_object(v) && json_object_size(v) == 0)) {
			json_decref(r->claim_mappings);
			r->claim_mappings = NULL;
		} else {
			if (claim_mappings_check(v, err) != 0)
				return -1;
			json_decref(r->claim_mappings);
			r->claim_mappings = json_deep_copy(v);
		}
	}
	if (r->bound_claims != NULL && strcmp(r->bound_claims_type, "glob") == 0) {
		const char *k;
		json_t *bv;

		json_object_foreach(r->bound_claims, k, bv) {
			if (!json_is_string(bv) && !json_is_array(bv))
				return sg_err_set(err, SG_BAD_REQUEST, "bound_claims_type 'glob' needs string values (%.64s)", k);
		}
	}
	if (empty(r->user_claim))
		return sg_err_set(err, SG_BAD_REQUEST, "a user claim must be defined on the role");
	if (strcmp(r->role_type, "oidc") == 0 && r->allowed_redirect_uris.n == 0)
		return sg_err_set(err, SG_BAD_REQUEST,
		                  "'allowed_redirect_uris' must be set if 'role_type' is 'oidc' or unspecified.");
	/* Vault: a machine role must bind something, or any token of the issuer would log in. */
	if (strcmp(r->role_type, "jwt") == 0 && r->bound_audiences.n == 0 && empty(r->bound_subject) &&
	    r->bound_claims == NULL && r->tf.bound_cidrs.n == 0)
		return sg_err_set(err, SG_BAD_REQUEST, "must have at least one bound constraint when creating/updating a role");
	return 0;
}

json_t *oidc_role_encode(const struct oidc_role *r)
{
	json_t *o = json_object();

	set_str(o, "role_type", r->role_type);
	json_object_set_new(o, "bound_audiences", sg_strlist_to_json(&r->bound_audiences));
	set_str(o, "bound_subject", r->bound_subject);
	json_object_set_new(o, "bound_claims", r->bound_claims != NULL ? json_deep_copy(r->bound_claims) : json_null());
	set_str(o, "bound_claims_type", r->bound_claims_type);
	set_str(o, "user_claim", r->user_claim);
	json_object_set_new(o, "user_claim_json_pointer", json_boolean(r->user_claim_json_pointer));
	set_str(o, "groups_claim", r->groups_claim);
	json_object_set_new(o, "claim_mappings",
	                    r->claim_mappings != NULL ? json_deep_copy(r->claim_mappings) : json_null());
	json_object_set_new(o, "allowed_redirect_uris", sg_strlist_to_json(&r->allowed_redirect_uris));
	json_object_set_new(o, "oidc_scopes", sg_strlist_to_json(&r->oidc_scopes));
	json_object_set_new(o, "clock_skew_leeway", json_integer(r->clock_skew_leeway));
	json_object_set_new(o, "expiration_leeway", json_integer(r->expiration_leeway));
	json_object_set_new(o, "not_before_leeway", json_integer(r->not_before_leeway));
	json_object_set_new(o, "max_age", json_integer(r->max_age));
	auth_tokenfields_encode(&r->tf, o);
	return o;
}

int oidc_role_decode(struct oidc_role *r, const json_t *stored, struct sg_err *err)
{
	const char *s;
	const json_t *v;

	if (!json_is_object(stored))
		return sg_err_set(err, SG_STORAGE, "jwt role record is not an object");
	oidc_role_clear(r);
	oidc_role_init(r);
	s = json_string_value(json_object_get(stored, "role_type"));
	if (s != NULL && (strcmp(s, "jwt") == 0 || strcmp(s, "oidc") == 0))
		snprintf(r->role_type, sizeof(r->role_type), "%s", s);
	s = json_string_value(json_object_get(stored, "bound_claims_type"));
	if (s != NULL && (strcmp(s, "glob") == 0 || strcmp(s, "string") == 0))
		snprintf(r->bound_claims_type, sizeof(r->bound_claims_type), "%s", s);
	r->bound_subject = dup_member(stored, "bound_subject");
	r->user_claim = dup_member(stored, "user_claim");
	r->groups_claim = dup_member(stored, "groups_claim");
	r->user_claim_json_pointer = json_is_true(json_object_get(stored, "user_claim_json_pointer"));
	v = json_object_get(stored, "bound_claims");
	if (json_is_object(v) && json_object_size(v) > 0)
		r->bound_claims = json_deep_copy(v);
	v = json_object_get(stored, "claim_mappings");
	if (json_is_object(v) && json_object_size(v) > 0)
		r->claim_mappings = json_deep_copy(v);
	r->clock_skew_leeway = json_integer_value(json_object_get(stored, "clock_skew_leeway"));
	r->expiration_leeway = json_integer_value(json_object_get(stored, "expiration_leeway"));
	r->not_before_leeway = json_integer_value(json_object_get(stored, "not_before_leeway"));
	r->max_age = json_integer_value(json_object_get(stored, "max_age"));
	if (sg_json_list(stored, "bound_audiences", &r->bound_audiences, err) < 0 ||
	    sg_json_list(stored, "allowed_redirect_uris", &r->allowed_redirect_uris, err) < 0 ||
	    sg_json_list(stored, "oidc_scopes", &r->oidc_scopes, err) < 0 ||
	    auth_tokenfields_decode(&r->tf, stored, err) != 0)
		return -1;
	return 0;
}

/* Vault: a negative leeway means none, zero means the default. */
static int64_t leeway(int64_t v, int64_t def)
{
	return v < 0 ? 0 : v == 0 ? def : v;
}

/* ---------------- Document cache ---------------- */

struct cache_ent {
	char *key;      /* url "\n" ca */
	char *body;
	size_t len;
	int64_t fetched;
};

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static struct cache_ent cache[OIDC_CACHE_MAX];

void oidc_cache_flush(void)
{
	pthread_mutex_lock(&cache_mu);
	for (size_t i = 0; i < OIDC_CACHE_MAX; i++) {
		free(cache[i].key);
		free(cache[i].body);
		memset(&cache[i], 0, sizeof(cache[i]));
	}
	pthread_mutex_unlock(&cache_mu);
}

/* Copies a fresh-enough cached body; 1 when found. Called with cache_mu held. */
static int cache_find(const char *key, int64_t max_age, char **body, size_t *len)
{
	int64_t now = sg_now();

	for (size_t i = 0; i < OIDC_CACHE_MAX; i++) {
		if (cache[i].key == NULL || strcmp(cache[i].key, key) != 0)
			continue;
		if (now - cache[i].fetched >= max_age || now < cache[i].fetched)
			return 0;
		*body = sg_xstrndup(cache[i].body, cache[i].len);
		*len = cache[i].len;
		return 1;
	}
	return 0;
}

static void cache_store(const char *key, const char *body, size_t len)
{
	size_t slot = 0;
	int64_t oldest = INT64_MAX;

	pthread_mutex_lock(&cache_mu);
	for (size_t i = 0; i < OIDC_CACHE_MAX; i++) {
		if (cache[i].key != NULL && strcmp(cache[i].key, key) == 0) {
			slot = i;
			break;
		}
		if (cache[i].key == NULL) {
			slot = i;
			oldest = INT64_MIN;
		} else if (cache[i].fetched < oldest) {
			slot = i;
			oldest = cache[i].fetched;
		}
	}
	free(cache[slot].key);
	free(cache[slot].body);
	cache[slot].key = sg_xstrdup(key);
	cache[slot].body = sg_xstrndup(body, len);
	cache[slot].len = len;
	cache[slot].fetched = sg_now();
	pthread_mutex_unlock(&cache_mu);
}

/*
 * A remote JSON document, from the cache when younger than OIDC_CACHE_TTL.
 * force asks for a refresh, granted when the cached copy is at least
 * OIDC_REFRESH_MIN seconds old.
 */
static int doc_fetch(const char *url, const char *ca, bool force, char **body, size_t *len, struct sg_err *err)
{
	char *key = sg_xasprintf("%s\n%s", url, ca != NULL ? ca : "");
	struct auth_httpc_req hr = {0};
	long status = 0;
	int found, ret = -1;

	pthread_mutex_lock(&cache_mu);
	found = cache_find(key, force ? OIDC_REFRESH_MIN : OIDC_CACHE_TTL, body, len);
	pthread_mutex_unlock(&cache_mu);
	if (found) {
		ret = 0;
		goto out;
	}
	hr.url = url;
	hr.ca_pem = ca;
	if (auth_httpc_do(&hr, &status, body, len, err) != 0)
		goto out;
	if (status != 200) {
		free(*body);
		*body = NULL;
		sg_err_set(err, SG_UNAVAILABLE, "%.200s answered HTTP %ld", url, status);
		goto out;
	}
	cache_store(key, *body, *len);
	ret = 0;
out:
	free(key);
	return ret;
}

/* ---------------- Providers and keys ---------------- */

void oidc_provider_clear(struct oidc_provider *p)
{
	if (p == NULL)
		return;
	free(p->issuer);
	free(p->authorization_endpoint);
	free(p->token_endpoint);
	free(p->jwks_uri);
	memset(p, 0, sizeof(*p));
}

int oidc_provider_get(const struct oidc_config *c, struct oidc_provider *out, struct sg_err *err)
{
	char *url = NULL, *body = NULL;
	size_t len = 0, n;
	json_t *doc = NULL;
	json_error_t jerr;
	struct sg_err ferr;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	if (empty(c->discovery_url))
		return sg_err_set(err, SG_BAD_REQUEST, "no oidc_discovery_url configured");
	n = strlen(c->discovery_url);
	while (n > 0 && c->discovery_url[n - 1] == '/')
		n--;
	url = sg_xasprintf("%.*s%s", (int)n, c->discovery_url, WELL_KNOWN);
	sg_err_init(&ferr);
	if (doc_fetch(url, c->discovery_ca_pem, false, &body, &len, &ferr) != 0) {
		sg_err_set(err, SG_BAD_REQUEST, "error checking oidc discovery URL: %s", ferr.detail);
		goto out;
	}
	doc = json_loadb(body, len, 0, &jerr);
	if (!json_is_object(doc)) {
		sg_err_set(err, SG_BAD_REQUEST, "error checking oidc discovery URL: the document is not a JSON object");
		goto out;
	}
	out->issuer = dup_member(doc, "issuer");
	out->authorization_endpoint = dup_member(doc, "authorization_endpoint");
	out->token_endpoint = dup_member(doc, "token_endpoint");
	out->jwks_uri = dup_member(doc, "jwks_uri");
	/* Discovery 1.0 4.3: the issuer MUST be identical to the URL used to find the document. */
	if (out->issuer == NULL || strcmp(out->issuer, c->discovery_url) != 0) {
		sg_err_set(err, SG_BAD_REQUEST, "error checking oidc discovery URL: issuer did not match the issuer "
		                                "returned by provider");
		goto out;
	}
	if (out->jwks_uri == NULL || url_check(out->jwks_uri, "jwks_uri", err) != 0 ||
	    url_check(out->authorization_endpoint, "authorization_endpoint", err) != 0 ||
	    url_check(out->token_endpoint, "token_endpoint", err) != 0) {
		sg_err_set(err, SG_BAD_REQUEST, "error checking oidc discovery URL: no usable jwks_uri");
		goto out;
	}
	ret = 0;
out:
	if (ret != 0)
		oidc_provider_clear(out);
	json_decref(doc);
	free(body);
	free(url);
	return ret;
}

static int jwks_load(const char *url, const char *ca, bool force, struct jwt_keyset *ks, struct sg_err *err)
{
	char *body = NULL;
	size_t len = 0;
	struct sg_err ferr;
	int ret = -1;

	sg_err_init(&ferr);
	if (doc_fetch(url, ca, force, &body, &len, &ferr) != 0) {
		sg_err_set(err, SG_BAD_REQUEST, "error fetching jwks keyset: %s", ferr.detail);
		goto out;
	}
	if (jwt_keyset_add_jwks(ks, body, len, &ferr) != 0) {
		sg_err_set(err, SG_BAD_REQUEST, "error fetching jwks keyset: %s", ferr.detail);
		goto out;
	}
	ret = 0;
out:
	free(body);
	return ret;
}

static bool keyset_has_kid(const struct jwt_keyset *ks, const char *kid)
{
	for (size_t i = 0; i < ks->n; i++)
		if (ks->v[i].kid != NULL && strcmp(ks->v[i].kid, kid) == 0)
			return true;
	return false;
}

/* Signature through a JWKS URL, refreshing once for an unknown kid (key rotation). */
static int verify_remote(const struct oidc_config *c, const char *url, const char *ca, const struct jwt *t,
                         struct sg_err *err)
{
	struct jwt_keyset ks = {0};
	struct sg_err verr;
	int ret = -1;

	if (jwks_load(url, ca, false, &ks, err) != 0)
		goto out;
	if (t->kid != NULL && !keyset_has_kid(&ks, t->kid)) {
		jwt_keyset_clear(&ks);
		if (jwks_load(url, ca, true, &ks, err) != 0)
			goto out;
	}
	sg_err_init(&verr);
	if (jwt_verify(t, &ks, &c->supported_algs, &verr) != 0) {
		sg_err_set(err, SG_BAD_REQUEST, "error verifying token: %s", verr.detail);
		goto out;
	}
	ret = 0;
out:
	jwt_keyset_clear(&ks);
	return ret;
}

static int verify_static(const struct oidc_config *c, const struct jwt *t, struct sg_err *err)
{
	struct jwt_keyset ks = {0};
	struct sg_err verr;
	int ret = -1;

	for (size_t i = 0; i < c->pubkeys.n; i++)
		if (jwt_keyset_add_pem(&ks, c->pubkeys.v[i], strlen(c->pubkeys.v[i]), err) != 0)
			goto out;
	sg_err_init(&verr);
	if (jwt_verify(t, &ks, &c->supported_algs, &verr) != 0) {
		sg_err_set(err, SG_BAD_REQUEST, "%s", verr.code == SG_BAD_SIGNATURE
		                                          ? "no known key successfully validated the token signature"
		                                          : verr.detail);
		goto out;
	}
	ret = 0;
out:
	jwt_keyset_clear(&ks);
	return ret;
}

int oidc_config_check_remote(const struct oidc_config *c, struct sg_err *err)
{
	struct oidc_provider p = {0};
	struct jwt_keyset ks = {0};
	int ret = -1;

	switch (oidc_config_source(c)) {
	case OIDC_SRC_DISCOVERY:
		if (oidc_provider_get(c, &p, err) != 0)
			goto out;
		if (jwks_load(p.jwks_uri, c->discovery_ca_pem, false, &ks, err) != 0)
			goto out;
		break;
	case OIDC_SRC_JWKS: {
		struct sg_err jerr;

		sg_err_init(&jerr);
		if (jwks_load(c->jwks_url, c->jwks_ca_pem, false, &ks, &jerr) != 0) {
			sg_err_set(err, SG_BAD_REQUEST, "error checking jwks URL: %s", jerr.detail);
			goto out;
		}
		break;
	}
	default:
		break;
	}
	ret = 0;
out:
	jwt_keyset_clear(&ks);
	oidc_provider_clear(&p);
	return ret;
}

/* ---------------- Login validation ---------------- */

static int bound_claims(const struct oidc_role *r, const json_t *claims, struct sg_err *err)
{
	return jwt_bound_claims_check(claims, r->bound_claims, strcmp(r->bound_claims_type, "glob") == 0, err);
}

int oidc_jwt_login_validate(const struct oidc_config *c, const struct oidc_role *r, const char *jwt,
                            json_t **claims, struct sg_err *err)
{
	struct jwt t;
	struct oidc_provider p = {0};
	struct jwt_expect e = {0};
	int ret = -1;

	*claims = NULL;
	if (jwt_parse(jwt, strlen(jwt), &t, err) != 0)
		return -1;
	e.now = sg_now();
	e.leeway = leeway(r->clock_skew_leeway, OIDC_DEFAULT_CLOCK_SKEW);
	e.exp_leeway = leeway(r->expiration_leeway, OIDC_DEFAULT_EXP_LEEWAY);
	e.nbf_leeway = leeway(r->not_before_leeway, OIDC_DEFAULT_NBF_LEEWAY);
	e.subject = r->bound_subject;
	e.audiences = &r->bound_audiences;
	switch (oidc_config_source(c)) {
	case OIDC_SRC_PUBKEYS:
		if (verify_static(c, &t, err) != 0)
			goto out;
		e.require_time = true;
		e.issuer = c->bound_issuer;
		e.aud_strict = true;
		break;
	case OIDC_SRC_JWKS:
		if (verify_remote(c, c->jwks_url, c->jwks_ca_pem, &t, err) != 0)
			goto out;
		e.require_time = true;
		e.issuer = c->bound_issuer;
		e.aud_strict = true;
		break;
	case OIDC_SRC_DISCOVERY:
		if (oidc_provider_get(c, &p, err) != 0 || verify_remote(c, p.jwks_uri, c->discovery_ca_pem, &t, err) != 0)
			goto out;
		/* An OpenID Provider's tokens name it as issuer and always expire (Core 1.0 2). */
		if (json_object_get(t.claims, "exp") == NULL) {
			sg_err_set(err, SG_BAD_REQUEST, "error validating signature: token has no expiry (exp)");
			goto out;
		}
		if (!empty(c->bound_issuer) && strcmp(c->bound_issuer, p.issuer) != 0) {
			sg_err_set(err, SG_BAD_REQUEST, "bound_issuer does not match the provider's issuer");
			goto out;
		}
		e.issuer = p.issuer;
		break;
	default:
		sg_err_set(err, SG_BAD_REQUEST, "could not load configuration");
		goto out;
	}
	if (jwt_claims_validate(t.claims, &e, err) != 0 || bound_claims(r, t.claims, err) != 0)
		goto out;
	*claims = json_incref(t.claims);
	ret = 0;
out:
	oidc_provider_clear(&p);
	jwt_clear(&t);
	return ret;
}

void oidc_identity_clear(struct oidc_identity *id)
{
	if (id == NULL)
		return;
	free(id->user);
	json_decref(id->metadata);
	sg_strlist_clear(&id->groups);
	memset(id, 0, sizeof(*id));
}

int oidc_identity_from_claims(const struct oidc_role *r, const json_t *claims, struct oidc_identity *out,
                              struct sg_err *err)
{
	const char *user = NULL;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	out->metadata = json_object();
	/* Without user_claim_json_pointer a leading '/' is part of the claim's name (Vault). */
	if (!r->user_claim_json_pointer && r->user_claim[0] == '/') {
		user = json_string_value(json_object_get(claims, r->user_claim));
		if (empty(user)) {
			sg_err_set(err, SG_BAD_REQUEST, "claim \"%.64s\" not found in token", r->user_claim);
			goto out;
		}
	} else if (jwt_claim_string(claims, r->user_claim, &user, err) != 0) {
		goto out;
	}
	if (strlen(user) > AUTH_ROLE_FIELD_MAX) {
		sg_err_set(err, SG_BAD_REQUEST, "claim \"%.64s\" is too long", r->user_claim);
		goto out;
	}
	out->user = sg_xstrdup(user);
	if (jwt_claim_mappings_apply(claims, r->claim_mappings, out->metadata, err) != 0)
		goto out;
	if (!empty(r->groups_claim) && jwt_claim_strlist(claims, r->groups_claim, &out->groups, err) != 0)
		goto out;
	ret = 0;
out:
	if (ret != 0)
		oidc_identity_clear(out);
	return ret;
}

/* ---------------- Redirect URIs ---------------- */

/* "http://127.0.0.1:8250/cb" -> "http://127.0.0.1/cb" into buf when the host is a loopback; else copies. */
static bool loopback_strip(const char *uri, char *buf, size_t cap)
{
	static const char *const hosts[] = {"http://127.0.0.1", "http://localhost", "http://[::1]"};

	for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
		size_t n = strlen(hosts[i]);
		const char *p;

		if (strncasecmp(uri, hosts[i], n) != 0 || (uri[n] != ':' && uri[n] != '/' && uri[n] != '\0'))
			continue;
		p = uri + n;
		if (*p == ':') {
			p++;
			while (*p >= '0' && *p <= '9')
				p++;
		}
		snprintf(buf, cap, "%s%s", hosts[i], p);
		return true;
	}
	snprintf(buf, cap, "%s", uri);
	return false;
}

bool oidc_redirect_allowed(const struct oidc_role *r, const char *uri)
{
	char a[AUTH_HTTPC_MAX_URL + 1], b[AUTH_HTTPC_MAX_URL + 1];
	bool loop;

	if (empty(uri) || strlen(uri) > AUTH_HTTPC_MAX_URL)
		return false;
	loop = loopback_strip(uri, a, sizeof(a));
	for (size_t i = 0; i < r->allowed_redirect_uris.n; i++) {
		const char *allowed = r->allowed_redirect_uris.v[i];

		if (!loop) {
			if (strcasecmp(allowed, uri) == 0)
				return true;
			continue;
		}
		if (strlen(allowed) <= AUTH_HTTPC_MAX_URL && loopback_strip(allowed, b, sizeof(b)) && strcmp(a, b) == 0)
			return true;
	}
	return false;
}

/* ---------------- Pending flows ---------------- */

static pthread_mutex_t pending_mu = PTHREAD_MUTEX_INITIALIZER;
static struct oidc_state *pending[OIDC_MAX_PENDING];

void oidc_state_clear(struct oidc_state *s)
{
	if (s == NULL)
		return;
	free(s->mount_accessor);
	free(s->role);
	free(s->redirect_uri);
	free(s->client_nonce);
	OPENSSL_cleanse(s, sizeof(*s));
}

/*
 * Records a flow. When the table is full the flow closest to expiry makes
 * room: oidc/auth_url is unauthenticated, and refusing new flows would let
 * anyone lock every user out with OIDC_MAX_PENDING requests per
 * OIDC_STATE_TTL, while eviction only costs flows left open that long.
 */
static void pending_add(struct oidc_state *st)
{
	int64_t now = sg_now();
	int slot = -1, oldest = 0;

	pthread_mutex_lock(&pending_mu);
	for (int i = 0; i < OIDC_MAX_PENDING; i++) {
		if (pending[i] != NULL && pending[i]->expires <= now) {
			oidc_state_clear(pending[i]);
			free(pending[i]);
			pending[i] = NULL;
		}
		if (pending[i] == NULL && slot < 0)
			slot = i;
		if (pending[i] != NULL && pending[oldest] != NULL && pending[i]->expires < pending[oldest]->expires)
			oldest = i;
	}
	if (slot < 0) {
		slot = oldest;
		oidc_state_clear(pending[slot]);
		free(pending[slot]);
	}
	pending[slot] = st;
	pthread_mutex_unlock(&pending_mu);
}

int oidc_state_take(const char *mount_accessor, const char *state, struct oidc_state *out)
{
	struct oidc_state *hit = NULL;
	size_t n = state != NULL ? strlen(state) : 0;
	int ret = 0;

	memset(out, 0, sizeof(*out));
	if (n == 0 || n >= sizeof(out->state))
		return 0;
	pthread_mutex_lock(&pending_mu);
	for (int i = 0; i < OIDC_MAX_PENDING; i++) {
		if (pending[i] == NULL)
			continue;
		if (sg_ct_equal(pending[i]->state, strlen(pending[i]->state), state, n) &&
		    strcmp(pending[i]->mount_accessor, mount_accessor) == 0) {
			hit = pending[i];
			pending[i] = NULL; /* single use, whatever happens next */
			break;
		}
	}
	pthread_mutex_unlock(&pending_mu);
	if (hit == NULL)
		return 0;
	if (hit->expires > sg_now()) {
		*out = *hit;
		ret = 1;
	} else {
		oidc_state_clear(hit);
	}
	OPENSSL_cleanse(hit, sizeof(*hit));
	free(hit);
	return ret;
}

static void append_param(char **url, bool *first, const char *k, const char *v)
{
	char *ev = auth_httpc_escape(v);
	char *n = sg_xasprintf("%s%c%s=%s", *url, *first ? '?' : '&', k, ev);

	free(ev);
	free(*url);
	*url = n;
	*first = false;
}

/* RFC 7636 4.2: code_challenge = BASE64URL(SHA256(ASCII(code_verifier))). */
static char *pkce_challenge(const char *verifier)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (EVP_Digest(verifier, strlen(verifier), md, &mdlen, EVP_sha256(), NULL) != 1)
		sg_die("EVP_Digest");
	return sg_b64url(md, mdlen);
}

int oidc_auth_url(const struct oidc_config *c, const struct oidc_role *r, const char *mount_accessor,
                  const char *role_name, const char *redirect_uri, const char *client_nonce, char **url,
                  struct sg_err *err)
{
	struct oidc_provider p = {0};
	struct oidc_state *st = NULL;
	char *challenge = NULL, *scope = NULL, *u = NULL;
	bool first;
	int ret = -1;

	*url = NULL;
	if (!oidc_config_flow(c)) {
		sg_err_set(err, SG_BAD_REQUEST, "OIDC login is not configured for this mount");
		goto out;
	}
	if (strcmp(r->role_type, "oidc") != 0) {
		sg_err_set(err, SG_BAD_REQUEST, "role with jwt role_type is not allowed in the OIDC flow");
		goto out;
	}
	if (empty(redirect_uri)) {
		sg_err_set(err, SG_BAD_REQUEST, "missing redirect_uri");
		goto out;
	}
	if (!oidc_redirect_allowed(r, redirect_uri)) {
		sg_err_set(err, SG_BAD_REQUEST, "unauthorized redirect_uri: %.200s", redirect_uri);
		goto out;
	}
	if (client_nonce != NULL && strlen(client_nonce) > OIDC_CLIENT_NONCE_MAX) {
		sg_err_set(err, SG_BAD_REQUEST, "client_nonce is too long");
		goto out;
	}
	if (oidc_provider_get(c, &p, err) != 0)
		goto out;
	if (p.authorization_endpoint == NULL || p.token_endpoint == NULL) {
		sg_err_set(err, SG_BAD_REQUEST, "the provider has no authorization or token endpoint");
		goto out;
	}
	st = sg_xcalloc(1, sizeof(*st));
	memcpy(st->state, "st_", 3);
	sg_random_b62(st->state + 3, STATE_RANDOM);
	memcpy(st->nonce, "n_", 2);
	sg_random_b62(st->nonce + 2, STATE_RANDOM);
	sg_random_b62(st->verifier, VERIFIER_LEN);
	st->mount_accessor = sg_xstrdup(mount_accessor);
	st->role = sg_xstrdup(role_name);
	st->redirect_uri = sg_xstrdup(redirect_uri);
	st->client_nonce = sg_xstrdup(client_nonce != NULL ? client_nonce : "");
	st->expires = sg_now() + OIDC_STATE_TTL;
	challenge = pkce_challenge(st->verifier);

	/* Core 1.0 3.1.2.1: "openid" is required; the role may ask for more. */
	scope = sg_xstrdup("openid");
	for (size_t i = 0; i < r->oidc_scopes.n; i++) {
		char *n;

		if (strcmp(r->oidc_scopes.v[i], "openid") == 0)
			continue;
		n = sg_xasprintf("%s %s", scope, r->oidc_scopes.v[i]);
		free(scope);
		scope = n;
	}
	u = sg_xstrdup(p.authorization_endpoint);
	first = strchr(u, '?') == NULL;
	append_param(&u, &first, "client_id", c->client_id);
	append_param(&u, &first, "code_challenge", challenge);
	append_param(&u, &first, "code_challenge_method", "S256");
	append_param(&u, &first, "nonce", st->nonce);
	append_param(&u, &first, "redirect_uri", redirect_uri);
	append_param(&u, &first, "response_type", "code");
	append_param(&u, &first, "scope", scope);
	append_param(&u, &first, "state", st->state);
	if (r->max_age > 0) {
		char age[24];

		snprintf(age, sizeof(age), "%lld", (long long)r->max_age);
		append_param(&u, &first, "max_age", age);
	}
	pending_add(st);
	st = NULL;
	*url = u;
	u = NULL;
	ret = 0;
out:
	if (st != NULL) {
		oidc_state_clear(st);
		free(st);
	}
	free(u);
	free(scope);
	free(challenge);
	oidc_provider_clear(&p);
	return ret;
}

/* RFC 6749 4.1.3 with RFC 7636 4.5: the token request. *id_token is malloc'ed. */
static int code_exchange(const struct oidc_config *c, const struct oidc_provider *p, const struct oidc_state *st,
                         const char *code, char **id_token, struct sg_err *err)
{
	char *ecode = auth_httpc_escape(code), *eredir = auth_httpc_escape(st->redirect_uri);
	char *eid = auth_httpc_escape(c->client_id);
	char *form = NULL, *answer = NULL;
	size_t alen = 0;
	long status = 0;
	struct auth_httpc_req hr = {0};
	struct sg_err herr;
	json_t *doc = NULL;
	json_error_t jerr;
	const char *tok;
	int ret = -1;

	*id_token = NULL;
	form = sg_xasprintf("grant_type=authorization_code&code=%s&redirect_uri=%s&code_verifier=%s%s%s", ecode, eredir,
	                    st->verifier, empty(c->client_secret) ? "&client_id=" : "",
	                    empty(c->client_secret) ? eid : "");
	hr.url = p->token_endpoint;
	hr.ca_pem = c->discovery_ca_pem;
	hr.body = form;
	hr.body_len = strlen(form);
	hr.content_type = "application/x-www-form-urlencoded";
	if (!empty(c->client_secret)) {
		hr.basic_user = c->client_id;
		hr.basic_pass = c->client_secret;
	}
	sg_err_init(&herr);
	if (auth_httpc_do(&hr, &status, &answer, &alen, &herr) != 0) {
		sg_err_set(err, SG_BAD_REQUEST, "Vault login failed. Error exchanging oidc code: %s", herr.detail);
		goto out;
	}
	doc = json_loadb(answer, alen, 0, &jerr);
	if (status != 200) {
		const char *e = json_string_value(json_object_get(doc, "error"));

		sg_err_set(err, SG_BAD_REQUEST, "Vault login failed. Error exchanging oidc code: \"%.64s\" (HTTP %ld).",
		           e != NULL ? e : "no error code", status);
		goto out;
	}
	tok = json_string_value(json_object_get(doc, "id_token"));
	if (empty(tok)) {
		sg_err_set(err, SG_BAD_REQUEST, "Token verification failed. No id_token found in response.");
		goto out;
	}
	*id_token = sg_xstrdup(tok);
	ret = 0;
out:
	json_decref(doc);
	if (answer != NULL) {
		OPENSSL_cleanse(answer, alen);
		free(answer);
	}
	free(form);
	free(ecode);
	free(eredir);
	free(eid);
	return ret;
}

int oidc_callback_validate(const struct oidc_config *c, const struct oidc_role *r, const struct oidc_state *st,
                           const char *code, json_t **claims, struct sg_err *err)
{
	struct oidc_provider p = {0};
	struct jwt t = {0};
	struct jwt_expect e = {0};
	struct sg_strlist client = {0};
	char *id_token = NULL;
	const char *nonce, *azp;
	int ret = -1;

	*claims = NULL;
	if (empty(code)) {
		sg_err_set(err, SG_BAD_REQUEST, "Vault login failed. No code or id_token received.");
		goto out;
	}
	if (oidc_provider_get(c, &p, err) != 0 || p.token_endpoint == NULL)
		goto out;
	if (code_exchange(c, &p, st, code, &id_token, err) != 0)
		goto out;
	if (jwt_parse(id_token, strlen(id_token), &t, err) != 0 ||
	    verify_remote(c, p.jwks_uri, c->discovery_ca_pem, &t, err) != 0)
		goto out;
	/* Core 1.0 3.1.3.7: iss is the provider, aud contains our client id, exp is in the future. */
	if (json_object_get(t.claims, "exp") == NULL) {
		sg_err_set(err, SG_BAD_REQUEST, "Token verification failed. ID token has no expiry.");
		goto out;
	}
	sg_strlist_add(&client, c->client_id);
	e.now = sg_now();
	e.leeway = leeway(r->clock_skew_leeway, OIDC_DEFAULT_CLOCK_SKEW);
	e.issuer = p.issuer;
	e.audiences = &client;
	if (jwt_claims_validate(t.claims, &e, err) != 0)
		goto out;
	azp = json_string_value(json_object_get(t.claims, "azp"));
	if (azp != NULL && strcmp(azp, c->client_id) != 0) {
		sg_err_set(err, SG_BAD_REQUEST, "Token verification failed. azp is not this client.");
		goto out;
	}
	/* Core 1.0 3.1.3.7 11: the nonce sent in the authentication request must come back. */
	nonce = json_string_value(json_object_get(t.claims, "nonce"));
	if (nonce == NULL || !sg_ct_equal(nonce, strlen(nonce), st->nonce, strlen(st->nonce))) {
		sg_err_set(err, SG_BAD_REQUEST, "Vault login failed. invalid ID token nonce.");
		goto out;
	}
	/* Then the role's own bindings (Vault: audiences not strict here). */
	memset(&e, 0, sizeof(e));
	e.now = sg_now();
	e.leeway = leeway(r->clock_skew_leeway, OIDC_DEFAULT_CLOCK_SKEW);
	e.subject = r->bound_subject;
	e.audiences = &r->bound_audiences;
	if (jwt_claims_validate(t.claims, &e, err) != 0 || bound_claims(r, t.claims, err) != 0)
		goto out;
	*claims = json_incref(t.claims);
	ret = 0;
out:
	sg_strlist_clear(&client);
	jwt_clear(&t);
	if (id_token != NULL) {
		OPENSSL_cleanse(id_token, strlen(id_token));
		free(id_token);
	}
	oidc_provider_clear(&p);
	return ret;
}
