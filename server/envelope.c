#include "server/envelope.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/json.h"

static char *dump(const json_t *j, size_t *len)
{
	char *s = server_json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);

	if (s == NULL)
		sg_die("json_dumps failed");
	*len = strlen(s);
	return s;
}

/* http.h: NULL data means "nothing to say" (204); an empty object is still an answer (200). */
static bool empty_json(const json_t *j)
{
	return j == NULL || json_is_null(j);
}

void envelope_render(const struct resp *rs, const char *request_id, const char *mount_type, int *status,
                     char **body, size_t *len)
{
	json_t *env;
	bool empty = empty_json(rs->data) && empty_json(rs->auth) && rs->warnings.n == 0 &&
	             (rs->lease_id == NULL || *rs->lease_id == '\0');

	*body = NULL;
	*len = 0;
	*status = rs->status != 0 ? rs->status : (empty ? 204 : 200);
	if (*status == 204)
		return;
	env = json_object();
	json_object_set_new(env, "request_id", json_string(request_id != NULL ? request_id : ""));
	json_object_set_new(env, "lease_id", json_string(rs->lease_id != NULL ? rs->lease_id : ""));
	json_object_set_new(env, "renewable", json_boolean(rs->renewable));
	json_object_set_new(env, "lease_duration", json_integer(rs->lease_duration));
	json_object_set(env, "data", rs->data != NULL ? rs->data : json_null());
	json_object_set_new(env, "wrap_info", json_null());
	json_object_set_new(env, "warnings", rs->warnings.n > 0 ? sg_strlist_to_json(&rs->warnings) : json_null());
	json_object_set(env, "auth", rs->auth != NULL ? rs->auth : json_null());
	if (mount_type != NULL)
		json_object_set_new(env, "mount_type", json_string(mount_type));
	*body = dump(env, len);
	json_decref(env);
}

void envelope_error(const struct sg_err *err, int *status, char **body, size_t *len)
{
	json_t *env = json_object(), *errors = json_array();
	enum sg_code code = err != NULL ? err->code : SG_INTERNAL;

	if (code == SG_OK)
		code = SG_INTERNAL;
	*status = sg_err_http_status(code);
	if (err != NULL && err->detail[0] != '\0')
		json_array_append_new(errors, server_json_string_safe(err->detail));
	else if (code != SG_NOT_FOUND)
		json_array_append_new(errors, json_string(sg_err_vault_text(code)));
	json_object_set_new(env, "errors", errors);
	*body = dump(env, len);
	json_decref(env);
}

void envelope_no_route(struct sg_err *err, const char *path)
{
	sg_err_set(err, SG_UNSUPPORTED_PATH, "no handler for route \"%.*s\". route entry not found.",
	           SG_ERR_DETAIL_MAX / 2, path);
}

/* ---- struct req accessors and struct resp helpers (declared in http.h) ---- */

const char *req_param(const struct req *rq, const char *name)
{
	for (size_t i = 0; i < MAX_CAPTURES; i++)
		if (rq->cap_name[i] != NULL && strcmp(rq->cap_name[i], name) == 0)
			return rq->cap_val[i];
	return NULL;
}

const char *req_query(const struct req *rq, const char *name)
{
	return json_string_value(json_object_get(rq->query, name));
}

int resp_keys(struct resp *rs, const struct sg_strlist *keys, struct sg_err *err)
{
	if (keys->n == 0)
		return sg_err_set(err, SG_NOT_FOUND, "%s", "");
	resp_data(rs, json_pack("{s:o}", "keys", sg_strlist_to_json(keys)));
	return 0;
}

void resp_data(struct resp *rs, json_t *data)
{
	json_decref(rs->data);
	rs->data = data;
}

void resp_raw(struct resp *rs, const char *content_type, const void *body, size_t len)
{
	free(rs->content_type);
	free(rs->body);
	rs->content_type = sg_xstrdup(content_type);
	rs->body = sg_xmalloc(len + 1);
	if (len > 0)
		memcpy(rs->body, body, len);
	rs->body[len] = '\0';
	rs->body_len = len;
}

void resp_warn(struct resp *rs, const char *fmt, ...)
{
	char buf[RESP_MAX_WARNING];
	va_list ap;

	if (rs->warnings.n >= SG_STRLIST_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	sg_strlist_add(&rs->warnings, buf);
}

void resp_header(struct resp *rs, const char *name, const char *value)
{
	if (rs->headers == NULL)
		rs->headers = json_object();
	json_object_set_new(rs->headers, name, json_string(value));
}

void resp_header_add(struct resp *rs, const char *name, const char *value)
{
	json_t *cur;

	if (rs->headers == NULL)
		rs->headers = json_object();
	cur = json_object_get(rs->headers, name);
	if (cur == NULL) {
		json_object_set_new(rs->headers, name, json_string(value));
		return;
	}
	if (!json_is_array(cur)) {
		json_t *a = json_array();

		json_array_append(a, cur);
		json_object_set_new(rs->headers, name, a);
		cur = a;
	}
	json_array_append_new(cur, json_string(value));
}

void resp_clear(struct resp *rs)
{
	if (rs == NULL)
		return;
	json_decref(rs->data);
	json_decref(rs->auth);
	sg_strlist_clear(&rs->warnings);
	free(rs->lease_id);
	free(rs->content_type);
	free(rs->body);
	json_decref(rs->headers);
	memset(rs, 0, sizeof(*rs));
}
