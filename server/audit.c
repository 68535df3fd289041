/*
 * Audit devices and the hash-chained JSON-lines audit log (see audit.h for
 * the format and the guarantees). DESIGN.md rule 6: every request and
 * response is written before the client sees the answer, secrets HMAC-ed,
 * and a request that no device could record fails.
 */
#include "server/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth/token.h"
#include "server/internal.h"
#include "server/json.h"
#include "server/log.h"

#define AUDIT_REC_PREFIX "audit/"       /* STORE_META: device configuration and salt */
#define AUDIT_HEAD_PREFIX "audit-head/" /* STORE_META: last checkpointed chain head */
#define AUDIT_CHAIN_EXTRA 256           /* room for the seq, prev_hash and hash fields and "\n" */
#define AUDIT_SUFFIX_LEN 82             /* ,"hash":"sha256:<64 hex>"} */
#define AUDIT_MAX_DEPTH 40              /* request bodies are capped at MAX_JSON_DEPTH already */
#define AUDIT_TAIL_LINES 16             /* lines tried from the end of an existing file */
#define AUDIT_MIN_TOKEN_MATCH 8         /* a data value equal to the presented token is HMAC-ed */
#define AUDIT_VERIFY_CHUNK (64u << 10)
#define AUDIT_MAX_RECORD (64u << 10)

static const char audit_suffix_head[] = ",\"hash\":\"" AUDIT_HASH_PREFIX;

struct audit_device {
	atomic_int refs;              /* the device list holds one; each logging call one */
	char *path;                   /* "file", "team/a" (no trailing slash) */
	char *description;
	char *file_path;
	json_t *options;              /* as echoed by GET sys/audit */
	bool local, log_raw, hmac_accessor;
	unsigned mode;                /* applied to the file at open; 0 = leave it */
	unsigned char salt[AUDIT_SALT_BYTES];
	EVP_MAC_CTX *mac;             /* HMAC keyed with the salt; duplicated per value */

	pthread_mutex_t mu;           /* everything below */
	pthread_cond_t cv;            /* a group sync finished */
	int fd;                       /* -1 until opened (reopened lazily after a failed start) */
	bool regular;                 /* a regular file: fdatasync applies (not a FIFO or device) */
	bool torn;                    /* a short write left a partial line: the next write starts with "\n" */
	bool dead;                    /* an fdatasync failed: lines may be lost, nothing is trusted again */
	bool failing;                 /* the last write failed (for logging state changes once) */
	int last_errno;
	uint64_t seq;                 /* last line written */
	unsigned char head[32];       /* its hash */
	char head_hex[65];
	bool syncing;
	uint64_t synced;              /* lines known durable */
	uint64_t syncs;               /* fdatasync calls (lines / syncs = the group size) */
	unsigned char synced_head[32];
	uint64_t checkpointed;        /* synced seq last stored */
	bool has_ck;                  /* checkpoint loaded from the store (start-up) */
	uint64_t ck_seq;
	unsigned char ck_hash[32];
};

struct audit {
	struct store *st;
	EVP_MD *sha256;
	EVP_MAC *hmac;
	pthread_rwlock_t lock;        /* the device list */
	struct audit_device *dev[AUDIT_MAX_DEVICES];
	atomic_size_t n;
	pthread_mutex_t admin;        /* serialises enable, disable and checkpoints */
	pthread_mutex_t ck_mu;
	pthread_cond_t ck_cv;
	bool stopping;
	bool ck_started;
	pthread_t ck_thread;
	atomic_ullong lines, syncs;   /* statistics (audit_stats) */
};

/* ---- Small helpers ---- */

static void hex_encode(const unsigned char *b, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hex_decode(const char *s, size_t n, unsigned char *out)
{
	for (size_t i = 0; i < n; i++) {
		int v = 0;

		for (int j = 0; j < 2; j++) {
			char c = s[2 * i + j];

			v <<= 4;
			if (c >= '0' && c <= '9')
				v |= c - '0';
			else if (c >= 'a' && c <= 'f')
				v |= c - 'a' + 10;
			else
				return -1;
		}
		out[i] = (unsigned char)v;
	}
	return 0;
}

/* 64 lower-case hex digits. */
static bool hex64_ok(const char *s)
{
	for (size_t i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static void sha256(const EVP_MD *md, const void *p, size_t n, unsigned char out[32])
{
	unsigned int len = 0;

	if (EVP_Digest(p, n, out, &len, md, NULL) != 1 || len != 32)
		sg_die("SHA-256 failed");
}

/* RFC 3339 with nanoseconds, on the server's clock (sg_now, DESIGN.md rule 9). */
static void audit_time(char *buf, size_t cap)
{
	struct timespec ts;
	time_t t0;
	int64_t now, sec;
	struct tm tm;
	char date[32];

	do {
		t0 = time(NULL);
		now = sg_now();
		clock_gettime(CLOCK_REALTIME, &ts);
	} while (time(NULL) != t0);
	sec = (int64_t)ts.tv_sec + (now - (int64_t)t0);
	t0 = (time_t)sec;
	gmtime_r(&t0, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, cap, "%s.%09ldZ", date, (long)ts.tv_nsec);
}

static void dev_hmac(const struct audit_device *d, const void *in, size_t len, char out[AUDIT_HMAC_STR_LEN + 1])
{
	EVP_MAC_CTX *c = EVP_MAC_CTX_dup(d->mac);
	unsigned char md[32];
	size_t mdlen = 0;

	if (c == NULL || EVP_MAC_update(c, in, len) != 1 || EVP_MAC_final(c, md, &mdlen, sizeof(md)) != 1 ||
	    mdlen != sizeof(md))
		sg_die("HMAC-SHA256 failed");
	EVP_MAC_CTX_free(c);
	memcpy(out, AUDIT_HMAC_PREFIX, sizeof(AUDIT_HMAC_PREFIX) - 1);
	hex_encode(md, sizeof(md), out + sizeof(AUDIT_HMAC_PREFIX) - 1);
}

/* ---- Devices: lifetime ---- */

static void dev_unref(struct audit_device *d)
{
	if (d == NULL || atomic_fetch_sub(&d->refs, 1) != 1)
		return;
	if (d->fd >= 0)
		close(d->fd);
	EVP_MAC_CTX_free(d->mac);
	OPENSSL_cleanse(d->salt, sizeof(d->salt));
	json_decref(d->options);
	free(d->path);
	free(d->description);
	free(d->file_path);
	pthread_cond_destroy(&d->cv);
	pthread_mutex_destroy(&d->mu);
	free(d);
}

static struct audit_device *dev_new(struct audit *a, const char *path, const unsigned char salt[AUDIT_SALT_BYTES])
{
	struct audit_device *d = sg_xcalloc(1, sizeof(*d));
	OSSL_PARAM params[2];

	atomic_init(&d->refs, 1);
	d->path = sg_xstrdup(path);
	d->fd = -1;
	d->hmac_accessor = true;
	d->mode = 0600;
	memcpy(d->salt, salt, AUDIT_SALT_BYTES);
	hex_encode(d->head, sizeof(d->head), d->head_hex);
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->cv, NULL);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	d->mac = EVP_MAC_CTX_new(a->hmac);
	if (d->mac == NULL || EVP_MAC_init(d->mac, d->salt, sizeof(d->salt), params) != 1)
		sg_die("cannot initialise HMAC-SHA256");
	return d;
}

/* Copies the device list with a reference each; returns the count. */
static size_t devs_snapshot(struct audit *a, struct audit_device **out)
{
	size_t n;

	if (atomic_load(&a->n) == 0)
		return 0;
	pthread_rwlock_rdlock(&a->lock);
	n = atomic_load(&a->n);
	for (size_t i = 0; i < n; i++) {
		out[i] = a->dev[i];
		atomic_fetch_add(&out[i]->refs, 1);
	}
	pthread_rwlock_unlock(&a->lock);
	return n;
}

static void devs_release(struct audit_device **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dev_unref(v[i]);
}

/* ---- Options ---- */

static bool dev_path_ok(const char *p)
{
	size_t n = p != NULL ? strlen(p) : 0, seg = 0;

	if (n == 0 || n > AUDIT_PATH_MAX)
		return false;
	for (size_t i = 0; i <= n; i++) {
		char c = p[i];

		if (c == '/' || c == '\0') {
			if (seg == 0 || (seg == 1 && p[i - 1] == '.') || (seg == 2 && p[i - 1] == '.' && p[i - 2] == '.'))
				return false;
			seg = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		      c == '.'))
			return false;
		seg++;
	}
	return true;
}

/* "0600", "600", "0000": octal file mode. */
static int mode_parse(const char *s, unsigned *out)
{
	unsigned v = 0;
	size_t n = strlen(s);

	if (n == 0 || n > 4)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '7')
			return -1;
		v = v * 8 + (unsigned)(s[i] - '0');
	}
	*out = v;
	return 0;
}

/* An option value: Vault's options are strings; booleans and numbers are accepted loosely. */
static int option_str(const json_t *v, const char *key, char *buf, size_t cap, const char **out, struct sg_err *err)
{
	if (json_is_string(v)) {
		*out = json_string_value(v);
		return 0;
	}
	if (json_is_boolean(v)) {
		*out = json_is_true(v) ? "true" : "false";
		return 0;
	}
	if (json_is_integer(v)) {
		snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		*out = buf;
		return 0;
	}
	return sg_err_set(err, SG_BAD_REQUEST, "audit option '%s' must be a string", key);
}

/*
 * Applies Vault's file device options to d and returns their echo (strings,
 * as Vault stores them) in *norm. Unsupported options are refused rather
 * than ignored: an operator who asks for "prefix" or "jsonx" would
 * otherwise get a log in another shape than expected.
 */
