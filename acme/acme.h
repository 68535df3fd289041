#ifndef SG_ACME_H
#define SG_ACME_H

/*
 * The ACME core (RFC 8555): JWS verification, nonces, accounts, orders,
 * authorizations, http-01, dns-01 and tls-alpn-01 validation, CAA, and
 * External Account Binding. Knows
 * nothing of HTTP routing: server/pki_acme.c translates requests into
 * these calls and renders problem documents. Objects are JSON records in
 * STORE_ACME under "<mount-id>/":
 *   acct/<id>        account {id,status,contact,jwk,thumbprint,directory,created}
 *   acctkey/<thumb>  account id (one account per key and mount)
 *   order/<id>       order {id,account,directory,role,status,identifiers,authzs,expires,...}
 *   authz/<id>       authorization with its challenges
 *   eab/<id>         EAB key {id,key (base64url),directory,created}
 *   config           config/acme
 */

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/jose.h"
#include "common/util.h"
#include "store/store.h"

#define ACME_MAX_JWS_BYTES (256u << 10)   /* a finalize with a large RSA CSR fits */
#define ACME_MAX_HEADER_BYTES (16u << 10) /* decoded protected header */
#define ACME_MAX_URL 2048
#define ACME_MAX_IDENTIFIERS 100          /* per order, as Let's Encrypt */
#define ACME_MAX_CONTACTS 10
#define ACME_MAX_CONTACT_LEN 256
#define ACME_ID_LEN 32                    /* base62 object ids */
#define ACME_TOKEN_BYTES 32
#define ACME_EAB_KEY_BYTES 32
#define ACME_ORDER_LIFETIME (24 * 3600)
#define ACME_HTTP01_TIMEOUT_S 8           /* whole validation, redirects included */
#define ACME_HTTP01_MAX_BODY 4096
#define ACME_HTTP01_MAX_REDIRS 10

/* ---------------- JWK and JWS ---------------- */

enum acme_alg { ACME_ALG_RS256 = 1, ACME_ALG_ES256, ACME_ALG_ES384, ACME_ALG_EDDSA };

/* A public key from a JWK (RSA >= 2048, EC P-256/P-384, OKP Ed25519). SG_ACME_BAD_PUBLIC_KEY otherwise. */
EVP_PKEY *acme_jwk_to_pkey(const json_t *jwk, struct sg_err *err) SG_WUR;
/* RFC 7638 thumbprint (SHA-256, base64url) of the required members only. Caller frees. */
char *acme_jwk_thumbprint(const json_t *jwk, struct sg_err *err) SG_WUR;
/* The JWK of a public key (RSA, EC P-256/384, Ed25519), its required members only. */
json_t *acme_pkey_to_jwk(const EVP_PKEY *k, struct sg_err *err) SG_WUR;

/* A parsed, not yet verified, flattened JWS (RFC 7515 7.2.2). */
struct acme_jws {
	json_t *header;             /* decoded protected header */
	enum acme_alg alg;
	const char *nonce, *url, *kid; /* borrowed from header; kid NULL when jwk */
	const json_t *jwk;          /* borrowed from header; NULL when kid */
	unsigned char *payload;     /* decoded payload ("" for POST-as-GET), NUL-terminated */
	size_t payload_len;
	char *signing_input;        /* protected "." payload, as received */
	unsigned char *sig;
	size_t sig_len;
};
void acme_jws_clear(struct acme_jws *j);

/*
 * Parses a flattened JWS object: exactly "protected", "payload" and
 * "signature" (RFC 8555 6.2: no unprotected header), base64url without
 * padding, a protected header of JSON without duplicate keys that names an
 * allowed alg (none and MACs are badSignatureAlgorithm), a nonce, a url and
 * exactly one of jwk and kid. The url must equal expected_url (RFC 8555
 * 6.4, SG_ACME_UNAUTHORIZED). Nonce checking is the caller's (acme_nonce_*),
 * after the signature.
 */
int acme_jws_parse(const json_t *body, const char *expected_url, struct acme_jws *out, struct sg_err *err) SG_WUR;
/* The inner JWS of keyChange (RFC 8555 7.3.5): as above, but no nonce and a jwk required. */
int acme_jws_parse_inner(const json_t *body, const char *expected_url, struct acme_jws *out,
                         struct sg_err *err) SG_WUR;
