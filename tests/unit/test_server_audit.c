/* server/audit: devices, HMAC-ing of secrets, the hash chain, verification, restarts, fail closed. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/token.h"
#include "server/audit.h"
#include "server/http.h"
#include "store/store.h"
#include "tests/unit/t.h"

static char tmp_root[64];

static const char key_pem[] = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBfakefakefakefakefakefakefakefakefake\n"
                              "-----END EC PRIVATE KEY-----\n";
static const char cert_pem[] = "-----BEGIN CERTIFICATE-----\nMIIBcertificatebytes\n-----END CERTIFICATE-----\n";
static const char csr_pem[] = "-----BEGIN CERTIFICATE REQUEST-----\nMIIBcsrbytes\n-----END CERTIFICATE REQUEST-----\n";
static const char client_token[] = "hvs.CAESIJsecrettokenvalue0123456789";
static const char jwt[] = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl";

/* ---- helpers ---- */

static char *tpath(const char *name)
{
	return sg_xasprintf("%s/%s", tmp_root, name);
}

static struct store *store_new(const char *name)
{
	char *dir = tpath(name);
	struct store *st = NULL;
	struct sg_err err;

	sg_err_init(&err);
	if (store_open(dir, 0, &st, &err) != 0)
		sg_die("store_open %s: %s", dir, err.detail);
	free(dir);
	return st;
}

static struct audit *broker(struct store *st)
{
	struct audit *a = NULL;
	struct sg_err err;

	sg_err_init(&err);
	if (audit_new(st, &a, &err) != 0)
		sg_die("audit_new: %s", err.detail);
	return a;
}

static void entry_init(struct audit_entry *e, const char *path)
{
	memset(e, 0, sizeof(*e));
	e->request_id = "11111111-2222-3333-4444-555555555555";
	e->operation = "update";
	e->path = path;
	e->remote_addr = "127.0.0.1:40000";
	e->mount_type = "pki";
	e->mount_point = "pki/";
}

/* Enables a file device; extra is a JSON object of more options (or NULL). */
static int enable(struct audit *a, const char *path, const char *file, const char *extra, struct sg_err *err)
{
	json_t *body = json_pack("{s:s, s:{s:s}}", "type", "file", "options", "file_path", file);
	struct audit_entry first;
	int rc;

	if (extra != NULL) {
		json_t *x = json_loads(extra, 0, NULL);

		json_object_update(json_object_get(body, "options"), x);
		json_decref(x);
	}
	entry_init(&first, "sys/audit/test");
	first.mount_type = "system";
	rc = audit_device_enable(a, path, body, &first, err);
	json_decref(body);
	return rc;
}

static void enable_ok(struct audit *a, const char *path, const char *file, const char *extra)
{
	struct sg_err err;

	sg_err_init(&err);
	if (enable(a, path, file, extra, &err) != 0)
		sg_die("enable %s: %s", path, err.detail);
}

static char *slurp(const char *path)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	struct sg_err err;

	sg_err_init(&err);
	if (sg_file_read(path, 64u << 20, &buf, &len, &err) != 0)
		return sg_xstrdup("");
	buf = sg_xrealloc(buf, len + 1);
	buf[len] = '\0';
	return (char *)buf;
}

static size_t count_lines(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += *s == '\n';
	return n;
}

/* Line i (1-based) of a file's text, without its newline, as a JSON object (NULL when absent). */
static json_t *line_json(const char *text, size_t i)
{
	const char *p = text;

	for (size_t k = 1; k < i && p != NULL; k++) {
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	if (p == NULL || *p == '\0')
		return NULL;
	return json_loadb(p, (size_t)(strchr(p, '\n') - p), 0, NULL);
}

struct lines {
	char **v;
	size_t n;
};

static void lines_read(const char *path, struct lines *l)
{
	char *text = slurp(path), *p = text;

	l->v = NULL;
	l->n = 0;
	while (*p != '\0') {
		char *nl = strchr(p, '\n');
		size_t len = nl != NULL ? (size_t)(nl - p) + 1 : strlen(p);

		l->v = sg_xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
		l->v[l->n++] = sg_xstrndup(p, len);
		p += len;
	}
	free(text);
}

static void lines_write(const char *path, const struct lines *l)
{
	FILE *f = fopen(path, "wb");

	if (f == NULL)
		sg_die("cannot write %s", path);
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i] != NULL)
			fputs(l->v[i], f);
	fclose(f);
}

static void lines_free(struct lines *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

static struct audit_verify_result verify(const char *path, uint64_t seq, const char *hash)
{
	struct audit_verify_opts o = {seq, hash, false};
	struct audit_verify_result r;
	struct sg_err err;

	sg_err_init(&err);
	memset(&r, 0, sizeof(r));
	if (audit_verify_file(path, &o, &r, &err) != 0)
		sg_die("verify %s: %s", path, err.detail);
	return r;
}

static void log_pair(struct audit *a, const struct audit_entry *e, const struct resp *rs, int status)
{
	struct audit_entry resp = *e;
	struct sg_err err;

	sg_err_init(&err);
	if (audit_log_request(a, e, true, &err) != 0)
		sg_die("audit_log_request: %s", err.detail);
	resp.rs = rs;
	resp.status = status;
	if (audit_log_response(a, &resp, &err) != 0)
		sg_die("audit_log_response: %s", err.detail);
}

static void token_fill(struct auth_token *t)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->accessor, sizeof(t->accessor), "acc0123456789abcdefghijk");
	t->display_name = sg_xstrdup("approle");
	sg_strlist_add(&t->policies, "default");
	sg_strlist_add(&t->policies, "web-issuer");
	t->meta = json_pack("{s:s}", "role_name", "web");
	t->type = sg_xstrdup("service");
	t->creation_time = 1700000000;
	t->creation_ttl = 3600;
	t->alias = json_pack("{s:s, s:s, s:{s:s}}", "mount_type", "kubernetes", "name", "sa-uid",
	                     "metadata", "service_account_namespace", "prod");
}

