/*
 * JWS for ACME (RFC 8555 6.2, RFC 7515 flattened JSON serialisation):
 * base64url, JWK import (RFC 7517/7518), RFC 7638 thumbprints, parsing and
 * signature verification for RS256, ES256, ES384 and EdDSA (Ed25519).
 */
#include "acme/acme.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <stdlib.h>
#include <string.h>

#include "common/jose.h"

#define JWK_CACHE_SLOTS 1024
#define JWK_CACHE_MAX_ID 4096 /* longer keys (RSA over ~12k bits) are imported every time */

void acme_jws_clear(struct acme_jws *j)
{
	if (j == NULL)
		return;
	json_decref(j->header);
	free(j->payload);
	free(j->signing_input);
	free(j->sig);
	memset(j, 0, sizeof(*j));
}

static const char *jwk_str(const json_t *jwk, const char *name)
{
	return json_string_value(json_object_get(jwk, name));
}

/*
 * Imported keys, by the JWK members that define them. Every request of an
 * account imports the same stored JWK, and OpenSSL 3's import with the EC
 * point check (a scalar multiplication) costs as much as the signature
 * verification itself. Only keys that passed every check are kept; the
 * entry's id is the exact member text, so a hit is the same key. Keys are
 * public: nothing here is secret. Direct-mapped: a collision replaces.
 */
struct jwk_cache_ent {
	char *id;
	EVP_PKEY *key;
};
static pthread_mutex_t jwk_cache_mu = PTHREAD_MUTEX_INITIALIZER;
static struct jwk_cache_ent jwk_cache[JWK_CACHE_SLOTS];

/* "kty|crv|x|y" / "RSA|n|e" / "OKP|crv|x"; NULL when a member is missing or the text is too long. */
static char *jwk_cache_id(const json_t *jwk, const char *kty)
{
	static const char *const rsa[] = {"n", "e", NULL};
	static const char *const ec[] = {"crv", "x", "y", NULL};
	static const char *const okp[] = {"crv", "x", NULL};
	const char *const *m = strcmp(kty, "RSA") == 0  ? rsa
	                       : strcmp(kty, "EC") == 0 ? ec
	                       : strcmp(kty, "OKP") == 0 ? okp
	                                                 : NULL;
	size_t len = strlen(kty) + 1, at;
	char *id;

	if (m == NULL)
		return NULL;
	for (size_t i = 0; m[i] != NULL; i++) {
		const char *v = jwk_str(jwk, m[i]);

		if (v == NULL)
			return NULL;
		len += strlen(v) + 1;
	}
	if (len > JWK_CACHE_MAX_ID)
		return NULL;
	id = sg_xmalloc(len);
	at = strlen(kty);
	memcpy(id, kty, at);
	for (size_t i = 0; m[i] != NULL; i++) {
		const char *v = jwk_str(jwk, m[i]);
		size_t n = strlen(v);

		id[at++] = '|';
		memcpy(id + at, v, n);
		at += n;
	}
	id[at] = '\0';
	return id;
}

static size_t jwk_cache_slot(const char *id)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (; *id != '\0'; id++)
		h = (h ^ (unsigned char)*id) * 1099511628211ull;
	return (size_t)(h % JWK_CACHE_SLOTS);
}

/* A JWK's key, and only what ACME's algorithms use: RSA of 2048 bits or more, EC P-256 and P-384, Ed25519. */
static EVP_PKEY *jwk_import(const json_t *jwk, struct sg_err *err)
{
	EVP_PKEY *k = NULL;
	int r = sg_jwk_public_key(jwk, SG_ACME_BAD_PUBLIC_KEY, &k, err);

	if (r < 0)
		return NULL;
	if (r == 0 || (EVP_PKEY_is_a(k, "RSA") && EVP_PKEY_get_bits(k) < 2048) ||
	    (EVP_PKEY_is_a(k, "EC") && EVP_PKEY_get_bits(k) > 384) || EVP_PKEY_is_a(k, "ED448")) {
		sg_err_set(err, SG_ACME_BAD_PUBLIC_KEY,
		           "JWK must be RSA of at least 2048 bits, EC P-256 or P-384, or OKP Ed25519");
		EVP_PKEY_free(k);
		return NULL;
	}
	return k;
}

