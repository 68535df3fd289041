/*
 * libFuzzer target for the OCSP responder's untrusted input: the DER
 * OCSPRequest (ocsp_request_check, and ocsp_respond end to end against a
 * real mount: issuer matching over every CertID hash, serial extraction,
 * nonce limits, signing) and the GET form's base64 (ocsp_get_decode).
 * Input: a leading 0x01 byte selects the GET form (the rest is the base64
 * text); anything else is a DER request. The mount's issuer is the fixed
 * test root below, so the seeds in tests/fuzz/corpus/ocsp/ (made with
 * `openssl ocsp -issuer <that root> -serial ... -reqout`) reach the
 * signing path. Build: make build-fuzz/fuzz_ocsp.
 */
#include <openssl/err.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "crl/ocsp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A throwaway P-256 root made for this target only (test data, not a secret). */
static const char fuzz_root_pem[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIIBmjCCAUGgAwIBAgIUA86FQUHp07uZqQDNDB+dS+R74YwwCgYIKoZIzj0EAwIw\n"
	"GjEYMBYGA1UEAwwPU2lnaWwgRnV6eiBSb290MCAXDTI2MTEyMTAxMzE0NloYDzIx\n"
	"MjYxMDI4MDEzMTQ2WjAaMRgwFgYDVQQDDA9TaWdpbCBGdXp6IFJvb3QwWTATBgcq\n"
	"hkjOPQIBBggqhkjOPQMBBwNCAATcB/AROILUrFJjeRSV7W4KOoAg0KEIA4ZY4Wl5\n"
	"WQJAiKR8Uia3XEflgQUO/PV+FQcfycwf5RlQN0ByDAJEVw2oo2MwYTAdBgNVHQ4E\n"
	"FgQUqd+sNUnuGO/lZDp8dQMNGuqiXGAwHwYDVR0jBBgwFoAUqd+sNUnuGO/lZDp8\n"
	"dQMNGuqiXGAwDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8EBAMCAQYwCgYIKoZI\n"
	"zj0EAwIDRwAwRAIfHQJMBNAxcGST7xlth3ctFTf63PW3ZXZKD26yxPTy8wIhAMXX\n"
	"sfSPhab7xBzhBteW2vBilHD315pjprDscqH7G9hU\n"
	"-----END CERTIFICATE-----\n"
	"-----BEGIN PRIVATE KEY-----\n"
	"MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgdpnFXcaOoOygfidw\n"
	"cFl0OMkMrqeg3JJHh2xbdlbZsoShRANCAATcB/AROILUrFJjeRSV7W4KOoAg0KEI\n"
	"A4ZY4Wl5WQJAiKR8Uia3XEflgQUO/PV+FQcfycwf5RlQN0ByDAJEVw2o\n"
	"-----END PRIVATE KEY-----\n";

static struct store *g_st;
static struct ca *g_ca;
static struct crl *g_crl;
static struct ocsp *g_ocsp;
static struct ca_mount g_m = {.id = "0f0f0f0f-0000-4000-8000-00000000f0cc", .path = "pki", .default_ttl = 3600,
                              .max_ttl = 3600};

static void setup(void)
{
	char tmpl[] = "/tmp/sigil-fuzz-ocsp-XXXXXX";
	unsigned char kek[CA_KEK_BYTES] = {1, 2, 3};
	struct ca_import_result res;
	struct sg_err err;
	char *dir = mkdtemp(tmpl);

	memset(&res, 0, sizeof(res));
	sg_err_init(&err);
	if (dir == NULL || store_open(dir, 0, &g_st, &err) != 0 || ca_new(g_st, kek, &g_ca, &err) != 0 ||
	    crl_new(g_st, g_ca, NULL, &g_crl, &err) != 0 || ocsp_new(g_st, g_ca, g_crl, &g_ocsp, &err) != 0 ||
	    ca_import_pem(g_ca, &g_m, fuzz_root_pem, strlen(fuzz_root_pem), true, &res, &err) != 0) {
		fprintf(stderr, "fuzz_ocsp setup: %s\n", err.detail);
		abort();
	}
	ca_import_result_clear(&res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ocsp_answer a;
	struct sg_err err;
	size_t n = 0, nl = 0;
	unsigned char *der = NULL;
	size_t len = 0;

	if (g_ocsp == NULL)
		setup();
	sg_err_init(&err);
	if (size > 0 && data[0] == 0x01) {
		if (ocsp_get_decode((const char *)data + 1, size - 1, &der, &len) == 0) {
			ocsp_respond(g_ocsp, &g_m, NULL, der, len, &a);
			if (a.der == NULL || a.len == 0)
				abort();
			ocsp_answer_clear(&a);
		}
		free(der);
		return 0;
	}
	if (ocsp_request_check(data, size, &n, &nl, &err) == 0 &&
	    (n == 0 || n > OCSP_MAX_REQUEST_ITEMS || nl > OCSP_NONCE_MAX))
		abort();
	ocsp_respond(g_ocsp, &g_m, NULL, data, size, &a);
	/* Every input gets an OCSPResponse; a malformed one exactly the 5-byte malformedRequest. */
	if (a.der == NULL || a.len == 0 || (sg_err_isset(&err) && !(a.len == 5 && a.der[4] == 1)))
		abort();
	ocsp_answer_clear(&a);
	ERR_clear_error();
	return 0;
}
