#ifndef SG_ERR_H
#define SG_ERR_H

#include <stddef.h>

#define SG_WUR __attribute__((warn_unused_result))

enum sg_code {
#define SG_ERR(name, status, vault, acme) SG_##name,
#include "common/errors.def"
#undef SG_ERR
	SG_NCODES
};

#define SG_ERR_DETAIL_MAX 512
#define SG_ERR_LOG_MAX 512

/*
 * A structured error, passed last to every fallible function and filled
 * once: the first error wins. `detail` is safe to show a client; `log`
 * holds the drained OpenSSL error queue for the server log only.
 */
struct sg_err {
	enum sg_code code;
	char detail[SG_ERR_DETAIL_MAX];
	char log[SG_ERR_LOG_MAX];
};

void sg_err_init(struct sg_err *err);
int sg_err_isset(const struct sg_err *err);
/* Sets the error if none is set yet. Always returns -1 for `return sg_err_set(...)`. */
int sg_err_set(struct sg_err *err, enum sg_code code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* As sg_err_set, and drains the OpenSSL error queue into err->log. */
int sg_err_ossl(struct sg_err *err, enum sg_code code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

int sg_err_http_status(enum sg_code code);
const char *sg_err_vault_text(enum sg_code code);
const char *sg_err_acme_type(enum sg_code code);
const char *sg_err_name(enum sg_code code);

/* Allocation failure and broken invariants abort (the supervisor restarts). */
__attribute__((noreturn)) void sg_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void *sg_xmalloc(size_t n);
void *sg_xcalloc(size_t n, size_t m);
void *sg_xrealloc(void *p, size_t n);
char *sg_xstrdup(const char *s);
char *sg_xstrndup(const char *s, size_t n);
char *sg_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
