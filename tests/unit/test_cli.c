/* cli/: argument parsing, K=V bodies, relative times, the token file, and the
 * API client against a one-shot local HTTP responder (request line, headers,
 * Vault error envelope, transport failures). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "tests/unit/t.h"

static const struct cli_cmd *find(const char *a, const char *b)
{
	char *argv[2] = {(char *)a, (char *)b};
	int used = 0;

	return cli_cmd_find(b ? 2 : 1, argv, &used);
}

static int parse(const struct cli_cmd *cmd, struct cli_args *a, struct sg_err *err, int argc, ...)
{
	char *argv[16];
	va_list ap;

	va_start(ap, argc);
	for (int i = 0; i < argc; i++)
		argv[i] = va_arg(ap, char *);
	va_end(ap);
	sg_err_init(err);
	return cli_args_parse(cmd, argc, argv, a, err);
}

static void test_cmd_find(void)
{
	char *w1[] = {"role", "list"}, *w2[] = {"issue", "web"}, *w3[] = {"role", "frob"};
	int used = 0;

	T_OK(cli_cmd_find(2, w1, &used) != NULL && used == 2);
	T_STREQ(cli_cmd_find(2, w1, &used)->name, "role list");
	T_OK(cli_cmd_find(2, w2, &used) != NULL && used == 1);
	T_STREQ(cli_cmd_find(2, w2, &used)->name, "issue");
	T_OK(cli_cmd_find(2, w3, &used) == NULL);
	T_OK(find("nope", NULL) == NULL);
	/* Every command has a summary and an example (help, man and completion need them). */
	for (const struct cli_cmd *c = cli_cmds; c->name != NULL; c++) {
		T_CHECK(c->summary != NULL && c->summary[0] != '\0' && c->example != NULL &&
		            strstr(c->example, "sigil ") != NULL,
		        "%s", c->name);
		T_CHECK(c->synopsis != NULL, "%s", c->name);
	}
}

static void test_args_parse(void)
{
	const struct cli_cmd *issue = find("issue", NULL), *certs = find("certs", NULL), *list = find("list", NULL);
	struct cli_args a;
	struct sg_err err;

	T_OK(parse(issue, &a, &err, 9, "web", "--cn", "a.example.com", "-san=b.example.com", "--san", "c.example.com",
	           "-format=json", "--ttl=15m", "--mount=pki2") == 0);
	T_STREQ(a.pos.v[0], "web");
	T_STREQ(cli_flag(&a, "cn"), "a.example.com");
	T_OK(cli_flag_all(&a, "san")->n == 2);
	T_STREQ(cli_flag_all(&a, "san")->v[1], "c.example.com");
	T_STREQ(cli_flag(&a, "ttl"), "15m");
	T_STREQ(a.format, "json");
	T_STREQ(a.mount, "pki2");
	T_OK(cli_flag(&a, "out") == NULL && !cli_flag_set(&a, "out"));
	cli_args_clear(&a);

	T_OK(parse(issue, &a, &err, 2, "web", "--bogus") == -1);
	T_OK(strstr(err.detail, "unknown flag -bogus") != NULL);
	cli_args_clear(&a);
	T_OK(parse(issue, &a, &err, 2, "web", "--cn") == -1);
	T_OK(strstr(err.detail, "needs a value") != NULL);
	cli_args_clear(&a);
	T_OK(parse(issue, &a, &err, 0) == -1);
	T_OK(strstr(err.detail, "needs ROLE") != NULL);
	cli_args_clear(&a);
	T_OK(parse(issue, &a, &err, 2, "web", "extra") == -1);
	T_OK(strstr(err.detail, "unexpected \"extra\"") != NULL);
	cli_args_clear(&a);
	T_OK(parse(issue, &a, &err, 1, "-format=yaml") == -1);
	T_OK(strstr(err.detail, "table or json") != NULL);
	cli_args_clear(&a);
	/* -help short-circuits the positional count. */
	T_OK(parse(issue, &a, &err, 1, "-h") == 0 && a.help);
	cli_args_clear(&a);
	/* Boolean flags: bare, =true, =false; anything else refused. */
	T_OK(parse(certs, &a, &err, 1, "--revoked") == 0 && cli_flag_set(&a, "revoked"));
	cli_args_clear(&a);
	T_OK(parse(certs, &a, &err, 1, "--revoked=false") == 0 && !cli_flag_set(&a, "revoked"));
	cli_args_clear(&a);
	T_OK(parse(certs, &a, &err, 1, "--revoked=maybe") == -1);
	cli_args_clear(&a);
	/* "--" ends flags; a lone "-" is a positional (stdin). */
	T_OK(parse(list, &a, &err, 2, "--", "-weird") == 0);
	T_STREQ(a.pos.v[0], "-weird");
	cli_args_clear(&a);
}

