/*
 * acme/ JWS, JWK, thumbprint, base64url and nonce checks: a JWS signed with
 * each allowed algorithm verifies, and every refusal of RFC 8555 6.2-6.5
 * happens with the right error code.
 */
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acme/acme.h"
#include "tests/unit/t.h"

#define URL "https://ca.example/v1/pki/acme/new-account"

static EVP_PKEY *gen(const char *kind)
{
	if (strcmp(kind, "rsa") == 0)
		return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	if (strcmp(kind, "p256") == 0)
		return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (strcmp(kind, "p384") == 0)
		return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
}

static char *b64s(const char *s)
{
	return sg_b64url((const unsigned char *)s, strlen(s));
}

/* JWS signature bytes as RFC 7518 wants them (ECDSA as R || S). */
static unsigned char *sign(EVP_PKEY *k, const char *alg, const char *input, size_t *len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	const EVP_MD *md = strcmp(alg, "EdDSA") == 0 ? NULL : strcmp(alg, "ES384") == 0 ? EVP_sha384() : EVP_sha256();
	unsigned char *sig;
	size_t n = 0;

	EVP_DigestSignInit(ctx, NULL, md, NULL, k);
	EVP_DigestSign(ctx, NULL, &n, (const unsigned char *)input, strlen(input));
	sig = malloc(n);
	EVP_DigestSign(ctx, sig, &n, (const unsigned char *)input, strlen(input));
	EVP_MD_CTX_free(ctx);
	if (alg[0] == 'E' && alg[1] == 'S') {
		size_t c = strcmp(alg, "ES256") == 0 ? 32 : 48;
		const unsigned char *p = sig;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)n);
		unsigned char *raw = calloc(1, 2 * c);

		BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, (int)c);
		BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + c, (int)c);
		ECDSA_SIG_free(es);
		free(sig);
		sig = raw;
		n = 2 * c;
	}
	*len = n;
	return sig;
}

/*
 * A flattened JWS body. header_json is the protected header as text (so
 * tests can write duplicates or odd members); payload as text.
 */
static json_t *make_jws(EVP_PKEY *k, const char *sign_alg, const char *header_json, const char *payload)
{
	char *p = b64s(header_json), *pl = b64s(payload);
	char *input = malloc(strlen(p) + strlen(pl) + 2);
	unsigned char *sig;
	size_t slen;
	char *s64;
	json_t *j;

	memcpy(input, p, strlen(p));
	input[strlen(p)] = '.';
	memcpy(input + strlen(p) + 1, pl, strlen(pl) + 1);
	sig = sign(k, sign_alg, input, &slen);
	s64 = sg_b64url(sig, slen);
	j = json_pack("{s:s, s:s, s:s}", "protected", p, "payload", pl, "signature", s64);
	free(p);
	free(pl);
	free(input);
	free(sig);
	free(s64);
	return j;
}

static char *header(EVP_PKEY *k, const char *alg, const char *nonce, const char *url)
{
	struct sg_err err;
	json_t *jwk, *h;
	char *s;

	sg_err_init(&err);
	jwk = acme_pkey_to_jwk(k, &err);
	h = json_pack("{s:s, s:s, s:s, s:o}", "alg", alg, "nonce", nonce, "url", url, "jwk", jwk);
	s = json_dumps(h, JSON_COMPACT);
	json_decref(h);
	return s;
}

/* Parse + verify with the key of the header; returns the error code (SG_OK on success). */
static enum sg_code check_jws(const json_t *body, const char *url)
{
	struct acme_jws j;
	struct sg_err err;
	EVP_PKEY *k;
	enum sg_code code;

	sg_err_init(&err);
	if (acme_jws_parse(body, url, &j, &err) != 0)
		return err.code;
	k = j.jwk != NULL ? acme_jwk_to_pkey(j.jwk, &err) : NULL;
	if (k != NULL)
		(void)!acme_jws_verify(&j, k, &err); /* the code is read from err */
	code = k == NULL && !sg_err_isset(&err) ? SG_INTERNAL : err.code;
	EVP_PKEY_free(k);
	acme_jws_clear(&j);
	return code;
}

