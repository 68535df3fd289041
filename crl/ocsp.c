/*
 * The OCSP responder: request parsing, the pre-signed response cache, the
 * delegated responder certificates and the refresh thread (crl/ocsp.h).
 *
 * Concurrency: one rwlock (ocsp.lock) guards the mounts, their issuers,
 * the responders and the cache. The hot path takes it shared and only
 * copies bytes. Store reads, key generation and signing never happen under
 * it. An issuer's `gen` is bumped by every revocation: an answer built from
 * a store read that began before the bump is served once but not cached,
 * so a "good" read before a revocation can never be cached after it.
 */
#include "crl/ocsp.h"

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define OCSP_BUCKETS (1u << 18)
#define OCSP_NALGS 4
#define OCSP_HASH_MAX 64
#define OCSP_ID_MAX 36
#define OCSP_RELOAD_MS 1000            /* an unknown issuer reloads the mount's issuers at most this often */
#define OCSP_RESPONDER_SKEW 300        /* responder notBefore this far back: relying parties' clocks */
#define OCSP_CT_SERIAL_HEX (3 * CA_MAX_SERIAL_BYTES + 1)

/* RFC 6960 4.2.1 OCSPResponseStatus values answered without a signature. */
static const unsigned char resp_malformed[] = {0x30, 0x03, 0x0a, 0x01, 0x01};
static const unsigned char resp_internal[] = {0x30, 0x03, 0x0a, 0x01, 0x02};
static const unsigned char resp_unauthorized[] = {0x30, 0x03, 0x0a, 0x01, 0x06};

/* RFC 6960 4.1.1: CertID hashes we recognise (SHA-1 as RFC 5019 2.1.1 requires, and the SHA-2 family). */
static const int alg_nids[OCSP_NALGS] = {NID_sha1, NID_sha256, NID_sha384, NID_sha512};

struct ocsp_responder {
	atomic_int refs;
	struct ca_signer *signer;
	X509 *cert;
	bool is_issuer;
	int64_t not_after;
	int64_t rotate_at;
};

struct ocsp_mnt;

struct ocsp_iss {
	char id[OCSP_ID_MAX + 1];
	X509 *cert;
	unsigned char name_hash[OCSP_NALGS][OCSP_HASH_MAX], key_hash[OCSP_NALGS][OCSP_HASH_MAX];
	unsigned hlen[OCSP_NALGS];
	struct ocsp_responder *resp;
	atomic_uint_fast64_t gen;
	bool gone;
	struct ocsp_mnt *mnt;
	struct ocsp_iss *next;
};

struct ocsp_mnt {
	char id[OCSP_ID_MAX + 1];
	char *path;
	struct crl_config cfg;
	struct ocsp_iss *issuers;
	_Atomic int64_t loaded_ms;         /* 0 = issuers never loaded; read without the lock */
	struct ocsp_mnt *next;
};

struct ocsp_ent {
	struct ocsp_iss *is;
	unsigned char serial[CA_MAX_SERIAL_BYTES];
	size_t serial_len;
	unsigned char *cid;                /* DER CertID as the client encoded it */
	size_t cid_len;
	unsigned char *der;
	size_t len;
	int64_t this_update, next_update, refresh_at;
	char etag[40];
	bool unknown;                      /* counted in ocsp.unknown */
	struct ocsp_ent *next;
};

struct ocsp {
	struct store *st;
	struct ca *ca;
	struct crl *crl;
	pthread_rwlock_t lock;
	struct ocsp_mnt *mounts;
	struct ocsp_ent **tab;
	size_t count;
	size_t unknown;                    /* cached "unknown" answers: anyone can ask for any serial */
	int64_t min_refresh;               /* earliest refresh_at of the cache (approximate, never later) */
	pthread_mutex_t tlock;
	pthread_cond_t wake;
	bool started, stop;
	pthread_t thread;
};

/* A built response. */
struct built {
	unsigned char *der;
	size_t len;
	int64_t this_update, next_update, refresh_at;
	char etag[40];
	bool unknown;                      /* a single answer whose status is unknown */
};

/* One CertID of a request, resolved. */
struct item {
	OCSP_CERTID *cid;                  /* borrowed from the request */
	struct ocsp_iss *is;               /* NULL: not one of ours */
	unsigned char serial[CA_MAX_SERIAL_BYTES];
	size_t serial_len;                 /* 0: not a serial we could have issued */
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_static(struct ocsp_answer *a, const unsigned char *der, size_t len)
{
	memset(a, 0, sizeof(*a));
	a->der = sg_xmalloc(len);
	memcpy(a->der, der, len);
	a->len = len;
}

void ocsp_answer_clear(struct ocsp_answer *a)
{
	if (a == NULL)
		return;
	free(a->der);
	memset(a, 0, sizeof(*a));
}

static void responder_release(struct ocsp_responder *r)
{
	if (r == NULL || atomic_fetch_sub(&r->refs, 1) != 1)
		return;
	ca_signer_release(r->signer);
	X509_free(r->cert);
	free(r);
}

static struct ocsp_responder *responder_ref(struct ocsp_responder *r)
{
	atomic_fetch_add(&r->refs, 1);
	return r;
}

static uint64_t key_hash(const struct ocsp_iss *is, const unsigned char *serial, size_t n)
{
	uint64_t h = 1469598103934665603ull ^ (uint64_t)(uintptr_t)is;

	for (size_t i = 0; i < n; i++) {
		h ^= serial[i];
		h *= 1099511628211ull;
	}
	return h ^ (h >> 29);
}

static size_t bucket_of(const struct ocsp_iss *is, const unsigned char *serial, size_t n)
{
	return (size_t)(key_hash(is, serial, n) & (OCSP_BUCKETS - 1));
}

static void ent_free(struct ocsp_ent *e)
{
	if (e == NULL)
		return;
	free(e->cid);
	free(e->der);
	free(e);
}

/* ---------------- Parsing untrusted requests ---------------- */

static int time_to_asn1(int64_t t, ASN1_GENERALIZEDTIME **out)
{
	*out = ASN1_GENERALIZEDTIME_set(NULL, (time_t)t);
	return *out != NULL ? 0 : -1;
}

/*
 * RFC 8954 2.1: the nonce extension's value is an OCTET STRING of 1 to 32
 * octets (inside the extnValue OCTET STRING). Returns its length, 0 when
 * absent, -1 when malformed or out of bounds.
 */
static long nonce_len_of(OCSP_REQUEST *req)
{
	int idx = OCSP_REQUEST_get_ext_by_NID(req, NID_id_pkix_OCSP_Nonce, -1);
	X509_EXTENSION *ext;
	const ASN1_OCTET_STRING *v;
	const unsigned char *p;
	ASN1_OCTET_STRING *inner;
	long n;

	if (idx < 0)
		return 0;
	if (OCSP_REQUEST_get_ext_by_NID(req, NID_id_pkix_OCSP_Nonce, idx) >= 0)
		return -1; /* RFC 5280 4.2: an extension appears at most once */
	ext = OCSP_REQUEST_get_ext(req, idx);
	v = X509_EXTENSION_get_data(ext);
	p = ASN1_STRING_get0_data(v);
	inner = d2i_ASN1_OCTET_STRING(NULL, &p, ASN1_STRING_length(v));
	if (inner == NULL || p != ASN1_STRING_get0_data(v) + ASN1_STRING_length(v)) {
		ASN1_OCTET_STRING_free(inner);
		ERR_clear_error();
		return -1;
	}
	n = ASN1_STRING_length(inner);
	ASN1_OCTET_STRING_free(inner);
	if (n < OCSP_NONCE_MIN || n > OCSP_NONCE_MAX)
		return -1;
	return n;
}

static OCSP_REQUEST *request_parse(const unsigned char *der, size_t len, size_t *n_items, long *nonce,
                                   struct sg_err *err)
{
	const unsigned char *p = der;
	OCSP_REQUEST *req = NULL;
	int n;

