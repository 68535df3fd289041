/* The CLI's command table, argument parser, dispatch and shared output helpers. */
#include "cli/cli.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* clang-format off */
const struct cli_cmd cli_cmds[] = {
	{"login", "[TOKEN] [K=V ...]", "authenticate and keep the token in ~/.sigil-token (mode 0600)",
	 "sigil login -method=approle role_id=... secret_id=...", 0, -1,
	 {{"method", "METHOD", "token (default), approle, oidc, cert or kubernetes"},
	  {"path", "MOUNT", "auth mount path (default: the method's name)"},
	  {"no-store", NULL, "print the token instead of storing it"}},
	 cli_cmd_login},
	{"logout", "", "remove the stored token", "sigil logout", 0, 0, {{0}}, cli_cmd_logout},
	{"read", "PATH [K=V ...]", "read a path (GET); K=V become query parameters", "sigil read pki/roles/web", 1, -1,
	 {{0}}, cli_cmd_read},
	{"write", "PATH [K=V ...]", "write a path (POST) with K=V fields; K=@FILE reads a file",
	 "sigil write pki/roles/web allowed_domains=example.com allow_subdomains=true", 1, -1, {{"force", NULL,
	 "allow a write without fields"}}, cli_cmd_write},
	{"list", "PATH", "list the keys under a path (LIST)", "sigil list pki/roles", 1, 1, {{0}}, cli_cmd_list},
	{"delete", "PATH", "delete a path (DELETE)", "sigil delete pki/roles/web", 1, 1, {{0}}, cli_cmd_delete},
	{"status", "", "show the server's health (sys/health)", "sigil status", 0, 0, {{0}}, cli_cmd_status},
	{"issue", "ROLE", "issue a certificate and key from a role",
	 "sigil issue web --cn www.example.com --san api.example.com --ttl 15m --out ./www", 1, 1,
	 {{"cn", "NAME", "common name"},
	  {"san", "NAME", "DNS or email subject alternative name (repeatable)"},
	  {"ip", "ADDR", "IP subject alternative name (repeatable)"},
	  {"uri", "URI", "URI subject alternative name (repeatable)"},
	  {"ttl", "DURATION", "requested lifetime, e.g. 15m, 24h"},
	  {"key-type", "TYPE", "rsa, ec or ed25519 when the role allows any"},
	  {"key-bits", "BITS", "key size when the role allows any"},
	  {"issuer", "REF", "issue from this issuer instead of the role's"},
	  {"out", "PREFIX", "write PREFIX.crt, PREFIX.key (0600) and PREFIX.chain.pem"}},
	 cli_cmd_issue},
	{"sign", "ROLE", "sign a CSR with a role", "sigil sign web --csr www.csr --out ./www", 1, 1,
	 {{"csr", "FILE", "PEM certificate request"},
	  {"cn", "NAME", "common name (default: the CSR's)"},
	  {"san", "NAME", "DNS or email subject alternative name (repeatable)"},
	  {"ip", "ADDR", "IP subject alternative name (repeatable)"},
	  {"ttl", "DURATION", "requested lifetime"},
	  {"issuer", "REF", "sign with this issuer instead of the role's"},
	  {"out", "PREFIX", "write PREFIX.crt and PREFIX.chain.pem"}},
	 cli_cmd_sign},
	{"revoke", "[SERIAL|LEASE_ID]", "revoke a certificate by serial, by lease id, or every lease of a role",
	 "sigil revoke 39:dd:2e:90:b7:23:1f:8d --reason keyCompromise", 0, 1,
	 {{"role", "ROLE", "revoke every lease issued or signed through ROLE (sudo)"},
	  {"reason", "REASON", "revocation reason passed to the server"}},
	 cli_cmd_revoke},
	{"certs", "", "list certificates with their expiry", "sigil certs --expiring 24h", 0, 0,
	 {{"role", "ROLE", "only certificates issued through ROLE"},
	  {"expiring", "DURATION", "only certificates expiring within DURATION"},
	  {"revoked", NULL, "only revoked certificates"}},
	 cli_cmd_certs},
	{"role list", "", "list roles", "sigil role list", 0, 0, {{0}}, cli_cmd_role_list},
	{"role read", "NAME", "show a role", "sigil role read web", 1, 1, {{0}}, cli_cmd_role_read},
	{"role write", "NAME [K=V ...]", "create or update a role",
	 "sigil role write web allowed_domains=example.com allow_subdomains=true max_ttl=72h", 1, -1, {{0}},
	 cli_cmd_role_write},
	{"role delete", "NAME", "delete a role", "sigil role delete web", 1, 1, {{0}}, cli_cmd_role_delete},
	{"issuer list", "", "list issuers", "sigil issuer list", 0, 0, {{0}}, cli_cmd_issuer_list},
	{"issuer read", "REF", "show an issuer", "sigil issuer read default", 1, 1, {{0}}, cli_cmd_issuer_read},
	{"issuer generate-root", "[K=V ...]", "generate a self-signed root issuer",
	 "sigil issuer generate-root --cn \"Example Root\" --ttl 87600h", 0, -1,
	 {{"cn", "NAME", "common name"},
	  {"ttl", "DURATION", "lifetime"},
	  {"type", "TYPE", "internal (default) or exported (prints the key)"},
	  {"name", "NAME", "issuer_name"},
	  {"out", "FILE", "write the certificate to FILE"}},
	 cli_cmd_issuer_root},
	{"issuer generate-intermediate", "[K=V ...]", "generate an intermediate key and CSR",
	 "sigil issuer generate-intermediate --cn \"Example Intermediate\" --out int.csr", 0, -1,
	 {{"cn", "NAME", "common name"},
	  {"type", "TYPE", "internal (default) or exported"},
	  {"out", "FILE", "write the CSR to FILE"}},
	 cli_cmd_issuer_intermediate},
	{"issuer sign-intermediate", "[K=V ...]", "sign an intermediate CSR with an issuer of this mount",
	 "sigil issuer sign-intermediate --csr int.csr --ttl 43800h --out int.crt", 0, -1,
	 {{"csr", "FILE", "PEM certificate request"},
	  {"cn", "NAME", "common name (default: the CSR's)"},
	  {"ttl", "DURATION", "lifetime"},
	  {"issuer", "REF", "signing issuer (default: the mount's default)"},
	  {"out", "FILE", "write the certificate chain to FILE"}},
	 cli_cmd_issuer_sign_intermediate},
	{"issuer set-signed", "", "install the signed intermediate certificate",
	 "sigil issuer set-signed --cert int.crt", 0, 0, {{"cert", "FILE", "PEM certificate (and chain)"}},
	 cli_cmd_issuer_set_signed},
	{"crl rotate", "", "rebuild the CRL now", "sigil crl rotate", 0, 0, {{0}}, cli_cmd_crl_rotate},
	{"tidy", "[K=V ...]", "remove expired certificates and revocations from storage",
	 "sigil tidy safety_buffer=72h", 0, -1, {{0}}, cli_cmd_tidy},
	{"audit verify", "FILE", "check an audit log's hash chain", "sigil audit verify /var/log/sigil/audit.log", 1, 1,
	 {{0}}, NULL},
	{"server", "", "run the Sigil server (-dev, or -config FILE)", "sigil server -config /etc/sigil/config.json",
	 0, -1, {{0}}, NULL},
	{"agent", "", "run the renewal agent (-config FILE)", "sigil agent -config /etc/sigil/agent.json", 0, -1,
	 {{0}}, NULL},
	{"routes", "", "print every API route as JSON", "sigil routes", 0, 0, {{0}}, NULL},
	{"completion", "SHELL", "print a shell completion script (bash)", "source <(sigil completion bash)", 1, 1,
	 {{0}}, cli_cmd_completion},
	{"man", "", "print the man page (roff)", "sigil man > sigil.1", 0, 0, {{0}}, cli_cmd_man},
	{NULL, NULL, NULL, NULL, 0, 0, {{0}}, NULL},
};
/* clang-format on */

