/*
 * Challenge validation: http-01 (RFC 8555 8.3) through libcurl here,
 * dns-01 (8.4, dns.c) and tls-alpn-01 (RFC 8737, tlsalpn.c), dispatched
 * by type on a pool of threads; then the CAA check (RFC 8659) when
 * config/acme names caa_identities. A client usually sees the challenge
 * valid (or invalid) in the response to its POST, as step-ca answers.
 */
#include "acme/acme.h"

#include <curl/curl.h>
#include <pthread.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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

/*
 * With a configured resolver, the host of each hop is resolved through it
 * and pinned with CURLOPT_RESOLVE ("host:port:addr,..."), so that a
 * validation sees the names the validation DNS serves (libcurl has no
 * per-handle DNS server without c-ares). *pins is replaced.
 */
static int pin_host(CURL *c, const char *resolver, const char *url, struct curl_slist **pins, struct sg_err *err)
{
	CURLU *u = curl_url();
	char *host = NULL, *port = NULL, *entry = NULL;
	struct sg_strlist addrs = {0};
	int rc = -1;

	if (u == NULL)
		sg_die("curl_url failed");
	curl_slist_free_all(*pins);
	*pins = NULL;
	curl_easy_setopt(c, CURLOPT_RESOLVE, NULL);
	if (resolver == NULL || resolver[0] == '\0') {
		rc = 0;
		goto out;
	}
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
		sg_err_set(err, SG_ACME_CONNECTION, "cannot parse the URL %s", url);
		goto out;
	}
	if (host[0] == '[') {
		rc = 0; /* an IPv6 literal needs no lookup */
		goto out;
	}
	if (acme_dns_host_addrs(resolver, host, &addrs, err) != 0)
		goto out;
	entry = sg_xasprintf("%s:%s:", host, port);
	for (size_t i = 0; i < addrs.n && i < 8; i++) {
		char *next = strchr(addrs.v[i], ':') != NULL ? sg_xasprintf("%s%s[%s]", entry, i ? "," : "", addrs.v[i])
		                                             : sg_xasprintf("%s%s%s", entry, i ? "," : "", addrs.v[i]);

		free(entry);
		entry = next;
	}
	*pins = curl_slist_append(NULL, entry);
	if (*pins == NULL)
		sg_die("curl_slist_append failed");
	curl_easy_setopt(c, CURLOPT_RESOLVE, *pins);
	rc = 0;
out:
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	sg_strlist_clear(&addrs);
	free(entry);
	return rc;
}

int acme_http01_validate(const char *resolver, const char *host, int64_t port, const char *token,
                         const char *key_authz, struct sg_err *err)
{
	CURL *c;
	CURLcode cc;
	struct body_buf *body = sg_xcalloc(1, sizeof(*body));
	struct curl_slist *pins = NULL;
	char *url, *first;
	long status = 0;
	int64_t deadline = mono_ms() + ACME_HTTP01_TIMEOUT_S * 1000;
	int rc = -1;

	/* An IPv6 identifier is bracketed in the URL (RFC 8738 7). */
	url = strchr(host, ':') != NULL
	          ? sg_xasprintf("http://[%s]:%lld/.well-known/acme-challenge/%s", host, (long long)port, token)
	          : sg_xasprintf("http://%s:%lld/.well-known/acme-challenge/%s", host, (long long)port, token);
	first = sg_xstrdup(url);
	c = curl_easy_init();
	if (c == NULL)
		sg_die("curl_easy_init failed");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	/* A redirect to HTTPS is followed without certificate checks: the key authorisation is what proves control. */
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "sigil-acme-validator");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
	/*
	 * RFC 8555 8.3 / 10.2: redirects may be followed; only to http and
	 * https, a bounded number of them. They are followed here rather than
	 * by libcurl so that each hop's host is resolved like the first.
	 */
	for (int hop = 0;; hop++) {
		const char *next = NULL;
		int64_t left;

		body->len = 0;
		body->too_long = false;
		if (pin_host(c, resolver, url, &pins, err) != 0)
			goto out;
		/* ACME_HTTP01_TIMEOUT_S bounds the fetches of all hops together. */
		left = deadline - mono_ms();
		if (left <= 0) {
			sg_err_set(err, SG_ACME_CONNECTION, "fetching %s: no answer within %d s", first, ACME_HTTP01_TIMEOUT_S);
			goto out;
		}
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)left);
		curl_easy_setopt(c, CURLOPT_URL, url);
		cc = curl_easy_perform(c);
		if (cc != CURLE_OK && !body->too_long) {
			sg_err_set(err, SG_ACME_CONNECTION, "fetching %s: %s", url, curl_easy_strerror(cc));
			goto out;
		}
		if (body->too_long)
			break;
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		if (status < 300 || status > 399 || curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &next) != CURLE_OK ||
		    next == NULL)
			break;
		if (hop == ACME_HTTP01_MAX_REDIRS) {
			sg_err_set(err, SG_ACME_CONNECTION, "fetching %s: more than %d redirects", first, ACME_HTTP01_MAX_REDIRS);
			goto out;
		}
		if (strncasecmp(next, "http://", 7) != 0 && strncasecmp(next, "https://", 8) != 0) {
			sg_err_set(err, SG_ACME_CONNECTION, "fetching %s: redirect to a scheme other than http or https", first);
			goto out;
		}
		{
			char *n = sg_xstrdup(next);

			free(url);
			url = n;
		}
	}
	if (body->too_long) {
		sg_err_set(err, SG_ACME_INCORRECT_RESPONSE, "response to %s is larger than %d bytes", url,
		           ACME_HTTP01_MAX_BODY);
		rc = -2;
		goto out;
	}
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
		rc = -2;
		goto out;
	}
	rc = 0;
