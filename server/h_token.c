/*
 * auth/token routes (compat/vault-api.md 3, "Token"): create, create-orphan,
 * create/:role, lookup(-self, -accessor), renew(-self, -accessor),
 * revoke(-self, -accessor, -orphan), LIST accessors and token roles.
 * Handlers translate the body into auth/token.h calls; the router has
 * authenticated the caller already
 * (rq->tok), and the ACL decides who may call which path. What Vault checks
 * inside its handlers (sudo for orphans, periodic tokens and revoke-orphan,
 * the policy subset of children) is checked here or in auth/token.c.
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/token.h"
#include "server/auth_mounts.h"
#include "server/internal.h"

#define H_TOKEN_DISPLAY_MAX 200 /* before the "token-" prefix */

static struct auth_tokens *tokens(const struct req *rq)
{
	return rq->srv->tokens;
}

/* Vault's isSudo: root tokens and callers whose policies grant sudo on the path. */
static bool caller_sudo(const struct req *rq)
{
	return rq->sudo || auth_token_is_root(rq->tok);
}

/*
 * A string field that names a token or accessor: absent or "" is
 * SG_BAD_REQUEST `missing`, a non-string names the field.
 */
static int id_field(const struct req *rq, const char *key, const char *missing, const char **out,
                    struct sg_err *err)
{
	const char *v = NULL;

	*out = NULL;
	if (sg_json_str(rq->body, key, &v, err) < 0)
		return -1;
	if (v == NULL || *v == '\0')
		return sg_err_set(err, SG_BAD_REQUEST, "%s", missing);
	*out = v;
	return 0;
}

/* Vault: "token-" + the name with every character outside [a-zA-Z0-9-] replaced by '-', no trailing '-'. */
static char *display_name_make(const char *name)
{
	char *out;
	size_t n;

	if (name == NULL || *name == '\0')
		return sg_xstrdup("token");
	out = sg_xasprintf("token-%.*s", H_TOKEN_DISPLAY_MAX, name);
	for (char *c = out + 6; *c != '\0'; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '-'))
			*c = '-';
	n = strlen(out);
	while (n > 0 && out[n - 1] == '-')
		out[--n] = '\0';
	return out;
}

static int meta_field(const json_t *body, json_t **out, struct sg_err *err)
{
	json_t *m = json_object_get(body, "meta");

	*out = NULL;
	if (m == NULL || json_is_null(m))
		return 0;
	if (!json_is_object(m))
		return sg_err_set(err, SG_BAD_REQUEST, "meta must be an object of string values");
	*out = m;
	return 0;
}

/* The "auth" block of a created or renewed token, with the TTL warning Vault gives when a cap applied. */
static void auth_respond(struct resp *rs, const struct auth_token *t, const char *client_token, int64_t asked)
{
	int64_t now = sg_now(), ttl = t->expire_time != 0 ? t->expire_time - now : 0;

	json_decref(rs->auth);
	rs->auth = auth_token_auth_json(t, client_token, now);
	if (asked > 0 && t->expire_time != 0 && ttl < asked)
		resp_warn(rs, "TTL of \"%llds\" exceeded the effective max_ttl of \"%llds\"; TTL value is capped accordingly",
		          (long long)asked, (long long)ttl);
}

/* ---- create, create-orphan ---- */

static int create_common(struct req *rq, struct resp *rs, bool orphan_path, const struct auth_token_role *role,
                         struct sg_err *err)
{
	struct auth_token_params p;
	struct auth_token t;
	struct sg_strlist warnings = {0};
	char token[AUTH_TOKEN_STR_MAX] = "", path[64 + AUTH_TOKEN_ROLE_NAME_MAX + AUTH_TOKEN_ROLE_SUFFIX_MAX];
	const char *display = NULL, *type = NULL, *id = NULL, *alias = NULL;
	char *dn = NULL;
	json_t *meta = NULL;
	bool no_parent = false, sudo = caller_sudo(rq);
	int64_t lease = 0;
	int rc = -1;

