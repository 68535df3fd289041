/*
 * The role model: defaults, loosely typed updates with Vault's validation,
 * the read/stored form, key and TTL checks. Field semantics follow Vault's
 * builtin/logical/pki/path_roles.go and issuing/roles.go (compat/vault-api.md 1.2).
 *
 * Deliberate differences from Vault, each refusing at write time what Vault
 * accepts and then ignores or fails on later:
 * - unknown key_usage / ext_key_usage names are refused (Vault drops them);
 * - not_after is checked as RFC 3339 when the role is written;
 * - signature_bits must be 0, 256, 384 or 512 for every key type;
 * - a bad policy_identifiers entry is a 400 (Vault answers 500);
 * - a PATCH that changes key_type without sizes takes the new type's
 *   defaults (Vault keeps e.g. rsa's 2048 and then refuses key_type=ec);
 * - key_bits and signature_bits read back as 0 for ed25519 and any.
 */
#include "roles/role.h"

#include <ctype.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define ROLE_ISSUER_REF_MAX 256
#define ROLE_OID_MAX_CHARS 256
#define ROLE_OID_ARC_DIGITS 18 /* keeps every arc inside int64 */
#define ROLE_POLICY_MAX_CHARS 4096

#define LIST_AT(r, off) ((struct sg_strlist *)((char *)(r) + (off)))
#define CLIST_AT(r, off) ((const struct sg_strlist *)((const char *)(r) + (off)))
#define BOOL_AT(r, off) ((bool *)((char *)(r) + (off)))
#define CBOOL_AT(r, off) ((const bool *)((const char *)(r) + (off)))

struct field {
	const char *key;
	size_t off;
};

/* Every list field, with its wire name (request, read form and stored form alike). */
static const struct field list_fields[] = {
	{"allowed_domains", offsetof(struct role, allowed_domains)},
	{"allowed_uri_sans", offsetof(struct role, allowed_uri_sans)},
	{"allowed_other_sans", offsetof(struct role, allowed_other_sans)},
	{"allowed_serial_numbers", offsetof(struct role, allowed_serial_numbers)},
	{"allowed_user_ids", offsetof(struct role, allowed_user_ids)},
	{"cn_validations", offsetof(struct role, cn_validations)},
	{"key_usage", offsetof(struct role, key_usage)},
	{"ext_key_usage", offsetof(struct role, ext_key_usage)},
	{"ext_key_usage_oids", offsetof(struct role, ext_key_usage_oids)},
	{"ou", offsetof(struct role, ou)},
	{"organization", offsetof(struct role, organization)},
	{"country", offsetof(struct role, country)},
	{"locality", offsetof(struct role, locality)},
	{"province", offsetof(struct role, province)},
	{"street_address", offsetof(struct role, street_address)},
	{"postal_code", offsetof(struct role, postal_code)},
	{"policy_identifiers", offsetof(struct role, policy_identifiers)},
};
#define N_LIST_FIELDS (sizeof(list_fields) / sizeof(list_fields[0]))

/* Plain boolean fields. generate_lease and no_store are handled apart (they interact). */
static const struct field bool_fields[] = {
	{"allow_localhost", offsetof(struct role, allow_localhost)},
	{"allowed_domains_template", offsetof(struct role, allowed_domains_template)},
	{"allow_bare_domains", offsetof(struct role, allow_bare_domains)},
	{"allow_subdomains", offsetof(struct role, allow_subdomains)},
	{"allow_glob_domains", offsetof(struct role, allow_glob_domains)},
	{"allow_wildcard_certificates", offsetof(struct role, allow_wildcard_certificates)},
	{"allow_any_name", offsetof(struct role, allow_any_name)},
	{"enforce_hostnames", offsetof(struct role, enforce_hostnames)},
	{"allow_ip_sans", offsetof(struct role, allow_ip_sans)},
	{"allowed_uri_sans_template", offsetof(struct role, allowed_uri_sans_template)},
	{"require_cn", offsetof(struct role, require_cn)},
	{"server_flag", offsetof(struct role, server_flag)},
	{"client_flag", offsetof(struct role, client_flag)},
	{"code_signing_flag", offsetof(struct role, code_signing_flag)},
	{"email_protection_flag", offsetof(struct role, email_protection_flag)},
	{"use_pss", offsetof(struct role, use_pss)},
	{"use_csr_common_name", offsetof(struct role, use_csr_common_name)},
	{"use_csr_sans", offsetof(struct role, use_csr_sans)},
	{"basic_constraints_valid_for_non_ca", offsetof(struct role, basic_constraints_valid_for_non_ca)},
};
#define N_BOOL_FIELDS (sizeof(bool_fields) / sizeof(bool_fields[0]))

