/*
 * acme/ari.c and acme/ratelimit.c: certID parsing (RFC 9773 4.1) with its
 * refusals and the round trip from a certificate, the suggested window,
 * and the new-order counters (limits, Retry-After, all-or-nothing takes,
 * the bounded table).
 */
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#include "acme/acme.h"
#include "tests/unit/t.h"

static int parse_code(const char *s)
{
	struct sg_err err;
	unsigned char *aki = NULL;
	size_t n = 0;
	char *serial = NULL;
	int rc;

	sg_err_init(&err);
	rc = acme_certid_parse(s, &aki, &n, &serial, &err);
	free(aki);
	free(serial);
	return rc == 0 ? 0 : (int)err.code;
}

static void test_certid_parse(void)
{
	struct sg_err err;
	unsigned char *aki = NULL;
	size_t n = 0;
	char *serial = NULL;

	sg_err_init(&err);
	/* AKI 01 02 03, serial 0x00 0x87 0x65 (positive, high bit set, so one zero octet). */
	T_OK(acme_certid_parse("AQID.AIdl", &aki, &n, &serial, &err) == 0);
	T_OK(n == 3 && aki[0] == 1 && aki[2] == 3);
	T_STREQ(serial, "87:65");
	free(aki);
	free(serial);
	T_OK(parse_code("AQID.AQ") == 0);
	T_OK(parse_code("") == SG_ACME_MALFORMED);
	T_OK(parse_code("AQID") == SG_ACME_MALFORMED);          /* no dot */
	T_OK(parse_code("AQID.AQ.AQ") == SG_ACME_MALFORMED);    /* two dots */
	T_OK(parse_code(".AQ") == SG_ACME_MALFORMED);           /* empty AKI */
	T_OK(parse_code("AQID.") == SG_ACME_MALFORMED);         /* empty serial */
	T_OK(parse_code("AQID.AQ==") == SG_ACME_MALFORMED);     /* padding */
	T_OK(parse_code("AQ+D.AQ") == SG_ACME_MALFORMED);       /* not the URL alphabet */
	T_OK(parse_code("AQID.gA") == SG_ACME_MALFORMED);       /* 0x80: negative */
	T_OK(parse_code("AQID.AH8") == SG_ACME_MALFORMED);      /* 00 7f: not minimal */
	T_OK(parse_code("AQID.AA") == SG_ACME_MALFORMED);       /* zero */
	/* 21 octets of serial without a sign octet: longer than RFC 5280 allows. */
	T_OK(parse_code("AQID.AQEBAQEBAQEBAQEBAQEBAQEBAQEB") == SG_ACME_MALFORMED);
	{
		char big[ACME_CERTID_MAX + 8];

		memset(big, 'A', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		big[10] = '.';
		T_OK(parse_code(big) == SG_ACME_MALFORMED);
	}
}

/* A self-issued certificate with an AKI and the given serial bytes. */
static X509 *cert_with(const unsigned char *sn, size_t snlen)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *x = X509_new();
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	BIGNUM *bn = BN_bin2bn(sn, (int)snlen, NULL);

	BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
	BN_free(bn);
	X509_set_version(x, 2);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC, (const unsigned char *)"t", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_key_identifier, "hash");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	X509_sign(x, k, EVP_sha256());
	EVP_PKEY_free(k);
	return x;
}

static void test_certid_round_trip(void)
{
	static const unsigned char high[] = {0x9a, 0x01, 0x02}, low[] = {0x12, 0x34};
	const unsigned char *sns[] = {high, low};
	size_t lens[] = {sizeof(high), sizeof(low)};

	for (size_t i = 0; i < 2; i++) {
		X509 *x = cert_with(sns[i], lens[i]);
		char *id = acme_certid_of(x), *serial = NULL, *want = sg_hex_colon(sns[i], lens[i]);
		unsigned char *aki = NULL;
		size_t n = 0;
		struct sg_err err;

		sg_err_init(&err);
		T_OK(id != NULL);
		T_OK(acme_certid_parse(id, &aki, &n, &serial, &err) == 0);
		T_STREQ(serial, want);
		T_OK(acme_certid_aki_matches(x, aki, n));
		aki[0] ^= 1;
		T_OK(!acme_certid_aki_matches(x, aki, n));
		T_OK(!acme_certid_aki_matches(x, aki, n - 1));
		free(aki);
		free(serial);
		free(want);
		free(id);
		X509_free(x);
	}
}

