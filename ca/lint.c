/*
 * Pre-issuance lint: RFC 5280 checks of a fully built certificate before the
 * signer sees it (DESIGN.md rule 1). A failure means our profile code or a
 * verbatim request produced something a relying party may reject, so the
 * detail names the rule and the section it enforces. The first failing rule
 * is reported.
 *
 * The CN-in-SAN rule (CA/B Baseline Requirements 7.1.4.3): when the
 * certificate has a subjectAltName, a commonName that looks like an email
 * address must be among the rfc822Names and one that looks like a hostname
 * (or an IP literal) among the dNSNames (or iPAddresses). A CN that is
 * neither (a person's or service's display name, an IDN in Unicode) is not
 * checked, matching Vault, which only copies hostname and email CNs into
 * the SANs. Without a SAN the rule does not apply. Vault's
 * exclude_cn_from_sans and sign-verbatim legitimately break it: callers say
 * so with ca_lint_opts.cn_outside_sans_ok.
 */
#include "ca/ca.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "ca/parse.h"

#define LINT_RSA_MIN_BITS 2048 /* CA/B BR 6.1.5 */
#define LINT_KU_KEY_CERT_SIGN 5 /* RFC 5280 4.2.1.3 bit numbers */
#define LINT_KU_BITS 9

#define RFC "RFC 5280 "

/* The decoded extensions the rules look at; NULL when absent. */
struct lint {
	X509 *cert, *issuer;
	struct ca_lint_opts opts;
	bool self_signed;
	BASIC_CONSTRAINTS *bc;
	bool bc_crit;
	ASN1_BIT_STRING *ku;
	EXTENDED_KEY_USAGE *eku;
	GENERAL_NAMES *san;
	bool san_crit;
	ASN1_OCTET_STRING *ski;
	bool ski_crit;
	AUTHORITY_KEYID *aki;
	bool aki_crit;
};

__attribute__((format(printf, 4, 5))) static int fail(struct sg_err *err, const char *rule, const char *ref,
                                                      const char *fmt, ...)
{
	char msg[SG_ERR_DETAIL_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return sg_err_set(err, SG_LINT_FAILED, "lint %s: %s (%s)", rule, msg, ref);
}

static int check_version(X509 *cert, struct sg_err *err)
{
	/* RFC 5280 4.1.2.1: with extensions the version MUST be v3. */
	if (X509_get_ext_count(cert) > 0 && X509_get_version(cert) != X509_VERSION_3)
		return fail(err, "version", RFC "4.1.2.1", "certificate has extensions but is not version 3");
	return 0;
}

static int check_serial(X509 *cert, struct sg_err *err)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
	int ret = -1;

	if (bn == NULL) {
		fail(err, "serial-positive", RFC "4.1.2.2", "serial number is missing or does not decode");
		goto out;
	}
	/* RFC 5280 4.1.2.2: the serial number MUST be a positive integer ... */
	if (BN_is_negative(bn) || BN_is_zero(bn)) {
		fail(err, "serial-positive", RFC "4.1.2.2", "serial number must be a positive integer");
		goto out;
	}
	/* ... of at most 20 content octets, counting the 0x00 that keeps the top bit clear. */
	if (BN_num_bits(bn) / 8 + 1 > CA_MAX_SERIAL_BYTES) {
		fail(err, "serial-length", RFC "4.1.2.2", "serial number is longer than %d octets",
		     CA_MAX_SERIAL_BYTES);
		goto out;
	}
	ret = 0;
out:
	BN_free(bn);
	ERR_clear_error();
	return ret;
}

static bool algor_set(const X509_ALGOR *a)
{
	const ASN1_OBJECT *o = NULL;

	if (a == NULL)
		return false;
	X509_ALGOR_get0(&o, NULL, NULL, a);
	return o != NULL && OBJ_length(o) > 0;
}

