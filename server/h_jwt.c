/*
 * auth/<jwt or oidc mount>/...: Vault's JWT/OIDC auth API over auth/oidc.c
 * (compat/vault-api.md 3): config, roles, login with a JWT, and the
 * authorization-code flow (oidc/auth_url, oidc/callback).
 *
 * Group mapping: Vault maps identity-provider groups to policies through
 * its identity store (external groups with group aliases). Sigil has no
 * identity store, so each mount has a small group table instead, shaped
 * like Vault's LDAP and Okta methods: groups/:name {policies}. A login
 * whose groups_claim names a mapped group receives that group's policies
 * on top of the role's token_policies.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/oidc.h"
#include "auth/rolefields.h"
#include "server/auth_mounts.h"

#define JWT_CONFIG_RECORD "config"
#define JWT_ROLE_DIR "role/"
#define JWT_GROUP_DIR "group/"
#define JWT_GROUP_NAME_MAX 256
#define JWT_KEY_MAX (sizeof(JWT_GROUP_DIR) + JWT_GROUP_NAME_MAX + 1)

static int config_load(const struct req *rq, struct oidc_config *c, struct sg_err *err)
{
	json_t *rec = NULL;
	int got = auth_record_load(auth_req_store(rq), auth_req_prefix(rq), JWT_CONFIG_RECORD, &rec, err);

	if (got == 1 && oidc_config_decode(c, rec, err) != 0)
		got = -1;
	json_decref(rec);
	return got;
}

/* Vault lower-cases JWT role names on every path. */
static int role_key(const char *name, char *lower, size_t lcap, char *key, size_t kcap, struct sg_err *err)
{
	size_t n = name != NULL ? strlen(name) : 0;

	if (!auth_rolefields_name_valid(name) || n >= lcap)
		return sg_err_set(err, SG_BAD_REQUEST, "invalid role name");
	for (size_t i = 0; i <= n; i++)
		lower[i] = (char)tolower((unsigned char)name[i]);
	snprintf(key, kcap, "%s%s", JWT_ROLE_DIR, lower);
	return 0;
}

static int role_load(const struct req *rq, const char *name, struct oidc_role *r, struct sg_err *err)
{
	char lower[AUTH_ROLE_NAME_MAX + 1], key[JWT_KEY_MAX];
	json_t *rec = NULL;
	int got;

	if (role_key(name, lower, sizeof(lower), key, sizeof(key), err) != 0)
		return -1;
	got = auth_record_load(auth_req_store(rq), auth_req_prefix(rq), key, &rec, err);
	if (got == 1 && oidc_role_decode(r, rec, err) != 0)
		got = -1;
	json_decref(rec);
	return got;
}

static int list_respond(const struct req *rq, struct resp *rs, const char *dir, struct sg_err *err)
{
	struct sg_strlist keys = {0};
	int rc = -1;

	if (auth_record_list(auth_req_store(rq), auth_req_prefix(rq), dir, &keys, err) == 0)
		rc = resp_keys(rs, &keys, err);
	sg_strlist_clear(&keys);
	return rc;
}

/* ---------------- config ---------------- */

static int h_config_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct oidc_config c;
	int got;

	oidc_config_init(&c);
	got = config_load(rq, &c, err);
	if (got == 1)
		resp_data(rs, oidc_config_encode(&c, false));
	oidc_config_clear(&c);
	if (got == 0)
		return sg_err_set(err, SG_NOT_FOUND, "%s", "");
	return got < 0 ? -1 : 0;
}

/* Replaces the config; a remote key source must answer now (Vault checks it too). */
static int h_config_write(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct oidc_config c;
	json_t *rec = NULL;
	int rc = -1;

	(void)rs;
	oidc_config_init(&c);
	if (oidc_config_apply(&c, rq->body, err) != 0)
		goto out;
	/* A rewritten config starts from fresh documents (the provider may have been re-pointed). */
	oidc_cache_flush();
	if (oidc_config_check_remote(&c, err) != 0)
		goto out;
	rec = oidc_config_encode(&c, true);
	rc = auth_record_store(auth_req_store(rq), auth_req_prefix(rq), JWT_CONFIG_RECORD, rec, err);
out:
	json_decref(rec);
	oidc_config_clear(&c);
	return rc;
}

/* ---------------- roles ---------------- */

static int h_role_list(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return list_respond(rq, rs, JWT_ROLE_DIR, err);
}

static int h_role_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct oidc_role r;
	int got;

	oidc_role_init(&r);
	got = role_load(rq, req_param(rq, "name"), &r, err);
	if (got == 1)
		resp_data(rs, oidc_role_encode(&r));
	oidc_role_clear(&r);
	if (got == 0)
		return sg_err_set(err, SG_NOT_FOUND, "%s", "");
	return got < 0 ? -1 : 0;
}

