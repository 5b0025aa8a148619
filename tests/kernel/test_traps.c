/*
 * test_traps.c - exceptions are caught, reported and resumed from.
 */
#include "asm.h"
#include "ktest.h"
#include "mm.h"
#include "platform.h"
#include "pvops.h"
#include "trap.h"
#include "xen.h"

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

/* Calls a `ret` at `at`; true if the fetch faulted and was fixed up. */
static bool fetch_faults(const void *at)
{
	uint64_t before = fault_count();
	asm volatile("1: call *%0\n2:\n" EXTABLE_JUMP("1b", "2b", "2b")
		     :
		     : "r"(at)
		     : "memory");
	return fault_count() == before + 1 && last_fault.vector == VEC_PF &&
	       (last_fault.error & 16) && last_fault.cr2 == (uint64_t)at;
}

/* fetch_faults() with a `ret` planted at `at` and the old byte put back. */
static bool ret_at_faults(uint8_t *at)
{
	unsigned long fl = irq_save();
	uint8_t old = *at;
	*(volatile uint8_t *)at = 0xc3;
	bool faulted = fetch_faults(at);
	*(volatile uint8_t *)at = old;
	irq_restore(fl);
	return faulted;
}

/*
 * Nothing but text is executable where the CPU has NX: .bss, allocator
 * pages, and under Xen PV what Xen mapped next to the image.
 */
KTEST(traps, data_not_executable)
{
	static uint8_t ret_insn[16] = {0xc3};
	if (!mmu_nx_bit())
		KT_SKIP(t, "no NX on this CPU");
	KT_EXPECT(t, fetch_faults(ret_insn), "executing .bss succeeded");

	uint64_t pa = pmm_alloc();
	KT_ASSERT(t, pa, "no page");
	uint8_t *page = phys_to_virt(pa);
	memset(page, 0xc3, PAGE_SIZE);
	KT_EXPECT(t, fetch_faults(page),
		  "executing allocator page %p succeeded", page);
	pmm_free(pa);

	if (platform->id != PLATFORM_XEN_PV)
		return;
	const start_info_t *si = xen_start_info;
	uintptr_t si_page = ALIGN_DOWN((uintptr_t)si, PAGE_SIZE);
	const struct {
		const char *what;
		uintptr_t at;
	} xen_pages[] = {
	    {"start_info", si_page + PAGE_SIZE - 1},
	    {"the P2M list's first page", (uintptr_t)xen_p2m},
	    {"the P2M list's last page", (uintptr_t)&xen_p2m[si->nr_pages - 1]},
	    {"Xen's boot stack", si->pt_base + si->nr_pt_frames * PAGE_SIZE},
	    {"the mapping below the image", KERNEL_VBASE},
	};
	for (unsigned i = 0; i < ARRAY_SIZE(xen_pages); i++)
		KT_EXPECT(t, ret_at_faults((uint8_t *)xen_pages[i].at),
			  "executing %s (%#lx) succeeded", xen_pages[i].what,
			  xen_pages[i].at);
}
