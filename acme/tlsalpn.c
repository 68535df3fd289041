/*
 * tls-alpn-01 (RFC 8737; RFC 8738 6 for IP identifiers): an OpenSSL client
 * handshake with the identifier that offers only the acme-tls/1 protocol,
 * then checks of the self-signed certificate it was shown. The chain is
 * not verified: the key authorization digest in the certificate is what
 * proves control.
 */
#include "acme/acme.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ACME_TLSALPN_OID "1.3.6.1.5.5.7.1.31" /* id-pe-acmeIdentifier, RFC 8737 6.1 */
#define ACME_TLSALPN_PROTO "acme-tls/1"
#define ACME_TLSALPN_MAX_ADDRS 8

/* RFC 8738 6: the SNI for an address is its reverse-mapping name (in-addr.arpa / ip6.arpa). */
static char *reverse_name(const char *ip)
{
	unsigned char a[16];

	if (inet_pton(AF_INET, ip, a) == 1)
		return sg_xasprintf("%u.%u.%u.%u.in-addr.arpa", a[3], a[2], a[1], a[0]);
	if (inet_pton(AF_INET6, ip, a) == 1) {
		char *s = sg_xcalloc(1, 16 * 4 + sizeof("ip6.arpa"));
		size_t o = 0;
		static const char hex[] = "0123456789abcdef";

		for (int i = 15; i >= 0; i--) {
			s[o++] = hex[a[i] & 0xf];
			s[o++] = '.';
			s[o++] = hex[a[i] >> 4];
			s[o++] = '.';
		}
		memcpy(s + o, "ip6.arpa", sizeof("ip6.arpa"));
		return s;
	}
	return NULL;
}

/* A TCP connection to addr:port within the remaining time; -1 with SG_ACME_CONNECTION. */
static int tcp_connect(const char *addr, int64_t port, int timeout_ms, struct sg_err *err)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, r, soerr = 0;
	socklen_t el = sizeof(soerr);
	struct pollfd pfd;
	struct timeval tv;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, addr, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		((struct sockaddr_in *)&ss)->sin_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
		sl = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, addr, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
		sl = sizeof(struct sockaddr_in6);
	} else {
		return sg_err_set(err, SG_ACME_CONNECTION, "bad address %s", addr);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return sg_err_set(err, SG_ACME_CONNECTION, "socket: %s", strerror(errno));
	r = connect(fd, (struct sockaddr *)&ss, sl);
	if (r != 0 && errno != EINPROGRESS) {
		sg_err_set(err, SG_ACME_CONNECTION, "connecting to %s port %lld: %s", addr, (long long)port, strerror(errno));
		close(fd);
		return -1;
	}
	if (r != 0) {
		pfd.fd = fd;
		pfd.events = POLLOUT;
		r = poll(&pfd, 1, timeout_ms);
		if (r <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &el) != 0 || soerr != 0) {
			sg_err_set(err, SG_ACME_CONNECTION, "connecting to %s port %lld: %s", addr, (long long)port,
			           r == 0 ? "timed out" : strerror(soerr != 0 ? soerr : errno));
			close(fd);
			return -1;
		}
	}
	/* The handshake runs blocking, each read and write bounded by the time left. */
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0)
		sg_die("fcntl failed");
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