/* Whether a signature algorithm (by its public-key NID) can be produced by key k. */
static bool sigalg_fits_key(int pk_nid, EVP_PKEY *k)
{
	switch (pk_nid) {
	case NID_rsaEncryption:
		return EVP_PKEY_is_a(k, "RSA");
	case NID_rsassaPss:
		return EVP_PKEY_is_a(k, "RSA") || EVP_PKEY_is_a(k, "RSA-PSS");
	case NID_X9_62_id_ecPublicKey:
		return EVP_PKEY_is_a(k, "EC");
	case NID_ED25519:
		return EVP_PKEY_is_a(k, "ED25519");
	case NID_ED448:
		return EVP_PKEY_is_a(k, "ED448");
	default:
		return false;
	}
}

/* Signature fields: checked only once set (the lint runs before signing too). */
static int check_sigalg(const struct lint *l, struct sg_err *err)
{
	const X509_ALGOR *tbs = X509_get0_tbs_sigalg(l->cert), *outer = NULL;
	const ASN1_BIT_STRING *sig = NULL;
	const ASN1_OBJECT *o = NULL;
	EVP_PKEY *signer;
	int md_nid = NID_undef, pk_nid = NID_undef;

	X509_get0_signature(&sig, &outer, l->cert);
	if (!algor_set(tbs) && !algor_set(outer))
		return 0;
	/* RFC 5280 4.1.1.2: signatureAlgorithm MUST equal tbsCertificate.signature. */
	if (!algor_set(tbs) || !algor_set(outer) || X509_ALGOR_cmp(tbs, outer) != 0)
		return fail(err, "sigalg-mismatch", RFC "4.1.1.2",
		            "signatureAlgorithm differs from the tbsCertificate signature field");
	X509_ALGOR_get0(&o, NULL, NULL, tbs);
	if (OBJ_find_sigid_algs(OBJ_obj2nid(o), &md_nid, &pk_nid) != 1)
		return fail(err, "sigalg-unknown", RFC "4.1.2.3", "unknown signature algorithm");
	signer = l->issuer != NULL && !l->self_signed ? X509_get0_pubkey(l->issuer) : X509_get0_pubkey(l->cert);
	ERR_clear_error();
	if (signer != NULL && !sigalg_fits_key(pk_nid, signer))
		return fail(err, "sigalg-key", RFC "4.1.2.3",
		            "signature algorithm %s does not match the issuer's key type", OBJ_nid2sn(OBJ_obj2nid(o)));
	return 0;
}

static int check_names(const struct lint *l, struct sg_err *err)
{
	const X509_NAME *iname = X509_get_issuer_name(l->cert);

	/* RFC 5280 4.1.2.4: the issuer field MUST contain a non-empty distinguished name. */
	if (X509_NAME_entry_count(iname) == 0)
		return fail(err, "issuer-empty", RFC "4.1.2.4", "issuer name is empty");
	if (l->issuer != NULL) {
		if (X509_NAME_cmp(iname, X509_get_subject_name(l->issuer)) != 0)
			return fail(err, "issuer-name", RFC "4.1.2.4",
			            "issuer name differs from the issuing certificate's subject");
	} else if (X509_NAME_cmp(iname, X509_get_subject_name(l->cert)) != 0) {
		return fail(err, "issuer-name", RFC "4.1.2.4",
		            "no issuing certificate given, but issuer name differs from subject");
	}
	return 0;
}

/* RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050, both in Z and whole seconds. */
static int time_check(const ASN1_TIME *t, const char *which, struct sg_err *err)
{
	struct tm tm;
	const unsigned char *d;
	int year, len;

	if (t == NULL || ASN1_TIME_check(t) != 1 || ASN1_TIME_to_tm(t, &tm) != 1) {
		ERR_clear_error();
		return fail(err, "validity-encoding", RFC "4.1.2.5", "%s is missing or malformed", which);
	}
	year = tm.tm_year + 1900;
	len = ASN1_STRING_length(t);
	d = ASN1_STRING_get0_data(t);
	if (year >= 1950 && year < 2050) {
		if (ASN1_STRING_type(t) != V_ASN1_UTCTIME || len != 13)
			return fail(err, "validity-encoding", RFC "4.1.2.5.1",
			            "%s before 2050 must be UTCTime YYMMDDHHMMSSZ", which);
	} else if (ASN1_STRING_type(t) != V_ASN1_GENERALIZEDTIME || len != 15) {
		return fail(err, "validity-encoding", RFC "4.1.2.5.2",
		            "%s from 2050 must be GeneralizedTime YYYYMMDDHHMMSSZ", which);
	}
	if (d[len - 1] != 'Z')
		return fail(err, "validity-encoding", RFC "4.1.2.5", "%s must be in UTC (Z)", which);
	return 0;
}

