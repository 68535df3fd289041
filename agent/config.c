/* agent/config.c: the agent's JSON config file (agent/README.md), checked strictly: unknown keys are errors. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"

/* A key the parser does not know is a typo that would silently change behaviour. */
static int keys_check(const json_t *obj, const char *where, const char *const *known, struct sg_err *err)
{
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)obj, k, v) {
		size_t i;

		(void)v;
		for (i = 0; known[i] != NULL; i++)
			if (strcmp(known[i], k) == 0)
				break;
		if (known[i] == NULL)
			return sg_err_set(err, SG_BAD_REQUEST, "%s: unknown key \"%.64s\"", where, k);
	}
	return 0;
}

static int str_dup(const json_t *obj, const char *key, char **out, struct sg_err *err)
{
	const char *s = NULL;
	int rc = sg_json_str(obj, key, &s, err);

	if (rc == 1 && *s != '\0') {
		free(*out);
		*out = sg_xstrdup(s);
	}
	return rc < 0 ? -1 : 0;
}

/* File modes are octal strings ("0640") as in every Unix tool; a JSON number is taken as already decimal. */
static int mode_get(const json_t *obj, const char *key, int *out, struct sg_err *err)
{
	const json_t *v = json_object_get(obj, key);
	long m;

	if (v == NULL || json_is_null(v))
		return 0;
	if (json_is_integer(v)) {
		m = (long)json_integer_value(v);
	} else if (json_is_string(v)) {
		const char *s = json_string_value(v);
		char *end = NULL;

		errno = 0;
		m = strtol(s, &end, 8);
		if (errno != 0 || end == s || *end != '\0')
			return sg_err_set(err, SG_BAD_REQUEST, "\"%s\" must be an octal mode like \"0640\"", key);
	} else {
		return sg_err_set(err, SG_BAD_REQUEST, "\"%s\" must be an octal mode like \"0640\"", key);
	}
	if (m < 0 || m > 07777)
		return sg_err_set(err, SG_BAD_REQUEST, "\"%s\": mode out of range", key);
	*out = (int)m;
	return 0;
}

static int id_parse(const char *s, long *out)
{
	char *end = NULL;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 0)
		return -1;
	*out = v;
	return 0;
}

static int owner_get(const json_t *c, struct agent_cert_cfg *cc, struct sg_err *err)
{
	const char *s = NULL;
	long id;

	if (sg_json_str(c, "owner", &s, err) < 0)
		return -1;
	if (s != NULL) {
		struct passwd *pw;

		if (id_parse(s, &id) == 0) {
			cc->uid = (uid_t)id;
		} else if ((pw = getpwnam(s)) != NULL) {
			cc->uid = pw->pw_uid;
		} else {
			return sg_err_set(err, SG_BAD_REQUEST, "owner \"%.64s\": no such user", s);
		}
	}
	s = NULL;
	if (sg_json_str(c, "group", &s, err) < 0)
		return -1;
	if (s != NULL) {
		struct group *gr;

		if (id_parse(s, &id) == 0) {
			cc->gid = (gid_t)id;
		} else if ((gr = getgrnam(s)) != NULL) {
			cc->gid = gr->gr_gid;
		} else {
			return sg_err_set(err, SG_BAD_REQUEST, "group \"%.64s\": no such group", s);
		}
	}
	return 0;
}

static int fraction_get(const json_t *obj, const char *key, double lo, double hi, double *out, struct sg_err *err)
{
	const json_t *v = json_object_get(obj, key);

	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_number(v))
		return sg_err_set(err, SG_BAD_REQUEST, "\"%s\" must be a number", key);
	*out = json_number_value(v);
	if (!(*out >= lo && *out <= hi))
		return sg_err_set(err, SG_BAD_REQUEST, "\"%s\" must be between %g and %g", key, lo, hi);
	return 0;
}

static int list_get(const json_t *obj, const char *key, struct sg_strlist *out, struct sg_err *err)
{
	if (sg_json_list(obj, key, out, err) < 0)
		return -1;
	if (out->n > AGENT_MAX_NAMES)
		return sg_err_set(err, SG_BAD_REQUEST, "\"%s\": more than %d entries", key, AGENT_MAX_NAMES);
	return 0;
}

