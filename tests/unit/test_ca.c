/* Unit tests for ca/: keys at rest, issuers, issuance under roles, serials, revocation, persistence. */
#include "ca/ca.h"
#include "ca/internal.h"
#include "tests/unit/t.h"

#include <ftw.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DAY 86400
#define YEAR (365 * DAY)

static char *g_dir;
static struct store *g_st;
static struct ca *g_ca;
static unsigned char g_kek[CA_KEK_BYTES];

/* ---------------- helpers ---------------- */

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

static void open_all(void)
{
	struct sg_err err;

	sg_err_init(&err);
	if (store_open(g_dir, 0, &g_st, &err) != 0 || ca_new(g_st, g_kek, &g_ca, &err) != 0) {
		fprintf(stderr, "setup: %s\n", err.detail);
		exit(2);
	}
}

static void close_all(void)
{
	ca_free(g_ca);
	store_close(g_st);
	g_ca = NULL;
	g_st = NULL;
}

struct tmount {
	char id[37];
	struct ca_mount m;
};

static void mount_init(struct tmount *t, const char *path)
{
	sg_uuid(t->id);
	t->m.id = t->id;
	t->m.path = path;
	t->m.default_ttl = 768 * 3600;
	t->m.max_ttl = 10 * YEAR;
}

static int gen_root(const struct ca_mount *m, const char *type, int bits, const char *cn, const char *name,
                    int64_t ttl, struct ca_gen_result *res, struct sg_err *err)
{
	struct ca_ca_params p;
	int rc;

	ca_ca_params_init(&p);
	p.common_name = cn;
	p.issuer_name = name;
	p.ttl = ttl;
	p.exported = true;
	if (ca_keyspec_parse(type, bits, &p.key, err) < 0)
		return -1;
	rc = ca_root_generate(g_ca, m, &p, res, err);
	ca_ca_params_clear(&p);
	return rc;
}

static void split(struct sg_strlist *l, const char *csv)
{
	const char *s = csv;

	while (s != NULL && *s) {
		const char *e = strchr(s, ',');
		size_t n = e ? (size_t)(e - s) : strlen(s);

		sg_strlist_addn(l, s, n);
		s = e ? e + 1 : NULL;
	}
}

static EVP_PKEY *keygen(const char *type, int bits)
{
	struct ca_keyspec ks;
	struct sg_err err;
	EVP_PKEY *k;

	sg_err_init(&err);
	if (ca_keyspec_parse(type, bits, &ks, &err) < 0 || (k = ca_key_generate(&ks, &err)) == NULL) {
		fprintf(stderr, "keygen: %s\n", err.detail);
		exit(2);
	}
	return k;
}

static X509_REQ *make_csr(EVP_PKEY *k, const char *cn, const char *san_conf, bool ca)
{
	X509_REQ *r = X509_REQ_new();
	X509_NAME *n = X509_NAME_new();
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();

	if (cn != NULL)
		X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
	X509_REQ_set_subject_name(r, n);
	X509_REQ_set_pubkey(r, k);
	if (san_conf != NULL)
		sk_X509_EXTENSION_push(exts, X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san_conf));
	if (ca)
		sk_X509_EXTENSION_push(exts, X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints, "critical,CA:TRUE"));
	if (sk_X509_EXTENSION_num(exts) > 0)
		X509_REQ_add_extensions(r, exts);
	X509_REQ_sign(r, k, EVP_PKEY_get_base_id(k) == EVP_PKEY_ED25519 ? NULL : EVP_sha256());
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_NAME_free(n);
	return r;
}

/* X509_verify_cert with the last chain element as the trust anchor, at the one clock's time. */
static bool verify_chain(X509 *leaf, STACK_OF(X509) *chain)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	bool ok;

	X509_STORE_add_cert(store, sk_X509_value(chain, sk_X509_num(chain) - 1));
	X509_STORE_CTX_init(ctx, store, leaf, chain);
	X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx), (time_t)sg_now());
	X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(ctx), X509_V_FLAG_X509_STRICT);
	ok = X509_verify_cert(ctx) == 1;
	if (!ok)
		fprintf(stderr, "verify: %s\n", X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return ok;
}

static int san_count(X509 *x, int type)
{
	GENERAL_NAMES *g = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	int n = 0;

	for (int i = 0; i < sk_GENERAL_NAME_num(g); i++)
		if (type < 0 || sk_GENERAL_NAME_value(g, i)->type == type)
			n++;
	GENERAL_NAMES_free(g);
	return n;
}

static bool has_dns(X509 *x, const char *name)
{
	GENERAL_NAMES *g = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	bool found = false;

	for (int i = 0; i < sk_GENERAL_NAME_num(g); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(g, i);

		if (gn->type == GEN_DNS && strcmp((const char *)ASN1_STRING_get0_data(gn->d.dNSName), name) == 0)
			found = true;
	}
	GENERAL_NAMES_free(g);
	return found;
}

static int64_t not_after_of(X509 *x)
{
	return ca_asn1_time_unix(X509_get0_notAfter(x));
}

static struct role *web_role(const char *key_type, int key_bits)
{
	struct role *r = role_new("web");

	sg_strlist_add(&r->allowed_domains, "example.com");
	r->allow_subdomains = true;
	free(r->key_type);
	r->key_type = sg_xstrdup(key_type);
	r->key_bits = key_bits;
	return r;
}

static int issue(const struct ca_mount *m, const struct role *r, enum ca_req_kind kind, X509_REQ *csr, const char *cn,
                 const char *alt, int64_t ttl, struct ca_result *res, struct sg_err *err)
{
	struct ca_request req;
	int rc;

	ca_request_init(&req);
	req.kind = kind;
	req.csr = csr;
	req.common_name = cn;
	req.ttl = ttl;
	if (alt != NULL)
		split(&req.alt_names, alt);
	rc = ca_issue(g_ca, m, r, &req, NULL, res, err);
	ca_request_clear(&req);
	return rc;
}

static char *pem_of(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *s;
	long n;

	PEM_write_bio_X509(b, x);
	n = BIO_get_mem_data(b, &data);
	s = sg_xstrndup(data, (size_t)n);
	BIO_free(b);
	return s;
}

/* ---------------- tests ---------------- */

static void test_keyspecs(void)
{
	struct ca_keyspec ks;
	struct sg_err err;
	EVP_PKEY *k;
	char *pem;
	const char *t;
	int bits;

	sg_err_init(&err);
	T_OK(ca_keyspec_parse("rsa", 0, &ks, &err) == 0 && ks.type == CA_KEY_RSA && ks.bits == 2048);
	T_OK(ca_keyspec_parse("ec", 0, &ks, &err) == 0 && ks.type == CA_KEY_EC && ks.bits == 256);
	T_OK(ca_keyspec_parse("ed25519", 0, &ks, &err) == 0 && ks.type == CA_KEY_ED25519);
	T_OK(ca_keyspec_parse("rsa", 1024, &ks, &err) < 0 && err.code == SG_BAD_REQUEST);
	sg_err_init(&err);
	T_OK(ca_keyspec_parse("ec", 255, &ks, &err) < 0 && err.code == SG_BAD_REQUEST);
	sg_err_init(&err);
	T_OK(ca_keyspec_parse("dsa", 0, &ks, &err) < 0 && err.code == SG_BAD_REQUEST);

	k = keygen("ec", 384);
	sg_err_init(&err);
	T_OK(ca_key_describe(k, &t, &bits, &err) == 0);
	T_STREQ(t, "ec");
	T_OK(bits == 384);
	pem = ca_key_to_pem(k, false, &err);
	T_OK(pem != NULL && strstr(pem, "BEGIN EC PRIVATE KEY") != NULL);
	free(pem);
	pem = ca_key_to_pem(k, true, &err);
	T_OK(pem != NULL && strstr(pem, "BEGIN PRIVATE KEY") != NULL);
	free(pem);
	EVP_PKEY_free(k);
	k = keygen("ed25519", 0);
	pem = ca_key_to_pem(k, false, &err);
	T_OK(pem != NULL && strstr(pem, "BEGIN PRIVATE KEY") != NULL);
	free(pem);
	EVP_PKEY_free(k);
	k = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
	sg_err_init(&err);
	T_OK(ca_key_describe(k, &t, &bits, &err) < 0 && err.code == SG_KEY_DENIED);
	EVP_PKEY_free(k);
}

