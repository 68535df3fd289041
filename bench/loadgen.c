/*
 * sigil-bench: a closed-loop HTTP/1.1 load generator for Sigil's (and
 * Vault's) pki/sign/:role and pki/issue/:role.
 *
 *   sigil-bench -url http://127.0.0.1:8200 -token T -mode sign|issue -role R
 *               [-mount pki] [-c 64] [-d 10s] [-n max] [-csr file] [-cn name]
 *               [-timeout 30s]
 *   sigil-bench -url http://127.0.0.1:8200 -mode ocsp -CAfile chain.pem
 *               (-issuer issuer.pem -certs leaves.pem | -req request.der) [-mount pki] [-c 64] [-d 10s]
 *
 * -mode ocsp sends RFC 6960 A.1 GETs (base64, percent-encoded) to
 * /v1/<mount>/ocsp/..., unauthenticated: the responder's pre-signed path.
 * With -certs, one request per certificate of the PEM file (SHA-1 CertID,
 * no nonce: RFC 5019 2.1), sent round-robin, so the server looks up many
 * distinct serials; -req sends one DER request (`openssl ocsp -reqout`).
 * Before the load, every request is sent once and its answer checked:
 * signature through -CAfile, status good, validity window. During the load
 * an answer must be byte-equal to the checked one, or pass the same check
 * again (the responder re-signs in the background).
 *
 * One thread, raw non-blocking sockets and epoll: -c keep-alive connections,
 * each with exactly one request in flight, so the concurrency is what the
 * server sees. The request is built once (a sign body carries the CSR, from
 * -csr or a fresh EC P-256 key). Non-2xx answers, connection failures,
 * malformed responses and per-request timeouts count as errors. At the
 * deadline no new request starts; answers still in flight are waited for
 * (bounded by the request timeout) and then the connections are dropped.
 *
 * Output: a human summary, then one "RESULT key=value ..." line for scripts.
 * Plain HTTP only: the point is the server's issuance path, not TLS.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "bench/acmeload.h"
#include "bench/benchutil.h"

#define MAX_CONNS 4096
#define MAX_URL_BYTES 512
#define MAX_NAME_BYTES 256          /* role, mount, CN, token */
#define MAX_CSR_BYTES (64u << 10)   /* as the server's CA_MAX_CSR_BYTES */
#define MAX_OCSP_REQ_BYTES 8192     /* as the server's OCSP_MAX_REQUEST_BYTES */
#define MAX_REQ_BYTES (256u << 10)
#define MAX_RESP_HEADER_BYTES (16u << 10)
#define MAX_RESP_BYTES (4u << 20)   /* headers + body of one answer */
#define MAX_SAMPLES (8u << 20)      /* latency samples kept: bounds the count */
#define RETRY_DELAY_MS 100          /* before reconnecting after a failure */
#define EPOLL_BATCH 256

enum conn_state { C_IDLE, C_CONNECTING, C_WRITING, C_READING };

struct conn {
	int fd;
	enum conn_state state;
	size_t sent;
	char *buf;                 /* response bytes */
	size_t len, cap;
	size_t body_start;         /* 0 until the header is complete */
	long long content_length;  /* -1 when absent */
	bool chunked, close_after;
	int status;
	uint64_t t_start;          /* request start, monotonic microseconds */
	uint64_t retry_at;         /* C_IDLE: reconnect not before this */
	const char *req;           /* the request being sent: req_buf, or one of -mode ocsp's */
	size_t req_len;
	size_t ocsp_i;             /* -mode ocsp: index of that request */
	uint32_t events;           /* what epoll watches for fd: an unchanged watch costs no syscall */
};

struct opts {
	char host[MAX_URL_BYTES], port[16];
	char token[MAX_NAME_BYTES], role[MAX_NAME_BYTES], mount[MAX_NAME_BYTES], cn[MAX_NAME_BYTES];
	bool sign;
	bool ocsp;                 /* -mode ocsp: GETs of OCSP requests */
	const char *ocsp_req_file; /* -req: one DER request */
	const char *ocsp_issuer;   /* -issuer and -certs: one request per certificate */
	const char *ocsp_certs;
	const char *ocsp_cafile;   /* -CAfile: trust anchors the answers are verified with */
	int conns;
	uint64_t duration_ms, timeout_ms;
	uint64_t max_requests;
	const char *csr_file;
};

struct stats {
	uint64_t started, done, ok, http_err, conn_err, proto_err, timeouts;
	uint64_t ok_in_window;     /* 2xx answered before the load stopped: the throughput */
	uint64_t window_end;       /* when the load stopped (deadline or -n reached) */
	uint32_t *lat_us;
	size_t nlat;
	bool shown_error;
};

static struct opts o;
static struct stats st;
static char *req_buf;
static size_t req_len;
static struct addrinfo *server_addr;
static int ep = -1;

static void ocsp_pick(struct conn *c);

