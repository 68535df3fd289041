/* Unit tests for roles/: the role model, Vault's validation, and the request-versus-role table. */
#include "roles/role.h"
#include "tests/unit/t.h"

#include <stdlib.h>
#include <string.h>

/* ---------------- helpers ---------------- */

static json_t *js(const char *text)
{
	json_error_t je;
	json_t *o = json_loads(text, 0, &je);

	if (o == NULL) {
		fprintf(stderr, "bad test JSON '%s': %s\n", text, je.text);
		abort();
	}
	return o;
}

/* role_new("web") + role_apply_json(body); NULL (and a failed check) when the body is refused. */
static struct role *mkrole(const char *body)
{
	struct role *r = role_new("web");
	struct sg_err err;
	json_t *o = js(body);

	sg_err_init(&err);
	if (role_apply_json(r, o, &err) < 0) {
		T_CHECK(0, "role body '%s' refused: %s", body, err.detail);
		role_free(r);
		r = NULL;
	}
	json_decref(o);
	return r;
}

/* Splits s on '|' into l (NULL adds nothing). */
static void split(struct sg_strlist *l, const char *s)
{
	while (s != NULL && *s != '\0') {
		const char *e = strchr(s, '|');
		size_t n = e != NULL ? (size_t)(e - s) : strlen(s);

		sg_strlist_addn(l, s, n);
		s = e != NULL ? e + 1 : NULL;
	}
}

/* ---------------- the request-versus-role table ---------------- */

struct name_case {
	const char *role;  /* JSON body applied to a fresh role named "web" */
	const char *cn;
	const char *dns;   /* '|'-separated lists */
	const char *emails;
	const char *ips;
	const char *uris;
	const char *others;
	const char *uids;
	const char *serial;
	enum sg_code code; /* SG_OK when allowed */
	const char *why;   /* substring of the denial */
};

#define NOCN "\"require_cn\":false"
#define R_DEFAULT "{}"
#define R_BARE "{\"allowed_domains\":\"example.com\",\"allow_bare_domains\":true}"
#define R_SUB "{\"allowed_domains\":\"example.com\",\"allow_subdomains\":true}"
#define R_BOTH "{\"allowed_domains\":[\"example.com\"],\"allow_subdomains\":true,\"allow_bare_domains\":true}"
#define R_GLOB "{\"allowed_domains\":\"*.example.com\",\"allow_glob_domains\":true}"
#define R_ANY "{\"allow_any_name\":true}"
#define R_ANY_NOCN "{\"allow_any_name\":true," NOCN "}"
#define R_NOCN "{" NOCN "}"

#define OK SG_OK, NULL
#define DENY(s) SG_ROLE_DENIED, s
#define BAD(s) SG_BAD_REQUEST, s
#define NOMATCH "no match in allowed_domains"
#define HOST "enforce_hostnames"
#define WILDFORM "one '*' only"

