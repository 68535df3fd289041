#ifndef SG_AUTH_TOKENFIELDS_H
#define SG_AUTH_TOKENFIELDS_H

/*
 * Vault's token fields shared by every auth method role (AppRole roles,
 * Kubernetes roles, JWT roles, cert roles): token_ttl, token_max_ttl,
 * token_policies (alias "policies"), token_bound_cidrs,
 * token_explicit_max_ttl, token_no_default_policy, token_num_uses,
 * token_period, token_type.
 */

#include <jansson.h>

#include "auth/token.h"

struct auth_tokenfields {
	int64_t ttl, max_ttl, explicit_max_ttl, period, num_uses;
	struct sg_strlist policies, bound_cidrs;
	bool no_default_policy;
	char type[16]; /* "service" (default) */
};
void auth_tokenfields_init(struct auth_tokenfields *f);
void auth_tokenfields_clear(struct auth_tokenfields *f);
/* Applies the fields present in a (loosely typed) body; validates CIDRs and types. */
int auth_tokenfields_apply(struct auth_tokenfields *f, const json_t *body, struct sg_err *err) SG_WUR;
/* Adds the fields (Vault's read form, durations in seconds) to obj. */
void auth_tokenfields_encode(const struct auth_tokenfields *f, json_t *obj);
/* Fills token params from the fields (policies copied, default policy added unless no_default_policy). */
void auth_tokenfields_to_params(const struct auth_tokenfields *f, struct auth_token_params *p);
/* True when addr (textual IPv4/IPv6) is inside one of the CIDRs (empty list = anywhere). */
bool auth_cidr_allowed(const struct sg_strlist *cidrs, const char *addr);

#endif
