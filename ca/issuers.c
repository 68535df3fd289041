/*
 * Issuers: records, references ("default", id, name), the per-mount loaded
 * state (certificates, chains, signers), mount AIA/cluster configuration,
 * root and intermediate generation, and PEM imports.
 */
#include "ca/internal.h"
#include "ca/parse.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

static const char *const all_usages[] = {"read-only", "issuing-certificates", "crl-signing", "ocsp-signing"};

/* ---------------- Plain structs ---------------- */

void ca_urls_clear(struct ca_urls *u)
{
	if (u == NULL)
		return;
	sg_strlist_clear(&u->issuing_certificates);
	sg_strlist_clear(&u->crl_distribution_points);
	sg_strlist_clear(&u->delta_crl_distribution_points);
	sg_strlist_clear(&u->ocsp_servers);
	u->enable_templating = false;
}

void ca_urls_copy(struct ca_urls *dst, const struct ca_urls *src)
{
	sg_strlist_copy(&dst->issuing_certificates, &src->issuing_certificates);
	sg_strlist_copy(&dst->crl_distribution_points, &src->crl_distribution_points);
	sg_strlist_copy(&dst->delta_crl_distribution_points, &src->delta_crl_distribution_points);
	sg_strlist_copy(&dst->ocsp_servers, &src->ocsp_servers);
	dst->enable_templating = src->enable_templating;
}

bool ca_urls_empty(const struct ca_urls *u)
{
	return u->issuing_certificates.n == 0 && u->crl_distribution_points.n == 0 &&
	       u->delta_crl_distribution_points.n == 0 && u->ocsp_servers.n == 0;
}

void ca_cluster_clear(struct ca_cluster *c)
{
	if (c == NULL)
		return;
	free(c->path);
	free(c->aia_path);
	c->path = c->aia_path = NULL;
}

void ca_issuer_info_clear(struct ca_issuer_info *i)
{
	if (i == NULL)
		return;
	free(i->name);
	X509_free(i->cert);
	sk_X509_pop_free(i->chain, X509_free);
	sg_strlist_clear(&i->usage);
	sg_strlist_clear(&i->manual_chain);
	ca_urls_clear(&i->urls);
	memset(i, 0, sizeof(*i));
}

void ca_ca_params_init(struct ca_ca_params *p)
{
	memset(p, 0, sizeof(*p));
	p->not_before_duration = -1;
	p->max_path_length = -1;
	p->key.type = CA_KEY_RSA;
	p->key.bits = 2048;
}

void ca_ca_params_clear(struct ca_ca_params *p)
{
	if (p == NULL)
		return;
	sg_strlist_clear(&p->alt_names);
	sg_strlist_clear(&p->ip_sans);
	sg_strlist_clear(&p->uri_sans);
	sg_strlist_clear(&p->other_sans);
	sg_strlist_clear(&p->ou);
	sg_strlist_clear(&p->organization);
	sg_strlist_clear(&p->country);
	sg_strlist_clear(&p->locality);
	sg_strlist_clear(&p->province);
	sg_strlist_clear(&p->street_address);
	sg_strlist_clear(&p->postal_code);
	sg_strlist_clear(&p->permitted_dns_domains);
}

void ca_gen_result_clear(struct ca_gen_result *r)
{
	if (r == NULL)
		return;
	X509_free(r->cert);
	X509_REQ_free(r->csr);
	free(r->issuer_name);
	free(r->key_name);
	free(r->serial);
	if (r->private_key_pem != NULL) {
		OPENSSL_cleanse(r->private_key_pem, strlen(r->private_key_pem));
		free(r->private_key_pem);
	}
	free(r->private_key_type);
	sg_strlist_clear(&r->warnings);
	memset(r, 0, sizeof(*r));
}

void ca_import_result_clear(struct ca_import_result *r)
{
	if (r == NULL)
		return;
	sg_strlist_clear(&r->imported_issuers);
	sg_strlist_clear(&r->imported_keys);
	sg_strlist_clear(&r->existing_issuers);
	sg_strlist_clear(&r->existing_keys);
	sg_strlist_clear(&r->mapping_issuers);
	sg_strlist_clear(&r->mapping_keys);
}

/* ---------------- URL lists ---------------- */

static int urls_list_decode(const json_t *o, const char *key, struct sg_strlist *l, struct sg_err *err)
{
	if (sg_json_list(o, key, l, err) < 0)
		return -1;
	if (l->n > CA_MAX_URLS)
		return sg_err_set(err, SG_BAD_REQUEST, "more than %d entries in %s", CA_MAX_URLS, key);
	return 0;
}

int ca_urls_decode_json(const json_t *o, struct ca_urls *u, struct sg_err *err)
{
	bool t = false;

	if (urls_list_decode(o, "issuing_certificates", &u->issuing_certificates, err) < 0 ||
	    urls_list_decode(o, "crl_distribution_points", &u->crl_distribution_points, err) < 0 ||
	    urls_list_decode(o, "delta_crl_distribution_points", &u->delta_crl_distribution_points, err) < 0 ||
	    urls_list_decode(o, "ocsp_servers", &u->ocsp_servers, err) < 0 ||
	    sg_json_bool(o, "enable_templating", &t, err) < 0)
		return -1;
	u->enable_templating = t;
	return 0;
}

json_t *ca_urls_encode_json(const struct ca_urls *u)
{
	json_t *o = json_object();

	json_object_set_new(o, "issuing_certificates", sg_strlist_to_json(&u->issuing_certificates));
	json_object_set_new(o, "crl_distribution_points", sg_strlist_to_json(&u->crl_distribution_points));
	json_object_set_new(o, "delta_crl_distribution_points", sg_strlist_to_json(&u->delta_crl_distribution_points));
	json_object_set_new(o, "ocsp_servers", sg_strlist_to_json(&u->ocsp_servers));
	json_object_set_new(o, "enable_templating", json_boolean(u->enable_templating));
	return o;
}

static int url_list_check(const struct sg_strlist *l, const char *what, bool templating, struct sg_err *err)
{
	if (l->n > CA_MAX_URLS)
		return sg_err_set(err, SG_BAD_REQUEST, "more than %d entries in %s", CA_MAX_URLS, what);
	for (size_t i = 0; i < l->n; i++) {
		const char *s = l->v[i];
		size_t n = strlen(s);

		if (n == 0 || n > CA_MAX_URL_LEN)
			return sg_err_set(err, SG_BAD_REQUEST, "invalid URL in %s", what);
		for (size_t j = 0; j < n; j++)
			if ((unsigned char)s[j] <= 0x20 || (unsigned char)s[j] > 0x7e)
				return sg_err_set(err, SG_BAD_REQUEST, "invalid URL in %s: '%.64s'", what, s);
		/* A templated URL gets its scheme from {{cluster_path}}. */
		if (strstr(s, "://") == NULL && !(templating && strncmp(s, "{{", 2) == 0))
			return sg_err_set(err, SG_BAD_REQUEST, "invalid URL in %s: '%.64s' has no scheme", what, s);
	}
	return 0;
}

static int urls_check(const struct ca_urls *u, struct sg_err *err)
{
	bool t = u->enable_templating;

	return (url_list_check(&u->issuing_certificates, "issuing_certificates", t, err) < 0 ||
	        url_list_check(&u->crl_distribution_points, "crl_distribution_points", t, err) < 0 ||
	        url_list_check(&u->delta_crl_distribution_points, "delta_crl_distribution_points", t, err) < 0 ||
	        url_list_check(&u->ocsp_servers, "ocsp_servers", t, err) < 0)
	           ? -1
	           : 0;
}

/* ---------------- Issuer records ---------------- */

void ca_issuer_clear(struct ca_issuer *i)
{
	if (i == NULL)
		return;
	free(i->name);
	X509_free(i->cert);
	sk_X509_pop_free(i->chain, X509_free);
	ca_signer_release(i->signer);
	sg_strlist_clear(&i->usage);
	sg_strlist_clear(&i->manual_chain);
	ca_urls_clear(&i->urls);
	memset(i, 0, sizeof(*i));
}

