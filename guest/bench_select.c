/*
 * bench_select.c - the loops of the select benchmark (bench_select.h),
 * shared by the kernel (guest/bench.c) and user space
 * (tests/host/bench_silicon.c, built with HOST_TEST).
 */
#include "bench_select.h"

#ifndef HOST_TEST
#include "cache.h"
#include "kernel.h"
#include "static_call.h"
#define FLUSH(p) flush_cache_line(p)
#else
#define FLUSH(p) asm volatile("clflush %0" : "+m"(*(volatile char *)(p)))
#endif

/* The flush has completed, and nothing later starts before it. */
#define FLUSHED(p)                                                             \
	do {                                                                   \
		FLUSH(p);                                                      \
		asm volatile("mfence" ::: "memory");                           \
	} while (0)

const char *const bench_sel_names[BSEL_NR] = {
    [BSEL_SELECT] = "alt-select",
    [BSEL_IF_WARM] = "if-warm",
    [BSEL_IF_COLD] = "if-cold",
    [BSEL_STATIC_CALL] = "static-call",
    [BSEL_PATCHED_CALL] = "patched-call",
    [BSEL_INDIRECT_WARM] = "indirect-warm",
    [BSEL_INDIRECT_COLD] = "indirect-cold",
    [BSEL_RETPOLINE] = "retpoline",
};

/* noipa: the compiler may not see that the two differ, nor inline them. */
__attribute__((noipa)) unsigned long bench_sel_a(unsigned long x)
{
	return x + 1;
}

__attribute__((noipa)) unsigned long bench_sel_b(unsigned long x)
{
	return x + 2;
}

struct bench_sel_line bench_sel_flag_line = {.flag = 1};
struct bench_sel_line bench_sel_ptr_line = {.ptr = bench_sel_b};
struct bench_sel_line bench_sel_dummy_line;

static volatile unsigned long bench_sel_sink;

static inline uint64_t sel_tsc(void)
{
	uint32_t lo, hi;
	asm volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi)::"memory");
	return (uint64_t)hi << 32 | lo;
}

#define SEL_LOOP(name, pre, body)                                              \
	static __attribute__((noinline)) uint64_t name(unsigned n)             \
	{                                                                      \
		unsigned long acc = 0;                                         \
		uint64_t t0 = sel_tsc();                                       \
		for (unsigned long i = 0; i < n; i++) {                        \
			pre;                                                   \
			acc += body;                                           \
			asm volatile("" : "+r"(acc)::"memory");                \
		}                                                              \
		uint64_t t = sel_tsc() - t0;                                   \
		bench_sel_sink = acc;                                          \
		return t;                                                      \
	}

SEL_LOOP(loop_empty, , i)
SEL_LOOP(loop_flush_empty, FLUSHED(&bench_sel_dummy_line), i)
SEL_LOOP(loop_select, , BENCH_SITE_SELECT(i))
SEL_LOOP(loop_if_warm, , BENCH_SITE_IF(i))
SEL_LOOP(loop_if_cold, FLUSHED(&bench_sel_flag_line), BENCH_SITE_IF(i))
SEL_LOOP(loop_patched_call, , BENCH_SITE_PATCHED_CALL(i))
SEL_LOOP(loop_indirect_warm, , BENCH_SITE_INDIRECT(i))
SEL_LOOP(loop_indirect_cold, FLUSHED(&bench_sel_ptr_line),
	 BENCH_SITE_INDIRECT(i))
SEL_LOOP(loop_retpoline, , BENCH_SITE_RETPOLINE(i))

#ifndef HOST_TEST
/*
 * The static call (scall/): a key defined on a, updated to b before the
 * cells run (bench_sel_prepare()); in the default inline mode its call
 * site is rewritten to `call b` unless it crosses a cache line.
 */
DEFINE_STATIC_CALL(bench_sel_sc, bench_sel_a);
SEL_LOOP(loop_static_call, , static_call(bench_sel_sc)(i))

void bench_sel_prepare(void)
{
	static_call_update(bench_sel_sc, bench_sel_b);
}

const char *bench_sel_static_call_form(void)
{
	static char buf[48];
	snprintf(buf, sizeof(buf), "inlined=%u/%u", __SCK__bench_sel_sc.ninline,
		 __SCK__bench_sel_sc.nsites);
	return buf;
}
#endif

static uint64_t (*const loops[BSEL_NR])(unsigned) = {
    [BSEL_SELECT] = loop_select,
    [BSEL_IF_WARM] = loop_if_warm,
    [BSEL_IF_COLD] = loop_if_cold,
    [BSEL_PATCHED_CALL] = loop_patched_call,
    [BSEL_INDIRECT_WARM] = loop_indirect_warm,
    [BSEL_INDIRECT_COLD] = loop_indirect_cold,
    [BSEL_RETPOLINE] = loop_retpoline,
#ifndef HOST_TEST
    [BSEL_STATIC_CALL] = loop_static_call,
#endif
};

bool bench_sel_available(enum bench_sel_method m)
{
	return loops[m] != 0;
}

uint64_t bench_sel_once(enum bench_sel_method m, unsigned calls)
{
	bool cold = m == BSEL_IF_COLD || m == BSEL_INDIRECT_COLD;
	uint64_t c = loops[m](calls);
	uint64_t e = cold ? loop_flush_empty(calls) : loop_empty(calls);
	return c > e ? (c - e) * 100 / calls : 0;
}

/* One site each, for the byte count (scripts/bench.py reads the sizes
 * of these functions and subtracts bench_site_base's). */
#define SITE_FN(name, body)                                                    \
	__attribute__((noinline)) unsigned long name(unsigned long x)          \
	{                                                                      \
		unsigned long r = body;                                        \
		asm volatile("" : "+r"(r));                                    \
		return r;                                                      \
	}
SITE_FN(bench_site_base, bench_sel_a(x))
SITE_FN(bench_site_select, BENCH_SITE_SELECT(x))
SITE_FN(bench_site_if, BENCH_SITE_IF(x))
SITE_FN(bench_site_patched_call, BENCH_SITE_PATCHED_CALL(x))
SITE_FN(bench_site_indirect, BENCH_SITE_INDIRECT(x))
SITE_FN(bench_site_retpoline, BENCH_SITE_RETPOLINE(x))
#ifndef HOST_TEST
SITE_FN(bench_site_static_call, static_call(bench_sel_sc)(x))
#endif
