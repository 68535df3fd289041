/*
 * The token store (auth/token.h, compat/vault-api.md 3). A presented token
 * is reduced to HMAC-SHA256 under a key derived from the KEK before it
 * touches storage; the record found under that hash is then checked
 * against the hash it holds with a constant-time comparison, so neither
 * the store nor the lookup ever sees or compares the token itself.
 *
 * Locking: revocations and rewrites of existing records (renewals, use
 * counts, re-parenting) hold the tree lock for writing and re-read the
 * record under it, so a rewrite can never resurrect a token revoked a
 * moment earlier. Child creation holds it for reading, so a child cannot
 * slip in under a parent whose tree is being revoked. Orphan creation (the
 * login path) takes no lock and keeps the store's group commit.
 */
#include "auth/token.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth/tokenfields.h"

/* Unchanged from the first server/token.c: existing stores keep their root tokens. */
#define TOKEN_HKDF_INFO "sigil token hmac"
#define TOKEN_KEY_BYTES 32
#define TOKEN_STORE_KEY_MAX 192
#define TOKEN_ACCESSOR_MAX 64      /* a longer presented accessor is unknown, unread */
#define TOKEN_SWEEP_BATCH 256
#define TOKEN_REVOKE_CHUNK 500     /* token deletions per commit */
#define TOKEN_PREFIX "token/"
#define ACCESSOR_PREFIX "accessor/"
#define PARENT_PREFIX "token-parent/"
#define EXP_PREFIX "token-exp/"

struct auth_tokens {
	struct store *st;
	struct lease_mgr *leases;
	unsigned char key[TOKEN_KEY_BYTES];
	pthread_rwlock_t tree;
	pthread_mutex_t sweep_mu;
	pthread_cond_t sweep_cv;
	pthread_t sweeper;
	bool sweeper_running, stopping;
	int sweep_interval;
};

/* ---- Records ---- */

void auth_token_clear(struct auth_token *t)
{
	if (t == NULL)
		return;
	free(t->parent);
	sg_strlist_clear(&t->policies);
	json_decref(t->meta);
	free(t->display_name);
	free(t->path);
	free(t->type);
	free(t->entity_id);
	json_decref(t->alias);
	sg_strlist_clear(&t->bound_cidrs);
	OPENSSL_cleanse(t->hash, sizeof(t->hash));
	memset(t, 0, sizeof(*t));
}

bool auth_token_is_root(const struct auth_token *t)
{
	return t != NULL && sg_strlist_has(&t->policies, "root");
}

void auth_token_params_init(struct auth_token_params *p)
{
	memset(p, 0, sizeof(*p));
	p->renewable = true;
}

void auth_token_params_clear(struct auth_token_params *p)
{
	if (p == NULL)
		return;
	sg_strlist_clear(&p->policies);
	sg_strlist_clear(&p->bound_cidrs);
	memset(p, 0, sizeof(*p));
	p->renewable = true;
}

static char *record_encode(const struct auth_token *t)
{
	json_t *j = json_object();
	char *text;

	json_object_set_new(j, "hash", json_string(t->hash));
	json_object_set_new(j, "accessor", json_string(t->accessor));
	json_object_set_new(j, "parent", json_string(t->parent != NULL ? t->parent : ""));
	json_object_set_new(j, "policies", sg_strlist_to_json(&t->policies));
	json_object_set_new(j, "meta", t->meta != NULL ? json_incref(t->meta) : json_object());
	json_object_set_new(j, "display_name", json_string(t->display_name != NULL ? t->display_name : ""));
	json_object_set_new(j, "path", json_string(t->path != NULL ? t->path : ""));
	json_object_set_new(j, "type", json_string(t->type != NULL ? t->type : "service"));
	json_object_set_new(j, "entity_id", json_string(t->entity_id != NULL ? t->entity_id : ""));
	if (t->alias != NULL)
		json_object_set(j, "alias", t->alias);
	json_object_set_new(j, "bound_cidrs", sg_strlist_to_json(&t->bound_cidrs));
	json_object_set_new(j, "creation_time", json_integer(t->creation_time));
	json_object_set_new(j, "creation_ttl", json_integer(t->creation_ttl));
	json_object_set_new(j, "expire_time", json_integer(t->expire_time));
	json_object_set_new(j, "explicit_max_ttl", json_integer(t->explicit_max_ttl));
	json_object_set_new(j, "period", json_integer(t->period));
	json_object_set_new(j, "num_uses", json_integer(t->num_uses));
	json_object_set_new(j, "renewable", json_boolean(t->renewable));
	json_object_set_new(j, "max_ttl", json_integer(t->max_ttl));
	json_object_set_new(j, "last_renewal", json_integer(t->last_renewal));
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (text == NULL)
		sg_die("out of memory");
	return text;
}

static char *str_field(const json_t *j, const char *key, const char *def)
{
	const char *v = json_string_value(json_object_get(j, key));

	return sg_xstrdup(v != NULL ? v : def);
}

static void list_field(const json_t *j, const char *key, struct sg_strlist *out)
{
	const json_t *a = json_object_get(j, key);
	size_t i;
	json_t *v;

	json_array_foreach(a, i, v)
		if (json_is_string(v))
			sg_strlist_add(out, json_string_value(v));
}

/*
 * Record bytes -> struct. Records of the first server/token.c (root tokens:
 * policies, display_name, accessor, creation_time, expire_time, type) load
 * with defaults for the fields they lack; `hash` is the key they were found under.
 */
static int record_decode(const unsigned char *val, size_t len, const char *hash, struct auth_token *t,
                         struct sg_err *err)
{
	json_t *j = NULL;
	const char *acc, *h;
	int rc = -1;

	memset(t, 0, sizeof(*t));
	if (len > AUTH_TOKEN_MAX_RECORD || (j = json_loadb((const char *)val, len, 0, NULL)) == NULL ||
	    !json_is_object(j)) {
		sg_err_set(err, SG_STORAGE, "corrupt token record");
		goto out;
	}
	acc = json_string_value(json_object_get(j, "accessor"));
	h = json_string_value(json_object_get(j, "hash"));
	if (acc == NULL || strlen(acc) > AUTH_ACCESSOR_LEN || (h != NULL && strlen(h) != AUTH_TOKEN_HASH_HEX)) {
		sg_err_set(err, SG_STORAGE, "corrupt token record");
		goto out;
	}
	snprintf(t->hash, sizeof(t->hash), "%s", h != NULL ? h : hash);
	snprintf(t->accessor, sizeof(t->accessor), "%s", acc);
	t->parent = str_field(j, "parent", "");
	list_field(j, "policies", &t->policies);
	t->meta = json_object_get(j, "meta");
	t->meta = json_is_object(t->meta) ? json_deep_copy(t->meta) : json_object();
	t->display_name = str_field(j, "display_name", "");
	t->path = str_field(j, "path", "auth/token/root");
	t->type = str_field(j, "type", "service");
	t->entity_id = str_field(j, "entity_id", "");
	t->alias = json_object_get(j, "alias");
	t->alias = json_is_object(t->alias) ? json_deep_copy(t->alias) : NULL;
	list_field(j, "bound_cidrs", &t->bound_cidrs);
	t->creation_time = json_integer_value(json_object_get(j, "creation_time"));
	t->creation_ttl = json_integer_value(json_object_get(j, "creation_ttl"));
	t->expire_time = json_integer_value(json_object_get(j, "expire_time"));
	t->explicit_max_ttl = json_integer_value(json_object_get(j, "explicit_max_ttl"));
	t->period = json_integer_value(json_object_get(j, "period"));
	t->num_uses = json_integer_value(json_object_get(j, "num_uses"));
	t->renewable = json_is_true(json_object_get(j, "renewable"));
	t->max_ttl = json_integer_value(json_object_get(j, "max_ttl"));
	t->last_renewal = json_integer_value(json_object_get(j, "last_renewal"));
	t->orphan = t->parent[0] == '\0';
	rc = 0;
out:
	if (rc != 0)
		auth_token_clear(t);
	json_decref(j);
	return rc;
}

static void record_put(struct store_batch *b, const struct auth_token *t)
{
	char k[TOKEN_STORE_KEY_MAX];
	char *text = record_encode(t);

	snprintf(k, sizeof(k), TOKEN_PREFIX "%s", t->hash);
	store_batch_put(b, STORE_AUTH, k, strlen(k), text, strlen(text));
	free(text);
}

