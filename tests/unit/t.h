/* Minimal unit-test harness: every binary ends with "N passed, N failed". */
#ifndef SG_T_H
#define SG_T_H

#include <stdio.h>
#include <string.h>

static int t_passed, t_failed;

#define T_CHECK(cond, ...)                                                          \
	do {                                                                        \
		if (cond) {                                                         \
			t_passed++;                                                 \
		} else {                                                            \
			t_failed++;                                                 \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                               \
			fputc('\n', stderr);                                        \
		}                                                                   \
	} while (0)

#define T_OK(cond) T_CHECK(cond, "%s", "")

#define T_STREQ(a, b)                                                                   \
	do {                                                                            \
		const char *t_a_ = (a), *t_b_ = (b);                                    \
		T_CHECK(t_a_ && t_b_ && strcmp(t_a_, t_b_) == 0, "'%s' != '%s'",        \
		        t_a_ ? t_a_ : "(null)", t_b_ ? t_b_ : "(null)");                \
	} while (0)

static inline int t_done(void)
{
	printf("%d passed, %d failed\n", t_passed, t_failed);
	return t_failed ? 1 : 0;
}

#endif