	if (len == 0 || len > OCSP_MAX_REQUEST_BYTES) {
		sg_err_set(err, SG_BAD_REQUEST, "OCSP request of %zu bytes (1 to %d)", len, OCSP_MAX_REQUEST_BYTES);
		return NULL;
	}
	req = d2i_OCSP_REQUEST(NULL, &p, (long)len);
	if (req == NULL || p != der + len) {
		sg_err_ossl(err, SG_BAD_REQUEST, "OCSP request is not DER or has trailing bytes");
		OCSP_REQUEST_free(req);
		return NULL;
	}
	n = OCSP_request_onereq_count(req);
	if (n < 1 || n > OCSP_MAX_REQUEST_ITEMS) {
		sg_err_set(err, SG_BAD_REQUEST, "OCSP request with %d CertIDs (1 to %d)", n, OCSP_MAX_REQUEST_ITEMS);
		OCSP_REQUEST_free(req);
		return NULL;
	}
	*nonce = nonce_len_of(req);
	if (*nonce < 0) {
		sg_err_set(err, SG_BAD_REQUEST, "OCSP nonce must be %d to %d octets (RFC 8954)", OCSP_NONCE_MIN,
		           OCSP_NONCE_MAX);
		OCSP_REQUEST_free(req);
		return NULL;
	}
	*n_items = (size_t)n;
	return req;
}

struct fast_req;
static bool fast_parse(const unsigned char *der, size_t len, struct fast_req *f);
static bool fast_agrees(const unsigned char *der, size_t len, OCSP_REQUEST *req, long nonce, size_t n);

int ocsp_request_check(const unsigned char *der, size_t len, size_t *n_items, size_t *nonce_len, struct sg_err *err)
{
	long nonce = 0;
	OCSP_REQUEST *req = request_parse(der, len, n_items, &nonce, err);

	/* The in-place parse of the hot path must agree with OpenSSL's (the fuzzer checks it here). */
	if (!fast_agrees(der, len, req, nonce, req != NULL ? *n_items : 0))
		sg_die("ocsp: the in-place request parse disagrees with OpenSSL's");
	if (req == NULL)
		return -1;
	*nonce_len = (size_t)nonce;
	OCSP_REQUEST_free(req);
	return 0;
}

int ocsp_get_decode(const char *b64, size_t len, unsigned char **der, size_t *der_len)
{
	char buf[((OCSP_MAX_REQUEST_BYTES + 2) / 3) * 4 + 4];
	size_t n = len;

	*der = NULL;
	*der_len = 0;
	if (len == 0 || len > sizeof(buf) - 4)
		return -1;
	memcpy(buf, b64, len);
	while (n % 4 != 0)
		buf[n++] = '/';
	if (sg_base64_decode(buf, n, der, der_len) < 0) {
		/* Not stripped slashes after all: the text as given (unpadded URL-safe base64). */
		if (sg_base64_decode(b64, len, der, der_len) < 0)
			return -1;
	}
	if (*der_len > OCSP_MAX_REQUEST_BYTES) {
		free(*der);
		*der = NULL;
		*der_len = 0;
		return -1;
	}
	return 0;
}

/* The serial of a CertID as a minimal positive magnitude; 0 when negative, zero or too long. */
static size_t serial_of(const ASN1_INTEGER *sn, unsigned char *out)
{
	const unsigned char *d = ASN1_STRING_get0_data(sn);
	size_t n = (size_t)ASN1_STRING_length(sn);

	if (ASN1_STRING_type(sn) == V_ASN1_NEG_INTEGER)
		return 0;
	while (n > 0 && *d == 0) {
		d++;
		n--;
	}
	if (n == 0 || n > CA_MAX_SERIAL_BYTES)
		return 0;
	memcpy(out, d, n);
	return n;
}

/* ---------------- Mounts and issuers ---------------- */

static struct ocsp_mnt *mnt_find(struct ocsp *o, const char *id)
{
	for (struct ocsp_mnt *mn = o->mounts; mn != NULL; mn = mn->next)
		if (strcmp(mn->id, id) == 0)
			return mn;
	return NULL;
}

static struct ocsp_iss *iss_find(struct ocsp_mnt *mn, const char *id)
{
	for (struct ocsp_iss *is = mn->issuers; is != NULL; is = is->next)
		if (strcmp(is->id, id) == 0)
			return is;
	return NULL;
}

static struct ca_mount cmount(const struct ocsp_mnt *mn)
{
	struct ca_mount cm = {.id = mn->id, .path = mn->path};

	return cm;
}

/* The mount's entry, created with its config/crl on first use. */
static struct ocsp_mnt *mnt_get(struct ocsp *o, const struct ca_mount *m, struct sg_err *err)
{
	struct ocsp_mnt *mn;
	struct crl_config cfg;