/* Flags every command accepts. */
static const struct cli_flag global_flags[] = {
	{"format", "FORMAT", "output: table (default) or json"},
	{"address", "URL", "server address (default: SIGIL_ADDR, VAULT_ADDR)"},
	{"mount", "PATH", "PKI mount path (default: pki)"},
	{"help", NULL, "show this help"},
};

const struct cli_cmd *cli_cmd_find(int argc, char **argv, int *used)
{
	const struct cli_cmd *c;
	size_t n;

	if (argc < 1)
		return NULL;
	if (argc >= 2) {
		for (c = cli_cmds; c->name != NULL; c++) {
			n = strlen(argv[0]);
			if (strncmp(c->name, argv[0], n) == 0 && c->name[n] == ' ' && strcmp(c->name + n + 1, argv[1]) == 0) {
				*used = 2;
				return c;
			}
		}
	}
	for (c = cli_cmds; c->name != NULL; c++) {
		if (strcmp(c->name, argv[0]) == 0) {
			*used = 1;
			return c;
		}
	}
	return NULL;
}

/* True when some two-word command starts with word (e.g. "role"). */
static bool is_group(const char *word)
{
	size_t n = strlen(word);

	for (const struct cli_cmd *c = cli_cmds; c->name != NULL; c++)
		if (strncmp(c->name, word, n) == 0 && c->name[n] == ' ')
			return true;
	return false;
}