static const char *const ku_names[] = {
	"digitalsignature", "contentcommitment", "keyencipherment", "dataencipherment", "keyagreement",
	"certsign",         "crlsign",           "encipheronly",    "decipheronly",
};

static const struct {
	const char *name; /* lower case */
	const char *oid;
} eku_table[ROLE_EKU_COUNT] = {
	{"any", "2.5.29.37.0"},
	{"serverauth", "1.3.6.1.5.5.7.3.1"},
	{"clientauth", "1.3.6.1.5.5.7.3.2"},
	{"codesigning", "1.3.6.1.5.5.7.3.3"},
	{"emailprotection", "1.3.6.1.5.5.7.3.4"},
	{"ipsecendsystem", "1.3.6.1.5.5.7.3.5"},
	{"ipsectunnel", "1.3.6.1.5.5.7.3.6"},
	{"ipsecuser", "1.3.6.1.5.5.7.3.7"},
	{"timestamping", "1.3.6.1.5.5.7.3.8"},
	{"ocspsigning", "1.3.6.1.5.5.7.3.9"},
	{"microsoftservergatedcrypto", "1.3.6.1.4.1.311.10.3.3"},
	{"netscapeservergatedcrypto", "2.16.840.1.113730.4.1"},
	{"microsoftcommercialcodesigning", "1.3.6.1.4.1.311.2.1.22"},
	{"microsoftkernelcodesigning", "1.3.6.1.4.1.311.61.1.1"},
};
#define EKU_SERVER_AUTH 1
#define EKU_CLIENT_AUTH 2
#define EKU_CODE_SIGNING 3
#define EKU_EMAIL_PROTECTION 4

static const char *const default_key_usage[] = {"DigitalSignature", "KeyAgreement", "KeyEncipherment"};

static const char *const warn_no_store_lease =
	"mutually exclusive values no_store=true and generate_lease=true were both specified; "
	"no_store=true takes priority";
static const char *const warn_generate_lease =
	"it is encouraged to disable generate_lease and rely on PKI's native capabilities when "
	"possible; this option can cause instance-wide issues with large numbers of issued certificates";

/* ---------------- Lifecycle ---------------- */

struct role *role_new(const char *name)
{
	struct role *r = sg_xcalloc(1, sizeof(*r));

	r->name = sg_xstrdup(name != NULL ? name : "");
	r->issuer_ref = sg_xstrdup("default");
	r->allow_localhost = true;
	r->allow_wildcard_certificates = true;
	r->enforce_hostnames = true;
	r->allow_ip_sans = true;
	sg_strlist_add(&r->cn_validations, "email");
	sg_strlist_add(&r->cn_validations, "hostname");
	r->require_cn = true;
	r->server_flag = true;
	r->client_flag = true;
	for (size_t i = 0; i < sizeof(default_key_usage) / sizeof(default_key_usage[0]); i++)
		sg_strlist_add(&r->key_usage, default_key_usage[i]);
	r->key_type = sg_xstrdup("rsa");
	r->key_bits = 2048;
	/* Vault resolves signature_bits 0 to SHA-256 for RSA at role creation. */
	r->signature_bits = 256;
	r->use_csr_common_name = true;
	r->use_csr_sans = true;
	r->not_before_duration = 30;
	return r;
}

void role_free(struct role *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < N_LIST_FIELDS; i++)
		sg_strlist_clear(LIST_AT(r, list_fields[i].off));
	free(r->name);
	free(r->issuer_ref);
	free(r->key_type);
	free(r->not_after);
	free(r);
}

struct role *role_dup(const struct role *r)
{
	struct role *d;

	if (r == NULL)
		return NULL;
	d = sg_xmalloc(sizeof(*d));
	*d = *r;
	d->name = r->name != NULL ? sg_xstrdup(r->name) : NULL;
	d->issuer_ref = r->issuer_ref != NULL ? sg_xstrdup(r->issuer_ref) : NULL;
	d->key_type = r->key_type != NULL ? sg_xstrdup(r->key_type) : NULL;
	d->not_after = r->not_after != NULL ? sg_xstrdup(r->not_after) : NULL;
	for (size_t i = 0; i < N_LIST_FIELDS; i++) {
		struct sg_strlist *l = LIST_AT(d, list_fields[i].off);

		l->v = NULL;
		l->n = 0;
		sg_strlist_copy(l, CLIST_AT(r, list_fields[i].off));
	}
	return d;
}

