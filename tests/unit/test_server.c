/* server/: router, config, JSON pre-scan, envelope, flags and the mount table. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/config.h"
#include "server/envelope.h"
#include "server/internal.h"
#include "server/json.h"
#include "server/leases.h"
#include "server/mount.h"
#include "server/router.h"
#include "tests/unit/t.h"

static char tmp_root[64];

static int h_dummy(struct req *rq, struct resp *rs, struct sg_err *err)
{
	(void)rq;
	(void)rs;
	(void)err;
	return 0;
}

/* ---- Route patterns ---- */

static void test_pattern_match(void)
{
	struct router_caps caps;

	T_OK(router_pattern_match("ca", "ca", &caps) == 1 && caps.n == 0);
	T_OK(router_pattern_match("ca", "ca/pem", &caps) == 0);
	T_OK(router_pattern_match("ca/pem", "ca", &caps) == 0);
	T_OK(router_pattern_match("roles/:name", "roles/web", &caps) == 1);
	T_OK(caps.n == 1);
	T_STREQ(caps.name[0], "name");
	T_STREQ(caps.val[0], "web");
	T_OK(router_pattern_match("roles/:name", "roles", &caps) == 0);
	T_OK(router_pattern_match("roles/:name", "roles/a/b", &caps) == 0);
	T_OK(router_pattern_match("issuer/:ref/issue/:role", "issuer/default/issue/web", &caps) == 1);
	T_OK(caps.n == 2);
	T_STREQ(caps.val[0], "default");
	T_STREQ(caps.name[1], "role");
	T_STREQ(caps.val[1], "web");
	T_OK(router_pattern_match("issuer/:ref/issue/:role", "issuer/default/sign/web", &caps) == 0);
	T_OK(caps.n == 0);

	/* "*name" with a literal suffix: one or more segments. */
	T_OK(router_pattern_match("mounts/*path/tune", "mounts/pki/tune", &caps) == 1);
	T_STREQ(caps.name[0], "path");
	T_STREQ(caps.val[0], "pki");
	T_OK(router_pattern_match("mounts/*path/tune", "mounts/a/b/c/tune", &caps) == 1);
	T_STREQ(caps.val[0], "a/b/c");
	T_OK(router_pattern_match("mounts/*path/tune", "mounts/tune", &caps) == 0);
	T_OK(router_pattern_match("mounts/*path/tune", "mounts/a/b", &caps) == 0);
	T_OK(router_pattern_match("mounts/*path", "mounts/a/b/tune", &caps) == 1);
	T_STREQ(caps.val[0], "a/b/tune");
	T_OK(router_pattern_match("mounts/*path", "mounts", &caps) == 0);
	T_OK(router_pattern_match("*all", "x/y", &caps) == 1);
	T_STREQ(caps.val[0], "x/y");
	/* ":name" after the star, captures in pattern order. */
	T_OK(router_pattern_match("a/*mid/:last", "a/1/2/3", &caps) == 1);
	T_OK(caps.n == 2);
	T_STREQ(caps.name[0], "mid");
	T_STREQ(caps.val[0], "1/2");
	T_STREQ(caps.name[1], "last");
	T_STREQ(caps.val[1], "3");

	/* Empty segments never match, not even inside a star. */
	T_OK(router_pattern_match("roles/:name", "roles/", &caps) == 0);
	T_OK(router_pattern_match("mounts/*path", "mounts/a//b", &caps) == 0);
	T_OK(router_pattern_match("ca", "", &caps) == 0);
	T_OK(router_pattern_match("roles/:name", "/roles/x", &caps) == 0);

	/* A path deeper than ROUTER_MAX_SEGMENTS or longer than MAX_PATH_BYTES. */
	{
		char deep[ROUTER_MAX_SEGMENTS * 2 + 8], *p = deep;

		memcpy(p, "mounts", 6);
		p += 6;
		for (int i = 0; i < ROUTER_MAX_SEGMENTS; i++) {
			*p++ = '/';
			*p++ = 'a';
		}
		*p = '\0';
		T_OK(router_pattern_match("mounts/*path", deep, &caps) == 0);
	}
	{
		char *lng = malloc(MAX_PATH_BYTES + 16);

		memcpy(lng, "roles/", 6);
		memset(lng + 6, 'x', MAX_PATH_BYTES);
		lng[MAX_PATH_BYTES + 6] = '\0';
		T_OK(router_pattern_match("roles/:name", lng, &caps) == 0);
		free(lng);
	}
	/* NULL caps is allowed. */
	T_OK(router_pattern_match("roles/:name", "roles/x", NULL) == 1);
}

