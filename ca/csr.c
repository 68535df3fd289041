/*
 * PKCS#10 certification requests (RFC 2986) from untrusted bytes, and the
 * names they ask for. Fuzzed by tests/fuzz/fuzz_csr.c, so this file needs
 * only ca/pem.c and common/.
 */
#include "ca/ca.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "ca/parse.h"
#include "common/util.h"

#define CSR_NAME_MAX 2048    /* longest single name (CN, SAN, serialNumber) taken from a CSR */
#define CSR_OID_TEXT_MAX 128 /* longest dotted OID of an otherName */

static bool csr_label_ok(const char *label)
{
	/* RFC 7468 section 7; "NEW CERTIFICATE REQUEST" is the legacy Netscape/MSIE label. */
	return strcmp(label, "CERTIFICATE REQUEST") == 0 || strcmp(label, "NEW CERTIFICATE REQUEST") == 0;
}

/*
 * The requested extensions, checked: one extensionRequest attribute with one
 * value (RFC 2985 5.4.2 defines it single-valued), and no extension twice,
 * since a request for two subjectAltNames has no single meaning.
 */
static STACK_OF(X509_EXTENSION) *csr_extensions(X509_REQ *req, struct sg_err *err)
{
	static const int nids[] = {NID_ext_req, NID_ms_ext_req};
	STACK_OF(X509_EXTENSION) *exts = NULL, *res = NULL;
	int found = 0;

	for (size_t i = 0; i < sizeof(nids) / sizeof(nids[0]); i++) {
		int idx = -1;

		while ((idx = X509_REQ_get_attr_by_NID(req, nids[i], idx)) >= 0) {
			if (++found > 1) {
				sg_err_set(err, SG_BAD_CSR, "CSR has more than one extensionRequest attribute");
				goto out;
			}
			if (X509_ATTRIBUTE_count(X509_REQ_get_attr(req, idx)) != 1) {
				sg_err_set(err, SG_BAD_CSR, "CSR extensionRequest attribute must have exactly one value");
				goto out;
			}
		}
	}
	exts = X509_REQ_get_extensions(req);
	if (exts == NULL) {
		sg_err_ossl(err, SG_BAD_CSR, "CSR extensionRequest attribute does not decode");
		goto out;
	}
	for (int i = 0; i < sk_X509_EXTENSION_num(exts); i++) {
		const ASN1_OBJECT *a = X509_EXTENSION_get_object(sk_X509_EXTENSION_value(exts, i));

		for (int j = 0; j < i; j++) {
			if (OBJ_cmp(a, X509_EXTENSION_get_object(sk_X509_EXTENSION_value(exts, j))) == 0) {
				char oid[CSR_OID_TEXT_MAX];

				if (OBJ_obj2txt(oid, sizeof(oid), a, 0) <= 0)
					snprintf(oid, sizeof(oid), "(unprintable)");
				sg_err_set(err, SG_BAD_CSR, "CSR requests extension %s more than once", oid);
				goto out;
			}
		}
	}
	res = exts;
	exts = NULL;
out:
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	return res;
}

/* Enters one DER TLV at *p of the wanted tag and class (definite length): *p to its contents, *cend past them. */
static int der_enter(const unsigned char **p, const unsigned char *end, int tag, int cls, const unsigned char **cend)
{
	const unsigned char *q = *p;
	long len;
	int t, c, r;

	if (q >= end)
		return -1;
	r = ASN1_get_object(&q, &len, &t, &c, end - q);
	if ((r & 0x80) != 0 || (r & 0x01) != 0 || t != tag || c != cls)
		return -1;
	*p = q;
	*cend = q + len;
	return 0;
}

/*
 * d2i_X509_REQ in OpenSSL 3.0 decodes the SubjectPublicKeyInfo through a
 * freshly built OSSL_DECODER context, which costs more than verifying the
 * request's signature (ca_pubkey_legacy in ca/pem.c). For RSA and named
 * curve EC keys the request is rebuilt here from its parts around a key
 * from the legacy methods, and kept only if it encodes back to exactly the
 * input: then it is the request d2i_X509_REQ would have produced. NULL
 * (no error) sends everything else, malformed input included, to
 * d2i_X509_REQ.
 */
