/* ACL policies: the policy language, Vault's precedence, parameters, and the policy store. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/acl.h"
#include "tests/unit/t.h"

static struct auth_acl_policy *parse_ok(const char *name, const char *text)
{
	struct auth_acl_policy *p = NULL;
	struct sg_err err;

	sg_err_init(&err);
	if (auth_acl_policy_parse(name, text, strlen(text), &p, &err) != 0) {
		T_CHECK(0, "policy %s does not parse: %s", name, err.detail);
		return NULL;
	}
	return p;
}

/* The exact error a policy text gets. */
static void parse_fails(const char *text, const char *want)
{
	struct auth_acl_policy *p = NULL;
	struct sg_err err;
	int rc;

	sg_err_init(&err);
	rc = auth_acl_policy_parse("bad", text, strlen(text), &p, &err);
	T_CHECK(rc == -1 && p == NULL, "parsed: %s", text);
	T_CHECK(err.code == SG_BAD_REQUEST, "code %d for %s", (int)err.code, text);
	T_STREQ(err.detail, want);
	auth_acl_policy_free(p);
}

static const struct auth_acl_rule *rule_at(const struct auth_acl_policy *p, size_t i)
{
	return p != NULL && i < p->n ? &p->rules[i] : NULL;
}

static void test_parse_hcl(void)
{
	const char *text = "# a comment\n"
	                   "// another comment\n"
	                   "/* a block\n   comment */\n"
	                   "path \"pki/issue/web\" {\n"
	                   "  capabilities = [\"update\", \"create\",] # trailing comma\n"
	                   "}\n"
	                   "\n"
	                   "path \"/secret/*\" {\n"
	                   "  capabilities = [\"read\", \"list\"]\n"
	                   "  comment = \"leading slash is dropped\"\n"
	                   "}\n"
	                   "path \"pki/issuer/+/issue/+\" { capabilities = [\"deny\", \"read\"] }\n"
	                   "path \"kv/old\" { policy = \"write\" }\n"
	                   "path \"pki/sign/*\" {\n"
	                   "  capabilities = [\"update\"]\n"
	                   "  allowed_parameters = {\n"
	                   "    \"common_name\" = [\"*.example.com\", \"x\"]\n"
	                   "    \"TTL\" = []\n"
	                   "  }\n"
	                   "  denied_parameters { \"ttl\" = [\"999h\", 5, true] }\n"
	                   "  required_parameters = [\"common_name\"]\n"
	                   "  min_wrapping_ttl = \"1m\"\n"
	                   "  max_wrapping_ttl = 300\n"
	                   "}\n"
	                   "path \"a/+/b*\" { capabilities = [\"sudo\"] }\n"
	                   "name = \"ignored\"\n";
	struct auth_acl_policy *p = parse_ok("t1", text);
	const struct auth_acl_rule *r;

	T_OK(p != NULL && p->n == 6);
	T_STREQ(p != NULL ? p->raw : NULL, text);
	r = rule_at(p, 0);
	T_OK(r != NULL && strcmp(r->path, "pki/issue/web") == 0 && !r->prefix && !r->segwild &&
	     r->caps == (AUTH_ACL_UPDATE | AUTH_ACL_CREATE));
	r = rule_at(p, 1);
	T_OK(r != NULL && strcmp(r->path, "secret/") == 0 && r->prefix && !r->segwild &&
	     r->caps == (AUTH_ACL_READ | AUTH_ACL_LIST));
	r = rule_at(p, 2);
	T_OK(r != NULL && r->segwild && !r->prefix && r->caps == AUTH_ACL_DENY);
	r = rule_at(p, 3);
	T_OK(r != NULL && r->caps == (AUTH_ACL_CREATE | AUTH_ACL_READ | AUTH_ACL_UPDATE | AUTH_ACL_DELETE |
	                              AUTH_ACL_LIST));
	r = rule_at(p, 4);
	T_OK(r != NULL && r->prefix && r->min_wrap == 60 && r->max_wrap == 300 && r->required.n == 1);
	T_OK(r != NULL && json_array_size(json_object_get(r->allowed, "common_name")) == 2);
	/* Parameter names are compared lower-case. */
	T_OK(r != NULL && json_is_array(json_object_get(r->allowed, "ttl")));
	T_OK(r != NULL && json_array_size(json_object_get(r->denied, "ttl")) == 3);
	T_OK(r != NULL && json_is_integer(json_array_get(json_object_get(r->denied, "ttl"), 1)));
	r = rule_at(p, 5);
	T_OK(r != NULL && r->segwild && r->prefix && strcmp(r->path, "a/+/b") == 0 && r->caps == AUTH_ACL_SUDO);
	auth_acl_policy_free(p);

	/* Several keys on one line, commas between items, '=' before a block. */
	p = parse_ok("t2", "path = { \"x\" = { capabilities = [\"read\"] }, \"y\" = { capabilities = [\"list\"] } }");
	T_OK(p != NULL && p->n == 2 && strcmp(p->rules[1].path, "y") == 0 && p->rules[1].caps == AUTH_ACL_LIST);
	auth_acl_policy_free(p);

	/* A policy of comments only grants nothing but is valid (Vault accepts it). */
	p = parse_ok("t3", "# nothing here\n");
	T_OK(p != NULL && p->n == 0);
	auth_acl_policy_free(p);

	/* Escapes in strings. */
	p = parse_ok("t4", "path \"a\\\"b\\u00e9\" { capabilities = [\"read\"] }");
	T_OK(p != NULL && p->n == 1 && strcmp(p->rules[0].path, "a\"b\xc3\xa9") == 0);
	auth_acl_policy_free(p);

	/* The same pattern twice in one policy: both blocks are kept (merged when evaluated). */
	p = parse_ok("t5", "path \"a\" { capabilities = [\"read\"] }\npath \"a\" { capabilities = [\"list\"] }\n");
	T_OK(p != NULL && p->n == 2);
	auth_acl_policy_free(p);
}