static void usage(void)
{
	fprintf(stderr,
	        "usage: sigil-bench -url http://HOST:PORT -token T -mode sign|issue -role R\n"
	        "                   [-mount pki] [-c 64] [-d 10s] [-n max-requests] [-csr file]\n"
	        "                   [-cn name] [-timeout 30s]\n"
	        "       sigil-bench -url http://HOST:PORT -mode ocsp -CAfile chain.pem\n"
	        "                   (-issuer issuer.pem -certs leaves.pem | -req request.der)\n"
	        "                   [-mount pki] [-c 64] [-d 10s] [-n max-requests] [-timeout 30s]\n"
	        "  -token defaults to $SIGIL_TOKEN; -cn to bench.example.com; without -csr a\n"
	        "  sign run uses a fresh EC P-256 key.\n");
	exit(2);
}

static void parse_args(int argc, char **argv)
{
	const char *url = NULL, *mode = NULL;
	memcpy(o.mount, "pki", 4);
	memcpy(o.cn, "bench.example.com", sizeof "bench.example.com");
	o.conns = 64;
	o.duration_ms = 10000;
	o.timeout_ms = 30000;
	o.max_requests = MAX_SAMPLES;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-h") == 0 || strcmp(a, "-help") == 0 || strcmp(a, "--help") == 0)
			usage();
		if (i + 1 >= argc)
			usage();
		const char *v = argv[++i];
		if (strcmp(a, "-url") == 0)
			url = v;
		else if (strcmp(a, "-token") == 0)
			bench_copy_str(o.token, sizeof o.token, v, "-token");
		else if (strcmp(a, "-mode") == 0)
			mode = v;
		else if (strcmp(a, "-role") == 0)
			bench_copy_str(o.role, sizeof o.role, v, "-role");
		else if (strcmp(a, "-mount") == 0)
			bench_copy_str(o.mount, sizeof o.mount, v, "-mount");
		else if (strcmp(a, "-cn") == 0)
			bench_copy_str(o.cn, sizeof o.cn, v, "-cn");
		else if (strcmp(a, "-csr") == 0)
			o.csr_file = v;
		else if (strcmp(a, "-req") == 0)
			o.ocsp_req_file = v;
		else if (strcmp(a, "-issuer") == 0)
			o.ocsp_issuer = v;
		else if (strcmp(a, "-certs") == 0)
			o.ocsp_certs = v;
		else if (strcmp(a, "-CAfile") == 0)
			o.ocsp_cafile = v;
		else if (strcmp(a, "-c") == 0)
			o.conns = (int)bench_parse_int(v, 1, MAX_CONNS, "-c");
		else if (strcmp(a, "-n") == 0)
			o.max_requests = (uint64_t)bench_parse_int(v, 1, MAX_SAMPLES, "-n");
		else if (strcmp(a, "-d") == 0) {
			if (!(o.duration_ms = bench_parse_duration_ms(v)))
				bench_die("-d must be a duration like 10s, 500ms or 2m (at most 1h)");
		} else if (strcmp(a, "-timeout") == 0) {
			if (!(o.timeout_ms = bench_parse_duration_ms(v)))
				bench_die("-timeout must be a duration like 30s");
		} else
			usage();
	}
	if (!url || !mode)
		usage();
	o.ocsp = strcmp(mode, "ocsp") == 0;
	if (o.ocsp && !o.ocsp_req_file == !(o.ocsp_issuer && o.ocsp_certs))
		bench_die("-mode ocsp needs -issuer and -certs, or -req (a DER OCSP request, e.g. from openssl ocsp -reqout)");
	if (o.ocsp && !o.ocsp_cafile)
		bench_die("-mode ocsp needs -CAfile (the chain its answers are verified with)");
	if (!o.ocsp && !o.role[0])
		usage();
	bench_parse_url(url, true, o.host, sizeof o.host, o.port, sizeof o.port);
	if (strcmp(mode, "sign") == 0)
		o.sign = true;
	else if (strcmp(mode, "issue") != 0 && !o.ocsp)
		bench_die("-mode must be sign, issue or ocsp");
	if (!o.token[0] && !o.ocsp) {
		const char *env = getenv("SIGIL_TOKEN");
		if (!env)
			bench_die("no -token and no $SIGIL_TOKEN");
		bench_copy_str(o.token, sizeof o.token, env, "$SIGIL_TOKEN");
	}
	/* These go into the request line and headers verbatim. */
	const char *fields[] = {o.token, o.role, o.mount, o.cn, o.host};
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
		for (const char *c = fields[i]; *c; c++)
			if ((unsigned char)*c < 0x21 || *c == 0x7f || *c == '"' || *c == '\\')
				bench_die("-token, -role, -mount, -cn and the host must be printable without quotes or spaces");
}

/* ---------------------------------------------------------------- the request */

