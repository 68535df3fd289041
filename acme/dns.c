/*
 * DNS lookups for ACME validation through libldns: TXT for dns-01 (RFC
 * 8555 8.4), A/AAAA to pin the address http-01 and tls-alpn-01 connect to
 * when config/acme names a resolver, and CAA (RFC 8659) with its climb up
 * the name tree. Answers are untrusted: only records whose owner is the
 * name asked (or a CNAME target reached from it) are taken, at most
 * ACME_DNS_MAX_RRS of them, and the reply must carry the query's id.
 */
#include "acme/acme.h"

#include <arpa/inet.h>
/* Not <ldns/ldns.h>: its DNSSEC headers use the RSA/DSA types OPENSSL_NO_DEPRECATED removes. */
#include <ldns/dname.h>
#include <ldns/error.h>
#include <ldns/packet.h>
#include <ldns/resolver.h>
#include <ldns/rr.h>
#include <ldns/str2host.h>
#include <ldns/wire2host.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

struct acme_dns {
	ldns_resolver *res;
	int64_t deadline_ms;      /* all lookups of this handle end by then (ACME_DNS_BUDGET_S) */
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "ip", "ip:port" or "[ipv6]:port" into addr (text) and port. */
static int resolver_parse(const char *s, char *addr, size_t addr_len, uint16_t *port, struct sg_err *err)
{
	const char *host = s, *colon = NULL;
	size_t hlen;
	unsigned char buf[16];
	long p = 53;

	if (s[0] == '[') {
		const char *end = strchr(s, ']');

		if (end == NULL)
			return sg_err_set(err, SG_BAD_REQUEST, "dns_resolver \"%.64s\": unclosed '['", s);
		host = s + 1;
		hlen = (size_t)(end - host);
		if (end[1] == ':')
			colon = end + 1;
		else if (end[1] != '\0')
			return sg_err_set(err, SG_BAD_REQUEST, "dns_resolver \"%.64s\": expected ]:port", s);
	} else {
		colon = strchr(s, ':');
		if (colon != NULL && strchr(colon + 1, ':') != NULL)
			colon = NULL; /* a bare IPv6 address */
		hlen = colon != NULL ? (size_t)(colon - s) : strlen(s);
	}
	if (hlen == 0 || hlen >= addr_len)
		return sg_err_set(err, SG_BAD_REQUEST, "dns_resolver \"%.64s\": no address", s);
	memcpy(addr, host, hlen);
	addr[hlen] = '\0';
	if (inet_pton(AF_INET, addr, buf) != 1 && inet_pton(AF_INET6, addr, buf) != 1)
		return sg_err_set(err, SG_BAD_REQUEST, "dns_resolver \"%.64s\" must be an IP address with an optional port",
		                  s);
	if (colon != NULL) {
		char *end = NULL;

		p = strtol(colon + 1, &end, 10);
		if (colon[1] == '\0' || *end != '\0' || p < 1 || p > 65535)
			return sg_err_set(err, SG_BAD_REQUEST, "dns_resolver \"%.64s\": port must be 1..65535", s);
	}
	*port = (uint16_t)p;
	return 0;
}

int acme_dns_resolver_check(const char *resolver, struct sg_err *err)
{
	char addr[64];
	uint16_t port;

	if (resolver == NULL || resolver[0] == '\0')
		return 0;
	return resolver_parse(resolver, addr, sizeof(addr), &port, err);
}

struct acme_dns *acme_dns_new(const char *resolver, struct sg_err *err)
{
	struct acme_dns *d = NULL;
	ldns_resolver *res = NULL;
	struct timeval tv = {ACME_DNS_TIMEOUT_S, 0};

