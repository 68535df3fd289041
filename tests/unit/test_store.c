#include "store/store.h"
#include "tests/unit/t.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ---- */

static char *tmpdir_new(void)
{
	char tmpl[] = "/tmp/sigil-store-XXXXXX";
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

static void tmpdir_free(char *d)
{
	if (d == NULL)
		return;
	if (nftw(d, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
		fprintf(stderr, "cannot remove %s\n", d);
	free(d);
}

static double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct store *open_ok(const char *dir, size_t map)
{
	struct store *st = NULL;
	struct sg_err err;

	sg_err_init(&err);
	if (store_open(dir, map, &st, &err) != 0) {
		fprintf(stderr, "store_open %s: %s\n", dir, err.detail);
		exit(2);
	}
	return st;
}

static int put1(struct store *st, enum store_table t, const char *k, const char *v, struct sg_err *err)
{
	struct store_batch *b = store_batch_new();
	int rc;

	store_batch_put(b, t, k, strlen(k), v, strlen(v));
	rc = store_commit(st, b, err);
	store_batch_free(b);
	return rc;
}

/* 1 when key holds exactly want, 0 when absent, -1 otherwise. */
static int get_is(struct store *st, enum store_table t, const char *k, const char *want)
{
	struct sg_err err;
	unsigned char *v = NULL;
	size_t len = 0;
	int rc;

	sg_err_init(&err);
	rc = store_get(st, t, k, strlen(k), &v, &len, &err);
	if (rc == 1)
		rc = (len == strlen(want) && memcmp(v, want, len) == 0 && v[len] == '\0') ? 1 : -1;
	free(v);
	return rc;
}

/* ---- tests ---- */

static void test_open_modes(void)
{
	char *base = tmpdir_new();
	char *dir = sg_xasprintf("%s/db", base);
	char *data = sg_xasprintf("%s/data.mdb", dir);
	char *lockf = sg_xasprintf("%s/lock.mdb", dir);
	struct store *st = NULL;
	struct sg_err err;
	struct stat sb;
	mode_t old = umask(0);

	sg_err_init(&err);
	T_OK(store_open(dir, 0, &st, &err) == 0);
	umask(old);
	T_OK(stat(dir, &sb) == 0 && (sb.st_mode & 0777) == 0700);
	T_OK(stat(data, &sb) == 0 && (sb.st_mode & 0777) == 0600);
	T_OK(stat(lockf, &sb) == 0 && (sb.st_mode & 0777) == 0600);
	store_close(st);
	store_close(NULL);

	sg_err_init(&err);
	st = NULL;
	T_OK(store_open("", 0, &st, &err) == -1 && err.code == SG_STORAGE && st == NULL);
	free(data);
	free(lockf);
	free(dir);
	tmpdir_free(base);
}

static void test_roundtrip(void)
{
	char *dir = tmpdir_new();
	struct store *st = open_ok(dir, 0);
	struct store_batch *b;
	struct sg_err err;
	unsigned char *v = NULL;
	size_t len = 99;
	uint64_t n = 0;

	sg_err_init(&err);
	T_OK(put1(st, STORE_CERTS, "m/01", "one", &err) == 0);
	T_OK(get_is(st, STORE_CERTS, "m/01", "one") == 1);
	/* Tables are separate namespaces. */
	T_OK(get_is(st, STORE_KEYS, "m/01", "one") == 0);
	T_OK(put1(st, STORE_CERTS, "m/01", "uno", &err) == 0);
	T_OK(get_is(st, STORE_CERTS, "m/01", "uno") == 1);

	/* Absent key: 0, outputs untouched. */
	T_OK(store_get(st, STORE_CERTS, "m/02", 4, &v, &len, &err) == 0 && v == NULL && len == 99);
	T_OK(!sg_err_isset(&err));
	/* Presence only. */
	T_OK(store_get(st, STORE_CERTS, "m/01", 4, NULL, NULL, &err) == 1);

	/* Binary values with embedded NULs survive. */
	b = store_batch_new();
	store_batch_put(b, STORE_CERTS, "m/bin", 5, "a\0b\0c", 5);
	store_batch_put(b, STORE_CERTS, "m/empty", 7, "", 0);
	T_OK(store_commit(st, b, &err) == 0);
	store_batch_free(b);
	T_OK(store_get(st, STORE_CERTS, "m/bin", 5, &v, &len, &err) == 1 && len == 5 &&
	     memcmp(v, "a\0b\0c", 6) == 0);
	free(v);
	v = NULL;
	T_OK(store_get(st, STORE_CERTS, "m/empty", 7, &v, &len, &err) == 1 && len == 0 && v[0] == '\0');
	free(v);
	v = NULL;
	T_OK(store_count(st, STORE_CERTS, &n, &err) == 0 && n == 3);

	/* Delete, and delete of an absent key is not an error. */
	b = store_batch_new();
	store_batch_del(b, STORE_CERTS, "m/01", 4);
	store_batch_del(b, STORE_CERTS, "m/nope", 6);
	T_OK(store_commit(st, b, &err) == 0);
	store_batch_free(b);
	T_OK(get_is(st, STORE_CERTS, "m/01", "uno") == 0);
	T_OK(store_count(st, STORE_CERTS, &n, &err) == 0 && n == 2);

	/* An empty batch commits trivially. */
	b = store_batch_new();
	T_OK(store_commit(st, b, &err) == 0);
	store_batch_free(b);
	store_batch_free(NULL);
	T_OK(!sg_err_isset(&err));

	/* Bad read keys. */
	sg_err_init(&err);
	T_OK(store_get(st, STORE_CERTS, "", 0, &v, &len, &err) == -1 && err.code == SG_BAD_REQUEST);
	sg_err_init(&err);
	T_OK(store_get(st, STORE_NTABLES, "x", 1, &v, &len, &err) == -1 && err.code == SG_INTERNAL);
	store_close(st);

	/* Reopen: everything committed is still there. */
	st = open_ok(dir, 0);
	T_OK(get_is(st, STORE_CERTS, "m/01", "uno") == 0);
	T_OK(store_get(st, STORE_CERTS, "m/bin", 5, &v, &len, &err) == 1 && len == 5);
	free(v);
	store_close(st);
	tmpdir_free(dir);
}

static void test_caps(void)
{
	char *dir = tmpdir_new();
	struct store *st = open_ok(dir, 0);
	struct store_batch *b;
	struct sg_err err;
	char key[STORE_MAX_KEY + 2];
	unsigned char *big;

	memset(key, 'k', sizeof(key));
	key[sizeof(key) - 1] = '\0';

	/* Longest allowed key works. */
	sg_err_init(&err);
	b = store_batch_new();
	store_batch_put(b, STORE_INDEX, key, STORE_MAX_KEY, "v", 1);
	T_OK(store_commit(st, b, &err) == 0);
	store_batch_free(b);
	T_OK(store_get(st, STORE_INDEX, key, STORE_MAX_KEY, NULL, NULL, &err) == 1);

	/* One byte more fails the whole batch, including its valid op. */
	sg_err_init(&err);
	b = store_batch_new();
	store_batch_put(b, STORE_INDEX, "ok", 2, "v", 1);
	store_batch_put(b, STORE_INDEX, key, STORE_MAX_KEY + 1, "v", 1);
	T_OK(store_commit(st, b, &err) == -1 && err.code == SG_BAD_REQUEST);
	store_batch_free(b);
	T_OK(get_is(st, STORE_INDEX, "ok", "v") == 0);
	sg_err_init(&err);
	T_OK(store_get(st, STORE_INDEX, key, STORE_MAX_KEY + 1, NULL, NULL, &err) == -1 &&
	     err.code == SG_BAD_REQUEST);

	/* Empty key. */
	sg_err_init(&err);
	b = store_batch_new();
	store_batch_put(b, STORE_INDEX, "", 0, "v", 1);
	T_OK(store_commit(st, b, &err) == -1 && err.code == SG_BAD_REQUEST);
	store_batch_free(b);

	/* Over-long prefix and incr key. */
	sg_err_init(&err);
	b = store_batch_new();
	store_batch_del_prefix(b, STORE_INDEX, key);
	T_OK(store_commit(st, b, &err) == -1 && err.code == SG_BAD_REQUEST);
	store_batch_free(b);
	sg_err_init(&err);
	b = store_batch_new();
	store_batch_incr(b, STORE_META, key, 1, NULL);
	T_OK(store_commit(st, b, &err) == -1 && err.code == SG_BAD_REQUEST);
	store_batch_free(b);

	/* Value one byte over the cap. */
	big = calloc(1, (size_t)STORE_MAX_VALUE + 1);
	T_OK(big != NULL);
	sg_err_init(&err);
	b = store_batch_new();
	store_batch_put(b, STORE_INDEX, "big", 3, big, (size_t)STORE_MAX_VALUE + 1);
	T_OK(store_commit(st, b, &err) == -1 && err.code == SG_BAD_REQUEST);
	store_batch_free(b);
	T_OK(get_is(st, STORE_INDEX, "big", "") == 0);
	/* A 1 MiB value is fine. */
	sg_err_init(&err);
	b = store_batch_new();
	store_batch_put(b, STORE_INDEX, "big", 3, big, (size_t)1 << 20);
	T_OK(store_commit(st, b, &err) == 0);
	store_batch_free(b);
	free(big);

	/* Too many ops. */
	sg_err_init(&err);
	b = store_batch_new();
	for (int i = 0; i <= STORE_MAX_BATCH_OPS; i++)
		store_batch_del(b, STORE_INDEX, "ok", 2);
	T_OK(store_commit(st, b, &err) == -1 && err.code == SG_BAD_REQUEST);
	store_batch_free(b);

	/* Bad table. */
	sg_err_init(&err);
	b = store_batch_new();
	store_batch_put(b, (enum store_table)-1, "x", 1, "v", 1);
	T_OK(store_commit(st, b, &err) == -1 && err.code == SG_INTERNAL);
	store_batch_free(b);

	store_close(st);
	tmpdir_free(dir);
}

struct committer {
	struct store *st;
	struct store_batch *b;
	struct sg_err err;
	int rc;
};

static void *commit_thread(void *arg)
{
	struct committer *c = arg;

	sg_err_init(&c->err);
	c->rc = store_commit(c->st, c->b, &c->err);
	return NULL;
}

static void wait_queued(struct store *st, size_t n)
{
	for (int i = 0; i < 5000 && store_queued(st) < n; i++)
		usleep(1000);
}

static void test_conflict_in_group(void)
{
	char *dir = tmpdir_new();
	struct store *st = open_ok(dir, 0);
	struct committer a = {.st = st}, c = {.st = st}, d = {.st = st};
	pthread_t ta, tc, td;
	struct sg_err err;
	uint64_t c0, b0, c1, b1;

	sg_err_init(&err);
	T_OK(put1(st, STORE_ROLES, "m/exists", "old", &err) == 0);

	/* a: a put then a put_new that conflicts; c and d: independent new keys. */
	a.b = store_batch_new();
	store_batch_put(a.b, STORE_ROLES, "m/a1", 4, "x", 1);
	store_batch_put_new(a.b, STORE_ROLES, "m/exists", 8, "new", 3);
	c.b = store_batch_new();
	store_batch_put_new(c.b, STORE_ROLES, "m/c1", 4, "y", 1);
	d.b = store_batch_new();
	store_batch_put(d.b, STORE_ROLES, "m/d1", 4, "z", 1);
	store_batch_incr(d.b, STORE_META, "ctr", 1, NULL);

	/* Hold the writer so that all three land in one group. */
	store_stats(st, &c0, &b0);
	store_writer_hold(st, 1);
	pthread_create(&ta, NULL, commit_thread, &a);
	pthread_create(&tc, NULL, commit_thread, &c);
	pthread_create(&td, NULL, commit_thread, &d);
	wait_queued(st, 3);
	T_OK(store_queued(st) == 3);
	store_writer_hold(st, 0);
	pthread_join(ta, NULL);
	pthread_join(tc, NULL);
	pthread_join(td, NULL);
	store_stats(st, &c1, &b1);

	T_CHECK(a.rc == -1 && a.err.code == SG_CONFLICT, "a rc=%d code=%s", a.rc, sg_err_name(a.err.code));
	T_OK(c.rc == 0 && d.rc == 0);
	T_CHECK(c1 - c0 == 1 && b1 - b0 == 2, "commits +%" PRIu64 " batches +%" PRIu64, c1 - c0, b1 - b0);
	T_OK(get_is(st, STORE_ROLES, "m/a1", "x") == 0); /* rolled back with its batch */
	T_OK(get_is(st, STORE_ROLES, "m/exists", "old") == 1);
	T_OK(get_is(st, STORE_ROLES, "m/c1", "y") == 1);
	T_OK(get_is(st, STORE_ROLES, "m/d1", "z") == 1);

	/* put_new twice on one key inside one batch conflicts too. */
	store_batch_free(a.b);
	a.b = store_batch_new();
	store_batch_put_new(a.b, STORE_ROLES, "m/twice", 7, "1", 1);
	store_batch_put_new(a.b, STORE_ROLES, "m/twice", 7, "2", 1);
	sg_err_init(&err);
	T_OK(store_commit(st, a.b, &err) == -1 && err.code == SG_CONFLICT);
	T_OK(get_is(st, STORE_ROLES, "m/twice", "1") == 0);

	/* A group in which every batch fails commits nothing. */
	store_stats(st, &c0, &b0);
	sg_err_init(&err);
	T_OK(store_commit(st, a.b, &err) == -1 && err.code == SG_CONFLICT);
	store_stats(st, &c1, &b1);
	T_OK(c1 == c0 && b1 == b0);

	store_batch_free(a.b);
	store_batch_free(c.b);
	store_batch_free(d.b);
	store_close(st);
	tmpdir_free(dir);
}

static void test_del_prefix(void)
{
	static const char *keys[] = {"m1", "m1/a", "m1/b", "m1/c/d", "m10/x", "m2/a"};
	char *dir = tmpdir_new();
	struct store *st = open_ok(dir, 0);
	struct store_batch *b = store_batch_new();
	struct sg_err err;
	uint64_t n = 0;

	sg_err_init(&err);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		store_batch_put(b, STORE_LEASES, keys[i], strlen(keys[i]), "v", 1);
		store_batch_put(b, STORE_ACME, keys[i], strlen(keys[i]), "v", 1);
	}
	T_OK(store_commit(st, b, &err) == 0);
	store_batch_free(b);

	/* Delete a prefix and add a key under it in the same batch: order holds. */
	b = store_batch_new();
	store_batch_del_prefix(b, STORE_LEASES, "m1/");
	store_batch_put(b, STORE_LEASES, "m1/new", 6, "n", 1);
	store_batch_del_prefix(b, STORE_LEASES, "zzz/"); /* matches nothing */
	T_OK(store_commit(st, b, &err) == 0);
	store_batch_free(b);
	T_OK(get_is(st, STORE_LEASES, "m1", "v") == 1);
	T_OK(get_is(st, STORE_LEASES, "m1/a", "v") == 0);
	T_OK(get_is(st, STORE_LEASES, "m1/b", "v") == 0);
	T_OK(get_is(st, STORE_LEASES, "m1/c/d", "v") == 0);
	T_OK(get_is(st, STORE_LEASES, "m1/new", "n") == 1);
	T_OK(get_is(st, STORE_LEASES, "m10/x", "v") == 1);
	T_OK(get_is(st, STORE_LEASES, "m2/a", "v") == 1);
	T_OK(store_count(st, STORE_LEASES, &n, &err) == 0 && n == 4);
	/* The other table is untouched. */
	T_OK(store_count(st, STORE_ACME, &n, &err) == 0 && n == 6);

	/* The empty prefix empties a table. */
	b = store_batch_new();
	store_batch_del_prefix(b, STORE_ACME, "");
	T_OK(store_commit(st, b, &err) == 0);
	store_batch_free(b);
	T_OK(store_count(st, STORE_ACME, &n, &err) == 0 && n == 0);
	T_OK(store_count(st, STORE_LEASES, &n, &err) == 0 && n == 4);
	T_OK(!sg_err_isset(&err));

	store_close(st);
	tmpdir_free(dir);
}

struct scan_acc {
	char seen[16][32];
	int n;
	int stop_at; /* 1-based entry at which to return stop_rc */
	int stop_rc;
	struct sg_err *err;
};

static int scan_cb(void *arg, const char *key, size_t klen, const void *val, size_t vlen)
{
	struct scan_acc *a = arg;

	if (a->n < 16 && klen < 32) {
		memcpy(a->seen[a->n], key, klen);
		a->seen[a->n][klen] = '\0';
	}
	/* Each value is its key upper-cased. */
	if (vlen != klen || (klen > 0 && ((const char *)val)[0] != key[0] - 32))
		return -1;
	a->n++;
	if (a->stop_at == a->n) {
		if (a->stop_rc < 0)
			sg_err_set(a->err, SG_NOT_FOUND, "callback's own error");
		return a->stop_rc;
	}
	return 0;
}

static void test_scan(void)
{
	static const char *keys[] = {"b/1", "a/3", "a", "a/1", "a/5", "a/2", "a/4", "ab", "c"};
	char *dir = tmpdir_new();
	struct store *st = open_ok(dir, 0);
	struct store_batch *b = store_batch_new();
	struct scan_acc acc;
	struct sg_err err;
	long n;

	sg_err_init(&err);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char up[8];
		size_t l = strlen(keys[i]);

		for (size_t j = 0; j < l; j++)
			up[j] = (keys[i][j] >= 'a' && keys[i][j] <= 'z') ? (char)(keys[i][j] - 32) : keys[i][j];
		store_batch_put(b, STORE_CERTS, keys[i], l, up, l);
	}
	T_OK(store_commit(st, b, &err) == 0);
	store_batch_free(b);

	/* Prefix, in key order. */
	memset(&acc, 0, sizeof(acc));
	n = store_scan(st, STORE_CERTS, "a/", NULL, 0, scan_cb, &acc, &err);
	T_CHECK(n == 5 && acc.n == 5, "n=%ld", n);
	T_STREQ(acc.seen[0], "a/1");
	T_STREQ(acc.seen[4], "a/5");

	/* Whole table, in byte order: a proper prefix sorts first. */
	memset(&acc, 0, sizeof(acc));
	n = store_scan(st, STORE_CERTS, NULL, NULL, 0, scan_cb, &acc, &err);
	T_CHECK(n == 9, "n=%ld", n);
	T_STREQ(acc.seen[0], "a");
	T_STREQ(acc.seen[1], "a/1");
	T_STREQ(acc.seen[6], "ab");
	T_STREQ(acc.seen[7], "b/1");
	T_STREQ(acc.seen[8], "c");

	/* Paging: strictly after, with a limit. */
	memset(&acc, 0, sizeof(acc));
	n = store_scan(st, STORE_CERTS, "a/", "a/2", 2, scan_cb, &acc, &err);
	T_CHECK(n == 2, "n=%ld", n);
	T_STREQ(acc.seen[0], "a/3");
	T_STREQ(acc.seen[1], "a/4");
	memset(&acc, 0, sizeof(acc));
	n = store_scan(st, STORE_CERTS, "a/", "a/4", 2, scan_cb, &acc, &err);
	T_CHECK(n == 1, "n=%ld", n);
	T_STREQ(acc.seen[0], "a/5");
	memset(&acc, 0, sizeof(acc));
	n = store_scan(st, STORE_CERTS, "a/", "a/5", 2, scan_cb, &acc, &err);
	T_CHECK(n == 0 && acc.n == 0, "n=%ld", n);
	/* after that is not itself a key. */
	memset(&acc, 0, sizeof(acc));
	n = store_scan(st, STORE_CERTS, "a/", "a/25", 0, scan_cb, &acc, &err);
	T_CHECK(n == 3, "n=%ld", n);
	T_STREQ(acc.seen[0], "a/3");
	/* after before the prefix range: the whole range. */
	memset(&acc, 0, sizeof(acc));
	n = store_scan(st, STORE_CERTS, "a/", "0", 0, scan_cb, &acc, &err);
	T_CHECK(n == 5, "n=%ld", n);
	/* after past the prefix range: nothing. */
	memset(&acc, 0, sizeof(acc));
	n = store_scan(st, STORE_CERTS, "a/", "b", 0, scan_cb, &acc, &err);
	T_CHECK(n == 0, "n=%ld", n);
	/* after without a prefix. */
	memset(&acc, 0, sizeof(acc));
	n = store_scan(st, STORE_CERTS, "", "ab", 0, scan_cb, &acc, &err);
	T_CHECK(n == 2, "n=%ld", n);
	T_STREQ(acc.seen[0], "b/1");
	/* No match. */
	memset(&acc, 0, sizeof(acc));
	n = store_scan(st, STORE_CERTS, "zz", NULL, 0, scan_cb, &acc, &err);
	T_CHECK(n == 0, "n=%ld", n);
	T_OK(!sg_err_isset(&err));

	/* Callback stops: the entry it stopped on counts. */
	memset(&acc, 0, sizeof(acc));
	acc.stop_at = 3;
	acc.stop_rc = 1;
	n = store_scan(st, STORE_CERTS, NULL, NULL, 0, scan_cb, &acc, &err);
	T_CHECK(n == 3 && acc.n == 3, "n=%ld", n);

	/* Callback aborts with its own error, which wins. */
	memset(&acc, 0, sizeof(acc));
	acc.stop_at = 2;
	acc.stop_rc = -1;
	acc.err = &err;
	n = store_scan(st, STORE_CERTS, NULL, NULL, 0, scan_cb, &acc, &err);
	T_CHECK(n == -1 && err.code == SG_NOT_FOUND, "n=%ld code=%s", n, sg_err_name(err.code));
	/* Callback aborts without filling err: the store does. */
	sg_err_init(&err);
	memset(&acc, 0, sizeof(acc));
	acc.stop_at = 1;
	acc.stop_rc = -1;
	n = store_scan(st, STORE_CERTS, NULL, NULL, 0, scan_cb, &acc, &err);
	T_CHECK(n == -1 && err.code == SG_INTERNAL, "n=%ld code=%s", n, sg_err_name(err.code));

	/* Empty table. */
	sg_err_init(&err);
	memset(&acc, 0, sizeof(acc));
	T_OK(store_scan(st, STORE_REVOKED, NULL, NULL, 0, scan_cb, &acc, &err) == 0);
	/* Over-long bound. */
	{
		char lng[STORE_MAX_KEY + 2];

		memset(lng, 'a', sizeof(lng));
		lng[sizeof(lng) - 1] = '\0';
		sg_err_init(&err);
		T_OK(store_scan(st, STORE_CERTS, lng, NULL, 0, scan_cb, &acc, &err) == -1 &&
		     err.code == SG_BAD_REQUEST);
	}

	store_close(st);
	tmpdir_free(dir);
}

static void test_incr(void)
{
	char *dir = tmpdir_new();
	struct store *st = open_ok(dir, 0);
	struct store_batch *b;
	struct sg_err err;
	uint64_t v1 = 0, v2 = 0, v3 = 0;
	unsigned char max[8];

	sg_err_init(&err);
	for (uint64_t i = 1; i <= 3; i++) {
		b = store_batch_new();
		store_batch_incr(b, STORE_META, "serial", 1, &v1);
		T_OK(store_commit(st, b, &err) == 0 && v1 == i);
		store_batch_free(b);
	}
	/* Two increments of one counter in one batch, plus another counter. */
	b = store_batch_new();
	store_batch_incr(b, STORE_META, "serial", 5, &v1);
	store_batch_incr(b, STORE_META, "serial", 10, &v2);
	store_batch_incr(b, STORE_META, "other", 0, &v3);
	T_OK(store_commit(st, b, &err) == 0);
	T_CHECK(v1 == 8 && v2 == 18 && v3 == 0, "v1=%" PRIu64 " v2=%" PRIu64, v1, v2);
	store_batch_free(b);
	store_close(st);

	/* After reopen the counter continues; its encoding is little-endian. */
	st = open_ok(dir, 0);
	b = store_batch_new();
	store_batch_incr(b, STORE_META, "serial", 1, &v1);
	T_OK(store_commit(st, b, &err) == 0 && v1 == 19);
	store_batch_free(b);
	{
		unsigned char *v = NULL;
		size_t len = 0;

		T_OK(store_get(st, STORE_META, "serial", 6, &v, &len, &err) == 1 && len == 8 && v[0] == 19 &&
		     v[1] == 0 && v[7] == 0);
		free(v);
	}

	/* A counter of the wrong size fails its batch. */
	T_OK(put1(st, STORE_META, "bad", "abc", &err) == 0);
	v1 = 777;
	b = store_batch_new();
	store_batch_incr(b, STORE_META, "bad", 1, &v1);
	T_OK(store_commit(st, b, &err) == -1 && err.code == SG_STORAGE && v1 == 777);
	store_batch_free(b);

	/* Overflow fails; the counter keeps its value. */
	memset(max, 0xff, sizeof(max));
	sg_err_init(&err);
	b = store_batch_new();
	store_batch_put(b, STORE_META, "max", 3, max, 8);
	T_OK(store_commit(st, b, &err) == 0);
	store_batch_free(b);
	b = store_batch_new();
	store_batch_incr(b, STORE_META, "max", 1, &v1);
	T_OK(store_commit(st, b, &err) == -1 && err.code == SG_INTERNAL && v1 == 777);
	store_batch_free(b);

	store_close(st);
	tmpdir_free(dir);
}

#define CONC_THREADS 16
#define CONC_COMMITS 200

struct conc_arg {
	struct store *st;
	int id;
	int failures;
};

static void *conc_thread(void *arg)
{
	struct conc_arg *a = arg;

	for (int i = 0; i < CONC_COMMITS; i++) {
		char key[32], val[32];
		struct sg_err err;

		snprintf(key, sizeof(key), "t%02d/%04d", a->id, i);
		snprintf(val, sizeof(val), "v%d.%d", a->id, i);
		sg_err_init(&err);
		if (put1(a->st, STORE_CERTS, key, val, &err) != 0)
			a->failures++;
	}
	return NULL;
}

static atomic_int readers_stop;

struct reader_arg {
	struct store *st;
	long reads;
	int errors;
};

static int count_cb(void *arg, const char *key, size_t klen, const void *val, size_t vlen)
{
	(void)key;
	(void)klen;
	(void)val;
	(void)vlen;
	(*(long *)arg)++;
	return 0;
}

/* Reads concurrently with the writers: values are always whole, scans always sorted. */
static void *reader_thread(void *arg)
{
	struct reader_arg *a = arg;

	while (!atomic_load(&readers_stop)) {
		struct sg_err err;
		unsigned char *v = NULL;
		size_t len;
		long seen = 0;
		int rc;

		sg_err_init(&err);
		rc = store_get(a->st, STORE_CERTS, "t03/0010", 8, &v, &len, &err);
		if (rc < 0 || (rc == 1 && (len != 5 || memcmp(v, "v3.10", 5) != 0)))
			a->errors++;
		free(v);
		if (store_scan(a->st, STORE_CERTS, "t05/", NULL, 50, count_cb, &seen, &err) < 0 || seen > 50)
			a->errors++;
		a->reads++;
	}
	return NULL;
}

static void test_concurrent(void)
{
	char *dir = tmpdir_new();
	struct store *st = open_ok(dir, 0);
	pthread_t th[CONC_THREADS], rth[2];
	struct conc_arg args[CONC_THREADS];
	struct reader_arg rargs[2];
	struct sg_err err;
	uint64_t commits, batches, n = 0;
	int failures = 0, missing = 0;

	atomic_store(&readers_stop, 0);
	for (int i = 0; i < 2; i++) {
		rargs[i] = (struct reader_arg){.st = st};
		pthread_create(&rth[i], NULL, reader_thread, &rargs[i]);
	}
	for (int i = 0; i < CONC_THREADS; i++) {
		args[i] = (struct conc_arg){.st = st, .id = i};
		pthread_create(&th[i], NULL, conc_thread, &args[i]);
	}
	for (int i = 0; i < CONC_THREADS; i++) {
		pthread_join(th[i], NULL);
		failures += args[i].failures;
	}
	atomic_store(&readers_stop, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(rth[i], NULL);
	store_stats(st, &commits, &batches);
	T_CHECK(failures == 0, "%d failed commits", failures);
	T_CHECK(rargs[0].errors == 0 && rargs[1].errors == 0, "reader errors %d %d", rargs[0].errors,
	        rargs[1].errors);
	T_CHECK(batches == CONC_THREADS * CONC_COMMITS, "batches=%" PRIu64, batches);
	T_CHECK(commits < batches, "commits=%" PRIu64 " batches=%" PRIu64 ": no grouping", commits, batches);
	printf("concurrent: %d threads x %d commits: %" PRIu64 " batches in %" PRIu64
	       " commits; %ld concurrent reads\n",
	       CONC_THREADS, CONC_COMMITS, batches, commits, rargs[0].reads + rargs[1].reads);
	store_close(st);

	/* Every acknowledged batch survives a reopen. */
	st = open_ok(dir, 0);
	sg_err_init(&err);
	T_OK(store_count(st, STORE_CERTS, &n, &err) == 0 && n == CONC_THREADS * CONC_COMMITS);
	for (int t = 0; t < CONC_THREADS; t++) {
		for (int i = 0; i < CONC_COMMITS; i++) {
			char key[32], val[32];

			snprintf(key, sizeof(key), "t%02d/%04d", t, i);
			snprintf(val, sizeof(val), "v%d.%d", t, i);
			if (get_is(st, STORE_CERTS, key, val) != 1)
				missing++;
		}
	}
	T_CHECK(missing == 0, "%d keys missing after reopen", missing);
	store_close(st);
	tmpdir_free(dir);
}

static void test_lock_and_corrupt(void)
{
	char *dir = tmpdir_new();
	char *dir2 = tmpdir_new();
	char *data = sg_xasprintf("%s/data.mdb", dir2);
	struct store *st = open_ok(dir, 0), *st2 = NULL;
	struct sg_err err;
	unsigned char junk[16384];
	FILE *f;

	/* A second handle on the same directory is refused, and works after close. */
	sg_err_init(&err);
	T_OK(store_open(dir, 0, &st2, &err) == -1 && err.code == SG_STORAGE && st2 == NULL);
	T_CHECK(strstr(err.detail, "locked") != NULL, "%s", err.detail);
	store_close(st);
	st = open_ok(dir, 0);
	store_close(st);

	/* A data file that is not an LMDB environment. */
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (unsigned char)(i * 131 + 7);
	f = fopen(data, "wb");
	T_OK(f != NULL && fwrite(junk, 1, sizeof(junk), f) == sizeof(junk));
	if (f != NULL)
		fclose(f);
	sg_err_init(&err);
	st2 = NULL;
	T_OK(store_open(dir2, 0, &st2, &err) == -1 && err.code == SG_STORAGE && st2 == NULL);
	T_CHECK(strstr(err.detail, "MDB_INVALID") != NULL, "%s", err.detail);

	/* A path that is a file, not a directory. */
	sg_err_init(&err);
	T_OK(store_open(data, 0, &st2, &err) == -1 && err.code == SG_STORAGE);

	free(data);
	tmpdir_free(dir);
	tmpdir_free(dir2);
}

static void test_map_full(void)
{
	char *dir = tmpdir_new();
	struct store *st = open_ok(dir, (size_t)1 << 20);
	unsigned char val[64 * 1024];
	struct sg_err err;
	int i, rc = 0;

	memset(val, 'x', sizeof(val));
	sg_err_init(&err);
	for (i = 0; i < 64 && rc == 0; i++) {
		struct store_batch *b = store_batch_new();
		char key[16];

		snprintf(key, sizeof(key), "k%03d", i);
		store_batch_put(b, STORE_CERTS, key, strlen(key), val, sizeof(val));
		rc = store_commit(st, b, &err);
		store_batch_free(b);
	}
	T_CHECK(rc == -1 && err.code == SG_STORAGE && strstr(err.detail, "MDB_MAP_FULL") != NULL,
	        "after %d puts: rc=%d %s", i, rc, err.detail);
	T_OK(i > 2);
	/* Reads still work, and a small write in a group with a big one still commits. */
	T_OK(store_get(st, STORE_CERTS, "k000", 4, NULL, NULL, &err) == 1);
	{
		struct committer big = {.st = st}, small = {.st = st};
		pthread_t tb, ts;

		big.b = store_batch_new();
		store_batch_put(big.b, STORE_CERTS, "huge", 4, val, sizeof(val));
		store_batch_put(big.b, STORE_CERTS, "huge2", 5, val, sizeof(val));
		small.b = store_batch_new();
		store_batch_del(small.b, STORE_CERTS, "k001", 4);
		store_writer_hold(st, 1);
		pthread_create(&tb, NULL, commit_thread, &big);
		pthread_create(&ts, NULL, commit_thread, &small);
		wait_queued(st, 2);
		store_writer_hold(st, 0);
		pthread_join(tb, NULL);
		pthread_join(ts, NULL);
		T_CHECK(big.rc == -1 && big.err.code == SG_STORAGE, "big rc=%d %s", big.rc, big.err.detail);
		T_CHECK(small.rc == 0, "small: %s", small.err.detail);
		store_batch_free(big.b);
		store_batch_free(small.b);
	}
	T_OK(store_get(st, STORE_CERTS, "k001", 4, NULL, NULL, &err) == 0);
	store_close(st);

	/* Reopening with a larger map makes room again. */
	st = open_ok(dir, 0);
	sg_err_init(&err);
	T_OK(store_get(st, STORE_CERTS, "k000", 4, NULL, NULL, &err) == 1);
	{
		struct store_batch *b = store_batch_new();

		store_batch_put(b, STORE_CERTS, "huge", 4, val, sizeof(val));
		T_OK(store_commit(st, b, &err) == 0);
		store_batch_free(b);
	}
	store_close(st);
	tmpdir_free(dir);
}

/* ---- Crash durability: acknowledged commits survive SIGKILL ---- */

#define CRASH_THREADS 4

struct crash_arg {
	struct store *st;
	int fd;
	uint32_t id;
};

static void *crash_writer(void *arg)
{
	struct crash_arg *a = arg;

	for (uint32_t i = 0;; i++) {
		char key[32];
		struct sg_err err;
		uint32_t ack = (a->id << 24) | i;

		snprintf(key, sizeof(key), "c%u/%08u", a->id, i);
		sg_err_init(&err);
		if (put1(a->st, STORE_CERTS, key, key, &err) != 0)
			_exit(3);
		/* Acknowledge only after store_commit returned: 4 bytes, atomic on a pipe. */
		if (write(a->fd, &ack, sizeof(ack)) != (ssize_t)sizeof(ack))
			_exit(4);
	}
	return NULL;
}

static void crash_child(const char *dir, int fd)
{
	struct store *st = NULL;
	struct sg_err err;
	struct crash_arg args[CRASH_THREADS];
	pthread_t th[CRASH_THREADS];

	sg_err_init(&err);
	if (store_open(dir, 0, &st, &err) != 0)
		_exit(2);
	for (uint32_t i = 0; i < CRASH_THREADS; i++) {
		args[i] = (struct crash_arg){.st = st, .fd = fd, .id = i};
		pthread_create(&th[i], NULL, crash_writer, &args[i]);
	}
	for (;;)
		pause();
}

static void test_crash_once(int round)
{
	char *dir = tmpdir_new();
	int fds[2];
	pid_t pid;
	uint32_t *acks = NULL;
	size_t nacks = 0, cap = 0, have = 0;
	unsigned char buf[4096];
	double deadline;
	int status = 0, missing = 0;
	bool killed = false;
	struct store *st;
	struct sg_err err;

	if (pipe(fds) != 0) {
		perror("pipe");
		exit(2);
	}
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		crash_child(dir, fds[1]);
	}
	close(fds[1]);
	deadline = now_sec() + 0.3;
	for (;;) {
		struct pollfd p = {.fd = fds[0], .events = POLLIN};
		double left = deadline - now_sec();
		ssize_t r;

		if (!killed && left <= 0) {
			kill(pid, SIGKILL);
			killed = true;
		}
		if (poll(&p, 1, killed ? -1 : (int)(left * 1000) + 1) < 0 && errno != EINTR)
			break;
		if (!(p.revents & (POLLIN | POLLHUP)))
			continue;
		r = read(fds[0], buf + have, sizeof(buf) - have);
		if (r <= 0)
			break; /* EOF: the child is gone */
		have += (size_t)r;
		for (size_t off = 0; off + 4 <= have; off += 4) {
			if (nacks == cap) {
				cap = cap ? cap * 2 : 1024;
				acks = sg_xrealloc(acks, cap * sizeof(*acks));
			}
			memcpy(&acks[nacks++], buf + off, 4);
		}
		memmove(buf, buf + have - have % 4, have % 4);
		have %= 4;
	}
	close(fds[0]);
	waitpid(pid, &status, 0);
	T_CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "round %d: child status %d", round, status);
	T_CHECK(nacks > 0, "round %d: no acknowledged commits", round);

	/* The environment opens cleanly and holds every acknowledged key. */
	sg_err_init(&err);
	st = NULL;
	T_CHECK(store_open(dir, 0, &st, &err) == 0, "round %d: reopen: %s", round, err.detail);
	if (st != NULL) {
		for (size_t i = 0; i < nacks; i++) {
			char key[32];

			snprintf(key, sizeof(key), "c%u/%08u", acks[i] >> 24, acks[i] & 0xffffff);
			if (get_is(st, STORE_CERTS, key, key) != 1)
				missing++;
		}
		T_CHECK(missing == 0, "round %d: %d of %zu acknowledged keys lost", round, missing, nacks);
		/* And takes new writes. */
		T_OK(put1(st, STORE_CERTS, "after-crash", "ok", &err) == 0);
		printf("crash round %d: %zu acknowledged commits before SIGKILL, all present\n", round, nacks);
		store_close(st);
	}
	free(acks);
	tmpdir_free(dir);
}