static const char *behavior_name(enum ca_not_after_behavior b)
{
	return b == CA_NA_TRUNCATE ? "truncate" : b == CA_NA_PERMIT ? "permit" : "err";
}

static int behavior_parse(const char *s, enum ca_not_after_behavior *out)
{
	if (strcmp(s, "err") == 0)
		*out = CA_NA_ERR;
	else if (strcmp(s, "truncate") == 0)
		*out = CA_NA_TRUNCATE;
	else if (strcmp(s, "permit") == 0)
		*out = CA_NA_PERMIT;
	else
		return -1;
	return 0;
}

char *ca_issuer_encode(const struct ca_issuer *i)
{
	unsigned char *der = NULL;
	size_t dlen = 0;
	char *b64, *s;
	json_t *o = json_object();
	struct sg_err err;

	sg_err_init(&err);
	if (ca_x509_der(i->cert, &der, &dlen, &err) < 0)
		sg_die("unable to encode an issuer certificate");
	b64 = sg_base64(der, dlen);
	json_object_set_new(o, "id", json_string(i->id));
	json_object_set_new(o, "name", json_string(i->name != NULL ? i->name : ""));
	json_object_set_new(o, "key_id", json_string(i->key_id));
	json_object_set_new(o, "certificate", json_string(b64));
	json_object_set_new(o, "leaf_not_after_behavior", json_string(behavior_name(i->behavior)));
	json_object_set_new(o, "usage", sg_strlist_to_json(&i->usage));
	json_object_set_new(o, "manual_chain", sg_strlist_to_json(&i->manual_chain));
	json_object_set_new(o, "urls", ca_urls_encode_json(&i->urls));
	json_object_set_new(o, "revoked", json_boolean(i->revoked));
	json_object_set_new(o, "revocation_time", json_integer(i->revocation_time));
	json_object_set_new(o, "created", json_integer(i->created));
	s = json_dumps(o, JSON_COMPACT);
	if (s == NULL)
		sg_die("out of memory");
	json_decref(o);
	free(b64);
	free(der);
	return s;
}

static void cert_facts(struct ca_issuer *i)
{
	long pl;

	i->not_before = ca_asn1_time_unix(X509_get0_notBefore(i->cert));
	i->not_after = ca_asn1_time_unix(X509_get0_notAfter(i->cert));
	pl = X509_get_pathlen(i->cert);
	i->path_len = pl < 0 ? -1 : (int)pl;
	/* Fills OpenSSL's lazily cached extension data now, before threads share the X509. */
	(void)X509_check_purpose(i->cert, -1, 0);
}

int ca_issuer_decode(const void *val, size_t len, struct ca_issuer *out, struct sg_err *err)
{
	json_error_t je;
	json_t *o = json_loadb(val, len, 0, &je);
	const json_t *id, *name, *kid, *cert, *beh, *urls;
	unsigned char *der = NULL;
	const unsigned char *p;
	size_t dlen = 0;
	struct sg_err tmp;
	bool b = false;
	int64_t n = 0;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	sg_err_init(&tmp);
	if (o == NULL || !json_is_object(o))
		goto out;
	id = json_object_get(o, "id");
	name = json_object_get(o, "name");
	kid = json_object_get(o, "key_id");
	cert = json_object_get(o, "certificate");
	beh = json_object_get(o, "leaf_not_after_behavior");
	urls = json_object_get(o, "urls");
	if (!json_is_string(id) || json_string_length(id) != 36 || !json_is_string(cert))
		goto out;
	memcpy(out->id, json_string_value(id), 37);
	out->name = sg_xstrdup(json_is_string(name) ? json_string_value(name) : "");
	if (json_is_string(kid) && json_string_length(kid) == 36)
		memcpy(out->key_id, json_string_value(kid), 37);
	if (sg_base64_decode(json_string_value(cert), json_string_length(cert), &der, &dlen) < 0)
		goto out;
	p = der;
	out->cert = d2i_X509(NULL, &p, (long)dlen);
	if (out->cert == NULL || p != der + dlen)
		goto out;
	if (json_is_string(beh) && behavior_parse(json_string_value(beh), &out->behavior) < 0)
		goto out;
	if (sg_json_list(o, "usage", &out->usage, &tmp) < 0 || sg_json_list(o, "manual_chain", &out->manual_chain, &tmp) < 0)
		goto out;
	if (urls != NULL && ca_urls_decode_json(urls, &out->urls, &tmp) < 0)
		goto out;
	if (sg_json_bool(o, "revoked", &b, &tmp) < 0)
		goto out;
	out->revoked = b;
	if (sg_json_int(o, "revocation_time", &n, &tmp) < 0)
		goto out;
	out->revocation_time = n;
	n = 0;
	if (sg_json_int(o, "created", &n, &tmp) < 0)
		goto out;
	out->created = n;
	cert_facts(out);
	rc = 0;
out:
	if (rc < 0) {
		ERR_clear_error();
		ca_issuer_clear(out);
		sg_err_set(err, SG_STORAGE, "malformed issuer record");
	}
	free(der);
	json_decref(o);
	return rc;
}

/* A writable copy of the stored part of an issuer (no chain, no signer). */
static void issuer_copy_rec(struct ca_issuer *dst, const struct ca_issuer *src)
{
	memset(dst, 0, sizeof(*dst));
	memcpy(dst->id, src->id, sizeof(dst->id));
	memcpy(dst->key_id, src->key_id, sizeof(dst->key_id));
	dst->name = sg_xstrdup(src->name != NULL ? src->name : "");
	X509_up_ref(src->cert);
	dst->cert = src->cert;
	dst->behavior = src->behavior;
	sg_strlist_copy(&dst->usage, &src->usage);
	sg_strlist_copy(&dst->manual_chain, &src->manual_chain);
	ca_urls_copy(&dst->urls, &src->urls);
	dst->revoked = src->revoked;
	dst->revocation_time = src->revocation_time;
	dst->created = src->created;
	cert_facts(dst);
}

static void issuer_put(struct store_batch *b, const char *mount_id, const struct ca_issuer *i)
{
	char key[CA_MAX_STORE_KEY];
	char *v = ca_issuer_encode(i);

	ca_skey(key, sizeof(key), mount_id, i->id);
	store_batch_put(b, STORE_ISSUERS, key, strlen(key), v, strlen(v));
	free(v);
}

/* ---------------- Mount configuration records ---------------- */

static int config_get(struct ca *ca, const char *mount_id, const char *name, json_t **out, struct sg_err *err)
{
	char key[CA_MAX_STORE_KEY];
	unsigned char *v = NULL;
	size_t len = 0;
	json_error_t je;
	int rc;

	*out = NULL;
	ca_skey(key, sizeof(key), mount_id, name);
	rc = store_get(ca->st, STORE_CONFIG, key, strlen(key), &v, &len, err);
	if (rc <= 0)
		return rc;
	*out = json_loadb((const char *)v, len, 0, &je);
	free(v);
	if (*out == NULL || !json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return sg_err_set(err, SG_STORAGE, "malformed config record %s", name);
	}
	return 1;
}

static void config_put(struct store_batch *b, const char *mount_id, const char *name, json_t *o)
{
	char key[CA_MAX_STORE_KEY];
	char *s = json_dumps(o, JSON_COMPACT);

	if (s == NULL)
		sg_die("out of memory");
	ca_skey(key, sizeof(key), mount_id, name);
	store_batch_put(b, STORE_CONFIG, key, strlen(key), s, strlen(s));
	free(s);
}

static void issuers_config_put(struct store_batch *b, const char *mount_id, const char *def, bool follows)
{
	json_t *o = json_pack("{s:s,s:b}", "default", def, "default_follows_latest_issuer", follows);

	config_put(b, mount_id, "issuers", o);
	json_decref(o);
}

/* ---------------- Loading a mount ---------------- */

void ca_mstate_free(struct ca_mstate *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n; i++)
		ca_issuer_clear(&s->issuers[i]);
	free(s->issuers);
	ca_urls_clear(&s->urls);
	free(s->cluster_path);
	free(s->cluster_aia_path);
	free(s);
}

