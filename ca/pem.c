/*
 * PEM and DER at the edges: a strict RFC 7468 block splitter shared by the
 * CSR and certificate parsers, certificate parsing, and PEM output.
 */
#include "ca/parse.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca.h"
#include "common/util.h"

#define PEM_DASHES "-----"
#define PEM_BEGIN "-----BEGIN "
#define PEM_END "-----END "

bool ca_buf_is_der(const unsigned char *buf, size_t len)
{
	/*
	 * Every structure we accept in DER (Certificate, CertificationRequest)
	 * is a SEQUENCE; PEM text starts with a boundary, text or whitespace.
	 */
	return len > 0 && buf[0] == 0x30;
}

void ca_pem_blocks_clear(struct ca_pem_blocks *b)
{
	if (b == NULL)
		return;
	for (size_t i = 0; i < b->n; i++) {
		if (b->v[i].der != NULL) {
			OPENSSL_cleanse(b->v[i].der, b->v[i].der_len);
			free(b->v[i].der);
		}
	}
	free(b->v);
	b->v = NULL;
	b->n = 0;
}

static bool has_prefix(const char *s, size_t n, const char *pre)
{
	size_t pn = strlen(pre);

	return n >= pn && memcmp(s, pre, pn) == 0;
}

static bool has_suffix(const char *s, size_t n, const char *suf)
{
	size_t sn = strlen(suf);

	return n >= sn && memcmp(s + n - sn, suf, sn) == 0;
}

/* RFC 7468 section 3: labelchar = %x21-2C / %x2E-7E, single "-" or SP between them. */
static bool label_valid(const char *s, size_t n)
{
	if (n == 0 || n > CA_PEM_LABEL_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '-' || c == ' ') {
			if (i == 0 || i == n - 1 || s[i - 1] == '-' || s[i - 1] == ' ')
				return false;
			continue;
		}
		if (c < 0x21 || c > 0x7e)
			return false;
	}
	return true;
}

static bool b64_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
	       c == '/';
}

/* Standard alphabet, padded to a multiple of 4, "=" only as the last one or two characters. */
static int b64_decode_strict(const char *s, size_t n, unsigned char **out, size_t *outlen)
{
	size_t i = 0;

	if (n == 0 || n % 4 != 0)
		return -1;
	while (i < n && b64_char((unsigned char)s[i]))
		i++;
	if (n - i > 2)
		return -1;
	for (size_t j = i; j < n; j++)
		if (s[j] != '=')
			return -1;
	return sg_base64_decode(s, n, out, outlen);
}

int ca_pem_blocks_parse(const char *pem, size_t len, size_t max_blocks, enum sg_code code,
                        struct ca_pem_blocks *out, struct sg_err *err)
{
	struct ca_pem_blocks res = {0};
	char *b64 = NULL;
	size_t b64_len = 0, pos = 0, lineno = 0, begin_line = 0;
	const char *label = NULL;
	size_t label_len = 0;
	bool in_block = false;
	int ret = -1;

