/* auth/<kubernetes mount>/...: Vault's Kubernetes auth API over auth/kubernetes.c (compat/vault-api.md 3). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/kubernetes.h"
#include "auth/rolefields.h"
#include "server/auth_mounts.h"

#define K8S_CONFIG_RECORD "config"
#define K8S_ROLE_DIR "role/"

/* 1 loaded, 0 absent, -1 error. */
static int config_load(const struct req *rq, struct k8s_config *c, struct sg_err *err)
{
	json_t *rec = NULL;
	int got = auth_record_load(auth_req_store(rq), auth_req_prefix(rq), K8S_CONFIG_RECORD, &rec, err);

	if (got == 1 && k8s_config_decode(c, rec, err) != 0)
		got = -1;
	json_decref(rec);
	return got;
}

static int role_key(const char *name, char *buf, size_t cap, struct sg_err *err)
{
	if (!auth_rolefields_name_valid(name))
		return sg_err_set(err, SG_BAD_REQUEST, "invalid role name");
	snprintf(buf, cap, "%s%s", K8S_ROLE_DIR, name);
	return 0;
}

static int role_load(const struct req *rq, const char *name, struct k8s_role *r, struct sg_err *err)
{
	char key[sizeof(K8S_ROLE_DIR) + AUTH_ROLE_NAME_MAX + 1];
	json_t *rec = NULL;
	int got;

	if (role_key(name, key, sizeof(key), err) != 0)
		return -1;
	got = auth_record_load(auth_req_store(rq), auth_req_prefix(rq), key, &rec, err);
	if (got == 1 && k8s_role_decode(r, rec, err) != 0)
		got = -1;
	json_decref(rec);
	return got;
}

static int h_config_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct k8s_config c;
	int got;

	k8s_config_init(&c);
	got = config_load(rq, &c, err);
	if (got == 1)
		resp_data(rs, k8s_config_encode(&c, false));
	k8s_config_clear(&c);
	if (got == 0)
		return sg_err_set(err, SG_NOT_FOUND, "%s", "");
	return got < 0 ? -1 : 0;
}

/* A config write replaces the whole config, as Vault's does. */
static int h_config_write(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct k8s_config c;
	json_t *rec = NULL;
	int rc = -1;

	(void)rs;
	k8s_config_init(&c);
	if (k8s_config_apply(&c, rq->body, err) != 0)
		goto out;
	rec = k8s_config_encode(&c, true);
	rc = auth_record_store(auth_req_store(rq), auth_req_prefix(rq), K8S_CONFIG_RECORD, rec, err);
out:
	json_decref(rec);
	k8s_config_clear(&c);
	return rc;
}

static int h_role_list(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct sg_strlist keys = {0};
	int rc = -1;

	if (auth_record_list(auth_req_store(rq), auth_req_prefix(rq), K8S_ROLE_DIR, &keys, err) == 0)
		rc = resp_keys(rs, &keys, err);
	sg_strlist_clear(&keys);
	return rc;
}

static int h_role_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct k8s_role r;
	int got;

	k8s_role_init(&r);
	got = role_load(rq, req_param(rq, "name"), &r, err);
	if (got == 1)
		resp_data(rs, k8s_role_encode(&r));
	k8s_role_clear(&r);
	if (got == 0)
		return sg_err_set(err, SG_NOT_FOUND, "%s", "");
	return got < 0 ? -1 : 0;
}

/* Creates or updates: fields absent from the body keep their stored value. */
static int h_role_write(struct req *rq, struct resp *rs, struct sg_err *err)
{
	const char *name = req_param(rq, "name");
	char key[sizeof(K8S_ROLE_DIR) + AUTH_ROLE_NAME_MAX + 1];
	struct k8s_role r;
	json_t *rec = NULL;
	int rc = -1;

	(void)rs;
	k8s_role_init(&r);
	if (role_key(name, key, sizeof(key), err) != 0 || role_load(rq, name, &r, err) < 0 ||
	    k8s_role_apply(&r, rq->body, err) != 0)
		goto out;
	rec = k8s_role_encode(&r);
	rc = auth_record_store(auth_req_store(rq), auth_req_prefix(rq), key, rec, err);
out:
	json_decref(rec);
	k8s_role_clear(&r);
	return rc;
}

static int h_role_delete(struct req *rq, struct resp *rs, struct sg_err *err)
{
	char key[sizeof(K8S_ROLE_DIR) + AUTH_ROLE_NAME_MAX + 1];

	(void)rs;
	if (role_key(req_param(rq, "name"), key, sizeof(key), err) != 0)
		return -1;
	return auth_record_delete(auth_req_store(rq), auth_req_prefix(rq), key, err);
}