static void test_roots_all_types(void)
{
	static const struct {
		const char *type;
		int bits;
		int signid;
	} cases[] = {
		{"ec", 256, NID_ecdsa_with_SHA256},      {"ec", 384, NID_ecdsa_with_SHA384},
		{"rsa", 2048, NID_sha256WithRSAEncryption}, {"rsa", 3072, NID_sha256WithRSAEncryption},
		{"rsa", 4096, NID_sha256WithRSAEncryption}, {"ed25519", 0, NID_ED25519},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tmount tm;
		struct ca_gen_result res;
		struct ca_issuer_info info;
		struct sg_err err;
		EVP_PKEY *priv = NULL;
		BIO *b;
		const char *t;
		int bits;
		BIGNUM *bn;

		mount_init(&tm, "pki");
		sg_err_init(&err);
		if (gen_root(&tm.m, cases[i].type, cases[i].bits, "Root CA", "root", 5 * YEAR, &res, &err) != 0) {
			T_CHECK(0, "root %s/%d: %s", cases[i].type, cases[i].bits, err.detail);
			continue;
		}
		T_CHECK(X509_verify(res.cert, X509_get0_pubkey(res.cert)) == 1, "self-signature %s", cases[i].type);
		T_OK(X509_self_signed(res.cert, 1) == 1);
		T_OK(X509_check_ca(res.cert) == 1);
		T_CHECK(X509_get_signature_nid(res.cert) == cases[i].signid, "%s/%d sig nid %d", cases[i].type,
		        cases[i].bits, X509_get_signature_nid(res.cert));
		T_OK(ca_key_describe(X509_get0_pubkey(res.cert), &t, &bits, &err) == 0);
		T_STREQ(t, cases[i].type);
		T_OK(bits == cases[i].bits);
		T_STREQ(res.private_key_type, cases[i].type);
		T_OK(res.expiration == not_after_of(res.cert));
		bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(res.cert), NULL);
		T_OK(!BN_is_negative(bn) && BN_num_bytes(bn) <= CA_MAX_SERIAL_BYTES);
		BN_free(bn);
		/* The exported key is the certificate's. */
		b = BIO_new_mem_buf(res.private_key_pem, -1);
		priv = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
		T_OK(priv != NULL && EVP_PKEY_eq(priv, X509_get0_pubkey(res.cert)) == 1);
		EVP_PKEY_free(priv);
		BIO_free(b);
		/* The issuer answers to its id, its name and "default". */
		T_OK(ca_issuer_get(g_ca, &tm.m, "default", &info, &err) == 0 && info.is_default &&
		     strcmp(info.id, res.issuer_id) == 0 && strcmp(info.key_id, res.key_id) == 0 &&
		     sk_X509_num(info.chain) == 1);
		ca_issuer_info_clear(&info);
		T_OK(ca_issuer_get(g_ca, &tm.m, "root", &info, &err) == 0 && strcmp(info.id, res.issuer_id) == 0);
		ca_issuer_info_clear(&info);
		T_OK(ca_issuer_get(g_ca, &tm.m, res.issuer_id, &info, &err) == 0);
		ca_issuer_info_clear(&info);
		ca_gen_result_clear(&res);
	}
}

static void test_intermediate_chain(void)
{
	struct tmount rootm, intm;
	struct ca_gen_result root, inter;
	struct ca_ca_params p;
	struct ca_result signed_int, leaf;
	struct ca_import_result imp;
	struct ca_issuer_info info;
	struct sg_err err;
	struct role *r = web_role("ec", 256);
	char *pem, *pem2, *bundle;
	X509_REQ *csr;
	EVP_PKEY *k;

	mount_init(&rootm, "pki");
	mount_init(&intm, "pki_int");
	sg_err_init(&err);
	T_OK(gen_root(&rootm.m, "ec", 256, "Root CA", NULL, 5 * YEAR, &root, &err) == 0);

	ca_ca_params_init(&p);
	p.common_name = "Intermediate CA";
	p.key.type = CA_KEY_EC;
	p.key.bits = 384;
	p.key_name = "int-key";
	T_CHECK(ca_intermediate_generate(g_ca, &intm.m, &p, &inter, &err) == 0, "%s", err.detail);
	ca_ca_params_clear(&p);
	T_OK(inter.csr != NULL && X509_REQ_verify(inter.csr, X509_REQ_get0_pubkey(inter.csr)) == 1);
	T_OK(inter.private_key_pem == NULL);
	T_STREQ(inter.key_name, "int-key");

	ca_ca_params_init(&p);
	p.common_name = "Intermediate CA";
	p.ttl = 2 * YEAR;
	T_CHECK(ca_sign_intermediate(g_ca, &rootm.m, NULL, inter.csr, &p, &signed_int, &err) == 0, "%s", err.detail);
	ca_ca_params_clear(&p);
	T_OK(X509_check_ca(signed_int.cert) == 1);
	T_OK(X509_verify(signed_int.cert, X509_get0_pubkey(root.cert)) == 1);
	T_OK(sk_X509_num(signed_int.chain) == 1);

	/* set-signed: the intermediate and the root, as a chain bundle. */
	pem = pem_of(signed_int.cert);
	pem2 = pem_of(root.cert);
	bundle = sg_xasprintf("%s%s", pem, pem2);
	T_CHECK(ca_import_pem(g_ca, &intm.m, bundle, strlen(bundle), false, &imp, &err) == 0, "%s", err.detail);
	T_OK(imp.imported_issuers.n == 2 && imp.existing_issuers.n == 0 && imp.mapping_issuers.n == 2);
	T_STREQ(imp.mapping_keys.v[0], inter.key_id);
	T_STREQ(imp.mapping_keys.v[1], "");
	ca_import_result_clear(&imp);
	T_OK(ca_issuer_get(g_ca, &intm.m, "default", &info, &err) == 0);
	T_STREQ(info.key_id, inter.key_id);
	T_OK(sk_X509_num(info.chain) == 2 && X509_cmp(sk_X509_value(info.chain, 1), root.cert) == 0);
	ca_issuer_info_clear(&info);
	/* Importing again reports existing issuers. */
	T_OK(ca_import_pem(g_ca, &intm.m, bundle, strlen(bundle), false, &imp, &err) == 0);
	T_OK(imp.imported_issuers.n == 0 && imp.existing_issuers.n == 2);
	ca_import_result_clear(&imp);

	/* use_csr_values: the CSR's subject and SANs; CA:true and the parent's path length rules still apply. */
	{
		EVP_PKEY *k2 = keygen("ec", 256);
		X509_REQ *c2 = make_csr(k2, "CSR Named CA", "DNS:ca.example.com", false);
		struct ca_result r2;

		ca_ca_params_init(&p);
		p.use_csr_values = true;
		p.ttl = YEAR;
		p.max_path_length = 3;
		T_CHECK(ca_sign_intermediate(g_ca, &rootm.m, NULL, c2, &p, &r2, &err) == 0, "%s", err.detail);
		T_OK(X509_NAME_cmp(X509_get_subject_name(r2.cert), X509_REQ_get_subject_name(c2)) == 0);
		T_OK(has_dns(r2.cert, "ca.example.com") && X509_check_ca(r2.cert) == 1 && X509_get_pathlen(r2.cert) == 3);
		ca_result_clear(&r2);
		ca_ca_params_clear(&p);
		X509_REQ_free(c2);
		EVP_PKEY_free(k2);
	}

	/* A leaf from the intermediate verifies up to the root. */
	k = keygen("ec", 256);
	csr = make_csr(k, "svc.example.com", NULL, false);
	T_CHECK(issue(&intm.m, r, CA_REQ_SIGN, csr, NULL, NULL, 3600, &leaf, &err) == 0, "%s", err.detail);
	T_OK(sk_X509_num(leaf.chain) == 2);
	T_OK(verify_chain(leaf.cert, leaf.chain));
	T_OK(has_dns(leaf.cert, "svc.example.com"));
	T_OK(X509_get_signature_nid(leaf.cert) == NID_ecdsa_with_SHA384);
	ca_result_clear(&leaf);
	X509_REQ_free(csr);
	EVP_PKEY_free(k);

	/* Keys are refused by import/cert (allow_keys false) and non-CA certificates by any import. */
	sg_err_init(&err);
	{
		char *kb = sg_xasprintf("%s%s", pem, root.private_key_pem);

		T_OK(ca_import_pem(g_ca, &intm.m, kb, strlen(kb), false, &imp, &err) < 0 && err.code == SG_BAD_REQUEST);
		free(kb);
	}
	/* A leaf certificate is not an issuer. */
	{
		char *lp;

		sg_err_init(&err);
		T_OK(issue(&intm.m, r, CA_REQ_ISSUE, NULL, "leaf.example.com", NULL, 600, &leaf, &err) == 0);
		lp = pem_of(leaf.cert);
		sg_err_init(&err);
		T_OK(ca_import_pem(g_ca, &intm.m, lp, strlen(lp), true, &imp, &err) < 0 && err.code == SG_BAD_REQUEST);
		sg_err_init(&err);
		T_OK(ca_import_pem(g_ca, &intm.m, "garbage", 7, true, &imp, &err) < 0 && err.code == SG_BAD_PEM);
		free(lp);
		ca_result_clear(&leaf);
	}
	free(bundle);
	free(pem);
	free(pem2);
	ca_result_clear(&signed_int);
	ca_gen_result_clear(&inter);
	ca_gen_result_clear(&root);
	role_free(r);
}

static void test_path_length(void)
{
	struct tmount m;
	struct ca_ca_params p;
	struct ca_gen_result root;
	struct ca_result res;
	struct sg_err err;
	EVP_PKEY *k = keygen("ec", 256);
	X509_REQ *csr = make_csr(k, "Sub CA", NULL, false);

	mount_init(&m, "pki");
	sg_err_init(&err);
	ca_ca_params_init(&p);
	p.common_name = "Root pathlen 0";
	p.key.type = CA_KEY_EC;
	p.key.bits = 256;
	p.max_path_length = 0;
	p.ttl = YEAR;
	T_OK(ca_root_generate(g_ca, &m.m, &p, &root, &err) == 0);
	T_OK(X509_get_pathlen(root.cert) == 0);
	ca_ca_params_clear(&p);
	ca_ca_params_init(&p);
	p.common_name = "Sub CA";
	T_OK(ca_sign_intermediate(g_ca, &m.m, "default", csr, &p, &res, &err) < 0 && err.code == SG_BAD_REQUEST);
	ca_ca_params_clear(&p);
	ca_gen_result_clear(&root);
	X509_REQ_free(csr);
	EVP_PKEY_free(k);
}

