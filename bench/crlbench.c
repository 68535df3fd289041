/*
 * sigil-crlbench: CRL build and tidy at scale, in process (no HTTP): the
 * certificates are issued through ca_issue (the one issuance path, signing
 * a fixed CSR from several threads so that commits are shared) and revoked
 * through ca_revoke_batch_add, into a fresh store.
 *
 *   sigil-crlbench [-steps 100000,1000000] [-threads 8] [-repeat 1] [-dir DIR] [-verify] [-tidy]
 *                  [-tidy-pause 0]
 *
 * At each step (total revoked certificates) the issuer's full CRL is built
 * from a scan (crl_build_now) and the build's wall time, CPU time, CRL size
 * and the process's peak resident memory during the build are printed;
 * then 1,000 more revocations and the next CRL as the background thread
 * makes it (crl_refresh_now: the last CRL plus the new entries). With -tidy,
 * the clock is then moved past every certificate's NotAfter + safety buffer
 * and a tidy (tidy_cert_store + tidy_revoked_certs) runs while one thread
 * keeps issuing: the tidy's duration and the issuance latencies before and
 * during it are printed. One "RESULT key=value ..." line per measurement.
 */
#include <errno.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ca/ca.h"
#include "crl/crl.h"

#define MAX_STEPS 16
#define MAX_THREADS 64
#define REVOKE_BATCH 10000
#define CERT_TTL 3600                 /* every bench certificate: 1 h */
#define TIDY_BUFFER 3600              /* safety_buffer of the tidy */
#define MAX_LAT_SAMPLES (1u << 22)
#define APPEND_EXTRA 1000              /* revocations on top of each step for the incremental build */

static struct store *g_st;
static struct ca *g_ca;
static struct crl *g_crl;
static struct ca_mount g_m;
static struct role *g_role;
static X509_REQ *g_csr;

static void die(const char *what, const struct sg_err *err)
{
	fprintf(stderr, "crlbench: %s: %s\n", what, err != NULL ? err->detail : strerror(errno));
	exit(1);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       (double)ru.ru_stime.tv_usec / 1e6;
}

/* VmRSS / VmHWM of this process in MiB; clear_refs 5 resets the high-water mark. */
static double proc_mib(const char *field)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	double v = -1;
	size_t fl = strlen(field);

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, field, fl) == 0 && line[fl] == ':')
			v = strtod(line + fl + 1, NULL) / 1024.0;
	fclose(f);
	return v;
}

static void hwm_reset(void)
{
	FILE *f = fopen("/proc/self/clear_refs", "w");

	if (f != NULL) {
		fputs("5", f);
		fclose(f);
	}
}

static X509_REQ *make_csr(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509_REQ *r = X509_REQ_new();
	X509_NAME *n = X509_NAME_new();

	if (k == NULL || r == NULL || n == NULL ||
	    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"bench.example.com", -1, -1, 0) != 1 ||
	    X509_REQ_set_subject_name(r, n) != 1 || X509_REQ_set_pubkey(r, k) != 1 ||
	    X509_REQ_sign(r, k, EVP_sha256()) <= 0)
		die("CSR", NULL);
	X509_NAME_free(n);
	EVP_PKEY_free(k);
	return r;
}

/* ---------------- Issuance ---------------- */

struct issuer_job {
	size_t from, to;
	char **serials;
};

static int issue_one(char **serial_out, double *lat)
{
	struct ca_request req;
	struct ca_result res = {0};
	struct sg_err err;
	double t0 = now_s();
	int rc;

	sg_err_init(&err);
	ca_request_init(&req);
	req.kind = CA_REQ_SIGN;
	req.csr = g_csr;
	req.common_name = "bench.example.com";
	req.ttl = CERT_TTL;
	rc = ca_issue(g_ca, &g_m, g_role, &req, NULL, &res, &err);
	if (rc == 0 && serial_out != NULL)
		*serial_out = sg_xstrdup(res.serial);
	if (rc != 0)
		fprintf(stderr, "crlbench: issue: %s\n", err.detail);
	if (lat != NULL)
		*lat = now_s() - t0;
	ca_result_clear(&res);
	ca_request_clear(&req);
	return rc;
}