static void token_free(struct auth_token *t)
{
	free(t->display_name);
	free(t->type);
	sg_strlist_clear(&t->policies);
	json_decref(t->meta);
	json_decref(t->alias);
}

static char *hash_of(struct audit *a, const char *dev, const char *input)
{
	char out[AUDIT_HMAC_STR_LEN + 1];
	struct sg_err err;

	sg_err_init(&err);
	if (audit_hash(a, dev, input, strlen(input), out, &err) != 0)
		sg_die("audit_hash: %s", err.detail);
	return sg_xstrdup(out);
}

/* ---- tests ---- */

/* The device's HMAC is HMAC-SHA256 keyed with the salt kept in its store record. */
static void test_hmac_matches_salt(void)
{
	struct store *st = store_new("hmac");
	struct audit *a = broker(st);
	char *file = tpath("hmac.log"), *h, *h2;
	unsigned char *rec = NULL, salt[32], md[32];
	size_t reclen = 0, mdlen = 0;
	json_t *j;
	const char *salt_hex;
	char expect[AUDIT_HMAC_STR_LEN + 1];
	struct sg_err err;

	sg_err_init(&err);
	enable_ok(a, "file", file, NULL);
	h = hash_of(a, "file", "input-value");
	T_OK(strncmp(h, "hmac-sha256:", 12) == 0 && strlen(h) == AUDIT_HMAC_STR_LEN);
	h2 = hash_of(a, "file/", "input-value"); /* Vault clients send the path with its slash */
	T_STREQ(h, h2);
	T_OK(store_get(st, STORE_META, "audit/file", 10, &rec, &reclen, &err) == 1);
	j = json_loadb((const char *)rec, reclen, 0, NULL);
	salt_hex = json_string_value(json_object_get(j, "salt"));
	T_OK(salt_hex != NULL && strlen(salt_hex) == 64);
	for (size_t i = 0; salt_hex != NULL && i < 32; i++) {
		unsigned v = 0;

		sscanf(salt_hex + 2 * i, "%2x", &v);
		salt[i] = (unsigned char)v;
	}
	T_OK(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, salt, 32, (const unsigned char *)"input-value", 11, md,
	               sizeof(md), &mdlen) != NULL && mdlen == 32);
	memcpy(expect, "hmac-sha256:", 12);
	for (size_t i = 0; i < 32; i++)
		snprintf(expect + 12 + 2 * i, 3, "%02x", md[i]);
	T_STREQ(h, expect);
	T_OK(audit_hash(a, "nope", "x", 1, expect, &err) == -1 && err.code == SG_BAD_REQUEST);
	json_decref(j);
	free(rec);
	free(h);
	free(h2);
	free(file);
	audit_free(a);
	store_close(st);
}

