/*
 * The PKI engine's route table and the rendering helpers its handlers share
 * (compat/vault-api.md sections 0 and 1).
 */
#include "server/pki.h"
#include "server/pki_acme.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN ROUTE_AUTH_TOKEN
#define PUBLIC ROUTE_AUTH_NONE

/*
 * router_lookup takes the first route whose pattern and method match, so a
 * literal route comes before a capture that would also match it
 * ("cert/ca" before "cert/:serial"). Vault's unauthenticated paths
 * (PathsSpecial.Unauthenticated) are ROUTE_AUTH_NONE; everything else needs a
 * token.
 */
const struct route pki_routes[] = {
	/* Unauthenticated reads (compat 1.5). */
	{"ca", HTTP_GET, h_ca_der_read, PUBLIC, false},
	{"ca/pem", HTTP_GET, h_ca_pem_read, PUBLIC, false},
	{"ca_chain", HTTP_GET, h_ca_chain_read, PUBLIC, false},
	{"cert/ca", HTTP_GET, h_cert_ca_read, PUBLIC, false},
	{"cert/ca_chain", HTTP_GET, h_cert_ca_chain_read, PUBLIC, false},
	{"cert/crl", HTTP_GET, h_cert_crl_read, PUBLIC, false},
	{"cert/delta-crl", HTTP_GET, h_cert_delta_crl_read, PUBLIC, false},
	{"cert/:serial", HTTP_GET, h_cert_read, PUBLIC, false},
	{"cert/:serial/raw", HTTP_GET, h_cert_raw_read, PUBLIC, false},
	{"cert/:serial/raw/pem", HTTP_GET, h_cert_raw_pem_read, PUBLIC, false},
	{"issuer/:ref/json", HTTP_GET, h_issuer_json_read, PUBLIC, false},
	{"issuer/:ref/der", HTTP_GET, h_issuer_der_read, PUBLIC, false},
	{"issuer/:ref/pem", HTTP_GET, h_issuer_pem_read, PUBLIC, false},
	{"issuers", HTTP_LIST, h_issuers_list, PUBLIC, false},
	/* CRLs (compat 1.5), served from crl/'s cache. */
	{"crl", HTTP_GET, h_crl_der_read, PUBLIC, false},
	{"crl/pem", HTTP_GET, h_crl_pem_read, PUBLIC, false},
	{"crl/delta", HTTP_GET, h_crl_delta_der_read, PUBLIC, false},
	{"crl/delta/pem", HTTP_GET, h_crl_delta_pem_read, PUBLIC, false},
	{"issuer/:ref/crl", HTTP_GET, h_issuer_crl_json_read, PUBLIC, false},
	{"issuer/:ref/crl/der", HTTP_GET, h_issuer_crl_der_read, PUBLIC, false},
	{"issuer/:ref/crl/pem", HTTP_GET, h_issuer_crl_pem_read, PUBLIC, false},
	{"issuer/:ref/crl/delta", HTTP_GET, h_issuer_crl_delta_json_read, PUBLIC, false},
	{"issuer/:ref/crl/delta/der", HTTP_GET, h_issuer_crl_delta_der_read, PUBLIC, false},
	{"issuer/:ref/crl/delta/pem", HTTP_GET, h_issuer_crl_delta_pem_read, PUBLIC, false},
	/* OCSP (RFC 6960 A.1): the GET request is base64 and holds '/' and "//", hence the "**" capture. */
	{"ocsp", HTTP_POST | ROUTE_INLINE, h_ocsp_post, PUBLIC, false},
	{"ocsp/**req", HTTP_GET | ROUTE_INLINE, h_ocsp_get, PUBLIC, false},
	{"issuer/:ref/ocsp", HTTP_POST | ROUTE_INLINE, h_issuer_ocsp_post, PUBLIC, false},
	{"issuer/:ref/ocsp/**req", HTTP_GET | ROUTE_INLINE, h_issuer_ocsp_get, PUBLIC, false},

	/* Issuers and keys (compat 1.1). */
	{"root/generate/:type", HTTP_POST, h_root_generate, TOKEN, false},
	{"issuers/generate/root/:type", HTTP_POST, h_root_generate, TOKEN, false},
	{"intermediate/generate/:type", HTTP_POST, h_intermediate_generate, TOKEN, false},
	{"issuers/generate/intermediate/:type", HTTP_POST, h_intermediate_generate, TOKEN, false},
	{"intermediate/set-signed", HTTP_POST, h_intermediate_set_signed, TOKEN, false},
	{"config/ca", HTTP_POST, h_bundle_import, TOKEN, false},
	{"issuers/import/bundle", HTTP_POST, h_bundle_import, TOKEN, false},
	{"issuers/import/cert", HTTP_POST, h_cert_import, TOKEN, false},
	{"root/sign-intermediate", HTTP_POST, h_sign_intermediate, TOKEN, false},
	{"issuer/:ref/sign-intermediate", HTTP_POST, h_sign_intermediate, TOKEN, false},
	{"root", HTTP_DELETE, h_root_delete, TOKEN, true},
	{"issuer/:ref/revoke", HTTP_POST, h_issuer_revoke, TOKEN, false},
	{"issuer/:ref", HTTP_GET, h_issuer_read, TOKEN, false},
	{"issuer/:ref", HTTP_POST, h_issuer_write, TOKEN, false},
	{"issuer/:ref", HTTP_PATCH, h_issuer_patch, TOKEN, false},
	{"issuer/:ref", HTTP_DELETE, h_issuer_delete, TOKEN, false},
	{"config/issuers", HTTP_GET, h_config_issuers_read, TOKEN, false},
	{"config/issuers", HTTP_POST, h_config_issuers_write, TOKEN, false},
	{"keys", HTTP_LIST, h_keys_list, TOKEN, false},
	{"keys/generate/:type", HTTP_POST, h_key_generate, TOKEN, false},
	{"keys/import", HTTP_POST, h_key_import, TOKEN, false},
	{"key/:ref", HTTP_GET, h_key_read, TOKEN, false},
	{"key/:ref", HTTP_POST, h_key_write, TOKEN, false},
	{"key/:ref", HTTP_DELETE, h_key_delete, TOKEN, false},
	{"config/keys", HTTP_GET, h_config_keys_read, TOKEN, false},
	{"config/keys", HTTP_POST, h_config_keys_write, TOKEN, false},
	{"config/urls", HTTP_GET, h_config_urls_read, TOKEN, false},
	{"config/urls", HTTP_POST, h_config_urls_write, TOKEN, false},
	{"config/cluster", HTTP_GET, h_config_cluster_read, TOKEN, false},
	{"config/cluster", HTTP_POST, h_config_cluster_write, TOKEN, false},

	/* Roles (compat 1.2). */
	{"roles", HTTP_LIST, h_roles_list, TOKEN, false},
	{"roles/:name", HTTP_GET, h_role_read, TOKEN, false},
	{"roles/:name", HTTP_POST | ROUTE_EXISTENCE, h_role_write, TOKEN, false}, /* create when new, update when not */
	{"roles/:name", HTTP_PATCH, h_role_patch, TOKEN, false},
	{"roles/:name", HTTP_DELETE, h_role_delete, TOKEN, false},

	/* Issuance (compat 1.3). */
	{"issue/:role", HTTP_POST, h_issue, TOKEN, false},
	{"sign/:role", HTTP_POST, h_sign, TOKEN, false},
	{"issuer/:ref/issue/:role", HTTP_POST, h_issue, TOKEN, false},
	{"issuer/:ref/sign/:role", HTTP_POST, h_sign, TOKEN, false},
	{"sign-verbatim", HTTP_POST, h_sign_verbatim, TOKEN, false},
	{"sign-verbatim/:role", HTTP_POST, h_sign_verbatim, TOKEN, false},
	{"issuer/:ref/sign-verbatim", HTTP_POST, h_sign_verbatim, TOKEN, false},
	{"issuer/:ref/sign-verbatim/:role", HTTP_POST, h_sign_verbatim, TOKEN, false},

	/* Stored certificates and revocation (compat 1.4, 1.5). */
	{"certs", HTTP_LIST, h_certs_list, TOKEN, false},
	{"certs/revoked", HTTP_LIST, h_certs_revoked_list, TOKEN, false},
	{"revoke", HTTP_POST, h_revoke, TOKEN, false},
	{"revoke-with-key", HTTP_POST, h_revoke_with_key, TOKEN, false},

	/* CRL configuration and rebuilds (compat 1.6), tidy (compat 1.8). */
	{"crl/rotate", HTTP_GET, h_crl_rotate, TOKEN, false},
	{"crl/rotate-delta", HTTP_GET, h_crl_rotate_delta, TOKEN, false},
	{"config/crl", HTTP_GET, h_config_crl_read, TOKEN, false},
	{"config/crl", HTTP_POST, h_config_crl_write, TOKEN, false},
	{"tidy", HTTP_POST, h_tidy, TOKEN, false},
	{"tidy-status", HTTP_GET, h_tidy_status, TOKEN, false},
	{"tidy-cancel", HTTP_POST, h_tidy_cancel, TOKEN, false},
	{"config/auto-tidy", HTTP_GET, h_config_auto_tidy_read, TOKEN, false},
	{"config/auto-tidy", HTTP_POST, h_config_auto_tidy_write, TOKEN, false},
	/* ACME (RFC 8555; server/pki_acme.c): the JWS authenticates, so the routes are public. */
#define ACME_DIR_ROUTES(P) \
	{P "acme/directory", HTTP_GET, h_acme_directory, PUBLIC, false}, \
	{P "acme/new-nonce", HTTP_GET, h_acme_new_nonce, PUBLIC, false}, \
	{P "acme/new-account", HTTP_POST, h_acme_new_account, PUBLIC, false}, \
	{P "acme/account/:kid", HTTP_POST, h_acme_account, PUBLIC, false}, \
	{P "acme/account/:kid/orders", HTTP_POST, h_acme_account_orders, PUBLIC, false}, \
	{P "acme/account/:kid/orders/:after", HTTP_POST, h_acme_account_orders, PUBLIC, false}, \
	{P "acme/renewal-info/:certid", HTTP_GET, h_acme_renewal_info, PUBLIC, false}, \
	{P "acme/key-change", HTTP_POST, h_acme_key_change, PUBLIC, false}, \
	{P "acme/new-order", HTTP_POST, h_acme_new_order, PUBLIC, false}, \
	{P "acme/order/:id", HTTP_POST, h_acme_order, PUBLIC, false}, \
	{P "acme/order/:id/finalize", HTTP_POST, h_acme_finalize, PUBLIC, false}, \
	{P "acme/order/:id/cert", HTTP_POST, h_acme_cert, PUBLIC, false}, \
	{P "acme/order/:id/cert/:alt", HTTP_POST, h_acme_cert, PUBLIC, false}, \
	{P "acme/authorization/:id", HTTP_POST, h_acme_authz, PUBLIC, false}, \
	{P "acme/challenge/:auth/:type", HTTP_POST, h_acme_challenge, PUBLIC, false}, \
	{P "acme/revoke-cert", HTTP_POST, h_acme_revoke, PUBLIC, false}, \
	{P "acme/new-account", HTTP_GET, h_acme_post_only, PUBLIC, false}, \
	{P "acme/account/:kid", HTTP_GET, h_acme_post_only, PUBLIC, false}, \
	{P "acme/account/:kid/orders", HTTP_GET, h_acme_post_only, PUBLIC, false}, \
	{P "acme/account/:kid/orders/:after", HTTP_GET, h_acme_post_only, PUBLIC, false}, \
	{P "acme/key-change", HTTP_GET, h_acme_post_only, PUBLIC, false}, \
	{P "acme/new-order", HTTP_GET, h_acme_post_only, PUBLIC, false}, \
	{P "acme/order/:id", HTTP_GET, h_acme_post_only, PUBLIC, false}, \
	{P "acme/order/:id/finalize", HTTP_GET, h_acme_post_only, PUBLIC, false}, \
	{P "acme/order/:id/cert", HTTP_GET, h_acme_post_only, PUBLIC, false}, \
	{P "acme/order/:id/cert/:alt", HTTP_GET, h_acme_post_only, PUBLIC, false}, \
	{P "acme/authorization/:id", HTTP_GET, h_acme_post_only, PUBLIC, false}, \
	{P "acme/challenge/:auth/:type", HTTP_GET, h_acme_post_only, PUBLIC, false}, \
	{P "acme/revoke-cert", HTTP_GET, h_acme_post_only, PUBLIC, false}
	ACME_DIR_ROUTES(""),
	ACME_DIR_ROUTES("roles/:role/"),
	ACME_DIR_ROUTES("issuer/:ref/"),
	ACME_DIR_ROUTES("issuer/:ref/roles/:role/"),
#undef ACME_DIR_ROUTES
	{"config/acme", HTTP_GET, h_acme_config_read, TOKEN, false},
	{"config/acme", HTTP_POST, h_acme_config_write, TOKEN, false},
	{"acme/new-eab", HTTP_POST, h_acme_new_eab, TOKEN, false},
	{"roles/:role/acme/new-eab", HTTP_POST, h_acme_new_eab, TOKEN, false},
	{"issuer/:ref/acme/new-eab", HTTP_POST, h_acme_new_eab, TOKEN, false},
	{"issuer/:ref/roles/:role/acme/new-eab", HTTP_POST, h_acme_new_eab, TOKEN, false},
	{"acme/eab", HTTP_LIST, h_acme_eab_list, TOKEN, false},
	{"acme/eab/:id", HTTP_DELETE, h_acme_eab_delete, TOKEN, false},
};
const size_t pki_routes_n = sizeof(pki_routes) / sizeof(pki_routes[0]);

