#ifndef SG_CRL_H
#define SG_CRL_H

/*
 * Certificate revocation lists (RFC 5280 section 5), one full CRL and one
 * delta CRL per issuer, and the revocation configuration shared with the
 * OCSP responder (crl/ocsp.h). DESIGN.md rule 3: ca_revoke marks a
 * certificate durably and runs the revoke hook; this module turns the hook
 * into a coalesced background rebuild, so a request never waits for a
 * build and always gets the cached DER of the last one.
 *
 * Scale: a build streams the mount's revocation records (ca_revoked_scan)
 * straight into the DER of the TBSCertList, entry by entry, and the signer
 * signs those bytes (ca_signer_sign_der): 1,000,000 entries never exist as
 * OpenSSL objects, and the only full copy in memory is the CRL itself.
 *
 * Storage (STORE_CONFIG, keys "<mount-id>/..."):
 *   crl                    the revocation configuration (struct crl_config)
 *   crl-number/<issuer-id> little-endian uint64 CRL number (store_batch_incr):
 *                          durable and strictly increasing, shared by the
 *                          issuer's full and delta CRLs (RFC 5280 5.2.3)
 *   crl-state/<issuer-id>  what the last builds produced (numbers, times)
 *   auto-tidy              the auto-tidy configuration (struct crl_tidy_config)
 * The CRLs themselves are files under the state directory
 * ("<mount-id>.<issuer-id>.{full,delta}.der", written atomically), so a
 * restart serves the last CRL at once while a fresh build runs.
 */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ca/ca.h"
#include "common/err.h"
#include "store/store.h"

/*
 * Revocations remembered per issuer for the next delta CRL and the next
 * incremental full CRL; beyond this the next full CRL comes from a scan.
 */
#define CRL_MAX_PENDING 100000
#define CRL_MAX_DURATION ((int64_t)10 * 365 * 86400)
#define CRL_MAX_REBUILD_DELAY_MS 3600000
#define CRL_HTTP_MAX_AGE 60            /* Cache-Control max-age cap of served CRLs, seconds */

/*
 * config/crl (compat/vault-api.md 1.6), shared by the CRL builder and the
 * OCSP responder. Durations are seconds.
 */
struct crl_config {
	int64_t expiry;                    /* nextUpdate - thisUpdate of full CRLs (72h) */
	bool disable;                      /* serve a signed, empty CRL; revocations are still recorded */
	bool ocsp_disable;                 /* OCSP answers unauthorized */
	int64_t ocsp_expiry;               /* OCSP nextUpdate - thisUpdate (12h); 0 = no nextUpdate */
	bool auto_rebuild;                 /* Vault's flag; Sigil always rebuilds in the background */
	int64_t auto_rebuild_grace_period; /* rebuild this long before nextUpdate (12h) */
	bool enable_delta;                 /* delta CRLs (RFC 5280 5.2.4) */
	int64_t delta_rebuild_interval;    /* delta CRL nextUpdate - thisUpdate, and its refresh cadence (15m) */
	int64_t max_crl_entries;           /* Vault's cap; -1 (Sigil's default) = none */
	/*
	 * Sigil, milliseconds: with auto_rebuild, how long a revocation waits
	 * before its build starts, so that a burst of revocations shares one
	 * build (250ms: with the build itself, a revocation is in the CRL
	 * well within a second). "rebuild_delay" in JSON: "250ms", "2s" or seconds.
	 */
	int64_t rebuild_delay_ms;
	/*
	 * Sigil, OCSP: sign responses with the issuer's own key instead of a
	 * delegated responder certificate (RFC 6960 4.2.2.2), and the lifetime
	 * of the delegated responder certificates.
	 */
	bool ocsp_sign_with_issuer;        /* false */
	int64_t ocsp_responder_ttl;        /* 7 days (168h) */
};
/* Vault's defaults (plus Sigil's). */
void crl_config_default(struct crl_config *c);
/*
 * Applies the fields present in a loosely typed Vault body (booleans as
 * strings, durations as Go strings or seconds) over *c; fields absent keep
 * their value. SG_BAD_REQUEST naming the field on a bad value.
 */
int crl_config_from_json(const json_t *body, struct crl_config *c, struct sg_err *err) SG_WUR;
/* The config/crl read: durations as Go strings, as Vault renders them. */
json_t *crl_config_to_json(const struct crl_config *c);

struct crl;

/*
 * state_dir holds the CRL files (created 0700 when missing); NULL keeps
 * CRLs in memory only (tests). Registers the revoke hook on ca; the OCSP
 * responder listens through crl_listen instead of replacing it.
 */
int crl_new(struct store *st, struct ca *ca, const char *state_dir, struct crl **out, struct sg_err *err) SG_WUR;
/*
 * Starts the named background threads: "crl-rebuild" (coalesced rebuilds,
 * rebuilds before nextUpdate) and "crl-tidy" (tidy and auto-tidy). Every
 * issuer with a CRL from an earlier run gets a fresh one in the background.
 */
int crl_start(struct crl *c, struct sg_err *err) SG_WUR;
/* Stops the threads (a running build or tidy batch finishes first) and frees. NULL-safe. */
void crl_free(struct crl *c);

/*
 * Listeners of revocations (after the durable mark) and configuration
 * changes: the OCSP responder updates its pre-signed answers from here.
 * Called on the thread that revoked or wrote the config, outside any lock
 * of this module; at most CRL_MAX_LISTENERS.
 */