static int options_apply(struct audit_device *d, const json_t *opts, json_t **norm, struct sg_err *err)
{
	json_t *echo = json_object();
	const char *k;
	json_t *v;
	int rc = -1;

	*norm = NULL;
	if (opts != NULL && !json_is_null(opts) && !json_is_object(opts)) {
		sg_err_set(err, SG_BAD_REQUEST, "field 'options' must be an object");
		goto out;
	}
	json_object_foreach((json_t *)opts, k, v) {
		char buf[32];
		const char *s = NULL;
		json_t *one;

		if (json_is_null(v))
			continue;
		if (option_str(v, k, buf, sizeof(buf), &s, err) != 0)
			goto out;
		one = json_pack("{s:s}", k, s);
		if (strcmp(k, "file_path") == 0 || strcmp(k, "path") == 0) {
			if (*s == '\0' || strlen(s) > AUDIT_FILE_PATH_MAX) {
				sg_err_set(err, SG_BAD_REQUEST, "file_path must be 1 to %d bytes", AUDIT_FILE_PATH_MAX);
				json_decref(one);
				goto out;
			}
			if (strcmp(s, "stdout") == 0 || strcmp(s, "discard") == 0) {
				sg_err_set(err, SG_BAD_REQUEST,
				           "file_path \"%s\" is not supported: the audit chain needs a file it can append to", s);
				json_decref(one);
				goto out;
			}
			free(d->file_path);
			d->file_path = sg_xstrdup(s);
			json_object_set_new(echo, "file_path", server_json_string_safe(s));
		} else if (strcmp(k, "log_raw") == 0 || strcmp(k, "hmac_accessor") == 0) {
			bool b = false;

			if (sg_json_bool(one, k, &b, err) < 0) {
				json_decref(one);
				goto out;
			}
			if (strcmp(k, "log_raw") == 0)
				d->log_raw = b;
			else
				d->hmac_accessor = b;
			json_object_set_new(echo, k, json_string(b ? "true" : "false"));
		} else if (strcmp(k, "mode") == 0) {
			if (mode_parse(s, &d->mode) != 0) {
				sg_err_set(err, SG_BAD_REQUEST, "audit option 'mode' must be an octal file mode such as \"0600\"");
				json_decref(one);
				goto out;
			}
			json_object_set_new(echo, k, json_string(s));
		} else if (strcmp(k, "format") == 0) {
			if (strcmp(s, "json") != 0) {
				sg_err_set(err, SG_BAD_REQUEST, "audit format \"%.64s\" is not supported: only \"json\"", s);
				json_decref(one);
				goto out;
			}
			json_object_set_new(echo, k, json_string(s));
		} else {
			sg_err_set(err, SG_BAD_REQUEST, "audit option '%.64s' is not supported", k);
			json_decref(one);
			goto out;
		}
		json_decref(one);
	}
	if (d->file_path == NULL) {
		sg_err_set(err, SG_BAD_REQUEST, "file_path is required");
		goto out;
	}
	*norm = echo;
	echo = NULL;
	rc = 0;
out:
	json_decref(echo);
	return rc;
}

/* ---- Chain lines ---- */

/*
 * Checks one line (without its "\n") of the chain: the hash suffix, the
 * hash over the bytes before it, and the seq and prev_hash fields. 0 with
 * *seq, hash and prev filled; -1 with why.
 */
static int line_check(const EVP_MD *md, const char *b, size_t n, uint64_t *seq, unsigned char hash[32],
                      unsigned char prev[32], char *why, size_t cap)
{
	unsigned char calc[32];
	json_t *j = NULL, *js, *jp;
	const char *ps;
	json_error_t jerr;
	int rc = -1;

	if (n < AUDIT_SUFFIX_LEN + 2 ||
	    memcmp(b + n - AUDIT_SUFFIX_LEN, audit_suffix_head, sizeof(audit_suffix_head) - 1) != 0 ||
	    !hex64_ok(b + n - 66) || b[n - 2] != '"' || b[n - 1] != '}') {
		snprintf(why, cap, "not an audit chain record (no hash field at its end)");
		goto out;
	}
	sha256(md, b, n - AUDIT_SUFFIX_LEN, calc);
	if (hex_decode(b + n - 66, 32, hash) != 0 || CRYPTO_memcmp(calc, hash, 32) != 0) {
		snprintf(why, cap, "the line does not match its hash: it was edited");
		goto out;
	}
	j = json_loadb(b, n, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(j)) {
		snprintf(why, cap, "not a JSON object: %.120s", j == NULL ? jerr.text : "another type");
		goto out;
	}
	js = json_object_get(j, "seq");
	jp = json_object_get(j, "prev_hash");
	ps = json_string_value(jp);
	if (!json_is_integer(js) || json_integer_value(js) < 1) {
		snprintf(why, cap, "no valid \"seq\" field");
		goto out;
	}
	if (ps == NULL || strlen(ps) != AUDIT_HASH_STR_LEN || strncmp(ps, AUDIT_HASH_PREFIX, 7) != 0 ||
	    !hex64_ok(ps + 7) || hex_decode(ps + 7, 32, prev) != 0) {
		snprintf(why, cap, "no valid \"prev_hash\" field");
		goto out;
	}
	*seq = (uint64_t)json_integer_value(js);
	rc = 0;
out:
	json_decref(j);
	return rc;
}

/*
 * Where an existing file's chain ends: the last of its final lines that is a
 * valid record. *found false when the file is empty or holds none; *torn
 * when it does not end with "\n".
 */
static int file_tail(const EVP_MD *md, const char *path, bool *found, uint64_t *seq, unsigned char hash[32],
                     bool *torn, struct sg_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf = NULL;
	size_t win, end;
	off_t off;
	int rc = -1;

	*found = false;
	*torn = false;
	if (fd < 0) {
		sg_err_set(err, SG_BAD_REQUEST, "cannot read audit file \"%s\": %s", path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) != 0 || st.st_size == 0) {
		rc = 0;
		goto out;
	}
	win = (size_t)st.st_size < AUDIT_MAX_LINE_BYTES + 1 ? (size_t)st.st_size : AUDIT_MAX_LINE_BYTES + 1;
	off = st.st_size - (off_t)win;
	buf = sg_xmalloc(win);
	for (size_t got = 0; got < win;) {
		ssize_t r = pread(fd, buf + got, win - got, off + (off_t)got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			sg_err_set(err, SG_BAD_REQUEST, "cannot read audit file \"%s\": %s", path,
			           r < 0 ? strerror(errno) : "file shrank");
			goto out;
		}
		got += (size_t)r;
	}
	*torn = buf[win - 1] != '\n';
	/* end: one past the last byte of the line being tried (its "\n" excluded). */
	end = win;
	if (!*torn)
		end--;
	else
		while (end > 0 && buf[end - 1] != '\n')
			end--; /* skip the partial line */
	if (*torn && end > 0)
		end--;
	for (int tries = 0; tries < AUDIT_TAIL_LINES && end > 0; tries++) {
		size_t start = end;
		unsigned char prev[32];
		char why[160];

		while (start > 0 && buf[start - 1] != '\n')
			start--;
		if (start == 0 && off > 0)
			break; /* the line may begin before the window */
		if (line_check(md, buf + start, end - start, seq, hash, prev, why, sizeof(why)) == 0) {
			*found = true;
			break;
		}
		if (start == 0)
			break;
		end = start - 1;
	}
	rc = 0;
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return rc;
}

/*
 * Opens d's file and decides where the chain continues. Called with d->mu
 * held (or before d is shared). A checkpoint ahead of the file (lines were
 * removed while the server was down), or at the file's last seq with
 * another hash (the file was rewritten), wins over the file: the next line
 * then chains to the recorded head, so the break stays visible in the file
 * for `sigil audit verify`.
 */
static int dev_open(struct audit *a, struct audit_device *d, struct sg_err *err)
{
	struct stat st;
	bool found = false, torn = false;
	uint64_t fseq = 0;
	unsigned char fhash[32] = {0};
	int fd, fl;

	/* O_NONBLOCK: a FIFO without a reader fails here instead of hanging the request. */
	fd = open(d->file_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, d->mode != 0 ? d->mode : 0600);
	if (fd < 0)
		return sg_err_set(err, SG_BAD_REQUEST, "cannot open audit file \"%s\": %s", d->file_path, strerror(errno));
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0 || fstat(fd, &st) != 0) {
		sg_err_set(err, SG_BAD_REQUEST, "cannot use audit file \"%s\": %s", d->file_path, strerror(errno));
		close(fd);
		return -1;
	}
	d->regular = S_ISREG(st.st_mode);
	if (d->regular && d->mode != 0 && (st.st_mode & 07777) != d->mode && fchmod(fd, d->mode) != 0)
		server_log(SERVER_LOG_WARN, "cannot set the audit file's mode",
		           json_pack("{s:s, s:s}", "device", d->path, "error", strerror(errno)));
	if (d->regular && file_tail(a->sha256, d->file_path, &found, &fseq, fhash, &torn, err) != 0) {
		close(fd);
		return -1;
	}
	d->fd = fd;
	d->torn = torn;
	d->seq = found ? fseq : 0;
	memcpy(d->head, fhash, sizeof(d->head));
	if (d->has_ck && (d->ck_seq > d->seq || (d->ck_seq == d->seq && d->seq > 0 &&
	                                          CRYPTO_memcmp(d->ck_hash, d->head, 32) != 0))) {
		server_log(SERVER_LOG_ERROR, "audit file does not reach the recorded chain head: lines were removed or "
		                             "rewritten; the chain continues from the recorded head",
		           json_pack("{s:s, s:s, s:I, s:I}", "device", d->path, "file", d->file_path, "file_seq",
		                     (json_int_t)d->seq, "recorded_seq", (json_int_t)d->ck_seq));
		d->seq = d->ck_seq;
		memcpy(d->head, d->ck_hash, sizeof(d->head));
	}
	if (torn)
		server_log(SERVER_LOG_WARN, "audit file ends with a partial line (an interrupted write)",
		           json_pack("{s:s}", "device", d->path));
	hex_encode(d->head, sizeof(d->head), d->head_hex);
	d->synced = d->seq;
	memcpy(d->synced_head, d->head, sizeof(d->head));
	d->checkpointed = d->has_ck ? d->ck_seq : 0;
	return 0;
}

/* Logs a device's change between writing and failing once, not at every line. */
static void dev_state_log(struct audit_device *d, bool failed, const char *detail)
{
	if (failed == d->failing)
		return;
	d->failing = failed;
	if (failed)
		server_log(SERVER_LOG_ERROR, "audit device cannot write",
		           json_pack("{s:s, s:s, s:s}", "device", d->path, "file", d->file_path, "error", detail));
	else
		server_log(SERVER_LOG_INFO, "audit device writes again", json_pack("{s:s}", "device", d->path));
}

