#include "common/util.h"
#include "tests/unit/t.h"

#include <stdlib.h>

static void test_durations(void)
{
	static const struct {
		const char *in;
		int ok;
		int64_t secs;
	} cases[] = {
		{"72h", 1, 259200},     {"2160h0m0s", 1, 7776000}, {"1h30m", 1, 5400},
		{"90s", 1, 90},         {"90", 1, 90},             {"0", 1, 0},
		{"1.5h", 1, 5400},      {"30d", 1, 2592000},       {"1500ms", 1, 1},
		{"15m", 1, 900},        {"", 0, 0},                {"h", 0, 0},
		{"10x", 0, 0},          {"-5s", 0, 0},             {"1h-5m", 0, 0},
		{"abc", 0, 0},          {"99999999999999999999h", 0, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t v = -1;
		int rc = sg_duration_parse(cases[i].in, &v);

		T_CHECK((rc == 0) == cases[i].ok, "duration '%s' rc=%d", cases[i].in, rc);
		if (cases[i].ok)
			T_CHECK(v == cases[i].secs, "duration '%s' = %lld", cases[i].in, (long long)v);
	}
}

static void test_loose_json(void)
{
	json_error_t je;
	json_t *o = json_loads("{\"b1\":\"true\",\"b2\":false,\"b3\":\"nope\",\"b4\":1,"
	                       "\"l1\":\"a.com, b.com,,c.com\",\"l2\":[\"x\",\"y\"],\"l3\":[1],"
	                       "\"d1\":\"2160h0m0s\",\"d2\":3600,\"d3\":\"soon\",\"i1\":\"42\","
	                       "\"i2\":\"4x\",\"s1\":5,\"n\":null}",
	                       0, &je);
	struct sg_err err;
	struct sg_strlist l = {0};
	bool b = false;
	int64_t d = 0;
	const char *s = NULL;

	T_OK(o != NULL);
	sg_err_init(&err);
	T_OK(sg_json_bool(o, "b1", &b, &err) == 1 && b);
	T_OK(sg_json_bool(o, "b2", &b, &err) == 1 && !b);
	T_OK(sg_json_bool(o, "b4", &b, &err) == 1 && b);
	T_OK(sg_json_bool(o, "missing", &b, &err) == 0);
	T_OK(sg_json_bool(o, "n", &b, &err) == 0);
	T_OK(sg_json_bool(o, "b3", &b, &err) == -1 && err.code == SG_BAD_REQUEST);
	T_OK(strstr(err.detail, "b3") != NULL);
	sg_err_init(&err);
	T_OK(sg_json_list(o, "l1", &l, &err) == 1 && l.n == 3 && !strcmp(l.v[1], "b.com"));
	T_OK(sg_json_list(o, "l2", &l, &err) == 1 && l.n == 2 && !strcmp(l.v[0], "x"));
	T_OK(sg_json_list(o, "l3", &l, &err) == -1 && err.code == SG_BAD_REQUEST);
	sg_err_init(&err);
	T_OK(sg_json_duration(o, "d1", &d, &err) == 1 && d == 7776000);
	T_OK(sg_json_duration(o, "d2", &d, &err) == 1 && d == 3600);
	T_OK(sg_json_duration(o, "d3", &d, &err) == -1);
	sg_err_init(&err);
	T_OK(sg_json_int(o, "i1", &d, &err) == 1 && d == 42);
	T_OK(sg_json_int(o, "i2", &d, &err) == -1);
	sg_err_init(&err);
	T_OK(sg_json_str(o, "s1", &s, &err) == -1 && err.code == SG_BAD_REQUEST);
	sg_strlist_clear(&l);
	json_decref(o);
}

static void test_first_error_wins(void)
{
	struct sg_err err;

	sg_err_init(&err);
	T_OK(sg_err_set(&err, SG_ROLE_DENIED, "first") == -1);
	sg_err_set(&err, SG_INTERNAL, "second");
	T_OK(err.code == SG_ROLE_DENIED);
	T_STREQ(err.detail, "first");
	T_OK(sg_err_http_status(SG_ROLE_DENIED) == 400);
	T_OK(sg_err_http_status(SG_PERMISSION_DENIED) == 403);
	T_STREQ(sg_err_acme_type(SG_BAD_CSR), "badCSR");
}

static void test_serial_hex(void)
{
	unsigned char b[20];
	size_t n = 0;
	unsigned char in[3] = {0x0a, 0xff, 0x01};
	char *s = sg_hex_colon(in, 3);

	T_STREQ(s, "0a:ff:01");
	free(s);
	T_OK(sg_hex_parse_serial("0a:ff:01", b, sizeof(b), &n) == 0 && n == 3 && b[1] == 0xff);
	T_OK(sg_hex_parse_serial("0a-ff-01", b, sizeof(b), &n) == 0 && n == 3);
	T_OK(sg_hex_parse_serial("aff01", b, sizeof(b), &n) == 0 && n == 3 && b[0] == 0x0a);
	T_OK(sg_hex_parse_serial("zz", b, sizeof(b), &n) == -1);
	T_OK(sg_hex_parse_serial("", b, sizeof(b), &n) == -1);
	T_OK(sg_hex_parse_serial("00112233445566778899aabbccddeeff0011223344", b, sizeof(b), &n) == -1);
}

static void test_time(void)
{
	int64_t t = 0;
	char buf[40];

	T_OK(sg_time_parse_rfc3339("2030-01-02T03:04:05Z", &t) == 0 && t == 1893553445);
	T_OK(sg_time_parse_rfc3339("2030-01-02T04:04:05+01:00", &t) == 0 && t == 1893553445);
	T_OK(sg_time_parse_rfc3339("2030-01-02 03:04:05", &t) == -1);
	T_OK(sg_time_parse_rfc3339("9999-12-31T23:59:59Z", &t) == 0 && t == 253402300799LL);
	sg_time_format_rfc3339(1893553445, buf, sizeof(buf));
	T_STREQ(buf, "2030-01-02T03:04:05Z");
}

static void test_base64(void)
{
	unsigned char *out = NULL;
	size_t n = 0;

	T_OK(sg_base64_decode("aGVsbG8", 7, &out, &n) == 0 && n == 5 && !memcmp(out, "hello", 5));
	free(out);
	T_OK(sg_base64_decode("-_8", 3, &out, &n) == 0 && n == 2 && out[0] == 0xfb && out[1] == 0xff);
	free(out);
	T_OK(sg_base64_decode("a$b", 3, &out, &n) == -1);
	T_OK(sg_ct_equal("abc", 3, "abc", 3) && !sg_ct_equal("abc", 3, "abd", 3));
}

int main(void)
{
	test_durations();
	test_loose_json();
	test_first_error_wins();
	test_serial_hex();
	test_time();
	test_base64();
	return t_done();
}