static void test_parse_json(void)
{
	const char *json = "{\n"
	                   "  \"path\": {\n"
	                   "    \"pki/issue/web\": {\"capabilities\": [\"update\", \"create\"]},\n"
	                   "    \"secret/*\": {\"capabilities\": [\"read\", \"list\"]},\n"
	                   "    \"pki/sign/*\": {\"capabilities\": [\"update\"],\n"
	                   "                   \"allowed_parameters\": {\"common_name\": [\"*.example.com\"]},\n"
	                   "                   \"required_parameters\": [\"common_name\"]}\n"
	                   "  }\n"
	                   "}\n";
	struct auth_acl_policy *p = parse_ok("j1", json);

	T_OK(p != NULL && p->n == 3);
	T_OK(p != NULL && p->n == 3 && p->rules[0].caps == (AUTH_ACL_UPDATE | AUTH_ACL_CREATE) &&
	     strcmp(p->rules[1].path, "secret/") == 0 && p->rules[1].prefix && p->rules[2].required.n == 1);
	auth_acl_policy_free(p);

	/* The list forms HCL's JSON reader accepts. */
	p = parse_ok("j2", "  {\"path\": [{\"a\": {\"capabilities\": [\"read\"]}}, {\"b\": [{\"capabilities\": [\"list\"]},"
	                   " {\"capabilities\": [\"sudo\"]}]}]}");
	T_OK(p != NULL && p->n == 3 && p->rules[2].caps == AUTH_ACL_SUDO);
	auth_acl_policy_free(p);

	/* Vault takes a base64-encoded policy too: "path \"b64\" { capabilities = [\"read\"] }". */
	p = parse_ok("b64", "cGF0aCAiYjY0IiB7IGNhcGFiaWxpdGllcyA9IFsicmVhZCJdIH0=");
	T_OK(p != NULL && p->n == 1 && strcmp(p->rules[0].path, "b64") == 0 && p->rules[0].caps == AUTH_ACL_READ);
	T_STREQ(p != NULL ? p->raw : NULL, "path \"b64\" { capabilities = [\"read\"] }");
	auth_acl_policy_free(p);
}

static void test_parse_errors(void)
{
	parse_fails("path \"a\" {\n  capabilities = [\"reed\"]\n}\n",
	            "failed to parse policy: path \"a\": invalid capability \"reed\" on line 2");
	parse_fails("path \"a\" {\n  capabilitie = [\"read\"]\n}\n",
	            "failed to parse policy: path \"a\": invalid key \"capabilitie\" on line 2");
	parse_fails("paths \"a\" { capabilities = [\"read\"] }",
	            "failed to parse policy: invalid key \"paths\" on line 1");
	parse_fails("path \"a/+*\" { capabilities = [\"read\"] }",
	            "failed to parse policy: path \"a/+*\": invalid use of wildcards ('+*' is forbidden) on line 1");
	parse_fails("path \"a\" { policy = \"readwrite\" }",
	            "failed to parse policy: path \"a\": invalid policy \"readwrite\" on line 1");
	parse_fails("path \"a\" { capabilities = [\"read\" }",
	            "failed to parse policy: line 1, column 35: expected ',' or ']', got '}'");
	parse_fails("path \"a\" { capabilities = [\"read\"]",
	            "failed to parse policy: line 1, column 35: expected a key or '}', got end of input");
	parse_fails("path \"a { capabilities = [\"read\"] }\n",
	            "failed to parse policy: line 1, column 32: string not terminated");
	parse_fails("path \"a\nb\" {}", "failed to parse policy: line 1, column 6: string not terminated");
	parse_fails("/* open\npath \"a\" {}", "failed to parse policy: line 1, column 1: comment not terminated");
	parse_fails("path \"a\" = \"x\"", "failed to parse policy: line 1, column 10: expected '{', got '='");
	parse_fails("path \"a\" { capabilities = read }",
	            "failed to parse policy: line 1, column 27: expected a value, got an identifier");
	parse_fails("path \"a\" { capabilities = \"read\" }",
	            "failed to parse policy: path \"a\": capabilities: expected a list of strings on line 1");
	parse_fails("path \"a\" { capabilities = [\"read\"]\n  mfa_methods = [\"totp\"] }",
	            "failed to parse policy: path \"a\": mfa_methods is not supported by this server on line 2");
	parse_fails("path \"a\" { capabilities = [\"read\"]\n max_wrapping_ttl = \"1m\"\n min_wrapping_ttl = \"2m\" }",
	            "failed to parse policy: path \"a\": max_wrapping_ttl cannot be less than min_wrapping_ttl on line 1");
	parse_fails("path \"a\" { allowed_parameters = { \"ttl\" = \"1h\" } }",
	            "failed to parse policy: path \"a\": allowed_parameters: each parameter takes a list of values on line 1");
	parse_fails("path \"a\" { allowed_parameters = { \"t*l\" = [] } }",
	            "failed to parse policy: path \"a\": allowed_parameters: unsupported parameter name \"t*l\" on line 1");
	parse_fails("path \"identity/{{identity.entity.id}}\" { capabilities = [\"read\"] }",
	            "failed to parse policy: path \"identity/{{identity.entity.id}}\": templated policy paths are not "
	            "supported on line 1");
	parse_fails("path \"a\" { capabilities = [\"read\"] } $", "failed to parse policy: line 1, column 38: illegal character '$'");
	parse_fails("path \"a\" <<EOF\nx\nEOF\n",
	            "failed to parse policy: line 1, column 10: heredoc strings are not supported in policies");
	parse_fails("{\"path\": {\"a\": {\"capabilities\": [\"read\"]}}", "failed to parse policy: line 1, column 42: '}' expected near end of file");
	parse_fails("{\"path\": {\"a\": {\"capabilities\": [\"read\"]}, \"a\": {}}}",
	            "failed to parse policy: line 1, column 46: duplicate object key near '\"a\"'");
	parse_fails("{\"path\": {\"a\": {\"capabilities\": [\"fly\"]}}}",
	            "failed to parse policy: path \"a\": invalid capability \"fly\"");
	parse_fails("{\"path\": {\"a\": {\"capabilities\": null}}}",
	            "failed to parse policy: null is not a value here");
	parse_fails("{\"paths\": {}}", "failed to parse policy: invalid key \"paths\"");
	parse_fails("{\"path\": \"a\"}", "failed to parse policy: path: expected a pattern and a block");

	{
		/* Nesting deeper than the cap is refused before it costs anything. */
		char deep[512] = "x = ";
		size_t n = strlen(deep);

		for (int i = 0; i < 40; i++)
			deep[n++] = '[';
		deep[n] = '\0';
		parse_fails(deep, "failed to parse policy: line 1, column 21: nested too deeply");
	}
	{
		size_t big = AUTH_ACL_MAX_POLICY_BYTES + 1;
		char *s = malloc(big + 1);

		memset(s, '#', big);
		s[big] = '\0';
		parse_fails(s, "policy too large: the limit is 65536 bytes");
		free(s);
	}
}

