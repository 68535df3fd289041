/*
 * agent/staple.c: OCSP staples kept next to a certificate (ocsp_staple_file).
 *
 * nginx's own stapling fetcher (ssl_stapling on) keeps only "good"
 * answers: ngx_ssl_stapling_ocsp_handler logs 'certificate status
 * "revoked" in the OCSP response' and drops it, so a revoked certificate
 * goes on being served with no staple (or the last good one). With
 * ssl_stapling_file nginx staples whatever the file holds, so the agent
 * fetches the answer itself, checks it as a client would, and writes it.
 *
 * An answer is written only when it is a successful OCSPResponse whose
 * signature chains to the certificate's issuer (the issuer itself, or a
 * delegated responder it issued with id-kp-OCSPSigning: RFC 6960 4.2.2.2),
 * that answers for this certificate (its CertID), that says good or
 * revoked, and that is inside its validity window (RFC 6960 4.2.2.1).
 */
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "agent/agent.h"

#define STAPLE_MAX_CERTS 16         /* certificates read from the leaf and chain text */
#define STAPLE_CLOCK_SKEW_S 300     /* thisUpdate may be this far ahead of our clock */
#define STAPLE_TIMEOUT_MS 15000L
#define STAPLE_CONNECT_TIMEOUT_MS 5000L

void agent_staple_clear(struct agent_staple *s)
{
	if (s == NULL)
		return;
	free(s->der);
	memset(s, 0, sizeof(*s));
}

/* Every certificate of the PEM text, in order, appended to sk. */
static int certs_read(const char *pem, STACK_OF(X509) *sk, struct sg_err *err)
{
	BIO *bio;
	X509 *x;

	if (pem == NULL)
		return 0;
	if (strlen(pem) > AGENT_MAX_PEM_BYTES)
		return sg_err_set(err, SG_TOO_LARGE, "certificate text larger than %u bytes", AGENT_MAX_PEM_BYTES);
	bio = BIO_new_mem_buf(pem, -1);
	if (bio == NULL)
		sg_die("out of memory");
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (sk_X509_num(sk) >= STAPLE_MAX_CERTS || sk_X509_push(sk, x) <= 0) {
			X509_free(x);
			BIO_free(bio);
			return sg_err_set(err, SG_BAD_PEM, "more than %d certificates", STAPLE_MAX_CERTS);
		}
	}
	BIO_free(bio);
	ERR_clear_error(); /* the end of the text */
	return 0;
}

/* The leaf (first certificate of leaf_pem) and its issuer among the certificates of chain_pem. */
static int leaf_and_issuer(const char *leaf_pem, const char *chain_pem, X509 **leaf, X509 **issuer,
                           STACK_OF(X509) **chain, struct sg_err *err)
{
	STACK_OF(X509) *l = sk_X509_new_null(), *c = sk_X509_new_null();
	int rc = -1;

	*leaf = *issuer = NULL;
	*chain = NULL;
	if (l == NULL || c == NULL)
		sg_die("out of memory");
	if (certs_read(leaf_pem, l, err) != 0 || certs_read(chain_pem, c, err) != 0)
		goto out;
	if (sk_X509_num(l) == 0) {
		sg_err_set(err, SG_BAD_PEM, "no certificate to staple");
		goto out;
	}
	*leaf = sk_X509_shift(l);
	/* The leaf's other certificates (a bundle) are chain candidates too. */
	while (sk_X509_num(l) > 0)
		sk_X509_push(c, sk_X509_shift(l));
	for (int i = 0; i < sk_X509_num(c); i++) {
		X509 *x = sk_X509_value(c, i);

		if (X509_check_issued(x, *leaf) == X509_V_OK) {
			if (X509_up_ref(x) != 1)
				sg_die("X509_up_ref");
			*issuer = x;
			break;
		}
	}
	if (*issuer == NULL) {
		sg_err_set(err, SG_BAD_PEM, "the issuer of the certificate is not in its chain");
		goto out;
	}
	*chain = c;
	c = NULL;
	rc = 0;
out:
	if (rc != 0) {
		X509_free(*leaf);
		*leaf = NULL;
	}
	sk_X509_pop_free(l, X509_free);
	sk_X509_pop_free(c, X509_free);
	return rc;
}

int agent_staple_request(const char *leaf_pem, const char *chain_pem, unsigned char **der, size_t *len, char **url,
                         struct sg_err *err)
{
	X509 *leaf = NULL, *issuer = NULL;
	STACK_OF(X509) *chain = NULL;
	STACK_OF(OPENSSL_STRING) *aia = NULL;
	OCSP_REQUEST *req = NULL;
	OCSP_CERTID *id = NULL;
	unsigned char *p = NULL;
	int n, rc = -1;