/* Fields: role, cn, dns, emails, ips, uris, others, uids, serial, code, why. */
static const struct name_case cases[] = {
	/* --- allow_bare_domains --- */
	{R_BARE, "example.com", NULL, NULL, NULL, NULL, NULL, NULL, NULL, OK},
	{R_BARE, "EXAMPLE.Com", NULL, NULL, NULL, NULL, NULL, NULL, NULL, OK},
	{R_BARE, "www.example.com", NULL, NULL, NULL, NULL, NULL, NULL, NULL, DENY(NOMATCH)},
	{R_BARE, "notexample.com", NULL, NULL, NULL, NULL, NULL, NULL, NULL, DENY("common name 'notexample.com'")},
	{R_BARE, "example.com.evil.com", NULL, NULL, NULL, NULL, NULL, NULL, NULL, DENY(NOMATCH)},
	{R_BARE, "*.example.com", NULL, NULL, NULL, NULL, NULL, NULL, NULL, DENY(NOMATCH)},
	{R_BARE, "user@example.com", NULL, NULL, NULL, NULL, NULL, NULL, NULL, OK},
	{R_BARE, "example.com", NULL, "user@example.com", NULL, NULL, NULL, NULL, NULL, OK},
	{R_BARE, "example.com", NULL, "user@sub.example.com", NULL, NULL, NULL, NULL, NULL,
	 DENY("email address 'user@sub.example.com' not allowed by role 'web'")},
	{R_BARE, "example.com", "example.com|www.example.com", NULL, NULL, NULL, NULL, NULL, NULL,
	 DENY("subject alternative name 'www.example.com' not allowed by role 'web'")},
	/* --- allow_subdomains --- */
	{R_SUB, "www.example.com", NULL, NULL, NULL, NULL, NULL, NULL, NULL, OK},
	{R_SUB, "a.b.c.example.com", NULL, NULL, NULL, NULL, NULL, NULL, NULL, OK},
	{R_SUB, "example.com", NULL, NULL, NULL, NULL, NULL, NULL, NULL, DENY(NOMATCH)},
	{R_SUB, "*.example.com", NULL, NULL, NULL, NULL, NULL, NULL, NULL, OK},
	{R_SUB, "*.www.example.com", NULL, NULL, NULL, NULL, NULL, NULL, NULL, OK},
	{R_SUB, "foo*.example.com", NULL, NULL, NULL, NULL, NULL, NULL, NULL, OK},
	{R_SUB, "*foo.example.com", NULL, NULL, NULL, NULL, NULL, NULL, NULL, OK},
	{R_SUB, "f*o.example.com", NULL, NULL, NULL, NULL, NULL, NULL, NULL, OK},
	{R_SUB, "wwwexample.com", NULL, NULL, NULL, NULL, NULL, NULL, NULL, DENY(NOMATCH)},
	{R_SUB, "www.example.com.evil.com", NULL, NULL, NULL, NULL, NULL, NULL, NULL, DENY(NOMATCH)},
	/* Vault compares the subdomain suffix case-sensitively. */
	{R_SUB, "WWW.EXAMPLE.COM", NULL, NULL, NULL, NULL, NULL, NULL, NULL, DENY(NOMATCH)},
	{R_SUB, "www.example.com.", NULL, NULL, NULL, NULL, NULL, NULL, NULL, DENY(NOMATCH)},
	{R_SUB, "user@mail.example.com", NULL, NULL, NULL, NULL, NULL, NULL, NULL, OK},
	{R_SUB, "user@example.com", NULL, NULL, NULL, NULL, NULL, NULL, NULL, DENY(NOMATCH)},
	{R_SUB, "www.example.com", "api.example.com|x.y.example.com", NULL, NULL, NULL, NULL, NULL, NULL, OK},
	{R_SUB, "www.example.com", "api.example.com|x.evil.com", NULL, NULL, NULL, NULL, NULL, NULL,
	 DENY("subject alternative name 'x.evil.com' not allowed by role 'web'")},
	{R_SUB, "evil.com", "www.example.com", NULL, NULL, NULL, NULL, NULL, NULL, DENY("common name 'evil.com'")},
	/* --- bare + subdomains, several domains --- */
	{R_BOTH, "example.com", "x.example.com", NULL, NULL, NULL, NULL, NULL, NULL, OK},
	{"{\"allowed_domains\":\"example.com,example.org\",\"allow_subdomains\":true}", "a.example.org", NULL,
	 NULL, NULL, NULL, NULL, NULL, NULL, OK},
	{"{\"allowed_domains\":\"example.com,example.org\",\"allow_subdomains\":true}", "a.example.net", NULL,
	 NULL, NULL, NULL, NULL, NULL, NULL, DENY(NOMATCH)},
	/* --- allow_glob_domains --- */
	{R_GLOB, "www.example.com", NULL, NULL, NULL, NULL, NULL, NULL, NULL, OK},
	{R_GLOB, "a.b.example.com", NULL, NULL, NULL, NULL, NULL, NULL, NULL, OK},
	{R_GLOB, "example.com", NULL, NULL, NULL, NULL, NULL, NULL, NULL, DENY(NOMATCH)},
	{R_GLOB, "www.example.com.evil.org", NULL, NULL, NULL, NULL, NULL, NULL, NULL, DENY(NOMATCH)},
	{R_GLOB, "WWW.Example.COM", NULL, NULL, NULL, NULL, NULL, NULL, NULL, OK},
	{R_GLOB, "user@mail.example.com", NULL, NULL, NULL, NULL, NULL, NULL, NULL, OK},
	{"{\"allowed_domains\":\"ftp*.example.com\",\"allow_glob_domains\":true}", "ftp1.example.com", NULL, NULL,
	 NULL, NULL, NULL, NULL, NULL, OK},
	{"{\"allowed_domains\":\"ftp*.example.com\",\"allow_glob_domains\":true}", "ftp.example.com", NULL, NULL,
	 NULL, NULL, NULL, NULL, NULL, OK},
	{"{\"allowed_domains\":\"ftp*.example.com\",\"allow_glob_domains\":true}", "ftp.a.example.com", NULL, NULL,
	 NULL, NULL, NULL, NULL, NULL, OK},
	{"{\"allowed_domains\":\"ftp*.example.com\",\"allow_glob_domains\":true}", "web.example.com", NULL, NULL,
	 NULL, NULL, NULL, NULL, NULL, DENY(NOMATCH)},
	/* Glob and subdomain matching do not compose. */
	{"{\"allowed_domains\":\"foo.*.example.com\",\"allow_glob_domains\":true,\"allow_subdomains\":true}",
	 "foo.baz.example.com", NULL, NULL, NULL, NULL, NULL, NULL, NULL, OK},
	{"{\"allowed_domains\":\"foo.*.example.com\",\"allow_glob_domains\":true,\"allow_subdomains\":true}",
	 "bar.foo.baz.example.com", NULL, NULL, NULL, NULL, NULL, NULL, NULL, DENY(NOMATCH)},
	/* A domain without '*' is no glob: it needs bare or subdomains. */
	{"{\"allowed_domains\":\"example.com\",\"allow_glob_domains\":true}", "example.com", NULL, NULL, NULL, NULL,
	 NULL, NULL, NULL, DENY(NOMATCH)},
	/* Every literal part of a glob must be there (Vault's go-glob lets "www" through here). */
	{"{\"allowed_domains\":\"www*.example.com\",\"allow_glob_domains\":true}", "www", NULL, NULL, NULL, NULL,
	 NULL, NULL, NULL, DENY(NOMATCH)},
	{"{\"allowed_domains\":\"a*b*c.example.com\",\"allow_glob_domains\":true}", "axbyc.example.com", NULL, NULL,
	 NULL, NULL, NULL, NULL, NULL, OK},
	{"{\"allowed_domains\":\"a*b*c.example.com\",\"allow_glob_domains\":true}", "acb.example.com", NULL, NULL,
	 NULL, NULL, NULL, NULL, NULL, DENY(NOMATCH)},
	{"{\"allowed_domains\":\"*\",\"allow_glob_domains\":true}", "anything.example.org", NULL, NULL, NULL, NULL,
	 NULL, NULL, NULL, OK},
	/* --- wildcards --- */
	{"{\"allowed_domains\":\"example.com\",\"allow_subdomains\":true,\"allow_wildcard_certificates\":false}",
	 "*.example.com", NULL, NULL, NULL, NULL, NULL, NULL, NULL, DENY("allow_wildcard_certificates is false")},
	{"{\"allowed_domains\":\"example.com\",\"allow_subdomains\":true,\"allow_wildcard_certificates\":false}",
	 "www.example.com", NULL, NULL, NULL, NULL, NULL, NULL, NULL, OK},
	/* allow_wildcard_certificates=false beats allow_any_name. */
	{"{\"allow_any_name\":true,\"allow_wildcard_certificates\":\"false\"}", "*.foo.com", NULL, NULL, NULL, NULL,
	 NULL, NULL, NULL, DENY("allow_wildcard_certificates")},
	{R_SUB, "*.*.example.com", NULL, NULL, NULL, NULL, NULL, NULL, NULL, DENY(WILDFORM)},
	{R_SUB, "www.*.example.com", NULL, NULL, NULL, NULL, NULL, NULL, NULL, DENY("left-most label")},
	{R_SUB, "**.example.com", NULL, NULL, NULL, NULL, NULL, NULL, NULL, DENY(WILDFORM)},
	{R_SUB, "*-*.example.com", NULL, NULL, NULL, NULL, NULL, NULL, NULL, DENY(WILDFORM)},
	{R_SUB, "f-*.example.com", NULL, NULL, NULL, NULL, NULL, NULL, NULL, DENY(HOST)},
	{"{\"allowed_domains\":\"example.com\",\"allow_subdomains\":true,\"enforce_hostnames\":false}",
	 "f-*.example.com", NULL, NULL, NULL, NULL, NULL, NULL, NULL, OK},
	{R_ANY, "*", NULL, NULL, NULL, NULL, NULL, NULL, NULL, OK},
	{R_ANY, "*.com", NULL, NULL, NULL, NULL, NULL, NULL, NULL, OK},
	{R_ANY_NOCN, NULL, NULL, "user@*.example.com", NULL, NULL, NULL, NULL, NULL, DENY("wildcard domain")},
	{R_SUB, "*.example.com", "*.example.com|*.api.example.com", NULL, NULL, NULL, NULL, NULL, NULL, OK},
	{R_DEFAULT, "*.localhost", NULL, NULL, NULL, NULL, NULL, NULL, NULL, OK},
	/* --- enforce_hostnames --- */
	{R_ANY, "my host", NULL, NULL, NULL, NULL, NULL, NULL, NULL, DENY(HOST)},
	{"{\"allow_any_name\":true,\"enforce_hostnames\":false}", "my host", NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	 OK},
	{R_ANY, "under_score.example.com", NULL, NULL, NULL, NULL, NULL, NULL, NULL, DENY(HOST)},
	{R_ANY, "-lead.example.com", NULL, NULL, NULL, NULL, NULL, NULL, NULL, DENY(HOST)},
	{R_ANY, "trail-.example.com", NULL, NULL, NULL, NULL, NULL, NULL, NULL, DENY(HOST)},
	{R_ANY, "mid-dle.example.com", NULL, NULL, NULL, NULL, NULL, NULL, NULL, OK},
	{R_ANY, "a..b.com", NULL, NULL, NULL, NULL, NULL, NULL, NULL, DENY(HOST)},
	{R_ANY, ".example.com", NULL, NULL, NULL, NULL, NULL, NULL, NULL, DENY(HOST)},
	{R_ANY, "1.2.3.4", NULL, NULL, NULL, NULL, NULL, NULL, NULL, OK},
	{R_ANY, "b\xc3\xbc" "cher.example", NULL, NULL, NULL, NULL, NULL, NULL, NULL, DENY(HOST)},
	{R_ANY, "xn--bcher-kva.example", NULL, NULL, NULL, NULL, NULL, NULL, NULL, OK},
	{R_ANY, "host.example.com.", NULL, NULL, NULL, NULL, NULL, NULL, NULL, OK},
	{R_ANY, "host.example.com..", NULL, NULL, NULL, NULL, NULL, NULL, NULL, DENY(HOST)},
	{R_ANY, "first.last+tag@example.com", NULL, NULL, NULL, NULL, NULL, NULL, NULL, OK},
	{R_ANY, "bad@@example.com", NULL, NULL, NULL, NULL, NULL, NULL, NULL, DENY("exactly one '@'")},
	{R_ANY_NOCN, NULL, NULL, "a@b@example.com", NULL, NULL, NULL, NULL, NULL, DENY("exactly one '@'")},
	{R_ANY_NOCN, NULL, NULL, "user@bad_host.com", NULL, NULL, NULL, NULL, NULL,
	 DENY("email address 'user@bad_host.com'")},
	{"{\"allow_any_name\":true,\"enforce_hostnames\":false," NOCN "}", NULL, NULL, "user@bad_host.com", NULL,
	 NULL, NULL, NULL, NULL, OK},
	{R_ANY, "a23456789012345678901234567890123456789012345678901234567890123.com", NULL, NULL, NULL, NULL, NULL,
	 NULL, NULL, OK},
	{R_ANY, "a234567890123456789012345678901234567890123456789012345678901234.com", NULL, NULL, NULL, NULL, NULL,
	 NULL, NULL, DENY(HOST)},
	/* --- allow_any_name and no domains --- */
	{R_ANY, "anything.example.net", NULL, NULL, NULL, NULL, NULL, NULL, NULL, OK},
	{R_DEFAULT, "www.example.com", NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	 DENY("allowed_domains is empty and allow_any_name is false")},
	/* --- localhost --- */
	{R_DEFAULT, "localhost", NULL, NULL, NULL, NULL, NULL, NULL, NULL, OK},
	{R_DEFAULT, "localdomain", NULL, NULL, NULL, NULL, NULL, NULL, NULL, OK},
	{R_DEFAULT, "root@localhost", NULL, NULL, NULL, NULL, NULL, NULL, NULL, OK},
	{R_DEFAULT, "LOCALHOST", NULL, NULL, NULL, NULL, NULL, NULL, NULL, DENY("'LOCALHOST'")},
	{"{\"allow_localhost\":false}", "localhost", NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	 DENY("common name 'localhost' not allowed by role 'web'")},
	{R_DEFAULT, "foo.localhost", NULL, NULL, NULL, NULL, NULL, NULL, NULL, DENY("allowed_domains is empty")},
	{"{\"allow_subdomains\":true}", "foo.localhost", NULL, NULL, NULL, NULL, NULL, NULL, NULL, OK},
	{"{\"allow_subdomains\":true}", "a.b.localdomain", NULL, NULL, NULL, NULL, NULL, NULL, NULL, OK},
	{"{\"allow_subdomains\":true,\"allow_localhost\":false}", "foo.localhost", NULL, NULL, NULL, NULL, NULL, NULL,
	 NULL, DENY("allowed_domains is empty")},
	/* --- IP SANs --- */
	{R_NOCN, NULL, NULL, NULL, "10.0.0.1", NULL, NULL, NULL, NULL, OK},
	{R_NOCN, NULL, NULL, NULL, "::1|2001:db8::1|::ffff:10.0.0.1", NULL, NULL, NULL, NULL, OK},
	{"{\"allow_ip_sans\":false," NOCN "}", NULL, NULL, NULL, "10.0.0.1", NULL, NULL, NULL, NULL,
	 DENY("IP Subject Alternative Names are not allowed in this role")},
	{R_NOCN, NULL, NULL, NULL, "300.1.1.1", NULL, NULL, NULL, NULL, BAD("not a valid IP address")},
	{R_NOCN, NULL, NULL, NULL, "10.0.0", NULL, NULL, NULL, NULL, BAD("'10.0.0' is not a valid IP")},
	{R_NOCN, NULL, NULL, NULL, "fe80::1%eth0", NULL, NULL, NULL, NULL, BAD("not a valid IP address")},
	{R_NOCN, NULL, NULL, NULL, "010.0.0.1", NULL, NULL, NULL, NULL, BAD("not a valid IP address")},
	{R_NOCN, NULL, NULL, NULL, "example.com", NULL, NULL, NULL, NULL, BAD("not a valid IP address")},
	/* --- URI SANs --- */
	{"{\"allowed_uri_sans\":\"spiffe://cluster.local/*\"," NOCN "}", NULL, NULL, NULL, NULL,
	 "spiffe://cluster.local/ns/a/sa/b", NULL, NULL, NULL, OK},
	{"{\"allowed_uri_sans\":\"spiffe://cluster.local/*\"," NOCN "}", NULL, NULL, NULL, NULL, "spiffe://other/ns",
	 NULL, NULL, NULL, DENY("no match in allowed_uri_sans")},
	{"{\"allowed_uri_sans\":\"spiffe://cluster.local/*\"," NOCN "}", NULL, NULL, NULL, NULL,
	 "SPIFFE://cluster.local/x", NULL, NULL, NULL, DENY("URI Subject Alternative Name 'SPIFFE://cluster.local/x'")},
	{R_NOCN, NULL, NULL, NULL, NULL, "https://x.example.com/", NULL, NULL, NULL,
	 DENY("allowed_uri_sans is empty")},
	{"{\"allowed_uri_sans\":[\"https://exact.example/\"]," NOCN "}", NULL, NULL, NULL, NULL,
	 "https://exact.example/", NULL, NULL, NULL, OK},
	{"{\"allowed_uri_sans\":[\"https://exact.example/\"]," NOCN "}", NULL, NULL, NULL, NULL,
	 "https://exact.example/x", NULL, NULL, NULL, DENY("allowed_uri_sans")},
	{"{\"allowed_uri_sans\":\"*\"," NOCN "}", NULL, NULL, NULL, NULL, "https://x/%zz", NULL, NULL, NULL,
	 BAD("not a valid URI")},
	{"{\"allowed_uri_sans\":\"*\"," NOCN "}", NULL, NULL, NULL, NULL, "https://x/\x01", NULL, NULL, NULL,
	 BAD("not a valid URI")},
	{"{\"allowed_uri_sans\":\"*\"," NOCN "}", NULL, NULL, NULL, NULL, "urn:uuid:6e8bc430-9c3a-11d9", NULL, NULL,
	 NULL, OK},
	/* --- other SANs --- */
	{"{\"allowed_other_sans\":\"1.3.6.1.4.1.311.20.2.3;UTF8:*@example.com\"," NOCN "}", NULL, NULL, NULL, NULL,
	 NULL, "1.3.6.1.4.1.311.20.2.3;UTF8:joe@example.com", NULL, NULL, OK},
	{"{\"allowed_other_sans\":\"1.3.6.1.4.1.311.20.2.3;UTF8:*@example.com\"," NOCN "}", NULL, NULL, NULL, NULL,
	 NULL, "1.3.6.1.4.1.311.20.2.3;UTF8:joe@evil.com", NULL, NULL, DENY("value not allowed for this OID")},
	{"{\"allowed_other_sans\":\"1.3.6.1.4.1.311.20.2.3;UTF8:*@example.com\"," NOCN "}", NULL, NULL, NULL, NULL,
	 NULL, "1.2.3.4;UTF8:x", NULL, NULL, DENY("other SAN OID '1.2.3.4' not allowed by role 'web'")},
	{"{\"allowed_other_sans\":\"*\"," NOCN "}", NULL, NULL, NULL, NULL, NULL, "1.2.3.4;UTF8:anything at all",
	 NULL, NULL, OK},
	{"{\"allowed_other_sans\":\"*\"," NOCN "}", NULL, NULL, NULL, NULL, NULL, "1.2.3.4;IA5:x", NULL, NULL,
	 BAD("only utf8")},
	{"{\"allowed_other_sans\":\"*\"," NOCN "}", NULL, NULL, NULL, NULL, NULL, "1.2.3.4:UTF8:x", NULL, NULL,
	 BAD("semicolon")},
	{"{\"allowed_other_sans\":\"*\"," NOCN "}", NULL, NULL, NULL, NULL, NULL, "1.2.3.4;UTF8x", NULL, NULL,
	 BAD("colon")},
	{"{\"allowed_other_sans\":\"*\"," NOCN "}", NULL, NULL, NULL, NULL, NULL, "notanoid;UTF8:x", NULL, NULL,
	 BAD("not a valid OID")},
	{R_NOCN, NULL, NULL, NULL, NULL, NULL, "1.2.3.4;utf-8:x", NULL, NULL, DENY("OID not in allowed_other_sans")},
	{"{\"allowed_other_sans\":\"1.2.3.4;UTF8:*\"," NOCN "}", NULL, NULL, NULL, NULL, NULL, "1.2.3.4;utf-8:whatever",
	 NULL, NULL, OK},
	{"{\"allowed_other_sans\":[\"1.2.3.4;UTF8:a\",\"1.2.3.4;UTF-8:b\"]," NOCN "}", NULL, NULL, NULL, NULL, NULL,
	 "1.2.3.4;UTF8:b", NULL, NULL, OK},
	/* --- user ids --- */
	{R_NOCN, NULL, NULL, NULL, NULL, NULL, NULL, "alice", NULL, DENY("allowed_user_ids is empty")},
	{"{\"allowed_user_ids\":\"alice,bob\"," NOCN "}", NULL, NULL, NULL, NULL, NULL, NULL, "ALICE|bob", NULL, OK},
	{"{\"allowed_user_ids\":\"alice\"," NOCN "}", NULL, NULL, NULL, NULL, NULL, NULL, "carol", NULL,
	 DENY("user_id 'carol' not allowed by role 'web'")},
	{"{\"allowed_user_ids\":\"svc-*\"," NOCN "}", NULL, NULL, NULL, NULL, NULL, NULL, "svc-web", NULL, OK},
	{"{\"allowed_user_ids\":\"svc-*\"," NOCN "}", NULL, NULL, NULL, NULL, NULL, NULL, "SVC-web", NULL,
	 DENY("no match in allowed_user_ids")},
	{"{\"allowed_user_ids\":\"*\"," NOCN "}", NULL, NULL, NULL, NULL, NULL, NULL, "anyone", NULL, OK},
	/* --- Subject serialNumber --- */
	{R_NOCN, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "1234", DENY("allowed_serial_numbers is empty")},
	{"{\"allowed_serial_numbers\":\"1234\"," NOCN "}", NULL, NULL, NULL, NULL, NULL, NULL, NULL, "1234", OK},
	{"{\"allowed_serial_numbers\":\"1234\"," NOCN "}", NULL, NULL, NULL, NULL, NULL, NULL, NULL, "12345",
	 DENY("serial_number '12345' not allowed by role 'web'")},
	{"{\"allowed_serial_numbers\":\"SN-*\"," NOCN "}", NULL, NULL, NULL, NULL, NULL, NULL, NULL, "SN-42", OK},
	{"{\"allowed_serial_numbers\":\"SN-*\"," NOCN "}", NULL, NULL, NULL, NULL, NULL, NULL, NULL, "sn-42",
	 DENY("no match in allowed_serial_numbers")},
	/* --- require_cn --- */
	{R_ANY, NULL, "a.example.com", NULL, NULL, NULL, NULL, NULL, NULL, DENY("require_cn")},
	{R_ANY, "", NULL, NULL, NULL, NULL, NULL, NULL, NULL, DENY("common_name field is required")},
	{R_ANY_NOCN, NULL, "a.example.com", NULL, NULL, NULL, NULL, NULL, NULL, OK},
	{R_ANY_NOCN, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, OK},
	/* --- cn_validations --- */
	{"{\"allow_any_name\":true,\"cn_validations\":\"email\"}", "host.example.com", NULL, NULL, NULL, NULL, NULL,
	 NULL, NULL, DENY("cn_validations does not include hostname")},
	{"{\"allow_any_name\":true,\"cn_validations\":\"email\"}", "user@example.com", NULL, NULL, NULL, NULL, NULL,
	 NULL, NULL, OK},
	{"{\"allow_any_name\":true,\"cn_validations\":\"hostname\"}", "user@example.com", NULL, NULL, NULL, NULL, NULL,
	 NULL, NULL, DENY("cn_validations does not include email")},
	{"{\"allow_any_name\":true,\"cn_validations\":[\"Hostname\"]}", "host.example.com", NULL, NULL, NULL, NULL,
	 NULL, NULL, NULL, OK},
	/* disabled skips every CN check, allowed_domains and wildcard rules included ... */
	{"{\"cn_validations\":\"disabled\"}", "Any Thing At All", NULL, NULL, NULL, NULL, NULL, NULL, NULL, OK},
	{"{\"cn_validations\":\"disabled\",\"allow_wildcard_certificates\":false}", "*", NULL, NULL, NULL, NULL, NULL,
	 NULL, NULL, OK},
	/* ... but not the SAN checks. */
	{"{\"cn_validations\":\"disabled\"}", "Any Thing", "evil.com", NULL, NULL, NULL, NULL, NULL, NULL,
	 DENY("subject alternative name 'evil.com'")},
	/* --- the order of checks: CN, serial, DNS, email, other, IP, URI, user id --- */
	{R_SUB, "www.example.com", "evil.com", "x@evil.com", NULL, NULL, NULL, NULL, NULL,
	 DENY("subject alternative name 'evil.com'")},
	{"{\"allowed_domains\":\"example.com\",\"allow_subdomains\":true,\"allow_ip_sans\":false}", "www.example.com",
	 "a.example.com", "x@evil.com", "10.1.1.1", NULL, NULL, NULL, NULL, DENY("email address 'x@evil.com'")},
	{"{\"allowed_domains\":\"example.com\",\"allow_subdomains\":true,\"allow_ip_sans\":false}", "www.example.com",
	 NULL, NULL, "10.1.1.1", "https://a/", NULL, NULL, NULL, DENY("allow_ip_sans is false")},
	{"{\"allowed_domains\":\"example.com\",\"allow_subdomains\":true}", "www.example.com", NULL, NULL, NULL, NULL,
	 NULL, "u1", "s1", DENY("serial_number 's1'")},
	/* A realistic cert-manager request. */
	{"{\"allowed_domains\":\"svc.cluster.local\",\"allow_subdomains\":true,\"allowed_uri_sans\":"
	 "\"spiffe://cluster.local/*\",\"require_cn\":\"false\"}",
	 "web.default.svc.cluster.local", "web.default.svc.cluster.local|web.default.svc", NULL, "10.96.0.10",
	 "spiffe://cluster.local/ns/default/sa/web", NULL, NULL, NULL,
	 DENY("subject alternative name 'web.default.svc'")},
	{"{\"allowed_domains\":\"svc.cluster.local\",\"allow_subdomains\":true,\"allowed_uri_sans\":"
	 "\"spiffe://cluster.local/*\",\"require_cn\":\"false\"}",
	 NULL, "web.default.svc.cluster.local|*.web.default.svc.cluster.local", NULL, "10.96.0.10|fd00::10",
	 "spiffe://cluster.local/ns/default/sa/web", NULL, NULL, NULL, OK},
};

