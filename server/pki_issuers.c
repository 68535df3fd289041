/*
 * Issuers, keys and the mount's CA configuration (compat 1.1, 1.9):
 * root/intermediate generation, imports, sign-intermediate, issuer and key
 * objects, config/{issuers,keys,urls,cluster}.
 */
#include "server/pki.h"

#include <openssl/crypto.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CT_DER "application/pkix-cert"
#define CT_PEM_CHAIN "application/pem-certificate-chain"

enum gen_type { GEN_INTERNAL, GEN_EXPORTED, GEN_EXISTING };

static int gen_type_parse(const char *t, bool existing_ok, enum gen_type *out, struct sg_err *err)
{
	if (t != NULL && strcmp(t, "internal") == 0) {
		*out = GEN_INTERNAL;
		return 0;
	}
	if (t != NULL && strcmp(t, "exported") == 0) {
		*out = GEN_EXPORTED;
		return 0;
	}
	if (existing_ok && t != NULL && strcmp(t, "existing") == 0) {
		*out = GEN_EXISTING;
		return 0;
	}
	if (t != NULL && strcmp(t, "kms") == 0)
		return sg_err_set(err, SG_BAD_REQUEST, "managed keys (type kms) are not supported");
	return sg_err_set(err, SG_BAD_REQUEST, "unknown type '%s': must be internal, exported%s", t != NULL ? t : "",
	                  existing_ok ? " or existing" : "");
}

/* issuer_name / key_name: empty allowed (no name), "default" reserved, else Vault's name rule. */
static int name_check(const char *field, const char *s, struct sg_err *err)
{
	if (s == NULL || *s == '\0')
		return 0;
	if (strcmp(s, "default") == 0)
		return sg_err_set(err, SG_BAD_REQUEST, "%s 'default' is reserved", field);
	if (!pki_name_valid(s))
		return sg_err_set(err, SG_BAD_REQUEST,
		                  "%s must be at most %d characters of [A-Za-z0-9_.-], starting and ending with "
		                  "[A-Za-z0-9_]",
		                  field, PKI_NAME_MAX);
	return 0;
}

static const struct {
	const char *key;
	size_t off;
} ca_list_fields[] = {
	{"alt_names", offsetof(struct ca_ca_params, alt_names)},
	{"ip_sans", offsetof(struct ca_ca_params, ip_sans)},
	{"uri_sans", offsetof(struct ca_ca_params, uri_sans)},
	{"other_sans", offsetof(struct ca_ca_params, other_sans)},
	{"ou", offsetof(struct ca_ca_params, ou)},
	{"organization", offsetof(struct ca_ca_params, organization)},
	{"country", offsetof(struct ca_ca_params, country)},
	{"locality", offsetof(struct ca_ca_params, locality)},
	{"province", offsetof(struct ca_ca_params, province)},
	{"street_address", offsetof(struct ca_ca_params, street_address)},
	{"postal_code", offsetof(struct ca_ca_params, postal_code)},
	{"permitted_dns_domains", offsetof(struct ca_ca_params, permitted_dns_domains)},
};

static const struct {
	const char *key;
	size_t off;
} ca_str_fields[] = {
	{"common_name", offsetof(struct ca_ca_params, common_name)},
	{"serial_number", offsetof(struct ca_ca_params, serial_number)},
	{"not_after", offsetof(struct ca_ca_params, not_after)},
	{"issuer_name", offsetof(struct ca_ca_params, issuer_name)},
	{"key_name", offsetof(struct ca_ca_params, key_name)},
};

/*
 * The body of root/generate, intermediate/generate and sign-intermediate
 * into p (strings borrowed from the body). new_key: key_type/key_bits
 * describe a key to generate (rsa 2048 when absent, as Vault).
 */
static int ca_params_parse(const json_t *b, struct ca_ca_params *p, bool new_key, struct sg_err *err)
{
	int64_t v;
	const char *kt = "rsa";
	int64_t kb = 0;
	int got;

	for (size_t i = 0; i < sizeof(ca_list_fields) / sizeof(ca_list_fields[0]); i++)
		if (sg_json_list(b, ca_list_fields[i].key, (struct sg_strlist *)((char *)p + ca_list_fields[i].off),
		                 err) < 0)
			return -1;
	for (size_t i = 0; i < sizeof(ca_str_fields) / sizeof(ca_str_fields[0]); i++) {
		const char **dst = (const char **)((char *)p + ca_str_fields[i].off);

		if (sg_json_str(b, ca_str_fields[i].key, dst, err) < 0)
			return -1;
		if (*dst != NULL && **dst == '\0')
			*dst = NULL;
	}
	if (sg_json_duration(b, "ttl", &p->ttl, err) < 0)
		return -1;
	if (p->ttl > 0 && p->not_after != NULL)
		return sg_err_set(err, SG_BAD_REQUEST,
		                  "either ttl or not_after should be provided. Both should not be provided in the same "
		                  "request");
	got = sg_json_duration(b, "not_before_duration", &v, err);
	if (got < 0)
		return -1;
	if (got > 0)
		p->not_before_duration = v;
	got = sg_json_int(b, "max_path_length", &v, err);
	if (got < 0)
		return -1;
	if (got > 0) {
		/* RFC 5280 4.2.1.9: pathLenConstraint is a non-negative INTEGER; -1 is Vault's "none". */
		if (v < -1 || v > 255)
			return sg_err_set(err, SG_BAD_REQUEST, "max_path_length must be between -1 and 255");
		p->max_path_length = (int)v;
	}
	got = sg_json_int(b, "signature_bits", &v, err);
	if (got < 0)
		return -1;
	if (got > 0) {
		if (v != 0 && v != 256 && v != 384 && v != 512)
			return sg_err_set(err, SG_BAD_REQUEST, "signature_bits must be 0, 256, 384 or 512");
		p->signature_bits = (int)v;
	}
	if (sg_json_bool(b, "exclude_cn_from_sans", &p->exclude_cn_from_sans, err) < 0 ||
	    sg_json_bool(b, "use_pss", &p->use_pss, err) < 0 ||
	    sg_json_bool(b, "use_csr_values", &p->use_csr_values, err) < 0 ||
	    pki_key_format_parse(b, &p->private_key_pkcs8, err) < 0)
		return -1;
	if (name_check("issuer_name", p->issuer_name, err) < 0 || name_check("key_name", p->key_name, err) < 0)
		return -1;
	if (!new_key)
		return 0;
	if (sg_json_str(b, "key_type", &kt, err) < 0 || sg_json_int(b, "key_bits", &kb, err) < 0)
		return -1;
	if (*kt == '\0')
		kt = "rsa";
	return ca_keyspec_parse(kt, kb, &p->key, err);
}

