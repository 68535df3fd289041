/* `sigil server`: flags and config, start-up (store, CA, mounts, tokens, dev bootstrap), signals, shutdown. */
#include "server/server.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "acme/acme.h"
#include "auth/acl.h"
#include "crl/crl.h"
#include "crl/ocsp.h"
#include "server/audit.h"
#include "server/auth_mounts.h"
#include "server/internal.h"
#include "server/leases.h"
#include "server/log.h"

#define SERVER_STORE_MAP_BYTES ((size_t)8 << 30) /* address space only: LMDB grows the file as needed */
#define SERVER_STOP_GRACE_MS 10000
#define SERVER_TOKEN_SWEEP_S 5 /* a sweep reads only the expired end of the expiry index */
#define DEV_LISTEN_DEFAULT "127.0.0.1:8200"
#define DEV_DATA_DIR_DEFAULT "./sigil-dev-data"
#define DEV_ROOT_TTL ((int64_t)87600 * 3600)
#define DEV_INT_TTL ((int64_t)43800 * 3600)
#define META_CLUSTER "cluster"
#define META_ROOT_TOKEN_DONE "root_token_created"
#define META_DEV_DONE "dev_bootstrapped"
#define AUTH_DEV_ROOT "dev-root"

/* ---- Flags ---- */

static const struct server_flag *flag_find(const struct server_flag *flags, size_t n, const char *name, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(flags[i].name) == len && strncmp(flags[i].name, name, len) == 0)
			return &flags[i];
	return NULL;
}

int server_flags_parse(int argc, char **argv, const struct server_flag *flags, size_t nflags, int *next,
                       struct sg_err *err)
{
	int i = 0;

	while (i < argc) {
		const char *a = argv[i], *name, *eq;
		const struct server_flag *f;
		size_t len;

		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (a[0] != '-' || a[1] == '\0')
			break;
		name = a + 1;
		if (*name == '-')
			name++;
		if (*name == '\0' || *name == '-' || *name == '=')
			return sg_err_set(err, SG_BAD_REQUEST, "bad flag syntax: %s", a);
		eq = strchr(name, '=');
		len = eq != NULL ? (size_t)(eq - name) : strlen(name);
		f = flag_find(flags, nflags, name, len);
		if (f == NULL)
			return sg_err_set(err, SG_BAD_REQUEST, "flag provided but not defined: -%.*s", (int)len, name);
		if (f->is_bool) {
			if (eq == NULL || strcmp(eq + 1, "true") == 0 || strcmp(eq + 1, "1") == 0)
				*f->bval = true;
			else if (strcmp(eq + 1, "false") == 0 || strcmp(eq + 1, "0") == 0)
				*f->bval = false;
			else
				return sg_err_set(err, SG_BAD_REQUEST, "invalid boolean value \"%s\" for -%s", eq + 1, f->name);
		} else if (eq != NULL) {
			*f->sval = eq + 1;
		} else {
			if (i + 1 >= argc)
				return sg_err_set(err, SG_BAD_REQUEST, "flag needs an argument: -%s", f->name);
			*f->sval = argv[++i];
		}
		i++;
	}
	*next = i;
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: sigil server -config FILE\n"
	           "       sigil server -dev [-dev-listen-address=127.0.0.1:8200] [-dev-root-token-id=ID]\n"
	           "                         [-dev-data-dir=./sigil-dev-data]\n"
	           "options:\n"
	           "  -config FILE              JSON config file (production mode)\n"
	           "  -dev                      development mode: plain HTTP, a ready PKI mount, a known root token\n"
	           "  -dev-listen-address ADDR  dev listen address (default " DEV_LISTEN_DEFAULT ")\n"
	           "  -dev-root-token-id ID     dev root token (default: random, printed at start)\n"
	           "  -dev-data-dir DIR         dev data directory, kept across restarts (default " DEV_DATA_DIR_DEFAULT
	           ")\n"
	           "  -log-level LEVEL          debug, info, warn or error (overrides the config)\n");
}