static int flag_index(const struct cli_cmd *cmd, const char *name, size_t n)
{
	for (int i = 0; i < CLI_MAX_FLAGS && cmd->flags[i].name != NULL; i++)
		if (strlen(cmd->flags[i].name) == n && strncmp(cmd->flags[i].name, name, n) == 0)
			return i;
	return -1;
}

static bool parse_bool(const char *s, bool *out)
{
	if (strcmp(s, "true") == 0 || strcmp(s, "1") == 0) {
		*out = true;
		return true;
	}
	if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0) {
		*out = false;
		return true;
	}
	return false;
}

int cli_args_parse(const struct cli_cmd *cmd, int argc, char **argv, struct cli_args *a, struct sg_err *err)
{
	bool flags_done = false;

	memset(a, 0, sizeof(*a));
	a->cmd = cmd;
	a->format = "table";
	if (argc > CLI_MAX_ARGS)
		return sg_err_set(err, SG_BAD_REQUEST, "too many arguments (at most %d)", CLI_MAX_ARGS);
	for (int i = 0; i < argc; i++) {
		const char *w = argv[i], *name, *eq, *val = NULL;
		size_t n;
		int fi;
		bool b;

		if (flags_done || w[0] != '-' || w[1] == '\0') {
			sg_strlist_add(&a->pos, w);
			continue;
		}
		if (strcmp(w, "--") == 0) {
			flags_done = true;
			continue;
		}
		name = w + (w[1] == '-' ? 2 : 1);
		eq = strchr(name, '=');
		n = eq != NULL ? (size_t)(eq - name) : strlen(name);
		if (eq != NULL)
			val = eq + 1;
		if ((n == 4 && strncmp(name, "help", 4) == 0) || (n == 1 && name[0] == 'h')) {
			a->help = true;
			continue;
		}
		if ((n == 6 && strncmp(name, "format", 6) == 0) || (n == 7 && strncmp(name, "address", 7) == 0) ||
		    (n == 5 && strncmp(name, "mount", 5) == 0)) {
			if (val == NULL) {
				if (i + 1 >= argc)
					return sg_err_set(err, SG_BAD_REQUEST, "flag -%.*s needs a value", (int)n, name);
				val = argv[++i];
			}
			if (name[0] == 'f') {
				if (strcmp(val, "table") != 0 && strcmp(val, "json") != 0)
					return sg_err_set(err, SG_BAD_REQUEST, "-format must be table or json, not \"%s\"",
					                  val);
				a->format = val;
			} else if (name[0] == 'a') {
				a->address = val;
			} else {
				a->mount = val;
			}
			continue;
		}
		fi = flag_index(cmd, name, n);
		if (fi < 0)
			return sg_err_set(err, SG_BAD_REQUEST, "unknown flag -%.*s for \"sigil %s\"", (int)n, name,
			                  cmd->name);
		if (cmd->flags[fi].arg == NULL) {
			b = true;
			if (val != NULL && !parse_bool(val, &b))
				return sg_err_set(err, SG_BAD_REQUEST, "flag -%.*s takes true or false", (int)n, name);
			a->set[fi] = b;
			continue;
		}
		if (val == NULL) {
			if (i + 1 >= argc)
				return sg_err_set(err, SG_BAD_REQUEST, "flag -%.*s needs a value (%s)", (int)n, name,
				                  cmd->flags[fi].arg);
			val = argv[++i];
		}
		a->set[fi] = true;
		sg_strlist_add(&a->vals[fi], val);
	}
	if (a->help)
		return 0;
	if ((int)a->pos.n < cmd->min_pos)
		return sg_err_set(err, SG_BAD_REQUEST, "\"sigil %s\" needs %s", cmd->name, cmd->synopsis);
	if (cmd->max_pos >= 0 && (int)a->pos.n > cmd->max_pos)
		return sg_err_set(err, SG_BAD_REQUEST, "\"sigil %s\" takes %s%s, got unexpected \"%s\"", cmd->name,
		                  cmd->synopsis[0] ? "only " : "no arguments", cmd->synopsis,
		                  a->pos.v[cmd->max_pos]);
	return 0;
}