static int require_cn(const struct ca_ca_params *p, struct sg_err *err)
{
	if (p->common_name == NULL)
		return sg_err_set(err, SG_BAD_REQUEST, "the common_name field is required");
	return 0;
}

/* A private key PEM as the answer wants it: trimmed PEM, or base64 DER for format=der. */
static char *key_string(const char *pem, bool der, struct sg_err *err)
{
	return der ? pki_key_pem_to_b64(pem, err) : pki_trim(sg_xstrdup(pem));
}

static void secret_free(char *s)
{
	if (s == NULL)
		return;
	OPENSSL_cleanse(s, strlen(s));
	free(s);
}

/* The body of a root or intermediate generate request. */
static int gen_parse(struct req *rq, struct ca_ca_params *p, enum pki_format *fmt, struct sg_err *err)
{
	enum gen_type type;
	const char *key_ref = NULL;

	if (gen_type_parse(req_param(rq, "type"), true, &type, err) < 0 ||
	    ca_params_parse(rq->body, p, type != GEN_EXISTING, err) < 0 || require_cn(p, err) < 0 ||
	    pki_format_parse(rq->body, fmt, err) < 0)
		return -1;
	if (type == GEN_EXISTING) {
		if (sg_json_str(rq->body, "key_ref", &key_ref, err) < 0)
			return -1;
		p->key_ref = key_ref != NULL && *key_ref != '\0' ? key_ref : "default";
	}
	p->exported = type == GEN_EXPORTED;
	return 0;
}

/*
 * The answer's main field (certificate or csr) and, with an exported key,
 * private_key and private_key_type; format=pem_bundle puts the key before
 * the main field's text, as Vault does.
 */
static int gen_respond(struct resp *rs, json_t *d, const struct ca_gen_result *res, enum pki_format fmt,
                       const char *field, const char *text, struct sg_err *err)
{
	char *key = NULL, *bundle = NULL;

	if (res->private_key_pem != NULL) {
		key = key_string(res->private_key_pem, fmt == PKI_FORMAT_DER, err);
		if (key == NULL) {
			json_decref(d);
			return -1;
		}
	}
	if (fmt == PKI_FORMAT_PEM_BUNDLE && key != NULL) {
		bundle = sg_xasprintf("%s\n%s", key, text);
		json_object_set_new(d, field, json_string(bundle));
	} else {
		json_object_set_new(d, field, json_string(text));
	}
	json_object_set_new(d, "key_id", json_string(res->key_id));
	if (key != NULL) {
		json_object_set_new(d, "private_key", json_string(key));
		json_object_set_new(d, "private_key_type",
		                    json_string(res->private_key_type != NULL ? res->private_key_type : ""));
	}
	resp_data(rs, d);
	pki_warn_all(rs, &res->warnings);
	secret_free(key);
	secret_free(bundle);
	return 0;
}

/* POST root/generate/:type and issuers/generate/root/:type. */
int h_root_generate(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct ca_ca_params p;
	struct ca_gen_result res = {0};
	enum pki_format fmt;
	char *cert = NULL;
	json_t *d;
	int ret = -1;

	ca_ca_params_init(&p);
	if (gen_parse(rq, &p, &fmt, err) < 0 || ca_root_generate(server_ca(rq->srv), pki_mount(rq), &p, &res, err) < 0)
		goto out;
	cert = pki_cert_string(res.cert, fmt == PKI_FORMAT_DER);
	d = json_object();
	json_object_set_new(d, "issuing_ca", json_string(cert));
	json_object_set_new(d, "serial_number", json_string(res.serial != NULL ? res.serial : ""));
	json_object_set_new(d, "expiration", json_integer(res.expiration));
	json_object_set_new(d, "issuer_id", json_string(res.issuer_id));
	json_object_set_new(d, "issuer_name", json_string(res.issuer_name != NULL ? res.issuer_name : ""));
	json_object_set_new(d, "key_name", json_string(res.key_name != NULL ? res.key_name : ""));
	ret = gen_respond(rs, d, &res, fmt, "certificate", cert, err);
out:
	free(cert);
	ca_gen_result_clear(&res);
	ca_ca_params_clear(&p);
	return ret;
}

/* The CSR as PEM (trimmed) or base64 DER. */
static char *csr_string(X509_REQ *r, bool der, struct sg_err *err)
{
	unsigned char *buf = NULL;
	char *s;
	int n;

	if (!der) {
		s = ca_csr_to_pem(r);
		if (s == NULL)
			sg_err_ossl(err, SG_CRYPTO, "cannot encode the CSR");
		return pki_trim(s);
	}
	n = i2d_X509_REQ(r, &buf);
	if (n <= 0) {
		sg_err_ossl(err, SG_CRYPTO, "cannot encode the CSR");
		return NULL;
	}
	s = sg_base64(buf, (size_t)n);
	OPENSSL_free(buf);
	return s;
}

