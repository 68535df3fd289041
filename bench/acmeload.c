/*
 * sigil-bench -mode acme: complete ACME orders (RFC 8555) per second.
 *
 *   sigil-bench -mode acme -url http://127.0.0.1:8200 -http01 PORT [-mount pki] [-role R]
 *               [-c 16] [-d 10s] [-n max-orders] [-ident dns|ip] [-domain bench.localhost]
 *               [-csr-pool N] [-token T] [-timeout 60s]
 *
 * One thread per worker (-c), each with its own ACME account (EC P-256,
 * ES256) made before the timed phase (with External Account Binding when
 * the directory says externalAccountRequired: -token is then needed to ask
 * for the EAB keys) and one keep-alive connection. An order is:
 * newOrder (one identifier: <order>-w<worker>.<domain> or the IP
 * 127.0.0.1), the authorization, the http-01 challenge answered (this
 * process serves /.well-known/acme-challenge/<token> on 127.0.0.1 and ::1
 * at -http01, which must be the mount's config/acme http01_port),
 * authorization polls while it is processing (sleeping Retry-After),
 * finalize with a CSR, order polls while it is processing, and the
 * certificate chain downloaded. Only orders that end with a certificate
 * count. Nonces come from each answer's Replay-Nonce; a badNonce answer is
 * retried with the nonce it carries.
 *
 * The CSR's key: by default a fresh EC P-256 key per order, made inside the
 * order's timing (as certbot does). -csr-pool N makes N keys and CSRs per
 * worker before the timed phase and cycles through them (names repeat every
 * N orders of a worker). The client-side cost of a fresh key and CSR is
 * measured and printed either way.
 *
 * Output: as the other modes, a summary and a "RESULT ..." line (rps is
 * complete orders per second within the load window).
 */
#include "bench/acmeload.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "bench/benchutil.h"
#include "common/jose.h"

#define MAX_WORKERS 1024
#define MAX_URL_BYTES 2048
#define MAX_NAME_BYTES 256
#define MAX_NONCE_BYTES 128
#define MAX_RESP_HEADER_BYTES (16u << 10)
#define MAX_RESP_BYTES (1u << 20)       /* one answer: a chain is a few KiB */
#define MAX_REQ_HEAD_BYTES 4096
#define MAX_ORDERS (4u << 20)           /* latency samples kept per run */
#define MAX_POOL 4096
#define MAX_BADNONCE_RETRIES 5
#define MAX_RETRY_AFTER_S 10            /* a longer Retry-After is clamped (a bench, not a client) */
#define DEFAULT_POLL_MS 1000            /* when a processing object carries no Retry-After */
#define CHAL_BUCKETS 4096
#define CHAL_REQ_BYTES 4096             /* an http-01 request's head */
#define CHAL_IO_TIMEOUT_MS 2000
#define CSR_COST_SAMPLES 200
#define GIVE_UP_FAILURES 100            /* a worker whose first orders all fail stops (misconfiguration) */

/* ---------------------------------------------------------------- options and small helpers */

static struct {
	char host[MAX_NAME_BYTES], port[16], hostport[MAX_NAME_BYTES + 24];
	char mount[MAX_NAME_BYTES], role[MAX_NAME_BYTES], domain[MAX_NAME_BYTES], token[MAX_NAME_BYTES];
	int workers;
	uint64_t duration_ms, timeout_ms, max_orders;
	int http01_port;
	bool ident_ip;
	int csr_pool;
} o;

static struct addrinfo *server_addr;

static char *xstrdup(const char *s)
{
	size_t n = strlen(s);
	char *p = bench_xmalloc(n + 1);

	memcpy(p, s, n + 1);
	return p;
}

static void sleep_ms(uint64_t ms)
{
	struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void usage(void)
{
	fprintf(stderr,
	        "usage: sigil-bench -mode acme -url http://HOST:PORT -http01 PORT [-mount pki] [-role R]\n"
	        "                   [-c 16] [-d 10s] [-n max-orders] [-ident dns|ip] [-domain bench.localhost]\n"
	        "                   [-csr-pool N] [-token T] [-timeout 60s]\n"
	        "  -role R uses roles/R/acme/directory, else acme/directory. -http01 is the port this process\n"
	        "  serves http-01 answers on (the mount's config/acme http01_port). -token (or $SIGIL_TOKEN)\n"
	        "  is only needed when the directory requires External Account Binding.\n");
	exit(2);
}

static void parse_args(int argc, char **argv)
{
	const char *url = NULL;

	memcpy(o.mount, "pki", 4);
	memcpy(o.domain, "bench.localhost", sizeof "bench.localhost");
	o.workers = 16;
	o.duration_ms = 10000;
	o.timeout_ms = 60000;
	o.max_orders = MAX_ORDERS;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v;

		if (strcmp(a, "-h") == 0 || strcmp(a, "-help") == 0 || strcmp(a, "--help") == 0)
			usage();
		if (i + 1 >= argc)
			usage();
		v = argv[++i];
		if (strcmp(a, "-mode") == 0) {
			if (strcmp(v, "acme") != 0)
				usage();
		} else if (strcmp(a, "-url") == 0) {
			url = v;
		} else if (strcmp(a, "-mount") == 0) {
			bench_copy_str(o.mount, sizeof o.mount, v, "-mount");
		} else if (strcmp(a, "-role") == 0) {
			bench_copy_str(o.role, sizeof o.role, v, "-role");
		} else if (strcmp(a, "-domain") == 0) {
			bench_copy_str(o.domain, sizeof o.domain, v, "-domain");
		} else if (strcmp(a, "-token") == 0) {
			bench_copy_str(o.token, sizeof o.token, v, "-token");
		} else if (strcmp(a, "-ident") == 0) {
			if (strcmp(v, "ip") == 0)
				o.ident_ip = true;
			else if (strcmp(v, "dns") != 0)
				bench_die("-ident must be dns or ip");
		} else if (strcmp(a, "-http01") == 0) {
			o.http01_port = (int)bench_parse_int(v, 1, 65535, "-http01");
		} else if (strcmp(a, "-csr-pool") == 0) {
			o.csr_pool = (int)bench_parse_int(v, 0, MAX_POOL, "-csr-pool");
		} else if (strcmp(a, "-c") == 0) {
			o.workers = (int)bench_parse_int(v, 1, MAX_WORKERS, "-c");
		} else if (strcmp(a, "-n") == 0) {
			o.max_orders = (uint64_t)bench_parse_int(v, 1, MAX_ORDERS, "-n");
		} else if (strcmp(a, "-d") == 0) {
			if (!(o.duration_ms = bench_parse_duration_ms(v)))
				bench_die("-d must be a duration like 10s, 500ms or 2m (at most 1h)");
		} else if (strcmp(a, "-timeout") == 0) {
			if (!(o.timeout_ms = bench_parse_duration_ms(v)))
				bench_die("-timeout must be a duration like 60s");
		} else {
			usage();
		}
	}
	if (url == NULL || o.http01_port == 0)
		usage();
	bench_parse_url(url, false, o.host, sizeof o.host, o.port, sizeof o.port);
	snprintf(o.hostport, sizeof o.hostport, "%s:%s", o.host, o.port);
	if (!o.token[0] && getenv("SIGIL_TOKEN") != NULL && getenv("SIGIL_TOKEN")[0] != '\0')
		bench_copy_str(o.token, sizeof o.token, getenv("SIGIL_TOKEN"), "$SIGIL_TOKEN");
	/* These go into request lines, headers and names verbatim. */
	const char *fields[] = {o.token, o.role, o.mount, o.domain, o.host};
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
		for (const char *c = fields[i]; *c; c++)
			if ((unsigned char)*c < 0x21 || *c == 0x7f || *c == '"' || *c == '\\' || *c == '/')
				bench_die("-token, -role, -mount, -domain and the host must be printable without quotes, slashes or "
				    "spaces");
}