const struct ca_mount *pki_mount(const struct req *rq)
{
	return &rq->mount->ca;
}

int pki_not_found(struct sg_err *err)
{
	return sg_err_set(err, SG_NOT_FOUND, "%s", "");
}

int pki_format_parse(const json_t *body, enum pki_format *out, struct sg_err *err)
{
	const char *s = NULL;

	*out = PKI_FORMAT_PEM;
	if (sg_json_str(body, "format", &s, err) < 0)
		return -1;
	if (s == NULL || *s == '\0' || strcmp(s, "pem") == 0)
		return 0;
	if (strcmp(s, "der") == 0) {
		*out = PKI_FORMAT_DER;
		return 0;
	}
	if (strcmp(s, "pem_bundle") == 0) {
		*out = PKI_FORMAT_PEM_BUNDLE;
		return 0;
	}
	return sg_err_set(err, SG_BAD_REQUEST,
	                  "the \"format\" path parameter must be \"pem\", \"der\", or \"pem_bundle\"");
}

int pki_key_format_parse(const json_t *body, bool *pkcs8, struct sg_err *err)
{
	const char *s = NULL;

	*pkcs8 = false;
	if (sg_json_str(body, "private_key_format", &s, err) < 0)
		return -1;
	/* Vault's "der" means the traditional PKCS#1 / SEC1 form, PEM-wrapped unless format=der. */
	if (s == NULL || *s == '\0' || strcmp(s, "der") == 0 || strcmp(s, "pem") == 0)
		return 0;
	if (strcmp(s, "pkcs8") == 0) {
		*pkcs8 = true;
		return 0;
	}
	return sg_err_set(err, SG_BAD_REQUEST, "the \"private_key_format\" parameter must be \"der\" or \"pkcs8\"");
}

