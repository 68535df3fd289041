/* Unit tests for auth/tokenfields.c (token_* role fields, CIDRs) and auth/approle.c (roles, secret ids, login). */
#include "auth/approle.h"
#include "tests/unit/t.h"

#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define P "m/00000000-0000-4000-8000-000000000001/"
#define P2 "m/00000000-0000-4000-8000-000000000002/"
#define HERE "127.0.0.1:40000"

static struct store *g_st;

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

static void split(struct sg_strlist *l, const char *s)
{
	sg_strlist_clear(l);
	while (s != NULL && *s != '\0') {
		const char *e = strchr(s, '|');
		size_t n = e != NULL ? (size_t)(e - s) : strlen(s);

		sg_strlist_addn(l, s, n);
		s = e != NULL ? e + 1 : NULL;
	}
}

/* ---------------- tokenfields ---------------- */

/* Applies body to fresh fields; returns the error code (SG_OK when accepted). */
static enum sg_code tf_apply(const char *body, struct auth_tokenfields *f)
{
	struct sg_err err;
	json_t *o = js(body);
	int rc;

	sg_err_init(&err);
	auth_tokenfields_init(f);
	rc = auth_tokenfields_apply(f, o, &err);
	json_decref(o);
	if (rc != 0 && err.code == SG_OK)
		return SG_INTERNAL;
	return rc == 0 ? SG_OK : err.code;
}

