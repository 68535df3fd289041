/*
 * Declarative certificate building: a struct ca_profile in, an unsigned
 * X509 out. Every extension we emit is built here and nowhere else.
 */
#include "ca/internal.h"
#include "ca/parse.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---------------- Subject ---------------- */

static int add_rdns(X509_NAME *n, int nid, const char *what, const struct sg_strlist *l, struct sg_err *err)
{
	for (size_t i = 0; l != NULL && i < l->n; i++) {
		/* Each value its own RDN; the string table picks PrintableString for C and serialNumber. */
		if (X509_NAME_add_entry_by_NID(n, nid, MBSTRING_UTF8, (const unsigned char *)l->v[i], -1, -1, 0) != 1)
			return sg_err_ossl(err, SG_BAD_REQUEST, "invalid subject %s value '%.64s'", what, l->v[i]);
	}
	return 0;
}

static int add_rdn1(X509_NAME *n, int nid, const char *what, const char *v, struct sg_err *err)
{
	struct sg_strlist l = {NULL, 0};
	char *one[1];

	if (v == NULL || v[0] == '\0')
		return 0;
	one[0] = (char *)v;
	l.v = one;
	l.n = 1;
	return add_rdns(n, nid, what, &l, err);
}

X509_NAME *ca_subject_build(const struct ca_subject *s, struct sg_err *err)
{
	X509_NAME *n = X509_NAME_new();

	if (n == NULL)
		sg_die("out of memory");
	/* Go's pkix.Name.ToRDNSequence order, which Vault's certificates have. */
	if (add_rdns(n, NID_countryName, "country", s->country, err) < 0 ||
	    add_rdns(n, NID_stateOrProvinceName, "province", s->province, err) < 0 ||
	    add_rdns(n, NID_localityName, "locality", s->locality, err) < 0 ||
	    add_rdns(n, NID_streetAddress, "street_address", s->street, err) < 0 ||
	    add_rdns(n, NID_postalCode, "postal_code", s->postal, err) < 0 ||
	    add_rdns(n, NID_organizationName, "organization", s->org, err) < 0 ||
	    add_rdns(n, NID_organizationalUnitName, "ou", s->ou, err) < 0 ||
	    add_rdn1(n, NID_commonName, "common name (at most 64 characters, RFC 5280 A.1)", s->cn, err) < 0 ||
	    add_rdn1(n, NID_serialNumber, "serial_number", s->serial_number, err) < 0 ||
	    add_rdns(n, NID_userId, "user id", s->uids, err) < 0) {
		X509_NAME_free(n);
		return NULL;
	}
	return n;
}

/* ---------------- SANs ---------------- */

void ca_sans_clear(struct ca_sans *s)
{
	if (s == NULL)
		return;
	sg_strlist_clear(&s->dns);
	sg_strlist_clear(&s->emails);
	sg_strlist_clear(&s->ips);
	sg_strlist_clear(&s->uris);
	sg_strlist_clear(&s->other);
}