	if (resolver == NULL || resolver[0] == '\0') {
		if (ldns_resolver_new_frm_file(&res, NULL) != LDNS_STATUS_OK || res == NULL) {
			sg_err_set(err, SG_ACME_DNS, "no DNS resolver: /etc/resolv.conf is unreadable");
			return NULL;
		}
	} else {
		char addr[64];
		uint16_t port = 53;
		ldns_rdf *ns;

		if (resolver_parse(resolver, addr, sizeof(addr), &port, err) != 0) {
			err->code = SG_ACME_DNS;
			return NULL;
		}
		ns = ldns_rdf_new_frm_str(strchr(addr, ':') != NULL ? LDNS_RDF_TYPE_AAAA : LDNS_RDF_TYPE_A, addr);
		res = ldns_resolver_new();
		if (ns == NULL || res == NULL || ldns_resolver_push_nameserver(res, ns) != LDNS_STATUS_OK)
			sg_die("ldns: cannot set up a resolver");
		ldns_rdf_deep_free(ns);
		ldns_resolver_set_port(res, port);
	}
	ldns_resolver_set_recursive(res, true);
	/* Validation names are absolute: no search list, no default domain. */
	ldns_resolver_set_defnames(res, false);
	ldns_resolver_set_dnsrch(res, false);
	ldns_resolver_set_timeout(res, tv);
	ldns_resolver_set_retry(res, ACME_DNS_TRIES);
	ldns_resolver_set_retrans(res, 1);
	/* A truncated UDP answer is asked again over TCP (RFC 7766 5). */
	ldns_resolver_set_fallback(res, true);
	ldns_resolver_set_usevc(res, false);
	ldns_resolver_set_dnssec(res, false);
	d = sg_xcalloc(1, sizeof(*d));
	d->res = res;
	d->deadline_ms = now_ms() + ACME_DNS_BUDGET_S * 1000;
	return d;
}

void acme_dns_free(struct acme_dns *d)
{
	if (d == NULL)
		return;
	ldns_resolver_deep_free(d->res);
	free(d);
}

/* An absolute name for a query; NULL (SG_ACME_DNS) when it is not a valid name. */
static ldns_rdf *dname_of(const char *name, struct sg_err *err)
{
	ldns_rdf *r;
	char *abs;

	if (name[0] == '\0' || strlen(name) > ACME_DNS_MAX_NAME) {
		sg_err_set(err, SG_ACME_DNS, "\"%.64s\" is not a DNS name", name);
		return NULL;
	}
	abs = name[strlen(name) - 1] == '.' ? sg_xstrdup(name) : sg_xasprintf("%s.", name);
	r = ldns_dname_new_frm_str(abs);
	free(abs);
	if (r == NULL)
		sg_err_set(err, SG_ACME_DNS, "\"%.64s\" is not a DNS name", name);
	return r;
}

/* A name for messages: its labels joined with dots, bytes outside [-_a-zA-Z0-9*] as '?'. */
static char *dname_text(const ldns_rdf *r)
{
	const uint8_t *p = ldns_rdf_data(r);
	size_t n = ldns_rdf_size(r), i = 0, o = 0;
	char *s = sg_xcalloc(1, n + 2);

	while (i < n && p[i] != 0 && i + 1 + p[i] <= n) {
		size_t l = p[i++];

		if (o > 0)
			s[o++] = '.';
		for (size_t k = 0; k < l; k++, i++)
			s[o++] = (isalnum(p[i]) || p[i] == '-' || p[i] == '_' || p[i] == '*') ? (char)p[i] : '?';
	}
	if (o == 0)
		s[o++] = '.';
	return s;
}

static const char *rcode_name(ldns_pkt_rcode rc)
{
	switch (rc) {
	case LDNS_RCODE_FORMERR:
		return "FORMERR";
	case LDNS_RCODE_SERVFAIL:
		return "SERVFAIL";
	case LDNS_RCODE_NOTIMPL:
		return "NOTIMP";
	case LDNS_RCODE_REFUSED:
		return "REFUSED";
	default:
		return "an error";
	}
}

/* One query and its answer, checked to be the answer to it. NULL with SG_ACME_DNS. */
static ldns_pkt *query(struct acme_dns *d, const ldns_rdf *name, ldns_rr_type type, struct sg_err *err)
{
	ldns_pkt *q, *a = NULL;
	ldns_status st;
	uint16_t id;
	char *txt = dname_text(name);
	int64_t left = d->deadline_ms - now_ms();

	/* A CNAME chain or a CAA climb is many queries: together they get ACME_DNS_BUDGET_S. */
	if (left <= 0) {
		sg_err_set(err, SG_ACME_DNS, "DNS lookups for %s took longer than %d s", txt, ACME_DNS_BUDGET_S);
		free(txt);
		return NULL;
	}
	if (left < ACME_DNS_TIMEOUT_S * 1000) {
		struct timeval tv = {(time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000};

		ldns_resolver_set_timeout(d->res, tv);
		ldns_resolver_set_retry(d->res, 1);
	}
	q = ldns_pkt_query_new(ldns_rdf_clone(name), type, LDNS_RR_CLASS_IN, LDNS_RD);
	if (q == NULL)
		sg_die("ldns_pkt_query_new failed");
	if (RAND_bytes((unsigned char *)&id, sizeof(id)) != 1)
		sg_die("RAND_bytes failed");
	ldns_pkt_set_id(q, id);
	st = ldns_resolver_send_pkt(&a, d->res, q);
	if (st != LDNS_STATUS_OK || a == NULL) {
		sg_err_set(err, SG_ACME_DNS, "DNS query for %s %s failed: %s", txt,
		           type == LDNS_RR_TYPE_TXT ? "TXT" : type == LDNS_RR_TYPE_CAA ? "CAA" : "A/AAAA",
		           ldns_get_errorstr_by_id(st) != NULL ? ldns_get_errorstr_by_id(st) : "no answer");
		ldns_pkt_free(a);
		a = NULL;
		goto out;
	}
	if (ldns_pkt_id(a) != id || !ldns_pkt_qr(a)) {
		sg_err_set(err, SG_ACME_DNS, "DNS answer for %s does not match its query", txt);
		ldns_pkt_free(a);
		a = NULL;
	}
out:
	ldns_pkt_free(q);
	free(txt);
	return a;
}

/*
 * One answer, walked from *cur: the records of type owned by *cur go to
 * found (at most ACME_DNS_MAX_RRS), else a CNAME owned by *cur moves *cur
 * to its target (RFC 1034 3.6.2), at most ACME_DNS_MAX_CNAME links in all
 * (*links counts them across answers). 1 found, 0 none (*moved says
 * whether the walk left the name asked), -1 with SG_ACME_DNS.
 */
static int walk(const ldns_pkt *a, ldns_rdf **cur, ldns_rr_type type, ldns_rr_list *found, unsigned *links,
                bool *moved, struct sg_err *err)
{
	const ldns_rr_list *ans = ldns_pkt_answer(a);
	ldns_pkt_rcode rcode = ldns_pkt_get_rcode(a);

	*moved = false;
	if (rcode != LDNS_RCODE_NOERROR && rcode != LDNS_RCODE_NXDOMAIN) {
		char *txt = dname_text(*cur);

		sg_err_set(err, SG_ACME_DNS, "DNS server answered %s for %s", rcode_name(rcode), txt);
		free(txt);
		return -1;
	}
	for (;;) {
		const ldns_rdf *target = NULL;

		for (size_t i = 0; ans != NULL && i < ldns_rr_list_rr_count(ans); i++) {
			const ldns_rr *rr = ldns_rr_list_rr(ans, i);

			if (ldns_dname_compare(ldns_rr_owner(rr), *cur) != 0 || ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN)
				continue;
			if (ldns_rr_get_type(rr) == type) {
				if (ldns_rr_list_rr_count(found) < ACME_DNS_MAX_RRS)
					ldns_rr_list_push_rr(found, ldns_rr_clone(rr));
			} else if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_CNAME && ldns_rr_rd_count(rr) == 1 && target == NULL) {
				target = ldns_rr_rdf(rr, 0);
			}
		}
		if (ldns_rr_list_rr_count(found) > 0)
			return 1;
		if (target == NULL || ldns_rdf_get_type(target) != LDNS_RDF_TYPE_DNAME)
			return 0;
		if (++*links > ACME_DNS_MAX_CNAME) {
			char *txt = dname_text(*cur);

			sg_err_set(err, SG_ACME_DNS, "more than %d CNAME links (a loop at %s?)", ACME_DNS_MAX_CNAME, txt);
			free(txt);
			return -1;
		}
		ldns_rdf_deep_free(*cur);
		*cur = ldns_rdf_clone(target);
		*moved = true;
	}
}

/*
 * The records of type at name into *out (clones), CNAMEs followed inside an
 * answer and, when a server answers with the alias alone, by asking again
 * for its target. 1 found, 0 none, -1 error.
 */
static int lookup(struct acme_dns *d, const char *name, ldns_rr_type type, ldns_rr_list **out, struct sg_err *err)
{
	ldns_rdf *cur = dname_of(name, err);
	ldns_rr_list *found = ldns_rr_list_new();
	ldns_pkt *a = NULL;
	unsigned links = 0;
	int rc = -1;

	if (cur == NULL)
		goto out;
	for (;;) {
		bool moved = false;

		ldns_pkt_free(a);
		a = query(d, cur, type, err);
		if (a == NULL)
			goto out;
		rc = walk(a, &cur, type, found, &links, &moved, err);
		/* An alias whose target the server did not answer for: ask for the target itself. */
		if (rc != 0 || !moved || ldns_pkt_get_rcode(a) != LDNS_RCODE_NOERROR)
			break;
	}
out:
	ldns_pkt_free(a);
	ldns_rdf_deep_free(cur);
	if (rc == 1) {
		*out = found;
		found = NULL;
	}
	ldns_rr_list_deep_free(found);
	return rc;
}

/* A TXT record's <character-string>s joined (RFC 1035 3.3.14) into out; false when too long or holding NUL. */
static bool txt_value(const ldns_rr *rr, char *out, size_t cap, size_t *outlen)
{
	size_t len = 0;

	for (size_t j = 0; j < ldns_rr_rd_count(rr); j++) {
		const ldns_rdf *f = ldns_rr_rdf(rr, j);
		const uint8_t *p = ldns_rdf_data(f);
		size_t n = ldns_rdf_size(f);

		if (ldns_rdf_get_type(f) != LDNS_RDF_TYPE_STR || n < 1 || (size_t)p[0] + 1 != n || len + p[0] > cap ||
		    memchr(p + 1, '\0', p[0]) != NULL)
			return false;
		memcpy(out + len, p + 1, p[0]);
		len += p[0];
	}
	*outlen = len;
	return true;
}

/* An A or AAAA record's address as text into txt[INET6_ADDRSTRLEN]. */
static bool addr_value(const ldns_rr *rr, char *txt)
{
	const ldns_rdf *f = ldns_rr_rd_count(rr) == 1 ? ldns_rr_rdf(rr, 0) : NULL;

	if (f == NULL)
		return false;
	if (ldns_rdf_get_type(f) == LDNS_RDF_TYPE_A && ldns_rdf_size(f) == 4)
		return inet_ntop(AF_INET, ldns_rdf_data(f), txt, INET6_ADDRSTRLEN) != NULL;
	if (ldns_rdf_get_type(f) == LDNS_RDF_TYPE_AAAA && ldns_rdf_size(f) == 16)
		return inet_ntop(AF_INET6, ldns_rdf_data(f), txt, INET6_ADDRSTRLEN) != NULL;
	return false;
}

static bool caa_rr_take(const ldns_rr *rr, struct acme_caa_rr *out);

int acme_dns_answer_parse(const unsigned char *wire, size_t len, const char *name, int rrtype,
                          struct sg_strlist *values, struct sg_err *err)
{
	ldns_pkt *a = NULL;
	ldns_rdf *cur = NULL;
	ldns_rr_list *found = ldns_rr_list_new();
	unsigned links = 0;
	bool moved;
	int rc = -1;