static void test_tokenfields(void)
{
	struct auth_tokenfields f, g;
	struct auth_token_params p;
	struct sg_err err;
	json_t *o;

	T_CHECK(tf_apply("{\"token_policies\":\" Web , ops,web,,\",\"token_ttl\":\"1h\",\"token_max_ttl\":7200,"
	                 "\"token_bound_cidrs\":[\"10.0.0.0/8\",\"::1\"],\"token_num_uses\":\"3\","
	                 "\"token_no_default_policy\":\"true\",\"token_period\":\"0\",\"token_type\":\"service\"}",
	                 &f) == SG_OK,
	        "full body accepted");
	T_CHECK(f.policies.n == 2 && strcmp(f.policies.v[0], "ops") == 0 && strcmp(f.policies.v[1], "web") == 0,
	        "policies trimmed, lower-cased, sorted, unique (%zu)", f.policies.n);
	T_OK(f.ttl == 3600 && f.max_ttl == 7200 && f.num_uses == 3 && f.no_default_policy);
	T_OK(f.bound_cidrs.n == 2);
	T_STREQ(f.type, "service");

	/* Read form and round trip through the storage form. */
	o = json_object();
	auth_tokenfields_encode(&f, o);
	T_CHECK(json_integer_value(json_object_get(o, "token_ttl")) == 3600, "token_ttl in seconds");
	T_CHECK(json_array_size(json_object_get(o, "token_policies")) == 2, "token_policies listed");
	T_STREQ(json_string_value(json_object_get(o, "token_type")), "service");
	sg_err_init(&err);
	auth_tokenfields_init(&g);
	T_OK(auth_tokenfields_decode(&g, o, &err) == 0);
	T_OK(g.ttl == f.ttl && g.max_ttl == f.max_ttl && g.num_uses == 3 && g.no_default_policy && g.policies.n == 2 &&
	     g.bound_cidrs.n == 2);
	json_decref(o);
	auth_tokenfields_clear(&g);

	/* to_params: default policy only when not refused. */
	auth_token_params_init(&p);
	auth_tokenfields_to_params(&f, &p);
	T_OK(!sg_strlist_has(&p.policies, "default") && p.ttl == 3600 && p.max_ttl == 7200 && p.num_uses == 3 &&
	     p.bound_cidrs.n == 2 && p.renewable);
	auth_token_params_clear(&p);
	auth_tokenfields_clear(&f);
	T_OK(tf_apply("{\"token_policies\":[\"zeta\"]}", &f) == SG_OK);
	auth_token_params_init(&p);
	auth_tokenfields_to_params(&f, &p);
	T_CHECK(p.policies.n == 2 && strcmp(p.policies.v[0], "default") == 0 && strcmp(p.policies.v[1], "zeta") == 0,
	        "default added and sorted");
	auth_token_params_clear(&p);
	auth_tokenfields_clear(&f);

	/* Deprecated names apply only without the new ones. */
	T_OK(tf_apply("{\"policies\":\"a,b\",\"period\":\"30m\"}", &f) == SG_OK && f.policies.n == 2 && f.period == 1800);
	auth_tokenfields_clear(&f);
	T_OK(tf_apply("{\"policies\":\"a,b\",\"token_policies\":\"c\"}", &f) == SG_OK && f.policies.n == 1 &&
	     strcmp(f.policies.v[0], "c") == 0);
	auth_tokenfields_clear(&f);
	/* Defaults as Vault reads them back. */
	T_OK(tf_apply("{}", &f) == SG_OK && strcmp(f.type, "default") == 0 && f.ttl == 0 && f.policies.n == 0);
	auth_tokenfields_clear(&f);

	/* Refusals. */
	T_OK(tf_apply("{\"token_policies\":\"ok,bad/name\"}", &f) == SG_BAD_REQUEST);
	auth_tokenfields_clear(&f);
	T_OK(tf_apply("{\"token_policies\":[\"a\\\"b\"]}", &f) == SG_BAD_REQUEST);
	auth_tokenfields_clear(&f);
	T_OK(tf_apply("{\"token_bound_cidrs\":\"10.0.0.0/33\"}", &f) == SG_BAD_REQUEST);
	auth_tokenfields_clear(&f);
	T_OK(tf_apply("{\"token_bound_cidrs\":[\"not-an-ip\"]}", &f) == SG_BAD_REQUEST);
	auth_tokenfields_clear(&f);
	T_OK(tf_apply("{\"token_num_uses\":-1}", &f) == SG_BAD_REQUEST);
	auth_tokenfields_clear(&f);
	T_OK(tf_apply("{\"token_ttl\":\"2h\",\"token_max_ttl\":\"1h\"}", &f) == SG_BAD_REQUEST);
	auth_tokenfields_clear(&f);
	T_OK(tf_apply("{\"token_type\":\"batch\"}", &f) == SG_BAD_REQUEST);
	auth_tokenfields_clear(&f);
	T_OK(tf_apply("{\"token_type\":\"weird\"}", &f) == SG_BAD_REQUEST);
	auth_tokenfields_clear(&f);
	T_OK(tf_apply("{\"token_ttl\":\"soon\"}", &f) == SG_BAD_REQUEST);
	auth_tokenfields_clear(&f);
	T_OK(tf_apply("{\"token_ttl\":{}}", &f) == SG_BAD_REQUEST);
	auth_tokenfields_clear(&f);
	T_OK(tf_apply("{\"token_no_default_policy\":\"maybe\"}", &f) == SG_BAD_REQUEST);
	auth_tokenfields_clear(&f);
	{
		/* More policies than AUTH_MAX_POLICIES. */
		char body[AUTH_MAX_POLICIES * 8 + 64];
		size_t n = (size_t)snprintf(body, sizeof(body), "{\"token_policies\":\"");

		for (int i = 0; i <= AUTH_MAX_POLICIES; i++)
			n += (size_t)snprintf(body + n, sizeof(body) - n, "p%d,", i);
		snprintf(body + n, sizeof(body) - n, "\"}");
		T_OK(tf_apply(body, &f) == SG_BAD_REQUEST);
		auth_tokenfields_clear(&f);
	}
}