static void test_issue_roles(void)
{
	struct tmount tm;
	struct ca_gen_result root;
	struct ca_result res;
	struct ca_cert_record rec;
	struct sg_err err;
	struct role *r = web_role("ec", 256);
	EVP_PKEY *ec = keygen("ec", 256), *rsa = keygen("rsa", 2048);
	X509_REQ *csr;
	const char *t;
	int bits;

	mount_init(&tm, "pki");
	sg_err_init(&err);
	T_OK(gen_root(&tm.m, "ec", 256, "Root CA", NULL, 5 * YEAR, &root, &err) == 0);

	/* issue: server-generated key of the role's type. */
	if (issue(&tm.m, r, CA_REQ_ISSUE, NULL, "a.example.com", "b.example.com,ops@mail.example.com", 3600, &res, &err) !=
	    0) {
		T_CHECK(0, "%s", err.detail);
		return;
	}
	T_OK(res.key != NULL && ca_key_describe(res.key, &t, &bits, &err) == 0 && strcmp(t, "ec") == 0);
	T_OK(EVP_PKEY_eq(res.key, X509_get0_pubkey(res.cert)) == 1);
	T_OK(has_dns(res.cert, "a.example.com") && has_dns(res.cert, "b.example.com"));
	T_OK(san_count(res.cert, GEN_EMAIL) == 1);
	T_OK(verify_chain(res.cert, res.chain));
	T_OK(res.expiration == not_after_of(res.cert));
	T_OK(res.warnings.n == 0);
	/* Leaf usages: EC keys carry digitalSignature and keyAgreement, never keyEncipherment (RFC 5480 3). */
	T_OK((X509_get_key_usage(res.cert) & KU_DIGITAL_SIGNATURE) && (X509_get_key_usage(res.cert) & KU_KEY_AGREEMENT) &&
	     !(X509_get_key_usage(res.cert) & KU_KEY_ENCIPHERMENT));
	T_OK((X509_get_extended_key_usage(res.cert) & (XKU_SSL_SERVER | XKU_SSL_CLIENT)) == (XKU_SSL_SERVER | XKU_SSL_CLIENT));
	T_OK(X509_check_ca(res.cert) == 0);
	/* res.der is the certificate's own DER (what was stored), so renderers need not encode it again. */
	{
		unsigned char *d = NULL;
		int dn = i2d_X509(res.cert, &d);

		T_OK(res.der != NULL && dn > 0 && res.der_len == (size_t)dn && memcmp(res.der, d, res.der_len) == 0);
		OPENSSL_free(d);
	}
	T_OK(ca_cert_get(g_ca, &tm.m, res.serial, &rec, &err) == 0);
	T_STREQ(rec.role, "web");
	T_OK(rec.not_after == res.expiration && !rec.revoked);
	ca_cert_record_clear(&rec);
	ca_result_clear(&res);

	/* Names outside the role: SG_ROLE_DENIED. */
	sg_err_init(&err);
	T_OK(issue(&tm.m, r, CA_REQ_ISSUE, NULL, "a.evil.com", NULL, 3600, &res, &err) < 0 && err.code == SG_ROLE_DENIED);
	sg_err_init(&err);
	T_OK(issue(&tm.m, r, CA_REQ_ISSUE, NULL, "a.example.com", "x.evil.com", 3600, &res, &err) < 0 &&
	     err.code == SG_ROLE_DENIED);

	/* Key type mismatch: an RSA CSR under an EC role. */
	csr = make_csr(rsa, "c.example.com", NULL, false);
	sg_err_init(&err);
	T_OK(issue(&tm.m, r, CA_REQ_SIGN, csr, NULL, NULL, 3600, &res, &err) < 0 && err.code == SG_KEY_DENIED);
	X509_REQ_free(csr);

	/* TTL above max_ttl is clamped with Vault's warning. */
	r->max_ttl = 3600;
	sg_err_init(&err);
	T_CHECK(issue(&tm.m, r, CA_REQ_ISSUE, NULL, "a.example.com", NULL, 7200, &res, &err) == 0, "%s", err.detail);
	T_OK(res.warnings.n == 1);
	if (res.warnings.n == 1)
		T_STREQ(res.warnings.v[0], "TTL \"2h0m0s\" is longer than permitted maxTTL \"1h0m0s\", so maxTTL is being used");
	T_OK(llabs(res.expiration - (sg_now() + 3600)) <= 2);
	/* NotBefore is backdated 30 s. */
	T_OK(llabs(ca_asn1_time_unix(X509_get0_notBefore(res.cert)) - (sg_now() - 30)) <= 2);
	ca_result_clear(&res);
	r->max_ttl = 0;

	/* ttl and not_after together are refused. */
	{
		struct ca_request req;

		ca_request_init(&req);
		req.kind = CA_REQ_ISSUE;
		req.common_name = "a.example.com";
		req.ttl = 60;
		req.not_after = "2099-01-01T00:00:00Z";
		sg_err_init(&err);
		T_OK(ca_issue(g_ca, &tm.m, r, &req, NULL, &res, &err) < 0 && err.code == SG_BAD_REQUEST);
		req.ttl = 0;
		req.not_after = "2030-01-01T00:00:00Z";
		sg_err_init(&err);
		T_CHECK(ca_issue(g_ca, &tm.m, r, &req, NULL, &res, &err) == 0, "%s", err.detail);
		T_OK(res.expiration == 1893456000);
		ca_result_clear(&res);
		ca_request_clear(&req);
	}

	/* exclude_cn_from_sans, and the CN joining the SANs otherwise. */
	csr = make_csr(ec, "b.example.com", NULL, false);
	{
		struct ca_request req;

		ca_request_init(&req);
		req.kind = CA_REQ_SIGN;
		req.csr = csr;
		req.exclude_cn_from_sans = true;
		req.ttl = 3600;
		T_CHECK(ca_issue(g_ca, &tm.m, r, &req, NULL, &res, &err) == 0, "%s", err.detail);
		T_OK(san_count(res.cert, -1) == 0);
		ca_result_clear(&res);
		req.exclude_cn_from_sans = false;
		T_OK(ca_issue(g_ca, &tm.m, r, &req, NULL, &res, &err) == 0);
		T_OK(san_count(res.cert, -1) == 1 && has_dns(res.cert, "b.example.com"));
		ca_result_clear(&res);
		ca_request_clear(&req);
	}
	X509_REQ_free(csr);

	/* use_csr_sans: true takes the CSR's SANs (with a warning for the ignored JSON); false takes the request's. */
	csr = make_csr(ec, "c.example.com", "DNS:csr.example.com", false);
	T_OK(issue(&tm.m, r, CA_REQ_SIGN, csr, NULL, "json.example.com", 3600, &res, &err) == 0);
	T_OK(has_dns(res.cert, "csr.example.com") && !has_dns(res.cert, "json.example.com"));
	T_OK(res.warnings.n == 1);
	ca_result_clear(&res);
	r->use_csr_sans = false;
	T_OK(issue(&tm.m, r, CA_REQ_SIGN, csr, NULL, "json.example.com", 3600, &res, &err) == 0);
	T_OK(!has_dns(res.cert, "csr.example.com") && has_dns(res.cert, "json.example.com") &&
	     has_dns(res.cert, "c.example.com"));
	ca_result_clear(&res);
	r->use_csr_sans = true;
	/* use_csr_common_name false: the JSON CN. */
	r->use_csr_common_name = false;
	T_OK(issue(&tm.m, r, CA_REQ_SIGN, csr, "json-cn.example.com", NULL, 3600, &res, &err) == 0);
	T_OK(has_dns(res.cert, "json-cn.example.com") && !has_dns(res.cert, "c.example.com"));
	ca_result_clear(&res);
	r->use_csr_common_name = true;
	X509_REQ_free(csr);

	/* no_store: issued, not stored. */
	r->no_store = true;
	T_OK(issue(&tm.m, r, CA_REQ_ISSUE, NULL, "ns.example.com", NULL, 3600, &res, &err) == 0);
	sg_err_init(&err);
	T_OK(ca_cert_get(g_ca, &tm.m, res.serial, &rec, &err) < 0 && err.code == SG_NOT_FOUND);
	ca_result_clear(&res);
	r->no_store = false;

	/* role key_type any: issue needs the request's key_type. */
	free(r->key_type);
	r->key_type = sg_xstrdup("any");
	sg_err_init(&err);
	T_OK(issue(&tm.m, r, CA_REQ_ISSUE, NULL, "any.example.com", NULL, 3600, &res, &err) < 0 &&
	     err.code == SG_BAD_REQUEST);
	{
		struct ca_request req;

		ca_request_init(&req);
		req.kind = CA_REQ_ISSUE;
		req.common_name = "any.example.com";
		req.key_type = "ed25519";
		req.ttl = 3600;
		sg_err_init(&err);
		T_CHECK(ca_issue(g_ca, &tm.m, r, &req, NULL, &res, &err) == 0, "%s", err.detail);
		T_OK(res.key != NULL && EVP_PKEY_get_base_id(res.key) == EVP_PKEY_ED25519);
		/* Ed25519 keys sign only (RFC 8410 5). */
		T_OK(X509_get_key_usage(res.cert) == KU_DIGITAL_SIGNATURE);
		ca_result_clear(&res);
		ca_request_clear(&req);
	}
	free(r->key_type);
	r->key_type = sg_xstrdup("ec");

	ca_gen_result_clear(&root);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(rsa);
	role_free(r);
}

