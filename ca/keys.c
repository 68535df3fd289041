/*
 * Key specs, generation, PEM export, and key records at rest. A record
 * holds the public key in clear (to match keys to certificates without
 * decrypting) and the PKCS#8 DER of the private key sealed with
 * AES-256-GCM under the KEK: a random 96-bit nonce per record (NIST SP
 * 800-38D 8.2.2) and the record's own store key "<mount-id>/<key-id>" as
 * AAD, so a sealed key cannot be moved to another mount or id.
 */
#include "ca/internal.h"
#include "ca/parse.h"

#include <ctype.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

/* ---------------- Specs and generation ---------------- */

int ca_keyspec_parse(const char *type, int64_t bits, struct ca_keyspec *out, struct sg_err *err)
{
	if (type == NULL || type[0] == '\0' || strcmp(type, "rsa") == 0) {
		if (bits == 0)
			bits = 2048;
		if (bits != 2048 && bits != 3072 && bits != 4096)
			return sg_err_set(err, SG_BAD_REQUEST, "unsupported bit length for RSA key: %lld",
			                  (long long)bits);
		out->type = CA_KEY_RSA;
		out->bits = (int)bits;
		return 0;
	}
	if (strcmp(type, "ec") == 0) {
		if (bits == 0)
			bits = 256;
		if (bits != 256 && bits != 384 && bits != 521)
			return sg_err_set(err, SG_BAD_REQUEST, "unsupported bit length for EC key: %lld",
			                  (long long)bits);
		out->type = CA_KEY_EC;
		out->bits = (int)bits;
		return 0;
	}
	if (strcmp(type, "ed25519") == 0) {
		out->type = CA_KEY_ED25519;
		out->bits = 0;
		return 0;
	}
	return sg_err_set(err, SG_BAD_REQUEST, "unknown key type '%s' (rsa, ec or ed25519)", type);
}

EVP_PKEY *ca_key_generate(const struct ca_keyspec *spec, struct sg_err *err)
{
	EVP_PKEY *k = NULL;

	switch (spec->type) {
	case CA_KEY_RSA:
		k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)spec->bits);
		break;
	case CA_KEY_EC:
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC",
		                      spec->bits == 384 ? "P-384" : spec->bits == 521 ? "P-521" : "P-256");
		break;
	case CA_KEY_ED25519:
		k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		break;
	}
	if (k == NULL)
		sg_err_ossl(err, SG_CRYPTO, "key generation failed");
	return k;
}

int ca_key_describe(const EVP_PKEY *k, const char **type, int *bits, struct sg_err *err)
{
	char group[64];
	size_t glen = 0;

	switch (EVP_PKEY_get_base_id(k)) {
	case EVP_PKEY_RSA:
		*type = "rsa";
		*bits = EVP_PKEY_get_bits(k);
		return 0;
	case EVP_PKEY_EC:
		/* Only the NIST prime curves (RFC 5480 2.1.1.1 named curves that browsers accept). */
		if (EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &glen) != 1) {
			ERR_clear_error();
			return sg_err_set(err, SG_KEY_DENIED, "EC key without a named curve");
		}
		if (strcmp(group, "prime256v1") && strcmp(group, "secp384r1") && strcmp(group, "secp521r1") &&
		    strcmp(group, "secp224r1") && strcmp(group, "P-256") && strcmp(group, "P-384") &&
		    strcmp(group, "P-521") && strcmp(group, "P-224"))
			return sg_err_set(err, SG_KEY_DENIED, "unsupported EC curve %s", group);
		*type = "ec";
		*bits = EVP_PKEY_get_bits(k);
		return 0;
	case EVP_PKEY_ED25519:
		*type = "ed25519";
		*bits = 0;
		return 0;
	default:
		return sg_err_set(err, SG_KEY_DENIED, "unsupported key type (rsa, ec or ed25519)");
	}
}

/* Copies the memory BIO out; the secure-memory BIO wipes its buffers when freed and grown. */
static char *bio_take_string(BIO *b)
{
	char *data = NULL;
	long n = BIO_get_mem_data(b, &data);
	char *s;

	if (n < 0)
		n = 0;
	s = sg_xmalloc((size_t)n + 1);
	memcpy(s, data, (size_t)n);
	s[n] = '\0';
	return s;
}

/* A DER TLV header for len content bytes (at most 0xffff). */
static size_t der_header(unsigned char *out, unsigned char tag, size_t len)
{
	out[0] = tag;
	if (len < 0x80) {
		out[1] = (unsigned char)len;
		return 2;
	}
	if (len < 0x100) {
		out[1] = 0x81;
		out[2] = (unsigned char)len;
		return 3;
	}
	out[1] = 0x82;
	out[2] = (unsigned char)(len >> 8);
	out[3] = (unsigned char)len;
	return 4;
}

