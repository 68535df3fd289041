/*
 * External Account Binding (RFC 8555 7.3.4): HS256 keys handed out by an
 * operator (acme/new-eab), each bound to one directory and consumed by the
 * account it binds.
 */
#include "acme/acme.h"

#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

int acme_eab_create(struct store *st, const char *mount_id, const char *directory, json_t **out,
                    struct sg_err *err)
{
	unsigned char key[ACME_EAB_KEY_BYTES];
	char id[37], when[32];
	char *k;
	struct store_batch *b;
	json_t *rec;
	int rc;

	if (RAND_bytes(key, sizeof(key)) != 1)
		sg_die("RAND_bytes failed");
	sg_uuid(id);
	sg_time_format_rfc3339(sg_now(), when, sizeof(when));
	/* cert-manager decodes the key with RawURLEncoding: unpadded base64url (compat 1.2). */
	k = sg_b64url(key, sizeof(key));
	OPENSSL_cleanse(key, sizeof(key));
	rec = json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", id, "key_type", "hs", "key", k, "acme_directory", directory,
	                "created_on", when);
	OPENSSL_cleanse(k, strlen(k));
	free(k);
	b = store_batch_new();
	acme_rec_put_new(b, mount_id, "eab", id, rec);
	rc = store_commit(st, b, err);
	store_batch_free(b);
	if (rc != 0) {
		json_decref(rec);
		return -1;
	}
	*out = rec;
	return 0;
}

int acme_eab_verify(struct store *st, const char *mount_id, const char *directory, const json_t *eab,
                    const char *new_account_url, const char *account_thumbprint, char **eab_id,
                    struct sg_err *err)
{
	struct acme_jws j;
	const char *prot, *payload, *sig, *alg, *kid, *url, *key_b64;
	unsigned char *hdr = NULL, *key = NULL, *sigb = NULL, *pl = NULL, mac[32];
	size_t hlen = 0, klen = 0, slen = 0, plen = 0;
	unsigned int mlen = 0;
	json_t *h = NULL, *rec = NULL, *pjwk = NULL;
	json_error_t jerr;
	char *tp = NULL, *input = NULL;
	int rc = -1, r;

	memset(&j, 0, sizeof(j));
	*eab_id = NULL;
	if (!json_is_object(eab) || json_object_size(eab) != 3)
		return sg_err_set(err, SG_ACME_MALFORMED, "externalAccountBinding must be a flattened JWS");
	prot = json_string_value(json_object_get(eab, "protected"));
	payload = json_string_value(json_object_get(eab, "payload"));
	sig = json_string_value(json_object_get(eab, "signature"));
	if (prot == NULL || payload == NULL || sig == NULL || strlen(prot) > 4096 || strlen(payload) > 8192 ||
	    strlen(sig) > 512 || sg_b64url_decode(prot, strlen(prot), &hdr, &hlen) != 0 ||
	    sg_b64url_decode(payload, strlen(payload), &pl, &plen) != 0 ||
	    sg_b64url_decode(sig, strlen(sig), &sigb, &slen) != 0) {
		sg_err_set(err, SG_ACME_MALFORMED, "externalAccountBinding must be a flattened JWS in base64url");
		goto out;
	}
	h = json_loadb((const char *)hdr, hlen, JSON_REJECT_DUPLICATES, &jerr);
	alg = json_string_value(json_object_get(h, "alg"));
	kid = json_string_value(json_object_get(h, "kid"));
	url = json_string_value(json_object_get(h, "url"));
	if (!json_is_object(h) || alg == NULL || kid == NULL || url == NULL) {
		sg_err_set(err, SG_ACME_MALFORMED, "externalAccountBinding header needs alg, kid and url");
		goto out;
	}
	/* RFC 8555 7.3.4: MUST NOT contain a nonce; MUST use a MAC algorithm; url as the outer JWS. */
	if (json_object_get(h, "nonce") != NULL) {
		sg_err_set(err, SG_ACME_MALFORMED, "externalAccountBinding must not contain a nonce");
		goto out;
	}
	if (strcmp(alg, "HS256") != 0) {
		sg_err_set(err, SG_ACME_BAD_SIG_ALG, "externalAccountBinding must use HS256");
		goto out;
	}
	if (strcmp(url, new_account_url) != 0) {
		sg_err_set(err, SG_ACME_UNAUTHORIZED, "externalAccountBinding url does not match the request URL");
		goto out;
	}
	if (strlen(kid) > 64 || (r = acme_rec_get(st, mount_id, "eab", kid, &rec, err)) < 0)
		goto out;
	if (strlen(kid) > 64 || r == 0) {
		sg_err_set(err, SG_ACME_UNAUTHORIZED, "unknown external account binding key id");
		goto out;
	}
	if (!json_is_string(json_object_get(rec, "acme_directory")) || strcmp(json_string_value(json_object_get(rec, "acme_directory")), directory) != 0) {
		sg_err_set(err, SG_ACME_UNAUTHORIZED, "external account binding key is bound to another directory");
		goto out;
	}
	key_b64 = json_string_value(json_object_get(rec, "key"));
	if (key_b64 == NULL || sg_b64url_decode(key_b64, strlen(key_b64), &key, &klen) != 0) {
		sg_err_set(err, SG_STORAGE, "corrupt EAB record");
		goto out;
	}
	input = sg_xasprintf("%s.%s", prot, payload);
	if (HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)input, strlen(input), mac, &mlen) == NULL)
		sg_die("HMAC failed");
	if (!sg_ct_equal(mac, mlen, sigb, slen)) {
		sg_err_set(err, SG_ACME_UNAUTHORIZED, "external account binding signature is invalid");
		goto out;
	}
	/* The payload is the account JWK: compared by thumbprint, not byte for byte. */
	pjwk = json_loadb((const char *)pl, plen, JSON_REJECT_DUPLICATES, &jerr);
	if (pjwk == NULL || (tp = acme_jwk_thumbprint(pjwk, err)) == NULL || strcmp(tp, account_thumbprint) != 0) {
		sg_err_set(err, SG_ACME_UNAUTHORIZED, "external account binding payload is not the account key");
		goto out;
	}
	*eab_id = sg_xstrdup(kid);
	rc = 0;
out:
	if (key != NULL) {
		OPENSSL_cleanse(key, klen);
		free(key);
	}
	OPENSSL_cleanse(mac, sizeof(mac));
	free(hdr);
	free(sigb);
	free(pl);
	free(tp);
	free(input);
	json_decref(h);
	json_decref(rec);
	json_decref(pjwk);
	acme_jws_clear(&j);
	return rc;
}
