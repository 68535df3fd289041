/* The shared API client: libcurl, JSON in and out, Vault's error envelope. */
#include "cli/client.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		sg_die("curl_global_init failed");
}

static void str_replace(char **dst, const char *src)
{
	free(*dst);
	*dst = src != NULL ? sg_xstrdup(src) : NULL;
}

static void str_wipe_free(char **s)
{
	if (*s != NULL) {
		OPENSSL_cleanse(*s, strlen(*s));
		free(*s);
		*s = NULL;
	}
}

struct cli_client *cli_client_new(void)
{
	struct cli_client *c = sg_xcalloc(1, sizeof(*c));

	pthread_once(&curl_once, curl_init_once);
	c->addr = sg_xstrdup(CLI_DEFAULT_ADDR);
	c->timeout_ms = CLI_DEFAULT_TIMEOUT_MS;
	c->connect_timeout_ms = CLI_DEFAULT_CONNECT_TIMEOUT_MS;
	return c;
}

void cli_client_free(struct cli_client *c)
{
	if (c == NULL)
		return;
	if (c->curl != NULL)
		curl_easy_cleanup(c->curl);
	free(c->addr);
	str_wipe_free(&c->token);
	free(c->cacert);
	free(c->client_cert);
	free(c->client_key);
	free(c);
}

void cli_client_set_addr(struct cli_client *c, const char *addr)
{
	size_t n;

	str_replace(&c->addr, addr);
	if (c->addr == NULL)
		return;
	n = strlen(c->addr);
	while (n > 0 && c->addr[n - 1] == '/')
		c->addr[--n] = '\0';
}

void cli_client_set_token(struct cli_client *c, const char *token)
{
	str_wipe_free(&c->token);
	if (token != NULL && *token != '\0')
		c->token = sg_xstrdup(token);
}

void cli_client_set_cacert(struct cli_client *c, const char *path)
{
	str_replace(&c->cacert, path != NULL && *path != '\0' ? path : NULL);
}

void cli_client_set_client_cert(struct cli_client *c, const char *cert_path, const char *key_path)
{
	str_replace(&c->client_cert, cert_path);
	str_replace(&c->client_key, key_path);
}

/* SIGIL_<name>, else VAULT_<name>; empty values count as unset. */
static const char *env2(const char *name)
{
	char key[64];
	const char *v;

	snprintf(key, sizeof(key), "SIGIL_%s", name);
	v = getenv(key);
	if (v != NULL && *v != '\0')
		return v;
	snprintf(key, sizeof(key), "VAULT_%s", name);
	v = getenv(key);
	return v != NULL && *v != '\0' ? v : NULL;
}

void cli_client_from_env(struct cli_client *c)
{
	const char *v;

	if ((v = env2("ADDR")) != NULL)
		cli_client_set_addr(c, v);
	if ((v = env2("TOKEN")) != NULL)
		cli_client_set_token(c, v);
	if ((v = env2("CACERT")) != NULL)
		cli_client_set_cacert(c, v);
	if ((v = env2("CLIENT_CERT")) != NULL)
		str_replace(&c->client_cert, v);
	if ((v = env2("CLIENT_KEY")) != NULL)
		str_replace(&c->client_key, v);
	if ((v = env2("SKIP_VERIFY")) != NULL)
		c->skip_verify = strcmp(v, "1") == 0 || strcmp(v, "true") == 0 || strcmp(v, "TRUE") == 0;
}

void cli_response_clear(struct cli_response *resp)
{
	if (resp == NULL)
		return;
	free(resp->raw);
	free(resp->content_type);
	json_decref(resp->json);
	sg_strlist_clear(&resp->errors);
	sg_strlist_clear(&resp->warnings);
	free(resp->errors.v);
	free(resp->warnings.v);
	memset(resp, 0, sizeof(*resp));
}

struct sink {
	char *buf;
	size_t len, cap;
	bool too_big;
};

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
	struct sink *s = ud;
	size_t n = size * nmemb;

	if (s->len + n > CLI_MAX_RESPONSE_BYTES) {
		s->too_big = true;
		return 0; /* aborts the transfer */
	}
	if (s->len + n + 1 > s->cap) {
		size_t cap = s->cap ? s->cap : 4096;
		while (cap < s->len + n + 1)
			cap *= 2;
		s->buf = sg_xrealloc(s->buf, cap);
		s->cap = cap;
	}
	memcpy(s->buf + s->len, p, n);
	s->len += n;
	s->buf[s->len] = '\0';
	return n;
}

