/*
 * auth/token: presented-token parsing, policy sanitising, the keyed-hash
 * store (nothing stored in clear, other KEK knows nothing), creation rules
 * (policy subset, default policy, root only from root, use-limited
 * parents, caps on meta/CIDRs/names), TTL arithmetic (system max,
 * explicit max, period, role max), expiry, use counts, CIDR binding,
 * renewals, revocation of trees and orphaning, the lease cascade through a
 * real lease manager, the sweeper, concurrent child creation against a
 * revocation, and Vault's JSON shapes.
 */
#include "auth/token.h"
#include "tests/unit/t.h"

#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static struct store *g_st;
static struct lease_mgr *g_leases;
static struct auth_tokens *g_ts;
static char *g_dir;

/* ---- fixtures ---- */

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

struct count_kind {
	size_t revoked;
};

static int count_revoke(void *arg, struct lease *leases, size_t n, struct store_batch *b, struct sg_err *err)
{
	struct count_kind *k = arg;

	(void)leases;
	(void)b;
	(void)err;
	k->revoked += n;
	return 0;
}

static struct count_kind g_kind_state;

static void setup(void)
{
	char tmpl[] = "/tmp/sigil-token-XXXXXX";
	unsigned char kek[32];
	struct sg_err err;
	static const struct lease_kind kind = {"test-cert", count_revoke, NULL, &g_kind_state};

	sg_err_init(&err);
	if (mkdtemp(tmpl) == NULL) {
		perror("mkdtemp");
		exit(2);
	}
	g_dir = sg_xstrdup(tmpl);
	memset(kek, 7, sizeof(kek));
	if (store_open(g_dir, 0, &g_st, &err) != 0 || lease_mgr_new(g_st, &g_leases, &err) != 0 ||
	    auth_tokens_new(g_st, g_leases, kek, &g_ts, &err) != 0) {
		fprintf(stderr, "setup: %s\n", err.detail);
		exit(2);
	}
	lease_kind_register(g_leases, &kind);
}

