#ifndef SG_CA_H
#define SG_CA_H

/*
 * The CA core: keys, issuers, the signer, certificate profiles, serials,
 * pre-issuance lint, the one issuance function (DESIGN.md rule 1) and
 * revocation (rule 3). Knows nothing of HTTP, Vault's JSON or ACME: the
 * server translates wire formats into these structs and back.
 *
 * Storage layout (all keys prefixed "<mount-id>/"):
 *   STORE_KEYS     <mount>/<key-id>      key record, private key AES-256-GCM under the KEK
 *   STORE_ISSUERS  <mount>/<issuer-id>   issuer record (cert DER, name, key id, behaviour, usage, AIA)
 *   STORE_CONFIG   <mount>/issuers       {default, default_follows_latest_issuer}
 *   STORE_CONFIG   <mount>/keys          {default}
 *   STORE_CONFIG   <mount>/urls          AIA/CRL/OCSP URLs
 *   STORE_CONFIG   <mount>/cluster       {path, aia_path} for AIA templating
 *   STORE_CERTS    <mount>/<serial-hex>  certificate record (DER, issuer id, role, owner, not_after)
 *   STORE_REVOKED  <mount>/<serial-hex>  revocation record (time, reason, issuer id, invalidity date)
 * <serial-hex> is lower-case hex pairs joined by hyphens ("3a-0f-..."), as
 * Vault stores them, of the serial's minimal positive magnitude.
 */

#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/util.h"
#include "roles/role.h"
#include "store/store.h"

#define CA_KEK_BYTES 32
#define CA_MAX_SERIAL_BYTES 20  /* RFC 5280 4.1.2.2 */
#define CA_MAX_CSR_BYTES (64u << 10)
#define CA_MAX_BUNDLE_BYTES (1u << 20)
#define CA_MAX_CHAIN 16
#define CA_MAX_ISSUERS_PER_MOUNT 1024

struct ca;

/* A mount as the CA sees it: the store prefix and the mount's TTL bounds. */
struct ca_mount {
	const char *id;        /* mount UUID: the store key prefix */
	const char *path;      /* "pki", "pki_int", "a/b": for lease ids and messages */
	int64_t default_ttl;   /* seconds, 768h unless tuned */
	int64_t max_ttl;       /* seconds, 768h unless tuned */
};

/* The KEK is copied; the caller wipes its own copy. */
int ca_new(struct store *st, const unsigned char kek[CA_KEK_BYTES], struct ca **out, struct sg_err *err) SG_WUR;
void ca_free(struct ca *ca);
/* Drops cached issuers of a mount (after the mount is deleted). */
void ca_mount_forget(struct ca *ca, const char *mount_id);
/* Removes every record of a mount (sys/mounts DELETE): keys, issuers, roles, certs, revoked, config. */
int ca_mount_purge(struct ca *ca, const struct ca_mount *m, struct sg_err *err) SG_WUR;

/* ---------------- Keys ---------------- */

enum ca_key_type { CA_KEY_RSA, CA_KEY_EC, CA_KEY_ED25519 };
struct ca_keyspec {
	enum ca_key_type type;
	int bits; /* RSA 2048/3072/4096, EC 256/384, ed25519 0 */
};
/* "rsa"|"ec"|"ed25519" and Vault's key_bits (0 = default). SG_BAD_REQUEST otherwise. */
int ca_keyspec_parse(const char *type, int64_t bits, struct ca_keyspec *out, struct sg_err *err) SG_WUR;
EVP_PKEY *ca_key_generate(const struct ca_keyspec *spec, struct sg_err *err) SG_WUR;
/* "rsa"/"ec"/"ed25519" and bits of a public key; -1 (SG_KEY_DENIED) for anything else. */
int ca_key_describe(const EVP_PKEY *k, const char **type, int *bits, struct sg_err *err) SG_WUR;
/* PEM of a private key: pkcs8 ("BEGIN PRIVATE KEY") or the traditional form (PKCS#1 / SEC1). */
char *ca_key_to_pem(const EVP_PKEY *k, bool pkcs8, struct sg_err *err) SG_WUR;

