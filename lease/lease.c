/*
 * Generic leases (DESIGN.md rule 2): records, the owner and expiry
 * indexes, and revocation in chunks. The manager knows ids, kinds, owners
 * and times; what revoking means is the business of each kind's callback,
 * which stages its durable marks into the same batch that deletes the
 * lease records, so a lease and the thing it leases never disagree after
 * a crash.
 */
#include "lease/lease.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LEASE_COMMIT_RETRIES 8   /* rebuilds of one chunk after losing a race */
#define LEASE_IDX_OWNER "lease-owner/"
#define LEASE_IDX_EXP "lease-exp/"
#define LEASE_EXP_HEX 16
#define LEASE_KEY_MAX (STORE_MAX_KEY + 1)

struct lease_mgr {
	struct store *st;
	/*
	 * Revocations and sweeps hold it shared, a renewal exclusively: a
	 * renewal rewrites the record it read, and must not bring back a
	 * lease revoked in between (the store has no compare-and-swap).
	 */
	pthread_rwlock_t rw;
	pthread_mutex_t lock; /* kinds, sweeper state */
	struct lease_kind kinds[LEASE_MAX_KINDS];
	size_t nkinds;
	pthread_cond_t wake;
	pthread_t sweeper;
	bool sweeper_running, stopping;
	int sweep_interval;
};

void lease_clear(struct lease *l)
{
	if (l == NULL)
		return;
	free(l->id);
	free(l->kind);
	free(l->owner);
	json_decref(l->data);
	memset(l, 0, sizeof(*l));
}

/* ---------------- Names ---------------- */

bool lease_path_valid(const char *s)
{
	size_t n, seg = 0;

	if (s == NULL)
		return false;
	n = strnlen(s, LEASE_ID_MAX + 1);
	if (n == 0 || n > LEASE_ID_MAX)
		return false;
	for (size_t i = 0; i <= n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '/' || c == '\0') {
			/* Empty, "." and ".." segments would let two spellings name one lease. */
			if (seg == 0 || (seg == 1 && s[i - 1] == '.') || (seg == 2 && s[i - 1] == '.' && s[i - 2] == '.'))
				return false;
			seg = 0;
			continue;
		}
		if (c <= 0x20 || c >= 0x7f)
			return false;
		seg++;
	}
	return true;
}

static bool owner_valid(const char *o)
{
	size_t n = strnlen(o, LEASE_OWNER_MAX + 1);

	if (n > LEASE_OWNER_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)o[i];

		/* '/' would make one owner's index prefix cover another's. */
		if (c <= 0x20 || c >= 0x7f || c == '/')
			return false;
	}
	return true;
}

static void owner_key(char *buf, size_t cap, const char *owner, const char *id)
{
	if ((size_t)snprintf(buf, cap, LEASE_IDX_OWNER "%s/%s", owner, id) >= cap)
		sg_die("lease: owner index key too long");
}

static void exp_key(char *buf, size_t cap, int64_t expire, const char *id)
{
	uint64_t e = expire > 0 ? (uint64_t)expire : 0;

	if ((size_t)snprintf(buf, cap, LEASE_IDX_EXP "%016" PRIx64 "/%s", e, id) >= cap)
		sg_die("lease: expiry index key too long");
}

/* ---------------- Records ---------------- */

/*
 * A record is one line of tab-separated fields and the payload's JSON:
 * "L1 <kind> <owner> <issue> <expire> <last renewal> <renewable> <data>".
 * Not a JSON object: decoding 10,000 of them is on the kill switch's path,
 * and a JSON envelope cost more than everything else a revocation does.
 * Kinds and owners hold no tabs (both are checked on the way in); the id
 * is the record's key.
 */
#define LEASE_REC_MAGIC "L1\t"
#define LEASE_REC_FIELDS 6 /* between the magic and the payload */

static char *lease_encode(const struct lease *l)
{
	char *data = json_dumps(l->data != NULL ? l->data : json_null(), JSON_COMPACT | JSON_ENCODE_ANY);
	char *s;

	if (data == NULL)
		sg_die("lease: cannot encode a payload");
	s = sg_xasprintf(LEASE_REC_MAGIC "%s\t%s\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\t%d\t%s", l->kind,
	                 l->owner != NULL ? l->owner : "", l->issue_time, l->expire_time, l->last_renewal,
	                 l->renewable ? 1 : 0, data);
	free(data);
	return s;
}

