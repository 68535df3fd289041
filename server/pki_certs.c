/*
 * Certificate reads (ca, ca/pem, ca_chain, cert/...), LIST certs and
 * certs/revoked, revoke and revoke-with-key (compat 1.4, 1.5). The reads are
 * unauthenticated, as Vault's PathsSpecial.Unauthenticated.
 */
#include "server/pki.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CT_DER "application/pkix-cert"
#define CT_PEM_CHAIN "application/pem-certificate-chain"

/* 1 and info when the mount has a default issuer, 0 when it has none, -1 on error. */
static int default_issuer(struct req *rq, struct ca_issuer_info *info, struct sg_err *err)
{
	struct sg_err e;

	sg_err_init(&e);
	if (ca_issuer_get(server_ca(rq->srv), pki_mount(rq), "default", info, &e) == 0)
		return 1;
	if (e.code == SG_UNKNOWN_ISSUER || e.code == SG_NOT_FOUND)
		return 0;
	*err = e;
	return -1;
}

int pki_cert_raw(struct resp *rs, X509 *x, bool pem, struct sg_err *err)
{
	unsigned char *der = NULL;
	char *text;
	int n;

	if (pem) {
		text = ca_x509_to_pem(x);
		if (text == NULL)
			sg_die("cannot encode a certificate as PEM");
		resp_raw(rs, CT_PEM_CHAIN, text, strlen(text));
		free(text);
		return 0;
	}
	n = i2d_X509(x, &der);
	if (n <= 0)
		return sg_err_ossl(err, SG_CRYPTO, "cannot encode the certificate");
	resp_raw(rs, CT_DER, der, (size_t)n);
	OPENSSL_free(der);
	return 0;
}

/*
 * Raw reads of the default issuer. Vault answers 204 with an empty body
 * when the mount has no CA yet, and clients (hvac's read_ca_certificate)
 * expect that rather than an error.
 */
static int ca_raw(struct req *rq, struct resp *rs, bool pem, bool chain, struct sg_err *err)
{
	struct ca_issuer_info info = {0};
	char *text = NULL;
	int got, ret = -1;

	got = default_issuer(rq, &info, err);
	if (got < 0)
		goto out;
	if (got == 0) {
		rs->status = 204;
		resp_raw(rs, pem ? CT_PEM_CHAIN : CT_DER, "", 0);
		ret = 0;
		goto out;
	}
	if (!chain) {
		ret = pki_cert_raw(rs, info.cert, pem, err);
		goto out;
	}
	text = pki_chain_pem(info.chain);
	resp_raw(rs, CT_PEM_CHAIN, text, strlen(text));
	ret = 0;
out:
	free(text);
	ca_issuer_info_clear(&info);
	return ret;
}

int h_ca_der_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return ca_raw(rq, rs, false, false, err);
}

int h_ca_pem_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return ca_raw(rq, rs, true, false, err);
}

int h_ca_chain_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return ca_raw(rq, rs, true, true, err);
}

/* Vault's pathFetchRead JSON form: certificate, revocation_time (0 unless revoked), revocation_time_rfc3339. */
static json_t *fetch_json(const char *certificate, bool revoked, int64_t revocation_time)
{
	json_t *d = json_object();
	char t[32] = "";

	if (revoked)
		sg_time_format_rfc3339(revocation_time, t, sizeof(t));
	json_object_set_new(d, "certificate", json_string(certificate));
	json_object_set_new(d, "revocation_time", json_integer(revoked ? revocation_time : 0));
	json_object_set_new(d, "revocation_time_rfc3339", json_string(t));
	return d;
}

