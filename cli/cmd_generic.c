/* Generic Vault-style commands: login, logout, read, write, list, delete, status. */
#include "cli/cli.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define OIDC_DEFAULT_PORT 8250
#define OIDC_WAIT_MS (5 * 60 * 1000)  /* how long the callback listener waits for the browser */
#define OIDC_MAX_REQUEST 8192         /* cap on the browser's callback request */
#define K8S_TOKEN_FILE "/var/run/secrets/kubernetes.io/serviceaccount/token"

extern char **environ;

/* Takes key out of obj as a new string (NULL when absent or not a string). */
static char *take_str(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	char *s = json_is_string(v) ? sg_xstrdup(json_string_value(v)) : NULL;

	json_object_del(obj, key);
	return s;
}

/* Opens a URL in the browser when one can be started; the URL is printed either way. */
static void open_browser(const char *url)
{
	char *argv[] = {(char *)"xdg-open", (char *)url, NULL};
	pid_t pid;

	if (posix_spawnp(&pid, "xdg-open", NULL, NULL, argv, environ) == 0)
		(void)pid; /* not waited for: the browser outlives us */
}

/* Accepts one browser request on fd and copies its request-target's query into *query. */
static int oidc_wait_callback(int lfd, char **query, struct sg_err *err)
{
	struct pollfd p = {lfd, POLLIN, 0};
	char buf[OIDC_MAX_REQUEST + 1];
	size_t len = 0;
	int cfd = -1, ret = -1;
	const char *ok = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n"
	                 "<html><body>Signed in to Sigil. You can close this window.</body></html>\n";
	char *sp, *q, *end;

	for (;;) {
		int n = poll(&p, 1, OIDC_WAIT_MS);
		if (n == 0)
			return sg_err_set(err, SG_UNAVAILABLE, "no OIDC callback within %d seconds", OIDC_WAIT_MS / 1000);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return sg_err_set(err, SG_INTERNAL, "poll: %s", strerror(errno));
		break;
	}
	if ((cfd = accept(lfd, NULL, NULL)) < 0)
		return sg_err_set(err, SG_INTERNAL, "accept: %s", strerror(errno));
	while (len < OIDC_MAX_REQUEST) {
		ssize_t r;
		struct pollfd cp = {cfd, POLLIN, 0};
		if (poll(&cp, 1, 10000) <= 0)
			break;
		r = read(cfd, buf + len, OIDC_MAX_REQUEST - len);
		if (r <= 0)
			break;
		len += (size_t)r;
		buf[len] = '\0';
		if (strstr(buf, "\r\n") != NULL)
			break;
	}
	buf[len] = '\0';
	/* Request line: GET /oidc/callback?code=...&state=... HTTP/1.1 */
	if (strncmp(buf, "GET ", 4) != 0 || (sp = strchr(buf + 4, ' ')) == NULL) {
		sg_err_set(err, SG_BAD_REQUEST, "malformed OIDC callback request");
		goto out;
	}
	*sp = '\0';
	if ((q = strchr(buf + 4, '?')) == NULL) {
		sg_err_set(err, SG_BAD_REQUEST, "OIDC callback without a query");
		goto out;
	}
	for (end = q + 1; *end; end++) {
		if ((unsigned char)*end <= 0x20 || *end == 0x7f) {
			sg_err_set(err, SG_BAD_REQUEST, "OIDC callback query has control characters");
			goto out;
		}
	}
	*query = sg_xstrdup(q + 1);
	if (write(cfd, ok, strlen(ok)) < 0) {
		/* The browser page is a courtesy; the login goes on. */
	}
	ret = 0;
out:
	close(cfd);
	return ret;
}

static int login_oidc(struct cli_ctx *ctx, const char *mount, json_t *body, struct cli_response *resp,
                      struct sg_err *err)
{
	char *port_s = take_str(body, "port"), *skip = take_str(body, "skip_browser");
	char *listen_s = take_str(body, "listenaddress");
	char nonce[33], *path = NULL, *redirect = NULL, *query = NULL;
	struct sockaddr_in sa;
	socklen_t salen = sizeof(sa);
	long port = OIDC_DEFAULT_PORT;
	const char *url;
	json_t *d;
	int lfd = -1, one = 1, ret = -1;

