/*
 * issue/:role, sign/:role, sign-verbatim[/:role] and their issuer/:ref/...
 * forms (compat 1.3). Each translates the body into a struct ca_request,
 * makes the one ca_issue call (DESIGN.md rule 1) and renders Vault's
 * pathIssueSignCert answer. Every field may arrive as a string: cert-manager
 * sends nothing else (compat 5).
 */
#include "server/pki.h"
#include "server/leases.h"

#include "auth/token.h"
#include "roles/role_template.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#define PKI_KEY_BITS_MAX 16384 /* sanity cap on a requested key size */

/* Vault's sign-verbatim key_usage default. */
static const char *const verbatim_key_usage[] = {"DigitalSignature", "KeyAgreement", "KeyEncipherment"};

/* ttl (a Go duration, e.g. cert-manager's "2160h0m0s") or not_after (RFC 3339), never both. */
static int parse_validity(const json_t *b, struct ca_request *r, struct sg_err *err)
{
	if (sg_json_duration(b, "ttl", &r->ttl, err) < 0 || sg_json_str(b, "not_after", &r->not_after, err) < 0)
		return -1;
	if (r->not_after != NULL && *r->not_after == '\0')
		r->not_after = NULL;
	if (r->ttl > 0 && r->not_after != NULL)
		return sg_err_set(err, SG_BAD_REQUEST,
		                  "either ttl or not_after should be provided. Both should not be provided in the same "
		                  "request");
	return 0;
}

/*
 * The requested names. With a CSR and use_csr_common_name / use_csr_sans
 * (always for sign-verbatim) the CSR's values win and the JSON ones are
 * dropped here, with Vault's warnings, so the core never sees them.
 */
static int parse_names(const json_t *b, bool csr_cn, bool csr_sans, struct ca_request *r, struct resp *rs,
                       struct sg_err *err)
{
	const char *cn = NULL;
	struct sg_strlist alt = {0};
	int ret = -1;

	if (sg_json_str(b, "common_name", &cn, err) < 0)
		goto out;
	if (!csr_cn)
		r->common_name = cn;
	else if (cn != NULL && *cn != '\0')
		resp_warn(rs, "the common_name field was provided but the role is set with \"use_csr_common_name\" set "
		              "to true");
	if (sg_json_list(b, "alt_names", &alt, err) < 0)
		goto out;
	if (!csr_sans) {
		sg_strlist_copy(&r->alt_names, &alt);
		if (sg_json_list(b, "ip_sans", &r->ip_sans, err) < 0 ||
		    sg_json_list(b, "uri_sans", &r->uri_sans, err) < 0 ||
		    sg_json_list(b, "other_sans", &r->other_sans, err) < 0)
			goto out;
	} else if (alt.n > 0) {
		resp_warn(rs, "the alt_names field was provided but the role is set with \"use_csr_sans\" set to true");
	}
	if (sg_json_list(b, "user_ids", &r->user_ids, err) < 0 ||
	    sg_json_str(b, "serial_number", &r->serial_number, err) < 0 ||
	    sg_json_bool(b, "exclude_cn_from_sans", &r->exclude_cn_from_sans, err) < 0)
		goto out;
	if (r->serial_number != NULL && *r->serial_number == '\0')
		r->serial_number = NULL;
	ret = 0;
out:
	sg_strlist_clear(&alt);
	return ret;
}

/* key_type/key_bits count only when the role allows any key type; otherwise Vault warns. */
static int parse_key_request(const json_t *b, const struct role *role, struct ca_request *r, struct resp *rs,
                             struct sg_err *err)
{
	const char *type = NULL;
	int64_t bits = 0;
	int has_type, has_bits;

	has_type = sg_json_str(b, "key_type", &type, err);
	has_bits = sg_json_int(b, "key_bits", &bits, err);
	if (has_type < 0 || has_bits < 0)
		return -1;
	if (strcmp(role->key_type, "any") != 0) {
		if ((has_type && *type != '\0') || (has_bits && bits != 0))
			resp_warn(rs, "parameters key_type and key_bits ignored as role had specific values");
		return 0;
	}
	if (!has_type || *type == '\0' || strcmp(type, "any") == 0)
		return sg_err_set(err, SG_BAD_REQUEST,
		                  "role key type \"any\" not allowed for issuing certificates unless the request sets "
		                  "key_type (rsa, ec or ed25519)");
	if (bits < 0 || bits > PKI_KEY_BITS_MAX)
		return sg_err_set(err, SG_BAD_REQUEST, "invalid key_bits %lld", (long long)bits);
	r->key_type = type;
	r->key_bits = (int)bits;
	return 0;
}

static X509_REQ *parse_csr(const json_t *b, struct sg_err *err)
{
	const char *pem = NULL;

	if (sg_json_str(b, "csr", &pem, err) < 0)
		return NULL;
	if (pem == NULL || *pem == '\0') {
		sg_err_set(err, SG_BAD_CSR, "\"csr\" is empty");
		return NULL;
	}
	return ca_csr_parse((const unsigned char *)pem, strlen(pem), err);
}

/*
 * ca_issue, or, for a role with generate_lease, ca_issue_ex with the lease
 * staged into the certificate's own commit: "<mount>/<op>/<role>/<24
 * base62>", owned by the caller's token and as long as the certificate
 * lives, not renewable (compat/vault-api.md section 2).
 */
static int issue_call(struct req *rq, const struct role *role, const char *role_name, const struct ca_request *creq,
                      struct ca_result *res, struct resp *rs, struct sg_err *err)
{
	struct pki_lease_hook lh = {0};
	int rc;