static void *issue_main(void *arg)
{
	struct issuer_job *j = arg;

	for (size_t i = j->from; i < j->to; i++)
		if (issue_one(&j->serials[i], NULL) != 0)
			exit(1);
	return NULL;
}

static void issue_range(char **serials, size_t from, size_t to, int threads)
{
	pthread_t th[MAX_THREADS];
	struct issuer_job jobs[MAX_THREADS];
	size_t n = to - from;

	for (int t = 0; t < threads; t++) {
		jobs[t].from = from + n * (size_t)t / (size_t)threads;
		jobs[t].to = from + n * (size_t)(t + 1) / (size_t)threads;
		jobs[t].serials = serials;
		if (pthread_create(&th[t], NULL, issue_main, &jobs[t]) != 0)
			die("pthread_create", NULL);
	}
	for (int t = 0; t < threads; t++)
		pthread_join(th[t], NULL);
}

static void revoke_range(char **serials, size_t from, size_t to)
{
	struct ca_revoke_item *it = sg_xcalloc(REVOKE_BATCH, sizeof(*it));
	struct sg_err err;

	sg_err_init(&err);
	for (size_t s = from; s < to; s += REVOKE_BATCH) {
		size_t n = to - s < REVOKE_BATCH ? to - s : REVOKE_BATCH;
		struct store_batch *b = store_batch_new();

		memset(it, 0, n * sizeof(*it));
		for (size_t i = 0; i < n; i++)
			it[i].serial = serials[s + i];
		if (ca_revoke_batch_add(g_ca, &g_m, it, n, (enum ca_reason)(s / REVOKE_BATCH % 2 ? 1 : 0), b, &err) < 0 ||
		    store_commit(g_st, b, &err) < 0)
			die("revoke", &err);
		store_batch_free(b);
		ca_revoke_notify(g_ca, &g_m, it, n);
	}
	free(it);
}

/* ---------------- CRL build ---------------- */

/*
 * The anonymous (heap) part of the resident set, sampled while a build
 * runs: VmHWM would also count the store's file pages the scan touches,
 * which are the page cache's, not the build's.
 */
struct anon_sampler {
	atomic_bool stop;
	double peak;
};

