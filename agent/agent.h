#ifndef SG_AGENT_H
#define SG_AGENT_H

/*
 * `sigil agent -config FILE`: logs in to a Sigil server (auto-auth), keeps
 * its token alive, and keeps a set of certificates fresh on disk for a
 * workload next to it, reloading the workload after each renewal. It talks
 * to the server only through the public HTTP API (cli/client.h).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"
#include "common/util.h"

#define AGENT_MAX_CONFIG_BYTES (256u << 10) /* config file */
#define AGENT_MAX_CERTS 32                  /* certificate templates */
#define AGENT_MAX_NAMES 100                 /* alt names / IP SANs / URI SANs per certificate */
#define AGENT_MAX_SECRET_BYTES 16384        /* token, role_id, secret_id and JWT files */
#define AGENT_MAX_PEM_BYTES (1u << 20)      /* a certificate file read back at start-up */
#define AGENT_MAX_PID_BYTES 64              /* a pid file */
#define AGENT_DEFAULT_FRACTION (2.0 / 3.0)  /* renew after this fraction of the lifetime */
#define AGENT_DEFAULT_JITTER 0.1            /* up to this fraction of the lifetime earlier */
#define AGENT_DEFAULT_BACKOFF_MIN 1         /* seconds */
#define AGENT_DEFAULT_BACKOFF_MAX 60        /* seconds */
#define AGENT_DEFAULT_ONESHOT_ATTEMPTS 5
#define AGENT_MAX_STAPLE_BYTES (64u << 10)  /* an OCSP answer fetched for ocsp_staple_file */
#define AGENT_STAPLE_DEFAULT_REFRESH 3600   /* seconds, for an answer without nextUpdate */
#define AGENT_STAPLE_MIN_REFRESH 5          /* seconds: never fetch more often than this */

enum agent_auth_method {
	AGENT_AUTH_TOKEN_FILE,
	AGENT_AUTH_APPROLE,
	AGENT_AUTH_KUBERNETES,
	AGENT_AUTH_CERT,
};

/* One certificate the agent keeps fresh. */
struct agent_cert_cfg {
	char *name;        /* for logs and health; defaults to the common name */
	char *mount;       /* PKI mount, default "pki" */
	char *role;
	char *common_name;
	struct sg_strlist alt_names;
	struct sg_strlist ip_sans;
	struct sg_strlist uri_sans;
	char *ttl;         /* passed through as the server parses it ("15m") */
	char *key_type;    /* rsa, ec, ed25519; NULL = the role's */
	int64_t key_bits;  /* 0 = the role's */
	char *cert_file;   /* leaf certificate */
	char *key_file;    /* private key */
	char *chain_file;  /* issuing CA chain (without the leaf) */
	char *bundle_file; /* leaf + chain + key in one file */
	int mode;          /* of cert_file and chain_file, default 0644 */
	int key_mode;      /* of key_file and bundle_file, default 0600 */
	uid_t uid;         /* owner of every written file, (uid_t)-1 = unchanged */
	gid_t gid;
	double renew_fraction;
	double jitter;
	char *reload_command; /* run with /bin/sh -c after each renewal */
	char *pid_file;       /* or: signal the process whose pid is in this file */
	int reload_signal;    /* default SIGHUP */
	bool revoke_on_shutdown;
	char *ocsp_staple_file; /* DER OCSP answer for the certificate (nginx ssl_stapling_file), kept fresh */
	char *ocsp_url;         /* responder; default the certificate's AIA, else <address>/v1/<mount>/ocsp */
};

struct agent_config {
	char *address; /* NULL: SIGIL_ADDR / VAULT_ADDR */
	char *ca_cert; /* NULL: SIGIL_CACERT / VAULT_CACERT */
	enum agent_auth_method method;
	char *mount;           /* auth mount path, default the method's name */
	char *token_file;      /* token_file */
	char *role_id_file;    /* approle */
	char *secret_id_file;  /* approle, optional (bind_secret_id=false roles) */
	bool remove_secret_id; /* delete the secret_id file after reading it */
	char *role;            /* kubernetes role; cert role name (optional) */
	char *jwt_file;        /* kubernetes: the service-account token */
	char *client_cert;     /* cert */
	char *client_key;
	char *sink_path;       /* token sink, optional */
	int sink_mode;         /* default 0600 */
	struct agent_cert_cfg *certs;
	size_t ncerts;
	char *health_listen;   /* "127.0.0.1:PORT", optional */
	char *status_file;     /* JSON status written after each change, optional */
	int64_t backoff_min;
	int64_t backoff_max;
	bool exit_after_auth;  /* one-shot: authenticate, write every certificate once, exit */
	int64_t oneshot_attempts;
};