struct scan_ctx {
	struct ca_mstate *s;
	struct sg_err *err;
};

static int issuer_scan_cb(void *arg, const char *key, size_t klen, const void *val, size_t vlen)
{
	struct scan_ctx *c = arg;

	(void)key;
	(void)klen;
	if (c->s->n >= CA_MAX_ISSUERS_PER_MOUNT) {
		sg_err_set(c->err, SG_STORAGE, "more than %d issuers in one mount", CA_MAX_ISSUERS_PER_MOUNT);
		return -1;
	}
	c->s->issuers = sg_xrealloc(c->s->issuers, (c->s->n + 1) * sizeof(*c->s->issuers));
	if (ca_issuer_decode(val, vlen, &c->s->issuers[c->s->n], c->err) < 0)
		return -1;
	c->s->n++;
	return 0;
}

static int by_created(const void *a, const void *b)
{
	const struct ca_issuer *x = a, *y = b;

	if (x->created != y->created)
		return x->created < y->created ? -1 : 1;
	return strcmp(x->id, y->id);
}

static int find_index(const struct ca_mstate *s, const char *id)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->issuers[i].id, id) == 0)
			return (int)i;
	return -1;
}

/* RFC 5280 6.1: the parent's subject names the child's issuer, and its key verifies the signature. */
static bool signed_by(X509 *child, X509 *parent)
{
	EVP_PKEY *pk = X509_get0_pubkey(parent);
	bool ok = pk != NULL && X509_check_issued(parent, child) == X509_V_OK && X509_verify(child, pk) == 1;

	ERR_clear_error();
	return ok;
}

static void build_chain(struct ca_mstate *s, size_t idx)
{
	struct ca_issuer *iss = &s->issuers[idx];
	bool *seen = sg_xcalloc(s->n, sizeof(*seen));
	size_t cur = idx;

	iss->chain = sk_X509_new_null();
	if (iss->chain == NULL)
		sg_die("out of memory");
	X509_up_ref(iss->cert);
	sk_X509_push(iss->chain, iss->cert);
	if (iss->manual_chain.n > 0) {
		for (size_t i = 0; i < iss->manual_chain.n && sk_X509_num(iss->chain) < CA_MAX_CHAIN; i++) {
			int j = find_index(s, iss->manual_chain.v[i]);

			if (j < 0 || (size_t)j == idx)
				continue;
			X509_up_ref(s->issuers[j].cert);
			sk_X509_push(iss->chain, s->issuers[j].cert);
		}
		free(seen);
		return;
	}
	seen[idx] = true;
	while (sk_X509_num(iss->chain) < CA_MAX_CHAIN) {
		X509 *c = s->issuers[cur].cert;
		size_t next = s->n;

		if (X509_self_signed(c, 0) == 1)
			break;
		for (size_t j = 0; j < s->n; j++) {
			if (!seen[j] && signed_by(c, s->issuers[j].cert)) {
				next = j;
				break;
			}
		}
		if (next == s->n)
			break;
		seen[next] = true;
		X509_up_ref(s->issuers[next].cert);
		sk_X509_push(iss->chain, s->issuers[next].cert);
		cur = next;
	}
	ERR_clear_error();
	free(seen);
}

static int load_signers(struct ca *ca, struct ca_mstate *s, struct sg_err *err)
{
	for (size_t i = 0; i < s->n; i++) {
		struct ca_issuer *iss = &s->issuers[i];
		struct ca_key_rec rec = {0};
		struct sg_err tmp;
		EVP_PKEY *k;

		if (iss->key_id[0] == '\0')
			continue;
		for (size_t j = 0; j < i && iss->signer == NULL; j++)
			if (strcmp(s->issuers[j].key_id, iss->key_id) == 0 && s->issuers[j].signer != NULL)
				iss->signer = ca_signer_up_ref(s->issuers[j].signer);
		if (iss->signer != NULL)
			continue;
		sg_err_init(&tmp);
		if (ca_key_rec_get(ca, s->mount_id, iss->key_id, &rec, &tmp) < 0) {
			if (tmp.code == SG_NOT_FOUND)
				continue; /* the key went away: the issuer can still be read, not sign */
			*err = tmp;
			return -1;
		}
		k = ca_key_rec_open(ca, s->mount_id, &rec, err);
		ca_key_rec_clear(&rec);
		if (k == NULL)
			return -1;
		if ((iss->signer = ca_signer_mem_new(k, err)) == NULL)
			return -1;
	}
	return 0;
}

int ca_state_load(struct ca *ca, const char *mount_id, struct ca_mstate **out, struct sg_err *err)
{
	struct ca_mstate *s = sg_xcalloc(1, sizeof(*s));
	struct scan_ctx c = {s, err};
	char prefix[CA_MAX_STORE_KEY];
	json_t *o = NULL;
	const json_t *v;
	int rc, ret = -1;

	atomic_init(&s->refs, 1);
	snprintf(s->mount_id, sizeof(s->mount_id), "%s", mount_id);
	ca_skey(prefix, sizeof(prefix), mount_id, "");
	if (store_scan(ca->st, STORE_ISSUERS, prefix, NULL, 0, issuer_scan_cb, &c, err) < 0)
		goto out;
	if (s->n > 1)
		qsort(s->issuers, s->n, sizeof(*s->issuers), by_created);

	if ((rc = config_get(ca, mount_id, "issuers", &o, err)) < 0)
		goto out;
	if (rc == 1) {
		v = json_object_get(o, "default");
		if (json_is_string(v) && json_string_length(v) == 36 && find_index(s, json_string_value(v)) >= 0)
			memcpy(s->default_id, json_string_value(v), 37);
		s->follows_latest = json_is_true(json_object_get(o, "default_follows_latest_issuer"));
	}
	json_decref(o);
	o = NULL;
	if ((rc = config_get(ca, mount_id, "urls", &o, err)) < 0)
		goto out;
	if (rc == 1 && ca_urls_decode_json(o, &s->urls, err) < 0)
		goto out;
	json_decref(o);
	o = NULL;
	if ((rc = config_get(ca, mount_id, "cluster", &o, err)) < 0)
		goto out;
	if (rc == 1) {
		v = json_object_get(o, "path");
		if (json_is_string(v) && json_string_length(v) > 0)
			s->cluster_path = sg_xstrdup(json_string_value(v));
		v = json_object_get(o, "aia_path");
		if (json_is_string(v) && json_string_length(v) > 0)
			s->cluster_aia_path = sg_xstrdup(json_string_value(v));
	}
	json_decref(o);
	o = NULL;

	if (load_signers(ca, s, err) < 0)
		goto out;
	for (size_t i = 0; i < s->n; i++)
		build_chain(s, i);
	*out = s;
	s = NULL;
	ret = 0;
out:
	json_decref(o);
	ca_mstate_free(s);
	return ret;
}

const struct ca_issuer *ca_state_find(const struct ca_mstate *s, const char *ref, struct sg_err *err)
{
	int i;

	if (ref == NULL || ref[0] == '\0' || strcmp(ref, "default") == 0) {
		if (s->default_id[0] == '\0') {
			sg_err_set(err, SG_UNKNOWN_ISSUER, "no default issuer currently configured");
			return NULL;
		}
		ref = s->default_id;
	}
	if ((i = find_index(s, ref)) >= 0)
		return &s->issuers[i];
	for (size_t j = 0; j < s->n; j++)
		if (s->issuers[j].name != NULL && s->issuers[j].name[0] != '\0' && strcmp(s->issuers[j].name, ref) == 0)
			return &s->issuers[j];
	sg_err_set(err, SG_UNKNOWN_ISSUER, "unable to find PKI issuer for reference: %.128s", ref);
	return NULL;
}

const struct ca_issuer *ca_state_find_signer_of(const struct ca_mstate *s, X509 *cert)
{
	for (size_t i = 0; i < s->n; i++)
		if (signed_by(cert, s->issuers[i].cert))
			return &s->issuers[i];
	return NULL;
}