/* base64url of a string (RFC 7515 2; sg_b64url from common/jose). */
static char *b64url_str(const char *s)
{
	return sg_b64url((const unsigned char *)s, strlen(s));
}

/* ---------------------------------------------------------------- keys, JWS, CSRs */

struct account {
	EVP_PKEY *key;
	char *jwk;          /* RFC 7638 canonical form: also the thumbprint input */
	char *thumbprint;
	char *kid;          /* account URL, after newAccount */
};

static EVP_PKEY *ec_key(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");

	if (k == NULL) {
		ERR_print_errors_fp(stderr);
		bench_die("EC P-256 key generation failed");
	}
	return k;
}

/* JWK (required members in lexicographic order, RFC 7638 3.2) and thumbprint. */
static void account_init(struct account *a)
{
	unsigned char pub[65], md[32];
	size_t len = 0;
	unsigned int mdlen = 0;
	char *x, *y;
	int n;

	a->key = ec_key();
	if (EVP_PKEY_get_octet_string_param(a->key, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub, &len) != 1 || len != 65 ||
	    pub[0] != 0x04)
		bench_die("cannot read the EC public key");
	x = sg_b64url(pub + 1, 32);
	y = sg_b64url(pub + 33, 32);
	a->jwk = bench_xmalloc(256);
	n = snprintf(a->jwk, 256, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", x, y);
	if (n < 0 || n >= 256)
		bench_die("JWK too long");
	free(x);
	free(y);
	if (EVP_Digest(a->jwk, strlen(a->jwk), md, &mdlen, EVP_sha256(), NULL) != 1)
		bench_die("SHA-256 failed");
	a->thumbprint = sg_b64url(md, mdlen);
}

static void account_clear(struct account *a)
{
	EVP_PKEY_free(a->key);
	free(a->jwk);
	free(a->thumbprint);
	free(a->kid);
	memset(a, 0, sizeof *a);
}

/* RFC 7518 3.4: an ES256 signature is R || S, 32 bytes each (OpenSSL makes DER). */
static char *es256_sign(EVP_PKEY *key, const char *input)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char der[128], rs[64];
	const unsigned char *p = der;
	size_t dlen = sizeof der;
	ECDSA_SIG *sig = NULL;
	const BIGNUM *r, *s;
	char *out;

	if (ctx == NULL || EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(ctx, der, &dlen, (const unsigned char *)input, strlen(input)) != 1 ||
	    (sig = d2i_ECDSA_SIG(NULL, &p, (long)dlen)) == NULL) {
		ERR_print_errors_fp(stderr);
		bench_die("ES256 signing failed");
	}
	ECDSA_SIG_get0(sig, &r, &s);
	if (BN_bn2binpad(r, rs, 32) != 32 || BN_bn2binpad(s, rs + 32, 32) != 32)
		bench_die("ES256 signature does not fit");
	out = sg_b64url(rs, sizeof rs);
	ECDSA_SIG_free(sig);
	EVP_MD_CTX_free(ctx);
	return out;
}

/*
 * A flattened JWS (RFC 7515 7.2.2, RFC 8555 6.2) of payload (NULL: the empty
 * payload of POST-as-GET) signed by the account: kid when it has one, else jwk.
 */
static char *jws(const struct account *a, const char *nonce, const char *url, const char *payload)
{
	json_t *hdr = json_pack("{s:s, s:s, s:s}", "alg", "ES256", "nonce", nonce, "url", url);
	char *htext, *prot, *pl, *input, *sig, *out;
	size_t n;

	if (hdr == NULL)
		bench_die("json_pack failed");
	if (a->kid != NULL)
		json_object_set_new(hdr, "kid", json_string(a->kid));
	else
		json_object_set_new(hdr, "jwk", json_loads(a->jwk, 0, NULL));
	htext = json_dumps(hdr, JSON_COMPACT);
	json_decref(hdr);
	if (htext == NULL)
		bench_die("json_dumps failed");
	prot = b64url_str(htext);
	free(htext);
	pl = payload != NULL ? b64url_str(payload) : xstrdup("");
	n = strlen(prot) + strlen(pl) + 2;
	input = bench_xmalloc(n);
	snprintf(input, n, "%s.%s", prot, pl);
	sig = es256_sign(a->key, input);
	n += strlen(sig) + 64;
	out = bench_xmalloc(n);
	snprintf(out, n, "{\"protected\":\"%s\",\"payload\":\"%s\",\"signature\":\"%s\"}", prot, pl, sig);
	free(prot);
	free(pl);
	free(input);
	free(sig);
	return out;
}

/* RFC 8555 7.3.4: an HS256 JWS over the account's JWK, keyed by the EAB key. */
static json_t *eab_jws(const struct account *a, const char *kid, const char *b64key, const char *new_account_url)
{
	unsigned char *key = NULL, mac[32];
	size_t klen = 0;
	unsigned int mlen = 0;
	json_t *hdr = json_pack("{s:s, s:s, s:s}", "alg", "HS256", "kid", kid, "url", new_account_url), *out;
	char *htext = json_dumps(hdr, JSON_COMPACT), *prot = b64url_str(htext), *pl = b64url_str(a->jwk), *input, *sig;
	size_t n = strlen(prot) + strlen(pl) + 2;

	json_decref(hdr);
	free(htext);
	if (sg_b64url_decode(b64key, strlen(b64key), &key, &klen) != 0 || klen == 0)
		bench_die("the EAB key is not base64url");
	input = bench_xmalloc(n);
	snprintf(input, n, "%s.%s", prot, pl);
	if (HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)input, strlen(input), mac, &mlen) == NULL)
		bench_die("HMAC failed");
	OPENSSL_cleanse(key, klen);
	free(key);
	sig = sg_b64url(mac, mlen);
	out = json_pack("{s:s, s:s, s:s}", "protected", prot, "payload", pl, "signature", sig);
	free(prot);
	free(pl);
	free(input);
	free(sig);
	return out;
}