/* cert/ca and cert/ca_chain: the default issuer as JSON. */
static int ca_json(struct req *rq, struct resp *rs, bool chain, struct sg_err *err)
{
	struct ca_issuer_info info = {0};
	char *text = NULL;
	json_t *d;
	int ret = -1;

	if (ca_issuer_get(server_ca(rq->srv), pki_mount(rq), "default", &info, err) < 0)
		goto out;
	text = chain ? pki_chain_pem(info.chain) : pki_cert_string(info.cert, false);
	d = fetch_json(text, false, 0);
	/* Vault's cert/ca_chain repeats the chain in ca_chain, as one PEM string. */
	if (chain)
		json_object_set_new(d, "ca_chain", json_string(text));
	json_object_set_new(d, "issuer_id", json_string(info.id));
	resp_data(rs, d);
	ret = 0;
out:
	free(text);
	ca_issuer_info_clear(&info);
	return ret;
}

int h_cert_ca_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return ca_json(rq, rs, false, err);
}

int h_cert_ca_chain_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return ca_json(rq, rs, true, err);
}

/* 1 and rec when stored, 0 when absent (or not a serial at all), -1 on error. */
static int cert_lookup(struct req *rq, const char *serial, struct ca_cert_record *rec, struct sg_err *err)
{
	unsigned char buf[CA_MAX_SERIAL_BYTES];
	size_t n;
	struct sg_err e;

	if (serial == NULL || sg_hex_parse_serial(serial, buf, sizeof(buf), &n) < 0)
		return 0;
	sg_err_init(&e);
	if (ca_cert_get(server_ca(rq->srv), pki_mount(rq), serial, rec, &e) == 0)
		return 1;
	if (e.code == SG_NOT_FOUND)
		return 0;
	*err = e;
	return -1;
}

/*
 * GET cert/:serial. Beyond Vault, issuer_id is always present (Vault sends
 * it only for revoked certificates) and ca_chain holds the issuer's chain as
 * an array, as in issue answers, so one read gives everything to rebuild a
 * bundle. It also names the issuing role.
 */
int h_cert_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	const char *serial = req_param(rq, "serial");
	struct ca_cert_record rec = {0};
	struct ca_issuer_info info = {0};
	struct sg_err e;
	const unsigned char *p;
	X509 *x = NULL;
	char *pem = NULL;
	json_t *d;
	int got, ret = -1;

	got = cert_lookup(rq, serial, &rec, err);
	if (got < 0)
		goto out;
	if (got == 0) {
		ret = sg_err_set(err, SG_NOT_FOUND, "certificate not found: %s", serial != NULL ? serial : "");
		goto out;
	}
	p = rec.der;
	x = d2i_X509(NULL, &p, (long)rec.der_len);
	if (x == NULL) {
		sg_err_ossl(err, SG_INTERNAL, "stored certificate %s does not parse", rec.serial);
		goto out;
	}
	pem = pki_cert_string(x, false);
	d = fetch_json(pem, rec.revoked, rec.revocation_time);
	json_object_set_new(d, "issuer_id", json_string(rec.issuer_id));
	/* Sigil: the role that issued it ("" for CA and sign-verbatim certificates), for inventory. */
	json_object_set_new(d, "role", json_string(rec.role != NULL ? rec.role : ""));
	sg_err_init(&e);
	/* An issuer deleted since leaves the certificate readable, without a chain. */
	if (rec.issuer_id[0] != '\0' && ca_issuer_get(server_ca(rq->srv), pki_mount(rq), rec.issuer_id, &info, &e) == 0)
		json_object_set_new(d, "ca_chain", pki_chain_json(info.chain, false, false));
	resp_data(rs, d);
	ret = 0;
out:
	X509_free(x);
	free(pem);
	ca_issuer_info_clear(&info);
	ca_cert_record_clear(&rec);
	return ret;
}

/*
 * cert/:serial/raw[/pem]; cert/ca/raw[/pem] is the default issuer, as in
 * Vault. An unknown serial gets 404 (Vault sends an empty 204 here).
 */
