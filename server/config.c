#include "server/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/http.h"
#include "server/json.h"

#define JSON_PREFIX "failed to parse JSON input: "

void server_config_init(struct server_config *c)
{
	memset(c, 0, sizeof(*c));
	c->listen_address = sg_xstrdup(CONFIG_LISTEN_DEFAULT);
	c->log_level = SERVER_LOG_INFO;
	c->max_request_size = MAX_BODY_BYTES_DEFAULT;
	c->threads = CONFIG_THREADS_DEFAULT;
}

void server_config_clear(struct server_config *c)
{
	if (c == NULL)
		return;
	free(c->listen_address);
	free(c->tls_cert_file);
	free(c->tls_key_file);
	free(c->data_dir);
	free(c->kek_file);
	free(c->external_url);
	memset(c, 0, sizeof(*c));
}

static int get_string(const char *key, const json_t *v, char **dst, struct sg_err *err)
{
	size_t n;

	if (!json_is_string(v))
		return sg_err_set(err, SG_BAD_REQUEST, "config: '%s' must be a string", key);
	n = json_string_length(v);
	if (n == 0 || n > CONFIG_MAX_STRING || strlen(json_string_value(v)) != n)
		return sg_err_set(err, SG_BAD_REQUEST, "config: '%s' must be a non-empty string of at most %u bytes",
		                  key, CONFIG_MAX_STRING);
	free(*dst);
	*dst = sg_xstrdup(json_string_value(v));
	return 0;
}

static int get_uint(const char *key, const json_t *v, int64_t min, int64_t max, int64_t *out, struct sg_err *err)
{
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		return sg_err_set(err, SG_BAD_REQUEST, "config: '%s' must be an integer from %lld to %lld", key,
		                  (long long)min, (long long)max);
	*out = json_integer_value(v);
	return 0;
}

static int set_key(struct server_config *c, const char *key, const json_t *v, struct sg_err *err)
{
	int64_t n;

	if (strcmp(key, "listen_address") == 0) {
		struct sockaddr_storage ss;
		socklen_t sl;

		struct sg_err lerr;

		if (get_string(key, v, &c->listen_address, err) != 0)
			return -1;
		sg_err_init(&lerr);
		if (server_config_listen_parse(c->listen_address, &ss, &sl, &lerr) != 0)
			return sg_err_set(err, SG_BAD_REQUEST, "config: %s", lerr.detail);
		return 0;
	}
	if (strcmp(key, "tls_cert_file") == 0)
		return get_string(key, v, &c->tls_cert_file, err);
	if (strcmp(key, "tls_key_file") == 0)
		return get_string(key, v, &c->tls_key_file, err);
	if (strcmp(key, "tls_disable") == 0) {
		if (!json_is_boolean(v))
			return sg_err_set(err, SG_BAD_REQUEST, "config: 'tls_disable' must be true or false");
		c->tls_disable = json_is_true(v);
		return 0;
	}
	if (strcmp(key, "data_dir") == 0)
		return get_string(key, v, &c->data_dir, err);
	if (strcmp(key, "kek_file") == 0)
		return get_string(key, v, &c->kek_file, err);
	if (strcmp(key, "external_url") == 0) {
		if (get_string(key, v, &c->external_url, err) != 0)
			return -1;
		if (strncmp(c->external_url, "https://", 8) != 0 && strncmp(c->external_url, "http://", 7) != 0)
			return sg_err_set(err, SG_BAD_REQUEST, "config: 'external_url' must start with https:// or http://");
		return 0;
	}
	if (strcmp(key, "log_level") == 0) {
		if (!json_is_string(v) || server_log_level_parse(json_string_value(v), &c->log_level) != 0)
			return sg_err_set(err, SG_BAD_REQUEST, "config: 'log_level' must be debug, info, warn or error");
		return 0;
	}
	if (strcmp(key, "max_request_size") == 0) {
		if (get_uint(key, v, CONFIG_REQUEST_SIZE_MIN, CONFIG_REQUEST_SIZE_MAX, &n, err) != 0)
			return -1;
		c->max_request_size = (size_t)n;
		return 0;
	}
	if (strcmp(key, "threads") == 0) {
		if (get_uint(key, v, 1, CONFIG_THREADS_MAX, &n, err) != 0)
			return -1;
		c->threads = (unsigned)n;
		return 0;
	}
	return sg_err_set(err, SG_BAD_REQUEST, "config: unknown key '%.64s'", key);
}