static void strlist_from_json(struct sg_strlist *l, const json_t *arr)
{
	size_t i;
	json_t *v;

	if (!json_is_array(arr))
		return;
	json_array_foreach(arr, i, v) {
		if (json_is_string(v) && l->n < SG_STRLIST_MAX)
			sg_strlist_add(l, json_string_value(v));
	}
}

/* Builds addr + "/v1/" + path, refusing paths that are too long or carry control bytes. */
static char *build_url(const struct cli_client *c, const char *path, bool list, struct sg_err *err)
{
	size_t i, n;

	if (strncmp(path, "/v1/", 4) == 0)
		path += 4;
	while (*path == '/')
		path++;
	n = strlen(path);
	if (n > CLI_MAX_PATH) {
		sg_err_set(err, SG_BAD_REQUEST, "path longer than %u bytes", CLI_MAX_PATH);
		return NULL;
	}
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)path[i];
		if (ch <= 0x20 || ch == 0x7f) {
			sg_err_set(err, SG_BAD_REQUEST, "path contains a space or control character");
			return NULL;
		}
	}
	if (list)
		return sg_xasprintf("%s/v1/%s%slist=true", c->addr, path, strchr(path, '?') ? "&" : "?");
	return sg_xasprintf("%s/v1/%s", c->addr, path);
}

int cli_client_request(struct cli_client *c, const char *method, const char *path, const json_t *body,
                       struct cli_response *resp, struct sg_err *err)
{
	CURL *h;
	CURLcode rc;
	struct curl_slist *hdrs = NULL;
	struct sink sink = {0};
	char *url = NULL, *payload = NULL, *tokhdr = NULL;
	char curl_err[CURL_ERROR_SIZE] = "";
	bool list = strcmp(method, "LIST") == 0;
	const char *ctype = NULL;
	json_error_t jerr;
	int ret = -1;

	cli_response_clear(resp);
	if (c->addr == NULL || c->addr[0] == '\0')
		return sg_err_set(err, SG_BAD_REQUEST, "no server address (set SIGIL_ADDR)");
	if ((url = build_url(c, path, list, err)) == NULL)
		goto out;
	if (c->curl == NULL && (c->curl = curl_easy_init()) == NULL)
		sg_die("curl_easy_init failed");
	h = c->curl;
	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_err);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "sigil-cli");
	/* The API never redirects; following one could carry the token elsewhere. */
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
	if (c->cacert != NULL)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->cacert);
	if (c->skip_verify) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (c->client_cert != NULL) {
		curl_easy_setopt(h, CURLOPT_SSLCERT, c->client_cert);
		curl_easy_setopt(h, CURLOPT_SSLKEY, c->client_key != NULL ? c->client_key : c->client_cert);
	}
	if (c->token != NULL) {
		tokhdr = sg_xasprintf("X-Vault-Token: %s", c->token);
		hdrs = curl_slist_append(hdrs, tokhdr);
	}
	hdrs = curl_slist_append(hdrs, "X-Vault-Request: true");
	if (body != NULL) {
		if ((payload = json_dumps(body, JSON_COMPACT)) == NULL)
			sg_die("json_dumps failed");
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(payload));
	}
	if (list || strcmp(method, "GET") == 0) {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	} else if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (strcmp(method, "POST") == 0 && body == NULL) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
	} else if (strcmp(method, "POST") != 0) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);

	rc = curl_easy_perform(h);
	if (rc != CURLE_OK) {
		if (sink.too_big)
			sg_err_set(err, SG_TOO_LARGE, "response from %s larger than %u bytes", c->addr,
			           CLI_MAX_RESPONSE_BYTES);
		else
			sg_err_set(err, SG_UNAVAILABLE, "cannot reach %s: %s", c->addr,
			           curl_err[0] ? curl_err : curl_easy_strerror(rc));
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
	if (curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ctype) == CURLE_OK && ctype != NULL)
		resp->content_type = sg_xstrdup(ctype);
	resp->raw = sink.buf != NULL ? sink.buf : sg_xstrdup("");
	resp->raw_len = sink.len;
	sink.buf = NULL;
	if (resp->raw_len > 0) {
		resp->json = json_loadb(resp->raw, resp->raw_len, JSON_DECODE_ANY, &jerr);
		if (json_is_object(resp->json)) {
			strlist_from_json(&resp->errors, json_object_get(resp->json, "errors"));
			strlist_from_json(&resp->warnings, json_object_get(resp->json, "warnings"));
		}
	}
	ret = 0;
