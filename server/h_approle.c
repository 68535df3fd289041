/* auth/<approle mount>/...: Vault's AppRole API over auth/approle.c (compat/vault-api.md 3). */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/approle.h"
#include "server/auth_mounts.h"

/* Empty LIST answers 404 as Vault does. */
/* The role named in the path, which must exist (SG_BAD_REQUEST "role ... does not exist" otherwise, as Vault). */
static int role_get(const struct req *rq, struct auth_approle_role *r, enum sg_code absent, struct sg_err *err)
{
	const char *name = req_param(rq, "role_name");
	int got;

	if (auth_approle_name_check(name, err) != 0)
		return -1;
	got = auth_approle_role_load(auth_req_store(rq), auth_req_prefix(rq), name, r, err);
	if (got < 0)
		return -1;
	if (got == 0)
		return sg_err_set(err, absent, "role \"%s\" does not exist", name);
	return 0;
}

static int h_role_list(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct sg_strlist keys = {0};
	int rc = -1;

	if (auth_approle_role_list(auth_req_store(rq), auth_req_prefix(rq), &keys, err) == 0)
		rc = resp_keys(rs, &keys, err);
	sg_strlist_clear(&keys);
	return rc;
}

static int h_role_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct auth_approle_role r;
	int rc = -1;

	auth_approle_role_init(&r);
	if (role_get(rq, &r, SG_NOT_FOUND, err) != 0)
		goto out;
	resp_data(rs, auth_approle_role_to_json(&r));
	rc = 0;
out:
	auth_approle_role_clear(&r);
	return rc;
}

/* POST role/:role_name creates or updates (fields absent from the body keep their value). */
static int h_role_write(struct req *rq, struct resp *rs, struct sg_err *err)
{
	const char *name = req_param(rq, "role_name");
	struct auth_approle_role r;
	char *old_id = NULL;
	int rc = -1, got;

	(void)rs;
	auth_approle_role_init(&r);
	if (auth_approle_name_check(name, err) != 0)
		goto out;
	got = auth_approle_role_load(auth_req_store(rq), auth_req_prefix(rq), name, &r, err);
	if (got < 0)
		goto out;
	if (got == 1)
		old_id = sg_xstrdup(r.role_id);
	else
		r.name = sg_xstrdup(name);
	if (auth_approle_role_apply(&r, rq->body, got == 0, err) != 0 ||
	    auth_approle_role_store(auth_req_store(rq), auth_req_prefix(rq), &r, old_id, err) != 0)
		goto out;
	rc = 0;
out:
	free(old_id);
	auth_approle_role_clear(&r);
	return rc;
}

static int h_role_delete(struct req *rq, struct resp *rs, struct sg_err *err)
{
	const char *name = req_param(rq, "role_name");

	(void)rs;
	if (auth_approle_name_check(name, err) != 0)
		return -1;
	return auth_approle_role_delete(auth_req_store(rq), auth_req_prefix(rq), name, err);
}

static int h_role_id_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct auth_approle_role r;
	int rc = -1;

	auth_approle_role_init(&r);
	if (role_get(rq, &r, SG_NOT_FOUND, err) != 0)
		goto out;
	resp_data(rs, json_pack("{s:s}", "role_id", r.role_id));
	rc = 0;
out:
	auth_approle_role_clear(&r);
	return rc;
}

static int h_role_id_write(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct auth_approle_role r;
	const char *id = NULL;
	char *old_id = NULL;
	int rc = -1;

	(void)rs;
	auth_approle_role_init(&r);
	if (role_get(rq, &r, SG_BAD_REQUEST, err) != 0 || sg_json_str(rq->body, "role_id", &id, err) < 0)
		goto out;
	if (id == NULL || *id == '\0') {
		sg_err_set(err, SG_BAD_REQUEST, "missing role_id");
		goto out;
	}
	old_id = r.role_id;
	r.role_id = sg_xstrdup(id);
	if (auth_approle_role_store(auth_req_store(rq), auth_req_prefix(rq), &r, old_id, err) != 0)
		goto out;
	rc = 0;
out:
	free(old_id);
	auth_approle_role_clear(&r);
	return rc;
}

