#include "common/util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static _Atomic int64_t clock_offset;
static atomic_int clock_env_read;

int64_t sg_now(void)
{
	if (!atomic_exchange(&clock_env_read, 1)) {
		const char *e = getenv("SIGIL_CLOCK_OFFSET");
		int64_t off;

		if (e != NULL && sg_duration_parse(e, &off) == 0)
			atomic_fetch_add(&clock_offset, off);
	}
	return (int64_t)time(NULL) + atomic_load(&clock_offset);
}

void sg_clock_advance(int64_t seconds)
{
	atomic_fetch_add(&clock_offset, seconds);
}

/* ---- String lists ---- */

void sg_strlist_addn(struct sg_strlist *l, const char *s, size_t n)
{
	l->v = sg_xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	l->v[l->n++] = sg_xstrndup(s, n);
}

void sg_strlist_add(struct sg_strlist *l, const char *s)
{
	sg_strlist_addn(l, s, strlen(s));
}

bool sg_strlist_has(const struct sg_strlist *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i], s) == 0)
			return true;
	return false;
}

bool sg_strlist_has_ci(const struct sg_strlist *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcasecmp(l->v[i], s) == 0)
			return true;
	return false;
}

void sg_strlist_copy(struct sg_strlist *dst, const struct sg_strlist *src)
{
	sg_strlist_clear(dst);
	for (size_t i = 0; i < src->n; i++)
		sg_strlist_add(dst, src->v[i]);
}

void sg_strlist_clear(struct sg_strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

json_t *sg_strlist_to_json(const struct sg_strlist *l)
{
	json_t *a = json_array();

	for (size_t i = 0; i < l->n; i++)
		json_array_append_new(a, json_string(l->v[i]));
	return a;
}

/* ---- Loose typing ---- */

static const json_t *field(const json_t *obj, const char *key)
{
	const json_t *v;

	if (obj == NULL || !json_is_object(obj))
		return NULL;
	v = json_object_get(obj, key);
	return (v == NULL || json_is_null(v)) ? NULL : v;
}

int sg_json_bool(const json_t *obj, const char *key, bool *out, struct sg_err *err)
{
	const json_t *v = field(obj, key);
	const char *s;

	if (v == NULL)
		return 0;
	if (json_is_boolean(v)) {
		*out = json_is_true(v);
		return 1;
	}
	if (json_is_integer(v) && (json_integer_value(v) == 0 || json_integer_value(v) == 1)) {
		*out = json_integer_value(v) == 1;
		return 1;
	}
	if (json_is_string(v)) {
		s = json_string_value(v);
		/* Go's strconv.ParseBool, which Vault's field parser uses. */
		if (!strcmp(s, "1") || !strcasecmp(s, "t") || !strcasecmp(s, "true")) {
			*out = true;
			return 1;
		}
		if (!strcmp(s, "0") || !strcasecmp(s, "f") || !strcasecmp(s, "false")) {
			*out = false;
			return 1;
		}
	}
	return sg_err_set(err, SG_BAD_REQUEST, "field '%s' must be a boolean", key);
}

int sg_json_int(const json_t *obj, const char *key, int64_t *out, struct sg_err *err)
{
	const json_t *v = field(obj, key);
	char *end;
	long long n;

	if (v == NULL)
		return 0;
	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return 1;
	}
	if (json_is_real(v) && json_real_value(v) == (double)(int64_t)json_real_value(v)) {
		*out = (int64_t)json_real_value(v);
		return 1;
	}
	if (json_is_string(v) && json_string_length(v) > 0) {
		errno = 0;
		n = strtoll(json_string_value(v), &end, 10);
		if (errno == 0 && *end == '\0') {
			*out = n;
			return 1;
		}
	}
	return sg_err_set(err, SG_BAD_REQUEST, "field '%s' must be an integer", key);
}

int sg_json_str(const json_t *obj, const char *key, const char **out, struct sg_err *err)
{
	const json_t *v = field(obj, key);

	if (v == NULL)
		return 0;
	if (json_is_string(v)) {
		*out = json_string_value(v);
		return 1;
	}
	return sg_err_set(err, SG_BAD_REQUEST, "field '%s' must be a string", key);
}

static void split_commas(struct sg_strlist *out, const char *s)
{
	while (*s != '\0') {
		const char *e = strchr(s, ',');
		size_t n = e ? (size_t)(e - s) : strlen(s);
		const char *b = s;
		size_t m = n;

		while (m > 0 && isspace((unsigned char)*b)) {
			b++;
			m--;
		}
		while (m > 0 && isspace((unsigned char)b[m - 1]))
			m--;
		if (m > 0 && out->n < SG_STRLIST_MAX)
			sg_strlist_addn(out, b, m);
		if (e == NULL)
			break;
		s = e + 1;
	}
}

