/*
 * ACME handlers (RFC 8555) for a PKI mount. Each directory is governed by
 * one role: /v1/<mount>/roles/:role/acme/ by that role (if config/acme
 * allows it), /v1/<mount>/acme/ by default_directory_policy. Certificates
 * come from ca_issue_ex under that role and are leases owned by the ACME
 * account ("<mount>/issue/<role>/...", so the role's kill switch,
 * sys/leases/revoke-prefix/<mount>/issue/<role>, revokes them too).
 *
 * Every answer carries a fresh Replay-Nonce (RFC 8555 6.5; compat section
 * 4: Vault's missing nonces broke clients), errors included, and errors are
 * application/problem+json with the type of common/errors.def.
 */
#include "server/pki_acme.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "acme/acme.h"
#include "server/internal.h"
#include "server/leases.h"
#include "server/pki.h"

#define ACME_HOST_MAX 255
#define ACME_ORDERS_PAGE 100      /* orders per page of an account's list (RFC 8555 7.1.2.1) */
#define ACME_MAX_ALT_CHAINS 8     /* alternate chains offered per certificate */
#define ACME_RL_WINDOW_S 3600

/*
 * One nonce service per process (one server per process). Its key is
 * random per start: nonces do not survive a restart, which RFC 8555 6.5
 * allows (clients retry on badNonce with the fresh nonce of the error).
 */
static pthread_once_t nonces_once = PTHREAD_ONCE_INIT;
static struct acme_nonces *nonces;

static void nonces_init(void)
{
	nonces = acme_nonces_new(NULL, 0);
}

static struct acme_nonces *nonce_service(void)
{
	pthread_once(&nonces_once, nonces_init);
	return nonces;
}

/* The new-order rate limits' counters: per process, in memory (acme.h, ratelimit.c). */
static pthread_once_t limits_once = PTHREAD_ONCE_INIT;
static struct acme_ratelimit *limits;

static void limits_init(void)
{
	limits = acme_ratelimit_new(ACME_RL_WINDOW_S);
}

static struct acme_ratelimit *limit_service(void)
{
	pthread_once(&limits_once, limits_init);
	return limits;
}

/* A directory's path inside the mount: "[issuer/<ref>/][roles/<role>/]acme/". */
static char *acme_dir_path(const char *issuer, const char *role)
{
	if (issuer != NULL && role != NULL)
		return sg_xasprintf("issuer/%s/roles/%s/acme/", issuer, role);
	if (issuer != NULL)
		return sg_xasprintf("issuer/%s/acme/", issuer);
	if (role != NULL)
		return sg_xasprintf("roles/%s/acme/", role);
	return sg_xstrdup("acme/");
}

/* The request's directory and everything derived from it. */
struct actx {
	struct req *rq;
	struct resp *rs;
	struct store *st;
	const char *mount_id;
	struct acme_config cfg;
	char *root;           /* "https://host:port" or the external URL, no trailing '/' */
	char *dir;            /* "acme/" or "roles/<role>/acme/" (stored in records) */
	char *dir_url;        /* root + "/v1/" + mount + "/" + dir */
	char *req_url;        /* root + "/v1/" + path */
	char *role_name;      /* governing role */
	char *issuer_ref;     /* issuer/:ref/... directories: the issuer that signs; NULL = the role's */
	struct role *role;
	json_t *account;      /* after a kid-signed request */
	char *thumbprint;     /* of the request's key */
	struct acme_jws jws;
	json_t *payload;      /* parsed payload (NULL for POST-as-GET) */
	int64_t retry_after;  /* newOrder: set when a rate limit refused it */
	bool ready;
};

static void actx_clear(struct actx *c)
{
	acme_config_clear(&c->cfg);
	free(c->root);
	free(c->dir);
	free(c->dir_url);
	free(c->req_url);
	free(c->role_name);
	free(c->issuer_ref);
	role_free(c->role);
	json_decref(c->account);
	free(c->thumbprint);
	acme_jws_clear(&c->jws);
	json_decref(c->payload);
}

/* ---- Rendering ---- */

static void add_nonce(struct resp *rs)
{
	char *n = acme_nonce_new(nonce_service());

	resp_header(rs, "Replay-Nonce", n);
	free(n);
}

static void add_index_link(struct actx *c)
{
	if (c->dir_url != NULL) {
		char *l = sg_xasprintf("<%sdirectory>;rel=\"index\"", c->dir_url);

		/* RFC 8555 7.1: every resource links its directory, beside any other Link. */
		resp_header_add(c->rs, "Link", l);
		free(l);
	}
}

/* A problem document (RFC 7807, RFC 8555 6.7). Always returns 0: the handler answered. */
static int problem_status(struct actx *c, const struct sg_err *e, int status)
{
	char *type = sg_xasprintf("urn:ietf:params:acme:error:%s", sg_err_acme_type(e->code));
	const char *detail = e->detail[0] != '\0' ? e->detail : sg_err_vault_text(e->code);
	json_t *doc = json_pack("{s:s, s:s, s:i}", "type", type, "detail", detail, "status", status);
	char *body = json_dumps(doc, JSON_COMPACT);

	resp_clear(c->rs);
	resp_raw(c->rs, "application/problem+json", body, strlen(body));
	c->rs->status = status;
	add_nonce(c->rs);
	add_index_link(c);
	free(body);
	free(type);
	json_decref(doc);
	return 0;
}

static int problem(struct actx *c, const struct sg_err *e)
{
	return problem_status(c, e, sg_err_http_status(e->code));
}

/* A JSON answer (steals j). location may be NULL. */
static int answer(struct actx *c, int status, json_t *j, const char *location)
{
	char *body = json_dumps(j, JSON_COMPACT);

	json_decref(j);
	resp_raw(c->rs, "application/json", body, strlen(body));
	free(body);
	c->rs->status = status;
	add_nonce(c->rs);
	if (location != NULL)
		resp_header(c->rs, "Location", location);
	add_index_link(c);
	return 0;
}

/* ---- Directory resolution ---- */

static bool host_ok(const char *h)
{
	size_t n = 0;

	for (; h[n] != '\0'; n++) {
		char ch = h[n];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
		      ch == '-' || ch == ':' || ch == '[' || ch == ']'))
			return false;
	}
	return n > 0 && n <= ACME_HOST_MAX;
}

static bool role_allowed(const struct acme_config *cfg, const char *role)
{
	return sg_strlist_has(&cfg->allowed_roles, "*") || sg_strlist_has(&cfg->allowed_roles, role);
}

/*
 * Config, directory, URLs and role of the request. On failure err is set
 * for a problem document (the directory may be unknown: no index link).
 */
static int actx_init(struct actx *c, struct req *rq, struct resp *rs, struct sg_err *err)
{
	const char *ext = server_external_url(rq->srv), *role = req_param(rq, "role"), *issuer = req_param(rq, "ref");
	const struct mount *m = rq->mount;

	memset(c, 0, sizeof(*c));
	c->rq = rq;
	c->rs = rs;
	c->st = server_store(rq->srv);
	c->mount_id = m->id;
	if (acme_config_get(c->st, c->mount_id, &c->cfg, err) != 0)
		return -1;
	if (ext != NULL) {
		size_t n = strlen(ext);

		while (n > 0 && ext[n - 1] == '/')
			n--;
		c->root = sg_xstrndup(ext, n);
	} else {
		/* No external_url: the URL the client used (RFC 8555 6.4 compares against it). */
		const char *host = req_header(rq, "Host");

		if (host == NULL || !host_ok(host))
			return sg_err_set(err, SG_ACME_MALFORMED, "missing or invalid Host header");
		c->root = sg_xasprintf("%s://%s", rq->srv->cfg.tls_disable ? "http" : "https", host);
	}
	c->req_url = sg_xasprintf("%s/v1/%s", c->root, rq->path);
	c->dir = acme_dir_path(issuer, role);
	if (role != NULL)
		c->role_name = sg_xstrdup(role);
	if (issuer != NULL)
		c->issuer_ref = sg_xstrdup(issuer);
	c->dir_url = sg_xasprintf("%s/v1/%s/%s", c->root, m->path, c->dir);
	if (!c->cfg.enabled)
		return sg_err_set(err, SG_ACME_UNAUTHORIZED, "ACME is disabled on this mount (config/acme enabled=false)");
	if (c->role_name == NULL) {
		if (strncmp(c->cfg.default_directory_policy, "role:", 5) != 0)
			return sg_err_set(err, SG_ACME_UNAUTHORIZED,
			                  "the default ACME directory is forbidden (default_directory_policy); use "
			                  "roles/<role>/acme/directory");
		c->role_name = sg_xstrdup(c->cfg.default_directory_policy + 5);
	} else if (!role_allowed(&c->cfg, c->role_name)) {
		return sg_err_set(err, SG_ACME_UNAUTHORIZED, "role \"%s\" is not in config/acme allowed_roles", c->role_name);
	}
	if (c->issuer_ref != NULL) {
		struct ca_issuer_info info = {0};

		if (!sg_strlist_has(&c->cfg.allowed_issuers, "*") && !sg_strlist_has(&c->cfg.allowed_issuers, c->issuer_ref))
			return sg_err_set(err, SG_ACME_UNAUTHORIZED, "issuer \"%s\" is not in config/acme allowed_issuers",
			                  c->issuer_ref);
		if (ca_issuer_get(server_ca(rq->srv), pki_mount(rq), c->issuer_ref, &info, err) != 0) {
			err->code = SG_ACME_UNAUTHORIZED;
			return -1;
		}
		ca_issuer_info_clear(&info);
	}
	if (pki_role_load(rq, c->role_name, &c->role, err) != 0) {
		err->code = SG_ACME_UNAUTHORIZED;
		return -1;
	}
	c->ready = true;
	return 0;
}

/* dir_url + kind [+ "/" + id [+ "/" + sub]]. */
static char *url_of(const struct actx *c, const char *kind, const char *id, const char *sub)
{
	if (id == NULL)
		return sg_xasprintf("%s%s", c->dir_url, kind);
	if (sub == NULL)
		return sg_xasprintf("%s%s/%s", c->dir_url, kind, id);
	return sg_xasprintf("%s%s/%s/%s", c->dir_url, kind, id, sub);
}