static bool name_char(int c, bool inner)
{
	return isalnum(c) || c == '_' || (inner && (c == '-' || c == '.'));
}

bool role_name_valid(const char *name)
{
	size_t n;

	if (name == NULL)
		return false;
	n = strlen(name);
	if (n == 0 || n > ROLE_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!name_char((unsigned char)name[i], i > 0 && i + 1 < n))
			return false;
	}
	return true;
}

/* ---------------- Names of usages ---------------- */

/* Copies s without surrounding spaces, lower-cased, into buf; false when it does not fit. */
static bool norm_name(const char *s, char *buf, size_t cap)
{
	size_t b = 0, e = strlen(s), j = 0;

	while (b < e && isspace((unsigned char)s[b]))
		b++;
	while (e > b && isspace((unsigned char)s[e - 1]))
		e--;
	if (e - b >= cap)
		return false;
	for (size_t i = b; i < e; i++)
		buf[j++] = (char)tolower((unsigned char)s[i]);
	buf[j] = '\0';
	return true;
}

static int ku_index(const char *s)
{
	char buf[64];

	if (!norm_name(s, buf, sizeof(buf)))
		return -1;
	for (size_t i = 0; i < sizeof(ku_names) / sizeof(ku_names[0]); i++)
		if (strcmp(buf, ku_names[i]) == 0)
			return (int)i;
	return -1;
}

static int eku_index(const char *s)
{
	char buf[64];

	if (!norm_name(s, buf, sizeof(buf)))
		return -1;
	for (size_t i = 0; i < ROLE_EKU_COUNT; i++)
		if (strcmp(buf, eku_table[i].name) == 0)
			return (int)i;
	return -1;
}

unsigned role_key_usage_bits(const struct sg_strlist *names)
{
	unsigned bits = 0;

	for (size_t i = 0; names != NULL && i < names->n; i++) {
		int k = ku_index(names->v[i]);

		if (k >= 0)
			bits |= 1u << k;
	}
	return bits;
}

unsigned role_eku_bits_names(const struct sg_strlist *names)
{
	unsigned bits = 0;

	for (size_t i = 0; names != NULL && i < names->n; i++) {
		int k = eku_index(names->v[i]);

		if (k >= 0)
			bits |= 1u << k;
	}
	return bits;
}

unsigned role_eku_bits(const struct role *r)
{
	unsigned bits = role_eku_bits_names(&r->ext_key_usage);

	if (r->server_flag)
		bits |= 1u << EKU_SERVER_AUTH;
	if (r->client_flag)
		bits |= 1u << EKU_CLIENT_AUTH;
	if (r->code_signing_flag)
		bits |= 1u << EKU_CODE_SIGNING;
	if (r->email_protection_flag)
		bits |= 1u << EKU_EMAIL_PROTECTION;
	return bits;
}

const char *role_eku_oid(unsigned i)
{
	return i < ROLE_EKU_COUNT ? eku_table[i].oid : NULL;
}

/* ---------------- OIDs and policies ---------------- */

bool role_oid_valid(const char *s)
{
	size_t arcs = 0, len;
	const char *p = s;

	if (s == NULL)
		return false;
	len = strlen(s);
	if (len == 0 || len > ROLE_OID_MAX_CHARS)
		return false;
	while (*p != '\0') {
		const char *b = p;
		unsigned long long v = 0;

		while (isdigit((unsigned char)*p)) {
			v = v * 10 + (unsigned long long)(*p - '0');
			p++;
			if (p - b > ROLE_OID_ARC_DIGITS)
				return false;
		}
		if (p == b)
			return false;
		/* X.660: the first arc is 0, 1 or 2; under 0 and 1 the second is below 40. */
		if (arcs == 0 && v > 2)
			return false;
		if (arcs == 1 && s[0] != '2' && v > 39)
			return false;
		arcs++;
		if (*p == '.') {
			p++;
			if (*p == '\0')
				return false;
		} else if (*p != '\0') {
			return false;
		}
	}
	return arcs >= 2;
}

void role_policy_clear(struct role_policy *p)
{
	if (p == NULL)
		return;
	free(p->oid);
	free(p->cps);
	free(p->notice);
	p->oid = p->cps = p->notice = NULL;
}

