/*
 * JWT core: every algorithm with freshly generated keys (PEM and JWK
 * forms), cross-algorithm and key-confusion refusals, malformed tokens,
 * claim checks, JSON pointers, bound claims, claim mappings.
 */
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdlib.h>
#include <string.h>

#include "auth/jwt.h"
#include "t.h"

/* ---------------- helpers: keys and signing ---------------- */

struct tkey {
	enum jwt_alg alg;
	const char *desc;
	EVP_PKEY *pkey;
};

static EVP_PKEY *gen_key(enum jwt_alg alg, const char *okp)
{
	switch (alg) {
	case JWT_ALG_RS256:
	case JWT_ALG_RS384:
	case JWT_ALG_RS512:
	case JWT_ALG_PS256:
	case JWT_ALG_PS384:
	case JWT_ALG_PS512:
		return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	case JWT_ALG_ES256:
		return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	case JWT_ALG_ES384:
		return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	case JWT_ALG_ES512:
		return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
	case JWT_ALG_EDDSA:
		return EVP_PKEY_Q_keygen(NULL, NULL, okp);
	default:
		return NULL;
	}
}

static const EVP_MD *md_of(enum jwt_alg a)
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

static size_t ec_coord(enum jwt_alg a)
{
	return a == JWT_ALG_ES256 ? 32 : a == JWT_ALG_ES384 ? 48 : 66;
}

/* Signs input with pkey as alg would; JOSE form for ECDSA. Caller frees. */
static unsigned char *sign_raw(EVP_PKEY *pkey, enum jwt_alg alg, const char *input, size_t *siglen)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	unsigned char *sig = NULL;
	size_t n = 0;

	if (EVP_DigestSignInit(md, &pctx, md_of(alg), NULL, pkey) != 1)
		abort();
	if (alg >= JWT_ALG_PS256 && alg <= JWT_ALG_PS512) {
		EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
		EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
		EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md_of(alg));
	}
	if (EVP_DigestSign(md, NULL, &n, (const unsigned char *)input, strlen(input)) != 1)
		abort();
	sig = malloc(n);
	if (EVP_DigestSign(md, sig, &n, (const unsigned char *)input, strlen(input)) != 1)
		abort();
	EVP_MD_CTX_free(md);
	if (alg >= JWT_ALG_ES256 && alg <= JWT_ALG_ES512) {
		const unsigned char *p = sig;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)n);
		size_t c = ec_coord(alg);
		unsigned char *raw = calloc(1, 2 * c);

		BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, (int)c);
		BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + c, (int)c);
		ECDSA_SIG_free(es);
		free(sig);
		sig = raw;
		n = 2 * c;
	}
	*siglen = n;
	return sig;
}

static char *b64s(const char *s)
{
	return sg_b64url((const unsigned char *)s, strlen(s));
}

/* header.payload.signature with a header {"alg":alg_name[,"kid":kid]} */
static char *make_jwt_hdr(EVP_PKEY *pkey, enum jwt_alg alg, const char *header, const char *payload)
{
	char *h = b64s(header), *p = b64s(payload);
	char *input = sg_xasprintf("%s.%s", h, p);
	size_t siglen = 0;
	unsigned char *sig = sign_raw(pkey, alg, input, &siglen);
	char *s = sg_b64url(sig, siglen);
	char *out = sg_xasprintf("%s.%s", input, s);

	free(h);
	free(p);
	free(input);
	free(sig);
	free(s);
	return out;
}

static char *make_jwt(EVP_PKEY *pkey, enum jwt_alg alg, const char *kid, const char *payload)
{
	char *hdr = kid != NULL ? sg_xasprintf("{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\"}", jwt_alg_name(alg), kid)
	                        : sg_xasprintf("{\"alg\":\"%s\",\"typ\":\"JWT\"}", jwt_alg_name(alg));
	char *out = make_jwt_hdr(pkey, alg, hdr, payload);

	free(hdr);
	return out;
}

static char *pub_pem(EVP_PKEY *pkey)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data;
	long n;
	char *out;

	PEM_write_bio_PUBKEY(b, pkey);
	n = BIO_get_mem_data(b, &data);
	out = sg_xstrndup(data, (size_t)n);
	BIO_free(b);
	return out;
}

static char *bn_b64(EVP_PKEY *pkey, const char *param, size_t pad)
{
	BIGNUM *bn = NULL;
	unsigned char buf[1024];
	int n;

	if (EVP_PKEY_get_bn_param(pkey, param, &bn) != 1)
		abort();
	n = pad ? BN_bn2binpad(bn, buf, (int)pad) : BN_bn2bin(bn, buf);
	BN_free(bn);
	return sg_b64url(buf, (size_t)n);
}

/* A JWK (JSON text) for the public half of pkey. */
static char *pub_jwk(EVP_PKEY *pkey, enum jwt_alg alg, const char *kid)
{
	char *a = NULL, *b = NULL, *out;

	if (EVP_PKEY_is_a(pkey, "RSA")) {
		a = bn_b64(pkey, OSSL_PKEY_PARAM_RSA_N, 0);
		b = bn_b64(pkey, OSSL_PKEY_PARAM_RSA_E, 0);
		out = sg_xasprintf("{\"kty\":\"RSA\",\"kid\":\"%s\",\"use\":\"sig\",\"n\":\"%s\",\"e\":\"%s\"}", kid, a, b);
	} else if (EVP_PKEY_is_a(pkey, "EC")) {
		const char *crv = alg == JWT_ALG_ES256 ? "P-256" : alg == JWT_ALG_ES384 ? "P-384" : "P-521";

		a = bn_b64(pkey, OSSL_PKEY_PARAM_EC_PUB_X, ec_coord(alg));
		b = bn_b64(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, ec_coord(alg));
		out = sg_xasprintf("{\"kty\":\"EC\",\"kid\":\"%s\",\"crv\":\"%s\",\"x\":\"%s\",\"y\":\"%s\"}", kid, crv, a, b);
	} else {
		unsigned char raw[64];
		size_t n = sizeof(raw);

		EVP_PKEY_get_raw_public_key(pkey, raw, &n);
		a = sg_b64url(raw, n);
		out = sg_xasprintf("{\"kty\":\"OKP\",\"kid\":\"%s\",\"crv\":\"%s\",\"x\":\"%s\"}", kid,
		                   EVP_PKEY_is_a(pkey, "ED25519") ? "Ed25519" : "Ed448", a);
	}
	free(a);
	free(b);
	return out;
}

