/*
 * ACME orders and their authorizations (RFC 8555 7.1.3, 7.1.4, 7.4):
 * identifiers checked and normalised, one authorization per identifier,
 * the order status derived from its authorizations when read.
 */
#include "acme/acme.h"

#include <arpa/inet.h>
#include <openssl/rand.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "roles/role.h"

#define ACME_IDENT_MAX 253

/* One identifier normalised: dns lower-cased, ip in canonical text (RFC 8738 3). */
static int ident_normalise(const json_t *in, json_t **out, struct sg_err *err)
{
	const char *type = json_string_value(json_object_get(in, "type"));
	const char *value = json_string_value(json_object_get(in, "value"));
	char buf[ACME_IDENT_MAX + 1];
	size_t n;

	if (!json_is_object(in) || type == NULL || value == NULL || json_object_size(in) != 2)
		return sg_err_set(err, SG_ACME_MALFORMED, "an identifier is an object with \"type\" and \"value\"");
	n = strlen(value);
	if (n == 0 || n > ACME_IDENT_MAX)
		return sg_err_set(err, SG_ACME_REJECTED_IDENTIFIER, "identifier value empty or too long");
	if (strcmp(type, "dns") == 0) {
		for (size_t i = 0; i <= n; i++)
			buf[i] = (char)tolower((unsigned char)value[i]);
		if (buf[n - 1] == '.')
			return sg_err_set(err, SG_ACME_REJECTED_IDENTIFIER, "identifier \"%s\" must not end with a dot", buf);
		if (!role_hostname_valid(buf))
			return sg_err_set(err, SG_ACME_REJECTED_IDENTIFIER, "identifier \"%s\" is not a valid DNS name", buf);
		/*
		 * RFC 8555 7.1.3: a wildcard is "*." and a name; the role decides
		 * whether wildcards are allowed at all (allow_wildcard_certificates).
		 */
		if (strchr(buf, '*') != NULL &&
		    (strncmp(buf, "*.", 2) != 0 || strchr(buf + 2, '*') != NULL || strchr(buf + 2, '.') == NULL))
			return sg_err_set(err, SG_ACME_REJECTED_IDENTIFIER,
			                  "identifier \"%s\": a wildcard is \"*.\" followed by a domain name", buf);
		*out = json_pack("{s:s, s:s}", "type", "dns", "value", buf);
		return 0;
	}
	if (strcmp(type, "ip") == 0) {
		unsigned char addr[16];
		char txt[INET6_ADDRSTRLEN];

		if (inet_pton(AF_INET, value, addr) == 1)
			inet_ntop(AF_INET, addr, txt, sizeof(txt));
		else if (inet_pton(AF_INET6, value, addr) == 1)
			inet_ntop(AF_INET6, addr, txt, sizeof(txt));
		else
			return sg_err_set(err, SG_ACME_MALFORMED, "identifier \"%s\" is not an IP address", value);
		*out = json_pack("{s:s, s:s}", "type", "ip", "value", txt);
		return 0;
	}
	return sg_err_set(err, SG_ACME_UNSUPPORTED_IDENTIFIER, "identifier type must be dns or ip");
}

/* RFC 8555 7.1.4: a wildcard's authorization names the domain without "*." and says "wildcard": true. */
static json_t *authz_identifier(const json_t *id, bool *wildcard)
{
	const char *value = json_string_value(json_object_get(id, "value"));

	*wildcard = strcmp(json_string_value(json_object_get(id, "type")), "dns") == 0 && strncmp(value, "*.", 2) == 0;
	if (!*wildcard)
		return json_deep_copy(id);
	return json_pack("{s:s, s:s}", "type", "dns", "value", value + 2);
}

/*
 * The challenges of an identifier: http-01 and tls-alpn-01 (RFC 8738 for
 * addresses, 7.1.3 of RFC 8555 and RFC 8737 3 forbid them for wildcards),
 * dns-01 for DNS names only (RFC 8738 7: no dns-01 for IP identifiers).
 */
static bool challenge_offered(const char *type, const json_t *id, bool wildcard)
{
	bool dns = strcmp(json_string_value(json_object_get(id, "type")), "dns") == 0;

	if (strcmp(type, "dns-01") == 0)
		return dns;
	return !wildcard;
}

static bool ident_has(const json_t *list, const json_t *id)
{
	size_t i;
	const json_t *v;

	json_array_foreach(list, i, v) {
		if (json_equal((json_t *)v, (json_t *)id))
			return true;
	}
	return false;
}

int acme_order_create(struct store *st, const char *mount_id, const char *account, const char *directory,
                      const char *role, const json_t *identifiers, const char *not_after, acme_names_check check,
                      void *check_arg, json_t **order, struct sg_err *err)
{
	return acme_order_create_ex(st, mount_id, account, directory, role, identifiers, not_after, NULL, check,
	                            check_arg, order, err);
}

