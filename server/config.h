#ifndef SG_SERVER_CONFIG_H
#define SG_SERVER_CONFIG_H

/*
 * The server's JSON config file. Strict: an unknown key or a value of the
 * wrong type is an error naming the key (a typo must not silently turn TLS
 * off). Parsing is pure and fuzzed (tests/fuzz/fuzz_config.c); file checks
 * (TLS files, KEK permissions) come after.
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "ca/ca.h"
#include "common/err.h"
#include "server/log.h"

#define MAX_CONFIG_BYTES (64u << 10)
#define CONFIG_MAX_DEPTH 8
#define CONFIG_MAX_STRING 4096          /* one path or URL */
#define CONFIG_THREADS_DEFAULT 64
#define CONFIG_THREADS_MAX 1024
#define CONFIG_REQUEST_SIZE_MIN 1024u
#define CONFIG_REQUEST_SIZE_MAX (256u << 20)
#define CONFIG_LISTEN_DEFAULT "127.0.0.1:8200"
#define MAX_KEK_FILE_BYTES 256

struct server_config {
	char *listen_address;       /* "127.0.0.1:8200", "[::1]:8200" */
	char *tls_cert_file, *tls_key_file;
	bool tls_disable;
	char *data_dir;
	char *kek_file;
	char *external_url;         /* NULL when unset */
	enum server_log_level log_level;
	size_t max_request_size;    /* bytes */
	unsigned threads;           /* request workers (handlers may wait for fsync); I/O threads = cores */
};

/* Defaults: listen 127.0.0.1:8200, info, MAX_BODY_BYTES_DEFAULT, 64 threads. */
void server_config_init(struct server_config *c);
void server_config_clear(struct server_config *c);

/* Parses a config document over the defaults already in c. SG_BAD_REQUEST naming the key. */
int server_config_parse(const char *buf, size_t len, struct server_config *c, struct sg_err *err) SG_WUR;
/* Reads (at most MAX_CONFIG_BYTES) and parses a config file. */
int server_config_load(const char *path, struct server_config *c, struct sg_err *err) SG_WUR;

/*
 * "ip:port" or "[ipv6]:port" (IP literals only) into a socket address.
 * "0.0.0.0:8200" and "[::]:8200" bind every address.
 */
int server_config_listen_parse(const char *s, struct sockaddr_storage *ss, socklen_t *sslen,
                               struct sg_err *err) SG_WUR;

/*
 * Reads the key-encryption key: 32 raw bytes or 64 hex characters (a
 * trailing newline is allowed). The file must be a regular file with mode
 * 0600 or stricter; anything else is refused with a message naming the
 * mode. The caller wipes kek.
 */
int server_config_kek_load(const char *path, unsigned char kek[CA_KEK_BYTES], struct sg_err *err) SG_WUR;

#endif