/* Reads an optional string member of a policy object. */
static int policy_member(const json_t *o, const char *key, char **out, struct sg_err *err)
{
	const json_t *v = json_object_get(o, key);

	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return sg_err_set(err, SG_BAD_REQUEST, "policy_identifiers: '%s' must be a string", key);
	if (json_string_length(v) > 0)
		*out = sg_xstrdup(json_string_value(v));
	return 0;
}

static int policy_from_object(const json_t *o, struct role_policy *p, struct sg_err *err)
{
	int rc = -1;

	if (!json_is_object(o))
		return sg_err_set(err, SG_BAD_REQUEST, "policy_identifiers: entry must be an OID or an object");
	if (policy_member(o, "oid", &p->oid, err) < 0 || policy_member(o, "cps", &p->cps, err) < 0 ||
	    policy_member(o, "notice", &p->notice, err) < 0)
		goto out;
	if (p->oid == NULL || !role_oid_valid(p->oid)) {
		sg_err_set(err, SG_BAD_REQUEST, "policy_identifiers: '%.100s' is not a valid OID",
		           p->oid != NULL ? p->oid : "");
		goto out;
	}
	rc = 0;
out:
	if (rc < 0)
		role_policy_clear(p);
	return rc;
}

int role_policy_parse(const char *entry, struct role_policy *out, struct sg_err *err)
{
	json_t *o = NULL;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (entry == NULL || strlen(entry) > ROLE_POLICY_MAX_CHARS) {
		sg_err_set(err, SG_BAD_REQUEST, "policy_identifiers: entry too long");
		goto out;
	}
	if (entry[0] != '{') {
		if (!role_oid_valid(entry)) {
			sg_err_set(err, SG_BAD_REQUEST, "policy_identifiers: '%.100s' is not a valid OID", entry);
			goto out;
		}
		out->oid = sg_xstrdup(entry);
		rc = 0;
		goto out;
	}
	o = json_loads(entry, JSON_REJECT_DUPLICATES, NULL);
	if (o == NULL) {
		sg_err_set(err, SG_BAD_REQUEST, "policy_identifiers: '%.100s' is neither an OID nor a JSON object",
		           entry);
		goto out;
	}
	rc = policy_from_object(o, out, err);
out:
	json_decref(o);
	return rc;
}

/* Vault's stored string for a qualified policy: {"oid":...,"cps":...,"notice":...}, empty members left out. */
static char *policy_string(const struct role_policy *p)
{
	json_t *o = json_object();
	char *s, *ret;

	json_object_set_new(o, "oid", json_string(p->oid));
	if (p->cps != NULL)
		json_object_set_new(o, "cps", json_string(p->cps));
	if (p->notice != NULL)
		json_object_set_new(o, "notice", json_string(p->notice));
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (s == NULL)
		sg_die("policy_identifiers: cannot encode");
	ret = sg_xstrdup(s);
	free(s);
	return ret;
}

/* Appends one policy entry (string or object) to out, normalised and validated. */
static int policy_add(struct sg_strlist *out, const json_t *el, struct sg_err *err)
{
	struct role_policy p;

	if (json_is_string(el)) {
		if (json_string_length(el) == 0)
			return 0;
		if (role_policy_parse(json_string_value(el), &p, err) < 0)
			return -1;
	} else {
		memset(&p, 0, sizeof(p));
		if (policy_from_object(el, &p, err) < 0)
			return -1;
	}
	/* Vault stores a plain OID as given and a qualified entry as its JSON string. */
	if (json_is_string(el) && json_string_value(el)[0] != '{') {
		sg_strlist_add(out, p.oid);
	} else {
		char *s = policy_string(&p);

		sg_strlist_add(out, s);
		free(s);
	}
	role_policy_clear(&p);
	return 0;
}

/*
 * policy_identifiers: a comma list or array of OIDs, or (newer Vault) a JSON
 * list of {"oid","cps","notice"} objects, given as an array or as a string
 * holding that JSON. Returns 1 when present, 0 when absent, -1 on error.
 */
