#ifndef SG_AUTH_JWT_H
#define SG_AUTH_JWT_H

/*
 * JWS/JWT verification (RFC 7515, 7519) with public keys only (RFC 7518
 * RS*, PS*, ES*; RFC 8037 EdDSA), JWK/JWKS parsing (RFC 7517) and the claim
 * checks Vault's JWT and Kubernetes auth methods make. Pure code: no
 * network, no store. The algorithm comes from the token but the key decides
 * what it may verify: "none" and every HMAC algorithm are refused at parse
 * time, so a public key can never be used as an HMAC secret
 * (RFC 8725 3.1, 3.2).
 */

#include <jansson.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/jose.h"
#include "common/util.h"

#define JWT_MAX_BYTES (64u << 10)     /* a presented compact JWT (IdP tokens with many groups are large) */
#define JWT_MAX_JSON_DEPTH 16          /* header and payload nesting */
#define JWT_MAX_KEYS 64                /* keys in one key set (PEM list or JWKS) */
#define JWT_MAX_JWKS_BYTES (256u << 10)
#define JWT_MAX_PEM_BYTES (64u << 10)  /* one PEM list */
#define JWT_MAX_GROUPS 1024            /* entries taken from a groups claim */
#define JWT_MAX_CLAIM_MAPPINGS 64
#define JWT_MAX_BOUND_CLAIMS 64
#define JWT_RSA_MIN_BITS 2048          /* RFC 7518 3.3: 2048 or larger */
#define JWT_RSA_MAX_BITS 16384         /* verification cost cap */

enum jwt_alg {
	JWT_ALG_UNKNOWN = 0,
	JWT_ALG_RS256,
	JWT_ALG_RS384,
	JWT_ALG_RS512,
	JWT_ALG_PS256,
	JWT_ALG_PS384,
	JWT_ALG_PS512,
	JWT_ALG_ES256,
	JWT_ALG_ES384,
	JWT_ALG_ES512,
	JWT_ALG_EDDSA,
	JWT_ALG_COUNT
};
/* "RS256" ... "EdDSA"; NULL for JWT_ALG_UNKNOWN. */
const char *jwt_alg_name(enum jwt_alg a);
/* Case-sensitive (RFC 7515 4.1.1); JWT_ALG_UNKNOWN for "none", HS*, and anything else. */
enum jwt_alg jwt_alg_from_name(const char *s);

/* A parsed, not yet verified, compact JWS carrying a JWT. */
struct jwt {
	json_t *header;        /* protected header object */
	json_t *claims;        /* payload object */
	char *signing_input;   /* "<b64 header>.<b64 payload>" (RFC 7515 5.2 step 8) */
	size_t signing_input_len;
	unsigned char *sig;
	size_t sig_len;
	enum jwt_alg alg;
	const char *kid;       /* borrowed from header, NULL when absent */
};
void jwt_clear(struct jwt *t);

/*
 * Parses a compact JWS (three base64url parts without padding) whose
 * payload is a JSON object. Refuses, with SG_BAD_REQUEST and a detail
 * naming the reason: more than JWT_MAX_BYTES, a JWE or a JSON
 * serialization, bad base64url, a header or payload that is not a JSON
 * object (duplicate member names included), alg "none" or an HMAC
 * algorithm, unknown algorithms, and "crit" extensions (RFC 7515 4.1.11).
 */
int jwt_parse(const char *compact, size_t len, struct jwt *out, struct sg_err *err) SG_WUR;

/* ---- Keys ---- */
struct jwt_key {
	EVP_PKEY *pkey;
	char *kid;             /* NULL when the key has none (PEM keys) */
	enum jwt_alg alg;      /* the JWK's "alg", JWT_ALG_UNKNOWN = any the key type allows */
};
struct jwt_keyset {
	struct jwt_key *v;
	size_t n;
};
void jwt_keyset_clear(struct jwt_keyset *ks);
/*
 * Appends every "PUBLIC KEY" or "CERTIFICATE" (its subject key) block of a
 * PEM list. RSA keys below JWT_RSA_MIN_BITS, DSA/DH keys and private keys
 * are refused, as is a list without any key.
 */
int jwt_keyset_add_pem(struct jwt_keyset *ks, const char *pem, size_t len, struct sg_err *err) SG_WUR;
/*
 * Appends the signature keys of a JWKS document {"keys":[...]}: RSA (n, e),
 * EC (P-256/384/521, x, y; the point must be on the curve) and OKP
 * (Ed25519, Ed448). Keys with "use" other than "sig", symmetric ("oct")
 * keys and unknown key types are skipped (RFC 7517 5: ignore what is not
 * understood); a key with private members ("d") or malformed members fails
 * the whole set. A set that yields no usable key is an error.
 */
