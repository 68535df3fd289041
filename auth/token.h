#ifndef SG_AUTH_TOKEN_H
#define SG_AUTH_TOKEN_H

/*
 * The token store (Vault's auth/token, compat/vault-api.md 3). A token is
 * never stored: records are keyed by HMAC-SHA256(token) under a key derived
 * from the KEK, looked up by that hash and compared in constant time. Every
 * token has an accessor. Child tokens die with their parent; revoking a
 * token revokes the leases it owns (owner = its accessor) through lease/.
 *
 * Storage (STORE_AUTH): "token/<hash>" -> record JSON,
 * "accessor/<accessor>" -> hash, "token-parent/<parent accessor>/<child accessor>" -> "",
 * STORE_INDEX "token-exp/<16 hex expiry>/<accessor>" -> "" for the sweeper.
 */

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/util.h"
#include "lease/lease.h"
#include "store/store.h"

#define AUTH_TOKEN_MAX_BYTES 256   /* a longer presented token is refused unread */
#define AUTH_TOKEN_HASH_HEX 64
#define AUTH_ACCESSOR_LEN 24
#define AUTH_MAX_POLICIES 64
#define AUTH_SYSTEM_MAX_TTL (32LL * 24 * 3600) /* 768h, Vault's system default */
#define AUTH_SYSTEM_DEFAULT_TTL AUTH_SYSTEM_MAX_TTL
#define AUTH_TOKEN_RANDOM_LEN 32   /* base62 characters after "hvs." (~190 bits) */
#define AUTH_TOKEN_STR_MAX 128     /* cap of a generated token string buffer */
#define AUTH_POLICY_NAME_MAX 128
#define AUTH_META_MAX 64           /* meta keys per token */
#define AUTH_META_KEY_MAX 128
#define AUTH_META_VALUE_MAX 512
#define AUTH_DISPLAY_NAME_MAX 256
#define AUTH_TOKEN_MAX_RECORD (64u << 10)
#define AUTH_TOKEN_MAX_DEPTH 64     /* parent chain length; a deeper child does not validate */

struct auth_token {
	char hash[AUTH_TOKEN_HASH_HEX + 1];
	char accessor[AUTH_ACCESSOR_LEN + 1];
	char *parent;                 /* parent accessor, "" for an orphan */
	struct sg_strlist policies;   /* sorted, unique; "root" for root tokens */
	json_t *meta;                 /* string -> string */
	char *display_name;
	char *path;                   /* "auth/token/create", "auth/approle/login", ... */
	char *type;                   /* "service" */
	char *entity_id;
	json_t *alias;                /* identity for templates and audit: {mount_accessor, mount_path, mount_type, name, metadata{}} or NULL */
	struct sg_strlist bound_cidrs;
	int64_t creation_time, creation_ttl, expire_time; /* expire_time 0 = never */
	int64_t explicit_max_ttl, period;
	int64_t num_uses;             /* 0 = unlimited, else uses left; -1 = this request was the last use */
	bool renewable, orphan;
	/* Added with the token store; members above are unchanged. */
	int64_t max_ttl;              /* role/mount bound on renewals (0 = system max) */
	int64_t last_renewal;         /* 0 = never renewed */
};
void auth_token_clear(struct auth_token *t);
bool auth_token_is_root(const struct auth_token *t);

struct auth_token_params {
	struct sg_strlist policies;
	bool no_default_policy;
	json_t *meta;                 /* borrowed */
	const char *display_name;
	const char *path;
	int64_t ttl, explicit_max_ttl, period, max_ttl; /* 0 = unset; max_ttl bounds ttl (mount/role) */
	int64_t num_uses;
	bool renewable;               /* default true */
	bool orphan;                  /* no parent */
	const char *entity_id;
	json_t *alias;                /* borrowed */
	struct sg_strlist bound_cidrs;
	/*
	 * The caller holds sudo on the create path (Vault's isSudo): policies
	 * need not be a subset of the parent's and "default" is added unless
	 * no_default_policy. Root tokens still need a root parent.
	 */
	bool sudo;
	/* policies is the final set (a token role decided it): no subset rule and no "default" added. */
	bool policies_final;
};
void auth_token_params_init(struct auth_token_params *p);
void auth_token_params_clear(struct auth_token_params *p);

struct auth_tokens;
int auth_tokens_new(struct store *st, struct lease_mgr *leases, const unsigned char kek[32], struct auth_tokens **out,
                    struct sg_err *err) SG_WUR;
void auth_tokens_free(struct auth_tokens *ts);

/*
 * Creates a token (child of parent unless p->orphan or parent is NULL), and
 * writes the new token string (hvs.<base62>) into token_out (cap >= 128).
 * A child's policies must be a subset of the parent's unless the parent is root.
 */
int auth_token_create(struct auth_tokens *ts, const struct auth_token_params *p, const struct auth_token *parent,
                      char *token_out, size_t cap, struct auth_token *out, struct sg_err *err) SG_WUR;
/* Root token with a chosen id (dev mode, first start). Replaces nothing else. */
int auth_token_create_root(struct auth_tokens *ts, const char *token, struct auth_token *out,
                           struct sg_err *err) SG_WUR;
/*
 * Presented token -> record. 1 when valid (not expired, no ancestor expired
 * or gone, uses left, remote address inside bound_cidrs), 0 when not, -1 on
 * storage errors. Counts a use for num_uses tokens: the last use revokes the
 * token (with its leases) before the request runs, and out->num_uses is -1.
 */