static void test_name_table(void)
{
	size_t n = sizeof(cases) / sizeof(cases[0]);

	T_CHECK(n >= 100, "only %zu table cases", n);
	for (size_t i = 0; i < n; i++) {
		const struct name_case *c = &cases[i];
		struct role *r = mkrole(c->role);
		struct role_names nm;
		struct sg_err err;
		int rc;

		if (r == NULL)
			continue;
		role_names_init(&nm);
		nm.common_name = c->cn != NULL ? sg_xstrdup(c->cn) : NULL;
		nm.subject_serial = c->serial != NULL ? sg_xstrdup(c->serial) : NULL;
		split(&nm.dns, c->dns);
		split(&nm.emails, c->emails);
		split(&nm.ips, c->ips);
		split(&nm.uris, c->uris);
		split(&nm.other_sans, c->others);
		split(&nm.user_ids, c->uids);
		sg_err_init(&err);
		rc = role_check_names(r, &nm, &err);
		if (c->code == SG_OK) {
			T_CHECK(rc == 0, "case %zu (cn '%s'): denied: %s", i, c->cn ? c->cn : "", err.detail);
		} else {
			T_CHECK(rc == -1 && err.code == c->code, "case %zu (cn '%s'): rc %d code %s, want %s (%s)", i,
			        c->cn ? c->cn : "", rc, sg_err_name(err.code), sg_err_name(c->code), err.detail);
			T_CHECK(strstr(err.detail, c->why) != NULL, "case %zu: '%s' lacks '%s'", i, err.detail, c->why);
		}
		role_names_clear(&nm);
		role_free(r);
	}
}

