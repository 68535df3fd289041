#ifndef SG_HTTP_H
#define SG_HTTP_H

/*
 * The contract between the router and the handlers. Handlers only
 * translate: request (parsed JSON, captures) -> core call -> response.
 * They never check tokens (DESIGN.md rule 5: the router does, from the
 * route's auth field) and never log; they return an sg_err that the router
 * renders as Vault's {"errors":[...]} envelope.
 */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ca/ca.h"
#include "common/util.h"
#include "store/store.h"

#define MAX_BODY_BYTES_DEFAULT (1u << 20) /* config max_request_size overrides */
#define MAX_JSON_DEPTH 32
#define MAX_PATH_BYTES 2048
#define MAX_CAPTURES 4

enum http_method {
	HTTP_GET = 1 << 0,    /* also HEAD */
	HTTP_POST = 1 << 1,   /* also PUT: Vault treats them alike */
	HTTP_DELETE = 1 << 2,
	HTTP_LIST = 1 << 3,   /* LIST verb or GET ?list=true */
	HTTP_PATCH = 1 << 4,
};

/*
 * Not a method: in a route's methods, marks a POST route with Vault's
 * existence check. The ACL then asks "create" when the object is absent and
 * "update" when it exists; the object exists when the GET route of the same
 * table at the same path succeeds (pki roles/:name, auth method roles).
 */
#define ROUTE_EXISTENCE (1u << 7)

/*
 * Not a method either: the route is cheap and answered from memory (OCSP
 * from the pre-signed cache, CRLs from their cached DER), so on a public
 * route libmicrohttpd's I/O thread runs the handler itself instead of
 * handing it to a worker (while no audit device is enabled: an audit write
 * waits for the disk). Such a handler checks req_inline() and returns
 * ROUTE_RETRY, before it has changed anything, when it would block (a
 * signature, a store write): a worker then runs it again.
 */
#define ROUTE_INLINE (1u << 8)
#define ROUTE_RETRY 1

enum route_auth {
	ROUTE_AUTH_NONE,      /* public: ca, ca_chain, cert/:serial, health ... */
	ROUTE_AUTH_TOKEN,     /* X-Vault-Token or Authorization: Bearer */
};

/* A mounted secrets engine, as the router and handlers see it. */
struct mount {
	char *path;           /* "pki", "pki_int", "a/b" (no slashes at either end) */
	char *type;           /* "pki" */
	char *description;
	char id[37];          /* UUID: store key prefix for the mount's records */
	struct ca_mount ca;   /* view for ca_* calls: id, path, ttl bounds */
	int64_t default_lease_ttl, max_lease_ttl; /* 0 = system default */
};

struct server; /* opaque to handlers; accessors below */
struct auth_token; /* auth/token.h */
struct auth_mount; /* server/auth_mounts.h */

#define HTTP_MAX_PEER_CERTS 10 /* client certificates of a handshake that reach handlers */

/* The certificates a TLS client presented, borrowed from the TLS session for the request's life. */
struct req_peer {
	size_t n;
	const unsigned char *der[HTTP_MAX_PEER_CERTS];
	size_t len[HTTP_MAX_PEER_CERTS];
};

struct req {
	struct server *srv;
	enum http_method method;
	bool head;                  /* HEAD: send headers only */
	const char *path;           /* after "/v1/", no query */
	const struct mount *mount;  /* NULL for sys/ and auth/ routes */
	const char *sub;            /* path inside the mount */
	const char *cap_name[MAX_CAPTURES];
	const char *cap_val[MAX_CAPTURES];
	json_t *body;               /* always an object (empty when no body) */
	const unsigned char *raw;   /* raw body bytes (OCSP, DER uploads) */
	size_t raw_len;
	const char *remote_addr;
	const char *request_id;
	/* Added after the first version; members above are unchanged. */
	const json_t *query;        /* query arguments: name -> string ("" when valueless) */
	const char *token_accessor; /* accessor of the caller's token; NULL on ROUTE_AUTH_NONE routes */
	const struct auth_token *tok; /* the caller's token (auth/token.h), NULL on ROUTE_AUTH_NONE routes */
	const char *client_token;   /* the token as presented (lookup-self, audit HMAC); NULL when tok is */
	bool sudo;                  /* the caller's policies grant sudo on this path (set by the router's ACL check) */
	/* Auth methods: the auth mount of an auth/<path>/... request (NULL elsewhere). */
	const struct auth_mount *auth_mount;
	/* The TLS client certificate chain (DER, leaf first) of the connection; NULL without TLS or certificate. */
	const struct req_peer *peer;
};