int acme_order_create_ex(struct store *st, const char *mount_id, const char *account, const char *directory,
                         const char *role, const json_t *identifiers, const char *not_after, const json_t *extra,
                         acme_names_check check, void *check_arg, json_t **order, struct sg_err *err)
{
	json_t *ids = json_array(), *authzs = json_array(), *ord = NULL;
	struct store_batch *b = store_batch_new();
	char oid[ACME_ID_LEN + 1], expires[32], now[32];
	int64_t t = sg_now();
	size_t i;
	const json_t *v;
	int rc = -1;

	if (!json_is_array(identifiers) || json_array_size(identifiers) == 0) {
		sg_err_set(err, SG_ACME_MALFORMED, "newOrder needs a non-empty \"identifiers\" array");
		goto out;
	}
	if (json_array_size(identifiers) > ACME_MAX_IDENTIFIERS) {
		sg_err_set(err, SG_ACME_REJECTED_IDENTIFIER, "at most %d identifiers per order", ACME_MAX_IDENTIFIERS);
		goto out;
	}
	json_array_foreach(identifiers, i, v) {
		json_t *n = NULL;

		if (ident_normalise(v, &n, err) != 0)
			goto out;
		if (ident_has(ids, n))
			json_decref(n);
		else
			json_array_append_new(ids, n);
	}
	if (check != NULL && check(check_arg, ids, err) != 0)
		goto out;
	acme_new_id(oid);
	sg_time_format_rfc3339(t + ACME_ORDER_LIFETIME, expires, sizeof(expires));
	sg_time_format_rfc3339(t, now, sizeof(now));
	json_array_foreach(ids, i, v) {
		char aid[ACME_ID_LEN + 1];
		static const char *const types[] = {"http-01", "dns-01", "tls-alpn-01"};
		unsigned char tok[ACME_TOKEN_BYTES];
		char *token;
		json_t *az, *chs;
		bool wildcard = false;

		acme_new_id(aid);
		az = json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", aid, "account", account, "order", oid, "status",
		               "pending", "expires", expires);
		json_object_set_new(az, "identifier", authz_identifier(v, &wildcard));
		if (wildcard)
			json_object_set_new(az, "wildcard", json_true());
		chs = json_array();
		for (size_t k = 0; k < sizeof(types) / sizeof(types[0]); k++) {
			if (!challenge_offered(types[k], v, wildcard))
				continue;
			if (RAND_bytes(tok, sizeof(tok)) != 1)
				sg_die("RAND_bytes failed");
			token = sg_b64url(tok, sizeof(tok));
			json_array_append_new(chs, json_pack("{s:s, s:s, s:s}", "type", types[k], "token", token, "status",
			                                     "pending"));
			free(token);
		}
		json_object_set_new(az, "challenges", chs);
		acme_rec_put_new(b, mount_id, "authz", aid, az);
		json_decref(az);
		json_array_append_new(authzs, json_string(aid));
	}
	ord = json_pack("{s:s, s:s, s:s, s:s, s:s, s:O, s:O, s:s, s:s}", "id", oid, "account", account, "directory",
	                directory, "role", role, "status", "pending", "identifiers", ids, "authzs", authzs, "expires",
	                expires, "created", now);
	if (not_after != NULL)
		json_object_set_new(ord, "not_after", json_string(not_after));
	if (extra != NULL)
		json_object_update_missing(ord, (json_t *)extra);
	acme_rec_put_new(b, mount_id, "order", oid, ord);
	{
		/* The account's orders list (RFC 8555 7.1.2.1): "<mount>/acctorder/<account>/<order>". */
		char *ix = sg_xasprintf("%s/%s", account, oid);
		json_t *empty = json_object();

		acme_rec_put_new(b, mount_id, "acctorder", ix, empty);
		json_decref(empty);
		free(ix);
	}
	if (store_commit(st, b, err) != 0)
		goto out;
	*order = ord;
	ord = NULL;
	rc = 0;
out:
	json_decref(ids);
	json_decref(authzs);
	json_decref(ord);
	store_batch_free(b);
	return rc;
}

static int64_t rec_time(const json_t *rec, const char *name)
{
	int64_t t = 0;
	const char *s = json_string_value(json_object_get(rec, name));

	if (s == NULL || sg_time_parse_rfc3339(s, &t) != 0)
		return 0;
	return t;
}

int acme_order_load(struct store *st, const char *mount_id, const char *id, json_t **out, struct sg_err *err)
{
	json_t *ord = NULL;
	const json_t *v;
	size_t i, valid = 0;
	bool invalid = false;
	int r;

	*out = NULL;
	if (!acme_id_valid(id))
		return 0;
	r = acme_rec_get(st, mount_id, "order", id, &ord, err);
	if (r != 1)
		return r;
	if (!json_is_string(json_object_get(ord, "status")) || strcmp(json_string_value(json_object_get(ord, "status")), "pending") != 0) {
		*out = ord;
		return 1;
	}
	json_array_foreach(json_object_get(ord, "authzs"), i, v) {
		json_t *az = NULL;
		const char *s;

		r = acme_authz_load(st, mount_id, json_is_string(v) ? json_string_value(v) : "", &az, err);
		if (r < 0) {
			json_decref(ord);
			return -1;
		}
		s = r == 1 ? json_string_value(json_object_get(az, "status")) : "invalid";
		if (s != NULL && strcmp(s, "valid") == 0)
			valid++;
		else if (s == NULL || strcmp(s, "pending") != 0)
			invalid = true;
		json_decref(az);
	}
	/* RFC 8555 7.1.6: any failed authorization fails the order; all valid makes it ready. */
	if (invalid || rec_time(ord, "expires") <= sg_now())
		json_object_set_new(ord, "status", json_string("invalid"));
	else if (valid == json_array_size(json_object_get(ord, "authzs")))
		json_object_set_new(ord, "status", json_string("ready"));
	*out = ord;
	return 1;
}
