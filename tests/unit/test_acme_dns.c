/*
 * dns-01, CAA and tls-alpn-01 validation against in-process peers: a small
 * DNS server on 127.0.0.1 (UDP and TCP, answers built from a table of
 * records, authoritative-style: an alias is answered with its CNAME only,
 * except under inline.test where the target's records follow) and an
 * OpenSSL TLS server presenting good and bad acme-tls/1 certificates.
 */
#include "acme/acme.h"
#include "tests/unit/t.h"

#include <arpa/inet.h>
#include <ldns/dname.h>
#include <ldns/rbtree.h>
#include <ldns/host2wire.h>
#include <ldns/packet.h>
#include <ldns/rr.h>
#include <ldns/wire2host.h>
#include <netinet/in.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *const KA = "tok3n.thumbprint";
static char *digest_b64; /* base64url(SHA-256(KA)) */

/* ---------------- the DNS server ---------------- */

static ldns_rr_list *zone;
static int dns_udp = -1, dns_tcp = -1, dns_port;
static volatile int stopping;
static int queries_tcp;

static void zone_add(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void zone_add(const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	ldns_rr *rr = NULL;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (ldns_rr_new_frm_str(&rr, buf, 60, NULL, NULL) != LDNS_STATUS_OK)
		sg_die("bad test record: %s", buf);
	ldns_rr_list_push_rr(zone, rr);
}

static bool name_under(const ldns_rdf *n, const char *suffix)
{
	ldns_rdf *s = ldns_dname_new_frm_str(suffix);
	bool r = ldns_dname_is_subdomain(n, s) || ldns_dname_compare(n, s) == 0;

	ldns_rdf_deep_free(s);
	return r;
}

/* Adds the records of (name, type) to the answer; follows CNAMEs when inline. 1 when the name exists. */
static int answer_add(ldns_pkt *a, const ldns_rdf *name, ldns_rr_type t, bool inline_chase, int depth)
{
	int exists = 0;

	for (size_t i = 0; i < ldns_rr_list_rr_count(zone); i++) {
		ldns_rr *rr = ldns_rr_list_rr(zone, i);

		if (ldns_dname_compare(ldns_rr_owner(rr), name) != 0)
			continue;
		exists = 1;
		if (ldns_rr_get_type(rr) == t)
			ldns_pkt_push_rr(a, LDNS_SECTION_ANSWER, ldns_rr_clone(rr));
		else if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_CNAME) {
			ldns_pkt_push_rr(a, LDNS_SECTION_ANSWER, ldns_rr_clone(rr));
			if (inline_chase && depth < 20)
				(void)answer_add(a, ldns_rr_rdf(rr, 0), t, inline_chase, depth + 1);
		}
	}
	return exists;
}

/* The answer to a query (wire), or NULL for no answer at all. */
static uint8_t *dns_answer(const uint8_t *q, size_t qlen, bool tcp, size_t *alen)
{
	ldns_pkt *qp = NULL, *a;
	ldns_rr *question;
	const ldns_rdf *name;
	uint8_t *wire = NULL;

	if (ldns_wire2pkt(&qp, q, qlen) != LDNS_STATUS_OK)
		return NULL;
	question = ldns_rr_list_rr(ldns_pkt_question(qp), 0);
	name = ldns_rr_owner(question);
	if (name_under(name, "slow.test.")) {
		ldns_pkt_free(qp);
		return NULL;
	}
	a = ldns_pkt_new();
	ldns_pkt_set_id(a, ldns_pkt_id(qp));
	ldns_pkt_set_qr(a, true);
	ldns_pkt_set_aa(a, true);
	ldns_pkt_set_rd(a, ldns_pkt_rd(qp));
	ldns_pkt_push_rr(a, LDNS_SECTION_QUESTION, ldns_rr_clone(question));
	if (name_under(name, "servfail.test."))
		ldns_pkt_set_rcode(a, LDNS_RCODE_SERVFAIL);
	else if (name_under(name, "wrongid.test."))
		ldns_pkt_set_id(a, (uint16_t)(ldns_pkt_id(qp) + 1));
	else if (!answer_add(a, name, ldns_rr_get_type(question), name_under(name, "inline.test."), 0))
		ldns_pkt_set_rcode(a, LDNS_RCODE_NXDOMAIN);
	if (ldns_pkt2wire(&wire, a, alen) != LDNS_STATUS_OK)
		sg_die("ldns_pkt2wire");
	if (!tcp && *alen > 512) {
		/* RFC 1035 4.2.1: too big for UDP; the client must ask again over TCP. */
		free(wire);
		ldns_rr_list_deep_free(ldns_pkt_answer(a));
		ldns_pkt_set_answer(a, ldns_rr_list_new());
		ldns_pkt_set_ancount(a, 0);
		ldns_pkt_set_tc(a, true);
		if (ldns_pkt2wire(&wire, a, alen) != LDNS_STATUS_OK)
			sg_die("ldns_pkt2wire");
	}
	ldns_pkt_free(a);
	ldns_pkt_free(qp);
	return wire;
}