static int check_validity(const struct lint *l, struct sg_err *err)
{
	const ASN1_TIME *nb = X509_get0_notBefore(l->cert), *na = X509_get0_notAfter(l->cert);

	if (time_check(nb, "notBefore", err) != 0 || time_check(na, "notAfter", err) != 0)
		return -1;
	if (ASN1_TIME_compare(nb, na) >= 0)
		return fail(err, "validity-order", RFC "4.1.2.5", "notBefore is not before notAfter");
	if (l->issuer == NULL || l->self_signed)
		return 0;
	/* RFC 5280 6.1.3 (a)(2): a relying party checks every certificate of the path against the time. */
	if (ASN1_TIME_compare(nb, X509_get0_notBefore(l->issuer)) < 0)
		return fail(err, "validity-issuer", RFC "6.1.3", "notBefore is before the issuer's notBefore");
	if (!l->opts.not_after_beyond_issuer_ok && ASN1_TIME_compare(na, X509_get0_notAfter(l->issuer)) > 0)
		return fail(err, "validity-issuer", RFC "6.1.3", "notAfter is after the issuer's notAfter");
	return 0;
}

static int check_key(const struct lint *l, struct sg_err *err)
{
	EVP_PKEY *k = X509_get0_pubkey(l->cert);
	char group[64];
	size_t glen = 0;

	if (k == NULL) {
		ERR_clear_error();
		return fail(err, "key-type", RFC "4.1.2.7", "subject public key is missing or unsupported");
	}
	if (EVP_PKEY_is_a(k, "RSA") || EVP_PKEY_is_a(k, "RSA-PSS")) {
		if (EVP_PKEY_get_bits(k) < LINT_RSA_MIN_BITS)
			return fail(err, "key-size", "CA/B BR 6.1.5", "RSA key has %d bits, at least %d required",
			            EVP_PKEY_get_bits(k), LINT_RSA_MIN_BITS);
		return 0;
	}
	if (EVP_PKEY_is_a(k, "EC")) {
		/* Named curves only (RFC 5480 2.1.1: specifiedCurve MUST NOT be used). */
		if (EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &glen) != 1 ||
		    (strcmp(group, "prime256v1") != 0 && strcmp(group, "secp384r1") != 0 &&
		     strcmp(group, "secp521r1") != 0)) {
			ERR_clear_error();
			return fail(err, "key-curve", "CA/B BR 6.1.5; RFC 5480 2.1.1",
			            "EC key must be on P-256, P-384 or P-521");
		}
		return 0;
	}
	if (EVP_PKEY_is_a(k, "ED25519"))
		return 0;
	return fail(err, "key-type", RFC "4.1.2.7", "subject key must be RSA, EC or Ed25519");
}

static void ext_value_free(const X509V3_EXT_METHOD *m, void *v)
{
	if (v == NULL)
		return;
	if (m->it != NULL)
		ASN1_item_free(v, ASN1_ITEM_ptr(m->it));
	else if (m->ext_free != NULL)
		m->ext_free(v);
}

/* Decodes an extension we know, refusing bytes after the value. NULL when it does not decode. */
static void *ext_decode(X509_EXTENSION *ext, const X509V3_EXT_METHOD *m)
{
	const ASN1_OCTET_STRING *data = X509_EXTENSION_get_data(ext);
	const unsigned char *start = ASN1_STRING_get0_data(data), *p = start;
	long len = ASN1_STRING_length(data);
	void *v = NULL;

	if (m->it != NULL)
		v = ASN1_item_d2i(NULL, &p, len, ASN1_ITEM_ptr(m->it));
	else if (m->d2i != NULL)
		v = m->d2i(NULL, &p, len);
	if (v != NULL && p != start + len) {
		ext_value_free(m, v);
		v = NULL;
	}
	return v;
}