/* POST intermediate/generate/:type and issuers/generate/intermediate/:type: {csr, key_id}. */
int h_intermediate_generate(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct ca_ca_params p;
	struct ca_gen_result res = {0};
	enum pki_format fmt;
	char *csr = NULL;
	int ret = -1;

	ca_ca_params_init(&p);
	if (gen_parse(rq, &p, &fmt, err) < 0 ||
	    ca_intermediate_generate(server_ca(rq->srv), pki_mount(rq), &p, &res, err) < 0)
		goto out;
	csr = csr_string(res.csr, fmt == PKI_FORMAT_DER, err);
	if (csr != NULL)
		ret = gen_respond(rs, json_object(), &res, fmt, "csr", csr, err);
out:
	free(csr);
	ca_gen_result_clear(&res);
	ca_ca_params_clear(&p);
	return ret;
}

/* Go's nil slices render as null: Vault's import answer shows empty lists so. */
static json_t *list_or_null(const struct sg_strlist *l)
{
	return l->n > 0 ? sg_strlist_to_json(l) : json_null();
}

static int import_run(struct req *rq, struct resp *rs, const char *field, bool allow_keys, struct sg_err *err)
{
	struct ca_import_result res = {0};
	const char *pem = NULL;
	json_t *d, *map;
	int ret = -1;

	if (sg_json_str(rq->body, field, &pem, err) < 0)
		goto out;
	if (pem == NULL || *pem == '\0') {
		sg_err_set(err, SG_BAD_REQUEST, "the %s field is required", field);
		goto out;
	}
	if (strlen(pem) > CA_MAX_BUNDLE_BYTES) {
		sg_err_set(err, SG_TOO_LARGE, "%s is larger than %u bytes", field, CA_MAX_BUNDLE_BYTES);
		goto out;
	}
	if (ca_import_pem(server_ca(rq->srv), pki_mount(rq), pem, strlen(pem), allow_keys, &res, err) < 0)
		goto out;
	map = json_object();
	for (size_t i = 0; i < res.mapping_issuers.n && i < res.mapping_keys.n; i++)
		json_object_set_new(map, res.mapping_issuers.v[i], json_string(res.mapping_keys.v[i]));
	d = json_object();
	json_object_set_new(d, "mapping", map);
	json_object_set_new(d, "imported_keys", list_or_null(&res.imported_keys));
	json_object_set_new(d, "imported_issuers", list_or_null(&res.imported_issuers));
	json_object_set_new(d, "existing_keys", list_or_null(&res.existing_keys));
	json_object_set_new(d, "existing_issuers", list_or_null(&res.existing_issuers));
	resp_data(rs, d);
	ret = 0;
out:
	ca_import_result_clear(&res);
	return ret;
}

/* The signed intermediate (certificate, may carry its chain) becomes an issuer for the pending key. */
int h_intermediate_set_signed(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return import_run(rq, rs, "certificate", true, err);
}

/* config/ca and issuers/import/bundle: certificates and unencrypted keys, any order. */
int h_bundle_import(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return import_run(rq, rs, "pem_bundle", true, err);
}

/* issuers/import/cert refuses private keys. */
int h_cert_import(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return import_run(rq, rs, "pem_bundle", false, err);
}

/* POST root/sign-intermediate (default issuer, or body issuer_ref) and issuer/:ref/sign-intermediate. */
int h_sign_intermediate(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct ca_ca_params p;
	struct ca_result res = {0};
	struct pki_signed out = {0};
	const char *ref = req_param(rq, "ref"), *csr_pem = NULL;
	X509_REQ *csr = NULL;
	struct role_names names;
	json_t *d;
	int ret = -1;

	role_names_init(&names);
	ca_ca_params_init(&p);
	if (ca_params_parse(rq->body, &p, false, err) < 0 || pki_format_parse(rq->body, &out.format, err) < 0 ||
	    sg_json_str(rq->body, "csr", &csr_pem, err) < 0)
		goto out;
	if (ref == NULL) {
		if (sg_json_str(rq->body, "issuer_ref", &ref, err) < 0)
			goto out;
		if (ref == NULL || *ref == '\0')
			ref = "default";
	}
	if (csr_pem == NULL || *csr_pem == '\0') {
		sg_err_set(err, SG_BAD_CSR, "\"csr\" is empty");
		goto out;
	}
	csr = ca_csr_parse((const unsigned char *)csr_pem, strlen(csr_pem), err);
	if (csr == NULL)
		goto out;
	/* Vault's pathIssuerSignIntermediate: no common_name means use_csr_common_name. */
	if (p.common_name == NULL && !p.use_csr_values) {
		if (ca_csr_names(csr, &names, err) < 0)
			goto out;
		p.common_name = names.common_name;
	}
	if (ca_sign_intermediate(server_ca(rq->srv), pki_mount(rq), ref, csr, &p, &res, err) < 0)
		goto out;
	out.cert = res.cert;
	out.chain = res.chain;
	out.serial = res.serial;
	out.expiration = res.expiration;
	d = pki_signed_json(&out, err);
	if (d == NULL)
		goto out;
	resp_data(rs, d);
	pki_warn_all(rs, &res.warnings);
	ret = 0;
out:
	X509_REQ_free(csr);
	ca_result_clear(&res);
	ca_ca_params_clear(&p);
	role_names_clear(&names);
	return ret;
}

