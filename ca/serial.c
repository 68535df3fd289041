/*
 * Certificate serial numbers. RFC 5280 4.1.2.2: positive, unique per
 * issuer, at most 20 octets. Like Vault (certutil.GenerateSerialNumber) we
 * draw 159 random bits, so the DER INTEGER never needs a sign octet and
 * stays within 20 octets; uniqueness is enforced by the store (put_new).
 */
#include "ca/internal.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

static void fill_text(struct ca_serial *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (size_t i = 0; i < s->n; i++) {
		if (i > 0) {
			s->colon[o] = ':';
			s->hyphen[o] = '-';
			o++;
		}
		s->colon[o] = s->hyphen[o] = hex[s->b[i] >> 4];
		o++;
		s->colon[o] = s->hyphen[o] = hex[s->b[i] & 15];
		o++;
	}
	s->colon[o] = s->hyphen[o] = '\0';
}

/* Strips leading zero octets: the magnitude is the canonical form. */
static int set_magnitude(struct ca_serial *s, const unsigned char *b, size_t n)
{
	while (n > 0 && b[0] == 0) {
		b++;
		n--;
	}
	if (n == 0 || n > CA_MAX_SERIAL_BYTES)
		return -1;
	memcpy(s->b, b, n);
	s->n = n;
	fill_text(s);
	return 0;
}

void ca_serial_random(struct ca_serial *s)
{
	unsigned char b[CA_MAX_SERIAL_BYTES];

	for (;;) {
		if (RAND_bytes(b, sizeof(b)) != 1)
			sg_die("RAND_bytes failed");
		b[0] &= 0x7f; /* < 2^159: positive without a sign octet */
		if (set_magnitude(s, b, sizeof(b)) == 0)
			return; /* zero (2^-159) is simply drawn again */
	}
}

int ca_serial_parse(const char *text, struct ca_serial *s, struct sg_err *err)
{
	/* Room for a sign octet and zero padding a client may send. */
	unsigned char b[2 * CA_MAX_SERIAL_BYTES];
	size_t n = 0;

	memset(s, 0, sizeof(*s));
	if (text == NULL || sg_hex_parse_serial(text, b, sizeof(b), &n) < 0 || set_magnitude(s, b, n) < 0)
		return sg_err_set(err, SG_BAD_REQUEST, "malformed serial number");
	return 0;
}

int ca_serial_from_cert(X509 *x, struct ca_serial *s, struct sg_err *err)
{
	const ASN1_INTEGER *ai = X509_get0_serialNumber(x);
	BIGNUM *bn = NULL;
	unsigned char b[2 * CA_MAX_SERIAL_BYTES];
	int n, rc = -1;

	memset(s, 0, sizeof(*s));
	bn = ASN1_INTEGER_to_BN(ai, NULL);
	if (bn == NULL || BN_is_negative(bn) || BN_is_zero(bn) || BN_num_bytes(bn) > CA_MAX_SERIAL_BYTES) {
		sg_err_set(err, SG_BAD_REQUEST, "certificate serial number is not a positive integer of at most %d octets",
		           CA_MAX_SERIAL_BYTES);
		goto out;
	}
	n = BN_bn2bin(bn, b);
	if (set_magnitude(s, b, (size_t)n) < 0) {
		sg_err_set(err, SG_BAD_REQUEST, "malformed certificate serial number");
		goto out;
	}
	rc = 0;
out:
	BN_free(bn);
	return rc;
}

ASN1_INTEGER *ca_serial_to_asn1(const struct ca_serial *s)
{
	BIGNUM *bn = BN_bin2bn(s->b, (int)s->n, NULL);
	ASN1_INTEGER *ai;

	if (bn == NULL)
		sg_die("out of memory");
	ai = BN_to_ASN1_INTEGER(bn, NULL);
	BN_free(bn);
	if (ai == NULL)
		sg_die("out of memory");
	return ai;
}
