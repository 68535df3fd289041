/*
 * CSR parsing and names, PEM/DER certificate parsing and the pre-issuance
 * lint. File-driven cases live in tests/data/{csr,cert}/{valid,invalid}/
 * (regenerate with tests/data/gen.sh); the expected outcome is in the file
 * name. Lint cases build certificates with OpenSSL, each breaking one rule.
 * Run from the repository root, or set SIGIL_TEST_DATA to tests/data.
 */
#include "ca/ca.h"
#include "ca/parse.h"
#include "common/util.h"
#include "roles/role.h"
#include "tests/unit/t.h"

#include <dirent.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define READ_CAP (8u << 20)

static const char *data_dir(void)
{
	const char *d = getenv("SIGIL_TEST_DATA");

	return d != NULL && *d != '\0' ? d : "tests/data";
}

static unsigned char *read_file(const char *path, size_t *len)
{
	struct sg_err err;
	unsigned char *buf = NULL;

	sg_err_init(&err);
	if (sg_file_read(path, READ_CAP, &buf, len, &err) != 0) {
		fprintf(stderr, "cannot read %s: %s\n", path, err.detail);
		return NULL;
	}
	return buf;
}

/* Sorted file names of a directory (no dot files). */
static void list_dir(const char *dir, struct sg_strlist *out)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			sg_strlist_add(out, e->d_name);
	closedir(d);
	for (size_t i = 1; i < out->n; i++)
		for (size_t j = i; j > 0 && strcmp(out->v[j - 1], out->v[j]) > 0; j--) {
			char *t = out->v[j];

			out->v[j] = out->v[j - 1];
			out->v[j - 1] = t;
		}
}

/* "badsig__BAD_SIGNATURE.pem" -> "BAD_SIGNATURE"; "chain__3.pem" -> "3". */
static char *name_expect(const char *name)
{
	const char *s = strstr(name, "__"), *dot;

	if (s == NULL)
		return NULL;
	s += 2;
	dot = strchr(s, '.');
	return sg_xstrndup(s, dot != NULL ? (size_t)(dot - s) : strlen(s));
}

static bool ends_with(const char *s, const char *suf)
{
	size_t n = strlen(s), m = strlen(suf);

	return n >= m && strcmp(s + n - m, suf) == 0;
}

/* The detail must never echo input base64 (a key block would leak that way). */
static void check_no_echo(const char *name, const unsigned char *buf, size_t len, const char *detail)
{
	const char *nl = memchr(buf, '\n', len);
	char probe[17];

	if (nl == NULL || (size_t)((const unsigned char *)nl - buf) + 17 > len)
		return;
	memcpy(probe, nl + 1, 16);
	probe[16] = '\0';
	/* Only a base64 line is worth probing (DER and text files are skipped). */
	if (strspn(probe, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") != 16)
		return;
	T_CHECK(strstr(detail, probe) == NULL, "%s: detail echoes input: %s", name, detail);
}

/* ---------------- CSR files ---------------- */

static bool list_is(const struct sg_strlist *l, const char *const *want, size_t n)
{
	if (l->n != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (strcmp(l->v[i], want[i]) != 0)
			return false;
	return true;
}

#define LIST_IS(l, ...)                                                                                  \
	do {                                                                                             \
		static const char *const want_[] = {__VA_ARGS__};                                        \
		T_CHECK(list_is(&(l), want_, sizeof(want_) / sizeof(want_[0])), "%s: %s has %zu entries", \
		        name, #l, (l).n);                                                                \
	} while (0)

static void csr_valid_expect(const char *name, X509_REQ *req, const struct role_names *n)
{
	EVP_PKEY *pk = X509_REQ_get0_pubkey(req);

	if (strcmp(name, "rsa2048.pem") == 0) {
		T_STREQ(n->common_name, "rsa2048.example.com");
		T_OK(n->dns.n == 0 && n->ips.n == 0 && n->uris.n == 0 && n->emails.n == 0);
		T_OK(EVP_PKEY_is_a(pk, "RSA") && EVP_PKEY_get_bits(pk) == 2048);
	} else if (strcmp(name, "rsa2048_sans.pem") == 0 || strcmp(name, "rsa2048_sans.der") == 0) {
		T_STREQ(n->common_name, "rsa2048.example.com");
		LIST_IS(n->dns, "rsa2048.example.com", "www.example.com");
	} else if (strcmp(name, "rsa3072.pem") == 0) {
		T_OK(EVP_PKEY_get_bits(pk) == 3072);
		LIST_IS(n->dns, "rsa3072.example.com");
	} else if (strcmp(name, "rsa4096.der") == 0) {
		T_OK(EVP_PKEY_get_bits(pk) == 4096);
		T_STREQ(n->common_name, "rsa4096.example.com");
	} else if (strcmp(name, "ec256_sans.pem") == 0) {
		T_OK(EVP_PKEY_is_a(pk, "EC") && EVP_PKEY_get_bits(pk) == 256);
		LIST_IS(n->dns, "ec256.example.com", "*.ec256.example.com");
	} else if (strcmp(name, "ec256_all_sans.pem") == 0) {
		T_STREQ(n->common_name, "all.example.com");
		T_STREQ(n->subject_serial, "SN-42");
		LIST_IS(n->user_ids, "alice");
		LIST_IS(n->dns, "all.example.com");
		LIST_IS(n->ips, "10.0.0.1", "2001:db8::1");
		LIST_IS(n->uris, "spiffe://example.org/ns/default/sa/web");
		LIST_IS(n->emails, "ops@example.com");
		LIST_IS(n->other_sans, "1.3.6.1.4.1.311.20.2.3;UTF8:user@example.com");
	} else if (strcmp(name, "ec384.pem") == 0) {
		T_OK(EVP_PKEY_get_bits(pk) == 384);
		T_STREQ(n->common_name, "ec384.example.com");
		T_OK(n->dns.n == 0);
	} else if (strcmp(name, "ed25519.pem") == 0) {
		T_OK(EVP_PKEY_is_a(pk, "ED25519"));
		LIST_IS(n->dns, "ed25519.example.com");
	} else if (strcmp(name, "no_subject.pem") == 0) {
		T_OK(n->common_name == NULL);
		LIST_IS(n->dns, "nosubject.example.com");
	} else if (strcmp(name, "new_header.pem") == 0) {
		T_STREQ(n->common_name, "new.example.com");
	} else if (strcmp(name, "text_crlf.pem") == 0) {
		T_STREQ(n->common_name, "text.example.com");
	} else {
		T_CHECK(0, "valid CSR %s has no expectation in the test", name);
	}
}

static void test_csr_files(void)
{
	char dir[512];
	struct sg_strlist files = {0};

	snprintf(dir, sizeof(dir), "%s/csr/valid", data_dir());
	list_dir(dir, &files);
	T_CHECK(files.n >= 12, "%s: %zu files", dir, files.n);
	for (size_t i = 0; i < files.n; i++) {
		const char *name = files.v[i];
		char *path = sg_xasprintf("%s/%s", dir, name);
		size_t len = 0;
		unsigned char *buf = read_file(path, &len);
		struct sg_err err;
		struct role_names n = {0};
		X509_REQ *req;

		sg_err_init(&err);
		req = buf != NULL ? ca_csr_parse(buf, len, &err) : NULL;
		T_CHECK(req != NULL, "%s: %s %s", name, sg_err_name(err.code), err.detail);
		if (req != NULL) {
			T_CHECK(ca_csr_names(req, &n, &err) == 0, "%s: names: %s", name, err.detail);
			csr_valid_expect(name, req, &n);
			role_names_clear(&n);
		}
		X509_REQ_free(req);
		free(buf);
		free(path);
	}
	sg_strlist_clear(&files);

	snprintf(dir, sizeof(dir), "%s/csr/invalid", data_dir());
	list_dir(dir, &files);
	T_CHECK(files.n >= 17, "%s: %zu files", dir, files.n);
	for (size_t i = 0; i < files.n; i++) {
		const char *name = files.v[i];
		char *path = sg_xasprintf("%s/%s", dir, name);
		char *want = name_expect(name);
		size_t len = 0;
		unsigned char *buf = read_file(path, &len);
		struct sg_err err;
		struct role_names n = {0};
		X509_REQ *req;
		int rc = -1;

		T_CHECK(want != NULL, "%s: no expected code in the name", name);
		sg_err_init(&err);
		/* An empty file reads as a NULL buffer: the parser takes (NULL, 0) too. */
		req = ca_csr_parse(buf, len, &err);
		if (req != NULL) {
			rc = ca_csr_names(req, &n, &err);
			role_names_clear(&n);
		}
		T_CHECK(rc != 0 && want != NULL && strcmp(sg_err_name(err.code), want) == 0, "%s: got %s (%s)",
		        name, sg_err_name(err.code), err.detail);
		T_CHECK(err.detail[0] != '\0', "%s: empty detail", name);
		if (buf != NULL)
			check_no_echo(name, buf, len, err.detail);
		X509_REQ_free(req);
		free(want);
		free(buf);
		free(path);
	}
	sg_strlist_clear(&files);
}

/* ---------------- CSRs built in memory ---------------- */

static EVP_PKEY *key_ec(const char *curve)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);

	if (k == NULL)
		sg_die("EC key generation failed");
	return k;
}

static EVP_PKEY *key_named(const char *type)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, type);

	if (k == NULL)
		sg_die("%s key generation failed", type);
	return k;
}

