/*
 * Tidy (compat/vault-api.md 1.8): removes certificate and revocation
 * records expired for longer than the safety buffer, and expired issuers,
 * on the "crl-tidy" thread. Work is paged: CRL_TIDY_PAGE records per read
 * transaction, CRL_TIDY_BATCH deletions per commit, so issuance shares the
 * group-commit writer with small batches and never waits behind a long
 * write (Vault's tidy runs for hours with everything in memory: pain point
 * hashicorp/vault#21041). A revoked certificate leaves the CRL only here,
 * once it has expired, and the CRLs are rebuilt afterwards.
 */
#include "crl/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TIDY_KEY_MAX 192
#define TIDY_SLEEP_SLICE_MS 100
#define TIDY_AUTO_KEY "auto-tidy"

enum tidy_state { TIDY_INACTIVE, TIDY_RUNNING, TIDY_FINISHED, TIDY_ERROR, TIDY_CANCELLING, TIDY_CANCELLED };

static const char *const state_names[] = {"Inactive", "Running", "Finished", "Error", "Cancelling", "Cancelled"};

struct tidy_mnt {
	char id[CRL_ID_MAX + 1];
	char *path;
	enum tidy_state state;
	char error[SG_ERR_DETAIL_MAX];
	char message[160];
	int64_t time_started, time_finished;
	uint64_t cert_store_deleted, revoked_deleted, missing_issuer, issuers_deleted;
	struct crl_tidy_config params;     /* of the current or last run */
	bool cancel;
	bool queued;                       /* a run waits for the thread */
	bool have_auto;
	struct crl_tidy_config auto_cfg;
	int64_t last_auto_finished;        /* 0 = never */
	int64_t auto_epoch;                /* auto-tidy counts its interval from here when it never ran */
	struct tidy_mnt *next;
};

struct crl_tidy {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct tidy_mnt *mounts;
	pthread_t thread;
	bool started, stop;
};

/* ---------------- Configuration ---------------- */

void crl_tidy_config_default(struct crl_tidy_config *t)
{
	memset(t, 0, sizeof(*t));
	t->safety_buffer = 72 * 3600;
	t->issuer_safety_buffer = 365 * 24 * 3600;
	t->interval_duration = 12 * 3600;
}

static int dur(const json_t *body, const char *key, int64_t *out, int64_t min, struct sg_err *err)
{
	int64_t v = 0;
	int rc = sg_json_duration(body, key, &v, err);

	if (rc <= 0)
		return rc;
	/* A buffer longer than any certificate's life would delete nothing; one that overflows deletes all (vault#4641). */
	if (v < min || v > CRL_MAX_DURATION)
		return sg_err_set(err, SG_BAD_REQUEST, "field '%s' must be between %llds and %llds", key, (long long)min,
		                  (long long)CRL_MAX_DURATION);
	*out = v;
	return 1;
}

int crl_tidy_config_from_json(const json_t *body, struct crl_tidy_config *t, bool auto_tidy, struct sg_err *err)
{
	struct crl_tidy_config n = *t;

	if (sg_json_bool(body, "tidy_cert_store", &n.tidy_cert_store, err) < 0 ||
	    sg_json_bool(body, "tidy_revoked_certs", &n.tidy_revoked_certs, err) < 0 ||
	    sg_json_bool(body, "tidy_expired_issuers", &n.tidy_expired_issuers, err) < 0 ||
	    dur(body, "safety_buffer", &n.safety_buffer, 1, err) < 0 ||
	    dur(body, "issuer_safety_buffer", &n.issuer_safety_buffer, 1, err) < 0 ||
	    dur(body, "pause_duration", &n.pause_duration, 0, err) < 0)
		return -1;
	if (auto_tidy && (sg_json_bool(body, "enabled", &n.enabled, err) < 0 ||
	                  dur(body, "interval_duration", &n.interval_duration, 1, err) < 0))
		return -1;
	*t = n;
	return 0;
}

