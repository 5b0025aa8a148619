/*
 * bench_select.h - one call chosen between two functions by a condition
 * that is constant after boot, done eight ways, for the benchmark that
 * answers "why patch instead of an if?" (doc/benchmarks.md, issue 12).
 *
 *   alt-select     ALTERNATIVE_SELECT: lea, lea, patched mov; call *reg
 *   if-warm        if (flag) a(x) else b(x), flag in cache
 *   if-cold        the same, flag's cache line flushed before each call
 *   patched-call   a direct call patched at boot (an ALTERNATIVE whose
 *                  original is `call a` and replacement `call b`)
 *   indirect-warm  call through a function pointer in memory, in cache
 *   indirect-cold  the same, the pointer's line flushed before each call
 *   retpoline      the pointer loaded, then a retpoline thunk (%rax)
 *   static-call    static_call() of a key updated to b (scall/): the site
 *                  rewritten to `call b` in the default inline mode
 *                  (kernel only: user space has no static-call patching)
 *
 * The condition is X86_FEATURE_LM, present on every x86-64 CPU, so every
 * patched form is the replacement: the select's mov is executed, the
 * direct call goes to b. flag and the pointer sit alone on their own
 * cache line each (.data, 64-byte aligned), so flushing one flushes
 * nothing else.
 *
 * The kernel (guest/bench.c) builds the sites with the real macros and
 * boot patching; tests/host/bench_silicon.c (HOST_TEST, user space, no
 * patcher for its own text) assembles the same sites directly in the
 * patched form the kernel's boot writes (tests/kernel/test_alt.c checks
 * those bytes in the kernel).
 *
 *   unsigned long r = BENCH_SITE_IF(x);
 */
#ifndef TINYPV_BENCH_SELECT_H
#define TINYPV_BENCH_SELECT_H

#include <stdbool.h>
#include <stdint.h>

#include "alternative.h"

unsigned long bench_sel_a(unsigned long x);
unsigned long bench_sel_b(unsigned long x);
typedef unsigned long (*bench_sel_fn)(unsigned long);

/* Each on a cache line of its own (guest/bench.c, bench_silicon.c). */
struct bench_sel_line {
	volatile int flag;
	int pad0;
	bench_sel_fn volatile ptr;
	char pad[48];
} __attribute__((aligned(64)));
extern struct bench_sel_line bench_sel_flag_line, bench_sel_ptr_line,
    bench_sel_dummy_line;

/* Registers a call to a C function may destroy (the rest: rax, rdi). */
#define BENCH_SEL_CLOBBERS                                                     \
	"rcx", "rdx", "rsi", "r8", "r9", "r10", "r11", "memory", "cc"

#ifdef HOST_TEST
/* The patched forms, as the kernel's boot writes them. */
static inline __attribute__((always_inline)) bench_sel_fn bench_select_fn(void)
{
	bench_sel_fn f, a;
	asm volatile("lea %c[o](%%rip), %[f]\n\t"
		     "lea %c[al](%%rip), %[a]\n\t"
		     "mov %[a], %[f]"
		     : [f] "=r"(f), [a] "=r"(a)
		     : [o] "i"(bench_sel_a), [al] "i"(bench_sel_b));
	return f;
}
#define BENCH_PATCHED_CALL "call bench_sel_b"
#else
/* Volatile: every call runs the site (a loop may not hoist it). */
ALTERNATIVE_SELECT_EACH_CALL(bench_select_fn, bench_sel_a, bench_sel_b,
			     X86_FEATURE_LM)
#define BENCH_PATCHED_CALL                                                     \
	ALTERNATIVE("call bench_sel_a", "call bench_sel_b", X86_FEATURE_LM)
#endif

/* The stack pointer as an operand: the asm calls (patch_abi.h). */
#define bench_sel_rsp patch_stack_pointer

static inline __attribute__((always_inline)) unsigned long
bench_patched_call(unsigned long x)
{
	unsigned long r;
	asm volatile(BENCH_PATCHED_CALL
		     : "=a"(r), "+D"(x), "+r"(bench_sel_rsp)
		     :
		     : BENCH_SEL_CLOBBERS);
	return r;
}

static inline __attribute__((always_inline)) unsigned long
bench_retpoline(unsigned long x)
{
	unsigned long r = (unsigned long)bench_sel_ptr_line.ptr;
	asm volatile("call bench_retpoline_rax"
		     : "+a"(r), "+D"(x), "+r"(bench_sel_rsp)
		     :
		     : BENCH_SEL_CLOBBERS);
	return r;
}

#define BENCH_SITE_SELECT(x) bench_select_fn()(x)
#define BENCH_SITE_IF(x)                                                       \
	(bench_sel_flag_line.flag ? bench_sel_b(x) : bench_sel_a(x))
#define BENCH_SITE_INDIRECT(x) bench_sel_ptr_line.ptr(x)
#define BENCH_SITE_PATCHED_CALL(x) bench_patched_call(x)
#define BENCH_SITE_RETPOLINE(x) bench_retpoline(x)

enum bench_sel_method {
	BSEL_SELECT,
	BSEL_IF_WARM,
	BSEL_IF_COLD,
	BSEL_STATIC_CALL,
	BSEL_PATCHED_CALL,
	BSEL_INDIRECT_WARM,
	BSEL_INDIRECT_COLD,
	BSEL_RETPOLINE,
	BSEL_NR,
};
extern const char *const bench_sel_names[BSEL_NR];

/* False for a method this build does not have (static calls). */
bool bench_sel_available(enum bench_sel_method m);
/* Kernel: the static call's key aimed at b (before the cells run), and
 * how many of its sites were inlined ("inlined=N/M"). */
void bench_sel_prepare(void);
const char *bench_sel_static_call_form(void);
/* One batch of calls: per call, the empty loop subtracted, x100 ticks. */
uint64_t bench_sel_once(enum bench_sel_method m, unsigned calls);

/* One site each, noinline (their sizes: bytes per site; tests). */
unsigned long bench_site_base(unsigned long x);
unsigned long bench_site_select(unsigned long x);
unsigned long bench_site_if(unsigned long x);
unsigned long bench_site_patched_call(unsigned long x);
unsigned long bench_site_indirect(unsigned long x);
unsigned long bench_site_retpoline(unsigned long x);
#endif