static EVP_PKEY *key_rsa(size_t bits)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", bits);

	if (k == NULL)
		sg_die("RSA key generation failed");
	return k;
}

static GENERAL_NAME *gen_ia5(int type, const char *s, size_t n)
{
	GENERAL_NAME *g = GENERAL_NAME_new();
	ASN1_IA5STRING *v = ASN1_IA5STRING_new();

	if (g == NULL || v == NULL || ASN1_STRING_set(v, s, (int)n) != 1)
		sg_die("out of memory");
	GENERAL_NAME_set0_value(g, type, v);
	return g;
}

static GENERAL_NAME *gen_ip(const unsigned char *ip, size_t n)
{
	GENERAL_NAME *g = GENERAL_NAME_new();
	ASN1_OCTET_STRING *v = ASN1_OCTET_STRING_new();

	if (g == NULL || v == NULL || ASN1_OCTET_STRING_set(v, ip, (int)n) != 1)
		sg_die("out of memory");
	GENERAL_NAME_set0_value(g, GEN_IPADD, v);
	return g;
}

static X509_EXTENSION *san_ext(GENERAL_NAMES *gens, int crit)
{
	X509_EXTENSION *e = X509V3_EXT_i2d(NID_subject_alt_name, crit, gens);

	if (e == NULL)
		sg_die("SAN encoding failed");
	return e;
}

/* A signed CSR for key with CN cn (NULL: none) and up to two extension groups, as DER. */
static unsigned char *csr_der(EVP_PKEY *key, const char *cn, STACK_OF(X509_EXTENSION) *const *groups, size_t ngroups,
                              size_t *len)
{
	X509_REQ *r = X509_REQ_new();
	unsigned char *der = NULL;
	int n;

	if (r == NULL || X509_REQ_set_version(r, X509_REQ_VERSION_1) != 1 || X509_REQ_set_pubkey(r, key) != 1)
		sg_die("CSR build failed");
	if (cn != NULL &&
	    X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(r), "CN", MBSTRING_UTF8, (const unsigned char *)cn,
	                               -1, -1, 0) != 1)
		sg_die("CSR CN failed");
	/* OpenSSL refuses a second attribute of one type: the second group goes in Microsoft's. */
	for (size_t i = 0; i < ngroups; i++)
		if (X509_REQ_add_extensions_nid(r, groups[i], i == 0 ? NID_ext_req : NID_ms_ext_req) != 1)
			sg_die("CSR extensions failed");
	if (X509_REQ_sign(r, key, EVP_sha256()) <= 0)
		sg_die("CSR sign failed");
	n = i2d_X509_REQ(r, &der);
	if (n <= 0)
		sg_die("CSR encode failed");
	X509_REQ_free(r);
	*len = (size_t)n;
	return der;
}

/* Parses DER and reads the names; returns the error code (SG_OK on success). */
static enum sg_code csr_outcome(const unsigned char *der, size_t len, struct role_names *n, char *detail, size_t dlen)
{
	struct sg_err err;
	X509_REQ *r;

	sg_err_init(&err);
	r = ca_csr_parse(der, len, &err);
	if (r != NULL && ca_csr_names(r, n, &err) != 0)
		T_OK(n->common_name == NULL && n->dns.n == 0);
	X509_REQ_free(r);
	if (detail != NULL)
		snprintf(detail, dlen, "%s", err.detail);
	return err.code;
}

/*
 * ca_csr_parse rebuilds RSA and named-curve EC requests around a legacy-method
 * key instead of d2i_X509_REQ's decoder (ca/csr.c): the result must be the
 * request d2i_X509_REQ gives, and everything else must still take d2i.
 * EVP_PKEY_get0_provider tells the paths apart (NULL for a legacy key).
 */
static void csr_same_as_d2i(const char *what, const unsigned char *der, size_t len, bool fast)
{
	const unsigned char *p = der;
	X509_REQ *ref = d2i_X509_REQ(NULL, &p, (long)len), *got;
	unsigned char *enc = NULL;
	struct sg_err err;
	int n;

	sg_err_init(&err);
	got = ca_csr_parse(der, len, &err);
	T_CHECK(ref != NULL && got != NULL, "%s: parse: %s", what, err.detail);
	if (ref == NULL || got == NULL)
		goto out;
	T_CHECK((EVP_PKEY_get0_provider(X509_REQ_get0_pubkey(got)) == NULL) == fast, "%s: %s path", what,
	        fast ? "fast" : "d2i");
	T_CHECK(EVP_PKEY_eq(X509_REQ_get0_pubkey(got), X509_REQ_get0_pubkey(ref)) == 1, "%s: same key", what);
	T_CHECK(X509_NAME_cmp(X509_REQ_get_subject_name(got), X509_REQ_get_subject_name(ref)) == 0, "%s: subject",
	        what);
	T_CHECK(X509_REQ_get_attr_count(got) == X509_REQ_get_attr_count(ref), "%s: attributes", what);
	n = i2d_X509_REQ(got, &enc);
	if (fast)
		T_CHECK(n == (int)len && memcmp(enc, der, len) == 0, "%s: encodes to the input", what);
	T_CHECK(X509_REQ_verify(got, X509_REQ_get0_pubkey(got)) == 1, "%s: verifies", what);
out:
	OPENSSL_free(enc);
	X509_REQ_free(ref);
	X509_REQ_free(got);
}