json_t *crl_tidy_config_to_json(const struct crl_tidy_config *t, bool auto_tidy)
{
	char pause[32];
	json_t *o;

	crl_duration_string(t->pause_duration, pause, sizeof(pause));
	o = json_pack("{s:b, s:b, s:b, s:I, s:I, s:s}", "tidy_cert_store", t->tidy_cert_store, "tidy_revoked_certs",
	              t->tidy_revoked_certs, "tidy_expired_issuers", t->tidy_expired_issuers, "safety_buffer",
	              (json_int_t)t->safety_buffer, "issuer_safety_buffer", (json_int_t)t->issuer_safety_buffer,
	              "pause_duration", pause);
	if (o == NULL)
		sg_die("out of memory");
	if (auto_tidy) {
		json_object_set_new(o, "enabled", json_boolean(t->enabled));
		json_object_set_new(o, "interval_duration", json_integer(t->interval_duration));
	}
	return o;
}

static void tkey(char *buf, size_t cap, const char *mount_id, const char *suffix)
{
	int n = snprintf(buf, cap, "%s/%s", mount_id, suffix);

	if (n < 0 || (size_t)n >= cap)
		sg_die("crl: store key too long");
}

static int auto_load(struct crl *c, const char *mount_id, struct crl_tidy_config *out, struct sg_err *err)
{
	char key[TIDY_KEY_MAX];
	unsigned char *v = NULL;
	size_t len = 0;
	json_t *o;
	json_error_t je;
	int rc;

	crl_tidy_config_default(out);
	tkey(key, sizeof(key), mount_id, TIDY_AUTO_KEY);
	if ((rc = store_get(c->st, STORE_CONFIG, key, strlen(key), &v, &len, err)) <= 0)
		return rc;
	o = json_loadb((const char *)v, len, 0, &je);
	free(v);
	if (o == NULL || crl_tidy_config_from_json(o, out, true, err) < 0) {
		json_decref(o);
		crl_tidy_config_default(out);
		return sg_err_set(err, SG_STORAGE, "malformed auto-tidy configuration record");
	}
	json_decref(o);
	return 1;
}

/* ---------------- Registry ---------------- */

static struct tidy_mnt *tm_find(struct crl_tidy *t, const struct ca_mount *m, bool create)
{
	struct tidy_mnt *x;

	for (x = t->mounts; x != NULL; x = x->next)
		if (strcmp(x->id, m->id) == 0)
			break;
	if (x == NULL && create && strlen(m->id) > 0 && strlen(m->id) <= CRL_ID_MAX) {
		x = sg_xcalloc(1, sizeof(*x));
		snprintf(x->id, sizeof(x->id), "%s", m->id);
		x->path = sg_xstrdup(m->path != NULL ? m->path : m->id);
		crl_tidy_config_default(&x->params);
		crl_tidy_config_default(&x->auto_cfg);
		x->auto_epoch = sg_now();
		x->next = t->mounts;
		t->mounts = x;
	}
	if (x != NULL && m->path != NULL && m->path[0] != '\0' && strcmp(x->path, m->path) != 0) {
		free(x->path);
		x->path = sg_xstrdup(m->path);
	}
	return x;
}

/* ---------------- A run ---------------- */

struct page_item {
	char key[TIDY_KEY_MAX];
	int64_t not_after;
	char issuer_id[37];
};

struct page {
	struct page_item *v;
	size_t n;
	char last[TIDY_KEY_MAX];
	bool bad;                          /* a key too long for TIDY_KEY_MAX: skipped */
};

static int page_cb(void *arg, const char *key, size_t klen, const void *val, size_t vlen)
{
	struct page *p = arg;
	struct page_item *it;
	json_error_t je;
	json_t *o, *na, *iss;

	if (klen >= TIDY_KEY_MAX) {
		p->bad = true;
		return 0;
	}
	memcpy(p->last, key, klen);
	p->last[klen] = '\0';
	it = &p->v[p->n++];
	memcpy(it->key, key, klen);
	it->key[klen] = '\0';
	it->not_after = 0;
	it->issuer_id[0] = '\0';
	/* The records (ca/ca.h layout) are JSON with not_after and, for revocations, issuer_id. */
	o = json_loadb(val, vlen, 0, &je);
	na = json_object_get(o, "not_after");
	iss = json_object_get(o, "issuer_id");
	if (json_is_integer(na))
		it->not_after = json_integer_value(na);
	if (json_is_string(iss) && json_string_length(iss) == 36)
		memcpy(it->issuer_id, json_string_value(iss), 37);
	json_decref(o);
	return 0;
}