static void test_name_caps(void)
{
	struct role *r = mkrole(R_ANY_NOCN);
	struct role_names nm;
	struct sg_err err;
	char *big;

	role_names_init(&nm);
	for (int i = 0; i < ROLE_MAX_SANS; i++)
		sg_strlist_add(&nm.dns, "a.example.com");
	sg_err_init(&err);
	T_OK(role_check_names(r, &nm, &err) == 0);
	sg_strlist_add(&nm.ips, "10.0.0.1");
	T_OK(role_check_names(r, &nm, &err) == -1 && err.code == SG_BAD_REQUEST);
	T_OK(strstr(err.detail, "too many names") != NULL);
	role_names_clear(&nm);

	big = sg_xmalloc(ROLE_MAX_NAME_BYTES + 2);
	memset(big, 'a', ROLE_MAX_NAME_BYTES + 1);
	big[ROLE_MAX_NAME_BYTES + 1] = '\0';
	role_names_init(&nm);
	nm.common_name = big;
	sg_err_init(&err);
	T_OK(role_check_names(r, &nm, &err) == -1 && err.code == SG_BAD_REQUEST);
	T_OK(strstr(err.detail, "common name longer") != NULL);
	role_names_clear(&nm);

	/* Without a role name the detail says "this role". */
	free(r->name);
	r->name = sg_xstrdup("");
	r->allow_any_name = false;
	role_names_init(&nm);
	nm.common_name = sg_xstrdup("x.evil.com");
	sg_err_init(&err);
	T_OK(role_check_names(r, &nm, &err) == -1 && err.code == SG_ROLE_DENIED);
	T_OK(strstr(err.detail, "common name 'x.evil.com' not allowed by this role") != NULL);
	role_names_clear(&nm);
	role_free(r);
}