	if (len > 65535 || ldns_wire2pkt(&a, wire, len) != LDNS_STATUS_OK) {
		sg_err_set(err, SG_ACME_DNS, "undecodable DNS message");
		goto out;
	}
	cur = dname_of(name, err);
	if (cur == NULL)
		goto out;
	rc = walk(a, &cur, (ldns_rr_type)rrtype, found, &links, &moved, err);
	for (size_t i = 0; rc == 1 && i < ldns_rr_list_rr_count(found); i++) {
		const ldns_rr *rr = ldns_rr_list_rr(found, i);
		char buf[ACME_DNS_MAX_TXT + 1];
		size_t n = 0;
		struct acme_caa_rr caa = {0};

		if (rrtype == LDNS_RR_TYPE_TXT && txt_value(rr, buf, ACME_DNS_MAX_TXT, &n)) {
			sg_strlist_addn(values, buf, n);
		} else if ((rrtype == LDNS_RR_TYPE_A || rrtype == LDNS_RR_TYPE_AAAA) && addr_value(rr, buf)) {
			sg_strlist_add(values, buf);
		} else if (rrtype == LDNS_RR_TYPE_CAA && caa_rr_take(rr, &caa)) {
			char *t = sg_xasprintf("%u %s %s", caa.flags, caa.tag, caa.value);

			sg_strlist_add(values, t);
			free(t);
		}
		free(caa.tag);
		free(caa.value);
	}
out:
	ldns_rr_list_deep_free(found);
	ldns_rdf_deep_free(cur);
	ldns_pkt_free(a);
	return rc;
}

int acme_dns_txt(struct acme_dns *d, const char *name, struct sg_strlist *out, struct sg_err *err)
{
	ldns_rr_list *rrs = NULL;
	int r = lookup(d, name, LDNS_RR_TYPE_TXT, &rrs, err);

	if (r != 1)
		return r;
	for (size_t i = 0; i < ldns_rr_list_rr_count(rrs); i++) {
		char buf[ACME_DNS_MAX_TXT + 1];
		size_t len = 0;

		if (txt_value(ldns_rr_list_rr(rrs, i), buf, ACME_DNS_MAX_TXT, &len))
			sg_strlist_addn(out, buf, len);
	}
	ldns_rr_list_deep_free(rrs);
	return 1;
}

int acme_dns_addrs(struct acme_dns *d, const char *name, struct sg_strlist *out, struct sg_err *err)
{
	static const ldns_rr_type types[] = {LDNS_RR_TYPE_A, LDNS_RR_TYPE_AAAA};
	int found = 0;

	for (size_t t = 0; t < 2; t++) {
		ldns_rr_list *rrs = NULL;
		int r = lookup(d, name, types[t], &rrs, err);

		if (r < 0)
			return found ? 1 : -1; /* the IPv4 addresses are enough */
		for (size_t i = 0; r == 1 && i < ldns_rr_list_rr_count(rrs); i++) {
			char txt[INET6_ADDRSTRLEN];

			if (addr_value(ldns_rr_list_rr(rrs, i), txt)) {
				sg_strlist_add(out, txt);
				found = 1;
			}
		}
		ldns_rr_list_deep_free(rrs);
	}
	return found;
}

static bool is_ip_literal(const char *s)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

int acme_dns_host_addrs(const char *resolver, const char *host, struct sg_strlist *out, struct sg_err *err)
{
	if (is_ip_literal(host)) {
		sg_strlist_add(out, host);
		return 0;
	}
	if (resolver != NULL && resolver[0] != '\0') {
		struct acme_dns *d = acme_dns_new(resolver, err);
		int r;

		if (d == NULL)
			return -1;
		r = acme_dns_addrs(d, host, out, err);
		acme_dns_free(d);
		if (r == 0)
			sg_err_set(err, SG_ACME_DNS, "no A or AAAA record for %s", host);
		return r == 1 ? 0 : -1;
	}
	{
		struct addrinfo hints, *ai = NULL;
		int r;

		memset(&hints, 0, sizeof(hints));
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		r = getaddrinfo(host, NULL, &hints, &ai);
		if (r != 0)
			return sg_err_set(err, SG_ACME_DNS, "cannot resolve %s: %s", host, gai_strerror(r));
		for (struct addrinfo *p = ai; p != NULL && out->n < ACME_DNS_MAX_RRS; p = p->ai_next) {
			char txt[INET6_ADDRSTRLEN];
			const void *a = p->ai_family == AF_INET ? (const void *)&((struct sockaddr_in *)p->ai_addr)->sin_addr
			                                         : (const void *)&((struct sockaddr_in6 *)p->ai_addr)->sin6_addr;

			if ((p->ai_family == AF_INET || p->ai_family == AF_INET6) &&
			    inet_ntop(p->ai_family, a, txt, sizeof(txt)) != NULL && !sg_strlist_has(out, txt))
				sg_strlist_add(out, txt);
		}
		freeaddrinfo(ai);
		if (out->n == 0)
			return sg_err_set(err, SG_ACME_DNS, "no address for %s", host);
		return 0;
	}
}

/* ---- CAA (RFC 8659) ---- */

void acme_caa_set_clear(struct acme_caa_set *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n; i++) {
		free(s->rr[i].tag);
		free(s->rr[i].value);
	}
	free(s->rr);
	free(s->owner);
	memset(s, 0, sizeof(*s));
}

