/*
 * sys/leases/... (compat/vault-api.md section 2) and Vault's older
 * sys/revoke, sys/revoke-prefix, sys/revoke-force and sys/renew aliases.
 * Handlers translate only; the lease manager does the work. Revocation is
 * always synchronous: `sync` is accepted (and type-checked) for Vault's
 * clients, and false does not defer anything, so a 204 means revoked.
 */
#include <stdlib.h>
#include <string.h>

#include "server/internal.h"
#include "server/leases.h"

struct lease_mgr *server_leases(struct server *s)
{
	return s->leases;
}

/* Vault: lease_id from the body, else the one in the URL. */
static int lease_id_arg(const struct req *rq, const char **out, struct sg_err *err)
{
	const char *id = NULL;

	if (sg_json_str(rq->body, "lease_id", &id, err) < 0)
		return -1;
	if (id == NULL || id[0] == '\0')
		id = req_param(rq, "url_lease_id");
	if (id == NULL || id[0] == '\0')
		return sg_err_set(err, SG_BAD_REQUEST, "lease_id must be specified");
	*out = id;
	return 0;
}

static int sync_arg(const struct req *rq, struct sg_err *err)
{
	bool sync = true;

	return sg_json_bool(rq->body, "sync", &sync, err) < 0 ? -1 : 0;
}

int h_leases_lookup(struct req *rq, struct resp *rs, struct sg_err *err)
{
	const char *id;
	struct lease l;
	int rc;

	if (lease_id_arg(rq, &id, err) < 0)
		return -1;
	if ((rc = lease_lookup(server_leases(rq->srv), id, &l, err)) < 0)
		return -1;
	if (rc == 0)
		return sg_err_set(err, SG_BAD_REQUEST, "invalid lease");
	resp_data(rs, lease_to_json(&l));
	lease_clear(&l);
	return 0;
}

int h_leases_list(struct req *rq, struct resp *rs, struct sg_err *err)
{
	const char *prefix = req_param(rq, "prefix");
	struct sg_strlist keys = {0};
	int ret = -1;

	if (lease_list(server_leases(rq->srv), prefix != NULL ? prefix : "", &keys, err) == 0)
		ret = resp_keys(rs, &keys, err);
	sg_strlist_clear(&keys);
	return ret;
}

int h_leases_renew(struct req *rq, struct resp *rs, struct sg_err *err)
{
	const char *id;
	int64_t increment = 0;
	struct lease l;

	if (lease_id_arg(rq, &id, err) < 0 || sg_json_duration(rq->body, "increment", &increment, err) < 0)
		return -1;
	if (increment < 0)
		return sg_err_set(err, SG_BAD_REQUEST, "increment must not be negative");
	if (lease_renew(server_leases(rq->srv), id, increment, &l, err) < 0)
		return -1;
	rs->lease_id = sg_xstrdup(l.id);
	rs->lease_duration = l.expire_time - sg_now();
	rs->renewable = l.renewable;
	lease_clear(&l);
	return 0;
}

int h_leases_revoke(struct req *rq, struct resp *rs, struct sg_err *err)
{
	const char *id;

	(void)rs;
	if (lease_id_arg(rq, &id, err) < 0 || sync_arg(rq, err) < 0)
		return -1;
	return lease_revoke(server_leases(rq->srv), id, err);
}

static int revoke_prefix(struct req *rq, bool force, struct sg_err *err)
{
	const char *prefix = req_param(rq, "prefix");
	uint64_t count = 0;

	if (sync_arg(rq, err) < 0)
		return -1;
	if (prefix == NULL || !lease_path_valid(prefix))
		return sg_err_set(err, SG_BAD_REQUEST, "malformed lease prefix");
	/* As Vault, a prefix with no leases under it is not an error. */
	return lease_revoke_prefix(server_leases(rq->srv), prefix, force, &count, err);
}

int h_leases_revoke_prefix(struct req *rq, struct resp *rs, struct sg_err *err)
{
	(void)rs;
	return revoke_prefix(rq, false, err);
}

int h_leases_revoke_force(struct req *rq, struct resp *rs, struct sg_err *err)
{
	(void)rs;
	return revoke_prefix(rq, true, err);
}

int h_leases_tidy(struct req *rq, struct resp *rs, struct sg_err *err)
{
	uint64_t count = 0;

	if (lease_tidy(server_leases(rq->srv), &count, err) < 0)
		return -1;
	/* Vault's tidy runs in the background and says so; ours has finished. */
	resp_warn(rs, "Tidy operation completed: %llu expired lease records removed.", (unsigned long long)count);
	return 0;
}
