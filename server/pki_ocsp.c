/*
 * OCSP routes of the PKI engine (RFC 6960 appendix A, RFC 5019): GET
 * ocsp/<base64 request> and POST ocsp (application/ocsp-request), and the
 * same under issuer/:ref/, unauthenticated. Every answer is an
 * OCSPResponse with HTTP 200, errors included (RFC 6960 2.3: a malformed
 * request gets malformedRequest, not an HTTP error page). The answers
 * themselves come from crl/ocsp.c's pre-signed cache.
 */
#include "crl/ocsp.h"
#include "server/pki.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CT_OCSP_RESPONSE "application/ocsp-response"
#define OCSP_HTTP_DATE_MAX 40

/* RFC 9110 5.6.7 IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), by hand: two per cached answer sent. */
static void ocsp_http_date(int64_t t, char *buf, size_t len)
{
	static const char days[] = "SunMonTueWedThuFriSat";
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	time_t tt = (time_t)t;
	struct tm tm;
	char *p = buf;
	int year;

	if (len < OCSP_HTTP_DATE_MAX) {
		if (len > 0)
			buf[0] = '\0';
		return;
	}
	if (gmtime_r(&tt, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	year = tm.tm_year + 1900;
	if (year < 0 || year > 9999)
		year = 0;
	memcpy(p, days + 3 * (tm.tm_wday % 7), 3);
	p += 3;
	*p++ = ',';
	*p++ = ' ';
	*p++ = (char)('0' + tm.tm_mday / 10);
	*p++ = (char)('0' + tm.tm_mday % 10);
	*p++ = ' ';
	memcpy(p, months + 3 * (tm.tm_mon % 12), 3);
	p += 3;
	*p++ = ' ';
	*p++ = (char)('0' + year / 1000);
	*p++ = (char)('0' + year / 100 % 10);
	*p++ = (char)('0' + year / 10 % 10);
	*p++ = (char)('0' + year % 10);
	*p++ = ' ';
	*p++ = (char)('0' + tm.tm_hour / 10);
	*p++ = (char)('0' + tm.tm_hour % 10);
	*p++ = ':';
	*p++ = (char)('0' + tm.tm_min / 10);
	*p++ = (char)('0' + tm.tm_min % 10);
	*p++ = ':';
	*p++ = (char)('0' + tm.tm_sec / 10);
	*p++ = (char)('0' + tm.tm_sec % 10);
	memcpy(p, " GMT", 5);
}

/*
 * RFC 5019 6.2: a pre-signed answer fetched by GET may be cached until its
 * nextUpdate (max-age below it, Expires at it), revalidated by ETag;
 * answers signed for one request (nonce, several CertIDs) and POST answers
 * must not be reused.
 */
static void ocsp_cache_headers(struct resp *rs, const struct ocsp_answer *a, bool get)
{
	char date[OCSP_HTTP_DATE_MAX], cc[96];
	int64_t now = sg_now(), age;

	if (!get || !a->cacheable) {
		resp_header(rs, "Cache-Control", "no-store");
		return;
	}
	age = a->next_update != 0 ? a->next_update - now : 0;
	if (age > OCSP_HTTP_MAX_AGE_CAP)
		age = OCSP_HTTP_MAX_AGE_CAP;
	if (age < 0)
		age = 0;
	snprintf(cc, sizeof(cc), "max-age=%lld, public, no-transform, must-revalidate", (long long)age);
	resp_header(rs, "Cache-Control", cc);
	resp_header(rs, "ETag", a->etag);
	ocsp_http_date(a->this_update, date, sizeof(date));
	resp_header(rs, "Last-Modified", date);
	if (a->next_update != 0) {
		ocsp_http_date(a->next_update, date, sizeof(date));
		resp_header(rs, "Expires", date);
	}
}

/* Takes the answer's bytes into the response (no copy on the hot path). */
static void ocsp_send(struct req *rq, struct resp *rs, struct ocsp_answer *a, bool get)
{
	const char *inm = get ? req_header(rq, "If-None-Match") : NULL;

	ocsp_cache_headers(rs, a, get);
	rs->content_type = sg_xstrdup(CT_OCSP_RESPONSE);
	if (inm != NULL && a->cacheable && strcmp(inm, a->etag) == 0) {
		rs->status = 304;
		ocsp_answer_clear(a);
		return;
	}
	rs->body = a->der;
	rs->body_len = a->len;
	a->der = NULL;
	a->len = 0;
}

/* issuer/:ref/... answers only for that issuer; an unknown ref is an unauthorized OCSP answer, not a 404. */
static int ocsp_issuer_id(struct req *rq, char *id, size_t cap)
{
	struct ca_issuer_info info = {0};
	struct sg_err e2;
	int rc;

	sg_err_init(&e2);
	rc = ca_issuer_get(server_ca(rq->srv), pki_mount(rq), req_param(rq, "ref"), &info, &e2);
	if (rc == 0)
		snprintf(id, cap, "%s", info.id);
	ca_issuer_info_clear(&info);
	return rc;
}

/* On libmicrohttpd's thread only a pre-signed answer: false asks for a worker, which may sign. */
static bool answer(struct req *rq, const char *issuer_id, const unsigned char *der, size_t len,
                   struct ocsp_answer *a)
{
	if (req_inline(rq))
		return ocsp_respond_cached(server_ocsp(rq->srv), pki_mount(rq), issuer_id, der, len, a);
	ocsp_respond(server_ocsp(rq->srv), pki_mount(rq), issuer_id, der, len, a);
	return true;
}

static int ocsp_serve(struct req *rq, struct resp *rs, bool get, bool by_issuer, struct sg_err *err)
{
	static const unsigned char unauthorized[] = {0x30, 0x03, 0x0a, 0x01, 0x06};
	static const unsigned char malformed[] = {0x30, 0x03, 0x0a, 0x01, 0x01};
	struct ocsp_answer a = {0};
	unsigned char *der = NULL;
	size_t len = 0;
	char id[64] = "";

	(void)err;
	if (by_issuer && ocsp_issuer_id(rq, id, sizeof(id)) < 0) {
		a.der = sg_xmalloc(sizeof(unauthorized));
		memcpy(a.der, unauthorized, sizeof(unauthorized));
		a.len = sizeof(unauthorized);
		ocsp_send(rq, rs, &a, false);
		return 0;
	}
	if (get) {
		const char *b64 = req_param(rq, "req");

		if (b64 == NULL || ocsp_get_decode(b64, strlen(b64), &der, &len) < 0) {
			a.der = sg_xmalloc(sizeof(malformed));
			memcpy(a.der, malformed, sizeof(malformed));
			a.len = sizeof(malformed);
			ocsp_send(rq, rs, &a, false);
			return 0;
		}
		if (!answer(rq, by_issuer ? id : NULL, der, len, &a)) {
			free(der);
			return ROUTE_RETRY;
		}
		free(der);
	} else if (!answer(rq, by_issuer ? id : NULL, rq->raw, rq->raw_len, &a)) {
		return ROUTE_RETRY;
	}
	ocsp_send(rq, rs, &a, get);
	return 0;
}

int h_ocsp_get(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return ocsp_serve(rq, rs, true, false, err);
}

int h_ocsp_post(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return ocsp_serve(rq, rs, false, false, err);
}

int h_issuer_ocsp_get(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return ocsp_serve(rq, rs, true, true, err);
}

int h_issuer_ocsp_post(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return ocsp_serve(rq, rs, false, true, err);
}
