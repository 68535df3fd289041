#ifndef SG_CA_INTERNAL_H
#define SG_CA_INTERNAL_H

/*
 * Shared between the files of ca/ only. The public interface is ca/ca.h.
 *
 * Concurrency model: every mount's issuers (certificates, chains, signers
 * holding the decrypted keys) are loaded once into an immutable, refcounted
 * `struct ca_mstate`. Requests take a reference under a short mutex and then
 * work lock-free. Any write to a mount's issuers, keys or AIA configuration
 * happens under `ca->admin` and ends with ca_state_invalidate(), which drops
 * the cached state; a generation counter keeps a loader that raced with the
 * write from installing a stale state.
 */

#include <openssl/bn.h>
#include <pthread.h>
#include <stdatomic.h>

#include "ca/ca.h"

#define CA_MAX_MOUNT_ID 64
#define CA_NAME_MAX 128              /* issuer and key names */
#define CA_MAX_KEYS_PER_MOUNT 1024
#define CA_MAX_CSR_EXTS 64           /* extensions copied from a CSR */
#define CA_MAX_URLS 32               /* per AIA / CRL list */
#define CA_MAX_URL_LEN 2048
#define CA_MAX_KEY_PEM_BYTES (64u << 10)
#define CA_MAX_STORE_KEY 192         /* our keys are "<mount-id>/<uuid|serial>" */
#define CA_SERIAL_HEX_MAX (3 * CA_MAX_SERIAL_BYTES + 1)
#define CA_GCM_NONCE 12
#define CA_GCM_TAG 16

/* ---------------- Signer (DESIGN.md rule 8) ---------------- */

struct ca_signer_ops {
	int (*sign_x509)(struct ca_signer *s, X509 *x, const struct ca_sig_params *p, struct sg_err *err);
	int (*sign_req)(struct ca_signer *s, X509_REQ *r, const struct ca_sig_params *p, struct sg_err *err);
	int (*sign_crl)(struct ca_signer *s, X509_CRL *c, const struct ca_sig_params *p, struct sg_err *err);
	int (*sign_ocsp)(struct ca_signer *s, OCSP_BASICRESP *b, X509 *cert, STACK_OF(X509) *certs,
	                 unsigned long flags, struct sg_err *err);
	int (*sign_der)(struct ca_signer *s, const unsigned char *tbs, size_t len, const struct ca_sig_params *p,
	                unsigned char **alg, size_t *alg_len, unsigned char **sig, size_t *sig_len, struct sg_err *err);
	void (*destroy)(struct ca_signer *s);
};

struct ca_signer {
	const struct ca_signer_ops *ops;
	atomic_int refs;
	EVP_PKEY *pub; /* public half only: digest choice and key matching */
};

/* Takes ownership of key (the only place a decrypted private key lives). */
struct ca_signer *ca_signer_mem_new(EVP_PKEY *key, struct sg_err *err) SG_WUR;
struct ca_signer *ca_signer_up_ref(struct ca_signer *s);
/* Signs with a throw-away signer around key (root self-signature, CSRs); key is borrowed. */
int ca_sign_with_key(EVP_PKEY *key, X509 *x, X509_REQ *r, const struct ca_sig_params *p,
                     struct sg_err *err) SG_WUR;

/* ---------------- Key records ---------------- */

struct ca_key_rec {
	char id[37];
	char *name;
	char *type;
	int bits;
	unsigned char *spki; /* public key, DER SubjectPublicKeyInfo */
	size_t spki_len;
	unsigned char nonce[CA_GCM_NONCE];
	unsigned char tag[CA_GCM_TAG];
	unsigned char *ct; /* AES-256-GCM of the PKCS#8 DER */
	size_t ct_len;
};
void ca_key_rec_clear(struct ca_key_rec *k);
/* Encrypts key under the KEK (AAD "<mount-id>/<key-id>"); rec->id must be set. */
int ca_key_rec_seal(struct ca *ca, const char *mount_id, EVP_PKEY *key, const char *name,
                    struct ca_key_rec *rec, struct sg_err *err) SG_WUR;
/* Decrypts; SG_CRYPTO with a key-free message when the KEK or the record is wrong. */
EVP_PKEY *ca_key_rec_open(struct ca *ca, const char *mount_id, const struct ca_key_rec *rec,
                          struct sg_err *err) SG_WUR;