/* DELETE root (sudo): every issuer and key of the mount. */
int h_root_delete(struct req *rq, struct resp *rs, struct sg_err *err)
{
	(void)rs;
	return ca_issuers_delete_all(server_ca(rq->srv), pki_mount(rq), err);
}

/* ---- Issuer objects ---- */

static const char *const usage_names[] = {"read-only", "issuing-certificates", "crl-signing", "ocsp-signing"};

static const char *behavior_name(enum ca_not_after_behavior b)
{
	switch (b) {
	case CA_NA_TRUNCATE:
		return "truncate";
	case CA_NA_PERMIT:
		return "permit";
	case CA_NA_ERR:
		break;
	}
	return "err";
}

/*
 * The algorithm the signer uses for this issuer's CRLs and OCSP answers
 * (ca.h: the digest follows the key), in certutil's names. It follows from
 * the key, so a write may only repeat it.
 */
static const char *revocation_sig_alg(X509 *cert)
{
	const char *type = NULL;
	int bits = 0;
	struct sg_err e;

	sg_err_init(&e);
	if (cert == NULL || ca_key_describe(X509_get0_pubkey(cert), &type, &bits, &e) < 0)
		return "";
	if (strcmp(type, "rsa") == 0)
		return "SHA256WithRSA";
	if (strcmp(type, "ed25519") == 0)
		return "PureEd25519";
	if (strcmp(type, "ec") == 0)
		return bits >= 521 ? "ECDSAWithSHA512" : bits >= 384 ? "ECDSAWithSHA384" : "ECDSAWithSHA256";
	return "";
}

/* PEM with its final newline, as Vault stores issuer certificates. */
static json_t *issuer_chain_json(STACK_OF(X509) *chain)
{
	json_t *a = json_array();

	for (int i = 0; chain != NULL && i < sk_X509_num(chain); i++) {
		char *s = ca_x509_to_pem(sk_X509_value(chain, i));

		if (s == NULL)
			sg_die("cannot encode a certificate as PEM");
		json_array_append_new(a, json_string(s));
		free(s);
	}
	return a;
}

static json_t *issuer_cert_json(X509 *x)
{
	char *s = ca_x509_to_pem(x);
	json_t *j;

	if (s == NULL)
		sg_die("cannot encode a certificate as PEM");
	j = json_string(s);
	free(s);
	return j;
}

/* Vault's respondReadIssuer. */
static json_t *issuer_json(const struct ca_issuer_info *i)
{
	json_t *d = json_object();
	char *usage = sg_xstrdup("");
	size_t ulen = 0;

	for (size_t k = 0; k < sizeof(usage_names) / sizeof(usage_names[0]); k++) {
		if (!sg_strlist_has(&i->usage, usage_names[k]))
			continue;
		usage = sg_xrealloc(usage, ulen + strlen(usage_names[k]) + 2);
		ulen += (size_t)snprintf(usage + ulen, strlen(usage_names[k]) + 2, "%s%s", ulen ? "," : "",
		                         usage_names[k]);
	}
	json_object_set_new(d, "issuer_id", json_string(i->id));
	json_object_set_new(d, "issuer_name", json_string(i->name != NULL ? i->name : ""));
	json_object_set_new(d, "key_id", json_string(i->key_id));
	json_object_set_new(d, "certificate", issuer_cert_json(i->cert));
	json_object_set_new(d, "ca_chain", issuer_chain_json(i->chain));
	json_object_set_new(d, "manual_chain", list_or_null(&i->manual_chain));
	json_object_set_new(d, "leaf_not_after_behavior", json_string(behavior_name(i->leaf_not_after_behavior)));
	json_object_set_new(d, "usage", json_string(usage));
	json_object_set_new(d, "revocation_signature_algorithm", json_string(revocation_sig_alg(i->cert)));
	json_object_set_new(d, "revoked", json_boolean(i->revoked));
	json_object_set_new(d, "revocation_time", json_integer(i->revoked ? i->revocation_time : 0));
	if (i->revoked) {
		char t[32];

		sg_time_format_rfc3339(i->revocation_time, t, sizeof(t));
		json_object_set_new(d, "revocation_time_rfc3339", json_string(t));
	}
	json_object_set_new(d, "issuing_certificates", sg_strlist_to_json(&i->urls.issuing_certificates));
	json_object_set_new(d, "crl_distribution_points", sg_strlist_to_json(&i->urls.crl_distribution_points));
	json_object_set_new(d, "delta_crl_distribution_points",
	                    sg_strlist_to_json(&i->urls.delta_crl_distribution_points));
	json_object_set_new(d, "ocsp_servers", sg_strlist_to_json(&i->urls.ocsp_servers));
	json_object_set_new(d, "enable_aia_url_templating", json_boolean(i->urls.enable_templating));
	free(usage);
	return d;
}

/* GET issuer/:ref (authenticated: it shows the configuration, not just the certificate). */
int h_issuer_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct ca_issuer_info info = {0};

	if (ca_issuer_get(server_ca(rq->srv), pki_mount(rq), req_param(rq, "ref"), &info, err) < 0)
		return -1;
	resp_data(rs, issuer_json(&info));
	ca_issuer_info_clear(&info);
	return 0;
}

static bool url_char_ok(unsigned char c)
{
	return c > 0x20 && c < 0x7f;
}

/*
 * A URL an issuer hands out in AIA/CRL DP extensions: "<scheme>://<rest>"
 * (RFC 3986 3.1 scheme), printable ASCII without spaces, and "{{...}}"
 * placeholders only when templating is on.
 */
