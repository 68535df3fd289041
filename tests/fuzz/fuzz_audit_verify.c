/*
 * libFuzzer target for the audit chain verifier (server/audit.c,
 * `sigil audit verify`): audit files are read back from disks an attacker
 * may have written to. The input is the file; the first byte also picks an
 * expected seq, so the head comparison runs too. A verdict must name a line
 * within the file (or the one after it, for a cut tail).
 * Seed corpus: tests/fuzz/corpus/audit_verify/ (an intact chain, edited,
 * reordered and cut copies).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/audit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct audit_verify_opts o = {size > 0 ? data[0] % 8 : 0, NULL, size > 1 && (data[1] & 1) != 0};
	struct audit_verify_result r;
	struct sg_err err;
	size_t newlines = 0;
	FILE *f;

	if (size == 0)
		return 0;
	for (size_t i = 0; i < size; i++)
		newlines += data[i] == '\n';
	f = fmemopen((void *)data, size, "rb");
	if (f == NULL)
		return 0;
	sg_err_init(&err);
	if (audit_verify_stream(f, &o, &r, &err) == 0) {
		if (!r.ok && (r.bad_line == 0 || r.bad_line > newlines + 2 || r.reason[0] == '\0'))
			abort();
		if (r.ok && r.lines > newlines)
			abort();
	}
	fclose(f);
	return 0;
}
