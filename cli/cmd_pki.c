/* High-level PKI commands: issue, sign, revoke, certs, role, issuer, crl rotate, tidy. */
#include "cli/cli.h"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *mount_of(const struct cli_args *a)
{
	return a->mount != NULL && *a->mount != '\0' ? a->mount : "pki";
}

/* Comma-joins a repeatable flag's values (each may itself be a comma list). */
static json_t *joined(const struct sg_strlist *l)
{
	size_t n = 0;
	char *s, *p;
	json_t *j;

	for (size_t i = 0; i < l->n; i++)
		n += strlen(l->v[i]) + 1;
	s = p = sg_xmalloc(n + 1);
	*p = '\0';
	for (size_t i = 0; i < l->n; i++)
		p += snprintf(p, n + 1 - (size_t)(p - s), "%s%s", i ? "," : "", l->v[i]);
	j = json_string(s);
	free(s);
	return j;
}

static void set_flag_str(json_t *body, const char *field, const struct cli_args *a, const char *flag)
{
	const char *v = cli_flag(a, flag);

	if (v != NULL)
		json_object_set_new(body, field, json_string(v));
}

static void set_flag_list(json_t *body, const char *field, const struct cli_args *a, const char *flag)
{
	const struct sg_strlist *l = cli_flag_all(a, flag);

	if (l->n > 0)
		json_object_set_new(body, field, joined(l));
}

static int write_text(const char *path, const char *text, int mode, struct sg_err *err)
{
	size_t n = strlen(text);
	char *buf;
	int rc;

	/* PEM files end in a newline. */
	buf = sg_xasprintf("%s%s", text, n > 0 && text[n - 1] == '\n' ? "" : "\n");
	rc = sg_file_write_atomic(path, buf, strlen(buf), mode, err);
	OPENSSL_cleanse(buf, strlen(buf));
	free(buf);
	return rc;
}

/* The issuing chain: ca_chain (array) when present, else issuing_ca. NULL when neither. */
static char *chain_text(const json_t *d)
{
	json_t *cc = json_object_get(d, "ca_chain"), *e;
	const char *ic = json_string_value(json_object_get(d, "issuing_ca"));
	size_t i, n = 0;
	char *s, *p;

	if (json_is_array(cc) && json_array_size(cc) > 0) {
		json_array_foreach(cc, i, e) {
			if (json_is_string(e))
				n += strlen(json_string_value(e)) + 1;
		}
		s = p = sg_xmalloc(n + 1);
		*p = '\0';
		json_array_foreach(cc, i, e) {
			if (json_is_string(e))
				p += snprintf(p, n + 1 - (size_t)(p - s), "%s\n", json_string_value(e));
		}
		return s;
	}
	if (json_is_string(cc))
		return sg_xstrdup(json_string_value(cc));
	return ic != NULL ? sg_xstrdup(ic) : NULL;
}

static void print_expiry(FILE *f, const json_t *d)
{
	json_t *exp = json_object_get(d, "expiration");
	char when[64], rel[64];

	if (!json_is_integer(exp))
		return;
	sg_time_format_rfc3339((int64_t)json_integer_value(exp), when, sizeof(when));
	cli_reltime((int64_t)json_integer_value(exp) - (int64_t)time(NULL), rel, sizeof(rel));
	fprintf(f, "expiration       %s (%s)\n", when, rel);
}

/* Writes PREFIX.crt, PREFIX.key (0600, when a key came back) and PREFIX.chain.pem. */
static int write_bundle(struct cli_ctx *ctx, const char *prefix, const struct cli_response *resp,
                        struct sg_err *err)
{
	json_t *d = cli_response_data(resp), *out = NULL;
	const char *cert, *key;
	char *crt_p = NULL, *key_p = NULL, *chain_p = NULL, *chain = NULL;
	int ret = -1;