static void cert_cfg_clear(struct agent_cert_cfg *c)
{
	free(c->name);
	free(c->mount);
	free(c->role);
	free(c->common_name);
	sg_strlist_clear(&c->alt_names);
	sg_strlist_clear(&c->ip_sans);
	sg_strlist_clear(&c->uri_sans);
	free(c->ttl);
	free(c->key_type);
	free(c->cert_file);
	free(c->key_file);
	free(c->chain_file);
	free(c->bundle_file);
	free(c->reload_command);
	free(c->pid_file);
	free(c->ocsp_staple_file);
	free(c->ocsp_url);
	memset(c, 0, sizeof(*c));
}

static int cert_cfg_parse(const json_t *c, size_t idx, struct agent_cert_cfg *cc, struct sg_err *err)
{
	static const char *const known[] = {
		"name", "mount", "role", "common_name", "alt_names", "ip_sans", "uri_sans", "ttl", "key_type",
		"key_bits", "cert_file", "key_file", "chain_file", "bundle_file", "mode", "key_mode", "owner",
		"group", "renew_fraction", "jitter", "reload_command", "pid_file", "reload_signal",
		"revoke_on_shutdown", "ocsp_staple_file", "ocsp_url", NULL};
	char where[48];
	const char *sig = NULL;

	snprintf(where, sizeof(where), "certificates[%zu]", idx);
	cc->mode = 0644;
	cc->key_mode = 0600;
	cc->uid = (uid_t)-1;
	cc->gid = (gid_t)-1;
	cc->renew_fraction = AGENT_DEFAULT_FRACTION;
	cc->jitter = AGENT_DEFAULT_JITTER;
	cc->reload_signal = SIGHUP;
	if (!json_is_object(c))
		return sg_err_set(err, SG_BAD_REQUEST, "%s must be an object", where);
	if (keys_check(c, where, known, err) != 0 || str_dup(c, "name", &cc->name, err) != 0 ||
	    str_dup(c, "mount", &cc->mount, err) != 0 || str_dup(c, "role", &cc->role, err) != 0 ||
	    str_dup(c, "common_name", &cc->common_name, err) != 0 ||
	    list_get(c, "alt_names", &cc->alt_names, err) != 0 || list_get(c, "ip_sans", &cc->ip_sans, err) != 0 ||
	    list_get(c, "uri_sans", &cc->uri_sans, err) != 0 || str_dup(c, "ttl", &cc->ttl, err) != 0 ||
	    str_dup(c, "key_type", &cc->key_type, err) != 0 || sg_json_int(c, "key_bits", &cc->key_bits, err) < 0 ||
	    str_dup(c, "cert_file", &cc->cert_file, err) != 0 || str_dup(c, "key_file", &cc->key_file, err) != 0 ||
	    str_dup(c, "chain_file", &cc->chain_file, err) != 0 ||
	    str_dup(c, "bundle_file", &cc->bundle_file, err) != 0 || mode_get(c, "mode", &cc->mode, err) != 0 ||
	    mode_get(c, "key_mode", &cc->key_mode, err) != 0 || owner_get(c, cc, err) != 0 ||
	    fraction_get(c, "renew_fraction", 0.05, 0.95, &cc->renew_fraction, err) != 0 ||
	    fraction_get(c, "jitter", 0.0, 0.5, &cc->jitter, err) != 0 ||
	    str_dup(c, "reload_command", &cc->reload_command, err) != 0 ||
	    str_dup(c, "pid_file", &cc->pid_file, err) != 0 || sg_json_str(c, "reload_signal", &sig, err) < 0 ||
	    sg_json_bool(c, "revoke_on_shutdown", &cc->revoke_on_shutdown, err) < 0 ||
	    str_dup(c, "ocsp_staple_file", &cc->ocsp_staple_file, err) != 0 || str_dup(c, "ocsp_url", &cc->ocsp_url, err) != 0)
		return -1;
	if (cc->ocsp_url != NULL && strncmp(cc->ocsp_url, "http://", 7) != 0 && strncmp(cc->ocsp_url, "https://", 8) != 0)
		return sg_err_set(err, SG_BAD_REQUEST, "%s: \"ocsp_url\" must be an http:// or https:// URL", where);
	if (cc->ocsp_url != NULL && cc->ocsp_staple_file == NULL)
		return sg_err_set(err, SG_BAD_REQUEST, "%s: \"ocsp_url\" needs \"ocsp_staple_file\"", where);
	if (cc->role == NULL)
		return sg_err_set(err, SG_BAD_REQUEST, "%s: \"role\" is required", where);
	if (cc->common_name == NULL)
		return sg_err_set(err, SG_BAD_REQUEST, "%s: \"common_name\" is required", where);
	if (cc->cert_file == NULL && cc->bundle_file == NULL)
		return sg_err_set(err, SG_BAD_REQUEST, "%s: \"cert_file\" or \"bundle_file\" is required", where);
	if (cc->cert_file != NULL && cc->key_file == NULL)
		return sg_err_set(err, SG_BAD_REQUEST, "%s: \"key_file\" is required with \"cert_file\"", where);
	if (cc->key_bits < 0 || cc->key_bits > 16384)
		return sg_err_set(err, SG_BAD_REQUEST, "%s: \"key_bits\" out of range", where);
	if (cc->ttl != NULL) {
		int64_t secs;

		if (sg_duration_parse(cc->ttl, &secs) != 0 || secs <= 0)
			return sg_err_set(err, SG_BAD_REQUEST, "%s: \"ttl\" is not a duration", where);
	}
	if (sig != NULL && (cc->reload_signal = agent_signal_parse(sig)) < 0)
		return sg_err_set(err, SG_BAD_REQUEST, "%s: unknown reload_signal \"%.16s\"", where, sig);
	if (cc->name == NULL)
		cc->name = sg_xstrdup(cc->common_name);
	if (cc->mount == NULL)
		cc->mount = sg_xstrdup("pki");
	return 0;
}

