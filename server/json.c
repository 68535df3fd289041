#include "server/json.h"

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