/* The order's CSR: base64url DER, one SAN (dns name, with the same CN, or the IP address). */
static char *make_csr(const char *name, bool ip)
{
	EVP_PKEY *key = ec_key();
	X509_REQ *req = X509_REQ_new();
	X509_NAME *subj = X509_NAME_new();
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	X509_EXTENSION *san;
	char sanv[MAX_NAME_BYTES + 8];
	unsigned char *der = NULL;
	char *out;
	int n;

	snprintf(sanv, sizeof sanv, "%s:%s", ip ? "IP" : "DNS", name);
	san = X509V3_EXT_nconf_nid(NULL, NULL, NID_subject_alt_name, sanv);
	if (req == NULL || subj == NULL || exts == NULL || san == NULL || !sk_X509_EXTENSION_push(exts, san))
		bench_die("cannot build a CSR");
	if (!ip && !X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_UTF8, (const unsigned char *)name, -1, -1, 0))
		bench_die("cannot build a CSR");
	if (!X509_REQ_set_version(req, 0) || !X509_REQ_set_subject_name(req, subj) || !X509_REQ_set_pubkey(req, key) ||
	    !X509_REQ_add_extensions(req, exts) || X509_REQ_sign(req, key, EVP_sha256()) <= 0 ||
	    (n = i2d_X509_REQ(req, &der)) <= 0) {
		ERR_print_errors_fp(stderr);
		bench_die("cannot sign a CSR");
	}
	out = sg_b64url(der, (size_t)n);
	OPENSSL_free(der);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_NAME_free(subj);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	return out;
}

/* ---------------------------------------------------------------- blocking HTTP/1.1 client */

struct hconn {
	int fd;
	char *buf;
	size_t cap;
};

struct hresp {
	int status;
	char *body;                 /* NUL-terminated; points into the connection's buffer */
	size_t body_len;
	char nonce[MAX_NONCE_BYTES];
	char location[MAX_URL_BYTES];
	char ctype[128];
	int retry_after_s;          /* -1 when absent */
};