static void test_kv_parse(void)
{
	struct sg_strlist l = {0};
	struct sg_err err;
	json_t *o = NULL;
	char path[] = "/tmp/sigil-test-cli-XXXXXX";
	int fd = mkstemp(path);

	T_OK(fd >= 0);
	T_OK(write(fd, "file-value\n", 11) == 11);
	close(fd);
	sg_strlist_add(&l, "PATH");
	sg_strlist_add(&l, "a=1");
	sg_strlist_add(&l, "b=x=y");
	sg_strlist_add(&l, "a=2");
	{
		char *w = sg_xasprintf("f=@%s", path);
		sg_strlist_add(&l, w);
		free(w);
	}
	sg_err_init(&err);
	T_OK(cli_kv_parse(&l, 1, &o, &err) == 0);
	T_OK(json_is_array(json_object_get(o, "a")) && json_array_size(json_object_get(o, "a")) == 2);
	T_STREQ(json_string_value(json_object_get(o, "b")), "x=y");
	T_STREQ(json_string_value(json_object_get(o, "f")), "file-value\n");
	json_decref(o);
	o = NULL;
	sg_strlist_add(&l, "novalue");
	T_OK(cli_kv_parse(&l, 1, &o, &err) == -1 && o == NULL);
	T_OK(strstr(err.detail, "expected K=V") != NULL);
	sg_strlist_clear(&l);
	sg_strlist_add(&l, "f=@/nonexistent/sigil");
	sg_err_init(&err);
	T_OK(cli_kv_parse(&l, 0, &o, &err) == -1);
	sg_strlist_clear(&l);
	sg_strlist_add(&l, "=v");
	sg_err_init(&err);
	T_OK(cli_kv_parse(&l, 0, &o, &err) == -1);
	sg_strlist_clear(&l);
	free(l.v);
	unlink(path);
}

static void test_reltime(void)
{
	char b[64];

	cli_reltime(0, b, sizeof(b));
	T_STREQ(b, "now");
	cli_reltime(45, b, sizeof(b));
	T_STREQ(b, "in 45s");
	cli_reltime(15 * 60, b, sizeof(b));
	T_STREQ(b, "in 15m");
	cli_reltime(-(3 * 3600 + 5 * 60), b, sizeof(b));
	T_STREQ(b, "3h05m ago");
	cli_reltime(2 * 86400 + 7 * 3600 + 59, b, sizeof(b));
	T_STREQ(b, "in 2d7h");
}

static void test_token_file(void)
{
	char home[] = "/tmp/sigil-test-home-XXXXXX";
	char *old = getenv("HOME") ? sg_xstrdup(getenv("HOME")) : NULL, *p, *t;
	struct sg_err err;
	struct stat st;

	T_OK(mkdtemp(home) != NULL);
	setenv("HOME", home, 1);
	T_OK(cli_token_load() == NULL);
	sg_err_init(&err);
	T_OK(cli_token_store("s.abc123", &err) == 0);
	p = cli_token_path();
	T_OK(p != NULL && stat(p, &st) == 0 && (st.st_mode & 0777) == 0600);
	t = cli_token_load();
	T_STREQ(t, "s.abc123");
	free(t);
	T_OK(cli_token_erase(&err) == 0);
	T_OK(access(p, F_OK) != 0);
	T_OK(cli_token_erase(&err) == 0); /* absent is fine */
	free(p);
	rmdir(home);
	if (old != NULL) {
		setenv("HOME", old, 1);
		free(old);
	}
}

static void test_client_env(void)
{
	struct cli_client *c;

	unsetenv("SIGIL_ADDR");
	unsetenv("SIGIL_TOKEN");
	setenv("VAULT_ADDR", "http://vault:8200/", 1);
	setenv("VAULT_TOKEN", "vt", 1);
	setenv("SIGIL_CACERT", "/ca.pem", 1);
	setenv("VAULT_CACERT", "/other.pem", 1);
	c = cli_client_new();
	T_STREQ(c->addr, CLI_DEFAULT_ADDR);
	cli_client_from_env(c);
	T_STREQ(c->addr, "http://vault:8200"); /* trailing slash dropped */
	T_STREQ(c->token, "vt");
	T_STREQ(c->cacert, "/ca.pem"); /* SIGIL_ wins */
	setenv("SIGIL_ADDR", "http://sigil:1", 1);
	setenv("SIGIL_TOKEN", "", 1); /* empty counts as unset */
	cli_client_from_env(c);
	T_STREQ(c->addr, "http://sigil:1");
	T_STREQ(c->token, "vt");
	cli_client_set_token(c, NULL);
	T_OK(c->token == NULL);
	cli_client_free(c);
	cli_client_free(NULL);
	unsetenv("VAULT_ADDR");
	unsetenv("VAULT_TOKEN");
	unsetenv("SIGIL_CACERT");
	unsetenv("VAULT_CACERT");
	unsetenv("SIGIL_ADDR");
	unsetenv("SIGIL_TOKEN");
}