void cli_args_clear(struct cli_args *a)
{
	if (a == NULL)
		return;
	sg_strlist_clear(&a->pos);
	free(a->pos.v);
	for (int i = 0; i < CLI_MAX_FLAGS; i++) {
		sg_strlist_clear(&a->vals[i]);
		free(a->vals[i].v);
	}
	memset(a, 0, sizeof(*a));
}

const char *cli_flag(const struct cli_args *a, const char *name)
{
	int i = flag_index(a->cmd, name, strlen(name));

	if (i < 0 || a->vals[i].n == 0)
		return NULL;
	return a->vals[i].v[a->vals[i].n - 1];
}

const struct sg_strlist *cli_flag_all(const struct cli_args *a, const char *name)
{
	static const struct sg_strlist empty = {0};
	int i = flag_index(a->cmd, name, strlen(name));

	return i < 0 ? &empty : &a->vals[i];
}

bool cli_flag_set(const struct cli_args *a, const char *name)
{
	int i = flag_index(a->cmd, name, strlen(name));

	return i >= 0 && a->set[i];
}

char *cli_file_read(const char *path, struct sg_err *err)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	char *s;

	if (strcmp(path, "-") == 0) {
		size_t cap = 4096, got;
		buf = sg_xmalloc(cap);
		while ((got = fread(buf + len, 1, cap - len, stdin)) > 0) {
			len += got;
			if (len > CLI_MAX_FILE_BYTES) {
				free(buf);
				sg_err_set(err, SG_TOO_LARGE, "stdin larger than %u bytes", CLI_MAX_FILE_BYTES);
				return NULL;
			}
			if (len == cap) {
				cap *= 2;
				buf = sg_xrealloc(buf, cap);
			}
		}
	} else if (sg_file_read(path, CLI_MAX_FILE_BYTES, &buf, &len, err) != 0) {
		return NULL;
	}
	s = sg_xmalloc(len + 1);
	memcpy(s, buf, len);
	s[len] = '\0';
	free(buf);
	return s;
}

int cli_kv_parse(const struct sg_strlist *l, size_t from, json_t **out, struct sg_err *err)
{
	json_t *obj = json_object();
	int ret = -1;

	for (size_t i = from; i < l->n; i++) {
		const char *w = l->v[i], *eq = strchr(w, '=');
		char *key = NULL, *file = NULL;
		json_t *v, *prev;

		if (eq == NULL || eq == w) {
			sg_err_set(err, SG_BAD_REQUEST, "expected K=V, got \"%s\"", w);
			goto out;
		}
		key = sg_xstrndup(w, (size_t)(eq - w));
		if (eq[1] == '@' || strcmp(eq + 1, "-") == 0) {
			if ((file = cli_file_read(eq[1] == '@' ? eq + 2 : "-", err)) == NULL) {
				free(key);
				goto out;
			}
			v = json_string(file);
			OPENSSL_cleanse(file, strlen(file)); /* may be a secret_id or a key */
			free(file);
			if (v == NULL) {
				free(key);
				sg_err_set(err, SG_BAD_REQUEST, "%s: file is not UTF-8 text", eq + 2);
				goto out;
			}
		} else {
			v = json_string(eq + 1);
			if (v == NULL) {
				sg_err_set(err, SG_BAD_REQUEST, "value of %s is not UTF-8", key);
				free(key);
				goto out;
			}
		}
		prev = json_object_get(obj, key);
		if (prev == NULL) {
			json_object_set_new(obj, key, v);
		} else if (json_is_array(prev)) {
			json_array_append_new(prev, v);
		} else {
			json_t *arr = json_array();
			json_array_append(arr, prev);
			json_array_append_new(arr, v);
			json_object_set_new(obj, key, arr);
		}
		free(key);
	}
	*out = obj;
	obj = NULL;
	ret = 0;
out:
	json_decref(obj);
	return ret;
}

