#ifndef SG_SERVER_AUTHZ_H
#define SG_SERVER_AUTHZ_H

/*
 * The router's authorization step (DESIGN.md rule 5), run on every token
 * route after authentication and before the handler.
 */

#include <stdio.h>

#include "auth/acl.h"
#include "server/http.h"

/* The ACL operation of a routed method (one enum http_method bit) before the existence check. */
enum auth_acl_op authz_op_of_method(unsigned method);

/*
 * Authorizes one authenticated request: the ACL path is the request path
 * (with Vault's trailing '/' for LIST), the operation comes from the
 * method, and a POST on a route that declares an existence check
 * (ROUTE_EXISTENCE in its methods) is "create" when the object is absent.
 * Root-protected routes (route->sudo) also need sudo. route may be NULL (no
 * such path or method: only the operation is checked, so an unprivileged
 * caller learns nothing of what exists). SG_PERMISSION_DENIED (403) when
 * refused. Sets rq->sudo.
 */
int authz_request(struct req *rq, const struct route *table, size_t ntable, const struct route *route,
                  unsigned method, struct sg_err *err) SG_WUR;

/* `sigil routes`: every route table as JSON on f (the policy-matrix test walks it). Returns the exit status. */
int authz_routes_print(FILE *f);

#endif
