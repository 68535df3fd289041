#ifndef SG_AUTH_OIDC_H
#define SG_AUTH_OIDC_H

/*
 * Vault's JWT/OIDC auth method (compat/vault-api.md 3; mount types "jwt"
 * and "oidc"). Keys come from exactly one source: static PEM keys
 * (jwt_validation_pubkeys), a JWKS URL, or an OpenID Provider's discovery
 * document (OpenID Connect Discovery 1.0). Machines log in with a JWT
 * (role_type "jwt"); people go through the authorization-code flow with
 * PKCE (RFC 7636, S256): oidc/auth_url hands out the provider's URL with a
 * fresh state, nonce and code challenge, oidc/callback exchanges the code
 * at the token endpoint with the verifier and validates the ID token
 * (OpenID Connect Core 1.0 3.1.3.7).
 *
 * Remote documents are cached in memory for OIDC_CACHE_TTL seconds; a
 * token whose kid is not in the cached key set triggers one refresh, at
 * most every OIDC_REFRESH_MIN seconds per URL (key rotation without letting
 * random kids hammer the provider). Pending flows (state, nonce, verifier)
 * live in memory for OIDC_STATE_TTL seconds, are bound to their mount and
 * are single-use.
 */

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "auth/jwt.h"
#include "auth/tokenfields.h"

#define OIDC_CACHE_TTL 300
#define OIDC_REFRESH_MIN 2
#define OIDC_CACHE_MAX 64              /* cached documents (all mounts) */
#define OIDC_STATE_TTL 600             /* Vault's oidcRequestTimeout */
#define OIDC_MAX_PENDING 1024          /* pending authorization-code flows (all mounts); the oldest makes room */
#define OIDC_MAX_LIST 64               /* allowed_redirect_uris, oidc_scopes, bound_audiences, pubkeys, algs */
#define OIDC_DEFAULT_CLOCK_SKEW 60
#define OIDC_DEFAULT_EXP_LEEWAY 150
#define OIDC_DEFAULT_NBF_LEEWAY 150

struct oidc_config {
	char *discovery_url, *discovery_ca_pem;
	char *client_id, *client_secret;   /* client_secret never read back */
	char *jwks_url, *jwks_ca_pem;
	struct sg_strlist pubkeys;          /* jwt_validation_pubkeys */
	struct sg_strlist supported_algs;   /* jwt_supported_algs (empty = all) */
	char *bound_issuer;
	char *default_role;
};
enum oidc_key_source { OIDC_SRC_NONE, OIDC_SRC_PUBKEYS, OIDC_SRC_JWKS, OIDC_SRC_DISCOVERY };
void oidc_config_init(struct oidc_config *c);
void oidc_config_clear(struct oidc_config *c);
int oidc_config_apply(struct oidc_config *c, const json_t *body, struct sg_err *err) SG_WUR;
json_t *oidc_config_encode(const struct oidc_config *c, bool storage);
int oidc_config_decode(struct oidc_config *c, const json_t *stored, struct sg_err *err) SG_WUR;
enum oidc_key_source oidc_config_source(const struct oidc_config *c);
/* Whether the authorization-code flow is configured (discovery URL and client id). */
bool oidc_config_flow(const struct oidc_config *c);

struct oidc_role {
	char role_type[8];                  /* "oidc" (default) | "jwt" */
	struct sg_strlist bound_audiences;
	char *bound_subject;
	json_t *bound_claims;               /* NULL when none */
	char bound_claims_type[8];          /* "string" | "glob" */
	char *user_claim;
	bool user_claim_json_pointer;
	char *groups_claim;
	json_t *claim_mappings;             /* NULL when none */
	struct sg_strlist allowed_redirect_uris;
	struct sg_strlist oidc_scopes;
	int64_t clock_skew_leeway, expiration_leeway, not_before_leeway; /* < 0 none, 0 default */
	int64_t max_age;                    /* seconds, 0 = not sent */
	struct auth_tokenfields tf;
};
void oidc_role_init(struct oidc_role *r);
void oidc_role_clear(struct oidc_role *r);
int oidc_role_apply(struct oidc_role *r, const json_t *body, struct sg_err *err) SG_WUR;
json_t *oidc_role_encode(const struct oidc_role *r);
int oidc_role_decode(struct oidc_role *r, const json_t *stored, struct sg_err *err) SG_WUR;