/* ---- Start-up helpers ---- */

static int meta_get(struct server *s, const char *key, json_t **out, struct sg_err *err)
{
	unsigned char *val = NULL;
	size_t len = 0;
	int got;

	*out = NULL;
	got = store_get(s->st, STORE_META, key, strlen(key), &val, &len, err);
	if (got <= 0)
		return got;
	*out = json_loadb((const char *)val, len, 0, NULL);
	free(val);
	if (*out == NULL)
		return sg_err_set(err, SG_STORAGE, "corrupt store record meta/%s", key);
	return 1;
}

static void batch_put_json(struct store_batch *b, enum store_table t, const char *key, json_t *j)
{
	char *text = json_dumps(j, JSON_COMPACT);

	if (text == NULL)
		sg_die("out of memory");
	store_batch_put(b, t, key, strlen(key), text, strlen(text));
	free(text);
	json_decref(j);
}

static int commit_one(struct server *s, enum store_table t, const char *key, json_t *j, struct sg_err *err)
{
	struct store_batch *b = store_batch_new();
	int rc;

	batch_put_json(b, t, key, j);
	rc = store_commit(s->st, b, err);
	store_batch_free(b);
	return rc;
}

static int cluster_identity(struct server *s, struct sg_err *err)
{
	json_t *j = NULL;
	const char *name, *id;
	int got;

	got = meta_get(s, META_CLUSTER, &j, err);
	if (got < 0)
		return -1;
	if (got == 0) {
		unsigned char r[4];

		sg_uuid(s->cluster_id);
		if (RAND_bytes(r, sizeof(r)) != 1)
			sg_die("RAND_bytes failed");
		snprintf(s->cluster_name, sizeof(s->cluster_name), "sigil-cluster-%02x%02x%02x%02x", r[0], r[1], r[2], r[3]);
		return commit_one(s, STORE_META, META_CLUSTER,
		                  json_pack("{s:s, s:s}", "name", s->cluster_name, "id", s->cluster_id), err);
	}
	name = json_string_value(json_object_get(j, "name"));
	id = json_string_value(json_object_get(j, "id"));
	snprintf(s->cluster_name, sizeof(s->cluster_name), "%s", name != NULL ? name : "sigil");
	snprintf(s->cluster_id, sizeof(s->cluster_id), "%s", id != NULL ? id : "");
	json_decref(j);
	return 0;
}

/* Production: the first start of an empty store writes a root token to <data_dir>/root-token (0600). */
static int root_token_bootstrap(struct server *s, struct sg_err *err)
{
	char token[AUTH_TOKEN_STR_MAX], *path = NULL, *text = NULL;
	json_t *done = NULL;
	int rc = -1, got;

	got = meta_get(s, META_ROOT_TOKEN_DONE, &done, err);
	json_decref(done);
	if (got != 0)
		return got < 0 ? -1 : 0;
	auth_token_generate(token, sizeof(token));
	path = sg_xasprintf("%s/root-token", s->cfg.data_dir);
	text = sg_xasprintf("%s\n", token);
	/*
	 * File first: a crash before the token commits leaves an unusable file
	 * that the next start overwrites; one after it leaves a root token
	 * nobody knows of, which the next start's new file supersedes.
	 */
	if (sg_file_write_atomic(path, text, strlen(text), 0600, err) != 0 ||
	    auth_token_create_root(s->tokens, token, NULL, err) != 0 ||
	    commit_one(s, STORE_META, META_ROOT_TOKEN_DONE, json_pack("{s:I}", "time", (json_int_t)sg_now()), err) != 0)
		goto out;
	server_log(SERVER_LOG_WARN, "generated the initial root token; read it, store it safely, then delete the file",
	           json_pack("{s:s}", "path", path));
	rc = 0;
out:
	OPENSSL_cleanse(token, sizeof(token));
	if (text != NULL)
		OPENSSL_cleanse(text, strlen(text));
	free(text);
	free(path);
	return rc;
}