static char *jwks_of(const char *jwk)
{
	return sg_xasprintf("{\"keys\":[%s]}", jwk);
}

/* Parse + verify; returns the error code (SG_OK on success). */
static enum sg_code check_token(const char *tok, const struct jwt_keyset *ks, const struct sg_strlist *allowed)
{
	struct jwt t;
	struct sg_err err;
	enum sg_code c = SG_OK;

	sg_err_init(&err);
	if (jwt_parse(tok, strlen(tok), &t, &err) != 0)
		return err.code;
	if (jwt_verify(&t, ks, allowed, &err) != 0)
		c = err.code;
	jwt_clear(&t);
	return c;
}

static enum sg_code parse_code(const char *tok, char *detail, size_t cap)
{
	struct jwt t;
	struct sg_err err;

	sg_err_init(&err);
	if (jwt_parse(tok, strlen(tok), &t, &err) != 0) {
		if (detail != NULL)
			snprintf(detail, cap, "%s", err.detail);
		return err.code;
	}
	jwt_clear(&t);
	return SG_OK;
}

static void keyset_pem(struct jwt_keyset *ks, EVP_PKEY *pkey)
{
	struct sg_err err;
	char *pem = pub_pem(pkey);

	sg_err_init(&err);
	if (jwt_keyset_add_pem(ks, pem, strlen(pem), &err) != 0)
		fprintf(stderr, "keyset_pem: %s\n", err.detail);
	free(pem);
}

/* ---------------- tests ---------------- */

static const char *payload = "{\"sub\":\"alice\",\"iss\":\"https://idp\",\"aud\":\"sigil\",\"exp\":4102444800}";

