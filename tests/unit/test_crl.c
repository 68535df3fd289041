/* crl/: configuration, streamed CRL builds (full and delta), the background rebuild, persistence, tidy. */
#include "crl/crl.h"
#include "tests/unit/t.h"

#include <ftw.h>
#include <pthread.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static struct store *g_st;
static struct ca *g_ca;

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

/* Issues a certificate; returns its serial (colon hex) and, when x is not NULL, the certificate. */
static char *issue(const struct ca_mount *m, const struct role *r, const char *cn, int64_t ttl, X509 **x)
{
	struct ca_request req;
	struct ca_result res = {0};
	struct sg_err err;
	char *serial = NULL;

	sg_err_init(&err);
	ca_request_init(&req);
	req.kind = CA_REQ_ISSUE;
	req.common_name = cn;
	req.ttl = ttl;
	if (ca_issue(g_ca, m, r, &req, NULL, &res, &err) == 0) {
		serial = sg_xstrdup(res.serial);
		if (x != NULL) {
			X509_up_ref(res.cert);
			*x = res.cert;
		}
	} else {
		fprintf(stderr, "issue: %s\n", err.detail);
	}
	ca_result_clear(&res);
	ca_request_clear(&req);
	return serial;
}

static int do_revoke(const struct ca_mount *m, const char *serial, enum ca_reason reason, int64_t invalidity)
{
	struct ca_revoke_result rr = {0};
	struct sg_err err;
	int rc;

	sg_err_init(&err);
	rc = ca_revoke(g_ca, m, serial, NULL, reason, invalidity, &rr, &err);
	if (rc != 0)
		fprintf(stderr, "revoke: %s\n", err.detail);
	ca_revoke_result_clear(&rr);
	return rc;
}

static X509_CRL *parse(const struct crl_blob *b)
{
	const unsigned char *p = b->der;
	X509_CRL *c = d2i_X509_CRL(NULL, &p, (long)b->der_len);

	/* The whole buffer is the CRL: no trailing bytes. */
	if (c != NULL && p != b->der + b->der_len) {
		X509_CRL_free(c);
		return NULL;
	}
	return c;
}

static X509_CRL *get_crl(struct crl *c, const struct ca_mount *m, const char *ref, enum crl_kind kind,
                         struct crl_blob **blob_out)
{
	struct crl_blob *b = NULL;
	struct sg_err err;
	X509_CRL *x;

	sg_err_init(&err);
	if (crl_get(c, m, ref, kind, &b, &err) != 0) {
		fprintf(stderr, "crl_get: %s\n", err.detail);
		return NULL;
	}
	x = parse(b);
	if (blob_out != NULL)
		*blob_out = b;
	else
		crl_blob_release(b);
	return x;
}

static uint64_t crl_number(X509_CRL *x, int nid)
{
	ASN1_INTEGER *n = X509_CRL_get_ext_d2i(x, nid, NULL, NULL);
	uint64_t v = 0;

	if (n == NULL || ASN1_INTEGER_get_uint64(&v, n) != 1)
		v = 0;
	ASN1_INTEGER_free(n);
	return v;
}

static X509_REVOKED *find_entry(X509_CRL *x, X509 *cert)
{
	X509_REVOKED *r = NULL;

	if (X509_CRL_get0_by_serial(x, &r, X509_get0_serialNumber(cert)) != 1)
		return NULL;
	return r;
}

static int entry_reason(X509_REVOKED *r)
{
	int crit = 0;
	ASN1_ENUMERATED *e = X509_REVOKED_get_ext_d2i(r, NID_crl_reason, &crit, NULL);
	int v = e != NULL ? (int)ASN1_ENUMERATED_get(e) : -1;

	ASN1_ENUMERATED_free(e);
	return v;
}

/* OpenSSL's own path validation with the CRL (and a delta when given). */
static int verify_with(X509 *root, X509 *leaf, X509_CRL *full, X509_CRL *delta, bool all, bool deltas)
{
	X509_STORE *st = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int rc, e;

	X509_STORE_add_cert(st, root);
	if (full != NULL)
		X509_STORE_add_crl(st, full);
	if (delta != NULL)
		X509_STORE_add_crl(st, delta);
	X509_STORE_CTX_init(ctx, st, leaf, NULL);
	/*
	 * Deltas need extended CRL support too: without it OpenSSL's base CRL
	 * choice (get_crl_score) may take the newer delta as the base.
	 */
	X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_CRL_CHECK | (all ? X509_V_FLAG_CRL_CHECK_ALL : 0) |
	                                  (deltas ? X509_V_FLAG_USE_DELTAS | X509_V_FLAG_EXTENDED_CRL_SUPPORT : 0));
	X509_STORE_CTX_set_time(ctx, 0, (time_t)sg_now());
	rc = X509_verify_cert(ctx);
	e = X509_STORE_CTX_get_error(ctx);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	ERR_clear_error();
	return rc == 1 ? 0 : e;
}

