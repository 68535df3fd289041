/*
 * libFuzzer target for roles/: a JSON document is applied to a fresh role
 * (as a POST body) and then to a copy of it (as a PATCH), and the names in
 * it are checked against the result. The role is taken from "role" when
 * that is an object, else from the whole document; the names from "names"
 * when that is an object, else from the whole document, with Vault's
 * request fields (common_name, alt_names split on '@', ip_sans, uri_sans,
 * other_sans, user_ids, serial_number).
 *
 * Properties checked (abort on violation): a role that applied is valid, so
 * its stored form decodes and encodes to the same JSON; a check either
 * passes or sets an error of a known kind.
 */
#include "roles/role.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_MAX_INPUT (64u << 10)
#define FUZZ_MAX_DEPTH 16

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

/* jansson has no depth limit of its own; refuse deep nesting before parsing. */
static int too_deep(const unsigned char *data, size_t size)
{
	int depth = 0;
	int in_str = 0;

	for (size_t i = 0; i < size; i++) {
		unsigned char c = data[i];

		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = 0;
			continue;
		}
		if (c == '"')
			in_str = 1;
		else if (c == '{' || c == '[') {
			if (++depth > FUZZ_MAX_DEPTH)
				return 1;
		} else if (c == '}' || c == ']')
			depth--;
	}
	return 0;
}

static void names_from(const json_t *o, struct role_names *n)
{
	struct sg_err err;
	struct sg_strlist alt = {0};
	const char *s = NULL;

	sg_err_init(&err);
	if (sg_json_str(o, "common_name", &s, &err) == 1)
		n->common_name = sg_xstrdup(s);
	s = NULL;
	if (sg_json_str(o, "serial_number", &s, &err) == 1)
		n->subject_serial = sg_xstrdup(s);
	if (sg_json_list(o, "alt_names", &alt, &err) == 1) {
		/* Vault tells DNS and email SANs apart by the '@'. */
		for (size_t i = 0; i < alt.n; i++)
			sg_strlist_add(strchr(alt.v[i], '@') != NULL ? &n->emails : &n->dns, alt.v[i]);
	}
	sg_strlist_clear(&alt);
	(void)sg_json_list(o, "ip_sans", &n->ips, &err);
	(void)sg_json_list(o, "uri_sans", &n->uris, &err);
	(void)sg_json_list(o, "other_sans", &n->other_sans, &err);
	(void)sg_json_list(o, "user_ids", &n->user_ids, &err);
}

static void check_names(const struct role *r, const struct role_names *n)
{
	struct sg_err err;

	sg_err_init(&err);
	if (role_check_names(r, n, &err) == 0) {
		if (err.code != SG_OK)
			abort();
		return;
	}
	if (err.code != SG_ROLE_DENIED && err.code != SG_BAD_REQUEST)
		abort();
	if (err.detail[0] == '\0')
		abort();
}

/* A valid role must survive its stored form unchanged. */
static void check_roundtrip(const struct role *r)
{
	json_t *e1 = role_encode(r), *e2;
	struct role *back;
	struct sg_err err;

	sg_err_init(&err);
	back = role_decode(r->name, e1, &err);
	if (back == NULL) {
		fprintf(stderr, "decode of an applied role failed: %s\n", err.detail);
		abort();
	}
	e2 = role_encode(back);
	if (!json_equal(e1, e2))
		abort();
	json_decref(e2);
	role_free(back);
	json_decref(e1);
}

static void check_misc(const struct role *r, const struct role_names *n)
{
	static const struct {
		const char *type;
		int bits;
	} keys[] = {{"rsa", 1024}, {"rsa", 2048}, {"rsa", 4096}, {"ec", 224}, {"ec", 256},
	            {"ec", 384},   {"ed25519", 0}, {"dsa", 2048}};
	struct sg_err err;
	bool clamped;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		sg_err_init(&err);
		if (role_check_key(r, keys[i].type, keys[i].bits, &err) < 0 && err.code != SG_KEY_DENIED)
			abort();
	}
	if (role_ttl(r, r->ttl + 1, 768 * 3600, 768 * 3600, &clamped) < 0)
		abort();
	for (size_t i = 0; i < n->dns.n; i++)
		(void)role_hostname_valid(n->dns.v[i]);
	for (size_t i = 0; i < r->policy_identifiers.n; i++) {
		struct role_policy p;

		sg_err_init(&err);
		/* Stored entries were validated on the way in. */
		if (role_policy_parse(r->policy_identifiers.v[i], &p, &err) < 0)
			abort();
		role_policy_clear(&p);
	}
	(void)role_key_usage_bits(&r->key_usage);
	(void)role_eku_bits(r);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	json_t *doc = NULL;
	const json_t *role_body, *names_obj;
	struct role *r = NULL, *patched = NULL;
	struct role_names names;
	struct sg_strlist warnings = {0};
	struct sg_err err;

	role_names_init(&names);
	if (size > FUZZ_MAX_INPUT || too_deep(data, size))
		goto out;
	doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	if (doc == NULL || !json_is_object(doc))
		goto out;
	role_body = json_is_object(json_object_get(doc, "role")) ? json_object_get(doc, "role") : doc;
	names_obj = json_is_object(json_object_get(doc, "names")) ? json_object_get(doc, "names") : doc;

	r = role_new("fuzz");
	sg_err_init(&err);
	if (role_apply_json_warn(r, role_body, &warnings, &err) < 0) {
		if (err.code != SG_BAD_REQUEST || err.detail[0] == '\0')
			abort();
		goto out;
	}
	check_roundtrip(r);

	names_from(names_obj, &names);
	check_names(r, &names);
	check_misc(r, &names);

	/* The same body as a PATCH of the applied role. */
	patched = role_dup(r);
	sg_err_init(&err);
	if (role_apply_json(patched, role_body, &err) == 0) {
		check_roundtrip(patched);
		check_names(patched, &names);
	}
out:
	sg_strlist_clear(&warnings);
	role_names_clear(&names);
	role_free(patched);
	role_free(r);
	json_decref(doc);
	return 0;
}
