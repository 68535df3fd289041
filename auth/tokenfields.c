/* Vault's tokenutil fields of auth method roles, and the CIDR checks they share. */
#include "auth/tokenfields.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CIDR_TEXT_MAX 64

void auth_tokenfields_init(struct auth_tokenfields *f)
{
	memset(f, 0, sizeof(*f));
	snprintf(f->type, sizeof(f->type), "default");
}

void auth_tokenfields_clear(struct auth_tokenfields *f)
{
	if (f == NULL)
		return;
	sg_strlist_clear(&f->policies);
	sg_strlist_clear(&f->bound_cidrs);
	auth_tokenfields_init(f);
}

/* ---- Addresses ---- */

struct ipnet {
	int family;            /* AF_INET or AF_INET6 */
	unsigned char a[16];
	unsigned bits;
};

/* IPv4-mapped IPv6 (::ffff:a.b.c.d) is compared as IPv4, so a v4 CIDR binds a dual-stack listener's callers. */
static void ip_unmap(struct ipnet *n)
{
	static const unsigned char prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (n->family == AF_INET6 && memcmp(n->a, prefix, sizeof(prefix)) == 0) {
		memmove(n->a, n->a + 12, 4);
		memset(n->a + 4, 0, 12);
		n->family = AF_INET;
		n->bits = n->bits >= 96 ? n->bits - 96 : 0;
	}
}

static int ip_parse(const char *s, size_t len, struct ipnet *out)
{
	char buf[CIDR_TEXT_MAX];

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, buf, out->a) == 1) {
		out->family = AF_INET;
		out->bits = 32;
		return 0;
	}
	if (inet_pton(AF_INET6, buf, out->a) == 1) {
		out->family = AF_INET6;
		out->bits = 128;
		return 0;
	}
	return -1;
}

/* "10.0.0.0/8", "::1/128" or a bare address (a host route). */
static int cidr_parse(const char *s, struct ipnet *out)
{
	const char *slash = strchr(s, '/');
	size_t alen = slash != NULL ? (size_t)(slash - s) : strlen(s);

	if (ip_parse(s, alen, out) != 0)
		return -1;
	if (slash != NULL) {
		const char *d = slash + 1;
		char *end;
		unsigned long b;
		unsigned max = out->family == AF_INET ? 32 : 128;

		if (!isdigit((unsigned char)*d) || strlen(d) > 3)
			return -1;
		errno = 0;
		b = strtoul(d, &end, 10);
		if (errno != 0 || *end != '\0' || b > max)
			return -1;
		out->bits = (unsigned)b;
	}
	ip_unmap(out);
	return 0;
}

/* remote_addr forms: "1.2.3.4", "1.2.3.4:port", "::1", "[::1]:port". */
static int addr_parse(const char *addr, struct ipnet *out)
{
	const char *colon;

	if (addr == NULL)
		return -1;
	if (addr[0] == '[') {
		const char *close = strchr(addr, ']');

		if (close == NULL || ip_parse(addr + 1, (size_t)(close - addr - 1), out) != 0)
			return -1;
	} else if ((colon = strchr(addr, ':')) != NULL && strchr(colon + 1, ':') == NULL) {
		if (ip_parse(addr, (size_t)(colon - addr), out) != 0)
			return -1;
	} else if (ip_parse(addr, strlen(addr), out) != 0) {
		return -1;
	}
	ip_unmap(out);
	return 0;
}

static bool net_contains(const struct ipnet *net, const struct ipnet *ip)
{
	unsigned full = net->bits / 8, rest = net->bits % 8;

	if (net->family != ip->family)
		return false;
	if (memcmp(net->a, ip->a, full) != 0)
		return false;
	if (rest != 0) {
		unsigned char mask = (unsigned char)(0xff << (8 - rest));

		if ((net->a[full] & mask) != (ip->a[full] & mask))
			return false;
	}
	return true;
}