/* Replaces every "{{name}}" in in; -1 when a placeholder has no value. */
static int expand_one(const char *in, const char *issuer_id, const char *path, const char *aia, char **out)
{
	const struct {
		const char *tag;
		const char *val;
	} subs[] = {{"{{issuer_id}}", issuer_id}, {"{{cluster_path}}", path}, {"{{cluster_aia_path}}", aia}};
	size_t cap = strlen(in) + 1, n = 0;
	char *o = sg_xmalloc(cap);

	while (*in) {
		bool hit = false;

		for (size_t k = 0; k < sizeof(subs) / sizeof(subs[0]); k++) {
			size_t tl = strlen(subs[k].tag), vl;

			if (strncmp(in, subs[k].tag, tl) != 0)
				continue;
			if (subs[k].val == NULL) {
				free(o);
				return -1;
			}
			vl = strlen(subs[k].val);
			cap += vl;
			o = sg_xrealloc(o, cap);
			memcpy(o + n, subs[k].val, vl);
			n += vl;
			in += tl;
			hit = true;
			break;
		}
		if (!hit)
			o[n++] = *in++;
	}
	o[n] = '\0';
	*out = o;
	return 0;
}

static int expand_list(struct sg_strlist *l, const char *issuer_id, const char *path, const char *aia,
                       struct sg_err *err)
{
	for (size_t i = 0; i < l->n; i++) {
		char *e = NULL;

		if (expand_one(l->v[i], issuer_id, path, aia, &e) < 0)
			return sg_err_set(err, SG_BAD_REQUEST,
			                  "AIA URL templating needs config/cluster 'path' (and 'aia_path'): '%.64s'", l->v[i]);
		free(l->v[i]);
		l->v[i] = e;
	}
	return 0;
}

int ca_state_urls_for(const struct ca_mstate *s, const struct ca_issuer *iss, struct ca_urls *out,
                      struct sg_err *err)
{
	const struct ca_urls *src = (iss != NULL && !ca_urls_empty(&iss->urls)) ? &iss->urls : &s->urls;
	const char *aia = s->cluster_aia_path != NULL ? s->cluster_aia_path : s->cluster_path;
	const char *id = iss != NULL ? iss->id : NULL;

	memset(out, 0, sizeof(*out));
	ca_urls_copy(out, src);
	if (!src->enable_templating)
		return 0;
	if (expand_list(&out->issuing_certificates, id, s->cluster_path, aia, err) < 0 ||
	    expand_list(&out->crl_distribution_points, id, s->cluster_path, aia, err) < 0 ||
	    expand_list(&out->delta_crl_distribution_points, id, s->cluster_path, aia, err) < 0 ||
	    expand_list(&out->ocsp_servers, id, s->cluster_path, aia, err) < 0) {
		ca_urls_clear(out);
		return -1;
	}
	return 0;
}

void ca_issuer_info_fill(const struct ca_mstate *s, const struct ca_issuer *i, struct ca_issuer_info *out)
{
	memset(out, 0, sizeof(*out));
	memcpy(out->id, i->id, sizeof(out->id));
	memcpy(out->key_id, i->key_id, sizeof(out->key_id));
	out->name = sg_xstrdup(i->name != NULL ? i->name : "");
	X509_up_ref(i->cert);
	out->cert = i->cert;
	out->chain = X509_chain_up_ref(i->chain);
	if (out->chain == NULL)
		sg_die("out of memory");
	out->leaf_not_after_behavior = i->behavior;
	sg_strlist_copy(&out->usage, &i->usage);
	sg_strlist_copy(&out->manual_chain, &i->manual_chain);
	ca_urls_copy(&out->urls, &i->urls);
	out->revoked = i->revoked;
	out->revocation_time = i->revocation_time;
	out->is_default = strcmp(s->default_id, i->id) == 0;
}

/* ---------------- Issuer API ---------------- */

int ca_issuer_get(struct ca *ca, const struct ca_mount *m, const char *ref, struct ca_issuer_info *out,
                  struct sg_err *err)
{
	struct ca_mstate *s = NULL;
	const struct ca_issuer *i;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (ca_mount_check(m, err) < 0 || ca_state_get(ca, m->id, &s, err) < 0)
		return -1;
	if ((i = ca_state_find(s, ref, err)) != NULL) {
		ca_issuer_info_fill(s, i, out);
		rc = 0;
	}
	ca_state_release(s);
	return rc;
}

int ca_issuer_list(struct ca *ca, const struct ca_mount *m, struct ca_issuer_info **out, size_t *n,
                   struct sg_err *err)
{
	struct ca_mstate *s = NULL;

	*out = NULL;
	*n = 0;
	if (ca_mount_check(m, err) < 0 || ca_state_get(ca, m->id, &s, err) < 0)
		return -1;
	if (s->n > 0)
		*out = sg_xcalloc(s->n, sizeof(**out));
	for (size_t i = 0; i < s->n; i++)
		ca_issuer_info_fill(s, &s->issuers[i], &(*out)[i]);
	*n = s->n;
	ca_state_release(s);
	return 0;
}

int ca_issuer_signer_get(struct ca *ca, const struct ca_mount *m, const char *ref, struct ca_signer **out,
                         struct ca_issuer_info *info, struct sg_err *err)
{
	struct ca_mstate *s = NULL;
	const struct ca_issuer *i;
	int rc = -1;

	*out = NULL;
	if (info != NULL)
		memset(info, 0, sizeof(*info));
	if (ca_mount_check(m, err) < 0 || ca_state_get(ca, m->id, &s, err) < 0)
		return -1;
	if ((i = ca_state_find(s, ref, err)) == NULL)
		goto out;
	if (i->signer == NULL) {
		sg_err_set(err, SG_BAD_REQUEST, "issuer %s has no private key in this mount", i->id);
		goto out;
	}
	*out = ca_signer_up_ref(i->signer);
	if (info != NULL)
		ca_issuer_info_fill(s, i, info);
	rc = 0;
out:
	ca_state_release(s);
	return rc;
}

static bool name_taken(const struct ca_mstate *s, const char *name, const char *except_id)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->issuers[i].name != NULL && strcmp(s->issuers[i].name, name) == 0 &&
		    (except_id == NULL || strcmp(s->issuers[i].id, except_id) != 0))
			return true;
	return false;
}

static int usage_check(const struct sg_strlist *u, struct sg_err *err)
{
	for (size_t i = 0; i < u->n; i++) {
		bool ok = false;

		for (size_t k = 0; k < sizeof(all_usages) / sizeof(all_usages[0]); k++)
			ok = ok || strcmp(u->v[i], all_usages[k]) == 0;
		if (!ok)
			return sg_err_set(err, SG_BAD_REQUEST,
			                  "unknown issuer usage '%.64s' (read-only, issuing-certificates, crl-signing, "
			                  "ocsp-signing)",
			                  u->v[i]);
	}
	return 0;
}

int ca_issuer_update(struct ca *ca, const struct ca_mount *m, const char *ref, const struct ca_issuer_info *in,
                     struct sg_err *err)
{
	struct ca_mstate *s = NULL;
	const struct ca_issuer *cur;
	struct ca_issuer rec = {0};
	struct store_batch *b = NULL;
	int rc = -1;