/*
 * "EC PRIVATE KEY" for a named-curve key, written directly: OpenSSL 3.0's
 * traditional writer first copies the provider key into a legacy EC_KEY,
 * which costs more than generating the key. RFC 5915 3: ECPrivateKey ::=
 * SEQUENCE { version 1, privateKey OCTET STRING (the order's length),
 * [0] namedCurve, [1] publicKey BIT STRING }, as i2d_ECPrivateKey writes
 * it. NULL (no error) for anything else: the caller takes OpenSSL's path.
 */
#define KEY_EC_MAX_SCALAR 66  /* P-521 */
#define KEY_EC_MAX_POINT 133  /* uncompressed P-521 */
static char *ec_sec1_pem(const EVP_PKEY *k)
{
	static const struct {
		const char *group;
		int nid;
		size_t scalar;
	} curves[] = {{"prime256v1", NID_X9_62_prime256v1, 32}, {"secp384r1", NID_secp384r1, 48},
	              {"secp521r1", NID_secp521r1, 66}};
	unsigned char priv[KEY_EC_MAX_SCALAR], pub[KEY_EC_MAX_POINT], oid[16], der[512], body[512];
	char group[64];
	size_t glen = 0, plen = 0, scalar = 0, n = 0, hn;
	int nid = NID_undef, olen;
	unsigned char *op = oid;
	BIGNUM *d = NULL;
	char *res = NULL;

	ERR_set_mark();
	if (EVP_PKEY_get_base_id(k) != EVP_PKEY_EC ||
	    EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &glen) != 1)
		goto out;
	for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++)
		if (strcmp(group, curves[i].group) == 0) {
			nid = curves[i].nid;
			scalar = curves[i].scalar;
		}
	if (nid == NID_undef || i2d_ASN1_OBJECT(OBJ_nid2obj(nid), NULL) > (int)sizeof(oid) ||
	    (olen = i2d_ASN1_OBJECT(OBJ_nid2obj(nid), &op)) <= 0 ||
	    EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pub, sizeof(pub), &plen) != 1 ||
	    EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_PRIV_KEY, &d) != 1 || BN_num_bytes(d) > (int)scalar ||
	    BN_bn2binpad(d, priv, (int)scalar) != (int)scalar)
		goto out;
	memcpy(body + n, "\x02\x01\x01", 3);
	n += 3;
	n += der_header(body + n, 0x04, scalar);
	memcpy(body + n, priv, scalar);
	n += scalar;
	n += der_header(body + n, 0xa0, (size_t)olen);
	memcpy(body + n, oid, (size_t)olen);
	n += (size_t)olen;
	n += der_header(body + n, 0xa1, plen + 1 + (plen + 1 < 0x80 ? 2 : 3));
	n += der_header(body + n, 0x03, plen + 1);
	body[n++] = 0x00;
	memcpy(body + n, pub, plen);
	n += plen;
	hn = der_header(der, 0x30, n);
	memcpy(der + hn, body, n);
	res = ca_pem_text("EC PRIVATE KEY", der, hn + n);
out:
	OPENSSL_cleanse(priv, sizeof(priv));
	OPENSSL_cleanse(body, sizeof(body));
	OPENSSL_cleanse(der, sizeof(der));
	BN_clear_free(d);
	ERR_pop_to_mark();
	return res;
}

char *ca_key_to_pem(const EVP_PKEY *k, bool pkcs8, struct sg_err *err)
{
	BIO *b = NULL;
	char *s = NULL;
	int ok;

	if (!pkcs8 && (s = ec_sec1_pem(k)) != NULL)
		return s;
	b = BIO_new(BIO_s_secmem());
	if (b == NULL)
		sg_die("out of memory");
	/* Ed25519 has no traditional form (RFC 8410 7): PKCS#8 always. */
	if (pkcs8 || EVP_PKEY_get_base_id(k) == EVP_PKEY_ED25519)
		ok = PEM_write_bio_PKCS8PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
	else
		ok = PEM_write_bio_PrivateKey_traditional(b, k, NULL, NULL, 0, NULL, NULL);
	if (ok != 1) {
		sg_err_ossl(err, SG_CRYPTO, "unable to encode the private key");
		goto out;
	}
	s = bio_take_string(b);
out:
	BIO_free(b);
	return s;
}

int ca_pubkey_der(const EVP_PKEY *k, unsigned char **out, size_t *len, struct sg_err *err)
{
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(k, &der);

	if (n <= 0)
		return sg_err_ossl(err, SG_CRYPTO, "unable to encode a public key");
	*out = sg_xmalloc((size_t)n);
	memcpy(*out, der, (size_t)n);
	*len = (size_t)n;
	OPENSSL_free(der);
	return 0;
}

