#ifndef SG_UTIL_H
#define SG_UTIL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* ---- One clock (DESIGN.md rule 9) ---- */
/* Unix seconds. Tests move it with sg_clock_advance (or SIGIL_CLOCK_OFFSET in the environment). */
int64_t sg_now(void);
void sg_clock_advance(int64_t seconds);

/* ---- String lists ---- */
#define SG_STRLIST_MAX 1024 /* cap on entries accepted from a request */
struct sg_strlist {
	char **v;
	size_t n;
};
void sg_strlist_add(struct sg_strlist *l, const char *s);
void sg_strlist_addn(struct sg_strlist *l, const char *s, size_t n);
bool sg_strlist_has(const struct sg_strlist *l, const char *s);
bool sg_strlist_has_ci(const struct sg_strlist *l, const char *s);
void sg_strlist_copy(struct sg_strlist *dst, const struct sg_strlist *src);
void sg_strlist_clear(struct sg_strlist *l); /* frees entries, leaves an empty list */
json_t *sg_strlist_to_json(const struct sg_strlist *l);

/* ---- Vault's loose request typing ---- */
/*
 * Each returns 1 when the key is present and valid, 0 when absent (or JSON
 * null; *out untouched), -1 with err set (SG_BAD_REQUEST naming the field)
 * when present but of the wrong type.
 */
int sg_json_bool(const json_t *obj, const char *key, bool *out, struct sg_err *err) SG_WUR;
int sg_json_int(const json_t *obj, const char *key, int64_t *out, struct sg_err *err) SG_WUR;
/* Borrowed pointer into obj; numbers are not strings. */
int sg_json_str(const json_t *obj, const char *key, const char **out, struct sg_err *err) SG_WUR;
/* JSON array of strings or a comma-separated string; replaces *out (cleared first). Empty strings dropped. */
int sg_json_list(const json_t *obj, const char *key, struct sg_strlist *out, struct sg_err *err) SG_WUR;
/* Integer seconds, a decimal string, or a Go duration ("72h", "2160h0m0s", "1h30m", "90s"). */
int sg_json_duration(const json_t *obj, const char *key, int64_t *out, struct sg_err *err) SG_WUR;

/* Go duration or plain seconds to seconds. -1 on bad syntax or overflow. */
int sg_duration_parse(const char *s, int64_t *out) SG_WUR;
/* RFC 3339 "2030-01-02T03:04:05Z" (or with offset) to unix seconds. -1 on bad syntax. */
int sg_time_parse_rfc3339(const char *s, int64_t *out) SG_WUR;
/* Formats unix seconds as RFC 3339 UTC into buf (at least 32 bytes). */
void sg_time_format_rfc3339(int64_t t, char *buf, size_t len);

/* ---- Encodings ---- */
/* Lower-case colon hex ("3a:0f:..."), as Vault prints serials. Caller frees. */
char *sg_hex_colon(const unsigned char *b, size_t n);
/* Accepts colon, hyphen or bare hex; writes at most cap bytes. -1 if malformed. */
int sg_hex_parse_serial(const char *s, unsigned char *out, size_t cap, size_t *outlen) SG_WUR;
/* Standard base64, no newlines. Caller frees. */
char *sg_base64(const unsigned char *b, size_t n);
/* Standard or URL-safe base64, padding optional. Caller frees *out. -1 if malformed. */
int sg_base64_decode(const char *s, size_t len, unsigned char **out, size_t *outlen) SG_WUR;
/* Random UUID v4 string (37 bytes with NUL). */
void sg_uuid(char out[37]);
/* Random base62 string of n characters into out (n+1 bytes). */
void sg_random_b62(char *out, size_t n);
/* Constant-time comparison of two byte strings (length is not secret). */
bool sg_ct_equal(const void *a, size_t alen, const void *b, size_t blen);

/* ---- Files ---- */
/* Reads a whole file up to cap bytes. Caller frees. */
int sg_file_read(const char *path, size_t cap, unsigned char **out, size_t *len, struct sg_err *err) SG_WUR;
/* Writes atomically (tmp, fsync, rename, fsync dir) with the given mode. */
int sg_file_write_atomic(const char *path, const void *buf, size_t len, int mode, struct sg_err *err) SG_WUR;

#endif
