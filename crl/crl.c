/*
 * CRLs (RFC 5280 section 5): per issuer a full CRL and, when enabled, a
 * delta CRL, built in the background and served from the cached DER.
 *
 * A build streams the mount's revocation records into the DER of the
 * revokedCertificates list, entry by entry, in one buffer with room left in
 * front; once the list's length is known the TBSCertList header is written
 * into that room, the signer signs the TBS bytes in place and the outer
 * CertificateList header is put before them. A million entries cost about
 * 40 bytes each once, never an OpenSSL object each.
 */
#include "crl/internal.h"

#include <dirent.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CRL_FILE_MAX ((size_t)1 << 30) /* a CRL file we are willing to read back */
#define CRL_SIDECAR_MAX 4096
#define CRL_CFG_KEY "crl"

/* ---------------- Clock and durations ---------------- */

int64_t crl_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void crl_duration_string(int64_t secs, char *buf, size_t len)
{
	int64_t h = secs / 3600, m = secs % 3600 / 60, s = secs % 60;
	size_t off = 0;

	buf[0] = '\0';
	if (secs <= 0) {
		snprintf(buf, len, "0s");
		return;
	}
	if (h > 0)
		off += (size_t)snprintf(buf + off, len - off, "%lldh", (long long)h);
	if (m > 0 && off < len)
		off += (size_t)snprintf(buf + off, len - off, "%lldm", (long long)m);
	if (s > 0 && off < len)
		snprintf(buf + off, len - off, "%llds", (long long)s);
}

/* ---------------- Configuration ---------------- */

void crl_config_default(struct crl_config *c)
{
	memset(c, 0, sizeof(*c));
	c->expiry = 72 * 3600;
	c->ocsp_expiry = 12 * 3600;
	c->auto_rebuild_grace_period = 12 * 3600;
	c->delta_rebuild_interval = 15 * 60;
	c->max_crl_entries = -1;
	c->rebuild_delay_ms = 250;
	c->ocsp_responder_ttl = 7 * 24 * 3600;
}

static int dur_field(const json_t *body, const char *key, int64_t *out, int64_t min, int64_t max,
                     struct sg_err *err)
{
	int64_t v = 0;
	int rc = sg_json_duration(body, key, &v, err);

	if (rc <= 0)
		return rc;
	if (v < min || v > max)
		return sg_err_set(err, SG_BAD_REQUEST, "field '%s' must be between %llds and %llds", key,
		                  (long long)min, (long long)max);
	*out = v;
	return 1;
}

/* rebuild_delay: "500ms", or a duration in seconds ("1s", 2, "2"). */
static int delay_field(const json_t *body, int64_t *ms, struct sg_err *err)
{
	const json_t *v = json_object_get(body, "rebuild_delay");
	const char *s = json_string_value(v);
	int64_t secs = 0;
	size_t n;
	int rc;

	if (s != NULL && (n = strlen(s)) > 2 && strcmp(s + n - 2, "ms") == 0) {
		char *end;
		long long x = strtoll(s, &end, 10);

		if (end != s + n - 2 || x < 0 || x > CRL_MAX_REBUILD_DELAY_MS)
			return sg_err_set(err, SG_BAD_REQUEST, "field 'rebuild_delay' must be between 0ms and %dms",
			                  CRL_MAX_REBUILD_DELAY_MS);
		*ms = x;
		return 1;
	}
	if ((rc = dur_field(body, "rebuild_delay", &secs, 0, CRL_MAX_REBUILD_DELAY_MS / 1000, err)) == 1)
		*ms = secs * 1000;
	return rc;
}

int crl_config_from_json(const json_t *body, struct crl_config *c, struct sg_err *err)
{
	struct crl_config n = *c;
	int64_t v;
	int rc;

	if (sg_json_bool(body, "disable", &n.disable, err) < 0 ||
	    sg_json_bool(body, "ocsp_disable", &n.ocsp_disable, err) < 0 ||
	    sg_json_bool(body, "auto_rebuild", &n.auto_rebuild, err) < 0 ||
	    sg_json_bool(body, "enable_delta", &n.enable_delta, err) < 0 ||
	    sg_json_bool(body, "ocsp_sign_with_issuer", &n.ocsp_sign_with_issuer, err) < 0 ||
	    dur_field(body, "expiry", &n.expiry, 1, CRL_MAX_DURATION, err) < 0 ||
	    dur_field(body, "ocsp_expiry", &n.ocsp_expiry, 0, CRL_MAX_DURATION, err) < 0 ||
	    dur_field(body, "auto_rebuild_grace_period", &n.auto_rebuild_grace_period, 1, CRL_MAX_DURATION, err) < 0 ||
	    dur_field(body, "delta_rebuild_interval", &n.delta_rebuild_interval, 1, CRL_MAX_DURATION, err) < 0 ||
	    dur_field(body, "ocsp_responder_ttl", &n.ocsp_responder_ttl, 60, CRL_MAX_DURATION, err) < 0)
		return -1;
	if (delay_field(body, &n.rebuild_delay_ms, err) < 0)
		return -1;
	if ((rc = sg_json_int(body, "max_crl_entries", &v, err)) < 0)
		return -1;
	if (rc == 1) {
		if (v < -1)
			return sg_err_set(err, SG_BAD_REQUEST, "field 'max_crl_entries' must be -1 (no limit) or more");
		n.max_crl_entries = v == 0 ? -1 : v;
	}
	/* Vault's checks: the grace period lies inside the CRL's life, deltas need the background rebuild. */
	if (n.auto_rebuild_grace_period >= n.expiry)
		return sg_err_set(err, SG_BAD_REQUEST,
		                  "CRL auto-rebuilding grace period must be strictly shorter than CRL expiry");
	if (n.enable_delta && !n.auto_rebuild)
		return sg_err_set(err, SG_BAD_REQUEST,
		                  "Delta CRLs cannot be enabled when auto rebuilding is disabled as the complete CRL is "
		                  "always regenerated!");
	*c = n;
	return 0;
}

json_t *crl_config_to_json(const struct crl_config *c)
{
	char expiry[32], ocsp[32], grace[32], delta[32], delay[32], rttl[32];
	json_t *o;

	crl_duration_string(c->expiry, expiry, sizeof(expiry));
	crl_duration_string(c->ocsp_expiry, ocsp, sizeof(ocsp));
	crl_duration_string(c->auto_rebuild_grace_period, grace, sizeof(grace));
	crl_duration_string(c->delta_rebuild_interval, delta, sizeof(delta));
	if (c->rebuild_delay_ms % 1000 == 0)
		crl_duration_string(c->rebuild_delay_ms / 1000, delay, sizeof(delay));
	else
		snprintf(delay, sizeof(delay), "%lldms", (long long)c->rebuild_delay_ms);
	crl_duration_string(c->ocsp_responder_ttl, rttl, sizeof(rttl));
	o = json_pack("{s:s, s:b, s:b, s:s, s:b, s:s, s:b, s:s, s:I, s:b, s:b, s:b, s:s, s:b, s:s}", "expiry", expiry,
	              "disable", c->disable, "ocsp_disable", c->ocsp_disable, "ocsp_expiry", ocsp, "auto_rebuild",
	              c->auto_rebuild, "auto_rebuild_grace_period", grace, "enable_delta", c->enable_delta,
	              "delta_rebuild_interval", delta, "max_crl_entries", (json_int_t)c->max_crl_entries,
	              "cross_cluster_revocation", 0, "unified_crl", 0, "unified_crl_on_existing_paths", 0,
	              "rebuild_delay", delay, "ocsp_sign_with_issuer", c->ocsp_sign_with_issuer, "ocsp_responder_ttl",
	              rttl);
	if (o == NULL)
		sg_die("out of memory");
	return o;
}

static void skey(char *buf, size_t cap, const char *mount_id, const char *suffix)
{
	int n = snprintf(buf, cap, "%s/%s", mount_id, suffix);

	if (n < 0 || (size_t)n >= cap)
		sg_die("crl: store key too long");
}

static int config_load(struct crl *c, const char *mount_id, struct crl_config *out, struct sg_err *err)
{
	char key[CRL_ID_MAX + 32];
	unsigned char *v = NULL;
	size_t len = 0;
	json_t *o = NULL;
	json_error_t je;
	int rc;

	crl_config_default(out);
	skey(key, sizeof(key), mount_id, CRL_CFG_KEY);
	if ((rc = store_get(c->st, STORE_CONFIG, key, strlen(key), &v, &len, err)) <= 0)
		return rc;
	o = json_loadb((const char *)v, len, 0, &je);
	free(v);
	if (o == NULL || crl_config_from_json(o, out, err) < 0) {
		json_decref(o);
		crl_config_default(out);
		return sg_err_set(err, SG_STORAGE, "malformed CRL configuration record");
	}
	json_decref(o);
	return 1;
}

/* ---------------- Registry ---------------- */

static bool id_ok(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > CRL_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z') ||
		      id[i] == '-' || id[i] == '_'))
			return false;
	return true;
}

/* Caller holds the lock. */
static struct crl_mnt *mnt_find(struct crl *c, const char *mount_id, bool create)
{
	struct crl_mnt *m;

	for (m = c->mounts; m != NULL; m = m->next)
		if (strcmp(m->id, mount_id) == 0)
			return m;
	if (!create || !id_ok(mount_id))
		return NULL;
	m = sg_xcalloc(1, sizeof(*m));
	snprintf(m->id, sizeof(m->id), "%s", mount_id);
	m->path = sg_xstrdup(mount_id);
	m->next = c->mounts;
	c->mounts = m;
	return m;
}

static struct crl_iss *iss_find(struct crl_mnt *m, const char *issuer_id, bool create)
{
	struct crl_iss *i;

