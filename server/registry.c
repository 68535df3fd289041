#include "server/registry.h"

#include <openssl/rand.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/router.h"

struct reg_entry {
	atomic_long refs;
	struct mount_rec rec;
	max_align_t obj[]; /* the kind's public object, kind->obj_size bytes */
};

static struct reg_entry *entry_of(const void *obj)
{
	return (struct reg_entry *)(void *)((uintptr_t)obj - offsetof(struct reg_entry, obj));
}

static int64_t eff(int64_t ttl)
{
	return ttl > 0 ? ttl : REGISTRY_SYSTEM_TTL;
}

static struct reg_entry *entry_new(const struct registry_kind *k, const struct mount_rec *r)
{
	struct reg_entry *e = sg_xcalloc(1, sizeof(*e) + k->obj_size);

	e->rec = *r;
	e->rec.path = sg_xstrdup(r->path);
	e->rec.type = sg_xstrdup(r->type);
	e->rec.description = sg_xstrdup(r->description != NULL ? r->description : "");
	atomic_init(&e->refs, 1);
	k->fill(e->obj, &e->rec);
	return e;
}

static void entry_free(struct reg_entry *e)
{
	if (e == NULL)
		return;
	free(e->rec.path);
	free(e->rec.type);
	free(e->rec.description);
	free(e);
}

const struct mount_rec *registry_rec(const void *obj)
{
	return &entry_of(obj)->rec;
}

void registry_unref(const void *obj)
{
	struct reg_entry *e;

	if (obj == NULL)
		return;
	e = entry_of(obj);
	if (atomic_fetch_sub(&e->refs, 1) == 1)
		entry_free(e);
}

void registry_init(struct registry *r, const struct registry_kind *kind)
{
	memset(r, 0, sizeof(*r));
	r->kind = kind;
	if (pthread_rwlock_init(&r->lock, NULL) != 0 || pthread_mutex_init(&r->write_mu, NULL) != 0)
		sg_die("registry lock init failed");
}

void registry_clear(struct registry *r)
{
	if (r == NULL || r->kind == NULL)
		return;
	for (size_t i = 0; i < r->n; i++)
		registry_unref(r->v[i]->obj);
	free(r->v);
	r->v = NULL;
	r->n = 0;
	pthread_rwlock_destroy(&r->lock);
	pthread_mutex_destroy(&r->write_mu);
	r->kind = NULL;
}

size_t registry_count(struct registry *r)
{
	size_t n;

	pthread_rwlock_rdlock(&r->lock);
	n = r->n;
	pthread_rwlock_unlock(&r->lock);
	return n;
}

/* ---- Records ---- */

static char *record_key(const struct registry_kind *k, const char *path)
{
	return sg_xasprintf("%s%s", k->key_prefix, path);
}

static char *record_encode(const struct mount_rec *r)
{
	json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "path", r->path, "type", r->type,
	                      "description", r->description, "uuid", r->id, "accessor", r->accessor,
	                      "default_lease_ttl", (json_int_t)r->default_lease_ttl, "max_lease_ttl",
	                      (json_int_t)r->max_lease_ttl, "created", (json_int_t)r->created);
	char *s;

	if (j == NULL)
		sg_die("mount record encoding failed");
	s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (s == NULL)
		sg_die("out of memory");
	return s;
}

static struct reg_entry *record_parse(const struct registry_kind *k, const char *key, size_t klen, const void *val,
                                      size_t vlen, struct sg_err *err)
{
	size_t plen = strlen(k->key_prefix);
	json_t *j = NULL;
	const char *path, *type, *desc, *id, *acc;
	json_int_t dttl, mttl, created;
	struct mount_rec r;
	struct reg_entry *e;

	if (vlen > REGISTRY_RECORD_MAX || klen <= plen)
		goto bad;
	j = json_loadb(val, vlen, 0, NULL);
	if (j == NULL || json_unpack(j, "{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "path", &path, "type", &type,
	                             "description", &desc, "uuid", &id, "accessor", &acc, "default_lease_ttl",
	                             &dttl, "max_lease_ttl", &mttl, "created", &created) != 0)
		goto bad;
	if (strlen(path) != klen - plen || memcmp(path, key + plen, klen - plen) != 0 || strlen(id) != 36 ||
	    strlen(acc) >= sizeof(r.accessor) || dttl < 0 || mttl < 0)
		goto bad;
	memset(&r, 0, sizeof(r));
	r.path = (char *)(uintptr_t)path;
	r.type = (char *)(uintptr_t)type;
	r.description = (char *)(uintptr_t)desc;
	snprintf(r.id, sizeof(r.id), "%s", id);
	snprintf(r.accessor, sizeof(r.accessor), "%s", acc);
	r.default_lease_ttl = dttl;
	r.max_lease_ttl = mttl;
	r.created = created;
	e = entry_new(k, &r);
	json_decref(j);
	return e;
bad:
	json_decref(j);
	sg_err_set(err, SG_STORAGE, "corrupt %s record '%.*s'", k->noun, (int)(klen > 128 ? 128 : klen), key);
	return NULL;
}

