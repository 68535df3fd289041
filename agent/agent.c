/*
 * agent/agent.c: the agent's main loop. One thread does everything that
 * talks to the server (login, token renewal, issuance, revocation) and
 * sleeps until the next deadline; the optional health listener only reads
 * a JSON snapshot the loop publishes under a mutex.
 *
 * Failure policy: a certificate on disk is never removed or replaced by
 * anything but a complete new one. Any failure (server down, token
 * refused, role denied) schedules a retry with capped exponential backoff
 * while the current files stay in place.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "agent/agent.h"
#include "agent/health.h"
#include "cli/client.h"

#define RELOAD_TIMEOUT_S 30 /* a reload command running longer is killed */
#define TICK_MS 250         /* longest sleep between checks of the stop flag */

struct cert_state {
	const struct agent_cert_cfg *cfg;
	bool have;          /* a valid certificate is in place */
	char *serial;
	char *lease_id;     /* from the issue answer; NULL for a certificate found on disk */
	int64_t not_before;
	int64_t not_after;
	int64_t renew_at;
	int64_t next_try;   /* after a failure: not before this time */
	unsigned failures;
	unsigned renewals;
	char *last_error;
	/* ocsp_staple_file: the certificate as written (the staple is checked against it) and the staple's state. */
	char *leaf_pem;     /* may be a bundle holding the key: wiped on free */
	char *chain_pem;
	int64_t staple_at;  /* next OCSP fetch; 0: as soon as a certificate is in place */
	unsigned staple_failures;
	const char *staple_status; /* "good" / "revoked" once a staple is written */
	int64_t staple_next_update;
	bool reload_pending; /* renewed: reload once its staple is there (or could not be fetched) */
};

struct agent {
	struct agent_config *cfg;
	struct cli_client *cli;
	bool authed;
	int64_t token_renew_at;   /* 0: the token does not expire */
	bool token_renewable;
	int64_t auth_next_try;
	unsigned auth_failures;
	char *auth_error;
	struct cert_state *certs;
	struct agent_health *health;
};

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static double rand_unit(void)
{
	uint32_t r = 0;

	if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
		sg_die("RAND_bytes failed");
	return (double)r / 4294967296.0;
}

/* ---- JSON logs: one object per line on stderr ---- */

static void log_event(const char *level, const char *msg, json_t *fields)
{
	char ts[40];
	json_t *o = fields != NULL ? fields : json_object();
	char *line;

	sg_time_format_rfc3339(sg_now(), ts, sizeof(ts));
	json_object_set_new(o, "time", json_string(ts));
	json_object_set_new(o, "level", json_string(level));
	json_object_set_new(o, "msg", json_string(msg));
	line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (line != NULL) {
		fprintf(stderr, "%s\n", line);
		fflush(stderr);
	}
	free(line);
	json_decref(o);
}

static json_t *cert_fields(const struct cert_state *cs)
{
	char ts[40];
	json_t *o = json_pack("{s:s, s:s}", "certificate", cs->cfg->name, "role", cs->cfg->role);

	if (cs->have) {
		json_object_set_new(o, "serial", json_string(cs->serial));
		sg_time_format_rfc3339(cs->not_after, ts, sizeof(ts));
		json_object_set_new(o, "expiry", json_string(ts));
		sg_time_format_rfc3339(cs->renew_at, ts, sizeof(ts));
		json_object_set_new(o, "renew_at", json_string(ts));
	}
	return o;
}

/* ---- status snapshot (health endpoint and status file) ---- */

