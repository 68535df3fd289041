/* ca_revoke_batch_add / ca_revoke_notify: bulk revocation staged into a caller's batch. */
#include "ca/ca.h"
#include "tests/unit/t.h"

#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static struct store *g_st;
static struct ca *g_ca;
static int g_hook_calls;
static char g_hook_serial[CA_SERIAL_TEXT_MAX];

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

static void hook(void *arg, const char *mount_id, const char *serial, const char *issuer_id)
{
	(void)arg;
	(void)mount_id;
	(void)issuer_id;
	g_hook_calls++;
	snprintf(g_hook_serial, sizeof(g_hook_serial), "%s", serial);
}

struct scan_seen {
	const char *serial;
	int found;
	char issuer_id[37];
	int64_t not_after;
};

static int scan_cb(void *arg, const struct ca_revoked_entry *e, struct sg_err *err)
{
	struct scan_seen *s = arg;

	(void)err;
	if (strcmp(e->serial_hex, s->serial) == 0) {
		s->found++;
		snprintf(s->issuer_id, sizeof(s->issuer_id), "%s", e->issuer_id);
		s->not_after = e->not_after;
	}
	return 0;
}

static char *issue(const struct ca_mount *m, const struct role *r, const char *cn, int64_t ttl, char issuer[37])
{
	struct ca_request req;
	struct ca_result res = {0};
	struct sg_err err;
	char *serial = NULL;

	sg_err_init(&err);
	ca_request_init(&req);
	req.kind = CA_REQ_ISSUE;
	req.common_name = cn;
	req.ttl = ttl;
	if (ca_issue(g_ca, m, r, &req, NULL, &res, &err) == 0) {
		serial = sg_xstrdup(res.serial);
		if (issuer != NULL)
			memcpy(issuer, res.issuer_id, 37);
	} else {
		fprintf(stderr, "issue: %s\n", err.detail);
	}
	ca_result_clear(&res);
	ca_request_clear(&req);
	return serial;
}

static bool revoked_listed(const struct ca_mount *m, const char *serial)
{
	struct sg_strlist l = {0};
	struct sg_err err;
	bool has;

	sg_err_init(&err);
	if (ca_cert_list(g_ca, m, true, NULL, 0, &l, &err) < 0)
		return false;
	has = sg_strlist_has(&l, serial);
	sg_strlist_clear(&l);
	return has;
}

static int64_t revocation_time(const struct ca_mount *m, const char *serial)
{
	struct ca_cert_record cr = {0};
	struct sg_err err;
	int64_t t = -1;

	sg_err_init(&err);
	if (ca_cert_get(g_ca, m, serial, &cr, &err) == 0)
		t = cr.revoked ? cr.revocation_time : 0;
	ca_cert_record_clear(&cr);
	return t;
}