bool auth_cidr_allowed(const struct sg_strlist *cidrs, const char *addr)
{
	struct ipnet ip;

	if (cidrs == NULL || cidrs->n == 0)
		return true;
	if (addr_parse(addr, &ip) != 0)
		return false;
	for (size_t i = 0; i < cidrs->n; i++) {
		struct ipnet net;

		if (cidr_parse(cidrs->v[i], &net) == 0 && net_contains(&net, &ip))
			return true;
	}
	return false;
}

bool auth_cidr_within(const char *inner, const struct sg_strlist *outer)
{
	struct ipnet in;

	if (outer == NULL || outer->n == 0)
		return true;
	if (cidr_parse(inner, &in) != 0)
		return false;
	for (size_t i = 0; i < outer->n; i++) {
		struct ipnet net;

		if (cidr_parse(outer->v[i], &net) == 0 && net.bits <= in.bits && net_contains(&net, &in))
			return true;
	}
	return false;
}

int auth_cidrs_check(const struct sg_strlist *cidrs, const char *field, struct sg_err *err)
{
	if (cidrs->n > AUTH_MAX_CIDRS)
		return sg_err_set(err, SG_BAD_REQUEST, "field '%s' has more than %d entries", field, AUTH_MAX_CIDRS);
	for (size_t i = 0; i < cidrs->n; i++) {
		struct ipnet net;

		if (cidr_parse(cidrs->v[i], &net) != 0)
			return sg_err_set(err, SG_BAD_REQUEST, "invalid CIDR block in '%s': \"%.*s\"", field, CIDR_TEXT_MAX,
			                  cidrs->v[i]);
	}
	return 0;
}

/* ---- Policies ---- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int auth_policies_sanitize(struct sg_strlist *l, const char *field, struct sg_err *err)
{
	struct sg_err e;

	/* One rule set for names everywhere: the token store's (characters, length, "root" alone). */
	sg_err_init(&e);
	if (l->n > AUTH_MAX_POLICIES)
		return sg_err_set(err, SG_BAD_REQUEST, "field '%s' has more than %d policies", field, AUTH_MAX_POLICIES);
	if (auth_token_policies_sanitize(l, false, &e) != 0)
		return sg_err_set(err, e.code, "field '%s': %s", field, e.detail);
	return 0;
}

/* ---- Fields ---- */

static int ttl_field(const json_t *body, const char *key, int64_t *out, struct sg_err *err)
{
	int64_t v = 0;
	int rc = sg_json_duration(body, key, &v, err);

	if (rc <= 0)
		return rc;
	if (v > AUTH_TOKENFIELDS_TTL_MAX)
		return sg_err_set(err, SG_BAD_REQUEST, "field '%s' is too large", key);
	*out = v;
	return 1;
}