static void test_not_after_behavior(void)
{
	struct tmount tm;
	struct ca_gen_result root;
	struct ca_issuer_info info;
	struct ca_result res;
	struct ca_request req;
	struct sg_err err;
	struct role *r = web_role("ec", 256);

	mount_init(&tm, "pki");
	sg_err_init(&err);
	T_OK(gen_root(&tm.m, "ec", 256, "Short Root", NULL, DAY, &root, &err) == 0);
	r->max_ttl = 3 * DAY;
	ca_request_init(&req);
	req.kind = CA_REQ_ISSUE;
	req.common_name = "a.example.com";
	req.ttl = 2 * DAY;

	/* err (the default) */
	T_OK(ca_issue(g_ca, &tm.m, r, &req, NULL, &res, &err) < 0 && err.code == SG_TTL_INVALID &&
	     strncmp(err.detail, "cannot satisfy request, as TTL would result in notAfter", 55) == 0);
	/* force_truncate (ACME) turns err into truncate. */
	req.force_truncate = true;
	sg_err_init(&err);
	T_OK(ca_issue(g_ca, &tm.m, r, &req, NULL, &res, &err) == 0 && res.expiration == root.expiration);
	ca_result_clear(&res);
	req.force_truncate = false;

	T_OK(ca_issuer_get(g_ca, &tm.m, "default", &info, &err) == 0);
	info.leaf_not_after_behavior = CA_NA_TRUNCATE;
	T_OK(ca_issuer_update(g_ca, &tm.m, "default", &info, &err) == 0);
	T_OK(ca_issue(g_ca, &tm.m, r, &req, NULL, &res, &err) == 0 && res.expiration == root.expiration);
	T_OK(verify_chain(res.cert, res.chain));
	ca_result_clear(&res);
	info.leaf_not_after_behavior = CA_NA_PERMIT;
	T_OK(ca_issuer_update(g_ca, &tm.m, "default", &info, &err) == 0);
	T_CHECK(ca_issue(g_ca, &tm.m, r, &req, NULL, &res, &err) == 0, "%s", err.detail);
	T_OK(res.expiration > root.expiration);
	ca_result_clear(&res);
	ca_issuer_info_clear(&info);

	/* An expired issuer always refuses, whatever its behaviour. */
	sg_clock_advance(2 * DAY);
	req.ttl = 60;
	sg_err_init(&err);
	T_OK(ca_issue(g_ca, &tm.m, r, &req, NULL, &res, &err) < 0 && err.code == SG_TTL_INVALID);
	sg_clock_advance(-2 * DAY);

	ca_request_clear(&req);
	ca_gen_result_clear(&root);
	role_free(r);
}

static void test_sign_verbatim(void)
{
	struct tmount tm;
	struct ca_gen_result root;
	struct ca_result res;
	struct ca_request req;
	struct sg_err err;
	EVP_PKEY *k = keygen("rsa", 2048);
	X509_REQ *csr = make_csr(k, "Not A Hostname", "DNS:foo.internal,IP:10.1.2.3", false);
	X509_REQ *cacsr = make_csr(k, "Sneaky CA", NULL, true);
	struct role *r = role_new("verb");

	mount_init(&tm, "pki");
	sg_err_init(&err);
	T_OK(gen_root(&tm.m, "rsa", 2048, "Root CA", NULL, 5 * YEAR, &root, &err) == 0);
	ca_request_init(&req);
	req.kind = CA_REQ_SIGN_VERBATIM;
	req.csr = csr;
	req.ttl = 3600;
	T_CHECK(ca_issue(g_ca, &tm.m, NULL, &req, NULL, &res, &err) == 0, "%s", err.detail);
	T_OK(X509_NAME_cmp(X509_get_subject_name(res.cert), X509_REQ_get_subject_name(csr)) == 0);
	T_OK(has_dns(res.cert, "foo.internal") && san_count(res.cert, GEN_IPADD) == 1);
	/* Default usages for an RSA key: digitalSignature and keyEncipherment (keyAgreement is not RSA's). */
	T_OK(X509_get_key_usage(res.cert) == (KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT));
	T_OK(verify_chain(res.cert, res.chain));
	ca_result_clear(&res);
	/* Request usages replace the defaults. */
	sg_strlist_add(&req.key_usage, "DigitalSignature");
	sg_strlist_add(&req.ext_key_usage, "ClientAuth");
	T_OK(ca_issue(g_ca, &tm.m, NULL, &req, NULL, &res, &err) == 0);
	T_OK(X509_get_key_usage(res.cert) == KU_DIGITAL_SIGNATURE);
	T_OK(X509_get_extended_key_usage(res.cert) == XKU_SSL_CLIENT);
	ca_result_clear(&res);
	/* With a role: its no_store and ttl bounds apply. */
	r->no_store = true;
	r->max_ttl = 600;
	T_OK(ca_issue(g_ca, &tm.m, r, &req, NULL, &res, &err) == 0 && res.warnings.n == 1);
	{
		struct ca_cert_record rec;

		sg_err_init(&err);
		T_OK(ca_cert_get(g_ca, &tm.m, res.serial, &rec, &err) < 0 && err.code == SG_NOT_FOUND);
	}
	ca_result_clear(&res);
	/* A CA:true CSR is refused. */
	req.csr = cacsr;
	sg_err_init(&err);
	T_OK(ca_issue(g_ca, &tm.m, NULL, &req, NULL, &res, &err) < 0 && err.code == SG_BAD_REQUEST);
	ca_request_clear(&req);
	X509_REQ_free(csr);
	X509_REQ_free(cacsr);
	EVP_PKEY_free(k);
	ca_gen_result_clear(&root);
	role_free(r);
}

static void test_serials(void)
{
	struct tmount tm;
	struct ca_gen_result root;
	struct sg_err err;
	struct role *r = web_role("ec", 256);
	EVP_PKEY *k = keygen("ec", 256);
	X509_REQ *csr = make_csr(k, "s.example.com", NULL, false);
	struct sg_strlist seen = {0}, listed = {0};
	struct ca_serial s, p;
	const int n = 64;

	mount_init(&tm, "pki");
	sg_err_init(&err);
	T_OK(gen_root(&tm.m, "ec", 256, "Root CA", NULL, YEAR, &root, &err) == 0);
	for (int i = 0; i < n; i++) {
		struct ca_result res;
		BIGNUM *bn;

		if (issue(&tm.m, r, CA_REQ_SIGN, csr, NULL, NULL, 3600, &res, &err) != 0) {
			T_CHECK(0, "%s", err.detail);
			break;
		}
		bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(res.cert), NULL);
		T_OK(!BN_is_negative(bn) && !BN_is_zero(bn) && BN_num_bits(bn) <= 159);
		T_OK(X509_get0_serialNumber(res.cert)->length <= CA_MAX_SERIAL_BYTES);
		BN_free(bn);
		T_OK(!sg_strlist_has(&seen, res.serial));
		T_OK(strlen(res.serial) <= 3 * CA_MAX_SERIAL_BYTES - 1 && strchr(res.serial, '-') == NULL);
		sg_strlist_add(&seen, res.serial);
		ca_result_clear(&res);
	}
	/* Listing: every issued serial plus the root, in colon form; paging with after/limit. */
	T_OK(ca_cert_list(g_ca, &tm.m, false, NULL, 0, &listed, &err) == 0 && listed.n == (size_t)n + 1);
	for (size_t i = 0; i < seen.n; i++)
		T_OK(sg_strlist_has(&listed, seen.v[i]));
	{
		struct sg_strlist page = {0};

		T_OK(ca_cert_list(g_ca, &tm.m, false, listed.v[0], 5, &page, &err) == 0 && page.n == 5);
		T_OK(page.n == 5 && strcmp(page.v[0], listed.v[1]) == 0);
		sg_strlist_clear(&page);
	}
	/* Serial text forms: colon, hyphen, bare and sign-padded hex are one serial. */
	T_OK(ca_serial_parse("00:3a:0f", &s, &err) == 0 && ca_serial_parse("3A-0F", &p, &err) == 0);
	T_STREQ(s.colon, "3a:0f");
	T_STREQ(p.hyphen, "3a-0f");
	T_OK(ca_serial_parse("3a0f", &p, &err) == 0 && strcmp(p.colon, s.colon) == 0);
	sg_err_init(&err);
	T_OK(ca_serial_parse("zz", &p, &err) < 0 && err.code == SG_BAD_REQUEST);
	sg_err_init(&err);
	T_OK(ca_serial_parse("00", &p, &err) < 0);
	/* The store refuses a second record for one serial (the put_new that makes serials unique). */
	{
		struct ca_cert_record rec;
		struct store_batch *b = store_batch_new();
		struct ca_serial taken;

		T_OK(ca_serial_parse(seen.v[0], &taken, &err) == 0);
		T_OK(ca_cert_get(g_ca, &tm.m, seen.v[0], &rec, &err) == 0);
		ca_cert_rec_stage(b, tm.id, &taken, &rec);
		sg_err_init(&err);
		T_OK(store_commit(g_st, b, &err) < 0 && err.code == SG_CONFLICT);
		store_batch_free(b);
		ca_cert_record_clear(&rec);
	}
	sg_strlist_clear(&seen);
	sg_strlist_clear(&listed);
	X509_REQ_free(csr);
	EVP_PKEY_free(k);
	ca_gen_result_clear(&root);
	role_free(r);
}