static void test_csr_fast_path(void)
{
	static const struct {
		const char *what, *curve;
		size_t bits;
		bool fast;
	} keys[] = {
		{"P-256", "P-256", 0, true},  {"P-384", "P-384", 0, true},       {"P-521", "P-521", 0, true},
		{"RSA-2048", NULL, 2048, true}, {"P-224 (not fast)", "P-224", 0, false},
	};
	STACK_OF(X509_EXTENSION) *g = sk_X509_EXTENSION_new_null();
	GENERAL_NAMES *gens = GENERAL_NAMES_new();
	struct sg_err err;

	if (g == NULL || gens == NULL)
		sg_die("out of memory");
	sk_GENERAL_NAME_push(gens, gen_ia5(GEN_DNS, "fast.example.com", 16));
	sk_X509_EXTENSION_push(g, san_ext(gens, 0));
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		EVP_PKEY *k = keys[i].curve != NULL ? key_ec(keys[i].curve) : key_rsa(keys[i].bits);
		size_t len = 0, blen;
		unsigned char *der = csr_der(k, "fast.example.com", &g, 1, &len), *ber;

		csr_same_as_d2i(keys[i].what, der, len, keys[i].fast);
		csr_same_as_d2i(keys[i].what, der, len, keys[i].fast); /* cached curve parameters */
		/* Without attributes: an empty [0]. */
		OPENSSL_free(der);
		der = csr_der(k, "plain.example.com", NULL, 0, &len);
		csr_same_as_d2i(keys[i].what, der, len, keys[i].fast);

		/* A bad signature is refused on either path. */
		der[len - 1] ^= 0x01;
		sg_err_init(&err);
		T_CHECK(ca_csr_parse(der, len, &err) == NULL && err.code == SG_BAD_SIGNATURE, "%s: flipped signature: %s",
		        keys[i].what, err.detail);
		der[len - 1] ^= 0x01;

		/* BER (a long-form outer length) re-encodes differently: d2i_X509_REQ takes it, and it still verifies. */
		if (len >= 128 && len < 256 + 4 && der[1] == 0x81) {
			blen = len + 1;
			ber = sg_xmalloc(blen);
			ber[0] = 0x30;
			ber[1] = 0x82;
			ber[2] = 0x00;
			memcpy(ber + 3, der + 2, len - 2);
			csr_same_as_d2i(keys[i].what, ber, blen, false);
			free(ber);
		} else if (len >= 256 + 4 && der[1] == 0x82) {
			blen = len + 1;
			ber = sg_xmalloc(blen);
			ber[0] = 0x30;
			ber[1] = 0x83;
			ber[2] = 0x00;
			memcpy(ber + 3, der + 2, len - 2);
			csr_same_as_d2i(keys[i].what, ber, blen, false);
			free(ber);
		}
		OPENSSL_free(der);
		EVP_PKEY_free(k);
	}
	/* An EC point off the curve: refused (BAD_CSR from the key, never accepted). */
	{
		EVP_PKEY *k = key_ec("P-256");
		size_t len = 0;
		unsigned char *der = csr_der(k, "off.example.com", NULL, 0, &len);
		/* The uncompressed point follows "03 42 00 04" inside the SPKI. */
		for (size_t j = 0; j + 4 < len; j++) {
			if (der[j] == 0x03 && der[j + 1] == 0x42 && der[j + 2] == 0x00 && der[j + 3] == 0x04) {
				der[j + 4 + 63] ^= 0x01; /* last byte of y */
				break;
			}
		}
		sg_err_init(&err);
		T_CHECK(ca_csr_parse(der, len, &err) == NULL && (err.code == SG_BAD_CSR || err.code == SG_BAD_SIGNATURE),
		        "point off the curve: %s", err.detail);
		OPENSSL_free(der);
		EVP_PKEY_free(k);
	}
	sk_X509_EXTENSION_pop_free(g, X509_EXTENSION_free);
	GENERAL_NAMES_free(gens);
}