static int h_role_write(struct req *rq, struct resp *rs, struct sg_err *err)
{
	char lower[AUTH_ROLE_NAME_MAX + 1], key[JWT_KEY_MAX];
	struct oidc_role r;
	json_t *rec = NULL;
	int rc = -1;

	(void)rs;
	oidc_role_init(&r);
	if (role_key(req_param(rq, "name"), lower, sizeof(lower), key, sizeof(key), err) != 0 ||
	    role_load(rq, lower, &r, err) < 0 || oidc_role_apply(&r, rq->body, err) != 0)
		goto out;
	rec = oidc_role_encode(&r);
	rc = auth_record_store(auth_req_store(rq), auth_req_prefix(rq), key, rec, err);
out:
	json_decref(rec);
	oidc_role_clear(&r);
	return rc;
}

static int h_role_delete(struct req *rq, struct resp *rs, struct sg_err *err)
{
	char lower[AUTH_ROLE_NAME_MAX + 1], key[JWT_KEY_MAX];

	(void)rs;
	if (role_key(req_param(rq, "name"), lower, sizeof(lower), key, sizeof(key), err) != 0)
		return -1;
	return auth_record_delete(auth_req_store(rq), auth_req_prefix(rq), key, err);
}

/* ---------------- groups ---------------- */

static int group_key(const char *name, char *key, size_t cap, struct sg_err *err)
{
	size_t n = name != NULL ? strlen(name) : 0;

	if (n == 0 || n > JWT_GROUP_NAME_MAX)
		return sg_err_set(err, SG_BAD_REQUEST, "invalid group name");
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return sg_err_set(err, SG_BAD_REQUEST, "invalid group name");
	snprintf(key, cap, "%s%s", JWT_GROUP_DIR, name);
	return 0;
}

static int h_group_list(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return list_respond(rq, rs, JWT_GROUP_DIR, err);
}

static int h_group_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	char key[JWT_KEY_MAX];
	json_t *rec = NULL;
	int got;

	if (group_key(req_param(rq, "name"), key, sizeof(key), err) != 0)
		return -1;
	got = auth_record_load(auth_req_store(rq), auth_req_prefix(rq), key, &rec, err);
	if (got == 1) {
		json_object_set_new(rec, "name", json_string(req_param(rq, "name")));
		resp_data(rs, rec);
		return 0;
	}
	if (got == 0)
		return sg_err_set(err, SG_NOT_FOUND, "%s", "");
	return -1;
}

static int h_group_write(struct req *rq, struct resp *rs, struct sg_err *err)
{
	char key[JWT_KEY_MAX];
	struct sg_strlist pol = {0};
	json_t *rec = NULL;
	int rc = -1;

	(void)rs;
	if (group_key(req_param(rq, "name"), key, sizeof(key), err) != 0 ||
	    sg_json_list(rq->body, "policies", &pol, err) < 0 || auth_policies_sanitize(&pol, "policies", err) != 0)
		goto out;
	rec = json_pack("{s:o}", "policies", sg_strlist_to_json(&pol));
	rc = auth_record_store(auth_req_store(rq), auth_req_prefix(rq), key, rec, err);
out:
	json_decref(rec);
	sg_strlist_clear(&pol);
	return rc;
}

static int h_group_delete(struct req *rq, struct resp *rs, struct sg_err *err)
{
	char key[JWT_KEY_MAX];

	(void)rs;
	if (group_key(req_param(rq, "name"), key, sizeof(key), err) != 0)
		return -1;
	return auth_record_delete(auth_req_store(rq), auth_req_prefix(rq), key, err);
}

/* Adds the policies of every mapped group the identity belongs to. */
static int group_policies(const struct req *rq, const struct sg_strlist *groups, struct sg_strlist *policies,
                          struct sg_err *err)
{
	char key[JWT_KEY_MAX];
	struct sg_strlist pol = {0};
	int ret = -1;

	for (size_t i = 0; i < groups->n; i++) {
		json_t *rec = NULL;
		struct sg_err ignored;
		int got;

		sg_err_init(&ignored);
		if (group_key(groups->v[i], key, sizeof(key), &ignored) != 0)
			continue; /* a group name we could never have mapped */
		got = auth_record_load(auth_req_store(rq), auth_req_prefix(rq), key, &rec, err);
		if (got < 0)
			goto out;
		if (got == 1 && sg_json_list(rec, "policies", &pol, err) < 0) {
			json_decref(rec);
			goto out;
		}
		json_decref(rec);
		for (size_t j = 0; got == 1 && j < pol.n; j++)
			if (!sg_strlist_has(policies, pol.v[j]))
				sg_strlist_add(policies, pol.v[j]);
		sg_strlist_clear(&pol);
	}
	ret = 0;
out:
	sg_strlist_clear(&pol);
	return ret;
}