void ca_sans_add_alt(struct ca_sans *s, const struct sg_strlist *alt)
{
	for (size_t i = 0; i < alt->n; i++) {
		struct sg_strlist *dst = strchr(alt->v[i], '@') != NULL ? &s->emails : &s->dns;

		if (!sg_strlist_has(dst, alt->v[i]))
			sg_strlist_add(dst, alt->v[i]);
	}
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void sort_dedupe(struct sg_strlist *l)
{
	size_t o = 0;

	if (l->n < 2)
		return;
	qsort(l->v, l->n, sizeof(*l->v), cmp_str);
	for (size_t i = 0; i < l->n; i++) {
		if (o > 0 && strcmp(l->v[o - 1], l->v[i]) == 0) {
			free(l->v[i]);
			continue;
		}
		l->v[o++] = l->v[i];
	}
	l->n = o;
}

void ca_sans_normalize(struct ca_sans *s)
{
	/* Vault's strutil.RemoveDuplicates: DNS and email SANs come out sorted and unique. */
	sort_dedupe(&s->dns);
	sort_dedupe(&s->emails);
}

void ca_sans_add_cn(struct ca_sans *s, const char *cn)
{
	if (cn == NULL || cn[0] == '\0')
		return;
	if (strchr(cn, '@') != NULL) {
		if (!sg_strlist_has(&s->emails, cn))
			sg_strlist_add(&s->emails, cn);
	} else if (role_hostname_valid(cn) && !sg_strlist_has(&s->dns, cn)) {
		/* Vault adds the CN to the DNS SANs only when it is a hostname. */
		sg_strlist_add(&s->dns, cn);
	}
}

size_t ca_sans_count(const struct ca_sans *s)
{
	return s->dns.n + s->emails.n + s->ips.n + s->uris.n + s->other.n;
}

static bool is_ia5(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return false;
	return true;
}

static GENERAL_NAME *gn_ia5(int type, const char *v, struct sg_err *err)
{
	GENERAL_NAME *gn;
	ASN1_IA5STRING *s;

	if (v[0] == '\0' || strlen(v) > ROLE_MAX_NAME_BYTES || !is_ia5(v)) {
		sg_err_set(err, SG_BAD_REQUEST, "SAN '%.64s' is not printable ASCII (IA5String)", v);
		return NULL;
	}
	gn = GENERAL_NAME_new();
	s = ASN1_IA5STRING_new();
	if (gn == NULL || s == NULL || ASN1_STRING_set(s, v, (int)strlen(v)) != 1)
		sg_die("out of memory");
	GENERAL_NAME_set0_value(gn, type, s);
	return gn;
}

static GENERAL_NAME *gn_ip(const char *v, struct sg_err *err)
{
	GENERAL_NAME *gn;
	ASN1_OCTET_STRING *os = a2i_IPADDRESS(v);

	if (os == NULL) {
		ERR_clear_error();
		sg_err_set(err, SG_BAD_REQUEST, "invalid IP SAN '%.64s'", v);
		return NULL;
	}
	gn = GENERAL_NAME_new();
	if (gn == NULL)
		sg_die("out of memory");
	GENERAL_NAME_set0_value(gn, GEN_IPADD, os);
	return gn;
}

/* Vault's other_sans form "<oid>;UTF8:<value>" (UTF-8 also accepted). */
static GENERAL_NAME *gn_other(const char *v, struct sg_err *err)
{
	const char *semi = strchr(v, ';'), *colon;
	char oidtxt[128];
	ASN1_OBJECT *oid = NULL;
	ASN1_TYPE *val = NULL;
	ASN1_UTF8STRING *u = NULL;
	GENERAL_NAME *gn = NULL, *ret = NULL;
	size_t tl;

	if (semi == NULL || (size_t)(semi - v) >= sizeof(oidtxt) || (colon = strchr(semi + 1, ':')) == NULL)
		goto out;
	tl = (size_t)(colon - semi - 1);
	if (!((tl == 4 && strncasecmp(semi + 1, "UTF8", 4) == 0) || (tl == 5 && strncasecmp(semi + 1, "UTF-8", 5) == 0)))
		goto out;
	memcpy(oidtxt, v, (size_t)(semi - v));
	oidtxt[semi - v] = '\0';
	if (!role_oid_valid(oidtxt) || (oid = OBJ_txt2obj(oidtxt, 1)) == NULL)
		goto out;
	if (strlen(colon + 1) > ROLE_MAX_NAME_BYTES)
		goto out;
	u = ASN1_UTF8STRING_new();
	val = ASN1_TYPE_new();
	gn = GENERAL_NAME_new();
	if (u == NULL || val == NULL || gn == NULL || ASN1_STRING_set(u, colon + 1, (int)strlen(colon + 1)) != 1)
		sg_die("out of memory");
	ASN1_TYPE_set(val, V_ASN1_UTF8STRING, u);
	if (GENERAL_NAME_set0_othername(gn, oid, val) != 1)
		sg_die("out of memory");
	ret = gn;
	oid = NULL;
out:
	if (ret == NULL) {
		ERR_clear_error();
		sg_err_set(err, SG_BAD_REQUEST, "invalid other SAN '%.64s' (want <oid>;UTF8:<value>)", v);
	}
	ASN1_OBJECT_free(oid);
	return ret;
}

static int push_names(GENERAL_NAMES *g, const struct sg_strlist *l, int type, struct sg_err *err)
{
	for (size_t i = 0; i < l->n; i++) {
		GENERAL_NAME *gn = type == GEN_IPADD ? gn_ip(l->v[i], err)
		                   : type == GEN_OTHERNAME ? gn_other(l->v[i], err)
		                                            : gn_ia5(type, l->v[i], err);

		if (gn == NULL)
			return -1;
		if (sk_GENERAL_NAME_push(g, gn) <= 0)
			sg_die("out of memory");
	}
	return 0;
}

static GENERAL_NAMES *sans_build(const struct ca_sans *s, struct sg_err *err)
{
	GENERAL_NAMES *g = GENERAL_NAMES_new(), *ret = NULL;

	if (g == NULL)
		sg_die("out of memory");
	if (ca_sans_count(s) > ROLE_MAX_SANS) {
		sg_err_set(err, SG_BAD_REQUEST, "more than %d subject alternative names", ROLE_MAX_SANS);
		goto out;
	}
	if (push_names(g, &s->dns, GEN_DNS, err) < 0 || push_names(g, &s->emails, GEN_EMAIL, err) < 0 ||
	    push_names(g, &s->ips, GEN_IPADD, err) < 0 || push_names(g, &s->uris, GEN_URI, err) < 0 ||
	    push_names(g, &s->other, GEN_OTHERNAME, err) < 0)
		goto out;
	ret = g;
	g = NULL;
out:
	GENERAL_NAMES_free(g);
	return ret;
}

int ca_sans_to_ext(const struct ca_sans *s, bool critical, X509_EXTENSION **out, struct sg_err *err)
{
	GENERAL_NAMES *g;

	*out = NULL;
	if (s == NULL || ca_sans_count(s) == 0)
		return 0;
	if ((g = sans_build(s, err)) == NULL)
		return -1;
	*out = X509V3_EXT_i2d(NID_subject_alt_name, critical ? 1 : 0, g);
	GENERAL_NAMES_free(g);
	if (*out == NULL)
		return sg_err_ossl(err, SG_CRYPTO, "unable to encode the SAN extension");
	return 0;
}

/* ---------------- Extensions ---------------- */

static int add_ext(X509 *x, int nid, void *value, int crit, struct sg_err *err)
{
	if (X509_add1_ext_i2d(x, nid, value, crit, X509V3_ADD_DEFAULT) != 1)
		return sg_err_ossl(err, SG_CRYPTO, "unable to add extension %s", OBJ_nid2sn(nid));
	return 0;
}

/*
 * Usages a subject key type can have: RFC 3279 2.3.1 / RFC 4055 1.2 (RSA:
 * no keyAgreement), RFC 5480 3 (ECDSA/ECDH: no keyEncipherment or
 * dataEncipherment), RFC 8410 5 (Ed25519: signatures only).
 */
static unsigned ku_for_key(unsigned ku, const EVP_PKEY *k)
{
	switch (EVP_PKEY_get_base_id(k)) {
	case EVP_PKEY_RSA:
	case EVP_PKEY_RSA_PSS:
		return ku & ~(unsigned)(ROLE_KU_KEY_AGREEMENT | ROLE_KU_ENCIPHER_ONLY | ROLE_KU_DECIPHER_ONLY);
	case EVP_PKEY_EC:
		ku &= ~(unsigned)(ROLE_KU_KEY_ENCIPHERMENT | ROLE_KU_DATA_ENCIPHERMENT);
		/* encipherOnly/decipherOnly only mean something with keyAgreement (RFC 5280 4.2.1.3). */
		if (!(ku & ROLE_KU_KEY_AGREEMENT))
			ku &= ~(unsigned)(ROLE_KU_ENCIPHER_ONLY | ROLE_KU_DECIPHER_ONLY);
		return ku;
	case EVP_PKEY_ED25519:
		return ku & (ROLE_KU_DIGITAL_SIGNATURE | ROLE_KU_CONTENT_COMMITMENT | ROLE_KU_CERT_SIGN |
		             ROLE_KU_CRL_SIGN);
	default:
		return ku;
	}
}

static int add_ku(X509 *x, unsigned ku, struct sg_err *err)
{
	ASN1_BIT_STRING *bs = ASN1_BIT_STRING_new();
	int rc;

	if (bs == NULL)
		sg_die("out of memory");
	for (int bit = 0; bit <= 8; bit++)
		if ((ku & (1u << bit)) && ASN1_BIT_STRING_set_bit(bs, bit, 1) != 1)
			sg_die("out of memory");
	/* RFC 5280 4.2.1.3: conforming CAs SHOULD mark keyUsage critical. */
	rc = add_ext(x, NID_key_usage, bs, 1, err);
	ASN1_BIT_STRING_free(bs);
	return rc;
}

static int add_eku(X509 *x, const struct sg_strlist *oids, struct sg_err *err)
{
	EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null();
	int rc = -1;

	if (eku == NULL)
		sg_die("out of memory");
	for (size_t i = 0; i < oids->n; i++) {
		ASN1_OBJECT *o = role_oid_valid(oids->v[i]) ? OBJ_txt2obj(oids->v[i], 1) : NULL;
		bool dup = false;

		if (o == NULL) {
			ERR_clear_error();
			sg_err_set(err, SG_BAD_REQUEST, "invalid extended key usage OID '%.64s'", oids->v[i]);
			goto out;
		}
		for (int j = 0; j < sk_ASN1_OBJECT_num(eku); j++)
			dup = dup || OBJ_cmp(sk_ASN1_OBJECT_value(eku, j), o) == 0;
		if (dup) {
			ASN1_OBJECT_free(o);
			continue;
		}
		if (sk_ASN1_OBJECT_push(eku, o) <= 0)
			sg_die("out of memory");
	}
	rc = sk_ASN1_OBJECT_num(eku) > 0 ? add_ext(x, NID_ext_key_usage, eku, 0, err) : 0;
out:
	sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
	return rc;
}

static int add_bc(X509 *x, bool ca, int pathlen, struct sg_err *err)
{
	BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
	int rc;

	if (bc == NULL)
		sg_die("out of memory");
	bc->ca = ca ? 0xFF : 0;
	if (ca && pathlen >= 0) {
		bc->pathlen = ASN1_INTEGER_new();
		if (bc->pathlen == NULL || ASN1_INTEGER_set(bc->pathlen, pathlen) != 1)
			sg_die("out of memory");
	}
	/* RFC 5280 4.2.1.9: MUST be critical in CA certificates; Go marks it critical on leaves too. */
	rc = add_ext(x, NID_basic_constraints, bc, 1, err);
	BASIC_CONSTRAINTS_free(bc);
	return rc;
}

static ASN1_OCTET_STRING *key_id_of(X509 *x, struct sg_err *err)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	ASN1_OCTET_STRING *os;

	/* RFC 5280 4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING. */
	if (X509_pubkey_digest(x, EVP_sha1(), md, &mdlen) != 1) {
		sg_err_ossl(err, SG_CRYPTO, "unable to compute a key identifier");
		return NULL;
	}
	os = ASN1_OCTET_STRING_new();
	if (os == NULL || ASN1_OCTET_STRING_set(os, md, (int)mdlen) != 1)
		sg_die("out of memory");
	return os;
}

