#ifndef SG_SERVER_PKI_H
#define SG_SERVER_PKI_H

/*
 * The Vault-compatible PKI engine's HTTP handlers (compat/vault-api.md
 * section 1). Handlers only translate: the loosely typed JSON body into the
 * ca/ and roles/ structs, one core call, and `data` rendered as Vault
 * renders it. The route table lives in pki.c; the handlers are spread over
 * pki_issuers.c (issuers, keys, CA configuration), pki_roles.c, pki_issue.c
 * (issue/sign) and pki_certs.c (certificate reads, listing, revocation).
 */

#include <jansson.h>
#include <openssl/x509.h>
#include <stdbool.h>

#include "ca/ca.h"
#include "roles/role.h"
#include "server/http.h"

#define PKI_NAME_MAX 128               /* issuer and key names, as role names */
#define PKI_URL_MAX 2048               /* one AIA/CRL/OCSP URL */
#define PKI_LIST_LIMIT_MAX 100000      /* cap on LIST certs ?limit= */

/* Vault's `format` argument of issue/sign/generate. */
enum pki_format { PKI_FORMAT_PEM, PKI_FORMAT_DER, PKI_FORMAT_PEM_BUNDLE };

/* ---- Shared helpers (pki.c) ---- */

/* The mount's view for ca_* calls. */
const struct ca_mount *pki_mount(const struct req *rq);
/*
 * Vault's answer to a read of something absent and to an empty LIST:
 * 404 {"errors":[]} (SG_NOT_FOUND with an empty detail). Returns -1.
 */
int pki_not_found(struct sg_err *err);
/* `format` (pem by default) and `private_key_format` (der by default, or pkcs8). */
int pki_format_parse(const json_t *body, enum pki_format *out, struct sg_err *err) SG_WUR;
int pki_key_format_parse(const json_t *body, bool *pkcs8, struct sg_err *err) SG_WUR;
/* Removes trailing whitespace in place (Vault's PEM strings end without a newline). */
char *pki_trim(char *s);
/* PEM (trimmed) of a certificate, or its base64 DER when der. */
char *pki_cert_string(X509 *x, bool der);
/* Issuer first; self-signed certificates left out when remove_roots. */
json_t *pki_chain_json(STACK_OF(X509) *chain, bool der, bool remove_roots);
/* The chain as one PEM text, certificates joined by "\n", trimmed. */
char *pki_chain_pem(STACK_OF(X509) *chain);
/* A raw answer with one certificate: PEM (CT_PEM_CHAIN) or DER (CT_DER). */
int pki_cert_raw(struct resp *rs, X509 *x, bool pem, struct sg_err *err) SG_WUR;
/* Lower-case colon hex of a certificate's serial number. */
char *pki_cert_serial(X509 *x);
/* Self-signed: subject equals issuer and the certificate verifies under its own key. */
bool pki_self_signed(X509 *x);
/* Base64 DER of a private key PEM (format=der answers). */
char *pki_key_pem_to_b64(const char *pem, struct sg_err *err) SG_WUR;
/*
 * The shared body of issue/sign/sign-verbatim/sign-intermediate answers
 * (Vault's signIssueApiResponse): certificate, issuing_ca, ca_chain,
 * serial_number, expiration and, when key_pem is not NULL, private_key and
 * private_key_type.
 */
struct pki_signed {
	X509 *cert;
	const unsigned char *cert_der; /* optional: cert's DER (ca_result.der), saves encoding it again */
	size_t cert_der_len;
	STACK_OF(X509) *chain;
	const char *serial;
	int64_t expiration;
	const char *key_pem;       /* issue: the new key, in the requested private_key_format */
	const char *key_type;
	enum pki_format format;
	bool remove_roots;
};
json_t *pki_signed_json(const struct pki_signed *s, struct sg_err *err) SG_WUR;
/* Copies every warning of l into the response. */
void pki_warn_all(struct resp *rs, const struct sg_strlist *l);
/* Vault's name rule (framework.GenericNameRegex) with a length cap; "" is not valid. */
bool pki_name_valid(const char *s);

/* ---- Roles (pki_roles.c) ---- */

/* The stored role `name` of the request's mount; SG_UNKNOWN_ROLE "unknown role: <name>" when absent. */
int pki_role_load(struct req *rq, const char *name, struct role **out, struct sg_err *err) SG_WUR;

/* ---- Handlers (struct route table in pki.c) ---- */