void cli_reltime(int64_t delta, char *buf, size_t len)
{
	int64_t a = delta < 0 ? -delta : delta;
	char span[32];

	if (a < 60)
		snprintf(span, sizeof(span), "%llds", (long long)a);
	else if (a < 3600)
		snprintf(span, sizeof(span), "%lldm", (long long)(a / 60));
	else if (a < 86400)
		snprintf(span, sizeof(span), "%lldh%02lldm", (long long)(a / 3600), (long long)(a % 3600 / 60));
	else
		snprintf(span, sizeof(span), "%lldd%lldh", (long long)(a / 86400), (long long)(a % 86400 / 3600));
	if (delta == 0)
		snprintf(buf, len, "now");
	else if (delta > 0)
		snprintf(buf, len, "in %s", span);
	else
		snprintf(buf, len, "%s ago", span);
}

/* ---- token helper ---- */

char *cli_token_path(void)
{
	const char *home = getenv("HOME");

	if (home == NULL || *home == '\0')
		return NULL;
	return sg_xasprintf("%s/%s", home, CLI_TOKEN_FILE);
}

int cli_token_store(const char *token, struct sg_err *err)
{
	char *path = cli_token_path();
	int ret;

	if (path == NULL)
		return sg_err_set(err, SG_BAD_REQUEST, "HOME is not set: nowhere to keep the token");
	ret = sg_file_write_atomic(path, token, strlen(token), 0600, err);
	free(path);
	return ret;
}

char *cli_token_load(void)
{
	char *path = cli_token_path(), *tok = NULL;
	unsigned char *buf = NULL;
	size_t len = 0;
	struct sg_err e;

	sg_err_init(&e);
	if (path == NULL || sg_file_read(path, 4096, &buf, &len, &e) != 0)
		goto out;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
		len--;
	if (len > 0)
		tok = sg_xstrndup((const char *)buf, len);
	OPENSSL_cleanse(buf, len);
out:
	free(buf);
	free(path);
	return tok;
}

int cli_token_erase(struct sg_err *err)
{
	char *path = cli_token_path();
	int ret = 0;

	if (path != NULL && unlink(path) != 0 && errno != ENOENT)
		ret = sg_err_set(err, SG_STORAGE, "cannot remove %s: %s", path, strerror(errno));
	free(path);
	return ret;
}

/* ---- output ---- */

void cli_print_value(FILE *f, const json_t *v)
{
	char *s;

	if (json_is_string(v)) {
		fputs(json_string_value(v), f);
	} else if (json_is_null(v) || v == NULL) {
		fputs("n/a", f);
	} else if (json_is_array(v) && json_array_size(v) > 0 && json_is_string(json_array_get(v, 0))) {
		size_t i;
		json_t *e;
		fputc('[', f);
		json_array_foreach(v, i, e) {
			if (i > 0)
				fputc(' ', f);
			if (json_is_string(e))
				fputs(json_string_value(e), f);
			else if ((s = json_dumps(e, JSON_COMPACT | JSON_ENCODE_ANY)) != NULL) {
				fputs(s, f);
				free(s);
			}
		}
		fputc(']', f);
	} else if ((s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY)) != NULL) {
		fputs(s, f);
		free(s);
	}
}

void cli_print_kv_table(FILE *f, const json_t *obj)
{
	const char *k;
	json_t *v;
	size_t w = 3;

	json_object_foreach((json_t *)obj, k, v) {
		if (strlen(k) > w)
			w = strlen(k);
	}
	fprintf(f, "%-*s    %s\n%-*s    %s\n", (int)w, "Key", "Value", (int)w, "---", "-----");
	json_object_foreach((json_t *)obj, k, v) {
		fprintf(f, "%-*s    ", (int)w, k);
		cli_print_value(f, v);
		fputc('\n', f);
	}
}

void cli_print_warnings(const struct cli_response *resp)
{
	for (size_t i = 0; i < resp->warnings.n; i++)
		fprintf(stderr, "WARNING: %s\n", resp->warnings.v[i]);
}

void cli_print_response(struct cli_ctx *ctx, const struct cli_response *resp)
{
	json_t *data = cli_response_data(resp), *auth = cli_response_auth(resp), *keys;

	cli_print_warnings(resp);
	if (ctx->json) {
		if (resp->json != NULL)
			json_dumpf(resp->json, ctx->out, JSON_INDENT(2) | JSON_ENCODE_ANY);
		else
			fputs(resp->raw != NULL ? resp->raw : "", ctx->out);
		fputc('\n', ctx->out);
		return;
	}
	if (data != NULL && (keys = json_object_get(data, "keys")) != NULL && json_is_array(keys) &&
	    json_object_size(data) <= 2) {
		size_t i;
		json_t *k;
		fprintf(ctx->out, "Keys\n----\n");
		json_array_foreach(keys, i, k) {
			cli_print_value(ctx->out, k);
			fputc('\n', ctx->out);
		}
		return;
	}
	if (auth != NULL) {
		cli_print_kv_table(ctx->out, auth);
		return;
	}
	if (data != NULL) {
		cli_print_kv_table(ctx->out, data);
		return;
	}
	if (resp->json == NULL && resp->raw_len > 0) {
		fputs(resp->raw, ctx->out);
		if (resp->raw[resp->raw_len - 1] != '\n')
			fputc('\n', ctx->out);
		return;
	}
	fprintf(ctx->out, "Success! (HTTP %ld)\n", resp->status);
}