static void exp_key(char *k, size_t cap, int64_t expire, const char *accessor)
{
	snprintf(k, cap, EXP_PREFIX "%016" PRIx64 "/%s", (uint64_t)expire, accessor);
}

/* ---- Hashing ---- */

static int key_derive(const unsigned char kek[32], unsigned char key[TOKEN_KEY_BYTES], struct sg_err *err)
{
	EVP_KDF *kdf = NULL;
	EVP_KDF_CTX *kctx = NULL;
	OSSL_PARAM params[4];
	int rc = -1;

	kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	if (kdf == NULL || (kctx = EVP_KDF_CTX_new(kdf)) == NULL) {
		sg_err_ossl(err, SG_CRYPTO, "HKDF unavailable");
		goto out;
	}
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)kek, 32);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)TOKEN_HKDF_INFO,
	                                              strlen(TOKEN_HKDF_INFO));
	params[3] = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(kctx, key, TOKEN_KEY_BYTES, params) != 1) {
		sg_err_ossl(err, SG_CRYPTO, "token key derivation failed");
		goto out;
	}
	rc = 0;
out:
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	return rc;
}

static int token_hash(const struct auth_tokens *ts, const char *token, char out[AUTH_TOKEN_HASH_HEX + 1],
                      struct sg_err *err)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char mac[32];
	size_t maclen = 0;

	if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, ts->key, TOKEN_KEY_BYTES, (const unsigned char *)token,
	              strlen(token), mac, sizeof(mac), &maclen) == NULL ||
	    maclen != sizeof(mac))
		return sg_err_ossl(err, SG_CRYPTO, "token HMAC failed");
	for (size_t i = 0; i < sizeof(mac); i++) {
		out[2 * i] = hex[mac[i] >> 4];
		out[2 * i + 1] = hex[mac[i] & 15];
	}
	out[AUTH_TOKEN_HASH_HEX] = '\0';
	OPENSSL_cleanse(mac, sizeof(mac));
	return 0;
}

static bool presented_ok(const char *t)
{
	size_t n;

	if (t == NULL)
		return false;
	n = strnlen(t, AUTH_TOKEN_MAX_BYTES + 1);
	return n > 0 && n <= AUTH_TOKEN_MAX_BYTES;
}

const char *auth_token_from_headers(const char *x_vault_token, const char *authorization)
{
	if (x_vault_token != NULL && *x_vault_token != '\0')
		return presented_ok(x_vault_token) ? x_vault_token : NULL;
	if (authorization != NULL && strncasecmp(authorization, "Bearer ", 7) == 0) {
		const char *t = authorization + 7;

		while (*t == ' ')
			t++;
		return presented_ok(t) ? t : NULL;
	}
	return NULL;
}

static bool accessor_ok(const char *a)
{
	size_t n;

	if (a == NULL)
		return false;
	n = strnlen(a, TOKEN_ACCESSOR_MAX + 1);
	if (n == 0 || n > TOKEN_ACCESSOR_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = a[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' ||
		      c == '-' || c == '_'))
			return false;
	}
	return true;
}

static bool hash_ok(const char *h)
{
	if (h == NULL || strnlen(h, AUTH_TOKEN_HASH_HEX + 1) != AUTH_TOKEN_HASH_HEX)
		return false;
	for (size_t i = 0; i < AUTH_TOKEN_HASH_HEX; i++)
		if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f')))
			return false;
	return true;
}

/* ---- Loading (no expiry check: callers decide) ---- */

static int load_hash(struct auth_tokens *ts, const char *hash, struct auth_token *out, struct sg_err *err)
{
	char k[TOKEN_STORE_KEY_MAX];
	unsigned char *val = NULL;
	size_t len = 0;
	int got;

	memset(out, 0, sizeof(*out));
	snprintf(k, sizeof(k), TOKEN_PREFIX "%s", hash);
	got = store_get(ts->st, STORE_AUTH, k, strlen(k), &val, &len, err);
	if (got <= 0)
		return got;
	got = record_decode(val, len, hash, out, err) == 0 ? 1 : -1;
	free(val);
	/* The key matched; the record must name the same hash too, compared without a timing signal. */
	if (got == 1 && !sg_ct_equal(out->hash, strlen(out->hash), hash, strlen(hash))) {
		auth_token_clear(out);
		got = 0;
	}
	return got;
}

static int load_accessor(struct auth_tokens *ts, const char *accessor, struct auth_token *out, struct sg_err *err)
{
	char k[TOKEN_STORE_KEY_MAX], hash[AUTH_TOKEN_HASH_HEX + 1];
	unsigned char *val = NULL;
	size_t len = 0;
	int got;

	memset(out, 0, sizeof(*out));
	if (!accessor_ok(accessor))
		return 0;
	snprintf(k, sizeof(k), ACCESSOR_PREFIX "%s", accessor);
	got = store_get(ts->st, STORE_AUTH, k, strlen(k), &val, &len, err);
	if (got <= 0)
		return got;
	if (len != AUTH_TOKEN_HASH_HEX) {
		free(val);
		return sg_err_set(err, SG_STORAGE, "corrupt accessor record");
	}
	memcpy(hash, val, AUTH_TOKEN_HASH_HEX);
	hash[AUTH_TOKEN_HASH_HEX] = '\0';
	free(val);
	got = load_hash(ts, hash, out, err);
	if (got == 1 && strcmp(out->accessor, accessor) != 0) {
		auth_token_clear(out);
		got = 0;
	}
	return got;
}

static bool expired(const struct auth_token *t, int64_t now)
{
	return t->expire_time != 0 && t->expire_time <= now;
}

/* ---- Policies ---- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int auth_token_policies_sanitize(struct sg_strlist *l, bool add_default, struct sg_err *err)
{
	struct sg_strlist out = {0};
	bool root = false;
	int rc = -1;

	if (l->n > SG_STRLIST_MAX) {
		sg_err_set(err, SG_BAD_REQUEST, "too many policies (at most %d)", AUTH_MAX_POLICIES);
		goto out;
	}
	for (size_t i = 0; i < l->n && !root; i++) {
		const char *s = l->v[i];
		size_t n;
		char *p;

		while (*s == ' ' || *s == '\t')
			s++;
		n = strlen(s);
		while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
			n--;
		if (n == 0)
			continue;
		if (n > AUTH_POLICY_NAME_MAX) {
			sg_err_set(err, SG_BAD_REQUEST, "policy name too long (at most %d bytes)", AUTH_POLICY_NAME_MAX);
			goto out;
		}
		p = sg_xstrndup(s, n);
		for (size_t k = 0; k < n; k++) {
			unsigned char c = (unsigned char)p[k];

			if (c < 0x20 || c == 0x7f || c == '/' || c == '"' || c == '\\') {
				free(p);
				sg_err_set(err, SG_BAD_REQUEST, "invalid character in policy name");
				goto out;
			}
			if (c >= 'A' && c <= 'Z')
				p[k] = (char)(c - 'A' + 'a');
		}
		if (strcmp(p, "root") == 0) {
			/* Vault: root alone stands for everything; the others add nothing. */
			sg_strlist_clear(&out);
			root = true;
		}
		if (!sg_strlist_has(&out, p))
			sg_strlist_add(&out, p);
		free(p);
	}
	if (add_default && !root && !sg_strlist_has(&out, "default"))
		sg_strlist_add(&out, "default");
	if (out.n > AUTH_MAX_POLICIES) {
		sg_err_set(err, SG_BAD_REQUEST, "too many policies (at most %d)", AUTH_MAX_POLICIES);
		goto out;
	}
	if (out.n > 1)
		qsort(out.v, out.n, sizeof(out.v[0]), cmp_str);
	sg_strlist_clear(l);
	*l = out;
	out = (struct sg_strlist){0};
	rc = 0;
out:
	sg_strlist_clear(&out);
	return rc;
}

static void strlist_remove(struct sg_strlist *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++) {
		if (strcmp(l->v[i], s) == 0) {
			free(l->v[i]);
			memmove(&l->v[i], &l->v[i + 1], (l->n - i - 1) * sizeof(l->v[0]));
			l->n--;
			return;
		}
	}
}

/* ---- TTLs ---- */

/*
 * Vault's framework.CalculateTTL. start is the token's creation time;
 * increment 0 means "the base TTL". Returns the TTL from now, or -1 when
 * the token is already past its maximum (SG_BAD_REQUEST in err).
 */