static int urls_check(const struct sg_strlist *l, const char *field, bool templating, struct sg_err *err)
{
	for (size_t i = 0; i < l->n; i++) {
		const char *u = l->v[i], *sep = strstr(u, "://");
		bool ok = sep != NULL && sep > u && strlen(u) <= PKI_URL_MAX && sep[3] != '\0';

		for (const char *p = u; ok && p < sep; p++)
			ok = (p == u) ? ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))
			              : ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			                 (*p >= '0' && *p <= '9') || *p == '+' || *p == '-' || *p == '.');
		for (const char *p = u; ok && *p; p++)
			ok = url_char_ok((unsigned char)*p);
		if (ok && !templating && strstr(u, "{{") != NULL)
			ok = false;
		if (!ok)
			return sg_err_set(err, SG_BAD_REQUEST,
			                  "invalid URL found in Authority Information Access (AIA) parameter %s: %.200s%s",
			                  field, u,
			                  !templating && strstr(u, "{{") ? " (templates need enable_templating)" : "");
	}
	return 0;
}

static const struct {
	const char *key;
	size_t off;
} url_fields[] = {
	{"issuing_certificates", offsetof(struct ca_urls, issuing_certificates)},
	{"crl_distribution_points", offsetof(struct ca_urls, crl_distribution_points)},
	{"delta_crl_distribution_points", offsetof(struct ca_urls, delta_crl_distribution_points)},
	{"ocsp_servers", offsetof(struct ca_urls, ocsp_servers)},
};

/* Applies the URL lists present in b (templating flag under tmpl_key), then validates all of them. */
static int urls_apply(const json_t *b, struct ca_urls *u, const char *tmpl_key, struct sg_err *err)
{
	for (size_t i = 0; i < sizeof(url_fields) / sizeof(url_fields[0]); i++)
		if (sg_json_list(b, url_fields[i].key, (struct sg_strlist *)((char *)u + url_fields[i].off), err) < 0)
			return -1;
	if (sg_json_bool(b, tmpl_key, &u->enable_templating, err) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(url_fields) / sizeof(url_fields[0]); i++)
		if (urls_check((struct sg_strlist *)((char *)u + url_fields[i].off), url_fields[i].key,
		               u->enable_templating, err) < 0)
			return -1;
	return 0;
}

/*
 * POST issuer/:ref writes every field (absent ones revert to defaults, as
 * Vault's pathUpdateIssuer); PATCH changes only the fields present.
 */
static int issuer_update(struct req *rq, struct resp *rs, bool patch, struct sg_err *err)
{
	struct ca_issuer_info info = {0}, after = {0};
	const char *name = NULL, *behavior = NULL, *alg = NULL;
	struct sg_strlist usage = {0};
	int got, ret = -1;

	if (ca_issuer_get(server_ca(rq->srv), pki_mount(rq), req_param(rq, "ref"), &info, err) < 0)
		goto out;
	if (!patch) {
		free(info.name);
		info.name = sg_xstrdup("");
		info.leaf_not_after_behavior = CA_NA_ERR;
		sg_strlist_clear(&info.usage);
		for (size_t k = 0; k < sizeof(usage_names) / sizeof(usage_names[0]); k++)
			sg_strlist_add(&info.usage, usage_names[k]);
		sg_strlist_clear(&info.manual_chain);
		ca_urls_clear(&info.urls);
	}
	got = sg_json_str(rq->body, "issuer_name", &name, err);
	if (got < 0 || name_check("issuer_name", name, err) < 0)
		goto out;
	if (got > 0) {
		free(info.name);
		info.name = sg_xstrdup(name);
	}
	got = sg_json_str(rq->body, "leaf_not_after_behavior", &behavior, err);
	if (got < 0)
		goto out;
	if (got > 0) {
		if (strcmp(behavior, "err") == 0) {
			info.leaf_not_after_behavior = CA_NA_ERR;
		} else if (strcmp(behavior, "truncate") == 0) {
			info.leaf_not_after_behavior = CA_NA_TRUNCATE;
		} else if (strcmp(behavior, "permit") == 0) {
			info.leaf_not_after_behavior = CA_NA_PERMIT;
		} else {
			sg_err_set(err, SG_BAD_REQUEST,
			           "Unknown value for field `leaf_not_after_behavior`. Possible values are `err`, "
			           "`truncate`, and `permit`.");
			goto out;
		}
	}
	got = sg_json_list(rq->body, "usage", &usage, err);
	if (got < 0)
		goto out;
	if (got > 0) {
		for (size_t i = 0; i < usage.n; i++) {
			bool known = false;

			for (size_t k = 0; k < sizeof(usage_names) / sizeof(usage_names[0]); k++)
				known = known || strcmp(usage.v[i], usage_names[k]) == 0;
			if (!known) {
				sg_err_set(err, SG_BAD_REQUEST,
				           "Unable to parse specified usages: unknown usage '%.64s' - valid values are "
				           "read-only, issuing-certificates, crl-signing, ocsp-signing",
				           usage.v[i]);
				goto out;
			}
		}
		sg_strlist_copy(&info.usage, &usage);
	}
	if (sg_json_list(rq->body, "manual_chain", &info.manual_chain, err) < 0 ||
	    urls_apply(rq->body, &info.urls, "enable_aia_url_templating", err) < 0)
		goto out;
	/* Vault allows "self" as the first manual_chain entry: this issuer. */
	if (info.manual_chain.n > 0 && strcmp(info.manual_chain.v[0], "self") == 0) {
		free(info.manual_chain.v[0]);
		info.manual_chain.v[0] = sg_xstrdup(info.id);
	}
	if (sg_json_str(rq->body, "revocation_signature_algorithm", &alg, err) < 0)
		goto out;
	if (alg != NULL && *alg != '\0' && strcasecmp(alg, revocation_sig_alg(info.cert)) != 0) {
		sg_err_set(err, SG_BAD_REQUEST,
		           "revocation_signature_algorithm follows the issuer's key (%s) and cannot be changed",
		           revocation_sig_alg(info.cert));
		goto out;
	}
	if (ca_issuer_update(server_ca(rq->srv), pki_mount(rq), info.id, &info, err) < 0)
		goto out;
	if (ca_issuer_get(server_ca(rq->srv), pki_mount(rq), info.id, &after, err) < 0)
		goto out;
	resp_data(rs, issuer_json(&after));
	ret = 0;
out:
	sg_strlist_clear(&usage);
	ca_issuer_info_clear(&info);
	ca_issuer_info_clear(&after);
	return ret;
}