static char *read_file(const char *path, size_t cap, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = bench_xmalloc(cap + 1);
	size_t n = fread(buf, 1, cap + 1, f);
	bool err = ferror(f);
	fclose(f);
	if (err || n > cap) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* A PEM CSR for a fresh EC P-256 key with CN = cn. */
static char *make_csr(const char *cn)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_NAME_new();
	BIO *bio = BIO_new(BIO_s_mem());
	char *out = NULL;
	if (!key || !req || !name || !bio)
		goto out;
	if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0) ||
	    !X509_REQ_set_version(req, 0) || !X509_REQ_set_subject_name(req, name) ||
	    !X509_REQ_set_pubkey(req, key) || X509_REQ_sign(req, key, EVP_sha256()) <= 0 ||
	    !PEM_write_bio_X509_REQ(bio, req))
		goto out;
	char *mem = NULL;
	long n = BIO_get_mem_data(bio, &mem);
	if (n <= 0)
		goto out;
	out = bench_xmalloc((size_t)n + 1);
	memcpy(out, mem, (size_t)n);
	out[n] = '\0';
out:
	if (!out)
		ERR_print_errors_fp(stderr);
	BIO_free(bio);
	X509_NAME_free(name);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	return out;
}

struct sbuf {
	char *p;
	size_t len, cap;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap)
		bench_die("request too large");
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

/* RFC 8259 7: quote, backslash and control characters are escaped. */
static void sb_json_string(struct sbuf *b, const char *s)
{
	sb_add(b, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[8];
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			sb_add(b, esc, 2);
		} else if (c == '\n') {
			sb_add(b, "\\n", 2);
		} else if (c < 0x20) {
			int n = snprintf(esc, sizeof esc, "\\u%04x", c);
			sb_add(b, esc, (size_t)n);
		} else {
			sb_add(b, (const char *)&c, 1);
		}
	}
	sb_add(b, "\"", 1);
}

static const char *mode_name(void)
{
	return o.ocsp ? "ocsp" : o.sign ? "sign" : "issue";
}

static void build_request(void)
{
	if (o.ocsp)
		return; /* ocsp_setup, once the address is known */
	struct sbuf body = {bench_xmalloc(MAX_REQ_BYTES), 0, MAX_REQ_BYTES};
	sb_str(&body, "{\"common_name\":");
	sb_json_string(&body, o.cn);
	if (o.sign) {
		char *csr = NULL;
		size_t n = 0;
		if (o.csr_file) {
			if (!(csr = read_file(o.csr_file, MAX_CSR_BYTES, &n)))
				bench_die("cannot read -csr file (missing, unreadable or over 64 KiB)");
			if (!strstr(csr, "-----BEGIN"))
				bench_die("-csr file is not PEM");
		} else if (!(csr = make_csr(o.cn))) {
			bench_die("cannot make a CSR");
		}
		sb_str(&body, ",\"csr\":");
		sb_json_string(&body, csr);
		free(csr);
	}
	sb_str(&body, "}");

	struct sbuf r = {bench_xmalloc(MAX_REQ_BYTES), 0, MAX_REQ_BYTES};
	char line[1024];
	int n = snprintf(line, sizeof line,
	                 "POST /v1/%s/%s/%s HTTP/1.1\r\n"
	                 "Host: %s:%s\r\n"
	                 "User-Agent: sigil-bench\r\n"
	                 "Content-Type: application/json\r\n"
	                 "Content-Length: %zu\r\n"
	                 "Connection: keep-alive\r\n"
	                 "X-Vault-Token: ",
	                 o.mount, o.sign ? "sign" : "issue", o.role, o.host, o.port, body.len);
	if (n < 0 || (size_t)n >= sizeof line)
		bench_die("request line too long");
	sb_add(&r, line, (size_t)n);
	sb_str(&r, o.token);
	sb_str(&r, "\r\n\r\n");
	sb_add(&r, body.p, body.len);
	free(body.p);
	req_buf = r.p;
	req_len = r.len;
}

/* ---------------------------------------------------------------- connections */