/* ---------------- Names ---------------- */

int ca_name_check(const char *what, const char *name, struct sg_err *err)
{
	size_t n = strlen(name);

	if (n == 0 || n > CA_NAME_MAX)
		return sg_err_set(err, SG_BAD_REQUEST, "%s must be 1 to %d characters", what, CA_NAME_MAX);
	if (strcmp(name, "default") == 0)
		return sg_err_set(err, SG_BAD_REQUEST, "%s 'default' is reserved", what);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (!isalnum(c) && c != '-' && c != '_' && c != '.')
			return sg_err_set(err, SG_BAD_REQUEST, "%s may only contain letters, digits, '-', '_' and '.'",
			                  what);
	}
	return 0;
}

/* ---------------- Records ---------------- */

void ca_skey(char *buf, size_t cap, const char *mount_id, const char *suffix)
{
	int n = snprintf(buf, cap, "%s/%s", mount_id, suffix);

	if (n < 0 || (size_t)n >= cap)
		sg_die("store key too long");
}

void ca_key_rec_clear(struct ca_key_rec *k)
{
	if (k == NULL)
		return;
	free(k->name);
	free(k->type);
	free(k->spki);
	free(k->ct);
	memset(k, 0, sizeof(*k));
}

void ca_key_recs_free(struct ca_key_rec *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		ca_key_rec_clear(&v[i]);
	free(v);
}

void ca_key_info_from_rec(struct ca_key_info *out, const struct ca_key_rec *rec)
{
	memset(out, 0, sizeof(*out));
	memcpy(out->id, rec->id, sizeof(out->id));
	out->name = sg_xstrdup(rec->name != NULL ? rec->name : "");
	out->type = sg_xstrdup(rec->type != NULL ? rec->type : "");
	out->bits = rec->bits;
}

void ca_key_info_clear(struct ca_key_info *k)
{
	if (k == NULL)
		return;
	free(k->name);
	free(k->type);
	memset(k, 0, sizeof(*k));
}

int ca_key_rec_seal(struct ca *ca, const char *mount_id, EVP_PKEY *key, const char *name, struct ca_key_rec *rec,
                    struct sg_err *err)
{
	char aad[CA_MAX_STORE_KEY];
	BIO *b = NULL;
	EVP_CIPHER_CTX *c = NULL;
	char *pt = NULL;
	long ptlen;
	int outl = 0, fin = 0, rc = -1;
	const char *type;
	int bits;

	if (ca_key_describe(key, &type, &bits, err) < 0)
		goto out;
	rec->name = sg_xstrdup(name != NULL ? name : "");
	rec->type = sg_xstrdup(type);
	rec->bits = bits;
	if (ca_pubkey_der(key, &rec->spki, &rec->spki_len, err) < 0)
		goto out;
	b = BIO_new(BIO_s_secmem());
	if (b == NULL)
		sg_die("out of memory");
	if (i2d_PKCS8PrivateKey_bio(b, key, NULL, NULL, 0, NULL, NULL) != 1) {
		sg_err_ossl(err, SG_CRYPTO, "unable to encode the private key");
		goto out;
	}
	ptlen = BIO_get_mem_data(b, &pt);
	if (ptlen <= 0 || ptlen > INT32_MAX / 2) {
		sg_err_set(err, SG_CRYPTO, "unable to encode the private key");
		goto out;
	}
	ca_skey(aad, sizeof(aad), mount_id, rec->id);
	if (RAND_bytes(rec->nonce, sizeof(rec->nonce)) != 1) {
		sg_err_ossl(err, SG_CRYPTO, "no randomness");
		goto out;
	}
	rec->ct = sg_xmalloc((size_t)ptlen + 16);
	c = EVP_CIPHER_CTX_new();
	if (c == NULL)
		sg_die("out of memory");
	if (EVP_EncryptInit_ex2(c, ca->aes, ca->kek, rec->nonce, NULL) != 1 ||
	    EVP_EncryptUpdate(c, NULL, &outl, (const unsigned char *)aad, (int)strlen(aad)) != 1 ||
	    EVP_EncryptUpdate(c, rec->ct, &outl, (const unsigned char *)pt, (int)ptlen) != 1 ||
	    EVP_EncryptFinal_ex(c, rec->ct + outl, &fin) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, CA_GCM_TAG, rec->tag) != 1) {
		sg_err_ossl(err, SG_CRYPTO, "unable to seal the private key");
		goto out;
	}
	rec->ct_len = (size_t)outl + (size_t)fin;
	rc = 0;
out:
	EVP_CIPHER_CTX_free(c);
	BIO_free(b);
	return rc;
}

