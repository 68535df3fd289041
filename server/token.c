#include "server/token.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TOKEN_HKDF_INFO "sigil token hmac"

int token_key_derive(const unsigned char kek[CA_KEK_BYTES], unsigned char key[TOKEN_KEY_BYTES], struct sg_err *err)
{
	EVP_KDF *kdf = NULL;
	EVP_KDF_CTX *kctx = NULL;
	OSSL_PARAM params[4];
	int rc = -1;

	kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	if (kdf == NULL || (kctx = EVP_KDF_CTX_new(kdf)) == NULL) {
		sg_err_ossl(err, SG_CRYPTO, "HKDF unavailable");
		goto out;
	}
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)kek, CA_KEK_BYTES);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)TOKEN_HKDF_INFO,
	                                              strlen(TOKEN_HKDF_INFO));
	params[3] = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(kctx, key, TOKEN_KEY_BYTES, params) != 1) {
		sg_err_ossl(err, SG_CRYPTO, "token key derivation failed");
		goto out;
	}
	rc = 0;
out:
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	return rc;
}

int token_hash(const unsigned char key[TOKEN_KEY_BYTES], const char *token, char *out, struct sg_err *err)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char mac[32];
	size_t maclen = 0;

	if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, TOKEN_KEY_BYTES, (const unsigned char *)token,
	              strlen(token), mac, sizeof(mac), &maclen) == NULL ||
	    maclen != sizeof(mac))
		return sg_err_ossl(err, SG_CRYPTO, "token HMAC failed");
	for (size_t i = 0; i < sizeof(mac); i++) {
		out[2 * i] = hex[mac[i] >> 4];
		out[2 * i + 1] = hex[mac[i] & 15];
	}
	out[TOKEN_HASH_HEX_LEN] = '\0';
	return 0;
}

void token_generate(char *out, size_t cap)
{
	char r[TOKEN_RANDOM_LEN + 1];

	if (cap < sizeof(r) + 4)
		sg_die("token_generate: buffer too small");
	sg_random_b62(r, TOKEN_RANDOM_LEN);
	snprintf(out, cap, "hvs.%s", r);
	OPENSSL_cleanse(r, sizeof(r));
}

static const char *token_ok(const char *t)
{
	size_t n;

	if (t == NULL)
		return NULL;
	n = strnlen(t, TOKEN_MAX_BYTES + 1);
	return (n == 0 || n > TOKEN_MAX_BYTES) ? NULL : t;
}

const char *token_from_headers(const char *x_vault_token, const char *authorization)
{
	if (x_vault_token != NULL && *x_vault_token != '\0')
		return token_ok(x_vault_token);
	if (authorization != NULL && strncasecmp(authorization, "Bearer ", 7) == 0) {
		const char *t = authorization + 7;

		while (*t == ' ')
			t++;
		return token_ok(t);
	}
	return NULL;
}

static void entry_key(const char *hash, char *out, size_t cap)
{
	snprintf(out, cap, "token/%s", hash);
}

int token_lookup(struct store *st, const unsigned char key[TOKEN_KEY_BYTES], const char *token, json_t **entry,
                 struct sg_err *err)
{
	char hash[TOKEN_HASH_HEX_LEN + 1], k[80];
	unsigned char *val = NULL;
	size_t len = 0;
	json_t *e = NULL;
	json_int_t exp;
	int rc = -1, got;

	*entry = NULL;
	if (token_hash(key, token, hash, err) != 0)
		goto out;
	entry_key(hash, k, sizeof(k));
	got = store_get(st, STORE_AUTH, k, strlen(k), &val, &len, err);
	if (got < 0)
		goto out;
	rc = 0;
	if (got == 0 || len > TOKEN_MAX_ENTRY_BYTES)
		goto out;
	e = json_loadb((const char *)val, len, 0, NULL);
	if (!json_is_object(e))
		goto out;
	exp = json_integer_value(json_object_get(e, "expire_time"));
	if (exp > 0 && exp <= sg_now())
		goto out;
	*entry = e;
	e = NULL;
	rc = 1;
out:
	json_decref(e);
	free(val);
	return rc;
}

int token_root_put(struct store_batch *b, const unsigned char key[TOKEN_KEY_BYTES], const char *token,
                   char *accessor, struct sg_err *err)
{
	char hash[TOKEN_HASH_HEX_LEN + 1], k[80], acc[TOKEN_ACCESSOR_LEN + 1];
	json_t *e = NULL;
	char *text = NULL;
	int rc = -1;

	if (token_hash(key, token, hash, err) != 0)
		goto out;
	sg_random_b62(acc, TOKEN_ACCESSOR_LEN);
	e = json_pack("{s:[s], s:s, s:s, s:I, s:I, s:s}", "policies", "root", "display_name", "root", "accessor", acc,
	              "creation_time", (json_int_t)sg_now(), "expire_time", (json_int_t)0, "type", "service");
	text = json_dumps(e, JSON_COMPACT);
	if (text == NULL)
		sg_die("out of memory");
	entry_key(hash, k, sizeof(k));
	store_batch_put(b, STORE_AUTH, k, strlen(k), text, strlen(text));
	snprintf(k, sizeof(k), "accessor/%s", acc);
	store_batch_put(b, STORE_AUTH, k, strlen(k), hash, strlen(hash));
	if (accessor != NULL)
		memcpy(accessor, acc, sizeof(acc));
	rc = 0;
out:
	free(text);
	json_decref(e);
	return rc;
}

int token_delete_by_hash(struct store *st, struct store_batch *b, const char *hash, struct sg_err *err)
{
	char k[80];
	unsigned char *val = NULL;
	size_t len = 0;
	json_t *e = NULL;
	const char *acc;
	int got;

	entry_key(hash, k, sizeof(k));
	got = store_get(st, STORE_AUTH, k, strlen(k), &val, &len, err);
	if (got < 0)
		return -1;
	if (got == 1) {
		e = json_loadb((const char *)val, len, 0, NULL);
		acc = json_string_value(json_object_get(e, "accessor"));
		if (acc != NULL && strlen(acc) <= TOKEN_ACCESSOR_LEN * 2) {
			char ak[80];

			snprintf(ak, sizeof(ak), "accessor/%s", acc);
			store_batch_del(b, STORE_AUTH, ak, strlen(ak));
		}
		store_batch_del(b, STORE_AUTH, k, strlen(k));
	}
	json_decref(e);
	free(val);
	return 0;
}