	pthread_rwlock_rdlock(&o->lock);
	mn = mnt_find(o, m->id);
	pthread_rwlock_unlock(&o->lock);
	if (mn != NULL)
		return mn;
	if (strlen(m->id) > OCSP_ID_MAX) {
		sg_err_set(err, SG_BAD_REQUEST, "invalid mount id");
		return NULL;
	}
	if (crl_config_get(o->crl, m, &cfg, err) < 0)
		return NULL;
	pthread_rwlock_wrlock(&o->lock);
	mn = mnt_find(o, m->id);
	if (mn == NULL) {
		mn = sg_xcalloc(1, sizeof(*mn));
		snprintf(mn->id, sizeof(mn->id), "%s", m->id);
		mn->path = sg_xstrdup(m->path != NULL ? m->path : m->id);
		mn->cfg = cfg;
		mn->next = o->mounts;
		o->mounts = mn; /* mounts are never freed before ocsp_free: pointers to them stay valid */
	}
	pthread_rwlock_unlock(&o->lock);
	return mn;
}

static int iss_hashes(struct ocsp_iss *is, struct sg_err *err)
{
	for (size_t a = 0; a < OCSP_NALGS; a++) {
		const EVP_MD *md = EVP_get_digestbynid(alg_nids[a]);
		unsigned nl = 0, kl = 0;

		/* RFC 6960 4.1.1: issuerNameHash over the DER issuer name, issuerKeyHash over the key's BIT STRING value. */
		if (md == NULL || X509_NAME_digest(X509_get_subject_name(is->cert), md, is->name_hash[a], &nl) != 1 ||
		    X509_pubkey_digest(is->cert, md, is->key_hash[a], &kl) != 1 || nl != kl)
			return sg_err_ossl(err, SG_CRYPTO, "cannot hash issuer %s", is->id);
		is->hlen[a] = nl;
	}
	return 0;
}

/* Loads the mount's issuers (new ones added, deleted ones marked gone). */
static int mnt_reload(struct ocsp *o, struct ocsp_mnt *mn, struct sg_err *err)
{
	struct ca_mount cm = cmount(mn);
	struct ca_issuer_info *v = NULL;
	struct ocsp_iss *fresh = NULL;
	size_t n = 0;
	int rc = -1;

	if (ca_issuer_list(o->ca, &cm, &v, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct ocsp_iss *is = sg_xcalloc(1, sizeof(*is));

		snprintf(is->id, sizeof(is->id), "%s", v[i].id);
		is->cert = X509_dup(v[i].cert);
		if (is->cert == NULL)
			sg_die("out of memory");
		is->mnt = mn;
		atomic_init(&is->gen, 0);
		is->next = fresh;
		fresh = is;
		if (iss_hashes(is, err) < 0)
			goto out;
	}
	pthread_rwlock_wrlock(&o->lock);
	for (struct ocsp_iss *is = mn->issuers; is != NULL; is = is->next) {
		bool listed = false;

		for (size_t i = 0; i < n; i++)
			listed = listed || strcmp(v[i].id, is->id) == 0;
		is->gone = !listed;
	}
	while (fresh != NULL) {
		struct ocsp_iss *is = fresh;

		fresh = is->next;
		if (iss_find(mn, is->id) != NULL) {
			X509_free(is->cert);
			free(is);
			continue;
		}
		is->next = mn->issuers;
		mn->issuers = is; /* issuers are freed only by ocsp_free: cache entries point at them */
	}
	mn->loaded_ms = mono_ms();
	pthread_rwlock_unlock(&o->lock);
	rc = 0;
out:
	while (fresh != NULL) {
		struct ocsp_iss *is = fresh;

		fresh = is->next;
		X509_free(is->cert);
		free(is);
	}
	for (size_t i = 0; i < n; i++)
		ca_issuer_info_clear(&v[i]);
	free(v);
	return rc;
}

/* Under o->lock (shared or not): the issuer a CertID names, restricted to `only` when set. */
static struct ocsp_iss *iss_match(struct ocsp_mnt *mn, OCSP_CERTID *cid, const char *only)
{
	ASN1_OCTET_STRING *nh = NULL, *kh = NULL;
	ASN1_OBJECT *alg = NULL;
	ASN1_INTEGER *sn = NULL;
	int nid, a;

	if (OCSP_id_get0_info(&nh, &alg, &kh, &sn, cid) != 1)
		return NULL;
	nid = OBJ_obj2nid(alg);
	for (a = 0; a < OCSP_NALGS && alg_nids[a] != nid; a++)
		;
	if (a == OCSP_NALGS)
		return NULL;
	for (struct ocsp_iss *is = mn->issuers; is != NULL; is = is->next) {
		if (is->gone || (only != NULL && strcmp(only, is->id) != 0))
			continue;
		if ((unsigned)ASN1_STRING_length(nh) == is->hlen[a] && (unsigned)ASN1_STRING_length(kh) == is->hlen[a] &&
		    memcmp(ASN1_STRING_get0_data(nh), is->name_hash[a], is->hlen[a]) == 0 &&
		    memcmp(ASN1_STRING_get0_data(kh), is->key_hash[a], is->hlen[a]) == 0)
			return is;
	}
	return NULL;
}

/* ---------------- Responders ---------------- */

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value, struct sg_err *err)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (ext == NULL)
		return sg_err_ossl(err, SG_CRYPTO, "cannot build responder extension %s", OBJ_nid2sn(nid));
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? 0 : sg_err_ossl(err, SG_CRYPTO, "cannot add responder extension");
}

/* The subject CN of the delegated responder: the issuer's CN (or id) and " OCSP Responder". */
static void responder_cn(const struct ocsp_iss *is, char *buf, size_t len)
{
	char cn[128] = "";
	X509_NAME *nm = X509_get_subject_name(is->cert);

	if (X509_NAME_get_text_by_NID(nm, NID_commonName, cn, sizeof(cn)) <= 0)
		snprintf(cn, sizeof(cn), "%s", is->id);
	snprintf(buf, len, "%.100s OCSP Responder", cn);
}

/*
 * RFC 6960 4.2.2.2: a delegated responder certificate is issued directly
 * by the CA and carries id-kp-OCSPSigning; 4.2.2.2.1: id-pkix-ocsp-nocheck
 * tells clients not to check its own status, which is why it is short-lived.
 */
static int responder_issue(struct ocsp *o, struct ocsp_mnt *mn, struct ocsp_iss *is, const struct crl_config *cfg,
                           struct ocsp_responder **out, struct sg_err *err)
{
	struct ca_mount cm = cmount(mn);
	struct ca_signer *isig = NULL, *rsig = NULL;
	struct ocsp_responder *r = NULL;
	X509 *x = NULL;
	X509_NAME *subj = NULL;
	ASN1_INTEGER *sn = NULL;
	BIGNUM *bn = NULL;
	unsigned char rnd[16];
	char cn[160];
	int64_t now = sg_now(), na, ina = 0;
	int rc = -1;