static bool read_full(int fd, uint8_t *b, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, b + got, n - got);

		if (r <= 0)
			return false;
		got += (size_t)r;
	}
	return true;
}

static void *dns_server(void *arg)
{
	(void)arg;
	while (!stopping) {
		struct pollfd p[2] = {{dns_udp, POLLIN, 0}, {dns_tcp, POLLIN, 0}};
		uint8_t buf[4096], *ans;
		size_t alen = 0;

		if (poll(p, 2, 100) <= 0)
			continue;
		if (p[0].revents & POLLIN) {
			struct sockaddr_in from;
			socklen_t fl = sizeof(from);
			ssize_t n = recvfrom(dns_udp, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);

			if (n > 0 && (ans = dns_answer(buf, (size_t)n, false, &alen)) != NULL) {
				(void)!sendto(dns_udp, ans, alen, 0, (struct sockaddr *)&from, fl);
				free(ans);
			}
		}
		if (p[1].revents & POLLIN) {
			int c = accept(dns_tcp, NULL, NULL);
			uint8_t lb[2];

			if (c < 0)
				continue;
			queries_tcp++;
			if (read_full(c, lb, 2) && read_full(c, buf, (size_t)(lb[0] << 8 | lb[1])) &&
			    (ans = dns_answer(buf, (size_t)(lb[0] << 8 | lb[1]), true, &alen)) != NULL) {
				uint8_t hdr[2] = {(uint8_t)(alen >> 8), (uint8_t)alen};

				(void)!write(c, hdr, 2);
				(void)!write(c, ans, alen);
				free(ans);
			}
			close(c);
		}
	}
	return NULL;
}