/* RFC 8737 3: exactly one subjectAltName entry, the identifier being validated. -2 when not. */
static int check_san(X509 *x, const char *identifier, bool is_ip, struct sg_err *err)
{
	GENERAL_NAMES *gens;
	const GENERAL_NAME *g;
	int crit = -1, rc = -2;

	gens = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
	if (gens == NULL) {
		/* crit -2: the extension appears more than once; -1: absent; else undecodable. */
		sg_err_set(err, SG_ACME_INCORRECT_RESPONSE, "the tls-alpn-01 certificate has %s subjectAltName",
		           crit == -2 ? "more than one" : crit == -1 ? "no" : "an undecodable");
		return -2;
	}
	if (sk_GENERAL_NAME_num(gens) != 1) {
		sg_err_set(err, SG_ACME_INCORRECT_RESPONSE,
		           "the tls-alpn-01 certificate must name only the identifier, it has %d subjectAltNames",
		           sk_GENERAL_NAME_num(gens));
		goto out;
	}
	g = sk_GENERAL_NAME_value(gens, 0);
	if (!is_ip && g->type == GEN_DNS) {
		const ASN1_IA5STRING *s = g->d.dNSName;

		if ((size_t)ASN1_STRING_length(s) == strlen(identifier) &&
		    strncasecmp((const char *)ASN1_STRING_get0_data(s), identifier, strlen(identifier)) == 0)
			rc = 0;
	} else if (is_ip && g->type == GEN_IPADD) {
		unsigned char a[16];
		int alen = strchr(identifier, ':') != NULL ? 16 : 4;

		if (inet_pton(alen == 16 ? AF_INET6 : AF_INET, identifier, a) == 1 &&
		    ASN1_STRING_length(g->d.iPAddress) == alen &&
		    memcmp(ASN1_STRING_get0_data(g->d.iPAddress), a, (size_t)alen) == 0)
			rc = 0;
	}
	if (rc != 0)
		sg_err_set(err, SG_ACME_INCORRECT_RESPONSE, "the tls-alpn-01 certificate's subjectAltName is not %s",
		           identifier);
out:
	GENERAL_NAMES_free(gens);
	return rc;
}