static void test_every_alg(void)
{
	struct {
		enum jwt_alg alg;
		const char *okp;
	} cases[] = {
		{JWT_ALG_RS256, NULL}, {JWT_ALG_RS384, NULL}, {JWT_ALG_RS512, NULL},     {JWT_ALG_PS256, NULL},
		{JWT_ALG_PS384, NULL}, {JWT_ALG_PS512, NULL}, {JWT_ALG_ES256, NULL},     {JWT_ALG_ES384, NULL},
		{JWT_ALG_ES512, NULL}, {JWT_ALG_EDDSA, "ED25519"}, {JWT_ALG_EDDSA, "ED448"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum jwt_alg alg = cases[i].alg;
		const char *name = jwt_alg_name(alg);
		EVP_PKEY *k = gen_key(alg, cases[i].okp), *other = gen_key(alg, cases[i].okp);
		struct jwt_keyset pem = {0}, jwks = {0}, wrong = {0};
		char *tok = make_jwt(k, alg, "k1", payload);
		char *jwk = pub_jwk(k, alg, "k1"), *set = jwks_of(jwk);
		struct sg_err err;
		char *bad;
		size_t n;

		sg_err_init(&err);
		T_CHECK(k != NULL && other != NULL, "keygen %s", name);
		keyset_pem(&pem, k);
		T_CHECK(pem.n == 1, "%s pem keyset", name);
		T_CHECK(jwt_keyset_add_jwks(&jwks, set, strlen(set), &err) == 0 && jwks.n == 1, "%s jwks: %s", name,
		        err.detail);
		keyset_pem(&wrong, other);
		T_CHECK(check_token(tok, &pem, NULL) == SG_OK, "%s verifies with PEM key", name);
		T_CHECK(check_token(tok, &jwks, NULL) == SG_OK, "%s verifies with JWK", name);
		T_CHECK(check_token(tok, &wrong, NULL) == SG_BAD_SIGNATURE, "%s refused with another key", name);

		/* One flipped payload character: the signature no longer covers it. */
		bad = sg_xstrdup(tok);
		n = strchr(bad, '.') - bad + 3;
		bad[n] = bad[n] == 'A' ? 'B' : 'A';
		T_CHECK(check_token(bad, &pem, NULL) != SG_OK, "%s tampered payload refused", name);
		free(bad);
		/* A flipped signature byte. */
		bad = sg_xstrdup(tok);
		n = strrchr(bad, '.') - bad + 5;
		bad[n] = bad[n] == 'A' ? 'B' : 'A';
		T_CHECK(check_token(bad, &pem, NULL) != SG_OK, "%s tampered signature refused", name);
		free(bad);
		/* A truncated signature. */
		bad = sg_xstrdup(tok);
		bad[strlen(bad) - 4] = '\0';
		T_CHECK(check_token(bad, &pem, NULL) != SG_OK, "%s truncated signature refused", name);
		free(bad);

		jwt_keyset_clear(&pem);
		jwt_keyset_clear(&jwks);
		jwt_keyset_clear(&wrong);
		free(tok);
		free(jwk);
		free(set);
		EVP_PKEY_free(k);
		EVP_PKEY_free(other);
	}
}

/* Swaps the alg of a signed token's header, keeping the signature. */
static char *realg(const char *tok, const char *newalg)
{
	char *h = sg_xasprintf("{\"alg\":\"%s\",\"typ\":\"JWT\"}", newalg);
	char *hb = b64s(h);
	char *out = sg_xasprintf("%s%s", hb, strchr(tok, '.'));

	free(h);
	free(hb);
	return out;
}

static void test_cross_alg(void)
{
	EVP_PKEY *rsa = gen_key(JWT_ALG_RS256, NULL), *p256 = gen_key(JWT_ALG_ES256, NULL),
	         *p384 = gen_key(JWT_ALG_ES384, NULL), *ed = gen_key(JWT_ALG_EDDSA, "ED25519");
	struct jwt_keyset ks_rsa = {0}, ks_p256 = {0}, ks_p384 = {0}, ks_ed = {0}, all = {0};
	char *rs = make_jwt(rsa, JWT_ALG_RS256, NULL, payload);
	char *ps = make_jwt(rsa, JWT_ALG_PS256, NULL, payload);
	char *es = make_jwt(p256, JWT_ALG_ES256, NULL, payload);
	char *edt = make_jwt(ed, JWT_ALG_EDDSA, NULL, payload);
	char *t;
	struct sg_strlist allowed = {0};

	keyset_pem(&ks_rsa, rsa);
	keyset_pem(&ks_p256, p256);
	keyset_pem(&ks_p384, p384);
	keyset_pem(&ks_ed, ed);
	keyset_pem(&all, rsa);
	keyset_pem(&all, p256);
	keyset_pem(&all, ed);

	T_OK(check_token(rs, &ks_p256, NULL) == SG_BAD_SIGNATURE); /* RSA alg, EC key: no key fits */
	T_OK(check_token(es, &ks_rsa, NULL) == SG_BAD_SIGNATURE);
	T_OK(check_token(es, &ks_p384, NULL) == SG_BAD_SIGNATURE); /* ES256 never verifies with a P-384 key */
	T_OK(check_token(edt, &ks_rsa, NULL) == SG_BAD_SIGNATURE);
	T_OK(check_token(rs, &all, NULL) == SG_OK);                 /* the right key among several */
	T_OK(check_token(es, &all, NULL) == SG_OK);
	T_OK(check_token(edt, &all, NULL) == SG_OK);

	/* Relabelled algorithms: PKCS#1 v1.5 signature presented as PSS and back, SHA-256 as SHA-384. */
	t = realg(rs, "PS256");
	T_OK(check_token(t, &ks_rsa, NULL) == SG_BAD_SIGNATURE);
	free(t);
	t = realg(ps, "RS256");
	T_OK(check_token(t, &ks_rsa, NULL) == SG_BAD_SIGNATURE);
	free(t);
	t = realg(rs, "RS384");
	T_OK(check_token(t, &ks_rsa, NULL) == SG_BAD_SIGNATURE);
	free(t);
	t = realg(es, "ES384");
	T_OK(check_token(t, &all, NULL) == SG_BAD_SIGNATURE);
	free(t);

	/* jwt_supported_algs */
	sg_strlist_add(&allowed, "ES256");
	T_OK(check_token(rs, &ks_rsa, &allowed) == SG_BAD_SIGNATURE);
	T_OK(check_token(es, &ks_p256, &allowed) == SG_OK);
	sg_strlist_clear(&allowed);

	jwt_keyset_clear(&ks_rsa);
	jwt_keyset_clear(&ks_p256);
	jwt_keyset_clear(&ks_p384);
	jwt_keyset_clear(&ks_ed);
	jwt_keyset_clear(&all);
	free(rs);
	free(ps);
	free(es);
	free(edt);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(p256);
	EVP_PKEY_free(p384);
	EVP_PKEY_free(ed);
}

/* alg none and HS256 signed with the RSA public key PEM as the HMAC secret. */
static void test_none_and_hmac_confusion(void)
{
	EVP_PKEY *rsa = gen_key(JWT_ALG_RS256, NULL);
	char *pem = pub_pem(rsa);
	char *h = b64s("{\"alg\":\"HS256\",\"typ\":\"JWT\"}"), *p = b64s(payload);
	char *input = sg_xasprintf("%s.%s", h, p);
	unsigned char mac[EVP_MAX_MD_SIZE];
	size_t maclen = 0;
	char *macb, *tok, *none, *nh;
	char detail[SG_ERR_DETAIL_MAX];
	struct jwt_keyset ks = {0};

	keyset_pem(&ks, rsa);
	EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, pem, strlen(pem), (const unsigned char *)input, strlen(input), mac,
	          sizeof(mac), &maclen);
	macb = sg_b64url(mac, maclen);
	tok = sg_xasprintf("%s.%s", input, macb);
	T_OK(parse_code(tok, detail, sizeof(detail)) == SG_BAD_REQUEST);
	T_OK(strstr(detail, "HMAC") != NULL);
	T_OK(check_token(tok, &ks, NULL) == SG_BAD_REQUEST);

	nh = b64s("{\"alg\":\"none\"}");
	none = sg_xasprintf("%s.%s.", nh, p);
	T_OK(parse_code(none, detail, sizeof(detail)) == SG_BAD_REQUEST);
	T_OK(strstr(detail, "none") != NULL);
	free(none);
	none = sg_xasprintf("%s.%s.%s", nh, p, macb); /* none with a signature part */
	T_OK(parse_code(none, NULL, 0) == SG_BAD_REQUEST);
	free(none);
	free(nh);
	nh = b64s("{\"alg\":\"None\"}");
	none = sg_xasprintf("%s.%s.%s", nh, p, macb);
	T_OK(parse_code(none, NULL, 0) == SG_BAD_REQUEST);
	T_OK(jwt_alg_from_name("none") == JWT_ALG_UNKNOWN && jwt_alg_from_name("HS256") == JWT_ALG_UNKNOWN &&
	     jwt_alg_from_name("rs256") == JWT_ALG_UNKNOWN);

	jwt_keyset_clear(&ks);
	free(none);
	free(nh);
	free(pem);
	free(h);
	free(p);
	free(input);
	free(macb);
	free(tok);
	EVP_PKEY_free(rsa);
}