static void dns_start(pthread_t *th)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int one = 1;

	for (int attempt = 0; attempt < 20; attempt++) {
		dns_udp = socket(AF_INET, SOCK_DGRAM, 0);
		memset(&sa, 0, sizeof(sa));
		sa.sin_family = AF_INET;
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (bind(dns_udp, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
		    getsockname(dns_udp, (struct sockaddr *)&sa, &sl) != 0)
			sg_die("udp bind");
		dns_tcp = socket(AF_INET, SOCK_STREAM, 0);
		setsockopt(dns_tcp, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(dns_tcp, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(dns_tcp, 8) == 0)
			break;
		close(dns_udp);
		close(dns_tcp);
		dns_tcp = -1;
	}
	if (dns_tcp < 0)
		sg_die("no port for the test DNS server");
	dns_port = ntohs(sa.sin_port);
	pthread_create(th, NULL, dns_server, NULL);
}

/* ---------------- the TLS server ---------------- */

enum cert_kind { CERT_GOOD, CERT_WRONG_SAN, CERT_TWO_SANS, CERT_NO_EXT, CERT_NONCRIT, CERT_WRONG_DIGEST, CERT_IP };
static int tls_fd = -1, tls_port;
static SSL_CTX *tls_ctx;
static bool tls_alpn = true;
static char tls_sni[256];
static EVP_PKEY *tls_key;

static int on_alpn(SSL *s, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                   unsigned int inlen, void *arg)
{
	(void)s;
	(void)arg;
	if (!tls_alpn)
		return SSL_TLSEXT_ERR_NOACK;
	if (inlen == 11 && memcmp(in, "\x0a" "acme-tls/1", 11) == 0) {
		*out = in + 1;
		*outlen = 10;
		return SSL_TLSEXT_ERR_OK;
	}
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static void add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *e;

	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (e == NULL || X509_add_ext(x, e, -1) != 1)
		sg_die("add_ext");
	X509_EXTENSION_free(e);
}

static X509 *make_cert(enum cert_kind kind)
{
	X509 *x = X509_new();
	unsigned char md[32];
	unsigned int mdlen;
	const char *ka = kind == CERT_WRONG_DIGEST ? "other.thumbprint" : KA;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC, (const unsigned char *)"acme", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_set_pubkey(x, tls_key);
	add_ext(x, NID_subject_alt_name,
	        kind == CERT_WRONG_SAN   ? "DNS:other.test"
	        : kind == CERT_TWO_SANS ? "DNS:alpn.test,DNS:extra.test"
	        : kind == CERT_IP       ? "IP:127.0.0.1"
	                                : "DNS:alpn.test");
	if (kind != CERT_NO_EXT) {
		ASN1_OCTET_STRING *inner = ASN1_OCTET_STRING_new(), *outer = ASN1_OCTET_STRING_new();
		ASN1_OBJECT *oid = OBJ_txt2obj("1.3.6.1.5.5.7.1.31", 1);
		unsigned char *der = NULL;
		int len;
		X509_EXTENSION *e;

		EVP_Digest(ka, strlen(ka), md, &mdlen, EVP_sha256(), NULL);
		ASN1_OCTET_STRING_set(inner, md, 32);
		len = i2d_ASN1_OCTET_STRING(inner, &der);
		ASN1_OCTET_STRING_set(outer, der, len);
		e = X509_EXTENSION_create_by_OBJ(NULL, oid, kind == CERT_NONCRIT ? 0 : 1, outer);
		X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
		OPENSSL_free(der);
		ASN1_OBJECT_free(oid);
		ASN1_OCTET_STRING_free(inner);
		ASN1_OCTET_STRING_free(outer);
	}
	if (X509_sign(x, tls_key, EVP_sha256()) <= 0)
		sg_die("X509_sign");
	return x;
}

static int on_sni(SSL *s, int *al, void *arg)
{
	const char *n = SSL_get_servername(s, TLSEXT_NAMETYPE_host_name);

	(void)al;
	(void)arg;
	snprintf(tls_sni, sizeof(tls_sni), "%s", n != NULL ? n : "");
	return SSL_TLSEXT_ERR_OK;
}

static void tls_use(enum cert_kind kind, bool alpn)
{
	X509 *x = make_cert(kind);

	if (SSL_CTX_use_certificate(tls_ctx, x) != 1 || SSL_CTX_use_PrivateKey(tls_ctx, tls_key) != 1)
		sg_die("SSL_CTX_use_certificate");
	X509_free(x);
	tls_alpn = alpn;
	tls_sni[0] = '\0';
}

static void *tls_server(void *arg)
{
	(void)arg;
	while (!stopping) {
		struct pollfd p = {tls_fd, POLLIN, 0};
		SSL *s;
		int c;

		if (poll(&p, 1, 100) <= 0)
			continue;
		c = accept(tls_fd, NULL, NULL);
		if (c < 0)
			continue;
		s = SSL_new(tls_ctx);
		SSL_set_fd(s, c);
		if (SSL_accept(s) == 1)
			SSL_shutdown(s);
		SSL_free(s);
		ERR_clear_error();
		close(c);
	}
	return NULL;
}

static void tls_start(pthread_t *th)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);

	tls_key = EVP_EC_gen("P-256");
	tls_ctx = SSL_CTX_new(TLS_server_method());
	SSL_CTX_set_alpn_select_cb(tls_ctx, on_alpn, NULL);
	SSL_CTX_set_tlsext_servername_callback(tls_ctx, on_sni);
	tls_fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(tls_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(tls_fd, 8) != 0 ||
	    getsockname(tls_fd, (struct sockaddr *)&sa, &sl) != 0)
		sg_die("tls bind");
	tls_port = ntohs(sa.sin_port);
	pthread_create(th, NULL, tls_server, NULL);
}

/* ---------------- tests ---------------- */

static char resolver[64];

static void test_resolver_check(void)
{
	struct sg_err e;
	const char *good[] = {"", "127.0.0.1", "127.0.0.1:5353", "[::1]:53", "::1"};
	const char *bad[] = {"dns.example:53", "127.0.0.1:0", "127.0.0.1:65536", "[::1", "[::1]x", "1.2.3.4:", ":53"};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		sg_err_init(&e);
		T_CHECK(acme_dns_resolver_check(good[i], &e) == 0, "%s: %s", good[i], e.detail);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sg_err_init(&e);
		T_CHECK(acme_dns_resolver_check(bad[i], &e) == -1 && e.code == SG_BAD_REQUEST, "%s accepted", bad[i]);
	}
}