static int auth_parse(const json_t *a, struct agent_config *cfg, struct sg_err *err)
{
	static const char *const known[] = {"method", "mount_path", "token_file", "role_id_file", "secret_id_file",
	                                    "remove_secret_id_file_after_reading", "role", "jwt_file",
	                                    "client_cert", "client_key", "sink", NULL};
	static const char *const sink_known[] = {"path", "mode", NULL};
	const char *method = NULL;
	const json_t *sink;

	if (!json_is_object(a))
		return sg_err_set(err, SG_BAD_REQUEST, "\"auto_auth\" must be an object");
	if (keys_check(a, "auto_auth", known, err) != 0 || sg_json_str(a, "method", &method, err) < 0 ||
	    str_dup(a, "mount_path", &cfg->mount, err) != 0 || str_dup(a, "token_file", &cfg->token_file, err) != 0 ||
	    str_dup(a, "role_id_file", &cfg->role_id_file, err) != 0 ||
	    str_dup(a, "secret_id_file", &cfg->secret_id_file, err) != 0 ||
	    sg_json_bool(a, "remove_secret_id_file_after_reading", &cfg->remove_secret_id, err) < 0 ||
	    str_dup(a, "role", &cfg->role, err) != 0 || str_dup(a, "jwt_file", &cfg->jwt_file, err) != 0 ||
	    str_dup(a, "client_cert", &cfg->client_cert, err) != 0 ||
	    str_dup(a, "client_key", &cfg->client_key, err) != 0)
		return -1;
	if (method == NULL)
		return sg_err_set(err, SG_BAD_REQUEST, "auto_auth: \"method\" is required");
	if (strcmp(method, "token_file") == 0 || strcmp(method, "token") == 0) {
		cfg->method = AGENT_AUTH_TOKEN_FILE;
		if (cfg->token_file == NULL)
			return sg_err_set(err, SG_BAD_REQUEST, "auto_auth: method %s needs \"token_file\"", method);
	} else if (strcmp(method, "approle") == 0) {
		cfg->method = AGENT_AUTH_APPROLE;
		if (cfg->role_id_file == NULL)
			return sg_err_set(err, SG_BAD_REQUEST, "auto_auth: method approle needs \"role_id_file\"");
	} else if (strcmp(method, "kubernetes") == 0) {
		cfg->method = AGENT_AUTH_KUBERNETES;
		if (cfg->role == NULL)
			return sg_err_set(err, SG_BAD_REQUEST, "auto_auth: method kubernetes needs \"role\"");
		if (cfg->jwt_file == NULL)
			cfg->jwt_file = sg_xstrdup("/var/run/secrets/kubernetes.io/serviceaccount/token");
	} else if (strcmp(method, "cert") == 0) {
		cfg->method = AGENT_AUTH_CERT;
		if (cfg->client_cert == NULL || cfg->client_key == NULL)
			return sg_err_set(err, SG_BAD_REQUEST, "auto_auth: method cert needs \"client_cert\" and \"client_key\"");
	} else {
		return sg_err_set(err, SG_BAD_REQUEST,
		                  "auto_auth: unknown method \"%.32s\" (token_file, approle, kubernetes, cert)", method);
	}
	if (cfg->mount == NULL)
		cfg->mount = sg_xstrdup(cfg->method == AGENT_AUTH_TOKEN_FILE ? "token" : method);
	sink = json_object_get(a, "sink");
	if (sink != NULL && !json_is_null(sink)) {
		if (!json_is_object(sink))
			return sg_err_set(err, SG_BAD_REQUEST, "auto_auth.sink must be an object");
		if (keys_check(sink, "auto_auth.sink", sink_known, err) != 0 ||
		    str_dup(sink, "path", &cfg->sink_path, err) != 0 || mode_get(sink, "mode", &cfg->sink_mode, err) != 0)
			return -1;
		if (cfg->sink_path == NULL)
			return sg_err_set(err, SG_BAD_REQUEST, "auto_auth.sink: \"path\" is required");
	}
	return 0;
}

