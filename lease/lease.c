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

static void leases_free(struct lease *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		lease_clear(&v[i]);
	free(v);
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

static char *lease_encode(const struct lease *l)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:b}", "id", l->id, "kind", l->kind, "owner",
	                      l->owner != NULL ? l->owner : "", "issue_time", (json_int_t)l->issue_time,
	                      "expire_time", (json_int_t)l->expire_time, "last_renewal",
	                      (json_int_t)l->last_renewal, "renewable", l->renewable);
	char *s;

	if (o == NULL)
		sg_die("lease: cannot encode a record");
	json_object_set(o, "data", l->data != NULL ? l->data : json_null());
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (s == NULL)
		sg_die("out of memory");
	return s;
}

static int lease_decode(const void *val, size_t len, struct lease *out, struct sg_err *err)
{
	json_error_t je;
	json_t *o = json_loadb(val, len, 0, &je);
	const json_t *id, *kind, *owner, *it, *et, *lr;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (o == NULL || !json_is_object(o))
		goto out;
	id = json_object_get(o, "id");
	kind = json_object_get(o, "kind");
	owner = json_object_get(o, "owner");
	it = json_object_get(o, "issue_time");
	et = json_object_get(o, "expire_time");
	lr = json_object_get(o, "last_renewal");
	if (!json_is_string(id) || !json_is_string(kind) || !json_is_string(owner) || !json_is_integer(it) ||
	    !json_is_integer(et) || !json_is_integer(lr))
		goto out;
	out->id = sg_xstrdup(json_string_value(id));
	out->kind = sg_xstrdup(json_string_value(kind));
	out->owner = sg_xstrdup(json_string_value(owner));
	out->issue_time = json_integer_value(it);
	out->expire_time = json_integer_value(et);
	out->last_renewal = json_integer_value(lr);
	out->renewable = json_is_true(json_object_get(o, "renewable"));
	out->data = json_incref(json_object_get(o, "data"));
	rc = 0;
out:
	json_decref(o);
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
	                            : lease_decode(v, len, out, err);
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
	if (pthread_mutex_init(&m->lock, NULL) != 0 || pthread_cond_init(&m->wake, NULL) != 0)
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
	free(m);
}

