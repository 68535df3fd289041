#ifndef SG_SERVER_PKI_ACME_H
#define SG_SERVER_PKI_ACME_H

/*
 * The PKI engine's ACME server (RFC 8555) at /v1/<mount>/acme/ and
 * /v1/<mount>/roles/:role/acme/, plus its Vault-authenticated
 * administration (config/acme, acme/new-eab, acme/eab). ACME answers are
 * not Vault envelopes: JSON, problem documents (RFC 7807) and PEM chains,
 * each with a fresh Replay-Nonce.
 */

#include "server/http.h"

/* Public (the JWS authenticates). */
int h_acme_directory(struct req *rq, struct resp *rs, struct sg_err *err);
int h_acme_new_nonce(struct req *rq, struct resp *rs, struct sg_err *err);
int h_acme_new_account(struct req *rq, struct resp *rs, struct sg_err *err);
int h_acme_account(struct req *rq, struct resp *rs, struct sg_err *err);
int h_acme_key_change(struct req *rq, struct resp *rs, struct sg_err *err);
int h_acme_account_orders(struct req *rq, struct resp *rs, struct sg_err *err);
int h_acme_new_order(struct req *rq, struct resp *rs, struct sg_err *err);
int h_acme_order(struct req *rq, struct resp *rs, struct sg_err *err);
int h_acme_finalize(struct req *rq, struct resp *rs, struct sg_err *err);
int h_acme_cert(struct req *rq, struct resp *rs, struct sg_err *err);
int h_acme_authz(struct req *rq, struct resp *rs, struct sg_err *err);
int h_acme_challenge(struct req *rq, struct resp *rs, struct sg_err *err);
int h_acme_revoke(struct req *rq, struct resp *rs, struct sg_err *err);
/* RFC 9773 renewal information: GET renewal-info/:certid, unauthenticated. */
int h_acme_renewal_info(struct req *rq, struct resp *rs, struct sg_err *err);
/* GET on a POST-only resource: 405 with a problem document (RFC 8555 6.3: POST-as-GET). */
int h_acme_post_only(struct req *rq, struct resp *rs, struct sg_err *err);

/* Token-authenticated administration. */
int h_acme_config_read(struct req *rq, struct resp *rs, struct sg_err *err);
int h_acme_config_write(struct req *rq, struct resp *rs, struct sg_err *err);
int h_acme_new_eab(struct req *rq, struct resp *rs, struct sg_err *err);
int h_acme_eab_list(struct req *rq, struct resp *rs, struct sg_err *err);
int h_acme_eab_delete(struct req *rq, struct resp *rs, struct sg_err *err);

#endif