/* Decimal digits only (times are not negative), no overflow. */
static bool field_i64(const char *s, size_t n, int64_t *out)
{
	int64_t v = 0;

	if (n == 0 || n > 18)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

static int lease_decode(const char *id, const void *val, size_t len, struct lease *out, struct sg_err *err)
{
	const char *p = val, *end = p + len, *f[LEASE_REC_FIELDS];
	size_t fl[LEASE_REC_FIELDS];
	json_error_t je;
	int64_t renewable;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (len < strlen(LEASE_REC_MAGIC) || memcmp(p, LEASE_REC_MAGIC, strlen(LEASE_REC_MAGIC)) != 0)
		goto out;
	p += strlen(LEASE_REC_MAGIC);
	for (size_t i = 0; i < LEASE_REC_FIELDS; i++) {
		const char *tab = memchr(p, '\t', (size_t)(end - p));

		if (tab == NULL)
			goto out;
		f[i] = p;
		fl[i] = (size_t)(tab - p);
		p = tab + 1;
	}
	if (fl[0] == 0 || fl[0] > LEASE_KIND_MAX || fl[1] > LEASE_OWNER_MAX || !field_i64(f[2], fl[2], &out->issue_time) ||
	    !field_i64(f[3], fl[3], &out->expire_time) || !field_i64(f[4], fl[4], &out->last_renewal) ||
	    !field_i64(f[5], fl[5], &renewable) || renewable > 1)
		goto out;
	out->data = json_loadb(p, (size_t)(end - p), JSON_DECODE_ANY, &je);
	if (out->data == NULL)
		goto out;
	out->id = sg_xstrdup(id);
	out->kind = sg_xstrndup(f[0], fl[0]);
	out->owner = sg_xstrndup(f[1], fl[1]);
	out->renewable = renewable == 1;
	rc = 0;
out:
	if (rc < 0) {
		lease_clear(out);
		sg_err_set(err, SG_STORAGE, "malformed lease record");
	}
	return rc;
}

/* Stages the record and both index entries. */
static void lease_stage_put(struct store_batch *b, const struct lease *l, bool is_new)
{
	char key[LEASE_KEY_MAX];
	char *v = lease_encode(l);

	if (is_new)
		store_batch_put_new(b, STORE_LEASES, l->id, strlen(l->id), v, strlen(v));
	else
		store_batch_put(b, STORE_LEASES, l->id, strlen(l->id), v, strlen(v));
	free(v);
	if (l->owner != NULL && l->owner[0] != '\0') {
		owner_key(key, sizeof(key), l->owner, l->id);
		store_batch_put(b, STORE_INDEX, key, strlen(key), "", 0);
	}
	exp_key(key, sizeof(key), l->expire_time, l->id);
	store_batch_put(b, STORE_INDEX, key, strlen(key), "", 0);
}

static void lease_stage_del(struct store_batch *b, const struct lease *l)
{
	char key[LEASE_KEY_MAX];

	store_batch_del(b, STORE_LEASES, l->id, strlen(l->id));
	/* A record too broken to decode has no owner or expiry: tidy finds its index entries. */
	if (l->kind == NULL)
		return;
	if (l->owner != NULL && l->owner[0] != '\0') {
		owner_key(key, sizeof(key), l->owner, l->id);
		store_batch_del(b, STORE_INDEX, key, strlen(key));
	}
	exp_key(key, sizeof(key), l->expire_time, l->id);
	store_batch_del(b, STORE_INDEX, key, strlen(key));
}

/* 1 found, 0 absent, -1 error; expired leases are returned too. */
static int lease_read(struct lease_mgr *m, const char *id, struct lease *out, struct sg_err *err)
{
	unsigned char *v = NULL;
	size_t len = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!lease_path_valid(id))
		return 0;
	rc = store_get(m->st, STORE_LEASES, id, strlen(id), &v, &len, err);
	if (rc <= 0)
		return rc;
	rc = len > LEASE_RECORD_MAX ? sg_err_set(err, SG_STORAGE, "lease record too large")
	                            : lease_decode(id, v, len, out, err);
	free(v);
	return rc < 0 ? -1 : 1;
}

/* ---------------- Manager ---------------- */

int lease_mgr_new(struct store *st, struct lease_mgr **out, struct sg_err *err)
{
	struct lease_mgr *m;

	if (st == NULL)
		return sg_err_set(err, SG_INTERNAL, "lease: no store");
	m = sg_xcalloc(1, sizeof(*m));
	m->st = st;
	if (pthread_mutex_init(&m->lock, NULL) != 0 || pthread_cond_init(&m->wake, NULL) != 0 ||
	    pthread_rwlock_init(&m->rw, NULL) != 0)
		sg_die("lease: cannot initialise a lock");
	*out = m;
	return 0;
}

void lease_mgr_free(struct lease_mgr *m)
{
	bool join;

	if (m == NULL)
		return;
	pthread_mutex_lock(&m->lock);
	m->stopping = true;
	join = m->sweeper_running;
	pthread_cond_broadcast(&m->wake);
	pthread_mutex_unlock(&m->lock);
	if (join)
		pthread_join(m->sweeper, NULL);
	pthread_cond_destroy(&m->wake);
	pthread_mutex_destroy(&m->lock);
	pthread_rwlock_destroy(&m->rw);
	free(m);
}