static void hconn_close(struct hconn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static int hconn_open(struct hconn *c)
{
	struct timeval tv = {.tv_sec = (time_t)(o.timeout_ms / 1000), .tv_usec = (suseconds_t)(o.timeout_ms % 1000) * 1000};
	int one = 1, fd = socket(server_addr->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (connect(fd, server_addr->ai_addr, server_addr->ai_addrlen) != 0) {
		close(fd);
		return -1;
	}
	c->fd = fd;
	return 0;
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

static void copy_val(char *dst, size_t cap, const char *v, size_t vl)
{
	if (vl >= cap)
		vl = 0; /* too long to be ours: treated as absent */
	memcpy(dst, v, vl);
	dst[vl] = '\0';
}

/* Decodes a complete, checked chunked body in place (data only moves forward). */
static void dechunk_copy(char *b, size_t len)
{
	size_t pos = 0, w = 0;

	for (;;) {
		char *eol = memmem(b + pos, len - pos, "\r\n", 2);
		size_t size = strtoul(b + pos, NULL, 16);

		pos = (size_t)(eol - b) + 2;
		if (size == 0)
			break;
		memmove(b + w, b + pos, size);
		w += size;
		pos += size + 2;
	}
	b[w] = '\0';
}

/*
 * One request on the connection, reconnecting first if it is closed. A
 * reused connection that the server closed before answering (idle timeout)
 * is reopened and the request sent again: the server did not see it.
 * 0 with *r filled, -1 on a transport or protocol failure (the connection
 * is closed).
 */
static int http_do(struct hconn *c, const char *method, const char *path, const char *ctype, const char *extra_hdr,
                   const char *body, struct hresp *r)
{
	char head[MAX_REQ_HEAD_BYTES];
	size_t blen = body != NULL ? strlen(body) : 0;
	int n;

	memset(r, 0, sizeof *r);
	r->retry_after_s = -1;
	n = snprintf(head, sizeof head,
	             "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: sigil-bench\r\n%s%s%s%s"
	             "Content-Length: %zu\r\n\r\n",
	             method, path, o.hostport, ctype != NULL ? "Content-Type: " : "", ctype != NULL ? ctype : "",
	             ctype != NULL ? "\r\n" : "", extra_hdr != NULL ? extra_hdr : "", blen);
	if (n < 0 || (size_t)n >= sizeof head)
		return -1;
	for (int attempt = 0; attempt < 2; attempt++) {
		bool reused = c->fd >= 0;
		size_t len = 0, body_start = 0;
		long long clen = -1;
		bool chunked = false, close_after = false;

		if (c->fd < 0 && hconn_open(c) != 0)
			return -1;
		if (send_all(c->fd, head, (size_t)n) != 0 || (blen > 0 && send_all(c->fd, body, blen) != 0)) {
			hconn_close(c);
			if (reused)
				continue;
			return -1;
		}
		memset(r, 0, sizeof *r);
		r->retry_after_s = -1;
		for (;;) {
			ssize_t k;

			if (c->cap - len < 4096) {
				if (c->cap >= MAX_RESP_BYTES)
					goto bad;
				c->cap = c->cap ? c->cap * 2 : 65536;
				c->buf = realloc(c->buf, c->cap + 1);
				if (c->buf == NULL)
					bench_die("out of memory");
			}
			k = recv(c->fd, c->buf + len, c->cap - len, 0);
			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0) {
				if (k == 0 && len == 0 && reused && attempt == 0) {
					hconn_close(c);
					goto again;
				}
				if (k == 0 && body_start && clen < 0 && !chunked)
					break; /* body delimited by the close */
				goto bad;
			}
			len += (size_t)k;
			if (!body_start) {
				const char *h = memmem(c->buf, len, "\r\n\r\n", 4), *p, *eol;

				if (h == NULL) {
					if (len > MAX_RESP_HEADER_BYTES)
						goto bad;
					continue;
				}
				body_start = (size_t)(h - c->buf) + 4;
				p = c->buf;
				eol = memmem(p, body_start, "\r\n", 2);
				if (eol - p < 12 || strncmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ')
					goto bad;
				for (int i = 9; i < 12; i++) {
					if (p[i] < '0' || p[i] > '9')
						goto bad;
					r->status = r->status * 10 + (p[i] - '0');
				}
				if (p[7] == '0')
					close_after = true;
				for (p = eol + 2; p < c->buf + body_start - 2; p = eol + 2) {
					const char *v;
					size_t vl, ln;

					eol = memmem(p, (size_t)(c->buf + body_start - p), "\r\n", 2);
					ln = (size_t)(eol - p);
					if (bench_header_is(p, ln, "content-length", &v, &vl)) {
						char tmp[24];

						copy_val(tmp, sizeof tmp, v, vl);
						clen = strtoll(tmp, NULL, 10);
						if (clen < 0 || clen > (long long)MAX_RESP_BYTES)
							goto bad;
					} else if (bench_header_is(p, ln, "transfer-encoding", &v, &vl)) {
						chunked = vl >= 7 && strncasecmp(v + vl - 7, "chunked", 7) == 0;
					} else if (bench_header_is(p, ln, "connection", &v, &vl)) {
						close_after = vl == 5 && strncasecmp(v, "close", 5) == 0;
					} else if (bench_header_is(p, ln, "replay-nonce", &v, &vl)) {
						copy_val(r->nonce, sizeof r->nonce, v, vl);
					} else if (bench_header_is(p, ln, "location", &v, &vl)) {
						copy_val(r->location, sizeof r->location, v, vl);
					} else if (bench_header_is(p, ln, "content-type", &v, &vl)) {
						copy_val(r->ctype, sizeof r->ctype, v, vl);
					} else if (bench_header_is(p, ln, "retry-after", &v, &vl)) {
						char tmp[24];
						char *end = NULL;
						long s;

						copy_val(tmp, sizeof tmp, v, vl);
						s = strtol(tmp, &end, 10);
						/* An HTTP-date (RFC 9110 10.2.3) is not parsed: the default pause applies. */
						if (end != tmp && *end == '\0' && s >= 0)
							r->retry_after_s = s > MAX_RETRY_AFTER_S ? MAX_RETRY_AFTER_S : (int)s;
					}
				}
				if (r->status == 100) { /* 100 Continue: drop it and read on */
					memmove(c->buf, c->buf + body_start, len - body_start);
					len -= body_start;
					body_start = 0;
					r->status = 0;
					continue;
				}
				if (strcmp(method, "HEAD") == 0 || r->status == 204 || r->status == 304)
					clen = 0;
			}
			if (chunked) {
				size_t dl = 0;
				int d = bench_chunked_complete(c->buf + body_start, len - body_start, MAX_RESP_BYTES, &dl);

				if (d < 0)
					goto bad;
				if (d == 1) {
					dechunk_copy(c->buf + body_start, len - body_start);
					r->body_len = dl;
					break;
				}
			} else if (clen >= 0) {
				if (len - body_start > (size_t)clen)
					goto bad; /* we never pipeline */
				if (len - body_start == (size_t)clen)
					break;
			}
		}
		if (!chunked)
			r->body_len = len - body_start;
		c->buf[body_start + r->body_len] = '\0';
		r->body = c->buf + body_start;
		if (close_after)
			hconn_close(c);
		return 0;
bad:
		hconn_close(c);
		return -1;
again:;
	}
	return -1;
}

/* "http://host:port/v1/..." -> "/v1/...": requests go to -url whatever the authority says. */
static const char *url_path(const char *url)
{
	const char *p = strstr(url, "://");

	if (p == NULL)
		return url;
	p = strchr(p + 3, '/');
	return p != NULL ? p : "/";
}

/* ---------------------------------------------------------------- http-01 responder */

struct chal {
	struct chal *next;
	char *token, *key_authz;
};

static struct {
	pthread_mutex_t mu;
	struct chal *b[CHAL_BUCKETS];
	int fds[2];
	int nfds;
	atomic_bool stop;
	atomic_uint_fast64_t hits, misses;
	pthread_t thread;
} responder = {.mu = PTHREAD_MUTEX_INITIALIZER};

static size_t chal_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return (size_t)(h % CHAL_BUCKETS);
}

static void chal_put(const char *token, const char *key_authz)
{
	struct chal *c = bench_xmalloc(sizeof *c);
	size_t h = chal_hash(token);

	c->token = xstrdup(token);
	c->key_authz = xstrdup(key_authz);
	pthread_mutex_lock(&responder.mu);
	c->next = responder.b[h];
	responder.b[h] = c;
	pthread_mutex_unlock(&responder.mu);
}

static void chal_del(const char *token)
{
	size_t h = chal_hash(token);
	struct chal **pp, *c = NULL;

	pthread_mutex_lock(&responder.mu);
	for (pp = &responder.b[h]; *pp != NULL; pp = &(*pp)->next) {
		if (strcmp((*pp)->token, token) == 0) {
			c = *pp;
			*pp = c->next;
			break;
		}
	}
	pthread_mutex_unlock(&responder.mu);
	if (c != NULL) {
		free(c->token);
		free(c->key_authz);
		free(c);
	}
}

/* The key authorization of token, copied into out; false when unknown. */
static bool chal_get(const char *token, char *out, size_t cap)
{
	size_t h = chal_hash(token);
	bool found = false;

	pthread_mutex_lock(&responder.mu);
	for (struct chal *c = responder.b[h]; c != NULL; c = c->next) {
		if (strcmp(c->token, token) == 0 && strlen(c->key_authz) < cap) {
			memcpy(out, c->key_authz, strlen(c->key_authz) + 1);
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&responder.mu);
	return found;
}

/* One validation request: GET /.well-known/acme-challenge/<token>, answered and closed. */
static void responder_serve(int fd)
{
	struct timeval tv = {.tv_sec = CHAL_IO_TIMEOUT_MS / 1000, .tv_usec = (CHAL_IO_TIMEOUT_MS % 1000) * 1000};
	char req[CHAL_REQ_BYTES + 1], ka[512], resp[768], token[256];
	const char *prefix = "GET /.well-known/acme-challenge/";
	size_t len = 0, tl;
	int n;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	while (len < CHAL_REQ_BYTES) {
		ssize_t k = recv(fd, req + len, CHAL_REQ_BYTES - len, 0);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return;
		len += (size_t)k;
		req[len] = '\0';
		if (strstr(req, "\r\n\r\n") != NULL)
			break;
	}
	req[len] = '\0';
	tl = strncmp(req, prefix, strlen(prefix)) == 0 ? strcspn(req + strlen(prefix), " ?\r\n") : 0;
	if (tl > 0 && tl < sizeof token) {
		memcpy(token, req + strlen(prefix), tl);
		token[tl] = '\0';
	} else {
		token[0] = '\0';
	}
	if (token[0] != '\0' && chal_get(token, ka, sizeof ka)) {
		atomic_fetch_add(&responder.hits, 1);
		n = snprintf(resp, sizeof resp,
		             "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
		             strlen(ka), ka);
	} else {
		atomic_fetch_add(&responder.misses, 1);
		n = snprintf(resp, sizeof resp, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
	}
	if (n > 0 && (size_t)n < sizeof resp)
		(void)send_all(fd, resp, (size_t)n);
}

static void *responder_run(void *arg)
{
	struct pollfd pf[2];

	(void)arg;
	for (int i = 0; i < responder.nfds; i++)
		pf[i] = (struct pollfd){.fd = responder.fds[i], .events = POLLIN};
	while (!atomic_load(&responder.stop)) {
		int n = poll(pf, (nfds_t)responder.nfds, 100);

		if (n <= 0)
			continue;
		for (int i = 0; i < responder.nfds; i++) {
			int fd;

			if (!(pf[i].revents & POLLIN))
				continue;
			fd = accept4(pf[i].fd, NULL, NULL, SOCK_CLOEXEC);
			if (fd < 0)
				continue;
			responder_serve(fd);
			close(fd);
		}
	}
	return NULL;
}

/* Listens on 127.0.0.1 (required) and ::1 (if the host has it: *.localhost may resolve to either). */
static void responder_start(void)
{
	int one = 1;

	for (int fam = 0; fam < 2; fam++) {
		int fd = socket(fam == 0 ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o.http01_port)};
		struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)o.http01_port)};
		int rc;

		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (fam == 0) {
			a4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
			rc = bind(fd, (struct sockaddr *)&a4, sizeof a4);
		} else {
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
			a6.sin6_addr = in6addr_loopback;
			rc = bind(fd, (struct sockaddr *)&a6, sizeof a6);
		}
		if (rc != 0 || listen(fd, 256) != 0) {
			close(fd);
			if (fam == 0) {
				fprintf(stderr, "sigil-bench: cannot listen on 127.0.0.1:%d: %s\n", o.http01_port, strerror(errno));
				exit(2);
			}
			continue;
		}
		responder.fds[responder.nfds++] = fd;
	}
	if (pthread_create(&responder.thread, NULL, responder_run, NULL) != 0)
		bench_die("cannot start the http-01 responder");
}

