/* AppRole: roles, secret ids and the login check (Vault's builtin/credential/approle semantics). */
#include "auth/approle.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX 512
#define HEX_SHA256 64
#define ADDR_TEXT_MAX 64

/*
 * Secret-id use counting is read-modify-write on the store, which has no
 * compare-and-swap: one lock per process makes two logins with a one-use
 * secret id succeed at most once. (Sigil runs one server per store.)
 */
static pthread_mutex_t secret_mu = PTHREAD_MUTEX_INITIALIZER;

/* ---- Small helpers ---- */

static void hex_encode(const unsigned char *b, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hex_decode(const char *s, unsigned char *out, size_t n)
{
	if (s == NULL || strlen(s) != 2 * n)
		return -1;
	for (size_t i = 0; i < 2 * n; i++) {
		int c = tolower((unsigned char)s[i]), v;

		if (c >= '0' && c <= '9')
			v = c - '0';
		else if (c >= 'a' && c <= 'f')
			v = c - 'a' + 10;
		else
			return -1;
		if (i % 2 == 0)
			out[i / 2] = (unsigned char)(v << 4);
		else
			out[i / 2] |= (unsigned char)v;
	}
	return 0;
}

static int secret_hash(const unsigned char key[AUTH_APPROLE_HMAC_KEY_BYTES], const char *secret,
                       char out[HEX_SHA256 + 1], struct sg_err *err)
{
	unsigned char mac[32];
	size_t maclen = 0;

	if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, AUTH_APPROLE_HMAC_KEY_BYTES, (const unsigned char *)secret,
	              strlen(secret), mac, sizeof(mac), &maclen) == NULL ||
	    maclen != sizeof(mac))
		return sg_err_ossl(err, SG_CRYPTO, "secret id HMAC failed");
	hex_encode(mac, sizeof(mac), out);
	OPENSSL_cleanse(mac, sizeof(mac));
	return 0;
}

static int role_id_hash(const char *role_id, char out[HEX_SHA256 + 1], struct sg_err *err)
{
	unsigned char md[32];
	size_t mdlen = 0;

	if (EVP_Q_digest(NULL, "SHA256", NULL, role_id, strlen(role_id), md, &mdlen) != 1 || mdlen != sizeof(md))
		return sg_err_ossl(err, SG_CRYPTO, "role id digest failed");
	hex_encode(md, sizeof(md), out);
	return 0;
}

static char *dump(const json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);

	if (s == NULL)
		sg_die("out of memory");
	return s;
}

static void batch_put_json(struct store_batch *b, const char *key, const json_t *j)
{
	char *s = dump(j);

	store_batch_put(b, STORE_AUTH, key, strlen(key), s, strlen(s));
	free(s);
}

static int key_make(char *out, size_t cap, struct sg_err *err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int key_make(char *out, size_t cap, struct sg_err *err, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, cap, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= cap)
		return sg_err_set(err, SG_BAD_REQUEST, "name too long");
	return 0;
}

static int load_json(struct store *st, const char *key, json_t **out, struct sg_err *err)
{
	unsigned char *val = NULL;
	size_t len = 0;
	int got;

	*out = NULL;
	got = store_get(st, STORE_AUTH, key, strlen(key), &val, &len, err);
	if (got <= 0)
		return got;
	if (len <= AUTH_APPROLE_RECORD_MAX)
		*out = json_loadb((const char *)val, len, 0, NULL);
	free(val);
	if (*out == NULL || !json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return sg_err_set(err, SG_STORAGE, "corrupt AppRole record");
	}
	return 1;
}

/* "127.0.0.1:5555" / "[::1]:5555" -> the address alone, for messages. */
static void addr_host(const char *addr, char *out, size_t cap)
{
	const char *colon;

	if (addr == NULL) {
		snprintf(out, cap, "unknown");
	} else if (addr[0] == '[') {
		const char *close = strchr(addr, ']');

		snprintf(out, cap, "%.*s", close != NULL ? (int)(close - addr - 1) : 0, addr + 1);
	} else if ((colon = strchr(addr, ':')) != NULL && strchr(colon + 1, ':') == NULL) {
		snprintf(out, cap, "%.*s", (int)(colon - addr), addr);
	} else {
		snprintf(out, cap, "%s", addr);
	}
}

static void time_text(int64_t t, char *buf, size_t cap)
{
	if (t == 0)
		snprintf(buf, cap, "0001-01-01T00:00:00Z"); /* Go's zero time, as Vault prints "never" */
	else
		sg_time_format_rfc3339(t, buf, cap);
}

/* ---- Roles ---- */

void auth_approle_role_init(struct auth_approle_role *r)
{
	memset(r, 0, sizeof(*r));
	r->bind_secret_id = true;
	auth_tokenfields_init(&r->tf);
}

void auth_approle_role_clear(struct auth_approle_role *r)
{
	if (r == NULL)
		return;
	free(r->name);
	free(r->role_id);
	sg_strlist_clear(&r->secret_id_bound_cidrs);
	auth_tokenfields_clear(&r->tf);
	OPENSSL_cleanse(r->hmac_key, sizeof(r->hmac_key));
	auth_approle_role_init(r);
}

static bool name_char(char c, bool edge)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
	       (!edge && (c == '-' || c == '.'));
}

int auth_approle_name_check(const char *name, struct sg_err *err)
{
	size_t n = name != NULL ? strlen(name) : 0;

	if (n == 0 || n > AUTH_APPROLE_NAME_MAX)
		return sg_err_set(err, SG_BAD_REQUEST, "role name must be 1 to %d characters", AUTH_APPROLE_NAME_MAX);
	for (size_t i = 0; i < n; i++)
		if (!name_char(name[i], i == 0 || i == n - 1))
			return sg_err_set(err, SG_BAD_REQUEST,
			                  "invalid role name: letters, digits, '_', '-' and '.' only, starting and ending "
			                  "with a letter, digit or '_'");
	return 0;
}

