/*
 * libFuzzer target for the server config parser (server_config_parse) and
 * the listen address parser. Seed corpus: tests/fuzz/corpus/config/.
 *   clang -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -I. -DOPENSSL_API_COMPAT=30000 \
 *     -DOPENSSL_NO_DEPRECATED $(pkg-config --cflags jansson openssl) \
 *     tests/fuzz/fuzz_config.c server/config.c server/json.c server/log.c common/err.c common/util.c \
 *     $(pkg-config --libs jansson openssl) -lpthread -o fuzz_config
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct server_config c;
	struct sg_err err;

	server_config_init(&c);
	sg_err_init(&err);
	if (server_config_parse((const char *)data, size, &c, &err) == 0) {
		struct sockaddr_storage ss;
		socklen_t sl;

		/* A parsed config holds a valid listen address and bounded numbers. */
		if (sg_err_isset(&err) || server_config_listen_parse(c.listen_address, &ss, &sl, &err) != 0)
			abort();
		if (c.threads < 1 || c.threads > CONFIG_THREADS_MAX || c.max_request_size < CONFIG_REQUEST_SIZE_MIN ||
		    c.max_request_size > CONFIG_REQUEST_SIZE_MAX)
			abort();
	} else if (!sg_err_isset(&err) || strncmp(err.detail, "config: ", 8) != 0) {
		abort();
	}
	server_config_clear(&c);

	/* The same bytes as a listen address. */
	if (size < 128) {
		char addr[128];
		struct sockaddr_storage ss;
		socklen_t sl;

		memcpy(addr, data, size);
		addr[size] = '\0';
		sg_err_init(&err);
		if (server_config_listen_parse(addr, &ss, &sl, &err) == 0 && ss.ss_family != AF_INET &&
		    ss.ss_family != AF_INET6)
			abort();
	}
	return 0;
}