static int cert_raw(struct req *rq, struct resp *rs, bool pem, struct sg_err *err)
{
	const char *serial = req_param(rq, "serial");
	struct ca_cert_record rec = {0};
	const unsigned char *p;
	X509 *x = NULL;
	char *text = NULL;
	int got, ret = -1;

	if (serial != NULL && strcmp(serial, "ca") == 0)
		return ca_raw(rq, rs, pem, false, err);
	got = cert_lookup(rq, serial, &rec, err);
	if (got < 0)
		goto out;
	if (got == 0) {
		ret = sg_err_set(err, SG_NOT_FOUND, "certificate not found: %s", serial != NULL ? serial : "");
		goto out;
	}
	if (!pem) {
		resp_raw(rs, CT_DER, rec.der, rec.der_len);
		ret = 0;
		goto out;
	}
	p = rec.der;
	x = d2i_X509(NULL, &p, (long)rec.der_len);
	if (x == NULL) {
		sg_err_ossl(err, SG_INTERNAL, "stored certificate %s does not parse", rec.serial);
		goto out;
	}
	text = pki_cert_string(x, false);
	resp_raw(rs, CT_PEM_CHAIN, text, strlen(text));
	ret = 0;
out:
	X509_free(x);
	free(text);
	ca_cert_record_clear(&rec);
	return ret;
}

int h_cert_raw_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return cert_raw(rq, rs, false, err);
}

int h_cert_raw_pem_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return cert_raw(rq, rs, true, err);
}

/*
 * LIST certs and certs/revoked. Sigil pages both with ?after=<serial>
 * (exclusive, colon or hyphen form) and ?limit=<n> (0 or absent = all), as
 * OpenBao pages LIST certs/detailed; Vault itself has no paging here and a
 * big mount answers with every serial at once.
 */
static int certs_list(struct req *rq, struct resp *rs, bool revoked, struct sg_err *err)
{
	const char *after = req_query(rq, "after"), *ls = req_query(rq, "limit");
	struct sg_strlist serials = {0};
	unsigned long long limit = 0;
	json_t *d;
	int ret = -1;

	if (ls != NULL && *ls != '\0') {
		char *end;

		limit = strtoull(ls, &end, 10);
		if (*end != '\0' || ls[0] == '-' || limit > PKI_LIST_LIMIT_MAX) {
			sg_err_set(err, SG_BAD_REQUEST, "limit must be an integer between 0 and %d",
			           PKI_LIST_LIMIT_MAX);
			goto out;
		}
	}
	if (after != NULL && *after == '\0')
		after = NULL;
	if (ca_cert_list(server_ca(rq->srv), pki_mount(rq), revoked, after, (size_t)limit, &serials, err) < 0)
		goto out;
	if (serials.n == 0) {
		ret = pki_not_found(err);
		goto out;
	}
	d = json_object();
	json_object_set_new(d, "keys", sg_strlist_to_json(&serials));
	resp_data(rs, d);
	ret = 0;
out:
	sg_strlist_clear(&serials);
	return ret;
}

int h_certs_list(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return certs_list(rq, rs, false, err);
}

int h_certs_revoked_list(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return certs_list(rq, rs, true, err);
}

/* serial_number (colon or hyphen hex) or certificate (PEM, for BYOC), exactly one. */
static int revoke_target(const json_t *b, const char **serial, X509 **cert, struct sg_err *err)
{
	const char *s = NULL, *pem = NULL;
	unsigned char buf[CA_MAX_SERIAL_BYTES];
	size_t n;

	*serial = NULL;
	*cert = NULL;
	if (sg_json_str(b, "serial_number", &s, err) < 0 || sg_json_str(b, "certificate", &pem, err) < 0)
		return -1;
	if (s != NULL && *s == '\0')
		s = NULL;
	if (pem != NULL && *pem == '\0')
		pem = NULL;
	if (s != NULL && pem != NULL)
		return sg_err_set(err, SG_BAD_REQUEST,
		                  "must provide either the certificate or the serial to revoke; not both");
	if (s == NULL && pem == NULL)
		return sg_err_set(err, SG_BAD_REQUEST, "the serial number or certificate to revoke must be provided");
	if (s != NULL) {
		if (sg_hex_parse_serial(s, buf, sizeof(buf), &n) < 0)
			return sg_err_set(err, SG_BAD_REQUEST, "invalid serial number");
		*serial = s;
		return 0;
	}
	*cert = ca_cert_parse((const unsigned char *)pem, strlen(pem), err);
	return *cert != NULL ? 0 : -1;
}