static void test_config(void)
{
	struct crl_config c, d;
	struct sg_err err;
	json_t *j, *out;

	crl_config_default(&c);
	T_OK(c.expiry == 72 * 3600 && c.ocsp_expiry == 12 * 3600 && c.auto_rebuild_grace_period == 12 * 3600);
	T_OK(c.delta_rebuild_interval == 900 && !c.disable && !c.auto_rebuild && !c.enable_delta);
	T_OK(c.max_crl_entries == -1 && c.rebuild_delay_ms == 250 && !c.ocsp_sign_with_issuer);

	/* Vault's loose typing: strings for booleans, Go durations, seconds. */
	sg_err_init(&err);
	j = json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:s}", "expiry", "48h", "auto_rebuild", "true", "enable_delta",
	              "true", "delta_rebuild_interval", "5m", "ocsp_expiry", 3600, "auto_rebuild_grace_period", "1h30m",
	              "rebuild_delay", "0ms");
	T_OK(crl_config_from_json(j, &c, &err) == 0);
	json_decref(j);
	T_OK(c.expiry == 48 * 3600 && c.auto_rebuild && c.enable_delta && c.delta_rebuild_interval == 300);
	T_OK(c.ocsp_expiry == 3600 && c.auto_rebuild_grace_period == 5400 && c.rebuild_delay_ms == 0);
	out = crl_config_to_json(&c);
	T_STREQ(json_string_value(json_object_get(out, "expiry")), "48h");
	T_STREQ(json_string_value(json_object_get(out, "auto_rebuild_grace_period")), "1h30m");
	T_STREQ(json_string_value(json_object_get(out, "delta_rebuild_interval")), "5m");
	T_OK(json_is_true(json_object_get(out, "enable_delta")));
	/* The rendered form reads back to the same configuration (it is also the stored form). */
	crl_config_default(&d);
	T_OK(crl_config_from_json(out, &d, &err) == 0 && memcmp(&c, &d, sizeof(c)) == 0);
	json_decref(out);

	/* Refusals name the problem and leave the configuration unchanged. */
	d = c;
	j = json_pack("{s:s}", "expiry", "soon");
	sg_err_init(&err);
	T_OK(crl_config_from_json(j, &c, &err) == -1 && err.code == SG_BAD_REQUEST && strstr(err.detail, "expiry"));
	json_decref(j);
	j = json_pack("{s:s}", "auto_rebuild_grace_period", "100h");
	sg_err_init(&err);
	T_OK(crl_config_from_json(j, &c, &err) == -1 && strstr(err.detail, "grace period") != NULL);
	json_decref(j);
	j = json_pack("{s:b}", "auto_rebuild", 0);
	sg_err_init(&err);
	T_OK(crl_config_from_json(j, &c, &err) == -1 && strstr(err.detail, "Delta CRLs") != NULL);
	json_decref(j);
	j = json_pack("{s:i}", "max_crl_entries", -5);
	sg_err_init(&err);
	T_OK(crl_config_from_json(j, &c, &err) == -1 && err.code == SG_BAD_REQUEST);
	json_decref(j);
	j = json_pack("{s:s}", "rebuild_delay", "2h");
	sg_err_init(&err);
	T_OK(crl_config_from_json(j, &c, &err) == -1 && strstr(err.detail, "rebuild_delay") != NULL);
	json_decref(j);
	j = json_pack("{s:s}", "disable", "maybe");
	sg_err_init(&err);
	T_OK(crl_config_from_json(j, &c, &err) == -1 && err.code == SG_BAD_REQUEST);
	json_decref(j);
	T_OK(memcmp(&c, &d, sizeof(c)) == 0);
}

struct env {
	char dir[64];
	char mid[37];
	struct ca_mount m;
	X509 *root;
	struct role *role;
};

static int setup_mount(struct env *e, const char *path, enum ca_key_type kt, int bits)
{
	struct ca_ca_params p;
	struct ca_gen_result root = {0};
	struct sg_err err;

	sg_err_init(&err);
	sg_uuid(e->mid);
	e->m.id = e->mid;
	e->m.path = path;
	e->m.default_ttl = 768 * 3600;
	e->m.max_ttl = 10LL * 365 * 86400;
	ca_ca_params_init(&p);
	p.common_name = "CRL Test Root";
	p.ttl = 5LL * 365 * 86400;
	p.key.type = kt;
	p.key.bits = bits;
	if (ca_root_generate(g_ca, &e->m, &p, &root, &err) != 0) {
		fprintf(stderr, "root: %s\n", err.detail);
		return -1;
	}
	e->root = root.cert;
	root.cert = NULL;
	ca_gen_result_clear(&root);
	e->role = role_new("web");
	sg_strlist_add(&e->role->allowed_domains, "example.com");
	e->role->allow_subdomains = true;
	free(e->role->key_type);
	e->role->key_type = sg_xstrdup("ec");
	e->role->key_bits = 256;
	return 0;
}

static void env_clear(struct env *e)
{
	X509_free(e->root);
	role_free(e->role);
}