static int64_t ttl_calc(int64_t now, int64_t start, int64_t increment, int64_t base_ttl, int64_t period,
                        int64_t max_ttl, int64_t explicit_max, bool *capped, struct sg_err *err)
{
	int64_t max = AUTH_SYSTEM_MAX_TTL, ttl, limit;

	*capped = false;
	if (max_ttl > 0 && max_ttl < max)
		max = max_ttl;
	if (explicit_max > 0 && explicit_max < max)
		max = explicit_max;
	if (period > 0) {
		ttl = (increment > 0 && increment < period) ? increment : period;
		if (explicit_max > 0) {
			limit = start + explicit_max - now;
			if (limit <= 0)
				return sg_err_set(err, SG_BAD_REQUEST, "past the max TTL, cannot renew");
			if (ttl > limit) {
				ttl = limit;
				*capped = true;
			}
		}
		return ttl;
	}
	ttl = increment > 0 ? increment : base_ttl > 0 ? base_ttl : AUTH_SYSTEM_DEFAULT_TTL;
	limit = start + max - now;
	if (limit <= 0)
		return sg_err_set(err, SG_BAD_REQUEST, "past the max TTL, cannot renew");
	if (ttl > limit) {
		ttl = limit;
		*capped = true;
	}
	return ttl;
}

/* ---- The store object ---- */

int auth_tokens_new(struct store *st, struct lease_mgr *leases, const unsigned char kek[32], struct auth_tokens **out,
                    struct sg_err *err)
{
	struct auth_tokens *ts = sg_xcalloc(1, sizeof(*ts));

	*out = NULL;
	if (key_derive(kek, ts->key, err) != 0) {
		OPENSSL_cleanse(ts->key, sizeof(ts->key));
		free(ts);
		return -1;
	}
	ts->st = st;
	ts->leases = leases;
	if (pthread_rwlock_init(&ts->tree, NULL) != 0 || pthread_mutex_init(&ts->sweep_mu, NULL) != 0 ||
	    pthread_cond_init(&ts->sweep_cv, NULL) != 0)
		sg_die("auth_tokens_new: lock initialisation failed");
	*out = ts;
	return 0;
}

void auth_tokens_free(struct auth_tokens *ts)
{
	if (ts == NULL)
		return;
	pthread_mutex_lock(&ts->sweep_mu);
	ts->stopping = true;
	pthread_cond_broadcast(&ts->sweep_cv);
	pthread_mutex_unlock(&ts->sweep_mu);
	if (ts->sweeper_running)
		pthread_join(ts->sweeper, NULL);
	pthread_rwlock_destroy(&ts->tree);
	pthread_mutex_destroy(&ts->sweep_mu);
	pthread_cond_destroy(&ts->sweep_cv);
	OPENSSL_cleanse(ts->key, sizeof(ts->key));
	free(ts);
}

static void tree_rdlock(struct auth_tokens *ts)
{
	if (pthread_rwlock_rdlock(&ts->tree) != 0)
		sg_die("token tree lock failed");
}

static void tree_wrlock(struct auth_tokens *ts)
{
	if (pthread_rwlock_wrlock(&ts->tree) != 0)
		sg_die("token tree lock failed");
}

static void tree_unlock(struct auth_tokens *ts)
{
	pthread_rwlock_unlock(&ts->tree);
}

/* ---- Creation ---- */

static int meta_check(const json_t *meta, struct sg_err *err)
{
	const char *k;
	json_t *v;

	if (meta == NULL || json_is_null(meta))
		return 0;
	if (!json_is_object(meta))
		return sg_err_set(err, SG_BAD_REQUEST, "meta must be a map of strings to strings");
	if (json_object_size(meta) > AUTH_META_MAX)
		return sg_err_set(err, SG_BAD_REQUEST, "too many meta keys (at most %d)", AUTH_META_MAX);
	json_object_foreach((json_t *)meta, k, v) {
		if (*k == '\0' || strlen(k) > AUTH_META_KEY_MAX)
			return sg_err_set(err, SG_BAD_REQUEST, "meta keys must be 1 to %d bytes", AUTH_META_KEY_MAX);
		if (!json_is_string(v))
			return sg_err_set(err, SG_BAD_REQUEST, "meta value of \"%.64s\" must be a string", k);
		if (json_string_length(v) > AUTH_META_VALUE_MAX)
			return sg_err_set(err, SG_BAD_REQUEST, "meta value of \"%.64s\" is longer than %d bytes", k,
			                  AUTH_META_VALUE_MAX);
	}
	return 0;
}

static bool strlist_subset(const struct sg_strlist *sub, const struct sg_strlist *super)
{
	for (size_t i = 0; i < sub->n; i++)
		if (!sg_strlist_has(super, sub->v[i]))
			return false;
	return true;
}

/* The final policy set of a new token (Vault's handleCreateCommon without roles). */
static int policies_resolve(const struct auth_token_params *p, const struct auth_token *parent,
                            struct sg_strlist *out, struct sg_err *err)
{
	struct sg_strlist req = {0}, par = {0};
	bool sudo = p->sudo || auth_token_is_root(parent), add_default;
	int rc = -1;

	sg_strlist_copy(&req, &p->policies);
	if (auth_token_policies_sanitize(&req, false, err) != 0)
		goto out;
	if (p->policies_final) {
		add_default = false;
	} else if (parent == NULL) {
		add_default = !p->no_default_policy;
	} else if (req.n == 0) {
		/* No policies asked for: the parent's, and "default" only if the parent has it. */
		sg_strlist_copy(&req, &parent->policies);
		if (auth_token_policies_sanitize(&req, false, err) != 0)
			goto out;
		add_default = false;
	} else if (!sudo) {
		sg_strlist_copy(&par, &parent->policies);
		if (auth_token_policies_sanitize(&par, false, err) != 0)
			goto out;
		if (!strlist_subset(&req, &par)) {
			sg_err_set(err, SG_BAD_REQUEST, "child policies must be subset of parent");
			goto out;
		}
		add_default = !p->no_default_policy && sg_strlist_has(&parent->policies, "default");
	} else {
		add_default = !p->no_default_policy;
	}
	if (auth_token_policies_sanitize(&req, add_default, err) != 0)
		goto out;
	if (p->no_default_policy)
		strlist_remove(&req, "default");
	if (sg_strlist_has(&req, "root")) {
		if (parent == NULL) {
			sg_err_set(err, SG_BAD_REQUEST, "auth methods cannot create root tokens");
			goto out;
		}
		if (!auth_token_is_root(parent)) {
			sg_err_set(err, SG_BAD_REQUEST, "root tokens may not be created without parent token being root");
			goto out;
		}
	}
	sg_strlist_clear(out);
	*out = req;
	req = (struct sg_strlist){0};
	rc = 0;
out:
	sg_strlist_clear(&req);
	sg_strlist_clear(&par);
	return rc;
}

void auth_token_generate(char *out, size_t cap)
{
	char r[AUTH_TOKEN_RANDOM_LEN + 1];

	if (cap < sizeof(r) + 4)
		sg_die("auth_token_generate: buffer too small");
	sg_random_b62(r, AUTH_TOKEN_RANDOM_LEN);
	snprintf(out, cap, "hvs.%s", r);
	OPENSSL_cleanse(r, sizeof(r));
}

/* Adds a new token's records to b. */
static void token_batch_create(struct store_batch *b, const struct auth_token *t)
{
	char k[TOKEN_STORE_KEY_MAX];
	char *text = record_encode(t);

	snprintf(k, sizeof(k), TOKEN_PREFIX "%s", t->hash);
	store_batch_put_new(b, STORE_AUTH, k, strlen(k), text, strlen(text));
	free(text);
	snprintf(k, sizeof(k), ACCESSOR_PREFIX "%s", t->accessor);
	store_batch_put_new(b, STORE_AUTH, k, strlen(k), t->hash, strlen(t->hash));
	if (t->parent != NULL && t->parent[0] != '\0') {
		snprintf(k, sizeof(k), PARENT_PREFIX "%s/%s", t->parent, t->accessor);
		store_batch_put(b, STORE_AUTH, k, strlen(k), "", 0);
	}
	if (t->expire_time != 0) {
		exp_key(k, sizeof(k), t->expire_time, t->accessor);
		store_batch_put(b, STORE_INDEX, k, strlen(k), "", 0);
	}
}

