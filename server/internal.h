#ifndef SG_SERVER_INTERNAL_H
#define SG_SERVER_INTERNAL_H

/*
 * The server object, shared by the files of server/ (never by handlers of
 * other engines: they use the accessors of http.h).
 */

#include <stdatomic.h>
#include <stdbool.h>

#include "auth/token.h"
#include "server/config.h"
#include "server/http.h"
#include "server/mount.h"

struct MHD_Daemon;
struct http_pool;
struct auth_mounts;
struct auth_acl_store;
struct audit;
struct acme_validator;

struct server {
	struct server_config cfg;
	bool dev;
	struct store *st;
	struct ca *ca;
	struct crl *crl;            /* crl/: CRLs, config/crl, tidy (the revoke hook's owner) */
	struct ocsp *ocsp;          /* crl/ocsp: the OCSP responder (a listener of crl's revoke hook) */
	struct mount_table mounts;
	struct lease_mgr *leases;   /* lease/: certificate leases ("pki-cert" registered at start) */
	struct auth_tokens *tokens; /* auth/token: the token store */
	char cluster_id[37];
	char cluster_name[64];
	struct MHD_Daemon *daemon;
	struct http_pool *pool;     /* server/http.c: the workers that run handlers (cfg.threads) */
	atomic_long inflight;       /* requests between first byte and completion */
	struct auth_mounts *auth_mounts; /* sys/auth: enabled auth methods */
	struct audit *audit;        /* sys/audit: audit devices (server/audit.h) */
	struct auth_acl_store *acl; /* ACL policies, checked by the router on every token request */
	struct acme_validator *acme_validator; /* acme/: challenge validation threads */
};

/* Starts libmicrohttpd on the configured address (TLS unless disabled). */
int http_start(struct server *s, struct sg_err *err) SG_WUR;
/* Stops accepting, waits up to grace_ms for requests in flight, then stops the daemon. */
void http_stop(struct server *s, int grace_ms);

/* Go flag-package style parsing: -name, --name, -name=value, -name value (not for booleans). */
struct server_flag {
	const char *name;
	bool is_bool;
	const char **sval;   /* string flags: borrowed from argv */
	bool *bval;          /* boolean flags */
};
/* Stops at "--" or the first non-flag argument; *next is its index. SG_BAD_REQUEST naming the flag. */
int server_flags_parse(int argc, char **argv, const struct server_flag *flags, size_t nflags, int *next,
                       struct sg_err *err) SG_WUR;

#endif
