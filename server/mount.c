#include "server/mount.h"

#include <string.h>

static const char *const reserved_prefixes[] = {"sys", "auth", "identity", "cubbyhole"};

static int64_t eff(int64_t ttl)
{
	return ttl > 0 ? ttl : MOUNT_SYSTEM_TTL;
}

static void fill(void *obj, const struct mount_rec *r)
{
	struct mount *m = obj;

	m->path = r->path;
	m->type = r->type;
	m->description = r->description;
	memcpy(m->id, r->id, sizeof(m->id));
	m->default_lease_ttl = r->default_lease_ttl;
	m->max_lease_ttl = r->max_lease_ttl;
	m->ca.id = m->id;
	m->ca.path = m->path;
	m->ca.max_ttl = eff(r->max_lease_ttl);
	m->ca.default_ttl = eff(r->default_lease_ttl) < m->ca.max_ttl ? eff(r->default_lease_ttl) : m->ca.max_ttl;
}

static const struct registry_kind mount_kind = {
	.table = STORE_MOUNTS,
	.key_prefix = "",
	.accessor_prefix = "",
	.noun = "mount",
	.max = MOUNT_MAX,
	.obj_size = sizeof(struct mount),
	.fill = fill,
};

void mount_table_init(struct mount_table *t)
{
	registry_init(&t->r, &mount_kind);
}

void mount_table_clear(struct mount_table *t)
{
	if (t != NULL)
		registry_clear(&t->r);
}

int mount_table_load(struct mount_table *t, struct store *st, struct sg_err *err)
{
	return registry_load(&t->r, st, err);
}

size_t mount_table_count(struct mount_table *t)
{
	return registry_count(&t->r);
}

const struct mount *mount_table_route(struct mount_table *t, const char *path, const char **sub)
{
	return registry_route(&t->r, path, sub);
}

const struct mount *mount_table_get(struct mount_table *t, const char *path)
{
	return registry_get(&t->r, path);
}

void mount_unref(const struct mount *m)
{
	registry_unref(m);
}

const char *mount_accessor(const struct mount *m)
{
	return registry_rec(m)->accessor;
}

int mount_path_check(const char *path, struct sg_err *err)
{
	if (registry_path_check(path, MOUNT_PATH_MAX, "mount", err) != 0)
		return -1;
	for (size_t i = 0; i < sizeof(reserved_prefixes) / sizeof(reserved_prefixes[0]); i++) {
		size_t n = strlen(reserved_prefixes[i]);

		if (strncmp(path, reserved_prefixes[i], n) == 0 && (path[n] == '\0' || path[n] == '/'))
			return sg_err_set(err, SG_BAD_REQUEST, "cannot mount at \"%s/\": the \"%s/\" path is reserved",
			                  path, reserved_prefixes[i]);
	}
	return 0;
}

int mount_table_add(struct mount_table *t, struct store *st, const char *path, const char *type,
                    const char *description, int64_t default_ttl, int64_t max_ttl, struct sg_err *err)
{
	if (mount_path_check(path, err) != 0)
		return -1;
	return registry_add(&t->r, st, path, type, description, default_ttl, max_ttl, err);
}

static int purge(void *arg, const void *obj, struct store_batch *b, struct sg_err *err)
{
	const struct mount *m = obj;

	(void)b;
	return ca_mount_purge(arg, &m->ca, err);
}

int mount_table_remove(struct mount_table *t, struct store *st, struct ca *ca, const char *path, struct sg_err *err)
{
	const void *gone = NULL;

	if (registry_remove(&t->r, st, path, purge, ca, &gone, err) != 0)
		return -1;
	if (gone != NULL) {
		ca_mount_forget(ca, ((const struct mount *)gone)->id);
		registry_unref(gone);
	}
	return 0;
}

int mount_table_tune(struct mount_table *t, struct store *st, const char *path, const struct mount_tune *tune,
                     struct sg_err *err)
{
	int rc = registry_tune(&t->r, st, path, tune, err);

	if (rc == 1)
		return sg_err_set(err, SG_BAD_REQUEST, "no mount at \"%.*s/\"", MOUNT_PATH_MAX, path);
	return rc;
}

json_t *mount_to_json(const struct mount *m)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:{s:I, s:I, s:b}, s:n, s:b, s:b, s:b, s:s, s:s, s:s}", "type",
	                 m->type, "description", m->description, "accessor", mount_accessor(m), "uuid", m->id, "config",
	                 "default_lease_ttl", (json_int_t)m->default_lease_ttl, "max_lease_ttl",
	                 (json_int_t)m->max_lease_ttl, "force_no_cache", 0, "options", "local", 0, "seal_wrap", 0,
	                 "external_entropy_access", 0, "plugin_version", "", "running_plugin_version", "",
	                 "running_sha256", "");
}

static json_t *one_json(const void *obj)
{
	return mount_to_json(obj);
}

json_t *mount_table_to_json(struct mount_table *t)
{
	return registry_to_json(&t->r, one_json);
}
