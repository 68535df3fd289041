/*
 * The HTTP edge: libmicrohttpd callbacks, body accumulation under a cap,
 * routing, central authentication (DESIGN.md rule 5), the Vault envelope
 * and the access log.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "server/audit.h"
#include "server/auth_mounts.h"
#include "server/authz.h"
#include "server/envelope.h"
#include "server/internal.h"
#include "server/json.h"
#include "server/log.h"
#include "server/router.h"

#define HTTP_CONNECTION_LIMIT 1024u
#define HTTP_CONNECTION_TIMEOUT_S 60u
/*
 * Request line and headers. libmicrohttpd zeroes a connection's whole pool
 * at every request of a kept-alive connection, so this is paid per request
 * (64 KiB cost a third of an OCSP GET's instructions); 16 KiB holds a
 * MAX_PATH_BYTES path, a token and the usual headers many times over.
 */
#define HTTP_CONNECTION_MEMORY (16u << 10)
#define HTTP_MAX_QUERY_ARGS 64
#define HTTP_MAX_HELD_MOUNTS 16
#define HTTP_MAX_HEADER_BYTES 4096
#define HTTP_MAX_TLS_FILE_BYTES (1u << 20)
#define HTTP_LOG_URL_MAX 256
#define HTTP_MAX_IO_THREADS 64 /* libmicrohttpd's threads: one per core, at most this many */
#define HTTP_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

struct http_ctx {
	struct server *srv;
	struct MHD_Connection *conn;
	struct req rq;
	struct resp rs;
	struct timespec start;
	char method[16];
	char url[MAX_PATH_BYTES + 8]; /* the request URL without its query, when it fits */
	char request_id[37];
	char remote[INET6_ADDRSTRLEN + 8];
	char path[MAX_PATH_BYTES];
	struct router_caps caps;
	unsigned char *body;
	size_t body_len, body_cap;
	bool url_too_long;
	bool responded;
	const struct mount *mount;                 /* the routed mount, referenced */
	const struct auth_mount *auth_mount;       /* the routed auth method mount, referenced */
	struct req_peer peer;                      /* TLS client certificates (borrowed from the session) */
	const struct mount *held[HTTP_MAX_HELD_MOUNTS]; /* server_mount lookups, referenced */
	size_t nheld;
	json_t *json;
	json_t *query;
	struct auth_token tok;                     /* the caller's token, when authenticated */
	struct audit_req audit;                    /* DESIGN.md rule 6: this request's audit entry */
	/* Worker pool hand-off (see "Worker pool" below). */
	struct http_ctx *next;                     /* pool queue link */
	struct MHD_Response *answer;               /* built on a worker, queued by on_access after the resume */
	unsigned answer_status;
	bool in_worker;                            /* handle() runs on a worker: send_buf keeps, never queues */
	bool dispatched;                           /* handed to the pool: the next on_access call answers */
	bool answer_fail;                          /* the worker could not build an answer: close */
	atomic_bool worker_done;                   /* set by the worker just before it resumes the connection */
	/* Routing, done once on libmicrohttpd's thread when the request is complete (http_resolve). */
	bool resolved;
	struct sg_err resolve_err;                 /* set: answer it (bad method, no route) */
	const struct route *route;                 /* NULL with resolve_err or when not found */
	enum router_result found;
	const struct route *table;
	size_t ntable;
	const char *sub, *mount_type;
	unsigned mbits;
	bool head;
	bool inline_run;                           /* handle() runs on libmicrohttpd's thread for a ROUTE_INLINE route */
	bool retry_on_pool;                        /* the inline handler asked for a worker (ROUTE_RETRY) */
};

/* Per connection (libmicrohttpd's socket context): what does not change between kept-alive requests. */
struct http_conn {
	char remote[INET6_ADDRSTRLEN + 8];
};

/* The request a pool thread is running a handler for (server_mount ties references to it). */
static _Thread_local struct http_ctx *cur_ctx;

/* ---- Accessors of http.h that need the server ---- */

struct store *server_store(struct server *s)
{
	return s->st;
}

struct ca *server_ca(struct server *s)
{
	return s->ca;
}

const char *server_external_url(struct server *s)
{
	return s->cfg.external_url;
}

struct crl *server_crl(struct server *s)
{
	return s->crl;
}

const char *req_header(const struct req *rq, const char *name)
{
	/* Only the request the calling thread runs a handler for: its connection is ours until it answers. */
	if (cur_ctx == NULL || &cur_ctx->rq != rq)
		return NULL;
	return MHD_lookup_connection_value(cur_ctx->conn, MHD_HEADER_KIND, name);
}

const struct mount *server_mount(struct server *s, const char *path)
{
	const struct mount *m = mount_table_get(&s->mounts, path);

	if (m == NULL)
		return NULL;
	if (cur_ctx == NULL) {
		/* Outside a request (start-up): nothing runs concurrently to unmount it. */
		mount_unref(m);
		return m;
	}
	if (cur_ctx->nheld == HTTP_MAX_HELD_MOUNTS) {
		mount_unref(m);
		return NULL;
	}
	cur_ctx->held[cur_ctx->nheld++] = m;
	return m;
}

/* ---- Request context ---- */