static void test_csr_built(void)
{
	EVP_PKEY *k = key_ec("P-256");
	STACK_OF(X509_EXTENSION) *g1 = sk_X509_EXTENSION_new_null(), *g2 = NULL;
	GENERAL_NAMES *gens;
	struct role_names n = {0};
	unsigned char *der;
	size_t len;
	char detail[SG_ERR_DETAIL_MAX];
	static const unsigned char ip5[5] = {10, 0, 0, 1, 2};
	static const unsigned char mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1};

	/* A DNS SAN with an embedded NUL: "good.example.com\0.evil.com". */
	gens = GENERAL_NAMES_new();
	sk_GENERAL_NAME_push(gens, gen_ia5(GEN_DNS, "good.example.com\0.evil.com", 26));
	sk_X509_EXTENSION_push(g1, san_ext(gens, 0));
	GENERAL_NAMES_free(gens);
	der = csr_der(k, "good.example.com", &g1, 1, &len);
	T_OK(csr_outcome(der, len, &n, detail, sizeof(detail)) == SG_BAD_CSR);
	T_CHECK(strstr(detail, "control character") != NULL, "%s", detail);
	role_names_clear(&n);
	OPENSSL_free(der);
	sk_X509_EXTENSION_pop_free(g1, X509_EXTENSION_free);

	/* An iPAddress of 5 octets. */
	g1 = sk_X509_EXTENSION_new_null();
	gens = GENERAL_NAMES_new();
	sk_GENERAL_NAME_push(gens, gen_ip(ip5, sizeof(ip5)));
	sk_X509_EXTENSION_push(g1, san_ext(gens, 0));
	GENERAL_NAMES_free(gens);
	der = csr_der(k, NULL, &g1, 1, &len);
	T_OK(csr_outcome(der, len, &n, detail, sizeof(detail)) == SG_BAD_CSR);
	T_CHECK(strstr(detail, "5 octets") != NULL, "%s", detail);
	role_names_clear(&n);
	OPENSSL_free(der);
	sk_X509_EXTENSION_pop_free(g1, X509_EXTENSION_free);

	/* IPv4-mapped IPv6 and a non-ASCII (UTF-8) CN come out as text. */
	g1 = sk_X509_EXTENSION_new_null();
	gens = GENERAL_NAMES_new();
	sk_GENERAL_NAME_push(gens, gen_ip(mapped, sizeof(mapped)));
	sk_X509_EXTENSION_push(g1, san_ext(gens, 0));
	GENERAL_NAMES_free(gens);
	der = csr_der(k, "b\xc3\xbcro", &g1, 1, &len);
	T_OK(csr_outcome(der, len, &n, NULL, 0) == SG_OK);
	T_STREQ(n.common_name, "b\xc3\xbcro");
	T_OK(n.ips.n == 1 && strcmp(n.ips.v[0], "::ffff:192.0.2.1") == 0);
	role_names_clear(&n);
	OPENSSL_free(der);
	sk_X509_EXTENSION_pop_free(g1, X509_EXTENSION_free);

	/* An otherName whose value is not a UTF8String. */
	{
		GENERAL_NAME *g = GENERAL_NAME_new();
		ASN1_TYPE *v = ASN1_TYPE_new();
		ASN1_IA5STRING *s = ASN1_IA5STRING_new();

		ASN1_STRING_set(s, "user@example.com", -1);
		ASN1_TYPE_set(v, V_ASN1_IA5STRING, s);
		GENERAL_NAME_set0_othername(g, OBJ_txt2obj("1.3.6.1.4.1.311.20.2.3", 1), v);
		g1 = sk_X509_EXTENSION_new_null();
		gens = GENERAL_NAMES_new();
		sk_GENERAL_NAME_push(gens, g);
		sk_X509_EXTENSION_push(g1, san_ext(gens, 0));
		GENERAL_NAMES_free(gens);
		der = csr_der(k, NULL, &g1, 1, &len);
		T_OK(csr_outcome(der, len, &n, detail, sizeof(detail)) == SG_BAD_CSR);
		T_CHECK(strstr(detail, "UTF8String") != NULL, "%s", detail);
		role_names_clear(&n);
		OPENSSL_free(der);
		sk_X509_EXTENSION_pop_free(g1, X509_EXTENSION_free);
	}

	/* ROLE_MAX_SANS names pass, one more fails. */
	for (int extra = 0; extra <= 1; extra++) {
		g1 = sk_X509_EXTENSION_new_null();
		gens = GENERAL_NAMES_new();
		for (int i = 0; i < ROLE_MAX_SANS + extra; i++) {
			char host[32];

			snprintf(host, sizeof(host), "h%d.example.com", i);
			sk_GENERAL_NAME_push(gens, gen_ia5(GEN_DNS, host, strlen(host)));
		}
		sk_X509_EXTENSION_push(g1, san_ext(gens, 0));
		GENERAL_NAMES_free(gens);
		der = csr_der(k, NULL, &g1, 1, &len);
		T_CHECK(csr_outcome(der, len, &n, NULL, 0) == (extra ? SG_BAD_CSR : SG_OK), "%d SANs",
		        ROLE_MAX_SANS + extra);
		T_OK(n.dns.n == (extra ? 0u : (size_t)ROLE_MAX_SANS));
		role_names_clear(&n);
		OPENSSL_free(der);
		sk_X509_EXTENSION_pop_free(g1, X509_EXTENSION_free);
	}

	/* Two subjectAltName extensions in one request; two extension request attributes. */
	g1 = sk_X509_EXTENSION_new_null();
	for (int i = 0; i < 2; i++) {
		gens = GENERAL_NAMES_new();
		sk_GENERAL_NAME_push(gens, gen_ia5(GEN_DNS, "a.example.com", 13));
		sk_X509_EXTENSION_push(g1, san_ext(gens, 0));
		GENERAL_NAMES_free(gens);
	}
	der = csr_der(k, NULL, &g1, 1, &len);
	T_OK(csr_outcome(der, len, &n, detail, sizeof(detail)) == SG_BAD_CSR);
	T_CHECK(strstr(detail, "more than once") != NULL, "%s", detail);
	OPENSSL_free(der);
	g2 = sk_X509_EXTENSION_new_null();
	sk_X509_EXTENSION_push(g2, sk_X509_EXTENSION_value(g1, 0));
	{
		STACK_OF(X509_EXTENSION) *groups[2] = {g2, g2};

		der = csr_der(k, NULL, groups, 2, &len);
	}
	T_OK(csr_outcome(der, len, &n, detail, sizeof(detail)) == SG_BAD_CSR);
	T_CHECK(strstr(detail, "extensionRequest") != NULL, "%s", detail);
	OPENSSL_free(der);
	sk_X509_EXTENSION_free(g2);
	sk_X509_EXTENSION_pop_free(g1, X509_EXTENSION_free);

	/* A request without any extensions has just a CN. */
	der = csr_der(k, "plain.example.com", NULL, 0, &len);
	T_OK(csr_outcome(der, len, &n, NULL, 0) == SG_OK);
	T_STREQ(n.common_name, "plain.example.com");
	role_names_clear(&n);

	/* PEM round trip through ca_csr_to_pem. */
	{
		struct sg_err err;
		X509_REQ *a, *b = NULL;
		char *pem;

		sg_err_init(&err);
		a = ca_csr_parse(der, len, &err);
		pem = ca_csr_to_pem(a);
		T_OK(pem != NULL && strncmp(pem, "-----BEGIN CERTIFICATE REQUEST-----\n", 36) == 0);
		if (pem != NULL)
			b = ca_csr_parse((const unsigned char *)pem, strlen(pem), &err);
		T_OK(b != NULL && X509_NAME_cmp(X509_REQ_get_subject_name(a), X509_REQ_get_subject_name(b)) == 0);
		T_OK(ca_csr_to_pem(NULL) == NULL);
		free(pem);
		X509_REQ_free(a);
		X509_REQ_free(b);
	}

	/* The size cap: exactly CA_MAX_CSR_BYTES passes, one more byte fails. */
	{
		struct sg_err err;
		X509_REQ *r = ca_csr_parse(der, len, &err);
		char *pem = ca_csr_to_pem(r);
		size_t plen = strlen(pem);
		unsigned char *big = sg_xmalloc(CA_MAX_CSR_BYTES + 1);
		X509_REQ *r2;

		memcpy(big, pem, plen);
		memset(big + plen, '\n', CA_MAX_CSR_BYTES + 1 - plen);
		sg_err_init(&err);
		r2 = ca_csr_parse(big, CA_MAX_CSR_BYTES, &err);
		T_CHECK(r2 != NULL, "at the cap: %s", err.detail);
		X509_REQ_free(r2);
		sg_err_init(&err);
		T_OK(ca_csr_parse(big, CA_MAX_CSR_BYTES + 1, &err) == NULL && err.code == SG_BAD_CSR &&
		     strstr(err.detail, "larger") != NULL);
		free(big);
		free(pem);
		X509_REQ_free(r);
	}
	OPENSSL_free(der);
	EVP_PKEY_free(k);
}

/* ---------------- Certificate files ---------------- */

static void test_cert_files(void)
{
	char dir[512];
	struct sg_strlist files = {0};

	snprintf(dir, sizeof(dir), "%s/cert/valid", data_dir());
	list_dir(dir, &files);
	T_CHECK(files.n >= 6, "%s: %zu files", dir, files.n);
	for (size_t i = 0; i < files.n; i++) {
		const char *name = files.v[i];
		char *path = sg_xasprintf("%s/%s", dir, name);
		char *want = name_expect(name);
		size_t len = 0;
		unsigned char *buf = read_file(path, &len);
		int count = want != NULL ? (int)strtol(want, NULL, 10) : -1;
		struct sg_err err;
		STACK_OF(X509) *sk;
		X509 *one;

		T_CHECK(count > 0, "%s: no expected count in the name", name);
		sg_err_init(&err);
		sk = ca_pem_certs_parse((const char *)buf, len, &err);
		sg_err_init(&err);
		one = ca_cert_parse(buf, len, &err);
		if (ends_with(name, ".der")) {
			T_CHECK(sk == NULL, "%s: DER read as PEM", name);
			T_CHECK(one != NULL, "%s: %s", name, err.detail);
		} else {
			T_CHECK(sk != NULL && sk_X509_num(sk) == count, "%s: %d certificates", name,
			        sk != NULL ? sk_X509_num(sk) : -1);
			if (count == 1)
				T_CHECK(one != NULL && sk != NULL && X509_cmp(one, sk_X509_value(sk, 0)) == 0, "%s: %s",
				        name, err.detail);
			else
				T_CHECK(one == NULL && err.code == SG_BAD_PEM, "%s: more than one accepted", name);
		}
		if (one != NULL) {
			/* Round trip through ca_x509_to_pem. */
			char *pem = ca_x509_to_pem(one);
			X509 *again = NULL;

			sg_err_init(&err);
			if (pem != NULL)
				again = ca_cert_parse((const unsigned char *)pem, strlen(pem), &err);
			T_CHECK(again != NULL && X509_cmp(one, again) == 0, "%s: PEM round trip", name);
			/* Byte for byte what OpenSSL's PEM writer produces. */
			{
				BIO *b = BIO_new(BIO_s_mem());
				char *ref = NULL;
				long rn;

				T_OK(b != NULL && PEM_write_bio_X509(b, one) == 1);
				rn = BIO_get_mem_data(b, &ref);
				T_CHECK(pem != NULL && rn > 0 && strlen(pem) == (size_t)rn && memcmp(pem, ref, (size_t)rn) == 0,
				        "%s: PEM text as PEM_write_bio_X509", name);
				BIO_free(b);
			}
			X509_free(again);
			free(pem);
		}
		sk_X509_pop_free(sk, X509_free);
		X509_free(one);
		free(want);
		free(buf);
		free(path);
	}
	sg_strlist_clear(&files);

	snprintf(dir, sizeof(dir), "%s/cert/invalid", data_dir());
	list_dir(dir, &files);
	T_CHECK(files.n >= 12, "%s: %zu files", dir, files.n);
	for (size_t i = 0; i < files.n; i++) {
		const char *name = files.v[i];
		char *path = sg_xasprintf("%s/%s", dir, name);
		char *want = name_expect(name);
		size_t len = 0;
		unsigned char *buf = read_file(path, &len);
		struct sg_err e1, e2;
		STACK_OF(X509) *sk;
		X509 *one;

		sg_err_init(&e1);
		sg_err_init(&e2);
		sk = ca_pem_certs_parse((const char *)buf, len, &e1);
		one = ca_cert_parse(buf, len, &e2);
		T_CHECK(sk == NULL && want != NULL && strcmp(sg_err_name(e1.code), want) == 0, "%s: certs: %s (%s)",
		        name, sg_err_name(e1.code), e1.detail);
		T_CHECK(one == NULL && want != NULL && strcmp(sg_err_name(e2.code), want) == 0, "%s: cert: %s (%s)",
		        name, sg_err_name(e2.code), e2.detail);
		if (buf != NULL) {
			check_no_echo(name, buf, len, e1.detail);
			check_no_echo(name, buf, len, e2.detail);
		}
		sk_X509_pop_free(sk, X509_free);
		X509_free(one);
		free(want);
		free(buf);
		free(path);
	}
	sg_strlist_clear(&files);
}