static int id_check(const char *what, const char *id, struct sg_err *err)
{
	size_t n = strlen(id);

	if (n == 0)
		return sg_err_set(err, SG_BAD_REQUEST, "missing %s", what);
	if (n > AUTH_APPROLE_ID_MAX)
		return sg_err_set(err, SG_BAD_REQUEST, "%s is longer than %d characters", what, AUTH_APPROLE_ID_MAX);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)id[i] < 0x21 || (unsigned char)id[i] > 0x7e)
			return sg_err_set(err, SG_BAD_REQUEST, "%s must be printable ASCII without spaces", what);
	return 0;
}

static int count_field(const json_t *body, const char *key, int64_t *out, struct sg_err *err)
{
	int64_t v = 0;
	int rc = sg_json_int(body, key, &v, err);

	if (rc <= 0)
		return rc;
	if (v < 0)
		return sg_err_set(err, SG_BAD_REQUEST, "%s cannot be negative", key);
	*out = v;
	return 1;
}

int auth_approle_role_apply(struct auth_approle_role *r, const json_t *body, bool create, struct sg_err *err)
{
	const char *role_id = NULL;
	int rc;

	if (sg_json_bool(body, "bind_secret_id", &r->bind_secret_id, err) < 0 ||
	    sg_json_bool(body, "local_secret_ids", &r->local_secret_ids, err) < 0)
		return -1;
	/* bound_cidr_list is the deprecated name of secret_id_bound_cidrs. */
	if ((rc = sg_json_list(body, "secret_id_bound_cidrs", &r->secret_id_bound_cidrs, err)) < 0)
		return -1;
	if (rc == 0 && sg_json_list(body, "bound_cidr_list", &r->secret_id_bound_cidrs, err) < 0)
		return -1;
	if (auth_cidrs_check(&r->secret_id_bound_cidrs, "secret_id_bound_cidrs", err) != 0)
		return -1;
	if (count_field(body, "secret_id_num_uses", &r->secret_id_num_uses, err) < 0)
		return -1;
	if ((rc = sg_json_duration(body, "secret_id_ttl", &r->secret_id_ttl, err)) < 0)
		return -1;
	if (rc == 1 && r->secret_id_ttl > AUTH_TOKENFIELDS_TTL_MAX)
		return sg_err_set(err, SG_BAD_REQUEST, "secret_id_ttl is too large");
	if (auth_tokenfields_apply(&r->tf, body, err) != 0)
		return -1;
	if (sg_json_str(body, "role_id", &role_id, err) < 0)
		return -1;
	if (role_id != NULL) {
		if (id_check("role_id", role_id, err) != 0)
			return -1;
		free(r->role_id);
		r->role_id = sg_xstrdup(role_id);
	}
	if (create) {
		if (r->role_id == NULL) {
			char id[37];

			sg_uuid(id);
			r->role_id = sg_xstrdup(id);
		}
		if (RAND_bytes(r->hmac_key, sizeof(r->hmac_key)) != 1)
			sg_die("RAND_bytes failed");
	}
	/* Vault: a role needs at least one constraint, or anyone knowing the role_id logs in from anywhere. */
	if (!r->bind_secret_id && r->secret_id_bound_cidrs.n == 0 && r->tf.bound_cidrs.n == 0)
		return sg_err_set(err, SG_BAD_REQUEST,
		                  "at least one constraint should be enabled on the role: bind_secret_id, "
		                  "secret_id_bound_cidrs or token_bound_cidrs");
	return 0;
}

json_t *auth_approle_role_to_json(const struct auth_approle_role *r)
{
	json_t *o = json_object();

	json_object_set_new(o, "bind_secret_id", json_boolean(r->bind_secret_id));
	json_object_set_new(o, "local_secret_ids", json_boolean(r->local_secret_ids));
	json_object_set_new(o, "secret_id_bound_cidrs", sg_strlist_to_json(&r->secret_id_bound_cidrs));
	json_object_set_new(o, "secret_id_num_uses", json_integer(r->secret_id_num_uses));
	json_object_set_new(o, "secret_id_ttl", json_integer(r->secret_id_ttl));
	auth_tokenfields_encode(&r->tf, o);
	/* Vault still shows the deprecated names when they carry a value. */
	if (r->tf.policies.n > 0)
		json_object_set_new(o, "policies", sg_strlist_to_json(&r->tf.policies));
	if (r->tf.period > 0)
		json_object_set_new(o, "period", json_integer(r->tf.period));
	return o;
}

static json_t *role_record(const struct auth_approle_role *r)
{
	json_t *o = auth_approle_role_to_json(r);
	char hex[2 * AUTH_APPROLE_HMAC_KEY_BYTES + 1];

	hex_encode(r->hmac_key, sizeof(r->hmac_key), hex);
	json_object_set_new(o, "name", json_string(r->name));
	json_object_set_new(o, "role_id", json_string(r->role_id));
	json_object_set_new(o, "hmac_key", json_string(hex));
	json_object_del(o, "policies");
	json_object_del(o, "period");
	OPENSSL_cleanse(hex, sizeof(hex));
	return o;
}

