/*
 * server_json_dumps (server/json.c) against jansson's json_dumps: the same
 * bytes for every document, flags it handles itself and flags it passes on.
 * Documents are random (seeded, replayable with SIGIL_JSON_SEED) plus fixed
 * edge cases: every control byte, quotes and backslashes, multi-byte UTF-8
 * up to U+10FFFF (escaped as surrogate pairs with JSON_ENSURE_ASCII), reals
 * whose %g form needs ".0" or loses exponent zeros, integer extremes.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/json.h"
#include "tests/unit/t.h"

#define RANDOM_DOCS 3000
#define MAX_RANDOM_DEPTH 5

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

static size_t utf8_put(uint32_t cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | cp >> 12);
		out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | cp >> 18);
	out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

static json_t *rand_string(void)
{
	char buf[256];
	size_t n = 0, want = rnd() % 40;

	for (size_t i = 0; i < want; i++) {
		uint32_t cp;

		switch (rnd() % 6) {
		case 0:
			cp = (uint32_t)(rnd() % 0x20); /* controls, NUL included */
			break;
		case 1:
			cp = "\"\\/\x7f"[rnd() % 4];
			break;
		case 2:
			cp = 0x80 + (uint32_t)(rnd() % (0x800 - 0x80));
			break;
		case 3:
			do
				cp = 0x800 + (uint32_t)(rnd() % (0x10000 - 0x800));
			while (cp >= 0xd800 && cp <= 0xdfff);
			break;
		case 4:
			cp = 0x10000 + (uint32_t)(rnd() % (0x110000 - 0x10000));
			break;
		default:
			cp = 0x20 + (uint32_t)(rnd() % 0x5f);
			break;
		}
		n += utf8_put(cp, buf + n);
	}
	return json_stringn(buf, n);
}

static double pow10_int(int e)
{
	double r = 1.0;

	for (; e > 0; e--)
		r *= 10.0;
	for (; e < 0; e++)
		r /= 10.0;
	return r;
}

static json_t *rand_real(void)
{
	static const double fixed[] = {0.0, -0.0, 1.0, -1.0, 0.1, 100.0, 1e21, 1e22, 1e-7, 1.5e-7, 1e300, -1e-300,
	                               123456789012345678.0, 0.30000000000000004, 5e-324, 1.7976931348623157e308};
	double m;
	int e;

	if (rnd() % 3 == 0)
		return json_real(fixed[rnd() % (sizeof(fixed) / sizeof(fixed[0]))]);
	m = (double)(int64_t)(rnd() % 2000001) - 1000000.0;
	e = (int)(rnd() % 61) - 30;
	return json_real(m / 1000.0 * pow10_int(e));
}

static json_t *rand_value(int depth);

static json_t *rand_container(int depth, bool object)
{
	json_t *c = object ? json_object() : json_array();
	size_t n = rnd() % 6;

	for (size_t i = 0; i < n; i++) {
		json_t *v = rand_value(depth + 1);

		if (object) {
			json_t *k = rand_string();

			json_object_setn_new(c, json_string_value(k), json_string_length(k), v);
			json_decref(k);
		} else {
			json_array_append_new(c, v);
		}
	}
	return c;
}

static json_t *rand_value(int depth)
{
	static const json_int_t ints[] = {0, 1, -1, INT64_MAX, INT64_MIN, 4294967296, -2147483648};

	switch (rnd() % (depth >= MAX_RANDOM_DEPTH ? 6 : 8)) {
	case 0:
		return rand_string();
	case 1:
		return json_integer(rnd() % 2 ? ints[rnd() % 7] : (json_int_t)(rnd() % 100000) - 50000);
	case 2:
		return rand_real();
	case 3:
		return json_true();
	case 4:
		return json_false();
	case 5:
		return json_null();
	case 6:
		return rand_container(depth, true);
	default:
		return rand_container(depth, false);
	}
}

static const size_t flag_sets[] = {
	JSON_COMPACT | JSON_PRESERVE_ORDER,
	JSON_COMPACT,
	JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(6),
	JSON_COMPACT | JSON_REAL_PRECISION(3),
	JSON_COMPACT | JSON_SORT_KEYS,         /* passed on to jansson */
	JSON_INDENT(2) | JSON_PRESERVE_ORDER,  /* passed on to jansson */
};

static int same_as_jansson(const json_t *j, const char *what)
{
	int bad = 0;

	for (size_t f = 0; f < sizeof(flag_sets) / sizeof(flag_sets[0]); f++) {
		char *want = json_dumps(j, flag_sets[f]);
		char *got = server_json_dumps(j, flag_sets[f]);

		bool same = (want == NULL) == (got == NULL) && (want == NULL || strcmp(want, got) == 0);

		T_CHECK(same, "%s, flags %#zx:\n  jansson %s\n  ours    %s", what, flag_sets[f], want ? want : "(null)",
		        got ? got : "(null)");
		bad |= !same;
		free(want);
		free(got);
	}
	return bad;
}