/* ---- Authentication of a POST (RFC 8555 6.2-6.5) ---- */

/* KEY_KID_ANY: a kid, and eab_policy always-required is not applied (the account resource). */
enum key_mode { KEY_KID, KEY_KID_ANY, KEY_JWK, KEY_EITHER };

static int load_account(struct actx *c, const char *id, struct sg_err *err)
{
	int r;

	if (!acme_id_valid(id))
		return sg_err_set(err, SG_ACME_NO_ACCOUNT, "no such account");
	r = acme_rec_get(c->st, c->mount_id, "acct", id, &c->account, err);
	if (r < 0)
		return -1;
	if (r == 0)
		return sg_err_set(err, SG_ACME_NO_ACCOUNT, "no such account");
	if (strcmp(json_string_value(json_object_get(c->account, "directory")), c->dir) != 0)
		return sg_err_set(err, SG_ACME_UNAUTHORIZED, "the account belongs to another ACME directory");
	return 0;
}

/*
 * Parses and verifies the JWS of the request: url, alg, key (kid: a valid
 * account of this directory; jwk: only where allowed), signature, then the
 * nonce (last, so a forged request cannot burn a client's nonce). Payload:
 * empty (POST-as-GET) leaves c->payload NULL, else a JSON object.
 */
static int authenticate(struct actx *c, enum key_mode mode, struct sg_err *err)
{
	const char *ct = req_header(c->rq, "Content-Type");
	EVP_PKEY *key = NULL;
	int rc = -1;

	/* RFC 8555 6.2: application/jose+json, else 415 malformed. */
	if (ct == NULL || strncasecmp(ct, "application/jose+json", 21) != 0 || (ct[21] != '\0' && ct[21] != ';')) {
		sg_err_set(err, SG_ACME_MALFORMED, "Content-Type must be application/jose+json");
		return -2;
	}
	if (c->rq->raw_len > ACME_MAX_JWS_BYTES)
		return sg_err_set(err, SG_ACME_MALFORMED, "request too large");
	{
		/* The router hands jose+json bodies over raw: strict JSON, duplicate members refused. */
		json_error_t jerr;
		json_t *body = json_loadb((const char *)c->rq->raw, c->rq->raw_len, JSON_REJECT_DUPLICATES, &jerr);
		int r;

		if (body == NULL)
			return sg_err_set(err, SG_ACME_MALFORMED, "request body is not JSON");
		r = acme_jws_parse(body, c->req_url, &c->jws, err);
		json_decref(body);
		if (r != 0)
			return -1;
	}
	if (c->jws.kid != NULL) {
		size_t n = strlen(c->dir_url);

		if (mode == KEY_JWK) {
			sg_err_set(err, SG_ACME_MALFORMED, "this resource requires a \"jwk\" JWS, not \"kid\"");
			goto out;
		}
		if (strncmp(c->jws.kid, c->dir_url, n) != 0 || strncmp(c->jws.kid + n, "account/", 8) != 0) {
			sg_err_set(err, SG_ACME_NO_ACCOUNT, "\"kid\" is not an account URL of this directory");
			goto out;
		}
		if (load_account(c, c->jws.kid + n + 8, err) != 0)
			goto out;
		if (strcmp(json_string_value(json_object_get(c->account, "status")), "valid") != 0) {
			sg_err_set(err, SG_ACME_UNAUTHORIZED, "the account is deactivated");
			goto out;
		}
		key = acme_jwk_to_pkey(json_object_get(c->account, "jwk"), err);
		c->thumbprint = sg_xstrdup(json_string_value(json_object_get(c->account, "thumbprint")));
	} else {
		if (mode == KEY_KID || mode == KEY_KID_ANY) {
			sg_err_set(err, SG_ACME_MALFORMED, "this resource requires a \"kid\" JWS, not \"jwk\"");
			goto out;
		}
		key = acme_jwk_to_pkey(c->jws.jwk, err);
		if (key != NULL)
			c->thumbprint = acme_jwk_thumbprint(c->jws.jwk, err);
	}
	if (key == NULL || c->thumbprint == NULL)
		goto out;
	if (acme_jws_verify(&c->jws, key, err) != 0)
		goto out;
	if (acme_nonce_use(nonce_service(), c->jws.nonce, err) != 0)
		goto out;
	if (c->jws.payload_len > 0) {
		json_error_t jerr;

		c->payload = json_loadb((const char *)c->jws.payload, c->jws.payload_len, JSON_REJECT_DUPLICATES, &jerr);
		if (!json_is_object(c->payload)) {
			sg_err_set(err, SG_ACME_MALFORMED, "JWS payload must be a JSON object");
			goto out;
		}
	}
	rc = 0;
out:
	EVP_PKEY_free(key);
	return rc;
}

/*
 * eab_policy always-required (Vault's semantics): every account must be
 * bound to an EAB key, those made before the policy changed included, so
 * an account without one can no longer use the directory (it may still
 * read and deactivate itself, revoke its certificates, and be bound by a
 * newAccount that carries EAB for its key); new-account-required only
 * governs newAccount.
 */
static int eab_bound(const struct actx *c, struct sg_err *err)
{
	if (c->cfg.eab_policy == ACME_EAB_ALWAYS_REQUIRED && json_object_get(c->account, "eab_kid") == NULL)
		return sg_err_set(err, SG_ACME_UNAUTHORIZED,
		                  "this directory requires accounts bound by external account binding (eab_policy "
		                  "always-required); send newAccount with an EAB key for this account key");
	return 0;
}

/* actx_init + authenticate (+ the EAB policy), rendering failures. Returns 0 to go on, 1 when answered. */
static int begin(struct actx *c, struct req *rq, struct resp *rs, enum key_mode mode)
{
	struct sg_err e;
	int r;

	sg_err_init(&e);
	if (actx_init(c, rq, rs, &e) != 0)
		return problem(c, &e), 1;
	r = authenticate(c, mode, &e);
	if (r == 0 && mode == KEY_KID && eab_bound(c, &e) != 0)
		return problem(c, &e), 1;
	if (r == 0)
		return 0;
	/* RFC 8555 6.2: a wrong Content-Type is 415 with a malformed problem. */
	problem_status(c, &e, r == -2 ? 415 : sg_err_http_status(e.code));
	return 1;
}

static bool owns(const struct actx *c, const json_t *rec)
{
	const char *a = json_string_value(json_object_get(rec, "account"));

	return a != NULL && strcmp(a, json_string_value(json_object_get(c->account, "id"))) == 0;
}

/* ---- Object rendering ---- */

static json_t *account_json(const struct actx *c, const json_t *acct)
{
	char *orders = url_of(c, "account", json_string_value(json_object_get(acct, "id")), "orders");
	json_t *j = json_pack("{s:O, s:O, s:s, s:O}", "status", json_object_get(acct, "status"), "contact",
	                      json_object_get(acct, "contact"), "orders", orders, "createdAt",
	                      json_object_get(acct, "created"));

	free(orders);
	return j;
}

static json_t *order_json(const struct actx *c, const json_t *ord)
{
	const char *id = json_string_value(json_object_get(ord, "id"));
	const char *status = json_string_value(json_object_get(ord, "status"));
	json_t *authzs = json_array(), *v;
	size_t i;
	char *fin = url_of(c, "order", id, "finalize");
	json_t *j;

	json_array_foreach(json_object_get(ord, "authzs"), i, v) {
		char *u = url_of(c, "authorization", json_string_value(v), NULL);

		json_array_append_new(authzs, json_string(u));
		free(u);
	}
	j = json_pack("{s:s, s:O, s:O, s:o, s:s}", "status", status, "expires", json_object_get(ord, "expires"),
	              "identifiers", json_object_get(ord, "identifiers"), "authorizations", authzs, "finalize", fin);
	free(fin);
	if (strcmp(status, "valid") == 0) {
		char *cert = url_of(c, "order", id, "cert");

		json_object_set_new(j, "certificate", json_string(cert));
		free(cert);
	}
	if (json_object_get(ord, "not_after") != NULL)
		json_object_set(j, "notAfter", json_object_get(ord, "not_after"));
	if (json_object_get(ord, "profile") != NULL)
		json_object_set(j, "profile", json_object_get(ord, "profile"));
	if (json_object_get(ord, "replaces") != NULL)
		json_object_set(j, "replaces", json_object_get(ord, "replaces"));
	if (json_object_get(ord, "error") != NULL)
		json_object_set(j, "error", json_object_get(ord, "error"));
	return j;
}

static json_t *challenge_json(const struct actx *c, const char *authz_id, const json_t *ch)
{
	char *u = url_of(c, "challenge", authz_id, json_string_value(json_object_get(ch, "type")));
	json_t *j = json_pack("{s:O, s:s, s:O, s:O}", "type", json_object_get(ch, "type"), "url", u, "token",
	                      json_object_get(ch, "token"), "status", json_object_get(ch, "status"));

	free(u);
	if (json_object_get(ch, "validated") != NULL)
		json_object_set(j, "validated", json_object_get(ch, "validated"));
	if (json_object_get(ch, "error") != NULL)
		json_object_set(j, "error", json_object_get(ch, "error"));
	return j;
}

static json_t *authz_json(const struct actx *c, const json_t *az)
{
	const char *id = json_string_value(json_object_get(az, "id"));
	json_t *chs = json_array(), *v, *j;
	size_t i;

	json_array_foreach(json_object_get(az, "challenges"), i, v)
		json_array_append_new(chs, challenge_json(c, id, v));
	j = json_pack("{s:O, s:O, s:O, s:o}", "identifier", json_object_get(az, "identifier"), "status",
	              json_object_get(az, "status"), "expires", json_object_get(az, "expires"), "challenges", chs);
	/* RFC 8555 7.1.4: the identifier of a wildcard authorization is the domain without "*.". */
	if (json_is_true(json_object_get(az, "wildcard")))
		json_object_set_new(j, "wildcard", json_true());
	return j;
}

