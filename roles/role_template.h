#ifndef SG_ROLE_TEMPLATE_H
#define SG_ROLE_TEMPLATE_H

/*
 * Identity templates in PKI roles (compat/vault-api.md 4, "Templating"):
 * with allowed_domains_template, entries of allowed_domains may hold
 * {{identity.entity.aliases.<mount accessor>.metadata.<key>}},
 * {{identity.entity.aliases.<mount accessor>.name}},
 * {{identity.entity.aliases.<mount accessor>.id}} and
 * {{identity.entity.id}}; with allowed_uri_sans_template, entries of
 * allowed_uri_sans may too. One Kubernetes role can then say
 * "{{...service_account_name}}.{{...service_account_namespace}}.svc".
 *
 * An entry whose template cannot be resolved for the caller is dropped,
 * as Vault drops it, so it allows nothing. Stricter than Vault: a value
 * put into a domain must be one DNS label ([A-Za-z0-9_-]+), and a value put
 * into a URI must be RFC 3986 unreserved characters (not "." or ".."), so
 * a caller-influenced value (a service account name, a JWT claim) can
 * never widen the pattern with '*', add labels, or change a URI's
 * authority or path.
 */

#include <jansson.h>

#include "roles/role.h"

#define ROLE_TEMPLATE_MAX_PER_ENTRY 8

/* The caller's identity, as a token records it. */
struct role_identity {
	const char *entity_id;   /* NULL when unknown */
	const json_t *alias;     /* {"mount_accessor", "name", "id"?, "metadata":{}} or NULL */
};

/* True when s holds a "{{". */
bool role_template_has(const char *s);

/*
 * Expands one entry; kind 'd' (domain) or 'u' (URI) picks the value rule.
 * Returns a malloc'ed string, or NULL when a template does not resolve, is
 * malformed, or yields a refused value.
 */
char *role_template_expand(const char *entry, char kind, const struct role_identity *id);

/*
 * Replaces, on r (the caller's own copy of the role), the templated
 * entries of allowed_domains and allowed_uri_sans by their expansion for
 * id (id NULL = no identity: templated entries are dropped). Entries
 * without templates are untouched. Never fails on identity data.
 */
void role_template_apply(struct role *r, const struct role_identity *id);

#endif
