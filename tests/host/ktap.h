/*
 * ktap.h - a minimal KTAP v1 reporter for the host unit tests, so the
 * project's runner (scripts/test.py) reads host and kernel results alike.
 *
 *   KTAP_CHECK(cond, "fmt", ...)  records a failure of the current case
 *   ktap_case("name") / ktap_end_case() bracket one case
 *   return ktap_finish();           prints the plan check, exit status
 */
#ifndef TINYPV_HOST_KTAP_H
#define TINYPV_HOST_KTAP_H

#include <stdarg.h>
#include <stdio.h>

static int ktap_n, ktap_failed_cases, ktap_case_failures;
static const char *ktap_name;

static inline void ktap_begin(int planned)
{
	printf("KTAP version 1\n1..%d\n", planned);
}

static inline void ktap_case(const char *name)
{
	ktap_name = name;
	ktap_case_failures = 0;
}

static inline void ktap_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	printf("# %s: ", ktap_name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf(" (%s:%d)\n", file, line);
	ktap_case_failures++;
}

#define KTAP_CHECK(cond, ...)                                                  \
	do {                                                                   \
		if (!(cond))                                                   \
			ktap_fail(__FILE__, __LINE__, __VA_ARGS__);            \
	} while (0)

static inline void ktap_end_case(void)
{
	ktap_n++;
	printf("%sok %d %s\n", ktap_case_failures ? "not " : "", ktap_n,
	       ktap_name);
	ktap_failed_cases += ktap_case_failures ? 1 : 0;
	fflush(stdout);
}

static inline int ktap_finish(void)
{
	return ktap_failed_cases ? 1 : 0;
}

#endif