static void test_dns01(void)
{
	struct sg_err e;
	int64_t t0;

	sg_err_init(&e);
	T_CHECK(acme_dns01_validate(resolver, "ok.test", KA, &e) == 0, "%s", e.detail);
	sg_err_init(&e);
	T_CHECK(acme_dns01_validate(resolver, "OK.Test", KA, &e) == 0, "case-insensitive names: %s", e.detail);
	sg_err_init(&e);
	T_CHECK(acme_dns01_validate(resolver, "bad.test", KA, &e) == -2 && e.code == SG_ACME_INCORRECT_RESPONSE,
	        "mismatch: %d %s", e.code, e.detail);
	sg_err_init(&e);
	T_CHECK(acme_dns01_validate(resolver, "multi.test", KA, &e) == 0, "one of several TXT: %s", e.detail);
	sg_err_init(&e);
	T_CHECK(acme_dns01_validate(resolver, "absent.test", KA, &e) == -1 && e.code == SG_ACME_UNAUTHORIZED,
	        "NXDOMAIN: %d %s", e.code, e.detail);
	sg_err_init(&e);
	T_CHECK(acme_dns01_validate(resolver, "nodata.test", KA, &e) == -1 && e.code == SG_ACME_UNAUTHORIZED,
	        "no TXT at an existing name: %d %s", e.code, e.detail);
	sg_err_init(&e);
	T_CHECK(acme_dns01_validate(resolver, "cn.test", KA, &e) == 0, "CNAME chain asked link by link: %s", e.detail);
	sg_err_init(&e);
	T_CHECK(acme_dns01_validate(resolver, "inline.test", KA, &e) == 0, "CNAME chain in one answer: %s", e.detail);
	sg_err_init(&e);
	T_CHECK(acme_dns01_validate(resolver, "loop.test", KA, &e) == -1 && e.code == SG_ACME_DNS &&
	            strstr(e.detail, "CNAME") != NULL,
	        "CNAME loop: %d %s", e.code, e.detail);
	sg_err_init(&e);
	T_CHECK(acme_dns01_validate(resolver, "x.inline.test", KA, &e) == -1 && e.code == SG_ACME_DNS,
	        "inline CNAME loop: %d %s", e.code, e.detail);
	sg_err_init(&e);
	T_CHECK(acme_dns01_validate(resolver, "long.test", KA, &e) == -1 && e.code == SG_ACME_DNS,
	        "chain of 9 links: %d %s", e.code, e.detail);
	sg_err_init(&e);
	T_CHECK(acme_dns01_validate(resolver, "eight.test", KA, &e) == 0, "chain of 8 links: %s", e.detail);
	sg_err_init(&e);
	T_CHECK(acme_dns01_validate(resolver, "servfail.test", KA, &e) == -1 && e.code == SG_ACME_DNS &&
	            strstr(e.detail, "SERVFAIL") != NULL,
	        "SERVFAIL: %d %s", e.code, e.detail);
	sg_err_init(&e);
	T_CHECK(acme_dns01_validate(resolver, "wrongid.test", KA, &e) == -1 && e.code == SG_ACME_DNS,
	        "answer with another id: %d %s", e.code, e.detail);
	sg_err_init(&e);
	t0 = sg_now();
	T_CHECK(acme_dns01_validate(resolver, "slow.test", KA, &e) == -1 && e.code == SG_ACME_DNS, "timeout: %d %s",
	        e.code, e.detail);
	T_CHECK(sg_now() - t0 <= ACME_DNS_TIMEOUT_S * ACME_DNS_TRIES + 3, "timeout took %llds",
	        (long long)(sg_now() - t0));
	sg_err_init(&e);
	T_CHECK(acme_dns01_validate("127.0.0.1:1", "ok.test", KA, &e) == -1 && e.code == SG_ACME_DNS,
	        "no server: %d %s", e.code, e.detail);
}