/* RFC 8737 3: one critical id-pe-acmeIdentifier holding the OCTET STRING SHA-256(key authorization). */
static int check_acme_identifier(X509 *x, const char *key_authz, struct sg_err *err)
{
	ASN1_OBJECT *oid = OBJ_txt2obj(ACME_TLSALPN_OID, 1);
	ASN1_OCTET_STRING *inner = NULL;
	const ASN1_OCTET_STRING *data;
	const unsigned char *p;
	X509_EXTENSION *ext;
	unsigned char md[32];
	unsigned int mdlen = 0;
	int idx, rc = -2;

	if (oid == NULL)
		sg_die("OBJ_txt2obj failed");
	idx = X509_get_ext_by_OBJ(x, oid, -1);
	if (idx < 0) {
		sg_err_set(err, SG_ACME_INCORRECT_RESPONSE, "the tls-alpn-01 certificate has no acmeIdentifier extension");
		goto out;
	}
	if (X509_get_ext_by_OBJ(x, oid, idx) >= 0) {
		sg_err_set(err, SG_ACME_INCORRECT_RESPONSE, "the tls-alpn-01 certificate has two acmeIdentifier extensions");
		goto out;
	}
	ext = X509_get_ext(x, idx);
	if (X509_EXTENSION_get_critical(ext) != 1) {
		sg_err_set(err, SG_ACME_INCORRECT_RESPONSE, "the acmeIdentifier extension must be critical (RFC 8737 3)");
		goto out;
	}
	data = X509_EXTENSION_get_data(ext);
	p = ASN1_STRING_get0_data(data);
	inner = d2i_ASN1_OCTET_STRING(NULL, &p, ASN1_STRING_length(data));
	if (inner == NULL || p != ASN1_STRING_get0_data(data) + ASN1_STRING_length(data) ||
	    ASN1_STRING_length(inner) != 32) {
		ERR_clear_error();
		sg_err_set(err, SG_ACME_INCORRECT_RESPONSE,
		           "the acmeIdentifier extension is not an OCTET STRING of 32 bytes (RFC 8737 3)");
		goto out;
	}
	if (EVP_Digest(key_authz, strlen(key_authz), md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != sizeof(md))
		sg_die("SHA-256 failed");
	if (!sg_ct_equal(ASN1_STRING_get0_data(inner), 32, md, sizeof(md))) {
		sg_err_set(err, SG_ACME_INCORRECT_RESPONSE,
		           "the acmeIdentifier extension does not hold the SHA-256 of the key authorization");
		goto out;
	}
	rc = 0;
out:
	ASN1_OCTET_STRING_free(inner);
	ASN1_OBJECT_free(oid);
	return rc;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One handshake and the checks; as acme_tlsalpn01_validate. */
static int try_addr(SSL_CTX *ctx, const char *addr, int64_t port, const char *sni, const char *identifier, bool is_ip,
                    const char *key_authz, int timeout_ms, struct sg_err *err)
{
	SSL *ssl = NULL;
	X509 *peer = NULL;
	const unsigned char *proto = NULL;
	unsigned int proto_len = 0;
	int fd, rc = -1;

	fd = tcp_connect(addr, port, timeout_ms, err);
	if (fd < 0)
		return -1;
	ssl = SSL_new(ctx);
	if (ssl == NULL || SSL_set_fd(ssl, fd) != 1 || SSL_set_tlsext_host_name(ssl, sni) != 1) {
		sg_err_ossl(err, SG_ACME_TLS, "cannot set up the TLS client");
		goto out;
	}
	if (SSL_connect(ssl) != 1) {
		unsigned long e = ERR_peek_last_error();
		char buf[160];

		ERR_error_string_n(e, buf, sizeof(buf));
		ERR_clear_error();
		sg_err_set(err, SG_ACME_TLS, "TLS handshake with %s port %lld (SNI %s, ALPN acme-tls/1) failed: %s", addr,
		           (long long)port, sni, e != 0 ? buf : "connection closed or timed out");
		goto out;
	}
	/* RFC 8737 3: the negotiated protocol must be acme-tls/1. */
	SSL_get0_alpn_selected(ssl, &proto, &proto_len);
	if (proto_len != strlen(ACME_TLSALPN_PROTO) || memcmp(proto, ACME_TLSALPN_PROTO, proto_len) != 0) {
		sg_err_set(err, SG_ACME_TLS, "%s port %lld did not negotiate ALPN acme-tls/1", addr, (long long)port);
		goto out;
	}
	peer = SSL_get1_peer_certificate(ssl);
	if (peer == NULL) {
		sg_err_set(err, SG_ACME_TLS, "%s port %lld presented no certificate", addr, (long long)port);
		goto out;
	}
	rc = check_san(peer, identifier, is_ip, err);
	if (rc == 0)
		rc = check_acme_identifier(peer, key_authz, err);
out:
	X509_free(peer);
	if (ssl != NULL) {
		(void)SSL_shutdown(ssl);
		SSL_free(ssl);
	}
	ERR_clear_error();
	close(fd);
	return rc;
}

int acme_tlsalpn01_validate(const char *resolver, const char *identifier, bool is_ip, int64_t port,
                            const char *key_authz, struct sg_err *err)
{
	static const unsigned char alpn[] = "\x0a" ACME_TLSALPN_PROTO;
	struct sg_strlist addrs = {0};
	SSL_CTX *ctx = NULL;
	char *sni = NULL;
	int64_t deadline = now_ms() + ACME_TLSALPN01_TIMEOUT_S * 1000;
	int rc = -1;

	sni = is_ip ? reverse_name(identifier) : sg_xstrdup(identifier);
	if (sni == NULL) {
		sg_err_set(err, SG_ACME_MALFORMED, "%s is not an IP address", identifier);
		rc = -2;
		goto out;
	}
	if (acme_dns_host_addrs(resolver, identifier, &addrs, err) != 0)
		goto out;
	ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL)
		sg_die("SSL_CTX_new failed");
	/* RFC 8737 4: TLS 1.2 or higher; the chain is not verified (self-signed by design). */
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	if (SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1) != 0)
		sg_die("SSL_CTX_set_alpn_protos failed");
	for (size_t i = 0; i < addrs.n && i < ACME_TLSALPN_MAX_ADDRS; i++) {
		struct sg_err e;
		int64_t left = deadline - now_ms();

		if (left <= 0)
			break;
		sg_err_init(&e);
		rc = try_addr(ctx, addrs.v[i], port, sni, identifier, is_ip, key_authz, (int)left, &e);
		/* The next address only when this one could not be reached; an answer is the answer. */
		if (rc == 0 || e.code != SG_ACME_CONNECTION || i + 1 == addrs.n) {
			if (rc != 0)
				sg_err_set(err, e.code, "%s", e.detail);
			goto out;
		}
	}
	sg_err_set(err, SG_ACME_CONNECTION, "no address of %s answered on port %lld", identifier, (long long)port);
	rc = -1;
out:
	SSL_CTX_free(ctx);
	sg_strlist_clear(&addrs);
	free(sni);
	return rc;
}