	cert = d != NULL ? json_string_value(json_object_get(d, "certificate")) : NULL;
	if (cert == NULL) {
		sg_err_set(err, SG_INTERNAL, "the server's answer has no certificate");
		goto out;
	}
	key = json_string_value(json_object_get(d, "private_key"));
	crt_p = sg_xasprintf("%s.crt", prefix);
	key_p = sg_xasprintf("%s.key", prefix);
	chain_p = sg_xasprintf("%s.chain.pem", prefix);
	chain = chain_text(d);
	/* The key first: a certificate on disk without its key is the worse half-state. */
	if (key != NULL && write_text(key_p, key, 0600, err) != 0)
		goto out;
	if (write_text(crt_p, cert, 0644, err) != 0)
		goto out;
	if (chain != NULL && write_text(chain_p, chain, 0644, err) != 0)
		goto out;
	if (ctx->json) {
		out = json_pack("{s:O?, s:O?, s:O?, s:s}", "serial_number", json_object_get(d, "serial_number"),
		                "expiration", json_object_get(d, "expiration"), "lease_id",
		                json_object_get(resp->json, "lease_id"), "certificate_file", crt_p);
		if (out == NULL)
			sg_die("json_pack failed");
		if (key != NULL)
			json_object_set_new(out, "private_key_file", json_string(key_p));
		if (chain != NULL)
			json_object_set_new(out, "chain_file", json_string(chain_p));
		json_dumpf(out, ctx->out, JSON_INDENT(2));
		fputc('\n', ctx->out);
	} else {
		const char *lease = json_string_value(json_object_get(resp->json, "lease_id"));
		fprintf(ctx->out, "serial_number    %s\n", json_string_value(json_object_get(d, "serial_number")));
		print_expiry(ctx->out, d);
		if (lease != NULL && *lease != '\0')
			fprintf(ctx->out, "lease_id         %s\n", lease);
		fprintf(ctx->out, "certificate      %s\n", crt_p);
		if (key != NULL)
			fprintf(ctx->out, "private_key      %s (mode 0600)\n", key_p);
		if (chain != NULL)
			fprintf(ctx->out, "chain            %s\n", chain_p);
	}
	ret = 0;
out:
	json_decref(out);
	free(crt_p);
	free(key_p);
	free(chain_p);
	free(chain);
	return ret;
}

static int issue_or_sign(struct cli_ctx *ctx, const struct cli_args *a, bool sign, struct sg_err *err)
{
	const char *mount = mount_of(a), *issuer = cli_flag(a, "issuer"), *out_prefix = cli_flag(a, "out");
	const char *csr_file = sign ? cli_flag(a, "csr") : NULL;
	struct cli_response resp = {0};
	json_t *body = json_object();
	char *path = NULL, *csr = NULL;
	int ret = -1;

	if (sign) {
		if (csr_file == NULL) {
			ctx->usage = true;
			sg_err_set(err, SG_BAD_REQUEST, "--csr FILE is required");
			goto out;
		}
		if ((csr = cli_file_read(csr_file, err)) == NULL)
			goto out;
		json_object_set_new(body, "csr", json_string(csr));
	}
	set_flag_str(body, "common_name", a, "cn");
	set_flag_list(body, "alt_names", a, "san");
	set_flag_list(body, "ip_sans", a, "ip");
	if (!sign) {
		set_flag_list(body, "uri_sans", a, "uri");
		set_flag_str(body, "key_type", a, "key-type");
		set_flag_str(body, "key_bits", a, "key-bits");
	}
	set_flag_str(body, "ttl", a, "ttl");
	if (issuer != NULL)
		path = sg_xasprintf("%s/issuer/%s/%s/%s", mount, issuer, sign ? "sign" : "issue", a->pos.v[0]);
	else
		path = sg_xasprintf("%s/%s/%s", mount, sign ? "sign" : "issue", a->pos.v[0]);
	if (cli_client_call(ctx->client, "POST", path, body, &resp, err) != 0)
		goto out;
	cli_print_warnings(&resp);
	if (out_prefix != NULL) {
		if (write_bundle(ctx, out_prefix, &resp, err) != 0)
			goto out;
	} else {
		cli_print_response(ctx, &resp);
	}
	ret = 0;
out:
	json_decref(body);
	free(path);
	free(csr);
	cli_response_clear(&resp);
	return ret;
}