static int apply_policies(struct role *r, const json_t *body, struct sg_err *err)
{
	const json_t *v = json_object_get(body, "policy_identifiers");
	const json_t *arr = NULL;
	json_t *parsed = NULL, *el;
	struct sg_strlist l = {0};
	size_t i;
	int rc = -1;

	if (v == NULL || json_is_null(v))
		return 0;
	if (json_is_string(v)) {
		const char *s = json_string_value(v);

		while (isspace((unsigned char)*s))
			s++;
		if (*s == '[')
			parsed = json_loads(s, JSON_REJECT_DUPLICATES, NULL);
		if (parsed != NULL && json_is_array(parsed)) {
			arr = parsed;
		} else if (sg_json_list(body, "policy_identifiers", &l, err) < 0) {
			/* Not JSON: Vault falls back to a comma-separated OID list. */
			goto out;
		}
	} else if (json_is_array(v)) {
		arr = v;
	} else {
		sg_err_set(err, SG_BAD_REQUEST, "field 'policy_identifiers' must be a list");
		goto out;
	}
	if (arr != NULL && json_array_size(arr) > SG_STRLIST_MAX) {
		sg_err_set(err, SG_BAD_REQUEST, "field 'policy_identifiers' has more than %d entries", SG_STRLIST_MAX);
		goto out;
	}
	if (arr != NULL) {
		json_array_foreach(arr, i, el) {
			if (policy_add(&l, el, err) < 0)
				goto out;
		}
	} else {
		for (i = 0; i < l.n; i++) {
			if (!role_oid_valid(l.v[i])) {
				sg_err_set(err, SG_BAD_REQUEST, "policy_identifiers: '%.100s' is not a valid OID", l.v[i]);
				goto out;
			}
		}
	}
	sg_strlist_clear(&r->policy_identifiers);
	r->policy_identifiers = l;
	l.v = NULL;
	l.n = 0;
	rc = 1;
out:
	sg_strlist_clear(&l);
	json_decref(parsed);
	return rc;
}

/* ---------------- Validation ---------------- */

/* Vault's certutil.ValidateDefaultOrValueKeyTypeSignatureLength, with ed25519/any bits resolved to 0. */
static int check_key_params(struct role *r, struct sg_err *err)
{
	const char *kt = r->key_type;

	if (r->signature_bits != 0 && r->signature_bits != 256 && r->signature_bits != 384 &&
	    r->signature_bits != 512)
		return sg_err_set(err, SG_BAD_REQUEST, "signature_bits: unsupported hash signature algorithm: %d "
		                  "(use 0, 256, 384 or 512)", r->signature_bits);
	if (strcmp(kt, "rsa") == 0) {
		if (r->key_bits == 0)
			r->key_bits = 2048;
		if (r->key_bits < 2048)
			return sg_err_set(err, SG_BAD_REQUEST,
			                  "key_bits: RSA keys < 2048 bits are unsafe and not supported: got %d",
			                  r->key_bits);
		if (r->key_bits != 2048 && r->key_bits != 3072 && r->key_bits != 4096 && r->key_bits != 8192)
			return sg_err_set(err, SG_BAD_REQUEST, "key_bits: unsupported bit length for RSA key: %d",
			                  r->key_bits);
		if (r->signature_bits == 0)
			r->signature_bits = 256;
	} else if (strcmp(kt, "ec") == 0) {
		if (r->key_bits == 0)
			r->key_bits = 256;
		if (r->key_bits != 224 && r->key_bits != 256 && r->key_bits != 384 && r->key_bits != 521)
			return sg_err_set(err, SG_BAD_REQUEST, "key_bits: unsupported bit length for EC key: %d",
			                  r->key_bits);
	} else if (strcmp(kt, "ed25519") == 0 || strcmp(kt, "any") == 0) {
		/* The size comes from the key itself; Vault ignores these values. */
		r->key_bits = 0;
		r->signature_bits = 0;
	} else {
		return sg_err_set(err, SG_BAD_REQUEST, "key_type: unknown key type '%.64s' (use rsa, ec, ed25519 or any)",
		                  kt);
	}
	return 0;
}

/* Vault's checkCNValidations: lower-cased, no repeats, "disabled" alone; empty means the default. */
static int check_cn_validations(struct role *r, struct sg_err *err)
{
	bool have_disabled = false, have_email = false, have_hostname = false;
	struct sg_strlist *l = &r->cn_validations;

	if (l->n == 0) {
		sg_strlist_add(l, "email");
		sg_strlist_add(l, "hostname");
		return 0;
	}
	for (size_t i = 0; i < l->n; i++) {
		bool *seen;

		for (char *p = l->v[i]; *p != '\0'; p++)
			*p = (char)tolower((unsigned char)*p);
		if (strcmp(l->v[i], "disabled") == 0)
			seen = &have_disabled;
		else if (strcmp(l->v[i], "email") == 0)
			seen = &have_email;
		else if (strcmp(l->v[i], "hostname") == 0)
			seen = &have_hostname;
		else
			return sg_err_set(err, SG_BAD_REQUEST, "cn_validations value incorrect: unknown type: '%.64s'",
			                  l->v[i]);
		if (*seen)
			return sg_err_set(err, SG_BAD_REQUEST,
			                  "cn_validations value incorrect: '%s' specified multiple times", l->v[i]);
		*seen = true;
	}
	if (have_disabled && (have_email || have_hostname))
		return sg_err_set(err, SG_BAD_REQUEST, "cn_validations value incorrect: cannot specify 'disabled' "
		                  "along with 'email' or 'hostname'");
	return 0;
}