static void teardown(void)
{
	auth_tokens_free(g_ts);
	lease_mgr_free(g_leases);
	store_close(g_st);
	nftw(g_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(g_dir);
}

/* A root token "root-<n>" for the tests' parents. */
static void make_root(const char *id, struct auth_token *out)
{
	struct sg_err err;

	sg_err_init(&err);
	T_CHECK(auth_token_create_root(g_ts, id, out, &err) == 0, "%s", err.detail);
}

/* Creates a token from params; returns the rc and fills tok/out. */
static int make(const struct auth_token_params *p, const struct auth_token *parent, char tok[AUTH_TOKEN_STR_MAX],
                struct auth_token *out, struct sg_err *err)
{
	sg_err_init(err);
	return auth_token_create(g_ts, p, parent, tok, AUTH_TOKEN_STR_MAX, out, err);
}

/* t expires `ttl` seconds after some moment in [since, now]: renewals race the clock's second. */
static bool expires_in(const struct auth_token *t, int64_t since, int64_t ttl)
{
	return t->expire_time >= since + ttl && t->expire_time <= sg_now() + ttl;
}

static int live(const char *tok)
{
	struct auth_token t;
	struct sg_err err;
	int got;

	sg_err_init(&err);
	got = auth_token_lookup(g_ts, tok, &t, &err);
	auth_token_clear(&t);
	return got;
}

static int live_accessor(const char *acc)
{
	struct auth_token t;
	struct sg_err err;
	int got;

	sg_err_init(&err);
	got = auth_token_lookup_accessor(g_ts, acc, &t, &err);
	auth_token_clear(&t);
	return got;
}

/* ---- pure functions ---- */

static void test_headers(void)
{
	char longtok[AUTH_TOKEN_MAX_BYTES + 2];

	T_STREQ(auth_token_from_headers("abc", "Bearer xyz"), "abc");
	T_STREQ(auth_token_from_headers(NULL, "Bearer xyz"), "xyz");
	T_STREQ(auth_token_from_headers("", "bearer  xyz"), "xyz");
	T_OK(auth_token_from_headers(NULL, "Basic eHl6") == NULL);
	T_OK(auth_token_from_headers(NULL, "Bearer ") == NULL);
	T_OK(auth_token_from_headers(NULL, NULL) == NULL);
	memset(longtok, 'a', sizeof(longtok) - 1);
	longtok[sizeof(longtok) - 1] = '\0';
	T_OK(auth_token_from_headers(longtok, NULL) == NULL);
	longtok[AUTH_TOKEN_MAX_BYTES] = '\0';
	T_OK(auth_token_from_headers(longtok, NULL) == longtok);
}

static void test_generate(void)
{
	char a[AUTH_TOKEN_STR_MAX], b[AUTH_TOKEN_STR_MAX];

	auth_token_generate(a, sizeof(a));
	auth_token_generate(b, sizeof(b));
	T_OK(strncmp(a, "hvs.", 4) == 0 && strlen(a) == 4 + AUTH_TOKEN_RANDOM_LEN);
	T_OK(strcmp(a, b) != 0);
	for (size_t i = 4; i < strlen(a); i++)
		T_CHECK((a[i] >= '0' && a[i] <= '9') || (a[i] >= 'a' && a[i] <= 'z') || (a[i] >= 'A' && a[i] <= 'Z'),
		        "char %zu of %s", i, a);
}

static void test_sanitize(void)
{
	struct sg_strlist l = {0};
	struct sg_err err;

	sg_err_init(&err);
	sg_strlist_add(&l, " Web ");
	sg_strlist_add(&l, "ops");
	sg_strlist_add(&l, "web");
	sg_strlist_add(&l, "");
	T_OK(auth_token_policies_sanitize(&l, true, &err) == 0);
	T_OK(l.n == 3);
	T_STREQ(l.v[0], "default");
	T_STREQ(l.v[1], "ops");
	T_STREQ(l.v[2], "web");
	T_OK(auth_token_policies_sanitize(&l, false, &err) == 0 && l.n == 3); /* default stays once present */

	sg_strlist_add(&l, "ROOT");
	T_OK(auth_token_policies_sanitize(&l, true, &err) == 0);
	T_OK(l.n == 1);
	T_STREQ(l.v[0], "root"); /* root alone, no default */
	sg_strlist_clear(&l);

	sg_strlist_add(&l, "bad/name");
	T_OK(auth_token_policies_sanitize(&l, false, &err) == -1 && err.code == SG_BAD_REQUEST);
	T_OK(strstr(err.detail, "invalid character") != NULL);
	sg_strlist_clear(&l);

	sg_err_init(&err);
	for (int i = 0; i <= AUTH_MAX_POLICIES; i++) {
		char n[16];

		snprintf(n, sizeof(n), "p%d", i);
		sg_strlist_add(&l, n);
	}
	T_OK(auth_token_policies_sanitize(&l, false, &err) == -1 && strstr(err.detail, "too many") != NULL);
	sg_strlist_clear(&l);

	sg_err_init(&err);
	{
		char big[AUTH_POLICY_NAME_MAX + 2];

		memset(big, 'x', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		sg_strlist_add(&l, big);
		T_OK(auth_token_policies_sanitize(&l, false, &err) == -1 && strstr(err.detail, "too long") != NULL);
	}
	sg_strlist_clear(&l);
}

/* ---- storage ---- */

struct find_arg {
	const char *needle;
	int found;
};

static int find_cb(void *arg, const char *key, size_t klen, const void *val, size_t vlen)
{
	struct find_arg *f = arg;
	size_t n = strlen(f->needle);

	if ((klen >= n && memmem(key, klen, f->needle, n) != NULL) || (vlen >= n && memmem(val, vlen, f->needle, n)))
		f->found++;
	return 0;
}

static void test_root_and_hashing(void)
{
	struct auth_token r, again, t;
	struct auth_tokens *other = NULL;
	unsigned char kek2[32];
	struct find_arg f = {"sekrit-root-id", 0};
	struct sg_err err;

	sg_err_init(&err);
	make_root("sekrit-root-id", &r);
	T_OK(auth_token_is_root(&r));
	T_OK(strlen(r.accessor) == AUTH_ACCESSOR_LEN && strlen(r.hash) == AUTH_TOKEN_HASH_HEX);
	T_OK(r.expire_time == 0 && !r.renewable && r.orphan);
	T_STREQ(r.display_name, "root");

	/* The same id again keeps the same record (dev restarts). */
	make_root("sekrit-root-id", &again);
	T_STREQ(again.accessor, r.accessor);
	auth_token_clear(&again);

	T_OK(auth_token_authenticate(g_ts, "sekrit-root-id", "127.0.0.1:1", &t, &err) == 1);
	T_STREQ(t.accessor, r.accessor);
	auth_token_clear(&t);
	T_OK(auth_token_authenticate(g_ts, "sekrit-root-iD", "127.0.0.1:1", &t, &err) == 0);
	T_OK(auth_token_authenticate(g_ts, "", "127.0.0.1:1", &t, &err) == 0);
	T_OK(auth_token_lookup_hash(g_ts, r.hash, &t, &err) == 1);
	auth_token_clear(&t);
	T_OK(auth_token_lookup_hash(g_ts, "../etc", &t, &err) == 0);
	T_OK(auth_token_lookup_accessor(g_ts, "../../x", &t, &err) == 0);
	T_OK(!sg_err_isset(&err));

	/* Nothing in the store holds the token itself. */
	T_OK(store_scan(g_st, STORE_AUTH, NULL, NULL, 0, find_cb, &f, &err) >= 0);
	T_OK(f.found == 0);

	/* A store read with another KEK recognises no token. */
	memset(kek2, 8, sizeof(kek2));
	T_OK(auth_tokens_new(g_st, NULL, kek2, &other, &err) == 0);
	T_OK(auth_token_lookup(other, "sekrit-root-id", &t, &err) == 0);
	auth_tokens_free(other);

	T_OK(auth_token_create_root(g_ts, "has space", &t, &err) == -1 && err.code == SG_BAD_REQUEST);
	auth_token_clear(&r);
}

static void test_create_rules(void)
{
	struct auth_token root, a, b, t;
	struct auth_token_params p;
	char tok[AUTH_TOKEN_STR_MAX], atok[AUTH_TOKEN_STR_MAX];
	struct sg_err err;

	make_root("root-create", &root);

	/* Root parent, explicit policies: default added, sorted. */
	auth_token_params_init(&p);
	sg_strlist_add(&p.policies, "web");
	sg_strlist_add(&p.policies, "ops");
	T_CHECK(make(&p, &root, atok, &a, &err) == 0, "%s", err.detail);
	T_OK(a.policies.n == 3);
	T_STREQ(a.policies.v[0], "default");
	T_STREQ(a.policies.v[2], "web");
	T_STREQ(a.parent, root.accessor);
	T_OK(!a.orphan && a.renewable);
	T_STREQ(a.display_name, "token");
	T_STREQ(a.path, "auth/token/create");
	T_OK(a.creation_ttl == AUTH_SYSTEM_DEFAULT_TTL && a.expire_time == a.creation_time + a.creation_ttl);
	T_OK(strncmp(atok, "hvs.", 4) == 0);
	T_OK(live(atok) == 1);
	auth_token_params_clear(&p);

	/* Non-root parent: a policy it lacks is refused with Vault's words. */
	auth_token_params_init(&p);
	sg_strlist_add(&p.policies, "admin");
	T_OK(make(&p, &a, tok, &t, &err) == -1 && err.code == SG_BAD_REQUEST);
	T_STREQ(err.detail, "child policies must be subset of parent");
	T_OK(tok[0] == '\0');
	auth_token_params_clear(&p);

	/* A subset is fine; default comes along because the parent has it. */
	auth_token_params_init(&p);
	sg_strlist_add(&p.policies, "Web");
	T_CHECK(make(&p, &a, tok, &b, &err) == 0, "%s", err.detail);
	T_OK(b.policies.n == 2 && sg_strlist_has(&b.policies, "web") && sg_strlist_has(&b.policies, "default"));
	auth_token_clear(&b);
	p.no_default_policy = true;
	T_OK(make(&p, &a, tok, &b, &err) == 0 && b.policies.n == 1);
	auth_token_clear(&b);
	auth_token_params_clear(&p);

	/* No policies: the parent's. */
	auth_token_params_init(&p);
	T_OK(make(&p, &a, tok, &b, &err) == 0 && b.policies.n == 3);
	auth_token_clear(&b);
	/* sudo lifts the subset rule, never the root rule. */
	sg_strlist_add(&p.policies, "admin");
	p.sudo = true;
	T_OK(make(&p, &a, tok, &b, &err) == 0 && sg_strlist_has(&b.policies, "admin"));
	auth_token_clear(&b);
	sg_strlist_add(&p.policies, "root");
	T_OK(make(&p, &a, tok, &b, &err) == -1);
	T_STREQ(err.detail, "root tokens may not be created without parent token being root");
	auth_token_params_clear(&p);

	/* A login (no parent) can never make a root token. */
	auth_token_params_init(&p);
	sg_strlist_add(&p.policies, "root");
	T_OK(make(&p, NULL, tok, &b, &err) == -1);
	T_STREQ(err.detail, "auth methods cannot create root tokens");
	auth_token_params_clear(&p);

	/* Bad values. */
	auth_token_params_init(&p);
	p.num_uses = -1;
	T_OK(make(&p, &root, tok, &b, &err) == -1);
	T_STREQ(err.detail, "number of uses cannot be negative");
	p.num_uses = 0;
	p.ttl = -5;
	T_OK(make(&p, &root, tok, &b, &err) == -1);
	T_STREQ(err.detail, "ttl must be positive");
	p.ttl = 0;
	sg_strlist_add(&p.bound_cidrs, "10.0.0.0/33");
	T_OK(make(&p, &root, tok, &b, &err) == -1 && strstr(err.detail, "CIDR") != NULL);
	sg_strlist_clear(&p.bound_cidrs);
	p.meta = json_pack("{s:i}", "n", 1);
	T_OK(make(&p, &root, tok, &b, &err) == -1 && strstr(err.detail, "must be a string") != NULL);
	json_decref(p.meta);
	p.meta = json_object();
	for (int i = 0; i <= AUTH_META_MAX; i++) {
		char k[16];

		snprintf(k, sizeof(k), "k%d", i);
		json_object_set_new(p.meta, k, json_string("v"));
	}
	T_OK(make(&p, &root, tok, &b, &err) == -1 && strstr(err.detail, "too many meta") != NULL);
	json_decref(p.meta);
	p.meta = json_pack("{s:s}", "team", "pki");
	T_OK(make(&p, &root, tok, &b, &err) == 0);
	T_STREQ(json_string_value(json_object_get(b.meta, "team")), "pki");
	json_decref(p.meta);
	p.meta = NULL;
	auth_token_clear(&b);
	auth_token_params_clear(&p);

	/* Orphans have no parent link; children of a revoked parent cannot be made. */
	auth_token_params_init(&p);
	p.orphan = true;
	T_OK(make(&p, &a, tok, &b, &err) == 0 && b.orphan && b.parent[0] == '\0');
	auth_token_clear(&b);
	auth_token_params_clear(&p);

	T_OK(auth_token_revoke(g_ts, &a, false, &err) == 0);
	auth_token_params_init(&p);
	T_OK(make(&p, &a, tok, &b, &err) == -1);
	T_STREQ(err.detail, "parent token lookup failed: no parent found");
	auth_token_params_clear(&p);

	auth_token_clear(&a);
	auth_token_clear(&root);
}

static void test_ttls(void)
{
	struct auth_token root, t;
	struct auth_token_params p;
	char tok[AUTH_TOKEN_STR_MAX];
	struct sg_err err;

	make_root("root-ttl", &root);
	auth_token_params_init(&p);
	p.ttl = 3600;
	T_OK(make(&p, &root, tok, &t, &err) == 0 && t.creation_ttl == 3600);
	auth_token_clear(&t);

	/* ttl above the system max is capped at it. */
	p.ttl = AUTH_SYSTEM_MAX_TTL * 2;
	T_OK(make(&p, &root, tok, &t, &err) == 0 && t.creation_ttl == AUTH_SYSTEM_MAX_TTL);
	auth_token_clear(&t);

	/* explicit_max_ttl and a role's max_ttl both bound it. */
	p.ttl = 7200;
	p.explicit_max_ttl = 600;
	T_OK(make(&p, &root, tok, &t, &err) == 0 && t.creation_ttl == 600);
	auth_token_clear(&t);
	p.explicit_max_ttl = 0;
	p.max_ttl = 900;
	T_OK(make(&p, &root, tok, &t, &err) == 0 && t.creation_ttl == 900 && t.max_ttl == 900);
	auth_token_clear(&t);

	/* Periodic: the period is the TTL. */
	p.max_ttl = 0;
	p.ttl = 0;
	p.period = 120;
	T_OK(make(&p, &root, tok, &t, &err) == 0 && t.creation_ttl == 120 && t.period == 120);
	auth_token_clear(&t);

	/* A root token may ask for no expiry; its children may not when it expires. */
	p.period = 0;
	sg_strlist_add(&p.policies, "root");
	T_OK(make(&p, &root, tok, &t, &err) == 0 && t.expire_time == 0 && !t.renewable);
	auth_token_clear(&t);
	p.ttl = 60;
	T_OK(make(&p, &root, tok, &t, &err) == 0 && t.expire_time != 0);
	{
		struct auth_token child;
		struct auth_token_params q;
		char ctok[AUTH_TOKEN_STR_MAX];

		auth_token_params_init(&q);
		sg_strlist_add(&q.policies, "root");
		T_OK(make(&q, &t, ctok, &child, &err) == -1);
		T_STREQ(err.detail, "expiring root tokens cannot create non-expiring root tokens");
		auth_token_params_clear(&q);
	}
	auth_token_clear(&t);
	auth_token_params_clear(&p);
	auth_token_clear(&root);
}

static void test_expiry_and_sweep(void)
{
	struct auth_token root, a, b, t;
	struct auth_token_params p;
	char atok[AUTH_TOKEN_STR_MAX], btok[AUTH_TOKEN_STR_MAX];
	struct sg_err err;
	uint64_t n = 0;
	char *lease_id = NULL;
	struct store_batch *batch;
	struct sg_strlist acc = {0};

	make_root("root-exp", &root);
	auth_token_params_init(&p);
	p.ttl = 30;
	T_OK(make(&p, &root, atok, &a, &err) == 0);
	p.ttl = 3000; /* the child outlives its parent's TTL, not the parent */
	T_OK(make(&p, &a, btok, &b, &err) == 0);
	batch = store_batch_new();
	T_OK(lease_batch_create(g_leases, batch, "pki/issue/web", "test-cert", b.accessor, 3600, false, NULL, &lease_id,
	                        &err) == 0);
	T_OK(store_commit(g_st, batch, &err) == 0);
	store_batch_free(batch);

	sg_clock_advance(31);
	/* Expired tokens stop working at once, before any sweep. */
	T_OK(auth_token_authenticate(g_ts, atok, "127.0.0.1:9", &t, &err) == 0);
	T_OK(live(atok) == 0 && live_accessor(a.accessor) == 0);
	/* ... and so do its descendants, before the sweep revokes them. */
	T_OK(live(btok) == 0 && live_accessor(b.accessor) == 0);
	T_OK(auth_token_authenticate(g_ts, btok, "127.0.0.1:9", &t, &err) == 0);

	g_kind_state.revoked = 0;
	T_OK(auth_tokens_sweep(g_ts, &n, &err) == 0);
	T_OK(n == 1);
	T_OK(g_kind_state.revoked == 1); /* the child's lease went with the sweep of its parent */
	{
		struct lease l;

		T_OK(lease_lookup(g_leases, lease_id, &l, &err) == 0);
	}
	T_OK(auth_token_accessors(g_ts, &acc, &err) == 0);
	T_OK(!sg_strlist_has(&acc, a.accessor) && !sg_strlist_has(&acc, b.accessor));
	T_OK(sg_strlist_has(&acc, root.accessor));
	/* A second sweep finds nothing. */
	T_OK(auth_tokens_sweep(g_ts, &n, &err) == 0 && n == 0);
	free(lease_id);
	sg_strlist_clear(&acc);
	auth_token_clear(&a);
	auth_token_clear(&b);
	auth_token_params_clear(&p);
	auth_token_clear(&root);
}

static void test_uses_and_cidrs(void)
{
	struct auth_token root, u, t, c;
	struct auth_token_params p;
	char utok[AUTH_TOKEN_STR_MAX], ctok[AUTH_TOKEN_STR_MAX];
	struct sg_err err;

	make_root("root-uses", &root);
	auth_token_params_init(&p);
	p.num_uses = 3;
	T_OK(make(&p, &root, utok, &u, &err) == 0 && u.num_uses == 3);
	T_OK(auth_token_authenticate(g_ts, utok, "127.0.0.1:1", &t, &err) == 1 && t.num_uses == 2);
	/* A use-limited token cannot escape its count through children. */
	{
		struct auth_token_params q;

		auth_token_params_init(&q);
		T_OK(make(&q, &t, ctok, &c, &err) == -1);
		T_STREQ(err.detail, "restricted use token cannot generate child tokens");
		auth_token_params_clear(&q);
	}
	auth_token_clear(&t);
	/* Lookups do not count. */
	T_OK(live(utok) == 1 && live(utok) == 1);
	T_OK(auth_token_authenticate(g_ts, utok, "127.0.0.1:1", &t, &err) == 1 && t.num_uses == 1);
	auth_token_clear(&t);
	T_OK(auth_token_authenticate(g_ts, utok, "127.0.0.1:1", &t, &err) == 1 && t.num_uses == -1);
	auth_token_clear(&t);
	T_OK(auth_token_authenticate(g_ts, utok, "127.0.0.1:1", &t, &err) == 0);
	T_OK(live(utok) == 0 && live_accessor(u.accessor) == 0);
	auth_token_clear(&u);
	auth_token_params_clear(&p);

	/* CIDR binding: IPv4 and IPv6 remote forms, inherited by children. */
	auth_token_params_init(&p);
	sg_strlist_add(&p.policies, "web"); /* not root: a non-expiring root token is never CIDR-bound */
	sg_strlist_add(&p.bound_cidrs, "10.0.0.0/8");
	sg_strlist_add(&p.bound_cidrs, "fd00::/8");
	T_OK(make(&p, &root, utok, &u, &err) == 0);
	T_OK(auth_token_authenticate(g_ts, utok, "127.0.0.1:5000", &t, &err) == 0);
	T_OK(auth_token_authenticate(g_ts, utok, "10.2.3.4:5000", &t, &err) == 1);
	auth_token_clear(&t);
	T_OK(auth_token_authenticate(g_ts, utok, "[fd12::1]:443", &t, &err) == 1);
	auth_token_clear(&t);
	T_OK(auth_token_authenticate(g_ts, utok, "[::1]:443", &t, &err) == 0);
	T_OK(auth_token_authenticate(g_ts, utok, "garbage", &t, &err) == 0);
	auth_token_params_clear(&p);
	auth_token_params_init(&p);
	T_OK(make(&p, &u, ctok, &c, &err) == 0 && c.bound_cidrs.n == 2);
	T_OK(auth_token_authenticate(g_ts, ctok, "127.0.0.1:1", &t, &err) == 0);
	auth_token_clear(&c);
	auth_token_clear(&u);
	auth_token_params_clear(&p);
	auth_token_clear(&root);
	T_OK(!sg_err_isset(&err));
}

static void test_renew(void)
{
	struct auth_token root, t, nr;
	struct auth_token_params p;
	char tok[AUTH_TOKEN_STR_MAX];
	struct sg_err err;
	int64_t start, since;

	make_root("root-renew", &root);
	auth_token_params_init(&p);
	p.ttl = 3600;
	p.explicit_max_ttl = 5400;
	T_OK(make(&p, &root, tok, &t, &err) == 0);
	start = t.creation_time;
	sg_clock_advance(1800);
	T_OK(auth_token_renew(g_ts, &t, 0, &err) == 0);
	T_OK(t.expire_time == start + 5400); /* now+3600 would pass the explicit max */
	T_OK(t.last_renewal >= start + 1800 && t.last_renewal <= sg_now());
	sg_clock_advance(600);
	since = sg_now();
	T_OK(auth_token_renew(g_ts, &t, 60, &err) == 0 && expires_in(&t, since, 60));
	T_OK(auth_token_renew(g_ts, &t, -1, &err) == -1 && err.code == SG_BAD_REQUEST);
	sg_err_init(&err);
	sg_clock_advance(5400);
	T_OK(auth_token_renew(g_ts, &t, 0, &err) == -1);
	T_STREQ(err.detail, "token not found"); /* it expired meanwhile */
	auth_token_clear(&t);

	/* Periodic tokens renew to their period. */
	p.explicit_max_ttl = 0;
	p.ttl = 0;
	p.period = 300;
	T_OK(make(&p, &root, tok, &t, &err) == 0);
	for (int i = 0; i < 3; i++) {
		sg_clock_advance(200);
		since = sg_now();
		sg_err_init(&err);
		T_CHECK(auth_token_renew(g_ts, &t, 0, &err) == 0, "%s", err.detail);
		T_OK(expires_in(&t, since, 300));
	}
	since = sg_now();
	T_OK(auth_token_renew(g_ts, &t, 100, &err) == 0 && expires_in(&t, since, 100));
	auth_token_clear(&t);

	/* Non-renewable and non-expiring tokens cannot be renewed. */
	p.period = 0;
	p.renewable = false;
	T_OK(make(&p, &root, tok, &nr, &err) == 0);
	T_OK(auth_token_renew(g_ts, &nr, 0, &err) == -1);
	T_STREQ(err.detail, "lease is not renewable");
	sg_err_init(&err);
	T_OK(auth_token_renew(g_ts, &root, 0, &err) == -1);
	T_STREQ(err.detail, "lease is not renewable");
	auth_token_clear(&nr);

	/* A non-periodic token renews up to the system max from its creation, no further. */
	p.renewable = true;
	p.ttl = 10 * 86400;
	T_OK(make(&p, &root, tok, &t, &err) == 0);
	for (int i = 0; i < 3; i++) {
		sg_clock_advance(9 * 86400);
		sg_err_init(&err);
		T_CHECK(auth_token_renew(g_ts, &t, 0, &err) == 0, "%s", err.detail);
	}
	T_OK(t.expire_time == t.creation_time + AUTH_SYSTEM_MAX_TTL);
	sg_clock_advance(4 * 86400);
	T_OK(auth_token_renew(g_ts, &t, 0, &err) == 0 && t.expire_time == t.creation_time + AUTH_SYSTEM_MAX_TTL);
	sg_clock_advance(2 * 86400);
	T_OK(auth_token_renew(g_ts, &t, 0, &err) == -1);
	T_STREQ(err.detail, "token not found");
	auth_token_clear(&t);
	auth_token_params_clear(&p);
	auth_token_clear(&root);
}

static void test_revoke_tree(void)
{
	struct auth_token root, a, b, c, o;
	struct auth_token_params p;
	char atok[AUTH_TOKEN_STR_MAX], btok[AUTH_TOKEN_STR_MAX], ctok[AUTH_TOKEN_STR_MAX], otok[AUTH_TOKEN_STR_MAX];
	char *la = NULL, *lc = NULL;
	struct store_batch *batch;
	struct sg_err err;

	make_root("root-tree", &root);
	auth_token_params_init(&p);
	T_OK(make(&p, &root, atok, &a, &err) == 0);
	T_OK(make(&p, &a, btok, &b, &err) == 0);
	T_OK(make(&p, &b, ctok, &c, &err) == 0);
	p.orphan = true;
	T_OK(make(&p, &a, otok, &o, &err) == 0); /* made by a, not its child */
	batch = store_batch_new();
	T_OK(lease_batch_create(g_leases, batch, "pki/issue/web", "test-cert", a.accessor, 3600, false, NULL, &la,
	                        &err) == 0);
	T_OK(lease_batch_create(g_leases, batch, "pki/issue/web", "test-cert", c.accessor, 3600, false, NULL, &lc,
	                        &err) == 0);
	T_OK(store_commit(g_st, batch, &err) == 0);
	store_batch_free(batch);

	g_kind_state.revoked = 0;
	T_OK(auth_token_revoke(g_ts, &a, false, &err) == 0);
	T_OK(live(atok) == 0 && live(btok) == 0 && live(ctok) == 0);
	T_OK(live(otok) == 1 && live_accessor(root.accessor) == 1);
	T_OK(g_kind_state.revoked == 2);
	{
		struct lease l;

		T_OK(lease_lookup(g_leases, la, &l, &err) == 0 && lease_lookup(g_leases, lc, &l, &err) == 0);
	}
	/* Revoking an absent token is not an error. */
	T_OK(auth_token_revoke(g_ts, &a, false, &err) == 0);
	free(la);
	free(lc);
	auth_token_clear(&a);
	auth_token_clear(&b);
	auth_token_clear(&c);
	auth_token_clear(&o);

	/* revoke-orphan: the children live on as orphans, grandchildren keep their parent. */
	p.orphan = false;
	T_OK(make(&p, &root, atok, &a, &err) == 0);
	T_OK(make(&p, &a, btok, &b, &err) == 0);
	T_OK(make(&p, &b, ctok, &c, &err) == 0);
	T_OK(auth_token_revoke(g_ts, &a, true, &err) == 0);
	T_OK(live(atok) == 0 && live(btok) == 1 && live(ctok) == 1);
	auth_token_clear(&b);
	T_OK(auth_token_lookup(g_ts, btok, &b, &err) == 1 && b.orphan && b.parent[0] == '\0');
	/* ... and b is now the root of its own tree. */
	T_OK(auth_token_revoke(g_ts, &b, false, &err) == 0);
	T_OK(live(ctok) == 0);
	auth_token_clear(&a);
	auth_token_clear(&b);
	auth_token_clear(&c);
	auth_token_params_clear(&p);
	auth_token_clear(&root);
}

/* A chain deeper than AUTH_TOKEN_MAX_DEPTH does not validate at its far end. */
static void test_depth(void)
{
	struct auth_token root, first, prev, t;
	struct auth_token_params p;
	char tok[AUTH_TOKEN_STR_MAX], at_cap[AUTH_TOKEN_STR_MAX] = "";
	struct sg_err err;
	int ok_at_cap = -1;

	make_root("root-depth", &root);
	auth_token_params_init(&p);
	sg_strlist_add(&p.policies, "web");
	T_OK(make(&p, &root, tok, &first, &err) == 0); /* depth 1: its parent is the root */
	T_OK(make(&p, &first, tok, &prev, &err) == 0);
	for (int d = 3; d <= AUTH_TOKEN_MAX_DEPTH + 1; d++) {
		T_CHECK(make(&p, &prev, tok, &t, &err) == 0, "depth %d: %s", d, err.detail);
		auth_token_clear(&prev);
		prev = t;
		if (d == AUTH_TOKEN_MAX_DEPTH) {
			ok_at_cap = live(tok);
			snprintf(at_cap, sizeof(at_cap), "%s", tok);
		}
	}
	T_OK(ok_at_cap == 1);
	T_OK(live(tok) == 0);
	/* Revoking the top takes the whole chain. */
	T_OK(auth_token_revoke(g_ts, &first, false, &err) == 0);
	T_OK(live(at_cap) == 0 && live_accessor(prev.accessor) == 0);
	T_OK(live_accessor(root.accessor) == 1);
	{
		struct sg_strlist acc = {0};

		T_OK(auth_token_accessors(g_ts, &acc, &err) == 0 && !sg_strlist_has(&acc, prev.accessor));
		sg_strlist_clear(&acc);
	}
	auth_token_clear(&first);
	auth_token_clear(&prev);
	auth_token_params_clear(&p);
	auth_token_clear(&root);
}

/* Children created while their parent is revoked: none may outlive it. */
struct race_arg {
	const struct auth_token *parent;
	int made;
	char tok[16][AUTH_TOKEN_STR_MAX];
};

static void *race_creator(void *arg)
{
	struct race_arg *r = arg;
	struct auth_token_params p;
	struct auth_token t;
	struct sg_err err;

	auth_token_params_init(&p);
	for (int i = 0; i < 16; i++) {
		sg_err_init(&err);
		if (auth_token_create(g_ts, &p, r->parent, r->tok[r->made], AUTH_TOKEN_STR_MAX, &t, &err) == 0)
			r->made++;
		auth_token_clear(&t);
	}
	auth_token_params_clear(&p);
	return NULL;
}

static void test_race(void)
{
	struct auth_token root, a;
	struct auth_token_params p;
	char atok[AUTH_TOKEN_STR_MAX];
	struct race_arg r[3];
	pthread_t th[3];
	struct sg_err err;
	int survivors = 0, made = 0;

	make_root("root-race", &root);
	auth_token_params_init(&p);
	T_OK(make(&p, &root, atok, &a, &err) == 0);
	memset(r, 0, sizeof(r));
	for (int i = 0; i < 3; i++) {
		r[i].parent = &a;
		pthread_create(&th[i], NULL, race_creator, &r[i]);
	}
	usleep(2000);
	T_OK(auth_token_revoke(g_ts, &a, false, &err) == 0);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 3; i++) {
		made += r[i].made;
		for (int k = 0; k < r[i].made; k++)
			survivors += live(r[i].tok[k]);
	}
	T_CHECK(survivors == 0, "%d of %d children outlived their revoked parent", survivors, made);
	auth_token_clear(&a);
	auth_token_params_clear(&p);
	auth_token_clear(&root);
}

static void test_json(void)
{
	struct auth_token root, t;
	struct auth_token_params p;
	char tok[AUTH_TOKEN_STR_MAX];
	struct sg_err err;
	json_t *j;

	make_root("root-json", &root);
	auth_token_params_init(&p);
	sg_strlist_add(&p.policies, "web");
	p.ttl = 600;
	p.display_name = "token-ci";
	p.meta = json_pack("{s:s}", "who", "ci");
	p.num_uses = 5;
	T_OK(make(&p, &root, tok, &t, &err) == 0);
	j = auth_token_lookup_json(&t, t.creation_time + 100);
	T_STREQ(json_string_value(json_object_get(j, "accessor")), t.accessor);
	T_OK(json_integer_value(json_object_get(j, "ttl")) == 500);
	T_OK(json_integer_value(json_object_get(j, "creation_ttl")) == 600);
	T_OK(json_integer_value(json_object_get(j, "num_uses")) == 5);
	T_OK(json_is_false(json_object_get(j, "orphan")) && json_is_true(json_object_get(j, "renewable")));
	T_STREQ(json_string_value(json_object_get(j, "display_name")), "token-ci");
	T_STREQ(json_string_value(json_object_get(json_object_get(j, "meta"), "who")), "ci");
	T_OK(json_is_string(json_object_get(j, "expire_time")) && json_is_string(json_object_get(j, "issue_time")));
	T_STREQ(json_string_value(json_object_get(j, "type")), "service");
	T_OK(json_array_size(json_object_get(j, "policies")) == 2);
	T_OK(json_object_get(j, "parent") == NULL && json_object_get(j, "hash") == NULL);
	json_decref(j);

	j = auth_token_auth_json(&t, tok, t.creation_time);
	T_STREQ(json_string_value(json_object_get(j, "client_token")), tok);
	T_OK(json_integer_value(json_object_get(j, "lease_duration")) == 600);
	T_STREQ(json_string_value(json_object_get(j, "token_type")), "service");
	T_OK(json_is_null(json_object_get(j, "mfa_requirement")));
	T_OK(json_array_size(json_object_get(j, "token_policies")) == 2);
	json_decref(j);

	j = auth_token_lookup_json(&root, sg_now());
	T_OK(json_is_null(json_object_get(j, "expire_time")) && json_integer_value(json_object_get(j, "ttl")) == 0);
	T_OK(json_is_null(json_object_get(j, "meta")) && json_is_true(json_object_get(j, "orphan")));
	json_decref(j);
	json_decref(p.meta);
	p.meta = NULL;
	auth_token_params_clear(&p);
	auth_token_clear(&t);
	auth_token_clear(&root);
}

static void test_roles(void)
{
	struct auth_token root, parent, t;
	struct auth_token_role r, back;
	struct auth_token_params p;
	struct sg_strlist names = {0}, warn = {0};
	char tok[AUTH_TOKEN_STR_MAX], ptok[AUTH_TOKEN_STR_MAX], path[400];
	struct sg_err err;
	json_t *body, *j;

	sg_err_init(&err);
	T_OK(auth_token_role_name_ok("ci-role.v1") && auth_token_role_name_ok("a"));
	T_OK(!auth_token_role_name_ok("-x") && !auth_token_role_name_ok("a/b") && !auth_token_role_name_ok("a..b") &&
	     !auth_token_role_name_ok(""));

	auth_token_role_init(&r, "ci");
	body = json_pack("{s:s, s:[s], s:s, s:s, s:s, s:i, s:s, s:b}", "allowed_policies", "Web, ops", "disallowed_policies",
	                 "admin", "path_suffix", "v1", "token_explicit_max_ttl", "2h", "token_period", "0", "token_num_uses",
	                 4, "token_ttl", "30m", "orphan", 1);
	T_CHECK(auth_token_role_apply(&r, body, &err) == 0, "%s", err.detail);
	json_decref(body);
	T_OK(r.allowed_policies.n == 2);
	T_STREQ(r.allowed_policies.v[0], "ops");
	T_OK(r.explicit_max_ttl == 7200 && r.ttl == 1800 && r.num_uses == 4 && r.orphan && r.renewable);
	T_OK(auth_token_role_put(g_ts, &r, &err) == 0);
	T_OK(auth_token_role_get(g_ts, "ci", &back, &err) == 1);
	T_STREQ(back.path_suffix, "v1");
	T_OK(back.allowed_policies.n == 2 && back.explicit_max_ttl == 7200 && back.orphan && back.num_uses == 4);
	j = auth_token_role_json(&back);
	T_OK(json_integer_value(json_object_get(j, "token_explicit_max_ttl")) == 7200);
	T_STREQ(json_string_value(json_object_get(j, "name")), "ci");
	json_decref(j);
	auth_token_role_clear(&back);
	T_OK(auth_token_role_get(g_ts, "absent", &back, &err) == 0);
	auth_token_role_clear(&back);
	T_OK(auth_token_role_names(g_ts, &names, &err) == 0 && names.n == 1);
	sg_strlist_clear(&names);

	/* Bad field values name the field. */
	body = json_pack("{s:s}", "path_suffix", "bad/suffix");
	T_OK(auth_token_role_apply(&r, body, &err) == -1 && strstr(err.detail, "path suffix") != NULL);
	json_decref(body);
	sg_err_init(&err);
	body = json_pack("{s:s}", "token_bound_cidrs", "300.0.0.0/8");
	T_OK(auth_token_role_apply(&r, body, &err) == -1 && strstr(err.detail, "CIDR") != NULL);
	json_decref(body);
	sg_err_init(&err);
	body = json_pack("{s:i}", "orphan", 3);
	T_OK(auth_token_role_apply(&r, body, &err) == -1 && strstr(err.detail, "orphan") != NULL);
	json_decref(body);

	/* A non-root parent without "ops" gets it through the role: roles may widen, within allowed_policies. */
	make_root("root-roles", &root);
	auth_token_params_init(&p);
	sg_strlist_add(&p.policies, "web");
	T_OK(make(&p, &root, ptok, &parent, &err) == 0);
	auth_token_params_clear(&p);

	auth_token_params_init(&p);
	sg_strlist_add(&p.policies, "ops");
	p.explicit_max_ttl = 10800;
	T_OK(auth_token_role_params(&r, &parent, &p, path, sizeof(path), &warn, &err) == 0);
	T_OK(warn.n == 1 && strstr(warn.v[0], "lesser value of 7200") != NULL);
	T_STREQ(p.path, "auth/token/create/ci/v1");
	T_CHECK(make(&p, &parent, tok, &t, &err) == 0, "%s", err.detail);
	T_OK(sg_strlist_has(&t.policies, "ops") && sg_strlist_has(&t.policies, "default") && t.policies.n == 2);
	T_OK(t.orphan && t.num_uses == 4 && t.explicit_max_ttl == 7200 && t.creation_ttl == 1800);
	T_STREQ(t.path, "auth/token/create/ci/v1");
	auth_token_clear(&t);
	auth_token_params_clear(&p);
	sg_strlist_clear(&warn);

	/* Outside allowed_policies, or disallowed: refused. */
	auth_token_params_init(&p);
	sg_strlist_add(&p.policies, "db");
	T_OK(auth_token_role_params(&r, &parent, &p, path, sizeof(path), NULL, &err) == -1);
	T_OK(strstr(err.detail, "must be subset of the role's allowed policies") != NULL);
	auth_token_params_clear(&p);
	sg_err_init(&err);
	free(r.allowed_policies.v[0]);
	r.allowed_policies.v[0] = sg_xstrdup("admin"); /* allowed and disallowed at once: disallowed wins */
	auth_token_params_init(&p);
	sg_strlist_add(&p.policies, "admin");
	T_OK(auth_token_role_params(&r, &parent, &p, path, sizeof(path), NULL, &err) == -1);
	T_STREQ(err.detail, "token policy \"admin\" is disallowed by this role");
	auth_token_params_clear(&p);

	/* No allowed list, no policies asked: the parent's; root stays root-only. */
	sg_strlist_clear(&r.allowed_policies);
	sg_strlist_clear(&r.disallowed_policies);
	sg_strlist_add(&r.disallowed_policies, "ops");
	sg_err_init(&err);
	auth_token_params_init(&p);
	T_CHECK(auth_token_role_params(&r, &parent, &p, path, sizeof(path), NULL, &err) == 0, "%s", err.detail);
	T_OK(make(&p, &parent, tok, &t, &err) == 0 && t.policies.n == 2 && sg_strlist_has(&t.policies, "web"));
	auth_token_clear(&t);
	auth_token_params_clear(&p);
	auth_token_params_init(&p);
	sg_strlist_add(&p.policies, "root");
	T_OK(auth_token_role_params(&r, &parent, &p, path, sizeof(path), NULL, &err) == 0);
	T_OK(make(&p, &parent, tok, &t, &err) == -1);
	T_STREQ(err.detail, "root tokens may not be created without parent token being root");
	auth_token_params_clear(&p);

	T_OK(auth_token_role_delete(g_ts, "ci", &err) == 0);
	T_OK(auth_token_role_get(g_ts, "ci", &back, &err) == 0);
	auth_token_role_clear(&back);
	auth_token_role_clear(&r);
	auth_token_clear(&parent);
	auth_token_clear(&root);
}

static void test_sweeper_thread(void)
{
	struct auth_token root, t;
	struct auth_token_params p;
	char tok[AUTH_TOKEN_STR_MAX];
	struct sg_err err;

	bool gone = false;

	make_root("root-sweeper", &root);
	auth_token_params_init(&p);
	p.ttl = 5;
	T_OK(make(&p, &root, tok, &t, &err) == 0);
	sg_clock_advance(10);
	T_OK(auth_tokens_sweeper_start(g_ts, 1, &err) == 0);
	for (int i = 0; i < 50 && !gone; i++) {
		struct sg_strlist acc = {0};
		bool present;

		usleep(100000);
		/* The accessor list shows stored records, expired or not: only a sweep removes them. */
		if (auth_token_accessors(g_ts, &acc, &err) != 0)
			break;
		present = sg_strlist_has(&acc, t.accessor);
		sg_strlist_clear(&acc);
		gone = !present;
	}
	T_OK(gone);
	T_OK(live_accessor(root.accessor) == 1);
	T_OK(auth_tokens_sweeper_start(g_ts, 0, &err) == -1);
	auth_token_clear(&t);
	auth_token_params_clear(&p);
	auth_token_clear(&root);
}

int main(void)
{
	setup();
	test_headers();
	test_generate();
	test_sanitize();
	test_root_and_hashing();
	test_create_rules();
	test_ttls();
	test_expiry_and_sweep();
	test_uses_and_cidrs();
	test_renew();
	test_revoke_tree();
	test_depth();
	test_race();
	test_json();
	test_roles();
	test_sweeper_thread();
	teardown();
	return t_done();
}