static int role_decode(const json_t *j, struct auth_approle_role *r, struct sg_err *err)
{
	const char *name = json_string_value(json_object_get(j, "name"));
	const char *role_id = json_string_value(json_object_get(j, "role_id"));
	struct sg_err e;

	sg_err_init(&e);
	auth_approle_role_clear(r);
	if (name == NULL || role_id == NULL ||
	    hex_decode(json_string_value(json_object_get(j, "hmac_key")), r->hmac_key, sizeof(r->hmac_key)) != 0)
		goto bad;
	r->name = sg_xstrdup(name);
	r->role_id = sg_xstrdup(role_id);
	if (sg_json_bool(j, "bind_secret_id", &r->bind_secret_id, &e) < 0 ||
	    sg_json_bool(j, "local_secret_ids", &r->local_secret_ids, &e) < 0 ||
	    sg_json_list(j, "secret_id_bound_cidrs", &r->secret_id_bound_cidrs, &e) < 0 ||
	    sg_json_int(j, "secret_id_num_uses", &r->secret_id_num_uses, &e) < 0 ||
	    sg_json_int(j, "secret_id_ttl", &r->secret_id_ttl, &e) < 0 || auth_tokenfields_decode(&r->tf, j, &e) != 0)
		goto bad;
	return 0;
bad:
	auth_approle_role_clear(r);
	return sg_err_set(err, SG_STORAGE, "corrupt AppRole role record");
}

int auth_approle_role_load(struct store *st, const char *prefix, const char *name, struct auth_approle_role *out,
                      struct sg_err *err)
{
	char key[KEY_MAX];
	json_t *j = NULL;
	int got;

	if (key_make(key, sizeof(key), err, "%srole/%s", prefix, name) != 0)
		return -1;
	got = load_json(st, key, &j, err);
	if (got <= 0)
		return got;
	got = role_decode(j, out, err) == 0 ? 1 : -1;
	json_decref(j);
	return got;
}

/* 1 with the role name the role_id maps to, 0 when none, -1 on error. */
static int role_id_owner(struct store *st, const char *prefix, const char *role_id, char **name, struct sg_err *err)
{
	char key[KEY_MAX], h[HEX_SHA256 + 1];
	unsigned char *val = NULL;
	size_t len = 0;
	int got;

	*name = NULL;
	if (role_id_hash(role_id, h, err) != 0 || key_make(key, sizeof(key), err, "%sroleid/%s", prefix, h) != 0)
		return -1;
	got = store_get(st, STORE_AUTH, key, strlen(key), &val, &len, err);
	if (got <= 0)
		return got;
	*name = sg_xstrndup((const char *)val, len);
	free(val);
	return 1;
}

int auth_approle_role_store(struct store *st, const char *prefix, const struct auth_approle_role *r,
                            const char *old_role_id, struct sg_err *err)
{
	char key[KEY_MAX], h[HEX_SHA256 + 1];
	struct store_batch *b = NULL;
	json_t *rec = NULL;
	char *owner = NULL;
	int rc = -1, got;

	if (auth_approle_name_check(r->name, err) != 0 || id_check("role_id", r->role_id, err) != 0)
		return -1;
	got = role_id_owner(st, prefix, r->role_id, &owner, err);
	if (got < 0)
		goto out;
	if (got == 1 && strcmp(owner, r->name) != 0) {
		sg_err_set(err, SG_BAD_REQUEST, "role_id already in use");
		goto out;
	}
	b = store_batch_new();
	rec = role_record(r);
	if (key_make(key, sizeof(key), err, "%srole/%s", prefix, r->name) != 0)
		goto out;
	batch_put_json(b, key, rec);
	if (old_role_id != NULL && strcmp(old_role_id, r->role_id) != 0) {
		if (role_id_hash(old_role_id, h, err) != 0 || key_make(key, sizeof(key), err, "%sroleid/%s", prefix, h) != 0)
			goto out;
		store_batch_del(b, STORE_AUTH, key, strlen(key));
	}
	if (role_id_hash(r->role_id, h, err) != 0 || key_make(key, sizeof(key), err, "%sroleid/%s", prefix, h) != 0)
		goto out;
	/* A new index entry must not exist yet: two roles racing for one role_id leave one winner. */
	if (got == 0)
		store_batch_put_new(b, STORE_AUTH, key, strlen(key), r->name, strlen(r->name));
	if (store_commit(st, b, err) != 0) {
		if (err != NULL && err->code == SG_CONFLICT) {
			err->code = SG_BAD_REQUEST;
			snprintf(err->detail, sizeof(err->detail), "role_id already in use");
		}
		goto out;
	}
	rc = 0;
out:
	if (rec != NULL) {
		json_object_del(rec, "hmac_key");
		json_decref(rec);
	}
	store_batch_free(b);
	free(owner);
	return rc;
}

int auth_approle_role_delete(struct store *st, const char *prefix, const char *name, struct sg_err *err)
{
	struct auth_approle_role r;
	struct store_batch *b = NULL;
	char key[KEY_MAX], h[HEX_SHA256 + 1];
	int rc = -1, got;

	auth_approle_role_init(&r);
	got = auth_approle_role_load(st, prefix, name, &r, err);
	if (got <= 0) {
		rc = got;
		goto out;
	}
	b = store_batch_new();
	if (key_make(key, sizeof(key), err, "%srole/%s", prefix, name) != 0)
		goto out;
	store_batch_del(b, STORE_AUTH, key, strlen(key));
	if (role_id_hash(r.role_id, h, err) != 0 || key_make(key, sizeof(key), err, "%sroleid/%s", prefix, h) != 0)
		goto out;
	store_batch_del(b, STORE_AUTH, key, strlen(key));
	/* Role names have no '/', so these prefixes hold this role's secret ids only. */
	if (key_make(key, sizeof(key), err, "%ssid/%s/", prefix, name) != 0)
		goto out;
	store_batch_del_prefix(b, STORE_AUTH, key);
	if (key_make(key, sizeof(key), err, "%ssidacc/%s/", prefix, name) != 0)
		goto out;
	store_batch_del_prefix(b, STORE_AUTH, key);
	pthread_mutex_lock(&secret_mu);
	rc = store_commit(st, b, err);
	pthread_mutex_unlock(&secret_mu);
out:
	store_batch_free(b);
	auth_approle_role_clear(&r);
	return rc < 0 ? -1 : 0;
}

