/* TLS-certificate login: cert roles and the chain and constraint checks (Vault's builtin/credential/cert). */
#include "auth/cert.h"

#include "auth/rolefields.h"

#include <ctype.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX 512
#define RECORD_MAX (256u << 10)
#define NAME_TEXT_MAX 1024

/* ---- Roles ---- */

void auth_cert_role_init(struct auth_cert_role *r)
{
	memset(r, 0, sizeof(*r));
	auth_tokenfields_init(&r->tf);
}

void auth_cert_role_clear(struct auth_cert_role *r)
{
	if (r == NULL)
		return;
	free(r->name);
	free(r->certificate);
	free(r->display_name);
	sg_strlist_clear(&r->allowed_names);
	sg_strlist_clear(&r->allowed_common_names);
	sg_strlist_clear(&r->allowed_dns_sans);
	sg_strlist_clear(&r->allowed_email_sans);
	sg_strlist_clear(&r->allowed_uri_sans);
	sg_strlist_clear(&r->allowed_organizational_units);
	auth_tokenfields_clear(&r->tf);
	auth_cert_role_init(r);
}

static bool name_char(char c, bool edge)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
	       (!edge && (c == '-' || c == '.'));
}

int auth_cert_name_check(const char *name, struct sg_err *err)
{
	size_t n = name != NULL ? strlen(name) : 0;

	if (n == 0 || n > AUTH_CERT_NAME_MAX)
		return sg_err_set(err, SG_BAD_REQUEST, "certificate role name must be 1 to %d characters",
		                  AUTH_CERT_NAME_MAX);
	for (size_t i = 0; i < n; i++)
		if (!name_char(name[i], i == 0 || i == n - 1))
			return sg_err_set(err, SG_BAD_REQUEST,
			                  "invalid certificate role name: letters, digits, '_', '-' and '.' only, starting "
			                  "and ending with a letter, digit or '_'");
	return 0;
}

/* Every certificate of a PEM text (1..AUTH_CERT_MAX_TRUSTED); NULL with err otherwise. */
static STACK_OF(X509) *pem_certs(const char *pem, struct sg_err *err)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	BIO *bio = NULL;
	X509 *x;

	if (sk == NULL)
		sg_die("out of memory");
	bio = BIO_new_mem_buf(pem, (int)strlen(pem));
	if (bio == NULL)
		sg_die("out of memory");
	ERR_clear_error();
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (sk_X509_num(sk) >= AUTH_CERT_MAX_TRUSTED) {
			X509_free(x);
			sg_err_set(err, SG_BAD_REQUEST, "certificate holds more than %d certificates", AUTH_CERT_MAX_TRUSTED);
			goto bad;
		}
		if (sk_X509_push(sk, x) <= 0)
			sg_die("out of memory");
	}
	/* The loop ends at the first thing that is not a certificate: it must be the end of the text. */
	if (ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE || sk_X509_num(sk) == 0) {
		sg_err_ossl(err, SG_BAD_PEM, "failed to parse certificate: the PEM must hold one or more certificates");
		goto bad;
	}
	ERR_clear_error();
	BIO_free(bio);
	return sk;
bad:
	BIO_free(bio);
	sk_X509_pop_free(sk, X509_free);
	return NULL;
}

static int patterns_field(const json_t *body, const char *key, struct sg_strlist *out, struct sg_err *err)
{
	if (sg_json_list(body, key, out, err) < 0)
		return -1;
	if (out->n > AUTH_MAX_CIDRS * 4)
		return sg_err_set(err, SG_BAD_REQUEST, "field '%s' has more than %d entries", key, AUTH_MAX_CIDRS * 4);
	for (size_t i = 0; i < out->n; i++)
		if (strlen(out->v[i]) > AUTH_CERT_PATTERN_MAX)
			return sg_err_set(err, SG_BAD_REQUEST, "an entry of '%s' is longer than %d bytes", key,
			                  AUTH_CERT_PATTERN_MAX);
	return 0;
}