struct ca_key_info {
	char id[37];
	char *name;
	char *type;   /* "rsa" | "ec" | "ed25519" */
	int bits;
};
void ca_key_info_clear(struct ca_key_info *k);
int ca_key_list(struct ca *ca, const struct ca_mount *m, struct ca_key_info **out, size_t *n,
                struct sg_err *err) SG_WUR;
int ca_key_get(struct ca *ca, const struct ca_mount *m, const char *ref, struct ca_key_info *out,
               struct sg_err *err) SG_WUR;
int ca_key_rename(struct ca *ca, const struct ca_mount *m, const char *ref, const char *name,
                  struct sg_err *err) SG_WUR;
/* Refused (SG_BAD_REQUEST) while an issuer uses the key. */
int ca_key_delete(struct ca *ca, const struct ca_mount *m, const char *ref, struct sg_err *err) SG_WUR;
/*
 * keys/generate/:type: a new stored key. name may be NULL. When pem_out is
 * not NULL (exported) it receives the private key PEM (wipe and free it).
 */
int ca_key_create(struct ca *ca, const struct ca_mount *m, const struct ca_keyspec *spec, const char *name,
                  bool pkcs8, struct ca_key_info *out, char **pem_out, struct sg_err *err) SG_WUR;
/* keys/import: one unencrypted private key PEM; an already stored key is reported, not duplicated. */
int ca_key_import(struct ca *ca, const struct ca_mount *m, const char *pem, size_t len, const char *name,
                  struct ca_key_info *out, bool *existed, struct sg_err *err) SG_WUR;
/* config/keys: the default key id ("" when none). */
int ca_keys_default_get(struct ca *ca, const struct ca_mount *m, char out[37], struct sg_err *err) SG_WUR;
int ca_keys_default_set(struct ca *ca, const struct ca_mount *m, const char *ref, struct sg_err *err) SG_WUR;

/* ---------------- Issuers ---------------- */

enum ca_not_after_behavior { CA_NA_ERR, CA_NA_TRUNCATE, CA_NA_PERMIT };

struct ca_urls {
	struct sg_strlist issuing_certificates, crl_distribution_points, delta_crl_distribution_points,
	    ocsp_servers;
	bool enable_templating;
};
void ca_urls_clear(struct ca_urls *u);

/* A read-only snapshot of an issuer (the key stays behind the signer). */
struct ca_issuer_info {
	char id[37];
	char *name;
	char key_id[37];       /* "" when the key is not in this mount */
	X509 *cert;
	STACK_OF(X509) *chain; /* the issuer first, then its parents as far as the mount knows */
	enum ca_not_after_behavior leaf_not_after_behavior;
	struct sg_strlist usage; /* read-only,issuing-certificates,crl-signing,ocsp-signing */
	struct sg_strlist manual_chain;
	struct ca_urls urls;   /* per-issuer AIA overrides */
	bool revoked;
	int64_t revocation_time;
	bool is_default;
};
void ca_issuer_info_clear(struct ca_issuer_info *i);

/* ref is an issuer id, a name, or "default". SG_UNKNOWN_ISSUER when absent. */
int ca_issuer_get(struct ca *ca, const struct ca_mount *m, const char *ref, struct ca_issuer_info *out,
                  struct sg_err *err) SG_WUR;
int ca_issuer_list(struct ca *ca, const struct ca_mount *m, struct ca_issuer_info **out, size_t *n,
                   struct sg_err *err) SG_WUR;
/* Updates name, behaviour, usage, manual chain and URLs from `in` (all fields are written). */
int ca_issuer_update(struct ca *ca, const struct ca_mount *m, const char *ref, const struct ca_issuer_info *in,
                     struct sg_err *err) SG_WUR;
int ca_issuer_delete(struct ca *ca, const struct ca_mount *m, const char *ref, struct sg_err *err) SG_WUR;
int ca_issuer_set_default(struct ca *ca, const struct ca_mount *m, const char *ref, struct sg_err *err) SG_WUR;
/* DELETE pki/root: every issuer and key of the mount. */
int ca_issuers_delete_all(struct ca *ca, const struct ca_mount *m, struct sg_err *err) SG_WUR;
/* config/issuers. */
struct ca_issuers_config {
	char default_id[37];            /* "" when none */
	bool default_follows_latest_issuer;
};
int ca_issuers_config_get(struct ca *ca, const struct ca_mount *m, struct ca_issuers_config *out,
                          struct sg_err *err) SG_WUR;