int cli_cmd_issue(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err)
{
	return issue_or_sign(ctx, a, false, err);
}

int cli_cmd_sign(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err)
{
	return issue_or_sign(ctx, a, true, err);
}

static void print_json_pair(FILE *f, const char *key, const char *value)
{
	json_t *o = json_pack("{s:s?}", key, value);

	if (o == NULL)
		sg_die("json_pack failed");
	json_dumpf(o, f, JSON_INDENT(2));
	fputc('\n', f);
	json_decref(o);
}

int cli_cmd_revoke(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err)
{
	const char *role = cli_flag(a, "role"), *reason = cli_flag(a, "reason"), *mount = mount_of(a);
	struct cli_response resp = {0};
	json_t *body = json_object();
	char *path = NULL;
	int ret = -1;

	if ((role == NULL) == (a->pos.n == 0)) {
		ctx->usage = true;
		sg_err_set(err, SG_BAD_REQUEST, "give either a SERIAL or LEASE_ID, or --role ROLE");
		goto out;
	}
	if (reason != NULL && (role != NULL || strchr(a->pos.v[0], '/') != NULL)) {
		/* Leases are revoked with the reason "unspecified"; only pki/revoke takes one. */
		ctx->usage = true;
		sg_err_set(err, SG_BAD_REQUEST, "--reason applies to a revocation by serial number");
		goto out;
	}
	if (role != NULL) {
		static const char *const ops[] = {"issue", "sign"};
		for (size_t i = 0; i < 2; i++) {
			free(path);
			path = sg_xasprintf("sys/leases/revoke-prefix/%s/%s/%s", mount, ops[i], role);
			if (cli_client_call(ctx->client, "POST", path, NULL, &resp, err) != 0)
				goto out;
			cli_print_warnings(&resp);
			if (!ctx->json)
				fprintf(ctx->out, "Revoked every lease under %s/%s/%s\n", mount, ops[i], role);
		}
		if (ctx->json)
			print_json_pair(ctx->out, "revoked_role", role);
		ret = 0;
		goto out;
	}
	if (strchr(a->pos.v[0], '/') != NULL) {
		/* Lease ids are paths (pki/issue/web/<id>); serials never hold a '/'. */
		json_object_set_new(body, "lease_id", json_string(a->pos.v[0]));
		if (cli_client_call(ctx->client, "POST", "sys/leases/revoke", body, &resp, err) != 0)
			goto out;
		cli_print_warnings(&resp);
		if (ctx->json)
			print_json_pair(ctx->out, "revoked_lease", a->pos.v[0]);
		else
			fprintf(ctx->out, "Revoked lease %s\n", a->pos.v[0]);
		ret = 0;
		goto out;
	}
	json_object_set_new(body, "serial_number", json_string(a->pos.v[0]));
	if (reason != NULL)
		json_object_set_new(body, "reason", json_string(reason));
	path = sg_xasprintf("%s/revoke", mount);
	if (cli_client_call(ctx->client, "POST", path, body, &resp, err) != 0)
		goto out;
	cli_print_response(ctx, &resp);
	ret = 0;
out:
	json_decref(body);
	free(path);
	cli_response_clear(&resp);
	return ret;
}

/* ---- certs ---- */

struct cert_row {
	char *serial;
	char *cn;
	int64_t not_after;
	int64_t revoked_at;
};