/* ---- help, man, completion ---- */

void cli_usage(FILE *f)
{
	fprintf(f, "usage: sigil <command> [flags] [args]\n\ncommands:\n");
	for (const struct cli_cmd *c = cli_cmds; c->name != NULL; c++)
		fprintf(f, "  %-30s %s\n", c->name, c->summary);
	fprintf(f, "\nRun \"sigil <command> -help\" for a command's flags and an example.\n"
	           "Environment: SIGIL_ADDR, SIGIL_TOKEN, SIGIL_CACERT (else VAULT_ADDR, VAULT_TOKEN, VAULT_CACERT).\n"
	           "Exit status: 0 ok, 1 error, 2 usage.\n");
}

static void flag_line(FILE *f, const struct cli_flag *fl)
{
	char left[64];

	snprintf(left, sizeof(left), "-%s%s%s", fl->name, fl->arg ? " " : "", fl->arg ? fl->arg : "");
	fprintf(f, "  %-24s %s\n", left, fl->help);
}

void cli_cmd_help(FILE *f, const struct cli_cmd *cmd)
{
	fprintf(f, "usage: sigil %s%s%s%s\n\n%s\n", cmd->name, cmd->run ? " [flags]" : "", cmd->synopsis[0] ? " " : "",
	        cmd->synopsis, cmd->summary);
	if (cmd->run != NULL) {
		fprintf(f, "\nflags:\n");
		for (int i = 0; i < CLI_MAX_FLAGS && cmd->flags[i].name != NULL; i++)
			flag_line(f, &cmd->flags[i]);
		for (size_t i = 0; i < sizeof(global_flags) / sizeof(global_flags[0]); i++)
			flag_line(f, &global_flags[i]);
	}
	fprintf(f, "\nexample:\n  %s\n", cmd->example);
}

/* roff needs '-' as "\-" and a leading '.' or '\'' escaped. */
static void roff(FILE *f, const char *s)
{
	if (*s == '.' || *s == '\'')
		fputs("\\&", f);
	for (; *s; s++) {
		if (*s == '-')
			fputs("\\-", f);
		else if (*s == '\\')
			fputs("\\e", f);
		else
			fputc(*s, f);
	}
}

void cli_man_write(FILE *f)
{
	fputs(".TH SIGIL 1 \"\" \"Sigil\" \"User Commands\"\n.SH NAME\nsigil \\- private PKI server, agent and "
	      "operator CLI\n.SH SYNOPSIS\n.B sigil\n.I command\n[\\fIflags\\fR] [\\fIargs\\fR]\n"
	      ".SH DESCRIPTION\nThe operator commands talk to a Sigil (or Vault-compatible) server through its HTTP "
	      "API. Flags take one or two dashes and either \\fB\\-flag=value\\fR or \\fB\\-flag value\\fR.\n"
	      ".SH COMMANDS\n",
	      f);
	for (const struct cli_cmd *c = cli_cmds; c->name != NULL; c++) {
		fputs(".SS \"", f);
		roff(f, c->name);
		if (c->synopsis[0]) {
			fputc(' ', f);
			roff(f, c->synopsis);
		}
		fputs("\"\n", f);
		roff(f, c->summary);
		fputs(".\n", f);
		for (int i = 0; i < CLI_MAX_FLAGS && c->flags[i].name != NULL; i++) {
			fputs(".TP\n.B \\-", f);
			roff(f, c->flags[i].name);
			if (c->flags[i].arg) {
				fputs(" \\fI", f);
				roff(f, c->flags[i].arg);
				fputs("\\fR", f);
			}
			fputc('\n', f);
			roff(f, c->flags[i].help);
			fputc('\n', f);
		}
		fputs(".PP\nExample:\n.RS\n.nf\n", f);
		roff(f, c->example);
		fputs("\n.fi\n.RE\n", f);
	}
	fputs(".SH GLOBAL FLAGS\n", f);
	for (size_t i = 0; i < sizeof(global_flags) / sizeof(global_flags[0]); i++) {
		fputs(".TP\n.B \\-", f);
		roff(f, global_flags[i].name);
		fputc('\n', f);
		roff(f, global_flags[i].help);
		fputc('\n', f);
	}
	fputs(".SH ENVIRONMENT\n.TP\n.B SIGIL_ADDR\nserver address (fallback VAULT_ADDR; default " CLI_DEFAULT_ADDR
	      ")\n.TP\n.B SIGIL_TOKEN\ntoken (fallback VAULT_TOKEN; else the token file)\n.TP\n.B SIGIL_CACERT\nCA "
	      "bundle to verify the server (fallback VAULT_CACERT)\n.TP\n.B SIGIL_CLIENT_CERT, SIGIL_CLIENT_KEY\nTLS "
	      "client certificate for \\-method=cert\n.SH FILES\n.TP\n.I ~/.sigil\\-token\nthe token kept by "
	      "\\fBsigil login\\fR, mode 0600\n.SH EXIT STATUS\n0 success, 1 error (server unreachable, request "
	      "refused), 2 usage error.\n",
	      f);
}