char *ca_key_rec_encode(const struct ca_key_rec *rec);
int ca_key_rec_decode(const void *val, size_t len, struct ca_key_rec *rec, struct sg_err *err) SG_WUR;
/* All key records of a mount (store order). */
int ca_key_rec_load_all(struct ca *ca, const char *mount_id, struct ca_key_rec **out, size_t *n,
                        struct sg_err *err) SG_WUR;
void ca_key_recs_free(struct ca_key_rec *v, size_t n);
int ca_key_rec_get(struct ca *ca, const char *mount_id, const char *id, struct ca_key_rec *out,
                   struct sg_err *err) SG_WUR;
/* ref: id, name or "default". SG_NOT_FOUND when absent. */
int ca_key_rec_resolve(struct ca *ca, const char *mount_id, const char *ref, struct ca_key_rec *out,
                       struct sg_err *err) SG_WUR;
void ca_key_rec_put(struct store_batch *b, const char *mount_id, const struct ca_key_rec *rec);
/* DER SubjectPublicKeyInfo of a key (public part only). */
int ca_pubkey_der(const EVP_PKEY *k, unsigned char **out, size_t *len, struct sg_err *err) SG_WUR;
/* Stores a new key (record + default key config when none); returns its id. Caller holds admin. */
int ca_key_stage_new(struct ca *ca, const char *mount_id, EVP_PKEY *key, const char *name,
                     struct store_batch *b, struct ca_key_rec *rec, struct sg_err *err) SG_WUR;
int ca_keys_default_read(struct ca *ca, const char *mount_id, char out[37], struct sg_err *err) SG_WUR;
void ca_keys_default_put(struct store_batch *b, const char *mount_id, const char *id);
/* Certificates and (unencrypted) private keys of a PEM text, in order. */
struct ca_bundle {
	STACK_OF(X509) *certs;
	EVP_PKEY **keys;
	size_t nkeys;
};
void ca_bundle_clear(struct ca_bundle *b);
/* SG_BAD_PEM on garbage, SG_BAD_REQUEST for keys when !allow_keys or encrypted keys. */
int ca_bundle_parse(const char *pem, size_t len, bool allow_keys, struct ca_bundle *out, struct sg_err *err) SG_WUR;
void ca_key_info_from_rec(struct ca_key_info *out, const struct ca_key_rec *rec);
/* [A-Za-z0-9._-]{1,128}, not "default". */
int ca_name_check(const char *what, const char *name, struct sg_err *err) SG_WUR;

/* ---------------- Issuers and the per-mount cache ---------------- */

struct ca_issuer {
	char id[37];
	char *name;
	char key_id[37];
	X509 *cert;
	STACK_OF(X509) *chain;      /* built at load: the issuer first */
	struct ca_signer *signer;   /* NULL when the mount lacks the key */
	enum ca_not_after_behavior behavior;
	struct sg_strlist usage, manual_chain;
	struct ca_urls urls;
	bool revoked;
	int64_t revocation_time;
	int64_t created;            /* creation order */
	int64_t not_before, not_after;
	int path_len;               /* -1 unlimited */
};
void ca_issuer_clear(struct ca_issuer *i);
char *ca_issuer_encode(const struct ca_issuer *i);
int ca_issuer_decode(const void *val, size_t len, struct ca_issuer *out, struct sg_err *err) SG_WUR;

struct ca_cluster_cfg {
	char *path, *aia_path;
};

struct ca_mstate {
	atomic_int refs;
	char mount_id[CA_MAX_MOUNT_ID + 1];
	struct ca_issuer *issuers;
	size_t n;
	char default_id[37];
	bool follows_latest;
	struct ca_urls urls;
	char *cluster_path, *cluster_aia_path;
};

struct ca_mslot {
	char *mount_id;
	uint64_t gen;
	struct ca_mstate *st;
	struct ca_mslot *next;
};

struct ca {
	struct store *st;
	unsigned char kek[CA_KEK_BYTES];
	EVP_CIPHER *aes;            /* fetched once */
	pthread_mutex_t lock;       /* slots, hook */
	pthread_mutex_t admin;      /* serialises writes to issuers, keys and mount config */
	struct ca_mslot *slots;
	ca_revoke_hook hook;
	void *hook_arg;
};