int h_issuer_write(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return issuer_update(rq, rs, false, err);
}

int h_issuer_patch(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return issuer_update(rq, rs, true, err);
}

/* DELETE issuer/:ref: an unknown reference counts as deleted (204), as in Vault. */
int h_issuer_delete(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct ca_issuer_info info = {0};
	const char *ref = req_param(rq, "ref");
	struct sg_err e;
	int ret = -1;

	sg_err_init(&e);
	if (ca_issuer_get(server_ca(rq->srv), pki_mount(rq), ref, &info, &e) < 0) {
		if (e.code == SG_UNKNOWN_ISSUER || e.code == SG_NOT_FOUND)
			return 0;
		*err = e;
		return -1;
	}
	if (ca_issuer_delete(server_ca(rq->srv), pki_mount(rq), info.id, err) < 0)
		goto out;
	if (info.is_default)
		resp_warn(rs,
		          "Deleted issuer %s (via issuer_ref %.128s); this was configured as the default issuer. "
		          "Operations without an explicit issuer will not work until a new default is configured.",
		          info.id, ref);
	ret = 0;
out:
	ca_issuer_info_clear(&info);
	return ret;
}

/* POST issuer/:ref/revoke: answers with the issuer, now revoked. */
int h_issuer_revoke(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct ca_issuer_info info = {0};

	if (ca_issuer_revoke(server_ca(rq->srv), pki_mount(rq), req_param(rq, "ref"), &info, err) < 0) {
		ca_issuer_info_clear(&info);
		return -1;
	}
	resp_data(rs, issuer_json(&info));
	ca_issuer_info_clear(&info);
	return 0;
}

/* GET issuer/:ref/json (public): the certificate and its chain. */
int h_issuer_json_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct ca_issuer_info info = {0};
	json_t *d;

	if (ca_issuer_get(server_ca(rq->srv), pki_mount(rq), req_param(rq, "ref"), &info, err) < 0)
		return -1;
	d = json_object();
	json_object_set_new(d, "certificate", issuer_cert_json(info.cert));
	json_object_set_new(d, "ca_chain", issuer_chain_json(info.chain));
	json_object_set_new(d, "issuer_id", json_string(info.id));
	json_object_set_new(d, "issuer_name", json_string(info.name != NULL ? info.name : ""));
	resp_data(rs, d);
	ca_issuer_info_clear(&info);
	return 0;
}

/* GET issuer/:ref/der and issuer/:ref/pem (public, raw). */
static int issuer_raw(struct req *rq, struct resp *rs, bool pem, struct sg_err *err)
{
	struct ca_issuer_info info = {0};
	int ret = -1;

	if (ca_issuer_get(server_ca(rq->srv), pki_mount(rq), req_param(rq, "ref"), &info, err) == 0)
		ret = pki_cert_raw(rs, info.cert, pem, err);
	ca_issuer_info_clear(&info);
	return ret;
}

int h_issuer_der_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return issuer_raw(rq, rs, false, err);
}

int h_issuer_pem_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return issuer_raw(rq, rs, true, err);
}

/* LIST issuers (public): keys plus key_info {issuer_name, is_default, serial_number, key_id}. */
int h_issuers_list(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct ca_issuer_info *v = NULL;
	size_t n = 0;
	json_t *keys, *info, *d;

	if (ca_issuer_list(server_ca(rq->srv), pki_mount(rq), &v, &n, err) < 0)
		return -1;
	if (n == 0) {
		free(v);
		return pki_not_found(err);
	}
	keys = json_array();
	info = json_object();
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_object();
		char *serial = pki_cert_serial(v[i].cert);

		json_array_append_new(keys, json_string(v[i].id));
		json_object_set_new(e, "issuer_name", json_string(v[i].name != NULL ? v[i].name : ""));
		json_object_set_new(e, "is_default", json_boolean(v[i].is_default));
		json_object_set_new(e, "serial_number", json_string(serial));
		json_object_set_new(e, "key_id", json_string(v[i].key_id));
		json_object_set_new(info, v[i].id, e);
		free(serial);
		ca_issuer_info_clear(&v[i]);
	}
	free(v);
	d = json_object();
	json_object_set_new(d, "keys", keys);
	json_object_set_new(d, "key_info", info);
	resp_data(rs, d);
	return 0;
}

/* ---- config/issuers ---- */

static int issuers_config_answer(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct ca_issuers_config c;
	json_t *d;

	memset(&c, 0, sizeof(c));
	if (ca_issuers_config_get(server_ca(rq->srv), pki_mount(rq), &c, err) < 0)
		return -1;
	d = json_object();
	json_object_set_new(d, "default", json_string(c.default_id));
	json_object_set_new(d, "default_follows_latest_issuer", json_boolean(c.default_follows_latest_issuer));
	resp_data(rs, d);
	return 0;
}

