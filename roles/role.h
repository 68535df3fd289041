#ifndef SG_ROLE_H
#define SG_ROLE_H

/*
 * The role model and the check of a request against a role. Pure code: no
 * store, no HTTP, no OpenSSL objects. Field names and defaults follow
 * Vault's PKI roles (compat/vault-api.md 1.2).
 */

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/util.h"

#define ROLE_NAME_MAX 128
#define ROLE_MAX_SANS 512 /* cap on names in one request */

struct role {
	char *name;
	char *issuer_ref;              /* "default" */
	int64_t ttl, max_ttl;          /* seconds; 0 = mount default / max */
	bool allow_localhost;          /* true */
	struct sg_strlist allowed_domains;
	bool allowed_domains_template; /* false */
	bool allow_bare_domains, allow_subdomains, allow_glob_domains;
	bool allow_wildcard_certificates; /* true */
	bool allow_any_name;              /* false */
	bool enforce_hostnames;           /* true */
	bool allow_ip_sans;               /* true */
	struct sg_strlist allowed_uri_sans;
	bool allowed_uri_sans_template;
	struct sg_strlist allowed_other_sans;
	struct sg_strlist allowed_serial_numbers;
	struct sg_strlist allowed_user_ids;
	struct sg_strlist cn_validations;  /* ["email","hostname"] */
	bool require_cn;                   /* true */
	bool server_flag, client_flag;     /* true, true */
	bool code_signing_flag, email_protection_flag;
	struct sg_strlist key_usage;       /* DigitalSignature,KeyAgreement,KeyEncipherment */
	struct sg_strlist ext_key_usage;
	struct sg_strlist ext_key_usage_oids;
	char *key_type;                    /* "rsa" | "ec" | "ed25519" | "any" */
	int key_bits;                      /* resolved: rsa 2048, ec 256, ed25519 0 */
	int signature_bits;                /* 0 = auto */
	bool use_pss;
	bool use_csr_common_name, use_csr_sans; /* true, true */
	struct sg_strlist ou, organization, country, locality, province, street_address, postal_code;
	struct sg_strlist policy_identifiers;
	bool basic_constraints_valid_for_non_ca;
	int64_t not_before_duration;       /* 30 */
	char *not_after;                   /* RFC 3339 or NULL */
	bool generate_lease, no_store;
};

/* A role with Vault's defaults. */
struct role *role_new(const char *name);
void role_free(struct role *r);
struct role *role_dup(const struct role *r);

/*
 * Applies the fields present in a request body (loosely typed) to r and
 * validates the result (key_type/key_bits pairs, key_usage names, durations,
 * ttl <= max_ttl, not_after syntax...). POST = role_new + apply; PATCH =
 * stored role + apply. On error r may be partly changed: use a copy.
 */
int role_apply_json(struct role *r, const json_t *body, struct sg_err *err) SG_WUR;
/* Vault's read form: ttl, max_ttl and not_before_duration as integer seconds. */
json_t *role_encode(const struct role *r);
/* Stored form is the encoded form; this restores it (unknown fields ignored). */
struct role *role_decode(const char *name, const json_t *stored, struct sg_err *err) SG_WUR;

/* The names a request asks for, after CSR/JSON merging by the caller. */
struct role_names {
	const char *common_name;         /* NULL or "" when absent */
	struct sg_strlist dns;           /* DNS SANs */
	struct sg_strlist emails;        /* email SANs */
	struct sg_strlist ips;           /* textual IPv4/IPv6 */
	struct sg_strlist uris;
	struct sg_strlist other_sans;    /* "<oid>;UTF8:<value>" */
	struct sg_strlist user_ids;
	const char *subject_serial;      /* Subject serialNumber RDN, NULL when absent */
};
void role_names_clear(struct role_names *n);

/*
 * Checks every name against the role exactly as Vault does (bare, subdomain,
 * glob, wildcard, localhost, hostname syntax, IP, URI globs, other SANs,
 * user ids, subject serial numbers, require_cn, cn_validations). On denial
 * returns -1 with SG_ROLE_DENIED and a detail naming the offending value
 * and the rule, e.g. "common name 'x.evil.com' not allowed by this role".
 */
int role_check_names(const struct role *r, const struct role_names *n, struct sg_err *err) SG_WUR;

/*
 * Checks a public key's type ("rsa", "ec", "ed25519") and size (RSA modulus
 * bits, EC curve bits, 0 for ed25519) against the role: key_type must match
 * unless "any" (then RSA >= 2048, EC >= 224), key_bits is a minimum for RSA
 * and exact for EC. SG_KEY_DENIED with a detail on denial.
 */
int role_check_key(const struct role *r, const char *key_type, int key_bits, struct sg_err *err) SG_WUR;

/*
 * The validity in seconds: requested ttl (0 = none) or the role ttl or the
 * mount default, clamped to the role max_ttl or the mount max. *clamped is
 * set when the request asked for more than allowed (Vault warns, not fails).
 */
int64_t role_ttl(const struct role *r, int64_t requested, int64_t mount_default, int64_t mount_max,
                 bool *clamped);

/* True when s is a valid hostname (RFC 1123 labels, optional leading "*." wildcard label rules aside). */
bool role_hostname_valid(const char *s);

#endif