/* ---- Handlers ---- */

int h_acme_directory(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct actx c;
	struct sg_err e;
	json_t *d;
	char *nn, *na, *no, *rc, *kc, *ri;

	(void)err;
	sg_err_init(&e);
	if (actx_init(&c, rq, rs, &e) != 0) {
		problem(&c, &e);
		goto out;
	}
	nn = url_of(&c, "new-nonce", NULL, NULL);
	na = url_of(&c, "new-account", NULL, NULL);
	no = url_of(&c, "new-order", NULL, NULL);
	rc = url_of(&c, "revoke-cert", NULL, NULL);
	kc = url_of(&c, "key-change", NULL, NULL);
	ri = url_of(&c, "renewal-info", NULL, NULL);
	/* RFC 9773 3: renewalInfo is the base URL the certID is appended to, after a '/'. */
	d = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:b}}", "newNonce", nn, "newAccount", na, "newOrder", no,
	              "revokeCert", rc, "keyChange", kc, "renewalInfo", ri, "meta", "externalAccountRequired",
	              c.cfg.eab_policy != ACME_EAB_NOT_REQUIRED);
	if (json_object_size(c.cfg.profiles) > 0) {
		/* draft-ietf-acme-profiles 3: meta.profiles maps each name to a description. */
		json_t *pr = json_object(), *v;
		const char *name;

		json_object_foreach(c.cfg.profiles, name, v)
			json_object_set(pr, name, json_object_get(v, "description"));
		json_object_set_new(json_object_get(d, "meta"), "profiles", pr);
	}
	/* RFC 8555 7.1.1: the CAA issuer domain names this server recognises as its own (RFC 8659 4.2). */
	if (c.cfg.caa_identities.n > 0)
		json_object_set_new(json_object_get(d, "meta"), "caaIdentities", sg_strlist_to_json(&c.cfg.caa_identities));
	free(ri);
	free(kc);
	free(nn);
	free(na);
	free(no);
	free(rc);
	answer(&c, 200, d, NULL);
out:
	actx_clear(&c);
	return 0;
}

int h_acme_new_nonce(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct actx c;
	struct sg_err e;

	(void)err;
	sg_err_init(&e);
	if (actx_init(&c, rq, rs, &e) != 0) {
		problem(&c, &e);
	} else {
		/* RFC 8555 7.2: HEAD answers 200, GET 204; the nonce is not cacheable. */
		resp_raw(rs, "text/plain", "", 0);
		rs->status = rq->head ? 200 : 204;
		add_nonce(rs);
		add_index_link(&c);
	}
	actx_clear(&c);
	return 0;
}

/*
 * eab_policy always-required and an account made without EAB: a newAccount
 * for its key that carries an EAB binds that EAB key to the account (which
 * may then order again); without one it is externalAccountRequired, so a
 * client learns why before its orders fail.
 */
static int bind_eab(struct actx *c, const char *id, struct sg_err *err)
{
	const json_t *eab = json_object_get(c->payload, "externalAccountBinding");
	char *url = NULL, *eab_id = NULL;
	struct store_batch *b = NULL;
	int rc = -1;

	if (eab == NULL)
		return sg_err_set(err, SG_ACME_EAB_REQUIRED,
		                  "the account of this key was made without external account binding, which this "
		                  "directory now requires (eab_policy always-required): send it with newAccount");
	url = url_of(c, "new-account", NULL, NULL);
	if (acme_eab_verify(c->st, c->mount_id, c->dir, eab, url, c->thumbprint, &eab_id, err) != 0)
		goto out;
	json_object_set_new(c->account, "eab_kid", json_string(eab_id));
	b = store_batch_new();
	acme_rec_put(b, c->mount_id, "acct", id, c->account);
	acme_rec_del(b, c->mount_id, "eab", eab_id); /* an EAB key binds one account */
	rc = store_commit(c->st, b, err);
out:
	store_batch_free(b);
	free(eab_id);
	free(url);
	return rc;
}

int h_acme_new_account(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct actx c;
	struct sg_err e;
	char *id = NULL, *eab_id = NULL, *loc = NULL, *new_acct_url = NULL;
	bool only_existing = false;
	json_t *acct = NULL, *eab;
	int r;

	(void)err;
	sg_err_init(&e);
	if (begin(&c, rq, rs, KEY_JWK) != 0)
		goto out;
	if (c.payload == NULL) {
		sg_err_set(&e, SG_ACME_MALFORMED, "newAccount needs a JSON payload");
		goto fail;
	}
	if (sg_json_bool(c.payload, "onlyReturnExisting", &only_existing, &e) < 0) {
		e.code = SG_ACME_MALFORMED;
		goto fail;
	}
	/* RFC 8555 7.3.1 and compat 4 (cm#2882): an existing key gets its account, before any EAB check. */
	r = acme_account_by_key(c.st, c.mount_id, c.thumbprint, &id, &e);
	if (r < 0)
		goto fail;
	if (r == 1) {
		if (load_account(&c, id, &e) != 0)
			goto fail;
		/* RFC 8555 7.3.6: a deactivated account is not served any more. */
		if (strcmp(json_string_value(json_object_get(c.account, "status")), "valid") != 0) {
			sg_err_set(&e, SG_ACME_UNAUTHORIZED, "the account of this key is deactivated");
			goto fail;
		}
		if (c.cfg.eab_policy == ACME_EAB_ALWAYS_REQUIRED && json_object_get(c.account, "eab_kid") == NULL &&
		    bind_eab(&c, id, &e) != 0)
			goto fail;
		loc = url_of(&c, "account", id, NULL);
		answer(&c, 200, account_json(&c, c.account), loc);
		goto out;
	}
	if (only_existing) {
		sg_err_set(&e, SG_ACME_NO_ACCOUNT, "no account exists for this key");
		goto fail;
	}
	if (acme_contacts_check(json_object_get(c.payload, "contact"), &e) != 0)
		goto fail;
	eab = json_object_get(c.payload, "externalAccountBinding");
	if (eab == NULL && c.cfg.eab_policy != ACME_EAB_NOT_REQUIRED) {
		sg_err_set(&e, SG_ACME_EAB_REQUIRED, "this directory requires external account binding");
		goto fail;
	}
	if (eab != NULL) {
		new_acct_url = url_of(&c, "new-account", NULL, NULL);
		if (acme_eab_verify(c.st, c.mount_id, c.dir, eab, new_acct_url, c.thumbprint, &eab_id, &e) != 0)
			goto fail;
	}
	if (acme_account_create(c.st, c.mount_id, c.dir, c.jws.jwk, c.thumbprint, json_object_get(c.payload, "contact"),
	                        eab_id, &acct, &e) != 0) {
		if (e.code == SG_CONFLICT)
			sg_err_set(&e, SG_ACME_MALFORMED, "an account for this key was created concurrently; retry");
		goto fail;
	}
	loc = url_of(&c, "account", json_string_value(json_object_get(acct, "id")), NULL);
	answer(&c, 201, account_json(&c, acct), loc);
	goto out;
fail:
	problem(&c, &e);
out:
	json_decref(acct);
	free(id);
	free(eab_id);
	free(loc);
	free(new_acct_url);
	actx_clear(&c);
	return 0;
}

int h_acme_account(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct actx c;
	struct sg_err e;
	const char *status = NULL;
	struct store_batch *b = NULL;
	json_t *contact;
	char *loc = NULL;

	(void)err;
	sg_err_init(&e);
	if (begin(&c, rq, rs, KEY_KID_ANY) != 0)
		goto out;
	/* RFC 8555 7.3.2: the kid must be the account addressed. */
	if (strcmp(c.jws.kid, c.req_url) != 0) {
		sg_err_set(&e, SG_ACME_UNAUTHORIZED, "\"kid\" does not match the account URL");
		goto fail;
	}
	if (c.payload != NULL) {
		contact = json_object_get(c.payload, "contact");
		if (sg_json_str(c.payload, "status", &status, &e) < 0) {
			e.code = SG_ACME_MALFORMED;
			goto fail;
		}
		if (status != NULL && strcmp(status, "deactivated") != 0) {
			sg_err_set(&e, SG_ACME_MALFORMED, "an account's status can only be changed to \"deactivated\"");
			goto fail;
		}
		if (acme_contacts_check(contact, &e) != 0)
			goto fail;
		if (contact != NULL)
			json_object_set_new(c.account, "contact", json_is_array(contact) ? json_incref(contact) : json_array());
		if (status != NULL)
			json_object_set_new(c.account, "status", json_string("deactivated"));
		b = store_batch_new();
		acme_rec_put(b, c.mount_id, "acct", json_string_value(json_object_get(c.account, "id")), c.account);
		if (store_commit(c.st, b, &e) != 0)
			goto fail;
	}
	loc = sg_xstrdup(c.req_url);
	answer(&c, 200, account_json(&c, c.account), loc);
	goto out;
fail:
	problem(&c, &e);
out:
	store_batch_free(b);
	free(loc);
	actx_clear(&c);
	return 0;
}