int auth_cert_role_apply(struct auth_cert_role *r, const json_t *body, bool create, struct sg_err *err)
{
	const char *pem = NULL, *dn = NULL;
	STACK_OF(X509) *sk = NULL;
	int rc;

	if ((rc = sg_json_str(body, "certificate", &pem, err)) < 0)
		return -1;
	if (rc == 1 && *pem != '\0') {
		if (strlen(pem) > AUTH_CERT_PEM_MAX)
			return sg_err_set(err, SG_BAD_REQUEST, "certificate is longer than %u bytes", AUTH_CERT_PEM_MAX);
		sk = pem_certs(pem, err);
		if (sk == NULL)
			return -1;
		for (int i = 0; i < sk_X509_num(sk); i++) {
			X509 *x = sk_X509_value(sk, i);

			/* As Vault: a pinned (non-CA) certificate with an EKU must allow TLS client authentication. */
			if (X509_check_ca(x) < 1 && (X509_get_extension_flags(x) & EXFLAG_XKUSAGE) != 0 &&
			    (X509_get_extended_key_usage(x) & (XKU_SSL_CLIENT | XKU_ANYEKU)) == 0) {
				sk_X509_pop_free(sk, X509_free);
				return sg_err_set(err, SG_BAD_REQUEST, "nonCA certificates should have TLS client "
				                                       "authentication set as an extended key usage");
			}
		}
		sk_X509_pop_free(sk, X509_free);
		free(r->certificate);
		r->certificate = sg_xstrdup(pem);
	}
	if (create && r->certificate == NULL)
		return sg_err_set(err, SG_BAD_REQUEST, "missing certificate: a PEM CA certificate (or client certificate) "
		                                       "to trust is required");
	if ((rc = sg_json_str(body, "display_name", &dn, err)) < 0)
		return -1;
	if (rc == 1) {
		if (strlen(dn) > AUTH_CERT_DISPLAY_MAX)
			return sg_err_set(err, SG_BAD_REQUEST, "display_name is longer than %d bytes", AUTH_CERT_DISPLAY_MAX);
		free(r->display_name);
		r->display_name = sg_xstrdup(dn);
	}
	if (patterns_field(body, "allowed_names", &r->allowed_names, err) != 0 ||
	    patterns_field(body, "allowed_common_names", &r->allowed_common_names, err) != 0 ||
	    patterns_field(body, "allowed_dns_sans", &r->allowed_dns_sans, err) != 0 ||
	    patterns_field(body, "allowed_email_sans", &r->allowed_email_sans, err) != 0 ||
	    patterns_field(body, "allowed_uri_sans", &r->allowed_uri_sans, err) != 0 ||
	    patterns_field(body, "allowed_organizational_units", &r->allowed_organizational_units, err) != 0)
		return -1;
	/* token_* fields, and the deprecated ttl, max_ttl, num_uses, bound_cidrs Vault still reads for cert roles. */
	return auth_rolefields_apply(&r->tf, body, err);
}

json_t *auth_cert_role_to_json(const struct auth_cert_role *r)
{
	json_t *o = json_object();

	json_object_set_new(o, "certificate", json_string(r->certificate != NULL ? r->certificate : ""));
	json_object_set_new(o, "display_name", json_string(r->display_name != NULL ? r->display_name : ""));
	json_object_set_new(o, "allowed_names", sg_strlist_to_json(&r->allowed_names));
	json_object_set_new(o, "allowed_common_names", sg_strlist_to_json(&r->allowed_common_names));
	json_object_set_new(o, "allowed_dns_sans", sg_strlist_to_json(&r->allowed_dns_sans));
	json_object_set_new(o, "allowed_email_sans", sg_strlist_to_json(&r->allowed_email_sans));
	json_object_set_new(o, "allowed_uri_sans", sg_strlist_to_json(&r->allowed_uri_sans));
	json_object_set_new(o, "allowed_organizational_units", sg_strlist_to_json(&r->allowed_organizational_units));
	auth_tokenfields_encode(&r->tf, o);
	return o;
}

/* Vault keeps cert role names lower-cased: "Web" and "web" are one role. */
static int key_make(char *out, size_t cap, const char *prefix, const char *name, struct sg_err *err)
{
	size_t plen = strlen(prefix) + strlen("cert/");
	int n = snprintf(out, cap, "%scert/%s", prefix, name != NULL ? name : "");

	if (n < 0 || (size_t)n >= cap)
		return sg_err_set(err, SG_BAD_REQUEST, "name too long");
	for (size_t i = plen; out[i] != '\0'; i++)
		out[i] = (char)tolower((unsigned char)out[i]);
	return 0;
}