static void test_algorithms(void)
{
	static const char *const kinds[] = {"rsa", "p256", "p384", "ed25519"};
	static const char *const algs[] = {"RS256", "ES256", "ES384", "EdDSA"};

	for (size_t i = 0; i < 4; i++) {
		EVP_PKEY *k = gen(kinds[i]);
		char *h = header(k, algs[i], "n0nce", URL);
		json_t *body = make_jws(k, algs[i], h, "{\"termsOfServiceAgreed\":true}");
		struct acme_jws j;
		struct sg_err err;

		T_CHECK(check_jws(body, URL) == SG_OK, "%s verifies", algs[i]);
		sg_err_init(&err);
		T_OK(acme_jws_parse(body, URL, &j, &err) == 0);
		T_STREQ(j.nonce, "n0nce");
		T_STREQ((const char *)j.payload, "{\"termsOfServiceAgreed\":true}");
		T_OK(j.kid == NULL && j.jwk != NULL);
		acme_jws_clear(&j);
		/* url mismatch (RFC 8555 6.4). */
		T_CHECK(check_jws(body, URL "x") == SG_ACME_UNAUTHORIZED, "%s url mismatch", algs[i]);
		/* A changed payload breaks the signature. */
		{
			json_t *bad = json_deep_copy(body);
			char *pl = b64s("{\"termsOfServiceAgreed\":false}");

			json_object_set_new(bad, "payload", json_string(pl));
			T_CHECK(check_jws(bad, URL) == SG_ACME_MALFORMED, "%s tampered payload", algs[i]);
			free(pl);
			json_decref(bad);
		}
		json_decref(body);
		free(h);
		EVP_PKEY_free(k);
	}
}

static void test_refusals(void)
{
	EVP_PKEY *ec = gen("p256"), *rsa = gen("rsa");
	struct sg_err err;
	json_t *jwk, *body;
	char *jwks, *h;

	sg_err_init(&err);
	jwk = acme_pkey_to_jwk(ec, &err);
	jwks = json_dumps(jwk, JSON_COMPACT);
	/* none and HMAC (RFC 8555 6.2). */
	for (int i = 0; i < 3; i++) {
		static const char *const bad[] = {"none", "HS256", "RS1"};

		h = header(ec, bad[i], "n", URL);
		body = make_jws(ec, "ES256", h, "{}");
		T_CHECK(check_jws(body, URL) == SG_ACME_BAD_SIG_ALG, "alg %s", bad[i]);
		json_decref(body);
		free(h);
	}
	/* alg that does not fit the key. */
	h = header(ec, "RS256", "n", URL);
	body = make_jws(ec, "ES256", h, "{}");
	T_CHECK(check_jws(body, URL) == SG_ACME_BAD_SIG_ALG, "RS256 with an EC key");
	json_decref(body);
	free(h);
	h = header(rsa, "ES256", "n", URL);
	body = make_jws(rsa, "RS256", h, "{}");
	T_CHECK(check_jws(body, URL) == SG_ACME_BAD_SIG_ALG, "ES256 with an RSA key");
	json_decref(body);
	free(h);
	/* Both jwk and kid; neither. */
	{
		char *both = sg_xasprintf("{\"alg\":\"ES256\",\"nonce\":\"n\",\"url\":\"%s\",\"jwk\":%s,\"kid\":\"k\"}", URL, jwks);
		char *none = sg_xasprintf("{\"alg\":\"ES256\",\"nonce\":\"n\",\"url\":\"%s\"}", URL);
		char *nononce = sg_xasprintf("{\"alg\":\"ES256\",\"url\":\"%s\",\"jwk\":%s}", URL, jwks);
		char *dup = sg_xasprintf("{\"alg\":\"ES256\",\"alg\":\"ES256\",\"nonce\":\"n\",\"url\":\"%s\",\"jwk\":%s}", URL, jwks);
		char *nourl = sg_xasprintf("{\"alg\":\"ES256\",\"nonce\":\"n\",\"jwk\":%s}", jwks);

		body = make_jws(ec, "ES256", both, "{}");
		T_CHECK(check_jws(body, URL) == SG_ACME_MALFORMED, "jwk and kid");
		json_decref(body);
		body = make_jws(ec, "ES256", none, "{}");
		T_CHECK(check_jws(body, URL) == SG_ACME_MALFORMED, "neither jwk nor kid");
		json_decref(body);
		body = make_jws(ec, "ES256", nononce, "{}");
		T_CHECK(check_jws(body, URL) == SG_ACME_BAD_NONCE, "no nonce");
		json_decref(body);
		body = make_jws(ec, "ES256", dup, "{}");
		T_CHECK(check_jws(body, URL) == SG_ACME_MALFORMED, "duplicate header member");
		json_decref(body);
		body = make_jws(ec, "ES256", nourl, "{}");
		T_CHECK(check_jws(body, URL) == SG_ACME_MALFORMED, "no url");
		json_decref(body);
		free(both);
		free(none);
		free(nononce);
		free(dup);
		free(nourl);
	}
	/* Unprotected header, padding, wrong types. */
	h = header(ec, "ES256", "n", URL);
	body = make_jws(ec, "ES256", h, "{}");
	{
		json_t *b2 = json_deep_copy(body);

		json_object_set_new(b2, "header", json_object());
		T_CHECK(check_jws(b2, URL) == SG_ACME_MALFORMED, "unprotected header");
		json_decref(b2);
		b2 = json_deep_copy(body);
		json_object_set_new(b2, "payload", json_string("e30="));
		T_CHECK(check_jws(b2, URL) == SG_ACME_MALFORMED, "padded base64");
		json_decref(b2);
		b2 = json_deep_copy(body);
		json_object_set_new(b2, "signature", json_integer(1));
		T_CHECK(check_jws(b2, URL) == SG_ACME_MALFORMED, "signature not a string");
		json_decref(b2);
		b2 = json_deep_copy(body);
		json_object_set_new(b2, "signature", json_string("AAAA"));
		T_CHECK(check_jws(b2, URL) == SG_ACME_MALFORMED, "short ES256 signature");
		json_decref(b2);
		b2 = json_array();
		T_CHECK(check_jws(b2, URL) == SG_ACME_MALFORMED, "not an object");
		json_decref(b2);
	}
	json_decref(body);
	free(h);
	json_decref(jwk);
	free(jwks);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(rsa);
}