/* A one-shot HTTP responder: records the request head and body, answers canned bytes. */
struct responder {
	int lfd;
	int port;
	char answer[1024];
	char request[8192];
};

static void *respond(void *arg)
{
	struct responder *r = arg;
	int fd = accept(r->lfd, NULL, NULL);
	size_t len = 0;

	if (fd < 0)
		return NULL;
	for (;;) {
		ssize_t n = read(fd, r->request + len, sizeof(r->request) - 1 - len);
		char *hdr_end;
		if (n <= 0)
			break;
		len += (size_t)n;
		r->request[len] = '\0';
		hdr_end = strstr(r->request, "\r\n\r\n");
		if (hdr_end != NULL) {
			const char *cl = strstr(r->request, "Content-Length: ");
			size_t want = cl != NULL ? strtoul(cl + 16, NULL, 10) : 0;
			if (len - (size_t)(hdr_end + 4 - r->request) >= want)
				break;
		}
		if (len >= sizeof(r->request) - 1)
			break;
	}
	if (write(fd, r->answer, strlen(r->answer)) < 0) {
		/* the client's side of the test fails then */
	}
	close(fd);
	return NULL;
}

/* status: "200 OK"; ctype NULL for none. */
static int responder_start(struct responder *r, pthread_t *th, const char *status, const char *ctype,
                           const char *body)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);

	memset(r, 0, sizeof(*r));
	snprintf(r->answer, sizeof(r->answer), "HTTP/1.1 %s\r\n%s%s%sContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
	         status, ctype ? "Content-Type: " : "", ctype ? ctype : "", ctype ? "\r\n" : "", strlen(body), body);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	r->lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (r->lfd < 0 || bind(r->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(r->lfd, 1) != 0 ||
	    getsockname(r->lfd, (struct sockaddr *)&sa, &sl) != 0)
		return -1;
	r->port = ntohs(sa.sin_port);
	return pthread_create(th, NULL, respond, r);
}