static int add_ski_aki(X509 *x, X509 *issuer, struct sg_err *err)
{
	ASN1_OCTET_STRING *ski = key_id_of(x, err), *ikid = NULL;
	AUTHORITY_KEYID *akid = NULL;
	int rc = -1;

	if (ski == NULL)
		goto out;
	if (add_ext(x, NID_subject_key_identifier, ski, 0, err) < 0)
		goto out;
	if (issuer == NULL) {
		ikid = ASN1_OCTET_STRING_dup(ski);
	} else {
		const ASN1_OCTET_STRING *have = X509_get0_subject_key_id(issuer);

		ikid = have != NULL ? ASN1_OCTET_STRING_dup(have) : key_id_of(issuer, err);
	}
	if (ikid == NULL)
		goto out;
	akid = AUTHORITY_KEYID_new();
	if (akid == NULL)
		sg_die("out of memory");
	akid->keyid = ikid;
	/* RFC 5280 4.2.1.1: keyIdentifier, MUST be non-critical. */
	rc = add_ext(x, NID_authority_key_identifier, akid, 0, err);
out:
	AUTHORITY_KEYID_free(akid);
	ASN1_OCTET_STRING_free(ski);
	return rc;
}

static int add_aia(X509 *x, const struct ca_urls *u, struct sg_err *err)
{
	AUTHORITY_INFO_ACCESS *aia = sk_ACCESS_DESCRIPTION_new_null();
	const struct sg_strlist *lists[2] = {&u->ocsp_servers, &u->issuing_certificates};
	const int methods[2] = {NID_ad_OCSP, NID_ad_ca_issuers};
	int rc = -1;

	if (aia == NULL)
		sg_die("out of memory");
	for (int k = 0; k < 2; k++) {
		for (size_t i = 0; i < lists[k]->n; i++) {
			ACCESS_DESCRIPTION *ad;
			GENERAL_NAME *gn = gn_ia5(GEN_URI, lists[k]->v[i], err);

			if (gn == NULL)
				goto out;
			ad = ACCESS_DESCRIPTION_new();
			if (ad == NULL)
				sg_die("out of memory");
			ASN1_OBJECT_free(ad->method);
			ad->method = OBJ_nid2obj(methods[k]);
			GENERAL_NAME_free(ad->location);
			ad->location = gn;
			if (sk_ACCESS_DESCRIPTION_push(aia, ad) <= 0)
				sg_die("out of memory");
		}
	}
	/* RFC 5280 4.2.2.1: MUST be non-critical. */
	rc = sk_ACCESS_DESCRIPTION_num(aia) > 0 ? add_ext(x, NID_info_access, aia, 0, err) : 0;
out:
	AUTHORITY_INFO_ACCESS_free(aia);
	return rc;
}

