#ifndef SG_SERVER_AUTH_MOUNTS_H
#define SG_SERVER_AUTH_MOUNTS_H

/*
 * Auth method mounts (sys/auth/:path) and the login helper every method's
 * handlers end with. Each method type has a route table; the router sends
 * "auth/<mount path>/<rest>" to the table of the mount's type ("token" is
 * built in at auth/token).
 */

#include "auth/token.h"
#include "server/http.h"

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
 * Vault's auth block. The request's mount gives the path and accessor.
 */
int auth_login_respond(struct req *rq, struct resp *rs, struct auth_token_params *p, struct sg_err *err) SG_WUR;

#endif