void lease_kind_register(struct lease_mgr *m, const struct lease_kind *k)
{
	size_t i;

	/* A kind name obeys the owner rule (printable, no space, tab or slash): records hold it unquoted. */
	if (k == NULL || k->name == NULL || k->revoke == NULL || !owner_valid(k->name) || strlen(k->name) == 0 ||
	    strlen(k->name) > LEASE_KIND_MAX)
		sg_die("lease: malformed kind registration");
	pthread_mutex_lock(&m->lock);
	for (i = 0; i < m->nkinds; i++)
		if (strcmp(m->kinds[i].name, k->name) == 0)
			break;
	if (i == LEASE_MAX_KINDS)
		sg_die("lease: more than %d kinds", LEASE_MAX_KINDS);
	m->kinds[i] = *k;
	if (i == m->nkinds)
		m->nkinds++;
	pthread_mutex_unlock(&m->lock);
}

/* A copy of the kind's registration; false when unknown. */
static bool kind_find(struct lease_mgr *m, const char *name, struct lease_kind *out)
{
	bool found = false;

	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->nkinds && !found; i++) {
		if (strcmp(m->kinds[i].name, name) == 0) {
			*out = m->kinds[i];
			found = true;
		}
	}
	pthread_mutex_unlock(&m->lock);
	return found;
}

/* ---------------- Create, look up, list, renew ---------------- */

int lease_batch_create(struct lease_mgr *m, struct store_batch *b, const char *id_prefix, const char *kind,
                       const char *owner, int64_t ttl, bool renewable, json_t *data, char **out_id,
                       struct sg_err *err)
{
	struct lease_kind k;
	struct lease l = {0};
	char rnd[LEASE_ID_RANDOM + 1];
	size_t plen;

	*out_id = NULL;
	if (owner == NULL)
		owner = "";
	plen = id_prefix != NULL ? strnlen(id_prefix, LEASE_ID_MAX + 1) : 0;
	if (!lease_path_valid(id_prefix) || plen + 1 + LEASE_ID_RANDOM > LEASE_ID_MAX)
		return sg_err_set(err, SG_BAD_REQUEST, "malformed lease prefix");
	if (kind == NULL || !kind_find(m, kind, &k))
		return sg_err_set(err, SG_INTERNAL, "lease kind '%.32s' is not registered", kind != NULL ? kind : "");
	if (!owner_valid(owner))
		return sg_err_set(err, SG_BAD_REQUEST, "malformed lease owner");
	if (ttl <= 0)
		return sg_err_set(err, SG_BAD_REQUEST, "a lease needs a positive ttl");
	sg_random_b62(rnd, LEASE_ID_RANDOM);
	rnd[LEASE_ID_RANDOM] = '\0';
	l.id = sg_xasprintf("%s/%s", id_prefix, rnd);
	l.kind = sg_xstrdup(kind);
	l.owner = sg_xstrdup(owner);
	l.issue_time = sg_now();
	l.expire_time = l.issue_time + ttl;
	l.renewable = renewable;
	l.data = json_incref(data);
	lease_stage_put(b, &l, true);
	*out_id = l.id;
	l.id = NULL; /* moved to the caller */
	lease_clear(&l);
	return 0;
}

int lease_lookup(struct lease_mgr *m, const char *id, struct lease *out, struct sg_err *err)
{
	int rc = lease_read(m, id, out, err);

	if (rc == 1 && out->expire_time <= sg_now()) {
		/* Expired: as good as revoked; the sweeper deletes the record. */
		lease_clear(out);
		return 0;
	}
	return rc;
}

struct list_ctx {
	size_t skip;              /* length of the scanned prefix */
	char child[LEASE_KEY_MAX];
	bool folder;
	struct sg_strlist *out;
};

/* Stops at the first key: the caller records it and seeks past the child. */
static int list_cb(void *arg, const char *key, size_t klen, const void *val, size_t vlen)
{
	struct list_ctx *c = arg;
	const char *rest = key + c->skip, *slash;
	size_t n = klen - c->skip;

	(void)val;
	(void)vlen;
	slash = memchr(rest, '/', n);
	c->folder = slash != NULL;
	if (slash != NULL)
		n = (size_t)(slash - rest) + 1;
	if (n >= sizeof(c->child))
		n = sizeof(c->child) - 1;
	memcpy(c->child, rest, n);
	c->child[n] = '\0';
	return 1;
}