/* Secrets never reach the file in clear; what an auditor needs does. */
static void test_secrets_hmac(void)
{
	struct store *st = store_new("secrets");
	struct audit *a = broker(st);
	char *file = tpath("secrets.log"), *text, *h_key, *h_tok, *h_csr, *h_acc, *h_jwt, *h_sid;
	struct audit_entry e;
	struct auth_token t;
	struct resp rs;
	json_t *body, *reqdata, *l2, *l3, *auth;

	token_fill(&t);
	enable_ok(a, "file", file, NULL);
	entry_init(&e, "pki/sign/web");
	e.client_token = client_token;
	e.tok = &t;
	body = json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:s}}", "csr", csr_pem, "common_name", "www.example.com",
	                 "secret_id", "sid-1234567890", "assertion", jwt, "extra_key", key_pem, "nested", "token",
	                 "tok-zzzzzzzz");
	e.data = body;
	memset(&rs, 0, sizeof(rs));
	rs.data = json_pack("{s:s, s:s, s:s, s:[s], s:s}", "certificate", cert_pem, "private_key", key_pem,
	                    "serial_number", "3a:0f:11", "ca_chain", cert_pem, "private_key_type", "ec");
	rs.lease_id = sg_xstrdup("pki/issue/web/abcdefghijklmnopqrstuvwx");
	rs.lease_duration = 3600;
	log_pair(a, &e, &rs, 200);

	text = slurp(file);
	T_OK(count_lines(text) == 3); /* enable's own line, request, response */
	T_OK(strstr(text, "MHcCAQEEIBfake") == NULL);
	T_OK(strstr(text, "secrettokenvalue") == NULL);
	T_OK(strstr(text, "csrbytes") == NULL);
	T_OK(strstr(text, "sid-1234567890") == NULL);
	T_OK(strstr(text, "c2lnbmF0dXJl") == NULL);
	T_OK(strstr(text, "tok-zzzzzzzz") == NULL);
	T_OK(strstr(text, t.accessor) == NULL);
	T_OK(strstr(text, "MIIBcertificatebytes") != NULL);
	T_OK(strstr(text, "3a:0f:11") != NULL);
	T_OK(strstr(text, "pki/issue/web/abcdefghijklmnopqrstuvwx") != NULL);
	T_OK(strstr(text, "www.example.com") != NULL);

	h_key = hash_of(a, "file", key_pem);
	h_tok = hash_of(a, "file", client_token);
	h_csr = hash_of(a, "file", csr_pem);
	h_acc = hash_of(a, "file", t.accessor);
	h_jwt = hash_of(a, "file", jwt);
	h_sid = hash_of(a, "file", "sid-1234567890");
	l2 = line_json(text, 2);
	l3 = line_json(text, 3);
	T_STREQ(json_string_value(json_object_get(l2, "type")), "request");
	T_STREQ(json_string_value(json_object_get(l3, "type")), "response");
	auth = json_object_get(l2, "auth");
	T_STREQ(json_string_value(json_object_get(auth, "client_token")), h_tok);
	T_STREQ(json_string_value(json_object_get(auth, "accessor")), h_acc);
	T_STREQ(json_string_value(json_object_get(auth, "display_name")), "approle");
	T_STREQ(json_string_value(json_array_get(json_object_get(auth, "policies"), 1)), "web-issuer");
	T_STREQ(json_string_value(json_object_get(json_object_get(auth, "metadata"), "role_name")), "web");
	T_STREQ(json_string_value(json_object_get(json_object_get(json_object_get(auth, "identity"), "metadata"),
	                                          "service_account_namespace")),
	        "prod");
	T_STREQ(json_string_value(json_object_get(json_object_get(l2, "request"), "client_token")), h_tok);
	T_STREQ(json_string_value(json_object_get(json_object_get(l2, "request"), "client_token_accessor")), h_acc);
	T_STREQ(json_string_value(json_object_get(json_object_get(l2, "request"), "remote_address")), "127.0.0.1");
	T_OK(json_integer_value(json_object_get(json_object_get(l2, "request"), "remote_port")) == 40000);
	T_STREQ(json_string_value(json_object_get(json_object_get(l2, "request"), "operation")), "update");
	T_STREQ(json_string_value(json_object_get(json_object_get(l2, "request"), "path")), "pki/sign/web");
	reqdata = json_object_get(json_object_get(l2, "request"), "data");
	T_STREQ(json_string_value(json_object_get(reqdata, "csr")), h_csr);
	T_STREQ(json_string_value(json_object_get(reqdata, "assertion")), h_jwt);  /* a JWT under any name */
	T_STREQ(json_string_value(json_object_get(reqdata, "extra_key")), h_key); /* a private key under any name */
	T_STREQ(json_string_value(json_object_get(reqdata, "secret_id")), h_sid);
	T_STREQ(json_string_value(json_object_get(reqdata, "common_name")), "www.example.com");
	{
		json_t *resp = json_object_get(l3, "response"), *d = json_object_get(resp, "data");

		T_OK(json_integer_value(json_object_get(resp, "status")) == 200);
		T_STREQ(json_string_value(json_object_get(d, "private_key")), h_key);
		T_STREQ(json_string_value(json_object_get(d, "certificate")), cert_pem);
		T_STREQ(json_string_value(json_object_get(d, "serial_number")), "3a:0f:11");
		T_STREQ(json_string_value(json_object_get(json_object_get(resp, "secret"), "lease_id")),
		        "pki/issue/web/abcdefghijklmnopqrstuvwx");
		T_STREQ(json_string_value(json_object_get(l3, "error")), "");
	}
	json_decref(l2);
	json_decref(l3);
	json_decref(body);
	resp_clear(&rs);
	free(text);
	free(h_key);
	free(h_tok);
	free(h_csr);
	free(h_acc);
	free(h_jwt);
	free(h_sid);
	free(file);
	token_free(&t);
	audit_free(a);
	store_close(st);
}

/* Logins and token lookups: the new token and the token id in data are HMAC-ed; hmac_accessor and log_raw. */
static void test_login_and_options(void)
{
	struct store *st = store_new("login");
	struct audit *a = broker(st);
	char *f1 = tpath("login-hmac.log"), *f2 = tpath("login-clear.log"), *f3 = tpath("login-raw.log");
	char *t1, *t2, *t3;
	struct audit_entry e;
	struct auth_token t;
	struct resp rs;
	json_t *l;

	token_fill(&t);
	enable_ok(a, "hm", f1, NULL);
	enable_ok(a, "clear", f2, "{\"hmac_accessor\":\"false\"}");
	enable_ok(a, "raw", f3, "{\"log_raw\":true}");
	entry_init(&e, "auth/token/lookup-self");
	e.operation = "read";
	e.client_token = client_token;
	e.tok = &t;
	memset(&rs, 0, sizeof(rs));
	rs.data = json_pack("{s:s, s:s, s:s}", "id", "plain-token-id-value", "accessor", t.accessor, "display_name",
	                    "approle");
	rs.auth = json_pack("{s:s, s:s, s:[s]}", "client_token", "hvs.newtokenXYZ0123456789", "accessor",
	                    "newaccessor000000000000", "policies", "default");
	log_pair(a, &e, &rs, 200);
	t1 = slurp(f1);
	t2 = slurp(f2);
	t3 = slurp(f3);
	T_OK(strstr(t1, "plain-token-id-value") == NULL && strstr(t1, "newtokenXYZ") == NULL);
	T_OK(strstr(t1, t.accessor) == NULL && strstr(t1, "newaccessor000") == NULL);
	T_OK(strstr(t2, "plain-token-id-value") == NULL && strstr(t2, "newtokenXYZ") == NULL);
	T_OK(strstr(t2, t.accessor) != NULL && strstr(t2, "newaccessor000") != NULL); /* hmac_accessor=false */
	T_OK(strstr(t2, "secrettokenvalue") == NULL);
	T_OK(strstr(t3, "plain-token-id-value") != NULL && strstr(t3, "secrettokenvalue") != NULL); /* log_raw */
	l = line_json(t1, 3);
	T_STREQ(json_string_value(json_object_get(json_object_get(json_object_get(l, "response"), "data"),
	                                          "display_name")),
	        "approle");
	json_decref(l);
	{
		json_t *list = audit_devices_json(a), *hm = json_object_get(list, "hm/");

		T_OK(json_object_size(list) == 3);
		T_STREQ(json_string_value(json_object_get(hm, "type")), "file");
		T_STREQ(json_string_value(json_object_get(hm, "path")), "hm/");
		T_STREQ(json_string_value(json_object_get(json_object_get(hm, "options"), "file_path")), f1);
		T_OK(json_integer_value(json_object_get(json_object_get(hm, "chain"), "seq")) == 3);
		T_STREQ(json_string_value(json_object_get(json_object_get(json_object_get(list, "clear/"), "options"),
		                                          "hmac_accessor")),
		        "false");
		json_decref(list);
	}
	resp_clear(&rs);
	token_free(&t);
	free(t1);
	free(t2);
	free(t3);
	free(f1);
	free(f2);
	free(f3);
	audit_free(a);
	store_close(st);
}