static void test_lookup(void)
{
	static const struct route table[] = {
		{"roles", HTTP_LIST, h_dummy, ROUTE_AUTH_TOKEN, false},
		{"roles/:name", HTTP_GET | HTTP_POST | HTTP_DELETE, h_dummy, ROUTE_AUTH_TOKEN, false},
		{"roles/:name", HTTP_PATCH, h_dummy, ROUTE_AUTH_NONE, false},
		{"mounts/*path/tune", HTTP_GET | HTTP_POST, h_dummy, ROUTE_AUTH_TOKEN, false},
		{"mounts/*path", HTTP_DELETE, h_dummy, ROUTE_AUTH_TOKEN, false},
		{"ca", HTTP_GET, h_dummy, ROUTE_AUTH_NONE, false},
	};
	const size_t n = sizeof(table) / sizeof(table[0]);
	const struct route *r = NULL;
	struct router_caps caps;

	T_OK(router_lookup(table, n, "roles/web", HTTP_GET, &r, &caps) == ROUTER_FOUND && r == &table[1]);
	T_STREQ(caps.val[0], "web");
	T_OK(router_lookup(table, n, "roles/web", HTTP_PATCH, &r, &caps) == ROUTER_FOUND && r == &table[2]);
	T_OK(router_lookup(table, n, "roles", HTTP_LIST, &r, &caps) == ROUTER_FOUND && r == &table[0]);
	/* The path exists with other methods: 405, not 404. */
	T_OK(router_lookup(table, n, "roles", HTTP_GET, &r, &caps) == ROUTER_BAD_METHOD && r == NULL);
	T_OK(router_lookup(table, n, "roles/web", HTTP_LIST, &r, &caps) == ROUTER_BAD_METHOD);
	T_OK(router_lookup(table, n, "ca", HTTP_POST, &r, &caps) == ROUTER_BAD_METHOD);
	T_OK(router_lookup(table, n, "nope", HTTP_GET, &r, &caps) == ROUTER_NOT_FOUND && r == NULL);
	T_OK(router_lookup(table, n, "roles/a/b", HTTP_GET, &r, &caps) == ROUTER_NOT_FOUND);
	/* First route that matches path and method wins: tune before the plain path. */
	T_OK(router_lookup(table, n, "mounts/a/b/tune", HTTP_POST, &r, &caps) == ROUTER_FOUND && r == &table[3]);
	T_STREQ(caps.val[0], "a/b");
	T_OK(router_lookup(table, n, "mounts/a/b/tune", HTTP_DELETE, &r, &caps) == ROUTER_FOUND && r == &table[4]);
	T_STREQ(caps.val[0], "a/b/tune");
	T_OK(router_lookup(table, n, "mounts/a/b", HTTP_GET, &r, &caps) == ROUTER_BAD_METHOD);
	/* The real sys table. */
	T_OK(router_lookup(sys_routes, sys_routes_n, "health", HTTP_GET, &r, &caps) == ROUTER_FOUND &&
	     r->auth == ROUTE_AUTH_NONE);
	T_OK(router_lookup(sys_routes, sys_routes_n, "health", HTTP_POST, &r, &caps) == ROUTER_BAD_METHOD);
	T_OK(router_lookup(sys_routes, sys_routes_n, "mounts", HTTP_GET, &r, &caps) == ROUTER_FOUND &&
	     r->auth == ROUTE_AUTH_TOKEN);
	T_OK(router_lookup(sys_routes, sys_routes_n, "mounts/pki_int/tune", HTTP_GET, &r, &caps) == ROUTER_FOUND);
	T_STREQ(caps.val[0], "pki_int");
	T_OK(router_lookup(sys_routes, sys_routes_n, "mounts/pki", HTTP_PATCH, &r, &caps) == ROUTER_BAD_METHOD);
	T_OK(router_lookup(sys_routes, sys_routes_n, "internal/ui/mounts/secret/x", HTTP_GET, &r, &caps) ==
	         ROUTER_FOUND &&
	     r->auth == ROUTE_AUTH_NONE);
	T_OK(router_lookup(sys_routes, sys_routes_n, "nonexistent", HTTP_GET, &r, &caps) == ROUTER_NOT_FOUND);
}

static void test_methods(void)
{
	struct sg_err err;
	unsigned m = 0;
	bool head = true;

	sg_err_init(&err);
	T_OK(router_method_parse("GET", NULL, &m, &head, &err) == 0 && m == HTTP_GET && !head);
	T_OK(router_method_parse("HEAD", NULL, &m, &head, &err) == 0 && m == HTTP_GET && head);
	T_OK(router_method_parse("GET", "true", &m, &head, &err) == 0 && m == HTTP_LIST);
	T_OK(router_method_parse("GET", "1", &m, &head, &err) == 0 && m == HTTP_LIST);
	T_OK(router_method_parse("GET", "false", &m, &head, &err) == 0 && m == HTTP_GET);
	T_OK(router_method_parse("GET", "", &m, &head, &err) == 0 && m == HTTP_GET);
	T_OK(router_method_parse("LIST", NULL, &m, &head, &err) == 0 && m == HTTP_LIST);
	T_OK(router_method_parse("PUT", NULL, &m, &head, &err) == 0 && m == HTTP_POST);
	T_OK(router_method_parse("POST", "true", &m, &head, &err) == 0 && m == HTTP_POST);
	T_OK(router_method_parse("DELETE", NULL, &m, &head, &err) == 0 && m == HTTP_DELETE);
	T_OK(router_method_parse("PATCH", NULL, &m, &head, &err) == 0 && m == HTTP_PATCH);
	T_OK(!sg_err_isset(&err));
	T_OK(router_method_parse("OPTIONS", NULL, &m, &head, &err) == -1 && err.code == SG_METHOD_NOT_ALLOWED);
	sg_err_init(&err);
	T_OK(router_method_parse("get", NULL, &m, &head, &err) == -1 && err.code == SG_METHOD_NOT_ALLOWED);
	sg_err_init(&err);
	T_OK(router_method_parse("GET", "maybe", &m, &head, &err) == -1 && err.code == SG_BAD_REQUEST);
}

static void test_paths(void)
{
	char out[64];
	const char *sub = NULL;

	T_OK(router_path_normalize("/v1/pki/issue/web", out, sizeof(out)) == 0);
	T_STREQ(out, "pki/issue/web");
	T_OK(router_path_normalize("/v1/pki/roles/", out, sizeof(out)) == 0);
	T_STREQ(out, "pki/roles");
	T_OK(router_path_normalize("/v1/pki//", out, sizeof(out)) == 0);
	T_STREQ(out, "pki");
	T_OK(router_path_normalize("/v1/", out, sizeof(out)) == 0);
	T_STREQ(out, "");
	T_OK(router_path_normalize("/v2/sys/health", out, sizeof(out)) == -1);
	T_OK(router_path_normalize("/v1", out, sizeof(out)) == -1);
	T_OK(router_path_normalize("/", out, sizeof(out)) == -1);
	T_OK(router_path_normalize("/v1/a\nb", out, sizeof(out)) == -1);
	T_OK(router_path_normalize("/v1/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", out,
	                           sizeof(out)) == -1);

	T_OK(router_area("sys/health", &sub) == ROUTER_AREA_SYS);
	T_STREQ(sub, "health");
	T_OK(router_area("sys", &sub) == ROUTER_AREA_SYS);
	T_STREQ(sub, "");
	T_OK(router_area("system/x", &sub) == ROUTER_AREA_MOUNT);
	T_STREQ(sub, "system/x");
	T_OK(router_area("auth/token/lookup-self", &sub) == ROUTER_AREA_AUTH);
	T_STREQ(sub, "token/lookup-self");
	T_OK(router_area("pki/ca", &sub) == ROUTER_AREA_MOUNT);

	T_OK(router_mount_prefix("pki", "pki/issue/web", &sub) == 3);
	T_STREQ(sub, "issue/web");
	T_OK(router_mount_prefix("pki", "pki", &sub) == 3);
	T_STREQ(sub, "");
	T_OK(router_mount_prefix("pki", "pki_int/ca", &sub) == 0);
	T_OK(router_mount_prefix("a/b", "a/b/ca", &sub) == 3);
	T_STREQ(sub, "ca");
	T_OK(router_mount_prefix("a/b", "a/bc/ca", &sub) == 0);
	T_OK(router_mount_prefix("", "x", &sub) == 0);
}