	*out = NULL;
	if (ca_issuer_signer_get(o->ca, &cm, is->id, &isig, NULL, err) < 0)
		goto out;
	{
		struct tm tm;

		if (ASN1_TIME_to_tm(X509_get0_notAfter(is->cert), &tm) != 1) {
			sg_err_set(err, SG_CRYPTO, "issuer %s has no readable notAfter", is->id);
			goto out;
		}
		ina = (int64_t)timegm(&tm);
	}
	r = sg_xcalloc(1, sizeof(*r));
	atomic_init(&r->refs, 1);
	if (cfg->ocsp_sign_with_issuer) {
		/* RFC 6960 4.2.2.2: the CA that issued the certificate may sign itself. */
		r->signer = isig;
		isig = NULL;
		r->cert = X509_dup(is->cert);
		r->is_issuer = true;
		r->not_after = ina;
		r->rotate_at = INT64_MAX;
		goto done;
	}
	if ((rsig = ca_signer_generate_ephemeral(err)) == NULL)
		goto out;
	na = now + cfg->ocsp_responder_ttl;
	if (na > ina)
		na = ina;
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		sg_err_ossl(err, SG_CRYPTO, "no randomness for a responder serial");
		goto out;
	}
	rnd[0] &= 0x7f;
	rnd[0] |= 0x40;
	x = X509_new();
	subj = X509_NAME_new();
	bn = BN_bin2bn(rnd, sizeof(rnd), NULL);
	responder_cn(is, cn, sizeof(cn));
	if (x == NULL || subj == NULL || bn == NULL || (sn = BN_to_ASN1_INTEGER(bn, NULL)) == NULL ||
	    X509_set_version(x, X509_VERSION_3) != 1 || X509_set_serialNumber(x, sn) != 1 ||
	    X509_set_issuer_name(x, X509_get_subject_name(is->cert)) != 1 ||
	    X509_NAME_add_entry_by_NID(subj, NID_commonName, MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0) != 1 ||
	    X509_set_subject_name(x, subj) != 1 || X509_time_adj_ex(X509_getm_notBefore(x), 0, -OCSP_RESPONDER_SKEW, NULL) == NULL ||
	    ASN1_TIME_set(X509_getm_notAfter(x), (time_t)na) == NULL ||
	    X509_set_pubkey(x, (EVP_PKEY *)ca_signer_get0_pubkey(rsig)) != 1) {
		sg_err_ossl(err, SG_CRYPTO, "cannot build the OCSP responder certificate");
		goto out;
	}
	if (add_ext(x, is->cert, NID_basic_constraints, "critical,CA:FALSE", err) < 0 ||
	    add_ext(x, is->cert, NID_key_usage, "critical,digitalSignature", err) < 0 ||
	    add_ext(x, is->cert, NID_ext_key_usage, "OCSPSigning", err) < 0 ||
	    add_ext(x, is->cert, NID_id_pkix_OCSP_noCheck, "ignored", err) < 0 ||
	    add_ext(x, is->cert, NID_subject_key_identifier, "hash", err) < 0 ||
	    add_ext(x, is->cert, NID_authority_key_identifier, "keyid:always", err) < 0 ||
	    ca_signer_sign_x509(isig, x, NULL, err) < 0)
		goto out;
	r->signer = rsig;
	rsig = NULL;
	r->cert = x;
	x = NULL;
	r->not_after = na;
	/* Rotated at half its life, so every cached answer is re-signed by its successor long before it expires. */
	r->rotate_at = now + (na - now) / 2;
done:
	*out = r;
	r = NULL;
	rc = 0;
out:
	responder_release(r);
	ca_signer_release(isig);
	ca_signer_release(rsig);
	X509_free(x);
	X509_NAME_free(subj);
	ASN1_INTEGER_free(sn);
	BN_free(bn);
	return rc;
}

/* A reference on the issuer's current responder, issuing one when missing, due or of the wrong kind. */
static struct ocsp_responder *responder_get(struct ocsp *o, struct ocsp_iss *is, const struct crl_config *cfg,
                                            struct sg_err *err)
{
	struct ocsp_responder *r = NULL, *fresh = NULL;
	int64_t now = sg_now();

	pthread_rwlock_rdlock(&o->lock);
	if (is->resp != NULL && now < is->resp->rotate_at && is->resp->is_issuer == cfg->ocsp_sign_with_issuer)
		r = responder_ref(is->resp);
	pthread_rwlock_unlock(&o->lock);
	if (r != NULL)
		return r;
	if (responder_issue(o, is->mnt, is, cfg, &fresh, err) < 0)
		return NULL;
	pthread_rwlock_wrlock(&o->lock);
	if (is->resp != NULL && now < is->resp->rotate_at && is->resp->is_issuer == cfg->ocsp_sign_with_issuer &&
	    is->resp->rotate_at != INT64_MAX && sg_now() < is->resp->rotate_at) {
		/* Another thread rotated meanwhile: keep one responder per issuer. */
		r = responder_ref(is->resp);
	} else {
		responder_release(is->resp);
		is->resp = fresh;
		fresh = NULL;
		r = responder_ref(is->resp);
	}
	pthread_rwlock_unlock(&o->lock);
	responder_release(fresh);
	return r;
}

/* ---------------- Building responses ---------------- */

static void etag_of(const unsigned char *der, size_t len, char *out, size_t cap)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdl = 0;
	static const char hex[] = "0123456789abcdef";
	size_t k = 0;

	if (EVP_Digest(der, len, md, &mdl, EVP_sha256(), NULL) != 1)
		mdl = 0;
	out[k++] = '"';
	for (unsigned i = 0; i < mdl && i < 16 && k + 3 < cap; i++) {
		out[k++] = hex[md[i] >> 4];
		out[k++] = hex[md[i] & 15];
	}
	out[k++] = '"';
	out[k] = '\0';
}

/* The status of a serial in the store, as the issuer `is` would report it (RFC 6960 2.2). */
static int status_of(struct ocsp *o, struct ocsp_iss *is, const unsigned char *serial, size_t n, int *status,
                     int *reason, int64_t *rev_time, struct sg_err *err)
{
	struct ca_mount cm = cmount(is->mnt);
	struct ca_cert_record rec = {0};
	struct sg_err e2;
	char *hex;
	int rc;

	*status = V_OCSP_CERTSTATUS_UNKNOWN;
	*reason = OCSP_REVOKED_STATUS_NOSTATUS;
	*rev_time = 0;
	if (n == 0)
		return 0;
	hex = sg_hex_colon(serial, n);
	sg_err_init(&e2);
	rc = ca_cert_get(o->ca, &cm, hex, &rec, &e2);
	free(hex);
	if (rc < 0) {
		if (e2.code == SG_NOT_FOUND)
			return 0;
		*err = e2;
		return -1;
	}
	if (strcmp(rec.issuer_id, is->id) == 0) {
		if (rec.revoked) {
			*status = V_OCSP_CERTSTATUS_REVOKED;
			*rev_time = rec.revocation_time;
			/* RFC 5280 5.3.1: reasonCode unspecified SHOULD be absent. */
			*reason = rec.reason == CA_REASON_UNSPECIFIED ? OCSP_REVOKED_STATUS_NOSTATUS : (int)rec.reason;
		} else {
			*status = V_OCSP_CERTSTATUS_GOOD;
		}
	}
	ca_cert_record_clear(&rec);
	return 0;
}

/*
 * Signs one BasicOCSPResponse for the items; those of another issuer than
 * `is` are answered unknown (RFC 6960 2.2). req, when set, lends its nonce.
 */