/* ---------------- defaults ---------------- */

static void test_defaults(void)
{
	struct role *r = role_new("web");

	T_STREQ(r->name, "web");
	T_STREQ(r->issuer_ref, "default");
	T_OK(r->allow_localhost && r->allow_wildcard_certificates && r->enforce_hostnames && r->allow_ip_sans);
	T_OK(!r->allow_any_name && !r->allow_bare_domains && !r->allow_subdomains && !r->allow_glob_domains);
	T_OK(r->server_flag && r->client_flag && !r->code_signing_flag && !r->email_protection_flag);
	T_OK(r->require_cn && r->use_csr_common_name && r->use_csr_sans);
	T_STREQ(r->key_type, "rsa");
	T_OK(r->key_bits == 2048 && r->signature_bits == 256 && !r->use_pss);
	T_OK(r->key_usage.n == 3);
	T_OK(role_key_usage_bits(&r->key_usage) ==
	     (ROLE_KU_DIGITAL_SIGNATURE | ROLE_KU_KEY_AGREEMENT | ROLE_KU_KEY_ENCIPHERMENT));
	T_OK(r->cn_validations.n == 2 && sg_strlist_has(&r->cn_validations, "email") &&
	     sg_strlist_has(&r->cn_validations, "hostname"));
	T_OK(r->not_before_duration == 30 && r->ttl == 0 && r->max_ttl == 0 && r->not_after == NULL);
	T_OK(!r->generate_lease && !r->no_store);
	T_OK(role_eku_bits(r) == ((1u << 1) | (1u << 2)));
	T_STREQ(role_eku_oid(1), "1.3.6.1.5.5.7.3.1");
	T_STREQ(role_eku_oid(2), "1.3.6.1.5.5.7.3.2");
	T_OK(role_eku_oid(ROLE_EKU_COUNT) == NULL);
	role_free(r);
	role_free(NULL);
}

/* ---------------- role_apply_json ---------------- */

static void test_apply_errors(void)
{
	static const struct {
		const char *body;
		const char *field;
	} bad[] = {
		{"{\"key_type\":\"dsa\"}", "key_type"},
		{"{\"key_type\":\"RSA\"}", "key_type"},
		{"{\"key_type\":5}", "key_type"},
		{"{\"key_type\":\"rsa\",\"key_bits\":1024}", "key_bits"},
		{"{\"key_type\":\"rsa\",\"key_bits\":3000}", "key_bits"},
		{"{\"key_type\":\"ec\",\"key_bits\":512}", "key_bits"},
		{"{\"key_type\":\"ec\",\"key_bits\":2048}", "key_bits"},
		{"{\"key_bits\":-1}", "key_bits"},
		{"{\"key_bits\":\"lots\"}", "key_bits"},
		{"{\"signature_bits\":123}", "signature_bits"},
		{"{\"key_type\":\"ec\",\"signature_bits\":1}", "signature_bits"},
		{"{\"key_usage\":\"DigitalSignature,Bogus\"}", "key_usage"},
		{"{\"ext_key_usage\":[\"ServerAuth\",\"Nope\"]}", "ext_key_usage"},
		{"{\"ext_key_usage_oids\":\"1.2.x\"}", "ext_key_usage_oids"},
		{"{\"ext_key_usage_oids\":\"7.1\"}", "ext_key_usage_oids"},
		{"{\"ext_key_usage_oids\":\"1\"}", "ext_key_usage_oids"},
		{"{\"policy_identifiers\":\"abc\"}", "policy_identifiers"},
		{"{\"policy_identifiers\":[{\"cps\":\"https://x\"}]}", "policy_identifiers"},
		{"{\"policy_identifiers\":\"[{\\\"oid\\\":\\\"1.2.q\\\"}]\"}", "policy_identifiers"},
		{"{\"policy_identifiers\":[7]}", "policy_identifiers"},
		{"{\"policy_identifiers\":{\"oid\":\"1.2.3\"}}", "policy_identifiers"},
		{"{\"ttl\":\"2h\",\"max_ttl\":\"1h\"}", "max_ttl"},
		{"{\"ttl\":\"soon\"}", "ttl"},
		{"{\"max_ttl\":-5}", "max_ttl"},
		{"{\"not_before_duration\":\"x\"}", "not_before_duration"},
		{"{\"not_after\":\"tomorrow\"}", "not_after"},
		{"{\"not_after\":\"2030-13-01T00:00:00Z\"}", "not_after"},
		{"{\"cn_validations\":\"email,bogus\"}", "cn_validations"},
		{"{\"cn_validations\":\"email,Email\"}", "cn_validations"},
		{"{\"cn_validations\":\"disabled,hostname\"}", "cn_validations"},
		{"{\"allowed_other_sans\":\"1.2.3;UTF8\"}", "allowed_other_sans"},
		{"{\"allowed_other_sans\":\"1.2.3:UTF8:x\"}", "allowed_other_sans"},
		{"{\"allowed_other_sans\":\"*,1.2.3;IA5:x\"}", "allowed_other_sans"},
		{"{\"allow_any_name\":\"maybe\"}", "allow_any_name"},
		{"{\"no_store\":2}", "no_store"},
		{"{\"generate_lease\":[]}", "generate_lease"},
		{"{\"allowed_domains\":{\"a\":1}}", "allowed_domains"},
		{"{\"allowed_uri_sans\":[1,2]}", "allowed_uri_sans"},
		{"{\"issuer_ref\":5}", "issuer_ref"},
		{"{\"organization\":true}", "organization"},
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct role *r = role_new("web");
		json_t *o = js(bad[i].body);
		struct sg_err err;
		int rc;

		sg_err_init(&err);
		rc = role_apply_json(r, o, &err);
		T_CHECK(rc == -1 && err.code == SG_BAD_REQUEST, "'%s' rc %d code %s (%s)", bad[i].body, rc,
		        sg_err_name(err.code), err.detail);
		T_CHECK(strstr(err.detail, bad[i].field) != NULL, "'%s': '%s' does not name %s", bad[i].body,
		        err.detail, bad[i].field);
		json_decref(o);
		role_free(r);
	}

	/* A body that is not an object. */
	{
		struct role *r = role_new("web");
		json_t *a = json_array();
		struct sg_err err;

		sg_err_init(&err);
		T_OK(role_apply_json(r, a, &err) == -1 && err.code == SG_BAD_REQUEST);
		json_decref(a);
		role_free(r);
	}
}

