#ifndef SG_SERVER_JSON_H
#define SG_SERVER_JSON_H

/*
 * Parsing of untrusted JSON documents (request bodies, the config file):
 * a cheap pre-scan caps the nesting depth before jansson recurses, then the
 * document must be one object. Fuzzed through fuzz_config and fuzz_route.
 */

#include <jansson.h>
#include <stddef.h>

#include "common/err.h"

/*
 * 0 when no array/object nesting in buf goes deeper than max_depth (string
 * contents and escapes are skipped), -1 otherwise. Does not validate JSON.
 */
int server_json_depth_check(const char *buf, size_t len, int max_depth);

/*
 * Parses a request body: empty or all-whitespace is {}; anything else must
 * be a JSON object no deeper than max_depth. SG_BAD_JSON ("failed to parse
 * JSON input: ...") names the problem.
 */
int server_json_parse_object(const char *buf, size_t len, int max_depth, json_t **out, struct sg_err *err) SG_WUR;

/* A JSON string of s; bytes that are not valid UTF-8 become '?' (jansson refuses them). */
json_t *server_json_string_safe(const char *s);

/*
 * json_dumps for the hot paths (response envelopes, log lines): the same
 * bytes for JSON_COMPACT with any of JSON_PRESERVE_ORDER (jansson always
 * keeps insertion order), JSON_ENSURE_ASCII and JSON_REAL_PRECISION, in a
 * fraction of the time (jansson decodes UTF-8 character by character and
 * appends through a callback). Other flags, and anything it does not write
 * the same way (strings that are not valid UTF-8, nesting deeper than
 * SERVER_JSON_DUMP_MAX_DEPTH), go to json_dumps. NULL as json_dumps.
 */
#define SERVER_JSON_DUMP_MAX_DEPTH 256
char *server_json_dumps(const json_t *j, size_t flags);

#endif