/* RFC 8555 7.3.5: an inner JWS signed by the new key, naming the account and its old key. */
int h_acme_key_change(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct actx c;
	struct sg_err e;
	struct acme_jws inner;
	EVP_PKEY *newkey = NULL;
	char *new_tp = NULL, *old_tp = NULL, *acct_url = NULL, *other = NULL;
	const char *account;
	int r;

	(void)err;
	sg_err_init(&e);
	memset(&inner, 0, sizeof(inner));
	if (begin(&c, rq, rs, KEY_KID) != 0)
		goto out;
	if (c.payload == NULL || acme_jws_parse_inner(c.payload, c.req_url, &inner, &e) != 0) {
		if (!sg_err_isset(&e))
			sg_err_set(&e, SG_ACME_MALFORMED, "keyChange needs an inner JWS");
		e.code = e.code == SG_ACME_UNAUTHORIZED ? SG_ACME_UNAUTHORIZED : SG_ACME_MALFORMED;
		goto fail;
	}
	newkey = acme_jwk_to_pkey(inner.jwk, &e);
	if (newkey == NULL || acme_jws_verify(&inner, newkey, &e) != 0 ||
	    (new_tp = acme_jwk_thumbprint(inner.jwk, &e)) == NULL)
		goto fail;
	{
		json_error_t jerr;
		json_t *p = json_loadb((const char *)inner.payload, inner.payload_len, JSON_REJECT_DUPLICATES, &jerr);

		account = json_string_value(json_object_get(p, "account"));
		acct_url = account != NULL ? sg_xstrdup(account) : NULL;
		old_tp = json_is_object(json_object_get(p, "oldKey")) ? acme_jwk_thumbprint(json_object_get(p, "oldKey"), &e)
		                                                        : NULL;
		json_decref(p);
	}
	if (acct_url == NULL || strcmp(acct_url, c.jws.kid) != 0) {
		sg_err_set(&e, SG_ACME_UNAUTHORIZED, "the inner JWS names another account");
		goto fail;
	}
	if (old_tp == NULL || strcmp(old_tp, c.thumbprint) != 0) {
		sg_err_init(&e);
		sg_err_set(&e, SG_ACME_UNAUTHORIZED, "\"oldKey\" is not the account's key");
		goto fail;
	}
	/* RFC 8555 7.3.5: a key already bound to an account is 409 with that account's URL. */
	r = acme_account_by_key(c.st, c.mount_id, new_tp, &other, &e);
	if (r < 0)
		goto fail;
	if (r == 1) {
		char *loc = url_of(&c, "account", other, NULL);

		sg_err_set(&e, SG_ACME_MALFORMED, "the new key is already bound to an account");
		problem_status(&c, &e, 409);
		resp_header(rs, "Location", loc);
		free(loc);
		goto out;
	}
	if (acme_account_rekey(c.st, c.mount_id, c.account, inner.jwk, new_tp, &e) != 0) {
		if (e.code == SG_CONFLICT)
			e.code = SG_ACME_MALFORMED;
		goto fail;
	}
	answer(&c, 200, account_json(&c, c.account), c.jws.kid);
	goto out;
fail:
	problem(&c, &e);
out:
	acme_jws_clear(&inner);
	EVP_PKEY_free(newkey);
	free(new_tp);
	free(old_tp);
	free(acct_url);
	free(other);
	actx_clear(&c);
	return 0;
}

struct orders_scan {
	json_t *urls;
	const struct actx *c;
	size_t prefix_len;
	size_t seen;
	char last[ACME_ID_LEN + 1];
};

static int orders_cb(void *arg, const char *key, size_t klen, const void *val, size_t vlen)
{
	struct orders_scan *s = arg;
	char *id, *u;

	(void)val;
	(void)vlen;
	/* One more than a page is read only to know whether a next page exists. */
	if (++s->seen > ACME_ORDERS_PAGE)
		return 1;
	id = sg_xstrndup(key + s->prefix_len, klen - s->prefix_len);
	u = url_of(s->c, "order", id, NULL);
	json_array_append_new(s->urls, json_string(u));
	snprintf(s->last, sizeof(s->last), "%s", id);
	free(u);
	free(id);
	return 0;
}

/*
 * RFC 8555 7.1.2.1: the account's orders, ACME_ORDERS_PAGE per page, the
 * next page linked with rel="next" ("orders/<last order id of this page>").
 */
int h_acme_account_orders(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct actx c;
	struct sg_err e;
	struct orders_scan s;
	const char *after = req_param(rq, "after");
	char *prefix = NULL, *after_key = NULL;

	(void)err;
	sg_err_init(&e);
	memset(&s, 0, sizeof(s));
	if (begin(&c, rq, rs, KEY_KID) != 0)
		goto out;
	if (strcmp(req_param(rq, "kid"), json_string_value(json_object_get(c.account, "id"))) != 0) {
		sg_err_set(&e, SG_ACME_UNAUTHORIZED, "the orders of another account");
		goto fail;
	}
	if (after != NULL && !acme_id_valid(after)) {
		sg_err_set(&e, SG_ACME_MALFORMED, "no such page of orders");
		goto fail;
	}
	prefix = sg_xasprintf("%s/acctorder/%s/", c.mount_id, req_param(rq, "kid"));
	if (after != NULL)
		after_key = sg_xasprintf("%s%s", prefix, after);
	s.urls = json_array();
	s.c = &c;
	s.prefix_len = strlen(prefix);
	if (store_scan(c.st, STORE_ACME, prefix, after_key, ACME_ORDERS_PAGE + 1, orders_cb, &s, &e) < 0) {
		json_decref(s.urls);
		goto fail;
	}
	if (s.seen > ACME_ORDERS_PAGE) {
		char *next = url_of(&c, "account", req_param(rq, "kid"), "orders");
		char *link = sg_xasprintf("<%s/%s>;rel=\"next\"", next, s.last);

		resp_header_add(rs, "Link", link);
		free(link);
		free(next);
	}
	answer(&c, 200, json_pack("{s:o}", "orders", s.urls), NULL);
	goto out;
fail:
	problem(&c, &e);
out:
	free(prefix);
	free(after_key);
	actx_clear(&c);
	return 0;
}

/*
 * The new-order rate limits (config/acme rate_limits) over the normalised
 * identifiers. A refusal is SG_ACME_RATE_LIMITED (503, which cert-manager
 * retries with back-off where a 429 would fail its Order for good, compat
 * 1.6) with c->retry_after set.
 */
static int order_rate_check(struct actx *c, const json_t *ids, struct sg_err *err)
{
	const char *keys[ACME_RL_MAX_KEYS];
	int64_t lim[ACME_RL_MAX_KEYS], wait = 0;
	char *owned[ACME_RL_MAX_KEYS];
	size_t n = 0, i;
	const json_t *v;
	int r;

	if (c->cfg.orders_per_account_per_hour <= 0 && c->cfg.orders_per_identifier_per_hour <= 0)
		return 0;
	owned[n] = sg_xasprintf("%s|acct|%s", c->mount_id, json_string_value(json_object_get(c->account, "id")));
	keys[n] = owned[n];
	lim[n++] = c->cfg.orders_per_account_per_hour;
	json_array_foreach(ids, i, v) {
		if (n >= ACME_RL_MAX_KEYS)
			break;
		owned[n] = sg_xasprintf("%s|ident|%s|%s", c->mount_id, json_string_value(json_object_get(v, "type")),
		                        json_string_value(json_object_get(v, "value")));
		keys[n] = owned[n];
		lim[n++] = c->cfg.orders_per_identifier_per_hour;
	}
	r = acme_ratelimit_take(limit_service(), keys, lim, n, sg_now(), &wait);
	for (i = 0; i < n; i++)
		free(owned[i]);
	if (r == 0)
		return 0;
	c->retry_after = wait;
	return sg_err_set(err, SG_ACME_RATE_LIMITED, "too many new orders for this account or identifier; retry after %llds",
	                  (long long)wait);
}

/*
 * newOrder's check: the order's role must allow every identifier
 * (rejectedIdentifier otherwise), then the rate limits.
 */
static int order_names_check(void *arg, const json_t *ids, struct sg_err *err)
{
	struct actx *c = arg;
	struct role_names n;
	const json_t *v;
	size_t i;
	int rc;

	role_names_init(&n);
	json_array_foreach(ids, i, v) {
		const char *type = json_string_value(json_object_get(v, "type"));
		const char *value = json_string_value(json_object_get(v, "value"));

		if (strcmp(type, "dns") == 0) {
			sg_strlist_add(&n.dns, value);
			if (n.common_name == NULL)
				n.common_name = sg_xstrdup(value);
		} else {
			sg_strlist_add(&n.ips, value);
		}
	}
	if (n.common_name == NULL && c->role->require_cn) {
		/* As at finalize: an order of IP identifiers only has no common name (RFC 8738). */
		struct role *r = role_dup(c->role);

		r->require_cn = false;
		rc = role_check_names(r, &n, err);
		role_free(r);
	} else {
		rc = role_check_names(c->role, &n, err);
	}
	if (rc != 0 && err->code == SG_ROLE_DENIED)
		err->code = SG_ACME_REJECTED_IDENTIFIER;
	role_names_clear(&n);
	if (rc == 0)
		rc = order_rate_check(c, ids, err);
	return rc;
}

/* The certificate shares an identifier with the new order's (raw, not yet normalised) identifiers. */
static bool cert_shares_identifier(X509 *x, const json_t *ids)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	bool hit = false;

	for (int k = 0; gens != NULL && !hit && k < sk_GENERAL_NAME_num(gens); k++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, k);
		const json_t *v;
		size_t i;

		json_array_foreach(ids, i, v) {
			const char *type = json_string_value(json_object_get(v, "type"));
			const char *value = json_string_value(json_object_get(v, "value"));
			unsigned char addr[16];

			if (type == NULL || value == NULL)
				continue;
			if (g->type == GEN_DNS && strcmp(type, "dns") == 0 &&
			    (size_t)ASN1_STRING_length(g->d.dNSName) == strlen(value) &&
			    strncasecmp((const char *)ASN1_STRING_get0_data(g->d.dNSName), value, strlen(value)) == 0)
				hit = true;
			else if (g->type == GEN_IPADD && strcmp(type, "ip") == 0) {
				int len = ASN1_STRING_length(g->d.iPAddress);

				if ((len == 4 && inet_pton(AF_INET, value, addr) == 1) ||
				    (len == 16 && inet_pton(AF_INET6, value, addr) == 1))
					hit = memcmp(ASN1_STRING_get0_data(g->d.iPAddress), addr, (size_t)len) == 0;
			}
			if (hit)
				break;
		}
	}
	GENERAL_NAMES_free(gens);
	return hit;
}

