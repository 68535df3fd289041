/*
 * libFuzzer target for the agent's config parser (agent/config.c): any
 * bytes either parse into a config whose every certificate has its
 * required fields and defaults, or fail with an error set. The same bytes
 * also go to the certificate reader the agent uses on files it finds on
 * disk (agent_cert_info). Seed corpus: tests/fuzz/corpus/agent_config/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct agent_config *cfg;
	struct sg_err err;
	int64_t nb, na;
	char *serial = NULL;

	sg_err_init(&err);
	cfg = agent_config_parse((const char *)data, size, &err);
	if (cfg == NULL && !sg_err_isset(&err))
		abort();
	if (cfg != NULL) {
		if (cfg->mount == NULL || cfg->ncerts > AGENT_MAX_CERTS)
			abort();
		for (size_t i = 0; i < cfg->ncerts; i++) {
			const struct agent_cert_cfg *c = &cfg->certs[i];

			if (c->role == NULL || c->common_name == NULL || c->name == NULL || c->mount == NULL ||
			    (c->cert_file == NULL && c->bundle_file == NULL) || c->alt_names.n > AGENT_MAX_NAMES)
				abort();
		}
	}
	agent_config_free(cfg);
	sg_err_init(&err);
	if (agent_cert_info((const char *)data, size, &nb, &na, &serial, &err) == 0 && serial == NULL)
		abort();
	free(serial);
	return 0;
}