char *pki_trim(char *s)
{
	size_t n;

	if (s == NULL)
		return NULL;
	n = strlen(s);
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	return s;
}

char *pki_cert_string(X509 *x, bool der)
{
	unsigned char *buf = NULL;
	char *s;
	int n;

	if (!der) {
		s = ca_x509_to_pem(x);
		if (s == NULL)
			sg_die("cannot encode a certificate as PEM");
		return pki_trim(s);
	}
	n = i2d_X509(x, &buf);
	if (n <= 0)
		sg_die("cannot encode a certificate as DER");
	s = sg_base64(buf, (size_t)n);
	OPENSSL_free(buf);
	return s;
}

/*
 * Issuer certificates are rendered on every issuance (issuing_ca, ca_chain),
 * always the same few objects of the CA's issuer state. Their text is kept
 * with a reference on the X509 it came from, so no other certificate can
 * take that address while the entry lives; a rebuilt issuer state brings new
 * objects and so new entries.
 */
#define PKI_CERT_TEXT_SLOTS 64

struct cert_text {
	X509 *x;
	bool der;
	char *text;
};

static struct cert_text cert_texts[PKI_CERT_TEXT_SLOTS];
static pthread_mutex_t cert_text_mu = PTHREAD_MUTEX_INITIALIZER;

