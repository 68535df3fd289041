#include "server/router.h"

#include <string.h>

struct seg {
	const char *p;
	size_t n;
};

/* Splits s on '/'. "" has no segments. Returns the count, or -1 past cap. */
static long split(const char *s, struct seg *out, size_t cap)
{
	size_t n = 0;
	const char *p = s;

	if (*s == '\0')
		return 0;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t len = slash != NULL ? (size_t)(slash - p) : strlen(p);

		if (n == cap)
			return -1;
		out[n].p = p;
		out[n].n = len;
		n++;
		if (slash == NULL)
			break;
		p = slash + 1;
	}
	return (long)n;
}

static bool seg_is(const struct seg *s, const char *lit, size_t len)
{
	return s->n == len && memcmp(s->p, lit, len) == 0;
}

/* Records capture `name` (pattern segment without its sigil) = bytes [v, v+vn). */
static void cap_add(struct router_caps *caps, size_t *used, const struct seg *name, const char *v, size_t vn)
{
	if (caps == NULL)
		return;
	if (caps->n >= MAX_CAPTURES || name->n - 1 >= ROUTER_MAX_CAP_NAME)
		sg_die("route pattern has too many or too long captures");
	memcpy(caps->name[caps->n], name->p + 1, name->n - 1);
	caps->name[caps->n][name->n - 1] = '\0';
	/* Fits: the path is shorter than MAX_PATH_BYTES and each value adds one NUL. */
	memcpy(caps->buf + *used, v, vn);
	caps->buf[*used + vn] = '\0';
	caps->val[caps->n] = caps->buf + *used;
	*used += vn + 1;
	caps->n++;
}

static bool seg_match(const struct seg *pat, const struct seg *val, struct router_caps *caps, size_t *used)
{
	if (pat->n > 0 && pat->p[0] == ':') {
		cap_add(caps, used, pat, val->p, val->n);
		return true;
	}
	return pat->n == val->n && memcmp(pat->p, val->p, val->n) == 0;
}

int router_pattern_match(const char *pattern, const char *path, struct router_caps *caps)
{
	struct seg ps[ROUTER_MAX_SEGMENTS], vs[ROUTER_MAX_SEGMENTS];
	long np, nv;
	long star = -1;
	bool raw = false;
	size_t used = 0;

	if (caps != NULL)
		caps->n = 0;
	if (strlen(path) >= MAX_PATH_BYTES)
		return 0;
	np = split(pattern, ps, ROUTER_MAX_SEGMENTS);
	nv = split(path, vs, ROUTER_MAX_SEGMENTS);
	if (np < 0)
		sg_die("route pattern '%s' has too many segments", pattern);
	if (nv < 0)
		return 0;
	for (long i = 0; i < np; i++) {
		if (ps[i].n > 0 && ps[i].p[0] == '*') {
			if (star >= 0)
				sg_die("route pattern '%s' has two '*' segments", pattern);
			star = i;
			raw = ps[i].n > 1 && ps[i].p[1] == '*';
			if (raw && i != np - 1)
				sg_die("route pattern '%s': a '**' capture must end it", pattern);
		}
	}
	/*
	 * Empty segments never match, except inside a "**" capture: there the
	 * bytes are data, and RFC 6960 A.1's base64 of an OCSP request holds
	 * "//" as often as not. (A path never ends with '/': normalized.)
	 */
	for (long i = 0; i < nv; i++)
		if (vs[i].n == 0 && !(raw && i > star && i != nv - 1))
			return 0;
	if (star < 0) {
		if (nv != np)
			return 0;
		for (long i = 0; i < np; i++)
			if (!seg_match(&ps[i], &vs[i], caps, &used))
				goto nomatch;
		return 1;
	}
	{
		long pre = star, suf = np - star - 1;
		const char *start, *end;

		if (nv < pre + suf + 1)
			return 0;
		/* Literal suffix first: it decides the match; captures keep pattern order below. */
		for (long i = 0; i < suf; i++) {
			const struct seg *p = &ps[star + 1 + i], *v = &vs[nv - suf + i];

			if (!(p->n > 0 && p->p[0] == ':') && !seg_is(v, p->p, p->n))
				return 0;
		}
		for (long i = 0; i < pre; i++)
			if (!seg_match(&ps[i], &vs[i], caps, &used))
				goto nomatch;
		struct seg name = ps[star];

		if (raw) {
			name.p++; /* cap_add drops one sigil: "**req" is named "req" */
			name.n--;
		}
		start = vs[pre].p;
		end = vs[nv - suf - 1].p + vs[nv - suf - 1].n;
		cap_add(caps, &used, &name, start, (size_t)(end - start));
		for (long i = 0; i < suf; i++)
			if (!seg_match(&ps[star + 1 + i], &vs[nv - suf + i], caps, &used))
				goto nomatch;
		return 1;
	}
nomatch:
	if (caps != NULL)
		caps->n = 0;
	return 0;
}