static X509_REQ *csr_decode_fast(const unsigned char *der, size_t len)
{
	const unsigned char *p = der, *end = der + len, *info_end, *spki_end, *alg_end, *v;
	X509_REQ *req = NULL, *res = NULL;
	X509_NAME *subject = NULL;
	ASN1_OBJECT *obj = NULL;
	EVP_PKEY *key = NULL;
	X509_ATTRIBUTE *attr = NULL;
	X509_ALGOR *alg = NULL;
	ASN1_BIT_STRING *sig = NULL;
	unsigned char *enc = NULL;
	int alg_nid, curve_nid = NID_undef, enc_len;

	if (len > CA_MAX_CSR_BYTES)
		return NULL;
	ERR_set_mark();
	/* RFC 2986 4: SEQUENCE { certificationRequestInfo, signatureAlgorithm, signature }. */
	if (der_enter(&p, end, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &v) != 0 || v != end ||
	    der_enter(&p, end, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &info_end) != 0)
		goto out;
	/* version v1(0); any other is left to the full parser, which refuses it. */
	if (info_end - p < 3 || memcmp(p, "\x02\x01\x00", 3) != 0)
		goto out;
	p += 3;
	if ((subject = d2i_X509_NAME(NULL, &p, info_end - p)) == NULL)
		goto out;
	/* SubjectPublicKeyInfo: SEQUENCE { SEQUENCE { algorithm, parameters }, BIT STRING }. */
	if (der_enter(&p, info_end, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &spki_end) != 0 ||
	    der_enter(&p, spki_end, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &alg_end) != 0 ||
	    (obj = d2i_ASN1_OBJECT(NULL, &p, alg_end - p)) == NULL)
		goto out;
	alg_nid = OBJ_obj2nid(obj);
	ASN1_OBJECT_free(obj);
	obj = NULL;
	if (alg_nid == NID_X9_62_id_ecPublicKey) {
		/* RFC 5480 2.1.1: namedCurve. */
		if ((obj = d2i_ASN1_OBJECT(NULL, &p, alg_end - p)) == NULL)
			goto out;
		curve_nid = OBJ_obj2nid(obj);
	} else if (alg_nid == NID_rsaEncryption) {
		/* RFC 3279 2.3.1: parameters NULL. */
		if (alg_end - p != 2 || p[0] != V_ASN1_NULL || p[1] != 0)
			goto out;
		p += 2;
	} else {
		goto out;
	}
	if (p != alg_end || der_enter(&p, spki_end, V_ASN1_BIT_STRING, V_ASN1_UNIVERSAL, &v) != 0 || v != spki_end ||
	    v - p < 2 || p[0] != 0 ||
	    (key = ca_pubkey_legacy(alg_nid, curve_nid, p + 1, (size_t)(v - p - 1))) == NULL)
		goto out;
	p = spki_end;
	if ((req = X509_REQ_new()) == NULL)
		sg_die("out of memory");
	if (X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 || X509_REQ_set_subject_name(req, subject) != 1 ||
	    X509_REQ_set_pubkey(req, key) != 1)
		goto out;
	/* attributes [0] IMPLICIT SET OF Attribute. */
	if (der_enter(&p, info_end, 0, V_ASN1_CONTEXT_SPECIFIC, &v) != 0 || v != info_end)
		goto out;
	while (p < info_end) {
		if ((attr = d2i_X509_ATTRIBUTE(NULL, &p, info_end - p)) == NULL || X509_REQ_add1_attr(req, attr) != 1)
			goto out;
		X509_ATTRIBUTE_free(attr);
		attr = NULL;
	}
	if ((alg = d2i_X509_ALGOR(NULL, &p, end - p)) == NULL || X509_REQ_set1_signature_algo(req, alg) != 1 ||
	    (sig = d2i_ASN1_BIT_STRING(NULL, &p, end - p)) == NULL || p != end)
		goto out;
	X509_REQ_set0_signature(req, sig);
	sig = NULL;
	enc_len = i2d_X509_REQ(req, &enc);
	if (enc_len < 0 || (size_t)enc_len != len || memcmp(enc, der, len) != 0)
		goto out;
	res = req;
	req = NULL;
out:
	ERR_pop_to_mark();
	OPENSSL_free(enc);
	ASN1_BIT_STRING_free(sig);
	X509_ALGOR_free(alg);
	X509_ATTRIBUTE_free(attr);
	EVP_PKEY_free(key);
	ASN1_OBJECT_free(obj);
	X509_NAME_free(subject);
	X509_REQ_free(req);
	return res;
}