	if (role == NULL || role_name == NULL || !role->generate_lease || role->no_store)
		return ca_issue(server_ca(rq->srv), pki_mount(rq), role, creq, NULL, res, err);
	lh.lm = server_leases(rq->srv);
	lh.mount = pki_mount(rq);
	lh.op = creq->kind == CA_REQ_ISSUE ? "issue" : creq->kind == CA_REQ_SIGN ? "sign" : "sign-verbatim";
	lh.role = role_name;
	lh.owner = rq->token_accessor;
	rc = ca_issue_ex(server_ca(rq->srv), pki_mount(rq), role, creq, pki_lease_hook_run, &lh, res, err);
	if (rc == 0) {
		rs->lease_id = lh.lease_id;
		lh.lease_id = NULL;
		rs->lease_duration = lh.ttl;
		rs->renewable = false;
	}
	pki_lease_hook_clear(&lh);
	return rc;
}

/*
 * allowed_domains_template / allowed_uri_sans_template: the role's templated
 * entries become the caller's own names (its token's auth alias), before any
 * name is checked (roles/role_template.h).
 */
static void role_identity_apply(const struct req *rq, struct role *role)
{
	struct role_identity id = {0};

	if (rq->tok == NULL) {
		role_template_apply(role, NULL);
		return;
	}
	id.entity_id = rq->tok->entity_id != NULL && *rq->tok->entity_id != '\0' ? rq->tok->entity_id : NULL;
	id.alias = rq->tok->alias;
	role_template_apply(role, &id);
}

/* The one body of every issue/sign handler. role_name NULL only for sign-verbatim. */
static int issue_run(struct req *rq, struct resp *rs, enum ca_req_kind kind, struct sg_err *err)
{
	const json_t *b = rq->body;
	const char *role_name = req_param(rq, "role");
	struct role *role = NULL;
	struct ca_request creq;
	struct ca_result res = {0};
	X509_REQ *csr = NULL;
	char *key_pem = NULL;
	const char *key_type = NULL;
	struct pki_signed out = {0};
	json_t *data = NULL;
	bool pkcs8 = false, remove_roots = false, csr_cn, csr_sans;
	int bits, ret = -1;

	ca_request_init(&creq);
	creq.kind = kind;
	if (role_name != NULL && pki_role_load(rq, role_name, &role, err) < 0)
		goto out;
	if (role != NULL)
		role_identity_apply(rq, role);
	if (pki_format_parse(b, &out.format, err) < 0 || pki_key_format_parse(b, &pkcs8, err) < 0 ||
	    sg_json_bool(b, "remove_roots_from_chain", &remove_roots, err) < 0 || parse_validity(b, &creq, err) < 0)
		goto out;

	/* issuer/:ref/... takes the issuer from the path; issue/ and sign/ from the role. */
	creq.issuer_ref = req_param(rq, "ref");
	if (creq.issuer_ref == NULL && role == NULL) {
		if (sg_json_str(b, "issuer_ref", &creq.issuer_ref, err) < 0)
			goto out;
		if (creq.issuer_ref == NULL || *creq.issuer_ref == '\0')
			creq.issuer_ref = "default";
	}

	if (kind != CA_REQ_ISSUE) {
		csr = parse_csr(b, err);
		if (csr == NULL)
			goto out;
		creq.csr = csr;
	}
	/* sign-verbatim takes every name from the CSR, like Vault's buildSignVerbatimRole. */
	csr_cn = kind == CA_REQ_SIGN_VERBATIM || (kind == CA_REQ_SIGN && role->use_csr_common_name);
	csr_sans = kind == CA_REQ_SIGN_VERBATIM || (kind == CA_REQ_SIGN && role->use_csr_sans);
	if (parse_names(b, csr_cn, csr_sans, &creq, rs, err) < 0)
		goto out;
	if (kind == CA_REQ_ISSUE && parse_key_request(b, role, &creq, rs, err) < 0)
		goto out;
	if (kind == CA_REQ_SIGN_VERBATIM) {
		int got = sg_json_list(b, "key_usage", &creq.key_usage, err);

		if (got < 0 || sg_json_list(b, "ext_key_usage", &creq.ext_key_usage, err) < 0)
			goto out;
		if (got == 0)
			for (size_t i = 0; i < sizeof(verbatim_key_usage) / sizeof(verbatim_key_usage[0]); i++)
				sg_strlist_add(&creq.key_usage, verbatim_key_usage[i]);
	}

	creq.owner = rq->token_accessor;
	if (issue_call(rq, role, role_name, &creq, &res, rs, err) < 0)
		goto out;

	if (res.key != NULL) {
		key_pem = ca_key_to_pem(res.key, pkcs8, err);
		if (key_pem == NULL || ca_key_describe(res.key, &key_type, &bits, err) < 0)
			goto out;
	}
	out.cert = res.cert;
	out.cert_der = res.der;
	out.cert_der_len = res.der_len;
	out.chain = res.chain;
	out.serial = res.serial;
	out.expiration = res.expiration;
	out.key_pem = key_pem;
	out.key_type = key_type;
	out.remove_roots = remove_roots;
	data = pki_signed_json(&out, err);
	if (data == NULL)
		goto out;
	resp_data(rs, data);
	pki_warn_all(rs, &res.warnings);
	ret = 0;
out:
	if (key_pem != NULL) {
		OPENSSL_cleanse(key_pem, strlen(key_pem));
		free(key_pem);
	}
	X509_REQ_free(csr);
	ca_result_clear(&res);
	ca_request_clear(&creq);
	role_free(role);
	return ret;
}

int h_issue(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return issue_run(rq, rs, CA_REQ_ISSUE, err);
}

int h_sign(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return issue_run(rq, rs, CA_REQ_SIGN, err);
}

int h_sign_verbatim(struct req *rq, struct resp *rs, struct sg_err *err)
{
	return issue_run(rq, rs, CA_REQ_SIGN_VERBATIM, err);
}