static void test_pem_blocks(void)
{
	char *path = sg_xasprintf("%s/cert/valid/key_and_chain__2.pem", data_dir());
	size_t len = 0;
	unsigned char *buf = read_file(path, &len);
	struct ca_pem_blocks b = {0};
	struct sg_err err;
	static const struct {
		const char *in;
		int ok;
		size_t n;
	} cases[] = {
		{"", 1, 0},
		{"just text\n", 1, 0},
		{"-----BEGIN A-----\nAAAA\n-----END A-----\n", 1, 1},
		{"-----BEGIN A-----\r\nAA AA\r\n-----END A-----", 1, 1}, /* no final newline, CRLF, inner space */
		{"-----BEGIN A-----\nQQ==\n-----END A-----\n-----BEGIN B C-----\nQUI=\n-----END B C-----\n", 1, 2},
		{"-----BEGIN A-----\n-----END A-----\n", 0, 0},          /* empty */
		{"-----BEGIN A-----\nAAA\n-----END A-----\n", 0, 0},      /* not a multiple of 4 */
		{"-----BEGIN A-----\nQQ==QQ==\n-----END A-----\n", 0, 0}, /* padding inside */
		{"-----BEGIN A-----\nQ===\n-----END A-----\n", 0, 0},     /* three pad characters */
		{"-----BEGIN A-----\nAA_A\n-----END A-----\n", 0, 0},     /* URL-safe alphabet */
		{"-----BEGIN A-----\nAAAA\n-----END B-----\n", 0, 0},     /* label mismatch */
		{"-----BEGIN A-----\nAAAA\n-----END A----\n", 0, 0},
		{"-----BEGIN A-----\nAAAA\n", 0, 0},                      /* truncated */
		{"-----BEGIN -----\nAAAA\n-----END -----\n", 0, 0},       /* empty label */
		{"-----BEGIN A  B-----\nAAAA\n-----END A  B-----\n", 0, 0},
		{"-----BEGIN A\nAAAA\n-----END A-----\n", 0, 0},
		{"-----END A-----\n", 0, 0},
		{"-----BEGIN A-----\n-----BEGIN A-----\nAAAA\n-----END A-----\n", 0, 0},
	};

	T_OK(buf != NULL);
	sg_err_init(&err);
	T_OK(ca_pem_blocks_parse((const char *)buf, len, CA_PEM_MAX_BLOCKS, SG_BAD_PEM, &b, &err) == 0);
	T_OK(b.n == 3 && strcmp(b.v[0].label, "PRIVATE KEY") == 0 && strcmp(b.v[1].label, "CERTIFICATE") == 0 &&
	     strcmp(b.v[2].label, "CERTIFICATE") == 0);
	ca_pem_blocks_clear(&b);
	sg_err_init(&err);
	T_OK(ca_pem_blocks_parse((const char *)buf, len, 2, SG_BAD_PEM, &b, &err) == -1 && err.code == SG_BAD_PEM &&
	     b.n == 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc;

		sg_err_init(&err);
		rc = ca_pem_blocks_parse(cases[i].in, strlen(cases[i].in), 4, SG_BAD_CSR, &b, &err);
		T_CHECK((rc == 0) == cases[i].ok && b.n == cases[i].n, "case %zu: rc=%d n=%zu %s", i, rc, b.n,
		        err.detail);
		if (!cases[i].ok)
			T_CHECK(err.code == SG_BAD_CSR, "case %zu: code %s", i, sg_err_name(err.code));
		ca_pem_blocks_clear(&b);
	}
	/* The decoded bytes of the two-block case. */
	sg_err_init(&err);
	T_OK(ca_pem_blocks_parse(cases[4].in, strlen(cases[4].in), 4, SG_BAD_PEM, &b, &err) == 0 && b.n == 2 &&
	     b.v[0].der_len == 1 && b.v[0].der[0] == 'A' && b.v[1].der_len == 2 && memcmp(b.v[1].der, "AB", 2) == 0 &&
	     strcmp(b.v[1].label, "B C") == 0);
	ca_pem_blocks_clear(&b);
	ca_pem_blocks_clear(NULL);

	/* CA_MAX_CHAIN certificates are accepted; a bundle over CA_MAX_BUNDLE_BYTES is not. */
	{
		char *rp = sg_xasprintf("%s/cert/valid/root__1.pem", data_dir());
		size_t rlen = 0;
		unsigned char *root = read_file(rp, &rlen);
		char *bundle = sg_xmalloc(CA_MAX_BUNDLE_BYTES + 2);
		STACK_OF(X509) *sk;

		for (int i = 0; i < CA_MAX_CHAIN; i++)
			memcpy(bundle + (size_t)i * rlen, root, rlen);
		sg_err_init(&err);
		sk = ca_pem_certs_parse(bundle, (size_t)CA_MAX_CHAIN * rlen, &err);
		T_CHECK(sk != NULL && sk_X509_num(sk) == CA_MAX_CHAIN, "%s", err.detail);
		sk_X509_pop_free(sk, X509_free);
		memset(bundle + (size_t)CA_MAX_CHAIN * rlen, ' ', CA_MAX_BUNDLE_BYTES + 1 - (size_t)CA_MAX_CHAIN * rlen);
		sg_err_init(&err);
		T_OK(ca_pem_certs_parse(bundle, CA_MAX_BUNDLE_BYTES + 1, &err) == NULL && err.code == SG_BAD_PEM);
		sg_err_init(&err);
		T_OK(ca_cert_parse(NULL, 0, &err) == NULL && err.code == SG_BAD_PEM);
		T_OK(ca_x509_to_pem(NULL) == NULL);
		free(bundle);
		free(root);
		free(rp);
	}
	free(buf);
	free(path);
}