static void remote_format(struct MHD_Connection *conn, char *out, size_t cap)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	char ip[INET6_ADDRSTRLEN];

	snprintf(out, cap, "unknown");
	if (ci == NULL || ci->client_addr == NULL)
		return;
	if (ci->client_addr->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)(const void *)ci->client_addr;

		if (inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip)) != NULL)
			snprintf(out, cap, "%s:%u", ip, ntohs(a->sin_port));
	} else if (ci->client_addr->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)(const void *)ci->client_addr;

		if (inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip)) != NULL)
			snprintf(out, cap, "[%s]:%u", ip, ntohs(a->sin6_port));
	}
}

static enum MHD_Result query_cb(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct http_ctx *c = cls;
	json_t *v;

	(void)kind;
	if (json_object_size(c->query) >= HTTP_MAX_QUERY_ARGS)
		return MHD_NO;
	if (key == NULL || json_object_get(c->query, key) != NULL)
		return MHD_YES; /* the first value of a repeated argument wins */
	v = json_string(value != NULL ? value : "");
	if (v != NULL)
		json_object_set_new(c->query, key, v); /* a key that is not UTF-8 is dropped by jansson */
	return MHD_YES;
}

/*
 * Request ids only correlate log, audit and envelope lines, so they need to
 * be unique, not unpredictable: a UUIDv4-shaped id from a per-thread
 * splitmix64 seeded once from the CSPRNG (sg_uuid's RAND_bytes per request
 * cost more than the whole OCSP lookup).
 */
static void request_id_new(char out[37])
{
	static _Thread_local uint64_t state;
	static _Thread_local bool seeded;
	static const char hex[] = "0123456789abcdef";
	unsigned char b[16];
	size_t k = 0;

	if (!seeded) {
		if (RAND_bytes((unsigned char *)&state, sizeof(state)) != 1)
			sg_die("RAND_bytes failed");
		seeded = true;
	}
	for (int half = 0; half < 2; half++) {
		uint64_t z = (state += 0x9e3779b97f4a7c15ull);

		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		z ^= z >> 31;
		memcpy(b + 8 * half, &z, 8);
	}
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* RFC 9562 5.4: version 4 */
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* variant 10 */
	for (size_t i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[k++] = '-';
		out[k++] = hex[b[i] >> 4];
		out[k++] = hex[b[i] & 15];
	}
	out[k] = '\0';
}

static struct http_ctx *ctx_new(struct server *s, struct MHD_Connection *conn, const char *url, const char *method)
{
	struct http_ctx *c = sg_xcalloc(1, sizeof(*c));
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	const struct http_conn *hc = ci != NULL ? ci->socket_context : NULL;

	c->srv = s;
	c->conn = conn;
	clock_gettime(CLOCK_MONOTONIC, &c->start);
	snprintf(c->method, sizeof(c->method), "%s", method);
	if (strlen(url) >= sizeof(c->url))
		c->url_too_long = true;
	/* A URL too long to route is kept only as far as the log needs it. */
	snprintf(c->url, c->url_too_long ? HTTP_LOG_URL_MAX : sizeof(c->url), "%s", url);
	request_id_new(c->request_id);
	if (hc != NULL)
		memcpy(c->remote, hc->remote, sizeof(c->remote));
	else
		remote_format(conn, c->remote, sizeof(c->remote));
	c->query = json_object();
	atomic_fetch_add(&s->inflight, 1);
	return c;
}

/*
 * Request bodies and answers carry tokens, secret ids, JWTs and private
 * keys: their strings are zeroed before the memory goes back. Only values
 * this tree alone holds (refcount 1) are touched, so a handler that kept a
 * reference keeps its value.
 */
static void json_strings_wipe(json_t *j, int depth)
{
	const char *k;
	json_t *v;
	size_t i;

	if (j == NULL || depth > MAX_JSON_DEPTH + 2 || j->refcount != 1)
		return;
	switch (json_typeof(j)) {
	case JSON_STRING:
		OPENSSL_cleanse((void *)json_string_value(j), json_string_length(j));
		break;
	case JSON_OBJECT:
		json_object_foreach(j, k, v)
			json_strings_wipe(v, depth + 1);
		break;
	case JSON_ARRAY:
		json_array_foreach(j, i, v)
			json_strings_wipe(v, depth + 1);
		break;
	default:
		break;
	}
}

static void ctx_free(struct http_ctx *c)
{
	if (c == NULL)
		return;
	json_strings_wipe(c->rs.auth, 0);
	resp_clear(&c->rs);
	if (c->body != NULL) {
		/* Bodies carry private keys (config/ca, keys/import). */
		OPENSSL_cleanse(c->body, c->body_cap);
		free(c->body);
	}
	json_strings_wipe(c->json, 0);
	json_decref(c->json);
	json_decref(c->query);
	auth_token_clear(&c->tok);
	mount_unref(c->mount);
	auth_mount_unref(c->auth_mount);
	for (size_t i = 0; i < c->nheld; i++)
		mount_unref(c->held[i]);
	if (c->answer != NULL)
		MHD_destroy_response(c->answer); /* the client left before it was queued */
	atomic_fetch_sub(&c->srv->inflight, 1);
	free(c);
}

static double elapsed_ms(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) * 1e3 + (double)(now.tv_nsec - start->tv_nsec) / 1e6;
}

/* ---- Responses ---- */

static bool header_ok(const char *s, bool name)
{
	size_t n = strnlen(s, HTTP_MAX_HEADER_BYTES + 1);

	if (n == 0 || n > HTTP_MAX_HEADER_BYTES)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		/* RFC 9110 5.1/5.5: no controls in values, token characters in names. */
		if (ch < 0x20 || ch == 0x7f || (name && (ch == ':' || ch == ' ')))
			return false;
	}
	return true;
}