	if (port_s != NULL) {
		char *e;
		port = strtol(port_s, &e, 10);
		if (*e != '\0' || port < 0 || port > 65535) {
			ctx->usage = true;
			sg_err_set(err, SG_BAD_REQUEST, "port must be 0-65535");
			goto out;
		}
	}
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, listen_s != NULL ? listen_s : "127.0.0.1", &sa.sin_addr) != 1) {
		ctx->usage = true;
		sg_err_set(err, SG_BAD_REQUEST, "listenaddress must be an IPv4 address");
		goto out;
	}
	if ((lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 4) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &salen) != 0) {
		sg_err_set(err, SG_UNAVAILABLE, "cannot listen for the OIDC callback on port %ld: %s", port,
		           strerror(errno));
		goto out;
	}
	redirect = sg_xasprintf("http://localhost:%u/oidc/callback", (unsigned)ntohs(sa.sin_port));
	sg_random_b62(nonce, sizeof(nonce) - 1);
	nonce[sizeof(nonce) - 1] = '\0';
	json_object_set_new(body, "redirect_uri", json_string(redirect));
	json_object_set_new(body, "client_nonce", json_string(nonce));
	path = sg_xasprintf("auth/%s/oidc/auth_url", mount);
	if (cli_client_call(ctx->client, "POST", path, body, resp, err) != 0)
		goto out;
	d = cli_response_data(resp);
	url = d != NULL ? json_string_value(json_object_get(d, "auth_url")) : NULL;
	if (url == NULL || *url == '\0') {
		sg_err_set(err, SG_BAD_REQUEST, "the server returned no auth_url (is %s an allowed redirect URI of the role?)",
		           redirect);
		goto out;
	}
	fprintf(stderr, "Complete the login via your OIDC provider. Open this URL in a browser:\n\n    %s\n\n"
	                "Waiting for the callback on %s ...\n",
	        url, redirect);
	fflush(stderr);
	if (skip == NULL || strcmp(skip, "true") != 0)
		open_browser(url);
	if (oidc_wait_callback(lfd, &query, err) != 0)
		goto out;
	free(path);
	path = sg_xasprintf("auth/%s/oidc/callback?%s&client_nonce=%s", mount, query, nonce);
	cli_client_set_token(ctx->client, NULL);
	if (cli_client_call(ctx->client, "GET", path, NULL, resp, err) != 0)
		goto out;
	d = cli_response_auth(resp);
	url = d != NULL ? json_string_value(json_object_get(d, "client_token")) : NULL;
	if (url == NULL) {
		sg_err_set(err, SG_INTERNAL, "OIDC callback answer carries no auth.client_token");
		goto out;
	}
	cli_client_set_token(ctx->client, url);
	ret = 0;
out:
	if (lfd >= 0)
		close(lfd);
	free(port_s);
	free(skip);
	free(listen_s);
	free(path);
	free(redirect);
	free(query);
	return ret;
}

