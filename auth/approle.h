#ifndef SG_AUTH_APPROLE_H
#define SG_AUTH_APPROLE_H

/*
 * AppRole (compat/vault-api.md 3): roles with a role_id, secret ids bound
 * to a role, and the login check. No HTTP here: server/h_approle.c
 * translates requests.
 *
 * Storage (STORE_AUTH, under the auth mount's key prefix P = "m/<uuid>/"):
 *   P "role/<name>"                   -> role JSON (role_id, per-role HMAC key, constraints, token fields)
 *   P "roleid/<hex SHA-256(role_id)>" -> role name (login finds the role by its id)
 *   P "sid/<name>/<hex HMAC(secret)>" -> secret id JSON (accessor, times, uses left, CIDRs, metadata)
 *   P "sidacc/<name>/<accessor>"      -> hex HMAC (lookup and destroy by accessor)
 * A secret id is never stored: only HMAC-SHA256 under the role's random key,
 * looked up by that hash and compared in constant time. Deleting a role
 * deletes its secret ids.
 */

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "auth/tokenfields.h"
#include "store/store.h"

#define AUTH_APPROLE_NAME_MAX 128
#define AUTH_APPROLE_ID_MAX 256            /* role_id and custom secret_id length */
#define AUTH_APPROLE_HMAC_KEY_BYTES 32
#define AUTH_APPROLE_META_MAX 64           /* secret id metadata pairs */
#define AUTH_APPROLE_META_KEY_MAX 128
#define AUTH_APPROLE_META_VALUE_MAX 512
#define AUTH_APPROLE_SECRET_MAX 128        /* buffer for a generated secret id */
#define AUTH_APPROLE_RECORD_MAX (64u << 10)
#define AUTH_APPROLE_LIST_MAX 100000       /* entries one LIST may return */

struct auth_approle_role {
	char *name;
	char *role_id;
	bool bind_secret_id;              /* default true */
	bool local_secret_ids;
	struct sg_strlist secret_id_bound_cidrs;
	int64_t secret_id_num_uses;       /* 0 = unlimited */
	int64_t secret_id_ttl;            /* 0 = never expires */
	struct auth_tokenfields tf;
	unsigned char hmac_key[AUTH_APPROLE_HMAC_KEY_BYTES];
};
void auth_approle_role_init(struct auth_approle_role *r);
void auth_approle_role_clear(struct auth_approle_role *r);
/* SG_BAD_REQUEST unless name is 1..AUTH_APPROLE_NAME_MAX of [A-Za-z0-9_.-], starting and ending with [A-Za-z0-9_]. */
int auth_approle_name_check(const char *name, struct sg_err *err) SG_WUR;
/*
 * Applies a role body (create when r is fresh: role_id and HMAC key are
 * generated unless "role_id" is given). Checks Vault's rules: CIDRs
 * valid, no negative counts, and a role without bind_secret_id needs
 * secret_id_bound_cidrs or token_bound_cidrs.
 */
int auth_approle_role_apply(struct auth_approle_role *r, const json_t *body, bool create, struct sg_err *err) SG_WUR;
json_t *auth_approle_role_to_json(const struct auth_approle_role *r); /* Vault's read data */

/* 1 found, 0 absent, -1 error. */
int auth_approle_role_load(struct store *st, const char *prefix, const char *name, struct auth_approle_role *out,
                      struct sg_err *err) SG_WUR;
/*
 * Writes r and its role_id index. old_role_id (may be NULL) is the id the
 * stored role had, whose index goes. SG_BAD_REQUEST "role_id already in
 * use" when another role has r->role_id.
 */
int auth_approle_role_store(struct store *st, const char *prefix, const struct auth_approle_role *r,
                            const char *old_role_id, struct sg_err *err) SG_WUR;
/* Deletes a role, its role_id index and its secret ids. Absent is not an error. */
int auth_approle_role_delete(struct store *st, const char *prefix, const char *name, struct sg_err *err) SG_WUR;
int auth_approle_role_list(struct store *st, const char *prefix, struct sg_strlist *out, struct sg_err *err) SG_WUR;