int lease_list(struct lease_mgr *m, const char *prefix, struct sg_strlist *out, struct sg_err *err)
{
	char scan[LEASE_KEY_MAX], after[LEASE_KEY_MAX];
	struct list_ctx c;
	size_t plen;
	long got;
	bool first = true;

	if (prefix == NULL)
		prefix = "";
	plen = strlen(prefix);
	while (plen > 0 && prefix[plen - 1] == '/')
		plen--;
	if (plen > 0) {
		char tmp[LEASE_ID_MAX + 1];

		if (plen > LEASE_ID_MAX)
			return sg_err_set(err, SG_BAD_REQUEST, "malformed lease prefix");
		memcpy(tmp, prefix, plen);
		tmp[plen] = '\0';
		if (!lease_path_valid(tmp))
			return sg_err_set(err, SG_BAD_REQUEST, "malformed lease prefix");
		snprintf(scan, sizeof(scan), "%s/", tmp);
	} else {
		scan[0] = '\0';
	}
	memset(&c, 0, sizeof(c));
	c.skip = strlen(scan);
	c.out = out;
	/*
	 * One seek per distinct child: a folder with 10,000 leases under it
	 * costs one step, not 10,000. Ids are printable ASCII, so "<child>/\xff"
	 * sorts after everything inside the folder.
	 */
	for (;;) {
		got = store_scan(m->st, STORE_LEASES, scan, first ? NULL : after, 1, list_cb, &c, err);
		if (got < 0)
			return -1;
		if (got == 0)
			break;
		if (out->n >= LEASE_LIST_MAX)
			return sg_err_set(err, SG_BAD_REQUEST, "more than %d leases under this prefix: list a longer one",
			                  LEASE_LIST_MAX);
		sg_strlist_add(out, c.child);
		if ((size_t)snprintf(after, sizeof(after), "%s%s%s", scan, c.child, c.folder ? "\xff" : "") >=
		    sizeof(after))
			break;
		first = false;
	}
	return 0;
}

static int lease_renew_locked(struct lease_mgr *m, const char *id, int64_t increment, int64_t now, struct lease *out,
                              struct sg_err *err);

int lease_renew(struct lease_mgr *m, const char *id, int64_t increment, struct lease *out, struct sg_err *err)
{
	int64_t now = sg_now();
	int rc;

	memset(out, 0, sizeof(*out));
	if (increment < 0)
		return sg_err_set(err, SG_BAD_REQUEST, "increment must not be negative");
	pthread_rwlock_wrlock(&m->rw);
	rc = lease_renew_locked(m, id, increment, now, out, err);
	pthread_rwlock_unlock(&m->rw);
	return rc;
}

static int lease_renew_locked(struct lease_mgr *m, const char *id, int64_t increment, int64_t now, struct lease *out,
                              struct sg_err *err)
{
	struct lease l;
	struct store_batch *b = NULL;
	char key[LEASE_KEY_MAX];
	int64_t granted;
	int rc;

	if ((rc = lease_lookup(m, id, &l, err)) < 0)
		return -1;
	if (rc == 0)
		return sg_err_set(err, SG_BAD_REQUEST, "invalid lease ID");
	if (!l.renewable) {
		lease_clear(&l);
		return sg_err_set(err, SG_BAD_REQUEST, "lease is not renewable");
	}
	/* Vault: no increment asks for the duration granted last time. */
	granted = l.expire_time - (l.last_renewal > 0 ? l.last_renewal : l.issue_time);
	if (increment == 0)
		increment = granted > 0 ? granted : 1;
	if (increment > LEASE_MAX_INCREMENT)
		increment = LEASE_MAX_INCREMENT;
	b = store_batch_new();
	exp_key(key, sizeof(key), l.expire_time, l.id);
	store_batch_del(b, STORE_INDEX, key, strlen(key));
	l.expire_time = now + increment;
	l.last_renewal = now;
	lease_stage_put(b, &l, false);
	rc = store_commit(m->st, b, err);
	store_batch_free(b);
	if (rc < 0) {
		lease_clear(&l);
		return -1;
	}
	*out = l;
	return 0;
}

/* ---------------- Revocation ---------------- */

struct run {
	size_t start, n;
	bool known, split;
	struct lease_kind kind;
};

static int kind_cmp(const void *a, const void *b)
{
	const struct lease *x = a, *y = b;

	return strcmp(x->kind != NULL ? x->kind : "", y->kind != NULL ? y->kind : "");
}

/* Stages one run (or each unskipped lease of a split run) through its kind. 0, or -1 when a callback failed. */
static int stage_run(struct run *r, struct lease *v, bool *skip, struct store_batch *b, bool force,
                     struct sg_err *err)
{
	if (!r->known) {
		if (!force)
			return sg_err_set(err, SG_INTERNAL, "no revocation handler for lease kind '%.32s' (lease %.200s)",
			                  v[r->start].kind != NULL ? v[r->start].kind : "(malformed record)",
			                  v[r->start].id);
		return 0;
	}
	if (!r->split) {
		for (size_t i = r->start; i < r->start + r->n; i++)
			v[i].outcome = 0;
		if (r->kind.revoke(r->kind.arg, v + r->start, r->n, b, err) == 0)
			return 0;
		if (!sg_err_isset(err))
			sg_err_set(err, SG_INTERNAL, "lease kind '%s' failed", r->kind.name);
		if (force)
			r->split = true;
		return -1;
	}
	for (size_t i = r->start; i < r->start + r->n; i++) {
		if (skip[i])
			continue;
		v[i].outcome = 0;
		if (r->kind.revoke(r->kind.arg, v + i, 1, b, err) != 0) {
			skip[i] = true;
			return -1;
		}
	}
	return 0;
}