static void test_cidrs(void)
{
	struct sg_strlist l = {0};
	struct sg_err err;

	T_OK(auth_cidr_allowed(&l, "1.2.3.4:5"));         /* empty list: anywhere */
	split(&l, "10.0.0.0/8|192.168.1.7|2001:db8::/32");
	T_OK(auth_cidr_allowed(&l, "10.200.3.4"));
	T_OK(auth_cidr_allowed(&l, "10.200.3.4:8200"));
	T_OK(auth_cidr_allowed(&l, "192.168.1.7:1"));
	T_OK(!auth_cidr_allowed(&l, "192.168.1.8:1"));
	T_OK(!auth_cidr_allowed(&l, "127.0.0.1:40000"));
	T_OK(!auth_cidr_allowed(&l, "11.0.0.1"));
	T_OK(auth_cidr_allowed(&l, "[2001:db8::1]:443"));
	T_OK(auth_cidr_allowed(&l, "2001:db8:ffff::1"));
	T_OK(!auth_cidr_allowed(&l, "[2001:db9::1]:443"));
	T_OK(auth_cidr_allowed(&l, "[::ffff:10.1.2.3]:99")); /* v4-mapped compares as v4 */
	T_OK(!auth_cidr_allowed(&l, "unknown"));
	T_OK(!auth_cidr_allowed(&l, NULL));
	T_OK(!auth_cidr_allowed(&l, "[::1"));
	split(&l, "10.1.0.0/17");
	T_OK(auth_cidr_allowed(&l, "10.1.127.255"));
	T_OK(!auth_cidr_allowed(&l, "10.1.128.0"));
	split(&l, "0.0.0.0/0");
	T_OK(auth_cidr_allowed(&l, "8.8.8.8") && !auth_cidr_allowed(&l, "::1"));

	split(&l, "10.0.0.0/8|192.168.0.0/16");
	T_OK(auth_cidr_within("10.2.0.0/16", &l));
	T_OK(auth_cidr_within("192.168.3.3", &l));
	T_OK(!auth_cidr_within("10.0.0.0/7", &l));
	T_OK(!auth_cidr_within("172.16.0.0/12", &l));
	T_OK(!auth_cidr_within("junk", &l));
	sg_strlist_clear(&l);
	T_OK(auth_cidr_within("172.16.0.0/12", &l)); /* no outer bound */

	sg_err_init(&err);
	split(&l, "10.0.0.0/8|::1/128|1.2.3.4");
	T_OK(auth_cidrs_check(&l, "f", &err) == 0);
	split(&l, "10.0.0.0/8|10.0.0.0/-1");
	T_OK(auth_cidrs_check(&l, "f", &err) == -1 && err.code == SG_BAD_REQUEST && strstr(err.detail, "'f'") != NULL);
	sg_err_init(&err);
	split(&l, "1.2.3.4/ 8");
	T_OK(auth_cidrs_check(&l, "f", &err) == -1);
	sg_strlist_clear(&l);
}

/* ---------------- AppRole ---------------- */

/* Creates (or updates) a role from body; 0 or the error code. */
static enum sg_code role_put(const char *prefix, const char *name, const char *body)
{
	struct auth_approle_role r;
	struct sg_err err;
	json_t *o = js(body);
	char *old = NULL;
	int got, rc = -1;

	sg_err_init(&err);
	auth_approle_role_init(&r);
	got = auth_approle_role_load(g_st, prefix, name, &r, &err);
	if (got == 1)
		old = sg_xstrdup(r.role_id);
	else
		r.name = sg_xstrdup(name);
	if (got >= 0 && auth_approle_role_apply(&r, o, got == 0, &err) == 0 &&
	    auth_approle_role_store(g_st, prefix, &r, old, &err) == 0)
		rc = 0;
	json_decref(o);
	free(old);
	auth_approle_role_clear(&r);
	return rc == 0 ? SG_OK : err.code;
}

static int role_get(const char *prefix, const char *name, struct auth_approle_role *r)
{
	struct sg_err err;

	sg_err_init(&err);
	auth_approle_role_init(r);
	return auth_approle_role_load(g_st, prefix, name, r, &err);
}

/* Generates a secret id with the given body; returns the error code and the secret in out. */
static enum sg_code secret_new(const char *name, const char *body, char *out, struct auth_approle_secret *s)
{
	struct auth_approle_role r;
	struct auth_approle_secret_params p;
	struct auth_approle_secret tmp;
	struct sg_err err;
	json_t *o = js(body);
	int rc = -1;

	memset(&tmp, 0, sizeof(tmp));
	memset(&p, 0, sizeof(p));
	sg_err_init(&err);
	out[0] = '\0';
	if (role_get(P, name, &r) == 1 &&
	    auth_approle_secret_params_parse(o, json_object_get(o, "secret_id") != NULL, &p, &err) == 0)
		rc = auth_approle_secret_create(g_st, P, &r, &p, out, AUTH_APPROLE_SECRET_MAX, s != NULL ? s : &tmp, &err);
	else if (!sg_err_isset(&err))
		sg_err_set(&err, SG_NOT_FOUND, "no role");
	auth_approle_secret_params_clear(&p);
	auth_approle_secret_clear(&tmp);
	auth_approle_role_clear(&r);
	json_decref(o);
	return rc == 0 ? SG_OK : err.code;
}

static char g_last_detail[SG_ERR_DETAIL_MAX];

/* Logs in; returns the error code (SG_OK on success). */
static enum sg_code login(const char *prefix, const char *role_id, const char *secret_id, const char *addr,
                          struct auth_approle_login_result *out)
{
	struct auth_approle_login_result tmp;
	struct sg_err err;
	int rc;

