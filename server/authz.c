/*
 * The router's authorization step (DESIGN.md rule 5): after a request is
 * authenticated and before any handler runs, the caller's token policies
 * (auth/acl.h) must grant the capability the request needs on its path.
 * Also `sigil routes`, which prints every route table with the
 * authorization each route needs, for the policy-matrix test.
 */
#include "server/authz.h"

#include <stdlib.h>
#include <string.h>

#include "auth/token.h"
#include "server/auth_mounts.h"
#include "server/internal.h"
#include "server/router.h"

enum auth_acl_op authz_op_of_method(unsigned method)
{
	if (method & HTTP_LIST)
		return AUTH_ACL_OP_LIST;
	if (method & HTTP_DELETE)
		return AUTH_ACL_OP_DELETE;
	if (method & HTTP_PATCH)
		return AUTH_ACL_OP_PATCH;
	if (method & HTTP_POST)
		return AUTH_ACL_OP_UPDATE;
	return AUTH_ACL_OP_READ;
}

/*
 * Vault's existence check: does the object a POST names exist? It is what
 * the path's read says: the GET route of the same table at the same path
 * runs (it only reads) and its success means "exists". 1 exists, 0 absent,
 * -1 when the read itself failed on the server's side.
 */
static int object_exists(struct req *rq, const struct route *table, size_t ntable, struct sg_err *err)
{
	const struct route *get = NULL;
	struct router_caps caps;
	struct resp probe;
	struct sg_err perr;
	struct req q;
	json_t *empty_body = NULL, *empty_query = NULL;
	int rc;

	if (router_lookup(table, ntable, rq->sub != NULL ? rq->sub : "", HTTP_GET, &get, &caps) != ROUTER_FOUND)
		return 0;
	q = *rq;
	q.method = HTTP_GET;
	q.head = false;
	empty_body = json_object();
	empty_query = json_object();
	q.body = empty_body;
	q.query = empty_query;
	q.raw = (const unsigned char *)"";
	q.raw_len = 0;
	for (size_t i = 0; i < MAX_CAPTURES; i++) {
		q.cap_name[i] = i < caps.n ? caps.name[i] : NULL;
		q.cap_val[i] = i < caps.n ? caps.val[i] : NULL;
	}
	memset(&probe, 0, sizeof(probe));
	sg_err_init(&perr);
	rc = get->fn(&q, &probe, &perr);
	resp_clear(&probe);
	json_decref(empty_body);
	json_decref(empty_query);
	if (rc == 0)
		return 1;
	if (sg_err_isset(&perr) && sg_err_http_status(perr.code) >= 500) {
		*err = perr;
		return -1;
	}
	return 0;
}

int authz_request(struct req *rq, const struct route *table, size_t ntable, const struct route *route,
                  unsigned method, struct sg_err *err)
{
	struct auth_acl_decision d;
	enum auth_acl_op op = authz_op_of_method(method);
	const json_t *params = op == AUTH_ACL_OP_READ ? rq->query : rq->body;
	char *path;

	rq->sudo = false;
	if (rq->tok == NULL)
		return sg_err_set(err, SG_PERMISSION_DENIED, "permission denied");
	if (auth_token_is_root(rq->tok)) {
		rq->sudo = true;
		return 0;
	}
	if (op == AUTH_ACL_OP_UPDATE && route != NULL && (route->methods & ROUTE_EXISTENCE)) {
		int ex = object_exists(rq, table, ntable, err);

		if (ex < 0)
			return -1;
		if (ex == 0)
			op = AUTH_ACL_OP_CREATE;
	}
	/* Vault's LIST paths end in '/': "pki/roles/", so a "pki/roles/" prefix rule grants LIST pki/roles. */
	path = sg_xasprintf("%s%s", rq->path, op == AUTH_ACL_OP_LIST ? "/" : "");
	auth_acl_store_check(rq->srv->acl, &rq->tok->policies, path, op, params, &d);
	free(path);
	if (!d.allowed || (route != NULL && route->sudo && !d.sudo))
		return sg_err_set(err, SG_PERMISSION_DENIED, "permission denied");
	rq->sudo = d.sudo;
	return 0;
}

/* ---- `sigil routes`: every route with what authorization it needs ---- */

static json_t *routes_json(const struct route *table, size_t n)
{
	static const struct {
		unsigned bit;
		const char *name;
	} methods[] = {{HTTP_GET, "GET"}, {HTTP_POST, "POST"}, {HTTP_DELETE, "DELETE"}, {HTTP_LIST, "LIST"},
	               {HTTP_PATCH, "PATCH"}};
	json_t *a = json_array();

	for (size_t i = 0; i < n && table[i].pattern != NULL; i++) {
		json_t *m = json_array();

		for (size_t k = 0; k < sizeof(methods) / sizeof(methods[0]); k++)
			if (table[i].methods & methods[k].bit)
				json_array_append_new(m, json_string(methods[k].name));
		json_array_append_new(a, json_pack("{s:s, s:o, s:s, s:b, s:b}", "pattern", table[i].pattern, "methods", m,
		                                   "auth", table[i].auth == ROUTE_AUTH_NONE ? "none" : "token", "sudo",
		                                   table[i].sudo, "existence", (table[i].methods & ROUTE_EXISTENCE) != 0));
	}
	return a;
}

int authz_routes_print(FILE *f)
{
	/* Auth method types this build may serve; auth_method_routes knows which it has. */
	static const char *const auth_types[] = {"token", "approle", "kubernetes", "jwt", "oidc", "cert"};
	json_t *out = json_object(), *auth = json_object();
	char *s;

	/* Where each table's patterns live in the URL space, for whoever walks them. */
	json_object_set_new(out, "sys", json_pack("{s:s, s:o}", "prefix", "sys/", "routes",
	                                          routes_json(sys_routes, sys_routes_n)));
	json_object_set_new(out, "pki", json_pack("{s:s, s:o}", "prefix", "<mount>/", "routes",
	                                          routes_json(pki_routes, pki_routes_n)));
	for (size_t i = 0; i < sizeof(auth_types) / sizeof(auth_types[0]); i++) {
		size_t n = 0;
		const struct route *t = auth_method_routes(auth_types[i], &n);

		if (t != NULL)
			json_object_set_new(auth, auth_types[i], routes_json(t, n));
	}
	json_object_set_new(out, "auth", json_pack("{s:s, s:o}", "prefix", "auth/<mount>/", "types", auth));
	s = json_dumps(out, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
	json_decref(out);
	if (s == NULL)
		return 1;
	fprintf(f, "%s\n", s);
	free(s);
	return ferror(f) ? 1 : 0;
}