static void test_window(void)
{
	int64_t s = 0, e = 0, ra = 0, nb = 1000000, na = nb + 90 * 86400;

	/* Fresh 90-day certificate: from day 60, before expiry; ask again in 6 h. */
	acme_ari_window(nb, na, false, nb + 10, &s, &e, &ra);
	T_OK(s == nb + 60 * 86400);
	T_OK(e > s && e < na);
	T_OK(ra == ACME_ARI_RETRY_S);
	/* An hour before the window opens: ask again when it opens. */
	acme_ari_window(nb, na, false, s - 3600, &s, &e, &ra);
	T_OK(ra == 3600);
	/* Inside the window. */
	acme_ari_window(nb, na, false, s + 10, &s, &e, &ra);
	T_OK(ra == 3600);
	/* Revoked: a window wholly in the past. */
	acme_ari_window(nb, na, true, nb + 100, &s, &e, &ra);
	T_OK(s < e && e < nb + 100);
	/* Degenerate lifetimes still give start < end <= not_after. */
	acme_ari_window(nb, nb + 2, false, nb, &s, &e, &ra);
	T_OK(s < e && e <= nb + 2 && ra >= 60);
	acme_ari_window(nb, nb, false, nb, &s, &e, &ra);
	T_OK(s < e);
}

static void test_ratelimit(void)
{
	struct acme_ratelimit *rl = acme_ratelimit_new(3600);
	const char *acct[] = {"m|acct|a"}, *both[] = {"m|acct|b", "m|ident|x"};
	int64_t lim1[] = {2}, lim2[] = {10, 1}, zero[] = {0}, ra = 0, t0 = 3600 * 1000 + 600;

	T_OK(acme_ratelimit_take(rl, acct, lim1, 1, t0, &ra) == 0);
	T_OK(acme_ratelimit_take(rl, acct, lim1, 1, t0 + 1, &ra) == 0);
	T_OK(acme_ratelimit_take(rl, acct, lim1, 1, t0 + 2, &ra) == 1);
	/* Two in this window: the next window starts in 2998 s, where half of it (1800 s) must decay. */
	T_OK(ra == 3600 - 602 + 1800);
	/* Still limited just before that, free at it. */
	T_OK(acme_ratelimit_take(rl, acct, lim1, 1, t0 + 2 + ra - 5, &ra) == 1);
	T_OK(acme_ratelimit_take(rl, acct, lim1, 1, t0 + 3600 - 600 + 1800, &ra) == 0);
	/* 0 = unlimited, nothing counted. */
	for (int i = 0; i < 5; i++)
		T_OK(acme_ratelimit_take(rl, acct, zero, 1, t0, &ra) == 0);
	/* All or nothing: ident x is full, so account b is not charged either. */
	T_OK(acme_ratelimit_take(rl, both, lim2, 2, t0, &ra) == 0);
	for (int i = 0; i < 3; i++)
		T_OK(acme_ratelimit_take(rl, both, lim2, 2, t0, &ra) == 1);
	{
		const char *only_b[] = {"m|acct|b"};
		int64_t lb[] = {2};

		/* b was charged once: one more fits under 2, then none. */
		T_OK(acme_ratelimit_take(rl, only_b, lb, 1, t0, &ra) == 0);
		T_OK(acme_ratelimit_take(rl, only_b, lb, 1, t0, &ra) == 1);
	}
	/* Many keys: the table stays bounded and fresh keys are never refused. */
	for (unsigned i = 0; i < ACME_RL_SLOTS + 5000; i++) {
		char key[64];
		const char *k[] = {key};
		int64_t l[] = {1};

		snprintf(key, sizeof(key), "m|ident|n%u", i);
		if (acme_ratelimit_take(rl, k, l, 1, t0, &ra) != 0) {
			T_CHECK(false, "fresh key %u refused", i);
			break;
		}
	}
	acme_ratelimit_free(rl);
	acme_ratelimit_free(NULL);
}

int main(void)
{
	test_certid_parse();
	test_certid_round_trip();
	test_window();
	test_ratelimit();
	return t_done();
}