	auth_token_params_init(&p);
	memset(&t, 0, sizeof(t));
	if (sg_json_list(rq->body, "policies", &p.policies, err) < 0 || meta_field(rq->body, &meta, err) != 0 ||
	    sg_json_bool(rq->body, "no_parent", &no_parent, err) < 0 ||
	    sg_json_bool(rq->body, "no_default_policy", &p.no_default_policy, err) < 0 ||
	    sg_json_bool(rq->body, "renewable", &p.renewable, err) < 0 ||
	    sg_json_duration(rq->body, "ttl", &p.ttl, err) < 0 || sg_json_duration(rq->body, "lease", &lease, err) < 0 ||
	    sg_json_duration(rq->body, "explicit_max_ttl", &p.explicit_max_ttl, err) < 0 ||
	    sg_json_duration(rq->body, "period", &p.period, err) < 0 ||
	    sg_json_int(rq->body, "num_uses", &p.num_uses, err) < 0 ||
	    sg_json_str(rq->body, "display_name", &display, err) < 0 || sg_json_str(rq->body, "type", &type, err) < 0 ||
	    sg_json_str(rq->body, "id", &id, err) < 0 || sg_json_str(rq->body, "entity_alias", &alias, err) < 0)
		goto out;
	if (p.policies.n > AUTH_MAX_POLICIES) {
		sg_err_set(err, SG_BAD_REQUEST, "too many policies (at most %d)", AUTH_MAX_POLICIES);
		goto out;
	}
	if (type != NULL && *type != '\0' && strcmp(type, "service") != 0) {
		sg_err_set(err, SG_BAD_REQUEST, strcmp(type, "batch") == 0 ? "batch tokens are not supported"
		                                                          : "invalid 'token_type' value");
		goto out;
	}
	if (id != NULL && *id != '\0') {
		/* A caller-chosen id would be a guessable token: only the server makes them. */
		sg_err_set(err, SG_BAD_REQUEST, "custom token ids are not supported");
		goto out;
	}
	if (alias != NULL && *alias != '\0' && role == NULL) {
		sg_err_set(err, SG_BAD_REQUEST, "'entity_alias' is only allowed in combination with token role");
		goto out;
	}
	if (p.ttl == 0 && lease != 0)
		p.ttl = lease; /* Vault's older name for ttl */
	if (no_parent && !sudo && role == NULL) {
		sg_err_set(err, SG_BAD_REQUEST, "root or sudo privileges required to create orphan token");
		goto out;
	}
	if (p.period > 0 && !sudo) {
		sg_err_set(err, SG_BAD_REQUEST, "root or sudo privileges required to create periodic token");
		goto out;
	}
	if (display != NULL && strlen(display) > H_TOKEN_DISPLAY_MAX) {
		sg_err_set(err, SG_BAD_REQUEST, "display_name is longer than %d bytes", H_TOKEN_DISPLAY_MAX);
		goto out;
	}
	dn = display_name_make(display);
	p.display_name = dn;
	p.meta = meta;
	p.path = orphan_path ? "auth/token/create-orphan" : "auth/token/create";
	p.orphan = orphan_path || (no_parent && role == NULL); /* with a role, the role says */
	p.sudo = sudo;
	if (role != NULL) {
		if (alias != NULL && *alias != '\0') {
			sg_err_set(err, SG_BAD_REQUEST, "invalid 'entity_alias' value"); /* no entity aliases here */
			goto out;
		}
		if (auth_token_role_params(role, rq->tok, &p, path, sizeof(path), &warnings, err) != 0)
			goto out;
	}
	if (auth_token_create(tokens(rq), &p, rq->tok, token, sizeof(token), &t, err) != 0)
		goto out;
	auth_respond(rs, &t, token, p.ttl);
	for (size_t i = 0; i < warnings.n; i++)
		resp_warn(rs, "%s", warnings.v[i]);
	rc = 0;
out:
	sg_strlist_clear(&warnings);
	OPENSSL_cleanse(token, sizeof(token));
	auth_token_clear(&t);
	auth_token_params_clear(&p);
	free(dn);
	return rc;
}