static int secret_generate(struct req *rq, struct resp *rs, bool custom, struct sg_err *err)
{
	struct auth_approle_role r;
	struct auth_approle_secret_params p;
	struct auth_approle_secret s;
	char secret[AUTH_APPROLE_SECRET_MAX] = "";
	int rc = -1;

	auth_approle_role_init(&r);
	memset(&p, 0, sizeof(p));
	memset(&s, 0, sizeof(s));
	if (role_get(rq, &r, SG_BAD_REQUEST, err) != 0 || auth_approle_secret_params_parse(rq->body, custom, &p, err) != 0 ||
	    auth_approle_secret_create(auth_req_store(rq), auth_req_prefix(rq), &r, &p, secret, sizeof(secret), &s, err) != 0)
		goto out;
	resp_data(rs, json_pack("{s:s, s:s, s:I, s:I}", "secret_id", secret, "secret_id_accessor", s.accessor,
	                        "secret_id_ttl", (json_int_t)s.ttl, "secret_id_num_uses", (json_int_t)s.num_uses));
	rc = 0;
out:
	OPENSSL_cleanse(secret, sizeof(secret));
	auth_approle_secret_clear(&s);
	auth_approle_secret_params_clear(&p);
	auth_approle_role_clear(&r);
	return rc;
}

static int h_secret_generate(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return secret_generate(rq, rs, false, err);
}

static int h_custom_secret(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return secret_generate(rq, rs, true, err);
}

static int h_secret_list(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct auth_approle_role r;
	struct sg_strlist keys = {0};
	int rc = -1;

	auth_approle_role_init(&r);
	if (role_get(rq, &r, SG_BAD_REQUEST, err) == 0 &&
	    auth_approle_secret_list(auth_req_store(rq), auth_req_prefix(rq), r.name, &keys, err) == 0)
		rc = resp_keys(rs, &keys, err);
	sg_strlist_clear(&keys);
	auth_approle_role_clear(&r);
	return rc;
}

/* A required string field of the body. */
static int body_str(const struct req *rq, const char *key, const char **out, struct sg_err *err)
{
	*out = NULL;
	if (sg_json_str(rq->body, key, out, err) < 0)
		return -1;
	if (*out == NULL || **out == '\0')
		return sg_err_set(err, SG_BAD_REQUEST, "missing %s", key);
	if (strlen(*out) > AUTH_APPROLE_ID_MAX)
		return sg_err_set(err, SG_BAD_REQUEST, "%s is longer than %d characters", key, AUTH_APPROLE_ID_MAX);
	return 0;
}

static int secret_read(struct req *rq, struct resp *rs, bool by_accessor, struct sg_err *err)
{
	struct auth_approle_role r;
	struct auth_approle_secret s;
	const char *v = NULL;
	int rc = -1, got;

	auth_approle_role_init(&r);
	memset(&s, 0, sizeof(s));
	if (role_get(rq, &r, SG_BAD_REQUEST, err) != 0 ||
	    body_str(rq, by_accessor ? "secret_id_accessor" : "secret_id", &v, err) != 0)
		goto out;
	got = by_accessor ? auth_approle_secret_lookup_accessor(auth_req_store(rq), auth_req_prefix(rq), &r, v, &s, err)
	                  : auth_approle_secret_lookup(auth_req_store(rq), auth_req_prefix(rq), &r, v, &s, err);
	if (got < 0)
		goto out;
	if (got == 0) {
		if (by_accessor)
			sg_err_set(err, SG_NOT_FOUND, "failed to find accessor entry for secret_id_accessor: \"%.64s\"", v);
		else
			sg_err_set(err, SG_NOT_FOUND, "no such secret ID for role \"%s\"", r.name);
		goto out;
	}
	resp_data(rs, auth_approle_secret_to_json(&s));
	rc = 0;
out:
	auth_approle_secret_clear(&s);
	auth_approle_role_clear(&r);
	return rc;
}

static int h_secret_lookup(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return secret_read(rq, rs, false, err);
}

static int h_secret_accessor_lookup(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return secret_read(rq, rs, true, err);
}

static int secret_destroy(struct req *rq, bool by_accessor, struct sg_err *err)
{
	struct auth_approle_role r;
	const char *v = NULL;
	int rc = -1, got;

	auth_approle_role_init(&r);
	if (role_get(rq, &r, SG_BAD_REQUEST, err) != 0 ||
	    body_str(rq, by_accessor ? "secret_id_accessor" : "secret_id", &v, err) != 0)
		goto out;
	got = by_accessor ? auth_approle_secret_destroy_accessor(auth_req_store(rq), auth_req_prefix(rq), &r, v, err)
	                  : auth_approle_secret_destroy(auth_req_store(rq), auth_req_prefix(rq), &r, v, err);
	if (got < 0)
		goto out;
	/* Vault: destroying an unknown secret id succeeds; an unknown accessor is an error. */
	if (got == 0 && by_accessor) {
		sg_err_set(err, SG_NOT_FOUND, "failed to find accessor entry for secret_id_accessor: \"%.64s\"", v);
		goto out;
	}
	rc = 0;
out:
	auth_approle_role_clear(&r);
	return rc;
}