/*
 * Sigil's improvement over Vault, which has no reason parameter: `reason`
 * takes an RFC 5280 5.3.1 CRLReason name ("keyCompromise") or its number.
 */
static int parse_reason(const json_t *b, enum ca_reason *out, struct sg_err *err)
{
	const json_t *v = json_object_get(b, "reason");
	char num[24];

	*out = CA_REASON_UNSPECIFIED;
	if (v == NULL || json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0))
		return 0;
	if (json_is_integer(v)) {
		snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
		return ca_reason_parse(num, out, err);
	}
	if (json_is_string(v))
		return ca_reason_parse(json_string_value(v), out, err);
	return sg_err_set(err, SG_BAD_REQUEST, "field 'reason' must be a CRLReason name or number");
}

/*
 * Sigil: "invalidity_date" (RFC 3339 or unix seconds), when the key is known
 * or suspected to have been compromised (RFC 5280 5.3.2); not in the future.
 */
static int parse_invalidity(const json_t *b, int64_t *out, struct sg_err *err)
{
	const json_t *v = json_object_get(b, "invalidity_date");
	int64_t t = 0;

	*out = 0;
	if (v == NULL || json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0))
		return 0;
	if (json_is_integer(v))
		t = json_integer_value(v);
	else if (!json_is_string(v) || sg_time_parse_rfc3339(json_string_value(v), &t) < 0)
		return sg_err_set(err, SG_BAD_REQUEST, "field 'invalidity_date' must be an RFC 3339 time or unix seconds");
	if (t <= 0 || t > sg_now())
		return sg_err_set(err, SG_BAD_REQUEST, "field 'invalidity_date' must be in the past");
	*out = t;
	return 0;
}

static void revoke_answer(struct resp *rs, const struct ca_revoke_result *res)
{
	json_t *d = json_object();
	char t[32];

	sg_time_format_rfc3339(res->revocation_time, t, sizeof(t));
	json_object_set_new(d, "revocation_time", json_integer(res->revocation_time));
	json_object_set_new(d, "revocation_time_rfc3339", json_string(t));
	json_object_set_new(d, "state", json_string("revoked"));
	resp_data(rs, d);
	pki_warn_all(rs, &res->warnings);
}

int h_revoke(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct ca_revoke_result res = {0};
	const char *serial;
	X509 *cert = NULL;
	enum ca_reason reason;
	int64_t invalidity = 0;
	int ret = -1;

	if (revoke_target(rq->body, &serial, &cert, err) < 0 || parse_reason(rq->body, &reason, err) < 0 ||
	    parse_invalidity(rq->body, &invalidity, err) < 0)
		goto out;
	if (ca_revoke(server_ca(rq->srv), pki_mount(rq), serial, cert, reason, invalidity, &res, err) < 0)
		goto out;
	revoke_answer(rs, &res);
	ret = 0;
out:
	X509_free(cert);
	ca_revoke_result_clear(&res);
	return ret;
}

/* Proof of possession: the caller must hold the certificate's private key. */
int h_revoke_with_key(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct ca_revoke_result res = {0};
	const char *serial, *key = NULL;
	X509 *cert = NULL;
	int ret = -1;

	if (revoke_target(rq->body, &serial, &cert, err) < 0 || sg_json_str(rq->body, "private_key", &key, err) < 0)
		goto out;
	if (key == NULL || *key == '\0') {
		sg_err_set(err, SG_BAD_REQUEST, "private_key must be provided");
		goto out;
	}
	if (ca_revoke_with_key(server_ca(rq->srv), pki_mount(rq), serial, cert, key, &res, err) < 0)
		goto out;
	revoke_answer(rs, &res);
	ret = 0;
out:
	X509_free(cert);
	ca_revoke_result_clear(&res);
	return ret;
}
