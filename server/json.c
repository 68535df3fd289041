#include "server/json.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int server_json_depth_check(const char *buf, size_t len, int max_depth)
{
	int depth = 0;
	int in_str = 0;

	for (size_t i = 0; i < len; i++) {
		char c = buf[i];

		if (in_str) {
			if (c == '\\')
				i++; /* the escaped byte cannot end the string */
			else if (c == '"')
				in_str = 0;
			continue;
		}
		switch (c) {
		case '"':
			in_str = 1;
			break;
		case '[':
		case '{':
			if (++depth > max_depth)
				return -1;
			break;
		case ']':
		case '}':
			/* Unbalanced closers are jansson's to reject; never go below 0. */
			if (depth > 0)
				depth--;
			break;
		default:
			break;
		}
	}
	return 0;
}

static int all_space(const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (buf[i] != ' ' && buf[i] != '\t' && buf[i] != '\r' && buf[i] != '\n')
			return 0;
	return 1;
}

static const char *type_name(const json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
		return "null";
	default:
		return "not an object";
	}
}

int server_json_parse_object(const char *buf, size_t len, int max_depth, json_t **out, struct sg_err *err)
{
	json_error_t je;
	json_t *j = NULL;

	*out = NULL;
	if (len == 0 || all_space(buf, len)) {
		*out = json_object();
		return 0;
	}
	if (server_json_depth_check(buf, len, max_depth) != 0)
		return sg_err_set(err, SG_BAD_JSON, "failed to parse JSON input: nesting deeper than %d levels",
		                  max_depth);
	/* Duplicate keys: the last one wins, as with Go's encoding/json. */
	/* DECODE_ANY so a scalar body is named below rather than reported as a syntax error. */
	j = json_loadb(buf, len, JSON_DECODE_ANY, &je);
	if (j == NULL)
		return sg_err_set(err, SG_BAD_JSON, "failed to parse JSON input: %s at line %d column %d", je.text,
		                  je.line, je.column);
	if (!json_is_object(j)) {
		sg_err_set(err, SG_BAD_JSON, "failed to parse JSON input: the body must be a JSON object, not %s",
		           type_name(j));
		json_decref(j);
		return -1;
	}
	*out = j;
	return 0;
}