static void test_txt_and_addrs(void)
{
	struct acme_dns *d;
	struct sg_strlist l = {0};
	struct sg_err e;
	int before = queries_tcp;

	sg_err_init(&e);
	d = acme_dns_new(resolver, &e);
	T_OK(d != NULL);
	T_CHECK(acme_dns_txt(d, "split.test", &l, &e) == 1 && l.n == 1 && strcmp(l.v[0], "abcdef") == 0,
	        "strings joined: %zu %s", l.n, l.n ? l.v[0] : e.detail);
	sg_strlist_clear(&l);
	T_CHECK(acme_dns_txt(d, "big.test", &l, &e) == 1 && l.n == 40, "truncated UDP answer asked again over TCP: %zu %s",
	        l.n, e.detail);
	T_CHECK(queries_tcp > before, "a TCP query was made");
	sg_strlist_clear(&l);
	T_CHECK(acme_dns_txt(d, "many.test", &l, &e) == 1 && l.n == ACME_DNS_MAX_RRS, "records capped: %zu", l.n);
	sg_strlist_clear(&l);
	T_CHECK(acme_dns_addrs(d, "host.test", &l, &e) == 1 && l.n == 2 && sg_strlist_has(&l, "127.0.0.1") &&
	            sg_strlist_has(&l, "::1"),
	        "A and AAAA: %zu %s", l.n, e.detail);
	sg_strlist_clear(&l);
	T_CHECK(acme_dns_addrs(d, "alias.test", &l, &e) == 1 && l.n == 2, "addresses through a CNAME: %zu", l.n);
	sg_strlist_clear(&l);
	T_CHECK(acme_dns_addrs(d, "absent.test", &l, &e) == 0 && l.n == 0, "no address");
	acme_dns_free(d);
	sg_err_init(&e);
	T_CHECK(acme_dns_host_addrs(resolver, "host.test", &l, &e) == 0 && l.n == 2, "host addrs via resolver: %s",
	        e.detail);
	sg_strlist_clear(&l);
	T_CHECK(acme_dns_host_addrs(resolver, "192.0.2.7", &l, &e) == 0 && l.n == 1 && strcmp(l.v[0], "192.0.2.7") == 0,
	        "IP literal kept");
	sg_strlist_clear(&l);
	sg_err_init(&e);
	T_CHECK(acme_dns_host_addrs(resolver, "absent.test", &l, &e) == -1 && e.code == SG_ACME_DNS, "no address: %s",
	        e.detail);
	sg_strlist_clear(&l);
}

static void test_caa(void)
{
	struct sg_strlist ours = {0}, theirs = {0};
	struct acme_caa_set s;
	struct acme_dns *d;
	struct sg_err e;

	sg_strlist_add(&ours, "sigil.example");
	sg_strlist_add(&theirs, "other-ca.example");
	sg_err_init(&e);
	d = acme_dns_new(resolver, &e);
	/* Climbing: a.b.caa.test has no CAA, caa.test has. */
	T_CHECK(acme_dns_caa(d, "a.b.caa.test", &s, &e) == 0 && s.n == 1 && strcmp(s.owner, "caa.test") == 0 &&
	            strcmp(s.rr[0].tag, "issue") == 0,
	        "climbed to caa.test: %zu %s", s.n, s.owner ? s.owner : e.detail);
	sg_err_init(&e);
	T_CHECK(acme_caa_check(&s, &ours, "a.b.caa.test", false, &e) == 0, "ours allowed: %s", e.detail);
	sg_err_init(&e);
	T_CHECK(acme_caa_check(&s, &theirs, "a.b.caa.test", false, &e) == -1 && e.code == SG_ACME_CAA,
	        "another CA refused");
	acme_caa_set_clear(&s);
	/* Nothing anywhere: the empty set allows any CA. */
	T_CHECK(acme_dns_caa(d, "x.none.test", &s, &e) == 0 && s.n == 0, "no CAA: %zu", s.n);
	T_CHECK(acme_caa_check(&s, &theirs, "x.none.test", false, &e) == 0, "empty set allows");
	acme_caa_set_clear(&s);
	/* issuewild beats issue for wildcards; issue governs the name itself. */
	T_CHECK(acme_dns_caa(d, "w.test", &s, &e) == 0 && s.n == 2, "w.test: %zu", s.n);
	sg_err_init(&e);
	T_CHECK(acme_caa_check(&s, &ours, "w.test", true, &e) == 0, "issuewild names us: %s", e.detail);
	sg_err_init(&e);
	T_CHECK(acme_caa_check(&s, &ours, "w.test", false, &e) == -1 && e.code == SG_ACME_CAA, "issue names another");
	acme_caa_set_clear(&s);
	T_CHECK(acme_dns_caa(d, "nw.test", &s, &e) == 0 && s.n == 1, "nw.test");
	sg_err_init(&e);
	T_CHECK(acme_caa_check(&s, &ours, "nw.test", true, &e) == 0, "no issuewild: issue applies to wildcards");
	acme_caa_set_clear(&s);
	T_CHECK(acme_dns_caa(d, "iw.test", &s, &e) == 0 && s.n == 2, "iw.test");
	sg_err_init(&e);
	T_CHECK(acme_caa_check(&s, &ours, "iw.test", true, &e) == -1 && e.code == SG_ACME_CAA, "issuewild \";\" refuses");
	sg_err_init(&e);
	T_CHECK(acme_caa_check(&s, &ours, "iw.test", false, &e) == 0, "issue allows the name");
	acme_caa_set_clear(&s);
	T_CHECK(acme_dns_caa(d, "crit.test", &s, &e) == 0 && s.n == 2, "crit.test");
	sg_err_init(&e);
	T_CHECK(acme_caa_check(&s, &ours, "crit.test", false, &e) == -1 && e.code == SG_ACME_CAA &&
	            strstr(e.detail, "critical") != NULL,
	        "unknown critical tag refuses: %s", e.detail);
	acme_caa_set_clear(&s);
	T_CHECK(acme_dns_caa(d, "param.test", &s, &e) == 0 && s.n == 1, "param.test");
	sg_err_init(&e);
	T_CHECK(acme_caa_check(&s, &ours, "param.test", false, &e) == 0, "issuer with parameters: %s", e.detail);
	acme_caa_set_clear(&s);
	T_CHECK(acme_dns_caa(d, "iodef.test", &s, &e) == 0 && s.n == 1, "iodef.test");
	sg_err_init(&e);
	T_CHECK(acme_caa_check(&s, &theirs, "iodef.test", false, &e) == 0, "iodef only does not restrict");
	acme_caa_set_clear(&s);
	sg_err_init(&e);
	T_CHECK(acme_dns_caa(d, "a.servfail.test", &s, &e) == -1 && e.code == SG_ACME_DNS, "lookup failure");
	acme_caa_set_clear(&s);
	acme_dns_free(d);
	/* The validation step: not configured = not checked. */
	sg_err_init(&e);
	T_CHECK(acme_caa_validate(resolver, "caa.test", false, &theirs, &e) == -2 && e.code == SG_ACME_CAA, "validate refuses");
	sg_err_init(&e);
	T_CHECK(acme_caa_validate(resolver, "sub.caa.test", false, &ours, &e) == 0, "validate allows: %s", e.detail);
	sg_err_init(&e);
	T_CHECK(acme_caa_validate(resolver, "servfail.test", false, NULL, &e) == 0, "no identities: no lookup");
	sg_err_init(&e);
	T_CHECK(acme_caa_validate(resolver, "servfail.test", false, &ours, &e) == -1 && e.code == SG_ACME_DNS,
	        "lookup failure is retryable");
	sg_strlist_clear(&ours);
	sg_strlist_clear(&theirs);
}