/* A full CRL: signature, issuer, times, number, AKI, entries with reasons and invalidity dates. */
static void test_full(struct crl *c)
{
	struct env e;
	struct crl_blob *b1 = NULL, *b2 = NULL;
	X509 *x[4] = {0};
	char *s[4] = {0};
	X509_CRL *crl, *crl2;
	X509_REVOKED *r;
	AUTHORITY_KEYID *aki;
	const ASN1_OCTET_STRING *ski;
	struct sg_err err;
	int64_t inval = sg_now() - 86400;

	if (setup_mount(&e, "pki", CA_KEY_EC, 256) != 0) {
		T_OK(0);
		return;
	}
	/* An issuer without revocations: a valid CRL whose revokedCertificates is absent (RFC 5280 5.1.2.6). */
	crl = get_crl(c, &e.m, "default", CRL_FULL, &b1);
	T_OK(crl != NULL);
	if (crl != NULL) {
		T_OK(X509_CRL_get_REVOKED(crl) == NULL || sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)) == 0);
		T_OK(X509_CRL_verify(crl, X509_get0_pubkey(e.root)) == 1);
		T_OK(X509_CRL_get_version(crl) == X509_CRL_VERSION_2);
		T_OK(b1->entries == 0 && b1->number >= 1);
	}
	X509_CRL_free(crl);
	for (int i = 0; i < 4; i++)
		s[i] = issue(&e.m, e.role, "host.example.com", 3600, &x[i]);
	T_OK(s[0] && s[1] && s[2] && s[3]);
	if (!(s[0] && s[1] && s[2] && s[3]))
		goto out;
	T_OK(do_revoke(&e.m, s[0], CA_REASON_KEY_COMPROMISE, inval) == 0);
	T_OK(do_revoke(&e.m, s[1], CA_REASON_UNSPECIFIED, 0) == 0);
	T_OK(do_revoke(&e.m, s[2], CA_REASON_CESSATION_OF_OPERATION, 0) == 0);
	sg_err_init(&err);
	T_OK(crl_build_now(c, &e.m, "default", CRL_FULL, &err) == 0);
	crl = get_crl(c, &e.m, "default", CRL_FULL, &b2);
	T_OK(crl != NULL);
	if (crl == NULL)
		goto out;
	T_OK(b2->number > b1->number);
	T_OK(b2->entries == 3);
	T_OK(crl_number(crl, NID_crl_number) == b2->number);
	T_OK(X509_CRL_verify(crl, X509_get0_pubkey(e.root)) == 1);
	T_OK(X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(e.root)) == 0);
	T_OK(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)) == 3);
	T_OK(b2->next_update - b2->this_update == 72 * 3600);
	T_OK(ASN1_TIME_cmp_time_t(X509_CRL_get0_lastUpdate(crl), (time_t)b2->this_update) == 0);
	T_OK(ASN1_TIME_cmp_time_t(X509_CRL_get0_nextUpdate(crl), (time_t)b2->next_update) == 0);
	/* AKI (RFC 5280 5.2.1) is the issuer's SKI. */
	aki = X509_CRL_get_ext_d2i(crl, NID_authority_key_identifier, NULL, NULL);
	ski = X509_get0_subject_key_id(e.root);
	T_OK(aki != NULL && aki->keyid != NULL && ski != NULL && ASN1_OCTET_STRING_cmp(aki->keyid, ski) == 0);
	AUTHORITY_KEYID_free(aki);
	T_OK(X509_CRL_get_ext_by_NID(crl, NID_delta_crl, -1) < 0);
	r = find_entry(crl, x[0]);
	T_OK(r != NULL && entry_reason(r) == CA_REASON_KEY_COMPROMISE);
	if (r != NULL) {
		ASN1_GENERALIZEDTIME *g = X509_REVOKED_get_ext_d2i(r, NID_invalidity_date, NULL, NULL);

		T_OK(g != NULL && ASN1_TIME_cmp_time_t(g, (time_t)inval) == 0);
		ASN1_GENERALIZEDTIME_free(g);
	}
	/* unspecified: no reasonCode extension at all (RFC 5280 5.3.1). */
	r = find_entry(crl, x[1]);
	T_OK(r != NULL && entry_reason(r) == -1 && X509_REVOKED_get_ext_count(r) == 0);
	r = find_entry(crl, x[2]);
	T_OK(r != NULL && entry_reason(r) == CA_REASON_CESSATION_OF_OPERATION);
	T_OK(find_entry(crl, x[3]) == NULL);
	/* OpenSSL's path validation agrees. */
	T_CHECK(verify_with(e.root, x[0], crl, NULL, false, false) == X509_V_ERR_CERT_REVOKED, "revoked leaf");
	T_CHECK(verify_with(e.root, x[3], crl, NULL, false, false) == 0, "good leaf");
	T_CHECK(verify_with(e.root, x[3], crl, NULL, true, false) == 0, "good leaf, crl_check_all");
	T_CHECK(verify_with(e.root, x[3], NULL, NULL, false, false) == X509_V_ERR_UNABLE_TO_GET_CRL, "no CRL");
	/* A second build: a new, larger number; the old blob stays valid for whoever holds it. */
	sg_err_init(&err);
	T_OK(crl_build_now(c, &e.m, "default", CRL_FULL, &err) == 0);
	crl2 = get_crl(c, &e.m, "default", CRL_FULL, NULL);
	T_OK(crl2 != NULL && crl_number(crl2, NID_crl_number) > b2->number);
	X509_CRL_free(crl2);
	X509_CRL_free(crl);
	/* PEM: built once, the DER inside. */
	{
		size_t len = 0;
		const char *pem = crl_blob_pem(b2, &len);
		BIO *bio = BIO_new_mem_buf(pem, (int)len);
		X509_CRL *p = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
		unsigned char *der = NULL;
		int n = p != NULL ? i2d_X509_CRL(p, &der) : -1;

		T_OK(strncmp(pem, "-----BEGIN X509 CRL-----\n", 25) == 0 && len == strlen(pem));
		T_OK(n == (int)b2->der_len && der != NULL && memcmp(der, b2->der, b2->der_len) == 0);
		T_OK(crl_blob_pem(b2, NULL) == pem);
		OPENSSL_free(der);
		X509_CRL_free(p);
		BIO_free(bio);
	}
	T_OK(strlen(b2->etag) > 2 && b2->etag[0] == '"' && strcmp(b1->etag, b2->etag) != 0);
out:
	crl_blob_release(b1);
	crl_blob_release(b2);
	for (int i = 0; i < 4; i++) {
		X509_free(x[i]);
		free(s[i]);
	}
	env_clear(&e);
}