static void test_enable_refusals(void)
{
	struct store *st = store_new("refuse");
	struct audit *a = broker(st);
	char *file = tpath("refuse.log"), *file2 = tpath("refuse2.log"), *dir = tpath("refuse-dir");
	json_t *body;
	struct audit_entry first;
	struct sg_err err;

	entry_init(&first, "sys/audit/x");
	mkdir(dir, 0700);
#define REFUSED(call, want)                                                              \
	do {                                                                             \
		sg_err_init(&err);                                                       \
		T_CHECK((call) == -1 && err.code == (want), "%s", err.detail);           \
	} while (0)
	REFUSED(enable(a, "../x", file, NULL, &err), SG_BAD_REQUEST);
	REFUSED(enable(a, "a//b", file, NULL, &err), SG_BAD_REQUEST);
	REFUSED(enable(a, "", file, NULL, &err), SG_BAD_REQUEST);
	REFUSED(enable(a, "ok", file, "{\"prefix\":\"x\"}", &err), SG_BAD_REQUEST);
	REFUSED(enable(a, "ok", file, "{\"format\":\"jsonx\"}", &err), SG_BAD_REQUEST);
	REFUSED(enable(a, "ok", file, "{\"mode\":\"0999\"}", &err), SG_BAD_REQUEST);
	REFUSED(enable(a, "ok", file, "{\"log_raw\":\"maybe\"}", &err), SG_BAD_REQUEST);
	REFUSED(enable(a, "ok", "stdout", NULL, &err), SG_BAD_REQUEST);
	REFUSED(enable(a, "ok", dir, NULL, &err), SG_BAD_REQUEST);
	REFUSED(enable(a, "ok", "/nonexistent-dir/x/audit.log", NULL, &err), SG_BAD_REQUEST);
	/* Vault's test message: a device that cannot write is not enabled. */
	REFUSED(enable(a, "full", "/dev/full", NULL, &err), SG_BAD_REQUEST);
	T_OK(strstr(err.detail, "cannot write") != NULL);
	body = json_pack("{s:s, s:{s:s}}", "type", "socket", "options", "file_path", file);
	REFUSED(audit_device_enable(a, "sock", body, &first, &err), SG_BAD_REQUEST);
	json_decref(body);
	body = json_pack("{s:s}", "type", "file");
	REFUSED(audit_device_enable(a, "nofile", body, &first, &err), SG_BAD_REQUEST);
	T_STREQ(err.detail, "file_path is required");
	json_decref(body);
	T_OK(audit_device_count(a) == 0);
	enable_ok(a, "ok", file, NULL);
	REFUSED(enable(a, "ok", file2, NULL, &err), SG_BAD_REQUEST);
	T_STREQ(err.detail, "path already in use");
	REFUSED(enable(a, "other", file, NULL, &err), SG_BAD_REQUEST); /* one chain per file */
	enable_ok(a, "team/two", file2, "{\"mode\":\"0640\"}");
	{
		struct stat sb;

		T_OK(stat(file2, &sb) == 0 && (sb.st_mode & 0777) == 0640);
	}
	T_OK(audit_device_count(a) == 2);
	sg_err_init(&err);
	T_OK(audit_device_disable(a, "team/two/", &err) == 0);
	T_OK(audit_device_disable(a, "never-enabled", &err) == 0);
	T_OK(audit_device_count(a) == 1);
	T_OK(audit_path_exempt("sys/health") && audit_path_exempt("sys/seal-status") && !audit_path_exempt("sys/audit"));
#undef REFUSED
	free(file);
	free(file2);
	free(dir);
	audit_free(a);
	store_close(st);
}