static void access_log(struct http_ctx *c, int status, const struct sg_err *err)
{
	struct server_log_request r;

	/* Nothing is formatted when the level drops these lines. */
	if (!server_log_enabled(SERVER_LOG_INFO))
		return;
	r.method = c->method;
	r.path = c->path[0] != '\0' ? c->path : c->url;
	r.status = status;
	r.duration_ms = elapsed_ms(&c->start);
	r.request_id = c->request_id;
	r.remote_addr = c->remote;
	r.error = err != NULL && sg_err_isset(err) ? err->detail : NULL;
	r.code = r.error != NULL ? sg_err_name(err->code) : NULL;
	server_log_request(&r);
}

/* A response body MHD frees through wipe_free: login answers hold tokens. */
struct wiped_buf {
	void *p;
	size_t n;
};

static void wipe_free(void *cls)
{
	struct wiped_buf *w = cls;

	OPENSSL_cleanse(w->p, w->n);
	free(w->p);
	free(w);
}

/* Queues status + body (taken: wiped and freed by MHD) with the API headers. */
static enum MHD_Result send_buf(struct http_ctx *c, int status, const char *content_type, void *body, size_t len,
                                const json_t *extra)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	bool cache_set = false;

	if (body != NULL) {
		struct wiped_buf *w = sg_xmalloc(sizeof(*w));

		w->p = body;
		w->n = len;
		r = MHD_create_response_from_buffer_with_free_callback_cls(len, body, wipe_free, w);
		if (r == NULL)
			wipe_free(w);
	} else {
		r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	}
	if (r == NULL)
		return MHD_NO;
	if (content_type != NULL && status != 204)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	if (extra != NULL) {
		const char *k;
		json_t *v;

		json_object_foreach((json_t *)extra, k, v) {
			/* An array is one field line per value (resp_header_add). */
			size_t nv = json_is_array(v) ? json_array_size(v) : 1;

			for (size_t i = 0; i < nv; i++) {
				const char *val = json_string_value(json_is_array(v) ? json_array_get(v, i) : v);

				if (val == NULL || !header_ok(k, true) || !header_ok(val, false) ||
				    strcasecmp(k, MHD_HTTP_HEADER_CONTENT_TYPE) == 0 ||
				    strcasecmp(k, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
					continue;
				if (strcasecmp(k, MHD_HTTP_HEADER_CACHE_CONTROL) == 0)
					cache_set = true;
				MHD_add_response_header(r, k, val);
			}
		}
	}
	if (!cache_set)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (c->in_worker) {
		/* Only libmicrohttpd's own thread may queue: on_access does, after the resume. */
		if (c->answer != NULL) {
			MHD_destroy_response(r);
			return MHD_NO; /* as MHD_queue_response refuses a second answer */
		}
		c->answer = r;
		c->answer_status = (unsigned)status;
		c->responded = true;
		return MHD_YES;
	}
	ret = MHD_queue_response(c->conn, (unsigned)status, r);
	MHD_destroy_response(r);
	c->responded = true;
	return ret;
}

/* ---- Audit (DESIGN.md rule 6): on record before a handler acts and before the client reads ---- */

static void audit_fill(struct http_ctx *c)
{
	struct audit_entry *e = &c->audit.e;
	const char *sub = NULL;
	unsigned m = 0;
	bool head = false;
	struct sg_err ignored;

	sg_err_init(&ignored);
	memset(e, 0, sizeof(*e));
	e->request_id = c->request_id;
	e->operation = "unknown";
	if (router_method_parse(c->method, json_string_value(json_object_get(c->query, "list")), &m, &head,
	                        &ignored) == 0)
		e->operation = m == HTTP_GET ? "read" : m == HTTP_LIST ? "list" : m == HTTP_DELETE ? "delete"
		             : m == HTTP_PATCH ? "patch" : "update";
	e->path = c->path[0] != '\0' ? c->path : c->url;
	e->remote_addr = c->remote;
	if (c->mount != NULL) {
		e->mount_type = c->mount->type;
		snprintf(c->audit.mount_point, sizeof(c->audit.mount_point), "%s/", c->mount->path);
		e->mount_point = c->audit.mount_point;
	} else if (c->auth_mount != NULL) {
		e->mount_type = c->auth_mount->type;
		snprintf(c->audit.mount_point, sizeof(c->audit.mount_point), "auth/%s/", c->auth_mount->path);
		e->mount_point = c->audit.mount_point;
	} else if (c->path[0] != '\0' && router_area(c->path, &sub) == ROUTER_AREA_SYS) {
		e->mount_type = "system";
	}
	/* A refused token is on record too (HMAC-ed): sys/audit-hash finds who tried it. */
	e->client_token = c->rq.client_token != NULL
	                      ? c->rq.client_token
	                      : auth_token_from_headers(
	                            MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "X-Vault-Token"),
	                            MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION));
	e->tok = c->rq.tok;
	e->data = c->json;
	e->query = c->query;
}