int cli_cmd_login(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err)
{
	const char *method = cli_flag(a, "method"), *mount = cli_flag(a, "path");
	struct cli_response resp = {0};
	json_t *body = NULL, *auth;
	size_t from = 0;
	char *cert = NULL, *key = NULL, *jwt = NULL;
	int ret = -1;

	if (method == NULL)
		method = "token";
	if (strcmp(method, "token") != 0 && strcmp(method, "approle") != 0 && strcmp(method, "oidc") != 0 &&
	    strcmp(method, "cert") != 0 && strcmp(method, "kubernetes") != 0) {
		ctx->usage = true;
		return sg_err_set(err, SG_BAD_REQUEST, "unknown -method \"%s\" (token, approle, oidc, cert, kubernetes)",
		                  method);
	}
	if (mount == NULL)
		mount = method;
	if (strcmp(method, "token") == 0 && a->pos.n > 0 && strchr(a->pos.v[0], '=') == NULL)
		from = 1;
	if (cli_kv_parse(&a->pos, from, &body, err) != 0) {
		ctx->usage = true;
		goto out;
	}
	if (strcmp(method, "token") == 0) {
		char *t = from == 1 ? sg_xstrdup(a->pos.v[0]) : take_str(body, "token");
		if (t != NULL) {
			cli_client_set_token(ctx->client, t);
			OPENSSL_cleanse(t, strlen(t));
			free(t);
		}
		if (ctx->client->token == NULL) {
			ctx->usage = true;
			sg_err_set(err, SG_BAD_REQUEST, "no token: sigil login TOKEN");
			goto out;
		}
		if (cli_client_login(ctx->client, "token", NULL, &resp, err) != 0)
			goto out;
	} else if (strcmp(method, "oidc") == 0) {
		if (login_oidc(ctx, mount, body, &resp, err) != 0)
			goto out;
	} else {
		if (strcmp(method, "cert") == 0) {
			cert = take_str(body, "client_cert");
			key = take_str(body, "client_key");
			if (cert != NULL)
				cli_client_set_client_cert(ctx->client, cert, key);
			if (ctx->client->client_cert == NULL) {
				ctx->usage = true;
				sg_err_set(err, SG_BAD_REQUEST,
				           "cert login needs client_cert=FILE [client_key=FILE] (or SIGIL_CLIENT_CERT)");
				goto out;
			}
		}
		if (strcmp(method, "kubernetes") == 0 && json_object_get(body, "jwt") == NULL) {
			/* The pod's own service-account token, as the agent uses it. */
			if ((jwt = cli_file_read(K8S_TOKEN_FILE, err)) == NULL)
				goto out;
			json_object_set_new(body, "jwt", json_string(jwt));
		}
		if (cli_client_login(ctx->client, mount, body, &resp, err) != 0)
			goto out;
	}
	if (!cli_flag_set(a, "no-store") && cli_token_store(ctx->client->token, err) != 0)
		goto out;
	if (ctx->json) {
		cli_print_response(ctx, &resp);
	} else {
		auth = cli_response_auth(&resp);
		if (auth == NULL)
			auth = cli_response_data(&resp);
		fprintf(ctx->out, "Success! You are now authenticated.%s\n\n",
		        cli_flag_set(a, "no-store") ? "" : " The token is stored in ~/" CLI_TOKEN_FILE ".");
		if (auth != NULL)
			cli_print_kv_table(ctx->out, auth);
	}
	ret = 0;
out:
	json_decref(body);
	free(cert);
	free(key);
	if (jwt != NULL) {
		OPENSSL_cleanse(jwt, strlen(jwt));
		free(jwt);
	}
	cli_response_clear(&resp);
	return ret;
}

int cli_cmd_logout(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err)
{
	(void)a;
	if (cli_token_erase(err) != 0)
		return -1;
	fprintf(ctx->out, "The stored token is removed.\n");
	return 0;
}

/* k=v words after the path as a query string (values must be URL-safe already). */
static char *path_with_query(const struct cli_args *a, struct sg_err *err)
{
	size_t n = strlen(a->pos.v[0]) + 1;
	char *s, *p;

	for (size_t i = 1; i < a->pos.n; i++) {
		if (strchr(a->pos.v[i], '=') == NULL) {
			sg_err_set(err, SG_BAD_REQUEST, "expected K=V, got \"%s\"", a->pos.v[i]);
			return NULL;
		}
		n += strlen(a->pos.v[i]) + 1;
	}
	s = p = sg_xmalloc(n + 1);
	p += snprintf(p, n + 1, "%s", a->pos.v[0]);
	for (size_t i = 1; i < a->pos.n; i++)
		p += snprintf(p, n + 1 - (size_t)(p - s), "%c%s", i == 1 ? '?' : '&', a->pos.v[i]);
	return s;
}

