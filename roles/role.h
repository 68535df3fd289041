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
#define ROLE_MAX_NAME_BYTES 2048 /* cap on one requested name (CN, SAN, user id, serial) */

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
/* Vault's role-name rule (framework.GenericNameRegex): [A-Za-z0-9_] at both ends, [A-Za-z0-9_.-] inside. */
bool role_name_valid(const char *name);

/*
 * Applies the fields present in a request body (loosely typed) to r and
 * validates the result (key_type/key_bits pairs, key_usage names, durations,
 * ttl <= max_ttl, not_after syntax...). POST = role_new + apply; PATCH =
 * stored role + apply. On error r may be partly changed: use a copy.
 */
int role_apply_json(struct role *r, const json_t *body, struct sg_err *err) SG_WUR;
/*
 * As role_apply_json, and appends Vault's warnings (no_store wins over
 * generate_lease; generate_lease discouraged) to warnings when not NULL.
 */
int role_apply_json_warn(struct role *r, const json_t *body, struct sg_strlist *warnings,
                         struct sg_err *err) SG_WUR;
/* Vault's read form: ttl, max_ttl and not_before_duration as integer seconds. */
json_t *role_encode(const struct role *r);
/* Stored form is the encoded form; this restores it (unknown fields ignored). */
struct role *role_decode(const char *name, const json_t *stored, struct sg_err *err) SG_WUR;

/*
 * The names a request asks for, after CSR/JSON merging by the caller. The
 * struct owns every string in it, common_name and subject_serial included
 * (set them with sg_xstrdup); role_names_clear frees them all.
 */
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
void role_names_init(struct role_names *n);
void role_names_clear(struct role_names *n);

/*
 * Checks every name against the role as Vault does (bare, subdomain, glob,
 * wildcard, localhost, hostname syntax, IP, URI globs, other SANs, user
 * ids, subject serial numbers, require_cn, cn_validations), in Vault's
 * order: CN, serial number, DNS SANs, email SANs, other SANs, IPs, URIs,
 * user ids. On denial returns -1 with SG_ROLE_DENIED and a detail naming
 * the value, the role and the rule, e.g. "subject alternative name
 * 'x.evil.com' not allowed by role 'web': no match in allowed_domains ...".
 * Malformed values (an IP that does not parse, an other SAN not in
 * "<oid>;UTF8:<value>" form, a URI with control characters) and more than
 * ROLE_MAX_SANS names or a name over ROLE_MAX_NAME_BYTES are SG_BAD_REQUEST.
 * The few places where this is stricter than Vault are listed at the top of
 * roles/role_check.c.
 */
int role_check_names(const struct role *r, const struct role_names *n, struct sg_err *err) SG_WUR;

/*
 * Checks a public key's type ("rsa", "ec", "ed25519") and size (RSA modulus
 * bits, EC curve bits, 0 for ed25519) against the role: key_type must match
 * unless "any" (then RSA >= 2048, EC >= 224), key_bits is a minimum for RSA
 * and EC alike (Vault's signCert: a P-384 key passes an ec/256 role), and RSA
 * is never below 2048. Which EC curves are acceptable at all (NIST P-curves
 * only) is the CSR parser's business. SG_KEY_DENIED with a detail on denial.
 */
int role_check_key(const struct role *r, const char *key_type, int key_bits, struct sg_err *err) SG_WUR;

/*
 * The validity in seconds: requested ttl (0 = none) or the role ttl or the
 * mount default, clamped to the role max_ttl or the mount max. *clamped is
 * set when the request asked for more than allowed (Vault warns, not fails).
 */
int64_t role_ttl(const struct role *r, int64_t requested, int64_t mount_default, int64_t mount_max,
                 bool *clamped);

/*
 * True when s is a valid hostname as Vault tests it before putting a name in
 * a DNS SAN: RFC 1123 labels of 1-63 LDH characters (no leading or trailing
 * hyphen), at most 253 characters, one optional trailing dot, and an
 * optional RFC 6125 6.4.3 wildcard left-most label ("*", "*x", "x*", "x*y").
 * ASCII only: internationalised names must arrive as A-labels (xn--).
 */
bool role_hostname_valid(const char *s);

/* True when s is a dotted OID: at least two numeric arcs, first 0-2, second < 40 under 0 and 1. */
bool role_oid_valid(const char *s);

/* ---- Usages, for the certificate builder ---- */

/* RFC 5280 4.2.1.3 KeyUsage, as (1u << bit number). */
enum {
	ROLE_KU_DIGITAL_SIGNATURE = 1u << 0,
	ROLE_KU_CONTENT_COMMITMENT = 1u << 1,
	ROLE_KU_KEY_ENCIPHERMENT = 1u << 2,
	ROLE_KU_DATA_ENCIPHERMENT = 1u << 3,
	ROLE_KU_KEY_AGREEMENT = 1u << 4,
	ROLE_KU_CERT_SIGN = 1u << 5,
	ROLE_KU_CRL_SIGN = 1u << 6,
	ROLE_KU_ENCIPHER_ONLY = 1u << 7,
	ROLE_KU_DECIPHER_ONLY = 1u << 8,
};
/* Go KeyUsage names without the prefix, case-insensitive, spaces trimmed; unknown names are ignored as Vault does. */
unsigned role_key_usage_bits(const struct sg_strlist *names);

#define ROLE_EKU_COUNT 14
/*
 * Extended key usages as a mask: bit i stands for role_eku_oid(i), in Go's
 * order (Any, ServerAuth, ClientAuth, CodeSigning, EmailProtection,
 * IPSECEndSystem, IPSECTunnel, IPSECUser, TimeStamping, OCSPSigning,
 * MicrosoftServerGatedCrypto, NetscapeServerGatedCrypto,
 * MicrosoftCommercialCodeSigning, MicrosoftKernelCodeSigning).
 */
unsigned role_eku_bits_names(const struct sg_strlist *names);
/* The role's flags (server/client/code_signing/email_protection) plus its ext_key_usage names. */
unsigned role_eku_bits(const struct role *r);
/* Dotted OID of bit i, NULL when i >= ROLE_EKU_COUNT. */
const char *role_eku_oid(unsigned i);

/*
 * One policy_identifiers entry: a dotted OID, or Vault's JSON form
 * {"oid":"1.2.3","cps":"https://...","notice":"..."} (cps and notice optional).
 */
struct role_policy {
	char *oid, *cps, *notice;
};
int role_policy_parse(const char *entry, struct role_policy *out, struct sg_err *err) SG_WUR;
void role_policy_clear(struct role_policy *p);

#endif
