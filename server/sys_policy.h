#ifndef SG_SERVER_SYS_POLICY_H
#define SG_SERVER_SYS_POLICY_H

/*
 * ACL policies over HTTP (compat/vault-api.md 4): sys/policies/acl/:name,
 * the older sys/policy/:name, sys/capabilities(-self,-accessor); and the
 * router's authorization step (DESIGN.md rule 5) that every token route
 * passes before its handler runs.
 */

#include <stdio.h>

#include "auth/acl.h"
#include "server/http.h"

/* sys/ route handlers (entries in sys_routes). */
int h_sys_policy_list(struct req *rq, struct resp *rs, struct sg_err *err);        /* GET|LIST sys/policy */
int h_sys_policy_read(struct req *rq, struct resp *rs, struct sg_err *err);        /* GET sys/policy/:name */
int h_sys_policy_write(struct req *rq, struct resp *rs, struct sg_err *err);       /* POST sys/policy/:name */
int h_sys_policy_delete(struct req *rq, struct resp *rs, struct sg_err *err);      /* DELETE sys/policy/:name */
int h_sys_policies_acl_list(struct req *rq, struct resp *rs, struct sg_err *err);  /* LIST sys/policies/acl */
int h_sys_policies_acl_read(struct req *rq, struct resp *rs, struct sg_err *err);  /* GET sys/policies/acl/:name */
int h_sys_policies_acl_write(struct req *rq, struct resp *rs, struct sg_err *err); /* POST sys/policies/acl/:name */
int h_sys_policies_acl_delete(struct req *rq, struct resp *rs, struct sg_err *err); /* DELETE sys/policies/acl/:name */
int h_sys_capabilities_self(struct req *rq, struct resp *rs, struct sg_err *err);  /* POST sys/capabilities-self */
int h_sys_capabilities(struct req *rq, struct resp *rs, struct sg_err *err);       /* POST sys/capabilities */
int h_sys_capabilities_accessor(struct req *rq, struct resp *rs, struct sg_err *err); /* POST sys/capabilities-accessor */

/* The ACL operation of a routed method (one enum http_method bit) before the existence check. */
enum auth_acl_op acl_op_of_method(unsigned method);

/*
 * The router's authorization of one token request, after authentication:
 * the ACL path is the request path (with Vault's trailing '/' for LIST), the
 * operation comes from the method, and a POST on a route that declares an
 * existence check (ROUTE_EXISTENCE in its methods) is "create" when the
 * object is absent. Root-protected routes (route->sudo) also need sudo.
 * route may be NULL (no such path or method: only the operation is checked,
 * so an unprivileged caller learns nothing of what exists). SG_PERMISSION_DENIED
 * (403) when refused. Sets rq->sudo.
 */
int acl_authorize(struct req *rq, const struct route *table, size_t ntable, const struct route *route,
                  unsigned method, struct sg_err *err) SG_WUR;

/* `sigil routes`: every route table as JSON on f (the policy-matrix test walks it). Returns the exit status. */
int server_routes_print(FILE *f);

#endif