static int h_login(struct req *rq, struct resp *rs, struct sg_err *err)
{
	const char *role_name = NULL, *jwt = NULL;
	struct k8s_config c;
	struct k8s_role r;
	struct k8s_sa sa = {0};
	struct auth_token_params p;
	json_t *meta = NULL, *alias = NULL;
	char alias_name[2 * K8S_NAME_MAX + 2];
	char *display = NULL;
	int got, rc = -1;

	k8s_config_init(&c);
	k8s_role_init(&r);
	auth_token_params_init(&p);
	if (sg_json_str(rq->body, "role", &role_name, err) < 0 || sg_json_str(rq->body, "jwt", &jwt, err) < 0)
		goto out;
	if (role_name == NULL || *role_name == '\0') {
		sg_err_set(err, SG_BAD_REQUEST, "missing role");
		goto out;
	}
	if (jwt == NULL || *jwt == '\0') {
		sg_err_set(err, SG_BAD_REQUEST, "missing jwt");
		goto out;
	}
	got = auth_rolefields_name_valid(role_name) ? role_load(rq, role_name, &r, err) : 0;
	if (got < 0)
		goto out;
	if (got == 0) {
		sg_err_set(err, SG_BAD_REQUEST, "invalid role name \"%.128s\"", role_name);
		goto out;
	}
	/* Vault: the role's token_bound_cidrs also gate the login itself. */
	if (r.tf.bound_cidrs.n > 0 && !auth_cidr_allowed(&r.tf.bound_cidrs, rq->remote_addr)) {
		sg_err_set(err, SG_PERMISSION_DENIED, "permission denied");
		goto out;
	}
	got = config_load(rq, &c, err);
	if (got < 0)
		goto out;
	if (got == 0) {
		sg_err_set(err, SG_BAD_REQUEST, "could not load backend configuration");
		goto out;
	}
	if (k8s_login_check(&c, &r, jwt, &sa, err) != 0)
		goto out;

	auth_tokenfields_to_params(&r.tf, &p);
	meta = json_pack("{s:s, s:s, s:s, s:s, s:s}", "role", role_name, "service_account_name", sa.name,
	                 "service_account_namespace", sa.ns, "service_account_uid", sa.uid,
	                 "service_account_secret_name", sa.secret_name);
	/* The alias carries the service account for identity templates ({{identity.entity.aliases.<acc>.metadata.*}}). */
	alias = json_pack("{s:s, s:{s:s, s:s, s:s, s:s}}", "name", k8s_alias_name(&r, &sa, alias_name, sizeof(alias_name)),
	                  "metadata", "service_account_name", sa.name, "service_account_namespace", sa.ns,
	                  "service_account_uid", sa.uid, "service_account_secret_name", sa.secret_name);
	if (meta == NULL || alias == NULL)
		sg_die("json_pack");
	display = sg_xasprintf("%s-%s", sa.ns, sa.name);
	p.meta = meta;
	p.alias = alias;
	p.display_name = display;
	if (auth_login_respond(rq, rs, &p, err) != 0)
		goto out;
	rc = 0;
out:
	p.meta = NULL;
	p.alias = NULL;
	p.display_name = NULL;
	auth_token_params_clear(&p);
	free(display);
	json_decref(meta);
	json_decref(alias);
	k8s_sa_clear(&sa);
	k8s_role_clear(&r);
	k8s_config_clear(&c);
	return rc;
}

const struct route kubernetes_routes[] = {
	{"login", HTTP_POST, h_login, ROUTE_AUTH_NONE, false},
	{"config", HTTP_GET, h_config_read, ROUTE_AUTH_TOKEN, false},
	{"config", HTTP_POST | ROUTE_EXISTENCE, h_config_write, ROUTE_AUTH_TOKEN, false}, /* Vault: create or update */
	{"role", HTTP_LIST, h_role_list, ROUTE_AUTH_TOKEN, false},
	{"role/:name", HTTP_GET, h_role_read, ROUTE_AUTH_TOKEN, false},
	{"role/:name", HTTP_POST | ROUTE_EXISTENCE, h_role_write, ROUTE_AUTH_TOKEN, false}, /* create or update */
	{"role/:name", HTTP_DELETE, h_role_delete, ROUTE_AUTH_TOKEN, false},
};
const size_t kubernetes_routes_n = sizeof(kubernetes_routes) / sizeof(kubernetes_routes[0]);