EVP_PKEY *ca_key_rec_open(struct ca *ca, const char *mount_id, const struct ca_key_rec *rec, struct sg_err *err)
{
	char aad[CA_MAX_STORE_KEY];
	EVP_CIPHER_CTX *c = NULL;
	unsigned char *pt = NULL;
	const unsigned char *p;
	unsigned char tag[CA_GCM_TAG];
	EVP_PKEY *k = NULL, *ret = NULL;
	int outl = 0, fin = 0;
	size_t ptlen = 0;

	if (rec->ct_len == 0 || rec->ct_len > INT32_MAX / 2) {
		sg_err_set(err, SG_CRYPTO, "key %s: malformed record", rec->id);
		goto out;
	}
	ca_skey(aad, sizeof(aad), mount_id, rec->id);
	memcpy(tag, rec->tag, sizeof(tag));
	pt = sg_xmalloc(rec->ct_len + 16);
	c = EVP_CIPHER_CTX_new();
	if (c == NULL)
		sg_die("out of memory");
	if (EVP_DecryptInit_ex2(c, ca->aes, ca->kek, rec->nonce, NULL) != 1 ||
	    EVP_DecryptUpdate(c, NULL, &outl, (const unsigned char *)aad, (int)strlen(aad)) != 1 ||
	    EVP_DecryptUpdate(c, pt, &outl, rec->ct, (int)rec->ct_len) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, CA_GCM_TAG, tag) != 1 ||
	    EVP_DecryptFinal_ex(c, pt + outl, &fin) != 1) {
		/* GCM authentication failed: wrong KEK, or a record moved or altered. */
		ERR_clear_error();
		sg_err_set(err, SG_CRYPTO, "unable to decrypt key %s: wrong key-encryption key or damaged record",
		           rec->id);
		goto out;
	}
	ptlen = (size_t)outl + (size_t)fin;
	p = pt;
	k = d2i_AutoPrivateKey(NULL, &p, (long)ptlen);
	if (k == NULL || p != pt + ptlen) {
		ERR_clear_error();
		sg_err_set(err, SG_CRYPTO, "key %s: malformed private key", rec->id);
		goto out;
	}
	ret = k;
	k = NULL;
out:
	if (pt != NULL) {
		OPENSSL_cleanse(pt, rec->ct_len + 16);
		free(pt);
	}
	EVP_PKEY_free(k);
	EVP_CIPHER_CTX_free(c);
	return ret;
}

static json_t *b64_json(const unsigned char *b, size_t n)
{
	char *s = sg_base64(b, n);
	json_t *j = json_string(s);

	free(s);
	return j;
}

char *ca_key_rec_encode(const struct ca_key_rec *rec)
{
	json_t *o = json_object();
	char *s;

	json_object_set_new(o, "id", json_string(rec->id));
	json_object_set_new(o, "name", json_string(rec->name != NULL ? rec->name : ""));
	json_object_set_new(o, "type", json_string(rec->type != NULL ? rec->type : ""));
	json_object_set_new(o, "bits", json_integer(rec->bits));
	json_object_set_new(o, "public_key", b64_json(rec->spki, rec->spki_len));
	json_object_set_new(o, "nonce", b64_json(rec->nonce, sizeof(rec->nonce)));
	json_object_set_new(o, "tag", b64_json(rec->tag, sizeof(rec->tag)));
	json_object_set_new(o, "ciphertext", b64_json(rec->ct, rec->ct_len));
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (s == NULL)
		sg_die("out of memory");
	return s;
}

static int b64_field(const json_t *o, const char *key, unsigned char **out, size_t *len)
{
	const json_t *v = json_object_get(o, key);

	if (!json_is_string(v))
		return -1;
	return sg_base64_decode(json_string_value(v), json_string_length(v), out, len);
}

static int b64_fixed(const json_t *o, const char *key, unsigned char *out, size_t want)
{
	unsigned char *b = NULL;
	size_t n = 0;
	int rc = -1;

	if (b64_field(o, key, &b, &n) == 0 && n == want) {
		memcpy(out, b, want);
		rc = 0;
	}
	free(b);
	return rc;
}

