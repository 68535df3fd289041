/*
 * lease/: records and indexes, Vault's LIST, renew rules, revocation by
 * id, prefix and owner in chunks (one commit per chunk, callbacks and
 * deletions atomic), force, lost races, expiry sweep and tidy. A fake kind
 * "mark" stands for the PKI: its revoke stages "mark/<id>" with put_new
 * into the same batch, so a revoked lease always has its mark.
 */
#include "lease/lease.h"
#include "tests/unit/t.h"

#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define OUTCOME_MARKED 1
#define OUTCOME_ALREADY 2

static struct store *g_st;
/* Large revocations run the callbacks on two threads. */
static pthread_mutex_t g_kind_lock = PTHREAD_MUTEX_INITIALIZER;

struct mark_kind {
	size_t calls, max_n, done_calls, done_leases, done_marked;
	const char *fail_id;         /* revoke fails when this lease is in the set */
	bool race;                   /* first call commits a competing mark for the first lease */
};

static char *tmpdir_new(void)
{
	char tmpl[] = "/tmp/sigil-lease-XXXXXX";
	char *d = mkdtemp(tmpl);

	if (d == NULL) {
		perror("mkdtemp");
		exit(2);
	}
	return sg_xstrdup(d);
}

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

static void mark_key(char *buf, size_t cap, const char *id)
{
	snprintf(buf, cap, "mark/%s", id);
}

static bool has_mark(const char *id)
{
	char key[STORE_MAX_KEY + 8];
	struct sg_err err;

	sg_err_init(&err);
	mark_key(key, sizeof(key), id);
	return store_get(g_st, STORE_INDEX, key, strlen(key), NULL, NULL, &err) == 1;
}

static int mark_revoke_locked(struct mark_kind *k, struct lease *v, size_t n, struct store_batch *b,
                              struct sg_err *err)
{
	char key[STORE_MAX_KEY + 8];

	k->calls++;
	if (n > k->max_n)
		k->max_n = n;
	for (size_t i = 0; i < n; i++)
		if (k->fail_id != NULL && strcmp(v[i].id, k->fail_id) == 0)
			return sg_err_set(err, SG_STORAGE, "mark: cannot revoke %s", v[i].id);
	if (k->race && n > 0) {
		struct store_batch *other = store_batch_new();

		k->race = false;
		mark_key(key, sizeof(key), v[0].id);
		store_batch_put(other, STORE_INDEX, key, strlen(key), "x", 1);
		if (store_commit(g_st, other, err) < 0) {
			store_batch_free(other);
			return -1;
		}
		store_batch_free(other);
		/* Stage as if the competing write had not been seen: the commit must conflict. */
		store_batch_put_new(b, STORE_INDEX, key, strlen(key), "", 0);
		v[0].outcome = OUTCOME_MARKED;
		for (size_t i = 1; i < n; i++) {
			mark_key(key, sizeof(key), v[i].id);
			store_batch_put_new(b, STORE_INDEX, key, strlen(key), "", 0);
			v[i].outcome = OUTCOME_MARKED;
		}
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (has_mark(v[i].id)) {
			v[i].outcome = OUTCOME_ALREADY;
			continue;
		}
		mark_key(key, sizeof(key), v[i].id);
		store_batch_put_new(b, STORE_INDEX, key, strlen(key), "", 0);
		v[i].outcome = OUTCOME_MARKED;
	}
	return 0;
}

static int mark_revoke(void *arg, struct lease *v, size_t n, struct store_batch *b, struct sg_err *err)
{
	int rc;

	pthread_mutex_lock(&g_kind_lock);
	rc = mark_revoke_locked(arg, v, n, b, err);
	pthread_mutex_unlock(&g_kind_lock);
	return rc;
}

static void mark_done(void *arg, const struct lease *v, size_t n)
{
	struct mark_kind *k = arg;

	pthread_mutex_lock(&g_kind_lock);
	k->done_calls++;
	k->done_leases += n;
	for (size_t i = 0; i < n; i++)
		if (v[i].outcome == OUTCOME_MARKED)
			k->done_marked++;
	pthread_mutex_unlock(&g_kind_lock);
}

