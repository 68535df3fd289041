#ifndef SG_AUTH_ROLEFIELDS_H
#define SG_AUTH_ROLEFIELDS_H

/*
 * Helpers shared by the Kubernetes and JWT/OIDC roles: Vault's deprecated
 * role fields (ttl, max_ttl, num_uses, bound_cidrs) that hvac 0.11 still
 * sends, and the bounded string fields every role has.
 */

#include <jansson.h>

#include "auth/tokenfields.h"
#include "store/store.h"

#define AUTH_ROLE_NAME_MAX 128
#define AUTH_ROLE_FIELD_MAX 4096   /* one string field of a role or config (not PEM) */
#define AUTH_ROLE_PEM_MAX (64u << 10)

/*
 * auth_tokenfields_apply, then the deprecated names, each only when its
 * token_* replacement is absent from the body (Vault's tokenutil):
 * ttl -> token_ttl, max_ttl -> token_max_ttl, num_uses -> token_num_uses,
 * bound_cidrs -> token_bound_cidrs.
 */
int auth_rolefields_apply(struct auth_tokenfields *f, const json_t *body, struct sg_err *err) SG_WUR;

/*
 * A string field (absent: *out untouched, 0). Replaces *out (malloc'ed) when
 * present; longer than max is SG_BAD_REQUEST naming the field.
 */
int auth_rolefields_str(const json_t *body, const char *key, size_t max, char **out, struct sg_err *err) SG_WUR;

/* Vault's role-name rule: 1..AUTH_ROLE_NAME_MAX of [A-Za-z0-9_.-], not starting with '.' */
bool auth_rolefields_name_valid(const char *name);

/* ---- JSON records of a method under its mount prefix (STORE_AUTH "<prefix><name>") ---- */
#define AUTH_RECORD_MAX (256u << 10)
/* 1 found (*out a new object), 0 absent, -1 error (a record that is not a JSON object is SG_STORAGE). */
int auth_record_load(struct store *st, const char *prefix, const char *name, json_t **out, struct sg_err *err) SG_WUR;
int auth_record_store(struct store *st, const char *prefix, const char *name, const json_t *rec,
                      struct sg_err *err) SG_WUR;
int auth_record_delete(struct store *st, const char *prefix, const char *name, struct sg_err *err) SG_WUR;
/* Names (the key after prefix+dir) of the records under "<prefix><dir>", sorted. */
int auth_record_list(struct store *st, const char *prefix, const char *dir, struct sg_strlist *out,
                     struct sg_err *err) SG_WUR;

#endif
