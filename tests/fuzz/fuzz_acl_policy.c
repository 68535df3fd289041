/*
 * libFuzzer target for the ACL policy parser (auth/acl.c): HCL and JSON
 * forms (and Vault's base64 wrapping), then every parsed policy is
 * evaluated against a few paths and operations with a parameter body, so
 * the matcher and the parameter checks run on whatever the parser accepts.
 * Seed corpus: tests/fuzz/corpus/acl_policy/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/acl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const paths[] = {"pki/issue/web", "pki/roles/", "secret/a/b/c", "a", "", "+/x", "sys/"};
	static const enum auth_acl_op ops[] = {AUTH_ACL_OP_READ, AUTH_ACL_OP_LIST, AUTH_ACL_OP_UPDATE,
	                                       AUTH_ACL_OP_CREATE};
	struct auth_acl_policy *p = NULL;
	struct sg_err err;
	json_t *body;

	sg_err_init(&err);
	if (auth_acl_policy_parse("fuzz", (const char *)data, size, &p, &err) != 0)
		return 0;
	body = json_pack("{s:s, s:[s,s], s:i, s:s}", "common_name", "a.example.com", "alt_names", "x", "y", "ttl",
	                 3600, "format", "pem,der");
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		const struct auth_acl_policy *pols[] = {p, p};
		struct auth_acl_decision d;
		json_t *caps;

		for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++)
			auth_acl_evaluate(pols, 2, paths[i], ops[k], body, &d);
		caps = auth_acl_caps_json(auth_acl_capabilities(pols, 1, paths[i]));
		json_decref(caps);
	}
	json_decref(body);
	auth_acl_policy_free(p);
	return 0;
}