int auth_token_create(struct auth_tokens *ts, const struct auth_token_params *p, const struct auth_token *parent,
                      char *token_out, size_t cap, struct auth_token *out, struct sg_err *err)
{
	struct auth_token t, live;
	struct store_batch *b = NULL;
	char tok[AUTH_TOKEN_STR_MAX];
	int64_t now = sg_now(), ttl;
	bool linked = parent != NULL && !p->orphan, locked = false, capped;
	int rc = -1, got;

	memset(&t, 0, sizeof(t));
	memset(&live, 0, sizeof(live));
	tok[0] = '\0';
	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (token_out == NULL || cap < AUTH_TOKEN_STR_MAX) {
		sg_err_set(err, SG_INTERNAL, "token buffer too small");
		goto out;
	}
	token_out[0] = '\0';
	if (p->num_uses < 0) {
		sg_err_set(err, SG_BAD_REQUEST, "number of uses cannot be negative");
		goto out;
	}
	if (p->ttl < 0 || p->explicit_max_ttl < 0 || p->period < 0 || p->max_ttl < 0) {
		sg_err_set(err, SG_BAD_REQUEST, "%s must be positive",
		           p->ttl < 0 ? "ttl" : p->explicit_max_ttl < 0 ? "explicit_max_ttl" : p->period < 0 ? "period"
		                                                                                             : "max_ttl");
		goto out;
	}
	/* Vault: a use-limited token could escape its count through children. */
	if (parent != NULL && parent->num_uses != 0) {
		sg_err_set(err, SG_BAD_REQUEST, "restricted use token cannot generate child tokens");
		goto out;
	}
	if (meta_check(p->meta, err) != 0 || auth_cidrs_check(&p->bound_cidrs, "bound_cidrs", err) != 0)
		goto out;
	if (p->display_name != NULL && strlen(p->display_name) > AUTH_DISPLAY_NAME_MAX) {
		sg_err_set(err, SG_BAD_REQUEST, "display_name is longer than %d bytes", AUTH_DISPLAY_NAME_MAX);
		goto out;
	}
	if (policies_resolve(p, parent, &t.policies, err) != 0)
		goto out;

	t.parent = sg_xstrdup(linked ? parent->accessor : "");
	t.orphan = !linked;
	t.meta = json_is_object(p->meta) ? json_deep_copy(p->meta) : json_object();
	t.display_name = sg_xstrdup(p->display_name != NULL && *p->display_name != '\0' ? p->display_name : "token");
	t.path = sg_xstrdup(p->path != NULL && *p->path != '\0' ? p->path : "auth/token/create");
	t.type = sg_xstrdup("service");
	t.entity_id = sg_xstrdup(p->entity_id != NULL                           ? p->entity_id
	                         : linked && parent->entity_id != NULL ? parent->entity_id
	                                                               : "");
	t.alias = json_is_object(p->alias) ? json_deep_copy(p->alias) : NULL;
	sg_strlist_copy(&t.bound_cidrs, p->bound_cidrs.n > 0 || !linked ? &p->bound_cidrs : &parent->bound_cidrs);
	t.creation_time = now;
	t.explicit_max_ttl = p->explicit_max_ttl;
	t.period = p->period;
	t.max_ttl = p->max_ttl;
	t.num_uses = p->num_uses;
	t.renewable = p->renewable;

	/* Vault: a TTL is computed unless this is a root token asking for none. */
	ttl = p->ttl;
	if (p->period > 0 || p->ttl > 0 || !sg_strlist_has(&t.policies, "root")) {
		ttl = ttl_calc(now, now, 0, p->ttl, p->period, p->max_ttl, p->explicit_max_ttl, &capped, err);
		if (ttl < 0)
			goto out;
	}
	if (ttl == 0 && p->explicit_max_ttl > 0)
		ttl = p->explicit_max_ttl;
	if (ttl == 0) {
		if (parent != NULL && parent->expire_time != 0) {
			sg_err_set(err, SG_BAD_REQUEST, "expiring root tokens cannot create non-expiring root tokens");
			goto out;
		}
		/* A token that never expires is neither renewable nor CIDR-bound (Vault). */
		t.renewable = false;
		sg_strlist_clear(&t.bound_cidrs);
	}
	t.creation_ttl = ttl;
	t.expire_time = ttl > 0 ? now + ttl : 0;

	auth_token_generate(tok, sizeof(tok));
	sg_random_b62(t.accessor, AUTH_ACCESSOR_LEN);
	if (token_hash(ts, tok, t.hash, err) != 0)
		goto out;
	b = store_batch_new();
	token_batch_create(b, &t);
	if (linked) {
		/* The parent must still be alive when the child commits: revocation holds the lock for writing. */
		tree_rdlock(ts);
		locked = true;
		got = load_accessor(ts, parent->accessor, &live, err);
		if (got < 0)
			goto out;
		if (got == 0 || expired(&live, sg_now())) {
			sg_err_set(err, SG_BAD_REQUEST, "parent token lookup failed: no parent found");
			goto out;
		}
	}
	if (store_commit(ts->st, b, err) != 0)
		goto out;
	snprintf(token_out, cap, "%s", tok);
	if (out != NULL) {
		*out = t;
		memset(&t, 0, sizeof(t));
	}
	rc = 0;
out:
	if (locked)
		tree_unlock(ts);
	store_batch_free(b);
	auth_token_clear(&live);
	auth_token_clear(&t);
	OPENSSL_cleanse(tok, sizeof(tok));
	return rc;
}

static bool root_id_ok(const char *t)
{
	size_t n;

	if (t == NULL)
		return false;
	n = strnlen(t, AUTH_TOKEN_MAX_BYTES + 1);
	if (n == 0 || n > AUTH_TOKEN_MAX_BYTES)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f)
			return false;
	return true;
}

int auth_token_create_root(struct auth_tokens *ts, const char *token, struct auth_token *out, struct sg_err *err)
{
	struct auth_token t;
	char hash[AUTH_TOKEN_HASH_HEX + 1];
	struct store_batch *b = NULL;
	int rc = -1, got;

	memset(&t, 0, sizeof(t));
	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (!root_id_ok(token))
		return sg_err_set(err, SG_BAD_REQUEST, "a root token must be 1 to %d printable characters without spaces",
		                  AUTH_TOKEN_MAX_BYTES);
	if (token_hash(ts, token, hash, err) != 0)
		goto out;
	got = load_hash(ts, hash, &t, err);
	if (got < 0)
		goto out;
	if (got == 1) {
		/* The same id again (a dev restart): keep the record and its accessor. */
		if (!auth_token_is_root(&t) || expired(&t, sg_now())) {
			sg_err_set(err, SG_CONFLICT, "a token with this id exists and is not a live root token");
			goto out;
		}
	} else {
		memcpy(t.hash, hash, sizeof(t.hash));
		sg_strlist_add(&t.policies, "root");
		sg_random_b62(t.accessor, AUTH_ACCESSOR_LEN);
		t.parent = sg_xstrdup("");
		t.orphan = true;
		t.meta = json_object();
		t.display_name = sg_xstrdup("root");
		t.path = sg_xstrdup("auth/token/root");
		t.type = sg_xstrdup("service");
		t.entity_id = sg_xstrdup("");
		t.creation_time = sg_now();
		b = store_batch_new();
		token_batch_create(b, &t);
		if (store_commit(ts->st, b, err) != 0)
			goto out;
	}
	if (out != NULL) {
		*out = t;
		memset(&t, 0, sizeof(t));
	}
	rc = 0;
out:
	store_batch_free(b);
	auth_token_clear(&t);
	OPENSSL_cleanse(hash, sizeof(hash));
	return rc;
}

/* ---- Revocation ---- */

struct child_scan {
	struct sg_strlist *out;
	size_t prefix_len;
};

static int child_cb(void *arg, const char *key, size_t klen, const void *val, size_t vlen)
{
	struct child_scan *cs = arg;

	(void)val;
	(void)vlen;
	if (klen > cs->prefix_len)
		sg_strlist_addn(cs->out, key + cs->prefix_len, klen - cs->prefix_len);
	return 0;
}

