#include "server/mount.h"

#include <openssl/rand.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/router.h"

#define MOUNT_TTL_MAX ((int64_t)100 * 365 * 86400)

struct mount_entry {
	struct mount m;       /* first: handlers get &e->m, mount_unref casts back */
	char accessor[32];
	int64_t created;
	atomic_long refs;
};

static const char *const reserved_prefixes[] = {"sys", "auth", "identity", "cubbyhole"};

static struct mount_entry *entry_of(const struct mount *m)
{
	return (struct mount_entry *)(void *)(uintptr_t)m;
}

static int64_t eff(int64_t ttl)
{
	return ttl > 0 ? ttl : MOUNT_SYSTEM_TTL;
}

static struct mount_entry *entry_new(const char *path, const char *type, const char *description, const char *id,
                                     const char *accessor, int64_t dttl, int64_t mttl, int64_t created)
{
	struct mount_entry *e = sg_xcalloc(1, sizeof(*e));

	e->m.path = sg_xstrdup(path);
	e->m.type = sg_xstrdup(type);
	e->m.description = sg_xstrdup(description != NULL ? description : "");
	snprintf(e->m.id, sizeof(e->m.id), "%s", id);
	snprintf(e->accessor, sizeof(e->accessor), "%s", accessor);
	e->m.default_lease_ttl = dttl;
	e->m.max_lease_ttl = mttl;
	e->m.ca.id = e->m.id;
	e->m.ca.path = e->m.path;
	e->m.ca.max_ttl = eff(mttl);
	e->m.ca.default_ttl = eff(dttl) < e->m.ca.max_ttl ? eff(dttl) : e->m.ca.max_ttl;
	e->created = created;
	atomic_init(&e->refs, 1);
	return e;
}

static void entry_free(struct mount_entry *e)
{
	if (e == NULL)
		return;
	free(e->m.path);
	free(e->m.type);
	free(e->m.description);
	free(e);
}

static void entry_ref(struct mount_entry *e)
{
	atomic_fetch_add(&e->refs, 1);
}

void mount_unref(const struct mount *m)
{
	struct mount_entry *e;

	if (m == NULL)
		return;
	e = entry_of(m);
	if (atomic_fetch_sub(&e->refs, 1) == 1)
		entry_free(e);
}

const char *mount_accessor(const struct mount *m)
{
	return entry_of(m)->accessor;
}

void mount_table_init(struct mount_table *t)
{
	memset(t, 0, sizeof(*t));
	if (pthread_rwlock_init(&t->lock, NULL) != 0 || pthread_mutex_init(&t->write_mu, NULL) != 0)
		sg_die("mount table lock init failed");
}

void mount_table_clear(struct mount_table *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->n; i++)
		mount_unref(&t->v[i]->m);
	free(t->v);
	t->v = NULL;
	t->n = 0;
	pthread_rwlock_destroy(&t->lock);
	pthread_mutex_destroy(&t->write_mu);
}

size_t mount_table_count(struct mount_table *t)
{
	size_t n;

	pthread_rwlock_rdlock(&t->lock);
	n = t->n;
	pthread_rwlock_unlock(&t->lock);
	return n;
}

/* ---- Records ---- */

static char *record_encode(const struct mount_entry *e)
{
	json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "path", e->m.path, "type", e->m.type,
	                      "description", e->m.description, "uuid", e->m.id, "accessor", e->accessor,
	                      "default_lease_ttl", (json_int_t)e->m.default_lease_ttl, "max_lease_ttl",
	                      (json_int_t)e->m.max_lease_ttl, "created", (json_int_t)e->created);
	char *s;

	if (j == NULL)
		sg_die("mount record encoding failed");
	s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (s == NULL)
		sg_die("out of memory");
	return s;
}

static struct mount_entry *record_parse(const char *key, size_t klen, const void *val, size_t vlen,
                                        struct sg_err *err)
{
	json_t *j = NULL;
	const char *path, *type, *desc, *id, *acc;
	json_int_t dttl, mttl, created;
	struct mount_entry *e = NULL;