int h_config_issuers_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return issuers_config_answer(rq, rs, err);
}

int h_config_issuers_write(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct ca_issuers_config cur;
	const char *def = NULL;
	bool follows;
	int has_def, has_follows;

	memset(&cur, 0, sizeof(cur));
	has_def = sg_json_str(rq->body, "default", &def, err);
	if (has_def < 0)
		return -1;
	if (has_def && (*def == '\0' || strcmp(def, "default") == 0))
		return sg_err_set(err, SG_BAD_REQUEST,
		                  "Invalid issuer specification; must be non-empty and can't be 'default'.");
	if (ca_issuers_config_get(server_ca(rq->srv), pki_mount(rq), &cur, err) < 0)
		return -1;
	follows = cur.default_follows_latest_issuer;
	has_follows = sg_json_bool(rq->body, "default_follows_latest_issuer", &follows, err);
	if (has_follows < 0)
		return -1;
	if (!has_def && !has_follows)
		return sg_err_set(err, SG_BAD_REQUEST,
		                  "Invalid issuer specification; must be non-empty and can't be 'default'.");
	if (ca_issuers_config_set(server_ca(rq->srv), pki_mount(rq), has_def ? def : NULL, follows, err) < 0)
		return -1;
	return issuers_config_answer(rq, rs, err);
}

/* ---- Keys ---- */

static json_t *key_json(const struct ca_key_info *k)
{
	json_t *d = json_object();

	json_object_set_new(d, "key_id", json_string(k->id));
	json_object_set_new(d, "key_name", json_string(k->name != NULL ? k->name : ""));
	json_object_set_new(d, "key_type", json_string(k->type != NULL ? k->type : ""));
	return d;
}

int h_keys_list(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct ca_key_info *v = NULL;
	size_t n = 0;
	json_t *keys, *info, *d;

	if (ca_key_list(server_ca(rq->srv), pki_mount(rq), &v, &n, err) < 0)
		return -1;
	if (n == 0) {
		free(v);
		return pki_not_found(err);
	}
	keys = json_array();
	info = json_object();
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_object();

		json_array_append_new(keys, json_string(v[i].id));
		json_object_set_new(e, "key_name", json_string(v[i].name != NULL ? v[i].name : ""));
		json_object_set_new(info, v[i].id, e);
		ca_key_info_clear(&v[i]);
	}
	free(v);
	d = json_object();
	json_object_set_new(d, "keys", keys);
	json_object_set_new(d, "key_info", info);
	resp_data(rs, d);
	return 0;
}

int h_key_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct ca_key_info k = {0};

	if (ca_key_get(server_ca(rq->srv), pki_mount(rq), req_param(rq, "ref"), &k, err) < 0)
		return -1;
	resp_data(rs, key_json(&k));
	ca_key_info_clear(&k);
	return 0;
}

/* POST key/:ref sets key_name; an absent key_name clears it, as Vault's pathUpdateKeyHandler. */
int h_key_write(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct ca_key_info k = {0};
	const char *name = NULL;
	char id[sizeof(k.id)];
	int ret = -1;

	if (sg_json_str(rq->body, "key_name", &name, err) < 0 || name_check("key_name", name, err) < 0)
		goto out;
	if (ca_key_get(server_ca(rq->srv), pki_mount(rq), req_param(rq, "ref"), &k, err) < 0 ||
	    ca_key_rename(server_ca(rq->srv), pki_mount(rq), k.id, name != NULL ? name : "", err) < 0)
		goto out;
	/* Read back by id: the reference may have been the old name. */
	memcpy(id, k.id, sizeof(id));
	ca_key_info_clear(&k);
	memset(&k, 0, sizeof(k));
	if (ca_key_get(server_ca(rq->srv), pki_mount(rq), id, &k, err) < 0)
		goto out;
	resp_data(rs, key_json(&k));
	ret = 0;
out:
	ca_key_info_clear(&k);
	return ret;
}

int h_key_delete(struct req *rq, struct resp *rs, struct sg_err *err)
{
	(void)rs;
	return ca_key_delete(server_ca(rq->srv), pki_mount(rq), req_param(rq, "ref"), err);
}

/* POST keys/generate/:type (internal|exported). */
int h_key_generate(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct ca_keyspec spec;
	struct ca_key_info k = {0};
	enum gen_type type;
	const char *kt = "rsa", *name = NULL;
	int64_t kb = 0;
	bool pkcs8 = false;
	char *pem = NULL, *key = NULL;
	json_t *d;
	int ret = -1;

	if (gen_type_parse(req_param(rq, "type"), false, &type, err) < 0 ||
	    sg_json_str(rq->body, "key_type", &kt, err) < 0 || sg_json_int(rq->body, "key_bits", &kb, err) < 0 ||
	    sg_json_str(rq->body, "key_name", &name, err) < 0 || name_check("key_name", name, err) < 0 ||
	    pki_key_format_parse(rq->body, &pkcs8, err) < 0)
		goto out;
	if (ca_keyspec_parse(*kt != '\0' ? kt : "rsa", kb, &spec, err) < 0)
		goto out;
	if (ca_key_create(server_ca(rq->srv), pki_mount(rq), &spec, name != NULL && *name != '\0' ? name : NULL, pkcs8,
	                  &k, type == GEN_EXPORTED ? &pem : NULL, err) < 0)
		goto out;
	d = key_json(&k);
	if (pem != NULL) {
		key = pki_trim(sg_xstrdup(pem));
		json_object_set_new(d, "private_key", json_string(key));
	}
	resp_data(rs, d);
	ret = 0;
out:
	secret_free(pem);
	secret_free(key);
	ca_key_info_clear(&k);
	return ret;
}