static int build(struct ocsp *o, struct ocsp_iss *is, const struct crl_config *cfg, struct item *items, size_t n,
                 OCSP_REQUEST *req, struct built *out, struct sg_err *err)
{
	struct ocsp_responder *r = responder_get(o, is, cfg, err);
	OCSP_BASICRESP *bs = NULL;
	OCSP_RESPONSE *resp = NULL;
	ASN1_GENERALIZEDTIME *tu = NULL, *nu = NULL, *rt = NULL;
	unsigned char *der = NULL;
	int64_t now = sg_now(), next = 0;
	unsigned long flags;
	int len, rc = -1;

	memset(out, 0, sizeof(*out));
	if (r == NULL)
		return -1;
	if (cfg->ocsp_expiry > 0) {
		next = now + cfg->ocsp_expiry;
		/* An answer never outlives the certificate that signs it. */
		if (next > r->not_after)
			next = r->not_after;
	}
	bs = OCSP_BASICRESP_new();
	if (bs == NULL || time_to_asn1(now, &tu) < 0 || (next != 0 && time_to_asn1(next, &nu) < 0)) {
		sg_err_ossl(err, SG_CRYPTO, "cannot start an OCSP response");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		int status = V_OCSP_CERTSTATUS_UNKNOWN, reason = OCSP_REVOKED_STATUS_NOSTATUS;
		int64_t when = 0;

		if (items[i].is == is && status_of(o, is, items[i].serial, items[i].serial_len, &status, &reason, &when, err) < 0)
			goto out;
		ASN1_GENERALIZEDTIME_free(rt);
		rt = NULL;
		if (status == V_OCSP_CERTSTATUS_REVOKED && time_to_asn1(when, &rt) < 0) {
			sg_err_ossl(err, SG_CRYPTO, "bad revocation time");
			goto out;
		}
		out->unknown = n == 1 && status == V_OCSP_CERTSTATUS_UNKNOWN;
		if (OCSP_basic_add1_status(bs, items[i].cid, status, reason, rt, tu, nu) == NULL) {
			sg_err_ossl(err, SG_CRYPTO, "cannot add an OCSP SingleResponse");
			goto out;
		}
	}
	/* RFC 8954 / RFC 6960 4.4.1: the nonce is echoed unchanged. */
	if (req != NULL && OCSP_copy_nonce(bs, req) <= 0) {
		sg_err_ossl(err, SG_CRYPTO, "cannot copy the OCSP nonce");
		goto out;
	}
	/* RFC 5019 2.2.3: ResponderID byKey keeps responses small; the issuer signing itself sends no certificates. */
	flags = OCSP_RESPID_KEY | (r->is_issuer ? OCSP_NOCERTS : 0);
	if (ca_signer_sign_ocsp(r->signer, bs, r->cert, NULL, flags, err) < 0)
		goto out;
	resp = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs);
	if (resp == NULL || (len = i2d_OCSP_RESPONSE(resp, &der)) <= 0) {
		sg_err_ossl(err, SG_CRYPTO, "cannot encode the OCSP response");
		goto out;
	}
	out->der = sg_xmalloc((size_t)len);
	memcpy(out->der, der, (size_t)len);
	out->len = (size_t)len;
	out->this_update = now;
	out->next_update = next;
	{
		int64_t life = next != 0 ? next - now : r->not_after - now;
		int64_t at = now + life / 2;

		if (at > r->rotate_at)
			at = r->rotate_at;
		out->refresh_at = at;
	}
	etag_of(out->der, out->len, out->etag, sizeof(out->etag));
	rc = 0;
out:
	responder_release(r);
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(resp);
	ASN1_GENERALIZEDTIME_free(tu);
	ASN1_GENERALIZEDTIME_free(nu);
	ASN1_GENERALIZEDTIME_free(rt);
	OPENSSL_free(der);
	return rc;
}

/* ---------------- The cache ---------------- */

/* Under o->lock. */
static struct ocsp_ent *ent_find(struct ocsp *o, const struct ocsp_iss *is, const unsigned char *serial, size_t sl,
                                 const unsigned char *cid, size_t cl)
{
	for (struct ocsp_ent *e = o->tab[bucket_of(is, serial, sl)]; e != NULL; e = e->next)
		if (e->is == is && e->cid_len == cl && memcmp(e->cid, cid, cl) == 0)
			return e;
	return NULL;
}

/* Stores a built answer unless a revocation of the issuer happened since `gen` was read. Takes b->der. */
static void cache_put(struct ocsp *o, struct ocsp_iss *is, uint64_t gen, const unsigned char *serial, size_t sl,
                      const unsigned char *cid, size_t cl, struct built *b)
{
	struct ocsp_ent *e;

	pthread_rwlock_wrlock(&o->lock);
	if (atomic_load(&is->gen) != gen || is->gone) {
		pthread_rwlock_unlock(&o->lock);
		return;
	}
	e = ent_find(o, is, serial, sl, cid, cl);
	if (e == NULL) {
		size_t bk = bucket_of(is, serial, sl);

		/* Unknown serials cost a signature once each but are capped, so made-up serials cannot fill memory. */
		if (o->count >= OCSP_CACHE_MAX || (b->unknown && o->unknown >= OCSP_CACHE_UNKNOWN_MAX)) {
			pthread_rwlock_unlock(&o->lock);
			return;
		}
		e = sg_xcalloc(1, sizeof(*e));
		e->is = is;
		memcpy(e->serial, serial, sl);
		e->serial_len = sl;
		e->cid = sg_xmalloc(cl);
		memcpy(e->cid, cid, cl);
		e->cid_len = cl;
		e->next = o->tab[bk];
		o->tab[bk] = e;
		o->count++;
	}
	if (e->unknown != b->unknown) {
		if (b->unknown)
			o->unknown++;
		else
			o->unknown--;
		e->unknown = b->unknown;
	}
	free(e->der);
	e->der = sg_xmalloc(b->len);
	memcpy(e->der, b->der, b->len);
	e->len = b->len;
	e->this_update = b->this_update;
	e->next_update = b->next_update;
	e->refresh_at = b->refresh_at;
	memcpy(e->etag, b->etag, sizeof(e->etag));
	if (b->refresh_at < o->min_refresh)
		o->min_refresh = b->refresh_at;
	pthread_rwlock_unlock(&o->lock);
}

/* Drops every cached answer of the issuer for the serial (all CertID encodings); under the write lock. */
static size_t cache_drop_serial(struct ocsp *o, struct ocsp_iss *is, const unsigned char *serial, size_t sl,
                                struct sg_strlist *cids)
{
	struct ocsp_ent **pp = &o->tab[bucket_of(is, serial, sl)];
	size_t k = 0;

	while (*pp != NULL) {
		struct ocsp_ent *e = *pp;

		if (e->is == is && e->serial_len == sl && memcmp(e->serial, serial, sl) == 0) {
			char *b64 = sg_base64(e->cid, e->cid_len);

			sg_strlist_add(cids, b64);
			free(b64);
			*pp = e->next;
			o->unknown -= e->unknown ? 1 : 0;
			ent_free(e);
			o->count--;
			k++;
		} else {
			pp = &e->next;
		}
	}
	return k;
}

/* Drops every cached answer of a mount (config/crl changed); under the write lock. */
static void cache_drop_mount(struct ocsp *o, struct ocsp_mnt *mn)
{
	for (size_t b = 0; b < OCSP_BUCKETS; b++) {
		struct ocsp_ent **pp = &o->tab[b];

		while (*pp != NULL) {
			struct ocsp_ent *e = *pp;

			if (e->is->mnt == mn) {
				*pp = e->next;
				o->unknown -= e->unknown ? 1 : 0;
				ent_free(e);
				o->count--;
			} else {
				pp = &e->next;
			}
		}
	}
}