json_t *server_json_string_safe(const char *s)
{
	json_t *j;
	char *copy;

	if (s == NULL)
		return json_string("");
	j = json_string(s);
	if (j != NULL)
		return j;
	copy = sg_xstrdup(s);
	for (char *p = copy; *p != '\0'; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	j = json_string(copy);
	free(copy);
	return j != NULL ? j : json_string("");
}

/* ---- server_json_dumps ---- */

struct jout {
	char *p;
	size_t n, cap;
};

static void jo_reserve(struct jout *o, size_t n)
{
	if (o->cap - o->n >= n)
		return;
	o->cap = o->cap * 2 > o->n + n ? o->cap * 2 : o->n + n + 256;
	o->p = sg_xrealloc(o->p, o->cap);
}

static void jo_mem(struct jout *o, const char *s, size_t n)
{
	jo_reserve(o, n);
	memcpy(o->p + o->n, s, n);
	o->n += n;
}

static void jo_u(struct jout *o, uint32_t cp)
{
	char seq[8];

	/* jansson's form: upper-case hex. */
	snprintf(seq, sizeof(seq), "\\u%04X", (unsigned)cp);
	jo_mem(o, seq, 6);
}

/* One UTF-8 sequence at s (n bytes left) as jansson accepts it: its length and code point, 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
	size_t len;
	uint32_t v, min;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2, v = s[0] & 0x1f, min = 0x80;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3, v = s[0] & 0x0f, min = 0x800;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4, v = s[0] & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = v << 6 | (s[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return len;
}

static int jo_string(struct jout *o, const char *str, size_t n, bool ascii)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	jo_reserve(o, n + 2);
	o->p[o->n++] = '"';
	while (i < n) {
		size_t run = i;
		uint32_t cp;
		size_t len;

		while (run < n && s[run] >= 0x20 && s[run] < 0x80 && s[run] != '"' && s[run] != '\\')
			run++;
		if (run > i) {
			jo_mem(o, str + i, run - i);
			i = run;
			continue;
		}
		switch (s[i]) {
		case '"':
			jo_mem(o, "\\\"", 2);
			break;
		case '\\':
			jo_mem(o, "\\\\", 2);
			break;
		case '\b':
			jo_mem(o, "\\b", 2);
			break;
		case '\f':
			jo_mem(o, "\\f", 2);
			break;
		case '\n':
			jo_mem(o, "\\n", 2);
			break;
		case '\r':
			jo_mem(o, "\\r", 2);
			break;
		case '\t':
			jo_mem(o, "\\t", 2);
			break;
		default:
			if (s[i] < 0x20) {
				jo_u(o, s[i]);
				break;
			}
			if ((len = utf8_seq(s + i, n - i, &cp)) == 0)
				return -1;
			if (!ascii) {
				jo_mem(o, str + i, len);
			} else if (cp < 0x10000) {
				jo_u(o, cp);
			} else {
				cp -= 0x10000;
				jo_u(o, 0xd800 | (cp >> 10));
				jo_u(o, 0xdc00 | (cp & 0x3ff));
			}
			i += len;
			continue;
		}
		i++;
	}
	jo_mem(o, "\"", 1);
	return 0;
}

/* jansson's real form: %.<precision>g, a ".0" when it would read as an integer, exponents without '+' or leading zeros. */
static int jo_real(struct jout *o, double v, int precision)
{
	char buf[128], *e;
	int n = snprintf(buf, sizeof(buf), "%.*g", precision, v);
	size_t len;

	if (n < 0 || (size_t)n >= sizeof(buf) - 3)
		return -1;
	len = (size_t)n;
	if (strchr(buf, '.') == NULL && strchr(buf, 'e') == NULL) {
		memcpy(buf + len, ".0", 3);
		len += 2;
	}
	if ((e = strchr(buf, 'e')) != NULL) {
		char *start = e + 1, *end = e + 2;

		if (*start == '-')
			start++;
		while (*end == '0')
			end++;
		if (end != start) {
			memmove(start, end, len - (size_t)(end - buf) + 1);
			len -= (size_t)(end - start);
		}
	}
	jo_mem(o, buf, len);
	return 0;
}

static int jo_value(struct jout *o, const json_t *j, bool ascii, int precision, int depth)
{
	char num[32];
	const char *k;
	json_t *v;
	size_t i;
	bool first = true;

	if (depth > SERVER_JSON_DUMP_MAX_DEPTH)
		return -1;
	switch (json_typeof(j)) {
	case JSON_OBJECT:
		jo_mem(o, "{", 1);
		/* Keys may hold NUL (json_object_setn): their length comes from the iterator. */
		for (void *it = json_object_iter((json_t *)j); it != NULL; it = json_object_iter_next((json_t *)j, it)) {
			k = json_object_iter_key(it);
			v = json_object_iter_value(it);
			if (!first)
				jo_mem(o, ",", 1);
			first = false;
			if (jo_string(o, k, json_object_iter_key_len(it), ascii) != 0)
				return -1;
			jo_mem(o, ":", 1);
			if (jo_value(o, v, ascii, precision, depth + 1) != 0)
				return -1;
		}
		jo_mem(o, "}", 1);
		return 0;
	case JSON_ARRAY:
		jo_mem(o, "[", 1);
		json_array_foreach(j, i, v) {
			if (i > 0)
				jo_mem(o, ",", 1);
			if (jo_value(o, v, ascii, precision, depth + 1) != 0)
				return -1;
		}
		jo_mem(o, "]", 1);
		return 0;
	case JSON_STRING:
		return jo_string(o, json_string_value(j), json_string_length(j), ascii);
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(j));
		jo_mem(o, num, strlen(num));
		return 0;
	case JSON_REAL:
		return jo_real(o, json_real_value(j), precision);
	case JSON_TRUE:
		jo_mem(o, "true", 4);
		return 0;
	case JSON_FALSE:
		jo_mem(o, "false", 5);
		return 0;
	case JSON_NULL:
		jo_mem(o, "null", 4);
		return 0;
	}
	return -1;
}

char *server_json_dumps(const json_t *j, size_t flags)
{
	size_t precision = (flags >> 11) & 0x1f; /* JSON_REAL_PRECISION(n) is n << 11 */
	size_t known = JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(31);
	struct jout o = {0};

	if (j == NULL || (flags & JSON_COMPACT) == 0 || (flags & ~known) != 0 || (!json_is_object(j) && !json_is_array(j)))
		return json_dumps(j, flags);
	jo_reserve(&o, 1024);
	if (jo_value(&o, j, (flags & JSON_ENSURE_ASCII) != 0, precision == 0 ? 17 : (int)precision, 0) != 0) {
		free(o.p);
		return json_dumps(j, flags);
	}
	jo_mem(&o, "", 1);
	return o.p;
}
