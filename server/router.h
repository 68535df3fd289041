#ifndef SG_SERVER_ROUTER_H
#define SG_SERVER_ROUTER_H

/*
 * Pure routing functions: URL normalisation, the area split (sys/, auth/,
 * mounts), route pattern matching and method parsing. No I/O, no locks:
 * fuzzed by tests/fuzz/fuzz_route.c.
 */

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "server/http.h"

#define ROUTER_MAX_SEGMENTS 128  /* a deeper path never matches */
#define ROUTER_MAX_CAP_NAME 32

/* Captures of one match: names and values are NUL-terminated copies. */
struct router_caps {
	size_t n;
	char name[MAX_CAPTURES][ROUTER_MAX_CAP_NAME];
	const char *val[MAX_CAPTURES];      /* point into buf */
	char buf[MAX_PATH_BYTES + MAX_CAPTURES + 1];
};

/*
 * Matches a route pattern (see struct route) against a path without a
 * leading or trailing '/'. Empty path segments never match. Returns 1 on a
 * match (caps filled when non-NULL), 0 otherwise. A pattern with more than
 * MAX_CAPTURES captures or two '*' segments is a programming error and aborts.
 */
int router_pattern_match(const char *pattern, const char *path, struct router_caps *caps);

enum router_result {
	ROUTER_FOUND,
	ROUTER_NOT_FOUND,   /* 404 */
	ROUTER_BAD_METHOD,  /* 405: the path exists with other methods */
};

/*
 * The first route of table[0..n) whose pattern matches path and whose
 * method mask has `method` (one enum http_method bit).
 */
enum router_result router_lookup(const struct route *table, size_t n, const char *path, unsigned method,
                                 const struct route **out, struct router_caps *caps);

/*
 * HTTP verb (and the "list" query argument, may be NULL) to one enum
 * http_method bit. HEAD is GET with *head set; GET ?list=true is LIST.
 * SG_METHOD_NOT_ALLOWED for other verbs, SG_BAD_REQUEST for a list value
 * that is not a boolean.
 */
int router_method_parse(const char *verb, const char *list_arg, unsigned *method, bool *head,
                        struct sg_err *err) SG_WUR;

/*
 * "/v1/pki/issue/web/" -> "pki/issue/web" into out (cap bytes): the "/v1/"
 * prefix removed, trailing slashes removed (Vault adds one to LIST paths).
 * -1 when the URL lacks the prefix, holds a NUL or control byte, or does
 * not fit.
 */
int router_path_normalize(const char *url, char *out, size_t cap);

enum router_area {
	ROUTER_AREA_SYS,    /* "sys" or "sys/..." */
	ROUTER_AREA_AUTH,   /* "auth" or "auth/..." */
	ROUTER_AREA_MOUNT,  /* anything else: a secrets engine mount */
};
/* Which table a normalized path goes to; *sub is the rest after "sys/" or "auth/" ("" when none). */
enum router_area router_area(const char *path, const char **sub);

/*
 * When path is mount_path itself or lies below it ("pki" or "pki/..."),
 * returns strlen(mount_path) and sets *sub to the path inside the mount;
 * else returns 0. The router picks the mount with the longest such prefix.
 */
size_t router_mount_prefix(const char *mount_path, const char *path, const char **sub);

#endif
