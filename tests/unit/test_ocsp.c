/* crl/ocsp: request parsing, statuses, the pre-signed cache, revocation at once, nonces, responders, refresh. */
#include "crl/ocsp.h"
#include "tests/unit/t.h"

#include <ftw.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

struct env {
	char mid[37];
	struct ca_mount m;
	X509 *root;
	char root_id[37];
	struct role *role;
};

static int setup_mount(struct env *e, const char *path, const char *cn)
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
	p.common_name = cn;
	p.ttl = 5LL * 365 * 86400;
	p.key.type = CA_KEY_EC;
	p.key.bits = 256;
	if (ca_root_generate(g_ca, &e->m, &p, &root, &err) != 0) {
		fprintf(stderr, "root: %s\n", err.detail);
		return -1;
	}
	e->root = root.cert;
	root.cert = NULL;
	snprintf(e->root_id, sizeof(e->root_id), "%s", root.issuer_id);
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

static X509 *issue(struct env *e, const char *cn)
{
	struct ca_request req;
	struct ca_result res = {0};
	struct sg_err err;
	X509 *x = NULL;

	sg_err_init(&err);
	ca_request_init(&req);
	req.kind = CA_REQ_ISSUE;
	req.common_name = cn;
	req.ttl = 3600;
	if (ca_issue(g_ca, &e->m, e->role, &req, NULL, &res, &err) == 0) {
		X509_up_ref(res.cert);
		x = res.cert;
	} else {
		fprintf(stderr, "issue: %s\n", err.detail);
	}
	ca_result_clear(&res);
	ca_request_clear(&req);
	return x;
}

static int do_revoke(struct env *e, X509 *x, enum ca_reason reason)
{
	struct ca_revoke_result rr = {0};
	struct sg_err err;
	char *serial;
	int rc;
	const ASN1_INTEGER *sn = X509_get0_serialNumber(x);

	serial = sg_hex_colon(ASN1_STRING_get0_data(sn), (size_t)ASN1_STRING_length(sn));
	sg_err_init(&err);
	rc = ca_revoke(g_ca, &e->m, serial, NULL, reason, 0, &rr, &err);
	if (rc != 0)
		fprintf(stderr, "revoke: %s\n", err.detail);
	ca_revoke_result_clear(&rr);
	free(serial);
	return rc;
}

/* A DER OCSPRequest for the certificates (each with md), with a nonce of nonce_len bytes when > 0. */
static unsigned char *make_req(X509 **certs, X509 *issuer, const EVP_MD *md, size_t n, int nonce_len, size_t *len)
{
	OCSP_REQUEST *req = OCSP_REQUEST_new();
	unsigned char *der = NULL, *out;
	int l;

	for (size_t i = 0; i < n; i++) {
		OCSP_CERTID *id = OCSP_cert_to_id(md, certs[i], issuer);

		if (id == NULL || OCSP_request_add0_id(req, id) == NULL)
			abort();
	}
	if (nonce_len > 0 && OCSP_request_add1_nonce(req, NULL, nonce_len) != 1)
		abort();
	l = i2d_OCSP_REQUEST(req, &der);
	out = sg_xmalloc((size_t)l);
	memcpy(out, der, (size_t)l);
	*len = (size_t)l;
	OPENSSL_free(der);
	OCSP_REQUEST_free(req);
	return out;
}

/* Response status, and when successful the status of `cert` (SHA-1 CertID) after verifying the signature. */
struct parsed {
	int resp_status;
	int status, reason;
	bool verified;
	bool by_root;           /* responder id is the root's key */
	bool nocheck, ocsp_eku; /* on the embedded responder certificate */
	int n_single;
	bool has_nonce;
	bool has_next;
};