#define CRL_MAX_LISTENERS 4
struct crl_listener {
	void (*revoked)(void *arg, const char *mount_id, const char *serial_hex, const char *issuer_id);
	void (*config_changed)(void *arg, const char *mount_id, const struct crl_config *cfg);
	void *arg;
};
void crl_listen(struct crl *c, const struct crl_listener *l);

/* config/crl of a mount (cached; defaults when never written). */
int crl_config_get(struct crl *c, const struct ca_mount *m, struct crl_config *out, struct sg_err *err) SG_WUR;
/* Stores it, schedules rebuilds of the mount's CRLs and tells the listeners. */
int crl_config_set(struct crl *c, const struct ca_mount *m, const struct crl_config *in, struct sg_err *err) SG_WUR;

/* A built CRL, shared read-only (refcounted): the handler serves its bytes. */
struct crl_blob {
	unsigned char *der;
	size_t der_len;
	char *pem;                         /* built on first use (crl_blob_pem) */
	size_t pem_len;
	uint64_t number;                   /* cRLNumber */
	uint64_t base_number;              /* delta: the BaseCRLNumber; full: 0 */
	int64_t this_update, next_update;
	size_t entries;
	char etag[64];                     /* quoted, for ETag / If-None-Match */
};
enum crl_kind { CRL_FULL, CRL_DELTA };
/*
 * The current CRL of an issuer (ref: id, name or "default"). The cached
 * one when there is one; an issuer that never had a CRL gets its first
 * build now (the only time a request waits). A delta CRL when enable_delta
 * is off is SG_NOT_FOUND. Release with crl_blob_release.
 */
int crl_get(struct crl *c, const struct ca_mount *m, const char *ref, enum crl_kind kind, struct crl_blob **out,
            struct sg_err *err) SG_WUR;
void crl_blob_release(struct crl_blob *b);
/* The PEM ("X509 CRL") of a blob, built once and kept with it. Borrowed. */
const char *crl_blob_pem(struct crl_blob *b, size_t *len);

/*
 * crl/rotate and crl/rotate-delta: schedule a rebuild of every issuer's
 * full (or delta) CRL of the mount now, without waiting for it.
 */
int crl_rotate(struct crl *c, const struct ca_mount *m, enum crl_kind kind, struct sg_err *err) SG_WUR;
/* Builds one issuer's CRL on the calling thread from a scan (bench, tests, crl_get's first build). */
int crl_build_now(struct crl *c, const struct ca_mount *m, const char *ref, enum crl_kind kind,
                  struct sg_err *err) SG_WUR;
/*
 * The next full CRL of an issuer as the background thread makes it, on the
 * calling thread: the last CRL plus the revocations since when it can, a
 * scan otherwise (bench, tests).
 */
int crl_refresh_now(struct crl *c, const struct ca_mount *m, const char *ref, struct sg_err *err) SG_WUR;
/* Waits until the mount has no pending or running build (tests); 0, or -1 after timeout_ms. */
int crl_wait_idle(struct crl *c, const struct ca_mount *m, int timeout_ms);

/* ---------------- Tidy (crl/tidy.c) ---------------- */

/*
 * Sigil records the issuer of every revocation, so Vault's
 * tidy_revoked_cert_issuer_associations has nothing to repair and is not
 * offered; revocation records without a known issuer are counted in
 * missing_issuer_cert_count (they are listed on the default issuer's CRL).
 */
#define CRL_TIDY_BATCH 500             /* records deleted per commit: issuance never waits behind a long write */
#define CRL_TIDY_PAGE 2000             /* records read per store scan: short read transactions */

struct crl_tidy_config {
	bool tidy_cert_store;
	bool tidy_revoked_certs;           /* then the mount's CRLs are rebuilt */
	bool tidy_expired_issuers;         /* never the default issuer */
	int64_t safety_buffer;             /* 72h */
	int64_t issuer_safety_buffer;      /* 8760h */
	int64_t pause_duration;            /* seconds between batches (0) */
	/* auto-tidy only */
	bool enabled;
	int64_t interval_duration;         /* 12h, from the end of the previous run */
};
void crl_tidy_config_default(struct crl_tidy_config *t);
/* The tidy / config/auto-tidy body over *t (absent fields keep their value). */
int crl_tidy_config_from_json(const json_t *body, struct crl_tidy_config *t, bool auto_tidy,
                              struct sg_err *err) SG_WUR;
json_t *crl_tidy_config_to_json(const struct crl_tidy_config *t, bool auto_tidy);
int crl_tidy_config_get(struct crl *c, const struct ca_mount *m, struct crl_tidy_config *out,
                        struct sg_err *err) SG_WUR;
int crl_tidy_config_set(struct crl *c, const struct ca_mount *m, const struct crl_tidy_config *in,
                        struct sg_err *err) SG_WUR;
/* Starts a tidy run in the background; SG_BAD_REQUEST when one is running on the mount. */
int crl_tidy_start(struct crl *c, const struct ca_mount *m, const struct crl_tidy_config *t,
                   struct sg_err *err) SG_WUR;
/* Runs a tidy on the calling thread (bench, tests). */
int crl_tidy_run(struct crl *c, const struct ca_mount *m, const struct crl_tidy_config *t,
                 struct sg_err *err) SG_WUR;
/* tidy-status: Vault's fields. */
json_t *crl_tidy_status(struct crl *c, const struct ca_mount *m);
/* tidy-cancel: asks a running tidy to stop after its batch; SG_BAD_REQUEST when none runs. */
int crl_tidy_cancel(struct crl *c, const struct ca_mount *m, struct sg_err *err) SG_WUR;

#endif