/* ---- JSON bodies ---- */

static void test_json(void)
{
	struct sg_err err;
	json_t *j = NULL;
	char deep[2 * MAX_JSON_DEPTH + 16];

	T_OK(server_json_depth_check("{}", 2, 1) == 0);
	T_OK(server_json_depth_check("{\"a\":{}}", 8, 1) == -1);
	T_OK(server_json_depth_check("{\"a\":\"[[[[{{{{\"}", 16, 1) == 0);
	T_OK(server_json_depth_check("{\"a\":\"\\\"[[\"}", 12, 1) == 0);
	T_OK(server_json_depth_check("]]]]{", 5, 1) == 0);
	for (int d = MAX_JSON_DEPTH; d <= MAX_JSON_DEPTH + 1; d++) {
		memset(deep, '[', (size_t)d);
		memset(deep + d, ']', (size_t)d);
		T_CHECK(server_json_depth_check(deep, 2 * (size_t)d, MAX_JSON_DEPTH) == (d > MAX_JSON_DEPTH ? -1 : 0),
		        "depth %d", d);
	}

	sg_err_init(&err);
	T_OK(server_json_parse_object("", 0, MAX_JSON_DEPTH, &j, &err) == 0 && json_is_object(j) &&
	     json_object_size(j) == 0);
	json_decref(j);
	T_OK(server_json_parse_object(" \r\n\t", 4, MAX_JSON_DEPTH, &j, &err) == 0 && json_object_size(j) == 0);
	json_decref(j);
	T_OK(server_json_parse_object("{\"a\":1,\"a\":2}", 13, MAX_JSON_DEPTH, &j, &err) == 0 &&
	     json_integer_value(json_object_get(j, "a")) == 2);
	json_decref(j);
	T_OK(!sg_err_isset(&err));

	T_OK(server_json_parse_object("[1,2]", 5, MAX_JSON_DEPTH, &j, &err) == -1 && j == NULL);
	T_OK(err.code == SG_BAD_JSON && strstr(err.detail, "failed to parse JSON input: ") == err.detail &&
	     strstr(err.detail, "array") != NULL);
	sg_err_init(&err);
	T_OK(server_json_parse_object("42", 2, MAX_JSON_DEPTH, &j, &err) == -1 && strstr(err.detail, "number"));
	sg_err_init(&err);
	T_OK(server_json_parse_object("{\"a\":", 5, MAX_JSON_DEPTH, &j, &err) == -1 && err.code == SG_BAD_JSON);
	sg_err_init(&err);
	T_OK(server_json_parse_object("{\"a\":1}x", 8, MAX_JSON_DEPTH, &j, &err) == -1 && err.code == SG_BAD_JSON);
	sg_err_init(&err);
	T_OK(server_json_parse_object("{\"a\":\"\xff\"}", 8, MAX_JSON_DEPTH, &j, &err) == -1 && err.code == SG_BAD_JSON);
	sg_err_init(&err);
	T_OK(server_json_parse_object("{\"a\":\"\\u0000\"}", 14, MAX_JSON_DEPTH, &j, &err) == -1);
	sg_err_init(&err);
	memset(deep, '{', 1);
	T_OK(server_json_parse_object("{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}", 74,
	                              MAX_JSON_DEPTH, &j, &err) == -1 &&
	     strstr(err.detail, "nesting") != NULL);

	j = server_json_string_safe("ok\xff");
	T_STREQ(json_string_value(j), "ok?");
	json_decref(j);
}

/* ---- Envelope ---- */