static int h_token_create(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return create_common(rq, rs, false, NULL, err);
}

static int h_token_create_orphan(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return create_common(rq, rs, true, NULL, err);
}

static int h_token_create_role(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct auth_token_role r;
	const char *name = req_param(rq, "role_name");
	int rc = -1, got;

	got = auth_token_role_get(tokens(rq), name, &r, err);
	if (got < 0)
		goto out;
	if (got == 0) {
		sg_err_set(err, SG_BAD_REQUEST, "unknown role %.128s", name);
		goto out;
	}
	rc = create_common(rq, rs, false, &r, err);
out:
	auth_token_role_clear(&r);
	return rc;
}

/* ---- roles ---- */

static int h_token_roles_list(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct sg_strlist l = {0};
	int rc = -1;

	if (auth_token_role_names(tokens(rq), &l, err) == 0)
		rc = resp_keys(rs, &l, err);
	sg_strlist_clear(&l);
	return rc;
}

static int h_token_role_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct auth_token_role r;
	int got = auth_token_role_get(tokens(rq), req_param(rq, "role_name"), &r, err);

	if (got == 1)
		resp_data(rs, auth_token_role_json(&r));
	auth_token_role_clear(&r);
	if (got == 0)
		return sg_err_set(err, SG_NOT_FOUND, "%s", ""); /* Vault: a missing role is a bare 404 */
	return got < 0 ? -1 : 0;
}

/* POST creates or updates: fields absent from the body keep their stored (or default) values. */
static int h_token_role_write(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct auth_token_role r;
	const char *name = req_param(rq, "role_name");
	int rc = -1;

	(void)rs;
	if (!auth_token_role_name_ok(name)) {
		sg_err_set(err, SG_BAD_REQUEST, "invalid role name \"%.64s\"", name);
		auth_token_role_init(&r, name);
		goto out;
	}
	if (auth_token_role_get(tokens(rq), name, &r, err) < 0 || auth_token_role_apply(&r, rq->body, err) != 0 ||
	    auth_token_role_put(tokens(rq), &r, err) != 0)
		goto out;
	rc = 0;
out:
	auth_token_role_clear(&r);
	return rc;
}

static int h_token_role_delete(struct req *rq, struct resp *rs, struct sg_err *err)
{
	(void)rs;
	return auth_token_role_delete(tokens(rq), req_param(rq, "role_name"), err);
}

/* ---- lookup ---- */

static void lookup_respond(struct resp *rs, const struct auth_token *t, const char *id)
{
	json_t *d = auth_token_lookup_json(t, sg_now());

	json_object_set_new(d, "id", json_string(id != NULL ? id : ""));
	resp_data(rs, d);
}

static int h_token_lookup_self(struct req *rq, struct resp *rs, struct sg_err *err)
{
	(void)err;
	lookup_respond(rs, rq->tok, rq->client_token);
	return 0;
}

/* POST {token} (GET, or no token: the caller's own, as Vault). An unknown token is Vault's 403 "bad token". */
static int h_token_lookup(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct auth_token t;
	const char *tok = NULL;
	int got;

	if (sg_json_str(rq->body, "token", &tok, err) < 0)
		return -1;
	if (tok == NULL || *tok == '\0')
		return h_token_lookup_self(rq, rs, err);
	got = auth_token_lookup(tokens(rq), tok, &t, err);
	if (got < 0)
		return -1;
	if (got == 0)
		return sg_err_set(err, SG_PERMISSION_DENIED, "bad token");
	lookup_respond(rs, &t, tok);
	auth_token_clear(&t);
	return 0;
}