static void test_crash(void)
{
	for (int round = 1; round <= 3; round++)
		test_crash_once(round);
}

/* ---- Throughput printout (not asserted) ---- */

#define BENCH_MAX_THREADS 64
#define BENCH_VALUE 1500
#if defined(__SANITIZE_ADDRESS__)
#define BENCH_COMMITS 40 /* ASan makes LMDB's per-transaction allocations slow */
#define BENCH_READS 20000
#else
#define BENCH_COMMITS 200
#define BENCH_READS 500000
#endif

struct bench_arg {
	struct store *st;
	int id;
	int failures;
};

static void *bench_thread(void *arg)
{
	struct bench_arg *a = arg;
	unsigned char val[BENCH_VALUE];

	memset(val, 'c', sizeof(val));
	for (int i = 0; i < BENCH_COMMITS; i++) {
		struct store_batch *b = store_batch_new();
		struct sg_err err;
		char key[32];

		snprintf(key, sizeof(key), "bench/%02d/%06d", a->id, i);
		store_batch_put(b, STORE_CERTS, key, strlen(key), val, sizeof(val));
		sg_err_init(&err);
		if (store_commit(a->st, b, &err) != 0)
			a->failures++;
		store_batch_free(b);
	}
	return NULL;
}

static void bench_commits(struct store *st, int nthreads)
{
	pthread_t th[BENCH_MAX_THREADS];
	struct bench_arg args[BENCH_MAX_THREADS];
	uint64_t c0, b0, c1, b1;
	double t0, dt;
	int failures = 0;

	store_stats(st, &c0, &b0);
	t0 = now_sec();
	for (int i = 0; i < nthreads; i++) {
		args[i] = (struct bench_arg){.st = st, .id = i};
		pthread_create(&th[i], NULL, bench_thread, &args[i]);
	}
	for (int i = 0; i < nthreads; i++) {
		pthread_join(th[i], NULL);
		failures += args[i].failures;
	}
	dt = now_sec() - t0;
	store_stats(st, &c1, &b1);
	T_OK(failures == 0);
	T_OK(b1 - b0 == (uint64_t)nthreads * BENCH_COMMITS);
	printf("throughput: %2d committers x %d batches of %d B: %6.0f commits/s, %6.0f batches/s "
	       "(%.1f batches per commit, %.2f s)\n",
	       nthreads, BENCH_COMMITS, BENCH_VALUE, (double)(c1 - c0) / dt, (double)(b1 - b0) / dt,
	       (double)(b1 - b0) / (double)(c1 - c0), dt);
}