int jwt_keyset_add_jwks(struct jwt_keyset *ks, const char *json, size_t len, struct sg_err *err) SG_WUR;
/* One JWK object. 1 when a key was added, 0 when skipped, -1 on error. */
int jwt_keyset_add_jwk(struct jwt_keyset *ks, const json_t *jwk, struct sg_err *err) SG_WUR;

/*
 * Verifies the signature with the keys of ks whose type (and EC curve, and
 * JWK "alg") fit the token's alg; when the token names a kid, only keys
 * with that kid or without any kid are tried. allowed (NULL or empty = every
 * supported algorithm) restricts the token's alg (Vault's
 * jwt_supported_algs). SG_BAD_SIGNATURE when no key verifies.
 */
int jwt_verify(const struct jwt *t, const struct jwt_keyset *ks, const struct sg_strlist *allowed,
               struct sg_err *err) SG_WUR;

/* ---- Claims ---- */
struct jwt_expect {
	int64_t now;
	int64_t leeway;             /* clock skew for exp, nbf, iat (Vault's clock_skew_leeway) */
	int64_t exp_leeway;         /* when exp is absent: exp = max(iat, nbf) + exp_leeway */
	int64_t nbf_leeway;         /* when nbf and iat are absent: nbf = exp - nbf_leeway */
	bool require_time;          /* at least one of exp, nbf, iat (Vault's JWT method) */
	const char *issuer;         /* NULL or "" = not checked */
	const char *subject;        /* NULL or "" = not checked */
	const struct sg_strlist *audiences; /* bound audiences; NULL or empty = not checked */
	bool aud_strict;            /* an aud claim with no bound audiences is refused */
};
/*
 * RFC 7519 4.1: exp, nbf and iat must be numbers; the token must not be
 * expired or used before nbf (each with the leeway), nor issued in the
 * future; iss and sub must equal the expected values; aud (a string or a
 * list) must contain one of the bound audiences. SG_BAD_REQUEST with a
 * detail naming the claim.
 */
int jwt_claims_validate(const json_t *claims, const struct jwt_expect *e, struct sg_err *err) SG_WUR;

/*
 * A claim by name, or by RFC 6901 JSON pointer when the name starts with
 * "/" ("/groups/0", "/a~1b" for the member "a/b"). NULL when absent.
 */
const json_t *jwt_claim_get(const json_t *claims, const char *name);

/*
 * Vault's bound_claims: every key (name or JSON pointer) must be present,
 * and one of its expected values (a value or a list of values) must equal
 * the claim or one member of a list claim. Strings compare exactly, or as
 * '*' globs when glob is set; booleans and integers compare by value.
 * SG_BAD_REQUEST naming the claim.
 */
int jwt_bound_claims_check(const json_t *claims, const json_t *bound, bool glob, struct sg_err *err) SG_WUR;
/*
 * Checks the shape of a bound_claims object when a role is written: at
 * most JWT_MAX_BOUND_CLAIMS keys, values strings, booleans, integers or
 * lists of them.
 */
int jwt_bound_claims_validate(const json_t *bound, struct sg_err *err) SG_WUR;

/*
 * Vault's claim_mappings {"claim or /pointer": "metadata key"}: sets
 * meta[key] to the claim's value for each claim present (strings as they
 * are, booleans and integers in decimal); another type is an error.
 */
int jwt_claim_mappings_apply(const json_t *claims, const json_t *mappings, json_t *meta, struct sg_err *err) SG_WUR;

/* A string claim (user_claim). SG_BAD_REQUEST when absent or not a string. */
int jwt_claim_string(const json_t *claims, const char *name, const char **out, struct sg_err *err) SG_WUR;
/*
 * A list-of-strings claim (groups_claim); a lone string is a one-entry
 * list, empty strings are skipped. At most JWT_MAX_GROUPS entries.
 */
int jwt_claim_strlist(const json_t *claims, const char *name, struct sg_strlist *out, struct sg_err *err) SG_WUR;

/* '*' matches any run of characters (possibly empty); everything else literally. */
bool jwt_glob_match(const char *pattern, const char *s);

/* ---- Helpers shared with the auth methods ---- */

#endif