int auth_tokenfields_apply(struct auth_tokenfields *f, const json_t *body, struct sg_err *err)
{
	const char *type = NULL;
	int64_t n = 0;
	int rc;

	if (ttl_field(body, "token_ttl", &f->ttl, err) < 0 || ttl_field(body, "token_max_ttl", &f->max_ttl, err) < 0 ||
	    ttl_field(body, "token_explicit_max_ttl", &f->explicit_max_ttl, err) < 0)
		return -1;
	/* The deprecated names apply only when the new one is absent (Vault's tokenutil). */
	if ((rc = ttl_field(body, "token_period", &f->period, err)) < 0)
		return -1;
	if (rc == 0 && ttl_field(body, "period", &f->period, err) < 0)
		return -1;
	if ((rc = sg_json_list(body, "token_policies", &f->policies, err)) < 0)
		return -1;
	if (rc == 0 && (rc = sg_json_list(body, "policies", &f->policies, err)) < 0)
		return -1;
	if (auth_policies_sanitize(&f->policies, "token_policies", err) != 0)
		return -1;
	if (sg_json_list(body, "token_bound_cidrs", &f->bound_cidrs, err) < 0 ||
	    auth_cidrs_check(&f->bound_cidrs, "token_bound_cidrs", err) != 0)
		return -1;
	if (sg_json_bool(body, "token_no_default_policy", &f->no_default_policy, err) < 0)
		return -1;
	if ((rc = sg_json_int(body, "token_num_uses", &n, err)) < 0)
		return -1;
	if (rc == 1) {
		if (n < 0)
			return sg_err_set(err, SG_BAD_REQUEST, "'token_num_uses' cannot be negative");
		f->num_uses = n;
	}
	if ((rc = sg_json_str(body, "token_type", &type, err)) < 0)
		return -1;
	if (rc == 1) {
		if (*type == '\0' || strcmp(type, "default") == 0 || strcmp(type, "default-service") == 0)
			snprintf(f->type, sizeof(f->type), "default");
		else if (strcmp(type, "service") == 0)
			snprintf(f->type, sizeof(f->type), "service");
		else if (strcmp(type, "batch") == 0 || strcmp(type, "default-batch") == 0)
			return sg_err_set(err, SG_BAD_REQUEST, "token_type \"%s\" is not supported: Sigil issues service tokens",
			                  type);
		else
			return sg_err_set(err, SG_BAD_REQUEST, "invalid 'token_type' value \"%.16s\"", type);
	}
	if (f->max_ttl != 0 && f->ttl > f->max_ttl)
		return sg_err_set(err, SG_BAD_REQUEST, "'token_ttl' cannot be greater than 'token_max_ttl'");
	return 0;
}

void auth_tokenfields_encode(const struct auth_tokenfields *f, json_t *obj)
{
	json_object_set_new(obj, "token_bound_cidrs", sg_strlist_to_json(&f->bound_cidrs));
	json_object_set_new(obj, "token_explicit_max_ttl", json_integer(f->explicit_max_ttl));
	json_object_set_new(obj, "token_max_ttl", json_integer(f->max_ttl));
	json_object_set_new(obj, "token_no_default_policy", json_boolean(f->no_default_policy));
	json_object_set_new(obj, "token_num_uses", json_integer(f->num_uses));
	json_object_set_new(obj, "token_period", json_integer(f->period));
	json_object_set_new(obj, "token_policies", sg_strlist_to_json(&f->policies));
	json_object_set_new(obj, "token_ttl", json_integer(f->ttl));
	json_object_set_new(obj, "token_type", json_string(f->type));
}

int auth_tokenfields_decode(struct auth_tokenfields *f, const json_t *obj, struct sg_err *err)
{
	struct sg_err e;

	sg_err_init(&e);
	auth_tokenfields_clear(f);
	if (!json_is_object(obj) || auth_tokenfields_apply(f, obj, &e) != 0)
		return sg_err_set(err, SG_STORAGE, "corrupt token fields in a stored role%s%s", e.detail[0] ? ": " : "",
		                  e.detail);
	return 0;
}

void auth_tokenfields_to_params(const struct auth_tokenfields *f, struct auth_token_params *p)
{
	sg_strlist_clear(&p->policies);
	sg_strlist_copy(&p->policies, &f->policies);
	if (!f->no_default_policy && !sg_strlist_has(&p->policies, "default")) {
		sg_strlist_add(&p->policies, "default");
		qsort(p->policies.v, p->policies.n, sizeof(*p->policies.v), cmp_str);
	}
	p->no_default_policy = f->no_default_policy;
	p->ttl = f->ttl;
	p->max_ttl = f->max_ttl;
	p->explicit_max_ttl = f->explicit_max_ttl;
	p->period = f->period;
	p->num_uses = f->num_uses;
	p->renewable = true;
	sg_strlist_clear(&p->bound_cidrs);
	sg_strlist_copy(&p->bound_cidrs, &f->bound_cidrs);
}
