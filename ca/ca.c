/*
 * The CA object: the store, the KEK, the per-mount cache of loaded issuers
 * and the revoke hook. See ca/internal.h for the concurrency model.
 */
#include "ca/internal.h"

#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int ca_new(struct store *st, const unsigned char kek[CA_KEK_BYTES], struct ca **out, struct sg_err *err)
{
	struct ca *ca;
	EVP_CIPHER *aes = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);

	if (aes == NULL)
		return sg_err_ossl(err, SG_CRYPTO, "AES-256-GCM is not available");
	ca = sg_xcalloc(1, sizeof(*ca));
	ca->st = st;
	memcpy(ca->kek, kek, CA_KEK_BYTES);
	ca->aes = aes;
	if (pthread_mutex_init(&ca->lock, NULL) != 0 || pthread_mutex_init(&ca->admin, NULL) != 0)
		sg_die("pthread_mutex_init failed");
	*out = ca;
	return 0;
}

void ca_free(struct ca *ca)
{
	struct ca_mslot *s, *next;

	if (ca == NULL)
		return;
	for (s = ca->slots; s != NULL; s = next) {
		next = s->next;
		ca_state_release(s->st);
		free(s->mount_id);
		free(s);
	}
	OPENSSL_cleanse(ca->kek, sizeof(ca->kek));
	EVP_CIPHER_free(ca->aes);
	pthread_mutex_destroy(&ca->lock);
	pthread_mutex_destroy(&ca->admin);
	free(ca);
}

void ca_set_revoke_hook(struct ca *ca, ca_revoke_hook hook, void *arg)
{
	pthread_mutex_lock(&ca->lock);
	ca->hook = hook;
	ca->hook_arg = arg;
	pthread_mutex_unlock(&ca->lock);
}

int ca_mount_check(const struct ca_mount *m, struct sg_err *err)
{
	size_t n;

	ERR_clear_error();
	if (m == NULL || m->id == NULL)
		return sg_err_set(err, SG_INTERNAL, "no mount");
	n = strlen(m->id);
	if (n == 0 || n > CA_MAX_MOUNT_ID || strchr(m->id, '/') != NULL)
		return sg_err_set(err, SG_INTERNAL, "malformed mount id");
	return 0;
}

/* ---------------- The per-mount cache ---------------- */

static struct ca_mslot *slot_find(struct ca *ca, const char *mount_id, bool create)
{
	struct ca_mslot *s;

	for (s = ca->slots; s != NULL; s = s->next)
		if (strcmp(s->mount_id, mount_id) == 0)
			return s;
	if (!create)
		return NULL;
	s = sg_xcalloc(1, sizeof(*s));
	s->mount_id = sg_xstrdup(mount_id);
	s->next = ca->slots;
	ca->slots = s;
	return s;
}

int ca_state_get(struct ca *ca, const char *mount_id, struct ca_mstate **out, struct sg_err *err)
{
	struct ca_mslot *slot;
	struct ca_mstate *st = NULL;
	uint64_t gen;

	pthread_mutex_lock(&ca->lock);
	slot = slot_find(ca, mount_id, true);
	if (slot->st != NULL) {
		atomic_fetch_add(&slot->st->refs, 1);
		*out = slot->st;
		pthread_mutex_unlock(&ca->lock);
		return 0;
	}
	gen = slot->gen;
	pthread_mutex_unlock(&ca->lock);

	/* Loading decrypts keys and builds chains: done outside the lock. */
	if (ca_state_load(ca, mount_id, &st, err) < 0)
		return -1;

	pthread_mutex_lock(&ca->lock);
	slot = slot_find(ca, mount_id, true);
	/* A write since we started loading makes our copy stale: use it once, do not cache it. */
	if (slot->gen == gen && slot->st == NULL) {
		atomic_fetch_add(&st->refs, 1);
		slot->st = st;
	}
	pthread_mutex_unlock(&ca->lock);
	*out = st;
	return 0;
}

void ca_state_release(struct ca_mstate *s)
{
	if (s != NULL && atomic_fetch_sub(&s->refs, 1) == 1)
		ca_mstate_free(s);
}

void ca_state_invalidate(struct ca *ca, const char *mount_id)
{
	struct ca_mslot *slot;
	struct ca_mstate *old = NULL;

	pthread_mutex_lock(&ca->lock);
	slot = slot_find(ca, mount_id, true);
	slot->gen++;
	old = slot->st;
	slot->st = NULL;
	pthread_mutex_unlock(&ca->lock);
	ca_state_release(old);
}

void ca_mount_forget(struct ca *ca, const char *mount_id)
{
	struct ca_mslot **pp, *s;
	struct ca_mstate *old = NULL;

	pthread_mutex_lock(&ca->lock);
	for (pp = &ca->slots; (s = *pp) != NULL; pp = &s->next) {
		if (strcmp(s->mount_id, mount_id) == 0) {
			*pp = s->next;
			old = s->st;
			free(s->mount_id);
			free(s);
			break;
		}
	}
	pthread_mutex_unlock(&ca->lock);
	ca_state_release(old);
}

int ca_mount_purge(struct ca *ca, const struct ca_mount *m, struct sg_err *err)
{
	static const enum store_table tables[] = {STORE_KEYS,  STORE_ISSUERS, STORE_ROLES,
	                                          STORE_CERTS, STORE_REVOKED, STORE_CONFIG};
	char prefix[CA_MAX_STORE_KEY];
	struct store_batch *b;
	int rc;

	if (ca_mount_check(m, err) < 0)
		return -1;
	/* The trailing '/' keeps mount "ab" from purging mount "abc". */
	ca_skey(prefix, sizeof(prefix), m->id, "");
	b = store_batch_new();
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++)
		store_batch_del_prefix(b, tables[i], prefix);
	pthread_mutex_lock(&ca->admin);
	rc = store_commit(ca->st, b, err);
	ca_state_invalidate(ca, m->id);
	pthread_mutex_unlock(&ca->admin);
	store_batch_free(b);
	if (rc == 0)
		ca_mount_forget(ca, m->id);
	return rc;
}

/* ---------------- Small helpers shared by the files of ca/ ---------------- */

int64_t ca_asn1_time_unix(const ASN1_TIME *t)
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return (int64_t)timegm(&tm);
}

void ca_go_duration(int64_t secs, char *buf, size_t len)
{
	long long h, mi, s;

	if (secs <= 0) {
		snprintf(buf, len, "0s");
		return;
	}
	h = secs / 3600;
	mi = (secs % 3600) / 60;
	s = secs % 60;
	if (h > 0)
		snprintf(buf, len, "%lldh%lldm%llds", h, mi, s);
	else if (mi > 0)
		snprintf(buf, len, "%lldm%llds", mi, s);
	else
		snprintf(buf, len, "%llds", s);
}

int ca_x509_der(X509 *x, unsigned char **out, size_t *len, struct sg_err *err)
{
	unsigned char *der = NULL;
	int n = i2d_X509(x, &der);

	if (n <= 0)
		return sg_err_ossl(err, SG_CRYPTO, "unable to encode a certificate");
	*out = sg_xmalloc((size_t)n);
	memcpy(*out, der, (size_t)n);
	*len = (size_t)n;
	OPENSSL_free(der);
	return 0;
}
