/*
 * Auth method mounts (sys/auth, compat/vault-api.md 3): a registry like
 * the secrets-engine one (server/mount.c), persisted in STORE_AUTH, and the
 * login helper that turns a method's verdict into a token.
 */
#include "server/auth_mounts.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/internal.h"
#include "server/mount.h"
#include "server/router.h"

#define AUTH_MOUNT_KEY "authmount/"
#define AUTH_TOKEN_MOUNT "token"
#define AUTH_TTL_MAX ((int64_t)100 * 365 * 86400)
#define AUTH_TYPE_MAX 64

struct auth_entry {
	struct auth_mount m; /* first: callers get &e->m, auth_mount_unref casts back */
	atomic_long refs;
};

struct auth_mounts {
	struct store *st;
	pthread_rwlock_t lock;    /* guards v/n */
	pthread_mutex_t write_mu; /* serialises enable, disable and tune */
	struct auth_entry **v;
	size_t n;
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

static struct auth_entry *entry_of(const struct auth_mount *m)
{
	return (struct auth_entry *)(void *)(uintptr_t)m;
}

static struct auth_entry *entry_new(const char *path, const char *type, const char *description, const char *id,
                                    const char *accessor, int64_t dttl, int64_t mttl, int64_t created)
{
	struct auth_entry *e = sg_xcalloc(1, sizeof(*e));

	e->m.path = sg_xstrdup(path);
	e->m.type = sg_xstrdup(type);
	e->m.description = sg_xstrdup(description != NULL ? description : "");
	snprintf(e->m.id, sizeof(e->m.id), "%s", id);
	snprintf(e->m.accessor, sizeof(e->m.accessor), "%s", accessor);
	snprintf(e->m.prefix, sizeof(e->m.prefix), "m/%s/", id);
	e->m.default_lease_ttl = dttl;
	e->m.max_lease_ttl = mttl;
	e->m.created = created;
	atomic_init(&e->refs, 1);
	return e;
}

static void entry_free(struct auth_entry *e)
{
	if (e == NULL)
		return;
	free(e->m.path);
	free(e->m.type);
	free(e->m.description);
	free(e);
}

static void entry_ref(struct auth_entry *e)
{
	atomic_fetch_add(&e->refs, 1);
}

void auth_mount_unref(const struct auth_mount *m)
{
	struct auth_entry *e;

	if (m == NULL)
		return;
	e = entry_of(m);
	if (atomic_fetch_sub(&e->refs, 1) == 1)
		entry_free(e);
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

/* ---- Records ---- */

static char *record_key(const char *path)
{
	return sg_xasprintf(AUTH_MOUNT_KEY "%s", path);
}

static char *record_encode(const struct auth_entry *e)
{
	json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "path", e->m.path, "type", e->m.type,
	                      "description", e->m.description, "uuid", e->m.id, "accessor", e->m.accessor,
	                      "default_lease_ttl", (json_int_t)e->m.default_lease_ttl, "max_lease_ttl",
	                      (json_int_t)e->m.max_lease_ttl, "created", (json_int_t)e->m.created);
	char *s;

	if (j == NULL)
		sg_die("auth mount record encoding failed");
	s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (s == NULL)
		sg_die("out of memory");
	return s;
}

static struct auth_entry *record_parse(const char *key, size_t klen, const void *val, size_t vlen,
                                       struct sg_err *err)
{
	size_t plen = strlen(AUTH_MOUNT_KEY);
	json_t *j = NULL;
	const char *path, *type, *desc, *id, *acc;
	json_int_t dttl, mttl, created;
	struct auth_entry *e = NULL;