/* ---- Precedence, globs, deny, sudo ---- */

struct pcase {
	const char *path;
	enum auth_acl_op op;
	bool allowed;
	bool sudo;
};

static void run_cases(const char *what, const struct auth_acl_policy *const *pols, size_t n,
                      const struct pcase *cases, size_t ncases)
{
	for (size_t i = 0; i < ncases; i++) {
		struct auth_acl_decision d;

		auth_acl_evaluate(pols, n, cases[i].path, cases[i].op, NULL, &d);
		T_CHECK(d.allowed == cases[i].allowed && d.sudo == cases[i].sudo,
		        "%s: %s %s: allowed %d sudo %d (caps 0x%x), want %d %d", what, auth_acl_op_name(cases[i].op),
		        cases[i].path, d.allowed, d.sudo, d.caps, cases[i].allowed, cases[i].sudo);
	}
}

static void test_precedence(void)
{
	struct auth_acl_policy *p1 = parse_ok(
	    "p1", "path \"secret/*\" { capabilities = [\"read\", \"list\"] }\n"
	          "path \"secret/super-secret\" { capabilities = [\"deny\"] }\n"
	          "path \"secret/zip-*\" { capabilities = [\"update\"] }\n"
	          "path \"pki/issue/web\" { capabilities = [\"update\"] }\n"
	          "path \"pki/+/web\" { capabilities = [\"read\"] }\n"
	          "path \"pki/issuer/+/issue/+\" { capabilities = [\"deny\"] }\n"
	          "path \"pki/issuer/default/issue/web\" { capabilities = [\"update\"] }\n"
	          "path \"pki/roles\" { capabilities = [\"list\"] }\n"
	          "path \"sys/leases/revoke-prefix/*\" { capabilities = [\"update\", \"sudo\"] }\n"
	          "path \"sys/leases/revoke-force/*\" { capabilities = [\"update\"] }\n"
	          "path \"foo/a*\" { capabilities = [\"create\"] }\n"
	          "path \"foo/+\" { capabilities = [\"read\"] }\n"
	          "path \"foo/*\" { capabilities = [\"delete\"] }\n"
	          "path \"bar/+/baz\" { capabilities = [\"read\"] }\n"
	          "path \"bar/+/ba*\" { capabilities = [\"update\"] }\n"
	          "path \"wc/+/x/+\" { capabilities = [\"read\"] }\n"
	          "path \"wc/+/+/+\" { capabilities = [\"update\"] }\n"
	          "path \"len/+/bar/ba*\" { capabilities = [\"read\"] }\n"
	          "path \"len/+/bar/b*\" { capabilities = [\"update\"] }\n"
	          "path \"early/+/late/x\" { capabilities = [\"update\"] }\n"
	          "path \"early/mid/*\" { capabilities = [\"read\"] }\n"
	          "path \"list/+/*\" { capabilities = [\"list\"] }\n");
	const struct auth_acl_policy *pols[] = {p1};
	static const struct pcase cases[] = {
	    /* A prefix: '*' is a glob only at the end and matches across segments. */
	    {"secret/foo", AUTH_ACL_OP_READ, true, false},
	    {"secret/foo/bar/baz", AUTH_ACL_OP_READ, true, false},
	    {"secret/foo", AUTH_ACL_OP_UPDATE, false, false},
	    /* Exact beats prefix; deny wins. */
	    {"secret/super-secret", AUTH_ACL_OP_READ, false, false},
	    {"secret/super-secret2", AUTH_ACL_OP_READ, true, false},
	    /* The longest prefix wins and takes nothing from the shorter one. */
	    {"secret/zip-zap/zong", AUTH_ACL_OP_UPDATE, true, false},
	    {"secret/zip-zap/zong", AUTH_ACL_OP_READ, false, false},
	    /* Exact beats a '+' pattern; '+' is exactly one segment. */
	    {"pki/issue/web", AUTH_ACL_OP_UPDATE, true, false},
	    {"pki/issue/web", AUTH_ACL_OP_READ, false, false},
	    {"pki/sign/web", AUTH_ACL_OP_READ, true, false},
	    {"pki/sign/web", AUTH_ACL_OP_UPDATE, false, false},
	    {"pki/a/b/web", AUTH_ACL_OP_READ, false, false},
	    {"pki/issuer/xyz/issue/web", AUTH_ACL_OP_UPDATE, false, false},
	    {"pki/issuer/default/issue/web", AUTH_ACL_OP_UPDATE, true, false},
	    /* LIST paths carry a trailing '/': an exact rule without it still answers. */
	    {"pki/roles/", AUTH_ACL_OP_LIST, true, false},
	    {"pki/roles/", AUTH_ACL_OP_READ, false, false},
	    {"secret/", AUTH_ACL_OP_LIST, true, false},
	    {"list/x/", AUTH_ACL_OP_LIST, true, false},
	    {"list/x/y", AUTH_ACL_OP_LIST, true, false},
	    /* Sudo comes from the winning rule only. */
	    {"sys/leases/revoke-prefix/pki/issue/web", AUTH_ACL_OP_UPDATE, true, true},
	    {"sys/leases/revoke-force/pki", AUTH_ACL_OP_UPDATE, true, false},
	    /* Priority between non-exact patterns (Vault acl.go order). */
	    {"foo/ab", AUTH_ACL_OP_CREATE, true, false},  /* foo/a* over foo/+: its glob comes later */
	    {"foo/ab", AUTH_ACL_OP_READ, false, false},
	    {"foo/x", AUTH_ACL_OP_READ, true, false},     /* foo/+ over the foo/ prefix: not a prefix */
	    {"foo/x", AUTH_ACL_OP_DELETE, false, false},
	    {"foo/x/y", AUTH_ACL_OP_DELETE, true, false}, /* only the foo/ prefix matches two segments */
	    {"bar/x/baz", AUTH_ACL_OP_READ, true, false}, /* bar/+/baz over bar/+/ba* */
	    {"bar/x/bazooka", AUTH_ACL_OP_UPDATE, true, false},
	    {"wc/a/x/b", AUTH_ACL_OP_READ, true, false},  /* fewer '+' wins */
	    {"wc/a/y/b", AUTH_ACL_OP_UPDATE, true, false},
	    {"len/q/bar/baz", AUTH_ACL_OP_READ, true, false}, /* the longer pattern wins */
	    {"len/q/bar/bz", AUTH_ACL_OP_UPDATE, true, false},
	    {"early/mid/late/x", AUTH_ACL_OP_READ, true, false}, /* prefix early/mid/ (glob at 10) beats '+' at 6 */
	    {"early/mid/late/x", AUTH_ACL_OP_UPDATE, false, false},
	};
	static const struct pcase catch_cases[] = {
	    {"anything/else", AUTH_ACL_OP_PATCH, true, false},
	    {"anything/else", AUTH_ACL_OP_READ, false, false},
	    {"secret/foo", AUTH_ACL_OP_READ, true, false},
	    /*
	     * Vault's order for LIST: "secret/" is first searched without its
	     * slash, where only the catch-all matches, so the catch-all decides.
	     */
	    {"secret/", AUTH_ACL_OP_LIST, false, false},
	    {"secret/", AUTH_ACL_OP_READ, true, false},
	};
	struct auth_acl_policy *pc = parse_ok("pc", "path \"secret/*\" { capabilities = [\"read\", \"list\"] }\n"
	                                            "path \"*\" { capabilities = [\"patch\"] }\n");
	const struct auth_acl_policy *pcs[] = {pc};

	run_cases("p1", pols, 1, cases, sizeof(cases) / sizeof(cases[0]));
	run_cases("catch-all", pcs, 1, catch_cases, sizeof(catch_cases) / sizeof(catch_cases[0]));
	auth_acl_policy_free(pc);

	{
		/* Without the catch-all, nothing matches: denied, no rule. */
		struct auth_acl_policy *p = parse_ok("p", "path \"a\" { capabilities = [\"read\"] }");
		const struct auth_acl_policy *one[] = {p};
		struct auth_acl_decision d;

		auth_acl_evaluate(one, 1, "b", AUTH_ACL_OP_READ, NULL, &d);
		T_OK(!d.allowed && !d.matched && d.caps == 0);
		auth_acl_evaluate(one, 1, "/a", AUTH_ACL_OP_READ, NULL, &d);
		T_OK(d.allowed && d.matched);
		/* No policies at all (unknown names resolve to NULL). */
		one[0] = NULL;
		auth_acl_evaluate(one, 1, "a", AUTH_ACL_OP_READ, NULL, &d);
		T_OK(!d.allowed && !d.matched);
		auth_acl_policy_free(p);
	}
	auth_acl_policy_free(p1);
}

