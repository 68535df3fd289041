#include "auth/rolefields.h"

#include <stdlib.h>
#include <string.h>

int auth_rolefields_apply(struct auth_tokenfields *f, const json_t *body, struct sg_err *err)
{
	int64_t v = 0;
	int rc;

	if (auth_tokenfields_apply(f, body, err) != 0)
		return -1;
	if (json_object_get(body, "token_ttl") == NULL) {
		if ((rc = sg_json_duration(body, "ttl", &v, err)) < 0)
			return -1;
		if (rc == 1)
			f->ttl = v;
	}
	if (json_object_get(body, "token_max_ttl") == NULL) {
		if ((rc = sg_json_duration(body, "max_ttl", &v, err)) < 0)
			return -1;
		if (rc == 1)
			f->max_ttl = v;
	}
	if (json_object_get(body, "token_num_uses") == NULL) {
		if ((rc = sg_json_int(body, "num_uses", &v, err)) < 0)
			return -1;
		if (rc == 1) {
			if (v < 0)
				return sg_err_set(err, SG_BAD_REQUEST, "'num_uses' cannot be negative");
			f->num_uses = v;
		}
	}
	if (json_object_get(body, "token_bound_cidrs") == NULL) {
		if ((rc = sg_json_list(body, "bound_cidrs", &f->bound_cidrs, err)) < 0)
			return -1;
		if (rc == 1 && auth_cidrs_check(&f->bound_cidrs, "bound_cidrs", err) != 0)
			return -1;
	}
	if (f->ttl < 0 || f->max_ttl < 0 || f->ttl > AUTH_TOKENFIELDS_TTL_MAX || f->max_ttl > AUTH_TOKENFIELDS_TTL_MAX)
		return sg_err_set(err, SG_BAD_REQUEST, "ttl out of range");
	if (f->max_ttl != 0 && f->ttl > f->max_ttl)
		return sg_err_set(err, SG_BAD_REQUEST, "'token_ttl' cannot be greater than 'token_max_ttl'");
	return 0;
}

int auth_rolefields_str(const json_t *body, const char *key, size_t max, char **out, struct sg_err *err)
{
	const char *s = NULL;
	int rc = sg_json_str(body, key, &s, err);

	if (rc <= 0)
		return rc;
	if (strlen(s) > max)
		return sg_err_set(err, SG_BAD_REQUEST, "field '%s' is longer than %zu bytes", key, max);
	free(*out);
	*out = sg_xstrdup(s);
	return 1;
}

bool auth_rolefields_name_valid(const char *name)
{
	size_t n = name != NULL ? strlen(name) : 0;

	if (n == 0 || n > AUTH_ROLE_NAME_MAX || name[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
		      c == '.'))
			return false;
	}
	return true;
}
