/*
 * PKI roles: LIST roles, GET|POST|PATCH|DELETE roles/:name (compat 1.2).
 * A role record is STORE_ROLES "<mount-id>/<role-name>" -> role_encode JSON,
 * the same form a read returns.
 */
#include "server/pki.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROLE_KEY_MAX (sizeof(((struct mount *)0)->id) + 1 + ROLE_NAME_MAX + 1)
#define ROLE_CACHE_SLOTS 256         /* decoded roles kept (direct-mapped by store key) */
#define ROLE_CACHE_MAX_BYTES (64u << 10) /* stored records larger than this are decoded every time */

/* The store key of a role; -1 (SG_BAD_REQUEST) when the name breaks Vault's rule. */
static int role_key(const struct req *rq, const char *name, char key[ROLE_KEY_MAX], struct sg_err *err)
{
	if (name == NULL || strlen(name) > ROLE_NAME_MAX || !role_name_valid(name))
		return sg_err_set(err, SG_BAD_REQUEST,
		                  "invalid role name: at most %d characters of [A-Za-z0-9_.-], starting and ending "
		                  "with [A-Za-z0-9_]",
		                  ROLE_NAME_MAX);
	snprintf(key, ROLE_KEY_MAX, "%s/%s", rq->mount->id, name);
	return 0;
}

/*
 * Decoded roles: issue/ and sign/ read their role on every request, and
 * parsing and decoding its JSON cost more than everything else the server
 * does per request outside the cryptography. An entry is the stored bytes
 * and their decoded role, and is used only when the bytes just read from
 * the store are the same: whoever rewrites or deletes a role (role writes,
 * mount purge, a restore), the next read sees other bytes or none, so the
 * cache is never stale and needs no invalidation hook. The store read stays
 * (an LMDB read is cheap); the JSON work goes.
 */
struct role_cache_entry {
	char key[ROLE_KEY_MAX];
	unsigned char *val;
	size_t len;
	struct role *role;
};

static struct role_cache_entry role_cache[ROLE_CACHE_SLOTS];
static pthread_mutex_t role_cache_mu = PTHREAD_MUTEX_INITIALIZER;

static size_t role_cache_slot(const char *key)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (const unsigned char *p = (const unsigned char *)key; *p != '\0'; p++)
		h = (h ^ *p) * 16777619u;
	return h % ROLE_CACHE_SLOTS;
}

/* A copy of the cached role for exactly these stored bytes, or NULL. */
static struct role *role_cache_get(const char *key, const unsigned char *val, size_t len)
{
	struct role_cache_entry *e = &role_cache[role_cache_slot(key)];
	struct role *r = NULL;

	pthread_mutex_lock(&role_cache_mu);
	if (e->role != NULL && e->len == len && strcmp(e->key, key) == 0 && memcmp(e->val, val, len) == 0)
		r = role_dup(e->role);
	pthread_mutex_unlock(&role_cache_mu);
	return r;
}

static void role_cache_put(const char *key, const unsigned char *val, size_t len, const struct role *r)
{
	struct role_cache_entry *e = &role_cache[role_cache_slot(key)];
	unsigned char *v;
	struct role *d;

	if (len > ROLE_CACHE_MAX_BYTES)
		return;
	v = sg_xmalloc(len > 0 ? len : 1);
	memcpy(v, val, len);
	d = role_dup(r);
	pthread_mutex_lock(&role_cache_mu);
	free(e->val);
	role_free(e->role);
	snprintf(e->key, sizeof(e->key), "%s", key);
	e->val = v;
	e->len = len;
	e->role = d;
	pthread_mutex_unlock(&role_cache_mu);
}

/* 1 and *out when stored, 0 when absent (or the name cannot exist), -1 on error. */
static int role_get(struct req *rq, const char *name, struct role **out, struct sg_err *err)
{
	char key[ROLE_KEY_MAX];
	unsigned char *val = NULL;
	size_t len = 0;
	json_t *doc = NULL;
	json_error_t jerr;
	int got, ret = -1;

	*out = NULL;
	if (name == NULL || strlen(name) > ROLE_NAME_MAX || !role_name_valid(name))
		return 0;
	snprintf(key, sizeof(key), "%s/%s", rq->mount->id, name);
	got = store_get(server_store(rq->srv), STORE_ROLES, key, strlen(key), &val, &len, err);
	if (got <= 0) {
		ret = got;
		goto out;
	}
	if ((*out = role_cache_get(key, val, len)) != NULL) {
		ret = 1;
		goto out;
	}
	doc = json_loadb((const char *)val, len, 0, &jerr);
	if (doc == NULL) {
		sg_err_set(err, SG_INTERNAL, "stored role '%s' is not valid JSON", name);
		goto out;
	}
	*out = role_decode(name, doc, err);
	if (*out == NULL)
		goto out;
	role_cache_put(key, val, len, *out);
	ret = 1;
out:
	json_decref(doc);
	free(val);
	return ret;
}

int pki_role_load(struct req *rq, const char *name, struct role **out, struct sg_err *err)
{
	int got = role_get(rq, name, out, err);

	if (got < 0)
		return -1;
	if (got == 0)
		return sg_err_set(err, SG_UNKNOWN_ROLE, "unknown role: %s", name != NULL ? name : "");
	return 0;
}

/*
 * Vault checks issuer_ref when a role is written and warns (it does not
 * fail) when nothing resolves it: the issuer may be imported later.
 */