int ca_key_rec_decode(const void *val, size_t len, struct ca_key_rec *rec, struct sg_err *err)
{
	json_error_t je;
	json_t *o = json_loadb(val, len, 0, &je);
	const json_t *id, *name, *type, *bits;
	int rc = -1;

	memset(rec, 0, sizeof(*rec));
	if (o == NULL || !json_is_object(o))
		goto out;
	id = json_object_get(o, "id");
	name = json_object_get(o, "name");
	type = json_object_get(o, "type");
	bits = json_object_get(o, "bits");
	if (!json_is_string(id) || json_string_length(id) != 36 || !json_is_string(type) || !json_is_integer(bits))
		goto out;
	memcpy(rec->id, json_string_value(id), 36);
	rec->name = sg_xstrdup(json_is_string(name) ? json_string_value(name) : "");
	rec->type = sg_xstrdup(json_string_value(type));
	rec->bits = (int)json_integer_value(bits);
	if (b64_field(o, "public_key", &rec->spki, &rec->spki_len) < 0 ||
	    b64_field(o, "ciphertext", &rec->ct, &rec->ct_len) < 0 ||
	    b64_fixed(o, "nonce", rec->nonce, sizeof(rec->nonce)) < 0 ||
	    b64_fixed(o, "tag", rec->tag, sizeof(rec->tag)) < 0)
		goto out;
	rc = 0;
out:
	if (rc < 0) {
		ca_key_rec_clear(rec);
		sg_err_set(err, SG_STORAGE, "malformed key record");
	}
	json_decref(o);
	return rc;
}

void ca_key_rec_put(struct store_batch *b, const char *mount_id, const struct ca_key_rec *rec)
{
	char key[CA_MAX_STORE_KEY];
	char *v = ca_key_rec_encode(rec);

	ca_skey(key, sizeof(key), mount_id, rec->id);
	store_batch_put(b, STORE_KEYS, key, strlen(key), v, strlen(v));
	free(v);
}

struct load_ctx {
	struct ca_key_rec *v;
	size_t n;
	struct sg_err *err;
};

static int load_cb(void *arg, const char *key, size_t klen, const void *val, size_t vlen)
{
	struct load_ctx *c = arg;

	(void)key;
	(void)klen;
	if (c->n >= CA_MAX_KEYS_PER_MOUNT) {
		sg_err_set(c->err, SG_STORAGE, "more than %d keys in one mount", CA_MAX_KEYS_PER_MOUNT);
		return -1;
	}
	c->v = sg_xrealloc(c->v, (c->n + 1) * sizeof(*c->v));
	if (ca_key_rec_decode(val, vlen, &c->v[c->n], c->err) < 0)
		return -1;
	c->n++;
	return 0;
}

int ca_key_rec_load_all(struct ca *ca, const char *mount_id, struct ca_key_rec **out, size_t *n,
                        struct sg_err *err)
{
	char prefix[CA_MAX_STORE_KEY];
	struct load_ctx c = {NULL, 0, err};

	ca_skey(prefix, sizeof(prefix), mount_id, "");
	if (store_scan(ca->st, STORE_KEYS, prefix, NULL, 0, load_cb, &c, err) < 0) {
		ca_key_recs_free(c.v, c.n);
		return -1;
	}
	*out = c.v;
	*n = c.n;
	return 0;
}

int ca_key_rec_get(struct ca *ca, const char *mount_id, const char *id, struct ca_key_rec *out, struct sg_err *err)
{
	char key[CA_MAX_STORE_KEY];
	unsigned char *v = NULL;
	size_t len = 0;
	int rc;

	if (strlen(id) != 36 || strchr(id, '/') != NULL)
		return sg_err_set(err, SG_NOT_FOUND, "unable to find PKI key for reference: %s", id);
	ca_skey(key, sizeof(key), mount_id, id);
	rc = store_get(ca->st, STORE_KEYS, key, strlen(key), &v, &len, err);
	if (rc < 0)
		return -1;
	if (rc == 0)
		return sg_err_set(err, SG_NOT_FOUND, "unable to find PKI key for reference: %s", id);
	rc = ca_key_rec_decode(v, len, out, err);
	free(v);
	return rc;
}

int ca_keys_default_read(struct ca *ca, const char *mount_id, char out[37], struct sg_err *err)
{
	char key[CA_MAX_STORE_KEY];
	unsigned char *v = NULL;
	size_t len = 0;
	json_error_t je;
	json_t *o = NULL;
	const json_t *d;
	int rc;

	out[0] = '\0';
	ca_skey(key, sizeof(key), mount_id, "keys");
	rc = store_get(ca->st, STORE_CONFIG, key, strlen(key), &v, &len, err);
	if (rc <= 0)
		return rc;
	o = json_loadb((const char *)v, len, 0, &je);
	free(v);
	d = json_object_get(o, "default");
	if (json_is_string(d) && json_string_length(d) == 36)
		memcpy(out, json_string_value(d), 37);
	json_decref(o);
	return 0;
}

void ca_keys_default_put(struct store_batch *b, const char *mount_id, const char *id)
{
	char key[CA_MAX_STORE_KEY];
	json_t *o = json_pack("{s:s}", "default", id);
	char *s = json_dumps(o, JSON_COMPACT);

	if (s == NULL)
		sg_die("out of memory");
	ca_skey(key, sizeof(key), mount_id, "keys");
	store_batch_put(b, STORE_CONFIG, key, strlen(key), s, strlen(s));
	free(s);
	json_decref(o);
}