/* Vault's ParseOtherSANs on the role side: "<oid>;<type>:<value>" with type UTF8 / UTF-8. */
static int check_allowed_other_sans(const struct role *r, struct sg_err *err)
{
	const struct sg_strlist *l = &r->allowed_other_sans;

	if (l->n == 0 || (l->n == 1 && strcmp(l->v[0], "*") == 0))
		return 0;
	for (size_t i = 0; i < l->n; i++) {
		const char *semi = strchr(l->v[i], ';');
		const char *colon = semi != NULL ? strchr(semi + 1, ':') : NULL;
		size_t tl;

		if (semi == NULL)
			return sg_err_set(err, SG_BAD_REQUEST,
			                  "error parsing allowed_other_sans: expected a semicolon in other SAN '%.100s'",
			                  l->v[i]);
		if (colon == NULL)
			return sg_err_set(err, SG_BAD_REQUEST,
			                  "error parsing allowed_other_sans: expected a colon in other SAN '%.100s'",
			                  l->v[i]);
		tl = (size_t)(colon - semi - 1);
		if (!((tl == 4 && strncasecmp(semi + 1, "utf8", 4) == 0) ||
		      (tl == 5 && strncasecmp(semi + 1, "utf-8", 5) == 0)))
			return sg_err_set(err, SG_BAD_REQUEST,
			                  "error parsing allowed_other_sans: only utf8 other SANs are supported; found "
			                  "non-supported type in other SAN '%.100s'", l->v[i]);
	}
	return 0;
}

static int validate(struct role *r, struct sg_err *err)
{
	/* Vault: `"ttl" value must be less than "max_ttl" value` (equal is fine). */
	if (r->max_ttl > 0 && r->ttl > r->max_ttl)
		return sg_err_set(err, SG_BAD_REQUEST, "ttl (%lld s) must not be longer than max_ttl (%lld s)",
		                  (long long)r->ttl, (long long)r->max_ttl);
	if (check_key_params(r, err) < 0)
		return -1;
	for (size_t i = 0; i < r->key_usage.n; i++)
		if (ku_index(r->key_usage.v[i]) < 0)
			return sg_err_set(err, SG_BAD_REQUEST, "key_usage: unknown key usage '%.64s'", r->key_usage.v[i]);
	for (size_t i = 0; i < r->ext_key_usage.n; i++)
		if (eku_index(r->ext_key_usage.v[i]) < 0)
			return sg_err_set(err, SG_BAD_REQUEST, "ext_key_usage: unknown extended key usage '%.64s'",
			                  r->ext_key_usage.v[i]);
	for (size_t i = 0; i < r->ext_key_usage_oids.n; i++)
		if (!role_oid_valid(r->ext_key_usage_oids.v[i]))
			return sg_err_set(err, SG_BAD_REQUEST,
			                  "ext_key_usage_oids: '%.100s' could not be parsed as a valid oid for an "
			                  "extended key usage", r->ext_key_usage_oids.v[i]);
	if (check_allowed_other_sans(r, err) < 0)
		return -1;
	if (check_cn_validations(r, err) < 0)
		return -1;
	if (r->not_after != NULL) {
		int64_t t;

		if (sg_time_parse_rfc3339(r->not_after, &t) < 0)
			return sg_err_set(err, SG_BAD_REQUEST,
			                  "not_after: '%.64s' is not an RFC 3339 time (e.g. 2030-01-02T03:04:05Z)",
			                  r->not_after);
	}
	return 0;
}

/* ---------------- Applying a request body ---------------- */

static int apply_int(const json_t *body, const char *key, int *out, struct sg_err *err)
{
	int64_t v;
	int rc = sg_json_int(body, key, &v, err);

	if (rc <= 0)
		return rc;
	if (v < 0 || v > 65536)
		return sg_err_set(err, SG_BAD_REQUEST, "field '%s' is out of range", key);
	*out = (int)v;
	return 1;
}

