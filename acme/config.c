/*
 * config/acme of a mount and the JSON record helpers of STORE_ACME.
 */
#include "acme/acme.h"

#include <stdlib.h>
#include <string.h>

#define ACME_RECORD_MAX (1u << 20)

void acme_config_init(struct acme_config *c)
{
	memset(c, 0, sizeof(*c));
	sg_strlist_add(&c->allowed_roles, "*");
	sg_strlist_add(&c->allowed_issuers, "*");
	c->default_directory_policy = sg_xstrdup("forbid");
	c->eab_policy = ACME_EAB_NOT_REQUIRED;
	c->http01_port = 80;
	c->dns_resolver = sg_xstrdup("");
	c->tls_alpn01_port = 443;
	c->profiles = json_object();
	c->max_ttl = ACME_DEFAULT_MAX_TTL;
}

void acme_config_clear(struct acme_config *c)
{
	if (c == NULL)
		return;
	sg_strlist_clear(&c->allowed_roles);
	sg_strlist_clear(&c->allowed_issuers);
	free(c->default_directory_policy);
	free(c->dns_resolver);
	sg_strlist_clear(&c->caa_identities);
	json_decref(c->profiles);
	memset(c, 0, sizeof(*c));
}

const char *acme_eab_policy_name(enum acme_eab_policy p)
{
	switch (p) {
	case ACME_EAB_NEW_ACCOUNT_REQUIRED:
		return "new-account-required";
	case ACME_EAB_ALWAYS_REQUIRED:
		return "always-required";
	default:
		return "not-required";
	}
}

json_t *acme_config_json(const struct acme_config *c)
{
	json_t *j = json_pack("{s:b, s:o, s:o, s:s, s:s, s:I, s:s}", "enabled", c->enabled, "allowed_roles",
	                 sg_strlist_to_json(&c->allowed_roles), "allowed_issuers",
	                 sg_strlist_to_json(&c->allowed_issuers), "default_directory_policy",
	                 c->default_directory_policy, "eab_policy", acme_eab_policy_name(c->eab_policy),
	                 "http01_port", (json_int_t)c->http01_port, "dns_resolver", c->dns_resolver);

	json_object_set_new(j, "tls_alpn01_port", json_integer((json_int_t)c->tls_alpn01_port));
	json_object_set_new(j, "max_ttl", json_integer((json_int_t)c->max_ttl));
	json_object_set_new(j, "caa_identities", sg_strlist_to_json(&c->caa_identities));
	json_object_set_new(j, "profiles", json_deep_copy(c->profiles));
	json_object_set_new(j, "rate_limits",
	                    json_pack("{s:I, s:I}", "orders_per_account_per_hour",
	                              (json_int_t)c->orders_per_account_per_hour, "orders_per_identifier_per_hour",
	                              (json_int_t)c->orders_per_identifier_per_hour));
	return j;
}

const char *acme_config_profile_role(const struct acme_config *c, const char *name)
{
	return json_string_value(json_object_get(json_object_get(c->profiles, name), "role"));
}

static bool profile_name_ok(const char *s)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++) {
		char ch = s[n];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
		      ch == '_' || ch == '.'))
			return false;
	}
	return n > 0 && n <= ACME_MAX_PROFILE_NAME;
}

/*
 * profiles: {"<name>": "<role>"} or {"<name>": {"role": "<role>",
 * "description": "..."}}, stored in the second form.
 */
static int apply_profiles(struct acme_config *c, const json_t *in, struct sg_err *err)
{
	json_t *out = json_object();
	const char *name;
	json_t *v;

	if (!json_is_object(in) || json_object_size(in) > ACME_MAX_PROFILES) {
		json_decref(out);
		return sg_err_set(err, SG_BAD_REQUEST, "profiles must be an object of at most %d name -> role entries",
		                  ACME_MAX_PROFILES);
	}
	json_object_foreach((json_t *)in, name, v) {
		const char *role = json_is_string(v) ? json_string_value(v) : json_string_value(json_object_get(v, "role"));
		const char *desc = json_string_value(json_object_get(v, "description"));

		if (!profile_name_ok(name) || role == NULL || role[0] == '\0' || strlen(role) > 128 ||
		    (desc != NULL && strlen(desc) > ACME_MAX_PROFILE_DESC)) {
			json_decref(out);
			return sg_err_set(err, SG_BAD_REQUEST,
			                  "profile \"%.64s\": a name of [A-Za-z0-9._-] and a role (or {\"role\", \"description\"})",
			                  name);
		}
		{
			char *d = desc != NULL ? sg_xstrdup(desc) : sg_xasprintf("certificates of role %s", role);

			json_object_set_new(out, name, json_pack("{s:s, s:s}", "role", role, "description", d));
			free(d);
		}
	}
	json_decref(c->profiles);
	c->profiles = out;
	return 0;
}

