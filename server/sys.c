/* The sys/ routes: health, seal status, mounts and tuning (compat/vault-api.md 0 and 1.11). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/audit.h"
#include "server/auth_mounts.h"
#include "server/internal.h"
#include "server/leases.h"
#include "server/server.h"
#include "server/sys_policy.h"

#define SYS_TYPE_MAX 64

/* Vault's ?<x>code= overrides: an integer HTTP status. */
static int health_code(const struct req *rq, const char *name, int def, int *out, struct sg_err *err)
{
	const char *v = req_query(rq, name);
	char *end;
	long n;

	*out = def;
	if (v == NULL || *v == '\0')
		return 0;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || *end != '\0' || n < 100 || n > 599)
		return sg_err_set(err, SG_BAD_REQUEST, "bad code: %s must be an HTTP status", name);
	*out = (int)n;
	return 0;
}

static int raw_json(struct resp *rs, json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);

	json_decref(j);
	if (s == NULL)
		sg_die("out of memory");
	resp_raw(rs, "application/json", s, strlen(s));
	free(s);
	return 0;
}

/*
 * GET|HEAD sys/health. This server is always initialized, unsealed and
 * active, so only activecode changes the answer; the other code arguments
 * are still checked so a typo is reported as Vault would.
 */
static int h_health_get(struct req *rq, struct resp *rs, struct sg_err *err)
{
	static const char *const other[] = {"standbycode",       "drsecondarycode", "performancestandbycode",
	                                    "sealedcode",        "uninitcode",      "removedcode"};
	struct server *s = rq->srv;
	int code, ignored;

	if (health_code(rq, "activecode", 200, &code, err) != 0)
		return -1;
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
		if (health_code(rq, other[i], 200, &ignored, err) != 0)
			return -1;
	rs->status = code;
	return raw_json(rs, json_pack("{s:b, s:b, s:b, s:b, s:s, s:s, s:I, s:s, s:b, s:s, s:s}", "initialized", 1,
	                              "sealed", 0, "standby", 0, "performance_standby", 0,
	                              "replication_performance_mode", "disabled", "replication_dr_mode", "disabled",
	                              "server_time_utc", (json_int_t)sg_now(), "version", SIGIL_VERSION, "enterprise",
	                              0, "cluster_name", s->cluster_name, "cluster_id", s->cluster_id));
}

static int h_seal_status_get(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct server *s = rq->srv;

	(void)err;
	return raw_json(rs, json_pack("{s:s, s:b, s:b, s:i, s:i, s:i, s:s, s:s, s:s, s:b, s:s, s:s, s:b, s:s}", "type",
	                              "shamir", "initialized", 1, "sealed", 0, "t", 1, "n", 1, "progress", 0, "nonce",
	                              "", "version", SIGIL_VERSION, "build_date", "", "migration", 0, "cluster_name",
	                              s->cluster_name, "cluster_id", s->cluster_id, "recovery_seal", 0,
	                              "storage_type", "lmdb"));
}

static int h_init_get(struct req *rq, struct resp *rs, struct sg_err *err)
{
	(void)rq;
	(void)err;
	return raw_json(rs, json_pack("{s:b}", "initialized", 1));
}

static int h_mounts_list(struct req *rq, struct resp *rs, struct sg_err *err)
{
	(void)err;
	resp_data(rs, mount_table_to_json(&rq->srv->mounts));
	return 0;
}

static int h_mount_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	const struct mount *m = mount_table_get(&rq->srv->mounts, req_param(rq, "path"));

	if (m == NULL)
		return sg_err_set(err, SG_BAD_REQUEST, "no mount at \"%s/\"", req_param(rq, "path"));
	resp_data(rs, mount_to_json(m));
	mount_unref(m);
	return 0;
}

static int h_mount_create(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct mount_spec sp;

	(void)rs;
	if (registry_spec_parse(rq->body, &sp, err) != 0)
		return -1;
	if (strcmp(sp.type, "pki") != 0)
		return sg_err_set(err, SG_BAD_REQUEST, "unsupported secrets engine type \"%.*s\": only \"pki\" is available",
		                  SYS_TYPE_MAX, sp.type);
	return mount_table_add(&rq->srv->mounts, rq->srv->st, req_param(rq, "path"), sp.type, sp.description,
	                       sp.default_ttl, sp.max_ttl, err);
}

