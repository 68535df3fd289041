/*
 * JWS/JWT verification with OpenSSL 3 (RFC 7515, 7517, 7518, 7519, 8037)
 * and the claim checks of Vault's JWT and Kubernetes methods.
 *
 * Decisions, each stricter than go-jose where they differ:
 * - base64url must be unpadded and canonical (unused bits zero), so one
 *   token has one encoding.
 * - Header and payload must be JSON objects without duplicate member
 *   names: two "alg" or two "sub" members could be read differently by
 *   another parser.
 * - "none" and HMAC algorithms are refused before any key is looked at
 *   (RFC 8725 3.1/3.2): keys here are public, never secrets.
 * - The key decides what it verifies: an RSA key only RS* and PS*, an EC key
 *   only the ES* of its curve, an EdDSA key only EdDSA; a JWK's own "alg"
 *   narrows that further (RFC 7517 4.4).
 * - RSA keys below 2048 bits are refused (RFC 7518 3.3).
 * - Keys come only from the verifier's configuration: the "jwk", "jku",
 *   "x5u" and "x5c" headers of a token are never used (RFC 8725 3.10).
 */
#include "auth/jwt.h"

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#define JWT_MAX_HEADER_MEMBERS 32
#define JWT_GROUP_NAME_MAX 64
#define JWT_POINTER_MAX 512

/* ---------------- Algorithms ---------------- */

static const char *const alg_names[JWT_ALG_COUNT] = {
	[JWT_ALG_RS256] = "RS256", [JWT_ALG_RS384] = "RS384", [JWT_ALG_RS512] = "RS512",
	[JWT_ALG_PS256] = "PS256", [JWT_ALG_PS384] = "PS384", [JWT_ALG_PS512] = "PS512",
	[JWT_ALG_ES256] = "ES256", [JWT_ALG_ES384] = "ES384", [JWT_ALG_ES512] = "ES512",
	[JWT_ALG_EDDSA] = "EdDSA",
};

const char *jwt_alg_name(enum jwt_alg a)
{
	if (a <= JWT_ALG_UNKNOWN || a >= JWT_ALG_COUNT)
		return NULL;
	return alg_names[a];
}

enum jwt_alg jwt_alg_from_name(const char *s)
{
	if (s == NULL)
		return JWT_ALG_UNKNOWN;
	for (int a = JWT_ALG_UNKNOWN + 1; a < JWT_ALG_COUNT; a++)
		if (strcmp(alg_names[a], s) == 0)
			return (enum jwt_alg)a;
	return JWT_ALG_UNKNOWN;
}

static const EVP_MD *alg_md(enum jwt_alg a)
{
	switch (a) {
	case JWT_ALG_RS256:
	case JWT_ALG_PS256:
	case JWT_ALG_ES256:
		return EVP_sha256();
	case JWT_ALG_RS384:
	case JWT_ALG_PS384:
	case JWT_ALG_ES384:
		return EVP_sha384();
	case JWT_ALG_RS512:
	case JWT_ALG_PS512:
	case JWT_ALG_ES512:
		return EVP_sha512();
	default:
		return NULL;
	}
}

static bool alg_is_rsa(enum jwt_alg a)
{
	return a >= JWT_ALG_RS256 && a <= JWT_ALG_PS512;
}

static bool alg_is_pss(enum jwt_alg a)
{
	return a >= JWT_ALG_PS256 && a <= JWT_ALG_PS512;
}

static bool alg_is_ec(enum jwt_alg a)
{
	return a >= JWT_ALG_ES256 && a <= JWT_ALG_ES512;
}

/* RFC 7518 3.4: the curve of each ES* and its coordinate size. */
static const char *alg_ec_group(enum jwt_alg a, size_t *coord)
{
	switch (a) {
	case JWT_ALG_ES256:
		*coord = 32;
		return "prime256v1";
	case JWT_ALG_ES384:
		*coord = 48;
		return "secp384r1";
	case JWT_ALG_ES512:
		*coord = 66;
		return "secp521r1";
	default:
		*coord = 0;
		return NULL;
	}
}

void jwt_clear(struct jwt *t)
{
	if (t == NULL)
		return;
	json_decref(t->header);
	json_decref(t->claims);
	free(t->signing_input);
	free(t->sig);
	memset(t, 0, sizeof(*t));
}