/* One CAA record's fields (RFC 8659 4.1); false when malformed (it is then ignored). */
static bool caa_rr_take(const ldns_rr *rr, struct acme_caa_rr *out)
{
	const ldns_rdf *fl, *tag, *val;
	const uint8_t *t;
	size_t tl;
	char *s;

	if (ldns_rr_rd_count(rr) != 3)
		return false;
	fl = ldns_rr_rdf(rr, 0);
	tag = ldns_rr_rdf(rr, 1);
	val = ldns_rr_rdf(rr, 2);
	if (ldns_rdf_size(fl) != 1 || ldns_rdf_size(tag) < 2)
		return false;
	t = ldns_rdf_data(tag);
	tl = t[0];
	if (tl + 1 != ldns_rdf_size(tag) || tl > 15 || ldns_rdf_size(val) > ACME_CAA_MAX_VALUE ||
	    memchr(ldns_rdf_data(val), '\0', ldns_rdf_size(val)) != NULL)
		return false;
	for (size_t i = 0; i < tl; i++)
		if (!isalnum(t[1 + i]))
			return false;
	out->flags = ldns_rdf_data(fl)[0];
	s = sg_xstrndup((const char *)t + 1, tl);
	for (char *p = s; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p); /* RFC 8659 4.1: tags match case-insensitively */
	out->tag = s;
	out->value = sg_xstrndup((const char *)ldns_rdf_data(val), ldns_rdf_size(val));
	return true;
}

