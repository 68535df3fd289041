#ifndef SG_SERVER_AUTH_MOUNTS_H
#define SG_SERVER_AUTH_MOUNTS_H

/*
 * Auth method mounts (sys/auth/:path) and the login helper every method's
 * handlers end with. Each method type has a route table; the router sends
 * "auth/<mount path>/<rest>" to the table of the mount's type ("token" is
 * built in at auth/token).
 *
 * Storage (STORE_AUTH): "authmount/<path>" -> mount record JSON. A method
 * keeps its records under its mount's prefix "m/<mount uuid>/" (struct
 * auth_mount's `prefix`), so disabling the mount purges them with one
 * prefix delete and a re-enabled path starts empty.
 */

#include "auth/token.h"
#include "server/http.h"

#define AUTH_MOUNT_MAX 256
#define AUTH_MOUNT_PATH_MAX 128
#define AUTH_MOUNT_RECORD_MAX (16u << 10)

/* An enabled auth method, immutable once published (reference counted like struct mount). */
struct auth_mount {
	char *path;          /* "approle", "kubernetes-prod", "a/b" (no slashes at either end) */
	char *type;          /* "token", "approle", "kubernetes", "jwt", "oidc", "cert" */
	char *description;
	char id[37];         /* UUID */
	char accessor[48];   /* "auth_approle_1a2b3c4d" */
	char prefix[48];     /* "m/<uuid>/": STORE_AUTH key prefix of the method's records */
	int64_t default_lease_ttl, max_lease_ttl; /* 0 = system default (768h) */
	int64_t created;
};

struct auth_mounts;

/* Loads the auth mounts of the store; creates the built-in token/ mount on first start. */
int auth_mounts_new(struct store *st, struct auth_mounts **out, struct sg_err *err) SG_WUR;
void auth_mounts_free(struct auth_mounts *t);
/*
 * The auth mount with the longest path prefix of path ("approle/login"),
 * referenced (auth_mount_unref); *sub is the path inside the mount. NULL
 * when none matches.
 */
const struct auth_mount *auth_mounts_route(struct auth_mounts *t, const char *path, const char **sub);
/* Exact lookup, referenced. */
const struct auth_mount *auth_mounts_get(struct auth_mounts *t, const char *path);
void auth_mount_unref(const struct auth_mount *m);
/* The route table of a method type; NULL for a type this build does not have. */
const struct route *auth_method_routes(const char *type, size_t *n);
/* Effective TTLs of a mount (system defaults filled in, default capped by max). */
int64_t auth_mount_default_ttl(const struct auth_mount *m);
int64_t auth_mount_max_ttl(const struct auth_mount *m);

/* The store and the record prefix of the request's auth mount, for method handlers. */
struct store *auth_req_store(const struct req *rq);
const char *auth_req_prefix(const struct req *rq);

/* sys/auth handlers (entries of the sys/ route table). */
int h_auth_mounts_list(struct req *rq, struct resp *rs, struct sg_err *err);
int h_auth_mount_read(struct req *rq, struct resp *rs, struct sg_err *err);
int h_auth_mount_enable(struct req *rq, struct resp *rs, struct sg_err *err);
int h_auth_mount_disable(struct req *rq, struct resp *rs, struct sg_err *err);
int h_auth_mount_tune_read(struct req *rq, struct resp *rs, struct sg_err *err);
int h_auth_mount_tune_write(struct req *rq, struct resp *rs, struct sg_err *err);

extern const struct route token_routes[];
extern const size_t token_routes_n;
extern const struct route approle_routes[];
extern const size_t approle_routes_n;
extern const struct route kubernetes_routes[];
extern const size_t kubernetes_routes_n;
extern const struct route jwt_routes[]; /* types "jwt" and "oidc" */
extern const size_t jwt_routes_n;
extern const struct route cert_routes[];
extern const size_t cert_routes_n;

/*
 * Ends a successful login: creates an orphan service token from p (with
 * path "auth/<mount>/login" and the method's alias), and sets rs->auth to
 * Vault's auth block. The request's auth mount (rq->auth_mount) gives the
 * path and accessor:
 * - p->alias (borrowed, may be NULL) gets mount_accessor, mount_path and
 *   mount_type filled in on a copy; a method gives {name, metadata{}};
 * - p->display_name is prefixed with the mount path as Vault does
 *   ("cert-web", or "approle" when the method sets none);
 * - p->max_ttl is capped by the mount's max TTL, and an unset p->ttl (with
 *   no period) becomes the mount's default TTL.
 * p's borrowed pointers are restored before return.
 */
int auth_login_respond(struct req *rq, struct resp *rs, struct auth_token_params *p, struct sg_err *err) SG_WUR;

#endif