/* default_ref NULL keeps the current default. */
int ca_issuers_config_set(struct ca *ca, const struct ca_mount *m, const char *default_ref,
                          bool default_follows_latest_issuer, struct sg_err *err) SG_WUR;
/*
 * issuer/:ref/revoke: marks the issuer revoked (it stops issuing), records
 * its serial as revoked under its parent in the mount (or itself for a
 * root) and runs the revoke hook. Revoking twice keeps the first time.
 */
int ca_issuer_revoke(struct ca *ca, const struct ca_mount *m, const char *ref, struct ca_issuer_info *out,
                     struct sg_err *err) SG_WUR;

/* Subject and extension parameters shared by root generation, intermediate CSRs and sign-intermediate. */
struct ca_ca_params {
	const char *common_name;
	struct sg_strlist alt_names, ip_sans, uri_sans, other_sans;
	struct sg_strlist ou, organization, country, locality, province, street_address, postal_code;
	const char *serial_number;     /* Subject serialNumber RDN */
	int64_t ttl;                   /* 0 = mount default */
	const char *not_after;         /* RFC 3339 or NULL */
	int64_t not_before_duration;   /* -1 = 30s default */
	int max_path_length;           /* -1 = unlimited */
	bool exclude_cn_from_sans;
	struct sg_strlist permitted_dns_domains;
	struct ca_keyspec key;         /* for new keys */
	const char *key_ref;           /* "existing": use this key */
	const char *issuer_name, *key_name;
	int signature_bits;
	bool use_pss;
	bool use_csr_values;           /* sign-intermediate */
	bool exported;                 /* return the private key */
	bool private_key_pkcs8;
};
void ca_ca_params_init(struct ca_ca_params *p);
void ca_ca_params_clear(struct ca_ca_params *p);

struct ca_gen_result {
	X509 *cert;                    /* root: the certificate */
	X509_REQ *csr;                 /* intermediate: the CSR */
	char issuer_id[37], key_id[37];
	char *issuer_name, *key_name;
	char *serial;                  /* colon hex */
	int64_t expiration;
	char *private_key_pem;         /* only when exported; wiped by clear */
	char *private_key_type;
	struct sg_strlist warnings;    /* clamped TTL... */
};
void ca_gen_result_clear(struct ca_gen_result *r);

int ca_root_generate(struct ca *ca, const struct ca_mount *m, const struct ca_ca_params *p,
                     struct ca_gen_result *res, struct sg_err *err) SG_WUR;
int ca_intermediate_generate(struct ca *ca, const struct ca_mount *m, const struct ca_ca_params *p,
                             struct ca_gen_result *res, struct sg_err *err) SG_WUR;

struct ca_import_result {
	struct sg_strlist imported_issuers, imported_keys, existing_issuers, existing_keys;
	struct sg_strlist mapping_issuers, mapping_keys; /* parallel: issuer id -> key id ("" if none) */
};
void ca_import_result_clear(struct ca_import_result *r);
/*
 * Imports PEM certificates (and, when allow_keys, unencrypted private keys):
 * intermediate/set-signed, config/ca, issuers/import/{bundle,cert}. A CA
 * certificate becomes an issuer, linked to its key when the mount has it;
 * duplicates are reported as existing. The first issuer becomes the default
 * when none is set.
 */
int ca_import_pem(struct ca *ca, const struct ca_mount *m, const char *pem, size_t len, bool allow_keys,
                  struct ca_import_result *res, struct sg_err *err) SG_WUR;

int ca_urls_get(struct ca *ca, const struct ca_mount *m, struct ca_urls *out, struct sg_err *err) SG_WUR;
int ca_urls_set(struct ca *ca, const struct ca_mount *m, const struct ca_urls *in, struct sg_err *err) SG_WUR;