static void test_tlsalpn(void)
{
	struct sg_err e;
	static const struct {
		enum cert_kind kind;
		const char *what;
	} bad[] = {{CERT_WRONG_SAN, "wrong SAN"},
	           {CERT_TWO_SANS, "two SANs"},
	           {CERT_NO_EXT, "no acmeIdentifier"},
	           {CERT_NONCRIT, "non-critical acmeIdentifier"},
	           {CERT_WRONG_DIGEST, "wrong digest"}};

	tls_use(CERT_GOOD, true);
	sg_err_init(&e);
	T_CHECK(acme_tlsalpn01_validate(resolver, "alpn.test", false, tls_port, KA, &e) == 0, "good: %s", e.detail);
	T_STREQ(tls_sni, "alpn.test");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tls_use(bad[i].kind, true);
		sg_err_init(&e);
		T_CHECK(acme_tlsalpn01_validate(resolver, "alpn.test", false, tls_port, KA, &e) == -2 &&
		            e.code == SG_ACME_INCORRECT_RESPONSE,
		        "%s: %d %s", bad[i].what, e.code, e.detail);
	}
	tls_use(CERT_GOOD, false);
	sg_err_init(&e);
	T_CHECK(acme_tlsalpn01_validate(resolver, "alpn.test", false, tls_port, KA, &e) == -1 && e.code == SG_ACME_TLS,
	        "no ALPN: %d %s", e.code, e.detail);
	/* RFC 8738 6: an IP identifier; the SNI is the reverse-mapping name. */
	tls_use(CERT_IP, true);
	sg_err_init(&e);
	T_CHECK(acme_tlsalpn01_validate(resolver, "127.0.0.1", true, tls_port, KA, &e) == 0, "IP: %s", e.detail);
	T_STREQ(tls_sni, "1.0.0.127.in-addr.arpa");
	tls_use(CERT_GOOD, true);
	sg_err_init(&e);
	T_CHECK(acme_tlsalpn01_validate(resolver, "127.0.0.1", true, tls_port, KA, &e) == -2,
	        "IP identifier, DNS SAN: %s", e.detail);
	sg_err_init(&e);
	T_CHECK(acme_tlsalpn01_validate(resolver, "alpn.test", false, 1, KA, &e) == -1 && e.code == SG_ACME_CONNECTION,
	        "closed port: %d %s", e.code, e.detail);
	sg_err_init(&e);
	T_CHECK(acme_tlsalpn01_validate(resolver, "absent.test", false, tls_port, KA, &e) == -1 && e.code == SG_ACME_DNS,
	        "unresolvable: %d %s", e.code, e.detail);
}