static void test_malformed(void)
{
	EVP_PKEY *k = gen_key(JWT_ALG_ES256, NULL);
	char *good = make_jwt(k, JWT_ALG_ES256, NULL, payload);
	char *t;
	char *big;
	const char *bads[] = {
		"", "abc", "a.b", "a.b.c.d", "a.b.c.d.e", ".eyJ9.c2ln", "eyJhbGciOiJFUzI1NiJ9..c2ln",
		"eyJhbGciOiJFUzI1NiJ9.e30.", /* empty signature */
		"eyJhbGciOiJFUzI1NiJ9=.e30.c2ln", /* padding */
		"eyJhbGciOiJFUzI1NiJ9.e30.c2l+", /* standard alphabet */
		"e30.e30.c2ln",                  /* no alg */
		"eyJhbGciOjF9.e30.c2ln",         /* alg not a string */
		"WzFd.e30.c2ln",                 /* header is an array */
		"eyJhbGciOiJFUzI1NiJ9.WzFd.c2ln", /* payload is an array */
		"eyJhbGciOiJFUzI1NiJ9.bm90IGpzb24.c2ln", /* payload not JSON */
		"eyJhbGciOiJFUzI1NiJ9.e30.c2l",   /* non-canonical: "c2k" has zero trailing bits */
	};

	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++)
		T_CHECK(parse_code(bads[i], NULL, 0) == SG_BAD_REQUEST, "malformed #%zu '%s' refused", i, bads[i]);
	T_OK(parse_code(good, NULL, 0) == SG_OK);

	/* Duplicate members in header and payload. */
	{
		char *h = b64s("{\"alg\":\"ES256\",\"alg\":\"none\"}"), *p = b64s("{\"sub\":\"a\",\"sub\":\"b\"}");
		char *h2 = b64s("{\"alg\":\"ES256\"}");

		t = sg_xasprintf("%s.e30.c2ln", h);
		T_OK(parse_code(t, NULL, 0) == SG_BAD_REQUEST);
		free(t);
		t = sg_xasprintf("%s.%s.c2ln", h2, p);
		T_OK(parse_code(t, NULL, 0) == SG_BAD_REQUEST);
		free(t);
		free(h);
		free(p);
		free(h2);
	}
	/* crit extensions, b64=false (RFC 7797) rides on crit. */
	{
		char *h = b64s("{\"alg\":\"ES256\",\"b64\":false,\"crit\":[\"b64\"]}");

		t = sg_xasprintf("%s.e30.c2ln", h);
		T_OK(parse_code(t, NULL, 0) == SG_BAD_REQUEST);
		free(t);
		free(h);
	}
	/* kid must be a string. */
	{
		char *h = b64s("{\"alg\":\"ES256\",\"kid\":5}");

		t = sg_xasprintf("%s.e30.c2ln", h);
		T_OK(parse_code(t, NULL, 0) == SG_BAD_REQUEST);
		free(t);
		free(h);
	}
	/* Deep nesting in the payload. */
	{
		char deep[200] = {0};
		char *p, *h = b64s("{\"alg\":\"ES256\"}");

		memset(deep, '[', 40);
		memset(deep + 40, ']', 40);
		t = sg_xasprintf("{\"a\":%s}", deep);
		p = b64s(t);
		free(t);
		t = sg_xasprintf("%s.%s.c2ln", h, p);
		T_OK(parse_code(t, NULL, 0) == SG_BAD_REQUEST);
		free(t);
		free(p);
		free(h);
	}
	/* Over the size cap. */
	big = malloc(JWT_MAX_BYTES + 10);
	memset(big, 'A', JWT_MAX_BYTES + 9);
	big[JWT_MAX_BYTES + 9] = '\0';
	big[10] = '.';
	big[20] = '.';
	T_OK(parse_code(big, NULL, 0) == SG_BAD_REQUEST);
	free(big);
	/* An embedded NUL. */
	{
		struct jwt tt;
		struct sg_err err;
		char buf[16] = "ab.c\0d.e";

		sg_err_init(&err);
		T_OK(jwt_parse(buf, 8, &tt, &err) == -1 && err.code == SG_BAD_REQUEST);
	}
	free(good);
	EVP_PKEY_free(k);
}