static void bench_reads(struct store *st)
{
	struct sg_err err;
	double t0, dt;
	int found = 0;

	sg_err_init(&err);
	t0 = now_sec();
	for (int i = 0; i < BENCH_READS; i++) {
		unsigned char *v = NULL;
		size_t len;
		char key[32];

		snprintf(key, sizeof(key), "bench/%02d/%06d", i % BENCH_MAX_THREADS, i % BENCH_COMMITS);
		found += store_get(st, STORE_CERTS, key, strlen(key), &v, &len, &err) == 1;
		free(v);
	}
	dt = now_sec() - t0;
	T_OK(found == BENCH_READS);
	printf("reads: %d gets of %d B values from one thread: %.0f ns per get\n", BENCH_READS, BENCH_VALUE,
	       dt / BENCH_READS * 1e9);
}

static void test_throughput(void)
{
	char *dir = tmpdir_new();
	struct store *st = open_ok(dir, 0);

	bench_commits(st, 1);
	bench_commits(st, BENCH_MAX_THREADS);
	bench_reads(st);
	store_close(st);
	tmpdir_free(dir);
}

int main(void)
{
	test_open_modes();
	test_roundtrip();
	test_caps();
	test_conflict_in_group();
	test_del_prefix();
	test_scan();
	test_incr();
	test_concurrent();
	test_lock_and_corrupt();
	test_map_full();
	test_crash();
	test_throughput();
	return t_done();
}