static void status_publish(struct agent *a)
{
	int64_t now = sg_now();
	bool healthy = a->authed || a->cfg->ncerts > 0;
	json_t *st = json_object(), *list = json_array();
	char ts[40];
	char *text;
	size_t i;
	struct sg_err err;

	for (i = 0; i < a->cfg->ncerts; i++) {
		const struct cert_state *cs = &a->certs[i];
		json_t *o = cert_fields(cs);
		bool valid = cs->have && now < cs->not_after;

		json_object_set_new(o, "valid", json_boolean(valid));
		json_object_set_new(o, "renewals", json_integer(cs->renewals));
		json_object_set_new(o, "failures", json_integer(cs->failures));
		if (cs->last_error != NULL)
			json_object_set_new(o, "last_error", json_string(cs->last_error));
		if (cs->cfg->ocsp_staple_file != NULL) {
			json_object_set_new(o, "ocsp_status", cs->staple_status != NULL ? json_string(cs->staple_status)
			                                                                  : json_null());
			if (cs->staple_next_update != 0) {
				sg_time_format_rfc3339(cs->staple_next_update, ts, sizeof(ts));
				json_object_set_new(o, "ocsp_next_update", json_string(ts));
			}
		}
		json_array_append_new(list, o);
		if (!valid)
			healthy = false;
	}
	if (a->cfg->ncerts == 0 && !a->authed)
		healthy = false;
	sg_time_format_rfc3339(now, ts, sizeof(ts));
	json_object_set_new(st, "healthy", json_boolean(healthy));
	json_object_set_new(st, "authenticated", json_boolean(a->authed));
	if (a->auth_error != NULL)
		json_object_set_new(st, "auth_error", json_string(a->auth_error));
	json_object_set_new(st, "time", json_string(ts));
	json_object_set_new(st, "certificates", list);
	text = json_dumps(st, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (text == NULL)
		sg_die("out of memory");
	agent_health_set(a->health, text, healthy);
	if (a->cfg->status_file != NULL) {
		sg_err_init(&err);
		if (agent_file_write(a->cfg->status_file, text, strlen(text), 0644, (uid_t)-1, (gid_t)-1, &err) != 0)
			log_event("warn", "status file not written", json_pack("{s:s}", "error", err.detail));
	}
	free(text);
	json_decref(st);
}

/* ---- auto-auth ---- */

static void str_set(char **dst, const char *s)
{
	free(*dst);
	*dst = s != NULL ? sg_xstrdup(s) : NULL;
}

static void wipe_free(char *s)
{
	if (s != NULL) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

/* The login body for the configured method; the secrets in it are wiped by the caller (json_decref after body_wipe). */
static json_t *login_body(struct agent *a, struct sg_err *err)
{
	const struct agent_config *cfg = a->cfg;
	char *s1 = NULL, *s2 = NULL;
	json_t *body = NULL;

	switch (cfg->method) {
	case AGENT_AUTH_TOKEN_FILE:
		if ((s1 = agent_secret_read(cfg->token_file, err)) == NULL)
			goto out;
		cli_client_set_token(a->cli, s1);
		body = json_object();
		break;
	case AGENT_AUTH_APPROLE:
		if ((s1 = agent_secret_read(cfg->role_id_file, err)) == NULL)
			goto out;
		body = json_pack("{s:s}", "role_id", s1);
		if (cfg->secret_id_file != NULL) {
			if ((s2 = agent_secret_read(cfg->secret_id_file, err)) == NULL) {
				json_decref(body);
				body = NULL;
				goto out;
			}
			json_object_set_new(body, "secret_id", json_string(s2));
			/* A one-use secret_id should not outlive its use on disk. */
			if (cfg->remove_secret_id && unlink(cfg->secret_id_file) != 0)
				log_event("warn", "secret_id file not removed",
				          json_pack("{s:s, s:s}", "path", cfg->secret_id_file, "error", strerror(errno)));
		}
		break;
	case AGENT_AUTH_KUBERNETES:
		if ((s1 = agent_secret_read(cfg->jwt_file, err)) == NULL)
			goto out;
		body = json_pack("{s:s, s:s}", "role", cfg->role, "jwt", s1);
		break;
	case AGENT_AUTH_CERT:
		body = json_object();
		if (cfg->role != NULL)
			json_object_set_new(body, "name", json_string(cfg->role));
		break;
	}
out:
	wipe_free(s1);
	wipe_free(s2);
	return body;
}

static void body_wipe(json_t *body)
{
	const char *k;
	json_t *v;

	json_object_foreach(body, k, v) {
		if (json_is_string(v)) {
			char *s = (char *)json_string_value(v);

			OPENSSL_cleanse(s, strlen(s));
		}
	}
	json_decref(body);
}

static void token_schedule(struct agent *a, int64_t ttl, bool renewable)
{
	a->token_renewable = renewable;
	/* Renew at two thirds of the token's remaining life, as Vault's agent does. */
	a->token_renew_at = ttl > 0 ? sg_now() + (ttl * 2) / 3 : 0;
	if (ttl > 0 && a->token_renew_at <= sg_now())
		a->token_renew_at = sg_now() + 1;
}

static int64_t json_int_of(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

static int sink_write(struct agent *a, struct sg_err *err)
{
	if (a->cfg->sink_path == NULL || a->cli->token == NULL)
		return 0;
	return agent_file_write(a->cfg->sink_path, a->cli->token, strlen(a->cli->token), a->cfg->sink_mode,
	                        (uid_t)-1, (gid_t)-1, err);
}

static int auth_login(struct agent *a, struct sg_err *err)
{
	struct cli_response resp = {0};
	json_t *body = NULL, *auth, *data;
	int rc = -1;

	if ((body = login_body(a, err)) == NULL)
		goto out;
	/* A token file is checked with lookup-self whatever mount_path says: there is no login to make. */
	if (cli_client_login(a->cli, a->cfg->method == AGENT_AUTH_TOKEN_FILE ? "token" : a->cfg->mount, body, &resp,
	                     err) != 0)
		goto out;
	if (a->cfg->method == AGENT_AUTH_TOKEN_FILE) {
		data = cli_response_data(&resp);
		token_schedule(a, json_int_of(data, "ttl"), json_is_true(json_object_get(data, "renewable")));
	} else {
		auth = cli_response_auth(&resp);
		token_schedule(a, json_int_of(auth, "lease_duration"), json_is_true(json_object_get(auth, "renewable")));
	}
	if (sink_write(a, err) != 0)
		goto out;
	rc = 0;
out:
	if (body != NULL)
		body_wipe(body);
	cli_response_clear(&resp);
	return rc;
}

/* 0: renewed; -1 with err: retry later (transport) or log in again (anything the server refused). */
static int auth_renew(struct agent *a, bool *relogin, struct sg_err *err)
{
	struct cli_response resp = {0};
	json_t *body = json_object(), *auth;
	int rc = -1;

	*relogin = false;
	if (cli_client_request(a->cli, "POST", "auth/token/renew-self", body, &resp, err) != 0)
		goto out;
	if (resp.status / 100 != 2) {
		char *m = cli_response_errmsg(&resp);

		sg_err_set(err, SG_PERMISSION_DENIED, "token renewal refused: %ld: %s", resp.status, m);
		free(m);
		*relogin = true;
		goto out;
	}
	auth = cli_response_auth(&resp);
	token_schedule(a, json_int_of(auth, "lease_duration"), json_is_true(json_object_get(auth, "renewable")));
	rc = 0;
out:
	json_decref(body);
	cli_response_clear(&resp);
	return rc;
}

static void auth_failed(struct agent *a, const struct sg_err *err)
{
	int64_t d = agent_backoff(a->auth_failures, a->cfg->backoff_min, a->cfg->backoff_max, rand_unit());

	a->authed = false;
	a->auth_failures++;
	a->auth_next_try = sg_now() + d;
	str_set(&a->auth_error, err->detail);
	log_event("error", "authentication failed",
	          json_pack("{s:s, s:s, s:I}", "method", a->cfg->mount, "error", err->detail, "retry_in_s", (json_int_t)d));
}

static void auth_step(struct agent *a)
{
	struct sg_err err;
	bool relogin = false;

	sg_err_init(&err);
	if (a->authed) {
		if (a->token_renew_at == 0 || sg_now() < a->token_renew_at)
			return;
		if (a->token_renewable) {
			if (auth_renew(a, &relogin, &err) == 0) {
				a->auth_failures = 0;
				log_event("info", "token renewed", NULL);
				return;
			}
			log_event("warn", "token renewal failed", json_pack("{s:s}", "error", err.detail));
			if (!relogin) {
				/* The server is unreachable: the token may still be good when it is back. */
				a->token_renew_at = sg_now() + agent_backoff(a->auth_failures++, a->cfg->backoff_min,
				                                             a->cfg->backoff_max, rand_unit());
				return;
			}
			sg_err_init(&err);
		}
		a->authed = false;
		a->auth_next_try = 0;
	}
	if (sg_now() < a->auth_next_try)
		return;
	if (auth_login(a, &err) != 0) {
		auth_failed(a, &err);
		return;
	}
	a->authed = true;
	a->auth_failures = 0;
	str_set(&a->auth_error, NULL);
	log_event("info", "authenticated", json_pack("{s:s, s:b}", "method", a->cfg->mount, "renewable",
	                                             a->token_renewable));
}

/* ---- certificates ---- */

static int reload_run(const struct agent_cert_cfg *c, struct sg_err *err)
{
	pid_t pid;
	int status = 0, waited;

	if (c->pid_file != NULL) {
		char *s = NULL;
		char *end = NULL;
		long p;

		if ((s = agent_secret_read(c->pid_file, err)) == NULL)
			return -1;
		errno = 0;
		p = strtol(s, &end, 10);
		if (errno != 0 || end == s || *end != '\0' || p <= 1) {
			free(s);
			return sg_err_set(err, SG_BAD_REQUEST, "pid file %s holds no process id", c->pid_file);
		}
		free(s);
		if (kill((pid_t)p, c->reload_signal) != 0)
			return sg_err_set(err, SG_INTERNAL, "cannot signal process %ld: %s", p, strerror(errno));
	}
	if (c->reload_command == NULL)
		return 0;
	pid = fork();
	if (pid < 0)
		return sg_err_set(err, SG_INTERNAL, "fork: %s", strerror(errno));
	if (pid == 0) {
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGPIPE, SIG_DFL);
		execl("/bin/sh", "sh", "-c", c->reload_command, (char *)NULL);
		_exit(127);
	}
	for (waited = 0; waited < RELOAD_TIMEOUT_S * 10; waited++) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			break;
		if (r < 0 && errno != EINTR)
			return sg_err_set(err, SG_INTERNAL, "waitpid: %s", strerror(errno));
		usleep(100 * 1000);
	}
	if (waited == RELOAD_TIMEOUT_S * 10) {
		kill(pid, SIGKILL);
		(void)waitpid(pid, &status, 0);
		return sg_err_set(err, SG_INTERNAL, "reload command killed after %ds", RELOAD_TIMEOUT_S);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return sg_err_set(err, SG_INTERNAL, "reload command exited with status %d",
		                  WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	return 0;
}

static char *list_join(const struct sg_strlist *l)
{
	size_t i, n = 1;
	char *s;

	for (i = 0; i < l->n; i++)
		n += strlen(l->v[i]) + 1;
	s = sg_xcalloc(1, n);
	for (i = 0; i < l->n; i++) {
		if (i > 0)
			strncat(s, ",", n - strlen(s) - 1);
		strncat(s, l->v[i], n - strlen(s) - 1);
	}
	return s;
}

static json_t *issue_body(const struct agent_cert_cfg *c)
{
	json_t *b = json_pack("{s:s, s:s}", "common_name", c->common_name, "format", "pem");

	if (c->alt_names.n > 0) {
		char *names = list_join(&c->alt_names);

		json_object_set_new(b, "alt_names", json_string(names));
		free(names);
	}
	if (c->ip_sans.n > 0)
		json_object_set_new(b, "ip_sans", sg_strlist_to_json(&c->ip_sans));
	if (c->uri_sans.n > 0)
		json_object_set_new(b, "uri_sans", sg_strlist_to_json(&c->uri_sans));
	if (c->ttl != NULL)
		json_object_set_new(b, "ttl", json_string(c->ttl));
	if (c->key_type != NULL)
		json_object_set_new(b, "key_type", json_string(c->key_type));
	if (c->key_bits > 0)
		json_object_set_new(b, "key_bits", json_integer(c->key_bits));
	return b;
}

static void pem_append(char **buf, const char *pem)
{
	size_t n = strlen(pem);
	char *s = sg_xasprintf("%s%s%s", *buf != NULL ? *buf : "", pem, n > 0 && pem[n - 1] != '\n' ? "\n" : "");

	free(*buf);
	*buf = s;
}

/* The issuing chain without the leaf: ca_chain when the server sends one, else issuing_ca. */
static char *chain_of(const json_t *data)
{
	const json_t *chain = json_object_get(data, "ca_chain");
	const char *issuing = json_string_value(json_object_get(data, "issuing_ca"));
	char *out = NULL;
	size_t i;

	if (json_is_array(chain) && json_array_size(chain) > 0) {
		for (i = 0; i < json_array_size(chain); i++) {
			const char *p = json_string_value(json_array_get(chain, i));

			if (p != NULL)
				pem_append(&out, p);
		}
	} else if (issuing != NULL) {
		pem_append(&out, issuing);
	}
	return out != NULL ? out : sg_xstrdup("");
}

/* Writes every destination; any failure leaves the files already written consistent on their own. */
static int cert_files_write(const struct agent_cert_cfg *c, const char *cert, const char *key, const char *chain,
                            struct sg_err *err)
{
	char *leaf = NULL, *bundle = NULL;
	int rc = -1;

	pem_append(&leaf, cert);
	/* Key first: a workload watching cert_file then finds the matching key already there. */
	if (c->key_file != NULL && agent_file_write(c->key_file, key, strlen(key), c->key_mode, c->uid, c->gid, err) != 0)
		goto out;
	if (c->chain_file != NULL &&
	    agent_file_write(c->chain_file, chain, strlen(chain), c->mode, c->uid, c->gid, err) != 0)
		goto out;
	if (c->cert_file != NULL && agent_file_write(c->cert_file, leaf, strlen(leaf), c->mode, c->uid, c->gid, err) != 0)
		goto out;
	if (c->bundle_file != NULL) {
		bundle = sg_xstrdup(leaf);
		pem_append(&bundle, chain);
		pem_append(&bundle, key);
		if (agent_file_write(c->bundle_file, bundle, strlen(bundle), c->key_mode, c->uid, c->gid, err) != 0)
			goto out;
	}
	rc = 0;
out:
	if (bundle != NULL) {
		OPENSSL_cleanse(bundle, strlen(bundle));
		free(bundle);
	}
	free(leaf);
	return rc;
}

/*
 * fresh: just issued. The server backdates NotBefore (Vault's 30s
 * not_before_duration), so the fraction counts from the issue time; a
 * certificate found on disk counts from its NotBefore (renews earlier, never later).
 */
static void cert_adopt(struct cert_state *cs, const char *pem, size_t len, const char *lease_id, bool fresh)
{
	struct sg_err err;
	char *serial = NULL;
	int64_t nb, na;

	sg_err_init(&err);
	if (agent_cert_info(pem, len, &nb, &na, &serial, &err) != 0)
		return;
	free(cs->serial);
	cs->serial = serial;
	str_set(&cs->lease_id, lease_id);
	cs->not_before = nb;
	cs->not_after = na;
	cs->renew_at = agent_renew_time(fresh && sg_now() > nb ? sg_now() : nb, na, cs->cfg->renew_fraction,
	                                cs->cfg->jitter, rand_unit());
	cs->have = true;
}

/* At start-up: a certificate already on disk and not yet due is kept (a restarted agent does not reissue). */
static void cert_load_existing(struct cert_state *cs)
{
	const char *path = cs->cfg->cert_file != NULL ? cs->cfg->cert_file : cs->cfg->bundle_file;
	unsigned char *buf = NULL;
	size_t len = 0;
	struct sg_err err;

	sg_err_init(&err);
	if (access(path, R_OK) != 0 || sg_file_read(path, AGENT_MAX_PEM_BYTES, &buf, &len, &err) != 0)
		goto out;
	cert_adopt(cs, (const char *)buf, len, NULL, false);
	if (cs->have && cs->cfg->ocsp_staple_file != NULL) {
		unsigned char *chain = NULL;
		size_t clen = 0;
		struct sg_err e2;

		sg_err_init(&e2);
		cs->leaf_pem = sg_xstrndup((const char *)buf, len);
		if (cs->cfg->chain_file != NULL &&
		    sg_file_read(cs->cfg->chain_file, AGENT_MAX_PEM_BYTES, &chain, &clen, &e2) == 0) {
			cs->chain_pem = sg_xstrndup((const char *)chain, clen);
			free(chain);
		}
	}
	if (cs->have && sg_now() >= cs->renew_at) {
		/* Due (or expired): issue a fresh one first thing, keeping this one in place until then. */
		cs->renew_at = sg_now();
	}
	if (cs->have)
		log_event("info", "certificate found on disk", cert_fields(cs));
out:
	if (buf != NULL)
		OPENSSL_cleanse(buf, len);
	free(buf);
}

static int cert_issue(struct agent *a, struct cert_state *cs, struct sg_err *err)
{
	const struct agent_cert_cfg *c = cs->cfg;
	struct cli_response resp = {0};
	json_t *body = issue_body(c), *data;
	char *path = sg_xasprintf("%s/issue/%s", c->mount, c->role);
	char *chain = NULL;
	const char *cert, *key, *lease;
	int rc = -1;

	if (cli_client_call(a->cli, "POST", path, body, &resp, err) != 0) {
		/* A refused token (expired, revoked) is fixed by logging in again, not by waiting. */
		if (resp.status == 403 || resp.status == 401)
			a->authed = false;
		goto out;
	}
	data = cli_response_data(&resp);
	cert = json_string_value(json_object_get(data, "certificate"));
	key = json_string_value(json_object_get(data, "private_key"));
	if (cert == NULL || key == NULL) {
		sg_err_set(err, SG_INTERNAL, "issue answer has no certificate or private_key");
		goto out;
	}
	chain = chain_of(data);
	if (cert_files_write(c, cert, key, chain, err) != 0)
		goto out;
	if (cs->leaf_pem != NULL)
		OPENSSL_cleanse(cs->leaf_pem, strlen(cs->leaf_pem)); /* read from a bundle: the old key is in it */
	str_set(&cs->leaf_pem, cert);
	str_set(&cs->chain_pem, chain);
	cs->staple_at = 0; /* a new certificate needs its own staple at once */
	cs->staple_failures = 0;
	cs->staple_status = NULL;
	cs->staple_next_update = 0;
	lease = json_string_value(json_object_get(resp.json, "lease_id"));
	cert_adopt(cs, cert, strlen(cert), lease != NULL && *lease != '\0' ? lease : NULL, true);
	if (!cs->have) {
		sg_err_set(err, SG_BAD_PEM, "issued certificate unreadable");
		goto out;
	}
	rc = 0;
out:
	if (resp.raw != NULL)
		OPENSSL_cleanse(resp.raw, resp.raw_len);
	free(chain);
	free(path);
	json_decref(body);
	cli_response_clear(&resp);
	return rc;
}

static void cert_step(struct agent *a, struct cert_state *cs)
{
	struct sg_err err;
	int64_t now = sg_now();

	if (!a->authed || (cs->have && now < cs->renew_at) || now < cs->next_try)
		return;
	sg_err_init(&err);
	if (cert_issue(a, cs, &err) != 0) {
		int64_t d = agent_backoff(cs->failures, a->cfg->backoff_min, a->cfg->backoff_max, rand_unit());
		json_t *f = cert_fields(cs);

		cs->failures++;
		cs->next_try = now + d;
		str_set(&cs->last_error, err.detail);
		json_object_set_new(f, "error", json_string(err.detail));
		json_object_set_new(f, "retry_in_s", json_integer(d));
		json_object_set_new(f, "current_kept", json_boolean(cs->have));
		log_event("error", "certificate renewal failed", f);
		return;
	}
	cs->failures = 0;
	cs->next_try = 0;
	cs->renewals++;
	str_set(&cs->last_error, NULL);
	log_event("info", "certificate written", cert_fields(cs));
	cs->reload_pending = true;
}

/* After a renewal, or a staple that changed: one reload for both. */
static void reload_step(struct cert_state *cs)
{
	struct sg_err err;

	if (!cs->reload_pending)
		return;
	cs->reload_pending = false;
	if (cs->cfg->reload_command == NULL && cs->cfg->pid_file == NULL)
		return;
	sg_err_init(&err);
	if (reload_run(cs->cfg, &err) != 0)
		log_event("error", "reload failed", json_pack("{s:s, s:s}", "certificate", cs->cfg->name, "error", err.detail));
	else
		log_event("info", "workload reloaded", json_pack("{s:s}", "certificate", cs->cfg->name));
}

/* Whether path already holds exactly these bytes (then neither a write nor a reload is needed). */
static bool file_same(const char *path, const unsigned char *der, size_t len)
{
	unsigned char *cur = NULL;
	size_t n = 0;
	struct sg_err err;
	bool same;

	sg_err_init(&err);
	if (sg_file_read(path, AGENT_MAX_STAPLE_BYTES, &cur, &n, &err) != 0)
		return false;
	same = n == len && memcmp(cur, der, len) == 0;
	free(cur);
	return same;
}

/*
 * ocsp_staple_file: fetch the answer for the current certificate, check it
 * (agent_staple_check), write it when it changed and reload the workload.
 * Refreshed halfway through its validity; on failure the file in place
 * stays and the fetch is retried with backoff.
 */
static void staple_step(struct agent *a, struct cert_state *cs)
{
	const struct agent_cert_cfg *c = cs->cfg;
	unsigned char *req = NULL, *der = NULL;
	size_t rl = 0, dl = 0;
	char *aia = NULL, *url = NULL;
	struct agent_staple st = {0};
	struct sg_err err;
	int64_t now = sg_now();
	json_t *f;

	if (c->ocsp_staple_file == NULL || !cs->have || cs->leaf_pem == NULL || now < cs->staple_at)
		return;
	sg_err_init(&err);
	if (agent_staple_request(cs->leaf_pem, cs->chain_pem, &req, &rl, &aia, &err) != 0)
		goto fail;
	url = c->ocsp_url != NULL ? sg_xstrdup(c->ocsp_url)
	      : aia != NULL       ? sg_xstrdup(aia)
	                          : sg_xasprintf("%s/v1/%s/ocsp", a->cli->addr, c->mount);
	if (agent_staple_fetch(url, req, rl, a->cli->cacert, a->cli->skip_verify, &der, &dl, &err) != 0 ||
	    agent_staple_check(der, dl, cs->leaf_pem, cs->chain_pem, now, &st, &err) != 0)
		goto fail;
	cs->staple_status = st.status == AGENT_STAPLE_REVOKED ? "revoked" : "good";
	cs->staple_next_update = st.next_update;
	cs->staple_at = agent_staple_refresh_time(&st, now);
	cs->staple_failures = 0;
	if (!file_same(c->ocsp_staple_file, st.der, st.len)) {
		if (agent_file_write(c->ocsp_staple_file, st.der, st.len, c->mode, c->uid, c->gid, &err) != 0)
			goto fail;
		cs->reload_pending = true;
		f = cert_fields(cs);
		json_object_set_new(f, "ocsp_status", json_string(cs->staple_status));
		json_object_set_new(f, "responder", json_string(url));
		if (st.status == AGENT_STAPLE_REVOKED)
			json_object_set_new(f, "revocation_reason", json_integer(st.reason));
		log_event(st.status == AGENT_STAPLE_REVOKED ? "warn" : "info", "ocsp staple written", f);
	}
	goto out;
fail:
	{
		int64_t d = agent_backoff(cs->staple_failures, a->cfg->backoff_min, a->cfg->backoff_max, rand_unit());

		cs->staple_failures++;
		cs->staple_at = now + d;
		f = cert_fields(cs);
		json_object_set_new(f, "error", json_string(err.detail));
		json_object_set_new(f, "responder", url != NULL ? json_string(url) : json_null());
		json_object_set_new(f, "retry_in_s", json_integer(d));
		json_object_set_new(f, "current_kept", json_boolean(cs->staple_status != NULL));
		log_event("error", "ocsp staple not refreshed", f);
	}
out:
	agent_staple_clear(&st);
	free(req);
	free(der);
	free(aia);
	free(url);
}

static void certs_revoke(struct agent *a)
{
	size_t i;

	for (i = 0; i < a->cfg->ncerts; i++) {
		struct cert_state *cs = &a->certs[i];
		struct cli_response resp = {0};
		struct sg_err err;
		json_t *body;
		char *path;

		if (!cs->cfg->revoke_on_shutdown || !cs->have)
			continue;
		sg_err_init(&err);
		if (cs->lease_id != NULL) {
			body = json_pack("{s:s}", "lease_id", cs->lease_id);
			path = sg_xstrdup("sys/leases/revoke");
		} else {
			body = json_pack("{s:s}", "serial_number", cs->serial);
			path = sg_xasprintf("%s/revoke", cs->cfg->mount);
		}
		if (cli_client_call(a->cli, "POST", path, body, &resp, &err) != 0)
			log_event("error", "revocation on shutdown failed",
			          json_pack("{s:s, s:s}", "certificate", cs->cfg->name, "error", err.detail));
		else
			log_event("info", "certificate revoked on shutdown", cert_fields(cs));
		cli_response_clear(&resp);
		json_decref(body);
		free(path);
	}
}

/* ---- the loop ---- */

static int64_t next_deadline(const struct agent *a)
{
	int64_t t = INT64_MAX;
	size_t i;

	if (!a->authed)
		return a->auth_next_try;
	if (a->token_renew_at != 0)
		t = a->token_renew_at;
	for (i = 0; i < a->cfg->ncerts; i++) {
		const struct cert_state *cs = &a->certs[i];
		int64_t c = cs->have ? cs->renew_at : 0;

		if (cs->next_try > c)
			c = cs->next_try;
		if (c < t)
			t = c;
		if (cs->cfg->ocsp_staple_file != NULL && cs->have && cs->staple_at < t)
			t = cs->staple_at;
	}
	return t;
}

/* One-shot is done once logged in and every certificate on disk is valid and not yet due. */
static bool all_fresh(const struct agent *a)
{
	int64_t now = sg_now();
	size_t i;

	for (i = 0; i < a->cfg->ncerts; i++) {
		if (!a->certs[i].have || now >= a->certs[i].renew_at)
			return false;
		if (a->certs[i].cfg->ocsp_staple_file != NULL && a->certs[i].staple_status == NULL)
			return false;
	}
	return a->authed;
}

static void sleep_until(int64_t deadline)
{
	while (!stop_requested && sg_now() < deadline) {
		struct timespec ts = {0, TICK_MS * 1000000L};

		nanosleep(&ts, NULL);
	}
}

static int agent_run(struct agent *a)
{
	unsigned rounds = 0;
	size_t i;

	for (i = 0; i < a->cfg->ncerts; i++)
		cert_load_existing(&a->certs[i]);
	status_publish(a);
	while (!stop_requested) {
		auth_step(a);
		for (i = 0; i < a->cfg->ncerts && a->authed && !stop_requested; i++)
			cert_step(a, &a->certs[i]);
		/* OCSP is public: staples stay fresh while the agent cannot log in. */
		for (i = 0; i < a->cfg->ncerts && !stop_requested; i++) {
			staple_step(a, &a->certs[i]);
			reload_step(&a->certs[i]);
		}
		/* An issuance refused for the token logs in again at once. */
		if (!a->authed && a->auth_failures == 0)
			a->auth_next_try = 0;
		status_publish(a);
		if (a->cfg->exit_after_auth) {
			if (all_fresh(a))
				return 0;
			rounds++;
			if (a->auth_failures >= a->cfg->oneshot_attempts) {
				log_event("error", "one-shot run gave up", json_pack("{s:I}", "rounds", (json_int_t)rounds));
				return 1;
			}
			for (i = 0; i < a->cfg->ncerts; i++)
				if (a->certs[i].failures >= a->cfg->oneshot_attempts ||
				    a->certs[i].staple_failures >= a->cfg->oneshot_attempts) {
					log_event("error", "one-shot run gave up", json_pack("{s:I}", "rounds", (json_int_t)rounds));
					return 1;
				}
		}
		if (a->authed || a->auth_next_try > sg_now())
			sleep_until(next_deadline(a));
	}
	log_event("info", "stopping", NULL);
	if (a->authed)
		certs_revoke(a);
	/* A one-shot run stopped before it finished did not do its job. */
	return a->cfg->exit_after_auth && !all_fresh(a) ? 1 : 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: sigil agent -config FILE [-exit-after-auth]\n\n"
	           "Logs in to a Sigil server, keeps the token alive and the configured certificates fresh on\n"
	           "disk, and reloads the workload after each renewal. -exit-after-auth writes every\n"
	           "certificate once and exits (init containers).\n\n"
	           "example:\n"
	           "  sigil agent -config /etc/sigil/agent.json\n");
}

static const char *flag_value(int argc, char **argv, int *i, const char *name)
{
	const char *a = argv[*i];
	size_t n;

	while (*a == '-')
		a++;
	n = strlen(name);
	if (strncmp(a, name, n) != 0)
		return NULL;
	if (a[n] == '=')
		return a + n + 1;
	if (a[n] == '\0' && *i + 1 < argc)
		return argv[++*i];
	return NULL;
}

int agent_main(int argc, char **argv)
{
	struct agent a = {0};
	struct sg_err err;
	const char *config = NULL;
	bool oneshot = false;
	struct sigaction sa;
	int i, rc = 1;

	for (i = 1; i < argc; i++) {
		const char *v;

		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "-help") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		}
		if (strcmp(argv[i], "-exit-after-auth") == 0 || strcmp(argv[i], "--exit-after-auth") == 0) {
			oneshot = true;
			continue;
		}
		if ((v = flag_value(argc, argv, &i, "config")) != NULL) {
			config = v;
			continue;
		}
		fprintf(stderr, "sigil agent: unknown argument '%s'\n", argv[i]);
		usage(stderr);
		return 2;
	}
	if (config == NULL) {
		fprintf(stderr, "sigil agent: -config FILE is required\n");
		usage(stderr);
		return 2;
	}
	sg_err_init(&err);
	if ((a.cfg = agent_config_load(config, &err)) == NULL) {
		fprintf(stderr, "sigil agent: %s: %s\n", config, err.detail);
		return 1;
	}
	if (oneshot)
		a.cfg->exit_after_auth = true;
	a.cli = cli_client_new();
	cli_client_from_env(a.cli);
	cli_client_set_token(a.cli, NULL);
	if (a.cfg->address != NULL)
		cli_client_set_addr(a.cli, a.cfg->address);
	if (a.cfg->ca_cert != NULL)
		cli_client_set_cacert(a.cli, a.cfg->ca_cert);
	if (a.cfg->method == AGENT_AUTH_CERT)
		cli_client_set_client_cert(a.cli, a.cfg->client_cert, a.cfg->client_key);
	a.certs = sg_xcalloc(a.cfg->ncerts ? a.cfg->ncerts : 1, sizeof(*a.certs));
	for (i = 0; i < (int)a.cfg->ncerts; i++)
		a.certs[i].cfg = &a.cfg->certs[i];
	a.health = agent_health_new();
	if (a.cfg->health_listen != NULL && agent_health_listen(a.health, a.cfg->health_listen, &err) != 0) {
		fprintf(stderr, "sigil agent: health listener: %s\n", err.detail);
		goto out;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	log_event("info", "agent started",
	          json_pack("{s:s, s:s, s:I, s:b}", "address", a.cli->addr, "auth_mount", a.cfg->mount, "certificates",
	                    (json_int_t)a.cfg->ncerts, "one_shot", a.cfg->exit_after_auth));
	rc = agent_run(&a);
out:
	agent_health_free(a.health);
	for (i = 0; i < (int)a.cfg->ncerts; i++) {
		free(a.certs[i].serial);
		free(a.certs[i].lease_id);
		free(a.certs[i].last_error);
		if (a.certs[i].leaf_pem != NULL)
			OPENSSL_cleanse(a.certs[i].leaf_pem, strlen(a.certs[i].leaf_pem));
		free(a.certs[i].leaf_pem);
		free(a.certs[i].chain_pem);
	}
	free(a.certs);
	free(a.auth_error);
	cli_client_free(a.cli);
	agent_config_free(a.cfg);
	return rc;
}