static int h_mount_delete(struct req *rq, struct resp *rs, struct sg_err *err)
{
	const char *path = req_param(rq, "path");
	uint64_t count = 0;

	(void)rs;
	if (mount_table_remove(&rq->srv->mounts, rq->srv->st, rq->srv->ca, path, err) != 0)
		return -1;
	/*
	 * As Vault, a mount's leases go with it. Its certificates are gone, so
	 * each revocation finds nothing to mark; force drops whatever remains.
	 * Mounts never nest, so the prefix is this mount's alone.
	 */
	return lease_path_valid(path) ? lease_revoke_prefix(server_leases(rq->srv), path, true, &count, err) : 0;
}

static int h_mount_tune_read(struct req *rq, struct resp *rs, struct sg_err *err)
{
	const struct mount *m = mount_table_get(&rq->srv->mounts, req_param(rq, "path"));

	if (m == NULL)
		return sg_err_set(err, SG_BAD_REQUEST, "cannot fetch sysview for path \"%s/\"", req_param(rq, "path"));
	/* Vault reports the effective TTLs here, system defaults included. */
	resp_data(rs, json_pack("{s:s, s:I, s:I, s:b}", "description", m->description, "default_lease_ttl",
	                        (json_int_t)m->ca.default_ttl, "max_lease_ttl", (json_int_t)m->ca.max_ttl,
	                        "force_no_cache", 0));
	mount_unref(m);
	return 0;
}

static int h_mount_tune_write(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct mount_tune tune;

	(void)rs;
	if (registry_tune_parse(rq->body, &tune, err) != 0)
		return -1;
	return mount_table_tune(&rq->srv->mounts, rq->srv->st, req_param(rq, "path"), &tune, err);
}

/* consul-template asks this for KV version detection; 404 means "not KV v2", which is right. */
static int h_ui_mounts_get(struct req *rq, struct resp *rs, struct sg_err *err)
{
	(void)rs;
	return sg_err_set(err, SG_NOT_FOUND, "no KV mount at \"%.*s/\"", MOUNT_PATH_MAX, req_param(rq, "path"));
}

