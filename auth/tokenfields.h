#ifndef SG_AUTH_TOKENFIELDS_H
#define SG_AUTH_TOKENFIELDS_H

/*
 * Vault's token fields shared by every auth method role (AppRole roles,
 * Kubernetes roles, JWT roles, cert roles): token_ttl, token_max_ttl,
 * token_policies (alias "policies"), token_bound_cidrs,
 * token_explicit_max_ttl, token_no_default_policy, token_num_uses,
 * token_period (alias "period"), token_type.
 */

#include <jansson.h>

#include "auth/token.h"

#define AUTH_MAX_CIDRS 64          /* entries of token_bound_cidrs / secret_id_bound_cidrs */
#define AUTH_MAX_POLICY_NAME 128
#define AUTH_TOKENFIELDS_TTL_MAX ((int64_t)100 * 365 * 86400)

struct auth_tokenfields {
	int64_t ttl, max_ttl, explicit_max_ttl, period, num_uses;
	struct sg_strlist policies, bound_cidrs;
	bool no_default_policy;
	char type[16]; /* "default" (as Vault reads it back) or "service"; both give service tokens */
};
void auth_tokenfields_init(struct auth_tokenfields *f);
void auth_tokenfields_clear(struct auth_tokenfields *f);
/*
 * Applies the fields present in a (loosely typed) body; validates CIDRs and
 * types. Policy names are trimmed, lower-cased, de-duplicated and sorted as
 * Vault does. On error f may hold some of the new values: apply to a copy
 * when the old state must survive.
 */
int auth_tokenfields_apply(struct auth_tokenfields *f, const json_t *body, struct sg_err *err) SG_WUR;
/* Adds the fields (Vault's read form, durations in seconds) to obj. */
void auth_tokenfields_encode(const struct auth_tokenfields *f, json_t *obj);
/* Storage form (same as the read form) back to fields; -1 when obj is not a valid record. */
int auth_tokenfields_decode(struct auth_tokenfields *f, const json_t *obj, struct sg_err *err) SG_WUR;
/* Fills token params from the fields (policies copied, default policy added unless no_default_policy). */
void auth_tokenfields_to_params(const struct auth_tokenfields *f, struct auth_token_params *p);
/*
 * True when addr is inside one of the CIDRs (empty list = anywhere). addr is
 * a textual IPv4/IPv6 address, optionally with a port as struct req's
 * remote_addr carries it ("10.1.2.3:5555", "[::1]:5555"). An address that
 * cannot be parsed is never allowed by a non-empty list.
 */
bool auth_cidr_allowed(const struct sg_strlist *cidrs, const char *addr);
/* True when the CIDR block (or address) inner lies inside one of outer's blocks (empty outer = anywhere). */
bool auth_cidr_within(const char *inner, const struct sg_strlist *outer);
/* SG_BAD_REQUEST naming field unless every entry is an address or CIDR block (at most AUTH_MAX_CIDRS). */
int auth_cidrs_check(const struct sg_strlist *cidrs, const char *field, struct sg_err *err) SG_WUR;
/* Vault's policy sanitising (trim, lower-case, drop empties, sort, unique); SG_BAD_REQUEST on too many/long names. */
int auth_policies_sanitize(struct sg_strlist *l, const char *field, struct sg_err *err) SG_WUR;

#endif