static int persist(const struct registry_kind *k, struct store *st, const struct mount_rec *r, bool is_new,
                   struct sg_err *err)
{
	struct store_batch *b = store_batch_new();
	char *key = record_key(k, r->path), *rec = record_encode(r);
	int rc;

	if (is_new)
		store_batch_put_new(b, k->table, key, strlen(key), rec, strlen(rec));
	else
		store_batch_put(b, k->table, key, strlen(key), rec, strlen(rec));
	rc = store_commit(st, b, err);
	store_batch_free(b);
	free(rec);
	free(key);
	return rc;
}

struct load_ctx {
	struct registry *r;
	struct sg_err *err;
};

static int load_cb(void *arg, const char *key, size_t klen, const void *val, size_t vlen)
{
	struct load_ctx *lc = arg;
	struct reg_entry *e;

	if (lc->r->n >= lc->r->kind->max) {
		sg_err_set(lc->err, SG_STORAGE, "more than %zu %ss in the store", lc->r->kind->max, lc->r->kind->noun);
		return -1;
	}
	e = record_parse(lc->r->kind, key, klen, val, vlen, lc->err);
	if (e == NULL)
		return -1;
	lc->r->v = sg_xrealloc(lc->r->v, (lc->r->n + 1) * sizeof(*lc->r->v));
	lc->r->v[lc->r->n++] = e;
	return 0;
}

int registry_load(struct registry *r, struct store *st, struct sg_err *err)
{
	struct load_ctx lc = {r, err};
	const char *pfx = r->kind->key_prefix;
	struct sg_err serr;

	sg_err_init(&serr);
	if (store_scan(st, r->kind->table, *pfx != '\0' ? pfx : NULL, NULL, 0, load_cb, &lc, &serr) < 0) {
		/* The callback's error is more precise than the scan's. */
		if (!sg_err_isset(err))
			sg_err_set(err, serr.code != SG_OK ? serr.code : SG_STORAGE, "%s", serr.detail);
		return -1;
	}
	return 0;
}

/* ---- Lookup ---- */

const void *registry_route(struct registry *r, const char *path, const char **sub)
{
	struct reg_entry *best = NULL;
	size_t best_len = 0;
	const char *best_sub = NULL;

	pthread_rwlock_rdlock(&r->lock);
	for (size_t i = 0; i < r->n; i++) {
		const char *s;
		size_t n = router_mount_prefix(r->v[i]->rec.path, path, &s);

		if (n > best_len) {
			best = r->v[i];
			best_len = n;
			best_sub = s;
		}
	}
	if (best != NULL)
		atomic_fetch_add(&best->refs, 1);
	pthread_rwlock_unlock(&r->lock);
	if (best != NULL && sub != NULL)
		*sub = best_sub;
	return best != NULL ? (const void *)best->obj : NULL;
}

static long find_locked(struct registry *r, const char *path)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->v[i]->rec.path, path) == 0)
			return (long)i;
	return -1;
}

const void *registry_get(struct registry *r, const char *path)
{
	struct reg_entry *e = NULL;
	long i;

	pthread_rwlock_rdlock(&r->lock);
	i = find_locked(r, path);
	if (i >= 0) {
		e = r->v[i];
		atomic_fetch_add(&e->refs, 1);
	}
	pthread_rwlock_unlock(&r->lock);
	return e != NULL ? (const void *)e->obj : NULL;
}

/* ---- Checks ---- */

int registry_path_check(const char *path, size_t max, const char *noun, struct sg_err *err)
{
	size_t len = strlen(path), seg = 0;

	if (len == 0 || len > max)
		return sg_err_set(err, SG_BAD_REQUEST, "%s path must be 1 to %zu characters", noun, max);
	for (size_t i = 0; i <= len; i++) {
		char c = path[i];

		if (c == '/' || c == '\0') {
			if (seg == 0 || (seg == 1 && path[i - 1] == '.') ||
			    (seg == 2 && path[i - 1] == '.' && path[i - 2] == '.'))
				return sg_err_set(err, SG_BAD_REQUEST, "invalid %s path \"%s\": empty, '.' or '..' segment", noun,
				                  path);
			seg = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
		      c == '-' || c == '.'))
			return sg_err_set(err, SG_BAD_REQUEST,
			                  "invalid %s path: only letters, digits, '_', '-', '.' and '/' are allowed", noun);
		seg++;
	}
	return 0;
}