int acme_dns_caa(struct acme_dns *d, const char *name, struct acme_caa_set *out, struct sg_err *err)
{
	const char *p = name;

	memset(out, 0, sizeof(*out));
	/* RFC 8659 3: climb from the name to its parents, up to but not including the root. */
	while (p != NULL && *p != '\0' && strcmp(p, ".") != 0) {
		ldns_rr_list *rrs = NULL;
		int r = lookup(d, p, LDNS_RR_TYPE_CAA, &rrs, err);

		if (r < 0)
			return -1;
		if (r == 1) {
			out->rr = sg_xcalloc(ldns_rr_list_rr_count(rrs), sizeof(*out->rr));
			for (size_t i = 0; i < ldns_rr_list_rr_count(rrs); i++)
				if (caa_rr_take(ldns_rr_list_rr(rrs, i), &out->rr[out->n]))
					out->n++;
			ldns_rr_list_deep_free(rrs);
			out->owner = sg_xstrdup(p);
			/*
			 * A set of malformed records only still is the Relevant RRset: it
			 * names no CA, so nothing may be issued.
			 */
			if (out->n == 0) {
				out->rr = sg_xrealloc(out->rr, sizeof(*out->rr));
				out->rr[0].flags = 0;
				out->rr[0].tag = sg_xstrdup("issue");
				out->rr[0].value = sg_xstrdup(";");
				out->n = 1;
			}
			return 0;
		}
		p = strchr(p, '.');
		if (p != NULL)
			p++;
	}
	return 0;
}