/* config/cluster: the values of {{cluster_path}} and {{cluster_aia_path}} in templated AIA URLs. */
struct ca_cluster {
	char *path, *aia_path;          /* NULL or "" when unset */
};
void ca_cluster_clear(struct ca_cluster *c);
int ca_cluster_get(struct ca *ca, const struct ca_mount *m, struct ca_cluster *out, struct sg_err *err) SG_WUR;
int ca_cluster_set(struct ca *ca, const struct ca_mount *m, const struct ca_cluster *in, struct sg_err *err) SG_WUR;

/* ---------------- Signer (DESIGN.md rule 8) ---------------- */

/*
 * Only the signer holds private keys. Today the key lives in process; the
 * interface is per object (certificate, CSR, CRL, OCSP response) so that a
 * PKCS#11 token or a signer process can replace it without touching callers.
 * Digest: P-256 SHA-256, P-384 SHA-384, P-521 SHA-512, RSA SHA-256 (or
 * signature_bits 256/384/512, RSA-PSS when use_pss), Ed25519 none.
 */
struct ca_signer;
struct ca_sig_params {
	int signature_bits;             /* 0 = from the key */
	bool use_pss;                   /* RSA only */
};
/*
 * A reference on an issuer's signer (SG_BAD_REQUEST when the mount lacks
 * the issuer's key) plus, when info is not NULL, a snapshot of the issuer.
 */
int ca_issuer_signer_get(struct ca *ca, const struct ca_mount *m, const char *ref, struct ca_signer **out,
                         struct ca_issuer_info *info, struct sg_err *err) SG_WUR;
void ca_signer_release(struct ca_signer *s);
const EVP_PKEY *ca_signer_get0_pubkey(const struct ca_signer *s);
int ca_signer_sign_x509(struct ca_signer *s, X509 *x, const struct ca_sig_params *p, struct sg_err *err) SG_WUR;
int ca_signer_sign_req(struct ca_signer *s, X509_REQ *r, const struct ca_sig_params *p,
                       struct sg_err *err) SG_WUR;
int ca_signer_sign_crl(struct ca_signer *s, X509_CRL *c, const struct ca_sig_params *p,
                       struct sg_err *err) SG_WUR;
/* OCSP_basic_sign semantics: cert is the responder certificate, certs extra certificates to include. */
int ca_signer_sign_ocsp(struct ca_signer *s, OCSP_BASICRESP *b, X509 *cert, STACK_OF(X509) *certs,
                        unsigned long flags, struct sg_err *err) SG_WUR;
/*
 * Signs DER the caller encoded itself: a CRL's TBSCertList streamed entry
 * by entry (crl/), too large to build as OpenSSL objects. *alg receives the
 * DER AlgorithmIdentifier of the signature, which must also appear inside
 * tbs: call once with tbs NULL to learn it. With tbs, *sig receives the
 * signature value (the BIT STRING's content). Free both with OPENSSL_free.
 */
int ca_signer_sign_der(struct ca_signer *s, const unsigned char *tbs, size_t len, const struct ca_sig_params *p,
                       unsigned char **alg, size_t *alg_len, unsigned char **sig, size_t *sig_len,
                       struct sg_err *err) SG_WUR;
/*
 * A signer holding a fresh P-256 key that is never stored: the delegated
 * OCSP responder keys of crl/ocsp.c (RFC 6960 4.2.2.2), replaced with their
 * short-lived certificates, so the private half never leaves ca/.
 */
struct ca_signer *ca_signer_generate_ephemeral(struct sg_err *err) SG_WUR;

/* ---------------- CSRs ---------------- */

/* PEM ("CERTIFICATE REQUEST" / "NEW CERTIFICATE REQUEST") or DER, at most CA_MAX_CSR_BYTES, no trailing bytes; the signature is verified. */
X509_REQ *ca_csr_parse(const unsigned char *buf, size_t len, struct sg_err *err) SG_WUR;
/* CN and SANs of a CSR, as role_names (strings copied). */
int ca_csr_names(X509_REQ *csr, struct role_names *out, struct sg_err *err) SG_WUR;