	for (i = m->issuers; i != NULL; i = i->next)
		if (strcmp(i->id, issuer_id) == 0)
			return i;
	if (!create || strlen(issuer_id) != 36 || !id_ok(issuer_id))
		return NULL;
	i = sg_xcalloc(1, sizeof(*i));
	memcpy(i->id, issuer_id, 37);
	i->next = m->issuers;
	m->issuers = i;
	return i;
}

/* The mount's configuration, loaded once (caller holds the lock; a store read). */
static const struct crl_config *mnt_cfg(struct crl *c, struct crl_mnt *m)
{
	struct sg_err err;

	if (!m->have_cfg) {
		sg_err_init(&err);
		/* A malformed record reads as the defaults: CRLs keep being served. */
		(void)config_load(c, m->id, &m->cfg, &err);
		m->have_cfg = true;
	}
	return &m->cfg;
}

static void mnt_path_set(struct crl_mnt *mn, const struct ca_mount *m)
{
	if (m->path != NULL && m->path[0] != '\0' && strcmp(mn->path, m->path) != 0) {
		free(mn->path);
		mn->path = sg_xstrdup(m->path);
	}
}

/* ---------------- Blobs ---------------- */

struct crl_blob_priv {
	struct crl_blob pub;
	atomic_int refs;
	pthread_mutex_t pem_lock;
	/*
	 * A full CRL built here: where its revokedCertificates entries are in
	 * der, so that the next CRL can copy them and append what was revoked
	 * since (no scan), and the configuration generation it was built for.
	 */
	bool appendable;
	size_t list_off, list_len;
	uint64_t cfg_gen;
};

static struct crl_blob_priv *priv(const struct crl_blob *b)
{
	return (struct crl_blob_priv *)b;
}

static struct crl_blob *blob_new(void)
{
	struct crl_blob_priv *p = sg_xcalloc(1, sizeof(*p));

	atomic_init(&p->refs, 1);
	pthread_mutex_init(&p->pem_lock, NULL);
	return &p->pub;
}

static struct crl_blob *blob_ref(struct crl_blob *b)
{
	if (b != NULL)
		atomic_fetch_add(&((struct crl_blob_priv *)b)->refs, 1);
	return b;
}

void crl_blob_release(struct crl_blob *b)
{
	struct crl_blob_priv *p = (struct crl_blob_priv *)b;

	if (b == NULL || atomic_fetch_sub(&p->refs, 1) != 1)
		return;
	free(b->der);
	free(b->pem);
	pthread_mutex_destroy(&p->pem_lock);
	free(p);
}

const char *crl_blob_pem(struct crl_blob *b, size_t *len)
{
	struct crl_blob_priv *p = (struct crl_blob_priv *)b;
	static const char head[] = "-----BEGIN X509 CRL-----\n", tail[] = "-----END X509 CRL-----\n";

	pthread_mutex_lock(&p->pem_lock);
	if (b->pem == NULL) {
		/* RFC 7468 5: base64 in lines of 64 characters; built once, shared by every request. */
		size_t lines = (b->der_len + 47) / 48, cap = sizeof(head) + sizeof(tail) + lines * 65 + 1;
		char *out = sg_xmalloc(cap), *w = out;

		memcpy(w, head, sizeof(head) - 1);
		w += sizeof(head) - 1;
		for (size_t off = 0; off < b->der_len; off += 48) {
			size_t n = b->der_len - off < 48 ? b->der_len - off : 48;
			int k = EVP_EncodeBlock((unsigned char *)w, b->der + off, (int)n);

			w += k;
			*w++ = '\n';
		}
		memcpy(w, tail, sizeof(tail) - 1);
		w += sizeof(tail) - 1;
		*w = '\0';
		b->pem_len = (size_t)(w - out);
		b->pem = out;
	}
	pthread_mutex_unlock(&p->pem_lock);
	if (len != NULL)
		*len = b->pem_len;
	return b->pem;
}

/* ---------------- DER writing ---------------- */

struct dbuf {
	unsigned char *p;
	size_t len, cap;
};

static void dbuf_reserve(struct dbuf *b, size_t extra)
{
	size_t need = b->len + extra;

	if (need <= b->cap)
		return;
	if (b->cap == 0)
		b->cap = 4096;
	while (b->cap < need)
		b->cap *= 2;
	b->p = sg_xrealloc(b->p, b->cap);
}

static void dbuf_put(struct dbuf *b, const void *d, size_t n)
{
	dbuf_reserve(b, n);
	memcpy(b->p + b->len, d, n);
	b->len += n;
}

static size_t der_len_size(size_t n)
{
	size_t k = 1;

	if (n < 128)
		return 1;
	while (n > 0) {
		k++;
		n >>= 8;
	}
	return k;
}

/* Tag and length; returns the bytes written (at most 10). */
static size_t der_hdr(unsigned char *out, unsigned char tag, size_t n)
{
	size_t k = der_len_size(n);

	out[0] = tag;
	if (k == 1) {
		out[1] = (unsigned char)n;
		return 2;
	}
	out[1] = (unsigned char)(0x80 | (k - 1));
	for (size_t i = 0; i < k - 1; i++)
		out[1 + k - 1 - i] = (unsigned char)(n >> (8 * i));
	return 1 + k;
}

/*
 * RFC 5280 5.1.2.4 / 4.1.2.5: UTCTime through 2049, GeneralizedTime from
 * 2050, always in Zulu with seconds. force_gen: GeneralizedTime always
 * (5.3.2 invalidityDate). Returns the bytes written (at most 17).
 */