out:
	curl_slist_free_all(hdrs);
	if (c->curl != NULL) {
		/* Both point at memory that ends with this call. */
		curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
		curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, NULL);
	}
	if (tokhdr != NULL) {
		OPENSSL_cleanse(tokhdr, strlen(tokhdr));
		free(tokhdr);
	}
	free(payload);
	free(sink.buf);
	free(url);
	return ret;
}

char *cli_response_errmsg(const struct cli_response *resp)
{
	size_t i, n = 0;
	char *s, *p;

	if (resp->errors.n == 0)
		return sg_xasprintf("HTTP %ld", resp->status);
	for (i = 0; i < resp->errors.n; i++)
		n += strlen(resp->errors.v[i]) + 2;
	s = p = sg_xmalloc(n + 1);
	for (i = 0; i < resp->errors.n; i++) {
		size_t l = strlen(resp->errors.v[i]);
		if (i > 0) {
			memcpy(p, "; ", 2);
			p += 2;
		}
		memcpy(p, resp->errors.v[i], l);
		p += l;
	}
	*p = '\0';
	return s;
}

int cli_client_call(struct cli_client *c, const char *method, const char *path, const json_t *body,
                    struct cli_response *resp, struct sg_err *err)
{
	enum sg_code code;
	char *msg;

	if (cli_client_request(c, method, path, body, resp, err) != 0)
		return -1;
	if (resp->status >= 200 && resp->status < 300)
		return 0;
	code = resp->status == 403   ? SG_PERMISSION_DENIED
	       : resp->status == 404 ? SG_NOT_FOUND
	       : resp->status >= 500 ? SG_UNAVAILABLE
	                             : SG_BAD_REQUEST;
	msg = cli_response_errmsg(resp);
	sg_err_set(err, code, "%ld: %s", resp->status, msg);
	free(msg);
	return -1;
}

json_t *cli_response_data(const struct cli_response *resp)
{
	json_t *d = json_is_object(resp->json) ? json_object_get(resp->json, "data") : NULL;

	return json_is_object(d) ? d : NULL;
}

json_t *cli_response_auth(const struct cli_response *resp)
{
	json_t *a = json_is_object(resp->json) ? json_object_get(resp->json, "auth") : NULL;

	return json_is_object(a) ? a : NULL;
}

int cli_client_login(struct cli_client *c, const char *mount, const json_t *body, struct cli_response *resp,
                     struct sg_err *err)
{
	char *path = NULL;
	json_t *auth, *empty = json_object();
	const char *tok;
	int ret = -1;

	if (strcmp(mount, "token") == 0) {
		/* Nothing to exchange: prove the token works and keep it. */
		if (c->token == NULL) {
			sg_err_set(err, SG_MISSING_TOKEN, "no token given");
			goto out;
		}
		ret = cli_client_call(c, "GET", "auth/token/lookup-self", NULL, resp, err);
		goto out;
	}
	path = sg_xasprintf("auth/%s/login", mount);
	/* A login must not carry an old token: the server would tie it to that identity. */
	str_wipe_free(&c->token);
	if (cli_client_call(c, "POST", path, body != NULL ? body : empty, resp, err) != 0)
		goto out;
	auth = cli_response_auth(resp);
	tok = auth != NULL ? json_string_value(json_object_get(auth, "client_token")) : NULL;
	if (tok == NULL || *tok == '\0') {
		sg_err_set(err, SG_INTERNAL, "login answer carries no auth.client_token");
		goto out;
	}
	cli_client_set_token(c, tok);
	ret = 0;
out:
	json_decref(empty);
	free(path);
	return ret;
}
