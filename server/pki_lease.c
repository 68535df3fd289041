/*
 * The PKI's lease kind, "pki-cert" (DESIGN.md rule 2): a leased
 * certificate's lease carries {mount_id, mount, serial, issuer_id,
 * not_after}, written by the issuance that created both; revoking
 * the lease stages the certificate's revocation into the lease module's
 * batch, grouped by mount, through ca_revoke_batch_add (rule 3 in bulk).
 * As Vault's PKI lease revocation: a certificate that is gone or expired
 * counts as revoked, and an issuer is never revoked through a lease.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/leases.h"

struct lease_ref {
	size_t idx;
	const char *mount_id, *mount_path, *serial, *issuer_id;
	int64_t not_after;          /* 0 when the lease predates the field */
};

static int ref_cmp(const void *a, const void *b)
{
	const struct lease_ref *x = a, *y = b;
	int c = strcmp(x->mount_id, y->mount_id);

	if (c != 0)
		return c;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static const char *payload_str(const json_t *data, const char *key)
{
	const json_t *v = json_object_get(data, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Borrowed views of a lease's payload; -1 with err naming the lease when it is not ours to read. */
static int ref_fill(const struct lease *l, size_t idx, struct lease_ref *out, struct sg_err *err)
{
	out->idx = idx;
	out->mount_id = payload_str(l->data, "mount_id");
	out->mount_path = payload_str(l->data, "mount");
	out->serial = payload_str(l->data, "serial");
	out->issuer_id = payload_str(l->data, "issuer_id");
	out->not_after = json_is_integer(json_object_get(l->data, "not_after"))
	                     ? json_integer_value(json_object_get(l->data, "not_after"))
	                     : 0;
	if (out->mount_id == NULL || out->mount_id[0] == '\0' || out->serial == NULL)
		return sg_err_set(err, SG_STORAGE, "malformed %s lease %.200s", PKI_LEASE_KIND, l->id);
	if (out->mount_path == NULL)
		out->mount_path = "";
	if (out->issuer_id == NULL)
		out->issuer_id = "";
	return 0;
}

static int kind_revoke(void *arg, struct lease *v, size_t n, struct store_batch *b, struct sg_err *err)
{
	struct ca *ca = arg;
	struct lease_ref *refs = sg_xcalloc(n, sizeof(*refs));
	struct ca_revoke_item *items = sg_xcalloc(n, sizeof(*items));
	int rc = -1;

	for (size_t i = 0; i < n; i++)
		if (ref_fill(&v[i], i, &refs[i], err) < 0)
			goto out;
	/* One ca_revoke_batch_add per mount: a token's leases may span several. */
	qsort(refs, n, sizeof(*refs), ref_cmp);
	for (size_t start = 0, end; start < n; start = end) {
		struct ca_mount m = {refs[start].mount_id, refs[start].mount_path, 0, 0};

		/* The issuer and NotAfter the issuance recorded spare reading 10,000 certificate records. */
		for (end = start; end < n && strcmp(refs[end].mount_id, refs[start].mount_id) == 0; end++) {
			items[end].serial = refs[end].serial;
			items[end].known_issuer_id = refs[end].issuer_id[0] != '\0' ? refs[end].issuer_id : NULL;
			items[end].known_not_after = refs[end].not_after;
		}
		if (ca_revoke_batch_add(ca, &m, items + start, end - start, CA_REASON_UNSPECIFIED, b, err) < 0)
			goto out;
		for (size_t k = start; k < end; k++) {
			/* Our own payload with a serial that does not parse: corrupt, not "nothing to revoke". */
			if (items[k].state == CA_RB_INVALID) {
				sg_err_set(err, SG_STORAGE, "malformed serial in %s lease %.200s", PKI_LEASE_KIND,
				           v[refs[k].idx].id);
				goto out;
			}
			v[refs[k].idx].outcome = (int)items[k].state;
		}
	}
	rc = 0;
out:
	free(items);
	free(refs);
	return rc;
}

/* After the commit: the OCSP view and CRL scheduling learn of each new revocation. */
static void kind_done(void *arg, const struct lease *v, size_t n)
{
	struct ca *ca = arg;

	for (size_t i = 0; i < n; i++) {
		struct lease_ref r;
		struct ca_revoke_item it;
		struct ca_mount m;
		struct sg_err err;

		sg_err_init(&err);
		if (v[i].outcome != CA_RB_REVOKED || ref_fill(&v[i], i, &r, &err) < 0)
			continue;
		memset(&it, 0, sizeof(it));
		it.state = CA_RB_REVOKED;
		snprintf(it.serial_colon, sizeof(it.serial_colon), "%s", r.serial);
		snprintf(it.issuer_id, sizeof(it.issuer_id), "%s", r.issuer_id);
		m.id = r.mount_id;
		m.path = r.mount_path;
		m.default_ttl = m.max_ttl = 0;
		ca_revoke_notify(ca, &m, &it, 1);
	}
}

void pki_lease_kind_register(struct lease_mgr *lm, struct ca *ca)
{
	struct lease_kind k = {PKI_LEASE_KIND, kind_revoke, kind_done, ca};

	lease_kind_register(lm, &k);
}

int pki_lease_hook_run(void *arg, const struct ca_result *res, struct store_batch *b, struct sg_err *err)
{
	struct pki_lease_hook *h = arg;
	/* Vault: lease_duration is the certificate's NotAfter - now. */
	int64_t ttl = res->expiration - sg_now();
	char *prefix = sg_xasprintf("%s/%s/%s", h->mount->path, h->op, h->role);
	json_t *data = json_pack("{s:s, s:s, s:s, s:s, s:I}", "mount_id", h->mount->id, "mount", h->mount->path, "serial",
	                         res->serial, "issuer_id", res->issuer_id, "not_after", (json_int_t)res->expiration);
	int rc;

	if (data == NULL)
		sg_die("out of memory");
	if (ttl < 1)
		ttl = 1;
	/* The hook runs again after a serial collision: the earlier lease went with the failed batch. */
	free(h->lease_id);
	h->lease_id = NULL;
	rc = lease_batch_create(h->lm, b, prefix, PKI_LEASE_KIND, h->owner, ttl, false, data, &h->lease_id, err);
	h->ttl = ttl;
	json_decref(data);
	free(prefix);
	return rc;
}

void pki_lease_hook_clear(struct pki_lease_hook *h)
{
	if (h == NULL)
		return;
	free(h->lease_id);
	h->lease_id = NULL;
	h->ttl = 0;
}
