/*
 * bench.h - what each pvop costs, per dispatch mode, on this platform.
 *
 * Every (op, mode) cell is a loop over its own call sites (guest/bench.c):
 *   raw        the instruction written inline by hand (native and KVM only)
 *   indirect   the unpatched site: call *pv_ops[op]
 *   call       the site patched to a direct call
 *   inline     the site patched inline (default padding)
 *   if         a branch on a platform variable in memory: the raw
 *              instruction natively, a direct call to the Xen function
 *   retpoline  an indirect call through a retpoline-style thunk
 *   pad-<s>    inline with padding style <s> (nops, nop1, jmp, single,
 *              prefix), to compare padding
 * A cell is timed in batches of `calls` calls between serialised TSC
 * reads; an empty loop timed the same way right after each batch is
 * subtracted. Costs are TSC ticks per call, times 100: under QEMU
 * `-icount shift=0` a tick is one guest instruction, elsewhere an
 * emulated cycle, never a hardware cycle (doc/benchmarks.md).
 */
#ifndef TINYPV_BENCH_H
#define TINYPV_BENCH_H

#include <stdbool.h>
#include <stdint.h>

enum bench_mode {
	BENCH_RAW,
	BENCH_INDIRECT,
	BENCH_CALL,
	BENCH_INLINE,
	BENCH_IF,
	BENCH_RETPOLINE,
	BENCH_PAD_NOPS,
	BENCH_PAD_NOP1,
	BENCH_PAD_JMP,
	BENCH_PAD_SINGLE,
	BENCH_PAD_PREFIX,
	BENCH_MODE_NR,
};

struct bench_result {
	bool valid; /* false: the mode does not apply here */
	unsigned calls, batches;
	uint64_t min, median, p99; /* TSC ticks per call, x100 */
};

extern const char *const bench_mode_names[BENCH_MODE_NR];

/* Number of benchmarked ops, and the pvop number of the i-th one. */
unsigned bench_nr_ops(void);
int bench_op(unsigned i);

/* Measures one cell (interrupts masked where the op allows). */
struct bench_result bench_measure(unsigned i, enum bench_mode mode,
				  unsigned calls, unsigned batches);

/* The `bench` command-line option: every cell, printed as "bench:" lines. */
void bench_run(void);
/* The static-call cells (guest/bench_scall.c): op=scall, one per call form. */
void bench_scall(unsigned calls, unsigned batches);

/*
 * The benchmarks' clock is always `lfence; rdtsc`, not the rdtsc_ordered()
 * alternative: every platform times with the same instructions, and the
 * hundreds of cells do not each add alternative sites to boot patching.
 */
static inline uint64_t bench_tsc(void)
{
	uint32_t lo, hi;
	asm volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi)::"memory");
	return (uint64_t)hi << 32 | lo;
}

/* The body of a cell's loop function f(unsigned n): n times body, timed. */
#define BENCH_LOOP(...)                                                        \
	{                                                                      \
		uint64_t t0 = bench_tsc();                                     \
		for (unsigned i = 0; i < n; i++) {                             \
			__VA_ARGS__;                                           \
			barrier();                                             \
		}                                                              \
		return bench_tsc() - t0;                                       \
	}

/* Sorting per-batch figures, and printing one as " key=N.NN" (x100). */
void bench_sort_u64(uint64_t *v, unsigned n);
void bench_print_x100(const char *key, uint64_t v);

/* TSC at the first C instruction of the kernel (either boot head), and
 * when it was ready (patched, protected, ticking, interrupts on). */
extern uint64_t boot_tsc_entry, boot_tsc_ready;

#endif
