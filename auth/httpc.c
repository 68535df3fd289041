/*
 * libcurl for the auth methods. One easy handle per call (calls are rare:
 * logins and key refreshes), global init once.
 */
#include "auth/httpc.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HEADER_MAX 8192 /* one built request header (bearer tokens are JWTs of a few KB) */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct sink {
	char *buf;
	size_t len, cap;
	bool over;
};

static size_t sink_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct sink *s = arg;
	size_t n = size * nmemb;

	if (s->len + n > AUTH_HTTPC_MAX_BODY) {
		s->over = true;
		return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
	}
	if (s->len + n + 1 > s->cap) {
		size_t cap = s->cap != 0 ? s->cap : 4096;

		while (cap < s->len + n + 1)
			cap *= 2;
		s->buf = sg_xrealloc(s->buf, cap);
		s->cap = cap;
	}
	memcpy(s->buf + s->len, ptr, n);
	s->len += n;
	s->buf[s->len] = '\0';
	return n;
}

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
	       c == '_' || c == '~';
}

char *auth_httpc_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s), o = 0;
	char *out = sg_xmalloc(3 * n + 1);

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (unreserved(c)) {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
	return out;
}

static void header_wipe_free(char *h)
{
	if (h != NULL) {
		OPENSSL_cleanse(h, strlen(h));
		free(h);
	}
}

int auth_httpc_do(const struct auth_httpc_req *r, long *status, char **body, size_t *len, struct sg_err *err)
{
	CURL *c = NULL;
	struct curl_slist *hdrs = NULL;
	struct sink sink = {0};
	char errbuf[CURL_ERROR_SIZE] = {0};
	char *auth_hdr = NULL, *ct_hdr = NULL, *accept_hdr = NULL;
	struct curl_blob blob;
	CURLcode rc;
	int ret = -1;

	*body = NULL;
	*len = 0;
	*status = 0;
	if (r->url == NULL || strlen(r->url) > AUTH_HTTPC_MAX_URL ||
	    (strncasecmp(r->url, "https://", 8) != 0 && strncasecmp(r->url, "http://", 7) != 0))
		return sg_err_set(err, SG_BAD_REQUEST, "URL must be http:// or https:// and at most %d bytes",
		                  AUTH_HTTPC_MAX_URL);
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK)
		return sg_err_set(err, SG_INTERNAL, "libcurl initialisation failed");
	c = curl_easy_init();
	if (c == NULL)
		sg_die("curl_easy_init");

	curl_easy_setopt(c, CURLOPT_URL, r->url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, AUTH_HTTPC_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, AUTH_HTTPC_CONNECT_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)AUTH_HTTPC_MAX_BODY);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
	/* No proxy from the environment: an identity provider is reached directly or not at all. */
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	if (r->ca_pem != NULL && *r->ca_pem != '\0') {
		blob.data = (void *)r->ca_pem;
		blob.len = strlen(r->ca_pem);
		blob.flags = CURL_BLOB_COPY;
		curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &blob);
	}
	if (r->bearer != NULL) {
		auth_hdr = sg_xasprintf("Authorization: Bearer %s", r->bearer);
	} else if (r->basic_user != NULL) {
		/* RFC 6749 2.3.1: client id and secret are form-encoded before Basic. */
		char *u = auth_httpc_escape(r->basic_user), *p = auth_httpc_escape(r->basic_pass ? r->basic_pass : "");
		char *pair = sg_xasprintf("%s:%s", u, p);
		char *b64 = sg_base64((const unsigned char *)pair, strlen(pair));

		auth_hdr = sg_xasprintf("Authorization: Basic %s", b64);
		header_wipe_free(u);
		header_wipe_free(p);
		header_wipe_free(pair);
		header_wipe_free(b64);
	}
	if (auth_hdr != NULL) {
		if (strlen(auth_hdr) > HEADER_MAX || strpbrk(auth_hdr, "\r\n") != NULL) {
			sg_err_set(err, SG_BAD_REQUEST, "credential unusable in an HTTP header");
			goto out;
		}
		hdrs = curl_slist_append(hdrs, auth_hdr);
	}
	accept_hdr = sg_xasprintf("Accept: %s", r->accept != NULL ? r->accept : "application/json");
	hdrs = curl_slist_append(hdrs, accept_hdr);
	if (r->body != NULL) {
		ct_hdr = sg_xasprintf("Content-Type: %s", r->content_type != NULL ? r->content_type : "application/json");
		hdrs = curl_slist_append(hdrs, ct_hdr);
		/* No "Expect: 100-continue" round trip for larger bodies. */
		hdrs = curl_slist_append(hdrs, "Expect:");
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
	}
	if (hdrs == NULL)
		sg_die("curl_slist_append");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);

	rc = curl_easy_perform(c);
	if (rc != CURLE_OK) {
		if (sink.over || rc == CURLE_FILESIZE_EXCEEDED)
			sg_err_set(err, SG_UNAVAILABLE, "answer from %.200s larger than %u bytes", r->url, AUTH_HTTPC_MAX_BODY);
		else
			sg_err_set(err, SG_UNAVAILABLE, "request to %.200s failed: %.200s", r->url,
			           errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc));
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	if (sink.buf == NULL) {
		sink.buf = sg_xmalloc(1);
		sink.buf[0] = '\0';
	}
	*body = sink.buf;
	*len = sink.len;
	sink.buf = NULL;
	ret = 0;
out:
	free(sink.buf);
	curl_slist_free_all(hdrs);
	header_wipe_free(auth_hdr);
	free(ct_hdr);
	free(accept_hdr);
	curl_easy_cleanup(c);
	return ret;
}