/* The token of a body "accessor" (or the :accessor capture): Vault's 400 "invalid accessor" when unknown. */
static int by_accessor(struct req *rq, struct auth_token *t, struct sg_err *err)
{
	const char *acc = req_param(rq, "accessor");
	int got;

	memset(t, 0, sizeof(*t));
	if (acc == NULL && id_field(rq, "accessor", "missing accessor", &acc, err) != 0)
		return -1;
	got = auth_token_lookup_accessor(tokens(rq), acc, t, err);
	if (got < 0)
		return -1;
	if (got == 0)
		return sg_err_set(err, SG_BAD_REQUEST, "invalid accessor");
	return 0;
}

static int h_token_lookup_accessor(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct auth_token t;

	if (by_accessor(rq, &t, err) != 0)
		return -1;
	lookup_respond(rs, &t, ""); /* Vault never returns the token for an accessor */
	auth_token_clear(&t);
	return 0;
}

/* ---- renew ---- */

static int increment_field(const struct req *rq, int64_t *out, struct sg_err *err)
{
	*out = 0;
	if (sg_json_duration(rq->body, "increment", out, err) < 0)
		return -1;
	if (*out < 0)
		return sg_err_set(err, SG_BAD_REQUEST, "increment must be positive");
	return 0;
}

static int renew_respond(struct req *rq, struct resp *rs, struct auth_token *t, const char *client_token,
                         struct sg_err *err)
{
	int64_t inc;

	if (increment_field(rq, &inc, err) != 0 || auth_token_renew(tokens(rq), t, inc, err) != 0)
		return -1;
	auth_respond(rs, t, client_token, inc);
	return 0;
}

static int h_token_renew_self(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct auth_token t;
	int rc, got;

	/* A fresh copy: the request's view stays as authenticated. */
	got = auth_token_lookup_accessor(tokens(rq), rq->tok->accessor, &t, err);
	if (got <= 0)
		return got < 0 ? -1 : sg_err_set(err, SG_BAD_REQUEST, "token not found");
	rc = renew_respond(rq, rs, &t, rq->client_token, err);
	auth_token_clear(&t);
	return rc;
}

static int h_token_renew(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct auth_token t;
	const char *tok;
	int rc, got;

	if (id_field(rq, "token", "missing token ID", &tok, err) != 0)
		return -1;
	got = auth_token_lookup(tokens(rq), tok, &t, err);
	if (got <= 0)
		return got < 0 ? -1 : sg_err_set(err, SG_BAD_REQUEST, "token not found");
	rc = renew_respond(rq, rs, &t, tok, err);
	auth_token_clear(&t);
	return rc;
}

static int h_token_renew_accessor(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct auth_token t;
	int rc;

	if (by_accessor(rq, &t, err) != 0)
		return -1;
	rc = renew_respond(rq, rs, &t, "", err);
	auth_token_clear(&t);
	return rc;
}

/* ---- revoke ---- */

static int h_token_revoke_self(struct req *rq, struct resp *rs, struct sg_err *err)
{
	(void)rs;
	return auth_token_revoke(tokens(rq), rq->tok, false, err);
}

/* An unknown token is not an error (Vault answers 204 either way). */
static int h_token_revoke(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct auth_token t;
	const char *tok;
	int rc = 0, got;

	(void)rs;
	if (id_field(rq, "token", "missing token ID", &tok, err) != 0)
		return -1;
	got = auth_token_lookup(tokens(rq), tok, &t, err);
	if (got < 0)
		return -1;
	if (got == 1)
		rc = auth_token_revoke(tokens(rq), &t, false, err);
	auth_token_clear(&t);
	return rc;
}

static int h_token_revoke_accessor(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct auth_token t;
	int rc;

	(void)rs;
	if (by_accessor(rq, &t, err) != 0)
		return -1;
	rc = auth_token_revoke(tokens(rq), &t, false, err);
	auth_token_clear(&t);
	return rc;
}