/*
 * Dev: every start installs this start's root token; a different previous
 * one (its keyed hash is kept under AUTH_DEV_ROOT) is revoked with its children.
 */
static int dev_root_token_set(struct server *s, const char *token, struct sg_err *err)
{
	struct auth_token root, old;
	char prev[AUTH_TOKEN_HASH_HEX + 1];
	unsigned char *val = NULL;
	size_t len = 0;
	struct store_batch *b = NULL;
	int rc = -1, got;

	memset(&root, 0, sizeof(root));
	memset(&old, 0, sizeof(old));
	if (auth_token_create_root(s->tokens, token, &root, err) != 0)
		goto out;
	got = store_get(s->st, STORE_AUTH, AUTH_DEV_ROOT, strlen(AUTH_DEV_ROOT), &val, &len, err);
	if (got < 0)
		goto out;
	if (got == 1 && len == AUTH_TOKEN_HASH_HEX && memcmp(val, root.hash, len) == 0) {
		rc = 0;
		goto out;
	}
	if (got == 1 && len == AUTH_TOKEN_HASH_HEX) {
		memcpy(prev, val, len);
		prev[len] = '\0';
		got = auth_token_lookup_hash(s->tokens, prev, &old, err);
		if (got < 0 || (got == 1 && auth_token_revoke(s->tokens, &old, false, err) != 0))
			goto out;
	}
	b = store_batch_new();
	store_batch_put(b, STORE_AUTH, AUTH_DEV_ROOT, strlen(AUTH_DEV_ROOT), root.hash, strlen(root.hash));
	if (store_commit(s->st, b, err) != 0)
		goto out;
	rc = 0;
out:
	store_batch_free(b);
	free(val);
	auth_token_clear(&old);
	auth_token_clear(&root);
	return rc;
}

/* The intermediate's issuer id in an import result: the one linked to key_id, else the first imported. */
static const char *imported_issuer(const struct ca_import_result *r, const char *key_id)
{
	for (size_t i = 0; i < r->mapping_issuers.n && i < r->mapping_keys.n; i++)
		if (strcmp(r->mapping_keys.v[i], key_id) == 0)
			return r->mapping_issuers.v[i];
	return r->imported_issuers.n > 0 ? r->imported_issuers.v[0] : NULL;
}

static int dev_ca_generate(struct server *s, const struct mount *m, struct sg_err *err)
{
	struct ca_ca_params rp, ip, sp;
	struct ca_gen_result root, inter;
	struct ca_result signed_int;
	struct ca_import_result imp;
	char *root_pem = NULL, *int_pem = NULL, *bundle = NULL;
	const char *issuer;
	int rc = -1;

	ca_ca_params_init(&rp);
	ca_ca_params_init(&ip);
	ca_ca_params_init(&sp);
	memset(&root, 0, sizeof(root));
	memset(&inter, 0, sizeof(inter));
	memset(&signed_int, 0, sizeof(signed_int));
	memset(&imp, 0, sizeof(imp));

	rp.common_name = "Sigil Development Root CA";
	rp.ttl = DEV_ROOT_TTL;
	rp.key.type = CA_KEY_EC;
	rp.key.bits = 256;
	rp.issuer_name = "dev-root";
	rp.key_name = "dev-root";
	if (ca_root_generate(s->ca, &m->ca, &rp, &root, err) != 0)
		goto out;

	ip.common_name = "Sigil Development Intermediate CA";
	ip.key.type = CA_KEY_EC;
	ip.key.bits = 256;
	ip.key_name = "dev-intermediate";
	if (ca_intermediate_generate(s->ca, &m->ca, &ip, &inter, err) != 0)
		goto out;

	sp.common_name = "Sigil Development Intermediate CA";
	sp.ttl = DEV_INT_TTL;
	if (ca_sign_intermediate(s->ca, &m->ca, root.issuer_id, inter.csr, &sp, &signed_int, err) != 0)
		goto out;

	int_pem = ca_x509_to_pem(signed_int.cert);
	root_pem = ca_x509_to_pem(root.cert);
	if (int_pem == NULL || root_pem == NULL) {
		sg_err_set(err, SG_CRYPTO, "cannot encode the development CA certificates");
		goto out;
	}
	bundle = sg_xasprintf("%s%s", int_pem, root_pem);
	if (ca_import_pem(s->ca, &m->ca, bundle, strlen(bundle), false, &imp, err) != 0)
		goto out;
	issuer = imported_issuer(&imp, inter.key_id);
	if (issuer == NULL) {
		sg_err_set(err, SG_INTERNAL, "the development intermediate was not imported");
		goto out;
	}
	if (ca_issuer_set_default(s->ca, &m->ca, issuer, err) != 0)
		goto out;
	server_log(SERVER_LOG_INFO, "generated the development root and intermediate CAs",
	           json_pack("{s:s, s:s, s:s}", "mount", m->path, "root_issuer_id", root.issuer_id,
	                     "default_issuer_id", issuer));
	rc = 0;
out:
	free(root_pem);
	free(int_pem);
	free(bundle);
	ca_import_result_clear(&imp);
	ca_result_clear(&signed_int);
	ca_gen_result_clear(&inter);
	ca_gen_result_clear(&root);
	ca_ca_params_clear(&sp);
	ca_ca_params_clear(&ip);
	ca_ca_params_clear(&rp);
	return rc;
}