	sg_err_init(&err);
	rc = auth_approle_login(g_st, prefix, role_id, secret_id, addr, out != NULL ? out : &tmp, &err);
	snprintf(g_last_detail, sizeof(g_last_detail), "%s", err.detail);
	if (out == NULL && rc == 0)
		auth_approle_login_result_clear(&tmp);
	return rc == 0 ? SG_OK : err.code;
}

static char *role_id_of(const char *prefix, const char *name)
{
	struct auth_approle_role r;
	char *id = NULL;

	if (role_get(prefix, name, &r) == 1)
		id = sg_xstrdup(r.role_id);
	auth_approle_role_clear(&r);
	return id;
}

static void test_roles(void)
{
	struct auth_approle_role r, r2;
	struct sg_strlist l = {0};
	struct sg_err err;
	json_t *o;

	T_OK(role_put(P, "web", "{\"token_policies\":\"web\",\"token_ttl\":\"1h\"}") == SG_OK);
	T_OK(role_get(P, "web", &r) == 1);
	T_OK(r.bind_secret_id && r.role_id != NULL && strlen(r.role_id) == 36 && r.tf.ttl == 3600);
	o = auth_approle_role_to_json(&r);
	T_OK(json_is_true(json_object_get(o, "bind_secret_id")));
	T_OK(json_integer_value(json_object_get(o, "token_ttl")) == 3600);
	T_OK(json_object_get(o, "role_id") == NULL && json_object_get(o, "hmac_key") == NULL); /* not in the read form */
	json_decref(o);

	/* An update keeps the role_id and the HMAC key, and fields absent from the body. */
	T_OK(role_put(P, "web", "{\"secret_id_num_uses\":5}") == SG_OK);
	T_OK(role_get(P, "web", &r2) == 1);
	T_OK(strcmp(r.role_id, r2.role_id) == 0 && memcmp(r.hmac_key, r2.hmac_key, sizeof(r.hmac_key)) == 0);
	T_OK(r2.secret_id_num_uses == 5 && r2.tf.ttl == 3600 && r2.tf.policies.n == 1);
	auth_approle_role_clear(&r2);
	auth_approle_role_clear(&r);

	/* Custom role ids are unique in a mount, not across mounts. */
	T_OK(role_put(P, "a", "{\"role_id\":\"shared-id\"}") == SG_OK);
	T_OK(role_put(P, "b", "{\"role_id\":\"shared-id\"}") == SG_BAD_REQUEST);
	T_OK(role_get(P, "b", &r) == 0);
	auth_approle_role_clear(&r);
	T_OK(role_put(P2, "b", "{\"role_id\":\"shared-id\"}") == SG_OK);
	/* Changing a role id frees the old one. */
	T_OK(role_put(P, "a", "{\"role_id\":\"other-id\"}") == SG_OK);
	T_OK(role_put(P, "b", "{\"role_id\":\"shared-id\"}") == SG_OK);

	/* Bad bodies and names. */
	T_OK(role_put(P, "nobind", "{\"bind_secret_id\":false}") == SG_BAD_REQUEST);
	T_OK(role_put(P, "nobind", "{\"bind_secret_id\":false,\"secret_id_bound_cidrs\":\"127.0.0.1/32\"}") == SG_OK);
	T_OK(role_put(P, "x", "{\"secret_id_num_uses\":-2}") == SG_BAD_REQUEST);
	T_OK(role_put(P, "x", "{\"secret_id_ttl\":\"forever\"}") == SG_BAD_REQUEST);
	T_OK(role_put(P, "x", "{\"secret_id_bound_cidrs\":\"300.0.0.0/8\"}") == SG_BAD_REQUEST);
	T_OK(role_put(P, "x", "{\"role_id\":\"has space\"}") == SG_BAD_REQUEST);
	T_OK(role_put(P, "x", "{\"token_type\":\"batch\"}") == SG_BAD_REQUEST);
	sg_err_init(&err);
	T_OK(auth_approle_name_check("ok_name-1.x", &err) == 0);
	T_OK(auth_approle_name_check("-bad", &err) == -1 && err.code == SG_BAD_REQUEST);
	sg_err_init(&err);
	T_OK(auth_approle_name_check("a/b", &err) == -1);
	sg_err_init(&err);
	T_OK(auth_approle_name_check("", &err) == -1);

	sg_err_init(&err);
	T_OK(auth_approle_role_list(g_st, P, &l, &err) == 0);
	T_CHECK(l.n == 4 && sg_strlist_has(&l, "web") && sg_strlist_has(&l, "nobind"), "roles listed: %zu", l.n);
	sg_strlist_clear(&l);
}