static int count_cb(void *arg, const char *key, size_t klen, const void *val, size_t vlen)
{
	(void)arg;
	(void)key;
	(void)klen;
	(void)val;
	(void)vlen;
	return 0;
}

static bool cancelled(struct crl *c, struct tidy_mnt *tm)
{
	bool v;

	pthread_mutex_lock(&c->tidy->lock);
	v = tm->cancel || c->tidy->stop;
	pthread_mutex_unlock(&c->tidy->lock);
	return v;
}

/* pause_duration between batches, in slices so that a cancel is seen quickly. */
static void pause_for(struct crl *c, struct tidy_mnt *tm, int64_t secs)
{
	int64_t end = crl_mono_ms() + secs * 1000;

	while (secs > 0 && !cancelled(c, tm)) {
		int64_t left = end - crl_mono_ms();
		struct timespec ts;

		if (left <= 0)
			break;
		if (left > TIDY_SLEEP_SLICE_MS)
			left = TIDY_SLEEP_SLICE_MS;
		ts.tv_sec = 0;
		ts.tv_nsec = left * 1000000;
		nanosleep(&ts, NULL);
	}
}

static int flush(struct crl *c, struct store_batch **b, size_t *nops, struct sg_err *err)
{
	int rc = 0;

	if (*nops > 0)
		rc = store_commit(c->st, *b, err);
	store_batch_free(*b);
	*b = store_batch_new();
	*nops = 0;
	return rc;
}

/* tidy-status after each committed batch: what is deleted is on disk. */
static void progress(struct crl *c, struct tidy_mnt *tm, bool revoked, uint64_t checked, uint64_t total,
                     uint64_t deleted)
{
	pthread_mutex_lock(&c->tidy->lock);
	snprintf(tm->message, sizeof(tm->message),
	         revoked ? "Tidying revoked certificates: checking certificate %llu of %llu"
	                 : "Tidying certificate store: checking entry %llu of %llu",
	         (unsigned long long)checked, (unsigned long long)total);
	if (revoked)
		tm->revoked_deleted = deleted;
	else
		tm->cert_store_deleted = deleted;
	pthread_mutex_unlock(&c->tidy->lock);
}

static bool known_issuer(const struct ca_issuer_info *infos, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(infos[i].id, id) == 0)
			return true;
	return false;
}

/*
 * One pass over a table of the mount: records expired before `cutoff` are
 * deleted (from STORE_REVOKED and STORE_CERTS for revocations), in batches.
 */
static int tidy_pass(struct crl *c, struct tidy_mnt *tm, const struct ca_mount *m, bool revoked, int64_t cutoff,
                     const struct ca_issuer_info *infos, size_t ninfos, uint64_t *deleted, struct sg_err *err)
{
	char prefix[TIDY_KEY_MAX];
	struct page p = {0};
	struct store_batch *b = store_batch_new();
	size_t nops = 0, plen;
	uint64_t checked = 0, total;
	long got;
	int rc = -1;
	enum store_table t = revoked ? STORE_REVOKED : STORE_CERTS;

	tkey(prefix, sizeof(prefix), m->id, "");
	plen = strlen(prefix);
	if ((got = store_scan(c->st, t, prefix, NULL, 0, count_cb, NULL, err)) < 0)
		goto out;
	total = (uint64_t)got;
	p.v = sg_xcalloc(CRL_TIDY_PAGE, sizeof(*p.v));
	for (;;) {
		bool first = checked == 0;

		p.n = 0;
		if ((got = store_scan(c->st, t, prefix, first ? NULL : p.last, CRL_TIDY_PAGE, page_cb, &p, err)) < 0)
			goto out;
		for (size_t i = 0; i < p.n; i++) {
			struct page_item *it = &p.v[i];

			checked++;
			if (revoked && (it->issuer_id[0] == '\0' || !known_issuer(infos, ninfos, it->issuer_id))) {
				pthread_mutex_lock(&c->tidy->lock);
				tm->missing_issuer++;
				pthread_mutex_unlock(&c->tidy->lock);
			}
			/* not_after 0: unknown expiry, never deleted. */
			if (it->not_after == 0 || it->not_after >= cutoff || strlen(it->key) <= plen)
				continue;
			store_batch_del(b, t, it->key, strlen(it->key));
			nops++;
			if (revoked) {
				store_batch_del(b, STORE_CERTS, it->key, strlen(it->key));
				nops++;
			}
			(*deleted)++;
			if (nops >= CRL_TIDY_BATCH) {
				if (flush(c, &b, &nops, err) < 0)
					goto out;
				progress(c, tm, revoked, checked, total, *deleted);
				if (cancelled(c, tm))
					break;
				pause_for(c, tm, tm->params.pause_duration);
			}
		}
		if (flush(c, &b, &nops, err) < 0)
			goto out;
		progress(c, tm, revoked, checked, total, *deleted);
		if ((size_t)got < CRL_TIDY_PAGE || cancelled(c, tm))
			break;
	}
	rc = 0;
out:
	store_batch_free(b);
	free(p.v);
	return rc;
}