/*
 * Dev first start: mount "pki" and give it a root and a default
 * intermediate. Re-entrant: a crash half-way is finished at the next start.
 */
static int dev_bootstrap(struct server *s, struct sg_err *err)
{
	const struct mount *m = NULL;
	struct ca_issuer_info info;
	struct sg_err ierr;
	json_t *done = NULL;
	int rc = -1, got;

	memset(&info, 0, sizeof(info));
	got = meta_get(s, META_DEV_DONE, &done, err);
	json_decref(done);
	if (got != 0)
		return got < 0 ? -1 : 0;
	m = mount_table_get(&s->mounts, "pki");
	if (m == NULL) {
		/* max_lease_ttl covers the root's 10 years, as `vault secrets tune -max-lease-ttl=87600h pki`. */
		if (mount_table_add(&s->mounts, s->st, "pki", "pki", "Sigil development PKI", 0, DEV_ROOT_TTL, err) != 0)
			goto out;
		m = mount_table_get(&s->mounts, "pki");
		if (m == NULL) {
			sg_err_set(err, SG_INTERNAL, "the dev pki mount vanished");
			goto out;
		}
	}
	sg_err_init(&ierr);
	if (ca_issuer_get(s->ca, &m->ca, "default", &info, &ierr) != 0) {
		if (ierr.code != SG_UNKNOWN_ISSUER && ierr.code != SG_NOT_FOUND) {
			sg_err_set(err, ierr.code, "%s", ierr.detail);
			goto out;
		}
		if (dev_ca_generate(s, m, err) != 0)
			goto out;
	}
	if (commit_one(s, STORE_META, META_DEV_DONE, json_pack("{s:I}", "time", (json_int_t)sg_now()), err) != 0)
		goto out;
	rc = 0;
out:
	ca_issuer_info_clear(&info);
	mount_unref(m);
	return rc;
}

static int dev_prepare_dir(const char *dir, struct sg_err *err)
{
	struct stat st;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return sg_err_set(err, SG_BAD_REQUEST, "cannot create %s: %s", dir, strerror(errno));
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
		return sg_err_set(err, SG_BAD_REQUEST, "%s is not a directory", dir);
	return 0;
}

/*
 * The KEK: loaded from kek_file, or created there (32 random bytes, 0600)
 * when the file is absent and the store is new. A missing KEK next to an
 * existing store is an error: a new key could not decrypt the old ones.
 */