int sg_json_list(const json_t *obj, const char *key, struct sg_strlist *out, struct sg_err *err)
{
	const json_t *v = field(obj, key);
	size_t i;
	json_t *el;

	if (v == NULL)
		return 0;
	if (json_is_string(v)) {
		sg_strlist_clear(out);
		split_commas(out, json_string_value(v));
		return 1;
	}
	if (!json_is_array(v))
		return sg_err_set(err, SG_BAD_REQUEST, "field '%s' must be a list", key);
	if (json_array_size(v) > SG_STRLIST_MAX)
		return sg_err_set(err, SG_BAD_REQUEST, "field '%s' has more than %d entries", key,
		                  SG_STRLIST_MAX);
	json_array_foreach(v, i, el) {
		if (!json_is_string(el))
			return sg_err_set(err, SG_BAD_REQUEST, "field '%s' must be a list of strings", key);
	}
	sg_strlist_clear(out);
	json_array_foreach(v, i, el) {
		if (json_string_length(el) > 0)
			sg_strlist_add(out, json_string_value(el));
	}
	return 1;
}

int sg_json_duration(const json_t *obj, const char *key, int64_t *out, struct sg_err *err)
{
	const json_t *v = field(obj, key);

	if (v == NULL)
		return 0;
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*out = json_integer_value(v);
		return 1;
	}
	if (json_is_real(v) && json_real_value(v) >= 0 && json_real_value(v) < 1e15) {
		*out = (int64_t)json_real_value(v);
		return 1;
	}
	if (json_is_string(v)) {
		if (json_string_length(v) == 0) {
			*out = 0;
			return 1;
		}
		if (sg_duration_parse(json_string_value(v), out) == 0)
			return 1;
	}
	return sg_err_set(err, SG_BAD_REQUEST, "field '%s' must be a duration (e.g. 72h, 2160h0m0s or seconds)",
	                  key);
}

/* Go's time.ParseDuration plus Vault's "d" suffix and bare seconds. Sub-second parts truncate. */
int sg_duration_parse(const char *s, int64_t *out)
{
	static const struct {
		const char *unit;
		double secs;
	} units[] = {{"ns", 1e-9}, {"us", 1e-6}, {"\xc2\xb5s", 1e-6}, {"ms", 1e-3},
	             {"s", 1},     {"m", 60},    {"h", 3600},          {"d", 86400}};
	double total = 0;
	const char *p = s;
	char *end;

	if (s == NULL || *s == '\0' || strlen(s) > 64)
		return -1;
	if (*p == '+')
		p++;
	if (*p == '\0')
		return -1;
	/* Bare integer: seconds. */
	{
		long long n;

		errno = 0;
		n = strtoll(p, &end, 10);
		if (*end == '\0' && errno == 0 && isdigit((unsigned char)*p)) {
			if (n < 0)
				return -1;
			*out = n;
			return 0;
		}
	}
	while (*p != '\0') {
		double num;
		size_t best = 0, bi = 0;

		if (!isdigit((unsigned char)*p) && *p != '.')
			return -1;
		errno = 0;
		num = strtod(p, &end);
		if (end == p || errno != 0 || num < 0)
			return -1;
		p = end;
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			size_t l = strlen(units[i].unit);

			if (strncmp(p, units[i].unit, l) == 0 && l > best) {
				best = l;
				bi = i;
			}
		}
		if (best == 0)
			return -1;
		p += best;
		total += num * units[bi].secs;
		if (total > 9.2e15)
			return -1;
	}
	*out = (int64_t)total;
	return 0;
}

int sg_time_parse_rfc3339(const char *s, int64_t *out)
{
	struct tm tm;
	const char *p;
	int64_t t;

	memset(&tm, 0, sizeof(tm));
	if (s == NULL || strlen(s) < 20)
		return -1;
	p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (p == NULL)
		return -1;
	if (*p == '.') {
		p++;
		while (isdigit((unsigned char)*p))
			p++;
	}
	t = (int64_t)timegm(&tm);
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int hh, mm, n = 0;

		if (sscanf(p + 1, "%2d:%2d%n", &hh, &mm, &n) != 2 || n != 5 || hh > 23 || mm > 59)
			return -1;
		t += (*p == '+' ? -1 : 1) * (int64_t)(hh * 3600 + mm * 60);
		p += 6;
	} else {
		return -1;
	}
	if (*p != '\0')
		return -1;
	*out = t;
	return 0;
}