/* The request line, before the handler. Effects wait until it is durable; reads only until the response. */
static int audit_in(struct http_ctx *c)
{
	struct sg_err err;
	bool sync;

	if (c->audit.logged || audit_path_exempt(c->path))
		return 0;
	audit_fill(c);
	sync = strcmp(c->audit.e.operation, "read") != 0 && strcmp(c->audit.e.operation, "list") != 0;
	sg_err_init(&err);
	if (audit_log_request(c->srv->audit, &c->audit.e, sync, &err) != 0)
		return -1;
	c->audit.logged = true;
	return 0;
}

/* The response line (and the request line of a request refused before its handler), durable before sending. */
static int audit_out(struct http_ctx *c, int status, const struct resp *rs, const struct sg_err *rerr)
{
	struct audit_entry e;
	struct sg_err err;

	if (audit_path_exempt(c->path))
		return 0;
	sg_err_init(&err);
	if (!c->audit.logged) {
		audit_fill(c);
		c->audit.e.error = rerr != NULL ? rerr->detail : NULL;
		if (audit_log_request(c->srv->audit, &c->audit.e, false, &err) != 0)
			return -1;
		c->audit.logged = true;
	}
	e = c->audit.e;
	e.tok = c->rq.tok;
	e.status = status;
	e.rs = rs;
	e.error = rerr != NULL ? rerr->detail : NULL;
	return audit_log_response(c->srv->audit, &e, &err);
}

/* Fail closed: nothing a handler produced leaves unaudited; the answer is a plain 500. */
static enum MHD_Result send_audit_failed(struct http_ctx *c)
{
	struct sg_err err;
	char *body = NULL;
	size_t len = 0;
	int status;

	sg_err_init(&err);
	sg_err_set(&err, SG_INTERNAL, "internal error");
	envelope_error(&err, &status, &body, &len);
	access_log(c, status, &err);
	return send_buf(c, status, "application/json", body, len, NULL);
}

static enum MHD_Result send_error(struct http_ctx *c, const struct sg_err *err)
{
	char *body = NULL;
	size_t len = 0;
	int status;

	envelope_error(err, &status, &body, &len);
	if (audit_out(c, status, NULL, err) != 0) {
		free(body);
		return send_audit_failed(c);
	}
	if (status >= 500) {
		json_t *f = json_pack("{s:s, s:s}", "request_id", c->request_id, "code", sg_err_name(err->code));

		json_object_set_new(f, "error", server_json_string_safe(err->detail));
		if (err->log[0] != '\0')
			json_object_set_new(f, "openssl", server_json_string_safe(err->log));
		server_log(SERVER_LOG_ERROR, "request failed", f);
	} else if (err->log[0] != '\0' && server_log_enabled(SERVER_LOG_DEBUG)) {
		/* A client's bad input that OpenSSL rejected: the details help debugging, never the client. */
		server_log(SERVER_LOG_DEBUG, "request refused",
		           json_pack("{s:s, s:s, s:o}", "request_id", c->request_id, "code", sg_err_name(err->code),
		                     "openssl", server_json_string_safe(err->log)));
	}
	access_log(c, status, err);
	return send_buf(c, status, "application/json", body, len, NULL);
}

static enum MHD_Result send_success(struct http_ctx *c, const char *mount_type)
{
	struct resp *rs = &c->rs;
	char *body = NULL;
	size_t len = 0;
	int status;

	if (rs->content_type != NULL) {
		status = rs->status != 0 ? rs->status : 200;
		if (!header_ok(rs->content_type, false)) {
			struct sg_err err;

			sg_err_init(&err);
			sg_err_set(&err, SG_INTERNAL, "handler produced an invalid content type");
			return send_error(c, &err);
		}
		if (audit_out(c, status, rs, NULL) != 0)
			return send_audit_failed(c);
		body = (char *)rs->body;
		len = rs->body_len;
		rs->body = NULL;
		access_log(c, status, NULL);
		return send_buf(c, status, rs->content_type, body, len, rs->headers);
	}
	envelope_render(rs, c->request_id, mount_type, &status, &body, &len);
	if (audit_out(c, status, rs, NULL) != 0) {
		free(body);
		return send_audit_failed(c);
	}
	access_log(c, status, NULL);
	return send_buf(c, status, "application/json", body, len, rs->headers);
}

/* ---- Dispatch ---- */

static int authenticate(struct http_ctx *c, struct sg_err *err)
{
	const char *tok = auth_token_from_headers(
	    MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "X-Vault-Token"),
	    MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION));
	int rc;

	if (c->rq.tok != NULL)
		return 0; /* once per request: a use-limited token is counted once */
	if (tok == NULL)
		return sg_err_set(err, SG_MISSING_TOKEN, "permission denied");
	/* Expired, unknown, used-up and out-of-CIDR tokens all read as Vault's plain 403. */
	rc = auth_token_authenticate(c->srv->tokens, tok, c->remote, &c->tok, err);
	if (rc < 0)
		return -1;
	if (rc == 0)
		return sg_err_set(err, SG_PERMISSION_DENIED, "permission denied");
	c->rq.tok = &c->tok;
	c->rq.client_token = tok;
	c->rq.token_accessor = c->tok.accessor;
	return 0;
}

/*
 * The client certificates of a TLS connection (leaf first) as GnuTLS keeps
 * them: unverified here, the auth/cert method decides what they are worth
 * (TLS itself proved the client holds the leaf's key).
 */