/* An OpenID Provider's metadata (Discovery 1.0 3). */
struct oidc_provider {
	char *issuer, *authorization_endpoint, *token_endpoint, *jwks_uri;
};
void oidc_provider_clear(struct oidc_provider *p);
/*
 * Fetches (or takes from the cache) <discovery_url>/.well-known/openid-configuration.
 * The document's issuer must equal the discovery URL (Discovery 1.0 4.3).
 * SG_BAD_REQUEST when unreachable or malformed.
 */
int oidc_provider_get(const struct oidc_config *c, struct oidc_provider *out, struct sg_err *err) SG_WUR;
/* Checks the config's remote source now (Vault refuses a config it cannot reach). */
int oidc_config_check_remote(const struct oidc_config *c, struct sg_err *err) SG_WUR;
/* Empties the document cache (tests, config writes). */
void oidc_cache_flush(void);

/*
 * Verifies a JWT for login/<role>: signature through the config's key
 * source (with jwt_supported_algs), then Vault's claim rules: times with the
 * role's leeways, bound_issuer, bound_subject, bound_audiences (an aud with
 * none bound is refused), bound_claims. *claims gets a new reference.
 * Denials are SG_BAD_REQUEST, as Vault's ErrorResponse.
 */
int oidc_jwt_login_validate(const struct oidc_config *c, const struct oidc_role *r, const char *jwt,
                            json_t **claims, struct sg_err *err) SG_WUR;

/* The identity of validated claims: user_claim, claim_mappings, groups_claim. */
struct oidc_identity {
	char *user;
	json_t *metadata;                   /* string -> string */
	struct sg_strlist groups;
};
void oidc_identity_clear(struct oidc_identity *id);
int oidc_identity_from_claims(const struct oidc_role *r, const json_t *claims, struct oidc_identity *out,
                              struct sg_err *err) SG_WUR;

/* RFC 8252 7.3: exact match, except that a loopback URI matches whatever its port. */
bool oidc_redirect_allowed(const struct oidc_role *r, const char *uri);

/* One pending authorization-code flow. */
struct oidc_state {
	char state[48];
	char nonce[48];
	char verifier[64];                  /* RFC 7636 4.1 code_verifier */
	char *mount_accessor, *role, *redirect_uri, *client_nonce;
	int64_t expires;
};
void oidc_state_clear(struct oidc_state *s);

/*
 * oidc/auth_url: validates the redirect URI against the role, records a
 * new pending flow and returns the authorization endpoint URL with
 * client_id, redirect_uri, response_type=code, scope (openid + role
 * scopes), state, nonce, code_challenge (S256) and max_age.
 */
int oidc_auth_url(const struct oidc_config *c, const struct oidc_role *r, const char *mount_accessor,
                  const char *role_name, const char *redirect_uri, const char *client_nonce, char **url,
                  struct sg_err *err) SG_WUR;
/* Removes and returns the flow of state for this mount: 1 found (not expired), 0 not. */
int oidc_state_take(const char *mount_accessor, const char *state, struct oidc_state *out);

/*
 * oidc/callback: exchanges code at the provider's token endpoint (client
 * secret by HTTP Basic, the PKCE verifier, the flow's redirect URI) and
 * validates the returned ID token: signature, iss = provider issuer, aud
 * contains client_id, times, nonce = the flow's nonce, then the role's
 * bound_audiences, bound_subject and bound_claims. *claims gets a new
 * reference. SG_BAD_REQUEST on any failure.
 */
int oidc_callback_validate(const struct oidc_config *c, const struct oidc_role *r, const struct oidc_state *st,
                           const char *code, json_t **claims, struct sg_err *err) SG_WUR;

#endif