static json_t *decode_object(const char *b64, size_t len, const char *what, struct sg_err *err)
{
	unsigned char *raw = NULL;
	size_t rawlen = 0;
	json_error_t jerr;
	json_t *j = NULL;

	if (sg_b64url_decode(b64, len, &raw, &rawlen) != 0) {
		sg_err_set(err, SG_BAD_REQUEST, "error parsing token: %s is not base64url", what);
		return NULL;
	}
	j = json_loadb((const char *)raw, rawlen, JSON_REJECT_DUPLICATES, &jerr);
	free(raw);
	if (j == NULL || !json_is_object(j)) {
		json_decref(j);
		sg_err_set(err, SG_BAD_REQUEST, "error parsing token: %s is not a JSON object", what);
		return NULL;
	}
	return j;
}

static size_t json_depth(const json_t *j)
{
	size_t d = 0, sub;
	const char *k;
	json_t *v;
	size_t i;

	if (json_is_object(j)) {
		json_object_foreach((json_t *)j, k, v) {
			sub = json_depth(v);
			if (sub > d)
				d = sub;
			if (d > JWT_MAX_JSON_DEPTH)
				break;
		}
		return d + 1;
	}
	if (json_is_array(j)) {
		json_array_foreach(j, i, v) {
			sub = json_depth(v);
			if (sub > d)
				d = sub;
			if (d > JWT_MAX_JSON_DEPTH)
				break;
		}
		return d + 1;
	}
	return 0;
}

int jwt_parse(const char *compact, size_t len, struct jwt *out, struct sg_err *err)
{
	const char *d1, *d2, *alg;
	json_t *crit;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	if (compact == NULL || len == 0)
		return sg_err_set(err, SG_BAD_REQUEST, "missing token");
	if (len > JWT_MAX_BYTES)
		return sg_err_set(err, SG_BAD_REQUEST, "error parsing token: longer than %u bytes", JWT_MAX_BYTES);
	if (memchr(compact, '\0', len) != NULL)
		return sg_err_set(err, SG_BAD_REQUEST, "error parsing token: NUL byte");
	/* RFC 7515 7.1: exactly three parts; five would be a JWE (RFC 7516 7.1). */
	d1 = memchr(compact, '.', len);
	d2 = d1 != NULL ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - compact)) : NULL;
	if (d1 == NULL || d2 == NULL || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - compact)) != NULL)
		return sg_err_set(err, SG_BAD_REQUEST, "error parsing token: not a compact JWS (three dot-separated parts)");
	if (d1 == compact || d2 == d1 + 1)
		return sg_err_set(err, SG_BAD_REQUEST, "error parsing token: empty header or payload");

	out->header = decode_object(compact, (size_t)(d1 - compact), "header", err);
	if (out->header == NULL)
		goto out;
	if (json_object_size(out->header) > JWT_MAX_HEADER_MEMBERS || json_depth(out->header) > JWT_MAX_JSON_DEPTH) {
		sg_err_set(err, SG_BAD_REQUEST, "error parsing token: header too large");
		goto out;
	}
	alg = json_string_value(json_object_get(out->header, "alg"));
	if (alg == NULL) {
		sg_err_set(err, SG_BAD_REQUEST, "error parsing token: header has no \"alg\"");
		goto out;
	}
	out->alg = jwt_alg_from_name(alg);
	if (out->alg == JWT_ALG_UNKNOWN) {
		/* RFC 8725 3.1/3.2: unsecured and HMAC tokens never verify against a public key. */
		if (strcmp(alg, "none") == 0)
			sg_err_set(err, SG_BAD_REQUEST, "error parsing token: alg \"none\" is not accepted");
		else if (strncmp(alg, "HS", 2) == 0)
			sg_err_set(err, SG_BAD_REQUEST,
			           "error parsing token: HMAC algorithm %.16s is not accepted (keys are public keys)", alg);
		else
			sg_err_set(err, SG_BAD_REQUEST, "error parsing token: unsupported algorithm");
		goto out;
	}
	/* RFC 7515 4.1.11: extensions we would have to understand are not implemented. */
	crit = json_object_get(out->header, "crit");
	if (crit != NULL) {
		sg_err_set(err, SG_BAD_REQUEST, "error parsing token: critical header extensions are not supported");
		goto out;
	}
	if (json_object_get(out->header, "kid") != NULL) {
		out->kid = json_string_value(json_object_get(out->header, "kid"));
		if (out->kid == NULL) {
			sg_err_set(err, SG_BAD_REQUEST, "error parsing token: \"kid\" is not a string");
			goto out;
		}
	}
	out->claims = decode_object(d1 + 1, (size_t)(d2 - d1 - 1), "payload", err);
	if (out->claims == NULL)
		goto out;
	if (json_depth(out->claims) > JWT_MAX_JSON_DEPTH) {
		sg_err_set(err, SG_BAD_REQUEST, "error parsing token: claims nested too deeply");
		goto out;
	}
	if (sg_b64url_decode(d2 + 1, len - (size_t)(d2 + 1 - compact), &out->sig, &out->sig_len) != 0 ||
	    out->sig_len == 0) {
		sg_err_set(err, SG_BAD_REQUEST, "error parsing token: signature is empty or not base64url");
		goto out;
	}
	out->signing_input_len = (size_t)(d2 - compact);
	out->signing_input = sg_xstrndup(compact, out->signing_input_len);
	ret = 0;