static void test_secrets_and_login(void)
{
	char s1[AUTH_APPROLE_SECRET_MAX], s2[AUTH_APPROLE_SECRET_MAX], s3[AUTH_APPROLE_SECRET_MAX];
	struct auth_approle_secret sec, look;
	struct auth_approle_login_result lr;
	struct auth_approle_role r;
	struct sg_strlist l = {0};
	struct sg_err err;
	char *rid, *rid_other;

	T_OK(role_put(P, "app", "{\"token_policies\":\"app\",\"secret_id_num_uses\":2,\"token_bound_cidrs\":"
	                        "\"127.0.0.0/8,10.0.0.0/8\"}") == SG_OK);
	rid = role_id_of(P, "app");
	rid_other = role_id_of(P, "web");
	T_OK(rid != NULL && rid_other != NULL);

	memset(&sec, 0, sizeof(sec));
	T_OK(secret_new("app", "{\"metadata\":\"{\\\"team\\\":\\\"blue\\\"}\"}", s1, &sec) == SG_OK);
	T_OK(strlen(s1) == 36 && strlen(sec.accessor) == 36 && sec.num_uses == 2 && sec.expiration_time == 0);
	T_STREQ(json_string_value(json_object_get(sec.metadata, "team")), "blue");

	/* Lookup by secret and by accessor; wrong secret is absent. */
	T_OK(role_get(P, "app", &r) == 1);
	sg_err_init(&err);
	memset(&look, 0, sizeof(look));
	T_OK(auth_approle_secret_lookup(g_st, P, &r, s1, &look, &err) == 1 && strcmp(look.accessor, sec.accessor) == 0);
	auth_approle_secret_clear(&look);
	T_OK(auth_approle_secret_lookup_accessor(g_st, P, &r, sec.accessor, &look, &err) == 1);
	{
		json_t *o = auth_approle_secret_to_json(&look);

		T_OK(json_integer_value(json_object_get(o, "secret_id_num_uses")) == 2);
		T_STREQ(json_string_value(json_object_get(o, "expiration_time")), "0001-01-01T00:00:00Z");
		T_OK(json_string_value(json_object_get(o, "secret_id_accessor")) != NULL);
		json_decref(o);
	}
	auth_approle_secret_clear(&look);
	T_OK(auth_approle_secret_lookup(g_st, P, &r, "not-a-secret", &look, &err) == 0);
	T_OK(auth_approle_secret_lookup_accessor(g_st, P, &r, "../x", &look, &err) == 0);
	sg_err_init(&err);
	T_OK(auth_approle_secret_list(g_st, P, "app", &l, &err) == 0 && l.n == 1 && strcmp(l.v[0], sec.accessor) == 0);
	sg_strlist_clear(&l);

	/* Login: metadata carries role_name, token CIDRs come from the role. */
	T_OK(login(P, rid, s1, HERE, &lr) == SG_OK);
	T_STREQ(json_string_value(json_object_get(lr.metadata, "role_name")), "app");
	T_STREQ(json_string_value(json_object_get(lr.metadata, "team")), "blue");
	T_OK(lr.token_bound_cidrs.n == 2 && lr.role.tf.policies.n == 1);
	auth_approle_login_result_clear(&lr);

	/* Wrong pairs. */
	T_OK(login(P, rid_other, s1, HERE, NULL) == SG_BAD_REQUEST); /* secret of another role */
	T_STREQ(g_last_detail, "invalid role or secret ID");
	T_OK(login(P, "no-such-role-id", s1, HERE, NULL) == SG_BAD_REQUEST);
	T_STREQ(g_last_detail, "invalid role or secret ID");
	T_OK(login(P2, rid, s1, HERE, NULL) == SG_BAD_REQUEST); /* another mount */
	T_OK(login(P, rid, "", HERE, NULL) == SG_BAD_REQUEST);
	T_STREQ(g_last_detail, "missing secret_id");
	T_OK(login(P, "", s1, HERE, NULL) == SG_BAD_REQUEST);
	T_STREQ(g_last_detail, "missing role_id");
	T_OK(login(P, rid, "wrong-secret", HERE, NULL) == SG_BAD_REQUEST);

	/* Second (last) use works, a third does not: the secret id is gone. */
	T_OK(login(P, rid, s1, HERE, NULL) == SG_OK);
	T_OK(login(P, rid, s1, HERE, NULL) == SG_BAD_REQUEST);
	T_STREQ(g_last_detail, "invalid role or secret ID");
	sg_err_init(&err);
	T_OK(auth_approle_secret_list(g_st, P, "app", &l, &err) == 0 && l.n == 0);
	auth_approle_secret_clear(&sec);

	/* Secret id CIDRs: inside the role's; checked against the caller. */
	T_OK(role_put(P, "net", "{\"secret_id_bound_cidrs\":\"10.0.0.0/8,127.0.0.0/8\"}") == SG_OK);
	free(rid);
	rid = role_id_of(P, "net");
	T_OK(secret_new("net", "{\"cidr_list\":\"192.168.0.0/16\"}", s2, NULL) == SG_BAD_REQUEST);
	T_OK(secret_new("net", "{\"cidr_list\":\"10.1.0.0/16\"}", s2, NULL) == SG_OK);
	T_OK(login(P, rid, s2, HERE, NULL) == SG_BAD_REQUEST);
	T_CHECK(strstr(g_last_detail, "source address \"127.0.0.1\" unauthorized by CIDR restrictions on the secret ID") !=
	            NULL,
	        "%s", g_last_detail);
	T_OK(login(P, rid, s2, "10.1.2.3:999", NULL) == SG_OK);
	/* The role's own bound: 11.x is inside no role CIDR. */
	T_OK(secret_new("net", "{}", s3, NULL) == SG_OK);
	T_OK(login(P, rid, s3, "11.1.1.1:5", NULL) == SG_BAD_REQUEST);
	T_CHECK(strstr(g_last_detail, "on the role") != NULL, "%s", g_last_detail);
	T_OK(login(P, rid, s3, "[::1]:5", NULL) == SG_BAD_REQUEST);
	T_OK(login(P, rid, s3, HERE, NULL) == SG_OK);
	/* Narrowing the role afterwards invalidates secret ids whose CIDRs no longer fit. */
	T_OK(role_put(P, "net", "{\"secret_id_bound_cidrs\":\"127.0.0.0/8\"}") == SG_OK);
	T_OK(login(P, rid, s2, "10.1.2.3:999", NULL) == SG_BAD_REQUEST);

	/* token_bound_cidrs on a secret id override the role's, inside them. */
	T_OK(secret_new("app", "{\"token_bound_cidrs\":\"10.9.0.0/16\"}", s3, NULL) == SG_OK);
	T_OK(secret_new("app", "{\"token_bound_cidrs\":\"172.16.0.0/12\"}", s2, NULL) == SG_BAD_REQUEST);
	free(rid);
	rid = role_id_of(P, "app");
	memset(&lr, 0, sizeof(lr));
	T_OK(login(P, rid, s3, HERE, &lr) == SG_OK);
	T_OK(lr.token_bound_cidrs.n == 1 && strcmp(lr.token_bound_cidrs.v[0], "10.9.0.0/16") == 0);
	auth_approle_login_result_clear(&lr);

	/* ttl and num_uses may narrow the role's, never widen. */
	T_OK(secret_new("app", "{\"num_uses\":3}", s2, NULL) == SG_BAD_REQUEST);
	memset(&sec, 0, sizeof(sec));
	T_OK(secret_new("app", "{\"num_uses\":1,\"ttl\":\"10m\"}", s2, &sec) == SG_OK);
	T_OK(sec.num_uses == 1 && sec.ttl == 600 && sec.expiration_time == sec.creation_time + 600);
	auth_approle_secret_clear(&sec);
	T_OK(login(P, rid, s2, HERE, NULL) == SG_OK);
	T_OK(login(P, rid, s2, HERE, NULL) == SG_BAD_REQUEST);

	/* Metadata shapes. */
	T_OK(secret_new("app", "{\"metadata\":{\"k\":\"v\"}}", s2, NULL) == SG_OK);
	T_OK(secret_new("app", "{\"metadata\":\"not json\"}", s2, NULL) == SG_BAD_REQUEST);
	T_OK(secret_new("app", "{\"metadata\":{\"k\":1}}", s2, NULL) == SG_BAD_REQUEST);
	T_OK(secret_new("app", "{\"metadata\":\"[1,2]\"}", s2, NULL) == SG_BAD_REQUEST);

	/* Custom secret ids: accepted once. */
	T_OK(secret_new("app", "{\"secret_id\":\"my-own-secret\"}", s2, NULL) == SG_OK);
	T_STREQ(s2, "my-own-secret");
	T_OK(secret_new("app", "{\"secret_id\":\"my-own-secret\"}", s2, NULL) == SG_BAD_REQUEST);
	T_OK(login(P, rid, "my-own-secret", HERE, NULL) == SG_OK);

	/* Destroy by secret and by accessor. */
	memset(&sec, 0, sizeof(sec));
	T_OK(secret_new("app", "{}", s2, &sec) == SG_OK);
	sg_err_init(&err);
	T_OK(auth_approle_secret_destroy(g_st, P, &r, s2, &err) == 1);
	T_OK(auth_approle_secret_destroy(g_st, P, &r, s2, &err) == 0);
	T_OK(login(P, rid, s2, HERE, NULL) == SG_BAD_REQUEST);
	auth_approle_secret_clear(&sec);
	T_OK(secret_new("app", "{}", s2, &sec) == SG_OK);
	T_OK(auth_approle_secret_destroy_accessor(g_st, P, &r, sec.accessor, &err) == 1);
	T_OK(auth_approle_secret_destroy_accessor(g_st, P, &r, sec.accessor, &err) == 0);
	T_OK(login(P, rid, s2, HERE, NULL) == SG_BAD_REQUEST);
	auth_approle_secret_clear(&sec);

	/* A role without bind_secret_id: the role id alone, from inside its CIDRs. */
	free(rid);
	rid = role_id_of(P, "nobind");
	T_OK(login(P, rid, NULL, HERE, NULL) == SG_OK);
	T_OK(login(P, rid, NULL, "10.0.0.1:1", NULL) == SG_BAD_REQUEST);
	T_OK(secret_new("nobind", "{}", s2, NULL) == SG_BAD_REQUEST); /* bind_secret_id is not set */

	auth_approle_role_clear(&r);
	free(rid);
	free(rid_other);
}

