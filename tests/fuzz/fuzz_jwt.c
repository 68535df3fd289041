/*
 * libFuzzer target for the JWS/JWK parsers of auth/jwt.c. The first byte
 * picks the parser: 0 compact JWS (jwt_parse, then a verification attempt
 * against a fixed key set), 1 JWKS document, 2 PEM key list, 3 claims JSON
 * through the claim checks, JSON pointers and bound claims, 4 TokenReview
 * answer (auth/kubernetes.c). Seed corpus: tests/fuzz/corpus/jwt/.
 */
#include <openssl/err.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/jwt.h"
#include "auth/kubernetes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A fixed P-256 key for verification attempts. */
static const char jwks_fixed[] =
	"{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"k\","
	"\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\",\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}]}";

static void claims_paths(const json_t *claims)
{
	static const char *const names[] = {"sub", "/a/b", "/groups/0", "/a~1b", "/x~0y/1", "/", "//", "/0"};
	json_t *bound = json_pack("{s:s, s:[s,b,i]}", "/a/b", "x*", "groups", "dev", 1, 7);
	json_t *maps = json_pack("{s:s, s:s}", "sub", "user", "/a/b", "ab");
	json_t *meta = json_object();
	struct sg_strlist l = {0}, aud = {0};
	struct jwt_expect e = {.now = 1700000000, .leeway = 60, .exp_leeway = 150, .nbf_leeway = 150,
	                       .require_time = true, .issuer = "iss", .aud_strict = true};
	struct sg_err err;
	const char *s;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		(void)jwt_claim_get(claims, names[i]);
	sg_err_init(&err);
	(void)jwt_bound_claims_check(claims, bound, true, &err);
	sg_err_init(&err);
	(void)jwt_claim_mappings_apply(claims, maps, meta, &err);
	sg_err_init(&err);
	(void)jwt_claim_strlist(claims, "groups", &l, &err);
	sg_err_init(&err);
	(void)jwt_claim_string(claims, "sub", &s, &err);
	sg_err_init(&err);
	(void)jwt_claims_validate(claims, &e, &err);
	sg_strlist_add(&aud, "a");
	e.audiences = &aud;
	sg_err_init(&err);
	(void)jwt_claims_validate(claims, &e, &err);
	sg_strlist_clear(&aud);
	sg_strlist_clear(&l);
	json_decref(meta);
	json_decref(maps);
	json_decref(bound);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sg_err err;
	struct jwt t;
	struct jwt_keyset ks = {0};
	const char *p;
	size_t n;

	if (size < 1)
		return 0;
	p = (const char *)data + 1;
	n = size - 1;
	sg_err_init(&err);
	switch (data[0] % 5) {
	case 0:
		if (jwt_parse(p, n, &t, &err) == 0) {
			if (jwt_keyset_add_jwks(&ks, jwks_fixed, strlen(jwks_fixed), &err) == 0) {
				sg_err_init(&err);
				(void)jwt_verify(&t, &ks, NULL, &err);
			}
			claims_paths(t.claims);
			jwt_clear(&t);
		}
		break;
	case 1:
		(void)jwt_keyset_add_jwks(&ks, p, n, &err);
		break;
	case 2:
		(void)jwt_keyset_add_pem(&ks, p, n, &err);
		break;
	case 3: {
		json_error_t jerr;
		json_t *j = json_loadb(p, n, JSON_REJECT_DUPLICATES, &jerr);

		if (json_is_object(j)) {
			struct k8s_sa sa;

			claims_paths(j);
			sg_err_init(&err);
			if (k8s_sa_from_claims(j, &sa, &err) == 0)
				k8s_sa_clear(&sa);
			sg_err_init(&err);
			(void)jwt_bound_claims_validate(j, &err);
		}
		json_decref(j);
		break;
	}
	case 4: {
		struct k8s_review rv;

		if (k8s_review_parse(p, n, &rv, &err) == 0)
			k8s_review_clear(&rv);
		break;
	}
	}
	jwt_keyset_clear(&ks);
	ERR_clear_error();
	return 0;
}