X509_REQ *ca_csr_parse(const unsigned char *buf, size_t len, struct sg_err *err)
{
	struct ca_pem_blocks blocks = {0};
	STACK_OF(X509_EXTENSION) *exts = NULL;
	const unsigned char *der = NULL, *p = NULL;
	size_t der_len = 0;
	X509_REQ *req = NULL, *res = NULL;
	EVP_PKEY *pk = NULL;

	if (buf == NULL || len == 0) {
		sg_err_set(err, SG_BAD_CSR, "empty CSR");
		goto out;
	}
	if (len > CA_MAX_CSR_BYTES) {
		sg_err_set(err, SG_BAD_CSR, "CSR larger than %u bytes", CA_MAX_CSR_BYTES);
		goto out;
	}
	if (ca_buf_is_der(buf, len)) {
		der = buf;
		der_len = len;
	} else {
		if (ca_pem_blocks_parse((const char *)buf, len, CA_PEM_MAX_BLOCKS, SG_BAD_CSR, &blocks, err) != 0)
			goto out;
		if (blocks.n == 0) {
			sg_err_set(err, SG_BAD_CSR,
			           "CSR is neither DER nor PEM (no \"-----BEGIN CERTIFICATE REQUEST-----\" line)");
			goto out;
		}
		if (blocks.n != 1) {
			sg_err_set(err, SG_BAD_CSR, "expected exactly one PEM block, found %zu", blocks.n);
			goto out;
		}
		if (!csr_label_ok(blocks.v[0].label)) {
			sg_err_set(err, SG_BAD_CSR, "PEM block is \"%s\", expected \"CERTIFICATE REQUEST\"",
			           blocks.v[0].label);
			goto out;
		}
		der = blocks.v[0].der;
		der_len = blocks.v[0].der_len;
	}

	req = csr_decode_fast(der, der_len);
	if (req == NULL) {
		p = der;
		req = d2i_X509_REQ(NULL, &p, (long)der_len);
		if (req == NULL) {
			sg_err_ossl(err, SG_BAD_CSR, "not a valid PKCS#10 certification request");
			goto out;
		}
		if (p != der + der_len) {
			sg_err_set(err, SG_BAD_CSR, "%zu trailing bytes after the CSR", (size_t)(der + der_len - p));
			goto out;
		}
	}
	/* RFC 2986 4.1: version is 0 (v1); nothing else is defined. */
	if (X509_REQ_get_version(req) != X509_REQ_VERSION_1) {
		sg_err_set(err, SG_BAD_CSR, "unsupported CSR version %ld", X509_REQ_get_version(req));
		goto out;
	}
	pk = X509_REQ_get0_pubkey(req);
	if (pk == NULL) {
		sg_err_ossl(err, SG_BAD_CSR, "CSR public key is missing or of an unsupported type");
		goto out;
	}
	/* RFC 2986 3: the signature proves possession of the private key. */
	if (X509_REQ_verify(req, pk) != 1) {
		sg_err_ossl(err, SG_BAD_SIGNATURE, "CSR signature does not verify with its public key");
		goto out;
	}
	exts = csr_extensions(req, err);
	if (exts == NULL)
		goto out;
	res = req;
	req = NULL;
out:
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_free(req);
	ca_pem_blocks_clear(&blocks);
	return res;
}

static void names_release(struct role_names *n)
{
	free((char *)n->common_name);
	free((char *)n->subject_serial);
	sg_strlist_clear(&n->dns);
	sg_strlist_clear(&n->emails);
	sg_strlist_clear(&n->ips);
	sg_strlist_clear(&n->uris);
	sg_strlist_clear(&n->other_sans);
	sg_strlist_clear(&n->user_ids);
	memset(n, 0, sizeof(*n));
}

/*
 * Checks a name before it reaches role checks, logs and certificates: no
 * NUL (the classic "good.com\0.evil.com"), no control characters, and only
 * ASCII where the ASN.1 type is IA5String.
 */