/* RFC 5280 4.2: no empty values, no extension twice, and every extension we know decodes. */
static int check_extensions(struct lint *l, struct sg_err *err)
{
	int n = X509_get_ext_count(l->cert);

	for (int i = 0; i < n; i++) {
		X509_EXTENSION *ext = X509_get_ext(l->cert, i);
		const ASN1_OBJECT *obj = X509_EXTENSION_get_object(ext);
		const X509V3_EXT_METHOD *m = X509V3_EXT_get(ext);
		bool crit = X509_EXTENSION_get_critical(ext) > 0;
		int nid = OBJ_obj2nid(obj);
		char name[80];
		void *v;

		if (OBJ_obj2txt(name, sizeof(name), obj, 0) <= 0)
			snprintf(name, sizeof(name), "(unprintable)");
		if (ASN1_STRING_length(X509_EXTENSION_get_data(ext)) == 0)
			return fail(err, "ext-empty", RFC "4.2", "extension %s has an empty value", name);
		for (int j = 0; j < i; j++) {
			/* RFC 5280 4.2: a certificate MUST NOT include more than one instance of an extension. */
			if (OBJ_cmp(obj, X509_EXTENSION_get_object(X509_get_ext(l->cert, j))) == 0)
				return fail(err, "ext-duplicate", RFC "4.2", "extension %s appears more than once", name);
		}
		if (m == NULL)
			continue;
		v = ext_decode(ext, m);
		if (v == NULL) {
			ERR_clear_error();
			return fail(err, "ext-malformed", RFC "4.2", "extension %s does not decode", name);
		}
		switch (nid) {
		case NID_basic_constraints:
			l->bc = v;
			l->bc_crit = crit;
			break;
		case NID_key_usage:
			l->ku = v;
			break;
		case NID_ext_key_usage:
			l->eku = v;
			break;
		case NID_subject_alt_name:
			l->san = v;
			l->san_crit = crit;
			break;
		case NID_subject_key_identifier:
			l->ski = v;
			l->ski_crit = crit;
			break;
		case NID_authority_key_identifier:
			l->aki = v;
			l->aki_crit = crit;
			break;
		default:
			ext_value_free(m, v);
			break;
		}
	}
	return 0;
}

static int check_san(const struct lint *l, struct sg_err *err)
{
	bool subject_empty = X509_NAME_entry_count(X509_get_subject_name(l->cert)) == 0;

	/* RFC 5280 4.2.1.6: an empty subject needs a critical subjectAltName. */
	if (subject_empty && l->san == NULL)
		return fail(err, "subject-empty-san", RFC "4.2.1.6", "subject is empty and there is no subjectAltName");
	if (l->san == NULL)
		return 0;
	if (subject_empty && !l->san_crit)
		return fail(err, "san-critical", RFC "4.2.1.6", "subject is empty but subjectAltName is not critical");
	/* RFC 5280 4.2.1.6: if present, the sequence MUST contain at least one entry. */
	if (sk_GENERAL_NAME_num(l->san) == 0)
		return fail(err, "san-empty", RFC "4.2.1.6", "subjectAltName has no names");
	for (int i = 0; i < sk_GENERAL_NAME_num(l->san); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(l->san, i);
		int len;

		switch (g->type) {
		case GEN_DNS:
		case GEN_EMAIL:
		case GEN_URI:
			if (ASN1_STRING_length(g->d.ia5) == 0)
				return fail(err, "san-empty-name", RFC "4.2.1.6", "subjectAltName has an empty name");
			break;
		case GEN_IPADD:
			len = ASN1_STRING_length(g->d.iPAddress);
			if (len != 4 && len != 16)
				return fail(err, "san-ip", RFC "4.2.1.6", "iPAddress has %d octets, expected 4 or 16", len);
			break;
		default:
			break;
		}
	}
	return 0;
}

static bool cn_hostname_like(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
		      c == '.' || c == '*'))
			return false;
	}
	return true;
}