/* Replaces *dst with a copy of the string field when present. empty_as_null drops "". */
static int apply_str(const json_t *body, const char *key, char **dst, bool empty_as_null, size_t cap,
                     struct sg_err *err)
{
	const char *s = NULL;
	int rc = sg_json_str(body, key, &s, err);

	if (rc <= 0)
		return rc;
	if (strlen(s) > cap)
		return sg_err_set(err, SG_BAD_REQUEST, "field '%s' is longer than %zu characters", key, cap);
	free(*dst);
	*dst = (empty_as_null && *s == '\0') ? NULL : sg_xstrdup(s);
	return 1;
}

static void add_warning(struct sg_strlist *warnings, const char *msg)
{
	if (warnings != NULL && !sg_strlist_has(warnings, msg))
		sg_strlist_add(warnings, msg);
}

int role_apply_json_warn(struct role *r, const json_t *body, struct sg_strlist *warnings, struct sg_err *err)
{
	bool gl = r->generate_lease;
	char *old_type;
	int rc;

	if (body == NULL || !json_is_object(body))
		return sg_err_set(err, SG_BAD_REQUEST, "request body must be a JSON object");

	for (size_t i = 0; i < N_BOOL_FIELDS; i++)
		if (sg_json_bool(body, bool_fields[i].key, BOOL_AT(r, bool_fields[i].off), err) < 0)
			return -1;
	if (sg_json_bool(body, "no_store", &r->no_store, err) < 0)
		return -1;
	if (sg_json_bool(body, "generate_lease", &gl, err) < 0)
		return -1;

	for (size_t i = 0; i < N_LIST_FIELDS; i++) {
		if (list_fields[i].off == offsetof(struct role, policy_identifiers))
			continue;
		if (sg_json_list(body, list_fields[i].key, LIST_AT(r, list_fields[i].off), err) < 0)
			return -1;
	}
	if (apply_policies(r, body, err) < 0)
		return -1;

	if (sg_json_duration(body, "ttl", &r->ttl, err) < 0 || sg_json_duration(body, "max_ttl", &r->max_ttl, err) < 0 ||
	    sg_json_duration(body, "not_before_duration", &r->not_before_duration, err) < 0)
		return -1;

	old_type = r->key_type != NULL ? sg_xstrdup(r->key_type) : NULL;
	rc = apply_str(body, "key_type", &r->key_type, false, 16, err);
	/*
	 * A new key type without sizes takes that type's defaults. For a POST
	 * this is Vault's behaviour (its defaults are 0 = auto); for a PATCH
	 * Vault keeps the old sizes and then refuses e.g. rsa/2048 -> ec.
	 */
	if (rc == 1 && (old_type == NULL || strcmp(old_type, r->key_type) != 0)) {
		r->key_bits = 0;
		r->signature_bits = 0;
	}
	free(old_type);
	if (rc < 0 || apply_str(body, "issuer_ref", &r->issuer_ref, false, ROLE_ISSUER_REF_MAX, err) < 0 ||
	    apply_str(body, "not_after", &r->not_after, true, 64, err) < 0)
		return -1;
	/* Vault never stores an empty issuer reference. */
	if (r->issuer_ref == NULL || r->issuer_ref[0] == '\0') {
		free(r->issuer_ref);
		r->issuer_ref = sg_xstrdup("default");
	}
	if (apply_int(body, "key_bits", &r->key_bits, err) < 0 ||
	    apply_int(body, "signature_bits", &r->signature_bits, err) < 0)
		return -1;

	/*
	 * no_store implies generate_lease=false (path_roles.go). gl is the
	 * requested value, or the stored one when a PATCH leaves it out.
	 */
	if (r->no_store) {
		if (gl)
			add_warning(warnings, warn_no_store_lease);
		r->generate_lease = false;
	} else {
		r->generate_lease = gl;
		if (gl)
			add_warning(warnings, warn_generate_lease);
	}
	return validate(r, err);
}

int role_apply_json(struct role *r, const json_t *body, struct sg_err *err)
{
	return role_apply_json_warn(r, body, NULL, err);
}

/* ---------------- Read form and stored form ---------------- */