/* ---------------- Lint ---------------- */

static EVP_PKEY *ca_key;
static X509 *ca_cert;

static void ext_add(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	X509V3_set_ctx(&ctx, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
	e = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
	if (e == NULL || X509_add_ext(x, e, -1) != 1)
		sg_die("extension %s=%s failed", OBJ_nid2sn(nid), value);
	X509_EXTENSION_free(e);
}

static void ext_del(X509 *x, int nid)
{
	int i;

	while ((i = X509_get_ext_by_NID(x, nid, -1)) >= 0)
		X509_EXTENSION_free(X509_delete_ext(x, i));
}

/* Adds raw extension bytes (for values OpenSSL's builders refuse to make). */
static void ext_raw(X509 *x, const char *oid, int crit, const unsigned char *v, size_t n)
{
	ASN1_OBJECT *o = OBJ_txt2obj(oid, 1);
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	X509_EXTENSION *e;

	if (o == NULL || os == NULL || ASN1_OCTET_STRING_set(os, v, (int)n) != 1)
		sg_die("raw extension failed");
	e = X509_EXTENSION_create_by_OBJ(NULL, o, crit, os);
	if (e == NULL || X509_add_ext(x, e, -1) != 1)
		sg_die("raw extension failed");
	X509_EXTENSION_free(e);
	ASN1_OCTET_STRING_free(os);
	ASN1_OBJECT_free(o);
}

static void set_serial_bytes(X509 *x, const unsigned char *b, size_t n, bool negative)
{
	BIGNUM *bn = BN_bin2bn(b, (int)n, NULL);
	ASN1_INTEGER *ai;

	BN_set_negative(bn, negative);
	ai = BN_to_ASN1_INTEGER(bn, NULL);
	if (ai == NULL || X509_set_serialNumber(x, ai) != 1)
		sg_die("serial failed");
	ASN1_INTEGER_free(ai);
	BN_free(bn);
}

static void set_name(X509_NAME *nm, const char *cn)
{
	if (X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0) != 1)
		sg_die("name failed");
}

static void set_cn(X509 *x, const char *cn)
{
	X509_NAME *nm = X509_NAME_new();

	if (cn != NULL)
		set_name(nm, cn);
	X509_set_subject_name(x, nm);
	X509_NAME_free(nm);
}