	if (vlen > MOUNT_RECORD_MAX)
		goto bad;
	j = json_loadb(val, vlen, 0, NULL);
	if (j == NULL || json_unpack(j, "{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "path", &path, "type", &type,
	                             "description", &desc, "uuid", &id, "accessor", &acc, "default_lease_ttl",
	                             &dttl, "max_lease_ttl", &mttl, "created", &created) != 0)
		goto bad;
	if (strlen(path) != klen || memcmp(path, key, klen) != 0 || strlen(id) != 36 || strlen(acc) >= 32 ||
	    dttl < 0 || mttl < 0)
		goto bad;
	e = entry_new(path, type, desc, id, acc, dttl, mttl, created);
	json_decref(j);
	return e;
bad:
	json_decref(j);
	sg_err_set(err, SG_STORAGE, "corrupt mount record '%.*s'", (int)(klen > 128 ? 128 : klen), key);
	return NULL;
}

struct load_ctx {
	struct mount_table *t;
	struct sg_err *err;
};

static int load_cb(void *arg, const char *key, size_t klen, const void *val, size_t vlen)
{
	struct load_ctx *lc = arg;
	struct mount_entry *e;

	if (lc->t->n >= MOUNT_MAX) {
		sg_err_set(lc->err, SG_STORAGE, "more than %d mounts in the store", MOUNT_MAX);
		return -1;
	}
	e = record_parse(key, klen, val, vlen, lc->err);
	if (e == NULL)
		return -1;
	lc->t->v = sg_xrealloc(lc->t->v, (lc->t->n + 1) * sizeof(*lc->t->v));
	lc->t->v[lc->t->n++] = e;
	return 0;
}

int mount_table_load(struct mount_table *t, struct store *st, struct sg_err *err)
{
	struct load_ctx lc = {t, err};
	struct sg_err serr;

	sg_err_init(&serr);
	if (store_scan(st, STORE_MOUNTS, NULL, NULL, 0, load_cb, &lc, &serr) < 0) {
		/* The callback's error is more precise than the scan's. */
		if (!sg_err_isset(err))
			sg_err_set(err, serr.code != SG_OK ? serr.code : SG_STORAGE, "%s", serr.detail);
		return -1;
	}
	return 0;
}

/* ---- Lookup ---- */

const struct mount *mount_table_route(struct mount_table *t, const char *path, const char **sub)
{
	struct mount_entry *best = NULL;
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

static long find_locked(struct mount_table *t, const char *path)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->v[i]->m.path, path) == 0)
			return (long)i;
	return -1;
}

const struct mount *mount_table_get(struct mount_table *t, const char *path)
{
	struct mount_entry *e = NULL;
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

/* ---- Checks ---- */

int mount_path_check(const char *path, struct sg_err *err)
{
	size_t len = strlen(path), seg = 0;

	if (len == 0 || len > MOUNT_PATH_MAX)
		return sg_err_set(err, SG_BAD_REQUEST, "mount path must be 1 to %d characters", MOUNT_PATH_MAX);
	for (size_t i = 0; i <= len; i++) {
		char c = path[i];

		if (c == '/' || c == '\0') {
			if (seg == 0 || (seg == 1 && path[i - 1] == '.') ||
			    (seg == 2 && path[i - 1] == '.' && path[i - 2] == '.'))
				return sg_err_set(err, SG_BAD_REQUEST, "invalid mount path \"%s\": empty, '.' or '..' segment",
				                  path);
			seg = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
		      c == '-' || c == '.'))
			return sg_err_set(err, SG_BAD_REQUEST,
			                  "invalid mount path: only letters, digits, '_', '-', '.' and '/' are allowed");
		seg++;
	}
	for (size_t i = 0; i < sizeof(reserved_prefixes) / sizeof(reserved_prefixes[0]); i++) {
		size_t n = strlen(reserved_prefixes[i]);

		if (strncmp(path, reserved_prefixes[i], n) == 0 && (path[n] == '\0' || path[n] == '/'))
			return sg_err_set(err, SG_BAD_REQUEST, "cannot mount at \"%s/\": the \"%s/\" path is reserved",
			                  path, reserved_prefixes[i]);
	}
	return 0;
}