out:
	if (ret != 0)
		jwt_clear(out);
	return ret;
}

/* ---------------- Keys ---------------- */

void jwt_keyset_clear(struct jwt_keyset *ks)
{
	if (ks == NULL)
		return;
	for (size_t i = 0; i < ks->n; i++) {
		EVP_PKEY_free(ks->v[i].pkey);
		free(ks->v[i].kid);
	}
	free(ks->v);
	ks->v = NULL;
	ks->n = 0;
}

/* Takes pkey (freed on failure). */
static int keyset_push(struct jwt_keyset *ks, EVP_PKEY *pkey, const char *kid, enum jwt_alg alg, struct sg_err *err)
{
	if (ks->n >= JWT_MAX_KEYS) {
		EVP_PKEY_free(pkey);
		return sg_err_set(err, SG_BAD_REQUEST, "too many keys (at most %d)", JWT_MAX_KEYS);
	}
	ks->v = sg_xrealloc(ks->v, (ks->n + 1) * sizeof(*ks->v));
	ks->v[ks->n].pkey = pkey;
	ks->v[ks->n].kid = kid != NULL ? sg_xstrdup(kid) : NULL;
	ks->v[ks->n].alg = alg;
	ks->n++;
	return 0;
}

/* Which public keys a verifier accepts at all. */
static int key_acceptable(EVP_PKEY *pkey, struct sg_err *err)
{
	if (EVP_PKEY_is_a(pkey, "RSA")) {
		int bits = EVP_PKEY_get_bits(pkey);

		if (bits < JWT_RSA_MIN_BITS || bits > JWT_RSA_MAX_BITS)
			return sg_err_set(err, SG_BAD_REQUEST, "RSA key of %d bits refused (%d to %d)", bits,
			                  JWT_RSA_MIN_BITS, JWT_RSA_MAX_BITS);
		return 0;
	}
	if (EVP_PKEY_is_a(pkey, "EC")) {
		char group[JWT_GROUP_NAME_MAX];
		size_t glen = 0;

		if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &glen) != 1)
			return sg_err_ossl(err, SG_BAD_REQUEST, "EC key without a named curve");
		if (strcmp(group, "prime256v1") != 0 && strcmp(group, "secp384r1") != 0 &&
		    strcmp(group, "secp521r1") != 0)
			return sg_err_set(err, SG_BAD_REQUEST, "EC curve %s is not usable with JWS (P-256, P-384, P-521)",
			                  group);
		return 0;
	}
	if (EVP_PKEY_is_a(pkey, "ED25519") || EVP_PKEY_is_a(pkey, "ED448"))
		return 0;
	return sg_err_set(err, SG_BAD_REQUEST, "unsupported public key type (RSA, EC, Ed25519, Ed448)");
}