void lease_kind_register(struct lease_mgr *m, const struct lease_kind *k)
{
	size_t i;

	if (k == NULL || k->name == NULL || k->revoke == NULL || strlen(k->name) == 0 ||
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
	l.kind = (char *)kind;
	l.owner = (char *)owner;
	l.issue_time = sg_now();
	l.expire_time = l.issue_time + ttl;
	l.renewable = renewable;
	l.data = data;
	lease_stage_put(b, &l, true);
	*out_id = l.id;
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

int lease_renew(struct lease_mgr *m, const char *id, int64_t increment, struct lease *out, struct sg_err *err)
{
	struct lease l;
	struct store_batch *b = NULL;
	char key[LEASE_KEY_MAX];
	int64_t now = sg_now(), granted;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = lease_lookup(m, id, &l, err)) < 0)
		return -1;
	if (rc == 0)
		return sg_err_set(err, SG_BAD_REQUEST, "invalid lease ID");
	if (!l.renewable) {
		lease_clear(&l);
		return sg_err_set(err, SG_BAD_REQUEST, "lease is not renewable");
	}
	if (increment < 0) {
		lease_clear(&l);
		return sg_err_set(err, SG_BAD_REQUEST, "increment must not be negative");
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

	if ((rc = lease_lookup(m, id, &l, err)) < 0)
		return -1;
	if (rc == 0)
		return sg_err_set(err, SG_BAD_REQUEST, "invalid lease ID");
	rc = revoke_chunk(m, &l, 1, false, &count, err);
	lease_clear(&l);
	return rc;
}

struct collect_ctx {
	struct lease *v;
	size_t n;
};

static int collect_cb(void *arg, const char *key, size_t klen, const void *val, size_t vlen)
{
	struct collect_ctx *c = arg;
	struct lease *l = &c->v[c->n];
	struct sg_err tmp;

	sg_err_init(&tmp);
	if (vlen > LEASE_RECORD_MAX || lease_decode(val, vlen, l, &tmp) < 0 || strlen(l->id) != klen ||
	    memcmp(l->id, key, klen) != 0) {
		/* Kept as a kind-less lease: revoke refuses it, revoke-force deletes it. */
		lease_clear(l);
		l->id = sg_xstrndup(key, klen);
	}
	c->n++;
	return 0;
}

int lease_revoke_prefix(struct lease_mgr *m, const char *prefix, bool force, uint64_t *count, struct sg_err *err)
{
	char scan[LEASE_KEY_MAX], after[LEASE_KEY_MAX];
	struct collect_ctx c = {0};
	size_t plen;
	int rc = -1;

	*count = 0;
	plen = prefix != NULL ? strlen(prefix) : 0;
	while (plen > 0 && prefix[plen - 1] == '/')
		plen--;
	if (plen == 0 || plen > LEASE_ID_MAX)
		return sg_err_set(err, SG_BAD_REQUEST, "malformed lease prefix");
	snprintf(scan, sizeof(scan), "%.*s", (int)plen, prefix);
	if (!lease_path_valid(scan))
		return sg_err_set(err, SG_BAD_REQUEST, "malformed lease prefix");
	/* A whole segment: "pki/issue/web" covers "pki/issue/web/..." and never "pki/issue/webx/...". */
	scan[plen] = '/';
	scan[plen + 1] = '\0';
	c.v = sg_xcalloc(LEASE_REVOKE_CHUNK, sizeof(*c.v));
	after[0] = '\0';
	for (;;) {
		long got = store_scan(m->st, STORE_LEASES, scan, after[0] != '\0' ? after : NULL, LEASE_REVOKE_CHUNK,
		                      collect_cb, &c, err);

		if (got < 0)
			goto out;
		if (c.n == 0)
			break;
		/* Paging by the largest id seen: the chunk is sorted by kind below. */
		for (size_t i = 0; i < c.n; i++)
			if (strcmp(c.v[i].id, after) > 0)
				snprintf(after, sizeof(after), "%s", c.v[i].id);
		if (revoke_chunk(m, c.v, c.n, force, count, err) < 0)
			goto out;
		for (size_t i = 0; i < c.n; i++)
			lease_clear(&c.v[i]);
		if (c.n < LEASE_REVOKE_CHUNK)
			break;
		c.n = 0;
	}
	rc = 0;
out:
	leases_free(c.v, LEASE_REVOKE_CHUNK);
	return rc;
}

struct ids_ctx {
	size_t skip;
	struct sg_strlist ids;
	char last[LEASE_KEY_MAX];
};

static int ids_cb(void *arg, const char *key, size_t klen, const void *val, size_t vlen)
{
	struct ids_ctx *c = arg;

	(void)val;
	(void)vlen;
	if (klen >= sizeof(c->last))
		return 0;
	memcpy(c->last, key, klen);
	c->last[klen] = '\0';
	if (klen > c->skip)
		sg_strlist_addn(&c->ids, key + c->skip, klen - c->skip);
	return 0;
}

/*
 * Reads the leases named by ids into v (absent ones are skipped and their
 * owner index entries staged for deletion in *dangling). Returns how many.
 */
static long owner_chunk_load(struct lease_mgr *m, const char *owner, const struct sg_strlist *ids, struct lease *v,
                             struct store_batch **dangling, struct sg_err *err)
{
	char key[LEASE_KEY_MAX];
	size_t n = 0;

	for (size_t i = 0; i < ids->n; i++) {
		int r = lease_read(m, ids->v[i], &v[n], err);

		if (r < 0)
			return -1;
		if (r == 1) {
			n++;
			continue;
		}
		/* An index entry without its record (should not happen): drop it. */
		if (*dangling == NULL)
			*dangling = store_batch_new();
		owner_key(key, sizeof(key), owner, ids->v[i]);
		store_batch_del(*dangling, STORE_INDEX, key, strlen(key));
	}
	return (long)n;
}

int lease_revoke_owner(struct lease_mgr *m, const char *owner, uint64_t *count, struct sg_err *err)
{
	char scan[LEASE_KEY_MAX];
	struct ids_ctx c;
	struct lease *v = NULL;
	struct store_batch *dangling = NULL;
	long got, n = 0;
	int rc = -1;

	*count = 0;
	if (owner == NULL || owner[0] == '\0' || !owner_valid(owner))
		return sg_err_set(err, SG_BAD_REQUEST, "malformed lease owner");
	snprintf(scan, sizeof(scan), LEASE_IDX_OWNER "%s/", owner);
	memset(&c, 0, sizeof(c));
	c.skip = strlen(scan);
	/* The common case, a token that owns nothing, is one empty index seek. */
	for (bool first = true;; first = false) {
		sg_strlist_clear(&c.ids);
		got = store_scan(m->st, STORE_INDEX, scan, first ? NULL : c.last, LEASE_REVOKE_CHUNK, ids_cb, &c, err);
		if (got <= 0)
			break;
		if (v == NULL)
			v = sg_xcalloc(LEASE_REVOKE_CHUNK, sizeof(*v));
		n = owner_chunk_load(m, owner, &c.ids, v, &dangling, err);
		if (n < 0 || revoke_chunk(m, v, (size_t)n, false, count, err) < 0)
			goto out;
		for (long i = 0; i < n; i++)
			lease_clear(&v[i]);
		n = 0;
		if (got < LEASE_REVOKE_CHUNK)
			break;
	}
	if (got < 0)
		goto out;
	if (dangling != NULL && store_commit(m->st, dangling, err) < 0)
		goto out;
	rc = 0;
out:
	if (v != NULL)
		leases_free(v, LEASE_REVOKE_CHUNK);
	store_batch_free(dangling);
	sg_strlist_clear(&c.ids);
	return rc;
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
static int sweep_expired(struct lease_mgr *m, uint64_t *count, struct sg_err *err)
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