/*
 * Revokes v[0..n) (at most one chunk) in one commit: every kind's marks
 * plus the deletion of the records and their index entries. Under force
 * a failing callback is retried lease by lease and the failing leases are
 * deleted without it.
 */
static int revoke_chunk(struct lease_mgr *m, struct lease *v, size_t n, bool force, uint64_t *count,
                        struct sg_err *err)
{
	struct run *runs = NULL;
	bool *skip = NULL;
	struct store_batch *b = NULL;
	size_t nruns = 0, rebuilds = 0;
	int conflicts = 0, rc = -1;

	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), kind_cmp);
	runs = sg_xcalloc(n, sizeof(*runs));
	skip = sg_xcalloc(n, sizeof(*skip));
	for (size_t i = 0; i < n; i++) {
		if (nruns == 0 || kind_cmp(&v[runs[nruns - 1].start], &v[i]) != 0) {
			runs[nruns].start = i;
			runs[nruns].known = v[i].kind != NULL && kind_find(m, v[i].kind, &runs[nruns].kind);
			nruns++;
		}
		runs[nruns - 1].n++;
	}
	for (;;) {
		struct sg_err tmp;
		bool failed = false;

		store_batch_free(b);
		b = store_batch_new();
		for (size_t r = 0; r < nruns && !failed; r++) {
			sg_err_init(&tmp);
			if (stage_run(&runs[r], v, skip, b, force, &tmp) != 0) {
				if (!force) {
					*err = tmp;
					goto out;
				}
				failed = true;
			}
		}
		if (failed) {
			/* Each rebuild splits a run or skips a lease: bounded by nruns + n. */
			if (++rebuilds > nruns + n)
				sg_die("lease: revocation rebuilds do not converge");
			continue;
		}
		for (size_t i = 0; i < n; i++)
			lease_stage_del(b, &v[i]);
		sg_err_init(&tmp);
		if (store_commit(m->st, b, &tmp) == 0)
			break;
		/* A concurrent revocation of the same thing won: rebuild from what is stored now. */
		if (tmp.code != SG_CONFLICT || ++conflicts > LEASE_COMMIT_RETRIES) {
			*err = tmp;
			goto out;
		}
	}
	for (size_t r = 0; r < nruns; r++) {
		const struct run *ru = &runs[r];

		if (!ru->known || ru->kind.done == NULL)
			continue;
		if (!ru->split) {
			ru->kind.done(ru->kind.arg, v + ru->start, ru->n);
			continue;
		}
		for (size_t i = ru->start; i < ru->start + ru->n; i++)
			if (!skip[i])
				ru->kind.done(ru->kind.arg, v + i, 1);
	}
	*count += n;
	rc = 0;
out:
	store_batch_free(b);
	free(skip);
	free(runs);
	return rc;
}

int lease_revoke(struct lease_mgr *m, const char *id, struct sg_err *err)
{
	struct lease l;
	uint64_t count = 0;
	int rc;

	pthread_rwlock_rdlock(&m->rw);
	if ((rc = lease_lookup(m, id, &l, err)) >= 0) {
		if (rc == 0)
			rc = sg_err_set(err, SG_BAD_REQUEST, "invalid lease ID");
		else
			rc = revoke_chunk(m, &l, 1, false, &count, err);
	}
	pthread_rwlock_unlock(&m->rw);
	lease_clear(&l);
	return rc;
}

/*
 * One large revocation (a prefix, or an owner's leases), handed out chunk
 * by chunk to up to LEASE_REVOKE_WORKERS threads: decoding and encoding
 * the records is CPU-bound, and while one chunk waits for its commit the
 * next one is being built. A second thread starts only when the first
 * chunk came back full, so small revocations stay on the caller's thread.
 */
#define LEASE_REVOKE_WORKERS 2

struct revoke_job {
	struct lease_mgr *m;
	bool owner_mode;             /* keys are owner index entries, not records */
	const char *owner;
	bool force;
	pthread_mutex_t lock;        /* the fields below */
	char scan[LEASE_KEY_MAX];
	char after[LEASE_KEY_MAX];   /* the last key handed out */
	bool started, exhausted, failed;
	uint64_t count;
	struct sg_err err;
	struct store_batch *dangling; /* owner index entries without a record */
};

struct raw_item {
	char *key, *val;
	size_t klen, vlen;
};

struct worker {
	struct revoke_job *job;
	struct raw_item raw[LEASE_REVOKE_CHUNK];
	size_t nraw;
	struct lease v[LEASE_REVOKE_CHUNK];
};

static void raw_clear(struct worker *w)
{
	for (size_t i = 0; i < w->nraw; i++) {
		free(w->raw[i].key);
		free(w->raw[i].val);
	}
	w->nraw = 0;
}