int jwt_keyset_add_pem(struct jwt_keyset *ks, const char *pem, size_t len, struct sg_err *err)
{
	BIO *bio = NULL;
	char *name = NULL, *header = NULL;
	unsigned char *data = NULL;
	long dlen = 0;
	size_t added = 0;
	int ret = -1;

	if (pem == NULL || len == 0)
		return sg_err_set(err, SG_BAD_REQUEST, "no PEM keys given");
	if (len > JWT_MAX_PEM_BYTES)
		return sg_err_set(err, SG_BAD_REQUEST, "PEM keys longer than %u bytes", JWT_MAX_PEM_BYTES);
	bio = BIO_new_mem_buf(pem, (int)len);
	if (bio == NULL)
		sg_die("BIO_new_mem_buf");
	for (;;) {
		const unsigned char *p;
		EVP_PKEY *pkey = NULL;

		free(name);
		free(header);
		OPENSSL_free(data);
		name = header = NULL;
		data = NULL;
		if (PEM_read_bio(bio, &name, &header, &data, &dlen) != 1) {
			unsigned long e = ERR_peek_last_error();

			/* The end of the list shows as "no start line"; anything else is damage. */
			if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
				ERR_clear_error();
				break;
			}
			sg_err_ossl(err, SG_BAD_PEM, "malformed PEM block in public keys");
			goto out;
		}
		p = data;
		if (strcmp(name, "PUBLIC KEY") == 0) {
			pkey = d2i_PUBKEY(NULL, &p, dlen);
		} else if (strcmp(name, "CERTIFICATE") == 0) {
			X509 *x = d2i_X509(NULL, &p, dlen);

			if (x != NULL) {
				pkey = X509_get_pubkey(x);
				X509_free(x);
			}
		} else if (strstr(name, "PRIVATE") != NULL) {
			sg_err_set(err, SG_BAD_PEM, "a private key is not accepted here: give the public key");
			goto out;
		} else {
			sg_err_set(err, SG_BAD_PEM, "unexpected PEM block \"%.40s\" (PUBLIC KEY or CERTIFICATE)", name);
			goto out;
		}
		if (pkey == NULL || p != data + dlen) {
			EVP_PKEY_free(pkey);
			sg_err_ossl(err, SG_BAD_PEM, "malformed %s block in public keys", name);
			goto out;
		}
		if (key_acceptable(pkey, err) != 0) {
			EVP_PKEY_free(pkey);
			goto out;
		}
		if (keyset_push(ks, pkey, NULL, JWT_ALG_UNKNOWN, err) != 0)
			goto out;
		added++;
	}
	if (added == 0) {
		sg_err_set(err, SG_BAD_PEM, "no public key found in PEM");
		goto out;
	}
	ret = 0;
out:
	free(name);
	free(header);
	OPENSSL_free(data);
	BIO_free(bio);
	return ret;
}

/* Whether pkey can make alg's signatures. */
static bool key_fits_alg(EVP_PKEY *pkey, enum jwt_alg alg)
{
	if (alg_is_rsa(alg))
		return EVP_PKEY_is_a(pkey, "RSA");
	if (alg_is_ec(alg)) {
		char group[JWT_GROUP_NAME_MAX];
		size_t glen = 0, coord;
		const char *want = alg_ec_group(alg, &coord);

		if (!EVP_PKEY_is_a(pkey, "EC") ||
		    EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &glen) != 1)
			return false;
		return strcmp(group, want) == 0;
	}
	if (alg == JWT_ALG_EDDSA)
		return EVP_PKEY_is_a(pkey, "ED25519") || EVP_PKEY_is_a(pkey, "ED448");
	return false;
}

int jwt_keyset_add_jwk(struct jwt_keyset *ks, const json_t *jwk, struct sg_err *err)
{
	const char *use, *alg_s, *kid;
	enum jwt_alg alg = JWT_ALG_UNKNOWN;
	EVP_PKEY *pkey = NULL;
	int r;

	if (!json_is_object(jwk))
		return sg_err_set(err, SG_BAD_REQUEST, "JWK is not an object");
	use = json_string_value(json_object_get(jwk, "use"));
	if (json_object_get(jwk, "use") != NULL && (use == NULL || strcmp(use, "sig") != 0))
		return 0; /* RFC 7517 4.2: an encryption key never verifies a signature */
	kid = json_string_value(json_object_get(jwk, "kid"));
	if (json_object_get(jwk, "kid") != NULL && kid == NULL)
		return sg_err_set(err, SG_BAD_REQUEST, "JWK \"kid\" is not a string");
	alg_s = json_string_value(json_object_get(jwk, "alg"));
	if (alg_s != NULL) {
		alg = jwt_alg_from_name(alg_s);
		if (alg == JWT_ALG_UNKNOWN)
			return 0; /* HS256, RSA-OAEP...: nothing this key may verify here */
	}
	r = sg_jwk_public_key(jwk, SG_BAD_REQUEST, &pkey, err);
	if (r <= 0)
		return r; /* 0: "oct", X25519 and unknown key types are skipped */
	if (alg != JWT_ALG_UNKNOWN && !key_fits_alg(pkey, alg)) {
		EVP_PKEY_free(pkey);
		return sg_err_set(err, SG_BAD_REQUEST, "JWK declares alg %s, which its key cannot make", alg_s);
	}
	if (key_acceptable(pkey, err) != 0) {
		EVP_PKEY_free(pkey);
		return -1;
	}
	if (keyset_push(ks, pkey, kid, alg, err) != 0)
		return -1;
	return 1;
}