EVP_PKEY *acme_jwk_to_pkey(const json_t *jwk, struct sg_err *err)
{
	const char *kty = jwk_str(jwk, "kty");
	struct jwk_cache_ent *e, old = {NULL, NULL};
	EVP_PKEY *k = NULL;
	char *id;

	id = kty != NULL && json_object_get(jwk, "d") == NULL && json_object_get(jwk, "p") == NULL
	         ? jwk_cache_id(jwk, kty)
	         : NULL;
	if (id == NULL)
		return jwk_import(jwk, err);
	e = &jwk_cache[jwk_cache_slot(id)];
	pthread_mutex_lock(&jwk_cache_mu);
	if (e->id != NULL && strcmp(e->id, id) == 0 && EVP_PKEY_up_ref(e->key) == 1)
		k = e->key;
	pthread_mutex_unlock(&jwk_cache_mu);
	if (k != NULL) {
		free(id);
		return k;
	}
	k = jwk_import(jwk, err);
	if (k == NULL || EVP_PKEY_up_ref(k) != 1) {
		free(id);
		return k;
	}
	pthread_mutex_lock(&jwk_cache_mu);
	old = *e;
	e->id = id;
	e->key = k;
	pthread_mutex_unlock(&jwk_cache_mu);
	free(old.id);
	EVP_PKEY_free(old.key);
	return k;
}

char *acme_jwk_thumbprint(const json_t *jwk, struct sg_err *err)
{
	static const char *const rsa[] = {"e", "kty", "n", NULL};
	static const char *const ec[] = {"crv", "kty", "x", "y", NULL};
	static const char *const okp[] = {"crv", "kty", "x", NULL};
	const char *kty = jwk_str(jwk, "kty");
	const char *const *members;
	json_t *canon;
	char *text, *out;
	unsigned char md[32];
	unsigned int mdlen = 0;

	if (kty == NULL) {
		sg_err_set(err, SG_ACME_BAD_PUBLIC_KEY, "JWK has no \"kty\"");
		return NULL;
	}
	members = strcmp(kty, "RSA") == 0 ? rsa : strcmp(kty, "EC") == 0 ? ec : strcmp(kty, "OKP") == 0 ? okp : NULL;
	if (members == NULL) {
		sg_err_set(err, SG_ACME_BAD_PUBLIC_KEY, "unsupported JWK key type");
		return NULL;
	}
	/* RFC 7638 3.2: required members only, lexicographic order, no whitespace. */
	canon = json_object();
	for (size_t i = 0; members[i] != NULL; i++) {
		const json_t *v = json_object_get(jwk, members[i]);

		if (!json_is_string(v)) {
			json_decref(canon);
			sg_err_set(err, SG_ACME_BAD_PUBLIC_KEY, "JWK member \"%s\" missing", members[i]);
			return NULL;
		}
		json_object_set(canon, members[i], (json_t *)v);
	}
	text = json_dumps(canon, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(canon);
	if (text == NULL)
		sg_die("json_dumps failed");
	if (EVP_Digest(text, strlen(text), md, &mdlen, EVP_sha256(), NULL) != 1)
		sg_die("SHA-256 failed");
	free(text);
	out = sg_b64url(md, mdlen);
	return out;
}

static json_t *b64_member(const unsigned char *b, size_t n)
{
	char *s = sg_b64url(b, n);
	json_t *j = json_string(s);

	free(s);
	return j;
}

json_t *acme_pkey_to_jwk(const EVP_PKEY *k, struct sg_err *err)
{
	json_t *jwk = json_object();
	BIGNUM *n = NULL, *e = NULL;
	unsigned char buf[2048];
	size_t len = 0;

	if (EVP_PKEY_is_a(k, "RSA")) {
		unsigned char *nb, *eb;

		if (EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &n) != 1 ||
		    EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_E, &e) != 1)
			goto bad;
		nb = sg_xmalloc((size_t)BN_num_bytes(n) + 1);
		eb = sg_xmalloc((size_t)BN_num_bytes(e) + 1);
		BN_bn2bin(n, nb);
		BN_bn2bin(e, eb);
		json_object_set_new(jwk, "kty", json_string("RSA"));
		json_object_set_new(jwk, "n", b64_member(nb, (size_t)BN_num_bytes(n)));
		json_object_set_new(jwk, "e", b64_member(eb, (size_t)BN_num_bytes(e)));
		free(nb);
		free(eb);
	} else if (EVP_PKEY_is_a(k, "EC")) {
		char group[32];
		size_t c;

		if (EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL) != 1 ||
		    EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, buf, sizeof(buf), &len) != 1)
			goto bad;
		if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0)
			c = 32;
		else if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0)
			c = 48;
		else
			goto bad;
		if (len != 1 + 2 * c || buf[0] != 0x04)
			goto bad;
		json_object_set_new(jwk, "kty", json_string("EC"));
		json_object_set_new(jwk, "crv", json_string(c == 32 ? "P-256" : "P-384"));
		json_object_set_new(jwk, "x", b64_member(buf + 1, c));
		json_object_set_new(jwk, "y", b64_member(buf + 1 + c, c));
	} else if (EVP_PKEY_is_a(k, "ED25519")) {
		len = sizeof(buf);
		if (EVP_PKEY_get_raw_public_key(k, buf, &len) != 1)
			goto bad;
		json_object_set_new(jwk, "kty", json_string("OKP"));
		json_object_set_new(jwk, "crv", json_string("Ed25519"));
		json_object_set_new(jwk, "x", b64_member(buf, len));
	} else {
		goto bad;
	}
	BN_free(n);
	BN_free(e);
	return jwk;
