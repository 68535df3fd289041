#ifndef SG_CA_PARSE_H
#define SG_CA_PARSE_H

/*
 * Helpers behind ca_csr_parse, ca_pem_certs_parse, ca_cert_parse and
 * ca_lint_check (ca/ca.h) for other ca/ code that needs more control:
 * every PEM block of a bundle (certificates and keys, for imports) and the
 * lint with its Vault-compatibility exceptions.
 */

#include <stdbool.h>
#include <stddef.h>

#include "ca/ca.h"
#include "common/err.h"

#define CA_PEM_MAX_BLOCKS 64  /* certificates and keys in one bundle */
#define CA_PEM_LABEL_MAX 64   /* longest label accepted, "ENCRYPTED PRIVATE KEY" is 21 */

/* True when buf looks like DER (a SEQUENCE) rather than PEM text. */
bool ca_buf_is_der(const unsigned char *buf, size_t len);

/*
 * Notes on the ca.h parsers:
 *   ca_pem_certs_parse takes the "CERTIFICATE" blocks and skips every other
 *     block (keys, CRLs, "TRUSTED CERTIFICATE"); a caller importing keys
 *     reads them itself with ca_pem_blocks_parse, and a caller that must
 *     refuse keys checks for them the same way. At least one certificate,
 *     at most CA_MAX_CHAIN, input at most CA_MAX_BUNDLE_BYTES.
 *   ca_cert_parse takes DER, or PEM with exactly one block, "CERTIFICATE".
 *   ca_x509_to_pem/ca_csr_to_pem return a heap string (free()), NULL when
 *     the object does not encode.
 *   ca_csr_parse and ca_cert_parse read input starting with 0x30 (SEQUENCE)
 *     as DER, anything else as PEM. ca_csr_parse also refuses a request
 *     whose extensionRequest does not decode, appears twice, or asks for
 *     one extension twice.
 *   ca_csr_names also fills subject_serial (serialNumber RDN) and user_ids
 *     (UID RDNs); it refuses (SG_BAD_CSR) two CNs, empty SAN strings, NUL
 *     or control characters, non-ASCII IA5Strings, IP SANs not of 4/16
 *     octets, otherNames that are not UTF8String, and more than
 *     ROLE_MAX_SANS SANs. directoryName/registeredID/x400/EDI SANs are
 *     ignored (Vault does not build certificates from them).
 */

/* One decoded PEM block. der is wiped on clear: a block may hold a private key. */
struct ca_pem_block {
	char label[CA_PEM_LABEL_MAX + 1];
	unsigned char *der;
	size_t der_len;
};

struct ca_pem_blocks {
	struct ca_pem_block *v;
	size_t n;
};
void ca_pem_blocks_clear(struct ca_pem_blocks *b);

/*
 * Splits PEM text into its blocks (RFC 7468): text outside the blocks is
 * ignored (section 2), LF or CRLF line endings, whitespace inside the
 * base64 ignored. Refused with `code` (SG_BAD_PEM, SG_BAD_CSR...): NUL
 * bytes, a BEGIN without its matching END, stray boundary lines, RFC 1421
 * headers (encrypted PEM), bad base64 or padding, an empty block, more
 * than max_blocks blocks. Zero blocks is not an error here. `out` must be
 * empty on entry and is left empty on failure. The caller caps len (a
 * scratch buffer of len bytes is allocated).
 */
int ca_pem_blocks_parse(const char *pem, size_t len, size_t max_blocks, enum sg_code code,
                        struct ca_pem_blocks *out, struct sg_err *err) SG_WUR;

/*
 * Exceptions to ca_lint_check for what Vault legitimately issues.
 *   cn_outside_sans_ok: exclude_cn_from_sans=true and sign-verbatim may
 *     produce a hostname CN that is not among the SANs.
 *   not_after_beyond_issuer_ok: leaf_not_after_behavior=permit.
 */
struct ca_lint_opts {
	bool cn_outside_sans_ok;
	bool not_after_beyond_issuer_ok;
};

/* ca_lint_check with exceptions; opts NULL is the strict ca_lint_check. */
int ca_lint_check_opts(X509 *cert, X509 *issuer, const struct ca_lint_opts *opts, struct sg_err *err) SG_WUR;

/*
 * The public key of a SubjectPublicKeyInfo without OpenSSL 3.0's decoder
 * (see ca/pem.c): alg_nid NID_rsaEncryption (key: RSAPublicKey DER) or
 * NID_X9_62_id_ecPublicKey on curve_nid P-256/P-384/P-521 (key: the SEC 1
 * point, checked on the curve); the subjectPublicKey BIT STRING contents
 * without the unused-bits octet. NULL for anything else or a key that does
 * not decode exactly (the caller falls back to the full decoder); never
 * leaves errors on the queue.
 */
EVP_PKEY *ca_pubkey_legacy(int alg_nid, int curve_nid, const unsigned char *key, size_t len) SG_WUR;

#endif