	if (ca_mount_check(m, err) < 0)
		return -1;
	if ((in->name != NULL && in->name[0] != '\0' && ca_name_check("issuer_name", in->name, err) < 0) ||
	    usage_check(&in->usage, err) < 0 || urls_check(&in->urls, err) < 0)
		return -1;
	if (in->manual_chain.n > CA_MAX_CHAIN)
		return sg_err_set(err, SG_BAD_REQUEST, "manual_chain has more than %d entries", CA_MAX_CHAIN);
	pthread_mutex_lock(&ca->admin);
	if (ca_state_get(ca, m->id, &s, err) < 0 || (cur = ca_state_find(s, ref, err)) == NULL)
		goto out;
	if (in->name != NULL && in->name[0] != '\0' && name_taken(s, in->name, cur->id)) {
		sg_err_set(err, SG_BAD_REQUEST, "issuer name '%s' is already in use", in->name);
		goto out;
	}
	issuer_copy_rec(&rec, cur);
	free(rec.name);
	rec.name = sg_xstrdup(in->name != NULL ? in->name : "");
	rec.behavior = in->leaf_not_after_behavior;
	sg_strlist_copy(&rec.usage, &in->usage);
	ca_urls_clear(&rec.urls);
	ca_urls_copy(&rec.urls, &in->urls);
	sg_strlist_clear(&rec.manual_chain);
	for (size_t i = 0; i < in->manual_chain.n; i++) {
		/* Stored as ids, so renames do not break the chain. */
		const struct ca_issuer *c = ca_state_find(s, in->manual_chain.v[i], err);

		if (c == NULL)
			goto out;
		sg_strlist_add(&rec.manual_chain, c->id);
	}
	b = store_batch_new();
	issuer_put(b, m->id, &rec);
	if (store_commit(ca->st, b, err) < 0)
		goto out;
	ca_state_invalidate(ca, m->id);
	rc = 0;
out:
	pthread_mutex_unlock(&ca->admin);
	ca_state_release(s);
	ca_issuer_clear(&rec);
	store_batch_free(b);
	return rc;
}

int ca_issuer_delete(struct ca *ca, const struct ca_mount *m, const char *ref, struct sg_err *err)
{
	struct ca_mstate *s = NULL;
	const struct ca_issuer *cur;
	struct store_batch *b = NULL;
	char key[CA_MAX_STORE_KEY];
	int rc = -1;

	if (ca_mount_check(m, err) < 0)
		return -1;
	pthread_mutex_lock(&ca->admin);
	if (ca_state_get(ca, m->id, &s, err) < 0 || (cur = ca_state_find(s, ref, err)) == NULL)
		goto out;
	b = store_batch_new();
	ca_skey(key, sizeof(key), m->id, cur->id);
	store_batch_del(b, STORE_ISSUERS, key, strlen(key));
	if (strcmp(s->default_id, cur->id) == 0)
		issuers_config_put(b, m->id, "", s->follows_latest);
	if (store_commit(ca->st, b, err) < 0)
		goto out;
	ca_state_invalidate(ca, m->id);
	rc = 0;
out:
	pthread_mutex_unlock(&ca->admin);
	ca_state_release(s);
	store_batch_free(b);
	return rc;
}

int ca_issuers_config_get(struct ca *ca, const struct ca_mount *m, struct ca_issuers_config *out,
                          struct sg_err *err)
{
	struct ca_mstate *s = NULL;

	memset(out, 0, sizeof(*out));
	if (ca_mount_check(m, err) < 0 || ca_state_get(ca, m->id, &s, err) < 0)
		return -1;
	memcpy(out->default_id, s->default_id, sizeof(out->default_id));
	out->default_follows_latest_issuer = s->follows_latest;
	ca_state_release(s);
	return 0;
}

int ca_issuers_config_set(struct ca *ca, const struct ca_mount *m, const char *default_ref, bool follows,
                          struct sg_err *err)
{
	struct ca_mstate *s = NULL;
	const struct ca_issuer *i;
	struct store_batch *b = NULL;
	const char *def;
	int rc = -1;

	if (ca_mount_check(m, err) < 0)
		return -1;
	pthread_mutex_lock(&ca->admin);
	if (ca_state_get(ca, m->id, &s, err) < 0)
		goto out;
	def = s->default_id;
	if (default_ref != NULL) {
		if ((i = ca_state_find(s, default_ref, err)) == NULL)
			goto out;
		def = i->id;
	}
	b = store_batch_new();
	issuers_config_put(b, m->id, def, follows);
	if (store_commit(ca->st, b, err) < 0)
		goto out;
	ca_state_invalidate(ca, m->id);
	rc = 0;
out:
	pthread_mutex_unlock(&ca->admin);
	ca_state_release(s);
	store_batch_free(b);
	return rc;
}

int ca_issuer_set_default(struct ca *ca, const struct ca_mount *m, const char *ref, struct sg_err *err)
{
	struct ca_issuers_config c;

	if (ca_issuers_config_get(ca, m, &c, err) < 0)
		return -1;
	return ca_issuers_config_set(ca, m, ref, c.default_follows_latest_issuer, err);
}

int ca_issuers_delete_all(struct ca *ca, const struct ca_mount *m, struct sg_err *err)
{
	char prefix[CA_MAX_STORE_KEY], key[CA_MAX_STORE_KEY];
	struct store_batch *b;
	int rc;

	if (ca_mount_check(m, err) < 0)
		return -1;
	b = store_batch_new();
	ca_skey(prefix, sizeof(prefix), m->id, "");
	store_batch_del_prefix(b, STORE_ISSUERS, prefix);
	store_batch_del_prefix(b, STORE_KEYS, prefix);
	ca_skey(key, sizeof(key), m->id, "issuers");
	store_batch_del(b, STORE_CONFIG, key, strlen(key));
	ca_skey(key, sizeof(key), m->id, "keys");
	store_batch_del(b, STORE_CONFIG, key, strlen(key));
	pthread_mutex_lock(&ca->admin);
	rc = store_commit(ca->st, b, err);
	ca_state_invalidate(ca, m->id);
	pthread_mutex_unlock(&ca->admin);
	store_batch_free(b);
	return rc;
}

int ca_issuer_revoke(struct ca *ca, const struct ca_mount *m, const char *ref, struct ca_issuer_info *out,
                     struct sg_err *err)
{
	struct ca_mstate *s = NULL;
	const struct ca_issuer *cur, *parent = NULL;
	struct ca_issuer rec = {0};
	struct ca_revoked_rec rv = {0};
	struct ca_cert_record cr = {0};
	struct store_batch *b = NULL;
	bool fire = false;
	int have_rv = 0, have_cr = 0, rc = -1;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (ca_mount_check(m, err) < 0)
		return -1;
	pthread_mutex_lock(&ca->admin);
	if (ca_state_get(ca, m->id, &s, err) < 0 || (cur = ca_state_find(s, ref, err)) == NULL)
		goto out;
	if (!cur->revoked) {
		issuer_copy_rec(&rec, cur);
		rec.revoked = true;
		rec.revocation_time = sg_now();
		b = store_batch_new();
		issuer_put(b, m->id, &rec);
		if (ca_serial_from_cert(cur->cert, &rv.serial, err) < 0)
			goto out;
		/* Its serial belongs on the CRL of whoever signed it in this mount (itself for a root). */
		for (size_t i = 0; i < s->n; i++)
			if (&s->issuers[i] != cur && signed_by(cur->cert, s->issuers[i].cert))
				parent = &s->issuers[i];
		if ((have_rv = ca_revoked_rec_get(ca, m->id, &rv.serial, &rv, err)) < 0)
			goto out;
		if (have_rv == 0) {
			rv.time = rec.revocation_time;
			rv.reason = CA_REASON_UNSPECIFIED;
			memcpy(rv.issuer_id, parent != NULL ? parent->id : cur->id, sizeof(rv.issuer_id));
			rv.not_after = cur->not_after;
			if (ca_x509_der(cur->cert, &rv.der, &rv.der_len, err) < 0)
				goto out;
			ca_revoked_rec_put(b, m->id, &rv, true);
			fire = true;
			if ((have_cr = ca_cert_rec_get(ca, m->id, &rv.serial, &cr, err)) < 0)
				goto out;
			if (have_cr == 1 && !cr.revoked) {
				cr.revoked = true;
				cr.revocation_time = rv.time;
				cr.reason = rv.reason;
				ca_cert_rec_put(b, m->id, &rv.serial, &cr);
			}
		}
		if (store_commit(ca->st, b, err) < 0)
			goto out;
		ca_state_invalidate(ca, m->id);
		ca_state_release(s);
		s = NULL;
		if (ca_state_get(ca, m->id, &s, err) < 0 || (cur = ca_state_find(s, rec.id, err)) == NULL)
			goto out;
	}
	if (out != NULL)
		ca_issuer_info_fill(s, cur, out);
	rc = 0;
out:
	pthread_mutex_unlock(&ca->admin);
	if (rc == 0 && fire)
		ca_run_revoke_hook(ca, m->id, rv.serial.colon, rv.issuer_id);
	ca_state_release(s);
	ca_issuer_clear(&rec);
	ca_revoked_rec_clear(&rv);
	ca_cert_record_clear(&cr);
	store_batch_free(b);
	return rc;
}