/* Verifies the signature with key; the key type must fit the alg. SG_ACME_MALFORMED on a bad signature. */
int acme_jws_verify(const struct acme_jws *j, EVP_PKEY *key, struct sg_err *err) SG_WUR;

/* ---------------- Nonces ---------------- */

/*
 * Stateless-verifiable nonces: base64url(node | counter | issued | HMAC
 * truncated). Any node with the key can tell a forged or stale nonce from
 * its own; the replay window (which counters were already used) is kept in
 * memory per node, in a bitmap over the last ACME_NONCE_WINDOW counters.
 * A nonce older than ACME_NONCE_TTL, older than the window, from another
 * node or already used is refused (badNonce). A restart makes a new key:
 * nonces do not survive it, as they should not.
 */
#define ACME_NONCE_WINDOW (1u << 20)
#define ACME_NONCE_TTL 3600
struct acme_nonces;
/* key NULL: a random key. node identifies this server among those sharing the key. */
struct acme_nonces *acme_nonces_new(const unsigned char key[32], uint8_t node);
void acme_nonces_free(struct acme_nonces *n);
/* A fresh nonce (base64url text, caller frees). */
char *acme_nonce_new(struct acme_nonces *n);
/* Consumes a nonce: 0 when valid and unused, -1 (SG_ACME_BAD_NONCE) otherwise. */
int acme_nonce_use(struct acme_nonces *n, const char *nonce, struct sg_err *err) SG_WUR;

/* ---------------- Configuration (config/acme) ---------------- */

enum acme_eab_policy { ACME_EAB_NOT_REQUIRED, ACME_EAB_NEW_ACCOUNT_REQUIRED, ACME_EAB_ALWAYS_REQUIRED };

struct acme_config {
	bool enabled;
	struct sg_strlist allowed_roles;   /* "*" = any */
	struct sg_strlist allowed_issuers; /* "*" = any; for issuer/:ref/... directories */
	char *default_directory_policy;    /* "forbid" or "role:<name>" */
	enum acme_eab_policy eab_policy;
	int64_t http01_port;               /* 80 */
	/*
	 * draft-ietf-acme-profiles: name -> {"role", "description"}; a newOrder
	 * "profile" issues under that role. Every role must be in allowed_roles.
	 */
	json_t *profiles;
	/* New orders per account / per identifier in a sliding hour; 0 = unlimited (ratelimit.c). */
	int64_t orders_per_account_per_hour;
	int64_t orders_per_identifier_per_hour;
	char *dns_resolver;                /* "ip:port" for validation lookups; "" = /etc/resolv.conf */
	int64_t tls_alpn01_port;           /* 443 */
	struct sg_strlist caa_identities;  /* issuer domain names for CAA (RFC 8659); empty = not checked */
	int64_t max_ttl;                   /* seconds: caps ACME certificates below the role's bounds */
};
#define ACME_DEFAULT_MAX_TTL ((int64_t)2160 * 3600) /* Vault's config/acme max_ttl default: 90 days */
#define ACME_MAX_TTL_LIMIT ((int64_t)100 * 365 * 86400)
void acme_config_init(struct acme_config *c);
void acme_config_clear(struct acme_config *c);
/* Absent record = defaults. */
int acme_config_get(struct store *st, const char *mount_id, struct acme_config *out, struct sg_err *err) SG_WUR;
/* Applies the fields present in body (loosely typed) over the stored config and stores it. */
int acme_config_set(struct store *st, const char *mount_id, const json_t *body, struct acme_config *out,
                    struct sg_err *err) SG_WUR;
json_t *acme_config_json(const struct acme_config *c);
const char *acme_eab_policy_name(enum acme_eab_policy p);

#define ACME_MAX_PROFILES 32
#define ACME_MAX_PROFILE_NAME 64
#define ACME_MAX_PROFILE_DESC 256
/* The profile's role (borrowed from cfg), or NULL when the profile is unknown. */
const char *acme_config_profile_role(const struct acme_config *c, const char *name);

/* ---------------- Records ---------------- */

/* A JSON record of STORE_ACME "<mount>/<kind>/<id>": 1 found, 0 absent, -1 error. */
int acme_rec_get(struct store *st, const char *mount_id, const char *kind, const char *id, json_t **out,
                 struct sg_err *err) SG_WUR;