out:
	curl_easy_cleanup(c);
	curl_slist_free_all(pins);
	free(url);
	free(first);
	free(body);
	return rc;
}

/* ---- Asynchronous validation ---- */

struct job {
	struct job *next;
	int refs;                 /* queue/worker + waiter */
	bool done;
	pthread_cond_t cv;
	char *mount_id, *authz_id, *type, *thumbprint;
	int64_t http01_port, tls_alpn01_port;
	char *resolver;
	struct sg_strlist caa_identities;
};

struct acme_validator {
	struct store *st;
	pthread_mutex_t mu;
	pthread_cond_t cv;        /* work queued, or stopping */
	pthread_cond_t stop_cv;   /* stopping: ends the pauses between attempts */
	struct job *head, *tail;
	size_t queued;
	bool stopping;
	unsigned nthreads;
	pthread_t *threads;
};

static void job_unref(struct acme_validator *v, struct job *j)
{
	bool last;

	pthread_mutex_lock(&v->mu);
	last = --j->refs == 0;
	pthread_mutex_unlock(&v->mu);
	if (!last)
		return;
	pthread_cond_destroy(&j->cv);
	free(j->mount_id);
	free(j->authz_id);
	free(j->type);
	free(j->thumbprint);
	free(j->resolver);
	sg_strlist_clear(&j->caa_identities);
	free(j);
}

static json_t *find_challenge(json_t *az, const char *type)
{
	json_t *v, *ch = NULL;
	size_t i;

	json_array_foreach(json_object_get(az, "challenges"), i, v) {
		if (json_is_string(json_object_get(v, "type")) &&
		    strcmp(json_string_value(json_object_get(v, "type")), type) == 0)
			ch = v;
	}
	return ch;
}

void acme_validation_cfg_of(const struct acme_config *c, struct acme_validation_cfg *out)
{
	out->http01_port = c->http01_port;
	out->tls_alpn01_port = c->tls_alpn01_port;
	out->dns_resolver = c->dns_resolver;
	out->caa_identities = &c->caa_identities;
}

/* One attempt of the job's challenge, then CAA; 0, -1 (retry) or -2 (final), as the validators. */
static int validate_once(const struct job *j, const json_t *az, const char *token, const char *key_authz,
                         struct sg_err *err)
{
	const json_t *ident = json_object_get(az, "identifier");
	const char *value = json_string_value(json_object_get(ident, "value"));
	bool is_ip = json_is_string(json_object_get(ident, "type")) &&
	             strcmp(json_string_value(json_object_get(ident, "type")), "ip") == 0;
	bool wildcard = json_is_true(json_object_get(az, "wildcard"));
	int rc;

	if (strcmp(j->type, "http-01") == 0)
		rc = acme_http01_validate(j->resolver, value, j->http01_port, token, key_authz, err);
	else if (strcmp(j->type, "dns-01") == 0)
		rc = acme_dns01_validate(j->resolver, value, key_authz, err);
	else if (strcmp(j->type, "tls-alpn-01") == 0)
		rc = acme_tlsalpn01_validate(j->resolver, value, is_ip, j->tls_alpn01_port, key_authz, err);
	else
		rc = sg_err_set(err, SG_INTERNAL, "no validator for %s", j->type) - 1;
	/* RFC 8659 3: CAA is a property of DNS names; IP identifiers have none. */
	if (rc == 0 && !is_ip)
		rc = acme_caa_validate(j->resolver, value, wildcard, &j->caa_identities, err);
	return rc;
}