static bool cn_email_like(const char *s)
{
	const char *at = strchr(s, '@');

	if (at == NULL || at == s || at[1] == '\0' || strchr(at + 1, '@') != NULL)
		return false;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

static bool san_has(const GENERAL_NAMES *san, int type, const char *s)
{
	size_t n = strlen(s);

	for (int i = 0; i < sk_GENERAL_NAME_num(san); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(san, i);

		if (g->type == type && (size_t)ASN1_STRING_length(g->d.ia5) == n &&
		    strncasecmp((const char *)ASN1_STRING_get0_data(g->d.ia5), s, n) == 0)
			return true;
	}
	return false;
}

static bool san_has_ip(const GENERAL_NAMES *san, const char *s)
{
	unsigned char ip[16];
	int len;

	if (inet_pton(AF_INET, s, ip) == 1)
		len = 4;
	else if (inet_pton(AF_INET6, s, ip) == 1)
		len = 16;
	else
		return false;
	for (int i = 0; i < sk_GENERAL_NAME_num(san); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(san, i);

		if (g->type == GEN_IPADD && ASN1_STRING_length(g->d.iPAddress) == len &&
		    memcmp(ASN1_STRING_get0_data(g->d.iPAddress), ip, (size_t)len) == 0)
			return true;
	}
	return false;
}

static int check_cn(const struct lint *l, struct sg_err *err)
{
	const X509_NAME *subj = X509_get_subject_name(l->cert);
	int idx = -1;

	if (l->opts.cn_outside_sans_ok || l->san == NULL)
		return 0;
	while ((idx = X509_NAME_get_index_by_NID(subj, NID_commonName, idx)) >= 0) {
		unsigned char *u = NULL;
		bool ok = true;
		int n = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx)));

		if (n < 0) {
			ERR_clear_error();
			return fail(err, "cn-encoding", RFC "4.1.2.6", "commonName is not a valid string");
		}
		if (memchr(u, '\0', (size_t)n) != NULL)
			ok = false;
		else if (cn_email_like((const char *)u))
			ok = san_has(l->san, GEN_EMAIL, (const char *)u);
		else if (cn_hostname_like((const char *)u))
			ok = san_has(l->san, GEN_DNS, (const char *)u) || san_has_ip(l->san, (const char *)u);
		OPENSSL_free(u);
		if (!ok)
			return fail(err, "cn-in-san", "CA/B BR 7.1.4.3",
			            "commonName is not among the subjectAltName names");
	}
	return 0;
}

static int check_usage(const struct lint *l, struct sg_err *err)
{
	bool ca = l->bc != NULL && l->bc->ca;
	bool cert_sign = l->ku != NULL && ASN1_BIT_STRING_get_bit(l->ku, LINT_KU_KEY_CERT_SIGN);

	if (l->ku != NULL) {
		bool any = false;

		for (int b = 0; b < LINT_KU_BITS; b++)
			any = any || ASN1_BIT_STRING_get_bit(l->ku, b);
		/* RFC 5280 4.2.1.3: at least one bit MUST be set. */
		if (!any)
			return fail(err, "ku-empty", RFC "4.2.1.3", "keyUsage has no bits set");
	}
	/* RFC 5280 4.2.1.3: keyCertSign asserted => cA MUST be asserted. */
	if (cert_sign && !ca)
		return fail(err, "ku-keycertsign-non-ca", RFC "4.2.1.3", "keyCertSign without basicConstraints cA:true");
	/* RFC 5280 4.2.1.3: a key that verifies certificates MUST carry keyUsage with keyCertSign. */
	if (ca && !cert_sign)
		return fail(err, "ca-keycertsign", RFC "4.2.1.3", "cA:true without keyUsage keyCertSign");
	/* RFC 5280 4.2.1.9: CA certificates MUST mark basicConstraints critical. */
	if (ca && !l->bc_crit)
		return fail(err, "bc-critical", RFC "4.2.1.9", "basicConstraints of a CA certificate is not critical");
	if (l->bc != NULL && l->bc->pathlen != NULL) {
		/* RFC 5280 4.2.1.9: pathLenConstraint only with cA and keyCertSign; INTEGER (0..MAX). */
		if (!ca || !cert_sign)
			return fail(err, "pathlen-non-ca", RFC "4.2.1.9", "pathLenConstraint on a non-CA certificate");
		if (ASN1_INTEGER_get(l->bc->pathlen) < 0)
			return fail(err, "pathlen-negative", RFC "4.2.1.9", "pathLenConstraint is negative");
	}
	/* RFC 5280 4.2.1.12: KeyPurposeId SEQUENCE SIZE (1..MAX). */
	if (l->eku != NULL && sk_ASN1_OBJECT_num(l->eku) == 0)
		return fail(err, "eku-empty", RFC "4.2.1.12", "extendedKeyUsage has no purposes");
	return 0;
}