/* One DistributionPoint per URL, fullName only (RFC 5280 4.2.1.13). */
static int add_dps(X509 *x, int nid, const struct sg_strlist *urls, struct sg_err *err)
{
	CRL_DIST_POINTS *dps;
	int rc = -1;

	if (urls->n == 0)
		return 0;
	dps = sk_DIST_POINT_new_null();
	if (dps == NULL)
		sg_die("out of memory");
	for (size_t i = 0; i < urls->n; i++) {
		DIST_POINT *dp;
		GENERAL_NAME *gn = gn_ia5(GEN_URI, urls->v[i], err);

		if (gn == NULL)
			goto out;
		dp = DIST_POINT_new();
		if (dp == NULL || (dp->distpoint = DIST_POINT_NAME_new()) == NULL ||
		    (dp->distpoint->name.fullname = GENERAL_NAMES_new()) == NULL)
			sg_die("out of memory");
		dp->distpoint->type = 0;
		if (sk_GENERAL_NAME_push(dp->distpoint->name.fullname, gn) <= 0 || sk_DIST_POINT_push(dps, dp) <= 0)
			sg_die("out of memory");
	}
	rc = add_ext(x, nid, dps, 0, err);
out:
	CRL_DIST_POINTS_free(dps);
	return rc;
}