static void test_keys_at_rest(void)
{
	struct tmount tm;
	struct ca_gen_result root;
	struct ca_issuer_info info;
	struct ca_key_info *keys = NULL;
	struct ca_key_rec rec;
	struct ca *other = NULL;
	struct sg_err err;
	unsigned char wrong[CA_KEK_BYTES], *raw = NULL, *der = NULL;
	char key[CA_MAX_STORE_KEY];
	size_t rawlen = 0, nkeys = 0;
	EVP_PKEY *priv;
	BIO *b;
	int derlen;

	mount_init(&tm, "pki");
	sg_err_init(&err);
	T_OK(gen_root(&tm.m, "ec", 256, "Root CA", NULL, YEAR, &root, &err) == 0);
	T_OK(ca_key_list(g_ca, &tm.m, &keys, &nkeys, &err) == 0 && nkeys == 1);
	if (nkeys == 1) {
		T_STREQ(keys[0].id, root.key_id);
		T_STREQ(keys[0].type, "ec");
	}
	for (size_t i = 0; i < nkeys; i++)
		ca_key_info_clear(&keys[i]);
	free(keys);

	/* The raw record holds neither the PKCS#8 nor the SEC1 DER, nor any PEM. */
	ca_skey(key, sizeof(key), tm.id, root.key_id);
	T_OK(store_get(g_st, STORE_KEYS, key, strlen(key), &raw, &rawlen, &err) == 1);
	b = BIO_new_mem_buf(root.private_key_pem, -1);
	priv = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	derlen = i2d_PrivateKey(priv, &der);
	T_OK(derlen > 0 && memmem(raw, rawlen, der, (size_t)derlen) == NULL);
	T_OK(memmem(raw, rawlen, "PRIVATE KEY", 11) == NULL);
	OPENSSL_free(der);
	der = NULL;
	{
		/* Nor the raw private scalar. */
		BIGNUM *d = NULL;
		unsigned char scalar[64];
		int sl;

		EVP_PKEY_get_bn_param(priv, "priv", &d);
		sl = BN_bn2bin(d, scalar);
		T_OK(sl > 16 && memmem(raw, rawlen, scalar, (size_t)sl) == NULL);
		BN_clear_free(d);
	}

	/* The record opens with the right KEK only, and only under its own mount/id (AAD). */
	T_OK(ca_key_rec_decode(raw, rawlen, &rec, &err) == 0);
	{
		EVP_PKEY *k = ca_key_rec_open(g_ca, tm.id, &rec, &err);

		T_OK(k != NULL && EVP_PKEY_eq(k, priv) == 1);
		EVP_PKEY_free(k);
		sg_err_init(&err);
		T_OK(ca_key_rec_open(g_ca, "another-mount", &rec, &err) == NULL && err.code == SG_CRYPTO);
	}
	memcpy(wrong, g_kek, sizeof(wrong));
	wrong[0] ^= 1;
	T_OK(ca_new(g_st, wrong, &other, &err) == 0);
	sg_err_init(&err);
	T_OK(ca_key_rec_open(other, tm.id, &rec, &err) == NULL && err.code == SG_CRYPTO);
	T_OK(strstr(err.detail, "unable to decrypt key") != NULL && err.log[0] == '\0');
	/* A CA with the wrong KEK fails cleanly on the mount instead of signing with garbage. */
	sg_err_init(&err);
	T_OK(ca_issuer_get(other, &tm.m, "default", &info, &err) < 0 && err.code == SG_CRYPTO);
	ca_free(other);
	ca_key_rec_clear(&rec);
	EVP_PKEY_free(priv);
	free(raw);
	ca_gen_result_clear(&root);
}

static atomic_int hook_calls;
static char hook_serial[CA_SERIAL_HEX_MAX];

static void count_hook(void *arg, const char *mount_id, const char *serial, const char *issuer_id)
{
	(void)arg;
	(void)mount_id;
	(void)issuer_id;
	atomic_fetch_add(&hook_calls, 1);
	snprintf(hook_serial, sizeof(hook_serial), "%s", serial);
}

struct scan_count {
	int n, key_compromise;
};

static int scan_cb(void *arg, const struct ca_revoked_entry *e, struct sg_err *err)
{
	struct scan_count *c = arg;

	(void)err;
	c->n++;
	if (e->reason == CA_REASON_KEY_COMPROMISE)
		c->key_compromise++;
	return 0;
}

static void test_revoke(void)
{
	struct tmount tm, foreign;
	struct ca_gen_result root, froot;
	struct ca_result a, c, d, e, f;
	struct ca_revoke_result rv;
	struct ca_cert_record rec;
	struct sg_strlist revoked = {0};
	struct sg_err err;
	struct role *r = web_role("ec", 256), *rns = web_role("ec", 256);
	enum ca_reason reason;
	char *pem = NULL;
	EVP_PKEY *otherkey;
	int64_t t0;

	ca_set_revoke_hook(g_ca, count_hook, NULL);
	atomic_store(&hook_calls, 0);
	rns->no_store = true;
	mount_init(&tm, "pki");
	mount_init(&foreign, "other");
	sg_err_init(&err);
	T_OK(gen_root(&tm.m, "ec", 256, "Root CA", NULL, YEAR, &root, &err) == 0);
	T_OK(gen_root(&foreign.m, "ec", 256, "Root CA", NULL, YEAR, &froot, &err) == 0);
	T_OK(issue(&tm.m, r, CA_REQ_ISSUE, NULL, "a.example.com", NULL, 3600, &a, &err) == 0);
	T_OK(issue(&tm.m, rns, CA_REQ_ISSUE, NULL, "c.example.com", NULL, 3600, &c, &err) == 0);
	T_OK(issue(&tm.m, r, CA_REQ_ISSUE, NULL, "d.example.com", NULL, 3600, &d, &err) == 0);
	T_OK(issue(&tm.m, r, CA_REQ_ISSUE, NULL, "e.example.com", NULL, 3600, &e, &err) == 0);
	T_OK(issue(&foreign.m, r, CA_REQ_ISSUE, NULL, "f.example.com", NULL, 3600, &f, &err) == 0);

	/* By serial (hyphen form accepted). */
	{
		char *hy = sg_xstrdup(a.serial);

		for (char *q = hy; *q; q++)
			if (*q == ':')
				*q = '-';
		T_CHECK(ca_revoke(g_ca, &tm.m, hy, NULL, CA_REASON_KEY_COMPROMISE, 0, &rv, &err) == 0, "%s", err.detail);
		free(hy);
	}
	T_OK(!rv.already && rv.revocation_time > 0);
	T_STREQ(rv.serial, a.serial);
	T_OK(atomic_load(&hook_calls) == 1);
	T_STREQ(hook_serial, a.serial);
	t0 = rv.revocation_time;
	ca_revoke_result_clear(&rv);
	T_OK(ca_cert_get(g_ca, &tm.m, a.serial, &rec, &err) == 0 && rec.revoked && rec.revocation_time == t0 &&
	     rec.reason == CA_REASON_KEY_COMPROMISE);
	ca_cert_record_clear(&rec);
	/* Twice: the first time and reason stay; no second hook. */
	sg_clock_advance(5);
	T_OK(ca_revoke(g_ca, &tm.m, a.serial, NULL, CA_REASON_SUPERSEDED, 0, &rv, &err) == 0);
	T_OK(rv.already && rv.revocation_time == t0);
	ca_revoke_result_clear(&rv);
	sg_clock_advance(-5);
	T_OK(atomic_load(&hook_calls) == 1);

	/* BYOC: a no_store certificate by PEM. */
	T_CHECK(ca_revoke(g_ca, &tm.m, NULL, c.cert, CA_REASON_UNSPECIFIED, 0, &rv, &err) == 0, "%s", err.detail);
	T_OK(!rv.already);
	ca_revoke_result_clear(&rv);
	T_OK(atomic_load(&hook_calls) == 2);
	T_OK(ca_cert_get(g_ca, &tm.m, c.serial, &rec, &err) == 0 && rec.revoked);
	ca_cert_record_clear(&rec);
	/* A certificate of another mount's issuer is refused. */
	sg_err_init(&err);
	T_OK(ca_revoke(g_ca, &tm.m, NULL, f.cert, CA_REASON_UNSPECIFIED, 0, &rv, &err) < 0 && err.code == SG_BAD_REQUEST);
	/* Issuer certificates are refused, by serial and by PEM. */
	sg_err_init(&err);
	T_OK(ca_revoke(g_ca, &tm.m, root.serial, NULL, CA_REASON_UNSPECIFIED, 0, &rv, &err) < 0 &&
	     err.code == SG_BAD_REQUEST);
	sg_err_init(&err);
	T_OK(ca_revoke(g_ca, &tm.m, NULL, root.cert, CA_REASON_UNSPECIFIED, 0, &rv, &err) < 0 &&
	     err.code == SG_BAD_REQUEST);
	/* Unknown serial, and neither serial nor certificate. */
	sg_err_init(&err);
	T_OK(ca_revoke(g_ca, &tm.m, "01:02:03", NULL, CA_REASON_UNSPECIFIED, 0, &rv, &err) < 0 && err.code == SG_NOT_FOUND);
	sg_err_init(&err);
	T_OK(ca_revoke(g_ca, &tm.m, NULL, NULL, CA_REASON_UNSPECIFIED, 0, &rv, &err) < 0 && err.code == SG_BAD_REQUEST);
	/* Expired. */
	sg_clock_advance(7200);
	sg_err_init(&err);
	T_OK(ca_revoke(g_ca, &tm.m, d.serial, NULL, CA_REASON_UNSPECIFIED, 0, &rv, &err) < 0 &&
	     err.code == SG_BAD_REQUEST && strcmp(err.detail, "certificate already expired") == 0);
	sg_clock_advance(-7200);
	T_OK(atomic_load(&hook_calls) == 2);

	/* revoke-with-key: the wrong key is refused without echoing it, the right one revokes. */
	otherkey = keygen("ec", 256);
	pem = ca_key_to_pem(otherkey, true, &err);
	sg_err_init(&err);
	T_OK(ca_revoke_with_key(g_ca, &tm.m, e.serial, NULL, pem, &rv, &err) < 0 && err.code == SG_BAD_REQUEST &&
	     strstr(err.detail, "BEGIN") == NULL && strstr(err.detail, pem + 28) == NULL);
	free(pem);
	sg_err_init(&err);
	T_OK(ca_revoke_with_key(g_ca, &tm.m, e.serial, NULL, "not a key", &rv, &err) < 0 && err.code == SG_BAD_REQUEST);
	pem = ca_key_to_pem(e.key, false, &err);
	sg_err_init(&err);
	T_CHECK(ca_revoke_with_key(g_ca, &tm.m, e.serial, NULL, pem, &rv, &err) == 0, "%s", err.detail);
	T_OK(!rv.already);
	ca_revoke_result_clear(&rv);
	free(pem);
	T_OK(atomic_load(&hook_calls) == 3);

	/* Listing and scanning revocations. */
	T_OK(ca_cert_list(g_ca, &tm.m, true, NULL, 0, &revoked, &err) == 0 && revoked.n == 3);
	T_OK(sg_strlist_has(&revoked, a.serial) && sg_strlist_has(&revoked, c.serial) && sg_strlist_has(&revoked, e.serial));
	sg_strlist_clear(&revoked);
	{
		struct scan_count sc = {0, 0};

		T_OK(ca_revoked_scan(g_ca, &tm.m, scan_cb, &sc, &err) == 0 && sc.n == 3 && sc.key_compromise == 1);
	}

	/* Reasons. */
	T_OK(ca_reason_parse("keyCompromise", &reason, &err) == 0 && reason == CA_REASON_KEY_COMPROMISE);
	T_OK(ca_reason_parse("key_compromise", &reason, &err) == 0 && reason == CA_REASON_KEY_COMPROMISE);
	T_OK(ca_reason_parse("CACompromise", &reason, &err) == 0 && reason == CA_REASON_CA_COMPROMISE);
	T_OK(ca_reason_parse("6", &reason, &err) == 0 && reason == CA_REASON_CERTIFICATE_HOLD);
	sg_err_init(&err);
	T_OK(ca_reason_parse("7", &reason, &err) < 0 && err.code == SG_BAD_REQUEST);
	sg_err_init(&err);
	T_OK(ca_reason_parse("bogus", &reason, &err) < 0 && err.code == SG_BAD_REQUEST);
	T_STREQ(ca_reason_name(CA_REASON_SUPERSEDED), "superseded");

	ca_set_revoke_hook(g_ca, NULL, NULL);
	EVP_PKEY_free(otherkey);
	ca_result_clear(&a);
	ca_result_clear(&c);
	ca_result_clear(&d);
	ca_result_clear(&e);
	ca_result_clear(&f);
	ca_gen_result_clear(&root);
	ca_gen_result_clear(&froot);
	role_free(r);
	role_free(rns);
}