static void test_merge(void)
{
	struct auth_acl_policy *a = parse_ok("a", "path \"secret/*\" { capabilities = [\"read\"] }\n"
	                                          "path \"secret/zip-*\" { capabilities = [\"update\"] }\n"
	                                          "path \"x/+/y\" { capabilities = [\"read\"] }\n");
	struct auth_acl_policy *b = parse_ok("b", "path \"secret/*\" { capabilities = [\"create\", \"list\"] }\n"
	                                          "path \"x/+/y\" { capabilities = [\"update\", \"sudo\"] }\n");
	struct auth_acl_policy *c = parse_ok("c", "path \"secret/*\" { capabilities = [\"deny\"] }\n");
	const struct auth_acl_policy *ab[] = {a, b}, *abc[] = {a, b, c}, *cab[] = {c, a, b};
	static const struct pcase ab_cases[] = {
	    /* The same pattern in two policies unions its capabilities. */
	    {"secret/k", AUTH_ACL_OP_READ, true, false},
	    {"secret/k", AUTH_ACL_OP_CREATE, true, false},
	    {"secret/", AUTH_ACL_OP_LIST, true, false},
	    {"x/q/y", AUTH_ACL_OP_READ, true, true},
	    {"x/q/y", AUTH_ACL_OP_UPDATE, true, true},
	};
	static const struct pcase abc_cases[] = {
	    /* Deny on the same pattern wins, in whatever order the policies come. */
	    {"secret/k", AUTH_ACL_OP_READ, false, false},
	    {"secret/k", AUTH_ACL_OP_CREATE, false, false},
	    {"secret/", AUTH_ACL_OP_LIST, false, false},
	    /* A more specific pattern elsewhere still wins over a broader deny. */
	    {"secret/zip-a", AUTH_ACL_OP_UPDATE, true, false},
	};

	run_cases("ab", ab, 2, ab_cases, sizeof(ab_cases) / sizeof(ab_cases[0]));
	run_cases("abc", abc, 3, abc_cases, sizeof(abc_cases) / sizeof(abc_cases[0]));
	run_cases("cab", cab, 3, abc_cases, sizeof(abc_cases) / sizeof(abc_cases[0]));
	auth_acl_policy_free(a);
	auth_acl_policy_free(b);
	auth_acl_policy_free(c);
}

