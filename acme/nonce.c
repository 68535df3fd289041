/*
 * Replay nonces (RFC 8555 6.5). A nonce is base64url of
 *   node (1) | counter (8, big-endian) | issued (8, unix seconds) | HMAC-SHA256(key, first 17)[0..15]
 * so any holder of the key recognises a genuine nonce without storage, and
 * the node keeps only a bitmap of used counters over the last
 * ACME_NONCE_WINDOW issued: counter c lives in bit c mod WINDOW, cleared
 * when c is issued and set when c is used.
 */
#include "acme/acme.h"

#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#define NONCE_MAC_BYTES 16
#define NONCE_RAW_BYTES (1 + 8 + 8 + NONCE_MAC_BYTES)

struct acme_nonces {
	pthread_mutex_t mu;
	unsigned char key[32];
	uint8_t node;
	uint64_t next;              /* next counter to issue */
	uint8_t *used;              /* ACME_NONCE_WINDOW bits */
};

struct acme_nonces *acme_nonces_new(const unsigned char key[32], uint8_t node)
{
	struct acme_nonces *n = sg_xcalloc(1, sizeof(*n));

	if (key != NULL)
		memcpy(n->key, key, sizeof(n->key));
	else if (RAND_bytes(n->key, sizeof(n->key)) != 1)
		sg_die("RAND_bytes failed");
	n->node = node;
	n->next = 1;
	n->used = sg_xcalloc(ACME_NONCE_WINDOW / 8, 1);
	pthread_mutex_init(&n->mu, NULL);
	return n;
}

void acme_nonces_free(struct acme_nonces *n)
{
	if (n == NULL)
		return;
	OPENSSL_cleanse(n->key, sizeof(n->key));
	pthread_mutex_destroy(&n->mu);
	free(n->used);
	free(n);
}

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
}

static uint64_t get64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static void mac(const struct acme_nonces *n, const unsigned char *msg, size_t len, unsigned char out[32])
{
	unsigned int olen = 0;

	if (HMAC(EVP_sha256(), n->key, sizeof(n->key), msg, len, out, &olen) == NULL || olen != 32)
		sg_die("HMAC-SHA256 failed");
}

char *acme_nonce_new(struct acme_nonces *n)
{
	unsigned char raw[NONCE_RAW_BYTES], m[32];
	uint64_t c;

	pthread_mutex_lock(&n->mu);
	c = n->next++;
	n->used[(c % ACME_NONCE_WINDOW) / 8] &= (uint8_t) ~(1u << (c % 8));
	pthread_mutex_unlock(&n->mu);
	raw[0] = n->node;
	put64(raw + 1, c);
	put64(raw + 9, (uint64_t)sg_now());
	mac(n, raw, 17, m);
	memcpy(raw + 17, m, NONCE_MAC_BYTES);
	return sg_b64url(raw, sizeof(raw));
}

int acme_nonce_use(struct acme_nonces *n, const char *nonce, struct sg_err *err)
{
	unsigned char *raw = NULL, m[32];
	size_t len = 0;
	uint64_t c, issued;
	int64_t now = sg_now();
	int rc = -1;

	if (nonce == NULL || strlen(nonce) > 64 || sg_b64url_decode(nonce, strlen(nonce), &raw, &len) != 0 ||
	    len != NONCE_RAW_BYTES) {
		sg_err_set(err, SG_ACME_BAD_NONCE, "JWS has an invalid anti-replay nonce");
		goto out;
	}
	mac(n, raw, 17, m);
	if (CRYPTO_memcmp(m, raw + 17, NONCE_MAC_BYTES) != 0 || raw[0] != n->node) {
		sg_err_set(err, SG_ACME_BAD_NONCE, "JWS has an invalid anti-replay nonce");
		goto out;
	}
	c = get64(raw + 1);
	issued = get64(raw + 9);
	if ((int64_t)issued > now + 5 || now - (int64_t)issued > ACME_NONCE_TTL) {
		sg_err_set(err, SG_ACME_BAD_NONCE, "JWS anti-replay nonce has expired");
		goto out;
	}
	pthread_mutex_lock(&n->mu);
	if (c == 0 || c >= n->next || n->next - c > ACME_NONCE_WINDOW ||
	    (n->used[(c % ACME_NONCE_WINDOW) / 8] & (1u << (c % 8))) != 0) {
		pthread_mutex_unlock(&n->mu);
		sg_err_set(err, SG_ACME_BAD_NONCE, "JWS anti-replay nonce was already used or is too old");
		goto out;
	}
	n->used[(c % ACME_NONCE_WINDOW) / 8] |= (uint8_t)(1u << (c % 8));
	pthread_mutex_unlock(&n->mu);
	rc = 0;
out:
	free(raw);
	return rc;
}