static void test_issuer_management(void)
{
	struct tmount tm;
	struct ca_gen_result r1, r2;
	struct ca_issuer_info info, *list = NULL;
	struct ca_issuers_config cfg;
	struct ca_result res;
	struct sg_err err;
	struct role *r = web_role("ec", 256);
	size_t n = 0;

	mount_init(&tm, "pki");
	sg_err_init(&err);
	T_OK(gen_root(&tm.m, "ec", 256, "Root One", "one", YEAR, &r1, &err) == 0);
	T_OK(gen_root(&tm.m, "ec", 256, "Root Two", "two", YEAR, &r2, &err) == 0);
	/* Names are unique. */
	sg_err_init(&err);
	{
		struct ca_gen_result r3;

		T_OK(gen_root(&tm.m, "ec", 256, "Root Three", "one", YEAR, &r3, &err) < 0 && err.code == SG_BAD_REQUEST);
	}
	T_OK(ca_issuer_list(g_ca, &tm.m, &list, &n, &err) == 0 && n == 2);
	for (size_t i = 0; i < n; i++)
		ca_issuer_info_clear(&list[i]);
	free(list);
	/* The first root stays the default. */
	T_OK(ca_issuers_config_get(g_ca, &tm.m, &cfg, &err) == 0);
	T_STREQ(cfg.default_id, r1.issuer_id);
	T_OK(ca_issuer_set_default(g_ca, &tm.m, "two", &err) == 0);
	T_OK(ca_issuers_config_get(g_ca, &tm.m, &cfg, &err) == 0);
	T_STREQ(cfg.default_id, r2.issuer_id);

	/* A key in use cannot be deleted. */
	sg_err_init(&err);
	T_OK(ca_key_delete(g_ca, &tm.m, r2.key_id, &err) < 0 && err.code == SG_BAD_REQUEST);

	/* Usage without issuing-certificates stops issuance. */
	T_OK(ca_issuer_get(g_ca, &tm.m, "two", &info, &err) == 0);
	sg_strlist_clear(&info.usage);
	sg_strlist_add(&info.usage, "crl-signing");
	free(info.name);
	info.name = sg_xstrdup("renamed");
	T_OK(ca_issuer_update(g_ca, &tm.m, "two", &info, &err) == 0);
	ca_issuer_info_clear(&info);
	sg_err_init(&err);
	T_OK(issue(&tm.m, r, CA_REQ_ISSUE, NULL, "a.example.com", NULL, 60, &res, &err) < 0 && err.code == SG_BAD_REQUEST);
	T_OK(ca_issuer_get(g_ca, &tm.m, "renamed", &info, &err) == 0);
	ca_issuer_info_clear(&info);
	sg_err_init(&err);
	T_OK(ca_issuer_get(g_ca, &tm.m, "two", &info, &err) < 0 && err.code == SG_UNKNOWN_ISSUER);
	sg_err_init(&err);
	T_OK(ca_issuer_update(g_ca, &tm.m, "renamed", &(struct ca_issuer_info){.name = (char *)"one"}, &err) < 0 &&
	     err.code == SG_BAD_REQUEST);

	/* Deleting the default issuer clears the default; its key can then go. */
	T_OK(ca_issuer_delete(g_ca, &tm.m, "renamed", &err) == 0);
	T_OK(ca_issuers_config_get(g_ca, &tm.m, &cfg, &err) == 0 && cfg.default_id[0] == '\0');
	sg_err_init(&err);
	T_OK(ca_issuer_get(g_ca, &tm.m, "default", &info, &err) < 0 && err.code == SG_UNKNOWN_ISSUER);
	T_CHECK(ca_key_delete(g_ca, &tm.m, r2.key_id, &err) == 0, "%s", err.detail);
	/* An explicit issuer_ref still works without a default. */
	{
		struct ca_request req;

		ca_request_init(&req);
		req.kind = CA_REQ_ISSUE;
		req.issuer_ref = "one";
		req.common_name = "a.example.com";
		req.ttl = 60;
		T_OK(ca_issue(g_ca, &tm.m, r, &req, NULL, &res, &err) == 0);
		T_STREQ(res.issuer_id, r1.issuer_id);
		ca_result_clear(&res);
		ca_request_clear(&req);
	}
	/* Issuer revocation: it stops issuing, its serial becomes revoked. */
	T_OK(ca_issuer_revoke(g_ca, &tm.m, "one", &info, &err) == 0 && info.revoked && info.revocation_time > 0);
	ca_issuer_info_clear(&info);
	{
		struct ca_cert_record rec;

		T_OK(ca_cert_get(g_ca, &tm.m, r1.serial, &rec, &err) == 0 && rec.revoked);
		ca_cert_record_clear(&rec);
	}
	{
		struct ca_request req;

		ca_request_init(&req);
		req.kind = CA_REQ_ISSUE;
		req.issuer_ref = "one";
		req.common_name = "a.example.com";
		req.ttl = 60;
		sg_err_init(&err);
		T_OK(ca_issue(g_ca, &tm.m, r, &req, NULL, &res, &err) < 0 && err.code == SG_BAD_REQUEST);
		ca_request_clear(&req);
	}
	/* DELETE root: no issuer, no key. */
	T_OK(ca_issuers_delete_all(g_ca, &tm.m, &err) == 0);
	T_OK(ca_issuer_list(g_ca, &tm.m, &list, &n, &err) == 0 && n == 0);
	free(list);
	{
		struct ca_key_info *keys = NULL;

		T_OK(ca_key_list(g_ca, &tm.m, &keys, &n, &err) == 0 && n == 0);
		free(keys);
	}
	ca_gen_result_clear(&r1);
	ca_gen_result_clear(&r2);
	role_free(r);
}