static void test_envelope(void)
{
	struct resp rs;
	struct sg_err err;
	char *body = NULL;
	size_t len = 0;
	int status = 0;
	json_t *j;

	memset(&rs, 0, sizeof(rs));
	envelope_render(&rs, "rid", "pki", &status, &body, &len);
	T_OK(status == 204 && body == NULL && len == 0);
	/* An empty object is an answer (GET sys/mounts with no mounts). */
	resp_data(&rs, json_object());
	envelope_render(&rs, "rid", "pki", &status, &body, &len);
	T_OK(status == 200 && body != NULL);
	free(body);

	resp_data(&rs, json_pack("{s:s}", "k", "v"));
	envelope_render(&rs, "rid", "pki", &status, &body, &len);
	T_OK(status == 200 && body != NULL && len == strlen(body));
	j = json_loads(body, 0, NULL);
	T_STREQ(json_string_value(json_object_get(j, "request_id")), "rid");
	T_STREQ(json_string_value(json_object_get(j, "lease_id")), "");
	T_OK(json_is_false(json_object_get(j, "renewable")));
	T_OK(json_integer_value(json_object_get(j, "lease_duration")) == 0);
	T_STREQ(json_string_value(json_object_get(json_object_get(j, "data"), "k")), "v");
	T_OK(json_is_null(json_object_get(j, "wrap_info")));
	T_OK(json_is_null(json_object_get(j, "warnings")));
	T_OK(json_is_null(json_object_get(j, "auth")));
	T_STREQ(json_string_value(json_object_get(j, "mount_type")), "pki");
	json_decref(j);
	free(body);

	/* Warnings alone make a 200; they render as an array. */
	resp_clear(&rs);
	resp_warn(&rs, "TTL of %d clamped", 5);
	envelope_render(&rs, "rid", NULL, &status, &body, &len);
	T_OK(status == 200);
	j = json_loads(body, 0, NULL);
	T_STREQ(json_string_value(json_array_get(json_object_get(j, "warnings"), 0)), "TTL of 5 clamped");
	T_OK(json_is_null(json_object_get(j, "data")));
	T_OK(json_object_get(j, "mount_type") == NULL);
	json_decref(j);
	free(body);

	/* An explicit status wins. */
	resp_clear(&rs);
	rs.status = 204;
	resp_data(&rs, json_pack("{s:i}", "x", 1));
	envelope_render(&rs, "rid", NULL, &status, &body, &len);
	T_OK(status == 204 && body == NULL);
	resp_clear(&rs);
	T_OK(rs.data == NULL && rs.warnings.n == 0);
	resp_clear(NULL);

	/* raw helper copies. */
	resp_raw(&rs, "application/pkix-cert", "\x30\x00", 2);
	T_STREQ(rs.content_type, "application/pkix-cert");
	T_OK(rs.body_len == 2 && memcmp(rs.body, "\x30\x00", 2) == 0);
	resp_header(&rs, "Cache-Control", "max-age=60");
	T_STREQ(json_string_value(json_object_get(rs.headers, "Cache-Control")), "max-age=60");
	resp_clear(&rs);

	/* Errors. */
	sg_err_init(&err);
	sg_err_set(&err, SG_ROLE_DENIED, "common name evil.org not allowed");
	envelope_error(&err, &status, &body, &len);
	T_OK(status == 400);
	T_STREQ(body, "{\"errors\":[\"common name evil.org not allowed\"]}");
	free(body);
	sg_err_init(&err);
	sg_err_set(&err, SG_NOT_FOUND, "%s", "");
	envelope_error(&err, &status, &body, &len);
	T_OK(status == 404);
	T_STREQ(body, "{\"errors\":[]}");
	free(body);
	sg_err_init(&err);
	sg_err_set(&err, SG_STORAGE, "%s", "");
	envelope_error(&err, &status, &body, &len);
	T_OK(status == 500);
	T_STREQ(body, "{\"errors\":[\"storage error\"]}");
	free(body);
	sg_err_init(&err);
	sg_err_set(&err, SG_TOO_LARGE, "too big");
	envelope_error(&err, &status, &body, &len);
	T_OK(status == 413);
	free(body);
	sg_err_init(&err);
	envelope_no_route(&err, "pki/nope");
	envelope_error(&err, &status, &body, &len);
	T_OK(status == 404);
	T_STREQ(body, "{\"errors\":[\"no handler for route \\\"pki/nope\\\". route entry not found.\"]}");
	free(body);
}

static void test_req_accessors(void)
{
	struct req rq;
	json_t *q = json_pack("{s:s, s:s}", "list", "true", "standbyok", "");

	memset(&rq, 0, sizeof(rq));
	rq.cap_name[0] = "role";
	rq.cap_val[0] = "web";
	rq.query = q;
	T_STREQ(req_param(&rq, "role"), "web");
	T_OK(req_param(&rq, "ref") == NULL);
	T_STREQ(req_query(&rq, "list"), "true");
	T_STREQ(req_query(&rq, "standbyok"), "");
	T_OK(req_query(&rq, "after") == NULL);
	rq.query = NULL;
	T_OK(req_query(&rq, "list") == NULL);
	json_decref(q);
}

/* ---- Config ---- */

static int cfg_parse(const char *text, struct server_config *c, struct sg_err *err)
{
	server_config_clear(c);
	server_config_init(c);
	sg_err_init(err);
	return server_config_parse(text, strlen(text), c, err);
}