json_t *role_encode(const struct role *r)
{
	json_t *o = json_object();

	json_object_set_new(o, "ttl", json_integer(r->ttl));
	json_object_set_new(o, "max_ttl", json_integer(r->max_ttl));
	json_object_set_new(o, "not_before_duration", json_integer(r->not_before_duration));
	for (size_t i = 0; i < N_BOOL_FIELDS; i++)
		json_object_set_new(o, bool_fields[i].key, json_boolean(*CBOOL_AT(r, bool_fields[i].off)));
	json_object_set_new(o, "no_store", json_boolean(r->no_store));
	json_object_set_new(o, "generate_lease", json_boolean(r->generate_lease));
	/* Always false here; Vault still reports them. */
	json_object_set_new(o, "allow_token_displayname", json_false());
	json_object_set_new(o, "no_store_metadata", json_false());
	for (size_t i = 0; i < N_LIST_FIELDS; i++)
		json_object_set_new(o, list_fields[i].key, sg_strlist_to_json(CLIST_AT(r, list_fields[i].off)));
	json_object_set_new(o, "key_type", json_string(r->key_type != NULL ? r->key_type : "rsa"));
	json_object_set_new(o, "key_bits", json_integer(r->key_bits));
	json_object_set_new(o, "signature_bits", json_integer(r->signature_bits));
	json_object_set_new(o, "not_after", json_string(r->not_after != NULL ? r->not_after : ""));
	json_object_set_new(o, "issuer_ref", json_string(r->issuer_ref != NULL ? r->issuer_ref : "default"));
	return o;
}

struct role *role_decode(const char *name, const json_t *stored, struct sg_err *err)
{
	struct role *r = role_new(name);
	struct sg_err e;

	sg_err_init(&e);
	if (role_apply_json(r, stored, &e) < 0) {
		sg_err_set(err, SG_STORAGE, "stored role '%.128s' is invalid: %s", name != NULL ? name : "",
		           e.detail);
		role_free(r);
		return NULL;
	}
	return r;
}

/* ---------------- Keys and validity ---------------- */

int role_check_key(const struct role *r, const char *key_type, int key_bits, struct sg_err *err)
{
	const char *rt;
	int min_bits;

	if (r == NULL || r->key_type == NULL)
		return sg_err_set(err, SG_INTERNAL, "role_check_key: no role");
	if (key_type == NULL)
		key_type = "";
	rt = r->key_type;
	if (strcmp(rt, "any") == 0) {
		/* Vault ignores the role's key_bits under "any" and applies its own floors. */
		if (strcmp(key_type, "rsa") == 0)
			min_bits = 2048;
		else if (strcmp(key_type, "ec") == 0)
			min_bits = 224;
		else if (strcmp(key_type, "ed25519") == 0)
			min_bits = 0;
		else
			return sg_err_set(err, SG_KEY_DENIED, "unknown key type in CSR: '%.32s'", key_type);
	} else if (strcmp(rt, "rsa") == 0 || strcmp(rt, "ec") == 0 || strcmp(rt, "ed25519") == 0) {
		if (strcmp(rt, key_type) != 0)
			return sg_err_set(err, SG_KEY_DENIED, "role requires keys of type %s (key_type), but the key is %.32s",
			                  rt, key_type[0] != '\0' ? key_type : "unknown");
		min_bits = r->key_bits;
	} else {
		return sg_err_set(err, SG_INTERNAL, "role has an unsupported key_type '%.32s'", rt);
	}
	if (strcmp(key_type, "rsa") == 0 || strcmp(key_type, "ec") == 0) {
		if (key_bits < min_bits)
			return sg_err_set(err, SG_KEY_DENIED,
			                  "role requires a minimum of a %d-bit key (key_bits), but the key is %d bits",
			                  min_bits, key_bits);
		if (strcmp(key_type, "rsa") == 0 && key_bits < 2048)
			return sg_err_set(err, SG_KEY_DENIED,
			                  "a minimum of a 2048-bit RSA key is required, but the key is %d bits", key_bits);
	}
	return 0;
}

/* Vault's GetCertificateNotAfter, the TTL part. */
int64_t role_ttl(const struct role *r, int64_t requested, int64_t mount_default, int64_t mount_max, bool *clamped)
{
	int64_t ttl = requested > 0 ? requested : 0;
	int64_t max = 0;

	if (clamped != NULL)
		*clamped = false;
	if (r != NULL && ttl == 0 && r->ttl > 0)
		ttl = r->ttl;
	if (r != NULL && r->max_ttl > 0)
		max = r->max_ttl;
	if (ttl == 0)
		ttl = mount_default;
	if (max == 0)
		max = mount_max;
	/* Vault clamps with a warning rather than failing. */
	if (max > 0 && ttl > max) {
		ttl = max;
		if (clamped != NULL)
			*clamped = true;
	}
	return ttl;
}
