#ifndef SG_SERVER_AUDIT_H
#define SG_SERVER_AUDIT_H

/*
 * Audit devices (Vault's sys/audit) and the tamper-evident audit log
 * (DESIGN.md rule 6: audit before answer, fail closed).
 *
 * Every audited request gives two JSON lines, "request" (written before the
 * handler runs) and "response" (written before the client sees the answer),
 * in Vault's shape: time, type, auth, request, response, error. Secrets
 * (tokens, secret ids, JWTs, private keys, CSRs) are written as
 * "hmac-sha256:<hex>" keyed with the device's salt, a random key generated
 * per device and kept in the store; sys/audit-hash/:path computes the same
 * HMAC for a known value.
 *
 * The chain: each line ends with
 *   ,"seq":N,"prev_hash":"sha256:<hex of line N-1's hash>","hash":"sha256:<hex>"}
 * where hash is SHA-256 of the line's bytes up to (not including)
 * ',"hash":'. Line 1 has seq 1 and a prev_hash of 64 zeros. An edited line
 * fails its own hash; a deleted, inserted or reordered line breaks seq and
 * prev_hash. A rewrite of the whole file, or the removal of its last lines,
 * is caught against the head (seq and hash) the server reports in
 * GET sys/audit and records in the store (checkpoints), which
 * `sigil audit verify -expect-seq N -expect-hash H` compares.
 *
 * Durability: each line is one write() on an O_APPEND descriptor. Threads
 * waiting for durability share fdatasync calls (group sync): one thread
 * syncs everything written so far while the others wait for it. An fsync
 * failure marks the device dead (the kernel may have dropped lines).
 *
 * Fail closed: with one or more devices enabled, a line that no device could
 * make durable fails the request (the router answers 500 instead).
 */

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/err.h"
#include "server/http.h"
#include "store/store.h"

#define AUDIT_MAX_DEVICES 16
#define AUDIT_PATH_MAX 128            /* device path ("file", "team/a") */
#define AUDIT_FILE_PATH_MAX 4096
#define AUDIT_DESCRIPTION_MAX 1024
#define AUDIT_SALT_BYTES 32
#define AUDIT_MAX_LINE_BYTES (2u << 20) /* a longer entry has its data elided */
#define AUDIT_MAX_CLEAR_STRING (16u << 10) /* longer data strings are HMAC-ed, not copied */
#define AUDIT_HMAC_PREFIX "hmac-sha256:"
#define AUDIT_HASH_PREFIX "sha256:"
#define AUDIT_HMAC_STR_LEN (sizeof(AUDIT_HMAC_PREFIX) - 1 + 64)
#define AUDIT_HASH_STR_LEN (sizeof(AUDIT_HASH_PREFIX) - 1 + 64)
#define AUDIT_CHECKPOINT_SECONDS 5    /* how often the synced chain head is stored */

struct auth_token;
struct audit;

/* What the router knows of one request and (for responses) its answer. All borrowed. */
struct audit_entry {
	const char *request_id;
	const char *operation;        /* "read", "list", "update", "delete", "patch" */
	const char *path;             /* without "/v1/" */
	const char *remote_addr;      /* "ip:port" or "[ip6]:port" */
	const char *mount_type;       /* "pki", "system", "token" ...; NULL when unknown */
	const char *mount_point;      /* "pki/"; NULL when none */
	const char *client_token;     /* the token as presented; NULL when none */
	const struct auth_token *tok; /* the authenticated token; NULL when none */
	const json_t *data;           /* request body object; NULL when none */
	const json_t *query;          /* query arguments; NULL when none */
	/* Responses only. */
	int status;
	const struct resp *rs;        /* the handler's answer; NULL for errors */
	const char *error;            /* the error detail; NULL or "" when none */
};

/* The router's audit state of one request (server/http.c keeps one per request). */
struct audit_req {
	struct audit_entry e;
	char mount_point[AUDIT_PATH_MAX + 264]; /* "pki/", "auth/approle/" */
	bool logged;                  /* the request line went out (or no device was enabled then) */
};