static int check_key_ids(const struct lint *l, struct sg_err *err)
{
	const ASN1_OCTET_STRING *want = NULL;

	/* RFC 5280 4.2.1.2: SHOULD in end entities, MUST in CAs; we always set it. Non-critical. */
	if (l->ski == NULL || ASN1_STRING_length(l->ski) == 0)
		return fail(err, "ski-missing", RFC "4.2.1.2", "subjectKeyIdentifier is missing");
	if (l->ski_crit)
		return fail(err, "ski-critical", RFC "4.2.1.2", "subjectKeyIdentifier is marked critical");
	/* RFC 5280 4.2.1.1: MAY be omitted only in self-signed certificates; keyIdentifier MUST be there. */
	if (l->aki == NULL) {
		if (l->self_signed)
			return 0;
		return fail(err, "aki-missing", RFC "4.2.1.1", "authorityKeyIdentifier is missing");
	}
	if (l->aki_crit)
		return fail(err, "aki-critical", RFC "4.2.1.1", "authorityKeyIdentifier is marked critical");
	if (l->aki->keyid == NULL || ASN1_STRING_length(l->aki->keyid) == 0)
		return fail(err, "aki-missing", RFC "4.2.1.1", "authorityKeyIdentifier has no keyIdentifier");
	if (l->self_signed)
		want = l->ski;
	else if (l->issuer != NULL)
		want = X509_get0_subject_key_id(l->issuer);
	if (want != NULL && ASN1_OCTET_STRING_cmp(want, l->aki->keyid) != 0)
		return fail(err, "aki-mismatch", RFC "4.2.1.1",
		            "authorityKeyIdentifier differs from the issuer's subjectKeyIdentifier");
	return 0;
}

int ca_lint_check_opts(X509 *cert, X509 *issuer, const struct ca_lint_opts *opts, struct sg_err *err)
{
	struct lint l = {0};
	int ret = -1;

	if (cert == NULL)
		return sg_err_set(err, SG_INTERNAL, "lint: no certificate");
	l.cert = cert;
	l.issuer = issuer;
	if (opts != NULL)
		l.opts = *opts;
	if (issuer == NULL) {
		l.self_signed = true;
	} else {
		EVP_PKEY *a = X509_get0_pubkey(cert), *b = X509_get0_pubkey(issuer);

		l.self_signed = X509_NAME_cmp(X509_get_issuer_name(cert), X509_get_subject_name(issuer)) == 0 &&
		                X509_NAME_cmp(X509_get_subject_name(cert), X509_get_subject_name(issuer)) == 0 &&
		                a != NULL && b != NULL && EVP_PKEY_eq(a, b) == 1;
		ERR_clear_error();
	}
	if (check_version(cert, err) != 0 || check_serial(cert, err) != 0 || check_names(&l, err) != 0 ||
	    check_sigalg(&l, err) != 0 || check_validity(&l, err) != 0 || check_key(&l, err) != 0 ||
	    check_extensions(&l, err) != 0 || check_san(&l, err) != 0 || check_cn(&l, err) != 0 ||
	    check_usage(&l, err) != 0 || check_key_ids(&l, err) != 0)
		goto out;
	ret = 0;
out:
	BASIC_CONSTRAINTS_free(l.bc);
	ASN1_BIT_STRING_free(l.ku);
	EXTENDED_KEY_USAGE_free(l.eku);
	GENERAL_NAMES_free(l.san);
	ASN1_OCTET_STRING_free(l.ski);
	AUTHORITY_KEYID_free(l.aki);
	return ret;
}

int ca_lint_check(X509 *cert, X509 *issuer, struct sg_err *err)
{
	return ca_lint_check_opts(cert, issuer, NULL, err);
}