	if (len == 0) {
		memset(out, 0, sizeof(*out));
		return 0;
	}
	/* A NUL would let text after it hide from line-oriented consumers. */
	if (pem == NULL || memchr(pem, '\0', len) != NULL) {
		sg_err_set(err, code, "PEM text contains a NUL byte");
		goto out;
	}
	/* The base64 of a block is never longer than the whole text. */
	b64 = sg_xmalloc(len + 1);
	while (pos < len) {
		const char *line = pem + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t n = nl != NULL ? (size_t)(nl - line) : len - pos;

		pos += n + (nl != NULL ? 1 : 0);
		lineno++;
		while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
			n--;

		if (!in_block) {
			/* RFC 7468 section 2: text outside the boundaries is ignored. */
			if (!has_prefix(line, n, PEM_BEGIN)) {
				if (has_prefix(line, n, PEM_END)) {
					sg_err_set(err, code, "PEM line %zu: END boundary without a BEGIN", lineno);
					goto out;
				}
				continue;
			}
			if (n < strlen(PEM_BEGIN) + strlen(PEM_DASHES) || !has_suffix(line, n, PEM_DASHES)) {
				sg_err_set(err, code, "PEM line %zu: malformed BEGIN boundary", lineno);
				goto out;
			}
			label = line + strlen(PEM_BEGIN);
			label_len = n - strlen(PEM_BEGIN) - strlen(PEM_DASHES);
			if (!label_valid(label, label_len)) {
				sg_err_set(err, code, "PEM line %zu: invalid label", lineno);
				goto out;
			}
			if (res.n >= max_blocks) {
				sg_err_set(err, code, "more than %zu PEM blocks", max_blocks);
				goto out;
			}
			in_block = true;
			begin_line = lineno;
			b64_len = 0;
			continue;
		}

		if (has_prefix(line, n, PEM_DASHES)) {
			struct ca_pem_block *blk;
			unsigned char *der = NULL;
			size_t der_len = 0;

			/* RFC 7468 section 2: the END label matches the BEGIN label. */
			if (!has_prefix(line, n, PEM_END) || n != strlen(PEM_END) + label_len + strlen(PEM_DASHES) ||
			    memcmp(line + strlen(PEM_END), label, label_len) != 0 || !has_suffix(line, n, PEM_DASHES)) {
				sg_err_set(err, code, "PEM line %zu: expected \"-----END %.*s-----\"", lineno,
				           (int)label_len, label);
				goto out;
			}
			if (b64_len == 0) {
				sg_err_set(err, code, "PEM block \"%.*s\" at line %zu is empty", (int)label_len, label,
				           begin_line);
				goto out;
			}
			if (b64_decode_strict(b64, b64_len, &der, &der_len) != 0) {
				sg_err_set(err, code, "PEM block \"%.*s\" at line %zu: invalid base64 padding",
				           (int)label_len, label, begin_line);
				goto out;
			}
			res.v = sg_xrealloc(res.v, (res.n + 1) * sizeof(*res.v));
			blk = &res.v[res.n++];
			memcpy(blk->label, label, label_len);
			blk->label[label_len] = '\0';
			blk->der = der;
			blk->der_len = der_len;
			in_block = false;
			continue;
		}

		if (memchr(line, ':', n) != NULL) {
			/* Proc-Type/DEK-Info: encrypted or RFC 1421 PEM, never ours to read. */
			sg_err_set(err, code, "PEM line %zu: RFC 1421 headers (encrypted PEM) are not supported",
			           lineno);
			goto out;
		}
		for (size_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)line[i];

			if (c == ' ' || c == '\t')
				continue;
			if (!b64_char(c) && c != '=') {
				sg_err_set(err, code, "PEM line %zu: invalid base64 character", lineno);
				goto out;
			}
			b64[b64_len++] = (char)c;
		}
	}
	if (in_block) {
		sg_err_set(err, code, "PEM block \"%.*s\" at line %zu has no END line (truncated)", (int)label_len,
		           label, begin_line);
		goto out;
	}
	*out = res;
	res.v = NULL;
	res.n = 0;
	ret = 0;
out:
	if (b64 != NULL) {
		/* The base64 of a private key is as secret as the key. */
		OPENSSL_cleanse(b64, len + 1);
		free(b64);
	}
	ca_pem_blocks_clear(&res);
	return ret;
}

/* One DER certificate, nothing after it. `what` names it in the error ("certificate 2"). */
static X509 *cert_der_parse(const unsigned char *der, size_t len, const char *what, struct sg_err *err)
{
	const unsigned char *p = der;
	X509 *x = NULL;

	x = d2i_X509(NULL, &p, (long)len);
	if (x == NULL) {
		sg_err_ossl(err, SG_BAD_PEM, "%s is not a valid X.509 certificate", what);
		return NULL;
	}
	if (p != der + len) {
		X509_free(x);
		sg_err_set(err, SG_BAD_PEM, "%s has %zu trailing bytes after the DER", what, (size_t)(der + len - p));
		return NULL;
	}
	return x;
}