static int simple(struct cli_ctx *ctx, const char *method, const char *path, const json_t *body, struct sg_err *err)
{
	struct cli_response resp = {0};
	int ret = -1;

	if (cli_client_call(ctx->client, method, path, body, &resp, err) != 0)
		goto out;
	if (resp.status == 204 && !ctx->json)
		fprintf(ctx->out, "Success! Data written to: %s\n", path);
	else
		cli_print_response(ctx, &resp);
	ret = 0;
out:
	cli_response_clear(&resp);
	return ret;
}

int cli_cmd_read(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err)
{
	char *path = path_with_query(a, err);
	int ret;

	if (path == NULL) {
		ctx->usage = true;
		return -1;
	}
	ret = simple(ctx, "GET", path, NULL, err);
	free(path);
	return ret;
}

int cli_cmd_write(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err)
{
	json_t *body = NULL;
	int ret = -1;

	if (cli_kv_parse(&a->pos, 1, &body, err) != 0) {
		ctx->usage = true;
		goto out;
	}
	if (json_object_size(body) == 0 && !cli_flag_set(a, "force")) {
		ctx->usage = true;
		sg_err_set(err, SG_BAD_REQUEST, "no K=V fields given (use -force to write an empty body)");
		goto out;
	}
	ret = simple(ctx, "POST", a->pos.v[0], body, err);
out:
	json_decref(body);
	return ret;
}

int cli_cmd_list(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err)
{
	return simple(ctx, "LIST", a->pos.v[0], NULL, err);
}

int cli_cmd_delete(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err)
{
	struct cli_response resp = {0};
	int ret = -1;

	if (cli_client_call(ctx->client, "DELETE", a->pos.v[0], NULL, &resp, err) != 0)
		goto out;
	cli_print_warnings(&resp);
	if (ctx->json && resp.json != NULL)
		cli_print_response(ctx, &resp);
	else
		fprintf(ctx->out, "Success! Data deleted (if it existed) at: %s\n", a->pos.v[0]);
	ret = 0;
out:
	cli_response_clear(&resp);
	return ret;
}

int cli_cmd_status(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err)
{
	struct cli_response resp = {0};
	json_t *j, *t;
	int ret = -1;

	(void)a;
	/* sys/health answers 200/429/472/473/501/503 by state; any JSON answer is a status. */
	if (cli_client_request(ctx->client, "GET", "sys/health", NULL, &resp, err) != 0)
		goto out;
	j = resp.json;
	if (!json_is_object(j)) {
		sg_err_set(err, SG_UNAVAILABLE, "%s/v1/sys/health answered HTTP %ld without JSON", ctx->client->addr,
		           resp.status);
		goto out;
	}
	if (ctx->json) {
		cli_print_response(ctx, &resp);
	} else {
		json_t *tbl = json_object();
		json_object_set_new(tbl, "Address", json_string(ctx->client->addr));
		if ((t = json_object_get(j, "initialized")) != NULL)
			json_object_set(tbl, "Initialized", t);
		if ((t = json_object_get(j, "sealed")) != NULL)
			json_object_set(tbl, "Sealed", t);
		if ((t = json_object_get(j, "standby")) != NULL)
			json_object_set(tbl, "Standby", t);
		if ((t = json_object_get(j, "version")) != NULL)
			json_object_set(tbl, "Version", t);
		if ((t = json_object_get(j, "cluster_name")) != NULL)
			json_object_set(tbl, "Cluster Name", t);
		if ((t = json_object_get(j, "server_time_utc")) != NULL)
			json_object_set(tbl, "Server Time (UTC)", t);
		json_object_set_new(tbl, "HTTP Status", json_integer(resp.status));
		cli_print_kv_table(ctx->out, tbl);
		json_decref(tbl);
	}
	if (resp.status != 200 && resp.status != 429) {
		sg_err_set(err, SG_UNAVAILABLE, "server is not active (sys/health HTTP %ld)", resp.status);
		goto out;
	}
	ret = 0;
out:
	cli_response_clear(&resp);
	return ret;
}
