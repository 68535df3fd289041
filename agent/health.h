#ifndef SG_AGENT_HEALTH_H
#define SG_AGENT_HEALTH_H

/*
 * The agent's health endpoint: a small libmicrohttpd listener answering
 * every GET with the latest status snapshot (JSON), 200 while every
 * certificate is valid, 503 otherwise. The agent's loop publishes the
 * snapshot; the listener thread only copies it under a mutex.
 */

#include <stdbool.h>

#include "common/err.h"

#define AGENT_HEALTH_MAX_SNAPSHOT (256u << 10)

struct agent_health;

struct agent_health *agent_health_new(void);
/* Starts listening on "HOST:PORT" (IPv4 literal or "localhost"). */
int agent_health_listen(struct agent_health *h, const char *addr, struct sg_err *err) SG_WUR;
/* Replaces the snapshot (copied). */
void agent_health_set(struct agent_health *h, const char *json, bool healthy);
/* Stops the listener and frees everything (NULL-safe). */
void agent_health_free(struct agent_health *h);

#endif