/* Parses the JSON config text; on failure err says which key is wrong. */
struct agent_config *agent_config_parse(const char *text, size_t len, struct sg_err *err) SG_WUR;
struct agent_config *agent_config_load(const char *path, struct sg_err *err) SG_WUR;
void agent_config_free(struct agent_config *cfg);

/*
 * When to renew a certificate valid [not_before, not_after]: at
 * not_before + fraction * lifetime, minus u * jitter * lifetime (u in
 * [0,1), random in production) so a fleet started together spreads out;
 * never before not_before.
 */
int64_t agent_renew_time(int64_t not_before, int64_t not_after, double fraction, double jitter, double u);

/*
 * Delay before retry number `attempt` (0-based) after a failure:
 * min * 2^attempt capped at max, then scaled into [0.5, 1.0] by u so
 * retries from many agents do not synchronise. Always >= 1 second.
 */
int64_t agent_backoff(unsigned attempt, int64_t min, int64_t max, double u);

/*
 * Writes buf to path so that readers see either the old or the new file,
 * never a partial one: a temporary file in the same directory with the
 * final mode and owner, fsync, rename over path, fsync of the directory.
 * uid/gid (uid_t)-1 / (gid_t)-1 leave the owner as created.
 */
int agent_file_write(const char *path, const void *buf, size_t len, int mode, uid_t uid, gid_t gid,
                     struct sg_err *err) SG_WUR;

/* Reads a small secret file (token, role_id, JWT) with surrounding whitespace trimmed. */
char *agent_secret_read(const char *path, struct sg_err *err) SG_WUR;

/* NotBefore/NotAfter (unix seconds) and the colon-hex serial of the first certificate in pem. */
int agent_cert_info(const char *pem, size_t len, int64_t *not_before, int64_t *not_after, char **serial,
                    struct sg_err *err) SG_WUR;

/* ---- OCSP staples (agent/staple.c) ---- */

enum agent_staple_status {
	AGENT_STAPLE_GOOD = 1,
	AGENT_STAPLE_REVOKED,
};

/* A checked OCSP answer for one certificate. */
struct agent_staple {
	unsigned char *der;       /* the OCSPResponse as received */
	size_t len;
	enum agent_staple_status status;
	int reason;               /* revoked: CRLReason, -1 when absent */
	int64_t revoked_at;
	int64_t this_update, next_update; /* next_update 0: none given */
};
void agent_staple_clear(struct agent_staple *s);

/*
 * The OCSP request (DER; SHA-1 CertID, no nonce) for the first certificate
 * of leaf_pem, whose issuer is among the certificates of chain_pem (or the
 * other ones of leaf_pem); *url the first http(s) OCSP URL of its AIA, NULL
 * when none (url may be NULL).
 */
int agent_staple_request(const char *leaf_pem, const char *chain_pem, unsigned char **der, size_t *len, char **url,
                         struct sg_err *err) SG_WUR;

/*
 * Checks an OCSP answer as a TLS client would check the staple: a
 * successful response, signed by the certificate's issuer or by a
 * responder the issuer delegated (verified through the chain), about this
 * certificate, status good or revoked, and valid at `now`. On success out
 * holds a copy; on failure (SG_BAD_REQUEST naming the reason) nothing.
 */
int agent_staple_check(const unsigned char *der, size_t len, const char *leaf_pem, const char *chain_pem, int64_t now,
                       struct agent_staple *out, struct sg_err *err) SG_WUR;

/* When to fetch again: halfway between thisUpdate and nextUpdate, never sooner than AGENT_STAPLE_MIN_REFRESH. */
int64_t agent_staple_refresh_time(const struct agent_staple *s, int64_t now);

/* POSTs the request to url (RFC 6960 A.1) and returns the body of a 200 application/ocsp-response answer. */
int agent_staple_fetch(const char *url, const unsigned char *req, size_t req_len, const char *cacert, bool skip_verify,
                       unsigned char **der, size_t *len, struct sg_err *err) SG_WUR;

/* "HUP", "SIGHUP", "1" ... to a signal number; -1 when unknown. */
int agent_signal_parse(const char *s);

/* The `sigil agent` subcommand. Exit status 0, 1 (error) or 2 (usage). */
int agent_main(int argc, char **argv);

#endif