/* The issuer-domain-name of an issue/issuewild value (RFC 8659 4.2): before ';', without blanks. */
static char *caa_issuer(const char *value)
{
	const char *b = value, *e;

	while (*b == ' ' || *b == '\t')
		b++;
	e = b;
	while (*e != '\0' && *e != ';' && *e != ' ' && *e != '\t')
		e++;
	return sg_xstrndup(b, (size_t)(e - b));
}

int acme_caa_check(const struct acme_caa_set *set, const struct sg_strlist *identities, const char *name,
                   bool wildcard, struct sg_err *err)
{
	const char *want = "issue";
	size_t considered = 0;

	for (size_t i = 0; i < set->n; i++) {
		const char *t = set->rr[i].tag;

		/* RFC 8659 4.1: an unknown property marked critical forbids issuance. */
		if ((set->rr[i].flags & 0x80) != 0 && strcmp(t, "issue") != 0 && strcmp(t, "issuewild") != 0 &&
		    strcmp(t, "iodef") != 0)
			return sg_err_set(err, SG_ACME_CAA, "CAA records at %s have a critical property \"%s\" this CA does not know",
			                  set->owner, t);
		/* RFC 8659 4.3: for a wildcard, issuewild properties take precedence over issue ones. */
		if (wildcard && strcmp(t, "issuewild") == 0)
			want = "issuewild";
	}
	for (size_t i = 0; i < set->n; i++) {
		char *issuer;
		bool match;

		if (strcmp(set->rr[i].tag, want) != 0)
			continue;
		considered++;
		issuer = caa_issuer(set->rr[i].value);
		match = issuer[0] != '\0' && sg_strlist_has_ci(identities, issuer);
		free(issuer);
		if (match)
			return 0;
	}
	/* RFC 8659 4.2: without issue (or issuewild) properties, the set does not restrict issuance. */
	if (considered == 0)
		return 0;
	return sg_err_set(err, SG_ACME_CAA, "CAA records at %s do not allow this CA to issue for %s%s", set->owner,
	                  wildcard ? "*." : "", name);
}