static void test_kid_selection(void)
{
	EVP_PKEY *a = gen_key(JWT_ALG_ES256, NULL), *b = gen_key(JWT_ALG_ES256, NULL);
	char *ja = pub_jwk(a, JWT_ALG_ES256, "ka"), *jb = pub_jwk(b, JWT_ALG_ES256, "kb");
	char *set = sg_xasprintf("{\"keys\":[%s,%s]}", ja, jb);
	struct jwt_keyset ks = {0};
	struct sg_err err;
	char *tb = make_jwt(b, JWT_ALG_ES256, "kb", payload);
	char *tunk = make_jwt(b, JWT_ALG_ES256, "nope", payload);
	char *twrong = make_jwt(b, JWT_ALG_ES256, "ka", payload);
	char *tnokid = make_jwt(b, JWT_ALG_ES256, NULL, payload);

	sg_err_init(&err);
	T_OK(jwt_keyset_add_jwks(&ks, set, strlen(set), &err) == 0 && ks.n == 2);
	T_OK(check_token(tb, &ks, NULL) == SG_OK);
	T_OK(check_token(tunk, &ks, NULL) == SG_BAD_SIGNATURE);
	T_OK(check_token(twrong, &ks, NULL) == SG_BAD_SIGNATURE); /* kid names a's key: b's signature fails */
	T_OK(check_token(tnokid, &ks, NULL) == SG_OK);            /* no kid: every fitting key is tried */

	jwt_keyset_clear(&ks);
	free(ja);
	free(jb);
	free(set);
	free(tb);
	free(tunk);
	free(twrong);
	free(tnokid);
	EVP_PKEY_free(a);
	EVP_PKEY_free(b);
}

static int jwks_rc(const char *doc, size_t *n, char *detail, size_t cap)
{
	struct jwt_keyset ks = {0};
	struct sg_err err;
	int rc;

	sg_err_init(&err);
	rc = jwt_keyset_add_jwks(&ks, doc, strlen(doc), &err);
	if (n != NULL)
		*n = ks.n;
	if (detail != NULL)
		snprintf(detail, cap, "%s", err.detail);
	jwt_keyset_clear(&ks);
	return rc;
}

static void test_jwk_parsing(void)
{
	EVP_PKEY *ec = gen_key(JWT_ALG_ES256, NULL), *rsa = gen_key(JWT_ALG_RS256, NULL);
	EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	char *jec = pub_jwk(ec, JWT_ALG_ES256, "e"), *jrsa = pub_jwk(rsa, JWT_ALG_RS256, "r");
	char *jsmall = pub_jwk(small, JWT_ALG_RS256, "s");
	char *doc, *x, *mod;
	char detail[SG_ERR_DETAIL_MAX];
	size_t n = 0;

	/* An encryption key and a symmetric key are skipped; the signature key stays. */
	doc = sg_xasprintf("{\"keys\":[{\"kty\":\"RSA\",\"use\":\"enc\",\"n\":\"AQAB\",\"e\":\"AQAB\"},"
	                   "{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"},%s]}",
	                   jec);
	T_OK(jwks_rc(doc, &n, NULL, 0) == 0 && n == 1);
	free(doc);
	/* Only skippable keys: no usable key. */
	T_OK(jwks_rc("{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}]}", NULL, NULL, 0) == -1);
	T_OK(jwks_rc("{\"keys\":[]}", NULL, NULL, 0) == -1);
	T_OK(jwks_rc("{\"nokeys\":1}", NULL, NULL, 0) == -1);
	T_OK(jwks_rc("not json", NULL, NULL, 0) == -1);
	/* A JWK declaring HS256 is skipped, a private member fails the set. */
	T_OK(jwks_rc("{\"keys\":[{\"kty\":\"oct\",\"alg\":\"HS256\",\"k\":\"c2VjcmV0\"}]}", NULL, NULL, 0) == -1);
	doc = sg_xasprintf("{\"keys\":[%.*s,\"d\":\"AAAA\"}]}", (int)strlen(jec) - 1, jec);
	T_OK(jwks_rc(doc, NULL, detail, sizeof(detail)) == -1 && strstr(detail, "private") != NULL);
	free(doc);
	/* RSA below 2048 bits. */
	doc = jwks_of(jsmall);
	T_OK(jwks_rc(doc, NULL, detail, sizeof(detail)) == -1 && strstr(detail, "1024") != NULL);
	free(doc);
	doc = jwks_of(jrsa);
	T_OK(jwks_rc(doc, &n, NULL, 0) == 0 && n == 1);
	free(doc);
	/* An EC point off the curve: y changed. */
	mod = sg_xstrdup(jec);
	x = strstr(mod, "\"y\":\"") + 5;
	x[3] = x[3] == 'A' ? 'B' : 'A';
	doc = jwks_of(mod);
	T_OK(jwks_rc(doc, NULL, NULL, 0) == -1);
	free(doc);
	free(mod);
	/* A short coordinate. */
	mod = sg_xstrdup(jec);
	x = strstr(mod, "\"x\":\"") + 5;
	memmove(x, x + 4, strlen(x + 4) + 1);
	doc = jwks_of(mod);
	T_OK(jwks_rc(doc, NULL, NULL, 0) == -1);
	free(doc);
	free(mod);
	/* Unknown curve, alg that contradicts the key. */
	T_OK(jwks_rc("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-192\",\"x\":\"AA\",\"y\":\"AA\"}]}", NULL, NULL, 0) == -1);
	mod = sg_xasprintf("%.*s,\"alg\":\"RS256\"}", (int)strlen(jec) - 1, jec);
	doc = jwks_of(mod);
	T_OK(jwks_rc(doc, NULL, NULL, 0) == -1);
	free(doc);
	free(mod);
	/* An X25519 key is not a signature key: skipped. */
	T_OK(jwks_rc("{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"X25519\",\"x\":\"AAAA\"}]}", NULL, NULL, 0) == -1);
	/* A JWK alg narrows the key: an RSA key marked PS256 does not verify RS256. */
	{
		struct jwt_keyset ks = {0};
		struct sg_err err;
		char *tagged = sg_xasprintf("{\"keys\":[%.*s,\"alg\":\"PS256\"}]}", (int)strlen(jrsa) - 1, jrsa);
		char *rs = make_jwt(rsa, JWT_ALG_RS256, NULL, payload), *ps = make_jwt(rsa, JWT_ALG_PS256, NULL, payload);

		sg_err_init(&err);
		T_OK(jwt_keyset_add_jwks(&ks, tagged, strlen(tagged), &err) == 0);
		T_OK(check_token(rs, &ks, NULL) == SG_BAD_SIGNATURE);
		T_OK(check_token(ps, &ks, NULL) == SG_OK);
		jwt_keyset_clear(&ks);
		free(tagged);
		free(rs);
		free(ps);
	}
	/* Too many keys. */
	{
		size_t cap = (JWT_MAX_KEYS + 1) * (strlen(jec) + 1) + 32, o;
		char *many = malloc(cap);

		o = (size_t)snprintf(many, cap, "{\"keys\":[");
		for (int i = 0; i <= JWT_MAX_KEYS; i++)
			o += (size_t)snprintf(many + o, cap - o, "%s%s", i ? "," : "", jec);
		snprintf(many + o, cap - o, "]}");
		T_OK(jwks_rc(many, NULL, NULL, 0) == -1);
		free(many);
	}
	free(jec);
	free(jrsa);
	free(jsmall);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(small);
}

