/*
 * CRL and tidy routes of the PKI engine (compat/vault-api.md 1.5, 1.6,
 * 1.8): the cached CRLs of crl/ served as DER, PEM or Vault's JSON, with
 * HTTP caching headers and conditional requests (RFC 9110 13.1: an
 * unchanged CRL costs a 304, not its bytes); config/crl; tidy, tidy-status,
 * tidy-cancel and config/auto-tidy. Handlers never build a CRL themselves
 * except the very first one of an issuer (crl_get).
 */
#include "crl/crl.h"
#include "server/pki.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CT_CRL_DER "application/pkix-crl"
#define CT_CRL_PEM "application/x-pem-file"
#define HTTP_DATE_MAX 40
#define ETAG_HEADER_MAX 1024 /* an If-None-Match list we are willing to read */

/* RFC 9110 5.6.7 IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT". */
static void http_date(int64_t t, char *buf, size_t len)
{
	static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	snprintf(buf, len, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7], tm.tm_mday,
	         months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static int http_date_parse(const char *s, int64_t *out)
{
	struct tm tm;
	const char *end;

	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (end == NULL || *end != '\0')
		return -1;
	*out = (int64_t)timegm(&tm);
	return 0;
}

/* If-None-Match: "*" or a list of entity tags, weak ones compared weakly (RFC 9110 13.1.2). */
static bool etag_matches(const char *header, const char *etag)
{
	size_t el = strlen(etag);
	const char *p = header;

	if (strlen(header) > ETAG_HEADER_MAX)
		return false;
	while (*p != '\0') {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '*')
			return true;
		if (strncmp(p, "W/", 2) == 0)
			p += 2;
		if (strncmp(p, etag, el) == 0 && (p[el] == '\0' || p[el] == ',' || p[el] == ' ' || p[el] == '\t'))
			return true;
		while (*p != '\0' && *p != ',')
			p++;
	}
	return false;
}

static bool not_modified(const struct req *rq, const struct crl_blob *b)
{
	const char *inm = req_header(rq, "If-None-Match"), *ims;
	int64_t since;

	/* RFC 9110 13.1.3: with If-None-Match, If-Modified-Since is ignored. */
	if (inm != NULL)
		return etag_matches(inm, b->etag);
	ims = req_header(rq, "If-Modified-Since");
	return ims != NULL && http_date_parse(ims, &since) == 0 && b->this_update <= since;
}

/*
 * Caches may keep a CRL at most until its nextUpdate and at most
 * CRL_HTTP_MAX_AGE: a revocation is in the CRL within a second, so a long
 * max-age would only hide it; revalidation with the ETag is a cheap 304.
 */
static void cache_headers(struct resp *rs, const struct crl_blob *b)
{
	char date[HTTP_DATE_MAX], cc[64];
	int64_t now = sg_now(), age = b->next_update - now;

	if (age > CRL_HTTP_MAX_AGE)
		age = CRL_HTTP_MAX_AGE;
	if (age < 0)
		age = 0;
	resp_header(rs, "ETag", b->etag);
	http_date(b->this_update, date, sizeof(date));
	resp_header(rs, "Last-Modified", date);
	snprintf(cc, sizeof(cc), "public, max-age=%lld, no-transform", (long long)age);
	resp_header(rs, "Cache-Control", cc);
	http_date(now + age, date, sizeof(date));
	resp_header(rs, "Expires", date);
}

static struct crl *crl_of(const struct req *rq)
{
	return server_crl(rq->srv);
}

static int serve_raw(struct req *rq, struct resp *rs, const char *ref, enum crl_kind kind, bool pem,
                     struct sg_err *err)
{
	struct crl_blob *b = NULL;
	const char *ct = pem ? CT_CRL_PEM : CT_CRL_DER;

	if (crl_get(crl_of(rq), pki_mount(rq), ref, kind, &b, err) < 0)
		return -1;
	cache_headers(rs, b);
	if (not_modified(rq, b)) {
		resp_raw(rs, ct, "", 0);
		rs->status = 304;
	} else if (pem) {
		size_t len = 0;
		const char *p = crl_blob_pem(b, &len);

		resp_raw(rs, ct, p, len);
	} else {
		resp_raw(rs, ct, b->der, b->der_len);
	}
	crl_blob_release(b);
	return 0;
}

/* Vault's JSON forms: {"crl": PEM} (issuer/:ref/crl) or the legacy {"certificate": PEM, ...} (cert/crl). */
static int serve_json(struct req *rq, struct resp *rs, const char *ref, enum crl_kind kind, bool legacy,
                      struct sg_err *err)
{
	struct crl_blob *b = NULL;
	char *pem;
	json_t *d;

	if (crl_get(crl_of(rq), pki_mount(rq), ref, kind, &b, err) < 0)
		return -1;
	pem = pki_trim(sg_xstrdup(crl_blob_pem(b, NULL)));
	if (legacy)
		d = json_pack("{s:s, s:i, s:s, s:s}", "certificate", pem, "revocation_time", 0, "revocation_time_rfc3339",
		              "", "issuer_id", "");
	else
		d = json_pack("{s:s}", "crl", pem);
	if (d == NULL)
		sg_die("out of memory");
	resp_data(rs, d);
	free(pem);
	crl_blob_release(b);
	return 0;
}