void cli_completion_bash(FILE *f)
{
	const struct cli_cmd *c, *d;

	fputs("# bash completion for sigil (generated by `sigil completion bash`)\n_sigil() {\n"
	      "  local cur=\"${COMP_WORDS[COMP_CWORD]}\" words=\"\"\n"
	      "  if [ \"$COMP_CWORD\" -eq 1 ]; then\n    words=\"",
	      f);
	/* First words, each once. */
	for (c = cli_cmds; c->name != NULL; c++) {
		size_t n = strcspn(c->name, " ");
		bool seen = false;
		for (d = cli_cmds; d != c; d++)
			if (strncmp(d->name, c->name, n) == 0 && (d->name[n] == ' ' || d->name[n] == '\0'))
				seen = true;
		if (!seen)
			fprintf(f, "%s%.*s", c == cli_cmds ? "" : " ", (int)n, c->name);
	}
	fputs("\"\n  else\n    case \"${COMP_WORDS[1]}\" in\n", f);
	for (c = cli_cmds; c->name != NULL; c++) {
		size_t n = strcspn(c->name, " ");
		bool first = true;
		if (c->name[n] != '\0') {
			/* Group: the second word, then that command's flags. */
			bool seen = false;
			for (d = cli_cmds; d != c; d++)
				if (strncmp(d->name, c->name, n + 1) == 0)
					seen = true;
			if (seen)
				continue;
			fprintf(f, "      %.*s)\n        if [ \"$COMP_CWORD\" -eq 2 ]; then words=\"", (int)n, c->name);
			for (d = c; d->name != NULL; d++)
				if (strncmp(d->name, c->name, n + 1) == 0) {
					fprintf(f, "%s%s", first ? "" : " ", d->name + n + 1);
					first = false;
				}
			fputs("\"\n        else case \"${COMP_WORDS[2]}\" in\n", f);
			for (d = c; d->name != NULL; d++) {
				if (strncmp(d->name, c->name, n + 1) != 0)
					continue;
				fprintf(f, "          %s) words=\"", d->name + n + 1);
				for (int i = 0; i < CLI_MAX_FLAGS && d->flags[i].name != NULL; i++)
					fprintf(f, "--%s ", d->flags[i].name);
				fputs("--format --address --mount --help\";;\n", f);
			}
			fputs("        esac; fi;;\n", f);
			continue;
		}
		fprintf(f, "      %s) words=\"", c->name);
		for (int i = 0; i < CLI_MAX_FLAGS && c->flags[i].name != NULL; i++)
			fprintf(f, "--%s ", c->flags[i].name);
		if (strcmp(c->name, "login") == 0)
			fputs("-method=token -method=approle -method=oidc -method=cert -method=kubernetes ", f);
		if (strcmp(c->name, "completion") == 0)
			fputs("bash ", f);
		fputs("--format --address --mount --help\";;\n", f);
	}
	fputs("    esac\n  fi\n  COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n}\ncomplete -o default -F _sigil "
	      "sigil\n",
	      f);
}

int cli_cmd_man(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err)
{
	(void)a;
	(void)err;
	cli_man_write(ctx->out);
	return 0;
}