static POLICYQUALINFO *qualifier(int nid, const char *text)
{
	POLICYQUALINFO *q = POLICYQUALINFO_new();

	if (q == NULL)
		sg_die("out of memory");
	q->pqualid = OBJ_nid2obj(nid);
	if (nid == NID_id_qt_cps) {
		q->d.cpsuri = ASN1_IA5STRING_new();
		if (q->d.cpsuri == NULL || ASN1_STRING_set(q->d.cpsuri, text, (int)strlen(text)) != 1)
			sg_die("out of memory");
	} else {
		/* RFC 5280 4.2.1.4: explicitText SHOULD be a UTF8String. */
		q->d.usernotice = USERNOTICE_new();
		if (q->d.usernotice == NULL || (q->d.usernotice->exptext = ASN1_UTF8STRING_new()) == NULL ||
		    ASN1_STRING_set(q->d.usernotice->exptext, text, (int)strlen(text)) != 1)
			sg_die("out of memory");
	}
	return q;
}

static int add_policies(X509 *x, const struct sg_strlist *entries, struct sg_err *err)
{
	CERTIFICATEPOLICIES *cp = sk_POLICYINFO_new_null();
	struct role_policy pol = {0};
	int rc = -1;

	if (cp == NULL)
		sg_die("out of memory");
	for (size_t i = 0; i < entries->n; i++) {
		POLICYINFO *pi;

		if (role_policy_parse(entries->v[i], &pol, err) < 0)
			goto out;
		if (strlen(pol.cps != NULL ? pol.cps : "") > CA_MAX_URL_LEN ||
		    strlen(pol.notice != NULL ? pol.notice : "") > 200 /* RFC 5280 4.2.1.4: 200 characters */ ||
		    (pol.cps != NULL && !is_ia5(pol.cps))) {
			sg_err_set(err, SG_BAD_REQUEST, "invalid policy qualifier");
			goto out;
		}
		pi = POLICYINFO_new();
		if (pi == NULL)
			sg_die("out of memory");
		ASN1_OBJECT_free(pi->policyid);
		pi->policyid = OBJ_txt2obj(pol.oid, 1);
		if (pi->policyid == NULL) {
			POLICYINFO_free(pi);
			ERR_clear_error();
			sg_err_set(err, SG_BAD_REQUEST, "invalid policy OID '%.64s'", pol.oid);
			goto out;
		}
		if ((pol.cps != NULL && pol.cps[0]) || (pol.notice != NULL && pol.notice[0])) {
			pi->qualifiers = sk_POLICYQUALINFO_new_null();
			if (pi->qualifiers == NULL)
				sg_die("out of memory");
			if (pol.cps != NULL && pol.cps[0])
				sk_POLICYQUALINFO_push(pi->qualifiers, qualifier(NID_id_qt_cps, pol.cps));
			if (pol.notice != NULL && pol.notice[0])
				sk_POLICYQUALINFO_push(pi->qualifiers, qualifier(NID_id_qt_unotice, pol.notice));
		}
		if (sk_POLICYINFO_push(cp, pi) <= 0)
			sg_die("out of memory");
		role_policy_clear(&pol);
	}
	rc = add_ext(x, NID_certificate_policies, cp, 0, err);
out:
	role_policy_clear(&pol);
	CERTIFICATEPOLICIES_free(cp);
	return rc;
}

