/*
 * The check of a request's names against a role, following Vault's
 * ValidateNames / ValidateCommonName / ValidateOtherSANs / ValidateURISAN /
 * ValidateUserId / ValidateSerialNumber (builtin/logical/pki/issuing/
 * issue_common.go) and the order in which GenerateCreationBundle calls them.
 *
 * Deliberate differences from Vault, each safer:
 * - Globs: Vault's go-glob accepts "foo" for the pattern "foo*x" (it stops
 *   once the subject runs out); here '*' matches any run of characters and
 *   every literal part of the pattern must be present.
 * - Hostnames are ASCII only: Vault converts IDNs to A-labels before its
 *   hostname regex; a certificate's dNSName is IA5String (RFC 5280 4.2.1.6),
 *   so callers must send A-labels (xn--...).
 * - Case-insensitive comparisons fold ASCII only.
 * - Identity templates in allowed_domains / allowed_uri_sans are compared
 *   literally, as Vault does for a request without an entity.
 * - A requested other SAN's OID must be a valid dotted OID (Vault fails
 *   later, at certificate build time).
 */
#include "roles/role.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HOST_MAX 253 /* RFC 1035 2.3.4, without the trailing dot */
#define LABEL_MAX 63
#define OTHER_SAN_OID_MAX 256

void role_names_init(struct role_names *n)
{
	memset(n, 0, sizeof(*n));
}

void role_names_clear(struct role_names *n)
{
	if (n == NULL)
		return;
	free((char *)n->common_name);
	free((char *)n->subject_serial);
	sg_strlist_clear(&n->dns);
	sg_strlist_clear(&n->emails);
	sg_strlist_clear(&n->ips);
	sg_strlist_clear(&n->uris);
	sg_strlist_clear(&n->other_sans);
	sg_strlist_clear(&n->user_ids);
	memset(n, 0, sizeof(*n));
}

/* ---------------- Globs ---------------- */

static bool seg_eq(const char *a, const char *b, size_t n, bool fold)
{
	return fold ? strncasecmp(a, b, n) == 0 : memcmp(a, b, n) == 0;
}

/* Leftmost occurrence of seg (n bytes) inside [s, end). */
static const char *seg_find(const char *s, const char *end, const char *seg, size_t n, bool fold)
{
	for (; (size_t)(end - s) >= n; s++)
		if (seg_eq(s, seg, n, fold))
			return s;
	return NULL;
}

/*
 * '*' matches any run of characters, dots included; nothing else is special.
 * The text before the first '*' must be a prefix, the text after the last a
 * suffix, and the parts in between must appear in order between the two
 * (taking each leftmost occurrence is optimal, so no backtracking).
 */
static bool glob_match(const char *pat, const char *s, bool fold)
{
	const char *first = strchr(pat, '*'), *last, *end;
	size_t plen, slen, n;

	if (first == NULL)
		return fold ? strcasecmp(pat, s) == 0 : strcmp(pat, s) == 0;
	last = strrchr(pat, '*');
	n = strlen(s);
	plen = (size_t)(first - pat);
	slen = strlen(last + 1);
	if (n < plen + slen || !seg_eq(s, pat, plen, fold) || !seg_eq(s + n - slen, last + 1, slen, fold))
		return false;
	end = s + n - slen;
	s += plen;
	for (const char *p = first + 1; p <= last;) {
		const char *q = strchr(p, '*'); /* q <= last */
		size_t sl = (size_t)(q - p);

		if (sl > 0) {
			const char *f = seg_find(s, end, p, sl, fold);

			if (f == NULL)
				return false;
			s = f + sl;
		}
		p = q + 1;
	}
	return true;
}

/* ---------------- Hostnames ---------------- */

static bool ascii_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* RFC 1123 2.1 label: letters, digits, hyphens; alphanumeric at both ends. */
static bool ldh_label(const char *p, size_t n)
{
	if (n == 0 || !ascii_alnum(p[0]) || !ascii_alnum(p[n - 1]))
		return false;
	for (size_t i = 1; i + 1 < n; i++)
		if (!ascii_alnum(p[i]) && p[i] != '-')
			return false;
	return true;
}