static void test_inner(void)
{
	EVP_PKEY *k = gen("p256");
	struct sg_err err;
	struct acme_jws j;
	json_t *jwk, *h, *body;
	char *hs;

	sg_err_init(&err);
	jwk = acme_pkey_to_jwk(k, &err);
	/* keyChange's inner JWS: no nonce, jwk required (RFC 8555 7.3.5). */
	h = json_pack("{s:s, s:s, s:O}", "alg", "ES256", "url", URL, "jwk", jwk);
	hs = json_dumps(h, JSON_COMPACT);
	body = make_jws(k, "ES256", hs, "{}");
	T_OK(acme_jws_parse_inner(body, URL, &j, &err) == 0 && acme_jws_verify(&j, k, &err) == 0);
	acme_jws_clear(&j);
	sg_err_init(&err);
	T_OK(acme_jws_parse(body, URL, &j, &err) != 0 && err.code == SG_ACME_BAD_NONCE); /* outer rules */
	json_decref(body);
	free(hs);
	json_object_set_new(h, "nonce", json_string("n"));
	hs = json_dumps(h, JSON_COMPACT);
	body = make_jws(k, "ES256", hs, "{}");
	sg_err_init(&err);
	T_OK(acme_jws_parse_inner(body, URL, &j, &err) != 0 && err.code == SG_ACME_MALFORMED);
	json_decref(body);
	free(hs);
	json_object_del(h, "nonce");
	json_object_del(h, "jwk");
	json_object_set_new(h, "kid", json_string("https://x/acct/1"));
	hs = json_dumps(h, JSON_COMPACT);
	body = make_jws(k, "ES256", hs, "{}");
	sg_err_init(&err);
	T_OK(acme_jws_parse_inner(body, URL, &j, &err) != 0 && err.code == SG_ACME_MALFORMED);
	json_decref(body);
	free(hs);
	json_decref(h);
	json_decref(jwk);
	EVP_PKEY_free(k);
}