static int add_name_constraints(X509 *x, const struct sg_strlist *dns, struct sg_err *err)
{
	NAME_CONSTRAINTS *nc = NAME_CONSTRAINTS_new();
	int rc = -1;

	if (nc == NULL || (nc->permittedSubtrees = sk_GENERAL_SUBTREE_new_null()) == NULL)
		sg_die("out of memory");
	for (size_t i = 0; i < dns->n; i++) {
		GENERAL_SUBTREE *st;
		GENERAL_NAME *gn = gn_ia5(GEN_DNS, dns->v[i], err);

		if (gn == NULL)
			goto out;
		st = GENERAL_SUBTREE_new();
		if (st == NULL)
			sg_die("out of memory");
		GENERAL_NAME_free(st->base);
		st->base = gn;
		if (sk_GENERAL_SUBTREE_push(nc->permittedSubtrees, st) <= 0)
			sg_die("out of memory");
	}
	/* RFC 5280 4.2.1.10: conforming CAs MUST mark this extension critical. */
	rc = add_ext(x, NID_name_constraints, nc, 1, err);
out:
	NAME_CONSTRAINTS_free(nc);
	return rc;
}

/* ---------------- Subject public key ---------------- */

/*
 * OpenSSL 3.0's X509_set_pubkey on a provider key encodes the key and
 * decodes it again through freshly built OSSL_ENCODER/OSSL_DECODER
 * contexts: ~400 us and global locks per certificate, the bulk of an
 * issuance. The same SubjectPublicKeyInfo as a key decoded with
 * d2i_KeyParams/d2i_PublicKey (ca_pubkey_legacy) is encoded directly
 * (~20x faster). Returns NULL when that does not apply (Ed25519, RSA-PSS,
 * unusual encodings); the caller then uses the key as it is.
 */