int ca_mount_check(const struct ca_mount *m, struct sg_err *err) SG_WUR;
/* A reference on the mount's loaded issuers (cached). Release with ca_state_release. */
int ca_state_get(struct ca *ca, const char *mount_id, struct ca_mstate **out, struct sg_err *err) SG_WUR;
void ca_state_release(struct ca_mstate *s);
void ca_state_invalidate(struct ca *ca, const char *mount_id);
void ca_mstate_free(struct ca_mstate *s);
/* Loads fresh from the store (no cache). */
int ca_state_load(struct ca *ca, const char *mount_id, struct ca_mstate **out, struct sg_err *err) SG_WUR;
/* id, name or "default"; NULL + SG_UNKNOWN_ISSUER. */
const struct ca_issuer *ca_state_find(const struct ca_mstate *s, const char *ref, struct sg_err *err);
/* The issuer of the mount that signed cert (by name and signature), or NULL. */
const struct ca_issuer *ca_state_find_signer_of(const struct ca_mstate *s, X509 *cert);
/* The effective AIA URLs for an issuer: its own when set, else the mount's; templates expanded. */
int ca_state_urls_for(const struct ca_mstate *s, const struct ca_issuer *iss, struct ca_urls *out,
                      struct sg_err *err) SG_WUR;
void ca_issuer_info_fill(const struct ca_mstate *s, const struct ca_issuer *i, struct ca_issuer_info *out);

int ca_urls_decode_json(const json_t *o, struct ca_urls *u, struct sg_err *err) SG_WUR;
json_t *ca_urls_encode_json(const struct ca_urls *u);
void ca_urls_copy(struct ca_urls *dst, const struct ca_urls *src);
bool ca_urls_empty(const struct ca_urls *u);

/* ---------------- Store keys ---------------- */
/* "<mount-id>/<suffix>" into buf; aborts on overflow (inputs are checked before). */
void ca_skey(char *buf, size_t cap, const char *mount_id, const char *suffix);

/* ---------------- Serials ---------------- */

struct ca_serial {
	unsigned char b[CA_MAX_SERIAL_BYTES]; /* big-endian magnitude, no leading zero */
	size_t n;
	char colon[CA_SERIAL_HEX_MAX];        /* "3a:0f:..." */
	char hyphen[CA_SERIAL_HEX_MAX];       /* "3a-0f-...": the store key suffix */
};
/* A fresh random serial: 159 random bits, positive, at most 20 octets (RFC 5280 4.1.2.2). */
void ca_serial_random(struct ca_serial *s);
/* From user text (colon, hyphen or bare hex). SG_BAD_REQUEST when malformed. */
int ca_serial_parse(const char *text, struct ca_serial *s, struct sg_err *err) SG_WUR;
/* From a certificate; SG_BAD_REQUEST for negative or oversized serials. */
int ca_serial_from_cert(X509 *x, struct ca_serial *s, struct sg_err *err) SG_WUR;
ASN1_INTEGER *ca_serial_to_asn1(const struct ca_serial *s);

/* ---------------- Time ---------------- */
int64_t ca_asn1_time_unix(const ASN1_TIME *t);
/* Go's time.Duration.String() for whole seconds ("768h0m0s", "30m0s", "45s"). */
void ca_go_duration(int64_t secs, char *buf, size_t len);

/* ---------------- Profiles ---------------- */

struct ca_subject {
	const char *cn;
	const char *serial_number;
	const struct sg_strlist *country, *province, *locality, *street, *postal, *org, *ou, *uids;
};
X509_NAME *ca_subject_build(const struct ca_subject *s, struct sg_err *err) SG_WUR;

struct ca_sans {
	struct sg_strlist dns, emails, ips, uris, other;
};
void ca_sans_clear(struct ca_sans *s);
/* Splits alt_names into DNS vs email by '@'. */
void ca_sans_add_alt(struct ca_sans *s, const struct sg_strlist *alt);
size_t ca_sans_count(const struct ca_sans *s);
/* The CN joins the email SANs when it has '@', else the DNS SANs when it is a hostname. */
void ca_sans_add_cn(struct ca_sans *s, const char *cn);
void ca_sans_normalize(struct ca_sans *s);