static int name_check(const unsigned char *s, size_t n, bool ia5, const char *what, struct sg_err *err)
{
	if (n == 0)
		return sg_err_set(err, SG_BAD_CSR, "CSR has an empty %s", what);
	if (n > CSR_NAME_MAX)
		return sg_err_set(err, SG_BAD_CSR, "CSR %s is longer than %d bytes", what, CSR_NAME_MAX);
	for (size_t i = 0; i < n; i++) {
		if (s[i] < 0x20 || s[i] == 0x7f)
			return sg_err_set(err, SG_BAD_CSR, "CSR %s contains a control character", what);
		if (ia5 && s[i] >= 0x80)
			return sg_err_set(err, SG_BAD_CSR, "CSR %s is not ASCII", what);
	}
	return 0;
}

/* Any ASN.1 string type as checked UTF-8 (the conversion rejects malformed UTF-8). */
static char *string_utf8(const ASN1_STRING *s, const char *what, struct sg_err *err)
{
	unsigned char *u = NULL;
	char *res = NULL;
	int n = ASN1_STRING_to_UTF8(&u, s);

	if (n < 0) {
		sg_err_ossl(err, SG_BAD_CSR, "CSR %s is not a valid string", what);
		goto out;
	}
	if (name_check(u, (size_t)n, false, what, err) != 0)
		goto out;
	res = sg_xstrndup((const char *)u, (size_t)n);
out:
	OPENSSL_free(u);
	return res;
}

static int ia5_add(const ASN1_IA5STRING *s, const char *what, struct sg_strlist *l, struct sg_err *err)
{
	const unsigned char *d = ASN1_STRING_get0_data(s);
	size_t n = (size_t)ASN1_STRING_length(s);

	if (name_check(d, n, true, what, err) != 0)
		return -1;
	sg_strlist_addn(l, (const char *)d, n);
	return 0;
}

/* iPAddress (RFC 5280 4.2.1.6): 4 or 16 octets; IPv6 in RFC 5952 form ("2001:db8::1"). */
static int ip_add(const ASN1_OCTET_STRING *ip, struct sg_strlist *l, struct sg_err *err)
{
	char buf[INET6_ADDRSTRLEN];
	const unsigned char *d = ASN1_STRING_get0_data(ip);
	int n = ASN1_STRING_length(ip);

	if ((n != 4 && n != 16) || inet_ntop(n == 4 ? AF_INET : AF_INET6, d, buf, sizeof(buf)) == NULL)
		return sg_err_set(err, SG_BAD_CSR, "CSR IP address SAN has %d octets, expected 4 or 16", n);
	sg_strlist_add(l, buf);
	return 0;
}

/* otherName as Vault's other_sans: "<dotted oid>;UTF8:<value>", UTF8String values only. */
static int othername_add(const OTHERNAME *o, struct sg_strlist *l, struct sg_err *err)
{
	char oid[CSR_OID_TEXT_MAX];
	char *v = NULL, *s = NULL;
	int n;

	n = OBJ_obj2txt(oid, sizeof(oid), o->type_id, 1);
	if (n <= 0 || (size_t)n >= sizeof(oid))
		return sg_err_set(err, SG_BAD_CSR, "CSR otherName SAN has an invalid or overlong type OID");
	if (o->value == NULL || o->value->type != V_ASN1_UTF8STRING)
		return sg_err_set(err, SG_BAD_CSR, "CSR otherName SAN %s: only UTF8String values are supported",
		                  oid);
	v = string_utf8(o->value->value.utf8string, "otherName SAN", err);
	if (v == NULL)
		return -1;
	s = sg_xasprintf("%s;UTF8:%s", oid, v);
	sg_strlist_add(l, s);
	free(s);
	free(v);
	return 0;
}