static bool looks_like_uuid(const char *s)
{
	return strlen(s) == 36 && s[8] == '-' && s[13] == '-' && s[18] == '-' && s[23] == '-';
}

int ca_key_rec_resolve(struct ca *ca, const char *mount_id, const char *ref, struct ca_key_rec *out,
                       struct sg_err *err)
{
	struct ca_key_rec *all = NULL;
	size_t n = 0;
	char def[37];
	struct sg_err tmp;
	int rc = -1;

	if (ref == NULL || ref[0] == '\0')
		ref = "default";
	if (strcmp(ref, "default") == 0) {
		if (ca_keys_default_read(ca, mount_id, def, err) < 0)
			return -1;
		if (def[0] == '\0')
			return sg_err_set(err, SG_NOT_FOUND, "no default key configured");
		return ca_key_rec_get(ca, mount_id, def, out, err);
	}
	if (looks_like_uuid(ref)) {
		sg_err_init(&tmp);
		if (ca_key_rec_get(ca, mount_id, ref, out, &tmp) == 0)
			return 0;
		if (tmp.code != SG_NOT_FOUND) {
			*err = tmp;
			return -1;
		}
	}
	if (ca_key_rec_load_all(ca, mount_id, &all, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (all[i].name != NULL && strcmp(all[i].name, ref) == 0) {
			*out = all[i];
			memset(&all[i], 0, sizeof(all[i]));
			rc = 0;
			break;
		}
	}
	if (rc < 0)
		sg_err_set(err, SG_NOT_FOUND, "unable to find PKI key for reference: %s", ref);
	ca_key_recs_free(all, n);
	return rc;
}

int ca_key_stage_new(struct ca *ca, const char *mount_id, EVP_PKEY *key, const char *name, struct store_batch *b,
                     struct ca_key_rec *rec, struct sg_err *err)
{
	struct ca_key_rec *all = NULL;
	size_t n = 0;
	char def[37];
	int rc = -1;