STACK_OF(X509) *ca_pem_certs_parse(const char *pem, size_t len, struct sg_err *err)
{
	struct ca_pem_blocks blocks = {0};
	STACK_OF(X509) *sk = NULL, *res = NULL;

	if (pem == NULL || len == 0) {
		sg_err_set(err, SG_BAD_PEM, "empty PEM input");
		goto out;
	}
	if (len > CA_MAX_BUNDLE_BYTES) {
		sg_err_set(err, SG_BAD_PEM, "PEM bundle larger than %u bytes", CA_MAX_BUNDLE_BYTES);
		goto out;
	}
	if (ca_buf_is_der((const unsigned char *)pem, len)) {
		sg_err_set(err, SG_BAD_PEM, "expected PEM text, got DER");
		goto out;
	}
	if (ca_pem_blocks_parse(pem, len, CA_PEM_MAX_BLOCKS, SG_BAD_PEM, &blocks, err) != 0)
		goto out;
	sk = sk_X509_new_null();
	if (sk == NULL)
		sg_die("out of memory");
	for (size_t i = 0; i < blocks.n; i++) {
		char what[48];
		X509 *x;

		/* Keys and other blocks are the caller's (ca_pem_blocks_parse gives them). */
		if (strcmp(blocks.v[i].label, "CERTIFICATE") != 0)
			continue;
		if (sk_X509_num(sk) >= CA_MAX_CHAIN) {
			sg_err_set(err, SG_BAD_PEM, "more than %d certificates", CA_MAX_CHAIN);
			goto out;
		}
		snprintf(what, sizeof(what), "PEM block %zu", i + 1);
		x = cert_der_parse(blocks.v[i].der, blocks.v[i].der_len, what, err);
		if (x == NULL)
			goto out;
		if (sk_X509_push(sk, x) <= 0)
			sg_die("out of memory");
	}
	if (sk_X509_num(sk) == 0) {
		sg_err_set(err, SG_BAD_PEM, "no CERTIFICATE block found");
		goto out;
	}
	res = sk;
	sk = NULL;
out:
	sk_X509_pop_free(sk, X509_free);
	ca_pem_blocks_clear(&blocks);
	return res;
}

X509 *ca_cert_parse(const unsigned char *buf, size_t len, struct sg_err *err)
{
	struct ca_pem_blocks blocks = {0};
	X509 *res = NULL;

	if (buf == NULL || len == 0) {
		sg_err_set(err, SG_BAD_PEM, "empty certificate");
		goto out;
	}
	if (len > CA_MAX_BUNDLE_BYTES) {
		sg_err_set(err, SG_BAD_PEM, "certificate larger than %u bytes", CA_MAX_BUNDLE_BYTES);
		goto out;
	}
	if (ca_buf_is_der(buf, len)) {
		res = cert_der_parse(buf, len, "DER input", err);
		goto out;
	}
	if (ca_pem_blocks_parse((const char *)buf, len, CA_PEM_MAX_BLOCKS, SG_BAD_PEM, &blocks, err) != 0)
		goto out;
	if (blocks.n == 0) {
		sg_err_set(err, SG_BAD_PEM, "neither DER nor PEM (no \"-----BEGIN CERTIFICATE-----\" line)");
		goto out;
	}
	if (blocks.n != 1) {
		sg_err_set(err, SG_BAD_PEM, "expected exactly one PEM block, found %zu", blocks.n);
		goto out;
	}
	if (strcmp(blocks.v[0].label, "CERTIFICATE") != 0) {
		sg_err_set(err, SG_BAD_PEM, "PEM block is \"%s\", expected \"CERTIFICATE\"", blocks.v[0].label);
		goto out;
	}
	res = cert_der_parse(blocks.v[0].der, blocks.v[0].der_len, "the certificate", err);
out:
	ca_pem_blocks_clear(&blocks);
	return res;
}

/* The text of a memory BIO as a NUL-terminated heap string (free()). */
static char *bio_to_string(BIO *b)
{
	char *data = NULL;
	long n = BIO_get_mem_data(b, &data);

	if (n <= 0 || data == NULL)
		return NULL;
	return sg_xstrndup(data, (size_t)n);
}

/*
 * RFC 7468 text of one DER object, byte for byte what PEM_write_bio writes
 * (64-character lines, each ending in "\n"), without its BIO and encoder
 * machinery: certificates are encoded several times per issuance.
 */
