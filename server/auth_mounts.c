/*
 * Auth method mounts (sys/auth, compat/vault-api.md 3): a registry
 * (server/registry.h) persisted in STORE_AUTH, and the login helper that
 * turns a method's verdict into a token.
 */
#include "server/auth_mounts.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/internal.h"
#include "server/registry.h"
#include "server/router.h"

#define AUTH_MOUNT_KEY "authmount/"
#define AUTH_TOKEN_MOUNT "token"
#define AUTH_TTL_MAX ((int64_t)100 * 365 * 86400)
#define AUTH_TYPE_MAX 64

struct auth_mounts {
	struct store *st;
	struct registry r;
};

/* Method types this build serves: a type is listed once its route table exists. */
struct auth_type {
	const char *name;
	const struct route *routes;
	const size_t *n;
};

static const struct auth_type auth_types[] = {
	{"token", token_routes, &token_routes_n},
	{"approle", approle_routes, &approle_routes_n},
	{"cert", cert_routes, &cert_routes_n},
	{"kubernetes", kubernetes_routes, &kubernetes_routes_n},
	{"jwt", jwt_routes, &jwt_routes_n},
	{"oidc", jwt_routes, &jwt_routes_n},
	{NULL, NULL, NULL},
};

static const struct auth_type *type_find(const char *name)
{
	for (const struct auth_type *t = auth_types; t->name != NULL; t++)
		if (strcmp(t->name, name) == 0)
			return t;
	return NULL;
}

const struct route *auth_method_routes(const char *type, size_t *n)
{
	const struct auth_type *t = type_find(type);

	if (t == NULL)
		return NULL;
	*n = *t->n;
	return t->routes;
}

/* ---- Entries ---- */

static void fill(void *obj, const struct mount_rec *r)
{
	struct auth_mount *m = obj;

	m->path = r->path;
	m->type = r->type;
	m->description = r->description;
	memcpy(m->id, r->id, sizeof(m->id));
	memcpy(m->accessor, r->accessor, sizeof(m->accessor));
	snprintf(m->prefix, sizeof(m->prefix), "m/%s/", r->id);
	m->default_lease_ttl = r->default_lease_ttl;
	m->max_lease_ttl = r->max_lease_ttl;
	m->created = r->created;
}

static const struct registry_kind auth_kind = {
	.table = STORE_AUTH,
	.key_prefix = AUTH_MOUNT_KEY,
	.accessor_prefix = "auth_",
	.noun = "auth mount",
	.max = AUTH_MOUNT_MAX,
	.obj_size = sizeof(struct auth_mount),
	.fill = fill,
};

void auth_mount_unref(const struct auth_mount *m)
{
	registry_unref(m);
}

int64_t auth_mount_max_ttl(const struct auth_mount *m)
{
	return m->max_lease_ttl > 0 ? m->max_lease_ttl : AUTH_SYSTEM_MAX_TTL;
}

int64_t auth_mount_default_ttl(const struct auth_mount *m)
{
	int64_t d = m->default_lease_ttl > 0 ? m->default_lease_ttl : AUTH_SYSTEM_MAX_TTL;
	int64_t max = auth_mount_max_ttl(m);

	return d < max ? d : max;
}

struct store *auth_req_store(const struct req *rq)
{
	return server_store(rq->srv);
}

const char *auth_req_prefix(const struct req *rq)
{
	return rq->auth_mount->prefix;
}

/* ---- Table ---- */

int auth_mounts_new(struct store *st, struct auth_mounts **out, struct sg_err *err)
{
	struct auth_mounts *t = sg_xcalloc(1, sizeof(*t));
	const struct auth_mount *tok;
	int rc = -1;

	t->st = st;
	registry_init(&t->r, &auth_kind);
	if (registry_load(&t->r, st, err) != 0)
		goto out;
	/* Vault's token store is always mounted at auth/token; its accessor stays stable across restarts. */
	tok = registry_get(&t->r, AUTH_TOKEN_MOUNT);
	if (tok == NULL &&
	    registry_add(&t->r, st, AUTH_TOKEN_MOUNT, "token", "token based credentials", 0, 0, err) != 0)
		goto out;
	registry_unref(tok);
	*out = t;
	t = NULL;
	rc = 0;
out:
	auth_mounts_free(t);
	return rc;
}

void auth_mounts_free(struct auth_mounts *t)
{
	if (t == NULL)
		return;
	registry_clear(&t->r);
	free(t);
}

const struct auth_mount *auth_mounts_route(struct auth_mounts *t, const char *path, const char **sub)
{
	return registry_route(&t->r, path, sub);
}

