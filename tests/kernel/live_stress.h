/*
 * live_stress.h - what the two live-patching stress suites share: how
 * many one-site updates a stress test makes, and the rule that keeps
 * int3-writing tests off this host's KVM (tests/kernel/test_live.c, the
 * engine's own sites; tests/kernel/test_scall_live.c, static calls).
 */
#ifndef TINYPV_LIVE_STRESS_H
#define TINYPV_LIVE_STRESS_H

#include "cmdline.h"
#include "ktest.h"
#include "platform.h"

/*
 * One-site (one-key) updates per stress test: 10,000, the count the
 * static-call issue asks for (1,000 under KVM, which emulates every
 * instruction here), or liveupdates=N. A row may ask for fewer where the
 * host cannot give every vCPU a core: with more vCPU threads than host
 * cores each sync round waits for the host scheduler to run every CPU
 * (doc/static-calls.md, "What it costs to run"), so the -smp 4 row of
 * make test passes liveupdates=1000 and `make stress` runs the 10,000.
 */
static inline unsigned live_stress_updates(void)
{
	unsigned long n;

	if (opts.liveupdates &&
	    cmdline_number("liveupdates", opts.liveupdates, 1000000, &n) && n)
		return (unsigned)n;
	return platform->id == PLATFORM_KVM ? 1000 : 10000;
}

/* A test whose updates write int3s: never on this host's KVM. */
#define LIVE_NEED_INT3(t)                                                      \
	do {                                                                   \
		if (platform->id == PLATFORM_KVM)                              \
			KT_SKIP(t,                                             \
				"this host's software KVM fails to emulate "   \
				"an int3 just written to text (KVM internal "  \
				"error, emulation failure)");                  \
	} while (0)

/*
 * make bench: the cost of one live batch, per path and size. For each
 * path (int3: patchlive=int3; store; cs: the int3 path over CS-prefixed
 * sites, sizes up to cs_max) and each of 1, 16 and 256, runs
 * batch(path, n, rep) reps times, each timed (ticks, or instructions
 * under icount), with the live path forced on one CPU, and prints one
 * `bench: op=<prefix><path>_<n> mode=live` line: minimum, median, p99,
 * and the sync rounds, IPIs, single stores and int3 sites per batch.
 * reset (if any) runs after each size. In test_live.c.
 */
enum live_bench_path { LIVE_BENCH_INT3, LIVE_BENCH_STORE, LIVE_BENCH_CS };
void live_bench_paths(const char *prefix, unsigned reps, unsigned cs_max,
		      void (*batch)(enum live_bench_path, unsigned n,
				    unsigned rep),
		      void (*reset)(void));

#endif
