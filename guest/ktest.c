/*
 * ktest.c - runs the registered tests and prints KTAP v1.
 */
#include "ktest.h"
#include "cmdline.h"
#include "pvops.h"

extern const struct ktest __ktest_start[], __ktest_end[];

void ktest_fail(struct ktest_ctx *t, const char *file, int line,
		const char *fmt, ...)
{
	char msg[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	printk("    # %s: %s (%s:%d)\n", t->name, msg, file, line);
	t->failures++;
}

static bool selected(const struct ktest *k, const char *glob)
{
	char full[96];
	if (!glob)
		return true;
	snprintf(full, sizeof(full), "%s.%s", k->suite, k->name);
	return glob_match(glob, full);
}

/* First test of each suite, in link order, that has a selected test. */
static bool suite_first(const struct ktest *k, const char *glob)
{
	for (const struct ktest *p = __ktest_start; p < k; p++)
		if (!strcmp(p->suite, k->suite) && selected(p, glob))
			return false;
	return selected(k, glob);
}

static unsigned count_in_suite(const char *suite, const char *glob)
{
	unsigned n = 0;
	for (const struct ktest *k = __ktest_start; k < __ktest_end; k++)
		n += !strcmp(k->suite, suite) && selected(k, glob);
	return n;
}

static unsigned run_suite(const char *suite, const char *glob, unsigned nr)
{
	unsigned idx = 0, failed = 0;

	printk("    KTAP version 1\n    # Subtest: %s\n    1..%u\n", suite,
	       count_in_suite(suite, glob));
	for (const struct ktest *k = __ktest_start; k < __ktest_end; k++) {
		if (strcmp(k->suite, suite) || !selected(k, glob))
			continue;
		struct ktest_ctx t = {.suite = suite, .name = k->name};
		/* Names the test if it crashes before its result line. */
		printk("    # start %s\n", k->name);
		unsigned long fl = save_fl();
		k->fn(&t);
		restore_fl(fl);
		idx++;
		if (t.failures)
			printk("    not ok %u %s\n", idx, k->name);
		else if (t.skip_reason)
			printk("    ok %u %s # SKIP %s\n", idx, k->name,
			       t.skip_reason);
		else
			printk("    ok %u %s\n", idx, k->name);
		failed += t.failures ? 1 : 0;
	}
	printk("%sok %u %s\n", failed ? "not " : "", nr, suite);
	return failed;
}

unsigned ktest_run(const char *glob)
{
	/* The runner's own copy: a test may parse options of its own. */
	static char pattern[CMDLINE_VALUE_MAX];
	unsigned suites = 0, nr = 0, failed = 0;

	if (glob) {
		size_t len = strnlen(glob, sizeof(pattern) - 1);
		memcpy(pattern, glob, len);
		pattern[len] = '\0';
		glob = pattern;
	}
	for (const struct ktest *k = __ktest_start; k < __ktest_end; k++)
		suites += suite_first(k, glob);
	if (glob && !suites)
		printk("warning: ktest=%s matches no test\n", glob);
	printk("KTAP version 1\n1..%u\n", suites);
	for (const struct ktest *k = __ktest_start; k < __ktest_end; k++)
		if (suite_first(k, glob))
			failed += run_suite(k->suite, glob, ++nr);
	return failed;
}