static void test_fixed(void)
{
	json_t *doc = json_object(), *a = json_array();
	char all[0x80];
	char pem[2048];
	size_t o = 0;

	for (int i = 0; i < 0x80; i++)
		all[i] = (char)i;
	json_object_set_new(doc, "ascii", json_stringn(all, sizeof(all)));
	json_object_set_new(doc, "", json_string("empty key"));
	json_object_set_new(doc, "q\"k\\\n", json_string("key escapes"));
	json_object_set_new(doc, "utf8", json_string("\xc3\xa9\xe2\x82\xac\xf0\x9f\x94\x91 \xe2\x80\xa8"));
	json_object_set_new(doc, "empty_obj", json_object());
	json_object_set_new(doc, "empty_arr", json_array());
	json_array_append_new(a, json_integer(INT64_MIN));
	json_array_append_new(a, json_integer(INT64_MAX));
	json_array_append_new(a, json_real(1e21));
	json_array_append_new(a, json_real(1.5e-7));
	json_array_append_new(a, json_real(100.0));
	json_array_append_new(a, json_real(-0.0));
	json_array_append_new(a, json_null());
	json_array_append_new(a, json_true());
	json_array_append_new(a, json_false());
	json_object_set_new(doc, "scalars", a);
	/* An envelope as the issue path sends it: long strings with newlines. */
	o += (size_t)snprintf(pem + o, sizeof(pem) - o, "-----BEGIN CERTIFICATE-----\n");
	for (int i = 0; i < 20; i++)
		o += (size_t)snprintf(pem + o, sizeof(pem) - o,
		                      "MIIBszCCAVmgAwIBAgIUQmFzZTY0IGxpbmUgb2Ygc2l4dHktZm91ciBjaGFycyA/+w==\n");
	snprintf(pem + o, sizeof(pem) - o, "-----END CERTIFICATE-----");
	json_object_set_new(doc, "certificate", json_string(pem));
	json_object_set_new(doc, "nested", json_pack("{s:[{s:{s:[i,f,s]}}]}", "a", "b", "c", 1, 2.5, "x"));
	same_as_jansson(doc, "fixed document");
	json_decref(doc);

	/* Scalars at the top: json_dumps refuses them without JSON_ENCODE_ANY, and so do we. */
	doc = json_string("top");
	T_OK(server_json_dumps(doc, JSON_COMPACT) == NULL);
	json_decref(doc);
	T_OK(server_json_dumps(NULL, JSON_COMPACT) == NULL);

	/* Not valid UTF-8 (possible only through the _nocheck constructors): jansson's answer, whatever it is. */
	doc = json_object();
	json_object_set_new(doc, "bad", json_stringn_nocheck("a\xff\xfe", 3));
	same_as_jansson(doc, "invalid UTF-8");
	json_decref(doc);
	doc = json_object();
	json_object_set_new(doc, "surrogate", json_stringn_nocheck("\xed\xa0\x80", 3));
	json_object_set_new(doc, "overlong", json_stringn_nocheck("\xc0\xaf", 2));
	same_as_jansson(doc, "surrogate and overlong UTF-8");
	json_decref(doc);

	/* Deeper than SERVER_JSON_DUMP_MAX_DEPTH: handed to jansson, same bytes. */
	doc = json_array();
	{
		json_t *cur = doc;

		for (int i = 0; i < SERVER_JSON_DUMP_MAX_DEPTH + 5; i++) {
			json_t *next = json_array();

			json_array_append_new(cur, next);
			cur = next;
		}
	}
	same_as_jansson(doc, "deep nesting");
	json_decref(doc);
}

static void test_random(void)
{
	const char *env = getenv("SIGIL_JSON_SEED");
	uint64_t seed = env != NULL ? strtoull(env, NULL, 10) : (uint64_t)time(NULL);
	int bad = 0;

	rng_state = seed != 0 ? seed : 1;
	for (int i = 0; i < RANDOM_DOCS && bad < 5; i++) {
		json_t *doc = rand_container(0, rnd() % 2 == 0);
		char what[64];

		snprintf(what, sizeof(what), "random document %d", i);
		bad += same_as_jansson(doc, what);
		json_decref(doc);
	}
	if (bad)
		fprintf(stderr, "random documents: seed %" PRIu64 " (SIGIL_JSON_SEED to replay)\n", seed);
}

int main(void)
{
	test_fixed();
	test_random();
	return t_done();
}
