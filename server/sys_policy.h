#ifndef SG_SERVER_SYS_POLICY_H
#define SG_SERVER_SYS_POLICY_H

/*
 * ACL policies over HTTP (compat/vault-api.md 4): sys/policies/acl/:name,
 * the older sys/policy/:name, sys/capabilities(-self,-accessor). The
 * router's check of every request is in server/authz.h.
 */

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

#endif