/* RFC 6125 6.4.3 left-most wildcard label: "*", "*x", "x*" or "x*y", one '*' only. */
static bool wild_label(const char *p, size_t n)
{
	const char *star = memchr(p, '*', n);
	size_t a, b;

	if (star == NULL)
		return false;
	a = (size_t)(star - p);
	b = n - a - 1;
	if (memchr(star + 1, '*', b) != NULL)
		return false;
	return (a == 0 || ldh_label(p, a)) && (b == 0 || ldh_label(star + 1, b));
}

/* Vault's wildHostnameRegex: ^(wild\.)?(label\.)*label\.?$ */
static bool wild_hostname_match(const char *s)
{
	size_t n = strlen(s);
	const char *p = s, *end;
	bool first = true;

	if (n > 0 && s[n - 1] == '.')
		n--;
	if (n == 0)
		return false;
	end = s + n;
	for (;;) {
		const char *dot = memchr(p, '.', (size_t)(end - p));
		size_t ln = (size_t)((dot != NULL ? dot : end) - p);

		if (first && memchr(p, '*', ln) != NULL) {
			/* A wildcard label needs a hostname after it. */
			if (dot == NULL || !wild_label(p, ln))
				return false;
		} else if (!ldh_label(p, ln)) {
			return false;
		}
		first = false;
		if (dot == NULL)
			return true;
		p = dot + 1;
	}
}

/* The length rules of IDNA ToASCII with VerifyDNSLength: labels 1-63, name at most 253, one trailing dot allowed. */
static bool dns_lengths_ok(const char *s)
{
	size_t n = strlen(s), run = 0;

	if (n > 0 && s[n - 1] == '.')
		n--;
	if (n == 0 || n > HOST_MAX)
		return false;
	for (size_t i = 0; i <= n; i++) {
		if (i == n || s[i] == '.') {
			if (run == 0 || run > LABEL_MAX)
				return false;
			run = 0;
		} else {
			run++;
		}
	}
	return true;
}

bool role_hostname_valid(const char *s)
{
	return s != NULL && dns_lengths_ok(s) && wild_hostname_match(s);
}

/* ---------------- Vault's ValidateNames, one name ---------------- */

static bool has_dot_suffix(const char *s, const char *d)
{
	size_t n = strlen(s), m = strlen(d);

	return n > m && s[n - m - 1] == '.' && memcmp(s + n - m, d, m) == 0;
}

static const char *const why_email = "an email address must hold exactly one '@'";
static const char *const why_wild_off = "wildcard names are not allowed (allow_wildcard_certificates is false)";
static const char *const why_wild_form =
	"a wildcard name may hold one '*' only, in its left-most label (RFC 6125 6.4.3)";
static const char *const why_email_wild = "an email address cannot use a wildcard domain";
static const char *const why_hostname = "not a valid hostname (enforce_hostnames is true)";
static const char *const why_no_domains = "allowed_domains is empty and allow_any_name is false";
static const char *const why_no_match =
	"no match in allowed_domains under allow_bare_domains, allow_subdomains and allow_glob_domains";

/*
 * NULL when the role allows name (a CN, DNS SAN or email SAN), else the
 * reason. Order and precedence are Vault's: email split, wildcard rules
 * (allow_wildcard_certificates beats allow_any_name), enforce_hostnames
 * (also beats allow_any_name), allow_any_name, localhost, allowed_domains.
 */