bad:
	BN_free(n);
	BN_free(e);
	json_decref(jwk);
	sg_err_ossl(err, SG_ACME_BAD_PUBLIC_KEY, "unsupported public key");
	return NULL;
}

/* ---- Parsing ---- */

static int alg_parse(const char *s, enum acme_alg *out, struct sg_err *err)
{
	if (s == NULL)
		return sg_err_set(err, SG_ACME_MALFORMED, "JWS protected header has no \"alg\"");
	if (strcmp(s, "RS256") == 0)
		*out = ACME_ALG_RS256;
	else if (strcmp(s, "ES256") == 0)
		*out = ACME_ALG_ES256;
	else if (strcmp(s, "ES384") == 0)
		*out = ACME_ALG_ES384;
	else if (strcmp(s, "EdDSA") == 0)
		*out = ACME_ALG_EDDSA;
	else
		/* RFC 8555 6.2: "none" and MAC algorithms MUST NOT be accepted. */
		return sg_err_set(err, SG_ACME_BAD_SIG_ALG, "unsupported JWS algorithm (use RS256, ES256, ES384 or EdDSA)");
	return 0;
}

static const char *b64_field(const json_t *body, const char *name, size_t cap, struct sg_err *err)
{
	const json_t *v = json_object_get(body, name);

	if (!json_is_string(v)) {
		sg_err_set(err, SG_ACME_MALFORMED, "JWS member \"%s\" must be a string", name);
		return NULL;
	}
	if (json_string_length(v) > cap) {
		sg_err_set(err, SG_ACME_MALFORMED, "JWS member \"%s\" too large", name);
		return NULL;
	}
	return json_string_value(v);
}

static int jws_parse(const json_t *body, const char *expected_url, bool inner, struct acme_jws *out,
                     struct sg_err *err);

int acme_jws_parse(const json_t *body, const char *expected_url, struct acme_jws *out, struct sg_err *err)
{
	return jws_parse(body, expected_url, false, out, err);
}

int acme_jws_parse_inner(const json_t *body, const char *expected_url, struct acme_jws *out, struct sg_err *err)
{
	return jws_parse(body, expected_url, true, out, err);
}