int auth_cert_role_load(struct store *st, const char *prefix, const char *name, struct auth_cert_role *out,
                        struct sg_err *err)
{
	char key[KEY_MAX];
	unsigned char *val = NULL;
	size_t len = 0;
	json_t *j = NULL;
	const char *n;
	struct sg_err e;
	int got, rc = -1;

	sg_err_init(&e);
	if (key_make(key, sizeof(key), prefix, name, err) != 0)
		return -1;
	got = store_get(st, STORE_AUTH, key, strlen(key), &val, &len, err);
	if (got <= 0)
		return got;
	if (len <= RECORD_MAX)
		j = json_loadb((const char *)val, len, 0, NULL);
	free(val);
	auth_cert_role_clear(out);
	n = json_string_value(json_object_get(j, "name"));
	if (n == NULL || auth_cert_role_apply(out, j, true, &e) != 0) {
		auth_cert_role_clear(out);
		sg_err_set(err, SG_STORAGE, "corrupt certificate role record");
		goto out;
	}
	out->name = sg_xstrdup(n);
	rc = 1;
out:
	json_decref(j);
	return rc;
}

int auth_cert_role_store(struct store *st, const char *prefix, const struct auth_cert_role *r, struct sg_err *err)
{
	char key[KEY_MAX], *text;
	struct store_batch *b;
	json_t *o;
	int rc;

	if (auth_cert_name_check(r->name, err) != 0 || key_make(key, sizeof(key), prefix, r->name, err) != 0)
		return -1;
	o = auth_cert_role_to_json(r);
	json_object_set_new(o, "name", json_string(key + strlen(prefix) + strlen("cert/")));
	text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	if (text == NULL)
		sg_die("out of memory");
	b = store_batch_new();
	store_batch_put(b, STORE_AUTH, key, strlen(key), text, strlen(text));
	rc = store_commit(st, b, err);
	store_batch_free(b);
	free(text);
	return rc;
}

int auth_cert_role_delete(struct store *st, const char *prefix, const char *name, struct sg_err *err)
{
	char key[KEY_MAX];
	struct store_batch *b;
	int rc;

	if (key_make(key, sizeof(key), prefix, name, err) != 0)
		return -1;
	b = store_batch_new();
	store_batch_del(b, STORE_AUTH, key, strlen(key));
	rc = store_commit(st, b, err);
	store_batch_free(b);
	return rc;
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
	if (lc->out->n >= AUTH_CERT_MAX_ROLES) {
		sg_err_set(lc->err, SG_BAD_REQUEST, "more than %d certificate roles", AUTH_CERT_MAX_ROLES);
		return -1;
	}
	if (klen > lc->skip)
		sg_strlist_addn(lc->out, key + lc->skip, klen - lc->skip);
	return 0;
}

int auth_cert_role_list(struct store *st, const char *prefix, struct sg_strlist *out, struct sg_err *err)
{
	char key[KEY_MAX];
	struct list_ctx lc = {out, 0, err};
	struct sg_err serr;

	sg_err_init(&serr);
	sg_strlist_clear(out);
	if (key_make(key, sizeof(key), prefix, "", err) != 0)
		return -1;
	lc.skip = strlen(key);
	if (store_scan(st, STORE_AUTH, key, NULL, 0, list_cb, &lc, &serr) < 0) {
		if (!sg_err_isset(err))
			sg_err_set(err, serr.code != SG_OK ? serr.code : SG_STORAGE, "%s", serr.detail);
		return -1;
	}
	return 0;
}

/* ---- Matching ---- */

