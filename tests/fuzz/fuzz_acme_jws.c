/*
 * libFuzzer target for acme/'s untrusted-input parsers. The first byte
 * picks: 0 a flattened JWS body (acme_jws_parse, then JWK import,
 * thumbprint and verification with the header's key, and the keyChange
 * inner rules of acme_jws_parse_inner), 1 a JWK alone (an accepted key
 * must round-trip with the same thumbprint), 2 a nonce text, 3 base64url
 * text (strict: decoding then encoding gives the input back). Seeds:
 * tests/fuzz/corpus/acme_jws/.
 */
#include <openssl/err.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acme/acme.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define URL "https://ca.example/v1/pki/acme/new-account"

static void jws(const json_t *body)
{
	struct acme_jws j;
	struct sg_err err;
	EVP_PKEY *k;
	char *tp;

	sg_err_init(&err);
	if (acme_jws_parse(body, URL, &j, &err) != 0)
		return;
	if (j.jwk != NULL) {
		tp = acme_jwk_thumbprint(j.jwk, &err);
		free(tp);
		k = acme_jwk_to_pkey(j.jwk, &err);
		if (k != NULL) {
			(void)!acme_jws_verify(&j, k, &err);
			EVP_PKEY_free(k);
		}
	}
	acme_jws_clear(&j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct acme_nonces *nonces;
	struct sg_err err;
	json_error_t jerr;
	json_t *j = NULL;
	char *text;

	if (size < 1 || size > (64u << 10))
		return 0;
	if (nonces == NULL)
		nonces = acme_nonces_new(NULL, 0);
	text = sg_xstrndup((const char *)data + 1, size - 1);
	sg_err_init(&err);
	switch (data[0] % 4) {
	case 0:
		j = json_loadb(text, strlen(text), JSON_REJECT_DUPLICATES, &jerr);
		if (j != NULL) {
			struct acme_jws in;

			jws(j);
			/* keyChange's inner rules on the same bytes. */
			if (acme_jws_parse_inner(j, URL, &in, &err) == 0)
				acme_jws_clear(&in);
		}
		break;
	case 1: {
		EVP_PKEY *k;
		json_t *back;

		j = json_loadb(text, strlen(text), JSON_REJECT_DUPLICATES, &jerr);
		k = j != NULL ? acme_jwk_to_pkey(j, &err) : NULL;
		if (k != NULL) {
			/* An accepted key survives a round trip with the same thumbprint. */
			char *a = acme_jwk_thumbprint(j, &err), *b;

			back = acme_pkey_to_jwk(k, &err);
			b = back != NULL ? acme_jwk_thumbprint(back, &err) : NULL;
			if (a == NULL || b == NULL || strcmp(a, b) != 0)
				abort();
			free(a);
			free(b);
			json_decref(back);
			EVP_PKEY_free(k);
		}
		break;
	}
	case 2:
		(void)!acme_nonce_use(nonces, text, &err);
		break;
	default: {
		unsigned char *out = NULL;
		size_t n = 0;

		if (sg_b64url_decode(text, strlen(text), &out, &n) == 0) {
			/* Strict decoding: re-encoding gives the same text back. */
			char *again = sg_b64url(out, n);

			if (strcmp(again, text) != 0)
				abort();
			free(again);
			free(out);
		}
		break;
	}
	}
	json_decref(j);
	free(text);
	ERR_clear_error();
	return 0;
}
