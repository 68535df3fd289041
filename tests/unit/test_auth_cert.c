/* Unit tests for auth/cert.c: globs, cert roles, and login against certificates made here with OpenSSL. */
#include "auth/cert.h"
#include "tests/unit/t.h"

#include <ftw.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define P "m/00000000-0000-4000-8000-0000000000c1/"

static struct store *g_st;

struct kc {
	EVP_PKEY *key;
	X509 *cert;
	unsigned char *der;
	size_t len;
};

static EVP_PKEY *eckey(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");

	if (k == NULL)
		abort();
	return k;
}

static void ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (e == NULL || X509_add_ext(x, e, -1) != 1)
		abort();
	X509_EXTENSION_free(e);
}

/*
 * A certificate for subject (CN, optional OU) signed by issuer (NULL: self-signed),
 * valid from now+from to now+to seconds.
 */
static struct kc make(const char *cn, const char *ou, const struct kc *issuer, bool ca, const char *eku,
                      const char *san, long from, long to, long serial)
{
	struct kc r;
	X509_NAME *name;
	unsigned char *p;

	memset(&r, 0, sizeof(r));
	r.key = eckey();
	r.cert = X509_new();
	X509_set_version(r.cert, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(r.cert), serial);
	X509_time_adj_ex(X509_getm_notBefore(r.cert), 0, from, NULL);
	X509_time_adj_ex(X509_getm_notAfter(r.cert), 0, to, NULL);
	name = X509_get_subject_name(r.cert);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
	if (ou != NULL)
		X509_NAME_add_entry_by_txt(name, "OU", MBSTRING_UTF8, (const unsigned char *)ou, -1, -1, 0);
	X509_set_issuer_name(r.cert, issuer != NULL ? X509_get_subject_name(issuer->cert) : name);
	X509_set_pubkey(r.cert, r.key);
	ext(r.cert, issuer != NULL ? issuer->cert : r.cert, NID_subject_key_identifier, "hash");
	ext(r.cert, issuer != NULL ? issuer->cert : r.cert, NID_authority_key_identifier, "keyid:always");
	if (ca) {
		ext(r.cert, NULL, NID_basic_constraints, "critical,CA:TRUE");
		ext(r.cert, NULL, NID_key_usage, "critical,keyCertSign,cRLSign");
	} else {
		ext(r.cert, NULL, NID_basic_constraints, "critical,CA:FALSE");
		ext(r.cert, NULL, NID_key_usage, "critical,digitalSignature");
	}
	if (eku != NULL)
		ext(r.cert, NULL, NID_ext_key_usage, eku);
	if (san != NULL)
		ext(r.cert, NULL, NID_subject_alt_name, san);
	if (X509_sign(r.cert, issuer != NULL ? issuer->key : r.key, EVP_sha256()) <= 0)
		abort();
	r.len = (size_t)i2d_X509(r.cert, NULL);
	r.der = malloc(r.len);
	p = r.der;
	i2d_X509(r.cert, &p);
	return r;
}

static void kc_free(struct kc *k)
{
	EVP_PKEY_free(k->key);
	X509_free(k->cert);
	free(k->der);
}

static char *pem_of(const struct kc *k)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out;
	long n;

	PEM_write_bio_X509(b, k->cert);
	n = BIO_get_mem_data(b, &data);
	out = sg_xstrndup(data, (size_t)n);
	BIO_free(b);
	return out;
}

static enum sg_code role_put(const char *name, json_t *body)
{
	struct auth_cert_role r;
	struct sg_err err;
	int got, rc = -1;

	sg_err_init(&err);
	auth_cert_role_init(&r);
	got = auth_cert_role_load(g_st, P, name, &r, &err);
	if (got == 0)
		r.name = sg_xstrdup(name);
	if (got >= 0 && auth_cert_role_apply(&r, body, got == 0, &err) == 0 &&
	    auth_cert_role_store(g_st, P, &r, &err) == 0)
		rc = 0;
	auth_cert_role_clear(&r);
	json_decref(body);
	return rc == 0 ? SG_OK : err.code;
}

static char g_detail[SG_ERR_DETAIL_MAX];

/* Logs in with leaf (+ up to two more certificates); returns the code, the matched role in role_out. */
static enum sg_code login(const char *name, const struct kc *leaf, const struct kc *more, char *role_out)
{
	struct auth_cert_chain ch;
	struct auth_cert_login_result l;
	struct sg_err err;
	int rc;