int mount_ttl_parse(const json_t *obj, const char *key, int64_t *out, struct sg_err *err)
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
	if (rc == 1 && *out > MOUNT_TTL_MAX)
		return sg_err_set(err, SG_BAD_REQUEST, "%s is longer than 100 years", key);
	return rc;
}

/*
 * As Vault's tune: an explicit default may not exceed the (explicit or
 * system) max. An unset default is the system default capped by the max,
 * so "max_lease_ttl=1h" alone is fine.
 */
int mount_ttls_check(int64_t default_ttl, int64_t max_ttl, struct sg_err *err)
{
	if (default_ttl > 0 && default_ttl > eff(max_ttl))
		return sg_err_set(err, SG_BAD_REQUEST, "default_lease_ttl (%llds) cannot be greater than max_lease_ttl (%llds)",
		                  (long long)default_ttl, (long long)eff(max_ttl));
	return 0;
}

/* ---- Changes ---- */

static int persist(struct store *st, const struct mount_entry *e, bool is_new, struct sg_err *err)
{
	struct store_batch *b = store_batch_new();
	char *rec = record_encode(e);
	int rc;

	if (is_new)
		store_batch_put_new(b, STORE_MOUNTS, e->m.path, strlen(e->m.path), rec, strlen(rec));
	else
		store_batch_put(b, STORE_MOUNTS, e->m.path, strlen(e->m.path), rec, strlen(rec));
	rc = store_commit(st, b, err);
	store_batch_free(b);
	free(rec);
	return rc;
}