/* ---------------- URLs and cluster ---------------- */

int ca_urls_get(struct ca *ca, const struct ca_mount *m, struct ca_urls *out, struct sg_err *err)
{
	struct ca_mstate *s = NULL;

	memset(out, 0, sizeof(*out));
	if (ca_mount_check(m, err) < 0 || ca_state_get(ca, m->id, &s, err) < 0)
		return -1;
	ca_urls_copy(out, &s->urls);
	ca_state_release(s);
	return 0;
}

int ca_urls_set(struct ca *ca, const struct ca_mount *m, const struct ca_urls *in, struct sg_err *err)
{
	struct store_batch *b;
	json_t *o;
	int rc;

	if (ca_mount_check(m, err) < 0 || urls_check(in, err) < 0)
		return -1;
	o = ca_urls_encode_json(in);
	b = store_batch_new();
	config_put(b, m->id, "urls", o);
	json_decref(o);
	pthread_mutex_lock(&ca->admin);
	rc = store_commit(ca->st, b, err);
	ca_state_invalidate(ca, m->id);
	pthread_mutex_unlock(&ca->admin);
	store_batch_free(b);
	return rc;
}

int ca_cluster_get(struct ca *ca, const struct ca_mount *m, struct ca_cluster *out, struct sg_err *err)
{
	struct ca_mstate *s = NULL;

	memset(out, 0, sizeof(*out));
	if (ca_mount_check(m, err) < 0 || ca_state_get(ca, m->id, &s, err) < 0)
		return -1;
	out->path = sg_xstrdup(s->cluster_path != NULL ? s->cluster_path : "");
	out->aia_path = sg_xstrdup(s->cluster_aia_path != NULL ? s->cluster_aia_path : "");
	ca_state_release(s);
	return 0;
}

int ca_cluster_set(struct ca *ca, const struct ca_mount *m, const struct ca_cluster *in, struct sg_err *err)
{
	struct store_batch *b;
	json_t *o;
	int rc;

	if (ca_mount_check(m, err) < 0)
		return -1;
	if ((in->path != NULL && strlen(in->path) > CA_MAX_URL_LEN) ||
	    (in->aia_path != NULL && strlen(in->aia_path) > CA_MAX_URL_LEN))
		return sg_err_set(err, SG_BAD_REQUEST, "cluster path longer than %d characters", CA_MAX_URL_LEN);
	o = json_pack("{s:s,s:s}", "path", in->path != NULL ? in->path : "", "aia_path",
	              in->aia_path != NULL ? in->aia_path : "");
	b = store_batch_new();
	config_put(b, m->id, "cluster", o);
	json_decref(o);
	pthread_mutex_lock(&ca->admin);
	rc = store_commit(ca->st, b, err);
	ca_state_invalidate(ca, m->id);
	pthread_mutex_unlock(&ca->admin);
	store_batch_free(b);
	return rc;
}

/* ---------------- Root and intermediate generation ---------------- */

static void params_sans(const struct ca_ca_params *p, struct ca_sans *s)
{
	ca_sans_add_alt(s, &p->alt_names);
	sg_strlist_copy(&s->ips, &p->ip_sans);
	sg_strlist_copy(&s->uris, &p->uri_sans);
	sg_strlist_copy(&s->other, &p->other_sans);
	if (!p->exclude_cn_from_sans)
		ca_sans_add_cn(s, p->common_name);
	ca_sans_normalize(s);
}

static X509_NAME *params_subject(const struct ca_ca_params *p, struct sg_err *err)
{
	struct ca_subject sub = {
		.cn = p->common_name,
		.serial_number = p->serial_number,
		.country = &p->country,
		.province = &p->province,
		.locality = &p->locality,
		.street = &p->street_address,
		.postal = &p->postal_code,
		.org = &p->organization,
		.ou = &p->ou,
		.uids = NULL,
	};

	return ca_subject_build(&sub, err);
}

/* The key for a new CA: an existing one of the mount (key_ref) or a fresh one. */
static EVP_PKEY *params_key(struct ca *ca, const struct ca_mount *m, const struct ca_ca_params *p,
                            struct ca_key_rec *existing, struct sg_err *err)
{
	if (p->key_ref != NULL && p->key_ref[0] != '\0') {
		if (ca_key_rec_resolve(ca, m->id, p->key_ref, existing, err) < 0)
			return NULL;
		return ca_key_rec_open(ca, m->id, existing, err);
	}
	return ca_key_generate(&p->key, err);
}

static void gen_result_key(struct ca_gen_result *res, const struct ca_key_rec *rec, const char *type)
{
	memcpy(res->key_id, rec->id, sizeof(res->key_id));
	res->key_name = sg_xstrdup(rec->name != NULL ? rec->name : "");
	res->private_key_type = sg_xstrdup(type);
}

int ca_root_generate(struct ca *ca, const struct ca_mount *m, const struct ca_ca_params *p,
                     struct ca_gen_result *res, struct sg_err *err)
{
	struct ca_key_rec existing = {0}, newrec = {0};
	const struct ca_key_rec *krec;
	struct ca_mstate *s = NULL;
	struct ca_issuer rec = {0};
	struct ca_sans sans = {0};
	struct ca_urls urls = {0};
	struct ca_serial serial;
	struct ca_cert_record cr = {0};
	struct ca_validity_in vin = {0};
	struct ca_profile prof = {0};
	struct ca_sig_params sig = {p->signature_bits, p->use_pss};
	struct ca_lint_opts lint = {0};
	X509_NAME *subject = NULL;
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	struct store_batch *b = NULL;
	const char *ktype = "";
	int kbits = 0, rc = -1;
	int64_t nb = 0, na = 0;
	bool locked = false, new_key = p->key_ref == NULL || p->key_ref[0] == '\0';

	memset(res, 0, sizeof(*res));
	if (ca_mount_check(m, err) < 0)
		return -1;
	if (p->common_name == NULL || p->common_name[0] == '\0')
		return sg_err_set(err, SG_BAD_REQUEST, "the common_name field is required");
	if (p->issuer_name != NULL && p->issuer_name[0] != '\0' && ca_name_check("issuer_name", p->issuer_name, err) < 0)
		return -1;
	/* Key generation (seconds for RSA 4096) happens before taking the admin lock. */
	if (new_key && (key = ca_key_generate(&p->key, err)) == NULL)
		goto out;
	pthread_mutex_lock(&ca->admin);
	locked = true;
	if (!new_key && (key = params_key(ca, m, p, &existing, err)) == NULL)
		goto out;
	if (ca_key_describe(key, &ktype, &kbits, err) < 0)
		goto out;
	if (ca_state_get(ca, m->id, &s, err) < 0)
		goto out;
	if (s->n >= CA_MAX_ISSUERS_PER_MOUNT) {
		sg_err_set(err, SG_BAD_REQUEST, "a mount holds at most %d issuers", CA_MAX_ISSUERS_PER_MOUNT);
		goto out;
	}
	if (p->issuer_name != NULL && p->issuer_name[0] != '\0' && name_taken(s, p->issuer_name, NULL)) {
		sg_err_set(err, SG_BAD_REQUEST, "issuer name '%s' is already in use", p->issuer_name);
		goto out;
	}
	if ((subject = params_subject(p, err)) == NULL)
		goto out;
	params_sans(p, &sans);
	vin.ttl = p->ttl;
	vin.not_after = p->not_after;
	vin.mount_default = m->default_ttl;
	vin.mount_max = m->max_ttl;
	vin.not_before_duration = p->not_before_duration;
	if (ca_validity_compute(&vin, NULL, &nb, &na, &res->warnings, err) < 0)
		goto out;
	sg_uuid(rec.id);
	if (ca_state_urls_for(s, &rec, &urls, err) < 0)
		goto out;
	ca_serial_random(&serial);
	prof.subject = subject;
	prof.pubkey = key;
	prof.serial = &serial;
	prof.not_before = nb;
	prof.not_after = na;
	prof.issuer = NULL;
	prof.is_ca = true;
	prof.max_path_length = p->max_path_length;
	/* digitalSignature too: the CA key signs OCSP responses itself (RFC 6960 4.2.2.2). */
	prof.key_usage = ROLE_KU_CERT_SIGN | ROLE_KU_CRL_SIGN | ROLE_KU_DIGITAL_SIGNATURE;
	prof.sans = &sans;
	prof.urls = &urls;
	prof.permitted_dns_domains = &p->permitted_dns_domains;
	if ((x = ca_profile_build(&prof, err)) == NULL)
		goto out;
	lint.cn_outside_sans_ok = p->exclude_cn_from_sans;
	if (ca_lint_check_opts(x, NULL, &lint, err) < 0 || ca_sign_with_key(key, x, NULL, &sig, err) < 0)
		goto out;