static const char *name_denied(const struct role *r, const char *name)
{
	const char *at = strchr(name, '@');
	const char *domain = at != NULL ? at + 1 : name; /* Vault's emailDomain */
	const char *reduced = domain;                    /* without the wildcard label */
	bool is_email = at != NULL, is_wild = false;

	if (is_email && strchr(domain, '@') != NULL)
		return why_email;
	if (strchr(domain, '*') != NULL) {
		const char *star = strchr(domain, '*'), *dot;

		is_wild = true;
		if (!r->allow_wildcard_certificates)
			return why_wild_off;
		if (strchr(star + 1, '*') != NULL)
			return why_wild_form;
		dot = strchr(domain, '.');
		if (dot == NULL) {
			/* A lone wildcard label: only the label is left to check. */
			reduced = "";
		} else {
			reduced = dot + 1;
			if (strchr(reduced, '*') != NULL)
				return why_wild_form;
		}
	}
	if (is_email && is_wild)
		return why_email_wild;

	/* The wildcard label plus the reduced name is the whole domain part. */
	if (r->enforce_hostnames && reduced[0] != '\0') {
		if (!dns_lengths_ok(reduced) || !wild_hostname_match(domain))
			return why_hostname;
	}

	if (r->allow_any_name)
		return NULL;

	if (r->allow_localhost) {
		if (strcmp(reduced, "localhost") == 0 || strcmp(reduced, "localdomain") == 0)
			return NULL;
		if (r->allow_subdomains) {
			if (has_dot_suffix(reduced, "localhost") || has_dot_suffix(reduced, "localdomain"))
				return NULL;
		}
	}

	if (r->allowed_domains.n == 0)
		return why_no_domains;
	for (size_t i = 0; i < r->allowed_domains.n; i++) {
		const char *d = r->allowed_domains.v[i];

		if (d[0] == '\0')
			continue;
		if (r->allow_bare_domains &&
		    (strcasecmp(name, d) == 0 || (is_email && strcasecmp(domain, d) == 0)))
			return NULL;
		/* Vault compares the subdomain suffix case-sensitively. */
		if (r->allow_subdomains && (has_dot_suffix(reduced, d) || (is_wild && strcasecmp(reduced, d) == 0)))
			return NULL;
		/* Globs match the whole requested name, local part included; no composition with subdomains. */
		if (r->allow_glob_domains && strchr(d, '*') != NULL && glob_match(d, name, true))
			return NULL;
	}
	return why_no_match;
}

/* ---------------- Denials ---------------- */

static int deny(const struct role *r, const char *what, const char *value, const char *why, struct sg_err *err)
{
	if (r->name != NULL && r->name[0] != '\0')
		return sg_err_set(err, SG_ROLE_DENIED, "%s '%.256s' not allowed by role '%.128s': %s", what, value,
		                  r->name, why);
	return sg_err_set(err, SG_ROLE_DENIED, "%s '%.256s' not allowed by this role: %s", what, value, why);
}

static bool cn_validation_has(const struct role *r, const char *v)
{
	return sg_strlist_has(&r->cn_validations, v);
}

/* Vault's ValidateCommonName. */
static int check_cn(const struct role *r, const char *cn, struct sg_err *err)
{
	const char *why;

	/* cn_validations=disabled skips every CN check, allowed_domains included. */
	if (r->cn_validations.n == 1 && strcmp(r->cn_validations.v[0], "disabled") == 0)
		return 0;
	why = name_denied(r, cn);
	if (why != NULL)
		return deny(r, "common name", cn, why, err);
	if (r->cn_validations.n == 0)
		return 0;
	if (strchr(cn, '@') != NULL) {
		if (!cn_validation_has(r, "email"))
			return deny(r, "common name", cn, "an email address, and cn_validations does not include email",
			            err);
	} else if (!cn_validation_has(r, "hostname")) {
		return deny(r, "common name", cn, "not an email address, and cn_validations does not include hostname",
		            err);
	}
	return 0;
}

/* Vault's ValidateSerialNumber: exact, or a glob when the entry holds '*'; an empty list allows nothing. */
static bool serial_allowed(const struct role *r, const char *s)
{
	for (size_t i = 0; i < r->allowed_serial_numbers.n; i++) {
		const char *p = r->allowed_serial_numbers.v[i];

		if (p[0] == '\0')
			continue;
		if ((strchr(p, '*') != NULL && glob_match(p, s, false)) || strcmp(p, s) == 0)
			return true;
	}
	return false;
}

/* Vault's ValidateUserId: case-insensitive equality, or a glob when the entry holds '*'. */
static bool user_id_allowed(const struct role *r, const char *u)
{
	if (sg_strlist_has_ci(&r->allowed_user_ids, u))
		return true;
	for (size_t i = 0; i < r->allowed_user_ids.n; i++) {
		const char *p = r->allowed_user_ids.v[i];

		if (p[0] != '\0' && strchr(p, '*') != NULL && glob_match(p, u, false))
			return true;
	}
	return false;
}

static bool hexdig(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* What Go's url.Parse refuses that can matter here: control characters, bad %-escapes, no scheme before ':'. */
static bool uri_valid(const char *u)
{
	if (u[0] == '\0' || u[0] == ':')
		return false;
	for (const char *p = u; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c < 0x20 || c == 0x7f)
			return false;
		if (c == '%') {
			if (!hexdig(p[1]) || !hexdig(p[2]))
				return false;
			p += 2;
		}
	}
	return true;
}

