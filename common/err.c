#include "common/err.h"

#include <openssl/err.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	int status;
	const char *vault;
	const char *acme;
	const char *name;
} table[SG_NCODES] = {
#define SG_ERR(name, status, vault, acme) {status, vault, acme, #name},
#include "common/errors.def"
#undef SG_ERR
};

void sg_err_init(struct sg_err *err)
{
	memset(err, 0, sizeof(*err));
}

int sg_err_isset(const struct sg_err *err)
{
	return err != NULL && err->code != SG_OK;
}

static void vset(struct sg_err *err, enum sg_code code, const char *fmt, va_list ap)
{
	vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
	err->code = code;
}

int sg_err_set(struct sg_err *err, enum sg_code code, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || err->code != SG_OK)
		return -1;
	va_start(ap, fmt);
	vset(err, code, fmt, ap);
	va_end(ap);
	return -1;
}

int sg_err_ossl(struct sg_err *err, enum sg_code code, const char *fmt, ...)
{
	va_list ap;
	unsigned long e;
	size_t used = 0;

	if (err == NULL || err->code != SG_OK) {
		ERR_clear_error();
		return -1;
	}
	va_start(ap, fmt);
	vset(err, code, fmt, ap);
	va_end(ap);
	while ((e = ERR_get_error()) != 0) {
		char buf[256];

		ERR_error_string_n(e, buf, sizeof(buf));
		if (used + strlen(buf) + 2 < sizeof(err->log)) {
			used += (size_t)snprintf(err->log + used, sizeof(err->log) - used, "%s%s",
			                         used ? "; " : "", buf);
		}
	}
	return -1;
}

static enum sg_code clamp(enum sg_code code)
{
	return (code >= 0 && code < SG_NCODES) ? code : SG_INTERNAL;
}

int sg_err_http_status(enum sg_code code) { return table[clamp(code)].status; }
const char *sg_err_vault_text(enum sg_code code) { return table[clamp(code)].vault; }
const char *sg_err_acme_type(enum sg_code code) { return table[clamp(code)].acme; }
const char *sg_err_name(enum sg_code code) { return table[clamp(code)].name; }

void sg_die(const char *fmt, ...)
{
	va_list ap;

	fputs("sigil: fatal: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

void *sg_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		sg_die("out of memory (%zu bytes)", n);
	return p;
}

void *sg_xcalloc(size_t n, size_t m)
{
	void *p = calloc(n ? n : 1, m ? m : 1);

	if (p == NULL)
		sg_die("out of memory");
	return p;
}

void *sg_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (q == NULL)
		sg_die("out of memory (%zu bytes)", n);
	return q;
}

char *sg_xstrdup(const char *s)
{
	return sg_xstrndup(s, strlen(s));
}

char *sg_xstrndup(const char *s, size_t n)
{
	char *p = sg_xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *sg_xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p = NULL;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&p, fmt, ap);
	va_end(ap);
	if (n < 0)
		sg_die("out of memory");
	return p;
}