/*
 * A pattern whose first segment is literal and differs from the path's
 * cannot match: skipped without splitting either (a PKI table has ~100
 * patterns and every request scans it).
 */
static bool first_segment_differs(const char *pattern, const char *path, size_t seg)
{
	if (pattern[0] == ':' || pattern[0] == '*')
		return false;
	return strncmp(pattern, path, seg) != 0 || (pattern[seg] != '/' && pattern[seg] != '\0');
}

enum router_result router_lookup(const struct route *table, size_t n, const char *path, unsigned method,
                                 const struct route **out, struct router_caps *caps)
{
	bool path_known = false;
	size_t seg = strcspn(path, "/");

	*out = NULL;
	for (size_t i = 0; i < n && table[i].pattern != NULL; i++) {
		if (first_segment_differs(table[i].pattern, path, seg) ||
		    !router_pattern_match(table[i].pattern, path, caps))
			continue;
		if (table[i].methods & method) {
			*out = &table[i];
			return ROUTER_FOUND;
		}
		path_known = true;
	}
	if (caps != NULL)
		caps->n = 0;
	return path_known ? ROUTER_BAD_METHOD : ROUTER_NOT_FOUND;
}

/* Go's strconv.ParseBool, which Vault uses for ?list=. */
static int parse_go_bool(const char *s, bool *out)
{
	static const char *const t[] = {"1", "t", "T", "TRUE", "true", "True"};
	static const char *const f[] = {"0", "f", "F", "FALSE", "false", "False"};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (strcmp(s, t[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcmp(s, f[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

int router_method_parse(const char *verb, const char *list_arg, unsigned *method, bool *head, struct sg_err *err)
{
	bool list = false;

	*head = false;
	if (strcmp(verb, "GET") == 0 || strcmp(verb, "HEAD") == 0) {
		*head = verb[0] == 'H';
		if (list_arg != NULL && *list_arg != '\0' && parse_go_bool(list_arg, &list) != 0)
			return sg_err_set(err, SG_BAD_REQUEST, "list must be a bool");
		*method = list && !*head ? HTTP_LIST : HTTP_GET;
	} else if (strcmp(verb, "POST") == 0 || strcmp(verb, "PUT") == 0) {
		*method = HTTP_POST;
	} else if (strcmp(verb, "DELETE") == 0) {
		*method = HTTP_DELETE;
	} else if (strcmp(verb, "PATCH") == 0) {
		*method = HTTP_PATCH;
	} else if (strcmp(verb, "LIST") == 0) {
		*method = HTTP_LIST;
	} else {
		return sg_err_set(err, SG_METHOD_NOT_ALLOWED, "unsupported operation");
	}
	return 0;
}

int router_path_normalize(const char *url, char *out, size_t cap)
{
	size_t len;

	if (url == NULL || strncmp(url, "/v1/", 4) != 0)
		return -1;
	url += 4;
	len = strlen(url);
	while (len > 0 && url[len - 1] == '/')
		len--;
	if (len >= cap)
		return -1;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)url[i] < 0x20 || url[i] == 0x7f)
			return -1;
	memcpy(out, url, len);
	out[len] = '\0';
	return 0;
}

static bool area_is(const char *path, const char *name, const char **sub)
{
	size_t n = strlen(name);

	if (strncmp(path, name, n) != 0 || (path[n] != '\0' && path[n] != '/'))
		return false;
	*sub = path[n] == '/' ? path + n + 1 : path + n;
	return true;
}

enum router_area router_area(const char *path, const char **sub)
{
	if (area_is(path, "sys", sub))
		return ROUTER_AREA_SYS;
	if (area_is(path, "auth", sub))
		return ROUTER_AREA_AUTH;
	*sub = path;
	return ROUTER_AREA_MOUNT;
}

size_t router_mount_prefix(const char *mount_path, const char *path, const char **sub)
{
	size_t n = strlen(mount_path);

	if (n == 0 || strncmp(path, mount_path, n) != 0)
		return 0;
	if (path[n] == '\0') {
		*sub = path + n;
		return n;
	}
	if (path[n] == '/') {
		*sub = path + n + 1;
		return n;
	}
	return 0;
}
