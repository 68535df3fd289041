/* Identity templates in PKI roles: expansion, refusals, and the role check on the result. */
#include <stdlib.h>
#include <string.h>

#include "roles/role_template.h"
#include "t.h"

#define ACC "auth_kubernetes_1a2b3c4d"
#define SA "{{identity.entity.aliases." ACC ".metadata.service_account_name}}"
#define NS "{{identity.entity.aliases." ACC ".metadata.service_account_namespace}}"

static json_t *k8s_alias(const char *name, const char *ns)
{
	return json_pack("{s:s, s:s, s:s, s:{s:s, s:s, s:s}}", "mount_accessor", ACC, "name", "uid-1", "id", "alias-7",
	                 "metadata", "service_account_name", name, "service_account_namespace", ns,
	                 "service_account_uid", "uid-1");
}

static int check_name(const struct role *r, const char *cn)
{
	struct role_names n;
	struct sg_err err;
	int rc;

	role_names_init(&n);
	n.common_name = sg_xstrdup(cn);
	sg_err_init(&err);
	rc = role_check_names(r, &n, &err);
	role_names_clear(&n);
	return rc;
}

static void test_expand(void)
{
	json_t *alias = k8s_alias("web", "prod");
	struct role_identity id = {"entity-42", alias};
	char *s;

	s = role_template_expand(SA "." NS ".svc", 'd', &id);
	T_STREQ(s, "web.prod.svc");
	free(s);
	s = role_template_expand("{{ identity.entity.aliases." ACC ".metadata.service_account_name }}.x", 'd', &id);
	T_STREQ(s, "web.x");
	free(s);
	s = role_template_expand("{{identity.entity.id}}.ids", 'd', &id);
	T_STREQ(s, "entity-42.ids");
	free(s);
	s = role_template_expand("{{identity.entity.aliases." ACC ".name}}", 'd', &id);
	T_STREQ(s, "uid-1");
	free(s);
	s = role_template_expand("{{identity.entity.aliases." ACC ".id}}", 'd', &id);
	T_STREQ(s, "alias-7");
	free(s);
	s = role_template_expand("spiffe://cluster.local/ns/" NS "/sa/" SA, 'u', &id);
	T_STREQ(s, "spiffe://cluster.local/ns/prod/sa/web");
	free(s);
	s = role_template_expand("plain.example.com", 'd', &id);
	T_STREQ(s, "plain.example.com");
	free(s);

	/* Refusals: other accessor, missing key, malformed, no identity, unknown paths. */
	T_OK(role_template_expand("{{identity.entity.aliases.auth_jwt_99.metadata.service_account_name}}", 'd', &id) ==
	     NULL);
	T_OK(role_template_expand("{{identity.entity.aliases." ACC ".metadata.nope}}", 'd', &id) == NULL);
	T_OK(role_template_expand("{{identity.entity.aliases." ACC ".metadata.service_account_name", 'd', &id) == NULL);
	T_OK(role_template_expand("x}}" SA, 'd', &id) == NULL);
	T_OK(role_template_expand("{{}}", 'd', &id) == NULL);
	T_OK(role_template_expand("{{{{identity.entity.id}}}}", 'd', &id) == NULL);
	T_OK(role_template_expand(SA, 'd', NULL) == NULL);
	T_OK(role_template_expand("{{identity.entity.name}}", 'd', &id) == NULL);
	T_OK(role_template_expand("{{identity.groups.names.x.id}}", 'd', &id) == NULL);
	T_OK(role_template_expand("{{identity.entity.aliases." ACC "}}", 'd', &id) == NULL);
	{
		struct role_identity noent = {NULL, alias};

		T_OK(role_template_expand("{{identity.entity.id}}", 'd', &noent) == NULL);
	}
	json_decref(alias);
}