/*
 * Appends one entry as the next line of d's chain with a single write(),
 * in place: buf is "\n" (written only to end a torn line) then the entry
 * (len bytes ending in '}', which the chain fields replace), with
 * AUDIT_CHAIN_EXTRA bytes to spare. *seq_out receives its seq.
 */
static int dev_append(struct audit *a, struct audit_device *d, char *buf, size_t len, uint64_t *seq_out,
                      struct sg_err *err)
{
	size_t cap = 1 + len + AUDIT_CHAIN_EXTRA, n, off;
	unsigned char h[32];
	char hx[65];
	ssize_t w;
	int rc = -1, e;

	pthread_mutex_lock(&d->mu);
	if (d->dead) {
		sg_err_set(err, SG_INTERNAL, "audit device %s failed to sync earlier", d->path);
		goto out;
	}
	if (d->fd < 0 && dev_open(a, d, err) != 0)
		goto out;
	n = len;
	n += (size_t)snprintf(buf + n, cap - n, ",\"seq\":%" PRIu64 ",\"prev_hash\":\"" AUDIT_HASH_PREFIX "%s\"",
	                      d->seq + 1, d->head_hex);
	sha256(a->sha256, buf + 1, n - 1, h);
	hex_encode(h, sizeof(h), hx);
	n += (size_t)snprintf(buf + n, cap - n, "%s%s\"}\n", audit_suffix_head, hx);
	off = d->torn ? 0 : 1;
	do
		w = write(d->fd, buf + off, n - off);
	while (w < 0 && errno == EINTR);
	if (w != (ssize_t)(n - off)) {
		e = w < 0 ? errno : ENOSPC;
		if (w > 0)
			d->torn = true;
		d->last_errno = e;
		sg_err_set(err, SG_INTERNAL, "audit device %s: write failed: %s", d->path, strerror(e));
		goto out;
	}
	d->torn = false;
	d->seq++;
	atomic_fetch_add(&a->lines, 1);
	memcpy(d->head, h, sizeof(h));
	memcpy(d->head_hex, hx, sizeof(hx));
	*seq_out = d->seq;
	rc = 0;
out:
	dev_state_log(d, rc != 0, err->detail);
	pthread_mutex_unlock(&d->mu);
	return rc;
}

/*
 * Waits until line seq of d is durable. Group sync: the first waiter syncs
 * everything written so far; waiters arriving meanwhile wait for it and,
 * if their line came later, for the next one.
 */
static int dev_sync(struct audit *a, struct audit_device *d, uint64_t seq, struct sg_err *err)
{
	int rc = 0;

	pthread_mutex_lock(&d->mu);
	while (d->synced < seq && !d->dead) {
		uint64_t target;
		unsigned char target_head[32];
		int r, e;

		if (d->syncing) {
			pthread_cond_wait(&d->cv, &d->mu);
			continue;
		}
		d->syncing = true;
		target = d->seq;
		memcpy(target_head, d->head, sizeof(target_head));
		pthread_mutex_unlock(&d->mu);
		r = d->regular ? fdatasync(d->fd) : 0;
		e = errno;
		atomic_fetch_add(&a->syncs, 1);
		pthread_mutex_lock(&d->mu);
		d->syncing = false;
		d->syncs++;
		if (r == 0 && target > d->synced) {
			d->synced = target;
			memcpy(d->synced_head, target_head, sizeof(target_head));
		} else if (r != 0) {
			/* After a failed fsync the kernel may have dropped the pages: a later success proves nothing. */
			d->dead = true;
			d->last_errno = e;
			dev_state_log(d, true, strerror(e));
		}
		pthread_cond_broadcast(&d->cv);
	}
	if (d->synced < seq)
		rc = sg_err_set(err, SG_INTERNAL, "audit device %s: sync failed: %s", d->path, strerror(d->last_errno));
	pthread_mutex_unlock(&d->mu);
	return rc;
}

/* ---- Entries ---- */

enum field_kind { FIELD_CLEAR, FIELD_SECRET, FIELD_ACCESSOR };

struct redact_ctx {
	const struct audit_device *d;
	const struct audit_entry *e;
	bool token_paths;             /* auth/token/...: "id" is a token */
	bool accessor_list;           /* LIST auth/token/accessors: "keys" are accessors */
	bool hash_input;              /* sys/audit-hash: "input" is what someone looks for, likely a secret */
	/* The caller's token and accessor appear twice a line: HMAC-ed once. */
	char tok_h[AUDIT_HMAC_STR_LEN + 1], acc_h[AUDIT_HMAC_STR_LEN + 1];
};

/*
 * Field names whose values are secrets wherever they appear (request
 * bodies, response data, login blocks). serial_number, lease_id and
 * certificates stay clear: they are what an auditor looks for.
 */
struct field_name {
	const char *name;
	size_t len;
	enum field_kind kind;
};
#define FIELD(n, k) {n, sizeof(n) - 1, k}
static const struct field_name field_names[] = {
	FIELD("private_key", FIELD_SECRET),      FIELD("pem_bundle", FIELD_SECRET),
	FIELD("csr", FIELD_SECRET),              FIELD("key", FIELD_SECRET),
	FIELD("token", FIELD_SECRET),            FIELD("client_token", FIELD_SECRET),
	FIELD("secret_id", FIELD_SECRET),        FIELD("jwt", FIELD_SECRET),
	FIELD("token_reviewer_jwt", FIELD_SECRET), FIELD("oidc_client_secret", FIELD_SECRET),
	FIELD("client_secret", FIELD_SECRET),    FIELD("password", FIELD_SECRET),
	FIELD("code", FIELD_SECRET),             FIELD("code_verifier", FIELD_SECRET),
	FIELD("id_token", FIELD_SECRET),         FIELD("access_token", FIELD_SECRET),
	FIELD("refresh_token", FIELD_SECRET),    FIELD("role_id", FIELD_SECRET),
	FIELD("hmac_key", FIELD_SECRET),         FIELD("accessor", FIELD_ACCESSOR),
	FIELD("client_token_accessor", FIELD_ACCESSOR), FIELD("secret_id_accessor", FIELD_ACCESSOR),
	FIELD("token_accessor", FIELD_ACCESSOR),
};
#undef FIELD

static enum field_kind field_kind(const struct redact_ctx *x, const char *key)
{
	size_t n;

	if (key == NULL)
		return FIELD_CLEAR;
	n = strlen(key);
	for (size_t i = 0; i < sizeof(field_names) / sizeof(field_names[0]); i++)
		if (field_names[i].len == n && strcasecmp(key, field_names[i].name) == 0)
			return field_names[i].kind;
	if (x->token_paths && strcmp(key, "id") == 0)
		return FIELD_SECRET;
	if (x->accessor_list && strcmp(key, "keys") == 0)
		return FIELD_ACCESSOR;
	if (x->hash_input && strcmp(key, "input") == 0)
		return FIELD_SECRET;
	return FIELD_CLEAR;
}

/* A compact JWS (RFC 7515 7.1): three base64url parts, the header a JSON object ("eyJ"). */
static bool looks_jws(const char *s, size_t n)
{
	size_t dots = 0;

	if (n < 10 || strncmp(s, "eyJ", 3) != 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '.')
			dots++;
		else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
		           c == '_' || c == '='))
			return false;
	}
	return dots == 2;
}

/* Values that are secrets whatever their field is called: keys, tokens, JWTs. */
static bool value_secret(const struct redact_ctx *x, const char *s, size_t n)
{
	const char *tok = x->e->client_token;

	if (memmem(s, n, "PRIVATE KEY", 11) != NULL)
		return true;
	if (n > 4 && (strncmp(s, "hvs.", 4) == 0 || strncmp(s, "hvb.", 4) == 0 || strncmp(s, "hvr.", 4) == 0))
		return true;
	if (looks_jws(s, n))
		return true;
	return tok != NULL && strlen(tok) >= AUDIT_MIN_TOKEN_MATCH && strlen(tok) == n && memcmp(tok, s, n) == 0;
}

/*
 * Lines are written straight from the request's JSON into a buffer, HMAC-ing
 * on the way: no redacted copy, no jansson dump (whose per-character
 * encoder cost as much as the rest of the audit path). Output is always
 * valid UTF-8 JSON: bytes that are not (paths, headers) become '?'.
 */
struct jbuf {
	char *p;
	size_t len, cap;
};

static void jb_reserve(struct jbuf *b, size_t n)
{
	if (b->len + n <= b->cap)
		return;
	b->cap = b->cap * 2 > b->len + n + 256 ? b->cap * 2 : b->len + n + 256;
	b->p = sg_xrealloc(b->p, b->cap);
}

static void jb_mem(struct jbuf *b, const void *s, size_t n)
{
	jb_reserve(b, n);
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void jb_lit(struct jbuf *b, const char *s)
{
	jb_mem(b, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at s (RFC 3629 4), 0 when invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t cp;

	if (s[0] < 0xc2 || s[0] > 0xf4)
		return 0;
	len = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : 2;
	if (len > n)
		return 0;
	cp = s[0] & (0x3f >> (len - 1));
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* A JSON string (RFC 8259 7): quotes, backslashes and controls escaped. */
static void jb_str(struct jbuf *b, const char *str, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)str;
	size_t start = 0, i = 0;

	jb_reserve(b, n + 2);
	b->p[b->len++] = '"';
	while (i < n) {
		unsigned char c;
		char esc[7];
		size_t elen = 2, u;

		/* Certificates make most of a line: plain ASCII runs are skipped 8 bytes at a time. */
		while (i + 8 <= n) {
			uint64_t w, lo, hi;

			memcpy(&w, s + i, 8);
			lo = (w - 0x2020202020202020ull) | w; /* a byte < 0x20 or >= 0x80 sets its top bit */
			hi = ((w ^ 0x2222222222222222ull) - 0x0101010101010101ull) |
			     ((w ^ 0x5c5c5c5c5c5c5c5cull) - 0x0101010101010101ull); /* '"' or '\\' */
			if (((lo | hi) & 0x8080808080808080ull) != 0)
				break;
			i += 8;
		}
		if (i >= n)
			break;
		c = s[i];
		if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0x80 && (u = utf8_len(s + i, n - i)) != 0) {
			i += u;
			continue;
		}
		jb_mem(b, s + start, i - start);
		esc[0] = '\\';
		switch (c) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default:
			if (c >= 0x80) {
				esc[0] = '?'; /* not UTF-8 */
				elen = 1;
			} else {
				memcpy(esc, "\\u00", 4);
				esc[4] = hex[c >> 4];
				esc[5] = hex[c & 15];
				elen = 6;
			}
		}
		jb_mem(b, esc, elen);
		start = ++i;
	}
	jb_mem(b, s + start, n - start);
	jb_mem(b, "\"", 1);
}