static void conn_close(struct conn *c, uint64_t retry_at)
{
	if (c->fd >= 0) {
		epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	c->fd = -1;
	c->state = C_IDLE;
	c->len = 0;
	c->events = 0;
	c->retry_at = retry_at;
}

static int conn_watch(struct conn *c, uint32_t events, int op)
{
	struct epoll_event ev = {.events = events, .data.ptr = c};
	if (op == EPOLL_CTL_MOD && c->events == events)
		return 0;
	c->events = events;
	return epoll_ctl(ep, op, c->fd, &ev);
}

static void conn_send_start(struct conn *c, uint64_t now)
{
	c->state = C_WRITING;
	c->sent = 0;
	c->len = 0;
	c->body_start = 0;
	c->content_length = -1;
	c->chunked = c->close_after = false;
	c->status = 0;
	c->t_start = now;
	st.started++;
	c->req = req_buf;
	c->req_len = req_len;
	if (o.ocsp)
		ocsp_pick(c);
	/* The request nearly always fits the socket buffer: sent now, epoll waits only for the answer. */
	ssize_t n = send(c->fd, c->req, c->req_len, MSG_NOSIGNAL);
	if (n > 0)
		c->sent = (size_t)n;
	if (c->sent == c->req_len)
		c->state = C_READING;
	if (conn_watch(c, c->state == C_READING ? EPOLLIN : EPOLLOUT, EPOLL_CTL_MOD) != 0)
		bench_die("epoll_ctl");
}

static void conn_open(struct conn *c, uint64_t now)
{
	int fd = socket(server_addr->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		bench_die("socket() failed (too many connections for the fd limit?)");
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c->fd = fd;
	c->t_start = now;
	int rc = connect(fd, server_addr->ai_addr, server_addr->ai_addrlen);
	if (rc != 0 && errno != EINPROGRESS) {
		st.conn_err++;
		conn_close(c, now + RETRY_DELAY_MS * 1000u);
		return;
	}
	c->state = C_CONNECTING;
	if (conn_watch(c, EPOLLOUT, EPOLL_CTL_ADD) != 0)
		bench_die("epoll_ctl");
}

static void record(struct conn *c, uint64_t now)
{
	st.done++;
	if (c->status >= 200 && c->status < 300) {
		st.ok++;
		if (!st.window_end)
			st.ok_in_window++;
	} else {
		st.http_err++;
		if (!st.shown_error) {
			st.shown_error = true;
			size_t show = c->len - c->body_start < 400 ? c->len - c->body_start : 400;
			fprintf(stderr, "sigil-bench: first error answer: HTTP %d: %.*s\n", c->status, (int)show,
			        c->buf + c->body_start);
		}
	}
	if (st.nlat < MAX_SAMPLES) {
		uint64_t d = now - c->t_start;
		st.lat_us[st.nlat++] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
	}
}

/* Parses the status line and headers once "\r\n\r\n" arrived. -1 on garbage. */
static int parse_head(struct conn *c, size_t head_len)
{
	const char *p = c->buf, *end = c->buf + head_len;
	const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
	if (!eol || eol - p < 12 || strncmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ')
		return -1;
	c->status = 0;
	for (int i = 9; i < 12; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		c->status = c->status * 10 + (p[i] - '0');
	}
	if (p[7] == '0')
		c->close_after = true; /* HTTP/1.0 unless keep-alive is said */
	for (p = eol + 2; p < end;) {
		eol = memmem(p, (size_t)(end - p), "\r\n", 2);
		if (!eol)
			break;
		size_t len = (size_t)(eol - p);
		const char *v;
		size_t vl;
		if (bench_header_is(p, len, "content-length", &v, &vl)) {
			long long n = 0;
			if (vl == 0 || vl > 12)
				return -1;
			for (size_t i = 0; i < vl; i++) {
				if (v[i] < '0' || v[i] > '9')
					return -1;
				n = n * 10 + (v[i] - '0');
			}
			c->content_length = n;
		} else if (bench_header_is(p, len, "transfer-encoding", &v, &vl)) {
			c->chunked = vl >= 7 && strncasecmp(v + vl - 7, "chunked", 7) == 0;
		} else if (bench_header_is(p, len, "connection", &v, &vl)) {
			if (vl == 5 && strncasecmp(v, "close", 5) == 0)
				c->close_after = true;
			else if (vl == 10 && strncasecmp(v, "keep-alive", 10) == 0)
				c->close_after = false;
		}
		p = eol + 2;
	}
	if (c->content_length > (long long)MAX_RESP_BYTES)
		return -1;
	return 0;
}

/* 1: the response is complete; 0: need more; -1: protocol error. */
static int response_done(struct conn *c, bool eof)
{
	if (!c->body_start) {
		const char *h = memmem(c->buf, c->len, "\r\n\r\n", 4);
		if (!h)
			return c->len > MAX_RESP_HEADER_BYTES || eof ? -1 : 0;
		c->body_start = (size_t)(h - c->buf) + 4;
		if (parse_head(c, c->body_start) != 0)
			return -1;
		if (c->status >= 100 && c->status < 200) { /* 100 Continue: drop it and go on */
			memmove(c->buf, c->buf + c->body_start, c->len - c->body_start);
			c->len -= c->body_start;
			c->body_start = 0;
			return response_done(c, eof);
		}
	}
	if (c->status == 204 || c->status == 304)
		return c->len == c->body_start ? 1 : -1;
	if (c->chunked) {
		size_t data_len;

		return bench_chunked_complete(c->buf + c->body_start, c->len - c->body_start, MAX_RESP_BYTES, &data_len);
	}
	if (c->content_length >= 0) {
		size_t want = c->body_start + (size_t)c->content_length;
		if (c->len > want)
			return -1; /* we never pipeline: extra bytes are garbage */
		return c->len == want ? 1 : (eof ? -1 : 0);
	}
	/* No length: the body ends when the server closes. */
	c->close_after = true;
	return eof ? 1 : 0;
}

/* ---------------------------------------------------------------- -mode ocsp */

#define MAX_OCSP_CERTS 100000       /* requests built from -certs */
#define MAX_OCSP_PEM_BYTES (64u << 20)
#define OCSP_CLOCK_SKEW_S 300       /* thisUpdate may be this far in the future */

/* One OCSP request of the rotation and the answer last verified for it. */
struct ocsp_req {
	char *http;                /* the whole HTTP request */
	size_t http_len;
	OCSP_CERTID *id;           /* the CertID asked about */
	unsigned char *good;       /* body of the last verified answer */
	size_t good_len;
};

static struct ocsp_req *oreqs;
static size_t n_oreqs, oreq_next;
static X509_STORE *ocsp_store;
static uint64_t ocsp_reverified;

/* GET /v1/<mount>/ocsp/<percent-encoded base64 of der> (RFC 6960 A.1). */
static void ocsp_http_build(struct ocsp_req *r, const unsigned char *der, size_t n)
{
	size_t b64cap = 4 * ((n + 2) / 3) + 1;
	unsigned char *b64 = bench_xmalloc(b64cap);
	int bl = EVP_EncodeBlock(b64, der, (int)n);
	struct sbuf s = {bench_xmalloc(3 * b64cap + 1024), 0, 3 * b64cap + 1024};
	char line[1024];
	int k = snprintf(line, sizeof line, "GET /v1/%s/ocsp/", o.mount);
	if (k < 0 || (size_t)k >= sizeof line)
		bench_die("request line too long");
	sb_add(&s, line, (size_t)k);
	for (int i = 0; i < bl; i++) {
		char esc[4];
		if (b64[i] == '+' || b64[i] == '/' || b64[i] == '=') {
			snprintf(esc, sizeof esc, "%%%02X", b64[i]);
			sb_add(&s, esc, 3);
		} else {
			sb_add(&s, (const char *)&b64[i], 1);
		}
	}
	free(b64);
	k = snprintf(line, sizeof line,
	             " HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: sigil-bench\r\nConnection: keep-alive\r\n\r\n", o.host,
	             o.port);
	if (k < 0 || (size_t)k >= sizeof line)
		bench_die("request line too long");
	sb_add(&s, line, (size_t)k);
	r->http = s.p;
	r->http_len = s.len;
}

static void ocsp_add(const unsigned char *der, size_t n, OCSP_CERTID *id)
{
	struct ocsp_req *r = &oreqs[n_oreqs++];
	memset(r, 0, sizeof *r);
	r->id = id;
	ocsp_http_build(r, der, n);
}

/* One request per certificate of -certs, issued by -issuer: SHA-1 CertID, no nonce (RFC 5019 2.1). */
static void ocsp_requests_from_certs(void)
{
	size_t n = 0;
	char *pem = read_file(o.ocsp_issuer, MAX_CSR_BYTES, &n);
	if (!pem)
		bench_die("cannot read -issuer file");
	BIO *b = BIO_new_mem_buf(pem, (int)n);
	X509 *issuer = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	free(pem);
	if (!issuer)
		bench_die("-issuer holds no PEM certificate");
	if (!(pem = read_file(o.ocsp_certs, MAX_OCSP_PEM_BYTES, &n)))
		bench_die("cannot read -certs file (missing, unreadable or over 64 MiB)");
	b = BIO_new_mem_buf(pem, (int)n);
	oreqs = bench_xmalloc(sizeof *oreqs * MAX_OCSP_CERTS);
	X509 *leaf;
	while (b && (leaf = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		if (n_oreqs == MAX_OCSP_CERTS)
			bench_die("-certs holds too many certificates");
		OCSP_REQUEST *req = OCSP_REQUEST_new();
		OCSP_CERTID *id = OCSP_cert_to_id(EVP_sha1(), leaf, issuer);
		OCSP_CERTID *mine = id ? OCSP_CERTID_dup(id) : NULL;
		unsigned char *der = NULL;
		int dl;
		if (!req || !mine || !OCSP_request_add0_id(req, id) || (dl = i2d_OCSP_REQUEST(req, &der)) <= 0)
			bench_die("cannot build an OCSP request");
		ocsp_add(der, (size_t)dl, mine);
		OPENSSL_free(der);
		OCSP_REQUEST_free(req);
		X509_free(leaf);
	}
	ERR_clear_error(); /* the end of the PEM file */
	BIO_free(b);
	free(pem);
	X509_free(issuer);
	if (n_oreqs == 0)
		bench_die("-certs holds no PEM certificate");
}

static void ocsp_request_from_der(void)
{
	size_t n = 0;
	char *der = read_file(o.ocsp_req_file, MAX_OCSP_REQ_BYTES, &n);
	if (!der || n == 0)
		bench_die("cannot read -req file (missing, empty or over 8 KiB)");
	const unsigned char *p = (const unsigned char *)der;
	OCSP_REQUEST *req = d2i_OCSP_REQUEST(NULL, &p, (long)n);
	if (!req || OCSP_request_onereq_count(req) != 1)
		bench_die("-req is not a DER OCSP request for one certificate");
	OCSP_CERTID *id = OCSP_CERTID_dup(OCSP_onereq_get0_id(OCSP_request_onereq_get0(req, 0)));
	if (!id)
		bench_die("out of memory");
	oreqs = bench_xmalloc(sizeof *oreqs);
	ocsp_add((const unsigned char *)der, n, id);
	OCSP_REQUEST_free(req);
	free(der);
}

/*
 * An answer is good when it is a successful OCSPResponse whose signature
 * chains to -CAfile (the delegated responder certificate it carries
 * included), that says "good" for the CertID asked about, inside its
 * validity window. NULL when good, else why not.
 */
static const char *ocsp_answer_check(const struct ocsp_req *r, const unsigned char *body, size_t len)
{
	const unsigned char *p = body;
	OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
	OCSP_BASICRESP *bs = NULL;
	const char *why = NULL;
	int status = -1, reason = -1;
	ASN1_GENERALIZEDTIME *rev = NULL, *thisu = NULL, *nextu = NULL;
	if (!resp || p != body + len)
		why = "not a DER OCSPResponse";
	else if (OCSP_response_status(resp) != OCSP_RESPONSE_STATUS_SUCCESSFUL)
		why = "responseStatus is not successful";
	else if (!(bs = OCSP_response_get1_basic(resp)))
		why = "no BasicOCSPResponse";
	else if (OCSP_basic_verify(bs, NULL, ocsp_store, 0) <= 0)
		why = "signature does not verify through -CAfile";
	else if (!OCSP_resp_find_status(bs, r->id, &status, &reason, &rev, &thisu, &nextu))
		why = "no answer for the CertID asked about";
	else if (status != V_OCSP_CERTSTATUS_GOOD)
		why = "certificate status is not good";
	else if (!OCSP_check_validity(thisu, nextu, OCSP_CLOCK_SKEW_S, -1))
		why = "outside thisUpdate..nextUpdate";
	ERR_clear_error();
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(resp);
	return why;
}

/* A blocking GET of request i on the kept-alive connection fd: the start-up check. */
static void ocsp_fetch_check(int fd, size_t i)
{
	struct ocsp_req *r = &oreqs[i];
	struct conn c = {.fd = fd};
	for (size_t sent = 0; sent < r->http_len;) {
		ssize_t n = send(c.fd, r->http + sent, r->http_len - sent, MSG_NOSIGNAL);
		if (n <= 0)
			bench_die("send failed during the start-up check");
		sent += (size_t)n;
	}
	c.content_length = -1;
	int rc = 0;
	while (rc == 0) {
		if (c.cap - c.len < 4096) {
			c.cap = c.cap ? c.cap * 2 : 16384;
			if (c.cap > MAX_RESP_BYTES || !(c.buf = realloc(c.buf, c.cap)))
				bench_die("start-up answer too large");
		}
		ssize_t n = recv(c.fd, c.buf + c.len, c.cap - c.len, 0);
		if (n < 0)
			bench_die("recv failed during the start-up check");
		c.len += (size_t)n;
		rc = response_done(&c, n == 0);
	}
	if (rc < 0 || c.status != 200 || c.chunked || c.close_after) {
		fprintf(stderr, "sigil-bench: start-up check of request %zu: HTTP %d, %s\n", i, c.status,
		        rc < 0 ? "malformed" : "not 200 with a length on a kept-alive connection");
		exit(1);
	}
	const char *why = ocsp_answer_check(r, (unsigned char *)c.buf + c.body_start, c.len - c.body_start);
	if (why) {
		fprintf(stderr, "sigil-bench: start-up check of request %zu: %s\n", i, why);
		exit(1);
	}
	r->good_len = c.len - c.body_start;
	r->good = bench_xmalloc(r->good_len);
	memcpy(r->good, c.buf + c.body_start, r->good_len);
	free(c.buf);
}

static void ocsp_setup(void)
{
	if (o.ocsp_certs)
		ocsp_requests_from_certs();
	else
		ocsp_request_from_der();
	if (!(ocsp_store = X509_STORE_new()) || X509_STORE_load_file(ocsp_store, o.ocsp_cafile) != 1)
		bench_die("cannot load -CAfile");
	int fd = socket(server_addr->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, server_addr->ai_addr, server_addr->ai_addrlen) != 0)
		bench_die("cannot connect to the server for the start-up check");
	for (size_t i = 0; i < n_oreqs; i++)
		ocsp_fetch_check(fd, i);
	close(fd);
	printf("sigil-bench: %zu OCSP requests, every answer verified (signature, status good, validity)\n", n_oreqs);
	req_buf = oreqs[0].http;
	req_len = oreqs[0].http_len;
}

/* The next request of the rotation, for connection c. */
static void ocsp_pick(struct conn *c)
{
	c->ocsp_i = oreq_next;
	if (++oreq_next == n_oreqs)
		oreq_next = 0;
	c->req = oreqs[c->ocsp_i].http;
	c->req_len = oreqs[c->ocsp_i].http_len;
}

/* During the load: the checked bytes again (cheap), or a re-signed answer that passes the check. */
static bool ocsp_answer_ok(struct conn *c)
{
	struct ocsp_req *r = &oreqs[c->ocsp_i];
	const unsigned char *body = (const unsigned char *)c->buf + c->body_start;
	size_t len = c->len - c->body_start;
	if (c->chunked)
		return false;
	if (len == r->good_len && memcmp(body, r->good, len) == 0)
		return true;
	if (ocsp_answer_check(r, body, len))
		return false;
	ocsp_reverified++;
	free(r->good);
	r->good = bench_xmalloc(len);
	memcpy(r->good, body, len);
	r->good_len = len;
	return true;
}

static void ocsp_free_all(void)
{
	for (size_t i = 0; i < n_oreqs; i++) {
		free(oreqs[i].http);
		free(oreqs[i].good);
		OCSP_CERTID_free(oreqs[i].id);
	}
	free(oreqs);
	X509_STORE_free(ocsp_store);
}

static bool running_allowed(uint64_t now, uint64_t deadline)
{
	return now < deadline && st.started < o.max_requests;
}

static void next_request(struct conn *c, uint64_t now, uint64_t deadline)
{
	if (!running_allowed(now, deadline)) {
		conn_close(c, UINT64_MAX);
		return;
	}
	if (c->close_after || c->fd < 0) {
		conn_close(c, 0);
		conn_open(c, now);
		return;
	}
	conn_send_start(c, now);
}

static void conn_fail(struct conn *c, uint64_t now, uint64_t *counter)
{
	(*counter)++;
	conn_close(c, now + RETRY_DELAY_MS * 1000u);
}

static void on_event(struct conn *c, uint32_t events, uint64_t deadline)
{
	uint64_t now = bench_now_us();
	if (c->state == C_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof err;
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0 ||
		    (events & (EPOLLERR | EPOLLHUP))) {
			conn_fail(c, now, &st.conn_err);
			return;
		}
		conn_send_start(c, now);
		return;
	}
	if (c->state == C_WRITING) {
		while (c->sent < c->req_len) {
			ssize_t n = send(c->fd, c->req + c->sent, c->req_len - c->sent, MSG_NOSIGNAL);
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				return;
			if (n <= 0) {
				conn_fail(c, now, &st.conn_err);
				return;
			}
			c->sent += (size_t)n;
		}
		c->state = C_READING;
		if (conn_watch(c, EPOLLIN, EPOLL_CTL_MOD) != 0)
			bench_die("epoll_ctl");
		return;
	}
	if (c->state != C_READING)
		return;
	bool eof = false;
	for (;;) {
		if (c->cap - c->len < 4096) {
			if (c->cap >= MAX_RESP_BYTES) {
				conn_fail(c, now, &st.proto_err);
				return;
			}
			c->cap = c->cap ? c->cap * 2 : 16384;
			char *nb = realloc(c->buf, c->cap);
			if (!nb)
				bench_die("out of memory");
			c->buf = nb;
		}
		size_t room = c->cap - c->len;
		ssize_t n = recv(c->fd, c->buf + c->len, room, 0);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0) {
			conn_fail(c, now, &st.conn_err);
			return;
		}
		if (n == 0) {
			eof = true;
			break;
		}
		c->len += (size_t)n;
		/* A short read drained the socket; epoll is level-triggered and reports what comes later. */
		if ((size_t)n < room)
			break;
	}
	int rc = response_done(c, eof);
	if (rc < 0) {
		if (c->len == 0 && eof)
			conn_fail(c, now, &st.conn_err); /* closed before answering */
		else
			conn_fail(c, now, &st.proto_err);
		return;
	}
	if (rc == 0)
		return;
	now = bench_now_us();
	if (o.ocsp && c->status == 200 && !ocsp_answer_ok(c)) {
		if (!st.shown_error) {
			st.shown_error = true;
			fprintf(stderr, "sigil-bench: an OCSP answer failed the check (signature, status or validity)\n");
		}
		conn_fail(c, now, &st.proto_err);
		return;
	}
	record(c, now);
	if (eof)
		c->close_after = true;
	next_request(c, now, deadline);
}

/* ---------------------------------------------------------------- report */

int main(int argc, char **argv)
{
	/* -mode acme is a different load (threads, signed requests): bench/acmeload.c. */
	for (int i = 1; i + 1 < argc; i += 2)
		if (strcmp(argv[i], "-mode") == 0 && strcmp(argv[i + 1], "acme") == 0)
			return acmeload_main(argc, argv);
	parse_args(argc, argv);
	build_request();

	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	int gai = getaddrinfo(o.host, o.port, &hints, &server_addr);
	if (gai != 0) {
		fprintf(stderr, "sigil-bench: %s: %s\n", o.host, gai_strerror(gai));
		return 2;
	}
	if (o.ocsp)
		ocsp_setup();
	st.lat_us = bench_xmalloc(sizeof(uint32_t) * MAX_SAMPLES);
	struct conn *conns = calloc((size_t)o.conns, sizeof *conns);
	if (!conns)
		bench_die("out of memory");
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
		bench_die("epoll_create1");

	uint64_t t0 = bench_now_us();
	uint64_t deadline = t0 + o.duration_ms * 1000u;
	uint64_t timeout_us = o.timeout_ms * 1000u;
	for (int i = 0; i < o.conns; i++) {
		conns[i].fd = -1;
		conn_open(&conns[i], t0);
	}

	struct epoll_event evs[EPOLL_BATCH];
	for (;;) {
		uint64_t now = bench_now_us();
		bool run = running_allowed(now, deadline);
		if (!run && !st.window_end)
			st.window_end = now < deadline ? now : deadline;
		bool busy = false;
		/* Timeouts, reconnects after failures, and the stop condition. */
		for (int i = 0; i < o.conns; i++) {
			struct conn *c = &conns[i];
			if (c->state == C_IDLE) {
				if (!run)
					c->retry_at = UINT64_MAX;
				else if (now >= c->retry_at)
					conn_open(c, now);
			} else if (now - c->t_start > timeout_us) {
				conn_fail(c, now, &st.timeouts);
				if (!run)
					c->retry_at = UINT64_MAX;
			}
			if (c->state != C_IDLE || c->retry_at != UINT64_MAX)
				busy = true;
		}
		if (!busy)
			break;
		int wait_ms = 50;
		if (run && (deadline - now) / 1000u + 1 < (uint64_t)wait_ms)
			wait_ms = (int)((deadline - now) / 1000u) + 1;
		int n = epoll_wait(ep, evs, EPOLL_BATCH, wait_ms);
		if (n < 0 && errno != EINTR)
			bench_die("epoll_wait");
		for (int i = 0; i < n; i++)
			on_event(evs[i].data.ptr, evs[i].events, deadline);
	}
	if (!st.window_end)
		st.window_end = bench_now_us();
	double elapsed = (double)(st.window_end - t0) / 1e6;
	if (elapsed <= 0)
		elapsed = 1e-6;

	qsort(st.lat_us, st.nlat, sizeof st.lat_us[0], bench_cmp_u32);
	uint64_t errors = st.http_err + st.conn_err + st.proto_err + st.timeouts;
	double rps = (double)st.ok_in_window / elapsed;
	double p50 = bench_pct_ms(st.lat_us, st.nlat, 0.50), p90 = bench_pct_ms(st.lat_us, st.nlat, 0.90),
	       p99 = bench_pct_ms(st.lat_us, st.nlat, 0.99);
	double mx = st.nlat ? st.lat_us[st.nlat - 1] / 1000.0 : 0;

	printf("sigil-bench: %s %s/%s/%s on %s:%s, %d connections, %.1f s\n", mode_name(),
	       o.mount, o.ocsp ? "ocsp" : o.sign ? "sign" : "issue", o.ocsp ? "<request>" : o.role, o.host, o.port,
	       o.conns, o.duration_ms / 1000.0);
	printf("requests    %" PRIu64 " answered, %" PRIu64 " 2xx\n", st.done, st.ok);
	printf("errors      %" PRIu64 " (non-2xx %" PRIu64 ", connection %" PRIu64 ", protocol %" PRIu64
	       ", timeout %" PRIu64 ")\n",
	       errors, st.http_err, st.conn_err, st.proto_err, st.timeouts);
	printf("throughput  %.1f req/s (2xx answered within the %.2f s load window)\n", rps, elapsed);
	printf("latency ms  p50 %.2f  p90 %.2f  p99 %.2f  max %.2f\n", p50, p90, p99, mx);
	printf("RESULT mode=%s c=%d requests=%" PRIu64 " ok=%" PRIu64 " errors=%" PRIu64
	       " seconds=%.2f rps=%.1f p50=%.2f p90=%.2f p99=%.2f max=%.2f\n",
	       mode_name(), o.conns, st.done, st.ok, errors, elapsed, rps, p50, p90, p99, mx);

	for (int i = 0; i < o.conns; i++) {
		conn_close(&conns[i], UINT64_MAX);
		free(conns[i].buf);
	}
	free(conns);
	free(st.lat_us);
	if (o.ocsp) {
		printf("ocsp        %zu distinct requests, %" PRIu64 " re-signed answers verified during the load\n",
		       n_oreqs, ocsp_reverified);
		ocsp_free_all();
	} else {
		free(req_buf);
	}
	freeaddrinfo(server_addr);
	close(ep);
	return errors && !st.ok ? 1 : 0;
}
