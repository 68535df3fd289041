#ifndef SG_SERVER_REGISTRY_H
#define SG_SERVER_REGISTRY_H

/*
 * A registry of mounts: what secrets-engine mounts (server/mount.c) and
 * auth-method mounts (server/auth_mounts.c) have in common. Each mount is
 * one JSON record in the store (key: the kind's key prefix + path) and an
 * entry in memory behind a rwlock. Entries are reference counted and
 * immutable once published: a tune publishes a new entry, so a request
 * keeps a consistent view of its mount until it ends, even across a
 * removal.
 *
 * An entry is the kind's public object (struct mount, struct auth_mount)
 * behind a header holding the record; the kind's fill() builds the public
 * object from the record, borrowing its strings.
 */

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "store/store.h"

#define REGISTRY_DESCRIPTION_MAX 1024
#define REGISTRY_RECORD_MAX (16u << 10)
#define REGISTRY_TTL_MAX ((int64_t)100 * 365 * 86400)
#define REGISTRY_SYSTEM_TTL ((int64_t)768 * 3600) /* Vault's system default and max lease TTL */

/* The stored record of a mount. */
struct mount_rec {
	char *path;        /* "pki", "a/b" (no slashes at either end) */
	char *type;
	char *description;
	char id[37];       /* UUID */
	char accessor[48]; /* "pki_1a2b3c4d", "auth_approle_1a2b3c4d" */
	int64_t default_lease_ttl, max_lease_ttl; /* 0 = system default */
	int64_t created;
};

struct registry_kind {
	enum store_table table;
	const char *key_prefix;      /* store key = key_prefix + path */
	const char *accessor_prefix; /* "" or "auth_" */
	const char *noun;            /* "mount", "auth mount": in error messages */
	size_t max;                  /* entries */
	size_t obj_size;             /* the public object */
	void (*fill)(void *obj, const struct mount_rec *r);
};

struct reg_entry;

struct registry {
	const struct registry_kind *kind;
	pthread_rwlock_t lock;    /* guards v/n */
	pthread_mutex_t write_mu; /* serialises add, remove and tune */
	struct reg_entry **v;
	size_t n;
};

void registry_init(struct registry *r, const struct registry_kind *kind);
/* Drops the registry's references (NULL-safe). */
void registry_clear(struct registry *r);
/* Loads every record of the kind from the store. */
int registry_load(struct registry *r, struct store *st, struct sg_err *err) SG_WUR;
size_t registry_count(struct registry *r);

/* The record behind a public object. */
const struct mount_rec *registry_rec(const void *obj);
void registry_unref(const void *obj);
/* Longest-prefix match of path, referenced; *sub is the path inside the mount. NULL when none. */
const void *registry_route(struct registry *r, const char *path, const char **sub);
/* Exact lookup, referenced. */
const void *registry_get(struct registry *r, const char *path);

/*
 * Path syntax: 1..max bytes of [A-Za-z0-9._-] segments separated by single
 * '/', no "." or ".." segment. SG_BAD_REQUEST otherwise.
 */
int registry_path_check(const char *path, size_t max, const char *noun, struct sg_err *err) SG_WUR;
/* SG_BAD_REQUEST when an explicit default exceeds the max (0 = system default, 768h). */
int registry_ttls_check(int64_t default_ttl, int64_t max_ttl, struct sg_err *err) SG_WUR;
/*
 * A TTL field of mount and tune bodies: integer seconds, a duration
 * string, "" or "system" (0 = system default). 1 when present, 0 when
 * absent, -1 on a bad value.
 */
int registry_ttl_parse(const json_t *obj, const char *key, int64_t *out, struct sg_err *err) SG_WUR;

/*
 * Creates and persists a mount (the path is checked by the caller).
 * SG_BAD_REQUEST "path is already in use at <p>/" when path equals, lies
 * under, or contains an existing mount.
 */
int registry_add(struct registry *r, struct store *st, const char *path, const char *type, const char *description,
                 int64_t default_ttl, int64_t max_ttl, struct sg_err *err) SG_WUR;

/*
 * Removes a mount: out of the registry first (no new request reaches it),
 * then purge(arg, obj, b) runs and may add deletions to b, then b with the
 * record's deletion is committed. On failure the mount is put back. On
 * success *removed (when not NULL) receives the removed object with a
 * reference the caller drops; 0 with *removed NULL when there was no such
 * mount (Vault: disabling an absent mount succeeds).
 */
typedef int (*registry_purge_fn)(void *arg, const void *obj, struct store_batch *b, struct sg_err *err);
int registry_remove(struct registry *r, struct store *st, const char *path, registry_purge_fn purge, void *arg,
                    const void **removed, struct sg_err *err) SG_WUR;

/* What a tune changes: each field when its has_* flag is set. */
struct mount_tune {
	bool has_default_ttl, has_max_ttl, has_description;
	int64_t default_ttl, max_ttl;
	const char *description;
};
/* The fields of a tune body (default_lease_ttl, max_lease_ttl, description). */
int registry_tune_parse(const json_t *body, struct mount_tune *tune, struct sg_err *err) SG_WUR;
/*
 * The fields of an enable body: type (required; borrowed), description
 * (borrowed, "" when absent) and config.{default,max}_lease_ttl.
 */
struct mount_spec {
	const char *type, *description;
	int64_t default_ttl, max_ttl;
};
int registry_spec_parse(const json_t *body, struct mount_spec *spec, struct sg_err *err) SG_WUR;
/* Publishes a tuned copy of the mount. 1 when there is no such mount (nothing set), 0 done, -1 error. */
int registry_tune(struct registry *r, struct store *st, const char *path, const struct mount_tune *tune,
                  struct sg_err *err) SG_WUR;

/* {"<path>/": one(obj), ...} for every mount. */
json_t *registry_to_json(struct registry *r, json_t *(*one)(const void *obj));

#endif