/* The chain: every kind of tampering is named at its line. */
static void test_chain_tamper(void)
{
	struct store *st = store_new("chain");
	struct audit *a = broker(st);
	char *file = tpath("chain.log"), *work = tpath("chain-work.log");
	struct audit_verify_result r;
	struct audit_entry e;
	struct resp rs;
	struct lines l;
	json_t *list;
	char head[AUDIT_HASH_STR_LEN + 1];
	uint64_t seq;

	enable_ok(a, "file", file, NULL);
	entry_init(&e, "pki/issue/web");
	memset(&rs, 0, sizeof(rs));
	rs.data = json_pack("{s:s}", "serial_number", "5e:71:a1");
	for (int i = 0; i < 5; i++)
		log_pair(a, &e, &rs, 200);
	list = audit_devices_json(a);
	seq = (uint64_t)json_integer_value(json_object_get(json_object_get(json_object_get(list, "file/"), "chain"), "seq"));
	snprintf(head, sizeof(head), "%s",
	         json_string_value(json_object_get(json_object_get(json_object_get(list, "file/"), "chain"), "hash")));
	json_decref(list);
	T_OK(seq == 11);

	r = verify(file, 0, NULL);
	T_CHECK(r.ok && r.lines == 11 && r.last_seq == 11, "%s", r.reason);
	T_STREQ(r.head, head);
	r = verify(file, seq, head);
	T_CHECK(r.ok, "%s", r.reason);

	/* Edited content (the serial of line 5, a response). */
	lines_read(file, &l);
	{
		char *p = strstr(l.v[4], "5e:71:a1");

		T_OK(p != NULL);
		if (p != NULL)
			p[1] = '9';
	}
	lines_write(work, &l);
	lines_free(&l);
	r = verify(work, 0, NULL);
	T_CHECK(!r.ok && r.bad_line == 5 && strstr(r.reason, "edited") != NULL, "%" PRIu64 " %s", r.bad_line, r.reason);

	/* Deleted line 6. */
	lines_read(file, &l);
	free(l.v[5]);
	l.v[5] = NULL;
	lines_write(work, &l);
	lines_free(&l);
	r = verify(work, 0, NULL);
	T_CHECK(!r.ok && r.bad_line == 6 && strstr(r.reason, "deleted") != NULL, "%" PRIu64 " %s", r.bad_line, r.reason);

	/* Lines 3 and 4 swapped. */
	lines_read(file, &l);
	{
		char *tmp = l.v[2];

		l.v[2] = l.v[3];
		l.v[3] = tmp;
	}
	lines_write(work, &l);
	lines_free(&l);
	r = verify(work, 0, NULL);
	T_CHECK(!r.ok && r.bad_line == 3, "%" PRIu64 " %s", r.bad_line, r.reason);

	/* A copy of line 2 inserted after line 7. */
	lines_read(file, &l);
	l.v = sg_xrealloc(l.v, (l.n + 1) * sizeof(*l.v));
	memmove(&l.v[8], &l.v[7], (l.n - 7) * sizeof(*l.v));
	l.v[7] = sg_xstrdup(l.v[1]);
	l.n++;
	lines_write(work, &l);
	lines_free(&l);
	r = verify(work, 0, NULL);
	T_CHECK(!r.ok && r.bad_line == 8 && strstr(r.reason, "inserted") != NULL, "%" PRIu64 " %s", r.bad_line,
	        r.reason);

	/* The first line removed. */
	lines_read(file, &l);
	free(l.v[0]);
	l.v[0] = NULL;
	lines_write(work, &l);
	lines_free(&l);
	r = verify(work, 0, NULL);
	T_CHECK(!r.ok && r.bad_line == 1, "%" PRIu64 " %s", r.bad_line, r.reason);

	/* A line rewritten with its own hash recomputed: the next line's prev_hash names the break. */
	lines_read(file, &l);
	{
		char *line = l.v[4], *p = strstr(line, "5e:71:a1"), *hpos;
		size_t n = strlen(line) - 1; /* without "\n" */
		unsigned char md[32];
		unsigned int mdlen = 0;

		T_OK(p != NULL);
		if (p == NULL)
			sg_die("no serial in line 5");
		p[0] = '7';
		hpos = line + n - 82;
		EVP_Digest(line, (size_t)(hpos - line), md, &mdlen, EVP_sha256(), NULL);
		for (size_t i = 0; i < 32; i++) {
			char two[3];

			snprintf(two, sizeof(two), "%02x", md[i]);
			memcpy(hpos + 16 + 2 * i, two, 2);
		}
	}
	lines_write(work, &l);
	lines_free(&l);
	r = verify(work, 0, NULL);
	T_CHECK(!r.ok && r.bad_line == 6 && strstr(r.reason, "prev_hash does not match line 5") != NULL,
	        "%" PRIu64 " %s", r.bad_line, r.reason);

	/* The last two lines cut: the file alone is a valid chain; the recorded head shows the loss. */
	lines_read(file, &l);
	free(l.v[10]);
	free(l.v[9]);
	l.v[10] = l.v[9] = NULL;
	lines_write(work, &l);
	lines_free(&l);
	r = verify(work, 0, NULL);
	T_CHECK(r.ok && r.last_seq == 9, "%s", r.reason);
	r = verify(work, seq, NULL);
	T_CHECK(!r.ok && r.bad_line == 10 && strstr(r.reason, "removed") != NULL, "%" PRIu64 " %s", r.bad_line,
	        r.reason);

	/* A partial last line (interrupted write). */
	lines_read(file, &l);
	l.v[10][20] = '\0';
	lines_write(work, &l);
	lines_free(&l);
	r = verify(work, 0, NULL);
	T_CHECK(!r.ok && r.bad_line == 11 && strstr(r.reason, "incomplete") != NULL, "%" PRIu64 " %s", r.bad_line,
	        r.reason);

	/* A consistent rewrite of the whole file is caught by the recorded head only. */
	r = verify(file, seq, "sha256:0000000000000000000000000000000000000000000000000000000000000001");
	T_CHECK(!r.ok && r.bad_line == 11 && strstr(r.reason, "rewritten") != NULL, "%s", r.reason);
	{
		char *argv_ok[] = {"audit", "verify", file, NULL};
		char *argv_bad[] = {"audit", "verify", "-expect-seq", "99", file, NULL};
		char *argv_use[] = {"audit", "verify", NULL};
		char seqs[32];
		char *argv_head[] = {"audit", "verify", "-expect-seq", seqs, "-expect-hash", head, file, NULL};

		snprintf(seqs, sizeof(seqs), "%" PRIu64, seq);
		T_OK(audit_cli_main(3, argv_ok) == 0);
		T_OK(audit_cli_main(5, argv_bad) == 1);
		T_OK(audit_cli_main(2, argv_use) == 2);
		T_OK(audit_cli_main(7, argv_head) == 0);
		fflush(stdout);
	}
	resp_clear(&rs);
	free(file);
	free(work);
	audit_free(a);
	store_close(st);
}