/*
 * newOrder "replaces" (RFC 9773 5): a certificate of this mount, issued to
 * this account, sharing an identifier with the order, not yet replaced by
 * a finalized order. 0 ok (*serial set); -1 malformed (the detail names
 * "replaces", so cert-manager retries without it) or alreadyReplaced.
 */
static int replaces_check(struct actx *c, const char *certid, char **serial, struct sg_err *err)
{
	struct ca_cert_record rec;
	unsigned char *aki = NULL;
	size_t aki_len = 0;
	X509 *x = NULL;
	json_t *mark = NULL;
	struct sg_err tmp;
	int rc = -1, r;

	memset(&rec, 0, sizeof(rec));
	sg_err_init(&tmp);
	*serial = NULL;
	if (acme_certid_parse(certid, &aki, &aki_len, serial, &tmp) != 0) {
		sg_err_set(err, SG_ACME_MALFORMED, "replaces: %s", tmp.detail);
		goto out;
	}
	if (ca_cert_get(server_ca(c->rq->srv), pki_mount(c->rq), *serial, &rec, &tmp) != 0 ||
	    (x = ca_cert_parse(rec.der, rec.der_len, &tmp)) == NULL || !acme_certid_aki_matches(x, aki, aki_len)) {
		sg_err_set(err, SG_ACME_MALFORMED, "replaces: no certificate of this CA has that certID");
		goto out;
	}
	if (rec.owner == NULL || strcmp(rec.owner, json_string_value(json_object_get(c->account, "id"))) != 0) {
		sg_err_set(err, SG_ACME_MALFORMED, "replaces: the certificate was not issued to this account");
		goto out;
	}
	if (!cert_shares_identifier(x, json_object_get(c->payload, "identifiers"))) {
		sg_err_set(err, SG_ACME_MALFORMED, "replaces: the certificate shares no identifier with the order");
		goto out;
	}
	r = acme_rec_get(c->st, c->mount_id, "replaced", *serial, &mark, err);
	if (r < 0)
		goto out;
	if (r == 1) {
		sg_err_set(err, SG_ACME_ALREADY_REPLACED, "replaces: the certificate was already replaced by order %s",
		           json_string_value(json_object_get(mark, "order")) ? json_string_value(json_object_get(mark, "order"))
		                                                             : "?");
		goto out;
	}
	rc = 0;
out:
	if (rc != 0) {
		free(*serial);
		*serial = NULL;
	}
	json_decref(mark);
	X509_free(x);
	free(aki);
	ca_cert_record_clear(&rec);
	return rc;
}

int h_acme_new_order(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct actx c;
	struct sg_err e;
	json_t *ord = NULL, *extra = NULL;
	const char *not_after = NULL;
	char *loc = NULL, *replaced = NULL;

	(void)err;
	sg_err_init(&e);
	if (begin(&c, rq, rs, KEY_KID) != 0)
		goto out;
	if (c.payload == NULL) {
		sg_err_set(&e, SG_ACME_MALFORMED, "newOrder needs a JSON payload");
		goto fail;
	}
	{
		/* draft-ietf-acme-profiles 4: the profile names the role; an unknown one is invalidProfile. */
		const json_t *pj = json_object_get(c.payload, "profile");
		const char *pname = json_string_value(pj), *prole;

		if (pj != NULL) {
			prole = pname != NULL ? acme_config_profile_role(&c.cfg, pname) : NULL;
			if (prole == NULL) {
				sg_err_set(&e, SG_ACME_INVALID_PROFILE,
				           "profile \"%.64s\" is not offered by this directory (see meta.profiles)",
				           pname != NULL ? pname : "");
				goto fail;
			}
			if (!role_allowed(&c.cfg, prole)) {
				sg_err_set(&e, SG_ACME_UNAUTHORIZED, "profile \"%s\": role \"%s\" is not in allowed_roles", pname,
				           prole);
				goto fail;
			}
			role_free(c.role);
			c.role = NULL;
			free(c.role_name);
			c.role_name = sg_xstrdup(prole);
			if (pki_role_load(rq, c.role_name, &c.role, &e) != 0) {
				e.code = SG_ACME_UNAUTHORIZED;
				goto fail;
			}
			extra = json_pack("{s:s}", "profile", pname);
		}
	}
	/*
	 * RFC 8555 7.4 notAfter (cert-manager's enableDurationFeature): honoured
	 * within the role's max_ttl (Vault and Boulder refuse it, which fails
	 * cert-manager's Order for good). notBefore is refused: certificates
	 * start now (backdated by the role's not_before_duration).
	 */
	if (json_object_get(c.payload, "notBefore") != NULL) {
		sg_err_set(&e, SG_ACME_MALFORMED, "notBefore is not supported: certificates start when issued");
		goto fail;
	}
	if (json_object_get(c.payload, "notAfter") != NULL) {
		const struct mount *m = rq->mount;
		bool clamped = false;
		int64_t max = role_ttl(c.role, INT64_MAX / 4, m->ca.default_ttl, m->ca.max_ttl, &clamped), t = 0;

		if (max > c.cfg.max_ttl)
			max = c.cfg.max_ttl;

		not_after = json_string_value(json_object_get(c.payload, "notAfter"));
		if (not_after == NULL || strlen(not_after) > 64 || sg_time_parse_rfc3339(not_after, &t) != 0) {
			sg_err_set(&e, SG_ACME_MALFORMED, "notAfter must be an RFC 3339 time");
			goto fail;
		}
		if (t <= sg_now() || t > sg_now() + max) {
			sg_err_set(&e, SG_ACME_MALFORMED,
			           "notAfter must be in the future and within the role's and config/acme's max_ttl (%llds)",
			           (long long)max);
			goto fail;
		}
	}
	if (json_object_get(c.payload, "replaces") != NULL) {
		const char *certid = json_string_value(json_object_get(c.payload, "replaces"));
		if (certid == NULL) {
			sg_err_set(&e, SG_ACME_MALFORMED, "replaces must be a certID string");
			goto fail;
		}
		if (replaces_check(&c, certid, &replaced, &e) != 0)
			goto fail;
		if (extra == NULL)
			extra = json_object();
		json_object_set_new(extra, "replaces", json_string(certid));
		json_object_set_new(extra, "replaces_serial", json_string(replaced));
	}
	if (acme_order_create_ex(c.st, c.mount_id, json_string_value(json_object_get(c.account, "id")), c.dir,
	                         c.role_name, json_object_get(c.payload, "identifiers"), not_after, extra,
	                         order_names_check, &c, &ord, &e) != 0) {
		if (e.code == SG_ACME_RATE_LIMITED) {
			char ra[32];

			problem(&c, &e);
			snprintf(ra, sizeof(ra), "%lld", (long long)c.retry_after);
			resp_header(rs, "Retry-After", ra);
			goto out;
		}
		goto fail;
	}
	loc = url_of(&c, "order", json_string_value(json_object_get(ord, "id")), NULL);
	/* cert-manager accepts only 201 here (compat 0 #4). */
	answer(&c, 201, order_json(&c, ord), loc);
	goto out;
fail:
	problem(&c, &e);
out:
	json_decref(ord);
	json_decref(extra);
	free(replaced);
	free(loc);
	actx_clear(&c);
	return 0;
}

/* Loads an order of the caller's account: 1 answered (problem), 0 loaded. */
static int order_get(struct actx *c, const char *id, json_t **ord, struct sg_err *e)
{
	int r = acme_order_load(c->st, c->mount_id, id, ord, e);

	if (r == 0)
		sg_err_set(e, SG_NOT_FOUND, "no such order");
	if (r == 1 && !owns(c, *ord))
		sg_err_set(e, SG_ACME_UNAUTHORIZED, "the order belongs to another account");
	return sg_err_isset(e) ? -1 : 0;
}

int h_acme_order(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct actx c;
	struct sg_err e;
	json_t *ord = NULL;

	(void)err;
	sg_err_init(&e);
	if (begin(&c, rq, rs, KEY_KID) != 0)
		goto out;
	if (order_get(&c, req_param(rq, "id"), &ord, &e) != 0)
		problem(&c, &e);
	else
		answer(&c, 200, order_json(&c, ord), NULL);
out:
	json_decref(ord);
	actx_clear(&c);
	return 0;
}

/*
 * RFC 8555 7.4: the CSR must ask for exactly the order's identifiers: its
 * DNS SANs (and a CN, if any) are the dns identifiers, its IP SANs the ip
 * identifiers, and nothing else.
 */
static int csr_matches(const json_t *ids, const struct role_names *n, struct sg_err *err)
{
	struct sg_strlist dns = {0}, ips = {0};
	const json_t *v;
	size_t i;
	int rc = -1;

	json_array_foreach(ids, i, v) {
		const char *type = json_string_value(json_object_get(v, "type"));

		sg_strlist_add(strcmp(type, "dns") == 0 ? &dns : &ips, json_string_value(json_object_get(v, "value")));
	}
	if (n->emails.n > 0 || n->uris.n > 0 || n->other_sans.n > 0) {
		sg_err_set(err, SG_BAD_CSR, "the CSR asks for names that are not order identifiers");
		goto out;
	}
	if (n->common_name != NULL && n->common_name[0] != '\0' && !sg_strlist_has_ci(&dns, n->common_name) &&
	    !sg_strlist_has(&ips, n->common_name)) {
		sg_err_set(err, SG_BAD_CSR, "the CSR common name \"%s\" is not an order identifier", n->common_name);
		goto out;
	}
	for (i = 0; i < n->dns.n; i++)
		if (!sg_strlist_has_ci(&dns, n->dns.v[i])) {
			sg_err_set(err, SG_BAD_CSR, "the CSR name \"%s\" is not an order identifier", n->dns.v[i]);
			goto out;
		}
	for (i = 0; i < dns.n; i++)
		if (!sg_strlist_has_ci(&n->dns, dns.v[i]) &&
		    !(n->common_name != NULL && strcasecmp(n->common_name, dns.v[i]) == 0)) {
			sg_err_set(err, SG_BAD_CSR, "the CSR does not ask for the order identifier \"%s\"", dns.v[i]);
			goto out;
		}
	for (i = 0; i < n->ips.n; i++)
		if (!sg_strlist_has(&ips, n->ips.v[i])) {
			sg_err_set(err, SG_BAD_CSR, "the CSR address %s is not an order identifier", n->ips.v[i]);
			goto out;
		}
	for (i = 0; i < ips.n; i++)
		if (!sg_strlist_has(&n->ips, ips.v[i])) {
			sg_err_set(err, SG_BAD_CSR, "the CSR does not ask for the order identifier %s", ips.v[i]);
			goto out;
		}
	rc = 0;
out:
	sg_strlist_clear(&dns);
	sg_strlist_clear(&ips);
	return rc;
}