static void responder_stop(void)
{
	atomic_store(&responder.stop, true);
	pthread_join(responder.thread, NULL);
	for (int i = 0; i < responder.nfds; i++)
		close(responder.fds[i]);
	for (size_t h = 0; h < CHAL_BUCKETS; h++) {
		while (responder.b[h] != NULL) {
			struct chal *c = responder.b[h];

			responder.b[h] = c->next;
			free(c->token);
			free(c->key_authz);
			free(c);
		}
	}
}

/* ---------------------------------------------------------------- ACME client */

enum step { S_ORDER, S_AUTHZ, S_CHALLENGE, S_FINALIZE, S_CERT, S_COUNT };
static const char *const step_names[S_COUNT] = {"newOrder", "authz", "challenge", "finalize", "cert"};

struct worker {
	int id;
	pthread_t thread;
	struct hconn conn;
	struct account acct;
	char nonce[MAX_NONCE_BYTES];
	char **pool;                /* -csr-pool: CSRs (base64url DER) */
	/* results */
	uint64_t ok, ok_in_window, failed, requests, bad_nonces, polls;
	uint64_t step_us[S_COUNT];  /* summed over complete orders */
	uint64_t cur_us[S_COUNT];   /* the order in progress */
	uint32_t *lat_us;
	size_t nlat, cap_lat;
	uint64_t last_done;
	char err[600];              /* first failure */
};

static struct {
	char new_nonce[MAX_URL_BYTES], new_account[MAX_URL_BYTES], new_order[MAX_URL_BYTES];
	bool eab_required;
} dir;

static atomic_uint_fast64_t orders_started;
static uint64_t t_start, deadline;

static void fail(struct worker *w, const char *what, const struct hresp *r)
{
	w->failed++;
	if (w->err[0] == '\0') {
		if (r != NULL)
			snprintf(w->err, sizeof w->err, "%s: HTTP %d: %.400s", what, r->status, r->body != NULL ? r->body : "");
		else
			snprintf(w->err, sizeof w->err, "%s: connection failed", what);
	}
}

static int get_nonce(struct worker *w)
{
	struct hresp r;

	w->requests++;
	if (http_do(&w->conn, "GET", url_path(dir.new_nonce), NULL, NULL, NULL, &r) != 0 || r.nonce[0] == '\0') {
		fail(w, "newNonce", NULL);
		return -1;
	}
	memcpy(w->nonce, r.nonce, sizeof w->nonce);
	return 0;
}

static bool is_bad_nonce(const struct hresp *r)
{
	return r->status == 400 && r->body != NULL && strstr(r->body, "urn:ietf:params:acme:error:badNonce") != NULL;
}

/*
 * A signed POST (payload NULL: POST-as-GET) with the worker's nonce; the
 * answer's Replay-Nonce is kept for the next one, and badNonce is retried
 * with it (RFC 8555 6.5). -1 on a transport failure.
 */
static int acme_post(struct worker *w, const char *url, const char *payload, struct hresp *r)
{
	memset(r, 0, sizeof *r);
	for (int attempt = 0; attempt <= MAX_BADNONCE_RETRIES; attempt++) {
		char *body;
		int rc;

		if (w->nonce[0] == '\0' && get_nonce(w) != 0)
			return -1;
		body = jws(&w->acct, w->nonce, url, payload);
		w->nonce[0] = '\0';
		w->requests++;
		rc = http_do(&w->conn, "POST", url_path(url), "application/jose+json", NULL, body, r);
		free(body);
		if (rc != 0)
			return -1;
		memcpy(w->nonce, r->nonce, sizeof w->nonce);
		if (!is_bad_nonce(r))
			return 0;
		w->bad_nonces++;
	}
	return 0;
}

static json_t *body_json(const struct hresp *r)
{
	return r->body != NULL ? json_loadb(r->body, r->body_len, 0, NULL) : NULL;
}

static const char *jstr(const json_t *j, const char *k)
{
	return json_string_value(json_object_get(j, k));
}

static void pause_for(const struct hresp *r)
{
	sleep_ms(r->retry_after_s >= 0 ? (uint64_t)r->retry_after_s * 1000u : DEFAULT_POLL_MS);
}