static void test_config(void)
{
	struct server_config c;
	struct sg_err err;
	struct sockaddr_storage ss;
	socklen_t sl;

	server_config_init(&c);
	T_STREQ(c.listen_address, "127.0.0.1:8200");
	T_OK(c.threads == CONFIG_THREADS_DEFAULT && c.max_request_size == MAX_BODY_BYTES_DEFAULT);
	T_OK(cfg_parse("{\"listen_address\":\"[::1]:8443\",\"tls_cert_file\":\"/c\",\"tls_key_file\":\"/k\","
	               "\"data_dir\":\"/d\",\"kek_file\":\"/d/kek\",\"external_url\":\"https://ca.example\","
	               "\"log_level\":\"debug\",\"max_request_size\":4096,\"threads\":8,\"tls_disable\":false}",
	               &c, &err) == 0);
	T_STREQ(c.listen_address, "[::1]:8443");
	T_STREQ(c.tls_cert_file, "/c");
	T_STREQ(c.kek_file, "/d/kek");
	T_STREQ(c.external_url, "https://ca.example");
	T_OK(c.log_level == SERVER_LOG_DEBUG && c.max_request_size == 4096 && c.threads == 8 && !c.tls_disable);
	T_OK(cfg_parse("", &c, &err) == 0);
	T_OK(cfg_parse("{}", &c, &err) == 0 && c.data_dir == NULL);

	T_OK(cfg_parse("{\"listen_adress\":\"127.0.0.1:1\"}", &c, &err) == -1 && err.code == SG_BAD_REQUEST);
	T_OK(strstr(err.detail, "unknown key 'listen_adress'") != NULL);
	T_OK(cfg_parse("{\"tls_disable\":\"true\"}", &c, &err) == -1 && strstr(err.detail, "tls_disable"));
	T_OK(cfg_parse("{\"threads\":0}", &c, &err) == -1 && strstr(err.detail, "threads"));
	T_OK(cfg_parse("{\"threads\":\"8\"}", &c, &err) == -1 && strstr(err.detail, "threads"));
	T_OK(cfg_parse("{\"threads\":100000}", &c, &err) == -1);
	T_OK(cfg_parse("{\"max_request_size\":10}", &c, &err) == -1 && strstr(err.detail, "max_request_size"));
	T_OK(cfg_parse("{\"max_request_size\":1.5}", &c, &err) == -1);
	T_OK(cfg_parse("{\"data_dir\":7}", &c, &err) == -1 && strstr(err.detail, "data_dir"));
	T_OK(cfg_parse("{\"data_dir\":\"\"}", &c, &err) == -1);
	T_OK(cfg_parse("{\"log_level\":\"loud\"}", &c, &err) == -1 && strstr(err.detail, "log_level"));
	T_OK(cfg_parse("{\"external_url\":\"ftp://x\"}", &c, &err) == -1 && strstr(err.detail, "external_url"));
	T_OK(cfg_parse("{\"listen_address\":\"localhost:8200\"}", &c, &err) == -1 &&
	     strstr(err.detail, "localhost:8200"));
	T_OK(cfg_parse("{\"listen_address\":\"127.0.0.1\"}", &c, &err) == -1);
	T_OK(cfg_parse("{\"listen_address\":\"127.0.0.1:0\"}", &c, &err) == -1);
	T_OK(cfg_parse("{\"listen_address\":\"127.0.0.1:65536\"}", &c, &err) == -1);
	T_OK(cfg_parse("{\"listen_address\":\"::1:8200\"}", &c, &err) == -1);
	T_OK(cfg_parse("[]", &c, &err) == -1 && strstr(err.detail, "config: ") == err.detail);
	T_OK(cfg_parse("{\"data_dir\": ", &c, &err) == -1 && strstr(err.detail, "config: ") == err.detail);
	T_OK(cfg_parse("{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":{\"g\":{\"h\":{\"i\":1}}}}}}}}}", &c, &err) == -1);
	server_config_clear(&c);
	server_config_clear(NULL);

	sg_err_init(&err);
	T_OK(server_config_listen_parse("0.0.0.0:8200", &ss, &sl, &err) == 0 && ss.ss_family == AF_INET);
	T_OK(server_config_listen_parse("[::]:8200", &ss, &sl, &err) == 0 && ss.ss_family == AF_INET6);
	T_OK(server_config_listen_parse("[::1]8200", &ss, &sl, &err) == -1);
}

static char *write_file(const char *name, const void *buf, size_t len, mode_t mode)
{
	char *path = sg_xasprintf("%s/%s", tmp_root, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || write(fd, buf, len) != (ssize_t)len || close(fd) != 0 || chmod(path, mode) != 0)
		sg_die("cannot write %s", path);
	return path;
}

static void test_kek(void)
{
	unsigned char raw[CA_KEK_BYTES], kek[CA_KEK_BYTES];
	char hex[2 * CA_KEK_BYTES + 2];
	struct sg_err err;
	char *p;

	for (size_t i = 0; i < sizeof(raw); i++) {
		raw[i] = (unsigned char)(i * 7 + 1);
		snprintf(hex + 2 * i, 3, "%02X", raw[i]);
	}
	hex[2 * CA_KEK_BYTES] = '\n';
	hex[2 * CA_KEK_BYTES + 1] = '\0';

	sg_err_init(&err);
	p = write_file("kek.raw", raw, sizeof(raw), 0600);
	T_OK(server_config_kek_load(p, kek, &err) == 0 && memcmp(kek, raw, sizeof(raw)) == 0);
	free(p);
	p = write_file("kek.hex", hex, strlen(hex), 0400);
	memset(kek, 0, sizeof(kek));
	T_OK(server_config_kek_load(p, kek, &err) == 0 && memcmp(kek, raw, sizeof(raw)) == 0);
	free(p);
	T_OK(!sg_err_isset(&err));

	p = write_file("kek.644", raw, sizeof(raw), 0644);
	T_OK(server_config_kek_load(p, kek, &err) == -1 && err.code == SG_BAD_REQUEST);
	T_OK(strstr(err.detail, "0644") != NULL && strstr(err.detail, "0600") != NULL && strstr(err.detail, p));
	free(p);
	sg_err_init(&err);
	p = write_file("kek.640", raw, sizeof(raw), 0640);
	T_OK(server_config_kek_load(p, kek, &err) == -1 && strstr(err.detail, "0640"));
	free(p);
	sg_err_init(&err);
	p = write_file("kek.700", raw, sizeof(raw), 0700);
	T_OK(server_config_kek_load(p, kek, &err) == -1);
	free(p);
	sg_err_init(&err);
	p = write_file("kek.short", raw, 31, 0600);
	T_OK(server_config_kek_load(p, kek, &err) == -1 && strstr(err.detail, "32 raw bytes"));
	free(p);
	sg_err_init(&err);
	hex[5] = 'g';
	p = write_file("kek.badhex", hex, strlen(hex), 0600);
	T_OK(server_config_kek_load(p, kek, &err) == -1);
	free(p);
	sg_err_init(&err);
	T_OK(server_config_kek_load(tmp_root, kek, &err) == -1); /* a directory */
	sg_err_init(&err);
	p = sg_xasprintf("%s/absent", tmp_root);
	T_OK(server_config_kek_load(p, kek, &err) == -1 && strstr(err.detail, p));
	free(p);
}

/* ---- Flags (token tests live in test_auth_token.c) ---- */

static void test_flags(void)
{
	const char *config = NULL, *addr = NULL;
	bool dev = false;
	const struct server_flag flags[] = {
		{"config", false, &config, NULL},
		{"dev", true, NULL, &dev},
		{"dev-listen-address", false, &addr, NULL},
	};
	char *a1[] = {"-dev", "--dev-listen-address=127.0.0.1:1", "rest"};
	char *a2[] = {"--config", "/etc/s.json"};
	char *a3[] = {"-config"};
	char *a4[] = {"-nope"};
	char *a5[] = {"-dev=false", "--", "-config"};
	char *a6[] = {"-dev=maybe"};
	struct sg_err err;
	int next = -1;

	sg_err_init(&err);
	T_OK(server_flags_parse(3, a1, flags, 3, &next, &err) == 0 && dev && next == 2);
	T_STREQ(addr, "127.0.0.1:1");
	T_OK(server_flags_parse(2, a2, flags, 3, &next, &err) == 0 && next == 2);
	T_STREQ(config, "/etc/s.json");
	T_OK(server_flags_parse(3, a5, flags, 3, &next, &err) == 0 && !dev && next == 2);
	T_OK(!sg_err_isset(&err));
	T_OK(server_flags_parse(1, a3, flags, 3, &next, &err) == -1 && strstr(err.detail, "config"));
	sg_err_init(&err);
	T_OK(server_flags_parse(1, a4, flags, 3, &next, &err) == -1 && strstr(err.detail, "-nope"));
	sg_err_init(&err);
	T_OK(server_flags_parse(1, a6, flags, 3, &next, &err) == -1 && strstr(err.detail, "maybe"));
}

/* ---- Mounts (pure checks, then the table over a real store) ---- */

static void test_mount_checks(void)
{
	struct sg_err err;
	json_t *body = json_pack("{s:s, s:i, s:s, s:s, s:s, s:o, s:i, s:n}", "a", "2160h0m0s", "b", 3600, "c", "system",
	                         "d", "", "e", "soon", "f", json_object(), "g", -5, "h");
	int64_t v = -1;

	sg_err_init(&err);
	T_OK(registry_ttl_parse(body, "a", &v, &err) == 1 && v == 2160 * 3600);
	T_OK(registry_ttl_parse(body, "b", &v, &err) == 1 && v == 3600);
	T_OK(registry_ttl_parse(body, "c", &v, &err) == 1 && v == 0);
	T_OK(registry_ttl_parse(body, "d", &v, &err) == 1 && v == 0);
	v = 7;
	T_OK(registry_ttl_parse(body, "h", &v, &err) == 0 && v == 7);
	T_OK(registry_ttl_parse(body, "absent", &v, &err) == 0 && v == 7);
	T_OK(!sg_err_isset(&err));
	T_OK(registry_ttl_parse(body, "e", &v, &err) == -1 && err.code == SG_BAD_REQUEST && strstr(err.detail, "'e'"));
	sg_err_init(&err);
	T_OK(registry_ttl_parse(body, "f", &v, &err) == -1);
	sg_err_init(&err);
	T_OK(registry_ttl_parse(body, "g", &v, &err) == -1);
	json_decref(body);

	sg_err_init(&err);
	T_OK(registry_ttls_check(0, 0, &err) == 0);
	T_OK(registry_ttls_check(3600, 7200, &err) == 0);
	T_OK(registry_ttls_check(0, 87600 * 3600, &err) == 0);
	T_OK(registry_ttls_check(0, 3600, &err) == 0); /* unset default: the system default capped by the max */
	T_OK(registry_ttls_check(1000 * 3600, 0, &err) == -1 && err.code == SG_BAD_REQUEST);
	sg_err_init(&err);
	T_OK(registry_ttls_check(7200, 3600, &err) == -1);

	static const struct {
		const char *path;
		int ok;
	} paths[] = {
		{"pki", 1},        {"pki_int", 1},   {"a/b", 1},      {"a.b-c_d/e", 1}, {"", 0},
		{"a//b", 0},       {"/a", 0},        {"a/", 0},       {"a/./b", 0},     {"..", 0},
		{"a/..", 0},       {"sys", 0},       {"sys/x", 0},    {"auth", 0},      {"auth/x", 0},
		{"identity", 0},   {"cubbyhole", 0}, {"system", 1},   {"authz", 1},     {"a b", 0},
		{"a%2fb", 0},      {"a?b", 0},       {"\xc3\xa9", 0}, {"..a", 1},       {".a/b.", 1},
	};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		sg_err_init(&err);
		T_CHECK((mount_path_check(paths[i].path, &err) == 0) == paths[i].ok, "mount path '%s'", paths[i].path);
	}
}