struct list_ctx {
	struct sg_strlist *out;
	size_t skip;
	struct sg_err *err;
};

static int list_cb(void *arg, const char *key, size_t klen, const void *val, size_t vlen)
{
	struct list_ctx *lc = arg;

	(void)val;
	(void)vlen;
	if (lc->out->n >= AUTH_APPROLE_LIST_MAX) {
		sg_err_set(lc->err, SG_BAD_REQUEST, "more than %d entries to list", AUTH_APPROLE_LIST_MAX);
		return -1;
	}
	if (klen > lc->skip)
		sg_strlist_addn(lc->out, key + lc->skip, klen - lc->skip);
	return 0;
}

static int list_prefix(struct store *st, const char *prefix, struct sg_strlist *out, struct sg_err *err)
{
	struct list_ctx lc = {out, strlen(prefix), err};
	struct sg_err serr;

	sg_err_init(&serr);
	sg_strlist_clear(out);
	if (store_scan(st, STORE_AUTH, prefix, NULL, 0, list_cb, &lc, &serr) < 0) {
		if (!sg_err_isset(err))
			sg_err_set(err, serr.code != SG_OK ? serr.code : SG_STORAGE, "%s", serr.detail);
		return -1;
	}
	return 0;
}

int auth_approle_role_list(struct store *st, const char *prefix, struct sg_strlist *out, struct sg_err *err)
{
	char key[KEY_MAX];

	if (key_make(key, sizeof(key), err, "%srole/", prefix) != 0)
		return -1;
	return list_prefix(st, key, out, err);
}

/* ---- Secret ids ---- */

void auth_approle_secret_clear(struct auth_approle_secret *s)
{
	if (s == NULL)
		return;
	sg_strlist_clear(&s->cidr_list);
	sg_strlist_clear(&s->token_bound_cidrs);
	json_decref(s->metadata);
	memset(s, 0, sizeof(*s));
}

json_t *auth_approle_secret_to_json(const struct auth_approle_secret *s)
{
	char c[40], e[40], u[40];

	time_text(s->creation_time, c, sizeof(c));
	time_text(s->expiration_time, e, sizeof(e));
	time_text(s->last_updated_time, u, sizeof(u));
	return json_pack("{s:o, s:s, s:s, s:s, s:O, s:s, s:I, s:I, s:o}", "cidr_list", sg_strlist_to_json(&s->cidr_list),
	                 "creation_time", c, "expiration_time", e, "last_updated_time", u, "metadata",
	                 s->metadata != NULL ? s->metadata : json_object(), "secret_id_accessor", s->accessor,
	                 "secret_id_num_uses", (json_int_t)s->num_uses, "secret_id_ttl", (json_int_t)s->ttl,
	                 "token_bound_cidrs", sg_strlist_to_json(&s->token_bound_cidrs));
}

static json_t *secret_record(const struct auth_approle_secret *s)
{
	return json_pack("{s:s, s:s, s:o, s:o, s:O, s:I, s:I, s:I, s:I, s:I}", "accessor", s->accessor, "hash", s->hash,
	                 "cidr_list", sg_strlist_to_json(&s->cidr_list), "token_bound_cidrs",
	                 sg_strlist_to_json(&s->token_bound_cidrs), "metadata",
	                 s->metadata != NULL ? s->metadata : json_object(), "creation_time",
	                 (json_int_t)s->creation_time, "expiration_time", (json_int_t)s->expiration_time,
	                 "last_updated_time", (json_int_t)s->last_updated_time, "num_uses", (json_int_t)s->num_uses,
	                 "ttl", (json_int_t)s->ttl);
}

static int secret_decode(const json_t *j, struct auth_approle_secret *s, struct sg_err *err)
{
	const char *acc = json_string_value(json_object_get(j, "accessor"));
	const char *hash = json_string_value(json_object_get(j, "hash"));
	json_t *meta = json_object_get(j, "metadata");
	struct sg_err e;

	sg_err_init(&e);
	auth_approle_secret_clear(s);
	if (acc == NULL || hash == NULL || strlen(acc) >= sizeof(s->accessor) || strlen(hash) != HEX_SHA256 ||
	    !json_is_object(meta))
		goto bad;
	snprintf(s->accessor, sizeof(s->accessor), "%s", acc);
	snprintf(s->hash, sizeof(s->hash), "%s", hash);
	s->metadata = json_deep_copy(meta);
	if (sg_json_list(j, "cidr_list", &s->cidr_list, &e) < 0 ||
	    sg_json_list(j, "token_bound_cidrs", &s->token_bound_cidrs, &e) < 0 ||
	    sg_json_int(j, "creation_time", &s->creation_time, &e) < 0 ||
	    sg_json_int(j, "expiration_time", &s->expiration_time, &e) < 0 ||
	    sg_json_int(j, "last_updated_time", &s->last_updated_time, &e) < 0 ||
	    sg_json_int(j, "num_uses", &s->num_uses, &e) < 0 || sg_json_int(j, "ttl", &s->ttl, &e) < 0)
		goto bad;
	return 0;
bad:
	auth_approle_secret_clear(s);
	return sg_err_set(err, SG_STORAGE, "corrupt AppRole secret id record");
}

