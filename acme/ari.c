/*
 * ACME Renewal Information (RFC 9773): the certID of a certificate and the
 * renewal window the server suggests for it.
 */
#include "acme/acme.h"

#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

int acme_certid_parse(const char *s, unsigned char **aki, size_t *aki_len, char **serial, struct sg_err *err)
{
	const char *dot;
	unsigned char *a = NULL, *sn = NULL;
	size_t alen = 0, snlen = 0, n;
	int rc = -1;

	*aki = NULL;
	*aki_len = 0;
	*serial = NULL;
	n = s != NULL ? strlen(s) : 0;
	if (n == 0 || n > ACME_CERTID_MAX || (dot = strchr(s, '.')) == NULL || strchr(dot + 1, '.') != NULL) {
		sg_err_set(err, SG_ACME_MALFORMED, "a certID is base64url(keyIdentifier) \".\" base64url(serial)");
		goto out;
	}
	/* RFC 9773 4.1: both parts base64url without padding, neither empty. */
	if (dot == s || dot[1] == '\0' || sg_b64url_decode(s, (size_t)(dot - s), &a, &alen) != 0 ||
	    sg_b64url_decode(dot + 1, strlen(dot + 1), &sn, &snlen) != 0 || alen == 0 || snlen == 0) {
		sg_err_set(err, SG_ACME_MALFORMED, "a certID is base64url(keyIdentifier) \".\" base64url(serial)");
		goto out;
	}
	if (alen > ACME_AKI_MAX) {
		sg_err_set(err, SG_ACME_MALFORMED, "certID keyIdentifier too long");
		goto out;
	}
	/*
	 * The serial is the INTEGER's content octets (RFC 9773 4.1): positive
	 * (RFC 5280 4.1.2.2) and minimally encoded, so a leading zero octet
	 * only in front of an octet with the high bit set.
	 */
	if ((sn[0] & 0x80) != 0 || (snlen > 1 && sn[0] == 0 && (sn[1] & 0x80) == 0) || (snlen == 1 && sn[0] == 0)) {
		sg_err_set(err, SG_ACME_MALFORMED, "certID serial is not a positive, minimally encoded integer");
		goto out;
	}
	if (sn[0] == 0) {
		memmove(sn, sn + 1, snlen - 1);
		snlen--;
	}
	if (snlen > ACME_SERIAL_MAX) {
		sg_err_set(err, SG_ACME_MALFORMED, "certID serial longer than 20 octets");
		goto out;
	}
	*serial = sg_hex_colon(sn, snlen);
	*aki = a;
	*aki_len = alen;
	a = NULL;
	rc = 0;
out:
	free(a);
	free(sn);
	return rc;
}

/* The AKI keyIdentifier of x, borrowed, or NULL. */
static const ASN1_OCTET_STRING *aki_of(X509 *x)
{
	const ASN1_OCTET_STRING *k = X509_get0_authority_key_id(x);

	return k != NULL && ASN1_STRING_length(k) > 0 ? k : NULL;
}

char *acme_certid_of(X509 *x)
{
	const ASN1_OCTET_STRING *k = aki_of(x);
	const ASN1_INTEGER *sn = X509_get0_serialNumber(x);
	unsigned char buf[ACME_SERIAL_MAX + 1];
	const unsigned char *d;
	size_t n;
	char *a, *b, *out;

	if (k == NULL || sn == NULL)
		return NULL;
	d = ASN1_STRING_get0_data(sn);
	n = (size_t)ASN1_STRING_length(sn);
	if (n == 0 || n > ACME_SERIAL_MAX)
		return NULL;
	/* Back to DER content octets: a zero octet keeps a high-bit serial positive. */
	if ((d[0] & 0x80) != 0) {
		buf[0] = 0;
		memcpy(buf + 1, d, n);
		d = buf;
		n++;
	}
	a = sg_b64url(ASN1_STRING_get0_data(k), (size_t)ASN1_STRING_length(k));
	b = sg_b64url(d, n);
	out = sg_xasprintf("%s.%s", a, b);
	free(a);
	free(b);
	return out;
}

bool acme_certid_aki_matches(X509 *x, const unsigned char *aki, size_t aki_len)
{
	const ASN1_OCTET_STRING *k = aki_of(x);

	return k != NULL && (size_t)ASN1_STRING_length(k) == aki_len && memcmp(ASN1_STRING_get0_data(k), aki, aki_len) == 0;
}

void acme_ari_window(int64_t not_before, int64_t not_after, bool revoked, int64_t now, int64_t *start, int64_t *end,
                     int64_t *retry_after)
{
	int64_t life = not_after > not_before ? not_after - not_before : 1;

	if (revoked) {
		/* RFC 9773 4.2: a window in the past tells the client to renew immediately. */
		*start = now - 2 * 3600;
		*end = now - 3600;
	} else {
		/* Two thirds into the lifetime, as Let's Encrypt suggests; a tenth of it wide, before expiry. */
		*start = not_before + life / 3 * 2;
		*end = *start + (life / 10 > 0 ? life / 10 : 1);
		if (*end >= not_after)
			*end = not_after - 1;
		if (*start >= *end)
			*start = *end - 1;
	}
	/* RFC 9773 4.3: ask again after Retry-After; sooner when the window opens earlier than that. */
	*retry_after = ACME_ARI_RETRY_S;
	if (*start > now && *start - now < *retry_after)
		*retry_after = *start - now;
	else if (*start <= now)
		*retry_after = 3600;
	if (*retry_after < 60)
		*retry_after = 60;
}