static char *issuer_cert_string(X509 *x, bool der)
{
	struct cert_text *e = &cert_texts[((uintptr_t)x / 64 + der) % PKI_CERT_TEXT_SLOTS];
	char *s = NULL, *keep;

	pthread_mutex_lock(&cert_text_mu);
	if (e->x == x && e->der == der)
		s = sg_xstrdup(e->text);
	pthread_mutex_unlock(&cert_text_mu);
	if (s != NULL)
		return s;
	s = pki_cert_string(x, der);
	keep = sg_xstrdup(s);
	if (X509_up_ref(x) != 1)
		sg_die("X509_up_ref failed");
	pthread_mutex_lock(&cert_text_mu);
	X509_free(e->x);
	free(e->text);
	e->x = x;
	e->der = der;
	e->text = keep;
	pthread_mutex_unlock(&cert_text_mu);
	return s;
}

json_t *pki_chain_json(STACK_OF(X509) *chain, bool der, bool remove_roots)
{
	json_t *a = json_array();

	for (int i = 0; chain != NULL && i < sk_X509_num(chain); i++) {
		X509 *x = sk_X509_value(chain, i);
		char *s;

		if (remove_roots && pki_self_signed(x))
			continue;
		s = issuer_cert_string(x, der);
		json_array_append_new(a, json_string_nocheck(s)); /* PEM and base64 are ASCII */
		free(s);
	}
	return a;
}