static int kek_obtain(struct server *s, unsigned char kek[CA_KEK_BYTES], struct sg_err *err)
{
	uint64_t n = 0;
	int rc;

	if (access(s->cfg.kek_file, F_OK) == 0)
		return server_config_kek_load(s->cfg.kek_file, kek, err);
	if (store_count(s->st, STORE_META, &n, err) != 0)
		return -1;
	if (n != 0)
		return sg_err_set(err, SG_BAD_REQUEST,
		                  "kek_file %s does not exist but %s holds data: restore the KEK file (it cannot be "
		                  "recreated)",
		                  s->cfg.kek_file, s->cfg.data_dir);
	if (RAND_bytes(kek, CA_KEK_BYTES) != 1)
		sg_die("RAND_bytes failed");
	rc = sg_file_write_atomic(s->cfg.kek_file, kek, CA_KEK_BYTES, 0600, err);
	if (rc == 0)
		server_log(SERVER_LOG_WARN, "generated a new key-encryption key; back it up with the data directory",
		           json_pack("{s:s}", "kek_file", s->cfg.kek_file));
	return rc;
}

static void dev_banner(const struct server *s, const char *token)
{
	printf("==> Sigil server started in DEV mode. Log data will stream in below.\n\n"
	       "             Listen address: http://%s\n"
	       "                   Data dir: %s (kept across restarts)\n"
	       "                    Version: Sigil v%s\n\n"
	       "WARNING! Dev mode serves plain HTTP and prints the root token below.\n"
	       "Do not use it in production.\n\n"
	       "You may need to set the following environment variable:\n\n"
	       "    $ export VAULT_ADDR='http://%s'\n\n"
	       "Root Token: %s\n\n"
	       "Try:\n"
	       "    $ curl -H \"X-Vault-Token: %s\" http://%s/v1/sys/mounts\n\n",
	       s->cfg.listen_address, s->cfg.data_dir, SIGIL_VERSION, s->cfg.listen_address, token, token,
	       s->cfg.listen_address);
	fflush(stdout);
}

static bool token_id_ok(const char *t)
{
	size_t n = strlen(t);

	if (n == 0 || n > AUTH_TOKEN_MAX_BYTES)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f)
			return false;
	return true;
}

/* ---- Run ---- */

/* CRLs live under the data directory ("<data_dir>/crl"), next to the store. */
static int crl_open(struct server *s, struct sg_err *err)
{
	char *dir = sg_xasprintf("%s/crl", s->cfg.data_dir);
	int rc = crl_new(s->st, s->ca, dir, &s->crl, err);

	free(dir);
	if (rc == 0)
		rc = ocsp_new(s->st, s->ca, s->crl, &s->ocsp, err);
	return rc;
}

struct ocsp *server_ocsp(struct server *s)
{
	return s->ocsp;
}

