#ifndef SG_AUTH_HTTPC_H
#define SG_AUTH_HTTPC_H

/*
 * The small HTTPS client the auth methods use to reach identity providers
 * and the Kubernetes API (libcurl): JWKS and OIDC discovery documents, the
 * OAuth token endpoint, TokenReview. Every call has a total timeout, a cap
 * on the answer, no redirects, and http/https only. The trust anchors are
 * the given PEM when set, else the system store.
 */

#include <stddef.h>

#include "common/util.h"

#define AUTH_HTTPC_MAX_BODY (1u << 20)   /* answers larger than this are refused */
#define AUTH_HTTPC_TIMEOUT_S 10L
#define AUTH_HTTPC_CONNECT_TIMEOUT_S 5L
#define AUTH_HTTPC_MAX_URL 2048

struct auth_httpc_req {
	const char *url;
	const char *ca_pem;          /* trust anchors (PEM), NULL = system store */
	const char *bearer;          /* Authorization: Bearer <bearer> (secret: never logged) */
	const char *basic_user;      /* Authorization: Basic (RFC 7617), with basic_pass */
	const char *basic_pass;
	const char *content_type;    /* of body */
	const char *accept;          /* Accept header, NULL = application/json */
	const void *body;            /* POST when non-NULL */
	size_t body_len;
};

/*
 * Performs the request. On 0, *status is the HTTP status and *body a
 * NUL-terminated malloc'ed answer of *len bytes (whatever the status).
 * SG_UNAVAILABLE when the server cannot be reached, the TLS handshake or
 * certificate check fails, it times out, or the answer exceeds the cap;
 * SG_BAD_REQUEST for a URL that is not http(s) or too long.
 */
int auth_httpc_do(const struct auth_httpc_req *r, long *status, char **body, size_t *len, struct sg_err *err) SG_WUR;

/* RFC 3986 2.3 percent-encoding of everything but unreserved characters. Caller frees. */
char *auth_httpc_escape(const char *s);

#endif