/* Restarts continue the chain; a file cut while the server was down shows the break at the next line. */
static void test_restart_and_checkpoint(void)
{
	struct store *st = store_new("restart");
	struct audit *a = broker(st);
	char *file = tpath("restart.log"), *h1, *h2;
	struct audit_verify_result r;
	struct audit_entry e;
	struct lines l;

	enable_ok(a, "file", file, NULL);
	entry_init(&e, "pki/roles/web");
	log_pair(a, &e, NULL, 204);
	h1 = hash_of(a, "file", "same-salt");
	audit_free(a); /* stores the head: seq 3 */

	a = broker(st);
	T_OK(audit_device_count(a) == 1);
	h2 = hash_of(a, "file", "same-salt");
	T_STREQ(h1, h2); /* the salt survived */
	log_pair(a, &e, NULL, 204);
	r = verify(file, 0, NULL);
	T_CHECK(r.ok && r.last_seq == 5, "%s", r.reason);
	audit_free(a); /* head: seq 5 */

	/* Cut the last two lines while "down": the chain continues from the recorded head, not the file. */
	lines_read(file, &l);
	free(l.v[4]);
	free(l.v[3]);
	l.v[4] = l.v[3] = NULL;
	lines_write(file, &l);
	lines_free(&l);
	a = broker(st);
	log_pair(a, &e, NULL, 204);
	r = verify(file, 0, NULL);
	T_CHECK(!r.ok && r.bad_line == 4 && strstr(r.reason, "seq 6 where 4") != NULL, "%" PRIu64 " %s", r.bad_line,
	        r.reason);
	audit_free(a);
	free(h1);
	free(h2);
	free(file);
	store_close(st);
}

/* A rotated (moved) or deleted file: the device reopens its path and the chain continues there. */
static void test_rotation(void)
{
	struct store *st = store_new("rotate");
	struct audit *a = broker(st);
	char *file = tpath("rotate.log"), *old = tpath("rotate.log.1");
	struct audit_verify_opts cont = {0, NULL, true};
	struct audit_verify_result r, r_old;
	struct audit_entry e;
	struct sg_err err;
	unsigned char *rec = NULL;
	size_t reclen = 0;

	sg_err_init(&err);
	enable_ok(a, "file", file, NULL);
	entry_init(&e, "pki/roles/web");
	log_pair(a, &e, NULL, 204);
	T_OK(rename(file, old) == 0);
	log_pair(a, &e, NULL, 204); /* still the open (renamed) file */
	audit_checkpoint(a);
	log_pair(a, &e, NULL, 204); /* the new file at the path */
	r_old = verify(old, 0, NULL);
	T_CHECK(r_old.ok && r_old.last_seq == 5, "%s", r_old.reason);
	r = verify(file, 0, NULL);
	T_CHECK(!r.ok && r.bad_line == 1 && strstr(r.reason, "starts at seq 6") != NULL, "%s", r.reason);
	memset(&r, 0, sizeof(r));
	T_OK(audit_verify_file(file, &cont, &r, &err) == 0);
	T_CHECK(r.ok && r.first_seq == 6 && r.last_seq == 7, "%s", r.reason);
	T_STREQ(r.first_prev, r_old.head); /* the new file picks up where the old one ends */
	T_OK(store_get(st, STORE_META, "audit-head/file", 15, &rec, &reclen, &err) == 1);
	T_OK(rec != NULL && strstr((const char *)rec, "\"seq\":5") != NULL); /* the head synced when it switched */
	free(rec);

	/* Deleted: what went to the unlinked file is gone, and the next file shows the gap. */
	T_OK(unlink(file) == 0);
	log_pair(a, &e, NULL, 204);
	audit_checkpoint(a);
	log_pair(a, &e, NULL, 204);
	memset(&r, 0, sizeof(r));
	T_OK(audit_verify_file(file, &cont, &r, &err) == 0);
	T_CHECK(r.ok && r.first_seq == 10 && r.last_seq == 11, "%" PRIu64 " %s", r.first_seq, r.reason);
	free(file);
	free(old);
	audit_free(a);
	store_close(st);
}