static int children_list(struct auth_tokens *ts, const char *accessor, struct sg_strlist *out, struct sg_err *err)
{
	char prefix[TOKEN_STORE_KEY_MAX];
	struct child_scan cs;

	snprintf(prefix, sizeof(prefix), PARENT_PREFIX "%s/", accessor);
	cs.out = out;
	cs.prefix_len = strlen(prefix);
	return store_scan(ts->st, STORE_AUTH, prefix, NULL, 0, child_cb, &cs, err) < 0 ? -1 : 0;
}

/* Adds the deletion of every record of t to b. */
static void token_batch_delete(struct store_batch *b, const struct auth_token *t)
{
	char k[TOKEN_STORE_KEY_MAX];

	snprintf(k, sizeof(k), TOKEN_PREFIX "%s", t->hash);
	store_batch_del(b, STORE_AUTH, k, strlen(k));
	snprintf(k, sizeof(k), ACCESSOR_PREFIX "%s", t->accessor);
	store_batch_del(b, STORE_AUTH, k, strlen(k));
	if (t->parent != NULL && t->parent[0] != '\0') {
		snprintf(k, sizeof(k), PARENT_PREFIX "%s/%s", t->parent, t->accessor);
		store_batch_del(b, STORE_AUTH, k, strlen(k));
	}
	snprintf(k, sizeof(k), PARENT_PREFIX "%s/", t->accessor);
	store_batch_del_prefix(b, STORE_AUTH, k);
	if (t->expire_time != 0) {
		exp_key(k, sizeof(k), t->expire_time, t->accessor);
		store_batch_del(b, STORE_INDEX, k, strlen(k));
	}
}

static int leases_revoke(struct auth_tokens *ts, const char *accessor, struct sg_err *err)
{
	uint64_t n = 0;

	if (ts->leases == NULL)
		return 0;
	return lease_revoke_owner(ts->leases, accessor, &n, err);
}

/*
 * Revokes the token of accessor (tree lock held for writing). Descendants
 * go first and each token's leases before its records, so a crash half-way
 * leaves live tokens with fewer leases, never live leases or live children
 * whose owner is gone.
 */
static int revoke_locked(struct auth_tokens *ts, const char *accessor, bool orphan_children, struct sg_err *err)
{
	struct sg_strlist tree = {0}, kids = {0};
	struct store_batch *b = NULL;
	struct auth_token t;
	size_t in_batch = 0;
	int rc = -1, got;

	memset(&t, 0, sizeof(t));
	sg_strlist_add(&tree, accessor);
	if (!orphan_children) {
		/* Breadth first: every descendant follows its parent in the list. */
		for (size_t i = 0; i < tree.n; i++)
			if (children_list(ts, tree.v[i], &tree, err) != 0)
				goto out;
	}
	b = store_batch_new();
	if (orphan_children) {
		if (children_list(ts, accessor, &kids, err) != 0)
			goto out;
		for (size_t i = 0; i < kids.n; i++) {
			char k[TOKEN_STORE_KEY_MAX];

			got = load_accessor(ts, kids.v[i], &t, err);
			if (got < 0)
				goto out;
			if (got == 1) {
				free(t.parent);
				t.parent = sg_xstrdup("");
				t.orphan = true;
				record_put(b, &t);
			}
			snprintf(k, sizeof(k), PARENT_PREFIX "%s/%s", accessor, kids.v[i]);
			store_batch_del(b, STORE_AUTH, k, strlen(k));
			auth_token_clear(&t);
		}
	}
	for (size_t i = tree.n; i-- > 0;) {
		if (leases_revoke(ts, tree.v[i], err) != 0)
			goto out;
		got = load_accessor(ts, tree.v[i], &t, err);
		if (got < 0)
			goto out;
		if (got == 1)
			token_batch_delete(b, &t);
		auth_token_clear(&t);
		if (++in_batch >= TOKEN_REVOKE_CHUNK || i == 0) {
			if (store_commit(ts->st, b, err) != 0)
				goto out;
			store_batch_free(b);
			b = store_batch_new();
			in_batch = 0;
		}
	}
	rc = 0;
out:
	auth_token_clear(&t);
	store_batch_free(b);
	sg_strlist_clear(&tree);
	sg_strlist_clear(&kids);
	return rc;
}

int auth_token_revoke(struct auth_tokens *ts, const struct auth_token *t, bool orphan_children, struct sg_err *err)
{
	int rc;

	tree_wrlock(ts);
	rc = revoke_locked(ts, t->accessor, orphan_children, err);
	tree_unlock(ts);
	return rc;
}

/* ---- Lookup and authentication ---- */

/*
 * A child dies with its parent: between an ancestor's expiry and the sweep
 * that revokes its tree, the descendants already read as dead. Trees
 * deeper than AUTH_TOKEN_MAX_DEPTH do not validate (so cannot grow).
 */
static int ancestors_live(struct auth_tokens *ts, const struct auth_token *t, int64_t now, struct sg_err *err)
{
	char acc[AUTH_ACCESSOR_LEN + 1];
	struct auth_token a;
	int got;

	if (t->parent == NULL || t->parent[0] == '\0')
		return 1;
	snprintf(acc, sizeof(acc), "%s", t->parent);
	for (int depth = 0; depth < AUTH_TOKEN_MAX_DEPTH; depth++) {
		got = load_accessor(ts, acc, &a, err);
		if (got <= 0)
			return got;
		if (expired(&a, now)) {
			auth_token_clear(&a);
			return 0;
		}
		if (a.parent[0] == '\0') {
			auth_token_clear(&a);
			return 1;
		}
		snprintf(acc, sizeof(acc), "%s", a.parent);
		auth_token_clear(&a);
	}
	return 0;
}

/* A loaded record (got == 1) that is expired or lost an ancestor becomes absent. */
static int live_check(struct auth_tokens *ts, int got, struct auth_token *out, struct sg_err *err)
{
	int64_t now = sg_now();

	if (got == 1 && expired(out, now))
		got = 0;
	if (got == 1)
		got = ancestors_live(ts, out, now, err);
	if (got != 1)
		auth_token_clear(out);
	return got;
}

int auth_token_lookup_hash(struct auth_tokens *ts, const char *hash, struct auth_token *out, struct sg_err *err)
{
	memset(out, 0, sizeof(*out));
	if (!hash_ok(hash))
		return 0;
	return live_check(ts, load_hash(ts, hash, out, err), out, err);
}

int auth_token_lookup(struct auth_tokens *ts, const char *token, struct auth_token *out, struct sg_err *err)
{
	char hash[AUTH_TOKEN_HASH_HEX + 1];
	int got;

	memset(out, 0, sizeof(*out));
	if (!presented_ok(token))
		return 0;
	if (token_hash(ts, token, hash, err) != 0)
		return -1;
	got = auth_token_lookup_hash(ts, hash, out, err);
	OPENSSL_cleanse(hash, sizeof(hash));
	return got;
}

int auth_token_lookup_accessor(struct auth_tokens *ts, const char *accessor, struct auth_token *out,
                               struct sg_err *err)
{
	return live_check(ts, load_accessor(ts, accessor, out, err), out, err);
}

/* Counts one use of a use-limited token; the last use revokes it (tree lock taken here). */
static int use_count(struct auth_tokens *ts, struct auth_token *t, struct sg_err *err)
{
	struct auth_token cur;
	struct store_batch *b = NULL;
	int rc = -1, got;

	memset(&cur, 0, sizeof(cur));
	tree_wrlock(ts);
	got = load_accessor(ts, t->accessor, &cur, err);
	if (got < 0)
		goto out;
	if (got == 0 || expired(&cur, sg_now()) || cur.num_uses <= 0) {
		rc = 0; /* revoked or used up meanwhile */
		goto out;
	}
	if (cur.num_uses == 1) {
		/* This request is the last use: the token dies now, the request still runs. */
		if (revoke_locked(ts, cur.accessor, false, err) != 0)
			goto out;
		t->num_uses = -1;
	} else {
		cur.num_uses--;
		b = store_batch_new();
		record_put(b, &cur);
		if (store_commit(ts->st, b, err) != 0)
			goto out;
		t->num_uses = cur.num_uses;
	}
	rc = 1;
out:
	tree_unlock(ts);
	store_batch_free(b);
	auth_token_clear(&cur);
	return rc;
}

int auth_token_authenticate(struct auth_tokens *ts, const char *token, const char *remote_addr,
                            struct auth_token *out, struct sg_err *err)
{
	int got = auth_token_lookup(ts, token, out, err);