/*
 * The certificate's batch also makes the order valid and records its lease
 * (one durable write): the order keeps the serial and issuer, and the chain
 * is assembled when the certificate is downloaded.
 */
struct finalize_hook {
	struct pki_lease_hook lease;
	const char *mount_id;
	json_t *order;           /* updated in place */
};

static int finalize_hook_run(void *arg, const struct ca_result *res, struct store_batch *b, struct sg_err *err)
{
	struct finalize_hook *h = arg;

	if (pki_lease_hook_run(&h->lease, res, b, err) != 0)
		return -1;
	json_object_set_new(h->order, "status", json_string("valid"));
	json_object_set_new(h->order, "serial", json_string(res->serial));
	json_object_set_new(h->order, "issuer_id", json_string(res->issuer_id));
	json_object_set_new(h->order, "lease_id", json_string(h->lease.lease_id));
	acme_rec_put(b, h->mount_id, "order", json_string_value(json_object_get(h->order, "id")), h->order);
	if (json_object_get(h->order, "replaces_serial") != NULL) {
		/*
		 * RFC 9773 5: the replaced certificate is marked with the issuance
		 * (put_new: of two orders replacing it, one finalize wins).
		 */
		json_t *mark = json_pack("{s:O, s:s}", "order", json_object_get(h->order, "id"), "by", res->serial);

		acme_rec_put_new(b, h->mount_id, "replaced", json_string_value(json_object_get(h->order, "replaces_serial")),
		                 mark);
		json_decref(mark);
	}
	return 0;
}

int h_acme_finalize(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct actx c;
	struct sg_err e;
	json_t *ord = NULL;
	const char *csr_b64 = NULL;
	unsigned char *der = NULL;
	size_t der_len = 0;
	X509_REQ *csr = NULL;
	EVP_PKEY *acct_key = NULL;
	struct role_names names;
	struct ca_request creq;
	struct ca_result res;
	struct finalize_hook fh;
	struct role *issuing_role = NULL;
	bool claimed = false;
	char *loc = NULL;
	size_t i;

	(void)err;
	sg_err_init(&e);
	role_names_init(&names);
	ca_request_init(&creq);
	memset(&res, 0, sizeof(res));
	memset(&fh, 0, sizeof(fh));
	if (begin(&c, rq, rs, KEY_KID) != 0)
		goto out;
	if (order_get(&c, req_param(rq, "id"), &ord, &e) != 0)
		goto fail;
	{
		/* A profile's order is issued under the profile's role, not the directory's. */
		const char *orole = json_string_value(json_object_get(ord, "role"));

		if (orole != NULL && strcmp(orole, c.role_name) != 0) {
			if (!role_allowed(&c.cfg, orole)) {
				sg_err_set(&e, SG_ACME_UNAUTHORIZED, "role \"%s\" is not in config/acme allowed_roles", orole);
				goto fail;
			}
			role_free(c.role);
			c.role = NULL;
			free(c.role_name);
			c.role_name = sg_xstrdup(orole);
			if (pki_role_load(rq, c.role_name, &c.role, &e) != 0) {
				e.code = SG_ACME_UNAUTHORIZED;
				goto fail;
			}
		}
	}
	/* RFC 8555 7.4: only a ready order can be finalized. */
	if (strcmp(json_string_value(json_object_get(ord, "status")), "ready") != 0) {
		sg_err_set(&e, SG_ACME_ORDER_NOT_READY, "the order is %s, not ready",
		           json_string_value(json_object_get(ord, "status")));
		goto fail;
	}
	if (c.payload == NULL || sg_json_str(c.payload, "csr", &csr_b64, &e) != 1) {
		sg_err_set(&e, SG_ACME_MALFORMED, "finalize needs {\"csr\": base64url DER}");
		goto fail;
	}
	if (strlen(csr_b64) > CA_MAX_CSR_BYTES * 4 / 3 + 4 || sg_b64url_decode(csr_b64, strlen(csr_b64), &der, &der_len) != 0) {
		sg_err_set(&e, SG_BAD_CSR, "csr is not base64url");
		goto fail;
	}
	csr = ca_csr_parse(der, der_len, &e);
	if (csr == NULL)
		goto fail;
	if (ca_csr_names(csr, &names, &e) != 0 || csr_matches(json_object_get(ord, "identifiers"), &names, &e) != 0)
		goto fail;
	/* RFC 8555 11.1: the certificate key must not be the account key. */
	acct_key = acme_jwk_to_pkey(json_object_get(c.account, "jwk"), &e);
	if (acct_key == NULL)
		goto fail;
	if (EVP_PKEY_eq(acct_key, X509_REQ_get0_pubkey(csr)) == 1) {
		sg_err_set(&e, SG_BAD_CSR, "the certificate key must differ from the account key");
		goto fail;
	}
	creq.kind = CA_REQ_SIGN;
	creq.issuer_ref = c.issuer_ref;
	creq.csr = csr;
	creq.force_truncate = true;
	creq.not_after = json_string_value(json_object_get(ord, "not_after"));
	if (creq.not_after == NULL) {
		/* config/acme max_ttl caps the role's validity (Vault: 90 days unless set). */
		const struct mount *m = rq->mount;
		bool clamped = false;

		creq.ttl = role_ttl(c.role, 0, m->ca.default_ttl, m->ca.max_ttl, &clamped);
		if (creq.ttl > c.cfg.max_ttl)
			creq.ttl = c.cfg.max_ttl;
	}
	creq.owner = json_string_value(json_object_get(c.account, "id"));
	{
		const json_t *v;

		json_array_foreach(json_object_get(ord, "identifiers"), i, v) {
			const char *type = json_string_value(json_object_get(v, "type"));
			const char *value = json_string_value(json_object_get(v, "value"));

			if (strcmp(type, "dns") == 0) {
				sg_strlist_add(&creq.alt_names, value);
				if (creq.common_name == NULL)
					creq.common_name = value;
			} else {
				sg_strlist_add(&creq.ip_sans, value);
			}
		}
	}
	/* A CSR common name that is one of the order's IP addresses (uacme) stays an IP SAN only. */
	if (names.common_name != NULL && names.common_name[0] != '\0' &&
	    !sg_strlist_has(&creq.ip_sans, names.common_name))
		creq.common_name = names.common_name;
	/*
	 * One finalize per order: a marker written with put_new claims the
	 * order, so two concurrent finalizes cannot both issue; it is removed
	 * again when issuance fails, so the client may retry.
	 */
	{
		struct store_batch *lb = store_batch_new();
		json_t *mark = json_object();
		int lrc;

		acme_rec_put_new(lb, c.mount_id, "finalizing", req_param(rq, "id"), mark);
		lrc = store_commit(c.st, lb, &e);
		store_batch_free(lb);
		json_decref(mark);
		if (lrc != 0) {
			if (e.code == SG_CONFLICT) {
				sg_err_init(&e);
				sg_err_set(&e, SG_ACME_ORDER_NOT_READY, "the order is being finalized");
			}
			goto fail;
		}
		claimed = true;
	}
	fh.lease.lm = server_leases(rq->srv);
	fh.lease.mount = pki_mount(rq);
	fh.lease.op = "issue";
	fh.lease.role = c.role_name;
	fh.lease.owner = creq.owner;
	fh.mount_id = c.mount_id;
	fh.order = ord;
	/*
	 * The CSR was checked against the order above; the names come from the
	 * order (RFC 8555 7.4), so the role's use_csr_* switches do not apply,
	 * and an order of IP identifiers only has no common name.
	 */
	issuing_role = role_dup(c.role);
	issuing_role->use_csr_common_name = false;
	issuing_role->use_csr_sans = false;
	if (creq.common_name == NULL)
		issuing_role->require_cn = false;
	if (ca_issue_ex(server_ca(rq->srv), pki_mount(rq), issuing_role, &creq, finalize_hook_run, &fh, &res, &e) != 0) {
		if (e.code == SG_ROLE_DENIED)
			e.code = SG_ACME_REJECTED_IDENTIFIER;
		if (e.code == SG_CONFLICT && json_object_get(ord, "replaces_serial") != NULL) {
			/* Another order replacing the same certificate was finalized first. */
			sg_err_init(&e);
			sg_err_set(&e, SG_ACME_ALREADY_REPLACED, "replaces: the certificate was already replaced by another order");
			problem(&c, &e);
			goto unclaim;
		}
		goto fail;
	}
	claimed = false; /* the order is valid now: the marker stays, harmless */
	loc = url_of(&c, "order", req_param(rq, "id"), NULL);
	/* cert-manager accepts only 200 here, with the order valid when issuance was synchronous (compat 0 #10). */
	answer(&c, 200, order_json(&c, ord), loc);
	goto out;
fail:
	problem(&c, &e);
unclaim:
	if (claimed) {
		struct store_batch *ub = store_batch_new();
		struct sg_err ue;

		sg_err_init(&ue);
		acme_rec_del(ub, c.mount_id, "finalizing", req_param(rq, "id"));
		(void)!store_commit(c.st, ub, &ue); /* a leftover marker only blocks this order's retries */
		store_batch_free(ub);
	}
out:
	json_decref(ord);
	free(der);
	X509_REQ_free(csr);
	EVP_PKEY_free(acct_key);
	role_free(issuing_role);
	role_names_clear(&names);
	creq.csr = NULL;
	creq.issuer_ref = NULL;
	creq.not_after = NULL;
	creq.common_name = NULL;
	creq.owner = NULL;
	ca_request_clear(&creq);
	ca_result_clear(&res);
	pki_lease_hook_clear(&fh.lease);
	free(loc);
	actx_clear(&c);
	return 0;
}