void auth_approle_secret_params_clear(struct auth_approle_secret_params *p)
{
	if (p == NULL)
		return;
	json_decref(p->metadata);
	sg_strlist_clear(&p->cidr_list);
	sg_strlist_clear(&p->token_bound_cidrs);
	memset(p, 0, sizeof(*p));
}

static int metadata_parse(const json_t *body, json_t **out, struct sg_err *err)
{
	const json_t *v = json_object_get(body, "metadata");
	json_t *m = NULL;
	const char *k;
	json_t *val;

	*out = json_object();
	if (v == NULL || json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0))
		return 0;
	if (json_is_string(v)) {
		/* hvac and the Vault CLI send the metadata as a JSON-encoded string. */
		m = json_loadb(json_string_value(v), json_string_length(v), JSON_REJECT_DUPLICATES, NULL);
		if (m == NULL)
			return sg_err_set(err, SG_BAD_REQUEST, "failed to parse metadata: not a JSON object");
	} else {
		m = json_incref((json_t *)v);
	}
	if (!json_is_object(m)) {
		json_decref(m);
		return sg_err_set(err, SG_BAD_REQUEST, "failed to parse metadata: not a JSON object");
	}
	if (json_object_size(m) > AUTH_APPROLE_META_MAX) {
		json_decref(m);
		return sg_err_set(err, SG_BAD_REQUEST, "metadata has more than %d keys", AUTH_APPROLE_META_MAX);
	}
	json_object_foreach(m, k, val) {
		if (!json_is_string(val) || strlen(k) == 0 || strlen(k) > AUTH_APPROLE_META_KEY_MAX ||
		    json_string_length(val) > AUTH_APPROLE_META_VALUE_MAX) {
			json_decref(m);
			return sg_err_set(err, SG_BAD_REQUEST,
			                  "metadata must map names (1..%d bytes) to strings of at most %d bytes",
			                  AUTH_APPROLE_META_KEY_MAX, AUTH_APPROLE_META_VALUE_MAX);
		}
		json_object_set(*out, k, val);
	}
	json_decref(m);
	return 0;
}

int auth_approle_secret_params_parse(const json_t *body, bool custom, struct auth_approle_secret_params *p,
                                struct sg_err *err)
{
	int rc;

	memset(p, 0, sizeof(*p));
	if (metadata_parse(body, &p->metadata, err) != 0)
		return -1;
	if (sg_json_list(body, "cidr_list", &p->cidr_list, err) < 0 ||
	    auth_cidrs_check(&p->cidr_list, "cidr_list", err) != 0 ||
	    sg_json_list(body, "token_bound_cidrs", &p->token_bound_cidrs, err) < 0 ||
	    auth_cidrs_check(&p->token_bound_cidrs, "token_bound_cidrs", err) != 0)
		return -1;
	if ((rc = sg_json_duration(body, "ttl", &p->ttl, err)) < 0)
		return -1;
	p->has_ttl = rc == 1 && p->ttl > 0;
	if ((rc = count_field(body, "num_uses", &p->num_uses, err)) < 0)
		return -1;
	p->has_num_uses = rc == 1 && p->num_uses > 0;
	if (custom) {
		if (sg_json_str(body, "secret_id", &p->secret_id, err) < 0)
			return -1;
		if (p->secret_id == NULL)
			p->secret_id = "";
		if (id_check("secret_id", p->secret_id, err) != 0)
			return -1;
	}
	return 0;
}

int auth_approle_secret_create(struct store *st, const char *prefix, const struct auth_approle_role *r,
                          const struct auth_approle_secret_params *p, char *secret_out, size_t cap,
                          struct auth_approle_secret *out, struct sg_err *err)
{
	struct auth_approle_secret s;
	struct store_batch *b = NULL;
	json_t *rec = NULL;
	char secret[AUTH_APPROLE_SECRET_MAX] = "", key[KEY_MAX];
	int64_t now = sg_now();
	int rc = -1;

	memset(&s, 0, sizeof(s));
	if (cap < AUTH_APPROLE_SECRET_MAX) {
		sg_err_set(err, SG_INTERNAL, "secret id buffer too small");
		goto out;
	}
	if (!r->bind_secret_id) {
		sg_err_set(err, SG_BAD_REQUEST, "bind_secret_id is not set on the role");
		goto out;
	}
	for (size_t i = 0; i < p->cidr_list.n; i++)
		if (!auth_cidr_within(p->cidr_list.v[i], &r->secret_id_bound_cidrs)) {
			sg_err_set(err, SG_BAD_REQUEST,
			           "failed to verify the CIDR restrictions set on the secret ID: %.64s is not within the role's "
			           "secret_id_bound_cidrs",
			           p->cidr_list.v[i]);
			goto out;
		}
	for (size_t i = 0; i < p->token_bound_cidrs.n; i++)
		if (!auth_cidr_within(p->token_bound_cidrs.v[i], &r->tf.bound_cidrs)) {
			sg_err_set(err, SG_BAD_REQUEST,
			           "failed to verify the token bound CIDR restrictions set on the secret ID: %.64s is not "
			           "within the role's token_bound_cidrs",
			           p->token_bound_cidrs.v[i]);
			goto out;
		}
	s.ttl = r->secret_id_ttl;
	if (p->has_ttl) {
		if (r->secret_id_ttl > 0 && p->ttl > r->secret_id_ttl) {
			sg_err_set(err, SG_BAD_REQUEST, "ttl cannot be longer than the role's secret_id_ttl");
			goto out;
		}
		s.ttl = p->ttl;
	}
	s.num_uses = r->secret_id_num_uses;
	if (p->has_num_uses) {
		if (r->secret_id_num_uses > 0 && p->num_uses > r->secret_id_num_uses) {
			sg_err_set(err, SG_BAD_REQUEST, "num_uses cannot be higher than the role's secret_id_num_uses");
			goto out;
		}
		s.num_uses = p->num_uses;
	}
	if (p->secret_id != NULL)
		snprintf(secret, sizeof(secret), "%s", p->secret_id);
	else
		sg_uuid(secret);
	sg_uuid(s.accessor);
	if (secret_hash(r->hmac_key, secret, s.hash, err) != 0)
		goto out;
	sg_strlist_copy(&s.cidr_list, &p->cidr_list);
	sg_strlist_copy(&s.token_bound_cidrs, &p->token_bound_cidrs);
	s.metadata = p->metadata != NULL ? json_deep_copy(p->metadata) : json_object();
	s.creation_time = now;
	s.last_updated_time = now;
	s.expiration_time = s.ttl > 0 ? now + s.ttl : 0;