static void test_pem_parsing(void)
{
	EVP_PKEY *a = gen_key(JWT_ALG_ES384, NULL), *b = gen_key(JWT_ALG_RS256, NULL);
	EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	char *pa = pub_pem(a), *pb = pub_pem(b), *ps = pub_pem(small);
	char *two = sg_xasprintf("%s%s", pa, pb);
	struct jwt_keyset ks = {0};
	struct sg_err err;
	BIO *bio = BIO_new(BIO_s_mem());
	char *priv;
	long n;

	sg_err_init(&err);
	T_OK(jwt_keyset_add_pem(&ks, two, strlen(two), &err) == 0 && ks.n == 2);
	jwt_keyset_clear(&ks);
	sg_err_init(&err);
	T_OK(jwt_keyset_add_pem(&ks, ps, strlen(ps), &err) == -1 && err.code == SG_BAD_REQUEST);
	jwt_keyset_clear(&ks);
	sg_err_init(&err);
	T_OK(jwt_keyset_add_pem(&ks, "garbage", 7, &err) == -1 && ks.n == 0);
	sg_err_init(&err);
	T_OK(jwt_keyset_add_pem(&ks, "", 0, &err) == -1);
	/* A private key is refused without its content appearing in the error. */
	PEM_write_bio_PrivateKey(bio, a, NULL, NULL, 0, NULL, NULL);
	n = BIO_get_mem_data(bio, &priv);
	sg_err_init(&err);
	T_OK(jwt_keyset_add_pem(&ks, priv, (size_t)n, &err) == -1 && strstr(err.detail, "private") != NULL &&
	     strstr(err.detail, "MII") == NULL);
	jwt_keyset_clear(&ks);
	/* Damaged base64 inside a block. */
	{
		char *dmg = sg_xstrdup(pa);

		dmg[40] = '*';
		sg_err_init(&err);
		T_OK(jwt_keyset_add_pem(&ks, dmg, strlen(dmg), &err) == -1);
		free(dmg);
	}
	BIO_free(bio);
	free(pa);
	free(pb);
	free(ps);
	free(two);
	EVP_PKEY_free(a);
	EVP_PKEY_free(b);
	EVP_PKEY_free(small);
}

static int claims_rc(const char *claims_json, const struct jwt_expect *e, char *detail, size_t cap)
{
	json_t *c = json_loads(claims_json, 0, NULL);
	struct sg_err err;
	int rc;

	sg_err_init(&err);
	rc = jwt_claims_validate(c, e, &err);
	if (detail != NULL)
		snprintf(detail, cap, "%s", err.detail);
	json_decref(c);
	return rc;
}