static const struct req_peer *peer_certs(struct http_ctx *c)
{
	const union MHD_ConnectionInfo *ci;
	const gnutls_datum_t *certs;
	gnutls_session_t session;
	unsigned n = 0;

	if (c->srv->cfg.tls_disable)
		return NULL;
	ci = MHD_get_connection_info(c->conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (ci == NULL || ci->tls_session == NULL)
		return NULL;
	session = (gnutls_session_t)ci->tls_session;
	if (gnutls_certificate_type_get(session) != GNUTLS_CRT_X509)
		return NULL;
	certs = gnutls_certificate_get_peers(session, &n);
	if (certs == NULL || n == 0)
		return NULL;
	c->peer.n = 0;
	for (unsigned i = 0; i < n && i < HTTP_MAX_PEER_CERTS; i++) {
		c->peer.der[i] = certs[i].data;
		c->peer.len[i] = certs[i].size;
		c->peer.n++;
	}
	return &c->peer;
}

/*
 * Binary uploads (OCSP requests, DER certificates and CSRs) reach handlers raw, unparsed; so do
 * ACME's JWS bodies, whose parse errors must be problem documents with a nonce (RFC 8555 6.5, 6.7).
 */
static bool binary_body(struct MHD_Connection *conn)
{
	static const char *const types[] = {"application/ocsp-request", "application/pkcs10",
	                                    "application/pkix-cert", "application/pkix-crl",
	                                    "application/octet-stream", "application/jose+json"};
	const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);

	if (ct == NULL)
		return false;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		size_t n = strlen(types[i]);

		if (strncasecmp(ct, types[i], n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' '))
			return true;
	}
	return false;
}

/*
 * Routing: the method, the normalized path, the table of its area and the
 * route. Done once per request on libmicrohttpd's thread, before the
 * request is answered there (ROUTE_INLINE) or handed to a worker. Never
 * blocks (lookups under read locks, no store access): authentication and
 * everything that may wait happen in handle().
 */
static void http_resolve(struct http_ctx *c)
{
	struct server *s = c->srv;

	c->resolved = true;
	c->found = ROUTER_NOT_FOUND;
	sg_err_init(&c->resolve_err);
	if (router_method_parse(c->method, MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, "list"),
	                        &c->mbits, &c->head, &c->resolve_err) != 0)
		return;
	if (c->url_too_long || router_path_normalize(c->url, c->path, sizeof(c->path)) != 0) {
		c->path[0] = '\0';
		envelope_no_route(&c->resolve_err, c->url[0] == '/' ? c->url + 1 : c->url);
		return;
	}
	switch (router_area(c->path, &c->sub)) {
	case ROUTER_AREA_SYS:
		c->table = sys_routes;
		c->ntable = sys_routes_n;
		c->mount_type = "system";
		break;
	case ROUTER_AREA_AUTH:
		/* auth/<mount path>/<rest>: the table of the mount's method type. */
		c->auth_mount = auth_mounts_route(s->auth_mounts, c->sub, &c->sub);
		if (c->auth_mount != NULL) {
			c->table = auth_method_routes(c->auth_mount->type, &c->ntable);
			c->mount_type = c->auth_mount->type;
		}
		break;
	case ROUTER_AREA_MOUNT:
		c->mount = mount_table_route(&s->mounts, c->path, &c->sub);
		if (c->mount != NULL && strcmp(c->mount->type, "pki") == 0) {
			c->table = pki_routes;
			c->ntable = pki_routes_n;
			c->mount_type = c->mount->type;
		}
		break;
	}
	if (c->table == NULL) {
		envelope_no_route(&c->resolve_err, c->path);
		return;
	}
	c->found = router_lookup(c->table, c->ntable, c->sub, c->mbits, &c->route, &c->caps);
}

/*
 * A request libmicrohttpd's thread answers itself: a public route marked
 * ROUTE_INLINE (cheap, served from memory), and no audit device, whose
 * durable write would make the thread wait.
 */
static bool http_inline_ok(const struct http_ctx *c)
{
	return c->route != NULL && c->route->auth == ROUTE_AUTH_NONE && (c->route->methods & ROUTE_INLINE) != 0 &&
	       audit_device_count(c->srv->audit) == 0;
}

bool req_inline(const struct req *rq)
{
	return cur_ctx != NULL && &cur_ctx->rq == rq && cur_ctx->inline_run;
}

static enum MHD_Result handle(struct http_ctx *c)
{
	struct server *s = c->srv;
	struct sg_err err;
	const struct route *route;
	unsigned method;
	int rc;