static const char *ref_of(const struct req *rq)
{
	const char *r = req_param(rq, "ref");

	return r != NULL ? r : "default";
}

int h_crl_der_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return serve_raw(rq, rs, "default", CRL_FULL, false, err);
}

int h_crl_pem_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return serve_raw(rq, rs, "default", CRL_FULL, true, err);
}

int h_crl_delta_der_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return serve_raw(rq, rs, "default", CRL_DELTA, false, err);
}

int h_crl_delta_pem_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return serve_raw(rq, rs, "default", CRL_DELTA, true, err);
}

int h_issuer_crl_json_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return serve_json(rq, rs, ref_of(rq), CRL_FULL, false, err);
}

int h_issuer_crl_der_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return serve_raw(rq, rs, ref_of(rq), CRL_FULL, false, err);
}

int h_issuer_crl_pem_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return serve_raw(rq, rs, ref_of(rq), CRL_FULL, true, err);
}

int h_issuer_crl_delta_json_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return serve_json(rq, rs, ref_of(rq), CRL_DELTA, false, err);
}

int h_issuer_crl_delta_der_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return serve_raw(rq, rs, ref_of(rq), CRL_DELTA, false, err);
}

int h_issuer_crl_delta_pem_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return serve_raw(rq, rs, ref_of(rq), CRL_DELTA, true, err);
}

int h_cert_crl_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return serve_json(rq, rs, "default", CRL_FULL, true, err);
}

int h_cert_delta_crl_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return serve_json(rq, rs, "default", CRL_DELTA, true, err);
}

/* crl/rotate: the rebuild is scheduled, not awaited (a request never waits for a build). */
int h_crl_rotate(struct req *rq, struct resp *rs, struct sg_err *err)
{
	if (crl_rotate(crl_of(rq), pki_mount(rq), CRL_FULL, err) < 0)
		return -1;
	resp_data(rs, json_pack("{s:b}", "success", 1));
	return 0;
}

int h_crl_rotate_delta(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct crl_config cfg;

	if (crl_config_get(crl_of(rq), pki_mount(rq), &cfg, err) < 0)
		return -1;
	if (!cfg.enable_delta)
		return sg_err_set(err, SG_BAD_REQUEST, "delta CRLs are not enabled (config/crl enable_delta)");
	if (crl_rotate(crl_of(rq), pki_mount(rq), CRL_DELTA, err) < 0)
		return -1;
	resp_data(rs, json_pack("{s:b}", "success", 1));
	return 0;
}

int h_config_crl_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct crl_config cfg;

	if (crl_config_get(crl_of(rq), pki_mount(rq), &cfg, err) < 0)
		return -1;
	resp_data(rs, crl_config_to_json(&cfg));
	return 0;
}

/* As Vault: fields absent from the body keep their value. */
int h_config_crl_write(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct crl_config cfg;

	if (crl_config_get(crl_of(rq), pki_mount(rq), &cfg, err) < 0 ||
	    crl_config_from_json(rq->body, &cfg, err) < 0 || crl_config_set(crl_of(rq), pki_mount(rq), &cfg, err) < 0)
		return -1;
	resp_data(rs, crl_config_to_json(&cfg));
	return 0;
}

int h_tidy(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct crl_tidy_config t;

	crl_tidy_config_default(&t);
	if (crl_tidy_config_from_json(rq->body, &t, false, err) < 0 ||
	    crl_tidy_start(crl_of(rq), pki_mount(rq), &t, err) < 0)
		return -1;
	/* Vault answers 202 with this warning; the run goes on in the background. */
	rs->status = 202;
	resp_warn(rs, "Tidy operation successfully started. Any information from the operation will be printed to "
	              "Vault's server logs.");
	return 0;
}

int h_tidy_status(struct req *rq, struct resp *rs, struct sg_err *err)
{
	(void)err;
	resp_data(rs, crl_tidy_status(crl_of(rq), pki_mount(rq)));
	return 0;
}

int h_tidy_cancel(struct req *rq, struct resp *rs, struct sg_err *err)
{
	if (crl_tidy_cancel(crl_of(rq), pki_mount(rq), err) < 0)
		return -1;
	resp_data(rs, crl_tidy_status(crl_of(rq), pki_mount(rq)));
	return 0;
}

int h_config_auto_tidy_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct crl_tidy_config t;

	if (crl_tidy_config_get(crl_of(rq), pki_mount(rq), &t, err) < 0)
		return -1;
	resp_data(rs, crl_tidy_config_to_json(&t, true));
	return 0;
}

int h_config_auto_tidy_write(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct crl_tidy_config t;

	if (crl_tidy_config_get(crl_of(rq), pki_mount(rq), &t, err) < 0 ||
	    crl_tidy_config_from_json(rq->body, &t, true, err) < 0 ||
	    crl_tidy_config_set(crl_of(rq), pki_mount(rq), &t, err) < 0)
		return -1;
	resp_data(rs, crl_tidy_config_to_json(&t, true));
	return 0;
}