/* POST keys/import: pem_bundle holds one unencrypted private key. */
int h_key_import(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct ca_key_info k = {0};
	const char *pem = NULL, *name = NULL;
	bool existed = false;
	int ret = -1;

	if (sg_json_str(rq->body, "pem_bundle", &pem, err) < 0 || sg_json_str(rq->body, "key_name", &name, err) < 0 ||
	    name_check("key_name", name, err) < 0)
		goto out;
	if (pem == NULL || *pem == '\0') {
		sg_err_set(err, SG_BAD_REQUEST, "the pem_bundle field is required");
		goto out;
	}
	if (ca_key_import(server_ca(rq->srv), pki_mount(rq), pem, strlen(pem), name != NULL && *name ? name : NULL, &k,
	                  &existed, err) < 0)
		goto out;
	resp_data(rs, key_json(&k));
	if (existed)
		resp_warn(rs, "Key already imported, use key/ endpoint to update name.");
	ret = 0;
out:
	ca_key_info_clear(&k);
	return ret;
}

static int keys_config_answer(struct req *rq, struct resp *rs, struct sg_err *err)
{
	char id[37] = "";
	json_t *d;

	if (ca_keys_default_get(server_ca(rq->srv), pki_mount(rq), id, err) < 0)
		return -1;
	d = json_object();
	json_object_set_new(d, "default", json_string(id));
	resp_data(rs, d);
	return 0;
}

int h_config_keys_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return keys_config_answer(rq, rs, err);
}

int h_config_keys_write(struct req *rq, struct resp *rs, struct sg_err *err)
{
	const char *def = NULL;

	if (sg_json_str(rq->body, "default", &def, err) < 0)
		return -1;
	if (def == NULL || *def == '\0' || strcmp(def, "default") == 0)
		return sg_err_set(err, SG_BAD_REQUEST,
		                  "Invalid key specification; must be non-empty and can't be 'default'.");
	if (ca_keys_default_set(server_ca(rq->srv), pki_mount(rq), def, err) < 0)
		return -1;
	return keys_config_answer(rq, rs, err);
}

/* ---- config/urls and config/cluster ---- */

static json_t *urls_json(const struct ca_urls *u)
{
	json_t *d = json_object();

	for (size_t i = 0; i < sizeof(url_fields) / sizeof(url_fields[0]); i++) {
		const struct sg_strlist *l = (const struct sg_strlist *)((const char *)u + url_fields[i].off);

		json_object_set_new(d, url_fields[i].key, sg_strlist_to_json(l));
	}
	json_object_set_new(d, "enable_templating", json_boolean(u->enable_templating));
	return d;
}

int h_config_urls_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct ca_urls u;

	memset(&u, 0, sizeof(u));
	if (ca_urls_get(server_ca(rq->srv), pki_mount(rq), &u, err) < 0) {
		ca_urls_clear(&u);
		return -1;
	}
	resp_data(rs, urls_json(&u));
	ca_urls_clear(&u);
	return 0;
}

/* POST config/urls changes only the fields present (Vault's pathWriteURL) and answers with the result. */
int h_config_urls_write(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct ca_urls u;
	int ret = -1;

	memset(&u, 0, sizeof(u));
	if (ca_urls_get(server_ca(rq->srv), pki_mount(rq), &u, err) < 0 ||
	    urls_apply(rq->body, &u, "enable_templating", err) < 0 ||
	    ca_urls_set(server_ca(rq->srv), pki_mount(rq), &u, err) < 0)
		goto out;
	resp_data(rs, urls_json(&u));
	ret = 0;
out:
	ca_urls_clear(&u);
	return ret;
}

static json_t *cluster_json(const struct ca_cluster *c)
{
	json_t *d = json_object();

	json_object_set_new(d, "path", json_string(c->path != NULL ? c->path : ""));
	json_object_set_new(d, "aia_path", json_string(c->aia_path != NULL ? c->aia_path : ""));
	return d;
}

int h_config_cluster_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct ca_cluster c = {0};

	if (ca_cluster_get(server_ca(rq->srv), pki_mount(rq), &c, err) < 0) {
		ca_cluster_clear(&c);
		return -1;
	}
	resp_data(rs, cluster_json(&c));
	ca_cluster_clear(&c);
	return 0;
}

/* Sets the fields present; each must be a URL (this mount's address as clients reach it). */
static int cluster_field(const json_t *b, const char *key, char **dst, struct sg_err *err)
{
	const char *s = NULL;
	struct sg_strlist one = {0};
	int got = sg_json_str(b, key, &s, err), ret = 0;

	if (got <= 0)
		return got;
	if (*s != '\0') {
		sg_strlist_add(&one, s);
		ret = urls_check(&one, key, false, err);
		sg_strlist_clear(&one);
		if (ret < 0)
			return -1;
	}
	free(*dst);
	*dst = sg_xstrdup(s);
	return 0;
}

int h_config_cluster_write(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct ca_cluster c = {0};
	int ret = -1;

	if (ca_cluster_get(server_ca(rq->srv), pki_mount(rq), &c, err) < 0 ||
	    cluster_field(rq->body, "path", &c.path, err) < 0 ||
	    cluster_field(rq->body, "aia_path", &c.aia_path, err) < 0 ||
	    ca_cluster_set(server_ca(rq->srv), pki_mount(rq), &c, err) < 0)
		goto out;
	resp_data(rs, cluster_json(&c));
	ret = 0;
out:
	ca_cluster_clear(&c);
	return ret;
}