/*
 * The certificate chains of an order (RFC 8555 7.4.2): chain 0 through the
 * issuer that signed, then one per other issuer of the mount with the same
 * subject and public key (a cross-signed copy of it, imported with
 * issuers/import/cert), in the mount's issuer order.
 */
struct chains {
	struct ca_issuer_info *all;  /* ca_issuer_list */
	size_t n_all;
	struct ca_issuer_info signer;
	const struct ca_issuer_info *alt[ACME_MAX_ALT_CHAINS];
	size_t n_alt;
};

static void chains_clear(struct chains *ch)
{
	for (size_t i = 0; i < ch->n_all; i++)
		ca_issuer_info_clear(&ch->all[i]);
	free(ch->all);
	ca_issuer_info_clear(&ch->signer);
	memset(ch, 0, sizeof(*ch));
}

static int chains_load(struct actx *c, const char *issuer_id, struct chains *ch, struct sg_err *err)
{
	X509 *sc;

	memset(ch, 0, sizeof(*ch));
	if (ca_issuer_get(server_ca(c->rq->srv), pki_mount(c->rq), issuer_id, &ch->signer, err) != 0 ||
	    ca_issuer_list(server_ca(c->rq->srv), pki_mount(c->rq), &ch->all, &ch->n_all, err) != 0)
		return -1;
	sc = ch->signer.cert;
	for (size_t i = 0; sc != NULL && i < ch->n_all && ch->n_alt < ACME_MAX_ALT_CHAINS; i++) {
		const struct ca_issuer_info *o = &ch->all[i];

		if (strcmp(o->id, ch->signer.id) == 0 || o->cert == NULL || o->revoked)
			continue;
		/* The leaf's signature verifies under either: same name, same key. */
		if (X509_NAME_cmp(X509_get_subject_name(o->cert), X509_get_subject_name(sc)) == 0 &&
		    EVP_PKEY_eq(X509_get0_pubkey(o->cert), X509_get0_pubkey(sc)) == 1)
			ch->alt[ch->n_alt++] = o;
	}
	ERR_clear_error();
	return 0;
}

/* Leaf first, then the issuer's chain without the self-signed root (clients hold it as a trust anchor). */
static char *chain_pem(struct actx *c, const json_t *ord, const struct ca_issuer_info *info, struct sg_err *err)
{
	const char *serial = json_string_value(json_object_get(ord, "serial"));
	struct ca_cert_record rec = {0};
	char *pem = NULL, *out = NULL;

	if (ca_cert_get(server_ca(c->rq->srv), pki_mount(c->rq), serial, &rec, err) != 0)
		goto out;
	/* The leaf's PEM from its stored DER: parsing it cost more than the rest of the download. */
	out = ca_pem_text("CERTIFICATE", rec.der, rec.der_len);
	for (int i = 0; info->chain != NULL && i < sk_X509_num(info->chain); i++) {
		X509 *x = sk_X509_value(info->chain, i);
		char *more;

		/* OpenSSL's self-signed test without the signature check (names, key ids, algorithm). */
		if (X509_self_signed(x, 0) == 1)
			continue;
		pem = pki_cert_string(x, false);
		more = sg_xasprintf("%s%s\n", out, pem);
		free(out);
		free(pem);
		pem = NULL;
		out = more;
	}
out:
	free(pem);
	ca_cert_record_clear(&rec);
	return out;
}

/* cert/:alt: 1..n_alt; absent = 0 (the default chain); -1 when not a chain number. */
static long alt_index(const char *s)
{
	long v = 0;

	if (s == NULL)
		return 0;
	if (s[0] < '1' || s[0] > '9' || strlen(s) > 3)
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s - '0');
	}
	return v;
}

int h_acme_cert(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct actx c;
	struct sg_err e;
	struct chains ch;
	json_t *ord = NULL;
	char *pem = NULL, *base = NULL;
	long want = alt_index(req_param(rq, "alt"));

	(void)err;
	sg_err_init(&e);
	memset(&ch, 0, sizeof(ch));
	if (begin(&c, rq, rs, KEY_KID) != 0)
		goto out;
	if (order_get(&c, req_param(rq, "id"), &ord, &e) != 0)
		goto fail;
	if (strcmp(json_string_value(json_object_get(ord, "status")), "valid") != 0 ||
	    json_string_value(json_object_get(ord, "serial")) == NULL ||
	    json_string_value(json_object_get(ord, "issuer_id")) == NULL) {
		sg_err_set(&e, SG_NOT_FOUND, "the order has no certificate");
		goto fail;
	}
	if (chains_load(&c, json_string_value(json_object_get(ord, "issuer_id")), &ch, &e) != 0)
		goto fail;
	if (want < 0 || (size_t)want > ch.n_alt) {
		sg_err_set(&e, SG_NOT_FOUND, "no such certificate chain");
		goto fail;
	}
	pem = chain_pem(&c, ord, want == 0 ? &ch.signer : ch.alt[want - 1], &e);
	if (pem == NULL)
		goto fail;
	/* No charset parameter: strict clients refuse it (compat 4, step-ca#1171). */
	resp_raw(rs, "application/pem-certificate-chain", pem, strlen(pem));
	add_nonce(rs);
	/*
	 * RFC 8555 7.4.2: the other chains as Link rel="alternate", one field
	 * line each (cert-manager's parser reads one link per line, compat 1.8).
	 */
	base = url_of(&c, "order", req_param(rq, "id"), "cert");
	for (size_t i = 0; i <= ch.n_alt; i++) {
		char *l;

		if ((long)i == want)
			continue;
		l = i == 0 ? sg_xasprintf("<%s>;rel=\"alternate\"", base)
		           : sg_xasprintf("<%s/%zu>;rel=\"alternate\"", base, i);
		resp_header_add(rs, "Link", l);
		free(l);
	}
	add_index_link(&c);
	goto out;
fail:
	problem(&c, &e);
out:
	free(pem);
	free(base);
	chains_clear(&ch);
	json_decref(ord);
	actx_clear(&c);
	return 0;
}

/*
 * RFC 9773 4: GET renewal-info/<certID>, unauthenticated. The certificate
 * must be of this mount (serial) with the AKI the certID names; the answer
 * is its suggested window and a Retry-After.
 */
int h_acme_renewal_info(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct actx c;
	struct sg_err e;
	struct ca_cert_record rec;
	unsigned char *aki = NULL;
	size_t aki_len = 0;
	char *serial = NULL;
	X509 *x = NULL;
	int64_t start = 0, end = 0, retry = 0;
	char ts[32], te[32], ra[32];

	(void)err;
	sg_err_init(&e);
	memset(&rec, 0, sizeof(rec));
	if (actx_init(&c, rq, rs, &e) != 0)
		goto fail;
	if (acme_certid_parse(req_param(rq, "certid"), &aki, &aki_len, &serial, &e) != 0)
		goto fail;
	if (ca_cert_get(server_ca(rq->srv), pki_mount(rq), serial, &rec, &e) != 0 ||
	    (x = ca_cert_parse(rec.der, rec.der_len, &e)) == NULL || !acme_certid_aki_matches(x, aki, aki_len)) {
		sg_err_init(&e);
		sg_err_set(&e, SG_NOT_FOUND, "no certificate of this CA has that certID");
		goto fail;
	}
	acme_ari_window(rec.not_before, rec.not_after, rec.revoked, sg_now(), &start, &end, &retry);
	sg_time_format_rfc3339(start, ts, sizeof(ts));
	sg_time_format_rfc3339(end, te, sizeof(te));
	snprintf(ra, sizeof(ra), "%lld", (long long)retry);
	resp_header(rs, "Retry-After", ra);
	answer(&c, 200, json_pack("{s:{s:s, s:s}}", "suggestedWindow", "start", ts, "end", te), NULL);
	goto out;
fail:
	problem(&c, &e);
out:
	free(aki);
	free(serial);
	X509_free(x);
	ca_cert_record_clear(&rec);
	actx_clear(&c);
	return 0;
}

/* A challenge of the authorization is being validated. */
static bool authz_processing(const json_t *az)
{
	const json_t *v;
	size_t i;

	json_array_foreach(json_object_get(az, "challenges"), i, v) {
		const char *st = json_string_value(json_object_get(v, "status"));

		if (st != NULL && strcmp(st, "processing") == 0)
			return true;
	}
	return false;
}

int h_acme_authz(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct actx c;
	struct sg_err e;
	json_t *az = NULL;
	int r;

	(void)err;
	sg_err_init(&e);
	if (begin(&c, rq, rs, KEY_KID) != 0)
		goto out;
	r = acme_authz_load(c.st, c.mount_id, req_param(rq, "id"), &az, &e);
	if (r == 0)
		sg_err_set(&e, SG_NOT_FOUND, "no such authorization");
	else if (r == 1 && !owns(&c, az))
		sg_err_set(&e, SG_ACME_UNAUTHORIZED, "the authorization belongs to another account");
	if (sg_err_isset(&e)) {
		problem(&c, &e);
	} else {
		if (authz_processing(az))
			resp_header(rs, "Retry-After", "1");
		answer(&c, 200, authz_json(&c, az), NULL);
	}
out:
	json_decref(az);
	actx_clear(&c);
	return 0;
}