static void test_unsafe_values(void)
{
	const char *bad_dns[] = {"*", "a.b", "a*", "", "x y", "a/b", "a@b", "é"};
	const char *bad_uri[] = {"a/b", "..", ".", "a?b", "a#b", "a@b", "a%2f", "*", ""};

	for (size_t i = 0; i < sizeof(bad_dns) / sizeof(bad_dns[0]); i++) {
		json_t *alias = k8s_alias(bad_dns[i], "prod");
		struct role_identity id = {NULL, alias};

		T_CHECK(role_template_expand(SA ".prod.svc", 'd', &id) == NULL, "domain value '%s' refused", bad_dns[i]);
		json_decref(alias);
	}
	for (size_t i = 0; i < sizeof(bad_uri) / sizeof(bad_uri[0]); i++) {
		json_t *alias = k8s_alias(bad_uri[i], "prod");
		struct role_identity id = {NULL, alias};

		T_CHECK(role_template_expand("spiffe://c/sa/" SA, 'u', &id) == NULL, "URI value '%s' refused", bad_uri[i]);
		json_decref(alias);
	}
	{
		json_t *alias = k8s_alias("web.v2", "prod");
		struct role_identity id = {NULL, alias};
		char *s = role_template_expand("spiffe://c/sa/" SA, 'u', &id);

		T_STREQ(s, "spiffe://c/sa/web.v2"); /* dots are fine inside a URI path segment */
		free(s);
		T_OK(role_template_expand(SA ".svc", 'd', &id) == NULL); /* but would add a DNS label */
		json_decref(alias);
	}
}

static void test_apply_and_check(void)
{
	json_t *alias = k8s_alias("web", "prod");
	struct role_identity id = {NULL, alias};
	struct role *r = role_new("pods"), *r2;
	struct sg_err err;
	json_t *body = json_pack("{s:[s,s,s], s:b, s:b, s:[s], s:b}", "allowed_domains", SA "." NS ".svc",
	                         "{{identity.entity.aliases.other.name}}.svc", "static.example.com",
	                         "allowed_domains_template", 1, "allow_bare_domains", 1, "allowed_uri_sans",
	                         "spiffe://cluster.local/ns/" NS "/sa/" SA, "allowed_uri_sans_template", 1);

	sg_err_init(&err);
	T_OK(role_apply_json(r, body, &err) == 0);
	r2 = role_dup(r);
	role_template_apply(r, &id);
	T_OK(r->allowed_domains.n == 2);
	T_OK(sg_strlist_has(&r->allowed_domains, "web.prod.svc"));
	T_OK(sg_strlist_has(&r->allowed_domains, "static.example.com"));
	T_OK(r->allowed_uri_sans.n == 1 && strcmp(r->allowed_uri_sans.v[0], "spiffe://cluster.local/ns/prod/sa/web") == 0);
	T_OK(check_name(r, "web.prod.svc") == 0);
	T_OK(check_name(r, "db.prod.svc") == -1);
	T_OK(check_name(r, "web.dev.svc") == -1);
	T_OK(check_name(r, "static.example.com") == 0);

	/* Without an identity every templated entry is gone. */
	role_template_apply(r2, NULL);
	T_OK(r2->allowed_domains.n == 1 && strcmp(r2->allowed_domains.v[0], "static.example.com") == 0);
	T_OK(r2->allowed_uri_sans.n == 0);
	T_OK(check_name(r2, "web.prod.svc") == -1);
	role_free(r2);
	role_free(r);
	json_decref(body);

	/* The flags off: entries stay literal and match nothing real. */
	r = role_new("literal");
	body = json_pack("{s:[s], s:b}", "allowed_domains", SA ".svc", "allow_bare_domains", 1);
	sg_err_init(&err);
	T_OK(role_apply_json(r, body, &err) == 0);
	role_template_apply(r, &id);
	T_OK(r->allowed_domains.n == 1 && strcmp(r->allowed_domains.v[0], SA ".svc") == 0);
	T_OK(check_name(r, "web.svc") == -1);
	role_free(r);
	json_decref(body);
	json_decref(alias);
}

int main(void)
{
	test_expand();
	test_unsafe_values();
	test_apply_and_check();
	return t_done();
}