/*
 * As Vault's tune: an explicit default may not exceed the (explicit or
 * system) max. An unset default is the system default capped by the max,
 * so "max_lease_ttl=1h" alone is fine.
 */
int registry_ttls_check(int64_t default_ttl, int64_t max_ttl, struct sg_err *err)
{
	if (default_ttl > 0 && default_ttl > eff(max_ttl))
		return sg_err_set(err, SG_BAD_REQUEST, "default_lease_ttl (%llds) cannot be greater than max_lease_ttl (%llds)",
		                  (long long)default_ttl, (long long)eff(max_ttl));
	return 0;
}

int registry_ttl_parse(const json_t *obj, const char *key, int64_t *out, struct sg_err *err)
{
	const json_t *v = json_object_get(obj, key);
	int rc;

	if (v == NULL || json_is_null(v))
		return 0;
	if (json_is_string(v) && strcmp(json_string_value(v), "system") == 0) {
		*out = 0;
		return 1;
	}
	rc = sg_json_duration(obj, key, out, err);
	if (rc == 1 && *out > REGISTRY_TTL_MAX)
		return sg_err_set(err, SG_BAD_REQUEST, "%s is longer than 100 years", key);
	return rc;
}

int registry_tune_parse(const json_t *body, struct mount_tune *tune, struct sg_err *err)
{
	int rc;

	memset(tune, 0, sizeof(*tune));
	if ((rc = registry_ttl_parse(body, "default_lease_ttl", &tune->default_ttl, err)) < 0)
		return -1;
	tune->has_default_ttl = rc == 1;
	if ((rc = registry_ttl_parse(body, "max_lease_ttl", &tune->max_ttl, err)) < 0)
		return -1;
	tune->has_max_ttl = rc == 1;
	if ((rc = sg_json_str(body, "description", &tune->description, err)) < 0)
		return -1;
	tune->has_description = rc == 1;
	return 0;
}

int registry_spec_parse(const json_t *body, struct mount_spec *spec, struct sg_err *err)
{
	const json_t *config;

	memset(spec, 0, sizeof(*spec));
	if (sg_json_str(body, "type", &spec->type, err) < 0 || sg_json_str(body, "description", &spec->description, err) < 0)
		return -1;
	if (spec->type == NULL || *spec->type == '\0')
		return sg_err_set(err, SG_BAD_REQUEST, "field 'type' is required");
	if (spec->description == NULL)
		spec->description = "";
	config = json_object_get(body, "config");
	if (config == NULL || json_is_null(config))
		return 0;
	if (!json_is_object(config))
		return sg_err_set(err, SG_BAD_REQUEST, "field 'config' must be an object");
	if (registry_ttl_parse(config, "default_lease_ttl", &spec->default_ttl, err) < 0 ||
	    registry_ttl_parse(config, "max_lease_ttl", &spec->max_ttl, err) < 0)
		return -1;
	return 0;
}

/* ---- Changes ---- */

static void insert(struct registry *r, struct reg_entry *e)
{
	pthread_rwlock_wrlock(&r->lock);
	r->v = sg_xrealloc(r->v, (r->n + 1) * sizeof(*r->v));
	r->v[r->n++] = e;
	pthread_rwlock_unlock(&r->lock);
}