static void test_expiry_and_tidy(void)
{
	char s1[AUTH_APPROLE_SECRET_MAX], s2[AUTH_APPROLE_SECRET_MAX], s3[AUTH_APPROLE_SECRET_MAX];
	struct auth_approle_role r;
	struct auth_approle_secret look;
	struct sg_strlist l = {0};
	struct sg_err err;
	uint64_t n = 0;
	char *rid;

	T_OK(role_put(P, "short", "{\"secret_id_ttl\":\"60s\"}") == SG_OK);
	rid = role_id_of(P, "short");
	T_OK(secret_new("short", "{}", s1, NULL) == SG_OK);
	T_OK(secret_new("short", "{}", s2, NULL) == SG_OK);
	T_OK(secret_new("short", "{\"ttl\":\"30s\"}", s3, NULL) == SG_OK);
	T_OK(secret_new("short", "{\"ttl\":\"2m\"}", s3, NULL) == SG_BAD_REQUEST);
	T_OK(login(P, rid, s1, HERE, NULL) == SG_OK);
	sg_clock_advance(61);
	T_OK(login(P, rid, s1, HERE, NULL) == SG_BAD_REQUEST);
	T_CHECK(strstr(g_last_detail, "expired") != NULL, "%s", g_last_detail);
	T_OK(role_get(P, "short", &r) == 1);
	memset(&look, 0, sizeof(look));
	sg_err_init(&err);
	T_OK(auth_approle_secret_lookup(g_st, P, &r, s2, &look, &err) == 0); /* expired reads as absent */
	/* Tidy removes the expired s2 and s3 (s1 went at its failed login). */
	T_OK(auth_approle_secret_list(g_st, P, "short", &l, &err) == 0 && l.n == 2);
	T_OK(auth_approle_tidy(g_st, P, &n, &err) == 0);
	T_CHECK(n == 2, "tidied %llu", (unsigned long long)n);
	T_OK(auth_approle_secret_list(g_st, P, "short", &l, &err) == 0 && l.n == 0);
	sg_strlist_clear(&l);
	auth_approle_role_clear(&r);
	free(rid);
}