/* ---------------- Pre-issuance lint ---------------- */

/*
 * RFC 5280 checks of a fully built certificate before it is signed
 * (signature fields may be empty): serial positive and at most 20 octets,
 * SAN present when the subject is empty and critical then, CN among the
 * SANs when both set, no empty and no duplicate extensions, KU/EKU
 * consistent with BasicConstraints (keyCertSign only with CA:true, CA:true
 * needs keyCertSign), validity inside the issuer's, key size minimums
 * (RSA >= 2048, EC P-256/P-384/P-521, Ed25519), SKI present, AKI present
 * unless self-signed. issuer may be NULL for a self-signed root.
 * SG_LINT_FAILED with a detail naming the rule (and RFC section).
 */
int ca_lint_check(X509 *cert, X509 *issuer, struct sg_err *err) SG_WUR;

/* ---------------- Issuance: the one function ---------------- */

enum ca_req_kind {
	CA_REQ_ISSUE,            /* server-generated key */
	CA_REQ_SIGN,             /* CSR under a role */
	CA_REQ_SIGN_VERBATIM,    /* everything from the CSR; role (optional) bounds TTL and storage */
};

struct ca_request {
	enum ca_req_kind kind;
	const char *issuer_ref;     /* NULL: the role's issuer_ref */
	X509_REQ *csr;              /* sign, sign-verbatim: borrowed, signature already verified */
	const char *common_name;
	struct sg_strlist alt_names, ip_sans, uri_sans, other_sans, user_ids;
	const char *serial_number;  /* Subject serialNumber RDN */
	int64_t ttl;                /* 0 = unset */
	const char *not_after;      /* RFC 3339, NULL = unset; exclusive with ttl */
	bool exclude_cn_from_sans;
	const char *key_type;       /* issue with role key_type "any" */
	int key_bits;
	bool force_truncate;        /* ACME: leaf_not_after_behavior err becomes truncate */
	struct sg_strlist key_usage, ext_key_usage; /* sign-verbatim only */
	const char *owner;          /* token accessor / ACME account that owns the certificate */
};
void ca_request_init(struct ca_request *r);
void ca_request_clear(struct ca_request *r);

struct ca_result {
	X509 *cert;
	char *serial;               /* colon hex */
	STACK_OF(X509) *chain;      /* issuer first, then parents (root included when known) */
	EVP_PKEY *key;              /* issue only; free with EVP_PKEY_free */
	struct sg_strlist warnings; /* clamped TTL, ignored fields... */
	int64_t expiration;         /* NotAfter, unix seconds */
	char issuer_id[37];
	unsigned char *der;         /* cert's DER as stored (NULL with no_store): renderers need not encode it again */
	size_t der_len;
};
void ca_result_clear(struct ca_result *r);

/*
 * The one issuance path. Checks the request against the role (names, key,
 * TTL), computes the validity, builds the certificate from the role's
 * profile, lints it (RFC 5280), signs it behind the signer, and stores the
 * certificate (unless no_store) in one durable write with `extra` (a lease,
 * an ACME order update; may be NULL) before returning. role may be NULL only
 * for CA_REQ_SIGN_VERBATIM.
 */
int ca_issue(struct ca *ca, const struct ca_mount *m, const struct role *role, const struct ca_request *req,
             struct store_batch *extra, struct ca_result *res, struct sg_err *err) SG_WUR;
/*
 * On ca_issue with extra != NULL: the certificate ops are appended to extra
 * and extra is committed, so after a failure extra must be discarded, not
 * retried. When the caller's records need the serial or NotAfter (a lease),
 * use ca_issue_ex instead: hook runs after signing, with the result filled
 * in, to add ops to the batch that holds the certificate record; it may run
 * again (with a new serial) if the serial collided. The hook returns 0 or -1
 * with err set.
 */
typedef int (*ca_commit_hook)(void *arg, const struct ca_result *res, struct store_batch *b, struct sg_err *err);
int ca_issue_ex(struct ca *ca, const struct ca_mount *m, const struct role *role, const struct ca_request *req,
                ca_commit_hook hook, void *hook_arg, struct ca_result *res, struct sg_err *err) SG_WUR;