static void test_mount_table(void)
{
	struct mount_table t;
	struct store *st = NULL;
	struct ca *ca = NULL;
	struct sg_err err;
	struct mount_tune tune = {0};
	const struct mount *m, *held;
	const char *sub = NULL;
	unsigned char kek[CA_KEK_BYTES] = {0};
	char *dir = sg_xasprintf("%s/store", tmp_root);
	json_t *j;

	sg_err_init(&err);
	T_OK(store_open(dir, 1u << 26, &st, &err) == 0);
	T_OK(ca_new(st, kek, &ca, &err) == 0);
	if (st == NULL || ca == NULL) {
		T_CHECK(0, "store/ca: %s", err.detail);
		goto out;
	}
	mount_table_init(&t);
	T_OK(mount_table_add(&t, st, "pki", "pki", "first", 0, 0, &err) == 0);
	T_OK(mount_table_add(&t, st, "a/b", "pki", "", 0, 87600 * 3600, &err) == 0);
	T_OK(!sg_err_isset(&err));
	/* Same path, a path under a mount, a path over a mount. */
	T_OK(mount_table_add(&t, st, "pki", "pki", "", 0, 0, &err) == -1 && err.code == SG_BAD_REQUEST);
	T_STREQ(err.detail, "path is already in use at pki/");
	sg_err_init(&err);
	T_OK(mount_table_add(&t, st, "pki/x", "pki", "", 0, 0, &err) == -1);
	T_STREQ(err.detail, "path is already in use at pki/");
	sg_err_init(&err);
	T_OK(mount_table_add(&t, st, "a", "pki", "", 0, 0, &err) == -1);
	T_STREQ(err.detail, "path is already in use at a/b/");
	sg_err_init(&err);
	T_OK(mount_table_add(&t, st, "sys", "pki", "", 0, 0, &err) == -1 && strstr(err.detail, "reserved"));
	sg_err_init(&err);
	T_OK(mount_table_add(&t, st, "x", "pki", "", 7200, 3600, &err) == -1);
	sg_err_init(&err);
	T_OK(mount_table_count(&t) == 2);

	/* Longest prefix routing. */
	m = mount_table_route(&t, "a/b/issue/web", &sub);
	T_OK(m != NULL && strcmp(m->path, "a/b") == 0);
	T_STREQ(sub, "issue/web");
	T_OK(m != NULL && m->ca.max_ttl == 87600 * 3600 && m->ca.default_ttl == MOUNT_SYSTEM_TTL);
	mount_unref(m);
	T_OK(mount_table_route(&t, "a/c", &sub) == NULL);
	T_OK(mount_table_route(&t, "pkix/ca", &sub) == NULL);

	/* Tune publishes a new entry; a holder keeps its old view. */
	held = mount_table_get(&t, "pki");
	tune.has_default_ttl = tune.has_max_ttl = true;
	tune.default_ttl = 3600;
	tune.max_ttl = 7200;
	T_OK(mount_table_tune(&t, st, "pki", &tune, &err) == 0);
	m = mount_table_get(&t, "pki");
	T_OK(m != NULL && m->ca.default_ttl == 3600 && m->ca.max_ttl == 7200 && strcmp(m->description, "first") == 0);
	T_OK(held != NULL && held->ca.default_ttl == MOUNT_SYSTEM_TTL && strcmp(held->id, m->id) == 0);
	mount_unref(m);
	mount_unref(held);
	tune.has_max_ttl = false;
	tune.default_ttl = 10800;
	T_OK(mount_table_tune(&t, st, "pki", &tune, &err) == -1 && strstr(err.detail, "max_lease_ttl"));
	sg_err_init(&err);
	T_OK(mount_table_tune(&t, st, "nope", &tune, &err) == -1);
	sg_err_init(&err);

	j = mount_table_to_json(&t);
	T_STREQ(json_string_value(json_object_get(json_object_get(j, "pki/"), "type")), "pki");
	T_OK(json_integer_value(json_object_get(json_object_get(json_object_get(j, "pki/"), "config"),
	                                        "max_lease_ttl")) == 7200);
	T_OK(strncmp(json_string_value(json_object_get(json_object_get(j, "a/b/"), "accessor")), "pki_", 4) == 0);
	json_decref(j);

	/* Persisted: a fresh table loads the same mounts and TTLs. */
	mount_table_clear(&t);
	mount_table_init(&t);
	T_OK(mount_table_load(&t, st, &err) == 0 && mount_table_count(&t) == 2);
	m = mount_table_get(&t, "pki");
	T_OK(m != NULL && m->default_lease_ttl == 3600 && m->max_lease_ttl == 7200);
	mount_unref(m);

	/* Remove: gone from routing and from the store; removing again succeeds. */
	T_OK(mount_table_remove(&t, st, ca, "a/b", &err) == 0);
	T_OK(mount_table_route(&t, "a/b/ca", &sub) == NULL);
	T_OK(mount_table_remove(&t, st, ca, "a/b", &err) == 0);
	T_OK(!sg_err_isset(&err));
	mount_table_clear(&t);
	mount_table_init(&t);
	T_OK(mount_table_load(&t, st, &err) == 0 && mount_table_count(&t) == 1);
	T_OK(mount_table_add(&t, st, "a/b", "pki", "", 0, 0, &err) == 0);
	mount_table_clear(&t);
out:
	ca_free(ca);
	store_close(st);
	free(dir);
}