static bool allowed_with(const struct auth_acl_policy *const *pols, size_t n, const char *path, enum auth_acl_op op,
                         const char *body_json)
{
	json_t *body = body_json != NULL ? json_loads(body_json, 0, NULL) : NULL;
	struct auth_acl_decision d;

	auth_acl_evaluate(pols, n, path, op, body, &d);
	json_decref(body);
	return d.allowed;
}

static void test_parameters(void)
{
	struct auth_acl_policy *p = parse_ok(
	    "params", "path \"pki/issue/web\" {\n"
	              "  capabilities = [\"update\", \"read\", \"list\", \"delete\"]\n"
	              "  allowed_parameters = { \"common_name\" = [\"*.example.com\", \"exact.org\"], \"ttl\" = [],"
	              " \"count\" = [3] }\n"
	              "  denied_parameters = { \"ttl\" = [\"999h\"] }\n"
	              "  required_parameters = [\"common_name\"]\n"
	              "}\n"
	              "path \"pki/sign/web\" {\n"
	              "  capabilities = [\"update\"]\n"
	              "  denied_parameters = { \"*\" = [] }\n"
	              "}\n"
	              "path \"pki/sign/any\" {\n"
	              "  capabilities = [\"update\"]\n"
	              "  allowed_parameters = { \"*\" = [], \"format\" = [\"pem\"] }\n"
	              "}\n"
	              "path \"pki/wrapped\" {\n"
	              "  capabilities = [\"update\"]\n"
	              "  max_wrapping_ttl = \"1h\"\n"
	              "}\n");
	const struct auth_acl_policy *pols[] = {p};
	const char *web = "pki/issue/web";

	T_OK(allowed_with(pols, 1, web, AUTH_ACL_OP_UPDATE, "{\"common_name\":\"a.example.com\"}"));
	T_OK(allowed_with(pols, 1, web, AUTH_ACL_OP_UPDATE, "{\"common_name\":\"exact.org\",\"ttl\":\"1h\"}"));
	T_OK(!allowed_with(pols, 1, web, AUTH_ACL_OP_UPDATE, "{\"common_name\":\"a.evil.com\"}"));
	T_OK(!allowed_with(pols, 1, web, AUTH_ACL_OP_UPDATE, "{\"common_name\":\"sub.exact.org\"}"));
	/* required_parameters: a missing one denies, and so does an empty body. */
	T_OK(!allowed_with(pols, 1, web, AUTH_ACL_OP_UPDATE, "{\"ttl\":\"1h\"}"));
	T_OK(!allowed_with(pols, 1, web, AUTH_ACL_OP_UPDATE, "{}"));
	T_OK(!allowed_with(pols, 1, web, AUTH_ACL_OP_UPDATE, NULL));
	/* denied_parameters wins over an any-value allowed entry. */
	T_OK(!allowed_with(pols, 1, web, AUTH_ACL_OP_UPDATE, "{\"common_name\":\"a.example.com\",\"ttl\":\"999h\"}"));
	/* A parameter not in allowed_parameters is refused; names match case-insensitively. */
	T_OK(!allowed_with(pols, 1, web, AUTH_ACL_OP_UPDATE, "{\"common_name\":\"a.example.com\",\"alt_names\":\"x\"}"));
	T_OK(allowed_with(pols, 1, web, AUTH_ACL_OP_UPDATE, "{\"common_name\":\"a.example.com\",\"TTL\":\"2h\"}"));
	/* Lists and comma-separated strings: every element must be allowed. */
	T_OK(allowed_with(pols, 1, web, AUTH_ACL_OP_UPDATE, "{\"common_name\":[\"a.example.com\",\"b.example.com\"]}"));
	T_OK(!allowed_with(pols, 1, web, AUTH_ACL_OP_UPDATE, "{\"common_name\":[\"a.example.com\",\"b.evil.com\"]}"));
	T_OK(allowed_with(pols, 1, web, AUTH_ACL_OP_UPDATE, "{\"common_name\":\"a.example.com, b.example.com\"}"));
	T_OK(!allowed_with(pols, 1, web, AUTH_ACL_OP_UPDATE, "{\"common_name\":\"a.example.com,b.evil.com\"}"));
	/* An empty string is a value like any other (Vault lets it through any list; we do not). */
	T_OK(!allowed_with(pols, 1, web, AUTH_ACL_OP_UPDATE, "{\"common_name\":\"\"}"));
	/* Non-string values compare by JSON equality. */
	T_OK(allowed_with(pols, 1, web, AUTH_ACL_OP_UPDATE, "{\"common_name\":\"exact.org\",\"count\":3}"));
	T_OK(!allowed_with(pols, 1, web, AUTH_ACL_OP_UPDATE, "{\"common_name\":\"exact.org\",\"count\":4}"));
	T_OK(!allowed_with(pols, 1, web, AUTH_ACL_OP_UPDATE, "{\"common_name\":\"exact.org\",\"count\":\"3\"}"));
	/* LIST and DELETE carry no parameters to check. */
	T_OK(allowed_with(pols, 1, "pki/issue/web/", AUTH_ACL_OP_LIST, "{\"x\":1}"));
	T_OK(allowed_with(pols, 1, web, AUTH_ACL_OP_DELETE, "{\"x\":1}"));
	/* denied "*": any parameter at all is refused; none is fine. */
	T_OK(!allowed_with(pols, 1, "pki/sign/web", AUTH_ACL_OP_UPDATE, "{\"csr\":\"x\"}"));
	T_OK(allowed_with(pols, 1, "pki/sign/web", AUTH_ACL_OP_UPDATE, "{}"));
	/* allowed "*" with a constrained name. */
	T_OK(allowed_with(pols, 1, "pki/sign/any", AUTH_ACL_OP_UPDATE, "{\"csr\":\"x\",\"format\":\"pem\"}"));
	T_OK(!allowed_with(pols, 1, "pki/sign/any", AUTH_ACL_OP_UPDATE, "{\"csr\":\"x\",\"format\":\"der\"}"));
	/* Nothing here is response-wrapped, so a wrapping bound is never met. */
	T_OK(!allowed_with(pols, 1, "pki/wrapped", AUTH_ACL_OP_UPDATE, "{}"));
	auth_acl_policy_free(p);

	{
		/* Merging: an empty list for a name in one policy means any value. */
		struct auth_acl_policy *a = parse_ok("a", "path \"m\" { capabilities = [\"update\"]\n"
		                                          " allowed_parameters = { \"x\" = [\"1\"], \"y\" = [\"a\"] } }");
		struct auth_acl_policy *b = parse_ok("b", "path \"m\" { capabilities = [\"update\"]\n"
		                                          " allowed_parameters = { \"x\" = [], \"y\" = [\"b\"] } }");
		const struct auth_acl_policy *ab[] = {a, b};

		T_OK(allowed_with(ab, 2, "m", AUTH_ACL_OP_UPDATE, "{\"x\":\"anything\",\"y\":\"b\"}"));
		T_OK(allowed_with(ab, 2, "m", AUTH_ACL_OP_UPDATE, "{\"y\":\"a\"}"));
		T_OK(!allowed_with(ab, 2, "m", AUTH_ACL_OP_UPDATE, "{\"y\":\"c\"}"));
		T_OK(!allowed_with(ab, 2, "m", AUTH_ACL_OP_UPDATE, "{\"z\":\"c\"}"));
		auth_acl_policy_free(a);
		auth_acl_policy_free(b);
	}
}

