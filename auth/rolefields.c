#include "auth/rolefields.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

int auth_rolefields_apply(struct auth_tokenfields *f, const json_t *body, struct sg_err *err)
{
	int64_t v = 0;
	int rc;

	if (auth_tokenfields_apply(f, body, err) != 0)
		return -1;
	if (json_object_get(body, "token_ttl") == NULL) {
		if ((rc = sg_json_duration(body, "ttl", &v, err)) < 0)
			return -1;
		if (rc == 1)
			f->ttl = v;
	}
	if (json_object_get(body, "token_max_ttl") == NULL) {
		if ((rc = sg_json_duration(body, "max_ttl", &v, err)) < 0)
			return -1;
		if (rc == 1)
			f->max_ttl = v;
	}
	if (json_object_get(body, "token_num_uses") == NULL) {
		if ((rc = sg_json_int(body, "num_uses", &v, err)) < 0)
			return -1;
		if (rc == 1) {
			if (v < 0)
				return sg_err_set(err, SG_BAD_REQUEST, "'num_uses' cannot be negative");
			f->num_uses = v;
		}
	}
	if (json_object_get(body, "token_bound_cidrs") == NULL) {
		if ((rc = sg_json_list(body, "bound_cidrs", &f->bound_cidrs, err)) < 0)
			return -1;
		if (rc == 1 && auth_cidrs_check(&f->bound_cidrs, "bound_cidrs", err) != 0)
			return -1;
	}
	if (f->ttl < 0 || f->max_ttl < 0 || f->ttl > AUTH_TOKENFIELDS_TTL_MAX || f->max_ttl > AUTH_TOKENFIELDS_TTL_MAX)
		return sg_err_set(err, SG_BAD_REQUEST, "ttl out of range");
	if (f->max_ttl != 0 && f->ttl > f->max_ttl)
		return sg_err_set(err, SG_BAD_REQUEST, "'token_ttl' cannot be greater than 'token_max_ttl'");
	return 0;
}

int auth_rolefields_str(const json_t *body, const char *key, size_t max, char **out, struct sg_err *err)
{
	const char *s = NULL;
	int rc = sg_json_str(body, key, &s, err);

	if (rc <= 0)
		return rc;
	if (strlen(s) > max)
		return sg_err_set(err, SG_BAD_REQUEST, "field '%s' is longer than %zu bytes", key, max);
	free(*out);
	*out = sg_xstrdup(s);
	return 1;
}

bool auth_rolefields_name_valid(const char *name)
{
	size_t n = name != NULL ? strlen(name) : 0;

	if (n == 0 || n > AUTH_ROLE_NAME_MAX || name[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
		      c == '.'))
			return false;
	}
	return true;
}

/* ---- Records ---- */

static char *record_key(const char *prefix, const char *name, struct sg_err *err)
{
	char *key = sg_xasprintf("%s%s", prefix, name);

	if (strlen(key) > STORE_MAX_KEY) {
		free(key);
		sg_err_set(err, SG_BAD_REQUEST, "name too long");
		return NULL;
	}
	return key;
}

int auth_record_load(struct store *st, const char *prefix, const char *name, json_t **out, struct sg_err *err)
{
	char *key = record_key(prefix, name, err);
	unsigned char *val = NULL;
	size_t len = 0;
	json_error_t jerr;
	int rc;

	*out = NULL;
	if (key == NULL)
		return -1;
	rc = store_get(st, STORE_AUTH, key, strlen(key), &val, &len, err);
	free(key);
	if (rc <= 0)
		return rc;
	*out = json_loadb((const char *)val, len, 0, &jerr);
	OPENSSL_cleanse(val, len);
	free(val);
	if (!json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return sg_err_set(err, SG_STORAGE, "auth record %.64s is damaged", name);
	}
	return 1;
}

int auth_record_store(struct store *st, const char *prefix, const char *name, const json_t *rec, struct sg_err *err)
{
	char *key = record_key(prefix, name, err);
	char *val = NULL;
	struct store_batch *b = NULL;
	int rc = -1;

	if (key == NULL)
		return -1;
	val = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);
	if (val == NULL)
		sg_die("json_dumps");
	if (strlen(val) > AUTH_RECORD_MAX) {
		sg_err_set(err, SG_BAD_REQUEST, "record larger than %u bytes", AUTH_RECORD_MAX);
		goto out;
	}
	b = store_batch_new();
	store_batch_put(b, STORE_AUTH, key, strlen(key), val, strlen(val));
	rc = store_commit(st, b, err);
out:
	store_batch_free(b);
	OPENSSL_cleanse(val, strlen(val));
	free(val);
	free(key);
	return rc;
}

int auth_record_delete(struct store *st, const char *prefix, const char *name, struct sg_err *err)
{
	char *key = record_key(prefix, name, err);
	struct store_batch *b;
	int rc;

	if (key == NULL)
		return -1;
	b = store_batch_new();
	store_batch_del(b, STORE_AUTH, key, strlen(key));
	rc = store_commit(st, b, err);
	store_batch_free(b);
	free(key);
	return rc;
}

struct list_ctx {
	size_t skip;
	struct sg_strlist *out;
};

static int list_cb(void *arg, const char *key, size_t klen, const void *val, size_t vlen)
{
	struct list_ctx *lc = arg;

	(void)val;
	(void)vlen;
	if (klen > lc->skip)
		sg_strlist_addn(lc->out, key + lc->skip, klen - lc->skip);
	return 0;
}

int auth_record_list(struct store *st, const char *prefix, const char *dir, struct sg_strlist *out,
                     struct sg_err *err)
{
	char *p = sg_xasprintf("%s%s", prefix, dir);
	struct list_ctx lc = {strlen(p), out};
	long n;

	n = store_scan(st, STORE_AUTH, p, NULL, 0, list_cb, &lc, err);
	free(p);
	return n < 0 ? -1 : 0;
}
