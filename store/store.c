#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert(sizeof(size_t) >= 8, "the default map size needs a 64-bit address space");

/* LMDB only reserves address space for the map, so the default can be generous. */
#define STORE_DEFAULT_MAP ((size_t)64 << 30)
/* Reader slots in lock.mdb: the most read transactions alive at once, all threads together. */
#define STORE_MAX_READERS 1024
/* Idle read transactions kept for reuse; beyond this they are aborted. */
#define STORE_READER_POOL_MAX 256
/*
 * Key and value bytes in one group commit. Keeps a write transaction far
 * below LMDB's dirty-page limit (MDB_TXN_FULL at 128Ki pages), so that one
 * oversized group cannot fail batches that would have fitted on their own.
 */
#define STORE_GROUP_MAX_BYTES ((size_t)64 << 20)
/* Longest key quoted in an error detail. */
#define STORE_ERR_KEY_MAX 64
/* flock()ed while the environment is open: one handle per directory. */
#define STORE_LOCK_FILE "sigil-store.lock"

static const char *const table_names[STORE_NTABLES] = {
	[STORE_META] = "meta",       [STORE_MOUNTS] = "mounts",   [STORE_KEYS] = "keys",
	[STORE_ISSUERS] = "issuers", [STORE_ROLES] = "roles",     [STORE_CERTS] = "certs",
	[STORE_REVOKED] = "revoked", [STORE_CONFIG] = "config",   [STORE_LEASES] = "leases",
	[STORE_INDEX] = "index",     [STORE_AUTH] = "auth",       [STORE_ACME] = "acme",
};
_Static_assert(STORE_NTABLES == 12, "name every table in table_names");

enum store_op_kind { OP_PUT, OP_PUT_NEW, OP_DEL, OP_DEL_PREFIX, OP_INCR };

struct store_op {
	enum store_op_kind kind;
	enum store_table t;
	unsigned char *data; /* klen key bytes, then vlen value bytes: one allocation */
	size_t klen;
	size_t vlen;
	uint64_t delta;
	uint64_t result; /* OP_INCR: new value, set by the writer */
	uint64_t *out;   /* OP_INCR: caller's slot, written by store_commit on success */
};

struct store_batch {
	struct store_op *ops;
	size_t n, cap;
	size_t bytes;      /* key and value bytes, for sizing groups */
	struct sg_err bad; /* first invalid op; store_commit reports it */
};

/* One store_commit call waiting for the writer; lives on the caller's stack. */
struct store_req {
	struct store_batch *b;
	struct sg_err err;
	int rc;
	bool done;
	pthread_cond_t cv; /* signalled under store.mu when done is set */
	struct store_req *next;
};

struct store {
	MDB_env *env;
	MDB_dbi dbi[STORE_NTABLES];
	int lock_fd;

	pthread_mutex_t mu; /* everything from here to rmu */
	pthread_cond_t work_cv;
	struct store_req *head, **tailp;
	size_t queued;
	bool stopping, hold, writer_started;
	pthread_t writer;
	uint64_t commits, batches;

	pthread_mutex_t rmu; /* the idle read-transaction pool */
	MDB_txn *idle[STORE_READER_POOL_MAX];
	size_t nidle;
};

static void lock(pthread_mutex_t *m)
{
	int rc = pthread_mutex_lock(m);

	if (rc != 0)
		sg_die("store: pthread_mutex_lock: %s", strerror(rc));
}

static void unlock(pthread_mutex_t *m)
{
	int rc = pthread_mutex_unlock(m);

	if (rc != 0)
		sg_die("store: pthread_mutex_unlock: %s", strerror(rc));
}

/* SG_STORAGE with LMDB's own text (it names the condition, e.g. MDB_MAP_FULL). */
__attribute__((format(printf, 3, 4))) static int mdb_fail(struct sg_err *err, int rc, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return sg_err_set(err, SG_STORAGE, "store: %s: %s", what, mdb_strerror(rc));
}