bool auth_cert_glob(const char *pattern, const char *s, bool ci)
{
	const char *star = NULL, *resume = NULL;

	/* Iterative wildcard match with one backtrack point: linear in practice, no recursion on hostile input. */
	while (*s != '\0') {
		if (*pattern == '*') {
			star = pattern++;
			resume = s;
		} else if (*pattern != '\0' &&
		           (ci ? tolower((unsigned char)*pattern) == tolower((unsigned char)*s) : *pattern == *s)) {
			pattern++;
			s++;
		} else if (star != NULL) {
			pattern = star + 1;
			s = ++resume;
		} else {
			return false;
		}
	}
	while (*pattern == '*')
		pattern++;
	return *pattern == '\0';
}

static bool any_match(const struct sg_strlist *patterns, const struct sg_strlist *values, bool ci)
{
	for (size_t i = 0; i < patterns->n; i++)
		for (size_t k = 0; k < values->n; k++)
			if (auth_cert_glob(patterns->v[i], values->v[k], ci))
				return true;
	return false;
}

/* What the constraints look at in a client certificate. */
struct cert_names {
	struct sg_strlist cn, dns, email, uri, ou;
};

static void cert_names_clear(struct cert_names *n)
{
	sg_strlist_clear(&n->cn);
	sg_strlist_clear(&n->dns);
	sg_strlist_clear(&n->email);
	sg_strlist_clear(&n->uri);
	sg_strlist_clear(&n->ou);
}

static void name_entries(const X509_NAME *name, int nid, struct sg_strlist *out)
{
	int i = -1;

	while ((i = X509_NAME_get_index_by_NID(name, nid, i)) >= 0) {
		const ASN1_STRING *d = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
		unsigned char *utf8 = NULL;
		int n = ASN1_STRING_to_UTF8(&utf8, d);

		if (n >= 0 && n <= NAME_TEXT_MAX && memchr(utf8, '\0', (size_t)n) == NULL)
			sg_strlist_addn(out, (const char *)utf8, (size_t)n);
		OPENSSL_free(utf8);
	}
}

static void ia5_add(const ASN1_IA5STRING *s, struct sg_strlist *out)
{
	int n = ASN1_STRING_length(s);
	const unsigned char *d = ASN1_STRING_get0_data(s);

	/* A name with an embedded NUL would compare as a shorter one: skipped. */
	if (n >= 0 && n <= NAME_TEXT_MAX && memchr(d, '\0', (size_t)n) == NULL)
		sg_strlist_addn(out, (const char *)d, (size_t)n);
}

static int cert_names_get(X509 *x, struct cert_names *out, struct sg_err *err)
{
	GENERAL_NAMES *gens;
	int crit = -1;

	name_entries(X509_get_subject_name(x), NID_commonName, &out->cn);
	name_entries(X509_get_subject_name(x), NID_organizationalUnitName, &out->ou);
	gens = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
	if (gens == NULL && crit != -1)
		return sg_err_ossl(err, SG_BAD_REQUEST, "invalid certificate: unreadable subjectAltName");
	for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);

		if (g->type == GEN_DNS)
			ia5_add(g->d.dNSName, &out->dns);
		else if (g->type == GEN_EMAIL)
			ia5_add(g->d.rfc822Name, &out->email);
		else if (g->type == GEN_URI)
			ia5_add(g->d.uniformResourceIdentifier, &out->uri);
	}
	GENERAL_NAMES_free(gens);
	return 0;
}

/* Vault's matchesConstraints without CRLs and extensions: an empty list allows anything. */
static bool constraints_met(const struct auth_cert_role *r, const struct cert_names *n)
{
	if (r->allowed_names.n > 0 && !any_match(&r->allowed_names, &n->cn, false) &&
	    !any_match(&r->allowed_names, &n->dns, true) && !any_match(&r->allowed_names, &n->email, true))
		return false;
	if (r->allowed_common_names.n > 0 && !any_match(&r->allowed_common_names, &n->cn, false))
		return false;
	/* DNS names and e-mail domains are case-insensitive (RFC 4343, RFC 5321 2.4). */
	if (r->allowed_dns_sans.n > 0 && !any_match(&r->allowed_dns_sans, &n->dns, true))
		return false;
	if (r->allowed_email_sans.n > 0 && !any_match(&r->allowed_email_sans, &n->email, true))
		return false;
	if (r->allowed_uri_sans.n > 0 && !any_match(&r->allowed_uri_sans, &n->uri, false))
		return false;
	if (r->allowed_organizational_units.n > 0 && !any_match(&r->allowed_organizational_units, &n->ou, false))
		return false;
	return true;
}

