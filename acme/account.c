/*
 * ACME accounts (RFC 8555 7.3): one account per key and mount, found by the
 * key's RFC 7638 thumbprint.
 */
#include "acme/acme.h"

#include <stdlib.h>
#include <string.h>

int acme_account_by_key(struct store *st, const char *mount_id, const char *thumbprint, char **id,
                        struct sg_err *err)
{
	json_t *rec = NULL;
	int r;

	*id = NULL;
	r = acme_rec_get(st, mount_id, "acctkey", thumbprint, &rec, err);
	if (r != 1)
		return r;
	if (!json_is_string(json_object_get(rec, "id"))) {
		json_decref(rec);
		return sg_err_set(err, SG_STORAGE, "corrupt ACME key index");
	}
	*id = sg_xstrdup(json_string_value(json_object_get(rec, "id")));
	json_decref(rec);
	return 1;
}

int acme_contacts_check(const json_t *contact, struct sg_err *err)
{
	size_t i;
	const json_t *v;

	if (contact == NULL || json_is_null(contact))
		return 0;
	if (!json_is_array(contact))
		return sg_err_set(err, SG_ACME_MALFORMED, "\"contact\" must be an array of URLs");
	if (json_array_size(contact) > ACME_MAX_CONTACTS)
		return sg_err_set(err, SG_ACME_INVALID_CONTACT, "at most %d contacts", ACME_MAX_CONTACTS);
	json_array_foreach(contact, i, v) {
		const char *s = json_string_value(v);

		if (s == NULL)
			return sg_err_set(err, SG_ACME_MALFORMED, "\"contact\" must be an array of URLs");
		/* RFC 8555 7.3: servers MUST support mailto; we support nothing else. */
		if (strncmp(s, "mailto:", 7) != 0)
			return sg_err_set(err, SG_ACME_UNSUPPORTED_CONTACT, "only mailto: contacts are supported");
		/* RFC 8555 7.3: no hfields, one address per URL. */
		if (strlen(s) > ACME_MAX_CONTACT_LEN || strlen(s) < 10 || strchr(s, '?') != NULL ||
		    strchr(s, ',') != NULL || strchr(s + 7, '@') == NULL)
			return sg_err_set(err, SG_ACME_INVALID_CONTACT, "invalid mailto: contact");
		for (const char *p = s; *p != '\0'; p++)
			if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
				return sg_err_set(err, SG_ACME_INVALID_CONTACT, "invalid mailto: contact");
	}
	return 0;
}

int acme_account_create(struct store *st, const char *mount_id, const char *directory, const json_t *jwk,
                        const char *thumbprint, const json_t *contact, const char *eab_id, json_t **out,
                        struct sg_err *err)
{
	char id[ACME_ID_LEN + 1];
	char when[32];
	struct store_batch *b;
	json_t *rec, *idx;
	int rc;

	acme_new_id(id);
	sg_time_format_rfc3339(sg_now(), when, sizeof(when));
	rec = json_pack("{s:s, s:s, s:O, s:O, s:s, s:s, s:s}", "id", id, "status", "valid", "contact",
	                json_is_array(contact) ? contact : json_array(), "jwk", jwk, "thumbprint", thumbprint,
	                "directory", directory, "created", when);
	if (rec == NULL)
		sg_die("json_pack failed");
	if (!json_is_array(contact))
		json_decref(json_object_get(rec, "contact")); /* the temporary empty array: rec holds its own reference */
	if (eab_id != NULL)
		json_object_set_new(rec, "eab_kid", json_string(eab_id));
	idx = json_pack("{s:s}", "id", id);
	b = store_batch_new();
	acme_rec_put_new(b, mount_id, "acct", id, rec);
	/* put_new: two concurrent registrations of one key cannot both win. */
	acme_rec_put_new(b, mount_id, "acctkey", thumbprint, idx);
	if (eab_id != NULL)
		acme_rec_del(b, mount_id, "eab", eab_id); /* an EAB key binds one account */
	rc = store_commit(st, b, err);
	store_batch_free(b);
	json_decref(idx);
	if (rc != 0) {
		json_decref(rec);
		return -1;
	}
	*out = rec;
	return 0;
}

int acme_account_rekey(struct store *st, const char *mount_id, json_t *account, const json_t *new_jwk,
                       const char *new_thumbprint, struct sg_err *err)
{
	const char *id = json_string_value(json_object_get(account, "id"));
	char *old = sg_xstrdup(json_string_value(json_object_get(account, "thumbprint")));
	struct store_batch *b = store_batch_new();
	json_t *idx = json_pack("{s:s}", "id", id);
	int rc;

	json_object_set(account, "jwk", (json_t *)new_jwk);
	json_object_set_new(account, "thumbprint", json_string(new_thumbprint));
	acme_rec_put(b, mount_id, "acct", id, account);
	acme_rec_del(b, mount_id, "acctkey", old);
	acme_rec_put_new(b, mount_id, "acctkey", new_thumbprint, idx);
	rc = store_commit(st, b, err);
	store_batch_free(b);
	json_decref(idx);
	free(old);
	return rc;
}
