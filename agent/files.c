/* agent/files.c: atomic file writes, secret files, certificate dates, renewal and retry timing. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "agent/agent.h"

int agent_file_write(const char *path, const void *buf, size_t len, int mode, uid_t uid, gid_t gid,
                     struct sg_err *err)
{
	char *dircopy = sg_xstrdup(path);
	char *dir = dirname(dircopy);
	char *tmp = NULL;
	int fd = -1, dfd = -1, rc = -1;
	size_t off = 0;

	/* Same directory as the target: rename(2) is atomic only within one file system. */
	tmp = sg_xasprintf("%s/.%s.agent-XXXXXX", dir, strrchr(path, '/') ? strrchr(path, '/') + 1 : path);
	fd = mkstemp(tmp);
	if (fd < 0) {
		sg_err_set(err, SG_INTERNAL, "cannot create a temporary file next to %s: %s", path, strerror(errno));
		free(tmp);
		tmp = NULL;
		goto out;
	}
	/* Mode and owner before any byte: a key is never readable by others, even briefly. */
	if (fchmod(fd, (mode_t)mode) != 0)
		goto io;
	if ((uid != (uid_t)-1 || gid != (gid_t)-1) && fchown(fd, uid, gid) != 0)
		goto io;
	while (off < len) {
		ssize_t w = write(fd, (const char *)buf + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto io;
		off += (size_t)w;
	}
	if (fsync(fd) != 0)
		goto io;
	if (close(fd) != 0) {
		fd = -1;
		goto io;
	}
	fd = -1;
	if (rename(tmp, path) != 0)
		goto io;
	free(tmp);
	tmp = NULL;
	/* The rename itself is durable only once the directory is synced. */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0)
		(void)fsync(dfd);
	rc = 0;
	goto out;
io:
	sg_err_set(err, SG_INTERNAL, "cannot write %s: %s", path, strerror(errno));
out:
	if (fd >= 0)
		close(fd);
	if (tmp != NULL) {
		unlink(tmp);
		free(tmp);
	}
	if (dfd >= 0)
		close(dfd);
	free(dircopy);
	return rc;
}

char *agent_secret_read(const char *path, struct sg_err *err)
{
	unsigned char *buf = NULL;
	size_t len = 0, b = 0;
	char *s = NULL;

	if (sg_file_read(path, AGENT_MAX_SECRET_BYTES, &buf, &len, err) != 0)
		return NULL;
	while (b < len && isspace(buf[b]))
		b++;
	while (len > b && isspace(buf[len - 1]))
		len--;
	if (len == b) {
		sg_err_set(err, SG_BAD_REQUEST, "%s is empty", path);
		goto out;
	}
	s = sg_xstrndup((const char *)buf + b, len - b);
out:
	OPENSSL_cleanse(buf, len);
	free(buf);
	return s;
}

static int asn1_time_unix(const ASN1_TIME *t, int64_t *out)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(t, &tm) != 1)
		return -1;
	*out = (int64_t)timegm(&tm);
	return 0;
}

int agent_cert_info(const char *pem, size_t len, int64_t *not_before, int64_t *not_after, char **serial,
                    struct sg_err *err)
{
	BIO *bio = NULL;
	X509 *x = NULL;
	unsigned char *der = NULL;
	BIGNUM *bn = NULL;
	int rc = -1, n;

	if (len > AGENT_MAX_PEM_BYTES || len > INT32_MAX) {
		sg_err_set(err, SG_TOO_LARGE, "certificate larger than %u bytes", AGENT_MAX_PEM_BYTES);
		goto out;
	}
	bio = BIO_new_mem_buf(pem, (int)len);
	if (bio == NULL)
		sg_die("out of memory");
	x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	if (x == NULL) {
		sg_err_ossl(err, SG_BAD_PEM, "no certificate in the PEM text");
		goto out;
	}
	if (asn1_time_unix(X509_get0_notBefore(x), not_before) != 0 ||
	    asn1_time_unix(X509_get0_notAfter(x), not_after) != 0) {
		sg_err_ossl(err, SG_BAD_PEM, "certificate validity dates unreadable");
		goto out;
	}
	if (serial != NULL) {
		bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
		if (bn == NULL || (n = BN_num_bytes(bn)) <= 0) {
			sg_err_ossl(err, SG_BAD_PEM, "certificate serial unreadable");
			goto out;
		}
		der = sg_xmalloc((size_t)n);
		BN_bn2bin(bn, der);
		*serial = sg_hex_colon(der, (size_t)n);
	}
	rc = 0;
out:
	free(der);
	BN_free(bn);
	X509_free(x);
	BIO_free(bio);
	return rc;
}

int64_t agent_renew_time(int64_t not_before, int64_t not_after, double fraction, double jitter, double u)
{
	double life = (double)(not_after - not_before);
	double at;

	if (life <= 0)
		return not_before;
	if (u < 0)
		u = 0;
	if (u >= 1)
		u = 0.999999;
	at = (double)not_before + life * fraction - life * jitter * u;
	if (at < (double)not_before)
		at = (double)not_before;
	return (int64_t)at; /* at >= not_before: truncation is the floor for the times that occur */
}

int64_t agent_backoff(unsigned attempt, int64_t min, int64_t max, double u)
{
	double d = (double)(min < 1 ? 1 : min);
	unsigned i;

	for (i = 0; i < attempt && d < (double)max; i++)
		d *= 2;
	if (d > (double)max)
		d = (double)max;
	if (u < 0)
		u = 0;
	if (u > 1)
		u = 1;
	d *= 0.5 + 0.5 * u;
	return d < 1 ? 1 : (int64_t)d;
}