static void test_claims(void)
{
	struct sg_strlist aud = {0};
	struct jwt_expect e = {.now = 1000000, .leeway = 60, .exp_leeway = 150, .nbf_leeway = 150};
	char d[SG_ERR_DETAIL_MAX];

	T_OK(claims_rc("{\"exp\":1000100}", &e, NULL, 0) == 0);
	T_OK(claims_rc("{\"exp\":999950}", &e, NULL, 0) == 0);   /* expired 50 s ago: inside the leeway */
	T_OK(claims_rc("{\"exp\":999900}", &e, d, sizeof(d)) == -1 && strstr(d, "expired") != NULL);
	T_OK(claims_rc("{\"exp\":1000100,\"nbf\":1000050}", &e, NULL, 0) == 0);
	T_OK(claims_rc("{\"exp\":1000900,\"nbf\":1000500}", &e, d, sizeof(d)) == -1 && strstr(d, "nbf") != NULL);
	T_OK(claims_rc("{\"exp\":1000900,\"iat\":1000500}", &e, d, sizeof(d)) == -1 && strstr(d, "iat") != NULL);
	T_OK(claims_rc("{\"exp\":\"1000100\"}", &e, NULL, 0) == -1);
	T_OK(claims_rc("{\"exp\":1000100.5}", &e, NULL, 0) == 0);
	T_OK(claims_rc("{}", &e, NULL, 0) == 0); /* not required here (Kubernetes legacy tokens) */
	e.require_time = true;
	T_OK(claims_rc("{}", &e, d, sizeof(d)) == -1 && strstr(d, "no issue time") != NULL);
	/* Without exp, Vault's rule: max(iat, nbf) + exp_leeway, plus the skew leeway. */
	T_OK(claims_rc("{\"iat\":999900}", &e, NULL, 0) == 0);
	T_OK(claims_rc("{\"iat\":999700}", &e, NULL, 0) == -1);
	T_OK(claims_rc("{\"iat\":999000,\"nbf\":999900}", &e, NULL, 0) == 0);
	e.require_time = false;

	e.issuer = "https://idp";
	T_OK(claims_rc("{\"iss\":\"https://idp\"}", &e, NULL, 0) == 0);
	T_OK(claims_rc("{\"iss\":\"https://evil\"}", &e, d, sizeof(d)) == -1 && strstr(d, "iss") != NULL);
	T_OK(claims_rc("{}", &e, NULL, 0) == -1);
	e.issuer = NULL;
	e.subject = "alice";
	T_OK(claims_rc("{\"sub\":\"alice\"}", &e, NULL, 0) == 0);
	T_OK(claims_rc("{\"sub\":\"mallory\"}", &e, NULL, 0) == -1);
	T_OK(claims_rc("{\"sub\":5}", &e, NULL, 0) == -1);
	e.subject = NULL;

	/* Audiences. */
	e.aud_strict = true;
	T_OK(claims_rc("{}", &e, NULL, 0) == 0);
	T_OK(claims_rc("{\"aud\":\"x\"}", &e, d, sizeof(d)) == -1 && strstr(d, "no audiences bound") != NULL);
	e.aud_strict = false;
	T_OK(claims_rc("{\"aud\":\"x\"}", &e, NULL, 0) == 0);
	sg_strlist_add(&aud, "sigil");
	sg_strlist_add(&aud, "other");
	e.audiences = &aud;
	T_OK(claims_rc("{\"aud\":\"sigil\"}", &e, NULL, 0) == 0);
	T_OK(claims_rc("{\"aud\":[\"a\",\"other\"]}", &e, NULL, 0) == 0);
	T_OK(claims_rc("{\"aud\":[\"a\",\"b\"]}", &e, d, sizeof(d)) == -1 && strstr(d, "bound audience") != NULL);
	T_OK(claims_rc("{}", &e, NULL, 0) == -1);
	T_OK(claims_rc("{\"aud\":[\"sigil\",5]}", &e, NULL, 0) == -1);
	T_OK(claims_rc("{\"aud\":{\"sigil\":1}}", &e, NULL, 0) == -1);
	sg_strlist_clear(&aud);
}