/* Loads the enabled devices from the store and opens them; starts the checkpoint thread. */
int audit_new(struct store *st, struct audit **out, struct sg_err *err) SG_WUR;
/* Syncs and checkpoints every device, then frees. No audit_log_* call may be running. NULL-safe. */
void audit_free(struct audit *a);
size_t audit_device_count(struct audit *a);
/*
 * One pass of the checkpoint thread now: reopens files that were moved or
 * deleted, stores each device's synced chain head.
 */
void audit_checkpoint(struct audit *a);
/* Lines written and fdatasync calls made so far, over all devices (group sync makes syncs < lines). */
void audit_stats(struct audit *a, uint64_t *lines, uint64_t *syncs);

/* Vault's non-audited paths (sys/health, sys/seal-status, sys/init). */
bool audit_path_exempt(const char *path);

/*
 * Writes the request line to every device. sync: wait until it is durable
 * (the router asks for it before a handler with effects runs). 0 when no
 * device is enabled or at least one recorded the line; -1 (SG_INTERNAL)
 * when none could.
 */
int audit_log_request(struct audit *a, const struct audit_entry *e, bool sync, struct sg_err *err) SG_WUR;
/* Writes the response line to every device and waits until it is durable. As audit_log_request. */
int audit_log_response(struct audit *a, const struct audit_entry *e, struct sg_err *err) SG_WUR;

/*
 * Enables a device at path from Vault's body {type, description, options
 * {file_path, log_raw, hmac_accessor, mode, format}, local}. The device's
 * first line is `first` as a request entry (Vault's test message: a device
 * that cannot write is refused with SG_BAD_REQUEST). Persisted in the store.
 */
int audit_device_enable(struct audit *a, const char *path, const json_t *body, const struct audit_entry *first,
                        struct sg_err *err) SG_WUR;
/* Disables the device at path (absent is not an error, as Vault). */
int audit_device_disable(struct audit *a, const char *path, struct sg_err *err) SG_WUR;
/*
 * Vault's GET sys/audit data: {"<path>/": {type, description, options, local, path, chain}}, chain being
 * {seq, hash (of line seq), synced_seq, fsyncs, error (when failing)}.
 */
json_t *audit_devices_json(struct audit *a);
/* "hmac-sha256:<hex>" of input with the device's salt into out; SG_BAD_REQUEST for an unknown device. */
int audit_hash(struct audit *a, const char *path, const char *input, size_t len, char out[AUDIT_HMAC_STR_LEN + 1],
               struct sg_err *err) SG_WUR;

/* ---- Route handlers (sys_routes) ---- */
int h_audit_list(struct req *rq, struct resp *rs, struct sg_err *err);
int h_audit_enable(struct req *rq, struct resp *rs, struct sg_err *err);
int h_audit_disable(struct req *rq, struct resp *rs, struct sg_err *err);
int h_audit_hash(struct req *rq, struct resp *rs, struct sg_err *err);

/* ---- Verification (sigil audit verify) ---- */
struct audit_verify_opts {
	uint64_t expect_seq;          /* 0 = none: the chain must reach this seq */
	const char *expect_hash;      /* NULL = none: "sha256:<hex>" of the line with expect_seq */
	bool continues;               /* the file continues a rotated one: its first line may have any seq */
};
struct audit_verify_result {
	bool ok;
	uint64_t lines;               /* lines read (up to the first broken one) */
	uint64_t last_seq;            /* seq of the last good line */
	char head[AUDIT_HASH_STR_LEN + 1]; /* hash of the last good line */
	uint64_t bad_line;            /* first broken line (1-based), 0 when ok */
	uint64_t first_seq;           /* with continues: the first line's seq */
	char first_prev[AUDIT_HASH_STR_LEN + 1]; /* and its prev_hash */
	char reason[320];
};
/* Reads the chain from f. 0 when f could be read to its end or first broken line (see r->ok); -1 on I/O errors. */
int audit_verify_stream(FILE *f, const struct audit_verify_opts *o, struct audit_verify_result *r,
                        struct sg_err *err) SG_WUR;
int audit_verify_file(const char *path, const struct audit_verify_opts *o, struct audit_verify_result *r,
                      struct sg_err *err) SG_WUR;
/* `sigil audit verify [-expect-seq N] [-expect-hash sha256:HEX] FILE`; argv[0] is "audit". Exit 0, 1 (broken), 2. */
int audit_cli_main(int argc, char **argv);

#endif