static void jb_cstr(struct jbuf *b, const char *s)
{
	jb_str(b, s != NULL ? s : "", s != NULL ? strlen(s) : 0);
}

static void jb_int(struct jbuf *b, long long v)
{
	char num[24];

	jb_mem(b, num, (size_t)snprintf(num, sizeof(num), "%lld", v));
}

/* ,"name": (the comma when the object already has a member). */
static void jb_key(struct jbuf *b, bool *first, const char *name)
{
	if (!*first)
		jb_mem(b, ",", 1);
	*first = false;
	jb_str(b, name, strlen(name));
	jb_mem(b, ":", 1);
}

static void jb_hmac(struct jbuf *b, const struct audit_device *d, const char *s, size_t n)
{
	char out[AUDIT_HMAC_STR_LEN + 1];

	dev_hmac(d, s, n, out);
	jb_mem(b, "\"", 1);
	jb_mem(b, out, AUDIT_HMAC_STR_LEN);
	jb_mem(b, "\"", 1);
}

/* The caller's token as the device writes it: HMAC-ed, or clear with log_raw. */
static void jb_client_token(struct jbuf *b, struct redact_ctx *x)
{
	const char *s = x->e->client_token;

	if (x->d->log_raw) {
		jb_cstr(b, s);
		return;
	}
	if (x->tok_h[0] == '\0')
		dev_hmac(x->d, s, strlen(s), x->tok_h);
	jb_mem(b, "\"", 1);
	jb_mem(b, x->tok_h, AUDIT_HMAC_STR_LEN);
	jb_mem(b, "\"", 1);
}

/* The caller's accessor: HMAC-ed unless hmac_accessor is false (or log_raw). */
static void jb_tok_accessor(struct jbuf *b, struct redact_ctx *x)
{
	const char *s = x->e->tok->accessor;

	if (x->d->log_raw || !x->d->hmac_accessor) {
		jb_cstr(b, s);
		return;
	}
	if (x->acc_h[0] == '\0')
		dev_hmac(x->d, s, strlen(s), x->acc_h);
	jb_mem(b, "\"", 1);
	jb_mem(b, x->acc_h, AUDIT_HMAC_STR_LEN);
	jb_mem(b, "\"", 1);
}

/* A value of request or response data, secrets HMAC-ed by field name or by their look. */
static void jb_value(struct jbuf *b, const struct redact_ctx *x, const char *key, const json_t *v, int depth)
{
	const struct audit_device *d = x->d;
	enum field_kind kind = field_kind(x, key);
	bool hide = !d->log_raw && (kind == FIELD_SECRET || (kind == FIELD_ACCESSOR && d->hmac_accessor));

	if (depth > AUDIT_MAX_DEPTH || (hide && (json_is_object(v) || json_is_array(v) || json_is_number(v) ||
	                                         json_is_boolean(v)))) {
		char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);

		if (s == NULL)
			sg_die("out of memory");
		jb_hmac(b, d, s, strlen(s));
		free(s);
		return;
	}
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		const char *k;
		json_t *val;
		bool first = true;

		jb_mem(b, "{", 1);
		json_object_foreach((json_t *)v, k, val) {
			jb_key(b, &first, k);
			jb_value(b, x, k, val, depth + 1);
		}
		jb_mem(b, "}", 1);
		break;
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *val;

		jb_mem(b, "[", 1);
		json_array_foreach(v, i, val) {
			if (i > 0)
				jb_mem(b, ",", 1);
			jb_value(b, x, key, val, depth + 1);
		}
		jb_mem(b, "]", 1);
		break;
	}
	case JSON_STRING: {
		const char *s = json_string_value(v);
		size_t n = json_string_length(v);

		if (!d->log_raw && (hide || n > AUDIT_MAX_CLEAR_STRING || value_secret(x, s, n)))
			jb_hmac(b, d, s, n);
		else
			jb_str(b, s, n);
		break;
	}
	case JSON_INTEGER:
		jb_int(b, (long long)json_integer_value(v));
		break;
	case JSON_REAL: {
		char num[40];

		jb_mem(b, num, (size_t)snprintf(num, sizeof(num), "%.17g", json_real_value(v)));
		break;
	}
	case JSON_TRUE:
		jb_lit(b, "true");
		break;
	case JSON_FALSE:
		jb_lit(b, "false");
		break;
	default:
		jb_lit(b, "null");
	}
}

/* "1.2.3.4:5678" / "[::1]:5678" into address and port. */
static void remote_split(const char *r, char *addr, size_t cap, long *port)
{
	const char *colon;

	*port = 0;
	snprintf(addr, cap, "%s", r != NULL ? r : "");
	if (r == NULL)
		return;
	colon = strrchr(r, ':');
	if (r[0] == '[') {
		const char *close = strchr(r, ']');

		if (close == NULL || close[1] != ':')
			return;
		snprintf(addr, cap, "%.*s", (int)(close - r - 1), r + 1);
		*port = strtol(close + 2, NULL, 10);
	} else if (colon != NULL && strchr(r, ':') == colon) {
		snprintf(addr, cap, "%.*s", (int)(colon - r), r);
		*port = strtol(colon + 1, NULL, 10);
	}
}

static void entry_auth(struct jbuf *b, struct redact_ctx *x)
{
	const struct audit_entry *e = x->e;
	const struct auth_token *t = e->tok;
	bool first = true;
	char issued[40];

	jb_mem(b, "{", 1);
	if (e->client_token != NULL && *e->client_token != '\0') {
		jb_key(b, &first, "client_token");
		jb_client_token(b, x);
	}
	if (t != NULL) {
		jb_key(b, &first, "accessor");
		jb_tok_accessor(b, x);
		jb_key(b, &first, "display_name");
		jb_cstr(b, t->display_name);
		for (int pass = 0; pass < 2; pass++) {
			jb_key(b, &first, pass == 0 ? "policies" : "token_policies");
			jb_mem(b, "[", 1);
			for (size_t i = 0; i < t->policies.n; i++) {
				if (i > 0)
					jb_mem(b, ",", 1);
				jb_cstr(b, t->policies.v[i]);
			}
			jb_mem(b, "]", 1);
		}
		jb_key(b, &first, "metadata");
		if (t->meta != NULL)
			jb_value(b, x, NULL, t->meta, 0);
		else
			jb_lit(b, "null");
		jb_key(b, &first, "entity_id");
		jb_cstr(b, t->entity_id);
		jb_key(b, &first, "token_type");
		jb_cstr(b, t->type != NULL ? t->type : "service");
		jb_key(b, &first, "token_ttl");
		jb_int(b, (long long)t->creation_ttl);
		jb_key(b, &first, "token_issue_time");
		sg_time_format_rfc3339(t->creation_time, issued, sizeof(issued));
		jb_cstr(b, issued);
		if (t->alias != NULL) {
			jb_key(b, &first, "identity");
			jb_value(b, x, NULL, t->alias, 0);
		}
	}
	jb_mem(b, "}", 1);
}

/* Vault's request data: the body, and the query arguments the body does not have. */
static void entry_data(struct jbuf *b, const struct redact_ctx *x)
{
	const struct audit_entry *e = x->e;
	const json_t *body = json_is_object(e->data) ? e->data : NULL;
	const char *k;
	json_t *v;
	bool first = true;

	jb_mem(b, "{", 1);
	json_object_foreach((json_t *)body, k, v) {
		jb_key(b, &first, k);
		jb_value(b, x, k, v, 1);
	}
	json_object_foreach((json_t *)e->query, k, v) {
		if (json_object_get(body, k) != NULL)
			continue;
		jb_key(b, &first, k);
		jb_value(b, x, k, v, 1);
	}
	jb_mem(b, "}", 1);
}

static void entry_request(struct jbuf *b, struct redact_ctx *x, bool elide)
{
	const struct audit_entry *e = x->e;
	bool first = true;
	char addr[80];
	long port;

	jb_mem(b, "{", 1);
	jb_key(b, &first, "id");
	jb_cstr(b, e->request_id);
	jb_key(b, &first, "operation");
	jb_cstr(b, e->operation);
	if (e->mount_type != NULL) {
		jb_key(b, &first, "mount_type");
		jb_cstr(b, e->mount_type);
	}
	if (e->mount_point != NULL) {
		jb_key(b, &first, "mount_point");
		jb_cstr(b, e->mount_point);
	}
	if (e->client_token != NULL && *e->client_token != '\0') {
		jb_key(b, &first, "client_token");
		jb_client_token(b, x);
	}
	if (e->tok != NULL) {
		jb_key(b, &first, "client_token_accessor");
		jb_tok_accessor(b, x);
	}
	jb_key(b, &first, "namespace");
	jb_lit(b, "{\"id\":\"root\"}");
	jb_key(b, &first, "path");
	jb_cstr(b, e->path);
	if (json_object_size(e->data) > 0 || json_object_size(e->query) > 0) {
		jb_key(b, &first, "data");
		if (elide)
			jb_lit(b, "{\"elided\":true}");
		else
			entry_data(b, x);
	}
	remote_split(e->remote_addr, addr, sizeof(addr), &port);
	jb_key(b, &first, "remote_address");
	jb_cstr(b, addr);
	if (port > 0) {
		jb_key(b, &first, "remote_port");
		jb_int(b, port);
	}
	jb_mem(b, "}", 1);
}