	sg_err_init(&err);
	ERR_clear_error();
	if (!c->resolved)
		http_resolve(c);
	if (sg_err_isset(&c->resolve_err))
		return send_error(c, &c->resolve_err);
	route = c->route;
	method = c->mbits;
	if (c->found != ROUTER_FOUND) {
		/*
		 * As Vault: inside a mount (sys/ included) only an authenticated
		 * caller learns which paths and methods exist; others get 403.
		 */
		if (authenticate(c, &err) != 0)
			return send_error(c, &err);
		/* ... and only one whose policies allow the operation there: the rest get 403 too. */
		c->rq.srv = s;
		c->rq.path = c->path;
		if (authz_request(&c->rq, c->table, c->ntable, NULL, method, &err) != 0)
			return send_error(c, &err);
		if (c->found == ROUTER_BAD_METHOD)
			sg_err_set(&err, SG_METHOD_NOT_ALLOWED, "unsupported operation");
		else
			envelope_no_route(&err, c->path);
		return send_error(c, &err);
	}
	/* DESIGN.md rule 5: authorization happens here, before any handler. */
	if (route->auth == ROUTE_AUTH_TOKEN && authenticate(c, &err) != 0)
		return send_error(c, &err);
	if (c->json == NULL) {
		if (binary_body(c->conn)) {
			c->json = json_object();
		} else if (server_json_parse_object((const char *)c->body, c->body_len, MAX_JSON_DEPTH, &c->json,
		                                    &err) != 0) {
			return send_error(c, &err);
		}
	}
	c->rq.srv = s;
	c->rq.method = (enum http_method)method;
	c->rq.head = c->head;
	c->rq.path = c->path;
	c->rq.mount = c->mount;
	c->rq.auth_mount = c->auth_mount;
	c->rq.peer = peer_certs(c);
	c->rq.sub = c->sub;
	for (size_t i = 0; i < c->caps.n; i++) {
		c->rq.cap_name[i] = c->caps.name[i];
		c->rq.cap_val[i] = c->caps.val[i];
	}
	c->rq.body = c->json;
	c->rq.raw = c->body != NULL ? c->body : (const unsigned char *)"";
	c->rq.raw_len = c->body_len;
	c->rq.remote_addr = c->remote;
	c->rq.request_id = c->request_id;
	c->rq.query = c->query;
	cur_ctx = c;
	/* The token's policies decide (DESIGN.md rule 5); the existence check may read through a GET handler. */
	if (route->auth == ROUTE_AUTH_TOKEN && authz_request(&c->rq, c->table, c->ntable, route, method, &err) != 0) {
		cur_ctx = NULL;
		return send_error(c, &err);
	}
	if (audit_in(c) != 0) {
		cur_ctx = NULL;
		return send_audit_failed(c);
	}
	rc = route->fn(&c->rq, &c->rs, &err);
	cur_ctx = NULL;
	if (rc == ROUTE_RETRY && c->inline_run) {
		/* The handler would block: a worker runs it again from the start (nothing was sent or audited). */
		resp_clear(&c->rs);
		c->audit.logged = false;
		c->retry_on_pool = true;
		ERR_clear_error();
		return MHD_YES;
	}
	if (rc != 0) {
		if (!sg_err_isset(&err))
			sg_err_set(&err, SG_INTERNAL, "internal error");
		ERR_clear_error();
		return send_error(c, &err);
	}
	ERR_clear_error();
	return send_success(c, c->mount_type);
}

/* ---- Worker pool (DESIGN.md rule 10) ---- */

/*
 * libmicrohttpd pins a connection to one of its threads, so a handler that
 * waits there (the store's group-commit fsync, RSA key generation) would
 * stall every other connection of that thread. Its threads (one per core)
 * therefore only do I/O: a complete request is handed to these workers.
 * The connection is suspended first, a worker runs handle() and keeps the
 * response it builds in the context, then resumes the connection, and
 * libmicrohttpd calls on_access again on its own thread, which queues it
 * (MHD_queue_response is only valid there). Many workers may wait for one
 * fsync at once: that is how requests share a commit.
 *
 * Ownership: from the suspend to MHD_resume_connection the worker owns the
 * context (libmicrohttpd neither reads, times out nor completes a suspended
 * connection); after the resume libmicrohttpd does, and may free it at
 * once through on_completed when the client has gone, so a worker never
 * touches a context after resuming its connection. Every dispatched
 * connection is resumed before MHD_stop_daemon (which must not find one
 * suspended): http_stop drains the queue and joins the workers first.
 */
struct http_pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct http_ctx *head, *tail; /* requests waiting for a worker */
	size_t idle;                  /* workers waiting on cv: a hand-off wakes one only if there is one */
	bool stopping;                /* no more hand-offs; workers exit once the queue is empty */
	size_t nthreads;
	pthread_t threads[];
};

static void pool_run(struct http_ctx *c)
{
	struct MHD_Connection *conn = c->conn;

	c->in_worker = true;
	if (handle(c) != MHD_YES)
		c->answer_fail = true;
	c->in_worker = false;
	atomic_store(&c->worker_done, true);
	/* c belongs to libmicrohttpd from here on. */
	MHD_resume_connection(conn);
}

static void *pool_main(void *arg)
{
	struct http_pool *p = arg;

	for (;;) {
		struct http_ctx *c;

		pthread_mutex_lock(&p->mu);
		while (p->head == NULL && !p->stopping) {
			p->idle++;
			pthread_cond_wait(&p->cv, &p->mu);
			p->idle--;
		}
		c = p->head;
		if (c == NULL) {
			pthread_mutex_unlock(&p->mu);
			return NULL; /* stopping, and nothing left to answer */
		}
		p->head = c->next;
		if (p->head == NULL)
			p->tail = NULL;
		pthread_mutex_unlock(&p->mu);
		c->next = NULL;
		pool_run(c);
	}
}

/* Called by libmicrohttpd's thread once the body is complete. */
static enum MHD_Result pool_dispatch(struct http_ctx *c)
{
	struct http_pool *p = c->srv->pool;
	bool wake;

	pthread_mutex_lock(&p->mu);
	if (p->stopping) {
		/* Shutting down: a late request on a kept-alive connection is answered here. */
		pthread_mutex_unlock(&p->mu);
		return handle(c);
	}
	c->dispatched = true;
	/* Suspended before any worker can see it, so the resume always follows the suspend. */
	MHD_suspend_connection(c->conn);
	if (p->tail != NULL)
		p->tail->next = c;
	else
		p->head = c;
	p->tail = c;
	/* A busy worker looks at the queue before it waits: no idle one, no wake-up needed. */
	wake = p->idle > 0;
	pthread_mutex_unlock(&p->mu);
	if (wake)
		pthread_cond_signal(&p->cv); /* after the unlock: the woken worker does not block on mu at once */
	return MHD_YES;
}

