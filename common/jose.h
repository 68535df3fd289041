#ifndef SG_COMMON_JOSE_H
#define SG_COMMON_JOSE_H

/*
 * What JWS users share (ACME in acme/, JWT and OIDC logins in auth/):
 * base64url (RFC 7515 2), public JWKs (RFC 7517, 7518 6, RFC 8037) and the
 * ECDSA signature form of RFC 7518 3.4.
 */

#include <jansson.h>
#include <openssl/evp.h>
#include <stddef.h>

#include "common/err.h"

#define SG_JWK_RSA_MAX_BITS 16384 /* verification cost cap */

/* base64url without padding. Caller frees. */
char *sg_b64url(const unsigned char *b, size_t n);
/*
 * Strict base64url: URL alphabet, no padding, no whitespace, canonical
 * (no stray low bits). *out is NUL-terminated (not counted in *outlen);
 * caller frees. -1 when malformed.
 */
int sg_b64url_decode(const char *s, size_t len, unsigned char **out, size_t *outlen) SG_WUR;

/*
 * The public key of a JWK: RSA (n, e; minimal octets, RFC 7518 6.3.1; up
 * to SG_JWK_RSA_MAX_BITS), EC P-256/P-384/P-521 (x and y of the full
 * coordinate size, the point on the curve) or OKP Ed25519/Ed448. A JWK
 * with private members is refused. 1 with *out set; 0 for a key type or
 * curve this does not know (the caller decides: skip or refuse); -1 with
 * err set (code) when the JWK is malformed.
 */
int sg_jwk_public_key(const json_t *jwk, enum sg_code code, EVP_PKEY **out, struct sg_err *err) SG_WUR;

/* RFC 7518 3.4: R || S, each coord bytes, to the DER ECDSA-Sig-Value OpenSSL verifies. NULL if len != 2*coord. */
unsigned char *sg_ecdsa_raw_to_der(const unsigned char *sig, size_t len, size_t coord, size_t *der_len);

#endif