static void test_delete_and_storage(void)
{
	char s1[AUTH_APPROLE_SECRET_MAX];
	struct auth_approle_role r;
	struct sg_strlist l = {0};
	struct sg_err err;
	char *rid;

	T_OK(role_put(P, "gone", "{}") == SG_OK);
	rid = role_id_of(P, "gone");
	T_OK(secret_new("gone", "{}", s1, NULL) == SG_OK);

	sg_err_init(&err);
	T_OK(auth_approle_role_delete(g_st, P, "gone", &err) == 0);
	T_OK(role_get(P, "gone", &r) == 0);
	auth_approle_role_clear(&r);
	T_OK(login(P, rid, s1, HERE, NULL) == SG_BAD_REQUEST);
	T_OK(auth_approle_secret_list(g_st, P, "gone", &l, &err) == 0 && l.n == 0);
	/* Recreated with the same name: a new role id, the old secret id dead. */
	T_OK(role_put(P, "gone", "{}") == SG_OK);
	{
		char *rid2 = role_id_of(P, "gone");

		T_OK(rid2 != NULL && strcmp(rid, rid2) != 0);
		T_OK(login(P, rid2, s1, HERE, NULL) == SG_BAD_REQUEST);
		free(rid2);
	}
	T_OK(auth_approle_role_delete(g_st, P, "never-was", &err) == 0);
	sg_strlist_clear(&l);
	free(rid);
}