/* Builds and caches the answer for one CertID DER (revocations, refresh). */
static int resign(struct ocsp *o, struct ocsp_iss *is, const unsigned char *cid_der, size_t cl, struct sg_err *err)
{
	const unsigned char *p = cid_der;
	OCSP_CERTID *cid = d2i_OCSP_CERTID(NULL, &p, (long)cl);
	ASN1_INTEGER *sn = NULL;
	struct crl_config cfg;
	struct item it = {0};
	struct built b = {0};
	uint64_t gen;
	int rc = -1;

	if (cid == NULL || OCSP_id_get0_info(NULL, NULL, NULL, &sn, cid) != 1) {
		sg_err_ossl(err, SG_CRYPTO, "cached CertID does not parse");
		goto out;
	}
	it.cid = cid;
	it.is = is;
	it.serial_len = serial_of(sn, it.serial);
	pthread_rwlock_rdlock(&o->lock);
	cfg = is->mnt->cfg;
	pthread_rwlock_unlock(&o->lock);
	gen = atomic_load(&is->gen);
	if (build(o, is, &cfg, &it, 1, NULL, &b, err) < 0)
		goto out;
	cache_put(o, is, gen, it.serial, it.serial_len, cid_der, cl, &b);
	rc = 0;
out:
	free(b.der);
	OCSP_CERTID_free(cid);
	return rc;
}

/* ---------------- Answering ---------------- */

static int cid_der(OCSP_CERTID *cid, unsigned char *buf, size_t cap, size_t *len)
{
	int n = i2d_OCSP_CERTID(cid, NULL);
	unsigned char *p = buf;

	if (n <= 0 || (size_t)n > cap)
		return -1;
	if (i2d_OCSP_CERTID(cid, &p) != n)
		return -1;
	*len = (size_t)n;
	return 0;
}

static bool answer_cached(struct ocsp *o, struct ocsp_iss *is, const struct item *it, const unsigned char *cd,
                          size_t cl, struct ocsp_answer *out)
{
	struct ocsp_ent *e;
	bool hit = false;
	int64_t now = sg_now();

	pthread_rwlock_rdlock(&o->lock);
	e = ent_find(o, is, it->serial, it->serial_len, cd, cl);
	if (e != NULL && (e->next_update == 0 || now < e->next_update)) {
		out->der = sg_xmalloc(e->len);
		memcpy(out->der, e->der, e->len);
		out->len = e->len;
		out->cacheable = true;
		out->this_update = e->this_update;
		out->next_update = e->next_update;
		memcpy(out->etag, e->etag, sizeof(out->etag));
		hit = true;
	}
	pthread_rwlock_unlock(&o->lock);
	return hit;
}

/* ---------------- The cache-hit fast path ---------------- */

/* The DER encodings of the CertID hash algorithms' OIDs, in alg_nids order (RFC 6960 4.1.1, RFC 5758 2). */
static const unsigned char alg_oids[OCSP_NALGS][11] = {
	{0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a},
	{0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01},
	{0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02},
	{0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03},
};
static const size_t alg_oid_len[OCSP_NALGS] = {7, 11, 11, 11};

/* The one CertID of the simplest request, as slices of the request bytes. */
struct fast_req {
	int alg;                           /* index into alg_nids */
	const unsigned char *nh, *kh, *sn, *cid;
	size_t nhl, khl, snl, cidl;
};

/*
 * One DER TLV with tag `tag` at *p (before end): its contents in [*c, *c +
 * *cl), *p moved past it. Definite minimal lengths only (X.690 10.1); the
 * lengths an OCSP request needs fit in two octets.
 */
static bool der_take(const unsigned char **p, const unsigned char *end, unsigned char tag, const unsigned char **c,
                     size_t *cl)
{
	const unsigned char *q = *p;
	size_t n;

	if (end - q < 2 || q[0] != tag)
		return false;
	n = q[1];
	q += 2;
	if (n == 0x81) {
		if (end - q < 1 || q[0] < 0x80)
			return false;
		n = q[0];
		q += 1;
	} else if (n == 0x82) {
		if (end - q < 2 || q[0] == 0)
			return false;
		n = (size_t)q[0] << 8 | q[1];
		q += 2;
	} else if (n >= 0x80) {
		return false;
	}
	if ((size_t)(end - q) < n)
		return false;
	*c = q;
	*cl = n;
	*p = q + n;
	return true;
}

/*
 * The common request (RFC 5019 2.1: one CertID, no nonce, no signature,
 * no requestor name, DER) parsed in place. false for anything else, which
 * then takes the full OpenSSL parse: this only ever speeds up, never
 * decides. The CertID slice equals i2d of what d2i would parse, since only
 * DER is accepted (minimal lengths, positive minimal INTEGER).
 */
static bool fast_parse(const unsigned char *der, size_t len, struct fast_req *f)
{
	const unsigned char *end = der + len, *p = der, *c, *tbs, *list, *one, *cid, *alg, *q;
	size_t cl, tl, ll, ol, il, al;

	if (len > OCSP_MAX_REQUEST_BYTES || !der_take(&p, end, 0x30, &c, &cl) || p != end)
		return false;
	p = c;
	end = c + cl;
	if (!der_take(&p, end, 0x30, &tbs, &tl) || p != end) /* no optionalSignature */
		return false;
	p = tbs;
	end = tbs + tl;
	if (!der_take(&p, end, 0x30, &list, &ll) || p != end) /* no version, requestorName or extensions */
		return false;
	p = list;
	end = list + ll;
	if (!der_take(&p, end, 0x30, &one, &ol) || p != end) /* exactly one Request */
		return false;
	p = one;
	end = one + ol;
	f->cid = p;
	if (!der_take(&p, end, 0x30, &cid, &il) || p != end) /* no singleRequestExtensions */
		return false;
	f->cidl = (size_t)(p - f->cid);
	p = cid;
	end = cid + il;
	if (!der_take(&p, end, 0x30, &alg, &al))
		return false;
	for (f->alg = 0; f->alg < OCSP_NALGS; f->alg++) {
		size_t n = alg_oid_len[f->alg];

		/* Parameters absent or NULL (RFC 5754 2: both are seen). */
		if (al >= n && memcmp(alg, alg_oids[f->alg], n) == 0 &&
		    (al == n || (al == n + 2 && alg[n] == 0x05 && alg[n + 1] == 0x00)))
			break;
	}
	if (f->alg == OCSP_NALGS || !der_take(&p, end, 0x04, &f->nh, &f->nhl) ||
	    !der_take(&p, end, 0x04, &f->kh, &f->khl) || !der_take(&p, end, 0x02, &q, &f->snl) || p != end)
		return false;
	/* A positive INTEGER in minimal form (X.690 8.3.2). */
	if (f->snl == 0 || (q[0] & 0x80) != 0 || (f->snl > 1 && q[0] == 0 && (q[1] & 0x80) == 0))
		return false;
	f->sn = q;
	return true;
}

/*
 * What fast_parse accepts OpenSSL parses too, as one CertID without a
 * nonce whose DER is the slice fast_parse found (the cache key of both
 * paths). req: OpenSSL's parse of the same bytes, NULL when it refused.
 */
static bool fast_agrees(const unsigned char *der, size_t len, OCSP_REQUEST *req, long nonce, size_t n)
{
	struct fast_req f;
	unsigned char cd[OCSP_MAX_CERTID_BYTES];
	size_t cl = 0;

	if (!fast_parse(der, len, &f))
		return true;
	if (req == NULL || n != 1 || nonce != 0)
		return false;
	if (cid_der(OCSP_onereq_get0_id(OCSP_request_onereq_get0(req, 0)), cd, sizeof(cd), &cl) < 0)
		return f.cidl > sizeof(cd);
	return cl == f.cidl && memcmp(cd, f.cid, cl) == 0;
}