/* root/sign-intermediate: a CA certificate for a CSR. */
int ca_sign_intermediate(struct ca *ca, const struct ca_mount *m, const char *issuer_ref, X509_REQ *csr,
                         const struct ca_ca_params *p, struct ca_result *res, struct sg_err *err) SG_WUR;

/* ---------------- Stored certificates and revocation ---------------- */

enum ca_reason { /* RFC 5280 5.3.1 CRLReason */
	CA_REASON_UNSPECIFIED = 0,
	CA_REASON_KEY_COMPROMISE = 1,
	CA_REASON_CA_COMPROMISE = 2,
	CA_REASON_AFFILIATION_CHANGED = 3,
	CA_REASON_SUPERSEDED = 4,
	CA_REASON_CESSATION_OF_OPERATION = 5,
	CA_REASON_CERTIFICATE_HOLD = 6,
	CA_REASON_REMOVE_FROM_CRL = 8,
	CA_REASON_PRIVILEGE_WITHDRAWN = 9,
	CA_REASON_AA_COMPROMISE = 10,
};
/* Names as in RFC 5280 ("keyCompromise", ...), case-insensitive, or the number. */
int ca_reason_parse(const char *s, enum ca_reason *out, struct sg_err *err) SG_WUR;
const char *ca_reason_name(enum ca_reason r);

struct ca_cert_record {
	char *serial;               /* colon hex */
	unsigned char *der;
	size_t der_len;
	char issuer_id[37];
	char *role;                 /* "" for CA/verbatim */
	char *owner;
	int64_t not_before, not_after;
	bool revoked;
	int64_t revocation_time;
	enum ca_reason reason;
	int64_t invalidity_date;    /* 0 = none */
};
void ca_cert_record_clear(struct ca_cert_record *r);

/* serial: colon, hyphen or bare hex. SG_NOT_FOUND when absent. */
int ca_cert_get(struct ca *ca, const struct ca_mount *m, const char *serial, struct ca_cert_record *out,
                struct sg_err *err) SG_WUR;
/* Serials (colon hex), in store order, paged with after/limit (0 = all). */
int ca_cert_list(struct ca *ca, const struct ca_mount *m, bool revoked_only, const char *after, size_t limit,
                 struct sg_strlist *out, struct sg_err *err) SG_WUR;

struct ca_revoke_result {
	int64_t revocation_time;
	bool already;               /* it was revoked before */
	char *serial;
	struct sg_strlist warnings;
};
void ca_revoke_result_clear(struct ca_revoke_result *r);

/*
 * The one revocation function: durable mark first, then the hooks
 * (OCSP view, CRL rebuild scheduling) run. By serial (stored) or by
 * certificate (BYOC: must be signed by one of the mount's issuers).
 * Issuer certificates are refused; an expired certificate is refused
 * with SG_BAD_REQUEST. Revoking twice keeps the first time and reason.
 */
int ca_revoke(struct ca *ca, const struct ca_mount *m, const char *serial, X509 *cert, enum ca_reason reason,
              int64_t invalidity_date, struct ca_revoke_result *res, struct sg_err *err) SG_WUR;

/* revoke-with-key: revoke only if key (PEM) matches the certificate's public key. */
int ca_revoke_with_key(struct ca *ca, const struct ca_mount *m, const char *serial, X509 *cert,
                       const char *key_pem, struct ca_revoke_result *res, struct sg_err *err) SG_WUR;

/*
 * Batch revocation, for revoking leases by the thousand (a role's kill
 * switch, a token's cascade): the revocation record of ca_revoke, staged
 * into the caller's batch so that many revocations share one commit (the
 * certificate record is not rewritten: ca_cert_get reads the revocation).
 * Each item gets a state instead of an error, as Vault's lease revocation
 * treats them: a missing certificate (e.g. its mount was deleted) and an
 * expired one are not revoked and count as done; an issuer is never
 * revoked here. The revocation records are staged with put_new, so a
 * concurrent revocation of the same serial makes the commit fail with
 * SG_CONFLICT: stage again into a new batch (the item then reads ALREADY).
 * Returns -1 only for storage errors.
 */