static bool order_expired(uint64_t t0)
{
	return bench_now_us() - t0 > o.timeout_ms * 1000u;
}

/* The authorization: its http-01 challenge answered, then polled until final. 0 when valid. */
static int do_authz(struct worker *w, const char *authz_url, uint64_t t0)
{
	struct hresp r;
	json_t *az = NULL, *ch, *v;
	char *token = NULL, *curl = NULL, ka[512];
	const char *status;
	uint64_t t;
	size_t i;
	int rc = -1;

	t = bench_now_us();
	if (acme_post(w, authz_url, NULL, &r) != 0 || r.status != 200 || (az = body_json(&r)) == NULL) {
		fail(w, "authorization", r.status ? &r : NULL);
		goto out;
	}
	w->cur_us[S_AUTHZ] += bench_now_us() - t;
	if ((status = jstr(az, "status")) != NULL && strcmp(status, "valid") == 0) {
		rc = 0;
		goto out;
	}
	ch = NULL;
	json_array_foreach(json_object_get(az, "challenges"), i, v) {
		if (jstr(v, "type") != NULL && strcmp(jstr(v, "type"), "http-01") == 0)
			ch = v;
	}
	if (ch == NULL || jstr(ch, "url") == NULL || jstr(ch, "token") == NULL) {
		fail(w, "authorization without an http-01 challenge", &r);
		goto out;
	}
	token = xstrdup(jstr(ch, "token"));
	curl = xstrdup(jstr(ch, "url"));
	/* RFC 8555 8.1: keyAuthorization = token || '.' || base64url(JWK_Thumbprint(accountKey)). */
	snprintf(ka, sizeof ka, "%s.%s", token, w->acct.thumbprint);
	chal_put(token, ka);
	t = bench_now_us();
	if (acme_post(w, curl, "{}", &r) != 0 || r.status != 200) {
		fail(w, "challenge", r.status ? &r : NULL);
		goto out;
	}
	json_decref(az);
	az = body_json(&r);
	status = jstr(az, "status");
	/* The challenge's status; while it is not final, the authorization is polled. */
	while (status == NULL || (strcmp(status, "valid") != 0 && strcmp(status, "invalid") != 0)) {
		if (order_expired(t0)) {
			fail(w, "challenge not validated within -timeout", &r);
			goto out;
		}
		pause_for(&r);
		w->polls++;
		if (acme_post(w, authz_url, NULL, &r) != 0 || r.status != 200) {
			fail(w, "authorization poll", r.status ? &r : NULL);
			goto out;
		}
		json_decref(az);
		az = body_json(&r);
		status = jstr(az, "status");
		if (status != NULL && strcmp(status, "pending") == 0)
			status = NULL; /* the authorization stays pending while its challenge is processing */
	}
	w->cur_us[S_CHALLENGE] += bench_now_us() - t;
	if (strcmp(status, "valid") != 0) {
		fail(w, "challenge invalid", &r);
		goto out;
	}
	rc = 0;
out:
	if (token != NULL)
		chal_del(token);
	free(token);
	free(curl);
	json_decref(az);
	return rc;
}

/* One complete order. 0 when it ended with a certificate chain. */
static int do_order(struct worker *w, uint64_t seq, uint64_t t0)
{
	struct hresp r;
	json_t *ord = NULL, *v, *ids;
	char name[MAX_NAME_BYTES + 64], *payload = NULL, *csr = NULL, *order_url = NULL, *fin = NULL, *cert = NULL;
	const char *status;
	uint64_t t;
	size_t i;
	int rc = -1;

	if (o.ident_ip)
		memcpy(name, "127.0.0.1", sizeof "127.0.0.1");
	else
		snprintf(name, sizeof name, "o%" PRIu64 "-w%d.%s", o.csr_pool > 0 ? seq % (uint64_t)o.csr_pool : seq, w->id,
		         o.domain);
	ids = json_pack("{s:[{s:s, s:s}]}", "identifiers", "type", o.ident_ip ? "ip" : "dns", "value", name);
	payload = json_dumps(ids, JSON_COMPACT);
	json_decref(ids);

	t = bench_now_us();
	if (acme_post(w, dir.new_order, payload, &r) != 0 || r.status != 201 || r.location[0] == '\0' ||
	    (ord = body_json(&r)) == NULL) {
		fail(w, "newOrder", r.status ? &r : NULL);
		goto out;
	}
	w->cur_us[S_ORDER] += bench_now_us() - t;
	order_url = xstrdup(r.location);
	if (jstr(ord, "finalize") == NULL || !json_is_array(json_object_get(ord, "authorizations"))) {
		fail(w, "newOrder answer without finalize or authorizations", &r);
		goto out;
	}
	fin = xstrdup(jstr(ord, "finalize"));
	json_array_foreach(json_object_get(ord, "authorizations"), i, v) {
		if (!json_is_string(v) || do_authz(w, json_string_value(v), t0) != 0)
			goto out;
	}

	/* Finalize (RFC 8555 7.4) with the order's CSR: fresh, or from the pool. */
	t = bench_now_us();
	if (o.csr_pool > 0) {
		free(payload);
		payload = NULL;
		ids = json_pack("{s:s}", "csr", w->pool[seq % (uint64_t)o.csr_pool]);
	} else {
		csr = make_csr(name, o.ident_ip);
		ids = json_pack("{s:s}", "csr", csr);
	}
	free(payload);
	payload = json_dumps(ids, JSON_COMPACT);
	json_decref(ids);
	if (acme_post(w, fin, payload, &r) != 0 || r.status != 200) {
		fail(w, "finalize", r.status ? &r : NULL);
		goto out;
	}
	json_decref(ord);
	ord = body_json(&r);
	status = jstr(ord, "status");
	while (status == NULL || strcmp(status, "processing") == 0 || strcmp(status, "ready") == 0) {
		if (order_expired(t0)) {
			fail(w, "order not valid within -timeout", &r);
			goto out;
		}
		pause_for(&r);
		w->polls++;
		if (acme_post(w, order_url, NULL, &r) != 0 || r.status != 200) {
			fail(w, "order poll", r.status ? &r : NULL);
			goto out;
		}
		json_decref(ord);
		ord = body_json(&r);
		status = jstr(ord, "status");
	}
	if (strcmp(status, "valid") != 0 || jstr(ord, "certificate") == NULL) {
		fail(w, "finalize did not make the order valid", &r);
		goto out;
	}
	w->cur_us[S_FINALIZE] += bench_now_us() - t;
	cert = xstrdup(jstr(ord, "certificate"));

	t = bench_now_us();
	if (acme_post(w, cert, NULL, &r) != 0 || r.status != 200 ||
	    strncmp(r.ctype, "application/pem-certificate-chain", 33) != 0 ||
	    strstr(r.body, "-----BEGIN CERTIFICATE-----") == NULL) {
		fail(w, "certificate download", r.status ? &r : NULL);
		goto out;
	}
	w->cur_us[S_CERT] += bench_now_us() - t;
	rc = 0;
out:
	json_decref(ord);
	free(payload);
	free(csr);
	free(order_url);
	free(fin);
	free(cert);
	return rc;
}