static void test_client_requests(void)
{
	struct responder r;
	pthread_t th;
	struct cli_client *c = cli_client_new();
	struct cli_response resp = {0};
	struct sg_err err;
	char addr[64], *msg;
	json_t *body;

	/* LIST goes out as GET ?list=true with the token; JSON data parsed. */
	T_OK(responder_start(&r, &th, "200 OK", "application/json", "{\"data\":{\"keys\":[\"web\",\"api\"]}}") == 0);
	snprintf(addr, sizeof(addr), "http://127.0.0.1:%d", r.port);
	cli_client_set_addr(c, addr);
	cli_client_set_token(c, "tok-1");
	sg_err_init(&err);
	T_OK(cli_client_call(c, "LIST", "/v1/pki/roles", NULL, &resp, &err) == 0);
	pthread_join(th, NULL);
	close(r.lfd);
	T_OK(strncmp(r.request, "GET /v1/pki/roles?list=true HTTP/1.1\r\n", 38) == 0);
	T_OK(strstr(r.request, "X-Vault-Token: tok-1\r\n") != NULL);
	T_OK(resp.status == 200);
	T_OK(json_array_size(json_object_get(cli_response_data(&resp), "keys")) == 2);
	T_STREQ(resp.content_type, "application/json");

	/* POST with a JSON body; a Vault error envelope becomes the error text. */
	T_OK(responder_start(&r, &th, "400 Bad Request", "application/json",
	                     "{\"errors\":[\"common name not allowed\",\"second\"]}") == 0);
	snprintf(addr, sizeof(addr), "http://127.0.0.1:%d/", r.port);
	cli_client_set_addr(c, addr);
	body = json_pack("{s:s}", "common_name", "evil.org");
	sg_err_init(&err);
	T_OK(cli_client_call(c, "POST", "pki/issue/web", body, &resp, &err) == -1);
	pthread_join(th, NULL);
	close(r.lfd);
	json_decref(body);
	T_OK(strncmp(r.request, "POST /v1/pki/issue/web HTTP/1.1\r\n", 33) == 0);
	T_OK(strstr(r.request, "{\"common_name\":\"evil.org\"}") != NULL);
	T_OK(strstr(r.request, "Content-Type: application/json") != NULL);
	T_OK(err.code == SG_BAD_REQUEST);
	T_STREQ(err.detail, "400: common name not allowed; second");
	msg = cli_response_errmsg(&resp);
	T_STREQ(msg, "common name not allowed; second");
	free(msg);

	/* 403 maps to PERMISSION_DENIED; a non-JSON body stays raw. */
	T_OK(responder_start(&r, &th, "403 Forbidden", NULL, "nope") == 0);
	snprintf(addr, sizeof(addr), "http://127.0.0.1:%d", r.port);
	cli_client_set_addr(c, addr);
	sg_err_init(&err);
	T_OK(cli_client_call(c, "DELETE", "pki/roles/web", NULL, &resp, &err) == -1);
	pthread_join(th, NULL);
	close(r.lfd);
	T_OK(strncmp(r.request, "DELETE /v1/pki/roles/web HTTP/1.1\r\n", 35) == 0);
	T_OK(err.code == SG_PERMISSION_DENIED);
	T_OK(resp.json == NULL && resp.raw_len == 4);
	T_STREQ(resp.raw, "nope");
	T_STREQ(err.detail, "403: HTTP 403");

	/* Login stores auth.client_token and sends no old token. */
	T_OK(responder_start(&r, &th, "200 OK", "application/json",
	                     "{\"auth\":{\"client_token\":\"s.new\",\"lease_duration\":60}}") == 0);
	snprintf(addr, sizeof(addr), "http://127.0.0.1:%d", r.port);
	cli_client_set_addr(c, addr);
	body = json_pack("{s:s, s:s}", "role_id", "r", "secret_id", "s");
	sg_err_init(&err);
	T_OK(cli_client_login(c, "approle", body, &resp, &err) == 0);
	pthread_join(th, NULL);
	close(r.lfd);
	json_decref(body);
	T_OK(strncmp(r.request, "POST /v1/auth/approle/login HTTP/1.1\r\n", 38) == 0);
	T_OK(strstr(r.request, "X-Vault-Token") == NULL);
	T_STREQ(c->token, "s.new");
	T_OK(json_integer_value(json_object_get(cli_response_auth(&resp), "lease_duration")) == 60);

	/* Nothing listening: a transport error naming the address. */
	{
		struct sockaddr_in sa;
		socklen_t sl = sizeof(sa);
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		memset(&sa, 0, sizeof(sa));
		sa.sin_family = AF_INET;
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		T_OK(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
		     getsockname(fd, (struct sockaddr *)&sa, &sl) == 0);
		close(fd); /* bound, never listening, closed: connections are refused */
		snprintf(addr, sizeof(addr), "http://127.0.0.1:%d", ntohs(sa.sin_port));
	}
	cli_client_set_addr(c, addr);
	sg_err_init(&err);
	T_OK(cli_client_request(c, "GET", "sys/health", NULL, &resp, &err) == -1);
	T_OK(err.code == SG_UNAVAILABLE);
	T_OK(strstr(err.detail, "cannot reach http://127.0.0.1:") != NULL);
	T_OK(resp.status == 0 && resp.raw == NULL);

	/* Paths with spaces or control bytes never reach the wire. */
	sg_err_init(&err);
	T_OK(cli_client_request(c, "GET", "pki/roles/a b", NULL, &resp, &err) == -1);
	T_OK(err.code == SG_BAD_REQUEST);

	cli_response_clear(&resp);
	cli_response_clear(&resp);
	cli_response_clear(NULL);
	cli_client_free(c);
}

static void test_man_and_completion(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	cli_man_write(f);
	fclose(f);
	T_OK(strncmp(buf, ".TH SIGIL 1", 11) == 0);
	T_OK(strstr(buf, ".SS \"issuer generate\\-root [K=V ...]\"\n") != NULL);
	T_OK(strstr(buf, "sigil issue web \\-\\-cn") != NULL);
	free(buf);
	buf = NULL;
	f = open_memstream(&buf, &len);
	cli_completion_bash(f);
	fclose(f);
	T_OK(strstr(buf, "complete -o default -F _sigil sigil") != NULL);
	T_OK(strstr(buf, "issue) words=\"--cn --san --ip --uri --ttl") != NULL);
	T_OK(strstr(buf, "words=\"list read write delete\"") != NULL);
	free(buf);
}

int main(void)
{
	test_cmd_find();
	test_args_parse();
	test_kv_parse();
	test_reltime();
	test_token_file();
	test_client_env();
	test_client_requests();
	test_man_and_completion();
	return t_done();
}
