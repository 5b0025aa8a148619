/*
 * test_traps.c - exceptions are caught, reported and resumed from.
 */
#include "asm.h"
#include "ktest.h"
#include "mm.h"
#include "platform.h"
#include "pvops.h"
#include "trap.h"

KTEST(traps, ud2_fixup)
{
	uint64_t before = fault_count();
	asm volatile("1: ud2\n2:\n" EXTABLE_JUMP("1b", "2b", "2b"));
	KT_ASSERT(t, fault_count() == before + 1, "ud2 did not fault");
	KT_EXPECT(t, last_fault.vector == VEC_UD, "vector %lu, want 6",
		  last_fault.vector);
}

KTEST(traps, gp_from_noncanonical)
{
	uint64_t before = fault_count(), v = 0;
	asm volatile("1: mov (%1), %0\n2:\n" EXTABLE_JUMP("1b", "2b", "2b")
		     : "+r"(v)
		     : "r"(0x8000000000000000UL));
	KT_ASSERT(t, fault_count() == before + 1, "no fault");
	KT_EXPECT(t, last_fault.vector == VEC_GP, "vector %lu, want 13",
		  last_fault.vector);
}

KTEST(traps, gp_from_bad_msr)
{
	uint64_t v;
	bool faulted = !read_msr_safe(0xdead0000, &v);

	/* QEMU's TCG returns 0 for unknown MSRs instead of raising #GP. */
	if (!faulted && !strcmp(boot.hv_signature, "TCGTCGTCGTCG"))
		KT_SKIP(t, "TCG does not raise #GP for unknown MSRs");
	KT_EXPECT(t, faulted, "rdmsr did not fault");
	KT_EXPECT(t, last_fault.vector == VEC_GP, "vector %lu, want 13",
		  last_fault.vector);
	KT_EXPECT(t, !write_msr_safe(0xdead0000, 0), "wrmsr did not fault");
	KT_EXPECT(t, last_fault.vector == VEC_GP, "vector %lu, want 13",
		  last_fault.vector);
}

KTEST(traps, good_msr_does_not_fault)
{
	uint64_t v = 0;
	/* EFER exists everywhere tinypv runs; long mode is active (LMA). */
	KT_EXPECT(t, read_msr_safe(0xc0000080, &v), "rdmsr of EFER faulted");
	KT_EXPECT(t, v & (1 << 10), "EFER %#lx lacks LMA", v);
}

KTEST(traps, page_fault_null)
{
	volatile uint64_t *p = (uint64_t *)0x10;
	uint64_t before = fault_count(), v = 0;
	asm volatile("1: mov (%1), %0\n2:\n" EXTABLE_JUMP("1b", "2b", "2b")
		     : "+r"(v)
		     : "r"(p));
	KT_ASSERT(t, fault_count() == before + 1, "read of 0x10 did not fault");
	KT_EXPECT(t, last_fault.vector == VEC_PF, "vector %lu, want 14",
		  last_fault.vector);
	KT_EXPECT(t, last_fault.cr2 == 0x10, "cr2 %#lx, want 0x10",
		  last_fault.cr2);
	KT_EXPECT(t, !(last_fault.error & 2), "error %#lx says write",
		  last_fault.error);
}

/* Text is read-only on every platform: a write must fault. */
KTEST(traps, text_write_faults)
{
	extern char _text_start[];
	uint8_t *p = (uint8_t *)_text_start + 0x10;
	uint8_t old = *p;
	uint64_t before = fault_count();
	asm volatile("1: movb %1, (%0)\n2:\n" EXTABLE_JUMP("1b", "2b", "2b")
		     :
		     : "r"(p), "r"(old)
		     : "memory");
	KT_ASSERT(t, fault_count() == before + 1, "write to text succeeded");
	KT_EXPECT(t, last_fault.vector == VEC_PF, "vector %lu, want 14",
		  last_fault.vector);
	KT_EXPECT(t, last_fault.error & 2, "error %#lx is not a write",
		  last_fault.error);
	KT_EXPECT(t, *p == old, "text byte changed");
}

/* Data is not executable where the CPU has NX. */
KTEST(traps, data_not_executable)
{
	static uint8_t ret_insn[16] = {0xc3};
	if (!mmu_nx_bit())
		KT_SKIP(t, "no NX on this CPU");
	uint64_t before = fault_count();
	asm volatile("1: call *%0\n2:\n" EXTABLE_JUMP("1b", "2b", "2b")
		     :
		     : "r"(ret_insn)
		     : "memory");
	KT_ASSERT(t, fault_count() == before + 1, "executing .bss succeeded");
	KT_EXPECT(t, last_fault.vector == VEC_PF, "vector %lu, want 14",
		  last_fault.vector);
}