/* ---------------- logins ---------------- */

/* The token for a validated identity: role token fields, group policies, Vault's metadata and alias. */
static int login_finish(struct req *rq, struct resp *rs, const char *role_name, const struct oidc_role *r,
                        const struct oidc_identity *id, struct sg_err *err)
{
	struct auth_token_params p;
	json_t *meta = NULL, *alias = NULL;
	int rc = -1;

	auth_token_params_init(&p);
	auth_tokenfields_to_params(&r->tf, &p);
	if (group_policies(rq, &id->groups, &p.policies, err) != 0)
		goto out;
	meta = json_deep_copy(id->metadata);
	json_object_set_new(meta, "role", json_string(role_name));
	alias = json_pack("{s:s, s:O}", "name", id->user, "metadata", id->metadata);
	if (meta == NULL || alias == NULL)
		sg_die("json");
	p.meta = meta;
	p.alias = alias;
	p.display_name = id->user;
	if (auth_login_respond(rq, rs, &p, err) != 0)
		goto out;
	rc = 0;
out:
	p.meta = NULL;
	p.alias = NULL;
	p.display_name = NULL;
	auth_token_params_clear(&p);
	json_decref(meta);
	json_decref(alias);
	return rc;
}

/* The role of a login or auth_url: the body's, else the config's default_role. Lower-cased into name. */
static int role_for(const struct req *rq, const struct oidc_config *c, const char *given, struct oidc_role *r,
                    char *name, size_t cap, struct sg_err *err)
{
	char key[JWT_KEY_MAX];
	int got;

	if (given == NULL || *given == '\0')
		given = c->default_role;
	if (given == NULL || *given == '\0')
		return sg_err_set(err, SG_BAD_REQUEST, "missing role");
	if (!auth_rolefields_name_valid(given) || role_key(given, name, cap, key, sizeof(key), err) != 0)
		return sg_err_set(err, SG_BAD_REQUEST, "role \"%.128s\" could not be found", given);
	got = role_load(rq, name, r, err);
	if (got < 0)
		return -1;
	if (got == 0)
		return sg_err_set(err, SG_BAD_REQUEST, "role \"%.128s\" could not be found", name);
	return 0;
}

static int config_require(const struct req *rq, struct oidc_config *c, struct sg_err *err)
{
	int got = config_load(rq, c, err);

	if (got == 0)
		return sg_err_set(err, SG_BAD_REQUEST, "could not load configuration");
	return got < 0 ? -1 : 0;
}

static int cidr_gate(const struct req *rq, const struct oidc_role *r, struct sg_err *err)
{
	if (r->tf.bound_cidrs.n > 0 && !auth_cidr_allowed(&r->tf.bound_cidrs, rq->remote_addr))
		return sg_err_set(err, SG_PERMISSION_DENIED, "permission denied");
	return 0;
}

static int h_login(struct req *rq, struct resp *rs, struct sg_err *err)
{
	const char *given = NULL, *jwt = NULL;
	char name[AUTH_ROLE_NAME_MAX + 1];
	struct oidc_config c;
	struct oidc_role r;
	struct oidc_identity id = {0};
	json_t *claims = NULL;
	int rc = -1;

	oidc_config_init(&c);
	oidc_role_init(&r);
	if (sg_json_str(rq->body, "role", &given, err) < 0 || sg_json_str(rq->body, "jwt", &jwt, err) < 0 ||
	    config_require(rq, &c, err) != 0 || role_for(rq, &c, given, &r, name, sizeof(name), err) != 0)
		goto out;
	if (strcmp(r.role_type, "oidc") == 0) {
		sg_err_set(err, SG_BAD_REQUEST, "role with oidc role_type is not allowed");
		goto out;
	}
	if (jwt == NULL || *jwt == '\0') {
		sg_err_set(err, SG_BAD_REQUEST, "missing token");
		goto out;
	}
	if (cidr_gate(rq, &r, err) != 0 || oidc_jwt_login_validate(&c, &r, jwt, &claims, err) != 0 ||
	    oidc_identity_from_claims(&r, claims, &id, err) != 0 || login_finish(rq, rs, name, &r, &id, err) != 0)
		goto out;
	rc = 0;
out:
	json_decref(claims);
	oidc_identity_clear(&id);
	oidc_role_clear(&r);
	oidc_config_clear(&c);
	return rc;
}