static int server_run(struct server *s, const char *dev_token)
{
	unsigned char kek[CA_KEK_BYTES];
	char token[AUTH_TOKEN_MAX_BYTES + 1] = "";
	struct sg_err err;
	sigset_t sigs;
	int sig = 0, rc = 1;

	sg_err_init(&err);
	mount_table_init(&s->mounts);
	server_log_set_level(s->cfg.log_level);
	/* Block the stop signals before any thread starts, so only sigwait below sees them. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (s->dev) {
		if (dev_prepare_dir(s->cfg.data_dir, &err) != 0)
			goto out;
		s->cfg.kek_file = sg_xasprintf("%s/kek", s->cfg.data_dir);
	} else {
		if (s->cfg.data_dir == NULL || s->cfg.kek_file == NULL) {
			sg_err_set(&err, SG_BAD_REQUEST, "config: data_dir and kek_file are required");
			goto out;
		}
		if (!s->cfg.tls_disable && (s->cfg.tls_cert_file == NULL || s->cfg.tls_key_file == NULL)) {
			sg_err_set(&err, SG_BAD_REQUEST,
			           "config: tls_cert_file and tls_key_file are required unless tls_disable is true");
			goto out;
		}
		if (!s->cfg.tls_disable &&
		    (access(s->cfg.tls_cert_file, R_OK) != 0 || access(s->cfg.tls_key_file, R_OK) != 0)) {
			sg_err_set(&err, SG_BAD_REQUEST, "config: cannot read tls_cert_file %s or tls_key_file %s: %s",
			           s->cfg.tls_cert_file, s->cfg.tls_key_file, strerror(errno));
			goto out;
		}
	}
	/* An existing KEK is checked (mode, size) before the store is touched. */
	if (access(s->cfg.kek_file, F_OK) == 0 && server_config_kek_load(s->cfg.kek_file, kek, &err) != 0)
		goto out;
	if (store_open(s->cfg.data_dir, SERVER_STORE_MAP_BYTES, &s->st, &err) != 0 || kek_obtain(s, kek, &err) != 0 ||
	    ca_new(s->st, kek, &s->ca, &err) != 0 || lease_mgr_new(s->st, &s->leases, &err) != 0 ||
	    auth_tokens_new(s->st, s->leases, kek, &s->tokens, &err) != 0)
		goto out;
	OPENSSL_cleanse(kek, sizeof(kek));
	if (crl_open(s, &err) != 0)
		goto out;
	pki_lease_kind_register(s->leases, s->ca);
	s->acme_validator = acme_validator_new(s->st, ACME_VALIDATOR_THREADS);
	if (cluster_identity(s, &err) != 0 || mount_table_load(&s->mounts, s->st, &err) != 0 ||
	    auth_mounts_new(s->st, &s->auth_mounts, &err) != 0 || auth_acl_store_open(s->st, &s->acl, &err) != 0 ||
	    audit_new(s->st, &s->audit, &err) != 0)
		goto out;
	if (s->dev) {
		if (dev_token != NULL)
			snprintf(token, sizeof(token), "%s", dev_token);
		else
			auth_token_generate(token, sizeof(token));
		if (dev_bootstrap(s, &err) != 0 || dev_root_token_set(s, token, &err) != 0)
			goto out;
	} else if (root_token_bootstrap(s, &err) != 0) {
		goto out;
	}
	if (auth_tokens_sweeper_start(s->tokens, SERVER_TOKEN_SWEEP_S, &err) != 0 ||
	    lease_sweeper_start(s->leases, SERVER_LEASE_SWEEP_S, &err) != 0 || crl_start(s->crl, &err) != 0 ||
	    ocsp_start(s->ocsp, &err) != 0 ||
	    http_start(s, &err) != 0)
		goto out;
	server_log(SERVER_LOG_INFO, "listening",
	           json_pack("{s:s, s:s, s:b, s:i, s:I, s:b}", "address", s->cfg.listen_address, "data_dir",
	                     s->cfg.data_dir, "tls", !s->cfg.tls_disable, "threads", (int)s->cfg.threads, "mounts",
	                     (json_int_t)mount_table_count(&s->mounts), "dev", s->dev));
	if (s->dev)
		dev_banner(s, token);
	OPENSSL_cleanse(token, sizeof(token));
	while (sigwait(&sigs, &sig) != 0 || (sig != SIGINT && sig != SIGTERM))
		;
	server_log(SERVER_LOG_INFO, "shutting down", json_pack("{s:s}", "signal", sig == SIGINT ? "SIGINT" : "SIGTERM"));
	rc = 0;
out:
	if (rc != 0) {
		json_t *f = json_pack("{s:s}", "error", err.detail);

		if (err.log[0] != '\0')
			json_object_set_new(f, "openssl", json_string(err.log));
		server_log(SERVER_LOG_ERROR, "cannot start", f);
		fprintf(stderr, "sigil server: %s\n", err.detail);
	}
	OPENSSL_cleanse(kek, sizeof(kek));
	OPENSSL_cleanse(token, sizeof(token));
	http_stop(s, SERVER_STOP_GRACE_MS);
	acme_validator_free(s->acme_validator); /* after the requests, before the store */
	s->acme_validator = NULL;
	audit_free(s->audit); /* after the last request: syncs and stores each device's chain head */
	s->audit = NULL;
	auth_mounts_free(s->auth_mounts);
	s->auth_mounts = NULL;
	auth_acl_store_free(s->acl);
	s->acl = NULL;
	auth_tokens_free(s->tokens); /* stops the sweeper before the store closes */
	s->tokens = NULL;
	lease_mgr_free(s->leases); /* after the tokens, which revoke through it */
	s->leases = NULL;
	ocsp_free(s->ocsp); /* before crl, whose revoke hook calls it */
	s->ocsp = NULL;
	crl_free(s->crl); /* after everything that revokes: it is the CA's revoke hook */
	s->crl = NULL;
	mount_table_clear(&s->mounts);
	ca_free(s->ca);
	s->ca = NULL;
	store_close(s->st);
	s->st = NULL;
	if (rc == 0)
		server_log(SERVER_LOG_INFO, "stopped", NULL);
	return rc;
}

