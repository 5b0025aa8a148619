/*
 * bench_scall.c - what a call costs, by how it is made: the static-call
 * cells of `make bench` (doc/static-calls.md).
 *
 * Every cell calls the same empty function (or, for the NULL forms,
 * nothing) from a loop of its own, so the cells differ only in the call:
 *   direct           call rel32 to the function (the floor)
 *   inline           a static call whose site was patched to call it
 *   trampoline       a static call through its trampoline (call; jmp)
 *   indirect         call through a function pointer loaded from memory
 *   retpoline        the same through a retpoline thunk (call; mov; ret)
 *   inline-null      a NULL static call, site patched to a 5-byte NOP
 *   trampoline-null  a NULL static call through its trampoline (call; ret)
 * Per call, the empty loop subtracted; interrupts off around each batch.
 */
#include "bench.h"
#include "cmdline.h"
#include "kernel.h"
#include "pvops.h"
#include "static_call.h"
#include "timer.h"

__attribute__((noinline)) void bench_sc_target(void)
{
	asm volatile("");
}

DEFINE_STATIC_CALL(bench_sc_inl, bench_sc_target);
DEFINE_STATIC_CALL_OUTLINE(bench_sc_tramp, bench_sc_target);
DEFINE_STATIC_CALL_NULL(bench_sc_inl_null, bench_sc_target);
DEFINE_STATIC_CALL_OUTLINE(bench_sc_tramp_null, bench_sc_target);

static void (*volatile bench_sc_ptr)(void) = bench_sc_target;

/* The retpoline thunk for a target in %r11 (Linux's shape, our code). */
asm(".pushsection .text, \"ax\"\n\t"
    ".balign 16\n"
    "bench_sc_retpoline_r11:\n\t"
    "call 1f\n"
    "2:\tpause\n\t"
    "lfence\n\t"
    "jmp 2b\n"
    "1:\tmov %r11, (%rsp)\n\t"
    "ret\n\t"
    ".popsection");

#define SC_LOOP(...) BENCH_LOOP(__VA_ARGS__)

typedef uint64_t (*sc_loop)(unsigned n);

static __attribute__((noinline)) uint64_t sc_empty(unsigned n) SC_LOOP(;) static
    __attribute__((noinline)) uint64_t sc_direct(unsigned n)
	SC_LOOP(bench_sc_target()) static __attribute__((noinline)) uint64_t
    sc_inline(unsigned n) SC_LOOP(static_call(bench_sc_inl)()) static
    __attribute__((noinline)) uint64_t sc_tramp(unsigned n)
	SC_LOOP(static_call(bench_sc_tramp)()) static
    __attribute__((noinline)) uint64_t sc_indirect(unsigned n)
	SC_LOOP(bench_sc_ptr()) static __attribute__((noinline)) uint64_t
    sc_retpoline(unsigned n) SC_LOOP({
	    register void (*r11)(void) asm("r11") = bench_sc_ptr;
	    asm volatile("call bench_sc_retpoline_r11"
			 : "+r"(r11)
			 :
			 : "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10",
			   "memory", "cc");
    }) static __attribute__((noinline)) uint64_t sc_inline_null(unsigned n)
	SC_LOOP(static_call(bench_sc_inl_null)()) static
    __attribute__((noinline)) uint64_t sc_tramp_null(unsigned n)
	SC_LOOP(static_call(bench_sc_tramp_null)())

	    static const struct {
	const char *mode;
	sc_loop fn;
} cells[] = {
    {"direct", sc_direct},
    {"inline", sc_inline},
    {"trampoline", sc_tramp},
    {"indirect", sc_indirect},
    {"retpoline", sc_retpoline},
    {"inline-null", sc_inline_null},
    {"trampoline-null", sc_tramp_null},
};

void bench_scall(unsigned calls, unsigned batches)
{
	uint64_t per[64];

	static_call_update(bench_sc_tramp_null, NULL);
	static_call_update(bench_sc_inl_null, NULL);
	if (batches > ARRAY_SIZE(per))
		batches = ARRAY_SIZE(per);
	for (unsigned c = 0; c < ARRAY_SIZE(cells); c++) {
		cells[c].fn(calls); /* warm */
		for (unsigned b = 0; b < batches; b++) {
			unsigned long fl = irq_save();
			uint64_t e = sc_empty(calls);
			uint64_t t = cells[c].fn(calls);
			irq_restore(fl);
			per[b] = t > e ? (t - e) * 100 / calls : 0;
		}
		bench_sort_u64(per, batches);
		printk("bench: op=scall mode=%s calls=%u batches=%u",
		       cells[c].mode, calls, batches);
		bench_print_x100("min", per[0]);
		bench_print_x100("median", per[batches / 2]);
		bench_print_x100("p99", per[(batches * 99) / 100]);
		printk(" unit=%s\n", opts.icount ? "insns" : "tsc");
	}
}