int auth_token_authenticate(struct auth_tokens *ts, const char *token, const char *remote_addr,
                            struct auth_token *out, struct sg_err *err) SG_WUR;
/* Lookup without counting a use: by token or by accessor. 1/0/-1, the same validity as above without CIDRs. */
int auth_token_lookup(struct auth_tokens *ts, const char *token, struct auth_token *out, struct sg_err *err) SG_WUR;
int auth_token_lookup_accessor(struct auth_tokens *ts, const char *accessor, struct auth_token *out,
                               struct sg_err *err) SG_WUR;
/* Vault's renew: increment (0 = the token's ttl/period), bounded by explicit_max_ttl and max_ttl. */
int auth_token_renew(struct auth_tokens *ts, struct auth_token *t, int64_t increment, struct sg_err *err) SG_WUR;
/* Revokes t, its leases, and (unless orphan_children) its children recursively; orphan_children re-parents them. */
int auth_token_revoke(struct auth_tokens *ts, const struct auth_token *t, bool orphan_children,
                      struct sg_err *err) SG_WUR;
int auth_token_accessors(struct auth_tokens *ts, struct sg_strlist *out, struct sg_err *err) SG_WUR;
/* Revokes expired tokens (with their leases and children). Sweeper thread calls it. */
int auth_tokens_sweep(struct auth_tokens *ts, uint64_t *count, struct sg_err *err) SG_WUR;
int auth_tokens_sweeper_start(struct auth_tokens *ts, int interval_seconds, struct sg_err *err) SG_WUR;

/*
 * The token a request presents: X-Vault-Token, else "Authorization:
 * Bearer <token>" (scheme case-insensitive). NULL when neither is set or
 * the value is empty or longer than AUTH_TOKEN_MAX_BYTES. Borrowed.
 */
const char *auth_token_from_headers(const char *x_vault_token, const char *authorization);
/*
 * Vault's policyutil.SanitizePolicies: trimmed, lower-cased, empty names
 * dropped, sorted and unique; "root" alone when present; "default" added
 * when add_default (and no root). SG_BAD_REQUEST for too many or bad names.
 */
int auth_token_policies_sanitize(struct sg_strlist *l, bool add_default, struct sg_err *err) SG_WUR;
/* A new random token string "hvs.<AUTH_TOKEN_RANDOM_LEN base62>" into out (cap >= AUTH_TOKEN_STR_MAX). */
void auth_token_generate(char *out, size_t cap);
/* Lookup by the stored keyed hash (hex), e.g. to replace a previous dev root token. 1/0/-1. */
int auth_token_lookup_hash(struct auth_tokens *ts, const char *hash, struct auth_token *out,
                           struct sg_err *err) SG_WUR;

/*
 * Token roles (auth/token/roles/:name, create/:name). Storage (STORE_AUTH):
 * "token-role/<name>" -> the role's read form.
 */
#define AUTH_TOKEN_ROLE_NAME_MAX 128
#define AUTH_TOKEN_ROLE_SUFFIX_MAX 128
struct auth_token_role {
	char *name;
	struct sg_strlist allowed_policies, disallowed_policies; /* sanitised */
	bool orphan, renewable, no_default_policy;
	char *path_suffix;                                       /* "" when none */
	int64_t ttl, max_ttl, explicit_max_ttl, period, num_uses;
	struct sg_strlist bound_cidrs;
};
void auth_token_role_init(struct auth_token_role *r, const char *name);
void auth_token_role_clear(struct auth_token_role *r);
/* Vault's role name rule (\w, '-' and '.', word characters at both ends). */
bool auth_token_role_name_ok(const char *name);
/* Applies the fields present in a (loosely typed) body; SG_BAD_REQUEST naming the field. */
int auth_token_role_apply(struct auth_token_role *r, const json_t *body, struct sg_err *err) SG_WUR;
json_t *auth_token_role_json(const struct auth_token_role *r); /* Vault's read form */
int auth_token_role_put(struct auth_tokens *ts, const struct auth_token_role *r, struct sg_err *err) SG_WUR;
/* 1 found, 0 absent, -1 error. */
int auth_token_role_get(struct auth_tokens *ts, const char *name, struct auth_token_role *out,
                        struct sg_err *err) SG_WUR;
int auth_token_role_delete(struct auth_tokens *ts, const char *name, struct sg_err *err) SG_WUR;
int auth_token_role_names(struct auth_tokens *ts, struct sg_strlist *out, struct sg_err *err) SG_WUR;
/*
 * Vault's handleCreateCommon with a role: folds the role into request
 * params p (policies against allowed/disallowed_policies or the parent's,
 * orphan, renewable, use count, the lesser explicit max TTL and period,
 * bound CIDRs, TTLs, path "auth/token/create/<role>[/<suffix>]"). path_buf
 * receives the path (p->path points into it). warnings collects Vault's
 * "lesser value" notes.
 */
int auth_token_role_params(const struct auth_token_role *r, const struct auth_token *parent,
                           struct auth_token_params *p, char *path_buf, size_t path_cap,
                           struct sg_strlist *warnings, struct sg_err *err) SG_WUR;

/* Vault's lookup(-self) data and login "auth" block. */
json_t *auth_token_lookup_json(const struct auth_token *t, int64_t now);
json_t *auth_token_auth_json(const struct auth_token *t, const char *client_token, int64_t now);

#endif
