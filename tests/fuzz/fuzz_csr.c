/*
 * libFuzzer target for the CSR parser: ca_csr_parse (PEM/DER, signature)
 * and ca_csr_names (subject and SANs). Seed corpus: tests/fuzz/corpus/csr/.
 *   clang -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -I. -DOPENSSL_API_COMPAT=30000 \
 *     -DOPENSSL_NO_DEPRECATED $(pkg-config --cflags jansson openssl) \
 *     tests/fuzz/fuzz_csr.c ca/csr.c ca/pem.c common/err.c common/util.c \
 *     $(pkg-config --libs jansson openssl) -o fuzz_csr
 */
#include <openssl/err.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca.h"
#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* role_names_clear lives in roles/; the target links only ca/csr.c and ca/pem.c. */
static void names_free(struct role_names *n)
{
	free((char *)n->common_name);
	free((char *)n->subject_serial);
	sg_strlist_clear(&n->dns);
	sg_strlist_clear(&n->emails);
	sg_strlist_clear(&n->ips);
	sg_strlist_clear(&n->uris);
	sg_strlist_clear(&n->other_sans);
	sg_strlist_clear(&n->user_ids);
}

static void names_check(X509_REQ *req)
{
	struct sg_err err;
	struct role_names names;

	sg_err_init(&err);
	memset(&names, 0xa5, sizeof(names));
	if (ca_csr_names(req, &names, &err) == 0) {
		for (size_t i = 0; i < names.dns.n; i++)
			if (strlen(names.dns.v[i]) == 0)
				abort();
		names_free(&names);
	} else if (err.code != SG_BAD_CSR || err.detail[0] == '\0' || names.common_name != NULL ||
	           names.dns.n != 0) {
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sg_err err;
	const unsigned char *p = data;
	X509_REQ *req;

	sg_err_init(&err);
	req = ca_csr_parse(data, size, &err);
	if (req == NULL) {
		/* Every failure is a client error with a detail, never a crash or a 500. */
		if ((err.code != SG_BAD_CSR && err.code != SG_BAD_SIGNATURE) || err.detail[0] == '\0')
			abort();
	} else {
		names_check(req);
		X509_REQ_free(req);
	}
	/*
	 * Mutated requests almost never keep a valid signature, so the names
	 * code would rarely run: feed it unverified DER directly as well.
	 */
	req = d2i_X509_REQ(NULL, &p, (long)size);
	if (req != NULL) {
		names_check(req);
		X509_REQ_free(req);
	}
	ERR_clear_error();
	return 0;
}