static int h_auth_url(struct req *rq, struct resp *rs, struct sg_err *err)
{
	const char *given = NULL, *redirect = NULL, *client_nonce = NULL;
	char name[AUTH_ROLE_NAME_MAX + 1];
	struct oidc_config c;
	struct oidc_role r;
	char *url = NULL;
	int rc = -1;

	oidc_config_init(&c);
	oidc_role_init(&r);
	if (sg_json_str(rq->body, "role", &given, err) < 0 || sg_json_str(rq->body, "redirect_uri", &redirect, err) < 0 ||
	    sg_json_str(rq->body, "client_nonce", &client_nonce, err) < 0 || config_require(rq, &c, err) != 0)
		goto out;
	if (!oidc_config_flow(&c)) {
		sg_err_set(err, SG_BAD_REQUEST, "OIDC login is not configured for this mount");
		goto out;
	}
	if (role_for(rq, &c, given, &r, name, sizeof(name), err) != 0 ||
	    oidc_auth_url(&c, &r, rq->auth_mount->accessor, name, redirect, client_nonce, &url, err) != 0)
		goto out;
	resp_data(rs, json_pack("{s:s}", "auth_url", url));
	rc = 0;
out:
	free(url);
	oidc_role_clear(&r);
	oidc_config_clear(&c);
	return rc;
}

static int h_callback(struct req *rq, struct resp *rs, struct sg_err *err)
{
	const char *state = req_query(rq, "state"), *code = req_query(rq, "code");
	const char *client_nonce = req_query(rq, "client_nonce"), *edesc = req_query(rq, "error_description");
	struct oidc_config c;
	struct oidc_role r;
	struct oidc_state st;
	struct oidc_identity id = {0};
	json_t *claims = NULL;
	char name[AUTH_ROLE_NAME_MAX + 1];
	int rc = -1;

	oidc_config_init(&c);
	oidc_role_init(&r);
	memset(&st, 0, sizeof(st));
	if (config_require(rq, &c, err) != 0)
		goto out;
	/* The state is consumed here, whatever the outcome: a code is tried once. */
	if (oidc_state_take(rq->auth_mount->accessor, state, &st) != 1) {
		sg_err_set(err, SG_BAD_REQUEST, "Vault login failed. Expired or missing OAuth state.");
		goto out;
	}
	if (role_for(rq, &c, st.role, &r, name, sizeof(name), err) != 0)
		goto out;
	if (edesc != NULL && *edesc != '\0') {
		sg_err_set(err, SG_BAD_REQUEST, "Vault login failed. %.200s", edesc);
		goto out;
	}
	if (st.client_nonce[0] != '\0' &&
	    (client_nonce == NULL || !sg_ct_equal(client_nonce, strlen(client_nonce), st.client_nonce,
	                                          strlen(st.client_nonce)))) {
		sg_err_set(err, SG_BAD_REQUEST, "invalid client_nonce");
		goto out;
	}
	if (cidr_gate(rq, &r, err) != 0 || oidc_callback_validate(&c, &r, &st, code, &claims, err) != 0 ||
	    oidc_identity_from_claims(&r, claims, &id, err) != 0 || login_finish(rq, rs, name, &r, &id, err) != 0)
		goto out;
	rc = 0;
out:
	json_decref(claims);
	oidc_identity_clear(&id);
	oidc_state_clear(&st);
	oidc_role_clear(&r);
	oidc_config_clear(&c);
	return rc;
}

const struct route jwt_routes[] = {
	{"login", HTTP_POST, h_login, ROUTE_AUTH_NONE, false},
	{"oidc/auth_url", HTTP_POST, h_auth_url, ROUTE_AUTH_NONE, false},
	{"oidc/callback", HTTP_GET, h_callback, ROUTE_AUTH_NONE, false},
	{"config", HTTP_GET, h_config_read, ROUTE_AUTH_TOKEN, false},
	{"config", HTTP_POST, h_config_write, ROUTE_AUTH_TOKEN, false},
	{"role", HTTP_LIST, h_role_list, ROUTE_AUTH_TOKEN, false},
	{"role/:name", HTTP_GET, h_role_read, ROUTE_AUTH_TOKEN, false},
	{"role/:name", HTTP_POST | ROUTE_EXISTENCE, h_role_write, ROUTE_AUTH_TOKEN, false}, /* create or update */
	{"role/:name", HTTP_DELETE, h_role_delete, ROUTE_AUTH_TOKEN, false},
	{"groups", HTTP_LIST, h_group_list, ROUTE_AUTH_TOKEN, false},
	{"groups/*name", HTTP_GET, h_group_read, ROUTE_AUTH_TOKEN, false},
	{"groups/*name", HTTP_POST | ROUTE_EXISTENCE, h_group_write, ROUTE_AUTH_TOKEN, false}, /* create or update */
	{"groups/*name", HTTP_DELETE, h_group_delete, ROUTE_AUTH_TOKEN, false},
};
const size_t jwt_routes_n = sizeof(jwt_routes) / sizeof(jwt_routes[0]);