/* on_access after the resume: the worker's answer. */
static enum MHD_Result pool_answer(struct http_ctx *c)
{
	enum MHD_Result ret;

	/* libmicrohttpd keeps a suspended connection away from us; should it call anyway, the worker still owns c. */
	if (!atomic_load(&c->worker_done))
		return MHD_YES;
	if (c->answer_fail || c->answer == NULL)
		return MHD_NO;
	ret = MHD_queue_response(c->conn, c->answer_status, c->answer);
	MHD_destroy_response(c->answer);
	c->answer = NULL;
	return ret;
}

/* Answers everything queued, then joins the workers. The pool stays valid (hand-offs run inline). */
static void pool_drain(struct http_pool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (size_t i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	p->nthreads = 0;
}

static void pool_free(struct http_pool *p)
{
	if (p == NULL)
		return;
	pool_drain(p);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

static struct http_pool *pool_start(unsigned n, struct sg_err *err)
{
	struct http_pool *p = sg_xcalloc(1, sizeof(*p) + n * sizeof(pthread_t));

	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	for (; p->nthreads < n; p->nthreads++) {
		int rc = pthread_create(&p->threads[p->nthreads], NULL, pool_main, p);

		if (rc != 0) {
			sg_err_set(err, SG_INTERNAL, "cannot start request worker %zu of %u: %s", p->nthreads + 1, n,
			           strerror(rc));
			pool_free(p);
			return NULL;
		}
	}
	return p;
}

static enum MHD_Result send_too_large(struct http_ctx *c)
{
	struct sg_err err;

	sg_err_init(&err);
	sg_err_set(&err, SG_TOO_LARGE, "request body too large: the limit is %zu bytes", c->srv->cfg.max_request_size);
	return send_error(c, &err);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                 const char *version, const char *upload_data, size_t *upload_size, void **con_cls)
{
	struct server *s = cls;
	struct http_ctx *c = *con_cls;
	size_t max = s->cfg.max_request_size;

	(void)version;
	if (c == NULL) {
		const char *cl;

		c = ctx_new(s, conn, url, method);
		*con_cls = c;
		MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, query_cb, c);
		cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl != NULL) {
			char *end;
			unsigned long long n;

			errno = 0;
			n = strtoull(cl, &end, 10);
			/* Refused before a byte of the body is read. */
			if (errno != 0 || n > max)
				return send_too_large(c);
			if (end != cl && n > 0)
				c->body_cap = (size_t)n;
		}
		return MHD_YES;
	}
	if (*upload_size > 0) {
		size_t n = *upload_size;

		*upload_size = 0;
		if (c->responded)
			return MHD_YES; /* answered already: discard */
		if (c->body_len + n > max) {
			enum MHD_Result r = send_too_large(c);

			/* libmicrohttpd 0.9.x cannot answer before the body ends: the connection closes instead. */
			if (r != MHD_YES)
				server_log(SERVER_LOG_DEBUG, "body over the limit while streaming: connection closed",
				           json_pack("{s:s}", "request_id", c->request_id));
			return r;
		}
		if (c->body == NULL || c->body_len + n > c->body_cap) {
			size_t cap = c->body_cap > c->body_len + n ? c->body_cap : c->body_len + n;
			unsigned char *nb;

			if (c->body != NULL && cap < max / 2 && cap < 2 * c->body_len)
				cap = 2 * c->body_len;
			if (cap > max)
				cap = max;
			nb = sg_xmalloc(cap);
			if (c->body != NULL) {
				memcpy(nb, c->body, c->body_len);
				OPENSSL_cleanse(c->body, c->body_cap);
				free(c->body);
			}
			c->body = nb;
			c->body_cap = cap;
		}
		memcpy(c->body + c->body_len, upload_data, n);
		c->body_len += n;
		return MHD_YES;
	}
	if (c->dispatched)
		return pool_answer(c);
	if (c->responded)
		return MHD_YES;
	if (!c->resolved)
		http_resolve(c);
	if (http_inline_ok(c)) {
		/* No hand-off (suspend, queue, wake-up, resume) for an answer from memory. */
		enum MHD_Result r;

		c->inline_run = true;
		r = handle(c);
		c->inline_run = false;
		if (!c->retry_on_pool)
			return r;
	}
	return pool_dispatch(c);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	(void)toe;
	ctx_free(*con_cls);
	*con_cls = NULL;
}

/*
 * Every TLS connection asks for a client certificate (optional, as Vault's
 * listener does) so auth/cert can log a workload in with the certificate
 * it holds. The session exists before its handshake runs. No CA names go
 * in the request: an empty list lets clients (Go's crypto/tls included)
 * send whatever certificate they have; the cert roles judge it.
 */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
	const union MHD_ConnectionInfo *ci;
	struct server *s = cls;
	struct http_conn *hc;

	if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		free(*socket_context);
		*socket_context = NULL;
		return;
	}
	if (toe != MHD_CONNECTION_NOTIFY_STARTED)
		return;
	/* Formatted once per connection, not per kept-alive request. */
	hc = sg_xcalloc(1, sizeof(*hc));
	remote_format(conn, hc->remote, sizeof(hc->remote));
	*socket_context = hc;
	if (s->cfg.tls_disable)
		return;
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (ci == NULL || ci->tls_session == NULL)
		return;
	gnutls_certificate_server_set_request((gnutls_session_t)ci->tls_session, GNUTLS_CERT_REQUEST);
	gnutls_certificate_send_x509_rdn_sequence((gnutls_session_t)ci->tls_session, 1);
}

