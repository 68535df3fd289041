#include "bench/benchutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

void bench_die(const char *msg)
{
	fprintf(stderr, "sigil-bench: %s\n", msg);
	exit(2);
}

void *bench_xmalloc(size_t n)
{
	void *p = malloc(n);

	if (p == NULL)
		bench_die("out of memory");
	return p;
}

uint64_t bench_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void bench_copy_str(char *dst, size_t cap, const char *src, const char *what)
{
	size_t n = strlen(src);

	if (n == 0 || n >= cap) {
		fprintf(stderr, "sigil-bench: %s must be 1..%zu bytes\n", what, cap - 1);
		exit(2);
	}
	memcpy(dst, src, n + 1);
}

long long bench_parse_int(const char *s, long long lo, long long hi, const char *what)
{
	char *end = NULL;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "sigil-bench: %s must be an integer in %lld..%lld\n", what, lo, hi);
		exit(2);
	}
	return v;
}

uint64_t bench_parse_duration_ms(const char *s)
{
	char *end = NULL;
	double v, mult, ms;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || v <= 0)
		return 0;
	if (strcmp(end, "ms") == 0)
		mult = 1.0;
	else if (strcmp(end, "s") == 0 || *end == '\0')
		mult = 1000.0;
	else if (strcmp(end, "m") == 0)
		mult = 60000.0;
	else if (strcmp(end, "h") == 0)
		mult = 3600000.0;
	else
		return 0;
	ms = v * mult;
	if (ms < 1 || ms > (double)BENCH_MAX_DURATION_MS)
		return 0;
	return (uint64_t)ms;
}

void bench_parse_url(const char *url, bool allow_v6, char *host, size_t hcap, char *port, size_t pcap)
{
	const char *p = url, *end, *h, *he, *colon;
	size_t hl;

	if (strncmp(p, "http://", 7) != 0)
		bench_die("-url must be http://HOST:PORT (plain HTTP)");
	p += 7;
	end = p + strcspn(p, "/");
	if (*end == '/' && end[1] != '\0')
		bench_die("-url takes no path");
	if (*p == '[') { /* [v6]:port */
		if (!allow_v6)
			bench_die("this mode takes an IPv4 address or a name in -url");
		he = memchr(p, ']', (size_t)(end - p));
		if (he == NULL)
			bench_die("bad IPv6 address in -url");
		h = p + 1;
		colon = he + 1 < end && he[1] == ':' ? he + 1 : NULL;
	} else {
		h = p;
		colon = memchr(p, ':', (size_t)(end - p));
		he = colon != NULL ? colon : end;
	}
	hl = (size_t)(he - h);
	if (hl == 0 || hl >= hcap)
		bench_die("bad host in -url");
	memcpy(host, h, hl);
	host[hl] = '\0';
	if (colon != NULL) {
		size_t pl = (size_t)(end - colon - 1);

		if (pl == 0 || pl >= pcap)
			bench_die("bad port in -url");
		memcpy(port, colon + 1, pl);
		port[pl] = '\0';
		(void)bench_parse_int(port, 1, 65535, "port");
	} else {
		bench_copy_str(port, pcap, "80", "port");
	}
}

bool bench_header_is(const char *line, size_t len, const char *name, const char **val, size_t *vlen)
{
	size_t nl = strlen(name);
	const char *v, *end = line + len;

	if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
		return false;
	v = line + nl + 1;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	*val = v;
	*vlen = (size_t)(end - v);
	return true;
}

int bench_chunked_complete(const char *b, size_t len, size_t max, size_t *data_len)
{
	size_t pos = 0, w = 0;

	for (;;) {
		const char *eol = memmem(b + pos, len - pos, "\r\n", 2);
		size_t size = 0, digits = 0;

		if (eol == NULL)
			return 0;
		for (const char *q = b + pos; q < eol && *q != ';'; q++, digits++) {
			int d;

			if (*q >= '0' && *q <= '9')
				d = *q - '0';
			else if ((*q | 0x20) >= 'a' && (*q | 0x20) <= 'f')
				d = (*q | 0x20) - 'a' + 10;
			else
				return -1;
			if (size > (max >> 4))
				return -1;
			size = size * 16 + (size_t)d;
		}
		if (digits == 0)
			return -1;
		pos = (size_t)(eol - b) + 2;
		if (size == 0) {
			/* Optional trailers, then an empty line. */
			for (;;) {
				eol = memmem(b + pos, len - pos, "\r\n", 2);
				if (eol == NULL)
					return 0;
				if (eol == b + pos) {
					if ((size_t)(eol - b) + 2 != len)
						return -1;
					*data_len = w;
					return 1;
				}
				pos = (size_t)(eol - b) + 2;
			}
		}
		if (len - pos < size + 2)
			return 0;
		if (memcmp(b + pos + size, "\r\n", 2) != 0)
			return -1;
		pos += size + 2;
		w += size;
	}
}

int bench_cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

double bench_pct_ms(const uint32_t *sorted, size_t n, double q)
{
	size_t i;

	if (n == 0)
		return 0;
	i = (size_t)(q * (double)n + 0.999999);
	if (i < 1)
		i = 1;
	if (i > n)
		i = n;
	return sorted[i - 1] / 1000.0;
}