/*
 * A printable, truncated rendering of a key for error details. Keys carry
 * ids, not secrets, except in the auth table where they may be derived from
 * tokens, so those are never quoted.
 */
static void key_show(enum store_table t, const void *key, size_t klen, char *buf, size_t cap)
{
	const unsigned char *k = key;
	size_t n = 0;

	if (t == STORE_AUTH) {
		snprintf(buf, cap, "(key not shown)");
		return;
	}
	for (; n < klen && n < STORE_ERR_KEY_MAX && n + 4 < cap; n++)
		buf[n] = (k[n] >= 0x20 && k[n] < 0x7f) ? (char)k[n] : '?';
	if (n < klen && n + 4 <= cap) {
		memcpy(buf + n, "...", 3);
		n += 3;
	}
	buf[n] = '\0';
}

static bool table_ok(enum store_table t)
{
	return (int)t >= 0 && t < STORE_NTABLES;
}

static bool has_prefix(const MDB_val *k, const char *prefix, size_t plen)
{
	return plen == 0 || (k->mv_size >= plen && memcmp(k->mv_data, prefix, plen) == 0);
}

/* LMDB's default key order: bytewise, a proper prefix sorts first. */
static int key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c != 0)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static uint64_t le64_get(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static void le64_put(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++) {
		p[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
}

static int fsync_dir(const char *path, struct sg_err *err)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = -1;

	if (fd < 0) {
		sg_err_set(err, SG_STORAGE, "store: open %s: %s", path, strerror(errno));
		goto out;
	}
	if (fsync(fd) != 0) {
		sg_err_set(err, SG_STORAGE, "store: fsync %s: %s", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

/* ---- Read transactions ---- */

/*
 * Reads borrow a reset transaction from a pool and renew it: with MDB_NOTLS
 * a transaction owns its reader slot and may move between threads, so a
 * renew costs no reader-table lock and no allocation, and nothing needs
 * cleaning up when a thread exits. A reset transaction pins no snapshot.
 */
static int reader_begin(struct store *st, MDB_txn **out, struct sg_err *err)
{
	MDB_txn *txn = NULL;
	int rc;

	lock(&st->rmu);
	if (st->nidle > 0)
		txn = st->idle[--st->nidle];
	unlock(&st->rmu);
	if (txn != NULL) {
		rc = mdb_txn_renew(txn);
		if (rc != 0) {
			mdb_txn_abort(txn);
			return mdb_fail(err, rc, "renew read transaction");
		}
	} else {
		rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn);
		if (rc != 0)
			return mdb_fail(err, rc, "begin read transaction");
	}
	*out = txn;
	return 0;
}

static void reader_end(struct store *st, MDB_txn *txn)
{
	mdb_txn_reset(txn);
	lock(&st->rmu);
	if (st->nidle < STORE_READER_POOL_MAX) {
		st->idle[st->nidle++] = txn;
		txn = NULL;
	}
	unlock(&st->rmu);
	if (txn != NULL)
		mdb_txn_abort(txn);
}

int store_get(struct store *st, enum store_table t, const char *key, size_t klen, unsigned char **val,
              size_t *len, struct sg_err *err)
{
	MDB_txn *txn = NULL;
	MDB_val k, v;
	unsigned char *copy = NULL;
	int ret = -1, rc;

	if (!table_ok(t)) {
		sg_err_set(err, SG_INTERNAL, "store: no table %d", (int)t);
		goto out;
	}
	if (key == NULL || klen == 0 || klen > STORE_MAX_KEY) {
		sg_err_set(err, SG_BAD_REQUEST, "store: key of %zu bytes (1 to %d allowed)", klen, STORE_MAX_KEY);
		goto out;
	}
	if (reader_begin(st, &txn, err) < 0)
		goto out;
	k.mv_data = (void *)key;
	k.mv_size = klen;
	rc = mdb_get(txn, st->dbi[t], &k, &v);
	if (rc == MDB_NOTFOUND) {
		ret = 0;
		goto out;
	}
	if (rc != 0) {
		char shown[STORE_ERR_KEY_MAX + 4];

		key_show(t, key, klen, shown, sizeof(shown));
		mdb_fail(err, rc, "get %s/%s", table_names[t], shown);
		goto out;
	}
	if (val != NULL) {
		/* Copy out before the transaction ends (DESIGN.md rule 4). */
		copy = sg_xmalloc(v.mv_size + 1);
		memcpy(copy, v.mv_data, v.mv_size);
		copy[v.mv_size] = '\0';
		*val = copy;
		copy = NULL;
	}
	if (len != NULL)
		*len = v.mv_size;
	ret = 1;
out:
	if (txn != NULL)
		reader_end(st, txn);
	free(copy);
	return ret;
}

long store_scan(struct store *st, enum store_table t, const char *prefix, const char *after, size_t limit,
                store_scan_cb cb, void *arg, struct sg_err *err)
{
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	size_t plen = prefix != NULL ? strlen(prefix) : 0;
	size_t alen = after != NULL ? strlen(after) : 0;
	size_t visited = 0;
	long ret = -1;
	int rc;

	if (!table_ok(t)) {
		sg_err_set(err, SG_INTERNAL, "store: no table %d", (int)t);
		goto out;
	}
	if (cb == NULL) {
		sg_err_set(err, SG_INTERNAL, "store: scan without a callback");
		goto out;
	}
	if (plen > STORE_MAX_KEY || alen > STORE_MAX_KEY) {
		sg_err_set(err, SG_BAD_REQUEST, "store: scan bound longer than %d bytes", STORE_MAX_KEY);
		goto out;
	}
	if (reader_begin(st, &txn, err) < 0)
		goto out;
	rc = mdb_cursor_open(txn, st->dbi[t], &cur);
	if (rc != 0) {
		mdb_fail(err, rc, "open cursor on %s", table_names[t]);
		goto out;
	}
	/* Start at the larger of prefix and after; keys equal to after are skipped. */
	if (alen > 0 && key_cmp(after, alen, prefix != NULL ? prefix : "", plen) >= 0) {
		k.mv_data = (void *)after;
		k.mv_size = alen;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (rc == 0 && k.mv_size == alen && memcmp(k.mv_data, after, alen) == 0)
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	} else if (plen > 0) {
		k.mv_data = (void *)prefix;
		k.mv_size = plen;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	} else {
		rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	}
	while (rc == 0 && has_prefix(&k, prefix, plen)) {
		int r;

		visited++;
		r = cb(arg, k.mv_data, k.mv_size, v.mv_data, v.mv_size);
		if (r < 0) {
			/* The callback's own error wins if it filled err. */
			sg_err_set(err, SG_INTERNAL, "store: scan of %s aborted by its callback", table_names[t]);
			goto out;
		}
		if (r > 0 || (limit > 0 && visited >= limit))
			break;
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	if (rc != 0 && rc != MDB_NOTFOUND) {
		mdb_fail(err, rc, "scan %s", table_names[t]);
		goto out;
	}
	ret = (long)visited;
out:
	if (cur != NULL)
		mdb_cursor_close(cur);
	if (txn != NULL)
		reader_end(st, txn);
	return ret;
}

int store_count(struct store *st, enum store_table t, uint64_t *out, struct sg_err *err)
{
	MDB_txn *txn = NULL;
	MDB_stat ms;
	int ret = -1, rc;

	if (!table_ok(t)) {
		sg_err_set(err, SG_INTERNAL, "store: no table %d", (int)t);
		goto out;
	}
	if (reader_begin(st, &txn, err) < 0)
		goto out;
	rc = mdb_stat(txn, st->dbi[t], &ms);
	if (rc != 0) {
		mdb_fail(err, rc, "stat %s", table_names[t]);
		goto out;
	}
	*out = ms.ms_entries;
	ret = 0;
out:
	if (txn != NULL)
		reader_end(st, txn);
	return ret;
}

/* ---- Batches ---- */

struct store_batch *store_batch_new(void)
{
	struct store_batch *b = sg_xcalloc(1, sizeof(*b));

	sg_err_init(&b->bad);
	return b;
}

void store_batch_free(struct store_batch *b)
{
	if (b == NULL)
		return;
	for (size_t i = 0; i < b->n; i++)
		free(b->ops[i].data);
	free(b->ops);
	free(b);
}

/*
 * Appends an op after checking the caps. An invalid op is not recorded; it
 * marks the batch bad so that store_commit fails it as a whole.
 */
static struct store_op *batch_add(struct store_batch *b, enum store_op_kind kind, enum store_table t,
                                  const void *key, size_t klen, const void *val, size_t vlen)
{
	struct store_op *op;

	if (b == NULL)
		sg_die("store: batch op on a NULL batch");
	if (sg_err_isset(&b->bad))
		return NULL;
	if (!table_ok(t)) {
		sg_err_set(&b->bad, SG_INTERNAL, "store: no table %d", (int)t);
		return NULL;
	}
	if (b->n >= STORE_MAX_BATCH_OPS) {
		sg_err_set(&b->bad, SG_BAD_REQUEST, "store: batch has more than %d ops", STORE_MAX_BATCH_OPS);
		return NULL;
	}
	/* Only a prefix may be empty: LMDB rejects zero-length keys. */
	if ((klen == 0 && kind != OP_DEL_PREFIX) || klen > STORE_MAX_KEY || (key == NULL && klen > 0)) {
		sg_err_set(&b->bad, SG_BAD_REQUEST, "store: key of %zu bytes in %s (1 to %d allowed)", klen,
		           table_names[t], STORE_MAX_KEY);
		return NULL;
	}
	if (vlen > STORE_MAX_VALUE || (val == NULL && vlen > 0)) {
		sg_err_set(&b->bad, SG_BAD_REQUEST, "store: value of %zu bytes in %s (at most %u allowed)", vlen,
		           table_names[t], STORE_MAX_VALUE);
		return NULL;
	}
	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 8;
		b->ops = sg_xrealloc(b->ops, b->cap * sizeof(*b->ops));
	}
	op = &b->ops[b->n++];
	memset(op, 0, sizeof(*op));
	op->kind = kind;
	op->t = t;
	op->klen = klen;
	op->vlen = vlen;
	op->data = sg_xmalloc(klen + vlen + 1);
	if (klen > 0)
		memcpy(op->data, key, klen);
	if (vlen > 0)
		memcpy(op->data + klen, val, vlen);
	b->bytes += klen + vlen;
	return op;
}

void store_batch_put(struct store_batch *b, enum store_table t, const char *key, size_t klen, const void *val,
                     size_t vlen)
{
	batch_add(b, OP_PUT, t, key, klen, val, vlen);
}

void store_batch_put_new(struct store_batch *b, enum store_table t, const char *key, size_t klen,
                         const void *val, size_t vlen)
{
	batch_add(b, OP_PUT_NEW, t, key, klen, val, vlen);
}

void store_batch_del(struct store_batch *b, enum store_table t, const char *key, size_t klen)
{
	batch_add(b, OP_DEL, t, key, klen, NULL, 0);
}

void store_batch_del_prefix(struct store_batch *b, enum store_table t, const char *prefix)
{
	batch_add(b, OP_DEL_PREFIX, t, prefix, prefix != NULL ? strlen(prefix) : 0, NULL, 0);
}

void store_batch_incr(struct store_batch *b, enum store_table t, const char *key, uint64_t delta,
                      uint64_t *out)
{
	struct store_op *op = batch_add(b, OP_INCR, t, key, key != NULL ? strlen(key) : 0, NULL, 0);

	if (op != NULL) {
		op->delta = delta;
		op->out = out;
	}
}

/* ---- The group-commit writer ---- */

static int apply_del_prefix(struct store *st, MDB_txn *txn, const struct store_op *op, struct sg_err *err)
{
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	int ret = -1, rc;

	if (op->klen == 0) {
		rc = mdb_drop(txn, st->dbi[op->t], 0);
		if (rc != 0) {
			mdb_fail(err, rc, "empty %s", table_names[op->t]);
			goto out;
		}
		ret = 0;
		goto out;
	}
	rc = mdb_cursor_open(txn, st->dbi[op->t], &cur);
	if (rc != 0) {
		mdb_fail(err, rc, "open cursor on %s", table_names[op->t]);
		goto out;
	}
	/* Seek afresh after each delete rather than rely on cursor state after mdb_cursor_del. */
	for (;;) {
		k.mv_data = op->data;
		k.mv_size = op->klen;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (rc == MDB_NOTFOUND || (rc == 0 && !has_prefix(&k, (const char *)op->data, op->klen)))
			break;
		if (rc == 0)
			rc = mdb_cursor_del(cur, 0);
		if (rc != 0) {
			mdb_fail(err, rc, "delete prefix in %s", table_names[op->t]);
			goto out;
		}
	}
	ret = 0;
out:
	if (cur != NULL)
		mdb_cursor_close(cur);
	return ret;
}

static int apply_incr(struct store *st, MDB_txn *txn, struct store_op *op, struct sg_err *err)
{
	MDB_val k = {.mv_size = op->klen, .mv_data = op->data}, v;
	unsigned char buf[8];
	char shown[STORE_ERR_KEY_MAX + 4];
	uint64_t cur = 0;
	int rc;

	rc = mdb_get(txn, st->dbi[op->t], &k, &v);
	if (rc == 0) {
		if (v.mv_size != sizeof(buf)) {
			key_show(op->t, op->data, op->klen, shown, sizeof(shown));
			return sg_err_set(err, SG_STORAGE, "store: counter %s/%s has %zu bytes, not 8",
			                  table_names[op->t], shown, v.mv_size);
		}
		cur = le64_get(v.mv_data);
	} else if (rc != MDB_NOTFOUND) {
		key_show(op->t, op->data, op->klen, shown, sizeof(shown));
		return mdb_fail(err, rc, "read counter %s/%s", table_names[op->t], shown);
	}
	if (cur > UINT64_MAX - op->delta) {
		key_show(op->t, op->data, op->klen, shown, sizeof(shown));
		return sg_err_set(err, SG_INTERNAL, "store: counter %s/%s would overflow", table_names[op->t],
		                  shown);
	}
	op->result = cur + op->delta;
	le64_put(buf, op->result);
	v.mv_data = buf;
	v.mv_size = sizeof(buf);
	rc = mdb_put(txn, st->dbi[op->t], &k, &v, 0);
	if (rc != 0) {
		key_show(op->t, op->data, op->klen, shown, sizeof(shown));
		return mdb_fail(err, rc, "write counter %s/%s", table_names[op->t], shown);
	}
	return 0;
}

static int apply_op(struct store *st, MDB_txn *txn, struct store_op *op, struct sg_err *err)
{
	MDB_val k = {.mv_size = op->klen, .mv_data = op->data};
	MDB_val v = {.mv_size = op->vlen, .mv_data = op->data + op->klen};
	char shown[STORE_ERR_KEY_MAX + 4];
	int rc = 0;

	switch (op->kind) {
	case OP_PUT:
		rc = mdb_put(txn, st->dbi[op->t], &k, &v, 0);
		break;
	case OP_PUT_NEW:
		rc = mdb_put(txn, st->dbi[op->t], &k, &v, MDB_NOOVERWRITE);
		if (rc == MDB_KEYEXIST) {
			key_show(op->t, op->data, op->klen, shown, sizeof(shown));
			return sg_err_set(err, SG_CONFLICT, "store: %s/%s already exists", table_names[op->t],
			                  shown);
		}
		break;
	case OP_DEL:
		rc = mdb_del(txn, st->dbi[op->t], &k, NULL);
		if (rc == MDB_NOTFOUND)
			rc = 0; /* deleting an absent key is not an error */
		break;
	case OP_DEL_PREFIX:
		return apply_del_prefix(st, txn, op, err);
	case OP_INCR:
		return apply_incr(st, txn, op, err);
	}
	if (rc != 0) {
		key_show(op->t, op->data, op->klen, shown, sizeof(shown));
		return mdb_fail(err, rc, "%s %s/%s", op->kind == OP_DEL ? "delete" : "put", table_names[op->t],
		                shown);
	}
	return 0;
}

/*
 * Applies one batch in a transaction nested in the group's, so that a
 * failing batch is rolled back alone. *broken is set when the group's
 * transaction itself can no longer be trusted.
 */
static int apply_batch(struct store *st, MDB_txn *parent, struct store_batch *b, struct sg_err *err,
                       bool *broken)
{
	MDB_txn *txn = NULL;
	int rc;

	rc = mdb_txn_begin(st->env, parent, 0, &txn);
	if (rc != 0) {
		*broken = true;
		return mdb_fail(err, rc, "begin nested transaction");
	}
	for (size_t i = 0; i < b->n; i++) {
		if (apply_op(st, txn, &b->ops[i], err) < 0) {
			mdb_txn_abort(txn);
			return -1;
		}
	}
	rc = mdb_txn_commit(txn);
	if (rc != 0) {
		*broken = true;
		return mdb_fail(err, rc, "commit nested transaction");
	}
	return 0;
}

/* Fails every batch of the group that has not failed on its own. */
static void group_fail(struct store_req *group, int rc, const char *what)
{
	for (struct store_req *r = group; r != NULL; r = r->next) {
		r->rc = -1;
		mdb_fail(&r->err, rc, "%s", what);
	}
}

/* One write transaction, one nested transaction per batch, one commit (one fsync). */
static void write_group(struct store *st, struct store_req *group, size_t *ncommitted)
{
	MDB_txn *txn = NULL;
	bool broken = false;
	size_t nok = 0;
	int rc;

	*ncommitted = 0;
	rc = mdb_txn_begin(st->env, NULL, 0, &txn);
	if (rc != 0) {
		group_fail(group, rc, "begin write transaction");
		return;
	}
	for (struct store_req *r = group; r != NULL && !broken; r = r->next) {
		r->rc = apply_batch(st, txn, r->b, &r->err, &broken);
		if (r->rc == 0)
			nok++;
	}
	if (broken) {
		mdb_txn_abort(txn);
		group_fail(group, MDB_BAD_TXN, "group commit abandoned");
		return;
	}
	if (nok == 0) {
		mdb_txn_abort(txn);
		return;
	}
	rc = mdb_txn_commit(txn);
	if (rc != 0) {
		group_fail(group, rc, "commit");
		return;
	}
	*ncommitted = nok;
}

static void *writer_main(void *arg)
{
	struct store *st = arg;

	lock(&st->mu);
	for (;;) {
		struct store_req *group, *last, *r, *next;
		size_t bytes, n, ok;

		while (!st->stopping && (st->head == NULL || st->hold))
			pthread_cond_wait(&st->work_cv, &st->mu);
		if (st->head == NULL)
			break; /* stopping, and the queue is drained */
		/* Take every queued batch, up to the group's byte cap (always at least one). */
		group = last = st->head;
		bytes = group->b->bytes;
		n = 1;
		while (last->next != NULL && bytes + last->next->b->bytes <= STORE_GROUP_MAX_BYTES) {
			last = last->next;
			bytes += last->b->bytes;
			n++;
		}
		st->head = last->next;
		if (st->head == NULL)
			st->tailp = &st->head;
		last->next = NULL;
		st->queued -= n;
		unlock(&st->mu);

		write_group(st, group, &ok);

		lock(&st->mu);
		if (ok > 0) {
			st->commits++;
			st->batches += ok;
		}
		for (r = group; r != NULL; r = next) {
			next = r->next;
			r->done = true;
			pthread_cond_signal(&r->cv);
		}
	}
	unlock(&st->mu);
	return NULL;
}

int store_commit(struct store *st, struct store_batch *b, struct sg_err *err)
{
	struct store_req req;
	int rc;

	if (st == NULL || b == NULL)
		return sg_err_set(err, SG_INTERNAL, "store: commit without a store or batch");
	if (sg_err_isset(&b->bad))
		return sg_err_set(err, b->bad.code, "%s", b->bad.detail);
	if (b->n == 0)
		return 0;
	memset(&req, 0, sizeof(req));
	req.b = b;
	sg_err_init(&req.err);
	rc = pthread_cond_init(&req.cv, NULL);
	if (rc != 0)
		sg_die("store: pthread_cond_init: %s", strerror(rc));

	lock(&st->mu);
	if (st->stopping) {
		unlock(&st->mu);
		pthread_cond_destroy(&req.cv);
		return sg_err_set(err, SG_UNAVAILABLE, "store: closing");
	}
	*st->tailp = &req;
	st->tailp = &req.next;
	st->queued++;
	pthread_cond_signal(&st->work_cv);
	while (!req.done)
		pthread_cond_wait(&req.cv, &st->mu);
	unlock(&st->mu);
	pthread_cond_destroy(&req.cv);

	if (req.rc != 0)
		return sg_err_set(err, req.err.code, "%s", req.err.detail);
	for (size_t i = 0; i < b->n; i++)
		if (b->ops[i].kind == OP_INCR && b->ops[i].out != NULL)
			*b->ops[i].out = b->ops[i].result;
	return 0;
}

void store_stats(struct store *st, uint64_t *commits, uint64_t *batches)
{
	lock(&st->mu);
	if (commits != NULL)
		*commits = st->commits;
	if (batches != NULL)
		*batches = st->batches;
	unlock(&st->mu);
}

size_t store_queued(struct store *st)
{
	size_t n;

	lock(&st->mu);
	n = st->queued;
	unlock(&st->mu);
	return n;
}

void store_writer_hold(struct store *st, int hold)
{
	lock(&st->mu);
	st->hold = hold != 0;
	pthread_cond_signal(&st->work_cv);
	unlock(&st->mu);
}

/* ---- Open and close ---- */

/* Creates dir 0700 when missing; makes the new entry durable in its parent. */
static int make_dir(const char *dir, struct sg_err *err)
{
	struct stat sb;
	char *copy = NULL;
	int ret = -1;

	if (mkdir(dir, 0700) == 0) {
		copy = sg_xstrdup(dir);
		if (fsync_dir(dirname(copy), err) < 0)
			goto out;
	} else if (errno != EEXIST) {
		sg_err_set(err, SG_STORAGE, "store: create %s: %s", dir, strerror(errno));
		goto out;
	}
	if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
		sg_err_set(err, SG_STORAGE, "store: %s is not a directory", dir);
		goto out;
	}
	ret = 0;
out:
	free(copy);
	return ret;
}

/*
 * LMDB must not be opened twice by one process, and two servers sharing a
 * directory would each believe they own its caches, so refuse a second
 * handle from anywhere. The kernel drops the lock when the holder dies.
 */
static int lock_dir(struct store *st, const char *dir, struct sg_err *err)
{
	char *path = sg_xasprintf("%s/%s", dir, STORE_LOCK_FILE);
	int ret = -1;

	st->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (st->lock_fd < 0) {
		sg_err_set(err, SG_STORAGE, "store: open %s: %s", path, strerror(errno));
		goto out;
	}
	if (flock(st->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno == EWOULDBLOCK)
			sg_err_set(err, SG_STORAGE, "store: %s is locked: already open in this or another process",
			           dir);
		else
			sg_err_set(err, SG_STORAGE, "store: lock %s: %s", path, strerror(errno));
		goto out;
	}
	ret = 0;
out:
	free(path);
	return ret;
}

static int open_tables(struct store *st, struct sg_err *err)
{
	MDB_txn *txn = NULL;
	int ret = -1, rc;

	rc = mdb_txn_begin(st->env, NULL, 0, &txn);
	if (rc != 0) {
		mdb_fail(err, rc, "begin transaction to open tables");
		goto out;
	}
	for (int t = 0; t < STORE_NTABLES; t++) {
		rc = mdb_dbi_open(txn, table_names[t], MDB_CREATE, &st->dbi[t]);
		if (rc != 0) {
			mdb_fail(err, rc, "open table %s", table_names[t]);
			goto out;
		}
	}
	rc = mdb_txn_commit(txn);
	txn = NULL;
	if (rc != 0) {
		mdb_fail(err, rc, "commit table creation");
		goto out;
	}
	ret = 0;
out:
	if (txn != NULL)
		mdb_txn_abort(txn);
	return ret;
}

static int start_writer(struct store *st, struct sg_err *err)
{
	sigset_t all, old;
	int rc;

	/* The writer inherits a full signal mask: signals belong to the threads that handle them. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&st->writer, NULL, writer_main, st);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		return sg_err_set(err, SG_STORAGE, "store: start writer thread: %s", strerror(rc));
	st->writer_started = true;
	pthread_setname_np(st->writer, "sg-store-commit");
	return 0;
}

int store_open(const char *dir, size_t map_bytes, struct store **out, struct sg_err *err)
{
	struct store *st = sg_xcalloc(1, sizeof(*st));
	long page = sysconf(_SC_PAGESIZE);
	int dead = 0, rc, ret = -1;

	st->lock_fd = -1;
	st->tailp = &st->head;
	if (pthread_mutex_init(&st->mu, NULL) != 0 || pthread_mutex_init(&st->rmu, NULL) != 0 ||
	    pthread_cond_init(&st->work_cv, NULL) != 0)
		sg_die("store: cannot initialise locks");
	if (dir == NULL || *dir == '\0') {
		sg_err_set(err, SG_STORAGE, "store: no directory given");
		goto out;
	}
	if (make_dir(dir, err) < 0 || lock_dir(st, dir, err) < 0)
		goto out;

	if (map_bytes == 0)
		map_bytes = STORE_DEFAULT_MAP;
	if (page > 0 && map_bytes % (size_t)page != 0)
		map_bytes += (size_t)page - map_bytes % (size_t)page;
	rc = mdb_env_create(&st->env);
	if (rc != 0) {
		mdb_fail(err, rc, "create environment");
		goto out;
	}
	if ((rc = mdb_env_set_maxdbs(st->env, STORE_NTABLES)) != 0 ||
	    (rc = mdb_env_set_maxreaders(st->env, STORE_MAX_READERS)) != 0 ||
	    (rc = mdb_env_set_mapsize(st->env, map_bytes)) != 0) {
		mdb_fail(err, rc, "configure environment");
		goto out;
	}
	/*
	 * MDB_NOTLS: read transactions are pooled across threads. No NOSYNC,
	 * NOMETASYNC or WRITEMAP: every commit is durable when it returns.
	 */
	rc = mdb_env_open(st->env, dir, MDB_NOTLS, 0600);
	if (rc != 0) {
		mdb_fail(err, rc, "open environment in %s", dir);
		goto out;
	}
	/* Free reader slots left by processes that died (kill -9, crash). */
	rc = mdb_reader_check(st->env, &dead);
	if (rc != 0) {
		mdb_fail(err, rc, "check stale readers in %s", dir);
		goto out;
	}
	if (open_tables(st, err) < 0 || fsync_dir(dir, err) < 0 || start_writer(st, err) < 0)
		goto out;
	*out = st;
	st = NULL;
	ret = 0;
out:
	store_close(st);
	return ret;
}

void store_close(struct store *st)
{
	if (st == NULL)
		return;
	if (st->writer_started) {
		lock(&st->mu);
		st->stopping = true;
		pthread_cond_signal(&st->work_cv);
		unlock(&st->mu);
		pthread_join(st->writer, NULL);
	}
	for (size_t i = 0; i < st->nidle; i++)
		mdb_txn_abort(st->idle[i]);
	if (st->env != NULL)
		mdb_env_close(st->env);
	if (st->lock_fd >= 0)
		close(st->lock_fd);
	pthread_cond_destroy(&st->work_cv);
	pthread_mutex_destroy(&st->rmu);
	pthread_mutex_destroy(&st->mu);
	free(st);
}
