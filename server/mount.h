#ifndef SG_SERVER_MOUNT_H
#define SG_SERVER_MOUNT_H

/*
 * Secrets-engine mounts: a registry (server/registry.h) persisted in
 * STORE_MOUNTS (key: the mount path), whose public object is struct mount
 * with its ca_mount view (TTL bounds) fixed for the life of the entry.
 */

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "ca/ca.h"
#include "common/err.h"
#include "server/http.h"
#include "server/registry.h"
#include "store/store.h"

#define MOUNT_MAX 1024
#define MOUNT_PATH_MAX 256
#define MOUNT_SYSTEM_TTL REGISTRY_SYSTEM_TTL

struct mount_table {
	struct registry r;
};

void mount_table_init(struct mount_table *t);
/* Drops the table's references (NULL-safe). */
void mount_table_clear(struct mount_table *t);
/* Loads every mount record of the store. */
int mount_table_load(struct mount_table *t, struct store *st, struct sg_err *err) SG_WUR;
size_t mount_table_count(struct mount_table *t);

/*
 * The mount with the longest path prefix of path, with a reference the
 * caller drops with mount_unref; *sub is the path inside the mount. NULL
 * when no mount matches.
 */
const struct mount *mount_table_route(struct mount_table *t, const char *path, const char **sub);
/* Exact lookup, with a reference. */
const struct mount *mount_table_get(struct mount_table *t, const char *path);
void mount_unref(const struct mount *m);
/* The accessor ("pki_1a2b3c4d") of a mount entry. */
const char *mount_accessor(const struct mount *m);

/*
 * Checks a mount path: registry_path_check with MOUNT_PATH_MAX, and not
 * under a reserved prefix (sys, auth, identity, cubbyhole). SG_BAD_REQUEST
 * otherwise.
 */
int mount_path_check(const char *path, struct sg_err *err) SG_WUR;

/*
 * Creates and persists a mount. SG_BAD_REQUEST "path is already in use at
 * <p>/" when path equals, lies under, or contains an existing mount.
 */
int mount_table_add(struct mount_table *t, struct store *st, const char *path, const char *type,
                    const char *description, int64_t default_ttl, int64_t max_ttl, struct sg_err *err) SG_WUR;

/* Removes a mount: out of the registry, its records purged (ca_mount_purge), then its record. */
int mount_table_remove(struct mount_table *t, struct store *st, struct ca *ca, const char *path,
                       struct sg_err *err) SG_WUR;

/* Tunes a mount (struct mount_tune in server/registry.h). SG_BAD_REQUEST when the mount does not exist. */
int mount_table_tune(struct mount_table *t, struct store *st, const char *path, const struct mount_tune *tune,
                     struct sg_err *err) SG_WUR;

/* Vault's sys/mounts entry for one mount: {type, description, accessor, uuid, config{...}, ...}. */
json_t *mount_to_json(const struct mount *m);
/* {"<path>/": entry, ...} for every mount. */
json_t *mount_table_to_json(struct mount_table *t);

#endif