int cli_cmd_completion(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err)
{
	if (strcmp(a->pos.v[0], "bash") != 0) {
		ctx->usage = true;
		return sg_err_set(err, SG_BAD_REQUEST, "only bash completion is generated, not \"%s\"", a->pos.v[0]);
	}
	cli_completion_bash(ctx->out);
	return 0;
}

/* ---- dispatch ---- */

/* A 403 has two usual causes; ask the server which one this is. */
static void explain_denied(struct cli_client *c, struct sg_err *err)
{
	struct cli_response r = {0};
	struct sg_err e;

	sg_err_init(&e);
	if (c->token == NULL) {
		fprintf(stderr, "Error: permission denied: no token (set SIGIL_TOKEN or run \"sigil login\")\n");
		return;
	}
	if (cli_client_request(c, "GET", "auth/token/lookup-self", NULL, &r, &e) == 0 && r.status == 403)
		fprintf(stderr, "Error: the token is invalid or expired (%s); run \"sigil login\"\n", err->detail);
	else
		fprintf(stderr, "Error: permission denied: the token's policies do not allow this request (%s)\n",
		        err->detail);
	cli_response_clear(&r);
}

int cli_main(int argc, char **argv)
{
	const struct cli_cmd *cmd;
	struct cli_args a;
	struct cli_ctx ctx = {0};
	struct sg_err err;
	int used = 0, rc = CLI_EXIT_ERROR;
	char *tok;

	sg_err_init(&err);
	memset(&a, 0, sizeof(a));
	if (argc < 2) {
		cli_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "-help") == 0 ||
	    strcmp(argv[1], "--help") == 0) {
		if (argc > 2 && (cmd = cli_cmd_find(argc - 2, argv + 2, &used)) != NULL)
			cli_cmd_help(stdout, cmd);
		else
			cli_usage(stdout);
		return CLI_EXIT_OK;
	}
	cmd = cli_cmd_find(argc - 1, argv + 1, &used);
	if (cmd == NULL) {
		if (is_group(argv[1])) {
			fprintf(stderr, "sigil %s: %s subcommand\n", argv[1], argc > 2 ? "unknown" : "missing");
			for (const struct cli_cmd *c = cli_cmds; c->name != NULL; c++)
				if (strncmp(c->name, argv[1], strlen(argv[1])) == 0 && c->name[strlen(argv[1])] == ' ')
					fprintf(stderr, "  sigil %-28s %s\n", c->name, c->summary);
			return CLI_EXIT_USAGE;
		}
		fprintf(stderr, "sigil: unknown command \"%s\"\n\n", argv[1]);
		cli_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (cmd->run == NULL) {
		fprintf(stderr, "sigil %s is not available in this build\n", cmd->name);
		return CLI_EXIT_ERROR;
	}
	if (cli_args_parse(cmd, argc - 1 - used, argv + 1 + used, &a, &err) != 0) {
		fprintf(stderr, "Error: %s\n\n", err.detail);
		cli_cmd_help(stderr, cmd);
		rc = CLI_EXIT_USAGE;
		goto out;
	}
	if (a.help) {
		cli_cmd_help(stdout, cmd);
		rc = CLI_EXIT_OK;
		goto out;
	}
	ctx.out = stdout;
	ctx.json = strcmp(a.format, "json") == 0;
	ctx.client = cli_client_new();
	cli_client_from_env(ctx.client);
	if (ctx.client->token == NULL && (tok = cli_token_load()) != NULL) {
		cli_client_set_token(ctx.client, tok);
		OPENSSL_cleanse(tok, strlen(tok));
		free(tok);
	}
	if (a.address != NULL)
		cli_client_set_addr(ctx.client, a.address);
	if (cmd->run(&ctx, &a, &err) == 0) {
		rc = CLI_EXIT_OK;
		goto out;
	}
	if (ctx.usage) {
		fprintf(stderr, "Error: %s\n\n", err.detail);
		cli_cmd_help(stderr, cmd);
		rc = CLI_EXIT_USAGE;
		goto out;
	}
	if (err.code == SG_PERMISSION_DENIED && strncmp(err.detail, "403", 3) == 0)
		explain_denied(ctx.client, &err);
	else
		fprintf(stderr, "Error: %s\n", err.detail[0] ? err.detail : sg_err_vault_text(err.code));
	rc = CLI_EXIT_ERROR;
out:
	fflush(stdout);
	cli_client_free(ctx.client);
	cli_args_clear(&a);
	return rc;
}