static void entry_response(struct jbuf *b, const struct redact_ctx *x, const EVP_MD *md, bool elide)
{
	const struct audit_entry *e = x->e;
	const struct resp *rs = e->rs;
	bool first = true;

	jb_mem(b, "{", 1);
	jb_key(b, &first, "status");
	jb_int(b, e->status);
	if (e->mount_type != NULL) {
		jb_key(b, &first, "mount_type");
		jb_cstr(b, e->mount_type);
	}
	if (rs != NULL && rs->content_type != NULL) {
		/* Raw answers (CA certificates, CRLs, OCSP) are public: their digest identifies them. */
		unsigned char h[32];
		char hx[65];

		sha256(md, rs->body != NULL ? (const void *)rs->body : "", rs->body_len, h);
		hex_encode(h, sizeof(h), hx);
		jb_key(b, &first, "content_type");
		jb_cstr(b, rs->content_type);
		jb_key(b, &first, "body_bytes");
		jb_int(b, (long long)rs->body_len);
		jb_key(b, &first, "body_sha256");
		jb_cstr(b, hx);
	} else if (rs != NULL) {
		if (rs->data != NULL && !json_is_null(rs->data)) {
			jb_key(b, &first, "data");
			if (elide)
				jb_lit(b, "{\"elided\":true}");
			else
				jb_value(b, x, NULL, rs->data, 0);
		}
		if (rs->auth != NULL && !json_is_null(rs->auth)) {
			jb_key(b, &first, "auth");
			jb_value(b, x, NULL, rs->auth, 0);
		}
		if (rs->lease_id != NULL && *rs->lease_id != '\0') {
			jb_key(b, &first, "secret");
			jb_lit(b, "{\"lease_id\":");
			jb_cstr(b, rs->lease_id);
			jb_lit(b, ",\"lease_duration\":");
			jb_int(b, (long long)rs->lease_duration);
			jb_lit(b, rs->renewable ? ",\"renewable\":true}" : ",\"renewable\":false}");
		}
		if (rs->warnings.n > 0) {
			jb_key(b, &first, "warnings");
			jb_mem(b, "[", 1);
			for (size_t i = 0; i < rs->warnings.n; i++) {
				if (i > 0)
					jb_mem(b, ",", 1);
				jb_cstr(b, rs->warnings.v[i]);
			}
			jb_mem(b, "]", 1);
		}
	}
	jb_mem(b, "}", 1);
}

static void entry_write(struct jbuf *b, struct audit *a, struct redact_ctx *x, bool response, bool elide,
                        size_t elided_bytes)
{
	char t[64];

	audit_time(t, sizeof(t));
	jb_lit(b, "{\"time\":");
	jb_cstr(b, t);
	jb_lit(b, response ? ",\"type\":\"response\",\"auth\":" : ",\"type\":\"request\",\"auth\":");
	entry_auth(b, x);
	jb_lit(b, ",\"request\":");
	entry_request(b, x, elide);
	if (response) {
		jb_lit(b, ",\"response\":");
		entry_response(b, x, a->sha256, elide);
	}
	jb_lit(b, ",\"error\":");
	jb_cstr(b, x->e->error);
	if (elided_bytes > 0) {
		jb_lit(b, ",\"elided_bytes\":");
		jb_int(b, (long long)elided_bytes);
	}
	jb_mem(b, "}", 1);
}

/*
 * One device's line for e, laid out for dev_append: "\n", then *len bytes
 * ending in '}', then room for the chain fields. Malloc'ed.
 */
static char *entry_dump(struct audit *a, const struct audit_device *d, const struct audit_entry *e, bool response,
                        size_t *len)
{
	struct redact_ctx x;
	struct jbuf b = {NULL, 0, 0};

	memset(&x, 0, sizeof(x));
	x.d = d;
	x.e = e;
	if (e->path != NULL) {
		x.token_paths = strncmp(e->path, "auth/token/", 11) == 0;
		x.accessor_list = strcmp(e->path, "auth/token/accessors") == 0;
		x.hash_input = strncmp(e->path, "sys/audit-hash/", 15) == 0;
	}
	jb_reserve(&b, 4096);
	b.p[b.len++] = '\n';
	entry_write(&b, a, &x, response, false, 0);
	if (b.len - 1 > AUDIT_MAX_LINE_BYTES) {
		/* Bounded lines: huge bodies keep only their size (the chain needs every line readable). */
		size_t before = b.len - 1;

		b.len = 1;
		entry_write(&b, a, &x, response, true, before);
	}
	jb_reserve(&b, AUDIT_CHAIN_EXTRA);
	*len = b.len - 1;
	return b.p;
}

static int log_entry(struct audit *a, const struct audit_entry *e, bool response, bool sync, struct sg_err *err)
{
	struct audit_device *devs[AUDIT_MAX_DEVICES];
	uint64_t seqs[AUDIT_MAX_DEVICES];
	bool wrote[AUDIT_MAX_DEVICES];
	size_t n = devs_snapshot(a, devs), ok = 0;
	struct sg_err last;

	sg_err_init(&last);
	for (size_t i = 0; i < n; i++) {
		size_t len = 0;
		char *s = entry_dump(a, devs[i], e, response, &len);
		struct sg_err derr;

		sg_err_init(&derr);
		wrote[i] = dev_append(a, devs[i], s, len, &seqs[i], &derr) == 0;
		if (!wrote[i])
			last = derr;
		free(s);
	}
	for (size_t i = 0; i < n; i++) {
		struct sg_err derr;

		if (!wrote[i])
			continue;
		sg_err_init(&derr);
		if (!sync || dev_sync(a, devs[i], seqs[i], &derr) == 0)
			ok++;
		else
			last = derr;
	}
	devs_release(devs, n);
	if (n > 0 && ok == 0) {
		server_log(SERVER_LOG_ERROR, "no audit device recorded the request: refused",
		           json_pack("{s:s, s:s, s:s}", "request_id", e->request_id != NULL ? e->request_id : "", "type",
		                     response ? "response" : "request", "error", last.detail));
		return sg_err_set(err, SG_INTERNAL, "internal error");
	}
	return 0;
}

/* ---- Public logging API ---- */

bool audit_path_exempt(const char *path)
{
	static const char *const exempt[] = {"sys/health", "sys/seal-status", "sys/init"};

	for (size_t i = 0; i < sizeof(exempt) / sizeof(exempt[0]); i++)
		if (path != NULL && strcmp(path, exempt[i]) == 0)
			return true;
	return false;
}

int audit_log_request(struct audit *a, const struct audit_entry *e, bool sync, struct sg_err *err)
{
	if (a == NULL)
		return 0;
	return log_entry(a, e, false, sync, err);
}

int audit_log_response(struct audit *a, const struct audit_entry *e, struct sg_err *err)
{
	if (a == NULL)
		return 0;
	return log_entry(a, e, true, true, err);
}

size_t audit_device_count(struct audit *a)
{
	return a != NULL ? atomic_load(&a->n) : 0;
}

void audit_stats(struct audit *a, uint64_t *lines, uint64_t *syncs)
{
	*lines = atomic_load(&a->lines);
	*syncs = atomic_load(&a->syncs);
}

/* ---- Persistence ---- */

static int record_store(struct audit *a, const struct audit_device *d, const char *type, struct sg_err *err)
{
	char salt_hex[AUDIT_SALT_BYTES * 2 + 1];
	char *key = sg_xasprintf(AUDIT_REC_PREFIX "%s", d->path), *hkey = sg_xasprintf(AUDIT_HEAD_PREFIX "%s", d->path);
	json_t *j;
	char *text;
	struct store_batch *b = store_batch_new();
	int rc;

	hex_encode(d->salt, sizeof(d->salt), salt_hex);
	j = json_pack("{s:s, s:s, s:b, s:O, s:s, s:I}", "type", type, "description", d->description, "local", d->local,
	              "options", d->options, "salt", salt_hex, "created", (json_int_t)sg_now());
	text = json_dumps(j, JSON_COMPACT);
	if (text == NULL)
		sg_die("out of memory");
	store_batch_put_new(b, STORE_META, key, strlen(key), text, strlen(text));
	/* A stale head of an earlier device at this path must not be taken for this one's. */
	store_batch_del(b, STORE_META, hkey, strlen(hkey));
	rc = store_commit(a->st, b, err);
	if (rc != 0 && err->code == SG_CONFLICT) {
		err->code = SG_BAD_REQUEST;
		snprintf(err->detail, sizeof(err->detail), "path already in use");
	}
	OPENSSL_cleanse(text, strlen(text));
	OPENSSL_cleanse(salt_hex, sizeof(salt_hex));
	free(text);
	json_decref(j);
	store_batch_free(b);
	free(key);
	free(hkey);
	return rc;
}

struct load_acc {
	json_t *recs; /* path -> record */
	json_t *heads;
};

static int load_cb(void *arg, const char *key, size_t klen, const void *val, size_t vlen)
{
	struct load_acc *acc = arg;
	bool head = klen > strlen(AUDIT_HEAD_PREFIX) && strncmp(key, AUDIT_HEAD_PREFIX, strlen(AUDIT_HEAD_PREFIX)) == 0;
	bool rec = klen > strlen(AUDIT_REC_PREFIX) && strncmp(key, AUDIT_REC_PREFIX, strlen(AUDIT_REC_PREFIX)) == 0;
	size_t plen = head ? strlen(AUDIT_HEAD_PREFIX) : strlen(AUDIT_REC_PREFIX);
	char path[AUDIT_PATH_MAX + 1];
	json_t *j;

	if ((!head && !rec) || klen - plen > AUDIT_PATH_MAX || vlen > AUDIT_MAX_RECORD)
		return 0;
	snprintf(path, sizeof(path), "%.*s", (int)(klen - plen), key + plen);
	j = json_loadb(val, vlen, 0, NULL);
	if (j == NULL)
		return 0;
	json_object_set_new(head ? acc->heads : acc->recs, path, j);
	return 0;
}

/* A device from its stored record (start-up). */
static struct audit_device *dev_from_record(struct audit *a, const char *path, const json_t *rec, const json_t *head,
                                            struct sg_err *err)
{
	const char *salt_hex = json_string_value(json_object_get(rec, "salt"));
	const char *desc = json_string_value(json_object_get(rec, "description"));
	unsigned char salt[AUDIT_SALT_BYTES];
	struct audit_device *d;
	json_t *norm = NULL;
	const char *hh = json_string_value(json_object_get(head, "hash"));