static void caps_is(const struct auth_acl_policy *const *pols, size_t n, const char *path, const char *want)
{
	json_t *j = auth_acl_caps_json(auth_acl_capabilities(pols, n, path));
	char *s = json_dumps(j, JSON_COMPACT);

	T_CHECK(s != NULL && strcmp(s, want) == 0, "capabilities of %s: %s, want %s", path, s ? s : "?", want);
	free(s);
	json_decref(j);
}

static void test_capabilities(void)
{
	struct auth_acl_policy *p = parse_ok("c", "path \"secret/*\" { capabilities = [\"update\", \"read\", \"list\","
	                                          " \"create\", \"sudo\", \"delete\", \"patch\"] }\n"
	                                          "path \"secret/no\" { capabilities = [\"deny\", \"read\"] }\n"
	                                          "path \"pki/roles\" { capabilities = [\"list\"] }\n");
	const struct auth_acl_policy *pols[] = {p};

	caps_is(pols, 1, "secret/x", "[\"create\",\"delete\",\"list\",\"patch\",\"read\",\"sudo\",\"update\"]");
	caps_is(pols, 1, "secret/no", "[\"deny\"]");
	caps_is(pols, 1, "other", "[\"deny\"]");
	caps_is(pols, 1, "pki/roles", "[\"list\"]");
	caps_is(pols, 1, "pki/roles/", "[\"list\"]");
	caps_is(pols, 1, "/secret/x", "[\"create\",\"delete\",\"list\",\"patch\",\"read\",\"sudo\",\"update\"]");
	T_OK(auth_acl_op_cap(AUTH_ACL_OP_CREATE) == AUTH_ACL_CREATE && auth_acl_op_cap(AUTH_ACL_OP_PATCH) == AUTH_ACL_PATCH);
	auth_acl_policy_free(p);
}