const struct auth_mount *auth_mounts_get(struct auth_mounts *t, const char *path)
{
	return registry_get(&t->r, path);
}

static json_t *auth_mount_to_json(const struct auth_mount *m)
{
	json_t *config = json_pack("{s:I, s:I, s:b}", "default_lease_ttl", (json_int_t)m->default_lease_ttl,
	                           "max_lease_ttl", (json_int_t)m->max_lease_ttl, "force_no_cache", 0);

	if (strcmp(m->type, "token") == 0)
		json_object_set_new(config, "token_type", json_string("default-service"));
	return json_pack("{s:s, s:s, s:s, s:s, s:o, s:n, s:b, s:b, s:b, s:s, s:s, s:s}", "type", m->type,
	                 "description", m->description, "accessor", m->accessor, "uuid", m->id, "config", config,
	                 "options", "local", 0, "seal_wrap", 0, "external_entropy_access", 0, "plugin_version", "",
	                 "running_plugin_version", "", "running_sha256", "");
}

/* ---- Changes ---- */

/* Vault revokes the tokens a disabled auth mount issued: those whose path lies under "auth/<path>/". */
static int mount_tokens_revoke(struct server *s, const char *path, struct sg_err *err)
{
	struct sg_strlist acc = {0};
	char *pfx = sg_xasprintf("auth/%s/", path);
	size_t plen = strlen(pfx);
	int rc = -1;

	if (auth_token_accessors(s->tokens, &acc, err) != 0)
		goto out;
	for (size_t i = 0; i < acc.n; i++) {
		struct auth_token t;
		int got;

		memset(&t, 0, sizeof(t));
		got = auth_token_lookup_accessor(s->tokens, acc.v[i], &t, err);
		if (got == 1 && t.path != NULL && strncmp(t.path, pfx, plen) == 0 &&
		    auth_token_revoke(s->tokens, &t, false, err) != 0)
			got = -1;
		auth_token_clear(&t);
		if (got < 0)
			goto out;
	}
	rc = 0;
out:
	sg_strlist_clear(&acc);
	free(pfx);
	return rc;
}

/* A disabled mount's tokens are revoked, and its records go in the commit that deletes its record. */
static int mount_purge(void *arg, const void *obj, struct store_batch *b, struct sg_err *err)
{
	const struct auth_mount *m = obj;

	if (mount_tokens_revoke(arg, m->path, err) != 0)
		return -1;
	store_batch_del_prefix(b, STORE_AUTH, m->prefix);
	return 0;
}

/* ---- sys/auth handlers ---- */

static json_t *one_json(const void *obj)
{
	return auth_mount_to_json(obj);
}

int h_auth_mounts_list(struct req *rq, struct resp *rs, struct sg_err *err)
{
	(void)err;
	resp_data(rs, registry_to_json(&rq->srv->auth_mounts->r, one_json));
	return 0;
}

int h_auth_mount_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	const struct auth_mount *m = auth_mounts_get(rq->srv->auth_mounts, req_param(rq, "path"));

	if (m == NULL)
		return sg_err_set(err, SG_BAD_REQUEST, "No auth engine at %.*s/", AUTH_MOUNT_PATH_MAX,
		                  req_param(rq, "path"));
	resp_data(rs, auth_mount_to_json(m));
	auth_mount_unref(m);
	return 0;
}

int h_auth_mount_enable(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct auth_mounts *t = rq->srv->auth_mounts;
	const char *path = req_param(rq, "path");
	struct mount_spec sp;

	(void)rs;
	if (registry_spec_parse(rq->body, &sp, err) != 0)
		return -1;
	if (strcmp(sp.type, "token") == 0)
		return sg_err_set(err, SG_BAD_REQUEST, "token credential backend cannot be instantiated");
	if (type_find(sp.type) == NULL)
		return sg_err_set(err, SG_BAD_REQUEST, "plugin not found in the catalog: %.*s", AUTH_TYPE_MAX, sp.type);
	/* The secrets-engine path rules without the reserved prefixes, which mean nothing under auth/. */
	if (registry_path_check(path, AUTH_MOUNT_PATH_MAX, "auth mount", err) != 0)
		return -1;
	return registry_add(&t->r, t->st, path, sp.type, sp.description, sp.default_ttl, sp.max_ttl, err);
}

int h_auth_mount_disable(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct auth_mounts *t = rq->srv->auth_mounts;
	const char *path = req_param(rq, "path");

	(void)rs;
	if (strcmp(path, AUTH_TOKEN_MOUNT) == 0)
		return sg_err_set(err, SG_BAD_REQUEST, "token credential backend cannot be disabled");
	return registry_remove(&t->r, t->st, path, mount_purge, rq->srv, NULL, err);
}