/* A partial line left by an interrupted write is closed off; the chain continues after it. */
static void test_torn_tail(void)
{
	struct store *st = store_new("torn");
	struct audit *a = broker(st);
	char *file = tpath("torn.log"), *text;
	struct audit_verify_result r;
	struct audit_entry e;
	FILE *f;

	enable_ok(a, "file", file, NULL);
	entry_init(&e, "pki/roles/web");
	log_pair(a, &e, NULL, 204);
	audit_free(a);
	f = fopen(file, "ab");
	fputs("{\"time\":\"partial", f);
	fclose(f);
	a = broker(st);
	log_pair(a, &e, NULL, 204);
	audit_free(a);
	text = slurp(file);
	T_OK(count_lines(text) == 6);
	r = verify(file, 0, NULL);
	T_CHECK(!r.ok && r.bad_line == 4, "%" PRIu64 " %s", r.bad_line, r.reason);
	free(text);
	free(file);
	store_close(st);
}

/* Fail closed: with no device able to write, logging fails; one working device is enough. */
static void test_fail_closed(void)
{
	struct store *st = store_new("closed");
	struct audit *a = broker(st);
	char *fifo = tpath("closed.fifo"), *file = tpath("closed.log"), *cmd;
	struct audit_entry e;
	struct sg_err err;
	int rfd;

	signal(SIGPIPE, SIG_IGN);
	entry_init(&e, "pki/issue/web");
	sg_err_init(&err);
	T_OK(audit_log_request(a, &e, true, &err) == 0); /* no device: nothing to fail */
	T_OK(audit_log_response(a, &e, &err) == 0);

	/* A FIFO whose reader goes away: writes fail with EPIPE even for root. */
	T_OK(mkfifo(fifo, 0600) == 0);
	rfd = open(fifo, O_RDONLY | O_NONBLOCK);
	T_OK(rfd >= 0);
	enable_ok(a, "pipe", fifo, NULL);
	T_OK(audit_log_request(a, &e, true, &err) == 0);
	close(rfd);
	sg_err_init(&err);
	T_OK(audit_log_request(a, &e, true, &err) == -1 && err.code == SG_INTERNAL);
	sg_err_init(&err);
	T_OK(audit_log_response(a, &e, &err) == -1 && err.code == SG_INTERNAL);
	{
		json_t *list = audit_devices_json(a);

		T_OK(json_object_get(json_object_get(json_object_get(list, "pipe/"), "chain"), "error") != NULL);
		json_decref(list);
	}
	/* One device that writes is enough. */
	enable_ok(a, "file", file, NULL);
	sg_err_init(&err);
	T_OK(audit_log_request(a, &e, true, &err) == 0);
	T_OK(audit_log_response(a, &e, &err) == 0);

	/* An immutable file (chattr +i) refuses writes on an open descriptor, even to root. */
	sg_err_init(&err);
	T_OK(audit_device_disable(a, "pipe", &err) == 0);
	cmd = sg_xasprintf("chattr +i '%s' 2>/dev/null", file);
	if (system(cmd) == 0) {
		sg_err_init(&err);
		T_OK(audit_log_request(a, &e, false, &err) == -1 && err.code == SG_INTERNAL);
		free(cmd);
		cmd = sg_xasprintf("chattr -i '%s'", file);
		T_OK(system(cmd) == 0);
		sg_err_init(&err);
		T_OK(audit_log_request(a, &e, true, &err) == 0); /* writable again: recovers */
		T_OK(audit_log_response(a, &e, &err) == 0);
		T_CHECK(verify(file, 0, NULL).ok, "chain after a refused write");
	} else {
		fprintf(stderr, "note: chattr +i unavailable here; immutable-file case skipped\n");
	}
	free(cmd);
	free(fifo);
	free(file);
	audit_free(a);
	store_close(st);
}

struct par {
	struct audit *a;
	int n;
	int failures;
};

static void *par_main(void *arg)
{
	struct par *p = arg;
	struct audit_entry e;
	struct sg_err err;

	entry_init(&e, "pki/issue/web");
	for (int i = 0; i < p->n; i++) {
		sg_err_init(&err);
		if (audit_log_request(p->a, &e, true, &err) != 0 || audit_log_response(p->a, &e, &err) != 0)
			p->failures++;
	}
	return NULL;
}

