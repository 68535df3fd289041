/*
 * libFuzzer target for the DNS answer reader of acme/dns.c (the bytes a
 * validation resolver sends back). The first byte picks the record type
 * (TXT, A, AAAA, CAA) and the name asked, the rest is the DNS message:
 * acme_dns_answer_parse decodes it, walks CNAMEs inside it and extracts
 * the values; a CAA answer is also run through the RFC 8659 decision.
 * Seeds: tests/fuzz/corpus/acme_dns/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acme/acme.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int types[] = {16, 1, 28, 257};
	static const char *const names[] = {"_acme-challenge.example.com", "example.com", "a.example.com", "x"};
	struct sg_strlist values = {0}, ids = {0};
	struct sg_err err;
	int type, r;

	if (size < 1)
		return 0;
	type = types[data[0] & 3];
	sg_err_init(&err);
	r = acme_dns_answer_parse(data + 1, size - 1, names[(data[0] >> 2) & 3], type, &values, &err);
	if (r == 1 && type == 257) {
		/* The set the decision sees, rebuilt from the text values "flags tag value". */
		struct acme_caa_set set = {0};

		set.rr = calloc(values.n, sizeof(*set.rr));
		set.owner = strdup("example.com");
		for (size_t i = 0; i < values.n && set.rr != NULL; i++) {
			char *sp1 = strchr(values.v[i], ' '), *sp2 = sp1 != NULL ? strchr(sp1 + 1, ' ') : NULL;

			if (sp2 == NULL)
				continue;
			set.rr[set.n].flags = (unsigned)strtoul(values.v[i], NULL, 10);
			set.rr[set.n].tag = strndup(sp1 + 1, (size_t)(sp2 - sp1 - 1));
			set.rr[set.n].value = strdup(sp2 + 1);
			set.n++;
		}
		sg_strlist_add(&ids, "ca.example");
		sg_err_init(&err);
		(void)!acme_caa_check(&set, &ids, "example.com", (data[0] & 0x80) != 0, &err);
		acme_caa_set_clear(&set);
	}
	sg_strlist_clear(&values);
	sg_strlist_clear(&ids);
	return 0;
}