static int sections_parse(const json_t *root, struct agent_config *cfg, struct sg_err *err)
{
	static const char *const known[] = {"address", "ca_cert", "auto_auth", "certificates", "health", "retry",
	                                    "exit_after_auth", NULL};
	static const char *const health_known[] = {"listen_address", "status_file", NULL};
	static const char *const retry_known[] = {"min_backoff", "max_backoff", "oneshot_attempts", NULL};
	const json_t *certs, *h, *r;
	size_t i;

	if (keys_check(root, "config", known, err) != 0 || str_dup(root, "address", &cfg->address, err) != 0 ||
	    str_dup(root, "ca_cert", &cfg->ca_cert, err) != 0 ||
	    sg_json_bool(root, "exit_after_auth", &cfg->exit_after_auth, err) < 0)
		return -1;
	if (json_object_get(root, "auto_auth") == NULL)
		return sg_err_set(err, SG_BAD_REQUEST, "config: \"auto_auth\" is required");
	if (auth_parse(json_object_get(root, "auto_auth"), cfg, err) != 0)
		return -1;
	certs = json_object_get(root, "certificates");
	if (certs != NULL && !json_is_array(certs))
		return sg_err_set(err, SG_BAD_REQUEST, "\"certificates\" must be a list");
	if (json_array_size(certs) > AGENT_MAX_CERTS)
		return sg_err_set(err, SG_BAD_REQUEST, "more than %d certificates", AGENT_MAX_CERTS);
	cfg->ncerts = json_array_size(certs);
	cfg->certs = sg_xcalloc(cfg->ncerts ? cfg->ncerts : 1, sizeof(*cfg->certs));
	for (i = 0; i < cfg->ncerts; i++)
		if (cert_cfg_parse(json_array_get(certs, i), i, &cfg->certs[i], err) != 0)
			return -1;
	h = json_object_get(root, "health");
	if (h != NULL) {
		if (!json_is_object(h))
			return sg_err_set(err, SG_BAD_REQUEST, "\"health\" must be an object");
		if (keys_check(h, "health", health_known, err) != 0 ||
		    str_dup(h, "listen_address", &cfg->health_listen, err) != 0 ||
		    str_dup(h, "status_file", &cfg->status_file, err) != 0)
			return -1;
	}
	r = json_object_get(root, "retry");
	if (r != NULL) {
		if (!json_is_object(r))
			return sg_err_set(err, SG_BAD_REQUEST, "\"retry\" must be an object");
		if (keys_check(r, "retry", retry_known, err) != 0 ||
		    sg_json_duration(r, "min_backoff", &cfg->backoff_min, err) < 0 ||
		    sg_json_duration(r, "max_backoff", &cfg->backoff_max, err) < 0 ||
		    sg_json_int(r, "oneshot_attempts", &cfg->oneshot_attempts, err) < 0)
			return -1;
	}
	if (cfg->backoff_min < 1 || cfg->backoff_max < cfg->backoff_min)
		return sg_err_set(err, SG_BAD_REQUEST, "retry: need 1s <= min_backoff <= max_backoff");
	if (cfg->oneshot_attempts < 1 || cfg->oneshot_attempts > 1000)
		return sg_err_set(err, SG_BAD_REQUEST, "retry: oneshot_attempts must be 1..1000");
	return 0;
}