int server_main(int argc, char **argv)
{
	const char *config = NULL, *dev_listen = NULL, *dev_token = NULL, *dev_dir = NULL, *log_level = NULL;
	bool dev = false, help = false, help2 = false;
	const struct server_flag flags[] = {
		{"config", false, &config, NULL},
		{"dev", true, NULL, &dev},
		{"dev-listen-address", false, &dev_listen, NULL},
		{"dev-root-token-id", false, &dev_token, NULL},
		{"dev-data-dir", false, &dev_dir, NULL},
		{"log-level", false, &log_level, NULL},
		{"h", true, NULL, &help},
		{"help", true, NULL, &help2},
	};
	struct server *s = NULL;
	struct sg_err err;
	int next = 0, rc = 1;

	sg_err_init(&err);
	/* argv[0] is "server". */
	if (server_flags_parse(argc - 1, argv + 1, flags, sizeof(flags) / sizeof(flags[0]), &next, &err) != 0) {
		fprintf(stderr, "sigil server: %s\n", err.detail);
		usage(stderr);
		return 2;
	}
	if (help || help2) {
		usage(stdout);
		return 0;
	}
	if (next != argc - 1) {
		fprintf(stderr, "sigil server: unexpected argument '%s'\n", argv[next + 1]);
		usage(stderr);
		return 2;
	}
	if (dev == (config != NULL)) {
		fprintf(stderr, "sigil server: give either -config FILE or -dev\n");
		usage(stderr);
		return 2;
	}
	if (!dev && (dev_listen != NULL || dev_token != NULL || dev_dir != NULL)) {
		fprintf(stderr, "sigil server: -dev-* flags need -dev\n");
		return 2;
	}
	s = sg_xcalloc(1, sizeof(*s));
	server_config_init(&s->cfg);
	s->dev = dev;
	if (dev) {
		struct sockaddr_storage ss;
		socklen_t sl;

		if (dev_token != NULL && !token_id_ok(dev_token)) {
			fprintf(stderr, "sigil server: -dev-root-token-id must be 1 to %d printable characters without spaces\n",
			        AUTH_TOKEN_MAX_BYTES);
			goto out;
		}
		free(s->cfg.listen_address);
		s->cfg.listen_address = sg_xstrdup(dev_listen != NULL ? dev_listen : DEV_LISTEN_DEFAULT);
		s->cfg.data_dir = sg_xstrdup(dev_dir != NULL ? dev_dir : DEV_DATA_DIR_DEFAULT);
		s->cfg.tls_disable = true;
		if (server_config_listen_parse(s->cfg.listen_address, &ss, &sl, &err) != 0) {
			fprintf(stderr, "sigil server: %s\n", err.detail);
			goto out;
		}
	} else if (server_config_load(config, &s->cfg, &err) != 0) {
		fprintf(stderr, "sigil server: %s\n", err.detail);
		goto out;
	}
	if (log_level != NULL && server_log_level_parse(log_level, &s->cfg.log_level) != 0) {
		fprintf(stderr, "sigil server: -log-level must be debug, info, warn or error\n");
		goto out;
	}
	rc = server_run(s, dev_token);
out:
	server_config_clear(&s->cfg);
	free(s);
	return rc;
}