struct ca_profile {
	X509_NAME *subject;           /* borrowed */
	EVP_PKEY *pubkey;             /* borrowed: the subject key */
	X509_PUBKEY *spki;            /* borrowed, optional: pubkey as the CSR encodes it */
	const struct ca_serial *serial;
	int64_t not_before, not_after;
	X509 *issuer;                 /* borrowed; NULL = self-signed */
	bool is_ca;
	int max_path_length;          /* CA only; -1 = no pathLenConstraint */
	bool leaf_basic_constraints;  /* CA:false on a leaf */
	unsigned key_usage;           /* ROLE_KU_* bits; 0 = no extension */
	bool ku_filter_by_key;        /* leaf: drop usages the key type cannot have */
	const struct sg_strlist *eku_oids;
	const struct ca_sans *sans;   /* NULL: none built */
	const struct sg_strlist *policies; /* role_policy_parse entries */
	const struct ca_urls *urls;   /* AIA and CRL DPs, already expanded */
	const struct sg_strlist *permitted_dns_domains;
	STACK_OF(X509_EXTENSION) *copy_exts; /* added as they are (from a CSR) */
};
/* An unsigned certificate built from p. */
X509 *ca_profile_build(const struct ca_profile *p, struct sg_err *err) SG_WUR;
/* SAN extension for a CSR (intermediate/generate). NULL sans or empty: *out = NULL. */
int ca_sans_to_ext(const struct ca_sans *s, bool critical, X509_EXTENSION **out, struct sg_err *err) SG_WUR;
/* The CSR's extensions minus the ones a profile manages; SG_BAD_REQUEST for CA:true when refuse_ca. */
int ca_csr_exts_filtered(X509_REQ *csr, bool refuse_ca, STACK_OF(X509_EXTENSION) **out,
                         struct sg_err *err) SG_WUR;

/* ---------------- Validity ---------------- */

struct ca_validity_in {
	int64_t ttl;                  /* requested, 0 = unset */
	const char *not_after;        /* RFC 3339 or NULL */
	const struct role *role;      /* ttl/max_ttl; NULL = the mount's only */
	int64_t mount_default, mount_max;
	int64_t not_before_duration;  /* <0 = 30 s */
	bool force_truncate;
};
/* NotBefore/NotAfter, applying the issuer's leaf_not_after_behavior (issuer may be NULL for roots). */
int ca_validity_compute(const struct ca_validity_in *in, const struct ca_issuer *iss, int64_t *nb, int64_t *na,
                        struct sg_strlist *warnings, struct sg_err *err) SG_WUR;

/* ---------------- Certificate records ---------------- */
char *ca_cert_rec_encode(const struct ca_cert_record *r);
int ca_cert_rec_decode(const void *val, size_t len, struct ca_cert_record *out, struct sg_err *err) SG_WUR;
/* A record for a freshly signed certificate. */
void ca_cert_rec_fill(struct ca_cert_record *r, X509 *x, const struct ca_serial *s, const char *issuer_id,
                      const char *role, const char *owner);
/* Stages the record with put_new, signs nothing. */
void ca_cert_rec_stage(struct store_batch *b, const char *mount_id, const struct ca_serial *s,
                       const struct ca_cert_record *r);

struct ca_revoked_rec {
	struct ca_serial serial;
	int64_t time;
	enum ca_reason reason;
	int64_t invalidity_date;
	char issuer_id[37];
	int64_t not_after;
	unsigned char *der;         /* the certificate, when known */
	size_t der_len;
};
void ca_revoked_rec_clear(struct ca_revoked_rec *r);
char *ca_revoked_rec_encode(const struct ca_revoked_rec *r);
int ca_revoked_rec_decode(const void *val, size_t len, struct ca_revoked_rec *r, struct sg_err *err) SG_WUR;
/* Reads STORE_REVOKED; 1 found, 0 absent, -1 error. */
int ca_revoked_rec_get(struct ca *ca, const char *mount_id, const struct ca_serial *s, struct ca_revoked_rec *out,
                       struct sg_err *err) SG_WUR;
/* Reads STORE_CERTS; 1 found, 0 absent, -1 error. */
int ca_cert_rec_get(struct ca *ca, const char *mount_id, const struct ca_serial *s, struct ca_cert_record *out,
                    struct sg_err *err) SG_WUR;
void ca_cert_rec_put(struct store_batch *b, const char *mount_id, const struct ca_serial *s,
                     const struct ca_cert_record *r);
void ca_revoked_rec_put(struct store_batch *b, const char *mount_id, const struct ca_revoked_rec *r, bool is_new);
/* serial in colon hex. */
void ca_run_revoke_hook(struct ca *ca, const char *mount_id, const char *serial_colon, const char *issuer_id);

/* DER encode a certificate (malloc'ed). */
int ca_x509_der(X509 *x, unsigned char **out, size_t *len, struct sg_err *err) SG_WUR;

#endif