/* pki_issuers.c */
int h_root_generate(struct req *rq, struct resp *rs, struct sg_err *err);
int h_intermediate_generate(struct req *rq, struct resp *rs, struct sg_err *err);
int h_intermediate_set_signed(struct req *rq, struct resp *rs, struct sg_err *err);
int h_bundle_import(struct req *rq, struct resp *rs, struct sg_err *err);
int h_cert_import(struct req *rq, struct resp *rs, struct sg_err *err);
int h_sign_intermediate(struct req *rq, struct resp *rs, struct sg_err *err);
int h_root_delete(struct req *rq, struct resp *rs, struct sg_err *err);
int h_issuers_list(struct req *rq, struct resp *rs, struct sg_err *err);
int h_issuer_read(struct req *rq, struct resp *rs, struct sg_err *err);
int h_issuer_write(struct req *rq, struct resp *rs, struct sg_err *err);
int h_issuer_patch(struct req *rq, struct resp *rs, struct sg_err *err);
int h_issuer_delete(struct req *rq, struct resp *rs, struct sg_err *err);
int h_issuer_revoke(struct req *rq, struct resp *rs, struct sg_err *err);
int h_issuer_json_read(struct req *rq, struct resp *rs, struct sg_err *err);
int h_issuer_der_read(struct req *rq, struct resp *rs, struct sg_err *err);
int h_issuer_pem_read(struct req *rq, struct resp *rs, struct sg_err *err);
int h_config_issuers_read(struct req *rq, struct resp *rs, struct sg_err *err);
int h_config_issuers_write(struct req *rq, struct resp *rs, struct sg_err *err);
int h_keys_list(struct req *rq, struct resp *rs, struct sg_err *err);
int h_key_read(struct req *rq, struct resp *rs, struct sg_err *err);
int h_key_write(struct req *rq, struct resp *rs, struct sg_err *err);
int h_key_delete(struct req *rq, struct resp *rs, struct sg_err *err);
int h_key_generate(struct req *rq, struct resp *rs, struct sg_err *err);
int h_key_import(struct req *rq, struct resp *rs, struct sg_err *err);
int h_config_keys_read(struct req *rq, struct resp *rs, struct sg_err *err);
int h_config_keys_write(struct req *rq, struct resp *rs, struct sg_err *err);
int h_config_urls_read(struct req *rq, struct resp *rs, struct sg_err *err);
int h_config_urls_write(struct req *rq, struct resp *rs, struct sg_err *err);
int h_config_cluster_read(struct req *rq, struct resp *rs, struct sg_err *err);
int h_config_cluster_write(struct req *rq, struct resp *rs, struct sg_err *err);

/* pki_roles.c */
int h_roles_list(struct req *rq, struct resp *rs, struct sg_err *err);
int h_role_read(struct req *rq, struct resp *rs, struct sg_err *err);
int h_role_write(struct req *rq, struct resp *rs, struct sg_err *err);
int h_role_patch(struct req *rq, struct resp *rs, struct sg_err *err);
int h_role_delete(struct req *rq, struct resp *rs, struct sg_err *err);

/* pki_issue.c */
int h_issue(struct req *rq, struct resp *rs, struct sg_err *err);
int h_sign(struct req *rq, struct resp *rs, struct sg_err *err);
int h_sign_verbatim(struct req *rq, struct resp *rs, struct sg_err *err);

/* pki_certs.c */
int h_ca_der_read(struct req *rq, struct resp *rs, struct sg_err *err);
int h_ca_pem_read(struct req *rq, struct resp *rs, struct sg_err *err);
int h_ca_chain_read(struct req *rq, struct resp *rs, struct sg_err *err);
int h_cert_ca_read(struct req *rq, struct resp *rs, struct sg_err *err);
int h_cert_ca_chain_read(struct req *rq, struct resp *rs, struct sg_err *err);
int h_cert_read(struct req *rq, struct resp *rs, struct sg_err *err);
int h_cert_raw_read(struct req *rq, struct resp *rs, struct sg_err *err);
int h_cert_raw_pem_read(struct req *rq, struct resp *rs, struct sg_err *err);
int h_certs_list(struct req *rq, struct resp *rs, struct sg_err *err);
int h_certs_revoked_list(struct req *rq, struct resp *rs, struct sg_err *err);
int h_revoke(struct req *rq, struct resp *rs, struct sg_err *err);
int h_revoke_with_key(struct req *rq, struct resp *rs, struct sg_err *err);

/* pki_crl.c: CRLs, config/crl, tidy (crl/crl.h) */
int h_crl_der_read(struct req *rq, struct resp *rs, struct sg_err *err);
int h_crl_pem_read(struct req *rq, struct resp *rs, struct sg_err *err);
int h_crl_delta_der_read(struct req *rq, struct resp *rs, struct sg_err *err);
int h_crl_delta_pem_read(struct req *rq, struct resp *rs, struct sg_err *err);
int h_issuer_crl_json_read(struct req *rq, struct resp *rs, struct sg_err *err);
int h_issuer_crl_der_read(struct req *rq, struct resp *rs, struct sg_err *err);
int h_issuer_crl_pem_read(struct req *rq, struct resp *rs, struct sg_err *err);
int h_issuer_crl_delta_json_read(struct req *rq, struct resp *rs, struct sg_err *err);
int h_issuer_crl_delta_der_read(struct req *rq, struct resp *rs, struct sg_err *err);
int h_issuer_crl_delta_pem_read(struct req *rq, struct resp *rs, struct sg_err *err);
int h_cert_crl_read(struct req *rq, struct resp *rs, struct sg_err *err);
int h_cert_delta_crl_read(struct req *rq, struct resp *rs, struct sg_err *err);
int h_crl_rotate(struct req *rq, struct resp *rs, struct sg_err *err);
int h_crl_rotate_delta(struct req *rq, struct resp *rs, struct sg_err *err);
int h_config_crl_read(struct req *rq, struct resp *rs, struct sg_err *err);
int h_config_crl_write(struct req *rq, struct resp *rs, struct sg_err *err);
/* server/pki_ocsp.c: OCSP (RFC 6960, RFC 5019), unauthenticated. */
int h_ocsp_get(struct req *rq, struct resp *rs, struct sg_err *err);
int h_ocsp_post(struct req *rq, struct resp *rs, struct sg_err *err);
int h_issuer_ocsp_get(struct req *rq, struct resp *rs, struct sg_err *err);
int h_issuer_ocsp_post(struct req *rq, struct resp *rs, struct sg_err *err);
int h_tidy(struct req *rq, struct resp *rs, struct sg_err *err);
int h_tidy_status(struct req *rq, struct resp *rs, struct sg_err *err);
int h_tidy_cancel(struct req *rq, struct resp *rs, struct sg_err *err);
int h_config_auto_tidy_read(struct req *rq, struct resp *rs, struct sg_err *err);
int h_config_auto_tidy_write(struct req *rq, struct resp *rs, struct sg_err *err);

#endif
