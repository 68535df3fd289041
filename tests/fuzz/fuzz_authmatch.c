/*
 * libFuzzer target for the auth methods' small parsers of untrusted input:
 * addresses and CIDR blocks (token_bound_cidrs, secret_id_bound_cidrs, the
 * caller's address), cert-role globs, token_* role fields and AppRole
 * secret-id bodies (metadata as JSON text).
 * Input: byte 0 picks the parser, the rest is "a\nb" (two strings) or a JSON body.
 * Seed corpus: tests/fuzz/corpus/authmatch/.  Built by `make fuzz`.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/approle.h"
#include "auth/cert.h"
#include "auth/tokenfields.h"

#define FUZZ_MAX_INPUT 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Comma-separated list into l. */
static void list_of(struct sg_strlist *l, const char *s)
{
	while (*s != '\0') {
		const char *e = strchr(s, ',');
		size_t n = e != NULL ? (size_t)(e - s) : strlen(s);

		if (l->n < AUTH_MAX_CIDRS)
			sg_strlist_addn(l, s, n);
		if (e == NULL)
			break;
		s = e + 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sg_strlist l = {0};
	struct sg_err err;
	char *text, *a, *b;
	json_t *j;

	if (size < 1 || size > FUZZ_MAX_INPUT)
		return 0;
	text = sg_xstrndup((const char *)data + 1, size - 1); /* stops at an embedded NUL, as C strings do */
	a = text;
	b = strchr(text, '\n');
	if (b != NULL)
		*b++ = '\0';
	else
		b = text;
	sg_err_init(&err);
	switch (data[0] % 6) {
	case 0: /* caller address against CIDRs */
		list_of(&l, b);
		(void)auth_cidr_allowed(&l, a);
		(void)auth_cidrs_check(&l, "f", &err);
		break;
	case 1: /* both ways round */
		list_of(&l, a);
		(void)auth_cidr_allowed(&l, b);
		break;
	case 2: /* cert-role glob, both cases */
		(void)auth_cert_glob(a, b, false);
		(void)auth_cert_glob(a, b, true);
		break;
	case 3: { /* token fields of a role body */
		struct auth_tokenfields f;
		struct auth_token_params p;

		j = json_loads(text, JSON_DECODE_ANY, NULL);
		auth_tokenfields_init(&f);
		if (j != NULL && auth_tokenfields_apply(&f, j, &err) == 0) {
			json_t *o = json_object();

			auth_tokenfields_encode(&f, o);
			auth_token_params_init(&p);
			auth_tokenfields_to_params(&f, &p);
			auth_token_params_clear(&p);
			json_decref(o);
		}
		auth_tokenfields_clear(&f);
		json_decref(j);
		break;
	}
	case 4: { /* AppRole secret-id body */
		struct auth_approle_secret_params p;

		memset(&p, 0, sizeof(p));
		j = json_loads(text, JSON_DECODE_ANY, NULL);
		if (j != NULL)
			(void)auth_approle_secret_params_parse(j, data[0] & 0x80, &p, &err);
		auth_approle_secret_params_clear(&p);
		json_decref(j);
		break;
	}
	default: /* block inside blocks */
		list_of(&l, b);
		(void)auth_cidr_within(a, &l);
		break;
	}
	sg_strlist_clear(&l);
	free(text);
	return 0;
}