static void register_mark(struct lease_mgr *m, struct mark_kind *k)
{
	struct lease_kind lk = {"mark", mark_revoke, mark_done, k};

	memset(k, 0, sizeof(*k));
	lease_kind_register(m, &lk);
}

/* Creates n leases under prefix in one commit; ids appended to ids when not NULL. */
static int create_n(struct lease_mgr *m, const char *prefix, const char *owner, size_t n, int64_t ttl,
                    bool renewable, struct sg_strlist *ids)
{
	struct store_batch *b = store_batch_new();
	struct sg_err err;
	json_t *data = json_pack("{s:s}", "serial", "01:02");
	int rc = 0;

	sg_err_init(&err);
	for (size_t i = 0; i < n && rc == 0; i++) {
		char *id = NULL;

		rc = lease_batch_create(m, b, prefix, "mark", owner, ttl, renewable, data, &id, &err);
		if (rc == 0 && ids != NULL)
			sg_strlist_add(ids, id);
		free(id);
	}
	if (rc == 0)
		rc = store_commit(g_st, b, &err);
	if (rc != 0)
		fprintf(stderr, "create_n: %s\n", err.detail);
	store_batch_free(b);
	json_decref(data);
	return rc;
}

static int count_cb(void *arg, const char *key, size_t klen, const void *val, size_t vlen)
{
	(void)key;
	(void)klen;
	(void)val;
	(void)vlen;
	(*(size_t *)arg)++;
	return 0;
}

static size_t count_prefix(enum store_table t, const char *prefix)
{
	struct sg_err err;
	size_t n = 0;

	sg_err_init(&err);
	if (store_scan(g_st, t, prefix, NULL, 0, count_cb, &n, &err) < 0)
		return (size_t)-1;
	return n;
}

static bool lease_exists(struct lease_mgr *m, const char *id)
{
	struct lease l;
	struct sg_err err;
	int rc;

	sg_err_init(&err);
	rc = lease_lookup(m, id, &l, &err);
	lease_clear(&l);
	return rc == 1;
}

/* ---------------- Tests ---------------- */