int h_auth_mount_tune_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	const struct auth_mount *m = auth_mounts_get(rq->srv->auth_mounts, req_param(rq, "path"));

	if (m == NULL)
		return sg_err_set(err, SG_BAD_REQUEST, "cannot fetch sysview for path \"auth/%.*s/\"", AUTH_MOUNT_PATH_MAX,
		                  req_param(rq, "path"));
	resp_data(rs, json_pack("{s:s, s:I, s:I, s:b}", "description", m->description, "default_lease_ttl",
	                        (json_int_t)auth_mount_default_ttl(m), "max_lease_ttl",
	                        (json_int_t)auth_mount_max_ttl(m), "force_no_cache", 0));
	auth_mount_unref(m);
	return 0;
}

int h_auth_mount_tune_write(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct auth_mounts *t = rq->srv->auth_mounts;
	const char *path = req_param(rq, "path");
	struct mount_tune tune;
	int rc;

	(void)rs;
	if (registry_tune_parse(rq->body, &tune, err) != 0)
		return -1;
	rc = registry_tune(&t->r, t->st, path, &tune, err);
	if (rc == 1)
		return sg_err_set(err, SG_BAD_REQUEST, "cannot tune \"auth/%.*s/\": no auth method there",
		                  AUTH_MOUNT_PATH_MAX, path);
	return rc;
}

/* ---- Login ---- */

/* Vault prefixes a login's display name with its mount path ('/' -> '-'), and drops a trailing '-'. */
static char *display_name_make(const char *mount_path, const char *name)
{
	char *dn = sg_xasprintf("%s-%.*s", mount_path, AUTH_DISPLAY_NAME_MAX, name != NULL ? name : "");
	size_t n = strlen(dn);

	for (size_t i = 0; i < n; i++)
		if (dn[i] == '/')
			dn[i] = '-';
	while (n > 0 && dn[n - 1] == '-')
		dn[--n] = '\0';
	return dn;
}

int auth_login_respond(struct req *rq, struct resp *rs, struct auth_token_params *p, struct sg_err *err)
{
	const struct auth_mount *am = rq->auth_mount;
	struct auth_token_params saved = *p;
	struct auth_token tok;
	char token[128] = "";
	char *path = NULL, *dn = NULL, *mount_path = NULL;
	json_t *alias = NULL;
	int64_t max;
	int rc = -1;

	memset(&tok, 0, sizeof(tok));
	if (am == NULL)
		return sg_err_set(err, SG_INTERNAL, "login outside an auth mount");
	path = sg_xasprintf("auth/%s/login", am->path);
	mount_path = sg_xasprintf("auth/%s/", am->path);
	dn = display_name_make(am->path, p->display_name);
	alias = p->alias != NULL ? json_deep_copy(p->alias) : json_object();
	if (alias == NULL || !json_is_object(alias)) {
		sg_err_set(err, SG_INTERNAL, "login alias is not an object");
		goto out;
	}
	json_object_set_new(alias, "mount_accessor", json_string(am->accessor));
	json_object_set_new(alias, "mount_path", json_string(mount_path));
	json_object_set_new(alias, "mount_type", json_string(am->type));
	if (json_object_get(alias, "metadata") == NULL)
		json_object_set_new(alias, "metadata", json_object());

	max = auth_mount_max_ttl(am);
	if (p->max_ttl <= 0 || p->max_ttl > max)
		p->max_ttl = max;
	if (p->ttl <= 0 && p->period <= 0)
		p->ttl = auth_mount_default_ttl(am);
	if (p->ttl > p->max_ttl)
		p->ttl = p->max_ttl;
	p->path = path;
	p->display_name = dn;
	p->alias = alias;
	p->orphan = true; /* compat/vault-api.md 2: tokens from logins are roots of their own tree */
	if (auth_token_create(rq->srv->tokens, p, NULL, token, sizeof(token), &tok, err) != 0)
		goto out;
	json_decref(rs->auth);
	rs->auth = auth_token_auth_json(&tok, token, sg_now());
	rc = 0;
out:
	OPENSSL_cleanse(token, sizeof(token));
	p->path = saved.path;
	p->display_name = saved.display_name;
	p->alias = saved.alias;
	p->orphan = saved.orphan;
	auth_token_clear(&tok);
	json_decref(alias);
	free(path);
	free(mount_path);
	free(dn);
	return rc;
}