static int issuer_ref_warn(struct req *rq, struct resp *rs, const struct role *r, struct sg_err *err)
{
	struct ca_issuer_info info = {0};
	struct sg_err e;
	int ret = 0;

	sg_err_init(&e);
	if (ca_issuer_get(server_ca(rq->srv), pki_mount(rq), r->issuer_ref, &info, &e) < 0) {
		if (e.code != SG_UNKNOWN_ISSUER && e.code != SG_NOT_FOUND) {
			*err = e;
			ret = -1;
		} else if (strcmp(r->issuer_ref, "default") == 0) {
			resp_warn(rs, "Issuing Certificate was set to default, but no default issuing certificate "
			              "(configurable at /config/ca) is currently set");
		} else {
			resp_warn(rs,
			          "Issuing Certificate was set to %s but no issuing certificate currently has that "
			          "name",
			          r->issuer_ref);
		}
	}
	ca_issuer_info_clear(&info);
	return ret;
}

/* Stores r and answers with its read form (Vault >= 1.12 returns the role on write). */
static int role_store(struct req *rq, struct resp *rs, const struct role *r, struct sg_err *err)
{
	char key[ROLE_KEY_MAX];
	struct store_batch *b = NULL;
	json_t *enc = NULL;
	char *val = NULL;
	int ret = -1;

	if (role_key(rq, r->name, key, err) < 0)
		goto out;
	enc = role_encode(r);
	val = json_dumps(enc, JSON_COMPACT | JSON_SORT_KEYS);
	if (val == NULL)
		sg_die("cannot encode role '%s'", r->name);
	b = store_batch_new();
	store_batch_put(b, STORE_ROLES, key, strlen(key), val, strlen(val));
	if (store_commit(server_store(rq->srv), b, err) < 0)
		goto out;
	resp_data(rs, enc);
	enc = NULL;
	ret = 0;
out:
	store_batch_free(b);
	json_decref(enc);
	free(val);
	return ret;
}

struct name_list {
	size_t prefix_len;
	json_t *keys;
};

static int collect_name(void *arg, const char *key, size_t klen, const void *val, size_t vlen)
{
	struct name_list *l = arg;

	(void)val;
	(void)vlen;
	if (klen > l->prefix_len)
		json_array_append_new(l->keys, json_stringn(key + l->prefix_len, klen - l->prefix_len));
	return 0;
}

int h_roles_list(struct req *rq, struct resp *rs, struct sg_err *err)
{
	char prefix[sizeof(((struct mount *)0)->id) + 2];
	struct name_list l;
	json_t *data;

	snprintf(prefix, sizeof(prefix), "%s/", rq->mount->id);
	l.prefix_len = strlen(prefix);
	l.keys = json_array();
	if (store_scan(server_store(rq->srv), STORE_ROLES, prefix, NULL, 0, collect_name, &l, err) < 0) {
		json_decref(l.keys);
		return -1;
	}
	/* Vault answers an empty LIST with 404. */
	if (json_array_size(l.keys) == 0) {
		json_decref(l.keys);
		return pki_not_found(err);
	}
	data = json_object();
	json_object_set_new(data, "keys", l.keys);
	resp_data(rs, data);
	return 0;
}

int h_role_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct role *r = NULL;
	int got = role_get(rq, req_param(rq, "name"), &r, err);

	if (got < 0)
		return -1;
	if (got == 0)
		return sg_err_set(err, SG_NOT_FOUND, "role not found: %s", req_param(rq, "name"));
	resp_data(rs, role_encode(r));
	role_free(r);
	return 0;
}

/* POST (and PUT) replace the whole role: fields left out revert to Vault's defaults. */
int h_role_write(struct req *rq, struct resp *rs, struct sg_err *err)
{
	const char *name = req_param(rq, "name");
	char key[ROLE_KEY_MAX];
	struct sg_strlist warnings = {0};
	struct role *r = NULL;
	int ret = -1;

	if (role_key(rq, name, key, err) < 0)
		goto out;
	r = role_new(name);
	if (role_apply_json_warn(r, rq->body, &warnings, err) < 0)
		goto out;
	if (issuer_ref_warn(rq, rs, r, err) < 0)
		goto out;
	if (role_store(rq, rs, r, err) < 0)
		goto out;
	pki_warn_all(rs, &warnings);
	ret = 0;
out:
	sg_strlist_clear(&warnings);
	role_free(r);
	return ret;
}

/*
 * PATCH merges the body into the stored role. Two concurrent PATCHes of
 * one role race (the later write wins), as they do in Vault.
 */
int h_role_patch(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct sg_strlist warnings = {0};
	struct role *r = NULL;
	int got, ret = -1;

	got = role_get(rq, req_param(rq, "name"), &r, err);
	if (got < 0)
		goto out;
	if (got == 0) {
		ret = sg_err_set(err, SG_NOT_FOUND, "role not found: %s", req_param(rq, "name"));
		goto out;
	}
	if (role_apply_json_warn(r, rq->body, &warnings, err) < 0)
		goto out;
	if (issuer_ref_warn(rq, rs, r, err) < 0)
		goto out;
	if (role_store(rq, rs, r, err) < 0)
		goto out;
	pki_warn_all(rs, &warnings);
	ret = 0;
out:
	sg_strlist_clear(&warnings);
	role_free(r);
	return ret;
}

/* 204 whether or not the role existed, as Vault. */
int h_role_delete(struct req *rq, struct resp *rs, struct sg_err *err)
{
	char key[ROLE_KEY_MAX];
	struct store_batch *b;
	int ret;

	(void)rs;
	if (role_key(rq, req_param(rq, "name"), key, err) < 0)
		return -1;
	b = store_batch_new();
	store_batch_del(b, STORE_ROLES, key, strlen(key));
	ret = store_commit(server_store(rq->srv), b, err);
	store_batch_free(b);
	return ret;
}