static void test_keys_api(void)
{
	struct tmount tm;
	struct ca_keyspec ks = {CA_KEY_EC, 384};
	struct ca_key_info ki, ki2;
	struct ca_ca_params p;
	struct ca_gen_result g;
	struct sg_err err;
	char *pem = NULL, def[37];
	bool existed;

	mount_init(&tm, "pki");
	sg_err_init(&err);
	T_OK(ca_key_create(g_ca, &tm.m, &ks, "k1", false, &ki, &pem, &err) == 0 && pem != NULL);
	T_OK(ki.bits == 384 && strcmp(ki.name, "k1") == 0);
	T_OK(ca_keys_default_get(g_ca, &tm.m, def, &err) == 0);
	T_STREQ(def, ki.id);
	/* Importing the same key again finds it. */
	T_OK(ca_key_import(g_ca, &tm.m, pem, strlen(pem), "again", &ki2, &existed, &err) == 0 && existed);
	T_STREQ(ki2.id, ki.id);
	ca_key_info_clear(&ki2);
	OPENSSL_cleanse(pem, strlen(pem));
	free(pem);
	/* Names are unique. */
	sg_err_init(&err);
	T_OK(ca_key_create(g_ca, &tm.m, &ks, "k1", false, &ki2, NULL, &err) < 0 && err.code == SG_BAD_REQUEST);
	T_OK(ca_key_rename(g_ca, &tm.m, "k1", "k2", &err) == 0);
	T_OK(ca_key_get(g_ca, &tm.m, "k2", &ki2, &err) == 0 && strcmp(ki2.id, ki.id) == 0);
	ca_key_info_clear(&ki2);
	/* A root on the existing key (generate/root/existing). */
	ca_ca_params_init(&p);
	p.common_name = "Existing Key Root";
	p.key_ref = "k2";
	p.ttl = YEAR;
	T_CHECK(ca_root_generate(g_ca, &tm.m, &p, &g, &err) == 0, "%s", err.detail);
	T_STREQ(g.key_id, ki.id);
	ca_gen_result_clear(&g);
	ca_ca_params_clear(&p);
	/* A key imported after a keyless issuer links to it. */
	{
		struct tmount m2;
		struct ca_gen_result root;
		struct ca_import_result imp;
		struct ca_issuer_info info;
		char *cert;
		bool ex;
		struct ca_key_info k3;

		mount_init(&m2, "pki2");
		T_OK(gen_root(&tm.m, "ec", 256, "Movable Root", NULL, YEAR, &root, &err) == 0);
		cert = pem_of(root.cert);
		T_OK(ca_import_pem(g_ca, &m2.m, cert, strlen(cert), true, &imp, &err) == 0 && imp.imported_issuers.n == 1);
		T_STREQ(imp.mapping_keys.v[0], "");
		ca_import_result_clear(&imp);
		T_OK(ca_issuer_signer_get(g_ca, &m2.m, "default", &(struct ca_signer *){NULL}, NULL, &err) < 0 &&
		     err.code == SG_BAD_REQUEST);
		sg_err_init(&err);
		T_OK(ca_key_import(g_ca, &m2.m, root.private_key_pem, strlen(root.private_key_pem), NULL, &k3, &ex, &err) ==
		     0);
		T_OK(!ex);
		T_OK(ca_issuer_get(g_ca, &m2.m, "default", &info, &err) == 0);
		T_STREQ(info.key_id, k3.id);
		ca_issuer_info_clear(&info);
		ca_key_info_clear(&k3);
		free(cert);
		ca_gen_result_clear(&root);
	}
	ca_key_info_clear(&ki);
}

static void test_urls_and_signer(void)
{
	struct tmount tm;
	struct ca_gen_result root;
	struct ca_urls u = {0};
	struct ca_cluster cl = {0};
	struct ca_result res;
	struct ca_signer *sg = NULL;
	struct ca_issuer_info info;
	struct sg_err err;
	struct role *r = web_role("rsa", 2048);
	AUTHORITY_INFO_ACCESS *aia;
	CRL_DIST_POINTS *dps;
	X509_CRL *crl;
	char want[200];

	mount_init(&tm, "pki");
	sg_err_init(&err);
	T_OK(gen_root(&tm.m, "rsa", 2048, "Root CA", NULL, YEAR, &root, &err) == 0);
	sg_strlist_add(&u.ocsp_servers, "http://ocsp.example.com");
	sg_strlist_add(&u.crl_distribution_points, "{{cluster_path}}/issuer/{{issuer_id}}/crl/der");
	sg_strlist_add(&u.issuing_certificates, "http://pki.example.com/v1/pki/ca");
	u.enable_templating = true;
	T_OK(ca_urls_set(g_ca, &tm.m, &u, &err) == 0);
	/* Templating without config/cluster cannot issue. */
	sg_err_init(&err);
	T_OK(issue(&tm.m, r, CA_REQ_ISSUE, NULL, "a.example.com", NULL, 60, &res, &err) < 0 && err.code == SG_BAD_REQUEST);
	cl.path = sg_xstrdup("https://pki.example.com/v1/pki");
	T_OK(ca_cluster_set(g_ca, &tm.m, &cl, &err) == 0);
	ca_cluster_clear(&cl);
	/* RSA-PSS under use_pss. */
	r->use_pss = true;
	T_CHECK(issue(&tm.m, r, CA_REQ_ISSUE, NULL, "a.example.com", NULL, 60, &res, &err) == 0, "%s", err.detail);
	T_OK(X509_get_signature_nid(res.cert) == NID_rsassaPss);
	T_OK(verify_chain(res.cert, res.chain));
	aia = X509_get_ext_d2i(res.cert, NID_info_access, NULL, NULL);
	T_OK(sk_ACCESS_DESCRIPTION_num(aia) == 2);
	AUTHORITY_INFO_ACCESS_free(aia);
	dps = X509_get_ext_d2i(res.cert, NID_crl_distribution_points, NULL, NULL);
	T_OK(sk_DIST_POINT_num(dps) == 1);
	snprintf(want, sizeof(want), "https://pki.example.com/v1/pki/issuer/%s/crl/der", root.issuer_id);
	if (sk_DIST_POINT_num(dps) == 1) {
		GENERAL_NAME *gn = sk_GENERAL_NAME_value(sk_DIST_POINT_value(dps, 0)->distpoint->name.fullname, 0);

		T_STREQ((const char *)ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier), want);
	}
	CRL_DIST_POINTS_free(dps);
	ca_result_clear(&res);
	ca_urls_clear(&u);
	T_OK(ca_urls_get(g_ca, &tm.m, &u, &err) == 0 && u.ocsp_servers.n == 1 && u.enable_templating);
	ca_urls_clear(&u);
	/* Bad URLs are refused. */
	sg_strlist_add(&u.ocsp_servers, "not a url");
	sg_err_init(&err);
	T_OK(ca_urls_set(g_ca, &tm.m, &u, &err) < 0 && err.code == SG_BAD_REQUEST);
	ca_urls_clear(&u);

	/* The signer signs a CRL for the CRL module. */
	T_OK(ca_issuer_signer_get(g_ca, &tm.m, "default", &sg, &info, &err) == 0);
	crl = X509_CRL_new();
	X509_CRL_set_version(crl, X509_CRL_VERSION_2);
	X509_CRL_set_issuer_name(crl, X509_get_subject_name(info.cert));
	{
		ASN1_TIME *t = ASN1_TIME_set(NULL, (time_t)sg_now());

		X509_CRL_set1_lastUpdate(crl, t);
		ASN1_TIME_free(t);
	}
	T_OK(ca_signer_sign_crl(sg, crl, NULL, &err) == 0);
	T_OK(X509_CRL_verify(crl, X509_get0_pubkey(info.cert)) == 1);
	T_OK(EVP_PKEY_eq(ca_signer_get0_pubkey(sg), X509_get0_pubkey(info.cert)) == 1);
	X509_CRL_free(crl);
	ca_signer_release(sg);
	ca_issuer_info_clear(&info);
	ca_gen_result_clear(&root);
	role_free(r);
}

static int lease_hook(void *arg, const struct ca_result *res, struct store_batch *b, struct sg_err *err)
{
	char key[128];

	if (arg != NULL)
		return sg_err_set(err, SG_CONFLICT, "refused by the caller");
	snprintf(key, sizeof(key), "lease/%s", res->serial);
	store_batch_put(b, STORE_INDEX, key, strlen(key), "x", 1);
	return 0;
}

static void test_commit_with_caller_ops(void)
{
	struct tmount tm;
	struct ca_gen_result root;
	struct ca_request req;
	struct ca_result res;
	struct ca_cert_record rec;
	struct store_batch *extra;
	struct sg_err err;
	struct role *r = web_role("ec", 256);
	char key[128];
	uint64_t c0, c1, b0, b1;

	mount_init(&tm, "pki");
	sg_err_init(&err);
	T_OK(gen_root(&tm.m, "ec", 256, "Root CA", NULL, YEAR, &root, &err) == 0);
	ca_request_init(&req);
	req.kind = CA_REQ_ISSUE;
	req.common_name = "a.example.com";
	req.ttl = 60;
	req.owner = "accessor-1";

	/* extra: the caller's ops land in the same single commit. */
	extra = store_batch_new();
	store_batch_put(extra, STORE_INDEX, "extra-op", 8, "y", 1);
	store_stats(g_st, &c0, &b0);
	T_OK(ca_issue(g_ca, &tm.m, r, &req, extra, &res, &err) == 0);
	store_stats(g_st, &c1, &b1);
	T_OK(b1 == b0 + 1);
	T_OK(store_get(g_st, STORE_INDEX, "extra-op", 8, NULL, NULL, &err) == 1);
	T_OK(ca_cert_get(g_ca, &tm.m, res.serial, &rec, &err) == 0);
	T_STREQ(rec.owner, "accessor-1");
	ca_cert_record_clear(&rec);
	store_batch_free(extra);
	ca_result_clear(&res);

	/* ca_issue_ex: the hook sees the serial and adds its record to the same commit. */
	T_OK(ca_issue_ex(g_ca, &tm.m, r, &req, lease_hook, NULL, &res, &err) == 0);
	snprintf(key, sizeof(key), "lease/%s", res.serial);
	T_OK(store_get(g_st, STORE_INDEX, key, strlen(key), NULL, NULL, &err) == 1);
	ca_result_clear(&res);
	/* A failing hook: nothing is stored, nothing returned. */
	{
		struct sg_strlist all = {0};
		size_t before;

		T_OK(ca_cert_list(g_ca, &tm.m, false, NULL, 0, &all, &err) == 0);
		before = all.n;
		sg_strlist_clear(&all);
		sg_err_init(&err);
		T_OK(ca_issue_ex(g_ca, &tm.m, r, &req, lease_hook, (void *)1, &res, &err) < 0 && err.code == SG_CONFLICT);
		T_OK(res.cert == NULL && res.serial == NULL);
		T_OK(ca_cert_list(g_ca, &tm.m, false, NULL, 0, &all, &err) == 0 && all.n == before);
		sg_strlist_clear(&all);
	}
	ca_request_clear(&req);
	ca_gen_result_clear(&root);
	role_free(r);
}