static void test_apply_loose(void)
{
	struct role *r = mkrole("{\"allow_subdomains\":\"true\",\"allowed_domains\":\"a.com, b.com,,\","
	                        "\"ttl\":\"2160h0m0s\",\"max_ttl\":\"8760h\",\"key_bits\":\"4096\","
	                        "\"allow_ip_sans\":\"false\",\"require_cn\":0,\"enforce_hostnames\":\"F\","
	                        "\"not_before_duration\":\"1m\",\"ou\":[\"Ops\",\"Dev\"],\"country\":\"DE\","
	                        "\"key_usage\":\"digitalsignature, CERTSIGN\",\"ext_key_usage\":\"timestamping,ANY\","
	                        "\"ext_key_usage_oids\":\"1.3.6.1.5.5.7.3.17\",\"server_flag\":\"false\","
	                        "\"issuer_ref\":\"\",\"not_after\":\"9999-12-31T23:59:59Z\",\"use_pss\":\"true\","
	                        "\"signature_bits\":\"384\",\"unknown_field\":{\"x\":1}}");

	if (r == NULL)
		return;
	T_OK(r->allow_subdomains && !r->allow_ip_sans && !r->require_cn && !r->enforce_hostnames);
	T_OK(r->allowed_domains.n == 2 && !strcmp(r->allowed_domains.v[0], "a.com") &&
	     !strcmp(r->allowed_domains.v[1], "b.com"));
	T_OK(r->ttl == 2160 * 3600 && r->max_ttl == 8760 * 3600 && r->not_before_duration == 60);
	T_OK(r->key_bits == 4096 && r->signature_bits == 384 && r->use_pss);
	T_OK(r->ou.n == 2 && r->country.n == 1);
	T_OK(role_key_usage_bits(&r->key_usage) == (ROLE_KU_DIGITAL_SIGNATURE | ROLE_KU_CERT_SIGN));
	/* Flags and names add up: client_flag (default) + TimeStamping + Any; server_flag off. */
	T_OK(role_eku_bits(r) == ((1u << 0) | (1u << 2) | (1u << 8)));
	T_STREQ(role_eku_oid(8), "1.3.6.1.5.5.7.3.8");
	T_OK(r->ext_key_usage_oids.n == 1);
	T_STREQ(r->issuer_ref, "default");
	T_STREQ(r->not_after, "9999-12-31T23:59:59Z");
	role_free(r);

	/* Key sizes resolve as Vault resolves them. */
	r = mkrole("{\"key_type\":\"ec\"}");
	T_OK(r != NULL && r->key_bits == 256 && r->signature_bits == 0);
	role_free(r);
	r = mkrole("{\"key_type\":\"ec\",\"key_bits\":0,\"signature_bits\":0}");
	T_OK(r != NULL && r->key_bits == 256 && r->signature_bits == 0);
	role_free(r);
	r = mkrole("{\"key_type\":\"ec\",\"key_bits\":384,\"signature_bits\":384}");
	T_OK(r != NULL && r->key_bits == 384 && r->signature_bits == 384);
	role_free(r);
	r = mkrole("{\"key_type\":\"rsa\",\"key_bits\":0,\"signature_bits\":0}");
	T_OK(r != NULL && r->key_bits == 2048 && r->signature_bits == 256);
	role_free(r);
	r = mkrole("{\"key_type\":\"rsa\",\"key_bits\":8192}");
	T_OK(r != NULL && r->key_bits == 8192);
	role_free(r);
	r = mkrole("{\"key_type\":\"ed25519\",\"key_bits\":256}");
	T_OK(r != NULL && r->key_bits == 0 && r->signature_bits == 0);
	role_free(r);
	r = mkrole("{\"key_type\":\"any\",\"key_bits\":4096}");
	T_OK(r != NULL && r->key_bits == 0 && r->signature_bits == 0);
	role_free(r);

	/* cn_validations: lower-cased; an empty list means the default. */
	r = mkrole("{\"cn_validations\":\"EMAIL\"}");
	T_OK(r != NULL && r->cn_validations.n == 1 && !strcmp(r->cn_validations.v[0], "email"));
	role_free(r);
	r = mkrole("{\"cn_validations\":[]}");
	T_OK(r != NULL && r->cn_validations.n == 2);
	role_free(r);

	/* An empty list clears: no key usage extension at all. */
	r = mkrole("{\"key_usage\":[]}");
	T_OK(r != NULL && r->key_usage.n == 0 && role_key_usage_bits(&r->key_usage) == 0);
	role_free(r);

	/* ttl == max_ttl is fine; null leaves a field alone. */
	r = mkrole("{\"ttl\":3600,\"max_ttl\":\"1h\",\"allowed_domains\":null}");
	T_OK(r != NULL && r->ttl == 3600 && r->max_ttl == 3600 && r->allowed_domains.n == 0);
	role_free(r);
}

static void test_policies(void)
{
	struct role *r = mkrole("{\"policy_identifiers\":\"1.2.3.4, 2.5.29.32.0\"}");
	struct role_policy p;
	struct sg_err err;

	T_OK(r != NULL && r->policy_identifiers.n == 2);
	T_STREQ(r->policy_identifiers.v[1], "2.5.29.32.0");
	role_free(r);

	/* Newer Vault: a JSON list of qualified policies, as a string or as an array. */
	r = mkrole("{\"policy_identifiers\":\"[{\\\"oid\\\":\\\"1.3.6.1.4.1.7.8\\\",\\\"notice\\\":\\\"I am a "
	           "user Notice\\\"},{\\\"oid\\\":\\\"1.3.6.1.4.1.44947.1.2.4\\\",\\\"cps\\\":\\\"https://example."
	           "com\\\"}]\"}");
	T_OK(r != NULL && r->policy_identifiers.n == 2);
	if (r != NULL && r->policy_identifiers.n == 2) {
		T_STREQ(r->policy_identifiers.v[0], "{\"oid\":\"1.3.6.1.4.1.7.8\",\"notice\":\"I am a user Notice\"}");
		T_STREQ(r->policy_identifiers.v[1], "{\"oid\":\"1.3.6.1.4.1.44947.1.2.4\",\"cps\":\"https://example.com\"}");
		sg_err_init(&err);
		T_OK(role_policy_parse(r->policy_identifiers.v[1], &p, &err) == 0);
		T_STREQ(p.oid, "1.3.6.1.4.1.44947.1.2.4");
		T_STREQ(p.cps, "https://example.com");
		T_OK(p.notice == NULL);
		role_policy_clear(&p);
	}
	role_free(r);
	r = mkrole("{\"policy_identifiers\":[\"1.2.3\",{\"oid\":\"1.2.4\",\"notice\":\"n\"}]}");
	T_OK(r != NULL && r->policy_identifiers.n == 2);
	if (r != NULL && r->policy_identifiers.n == 2) {
		T_STREQ(r->policy_identifiers.v[0], "1.2.3");
		T_STREQ(r->policy_identifiers.v[1], "{\"oid\":\"1.2.4\",\"notice\":\"n\"}");
	}
	role_free(r);

	sg_err_init(&err);
	T_OK(role_policy_parse("2.5.29.32.0", &p, &err) == 0 && !strcmp(p.oid, "2.5.29.32.0") && p.cps == NULL);
	role_policy_clear(&p);
	T_OK(role_policy_parse("{\"oid\":5}", &p, &err) == -1 && err.code == SG_BAD_REQUEST);
	sg_err_init(&err);
	T_OK(role_policy_parse("{nope", &p, &err) == -1 && err.code == SG_BAD_REQUEST);
}