	memset(&ch, 0, sizeof(ch));
	sg_err_init(&err);
	if (leaf != NULL) {
		ch.der[0] = leaf->der;
		ch.len[0] = leaf->len;
		ch.n = 1;
	}
	if (more != NULL) {
		ch.der[1] = more->der;
		ch.len[1] = more->len;
		ch.n = 2;
	}
	rc = auth_cert_login(g_st, P, name, &ch, &l, &err);
	snprintf(g_detail, sizeof(g_detail), "%s", err.detail);
	if (rc == 0) {
		if (role_out != NULL)
			snprintf(role_out, 64, "%s", l.role.name);
		auth_cert_login_result_clear(&l);
	}
	return rc == 0 ? SG_OK : err.code;
}

static void test_glob(void)
{
	T_OK(auth_cert_glob("*.example.com", "a.example.com", false));
	T_OK(auth_cert_glob("*.example.com", "a.b.example.com", false)); /* '*' spans dots, as go-glob */
	T_OK(!auth_cert_glob("*.example.com", "example.com", false));
	T_OK(auth_cert_glob("*", "", false));
	T_OK(auth_cert_glob("a*b*c", "aXXbYYc", false));
	T_OK(!auth_cert_glob("a*b*c", "aXXbYY", false));
	T_OK(auth_cert_glob("exact", "exact", false));
	T_OK(!auth_cert_glob("exact", "exactly", false));
	T_OK(!auth_cert_glob("Exact", "exact", false));
	T_OK(auth_cert_glob("Exact", "exact", true));
	T_OK(auth_cert_glob("spiffe://cluster/ns/*/sa/web", "spiffe://cluster/ns/prod/sa/web", false));
	T_OK(auth_cert_glob("**a", "a", false));
	{
		/* Pathological pattern against a long string: finishes (no exponential backtracking). */
		char s[4001], pat[64];

		memset(s, 'a', sizeof(s) - 1);
		s[sizeof(s) - 1] = '\0';
		snprintf(pat, sizeof(pat), "*a*a*a*a*a*a*a*a*b");
		T_OK(!auth_cert_glob(pat, s, false));
	}
}

static void test_roles(const struct kc *ca)
{
	char *pem = pem_of(ca);
	struct auth_cert_role r;
	struct sg_strlist l = {0};
	struct sg_err err;
	json_t *o;

	T_OK(role_put("web", json_pack("{s:s, s:s, s:s}", "certificate", pem, "allowed_common_names", "*.example.com",
	                               "token_policies", "renew")) == SG_OK);
	auth_cert_role_init(&r);
	sg_err_init(&err);
	T_OK(auth_cert_role_load(g_st, P, "web", &r, &err) == 1);
	T_OK(r.allowed_common_names.n == 1 && r.tf.policies.n == 1 && strcmp(r.certificate, pem) == 0);
	o = auth_cert_role_to_json(&r);
	T_STREQ(json_string_value(json_object_get(o, "certificate")), pem);
	T_OK(json_array_size(json_object_get(o, "allowed_dns_sans")) == 0);
	json_decref(o);
	auth_cert_role_clear(&r);
	T_OK(role_put("web", json_pack("{s:s}", "token_ttl", "1h")) == SG_OK); /* update keeps the certificate */
	auth_cert_role_init(&r);
	T_OK(auth_cert_role_load(g_st, P, "web", &r, &err) == 1 && r.tf.ttl == 3600 && strcmp(r.certificate, pem) == 0);
	auth_cert_role_clear(&r);

	T_OK(role_put("bad", json_object()) == SG_BAD_REQUEST);
	T_OK(role_put("bad", json_pack("{s:s}", "certificate", "hello")) == SG_BAD_PEM);
	T_OK(role_put("bad", json_pack("{s:s}", "certificate",
	                               "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")) == SG_BAD_PEM);
	T_OK(role_put("bad", json_pack("{s:s, s:i}", "certificate", pem, "allowed_dns_sans", 3)) == SG_BAD_REQUEST);
	T_OK(role_put("bad", json_pack("{s:s, s:s}", "certificate", pem, "token_type", "batch")) == SG_BAD_REQUEST);
	sg_err_init(&err);
	T_OK(auth_cert_name_check("-x", &err) == -1);
	sg_err_init(&err);
	T_OK(auth_cert_name_check("a/b", &err) == -1);
	sg_err_init(&err);
	T_OK(auth_cert_role_list(g_st, P, &l, &err) == 0 && l.n == 1 && strcmp(l.v[0], "web") == 0);
	sg_strlist_clear(&l);
	free(pem);
}