	if (got != 1)
		return got;
	if (!auth_cidr_allowed(&out->bound_cidrs, remote_addr)) {
		auth_token_clear(out);
		return 0;
	}
	if (out->num_uses > 0) {
		got = use_count(ts, out, err);
		if (got != 1)
			auth_token_clear(out);
	}
	return got;
}

/* ---- Renewal ---- */

int auth_token_renew(struct auth_tokens *ts, struct auth_token *t, int64_t increment, struct sg_err *err)
{
	struct auth_token cur;
	struct store_batch *b = NULL;
	char k[TOKEN_STORE_KEY_MAX];
	int64_t now = sg_now(), ttl;
	bool capped;
	int rc = -1, got;

	memset(&cur, 0, sizeof(cur));
	if (increment < 0)
		return sg_err_set(err, SG_BAD_REQUEST, "increment must be positive");
	tree_wrlock(ts);
	got = load_accessor(ts, t->accessor, &cur, err);
	if (got < 0)
		goto out;
	if (got == 0 || expired(&cur, now)) {
		sg_err_set(err, SG_BAD_REQUEST, "token not found");
		goto out;
	}
	if (!cur.renewable || cur.expire_time == 0) {
		sg_err_set(err, SG_BAD_REQUEST, "lease is not renewable");
		goto out;
	}
	ttl = ttl_calc(now, cur.creation_time, increment, cur.creation_ttl, cur.period, cur.max_ttl,
	               cur.explicit_max_ttl, &capped, err);
	if (ttl < 0)
		goto out;
	b = store_batch_new();
	exp_key(k, sizeof(k), cur.expire_time, cur.accessor);
	store_batch_del(b, STORE_INDEX, k, strlen(k));
	cur.expire_time = now + ttl;
	cur.last_renewal = now;
	exp_key(k, sizeof(k), cur.expire_time, cur.accessor);
	store_batch_put(b, STORE_INDEX, k, strlen(k), "", 0);
	record_put(b, &cur);
	if (store_commit(ts->st, b, err) != 0)
		goto out;
	t->expire_time = cur.expire_time;
	t->last_renewal = cur.last_renewal;
	rc = 0;
out:
	tree_unlock(ts);
	store_batch_free(b);
	auth_token_clear(&cur);
	return rc;
}

/* ---- Listing and sweeping ---- */

static int accessor_cb(void *arg, const char *key, size_t klen, const void *val, size_t vlen)
{
	size_t n = strlen(ACCESSOR_PREFIX);

	(void)val;
	(void)vlen;
	if (klen > n)
		sg_strlist_addn(arg, key + n, klen - n);
	return 0;
}

int auth_token_accessors(struct auth_tokens *ts, struct sg_strlist *out, struct sg_err *err)
{
	return store_scan(ts->st, STORE_AUTH, ACCESSOR_PREFIX, NULL, 0, accessor_cb, out, err) < 0 ? -1 : 0;
}

struct exp_scan {
	int64_t now;
	struct sg_strlist keys;
};

static int exp_cb(void *arg, const char *key, size_t klen, const void *val, size_t vlen)
{
	struct exp_scan *es = arg;
	size_t n = strlen(EXP_PREFIX);
	char hex[17];
	uint64_t when;

	(void)val;
	(void)vlen;
	if (klen < n + 17 || key[n + 16] != '/')
		return 0;
	memcpy(hex, key + n, 16);
	hex[16] = '\0';
	when = strtoull(hex, NULL, 16);
	if (when > (uint64_t)es->now)
		return 1; /* ordered by expiry: the rest is in the future */
	sg_strlist_addn(&es->keys, key, klen);
	return 0;
}

int auth_tokens_sweep(struct auth_tokens *ts, uint64_t *count, struct sg_err *err)
{
	struct exp_scan es;
	struct auth_token t;
	int rc = -1;

	memset(&es, 0, sizeof(es));
	memset(&t, 0, sizeof(t));
	if (count != NULL)
		*count = 0;
	for (;;) {
		es.now = sg_now();
		sg_strlist_clear(&es.keys);
		if (store_scan(ts->st, STORE_INDEX, EXP_PREFIX, NULL, TOKEN_SWEEP_BATCH, exp_cb, &es, err) < 0)
			goto out;
		if (es.keys.n == 0)
			break;
		for (size_t i = 0; i < es.keys.n; i++) {
			const char *acc = es.keys.v[i] + strlen(EXP_PREFIX) + 17;
			struct store_batch *b;
			int got;

			tree_wrlock(ts);
			got = load_accessor(ts, acc, &t, err);
			if (got == 1 && expired(&t, es.now)) {
				if (revoke_locked(ts, acc, false, err) != 0)
					got = -1;
				else if (count != NULL)
					(*count)++;
			}
			auth_token_clear(&t);
			if (got >= 0) {
				/* Stale or just handled: the index entry goes either way, so the sweep progresses. */
				b = store_batch_new();
				store_batch_del(b, STORE_INDEX, es.keys.v[i], strlen(es.keys.v[i]));
				if (store_commit(ts->st, b, err) != 0)
					got = -1;
				store_batch_free(b);
			}
			tree_unlock(ts);
			if (got < 0)
				goto out;
		}
		if (es.keys.n < TOKEN_SWEEP_BATCH)
			break;
	}
	rc = 0;
out:
	sg_strlist_clear(&es.keys);
	return rc;
}

static void *sweeper_main(void *arg)
{
	struct auth_tokens *ts = arg;

	pthread_mutex_lock(&ts->sweep_mu);
	while (!ts->stopping) {
		struct timespec until;
		struct sg_err err;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += ts->sweep_interval;
		while (!ts->stopping && pthread_cond_timedwait(&ts->sweep_cv, &ts->sweep_mu, &until) != ETIMEDOUT)
			;
		if (ts->stopping)
			break;
		pthread_mutex_unlock(&ts->sweep_mu);
		sg_err_init(&err);
		/* A failed sweep (storage trouble) is retried at the next interval; expired tokens are refused meanwhile. */
		(void)!auth_tokens_sweep(ts, NULL, &err);
		pthread_mutex_lock(&ts->sweep_mu);
	}
	pthread_mutex_unlock(&ts->sweep_mu);
	return NULL;
}

int auth_tokens_sweeper_start(struct auth_tokens *ts, int interval_seconds, struct sg_err *err)
{
	if (interval_seconds <= 0)
		return sg_err_set(err, SG_BAD_REQUEST, "sweep interval must be positive");
	if (ts->sweeper_running)
		return 0;
	ts->sweep_interval = interval_seconds;
	if (pthread_create(&ts->sweeper, NULL, sweeper_main, ts) != 0)
		return sg_err_set(err, SG_INTERNAL, "cannot start the token sweeper");
	ts->sweeper_running = true;
	return 0;
}

/* ---- Token roles ---- */

#define ROLE_PREFIX "token-role/"

void auth_token_role_init(struct auth_token_role *r, const char *name)
{
	memset(r, 0, sizeof(*r));
	r->name = sg_xstrdup(name != NULL ? name : "");
	r->path_suffix = sg_xstrdup("");
	r->renewable = true;
}

void auth_token_role_clear(struct auth_token_role *r)
{
	if (r == NULL)
		return;
	free(r->name);
	free(r->path_suffix);
	sg_strlist_clear(&r->allowed_policies);
	sg_strlist_clear(&r->disallowed_policies);
	sg_strlist_clear(&r->bound_cidrs);
	memset(r, 0, sizeof(*r));
}

static bool word_char(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

/* \w([\w.-]*\w)?, at most cap bytes, never "..". */
static bool word_name_ok(const char *s, size_t cap)
{
	size_t n;

	if (s == NULL)
		return false;
	n = strnlen(s, cap + 1);
	if (n == 0 || n > cap || !word_char(s[0]) || !word_char(s[n - 1]) || strstr(s, "..") != NULL)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!word_char(s[i]) && s[i] != '-' && s[i] != '.')
			return false;
	return true;
}

bool auth_token_role_name_ok(const char *name)
{
	return word_name_ok(name, AUTH_TOKEN_ROLE_NAME_MAX);
}