static void test_default_policy(void)
{
	struct auth_acl_policy *p = parse_ok("default", auth_acl_default_policy);
	const struct auth_acl_policy *pols[] = {p};
	static const struct pcase cases[] = {
	    {"auth/token/lookup-self", AUTH_ACL_OP_READ, true, false},
	    {"auth/token/renew-self", AUTH_ACL_OP_UPDATE, true, false},
	    {"auth/token/revoke-self", AUTH_ACL_OP_UPDATE, true, false},
	    {"sys/capabilities-self", AUTH_ACL_OP_UPDATE, true, false},
	    {"sys/leases/renew", AUTH_ACL_OP_UPDATE, true, false},
	    {"sys/leases/lookup", AUTH_ACL_OP_UPDATE, true, false},
	    {"auth/token/create", AUTH_ACL_OP_UPDATE, false, false},
	    {"pki/issue/web", AUTH_ACL_OP_UPDATE, false, false},
	    {"sys/policies/acl/default", AUTH_ACL_OP_READ, false, false},
	};

	run_cases("default", pols, 1, cases, sizeof(cases) / sizeof(cases[0]));
	auth_acl_policy_free(p);
}

static void test_names(void)
{
	char out[AUTH_ACL_MAX_NAME_BYTES + 1];
	struct sg_err err;

	sg_err_init(&err);
	T_OK(auth_acl_name_normalize("  My-Policy ", out, sizeof(out), &err) == 0);
	T_STREQ(out, "my-policy");
	sg_err_init(&err);
	T_OK(auth_acl_name_normalize("   ", out, sizeof(out), &err) == -1);
	T_STREQ(err.detail, "policy name must be provided in the URL");
	sg_err_init(&err);
	T_OK(auth_acl_name_normalize("a/b", out, sizeof(out), &err) == -1);
	T_STREQ(err.detail, "invalid policy name: printable ASCII without '/' only");
	{
		char longname[AUTH_ACL_MAX_NAME_BYTES + 2];

		memset(longname, 'a', sizeof(longname) - 1);
		longname[sizeof(longname) - 1] = '\0';
		sg_err_init(&err);
		T_OK(auth_acl_name_normalize(longname, out, sizeof(out), &err) == -1);
		T_STREQ(err.detail, "policy name too long: at most 128 characters");
	}
}

/* ---- The store ---- */

static char *tmp_dir(void)
{
	char tmpl[] = "/tmp/sigil-acl-XXXXXX";
	char *d = mkdtemp(tmpl);

	return d != NULL ? strdup(d) : NULL;
}

static void rm_dir(const char *dir)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

static bool store_allows(struct auth_acl_store *as, const char *const *names, size_t n, const char *path,
                         enum auth_acl_op op, bool *sudo)
{
	struct sg_strlist l = {0};
	struct auth_acl_decision d;

	for (size_t i = 0; i < n; i++)
		sg_strlist_add(&l, names[i]);
	auth_acl_store_check(as, &l, path, op, NULL, &d);
	sg_strlist_clear(&l);
	if (sudo != NULL)
		*sudo = d.sudo;
	return d.allowed;
}

