#ifndef SG_LEASE_H
#define SG_LEASE_H

/*
 * Generic leases (DESIGN.md rule 2). A lease has an id shaped like Vault's
 * ("<mount>/<op>/<role>/<24 base62>"), a kind ("pki-cert"), an owner (the
 * accessor of the token that obtained it, or an ACME account id), times and
 * an opaque JSON payload. lease/ knows nothing of certificates: each kind
 * registers a revoke callback at start-up. Revocation works in chunks: the
 * callback adds its durable marks to the same store batch as the lease
 * deletions, so revoking 10,000 leases is a handful of commits.
 *
 * Storage: STORE_LEASES "<id>" -> "L1\t<kind>\t<owner>\t<issue>\t<expire>\t
 * <last renewal>\t<0|1 renewable>\t<payload JSON>" (lease.c says why not a
 * JSON object); STORE_INDEX "lease-owner/<owner>/<id>" -> "" and
 * "lease-exp/<16 hex expire>/<id>" -> "" (ordered by expiry for the sweeper).
 *
 * Speed: revoking by prefix or owner runs on the caller's thread plus, when
 * the first chunk is full, one helper thread (chunks are independent
 * commits); a token that owns nothing costs one empty index seek.
 */

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/util.h"
#include "store/store.h"

#define LEASE_ID_MAX 400
#define LEASE_REVOKE_CHUNK 1000 /* leases per commit when revoking many */
#define LEASE_ID_RANDOM 24      /* base62 characters appended to the prefix */
#define LEASE_OWNER_MAX 128     /* owner: a token accessor or an ACME account id */
#define LEASE_KIND_MAX 32       /* characters of a kind name */
#define LEASE_MAX_KINDS 16
#define LEASE_LIST_MAX 100000   /* entries one LIST may return */
#define LEASE_RECORD_MAX (64u << 10)
#define LEASE_MAX_INCREMENT (32LL * 24 * 3600) /* renewals: 768h, Vault's system max TTL */

struct lease {
	char *id;
	char *kind;
	char *owner;          /* "" when none */
	int64_t issue_time, expire_time, last_renewal; /* last_renewal 0 = never */
	bool renewable;
	json_t *data;         /* kind-specific payload, e.g. {"mount":..,"serial":..} */
	int outcome;          /* scratch for the kind: set by its revoke, read by its done; 0 on load */
};
void lease_clear(struct lease *l);

struct lease_mgr;

/*
 * Revoke callback of a kind: adds to b whatever makes the n leases revoked
 * durably (e.g. certificate revocation records). It runs before the lease
 * records are deleted in the same commit. After the commit succeeds,
 * `done` (may be NULL) runs with the same leases for non-durable follow-up
 * (OCSP cache, CRL scheduling); each lease's `outcome` holds what revoke
 * left there. revoke may run again for the same leases (a commit that lost
 * a race with a concurrent writer is rebuilt), and it must report per-lease
 * problems it can live with through `outcome`, not an error: an error
 * under force makes the manager retry lease by lease and drop the failing
 * ones without their callback. Callbacks run with the manager's
 * revocation lock held shared: they must not renew leases.
 */
struct lease_kind {
	const char *name;
	int (*revoke)(void *arg, struct lease *leases, size_t n, struct store_batch *b, struct sg_err *err);
	void (*done)(void *arg, const struct lease *leases, size_t n);
	void *arg;
};

int lease_mgr_new(struct store *st, struct lease_mgr **out, struct sg_err *err) SG_WUR;
void lease_mgr_free(struct lease_mgr *m);
void lease_kind_register(struct lease_mgr *m, const struct lease_kind *k);

/*
 * Adds the creation of a lease to b (so it commits with the thing it
 * leases). id_prefix is the request path ("pki/issue/web"); the id gets 24
 * random base62 characters appended. *out_id is malloc'ed. kind must be
 * registered, owner ("" or NULL for none) has no '/', ttl > 0; data is
 * borrowed (copied into the record). SG_BAD_REQUEST for a malformed prefix.
 */
int lease_batch_create(struct lease_mgr *m, struct store_batch *b, const char *id_prefix, const char *kind,
                       const char *owner, int64_t ttl, bool renewable, json_t *data, char **out_id,
                       struct sg_err *err) SG_WUR;

/*
 * A lease id or prefix is 1..LEASE_ID_MAX printable ASCII characters in
 * non-empty '/'-separated segments, none of them "." or "..".
 */
bool lease_path_valid(const char *s);

/* 1 found, 0 absent (an expired lease is absent), -1 error. */
int lease_lookup(struct lease_mgr *m, const char *id, struct lease *out, struct sg_err *err) SG_WUR;
/*
 * Ids under a prefix (the next path segment only, Vault's LIST semantics: "a/", "a/b").
 * "" lists the top level. Expired leases not yet swept are listed.
 */
int lease_list(struct lease_mgr *m, const char *prefix, struct sg_strlist *out, struct sg_err *err) SG_WUR;
/*
 * SG_BAD_REQUEST "lease is not renewable" for non-renewable kinds, "invalid
 * lease ID" when absent. increment 0 asks for the duration granted last
 * time; at most LEASE_MAX_INCREMENT from now.
 */
int lease_renew(struct lease_mgr *m, const char *id, int64_t increment, struct lease *out, struct sg_err *err) SG_WUR;

/* Revokes one lease; absent is SG_BAD_REQUEST "invalid lease ID". */
int lease_revoke(struct lease_mgr *m, const char *id, struct sg_err *err) SG_WUR;
/*
 * Revokes every lease whose id starts with prefix (a whole segment:
 * "pki/issue/web" matches "pki/issue/web/..." not "pki/issue/webx/...").
 * force: a callback error does not stop it (the lease is deleted anyway).
 * *count receives the number revoked.
 */
int lease_revoke_prefix(struct lease_mgr *m, const char *prefix, bool force, uint64_t *count,
                        struct sg_err *err) SG_WUR;
/* Revokes every lease of an owner (token revocation cascade). SG_BAD_REQUEST for "" or an owner with '/'. */
int lease_revoke_owner(struct lease_mgr *m, const char *owner, uint64_t *count, struct sg_err *err) SG_WUR;
/*
 * Deletes lease records whose expiry has passed (their kind's revoke
 * callback is not needed: expired), and owner index entries left without
 * a record. *count receives the number of records deleted.
 */
int lease_tidy(struct lease_mgr *m, uint64_t *count, struct sg_err *err) SG_WUR;

/* Background sweeper thread: the expiry part of lease_tidy every interval seconds; lease_mgr_free stops it. */
int lease_sweeper_start(struct lease_mgr *m, int interval_seconds, struct sg_err *err) SG_WUR;

json_t *lease_to_json(const struct lease *l); /* Vault's sys/leases/lookup data */

#endif