void sg_time_format_rfc3339(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- Encodings ---- */

char *sg_hex_colon(const unsigned char *b, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	char *s = sg_xmalloc(n ? n * 3 : 1);
	size_t j = 0;

	for (size_t i = 0; i < n; i++) {
		if (i)
			s[j++] = ':';
		s[j++] = hex[b[i] >> 4];
		s[j++] = hex[b[i] & 15];
	}
	s[j] = '\0';
	return s;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int sg_hex_parse_serial(const char *s, unsigned char *out, size_t cap, size_t *outlen)
{
	char digits[2 * 64 + 2];
	size_t nd = 0, o = 0, i = 0;

	for (const char *p = s; *p; p++) {
		if (*p == ':' || *p == '-')
			continue;
		if (hexval((unsigned char)*p) < 0 || nd >= sizeof(digits) - 2)
			return -1;
		digits[nd++] = *p;
	}
	if (nd == 0)
		return -1;
	if (nd % 2) {
		memmove(digits + 1, digits, nd);
		digits[0] = '0';
		nd++;
	}
	if (nd / 2 > cap)
		return -1;
	for (i = 0; i < nd; i += 2)
		out[o++] = (unsigned char)(hexval((unsigned char)digits[i]) << 4 |
		                           hexval((unsigned char)digits[i + 1]));
	*outlen = o;
	return 0;
}

char *sg_base64(const unsigned char *b, size_t n)
{
	char *s = sg_xmalloc(4 * ((n + 2) / 3) + 1);

	EVP_EncodeBlock((unsigned char *)s, b, (int)n);
	return s;
}

int sg_base64_decode(const char *s, size_t len, unsigned char **out, size_t *outlen)
{
	unsigned char *tmp = NULL, *res = NULL;
	size_t n = 0, pad;
	int got;

	if (len > (size_t)INT_MAX / 2)
		return -1;
	tmp = sg_xmalloc(len + 4);
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (c == '-')
			c = '+';
		else if (c == '_')
			c = '/';
		else if (c == '=')
			break;
		else if (c == '\n' || c == '\r')
			continue;
		else if (!isalnum((unsigned char)c) && c != '+' && c != '/') {
			free(tmp);
			return -1;
		}
		tmp[n++] = (unsigned char)c;
	}
	if (n % 4 == 1) {
		free(tmp);
		return -1;
	}
	pad = (4 - n % 4) % 4;
	for (size_t i = 0; i < pad; i++)
		tmp[n++] = '=';
	res = sg_xmalloc(n / 4 * 3 + 1);
	got = EVP_DecodeBlock(res, tmp, (int)n);
	free(tmp);
	if (got < 0) {
		free(res);
		return -1;
	}
	*out = res;
	*outlen = (size_t)got - pad;
	return 0;
}

void sg_uuid(char out[37])
{
	unsigned char b[16];

	if (RAND_bytes(b, sizeof(b)) != 1)
		sg_die("RAND_bytes failed");
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
	         b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
	         b[15]);
}

void sg_random_b62(char *out, size_t n)
{
	static const char a[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	size_t i = 0;

	while (i < n) {
		unsigned char b[32];

		if (RAND_bytes(b, sizeof(b)) != 1)
			sg_die("RAND_bytes failed");
		for (size_t j = 0; j < sizeof(b) && i < n; j++)
			if (b[j] < 248) /* 248 = 4*62: no modulo bias */
				out[i++] = a[b[j] % 62];
	}
	out[n] = '\0';
}

bool sg_ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
	return alen == blen && CRYPTO_memcmp(a, b, alen) == 0;
}

/* ---- Files ---- */

int sg_file_read(const char *path, size_t cap, unsigned char **out, size_t *len, struct sg_err *err)
{
	FILE *f = NULL;
	unsigned char *buf = NULL;
	size_t n = 0, got;
	int rc = -1;

	f = fopen(path, "rb");
	if (f == NULL) {
		sg_err_set(err, SG_BAD_REQUEST, "cannot open %s: %s", path, strerror(errno));
		goto out;
	}
	buf = sg_xmalloc(cap + 1);
	while ((got = fread(buf + n, 1, cap + 1 - n, f)) > 0) {
		n += got;
		if (n > cap) {
			sg_err_set(err, SG_TOO_LARGE, "%s is larger than %zu bytes", path, cap);
			goto out;
		}
	}
	if (ferror(f)) {
		sg_err_set(err, SG_INTERNAL, "cannot read %s", path);
		goto out;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	buf = NULL;
	rc = 0;
out:
	if (f != NULL)
		fclose(f);
	free(buf);
	return rc;
}

int sg_file_write_atomic(const char *path, const void *buf, size_t len, int mode, struct sg_err *err)
{
	char *tmp = sg_xasprintf("%s.tmp.%ld", path, (long)getpid());
	char *dircopy = sg_xstrdup(path);
	int fd = -1, dfd = -1, rc = -1;
	size_t off = 0;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0) {
		sg_err_set(err, SG_INTERNAL, "cannot create %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (fchmod(fd, (mode_t)mode) != 0)
		goto io;
	while (off < len) {
		ssize_t w = write(fd, (const char *)buf + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto io;
		off += (size_t)w;
	}
	if (fsync(fd) != 0 || close(fd) != 0) {
		fd = -1;
		goto io;
	}
	fd = -1;
	if (rename(tmp, path) != 0)
		goto io;
	dfd = open(dirname(dircopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0)
		(void)fsync(dfd);
	rc = 0;
	goto out;
io:
	sg_err_set(err, SG_INTERNAL, "cannot write %s: %s", path, strerror(errno));
	unlink(tmp);
out:
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	free(tmp);
	free(dircopy);
	return rc;
}