static void record(struct worker *w, uint64_t t0, uint64_t t1)
{
	uint64_t d = t1 - t0;

	w->ok++;
	for (int s = 0; s < S_COUNT; s++)
		w->step_us[s] += w->cur_us[s];
	if (t1 <= deadline)
		w->ok_in_window++;
	w->last_done = t1;
	if (w->nlat == w->cap_lat) {
		w->cap_lat = w->cap_lat ? w->cap_lat * 2 : 1024;
		w->lat_us = realloc(w->lat_us, w->cap_lat * sizeof *w->lat_us);
		if (w->lat_us == NULL)
			bench_die("out of memory");
	}
	w->lat_us[w->nlat++] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
}

static void *worker_run(void *arg)
{
	struct worker *w = arg;

	for (;;) {
		uint64_t t0 = bench_now_us(), seq;

		if (t0 >= deadline)
			break;
		seq = atomic_fetch_add(&orders_started, 1);
		if (seq >= o.max_orders)
			break;
		memset(w->cur_us, 0, sizeof w->cur_us);
		if (do_order(w, seq, t0) == 0)
			record(w, t0, bench_now_us());
		else if (w->ok == 0 && w->failed >= GIVE_UP_FAILURES)
			break;
	}
	return NULL;
}

/* POST <mount>/[roles/<role>/]acme/new-eab with the token: the EAB key id and MAC key. */
static void eab_key(struct worker *w, char **kid, char **key)
{
	struct hresp r;
	char path[MAX_URL_BYTES], hdr[MAX_NAME_BYTES + 32];
	json_t *j, *d;

	if (!o.token[0])
		bench_die("the directory requires External Account Binding: give -token (or $SIGIL_TOKEN) to make EAB keys");
	if (o.role[0])
		snprintf(path, sizeof path, "/v1/%s/roles/%s/acme/new-eab", o.mount, o.role);
	else
		snprintf(path, sizeof path, "/v1/%s/acme/new-eab", o.mount);
	snprintf(hdr, sizeof hdr, "X-Vault-Token: %s\r\n", o.token);
	if (http_do(&w->conn, "POST", path, "application/json", hdr, "{}", &r) != 0 || r.status != 200 ||
	    (j = body_json(&r)) == NULL) {
		fprintf(stderr, "sigil-bench: new-eab: HTTP %d: %.300s\n", r.status, r.body ? r.body : "");
		exit(1);
	}
	d = json_object_get(j, "data");
	if (jstr(d, "id") == NULL || jstr(d, "key") == NULL)
		bench_die("new-eab answer without id and key");
	*kid = xstrdup(jstr(d, "id"));
	*key = xstrdup(jstr(d, "key"));
	json_decref(j);
}

/* newAccount (RFC 8555 7.3), with an EAB when the directory asks for it. */
static void account_create(struct worker *w)
{
	struct hresp r;
	json_t *p = json_pack("{s:b}", "termsOfServiceAgreed", 1);
	char *payload;

	account_init(&w->acct);
	if (dir.eab_required) {
		char *kid = NULL, *key = NULL;

		eab_key(w, &kid, &key);
		json_object_set_new(p, "externalAccountBinding", eab_jws(&w->acct, kid, key, dir.new_account));
		OPENSSL_cleanse(key, strlen(key));
		free(kid);
		free(key);
	}
	payload = json_dumps(p, JSON_COMPACT);
	json_decref(p);
	if (acme_post(w, dir.new_account, payload, &r) != 0 || r.status != 201 || r.location[0] == '\0') {
		fprintf(stderr, "sigil-bench: newAccount: HTTP %d: %.400s\n", r.status, r.body ? r.body : "");
		exit(1);
	}
	free(payload);
	w->acct.kid = xstrdup(r.location);
}

static void directory_get(void)
{
	struct hconn c = {.fd = -1};
	struct hresp r;
	char path[MAX_URL_BYTES];
	json_t *d;
	const char *nn, *na, *no;

	if (o.role[0])
		snprintf(path, sizeof path, "/v1/%s/roles/%s/acme/directory", o.mount, o.role);
	else
		snprintf(path, sizeof path, "/v1/%s/acme/directory", o.mount);
	if (http_do(&c, "GET", path, NULL, NULL, NULL, &r) != 0) {
		fprintf(stderr, "sigil-bench: GET %s: no answer from %s\n", path, o.hostport);
		exit(1);
	}
	if (r.status != 200 || (d = body_json(&r)) == NULL) {
		fprintf(stderr, "sigil-bench: GET %s: HTTP %d: %.300s\n", path, r.status, r.body);
		exit(1);
	}
	nn = jstr(d, "newNonce");
	na = jstr(d, "newAccount");
	no = jstr(d, "newOrder");
	if (nn == NULL || na == NULL || no == NULL || strlen(nn) >= MAX_URL_BYTES || strlen(na) >= MAX_URL_BYTES ||
	    strlen(no) >= MAX_URL_BYTES)
		bench_die("the ACME directory lacks newNonce, newAccount or newOrder");
	memcpy(dir.new_nonce, nn, strlen(nn) + 1);
	memcpy(dir.new_account, na, strlen(na) + 1);
	memcpy(dir.new_order, no, strlen(no) + 1);
	dir.eab_required = json_is_true(json_object_get(json_object_get(d, "meta"), "externalAccountRequired"));
	json_decref(d);
	hconn_close(&c);
	free(c.buf);
}

/* This process's CPU time (all threads), microseconds. */
static uint64_t cpu_us(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return (uint64_t)ru.ru_utime.tv_sec * 1000000u + (uint64_t)ru.ru_utime.tv_usec +
	       (uint64_t)ru.ru_stime.tv_sec * 1000000u + (uint64_t)ru.ru_stime.tv_usec;
}

