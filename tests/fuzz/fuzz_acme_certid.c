/*
 * libFuzzer target for the RFC 9773 certID parser (acme_certid_parse):
 * any input either fails with SG_ACME_MALFORMED or yields a key identifier
 * within ACME_AKI_MAX and a colon-hex serial of at most ACME_SERIAL_MAX
 * octets. Seeds: tests/fuzz/corpus/acme_certid/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acme/acme.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	unsigned char *aki = NULL;
	size_t n = 0;
	char *serial = NULL;
	struct sg_err err;

	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	sg_err_init(&err);
	if (acme_certid_parse(s, &aki, &n, &serial, &err) == 0) {
		/* "xx:" per octet, the last without ':'. */
		if (aki == NULL || n == 0 || n > ACME_AKI_MAX || serial == NULL || strlen(serial) > 3 * ACME_SERIAL_MAX)
			abort();
	} else if (err.code != SG_ACME_MALFORMED || aki != NULL || serial != NULL) {
		abort();
	}
	free(aki);
	free(serial);
	free(s);
	return 0;
}