void acme_rec_put(struct store_batch *b, const char *mount_id, const char *kind, const char *id, const json_t *rec);
void acme_rec_put_new(struct store_batch *b, const char *mount_id, const char *kind, const char *id,
                      const json_t *rec);
void acme_rec_del(struct store_batch *b, const char *mount_id, const char *kind, const char *id);
/* A random object id (ACME_ID_LEN base62 characters) into out[ACME_ID_LEN + 1]. */
void acme_new_id(char *out);
/* Ids are what acme_new_id makes (and what clients can send back in URLs). */
bool acme_id_valid(const char *s);

/* ---------------- Accounts (account.c) ---------------- */

/* The account id of a key thumbprint: 1 found (*id malloc'ed), 0 none, -1 error. */
int acme_account_by_key(struct store *st, const char *mount_id, const char *thumbprint, char **id,
                        struct sg_err *err) SG_WUR;
/*
 * Validates a newAccount/update contact list: at most ACME_MAX_CONTACTS
 * "mailto:" URLs (RFC 8555 7.3: unsupportedContact / invalidContact).
 */
int acme_contacts_check(const json_t *contact, struct sg_err *err) SG_WUR;
/*
 * Creates an account for jwk in directory: the record, the key index
 * (put_new, so two concurrent newAccounts with one key make one account)
 * and, when eab_id is not NULL, the deletion of the used EAB key.
 */
int acme_account_create(struct store *st, const char *mount_id, const char *directory, const json_t *jwk,
                        const char *thumbprint, const json_t *contact, const char *eab_id, json_t **out,
                        struct sg_err *err) SG_WUR;

/*
 * keyChange: replaces the account's key. The new key's index entry is
 * written with put_new, so a key already bound to another account fails
 * with SG_CONFLICT.
 */
int acme_account_rekey(struct store *st, const char *mount_id, json_t *account, const json_t *new_jwk,
                       const char *new_thumbprint, struct sg_err *err) SG_WUR;

/* ---------------- EAB (eab.c) ---------------- */

/* acme/new-eab: a new HS256 key bound to directory. *out is the stored record. */
int acme_eab_create(struct store *st, const char *mount_id, const char *directory, json_t **out,
                    struct sg_err *err) SG_WUR;
/*
 * Checks a newAccount externalAccountBinding (RFC 8555 7.3.4): a flattened
 * JWS, alg HS256, kid of a stored key bound to this directory, url equal to
 * the newAccount URL, no nonce, payload a JWK equal (by RFC 7638
 * thumbprint, not bytes) to the account key, valid MAC. *eab_id receives
 * the key id (malloc'ed). SG_ACME_UNAUTHORIZED / SG_ACME_MALFORMED.
 */
int acme_eab_verify(struct store *st, const char *mount_id, const char *directory, const json_t *eab,
                    const char *new_account_url, const char *account_thumbprint, char **eab_id,
                    struct sg_err *err) SG_WUR;

/* ---------------- Orders and authorizations (order.c, authz.c) ---------------- */

/*
 * Validates newOrder identifiers (dns and ip, RFC 8738; lower-cased,
 * deduplicated; a wildcard is "*." and a name) and creates the order and
 * one authorization per identifier: http-01, dns-01 and tls-alpn-01 for a
 * name, dns-01 only for a wildcard (whose authorization names the domain
 * without "*." and carries "wildcard": true), http-01 and tls-alpn-01
 * for an address. not_after (RFC 3339, checked by the caller; NULL
 * for the role's validity) is kept for finalize. check(arg, identifiers) refuses names the
 * directory's role does not allow before anything is stored.
 */
typedef int (*acme_names_check)(void *arg, const json_t *identifiers, struct sg_err *err);
int acme_order_create(struct store *st, const char *mount_id, const char *account, const char *directory,
                      const char *role, const json_t *identifiers, const char *not_after, acme_names_check check,
                      void *check_arg, json_t **order, struct sg_err *err) SG_WUR;
/* As acme_order_create; the members of extra (NULL: none), e.g. profile and replaces, are kept on the order. */
int acme_order_create_ex(struct store *st, const char *mount_id, const char *account, const char *directory,
                         const char *role, const json_t *identifiers, const char *not_after, const json_t *extra,
                         acme_names_check check, void *check_arg, json_t **order, struct sg_err *err) SG_WUR;
/*
 * The order with its status brought up to date from its authorizations
 * (pending -> ready when all are valid, invalid when one is, expiry).
 */
