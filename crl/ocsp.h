#ifndef SG_OCSP_H
#define SG_OCSP_H

/*
 * The OCSP responder (RFC 6960, RFC 5019 lightweight profile).
 *
 * Answers come from a cache of pre-signed responses per (issuer, serial,
 * CertID encoding): the hot path parses the request, finds the entry and
 * copies its bytes; nothing is signed. An entry is signed on the first
 * request for it, re-signed at once when the certificate is revoked (the
 * crl/ listener of ca_revoke: DESIGN.md rule 3), and re-signed by the
 * "ocsp-refresh" thread halfway through its validity, long before its
 * nextUpdate. Requests with a nonce (RFC 8954) and requests for several
 * certificates are signed afresh and not cached.
 *
 * Statuses: good for a stored certificate of the issuer, revoked (time and
 * CRLReason) when the mount holds a revocation record, unknown for serials
 * the issuer never issued: also certificates issued with no_store, which
 * the mount cannot tell apart from forgeries (they are known only once
 * revoked by PEM). A request naming an issuer the mount does not have (or
 * a CertID hash other than SHA-1/256/384/512) gets `unauthorized`
 * (RFC 6960 2.3), a request that does not parse `malformedRequest`.
 *
 * Responses are signed by a delegated responder certificate per issuer
 * (id-kp-OCSPSigning, id-pkix-ocsp-nocheck: RFC 6960 4.2.2.2 and
 * 4.2.2.2.1) whose P-256 key lives only in a ca/ signer, never stored, and
 * which is replaced when half of its life (config/crl ocsp_responder_ttl)
 * is over; or by the issuer itself with ocsp_sign_with_issuer.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ca/ca.h"
#include "common/err.h"
#include "crl/crl.h"
#include "store/store.h"

#define OCSP_MAX_REQUEST_BYTES 8192    /* larger requests are malformedRequest */
#define OCSP_MAX_REQUEST_ITEMS 32      /* CertIDs answered in one request */
#define OCSP_MAX_CERTID_BYTES 256      /* a CertID with SHA-512 hashes and a 20-byte serial is ~150 */
#define OCSP_NONCE_MIN 1               /* RFC 8954 2.1 */
#define OCSP_NONCE_MAX 32              /* RFC 8954 2.1 */
#define OCSP_CACHE_MAX 1000000         /* cached responses per responder; past it answers are signed per request */
#define OCSP_CACHE_UNKNOWN_MAX 10000   /* of which "unknown" answers (serials never issued) */
#define OCSP_REFRESH_BATCH 2000        /* re-signed per tick of the refresh thread */
#define OCSP_TICK_MS 1000
#define OCSP_HTTP_MAX_AGE_CAP 86400    /* Cache-Control max-age ceiling, seconds */

struct ocsp;

/* Listens to crl (revocations, config/crl changes); the CA's revoke hook stays crl/'s. */
int ocsp_new(struct store *st, struct ca *ca, struct crl *crl, struct ocsp **out, struct sg_err *err) SG_WUR;
/* Starts the "ocsp-refresh" thread (re-signing before nextUpdate, responder rotation). */
int ocsp_start(struct ocsp *o, struct sg_err *err) SG_WUR;
/* Stops the thread and frees. NULL-safe. Call before crl_free. */
void ocsp_free(struct ocsp *o);

/* One answer: always an OCSPResponse, successful or an error status. */
struct ocsp_answer {
	unsigned char *der;
	size_t len;
	bool cacheable;                    /* a pre-signed answer: RFC 5019 6.2 caching headers apply */
	int64_t this_update, next_update;  /* cacheable only; next_update 0 = none */
	char etag[40];                     /* quoted; cacheable only */
};
void ocsp_answer_clear(struct ocsp_answer *a);

/*
 * Answers a DER OCSPRequest for the mount; issuer_id restricts it to one
 * issuer (issuer/:ref/ocsp), NULL answers for any of the mount's issuers.
 * Never fails: bad input and internal failures become OCSP error statuses.
 */
void ocsp_respond(struct ocsp *o, const struct ca_mount *m, const char *issuer_id, const unsigned char *req,
                  size_t len, struct ocsp_answer *out);

/*
 * As ocsp_respond without signing: false (out empty) when the answer is
 * not in the pre-signed cache (a miss, a nonce, several CertIDs). Error
 * answers and cached ones never sign. For callers that must not block.
 */
bool ocsp_respond_cached(struct ocsp *o, const struct ca_mount *m, const char *issuer_id, const unsigned char *req,
                         size_t len, struct ocsp_answer *out);

/*
 * The GET form (RFC 6960 A.1): base64 of the DER request, percent-decoded
 * by the HTTP layer. A router strips trailing slashes, which are base64
 * characters, so a text short of a multiple of four is completed with them.
 * -1 when it is not base64 or decodes to more than OCSP_MAX_REQUEST_BYTES.
 */
int ocsp_get_decode(const char *b64, size_t len, unsigned char **der, size_t *der_len) SG_WUR;

/*
 * The parser of untrusted requests (fuzzed): DER, no trailing bytes, 1 to
 * OCSP_MAX_REQUEST_ITEMS CertIDs, a nonce of RFC 8954's length when present.
 * On success *n_items and *nonce_len (0 = none) describe it.
 */
int ocsp_request_check(const unsigned char *der, size_t len, size_t *n_items, size_t *nonce_len,
                       struct sg_err *err) SG_WUR;

/* Introspection for tests and the bench: cached responses of the mount. */
size_t ocsp_cache_count(struct ocsp *o, const struct ca_mount *m);
/* Re-signs every cached response of the mount that is due now or within `ahead` seconds (tests). */
void ocsp_refresh_now(struct ocsp *o, int64_t ahead);

#endif