__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];
	size_t n;

	(void)cls;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	server_log(SERVER_LOG_WARN, "libmicrohttpd", json_pack("{s:s}", "detail", buf));
}

/* ---- Start and stop ---- */

/*
 * libmicrohttpd's own unescaper turns "%00" into a NUL, and the path ends
 * there for every C string that follows: "roles/prod%00x" would name role
 * "prod". This one decodes "%HH" like it, except into control bytes (NUL
 * included): those stay encoded, so the router and the name checks see
 * "%00" and refuse it. Used for the path and for query names and values.
 * The result is never longer than the input, as libmicrohttpd requires.
 */
static int hex_value(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

static size_t url_unescape(void *cls, struct MHD_Connection *conn, char *s)
{
	char *w = s;

	(void)cls;
	(void)conn;
	for (const char *r = s; *r != '\0';) {
		int hi, lo;

		if (r[0] == '%' && (hi = hex_value(r[1])) >= 0 && (lo = hex_value(r[2])) >= 0) {
			unsigned char ch = (unsigned char)(hi << 4 | lo);

			if (ch >= 0x20 && ch != 0x7f) {
				*w++ = (char)ch;
				r += 3;
				continue;
			}
		}
		*w++ = *r++;
	}
	*w = '\0';
	return (size_t)(w - s);
}

int http_start(struct server *s, struct sg_err *err)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct MHD_OptionItem opts[16];
	size_t no = 0;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned char *cert = NULL, *key = NULL;
	size_t cert_len = 0, key_len = 0;
	bool tls = !s->cfg.tls_disable;
	int rc = -1;

	if (server_config_listen_parse(s->cfg.listen_address, &ss, &sslen, err) != 0)
		goto out;
	if (tls) {
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
			sg_err_set(err, SG_INTERNAL, "this libmicrohttpd has no TLS support; set tls_disable or rebuild");
			goto out;
		}
		if (s->cfg.tls_cert_file == NULL || s->cfg.tls_key_file == NULL) {
			sg_err_set(err, SG_BAD_REQUEST, "tls_cert_file and tls_key_file are required unless tls_disable is true");
			goto out;
		}
		if (sg_file_read(s->cfg.tls_cert_file, HTTP_MAX_TLS_FILE_BYTES, &cert, &cert_len, err) != 0 ||
		    sg_file_read(s->cfg.tls_key_file, HTTP_MAX_TLS_FILE_BYTES, &key, &key_len, err) != 0)
			goto out;
		flags |= MHD_USE_TLS;
		opts[no++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, cert};
		opts[no++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, key};
		opts[no++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)HTTP_TLS_PRIORITIES};
	}
	opts[no++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, s};
	if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES)
		flags |= MHD_USE_EPOLL;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	opts[no++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &ss};
	/* libmicrohttpd's threads only do I/O: one per core; handlers run on the worker pool (cfg.threads). */
	if (cores < 1)
		cores = 1;
	if (cores > HTTP_MAX_IO_THREADS)
		cores = HTTP_MAX_IO_THREADS;
	opts[no++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)cores, NULL};
	opts[no++] = (struct MHD_OptionItem){MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t)url_unescape, NULL};
	opts[no++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, HTTP_CONNECTION_LIMIT, NULL};
	opts[no++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, HTTP_CONNECTION_TIMEOUT_S, NULL};
	opts[no++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT, HTTP_CONNECTION_MEMORY, NULL};
	opts[no++] = (struct MHD_OptionItem){MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, NULL};
	opts[no++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
	if ((s->pool = pool_start(s->cfg.threads, err)) == NULL)
		goto out;
	/* The logger goes first: libmicrohttpd logs while it reads the options after it. */
	s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_access, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
	                             MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
	if (s->daemon == NULL) {
		sg_err_set(err, SG_INTERNAL, "cannot listen on %s (address in use, bad TLS files, or no permission)",
		           s->cfg.listen_address);
		pool_free(s->pool);
		s->pool = NULL;
		goto out;
	}
	rc = 0;
out:
	/* libmicrohttpd has loaded the key into its TLS library: our copy goes now. */
	if (key != NULL) {
		OPENSSL_cleanse(key, key_len);
		free(key);
	}
	free(cert);
	return rc;
}

void http_stop(struct server *s, int grace_ms)
{
	MHD_socket fd;

	if (s->daemon == NULL)
		return;
	fd = MHD_quiesce_daemon(s->daemon);
	for (int waited = 0; waited < grace_ms && atomic_load(&s->inflight) > 0; waited += 10) {
		struct timespec ts = {0, 10 * 1000 * 1000};

		nanosleep(&ts, NULL);
	}
	/* Every suspended connection is resumed before MHD_stop_daemon, which must not find one. */
	pool_drain(s->pool);
	MHD_stop_daemon(s->daemon);
	s->daemon = NULL;
	pool_free(s->pool);
	s->pool = NULL;
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
}