	if (vlen > AUTH_MOUNT_RECORD_MAX || klen <= plen)
		goto bad;
	j = json_loadb(val, vlen, 0, NULL);
	if (j == NULL || json_unpack(j, "{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "path", &path, "type", &type,
	                             "description", &desc, "uuid", &id, "accessor", &acc, "default_lease_ttl",
	                             &dttl, "max_lease_ttl", &mttl, "created", &created) != 0)
		goto bad;
	if (strlen(path) != klen - plen || memcmp(path, key + plen, klen - plen) != 0 || strlen(id) != 36 ||
	    strlen(acc) >= sizeof(e->m.accessor) || dttl < 0 || mttl < 0)
		goto bad;
	e = entry_new(path, type, desc, id, acc, dttl, mttl, created);
	json_decref(j);
	return e;
bad:
	json_decref(j);
	sg_err_set(err, SG_STORAGE, "corrupt auth mount record '%.*s'", (int)(klen > 128 ? 128 : klen), key);
	return NULL;
}

static int persist(struct store *st, const struct auth_entry *e, bool is_new, struct sg_err *err)
{
	struct store_batch *b = store_batch_new();
	char *key = record_key(e->m.path), *rec = record_encode(e);
	int rc;

	if (is_new)
		store_batch_put_new(b, STORE_AUTH, key, strlen(key), rec, strlen(rec));
	else
		store_batch_put(b, STORE_AUTH, key, strlen(key), rec, strlen(rec));
	rc = store_commit(st, b, err);
	store_batch_free(b);
	free(rec);
	free(key);
	return rc;
}

static void accessor_make(const char *type, char *out, size_t cap)
{
	unsigned char r[4];

	if (RAND_bytes(r, sizeof(r)) != 1)
		sg_die("RAND_bytes failed");
	snprintf(out, cap, "auth_%s_%02x%02x%02x%02x", type, r[0], r[1], r[2], r[3]);
}

/* ---- Table ---- */

struct load_ctx {
	struct auth_mounts *t;
	struct sg_err *err;
};

static int load_cb(void *arg, const char *key, size_t klen, const void *val, size_t vlen)
{
	struct load_ctx *lc = arg;
	struct auth_entry *e;

	if (lc->t->n >= AUTH_MOUNT_MAX) {
		sg_err_set(lc->err, SG_STORAGE, "more than %d auth mounts in the store", AUTH_MOUNT_MAX);
		return -1;
	}
	e = record_parse(key, klen, val, vlen, lc->err);
	if (e == NULL)
		return -1;
	lc->t->v = sg_xrealloc(lc->t->v, (lc->t->n + 1) * sizeof(*lc->t->v));
	lc->t->v[lc->t->n++] = e;
	return 0;
}

static long find_locked(struct auth_mounts *t, const char *path)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->v[i]->m.path, path) == 0)
			return (long)i;
	return -1;
}

int auth_mounts_new(struct store *st, struct auth_mounts **out, struct sg_err *err)
{
	struct auth_mounts *t = sg_xcalloc(1, sizeof(*t));
	struct load_ctx lc = {t, err};
	struct sg_err serr;
	int rc = -1;

	t->st = st;
	if (pthread_rwlock_init(&t->lock, NULL) != 0 || pthread_mutex_init(&t->write_mu, NULL) != 0)
		sg_die("auth mount table lock init failed");
	sg_err_init(&serr);
	if (store_scan(st, STORE_AUTH, AUTH_MOUNT_KEY, NULL, 0, load_cb, &lc, &serr) < 0) {
		if (!sg_err_isset(err))
			sg_err_set(err, serr.code != SG_OK ? serr.code : SG_STORAGE, "%s", serr.detail);
		goto out;
	}
	/* Vault's token store is always mounted at auth/token; its accessor stays stable across restarts. */
	if (find_locked(t, AUTH_TOKEN_MOUNT) < 0) {
		char id[37], acc[48];
		struct auth_entry *e;

		sg_uuid(id);
		accessor_make("token", acc, sizeof(acc));
		e = entry_new(AUTH_TOKEN_MOUNT, "token", "token based credentials", id, acc, 0, 0, sg_now());
		if (persist(st, e, false, err) != 0) {
			entry_free(e);
			goto out;
		}
		t->v = sg_xrealloc(t->v, (t->n + 1) * sizeof(*t->v));
		t->v[t->n++] = e;
	}
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
	for (size_t i = 0; i < t->n; i++)
		auth_mount_unref(&t->v[i]->m);
	free(t->v);
	pthread_rwlock_destroy(&t->lock);
	pthread_mutex_destroy(&t->write_mu);
	free(t);
}

const struct auth_mount *auth_mounts_route(struct auth_mounts *t, const char *path, const char **sub)
{
	struct auth_entry *best = NULL;
	size_t best_len = 0;
	const char *best_sub = NULL;

	pthread_rwlock_rdlock(&t->lock);
	for (size_t i = 0; i < t->n; i++) {
		const char *s;
		size_t n = router_mount_prefix(t->v[i]->m.path, path, &s);

		if (n > best_len) {
			best = t->v[i];
			best_len = n;
			best_sub = s;
		}
	}
	if (best != NULL)
		entry_ref(best);
	pthread_rwlock_unlock(&t->lock);
	if (best != NULL && sub != NULL)
		*sub = best_sub;
	return best != NULL ? &best->m : NULL;
}