#define CA_SERIAL_TEXT_MAX (3 * CA_MAX_SERIAL_BYTES + 1)
enum ca_revoke_state {
	CA_RB_REVOKED = 1,          /* staged: revoked when the batch commits */
	CA_RB_ALREADY,              /* revoked before (revocation_time is the first one) */
	CA_RB_MISSING,              /* no such certificate in the mount */
	CA_RB_EXPIRED,              /* expired: not added to the CRL, as Vault */
	CA_RB_ISSUER,               /* an issuer's certificate: use issuer/:ref/revoke */
	CA_RB_INVALID,              /* the serial text is malformed */
};
struct ca_revoke_item {
	const char *serial;         /* in: colon, hyphen or bare hex */
	/*
	 * In, optional: the issuer id and NotAfter recorded when the
	 * certificate was issued (a lease keeps them). With both, the stored
	 * certificate record is only checked for presence, not read, and the
	 * revocation record holds no copy of the certificate (the certificate
	 * record keeps it): what makes 10,000 revocations cheap.
	 */
	const char *known_issuer_id;
	int64_t known_not_after;
	enum ca_revoke_state state; /* out */
	int64_t revocation_time;    /* out: REVOKED and ALREADY */
	char serial_colon[CA_SERIAL_TEXT_MAX]; /* out: normalised, "" when INVALID */
	char issuer_id[37];         /* out: REVOKED and ALREADY, for the revoke hook */
};
int ca_revoke_batch_add(struct ca *ca, const struct ca_mount *m, struct ca_revoke_item *items, size_t n,
                        enum ca_reason reason, struct store_batch *b, struct sg_err *err) SG_WUR;
/* After the batch committed: runs the revoke hook (OCSP view, CRL scheduling) for each REVOKED item. */
void ca_revoke_notify(struct ca *ca, const struct ca_mount *m, const struct ca_revoke_item *items, size_t n);

/* Every revocation record of a mount, for CRL and OCSP building. Fields are borrowed during the call. */
struct ca_revoked_entry {
	const unsigned char *serial;    /* big-endian magnitude */
	size_t serial_len;
	const char *serial_hex;         /* colon hex */
	const char *issuer_id;
	int64_t revocation_time;
	enum ca_reason reason;
	int64_t invalidity_date;        /* 0 = none */
	int64_t not_after;              /* of the revoked certificate, 0 when unknown */
};
/* cb returns 0 to continue, 1 to stop, -1 to abort (with its own error in err). */
typedef int (*ca_revoked_cb)(void *arg, const struct ca_revoked_entry *e, struct sg_err *err);
int ca_revoked_scan(struct ca *ca, const struct ca_mount *m, ca_revoked_cb cb, void *arg,
                    struct sg_err *err) SG_WUR;

/*
 * Called once per new durable revocation, after the commit and outside any
 * CA lock (the CRL/OCSP module registers here); serial_hex is colon hex,
 * issuer_id the issuer whose CRL lists it. Not called when already revoked.
 */
typedef void (*ca_revoke_hook)(void *arg, const char *mount_id, const char *serial_hex, const char *issuer_id);
void ca_set_revoke_hook(struct ca *ca, ca_revoke_hook hook, void *arg);

/* ---------------- Encoding helpers for the edges ---------------- */
char *ca_x509_to_pem(X509 *x);
char *ca_csr_to_pem(X509_REQ *r);
/* RFC 7468 text of DER under label, byte for byte what PEM_write_bio writes (heap string; wipe it if secret). */
char *ca_pem_text(const char *label, const unsigned char *der, size_t len);
/* Parses every CERTIFICATE block of a PEM text (at most CA_MAX_CHAIN); NULL + SG_BAD_PEM on garbage. */
STACK_OF(X509) *ca_pem_certs_parse(const char *pem, size_t len, struct sg_err *err) SG_WUR;
/* Exactly one certificate, PEM or DER, no trailing bytes. */
X509 *ca_cert_parse(const unsigned char *buf, size_t len, struct sg_err *err) SG_WUR;

#endif