static int h_secret_destroy(struct req *rq, struct resp *rs, struct sg_err *err)
{
	(void)rs;
	return secret_destroy(rq, false, err);
}

static int h_secret_accessor_destroy(struct req *rq, struct resp *rs, struct sg_err *err)
{
	(void)rs;
	return secret_destroy(rq, true, err);
}

static int h_tidy(struct req *rq, struct resp *rs, struct sg_err *err)
{
	uint64_t n = 0;

	if (auth_approle_tidy(auth_req_store(rq), auth_req_prefix(rq), &n, err) != 0)
		return -1;
	resp_warn(rs, "removed %llu expired secret IDs", (unsigned long long)n);
	return 0;
}

static int h_login(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct auth_approle_login_result l;
	struct auth_token_params p;
	const char *role_id = NULL, *secret_id = NULL;
	json_t *alias = NULL;
	int rc = -1;

	memset(&l, 0, sizeof(l));
	auth_token_params_init(&p);
	if (sg_json_str(rq->body, "role_id", &role_id, err) < 0 || sg_json_str(rq->body, "secret_id", &secret_id, err) < 0)
		goto out;
	if (auth_approle_login(auth_req_store(rq), auth_req_prefix(rq), role_id, secret_id, rq->remote_addr, &l, err) != 0)
		goto out;
	auth_tokenfields_to_params(&l.role.tf, &p);
	sg_strlist_clear(&p.bound_cidrs);
	sg_strlist_copy(&p.bound_cidrs, &l.token_bound_cidrs);
	p.meta = l.metadata;
	/* Vault's alias for an AppRole login: the role_id, with the login metadata. */
	alias = json_pack("{s:s, s:O}", "name", l.role.role_id, "metadata", l.metadata);
	p.alias = alias;
	if (auth_login_respond(rq, rs, &p, err) != 0)
		goto out;
	rc = 0;
out:
	p.meta = NULL;
	p.alias = NULL;
	json_decref(alias);
	auth_token_params_clear(&p);
	auth_approle_login_result_clear(&l);
	return rc;
}

const struct route approle_routes[] = {
	{"login", HTTP_POST, h_login, ROUTE_AUTH_NONE, false},
	{"role", HTTP_LIST, h_role_list, ROUTE_AUTH_TOKEN, false},
	{"role/:role_name", HTTP_GET, h_role_read, ROUTE_AUTH_TOKEN, false},
	{"role/:role_name", HTTP_POST | ROUTE_EXISTENCE, h_role_write, ROUTE_AUTH_TOKEN, false}, /* create or update */
	{"role/:role_name", HTTP_DELETE, h_role_delete, ROUTE_AUTH_TOKEN, false},
	{"role/:role_name/role-id", HTTP_GET, h_role_id_read, ROUTE_AUTH_TOKEN, false},
	{"role/:role_name/role-id", HTTP_POST, h_role_id_write, ROUTE_AUTH_TOKEN, false},
	{"role/:role_name/secret-id", HTTP_POST, h_secret_generate, ROUTE_AUTH_TOKEN, false},
	{"role/:role_name/secret-id", HTTP_LIST, h_secret_list, ROUTE_AUTH_TOKEN, false},
	{"role/:role_name/custom-secret-id", HTTP_POST, h_custom_secret, ROUTE_AUTH_TOKEN, false},
	{"role/:role_name/secret-id/lookup", HTTP_POST, h_secret_lookup, ROUTE_AUTH_TOKEN, false},
	{"role/:role_name/secret-id/destroy", HTTP_POST | HTTP_DELETE, h_secret_destroy, ROUTE_AUTH_TOKEN, false},
	{"role/:role_name/secret-id-accessor/lookup", HTTP_POST, h_secret_accessor_lookup, ROUTE_AUTH_TOKEN, false},
	{"role/:role_name/secret-id-accessor/destroy", HTTP_POST | HTTP_DELETE, h_secret_accessor_destroy,
	 ROUTE_AUTH_TOKEN, false},
	{"tidy/secret-id", HTTP_POST, h_tidy, ROUTE_AUTH_TOKEN, false},
};
const size_t approle_routes_n = sizeof(approle_routes) / sizeof(approle_routes[0]);