int acmeload_main(int argc, char **argv)
{
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
	struct worker *ws;
	uint64_t ok = 0, in_window = 0, failed = 0, requests = 0, bad_nonces = 0, polls = 0, last_done = 0;
	uint64_t step_us[S_COUNT] = {0}, t_csr, cpu0, cpu_used;
	uint32_t *lat;
	size_t nlat = 0;
	const char *first_err = NULL;
	double elapsed, rps, p50, p90, p99, mx, csr_us;
	int gai;

	parse_args(argc, argv);
	if ((gai = getaddrinfo(o.host, o.port, &hints, &server_addr)) != 0) {
		fprintf(stderr, "sigil-bench: %s: %s\n", o.host, gai_strerror(gai));
		return 2;
	}
	/* The client's own CPU cost of a fresh key and CSR, before any thread runs and outside any timing. */
	t_csr = cpu_us();
	for (int i = 0; i < CSR_COST_SAMPLES; i++)
		free(make_csr("cost.bench.localhost", false));
	csr_us = (double)(cpu_us() - t_csr) / CSR_COST_SAMPLES;

	responder_start();
	directory_get();
	ws = calloc((size_t)o.workers, sizeof *ws);
	if (ws == NULL)
		bench_die("out of memory");
	/* Accounts (and pooled CSRs) before the timed phase. */
	for (int i = 0; i < o.workers; i++) {
		struct worker *w = &ws[i];

		w->id = i;
		w->conn.fd = -1;
		account_create(w);
		if (o.csr_pool > 0) {
			w->pool = bench_xmalloc(sizeof(char *) * (size_t)o.csr_pool);
			for (int k = 0; k < o.csr_pool; k++) {
				char name[MAX_NAME_BYTES + 64];

				if (o.ident_ip)
					memcpy(name, "127.0.0.1", sizeof "127.0.0.1");
				else
					snprintf(name, sizeof name, "o%d-w%d.%s", k, i, o.domain);
				w->pool[k] = make_csr(name, o.ident_ip);
			}
		}
	}

	cpu0 = cpu_us();
	t_start = bench_now_us();
	deadline = t_start + o.duration_ms * 1000u;
	for (int i = 0; i < o.workers; i++)
		if (pthread_create(&ws[i].thread, NULL, worker_run, &ws[i]) != 0)
			bench_die("cannot start a worker thread");
	for (int i = 0; i < o.workers; i++)
		pthread_join(ws[i].thread, NULL);
	cpu_used = cpu_us() - cpu0;
	responder_stop();

	for (int i = 0; i < o.workers; i++) {
		const struct worker *w = &ws[i];

		ok += w->ok;
		in_window += w->ok_in_window;
		failed += w->failed;
		requests += w->requests;
		bad_nonces += w->bad_nonces;
		polls += w->polls;
		nlat += w->nlat;
		if (w->last_done > last_done)
			last_done = w->last_done;
		for (int s = 0; s < S_COUNT; s++)
			step_us[s] += w->step_us[s];
		if (first_err == NULL && w->err[0] != '\0')
			first_err = w->err;
	}
	lat = bench_xmalloc(sizeof(uint32_t) * (nlat ? nlat : 1));
	nlat = 0;
	for (int i = 0; i < o.workers; i++) {
		memcpy(lat + nlat, ws[i].lat_us, ws[i].nlat * sizeof *lat);
		nlat += ws[i].nlat;
	}
	qsort(lat, nlat, sizeof *lat, bench_cmp_u32);
	/* The window: the duration, or until the last order when -n ended the run first. */
	elapsed = (double)((last_done && last_done < deadline ? last_done : deadline) - t_start) / 1e6;
	if (elapsed <= 0)
		elapsed = 1e-6;
	rps = (double)in_window / elapsed;
	p50 = bench_pct_ms(lat, nlat, 0.50);
	p90 = bench_pct_ms(lat, nlat, 0.90);
	p99 = bench_pct_ms(lat, nlat, 0.99);
	mx = nlat ? lat[nlat - 1] / 1000.0 : 0;

	if (first_err != NULL)
		fprintf(stderr, "sigil-bench: first failed order: %s\n", first_err);
	printf("sigil-bench: acme %s/%sacme on %s, %d workers (one account each), %.1f s, identifiers %s, CSR %s\n",
	       o.mount, o.role[0] ? "roles/<role>/" : "", o.hostport, o.workers, o.duration_ms / 1000.0,
	       o.ident_ip ? "ip 127.0.0.1" : "dns *.<domain>", o.csr_pool > 0 ? "pool (made before the run)" : "fresh key per order");
	printf("orders      %" PRIu64 " complete with a certificate, %" PRIu64 " failed\n", ok, failed);
	printf("throughput  %.1f orders/s (complete within the %.2f s load window)\n", rps, elapsed);
	printf("latency ms  p50 %.2f  p90 %.2f  p99 %.2f  max %.2f (newOrder to chain downloaded)\n", p50, p90, p99, mx);
	printf("steps ms   ");
	for (int s = 0; s < S_COUNT; s++)
		printf(" %s %.2f", step_names[s], ok ? (double)step_us[s] / 1000.0 / (double)ok : 0.0);
	printf(" (means)\n");
	printf("requests    %" PRIu64 " ACME requests (%.1f per order), %" PRIu64 " badNonce retries, %" PRIu64
	       " polls, %" PRIu64 " http-01 answers (%" PRIu64 " not found)\n",
	       requests, ok ? (double)requests / (double)ok : 0.0, bad_nonces, polls,
	       (uint64_t)atomic_load(&responder.hits), (uint64_t)atomic_load(&responder.misses));
	printf("client      %.0f us of CPU per fresh EC P-256 key + CSR (measured before the run); %.2f ms of CPU "
	       "per order in the run\n",
	       csr_us, ok ? (double)cpu_used / 1000.0 / (double)ok : 0.0);
	printf("RESULT mode=acme c=%d requests=%" PRIu64 " ok=%" PRIu64 " errors=%" PRIu64
	       " seconds=%.2f rps=%.1f p50=%.2f p90=%.2f p99=%.2f max=%.2f csr_us=%.0f client_cpu_ms=%.2f\n",
	       o.workers, ok + failed, ok, failed, elapsed, rps, p50, p90, p99, mx, csr_us,
	       ok ? (double)cpu_used / 1000.0 / (double)ok : 0.0);

	for (int i = 0; i < o.workers; i++) {
		struct worker *w = &ws[i];

		hconn_close(&w->conn);
		free(w->conn.buf);
		account_clear(&w->acct);
		for (int k = 0; w->pool != NULL && k < o.csr_pool; k++)
			free(w->pool[k]);
		free(w->pool);
		free(w->lat_us);
	}
	free(ws);
	free(lat);
	freeaddrinfo(server_addr);
	return ok == 0 ? 1 : 0;
}