/* Common skeleton: v3, a 16-octet positive serial, validity offsets in seconds from now. */
static X509 *cert_skeleton(EVP_PKEY *key, const char *cn, long nb, long na)
{
	static const unsigned char serial[16] = {0x3a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
	X509 *x = X509_new();

	if (x == NULL || X509_set_version(x, X509_VERSION_3) != 1 || X509_set_pubkey(x, key) != 1)
		sg_die("cert failed");
	set_serial_bytes(x, serial, sizeof(serial), false);
	set_cn(x, cn);
	if (X509_gmtime_adj(X509_getm_notBefore(x), nb) == NULL || X509_gmtime_adj(X509_getm_notAfter(x), na) == NULL)
		sg_die("validity failed");
	return x;
}

/* A valid self-signed CA (not yet signed when sign is false). */
static X509 *root_new(EVP_PKEY *key, bool sign)
{
	X509 *x = cert_skeleton(key, "Lint Test Root", -3600, 10L * 365 * 86400);

	X509_set_issuer_name(x, X509_get_subject_name(x));
	ext_add(x, x, NID_basic_constraints, "critical,CA:TRUE");
	ext_add(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
	ext_add(x, x, NID_subject_key_identifier, "hash");
	ext_add(x, x, NID_authority_key_identifier, "keyid:always");
	/* Ed25519 signs the message itself: no digest. */
	if (sign && X509_sign(x, key, EVP_PKEY_is_a(key, "ED25519") ? NULL : EVP_sha256()) <= 0)
		sg_die("root sign failed");
	return x;
}

/* A valid leaf under ca_cert, unsigned: Vault's default server profile. */
static X509 *leaf_new(EVP_PKEY *key)
{
	X509 *x = cert_skeleton(key, "www.example.com", 0, 30L * 86400);

	X509_set_issuer_name(x, X509_get_subject_name(ca_cert));
	ext_add(x, ca_cert, NID_key_usage, "critical,digitalSignature,keyEncipherment");
	ext_add(x, ca_cert, NID_ext_key_usage, "serverAuth,clientAuth");
	ext_add(x, ca_cert, NID_subject_alt_name, "DNS:www.example.com,DNS:example.com");
	ext_add(x, ca_cert, NID_subject_key_identifier, "hash");
	ext_add(x, ca_cert, NID_authority_key_identifier, "keyid:always");
	return x;
}

static void lint_expect(int line, X509 *x, X509 *issuer, const struct ca_lint_opts *opts, const char *rule)
{
	struct sg_err err;
	int rc;
	char want[64];

	sg_err_init(&err);
	rc = ca_lint_check_opts(x, issuer, opts, &err);
	if (opts == NULL) {
		struct sg_err err2;

		sg_err_init(&err2);
		T_CHECK(ca_lint_check(x, issuer, &err2) == rc && err2.code == err.code, "line %d: wrappers differ", line);
	}
	if (rule == NULL) {
		T_CHECK(rc == 0, "line %d: expected pass, got %s", line, err.detail);
		return;
	}
	snprintf(want, sizeof(want), "lint %s:", rule);
	T_CHECK(rc == -1 && err.code == SG_LINT_FAILED && strstr(err.detail, want) != NULL &&
	            (strstr(err.detail, "RFC 5280 ") != NULL || strstr(err.detail, "CA/B BR") != NULL),
	        "line %d: expected %s, got %s '%s'", line, rule, sg_err_name(err.code), err.detail);
}
#define LINT(x, issuer, opts, rule) lint_expect(__LINE__, x, issuer, opts, rule)

/* Replaces the last occurrence of needle in the DER of x, then reparses. */
static X509 *der_patch_last(X509 *x, const unsigned char *needle, size_t nlen, const unsigned char *repl)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	int n = i2d_X509(x, &der);
	X509 *res = NULL;

	for (long i = (long)n - (long)nlen; i >= 0; i--) {
		if (memcmp(der + i, needle, nlen) == 0) {
			memcpy(der + i, repl, nlen);
			p = der;
			res = d2i_X509(NULL, &p, n);
			break;
		}
	}
	OPENSSL_free(der);
	return res;
}

static void test_lint_valid(EVP_PKEY *leaf_key)
{
	EVP_PKEY *rsa = key_rsa(2048), *ed = key_named("ED25519"), *p384 = key_ec("P-384");
	X509 *x, *inter;

	LINT(ca_cert, NULL, NULL, NULL);
	LINT(ca_cert, ca_cert, NULL, NULL);
	x = root_new(ca_key, false);
	LINT(x, NULL, NULL, NULL); /* unsigned */
	X509_free(x);

	x = leaf_new(leaf_key);
	LINT(x, ca_cert, NULL, NULL);
	T_OK(X509_sign(x, ca_key, EVP_sha256()) > 0);
	LINT(x, ca_cert, NULL, NULL);
	X509_free(x);
	x = leaf_new(rsa);
	LINT(x, ca_cert, NULL, NULL);
	X509_free(x);
	x = leaf_new(ed);
	LINT(x, ca_cert, NULL, NULL);
	X509_free(x);

	/* An intermediate with pathLen 0, signed, and a leaf under it. */
	inter = cert_skeleton(p384, "Lint Test Intermediate", 0, 5L * 365 * 86400);
	X509_set_issuer_name(inter, X509_get_subject_name(ca_cert));
	ext_add(inter, ca_cert, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
	ext_add(inter, ca_cert, NID_key_usage, "critical,keyCertSign,cRLSign");
	ext_add(inter, ca_cert, NID_subject_key_identifier, "hash");
	ext_add(inter, ca_cert, NID_authority_key_identifier, "keyid:always");
	T_OK(X509_sign(inter, ca_key, EVP_sha256()) > 0);
	LINT(inter, ca_cert, NULL, NULL);
	x = cert_skeleton(leaf_key, "svc.example.com", 60, 86400);
	X509_set_issuer_name(x, X509_get_subject_name(inter));
	ext_add(x, inter, NID_subject_alt_name, "DNS:svc.example.com");
	ext_add(x, inter, NID_subject_key_identifier, "hash");
	ext_add(x, inter, NID_authority_key_identifier, "keyid:always");
	T_OK(X509_sign(x, p384, EVP_sha384()) > 0);
	LINT(x, inter, NULL, NULL);
	/* The same leaf checked against the wrong issuer. */
	LINT(x, ca_cert, NULL, "issuer-name");
	X509_free(x);
	X509_free(inter);

	/* Ed25519 and RSA-PSS signatures. */
	x = root_new(ed, true);
	LINT(x, NULL, NULL, NULL);
	X509_free(x);
	x = root_new(rsa, false);
	{
		EVP_MD_CTX *mctx = EVP_MD_CTX_new();
		EVP_PKEY_CTX *pctx = NULL;

		T_OK(mctx != NULL && EVP_DigestSignInit(mctx, &pctx, EVP_sha256(), NULL, rsa) == 1 &&
		     EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 && X509_sign_ctx(x, mctx) > 0);
		EVP_MD_CTX_free(mctx);
	}
	T_OK(OBJ_obj2nid(X509_get0_tbs_sigalg(x)->algorithm) == NID_rsassaPss);
	LINT(x, NULL, NULL, NULL);
	X509_free(x);

	/* A 20-octet serial (top bit clear) is the longest allowed. */
	{
		unsigned char s20[20];

		memset(s20, 0xab, sizeof(s20));
		s20[0] = 0x7f;
		x = leaf_new(leaf_key);
		set_serial_bytes(x, s20, sizeof(s20), false);
		LINT(x, ca_cert, NULL, NULL);
		s20[0] = 0x80; /* needs a leading 0x00: 21 octets */
		set_serial_bytes(x, s20, sizeof(s20), false);
		LINT(x, ca_cert, NULL, "serial-length");
		X509_free(x);
	}
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ed);
	EVP_PKEY_free(p384);
}

static void test_lint_rules(EVP_PKEY *leaf_key)
{
	static const unsigned char zero = 0, five = 5;
	struct ca_lint_opts o = {0};
	EVP_PKEY *rsa1024 = key_rsa(1024), *p224 = key_ec("P-224"), *ed448 = key_named("ED448"),
	         *rsa = key_rsa(2048);
	X509 *x;

	/* 4.1.2.1 */
	x = leaf_new(leaf_key);
	X509_set_version(x, X509_VERSION_1);
	LINT(x, ca_cert, NULL, "version");
	X509_free(x);

	/* 4.1.2.2 */
	x = leaf_new(leaf_key);
	set_serial_bytes(x, &zero, 1, false);
	LINT(x, ca_cert, NULL, "serial-positive");
	set_serial_bytes(x, &five, 1, true);
	LINT(x, ca_cert, NULL, "serial-positive");
	X509_free(x);

	/* 4.1.2.3: an RSA signature under an EC issuer. */
	x = leaf_new(leaf_key);
	T_OK(X509_sign(x, rsa, EVP_sha256()) > 0);
	LINT(x, ca_cert, NULL, "sigalg-key");
	X509_free(x);

	/* 4.1.1.2: outer ecdsa-with-SHA384, inner ecdsa-with-SHA256. */
	{
		static const unsigned char sha256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
		static const unsigned char sha384[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03};
		X509 *y;

		x = leaf_new(leaf_key);
		T_OK(X509_sign(x, ca_key, EVP_sha256()) > 0);
		y = der_patch_last(x, sha256, sizeof(sha256), sha384);
		T_OK(y != NULL);
		if (y != NULL)
			LINT(y, ca_cert, NULL, "sigalg-mismatch");
		X509_free(y);
		X509_free(x);
	}

	/* 4.1.2.4 */
	x = leaf_new(leaf_key);
	{
		X509_NAME *empty = X509_NAME_new();

		X509_set_issuer_name(x, empty);
		X509_NAME_free(empty);
	}
	LINT(x, ca_cert, NULL, "issuer-empty");
	X509_free(x);
	x = root_new(ca_key, false);
	{
		X509_NAME *other = X509_NAME_new();

		set_name(other, "Someone Else");
		X509_set_issuer_name(x, other);
		X509_NAME_free(other);
	}
	LINT(x, NULL, NULL, "issuer-name");
	X509_free(x);

	/* 4.1.2.5 */
	x = leaf_new(leaf_key);
	X509_set1_notAfter(x, X509_get0_notBefore(x));
	LINT(x, ca_cert, NULL, "validity-order");
	X509_gmtime_adj(X509_getm_notAfter(x), -60);
	LINT(x, ca_cert, NULL, "validity-order");
	X509_free(x);
	x = leaf_new(leaf_key);
	{
		ASN1_GENERALIZEDTIME *gt = ASN1_GENERALIZEDTIME_set(NULL, time(NULL) + 86400);

		X509_set1_notAfter(x, gt);
		ASN1_GENERALIZEDTIME_free(gt);
	}
	LINT(x, ca_cert, NULL, "validity-encoding");
	X509_free(x);
	x = leaf_new(leaf_key);
	X509_gmtime_adj(X509_getm_notAfter(x), 20L * 365 * 86400);
	LINT(x, ca_cert, NULL, "validity-issuer");
	o.not_after_beyond_issuer_ok = true;
	LINT(x, ca_cert, &o, NULL);
	o.not_after_beyond_issuer_ok = false;
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_gmtime_adj(X509_getm_notBefore(x), -7200);
	LINT(x, ca_cert, NULL, "validity-issuer");
	X509_free(x);

	/* Keys */
	x = leaf_new(rsa1024);
	LINT(x, ca_cert, NULL, "key-size");
	X509_free(x);
	x = leaf_new(p224);
	LINT(x, ca_cert, NULL, "key-curve");
	X509_free(x);
	x = leaf_new(ed448);
	LINT(x, ca_cert, NULL, "key-type");
	X509_free(x);

	/* 4.2: empty, duplicate, malformed extensions. */
	x = leaf_new(leaf_key);
	ext_raw(x, "1.3.6.1.4.1.99999.1", 0, NULL, 0);
	LINT(x, ca_cert, NULL, "ext-empty");
	X509_free(x);
	x = leaf_new(leaf_key);
	ext_add(x, ca_cert, NID_subject_alt_name, "DNS:www.example.com");
	LINT(x, ca_cert, NULL, "ext-duplicate");
	X509_free(x);
	x = leaf_new(leaf_key);
	ext_del(x, NID_key_usage);
	ext_raw(x, "2.5.29.15", 1, (const unsigned char *)"\x05\x00", 2); /* NULL, not a BIT STRING */
	LINT(x, ca_cert, NULL, "ext-malformed");
	X509_free(x);
	x = leaf_new(leaf_key);
	ext_del(x, NID_subject_key_identifier);
	ext_raw(x, "2.5.29.14", 0, (const unsigned char *)"\x04\x01\xaa\x00", 4); /* trailing byte */
	LINT(x, ca_cert, NULL, "ext-malformed");
	X509_free(x);

	/* 4.2.1.6 */
	x = leaf_new(leaf_key);
	set_cn(x, NULL);
	LINT(x, ca_cert, NULL, "san-critical");
	ext_del(x, NID_subject_alt_name);
	LINT(x, ca_cert, NULL, "subject-empty-san");
	ext_add(x, ca_cert, NID_subject_alt_name, "critical,DNS:www.example.com");
	LINT(x, ca_cert, NULL, NULL);
	X509_free(x);
	x = leaf_new(leaf_key);
	ext_del(x, NID_subject_alt_name);
	ext_raw(x, "2.5.29.17", 0, (const unsigned char *)"\x30\x00", 2);
	LINT(x, ca_cert, NULL, "san-empty");
	X509_free(x);
	x = leaf_new(leaf_key);
	ext_del(x, NID_subject_alt_name);
	ext_raw(x, "2.5.29.17", 0, (const unsigned char *)"\x30\x13\x82\x0fwww.example.com\x82\x00", 21);
	LINT(x, ca_cert, NULL, "san-empty-name");
	X509_free(x);
	x = leaf_new(leaf_key);
	ext_del(x, NID_subject_alt_name);
	ext_raw(x, "2.5.29.17", 0,
	        (const unsigned char *)"\x30\x18\x82\x0fwww.example.com\x87\x05\x0a\x00\x00\x01\x02", 26);
	LINT(x, ca_cert, NULL, "san-ip");
	X509_free(x);

	/* CN among the SANs (CA/B BR 7.1.4.3), with Vault's exceptions. */
	x = leaf_new(leaf_key);
	set_cn(x, "other.example.com");
	LINT(x, ca_cert, NULL, "cn-in-san");
	o.cn_outside_sans_ok = true;
	LINT(x, ca_cert, &o, NULL);
	o.cn_outside_sans_ok = false;
	set_cn(x, "WWW.Example.COM");
	LINT(x, ca_cert, NULL, NULL);
	set_cn(x, "Web Frontend"); /* a display name: not checked */
	LINT(x, ca_cert, NULL, NULL);
	set_cn(x, "ops@example.com");
	LINT(x, ca_cert, NULL, "cn-in-san");
	ext_del(x, NID_subject_alt_name);
	ext_add(x, ca_cert, NID_subject_alt_name, "DNS:www.example.com,email:ops@example.com");
	LINT(x, ca_cert, NULL, NULL);
	set_cn(x, "10.1.2.3");
	LINT(x, ca_cert, NULL, "cn-in-san");
	ext_del(x, NID_subject_alt_name);
	ext_add(x, ca_cert, NID_subject_alt_name, "IP:10.1.2.3");
	LINT(x, ca_cert, NULL, NULL);
	ext_del(x, NID_subject_alt_name); /* no SAN at all: the rule does not apply */
	set_cn(x, "nosan.example.com");
	LINT(x, ca_cert, NULL, NULL);
	X509_free(x);

	/* 4.2.1.3 and 4.2.1.9 */
	x = leaf_new(leaf_key);
	ext_del(x, NID_key_usage);
	ext_raw(x, "2.5.29.15", 1, (const unsigned char *)"\x03\x01\x00", 3);
	LINT(x, ca_cert, NULL, "ku-empty");
	X509_free(x);
	x = leaf_new(leaf_key);
	ext_del(x, NID_key_usage);
	ext_add(x, ca_cert, NID_key_usage, "critical,digitalSignature,keyCertSign");
	LINT(x, ca_cert, NULL, "ku-keycertsign-non-ca");
	X509_free(x);
	x = root_new(ca_key, false);
	ext_del(x, NID_key_usage);
	ext_add(x, x, NID_key_usage, "critical,cRLSign,digitalSignature");
	LINT(x, NULL, NULL, "ca-keycertsign");
	ext_del(x, NID_key_usage);
	LINT(x, NULL, NULL, "ca-keycertsign");
	X509_free(x);
	x = root_new(ca_key, false);
	ext_del(x, NID_basic_constraints);
	ext_add(x, x, NID_basic_constraints, "CA:TRUE");
	LINT(x, NULL, NULL, "bc-critical");
	X509_free(x);
	x = leaf_new(leaf_key);
	/* BasicConstraints {cA FALSE (default, omitted), pathLenConstraint 0} */
	ext_raw(x, "2.5.29.19", 1, (const unsigned char *)"\x30\x03\x02\x01\x00", 5);
	LINT(x, ca_cert, NULL, "pathlen-non-ca");
	X509_free(x);
	x = root_new(ca_key, false);
	ext_del(x, NID_basic_constraints);
	ext_raw(x, "2.5.29.19", 1, (const unsigned char *)"\x30\x06\x01\x01\xff\x02\x01\xff", 8); /* pathLen -1 */
	LINT(x, NULL, NULL, "pathlen-negative");
	X509_free(x);

	/* 4.2.1.12 */
	x = leaf_new(leaf_key);
	ext_del(x, NID_ext_key_usage);
	ext_raw(x, "2.5.29.37", 0, (const unsigned char *)"\x30\x00", 2);
	LINT(x, ca_cert, NULL, "eku-empty");
	X509_free(x);

	/* 4.2.1.2 and 4.2.1.1 */
	x = leaf_new(leaf_key);
	ext_del(x, NID_subject_key_identifier);
	LINT(x, ca_cert, NULL, "ski-missing");
	ext_add(x, ca_cert, NID_subject_key_identifier, "critical,hash");
	LINT(x, ca_cert, NULL, "ski-critical");
	X509_free(x);
	x = leaf_new(leaf_key);
	ext_del(x, NID_authority_key_identifier);
	LINT(x, ca_cert, NULL, "aki-missing");
	ext_raw(x, "2.5.29.35", 0, (const unsigned char *)"\x30\x04\x80\x02\x01\x02", 6);
	LINT(x, ca_cert, NULL, "aki-mismatch");
	X509_free(x);
	x = leaf_new(leaf_key);
	ext_del(x, NID_authority_key_identifier);
	ext_add(x, ca_cert, NID_authority_key_identifier, "critical,keyid:always");
	LINT(x, ca_cert, NULL, "aki-critical");
	X509_free(x);
	x = root_new(ca_key, false);
	ext_del(x, NID_authority_key_identifier); /* a self-signed root may omit it */
	LINT(x, NULL, NULL, NULL);
	X509_free(x);

	T_OK(ca_lint_check(NULL, NULL, &(struct sg_err){0}) == -1);
	EVP_PKEY_free(rsa1024);
	EVP_PKEY_free(p224);
	EVP_PKEY_free(ed448);
	EVP_PKEY_free(rsa);
}

static void test_lint(void)
{
	EVP_PKEY *leaf_key = key_ec("P-256");

	ca_key = key_ec("P-256");
	ca_cert = root_new(ca_key, true);
	test_lint_valid(leaf_key);
	test_lint_rules(leaf_key);
	X509_free(ca_cert);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(leaf_key);
}

int main(void)
{
	test_csr_files();
	test_csr_built();
	test_csr_fast_path();
	test_cert_files();
	test_pem_blocks();
	test_lint();
	return t_done();
}