/* Appends s (and a separating "\n" when buf is not empty) to a heap string. */
static void text_add(char **buf, size_t *len, const char *s)
{
	size_t n = strlen(s), sep = *len > 0 ? 1 : 0;

	*buf = sg_xrealloc(*buf, *len + sep + n + 1);
	if (sep)
		(*buf)[(*len)++] = '\n';
	memcpy(*buf + *len, s, n);
	*len += n;
	(*buf)[*len] = '\0';
}

char *pki_chain_pem(STACK_OF(X509) *chain)
{
	char *out = sg_xstrdup("");
	size_t len = 0;

	for (int i = 0; chain != NULL && i < sk_X509_num(chain); i++) {
		char *s = pki_cert_string(sk_X509_value(chain, i), false);

		text_add(&out, &len, s);
		free(s);
	}
	return out;
}

char *pki_cert_serial(X509 *x)
{
	const ASN1_INTEGER *sn = X509_get0_serialNumber(x);

	return sg_hex_colon(ASN1_STRING_get0_data(sn), (size_t)ASN1_STRING_length(sn));
}

bool pki_self_signed(X509 *x)
{
	EVP_PKEY *pub;
	bool ok;

	if (X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)) != 0)
		return false;
	pub = X509_get0_pubkey(x);
	ok = pub != NULL && X509_verify(x, pub) == 1;
	/* A cross-signed or self-issued certificate fails to verify here: not an error. */
	ERR_clear_error();
	return ok;
}