int jwt_keyset_add_jwks(struct jwt_keyset *ks, const char *json, size_t len, struct sg_err *err)
{
	json_error_t jerr;
	json_t *doc = NULL, *keys, *k;
	size_t i, added = 0;
	int ret = -1;

	if (json == NULL || len == 0)
		return sg_err_set(err, SG_BAD_REQUEST, "empty JWKS");
	if (len > JWT_MAX_JWKS_BYTES)
		return sg_err_set(err, SG_BAD_REQUEST, "JWKS larger than %u bytes", JWT_MAX_JWKS_BYTES);
	doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	keys = json_object_get(doc, "keys");
	if (!json_is_array(keys)) {
		sg_err_set(err, SG_BAD_REQUEST, "JWKS is not an object with a \"keys\" array");
		goto out;
	}
	if (json_array_size(keys) > JWT_MAX_KEYS) {
		sg_err_set(err, SG_BAD_REQUEST, "JWKS has more than %d keys", JWT_MAX_KEYS);
		goto out;
	}
	json_array_foreach(keys, i, k) {
		int rc = jwt_keyset_add_jwk(ks, k, err);

		if (rc < 0)
			goto out;
		added += (size_t)rc;
	}
	if (added == 0) {
		sg_err_set(err, SG_BAD_REQUEST, "JWKS has no usable signature key");
		goto out;
	}
	ret = 0;
out:
	json_decref(doc);
	return ret;
}

/* ---------------- Verification ---------------- */

/* Whether key k may verify a token signed with alg. */
static bool key_fits(const struct jwt_key *k, enum jwt_alg alg)
{
	return (k->alg == JWT_ALG_UNKNOWN || k->alg == alg) && key_fits_alg(k->pkey, alg);
}

/* 1 verified, 0 not. */
static int verify_one(const struct jwt *t, EVP_PKEY *pkey)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	const unsigned char *sig = t->sig;
	size_t siglen = t->sig_len;
	unsigned char *der = NULL;
	int ok = 0;

	if (md == NULL)
		sg_die("EVP_MD_CTX_new");
	if (alg_is_ec(t->alg)) {
		size_t coord;

		(void)alg_ec_group(t->alg, &coord);
		der = sg_ecdsa_raw_to_der(t->sig, t->sig_len, coord, &siglen);
		if (der == NULL)
			goto out;
		sig = der;
	}
	if (EVP_DigestVerifyInit(md, &pctx, alg_md(t->alg), NULL, pkey) != 1)
		goto out;
	if (alg_is_rsa(t->alg)) {
		if (alg_is_pss(t->alg)) {
			/* RFC 7518 3.5: MGF1 with the same hash, salt as long as the hash output. */
			if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
			    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1 ||
			    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, alg_md(t->alg)) != 1)
				goto out;
		} else if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) {
			goto out;
		}
	}
	ok = EVP_DigestVerify(md, sig, siglen, (const unsigned char *)t->signing_input, t->signing_input_len) == 1;
out:
	OPENSSL_free(der);
	EVP_MD_CTX_free(md);
	/* A failed verification leaves errors behind; they are not the caller's. */
	ERR_clear_error();
	return ok;
}

int jwt_verify(const struct jwt *t, const struct jwt_keyset *ks, const struct sg_strlist *allowed,
               struct sg_err *err)
{
	size_t tried = 0;

	if (t == NULL || t->alg == JWT_ALG_UNKNOWN || t->signing_input == NULL)
		return sg_err_set(err, SG_BAD_SIGNATURE, "token not parsed");
	if (allowed != NULL && allowed->n > 0 && !sg_strlist_has(allowed, jwt_alg_name(t->alg)))
		return sg_err_set(err, SG_BAD_SIGNATURE, "signing algorithm %s is not in the supported algorithms",
		                  jwt_alg_name(t->alg));
	if (ks == NULL || ks->n == 0)
		return sg_err_set(err, SG_BAD_SIGNATURE, "no keys to verify the token signature");
	for (size_t i = 0; i < ks->n; i++) {
		const struct jwt_key *k = &ks->v[i];

		if (t->kid != NULL && k->kid != NULL && strcmp(t->kid, k->kid) != 0)
			continue;
		if (!key_fits(k, t->alg))
			continue;
		tried++;
		if (verify_one(t, k->pkey))
			return 0;
	}
	if (tried == 0)
		return sg_err_set(err, SG_BAD_SIGNATURE, "no known key fits the token (alg %s%s)", jwt_alg_name(t->alg),
		                  t->kid != NULL ? ", kid given" : "");
	return sg_err_set(err, SG_BAD_SIGNATURE, "no known key successfully validated the token signature");
}

