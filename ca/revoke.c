/*
 * Batch revocation (DESIGN.md rule 3, in bulk): the durable mark of
 * ca_revoke, the revocation record, staged into a caller's batch for
 * thousands of serials at once, then the revoke hook after the commit. The
 * certificate record is left as issued (ca_cert_get reads the revocation
 * record): rewriting 10,000 certificate records would double the work and
 * the bytes written for nothing the revocation record does not already say.
 * When the caller knows the issuer and NotAfter (a lease recorded them at
 * issuance), the certificate record is not even read: decoding it was most
 * of the cost of a kill switch. Lease revocation (a role's kill switch, a token's
 * cascade) goes through here so that 10,000 revocations are ten commits.
 */
#include "ca/internal.h"

#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>

struct sorted_serial {
	size_t idx;
	const char *hyphen;
};

/* The mount's issuers, loaded the first time a stored certificate needs checking against them. */
struct issuer_view {
	struct ca_mstate *s;
	struct ca_serial *serials;
	size_t n;
	bool loaded;
};

static int sorted_cmp(const void *a, const void *b)
{
	const struct sorted_serial *x = a, *y = b;
	int c = strcmp(x->hyphen, y->hyphen);

	/* Equal serials keep their input order: the first one is staged. */
	if (c != 0)
		return c;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static bool reason_ok(enum ca_reason r)
{
	return r == CA_REASON_UNSPECIFIED || strcmp(ca_reason_name(r), "unspecified") != 0;
}

static int issuers_load(struct ca *ca, const struct ca_mount *m, struct issuer_view *v, struct sg_err *err)
{
	struct sg_err tmp;

	if (v->loaded)
		return 0;
	if (ca_state_get(ca, m->id, &v->s, err) < 0)
		return -1;
	v->serials = sg_xcalloc(v->s->n + 1, sizeof(*v->serials));
	for (size_t i = 0; i < v->s->n; i++) {
		sg_err_init(&tmp);
		if (ca_serial_from_cert(v->s->issuers[i].cert, &v->serials[v->n], &tmp) == 0)
			v->n++;
	}
	v->loaded = true;
	return 0;
}

static bool is_issuer(const struct issuer_view *v, const struct ca_serial *sn)
{
	for (size_t i = 0; i < v->n; i++)
		if (strcmp(v->serials[i].hyphen, sn->hyphen) == 0)
			return true;
	return false;
}

/* The issuer that signed a stored certificate whose record lacks it (imports, old records). */
static void issuer_of_der(const struct issuer_view *v, const unsigned char *der, size_t len, char out[37])
{
	const unsigned char *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)len);
	const struct ca_issuer *iss;

	if (x == NULL) {
		ERR_clear_error();
		return;
	}
	if ((iss = ca_state_find_signer_of(v->s, x)) != NULL)
		memcpy(out, iss->id, 37);
	X509_free(x);
}

/* A UUID as the CA writes issuer ids: 36 characters of hex digits and hyphens. */
static bool uuid_like(const char *s)
{
	size_t n = 0;

	for (; s[n] != '\0' && n <= 36; n++)
		if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f') || (s[n] >= 'A' && s[n] <= 'F') ||
		      s[n] == '-'))
			return false;
	return n == 36;
}

/*
 * The revocation record without a certificate copy: the fields of
 * ca_revoked_rec_encode, written directly (a serial in colon hex and a
 * UUID need no JSON escaping), since building a JSON object per
 * certificate is a measurable part of a kill switch.
 */
static void revoked_put_small(struct store_batch *b, const char *mount_id, const struct ca_revoked_rec *rv)
{
	char key[CA_MAX_STORE_KEY], val[CA_SERIAL_HEX_MAX + 192];
	int n;

	n = snprintf(val, sizeof(val),
	             "{\"serial\":\"%s\",\"revocation_time\":%lld,\"reason\":%d,\"invalidity_date\":%lld,"
	             "\"issuer_id\":\"%s\",\"not_after\":%lld}",
	             rv->serial.colon, (long long)rv->time, (int)rv->reason, (long long)rv->invalidity_date, rv->issuer_id,
	             (long long)rv->not_after);
	if (n < 0 || (size_t)n >= sizeof(val))
		sg_die("ca: revocation record overflow");
	ca_skey(key, sizeof(key), mount_id, rv->serial.hyphen);
	store_batch_put_new(b, STORE_REVOKED, key, strlen(key), val, (size_t)n);
}

static int stage_one(struct ca *ca, const struct ca_mount *m, const struct ca_serial *sn, struct ca_revoke_item *it,
                     enum ca_reason reason, int64_t now, struct issuer_view *iv, struct store_batch *b,
                     struct sg_err *err)
{
	struct ca_cert_record cr = {0};
	struct ca_revoked_rec rv = {0};
	char key[CA_MAX_STORE_KEY];
	bool known = it->known_issuer_id != NULL && uuid_like(it->known_issuer_id) && it->known_not_after > 0;
	int have_cr, have_rv, rc = -1;