static void test_pointer_and_bound(void)
{
	json_t *c = json_loads("{\"sub\":\"u1\",\"groups\":[\"dev\",\"ops\"],\"a\":{\"b\":{\"c\":\"deep\"}},"
	                       "\"a/b\":\"slash\",\"x~y\":\"tilde\",\"admin\":true,\"n\":42,\"f\":1.5,"
	                       "\"project_path\":\"team/app\",\"obj\":{}}",
	                       0, NULL);
	json_t *b;
	json_t *meta = json_object();
	struct sg_err err;
	struct sg_strlist l = {0};
	const char *s = NULL;

	T_STREQ(json_string_value(jwt_claim_get(c, "sub")), "u1");
	T_STREQ(json_string_value(jwt_claim_get(c, "/a/b/c")), "deep");
	T_STREQ(json_string_value(jwt_claim_get(c, "/groups/1")), "ops");
	T_STREQ(json_string_value(jwt_claim_get(c, "/a~1b")), "slash");
	T_STREQ(json_string_value(jwt_claim_get(c, "/x~0y")), "tilde");
	T_OK(jwt_claim_get(c, "/groups/2") == NULL);
	T_OK(jwt_claim_get(c, "/groups/01") == NULL);
	T_OK(jwt_claim_get(c, "/groups/-1") == NULL);
	T_OK(jwt_claim_get(c, "/x~2y") == NULL);
	T_OK(jwt_claim_get(c, "/sub/x") == NULL);
	T_OK(jwt_claim_get(c, "missing") == NULL);

#define BOUND(json, glob, want)                                                                  \
	do {                                                                                     \
		b = json_loads(json, 0, NULL);                                                   \
		sg_err_init(&err);                                                               \
		T_CHECK((jwt_bound_claims_check(c, b, glob, &err) == 0) == (want), "bound %s", json); \
		json_decref(b);                                                                  \
	} while (0)
	BOUND("{\"sub\":\"u1\"}", false, true);
	BOUND("{\"sub\":\"u2\"}", false, false);
	BOUND("{\"sub\":[\"u2\",\"u1\"]}", false, true);
	BOUND("{\"groups\":\"ops\"}", false, true);
	BOUND("{\"groups\":[\"qa\",\"dev\"]}", false, true);
	BOUND("{\"groups\":[\"qa\"]}", false, false);
	BOUND("{\"/a/b/c\":\"deep\"}", false, true);
	BOUND("{\"/a/b/c\":\"de*\"}", false, false);
	BOUND("{\"/a/b/c\":\"de*\"}", true, true);
	BOUND("{\"project_path\":\"team/*\"}", true, true);
	BOUND("{\"project_path\":\"other/*\"}", true, false);
	BOUND("{\"admin\":true}", false, true);
	BOUND("{\"admin\":false}", false, false);
	BOUND("{\"admin\":\"true\"}", false, false);
	BOUND("{\"n\":42}", false, true);
	BOUND("{\"n\":43}", false, false);
	BOUND("{\"missing\":\"x\"}", false, false);
	BOUND("{\"obj\":\"x\"}", false, false);
	BOUND("{\"sub\":\"u1\",\"groups\":\"nope\"}", false, false);
	BOUND("{}", false, true);
#undef BOUND

	b = json_loads("{\"a\":[\"x\",1,true],\"b\":\"y\"}", 0, NULL);
	sg_err_init(&err);
	T_OK(jwt_bound_claims_validate(b, &err) == 0);
	json_decref(b);
	b = json_loads("{\"a\":{\"x\":1}}", 0, NULL);
	T_OK(jwt_bound_claims_validate(b, &err) == -1);
	json_decref(b);
	b = json_loads("{\"a\":[]}", 0, NULL);
	sg_err_init(&err);
	T_OK(jwt_bound_claims_validate(b, &err) == -1);
	json_decref(b);
	b = json_loads("{\"a\":1.5}", 0, NULL);
	sg_err_init(&err);
	T_OK(jwt_bound_claims_validate(b, &err) == -1);
	json_decref(b);

	/* claim_mappings */
	b = json_loads("{\"sub\":\"user\",\"/a/b/c\":\"level\",\"admin\":\"is_admin\",\"n\":\"num\",\"nope\":\"x\"}", 0,
	               NULL);
	sg_err_init(&err);
	T_OK(jwt_claim_mappings_apply(c, b, meta, &err) == 0);
	T_STREQ(json_string_value(json_object_get(meta, "user")), "u1");
	T_STREQ(json_string_value(json_object_get(meta, "level")), "deep");
	T_STREQ(json_string_value(json_object_get(meta, "is_admin")), "true");
	T_STREQ(json_string_value(json_object_get(meta, "num")), "42");
	T_OK(json_object_get(meta, "x") == NULL);
	json_decref(b);
	b = json_loads("{\"groups\":\"g\"}", 0, NULL);
	sg_err_init(&err);
	T_OK(jwt_claim_mappings_apply(c, b, meta, &err) == -1 && err.code == SG_BAD_REQUEST);
	json_decref(b);

	/* user_claim and groups_claim */
	sg_err_init(&err);
	T_OK(jwt_claim_string(c, "sub", &s, &err) == 0 && strcmp(s, "u1") == 0);
	T_OK(jwt_claim_string(c, "n", &s, &err) == -1);
	sg_err_init(&err);
	T_OK(jwt_claim_string(c, "missing", &s, &err) == -1 && strstr(err.detail, "not found") != NULL);
	sg_err_init(&err);
	T_OK(jwt_claim_strlist(c, "groups", &l, &err) == 0 && l.n == 2 && strcmp(l.v[1], "ops") == 0);
	T_OK(jwt_claim_strlist(c, "sub", &l, &err) == 0 && l.n == 1);
	T_OK(jwt_claim_strlist(c, "n", &l, &err) == -1);
	sg_err_init(&err);
	T_OK(jwt_claim_strlist(c, "/a", &l, &err) == -1);
	sg_strlist_clear(&l);
	{
		json_t *mixed = json_loads("{\"g\":[\"a\",\"\",3]}", 0, NULL), *empt = json_loads("{\"g\":[\"a\",\"\"]}", 0, NULL);

		sg_err_init(&err);
		T_OK(jwt_claim_strlist(mixed, "g", &l, &err) == -1 && l.n == 0);
		sg_err_init(&err);
		T_OK(jwt_claim_strlist(empt, "g", &l, &err) == 0 && l.n == 1);
		sg_strlist_clear(&l);
		json_decref(mixed);
		json_decref(empt);
	}
	json_decref(meta);
	json_decref(c);
}

static void test_glob_b64(void)
{
	unsigned char *out = NULL;
	size_t n = 0;
	char *e;

	T_OK(jwt_glob_match("*", ""));
	T_OK(jwt_glob_match("*", "anything"));
	T_OK(jwt_glob_match("web-*", "web-1"));
	T_OK(!jwt_glob_match("web-*", "api-1"));
	T_OK(jwt_glob_match("*-prod", "team-prod"));
	T_OK(!jwt_glob_match("*-prod", "team-prod-x"));
	T_OK(jwt_glob_match("a*b*c", "axxbyyc"));
	T_OK(!jwt_glob_match("a*b*c", "axxbyy"));
	T_OK(!jwt_glob_match("foo*x", "foo"));
	T_OK(jwt_glob_match("exact", "exact"));
	T_OK(!jwt_glob_match("exact", "exactly"));

	T_OK(sg_b64url_decode("", 0, &out, &n) == 0 && n == 0);
	free(out);
	T_OK(sg_b64url_decode("_-8", 3, &out, &n) == 0 && n == 2 && out[0] == 0xff && out[1] == 0xef);
	free(out);
	T_OK(sg_b64url_decode("a", 1, &out, &n) == -1);
	T_OK(sg_b64url_decode("ab==", 4, &out, &n) == -1);
	T_OK(sg_b64url_decode("ab+/", 4, &out, &n) == -1);
	T_OK(sg_b64url_decode("QR", 2, &out, &n) == -1); /* 'R' leaves non-zero bits */
	T_OK(sg_b64url_decode("QQ", 2, &out, &n) == 0 && n == 1 && out[0] == 'A');
	free(out);
	e = sg_b64url((const unsigned char *)"\xff\xef\xfe", 3);
	T_STREQ(e, "_-_-");
	free(e);
	e = sg_b64url((const unsigned char *)"A", 1);
	T_STREQ(e, "QQ");
	free(e);
}

int main(void)
{
	test_every_alg();
	test_cross_alg();
	test_none_and_hmac_confusion();
	test_malformed();
	test_kid_selection();
	test_jwk_parsing();
	test_pem_parsing();
	test_claims();
	test_pointer_and_bound();
	test_glob_b64();
	ERR_clear_error();
	return t_done();
}