/*
 * Splits "<oid>;<type>:<value>" (Vault's ParseOtherSANs); the type must be
 * UTF8 or UTF-8, case-insensitive. NULL on success, else the reason.
 */
static const char *other_san_split(const char *s, size_t *oid_len, const char **value)
{
	const char *semi = strchr(s, ';'), *colon;
	size_t tl;

	if (semi == NULL)
		return "expected a semicolon";
	colon = strchr(semi + 1, ':');
	if (colon == NULL)
		return "expected a colon";
	tl = (size_t)(colon - semi - 1);
	if (!((tl == 4 && strncasecmp(semi + 1, "utf8", 4) == 0) || (tl == 5 && strncasecmp(semi + 1, "utf-8", 5) == 0)))
		return "only utf8 other SANs are supported";
	*oid_len = (size_t)(semi - s);
	*value = colon + 1;
	return NULL;
}

/* Vault's ValidateOtherSANs for one requested entry. */
static int check_other_san(const struct role *r, const char *req, struct sg_err *err)
{
	char oid[OTHER_SAN_OID_MAX + 1];
	const char *value, *why;
	size_t oid_len;
	bool oid_known = false;

	why = other_san_split(req, &oid_len, &value);
	if (why != NULL)
		return sg_err_set(err, SG_BAD_REQUEST, "could not parse requested other SAN '%.256s': %s", req, why);
	if (oid_len > OTHER_SAN_OID_MAX)
		return sg_err_set(err, SG_BAD_REQUEST, "other SAN '%.256s': OID too long", req);
	memcpy(oid, req, oid_len);
	oid[oid_len] = '\0';
	if (!role_oid_valid(oid))
		return sg_err_set(err, SG_BAD_REQUEST, "other SAN '%.256s': '%s' is not a valid OID", req, oid);

	/* A lone "*" allows any OID and any (UTF-8) value. */
	if (r->allowed_other_sans.n == 1 && strcmp(r->allowed_other_sans.v[0], "*") == 0)
		return 0;
	for (size_t i = 0; i < r->allowed_other_sans.n; i++) {
		const char *a = r->allowed_other_sans.v[i], *aval;
		size_t alen;

		if (other_san_split(a, &alen, &aval) != NULL)
			return sg_err_set(err, SG_ROLE_DENIED, "role's allowed_other_sans entry '%.256s' is invalid", a);
		if (alen != oid_len || memcmp(a, oid, oid_len) != 0)
			continue;
		oid_known = true;
		if (glob_match(aval, value, false))
			return 0;
	}
	if (!oid_known)
		return deny(r, "other SAN OID", oid, "OID not in allowed_other_sans", err);
	return deny(r, "other SAN", req, "value not allowed for this OID by allowed_other_sans", err);
}

static int check_ip(const struct role *r, const char *ip, struct sg_err *err)
{
	unsigned char buf[16];

	if (!r->allow_ip_sans)
		return sg_err_set(err, SG_ROLE_DENIED,
		                  "IP Subject Alternative Names are not allowed in this role (allow_ip_sans is false), "
		                  "but '%.64s' was provided", ip);
	if (inet_pton(AF_INET, ip, buf) != 1 && inet_pton(AF_INET6, ip, buf) != 1)
		return sg_err_set(err, SG_BAD_REQUEST, "the value '%.64s' is not a valid IP address", ip);
	return 0;
}

/* Vault's ValidateURISAN, then its url.Parse check. */
static int check_uri(const struct role *r, const char *uri, struct sg_err *err)
{
	bool ok = false;

	if (r->allowed_uri_sans.n == 0)
		return sg_err_set(err, SG_ROLE_DENIED,
		                  "URI Subject Alternative Names are not allowed in this role (allowed_uri_sans is "
		                  "empty), but '%.256s' was provided", uri);
	for (size_t i = 0; i < r->allowed_uri_sans.n && !ok; i++)
		ok = glob_match(r->allowed_uri_sans.v[i], uri, false);
	if (!ok)
		return deny(r, "URI Subject Alternative Name", uri, "no match in allowed_uri_sans", err);
	if (!uri_valid(uri))
		return sg_err_set(err, SG_BAD_REQUEST,
		                  "the provided URI Subject Alternative Name '%.256s' is not a valid URI", uri);
	return 0;
}