/* ---- Chain verification ---- */

static X509 *der_parse(const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	X509 *x;

	if (der == NULL || len == 0 || len > AUTH_CERT_DER_MAX)
		return NULL;
	x = d2i_X509(NULL, &p, (long)len);
	/* Trailing bytes after the certificate are refused (STYLE.md). */
	if (x != NULL && p != der + len) {
		X509_free(x);
		x = NULL;
	}
	return x;
}

/*
 * 1 when leaf is trusted by the role's certificate PEM: it chains to one of
 * its CA certificates (intermediates from the client allowed, the anchor
 * may itself be an intermediate), or it equals a pinned non-CA certificate
 * that is within its validity. 0 with a reason in why when not, -1 on errors.
 */
static int chain_trusted(const struct auth_cert_role *r, X509 *leaf, STACK_OF(X509) *untrusted, char *why,
                         size_t whycap, struct sg_err *err)
{
	STACK_OF(X509) *anchors = NULL;
	X509_STORE *store = NULL;
	X509_STORE_CTX *ctx = NULL;
	X509_VERIFY_PARAM *param;
	struct sg_err perr;
	int ncas = 0, rc = -1;
	time_t now = (time_t)sg_now();

	snprintf(why, whycap, "not issued by the role's certificate");
	sg_err_init(&perr);
	anchors = pem_certs(r->certificate != NULL ? r->certificate : "", &perr);
	if (anchors == NULL) {
		snprintf(why, whycap, "the role's certificate cannot be parsed");
		rc = 0;
		goto out;
	}
	store = X509_STORE_new();
	if (store == NULL)
		sg_die("out of memory");
	for (int i = 0; i < sk_X509_num(anchors); i++) {
		X509 *a = sk_X509_value(anchors, i);

		if (X509_check_ca(a) >= 1) {
			if (X509_STORE_add_cert(store, a) != 1) {
				sg_err_ossl(err, SG_CRYPTO, "cannot load the role's certificate");
				goto out;
			}
			ncas++;
		} else if (X509_cmp(a, leaf) == 0) {
			/* A pinned client certificate: the same certificate, within its validity. */
			if (X509_cmp_time(X509_get0_notBefore(leaf), &now) < 0 &&
			    X509_cmp_time(X509_get0_notAfter(leaf), &now) > 0) {
				rc = 1;
				goto out;
			}
			snprintf(why, whycap, "certificate is not valid at this time");
		}
	}
	if (ncas == 0) {
		rc = 0;
		goto out;
	}
	ctx = X509_STORE_CTX_new();
	if (ctx == NULL)
		sg_die("out of memory");
	if (X509_STORE_CTX_init(ctx, store, leaf, untrusted) != 1) {
		sg_err_ossl(err, SG_CRYPTO, "cannot set up certificate verification");
		goto out;
	}
	param = X509_STORE_CTX_get0_param(ctx);
	/* The role's CA may be an intermediate (a PKI mount's issuer): it is a trust anchor as it stands. */
	X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_PARTIAL_CHAIN);
	X509_VERIFY_PARAM_set_time(param, now);
	/* As Vault: the certificate must be usable for TLS client authentication (EKU clientAuth when present). */
	if (X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT) != 1) {
		sg_err_ossl(err, SG_CRYPTO, "cannot set the verification purpose");
		goto out;
	}
	if (X509_verify_cert(ctx) == 1) {
		rc = 1;
	} else {
		snprintf(why, whycap, "%s", X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
		rc = 0;
	}
	ERR_clear_error();
out:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	sk_X509_pop_free(anchors, X509_free);
	return rc;
}

/* ---- Login ---- */

void auth_cert_login_result_clear(struct auth_cert_login_result *l)
{
	if (l == NULL)
		return;
	auth_cert_role_clear(&l->role);
	json_decref(l->metadata);
	free(l->common_name);
	l->metadata = NULL;
	l->common_name = NULL;
}

static char *hex_colon_asn1(const ASN1_OCTET_STRING *s)
{
	if (s == NULL)
		return sg_xstrdup("");
	return sg_hex_colon(ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s));
}