const struct auth_mount *auth_mounts_get(struct auth_mounts *t, const char *path)
{
	struct auth_entry *e = NULL;
	long i;

	pthread_rwlock_rdlock(&t->lock);
	i = find_locked(t, path);
	if (i >= 0) {
		e = t->v[i];
		entry_ref(e);
	}
	pthread_rwlock_unlock(&t->lock);
	return e != NULL ? &e->m : NULL;
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

/*
 * Auth mount paths follow the secrets-engine rules (letters, digits, '_',
 * '-', '.', '/' segments) without the reserved prefixes, which name
 * top-level areas and mean nothing under auth/.
 */
static int path_check(const char *path, struct sg_err *err)
{
	size_t len = strlen(path), seg = 0;

	if (len == 0 || len > AUTH_MOUNT_PATH_MAX)
		return sg_err_set(err, SG_BAD_REQUEST, "auth mount path must be 1 to %d characters", AUTH_MOUNT_PATH_MAX);
	for (size_t i = 0; i <= len; i++) {
		char c = path[i];

		if (c == '/' || c == '\0') {
			if (seg == 0 || (seg == 1 && path[i - 1] == '.') ||
			    (seg == 2 && path[i - 1] == '.' && path[i - 2] == '.'))
				return sg_err_set(err, SG_BAD_REQUEST, "invalid auth mount path \"%s\": empty, '.' or '..' segment",
				                  path);
			seg = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
		      c == '-' || c == '.'))
			return sg_err_set(err, SG_BAD_REQUEST,
			                  "invalid auth mount path: only letters, digits, '_', '-', '.' and '/' are allowed");
		seg++;
	}
	return 0;
}

static int ttls_check(int64_t dttl, int64_t mttl, struct sg_err *err)
{
	int64_t max = mttl > 0 ? mttl : AUTH_SYSTEM_MAX_TTL;

	if (dttl > 0 && dttl > max)
		return sg_err_set(err, SG_BAD_REQUEST, "default_lease_ttl (%llds) cannot be greater than max_lease_ttl (%llds)",
		                  (long long)dttl, (long long)max);
	return 0;
}

static int auth_mounts_add(struct auth_mounts *t, const char *path, const char *type, const char *description,
                           int64_t dttl, int64_t mttl, struct sg_err *err)
{
	struct auth_entry *e = NULL;
	char id[37], acc[48];
	int rc = -1;

	if (path_check(path, err) != 0 || ttls_check(dttl, mttl, err) != 0)
		return -1;
	if (description != NULL && strlen(description) > MOUNT_DESCRIPTION_MAX)
		return sg_err_set(err, SG_BAD_REQUEST, "description is longer than %d bytes", MOUNT_DESCRIPTION_MAX);
	pthread_mutex_lock(&t->write_mu);
	/* Only write_mu holders change v: it is read here without the rwlock. */
	for (size_t i = 0; i < t->n; i++) {
		const char *q = t->v[i]->m.path, *s;

		if (router_mount_prefix(q, path, &s) > 0 || router_mount_prefix(path, q, &s) > 0) {
			sg_err_set(err, SG_BAD_REQUEST, "path is already in use at %s/", q);
			goto out;
		}
	}
	if (t->n >= AUTH_MOUNT_MAX) {
		sg_err_set(err, SG_BAD_REQUEST, "too many auth mounts (at most %d)", AUTH_MOUNT_MAX);
		goto out;
	}
	sg_uuid(id);
	accessor_make(type, acc, sizeof(acc));
	e = entry_new(path, type, description, id, acc, dttl, mttl, sg_now());
	if (persist(t->st, e, true, err) != 0) {
		if (err != NULL && err->code == SG_CONFLICT)
			err->code = SG_BAD_REQUEST;
		goto out;
	}
	pthread_rwlock_wrlock(&t->lock);
	t->v = sg_xrealloc(t->v, (t->n + 1) * sizeof(*t->v));
	t->v[t->n++] = e;
	pthread_rwlock_unlock(&t->lock);
	e = NULL;
	rc = 0;
out:
	pthread_mutex_unlock(&t->write_mu);
	entry_free(e);
	return rc;
}

static void insert_locked(struct auth_mounts *t, struct auth_entry *e)
{
	pthread_rwlock_wrlock(&t->lock);
	t->v = sg_xrealloc(t->v, (t->n + 1) * sizeof(*t->v));
	t->v[t->n++] = e;
	pthread_rwlock_unlock(&t->lock);
}

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

/*
 * Out of the registry first (no new login reaches it), then the tokens it
 * issued, then its records and its mount record in one commit.
 */
static int auth_mounts_remove(struct server *s, const char *path, struct sg_err *err)
{
	struct auth_mounts *t = s->auth_mounts;
	struct auth_entry *e = NULL;
	struct store_batch *b = NULL;
	char *key = NULL;
	long i;
	int rc = -1;

	if (strcmp(path, AUTH_TOKEN_MOUNT) == 0)
		return sg_err_set(err, SG_BAD_REQUEST, "token credential backend cannot be disabled");
	pthread_mutex_lock(&t->write_mu);
	i = find_locked(t, path);
	if (i < 0) {
		rc = 0; /* Vault: disabling an absent mount succeeds */
		goto out;
	}
	e = t->v[i];
	pthread_rwlock_wrlock(&t->lock);
	t->v[i] = t->v[t->n - 1];
	t->n--;
	pthread_rwlock_unlock(&t->lock);
	if (mount_tokens_revoke(s, path, err) != 0) {
		insert_locked(t, e);
		e = NULL;
		goto out;
	}
	b = store_batch_new();
	key = record_key(path);
	store_batch_del_prefix(b, STORE_AUTH, e->m.prefix);
	store_batch_del(b, STORE_AUTH, key, strlen(key));
	if (store_commit(t->st, b, err) != 0) {
		insert_locked(t, e);
		e = NULL;
		goto out;
	}
	rc = 0;
out:
	pthread_mutex_unlock(&t->write_mu);
	store_batch_free(b);
	free(key);
	if (e != NULL && rc == 0)
		auth_mount_unref(&e->m);
	return rc;
}