	b = store_batch_new();
	if (new_key) {
		if (ca_key_stage_new(ca, m->id, key, p->key_name, b, &newrec, err) < 0)
			goto out;
		krec = &newrec;
	} else {
		krec = &existing;
	}
	memcpy(rec.key_id, krec->id, sizeof(rec.key_id));
	rec.name = sg_xstrdup(p->issuer_name != NULL ? p->issuer_name : "");
	rec.cert = x;
	X509_up_ref(x);
	rec.behavior = CA_NA_ERR;
	for (size_t k = 0; k < sizeof(all_usages) / sizeof(all_usages[0]); k++)
		sg_strlist_add(&rec.usage, all_usages[k]);
	rec.created = sg_now();
	issuer_put(b, m->id, &rec);
	if (s->default_id[0] == '\0' || s->follows_latest)
		issuers_config_put(b, m->id, rec.id, s->follows_latest);
	ca_cert_rec_fill(&cr, x, &serial, rec.id, "", "");
	ca_cert_rec_stage(b, m->id, &serial, &cr);
	if (store_commit(ca->st, b, err) < 0)
		goto out;
	ca_state_invalidate(ca, m->id);

	res->cert = x;
	x = NULL;
	memcpy(res->issuer_id, rec.id, sizeof(res->issuer_id));
	res->issuer_name = sg_xstrdup(rec.name);
	gen_result_key(res, krec, ktype);
	res->serial = sg_xstrdup(serial.colon);
	res->expiration = na;
	if (p->exported && new_key && (res->private_key_pem = ca_key_to_pem(key, p->private_key_pkcs8, err)) == NULL)
		goto out;
	rc = 0;
out:
	if (locked)
		pthread_mutex_unlock(&ca->admin);
	if (rc < 0)
		ca_gen_result_clear(res);
	ca_state_release(s);
	ca_issuer_clear(&rec);
	ca_key_rec_clear(&existing);
	ca_key_rec_clear(&newrec);
	ca_sans_clear(&sans);
	ca_urls_clear(&urls);
	ca_cert_record_clear(&cr);
	X509_NAME_free(subject);
	X509_free(x);
	EVP_PKEY_free(key);
	store_batch_free(b);
	return rc;
}

int ca_intermediate_generate(struct ca *ca, const struct ca_mount *m, const struct ca_ca_params *p,
                             struct ca_gen_result *res, struct sg_err *err)
{
	struct ca_key_rec existing = {0}, newrec = {0};
	const struct ca_key_rec *krec;
	struct ca_sans sans = {0};
	struct ca_sig_params sig = {p->signature_bits, p->use_pss};
	X509_NAME *subject = NULL;
	X509_REQ *req = NULL;
	X509_EXTENSION *san = NULL;
	STACK_OF(X509_EXTENSION) *exts = NULL;
	EVP_PKEY *key = NULL;
	struct store_batch *b = NULL;
	const char *ktype = "";
	int kbits = 0, rc = -1;
	bool locked = false, new_key = p->key_ref == NULL || p->key_ref[0] == '\0';

	memset(res, 0, sizeof(*res));
	if (ca_mount_check(m, err) < 0)
		return -1;
	if (p->common_name == NULL || p->common_name[0] == '\0')
		return sg_err_set(err, SG_BAD_REQUEST, "the common_name field is required");
	if (new_key && (key = ca_key_generate(&p->key, err)) == NULL)
		goto out;
	pthread_mutex_lock(&ca->admin);
	locked = true;
	if (!new_key && (key = params_key(ca, m, p, &existing, err)) == NULL)
		goto out;
	if (ca_key_describe(key, &ktype, &kbits, err) < 0)
		goto out;
	if ((subject = params_subject(p, err)) == NULL)
		goto out;
	params_sans(p, &sans);
	req = X509_REQ_new();
	if (req == NULL)
		sg_die("out of memory");
	if (X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 || X509_REQ_set_subject_name(req, subject) != 1 ||
	    X509_REQ_set_pubkey(req, key) != 1) {
		sg_err_ossl(err, SG_CRYPTO, "unable to build the CSR");
		goto out;
	}
	if (ca_sans_to_ext(&sans, false, &san, err) < 0)
		goto out;
	if (san != NULL) {
		exts = sk_X509_EXTENSION_new_null();
		if (exts == NULL || sk_X509_EXTENSION_push(exts, san) <= 0)
			sg_die("out of memory");
		san = NULL;
		if (X509_REQ_add_extensions(req, exts) != 1) {
			sg_err_ossl(err, SG_CRYPTO, "unable to add CSR extensions");
			goto out;
		}
	}
	if (ca_sign_with_key(key, NULL, req, &sig, err) < 0)
		goto out;
	if (new_key) {
		b = store_batch_new();
		if (ca_key_stage_new(ca, m->id, key, p->key_name, b, &newrec, err) < 0 || store_commit(ca->st, b, err) < 0)
			goto out;
		ca_state_invalidate(ca, m->id);
		krec = &newrec;
	} else {
		krec = &existing;
	}
	res->csr = req;
	req = NULL;
	gen_result_key(res, krec, ktype);
	if (p->exported && new_key && (res->private_key_pem = ca_key_to_pem(key, p->private_key_pkcs8, err)) == NULL)
		goto out;
	rc = 0;
out:
	if (locked)
		pthread_mutex_unlock(&ca->admin);
	if (rc < 0)
		ca_gen_result_clear(res);
	ca_key_rec_clear(&existing);
	ca_key_rec_clear(&newrec);
	ca_sans_clear(&sans);
	X509_EXTENSION_free(san);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_NAME_free(subject);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	store_batch_free(b);
	return rc;
}

/* ---------------- Imports ---------------- */

struct known_key {
	char id[37];
	unsigned char *spki;
	size_t spki_len;
};

static const char *key_for_cert(const struct known_key *keys, size_t n, X509 *x)
{
	unsigned char *der = NULL;
	size_t len = 0;
	const char *id = "";
	struct sg_err tmp;

	sg_err_init(&tmp);
	if (ca_pubkey_der(X509_get0_pubkey(x), &der, &len, &tmp) < 0) {
		ERR_clear_error();
		return "";
	}
	for (size_t i = 0; i < n; i++) {
		if (keys[i].spki_len == len && memcmp(keys[i].spki, der, len) == 0) {
			id = keys[i].id;
			break;
		}
	}
	free(der);
	return id;
}

static int import_core(struct ca *ca, const struct ca_mount *m, struct ca_bundle *bd, const char *key_name,
                       struct ca_import_result *res, struct sg_err *err)
{
	struct ca_mstate *s = NULL;
	struct ca_key_rec *recs = NULL;
	size_t nrecs = 0, nknown = 0, nnew = 0;
	struct known_key *known = NULL;
	struct store_batch *b = store_batch_new();
	char first_new[37] = "", last_new[37] = "";
	int rc = -1;

