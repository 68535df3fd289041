#ifndef SG_STORE_H
#define SG_STORE_H

/*
 * The only module that touches LMDB (DESIGN.md rule 4). Values are opaque
 * bytes; keys are byte strings, by convention "<mount-id>/<id>" so that a
 * mount's records share a prefix. Reads copy out before their transaction
 * ends. Writes are batches handed to the group-commit writer thread: many
 * concurrent batches share one LMDB transaction and one fsync, and
 * store_commit returns only once the batch is durable.
 */

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define STORE_MAX_KEY 480            /* LMDB's default max key size is 511 */
#define STORE_MAX_VALUE (64u << 20)  /* one record */
#define STORE_MAX_BATCH_OPS 100000

enum store_table {
	STORE_META,     /* store-wide: schema version, counters */
	STORE_MOUNTS,   /* mount path -> mount record */
	STORE_KEYS,     /* <mount>/<key-id> -> key record (private key encrypted) */
	STORE_ISSUERS,  /* <mount>/<issuer-id> -> issuer record */
	STORE_ROLES,    /* <mount>/<role-name> -> role record */
	STORE_CERTS,    /* <mount>/<serial-hex> -> certificate record */
	STORE_REVOKED,  /* <mount>/<serial-hex> -> revocation record */
	STORE_CONFIG,   /* <mount>/<config-name> -> config record */
	STORE_LEASES,   /* lease id -> lease record */
	STORE_INDEX,    /* secondary indexes: any key -> any value */
	STORE_AUTH,     /* tokens, accessors, auth method state */
	STORE_ACME,     /* ACME accounts, orders, authorizations */
	STORE_NTABLES
};

struct store;
struct store_batch;

/*
 * Opens (creating if needed) the environment in dir, mode 0700, files 0600.
 * map_bytes 0 means 64 GiB (address space only). One handle per directory:
 * a second open, from this process or another, fails with SG_STORAGE, as
 * does a corrupt environment.
 */
int store_open(const char *dir, size_t map_bytes, struct store **out, struct sg_err *err) SG_WUR;
/*
 * Stops the writer after draining queued batches, then closes the environment.
 * Every other call on st must have returned. NULL-safe.
 */
void store_close(struct store *st);

/*
 * Point read. Returns 1 and a malloc'ed copy in *val and *len when found (a NUL
 * byte is appended past *len for convenience), 0 when absent, -1 on error.
 * val and len may be NULL to test for presence only.
 */
int store_get(struct store *st, enum store_table t, const char *key, size_t klen, unsigned char **val,
              size_t *len, struct sg_err *err) SG_WUR;

/*
 * Ordered scan of keys starting with prefix (NULL or "" = all), beginning
 * strictly after `after` when given (for paging). cb sees borrowed bytes,
 * valid only during the call; it returns 0 to continue, 1 to stop, -1 to
 * abort with its own error. At most `limit` entries are visited (0 = no limit).
 * Returns the number of entries visited, or -1.
 */
typedef int (*store_scan_cb)(void *arg, const char *key, size_t klen, const void *val, size_t vlen);
long store_scan(struct store *st, enum store_table t, const char *prefix, const char *after, size_t limit,
                store_scan_cb cb, void *arg, struct sg_err *err) SG_WUR;

/* Number of entries in a table (cheap: from LMDB stats). */
int store_count(struct store *st, enum store_table t, uint64_t *out, struct sg_err *err) SG_WUR;

/* ---- Batches: built by one thread, committed atomically ---- */
struct store_batch *store_batch_new(void);
void store_batch_free(struct store_batch *b);
/*
 * Each op copies its arguments. An op over a cap (STORE_MAX_KEY, an empty
 * key, STORE_MAX_VALUE, STORE_MAX_BATCH_OPS) makes store_commit fail the
 * batch with SG_BAD_REQUEST.
 */
void store_batch_put(struct store_batch *b, enum store_table t, const char *key, size_t klen, const void *val,
                     size_t vlen);
/* Like put, but the whole batch fails with SG_CONFLICT if the key exists. */
void store_batch_put_new(struct store_batch *b, enum store_table t, const char *key, size_t klen,
                         const void *val, size_t vlen);
/* Deleting an absent key is not an error. */
void store_batch_del(struct store_batch *b, enum store_table t, const char *key, size_t klen);
/* Deletes every key that starts with prefix (NULL or "" = the whole table). */
void store_batch_del_prefix(struct store_batch *b, enum store_table t, const char *prefix);
/*
 * Adds delta to a little-endian uint64 counter at key (absent = 0) inside the
 * commit; when out is non-NULL it receives the new value after commit.
 */
void store_batch_incr(struct store_batch *b, enum store_table t, const char *key, uint64_t delta,
                      uint64_t *out);

/*
 * Hands the batch to the group-commit writer and waits until it is on disk.
 * All ops of one batch apply atomically or not at all; a failing batch does
 * not affect others committed alongside it. Does not free b.
 * Errors: SG_BAD_REQUEST (an op over a cap), SG_CONFLICT (put_new on an
 * existing key), SG_STORAGE (LMDB's error text in the detail, e.g.
 * MDB_MAP_FULL; a counter that is not 8 bytes), SG_INTERNAL (counter overflow).
 */
int store_commit(struct store *st, struct store_batch *b, struct sg_err *err) SG_WUR;

/*
 * Statistics for metrics and tests: LMDB commits (one fsync each) and the
 * batches they made durable so far. Failed batches are not counted.
 */
void store_stats(struct store *st, uint64_t *commits, uint64_t *batches);
/* Batches waiting for the writer right now (a metrics gauge). */
size_t store_queued(struct store *st);
/*
 * Test hook: while held, the writer starts no new group, so batches queue
 * up; releasing it commits everything queued as one group.
 */
void store_writer_hold(struct store *st, int hold);

#endif