	b = store_batch_new();
	rec = secret_record(&s);
	if (key_make(key, sizeof(key), err, "%ssid/%s/%s", prefix, r->name, s.hash) != 0)
		goto out;
	{
		char *text = dump(rec);

		/* put_new: a custom secret id that exists already is refused, not replaced. */
		store_batch_put_new(b, STORE_AUTH, key, strlen(key), text, strlen(text));
		free(text);
	}
	if (key_make(key, sizeof(key), err, "%ssidacc/%s/%s", prefix, r->name, s.accessor) != 0)
		goto out;
	store_batch_put_new(b, STORE_AUTH, key, strlen(key), s.hash, strlen(s.hash));
	if (store_commit(st, b, err) != 0) {
		if (err != NULL && err->code == SG_CONFLICT) {
			err->code = SG_BAD_REQUEST;
			snprintf(err->detail, sizeof(err->detail), "SecretID is already registered");
		}
		goto out;
	}
	snprintf(secret_out, cap, "%s", secret);
	if (out != NULL) {
		*out = s;
		memset(&s, 0, sizeof(s));
	}
	rc = 0;
out:
	OPENSSL_cleanse(secret, sizeof(secret));
	json_decref(rec);
	store_batch_free(b);
	auth_approle_secret_clear(&s);
	return rc;
}

/* Loads the record of a secret id hash; checks the stored hash against it in constant time. 1/0/-1. */
static int secret_load(struct store *st, const char *prefix, const char *name, const char *hash,
                       struct auth_approle_secret *out, struct sg_err *err)
{
	char key[KEY_MAX];
	json_t *j = NULL;
	int got;

	if (key_make(key, sizeof(key), err, "%ssid/%s/%s", prefix, name, hash) != 0)
		return -1;
	got = load_json(st, key, &j, err);
	if (got <= 0)
		return got;
	if (secret_decode(j, out, err) != 0) {
		json_decref(j);
		return -1;
	}
	json_decref(j);
	if (!sg_ct_equal(out->hash, strlen(out->hash), hash, strlen(hash))) {
		auth_approle_secret_clear(out);
		return 0;
	}
	return 1;
}

static void secret_batch_delete(struct store_batch *b, const char *prefix, const char *name,
                                const struct auth_approle_secret *s)
{
	char key[KEY_MAX];

	if (snprintf(key, sizeof(key), "%ssid/%s/%s", prefix, name, s->hash) < (int)sizeof(key))
		store_batch_del(b, STORE_AUTH, key, strlen(key));
	if (snprintf(key, sizeof(key), "%ssidacc/%s/%s", prefix, name, s->accessor) < (int)sizeof(key))
		store_batch_del(b, STORE_AUTH, key, strlen(key));
}

static int secret_delete(struct store *st, const char *prefix, const char *name, const struct auth_approle_secret *s,
                         struct sg_err *err)
{
	struct store_batch *b = store_batch_new();
	int rc;

	secret_batch_delete(b, prefix, name, s);
	rc = store_commit(st, b, err);
	store_batch_free(b);
	return rc;
}

static bool secret_expired(const struct auth_approle_secret *s, int64_t now)
{
	return s->expiration_time != 0 && now >= s->expiration_time;
}

int auth_approle_secret_lookup(struct store *st, const char *prefix, const struct auth_approle_role *r,
                               const char *secret_id, struct auth_approle_secret *out, struct sg_err *err)
{
	char hash[HEX_SHA256 + 1];
	int got;

	if (secret_hash(r->hmac_key, secret_id, hash, err) != 0)
		return -1;
	got = secret_load(st, prefix, r->name, hash, out, err);
	if (got == 1 && secret_expired(out, sg_now())) {
		auth_approle_secret_clear(out);
		return 0;
	}
	return got;
}

static int accessor_hash(struct store *st, const char *prefix, const char *name, const char *accessor,
                         char hash[HEX_SHA256 + 1], struct sg_err *err)
{
	char key[KEY_MAX];
	unsigned char *val = NULL;
	size_t len = 0;
	int got;

	if (strlen(accessor) == 0 || strlen(accessor) > 64 || strchr(accessor, '/') != NULL)
		return 0;
	if (key_make(key, sizeof(key), err, "%ssidacc/%s/%s", prefix, name, accessor) != 0)
		return -1;
	got = store_get(st, STORE_AUTH, key, strlen(key), &val, &len, err);
	if (got <= 0)
		return got;
	if (len != HEX_SHA256) {
		free(val);
		return sg_err_set(err, SG_STORAGE, "corrupt AppRole accessor record");
	}
	memcpy(hash, val, HEX_SHA256);
	hash[HEX_SHA256] = '\0';
	free(val);
	return 1;
}