	if (salt_hex == NULL || strlen(salt_hex) != 2 * AUDIT_SALT_BYTES ||
	    hex_decode(salt_hex, AUDIT_SALT_BYTES, salt) != 0) {
		sg_err_set(err, SG_STORAGE, "corrupt audit device record %s", path);
		return NULL;
	}
	d = dev_new(a, path, salt);
	OPENSSL_cleanse(salt, sizeof(salt));
	d->description = sg_xstrdup(desc != NULL ? desc : "");
	d->local = json_is_true(json_object_get(rec, "local"));
	if (options_apply(d, json_object_get(rec, "options"), &norm, err) != 0) {
		dev_unref(d);
		return NULL;
	}
	d->options = norm;
	if (json_is_integer(json_object_get(head, "seq")) && hh != NULL && strlen(hh) == 64 && hex64_ok(hh) &&
	    hex_decode(hh, 32, d->ck_hash) == 0) {
		d->has_ck = true;
		d->ck_seq = (uint64_t)json_integer_value(json_object_get(head, "seq"));
	}
	return d;
}

/*
 * A file moved away (log rotation) or deleted while open would swallow
 * every later line unseen: when the path no longer names the open file,
 * the device reopens the path and the chain goes on there from the head in
 * memory. The new file then starts at seq N+1 (`sigil audit verify
 * -continues`), and a deleted file shows as lines missing before it.
 */
static void dev_check_path(struct audit_device *d)
{
	struct stat open_st, path_st;
	bool moved;
	int fd, fl;

	pthread_mutex_lock(&d->mu);
	if (d->fd < 0 || !d->regular || d->syncing || d->dead || fstat(d->fd, &open_st) != 0)
		goto out;
	moved = stat(d->file_path, &path_st) != 0 || path_st.st_ino != open_st.st_ino ||
	        path_st.st_dev != open_st.st_dev || open_st.st_nlink == 0;
	if (!moved)
		goto out;
	fd = open(d->file_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, d->mode != 0 ? d->mode : 0600);
	if (fd < 0)
		goto out; /* tried again at the next round; the old file still gets the lines */
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0 || fstat(fd, &path_st) != 0 ||
	    !S_ISREG(path_st.st_mode) || fdatasync(d->fd) != 0) {
		close(fd);
		goto out;
	}
	/* Everything written so far is durable in the old file: the new one starts clean. */
	d->synced = d->seq;
	memcpy(d->synced_head, d->head, sizeof(d->head));
	close(d->fd);
	d->fd = fd;
	d->torn = false;
	if (d->mode != 0 && (path_st.st_mode & 07777) != d->mode && fchmod(fd, d->mode) != 0)
		server_log(SERVER_LOG_WARN, "cannot set the audit file's mode", json_pack("{s:s}", "device", d->path));
	server_log(SERVER_LOG_WARN, "audit file was moved or deleted: reopened its path; the chain continues there",
	           json_pack("{s:s, s:s, s:I}", "device", d->path, "file", d->file_path, "next_seq",
	                     (json_int_t)(d->seq + 1)));
out:
	pthread_mutex_unlock(&d->mu);
}

/* Stores the synced head of every device whose head moved. */
static void checkpoint_all(struct audit *a)
{
	struct audit_device *devs[AUDIT_MAX_DEVICES];
	uint64_t seqs[AUDIT_MAX_DEVICES];
	size_t n;
	struct store_batch *b = store_batch_new();
	struct sg_err err;
	bool any = false;

	sg_err_init(&err);
	pthread_mutex_lock(&a->admin);
	n = devs_snapshot(a, devs);
	for (size_t i = 0; i < n; i++) {
		struct audit_device *d = devs[i];
		char hx[65], *key, *text;

		dev_check_path(d);
		pthread_mutex_lock(&d->mu);
		seqs[i] = d->synced;
		if (d->synced == d->checkpointed || d->fd < 0) {
			pthread_mutex_unlock(&d->mu);
			seqs[i] = 0;
			continue;
		}
		hex_encode(d->synced_head, 32, hx);
		pthread_mutex_unlock(&d->mu);
		key = sg_xasprintf(AUDIT_HEAD_PREFIX "%s", d->path);
		text = sg_xasprintf("{\"seq\":%" PRIu64 ",\"hash\":\"%s\"}", seqs[i], hx);
		store_batch_put(b, STORE_META, key, strlen(key), text, strlen(text));
		free(key);
		free(text);
		any = true;
	}
	if (any && store_commit(a->st, b, &err) == 0) {
		for (size_t i = 0; i < n; i++) {
			if (seqs[i] == 0)
				continue;
			pthread_mutex_lock(&devs[i]->mu);
			devs[i]->checkpointed = seqs[i];
			pthread_mutex_unlock(&devs[i]->mu);
		}
	} else if (any) {
		server_log(SERVER_LOG_WARN, "cannot store the audit chain head", json_pack("{s:s}", "error", err.detail));
	}
	devs_release(devs, n);
	pthread_mutex_unlock(&a->admin);
	store_batch_free(b);
}

static void *checkpoint_main(void *arg)
{
	struct audit *a = arg;

	pthread_mutex_lock(&a->ck_mu);
	while (!a->stopping) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += AUDIT_CHECKPOINT_SECONDS;
		pthread_cond_timedwait(&a->ck_cv, &a->ck_mu, &ts);
		if (a->stopping)
			break;
		pthread_mutex_unlock(&a->ck_mu);
		checkpoint_all(a);
		pthread_mutex_lock(&a->ck_mu);
	}
	pthread_mutex_unlock(&a->ck_mu);
	return NULL;
}

void audit_checkpoint(struct audit *a)
{
	if (a != NULL)
		checkpoint_all(a);
}

/* ---- Broker ---- */

int audit_new(struct store *st, struct audit **out, struct sg_err *err)
{
	struct audit *a = sg_xcalloc(1, sizeof(*a));
	struct load_acc acc = {json_object(), json_object()};
	pthread_condattr_t ca;
	const char *path;
	json_t *rec;
	int rc = -1;

	*out = NULL;
	a->st = st;
	atomic_init(&a->n, 0);
	atomic_init(&a->lines, 0);
	atomic_init(&a->syncs, 0);
	pthread_rwlock_init(&a->lock, NULL);
	pthread_mutex_init(&a->admin, NULL);
	pthread_mutex_init(&a->ck_mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&a->ck_cv, &ca);
	pthread_condattr_destroy(&ca);
	a->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	a->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (a->sha256 == NULL || a->hmac == NULL) {
		sg_err_ossl(err, SG_CRYPTO, "SHA-256 or HMAC is unavailable");
		goto out;
	}
	if (store_scan(st, STORE_META, "audit", NULL, 0, load_cb, &acc, err) < 0)
		goto out;
	json_object_foreach(acc.recs, path, rec) {
		struct audit_device *d;
		struct sg_err oerr;

		if (atomic_load(&a->n) == AUDIT_MAX_DEVICES)
			break;
		d = dev_from_record(a, path, rec, json_object_get(acc.heads, path), err);
		if (d == NULL)
			goto out;
		sg_err_init(&oerr);
		/* A device that cannot open now is retried at each line; until then it cannot record anything. */
		if (dev_open(a, d, &oerr) != 0)
			server_log(SERVER_LOG_ERROR, "cannot open audit device; requests fail until it can be written",
			           json_pack("{s:s, s:s}", "device", d->path, "error", oerr.detail));
		a->dev[atomic_load(&a->n)] = d;
		atomic_fetch_add(&a->n, 1);
	}
	if (pthread_create(&a->ck_thread, NULL, checkpoint_main, a) != 0) {
		sg_err_set(err, SG_INTERNAL, "cannot start the audit checkpoint thread");
		goto out;
	}
	a->ck_started = true;
	*out = a;
	a = NULL;
	rc = 0;
out:
	json_decref(acc.recs);
	json_decref(acc.heads);
	audit_free(a);
	return rc;
}

void audit_free(struct audit *a)
{
	size_t n;

	if (a == NULL)
		return;
	if (a->ck_started) {
		pthread_mutex_lock(&a->ck_mu);
		a->stopping = true;
		pthread_cond_signal(&a->ck_cv);
		pthread_mutex_unlock(&a->ck_mu);
		pthread_join(a->ck_thread, NULL);
	}
	n = atomic_load(&a->n);
	for (size_t i = 0; i < n; i++) {
		struct audit_device *d = a->dev[i];
		struct sg_err err;

		sg_err_init(&err);
		pthread_mutex_lock(&d->mu);
		if (d->fd >= 0 && d->synced < d->seq) {
			uint64_t s = d->seq;

			pthread_mutex_unlock(&d->mu);
			if (dev_sync(a, d, s, &err) != 0)
				server_log(SERVER_LOG_ERROR, "audit device sync failed at shutdown",
				           json_pack("{s:s, s:s}", "device", d->path, "error", err.detail));
		} else {
			pthread_mutex_unlock(&d->mu);
		}
	}
	if (a->st != NULL && n > 0 && a->ck_started)
		checkpoint_all(a);
	for (size_t i = 0; i < n; i++)
		dev_unref(a->dev[i]);
	EVP_MD_free(a->sha256);
	EVP_MAC_free(a->hmac);
	pthread_cond_destroy(&a->ck_cv);
	pthread_mutex_destroy(&a->ck_mu);
	pthread_mutex_destroy(&a->admin);
	pthread_rwlock_destroy(&a->lock);
	free(a);
}

/* ---- Enable, disable, list, hash ---- */

static struct audit_device *dev_find_locked(struct audit *a, const char *path, size_t *idx)
{
	size_t n = atomic_load(&a->n);

	for (size_t i = 0; i < n; i++)
		if (strcmp(a->dev[i]->path, path) == 0) {
			if (idx != NULL)
				*idx = i;
			return a->dev[i];
		}
	return NULL;
}

/* Two devices on one file would interleave two chains: refused. */
static bool file_in_use_locked(struct audit *a, const char *file_path)
{
	struct stat st, other;
	bool have = stat(file_path, &st) == 0;
	size_t n = atomic_load(&a->n);

	for (size_t i = 0; i < n; i++) {
		const struct audit_device *d = a->dev[i];

		if (strcmp(d->file_path, file_path) == 0)
			return true;
		if (have && stat(d->file_path, &other) == 0 && other.st_dev == st.st_dev && other.st_ino == st.st_ino)
			return true;
	}
	return false;
}

/* Strips the trailing "/" Vault clients may send ("file/"). */
static void path_trim(const char *in, char *out, size_t cap)
{
	size_t n;

	snprintf(out, cap, "%s", in != NULL ? in : "");
	n = strlen(out);
	while (n > 0 && out[n - 1] == '/')
		out[--n] = '\0';
}