/* A DNS response for (qname, qtype) with the given answer records, in wire form. */
static uint8_t *wire_of(const char *qname, const char *qtype, int rcode, const char *const *rrs, size_t *len)
{
	ldns_pkt *p = ldns_pkt_new();
	ldns_rr *q = NULL;
	uint8_t *w = NULL;
	char buf[300];

	snprintf(buf, sizeof(buf), "%s IN %s", qname, qtype);
	if (ldns_rr_new_question_frm_str(&q, buf, NULL, NULL) != LDNS_STATUS_OK)
		sg_die("question");
	ldns_pkt_set_qr(p, true);
	ldns_pkt_set_rcode(p, (uint8_t)rcode);
	ldns_pkt_push_rr(p, LDNS_SECTION_QUESTION, q);
	for (; rrs != NULL && *rrs != NULL; rrs++) {
		ldns_rr *rr = NULL;

		if (ldns_rr_new_frm_str(&rr, *rrs, 60, NULL, NULL) != LDNS_STATUS_OK)
			sg_die("bad record %s", *rrs);
		ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, rr);
	}
	if (ldns_pkt2wire(&w, p, len) != LDNS_STATUS_OK)
		sg_die("pkt2wire");
	ldns_pkt_free(p);
	return w;
}

static void test_answer_parse(void)
{
	static const char *const chain[] = {"_acme-challenge.a.test. CNAME t.b.test.", "t.b.test. TXT \"v1\" \"v2\"",
	                                    "other.test. TXT \"not-ours\"", NULL};
	static const char *const caa[] = {"a.test. CAA 0 ISSUE \"ca.example\"", "a.test. CAA 0 issue \"x\\000y\"", NULL};
	static const char *const addrs[] = {"a.test. A 192.0.2.1", "a.test. AAAA 2001:db8::1", NULL};
	struct sg_strlist v = {0};
	struct sg_err e;
	uint8_t *w;
	size_t n = 0;

	sg_err_init(&e);
	w = wire_of("_acme-challenge.a.test.", "TXT", LDNS_RCODE_NOERROR, chain, &n);
	T_CHECK(acme_dns_answer_parse(w, n, "_acme-challenge.a.test", 16, &v, &e) == 1 && v.n == 1 &&
	            strcmp(v.v[0], "v1v2") == 0,
	        "CNAME then TXT in one answer: %zu", v.n);
	sg_strlist_clear(&v);
	T_CHECK(acme_dns_answer_parse(w, n - 3, "_acme-challenge.a.test", 16, &v, &e) == -1 && e.code == SG_ACME_DNS,
	        "truncated message refused");
	T_CHECK(acme_dns_answer_parse(w, n, "other.test.example", 16, &v, &e) == 0 && v.n == 0,
	        "records of other names ignored");
	free(w);
	w = wire_of("a.test.", "CAA", LDNS_RCODE_NOERROR, caa, &n);
	T_CHECK(acme_dns_answer_parse(w, n, "a.test", 257, &v, &e) == 1 && v.n == 1 &&
	            strcmp(v.v[0], "0 issue ca.example") == 0,
	        "CAA: tag lower-cased, a value with NUL dropped: %zu %s", v.n, v.n ? v.v[0] : "");
	sg_strlist_clear(&v);
	free(w);
	w = wire_of("a.test.", "A", LDNS_RCODE_NOERROR, addrs, &n);
	T_CHECK(acme_dns_answer_parse(w, n, "a.test", 1, &v, &e) == 1 && v.n == 1 && strcmp(v.v[0], "192.0.2.1") == 0,
	        "A only for an A question");
	sg_strlist_clear(&v);
	free(w);
	sg_err_init(&e);
	w = wire_of("a.test.", "TXT", LDNS_RCODE_REFUSED, NULL, &n);
	T_CHECK(acme_dns_answer_parse(w, n, "a.test", 16, &v, &e) == -1 && strstr(e.detail, "REFUSED") != NULL,
	        "REFUSED: %s", e.detail);
	free(w);
	sg_err_init(&e);
	T_CHECK(acme_dns_answer_parse((const unsigned char *)"\x01\x02\x03", 3, "a.test", 16, &v, &e) == -1,
	        "garbage refused");
}