int main(void)
{
	char tmpl[] = "/tmp/sigil-carevoke-XXXXXX";
	char *dir = mkdtemp(tmpl);
	unsigned char kek[CA_KEK_BYTES] = {1, 2, 3};
	char mid[37], other_id[37], issuer[37] = "";
	struct ca_mount m = {mid, "pki", 768 * 3600, 10LL * 365 * 86400};
	struct ca_mount gone = {other_id, "gone", 3600, 3600};
	struct ca_ca_params p;
	struct ca_gen_result root = {0};
	struct ca_revoke_result rr = {0};
	struct role *r = role_new("web");
	struct store_batch *b;
	struct sg_err err;
	char *s[6] = {0}, *root_serial;
	char hyphen[CA_SERIAL_TEXT_MAX];
	struct ca_revoke_item it[10];
	int64_t t_already;

	sg_err_init(&err);
	if (dir == NULL || store_open(dir, 0, &g_st, &err) != 0 || ca_new(g_st, kek, &g_ca, &err) != 0) {
		fprintf(stderr, "setup: %s\n", err.detail);
		return 2;
	}
	sg_uuid(mid);
	sg_uuid(other_id);
	ca_ca_params_init(&p);
	p.common_name = "Batch Root";
	p.ttl = 5LL * 365 * 86400;
	p.key.type = CA_KEY_EC;
	p.key.bits = 256;
	if (ca_root_generate(g_ca, &m, &p, &root, &err) != 0) {
		fprintf(stderr, "root: %s\n", err.detail);
		return 2;
	}
	root_serial = root.serial;
	sg_strlist_add(&r->allowed_domains, "example.com");
	r->allow_subdomains = true;
	free(r->key_type);
	r->key_type = sg_xstrdup("ec");
	r->key_bits = 256;
	for (int i = 0; i < 5; i++)
		s[i] = issue(&m, r, "a.example.com", 3600, issuer);
	s[5] = issue(&m, r, "short.example.com", 60, NULL);
	for (int i = 0; i < 6; i++)
		T_OK(s[i] != NULL);
	if (s[5] == NULL)
		return t_done();
	ca_set_revoke_hook(g_ca, hook, NULL);

	/* s[2] was revoked one by one before. */
	T_OK(ca_revoke(g_ca, &m, s[2], NULL, CA_REASON_UNSPECIFIED, 0, &rr, &err) == 0);
	t_already = rr.revocation_time;
	ca_revoke_result_clear(&rr);
	T_OK(g_hook_calls == 1);
	g_hook_calls = 0;
	sg_clock_advance(120); /* s[5] expires */

	/* The hyphen spelling of s[1]: the same certificate as its colon form. */
	snprintf(hyphen, sizeof(hyphen), "%s", s[1]);
	for (char *c = hyphen; *c; c++)
		if (*c == ':')
			*c = '-';
	memset(it, 0, sizeof(it));
	it[0].serial = s[0];
	it[1].serial = s[1];
	it[2].serial = hyphen;         /* duplicate of s[1] */
	it[3].serial = s[2];           /* already revoked */
	it[4].serial = "zz:not:hex";   /* malformed */
	it[5].serial = "01:02:03:04";  /* never issued */
	it[6].serial = root_serial;    /* an issuer */
	it[7].serial = s[5];           /* expired */
	it[8].serial = NULL;
	it[9].serial = s[0];           /* duplicate of the first */
	b = store_batch_new();
	T_OK(ca_revoke_batch_add(g_ca, &m, it, 10, CA_REASON_UNSPECIFIED, b, &err) == 0);
	T_OK(it[0].state == CA_RB_REVOKED && it[1].state == CA_RB_REVOKED);
	T_OK(it[2].state == CA_RB_ALREADY && it[2].revocation_time == it[1].revocation_time);
	T_STREQ(it[2].serial_colon, s[1]);
	T_OK(it[3].state == CA_RB_ALREADY && it[3].revocation_time == t_already);
	T_OK(it[4].state == CA_RB_INVALID && it[4].serial_colon[0] == '\0');
	T_OK(it[5].state == CA_RB_MISSING);
	T_OK(it[6].state == CA_RB_ISSUER);
	T_OK(it[7].state == CA_RB_EXPIRED);
	T_OK(it[8].state == CA_RB_INVALID);
	T_OK(it[9].state == CA_RB_ALREADY);
	T_STREQ(it[0].issuer_id, issuer);
	/* Staged, not committed: nothing is revoked yet and no hook ran. */
	T_OK(revocation_time(&m, s[0]) == 0 && !revoked_listed(&m, s[0]));
	T_OK(g_hook_calls == 0);
	T_OK(store_commit(g_st, b, &err) == 0);
	store_batch_free(b);
	T_OK(g_hook_calls == 0);
	ca_revoke_notify(g_ca, &m, it, 10);
	T_CHECK(g_hook_calls == 2, "hook calls %d", g_hook_calls);
	T_OK(revocation_time(&m, s[0]) == it[0].revocation_time && it[0].revocation_time > 0);
	T_OK(revocation_time(&m, s[1]) > 0);
	T_OK(revocation_time(&m, s[2]) == t_already);
	T_OK(revocation_time(&m, s[5]) == 0);
	T_OK(revocation_time(&m, root_serial) == 0);
	T_OK(revoked_listed(&m, s[0]) && revoked_listed(&m, s[1]) && revoked_listed(&m, s[2]));
	T_OK(!revoked_listed(&m, s[5]) && !revoked_listed(&m, root_serial));

	/* A revocation that lands between staging and commit: the commit conflicts, a restage reads ALREADY. */
	memset(it, 0, sizeof(it));
	it[0].serial = s[3];
	it[1].serial = s[4];
	b = store_batch_new();
	T_OK(ca_revoke_batch_add(g_ca, &m, it, 2, CA_REASON_UNSPECIFIED, b, &err) == 0);
	T_OK(it[0].state == CA_RB_REVOKED && it[1].state == CA_RB_REVOKED);
	T_OK(ca_revoke(g_ca, &m, s[3], NULL, CA_REASON_KEY_COMPROMISE, 0, &rr, &err) == 0);
	ca_revoke_result_clear(&rr);
	T_OK(store_commit(g_st, b, &err) == -1 && err.code == SG_CONFLICT);
	store_batch_free(b);
	T_OK(revocation_time(&m, s[4]) == 0); /* the failed batch left nothing */
	sg_err_init(&err);
	b = store_batch_new();
	T_OK(ca_revoke_batch_add(g_ca, &m, it, 2, CA_REASON_UNSPECIFIED, b, &err) == 0);
	T_OK(it[0].state == CA_RB_ALREADY && it[1].state == CA_RB_REVOKED);
	T_OK(store_commit(g_st, b, &err) == 0);
	store_batch_free(b);
	T_OK(revocation_time(&m, s[4]) > 0);

	/* Known issuer and NotAfter (from a lease): the record is only checked for presence. */
	{
		char *k1 = issue(&m, r, "k1.example.com", 3600, NULL), *k2 = issue(&m, r, "k2.example.com", 3600, NULL);
		struct scan_seen seen = {k1, 0, "", 0};

		memset(it, 0, sizeof(it));
		it[0].serial = k1;
		it[0].known_issuer_id = issuer;
		it[0].known_not_after = sg_now() + 3000;
		it[1].serial = "05:06:07";      /* never issued, known fields or not */
		it[1].known_issuer_id = issuer;
		it[1].known_not_after = sg_now() + 3000;
		it[2].serial = k2;              /* the caller says it expired */
		it[2].known_issuer_id = issuer;
		it[2].known_not_after = sg_now() - 10;
		it[3].serial = root_serial;     /* still never an issuer */
		it[3].known_issuer_id = issuer;
		it[3].known_not_after = sg_now() + 3000;
		b = store_batch_new();
		T_OK(ca_revoke_batch_add(g_ca, &m, it, 4, CA_REASON_UNSPECIFIED, b, &err) == 0);
		T_OK(it[0].state == CA_RB_REVOKED && it[1].state == CA_RB_MISSING && it[2].state == CA_RB_EXPIRED &&
		     it[3].state == CA_RB_ISSUER);
		T_OK(store_commit(g_st, b, &err) == 0);
		store_batch_free(b);
		T_OK(revocation_time(&m, k1) == it[0].revocation_time && revoked_listed(&m, k1));
		T_OK(revocation_time(&m, k2) == 0);
		T_OK(ca_revoked_scan(g_ca, &m, scan_cb, &seen, &err) == 0);
		T_OK(seen.found == 1);
		T_STREQ(seen.issuer_id, issuer);
		T_OK(seen.not_after == it[0].known_not_after);
		free(k1);
		free(k2);
	}

	/* A mount with no records (deleted): every certificate is missing, no error. */
	memset(it, 0, sizeof(it));
	it[0].serial = s[0];
	b = store_batch_new();
	T_OK(ca_revoke_batch_add(g_ca, &gone, it, 1, CA_REASON_UNSPECIFIED, b, &err) == 0);
	T_OK(it[0].state == CA_RB_MISSING);
	T_OK(ca_revoke_batch_add(g_ca, &m, it, 0, CA_REASON_UNSPECIFIED, b, &err) == 0);
	sg_err_init(&err);
	T_OK(ca_revoke_batch_add(g_ca, &m, it, 1, (enum ca_reason)7, b, &err) == -1 && err.code == SG_BAD_REQUEST);
	store_batch_free(b);

	for (int i = 0; i < 6; i++)
		free(s[i]);
	role_free(r);
	ca_gen_result_clear(&root);
	ca_ca_params_clear(&p);
	ca_free(g_ca);
	store_close(g_st);
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return t_done();
}