static void test_path_valid(void)
{
	char longp[LEASE_ID_MAX + 2];

	T_OK(lease_path_valid("pki/issue/web"));
	T_OK(lease_path_valid("pki/issue/web/AbC123"));
	T_OK(lease_path_valid("a"));
	T_OK(lease_path_valid("a.b/..c/d..")); /* dots inside a segment are fine */
	T_OK(!lease_path_valid(""));
	T_OK(!lease_path_valid(NULL));
	T_OK(!lease_path_valid("/pki"));
	T_OK(!lease_path_valid("pki/"));
	T_OK(!lease_path_valid("pki//issue"));
	T_OK(!lease_path_valid("pki/../sys"));
	T_OK(!lease_path_valid("pki/./issue"));
	T_OK(!lease_path_valid(".."));
	T_OK(!lease_path_valid("pki/is sue"));
	T_OK(!lease_path_valid("pki/\x01"));
	T_OK(!lease_path_valid("pki/\xc3\xa9"));
	memset(longp, 'a', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	T_OK(!lease_path_valid(longp));
	longp[LEASE_ID_MAX] = '\0';
	T_OK(lease_path_valid(longp));
}

static void test_create_lookup(struct lease_mgr *m)
{
	struct store_batch *b = store_batch_new();
	struct sg_err err;
	struct lease l;
	json_t *data = json_pack("{s:s, s:i}", "serial", "0a:0b", "n", 7), *j;
	char *id = NULL, *bad = NULL;
	char longp[LEASE_ID_MAX];
	int64_t now = sg_now();

	sg_err_init(&err);
	T_OK(lease_batch_create(m, b, "pki/issue/web", "mark", "acc1", 3600, false, data, &id, &err) == 0);
	T_OK(store_commit(g_st, b, &err) == 0);
	store_batch_free(b);
	T_OK(id != NULL && strncmp(id, "pki/issue/web/", 14) == 0 && strlen(id) == 14 + LEASE_ID_RANDOM);
	for (size_t i = 14; id != NULL && i < strlen(id); i++)
		T_CHECK((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'A' && id[i] <= 'Z') || (id[i] >= 'a' && id[i] <= 'z'),
		        "id character %c", id[i]);
	T_OK(lease_lookup(m, id, &l, &err) == 1);
	T_STREQ(l.id, id);
	T_STREQ(l.kind, "mark");
	T_STREQ(l.owner, "acc1");
	T_OK(l.issue_time >= now && l.issue_time <= now + 2);
	T_OK(l.expire_time == l.issue_time + 3600);
	T_OK(l.last_renewal == 0 && !l.renewable);
	T_OK(json_equal(l.data, data));
	j = lease_to_json(&l);
	T_STREQ(json_string_value(json_object_get(j, "id")), id);
	T_OK(json_is_string(json_object_get(j, "issue_time")) && json_is_string(json_object_get(j, "expire_time")));
	T_OK(json_is_null(json_object_get(j, "last_renewal")));
	T_OK(json_is_false(json_object_get(j, "renewable")));
	T_OK(json_integer_value(json_object_get(j, "ttl")) > 3590 && json_integer_value(json_object_get(j, "ttl")) <= 3600);
	json_decref(j);
	lease_clear(&l);
	lease_clear(&l); /* NULL-safe twice */
	lease_clear(NULL);
	/* Index entries: one owner, one expiry. */
	T_OK(count_prefix(STORE_INDEX, "lease-owner/acc1/") == 1);
	T_OK(count_prefix(STORE_INDEX, "lease-exp/") == 1);

	/* Absent, malformed and unknown ids. */
	T_OK(lease_lookup(m, "pki/issue/web/nope", &l, &err) == 0);
	T_OK(lease_lookup(m, "pki/../x", &l, &err) == 0);
	T_OK(lease_lookup(m, "", &l, &err) == 0);

	/* Creation errors. */
	b = store_batch_new();
	sg_err_init(&err);
	T_OK(lease_batch_create(m, b, "pki//x", "mark", "", 10, false, data, &bad, &err) == -1 &&
	     err.code == SG_BAD_REQUEST && bad == NULL);
	sg_err_init(&err);
	T_OK(lease_batch_create(m, b, "pki/x", "mark", "a/b", 10, false, data, &bad, &err) == -1 &&
	     err.code == SG_BAD_REQUEST);
	sg_err_init(&err);
	T_OK(lease_batch_create(m, b, "pki/x", "mark", "acc", 0, false, data, &bad, &err) == -1 &&
	     err.code == SG_BAD_REQUEST);
	sg_err_init(&err);
	T_OK(lease_batch_create(m, b, "pki/x", "nosuchkind", "acc", 10, false, data, &bad, &err) == -1 &&
	     err.code == SG_INTERNAL);
	memset(longp, 'p', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	sg_err_init(&err);
	T_OK(lease_batch_create(m, b, longp, "mark", "acc", 10, false, data, &bad, &err) == -1 &&
	     err.code == SG_BAD_REQUEST);
	store_batch_free(b);
	json_decref(data);

	/* Clean up for the next tests. */
	sg_err_init(&err);
	T_OK(lease_revoke(m, id, &err) == 0);
	free(id);
}

static void test_list(struct lease_mgr *m)
{
	struct sg_strlist out = {0}, ids = {0};
	struct sg_err err;
	uint64_t count = 0;

	sg_err_init(&err);
	T_OK(create_n(m, "pki/issue/web", "o1", 2500, 3600, false, &ids) == 0);
	T_OK(create_n(m, "pki/issue/api", "o1", 2, 3600, false, NULL) == 0);
	T_OK(create_n(m, "pki/sign/web", "o1", 1, 3600, false, NULL) == 0);
	T_OK(create_n(m, "pki_int/issue/x", "o1", 1, 3600, false, NULL) == 0);

	T_OK(lease_list(m, "", &out, &err) == 0);
	T_CHECK(out.n == 2 && strcmp(out.v[0], "pki/") == 0 && strcmp(out.v[1], "pki_int/") == 0, "top: %zu", out.n);
	sg_strlist_clear(&out);
	T_OK(lease_list(m, "pki/", &out, &err) == 0);
	T_CHECK(out.n == 2 && strcmp(out.v[0], "issue/") == 0 && strcmp(out.v[1], "sign/") == 0, "pki: %zu", out.n);
	sg_strlist_clear(&out);
	T_OK(lease_list(m, "pki/issue", &out, &err) == 0); /* no trailing slash: the same */
	T_CHECK(out.n == 2 && strcmp(out.v[0], "api/") == 0 && strcmp(out.v[1], "web/") == 0, "issue: %zu", out.n);
	sg_strlist_clear(&out);
	T_OK(lease_list(m, "pki/issue/web/", &out, &err) == 0);
	T_CHECK(out.n == 2500, "web: %zu", out.n);
	T_OK(out.n > 0 && strlen(out.v[0]) == LEASE_ID_RANDOM);
	sg_strlist_clear(&out);
	T_OK(lease_list(m, "pki/issue/we", &out, &err) == 0 && out.n == 0); /* whole segments only */
	T_OK(lease_list(m, "nothing/here", &out, &err) == 0 && out.n == 0);
	sg_err_init(&err);
	T_OK(lease_list(m, "pki//issue", &out, &err) == -1 && err.code == SG_BAD_REQUEST);

	sg_err_init(&err);
	T_OK(lease_revoke_prefix(m, "pki", false, &count, &err) == 0 && count == 2503);
	T_OK(lease_revoke_prefix(m, "pki_int", false, &count, &err) == 0 && count == 1);
	T_OK(count_prefix(STORE_LEASES, NULL) == 0);
	sg_strlist_clear(&ids);
}

static void test_renew(struct lease_mgr *m)
{
	struct sg_strlist ids = {0};
	struct sg_err err;
	struct lease l;

	T_OK(create_n(m, "pki/issue/r", "", 1, 100, false, &ids) == 0);
	T_OK(create_n(m, "db/creds/r", "o", 1, 100, true, &ids) == 0);
	T_OK(count_prefix(STORE_INDEX, "lease-owner/") == 1); /* no owner, no owner entry */
	sg_err_init(&err);
	T_OK(lease_renew(m, ids.v[0], 60, &l, &err) == -1 && err.code == SG_BAD_REQUEST);
	T_STREQ(err.detail, "lease is not renewable");
	sg_err_init(&err);
	T_OK(lease_renew(m, "pki/issue/r/unknown", 60, &l, &err) == -1 && err.code == SG_BAD_REQUEST);
	T_STREQ(err.detail, "invalid lease ID");
	sg_err_init(&err);
	T_OK(lease_renew(m, ids.v[1], -5, &l, &err) == -1 && err.code == SG_BAD_REQUEST);

	sg_err_init(&err);
	T_OK(lease_renew(m, ids.v[1], 500, &l, &err) == 0);
	T_OK(l.expire_time == sg_now() + 500 || l.expire_time == sg_now() + 499);
	T_OK(l.last_renewal >= l.issue_time && l.last_renewal > 0);
	lease_clear(&l);
	/* No increment: the duration granted last time. */
	T_OK(lease_renew(m, ids.v[1], 0, &l, &err) == 0);
	T_OK(l.expire_time - l.last_renewal == 500);
	lease_clear(&l);
	T_OK(lease_renew(m, ids.v[1], LEASE_MAX_INCREMENT * 10, &l, &err) == 0);
	T_OK(l.expire_time - l.last_renewal == LEASE_MAX_INCREMENT);
	lease_clear(&l);
	/* Renewal moved the expiry entry: still one per lease. */
	T_OK(count_prefix(STORE_INDEX, "lease-exp/") == 2);
	T_OK(lease_lookup(m, ids.v[1], &l, &err) == 1 && l.expire_time - l.last_renewal == LEASE_MAX_INCREMENT);
	lease_clear(&l);
	T_OK(lease_revoke(m, ids.v[0], &err) == 0 && lease_revoke(m, ids.v[1], &err) == 0);
	T_OK(count_prefix(STORE_INDEX, "lease-") == 0);
	sg_strlist_clear(&ids);
}

static void test_revoke_one(struct lease_mgr *m, struct mark_kind *k)
{
	struct sg_strlist ids = {0};
	struct sg_err err;

	T_OK(create_n(m, "pki/issue/one", "tok", 2, 3600, false, &ids) == 0);
	memset(k, 0, sizeof(*k));
	sg_err_init(&err);
	T_OK(lease_revoke(m, ids.v[0], &err) == 0);
	T_OK(k->calls == 1 && k->done_calls == 1 && k->done_marked == 1);
	T_OK(has_mark(ids.v[0]) && !has_mark(ids.v[1]));
	T_OK(!lease_exists(m, ids.v[0]) && lease_exists(m, ids.v[1]));
	T_OK(count_prefix(STORE_INDEX, "lease-owner/tok/") == 1);
	T_OK(count_prefix(STORE_INDEX, "lease-exp/") == 1);
	sg_err_init(&err);
	T_OK(lease_revoke(m, ids.v[0], &err) == -1 && err.code == SG_BAD_REQUEST);
	T_STREQ(err.detail, "invalid lease ID");
	sg_err_init(&err);
	T_OK(lease_revoke(m, "no/such/lease", &err) == -1 && err.code == SG_BAD_REQUEST);
	sg_err_init(&err);
	T_OK(lease_revoke(m, ids.v[1], &err) == 0);
	T_OK(count_prefix(STORE_INDEX, "lease-") == 0);
	sg_strlist_clear(&ids);
}

static void test_revoke_prefix_chunks(struct lease_mgr *m, struct mark_kind *k)
{
	struct sg_strlist web = {0}, webx = {0};
	struct sg_err err;
	uint64_t count = 0, c0, c1, b0, b1;
	size_t marked = 0;

	T_OK(create_n(m, "pki/issue/web", "a", 2500, 3600, false, &web) == 0);
	T_OK(create_n(m, "pki/issue/webx", "a", 3, 3600, false, &webx) == 0);
	memset(k, 0, sizeof(*k));
	store_stats(g_st, &c0, &b0);
	sg_err_init(&err);
	T_OK(lease_revoke_prefix(m, "pki/issue/web/", false, &count, &err) == 0);
	store_stats(g_st, &c1, &b1);
	T_CHECK(count == 2500, "count %llu", (unsigned long long)count);
	/* 2500 leases, chunks of LEASE_REVOKE_CHUNK: three commits, not 2500. */
	T_CHECK(b1 - b0 == 3, "batches %llu", (unsigned long long)(b1 - b0));
	T_CHECK(k->calls == 3 && k->max_n == LEASE_REVOKE_CHUNK, "calls %zu max %zu", k->calls, k->max_n);
	T_OK(k->done_leases == 2500 && k->done_marked == 2500);
	for (size_t i = 0; i < web.n; i++)
		marked += has_mark(web.v[i]);
	T_OK(marked == 2500);
	/* The neighbouring role survives. */
	for (size_t i = 0; i < webx.n; i++)
		T_OK(lease_exists(m, webx.v[i]) && !has_mark(webx.v[i]));
	T_OK(count_prefix(STORE_INDEX, "lease-owner/a/") == 3);
	T_OK(count_prefix(STORE_INDEX, "lease-exp/") == 3);
	/* Nothing left under the prefix: success, zero. */
	T_OK(lease_revoke_prefix(m, "pki/issue/web", false, &count, &err) == 0 && count == 0);
	/* Malformed prefixes. */
	sg_err_init(&err);
	T_OK(lease_revoke_prefix(m, "", false, &count, &err) == -1 && err.code == SG_BAD_REQUEST);
	sg_err_init(&err);
	T_OK(lease_revoke_prefix(m, "pki/../sys", false, &count, &err) == -1 && err.code == SG_BAD_REQUEST);
	sg_err_init(&err);
	T_OK(lease_revoke_prefix(m, "/", true, &count, &err) == -1 && err.code == SG_BAD_REQUEST);
	T_OK(lease_revoke_prefix(m, "pki", false, &count, &err) == 0 && count == 3);
	sg_strlist_clear(&web);
	sg_strlist_clear(&webx);
}

static void test_revoke_owner(struct lease_mgr *m, struct mark_kind *k)
{
	struct sg_strlist mine = {0}, theirs = {0};
	struct sg_err err;
	uint64_t count = 7;

	T_OK(create_n(m, "pki/issue/a", "tokA", 1200, 3600, false, &mine) == 0);
	T_OK(create_n(m, "pki/sign/b", "tokA", 5, 3600, false, &mine) == 0);
	T_OK(create_n(m, "pki/issue/a", "tokAB", 4, 3600, false, &theirs) == 0);
	memset(k, 0, sizeof(*k));
	sg_err_init(&err);
	T_OK(lease_revoke_owner(m, "nobody", &count, &err) == 0 && count == 0);
	T_OK(k->calls == 0);
	T_OK(lease_revoke_owner(m, "tokA", &count, &err) == 0);
	T_CHECK(count == 1205, "count %llu", (unsigned long long)count);
	T_OK(k->done_marked == 1205);
	T_OK(count_prefix(STORE_INDEX, "lease-owner/tokA/") == 0);
	for (size_t i = 0; i < mine.n; i += 97)
		T_OK(!lease_exists(m, mine.v[i]) && has_mark(mine.v[i]));
	/* An owner whose name extends tokA's is someone else. */
	for (size_t i = 0; i < theirs.n; i++)
		T_OK(lease_exists(m, theirs.v[i]));
	sg_err_init(&err);
	T_OK(lease_revoke_owner(m, "", &count, &err) == -1 && err.code == SG_BAD_REQUEST);
	sg_err_init(&err);
	T_OK(lease_revoke_owner(m, "a/b", &count, &err) == -1 && err.code == SG_BAD_REQUEST);
	T_OK(lease_revoke_owner(m, "tokAB", &count, &err) == 0 && count == 4);
	T_OK(count_prefix(STORE_LEASES, NULL) == 0 && count_prefix(STORE_INDEX, "lease-") == 0);
	sg_strlist_clear(&mine);
	sg_strlist_clear(&theirs);
}

static void test_callback_failure_and_force(struct lease_mgr *m, struct mark_kind *k)
{
	struct sg_strlist ids = {0};
	struct sg_err err;
	uint64_t count = 0;
	size_t marked = 0;

	T_OK(create_n(m, "pki/issue/f", "o", 10, 3600, false, &ids) == 0);
	memset(k, 0, sizeof(*k));
	k->fail_id = ids.v[4];
	sg_err_init(&err);
	T_OK(lease_revoke_prefix(m, "pki/issue/f", false, &count, &err) == -1 && err.code == SG_STORAGE);
	/* Nothing of the failed chunk was committed. */
	for (size_t i = 0; i < ids.n; i++)
		T_OK(lease_exists(m, ids.v[i]) && !has_mark(ids.v[i]));
	sg_err_init(&err);
	T_OK(lease_revoke(m, ids.v[4], &err) == -1 && err.code == SG_STORAGE && lease_exists(m, ids.v[4]));

	/* Force: the failing lease goes without its mark, every other one with it. */
	memset(k, 0, sizeof(*k));
	k->fail_id = ids.v[4];
	sg_err_init(&err);
	T_OK(lease_revoke_prefix(m, "pki/issue/f", true, &count, &err) == 0 && count == 10);
	for (size_t i = 0; i < ids.n; i++) {
		T_OK(!lease_exists(m, ids.v[i]));
		marked += has_mark(ids.v[i]);
	}
	T_OK(marked == 9 && !has_mark(ids.v[4]));
	T_OK(k->done_marked == 9);
	T_OK(count_prefix(STORE_INDEX, "lease-") == 0);
	k->fail_id = NULL;
	sg_strlist_clear(&ids);
}

static void test_lost_race(struct lease_mgr *m, struct mark_kind *k)
{
	struct sg_strlist ids = {0};
	struct sg_err err;
	uint64_t count = 0;

	T_OK(create_n(m, "pki/issue/race", "o", 5, 3600, false, &ids) == 0);
	memset(k, 0, sizeof(*k));
	k->race = true;
	sg_err_init(&err);
	T_OK(lease_revoke_prefix(m, "pki/issue/race", false, &count, &err) == 0 && count == 5);
	/* The first commit conflicted; the rebuild saw the competing mark. */
	T_CHECK(k->calls == 2, "calls %zu", k->calls);
	T_CHECK(k->done_marked == 4, "marked %zu", k->done_marked);
	for (size_t i = 0; i < ids.n; i++)
		T_OK(!lease_exists(m, ids.v[i]) && has_mark(ids.v[i]));
	sg_strlist_clear(&ids);
}

static void test_unknown_kind_and_garbage(struct lease_mgr *m)
{
	struct lease_mgr *other = NULL;
	struct mark_kind k2;
	struct store_batch *b;
	struct sg_strlist ids = {0};
	struct sg_err err;
	uint64_t count = 0;

	/* Leases of a kind the manager does not know: refused, force deletes them. */
	T_OK(create_n(m, "x/issue/k", "o", 2, 3600, false, &ids) == 0);
	sg_err_init(&err);
	T_OK(lease_mgr_new(g_st, &other, &err) == 0);
	sg_err_init(&err);
	T_OK(lease_revoke_prefix(other, "x", false, &count, &err) == -1 && err.code == SG_INTERNAL);
	T_OK(lease_exists(other, ids.v[0]));
	/* A garbage record under the prefix. */
	b = store_batch_new();
	store_batch_put(b, STORE_LEASES, "x/issue/k/garbage", 17, "{not json", 9);
	T_OK(store_commit(g_st, b, &err) == 0);
	store_batch_free(b);
	register_mark(other, &k2);
	sg_err_init(&err);
	T_OK(lease_revoke_prefix(other, "x", false, &count, &err) == -1 && err.code == SG_INTERNAL);
	T_OK(lease_exists(other, ids.v[0]) && !has_mark(ids.v[0]));
	sg_err_init(&err);
	T_OK(lease_revoke_prefix(other, "x", true, &count, &err) == 0 && count == 3);
	T_OK(count_prefix(STORE_LEASES, "x/") == 0);
	T_OK(has_mark(ids.v[0]) && has_mark(ids.v[1]));
	T_OK(count_prefix(STORE_INDEX, "lease-") == 0);
	lease_mgr_free(other);
	lease_mgr_free(NULL);
	sg_strlist_clear(&ids);
}

static void test_expiry_and_tidy(struct lease_mgr *m)
{
	struct sg_strlist shortl = {0}, longl = {0}, out = {0};
	struct store_batch *b;
	struct sg_err err;
	uint64_t count = 0;

	T_OK(create_n(m, "pki/issue/t", "ot", 1500, 50, false, &shortl) == 0);
	T_OK(create_n(m, "pki/issue/t", "ot", 3, 5000, false, &longl) == 0);
	/* A dangling owner entry (its record is gone). */
	b = store_batch_new();
	store_batch_put(b, STORE_INDEX, "lease-owner/ghost/pki/issue/t/zzz", 33, "", 0);
	sg_err_init(&err);
	T_OK(store_commit(g_st, b, &err) == 0);
	store_batch_free(b);
	T_OK(lease_tidy(m, &count, &err) == 0 && count == 0);
	T_OK(count_prefix(STORE_INDEX, "lease-owner/ghost/") == 0);
	sg_clock_advance(60);
	/* Expired: absent to lookup, renew and revoke before the sweep. */
	T_OK(!lease_exists(m, shortl.v[0]) && lease_exists(m, longl.v[0]));
	sg_err_init(&err);
	T_OK(lease_revoke(m, shortl.v[1], &err) == -1 && err.code == SG_BAD_REQUEST);
	sg_err_init(&err);
	T_OK(lease_tidy(m, &count, &err) == 0);
	T_CHECK(count == 1500, "tidied %llu", (unsigned long long)count);
	T_OK(count_prefix(STORE_LEASES, "pki/issue/t/") == 3);
	T_OK(count_prefix(STORE_INDEX, "lease-owner/ot/") == 3);
	T_OK(count_prefix(STORE_INDEX, "lease-exp/") == 3);
	T_OK(lease_list(m, "pki/issue/t", &out, &err) == 0 && out.n == 3);
	sg_strlist_clear(&out);
	T_OK(lease_tidy(m, &count, &err) == 0 && count == 0);
	T_OK(lease_revoke_owner(m, "ot", &count, &err) == 0 && count == 3);
	sg_strlist_clear(&shortl);
	sg_strlist_clear(&longl);
}

static void test_sweeper(struct lease_mgr *m)
{
	struct sg_strlist ids = {0};
	struct sg_err err;
	bool gone = false;

	T_OK(create_n(m, "pki/issue/s", "os", 3, 30, false, &ids) == 0);
	sg_err_init(&err);
	T_OK(lease_sweeper_start(m, 1, &err) == 0);
	sg_err_init(&err);
	T_OK(lease_sweeper_start(m, 1, &err) == -1 && err.code == SG_INTERNAL);
	sg_err_init(&err);
	T_OK(lease_sweeper_start(m, 0, &err) == -1 && err.code == SG_BAD_REQUEST);
	usleep(1200 * 1000);
	T_OK(count_prefix(STORE_LEASES, "pki/issue/s/") == 3); /* not expired: kept */
	sg_clock_advance(40);
	for (int i = 0; i < 50 && !gone; i++) {
		usleep(100 * 1000);
		gone = count_prefix(STORE_LEASES, "pki/issue/s/") == 0;
	}
	T_OK(gone);
	T_OK(count_prefix(STORE_INDEX, "lease-") == 0);
	sg_strlist_clear(&ids);
}

int main(void)
{
	char *dir = tmpdir_new();
	struct lease_mgr *m = NULL;
	struct mark_kind k;
	struct sg_err err;

	sg_err_init(&err);
	if (store_open(dir, 0, &g_st, &err) != 0 || lease_mgr_new(g_st, &m, &err) != 0) {
		fprintf(stderr, "setup: %s\n", err.detail);
		return 2;
	}
	sg_err_init(&err);
	T_OK(lease_mgr_new(NULL, &m, &err) == -1 && err.code == SG_INTERNAL);
	register_mark(m, &k);
	test_path_valid();
	test_create_lookup(m);
	test_list(m);
	test_renew(m);
	test_revoke_one(m, &k);
	test_revoke_prefix_chunks(m, &k);
	test_revoke_owner(m, &k);
	test_callback_failure_and_force(m, &k);
	test_lost_race(m, &k);
	test_unknown_kind_and_garbage(m);
	test_expiry_and_tidy(m);
	test_sweeper(m);
	lease_mgr_free(m);
	store_close(g_st);
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
	return t_done();
}
