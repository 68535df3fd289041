#ifndef SG_SERVER_LEASES_H
#define SG_SERVER_LEASES_H

/*
 * Leases at the edge: the PKI's lease kind "pki-cert" (pki_lease.c) and the
 * sys/leases routes (sys_leases.c, compat/vault-api.md section 2). lease/
 * stays generic: what revoking a certificate lease means lives here, as a
 * callback that stages the CA's revocation marks into the lease module's
 * batch (ca_revoke_batch_add), so a role's kill switch of 10,000
 * certificates is ten commits.
 */

#include "ca/ca.h"
#include "lease/lease.h"
#include "server/http.h"

#define PKI_LEASE_KIND "pki-cert"
#define SERVER_LEASE_SWEEP_S 60 /* expired lease records are deleted within a minute */

/* The server's lease manager (never NULL once the server runs). */
struct lease_mgr *server_leases(struct server *s);

/* Registers "pki-cert" with lm; revocations go to ca. Start-up only. */
void pki_lease_kind_register(struct lease_mgr *lm, struct ca *ca);

/*
 * A ca_commit_hook argument for a leased issuance: the hook stages the
 * lease "<mount path>/<op>/<role>/<24 base62>" (op "issue", "sign",
 * "sign-verbatim"; ACME passes its own) owned by owner, with the
 * certificate's remaining lifetime as ttl, into the certificate's batch.
 * After ca_issue_ex succeeds, lease_id and ttl describe the lease; clear
 * with pki_lease_hook_clear.
 */
struct pki_lease_hook {
	struct lease_mgr *lm;
	const struct ca_mount *mount;
	const char *op;
	const char *role;
	const char *owner;          /* token accessor or ACME account; NULL = none */
	char *lease_id;             /* out, owned */
	int64_t ttl;                /* out */
};
int pki_lease_hook_run(void *arg, const struct ca_result *res, struct store_batch *b, struct sg_err *err) SG_WUR;
void pki_lease_hook_clear(struct pki_lease_hook *h);

/* sys/leases/... and the older sys/revoke, sys/revoke-prefix, sys/renew (route entries in sys.c). */
int h_leases_lookup(struct req *rq, struct resp *rs, struct sg_err *err);
int h_leases_list(struct req *rq, struct resp *rs, struct sg_err *err);
int h_leases_renew(struct req *rq, struct resp *rs, struct sg_err *err);
int h_leases_revoke(struct req *rq, struct resp *rs, struct sg_err *err);
int h_leases_revoke_prefix(struct req *rq, struct resp *rs, struct sg_err *err);
int h_leases_revoke_force(struct req *rq, struct resp *rs, struct sg_err *err);
int h_leases_tidy(struct req *rq, struct resp *rs, struct sg_err *err);

#endif
