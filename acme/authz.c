/*
 * ACME authorizations (RFC 8555 7.1.4): read with their status brought up
 * to date. They are created with their order (order.c) and changed by
 * challenge responses (challenge.c).
 */
#include "acme/acme.h"

#include <string.h>

static int64_t rec_time(const json_t *rec, const char *name)
{
	int64_t t = 0;
	const char *s = json_string_value(json_object_get(rec, name));

	if (s == NULL || sg_time_parse_rfc3339(s, &t) != 0)
		return 0;
	return t;
}

int acme_authz_load(struct store *st, const char *mount_id, const char *id, json_t **out, struct sg_err *err)
{
	json_t *az = NULL;
	int r;

	*out = NULL;
	if (!acme_id_valid(id))
		return 0;
	r = acme_rec_get(st, mount_id, "authz", id, &az, err);
	if (r != 1)
		return r;
	/* RFC 8555 7.1.6: a pending authorization past its expiry is expired. */
	if (json_is_string(json_object_get(az, "status")) && strcmp(json_string_value(json_object_get(az, "status")), "pending") == 0 &&
	    rec_time(az, "expires") <= sg_now())
		json_object_set_new(az, "status", json_string("expired"));
	*out = az;
	return 1;
}