/* Many threads share fdatasync calls, and the chain stays whole. */
static void test_group_sync(void)
{
	struct store *st = store_new("group");
	struct audit *a = broker(st);
	char *file = tpath("group.log");
	pthread_t th[8];
	struct par p[8];
	uint64_t lines0, syncs0, lines, syncs;
	struct audit_verify_result r;
	int failures = 0;

	enable_ok(a, "file", file, NULL);
	audit_stats(a, &lines0, &syncs0);
	for (int i = 0; i < 8; i++) {
		p[i] = (struct par){a, 100, 0};
		pthread_create(&th[i], NULL, par_main, &p[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		failures += p[i].failures;
	}
	audit_stats(a, &lines, &syncs);
	T_OK(failures == 0);
	T_OK(lines - lines0 == 1600);
	T_CHECK(syncs - syncs0 < lines - lines0, "syncs %" PRIu64 " lines %" PRIu64, syncs - syncs0, lines - lines0);
	fprintf(stderr, "group sync: %" PRIu64 " lines, %" PRIu64 " fdatasync calls\n", lines - lines0, syncs - syncs0);
	r = verify(file, 1601, NULL);
	T_CHECK(r.ok && r.last_seq == 1601, "%s", r.reason);
	free(file);
	audit_free(a);
	store_close(st);
}

/* Whatever bytes a request carries, every line is valid UTF-8 JSON that round-trips. */
static void test_encoding(void)
{
	struct store *st = store_new("encoding");
	struct audit *a = broker(st);
	char *file = tpath("encoding.log"), *text;
	struct audit_entry e;
	json_t *body = json_object(), *l, *d;
	const char *tricky = "q\"uote b\\ack\nnl\ttab \x01 ctl \x7f del caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91 "
	                     "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

	enable_ok(a, "file", file, NULL);
	entry_init(&e, "pki/roles/\xff\xfe-not-utf8\x80");
	e.remote_addr = "[::1]:8443";
	e.error = "bad \"thing\"\n";
	json_object_set_new(body, "tricky", json_string(tricky));
	json_object_set_new(body, "num", json_integer(-42));
	json_object_set_new(body, "real", json_real(1.5));
	json_object_set_new(body, "list", json_pack("[b,b,n,{s:s}]", 1, 0, "k", "v"));
	e.data = body;
	log_pair(a, &e, NULL, 400);
	text = slurp(file);
	l = line_json(text, 2);
	T_OK(l != NULL);
	d = json_object_get(json_object_get(l, "request"), "data");
	T_STREQ(json_string_value(json_object_get(d, "tricky")), tricky);
	T_OK(json_integer_value(json_object_get(d, "num")) == -42);
	T_OK(json_real_value(json_object_get(d, "real")) == 1.5);
	T_OK(json_is_true(json_array_get(json_object_get(d, "list"), 0)));
	T_OK(json_is_null(json_array_get(json_object_get(d, "list"), 2)));
	T_STREQ(json_string_value(json_object_get(json_array_get(json_object_get(d, "list"), 3), "k")), "v");
	T_STREQ(json_string_value(json_object_get(json_object_get(l, "request"), "path")), "pki/roles/?" "?-not-utf8?");
	T_STREQ(json_string_value(json_object_get(json_object_get(l, "request"), "remote_address")), "::1");
	T_OK(json_integer_value(json_object_get(json_object_get(l, "request"), "remote_port")) == 8443);
	T_STREQ(json_string_value(json_object_get(l, "error")), "bad \"thing\"\n");
	json_decref(l);
	l = line_json(text, 3);
	T_OK(json_integer_value(json_object_get(json_object_get(l, "response"), "status")) == 400);
	json_decref(l);
	T_CHECK(verify(file, 0, NULL).ok, "encoded lines verify");
	json_decref(body);
	free(text);
	free(file);
	audit_free(a);
	store_close(st);
}

/* A huge body keeps the line bounded; very long strings are HMAC-ed, not copied. */
static void test_bounds(void)
{
	struct store *st = store_new("bounds");
	struct audit *a = broker(st);
	char *file = tpath("bounds.log"), *big = sg_xmalloc(AUDIT_MAX_CLEAR_STRING + 2), *text;
	struct audit_entry e;
	json_t *body = json_object(), *l;

	memset(big, 'A', AUDIT_MAX_CLEAR_STRING + 1);
	big[AUDIT_MAX_CLEAR_STRING + 1] = '\0';
	enable_ok(a, "file", file, NULL);
	entry_init(&e, "pki/roles/web");
	json_object_set_new(body, "long", json_string(big));
	for (int i = 0; i < 200; i++) {
		char k[16];

		snprintf(k, sizeof(k), "k%d", i);
		big[AUDIT_MAX_CLEAR_STRING - 10] = '\0';
		json_object_set_new(body, k, json_string(big));
		big[AUDIT_MAX_CLEAR_STRING - 10] = 'A';
	}
	e.data = body;
	log_pair(a, &e, NULL, 204);
	text = slurp(file);
	l = line_json(text, 2);
	T_OK(json_integer_value(json_object_get(l, "elided_bytes")) > (json_int_t)AUDIT_MAX_LINE_BYTES);
	T_OK(json_is_true(json_object_get(json_object_get(json_object_get(l, "request"), "data"), "elided")));
	T_OK(strlen(text) < 64u << 10);
	T_CHECK(verify(file, 0, NULL).ok, "bounded lines verify");
	json_decref(l);
	json_object_clear(body);
	json_object_set_new(body, "long", json_string(big));
	log_pair(a, &e, NULL, 204);
	free(text);
	text = slurp(file);
	l = line_json(text, 4);
	T_OK(strncmp(json_string_value(json_object_get(json_object_get(json_object_get(l, "request"), "data"), "long")),
	             "hmac-sha256:", 12) == 0);
	json_decref(l);
	json_decref(body);
	free(text);
	free(big);
	free(file);
	audit_free(a);
	store_close(st);
}

int main(void)
{
	snprintf(tmp_root, sizeof(tmp_root), "/tmp/sigil-test-audit-XXXXXX");
	if (mkdtemp(tmp_root) == NULL)
		sg_die("mkdtemp failed");
	test_hmac_matches_salt();
	test_secrets_hmac();
	test_login_and_options();
	test_enable_refusals();
	test_chain_tamper();
	test_restart_and_checkpoint();
	test_torn_tail();
	test_rotation();
	test_fail_closed();
	test_group_sync();
	test_bounds();
	test_encoding();
	{
		char *cmd = sg_xasprintf("chattr -R -i '%s' 2>/dev/null; rm -rf '%s'", tmp_root, tmp_root);

		if (system(cmd) != 0)
			fprintf(stderr, "cleanup of %s failed\n", tmp_root);
		free(cmd);
	}
	return t_done();
}