static int apply_rate_limits(struct acme_config *c, const json_t *in, struct sg_err *err)
{
	int64_t v = 0;
	int r;

	if (!json_is_object(in))
		return sg_err_set(err, SG_BAD_REQUEST, "rate_limits must be an object");
	if ((r = sg_json_int(in, "orders_per_account_per_hour", &v, err)) < 0)
		return -1;
	if (r == 1) {
		if (v < 0 || v > ACME_RL_MAX_LIMIT)
			return sg_err_set(err, SG_BAD_REQUEST, "orders_per_account_per_hour must be 0..%d", ACME_RL_MAX_LIMIT);
		c->orders_per_account_per_hour = v;
	}
	if ((r = sg_json_int(in, "orders_per_identifier_per_hour", &v, err)) < 0)
		return -1;
	if (r == 1) {
		if (v < 0 || v > ACME_RL_MAX_LIMIT)
			return sg_err_set(err, SG_BAD_REQUEST, "orders_per_identifier_per_hour must be 0..%d",
			                  ACME_RL_MAX_LIMIT);
		c->orders_per_identifier_per_hour = v;
	}
	return 0;
}

static int apply(struct acme_config *c, const json_t *body, struct sg_err *err)
{
	const char *s = NULL;
	int64_t port = 0;
	int r;

	if (sg_json_bool(body, "enabled", &c->enabled, err) < 0)
		return -1;
	if (json_object_get(body, "allowed_roles") != NULL) {
		if (sg_json_list(body, "allowed_roles", &c->allowed_roles, err) < 0)
			return -1;
		if (c->allowed_roles.n > SG_STRLIST_MAX)
			return sg_err_set(err, SG_BAD_REQUEST, "too many allowed_roles");
		if (c->allowed_roles.n == 0)
			sg_strlist_add(&c->allowed_roles, "*");
	}
	if (json_object_get(body, "allowed_issuers") != NULL) {
		if (sg_json_list(body, "allowed_issuers", &c->allowed_issuers, err) < 0)
			return -1;
		if (c->allowed_issuers.n > SG_STRLIST_MAX)
			return sg_err_set(err, SG_BAD_REQUEST, "too many allowed_issuers");
		if (c->allowed_issuers.n == 0)
			sg_strlist_add(&c->allowed_issuers, "*");
	}
	if ((r = sg_json_str(body, "default_directory_policy", &s, err)) < 0)
		return -1;
	if (r == 1) {
		/* Vault's forms: "forbid", "role:<name>"; "sign-verbatim" is not offered (no role would bound it). */
		if (strcmp(s, "forbid") != 0 && (strncmp(s, "role:", 5) != 0 || s[5] == '\0' || strlen(s) > 5 + 128))
			return sg_err_set(err, SG_BAD_REQUEST,
			                  "default_directory_policy must be \"forbid\" or \"role:<name>\"");
		free(c->default_directory_policy);
		c->default_directory_policy = sg_xstrdup(s);
	}
	if ((r = sg_json_str(body, "eab_policy", &s, err)) < 0)
		return -1;
	if (r == 1) {
		if (strcmp(s, "not-required") == 0 || strcmp(s, "") == 0)
			c->eab_policy = ACME_EAB_NOT_REQUIRED;
		else if (strcmp(s, "new-account-required") == 0)
			c->eab_policy = ACME_EAB_NEW_ACCOUNT_REQUIRED;
		else if (strcmp(s, "always-required") == 0)
			c->eab_policy = ACME_EAB_ALWAYS_REQUIRED;
		else
			return sg_err_set(err, SG_BAD_REQUEST,
			                  "eab_policy must be not-required, new-account-required or always-required");
	}
	if ((r = sg_json_int(body, "http01_port", &port, err)) < 0)
		return -1;
	if (r == 1) {
		if (port < 1 || port > 65535)
			return sg_err_set(err, SG_BAD_REQUEST, "http01_port must be 1..65535");
		c->http01_port = port;
	}
	if ((r = sg_json_str(body, "dns_resolver", &s, err)) < 0)
		return -1;
	if (r == 1) {
		if (strlen(s) > 300)
			return sg_err_set(err, SG_BAD_REQUEST, "dns_resolver too long");
		if (acme_dns_resolver_check(s, err) != 0)
			return -1;
		free(c->dns_resolver);
		c->dns_resolver = sg_xstrdup(s);
	}
	if ((r = sg_json_int(body, "tls_alpn01_port", &port, err)) < 0)
		return -1;
	if (r == 1) {
		if (port < 1 || port > 65535)
			return sg_err_set(err, SG_BAD_REQUEST, "tls_alpn01_port must be 1..65535");
		c->tls_alpn01_port = port;
	}
	if ((r = sg_json_duration(body, "max_ttl", &port, err)) < 0)
		return -1;
	if (r == 1) {
		/* Vault: "" or 0 is the default, 2160h. */
		if (port < 0 || port > ACME_MAX_TTL_LIMIT)
			return sg_err_set(err, SG_BAD_REQUEST, "max_ttl must be between 1s and 100 years");
		c->max_ttl = port > 0 ? port : ACME_DEFAULT_MAX_TTL;
	}
	if (json_object_get(body, "caa_identities") != NULL) {
		if (sg_json_list(body, "caa_identities", &c->caa_identities, err) < 0)
			return -1;
		if (c->caa_identities.n > ACME_CAA_MAX_IDENTITIES)
			return sg_err_set(err, SG_BAD_REQUEST, "at most %d caa_identities", ACME_CAA_MAX_IDENTITIES);
		for (size_t i = 0; i < c->caa_identities.n; i++)
			if (strlen(c->caa_identities.v[i]) > ACME_DNS_MAX_NAME || strchr(c->caa_identities.v[i], ';') != NULL ||
			    strchr(c->caa_identities.v[i], ' ') != NULL)
				return sg_err_set(err, SG_BAD_REQUEST, "caa_identities are issuer domain names (RFC 8659 4.2)");
	}
	if (json_object_get(body, "profiles") != NULL && apply_profiles(c, json_object_get(body, "profiles"), err) != 0)
		return -1;
	if (json_object_get(body, "rate_limits") != NULL &&
	    apply_rate_limits(c, json_object_get(body, "rate_limits"), err) != 0)
		return -1;
	return 0;
}