	memset(rec, 0, sizeof(*rec));
	if (name != NULL && name[0] != '\0' && ca_name_check("key_name", name, err) < 0)
		return -1;
	if (ca_key_rec_load_all(ca, mount_id, &all, &n, err) < 0)
		return -1;
	if (n >= CA_MAX_KEYS_PER_MOUNT) {
		sg_err_set(err, SG_BAD_REQUEST, "a mount holds at most %d keys", CA_MAX_KEYS_PER_MOUNT);
		goto out;
	}
	for (size_t i = 0; name != NULL && name[0] != '\0' && i < n; i++) {
		if (all[i].name != NULL && strcmp(all[i].name, name) == 0) {
			sg_err_set(err, SG_BAD_REQUEST, "key name '%s' is already in use", name);
			goto out;
		}
	}
	sg_uuid(rec->id);
	if (ca_key_rec_seal(ca, mount_id, key, name, rec, err) < 0)
		goto out;
	ca_key_rec_put(b, mount_id, rec);
	if (ca_keys_default_read(ca, mount_id, def, err) < 0)
		goto out;
	if (def[0] == '\0')
		ca_keys_default_put(b, mount_id, rec->id);
	rc = 0;
out:
	if (rc < 0)
		ca_key_rec_clear(rec);
	ca_key_recs_free(all, n);
	return rc;
}

/* ---------------- PEM bundles ---------------- */

void ca_bundle_clear(struct ca_bundle *b)
{
	if (b == NULL)
		return;
	sk_X509_pop_free(b->certs, X509_free);
	for (size_t i = 0; i < b->nkeys; i++)
		EVP_PKEY_free(b->keys[i]);
	free(b->keys);
	memset(b, 0, sizeof(*b));
}

static bool is_key_block(const char *label)
{
	return strcmp(label, "PRIVATE KEY") == 0 || strcmp(label, "RSA PRIVATE KEY") == 0 ||
	       strcmp(label, "EC PRIVATE KEY") == 0;
}

int ca_bundle_parse(const char *pem, size_t len, bool allow_keys, struct ca_bundle *out, struct sg_err *err)
{
	struct ca_pem_blocks blocks = {0};
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (len > CA_MAX_BUNDLE_BYTES)
		return sg_err_set(err, SG_TOO_LARGE, "PEM bundle larger than %u bytes", CA_MAX_BUNDLE_BYTES);
	if (ca_pem_blocks_parse(pem, len, CA_PEM_MAX_BLOCKS, SG_BAD_PEM, &blocks, err) < 0)
		return -1;
	out->certs = sk_X509_new_null();
	if (out->certs == NULL)
		sg_die("out of memory");
	for (size_t i = 0; i < blocks.n; i++) {
		const struct ca_pem_block *bl = &blocks.v[i];
		const unsigned char *p = bl->der;

		if (strcmp(bl->label, "CERTIFICATE") == 0) {
			X509 *x;

			if (sk_X509_num(out->certs) >= CA_MAX_CHAIN) {
				sg_err_set(err, SG_BAD_REQUEST, "more than %d certificates in the bundle", CA_MAX_CHAIN);
				goto out;
			}
			x = d2i_X509(NULL, &p, (long)bl->der_len);
			if (x == NULL || p != bl->der + bl->der_len) {
				X509_free(x);
				sg_err_ossl(err, SG_BAD_PEM, "malformed certificate in the bundle");
				goto out;
			}
			sk_X509_push(out->certs, x);
		} else if (is_key_block(bl->label)) {
			EVP_PKEY *k;

			if (!allow_keys) {
				sg_err_set(err, SG_BAD_REQUEST, "private keys are not accepted here");
				goto out;
			}
			if (out->nkeys >= CA_MAX_CHAIN) {
				sg_err_set(err, SG_BAD_REQUEST, "more than %d keys in the bundle", CA_MAX_CHAIN);
				goto out;
			}
			k = d2i_AutoPrivateKey(NULL, &p, (long)bl->der_len);
			if (k == NULL || p != bl->der + bl->der_len) {
				/* OpenSSL's reasons may quote key bytes: never pass them on. */
				EVP_PKEY_free(k);
				ERR_clear_error();
				sg_err_set(err, SG_BAD_PEM, "malformed private key in the bundle");
				goto out;
			}
			out->keys = sg_xrealloc(out->keys, (out->nkeys + 1) * sizeof(*out->keys));
			out->keys[out->nkeys++] = k;
		} else if (strcmp(bl->label, "ENCRYPTED PRIVATE KEY") == 0) {
			sg_err_set(err, SG_BAD_REQUEST, "encrypted private keys are not supported");
			goto out;
		} else if (strcmp(bl->label, "EC PARAMETERS") != 0) {
			/* "openssl ecparam -genkey" prints the curve before the key: harmless. */
			sg_err_set(err, SG_BAD_PEM, "unexpected PEM block '%s'", bl->label);
			goto out;
		}
	}
	if (sk_X509_num(out->certs) == 0 && out->nkeys == 0) {
		sg_err_set(err, SG_BAD_PEM, "no certificate or key found in the PEM data");
		goto out;
	}
	rc = 0;
out:
	ca_pem_blocks_clear(&blocks);
	if (rc < 0)
		ca_bundle_clear(out);
	return rc;
}

/* ---------------- Public key API ---------------- */

int ca_key_list(struct ca *ca, const struct ca_mount *m, struct ca_key_info **out, size_t *n, struct sg_err *err)
{
	struct ca_key_rec *all = NULL;
	size_t cnt = 0;

	*out = NULL;
	*n = 0;
	if (ca_mount_check(m, err) < 0 || ca_key_rec_load_all(ca, m->id, &all, &cnt, err) < 0)
		return -1;
	if (cnt > 0)
		*out = sg_xcalloc(cnt, sizeof(**out));
	for (size_t i = 0; i < cnt; i++)
		ca_key_info_from_rec(&(*out)[i], &all[i]);
	*n = cnt;
	ca_key_recs_free(all, cnt);
	return 0;
}

int ca_key_get(struct ca *ca, const struct ca_mount *m, const char *ref, struct ca_key_info *out, struct sg_err *err)
{
	struct ca_key_rec rec = {0};

	if (ca_mount_check(m, err) < 0 || ca_key_rec_resolve(ca, m->id, ref, &rec, err) < 0)
		return -1;
	ca_key_info_from_rec(out, &rec);
	ca_key_rec_clear(&rec);
	return 0;
}

int ca_key_rename(struct ca *ca, const struct ca_mount *m, const char *ref, const char *name, struct sg_err *err)
{
	struct ca_key_rec rec = {0}, *all = NULL;
	struct store_batch *b = NULL;
	size_t n = 0;
	int rc = -1;

	if (ca_mount_check(m, err) < 0)
		return -1;
	if (name != NULL && name[0] != '\0' && ca_name_check("key_name", name, err) < 0)
		return -1;
	pthread_mutex_lock(&ca->admin);
	if (ca_key_rec_resolve(ca, m->id, ref, &rec, err) < 0 || ca_key_rec_load_all(ca, m->id, &all, &n, err) < 0)
		goto out;
	for (size_t i = 0; name != NULL && name[0] != '\0' && i < n; i++) {
		if (strcmp(all[i].id, rec.id) != 0 && all[i].name != NULL && strcmp(all[i].name, name) == 0) {
			sg_err_set(err, SG_BAD_REQUEST, "key name '%s' is already in use", name);
			goto out;
		}
	}
	free(rec.name);
	rec.name = sg_xstrdup(name != NULL ? name : "");
	b = store_batch_new();
	ca_key_rec_put(b, m->id, &rec);
	if (store_commit(ca->st, b, err) < 0)
		goto out;
	ca_state_invalidate(ca, m->id);
	rc = 0;
out:
	pthread_mutex_unlock(&ca->admin);
	store_batch_free(b);
	ca_key_rec_clear(&rec);
	ca_key_recs_free(all, n);
	return rc;
}

int ca_key_delete(struct ca *ca, const struct ca_mount *m, const char *ref, struct sg_err *err)
{
	struct ca_key_rec rec = {0};
	struct ca_mstate *s = NULL;
	struct store_batch *b = NULL;
	char key[CA_MAX_STORE_KEY], def[37];
	int rc = -1;

	if (ca_mount_check(m, err) < 0)
		return -1;
	pthread_mutex_lock(&ca->admin);
	if (ca_key_rec_resolve(ca, m->id, ref, &rec, err) < 0 || ca_state_get(ca, m->id, &s, err) < 0)
		goto out;
	for (size_t i = 0; i < s->n; i++) {
		if (strcmp(s->issuers[i].key_id, rec.id) == 0) {
			sg_err_set(err, SG_BAD_REQUEST, "unable to delete key %s: it is in use by issuer %s", rec.id,
			           s->issuers[i].id);
			goto out;
		}
	}
	if (ca_keys_default_read(ca, m->id, def, err) < 0)
		goto out;
	b = store_batch_new();
	ca_skey(key, sizeof(key), m->id, rec.id);
	store_batch_del(b, STORE_KEYS, key, strlen(key));
	if (strcmp(def, rec.id) == 0) {
		ca_skey(key, sizeof(key), m->id, "keys");
		store_batch_del(b, STORE_CONFIG, key, strlen(key));
	}
	if (store_commit(ca->st, b, err) < 0)
		goto out;
	ca_state_invalidate(ca, m->id);
	rc = 0;
out:
	pthread_mutex_unlock(&ca->admin);
	ca_state_release(s);
	store_batch_free(b);
	ca_key_rec_clear(&rec);
	return rc;
}

int ca_key_create(struct ca *ca, const struct ca_mount *m, const struct ca_keyspec *spec, const char *name,
                  bool pkcs8, struct ca_key_info *out, char **pem_out, struct sg_err *err)
{
	EVP_PKEY *k = NULL;
	struct ca_key_rec rec = {0};
	struct store_batch *b = NULL;
	char *pem = NULL;
	int rc = -1;

	if (pem_out != NULL)
		*pem_out = NULL;
	if (ca_mount_check(m, err) < 0)
		return -1;
	k = ca_key_generate(spec, err);
	if (k == NULL)
		return -1;
	if (pem_out != NULL && (pem = ca_key_to_pem(k, pkcs8, err)) == NULL)
		goto out;
	pthread_mutex_lock(&ca->admin);
	b = store_batch_new();
	if (ca_key_stage_new(ca, m->id, k, name, b, &rec, err) < 0 || store_commit(ca->st, b, err) < 0) {
		pthread_mutex_unlock(&ca->admin);
		goto out;
	}
	ca_state_invalidate(ca, m->id);
	pthread_mutex_unlock(&ca->admin);
	ca_key_info_from_rec(out, &rec);
	if (pem_out != NULL) {
		*pem_out = pem;
		pem = NULL;
	}
	rc = 0;
out:
	if (pem != NULL) {
		OPENSSL_cleanse(pem, strlen(pem));
		free(pem);
	}
	store_batch_free(b);
	ca_key_rec_clear(&rec);
	EVP_PKEY_free(k);
	return rc;
}

int ca_keys_default_get(struct ca *ca, const struct ca_mount *m, char out[37], struct sg_err *err)
{
	if (ca_mount_check(m, err) < 0)
		return -1;
	return ca_keys_default_read(ca, m->id, out, err);
}

int ca_keys_default_set(struct ca *ca, const struct ca_mount *m, const char *ref, struct sg_err *err)
{
	struct ca_key_rec rec = {0};
	struct store_batch *b = NULL;
	int rc = -1;

	if (ca_mount_check(m, err) < 0)
		return -1;
	pthread_mutex_lock(&ca->admin);
	if (ca_key_rec_resolve(ca, m->id, ref, &rec, err) < 0)
		goto out;
	b = store_batch_new();
	ca_keys_default_put(b, m->id, rec.id);
	if (store_commit(ca->st, b, err) < 0)
		goto out;
	rc = 0;
out:
	pthread_mutex_unlock(&ca->admin);
	store_batch_free(b);
	ca_key_rec_clear(&rec);
	return rc;
}