	*der = NULL;
	*len = 0;
	if (url != NULL)
		*url = NULL;
	if (leaf_and_issuer(leaf_pem, chain_pem, &leaf, &issuer, &chain, err) != 0)
		goto out;
	/* RFC 5019 2.1: one CertID with SHA-1, no nonce: the responder's pre-signed answer. */
	req = OCSP_REQUEST_new();
	id = OCSP_cert_to_id(EVP_sha1(), leaf, issuer);
	if (req == NULL || id == NULL || OCSP_request_add0_id(req, id) == NULL) {
		sg_err_ossl(err, SG_CRYPTO, "cannot build the OCSP request");
		goto out;
	}
	id = NULL;
	if ((n = i2d_OCSP_REQUEST(req, &p)) <= 0) {
		sg_err_ossl(err, SG_CRYPTO, "cannot encode the OCSP request");
		goto out;
	}
	*der = sg_xmalloc((size_t)n);
	memcpy(*der, p, (size_t)n);
	*len = (size_t)n;
	/* RFC 5280 4.2.2.1: the responder the issuer named (the first http one). */
	if (url != NULL && (aia = X509_get1_ocsp(leaf)) != NULL) {
		for (int i = 0; i < sk_OPENSSL_STRING_num(aia); i++) {
			const char *u = sk_OPENSSL_STRING_value(aia, i);

			if (strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0) {
				*url = sg_xstrdup(u);
				break;
			}
		}
	}
	rc = 0;
out:
	OPENSSL_free(p);
	OCSP_CERTID_free(id);
	OCSP_REQUEST_free(req);
	X509_email_free(aia);
	X509_free(leaf);
	X509_free(issuer);
	sk_X509_pop_free(chain, X509_free);
	return rc;
}

static int64_t gt_unix(const ASN1_GENERALIZEDTIME *t)
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return (int64_t)timegm(&tm);
}

int agent_staple_check(const unsigned char *der, size_t len, const char *leaf_pem, const char *chain_pem,
                       int64_t now, struct agent_staple *out, struct sg_err *err)
{
	X509 *leaf = NULL, *issuer = NULL;
	STACK_OF(X509) *chain = NULL;
	X509_STORE *store = NULL;
	OCSP_RESPONSE *resp = NULL;
	OCSP_BASICRESP *bs = NULL;
	OCSP_CERTID *id = NULL;
	ASN1_GENERALIZEDTIME *rev = NULL, *tu = NULL, *nu = NULL;
	const unsigned char *p = der;
	int status = -1, reason = -1, rc = -1;

	memset(out, 0, sizeof(*out));
	if (len == 0 || len > AGENT_MAX_STAPLE_BYTES) {
		sg_err_set(err, SG_BAD_REQUEST, "OCSP answer of %zu bytes (1 to %u)", len, AGENT_MAX_STAPLE_BYTES);
		goto out;
	}
	if (leaf_and_issuer(leaf_pem, chain_pem, &leaf, &issuer, &chain, err) != 0)
		goto out;
	resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
	if (resp == NULL || p != der + len) {
		sg_err_ossl(err, SG_BAD_REQUEST, "the OCSP answer is not DER or has trailing bytes");
		goto out;
	}
	if (OCSP_response_status(resp) != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
		sg_err_set(err, SG_BAD_REQUEST, "the responder answered %s",
		           OCSP_response_status_str(OCSP_response_status(resp)));
		goto out;
	}
	if ((bs = OCSP_response_get1_basic(resp)) == NULL) {
		sg_err_ossl(err, SG_BAD_REQUEST, "the OCSP answer has no BasicOCSPResponse");
		goto out;
	}
	/*
	 * The chain we hold is the trust: the issuer (and what is above it) as
	 * anchors, a partial chain allowed since an intermediate is not
	 * self-signed. OCSP_basic_verify also requires the signer to be the
	 * issuer or a certificate it issued for OCSP signing (RFC 6960 4.2.2.2).
	 */
	store = X509_STORE_new();
	if (store == NULL)
		sg_die("out of memory");
	for (int i = 0; i < sk_X509_num(chain); i++)
		X509_STORE_add_cert(store, sk_X509_value(chain, i));
	X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
	if (OCSP_basic_verify(bs, chain, store, 0) != 1) {
		sg_err_ossl(err, SG_BAD_REQUEST, "the OCSP answer's signature does not verify through the issuer");
		goto out;
	}
	id = OCSP_cert_to_id(EVP_sha1(), leaf, issuer);
	if (id == NULL) {
		sg_err_ossl(err, SG_CRYPTO, "cannot build the certificate's CertID");
		goto out;
	}
	if (OCSP_resp_find_status(bs, id, &status, &reason, &rev, &tu, &nu) != 1) {
		sg_err_set(err, SG_BAD_REQUEST, "the OCSP answer is not about this certificate");
		goto out;
	}
	out->this_update = gt_unix(tu);
	out->next_update = nu != NULL ? gt_unix(nu) : 0;
	/* RFC 6960 4.2.2.1: not before thisUpdate (allowing for skew), not at or after nextUpdate. */
	if (out->this_update == 0 || out->this_update > now + STAPLE_CLOCK_SKEW_S ||
	    (out->next_update != 0 && now >= out->next_update)) {
		sg_err_set(err, SG_BAD_REQUEST, "the OCSP answer is outside its validity (thisUpdate..nextUpdate)");
		goto out;
	}
	if (status == V_OCSP_CERTSTATUS_GOOD) {
		out->status = AGENT_STAPLE_GOOD;
	} else if (status == V_OCSP_CERTSTATUS_REVOKED) {
		out->status = AGENT_STAPLE_REVOKED;
		out->reason = reason;
		out->revoked_at = gt_unix(rev);
	} else {
		/* "unknown" would tell clients nothing; the last good or revoked staple stays. */
		sg_err_set(err, SG_BAD_REQUEST, "the responder does not know the certificate (status unknown)");
		goto out;
	}
	out->der = sg_xmalloc(len);
	memcpy(out->der, der, len);
	out->len = len;
	rc = 0;
out:
	ERR_clear_error();
	OCSP_CERTID_free(id);
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(resp);
	X509_STORE_free(store);
	X509_free(leaf);
	X509_free(issuer);
	sk_X509_pop_free(chain, X509_free);
	return rc;
}