char *ca_pem_text(const char *label, const unsigned char *der, size_t len)
{
	size_t lines = (len + 47) / 48, cap = 2 * (strlen(label) + 32) + lines * 65 + 1, o;
	char *s = sg_xmalloc(cap);

	o = (size_t)snprintf(s, cap, "%s%s%s\n", PEM_BEGIN, label, PEM_DASHES);
	for (size_t i = 0; i < len; i += 48) {
		size_t n = len - i < 48 ? len - i : 48;

		o += (size_t)EVP_EncodeBlock((unsigned char *)s + o, der + i, (int)n);
		s[o++] = '\n';
	}
	snprintf(s + o, cap - o, "%s%s%s\n", PEM_END, label, PEM_DASHES);
	return s;
}

char *ca_x509_to_pem(X509 *x)
{
	unsigned char *der = NULL;
	char *res;
	int n;

	if (x == NULL)
		return NULL;
	n = i2d_X509(x, &der);
	if (n <= 0) {
		/* An incomplete certificate does not encode; nobody else wants this queue. */
		ERR_clear_error();
		return NULL;
	}
	res = ca_pem_text("CERTIFICATE", der, (size_t)n);
	OPENSSL_free(der);
	return res;
}

char *ca_csr_to_pem(X509_REQ *r)
{
	BIO *b = NULL;
	char *res = NULL;

	if (r == NULL)
		return NULL;
	b = BIO_new(BIO_s_mem());
	if (b == NULL)
		sg_die("out of memory");
	if (PEM_write_bio_X509_REQ(b, r) != 1) {
		ERR_clear_error();
		goto out;
	}
	res = bio_to_string(b);
out:
	BIO_free(b);
	return res;
}

/* ---------------- Public keys without the decoder ---------------- */

/*
 * OpenSSL 3.0 turns a SubjectPublicKeyInfo into a key through a freshly
 * built OSSL_DECODER context (d2i_X509_REQ, d2i_PUBKEY, and X509_set_pubkey
 * on a provider key, which encodes and decodes): ~150 us of CPU and global
 * lock traffic each time, more than an ECDSA P-256 verification. The legacy
 * key methods behind d2i_KeyParams/d2i_PublicKey do the same job ~10x
 * faster. Curve parameters are most of the EC cost: built once per curve,
 * copied per key.
 */
static const int legacy_curves[] = {NID_X9_62_prime256v1, NID_secp384r1, NID_secp521r1};
static EVP_PKEY *legacy_curve_params[sizeof(legacy_curves) / sizeof(legacy_curves[0])];
static pthread_once_t legacy_curve_once = PTHREAD_ONCE_INIT;

static void legacy_curves_init(void)
{
	for (size_t i = 0; i < sizeof(legacy_curves) / sizeof(legacy_curves[0]); i++) {
		unsigned char *der = NULL;
		const unsigned char *p;
		int len = i2d_ASN1_OBJECT(OBJ_nid2obj(legacy_curves[i]), &der);

		if (len > 0) {
			p = der;
			legacy_curve_params[i] = d2i_KeyParams(EVP_PKEY_EC, NULL, &p, len);
		}
		OPENSSL_free(der);
	}
}

EVP_PKEY *ca_pubkey_legacy(int alg_nid, int curve_nid, const unsigned char *key, size_t len)
{
	const unsigned char *p = key;
	EVP_PKEY *k = NULL;

	if (key == NULL || len == 0 || len > CA_MAX_CSR_BYTES)
		return NULL;
	ERR_set_mark();
	if (alg_nid == NID_rsaEncryption) {
		k = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, (long)len);
	} else if (alg_nid == NID_X9_62_id_ecPublicKey && pthread_once(&legacy_curve_once, legacy_curves_init) == 0) {
		for (size_t i = 0; i < sizeof(legacy_curves) / sizeof(legacy_curves[0]) && k == NULL; i++)
			if (legacy_curves[i] == curve_nid && legacy_curve_params[i] != NULL)
				k = EVP_PKEY_dup(legacy_curve_params[i]);
		/* d2i_PublicKey fills the point into the parameters key (SEC 1 2.3.4, with the on-curve check). */
		if (k != NULL && d2i_PublicKey(EVP_PKEY_EC, &k, &p, (long)len) == NULL) {
			EVP_PKEY_free(k);
			k = NULL;
		}
	}
	if (k != NULL && p != key + len) {
		EVP_PKEY_free(k);
		k = NULL;
	}
	ERR_pop_to_mark();
	return k;
}
