#ifndef SG_AUTH_ACL_H
#define SG_AUTH_ACL_H

/*
 * ACL policies (compat/vault-api.md 4): Vault's policy language in its HCL
 * and JSON forms, evaluation with Vault's precedence between overlapping
 * paths, and the policy store behind sys/policies/acl.
 *
 * A policy is a list of path rules. A rule's pattern is exact
 * ("pki/issue/web"), a prefix ("pki/issue/" followed by a star: only as the last
 * character), or has '+' segments matching exactly one segment
 * ("pki/+/web", "pki/issuer/+/issue/+"). For one request path the rules of
 * all of a token's policies are searched: an exact pattern wins, else the
 * longest prefix or the best '+' pattern by Vault's priority order. Rules
 * with the same pattern in several policies are merged (capabilities
 * unioned; deny wins over everything).
 *
 * Storage (STORE_AUTH): "policy/acl/<name>" -> {"name":..., "policy": raw text}.
 */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "store/store.h"

#define AUTH_ACL_MAX_POLICY_BYTES (64u << 10) /* raw policy text */
#define AUTH_ACL_MAX_RULES 1024               /* path blocks in one policy */
#define AUTH_ACL_MAX_PATTERN_BYTES 1024       /* one path pattern */
#define AUTH_ACL_MAX_NAME_BYTES 128           /* policy name */
#define AUTH_ACL_MAX_POLICIES 4096            /* stored policies */
#define AUTH_ACL_MAX_LIST 256                 /* capabilities, parameters, values per parameter */
#define AUTH_ACL_MAX_DEPTH 16                 /* nesting of a policy document */

enum auth_acl_cap {
	AUTH_ACL_DENY = 1u << 0,
	AUTH_ACL_CREATE = 1u << 1,
	AUTH_ACL_READ = 1u << 2,
	AUTH_ACL_UPDATE = 1u << 3,
	AUTH_ACL_DELETE = 1u << 4,
	AUTH_ACL_LIST = 1u << 5,
	AUTH_ACL_SUDO = 1u << 6,
	AUTH_ACL_PATCH = 1u << 7,
};

/* The operation of a request (compat 4 "HTTP -> capability"). */
enum auth_acl_op {
	AUTH_ACL_OP_READ,
	AUTH_ACL_OP_LIST,
	AUTH_ACL_OP_CREATE,
	AUTH_ACL_OP_UPDATE,
	AUTH_ACL_OP_DELETE,
	AUTH_ACL_OP_PATCH,
};

struct auth_acl_rule {
	char *path;                 /* the pattern without a leading '/' and without its trailing '*' */
	bool prefix;                /* the pattern ended in '*' */
	bool segwild;               /* the pattern has '+' segments */
	unsigned caps;              /* enum auth_acl_cap bits; AUTH_ACL_DENY alone when denied */
	json_t *allowed;            /* allowed_parameters: lower-case name -> array of values, or NULL */
	json_t *denied;             /* denied_parameters, same form, or NULL */
	struct sg_strlist required; /* required_parameters */
	int64_t min_wrap, max_wrap; /* min/max_wrapping_ttl in seconds, 0 = unset */
};

struct auth_acl_policy {
	char *name;
	char *raw;                  /* the text as written (after Vault's optional base64 decoding) */
	struct auth_acl_rule *rules;
	size_t n;
};

/*
 * Parses a policy text: JSON when its first non-space byte is '{', else
 * HCL. Vault also accepts the text base64-encoded; the decoded text is
 * kept in raw. SG_BAD_REQUEST "failed to parse policy: ..." naming the
 * line and the offending path or key.
 */
int auth_acl_policy_parse(const char *name, const char *text, size_t len, struct auth_acl_policy **out,
                          struct sg_err *err) SG_WUR;
void auth_acl_policy_free(struct auth_acl_policy *p);

/* Vault's policy name rule: trimmed and lower-cased into out (cap bytes). SG_BAD_REQUEST when empty or unusable. */
int auth_acl_name_normalize(const char *in, char *out, size_t cap, struct sg_err *err) SG_WUR;

struct auth_acl_decision {
	bool allowed;               /* the operation (and its parameters) is permitted */
	bool sudo;                  /* the matching rule grants sudo (root-protected paths) */
	bool matched;               /* some rule matched the path */
	unsigned caps;              /* the matching rule's capabilities after merging */
};

/*
 * Decides one request against a set of policies (NULL entries are skipped:
 * unknown policy names grant nothing). path is the request path without
 * "/v1/"; a LIST path carries Vault's trailing '/'. body holds the request
 * parameters checked against allowed/denied/required_parameters (may be NULL).
 */
void auth_acl_evaluate(const struct auth_acl_policy *const *pols, size_t n, const char *path, enum auth_acl_op op,
                       const json_t *body, struct auth_acl_decision *out);
/* The capabilities a set of policies grants on path (sys/capabilities): merged bits of the winning rule, 0 when none. */
unsigned auth_acl_capabilities(const struct auth_acl_policy *const *pols, size_t n, const char *path);
/* Capability bits as Vault lists them: sorted names, ["deny"] when denied or empty. */
json_t *auth_acl_caps_json(unsigned caps);
/* The capability an operation needs (one enum auth_acl_cap bit). */
unsigned auth_acl_op_cap(enum auth_acl_op op);
const char *auth_acl_op_name(enum auth_acl_op op);

/* Vault's built-in "default" policy, installed when absent. */
extern const char auth_acl_default_policy[];

/*
 * The policy store: every stored policy parsed and cached in memory,
 * replaced on write, so a request's check never touches storage.
 */
struct auth_acl_store;
/* Loads every stored policy and installs "default" when it is absent. A stored policy that no longer parses fails the open. */
int auth_acl_store_open(struct store *st, struct auth_acl_store **out, struct sg_err *err) SG_WUR;
void auth_acl_store_free(struct auth_acl_store *as);
/* Creates or replaces a policy (name normalized). "root" cannot be written. */
int auth_acl_store_put(struct auth_acl_store *as, const char *name, const char *text, size_t len,
                       struct sg_err *err) SG_WUR;
/* Deletes a policy; absent is not an error. "root" and "default" cannot be deleted. */
int auth_acl_store_delete(struct auth_acl_store *as, const char *name, struct sg_err *err) SG_WUR;
/* 1 and *raw (malloc'ed copy of the text) when stored, 0 when absent. "root" reads as "". */
int auth_acl_store_get(struct auth_acl_store *as, const char *name, char **raw, struct sg_err *err) SG_WUR;
/* Stored names in byte order ("root" is not stored). */
void auth_acl_store_names(struct auth_acl_store *as, struct sg_strlist *out);
/*
 * Decides a request for a token's policy names. A list holding "root"
 * allows everything (with sudo). Unknown names grant nothing.
 */
void auth_acl_store_check(struct auth_acl_store *as, const struct sg_strlist *policies, const char *path,
                          enum auth_acl_op op, const json_t *body, struct auth_acl_decision *out);
/* sys/capabilities for a token's policy names: Vault's sorted list, ["root"] for root, ["deny"] for none. */
json_t *auth_acl_store_capabilities(struct auth_acl_store *as, const struct sg_strlist *policies, const char *path);

#endif