/* RSA and Ed25519 issuers: the signer's AlgorithmIdentifier inside the streamed TBS matches its signature. */
static void test_key_types(struct crl *c)
{
	static const struct {
		enum ca_key_type t;
		int bits;
	} kinds[] = {{CA_KEY_RSA, 2048}, {CA_KEY_ED25519, 0}, {CA_KEY_EC, 384}};

	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		struct env e;
		X509 *x = NULL;
		char *s;
		X509_CRL *crl;

		if (setup_mount(&e, "pki_kt", kinds[k].t, kinds[k].bits) != 0) {
			T_OK(0);
			continue;
		}
		s = issue(&e.m, e.role, "k.example.com", 3600, &x);
		T_OK(s != NULL && do_revoke(&e.m, s, CA_REASON_SUPERSEDED, 0) == 0);
		crl = get_crl(c, &e.m, "default", CRL_FULL, NULL);
		T_CHECK(crl != NULL && X509_CRL_verify(crl, X509_get0_pubkey(e.root)) == 1, "key type %zu", k);
		T_OK(crl != NULL && x != NULL && find_entry(crl, x) != NULL &&
		     entry_reason(find_entry(crl, x)) == CA_REASON_SUPERSEDED);
		T_OK(x != NULL && verify_with(e.root, x, crl, NULL, false, false) == X509_V_ERR_CERT_REVOKED);
		X509_CRL_free(crl);
		X509_free(x);
		free(s);
		env_clear(&e);
	}
}

struct par_issue {
	struct env *e;
	X509 **x;
	char **s;
	int from, to;
};

static void *par_issue_main(void *arg)
{
	struct par_issue *p = arg;

	for (int i = p->from; i < p->to; i++)
		p->s[i] = issue(&p->e->m, p->e->role, "m.example.com", 3600, &p->x[i]);
	return NULL;
}

/* Many entries: length fields past 127, 255 and 65535 bytes, serials with the high bit set. */
static void test_many(struct crl *c)
{
	struct env e;
	enum { N = 1600, THREADS = 8 };
	X509 **x = sg_xcalloc(N, sizeof(*x));
	char **s = sg_xcalloc(N, sizeof(*s));
	struct ca_revoke_item *it = sg_xcalloc(N, sizeof(*it));
	struct par_issue par[THREADS];
	pthread_t th[THREADS];
	struct store_batch *batch;
	struct crl_blob *b = NULL;
	X509_CRL *crl;
	struct sg_err err;
	size_t found = 0;

	if (setup_mount(&e, "pki_many", CA_KEY_EC, 256) != 0) {
		T_OK(0);
		goto out;
	}
	/* Concurrent issuance shares group commits. */
	for (int t = 0; t < THREADS; t++) {
		par[t] = (struct par_issue){&e, x, s, t * N / THREADS, (t + 1) * N / THREADS};
		pthread_create(&th[t], NULL, par_issue_main, &par[t]);
	}
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	for (int i = 0; i < N; i++)
		it[i].serial = s[i] != NULL ? s[i] : "";
	/* Half keyCompromise (entries with an extension), half unspecified, in two batches. */
	sg_err_init(&err);
	for (int h = 0; h < 2; h++) {
		batch = store_batch_new();
		T_OK(ca_revoke_batch_add(g_ca, &e.m, it + h * N / 2, N / 2,
		                         h ? CA_REASON_KEY_COMPROMISE : CA_REASON_UNSPECIFIED, batch, &err) == 0);
		T_OK(store_commit(g_st, batch, &err) == 0);
		store_batch_free(batch);
		ca_revoke_notify(g_ca, &e.m, it + h * N / 2, N / 2);
	}
	crl = get_crl(c, &e.m, "default", CRL_FULL, &b);
	T_OK(b != NULL && b->der_len > 65536);
	T_OK(crl != NULL && b != NULL && b->entries == N);
	T_OK(crl != NULL && X509_CRL_verify(crl, X509_get0_pubkey(e.root)) == 1);
	for (int i = 0; crl != NULL && i < N; i++)
		if (x[i] != NULL && find_entry(crl, x[i]) != NULL)
			found++;
	T_CHECK(found == N, "found %zu of %d", found, N);
	X509_CRL_free(crl);
	crl_blob_release(b);
	env_clear(&e);
out:
	for (int i = 0; i < N; i++) {
		X509_free(x[i]);
		free(s[i]);
	}
	free(x);
	free(s);
	free(it);
}