struct resp {
	int status;                 /* 0 = 200 with data, or 204 when data is NULL */
	json_t *data;               /* owned; becomes "data" in the envelope */
	json_t *auth;               /* owned; "auth" block of logins */
	struct sg_strlist warnings;
	char *lease_id;             /* owned */
	int64_t lease_duration;
	bool renewable;
	/* Raw (non-envelope) answers: ca, ca/pem, crl, cert/:serial/raw ... */
	char *content_type;         /* owned; non-NULL selects raw mode */
	unsigned char *body;        /* owned */
	size_t body_len;
	json_t *headers;            /* owned; extra headers {"Name":"value"} */
};

typedef int (*route_handler)(struct req *rq, struct resp *rs, struct sg_err *err);

/*
 * A route pattern is a '/'-separated path: literal segments, ":name"
 * segments capturing one segment, and at most one "*name" segment capturing
 * one or more segments (slashes included) between the literal prefix and
 * suffix: the sys/ table has "mounts" + "/" + "*path/tune" for
 * sys/mounts/a/b/tune. A path is matched without leading or trailing '/'
 * and never with an empty segment ("a//b"), except inside a final "**name"
 * capture, which takes the rest of the path as data (OCSP's base64).
 */
struct route {
	const char *pattern;
	unsigned methods;           /* mask of enum http_method, plus ROUTE_EXISTENCE */
	route_handler fn;
	enum route_auth auth;
	bool sudo;                  /* root-protected path: the caller's policies must grant sudo too */
};

/* Capture by name, NULL if absent. */
const char *req_param(const struct req *rq, const char *name);
/* Query string argument, NULL if absent. */
const char *req_query(const struct req *rq, const char *name);
/* A request header (If-None-Match, If-Modified-Since ...), NULL if absent or outside a request. */
const char *req_header(const struct req *rq, const char *name);

/* True while the handler runs on libmicrohttpd's I/O thread (ROUTE_INLINE): it must not block. */
bool req_inline(const struct req *rq);

/* Server-wide services for handlers. */
struct store *server_store(struct server *s);
struct ca *server_ca(struct server *s);
/* Mount lookup by path (exact). NULL when absent. Borrowed until the request ends. */
const struct mount *server_mount(struct server *s, const char *path);
/* The config's external_url (e.g. for AIA and ACME URLs), NULL when unset. */
const char *server_external_url(struct server *s);
/* CRLs, config/crl and tidy (crl/crl.h). */
struct crl;
struct crl *server_crl(struct server *s);
/* The OCSP responder (crl/ocsp.h). */
struct ocsp;
struct ocsp *server_ocsp(struct server *s);

/* Response helpers. */
void resp_data(struct resp *rs, json_t *data); /* steals data */
/* A LIST answer {"keys": [...]}; an empty list is 404 with no errors, as Vault answers. */
int resp_keys(struct resp *rs, const struct sg_strlist *keys, struct sg_err *err);
void resp_raw(struct resp *rs, const char *content_type, const void *body, size_t len); /* copies */
void resp_warn(struct resp *rs, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void resp_header(struct resp *rs, const char *name, const char *value);
/*
 * Adds one more field line `name: value` (RFC 9110 5.3), kept apart from
 * the others of that name: some clients parse one Link per line (compat
 * cert-manager 1.8). resp_header replaces all lines of the name.
 */
void resp_header_add(struct resp *rs, const char *name, const char *value);
/* Frees everything a response owns and leaves it zeroed (NULL-safe). */
void resp_clear(struct resp *rs);

/* Route tables of each engine and of sys/. */
extern const struct route pki_routes[];
extern const size_t pki_routes_n;
extern const struct route sys_routes[];
extern const size_t sys_routes_n;

#endif