/* The answer for a fast_parse'd request when it is cached and fresh; false sends the request the long way. */
static bool fast_answer(struct ocsp *o, const struct ca_mount *m, const char *issuer_id, const struct fast_req *f,
                        struct ocsp_answer *out)
{
	struct ocsp_mnt *mn;
	struct ocsp_iss *is = NULL;
	struct item it = {0};
	const unsigned char *sn = f->sn;
	size_t snl = f->snl;

	while (snl > 0 && *sn == 0) {
		sn++;
		snl--;
	}
	if (snl == 0 || snl > CA_MAX_SERIAL_BYTES)
		return false;
	memcpy(it.serial, sn, snl);
	it.serial_len = snl;
	pthread_rwlock_rdlock(&o->lock);
	mn = mnt_find(o, m->id);
	if (mn != NULL && mn->loaded_ms != 0 && !mn->cfg.ocsp_disable) {
		for (is = mn->issuers; is != NULL; is = is->next) {
			if (is->gone || (issuer_id != NULL && strcmp(issuer_id, is->id) != 0))
				continue;
			if (f->nhl == is->hlen[f->alg] && f->khl == is->hlen[f->alg] &&
			    memcmp(f->nh, is->name_hash[f->alg], f->nhl) == 0 &&
			    memcmp(f->kh, is->key_hash[f->alg], f->khl) == 0)
				break;
		}
	}
	pthread_rwlock_unlock(&o->lock);
	/* Issuers are freed only by ocsp_free, so `is` stays valid; answer_cached locks again. */
	return is != NULL && answer_cached(o, is, &it, f->cid, f->cidl, out);
}

/* cached_only: false (and *out empty) instead of signing an answer. */
static bool respond(struct ocsp *o, const struct ca_mount *m, const char *issuer_id, const unsigned char *der,
                    size_t len, struct ocsp_answer *out, bool cached_only)
{
	bool answered = true;
	struct sg_err err;
	OCSP_REQUEST *req = NULL;
	struct ocsp_mnt *mn;
	struct ocsp_iss *signer = NULL;
	struct item items[OCSP_MAX_REQUEST_ITEMS];
	struct crl_config cfg;
	struct built b = {0};
	unsigned char cd[OCSP_MAX_CERTID_BYTES];
	size_t n = 0, cl = 0;
	long nonce = 0;
	uint64_t gen = 0;
	struct fast_req fr;

	memset(out, 0, sizeof(*out));
	if (fast_parse(der, len, &fr) && fast_answer(o, m, issuer_id, &fr, out))
		return true;
	memset(items, 0, sizeof(items));
	sg_err_init(&err);
	ERR_clear_error();
	/* RFC 6960 4.2.1: a request that cannot be parsed is malformedRequest, unsigned. */
	if ((req = request_parse(der, len, &n, &nonce, &err)) == NULL) {
		set_static(out, resp_malformed, sizeof(resp_malformed));
		goto out;
	}
	if ((mn = mnt_get(o, m, &err)) == NULL) {
		set_static(out, resp_internal, sizeof(resp_internal));
		goto out;
	}
	pthread_rwlock_rdlock(&o->lock);
	cfg = mn->cfg;
	pthread_rwlock_unlock(&o->lock);
	if (cfg.ocsp_disable) {
		set_static(out, resp_unauthorized, sizeof(resp_unauthorized));
		goto out;
	}
	for (int pass = 0; pass < 2 && signer == NULL; pass++) {
		if (pass == 1 || mn->loaded_ms == 0) {
			/* A new issuer is picked up on first sight, at most once per OCSP_RELOAD_MS. */
			if (mn->loaded_ms != 0 && mono_ms() - mn->loaded_ms < OCSP_RELOAD_MS)
				break;
			if (mnt_reload(o, mn, &err) < 0) {
				set_static(out, resp_internal, sizeof(resp_internal));
				goto out;
			}
		}
		pthread_rwlock_rdlock(&o->lock);
		for (size_t i = 0; i < n; i++) {
			OCSP_ONEREQ *one = OCSP_request_onereq_get0(req, (int)i);
			ASN1_INTEGER *sn = NULL;

			items[i].cid = OCSP_onereq_get0_id(one);
			items[i].is = iss_match(mn, items[i].cid, issuer_id);
			if (OCSP_id_get0_info(NULL, NULL, NULL, &sn, items[i].cid) == 1)
				items[i].serial_len = serial_of(sn, items[i].serial);
			if (signer == NULL)
				signer = items[i].is;
		}
		pthread_rwlock_unlock(&o->lock);
	}
	/* RFC 6960 2.3: no issuer of ours (or an unsupported CertID hash): this responder is not authoritative. */
	if (signer == NULL) {
		set_static(out, resp_unauthorized, sizeof(resp_unauthorized));
		goto out;
	}
	if (n == 1 && nonce == 0) {
		if (cid_der(items[0].cid, cd, sizeof(cd), &cl) < 0) {
			set_static(out, resp_malformed, sizeof(resp_malformed));
			goto out;
		}
		if (answer_cached(o, signer, &items[0], cd, cl, out))
			goto out;
		gen = atomic_load(&signer->gen);
	}
	if (cached_only) {
		answered = false;
		goto out;
	}
	if (build(o, signer, &cfg, items, n, nonce != 0 ? req : NULL, &b, &err) < 0) {
		/* An issuer whose key is not in the mount cannot answer: not authoritative. */
		if (err.code == SG_BAD_REQUEST)
			set_static(out, resp_unauthorized, sizeof(resp_unauthorized));
		else
			set_static(out, resp_internal, sizeof(resp_internal));
		goto out;
	}
	out->der = b.der;
	out->len = b.len;
	if (n == 1 && nonce == 0) {
		cache_put(o, signer, gen, items[0].serial, items[0].serial_len, cd, cl, &b);
		out->cacheable = true;
		out->this_update = b.this_update;
		out->next_update = b.next_update;
		memcpy(out->etag, b.etag, sizeof(out->etag));
	}
out:
	OCSP_REQUEST_free(req);
	return answered;
}

void ocsp_respond(struct ocsp *o, const struct ca_mount *m, const char *issuer_id, const unsigned char *der,
                  size_t len, struct ocsp_answer *out)
{
	(void)respond(o, m, issuer_id, der, len, out, false);
}

bool ocsp_respond_cached(struct ocsp *o, const struct ca_mount *m, const char *issuer_id, const unsigned char *der,
                         size_t len, struct ocsp_answer *out)
{
	return respond(o, m, issuer_id, der, len, out, true);
}

/* ---------------- Listeners and the refresh thread ---------------- */