int audit_device_enable(struct audit *a, const char *path_in, const json_t *body, const struct audit_entry *first,
                        struct sg_err *err)
{
	char path[AUDIT_PATH_MAX + 2];
	const char *type = NULL, *desc = "";
	unsigned char salt[AUDIT_SALT_BYTES];
	struct audit_device *d = NULL;
	json_t *norm = NULL;
	bool local = false, locked = false;
	char *s = NULL;
	size_t len = 0;
	uint64_t seq = 0;
	int rc = -1;

	path_trim(path_in, path, sizeof(path));
	if (!dev_path_ok(path)) {
		sg_err_set(err, SG_BAD_REQUEST, "invalid audit device path: 1 to %d characters of letters, digits, '-', "
		                                "'_', '.' in '/'-separated segments",
		           AUDIT_PATH_MAX);
		goto out;
	}
	if (sg_json_str(body, "type", &type, err) < 0 || sg_json_str(body, "description", &desc, err) < 0 ||
	    sg_json_bool(body, "local", &local, err) < 0)
		goto out;
	if (type == NULL || *type == '\0') {
		sg_err_set(err, SG_BAD_REQUEST, "field 'type' is required (\"file\")");
		goto out;
	}
	if (strcmp(type, "file") != 0) {
		sg_err_set(err, SG_BAD_REQUEST, "audit device type \"%.64s\" is not supported: only \"file\"", type);
		goto out;
	}
	if (desc == NULL)
		desc = "";
	if (strlen(desc) > AUDIT_DESCRIPTION_MAX) {
		sg_err_set(err, SG_BAD_REQUEST, "description is longer than %d bytes", AUDIT_DESCRIPTION_MAX);
		goto out;
	}
	if (RAND_bytes(salt, sizeof(salt)) != 1)
		sg_die("RAND_bytes failed");
	d = dev_new(a, path, salt);
	OPENSSL_cleanse(salt, sizeof(salt));
	d->description = sg_xstrdup(desc);
	d->local = local;
	if (options_apply(d, json_object_get(body, "options"), &norm, err) != 0)
		goto out;
	d->options = norm;
	norm = NULL;

	pthread_mutex_lock(&a->admin);
	locked = true;
	pthread_rwlock_rdlock(&a->lock);
	if (dev_find_locked(a, path, NULL) != NULL)
		sg_err_set(err, SG_BAD_REQUEST, "path already in use");
	else if (atomic_load(&a->n) >= AUDIT_MAX_DEVICES)
		sg_err_set(err, SG_BAD_REQUEST, "too many audit devices (at most %d)", AUDIT_MAX_DEVICES);
	else if (file_in_use_locked(a, d->file_path))
		sg_err_set(err, SG_BAD_REQUEST, "file_path is already used by another audit device");
	pthread_rwlock_unlock(&a->lock);
	if (sg_err_isset(err))
		goto out;
	if (dev_open(a, d, err) != 0)
		goto out;
	/* Vault's test message: the device's first line is this request, and it must reach the disk. */
	s = entry_dump(a, d, first, false, &len);
	if (dev_append(a, d, s, len, &seq, err) != 0 || dev_sync(a, d, seq, err) != 0) {
		struct sg_err e2;

		sg_err_init(&e2);
		sg_err_set(&e2, SG_BAD_REQUEST, "audit device cannot write to \"%s\": %s", d->file_path,
		           d->last_errno != 0 ? strerror(d->last_errno) : err->detail);
		*err = e2;
		goto out;
	}
	if (record_store(a, d, type, err) != 0)
		goto out;
	pthread_rwlock_wrlock(&a->lock);
	a->dev[atomic_load(&a->n)] = d;
	atomic_fetch_add(&a->n, 1);
	pthread_rwlock_unlock(&a->lock);
	server_log(SERVER_LOG_INFO, "audit device enabled",
	           json_pack("{s:s, s:s, s:I}", "device", d->path, "file", d->file_path, "seq", (json_int_t)d->seq));
	d = NULL;
	rc = 0;
out:
	if (locked)
		pthread_mutex_unlock(&a->admin);
	free(s);
	json_decref(norm);
	dev_unref(d);
	return rc;
}

int audit_device_disable(struct audit *a, const char *path_in, struct sg_err *err)
{
	char path[AUDIT_PATH_MAX + 2];
	struct audit_device *d;
	struct store_batch *b = NULL;
	char *key = NULL, *hkey = NULL;
	size_t idx = 0, n;
	int rc = -1;

	path_trim(path_in, path, sizeof(path));
	pthread_mutex_lock(&a->admin);
	pthread_rwlock_rdlock(&a->lock);
	d = dev_find_locked(a, path, &idx);
	pthread_rwlock_unlock(&a->lock);
	if (d == NULL) {
		rc = 0;
		goto out;
	}
	key = sg_xasprintf(AUDIT_REC_PREFIX "%s", path);
	hkey = sg_xasprintf(AUDIT_HEAD_PREFIX "%s", path);
	b = store_batch_new();
	store_batch_del(b, STORE_META, key, strlen(key));
	store_batch_del(b, STORE_META, hkey, strlen(hkey));
	if (store_commit(a->st, b, err) != 0)
		goto out;
	pthread_rwlock_wrlock(&a->lock);
	n = atomic_load(&a->n);
	memmove(&a->dev[idx], &a->dev[idx + 1], (n - idx - 1) * sizeof(a->dev[0]));
	a->dev[n - 1] = NULL;
	atomic_fetch_sub(&a->n, 1);
	pthread_rwlock_unlock(&a->lock);
	server_log(SERVER_LOG_INFO, "audit device disabled",
	           json_pack("{s:s, s:s, s:I}", "device", d->path, "file", d->file_path, "seq", (json_int_t)d->seq));
	/* Lines in flight on other threads still hold references; the file closes with the last. */
	dev_unref(d);
	rc = 0;
out:
	pthread_mutex_unlock(&a->admin);
	store_batch_free(b);
	free(key);
	free(hkey);
	return rc;
}

json_t *audit_devices_json(struct audit *a)
{
	struct audit_device *devs[AUDIT_MAX_DEVICES];
	size_t n = devs_snapshot(a, devs);
	json_t *out = json_object();

	for (size_t i = 0; i < n; i++) {
		struct audit_device *d = devs[i];
		char key[AUDIT_PATH_MAX + 2];
		json_t *chain;

		snprintf(key, sizeof(key), "%s/", d->path);
		pthread_mutex_lock(&d->mu);
		chain = json_pack("{s:I, s:s+, s:I, s:I}", "seq", (json_int_t)d->seq, "hash", AUDIT_HASH_PREFIX,
		                  d->head_hex, "synced_seq", (json_int_t)d->synced, "fsyncs", (json_int_t)d->syncs);
		if (d->dead || d->failing || d->fd < 0)
			json_object_set_new(chain, "error",
			                    json_string(d->dead ? "sync failed: the device records nothing until re-enabled"
			                                        : d->last_errno != 0 ? strerror(d->last_errno)
			                                                             : "not open"));
		pthread_mutex_unlock(&d->mu);
		json_object_set_new(out, key,
		                    json_pack("{s:s, s:s, s:O, s:b, s:s, s:o}", "type", "file", "description",
		                              d->description, "options", d->options, "local", d->local, "path", key,
		                              "chain", chain));
	}
	devs_release(devs, n);
	return out;
}

int audit_hash(struct audit *a, const char *path_in, const char *input, size_t len, char out[AUDIT_HMAC_STR_LEN + 1],
               struct sg_err *err)
{
	char path[AUDIT_PATH_MAX + 2];
	struct audit_device *d;

	path_trim(path_in, path, sizeof(path));
	pthread_rwlock_rdlock(&a->lock);
	d = dev_find_locked(a, path, NULL);
	if (d != NULL)
		atomic_fetch_add(&d->refs, 1);
	pthread_rwlock_unlock(&a->lock);
	if (d == NULL)
		return sg_err_set(err, SG_BAD_REQUEST, "unknown audit backend %.*s", AUDIT_PATH_MAX, path);
	dev_hmac(d, input, len, out);
	dev_unref(d);
	return 0;
}

/* ---- Handlers ---- */

int h_audit_list(struct req *rq, struct resp *rs, struct sg_err *err)
{
	(void)err;
	resp_data(rs, audit_devices_json(rq->srv->audit));
	return 0;
}

/* The new device's first line is this request as the router recorded it on the others. */
int h_audit_enable(struct req *rq, struct resp *rs, struct sg_err *err)
{
	struct audit_entry first;

	(void)rs;
	memset(&first, 0, sizeof(first));
	first.request_id = rq->request_id;
	first.operation = "update";
	first.path = rq->path;
	first.remote_addr = rq->remote_addr;
	first.mount_type = "system";
	first.client_token = rq->client_token;
	first.tok = rq->tok;
	first.data = rq->body;
	first.query = rq->query;
	return audit_device_enable(rq->srv->audit, req_param(rq, "path"), rq->body, &first, err);
}

int h_audit_disable(struct req *rq, struct resp *rs, struct sg_err *err)
{
	(void)rs;
	return audit_device_disable(rq->srv->audit, req_param(rq, "path"), err);
}

int h_audit_hash(struct req *rq, struct resp *rs, struct sg_err *err)
{
	char out[AUDIT_HMAC_STR_LEN + 1];
	const json_t *in = json_object_get(rq->body, "input");

	if (in != NULL && !json_is_string(in))
		return sg_err_set(err, SG_BAD_REQUEST, "field 'input' must be a string");
	if (json_string_length(in) == 0)
		return sg_err_set(err, SG_BAD_REQUEST, "the \"input\" parameter is empty");
	if (audit_hash(rq->srv->audit, req_param(rq, "path"), json_string_value(in), json_string_length(in), out,
	               err) != 0)
		return -1;
	resp_data(rs, json_pack("{s:s}", "hash", out));
	return 0;
}

/* ---- Verification ---- */

struct line_reader {
	FILE *f;
	char *buf;                    /* current line */
	size_t len, cap;
	char chunk[AUDIT_VERIFY_CHUNK];
	size_t pos, end;
	bool eof;
};