/* Order matters: the tune routes come before the plain mount path they overlap. */
const struct route sys_routes[] = {
	{"health", HTTP_GET, h_health_get, ROUTE_AUTH_NONE, false},
	{"seal-status", HTTP_GET, h_seal_status_get, ROUTE_AUTH_NONE, false},
	{"init", HTTP_GET, h_init_get, ROUTE_AUTH_NONE, false},
	{"mounts", HTTP_GET, h_mounts_list, ROUTE_AUTH_TOKEN, false},
	{"mounts/*path/tune", HTTP_GET, h_mount_tune_read, ROUTE_AUTH_TOKEN, false},
	{"mounts/*path/tune", HTTP_POST, h_mount_tune_write, ROUTE_AUTH_TOKEN, false},
	{"mounts/*path", HTTP_GET, h_mount_read, ROUTE_AUTH_TOKEN, false},
	{"mounts/*path", HTTP_POST, h_mount_create, ROUTE_AUTH_TOKEN, false},
	{"mounts/*path", HTTP_DELETE, h_mount_delete, ROUTE_AUTH_TOKEN, false},
	{"internal/ui/mounts/*path", HTTP_GET, h_ui_mounts_get, ROUTE_AUTH_NONE, false},
	/* ACL policies and capabilities (server/sys_policy.c); "policy" is Vault's older form. */
	{"policy", HTTP_GET | HTTP_LIST, h_sys_policy_list, ROUTE_AUTH_TOKEN, false},
	{"policy/:name", HTTP_GET, h_sys_policy_read, ROUTE_AUTH_TOKEN, false},
	{"policy/:name", HTTP_POST, h_sys_policy_write, ROUTE_AUTH_TOKEN, false},
	{"policy/:name", HTTP_DELETE, h_sys_policy_delete, ROUTE_AUTH_TOKEN, false},
	{"policies/acl", HTTP_LIST, h_sys_policies_acl_list, ROUTE_AUTH_TOKEN, false},
	{"policies/acl/:name", HTTP_GET, h_sys_policies_acl_read, ROUTE_AUTH_TOKEN, false},
	{"policies/acl/:name", HTTP_POST, h_sys_policies_acl_write, ROUTE_AUTH_TOKEN, false},
	{"policies/acl/:name", HTTP_DELETE, h_sys_policies_acl_delete, ROUTE_AUTH_TOKEN, false},
	{"capabilities-self", HTTP_POST, h_sys_capabilities_self, ROUTE_AUTH_TOKEN, false},
	{"capabilities", HTTP_POST, h_sys_capabilities, ROUTE_AUTH_TOKEN, false},
	{"capabilities-accessor", HTTP_POST, h_sys_capabilities_accessor, ROUTE_AUTH_TOKEN, false},
	/* Auth methods (server/auth_mounts.c); Vault makes every sys/auth/:path root-protected. */
	{"auth", HTTP_GET, h_auth_mounts_list, ROUTE_AUTH_TOKEN, false},
	{"auth/*path/tune", HTTP_GET, h_auth_mount_tune_read, ROUTE_AUTH_TOKEN, true},
	{"auth/*path/tune", HTTP_POST, h_auth_mount_tune_write, ROUTE_AUTH_TOKEN, true},
	{"auth/*path", HTTP_GET, h_auth_mount_read, ROUTE_AUTH_TOKEN, true},
	{"auth/*path", HTTP_POST, h_auth_mount_enable, ROUTE_AUTH_TOKEN, true},
	{"auth/*path", HTTP_DELETE, h_auth_mount_disable, ROUTE_AUTH_TOKEN, true},
	/* Leases (server/sys_leases.c); Vault root-protects listing and the prefix revocations. */
	{"leases/lookup", HTTP_POST, h_leases_lookup, ROUTE_AUTH_TOKEN, false},
	{"leases/lookup", HTTP_LIST, h_leases_list, ROUTE_AUTH_TOKEN, true},
	{"leases/lookup/*prefix", HTTP_LIST, h_leases_list, ROUTE_AUTH_TOKEN, true},
	{"leases/renew", HTTP_POST, h_leases_renew, ROUTE_AUTH_TOKEN, false},
	{"leases/renew/*url_lease_id", HTTP_POST, h_leases_renew, ROUTE_AUTH_TOKEN, false},
	{"leases/revoke", HTTP_POST, h_leases_revoke, ROUTE_AUTH_TOKEN, false},
	{"leases/revoke/*url_lease_id", HTTP_POST, h_leases_revoke, ROUTE_AUTH_TOKEN, false},
	{"leases/revoke-prefix/*prefix", HTTP_POST, h_leases_revoke_prefix, ROUTE_AUTH_TOKEN, true},
	{"leases/revoke-force/*prefix", HTTP_POST, h_leases_revoke_force, ROUTE_AUTH_TOKEN, true},
	{"leases/tidy", HTTP_POST, h_leases_tidy, ROUTE_AUTH_TOKEN, false},
	/* Vault's older aliases (OpenBao removed them). */
	{"renew", HTTP_POST, h_leases_renew, ROUTE_AUTH_TOKEN, false},
	{"renew/*url_lease_id", HTTP_POST, h_leases_renew, ROUTE_AUTH_TOKEN, false},
	{"revoke", HTTP_POST, h_leases_revoke, ROUTE_AUTH_TOKEN, false},
	{"revoke/*url_lease_id", HTTP_POST, h_leases_revoke, ROUTE_AUTH_TOKEN, false},
	{"revoke-prefix/*prefix", HTTP_POST, h_leases_revoke_prefix, ROUTE_AUTH_TOKEN, true},
	{"revoke-force/*prefix", HTTP_POST, h_leases_revoke_force, ROUTE_AUTH_TOKEN, true},
	/* Audit devices (server/audit.c); Vault root-protects sys/audit and its subpaths, not audit-hash. */
	{"audit", HTTP_GET, h_audit_list, ROUTE_AUTH_TOKEN, true},
	{"audit/*path", HTTP_POST, h_audit_enable, ROUTE_AUTH_TOKEN, true},
	{"audit/*path", HTTP_DELETE, h_audit_disable, ROUTE_AUTH_TOKEN, true},
	{"audit-hash/*path", HTTP_POST, h_audit_hash, ROUTE_AUTH_TOKEN, false},
};
const size_t sys_routes_n = sizeof(sys_routes) / sizeof(sys_routes[0]);