	pthread_mutex_lock(&ca->admin);
	if (ca_state_get(ca, m->id, &s, err) < 0 || ca_key_rec_load_all(ca, m->id, &recs, &nrecs, err) < 0)
		goto out;
	known = sg_xcalloc(nrecs + bd->nkeys + 1, sizeof(*known));
	for (size_t i = 0; i < nrecs; i++) {
		memcpy(known[nknown].id, recs[i].id, 37);
		known[nknown].spki = recs[i].spki;
		known[nknown].spki_len = recs[i].spki_len;
		recs[i].spki = NULL;
		nknown++;
	}
	for (size_t i = 0; i < bd->nkeys; i++) {
		unsigned char *der = NULL;
		size_t len = 0;
		const char *found = NULL;
		struct ca_key_rec nr = {0};

		if (ca_pubkey_der(bd->keys[i], &der, &len, err) < 0)
			goto out;
		for (size_t j = 0; j < nknown && found == NULL; j++)
			if (known[j].spki_len == len && memcmp(known[j].spki, der, len) == 0)
				found = known[j].id;
		if (found != NULL) {
			if (!sg_strlist_has(&res->existing_keys, found))
				sg_strlist_add(&res->existing_keys, found);
			free(der);
			continue;
		}
		/* The key record batch is committed with the issuers below; a later failure drops it too. */
		if (ca_key_stage_new(ca, m->id, bd->keys[i], bd->nkeys == 1 ? key_name : NULL, b, &nr, err) < 0) {
			free(der);
			goto out;
		}
		memcpy(known[nknown].id, nr.id, 37);
		known[nknown].spki = der;
		known[nknown].spki_len = len;
		nknown++;
		sg_strlist_add(&res->imported_keys, nr.id);
		ca_key_rec_clear(&nr);
	}
	for (int i = 0; i < sk_X509_num(bd->certs); i++) {
		X509 *x = sk_X509_value(bd->certs, i);
		struct ca_issuer rec = {0};
		const char *existing = NULL;

		if (!(X509_get_extension_flags(x) & EXFLAG_CA) || X509_check_ca(x) != 1) {
			sg_err_set(err, SG_BAD_REQUEST, "certificate %d of the bundle is not a CA certificate", i + 1);
			goto out;
		}
		for (size_t j = 0; j < s->n && existing == NULL; j++)
			if (X509_cmp(s->issuers[j].cert, x) == 0)
				existing = s->issuers[j].id;
		for (int j = 0; j < i && existing == NULL; j++)
			if (X509_cmp(sk_X509_value(bd->certs, j), x) == 0)
				existing = "";
		if (existing != NULL) {
			if (existing[0] != '\0' && !sg_strlist_has(&res->existing_issuers, existing)) {
				const struct ca_issuer *ei = ca_state_find(s, existing, err);
				const char *kid = ei->key_id[0] != '\0' ? ei->key_id : key_for_cert(known, nknown, x);

				sg_strlist_add(&res->existing_issuers, existing);
				sg_strlist_add(&res->mapping_issuers, existing);
				sg_strlist_add(&res->mapping_keys, kid);
				if (ei->key_id[0] == '\0' && kid[0] != '\0') {
					/* A key arrived for an issuer imported without one: link them. */
					issuer_copy_rec(&rec, ei);
					snprintf(rec.key_id, sizeof(rec.key_id), "%s", kid);
					issuer_put(b, m->id, &rec);
					ca_issuer_clear(&rec);
				}
			}
			continue;
		}
		if (s->n + nnew >= CA_MAX_ISSUERS_PER_MOUNT) {
			sg_err_set(err, SG_BAD_REQUEST, "a mount holds at most %d issuers", CA_MAX_ISSUERS_PER_MOUNT);
			goto out;
		}
		sg_uuid(rec.id);
		snprintf(rec.key_id, sizeof(rec.key_id), "%s", key_for_cert(known, nknown, x));
		rec.name = sg_xstrdup("");
		X509_up_ref(x);
		rec.cert = x;
		rec.behavior = CA_NA_ERR;
		for (size_t k = 0; k < sizeof(all_usages) / sizeof(all_usages[0]); k++)
			sg_strlist_add(&rec.usage, all_usages[k]);
		rec.created = sg_now();
		issuer_put(b, m->id, &rec);
		sg_strlist_add(&res->imported_issuers, rec.id);
		sg_strlist_add(&res->mapping_issuers, rec.id);
		sg_strlist_add(&res->mapping_keys, rec.key_id);
		if (first_new[0] == '\0')
			memcpy(first_new, rec.id, 37);
		memcpy(last_new, rec.id, 37);
		nnew++;
		ca_issuer_clear(&rec);
	}
	/* Keys imported alone may complete issuers that were imported without their key. */
	for (size_t j = 0; j < s->n; j++) {
		const struct ca_issuer *ei = &s->issuers[j];
		const char *kid;
		struct ca_issuer rec = {0};

		if (ei->key_id[0] != '\0' || sg_strlist_has(&res->existing_issuers, ei->id))
			continue;
		kid = key_for_cert(known, nknown, ei->cert);
		if (kid[0] == '\0' || !sg_strlist_has(&res->imported_keys, kid))
			continue;
		issuer_copy_rec(&rec, ei);
		snprintf(rec.key_id, sizeof(rec.key_id), "%s", kid);
		issuer_put(b, m->id, &rec);
		ca_issuer_clear(&rec);
	}
	if (first_new[0] != '\0' && s->default_id[0] == '\0')
		issuers_config_put(b, m->id, s->follows_latest ? last_new : first_new, s->follows_latest);
	else if (last_new[0] != '\0' && s->follows_latest)
		issuers_config_put(b, m->id, last_new, true);
	if (store_commit(ca->st, b, err) < 0)
		goto out;
	ca_state_invalidate(ca, m->id);
	rc = 0;
out:
	pthread_mutex_unlock(&ca->admin);
	ca_state_release(s);
	for (size_t i = 0; i < nknown; i++)
		free(known[i].spki);
	free(known);
	ca_key_recs_free(recs, nrecs);
	store_batch_free(b);
	return rc;
}

int ca_import_pem(struct ca *ca, const struct ca_mount *m, const char *pem, size_t len, bool allow_keys,
                  struct ca_import_result *res, struct sg_err *err)
{
	struct ca_bundle bd = {0};
	int rc;

	memset(res, 0, sizeof(*res));
	if (ca_mount_check(m, err) < 0 || ca_bundle_parse(pem, len, allow_keys, &bd, err) < 0)
		return -1;
	for (size_t i = 0; i < bd.nkeys; i++) {
		const char *t;
		int bits;

		if (ca_key_describe(bd.keys[i], &t, &bits, err) < 0) {
			ca_bundle_clear(&bd);
			return -1;
		}
	}
	rc = import_core(ca, m, &bd, NULL, res, err);
	if (rc < 0)
		ca_import_result_clear(res);
	ca_bundle_clear(&bd);
	return rc;
}

int ca_key_import(struct ca *ca, const struct ca_mount *m, const char *pem, size_t len, const char *name,
                  struct ca_key_info *out, bool *existed, struct sg_err *err)
{
	struct ca_bundle bd = {0};
	struct ca_import_result res = {0};
	const char *t;
	int bits, rc = -1;

	memset(out, 0, sizeof(*out));
	*existed = false;
	if (ca_mount_check(m, err) < 0)
		return -1;
	if (len > CA_MAX_KEY_PEM_BYTES)
		return sg_err_set(err, SG_TOO_LARGE, "key PEM larger than %u bytes", CA_MAX_KEY_PEM_BYTES);
	if (ca_bundle_parse(pem, len, true, &bd, err) < 0)
		return -1;
	if (bd.nkeys != 1 || sk_X509_num(bd.certs) != 0) {
		sg_err_set(err, SG_BAD_REQUEST, "expected exactly one private key");
		goto out;
	}
	if (ca_key_describe(bd.keys[0], &t, &bits, err) < 0 || import_core(ca, m, &bd, name, &res, err) < 0)
		goto out;
	*existed = res.imported_keys.n == 0;
	if (ca_key_get(ca, m, *existed ? res.existing_keys.v[0] : res.imported_keys.v[0], out, err) < 0)
		goto out;
	rc = 0;
out:
	ca_import_result_clear(&res);
	ca_bundle_clear(&bd);
	return rc;
}