static void test_login(const struct kc *root)
{
	char role[64];
	struct kc inter = make("Inter", NULL, root, true, NULL, NULL, -60, 86400, 2);
	struct kc app = make("app.example.com", "payments", root, false, "clientAuth",
	                     "DNS:app.example.com,URI:spiffe://c/ns/prod/sa/app", -60, 3600, 10);
	struct kc srvonly = make("srv.example.com", NULL, root, false, "serverAuth", NULL, -60, 3600, 11);
	struct kc noeku = make("plain.example.com", NULL, root, false, NULL, NULL, -60, 3600, 12);
	struct kc other = make("intruder.other.net", NULL, root, false, "clientAuth", NULL, -60, 3600, 13);
	struct kc brief = make("brief.example.com", NULL, root, false, "clientAuth", NULL, -60, 100, 14);
	struct kc future = make("later.example.com", NULL, root, false, "clientAuth", NULL, 3600, 7200, 15);
	struct kc viaint = make("deep.example.com", NULL, &inter, false, "clientAuth", NULL, -60, 3600, 16);
	struct kc stranger = make("app.example.com", NULL, NULL, true, NULL, NULL, -60, 3600, 17);
	struct kc forged = make("app.example.com", NULL, &stranger, false, "clientAuth", NULL, -60, 3600, 18);
	char *root_pem = pem_of(root), *int_pem = pem_of(&inter), *app_pem = pem_of(&app);

	/* role "web" (from test_roles) trusts root with CN *.example.com. */
	T_OK(login("web", &app, NULL, role) == SG_OK && strcmp(role, "web") == 0);
	T_OK(login(NULL, &app, NULL, role) == SG_OK);
	T_OK(login("", &app, NULL, role) == SG_OK);
	T_OK(login("web", &noeku, NULL, NULL) == SG_OK); /* no EKU: any purpose */
	T_OK(login("web", NULL, NULL, NULL) == SG_BAD_REQUEST);
	T_STREQ(g_detail, "client certificate must be supplied");
	T_OK(login("web", &srvonly, NULL, NULL) == SG_BAD_REQUEST);
	T_CHECK(strstr(g_detail, "purpose") != NULL, "%s", g_detail);
	T_OK(login("web", &other, NULL, NULL) == SG_BAD_REQUEST);
	T_STREQ(g_detail, "no chain matching all constraints could be found for this login certificate");
	T_OK(login("web", &forged, NULL, NULL) == SG_BAD_REQUEST);
	T_CHECK(strstr(g_detail, "invalid certificate or no client certificate supplied") != NULL, "%s", g_detail);
	T_OK(login(NULL, &forged, &stranger, NULL) == SG_BAD_REQUEST); /* a chain to an untrusted root */
	T_OK(login("web", &stranger, NULL, NULL) == SG_BAD_REQUEST);
	T_OK(login("nope", &app, NULL, NULL) == SG_BAD_REQUEST);
	T_STREQ(g_detail, "no certificate role named \"nope\"");
	T_OK(login("../web", &app, NULL, NULL) == SG_BAD_REQUEST);
	T_OK(login("web", &future, NULL, NULL) == SG_BAD_REQUEST);
	T_CHECK(strstr(g_detail, "not yet valid") != NULL, "%s", g_detail);
	T_OK(login("web", &brief, NULL, NULL) == SG_OK);
	sg_clock_advance(200); /* the shared clock moves the verification time too */
	T_OK(login("web", &brief, NULL, NULL) == SG_BAD_REQUEST);
	T_CHECK(strstr(g_detail, "expired") != NULL, "%s", g_detail);
	sg_clock_advance(-200);
	{
		/* Garbage and trailing bytes in the presented DER. */
		struct kc junk = app;
		unsigned char buf[4096];

		memcpy(buf, app.der, app.len);
		buf[app.len] = 0;
		junk.der = buf;
		junk.len = app.len + 1;
		T_OK(login("web", &junk, NULL, NULL) == SG_BAD_REQUEST);
		junk.len = 10;
		T_OK(login("web", &junk, NULL, NULL) == SG_BAD_REQUEST);
	}

	/* Through an intermediate: sent by the client when only the root is trusted. */
	T_OK(login("web", &viaint, NULL, NULL) == SG_BAD_REQUEST);
	T_OK(login("web", &viaint, &inter, NULL) == SG_OK);
	/* Trusting the intermediate alone (partial chain) needs no more than the leaf. */
	T_OK(role_put("byint", json_pack("{s:s}", "certificate", int_pem)) == SG_OK);
	T_OK(login("byint", &viaint, NULL, NULL) == SG_OK);
	T_OK(login("byint", &app, NULL, NULL) == SG_BAD_REQUEST); /* issued by the root, not by the intermediate */

	/* A pinned leaf. */
	T_OK(role_put("pinned", json_pack("{s:s}", "certificate", app_pem)) == SG_OK);
	T_OK(login("pinned", &app, NULL, NULL) == SG_OK);
	T_OK(login("pinned", &noeku, NULL, NULL) == SG_BAD_REQUEST);
	{
		/* A pinned leaf must allow client authentication when it names usages (Vault). */
		char *srv_pem = pem_of(&srvonly), *noeku_pem = pem_of(&noeku);

		T_OK(role_put("pin2", json_pack("{s:s}", "certificate", srv_pem)) == SG_BAD_REQUEST);
		T_OK(role_put("pin2", json_pack("{s:s}", "certificate", noeku_pem)) == SG_OK);
		free(srv_pem);
		free(noeku_pem);
	}
	/* Role names are case-insensitive, as Vault lower-cases them. */
	T_OK(login("WEB", &app, NULL, role) == SG_OK && strcmp(role, "web") == 0);
	/* Deprecated token field names still apply. */
	T_OK(role_put("web", json_pack("{s:s}", "ttl", "2h")) == SG_OK);
	{
		struct auth_cert_role r;
		struct sg_err err;

		sg_err_init(&err);
		auth_cert_role_init(&r);
		T_OK(auth_cert_role_load(g_st, P, "Web", &r, &err) == 1 && r.tf.ttl == 7200 && strcmp(r.name, "web") == 0);
		auth_cert_role_clear(&r);
	}

	/* Constraints: DNS SANs (case-insensitive), URI SANs, OUs, allowed_names. */
	T_OK(role_put("dns", json_pack("{s:s, s:s}", "certificate", root_pem, "allowed_dns_sans", "*.EXAMPLE.com")) ==
	     SG_OK);
	T_OK(login("dns", &app, NULL, NULL) == SG_OK);
	T_OK(login("dns", &noeku, NULL, NULL) == SG_BAD_REQUEST); /* no DNS SAN at all */
	T_OK(role_put("uri", json_pack("{s:s, s:s}", "certificate", root_pem, "allowed_uri_sans",
	                               "spiffe://c/ns/*/sa/app")) == SG_OK);
	T_OK(login("uri", &app, NULL, NULL) == SG_OK);
	T_OK(login("uri", &noeku, NULL, NULL) == SG_BAD_REQUEST);
	T_OK(role_put("ou", json_pack("{s:s, s:s}", "certificate", root_pem, "allowed_organizational_units",
	                              "payments,billing")) == SG_OK);
	T_OK(login("ou", &app, NULL, NULL) == SG_OK);
	T_OK(login("ou", &noeku, NULL, NULL) == SG_BAD_REQUEST);
	T_OK(role_put("names", json_pack("{s:s, s:s}", "certificate", root_pem, "allowed_names", "plain.*")) == SG_OK);
	T_OK(login("names", &noeku, NULL, NULL) == SG_OK);
	T_OK(login("names", &app, NULL, NULL) == SG_BAD_REQUEST);

	/* The metadata Vault gives. */
	{
		struct auth_cert_chain ch = {1, {app.der}, {app.len}};
		struct auth_cert_login_result l;
		struct sg_err err;

		sg_err_init(&err);
		T_OK(auth_cert_login(g_st, P, "web", &ch, &l, &err) == 0);
		T_STREQ(json_string_value(json_object_get(l.metadata, "cert_name")), "web");
		T_STREQ(json_string_value(json_object_get(l.metadata, "common_name")), "app.example.com");
		T_STREQ(json_string_value(json_object_get(l.metadata, "serial_number")), "10");
		T_OK(strlen(json_string_value(json_object_get(l.metadata, "subject_key_id"))) == 59); /* 20 bytes */
		T_STREQ(l.common_name, "app.example.com");
		T_OK(l.role.tf.policies.n == 1);
		auth_cert_login_result_clear(&l);
	}

	free(root_pem);
	free(int_pem);
	free(app_pem);
	kc_free(&inter);
	kc_free(&app);
	kc_free(&srvonly);
	kc_free(&noeku);
	kc_free(&other);
	kc_free(&brief);
	kc_free(&future);
	kc_free(&viaint);
	kc_free(&stranger);
	kc_free(&forged);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int main(void)
{
	char tmpl[] = "/tmp/sigil-test-cert-XXXXXX";
	struct sg_err err;
	struct kc root;

	sg_err_init(&err);
	test_glob();
	if (mkdtemp(tmpl) == NULL || store_open(tmpl, 0, &g_st, &err) != 0) {
		fprintf(stderr, "cannot open a store: %s\n", err.detail);
		return 1;
	}
	root = make("Test Root", NULL, NULL, true, NULL, NULL, -60, 86400, 1);
	test_roles(&root);
	test_login(&root);
	kc_free(&root);
	store_close(g_st);
	nftw(tmpl, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return t_done();
}