static int pem_facts(const char *pem, char **cn, int64_t *not_after)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	struct tm tm;
	int idx, ret = -1;

	if (x == NULL)
		goto out;
	memset(&tm, 0, sizeof(tm));
	if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1)
		goto out;
	*not_after = (int64_t)timegm(&tm);
	idx = X509_NAME_get_index_by_NID(X509_get_subject_name(x), NID_commonName, -1);
	if (idx >= 0) {
		const ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(X509_get_subject_name(x), idx));
		*cn = sg_xstrndup((const char *)ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s));
	} else {
		*cn = sg_xstrdup("");
	}
	ret = 0;
out:
	X509_free(x);
	BIO_free(b);
	return ret;
}

int cli_cmd_certs(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err)
{
	const char *mount = mount_of(a), *role = cli_flag(a, "role"), *exp_s = cli_flag(a, "expiring");
	bool revoked_only = cli_flag_set(a, "revoked");
	struct cli_response resp = {0}, one = {0};
	struct cert_row *rows = NULL;
	size_t nrows = 0;
	int64_t within = -1, now = (int64_t)time(NULL);
	json_t *keys, *k, *arr = NULL;
	char *path = NULL;
	size_t i;
	int ret = -1;

	if (exp_s != NULL && sg_duration_parse(exp_s, &within) != 0) {
		ctx->usage = true;
		sg_err_set(err, SG_BAD_REQUEST, "--expiring takes a duration like 24h, not \"%s\"", exp_s);
		goto out;
	}
	path = sg_xasprintf("%s/%s", mount, revoked_only ? "certs/revoked" : "certs");
	if (cli_client_request(ctx->client, "LIST", path, NULL, &resp, err) != 0)
		goto out;
	if (resp.status == 404) {
		keys = NULL; /* Vault's empty LIST */
	} else if (resp.status < 200 || resp.status > 299) {
		char *msg = cli_response_errmsg(&resp);
		sg_err_set(err, resp.status == 403 ? SG_PERMISSION_DENIED : SG_BAD_REQUEST, "%ld: %s", resp.status, msg);
		free(msg);
		goto out;
	} else {
		keys = json_object_get(cli_response_data(&resp), "keys");
	}
	if (keys != NULL && json_array_size(keys) > CLI_MAX_CERTS) {
		sg_err_set(err, SG_TOO_LARGE, "more than %d certificates; use sigil list %s", CLI_MAX_CERTS, path);
		goto out;
	}
	rows = sg_xcalloc(json_array_size(keys) + 1, sizeof(*rows));
	json_array_foreach(keys, i, k) {
		json_t *d, *rt, *rv;
		const char *pem;
		struct cert_row r = {0};

		if (!json_is_string(k))
			continue;
		free(path);
		path = sg_xasprintf("%s/cert/%s", mount, json_string_value(k));
		if (cli_client_call(ctx->client, "GET", path, NULL, &one, err) != 0)
			goto out;
		d = cli_response_data(&one);
		pem = d != NULL ? json_string_value(json_object_get(d, "certificate")) : NULL;
		if (pem == NULL || pem_facts(pem, &r.cn, &r.not_after) != 0) {
			sg_err_set(err, SG_BAD_PEM, "certificate %s: unreadable PEM from the server", json_string_value(k));
			goto out;
		}
		if (role != NULL) {
			rv = json_object_get(d, "role");
			if (!json_is_string(rv)) {
				free(r.cn);
				sg_err_set(err, SG_UNSUPPORTED_PATH,
				           "--role: this server does not report a certificate's role (cert/:serial has no "
				           "\"role\" field)");
				goto out;
			}
			if (strcmp(json_string_value(rv), role) != 0) {
				free(r.cn);
				continue;
			}
		}
		rt = json_object_get(d, "revocation_time");
		r.revoked_at = json_is_integer(rt) ? (int64_t)json_integer_value(rt) : 0;
		if (within >= 0 && (r.not_after < now || r.not_after - now > within || r.revoked_at != 0)) {
			free(r.cn);
			continue;
		}
		r.serial = sg_xstrdup(json_string_value(k));
		rows[nrows++] = r;
	}
	if (ctx->json) {
		arr = json_array();
		for (i = 0; i < nrows; i++) {
			char na[64];
			sg_time_format_rfc3339(rows[i].not_after, na, sizeof(na));
			json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:I, s:b}", "serial_number", rows[i].serial,
			                                     "common_name", rows[i].cn, "not_after", na, "revocation_time",
			                                     (json_int_t)rows[i].revoked_at, "expired",
			                                     rows[i].not_after < now));
		}
		json_dumpf(arr, ctx->out, JSON_INDENT(2));
		fputc('\n', ctx->out);
	} else if (nrows == 0) {
		fprintf(ctx->out, "No certificates.\n");
	} else {
		size_t w = 6, cw = 11;
		for (i = 0; i < nrows; i++) {
			if (strlen(rows[i].serial) > w)
				w = strlen(rows[i].serial);
			if (strlen(rows[i].cn) > cw)
				cw = strlen(rows[i].cn);
		}
		fprintf(ctx->out, "%-*s  %-*s  %-20s  %-14s  %s\n", (int)w, "SERIAL", (int)cw, "COMMON NAME", "NOT AFTER",
		        "EXPIRES", "STATUS");
		for (i = 0; i < nrows; i++) {
			char na[64], rel[64];
			sg_time_format_rfc3339(rows[i].not_after, na, sizeof(na));
			cli_reltime(rows[i].not_after - now, rel, sizeof(rel));
			fprintf(ctx->out, "%-*s  %-*s  %-20s  %-14s  %s\n", (int)w, rows[i].serial, (int)cw, rows[i].cn, na,
			        rel,
			        rows[i].revoked_at ? "revoked" : rows[i].not_after < now ? "expired" : "valid");
		}
	}
	ret = 0;
