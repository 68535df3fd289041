#ifndef SG_CRL_INTERNAL_H
#define SG_CRL_INTERNAL_H

/*
 * Shared by crl/crl.c and crl/tidy.c only; the public interface is crl/crl.h.
 *
 * Concurrency: one mutex (crl.lock) guards the registry of mounts and
 * issuers, their pending revocations and the published blobs. Builds run
 * without it, on the "crl-rebuild" thread (or on a caller of
 * crl_build_now); an issuer's `building` flag keeps two builds of the same
 * issuer apart, and crl.done is broadcast whenever one ends. Store reads
 * may happen under the lock; commits, signing and file writes never do.
 */

#include <pthread.h>
#include <stdatomic.h>

#include "crl/crl.h"

#define CRL_ID_MAX 64                  /* mount and issuer ids are UUIDs (36 bytes) */
#define CRL_DELTA_REBASE_MIN 1000      /* a delta this long (or 1/8 of the base) asks for a new base CRL */
#define CRL_RETRY_MAX_MS 60000         /* back-off cap after a failed build */
#define CRL_TICK_MS 1000               /* the rebuild thread looks at the clock at least this often */
/*
 * A scan remembers the serials revoked this recently (seconds before it
 * started): a revocation committed before the scan whose hook ran after it
 * began is then not appended to the next CRL a second time.
 */
#define CRL_RECENT_WINDOW 60

struct crl_blob_priv;

struct crl_iss {
	char id[37];
	struct crl_blob *full, *delta;
	struct sg_strlist pending;         /* serials revoked since the snapshot of the last full build */
	struct sg_strlist inflight;        /* the snapshot a running full build covers */
	struct sg_strlist listed_recent;   /* sorted: recent serials the last scan listed (see CRL_RECENT_WINDOW) */
	bool full_want, delta_want;
	bool need_scan;                    /* the next full CRL comes from a scan, not the last one + pending */
	int64_t full_due_ms, delta_due_ms; /* monotonic deadlines of the wanted builds */
	bool building;
	bool files_tried;                  /* the CRL files of an earlier run were looked for */
	unsigned failures;                 /* consecutive failed builds: back-off */
	char last_error[SG_ERR_DETAIL_MAX];
	char save_error[SG_ERR_DETAIL_MAX];  /* the last failed write of a CRL file ("" = none) */
	struct crl_iss *next;
};

struct crl_mnt {
	char id[CRL_ID_MAX + 1];
	char *path;                        /* for messages; the id until a request tells */
	bool have_cfg;
	struct crl_config cfg;
	uint64_t cfg_gen;                  /* bumped by every config/crl write */
	struct crl_iss *issuers;
	struct crl_mnt *next;
};

struct crl_tidy;

struct crl {
	struct store *st;
	struct ca *ca;
	char *dir;                         /* NULL: CRLs in memory only */
	pthread_mutex_t lock;
	pthread_cond_t wake;               /* the rebuild thread: something became due */
	pthread_cond_t done;               /* a build ended */
	struct crl_mnt *mounts;
	struct crl_listener listeners[CRL_MAX_LISTENERS];
	size_t nlisteners;
	pthread_t thread;
	bool started, stop;
	struct crl_tidy *tidy;             /* crl/tidy.c */
};

/* Milliseconds of CLOCK_MONOTONIC (deadlines; CRL times come from sg_now). */
int64_t crl_mono_ms(void);
/* A Go duration string for the read APIs: "72h", "15m", "1h30m", "45s", "0s". */
void crl_duration_string(int64_t secs, char *buf, size_t len);
/* Marks every known issuer of the mount for a full rebuild now (tidy removed entries). */
void crl_mount_rebuild(struct crl *c, const struct ca_mount *m);

/* crl/tidy.c */
int crl_tidy_init(struct crl *c, struct sg_err *err) SG_WUR;
int crl_tidy_thread_start(struct crl *c, struct sg_err *err) SG_WUR;
/* Stops the tidy thread (after its batch) and frees the tidy state. */
void crl_tidy_fini(struct crl *c);

#endif