int auth_approle_secret_lookup_accessor(struct store *st, const char *prefix, const struct auth_approle_role *r,
                                   const char *accessor, struct auth_approle_secret *out, struct sg_err *err)
{
	char hash[HEX_SHA256 + 1];
	int got = accessor_hash(st, prefix, r->name, accessor, hash, err);

	if (got <= 0)
		return got;
	got = secret_load(st, prefix, r->name, hash, out, err);
	if (got == 1 && secret_expired(out, sg_now())) {
		auth_approle_secret_clear(out);
		return 0;
	}
	return got;
}

int auth_approle_secret_destroy(struct store *st, const char *prefix, const struct auth_approle_role *r,
                                const char *secret_id, struct sg_err *err)
{
	struct auth_approle_secret s;
	char hash[HEX_SHA256 + 1];
	int got;

	memset(&s, 0, sizeof(s));
	if (secret_hash(r->hmac_key, secret_id, hash, err) != 0)
		return -1;
	pthread_mutex_lock(&secret_mu);
	got = secret_load(st, prefix, r->name, hash, &s, err);
	if (got == 1 && secret_delete(st, prefix, r->name, &s, err) != 0)
		got = -1;
	pthread_mutex_unlock(&secret_mu);
	auth_approle_secret_clear(&s);
	return got;
}

int auth_approle_secret_destroy_accessor(struct store *st, const char *prefix, const struct auth_approle_role *r,
                                    const char *accessor, struct sg_err *err)
{
	struct auth_approle_secret s;
	char hash[HEX_SHA256 + 1];
	int got;

	memset(&s, 0, sizeof(s));
	pthread_mutex_lock(&secret_mu);
	got = accessor_hash(st, prefix, r->name, accessor, hash, err);
	if (got == 1)
		got = secret_load(st, prefix, r->name, hash, &s, err);
	if (got == 1 && secret_delete(st, prefix, r->name, &s, err) != 0)
		got = -1;
	pthread_mutex_unlock(&secret_mu);
	auth_approle_secret_clear(&s);
	return got;
}

int auth_approle_secret_list(struct store *st, const char *prefix, const char *name, struct sg_strlist *out,
                        struct sg_err *err)
{
	char key[KEY_MAX];

	if (key_make(key, sizeof(key), err, "%ssidacc/%s/", prefix, name) != 0)
		return -1;
	return list_prefix(st, key, out, err);
}

struct tidy_ctx {
	struct store_batch *b;
	const char *prefix;
	size_t plen;
	int64_t now;
	uint64_t count;
};

static int tidy_cb(void *arg, const char *key, size_t klen, const void *val, size_t vlen)
{
	struct tidy_ctx *tc = arg;
	struct auth_approle_secret s;
	struct sg_err e;
	const char *rest = key + tc->plen, *slash;
	json_t *j;
	char name[AUTH_APPROLE_NAME_MAX + 1], k[KEY_MAX];

	memset(&s, 0, sizeof(s));
	sg_err_init(&e);
	slash = memchr(rest, '/', klen - tc->plen);
	if (slash == NULL || (size_t)(slash - rest) > AUTH_APPROLE_NAME_MAX)
		return 0;
	snprintf(name, sizeof(name), "%.*s", (int)(slash - rest), rest);
	j = vlen <= AUTH_APPROLE_RECORD_MAX ? json_loadb(val, vlen, 0, NULL) : NULL;
	if (j != NULL && secret_decode(j, &s, &e) == 0 && secret_expired(&s, tc->now)) {
		store_batch_del(tc->b, STORE_AUTH, key, klen);
		if (snprintf(k, sizeof(k), "%ssidacc/%s/%s", tc->prefix, name, s.accessor) < (int)sizeof(k))
			store_batch_del(tc->b, STORE_AUTH, k, strlen(k));
		tc->count++;
	}
	json_decref(j);
	auth_approle_secret_clear(&s);
	/* One commit stays under the batch cap; the next tidy continues. */
	return tc->count >= STORE_MAX_BATCH_OPS / 4 ? 1 : 0;
}

int auth_approle_tidy(struct store *st, const char *prefix, uint64_t *count, struct sg_err *err)
{
	struct tidy_ctx tc;
	char key[KEY_MAX];
	int rc = -1;

	memset(&tc, 0, sizeof(tc));
	*count = 0;
	if (key_make(key, sizeof(key), err, "%ssid/", prefix) != 0)
		return -1;
	tc.b = store_batch_new();
	tc.prefix = prefix;
	tc.plen = strlen(key);
	tc.now = sg_now();
	pthread_mutex_lock(&secret_mu);
	if (store_scan(st, STORE_AUTH, key, NULL, 0, tidy_cb, &tc, err) < 0)
		goto out;
	if (tc.count > 0 && store_commit(st, tc.b, err) != 0)
		goto out;
	*count = tc.count;
	rc = 0;
out:
	pthread_mutex_unlock(&secret_mu);
	store_batch_free(tc.b);
	return rc;
}

/* ---- Login ---- */

void auth_approle_login_result_clear(struct auth_approle_login_result *l)
{
	if (l == NULL)
		return;
	auth_approle_role_clear(&l->role);
	json_decref(l->metadata);
	l->metadata = NULL;
	sg_strlist_clear(&l->token_bound_cidrs);
}

#define INVALID_CREDS "invalid role or secret ID"

/*
 * Checks and counts one use of a secret id (under secret_mu). The secret
 * id's metadata and token CIDRs go to out.
 */