out:
	for (i = 0; i < nrows; i++) {
		free(rows[i].serial);
		free(rows[i].cn);
	}
	free(rows);
	json_decref(arr);
	free(path);
	cli_response_clear(&resp);
	cli_response_clear(&one);
	return ret;
}

/* ---- roles, issuers, CRL, tidy ---- */

static int pki_simple(struct cli_ctx *ctx, const struct cli_args *a, const char *method, const char *sub,
                      const json_t *body, struct sg_err *err)
{
	struct cli_response resp = {0};
	char *path = sg_xasprintf("%s/%s", mount_of(a), sub);
	int ret = -1;

	if (cli_client_call(ctx->client, method, path, body, &resp, err) != 0)
		goto out;
	if (resp.status == 204 && !ctx->json)
		fprintf(ctx->out, "Success! %s %s\n", strcmp(method, "DELETE") == 0 ? "Deleted" : "Wrote", path);
	else
		cli_print_response(ctx, &resp);
	ret = 0;
out:
	free(path);
	cli_response_clear(&resp);
	return ret;
}

int cli_cmd_role_list(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err)
{
	return pki_simple(ctx, a, "LIST", "roles", NULL, err);
}

int cli_cmd_role_read(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err)
{
	char *sub = sg_xasprintf("roles/%s", a->pos.v[0]);
	int ret = pki_simple(ctx, a, "GET", sub, NULL, err);

	free(sub);
	return ret;
}

int cli_cmd_role_write(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err)
{
	json_t *body = NULL;
	char *sub = NULL;
	int ret = -1;

	if (cli_kv_parse(&a->pos, 1, &body, err) != 0) {
		ctx->usage = true;
		goto out;
	}
	sub = sg_xasprintf("roles/%s", a->pos.v[0]);
	ret = pki_simple(ctx, a, "POST", sub, body, err);
out:
	free(sub);
	json_decref(body);
	return ret;
}

int cli_cmd_role_delete(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err)
{
	char *sub = sg_xasprintf("roles/%s", a->pos.v[0]);
	int ret = pki_simple(ctx, a, "DELETE", sub, NULL, err);

	free(sub);
	return ret;
}

