#ifndef SG_AUTH_CERT_H
#define SG_AUTH_CERT_H

/*
 * TLS-certificate login (Vault's auth/cert, compat/vault-api.md 3): cert
 * roles name a trusted CA (or a pinned leaf) and constraints on the client
 * certificate; login verifies the chain the client presented in its TLS
 * handshake with OpenSSL against the roles, then the constraints. A
 * workload issued a certificate by a Sigil PKI mount logs in with it when
 * a cert role trusts that mount's CA, and gets a token to renew it.
 *
 * Storage (STORE_AUTH, under the auth mount's key prefix P): P "cert/<name>" -> role JSON.
 */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "auth/tokenfields.h"
#include "store/store.h"

#define AUTH_CERT_NAME_MAX 128
#define AUTH_CERT_PEM_MAX (64u << 10)   /* the role's certificate field */
#define AUTH_CERT_MAX_TRUSTED 16        /* certificates in one role's PEM */
#define AUTH_CERT_MAX_PEER 10           /* client chain certificates considered */
#define AUTH_CERT_DER_MAX (16u << 10)   /* one client certificate */
#define AUTH_CERT_MAX_ROLES 1000        /* roles tried by a login without "name" */
#define AUTH_CERT_DISPLAY_MAX 128
#define AUTH_CERT_PATTERN_MAX 256       /* one allowed_* pattern */

struct auth_cert_role {
	char *name;
	char *certificate;                  /* PEM: CA certificates (trust anchors) and/or pinned leaves */
	char *display_name;                 /* "" = the role name */
	struct sg_strlist allowed_names;    /* deprecated: CN, DNS or email SAN */
	struct sg_strlist allowed_common_names, allowed_dns_sans, allowed_email_sans, allowed_uri_sans;
	struct sg_strlist allowed_organizational_units;
	struct auth_tokenfields tf;
};
void auth_cert_role_init(struct auth_cert_role *r);
void auth_cert_role_clear(struct auth_cert_role *r);
/* SG_BAD_REQUEST unless 1..AUTH_CERT_NAME_MAX of [A-Za-z0-9_.-], starting and ending with [A-Za-z0-9_]. */
int auth_cert_name_check(const char *name, struct sg_err *err) SG_WUR;
/*
 * Applies a role body. "certificate" is required when creating and must
 * hold 1..AUTH_CERT_MAX_TRUSTED PEM certificates; patterns are globs ('*'
 * matches any run of characters, as Vault's).
 */
int auth_cert_role_apply(struct auth_cert_role *r, const json_t *body, bool create, struct sg_err *err) SG_WUR;
json_t *auth_cert_role_to_json(const struct auth_cert_role *r); /* Vault's read data */
int auth_cert_role_load(struct store *st, const char *prefix, const char *name, struct auth_cert_role *out,
                        struct sg_err *err) SG_WUR; /* 1/0/-1 */
int auth_cert_role_store(struct store *st, const char *prefix, const struct auth_cert_role *r,
                         struct sg_err *err) SG_WUR;
int auth_cert_role_delete(struct store *st, const char *prefix, const char *name, struct sg_err *err) SG_WUR;
int auth_cert_role_list(struct store *st, const char *prefix, struct sg_strlist *out, struct sg_err *err) SG_WUR;

/* True when s matches the glob pattern ('*' = any run, possibly empty); ci folds ASCII case. */
bool auth_cert_glob(const char *pattern, const char *s, bool ci);

/* The client's certificates as the TLS layer gives them: DER, leaf first. */
struct auth_cert_chain {
	size_t n;
	const unsigned char *der[AUTH_CERT_MAX_PEER];
	size_t len[AUTH_CERT_MAX_PEER];
};

struct auth_cert_login_result {
	struct auth_cert_role role;         /* the matched role */
	json_t *metadata;                   /* cert_name, common_name, serial_number, subject_key_id, authority_key_id */
	char *common_name;                  /* alias name */
};
void auth_cert_login_result_clear(struct auth_cert_login_result *l);
/*
 * Vault's cert login: chain NULL or empty is SG_BAD_REQUEST "client
 * certificate must be supplied"; name (may be NULL or "") restricts the
 * login to one role (an unknown one is SG_BAD_REQUEST). The leaf must
 * chain (with the client's other certificates as intermediates) to a
 * role's CA certificate, valid at sg_now() and usable for TLS client
 * authentication, or equal a pinned leaf; then meet every constraint of
 * that role. Refusals are SG_BAD_REQUEST (HTTP 400, as Vault): "invalid
 * certificate or no client certificate supplied" (with OpenSSL's reason
 * when one role was named) or "no chain matching all constraints could be
 * found for this login certificate".
 */
int auth_cert_login(struct store *st, const char *prefix, const char *name, const struct auth_cert_chain *chain,
                    struct auth_cert_login_result *out, struct sg_err *err) SG_WUR;

#endif
