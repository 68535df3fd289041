/*
 * ACL policies over HTTP (compat/vault-api.md 4).
 *
 * sys/policies/acl/:name and the older sys/policy/:name read and write the
 * policy store (auth/acl.h); sys/capabilities(-self,-accessor) answer what
 * a token may do on paths. Like Vault's system backend, these answers
 * repeat their data at the top level of the envelope, where older clients
 * read "policies", "keys" and "capabilities".
 */
#include "server/sys_policy.h"

#include <stdlib.h>
#include <string.h>

#include "auth/token.h"
#include "server/internal.h"

#define SYS_CAP_PATHS_MAX 256 /* paths in one capabilities request */

/* Vault's system-backend envelope: data, and the same keys at the top level. */
static int respond_injected(struct req *rq, struct resp *rs, json_t *data)
{
	json_t *env = json_object();
	char *s;
	const char *k;
	json_t *v;

	json_object_foreach(data, k, v)
		json_object_set(env, k, v);
	json_object_set_new(env, "request_id", json_string(rq->request_id != NULL ? rq->request_id : ""));
	json_object_set_new(env, "lease_id", json_string(""));
	json_object_set_new(env, "renewable", json_false());
	json_object_set_new(env, "lease_duration", json_integer(0));
	json_object_set_new(env, "data", data);
	json_object_set_new(env, "wrap_info", json_null());
	json_object_set_new(env, "warnings", json_null());
	json_object_set_new(env, "auth", json_null());
	json_object_set_new(env, "mount_type", json_string("system"));
	s = json_dumps(env, JSON_COMPACT);
	json_decref(env);
	if (s == NULL)
		sg_die("out of memory");
	resp_raw(rs, "application/json", s, strlen(s));
	free(s);
	return 0;
}

/* Stored names in order, then "root" (Vault appends it to the listing). */
static json_t *policy_names(struct req *rq)
{
	struct sg_strlist names = {0};
	json_t *a;

	auth_acl_store_names(rq->srv->acl, &names);
	sg_strlist_add(&names, "root");
	a = sg_strlist_to_json(&names);
	sg_strlist_clear(&names);
	return a;
}

int h_sys_policy_list(struct req *rq, struct resp *rs, struct sg_err *err)
{
	json_t *names = policy_names(rq);

	(void)err;
	return respond_injected(rq, rs, json_pack("{s:O, s:o}", "keys", names, "policies", names));
}

int h_sys_policies_acl_list(struct req *rq, struct resp *rs, struct sg_err *err)
{
	(void)err;
	return respond_injected(rq, rs, json_pack("{s:o}", "keys", policy_names(rq)));
}

/* The legacy path answers with "rules", the current one with "policy". */
static int policy_read(struct req *rq, struct resp *rs, const char *field, struct sg_err *err)
{
	char name[AUTH_ACL_MAX_NAME_BYTES + 1];
	char *raw = NULL;
	struct sg_err ignored;
	int got;

	sg_err_init(&ignored);
	if (auth_acl_name_normalize(req_param(rq, "name"), name, sizeof(name), &ignored) != 0)
		return sg_err_set(err, SG_NOT_FOUND, "%s", "");
	got = auth_acl_store_get(rq->srv->acl, name, &raw, err);
	if (got < 0)
		return -1;
	if (got == 0)
		return sg_err_set(err, SG_NOT_FOUND, "%s", ""); /* Vault: 404 with an empty errors list */
	respond_injected(rq, rs, json_pack("{s:s, s:s}", "name", name, field, raw));
	free(raw);
	return 0;
}

int h_sys_policy_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return policy_read(rq, rs, "rules", err);
}

int h_sys_policies_acl_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return policy_read(rq, rs, "policy", err);
}

static int policy_write(struct req *rq, struct resp *rs, bool legacy, struct sg_err *err)
{
	const char *text = NULL;

	if (sg_json_str(rq->body, "policy", &text, err) < 0)
		return -1;
	if ((text == NULL || *text == '\0') && legacy) {
		if (sg_json_str(rq->body, "rules", &text, err) < 0)
			return -1;
		if (text != NULL && *text != '\0')
			resp_warn(rs, "'rules' is deprecated, please use 'policy' instead");
	}
	if (text == NULL || *text == '\0')
		return sg_err_set(err, SG_BAD_REQUEST, "'policy' parameter not supplied or empty");
	return auth_acl_store_put(rq->srv->acl, req_param(rq, "name"), text, strlen(text), err);
}