static EVP_PKEY *fast_pubkey(EVP_PKEY *key, X509_PUBKEY *spki)
{
	const unsigned char *bits;
	const ASN1_OBJECT *alg;
	const void *pval;
	X509_ALGOR *pa;
	int blen, ptype, nid;
	unsigned char point[256];
	char group[64];
	size_t plen = 0, glen = 0;
	EVP_PKEY *k = NULL;

	if (spki != NULL && X509_PUBKEY_get0_param(NULL, &bits, &blen, &pa, spki) == 1) {
		X509_ALGOR_get0(&alg, &ptype, &pval, pa);
		nid = OBJ_obj2nid(alg);
		if (nid == NID_X9_62_id_ecPublicKey && ptype == V_ASN1_OBJECT && blen > 0)
			k = ca_pubkey_legacy(nid, OBJ_obj2nid(pval), bits, (size_t)blen);
		else if (nid == NID_rsaEncryption && blen > 0)
			k = ca_pubkey_legacy(nid, NID_undef, bits, (size_t)blen);
	} else if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC &&
	           EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &glen) == 1 &&
	           EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point, sizeof(point),
	                                           &plen) == 1) {
		k = ca_pubkey_legacy(NID_X9_62_id_ecPublicKey, OBJ_sn2nid(group), point, plen);
	}
	ERR_clear_error();
	return k;
}

static int set_pubkey(X509 *x, EVP_PKEY *key, X509_PUBKEY *spki, struct sg_err *err)
{
	EVP_PKEY *fast = fast_pubkey(key, spki);
	int ok = X509_set_pubkey(x, fast != NULL ? fast : key);

	EVP_PKEY_free(fast);
	if (ok != 1)
		return sg_err_ossl(err, SG_CRYPTO, "unable to set the subject public key");
	return 0;
}

static int set_time(X509 *x, int64_t t, bool after, struct sg_err *err)
{
	/* ASN1_TIME_set picks UTCTime before 2050 and GeneralizedTime after (RFC 5280 4.1.2.5). */
	ASN1_TIME *at = ASN1_TIME_set(NULL, (time_t)t);
	int ok;

	if (at == NULL)
		return sg_err_ossl(err, SG_TTL_INVALID, "time out of range");
	ok = after ? X509_set1_notAfter(x, at) : X509_set1_notBefore(x, at);
	ASN1_TIME_free(at);
	if (ok != 1)
		sg_die("out of memory");
	return 0;
}

X509 *ca_profile_build(const struct ca_profile *p, struct sg_err *err)
{
	X509 *x = X509_new();
	ASN1_INTEGER *serial = NULL;
	X509_EXTENSION *san = NULL;
	unsigned ku = p->key_usage;
	X509 *ret = NULL;

	if (x == NULL)
		sg_die("out of memory");
	serial = ca_serial_to_asn1(p->serial);
	if (X509_set_version(x, X509_VERSION_3) != 1 || X509_set_serialNumber(x, serial) != 1 ||
	    X509_set_subject_name(x, p->subject) != 1 ||
	    X509_set_issuer_name(x, p->issuer != NULL ? X509_get_subject_name(p->issuer) : p->subject) != 1) {
		sg_err_ossl(err, SG_CRYPTO, "unable to build the certificate");
		goto out;
	}
	if (set_pubkey(x, p->pubkey, p->spki, err) < 0)
		goto out;
	if (set_time(x, p->not_before, false, err) < 0 || set_time(x, p->not_after, true, err) < 0)
		goto out;
	if (p->is_ca || p->leaf_basic_constraints) {
		if (add_bc(x, p->is_ca, p->max_path_length, err) < 0)
			goto out;
	}
	if (p->ku_filter_by_key)
		ku = ku_for_key(ku, p->pubkey);
	if (ku != 0 && add_ku(x, ku, err) < 0)
		goto out;
	if (p->eku_oids != NULL && p->eku_oids->n > 0 && add_eku(x, p->eku_oids, err) < 0)
		goto out;
	if (add_ski_aki(x, p->issuer, err) < 0)
		goto out;
	if (p->sans != NULL) {
		/* RFC 5280 4.2.1.6: with an empty subject the SAN extension MUST be critical. */
		bool crit = X509_NAME_entry_count(p->subject) == 0;

		if (ca_sans_to_ext(p->sans, crit, &san, err) < 0)
			goto out;
		if (san != NULL && X509_add_ext(x, san, -1) != 1) {
			sg_err_ossl(err, SG_CRYPTO, "unable to add the SAN extension");
			goto out;
		}
	}
	for (int i = 0; p->copy_exts != NULL && i < sk_X509_EXTENSION_num(p->copy_exts); i++) {
		if (X509_add_ext(x, sk_X509_EXTENSION_value(p->copy_exts, i), -1) != 1) {
			sg_err_ossl(err, SG_CRYPTO, "unable to copy a CSR extension");
			goto out;
		}
	}
	if (p->urls != NULL) {
		if (add_aia(x, p->urls, err) < 0 ||
		    add_dps(x, NID_crl_distribution_points, &p->urls->crl_distribution_points, err) < 0 ||
		    /* RFC 5280 4.2.1.15: where to find delta CRLs. */
		    add_dps(x, NID_freshest_crl, &p->urls->delta_crl_distribution_points, err) < 0)
			goto out;
	}
	if (p->policies != NULL && p->policies->n > 0 && add_policies(x, p->policies, err) < 0)
		goto out;
	if (p->is_ca && p->permitted_dns_domains != NULL && p->permitted_dns_domains->n > 0 &&
	    add_name_constraints(x, p->permitted_dns_domains, err) < 0)
		goto out;
	ret = x;
	x = NULL;
out:
	X509_EXTENSION_free(san);
	ASN1_INTEGER_free(serial);
	X509_free(x);
	return ret;
}