/* ---------------- Claims ---------------- */

/* 1 present (number), 0 absent, -1 present but not a number. */
static int claim_time(const json_t *claims, const char *name, double *out)
{
	const json_t *v = json_object_get(claims, name);

	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_number(v))
		return -1;
	*out = json_number_value(v);
	return 1;
}

/* aud as a list: a string is a one-entry list (RFC 7519 4.1.3). -1 when neither. */
static int aud_list(const json_t *v, struct sg_strlist *out)
{
	size_t i;
	json_t *e;

	if (v == NULL || json_is_null(v))
		return 0;
	if (json_is_string(v)) {
		sg_strlist_add(out, json_string_value(v));
		return 0;
	}
	if (!json_is_array(v) || json_array_size(v) > SG_STRLIST_MAX)
		return -1;
	json_array_foreach(v, i, e) {
		if (!json_is_string(e))
			return -1;
		sg_strlist_add(out, json_string_value(e));
	}
	return 0;
}

int jwt_claims_validate(const json_t *claims, const struct jwt_expect *e, struct sg_err *err)
{
	double exp = 0, nbf = 0, iat = 0, now = (double)e->now, leeway = (double)e->leeway;
	int has_exp, has_nbf, has_iat;
	const char *s;
	struct sg_strlist aud = {0};
	int ret = -1;

	has_exp = claim_time(claims, "exp", &exp);
	has_nbf = claim_time(claims, "nbf", &nbf);
	has_iat = claim_time(claims, "iat", &iat);
	if (has_exp < 0 || has_nbf < 0 || has_iat < 0)
		return sg_err_set(err, SG_BAD_REQUEST, "error validating claims: exp, nbf and iat must be numbers");
	if (e->require_time && !has_exp && !has_nbf && !has_iat)
		return sg_err_set(err, SG_BAD_REQUEST, "no issue time, notbefore, or expiration time encoded in token");
	if (e->require_time && !has_exp) {
		/* Vault: a token without exp lives exp_leeway past its latest start. */
		exp = (has_nbf && (!has_iat || nbf > iat) ? nbf : iat) + (double)e->exp_leeway;
		has_exp = 1;
	}
	if (e->require_time && !has_nbf) {
		nbf = has_iat ? iat : exp - (double)e->nbf_leeway;
		has_nbf = 1;
	}
	/* RFC 7519 4.1.4, 4.1.5, with a small leeway for clock skew. */
	if (has_exp && now - leeway > exp)
		return sg_err_set(err, SG_BAD_REQUEST, "error validating claims: token is expired (exp)");
	if (has_nbf && now + leeway < nbf)
		return sg_err_set(err, SG_BAD_REQUEST, "error validating claims: token not valid yet (nbf)");
	if (has_iat && now + leeway < iat)
		return sg_err_set(err, SG_BAD_REQUEST, "error validating claims: token issued in the future (iat)");

	if (e->issuer != NULL && *e->issuer != '\0') {
		s = json_string_value(json_object_get(claims, "iss"));
		if (s == NULL || strcmp(s, e->issuer) != 0)
			return sg_err_set(err, SG_BAD_REQUEST, "error validating claims: invalid issuer (iss) claim");
	}
	if (e->subject != NULL && *e->subject != '\0') {
		s = json_string_value(json_object_get(claims, "sub"));
		if (s == NULL || strcmp(s, e->subject) != 0)
			return sg_err_set(err, SG_BAD_REQUEST, "sub claim does not match bound subject");
	}
	if (aud_list(json_object_get(claims, "aud"), &aud) != 0) {
		sg_err_set(err, SG_BAD_REQUEST, "error validating claims: aud is not a string or a list of strings");
		goto out;
	}
	if (e->audiences == NULL || e->audiences->n == 0) {
		if (e->aud_strict && aud.n > 0) {
			sg_err_set(err, SG_BAD_REQUEST, "audience claim found in JWT but no audiences bound to the role");
			goto out;
		}
	} else {
		bool found = false;

		for (size_t i = 0; i < e->audiences->n && !found; i++)
			found = sg_strlist_has(&aud, e->audiences->v[i]);
		if (!found) {
			sg_err_set(err, SG_BAD_REQUEST, "aud claim does not match any bound audience");
			goto out;
		}
	}
	ret = 0;
out:
	sg_strlist_clear(&aud);
	return ret;
}