int h_acme_challenge(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct actx c;
	struct sg_err e;
	json_t *az = NULL, *v, *ch = NULL;
	const char *aid = req_param(rq, "auth"), *type = req_param(rq, "type");
	char *up = NULL;
	size_t i;
	int r;

	(void)err;
	sg_err_init(&e);
	if (begin(&c, rq, rs, KEY_KID) != 0)
		goto out;
	r = acme_authz_load(c.st, c.mount_id, aid, &az, &e);
	if (r == 0)
		sg_err_set(&e, SG_NOT_FOUND, "no such authorization");
	else if (r == 1 && !owns(&c, az))
		sg_err_set(&e, SG_ACME_UNAUTHORIZED, "the challenge belongs to another account");
	if (sg_err_isset(&e))
		goto fail;
	/* A payload ({}) asks for validation (RFC 8555 7.5.1); POST-as-GET only reads. */
	if (c.payload != NULL) {
		json_decref(az);
		az = NULL;
		struct acme_validation_cfg vcfg;

		acme_validation_cfg_of(&c.cfg, &vcfg);
		if (acme_challenge_respond(rq->srv->acme_validator, c.mount_id, aid, type, c.thumbprint, &vcfg, &az, &e) !=
		    0)
			goto fail;
	}
	json_array_foreach(json_object_get(az, "challenges"), i, v) {
		if (strcmp(json_string_value(json_object_get(v, "type")), type) == 0)
			ch = v;
	}
	if (ch == NULL) {
		sg_err_set(&e, SG_NOT_FOUND, "no such challenge");
		goto fail;
	}
	/* RFC 8555 8.2: a client polls a processing challenge; Retry-After paces it (compat 4). */
	if (strcmp(json_string_value(json_object_get(ch, "status")), "processing") == 0)
		resp_header(rs, "Retry-After", "1");
	answer(&c, 200, challenge_json(&c, aid, ch), NULL);
	up = url_of(&c, "authorization", aid, NULL);
	{
		/* RFC 8555 7.5: the authorization, rel="up", on its own line after rel="index". */
		char *link = sg_xasprintf("<%s>;rel=\"up\"", up);

		resp_header_add(rs, "Link", link);
		free(link);
	}
	goto out;
fail:
	problem(&c, &e);
out:
	free(up);
	json_decref(az);
	actx_clear(&c);
	return 0;
}

int h_acme_revoke(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct actx c;
	struct sg_err e;
	const char *cert_b64 = NULL;
	unsigned char *der = NULL;
	size_t der_len = 0;
	X509 *x = NULL;
	EVP_PKEY *jwk_key = NULL;
	char *serial = NULL;
	struct ca_cert_record rec;
	struct ca_revoke_result rr;
	int64_t reason = 0;
	int r;

	(void)err;
	sg_err_init(&e);
	memset(&rec, 0, sizeof(rec));
	memset(&rr, 0, sizeof(rr));
	if (begin(&c, rq, rs, KEY_EITHER) != 0)
		goto out;
	if (c.payload == NULL || sg_json_str(c.payload, "certificate", &cert_b64, &e) != 1 ||
	    (r = sg_json_int(c.payload, "reason", &reason, &e)) < 0) {
		sg_err_set(&e, SG_ACME_MALFORMED, "revokeCert needs {\"certificate\": base64url DER, \"reason\": int}");
		goto fail;
	}
	/* RFC 8555 7.6 with RFC 5280 5.3.1: the reasons a subscriber may state. */
	if (reason != 0 && reason != 1 && reason != 3 && reason != 4 && reason != 5 && reason != 9) {
		sg_err_set(&e, SG_ACME_BAD_REVOCATION_REASON, "revocation reason %lld is not allowed", (long long)reason);
		goto fail;
	}
	if (strlen(cert_b64) > CA_MAX_CSR_BYTES * 4 / 3 + 4 ||
	    sg_b64url_decode(cert_b64, strlen(cert_b64), &der, &der_len) != 0 ||
	    (x = ca_cert_parse(der, der_len, &e)) == NULL) {
		sg_err_set(&e, SG_ACME_MALFORMED, "certificate is not base64url DER");
		goto fail;
	}
	serial = pki_cert_serial(x);
	if (ca_cert_get(server_ca(rq->srv), pki_mount(rq), serial, &rec, &e) != 0) {
		if (e.code == SG_NOT_FOUND) {
			sg_err_init(&e);
			sg_err_set(&e, SG_ACME_UNAUTHORIZED, "the certificate was not issued by this mount");
		}
		goto fail;
	}
	/* Issued here: the same DER, not merely the same serial. */
	if (rec.der_len != der_len || memcmp(rec.der, der, der_len) != 0) {
		sg_err_set(&e, SG_ACME_UNAUTHORIZED, "the certificate was not issued by this mount");
		goto fail;
	}
	if (c.account != NULL) {
		/* RFC 8555 7.6: the account that holds the certificate (its owner). */
		if (rec.owner == NULL || strcmp(rec.owner, json_string_value(json_object_get(c.account, "id"))) != 0) {
			sg_err_set(&e, SG_ACME_UNAUTHORIZED, "the certificate belongs to another account");
			goto fail;
		}
	} else {
		/* Signed with the certificate's own key. */
		jwk_key = acme_jwk_to_pkey(c.jws.jwk, &e);
		if (jwk_key == NULL || EVP_PKEY_eq(jwk_key, X509_get0_pubkey(x)) != 1) {
			sg_err_set(&e, SG_ACME_UNAUTHORIZED, "the JWS key is not the certificate's key");
			goto fail;
		}
	}
	if (rec.revoked) {
		sg_err_set(&e, SG_ACME_ALREADY_REVOKED, "the certificate is already revoked");
		goto fail;
	}
	if (ca_revoke(server_ca(rq->srv), pki_mount(rq), serial, NULL, (enum ca_reason)reason, 0, &rr, &e) != 0)
		goto fail;
	if (rr.already) {
		sg_err_set(&e, SG_ACME_ALREADY_REVOKED, "the certificate is already revoked");
		goto fail;
	}
	resp_raw(rs, "application/json", "", 0);
	rs->status = 200;
	add_nonce(rs);
	add_index_link(&c);
	goto out;
fail:
	problem(&c, &e);
out:
	free(der);
	free(serial);
	X509_free(x);
	EVP_PKEY_free(jwk_key);
	ca_cert_record_clear(&rec);
	ca_revoke_result_clear(&rr);
	actx_clear(&c);
	return 0;
}

int h_acme_post_only(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct actx c;
	struct sg_err e;

	(void)err;
	sg_err_init(&e);
	if (actx_init(&c, rq, rs, &e) == 0)
		sg_err_set(&e, SG_ACME_MALFORMED, "this resource is read with POST-as-GET (RFC 8555 6.3), not GET");
	problem_status(&c, &e, e.code == SG_ACME_MALFORMED ? 405 : sg_err_http_status(e.code));
	if (rs->status == 405)
		resp_header(rs, "Allow", "POST");
	actx_clear(&c);
	return 0;
}

/* ---- Administration (Vault envelope, token-authenticated) ---- */

int h_acme_config_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct acme_config cfg;

	if (acme_config_get(server_store(rq->srv), rq->mount->id, &cfg, err) != 0)
		return -1;
	resp_data(rs, acme_config_json(&cfg));
	acme_config_clear(&cfg);
	return 0;
}

int h_acme_config_write(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct acme_config cfg;
	int rc;

	rc = acme_config_set(server_store(rq->srv), rq->mount->id, rq->body, &cfg, err);
	if (rc == 0)
		resp_data(rs, acme_config_json(&cfg));
	acme_config_clear(&cfg);
	return rc;
}

int h_acme_new_eab(struct req *rq, struct resp *rs, struct sg_err *err)
{
	const char *role = req_param(rq, "role"), *issuer = req_param(rq, "ref");
	char *dir = acme_dir_path(issuer, role);
	json_t *rec = NULL;
	int rc;

	if ((role != NULL && !pki_name_valid(role)) || (issuer != NULL && strlen(issuer) > PKI_NAME_MAX)) {
		free(dir);
		return sg_err_set(err, SG_BAD_REQUEST, "invalid role or issuer name");
	}
	rc = acme_eab_create(server_store(rq->srv), rq->mount->id, dir, &rec, err);
	free(dir);
	if (rc != 0)
		return -1;
	resp_data(rs, rec);
	return 0;
}

struct eab_scan {
	json_t *keys, *info;
	size_t prefix_len;
};

static int eab_cb(void *arg, const char *key, size_t klen, const void *val, size_t vlen)
{
	struct eab_scan *s = arg;
	json_error_t jerr;
	json_t *rec = json_loadb(val, vlen, 0, &jerr);
	char *id = sg_xstrndup(key + s->prefix_len, klen - s->prefix_len);

	if (rec != NULL) {
		json_array_append_new(s->keys, json_string(id));
		/* The MAC key itself is shown once, by new-eab, never in a listing. */
		json_object_set_new(s->info, id,
		                    json_pack("{s:O, s:O, s:O}", "key_type", json_object_get(rec, "key_type"),
		                              "acme_directory", json_object_get(rec, "acme_directory"), "created_on",
		                              json_object_get(rec, "created_on")));
	}
	json_decref(rec);
	free(id);
	return 0;
}

int h_acme_eab_list(struct req *rq, struct resp *rs, struct sg_err *err)
{
	char *prefix = sg_xasprintf("%s/eab/", rq->mount->id);
	struct eab_scan s = {json_array(), json_object(), strlen(prefix)};
	long n = store_scan(server_store(rq->srv), STORE_ACME, prefix, NULL, 0, eab_cb, &s, err);

	free(prefix);
	if (n < 0 || json_array_size(s.keys) == 0) {
		json_decref(s.keys);
		json_decref(s.info);
		return n < 0 ? -1 : pki_not_found(err);
	}
	resp_data(rs, json_pack("{s:o, s:o}", "keys", s.keys, "key_info", s.info));
	return 0;
}

int h_acme_eab_delete(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct store_batch *b;
	const char *id = req_param(rq, "id");
	int rc;

	(void)rs;
	if (id == NULL || strlen(id) > 64)
		return sg_err_set(err, SG_BAD_REQUEST, "invalid EAB key id");
	b = store_batch_new();
	acme_rec_del(b, rq->mount->id, "eab", id);
	rc = store_commit(server_store(rq->srv), b, err);
	store_batch_free(b);
	return rc;
}
