/*
 * libFuzzer target for request routing: method parsing, URL normalisation,
 * the area split, mount prefix selection and route pattern matching, plus
 * the JSON body parser (depth pre-scan, object check).
 * Input: byte 0 picks the method and mode, the rest is the URL (or body).
 * Seed corpus: tests/fuzz/corpus/route/.
 *   clang -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -I. -DOPENSSL_API_COMPAT=30000 \
 *     -DOPENSSL_NO_DEPRECATED $(pkg-config --cflags jansson openssl) \
 *     tests/fuzz/fuzz_route.c server/router.c server/json.c common/err.c common/util.c \
 *     $(pkg-config --libs jansson openssl) -o fuzz_route
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/http.h"
#include "server/json.h"
#include "server/router.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int h_none(struct req *rq, struct resp *rs, struct sg_err *err)
{
	(void)rq;
	(void)rs;
	(void)err;
	return 0;
}

/* The shapes of the real tables: literals, ":name", "*name" with and without a suffix. */
static const struct route table[] = {
	{"health", HTTP_GET, h_none, ROUTE_AUTH_NONE, false},
	{"mounts", HTTP_GET, h_none, ROUTE_AUTH_TOKEN, false},
	{"mounts/*path/tune", HTTP_GET | HTTP_POST, h_none, ROUTE_AUTH_TOKEN, false},
	{"mounts/*path", HTTP_GET | HTTP_POST | HTTP_DELETE, h_none, ROUTE_AUTH_TOKEN, false},
	{"internal/ui/mounts/*path", HTTP_GET, h_none, ROUTE_AUTH_NONE, false},
	{"ca", HTTP_GET, h_none, ROUTE_AUTH_NONE, false},
	{"roles", HTTP_LIST, h_none, ROUTE_AUTH_TOKEN, false},
	{"roles/:name", HTTP_GET | HTTP_POST | HTTP_PATCH | HTTP_DELETE, h_none, ROUTE_AUTH_TOKEN, false},
	{"issuer/:ref/issue/:role", HTTP_POST, h_none, ROUTE_AUTH_TOKEN, false},
	{"issuer/:ref/sign-verbatim/:role", HTTP_POST, h_none, ROUTE_AUTH_TOKEN, false},
	{"cert/:serial/raw/pem", HTTP_GET, h_none, ROUTE_AUTH_NONE, false},
	{"acme/*rest/:last", HTTP_POST, h_none, ROUTE_AUTH_NONE, false},
};
static const char *const verbs[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "LIST", "OPTIONS"};
static const char *const mounts[] = {"pki", "pki_int", "a/b", "a/b/c", "sys"};

static void check_caps(const struct router_caps *caps, const char *path)
{
	size_t plen = strlen(path);

	if (caps->n > MAX_CAPTURES)
		abort();
	for (size_t i = 0; i < caps->n; i++) {
		size_t vlen = strlen(caps->val[i]);

		/* A capture is a non-empty piece of the path, never crossing its ends. */
		if (vlen == 0 || vlen > plen || strstr(path, caps->val[i]) == NULL)
			abort();
		if (caps->val[i][0] == '/' || caps->val[i][vlen - 1] == '/')
			abort();
	}
}

static void route_one(unsigned sel, const char *url, const char *list_arg)
{
	char path[MAX_PATH_BYTES];
	struct router_caps caps;
	struct sg_err err;
	const struct route *r = NULL;
	const char *sub = NULL;
	unsigned method = 0;
	bool head = false;
	enum router_result res;

	sg_err_init(&err);
	if (router_method_parse(verbs[sel % 8], list_arg, &method, &head, &err) != 0)
		return;
	if (router_path_normalize(url, path, sizeof(path)) != 0)
		return;
	if (strlen(path) > 0 && path[strlen(path) - 1] == '/')
		abort();
	(void)router_area(path, &sub);
	for (size_t i = 0; i < sizeof(mounts) / sizeof(mounts[0]); i++) {
		const char *msub = NULL;
		size_t n = router_mount_prefix(mounts[i], path, &msub);

		if (n > 0 && (n != strlen(mounts[i]) || msub < path || msub > path + strlen(path)))
			abort();
	}
	res = router_lookup(table, sizeof(table) / sizeof(table[0]), sub, method, &r, &caps);
	if (res == ROUTER_FOUND) {
		if (r == NULL || !(r->methods & method))
			abort();
		check_caps(&caps, sub);
	} else if (r != NULL || caps.n != 0) {
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;
	unsigned sel;

	if (size < 1 || size > 3 * MAX_PATH_BYTES)
		return 0;
	sel = data[0];
	if (sel & 0x80) {
		json_t *j = NULL;
		struct sg_err err;

		sg_err_init(&err);
		if (server_json_parse_object((const char *)data + 1, size - 1, MAX_JSON_DEPTH, &j, &err) == 0) {
			if (!json_is_object(j))
				abort();
		} else if (err.code != SG_BAD_JSON || j != NULL) {
			abort();
		}
		json_decref(j);
		return 0;
	}
	s = malloc(size);
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	route_one(sel, s, (sel & 0x40) ? "true" : NULL);
	free(s);
	return 0;
}