static int secret_use(struct store *st, const char *prefix, const struct auth_approle_role *r, const char *secret_id,
                      const char *remote_addr, struct auth_approle_login_result *out, struct sg_err *err)
{
	struct auth_approle_secret s;
	struct store_batch *b = NULL;
	char hash[HEX_SHA256 + 1], host[ADDR_TEXT_MAX], key[KEY_MAX];
	int64_t now = sg_now();
	json_t *rec = NULL;
	int rc = -1, got;

	memset(&s, 0, sizeof(s));
	if (secret_hash(r->hmac_key, secret_id, hash, err) != 0)
		return -1;
	pthread_mutex_lock(&secret_mu);
	got = secret_load(st, prefix, r->name, hash, &s, err);
	if (got < 0)
		goto out;
	if (got == 0) {
		sg_err_set(err, SG_BAD_REQUEST, INVALID_CREDS);
		goto out;
	}
	if (secret_expired(&s, now)) {
		/* Only the holder of the secret id learns it expired; it is gone afterwards. */
		struct sg_err ignored;

		sg_err_init(&ignored);
		(void)secret_delete(st, prefix, r->name, &s, &ignored); /* if this fails, tidy/secret-id removes it */
		sg_err_set(err, SG_BAD_REQUEST, INVALID_CREDS ": the secret ID has expired");
		goto out;
	}
	/* The secret id's CIDRs must still lie inside the role's (the role may have narrowed since). */
	for (size_t i = 0; i < s.cidr_list.n; i++)
		if (!auth_cidr_within(s.cidr_list.v[i], &r->secret_id_bound_cidrs)) {
			sg_err_set(err, SG_BAD_REQUEST,
			           "failed to verify the CIDR restrictions set on the secret ID: they are not a subset of the "
			           "role's");
			goto out;
		}
	if (!auth_cidr_allowed(&s.cidr_list, remote_addr)) {
		addr_host(remote_addr, host, sizeof(host));
		sg_err_set(err, SG_BAD_REQUEST, "source address \"%s\" unauthorized by CIDR restrictions on the secret ID",
		           host);
		goto out;
	}
	if (!auth_cidr_allowed(&r->secret_id_bound_cidrs, remote_addr)) {
		addr_host(remote_addr, host, sizeof(host));
		sg_err_set(err, SG_BAD_REQUEST, "source address \"%s\" unauthorized by CIDR restrictions on the role",
		           host);
		goto out;
	}
	if (s.num_uses > 0) {
		b = store_batch_new();
		if (s.num_uses == 1) {
			/* The last use deletes the secret id: the next login with it fails. */
			secret_batch_delete(b, prefix, r->name, &s);
		} else {
			s.num_uses--;
			s.last_updated_time = now;
			rec = secret_record(&s);
			if (key_make(key, sizeof(key), err, "%ssid/%s/%s", prefix, r->name, s.hash) != 0)
				goto out;
			batch_put_json(b, key, rec);
		}
		if (store_commit(st, b, err) != 0)
			goto out;
	}
	json_decref(out->metadata);
	out->metadata = json_deep_copy(s.metadata);
	sg_strlist_clear(&out->token_bound_cidrs);
	sg_strlist_copy(&out->token_bound_cidrs, &s.token_bound_cidrs);
	rc = 0;
out:
	pthread_mutex_unlock(&secret_mu);
	json_decref(rec);
	store_batch_free(b);
	auth_approle_secret_clear(&s);
	return rc;
}

int auth_approle_login(struct store *st, const char *prefix, const char *role_id, const char *secret_id,
                  const char *remote_addr, struct auth_approle_login_result *out, struct sg_err *err)
{
	char *name = NULL, host[ADDR_TEXT_MAX];
	int rc = -1, got;

	memset(out, 0, sizeof(*out));
	auth_approle_role_init(&out->role);
	if (role_id == NULL || *role_id == '\0') {
		sg_err_set(err, SG_BAD_REQUEST, "missing role_id");
		goto out;
	}
	if (strlen(role_id) > AUTH_APPROLE_ID_MAX) {
		sg_err_set(err, SG_BAD_REQUEST, INVALID_CREDS);
		goto out;
	}
	got = role_id_owner(st, prefix, role_id, &name, err);
	if (got < 0)
		goto out;
	if (got == 1)
		got = auth_approle_role_load(st, prefix, name, &out->role, err);
	if (got < 0)
		goto out;
	/* The index is keyed by a digest: confirm the role's id in constant time before trusting it. */
	if (got == 0 || !sg_ct_equal(out->role.role_id, strlen(out->role.role_id), role_id, strlen(role_id))) {
		sg_err_set(err, SG_BAD_REQUEST, INVALID_CREDS);
		goto out;
	}
	if (out->role.bind_secret_id) {
		if (secret_id == NULL || *secret_id == '\0') {
			sg_err_set(err, SG_BAD_REQUEST, "missing secret_id");
			goto out;
		}
		if (strlen(secret_id) > AUTH_APPROLE_ID_MAX) {
			sg_err_set(err, SG_BAD_REQUEST, INVALID_CREDS);
			goto out;
		}
		if (secret_use(st, prefix, &out->role, secret_id, remote_addr, out, err) != 0)
			goto out;
	} else if (!auth_cidr_allowed(&out->role.secret_id_bound_cidrs, remote_addr)) {
		addr_host(remote_addr, host, sizeof(host));
		sg_err_set(err, SG_BAD_REQUEST, "source address \"%s\" unauthorized by CIDR restrictions on the role",
		           host);
		goto out;
	}
	if (out->metadata == NULL)
		out->metadata = json_object();
	json_object_set_new(out->metadata, "role_name", json_string(out->role.name));
	if (out->token_bound_cidrs.n == 0)
		sg_strlist_copy(&out->token_bound_cidrs, &out->role.tf.bound_cidrs);
	rc = 0;
out:
	if (rc != 0)
		auth_approle_login_result_clear(out);
	free(name);
	return rc;
}