struct thr {
	const struct ca_mount *m;
	const struct role *r;
	X509_REQ *csr;
	struct sg_strlist serials;
	int failures;
};

static void *thr_main(void *arg)
{
	struct thr *t = arg;

	for (int i = 0; i < 40; i++) {
		struct ca_result res;
		struct sg_err err;

		sg_err_init(&err);
		if (issue(t->m, t->r, CA_REQ_SIGN, t->csr, NULL, NULL, 600, &res, &err) != 0) {
			t->failures++;
			continue;
		}
		sg_strlist_add(&t->serials, res.serial);
		ca_result_clear(&res);
	}
	return NULL;
}

static void test_concurrent_issue(void)
{
	struct tmount tm;
	struct ca_gen_result root;
	struct sg_err err;
	struct role *r = web_role("ec", 256);
	EVP_PKEY *k = keygen("ec", 256);
	X509_REQ *csr = make_csr(k, "t.example.com", NULL, false);
	struct thr t[4];
	pthread_t th[4];
	struct sg_strlist all = {0};
	int failures = 0;

	mount_init(&tm, "pki");
	sg_err_init(&err);
	T_OK(gen_root(&tm.m, "ec", 256, "Root CA", NULL, YEAR, &root, &err) == 0);
	for (int i = 0; i < 4; i++) {
		t[i] = (struct thr){&tm.m, r, csr, {0}, 0};
		pthread_create(&th[i], NULL, thr_main, &t[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		failures += t[i].failures;
		for (size_t j = 0; j < t[i].serials.n; j++) {
			T_OK(!sg_strlist_has(&all, t[i].serials.v[j]));
			sg_strlist_add(&all, t[i].serials.v[j]);
		}
		sg_strlist_clear(&t[i].serials);
	}
	T_OK(failures == 0 && all.n == 160);
	sg_strlist_clear(&all);
	X509_REQ_free(csr);
	EVP_PKEY_free(k);
	ca_gen_result_clear(&root);
	role_free(r);
}

static void test_persistence_and_purge(void)
{
	struct tmount tm;
	struct ca_gen_result root;
	struct ca_result res, res2;
	struct ca_revoke_result rv;
	struct ca_cert_record rec;
	struct ca_issuer_info info;
	struct sg_err err;
	struct role *r = web_role("ec", 256);

	mount_init(&tm, "pki");
	sg_err_init(&err);
	T_OK(gen_root(&tm.m, "ed25519", 0, "Root CA", "persist", YEAR, &root, &err) == 0);
	T_OK(issue(&tm.m, r, CA_REQ_ISSUE, NULL, "p.example.com", NULL, 3600, &res, &err) == 0);
	T_OK(ca_revoke(g_ca, &tm.m, res.serial, NULL, CA_REASON_SUPERSEDED, 0, &rv, &err) == 0);
	ca_revoke_result_clear(&rv);

	close_all();
	open_all();
	T_OK(ca_issuer_get(g_ca, &tm.m, "persist", &info, &err) == 0 && info.is_default &&
	     X509_cmp(info.cert, root.cert) == 0);
	ca_issuer_info_clear(&info);
	T_OK(ca_cert_get(g_ca, &tm.m, res.serial, &rec, &err) == 0 && rec.revoked && rec.reason == CA_REASON_SUPERSEDED);
	ca_cert_record_clear(&rec);
	T_CHECK(issue(&tm.m, r, CA_REQ_ISSUE, NULL, "q.example.com", NULL, 3600, &res2, &err) == 0, "%s", err.detail);
	T_OK(verify_chain(res2.cert, res2.chain));
	ca_result_clear(&res2);

	/* Purge: every record of the mount goes. */
	T_OK(ca_mount_purge(g_ca, &tm.m, &err) == 0);
	sg_err_init(&err);
	T_OK(ca_cert_get(g_ca, &tm.m, res.serial, &rec, &err) < 0 && err.code == SG_NOT_FOUND);
	sg_err_init(&err);
	T_OK(ca_issuer_get(g_ca, &tm.m, "persist", &info, &err) < 0 && err.code == SG_UNKNOWN_ISSUER);
	ca_result_clear(&res);
	ca_gen_result_clear(&root);
	role_free(r);
}

/* ca_cert_rec_encode splices the base64 in: the bytes must be those of json_dumps of the whole record. */
static void test_cert_record_encoding(void)
{
	unsigned char der[1000];
	struct ca_cert_record r = {0}, back = {0};
	struct sg_err err;

	for (size_t i = 0; i < sizeof(der); i++)
		der[i] = (unsigned char)(i * 7 + 3);
	for (size_t n = 0; n <= sizeof(der); n += 333) {
		json_t *o = json_object();
		char *b64 = sg_base64(der, n), *want, *got;

		r.serial = (char *)"3a:0f:01";
		r.der = der;
		r.der_len = n;
		snprintf(r.issuer_id, sizeof(r.issuer_id), "%s", n % 2 ? "8d0b1a57-05f6-4b58-9d7e-3c3a0bd8c2f1" : "");
		r.role = (char *)(n % 2 ? "web \"q\" \\ \xc3\xa9" : "");
		r.owner = (char *)"owner-\n";
		r.not_before = -5;
		r.not_after = INT64_MAX;
		r.revoked = n % 2;
		r.revocation_time = 17;
		r.reason = CA_REASON_SUPERSEDED;
		r.invalidity_date = 0;
		json_object_set_new(o, "serial", json_string(r.serial));
		json_object_set_new(o, "certificate", json_string(b64));
		json_object_set_new(o, "issuer_id", json_string(r.issuer_id));
		json_object_set_new(o, "role", json_string(r.role));
		json_object_set_new(o, "owner", json_string(r.owner));
		json_object_set_new(o, "not_before", json_integer(r.not_before));
		json_object_set_new(o, "not_after", json_integer(r.not_after));
		json_object_set_new(o, "revoked", json_boolean(r.revoked));
		json_object_set_new(o, "revocation_time", json_integer(r.revocation_time));
		json_object_set_new(o, "reason", json_integer(r.reason));
		json_object_set_new(o, "invalidity_date", json_integer(r.invalidity_date));
		want = json_dumps(o, JSON_COMPACT);
		got = ca_cert_rec_encode(&r);
		T_CHECK(want != NULL && got != NULL && strcmp(want, got) == 0, "record of %zu DER bytes:\n  %s\n  %s", n,
		        want, got);
		sg_err_init(&err);
		if (n > 0) /* a record without a certificate is malformed */
			T_CHECK(ca_cert_rec_decode(got, strlen(got), &back, &err) == 0 && back.der_len == n &&
			            memcmp(back.der, der, n) == 0 && strcmp(back.role, r.role) == 0,
			        "record of %zu DER bytes decodes: %s", n, err.detail);
		ca_cert_record_clear(&back);
		free(want);
		free(got);
		free(b64);
		json_decref(o);
	}
}

/* ca_key_to_pem writes EC keys' "EC PRIVATE KEY" itself: the text must be OpenSSL's, for every curve and key. */
static void test_key_pem_text(void)
{
	static const char *const curves[] = {"P-256", "P-384", "P-521"};

	for (size_t c = 0; c < sizeof(curves) / sizeof(curves[0]); c++) {
		for (int i = 0; i < 40; i++) {
			EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curves[c]);
			BIO *b = BIO_new(BIO_s_mem());
			struct sg_err err;
			char *ref = NULL, *got;
			long rn;

			sg_err_init(&err);
			T_OK(k != NULL && b != NULL && PEM_write_bio_PrivateKey_traditional(b, k, NULL, NULL, 0, NULL, NULL) == 1);
			rn = BIO_get_mem_data(b, &ref);
			got = ca_key_to_pem(k, false, &err);
			T_CHECK(got != NULL && rn > 0 && strlen(got) == (size_t)rn && memcmp(got, ref, (size_t)rn) == 0,
			        "%s key %d: EC PRIVATE KEY as OpenSSL writes it:\n%s\n%.*s", curves[c], i, got ? got : "(null)",
			        (int)rn, ref);
			free(got);
			BIO_free(b);
			EVP_PKEY_free(k);
		}
	}
}

int main(void)
{
	char tmpl[] = "/tmp/sigil-ca-XXXXXX";

	if (mkdtemp(tmpl) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	g_dir = tmpl;
	RAND_bytes(g_kek, sizeof(g_kek));
	open_all();

	test_keyspecs();
	test_roots_all_types();
	test_intermediate_chain();
	test_path_length();
	test_issue_roles();
	test_not_after_behavior();
	test_sign_verbatim();
	test_serials();
	test_keys_at_rest();
	test_revoke();
	test_issuer_management();
	test_keys_api();
	test_urls_and_signer();
	test_commit_with_caller_ops();
	test_concurrent_issue();
	test_persistence_and_purge();
	test_cert_record_encoding();
	test_key_pem_text();

	close_all();
	nftw(g_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return t_done();
}