int cli_cmd_issuer_list(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err)
{
	struct cli_response resp = {0};
	char *path = sg_xasprintf("%s/issuers", mount_of(a));
	json_t *d, *info, *keys, *k;
	size_t i;
	int ret = -1;

	if (cli_client_call(ctx->client, "LIST", path, NULL, &resp, err) != 0)
		goto out;
	d = cli_response_data(&resp);
	keys = d != NULL ? json_object_get(d, "keys") : NULL;
	info = d != NULL ? json_object_get(d, "key_info") : NULL;
	if (ctx->json || !json_is_array(keys)) {
		cli_print_response(ctx, &resp);
	} else {
		fprintf(ctx->out, "%-36s  %s\n", "ID", "NAME");
		json_array_foreach(keys, i, k) {
			const char *id = json_string_value(k);
			json_t *ki = id != NULL ? json_object_get(info, id) : NULL;
			const char *name = json_string_value(json_object_get(ki, "issuer_name"));
			fprintf(ctx->out, "%-36s  %s\n", id != NULL ? id : "?", name != NULL ? name : "");
		}
	}
	ret = 0;
out:
	free(path);
	cli_response_clear(&resp);
	return ret;
}

int cli_cmd_issuer_read(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err)
{
	char *sub = sg_xasprintf("issuer/%s", a->pos.v[0]);
	int ret = pki_simple(ctx, a, "GET", sub, NULL, err);

	free(sub);
	return ret;
}

/* POSTs mount/sub with body and, when --out is given, writes field of the answer there. */
static int post_and_save(struct cli_ctx *ctx, const struct cli_args *a, const char *sub, json_t *body,
                         const char *field, bool with_chain, struct sg_err *err)
{
	struct cli_response resp = {0};
	const char *out_file = cli_flag(a, "out"), *v;
	char *path = sg_xasprintf("%s/%s", mount_of(a), sub), *text = NULL, *chain = NULL;
	json_t *d;
	int ret = -1;

	if (cli_client_call(ctx->client, "POST", path, body, &resp, err) != 0)
		goto out;
	if (out_file != NULL) {
		d = cli_response_data(&resp);
		v = d != NULL ? json_string_value(json_object_get(d, field)) : NULL;
		if (v == NULL) {
			sg_err_set(err, SG_INTERNAL, "the server's answer has no %s", field);
			goto out;
		}
		chain = with_chain ? chain_text(d) : NULL;
		text = sg_xasprintf("%s%s%s", v, chain != NULL ? "\n" : "", chain != NULL ? chain : "");
		if (write_text(out_file, text, 0644, err) != 0)
			goto out;
		cli_print_warnings(&resp);
		if (ctx->json) {
			cli_print_response(ctx, &resp);
		} else {
			json_t *id = json_object_get(d, "issuer_id");
			if (json_is_string(id))
				fprintf(ctx->out, "issuer_id    %s\n", json_string_value(id));
			fprintf(ctx->out, "%s written to %s\n", field, out_file);
		}
	} else {
		cli_print_response(ctx, &resp);
	}
	ret = 0;
out:
	free(path);
	free(text);
	free(chain);
	cli_response_clear(&resp);
	return ret;
}

static int type_of(struct cli_ctx *ctx, const struct cli_args *a, const char **type, struct sg_err *err)
{
	*type = cli_flag(a, "type");
	if (*type == NULL)
		*type = "internal";
	if (strcmp(*type, "internal") != 0 && strcmp(*type, "exported") != 0 && strcmp(*type, "existing") != 0) {
		ctx->usage = true;
		return sg_err_set(err, SG_BAD_REQUEST, "--type is internal, exported or existing, not \"%s\"", *type);
	}
	return 0;
}