static int role_policy_list(const json_t *body, const char *key, struct sg_strlist *out, struct sg_err *err)
{
	struct sg_strlist l = {0};
	int got = sg_json_list(body, key, &l, err);

	if (got == 1 && auth_token_policies_sanitize(&l, false, err) != 0)
		got = -1;
	if (got == 1) {
		sg_strlist_clear(out);
		*out = l;
		l = (struct sg_strlist){0};
	}
	sg_strlist_clear(&l);
	return got < 0 ? -1 : 0;
}

int auth_token_role_apply(struct auth_token_role *r, const json_t *body, struct sg_err *err)
{
	struct auth_tokenfields f;
	const char *suffix = NULL;
	int rc = -1, got;

	auth_tokenfields_init(&f);
	/* Start from the role's values so absent fields keep them. */
	f.ttl = r->ttl;
	f.max_ttl = r->max_ttl;
	f.explicit_max_ttl = r->explicit_max_ttl;
	f.period = r->period;
	f.num_uses = r->num_uses;
	f.no_default_policy = r->no_default_policy;
	sg_strlist_copy(&f.bound_cidrs, &r->bound_cidrs);
	if (role_policy_list(body, "allowed_policies", &r->allowed_policies, err) != 0 ||
	    role_policy_list(body, "disallowed_policies", &r->disallowed_policies, err) != 0 ||
	    sg_json_bool(body, "orphan", &r->orphan, err) < 0 || sg_json_bool(body, "renewable", &r->renewable, err) < 0 ||
	    sg_json_str(body, "path_suffix", &suffix, err) < 0 || auth_tokenfields_apply(&f, body, err) != 0)
		goto out;
	/* Vault's deprecated names count only when the token_ form is absent. */
	if (json_object_get(body, "token_explicit_max_ttl") == NULL &&
	    sg_json_duration(body, "explicit_max_ttl", &f.explicit_max_ttl, err) < 0)
		goto out;
	if (json_object_get(body, "token_bound_cidrs") == NULL) {
		got = sg_json_list(body, "bound_cidrs", &f.bound_cidrs, err);
		if (got < 0 || (got == 1 && auth_cidrs_check(&f.bound_cidrs, "bound_cidrs", err) != 0))
			goto out;
	}
	if (f.explicit_max_ttl < 0 || f.period < 0) {
		sg_err_set(err, SG_BAD_REQUEST, "%s must be positive", f.period < 0 ? "period" : "explicit_max_ttl");
		goto out;
	}
	if (suffix != NULL) {
		if (*suffix != '\0' && !word_name_ok(suffix, AUTH_TOKEN_ROLE_SUFFIX_MAX)) {
			sg_err_set(err, SG_BAD_REQUEST,
			           "given role path suffix contains invalid characters; must match \\w[\\w-.]+\\w");
			goto out;
		}
		free(r->path_suffix);
		r->path_suffix = sg_xstrdup(suffix);
	}
	r->ttl = f.ttl;
	r->max_ttl = f.max_ttl;
	r->explicit_max_ttl = f.explicit_max_ttl;
	r->period = f.period;
	r->num_uses = f.num_uses;
	r->no_default_policy = f.no_default_policy;
	sg_strlist_clear(&r->bound_cidrs);
	sg_strlist_copy(&r->bound_cidrs, &f.bound_cidrs);
	rc = 0;
out:
	auth_tokenfields_clear(&f);
	return rc;
}

json_t *auth_token_role_json(const struct auth_token_role *r)
{
	json_t *j = json_object();

	json_object_set_new(j, "name", json_string(r->name));
	json_object_set_new(j, "allowed_policies", sg_strlist_to_json(&r->allowed_policies));
	json_object_set_new(j, "disallowed_policies", sg_strlist_to_json(&r->disallowed_policies));
	json_object_set_new(j, "allowed_policies_glob", json_array());
	json_object_set_new(j, "disallowed_policies_glob", json_array());
	json_object_set_new(j, "allowed_entity_aliases", json_null());
	json_object_set_new(j, "orphan", json_boolean(r->orphan));
	json_object_set_new(j, "renewable", json_boolean(r->renewable));
	json_object_set_new(j, "path_suffix", json_string(r->path_suffix != NULL ? r->path_suffix : ""));
	json_object_set_new(j, "token_ttl", json_integer(r->ttl));
	json_object_set_new(j, "token_max_ttl", json_integer(r->max_ttl));
	json_object_set_new(j, "token_explicit_max_ttl", json_integer(r->explicit_max_ttl));
	json_object_set_new(j, "explicit_max_ttl", json_integer(r->explicit_max_ttl));
	json_object_set_new(j, "token_period", json_integer(r->period));
	json_object_set_new(j, "period", json_integer(r->period));
	json_object_set_new(j, "token_num_uses", json_integer(r->num_uses));
	json_object_set_new(j, "token_no_default_policy", json_boolean(r->no_default_policy));
	json_object_set_new(j, "token_bound_cidrs", sg_strlist_to_json(&r->bound_cidrs));
	json_object_set_new(j, "token_type", json_string("default-service"));
	return j;
}

int auth_token_role_put(struct auth_tokens *ts, const struct auth_token_role *r, struct sg_err *err)
{
	char k[TOKEN_STORE_KEY_MAX];
	json_t *j;
	char *text;
	struct store_batch *b;
	int rc;

	if (!auth_token_role_name_ok(r->name))
		return sg_err_set(err, SG_BAD_REQUEST, "invalid role name");
	j = auth_token_role_json(r);
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (text == NULL)
		sg_die("out of memory");
	snprintf(k, sizeof(k), ROLE_PREFIX "%s", r->name);
	b = store_batch_new();
	store_batch_put(b, STORE_AUTH, k, strlen(k), text, strlen(text));
	rc = store_commit(ts->st, b, err);
	store_batch_free(b);
	free(text);
	return rc;
}

int auth_token_role_get(struct auth_tokens *ts, const char *name, struct auth_token_role *out, struct sg_err *err)
{
	char k[TOKEN_STORE_KEY_MAX];
	unsigned char *val = NULL;
	size_t len = 0;
	json_t *j = NULL;
	struct sg_err e;
	int got;

	auth_token_role_init(out, name);
	if (!auth_token_role_name_ok(name))
		return 0;
	snprintf(k, sizeof(k), ROLE_PREFIX "%s", name);
	got = store_get(ts->st, STORE_AUTH, k, strlen(k), &val, &len, err);
	if (got <= 0)
		return got;
	sg_err_init(&e);
	j = json_loadb((const char *)val, len, 0, NULL);
	free(val);
	if (!json_is_object(j) || auth_token_role_apply(out, j, &e) != 0) {
		json_decref(j);
		return sg_err_set(err, SG_STORAGE, "corrupt token role %s", name);
	}
	json_decref(j);
	return 1;
}

int auth_token_role_delete(struct auth_tokens *ts, const char *name, struct sg_err *err)
{
	char k[TOKEN_STORE_KEY_MAX];
	struct store_batch *b;
	int rc;

	if (!auth_token_role_name_ok(name))
		return 0;
	snprintf(k, sizeof(k), ROLE_PREFIX "%s", name);
	b = store_batch_new();
	store_batch_del(b, STORE_AUTH, k, strlen(k));
	rc = store_commit(ts->st, b, err);
	store_batch_free(b);
	return rc;
}

static int role_name_cb(void *arg, const char *key, size_t klen, const void *val, size_t vlen)
{
	size_t n = strlen(ROLE_PREFIX);

	(void)val;
	(void)vlen;
	if (klen > n)
		sg_strlist_addn(arg, key + n, klen - n);
	return 0;
}

int auth_token_role_names(struct auth_tokens *ts, struct sg_strlist *out, struct sg_err *err)
{
	return store_scan(ts->st, STORE_AUTH, ROLE_PREFIX, NULL, 0, role_name_cb, out, err) < 0 ? -1 : 0;
}

static char *strlist_join(const struct sg_strlist *l)
{
	size_t n = 3;
	char *out, *w;

	for (size_t i = 0; i < l->n; i++)
		n += strlen(l->v[i]) + 3;
	out = sg_xmalloc(n);
	w = out;
	*w++ = '[';
	for (size_t i = 0; i < l->n; i++)
		w += snprintf(w, n - (size_t)(w - out), "%s%s", i > 0 ? " " : "", l->v[i]);
	*w++ = ']';
	*w = '\0';
	return out;
}