/* Runs a sys/ route the way the router does (no HTTP): lookup, captures, body, handler. */
static int sys_call(struct server *srv, unsigned method, const char *sub, const char *body, json_t *query,
                    struct resp *rs, struct sg_err *err)
{
	const struct route *r = NULL;
	struct router_caps caps;
	struct req rq;
	int rc;

	memset(&rq, 0, sizeof(rq));
	resp_clear(rs);
	sg_err_init(err);
	if (router_lookup(sys_routes, sys_routes_n, sub, method, &r, &caps) != ROUTER_FOUND)
		return sg_err_set(err, SG_UNSUPPORTED_PATH, "no route");
	if (server_json_parse_object(body, strlen(body), MAX_JSON_DEPTH, &rq.body, err) != 0)
		return -1;
	rq.srv = srv;
	rq.method = (enum http_method)method;
	rq.path = sub;
	rq.sub = sub;
	for (size_t i = 0; i < caps.n; i++) {
		rq.cap_name[i] = caps.name[i];
		rq.cap_val[i] = caps.val[i];
	}
	rq.query = query;
	rc = r->fn(&rq, rs, err);
	json_decref(rq.body);
	return rc;
}

static json_t *raw_json(const struct resp *rs)
{
	return rs->body != NULL ? json_loadb((const char *)rs->body, rs->body_len, 0, NULL) : NULL;
}