int mount_table_add(struct mount_table *t, struct store *st, const char *path, const char *type,
                    const char *description, int64_t default_ttl, int64_t max_ttl, struct sg_err *err)
{
	struct mount_entry *e = NULL;
	char id[37], acc[32];
	unsigned char rnd[4];
	int rc = -1;

	if (mount_path_check(path, err) != 0 || mount_ttls_check(default_ttl, max_ttl, err) != 0)
		return -1;
	if (description != NULL && strlen(description) > MOUNT_DESCRIPTION_MAX)
		return sg_err_set(err, SG_BAD_REQUEST, "description is longer than %d bytes", MOUNT_DESCRIPTION_MAX);
	pthread_mutex_lock(&t->write_mu);
	/* Only write_mu holders change v, so it can be read here without the rwlock. */
	for (size_t i = 0; i < t->n; i++) {
		const char *q = t->v[i]->m.path, *s;

		if (router_mount_prefix(q, path, &s) > 0 || router_mount_prefix(path, q, &s) > 0) {
			sg_err_set(err, SG_BAD_REQUEST, "path is already in use at %s/", q);
			goto out;
		}
	}
	if (t->n >= MOUNT_MAX) {
		sg_err_set(err, SG_BAD_REQUEST, "too many mounts (at most %d)", MOUNT_MAX);
		goto out;
	}
	sg_uuid(id);
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		sg_die("RAND_bytes failed");
	snprintf(acc, sizeof(acc), "%s_%02x%02x%02x%02x", strlen(type) < 16 ? type : "mount", rnd[0], rnd[1], rnd[2],
	         rnd[3]);
	e = entry_new(path, type, description, id, acc, default_ttl, max_ttl, sg_now());
	if (persist(st, e, true, err) != 0) {
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

static void insert_locked(struct mount_table *t, struct mount_entry *e)
{
	pthread_rwlock_wrlock(&t->lock);
	t->v = sg_xrealloc(t->v, (t->n + 1) * sizeof(*t->v));
	t->v[t->n++] = e;
	pthread_rwlock_unlock(&t->lock);
}

int mount_table_remove(struct mount_table *t, struct store *st, struct ca *ca, const char *path, struct sg_err *err)
{
	struct mount_entry *e = NULL;
	struct store_batch *b = NULL;
	long i;
	int rc = -1;

	pthread_mutex_lock(&t->write_mu);
	i = find_locked(t, path);
	if (i < 0) {
		rc = 0; /* Vault: disabling an absent mount succeeds */
		goto out;
	}
	e = t->v[i];
	/* Out of the registry first, so no new request reaches the mount while its records go. */
	pthread_rwlock_wrlock(&t->lock);
	t->v[i] = t->v[t->n - 1];
	t->n--;
	pthread_rwlock_unlock(&t->lock);
	if (ca_mount_purge(ca, &e->m.ca, err) != 0) {
		insert_locked(t, e);
		e = NULL;
		goto out;
	}
	b = store_batch_new();
	store_batch_del(b, STORE_MOUNTS, path, strlen(path));
	if (store_commit(st, b, err) != 0) {
		/* The records are gone but the mount is not: keep it, empty. */
		insert_locked(t, e);
		e = NULL;
		goto out;
	}
	ca_mount_forget(ca, e->m.id);
	rc = 0;
out:
	pthread_mutex_unlock(&t->write_mu);
	store_batch_free(b);
	if (e != NULL && rc == 0)
		mount_unref(&e->m);
	return rc;
}

int mount_table_tune(struct mount_table *t, struct store *st, const char *path, const struct mount_tune *tune,
                     struct sg_err *err)
{
	struct mount_entry *old, *e = NULL;
	int64_t dttl, mttl;
	long i;
	int rc = -1;

	pthread_mutex_lock(&t->write_mu);
	i = find_locked(t, path);
	if (i < 0) {
		sg_err_set(err, SG_BAD_REQUEST, "no mount at \"%s/\"", path);
		goto out;
	}
	old = t->v[i];
	dttl = tune->has_default_ttl ? tune->default_ttl : old->m.default_lease_ttl;
	mttl = tune->has_max_ttl ? tune->max_ttl : old->m.max_lease_ttl;
	if (mount_ttls_check(dttl, mttl, err) != 0)
		goto out;
	if (tune->has_description && tune->description != NULL && strlen(tune->description) > MOUNT_DESCRIPTION_MAX) {
		sg_err_set(err, SG_BAD_REQUEST, "description is longer than %d bytes", MOUNT_DESCRIPTION_MAX);
		goto out;
	}
	e = entry_new(old->m.path, old->m.type,
	              tune->has_description && tune->description != NULL ? tune->description : old->m.description,
	              old->m.id, old->accessor, dttl, mttl, old->created);
	if (persist(st, e, false, err) != 0)
		goto out;
	pthread_rwlock_wrlock(&t->lock);
	t->v[i] = e;
	pthread_rwlock_unlock(&t->lock);
	e = NULL;
	mount_unref(&old->m);
	rc = 0;
out:
	pthread_mutex_unlock(&t->write_mu);
	entry_free(e);
	return rc;
}

/* ---- JSON views ---- */

json_t *mount_to_json(const struct mount *m)
{
	const struct mount_entry *e = entry_of(m);

	return json_pack("{s:s, s:s, s:s, s:s, s:{s:I, s:I, s:b}, s:n, s:b, s:b, s:b, s:s, s:s, s:s}", "type",
	                 m->type, "description", m->description, "accessor", e->accessor, "uuid", m->id, "config",
	                 "default_lease_ttl", (json_int_t)m->default_lease_ttl, "max_lease_ttl",
	                 (json_int_t)m->max_lease_ttl, "force_no_cache", 0, "options", "local", 0, "seal_wrap", 0,
	                 "external_entropy_access", 0, "plugin_version", "", "running_plugin_version", "",
	                 "running_sha256", "");
}

json_t *mount_table_to_json(struct mount_table *t)
{
	json_t *out = json_object();

	pthread_rwlock_rdlock(&t->lock);
	for (size_t i = 0; i < t->n; i++) {
		char key[MOUNT_PATH_MAX + 2];

		snprintf(key, sizeof(key), "%s/", t->v[i]->m.path);
		json_object_set_new(out, key, mount_to_json(&t->v[i]->m));
	}
	pthread_rwlock_unlock(&t->lock);
	return out;
}