static size_t der_time(unsigned char *out, int64_t t, bool force_gen)
{
	struct tm tm;
	time_t tt = (time_t)t;
	char s[24];
	int n;

	if (gmtime_r(&tt, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	if (!force_gen && tm.tm_year + 1900 >= 1950 && tm.tm_year + 1900 < 2050) {
		n = snprintf(s, sizeof(s), "%02d%02d%02d%02d%02d%02dZ", (tm.tm_year + 1900) % 100, tm.tm_mon + 1,
		             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
		out[0] = 0x17;
	} else {
		n = snprintf(s, sizeof(s), "%04d%02d%02d%02d%02d%02dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
		             tm.tm_hour, tm.tm_min, tm.tm_sec);
		out[0] = 0x18;
	}
	out[1] = (unsigned char)n;
	memcpy(out + 2, s, (size_t)n);
	return 2 + (size_t)n;
}

/* A non-negative INTEGER from a big-endian magnitude (at most 20 octets + 1). */
static size_t der_uint(unsigned char *out, const unsigned char *mag, size_t n)
{
	size_t off = 0;

	while (n > 1 && mag[0] == 0) {
		mag++;
		n--;
	}
	out[off++] = 0x02;
	if (n == 0) {
		out[off++] = 1;
		out[off++] = 0;
		return off;
	}
	if (mag[0] & 0x80) {
		out[off++] = (unsigned char)(n + 1);
		out[off++] = 0;
	} else {
		out[off++] = (unsigned char)n;
	}
	memcpy(out + off, mag, n);
	return off + n;
}

#define CRL_ENTRY_MAX 160 /* one encoded revokedCertificates entry, with both extensions */

/*
 * One revokedCertificates entry (RFC 5280 5.1.2.6). reasonCode (5.3.1) is
 * left out for unspecified, as the RFC asks; removeFromCRL exists only in
 * delta CRLs (5.3.1), so a full CRL lists such an entry without a reason.
 * invalidityDate (5.3.2) is a GeneralizedTime.
 */
static size_t entry_encode(unsigned char *out, const unsigned char *serial, size_t serial_len, int64_t when,
                           enum ca_reason reason, int64_t invalidity, bool delta)
{
	static const unsigned char reason_oid[] = {0x06, 0x03, 0x55, 0x1d, 0x15};
	static const unsigned char inval_oid[] = {0x06, 0x03, 0x55, 0x1d, 0x18};
	unsigned char body[CRL_ENTRY_MAX], exts[64], t[20];
	size_t n = 0, e = 0, k;
	bool with_reason = reason != CA_REASON_UNSPECIFIED && (delta || reason != CA_REASON_REMOVE_FROM_CRL);

	n += der_uint(body + n, serial, serial_len);
	n += der_time(body + n, when, false);
	if (with_reason) {
		/* SEQUENCE { OID, OCTET STRING { ENUMERATED } } */
		exts[e++] = 0x30;
		exts[e++] = 10;
		memcpy(exts + e, reason_oid, sizeof(reason_oid));
		e += sizeof(reason_oid);
		exts[e++] = 0x04;
		exts[e++] = 3;
		exts[e++] = 0x0a;
		exts[e++] = 1;
		exts[e++] = (unsigned char)reason;
	}
	if (invalidity > 0) {
		k = der_time(t, invalidity, true);
		exts[e++] = 0x30;
		exts[e++] = (unsigned char)(sizeof(inval_oid) + 2 + k);
		memcpy(exts + e, inval_oid, sizeof(inval_oid));
		e += sizeof(inval_oid);
		exts[e++] = 0x04;
		exts[e++] = (unsigned char)k;
		memcpy(exts + e, t, k);
		e += k;
	}
	if (e > 0) {
		n += der_hdr(body + n, 0x30, e);
		memcpy(body + n, exts, e);
		n += e;
	}
	k = der_hdr(out, 0x30, n);
	memcpy(out + k, body, n);
	return k + n;
}

/* ---------------- The CRL-level extensions (small: OpenSSL objects are fine here) ---------------- */

static int ext_add(struct dbuf *b, int nid, int crit, void *value, struct sg_err *err)
{
	X509_EXTENSION *ext = X509V3_EXT_i2d(nid, crit, value);
	unsigned char *der = NULL;
	int n;

	if (ext == NULL || (n = i2d_X509_EXTENSION(ext, &der)) <= 0) {
		X509_EXTENSION_free(ext);
		return sg_err_ossl(err, SG_CRYPTO, "unable to encode a CRL extension");
	}
	dbuf_put(b, der, (size_t)n);
	OPENSSL_free(der);
	X509_EXTENSION_free(ext);
	return 0;
}

static int ext_number(struct dbuf *b, int nid, int crit, uint64_t v, struct sg_err *err)
{
	ASN1_INTEGER *ai = ASN1_INTEGER_new();
	int rc;

	if (ai == NULL || ASN1_INTEGER_set_uint64(ai, v) != 1)
		sg_die("out of memory");
	rc = ext_add(b, nid, crit, ai, err);
	ASN1_INTEGER_free(ai);
	return rc;
}

/* RFC 5280 5.2.1: the AKI's keyIdentifier is the issuer certificate's SKI (or the key's SHA-1, 4.2.1.2 (1)). */
static int ext_aki(struct dbuf *b, X509 *issuer, struct sg_err *err)
{
	AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(issuer);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int rc = -1;

	if (akid == NULL || (akid->keyid = ASN1_OCTET_STRING_new()) == NULL)
		sg_die("out of memory");
	if (ski != NULL) {
		if (ASN1_OCTET_STRING_set(akid->keyid, ASN1_STRING_get0_data(ski), ASN1_STRING_length(ski)) != 1)
			sg_die("out of memory");
	} else if (X509_pubkey_digest(issuer, EVP_sha1(), md, &mdlen) != 1 ||
	           ASN1_OCTET_STRING_set(akid->keyid, md, (int)mdlen) != 1) {
		sg_err_ossl(err, SG_CRYPTO, "unable to compute the issuer's key identifier");
		goto out;
	}
	rc = ext_add(b, NID_authority_key_identifier, 0, akid, err);
out:
	AUTHORITY_KEYID_free(akid);
	return rc;
}

/* RFC 5280 5.2.6: Freshest CRL names where the delta CRLs are (same syntax as CRL distribution points). */
static int ext_freshest(struct dbuf *b, const struct sg_strlist *urls, struct sg_err *err)
{
	CRL_DIST_POINTS *dps = sk_DIST_POINT_new_null();
	int rc = -1;

	if (dps == NULL)
		sg_die("out of memory");
	for (size_t i = 0; i < urls->n; i++) {
		DIST_POINT *dp = DIST_POINT_new();
		GENERAL_NAME *gn = GENERAL_NAME_new();
		ASN1_IA5STRING *uri = ASN1_IA5STRING_new();

		if (dp == NULL || gn == NULL || uri == NULL || (dp->distpoint = DIST_POINT_NAME_new()) == NULL ||
		    (dp->distpoint->name.fullname = GENERAL_NAMES_new()) == NULL ||
		    ASN1_STRING_set(uri, urls->v[i], (int)strlen(urls->v[i])) != 1)
			sg_die("out of memory");
		dp->distpoint->type = 0;
		GENERAL_NAME_set0_value(gn, GEN_URI, uri);
		if (sk_GENERAL_NAME_push(dp->distpoint->name.fullname, gn) <= 0 || sk_DIST_POINT_push(dps, dp) <= 0)
			sg_die("out of memory");
	}
	rc = ext_add(b, NID_freshest_crl, 0, dps, err);
	sk_DIST_POINT_pop_free(dps, DIST_POINT_free);
	return rc;
}

/* ---------------- One CRL being built ---------------- */

struct build {
	char issuer_id[37];
	bool is_default;
	enum crl_kind kind;
	X509 *cert;                        /* the issuer's certificate (up-ref'ed) */
	struct ca_signer *signer;
	unsigned char *alg;                /* AlgorithmIdentifier DER */
	size_t alg_len;
	unsigned char *name;               /* issuer Name DER */
	size_t name_len;
	uint64_t number, base_number;
	int64_t this_update, next_update;
	struct sg_strlist freshest;        /* delta CRL URLs for Freshest CRL (full CRLs) */
	struct dbuf buf;                   /* entries start at `front` */
	size_t front;
	size_t entries;
	int64_t max_entries;
	int64_t recent_since;              /* scans: serials revoked from here on go to `recent` */
	struct sg_strlist recent;
	bool failed;
	struct sg_err err;
	struct crl_blob *out;
};

static void build_clear(struct build *b)
{
	X509_free(b->cert);
	ca_signer_release(b->signer);
	OPENSSL_free(b->alg);
	OPENSSL_free(b->name);
	sg_strlist_clear(&b->freshest);
	sg_strlist_clear(&b->recent);
	free(b->buf.p);
	crl_blob_release(b->out);
	memset(b, 0, sizeof(*b));
}

/* Room in front of the entries for every header of the TBS and of the CertificateList. */
static void build_begin(struct build *b)
{
	b->front = 64 + b->alg_len + b->name_len + 2 * 17;
	dbuf_reserve(&b->buf, b->front + 4096);
	b->buf.len = b->front;
}

static void build_entry(struct build *b, const unsigned char *serial, size_t serial_len, int64_t when,
                        enum ca_reason reason, int64_t invalidity)
{
	unsigned char e[CRL_ENTRY_MAX];
	size_t n = entry_encode(e, serial, serial_len, when, reason, invalidity, b->kind == CRL_DELTA);

	dbuf_put(&b->buf, e, n);
	b->entries++;
}

/*
 * Completes the TBSCertList around the entries, signs it and wraps it in
 * the CertificateList (RFC 5280 5.1). The result is b->out.
 */
static int build_finish(struct build *b, struct sg_err *err)
{
	struct dbuf exts = {0}, pre = {0};
	unsigned char hdr[16], tmp[24], *sig = NULL, *alg2 = NULL;
	size_t list_len = b->buf.len - b->front, ext_len, tbs_len, hl, wl, sig_len = 0, alg2_len = 0, start, tbs_start;
	size_t bit_len, tail_len, total;
	struct crl_blob *blob = NULL;
	int rc = -1;

	/* crlExtensions: AKI (5.2.1), CRL number (5.2.3), delta indicator (5.2.4) or Freshest CRL (5.2.6). */
	if (ext_aki(&exts, b->cert, err) < 0 || ext_number(&exts, NID_crl_number, 0, b->number, err) < 0)
		goto out;
	if (b->kind == CRL_DELTA && ext_number(&exts, NID_delta_crl, 1, b->base_number, err) < 0)
		goto out;
	if (b->kind == CRL_FULL && b->freshest.n > 0 && ext_freshest(&exts, &b->freshest, err) < 0)
		goto out;
	ext_len = exts.len;
	/* version v2 (5.1.2.1: extensions present), signature, issuer, thisUpdate, nextUpdate. */
	dbuf_put(&pre, "\x02\x01\x01", 3);
	dbuf_put(&pre, b->alg, b->alg_len);
	dbuf_put(&pre, b->name, b->name_len);
	dbuf_put(&pre, tmp, der_time(tmp, b->this_update, false));
	dbuf_put(&pre, tmp, der_time(tmp, b->next_update, false));
	/* 5.1.2.6: with no revoked certificates the list MUST be absent, not empty. */
	if (list_len > 0)
		dbuf_put(&pre, hdr, der_hdr(hdr, 0x30, list_len));
	/* crlExtensions [0] EXPLICIT Extensions, after the list. */
	hl = der_hdr(hdr, 0x30, ext_len);
	wl = der_hdr(tmp, 0xa0, hl + ext_len);
	tbs_len = pre.len + list_len + wl + hl + ext_len;
	dbuf_put(&b->buf, tmp, wl);
	dbuf_put(&b->buf, hdr, hl);
	dbuf_put(&b->buf, exts.p, ext_len);
	hl = der_hdr(hdr, 0x30, tbs_len);
	if (hl + pre.len + 16 > b->front)
		sg_die("crl: header room too small");
	tbs_start = b->front - pre.len - hl;
	memcpy(b->buf.p + tbs_start, hdr, hl);
	memcpy(b->buf.p + tbs_start + hl, pre.p, pre.len);
	if (ca_signer_sign_der(b->signer, b->buf.p + tbs_start, hl + tbs_len, NULL, &alg2, &alg2_len, &sig, &sig_len,
	                       err) < 0)
		goto out;
	if (alg2_len != b->alg_len || memcmp(alg2, b->alg, b->alg_len) != 0) {
		sg_err_set(err, SG_INTERNAL, "the signer changed its signature algorithm during a CRL build");
		goto out;
	}
	/* signatureAlgorithm and signatureValue BIT STRING (no unused bits). */
	bit_len = sig_len + 1;
	dbuf_put(&b->buf, b->alg, b->alg_len);
	dbuf_put(&b->buf, hdr, der_hdr(hdr, 0x03, bit_len));
	dbuf_put(&b->buf, "", 1);
	dbuf_put(&b->buf, sig, sig_len);
	tail_len = b->buf.len - tbs_start;
	hl = der_hdr(hdr, 0x30, tail_len);
	start = tbs_start - hl;
	memcpy(b->buf.p + start, hdr, hl);
	total = hl + tail_len;
	blob = blob_new();
	/* One copy of the CRL in memory: the buffer itself, moved to its start and trimmed. */
	memmove(b->buf.p, b->buf.p + start, total);
	blob->der = sg_xrealloc(b->buf.p, total);
	blob->der_len = total;
	b->buf.p = NULL;
	b->buf.len = b->buf.cap = 0;
	priv(blob)->appendable = b->kind == CRL_FULL;
	priv(blob)->list_off = b->front - start;
	priv(blob)->list_len = list_len;
	blob->number = b->number;
	blob->base_number = b->kind == CRL_DELTA ? b->base_number : 0;
	blob->this_update = b->this_update;
	blob->next_update = b->next_update;
	blob->entries = b->entries;
	snprintf(blob->etag, sizeof(blob->etag), "\"%.8s-%s-%llu\"", b->issuer_id, b->kind == CRL_FULL ? "f" : "d",
	         (unsigned long long)b->number);
	b->out = blob;
	blob = NULL;
	rc = 0;
out:
	crl_blob_release(blob);
	OPENSSL_free(sig);
	OPENSSL_free(alg2);
	free(exts.p);
	free(pre.p);
	return rc;
}

/* ---------------- Issuer data for a build ---------------- */

/* {{issuer_id}}, {{cluster_path}}, {{cluster_aia_path}} of templated AIA URLs (compat 1.9). */
static char *url_expand(const char *u, const char *issuer_id, const struct ca_cluster *cl)
{
	static const char *const keys[] = {"{{issuer_id}}", "{{cluster_path}}", "{{cluster_aia_path}}"};
	char *out = sg_xstrdup(u);

	for (size_t k = 0; k < 3; k++) {
		const char *val = k == 0 ? issuer_id : k == 1 ? cl->path : cl->aia_path != NULL && cl->aia_path[0] ? cl->aia_path : cl->path;
		char *p;

		if (val == NULL)
			val = "";
		while ((p = strstr(out, keys[k])) != NULL) {
			size_t pre = (size_t)(p - out), kl = strlen(keys[k]);
			char *n = sg_xasprintf("%.*s%s%s", (int)pre, out, val, p + kl);

			free(out);
			out = n;
		}
	}
	return out;
}

static void delta_urls(struct crl *c, const struct ca_mount *m, const struct ca_issuer_info *info,
                       struct sg_strlist *out)
{
	struct ca_urls mu = {0};
	struct ca_cluster cl = {0};
	const struct ca_urls *u = &info->urls;
	struct sg_err err;

	sg_err_init(&err);
	if (u->delta_crl_distribution_points.n == 0) {
		if (ca_urls_get(c->ca, m, &mu, &err) < 0)
			goto out;
		u = &mu;
	}
	if (u->enable_templating && ca_cluster_get(c->ca, m, &cl, &err) < 0)
		goto out;
	for (size_t i = 0; i < u->delta_crl_distribution_points.n; i++) {
		char *s = u->enable_templating ? url_expand(u->delta_crl_distribution_points.v[i], info->id, &cl)
		                               : sg_xstrdup(u->delta_crl_distribution_points.v[i]);

		sg_strlist_add(out, s);
		free(s);
	}
out:
	ca_urls_clear(&mu);
	ca_cluster_clear(&cl);
}

/* The next CRL number of an issuer, durable before it is used (RFC 5280 5.2.3: strictly increasing). */
static int number_next(struct crl *c, const char *mount_id, const char *issuer_id, uint64_t *out,
                       struct sg_err *err)
{
	char key[CRL_ID_MAX + 64];
	char suffix[64];
	struct store_batch *b = store_batch_new();
	int rc;

	snprintf(suffix, sizeof(suffix), "crl-number/%s", issuer_id);
	skey(key, sizeof(key), mount_id, suffix);
	store_batch_incr(b, STORE_CONFIG, key, 1, out);
	rc = store_commit(c->st, b, err);
	store_batch_free(b);
	return rc;
}

static bool usage_allows_crl(const struct ca_issuer_info *info)
{
	return info->usage.n == 0 || sg_strlist_has(&info->usage, "crl-signing");
}

/* Everything about the issuer a build needs, and its number. */
static int build_prepare(struct crl *c, const struct ca_mount *m, const struct ca_issuer_info *info,
                         enum crl_kind kind, const struct crl_config *cfg, struct build *b, struct sg_err *err)
{
	unsigned char *name = NULL;
	int n;
	int64_t now = sg_now();

	memcpy(b->issuer_id, info->id, 37);
	b->kind = kind;
	b->is_default = info->is_default;
	b->max_entries = cfg->max_crl_entries;
	if (!usage_allows_crl(info))
		return sg_err_set(err, SG_BAD_REQUEST, "issuer %s is not allowed to sign CRLs (usage lacks crl-signing)",
		                  info->id);
	if (ca_issuer_signer_get(c->ca, m, info->id, &b->signer, NULL, err) < 0)
		return -1;
	X509_up_ref(info->cert);
	b->cert = info->cert;
	if ((n = i2d_X509_NAME(X509_get_subject_name(info->cert), &name)) <= 0)
		return sg_err_ossl(err, SG_CRYPTO, "unable to encode the issuer name");
	b->name = name;
	b->name_len = (size_t)n;
	if (ca_signer_sign_der(b->signer, NULL, 0, NULL, &b->alg, &b->alg_len, NULL, NULL, err) < 0)
		return -1;
	b->this_update = now;
	b->next_update = now + (kind == CRL_FULL ? cfg->expiry : cfg->delta_rebuild_interval);
	if (kind == CRL_FULL && cfg->enable_delta)
		delta_urls(c, m, info, &b->freshest);
	if (number_next(c, m->id, info->id, &b->number, err) < 0)
		return -1;
	build_begin(b);
	return 0;
}

/* ---------------- Persistence of built CRLs ---------------- */

static char *file_path(struct crl *c, const char *mount_id, const char *issuer_id, enum crl_kind kind,
                       const char *ext)
{
	return sg_xasprintf("%s/%s.%s.%s.%s", c->dir, mount_id, issuer_id, kind == CRL_FULL ? "full" : "delta", ext);
}

static void sha256_hex(const unsigned char *d, size_t n, char out[65])
{
	unsigned char md[32];
	unsigned int len = 0;

	if (EVP_Digest(d, n, md, &len, EVP_sha256(), NULL) != 1 || len != 32)
		sg_die("sha256 failed");
	for (size_t i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* The DER, then a sidecar naming its number, times and digest: a torn pair is ignored at load. */
static int blob_save(struct crl *c, const char *mount_id, const char *issuer_id, enum crl_kind kind,
                     const struct crl_blob *b, struct sg_err *err)
{
	char *der_path, *json_path, *js = NULL, digest[65];
	json_t *o;
	int rc = -1;

	if (c->dir == NULL)
		return 0;
	der_path = file_path(c, mount_id, issuer_id, kind, "der");
	json_path = file_path(c, mount_id, issuer_id, kind, "json");
	sha256_hex(b->der, b->der_len, digest);
	o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:s}", "number", (json_int_t)b->number, "base_number",
	              (json_int_t)b->base_number, "this_update", (json_int_t)b->this_update, "next_update",
	              (json_int_t)b->next_update, "entries", (json_int_t)b->entries, "sha256", digest);
	if (o == NULL || (js = json_dumps(o, JSON_COMPACT)) == NULL)
		sg_die("out of memory");
	if (sg_file_write_atomic(der_path, b->der, b->der_len, 0600, err) < 0 ||
	    sg_file_write_atomic(json_path, js, strlen(js), 0600, err) < 0)
		goto out;
	rc = 0;
out:
	json_decref(o);
	free(js);
	free(der_path);
	free(json_path);
	return rc;
}

static struct crl_blob *blob_load(struct crl *c, const char *mount_id, const char *issuer_id, enum crl_kind kind)
{
	char *der_path = file_path(c, mount_id, issuer_id, kind, "der");
	char *json_path = file_path(c, mount_id, issuer_id, kind, "json");
	unsigned char *der = NULL, *js = NULL;
	size_t der_len = 0, js_len = 0;
	json_t *o = NULL;
	json_error_t je;
	struct crl_blob *b = NULL;
	struct sg_err err;
	char digest[65];
	const char *want;

	sg_err_init(&err);
	if (sg_file_read(json_path, CRL_SIDECAR_MAX, &js, &js_len, &err) < 0 ||
	    sg_file_read(der_path, CRL_FILE_MAX, &der, &der_len, &err) < 0)
		goto out;
	o = json_loadb((const char *)js, js_len, 0, &je);
	want = json_string_value(json_object_get(o, "sha256"));
	sha256_hex(der, der_len, digest);
	if (o == NULL || want == NULL || strcmp(want, digest) != 0 || der_len == 0)
		goto out;
	b = blob_new();
	b->der = der;
	b->der_len = der_len;
	der = NULL;
	b->number = (uint64_t)json_integer_value(json_object_get(o, "number"));
	b->base_number = (uint64_t)json_integer_value(json_object_get(o, "base_number"));
	b->this_update = json_integer_value(json_object_get(o, "this_update"));
	b->next_update = json_integer_value(json_object_get(o, "next_update"));
	b->entries = (size_t)json_integer_value(json_object_get(o, "entries"));
	snprintf(b->etag, sizeof(b->etag), "\"%.8s-%s-%llu\"", issuer_id, kind == CRL_FULL ? "f" : "d",
	         (unsigned long long)b->number);
out:
	json_decref(o);
	free(der);
	free(js);
	free(der_path);
	free(json_path);
	return b;
}

static void files_remove(struct crl *c, const char *mount_id, const char *issuer_id)
{
	static const char *const exts[] = {"der", "json"};

	if (c->dir == NULL)
		return;
	for (int k = 0; k < 2; k++) {
		for (size_t e = 0; e < 2; e++) {
			char *p = file_path(c, mount_id, issuer_id, k == 0 ? CRL_FULL : CRL_DELTA, exts[e]);

			(void)unlink(p);
			free(p);
		}
	}
}

/* ---------------- Builds ---------------- */

struct scan_ctx {
	struct build *targets;
	size_t n;
	struct build *fallback;            /* the default issuer's build: entries of unknown issuers */
	const struct ca_issuer_info *infos;
	size_t ninfos;
};

static bool issuer_known(const struct scan_ctx *s, const char *id)
{
	for (size_t i = 0; i < s->ninfos; i++)
		if (strcmp(s->infos[i].id, id) == 0)
			return true;
	return false;
}

static int scan_cb(void *arg, const struct ca_revoked_entry *e, struct sg_err *err)
{
	struct scan_ctx *s = arg;
	struct build *t = NULL;

	for (size_t i = 0; i < s->n; i++) {
		if (!s->targets[i].failed && strcmp(s->targets[i].issuer_id, e->issuer_id) == 0) {
			t = &s->targets[i];
			break;
		}
	}
	/* compat 1.1: a revocation whose issuer the mount does not know lands on the default issuer's CRL. */
	if (t == NULL && s->fallback != NULL && !s->fallback->failed && !issuer_known(s, e->issuer_id))
		t = s->fallback;
	if (t == NULL)
		return 0;
	if (t->max_entries > 0 && (int64_t)t->entries >= t->max_entries) {
		t->failed = true;
		sg_err_set(&t->err, SG_BAD_REQUEST, "CRL of issuer %s exceeds max_crl_entries (%lld)", t->issuer_id,
		           (long long)t->max_entries);
		return 0;
	}
	build_entry(t, e->serial, e->serial_len, e->revocation_time, e->reason, e->invalidity_date);
	if (e->revocation_time >= t->recent_since && t->recent.n < CRL_MAX_PENDING)
		sg_strlist_add(&t->recent, e->serial_hex);
	(void)err;
	return 0;
}

/* Which issuers a result belongs to, for the caller's bookkeeping. */
struct build_result {
	char issuer_id[37];
	bool ok;
	bool gone;                         /* the issuer no longer exists: forget it */
	struct sg_err err;
	struct crl_blob *blob;
	struct sg_strlist recent;          /* scans: recent serials the CRL already lists */
};

static void notify_error(struct build_result *r, const struct sg_err *e)
{
	r->ok = false;
	r->err = *e;
	r->gone = e->code == SG_UNKNOWN_ISSUER || e->code == SG_NOT_FOUND;
}

/*
 * Full CRLs of some issuers of one mount from one scan of its revocation
 * records. ids[i] == "" means "the default issuer". res[i] receives each
 * outcome. Returns -1 only when nothing could be done (err set).
 */
static int build_full(struct crl *c, const struct ca_mount *m, char (*ids)[37], size_t n, int64_t recent_since,
                      struct build_result *res, struct sg_err *err)
{
	struct ca_issuer_info *infos = NULL;
	size_t ninfos = 0;
	struct build *bs = sg_xcalloc(n, sizeof(*bs));
	struct scan_ctx sc = {bs, n, NULL, NULL, 0};
	struct crl_config cfg;
	int rc = -1;

	if (crl_config_get(c, m, &cfg, err) < 0 || ca_issuer_list(c->ca, m, &infos, &ninfos, err) < 0)
		goto out;
	sc.infos = infos;
	sc.ninfos = ninfos;
	for (size_t i = 0; i < n; i++) {
		const struct ca_issuer_info *info = NULL;

		sg_err_init(&res[i].err);
		sg_err_init(&bs[i].err);
		for (size_t k = 0; k < ninfos; k++)
			if (ids[i][0] == '\0' ? infos[k].is_default : strcmp(infos[k].id, ids[i]) == 0)
				info = &infos[k];
		memcpy(res[i].issuer_id, info != NULL ? info->id : ids[i], 37);
		if (info == NULL) {
			bs[i].failed = true;
			sg_err_set(&bs[i].err, SG_UNKNOWN_ISSUER, "issuer %s not found", ids[i]);
			continue;
		}
		bs[i].recent_since = recent_since;
		if (build_prepare(c, m, info, CRL_FULL, &cfg, &bs[i], &bs[i].err) < 0) {
			bs[i].failed = true;
			continue;
		}
		if (bs[i].is_default)
			sc.fallback = &bs[i];
	}
	/* disable: a signed CRL with no entries (compat 1.6); revocations are still recorded. */
	if (!cfg.disable && ca_revoked_scan(c->ca, m, scan_cb, &sc, err) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (!bs[i].failed && build_finish(&bs[i], &bs[i].err) < 0)
			bs[i].failed = true;
		if (bs[i].failed) {
			notify_error(&res[i], &bs[i].err);
			continue;
		}
		res[i].ok = true;
		res[i].blob = bs[i].out;
		bs[i].out = NULL;
		res[i].recent = bs[i].recent;
		memset(&bs[i].recent, 0, sizeof(bs[i].recent));
	}
	rc = 0;
out:
	for (size_t i = 0; i < n; i++)
		build_clear(&bs[i]);
	free(bs);
	for (size_t k = 0; k < ninfos; k++)
		ca_issuer_info_clear(&infos[k]);
	free(infos);
	return rc;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * A CRL built from `base` and the revocations since (serials, the pending
 * list: copied), read one by one:
 * - CRL_DELTA: a delta CRL (RFC 5280 5.2.4) of those revocations;
 * - CRL_FULL: the next full CRL without a scan: base's entries, copied as
 *   they are, plus those revocations. Revocations are never undone and
 *   only tidy removes entries (tidy asks for a scan), so this is the CRL a
 *   scan would build, for the cost of a copy and a signature.
 */
static int build_from_base(struct crl *c, const struct ca_mount *m, const char *issuer_id, const struct crl_blob *base,
                           enum crl_kind kind, struct sg_strlist *serials, struct build_result *res,
                           struct sg_err *err)
{
	struct ca_issuer_info info = {0};
	struct build b = {0};
	struct crl_config cfg;
	size_t n;
	int rc = -1;

	sg_err_init(&res->err);
	sg_err_init(&b.err);
	memcpy(res->issuer_id, issuer_id, 37);
	if (crl_config_get(c, m, &cfg, err) < 0)
		return -1;
	if (ca_issuer_get(c->ca, m, issuer_id, &info, &b.err) < 0 ||
	    build_prepare(c, m, &info, kind, &cfg, &b, &b.err) < 0)
		goto fail;
	if (kind == CRL_DELTA) {
		b.base_number = base->number;
	} else {
		dbuf_put(&b.buf, base->der + priv(base)->list_off, priv(base)->list_len);
		b.entries = base->entries;
	}
	n = kind == CRL_DELTA && cfg.disable ? 0 : serials->n;
	if (n > 0)
		qsort(serials->v, n, sizeof(char *), str_cmp);
	for (size_t i = 0; i < n; i++) {
		struct ca_cert_record r = {0};
		unsigned char mag[CA_MAX_SERIAL_BYTES];
		size_t mlen = 0;
		struct sg_err tmp;

		if (i > 0 && strcmp(serials->v[i], serials->v[i - 1]) == 0)
			continue;
		sg_err_init(&tmp);
		/* Gone (tidied) or unreadable: not listed; the next full CRL from a scan is the truth. */
		if (ca_cert_get(c->ca, m, serials->v[i], &r, &tmp) < 0 || !r.revoked ||
		    sg_hex_parse_serial(serials->v[i], mag, sizeof(mag), &mlen) < 0) {
			ca_cert_record_clear(&r);
			continue;
		}
		if (kind == CRL_FULL && b.max_entries > 0 && (int64_t)b.entries >= b.max_entries) {
			ca_cert_record_clear(&r);
			sg_err_set(&b.err, SG_BAD_REQUEST, "CRL of issuer %s exceeds max_crl_entries (%lld)", issuer_id,
			           (long long)b.max_entries);
			goto fail;
		}
		build_entry(&b, mag, mlen, r.revocation_time, r.reason, r.invalidity_date);
		ca_cert_record_clear(&r);
	}
	if (build_finish(&b, &b.err) < 0)
		goto fail;
	res->ok = true;
	res->blob = b.out;
	b.out = NULL;
	rc = 0;
	goto out;
fail:
	notify_error(res, &b.err);
	rc = 0;
out:
	build_clear(&b);
	ca_issuer_info_clear(&info);
	return rc;
}

/* ---------------- Scheduling ---------------- */

static int64_t delay_ms(const struct crl_config *cfg)
{
	/* auto_rebuild off: Vault rebuilds on every revocation; here the next build starts at once (coalesced). */
	return cfg->auto_rebuild ? cfg->rebuild_delay_ms : 0;
}

static void want_full(struct crl *c, struct crl_iss *i, int64_t due_ms)
{
	if (!i->full_want || due_ms < i->full_due_ms)
		i->full_due_ms = due_ms;
	i->full_want = true;
	pthread_cond_signal(&c->wake);
}

static void want_delta(struct crl *c, struct crl_iss *i, int64_t due_ms)
{
	if (!i->delta_want || due_ms < i->delta_due_ms)
		i->delta_due_ms = due_ms;
	i->delta_want = true;
	pthread_cond_signal(&c->wake);
}

static void on_revoke(void *arg, const char *mount_id, const char *serial_hex, const char *issuer_id)
{
	struct crl *c = arg;
	struct crl_listener ls[CRL_MAX_LISTENERS];
	size_t nl;
	struct crl_mnt *mn;
	struct crl_iss *i = NULL;
	char resolved[37] = "";

	if (issuer_id == NULL || issuer_id[0] == '\0') {
		/* A record without an issuer lists on the default issuer's CRL. */
		struct ca_mount m = {mount_id, mount_id, 0, 0};
		struct ca_issuer_info info = {0};
		struct sg_err err;

		sg_err_init(&err);
		if (ca_issuer_get(c->ca, &m, "default", &info, &err) == 0)
			memcpy(resolved, info.id, 37);
		ca_issuer_info_clear(&info);
		issuer_id = resolved;
	}
	pthread_mutex_lock(&c->lock);
	mn = mnt_find(c, mount_id, true);
	if (mn != NULL)
		i = iss_find(mn, issuer_id, true);
	if (i != NULL) {
		const struct crl_config *cfg = mnt_cfg(c, mn);
		int64_t due = crl_mono_ms() + delay_ms(cfg);

		const char *key = serial_hex;

		/* A revocation the last scan already listed (its hook came late) is not owed again. */
		if (i->listed_recent.n > 0 &&
		    bsearch(&key, i->listed_recent.v, i->listed_recent.n, sizeof(char *), str_cmp) != NULL)
			goto listeners;
		/* What the next delta lists, and what the next full CRL appends to the last one. */
		if (i->pending.n < CRL_MAX_PENDING)
			sg_strlist_add(&i->pending, serial_hex);
		else
			i->need_scan = true;
		if (cfg->enable_delta && i->full != NULL) {
			size_t rebase = i->full->entries / 8 > CRL_DELTA_REBASE_MIN ? i->full->entries / 8 : CRL_DELTA_REBASE_MIN;

			want_delta(c, i, due);
			/* A long delta costs every relying party: time for a new base. */
			if (i->pending.n >= rebase)
				want_full(c, i, due);
		} else {
			want_full(c, i, due);
		}
	}
listeners:
	nl = c->nlisteners;
	memcpy(ls, c->listeners, sizeof(ls));
	pthread_mutex_unlock(&c->lock);
	for (size_t k = 0; k < nl; k++)
		if (ls[k].revoked != NULL)
			ls[k].revoked(ls[k].arg, mount_id, serial_hex, issuer_id);
}

void crl_listen(struct crl *c, const struct crl_listener *l)
{
	pthread_mutex_lock(&c->lock);
	if (c->nlisteners == CRL_MAX_LISTENERS)
		sg_die("crl: too many listeners");
	c->listeners[c->nlisteners++] = *l;
	pthread_mutex_unlock(&c->lock);
}

/* When a published CRL wants replacing although nothing was revoked: before its nextUpdate. */
static int64_t full_refresh_at(const struct crl_blob *b, const struct crl_config *cfg)
{
	int64_t life = b->next_update - b->this_update;
	int64_t grace = cfg->auto_rebuild_grace_period < life / 2 ? cfg->auto_rebuild_grace_period : life / 2;

	/* A changed expiry takes effect at the next build, so the shorter of the old and the new life counts. */
	if (cfg->expiry < life)
		return b->this_update + cfg->expiry - (cfg->auto_rebuild_grace_period < cfg->expiry / 2
		                                            ? cfg->auto_rebuild_grace_period
		                                            : cfg->expiry / 2);
	return b->next_update - grace;
}

static int64_t delta_refresh_at(const struct crl_blob *b)
{
	return b->next_update - (b->next_update - b->this_update) / 4;
}

/* Publishes a result (caller holds the lock). */
static void publish(struct crl *c, struct crl_mnt *mn, struct crl_iss *i, enum crl_kind kind,
                    struct build_result *r)
{
	if (r->ok) {
		struct crl_blob **slot = kind == CRL_FULL ? &i->full : &i->delta;

		crl_blob_release(*slot);
		*slot = blob_ref(r->blob);
		i->failures = 0;
		i->last_error[0] = '\0';
		if (kind == CRL_FULL && mnt_cfg(c, mn)->enable_delta)
			want_delta(c, i, crl_mono_ms()); /* a new base needs its (short) delta */
		return;
	}
	snprintf(i->last_error, sizeof(i->last_error), "%s", r->err.detail);
	if (i->failures < 16)
		i->failures++;
	{
		int64_t backoff = (int64_t)1000 << (i->failures < 6 ? i->failures : 6);

		if (backoff > CRL_RETRY_MAX_MS)
			backoff = CRL_RETRY_MAX_MS;
		if (kind == CRL_FULL)
			want_full(c, i, crl_mono_ms() + backoff);
		else
			want_delta(c, i, crl_mono_ms() + backoff);
	}
}

static void iss_free(struct crl_iss *i)
{
	crl_blob_release(i->full);
	crl_blob_release(i->delta);
	sg_strlist_clear(&i->pending);
	sg_strlist_clear(&i->inflight);
	sg_strlist_clear(&i->listed_recent);
	free(i);
}

static void iss_forget(struct crl *c, struct crl_mnt *mn, struct crl_iss *gone)
{
	for (struct crl_iss **pp = &mn->issuers; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == gone) {
			*pp = gone->next;
			files_remove(c, mn->id, gone->id);
			iss_free(gone);
			return;
		}
	}
}

/*
 * Writes a published CRL to disk for the next start (lock not held; the
 * issuer is still marked building, so no other build writes its files).
 * Served from memory already: a failed write only costs a build after a
 * restart, so it is remembered, not fatal.
 */
static void persist(struct crl *c, const char *mount_id, struct crl_iss *i, enum crl_kind kind,
                    const struct crl_blob *b)
{
	struct sg_err err;

	sg_err_init(&err);
	if (b != NULL && blob_save(c, mount_id, i->id, kind, b, &err) < 0)
		snprintf(i->save_error, sizeof(i->save_error), "%s", err.detail);
}

/* Pending serials a scan already listed (their hook ran after the scan began) are not owed again. */
static void pending_drop_listed(struct crl_iss *i, struct sg_strlist *listed)
{
	size_t w = 0;

	if (listed->n == 0)
		return;
	/* Sorted here once: the caller keeps the list for on_revoke's lookups. */
	qsort(listed->v, listed->n, sizeof(char *), str_cmp);
	if (i->pending.n == 0)
		return;
	for (size_t r = 0; r < i->pending.n; r++) {
		const char *key = i->pending.v[r];

		if (bsearch(&key, listed->v, listed->n, sizeof(char *), str_cmp) != NULL) {
			free(i->pending.v[r]);
			continue;
		}
		i->pending.v[w++] = i->pending.v[r];
	}
	i->pending.n = w;
}

/*
 * Runs the full builds of the given issuers (already marked building by the
 * caller, lock held on entry and on return).
 */
static void run_full(struct crl *c, struct crl_mnt *mn, struct crl_iss **v, size_t n)
{
	char(*ids)[37] = sg_xcalloc(n, sizeof(*ids));
	struct build_result *res = sg_xcalloc(n, sizeof(*res));
	struct ca_mount m = {mn->id, NULL, 0, 0};
	char *path = sg_xstrdup(mn->path);
	uint64_t gen = mn->cfg_gen;
	int64_t since = sg_now() - CRL_RECENT_WINDOW;
	struct sg_err err;
	int rc;

	m.path = path;
	for (size_t k = 0; k < n; k++) {
		memcpy(ids[k], v[k]->id, 37);
		v[k]->full_want = false;
		/* Revocations so far are in the scan below: the delta after it starts from what comes next. */
		sg_strlist_clear(&v[k]->inflight);
		v[k]->inflight = v[k]->pending;
		memset(&v[k]->pending, 0, sizeof(v[k]->pending));
	}
	pthread_mutex_unlock(&c->lock);
	sg_err_init(&err);
	rc = build_full(c, &m, ids, n, since, res, &err);
	pthread_mutex_lock(&c->lock);
	for (size_t k = 0; k < n; k++) {
		struct crl_iss *i = v[k];

		if (rc < 0)
			notify_error(&res[k], &err);
		if (!res[k].ok) {
			/* The snapshot goes back: a later delta still owes those entries. */
			for (size_t s = 0; s < i->inflight.n; s++)
				sg_strlist_add(&i->pending, i->inflight.v[s]);
		}
		sg_strlist_clear(&i->inflight);
		if (res[k].ok) {
			priv(res[k].blob)->cfg_gen = gen;
			i->need_scan = false;
			pending_drop_listed(i, &res[k].recent);
			/* Kept: a hook of one of these may still be on its way (on_revoke checks). */
			sg_strlist_clear(&i->listed_recent);
			i->listed_recent = res[k].recent;
			memset(&res[k].recent, 0, sizeof(res[k].recent));
		}
		sg_strlist_clear(&res[k].recent);
		if (res[k].gone) {
			i->building = false;
			iss_forget(c, mn, i);
			v[k] = NULL;
			continue;
		}
		/* Served from memory at once; the files follow. */
		publish(c, mn, i, CRL_FULL, &res[k]);
	}
	pthread_mutex_unlock(&c->lock);
	for (size_t k = 0; k < n; k++)
		if (v[k] != NULL && res[k].blob != NULL)
			persist(c, mn->id, v[k], CRL_FULL, res[k].blob);
	pthread_mutex_lock(&c->lock);
	for (size_t k = 0; k < n; k++) {
		if (v[k] != NULL)
			v[k]->building = false;
		crl_blob_release(res[k].blob);
	}
	pthread_cond_broadcast(&c->done);
	free(ids);
	free(res);
	free(path);
}

/* The incremental full build of one issuer (marked building; lock held on entry and return). */
static void run_append(struct crl *c, struct crl_mnt *mn, struct crl_iss *i)
{
	struct crl_blob *base = blob_ref(i->full);
	struct ca_mount m = {mn->id, NULL, 0, 0};
	char *path = sg_xstrdup(mn->path);
	uint64_t gen = mn->cfg_gen;
	char id[37];
	struct build_result res = {0};
	struct sg_err err;

	m.path = path;
	memcpy(id, i->id, 37);
	i->full_want = false;
	sg_strlist_clear(&i->inflight);
	i->inflight = i->pending;
	memset(&i->pending, 0, sizeof(i->pending));
	pthread_mutex_unlock(&c->lock);
	sg_err_init(&err);
	if (build_from_base(c, &m, id, base, CRL_FULL, &i->inflight, &res, &err) < 0)
		notify_error(&res, &err);
	pthread_mutex_lock(&c->lock);
	if (!res.ok)
		for (size_t s = 0; s < i->inflight.n; s++)
			sg_strlist_add(&i->pending, i->inflight.v[s]);
	sg_strlist_clear(&i->inflight);
	if (res.ok)
		priv(res.blob)->cfg_gen = gen;
	if (res.gone) {
		i->building = false;
		iss_forget(c, mn, i);
	} else {
		publish(c, mn, i, CRL_FULL, &res);
		if (res.ok) {
			pthread_mutex_unlock(&c->lock);
			persist(c, mn->id, i, CRL_FULL, res.blob);
			pthread_mutex_lock(&c->lock);
		}
		i->building = false;
	}
	crl_blob_release(res.blob);
	crl_blob_release(base);
	pthread_cond_broadcast(&c->done);
	free(path);
}

/* Can the next full CRL be the last one plus the pending revocations? (lock held) */
static bool can_append(struct crl *c, struct crl_mnt *mn, const struct crl_iss *i)
{
	return i->full != NULL && priv(i->full)->appendable && priv(i->full)->cfg_gen == mn->cfg_gen &&
	       !i->need_scan && !mnt_cfg(c, mn)->disable;
}

static void run_delta(struct crl *c, struct crl_mnt *mn, struct crl_iss *i)
{
	struct sg_strlist serials = {0};
	struct crl_blob *base = blob_ref(i->full);
	struct ca_mount m = {mn->id, NULL, 0, 0};
	char *path = sg_xstrdup(mn->path);
	char id[37];
	struct build_result res = {0};
	struct sg_err err;

	m.path = path;
	memcpy(id, i->id, 37);
	i->delta_want = false;
	sg_strlist_copy(&serials, &i->pending);
	pthread_mutex_unlock(&c->lock);
	sg_err_init(&err);
	if (build_from_base(c, &m, id, base, CRL_DELTA, &serials, &res, &err) < 0)
		notify_error(&res, &err);
	pthread_mutex_lock(&c->lock);
	/* A base replaced meanwhile makes this delta refer to an old base: build again. */
	if (res.ok && i->full != base) {
		i->building = false;
		want_delta(c, i, crl_mono_ms());
	} else if (res.gone) {
		i->building = false;
		iss_forget(c, mn, i);
	} else {
		publish(c, mn, i, CRL_DELTA, &res);
		if (res.ok) {
			pthread_mutex_unlock(&c->lock);
			persist(c, mn->id, i, CRL_DELTA, res.blob);
			pthread_mutex_lock(&c->lock);
		}
		i->building = false;
	}
	crl_blob_release(res.blob);
	crl_blob_release(base);
	sg_strlist_clear(&serials);
	pthread_cond_broadcast(&c->done);
	free(path);
}

/*
 * One scheduling pass (lock held): starts at most one job and returns true
 * when it ran one; otherwise *wait_ms is how long nothing is due.
 */
static bool run_due(struct crl *c, int64_t *wait_ms)
{
	int64_t now_ms = crl_mono_ms(), now = sg_now();
	int64_t wait = CRL_TICK_MS;

	for (struct crl_mnt *mn = c->mounts; mn != NULL; mn = mn->next) {
		const struct crl_config *cfg = mnt_cfg(c, mn);
		struct crl_iss *batch[64];
		size_t nb = 0;

		for (struct crl_iss *i = mn->issuers; i != NULL; i = i->next) {
			if (i->building)
				continue;
			/* Before nextUpdate: from a scan, which also re-reads everything once in a while. */
			if (!i->full_want && i->full != NULL && now >= full_refresh_at(i->full, cfg)) {
				i->need_scan = true;
				want_full(c, i, now_ms);
			}
			if (i->full_want) {
				if (i->full_due_ms <= now_ms) {
					if (can_append(c, mn, i)) {
						i->building = true;
						run_append(c, mn, i);
						return true;
					}
					if (nb < sizeof(batch) / sizeof(batch[0]))
						batch[nb++] = i;
				} else if (i->full_due_ms - now_ms < wait) {
					wait = i->full_due_ms - now_ms;
				}
			}
		}
		if (nb > 0) {
			for (size_t k = 0; k < nb; k++)
				batch[k]->building = true;
			run_full(c, mn, batch, nb);
			return true;
		}
		for (struct crl_iss *i = mn->issuers; i != NULL; i = i->next) {
			if (i->building || i->full == NULL || !cfg->enable_delta)
				continue;
			if (!i->delta_want && i->delta != NULL && now >= delta_refresh_at(i->delta))
				want_delta(c, i, now_ms);
			if (i->delta_want && i->delta_due_ms <= now_ms) {
				i->building = true;
				run_delta(c, mn, i);
				return true;
			}
			if (i->delta_want && i->delta_due_ms - now_ms < wait)
				wait = i->delta_due_ms - now_ms;
		}
	}
	*wait_ms = wait < 1 ? 1 : wait;
	return false;
}

static void *rebuild_main(void *arg)
{
	struct crl *c = arg;

	pthread_setname_np(pthread_self(), "crl-rebuild");
	pthread_mutex_lock(&c->lock);
	while (!c->stop) {
		int64_t wait_ms = CRL_TICK_MS;
		struct timespec ts;

		if (run_due(c, &wait_ms))
			continue;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += wait_ms / 1000;
		ts.tv_nsec += (wait_ms % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&c->wake, &c->lock, &ts);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* ---------------- Public API ---------------- */

int crl_new(struct store *st, struct ca *ca, const char *state_dir, struct crl **out, struct sg_err *err)
{
	struct crl *c;
	pthread_condattr_t ca_attr;

	*out = NULL;
	if (state_dir != NULL && mkdir(state_dir, 0700) < 0 && errno != EEXIST)
		return sg_err_set(err, SG_STORAGE, "cannot create the CRL directory %s: %s", state_dir, strerror(errno));
	c = sg_xcalloc(1, sizeof(*c));
	c->st = st;
	c->ca = ca;
	c->dir = state_dir != NULL ? sg_xstrdup(state_dir) : NULL;
	pthread_mutex_init(&c->lock, NULL);
	pthread_condattr_init(&ca_attr);
	pthread_condattr_setclock(&ca_attr, CLOCK_MONOTONIC);
	pthread_cond_init(&c->wake, &ca_attr);
	pthread_cond_init(&c->done, &ca_attr);
	pthread_condattr_destroy(&ca_attr);
	if (crl_tidy_init(c, err) < 0) {
		crl_free(c);
		return -1;
	}
	ca_set_revoke_hook(ca, on_revoke, c);
	*out = c;
	return 0;
}

/* Issuers with CRL files from an earlier run: known again, and rebuilt in the background. */
static void discover(struct crl *c)
{
	DIR *d;
	struct dirent *de;

	if (c->dir == NULL || (d = opendir(c->dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		char mid[CRL_ID_MAX + 1], iid[40];
		const char *dot1 = strchr(de->d_name, '.'), *dot2;
		struct crl_mnt *mn;
		struct crl_iss *i;
		size_t ml;

		if (dot1 == NULL || (dot2 = strchr(dot1 + 1, '.')) == NULL || strcmp(dot2, ".full.json") != 0)
			continue;
		ml = (size_t)(dot1 - de->d_name);
		if (ml == 0 || ml > CRL_ID_MAX || (size_t)(dot2 - dot1 - 1) != 36)
			continue;
		memcpy(mid, de->d_name, ml);
		mid[ml] = '\0';
		memcpy(iid, dot1 + 1, 36);
		iid[36] = '\0';
		pthread_mutex_lock(&c->lock);
		if ((mn = mnt_find(c, mid, true)) != NULL && (i = iss_find(mn, iid, true)) != NULL)
			want_full(c, i, crl_mono_ms());
		pthread_mutex_unlock(&c->lock);
	}
	closedir(d);
}

int crl_start(struct crl *c, struct sg_err *err)
{
	discover(c);
	if (pthread_create(&c->thread, NULL, rebuild_main, c) != 0)
		return sg_err_set(err, SG_INTERNAL, "cannot start the CRL rebuild thread");
	c->started = true;
	return crl_tidy_thread_start(c, err);
}

void crl_free(struct crl *c)
{
	if (c == NULL)
		return;
	ca_set_revoke_hook(c->ca, NULL, NULL);
	crl_tidy_fini(c);
	pthread_mutex_lock(&c->lock);
	c->stop = true;
	pthread_cond_broadcast(&c->wake);
	pthread_mutex_unlock(&c->lock);
	if (c->started)
		pthread_join(c->thread, NULL);
	while (c->mounts != NULL) {
		struct crl_mnt *m = c->mounts;

		c->mounts = m->next;
		while (m->issuers != NULL) {
			struct crl_iss *i = m->issuers;

			m->issuers = i->next;
			iss_free(i);
		}
		free(m->path);
		free(m);
	}
	pthread_cond_destroy(&c->wake);
	pthread_cond_destroy(&c->done);
	pthread_mutex_destroy(&c->lock);
	free(c->dir);
	free(c);
}

int crl_config_get(struct crl *c, const struct ca_mount *m, struct crl_config *out, struct sg_err *err)
{
	struct crl_mnt *mn;

	pthread_mutex_lock(&c->lock);
	mn = mnt_find(c, m->id, true);
	if (mn == NULL) {
		pthread_mutex_unlock(&c->lock);
		return sg_err_set(err, SG_BAD_REQUEST, "invalid mount id");
	}
	mnt_path_set(mn, m);
	*out = *mnt_cfg(c, mn);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/* Every issuer of the mount known to the registry (caller holds the lock). */
static void mnt_register_issuers(struct crl *c, struct crl_mnt *mn, const struct ca_mount *m)
{
	struct ca_issuer_info *infos = NULL;
	size_t n = 0;
	struct sg_err err;

	sg_err_init(&err);
	if (ca_issuer_list(c->ca, m, &infos, &n, &err) < 0)
		return;
	for (size_t k = 0; k < n; k++) {
		(void)iss_find(mn, infos[k].id, true);
		ca_issuer_info_clear(&infos[k]);
	}
	free(infos);
}

void crl_mount_rebuild(struct crl *c, const struct ca_mount *m)
{
	struct crl_mnt *mn;

	pthread_mutex_lock(&c->lock);
	if ((mn = mnt_find(c, m->id, true)) != NULL) {
		mnt_register_issuers(c, mn, m);
		for (struct crl_iss *i = mn->issuers; i != NULL; i = i->next) {
			i->need_scan = true; /* entries left: only a scan drops them */
			want_full(c, i, crl_mono_ms());
		}
	}
	pthread_mutex_unlock(&c->lock);
}

int crl_config_set(struct crl *c, const struct ca_mount *m, const struct crl_config *in, struct sg_err *err)
{
	char key[CRL_ID_MAX + 32];
	json_t *o = crl_config_to_json(in);
	char *s = json_dumps(o, JSON_COMPACT);
	struct store_batch *b = store_batch_new();
	struct crl_listener ls[CRL_MAX_LISTENERS];
	struct crl_mnt *mn;
	size_t nl;
	int rc = -1;

	if (s == NULL)
		sg_die("out of memory");
	if (!id_ok(m->id)) {
		sg_err_set(err, SG_BAD_REQUEST, "invalid mount id");
		goto out;
	}
	skey(key, sizeof(key), m->id, CRL_CFG_KEY);
	store_batch_put(b, STORE_CONFIG, key, strlen(key), s, strlen(s));
	if (store_commit(c->st, b, err) < 0)
		goto out;
	pthread_mutex_lock(&c->lock);
	mn = mnt_find(c, m->id, true);
	mnt_path_set(mn, m);
	mn->cfg = *in;
	mn->have_cfg = true;
	mn->cfg_gen++;
	/* Every CRL of the mount reflects the new settings (disable, expiry, deltas) from the next build on. */
	mnt_register_issuers(c, mn, m);
	for (struct crl_iss *i = mn->issuers; i != NULL; i = i->next) {
		want_full(c, i, crl_mono_ms());
		if (!in->enable_delta && i->delta != NULL) {
			crl_blob_release(i->delta);
			i->delta = NULL;
		}
	}
	nl = c->nlisteners;
	memcpy(ls, c->listeners, sizeof(ls));
	pthread_mutex_unlock(&c->lock);
	for (size_t k = 0; k < nl; k++)
		if (ls[k].config_changed != NULL)
			ls[k].config_changed(ls[k].arg, m->id, in);
	rc = 0;
out:
	store_batch_free(b);
	json_decref(o);
	free(s);
	return rc;
}

int crl_rotate(struct crl *c, const struct ca_mount *m, enum crl_kind kind, struct sg_err *err)
{
	struct crl_mnt *mn;

	pthread_mutex_lock(&c->lock);
	mn = mnt_find(c, m->id, true);
	if (mn == NULL) {
		pthread_mutex_unlock(&c->lock);
		return sg_err_set(err, SG_BAD_REQUEST, "invalid mount id");
	}
	mnt_path_set(mn, m);
	mnt_register_issuers(c, mn, m);
	for (struct crl_iss *i = mn->issuers; i != NULL; i = i->next) {
		if (kind == CRL_FULL) {
			i->need_scan = true; /* Vault's rotate rebuilds from the records */
			want_full(c, i, crl_mono_ms());
		} else if (mnt_cfg(c, mn)->enable_delta)
			want_delta(c, i, crl_mono_ms());
	}
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/* Resolves ref to an issuer id of the mount. */
static int resolve(struct crl *c, const struct ca_mount *m, const char *ref, char id[37], struct sg_err *err)
{
	struct ca_issuer_info info = {0};

	if (ca_issuer_get(c->ca, m, ref, &info, err) < 0)
		return -1;
	memcpy(id, info.id, 37);
	ca_issuer_info_clear(&info);
	return 0;
}

/*
 * Runs a build of one issuer on the calling thread, after any running one
 * (lock held on entry and return). A build may forget the issuer (deleted),
 * so it is looked up again after every wait.
 */
static void build_locked(struct crl *c, struct crl_mnt *mn, const char *id, enum crl_kind kind, bool append)
{
	struct crl_iss *i;

	while ((i = iss_find(mn, id, true)) != NULL && i->building)
		pthread_cond_wait(&c->done, &c->lock);
	if (i == NULL)
		return;
	if (kind == CRL_DELTA && i->full == NULL)
		return;
	i->building = true;
	if (kind == CRL_FULL && append && can_append(c, mn, i))
		run_append(c, mn, i);
	else if (kind == CRL_FULL)
		run_full(c, mn, &i, 1);
	else
		run_delta(c, mn, i);
}

static int build_now(struct crl *c, const struct ca_mount *m, const char *ref, enum crl_kind kind, bool append,
                     struct sg_err *err)
{
	char id[37];
	struct crl_mnt *mn;
	struct crl_iss *i;
	int rc = -1;

	if (resolve(c, m, ref, id, err) < 0)
		return -1;
	pthread_mutex_lock(&c->lock);
	if ((mn = mnt_find(c, m->id, true)) == NULL || (i = iss_find(mn, id, true)) == NULL) {
		sg_err_set(err, SG_BAD_REQUEST, "invalid mount or issuer id");
		goto out;
	}
	mnt_path_set(mn, m);
	if (kind == CRL_DELTA) {
		if (!mnt_cfg(c, mn)->enable_delta) {
			sg_err_set(err, SG_BAD_REQUEST, "delta CRLs are not enabled (config/crl enable_delta)");
			goto out;
		}
		if (i->full == NULL)
			build_locked(c, mn, id, CRL_FULL, false);
		/* The full build may have forgotten the issuer (deleted meanwhile). */
		if ((i = iss_find(mn, id, false)) == NULL || i->full == NULL) {
			sg_err_set(err, SG_INTERNAL, "the CRL of issuer %s could not be built", id);
			goto out;
		}
	}
	build_locked(c, mn, id, kind, append);
	if ((i = iss_find(mn, id, false)) == NULL) {
		sg_err_set(err, SG_UNKNOWN_ISSUER, "issuer %s not found", id);
		goto out;
	}
	if (i->last_error[0] != '\0') {
		sg_err_set(err, SG_BAD_REQUEST, "%s", i->last_error);
		goto out;
	}
	rc = 0;
out:
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int crl_build_now(struct crl *c, const struct ca_mount *m, const char *ref, enum crl_kind kind, struct sg_err *err)
{
	return build_now(c, m, ref, kind, false, err);
}

int crl_refresh_now(struct crl *c, const struct ca_mount *m, const char *ref, struct sg_err *err)
{
	return build_now(c, m, ref, CRL_FULL, true, err);
}

int crl_get(struct crl *c, const struct ca_mount *m, const char *ref, enum crl_kind kind, struct crl_blob **out,
            struct sg_err *err)
{
	char id[37];
	struct crl_mnt *mn;
	struct crl_iss *i;
	struct crl_blob *b = NULL;
	bool try_files;

	*out = NULL;
	if (resolve(c, m, ref, id, err) < 0)
		return -1;
	pthread_mutex_lock(&c->lock);
	if ((mn = mnt_find(c, m->id, true)) == NULL || (i = iss_find(mn, id, true)) == NULL) {
		pthread_mutex_unlock(&c->lock);
		return sg_err_set(err, SG_BAD_REQUEST, "invalid mount or issuer id");
	}
	mnt_path_set(mn, m);
	if (kind == CRL_DELTA && !mnt_cfg(c, mn)->enable_delta) {
		pthread_mutex_unlock(&c->lock);
		return sg_err_set(err, SG_NOT_FOUND, "delta CRLs are not enabled");
	}
	b = blob_ref(kind == CRL_FULL ? i->full : i->delta);
	try_files = b == NULL && !i->files_tried && c->dir != NULL;
	i->files_tried = true;
	pthread_mutex_unlock(&c->lock);
	if (b != NULL) {
		*out = b;
		return 0;
	}
	if (try_files) {
		/* After a restart: the last CRL from disk, while the background build makes a fresh one. */
		struct crl_blob *full = blob_load(c, m->id, id, CRL_FULL), *delta = blob_load(c, m->id, id, CRL_DELTA);

		pthread_mutex_lock(&c->lock);
		if ((mn = mnt_find(c, m->id, false)) != NULL && (i = iss_find(mn, id, false)) != NULL) {
			if (i->full == NULL && full != NULL) {
				i->full = full;
				full = NULL;
			}
			/* A delta is only good with its base. */
			if (i->delta == NULL && delta != NULL && i->full != NULL && delta->base_number == i->full->number) {
				i->delta = delta;
				delta = NULL;
			}
			b = blob_ref(kind == CRL_FULL ? i->full : i->delta);
		}
		pthread_mutex_unlock(&c->lock);
		crl_blob_release(full);
		crl_blob_release(delta);
		if (b != NULL) {
			*out = b;
			return 0;
		}
	}
	/* Never built: the first build happens now, on this request. */
	if (crl_build_now(c, m, id, kind, err) < 0)
		return -1;
	pthread_mutex_lock(&c->lock);
	if ((mn = mnt_find(c, m->id, false)) != NULL && (i = iss_find(mn, id, false)) != NULL)
		b = blob_ref(kind == CRL_FULL ? i->full : i->delta);
	pthread_mutex_unlock(&c->lock);
	if (b == NULL)
		return sg_err_set(err, SG_INTERNAL, "the CRL of issuer %s could not be built", id);
	*out = b;
	return 0;
}

int crl_wait_idle(struct crl *c, const struct ca_mount *m, int timeout_ms)
{
	int64_t end = crl_mono_ms() + timeout_ms;
	int rc = -1;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		struct crl_mnt *mn = mnt_find(c, m->id, false);
		bool busy = false;
		struct timespec ts;
		int64_t left;

		for (struct crl_iss *i = mn != NULL ? mn->issuers : NULL; i != NULL; i = i->next)
			if (i->building || (i->full_want && i->failures == 0) ||
			    (i->delta_want && i->failures == 0 && i->full != NULL))
				busy = true;
		if (!busy) {
			rc = 0;
			break;
		}
		if ((left = end - crl_mono_ms()) <= 0)
			break;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		if (left > 50)
			left = 50;
		ts.tv_nsec += left * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&c->done, &c->lock, &ts);
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}
