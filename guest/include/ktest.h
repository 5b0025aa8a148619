/*
 * ktest.h - in-kernel test cases, reported as KTAP v1.
 *
 * A test is a function registered with KTEST(suite, name); the linker
 * collects them in .ktest.cases, so there is no list to edit. Tests of one
 * suite are reported together, in link order. `ktest=GLOB` on the command
 * line runs only tests whose "suite.name" matches.
 *
 *   KTEST(irq, pushf_shows_if)
 *   {
 *           irq_disable();
 *           KT_EXPECT(t, !irqs_enabled(), "IF still set");
 *   }
 *
 * KT_EXPECT records a failure with a diagnostic and continues; KT_ASSERT
 * also returns from the test; KT_SKIP marks the test skipped and returns.
 */
#ifndef TINYPV_KTEST_H
#define TINYPV_KTEST_H

#include "kernel.h"

struct ktest_ctx {
	const char *suite, *name;
	unsigned failures;
	const char *skip_reason;
};

struct ktest {
	const char *suite;
	const char *name;
	void (*fn)(struct ktest_ctx *t);
};

#define KTEST(suite, name)                                                     \
	static void ktest_##suite##_##name(struct ktest_ctx *t);               \
	static const struct ktest __ktest_##suite##_##name __used              \
	    __attribute__((aligned(8))) __section(".ktest.cases") = {          \
		#suite, #name, ktest_##suite##_##name};                        \
	static void ktest_##suite##_##name(struct ktest_ctx *t)

void ktest_fail(struct ktest_ctx *t, const char *file, int line,
		const char *fmt, ...) __printf(4, 5);

#define KT_EXPECT(t, cond, ...)                                                \
	do {                                                                   \
		if (!(cond))                                                   \
			ktest_fail(t, __FILE__, __LINE__, __VA_ARGS__);        \
	} while (0)

#define KT_ASSERT(t, cond, ...)                                                \
	do {                                                                   \
		if (!(cond)) {                                                 \
			ktest_fail(t, __FILE__, __LINE__, __VA_ARGS__);        \
			return;                                                \
		}                                                              \
	} while (0)

#define KT_SKIP(t, reason)                                                     \
	do {                                                                   \
		(t)->skip_reason = (reason);                                   \
		return;                                                        \
	} while (0)

/*
 * Runs the tests matching glob (NULL = all); returns the failure count. The
 * glob is copied first, so tests may re-parse options. A glob that matches
 * no test prints a `warning:` and an empty plan (the harness calls that an
 * error: no test ran).
 */
unsigned ktest_run(const char *glob);

/* The test-only patch kind of the live suite (tests/kernel/test_live.c):
 * registered before patch_init(), which checks its records at boot. */
void live_test_register_kind(void);
/* make bench: the cost of live update batches of 1, 16, 256 sites. */
void live_bench(unsigned reps);
/* make bench: the cost of static-call updates of 1, 16, 256 keys. */
void scall_live_bench(unsigned reps);

#endif