/* DESIGN.md rule 3: after the durable mark, the cached answers of the serial become "revoked" at once. */
static void on_revoked(void *arg, const char *mount_id, const char *serial_hex, const char *issuer_id)
{
	struct ocsp *o = arg;
	struct ocsp_mnt *mn;
	struct ocsp_iss *is = NULL;
	struct sg_strlist cids = {0};
	unsigned char serial[CA_MAX_SERIAL_BYTES];
	size_t sl = 0;

	if (sg_hex_parse_serial(serial_hex, serial, sizeof(serial), &sl) < 0)
		return;
	while (sl > 0 && serial[0] == 0) {
		memmove(serial, serial + 1, sl - 1);
		sl--;
	}
	pthread_rwlock_wrlock(&o->lock);
	mn = mnt_find(o, mount_id);
	if (mn != NULL)
		is = iss_find(mn, issuer_id);
	if (is != NULL) {
		atomic_fetch_add(&is->gen, 1);
		cache_drop_serial(o, is, serial, sl, &cids);
	}
	pthread_rwlock_unlock(&o->lock);
	for (size_t i = 0; i < cids.n; i++) {
		unsigned char *cd = NULL;
		size_t cl = 0;
		struct sg_err err;

		sg_err_init(&err);
		if (sg_base64_decode(cids.v[i], strlen(cids.v[i]), &cd, &cl) == 0)
			(void)resign(o, is, cd, cl, &err); /* on failure the next request signs from the store */
		free(cd);
	}
	sg_strlist_clear(&cids);
}

static void on_config(void *arg, const char *mount_id, const struct crl_config *cfg)
{
	struct ocsp *o = arg;
	struct ocsp_mnt *mn;

	pthread_rwlock_wrlock(&o->lock);
	mn = mnt_find(o, mount_id);
	if (mn != NULL) {
		mn->cfg = *cfg;
		/* New lifetimes, signer kind or a disable take effect for every answer now. */
		for (struct ocsp_iss *is = mn->issuers; is != NULL; is = is->next) {
			atomic_fetch_add(&is->gen, 1);
			responder_release(is->resp);
			is->resp = NULL;
		}
		cache_drop_mount(o, mn);
	}
	pthread_rwlock_unlock(&o->lock);
}

struct due {
	struct ocsp_iss *is;
	unsigned char *cid;
	size_t cid_len;
};

void ocsp_refresh_now(struct ocsp *o, int64_t ahead)
{
	struct due *v = NULL;
	size_t n = 0;
	int64_t now = sg_now(), min = INT64_MAX;

	pthread_rwlock_rdlock(&o->lock);
	if (o->min_refresh > now + ahead) {
		pthread_rwlock_unlock(&o->lock);
		return;
	}
	v = sg_xcalloc(OCSP_REFRESH_BATCH, sizeof(*v));
	for (size_t b = 0; b < OCSP_BUCKETS; b++)
		for (struct ocsp_ent *e = o->tab[b]; e != NULL; e = e->next) {
			if (e->refresh_at <= now + ahead && n < OCSP_REFRESH_BATCH) {
				v[n].is = e->is;
				v[n].cid = sg_xmalloc(e->cid_len);
				memcpy(v[n].cid, e->cid, e->cid_len);
				v[n].cid_len = e->cid_len;
				n++;
			} else if (e->refresh_at < min) {
				min = e->refresh_at;
			}
		}
	pthread_rwlock_unlock(&o->lock);
	pthread_rwlock_wrlock(&o->lock);
	/* A full batch leaves more due entries behind: look again at the next tick. */
	o->min_refresh = n == OCSP_REFRESH_BATCH ? now : min;
	pthread_rwlock_unlock(&o->lock);
	for (size_t i = 0; i < n; i++) {
		struct sg_err err;

		sg_err_init(&err);
		if (resign(o, v[i].is, v[i].cid, v[i].cid_len, &err) < 0) {
			pthread_rwlock_wrlock(&o->lock);
			o->min_refresh = now; /* retried at the next tick */
			pthread_rwlock_unlock(&o->lock);
		}
		free(v[i].cid);
	}
	free(v);
}

static void *refresh_main(void *arg)
{
	struct ocsp *o = arg;

	pthread_mutex_lock(&o->tlock);
	while (!o->stop) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += OCSP_TICK_MS / 1000;
		pthread_cond_timedwait(&o->wake, &o->tlock, &ts);
		if (o->stop)
			break;
		pthread_mutex_unlock(&o->tlock);
		ocsp_refresh_now(o, 0);
		pthread_mutex_lock(&o->tlock);
	}
	pthread_mutex_unlock(&o->tlock);
	return NULL;
}

size_t ocsp_cache_count(struct ocsp *o, const struct ca_mount *m)
{
	size_t k = 0;

	pthread_rwlock_rdlock(&o->lock);
	for (size_t b = 0; b < OCSP_BUCKETS; b++)
		for (struct ocsp_ent *e = o->tab[b]; e != NULL; e = e->next)
			if (strcmp(e->is->mnt->id, m->id) == 0)
				k++;
	pthread_rwlock_unlock(&o->lock);
	return k;
}

int ocsp_new(struct store *st, struct ca *ca, struct crl *crl, struct ocsp **out, struct sg_err *err)
{
	struct ocsp *o = sg_xcalloc(1, sizeof(*o));
	struct crl_listener l = {.revoked = on_revoked, .config_changed = on_config, .arg = o};

	(void)err;
	o->st = st;
	o->ca = ca;
	o->crl = crl;
	o->tab = sg_xcalloc(OCSP_BUCKETS, sizeof(*o->tab));
	o->min_refresh = INT64_MAX;
	pthread_rwlock_init(&o->lock, NULL);
	pthread_mutex_init(&o->tlock, NULL);
	pthread_cond_init(&o->wake, NULL);
	/* One fan-out point for ca_set_revoke_hook: crl/ owns the hook and calls its listeners. */
	crl_listen(crl, &l);
	*out = o;
	return 0;
}

int ocsp_start(struct ocsp *o, struct sg_err *err)
{
	int rc = pthread_create(&o->thread, NULL, refresh_main, o);

	if (rc != 0)
		return sg_err_set(err, SG_INTERNAL, "cannot start the OCSP refresh thread: %s", strerror(rc));
	pthread_setname_np(o->thread, "ocsp-refresh");
	o->started = true;
	return 0;
}

void ocsp_free(struct ocsp *o)
{
	if (o == NULL)
		return;
	if (o->started) {
		pthread_mutex_lock(&o->tlock);
		o->stop = true;
		pthread_cond_signal(&o->wake);
		pthread_mutex_unlock(&o->tlock);
		pthread_join(o->thread, NULL);
	}
	for (size_t b = 0; b < OCSP_BUCKETS; b++)
		while (o->tab[b] != NULL) {
			struct ocsp_ent *e = o->tab[b];

			o->tab[b] = e->next;
			ent_free(e);
		}
	free(o->tab);
	while (o->mounts != NULL) {
		struct ocsp_mnt *mn = o->mounts;

		o->mounts = mn->next;
		while (mn->issuers != NULL) {
			struct ocsp_iss *is = mn->issuers;

			mn->issuers = is->next;
			responder_release(is->resp);
			X509_free(is->cert);
			free(is);
		}
		free(mn->path);
		free(mn);
	}
	pthread_rwlock_destroy(&o->lock);
	pthread_mutex_destroy(&o->tlock);
	pthread_cond_destroy(&o->wake);
	free(o);
}