int cli_cmd_issuer_root(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err)
{
	json_t *body = NULL;
	const char *type;
	char *sub = NULL;
	int ret = -1;

	if (type_of(ctx, a, &type, err) != 0)
		goto out;
	if (cli_kv_parse(&a->pos, 0, &body, err) != 0) {
		ctx->usage = true;
		goto out;
	}
	set_flag_str(body, "common_name", a, "cn");
	set_flag_str(body, "ttl", a, "ttl");
	set_flag_str(body, "issuer_name", a, "name");
	sub = sg_xasprintf("root/generate/%s", type);
	ret = post_and_save(ctx, a, sub, body, "certificate", false, err);
out:
	free(sub);
	json_decref(body);
	return ret;
}

int cli_cmd_issuer_intermediate(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err)
{
	json_t *body = NULL;
	const char *type;
	char *sub = NULL;
	int ret = -1;

	if (type_of(ctx, a, &type, err) != 0)
		goto out;
	if (cli_kv_parse(&a->pos, 0, &body, err) != 0) {
		ctx->usage = true;
		goto out;
	}
	set_flag_str(body, "common_name", a, "cn");
	sub = sg_xasprintf("intermediate/generate/%s", type);
	ret = post_and_save(ctx, a, sub, body, "csr", false, err);
out:
	free(sub);
	json_decref(body);
	return ret;
}

int cli_cmd_issuer_sign_intermediate(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err)
{
	const char *csr_file = cli_flag(a, "csr"), *issuer = cli_flag(a, "issuer");
	json_t *body = NULL;
	char *csr = NULL, *sub = NULL;
	int ret = -1;

	if (csr_file == NULL) {
		ctx->usage = true;
		sg_err_set(err, SG_BAD_REQUEST, "--csr FILE is required");
		goto out;
	}
	if (cli_kv_parse(&a->pos, 0, &body, err) != 0) {
		ctx->usage = true;
		goto out;
	}
	if ((csr = cli_file_read(csr_file, err)) == NULL)
		goto out;
	json_object_set_new(body, "csr", json_string(csr));
	set_flag_str(body, "common_name", a, "cn");
	set_flag_str(body, "ttl", a, "ttl");
	sub = issuer != NULL ? sg_xasprintf("issuer/%s/sign-intermediate", issuer)
	                     : sg_xstrdup("root/sign-intermediate");
	ret = post_and_save(ctx, a, sub, body, "certificate", true, err);
out:
	free(csr);
	free(sub);
	json_decref(body);
	return ret;
}

int cli_cmd_issuer_set_signed(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err)
{
	const char *file = cli_flag(a, "cert");
	json_t *body = NULL;
	char *pem = NULL;
	int ret = -1;

	if (file == NULL) {
		ctx->usage = true;
		return sg_err_set(err, SG_BAD_REQUEST, "--cert FILE is required");
	}
	if ((pem = cli_file_read(file, err)) == NULL)
		goto out;
	body = json_pack("{s:s}", "certificate", pem);
	if (body == NULL) {
		sg_err_set(err, SG_BAD_PEM, "%s is not text", file);
		goto out;
	}
	ret = pki_simple(ctx, a, "POST", "intermediate/set-signed", body, err);
out:
	free(pem);
	json_decref(body);
	return ret;
}

int cli_cmd_crl_rotate(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err)
{
	return pki_simple(ctx, a, "GET", "crl/rotate", NULL, err);
}

int cli_cmd_tidy(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err)
{
	json_t *body = NULL;
	int ret;

	if (cli_kv_parse(&a->pos, 0, &body, err) != 0) {
		ctx->usage = true;
		return -1;
	}
	/* Vault's tidy does nothing unless told what to tidy; the CLI's default is the usual pair. */
	if (json_object_get(body, "tidy_cert_store") == NULL)
		json_object_set_new(body, "tidy_cert_store", json_true());
	if (json_object_get(body, "tidy_revoked_certs") == NULL)
		json_object_set_new(body, "tidy_revoked_certs", json_true());
	ret = pki_simple(ctx, a, "POST", "tidy", body, err);
	json_decref(body);
	return ret;
}