/* ---- sys/auth handlers ---- */

int h_auth_mounts_list(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct auth_mounts *t = rq->srv->auth_mounts;
	json_t *out = json_object();

	(void)err;
	pthread_rwlock_rdlock(&t->lock);
	for (size_t i = 0; i < t->n; i++) {
		char key[AUTH_MOUNT_PATH_MAX + 2];

		snprintf(key, sizeof(key), "%s/", t->v[i]->m.path);
		json_object_set_new(out, key, auth_mount_to_json(&t->v[i]->m));
	}
	pthread_rwlock_unlock(&t->lock);
	resp_data(rs, out);
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
	const char *path = req_param(rq, "path"), *type = NULL, *desc = "";
	const json_t *config;
	int64_t dttl = 0, mttl = 0;

	(void)rs;
	if (sg_json_str(rq->body, "type", &type, err) < 0 || sg_json_str(rq->body, "description", &desc, err) < 0)
		return -1;
	if (type == NULL || *type == '\0')
		return sg_err_set(err, SG_BAD_REQUEST, "field 'type' is required (e.g. \"approle\")");
	if (strcmp(type, "token") == 0)
		return sg_err_set(err, SG_BAD_REQUEST, "token credential backend cannot be instantiated");
	if (type_find(type) == NULL)
		return sg_err_set(err, SG_BAD_REQUEST, "plugin not found in the catalog: %.*s", AUTH_TYPE_MAX, type);
	if (desc == NULL)
		desc = "";
	config = json_object_get(rq->body, "config");
	if (config != NULL && !json_is_null(config)) {
		if (!json_is_object(config))
			return sg_err_set(err, SG_BAD_REQUEST, "field 'config' must be an object");
		if (mount_ttl_parse(config, "default_lease_ttl", &dttl, err) < 0 ||
		    mount_ttl_parse(config, "max_lease_ttl", &mttl, err) < 0)
			return -1;
	}
	return auth_mounts_add(rq->srv->auth_mounts, path, type, desc, dttl, mttl, err);
}

int h_auth_mount_disable(struct req *rq, struct resp *rs, struct sg_err *err)
{
	(void)rs;
	return auth_mounts_remove(rq->srv, req_param(rq, "path"), err);
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
	struct auth_entry *old, *e = NULL;
	const char *path = req_param(rq, "path"), *desc = NULL;
	int64_t dttl, mttl;
	long i;
	int rc = -1, has_d, has_m, has_desc;

	(void)rs;
	pthread_mutex_lock(&t->write_mu);
	i = find_locked(t, path);
	if (i < 0) {
		sg_err_set(err, SG_BAD_REQUEST, "cannot tune \"auth/%.*s/\": no auth method there", AUTH_MOUNT_PATH_MAX,
		           path);
		goto out;
	}
	old = t->v[i];
	dttl = old->m.default_lease_ttl;
	mttl = old->m.max_lease_ttl;
	if ((has_d = mount_ttl_parse(rq->body, "default_lease_ttl", &dttl, err)) < 0 ||
	    (has_m = mount_ttl_parse(rq->body, "max_lease_ttl", &mttl, err)) < 0 ||
	    (has_desc = sg_json_str(rq->body, "description", &desc, err)) < 0)
		goto out;
	if (ttls_check(dttl, mttl, err) != 0)
		goto out;
	if (desc != NULL && strlen(desc) > MOUNT_DESCRIPTION_MAX) {
		sg_err_set(err, SG_BAD_REQUEST, "description is longer than %d bytes", MOUNT_DESCRIPTION_MAX);
		goto out;
	}
	e = entry_new(old->m.path, old->m.type, desc != NULL ? desc : old->m.description, old->m.id, old->m.accessor,
	              dttl, mttl, old->m.created);
	if (persist(t->st, e, false, err) != 0)
		goto out;
	pthread_rwlock_wrlock(&t->lock);
	t->v[i] = e;
	pthread_rwlock_unlock(&t->lock);
	e = NULL;
	auth_mount_unref(&old->m);
	rc = 0;
out:
	pthread_mutex_unlock(&t->write_mu);
	entry_free(e);
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