static int raw_cb(void *arg, const char *key, size_t klen, const void *val, size_t vlen)
{
	struct worker *w = arg;
	struct raw_item *r = &w->raw[w->nraw];

	if (klen >= LEASE_KEY_MAX)
		return 0;
	r->key = sg_xstrndup(key, klen);
	r->klen = klen;
	if (!w->job->owner_mode) {
		r->val = sg_xmalloc(vlen + 1);
		memcpy(r->val, val, vlen);
		r->val[vlen] = '\0';
		r->vlen = vlen;
	}
	memcpy(w->job->after, key, klen);
	w->job->after[klen] = '\0';
	w->nraw++;
	return 0;
}

static void job_fail(struct revoke_job *job, const struct sg_err *e)
{
	pthread_mutex_lock(&job->lock);
	if (!job->failed) {
		job->failed = true;
		job->err = *e;
	}
	pthread_mutex_unlock(&job->lock);
}

/* The next chunk of keys (and values) into w->raw; 0 when done or failed. */
static size_t job_next(struct revoke_job *job, struct worker *w)
{
	struct sg_err e;
	long got;

	sg_err_init(&e);
	pthread_mutex_lock(&job->lock);
	if (!job->failed && !job->exhausted) {
		got = store_scan(job->m->st, job->owner_mode ? STORE_INDEX : STORE_LEASES, job->scan,
		                 job->started ? job->after : NULL, LEASE_REVOKE_CHUNK, raw_cb, w, &e);
		job->started = true;
		if (got < 0) {
			job->failed = true;
			job->err = e;
		}
		job->exhausted = got < LEASE_REVOKE_CHUNK;
	}
	pthread_mutex_unlock(&job->lock);
	return w->nraw;
}

/* Raw records or index keys to leases in w->v; returns how many, -1 on a storage error. */
static long job_decode(struct revoke_job *job, struct worker *w, struct sg_err *err)
{
	size_t n = 0, skip = strlen(job->scan);
	char key[LEASE_KEY_MAX];

	for (size_t i = 0; i < w->nraw; i++) {
		struct lease *l = &w->v[n];
		const struct raw_item *r = &w->raw[i];
		struct sg_err tmp;
		int got;

		if (!job->owner_mode) {
			sg_err_init(&tmp);
			if (r->vlen > LEASE_RECORD_MAX || lease_decode(r->key, r->val, r->vlen, l, &tmp) < 0) {
				/* Kept as a kind-less lease: revoke refuses it, revoke-force deletes it. */
				lease_clear(l);
				l->id = sg_xstrdup(r->key);
			}
			n++;
			continue;
		}
		if (r->klen <= skip)
			continue;
		if ((got = lease_read(job->m, r->key + skip, l, err)) < 0)
			return -1;
		if (got == 1) {
			n++;
			continue;
		}
		/* An index entry without its record (should not happen): dropped at the end. */
		owner_key(key, sizeof(key), job->owner, r->key + skip);
		pthread_mutex_lock(&job->lock);
		if (job->dangling == NULL)
			job->dangling = store_batch_new();
		store_batch_del(job->dangling, STORE_INDEX, key, strlen(key));
		pthread_mutex_unlock(&job->lock);
	}
	return (long)n;
}

/* Decodes and revokes the chunk in w->raw; the revoked count goes to *count. */
static void worker_chunk(struct worker *w, uint64_t *count)
{
	struct revoke_job *job = w->job;
	struct sg_err e;
	long n;

	sg_err_init(&e);
	n = job_decode(job, w, &e);
	raw_clear(w);
	if (n < 0 || revoke_chunk(job->m, w->v, (size_t)n, job->force, count, &e) < 0)
		job_fail(job, &e);
	for (long i = 0; i < n; i++)
		lease_clear(&w->v[i]);
}

static void *job_worker(void *arg)
{
	struct worker *w = arg;
	uint64_t count = 0;

	if (w->nraw > 0)
		worker_chunk(w, &count);
	while (job_next(w->job, w) > 0)
		worker_chunk(w, &count);
	pthread_mutex_lock(&w->job->lock);
	w->job->count += count;
	pthread_mutex_unlock(&w->job->lock);
	return NULL;
}

