#include "common/jose.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/param_build.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char b64url_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *sg_b64url(const unsigned char *b, size_t n)
{
	char *out = sg_xmalloc(n / 3 * 4 + 5);
	size_t o = 0, i = 0;

	for (; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)b[i] << 16 | (uint32_t)b[i + 1] << 8 | b[i + 2];

		out[o++] = b64url_alphabet[v >> 18 & 63];
		out[o++] = b64url_alphabet[v >> 12 & 63];
		out[o++] = b64url_alphabet[v >> 6 & 63];
		out[o++] = b64url_alphabet[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)b[i] << 16;

		out[o++] = b64url_alphabet[v >> 18 & 63];
		out[o++] = b64url_alphabet[v >> 12 & 63];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)b[i] << 16 | (uint32_t)b[i + 1] << 8;

		out[o++] = b64url_alphabet[v >> 18 & 63];
		out[o++] = b64url_alphabet[v >> 12 & 63];
		out[o++] = b64url_alphabet[v >> 6 & 63];
	}
	out[o] = '\0';
	return out;
}

static int b64url_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

int sg_b64url_decode(const char *s, size_t len, unsigned char **out, size_t *outlen)
{
	unsigned char *buf;
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;

	/* A length of 1 mod 4 cannot come from any byte string. */
	if (len % 4 == 1)
		return -1;
	buf = sg_xmalloc(len / 4 * 3 + 3);
	for (size_t i = 0; i < len; i++) {
		int v = b64url_val((unsigned char)s[i]);

		if (v < 0) {
			free(buf);
			return -1;
		}
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[o++] = (unsigned char)(acc >> bits & 0xff);
			acc &= (1u << bits) - 1;
		}
	}
	/* Non-canonical encodings (stray low bits) are refused: one text per value. */
	if (acc != 0) {
		free(buf);
		return -1;
	}
	buf[o] = '\0';
	*out = buf;
	*outlen = o;
	return 0;
}

/* A base64url JWK member, required: 1..cap bytes, exactly want when want is not 0. */
static int member(const json_t *jwk, const char *name, size_t want, size_t cap, enum sg_code code,
                  unsigned char **out, size_t *len, struct sg_err *err)
{
	const json_t *v = json_object_get(jwk, name);

	*out = NULL;
	if (!json_is_string(v) || json_string_length(v) > cap * 4 / 3 + 4 ||
	    sg_b64url_decode(json_string_value(v), json_string_length(v), out, len) != 0 || *len == 0 ||
	    *len > cap || (want != 0 && *len != want)) {
		free(*out);
		*out = NULL;
		return sg_err_set(err, code, "JWK member \"%s\" missing or malformed", name);
	}
	return 0;
}

/* Imports params and checks the key (EC point on the curve; RSA e odd and > 1). */
static EVP_PKEY *fromdata(const char *type, OSSL_PARAM_BLD *bld, enum sg_code code, struct sg_err *err)
{
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL), *chk = NULL;
	EVP_PKEY *k = NULL;

	if (params == NULL || ctx == NULL)
		sg_die("out of memory importing a JWK");
	if (EVP_PKEY_fromdata_init(ctx) != 1 || EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_PUBLIC_KEY, params) != 1) {
		sg_err_ossl(err, code, "JWK is not a valid %s public key", type);
		k = NULL;
		goto out;
	}
	chk = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
	if (chk == NULL || EVP_PKEY_public_check(chk) != 1) {
		sg_err_ossl(err, code, "JWK %s public key fails validation", type);
		EVP_PKEY_free(k);
		k = NULL;
	}
out:
	EVP_PKEY_CTX_free(chk);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return k;
}

static int jwk_rsa(const json_t *jwk, enum sg_code code, EVP_PKEY **out, struct sg_err *err)
{
	unsigned char *n = NULL, *e = NULL;
	size_t nlen = 0, elen = 0;
	BIGNUM *bn = NULL, *be = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	int rc = -1;

	if (member(jwk, "n", 0, SG_JWK_RSA_MAX_BITS / 8, code, &n, &nlen, err) != 0 ||
	    member(jwk, "e", 0, 8, code, &e, &elen, err) != 0)
		goto out;
	if (n[0] == 0 || e[0] == 0) {
		sg_err_set(err, code, "RSA JWK members must not have leading zero octets");
		goto out;
	}
	bn = BN_bin2bn(n, (int)nlen, NULL);
	be = BN_bin2bn(e, (int)elen, NULL);
	bld = OSSL_PARAM_BLD_new();
	if (bn == NULL || be == NULL || bld == NULL || OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) != 1 ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) != 1)
		sg_die("out of memory building an RSA key");
	*out = fromdata("RSA", bld, code, err);
	rc = *out != NULL ? 1 : -1;