static void parse_answer(const struct ocsp_answer *a, X509 *cert, X509 *root, const EVP_MD *md, struct parsed *p)
{
	const unsigned char *q = a->der;
	OCSP_RESPONSE *r = d2i_OCSP_RESPONSE(NULL, &q, (long)a->len);
	OCSP_BASICRESP *bs = NULL;
	X509_STORE *st = X509_STORE_new();
	STACK_OF(X509) *roots = sk_X509_new_null();
	OCSP_CERTID *id = NULL;
	ASN1_GENERALIZEDTIME *rev = NULL, *tu = NULL, *nu = NULL;

	memset(p, 0, sizeof(*p));
	p->resp_status = -1;
	p->status = -1;
	if (r == NULL || q != a->der + a->len)
		goto out;
	p->resp_status = OCSP_response_status(r);
	if (p->resp_status != OCSP_RESPONSE_STATUS_SUCCESSFUL || (bs = OCSP_response_get1_basic(r)) == NULL)
		goto out;
	X509_STORE_add_cert(st, root);
	sk_X509_push(roots, root);
	p->verified = OCSP_basic_verify(bs, roots, st, 0) == 1;
	ERR_clear_error();
	p->n_single = OCSP_resp_count(bs);
	p->has_nonce = OCSP_BASICRESP_get_ext_by_NID(bs, NID_id_pkix_OCSP_Nonce, -1) >= 0;
	{
		const ASN1_OCTET_STRING *kid = NULL;
		const X509_NAME *nm = NULL;
		unsigned char h[EVP_MAX_MD_SIZE];
		unsigned hl = 0;

		if (OCSP_resp_get0_id(bs, &kid, &nm) == 1 && kid != NULL &&
		    X509_pubkey_digest(root, EVP_sha1(), h, &hl) == 1)
			p->by_root = (unsigned)ASN1_STRING_length(kid) == hl && memcmp(ASN1_STRING_get0_data(kid), h, hl) == 0;
	}
	if (sk_X509_num(OCSP_resp_get0_certs(bs)) > 0) {
		X509 *rc = sk_X509_value(OCSP_resp_get0_certs(bs), 0);

		p->nocheck = X509_get_ext_by_NID(rc, NID_id_pkix_OCSP_noCheck, -1) >= 0;
		p->ocsp_eku = (X509_get_extended_key_usage(rc) & XKU_OCSP_SIGN) != 0;
	}
	if (cert != NULL) {
		id = OCSP_cert_to_id(md, cert, root);
		if (OCSP_resp_find_status(bs, id, &p->status, &p->reason, &rev, &tu, &nu) != 1)
			p->status = -1;
		p->has_next = nu != NULL;
	}
out:
	OCSP_CERTID_free(id);
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(r);
	X509_STORE_free(st);
	sk_X509_free(roots);
}

static void answer(struct ocsp *o, struct env *e, const char *only, X509 **certs, size_t n, const EVP_MD *md,
                   int nonce, struct ocsp_answer *a)
{
	size_t len = 0;
	unsigned char *req = make_req(certs, e->root, md, n, nonce, &len);

	ocsp_respond(o, &e->m, only, req, len, a);
	free(req);
}

