#ifndef SG_SERVER_LOG_H
#define SG_SERVER_LOG_H

/*
 * Structured log: one JSON object per line on stderr with "time", "level",
 * "msg" and the caller's fields. Only the edges log (STYLE.md): never a
 * token, a key or a request body; OpenSSL internals (sg_err.log) go here
 * and never to a client.
 */

#include <jansson.h>

enum server_log_level {
	SERVER_LOG_DEBUG,
	SERVER_LOG_INFO,
	SERVER_LOG_WARN,
	SERVER_LOG_ERROR,
};

/* "debug" | "info" | "warn" | "error" (also "warning", "err"); -1 otherwise. */
int server_log_level_parse(const char *s, enum server_log_level *out);
void server_log_set_level(enum server_log_level lvl);
int server_log_enabled(enum server_log_level lvl);
/* Writes one line. fields (an object or NULL) is stolen. */
void server_log(enum server_log_level lvl, const char *msg, json_t *fields);
/* The access log line of one request ("msg":"request"), formatted without jansson: it is on every request's path. */
struct server_log_request {
	const char *method, *path;
	int status;
	double duration_ms;
	const char *request_id, *remote_addr;
	const char *error, *code; /* NULL on success */
};
void server_log_request(const struct server_log_request *r);
/* A line whose message is formatted; no fields. */
void server_logf(enum server_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