/* disable: signed and empty; max_crl_entries: the build fails and says why. */
static void test_disable_and_cap(struct crl *c)
{
	struct env e;
	struct crl_config cfg;
	struct sg_err err;
	X509_CRL *crl;
	char *s[3] = {0};

	if (setup_mount(&e, "pki_dis", CA_KEY_EC, 256) != 0) {
		T_OK(0);
		return;
	}
	for (int i = 0; i < 3; i++) {
		s[i] = issue(&e.m, e.role, "d.example.com", 3600, NULL);
		T_OK(s[i] != NULL && do_revoke(&e.m, s[i], CA_REASON_UNSPECIFIED, 0) == 0);
	}
	sg_err_init(&err);
	T_OK(crl_config_get(c, &e.m, &cfg, &err) == 0);
	cfg.disable = true;
	T_OK(crl_config_set(c, &e.m, &cfg, &err) == 0);
	T_OK(crl_build_now(c, &e.m, "default", CRL_FULL, &err) == 0);
	crl = get_crl(c, &e.m, "default", CRL_FULL, NULL);
	T_OK(crl != NULL && X509_CRL_verify(crl, X509_get0_pubkey(e.root)) == 1);
	T_OK(crl != NULL && (X509_CRL_get_REVOKED(crl) == NULL || sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)) == 0));
	X509_CRL_free(crl);
	cfg.disable = false;
	cfg.max_crl_entries = 2;
	T_OK(crl_config_set(c, &e.m, &cfg, &err) == 0);
	sg_err_init(&err);
	T_OK(crl_build_now(c, &e.m, "default", CRL_FULL, &err) == -1 && strstr(err.detail, "max_crl_entries"));
	/* The last good CRL is still served. */
	crl = get_crl(c, &e.m, "default", CRL_FULL, NULL);
	T_OK(crl != NULL);
	X509_CRL_free(crl);
	cfg.max_crl_entries = 3;
	T_OK(crl_config_set(c, &e.m, &cfg, &err) == 0);
	sg_err_init(&err);
	T_OK(crl_build_now(c, &e.m, "default", CRL_FULL, &err) == 0);
	crl = get_crl(c, &e.m, "default", CRL_FULL, NULL);
	T_OK(crl != NULL && sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)) == 3);
	X509_CRL_free(crl);
	/* Unknown issuers are refused, deltas need enable_delta. */
	{
		struct crl_blob *b = NULL;

		sg_err_init(&err);
		T_OK(crl_get(c, &e.m, "no-such-issuer", CRL_FULL, &b, &err) == -1 && err.code == SG_UNKNOWN_ISSUER);
		sg_err_init(&err);
		T_OK(crl_get(c, &e.m, "default", CRL_DELTA, &b, &err) == -1 && err.code == SG_NOT_FOUND);
		T_OK(b == NULL);
	}
	for (int i = 0; i < 3; i++)
		free(s[i]);
	env_clear(&e);
}

/* Delta CRLs (RFC 5280 5.2.4): indicator, base number, only the new entries, Freshest CRL in the base. */
static void test_delta(struct crl *c)
{
	struct env e;
	struct crl_config cfg;
	struct ca_urls urls = {0};
	struct sg_err err;
	X509 *x[3] = {0};
	char *s[3] = {0};
	X509_CRL *full = NULL, *delta = NULL;
	struct crl_blob *bf = NULL, *bd = NULL;
	CRL_DIST_POINTS *fresh;

	if (setup_mount(&e, "pki_delta", CA_KEY_EC, 256) != 0) {
		T_OK(0);
		return;
	}
	sg_err_init(&err);
	sg_strlist_add(&urls.delta_crl_distribution_points, "http://crl.example.com/v1/pki/crl/delta");
	T_OK(ca_urls_set(g_ca, &e.m, &urls, &err) == 0);
	ca_urls_clear(&urls);
	T_OK(crl_config_get(c, &e.m, &cfg, &err) == 0);
	cfg.auto_rebuild = true;
	cfg.enable_delta = true;
	T_OK(crl_config_set(c, &e.m, &cfg, &err) == 0);
	for (int i = 0; i < 3; i++)
		s[i] = issue(&e.m, e.role, "delta.example.com", 3600, &x[i]);
	T_OK(s[0] && s[1] && s[2]);
	if (!(s[0] && s[1] && s[2]))
		goto out;
	T_OK(do_revoke(&e.m, s[0], CA_REASON_KEY_COMPROMISE, 0) == 0);
	T_OK(crl_build_now(c, &e.m, "default", CRL_FULL, &err) == 0);
	full = get_crl(c, &e.m, "default", CRL_FULL, &bf);
	T_OK(full != NULL && bf->entries == 1);
	if (full == NULL)
		goto out;
	fresh = X509_CRL_get_ext_d2i(full, NID_freshest_crl, NULL, NULL);
	T_OK(fresh != NULL && sk_DIST_POINT_num(fresh) == 1);
	CRL_DIST_POINTS_free(fresh);
	/* After the base: s[1] revoked; the delta lists it alone. */
	T_OK(do_revoke(&e.m, s[1], CA_REASON_SUPERSEDED, 0) == 0);
	sg_err_init(&err);
	T_OK(crl_build_now(c, &e.m, "default", CRL_DELTA, &err) == 0);
	delta = get_crl(c, &e.m, "default", CRL_DELTA, &bd);
	T_OK(delta != NULL);
	if (delta == NULL)
		goto out;
	T_OK(X509_CRL_verify(delta, X509_get0_pubkey(e.root)) == 1);
	T_OK(X509_CRL_get_ext_by_critical(delta, 1, -1) >= 0);
	T_OK(crl_number(delta, NID_delta_crl) == bf->number && bd->base_number == bf->number);
	T_OK(crl_number(delta, NID_crl_number) > bf->number);
	T_OK(find_entry(delta, x[1]) != NULL && find_entry(delta, x[0]) == NULL && bd->entries == 1);
	T_OK(bd->next_update - bd->this_update == cfg.delta_rebuild_interval);
	/* OpenSSL with -use_deltas: the base alone says good, base + delta say revoked. */
	T_OK(verify_with(e.root, x[1], full, NULL, false, true) == 0);
	T_CHECK(verify_with(e.root, x[1], full, delta, false, true) == X509_V_ERR_CERT_REVOKED, "delta revokes");
	T_CHECK(verify_with(e.root, x[0], full, delta, false, true) == X509_V_ERR_CERT_REVOKED, "base revokes");
	T_CHECK(verify_with(e.root, x[2], full, delta, true, true) == 0, "good with both");
	X509_CRL_free(full);
	X509_CRL_free(delta);
	full = delta = NULL;
	crl_blob_release(bf);
	crl_blob_release(bd);
	bf = bd = NULL;
	/* A new base covers s[1]; the delta after it starts empty, with the new base number. */
	sg_err_init(&err);
	T_OK(crl_build_now(c, &e.m, "default", CRL_FULL, &err) == 0);
	T_OK(crl_build_now(c, &e.m, "default", CRL_DELTA, &err) == 0);
	full = get_crl(c, &e.m, "default", CRL_FULL, &bf);
	delta = get_crl(c, &e.m, "default", CRL_DELTA, &bd);
	T_OK(bf != NULL && bd != NULL && bf->entries == 2 && bd->entries == 0 && bd->base_number == bf->number);
	T_OK(bf != NULL && bd != NULL && bd->number > bf->number);
out:
	X509_CRL_free(full);
	X509_CRL_free(delta);
	crl_blob_release(bf);
	crl_blob_release(bd);
	for (int i = 0; i < 3; i++) {
		X509_free(x[i]);
		free(s[i]);
	}
	env_clear(&e);
}