/* ---------------- Caps ---------------- */

static int check_list_cap(const struct sg_strlist *l, const char *what, size_t *total, struct sg_err *err)
{
	*total += l->n;
	if (*total > ROLE_MAX_SANS)
		return sg_err_set(err, SG_BAD_REQUEST, "too many names in the request (at most %d)", ROLE_MAX_SANS);
	for (size_t i = 0; i < l->n; i++)
		if (strlen(l->v[i]) > ROLE_MAX_NAME_BYTES)
			return sg_err_set(err, SG_BAD_REQUEST, "%s longer than %d bytes", what, ROLE_MAX_NAME_BYTES);
	return 0;
}

static int check_caps(const struct role_names *n, struct sg_err *err)
{
	size_t total = 0;

	if (n->common_name != NULL && strlen(n->common_name) > ROLE_MAX_NAME_BYTES)
		return sg_err_set(err, SG_BAD_REQUEST, "common name longer than %d bytes", ROLE_MAX_NAME_BYTES);
	if (n->subject_serial != NULL && strlen(n->subject_serial) > ROLE_MAX_NAME_BYTES)
		return sg_err_set(err, SG_BAD_REQUEST, "serial_number longer than %d bytes", ROLE_MAX_NAME_BYTES);
	if (check_list_cap(&n->dns, "DNS name", &total, err) < 0 ||
	    check_list_cap(&n->emails, "email address", &total, err) < 0 ||
	    check_list_cap(&n->ips, "IP address", &total, err) < 0 ||
	    check_list_cap(&n->uris, "URI", &total, err) < 0 ||
	    check_list_cap(&n->other_sans, "other SAN", &total, err) < 0 ||
	    check_list_cap(&n->user_ids, "user id", &total, err) < 0)
		return -1;
	return 0;
}

/* ---------------- The check ---------------- */

int role_check_names(const struct role *r, const struct role_names *n, struct sg_err *err)
{
	const char *cn, *why;

	if (r == NULL || n == NULL)
		return sg_err_set(err, SG_INTERNAL, "role_check_names: no role or no names");
	if (check_caps(n, err) < 0)
		return -1;

	cn = n->common_name != NULL ? n->common_name : "";
	if (cn[0] == '\0' && r->require_cn)
		return sg_err_set(err, SG_ROLE_DENIED,
		                  "the common_name field is required, or must be provided in a CSR with "
		                  "\"use_csr_common_name\" set to true, unless \"require_cn\" is set to false");
	if (cn[0] != '\0' && check_cn(r, cn, err) < 0)
		return -1;

	if (n->subject_serial != NULL && n->subject_serial[0] != '\0' && !serial_allowed(r, n->subject_serial))
		return deny(r, "serial_number", n->subject_serial,
		            r->allowed_serial_numbers.n == 0 ? "allowed_serial_numbers is empty"
		                                             : "no match in allowed_serial_numbers",
		            err);

	for (size_t i = 0; i < n->dns.n; i++) {
		why = name_denied(r, n->dns.v[i]);
		if (why != NULL)
			return deny(r, "subject alternative name", n->dns.v[i], why, err);
	}
	for (size_t i = 0; i < n->emails.n; i++) {
		why = name_denied(r, n->emails.v[i]);
		if (why != NULL)
			return deny(r, "email address", n->emails.v[i], why, err);
	}
	for (size_t i = 0; i < n->other_sans.n; i++)
		if (check_other_san(r, n->other_sans.v[i], err) < 0)
			return -1;
	for (size_t i = 0; i < n->ips.n; i++)
		if (check_ip(r, n->ips.v[i], err) < 0)
			return -1;
	for (size_t i = 0; i < n->uris.n; i++)
		if (check_uri(r, n->uris.v[i], err) < 0)
			return -1;
	for (size_t i = 0; i < n->user_ids.n; i++) {
		if (!user_id_allowed(r, n->user_ids.v[i]))
			return deny(r, "user_id", n->user_ids.v[i],
			            r->allowed_user_ids.n == 0 ? "allowed_user_ids is empty" : "no match in allowed_user_ids",
			            err);
	}
	return 0;
}