struct auth_approle_secret {
	char accessor[37];
	char hash[65];                    /* hex HMAC-SHA256(role key, secret id) */
	struct sg_strlist cidr_list, token_bound_cidrs;
	json_t *metadata;                 /* string -> string */
	int64_t creation_time, expiration_time, last_updated_time; /* expiration 0 = never */
	int64_t num_uses;                 /* uses left, 0 = unlimited */
	int64_t ttl;
};
void auth_approle_secret_clear(struct auth_approle_secret *s);
json_t *auth_approle_secret_to_json(const struct auth_approle_secret *s); /* Vault's secret-id lookup data */

/* Parameters of secret-id generation (Vault's secret-id and custom-secret-id bodies). */
struct auth_approle_secret_params {
	const char *secret_id;            /* custom-secret-id only; borrowed */
	json_t *metadata;                 /* owned; string -> string */
	struct sg_strlist cidr_list, token_bound_cidrs;
	int64_t ttl, num_uses;
	bool has_ttl, has_num_uses;
};
void auth_approle_secret_params_clear(struct auth_approle_secret_params *p);
/* Parses a body: metadata as an object or a JSON-encoded string (hvac sends the latter). */
int auth_approle_secret_params_parse(const json_t *body, bool custom, struct auth_approle_secret_params *p,
                                struct sg_err *err) SG_WUR;
/*
 * Creates a secret id for role r and writes it into secret_out (cap >=
 * AUTH_APPROLE_SECRET_MAX): a random UUID, or p->secret_id. The secret id's
 * CIDRs must lie inside the role's; ttl and num_uses may narrow the
 * role's, never widen them.
 */
int auth_approle_secret_create(struct store *st, const char *prefix, const struct auth_approle_role *r,
                          const struct auth_approle_secret_params *p, char *secret_out, size_t cap,
                          struct auth_approle_secret *out, struct sg_err *err) SG_WUR;
/* 1 found (and not expired), 0 absent, -1 error. */
int auth_approle_secret_lookup(struct store *st, const char *prefix, const struct auth_approle_role *r,
                               const char *secret_id, struct auth_approle_secret *out, struct sg_err *err) SG_WUR;
int auth_approle_secret_lookup_accessor(struct store *st, const char *prefix, const struct auth_approle_role *r,
                                   const char *accessor, struct auth_approle_secret *out, struct sg_err *err) SG_WUR;
/* 1 destroyed, 0 absent, -1 error. */
int auth_approle_secret_destroy(struct store *st, const char *prefix, const struct auth_approle_role *r,
                                const char *secret_id, struct sg_err *err) SG_WUR;
int auth_approle_secret_destroy_accessor(struct store *st, const char *prefix, const struct auth_approle_role *r,
                                    const char *accessor, struct sg_err *err) SG_WUR;
/* Accessors of a role's secret ids. */
int auth_approle_secret_list(struct store *st, const char *prefix, const char *name, struct sg_strlist *out,
                        struct sg_err *err) SG_WUR;
/* Deletes expired secret ids of every role (Vault's tidy/secret-id); *count gets how many. */
int auth_approle_tidy(struct store *st, const char *prefix, uint64_t *count, struct sg_err *err) SG_WUR;

/* What a successful login yields for the token. */
struct auth_approle_login_result {
	struct auth_approle_role role;
	json_t *metadata;                 /* the secret id's metadata plus role_name */
	struct sg_strlist token_bound_cidrs; /* the secret id's, else the role's */
};
void auth_approle_login_result_clear(struct auth_approle_login_result *l);
/*
 * Vault's login checks: the role_id names a role; with bind_secret_id the
 * secret id exists for that role, has not expired and has uses left (a
 * use is counted, the last one deletes it); remote_addr lies inside the
 * secret id's cidr_list and the role's secret_id_bound_cidrs. Every
 * refusal is SG_BAD_REQUEST (HTTP 400, as Vault) with a message that
 * names the failed check without revealing whether a role id exists.
 */
int auth_approle_login(struct store *st, const char *prefix, const char *role_id, const char *secret_id,
                  const char *remote_addr, struct auth_approle_login_result *out, struct sg_err *err) SG_WUR;

#endif