int main(void)
{
	pthread_t dth, tth;
	unsigned char md[32];
	unsigned int mdlen;

	signal(SIGPIPE, SIG_IGN); /* as the server does: a peer closing early is an error, not a signal */
	EVP_Digest(KA, strlen(KA), md, &mdlen, EVP_sha256(), NULL);
	digest_b64 = sg_b64url(md, sizeof(md));
	zone = ldns_rr_list_new();
	zone_add("_acme-challenge.ok.test. TXT \"%s\"", digest_b64);
	zone_add("_acme-challenge.bad.test. TXT \"not-the-digest\"");
	zone_add("_acme-challenge.multi.test. TXT \"stale-value\"");
	zone_add("_acme-challenge.multi.test. TXT \"%s\"", digest_b64);
	zone_add("nodata.test. A 127.0.0.1");
	zone_add("_acme-challenge.nodata.test. A 127.0.0.1");
	zone_add("_acme-challenge.cn.test. CNAME a.deleg.test.");
	zone_add("a.deleg.test. CNAME b.deleg.test.");
	zone_add("b.deleg.test. TXT \"%s\"", digest_b64);
	zone_add("_acme-challenge.inline.test. CNAME t.inline.test.");
	zone_add("t.inline.test. TXT \"%s\"", digest_b64);
	zone_add("_acme-challenge.x.inline.test. CNAME l1.inline.test.");
	zone_add("l1.inline.test. CNAME l2.inline.test.");
	zone_add("l2.inline.test. CNAME l1.inline.test.");
	zone_add("_acme-challenge.loop.test. CNAME l1.loop.test.");
	zone_add("l1.loop.test. CNAME l2.loop.test.");
	zone_add("l2.loop.test. CNAME l1.loop.test.");
	/* Chains of 9 and 8 links. */
	zone_add("_acme-challenge.long.test. CNAME c1.long.test.");
	for (int i = 1; i < 9; i++)
		zone_add("c%d.long.test. CNAME c%d.long.test.", i, i + 1);
	zone_add("c9.long.test. TXT \"%s\"", digest_b64);
	zone_add("_acme-challenge.eight.test. CNAME c1.eight.test.");
	for (int i = 1; i < 8; i++)
		zone_add("c%d.eight.test. CNAME c%d.eight.test.", i, i + 1);
	zone_add("c8.eight.test. TXT \"%s\"", digest_b64);
	zone_add("split.test. TXT \"abc\" \"def\"");
	for (int i = 0; i < 40; i++)
		zone_add("big.test. TXT \"record-%02d-padding-padding-padding\"", i);
	for (int i = 0; i < ACME_DNS_MAX_RRS + 10; i++)
		zone_add("many.test. TXT \"r%d\"", i);
	zone_add("host.test. A 127.0.0.1");
	zone_add("host.test. AAAA ::1");
	zone_add("alias.test. CNAME host.test.");
	zone_add("alpn.test. A 127.0.0.1");
	zone_add("caa.test. CAA 0 issue \"sigil.example\"");
	zone_add("w.test. CAA 0 issue \"other-ca.example\"");
	zone_add("w.test. CAA 0 issuewild \"sigil.example\"");
	zone_add("nw.test. CAA 0 issue \"sigil.example\"");
	zone_add("iw.test. CAA 0 issue \"sigil.example\"");
	zone_add("iw.test. CAA 0 issuewild \";\"");
	zone_add("crit.test. CAA 0 issue \"sigil.example\"");
	zone_add("crit.test. CAA 128 futuretag \"x\"");
	zone_add("param.test. CAA 0 issue \"Sigil.Example; accounturi=https://x/acct/1\"");
	zone_add("iodef.test. CAA 0 iodef \"mailto:sec@iodef.test\"");
	dns_start(&dth);
	tls_start(&tth);
	snprintf(resolver, sizeof(resolver), "127.0.0.1:%d", dns_port);

	test_resolver_check();
	test_answer_parse();
	test_txt_and_addrs();
	test_caa();
	test_tlsalpn();
	test_dns01();

	stopping = 1;
	pthread_join(dth, NULL);
	pthread_join(tth, NULL);
	close(dns_udp);
	close(dns_tcp);
	close(tls_fd);
	SSL_CTX_free(tls_ctx);
	EVP_PKEY_free(tls_key);
	ldns_rr_list_deep_free(zone);
	free(digest_b64);
	return t_done();
}
