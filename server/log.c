#include "server/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/err.h"
#include "server/json.h"

#define LOG_LINE_MAX (16u << 10) /* a longer line is cut: logs must not grow with input */

static atomic_int min_level = SERVER_LOG_INFO;
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int server_log_level_parse(const char *s, enum server_log_level *out)
{
	static const struct {
		const char *name;
		enum server_log_level lvl;
	} names[] = {{"debug", SERVER_LOG_DEBUG}, {"info", SERVER_LOG_INFO},   {"warn", SERVER_LOG_WARN},
	             {"warning", SERVER_LOG_WARN}, {"error", SERVER_LOG_ERROR}, {"err", SERVER_LOG_ERROR}};

	if (s == NULL)
		return -1;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcasecmp(s, names[i].name) == 0) {
			*out = names[i].lvl;
			return 0;
		}
	}
	return -1;
}

void server_log_set_level(enum server_log_level lvl)
{
	atomic_store(&min_level, (int)lvl);
}

int server_log_enabled(enum server_log_level lvl)
{
	return (int)lvl >= atomic_load(&min_level);
}

static void now_rfc3339_ms(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;

	/* Wall time on purpose: log lines are read next to other hosts' logs,
	 * so they do not follow the test clock (sg_now). */
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
	         tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
}

void server_log(enum server_log_level lvl, const char *msg, json_t *fields)
{
	char ts[96];
	json_t *line = NULL;
	char *text = NULL;
	size_t len;

	if (!server_log_enabled(lvl) || (int)lvl < 0 || lvl > SERVER_LOG_ERROR)
		goto out;
	now_rfc3339_ms(ts, sizeof(ts));
	line = json_object();
	json_object_set_new(line, "time", json_string(ts));
	json_object_set_new(line, "level", json_string(level_names[lvl]));
	json_object_set_new(line, "msg", json_string(msg != NULL ? msg : ""));
	if (json_is_object(fields)) {
		const char *k;
		json_t *v;

		json_object_foreach(fields, k, v) {
			/* The three fixed keys stay first and are not overridden. */
			if (strcmp(k, "time") != 0 && strcmp(k, "level") != 0 && strcmp(k, "msg") != 0)
				json_object_set(line, k, v);
		}
	}
	text = server_json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(6));
	if (text == NULL)
		goto out;
	len = strlen(text);
	if (len > LOG_LINE_MAX) {
		/* Cutting the text would break the JSON: drop the fields instead. */
		free(text);
		json_decref(line);
		line = json_pack("{s:s, s:s, s:s, s:b}", "time", ts, "level", level_names[lvl], "msg", "(log line too long)",
		                 "truncated", 1);
		text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
		if (text == NULL)
			goto out;
		len = strlen(text);
	}
	/* One write per line: stderr is unbuffered, and lines of concurrent requests must not interleave. */
	text = sg_xrealloc(text, len + 2);
	text[len++] = '\n';
	text[len] = '\0';
	pthread_mutex_lock(&log_mu);
	fwrite(text, 1, len, stderr);
	fflush(stderr);
	pthread_mutex_unlock(&log_mu);
out:
	free(text);
	json_decref(line);
	json_decref(fields);
}

void server_logf(enum server_log_level lvl, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (!server_log_enabled(lvl))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	server_log(lvl, msg, NULL);
}