static size_t entries_now(struct crl *c, const struct ca_mount *m, enum crl_kind kind)
{
	struct crl_blob *b = NULL;
	struct sg_err err;
	size_t n = (size_t)-1;

	sg_err_init(&err);
	if (crl_get(c, m, "default", kind, &b, &err) == 0)
		n = b->entries;
	crl_blob_release(b);
	return n;
}

/* The background thread: a revocation is in the CRL within a second (rebuild_delay 250ms), bursts coalesce. */
static void test_background(struct crl *c)
{
	struct env e;
	struct crl_config cfg;
	struct sg_err err;
	char *s[20] = {0};
	int64_t t0, elapsed = -1;
	size_t before;

	if (setup_mount(&e, "pki_bg", CA_KEY_EC, 256) != 0) {
		T_OK(0);
		return;
	}
	sg_err_init(&err);
	T_OK(crl_config_get(c, &e.m, &cfg, &err) == 0);
	cfg.auto_rebuild = true;
	T_OK(crl_config_set(c, &e.m, &cfg, &err) == 0);
	T_OK(crl_wait_idle(c, &e.m, 5000) == 0);
	before = entries_now(c, &e.m, CRL_FULL);
	T_OK(before == 0);
	for (int i = 0; i < 20; i++)
		s[i] = issue(&e.m, e.role, "bg.example.com", 3600, NULL);
	t0 = now_ms();
	for (int i = 0; i < 20; i++)
		T_OK(s[i] != NULL && do_revoke(&e.m, s[i], CA_REASON_UNSPECIFIED, 0) == 0);
	/* The request path never builds: right after the revocations the old CRL is still served. */
	while (now_ms() - t0 < 3000) {
		if (entries_now(c, &e.m, CRL_FULL) == 20) {
			elapsed = now_ms() - t0;
			break;
		}
		sleep_ms(20);
	}
	T_CHECK(elapsed >= 0 && elapsed <= 1000, "20 revocations reached the CRL after %lld ms",
	        (long long)elapsed);
	printf("background rebuild: 20 revocations in the CRL after %lld ms\n", (long long)elapsed);
	/* The background builds appended to the first CRL: the same entries a scan finds, signed. */
	T_OK(crl_wait_idle(c, &e.m, 5000) == 0);
	{
		X509_CRL *appended = get_crl(c, &e.m, "default", CRL_FULL, NULL), *scanned;

		T_OK(crl_build_now(c, &e.m, "default", CRL_FULL, &err) == 0);
		scanned = get_crl(c, &e.m, "default", CRL_FULL, NULL);
		T_OK(appended != NULL && scanned != NULL && X509_CRL_verify(appended, X509_get0_pubkey(e.root)) == 1);
		T_OK(appended != NULL && scanned != NULL &&
		     sk_X509_REVOKED_num(X509_CRL_get_REVOKED(appended)) == 20 &&
		     sk_X509_REVOKED_num(X509_CRL_get_REVOKED(scanned)) == 20);
		for (int i = 0; appended != NULL && scanned != NULL && i < 20; i++) {
			X509_REVOKED *r = sk_X509_REVOKED_value(X509_CRL_get_REVOKED(appended), i), *found = NULL;

			T_OK(X509_CRL_get0_by_serial(scanned, &found, X509_REVOKED_get0_serialNumber(r)) == 1);
		}
		X509_CRL_free(appended);
		X509_CRL_free(scanned);
	}

	/* With a delta: the revocation is in the delta CRL within the delay, the base stays. */
	cfg.enable_delta = true;
	T_OK(crl_config_set(c, &e.m, &cfg, &err) == 0);
	T_OK(crl_wait_idle(c, &e.m, 5000) == 0);
	T_OK(entries_now(c, &e.m, CRL_DELTA) == 0);
	{
		char *extra = issue(&e.m, e.role, "bg2.example.com", 3600, NULL);

		t0 = now_ms();
		elapsed = -1;
		T_OK(extra != NULL && do_revoke(&e.m, extra, CA_REASON_KEY_COMPROMISE, 0) == 0);
		while (now_ms() - t0 < 3000) {
			if (entries_now(c, &e.m, CRL_DELTA) == 1) {
				elapsed = now_ms() - t0;
				break;
			}
			sleep_ms(20);
		}
		T_CHECK(elapsed >= 0 && elapsed <= 1000, "delta after %lld ms", (long long)elapsed);
		T_OK(entries_now(c, &e.m, CRL_FULL) == 20);
		free(extra);
	}
	/* Before nextUpdate, without any request: move the clock past the grace point. */
	{
		struct crl_blob *b = NULL;
		uint64_t n0;

		T_OK(crl_get(c, &e.m, "default", CRL_FULL, &b, &err) == 0);
		n0 = b != NULL ? b->number : 0;
		crl_blob_release(b);
		sg_clock_advance(61 * 3600);
		t0 = now_ms();
		elapsed = -1;
		while (now_ms() - t0 < 4000) {
			b = NULL;
			if (crl_get(c, &e.m, "default", CRL_FULL, &b, &err) == 0 && b->number > n0 &&
			    b->next_update > sg_now() + 12 * 3600) {
				elapsed = now_ms() - t0;
				crl_blob_release(b);
				break;
			}
			crl_blob_release(b);
			sleep_ms(50);
		}
		T_CHECK(elapsed >= 0, "no rebuild before nextUpdate");
		T_OK(crl_wait_idle(c, &e.m, 5000) == 0);
		sg_clock_advance(-61 * 3600);
	}
	for (int i = 0; i < 20; i++)
		free(s[i]);
	env_clear(&e);
}