static void test_parse(void)
{
	static const unsigned char garbage[] = {0x30, 0x82, 0xff, 0xff, 0x01};
	struct sg_err err;
	size_t n = 0, nl = 0, len = 0;
	unsigned char *der = NULL, *dec = NULL;
	X509 *self = NULL;
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *certs[OCSP_MAX_REQUEST_ITEMS + 1];
	char *b64;
	size_t dl = 0, bl;

	/* A self-signed certificate stands in for subject and issuer. */
	self = X509_new();
	X509_set_version(self, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(self), 42);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(self), "CN", MBSTRING_ASC, (const unsigned char *)"x", -1, -1, 0);
	X509_set_issuer_name(self, X509_get_subject_name(self));
	X509_gmtime_adj(X509_getm_notBefore(self), 0);
	X509_gmtime_adj(X509_getm_notAfter(self), 3600);
	X509_set_pubkey(self, k);
	X509_sign(self, k, EVP_sha256());
	for (size_t i = 0; i <= OCSP_MAX_REQUEST_ITEMS; i++)
		certs[i] = self;

	der = make_req(certs, self, NULL, 1, 0, &len);
	sg_err_init(&err);
	T_OK(ocsp_request_check(der, len, &n, &nl, &err) == 0 && n == 1 && nl == 0);
	sg_err_init(&err);
	T_OK(ocsp_request_check(der, len - 1, &n, &nl, &err) == -1 && err.code == SG_BAD_REQUEST);
	/* Trailing bytes after the DER are refused. */
	{
		unsigned char *t = sg_xmalloc(len + 1);

		memcpy(t, der, len);
		t[len] = 0;
		sg_err_init(&err);
		T_OK(ocsp_request_check(t, len + 1, &n, &nl, &err) == -1 && err.code == SG_BAD_REQUEST);
		free(t);
	}
	/* GET form: base64 round trip, also with the trailing '/' a router strips. */
	b64 = sg_base64(der, len);
	bl = strlen(b64);
	T_OK(ocsp_get_decode(b64, bl, &dec, &dl) == 0 && dl == len && memcmp(dec, der, len) == 0);
	free(dec);
	dec = NULL;
	T_OK(ocsp_get_decode("!!!!", 4, &dec, &dl) == -1 && dec == NULL);
	T_OK(ocsp_get_decode("", 0, &dec, &dl) == -1);
	free(b64);
	free(der);
	sg_err_init(&err);
	T_OK(ocsp_request_check(garbage, sizeof(garbage), &n, &nl, &err) == -1);
	sg_err_init(&err);
	T_OK(ocsp_request_check(garbage, 0, &n, &nl, &err) == -1);
	/* RFC 8954: nonces of 1 and 32 octets pass, 33 does not. */
	der = make_req(certs, self, NULL, 1, 32, &len);
	sg_err_init(&err);
	T_OK(ocsp_request_check(der, len, &n, &nl, &err) == 0 && nl == 32);
	free(der);
	der = make_req(certs, self, NULL, 1, 1, &len);
	sg_err_init(&err);
	T_OK(ocsp_request_check(der, len, &n, &nl, &err) == 0 && nl == 1);
	free(der);
	der = make_req(certs, self, NULL, 1, 33, &len);
	sg_err_init(&err);
	T_OK(ocsp_request_check(der, len, &n, &nl, &err) == -1 && err.code == SG_BAD_REQUEST);
	free(der);
	der = make_req(certs, self, NULL, OCSP_MAX_REQUEST_ITEMS, 0, &len);
	sg_err_init(&err);
	T_OK(ocsp_request_check(der, len, &n, &nl, &err) == 0 && n == OCSP_MAX_REQUEST_ITEMS);
	free(der);
	der = make_req(certs, self, NULL, OCSP_MAX_REQUEST_ITEMS + 1, 0, &len);
	sg_err_init(&err);
	T_OK(ocsp_request_check(der, len, &n, &nl, &err) == -1 && err.code == SG_BAD_REQUEST);
	free(der);
	X509_free(self);
	EVP_PKEY_free(k);
}

static bool is_error(const struct ocsp_answer *a, unsigned char code)
{
	return a->len == 5 && a->der[0] == 0x30 && a->der[1] == 3 && a->der[2] == 0x0a && a->der[4] == code;
}