int acme_order_load(struct store *st, const char *mount_id, const char *id, json_t **out,
                    struct sg_err *err) SG_WUR;
/* The authorization with its status brought up to date (expiry). */
int acme_authz_load(struct store *st, const char *mount_id, const char *id, json_t **out,
                    struct sg_err *err) SG_WUR;

/* ---------------- DNS lookups for validation (dns.c) ---------------- */

#define ACME_DNS_TIMEOUT_S 3       /* per try of one query */
#define ACME_DNS_TRIES 2
#define ACME_DNS_BUDGET_S 10       /* all the queries of one lookup (CNAME links, CAA climb) */
#define ACME_DNS_MAX_CNAME 8       /* CNAME links followed in one lookup */
#define ACME_DNS_MAX_RRS 64        /* records of the asked type taken from one answer */
#define ACME_DNS_MAX_TXT 1024      /* bytes of one TXT record, its strings joined */
#define ACME_DNS_MAX_NAME 253
#define ACME_CAA_MAX_VALUE 512
#define ACME_CAA_MAX_IDENTITIES 16

/*
 * A resolver for validation lookups: "ip:port" or "[ipv6]:port" (port 53
 * when absent), or "" for the servers of /etc/resolv.conf. Recursion is
 * asked for, truncated UDP answers are retried over TCP, search domains
 * are never applied.
 */
struct acme_dns;
struct acme_dns *acme_dns_new(const char *resolver, struct sg_err *err) SG_WUR;
void acme_dns_free(struct acme_dns *d);
/* Checks a dns_resolver setting (config/acme): 0, or -1 with SG_BAD_REQUEST. */
int acme_dns_resolver_check(const char *resolver, struct sg_err *err) SG_WUR;
/*
 * The TXT records at name (each record's strings joined), CNAMEs followed
 * (at most ACME_DNS_MAX_CNAME links). 1 found, 0 none (NXDOMAIN or no
 * data), -1 with SG_ACME_DNS (timeout, SERVFAIL, REFUSED, a CNAME chain
 * too long).
 */
int acme_dns_txt(struct acme_dns *d, const char *name, struct sg_strlist *out, struct sg_err *err) SG_WUR;
/* The A and AAAA addresses of name as text, CNAMEs followed; as acme_dns_txt. */
int acme_dns_addrs(struct acme_dns *d, const char *name, struct sg_strlist *out, struct sg_err *err) SG_WUR;
/*
 * The values of the rrtype records (16 TXT, 1 A, 28 AAAA, 257 CAA as "flags
 * tag value") that a DNS message in wire form gives name, as one step of
 * a lookup reads them (CNAMEs inside the message followed). 1 found, 0
 * none, -1 with SG_ACME_DNS. The fuzzed entry point of the answer reader.
 */
int acme_dns_answer_parse(const unsigned char *wire, size_t len, const char *name, int rrtype,
                          struct sg_strlist *values, struct sg_err *err) SG_WUR;
/*
 * The addresses to connect to for host: itself when an IP literal; else
 * through resolver when set, through the system (getaddrinfo) when "".
 * 0 with at least one address, -1 with SG_ACME_DNS.
 */
int acme_dns_host_addrs(const char *resolver, const char *host, struct sg_strlist *out, struct sg_err *err) SG_WUR;

struct acme_caa_rr {
	unsigned flags;
	char *tag;                 /* lower-cased */
	char *value;
};
struct acme_caa_set {
	struct acme_caa_rr *rr;
	size_t n;
	char *owner;               /* the name the records were found at */
};
void acme_caa_set_clear(struct acme_caa_set *s);
/*
 * RFC 8659 3: the Relevant RRset of name, climbing from name to its
 * parents up to, not including, the root; an empty set when no name has
 * CAA records. -1 with SG_ACME_DNS when a lookup fails.
 */
int acme_dns_caa(struct acme_dns *d, const char *name, struct acme_caa_set *out, struct sg_err *err) SG_WUR;
/*
 * RFC 8659 4: whether set lets one of identities issue for name (issuewild
 * for a wildcard, falling back to issue). 0 permitted, -1 with SG_ACME_CAA.
 */
int acme_caa_check(const struct acme_caa_set *set, const struct sg_strlist *identities, const char *name,
                   bool wildcard, struct sg_err *err) SG_WUR;

/* ---------------- Challenges (challenge.c, tlsalpn.c) ---------------- */

