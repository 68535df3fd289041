#ifndef SG_BENCH_BENCHUTIL_H
#define SG_BENCH_BENCHUTIL_H

/*
 * What sigil-bench's modes share (bench/loadgen.c, bench/acmeload.c):
 * command-line parsing that exits 2 with a message, the monotonic clock,
 * HTTP header matching and latency percentiles.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BENCH_MAX_DURATION_MS (3600u * 1000u)

void bench_die(const char *msg) __attribute__((noreturn));
void *bench_xmalloc(size_t n);
uint64_t bench_now_us(void);
/* Copies a 1..cap-1 byte option value; exits 2 otherwise. */
void bench_copy_str(char *dst, size_t cap, const char *src, const char *what);
/* A decimal integer in lo..hi; exits 2 otherwise. */
long long bench_parse_int(const char *s, long long lo, long long hi, const char *what);
/* "10s", "500ms", "2m", "1h" or bare seconds, up to BENCH_MAX_DURATION_MS; 0 on error. */
uint64_t bench_parse_duration_ms(const char *s);
/* http://HOST[:PORT] with no path; HOST may be [v6] when allow_v6. Port "80" when absent. Exits 2 on error. */
void bench_parse_url(const char *url, bool allow_v6, char *host, size_t hcap, char *port, size_t pcap);
/* A "Name: value" header line of that name (case-insensitive): the value without surrounding blanks. */
bool bench_header_is(const char *line, size_t len, const char *name, const char **val, size_t *vlen);
/*
 * A chunked body (RFC 9112 7.1) in b[0..len): 1 when it ends exactly at
 * len (*data_len = the sum of the chunk sizes), 0 when more is to come, -1
 * when malformed or a chunk is larger than max.
 */
int bench_chunked_complete(const char *b, size_t len, size_t max, size_t *data_len);
/* qsort comparator for latencies in microseconds, and the q-quantile of n sorted ones in milliseconds. */
int bench_cmp_u32(const void *a, const void *b);
double bench_pct_ms(const uint32_t *sorted, size_t n, double q);

#endif