static void test_lease_store(void)
{
	struct sg_strlist w = {0};
	struct role *r = role_new("web");
	json_t *o = js("{\"no_store\":true,\"generate_lease\":true}");
	struct sg_err err;

	sg_err_init(&err);
	T_OK(role_apply_json_warn(r, o, &w, &err) == 0);
	T_OK(r->no_store && !r->generate_lease);
	T_OK(w.n == 1 && strstr(w.v[0], "no_store=true takes priority") != NULL);
	json_decref(o);
	sg_strlist_clear(&w);
	role_free(r);

	r = role_new("web");
	o = js("{\"generate_lease\":\"true\"}");
	T_OK(role_apply_json_warn(r, o, &w, &err) == 0 && r->generate_lease);
	T_OK(w.n == 1 && strstr(w.v[0], "encouraged to disable generate_lease") != NULL);
	json_decref(o);
	sg_strlist_clear(&w);
	/* PATCH of a leased role with no_store: the lease goes, with the warning. */
	o = js("{\"no_store\":true}");
	T_OK(role_apply_json_warn(r, o, &w, &err) == 0 && r->no_store && !r->generate_lease);
	T_OK(w.n == 1 && strstr(w.v[0], "mutually exclusive") != NULL);
	json_decref(o);
	sg_strlist_clear(&w);
	role_free(r);
	T_OK(err.code == SG_OK);
}

/* POST = role_new + apply (unset fields revert); PATCH = stored role + apply (merge). */
static void test_post_patch(void)
{
	struct role *stored = mkrole("{\"allowed_domains\":\"example.com\",\"allow_subdomains\":true,\"ttl\":\"1h\","
	                             "\"key_type\":\"ec\",\"key_bits\":384}");
	json_t *body = js("{\"allow_bare_domains\":true}");
	struct role *post, *patch;
	struct sg_err err;

	if (stored == NULL) {
		json_decref(body);
		return;
	}
	sg_err_init(&err);
	post = role_new("web");
	T_OK(role_apply_json(post, body, &err) == 0);
	T_OK(post->allow_bare_domains && !post->allow_subdomains && post->allowed_domains.n == 0 && post->ttl == 0);
	T_OK(!strcmp(post->key_type, "rsa") && post->key_bits == 2048);

	patch = role_dup(stored);
	T_OK(role_apply_json(patch, body, &err) == 0);
	T_OK(patch->allow_bare_domains && patch->allow_subdomains && patch->allowed_domains.n == 1 &&
	     patch->ttl == 3600);
	T_OK(!strcmp(patch->key_type, "ec") && patch->key_bits == 384);
	/* The copy is deep: the stored role did not change. */
	T_OK(!stored->allow_bare_domains);
	role_free(post);
	role_free(patch);
	json_decref(body);

	/*
	 * A PATCH that changes key_type alone takes the new type's default sizes
	 * (Vault keeps rsa's 2048 and refuses); explicit sizes still apply.
	 */
	{
		struct role *rsa = role_new("web"), *copy = role_dup(rsa);
		json_t *b = js("{\"key_type\":\"ec\"}");

		sg_err_init(&err);
		T_OK(role_apply_json(copy, b, &err) == 0 && copy->key_bits == 256 && copy->signature_bits == 0);
		role_free(copy);
		json_decref(b);
		b = js("{\"key_type\":\"ec\",\"key_bits\":2048}");
		copy = role_dup(rsa);
		sg_err_init(&err);
		T_OK(role_apply_json(copy, b, &err) == -1 && err.code == SG_BAD_REQUEST && strstr(err.detail, "key_bits"));
		role_free(copy);
		json_decref(b);
		/* The same key_type keeps the stored sizes. */
		b = js("{\"key_type\":\"rsa\"}");
		rsa->key_bits = 4096;
		copy = role_dup(rsa);
		sg_err_init(&err);
		T_OK(role_apply_json(copy, b, &err) == 0 && copy->key_bits == 4096);
		role_free(copy);
		json_decref(b);
		role_free(rsa);
	}
	role_free(stored);
}

/* ---------------- encode / decode ---------------- */

static void test_encode_decode(void)
{
	struct role *r = mkrole("{\"allowed_domains\":\"example.com,example.org\",\"allow_subdomains\":true,"
	                        "\"allow_glob_domains\":true,\"ttl\":\"72h\",\"max_ttl\":\"2160h0m0s\","
	                        "\"key_type\":\"ec\",\"key_bits\":384,\"allowed_uri_sans\":\"spiffe://x/*\","
	                        "\"allowed_other_sans\":\"1.2.3;UTF8:*\",\"allowed_user_ids\":\"u*\","
	                        "\"allowed_serial_numbers\":\"1*\",\"cn_validations\":\"hostname\","
	                        "\"policy_identifiers\":[{\"oid\":\"1.2.3\",\"cps\":\"https://c\"}],"
	                        "\"ou\":\"A,B\",\"organization\":\"Org\",\"country\":\"US\",\"locality\":\"L\","
	                        "\"province\":\"P\",\"street_address\":\"S\",\"postal_code\":\"9\","
	                        "\"not_after\":\"2031-01-01T00:00:00Z\",\"issuer_ref\":\"my-issuer\","
	                        "\"generate_lease\":true,\"basic_constraints_valid_for_non_ca\":true,"
	                        "\"allow_wildcard_certificates\":false,\"not_before_duration\":\"2m\","
	                        "\"ext_key_usage\":\"ClientAuth\",\"ext_key_usage_oids\":\"1.2.5\","
	                        "\"use_csr_sans\":false,\"code_signing_flag\":true}");
	json_t *enc, *back_enc, *reparsed;
	struct role *back;
	struct sg_err err;
	char *text;

	if (r == NULL)
		return;
	enc = role_encode(r);
	T_OK(json_is_integer(json_object_get(enc, "ttl")) && json_integer_value(json_object_get(enc, "ttl")) == 259200);
	T_OK(json_integer_value(json_object_get(enc, "max_ttl")) == 7776000);
	T_OK(json_integer_value(json_object_get(enc, "not_before_duration")) == 120);
	T_OK(json_is_array(json_object_get(enc, "allowed_domains")) &&
	     json_array_size(json_object_get(enc, "allowed_domains")) == 2);
	T_OK(json_is_array(json_object_get(enc, "ext_key_usage")));
	T_OK(json_is_array(json_object_get(enc, "allowed_serial_numbers")));
	T_OK(json_is_true(json_object_get(enc, "generate_lease")));
	T_OK(json_is_false(json_object_get(enc, "allow_wildcard_certificates")));
	T_OK(json_is_false(json_object_get(enc, "allow_token_displayname")));
	T_STREQ(json_string_value(json_object_get(enc, "issuer_ref")), "my-issuer");
	T_STREQ(json_string_value(json_object_get(enc, "key_type")), "ec");
	T_OK(json_integer_value(json_object_get(enc, "key_bits")) == 384);
	T_STREQ(json_string_value(json_object_get(enc, "not_after")), "2031-01-01T00:00:00Z");
	T_OK(json_object_get(enc, "name") == NULL);

	/* Through text, as the store keeps it. */
	text = json_dumps(enc, JSON_COMPACT);
	reparsed = js(text);
	sg_err_init(&err);
	back = role_decode("web", reparsed, &err);
	T_OK(back != NULL);
	if (back != NULL) {
		T_STREQ(back->name, "web");
		back_enc = role_encode(back);
		T_OK(json_equal(enc, back_enc));
		json_decref(back_enc);
		T_OK(back->policy_identifiers.n == 1 && back->ttl == 259200 && back->generate_lease);
	}
	role_free(back);
	json_decref(reparsed);
	free(text);
	json_decref(enc);

	/* The default role round-trips, and its read form has Vault's defaults. */
	{
		struct role *d = role_new("d"), *d2;
		json_t *e1 = role_encode(d), *e2;

		T_OK(json_integer_value(json_object_get(e1, "not_before_duration")) == 30);
		T_OK(json_integer_value(json_object_get(e1, "ttl")) == 0);
		T_STREQ(json_string_value(json_object_get(e1, "not_after")), "");
		T_OK(json_array_size(json_object_get(e1, "key_usage")) == 3);
		T_OK(json_array_size(json_object_get(e1, "allowed_domains")) == 0);
		d2 = role_decode("d", e1, &err);
		T_OK(d2 != NULL);
		if (d2 != NULL) {
			e2 = role_encode(d2);
			T_OK(json_equal(e1, e2));
			json_decref(e2);
		}
		role_free(d2);
		json_decref(e1);
		role_free(d);
	}

	/* A corrupt stored role is a storage error. */
	{
		json_t *bad = js("{\"key_type\":\"rsa\",\"key_bits\":1000}");

		sg_err_init(&err);
		T_OK(role_decode("broken", bad, &err) == NULL && err.code == SG_STORAGE);
		T_OK(strstr(err.detail, "broken") != NULL && strstr(err.detail, "key_bits") != NULL);
		json_decref(bad);
	}
	role_free(r);
}

