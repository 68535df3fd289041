/* auth/<cert mount>/...: Vault's TLS-certificate auth method over auth/cert.c (compat/vault-api.md 3). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/cert.h"
#include "server/auth_mounts.h"
#include "server/internal.h"

static int h_certs_list(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct sg_strlist keys = {0};
	int rc = -1;

	if (auth_cert_role_list(auth_req_store(rq), auth_req_prefix(rq), &keys, err) == 0)
		rc = resp_keys(rs, &keys, err);
	sg_strlist_clear(&keys);
	return rc;
}

static int h_cert_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	const char *name = req_param(rq, "name");
	struct auth_cert_role r;
	int rc = -1, got;

	auth_cert_role_init(&r);
	if (auth_cert_name_check(name, err) != 0)
		goto out;
	got = auth_cert_role_load(auth_req_store(rq), auth_req_prefix(rq), name, &r, err);
	if (got < 0)
		goto out;
	if (got == 0) {
		sg_err_set(err, SG_NOT_FOUND, "certificate role \"%s\" does not exist", name);
		goto out;
	}
	resp_data(rs, auth_cert_role_to_json(&r));
	rc = 0;
out:
	auth_cert_role_clear(&r);
	return rc;
}

/* POST certs/:name creates or updates (fields absent from the body keep their value). */
static int h_cert_write(struct req *rq, struct resp *rs, struct sg_err *err)
{
	const char *name = req_param(rq, "name");
	struct auth_cert_role r;
	int rc = -1, got;

	(void)rs;
	auth_cert_role_init(&r);
	if (auth_cert_name_check(name, err) != 0)
		goto out;
	got = auth_cert_role_load(auth_req_store(rq), auth_req_prefix(rq), name, &r, err);
	if (got < 0)
		goto out;
	if (got == 0) {
		r.name = sg_xstrdup(name);
		for (char *c = r.name; *c != '\0'; c++)
			*c = (char)tolower((unsigned char)*c);
	}
	if (auth_cert_role_apply(&r, rq->body, got == 0, err) != 0)
		goto out;
	/* Vault: the display name defaults to the role name. */
	if (r.display_name == NULL || *r.display_name == '\0') {
		free(r.display_name);
		r.display_name = sg_xstrdup(r.name);
	}
	if (auth_cert_role_store(auth_req_store(rq), auth_req_prefix(rq), &r, err) != 0)
		goto out;
	rc = 0;
out:
	auth_cert_role_clear(&r);
	return rc;
}

static int h_cert_delete(struct req *rq, struct resp *rs, struct sg_err *err)
{
	const char *name = req_param(rq, "name");

	(void)rs;
	if (auth_cert_name_check(name, err) != 0)
		return -1;
	return auth_cert_role_delete(auth_req_store(rq), auth_req_prefix(rq), name, err);
}

/* POST login {name?}: the certificate comes from the TLS handshake, never from the body. */
static int h_login(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct auth_cert_login_result l;
	struct auth_cert_chain chain;
	struct auth_token_params p;
	const char *name = NULL;
	json_t *alias = NULL;
	int rc = -1;

	memset(&l, 0, sizeof(l));
	memset(&chain, 0, sizeof(chain));
	auth_token_params_init(&p);
	if (sg_json_str(rq->body, "name", &name, err) < 0)
		goto out;
	if (rq->srv->cfg.tls_disable) {
		sg_err_set(err, SG_BAD_REQUEST, "tls connection required: this listener serves plain HTTP");
		goto out;
	}
	if (rq->peer != NULL)
		for (size_t i = 0; i < rq->peer->n && i < AUTH_CERT_MAX_PEER; i++) {
			chain.der[i] = rq->peer->der[i];
			chain.len[i] = rq->peer->len[i];
			chain.n++;
		}
	if (auth_cert_login(auth_req_store(rq), auth_req_prefix(rq), name, &chain, &l, err) != 0)
		goto out;
	auth_tokenfields_to_params(&l.role.tf, &p);
	p.display_name = l.role.display_name != NULL && *l.role.display_name != '\0' ? l.role.display_name : l.role.name;
	p.meta = l.metadata;
	/* Vault's alias for a certificate login: the certificate's common name. */
	alias = json_pack("{s:s, s:O}", "name", l.common_name, "metadata", l.metadata);
	p.alias = alias;
	if (auth_login_respond(rq, rs, &p, err) != 0)
		goto out;
	rc = 0;
out:
	p.meta = NULL;
	p.alias = NULL;
	p.display_name = NULL;
	json_decref(alias);
	auth_token_params_clear(&p);
	auth_cert_login_result_clear(&l);
	return rc;
}

const struct route cert_routes[] = {
	{"login", HTTP_POST, h_login, ROUTE_AUTH_NONE, false},
	{"certs", HTTP_LIST, h_certs_list, ROUTE_AUTH_TOKEN, false},
	{"certs/:name", HTTP_GET, h_cert_read, ROUTE_AUTH_TOKEN, false},
	/* No existence check, as Vault's cert backend: creating and updating both need update. */
	{"certs/:name", HTTP_POST, h_cert_write, ROUTE_AUTH_TOKEN, false},
	{"certs/:name", HTTP_DELETE, h_cert_delete, ROUTE_AUTH_TOKEN, false},
};
const size_t cert_routes_n = sizeof(cert_routes) / sizeof(cert_routes[0]);