static int jws_parse(const json_t *body, const char *expected_url, bool inner, struct acme_jws *out,
                     struct sg_err *err)
{
	const char *prot, *payload, *sig, *key;
	unsigned char *hdr = NULL;
	size_t hlen = 0, plen, prlen;
	json_t *v;
	json_error_t jerr;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(body))
		return sg_err_set(err, SG_ACME_MALFORMED, "request body must be a flattened JWS object");
	/* RFC 8555 6.2: flattened serialisation, no unprotected header, no other members. */
	json_object_foreach((json_t *)body, key, v) {
		if (strcmp(key, "protected") != 0 && strcmp(key, "payload") != 0 && strcmp(key, "signature") != 0)
			return sg_err_set(err, SG_ACME_MALFORMED, "unexpected JWS member (only protected, payload, signature)");
	}
	prot = b64_field(body, "protected", ACME_MAX_HEADER_BYTES * 4 / 3 + 4, err);
	payload = b64_field(body, "payload", ACME_MAX_JWS_BYTES, err);
	sig = b64_field(body, "signature", 2048, err);
	if (prot == NULL || payload == NULL || sig == NULL)
		return -1;
	prlen = strlen(prot);
	plen = strlen(payload);
	if (sg_b64url_decode(prot, prlen, &hdr, &hlen) != 0 ||
	    sg_b64url_decode(payload, plen, &out->payload, &out->payload_len) != 0 ||
	    sg_b64url_decode(sig, strlen(sig), &out->sig, &out->sig_len) != 0) {
		sg_err_set(err, SG_ACME_MALFORMED, "JWS members must be base64url without padding");
		goto out;
	}
	out->header = json_loadb((const char *)hdr, hlen, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(out->header)) {
		sg_err_set(err, SG_ACME_MALFORMED, "JWS protected header is not a JSON object");
		goto out;
	}
	if (alg_parse(json_string_value(json_object_get(out->header, "alg")), &out->alg, err) != 0)
		goto out;
	out->nonce = json_string_value(json_object_get(out->header, "nonce"));
	out->url = json_string_value(json_object_get(out->header, "url"));
	out->kid = json_string_value(json_object_get(out->header, "kid"));
	out->jwk = json_object_get(out->header, "jwk");
	if (out->url == NULL) {
		sg_err_set(err, SG_ACME_MALFORMED, "JWS protected header has no \"url\"");
		goto out;
	}
	/* RFC 8555 6.5: a nonce is required on every JWS; a missing one is badNonce. */
	if (!inner && (out->nonce == NULL || *out->nonce == '\0')) {
		sg_err_set(err, SG_ACME_BAD_NONCE, "JWS protected header has no \"nonce\"");
		goto out;
	}
	/* RFC 8555 7.3.5: the inner JWS of a key change has no nonce and carries the new key as jwk. */
	if (inner && (json_object_get(out->header, "nonce") != NULL || out->jwk == NULL)) {
		sg_err_set(err, SG_ACME_MALFORMED, "the inner JWS of a key change needs \"jwk\" and no \"nonce\"");
		goto out;
	}
	/* RFC 8555 6.2: exactly one of jwk and kid. */
	if ((out->kid != NULL) == (out->jwk != NULL) || (json_object_get(out->header, "kid") != NULL && out->kid == NULL)) {
		sg_err_set(err, SG_ACME_MALFORMED, "JWS protected header must have exactly one of \"jwk\" and \"kid\"");
		goto out;
	}
	if (out->jwk != NULL && !json_is_object(out->jwk)) {
		sg_err_set(err, SG_ACME_MALFORMED, "JWS \"jwk\" must be an object");
		goto out;
	}
	/* RFC 8555 6.4: the url MUST equal the request URL. */
	if (expected_url == NULL || strcmp(out->url, expected_url) != 0) {
		sg_err_set(err, SG_ACME_UNAUTHORIZED, "JWS \"url\" does not match the request URL");
		goto out;
	}
	out->signing_input = sg_xmalloc(prlen + plen + 2);
	memcpy(out->signing_input, prot, prlen);
	out->signing_input[prlen] = '.';
	memcpy(out->signing_input + prlen + 1, payload, plen);
	out->signing_input[prlen + plen + 1] = '\0';
	rc = 0;
out:
	free(hdr);
	if (rc != 0)
		acme_jws_clear(out);
	return rc;
}

int acme_jws_verify(const struct acme_jws *j, EVP_PKEY *key, struct sg_err *err)
{
	EVP_MD_CTX *ctx = NULL;
	const EVP_MD *md = NULL;
	unsigned char *der = NULL;
	const unsigned char *sig = j->sig;
	size_t sig_len = j->sig_len;
	int rc = -1;

	switch (j->alg) {
	case ACME_ALG_RS256:
		if (!EVP_PKEY_is_a(key, "RSA"))
			goto mismatch;
		md = EVP_sha256();
		break;
	case ACME_ALG_ES256:
	case ACME_ALG_ES384: {
		size_t clen = j->alg == ACME_ALG_ES256 ? 32 : 48;

		if (!EVP_PKEY_is_a(key, "EC") || EVP_PKEY_get_bits(key) != (int)clen * 8)
			goto mismatch;
		md = j->alg == ACME_ALG_ES256 ? EVP_sha256() : EVP_sha384();
		der = sg_ecdsa_raw_to_der(j->sig, j->sig_len, clen, &sig_len);
		if (der == NULL) {
			sg_err_set(err, SG_ACME_MALFORMED, "JWS signature has the wrong length for its algorithm");
			goto out;
		}
		sig = der;
		break;
	}
	case ACME_ALG_EDDSA:
		if (!EVP_PKEY_is_a(key, "ED25519"))
			goto mismatch;
		break;
	default:
		goto mismatch;
	}
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL)
		sg_die("out of memory");
	if (EVP_DigestVerifyInit(ctx, NULL, md, NULL, key) != 1 ||
	    EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *)j->signing_input, strlen(j->signing_input)) != 1) {
		sg_err_ossl(err, SG_ACME_MALFORMED, "JWS signature verification failed");
		goto out;
	}
	rc = 0;
	goto out;
mismatch:
	sg_err_set(err, SG_ACME_BAD_SIG_ALG, "JWS algorithm does not match the key type");
out:
	EVP_MD_CTX_free(ctx);
	OPENSSL_free(der);
	return rc;
}