/* The policies of a token made through a role with allowed/disallowed_policies (Vault's role branch). */
static int role_policies(const struct auth_token_role *r, const struct auth_token *parent,
                         struct auth_token_params *p, struct sg_err *err)
{
	struct sg_strlist final = {0}, allowed = {0};
	bool add_default = !p->no_default_policy && !r->no_default_policy &&
	                   !sg_strlist_has(&r->disallowed_policies, "default");
	char *a = NULL, *b = NULL;
	int rc = -1;

	sg_strlist_copy(&final, &p->policies);
	if (auth_token_policies_sanitize(&final, false, err) != 0)
		goto out;
	if (final.n > 0 && auth_token_policies_sanitize(&final, add_default, err) != 0)
		goto out;
	if (r->allowed_policies.n > 0) {
		sg_strlist_copy(&allowed, &r->allowed_policies);
		if (auth_token_policies_sanitize(&allowed, add_default, err) != 0)
			goto out;
		if (final.n == 0) {
			sg_strlist_copy(&final, &allowed);
		} else {
			for (size_t i = 0; i < final.n; i++) {
				if (!sg_strlist_has(&allowed, final.v[i])) {
					a = strlist_join(&final);
					b = strlist_join(&allowed);
					sg_err_set(err, SG_BAD_REQUEST,
					           "token policies (%.200s) must be subset of the role's allowed policies (%.200s)", a,
					           b);
					goto out;
				}
			}
		}
	} else if (final.n == 0 && parent != NULL) {
		sg_strlist_copy(&final, &parent->policies);
		if (auth_token_policies_sanitize(&final, add_default, err) != 0)
			goto out;
	}
	for (size_t i = 0; i < final.n; i++) {
		if (sg_strlist_has(&r->disallowed_policies, final.v[i])) {
			sg_err_set(err, SG_BAD_REQUEST, "token policy \"%.128s\" is disallowed by this role", final.v[i]);
			goto out;
		}
	}
	sg_strlist_clear(&p->policies);
	p->policies = final;
	final = (struct sg_strlist){0};
	p->policies_final = true;
	rc = 0;
out:
	free(a);
	free(b);
	sg_strlist_clear(&final);
	sg_strlist_clear(&allowed);
	return rc;
}

int auth_token_role_params(const struct auth_token_role *r, const struct auth_token *parent,
                           struct auth_token_params *p, char *path_buf, size_t path_cap,
                           struct sg_strlist *warnings, struct sg_err *err)
{
	if ((r->allowed_policies.n > 0 || r->disallowed_policies.n > 0) && role_policies(r, parent, p, err) != 0)
		return -1;
	if (r->orphan)
		p->orphan = true;
	if (!r->renewable)
		p->renewable = false;
	/* Uses: 0 is unlimited, so the role's count applies unless the request asks for fewer. */
	if (r->num_uses > 0 && (p->num_uses == 0 || r->num_uses < p->num_uses))
		p->num_uses = r->num_uses;
	if (r->explicit_max_ttl > 0) {
		if (p->explicit_max_ttl == 0) {
			p->explicit_max_ttl = r->explicit_max_ttl;
		} else {
			if (r->explicit_max_ttl < p->explicit_max_ttl)
				p->explicit_max_ttl = r->explicit_max_ttl;
			if (warnings != NULL) {
				char w[160];

				snprintf(w, sizeof(w),
				         "Explicit max TTL specified both during creation call and in role; using the lesser value "
				         "of %lld seconds",
				         (long long)p->explicit_max_ttl);
				sg_strlist_add(warnings, w);
			}
		}
	}
	if (r->period > 0) {
		if (p->period == 0) {
			p->period = r->period;
		} else {
			if (r->period < p->period)
				p->period = r->period;
			if (warnings != NULL) {
				char w[160];

				snprintf(w, sizeof(w),
				         "Period specified both during creation call and in role; using the lesser value of %lld "
				         "seconds",
				         (long long)p->period);
				sg_strlist_add(warnings, w);
			}
		}
	}
	if (r->bound_cidrs.n > 0) {
		sg_strlist_clear(&p->bound_cidrs);
		sg_strlist_copy(&p->bound_cidrs, &r->bound_cidrs);
	}
	if (p->ttl == 0)
		p->ttl = r->ttl;
	if (r->max_ttl > 0 && (p->max_ttl == 0 || r->max_ttl < p->max_ttl))
		p->max_ttl = r->max_ttl;
	if (r->path_suffix != NULL && *r->path_suffix != '\0')
		snprintf(path_buf, path_cap, "auth/token/create/%s/%s", r->name, r->path_suffix);
	else
		snprintf(path_buf, path_cap, "auth/token/create/%s", r->name);
	p->path = path_buf;
	return 0;
}

/* ---- Vault's JSON shapes ---- */

static json_t *time_json(int64_t t)
{
	char buf[40];

	if (t == 0)
		return json_null();
	sg_time_format_rfc3339(t, buf, sizeof(buf));
	return json_string(buf);
}

static json_t *meta_json(const json_t *meta)
{
	return json_object_size(meta) > 0 ? json_deep_copy(meta) : json_null();
}

json_t *auth_token_lookup_json(const struct auth_token *t, int64_t now)
{
	json_t *j = json_object();
	int64_t ttl = t->expire_time != 0 ? t->expire_time - now : 0;

	json_object_set_new(j, "accessor", json_string(t->accessor));
	json_object_set_new(j, "creation_time", json_integer(t->creation_time));
	json_object_set_new(j, "creation_ttl", json_integer(t->creation_ttl));
	json_object_set_new(j, "display_name", json_string(t->display_name != NULL ? t->display_name : ""));
	json_object_set_new(j, "entity_id", json_string(t->entity_id != NULL ? t->entity_id : ""));
	json_object_set_new(j, "expire_time", time_json(t->expire_time));
	json_object_set_new(j, "explicit_max_ttl", json_integer(t->explicit_max_ttl));
	json_object_set_new(j, "id", json_string(""));
	json_object_set_new(j, "issue_time", time_json(t->creation_time));
	json_object_set_new(j, "meta", meta_json(t->meta));
	json_object_set_new(j, "num_uses", json_integer(t->num_uses > 0 ? t->num_uses : 0));
	json_object_set_new(j, "orphan", json_boolean(t->parent == NULL || t->parent[0] == '\0'));
	json_object_set_new(j, "path", json_string(t->path != NULL ? t->path : ""));
	json_object_set_new(j, "policies", sg_strlist_to_json(&t->policies));
	json_object_set_new(j, "renewable", json_boolean(t->renewable && t->expire_time != 0));
	json_object_set_new(j, "ttl", json_integer(ttl > 0 ? ttl : 0));
	json_object_set_new(j, "type", json_string(t->type != NULL ? t->type : "service"));
	if (t->period > 0)
		json_object_set_new(j, "period", json_integer(t->period));
	if (t->bound_cidrs.n > 0)
		json_object_set_new(j, "bound_cidrs", sg_strlist_to_json(&t->bound_cidrs));
	if (t->last_renewal != 0) {
		json_object_set_new(j, "last_renewal_time", json_integer(t->last_renewal));
		json_object_set_new(j, "last_renewal", time_json(t->last_renewal));
	}
	return j;
}

json_t *auth_token_auth_json(const struct auth_token *t, const char *client_token, int64_t now)
{
	json_t *j = json_object();
	int64_t ttl = t->expire_time != 0 ? t->expire_time - now : 0;

	json_object_set_new(j, "client_token", json_string(client_token != NULL ? client_token : ""));
	json_object_set_new(j, "accessor", json_string(t->accessor));
	json_object_set_new(j, "policies", sg_strlist_to_json(&t->policies));
	json_object_set_new(j, "token_policies", sg_strlist_to_json(&t->policies));
	json_object_set_new(j, "metadata", meta_json(t->meta));
	json_object_set_new(j, "lease_duration", json_integer(ttl > 0 ? ttl : 0));
	json_object_set_new(j, "renewable", json_boolean(t->renewable && t->expire_time != 0));
	json_object_set_new(j, "entity_id", json_string(t->entity_id != NULL ? t->entity_id : ""));
	json_object_set_new(j, "token_type", json_string(t->type != NULL ? t->type : "service"));
	json_object_set_new(j, "orphan", json_boolean(t->parent == NULL || t->parent[0] == '\0'));
	json_object_set_new(j, "mfa_requirement", json_null());
	json_object_set_new(j, "num_uses", json_integer(t->num_uses > 0 ? t->num_uses : 0));
	return j;
}