/* Vault's login metadata: serial in decimal (Go's big.Int String), key ids in colon hex. */
static json_t *login_metadata(const char *role_name, X509 *leaf, const char *cn)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), NULL);
	char *dec = bn != NULL ? BN_bn2dec(bn) : NULL;
	char *ski = hex_colon_asn1(X509_get0_subject_key_id(leaf));
	char *aki = hex_colon_asn1(X509_get0_authority_key_id(leaf));
	json_t *m = json_pack("{s:s, s:s, s:s, s:s, s:s}", "cert_name", role_name, "common_name", cn, "serial_number",
	                      dec != NULL ? dec : "", "subject_key_id", ski, "authority_key_id", aki);

	OPENSSL_free(dec);
	BN_free(bn);
	free(ski);
	free(aki);
	return m;
}

int auth_cert_login(struct store *st, const char *prefix, const char *name, const struct auth_cert_chain *chain,
                    struct auth_cert_login_result *out, struct sg_err *err)
{
	struct sg_strlist roles = {0};
	struct cert_names names;
	STACK_OF(X509) *untrusted = NULL;
	X509 *leaf = NULL;
	char why[256] = "";
	bool named = name != NULL && *name != '\0', trusted_any = false;
	int rc = -1;

	memset(&names, 0, sizeof(names));
	memset(out, 0, sizeof(*out));
	auth_cert_role_init(&out->role);
	if (chain == NULL || chain->n == 0) {
		sg_err_set(err, SG_BAD_REQUEST, "client certificate must be supplied");
		goto out;
	}
	leaf = der_parse(chain->der[0], chain->len[0]);
	if (leaf == NULL) {
		sg_err_set(err, SG_BAD_REQUEST, "invalid certificate or no client certificate supplied: unreadable certificate");
		goto out;
	}
	untrusted = sk_X509_new_null();
	if (untrusted == NULL)
		sg_die("out of memory");
	for (size_t i = 1; i < chain->n && i < AUTH_CERT_MAX_PEER; i++) {
		X509 *x = der_parse(chain->der[i], chain->len[i]);

		if (x != NULL && sk_X509_push(untrusted, x) <= 0)
			sg_die("out of memory");
	}
	if (cert_names_get(leaf, &names, err) != 0)
		goto out;
	if (named) {
		if (auth_cert_name_check(name, err) != 0)
			goto out;
		sg_strlist_add(&roles, name);
	} else if (auth_cert_role_list(st, prefix, &roles, err) != 0) {
		goto out;
	}
	for (size_t i = 0; i < roles.n; i++) {
		char w[sizeof(why)];
		int got = auth_cert_role_load(st, prefix, roles.v[i], &out->role, err);

		if (got < 0)
			goto out;
		if (got == 0) {
			if (named) {
				sg_err_set(err, SG_BAD_REQUEST, "no certificate role named \"%s\"", name);
				goto out;
			}
			continue; /* deleted since the listing */
		}
		got = chain_trusted(&out->role, leaf, untrusted, w, sizeof(w), err);
		if (got < 0)
			goto out;
		if (got == 0) {
			snprintf(why, sizeof(why), "%s", w);
			continue;
		}
		trusted_any = true;
		if (!constraints_met(&out->role, &names))
			continue;
		out->common_name = sg_xstrdup(names.cn.n > 0 ? names.cn.v[0] : "");
		out->metadata = login_metadata(out->role.name, leaf, out->common_name);
		rc = 0;
		goto out;
	}
	if (trusted_any)
		sg_err_set(err, SG_BAD_REQUEST, "no chain matching all constraints could be found for this login certificate");
	else if (named && why[0] != '\0')
		sg_err_set(err, SG_BAD_REQUEST, "invalid certificate or no client certificate supplied: %s", why);
	else
		sg_err_set(err, SG_BAD_REQUEST, "invalid certificate or no client certificate supplied");
out:
	if (rc != 0)
		auth_cert_login_result_clear(out);
	ERR_clear_error();
	cert_names_clear(&names);
	sg_strlist_clear(&roles);
	sk_X509_pop_free(untrusted, X509_free);
	X509_free(leaf);
	return rc;
}