/* Runs a job on the caller's thread, with helpers once the first chunk shows it is large. */
static int job_run(struct revoke_job *job, uint64_t *count, struct sg_err *err)
{
	struct worker *w[LEASE_REVOKE_WORKERS] = {0};
	pthread_t tid[LEASE_REVOKE_WORKERS];
	bool running[LEASE_REVOKE_WORKERS] = {0};
	int rc = -1;

	if (pthread_mutex_init(&job->lock, NULL) != 0)
		sg_die("lease: cannot initialise a lock");
	for (size_t i = 0; i < LEASE_REVOKE_WORKERS; i++) {
		w[i] = sg_xcalloc(1, sizeof(*w[i]));
		w[i]->job = job;
	}
	pthread_rwlock_rdlock(&job->m->rw);
	/* Peek: the caller's first chunk decides whether helpers are worth their threads. */
	if (job_next(job, w[0]) == LEASE_REVOKE_CHUNK) {
		for (size_t i = 1; i < LEASE_REVOKE_WORKERS; i++) {
			running[i] = pthread_create(&tid[i], NULL, job_worker, w[i]) == 0;
			if (running[i])
				pthread_setname_np(tid[i], "sg-lease-revoke");
		}
	}
	job_worker(w[0]);
	for (size_t i = 1; i < LEASE_REVOKE_WORKERS; i++)
		if (running[i])
			pthread_join(tid[i], NULL);
	pthread_rwlock_unlock(&job->m->rw);
	*count = job->count;
	if (job->failed) {
		*err = job->err;
		goto out;
	}
	if (job->dangling != NULL && store_commit(job->m->st, job->dangling, err) < 0)
		goto out;
	rc = 0;
out:
	for (size_t i = 0; i < LEASE_REVOKE_WORKERS; i++)
		free(w[i]);
	store_batch_free(job->dangling);
	pthread_mutex_destroy(&job->lock);
	return rc;
}

int lease_revoke_prefix(struct lease_mgr *m, const char *prefix, bool force, uint64_t *count, struct sg_err *err)
{
	struct revoke_job job;
	size_t plen;

	*count = 0;
	plen = prefix != NULL ? strlen(prefix) : 0;
	while (plen > 0 && prefix[plen - 1] == '/')
		plen--;
	if (plen == 0 || plen > LEASE_ID_MAX)
		return sg_err_set(err, SG_BAD_REQUEST, "malformed lease prefix");
	memset(&job, 0, sizeof(job));
	snprintf(job.scan, sizeof(job.scan), "%.*s", (int)plen, prefix);
	if (!lease_path_valid(job.scan))
		return sg_err_set(err, SG_BAD_REQUEST, "malformed lease prefix");
	/* A whole segment: "pki/issue/web" covers "pki/issue/web/..." and never "pki/issue/webx/...". */
	job.scan[plen] = '/';
	job.scan[plen + 1] = '\0';
	job.m = m;
	job.force = force;
	return job_run(&job, count, err);
}

int lease_revoke_owner(struct lease_mgr *m, const char *owner, uint64_t *count, struct sg_err *err)
{
	struct revoke_job job;

	*count = 0;
	if (owner == NULL || owner[0] == '\0' || !owner_valid(owner))
		return sg_err_set(err, SG_BAD_REQUEST, "malformed lease owner");
	memset(&job, 0, sizeof(job));
	/* The common case, a token that owns nothing, is one empty index seek on the caller's thread. */
	snprintf(job.scan, sizeof(job.scan), LEASE_IDX_OWNER "%s/", owner);
	job.m = m;
	job.owner_mode = true;
	job.owner = owner;
	return job_run(&job, count, err);
}

/* ---------------- Expiry ---------------- */

struct exp_ctx {
	char bound[LEASE_KEY_MAX];   /* keys below it have expired */
	struct sg_strlist keys;
};

static int exp_cb(void *arg, const char *key, size_t klen, const void *val, size_t vlen)
{
	struct exp_ctx *c = arg;
	size_t blen = strlen(c->bound);

	(void)val;
	(void)vlen;
	/* Hex of equal width sorts as the number: stop at the first unexpired key. */
	if (klen >= blen && memcmp(key, c->bound, blen) >= 0)
		return 1;
	sg_strlist_addn(&c->keys, key, klen);
	return 0;
}

/* Deletes expired records (and stale expiry entries), a chunk per commit. */
static int sweep_expired_locked(struct lease_mgr *m, uint64_t *count, struct sg_err *err);

static int sweep_expired(struct lease_mgr *m, uint64_t *count, struct sg_err *err)
{
	int rc;

	/* Shared with revocations, exclusive of renewals (a renewed lease is not swept). */
	pthread_rwlock_rdlock(&m->rw);
	rc = sweep_expired_locked(m, count, err);
	pthread_rwlock_unlock(&m->rw);
	return rc;
}

static int sweep_expired_locked(struct lease_mgr *m, uint64_t *count, struct sg_err *err)
{
	struct exp_ctx c;
	struct store_batch *b = NULL;
	int64_t now = sg_now();
	int rc = -1;

	memset(&c, 0, sizeof(c));
	/* Expired means expire_time <= now, i.e. below now + 1. */
	snprintf(c.bound, sizeof(c.bound), LEASE_IDX_EXP "%016" PRIx64 "/", (uint64_t)(now + 1));
	for (;;) {
		long got;

		sg_strlist_clear(&c.keys);
		got = store_scan(m->st, STORE_INDEX, LEASE_IDX_EXP, NULL, LEASE_REVOKE_CHUNK, exp_cb, &c, err);
		if (got < 0)
			goto out;
		if (c.keys.n == 0)
			break;
		b = store_batch_new();
		for (size_t i = 0; i < c.keys.n; i++) {
			const char *k = c.keys.v[i];
			const char *id = k + strlen(LEASE_IDX_EXP) + LEASE_EXP_HEX + 1;
			struct lease l;
			int r;

			store_batch_del(b, STORE_INDEX, k, strlen(k));
			if (strlen(k) <= strlen(LEASE_IDX_EXP) + LEASE_EXP_HEX + 1)
				continue;
			if ((r = lease_read(m, id, &l, err)) < 0)
				goto out;
			/* A renewed lease left this entry behind: only the entry goes. */
			if (r == 1 && l.expire_time <= now) {
				lease_stage_del(b, &l);
				(*count)++;
			}
			lease_clear(&l);
		}
		if (store_commit(m->st, b, err) < 0)
			goto out;
		store_batch_free(b);
		b = NULL;
		if (c.keys.n < LEASE_REVOKE_CHUNK)
			break;
	}
	rc = 0;
out:
	store_batch_free(b);
	sg_strlist_clear(&c.keys);
	return rc;
}