out:
	BN_free(bn);
	BN_free(be);
	OSSL_PARAM_BLD_free(bld);
	free(n);
	free(e);
	return rc;
}

static int jwk_ec(const json_t *jwk, enum sg_code code, EVP_PKEY **out, struct sg_err *err)
{
	static const struct {
		const char *crv;
		size_t coord;
	} curves[] = {{"P-256", 32}, {"P-384", 48}, {"P-521", 66}};
	const char *crv = json_string_value(json_object_get(jwk, "crv"));
	unsigned char *x = NULL, *y = NULL, *pt = NULL;
	size_t xlen = 0, ylen = 0, coord = 0;
	OSSL_PARAM_BLD *bld = NULL;
	int rc = -1;

	for (size_t i = 0; crv != NULL && i < sizeof(curves) / sizeof(curves[0]); i++)
		if (strcmp(crv, curves[i].crv) == 0)
			coord = curves[i].coord;
	if (coord == 0)
		return 0;
	/* RFC 7518 6.2.1.2/6.2.1.3: x and y are the full coordinate size. */
	if (member(jwk, "x", coord, coord, code, &x, &xlen, err) != 0 ||
	    member(jwk, "y", coord, coord, code, &y, &ylen, err) != 0)
		goto out;
	pt = sg_xmalloc(1 + 2 * coord);
	pt[0] = 0x04; /* SEC 1 2.3.3 uncompressed point */
	memcpy(pt + 1, x, coord);
	memcpy(pt + 1 + coord, y, coord);
	bld = OSSL_PARAM_BLD_new();
	if (bld == NULL || OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, crv, 0) != 1 ||
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, 1 + 2 * coord) != 1)
		sg_die("out of memory building an EC key");
	*out = fromdata("EC", bld, code, err);
	rc = *out != NULL ? 1 : -1;
out:
	OSSL_PARAM_BLD_free(bld);
	free(pt);
	free(x);
	free(y);
	return rc;
}

/* RFC 8037 2: the signature curves only (X25519/X448 are key agreement). */
static int jwk_okp(const json_t *jwk, enum sg_code code, EVP_PKEY **out, struct sg_err *err)
{
	const char *crv = json_string_value(json_object_get(jwk, "crv"));
	unsigned char *x = NULL;
	size_t xlen = 0, want;
	int type;

	if (crv != NULL && strcmp(crv, "Ed25519") == 0) {
		type = EVP_PKEY_ED25519;
		want = 32;
	} else if (crv != NULL && strcmp(crv, "Ed448") == 0) {
		type = EVP_PKEY_ED448;
		want = 57;
	} else {
		return 0;
	}
	if (member(jwk, "x", want, want, code, &x, &xlen, err) != 0)
		return -1;
	*out = EVP_PKEY_new_raw_public_key(type, NULL, x, xlen);
	free(x);
	if (*out == NULL)
		return sg_err_ossl(err, code, "OKP JWK is not a valid %s key", crv);
	return 1;
}

int sg_jwk_public_key(const json_t *jwk, enum sg_code code, EVP_PKEY **out, struct sg_err *err)
{
	const char *kty = json_string_value(json_object_get(jwk, "kty"));

	*out = NULL;
	if (!json_is_object(jwk) || kty == NULL)
		return sg_err_set(err, code, "JWK must be an object with \"kty\"");
	/* RFC 7517 4: a private key where a public one belongs is a leak, never a key to use. */
	if (json_object_get(jwk, "d") != NULL || json_object_get(jwk, "p") != NULL)
		return sg_err_set(err, code, "JWK must not contain private key members");
	if (strcmp(kty, "RSA") == 0)
		return jwk_rsa(jwk, code, out, err);
	if (strcmp(kty, "EC") == 0)
		return jwk_ec(jwk, code, out, err);
	if (strcmp(kty, "OKP") == 0)
		return jwk_okp(jwk, code, out, err);
	return 0;
}

unsigned char *sg_ecdsa_raw_to_der(const unsigned char *sig, size_t len, size_t coord, size_t *der_len)
{
	ECDSA_SIG *es;
	BIGNUM *r, *s;
	unsigned char *der = NULL;
	int n;

	if (len != 2 * coord)
		return NULL;
	es = ECDSA_SIG_new();
	r = BN_bin2bn(sig, (int)coord, NULL);
	s = BN_bin2bn(sig + coord, (int)coord, NULL);
	if (es == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1)
		sg_die("out of memory building an ECDSA signature");
	n = i2d_ECDSA_SIG(es, &der);
	ECDSA_SIG_free(es);
	if (n <= 0)
		return NULL;
	*der_len = (size_t)n;
	return der;
}