/*
 * RFC 8555 8.3 http-01: GET http://<identifier>:<port>/.well-known/acme-challenge/<token>
 * with libcurl, redirects followed (http/https only, at most
 * ACME_HTTP01_MAX_REDIRS), ACME_HTTP01_TIMEOUT_S in all, body capped; the
 * body with trailing whitespace removed must equal key_authz.
 * 0 valid; -1 with SG_ACME_CONNECTION or SG_ACME_INCORRECT_RESPONSE (an
 * HTTP error status) when a retry may succeed; -2 with
 * SG_ACME_INCORRECT_RESPONSE when the target answered with the wrong body.
 */
int acme_http01_validate(const char *resolver, const char *host, int64_t port, const char *token,
                         const char *key_authz, struct sg_err *err) SG_WUR;
/*
 * RFC 8555 8.4 dns-01: a TXT record at _acme-challenge.<domain> (CNAMEs
 * followed) equal to base64url(SHA-256(key_authz)). 0 valid; -1 with
 * SG_ACME_DNS (lookup failed) or SG_ACME_UNAUTHORIZED (no TXT record yet)
 * when a retry may succeed; -2 with SG_ACME_INCORRECT_RESPONSE when TXT
 * records exist and none matches.
 */
int acme_dns01_validate(const char *resolver, const char *domain, const char *key_authz, struct sg_err *err) SG_WUR;
/*
 * RFC 8737 tls-alpn-01 (RFC 8738 6 for an IP identifier): a TLS 1.2+
 * handshake with <identifier>:<port>, SNI the name (the reverse-mapping
 * name for an address), ALPN acme-tls/1 only. The certificate must hold
 * exactly one subjectAltName, the identifier, and a critical
 * id-pe-acmeIdentifier extension with SHA-256(key_authz). 0 valid; -1
 * with SG_ACME_CONNECTION, SG_ACME_TLS or SG_ACME_DNS when a retry may
 * succeed; -2 with SG_ACME_INCORRECT_RESPONSE when the certificate is wrong.
 */
#define ACME_TLSALPN01_TIMEOUT_S 8
int acme_tlsalpn01_validate(const char *resolver, const char *identifier, bool is_ip, int64_t port,
                            const char *key_authz, struct sg_err *err) SG_WUR;
/*
 * The CAA check of one identifier before its authorization becomes valid
 * (RFC 8659; the authorization is reused at finalize within the order's
 * lifetime). 0 permitted; -1 with SG_ACME_DNS; -2 with SG_ACME_CAA.
 */
int acme_caa_validate(const char *resolver, const char *domain, bool wildcard, const struct sg_strlist *identities,
                      struct sg_err *err) SG_WUR;
/*
 * Validation runs on a small pool of threads so that a slow target does not
 * hold a request: a challenge POST waits up to ACME_VALIDATE_WAIT_MS and
 * answers with the outcome when it is known (as step-ca does: lego takes
 * 0.11 s per certificate there, 6.1 s against Pebble's asynchronous
 * validation), else with the challenge `processing` (the handler adds
 * Retry-After). A failed attempt is retried ACME_VALIDATE_ATTEMPTS times,
 * ACME_VALIDATE_RETRY_S apart, before the challenge becomes invalid
 * (RFC 8555 8.2); a wrong key authorization is final at once. A challenge left `processing` by a stopped server is
 * validated again when a client responds to it after ACME_PROCESSING_STALE_S.
 */
#define ACME_VALIDATE_WAIT_MS 3000
#define ACME_VALIDATE_ATTEMPTS 3
#define ACME_VALIDATE_RETRY_S 2
#define ACME_VALIDATOR_THREADS 16
#define ACME_VALIDATOR_QUEUE_MAX 4096
/* One attempt at worst: the address lookup, the fetch or handshake, the CAA climb. */
#define ACME_VALIDATE_ATTEMPT_MAX_S (2 * ACME_DNS_BUDGET_S + ACME_HTTP01_TIMEOUT_S)
#define ACME_PROCESSING_STALE_S (ACME_VALIDATE_ATTEMPTS * (ACME_VALIDATE_ATTEMPT_MAX_S + ACME_VALIDATE_RETRY_S) + 30)

struct acme_validator;
struct acme_validator *acme_validator_new(struct store *st, unsigned threads);
/* Stops the threads (an attempt in flight finishes; queued jobs are dropped). NULL-safe. */
void acme_validator_free(struct acme_validator *v);