static int subject_names(X509_REQ *csr, struct role_names *n, struct sg_err *err)
{
	const X509_NAME *subj = X509_REQ_get_subject_name(csr);

	for (int i = 0; i < X509_NAME_entry_count(subj); i++) {
		const X509_NAME_ENTRY *e = X509_NAME_get_entry(subj, i);
		const ASN1_STRING *d = X509_NAME_ENTRY_get_data(e);
		char *s = NULL;

		switch (OBJ_obj2nid(X509_NAME_ENTRY_get_object(e))) {
		case NID_commonName:
			/* Two CNs have no single meaning for role checks; refuse rather than guess. */
			if (n->common_name != NULL)
				return sg_err_set(err, SG_BAD_CSR, "CSR subject has more than one commonName");
			if (ASN1_STRING_length(d) == 0)
				break;
			s = string_utf8(d, "commonName", err);
			if (s == NULL)
				return -1;
			n->common_name = s;
			break;
		case NID_serialNumber:
			if (n->subject_serial != NULL)
				return sg_err_set(err, SG_BAD_CSR, "CSR subject has more than one serialNumber");
			s = string_utf8(d, "subject serialNumber", err);
			if (s == NULL)
				return -1;
			n->subject_serial = s;
			break;
		case NID_userId:
			if (n->user_ids.n >= ROLE_MAX_SANS)
				return sg_err_set(err, SG_BAD_CSR, "CSR subject has more than %d UIDs", ROLE_MAX_SANS);
			s = string_utf8(d, "subject UID", err);
			if (s == NULL)
				return -1;
			sg_strlist_add(&n->user_ids, s);
			free(s);
			break;
		default:
			break;
		}
	}
	return 0;
}

static int san_names(const GENERAL_NAMES *gens, struct role_names *n, struct sg_err *err)
{
	int count = sk_GENERAL_NAME_num(gens);

	if (count > ROLE_MAX_SANS)
		return sg_err_set(err, SG_BAD_CSR, "CSR has more than %d subject alternative names", ROLE_MAX_SANS);
	for (int i = 0; i < count; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		int rc = 0;

		switch (g->type) {
		case GEN_DNS:
			rc = ia5_add(g->d.dNSName, "DNS SAN", &n->dns, err);
			break;
		case GEN_EMAIL:
			rc = ia5_add(g->d.rfc822Name, "email SAN", &n->emails, err);
			break;
		case GEN_URI:
			rc = ia5_add(g->d.uniformResourceIdentifier, "URI SAN", &n->uris, err);
			break;
		case GEN_IPADD:
			rc = ip_add(g->d.iPAddress, &n->ips, err);
			break;
		case GEN_OTHERNAME:
			rc = othername_add(g->d.otherName, &n->other_sans, err);
			break;
		default:
			/*
			 * directoryName, registeredID, x400Address, ediPartyName:
			 * Vault builds certificates from the kinds above only, and
			 * sign-verbatim copies the whole extension anyway.
			 */
			break;
		}
		if (rc != 0)
			return -1;
	}
	return 0;
}

/*
 * Fills every field of *out (the previous content is overwritten, not
 * freed). Strings are heap copies owned by *out, released by
 * role_names_clear. On failure *out is left zeroed.
 */
int ca_csr_names(X509_REQ *csr, struct role_names *out, struct sg_err *err)
{
	struct role_names n = {0};
	STACK_OF(X509_EXTENSION) *exts = NULL;
	GENERAL_NAMES *gens = NULL;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	if (csr == NULL) {
		sg_err_set(err, SG_BAD_CSR, "no CSR");
		goto out;
	}
	if (subject_names(csr, &n, err) != 0)
		goto out;
	exts = csr_extensions(csr, err);
	if (exts == NULL)
		goto out;
	for (int i = 0; i < sk_X509_EXTENSION_num(exts); i++) {
		X509_EXTENSION *ext = sk_X509_EXTENSION_value(exts, i);

		if (OBJ_obj2nid(X509_EXTENSION_get_object(ext)) != NID_subject_alt_name)
			continue;
		gens = X509V3_EXT_d2i(ext);
		if (gens == NULL) {
			sg_err_ossl(err, SG_BAD_CSR, "CSR subjectAltName extension does not decode");
			goto out;
		}
		if (san_names(gens, &n, err) != 0)
			goto out;
		break; /* csr_extensions refused a second one */
	}
	*out = n;
	memset(&n, 0, sizeof(n));
	ret = 0;
out:
	GENERAL_NAMES_free(gens);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	names_release(&n);
	return ret;
}