struct found {
	const char *needle;
	int hits;
};

static int find_cb(void *arg, const char *key, size_t klen, const void *val, size_t vlen)
{
	struct found *f = arg;
	size_t n = strlen(f->needle);

	if (klen >= n && memmem(key, klen, f->needle, n) != NULL)
		f->hits++;
	if (vlen >= n && memmem(val, vlen, f->needle, n) != NULL)
		f->hits++;
	return 0;
}

static void test_secret_not_stored(void)
{
	char s1[AUTH_APPROLE_SECRET_MAX];
	struct found f;
	struct sg_err err;
	char *rid;

	T_OK(role_put(P, "hidden", "{}") == SG_OK);
	rid = role_id_of(P, "hidden");
	T_OK(secret_new("hidden", "{}", s1, NULL) == SG_OK);
	sg_err_init(&err);
	f.needle = s1;
	f.hits = 0;
	T_OK(store_scan(g_st, STORE_AUTH, NULL, NULL, 0, find_cb, &f, &err) >= 0);
	T_CHECK(f.hits == 0, "secret id found %d times in the store", f.hits);
	/* The role id is stored in the role (a read returns it) but its index key is a digest. */
	{
		char key[256];

		snprintf(key, sizeof(key), P "roleid/%s", rid);
		T_OK(store_get(g_st, STORE_AUTH, key, strlen(key), NULL, NULL, &err) == 0);
	}
	free(rid);
}

/* Eight threads race for a one-use secret id: exactly one logs in. */
struct race {
	const char *rid, *sid;
	int ok;
};

static void *race_main(void *arg)
{
	struct race *ra = arg;

	ra->ok = login(P, ra->rid, ra->sid, HERE, NULL) == SG_OK;
	return NULL;
}

static void test_one_use_race(void)
{
	char s1[AUTH_APPROLE_SECRET_MAX];
	struct race ra[8];
	pthread_t th[8];
	int wins = 0;
	char *rid;

	T_OK(role_put(P, "once", "{\"secret_id_num_uses\":1}") == SG_OK);
	rid = role_id_of(P, "once");
	T_OK(secret_new("once", "{}", s1, NULL) == SG_OK);
	for (int i = 0; i < 8; i++) {
		ra[i].rid = rid;
		ra[i].sid = s1;
		ra[i].ok = 0;
		pthread_create(&th[i], NULL, race_main, &ra[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		wins += ra[i].ok;
	}
	T_CHECK(wins == 1, "%d logins with a one-use secret id", wins);
	free(rid);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int main(void)
{
	char tmpl[] = "/tmp/sigil-test-approle-XXXXXX";
	struct sg_err err;

	sg_err_init(&err);
	test_tokenfields();
	test_cidrs();
	if (mkdtemp(tmpl) == NULL || store_open(tmpl, 0, &g_st, &err) != 0) {
		fprintf(stderr, "cannot open a store: %s\n", err.detail);
		return 1;
	}
	test_roles();
	test_secrets_and_login();
	test_expiry_and_tidy();
	test_delete_and_storage();
	test_secret_not_stored();
	test_one_use_race();
	store_close(g_st);
	nftw(tmpl, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return t_done();
}
