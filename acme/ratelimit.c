/*
 * In-memory request counters for ACME rate limits (see acme.h): a sliding
 * window estimated from two fixed windows, in a bounded open-addressing
 * table keyed by a keyed hash of the limit's name.
 */
#include "acme/acme.h"

#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

struct rl_slot {
	uint64_t key;       /* 0 = free */
	int64_t window;     /* index of the current fixed window (time / window_s) */
	int64_t cur, prev;  /* counts in the current and the previous window */
};

struct acme_ratelimit {
	pthread_mutex_t mu;
	int64_t window_s;
	unsigned char salt[16]; /* random per process: keys cannot be chosen to collide */
	struct rl_slot *slots;
};

struct acme_ratelimit *acme_ratelimit_new(int64_t window_s)
{
	struct acme_ratelimit *rl = sg_xcalloc(1, sizeof(*rl));

	if (pthread_mutex_init(&rl->mu, NULL) != 0)
		sg_die("pthread_mutex_init failed");
	rl->window_s = window_s > 0 ? window_s : 3600;
	if (RAND_bytes(rl->salt, sizeof(rl->salt)) != 1)
		sg_die("RAND_bytes failed");
	rl->slots = sg_xcalloc(ACME_RL_SLOTS, sizeof(*rl->slots));
	return rl;
}

void acme_ratelimit_free(struct acme_ratelimit *rl)
{
	if (rl == NULL)
		return;
	pthread_mutex_destroy(&rl->mu);
	free(rl->slots);
	free(rl);
}

static uint64_t rl_hash(const struct acme_ratelimit *rl, const char *key)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	uint64_t h = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, rl->salt, sizeof(rl->salt)) != 1 || EVP_DigestUpdate(ctx, key, strlen(key)) != 1 ||
	    EVP_DigestFinal_ex(ctx, md, &mdlen) != 1)
		sg_die("SHA-256 failed");
	EVP_MD_CTX_free(ctx);
	memcpy(&h, md, sizeof(h));
	return h != 0 ? h : 1;
}

/* Rolls a slot's counts forward to window w. */
static void rl_roll(struct rl_slot *s, int64_t w)
{
	if (s->window == w)
		return;
	s->prev = s->window == w - 1 ? s->cur : 0;
	s->cur = 0;
	s->window = w;
}

/*
 * The slot of key h, claimed if absent: the first free slot of the probe,
 * else the first idle for two windows (it counts nothing any more), else
 * the least recently used one.
 */
static struct rl_slot *rl_find(struct acme_ratelimit *rl, uint64_t h, int64_t w)
{
	struct rl_slot *free_slot = NULL, *stale = NULL, *oldest = NULL;

	for (unsigned i = 0; i < ACME_RL_PROBE; i++) {
		struct rl_slot *s = &rl->slots[(h + i) & (ACME_RL_SLOTS - 1)];

		if (s->key == h)
			return s;
		if (s->key == 0) {
			if (free_slot == NULL)
				free_slot = s;
		} else if (s->window < w - 1) {
			if (stale == NULL)
				stale = s;
		} else if (oldest == NULL || s->window < oldest->window) {
			oldest = s;
		}
	}
	if (free_slot == NULL)
		free_slot = stale != NULL ? stale : oldest;
	memset(free_slot, 0, sizeof(*free_slot));
	free_slot->key = h;
	free_slot->window = w;
	return free_slot;
}

/* The sliding-window estimate at time now, in units scaled by window_s (integer arithmetic). */
static int64_t rl_scaled(const struct acme_ratelimit *rl, const struct rl_slot *s, int64_t now)
{
	int64_t into = now - s->window * rl->window_s;

	return s->prev * (rl->window_s - into) + s->cur * rl->window_s;
}

/*
 * Seconds from now until one more unit fits under limit: within this
 * window when the previous window's share decays enough, else in the next
 * one, where the current count becomes the decaying share.
 */
static int64_t rl_wait(const struct acme_ratelimit *rl, const struct rl_slot *s, int64_t limit, int64_t now)
{
	int64_t W = rl->window_s, into = now - s->window * W, x, t;

	/* This window, t seconds on: prev * (W - into - t) + (cur + 1) * W <= limit * W. */
	if (s->cur + 1 <= limit && s->prev > 0) {
		x = s->prev * (W - into) + (s->cur + 1 - limit) * W;
		t = x / s->prev + (x % s->prev != 0);
		if (t < W - into)
			return t > 0 ? t : 1;
	}
	/* The next window, u seconds in: cur * (W - u) + W <= limit * W. */
	t = W - into;
	x = (s->cur + 1 - limit) * W;
	if (x > 0 && s->cur > 0)
		t += x / s->cur + (x % s->cur != 0);
	return t > 0 ? t : 1;
}

int acme_ratelimit_take(struct acme_ratelimit *rl, const char *const *keys, const int64_t *limits, size_t n,
                        int64_t now, int64_t *retry_after)
{
	struct rl_slot *slots[ACME_RL_MAX_KEYS];
	uint64_t hashes[ACME_RL_MAX_KEYS];
	int64_t w = now / rl->window_s, wait = 0;
	size_t i;

	*retry_after = 0;
	if (n > ACME_RL_MAX_KEYS)
		n = ACME_RL_MAX_KEYS;
	for (i = 0; i < n; i++)
		hashes[i] = limits[i] > 0 ? rl_hash(rl, keys[i]) : 0;
	pthread_mutex_lock(&rl->mu);
	for (i = 0; i < n; i++) {
		slots[i] = NULL;
		if (limits[i] <= 0)
			continue;
		slots[i] = rl_find(rl, hashes[i], w);
		rl_roll(slots[i], w);
		if (rl_scaled(rl, slots[i], now) + rl->window_s > limits[i] * rl->window_s) {
			int64_t t = rl_wait(rl, slots[i], limits[i], now);

			if (t > wait)
				wait = t;
		}
	}
	if (wait == 0)
		for (i = 0; i < n; i++)
			if (slots[i] != NULL)
				slots[i]->cur++;
	pthread_mutex_unlock(&rl->mu);
	*retry_after = wait;
	return wait > 0 ? 1 : 0;
}