int h_sys_policy_write(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return policy_write(rq, rs, true, err);
}

int h_sys_policies_acl_write(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return policy_write(rq, rs, false, err);
}

int h_sys_policy_delete(struct req *rq, struct resp *rs, struct sg_err *err)
{
	(void)rs;
	return auth_acl_store_delete(rq->srv->acl, req_param(rq, "name"), err);
}

int h_sys_policies_acl_delete(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return h_sys_policy_delete(rq, rs, err);
}

/* ---- sys/capabilities ---- */

/* The token's capabilities on each requested path ("paths", or the older "path"). */
static int capabilities_answer(struct req *rq, struct resp *rs, const struct sg_strlist *policies,
                               struct sg_err *err)
{
	struct sg_strlist paths = {0};
	json_t *data = NULL;
	int rc = -1;

	if (sg_json_list(rq->body, "paths", &paths, err) < 0)
		goto out;
	if (paths.n == 0 && sg_json_list(rq->body, "path", &paths, err) < 0)
		goto out;
	if (paths.n == 0) {
		sg_err_set(err, SG_BAD_REQUEST, "paths must be supplied");
		goto out;
	}
	if (paths.n > SYS_CAP_PATHS_MAX) {
		sg_err_set(err, SG_BAD_REQUEST, "too many paths: at most %d", SYS_CAP_PATHS_MAX);
		goto out;
	}
	data = json_object();
	for (size_t i = 0; i < paths.n; i++)
		json_object_set_new(data, paths.v[i], auth_acl_store_capabilities(rq->srv->acl, policies, paths.v[i]));
	/* Vault keeps "capabilities" for one path, for older clients. */
	if (paths.n == 1)
		json_object_set(data, "capabilities", json_object_get(data, paths.v[0]));
	rc = respond_injected(rq, rs, data);
	data = NULL;
out:
	json_decref(data);
	sg_strlist_clear(&paths);
	return rc;
}

int h_sys_capabilities_self(struct req *rq, struct resp *rs, struct sg_err *err)
{
	if (rq->tok == NULL)
		return sg_err_set(err, SG_PERMISSION_DENIED, "permission denied");
	return capabilities_answer(rq, rs, &rq->tok->policies, err);
}

int h_sys_capabilities(struct req *rq, struct resp *rs, struct sg_err *err)
{
	const char *token = NULL;
	struct auth_token t;
	int got, rc;

	if (sg_json_str(rq->body, "token", &token, err) < 0)
		return -1;
	if (token == NULL || *token == '\0')
		return sg_err_set(err, SG_BAD_REQUEST, "no token found");
	memset(&t, 0, sizeof(t));
	got = auth_token_lookup(rq->srv->tokens, token, &t, err);
	if (got < 0)
		return -1;
	if (got == 0)
		return sg_err_set(err, SG_BAD_REQUEST, "invalid token");
	rc = capabilities_answer(rq, rs, &t.policies, err);
	auth_token_clear(&t);
	return rc;
}

int h_sys_capabilities_accessor(struct req *rq, struct resp *rs, struct sg_err *err)
{
	const char *accessor = NULL;
	struct auth_token t;
	int got, rc;

	if (sg_json_str(rq->body, "accessor", &accessor, err) < 0)
		return -1;
	if (accessor == NULL || *accessor == '\0')
		return sg_err_set(err, SG_BAD_REQUEST, "missing accessor");
	memset(&t, 0, sizeof(t));
	got = auth_token_lookup_accessor(rq->srv->tokens, accessor, &t, err);
	if (got < 0)
		return -1;
	if (got == 0)
		return sg_err_set(err, SG_BAD_REQUEST, "invalid accessor");
	rc = capabilities_answer(rq, rs, &t.policies, err);
	auth_token_clear(&t);
	return rc;
}