static int tidy_issuers(struct crl *c, struct tidy_mnt *tm, const struct ca_mount *m, int64_t now,
                        struct sg_err *err)
{
	struct ca_issuer_info *infos = NULL;
	size_t n = 0;
	int rc = -1;

	if (ca_issuer_list(c->ca, m, &infos, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const ASN1_TIME *na = X509_get0_notAfter(infos[i].cert);
		int64_t not_after;
		struct tm tmv;

		if (infos[i].is_default || ASN1_TIME_to_tm(na, &tmv) != 1)
			continue;
		not_after = (int64_t)timegm(&tmv);
		if (not_after >= now - tm->params.issuer_safety_buffer)
			continue;
		if (ca_issuer_delete(c->ca, m, infos[i].id, err) < 0)
			goto out;
		pthread_mutex_lock(&c->tidy->lock);
		tm->issuers_deleted++;
		pthread_mutex_unlock(&c->tidy->lock);
	}
	rc = 0;
out:
	for (size_t i = 0; i < n; i++)
		ca_issuer_info_clear(&infos[i]);
	free(infos);
	return rc;
}

/* The work of a run; status fields are updated as it goes. */
static int tidy_work(struct crl *c, struct tidy_mnt *tm, const struct ca_mount *m, struct sg_err *err)
{
	struct ca_issuer_info *infos = NULL;
	size_t ninfos = 0;
	uint64_t certs = 0, revoked = 0;
	int64_t now = sg_now(), cutoff = now - tm->params.safety_buffer;
	int rc = -1;

	if (ca_issuer_list(c->ca, m, &infos, &ninfos, err) < 0)
		goto out;
	if (tm->params.tidy_cert_store && !cancelled(c, tm) &&
	    tidy_pass(c, tm, m, false, cutoff, infos, ninfos, &certs, err) < 0)
		goto out;
	if (tm->params.tidy_revoked_certs && !cancelled(c, tm)) {
		int prc = tidy_pass(c, tm, m, true, cutoff, infos, ninfos, &revoked, err);

		/* Entries left the revocation records: the CRLs follow, even after a partial pass. */
		if (revoked > 0)
			crl_mount_rebuild(c, m);
		if (prc < 0)
			goto out;
	}
	if (tm->params.tidy_expired_issuers && !cancelled(c, tm) && tidy_issuers(c, tm, m, now, err) < 0)
		goto out;
	rc = 0;
out:
	for (size_t i = 0; i < ninfos; i++)
		ca_issuer_info_clear(&infos[i]);
	free(infos);
	return rc;
}

/* Runs on the calling thread; tm is RUNNING (set by the caller under the lock). */
static void tidy_execute(struct crl *c, struct tidy_mnt *tm, bool is_auto)
{
	struct ca_mount m;
	char *path;
	struct sg_err err;
	int rc;

	pthread_mutex_lock(&c->tidy->lock);
	path = sg_xstrdup(tm->path);
	pthread_mutex_unlock(&c->tidy->lock);
	m.id = tm->id;
	m.path = path;
	m.default_ttl = m.max_ttl = 0;
	sg_err_init(&err);
	rc = tidy_work(c, tm, &m, &err);
	pthread_mutex_lock(&c->tidy->lock);
	tm->time_finished = sg_now();
	if (rc < 0) {
		tm->state = TIDY_ERROR;
		snprintf(tm->error, sizeof(tm->error), "%s", err.detail);
	} else if (tm->cancel) {
		tm->state = TIDY_CANCELLED;
	} else {
		tm->state = TIDY_FINISHED;
	}
	tm->cancel = false;
	if (is_auto)
		tm->last_auto_finished = tm->time_finished;
	pthread_cond_broadcast(&c->tidy->wake);
	pthread_mutex_unlock(&c->tidy->lock);
	free(path);
}

/* Lock held. */
static void tidy_begin(struct tidy_mnt *tm, const struct crl_tidy_config *t)
{
	tm->params = *t;
	tm->state = TIDY_RUNNING;
	tm->error[0] = '\0';
	tm->message[0] = '\0';
	tm->time_started = sg_now();
	tm->time_finished = 0;
	tm->cert_store_deleted = tm->revoked_deleted = tm->missing_issuer = tm->issuers_deleted = 0;
	tm->cancel = false;
}

static bool tidy_busy(const struct tidy_mnt *tm)
{
	return tm->queued || tm->state == TIDY_RUNNING || tm->state == TIDY_CANCELLING;
}

static int any_op(const struct crl_tidy_config *t, struct sg_err *err)
{
	if (!t->tidy_cert_store && !t->tidy_revoked_certs && !t->tidy_expired_issuers)
		return sg_err_set(err, SG_BAD_REQUEST, "at least one tidy operation must be enabled");
	return 0;
}

int crl_tidy_run(struct crl *c, const struct ca_mount *m, const struct crl_tidy_config *t, struct sg_err *err)
{
	struct tidy_mnt *tm;
	int rc = 0;

	if (any_op(t, err) < 0)
		return -1;
	pthread_mutex_lock(&c->tidy->lock);
	tm = tm_find(c->tidy, m, true);
	if (tm == NULL || tidy_busy(tm)) {
		pthread_mutex_unlock(&c->tidy->lock);
		return sg_err_set(err, SG_BAD_REQUEST, "a tidy operation is already running on this mount");
	}
	tidy_begin(tm, t);
	pthread_mutex_unlock(&c->tidy->lock);
	tidy_execute(c, tm, false);
	pthread_mutex_lock(&c->tidy->lock);
	if (tm->state == TIDY_ERROR)
		rc = sg_err_set(err, SG_INTERNAL, "%s", tm->error);
	pthread_mutex_unlock(&c->tidy->lock);
	return rc;
}

int crl_tidy_start(struct crl *c, const struct ca_mount *m, const struct crl_tidy_config *t, struct sg_err *err)
{
	struct tidy_mnt *tm;

	if (any_op(t, err) < 0)
		return -1;
	pthread_mutex_lock(&c->tidy->lock);
	tm = tm_find(c->tidy, m, true);
	if (tm == NULL || tidy_busy(tm)) {
		pthread_mutex_unlock(&c->tidy->lock);
		return sg_err_set(err, SG_BAD_REQUEST, "a tidy operation is already running on this mount");
	}
	/* RUNNING at once, so that tidy-status right after the 202 already tells. */
	tidy_begin(tm, t);
	tm->queued = true;
	pthread_cond_broadcast(&c->tidy->wake);
	pthread_mutex_unlock(&c->tidy->lock);
	return 0;
}

int crl_tidy_cancel(struct crl *c, const struct ca_mount *m, struct sg_err *err)
{
	struct tidy_mnt *tm;
	int rc = 0;

	pthread_mutex_lock(&c->tidy->lock);
	tm = tm_find(c->tidy, m, false);
	if (tm == NULL || tm->state != TIDY_RUNNING) {
		rc = sg_err_set(err, SG_BAD_REQUEST, "Tidy operation cannot be cancelled as none is currently running.");
	} else {
		tm->cancel = true;
		tm->state = TIDY_CANCELLING;
	}
	pthread_mutex_unlock(&c->tidy->lock);
	return rc;
}

static json_t *time_json(int64_t t)
{
	char buf[40];

	if (t == 0)
		return json_null();
	sg_time_format_rfc3339(t, buf, sizeof(buf));
	return json_string(buf);
}

json_t *crl_tidy_status(struct crl *c, const struct ca_mount *m)
{
	struct tidy_mnt *tm;
	struct crl_tidy_config params;
	json_t *o;

	pthread_mutex_lock(&c->tidy->lock);
	tm = tm_find(c->tidy, m, true);
	if (tm == NULL) {
		pthread_mutex_unlock(&c->tidy->lock);
		crl_tidy_config_default(&params);
		o = crl_tidy_config_to_json(&params, false);
		json_object_set_new(o, "state", json_string("Inactive"));
		return o;
	}
	params = tm->params;
	o = crl_tidy_config_to_json(&params, false);
	json_object_set_new(o, "state", json_string(state_names[tm->state]));
	json_object_set_new(o, "error", tm->error[0] ? json_string(tm->error) : json_null());
	json_object_set_new(o, "time_started", time_json(tm->time_started));
	json_object_set_new(o, "time_finished", time_json(tm->time_finished));
	json_object_set_new(o, "message", tm->message[0] ? json_string(tm->message) : json_null());
	json_object_set_new(o, "cert_store_deleted_count", json_integer((json_int_t)tm->cert_store_deleted));
	json_object_set_new(o, "revoked_cert_deleted_count", json_integer((json_int_t)tm->revoked_deleted));
	json_object_set_new(o, "missing_issuer_cert_count", json_integer((json_int_t)tm->missing_issuer));
	json_object_set_new(o, "expired_issuers_deleted_count", json_integer((json_int_t)tm->issuers_deleted));
	json_object_set_new(o, "last_auto_tidy_finished", time_json(tm->last_auto_finished));
	pthread_mutex_unlock(&c->tidy->lock);
	return o;
}

/* ---------------- Auto-tidy ---------------- */

int crl_tidy_config_get(struct crl *c, const struct ca_mount *m, struct crl_tidy_config *out, struct sg_err *err)
{
	struct tidy_mnt *tm;
	int rc = 0;

	pthread_mutex_lock(&c->tidy->lock);
	tm = tm_find(c->tidy, m, true);
	if (tm == NULL) {
		rc = sg_err_set(err, SG_BAD_REQUEST, "invalid mount id");
	} else {
		if (!tm->have_auto) {
			/* A malformed record reads as the defaults (disabled). */
			struct sg_err tmp;

			sg_err_init(&tmp);
			(void)auto_load(c, m->id, &tm->auto_cfg, &tmp);
			tm->have_auto = true;
		}
		*out = tm->auto_cfg;
	}
	pthread_mutex_unlock(&c->tidy->lock);
	return rc;
}

int crl_tidy_config_set(struct crl *c, const struct ca_mount *m, const struct crl_tidy_config *in, struct sg_err *err)
{
	char key[TIDY_KEY_MAX];
	json_t *o = crl_tidy_config_to_json(in, true);
	char *s = json_dumps(o, JSON_COMPACT);
	struct store_batch *b = store_batch_new();
	struct tidy_mnt *tm;
	int rc = -1;

	if (s == NULL)
		sg_die("out of memory");
	if (in->enabled && any_op(in, err) < 0)
		goto out;
	if (strlen(m->id) == 0 || strlen(m->id) > CRL_ID_MAX) {
		sg_err_set(err, SG_BAD_REQUEST, "invalid mount id");
		goto out;
	}
	tkey(key, sizeof(key), m->id, TIDY_AUTO_KEY);
	store_batch_put(b, STORE_CONFIG, key, strlen(key), s, strlen(s));
	if (store_commit(c->st, b, err) < 0)
		goto out;
	pthread_mutex_lock(&c->tidy->lock);
	if ((tm = tm_find(c->tidy, m, true)) != NULL) {
		/* Enabling starts the interval now, as Vault measures it from the end of the previous run. */
		if (in->enabled && !tm->auto_cfg.enabled)
			tm->auto_epoch = sg_now();
		tm->auto_cfg = *in;
		tm->have_auto = true;
	}
	pthread_cond_broadcast(&c->tidy->wake);
	pthread_mutex_unlock(&c->tidy->lock);
	rc = 0;
out:
	store_batch_free(b);
	json_decref(o);
	free(s);
	return rc;
}

struct discover_ctx {
	struct crl *c;
};

static int discover_cb(void *arg, const char *key, size_t klen, const void *val, size_t vlen)
{
	struct discover_ctx *d = arg;
	static const char suffix[] = "/" TIDY_AUTO_KEY;
	size_t sl = sizeof(suffix) - 1;
	char id[CRL_ID_MAX + 1];
	struct ca_mount m = {id, id, 0, 0};
	struct tidy_mnt *tm;

	(void)val;
	(void)vlen;
	if (klen <= sl || memcmp(key + klen - sl, suffix, sl) != 0 || klen - sl > CRL_ID_MAX)
		return 0;
	memcpy(id, key, klen - sl);
	id[klen - sl] = '\0';
	if (strchr(id, '/') != NULL)
		return 0;
	pthread_mutex_lock(&d->c->tidy->lock);
	tm = tm_find(d->c->tidy, &m, true);
	pthread_mutex_unlock(&d->c->tidy->lock);
	if (tm != NULL) {
		struct crl_tidy_config cfg;
		struct sg_err err;

		/* Loads the record into the registry; a malformed one reads as disabled. */
		sg_err_init(&err);
		if (crl_tidy_config_get(d->c, &m, &cfg, &err) < 0)
			return 0;
	}
	return 0;
}

static void *tidy_main(void *arg)
{
	struct crl *c = arg;
	struct crl_tidy *t = c->tidy;
	struct discover_ctx d = {c};
	struct sg_err err;
	long scanned;

	pthread_setname_np(pthread_self(), "crl-tidy");
	sg_err_init(&err);
	/* Mounts with an auto-tidy configuration from an earlier run (if the scan fails, they load on first use). */
	scanned = store_scan(c->st, STORE_CONFIG, NULL, NULL, 0, discover_cb, &d, &err);
	(void)scanned;
	pthread_mutex_lock(&t->lock);
	while (!t->stop) {
		struct tidy_mnt *run = NULL;
		bool is_auto = false;
		int64_t now = sg_now();
		struct timespec ts;

		for (struct tidy_mnt *tm = t->mounts; tm != NULL && run == NULL; tm = tm->next) {
			if (tm->queued) {
				run = tm;
			} else if (tm->have_auto && tm->auto_cfg.enabled && !tidy_busy(tm) &&
			           now >= (tm->last_auto_finished != 0 ? tm->last_auto_finished : tm->auto_epoch) +
			                      tm->auto_cfg.interval_duration) {
				tidy_begin(tm, &tm->auto_cfg);
				run = tm;
				is_auto = true;
			}
		}
		if (run != NULL) {
			run->queued = false;
			pthread_mutex_unlock(&t->lock);
			tidy_execute(c, run, is_auto);
			pthread_mutex_lock(&t->lock);
			continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += CRL_TICK_MS / 1000;
		pthread_cond_timedwait(&t->wake, &t->lock, &ts);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

int crl_tidy_init(struct crl *c, struct sg_err *err)
{
	struct crl_tidy *t = sg_xcalloc(1, sizeof(*t));
	pthread_condattr_t attr;

	(void)err;
	pthread_mutex_init(&t->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&t->wake, &attr);
	pthread_condattr_destroy(&attr);
	c->tidy = t;
	return 0;
}

int crl_tidy_thread_start(struct crl *c, struct sg_err *err)
{
	if (pthread_create(&c->tidy->thread, NULL, tidy_main, c) != 0)
		return sg_err_set(err, SG_INTERNAL, "cannot start the tidy thread");
	c->tidy->started = true;
	return 0;
}

void crl_tidy_fini(struct crl *c)
{
	struct crl_tidy *t = c->tidy;

	if (t == NULL)
		return;
	pthread_mutex_lock(&t->lock);
	t->stop = true;
	pthread_cond_broadcast(&t->wake);
	pthread_mutex_unlock(&t->lock);
	if (t->started)
		pthread_join(t->thread, NULL);
	while (t->mounts != NULL) {
		struct tidy_mnt *x = t->mounts;

		t->mounts = x->next;
		free(x->path);
		free(x);
	}
	pthread_cond_destroy(&t->wake);
	pthread_mutex_destroy(&t->lock);
	free(t);
	c->tidy = NULL;
}
