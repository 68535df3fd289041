#ifndef SG_SERVER_MOUNT_H
#define SG_SERVER_MOUNT_H

/*
 * The mount registry: secrets-engine mounts persisted in STORE_MOUNTS
 * (key: the mount path, value: a JSON record) and held in memory behind a
 * rwlock. Entries are reference counted and immutable once published: a
 * tune publishes a new entry, so a request keeps a consistent view of its
 * mount (and its ca_mount TTLs) until it ends, even across an unmount.
 */

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "ca/ca.h"
#include "common/err.h"
#include "server/http.h"
#include "store/store.h"

#define MOUNT_MAX 1024
#define MOUNT_PATH_MAX 256
#define MOUNT_DESCRIPTION_MAX 1024
#define MOUNT_RECORD_MAX (16u << 10)
#define MOUNT_SYSTEM_TTL ((int64_t)768 * 3600) /* Vault's system default and max lease TTL */

struct mount_entry;

struct mount_table {
	pthread_rwlock_t lock;       /* guards v/n */
	pthread_mutex_t write_mu;    /* serialises mount, unmount and tune */
	struct mount_entry **v;
	size_t n;
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
 * Checks a mount path: 1..MOUNT_PATH_MAX bytes of [A-Za-z0-9._-] segments
 * separated by single '/', no "." or ".." segment, not under a reserved
 * prefix (sys, auth, identity, cubbyhole). SG_BAD_REQUEST otherwise.
 */
int mount_path_check(const char *path, struct sg_err *err) SG_WUR;

/*
 * A TTL field of sys/mounts and tune bodies: integer seconds, a duration
 * string, "" or "system" (0 = system default). 1 when present, 0 when
 * absent, -1 on a bad value.
 */
int mount_ttl_parse(const json_t *obj, const char *key, int64_t *out, struct sg_err *err) SG_WUR;

/* SG_BAD_REQUEST when an explicit default exceeds the max (0 = system default, 768h). */
int mount_ttls_check(int64_t default_ttl, int64_t max_ttl, struct sg_err *err) SG_WUR;

/*
 * Creates and persists a mount. SG_BAD_REQUEST "path is already in use at
 * <p>/" when path equals, lies under, or contains an existing mount.
 */
int mount_table_add(struct mount_table *t, struct store *st, const char *path, const char *type,
                    const char *description, int64_t default_ttl, int64_t max_ttl, struct sg_err *err) SG_WUR;

/* Removes a mount: out of the registry, its records purged (ca_mount_purge), then its record. */
int mount_table_remove(struct mount_table *t, struct store *st, struct ca *ca, const char *path,
                       struct sg_err *err) SG_WUR;

/*
 * Tunes a mount. Each of default_ttl / max_ttl / description is applied
 * when its has_* flag is set. SG_NOT_FOUND-style SG_BAD_REQUEST when the
 * mount does not exist.
 */
struct mount_tune {
	bool has_default_ttl, has_max_ttl, has_description;
	int64_t default_ttl, max_ttl;
	const char *description;
};
int mount_table_tune(struct mount_table *t, struct store *st, const char *path, const struct mount_tune *tune,
                     struct sg_err *err) SG_WUR;

/* Vault's sys/mounts entry for one mount: {type, description, accessor, uuid, config{...}, ...}. */
json_t *mount_to_json(const struct mount *m);
/* {"<path>/": entry, ...} for every mount. */
json_t *mount_table_to_json(struct mount_table *t);

#endif