static void test_store(void)
{
	char *dir = tmp_dir();
	struct store *st = NULL;
	struct auth_acl_store *as = NULL;
	struct sg_err err;
	struct sg_strlist names = {0};
	char *raw = NULL;
	const char *web = "path \"pki/issue/web\" { capabilities = [\"update\"] }\n";
	const char *const both[] = {"Web", "default"};
	const char *const root[] = {"root"};
	const char *const none[] = {"nosuch"};
	bool sudo = false;

	sg_err_init(&err);
	T_OK(dir != NULL && store_open(dir, 0, &st, &err) == 0);
	T_OK(auth_acl_store_open(st, &as, &err) == 0);
	if (as == NULL)
		goto out;
	/* "default" is installed on first open with Vault's text. */
	T_OK(auth_acl_store_get(as, "default", &raw, &err) == 1);
	T_STREQ(raw, auth_acl_default_policy);
	free(raw);
	raw = NULL;
	/* Write, read back (name normalized), list. */
	T_OK(auth_acl_store_put(as, " WEB ", web, strlen(web), &err) == 0);
	T_OK(auth_acl_store_get(as, "web", &raw, &err) == 1);
	T_STREQ(raw, web);
	free(raw);
	raw = NULL;
	auth_acl_store_names(as, &names);
	T_OK(names.n == 2 && strcmp(names.v[0], "default") == 0 && strcmp(names.v[1], "web") == 0);
	sg_strlist_clear(&names);
	/* Token policy names are matched case-insensitively; default adds its own grants. */
	T_OK(store_allows(as, both, 2, "pki/issue/web", AUTH_ACL_OP_UPDATE, NULL));
	T_OK(store_allows(as, both, 2, "auth/token/lookup-self", AUTH_ACL_OP_READ, NULL));
	T_OK(!store_allows(as, both, 1, "auth/token/lookup-self", AUTH_ACL_OP_READ, NULL));
	T_OK(!store_allows(as, none, 1, "pki/issue/web", AUTH_ACL_OP_UPDATE, NULL));
	/* root: everything, with sudo. */
	T_OK(store_allows(as, root, 1, "sys/anything", AUTH_ACL_OP_DELETE, &sudo) && sudo);
	{
		struct sg_strlist l = {0};
		json_t *c;
		char *s;

		sg_strlist_add(&l, "root");
		c = auth_acl_store_capabilities(as, &l, "pki/issue/web");
		s = json_dumps(c, JSON_COMPACT);
		T_STREQ(s, "[\"root\"]");
		free(s);
		json_decref(c);
		sg_strlist_clear(&l);
		sg_strlist_add(&l, "web");
		c = auth_acl_store_capabilities(as, &l, "pki/issue/web");
		s = json_dumps(c, JSON_COMPACT);
		T_STREQ(s, "[\"update\"]");
		free(s);
		json_decref(c);
		sg_strlist_clear(&l);
	}
	/* A rewrite replaces the cached copy at once. */
	{
		const char *web2 = "{\"path\": {\"pki/issue/web\": {\"capabilities\": [\"deny\"]}}}";

		T_OK(auth_acl_store_put(as, "web", web2, strlen(web2), &err) == 0);
		T_OK(!store_allows(as, both, 2, "pki/issue/web", AUTH_ACL_OP_UPDATE, NULL));
		T_OK(auth_acl_store_put(as, "web", web, strlen(web), &err) == 0);
	}
	/* A policy that does not parse is refused and the stored one stays. */
	sg_err_init(&err);
	T_OK(auth_acl_store_put(as, "web", "path", 4, &err) == -1 && err.code == SG_BAD_REQUEST);
	T_OK(store_allows(as, both, 2, "pki/issue/web", AUTH_ACL_OP_UPDATE, NULL));
	/* root is immutable, default cannot be deleted. */
	sg_err_init(&err);
	T_OK(auth_acl_store_put(as, "Root", web, strlen(web), &err) == -1);
	T_STREQ(err.detail, "cannot update \"root\" policy");
	sg_err_init(&err);
	T_OK(auth_acl_store_delete(as, "root", &err) == -1);
	T_STREQ(err.detail, "cannot delete \"root\" policy");
	sg_err_init(&err);
	T_OK(auth_acl_store_delete(as, "default", &err) == -1);
	T_STREQ(err.detail, "cannot delete default policy");
	T_OK(auth_acl_store_get(as, "root", &raw, &err) == 1 && raw != NULL && raw[0] == '\0');
	free(raw);
	raw = NULL;
	T_OK(auth_acl_store_get(as, "nosuch", &raw, &err) == 0 && raw == NULL);
	T_OK(auth_acl_store_get(as, "bad/name", &raw, &err) == 0);
	/* default may be rewritten; it survives a reopen as written. */
	{
		const char *d = "path \"x\" { capabilities = [\"read\"] }";

		sg_err_init(&err);
		T_OK(auth_acl_store_put(as, "default", d, strlen(d), &err) == 0);
		auth_acl_store_free(as);
		as = NULL;
		T_OK(auth_acl_store_open(st, &as, &err) == 0);
		T_OK(as != NULL && auth_acl_store_get(as, "default", &raw, &err) == 1);
		T_STREQ(raw, d);
		free(raw);
		raw = NULL;
		T_OK(as != NULL && store_allows(as, both, 2, "pki/issue/web", AUTH_ACL_OP_UPDATE, NULL));
	}
	if (as == NULL)
		goto out;
	/* Delete, then absent; deleting again is not an error. */
	T_OK(auth_acl_store_delete(as, "web", &err) == 0);
	T_OK(!store_allows(as, both, 2, "pki/issue/web", AUTH_ACL_OP_UPDATE, NULL));
	T_OK(auth_acl_store_delete(as, "web", &err) == 0);
	/* A stored record that no longer parses stops the open: no unknown grants. */
	{
		struct store_batch *b = store_batch_new();
		const char *rec = "{\"name\":\"broken\",\"policy\":\"path \\\"a\\\" { capabilities = [\\\"fly\\\"] }\"}";

		store_batch_put(b, STORE_AUTH, "policy/acl/broken", strlen("policy/acl/broken"), rec, strlen(rec));
		T_OK(store_commit(st, b, &err) == 0);
		store_batch_free(b);
		auth_acl_store_free(as);
		as = NULL;
		sg_err_init(&err);
		T_OK(auth_acl_store_open(st, &as, &err) == -1 && as == NULL);
		T_OK(err.code == SG_STORAGE && strstr(err.detail, "invalid capability \\\"fly\\\"") == NULL &&
		     strstr(err.detail, "invalid capability \"fly\"") != NULL);
	}
out:
	auth_acl_store_free(as);
	store_close(st);
	if (dir != NULL)
		rm_dir(dir);
	free(dir);
}

int main(void)
{
	test_parse_hcl();
	test_parse_json();
	test_parse_errors();
	test_precedence();
	test_merge();
	test_parameters();
	test_capabilities();
	test_default_policy();
	test_names();
	test_store();
	return t_done();
}