int acme_caa_validate(const char *resolver, const char *domain, bool wildcard, const struct sg_strlist *identities,
                      struct sg_err *err)
{
	struct acme_dns *d;
	struct acme_caa_set set;
	int rc = -1;

	if (identities == NULL || identities->n == 0)
		return 0;
	d = acme_dns_new(resolver, err);
	if (d == NULL)
		return -1;
	/* A failed lookup is no permission: the attempt is retried, then the authorization fails. */
	if (acme_dns_caa(d, domain, &set, err) != 0)
		goto out;
	rc = acme_caa_check(&set, identities, domain, wildcard, err) == 0 ? 0 : -2;
	acme_caa_set_clear(&set);
out:
	acme_dns_free(d);
	return rc;
}

/* ---- dns-01 ---- */

int acme_dns01_validate(const char *resolver, const char *domain, const char *key_authz, struct sg_err *err)
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	char *want = NULL, *name = NULL;
	struct sg_strlist txt = {0};
	struct acme_dns *d = NULL;
	int r, rc = -1;

	if (EVP_Digest(key_authz, strlen(key_authz), md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != sizeof(md))
		sg_die("SHA-256 failed");
	/* RFC 8555 8.4: the TXT value is base64url(SHA-256(keyAuthorization)). */
	want = sg_b64url(md, sizeof(md));
	name = sg_xasprintf("_acme-challenge.%s", domain);
	d = acme_dns_new(resolver, err);
	if (d == NULL)
		goto out;
	r = acme_dns_txt(d, name, &txt, err);
	if (r < 0)
		goto out;
	if (r == 0 || txt.n == 0) {
		/* Not yet there may be propagation in progress: retried. */
		sg_err_set(err, SG_ACME_UNAUTHORIZED, "no TXT record found at %s", name);
		goto out;
	}
	for (size_t i = 0; i < txt.n; i++)
		if (sg_ct_equal(txt.v[i], strlen(txt.v[i]), want, strlen(want))) {
			rc = 0;
			goto out;
		}
	sg_err_set(err, SG_ACME_INCORRECT_RESPONSE, "none of the %zu TXT records at %s is the expected digest", txt.n,
	           name);
	rc = -2;
out:
	acme_dns_free(d);
	sg_strlist_clear(&txt);
	free(want);
	free(name);
	return rc;
}