struct agent_config *agent_config_parse(const char *text, size_t len, struct sg_err *err)
{
	struct agent_config *cfg = NULL;
	json_error_t je;
	json_t *root = NULL;

	if (len > AGENT_MAX_CONFIG_BYTES) {
		sg_err_set(err, SG_TOO_LARGE, "config larger than %u bytes", AGENT_MAX_CONFIG_BYTES);
		goto out;
	}
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL || !json_is_object(root)) {
		sg_err_set(err, SG_BAD_JSON, "config is not a JSON object (line %d: %.120s)", je.line,
		           root == NULL ? je.text : "not an object");
		goto out;
	}
	cfg = sg_xcalloc(1, sizeof(*cfg));
	cfg->sink_mode = 0600;
	cfg->backoff_min = AGENT_DEFAULT_BACKOFF_MIN;
	cfg->backoff_max = AGENT_DEFAULT_BACKOFF_MAX;
	cfg->oneshot_attempts = AGENT_DEFAULT_ONESHOT_ATTEMPTS;
	if (sections_parse(root, cfg, err) != 0) {
		agent_config_free(cfg);
		cfg = NULL;
	}
out:
	json_decref(root);
	return cfg;
}

struct agent_config *agent_config_load(const char *path, struct sg_err *err)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	struct agent_config *cfg = NULL;

	if (sg_file_read(path, AGENT_MAX_CONFIG_BYTES, &buf, &len, err) != 0)
		goto out;
	cfg = agent_config_parse((const char *)buf, len, err);
out:
	free(buf);
	return cfg;
}

void agent_config_free(struct agent_config *cfg)
{
	size_t i;

	if (cfg == NULL)
		return;
	free(cfg->address);
	free(cfg->ca_cert);
	free(cfg->mount);
	free(cfg->token_file);
	free(cfg->role_id_file);
	free(cfg->secret_id_file);
	free(cfg->role);
	free(cfg->jwt_file);
	free(cfg->client_cert);
	free(cfg->client_key);
	free(cfg->sink_path);
	for (i = 0; i < cfg->ncerts; i++)
		cert_cfg_clear(&cfg->certs[i]);
	free(cfg->certs);
	free(cfg->health_listen);
	free(cfg->status_file);
	free(cfg);
}

int agent_signal_parse(const char *s)
{
	static const struct {
		const char *name;
		int sig;
	} tab[] = {{"HUP", SIGHUP}, {"INT", SIGINT}, {"QUIT", SIGQUIT}, {"TERM", SIGTERM}, {"USR1", SIGUSR1},
	           {"USR2", SIGUSR2}, {"WINCH", SIGWINCH}};
	long n;
	size_t i;

	if (s == NULL)
		return -1;
	if (strncmp(s, "SIG", 3) == 0)
		s += 3;
	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (strcmp(tab[i].name, s) == 0)
			return tab[i].sig;
	if (id_parse(s, &n) == 0 && n > 0 && n < 32)
		return (int)n;
	return -1;
}