static void test_jwk(void)
{
	/* RFC 7638 3.1's example key and thumbprint. */
	json_t *rfc = json_pack(
	    "{s:s, s:s, s:s, s:s, s:s}", "kty", "RSA", "n",
	    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjh"
	    "Mstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQv"
	    "RL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnq"
	    "DKgw",
	    "e", "AQAB", "alg", "RS256", "kid", "2011-04-29");
	struct sg_err err;
	char *tp;
	EVP_PKEY *k;
	static const char *const kinds[] = {"rsa", "p256", "p384", "ed25519"};

	sg_err_init(&err);
	tp = acme_jwk_thumbprint(rfc, &err);
	T_STREQ(tp, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
	free(tp);
	k = acme_jwk_to_pkey(rfc, &err);
	T_OK(k != NULL && EVP_PKEY_get_bits(k) == 2048);
	EVP_PKEY_free(k);
	/* Round trips and refusals. */
	for (size_t i = 0; i < 4; i++) {
		EVP_PKEY *a = gen(kinds[i]), *b;
		json_t *j = acme_pkey_to_jwk(a, &err);

		b = acme_jwk_to_pkey(j, &err);
		T_CHECK(b != NULL && EVP_PKEY_eq(a, b) == 1, "%s JWK round trip", kinds[i]);
		EVP_PKEY_free(a);
		EVP_PKEY_free(b);
		json_decref(j);
	}
	{
		json_t *small = json_pack("{s:s, s:s, s:s}", "kty", "RSA", "n", "AQAB", "e", "AQAB");
		json_t *priv = json_deep_copy(rfc);
		json_t *oct = json_pack("{s:s, s:s}", "kty", "oct", "k", "AAAA");

		json_object_set_new(priv, "d", json_string("AQAB"));
		sg_err_init(&err);
		T_OK(acme_jwk_to_pkey(small, &err) == NULL && err.code == SG_ACME_BAD_PUBLIC_KEY);
		sg_err_init(&err);
		T_OK(acme_jwk_to_pkey(priv, &err) == NULL && err.code == SG_ACME_BAD_PUBLIC_KEY);
		sg_err_init(&err);
		T_OK(acme_jwk_to_pkey(oct, &err) == NULL && err.code == SG_ACME_BAD_PUBLIC_KEY);
		json_decref(small);
		json_decref(priv);
		json_decref(oct);
	}
	/* A point not on the curve. */
	{
		EVP_PKEY *a = gen("p256");
		json_t *j = acme_pkey_to_jwk(a, &err);

		json_object_set_new(j, "y", json_string("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
		sg_err_init(&err);
		T_OK(acme_jwk_to_pkey(j, &err) == NULL);
		json_decref(j);
		EVP_PKEY_free(a);
	}
	json_decref(rfc);
}

static void test_b64url(void)
{
	unsigned char *out = NULL;
	size_t n = 0;
	char *s;

	T_OK(sg_b64url_decode("e30", 3, &out, &n) == 0 && n == 2 && memcmp(out, "{}", 2) == 0);
	free(out);
	T_OK(sg_b64url_decode("e30=", 4, &out, &n) != 0);
	T_OK(sg_b64url_decode("a", 1, &out, &n) != 0);
	T_OK(sg_b64url_decode("+/+/", 4, &out, &n) != 0);
	T_OK(sg_b64url_decode("e31", 3, &out, &n) != 0); /* stray low bits */
	T_OK(sg_b64url_decode("", 0, &out, &n) == 0 && n == 0);
	free(out);
	s = sg_b64url((const unsigned char *)"\xfb\xff", 2);
	T_STREQ(s, "-_8");
	free(s);
}

static void test_nonces(void)
{
	struct acme_nonces *a = acme_nonces_new(NULL, 1), *b = acme_nonces_new(NULL, 1);
	unsigned char key[32] = {7};
	struct acme_nonces *c1 = acme_nonces_new(key, 1), *c2 = acme_nonces_new(key, 2);
	struct sg_err err;
	char *n1 = acme_nonce_new(a), *n2 = acme_nonce_new(a), *nb = acme_nonce_new(b), *nc = acme_nonce_new(c1);

	T_OK(strcmp(n1, n2) != 0);
	sg_err_init(&err);
	T_OK(acme_nonce_use(a, n2, &err) == 0);
	T_OK(acme_nonce_use(a, n1, &err) == 0);
	sg_err_init(&err);
	T_OK(acme_nonce_use(a, n1, &err) != 0 && err.code == SG_ACME_BAD_NONCE); /* replay */
	sg_err_init(&err);
	T_OK(acme_nonce_use(a, nb, &err) != 0 && err.code == SG_ACME_BAD_NONCE); /* another key */
	sg_err_init(&err);
	T_OK(acme_nonce_use(c2, nc, &err) != 0 && err.code == SG_ACME_BAD_NONCE); /* same key, other node */
	sg_err_init(&err);
	T_OK(acme_nonce_use(a, "garbage!", &err) != 0 && err.code == SG_ACME_BAD_NONCE);
	{
		/* A flipped bit fails the MAC. */
		char *n3 = acme_nonce_new(a);

		n3[3] = n3[3] == 'A' ? 'B' : 'A';
		sg_err_init(&err);
		T_OK(acme_nonce_use(a, n3, &err) != 0);
		free(n3);
	}
	{
		/* Expired. */
		char *n4 = acme_nonce_new(a);

		sg_clock_advance(ACME_NONCE_TTL + 10);
		sg_err_init(&err);
		T_OK(acme_nonce_use(a, n4, &err) != 0 && err.code == SG_ACME_BAD_NONCE);
		sg_clock_advance(-(ACME_NONCE_TTL + 10));
		free(n4);
	}
	free(n1);
	free(n2);
	free(nb);
	free(nc);
	acme_nonces_free(a);
	acme_nonces_free(b);
	acme_nonces_free(c1);
	acme_nonces_free(c2);
}

/*
 * acme_jwk_to_pkey keeps imported keys: a hit must be the same key, a JWK
 * that differs in any member must not hit, the refusals still apply to a
 * cached key's JWK, and more keys than slots (collisions) stay correct,
 * also from several threads at once.
 */
#define CACHE_KEYS 300
#define CACHE_THREADS 4

static EVP_PKEY *cache_keys[CACHE_KEYS];
static json_t *cache_jwks[CACHE_KEYS];

static void *cache_worker(void *arg)
{
	size_t start = (size_t)(uintptr_t)arg, bad = 0;
	struct sg_err err;

	for (size_t r = 0; r < 3; r++)
		for (size_t i = 0; i < CACHE_KEYS; i++) {
			size_t n = (i + start * 37) % CACHE_KEYS;
			EVP_PKEY *k;

			sg_err_init(&err);
			k = acme_jwk_to_pkey(cache_jwks[n], &err);
			if (k == NULL || EVP_PKEY_eq(k, cache_keys[n]) != 1)
				bad++;
			EVP_PKEY_free(k);
		}
	return (void *)(uintptr_t)bad;
}

static void test_jwk_cache(void)
{
	struct sg_err err;
	pthread_t th[CACHE_THREADS];
	size_t bad = 0;

	sg_err_init(&err);
	for (size_t i = 0; i < CACHE_KEYS; i++) {
		cache_keys[i] = gen("p256");
		cache_jwks[i] = acme_pkey_to_jwk(cache_keys[i], &err);
	}
	{
		EVP_PKEY *a = acme_jwk_to_pkey(cache_jwks[0], &err), *b = acme_jwk_to_pkey(cache_jwks[0], &err);
		EVP_PKEY *c = acme_jwk_to_pkey(cache_jwks[1], &err);
		json_t *offcurve = json_deep_copy(cache_jwks[0]), *priv = json_deep_copy(cache_jwks[0]);
		json_t *other_y = json_deep_copy(cache_jwks[0]);

		T_OK(a != NULL && b != NULL && EVP_PKEY_eq(a, cache_keys[0]) == 1 && EVP_PKEY_eq(b, cache_keys[0]) == 1);
		T_OK(c != NULL && EVP_PKEY_eq(c, cache_keys[1]) == 1 && EVP_PKEY_eq(c, a) != 1);
		/* The cached key's JWK with another y: not a hit, and not on the curve. */
		json_object_set_new(offcurve, "y", json_string("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
		sg_err_init(&err);
		T_OK(acme_jwk_to_pkey(offcurve, &err) == NULL && err.code == SG_ACME_BAD_PUBLIC_KEY);
		json_object_set_new(priv, "d", json_string("AQAB"));
		sg_err_init(&err);
		T_OK(acme_jwk_to_pkey(priv, &err) == NULL && err.code == SG_ACME_BAD_PUBLIC_KEY);
		/* Another key's y with this key's x: another point (off the curve), never the cached key. */
		json_object_set(other_y, "y", json_object_get(cache_jwks[1], "y"));
		sg_err_init(&err);
		T_OK(acme_jwk_to_pkey(other_y, &err) == NULL);
		EVP_PKEY_free(a);
		EVP_PKEY_free(b);
		EVP_PKEY_free(c);
		json_decref(offcurve);
		json_decref(priv);
		json_decref(other_y);
	}
	for (size_t i = 0; i < CACHE_THREADS; i++)
		T_OK(pthread_create(&th[i], NULL, cache_worker, (void *)(uintptr_t)i) == 0);
	for (size_t i = 0; i < CACHE_THREADS; i++) {
		void *r = NULL;

		pthread_join(th[i], &r);
		bad += (size_t)(uintptr_t)r;
	}
	T_CHECK(bad == 0, "%zu cached imports were not the JWK's key", bad);
	for (size_t i = 0; i < CACHE_KEYS; i++) {
		EVP_PKEY_free(cache_keys[i]);
		json_decref(cache_jwks[i]);
	}
}

int main(void)
{
	test_algorithms();
	test_refusals();
	test_inner();
	test_jwk();
	test_jwk_cache();
	test_b64url();
	test_nonces();
	return t_done();
}
