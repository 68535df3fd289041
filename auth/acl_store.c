/*
 * The ACL policy store: policies persisted in STORE_AUTH and all of them
 * held parsed in memory, so the check the router runs on every request
 * reads no storage. A write goes to disk first, then replaces the cached
 * copy (the cache is invalidated on write, never stale after it returns).
 */
#include "auth/acl.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ACL_KEY_PREFIX "policy/acl/"
#define ACL_KEY_MAX (sizeof(ACL_KEY_PREFIX) + AUTH_ACL_MAX_NAME_BYTES + 1)
#define ACL_TOKEN_POLICIES_MAX 256 /* names considered per token */

struct auth_acl_store {
	struct store *st;
	pthread_rwlock_t lock;          /* guards pols and n */
	pthread_mutex_t wlock;          /* one writer at a time: store order == cache order */
	struct auth_acl_policy **pols;  /* sorted by name */
	size_t n;
};

static void acl_key(const char *name, char key[ACL_KEY_MAX])
{
	snprintf(key, ACL_KEY_MAX, ACL_KEY_PREFIX "%s", name);
}

/* Index of name in the sorted cache, or where it would go (*found false). Caller holds lock. */
static size_t cache_find(const struct auth_acl_store *as, const char *name, bool *found)
{
	size_t lo = 0, hi = as->n;

	*found = false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(as->pols[mid]->name, name);

		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Takes p. Caller holds the write lock. */
static void cache_set(struct auth_acl_store *as, struct auth_acl_policy *p)
{
	bool found;
	size_t i = cache_find(as, p->name, &found);

	if (found) {
		auth_acl_policy_free(as->pols[i]);
		as->pols[i] = p;
		return;
	}
	as->pols = sg_xrealloc(as->pols, (as->n + 1) * sizeof(*as->pols));
	memmove(&as->pols[i + 1], &as->pols[i], (as->n - i) * sizeof(*as->pols));
	as->pols[i] = p;
	as->n++;
}

static void cache_del(struct auth_acl_store *as, const char *name)
{
	bool found;
	size_t i = cache_find(as, name, &found);

	if (!found)
		return;
	auth_acl_policy_free(as->pols[i]);
	memmove(&as->pols[i], &as->pols[i + 1], (as->n - i - 1) * sizeof(*as->pols));
	as->n--;
}

static int persist(struct auth_acl_store *as, const char *name, const char *raw, struct sg_err *err)
{
	char key[ACL_KEY_MAX];
	json_t *rec = json_pack("{s:s, s:s}", "name", name, "policy", raw);
	char *val = rec != NULL ? json_dumps(rec, JSON_COMPACT) : NULL;
	struct store_batch *b = store_batch_new();
	int rc;

	if (val == NULL)
		sg_die("out of memory");
	acl_key(name, key);
	store_batch_put(b, STORE_AUTH, key, strlen(key), val, strlen(val));
	rc = store_commit(as->st, b, err);
	store_batch_free(b);
	free(val);
	json_decref(rec);
	return rc;
}

struct load_ctx {
	struct auth_acl_store *as;
	struct sg_err *err;
};

static int load_one(void *arg, const char *key, size_t klen, const void *val, size_t vlen)
{
	struct load_ctx *lc = arg;
	json_error_t jerr;
	json_t *rec = json_loadb(val, vlen, 0, &jerr);
	const char *name = json_string_value(json_object_get(rec, "name"));
	const char *raw = json_string_value(json_object_get(rec, "policy"));
	struct auth_acl_policy *p = NULL;
	int rc = -1;

	if (name == NULL || raw == NULL) {
		sg_err_set(lc->err, SG_STORAGE, "stored policy record %.*s is damaged", (int)klen, key);
		goto out;
	}
	if (lc->as->n >= AUTH_ACL_MAX_POLICIES) {
		sg_err_set(lc->err, SG_STORAGE, "more than %d stored policies", AUTH_ACL_MAX_POLICIES);
		goto out;
	}
	if (auth_acl_policy_parse(name, raw, strlen(raw), &p, lc->err) != 0)
		goto out;
	cache_set(lc->as, p);
	rc = 0;
out:
	json_decref(rec);
	return rc;
}

int auth_acl_store_open(struct store *st, struct auth_acl_store **out, struct sg_err *err)
{
	struct auth_acl_store *as = sg_xcalloc(1, sizeof(*as));
	struct load_ctx lc = {as, err};
	struct sg_err perr;
	bool found;

	*out = NULL;
	as->st = st;
	if (pthread_rwlock_init(&as->lock, NULL) != 0 || pthread_mutex_init(&as->wlock, NULL) != 0)
		sg_die("cannot initialise the policy store locks");
	if (store_scan(st, STORE_AUTH, ACL_KEY_PREFIX, NULL, 0, load_one, &lc, err) < 0) {
		if (sg_err_isset(err) && err->code == SG_BAD_REQUEST) {
			/* A stored policy this version cannot parse: refuse to run with unknown grants. */
			sg_err_init(&perr);
			sg_err_set(&perr, SG_STORAGE, "stored policy does not parse: %s", err->detail);
			*err = perr;
		}
		auth_acl_store_free(as);
		return -1;
	}
	cache_find(as, "default", &found);
	if (!found && auth_acl_store_put(as, "default", auth_acl_default_policy, strlen(auth_acl_default_policy),
	                                 err) != 0) {
		auth_acl_store_free(as);
		return -1;
	}
	*out = as;
	return 0;
}

void auth_acl_store_free(struct auth_acl_store *as)
{
	if (as == NULL)
		return;
	for (size_t i = 0; i < as->n; i++)
		auth_acl_policy_free(as->pols[i]);
	free(as->pols);
	pthread_rwlock_destroy(&as->lock);
	pthread_mutex_destroy(&as->wlock);
	free(as);
}

int auth_acl_store_put(struct auth_acl_store *as, const char *name, const char *text, size_t len,
                       struct sg_err *err)
{
	char norm[AUTH_ACL_MAX_NAME_BYTES + 1];
	struct auth_acl_policy *p = NULL;
	bool found;
	int rc = -1;

	if (auth_acl_name_normalize(name, norm, sizeof(norm), err) != 0)
		return -1;
	if (strcmp(norm, "root") == 0)
		return sg_err_set(err, SG_BAD_REQUEST, "cannot update \"root\" policy");
	if (auth_acl_policy_parse(norm, text, len, &p, err) != 0)
		return -1;
	pthread_mutex_lock(&as->wlock);
	pthread_rwlock_rdlock(&as->lock);
	cache_find(as, norm, &found);
	pthread_rwlock_unlock(&as->lock);
	if (!found && as->n >= AUTH_ACL_MAX_POLICIES) {
		sg_err_set(err, SG_BAD_REQUEST, "too many policies: the limit is %d", AUTH_ACL_MAX_POLICIES);
		goto out;
	}
	if (persist(as, norm, p->raw, err) != 0)
		goto out;
	pthread_rwlock_wrlock(&as->lock);
	cache_set(as, p);
	p = NULL;
	pthread_rwlock_unlock(&as->lock);
	rc = 0;
out:
	pthread_mutex_unlock(&as->wlock);
	auth_acl_policy_free(p);
	return rc;
}

int auth_acl_store_delete(struct auth_acl_store *as, const char *name, struct sg_err *err)
{
	char norm[AUTH_ACL_MAX_NAME_BYTES + 1], key[ACL_KEY_MAX];
	struct store_batch *b;
	int rc;

	if (auth_acl_name_normalize(name, norm, sizeof(norm), err) != 0)
		return -1;
	if (strcmp(norm, "root") == 0)
		return sg_err_set(err, SG_BAD_REQUEST, "cannot delete \"root\" policy");
	if (strcmp(norm, "default") == 0)
		return sg_err_set(err, SG_BAD_REQUEST, "cannot delete default policy");
	acl_key(norm, key);
	b = store_batch_new();
	store_batch_del(b, STORE_AUTH, key, strlen(key));
	pthread_mutex_lock(&as->wlock);
	rc = store_commit(as->st, b, err);
	if (rc == 0) {
		pthread_rwlock_wrlock(&as->lock);
		cache_del(as, norm);
		pthread_rwlock_unlock(&as->lock);
	}
	pthread_mutex_unlock(&as->wlock);
	store_batch_free(b);
	return rc;
}

int auth_acl_store_get(struct auth_acl_store *as, const char *name, char **raw, struct sg_err *err)
{
	char norm[AUTH_ACL_MAX_NAME_BYTES + 1];
	struct sg_err ignored;
	bool found;
	size_t i;

	(void)err;
	*raw = NULL;
	sg_err_init(&ignored);
	/* A name that cannot be stored is simply absent. */
	if (auth_acl_name_normalize(name, norm, sizeof(norm), &ignored) != 0)
		return 0;
	if (strcmp(norm, "root") == 0) {
		*raw = sg_xstrdup("");
		return 1;
	}
	pthread_rwlock_rdlock(&as->lock);
	i = cache_find(as, norm, &found);
	if (found)
		*raw = sg_xstrdup(as->pols[i]->raw);
	pthread_rwlock_unlock(&as->lock);
	return found ? 1 : 0;
}

void auth_acl_store_names(struct auth_acl_store *as, struct sg_strlist *out)
{
	pthread_rwlock_rdlock(&as->lock);
	for (size_t i = 0; i < as->n; i++)
		sg_strlist_add(out, as->pols[i]->name);
	pthread_rwlock_unlock(&as->lock);
}

static bool has_root(const struct sg_strlist *policies)
{
	for (size_t i = 0; policies != NULL && i < policies->n; i++)
		if (strcmp(policies->v[i], "root") == 0)
			return true;
	return false;
}

/* The cached policies of a token's names (NULL for unknown ones). Caller holds the read lock. */
static size_t resolve(struct auth_acl_store *as, const struct sg_strlist *policies,
                      const struct auth_acl_policy **out)
{
	size_t n = 0;

	for (size_t i = 0; policies != NULL && i < policies->n && n < ACL_TOKEN_POLICIES_MAX; i++) {
		char norm[AUTH_ACL_MAX_NAME_BYTES + 1];
		struct sg_err ignored;
		bool found;
		size_t k;

		sg_err_init(&ignored);
		if (auth_acl_name_normalize(policies->v[i], norm, sizeof(norm), &ignored) != 0)
			continue;
		k = cache_find(as, norm, &found);
		if (found)
			out[n++] = as->pols[k];
	}
	return n;
}

void auth_acl_store_check(struct auth_acl_store *as, const struct sg_strlist *policies, const char *path,
                          enum auth_acl_op op, const json_t *body, struct auth_acl_decision *out)
{
	const struct auth_acl_policy *pols[ACL_TOKEN_POLICIES_MAX];
	size_t n;

	if (has_root(policies)) {
		/* The root policy can do everything, sudo included (compat 4 "Built-ins"). */
		out->allowed = out->sudo = out->matched = true;
		out->caps = AUTH_ACL_CREATE | AUTH_ACL_READ | AUTH_ACL_UPDATE | AUTH_ACL_DELETE | AUTH_ACL_LIST |
		            AUTH_ACL_SUDO | AUTH_ACL_PATCH;
		return;
	}
	pthread_rwlock_rdlock(&as->lock);
	n = resolve(as, policies, pols);
	auth_acl_evaluate(pols, n, path, op, body, out);
	pthread_rwlock_unlock(&as->lock);
}

json_t *auth_acl_store_capabilities(struct auth_acl_store *as, const struct sg_strlist *policies, const char *path)
{
	const struct auth_acl_policy *pols[ACL_TOKEN_POLICIES_MAX];
	unsigned caps;
	size_t n;

	if (has_root(policies))
		return json_pack("[s]", "root");
	pthread_rwlock_rdlock(&as->lock);
	n = resolve(as, policies, pols);
	caps = auth_acl_capabilities(pols, n, path);
	pthread_rwlock_unlock(&as->lock);
	return auth_acl_caps_json(caps);
}