int server_config_parse(const char *buf, size_t len, struct server_config *c, struct sg_err *err)
{
	struct sg_err perr;
	json_t *doc = NULL;
	const char *key;
	json_t *v;
	int rc = -1;

	if (len > MAX_CONFIG_BYTES) {
		sg_err_set(err, SG_TOO_LARGE, "config: larger than %u bytes", MAX_CONFIG_BYTES);
		goto out;
	}
	sg_err_init(&perr);
	if (server_json_parse_object(buf, len, CONFIG_MAX_DEPTH, &doc, &perr) != 0) {
		/* Keep jansson's position, but say it is the config. */
		const char *d = perr.detail;

		if (strncmp(d, JSON_PREFIX, strlen(JSON_PREFIX)) == 0)
			d += strlen(JSON_PREFIX);
		sg_err_set(err, SG_BAD_REQUEST, "config: %s", d);
		goto out;
	}
	json_object_foreach(doc, key, v) {
		if (set_key(c, key, v, err) != 0)
			goto out;
	}
	rc = 0;
out:
	json_decref(doc);
	return rc;
}

int server_config_load(const char *path, struct server_config *c, struct sg_err *err)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	int rc = -1;

	if (sg_file_read(path, MAX_CONFIG_BYTES, &buf, &len, err) != 0)
		goto out;
	rc = server_config_parse((const char *)buf, len, c, err);
out:
	free(buf);
	return rc;
}

int server_config_listen_parse(const char *s, struct sockaddr_storage *ss, socklen_t *sslen, struct sg_err *err)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *colon, *port_s, *h = s;
	size_t hlen;
	char *end;
	long port;

	memset(ss, 0, sizeof(*ss));
	if (s == NULL || *s == '\0')
		return sg_err_set(err, SG_BAD_REQUEST, "listen address is empty");
	if (*s == '[') {
		const char *rb = strchr(s, ']');

		if (rb == NULL || rb[1] != ':')
			return sg_err_set(err, SG_BAD_REQUEST, "listen address '%.64s' must be [ipv6]:port", s);
		h = s + 1;
		hlen = (size_t)(rb - h);
		port_s = rb + 2;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			return sg_err_set(err, SG_BAD_REQUEST, "listen address '%.64s' must be ip:port", s);
		hlen = (size_t)(colon - s);
		port_s = colon + 1;
	}
	if (hlen == 0 || hlen >= sizeof(host))
		return sg_err_set(err, SG_BAD_REQUEST, "listen address '%.64s' needs an IP address", s);
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	errno = 0;
	port = strtol(port_s, &end, 10);
	if (*port_s < '0' || *port_s > '9' || *end != '\0' || errno != 0 || port < 1 || port > 65535)
		return sg_err_set(err, SG_BAD_REQUEST, "listen address '%.64s' has a bad port", s);
	if (*s != '[') {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
			return sg_err_set(err, SG_BAD_REQUEST,
			                  "listen address '%.64s': '%s' is not an IPv4 literal (IPv6 goes in brackets)", s,
			                  host);
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		*sslen = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
			return sg_err_set(err, SG_BAD_REQUEST, "listen address '%.64s': '%s' is not an IPv6 literal", s,
			                  host);
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		*sslen = sizeof(*a);
	}
	return 0;
}

static int hexnib(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int server_config_kek_load(const char *path, unsigned char kek[CA_KEK_BYTES], struct sg_err *err)
{
	unsigned char buf[MAX_KEK_FILE_BYTES + 1];
	struct stat st;
	size_t n = 0;
	int fd = -1, rc = -1;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		sg_err_set(err, SG_BAD_REQUEST, "kek_file %s: %s", path, strerror(errno));
		goto out;
	}
	/* fstat on the open descriptor: the file checked is the file read. */
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		sg_err_set(err, SG_BAD_REQUEST, "kek_file %s is not a regular file", path);
		goto out;
	}
	if ((st.st_mode & 0177) != 0) {
		sg_err_set(err, SG_BAD_REQUEST,
		           "kek_file %s has mode %04o: it must be 0600 or stricter (chmod 600 %s); refusing to start",
		           path, (unsigned)(st.st_mode & 07777), path);
		goto out;
	}
	while (n < sizeof(buf)) {
		ssize_t r = read(fd, buf + n, sizeof(buf) - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			sg_err_set(err, SG_BAD_REQUEST, "kek_file %s: %s", path, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n == CA_KEK_BYTES) {
		memcpy(kek, buf, CA_KEK_BYTES);
		rc = 0;
		goto out;
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		n--;
	if (n == 2 * CA_KEK_BYTES) {
		size_t i;

		for (i = 0; i < CA_KEK_BYTES; i++) {
			int hi = hexnib(buf[2 * i]), lo = hexnib(buf[2 * i + 1]);

			if (hi < 0 || lo < 0)
				break;
			kek[i] = (unsigned char)(hi << 4 | lo);
		}
		if (i == CA_KEK_BYTES) {
			rc = 0;
			goto out;
		}
		OPENSSL_cleanse(kek, CA_KEK_BYTES);
	}
	sg_err_set(err, SG_BAD_REQUEST, "kek_file %s must hold 32 raw bytes or 64 hex characters", path);
out:
	OPENSSL_cleanse(buf, sizeof(buf));
	if (fd >= 0)
		close(fd);
	return rc;
}