int acme_config_get(struct store *st, const char *mount_id, struct acme_config *out, struct sg_err *err)
{
	json_t *rec = NULL;
	int r;

	acme_config_init(out);
	r = acme_rec_get(st, mount_id, "config", "acme", &rec, err);
	if (r < 0)
		return -1;
	if (r == 1 && apply(out, rec, err) != 0) {
		json_decref(rec);
		return -1;
	}
	json_decref(rec);
	return 0;
}

int acme_config_set(struct store *st, const char *mount_id, const json_t *body, struct acme_config *out,
                    struct sg_err *err)
{
	struct store_batch *b;
	json_t *j;
	int rc;

	if (acme_config_get(st, mount_id, out, err) != 0)
		return -1;
	if (apply(out, body, err) != 0)
		return -1;
	{
		/* A profile is a way into its role: only roles the directories may use. */
		const char *name;
		json_t *v;

		json_object_foreach(out->profiles, name, v) {
			const char *role = json_string_value(json_object_get(v, "role"));

			if (!sg_strlist_has(&out->allowed_roles, "*") && !sg_strlist_has(&out->allowed_roles, role))
				return sg_err_set(err, SG_BAD_REQUEST, "profile \"%s\": role \"%s\" is not in allowed_roles",
				                  name, role);
		}
	}
	j = acme_config_json(out);
	b = store_batch_new();
	acme_rec_put(b, mount_id, "config", "acme", j);
	rc = store_commit(st, b, err);
	store_batch_free(b);
	json_decref(j);
	return rc;
}

/* ---- Records ---- */

static char *rec_key(const char *mount_id, const char *kind, const char *id)
{
	return sg_xasprintf("%s/%s/%s", mount_id, kind, id);
}

int acme_rec_get(struct store *st, const char *mount_id, const char *kind, const char *id, json_t **out,
                 struct sg_err *err)
{
	char *key = rec_key(mount_id, kind, id);
	unsigned char *val = NULL;
	size_t len = 0;
	json_error_t jerr;
	int r;

	*out = NULL;
	r = store_get(st, STORE_ACME, key, strlen(key), &val, &len, err);
	free(key);
	if (r != 1)
		return r;
	*out = json_loadb((const char *)val, len, 0, &jerr);
	free(val);
	if (*out == NULL)
		return sg_err_set(err, SG_STORAGE, "corrupt ACME %s record", kind);
	return 1;
}

static void rec_put(struct store_batch *b, const char *mount_id, const char *kind, const char *id,
                    const json_t *rec, bool fresh)
{
	char *key = rec_key(mount_id, kind, id);
	char *val = json_dumps(rec, JSON_COMPACT);

	if (val == NULL)
		sg_die("json_dumps failed");
	if (fresh)
		store_batch_put_new(b, STORE_ACME, key, strlen(key), val, strlen(val));
	else
		store_batch_put(b, STORE_ACME, key, strlen(key), val, strlen(val));
	free(val);
	free(key);
}

void acme_rec_put(struct store_batch *b, const char *mount_id, const char *kind, const char *id, const json_t *rec)
{
	rec_put(b, mount_id, kind, id, rec, false);
}

void acme_rec_put_new(struct store_batch *b, const char *mount_id, const char *kind, const char *id,
                      const json_t *rec)
{
	rec_put(b, mount_id, kind, id, rec, true);
}

void acme_rec_del(struct store_batch *b, const char *mount_id, const char *kind, const char *id)
{
	char *key = rec_key(mount_id, kind, id);

	store_batch_del(b, STORE_ACME, key, strlen(key));
	free(key);
}

void acme_new_id(char *out)
{
	sg_random_b62(out, ACME_ID_LEN);
}

bool acme_id_valid(const char *s)
{
	size_t n = 0;

	if (s == NULL)
		return false;
	for (; s[n] != '\0'; n++) {
		char c = s[n];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
			return false;
	}
	return n == ACME_ID_LEN;
}