static void test_sys_handlers(void)
{
	struct server srv;
	struct resp rs;
	struct sg_err err;
	unsigned char kek[CA_KEK_BYTES] = {7};
	char *dir = sg_xasprintf("%s/sys-store", tmp_root);
	json_t *j, *q;

	memset(&srv, 0, sizeof(srv));
	memset(&rs, 0, sizeof(rs));
	snprintf(srv.cluster_name, sizeof(srv.cluster_name), "c1");
	snprintf(srv.cluster_id, sizeof(srv.cluster_id), "id1");
	sg_err_init(&err);
	mount_table_init(&srv.mounts);
	if (store_open(dir, 1u << 26, &srv.st, &err) != 0 || ca_new(srv.st, kek, &srv.ca, &err) != 0 ||
	    lease_mgr_new(srv.st, &srv.leases, &err) != 0) {
		T_CHECK(0, "store/ca/leases: %s", err.detail);
		goto out;
	}
	/* As server.c: sys/mounts DELETE drops the mount's leases through it. */
	pki_lease_kind_register(srv.leases, srv.ca);

	/* Health: raw JSON, activecode honoured, a bad code refused. */
	T_OK(sys_call(&srv, HTTP_GET, "health", "", NULL, &rs, &err) == 0);
	T_STREQ(rs.content_type, "application/json");
	T_OK(rs.status == 200);
	j = raw_json(&rs);
	T_OK(json_is_true(json_object_get(j, "initialized")) && json_is_false(json_object_get(j, "sealed")) &&
	     json_is_false(json_object_get(j, "standby")));
	T_STREQ(json_string_value(json_object_get(j, "cluster_name")), "c1");
	T_OK(json_is_integer(json_object_get(j, "server_time_utc")));
	json_decref(j);
	q = json_pack("{s:s, s:s}", "activecode", "299", "standbyok", "true");
	T_OK(sys_call(&srv, HTTP_GET, "health", "", q, &rs, &err) == 0 && rs.status == 299);
	json_object_set_new(q, "standbycode", json_string("abc"));
	T_OK(sys_call(&srv, HTTP_GET, "health", "", q, &rs, &err) == -1 && err.code == SG_BAD_REQUEST);
	json_decref(q);

	/* Mount with loosely typed TTLs in "config"; unknown fields ignored. */
	T_OK(sys_call(&srv, HTTP_POST, "mounts/pki_int",
	              "{\"type\":\"pki\",\"description\":\"int\",\"config\":{\"max_lease_ttl\":\"43800h\","
	              "\"default_lease_ttl\":3600},\"options\":{\"x\":1},\"local\":true}",
	              NULL, &rs, &err) == 0);
	T_OK(rs.data == NULL && rs.status == 0);
	T_OK(sys_call(&srv, HTTP_POST, "mounts/kv", "{\"type\":\"kv\"}", NULL, &rs, &err) == -1 &&
	     err.code == SG_BAD_REQUEST && strstr(err.detail, "\"kv\""));
	T_OK(sys_call(&srv, HTTP_POST, "mounts/x", "{}", NULL, &rs, &err) == -1 && strstr(err.detail, "type"));
	T_OK(sys_call(&srv, HTTP_POST, "mounts/x", "{\"type\":{}}", NULL, &rs, &err) == -1);
	T_OK(sys_call(&srv, HTTP_POST, "mounts/x", "{\"type\":\"pki\",\"config\":{\"max_lease_ttl\":\"forever\"}}",
	              NULL, &rs, &err) == -1 &&
	     strstr(err.detail, "max_lease_ttl"));
	T_OK(sys_call(&srv, HTTP_POST, "mounts/x", "{\"type\":\"pki\",\"config\":\"big\"}", NULL, &rs, &err) == -1);
	T_OK(sys_call(&srv, HTTP_POST, "mounts/pki_int", "{\"type\":\"pki\"}", NULL, &rs, &err) == -1);
	T_STREQ(err.detail, "path is already in use at pki_int/");

	/* Tune read gives effective TTLs; "system" resets to the 768h default. */
	T_OK(sys_call(&srv, HTTP_GET, "mounts/pki_int/tune", "", NULL, &rs, &err) == 0);
	T_OK(json_integer_value(json_object_get(rs.data, "default_lease_ttl")) == 3600 &&
	     json_integer_value(json_object_get(rs.data, "max_lease_ttl")) == 43800 * 3600);
	T_OK(sys_call(&srv, HTTP_POST, "mounts/pki_int/tune", "{\"default_lease_ttl\":\"3h\",\"max_lease_ttl\":\"2h\"}",
	              NULL, &rs, &err) == -1 &&
	     strstr(err.detail, "cannot be greater"));
	T_OK(sys_call(&srv, HTTP_POST, "mounts/pki_int/tune",
	              "{\"default_lease_ttl\":\"system\",\"max_lease_ttl\":\"2h\"}", NULL, &rs, &err) == 0);
	T_OK(sys_call(&srv, HTTP_GET, "mounts/pki_int/tune", "", NULL, &rs, &err) == 0);
	T_OK(json_integer_value(json_object_get(rs.data, "default_lease_ttl")) == 7200 &&
	     json_integer_value(json_object_get(rs.data, "max_lease_ttl")) == 7200);
	T_OK(sys_call(&srv, HTTP_POST, "mounts/pki_int/tune", "{\"max_lease_ttl\":\"system\"}", NULL, &rs, &err) ==
	     0);
	T_OK(sys_call(&srv, HTTP_POST, "mounts/pki_int/tune",
	              "{\"default_lease_ttl\":\"system\",\"description\":\"d2\"}", NULL, &rs, &err) == 0);
	T_OK(sys_call(&srv, HTTP_GET, "mounts/pki_int/tune", "", NULL, &rs, &err) == 0);
	T_OK(json_integer_value(json_object_get(rs.data, "default_lease_ttl")) == MOUNT_SYSTEM_TTL);
	T_STREQ(json_string_value(json_object_get(rs.data, "description")), "d2");
	T_OK(sys_call(&srv, HTTP_POST, "mounts/pki_int/tune", "{\"max_lease_ttl\":\"forever\"}", NULL, &rs, &err) ==
	     -1);
	T_OK(sys_call(&srv, HTTP_POST, "mounts/nope/tune", "{\"max_lease_ttl\":\"1h\"}", NULL, &rs, &err) == -1);
	T_OK(sys_call(&srv, HTTP_GET, "mounts/nope/tune", "", NULL, &rs, &err) == -1 && err.code == SG_BAD_REQUEST);

	/* List and single read. */
	T_OK(sys_call(&srv, HTTP_GET, "mounts", "", NULL, &rs, &err) == 0);
	T_STREQ(json_string_value(json_object_get(json_object_get(rs.data, "pki_int/"), "description")), "d2");
	T_OK(sys_call(&srv, HTTP_GET, "mounts/pki_int", "", NULL, &rs, &err) == 0);
	T_STREQ(json_string_value(json_object_get(rs.data, "type")), "pki");

	/* consul-template's KV probe. */
	T_OK(sys_call(&srv, HTTP_GET, "internal/ui/mounts/secret", "", NULL, &rs, &err) == -1 &&
	     err.code == SG_NOT_FOUND);

	/* Delete, twice. */
	T_OK(sys_call(&srv, HTTP_DELETE, "mounts/pki_int", "", NULL, &rs, &err) == 0);
	T_OK(sys_call(&srv, HTTP_DELETE, "mounts/pki_int", "", NULL, &rs, &err) == 0);
	T_OK(sys_call(&srv, HTTP_GET, "mounts", "", NULL, &rs, &err) == 0 && json_object_size(rs.data) == 0);
out:
	resp_clear(&rs);
	mount_table_clear(&srv.mounts);
	lease_mgr_free(srv.leases);
	ca_free(srv.ca);
	store_close(srv.st);
	free(dir);
}

int main(void)
{
	snprintf(tmp_root, sizeof(tmp_root), "/tmp/sigil-test-server-XXXXXX");
	if (mkdtemp(tmp_root) == NULL)
		sg_die("mkdtemp failed");
	test_pattern_match();
	test_lookup();
	test_methods();
	test_paths();
	test_json();
	test_envelope();
	test_req_accessors();
	test_config();
	test_kek();
	test_flags();
	test_mount_checks();
	test_mount_table();
	test_sys_handlers();
	{
		char *cmd = sg_xasprintf("rm -rf '%s'", tmp_root);

		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", tmp_root);
		free(cmd);
	}
	return t_done();
}