/* Validates with retries and records the outcome; failures to record are left for a later response. */
static void job_run(struct acme_validator *v, struct job *j)
{
	json_t *az = NULL, *ch;
	struct store_batch *b = NULL;
	struct sg_err verr, err;
	char *key_authz = NULL, when[32];
	const char *token, *host;
	int rc = -1;

	sg_err_init(&err);
	if (acme_authz_load(v->st, j->mount_id, j->authz_id, &az, &err) != 1 || (ch = find_challenge(az, j->type)) == NULL)
		goto out;
	token = json_string_value(json_object_get(ch, "token"));
	host = json_string_value(json_object_get(json_object_get(az, "identifier"), "value"));
	if (token == NULL || host == NULL)
		goto out;
	/* RFC 8555 8.1: keyAuthorization = token || '.' || base64url(Thumbprint(accountKey)). */
	key_authz = sg_xasprintf("%s.%s", token, j->thumbprint);
	for (int attempt = 1; attempt <= ACME_VALIDATE_ATTEMPTS; attempt++) {
		struct timespec until;
		bool stop;

		sg_err_init(&verr);
		rc = validate_once(j, az, token, key_authz, &verr);
		/* A wrong answer is final; an unreachable target or an error status may be a deployment in progress. */
		if (rc == 0 || rc == -2 || attempt == ACME_VALIDATE_ATTEMPTS)
			break;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += ACME_VALIDATE_RETRY_S;
		pthread_mutex_lock(&v->mu);
		while (!v->stopping && pthread_cond_timedwait(&v->stop_cv, &v->mu, &until) == 0)
			;
		stop = v->stopping;
		pthread_mutex_unlock(&v->mu);
		if (stop)
			goto out; /* stays processing: validated again after ACME_PROCESSING_STALE_S */
	}
	/* Re-read: the record may have changed while the target was being fetched. */
	json_decref(az);
	az = NULL;
	if (acme_authz_load(v->st, j->mount_id, j->authz_id, &az, &err) != 1 || (ch = find_challenge(az, j->type)) == NULL ||
	    !json_is_string(json_object_get(ch, "status")) ||
	    strcmp(json_string_value(json_object_get(ch, "status")), "processing") != 0)
		goto out;
	sg_time_format_rfc3339(sg_now(), when, sizeof(when));
	if (rc == 0) {
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
	json_object_del(ch, "processing_since");
	b = store_batch_new();
	acme_rec_put(b, j->mount_id, "authz", j->authz_id, az);
	(void)!store_commit(v->st, b, &err);
out:
	store_batch_free(b);
	free(key_authz);
	json_decref(az);
}

static void *worker(void *arg)
{
	struct acme_validator *v = arg;

	for (;;) {
		struct job *j;

		pthread_mutex_lock(&v->mu);
		while (v->head == NULL && !v->stopping)
			pthread_cond_wait(&v->cv, &v->mu);
		if (v->stopping) {
			pthread_mutex_unlock(&v->mu);
			return NULL;
		}
		j = v->head;
		v->head = j->next;
		if (v->head == NULL)
			v->tail = NULL;
		v->queued--;
		pthread_mutex_unlock(&v->mu);
		job_run(v, j);
		pthread_mutex_lock(&v->mu);
		j->done = true;
		pthread_cond_broadcast(&j->cv);
		pthread_mutex_unlock(&v->mu);
		job_unref(v, j);
	}
}

struct acme_validator *acme_validator_new(struct store *st, unsigned threads)
{
	struct acme_validator *v = sg_xcalloc(1, sizeof(*v));

	v->st = st;
	pthread_mutex_init(&v->mu, NULL);
	pthread_cond_init(&v->cv, NULL);
	pthread_cond_init(&v->stop_cv, NULL);
	v->threads = sg_xcalloc(threads, sizeof(*v->threads));
	for (unsigned i = 0; i < threads; i++) {
		if (pthread_create(&v->threads[i], NULL, worker, v) != 0)
			sg_die("cannot start an ACME validation thread");
		v->nthreads++;
	}
	return v;
}

void acme_validator_free(struct acme_validator *v)
{
	struct job *j;

	if (v == NULL)
		return;
	pthread_mutex_lock(&v->mu);
	v->stopping = true;
	pthread_cond_broadcast(&v->cv);
	pthread_cond_broadcast(&v->stop_cv);
	pthread_mutex_unlock(&v->mu);
	for (unsigned i = 0; i < v->nthreads; i++)
		pthread_join(v->threads[i], NULL);
	/* Queued jobs never ran: their waiters (if any) are gone with the requests. */
	while ((j = v->head) != NULL) {
		v->head = j->next;
		job_unref(v, j);
	}
	pthread_cond_destroy(&v->cv);
	pthread_cond_destroy(&v->stop_cv);
	pthread_mutex_destroy(&v->mu);
	free(v->threads);
	free(v);
}

int acme_challenge_respond(struct acme_validator *v, const char *mount_id, const char *authz_id, const char *type,
                           const char *thumbprint, const struct acme_validation_cfg *vcfg, json_t **authz,
                           struct sg_err *err)
{
	json_t *az = NULL, *ch;
	struct store_batch *b = NULL;
	struct job *j = NULL;
	const char *status;
	char when[32];
	int64_t since = 0;
	int r, rc = -1;

	*authz = NULL;
	r = acme_authz_load(v->st, mount_id, authz_id, &az, err);
	if (r < 0)
		return -1;
	if (r == 0)
		return sg_err_set(err, SG_NOT_FOUND, "no such authorization");
	ch = find_challenge(az, type);
	if (ch == NULL) {
		sg_err_set(err, SG_NOT_FOUND, "no such challenge");
		goto out;
	}
	status = json_string_value(json_object_get(ch, "status"));
	if (status != NULL && strcmp(status, "processing") == 0 &&
	    json_is_string(json_object_get(ch, "processing_since")) &&
	    sg_time_parse_rfc3339(json_string_value(json_object_get(ch, "processing_since")), &since) == 0 &&
	    sg_now() - since > ACME_PROCESSING_STALE_S)
		status = "pending"; /* its validation died with a server: run it again */
	/* RFC 8555 7.5.1: responding again to a challenge that is not pending changes nothing. */
	if (status == NULL || strcmp(status, "pending") != 0 ||
	    strcmp(json_string_value(json_object_get(az, "status")), "pending") != 0) {
		*authz = az;
		az = NULL;
		rc = 0;
		goto out;
	}
	pthread_mutex_lock(&v->mu);
	r = v->queued >= ACME_VALIDATOR_QUEUE_MAX || v->stopping;
	pthread_mutex_unlock(&v->mu);
	if (r) {
		sg_err_set(err, SG_UNAVAILABLE, "too many validations in progress; retry later");
		goto out;
	}
	sg_time_format_rfc3339(sg_now(), when, sizeof(when));
	json_object_set_new(ch, "status", json_string("processing"));
	json_object_set_new(ch, "processing_since", json_string(when));
	b = store_batch_new();
	acme_rec_put(b, mount_id, "authz", authz_id, az);
	if (store_commit(v->st, b, err) != 0)
		goto out;
	j = sg_xcalloc(1, sizeof(*j));
	j->refs = 2;
	pthread_cond_init(&j->cv, NULL);
	j->mount_id = sg_xstrdup(mount_id);
	j->authz_id = sg_xstrdup(authz_id);
	j->type = sg_xstrdup(type);
	j->thumbprint = sg_xstrdup(thumbprint);
	j->http01_port = vcfg->http01_port;
	j->tls_alpn01_port = vcfg->tls_alpn01_port;
	j->resolver = sg_xstrdup(vcfg->dns_resolver != NULL ? vcfg->dns_resolver : "");
	if (vcfg->caa_identities != NULL)
		sg_strlist_copy(&j->caa_identities, vcfg->caa_identities);
	{
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += ACME_VALIDATE_WAIT_MS / 1000;
		until.tv_nsec += (long)(ACME_VALIDATE_WAIT_MS % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&v->mu);
		if (v->tail != NULL)
			v->tail->next = j;
		else
			v->head = j;
		v->tail = j;
		v->queued++;
		pthread_cond_signal(&v->cv);
		while (!j->done && pthread_cond_timedwait(&j->cv, &v->mu, &until) == 0)
			;
		pthread_mutex_unlock(&v->mu);
	}
	job_unref(v, j);
	json_decref(az);
	az = NULL;
	/* The authorization as it stands: final when the validation finished in time, else processing. */
	r = acme_authz_load(v->st, mount_id, authz_id, authz, err);
	if (r == 1)
		rc = 0;
	else if (r == 0)
		sg_err_set(err, SG_NOT_FOUND, "no such authorization");
out:
	store_batch_free(b);
	json_decref(az);
	return rc;
}