static void test_respond(struct crl *c, struct ocsp *o)
{
	struct env e, other;
	struct ocsp_answer a = {0}, b = {0};
	struct parsed p;
	X509 *good = NULL, *bad = NULL, *stranger = NULL;
	X509 *two[2];
	struct crl_config cfg;
	struct sg_err err;

	if (setup_mount(&e, "pki", "OCSP Test Root") != 0 || setup_mount(&other, "pki2", "Other Root") != 0) {
		T_CHECK(0, "setup");
		return;
	}
	good = issue(&e, "good.example.com");
	bad = issue(&e, "bad.example.com");
	stranger = issue(&other, "stranger.example.com");
	T_OK(good != NULL && bad != NULL && stranger != NULL);
	if (good == NULL || bad == NULL || stranger == NULL)
		goto out;

	/* good, delegated responder, verified against the root. */
	answer(o, &e, NULL, &good, 1, NULL, 0, &a);
	parse_answer(&a, good, e.root, EVP_sha1(), &p);
	T_CHECK(p.resp_status == 0 && p.status == V_OCSP_CERTSTATUS_GOOD, "resp %d status %d", p.resp_status, p.status);
	T_OK(p.verified);
	T_OK(!p.by_root && p.nocheck && p.ocsp_eku);
	T_OK(p.has_next && !p.has_nonce && a.cacheable && a.next_update > a.this_update && a.etag[0] == '"');
	/* Pre-signed: the same request gets the same bytes, from the cache. */
	answer(o, &e, NULL, &good, 1, NULL, 0, &b);
	T_OK(b.len == a.len && memcmp(a.der, b.der, a.len) == 0 && strcmp(a.etag, b.etag) == 0);
	T_CHECK(ocsp_cache_count(o, &e.m) == 1, "%zu", ocsp_cache_count(o, &e.m));
	/* Cache-only answers (libmicrohttpd's thread): a miss is false and signs nothing, a hit is the pre-signed bytes. */
	{
		X509 *fresh = issue(&other, "fresh.example.com"); /* on the other mount: e's cache counts stay as below */
		size_t len = 0;
		unsigned char *req = fresh != NULL ? make_req(&fresh, other.root, NULL, 1, 0, &len) : NULL;
		struct ocsp_answer c1 = {0}, c2 = {0}, c3 = {0};

		T_OK(req != NULL);
		if (req != NULL) {
			T_OK(!ocsp_respond_cached(o, &other.m, NULL, req, len, &c1) && c1.der == NULL);
			T_CHECK(ocsp_cache_count(o, &other.m) == 0, "a miss caches nothing: %zu", ocsp_cache_count(o, &other.m));
			ocsp_respond(o, &other.m, NULL, req, len, &c1);
			T_OK(ocsp_respond_cached(o, &other.m, NULL, req, len, &c2) && c2.cacheable);
			T_OK(c1.der != NULL && c1.len == c2.len && memcmp(c1.der, c2.der, c1.len) == 0);
			ocsp_answer_clear(&c2);
			/* Restricted to another issuer: the in-place parse finds no issuer, the full one answers unauthorized. */
			T_OK(ocsp_respond_cached(o, &other.m, "no-such-issuer", req, len, &c2));
			T_OK(is_error(&c2, 6));
			/* A bad request is answered (unsigned malformedRequest) without a worker. */
			T_OK(ocsp_respond_cached(o, &other.m, NULL, (const unsigned char *)"\x30\x00", 2, &c3) && is_error(&c3, 1));
		}
		ocsp_answer_clear(&c1);
		ocsp_answer_clear(&c2);
		ocsp_answer_clear(&c3);
		free(req);
		X509_free(fresh);
	}
	ocsp_answer_clear(&a);
	ocsp_answer_clear(&b);

	/* The bad one is cached as good, then revoked: the cached answer is revoked at once, with the reason. */
	answer(o, &e, NULL, &bad, 1, EVP_sha256(), 0, &a);
	parse_answer(&a, bad, e.root, EVP_sha256(), &p);
	T_OK(p.status == V_OCSP_CERTSTATUS_GOOD && p.verified);
	ocsp_answer_clear(&a);
	T_OK(do_revoke(&e, bad, CA_REASON_KEY_COMPROMISE) == 0);
	T_CHECK(ocsp_cache_count(o, &e.m) == 2, "%zu", ocsp_cache_count(o, &e.m));
	answer(o, &e, NULL, &bad, 1, EVP_sha256(), 0, &a);
	parse_answer(&a, bad, e.root, EVP_sha256(), &p);
	T_CHECK(p.status == V_OCSP_CERTSTATUS_REVOKED && p.reason == OCSP_REVOKED_STATUS_KEYCOMPROMISE && p.verified,
	        "status %d reason %d", p.status, p.reason);
	ocsp_answer_clear(&a);
	/* SHA-384 and SHA-512 CertIDs are understood too. */
	answer(o, &e, NULL, &bad, 1, EVP_sha512(), 0, &a);
	parse_answer(&a, bad, e.root, EVP_sha512(), &p);
	T_OK(p.status == V_OCSP_CERTSTATUS_REVOKED);
	ocsp_answer_clear(&a);
	answer(o, &e, NULL, &good, 1, EVP_sha384(), 0, &a);
	parse_answer(&a, good, e.root, EVP_sha384(), &p);
	T_OK(p.status == V_OCSP_CERTSTATUS_GOOD);
	ocsp_answer_clear(&a);
	/* MD5 CertIDs name no issuer we know: unauthorized (6). */
	answer(o, &e, NULL, &good, 1, EVP_md5(), 0, &a);
	T_OK(is_error(&a, 6));
	ocsp_answer_clear(&a);

	/* Two certificates in one request: both answered, signed for this request, not cached. */
	two[0] = good;
	two[1] = bad;
	answer(o, &e, NULL, two, 2, NULL, 0, &a);
	parse_answer(&a, bad, e.root, EVP_sha1(), &p);
	T_OK(p.n_single == 2 && p.status == V_OCSP_CERTSTATUS_REVOKED && p.verified && !a.cacheable);
	parse_answer(&a, good, e.root, EVP_sha1(), &p);
	T_OK(p.status == V_OCSP_CERTSTATUS_GOOD);
	ocsp_answer_clear(&a);

	/* Nonce: echoed, fresh each time, not cached. */
	answer(o, &e, NULL, &good, 1, NULL, 16, &a);
	answer(o, &e, NULL, &good, 1, NULL, 16, &b);
	parse_answer(&a, good, e.root, EVP_sha1(), &p);
	T_OK(p.has_nonce && p.status == V_OCSP_CERTSTATUS_GOOD && p.verified && !a.cacheable);
	T_OK(a.len != b.len || memcmp(a.der, b.der, a.len) != 0);
	ocsp_answer_clear(&a);
	ocsp_answer_clear(&b);
	answer(o, &e, NULL, &good, 1, NULL, 33, &a);
	T_OK(is_error(&a, 1));
	ocsp_answer_clear(&a);

	/* A certificate of another mount's issuer: unauthorized; with the right issuer but unknown serial: unknown. */
	answer(o, &e, NULL, &stranger, 1, NULL, 0, &a);
	T_OK(is_error(&a, 6));
	ocsp_answer_clear(&a);
	{
		X509 *fake = X509_dup(good);

		ASN1_INTEGER_set(X509_get_serialNumber(fake), 0x7abcdef);
		answer(o, &e, NULL, &fake, 1, NULL, 0, &a);
		parse_answer(&a, fake, e.root, EVP_sha1(), &p);
		T_CHECK(p.status == V_OCSP_CERTSTATUS_UNKNOWN && p.verified, "status %d", p.status);
		ocsp_answer_clear(&a);
		X509_free(fake);
	}
	/* A certificate of the other mount asked at its own mount works. */
	answer(o, &other, NULL, &stranger, 1, NULL, 0, &a);
	parse_answer(&a, stranger, other.root, EVP_sha1(), &p);
	T_OK(p.status == V_OCSP_CERTSTATUS_GOOD && p.verified);
	ocsp_answer_clear(&a);
	/* issuer/:ref/ocsp restricted to another issuer id: unauthorized. */
	answer(o, &e, other.root_id, &good, 1, NULL, 0, &a);
	T_OK(is_error(&a, 6));
	ocsp_answer_clear(&a);
	answer(o, &e, e.root_id, &good, 1, NULL, 0, &a);
	parse_answer(&a, good, e.root, EVP_sha1(), &p);
	T_OK(p.status == V_OCSP_CERTSTATUS_GOOD);
	ocsp_answer_clear(&a);
	/* Malformed requests: malformedRequest (1). */
	ocsp_respond(o, &e.m, NULL, (const unsigned char *)"\x30\x00", 2, &a);
	T_OK(is_error(&a, 1));
	ocsp_answer_clear(&a);

	/* Refresh: due answers are re-signed (new signature), the status stays. */
	answer(o, &e, NULL, &good, 1, NULL, 0, &a);
	ocsp_refresh_now(o, 365LL * 86400);
	answer(o, &e, NULL, &good, 1, NULL, 0, &b);
	T_OK(b.cacheable && (a.len != b.len || memcmp(a.der, b.der, a.len) != 0) && b.this_update >= a.this_update);
	parse_answer(&b, good, e.root, EVP_sha1(), &p);
	T_OK(p.status == V_OCSP_CERTSTATUS_GOOD && p.verified);
	ocsp_answer_clear(&a);
	ocsp_answer_clear(&b);

	/* config/crl: signed by the issuer itself, then disabled. */
	sg_err_init(&err);
	T_OK(crl_config_get(c, &e.m, &cfg, &err) == 0);
	cfg.ocsp_sign_with_issuer = true;
	T_OK(crl_config_set(c, &e.m, &cfg, &err) == 0);
	T_OK(ocsp_cache_count(o, &e.m) == 0);
	answer(o, &e, NULL, &bad, 1, NULL, 0, &a);
	parse_answer(&a, bad, e.root, EVP_sha1(), &p);
	T_OK(p.status == V_OCSP_CERTSTATUS_REVOKED && p.verified && p.by_root && !p.nocheck);
	ocsp_answer_clear(&a);
	cfg.ocsp_expiry = 0;
	T_OK(crl_config_set(c, &e.m, &cfg, &err) == 0);
	answer(o, &e, NULL, &good, 1, NULL, 0, &a);
	parse_answer(&a, good, e.root, EVP_sha1(), &p);
	T_OK(p.status == V_OCSP_CERTSTATUS_GOOD && !p.has_next && a.next_update == 0);
	ocsp_answer_clear(&a);
	cfg.ocsp_disable = true;
	T_OK(crl_config_set(c, &e.m, &cfg, &err) == 0);
	answer(o, &e, NULL, &good, 1, NULL, 0, &a);
	T_OK(is_error(&a, 6));
	ocsp_answer_clear(&a);
out:
	X509_free(good);
	X509_free(bad);
	X509_free(stranger);
	env_clear(&e);
	env_clear(&other);
}

int main(void)
{
	char tmpl[] = "/tmp/sigil-ocsp-XXXXXX";
	char *dir = mkdtemp(tmpl);
	char *store_dir;
	unsigned char kek[CA_KEK_BYTES] = {9, 9, 9};
	struct crl *c = NULL;
	struct ocsp *o = NULL;
	struct sg_err err;

	sg_err_init(&err);
	if (dir == NULL)
		return 2;
	store_dir = sg_xasprintf("%s/store", dir);
	if (mkdir(store_dir, 0700) != 0 || store_open(store_dir, 0, &g_st, &err) != 0 ||
	    ca_new(g_st, kek, &g_ca, &err) != 0 || crl_new(g_st, g_ca, NULL, &c, &err) != 0 ||
	    ocsp_new(g_st, g_ca, c, &o, &err) != 0) {
		fprintf(stderr, "setup: %s\n", err.detail);
		return 2;
	}
	test_parse();
	T_OK(ocsp_start(o, &err) == 0);
	test_respond(c, o);
	ocsp_free(o);
	crl_free(c);
	ca_free(g_ca);
	store_close(g_st);
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(store_dir);
	return t_done();
}