static void *anon_main(void *arg)
{
	struct anon_sampler *a = arg;

	while (!atomic_load(&a->stop)) {
		double v = proc_mib("RssAnon");
		struct timespec ts = {0, 5000000};

		if (v > a->peak)
			a->peak = v;
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static void measure_build(size_t revoked, bool verify)
{
	struct crl_blob *b = NULL;
	struct sg_err err;
	double t0, c0, wall, cpu, rss0, hwm;
	double g0, get_us;

	struct anon_sampler as = {0};
	pthread_t sampler;
	double anon0;

	sg_err_init(&err);
	rss0 = proc_mib("VmRSS");
	anon0 = proc_mib("RssAnon");
	as.peak = anon0;
	if (pthread_create(&sampler, NULL, anon_main, &as) != 0)
		die("pthread_create", NULL);
	hwm_reset();
	t0 = now_s();
	c0 = cpu_s();
	if (crl_build_now(g_crl, &g_m, "default", CRL_FULL, &err) < 0)
		die("crl build", &err);
	wall = now_s() - t0;
	cpu = cpu_s() - c0;
	hwm = proc_mib("VmHWM");
	atomic_store(&as.stop, true);
	pthread_join(sampler, NULL);
	g0 = now_s();
	if (crl_get(g_crl, &g_m, "default", CRL_FULL, &b, &err) < 0)
		die("crl get", &err);
	get_us = (now_s() - g0) * 1e6;
	printf("CRL with %zu revoked entries: built in %.2f s wall, %.2f s CPU; %zu entries, %.1f MiB DER; "
	       "heap (RssAnon) %.0f MiB before, peak %.0f MiB during the build (+%.0f MiB); RSS incl. mapped store "
	       "pages %.0f -> peak %.0f MiB; cached read %.1f us\n",
	       revoked, wall, cpu, b->entries, (double)b->der_len / 1048576.0, anon0, as.peak, as.peak - anon0, rss0,
	       hwm, get_us);
	printf("RESULT kind=crl_build entries=%zu wall_s=%.3f cpu_s=%.3f der_bytes=%zu anon_before_mib=%.0f "
	       "anon_peak_mib=%.0f rss_before_mib=%.0f rss_peak_mib=%.0f number=%llu\n",
	       b->entries, wall, cpu, b->der_len, anon0, as.peak, rss0, hwm, (unsigned long long)b->number);
	if (verify) {
		const unsigned char *p = b->der;
		X509_CRL *x = d2i_X509_CRL(NULL, &p, (long)b->der_len);
		struct ca_issuer_info info = {0};
		int ok;

		if (x == NULL || ca_issuer_get(g_ca, &g_m, "default", &info, &err) < 0)
			die("verify: parse", &err);
		ok = X509_CRL_verify(x, X509_get0_pubkey(info.cert)) == 1 && p == b->der + b->der_len &&
		     (size_t)sk_X509_REVOKED_num(X509_CRL_get_REVOKED(x)) == b->entries;
		printf("verify: OpenSSL parses %d entries, signature %s\n", sk_X509_REVOKED_num(X509_CRL_get_REVOKED(x)),
		       ok ? "OK" : "FAILED");
		if (!ok)
			exit(1);
		X509_CRL_free(x);
		ca_issuer_info_clear(&info);
	}
	crl_blob_release(b);
}

/*
 * A revocation on top of the CRL: `extra` more revocations, then the next
 * full CRL as the background thread builds it (the last CRL's entries plus
 * the new ones, no scan).
 */
static void measure_append(size_t base, size_t extra, int threads)
{
	char **serials = sg_xcalloc(extra, sizeof(char *));
	struct crl_blob *b = NULL;
	struct sg_err err;
	double t0, c0, wall, cpu;

	issue_range(serials, 0, extra, threads);
	revoke_range(serials, 0, extra);
	sg_err_init(&err);
	t0 = now_s();
	c0 = cpu_s();
	if (crl_refresh_now(g_crl, &g_m, "default", &err) < 0)
		die("crl refresh", &err);
	wall = now_s() - t0;
	cpu = cpu_s() - c0;
	if (crl_get(g_crl, &g_m, "default", CRL_FULL, &b, &err) < 0)
		die("crl get", &err);
	printf("next CRL after %zu more revocations on %zu: %.3f s wall, %.3f s CPU; %zu entries, %.1f MiB DER\n",
	       extra, base, wall, cpu, b->entries, (double)b->der_len / 1048576.0);
	printf("RESULT kind=crl_append base=%zu added=%zu entries=%zu wall_s=%.3f cpu_s=%.3f\n", base, extra,
	       b->entries, wall, cpu);
	if (b->entries != base + extra)
		die("the appended CRL lacks entries", NULL);
	crl_blob_release(b);
	for (size_t i = 0; i < extra; i++)
		free(serials[i]);
	free(serials);
}

/* ---------------- Tidy while issuing ---------------- */

struct lat_run {
	atomic_bool stop;
	double *v;
	size_t n;
};

static void *latency_main(void *arg)
{
	struct lat_run *r = arg;

	while (!atomic_load(&r->stop) && r->n < MAX_LAT_SAMPLES) {
		double l;

		if (issue_one(NULL, &l) != 0)
			exit(1);
		r->v[r->n++] = l;
	}
	return NULL;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void lat_report(const char *label, struct lat_run *r, double secs)
{
	double p50, p99, max;

	if (r->n == 0) {
		printf("%s: no samples\n", label);
		return;
	}
	qsort(r->v, r->n, sizeof(double), cmp_d);
	p50 = r->v[r->n / 2] * 1e3;
	p99 = r->v[r->n * 99 / 100] * 1e3;
	max = r->v[r->n - 1] * 1e3;
	printf("%s: %zu issuances in %.1f s (%.0f/s), latency p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", label, r->n,
	       secs, (double)r->n / secs, p50, p99, max);
	printf("RESULT kind=issue_latency phase=%s n=%zu p50_ms=%.3f p99_ms=%.3f max_ms=%.3f\n", label, r->n, p50, p99,
	       max);
}

static void lat_phase(struct lat_run *r, pthread_t *th)
{
	atomic_store(&r->stop, false);
	r->n = 0;
	if (pthread_create(th, NULL, latency_main, r) != 0)
		die("pthread_create", NULL);
}

static void measure_tidy(size_t total, int64_t pause)
{
	struct lat_run r = {0};
	pthread_t th;
	struct crl_tidy_config t;
	struct sg_err err;
	double t0, secs;
	json_t *st;

	r.v = sg_xcalloc(MAX_LAT_SAMPLES, sizeof(double));
	/* Every bench certificate expires and passes the buffer; new ones are issued at the new time. */
	sg_clock_advance(CERT_TTL + TIDY_BUFFER + 600);
	lat_phase(&r, &th);
	sleep(5);
	atomic_store(&r.stop, true);
	pthread_join(th, NULL);
	lat_report("baseline", &r, 5.0);

	crl_tidy_config_default(&t);
	t.tidy_cert_store = true;
	t.tidy_revoked_certs = true;
	t.safety_buffer = TIDY_BUFFER;
	t.pause_duration = pause;
	sg_err_init(&err);
	lat_phase(&r, &th);
	t0 = now_s();
	if (crl_tidy_run(g_crl, &g_m, &t, &err) < 0)
		die("tidy", &err);
	secs = now_s() - t0;
	atomic_store(&r.stop, true);
	pthread_join(th, NULL);
	st = crl_tidy_status(g_crl, &g_m);
	printf("tidy of %zu expired certificates (all revoked): %.1f s; cert_store_deleted_count %lld, "
	       "revoked_cert_deleted_count %lld\n",
	       total, secs, (long long)json_integer_value(json_object_get(st, "cert_store_deleted_count")),
	       (long long)json_integer_value(json_object_get(st, "revoked_cert_deleted_count")));
	printf("RESULT kind=tidy certs=%zu seconds=%.2f cert_store_deleted=%lld revoked_deleted=%lld\n", total, secs,
	       (long long)json_integer_value(json_object_get(st, "cert_store_deleted_count")),
	       (long long)json_integer_value(json_object_get(st, "revoked_cert_deleted_count")));
	json_decref(st);
	lat_report("during_tidy", &r, secs);
	free(r.v);
}

/* ---------------- main ---------------- */

int main(int argc, char **argv)
{
	size_t steps[MAX_STEPS] = {100000, 1000000}, nsteps = 2, done = 0;
	int threads = 8, repeat = 1;
	bool verify = false, tidy = false;
	int64_t pause = 0;
	const char *dir = NULL;
	char tmpl[] = "/tmp/sigil-crlbench-XXXXXX", *store_dir, *crl_dir;
	unsigned char kek[CA_KEK_BYTES] = {42};
	char mid[37];
	struct ca_ca_params p;
	struct ca_gen_result root = {0};
	struct sg_err err;
	char **serials;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-steps") == 0 && i + 1 < argc) {
			char *s = argv[++i], *end;

			nsteps = 0;
			while (*s != '\0' && nsteps < MAX_STEPS) {
				unsigned long long v = strtoull(s, &end, 10);

				if (end == s || v == 0 || v > 100000000ULL || (nsteps > 0 && v <= steps[nsteps - 1]))
					die("-steps: increasing positive counts, comma-separated", NULL);
				steps[nsteps++] = (size_t)v;
				s = *end == ',' ? end + 1 : end;
			}
		} else if (strcmp(argv[i], "-threads") == 0 && i + 1 < argc) {
			threads = (int)strtol(argv[++i], NULL, 10);
			if (threads < 1 || threads > MAX_THREADS)
				die("-threads: 1..64", NULL);
		} else if (strcmp(argv[i], "-repeat") == 0 && i + 1 < argc) {
			repeat = (int)strtol(argv[++i], NULL, 10);
			if (repeat < 1 || repeat > 100)
				die("-repeat: 1..100", NULL);
		} else if (strcmp(argv[i], "-dir") == 0 && i + 1 < argc) {
			dir = argv[++i];
		} else if (strcmp(argv[i], "-tidy-pause") == 0 && i + 1 < argc) {
			pause = strtol(argv[++i], NULL, 10);
		} else if (strcmp(argv[i], "-verify") == 0) {
			verify = true;
		} else if (strcmp(argv[i], "-tidy") == 0) {
			tidy = true;
		} else {
			fprintf(stderr, "usage: sigil-crlbench [-steps 100000,1000000] [-threads 8] [-repeat 1] [-dir DIR] "
			                "[-verify] [-tidy] [-tidy-pause SECONDS]\n");
			return 2;
		}
	}
	if (dir == NULL && (dir = mkdtemp(tmpl)) == NULL)
		die("mkdtemp", NULL);
	store_dir = sg_xasprintf("%s/store", dir);
	crl_dir = sg_xasprintf("%s/crl", dir);
	sg_err_init(&err);
	if ((mkdir(store_dir, 0700) != 0 && errno != EEXIST) || store_open(store_dir, 0, &g_st, &err) != 0 ||
	    ca_new(g_st, kek, &g_ca, &err) != 0 || crl_new(g_st, g_ca, crl_dir, &g_crl, &err) != 0)
		die("setup", &err);
	sg_uuid(mid);
	g_m.id = mid;
	g_m.path = "bench";
	g_m.default_ttl = 768 * 3600;
	g_m.max_ttl = 10LL * 365 * 86400;
	ca_ca_params_init(&p);
	p.common_name = "CRL Bench Root";
	p.ttl = 5LL * 365 * 86400;
	p.key.type = CA_KEY_EC;
	p.key.bits = 256;
	if (ca_root_generate(g_ca, &g_m, &p, &root, &err) != 0)
		die("root", &err);
	ca_gen_result_clear(&root);
	g_role = role_new("bench");
	g_role->allow_any_name = true;
	free(g_role->key_type);
	g_role->key_type = sg_xstrdup("ec");
	g_role->key_bits = 256;
	g_csr = make_csr();
	printf("store %s, %d issuing threads, EC P-256 issuer\n", store_dir, threads);
	serials = sg_xcalloc(steps[nsteps - 1], sizeof(char *));
	for (size_t s = 0; s < nsteps; s++) {
		double t0 = now_s(), t1;

		if (steps[s] <= done)
			continue;
		issue_range(serials, done, steps[s], threads);
		t1 = now_s();
		revoke_range(serials, done, steps[s]);
		printf("issued %zu certificates in %.1f s (%.0f/s), revoked them in %.1f s\n", steps[s] - done, t1 - t0,
		       (double)(steps[s] - done) / (t1 - t0), now_s() - t1);
		for (size_t i = done; i < steps[s]; i++) {
			free(serials[i]);
			serials[i] = NULL;
		}
		done = steps[s];
		for (int k = 0; k < repeat; k++)
			measure_build(done, verify && k == 0);
		measure_append(done, APPEND_EXTRA, threads);
		done += APPEND_EXTRA;
		fflush(stdout);
	}
	if (tidy)
		measure_tidy(done, pause);
	free(serials);
	crl_free(g_crl);
	ca_free(g_ca);
	store_close(g_st);
	X509_REQ_free(g_csr);
	role_free(g_role);
	free(store_dir);
	free(crl_dir);
	return 0;
}
