/*
 * Challenge validation. http-01 (RFC 8555 8.3) through libcurl: the
 * validation runs inside the challenge POST, bounded by
 * ACME_HTTP01_TIMEOUT_S, so a client usually sees the challenge valid (or
 * invalid) in the response itself, as step-ca answers.
 */
#include "acme/acme.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

struct body_buf {
	char data[ACME_HTTP01_MAX_BODY + 1];
	size_t len;
	bool too_long;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct body_buf *b = arg;
	size_t n = size * nmemb;

	if (b->len + n > ACME_HTTP01_MAX_BODY) {
		b->too_long = true;
		return 0; /* aborts the transfer */
	}
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	return n;
}

int acme_http01_validate(const char *host, int64_t port, const char *token, const char *key_authz,
                         struct sg_err *err)
{
	CURL *c;
	CURLcode cc;
	struct body_buf *body = sg_xcalloc(1, sizeof(*body));
	char *url;
	long status = 0;
	int rc = -1;

	/* An IPv6 identifier is bracketed in the URL (RFC 8738 7). */
	url = strchr(host, ':') != NULL
	          ? sg_xasprintf("http://[%s]:%lld/.well-known/acme-challenge/%s", host, (long long)port, token)
	          : sg_xasprintf("http://%s:%lld/.well-known/acme-challenge/%s", host, (long long)port, token);
	c = curl_easy_init();
	if (c == NULL)
		sg_die("curl_easy_init failed");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)ACME_HTTP01_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
	/* RFC 8555 8.3 / 10.2: redirects may be followed; only to http and https, a bounded number of them. */
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, (long)ACME_HTTP01_MAX_REDIRS);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	/* A redirect to HTTPS is followed without certificate checks: the key authorisation is what proves control. */
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "sigil-acme-validator");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
	cc = curl_easy_perform(c);
	if (cc != CURLE_OK && !body->too_long) {
		sg_err_set(err, SG_ACME_CONNECTION, "fetching %s: %s", url, curl_easy_strerror(cc));
		goto out;
	}
	if (body->too_long) {
		sg_err_set(err, SG_ACME_INCORRECT_RESPONSE, "response to %s is larger than %d bytes", url,
		           ACME_HTTP01_MAX_BODY);
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		sg_err_set(err, SG_ACME_INCORRECT_RESPONSE, "fetching %s: HTTP %ld", url, status);
		goto out;
	}
	/* RFC 8555 8.3: the server SHOULD ignore trailing whitespace. */
	while (body->len > 0 && (body->data[body->len - 1] == ' ' || body->data[body->len - 1] == '\t' ||
	                         body->data[body->len - 1] == '\r' || body->data[body->len - 1] == '\n'))
		body->len--;
	if (!sg_ct_equal(body->data, body->len, key_authz, strlen(key_authz))) {
		sg_err_set(err, SG_ACME_INCORRECT_RESPONSE, "the key authorization served at %s is wrong", url);
		goto out;
	}
	rc = 0;
out:
	curl_easy_cleanup(c);
	free(url);
	free(body);
	return rc;
}

int acme_challenge_respond(struct store *st, const char *mount_id, const char *authz_id, const char *type,
                           const char *thumbprint, int64_t http01_port, json_t **authz, struct sg_err *err)
{
	json_t *az = NULL, *ch = NULL, *v;
	struct store_batch *b = NULL;
	const char *token, *status, *host;
	char *key_authz = NULL, when[32];
	struct sg_err verr;
	size_t i;
	int r, rc = -1;

	*authz = NULL;
	r = acme_authz_load(st, mount_id, authz_id, &az, err);
	if (r < 0)
		return -1;
	if (r == 0)
		return sg_err_set(err, SG_NOT_FOUND, "no such authorization");
	json_array_foreach(json_object_get(az, "challenges"), i, v) {
		if (json_is_string(json_object_get(v, "type")) &&
		    strcmp(json_string_value(json_object_get(v, "type")), type) == 0)
			ch = v;
	}
	if (ch == NULL) {
		sg_err_set(err, SG_NOT_FOUND, "no such challenge");
		goto out;
	}
	status = json_string_value(json_object_get(ch, "status"));
	/* RFC 8555 7.5.1: responding again to a challenge that is not pending changes nothing. */
	if (status == NULL || strcmp(status, "pending") != 0 ||
	    strcmp(json_string_value(json_object_get(az, "status")), "pending") != 0) {
		*authz = az;
		az = NULL;
		rc = 0;
		goto out;
	}
	token = json_string_value(json_object_get(ch, "token"));
	host = json_string_value(json_object_get(json_object_get(az, "identifier"), "value"));
	if (token == NULL || host == NULL || strcmp(type, "http-01") != 0) {
		sg_err_set(err, SG_STORAGE, "corrupt ACME authorization");
		goto out;
	}
	/* RFC 8555 8.1: keyAuthorization = token || '.' || base64url(Thumbprint(accountKey)). */
	key_authz = sg_xasprintf("%s.%s", token, thumbprint);
	sg_err_init(&verr);
	sg_time_format_rfc3339(sg_now(), when, sizeof(when));
	if (acme_http01_validate(host, http01_port, token, key_authz, &verr) == 0) {
		json_object_set_new(ch, "status", json_string("valid"));
		json_object_set_new(ch, "validated", json_string(when));
		json_object_set_new(az, "status", json_string("valid"));
	} else {
		char *type_urn = sg_xasprintf("urn:ietf:params:acme:error:%s", sg_err_acme_type(verr.code));

		json_object_set_new(ch, "status", json_string("invalid"));
		json_object_set_new(ch, "error", json_pack("{s:s, s:s, s:i}", "type", type_urn, "detail", verr.detail,
		                                           "status", sg_err_http_status(verr.code)));
		json_object_set_new(az, "status", json_string("invalid"));
		free(type_urn);
	}
	b = store_batch_new();
	acme_rec_put(b, mount_id, "authz", authz_id, az);
	if (store_commit(st, b, err) != 0)
		goto out;
	*authz = az;
	az = NULL;
	rc = 0;
out:
	store_batch_free(b);
	free(key_authz);
	json_decref(az);
	return rc;
}