int64_t agent_staple_refresh_time(const struct agent_staple *s, int64_t now)
{
	int64_t at;

	/* Halfway through its validity, as the responder re-signs; hourly when it has no nextUpdate. */
	if (s->next_update == 0)
		at = now + AGENT_STAPLE_DEFAULT_REFRESH;
	else
		at = s->this_update + (s->next_update - s->this_update) / 2;
	if (at < now + AGENT_STAPLE_MIN_REFRESH)
		at = now + AGENT_STAPLE_MIN_REFRESH;
	return at;
}

/* ---- the fetch ---- */

struct body {
	unsigned char *p;
	size_t n;
	bool over;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
	struct body *b = ud;
	size_t n = size * nmemb;

	if (b->n + n > AGENT_MAX_STAPLE_BYTES) {
		b->over = true;
		return 0;
	}
	b->p = sg_xrealloc(b->p, b->n + n + 1);
	memcpy(b->p + b->n, data, n);
	b->n += n;
	return n;
}

int agent_staple_fetch(const char *url, const unsigned char *req, size_t req_len, const char *cacert,
                       bool skip_verify, unsigned char **der, size_t *len, struct sg_err *err)
{
	CURL *h = curl_easy_init();
	struct curl_slist *hdr = NULL;
	struct body b = {0};
	long status = 0;
	char ebuf[CURL_ERROR_SIZE] = "";
	const char *ctype = NULL;
	CURLcode cc;
	int rc = -1;

	*der = NULL;
	*len = 0;
	if (h == NULL)
		sg_die("curl_easy_init failed");
	/* RFC 6960 A.1: POST of the DER request works for any size and needs no escaping. */
	hdr = curl_slist_append(hdr, "Content-Type: application/ocsp-request");
	hdr = curl_slist_append(hdr, "Accept: application/ocsp-response");
	if (hdr == NULL)
		sg_die("out of memory");
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, (const char *)req);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)req_len);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, STAPLE_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, STAPLE_CONNECT_TIMEOUT_MS);
	if (cacert != NULL)
		curl_easy_setopt(h, CURLOPT_CAINFO, cacert);
	if (skip_verify) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	cc = curl_easy_perform(h);
	if (b.over) {
		sg_err_set(err, SG_TOO_LARGE, "OCSP answer from %s larger than %u bytes", url, AGENT_MAX_STAPLE_BYTES);
		goto out;
	}
	if (cc != CURLE_OK) {
		sg_err_set(err, SG_UNAVAILABLE, "OCSP responder %s: %s", url, ebuf[0] != '\0' ? ebuf : curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ctype);
	if (status != 200) {
		sg_err_set(err, SG_UNAVAILABLE, "OCSP responder %s answered HTTP %ld", url, status);
		goto out;
	}
	if (ctype == NULL || strncasecmp(ctype, "application/ocsp-response", 25) != 0) {
		sg_err_set(err, SG_BAD_REQUEST, "OCSP responder %s answered %s, not application/ocsp-response", url,
		           ctype != NULL ? ctype : "no content type");
		goto out;
	}
	*der = b.p;
	*len = b.n;
	b.p = NULL;
	rc = 0;
out:
	free(b.p);
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
	return rc;
}
