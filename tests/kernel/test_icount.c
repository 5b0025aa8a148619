/*
 * test_icount.c - exact instruction counts of each dispatch mode.
 *
 * Only meaningful under QEMU `-icount shift=0`, where the TSC advances by
 * one per guest instruction (the harness boots with the `icount` option
 * then); skipped otherwise. Counts are per call, rounded from the
 * benchmark's x100 figures, and are the same on every run and machine.
 */
#include "bench.h"
#include "cmdline.h"
#include "ktest.h"
#include "platform.h"
#include "pvop_backend.h"

#define CALLS 20
#define BATCHES 3

static long insns(unsigned i, enum bench_mode mode)
{
	struct bench_result r = bench_measure(i, mode, CALLS, BATCHES);
	return r.valid ? (long)((r.min + 50) / 100) : -1;
}

KTEST(icount, patched_never_costs_more_than_indirect)
{
	if (!opts.icount)
		KT_SKIP(t, "needs icount (QEMU -icount shift=0)");
	for (unsigned i = 0; i < bench_nr_ops(); i++) {
		const char *name = pvop_names[bench_op(i)];
		long ind = insns(i, BENCH_INDIRECT);
		long call = insns(i, BENCH_CALL);
		long inl = insns(i, BENCH_INLINE);
		KT_EXPECT(t, call <= ind, "%s: direct call %ld > indirect %ld",
			  name, call, ind);
		KT_EXPECT(t, inl <= ind, "%s: inline %ld > indirect %ld", name,
			  inl, ind);
	}
}

KTEST(icount, native_inline_is_raw_plus_at_most_one)
{
	if (!opts.icount)
		KT_SKIP(t, "needs icount (QEMU -icount shift=0)");
	if (platform->id == PLATFORM_XEN_PV)
		KT_SKIP(t, "raw instructions are not legal in a PV guest");
	for (unsigned i = 0; i < bench_nr_ops(); i++) {
		int op = bench_op(i);
		if (!pvop_current->op[op].tpl)
			continue; /* a function on this backend, not inline */
		long raw = insns(i, BENCH_RAW), inl = insns(i, BENCH_INLINE);
		KT_EXPECT(t, inl <= raw + 1,
			  "%s: inline %ld instructions, raw %ld",
			  pvop_names[op], inl, raw);
	}
}

KTEST(icount, xen_irq_disable_inline_makes_no_call)
{
	if (!opts.icount)
		KT_SKIP(t, "needs icount (QEMU -icount shift=0)");
	if (platform->id != PLATFORM_XEN_PV)
		KT_SKIP(t, "not a Xen PV guest");
	for (unsigned i = 0; i < bench_nr_ops(); i++) {
		if (bench_op(i) != PVOP_IRQ_DISABLE)
			continue;
		/* One instruction: the mask write. A call would add two. */
		long inl = insns(i, BENCH_INLINE);
		KT_EXPECT(t, inl == 1,
			  "inline irq_disable ran %ld instructions", inl);
	}
}

/*
 * Xen PV save_fl inline is three instructions: load the mask byte, flip
 * it, shift it to IF (templates.S). Exact, so a longer template shows.
 */
KTEST(icount, xen_save_fl_inline_is_three_instructions)
{
	if (!opts.icount)
		KT_SKIP(t, "needs icount (QEMU -icount shift=0)");
	if (platform->id != PLATFORM_XEN_PV)
		KT_SKIP(t, "not a Xen PV guest");
	bool seen = false;
	for (unsigned i = 0; i < bench_nr_ops(); i++) {
		if (bench_op(i) != PVOP_SAVE_FL)
			continue;
		long inl = insns(i, BENCH_INLINE);
		KT_EXPECT(t, inl == 3, "inline save_fl ran %ld instructions",
			  inl);
		seen = true;
	}
	KT_EXPECT(t, seen, "no save_fl benchmark cell");
}