/* ---------------- CSR extensions ---------------- */

static bool managed_nid(int nid)
{
	switch (nid) {
	case NID_basic_constraints:
	case NID_key_usage:
	case NID_ext_key_usage:
	case NID_subject_key_identifier:
	case NID_authority_key_identifier:
	case NID_info_access:
	case NID_crl_distribution_points:
	case NID_freshest_crl:
	case NID_name_constraints:
		return true;
	default:
		return false;
	}
}

int ca_csr_exts_filtered(X509_REQ *csr, bool refuse_ca, STACK_OF(X509_EXTENSION) **out, struct sg_err *err)
{
	STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(csr), *keep = NULL;
	int rc = -1;

	*out = NULL;
	keep = sk_X509_EXTENSION_new_null();
	if (keep == NULL)
		sg_die("out of memory");
	if (sk_X509_EXTENSION_num(exts) > CA_MAX_CSR_EXTS) {
		sg_err_set(err, SG_BAD_CSR, "more than %d extensions in the CSR", CA_MAX_CSR_EXTS);
		goto out;
	}
	for (int i = 0; i < sk_X509_EXTENSION_num(exts); i++) {
		X509_EXTENSION *e = sk_X509_EXTENSION_value(exts, i);
		const ASN1_OBJECT *obj = X509_EXTENSION_get_object(e);
		int nid = OBJ_obj2nid(obj);

		for (int j = 0; j < i; j++) {
			/* RFC 5280 4.2: a certificate MUST NOT include more than one instance of an extension. */
			if (OBJ_cmp(X509_EXTENSION_get_object(sk_X509_EXTENSION_value(exts, j)), obj) == 0) {
				sg_err_set(err, SG_BAD_CSR, "duplicate extension in the CSR");
				goto out;
			}
		}
		if (nid == NID_basic_constraints && refuse_ca) {
			BASIC_CONSTRAINTS *bc = X509V3_EXT_d2i(e);
			bool ca = bc != NULL && bc->ca;

			BASIC_CONSTRAINTS_free(bc);
			if (bc == NULL) {
				ERR_clear_error();
				sg_err_set(err, SG_BAD_CSR, "malformed BasicConstraints in the CSR");
				goto out;
			}
			if (ca) {
				sg_err_set(err, SG_BAD_REQUEST,
				           "the CSR asks for a CA certificate (BasicConstraints CA:true); use sign-intermediate");
				goto out;
			}
		}
		if (managed_nid(nid))
			continue;
		e = X509_EXTENSION_dup(e);
		if (e == NULL || sk_X509_EXTENSION_push(keep, e) <= 0)
			sg_die("out of memory");
	}
	*out = keep;
	keep = NULL;
	rc = 0;
out:
	sk_X509_EXTENSION_pop_free(keep, X509_EXTENSION_free);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	return rc;
}
