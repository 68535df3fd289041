/*
 * libFuzzer target for lease ids and prefixes (lease_path_valid): the
 * only lease input that comes straight from a URL or a request body
 * (sys/leases/lookup, revoke, revoke-prefix, LIST). Whatever it accepts
 * must be a canonical path: 1..LEASE_ID_MAX printable ASCII characters,
 * no empty, "." or ".." segment, no leading or trailing '/', so that two
 * spellings never name one lease or one prefix.
 * Seed corpus: tests/fuzz/corpus/lease/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lease/lease.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_canonical(const char *s)
{
	size_t n = strlen(s), seg = 0;

	if (n == 0 || n > LEASE_ID_MAX || s[0] == '/' || s[n - 1] == '/')
		abort();
	for (size_t i = 0; i <= n; i++) {
		if (s[i] == '/' || s[i] == '\0') {
			if (seg == 0 || (seg == 1 && s[i - 1] == '.') || (seg == 2 && s[i - 1] == '.' && s[i - 2] == '.'))
				abort();
			seg = 0;
		} else if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f) {
			abort();
		} else {
			seg++;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	/* An embedded NUL ends the string, as it would in a C caller. */
	if (lease_path_valid(s))
		check_canonical(s);
	free(s);
	return 0;
}