/* Revokes one token and makes its children orphans (sudo, as Vault). */
static int h_token_revoke_orphan(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct auth_token t;
	const char *tok;
	int rc, got;

	(void)rs;
	if (!caller_sudo(rq))
		return sg_err_set(err, SG_BAD_REQUEST, "root or sudo privileges required to revoke and orphan");
	if (id_field(rq, "token", "missing token ID", &tok, err) != 0)
		return -1;
	got = auth_token_lookup(tokens(rq), tok, &t, err);
	if (got <= 0)
		return got < 0 ? -1 : sg_err_set(err, SG_BAD_REQUEST, "token to revoke not found");
	rc = auth_token_revoke(tokens(rq), &t, true, err);
	auth_token_clear(&t);
	return rc;
}

/* ---- LIST accessors (sudo) ---- */

static int h_token_accessors(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct sg_strlist l = {0};
	int rc = -1;

	/* Root-protected in Vault; the router checks route.sudo as well, this holds without it. */
	if (!caller_sudo(rq))
		return sg_err_set(err, SG_PERMISSION_DENIED, "permission denied");
	if (auth_token_accessors(tokens(rq), &l, err) == 0)
		rc = resp_keys(rs, &l, err);
	sg_strlist_clear(&l);
	return rc;
}

const struct route token_routes[] = {
	{"create", HTTP_POST, h_token_create, ROUTE_AUTH_TOKEN, false},
	{"create-orphan", HTTP_POST, h_token_create_orphan, ROUTE_AUTH_TOKEN, false},
	{"create/:role_name", HTTP_POST, h_token_create_role, ROUTE_AUTH_TOKEN, false},
	{"roles", HTTP_LIST, h_token_roles_list, ROUTE_AUTH_TOKEN, false},
	{"roles/:role_name", HTTP_GET, h_token_role_read, ROUTE_AUTH_TOKEN, false},
	{"roles/:role_name", HTTP_POST | ROUTE_EXISTENCE, h_token_role_write, ROUTE_AUTH_TOKEN, false},
	{"roles/:role_name", HTTP_DELETE, h_token_role_delete, ROUTE_AUTH_TOKEN, false},
	{"lookup", HTTP_GET | HTTP_POST, h_token_lookup, ROUTE_AUTH_TOKEN, false},
	{"lookup-self", HTTP_GET | HTTP_POST, h_token_lookup_self, ROUTE_AUTH_TOKEN, false},
	{"lookup-accessor", HTTP_POST, h_token_lookup_accessor, ROUTE_AUTH_TOKEN, false},
	{"lookup-accessor/:accessor", HTTP_POST, h_token_lookup_accessor, ROUTE_AUTH_TOKEN, false},
	{"renew", HTTP_POST, h_token_renew, ROUTE_AUTH_TOKEN, false},
	{"renew-self", HTTP_POST, h_token_renew_self, ROUTE_AUTH_TOKEN, false},
	{"renew-accessor", HTTP_POST, h_token_renew_accessor, ROUTE_AUTH_TOKEN, false},
	{"revoke", HTTP_POST, h_token_revoke, ROUTE_AUTH_TOKEN, false},
	{"revoke-self", HTTP_POST, h_token_revoke_self, ROUTE_AUTH_TOKEN, false},
	{"revoke-accessor", HTTP_POST, h_token_revoke_accessor, ROUTE_AUTH_TOKEN, false},
	{"revoke-accessor/:accessor", HTTP_POST, h_token_revoke_accessor, ROUTE_AUTH_TOKEN, false},
	{"revoke-orphan", HTTP_POST, h_token_revoke_orphan, ROUTE_AUTH_TOKEN, false},
	{"accessors", HTTP_LIST, h_token_accessors, ROUTE_AUTH_TOKEN, true},
};
const size_t token_routes_n = sizeof(token_routes) / sizeof(token_routes[0]);