/* A restart serves the previous CRL from disk at once, then a higher number. */
static void test_restart(const char *state)
{
	struct crl *c1 = NULL, *c2 = NULL;
	struct env e;
	struct sg_err err;
	struct crl_blob *b1 = NULL, *b2 = NULL, *b3 = NULL;
	char *s;

	sg_err_init(&err);
	if (crl_new(g_st, g_ca, state, &c1, &err) != 0 || setup_mount(&e, "pki_rs", CA_KEY_EC, 256) != 0) {
		T_OK(0);
		crl_free(c1);
		return;
	}
	s = issue(&e.m, e.role, "rs.example.com", 3600, NULL);
	T_OK(s != NULL && do_revoke(&e.m, s, CA_REASON_UNSPECIFIED, 0) == 0);
	T_OK(crl_get(c1, &e.m, "default", CRL_FULL, &b1, &err) == 0 && b1->entries == 1);
	crl_free(c1);
	/* The new instance has not started its thread: the file is what it serves. */
	T_OK(crl_new(g_st, g_ca, state, &c2, &err) == 0);
	T_OK(c2 != NULL && crl_get(c2, &e.m, "default", CRL_FULL, &b2, &err) == 0);
	T_OK(b1 != NULL && b2 != NULL && b2->number == b1->number && b2->der_len == b1->der_len &&
	     memcmp(b1->der, b2->der, b1->der_len) == 0);
	T_OK(crl_start(c2, &err) == 0);
	T_OK(crl_wait_idle(c2, &e.m, 5000) == 0);
	T_OK(crl_get(c2, &e.m, "default", CRL_FULL, &b3, &err) == 0);
	T_OK(b3 != NULL && b1 != NULL && b3->number > b1->number && b3->entries == 1);
	crl_blob_release(b1);
	crl_blob_release(b2);
	crl_blob_release(b3);
	crl_free(c2);
	free(s);
	env_clear(&e);
}