/*
 * Responds to challenge `type` of authorization `authz_id` (RFC 8555
 * 7.5.1): marks it processing, queues its validation and waits as above.
 * A challenge that is no longer pending is returned unchanged. *authz
 * receives the authorization as it stands when the call returns.
 * A full queue is SG_UNAVAILABLE (503: cert-manager requeues on 5xx, while a
 * 4xx would fail its order).
 */
/* What a validation needs from config/acme; borrowed, copied by acme_challenge_respond. */
struct acme_validation_cfg {
	int64_t http01_port;
	int64_t tls_alpn01_port;
	const char *dns_resolver;                    /* "" = the system's */
	const struct sg_strlist *caa_identities;     /* NULL or empty = CAA not checked */
};
/* The validation settings of a config (borrowing from it). */
void acme_validation_cfg_of(const struct acme_config *c, struct acme_validation_cfg *out);
int acme_challenge_respond(struct acme_validator *v, const char *mount_id, const char *authz_id, const char *type,
                           const char *thumbprint, const struct acme_validation_cfg *vcfg, json_t **authz,
                           struct sg_err *err) SG_WUR;

/* ---------------- ARI, RFC 9773 (ari.c) ---------------- */

#define ACME_CERTID_MAX 256        /* text of a certID: base64url AKI "." base64url serial */
#define ACME_AKI_MAX 64
#define ACME_SERIAL_MAX 20         /* RFC 5280 4.1.2.2: at most 20 octets */
#define ACME_ARI_RETRY_S (6 * 3600)

/*
 * A certID (RFC 9773 4.1): base64url(AKI keyIdentifier) "." base64url(the
 * serial's DER INTEGER content octets). *aki receives the key identifier
 * (malloc'ed), *serial the serial in colon hex as the store keys it.
 * SG_ACME_MALFORMED when malformed (the serial must be positive and
 * minimally encoded).
 */
int acme_certid_parse(const char *s, unsigned char **aki, size_t *aki_len, char **serial, struct sg_err *err) SG_WUR;
/* The certID of a certificate (with an AKI keyIdentifier), or NULL. Caller frees. */
char *acme_certid_of(X509 *x);
/* The certificate's AKI keyIdentifier equals aki. */
bool acme_certid_aki_matches(X509 *x, const unsigned char *aki, size_t aki_len);

/*
 * The suggested renewal window (RFC 9773 4.2) of a certificate valid
 * [not_before, not_after]: around two thirds of its lifetime, ending
 * before expiry; for a revoked certificate a window in the past, so that
 * clients renew at once. *retry_after: when to ask again (ACME_ARI_RETRY_S,
 * less when the window is near).
 */
void acme_ari_window(int64_t not_before, int64_t not_after, bool revoked, int64_t now, int64_t *start, int64_t *end,
                     int64_t *retry_after);

/* ---------------- Rate limits (ratelimit.c) ---------------- */

/*
 * Request counters kept in memory per process, one table for all mounts:
 * a sliding window estimated from the counts of the current and previous
 * fixed windows (so a key costs a few words, whatever its limit). The
 * table has ACME_RL_SLOTS entries; when a probe finds no free or stale
 * slot the least recently used one of the probe is reused, so memory is
 * bounded and an attacker flooding keys can only make limits forget, never
 * refuse others. Several nodes behind one name would each count their own
 * share: a shared table (the store or a peer protocol) is future work.
 */
#define ACME_RL_SLOTS (1u << 16)
#define ACME_RL_PROBE 16
#define ACME_RL_MAX_KEYS (ACME_MAX_IDENTIFIERS + 1)
#define ACME_RL_MAX_LIMIT 10000000

struct acme_ratelimit;
struct acme_ratelimit *acme_ratelimit_new(int64_t window_s);
void acme_ratelimit_free(struct acme_ratelimit *rl);
/*
 * Takes one unit of each key (limits[i] > 0; 0 = unlimited, skipped) when
 * every one has room, atomically; nothing is taken otherwise. Returns 0
 * when taken, 1 when limited with *retry_after the seconds until the
 * fullest key has room again (>= 1).
 */
int acme_ratelimit_take(struct acme_ratelimit *rl, const char *const *keys, const int64_t *limits, size_t n,
                        int64_t now, int64_t *retry_after);

#endif