/* Next line (without "\n") into r->buf. 1 line, 0 end of file, -1 too long or read error (*too_long says which). */
static int reader_next(struct line_reader *r, bool *has_nl, bool *too_long)
{
	r->len = 0;
	*has_nl = false;
	*too_long = false;
	for (;;) {
		char *nl;
		size_t take;

		if (r->pos == r->end) {
			if (r->eof)
				return r->len > 0 ? 1 : 0;
			r->end = fread(r->chunk, 1, sizeof(r->chunk), r->f);
			r->pos = 0;
			if (r->end == 0) {
				if (ferror(r->f))
					return -1;
				r->eof = true;
				continue;
			}
		}
		nl = memchr(r->chunk + r->pos, '\n', r->end - r->pos);
		take = nl != NULL ? (size_t)(nl - (r->chunk + r->pos)) : r->end - r->pos;
		if (r->len + take > AUDIT_MAX_LINE_BYTES + AUDIT_CHAIN_EXTRA) {
			*too_long = true;
			return -1;
		}
		if (r->len + take + 1 > r->cap) {
			r->cap = (r->len + take + 1) * 2;
			r->buf = sg_xrealloc(r->buf, r->cap);
		}
		memcpy(r->buf + r->len, r->chunk + r->pos, take);
		r->len += take;
		r->pos += take;
		if (nl != NULL) {
			r->pos++;
			*has_nl = true;
			return 1;
		}
	}
}

static void verify_fail(struct audit_verify_result *r, uint64_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void verify_fail(struct audit_verify_result *r, uint64_t line, const char *fmt, ...)
{
	va_list ap;

	r->ok = false;
	r->bad_line = line;
	va_start(ap, fmt);
	vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
	va_end(ap);
}

int audit_verify_stream(FILE *f, const struct audit_verify_opts *o, struct audit_verify_result *r,
                        struct sg_err *err)
{
	struct line_reader *rd = sg_xcalloc(1, sizeof(*rd));
	unsigned char prev[32] = {0}, hash[32], lprev[32];
	uint64_t lineno = 0, seq = 0, expect_seq = o != NULL ? o->expect_seq : 0;
	const char *expect_hash = o != NULL ? o->expect_hash : NULL;
	bool seen_expected = false;
	char why[200];
	int rc = -1;

	memset(r, 0, sizeof(*r));
	r->ok = true;
	memcpy(r->head, AUDIT_HASH_PREFIX, 7);
	hex_encode(prev, 32, r->head + 7);
	if (expect_hash != NULL && (strlen(expect_hash) != AUDIT_HASH_STR_LEN ||
	                            strncmp(expect_hash, AUDIT_HASH_PREFIX, 7) != 0 || !hex64_ok(expect_hash + 7))) {
		sg_err_set(err, SG_BAD_REQUEST, "expected hash must be sha256:<64 lower-case hex digits>");
		goto out;
	}
	if (expect_hash != NULL && expect_seq == 0) {
		sg_err_set(err, SG_BAD_REQUEST, "an expected hash needs the expected seq it belongs to");
		goto out;
	}
	rd->f = f;
	for (;;) {
		bool has_nl, too_long;
		int got = reader_next(rd, &has_nl, &too_long);
		uint64_t want;

		if (got == 0)
			break;
		lineno++;
		if (got < 0 && too_long) {
			verify_fail(r, lineno, "line %" PRIu64 ": longer than %u bytes: not an audit record", lineno,
			            AUDIT_MAX_LINE_BYTES + AUDIT_CHAIN_EXTRA);
			break;
		}
		if (got < 0) {
			sg_err_set(err, SG_BAD_REQUEST, "read error at line %" PRIu64 ": %s", lineno, strerror(errno));
			goto out;
		}
		if (!has_nl) {
			verify_fail(r, lineno, "line %" PRIu64 ": incomplete (no newline): the file was cut or a write was "
			                       "interrupted",
			            lineno);
			break;
		}
		if (line_check(EVP_sha256(), rd->buf, rd->len, &seq, hash, lprev, why, sizeof(why)) != 0) {
			verify_fail(r, lineno, "line %" PRIu64 ": %s", lineno, why);
			break;
		}
		if (lineno == 1 && o != NULL && o->continues) {
			/* A rotated file: its first line says where the chain stood; the previous file must end there. */
			r->first_seq = seq;
			memcpy(prev, lprev, 32);
			hex_encode(lprev, 32, r->first_prev + 7);
			memcpy(r->first_prev, AUDIT_HASH_PREFIX, 7);
		}
		want = lineno == 1 ? (r->first_seq != 0 ? r->first_seq : 1) : r->last_seq + 1;
		if (seq != want) {
			if (lineno == 1)
				verify_fail(r, lineno, "line 1: the chain starts at seq %" PRIu64 ", not 1: earlier lines are missing",
				            seq);
			else if (seq > want)
				verify_fail(r, lineno, "line %" PRIu64 ": seq %" PRIu64 " where %" PRIu64 " was expected: %" PRIu64
				                       " line(s) before it were deleted, or lines were reordered",
				            lineno, seq, want, seq - want);
			else
				verify_fail(r, lineno, "line %" PRIu64 ": seq %" PRIu64 " where %" PRIu64 " was expected: the line "
				                       "was inserted, duplicated or moved",
				            lineno, seq, want);
			break;
		}
		if (CRYPTO_memcmp(lprev, prev, 32) != 0) {
			if (lineno == 1)
				verify_fail(r, lineno, "line 1: prev_hash is not the start of a chain");
			else
				verify_fail(r, lineno, "line %" PRIu64 ": prev_hash does not match line %" PRIu64 ": that line was "
				                       "replaced, or lines were inserted or removed between them",
				            lineno, lineno - 1);
			break;
		}
		if (expect_seq != 0 && seq == expect_seq && !seen_expected) {
			char hx[65];

			seen_expected = true;
			hex_encode(hash, 32, hx);
			if (expect_hash != NULL && strcmp(expect_hash + 7, hx) != 0) {
				verify_fail(r, lineno, "line %" PRIu64 ": seq %" PRIu64 " has hash sha256:%s, not the recorded %s: the "
				                       "file was rewritten",
				            lineno, seq, hx, expect_hash);
				break;
			}
		}
		memcpy(prev, hash, 32);
		r->last_seq = seq;
		r->lines = lineno;
		hex_encode(hash, 32, r->head + 7);
	}
	if (r->ok && expect_seq != 0 && !seen_expected) {
		if (expect_seq > r->last_seq)
			verify_fail(r, lineno + 1, "line %" PRIu64 ": missing: the file ends at seq %" PRIu64 " but the "
			                           "server recorded seq %" PRIu64 " (the last %" PRIu64 " line(s) were removed)",
			            lineno + 1, r->last_seq, expect_seq, expect_seq - r->last_seq);
		else
			verify_fail(r, 1, "line 1: the file starts at seq %" PRIu64 ", after the expected seq %" PRIu64
			                  ": check the file before it",
			            r->first_seq, expect_seq);
	}
	rc = 0;
out:
	free(rd->buf);
	free(rd);
	return rc;
}

int audit_verify_file(const char *path, const struct audit_verify_opts *o, struct audit_verify_result *r,
                      struct sg_err *err)
{
	FILE *f = fopen(path, "rb");
	int rc;

	if (f == NULL)
		return sg_err_set(err, SG_BAD_REQUEST, "cannot open %s: %s", path, strerror(errno));
	rc = audit_verify_stream(f, o, r, err);
	fclose(f);
	return rc;
}

static void cli_usage(FILE *f)
{
	fprintf(f, "usage: sigil audit verify [-expect-seq N] [-expect-hash sha256:HEX] [-continues] FILE\n"
	           "  Checks the hash chain of an audit log file and names the first broken line.\n"
	           "  -expect-seq N    the chain must reach seq N (GET sys/audit reports a device's chain.seq)\n"
	           "  -expect-hash H   the line with seq N must have hash H (chain.hash): proves the file\n"
	           "                   up to N is the one the server wrote\n"
	           "  -continues       the file continues a rotated one: it may start after seq 1 (the seq and\n"
	           "                   prev_hash it starts from are printed: the previous file must end there)\n"
	           "  exit status: 0 intact, 1 broken, 2 usage or read error\n");
}

int audit_cli_main(int argc, char **argv)
{
	const char *seq_s = NULL, *hash_s = NULL;
	bool help = false, continues = false;
	const struct server_flag flags[] = {
		{"expect-seq", false, &seq_s, NULL},
		{"expect-hash", false, &hash_s, NULL},
		{"continues", true, NULL, &continues},
		{"h", true, NULL, &help},
		{"help", true, NULL, &help},
	};
	struct audit_verify_opts o = {0, NULL, false};
	struct audit_verify_result r;
	struct sg_err err;
	int next = 0;

	sg_err_init(&err);
	if (argc < 2 || strcmp(argv[1], "verify") != 0) {
		cli_usage(argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) ? stdout : stderr);
		return 2;
	}
	if (server_flags_parse(argc - 2, argv + 2, flags, sizeof(flags) / sizeof(flags[0]), &next, &err) != 0) {
		fprintf(stderr, "sigil audit verify: %s\n", err.detail);
		cli_usage(stderr);
		return 2;
	}
	if (help) {
		cli_usage(stdout);
		return 0;
	}
	if (next != argc - 3) {
		cli_usage(stderr);
		return 2;
	}
	if (seq_s != NULL) {
		char *end;
		unsigned long long v;

		errno = 0;
		v = strtoull(seq_s, &end, 10);
		if (errno != 0 || end == seq_s || *end != '\0' || v == 0 || seq_s[0] == '-') {
			fprintf(stderr, "sigil audit verify: -expect-seq must be a positive integer\n");
			return 2;
		}
		o.expect_seq = v;
	}
	o.expect_hash = hash_s;
	o.continues = continues;
	if (audit_verify_file(argv[2 + next], &o, &r, &err) != 0) {
		fprintf(stderr, "sigil audit verify: %s\n", err.detail);
		return 2;
	}
	if (!r.ok) {
		printf("BROKEN %s\n", r.reason);
		return 1;
	}
	if (r.first_seq > 1)
		printf("OK %" PRIu64 " lines, seq %" PRIu64 "..%" PRIu64 " continuing from %s, head %s\n", r.lines,
		       r.first_seq, r.last_seq, r.first_prev, r.head);
	else
		printf("OK %" PRIu64 " lines, seq 1..%" PRIu64 ", head %s\n", r.lines, r.last_seq, r.head);
	return 0;
}