/* RFC 6901 4: one reference token, unescaped (~1 -> '/', ~0 -> '~'). -1 on a bad escape. */
static int pointer_token(const char *p, size_t n, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char c = p[i];

		if (c == '~') {
			if (i + 1 >= n || (p[i + 1] != '0' && p[i + 1] != '1'))
				return -1;
			c = p[i + 1] == '0' ? '~' : '/';
			i++;
		}
		if (o + 1 >= cap)
			return -1;
		out[o++] = c;
	}
	out[o] = '\0';
	return 0;
}

const json_t *jwt_claim_get(const json_t *claims, const char *name)
{
	const json_t *cur = claims;
	const char *p;
	char tok[JWT_POINTER_MAX];

	if (claims == NULL || name == NULL)
		return NULL;
	if (name[0] != '/')
		return json_object_get(claims, name);
	if (strlen(name) >= JWT_POINTER_MAX)
		return NULL;
	p = name + 1;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t n = slash != NULL ? (size_t)(slash - p) : strlen(p);

		if (pointer_token(p, n, tok, sizeof(tok)) != 0)
			return NULL;
		if (json_is_object(cur)) {
			cur = json_object_get(cur, tok);
		} else if (json_is_array(cur)) {
			char *end;
			unsigned long idx;

			/* RFC 6901 4: array indexes are decimal without leading zeros. */
			if (tok[0] == '\0' || (tok[0] == '0' && tok[1] != '\0') || tok[0] < '0' || tok[0] > '9')
				return NULL;
			idx = strtoul(tok, &end, 10);
			if (*end != '\0')
				return NULL;
			cur = json_array_get(cur, idx);
		} else {
			return NULL;
		}
		if (cur == NULL)
			return NULL;
		if (slash == NULL)
			return cur;
		p = slash + 1;
	}
}

bool jwt_glob_match(const char *pat, const char *s)
{
	const char *star = NULL, *resume = NULL;

	while (*s != '\0') {
		if (*pat == '*') {
			star = pat++;
			resume = s;
		} else if (*pat == *s) {
			pat++;
			s++;
		} else if (star != NULL) {
			pat = star + 1;
			s = ++resume;
		} else {
			return false;
		}
	}
	while (*pat == '*')
		pat++;
	return *pat == '\0';
}

static bool bound_scalar_ok(const json_t *v)
{
	return json_is_string(v) || json_is_boolean(v) || json_is_integer(v);
}

int jwt_bound_claims_validate(const json_t *bound, struct sg_err *err)
{
	const char *k;
	json_t *v;

	if (bound == NULL || json_is_null(bound))
		return 0;
	if (!json_is_object(bound))
		return sg_err_set(err, SG_BAD_REQUEST, "bound_claims must be an object");
	if (json_object_size(bound) > JWT_MAX_BOUND_CLAIMS)
		return sg_err_set(err, SG_BAD_REQUEST, "bound_claims has more than %d claims", JWT_MAX_BOUND_CLAIMS);
	json_object_foreach((json_t *)bound, k, v) {
		if (*k == '\0')
			return sg_err_set(err, SG_BAD_REQUEST, "bound_claims has an empty claim name");
		if (json_is_array(v)) {
			size_t i;
			json_t *e;

			if (json_array_size(v) == 0 || json_array_size(v) > SG_STRLIST_MAX)
				return sg_err_set(err, SG_BAD_REQUEST, "bound claim %.64s: empty or too long list", k);
			json_array_foreach(v, i, e) {
				if (!bound_scalar_ok(e))
					return sg_err_set(err, SG_BAD_REQUEST,
					                  "bound claim %.64s: values must be strings, booleans or integers", k);
			}
		} else if (!bound_scalar_ok(v)) {
			return sg_err_set(err, SG_BAD_REQUEST, "bound claim %.64s: value must be a string, boolean, integer or a list of them", k);
		}
	}
	return 0;
}

static bool value_matches(const json_t *want, const json_t *got, bool glob)
{
	if (json_is_string(want) && json_is_string(got))
		return glob ? jwt_glob_match(json_string_value(want), json_string_value(got))
		            : strcmp(json_string_value(want), json_string_value(got)) == 0;
	if (json_is_boolean(want) && json_is_boolean(got))
		return json_is_true(want) == json_is_true(got);
	if (json_is_integer(want) && json_is_integer(got))
		return json_integer_value(want) == json_integer_value(got);
	return false;
}