	if ((have_rv = ca_revoked_rec_get(ca, m->id, sn, &rv, err)) < 0)
		goto out;
	if (have_rv == 1) {
		/* Revoking twice keeps the first time and reason. */
		it->state = CA_RB_ALREADY;
		it->revocation_time = rv.time;
		memcpy(it->issuer_id, rv.issuer_id, sizeof(it->issuer_id));
		rc = 0;
		goto out;
	}
	if (known) {
		ca_skey(key, sizeof(key), m->id, sn->hyphen);
		have_cr = store_get(ca->st, STORE_CERTS, key, strlen(key), NULL, NULL, err);
		cr.not_after = it->known_not_after;
		memcpy(cr.issuer_id, it->known_issuer_id, sizeof(cr.issuer_id));
	} else {
		have_cr = ca_cert_rec_get(ca, m->id, sn, &cr, err);
	}
	if (have_cr < 0)
		goto out;
	if (have_cr == 0) {
		it->state = CA_RB_MISSING;
		rc = 0;
		goto out;
	}
	if (issuers_load(ca, m, iv, err) < 0)
		goto out;
	if (is_issuer(iv, sn)) {
		it->state = CA_RB_ISSUER;
	} else if (cr.not_after < now) {
		/* Vault: an expired certificate is not added to the CRL. */
		it->state = CA_RB_EXPIRED;
	} else {
		rv.serial = *sn;
		rv.time = now;
		rv.reason = reason;
		rv.not_after = cr.not_after;
		memcpy(rv.issuer_id, cr.issuer_id, sizeof(rv.issuer_id));
		if (rv.issuer_id[0] == '\0' && cr.der != NULL)
			issuer_of_der(iv, cr.der, cr.der_len, rv.issuer_id);
		if (cr.der == NULL) {
			revoked_put_small(b, m->id, &rv);
		} else {
			/* Without known fields the record keeps the certificate, as ca_revoke's does (borrowed from cr). */
			rv.der = cr.der;
			rv.der_len = cr.der_len;
			ca_revoked_rec_put(b, m->id, &rv, true);
			rv.der = NULL;
		}
		it->state = CA_RB_REVOKED;
		it->revocation_time = now;
		memcpy(it->issuer_id, rv.issuer_id, sizeof(it->issuer_id));
	}
	rc = 0;
out:
	ca_revoked_rec_clear(&rv);
	ca_cert_record_clear(&cr);
	return rc;
}

int ca_revoke_batch_add(struct ca *ca, const struct ca_mount *m, struct ca_revoke_item *items, size_t n,
                        enum ca_reason reason, struct store_batch *b, struct sg_err *err)
{
	struct ca_serial *sn = NULL;
	struct sorted_serial *order = NULL;
	struct issuer_view iv = {0};
	const struct ca_revoke_item *prev = NULL;
	const char *prev_hyphen = NULL;
	size_t nvalid = 0;
	int64_t now = sg_now();
	int rc = -1;

	if (ca_mount_check(m, err) < 0)
		return -1;
	if (!reason_ok(reason))
		return sg_err_set(err, SG_BAD_REQUEST, "unknown revocation reason %d", (int)reason);
	if (n == 0)
		return 0;
	sn = sg_xcalloc(n, sizeof(*sn));
	order = sg_xcalloc(n, sizeof(*order));
	for (size_t i = 0; i < n; i++) {
		struct sg_err tmp;

		items[i].state = CA_RB_INVALID;
		items[i].revocation_time = 0;
		items[i].serial_colon[0] = '\0';
		items[i].issuer_id[0] = '\0';
		sg_err_init(&tmp);
		if (ca_serial_parse(items[i].serial, &sn[i], &tmp) < 0)
			continue;
		snprintf(items[i].serial_colon, sizeof(items[i].serial_colon), "%s", sn[i].colon);
		order[nvalid].idx = i;
		order[nvalid].hyphen = sn[i].hyphen;
		nvalid++;
	}
	/*
	 * Sorted by serial: a serial given twice is staged once (a second
	 * put_new of the same key would fail the whole batch forever).
	 */
	qsort(order, nvalid, sizeof(*order), sorted_cmp);
	for (size_t k = 0; k < nvalid; k++) {
		struct ca_revoke_item *it = &items[order[k].idx];

		if (prev != NULL && strcmp(prev_hyphen, order[k].hyphen) == 0) {
			it->state = prev->state == CA_RB_REVOKED ? CA_RB_ALREADY : prev->state;
			it->revocation_time = prev->revocation_time;
			memcpy(it->issuer_id, prev->issuer_id, sizeof(it->issuer_id));
			continue;
		}
		if (stage_one(ca, m, &sn[order[k].idx], it, reason, now, &iv, b, err) < 0)
			goto out;
		prev = it;
		prev_hyphen = order[k].hyphen;
	}
	rc = 0;
out:
	ca_state_release(iv.s);
	free(iv.serials);
	free(order);
	free(sn);
	return rc;
}

void ca_revoke_notify(struct ca *ca, const struct ca_mount *m, const struct ca_revoke_item *items, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (items[i].state == CA_RB_REVOKED)
			ca_run_revoke_hook(ca, m->id, items[i].serial_colon, items[i].issuer_id);
}