static void test_dup(void)
{
	struct role *r = mkrole("{\"allowed_domains\":\"a.com\",\"not_after\":\"2030-01-01T00:00:00Z\"}"), *d;

	if (r == NULL)
		return;
	d = role_dup(r);
	sg_strlist_add(&r->allowed_domains, "b.com");
	free(r->key_type);
	r->key_type = sg_xstrdup("ec");
	T_OK(d->allowed_domains.n == 1);
	T_STREQ(d->key_type, "rsa");
	T_STREQ(d->not_after, "2030-01-01T00:00:00Z");
	role_free(r);
	role_free(d);
	T_OK(role_dup(NULL) == NULL);
}

/* ---------------- TTL ---------------- */

static void test_ttl(void)
{
	const int64_t H = 3600, mdef = 768 * H, mmax = 768 * H;
	struct role *r = role_new("web");
	bool cl = true;

	T_OK(role_ttl(r, 0, mdef, mmax, &cl) == mdef && !cl);
	T_OK(role_ttl(r, 100 * H, mdef, mmax, &cl) == 100 * H && !cl);
	T_OK(role_ttl(r, 1000 * H, mdef, mmax, &cl) == mmax && cl);
	T_OK(role_ttl(r, -5, mdef, mmax, &cl) == mdef && !cl);
	r->max_ttl = 24 * H;
	T_OK(role_ttl(r, 48 * H, mdef, mmax, &cl) == 24 * H && cl);
	T_OK(role_ttl(r, 12 * H, mdef, mmax, &cl) == 12 * H && !cl);
	/* No request: the mount default, clamped to the role max (Vault warns). */
	T_OK(role_ttl(r, 0, mdef, mmax, &cl) == 24 * H && cl);
	r->ttl = H;
	T_OK(role_ttl(r, 0, mdef, mmax, &cl) == H && !cl);
	/* A role max above the mount max wins (Vault uses the role's). */
	r->ttl = 0;
	r->max_ttl = 2000 * H;
	T_OK(role_ttl(r, 1500 * H, mdef, mmax, &cl) == 1500 * H && !cl);
	r->max_ttl = 0;
	r->ttl = 10 * H;
	T_OK(role_ttl(r, 0, mdef, 5 * H, &cl) == 5 * H && cl);
	T_OK(role_ttl(NULL, 0, mdef, mmax, &cl) == mdef && !cl);
	T_OK(role_ttl(NULL, 5, mdef, mmax, NULL) == 5);
	role_free(r);
}

/* ---------------- keys ---------------- */

static void test_keys(void)
{
	static const struct {
		const char *role;
		const char *kt;
		int bits;
		const char *why; /* NULL: allowed */
	} kc[] = {
		{"{}", "rsa", 2048, NULL},
		{"{}", "rsa", 4096, NULL},
		{"{}", "rsa", 1024, "minimum of a 2048-bit key"},
		{"{}", "ec", 256, "requires keys of type rsa"},
		{"{}", "ed25519", 0, "requires keys of type rsa"},
		{"{\"key_bits\":4096}", "rsa", 3072, "minimum of a 4096-bit key"},
		{"{\"key_bits\":4096}", "rsa", 4096, NULL},
		{"{\"key_type\":\"ec\"}", "ec", 256, NULL},
		{"{\"key_type\":\"ec\"}", "ec", 384, NULL},
		{"{\"key_type\":\"ec\"}", "ec", 224, "minimum of a 256-bit key"},
		{"{\"key_type\":\"ec\",\"key_bits\":384}", "ec", 256, "minimum of a 384-bit key"},
		{"{\"key_type\":\"ec\"}", "rsa", 2048, "requires keys of type ec"},
		{"{\"key_type\":\"ed25519\"}", "ed25519", 0, NULL},
		{"{\"key_type\":\"ed25519\"}", "ec", 256, "requires keys of type ed25519"},
		{"{\"key_type\":\"any\"}", "rsa", 2048, NULL},
		{"{\"key_type\":\"any\"}", "rsa", 1024, "2048"},
		{"{\"key_type\":\"any\"}", "ec", 224, NULL},
		{"{\"key_type\":\"any\"}", "ec", 192, "minimum of a 224-bit key"},
		{"{\"key_type\":\"any\"}", "ed25519", 0, NULL},
		{"{\"key_type\":\"any\"}", "dsa", 2048, "unknown key type"},
		{"{\"key_type\":\"any\"}", NULL, 0, "unknown key type"},
	};

	for (size_t i = 0; i < sizeof(kc) / sizeof(kc[0]); i++) {
		struct role *r = mkrole(kc[i].role);
		struct sg_err err;
		int rc;

		if (r == NULL)
			continue;
		sg_err_init(&err);
		rc = role_check_key(r, kc[i].kt, kc[i].bits, &err);
		if (kc[i].why == NULL) {
			T_CHECK(rc == 0, "key case %zu denied: %s", i, err.detail);
		} else {
			T_CHECK(rc == -1 && err.code == SG_KEY_DENIED, "key case %zu: rc %d %s", i, rc, sg_err_name(err.code));
			T_CHECK(strstr(err.detail, kc[i].why) != NULL, "key case %zu: '%s' lacks '%s'", i, err.detail,
			        kc[i].why);
		}
		role_free(r);
	}
}

/* ---------------- small validators ---------------- */

static void test_validators(void)
{
	static const struct {
		const char *s;
		bool ok;
	} hosts[] = {
		{"example.com", true},  {"a", true},           {"*.example.com", true}, {"f*o.example.com", true},
		{"*", false},           {"*.", false},         {"a.*.com", false},      {"a_b.com", false},
		{"", false},            {".", false},          {"example.com.", true},  {"1-2.3", true},
		{"-a.com", false},      {"a-.com", false},     {"**.a.com", false},     {"x*y*.a.com", false},
	};
	static const struct {
		const char *s;
		bool ok;
	} names[] = {
		{"web", true},  {"my-role.v2", true}, {"a", true},     {"_x_", true},
		{"", false},    {"-web", false},      {"web.", false}, {"a b", false},
		{"a/b", false}, {"rôle", false},
	};
	static const struct {
		const char *s;
		bool ok;
	} oids[] = {
		{"1.2.3", true},  {"2.999.1", true}, {"0.39", true}, {"1.40", false}, {"3.1", false},
		{"1", false},     {"1..2", false},   {"1.2.", false}, {"a.b", false}, {"", false},
		{"1.2.1234567890123456789", false},
	};
	char longname[ROLE_NAME_MAX + 2];

	for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++)
		T_CHECK(role_hostname_valid(hosts[i].s) == hosts[i].ok, "hostname '%s'", hosts[i].s);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		T_CHECK(role_name_valid(names[i].s) == names[i].ok, "role name '%s'", names[i].s);
	for (size_t i = 0; i < sizeof(oids) / sizeof(oids[0]); i++)
		T_CHECK(role_oid_valid(oids[i].s) == oids[i].ok, "oid '%s'", oids[i].s);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	T_OK(!role_name_valid(longname));
	longname[ROLE_NAME_MAX] = '\0';
	T_OK(role_name_valid(longname));
	T_OK(!role_hostname_valid(NULL) && !role_name_valid(NULL) && !role_oid_valid(NULL));
}

int main(void)
{
	test_defaults();
	test_name_table();
	test_name_caps();
	test_apply_errors();
	test_apply_loose();
	test_policies();
	test_lease_store();
	test_post_patch();
	test_encode_decode();
	test_dup();
	test_ttl();
	test_keys();
	test_validators();
	return t_done();
}