static bool any_matches(const json_t *want, const json_t *got, bool glob)
{
	size_t i;
	json_t *e;

	if (json_is_array(got)) {
		json_array_foreach(got, i, e) {
			if (value_matches(want, e, glob))
				return true;
		}
		return false;
	}
	return value_matches(want, got, glob);
}

int jwt_bound_claims_check(const json_t *claims, const json_t *bound, bool glob, struct sg_err *err)
{
	const char *k;
	json_t *want;

	if (bound == NULL || !json_is_object(bound))
		return 0;
	json_object_foreach((json_t *)bound, k, want) {
		const json_t *got = jwt_claim_get(claims, k);
		bool found = false;

		if (got == NULL || json_is_null(got))
			return sg_err_set(err, SG_BAD_REQUEST, "error validating claims: claim \"%.64s\" is missing", k);
		if (!json_is_array(got) && !bound_scalar_ok(got))
			return sg_err_set(err, SG_BAD_REQUEST,
			                  "error validating claims: claim \"%.64s\" is not a string, boolean, integer or list", k);
		if (json_is_array(want)) {
			size_t i;
			json_t *w;

			json_array_foreach(want, i, w) {
				if (any_matches(w, got, glob)) {
					found = true;
					break;
				}
			}
		} else {
			found = any_matches(want, got, glob);
		}
		if (!found)
			return sg_err_set(err, SG_BAD_REQUEST,
			                  "error validating claims: claim \"%.64s\" does not match any associated bound claim values", k);
	}
	return 0;
}

int jwt_claim_mappings_apply(const json_t *claims, const json_t *mappings, json_t *meta, struct sg_err *err)
{
	const char *src;
	json_t *dst;

	if (mappings == NULL || !json_is_object(mappings))
		return 0;
	json_object_foreach((json_t *)mappings, src, dst) {
		const json_t *v = jwt_claim_get(claims, src);
		const char *key = json_string_value(dst);
		char num[32];

		if (key == NULL)
			return sg_err_set(err, SG_INTERNAL, "claim_mappings value is not a string");
		if (v == NULL || json_is_null(v))
			continue;
		if (json_is_string(v)) {
			json_object_set_new(meta, key, json_string(json_string_value(v)));
		} else if (json_is_boolean(v)) {
			json_object_set_new(meta, key, json_string(json_is_true(v) ? "true" : "false"));
		} else if (json_is_integer(v)) {
			snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
			json_object_set_new(meta, key, json_string(num));
		} else {
			return sg_err_set(err, SG_BAD_REQUEST, "error converting claim '%.64s' to string", src);
		}
	}
	return 0;
}

int jwt_claim_string(const json_t *claims, const char *name, const char **out, struct sg_err *err)
{
	const json_t *v = jwt_claim_get(claims, name);

	if (v == NULL || json_is_null(v))
		return sg_err_set(err, SG_BAD_REQUEST, "claim \"%.64s\" not found in token", name);
	if (!json_is_string(v) || *json_string_value(v) == '\0')
		return sg_err_set(err, SG_BAD_REQUEST, "claim \"%.64s\" could not be converted to string", name);
	*out = json_string_value(v);
	return 0;
}

int jwt_claim_strlist(const json_t *claims, const char *name, struct sg_strlist *out, struct sg_err *err)
{
	const json_t *v = jwt_claim_get(claims, name);
	size_t i;
	json_t *e;

	sg_strlist_clear(out);
	if (v == NULL || json_is_null(v))
		return sg_err_set(err, SG_BAD_REQUEST, "\"%.64s\" claim not found in token", name);
	if (json_is_string(v)) {
		if (*json_string_value(v) != '\0')
			sg_strlist_add(out, json_string_value(v));
		return 0;
	}
	if (!json_is_array(v))
		return sg_err_set(err, SG_BAD_REQUEST, "\"%.64s\" claim could not be converted to string list", name);
	if (json_array_size(v) > JWT_MAX_GROUPS)
		return sg_err_set(err, SG_BAD_REQUEST, "\"%.64s\" claim has more than %d entries", name, JWT_MAX_GROUPS);
	json_array_foreach(v, i, e) {
		if (!json_is_string(e)) {
			sg_strlist_clear(out);
			return sg_err_set(err, SG_BAD_REQUEST, "value in groups claim could not be parsed as string");
		}
		if (*json_string_value(e) != '\0')
			sg_strlist_add(out, json_string_value(e));
	}
	return 0;
}