struct dangling_ctx {
	struct lease_mgr *m;
	struct store_batch *b;
	size_t ops;
	struct sg_err *err;
};

/* An owner index entry whose record is gone. */
static int dangling_cb(void *arg, const char *key, size_t klen, const void *val, size_t vlen)
{
	struct dangling_ctx *c = arg;
	const char *rest = key + strlen(LEASE_IDX_OWNER), *slash;
	size_t n = klen - strlen(LEASE_IDX_OWNER);
	int r;

	(void)val;
	(void)vlen;
	slash = memchr(rest, '/', n);
	if (slash == NULL || (size_t)(slash - rest) + 1 >= n) {
		r = 0;
	} else {
		size_t idlen = n - (size_t)(slash - rest) - 1;

		r = store_get(c->m->st, STORE_LEASES, slash + 1, idlen, NULL, NULL, c->err);
		if (r < 0)
			return -1;
	}
	if (r == 0 && c->ops < STORE_MAX_BATCH_OPS) {
		if (c->b == NULL)
			c->b = store_batch_new();
		store_batch_del(c->b, STORE_INDEX, key, klen);
		c->ops++;
	}
	return 0;
}

int lease_tidy(struct lease_mgr *m, uint64_t *count, struct sg_err *err)
{
	struct dangling_ctx d = {m, NULL, 0, err};
	int rc = -1;

	*count = 0;
	if (sweep_expired(m, count, err) < 0)
		return -1;
	if (store_scan(m->st, STORE_INDEX, LEASE_IDX_OWNER, NULL, 0, dangling_cb, &d, err) < 0)
		goto out;
	if (d.b != NULL && store_commit(m->st, d.b, err) < 0)
		goto out;
	rc = 0;
out:
	store_batch_free(d.b);
	return rc;
}

static void *sweeper_main(void *arg)
{
	struct lease_mgr *m = arg;

	pthread_mutex_lock(&m->lock);
	while (!m->stopping) {
		struct timespec until;
		uint64_t count = 0;
		struct sg_err err;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += m->sweep_interval;
		while (!m->stopping && pthread_cond_timedwait(&m->wake, &m->lock, &until) != ETIMEDOUT)
			;
		if (m->stopping)
			break;
		pthread_mutex_unlock(&m->lock);
		sg_err_init(&err);
		/* A failed sweep is retried at the next tick; the records stay until then. */
		(void)sweep_expired(m, &count, &err);
		pthread_mutex_lock(&m->lock);
	}
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

int lease_sweeper_start(struct lease_mgr *m, int interval_seconds, struct sg_err *err)
{
	int rc = 0;

	if (interval_seconds <= 0)
		return sg_err_set(err, SG_BAD_REQUEST, "lease sweeper interval must be positive");
	pthread_mutex_lock(&m->lock);
	if (m->sweeper_running) {
		rc = sg_err_set(err, SG_INTERNAL, "lease sweeper already running");
	} else {
		m->sweep_interval = interval_seconds;
		if (pthread_create(&m->sweeper, NULL, sweeper_main, m) != 0)
			rc = sg_err_set(err, SG_INTERNAL, "cannot start the lease sweeper thread");
		else
			m->sweeper_running = true;
	}
	pthread_mutex_unlock(&m->lock);
	return rc;
}

/* ---------------- Rendering ---------------- */

static json_t *time_json(int64_t t)
{
	char buf[40];

	if (t == 0)
		return json_null();
	sg_time_format_rfc3339(t, buf, sizeof(buf));
	return json_string(buf);
}

json_t *lease_to_json(const struct lease *l)
{
	int64_t ttl = l->expire_time - sg_now();

	return json_pack("{s:s, s:o, s:o, s:o, s:b, s:I}", "id", l->id, "issue_time", time_json(l->issue_time),
	                 "expire_time", time_json(l->expire_time), "last_renewal", time_json(l->last_renewal),
	                 "renewable", l->renewable, "ttl", (json_int_t)(ttl > 0 ? ttl : 0));
}