/* Tidy: expired records go after the safety buffer, revoked ones leave the CRL, status as Vault's. */
static void test_tidy(struct crl *c)
{
	struct env e;
	struct crl_tidy_config t;
	struct sg_err err;
	char *s[6] = {0};
	X509 *keep = NULL;
	X509_CRL *crl;
	json_t *st, *j;
	struct ca_cert_record rec = {0};

	if (setup_mount(&e, "pki_tidy", CA_KEY_EC, 256) != 0) {
		T_OK(0);
		return;
	}
	for (int i = 0; i < 5; i++)
		s[i] = issue(&e.m, e.role, "t.example.com", 600, NULL);
	s[5] = issue(&e.m, e.role, "long.example.com", 30 * 86400, &keep);
	T_OK(do_revoke(&e.m, s[0], CA_REASON_UNSPECIFIED, 0) == 0 && do_revoke(&e.m, s[1], CA_REASON_UNSPECIFIED, 0) == 0);
	T_OK(do_revoke(&e.m, s[5], CA_REASON_KEY_COMPROMISE, 0) == 0);
	/* The background thread builds (first from a scan, then by appending); wait until it is done. */
	T_OK(crl_wait_idle(c, &e.m, 5000) == 0);
	crl = get_crl(c, &e.m, "default", CRL_FULL, NULL);
	T_OK(crl != NULL && sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)) == 3);
	T_OK(crl != NULL && X509_CRL_verify(crl, X509_get0_pubkey(e.root)) == 1);
	X509_CRL_free(crl);

	crl_tidy_config_default(&t);
	sg_err_init(&err);
	T_OK(crl_tidy_run(c, &e.m, &t, &err) == -1 && strstr(err.detail, "at least one") != NULL);
	sg_err_init(&err);
	T_OK(crl_tidy_cancel(c, &e.m, &err) == -1 && err.code == SG_BAD_REQUEST);
	j = json_pack("{s:s, s:b, s:s}", "tidy_cert_store", "true", "tidy_revoked_certs", 1, "safety_buffer", "1h");
	sg_err_init(&err);
	T_OK(crl_tidy_config_from_json(j, &t, false, &err) == 0 && t.tidy_cert_store && t.safety_buffer == 3600);
	json_decref(j);
	j = json_pack("{s:i}", "safety_buffer", 0);
	T_OK(crl_tidy_config_from_json(j, &t, false, &err) == -1);
	json_decref(j);

	/* Not yet past NotAfter + buffer: nothing goes. */
	sg_err_init(&err);
	T_OK(crl_tidy_run(c, &e.m, &t, &err) == 0);
	st = crl_tidy_status(c, &e.m);
	T_STREQ(json_string_value(json_object_get(st, "state")), "Finished");
	T_OK(json_integer_value(json_object_get(st, "cert_store_deleted_count")) == 0);
	T_OK(json_integer_value(json_object_get(st, "safety_buffer")) == 3600);
	T_OK(json_is_string(json_object_get(st, "time_started")) && json_is_string(json_object_get(st, "time_finished")));
	json_decref(st);

	/* 2 h later: the five short certificates (two of them revoked) are past 10 min + 1 h. */
	sg_clock_advance(2 * 3600);
	sg_err_init(&err);
	T_OK(crl_tidy_run(c, &e.m, &t, &err) == 0);
	st = crl_tidy_status(c, &e.m);
	T_CHECK(json_integer_value(json_object_get(st, "cert_store_deleted_count")) == 5, "certs deleted %lld",
	        (long long)json_integer_value(json_object_get(st, "cert_store_deleted_count")));
	T_CHECK(json_integer_value(json_object_get(st, "revoked_cert_deleted_count")) == 2, "revoked deleted %lld",
	        (long long)json_integer_value(json_object_get(st, "revoked_cert_deleted_count")));
	T_OK(json_integer_value(json_object_get(st, "missing_issuer_cert_count")) == 0);
	T_OK(strstr(json_string_value(json_object_get(st, "message")), "3 of 3") != NULL);
	json_decref(st);
	sg_err_init(&err);
	T_OK(ca_cert_get(g_ca, &e.m, s[0], &rec, &err) == -1 && err.code == SG_NOT_FOUND);
	ca_cert_record_clear(&rec);
	sg_err_init(&err);
	T_OK(ca_cert_get(g_ca, &e.m, s[5], &rec, &err) == 0 && rec.revoked);
	ca_cert_record_clear(&rec);
	/* The CRL follows (tidy scheduled the rebuild): only the unexpired revocation is left. */
	T_OK(crl_wait_idle(c, &e.m, 5000) == 0);
	sg_err_init(&err);
	T_OK(crl_build_now(c, &e.m, "default", CRL_FULL, &err) == 0);
	crl = get_crl(c, &e.m, "default", CRL_FULL, NULL);
	T_OK(crl != NULL && sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)) == 1 && find_entry(crl, keep) != NULL);
	X509_CRL_free(crl);

	/* Background tidy, then auto-tidy configuration round trip. */
	sg_err_init(&err);
	T_OK(crl_tidy_start(c, &e.m, &t, &err) == 0);
	{
		int64_t t0 = now_ms();
		const char *state = "";

		while (now_ms() - t0 < 5000) {
			st = crl_tidy_status(c, &e.m);
			state = json_string_value(json_object_get(st, "state"));
			if (state != NULL && strcmp(state, "Finished") == 0) {
				json_decref(st);
				break;
			}
			json_decref(st);
			state = "";
			sleep_ms(20);
		}
		T_OK(now_ms() - t0 < 5000);
	}
	{
		struct crl_tidy_config a;

		sg_err_init(&err);
		T_OK(crl_tidy_config_get(c, &e.m, &a, &err) == 0 && !a.enabled && a.interval_duration == 12 * 3600);
		a.enabled = true;
		a.interval_duration = 1;
		sg_err_init(&err);
		T_OK(crl_tidy_config_set(c, &e.m, &a, &err) == -1); /* enabled needs an operation */
		a.tidy_cert_store = true;
		sg_err_init(&err);
		T_OK(crl_tidy_config_set(c, &e.m, &a, &err) == 0);
		/* Within a few ticks the auto run finishes and is recorded. */
		{
			int64_t t0 = now_ms();
			bool seen = false;

			while (!seen && now_ms() - t0 < 6000) {
				st = crl_tidy_status(c, &e.m);
				seen = json_is_string(json_object_get(st, "last_auto_tidy_finished"));
				json_decref(st);
				if (!seen)
					sleep_ms(50);
			}
			T_OK(seen);
		}
		a.enabled = false;
		T_OK(crl_tidy_config_set(c, &e.m, &a, &err) == 0);
		j = crl_tidy_config_to_json(&a, true);
		T_OK(json_integer_value(json_object_get(j, "interval_duration")) == 1);
		T_OK(json_is_false(json_object_get(j, "enabled")));
		json_decref(j);
	}
	sg_clock_advance(-2 * 3600);
	X509_free(keep);
	for (int i = 0; i < 6; i++)
		free(s[i]);
	env_clear(&e);
}

int main(void)
{
	char tmpl[] = "/tmp/sigil-crl-XXXXXX";
	char *dir = mkdtemp(tmpl);
	char *store_dir, *state_dir, *state2;
	unsigned char kek[CA_KEK_BYTES] = {7, 7, 7};
	struct crl *c = NULL;
	struct sg_err err;

	sg_err_init(&err);
	if (dir == NULL)
		return 2;
	store_dir = sg_xasprintf("%s/store", dir);
	state_dir = sg_xasprintf("%s/crl", dir);
	state2 = sg_xasprintf("%s/crl2", dir);
	if (mkdir(store_dir, 0700) != 0 || store_open(store_dir, 0, &g_st, &err) != 0 ||
	    ca_new(g_st, kek, &g_ca, &err) != 0 || crl_new(g_st, g_ca, state_dir, &c, &err) != 0) {
		fprintf(stderr, "setup: %s\n", err.detail);
		return 2;
	}
	test_config();
	test_full(c);
	test_key_types(c);
	test_many(c);
	test_disable_and_cap(c);
	test_delta(c);
	T_OK(crl_start(c, &err) == 0);
	test_background(c);
	test_tidy(c);
	crl_free(c);
	test_restart(state2);
	ca_free(g_ca);
	store_close(g_st);
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(store_dir);
	free(state_dir);
	free(state2);
	return t_done();
}
