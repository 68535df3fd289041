#include "server/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
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

/* ---- The access log line ---- */

#define LOG_REQUEST_LINE_MAX 8192 /* a longer access line goes through server_log */

struct lbuf {
	char *p;
	size_t n, cap;
	bool over;
};

static void lb_add(struct lbuf *b, const char *s, size_t n)
{
	if (b->over || b->n + n >= b->cap) {
		b->over = true;
		return;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
}

static void lb_str(struct lbuf *b, const char *s)
{
	lb_add(b, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at s (1 to 4) and its code point; 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, unsigned long *cp)
{
	size_t n;
	unsigned long v;

	if (s[0] < 0xc2 || s[0] > 0xf4)
		return 0;
	n = s[0] < 0xe0 ? 2 : s[0] < 0xf0 ? 3 : 4;
	v = s[0] & (0x3f >> (n - 1));
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = v << 6 | (s[i] & 0x3f);
	}
	/* No overlong forms, surrogates or code points past U+10FFFF (RFC 3629 3). */
	if ((n == 3 && v < 0x800) || (n == 4 && (v < 0x10000 || v > 0x10ffff)) || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return n;
}

/* A JSON string as jansson writes it with JSON_ENSURE_ASCII; invalid UTF-8 becomes '?' (server_json_string_safe). */
static void lb_json_str(struct lbuf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");

	lb_add(b, "\"", 1);
	while (*p != '\0' && !b->over) {
		unsigned long cp = *p;
		size_t n = 1;
		char esc[16];
		const unsigned char *run = p;

		/* Plain printable ASCII (nearly every byte of a path or id) is copied a run at a time. */
		while (*p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\')
			p++;
		if (p != run) {
			lb_add(b, (const char *)run, (size_t)(p - run));
			continue;
		}

		if (*p >= 0x80 && (n = utf8_seq(p, &cp)) == 0) {
			lb_add(b, "?", 1);
			p++;
			continue;
		}
		p += n;
		if (cp == '"' || cp == '\\') {
			esc[0] = '\\';
			esc[1] = (char)cp;
			lb_add(b, esc, 2);
		} else if (cp >= 0x20 && cp < 0x7f) {
			esc[0] = (char)cp;
			lb_add(b, esc, 1);
		} else if (cp == '\n' || cp == '\t' || cp == '\r' || cp == '\b' || cp == '\f') {
			esc[0] = '\\';
			esc[1] = cp == '\n' ? 'n' : cp == '\t' ? 't' : cp == '\r' ? 'r' : cp == '\b' ? 'b' : 'f';
			lb_add(b, esc, 2);
		} else {
			unsigned long u[2];
			size_t nu = 0;

			if (cp >= 0x10000) {
				cp -= 0x10000;
				u[nu++] = 0xd800 | (cp >> 10);
				u[nu++] = 0xdc00 | (cp & 0x3ff);
			} else {
				u[nu++] = cp;
			}
			for (size_t i = 0; i < nu; i++) {
				esc[0] = '\\';
				esc[1] = 'u';
				esc[2] = hex[(u[i] >> 12) & 15];
				esc[3] = hex[(u[i] >> 8) & 15];
				esc[4] = hex[(u[i] >> 4) & 15];
				esc[5] = hex[u[i] & 15];
				lb_add(b, esc, 6);
			}
		}
	}
	lb_add(b, "\"", 1);
}

static void lb_uint(struct lbuf *b, unsigned long long v, int min_digits)
{
	char d[24];
	int n = 0;

	do {
		d[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0 || n < min_digits);
	while (n > 0)
		lb_add(b, &d[--n], 1);
}

/* The "time" value, the date part cached per thread: formatting it is most of a line's cost. */
static void lb_time(struct lbuf *b)
{
	static _Thread_local time_t cached_sec = -1;
	static _Thread_local char cached[64];
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (ts.tv_sec != cached_sec) {
		struct tm tm;

		gmtime_r(&ts.tv_sec, &tm);
		snprintf(cached, sizeof(cached), "%04d-%02d-%02dT%02d:%02d:%02d.", tm.tm_year + 1900, tm.tm_mon + 1,
		         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
		cached_sec = ts.tv_sec;
	}
	lb_add(b, "\"", 1);
	lb_str(b, cached);
	lb_uint(b, (unsigned long long)(ts.tv_nsec / 1000000), 3);
	lb_add(b, "Z\"", 2);
}

/* duration_ms with up to 6 significant digits, as jansson's JSON_REAL_PRECISION(6) prints the usual values. */
static void lb_ms(struct lbuf *b, double ms)
{
	char d[48];
	int n;

	if (!(ms >= 0) || ms > 1e9)
		ms = 0;
	n = snprintf(d, sizeof(d), "%.6g", ms);
	if (n <= 0 || (size_t)n >= sizeof(d))
		return;
	lb_add(b, d, (size_t)n);
	/* JSON reals keep a decimal point or exponent (jansson prints 2.0 for 2). */
	if (strpbrk(d, ".e") == NULL)
		lb_add(b, ".0", 2);
}

void server_log_request(const struct server_log_request *r)
{
	char line[LOG_REQUEST_LINE_MAX];
	struct lbuf b = {line, 0, sizeof(line), false};

	if (!server_log_enabled(SERVER_LOG_INFO))
		return;
	lb_str(&b, "{\"time\":");
	lb_time(&b);
	lb_str(&b, ",\"level\":\"info\",\"msg\":\"request\",\"method\":");
	lb_json_str(&b, r->method);
	lb_str(&b, ",\"path\":");
	lb_json_str(&b, r->path);
	lb_str(&b, ",\"status\":");
	lb_uint(&b, (unsigned long long)(r->status < 0 ? 0 : r->status), 1);
	lb_str(&b, ",\"duration_ms\":");
	lb_ms(&b, r->duration_ms);
	lb_str(&b, ",\"request_id\":");
	lb_json_str(&b, r->request_id);
	lb_str(&b, ",\"remote_addr\":");
	lb_json_str(&b, r->remote_addr);
	if (r->error != NULL) {
		lb_str(&b, ",\"error\":");
		lb_json_str(&b, r->error);
		lb_str(&b, ",\"code\":");
		lb_json_str(&b, r->code);
	}
	lb_str(&b, "}\n");
	if (b.over) {
		json_t *f = json_pack("{s:s, s:s, s:i, s:f, s:s, s:s}", "method", r->method, "path", "(too long)", "status",
		                      r->status, "duration_ms", r->duration_ms, "request_id", r->request_id,
		                      "remote_addr", r->remote_addr);

		server_log(SERVER_LOG_INFO, "request", f);
		return;
	}
	/* One write per line, as server_log: lines of concurrent requests never interleave. */
	pthread_mutex_lock(&log_mu);
	fwrite(line, 1, b.n, stderr);
	fflush(stderr);
	pthread_mutex_unlock(&log_mu);
}