char *pki_key_pem_to_b64(const char *pem, struct sg_err *err)
{
	BIO *bio = NULL;
	char *name = NULL, *header = NULL, *out = NULL;
	unsigned char *der = NULL;
	long len = 0;

	bio = BIO_new_mem_buf(pem, -1);
	if (bio == NULL)
		sg_die("BIO_new_mem_buf failed");
	if (PEM_read_bio(bio, &name, &header, &der, &len) != 1 || len <= 0) {
		/* The detail never quotes the key. */
		sg_err_ossl(err, SG_INTERNAL, "cannot re-encode the private key as DER");
		goto out;
	}
	out = sg_base64(der, (size_t)len);
out:
	if (der != NULL) {
		OPENSSL_cleanse(der, (size_t)len);
		OPENSSL_free(der);
	}
	OPENSSL_free(name);
	OPENSSL_free(header);
	BIO_free(bio);
	return out;
}

/* Wipes and frees a string that may hold key material. */
static void secret_free(char *s)
{
	if (s == NULL)
		return;
	OPENSSL_cleanse(s, strlen(s));
	free(s);
}

json_t *pki_signed_json(const struct pki_signed *s, struct sg_err *err)
{
	bool der = s->format == PKI_FORMAT_DER;
	X509 *issuer = (s->chain != NULL && sk_X509_num(s->chain) > 0) ? sk_X509_value(s->chain, 0) : NULL;
	json_t *data = NULL, *chain = NULL, *ret = NULL;
	char *cert = NULL, *issuing = NULL, *key = NULL, *bundle = NULL;
	size_t blen = 0;

	data = json_object();
	if (s->cert_der != NULL && s->cert_der_len > 0)
		cert = der ? sg_base64(s->cert_der, s->cert_der_len)
		           : pki_trim(ca_pem_text("CERTIFICATE", s->cert_der, s->cert_der_len));
	else
		cert = pki_cert_string(s->cert, der);
	issuing = issuer != NULL ? issuer_cert_string(issuer, der) : sg_xstrdup("");
	chain = pki_chain_json(s->chain, der, s->remove_roots);
	if (s->key_pem != NULL) {
		key = der ? pki_key_pem_to_b64(s->key_pem, err) : pki_trim(sg_xstrdup(s->key_pem));
		if (key == NULL)
			goto out;
	}
	if (s->format == PKI_FORMAT_PEM_BUNDLE) {
		/* certutil.CertBundle.ToPEMBundle: key, certificate, then the chain, joined by "\n". */
		size_t i;
		json_t *el;

		json_t *full = pki_chain_json(s->chain, false, false);

		/* The bundle carries the whole chain even when remove_roots_from_chain trims ca_chain. */
		bundle = sg_xstrdup("");
		if (key != NULL)
			text_add(&bundle, &blen, key);
		text_add(&bundle, &blen, cert);
		json_array_foreach(full, i, el)
			text_add(&bundle, &blen, json_string_value(el));
		json_decref(full);
		json_object_set_new(data, "certificate", json_string(bundle));
	} else {
		json_object_set_new(data, "certificate", json_string_nocheck(cert));
	}
	json_object_set_new(data, "issuing_ca", json_string_nocheck(issuing));
	/* cert-manager decodes ca_chain into []string: an array, omitted when empty as Vault does. */
	if (json_array_size(chain) > 0)
		json_object_set(data, "ca_chain", chain);
	json_object_set_new(data, "serial_number", json_string(s->serial != NULL ? s->serial : ""));
	/* consul-template parses expiration as json.Number: an integer, never a string. */
	json_object_set_new(data, "expiration", json_integer(s->expiration));
	if (key != NULL) {
		json_object_set_new(data, "private_key", json_string(key));
		json_object_set_new(data, "private_key_type", json_string(s->key_type != NULL ? s->key_type : ""));
	}
	ret = data;
	data = NULL;
out:
	json_decref(data);
	json_decref(chain);
	free(cert);
	free(issuing);
	secret_free(key);
	secret_free(bundle);
	return ret;
}

void pki_warn_all(struct resp *rs, const struct sg_strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		resp_warn(rs, "%s", l->v[i]);
}

bool pki_name_valid(const char *s)
{
	return s != NULL && *s != '\0' && strlen(s) <= PKI_NAME_MAX && role_name_valid(s);
}