int registry_add(struct registry *r, struct store *st, const char *path, const char *type, const char *description,
                 int64_t default_ttl, int64_t max_ttl, struct sg_err *err)
{
	const struct registry_kind *k = r->kind;
	struct reg_entry *e = NULL;
	struct mount_rec rec;
	unsigned char rnd[4];
	int rc = -1;

	if (registry_ttls_check(default_ttl, max_ttl, err) != 0)
		return -1;
	if (description != NULL && strlen(description) > REGISTRY_DESCRIPTION_MAX)
		return sg_err_set(err, SG_BAD_REQUEST, "description is longer than %d bytes", REGISTRY_DESCRIPTION_MAX);
	pthread_mutex_lock(&r->write_mu);
	/* Only write_mu holders change v, so it can be read here without the rwlock. */
	for (size_t i = 0; i < r->n; i++) {
		const char *q = r->v[i]->rec.path, *s;

		if (router_mount_prefix(q, path, &s) > 0 || router_mount_prefix(path, q, &s) > 0) {
			sg_err_set(err, SG_BAD_REQUEST, "path is already in use at %s/", q);
			goto out;
		}
	}
	if (r->n >= k->max) {
		sg_err_set(err, SG_BAD_REQUEST, "too many %ss (at most %zu)", k->noun, k->max);
		goto out;
	}
	memset(&rec, 0, sizeof(rec));
	rec.path = (char *)(uintptr_t)path;
	rec.type = (char *)(uintptr_t)type;
	rec.description = (char *)(uintptr_t)description;
	sg_uuid(rec.id);
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		sg_die("RAND_bytes failed");
	snprintf(rec.accessor, sizeof(rec.accessor), "%s%s_%02x%02x%02x%02x", k->accessor_prefix,
	         strlen(type) < 16 ? type : "mount", rnd[0], rnd[1], rnd[2], rnd[3]);
	rec.default_lease_ttl = default_ttl;
	rec.max_lease_ttl = max_ttl;
	rec.created = sg_now();
	e = entry_new(k, &rec);
	if (persist(k, st, &e->rec, true, err) != 0) {
		if (err != NULL && err->code == SG_CONFLICT)
			err->code = SG_BAD_REQUEST;
		goto out;
	}
	insert(r, e);
	e = NULL;
	rc = 0;
out:
	pthread_mutex_unlock(&r->write_mu);
	entry_free(e);
	return rc;
}

int registry_remove(struct registry *r, struct store *st, const char *path, registry_purge_fn purge, void *arg,
                    const void **removed, struct sg_err *err)
{
	struct reg_entry *e = NULL;
	struct store_batch *b = NULL;
	char *key = NULL;
	long i;
	int rc = -1;

	if (removed != NULL)
		*removed = NULL;
	pthread_mutex_lock(&r->write_mu);
	i = find_locked(r, path);
	if (i < 0) {
		rc = 0;
		goto out;
	}
	e = r->v[i];
	pthread_rwlock_wrlock(&r->lock);
	r->v[i] = r->v[r->n - 1];
	r->n--;
	pthread_rwlock_unlock(&r->lock);
	b = store_batch_new();
	key = record_key(r->kind, path);
	if (purge == NULL || purge(arg, e->obj, b, err) == 0) {
		store_batch_del(b, r->kind->table, key, strlen(key));
		rc = store_commit(st, b, err);
	}
	if (rc != 0) {
		/* Whatever purge removed is gone, but the mount is not: keep it. */
		insert(r, e);
		e = NULL;
	}
out:
	pthread_mutex_unlock(&r->write_mu);
	store_batch_free(b);
	free(key);
	if (e != NULL) {
		if (removed != NULL)
			*removed = e->obj;
		else
			registry_unref(e->obj);
	}
	return rc;
}

int registry_tune(struct registry *r, struct store *st, const char *path, const struct mount_tune *tune,
                  struct sg_err *err)
{
	struct reg_entry *old, *e = NULL;
	struct mount_rec rec;
	long i;
	int rc = -1;

	pthread_mutex_lock(&r->write_mu);
	i = find_locked(r, path);
	if (i < 0) {
		rc = 1;
		goto out;
	}
	old = r->v[i];
	rec = old->rec;
	if (tune->has_default_ttl)
		rec.default_lease_ttl = tune->default_ttl;
	if (tune->has_max_ttl)
		rec.max_lease_ttl = tune->max_ttl;
	if (tune->has_description && tune->description != NULL)
		rec.description = (char *)(uintptr_t)tune->description;
	if (registry_ttls_check(rec.default_lease_ttl, rec.max_lease_ttl, err) != 0)
		goto out;
	if (strlen(rec.description) > REGISTRY_DESCRIPTION_MAX) {
		sg_err_set(err, SG_BAD_REQUEST, "description is longer than %d bytes", REGISTRY_DESCRIPTION_MAX);
		goto out;
	}
	e = entry_new(r->kind, &rec);
	if (persist(r->kind, st, &e->rec, false, err) != 0)
		goto out;
	pthread_rwlock_wrlock(&r->lock);
	r->v[i] = e;
	pthread_rwlock_unlock(&r->lock);
	e = NULL;
	registry_unref(old->obj);
	rc = 0;
out:
	pthread_mutex_unlock(&r->write_mu);
	entry_free(e);
	return rc;
}

json_t *registry_to_json(struct registry *r, json_t *(*one)(const void *obj))
{
	json_t *out = json_object();

	pthread_rwlock_rdlock(&r->lock);
	for (size_t i = 0; i < r->n; i++) {
		char *key = sg_xasprintf("%s/", r->v[i]->rec.path);

		json_object_set_new(out, key, one(r->v[i]->obj));
		free(key);
	}
	pthread_rwlock_unlock(&r->lock);
	return out;
}
