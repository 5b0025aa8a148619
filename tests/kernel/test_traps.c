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

/*
 * Writes `ff 15 disp32` (call *disp32(%rip)) at the start of the scratch
 * text so that it reads its target from `ptr`; returns the address after
 * it, where such a call returns to. The old bytes go to `saved`.
 */
static uint64_t plant_call_through(uint64_t ptr, uint8_t saved[6])
{
	extern uint8_t pvop_poke_scratch[];
	uint64_t ret = (uint64_t)pvop_poke_scratch + 6;
	int32_t d = (int32_t)(ptr - ret);
	uint8_t insn[6] = {0xff, 0x15};

	BUG_ON(ret + d != ptr);
	memcpy(insn + 2, &d, 4);
	memcpy(saved, pvop_poke_scratch, 6);
	text_poke(pvop_poke_scratch, insn, 6);
	return ret;
}

static void unplant(const uint8_t saved[6])
{
	extern uint8_t pvop_poke_scratch[];
	text_poke(pvop_poke_scratch, saved, 6);
}

/* 0x10: the NULL page, never mapped (traps.page_fault_null). */
#define UNMAPPED 0x10UL

/*
 * The call check reads the pointer of a `call *disp32(%rip)`; one that
 * is not mapped must make it say "no call", not fault.
 */
KTEST(traps, call_check_reads_safely)
{
	static uint64_t ptr;
	uint8_t saved[6];
	uint64_t target = (uint64_t)&ptr; /* any address, not called */

	ptr = target;
	uint64_t ret = plant_call_through((uint64_t)&ptr, saved);
	bool good = trap_call_to(ret, target);
	unplant(saved);
	KT_EXPECT(t, good, "call *disp32(%%rip) through a good pointer missed");

	ret = plant_call_through(UNMAPPED, saved);
	uint64_t before = fault_count();
	bool bad = trap_call_to(ret, target);
	uint64_t after = fault_count();
	unplant(saved);
	KT_EXPECT(t, !bad, "a call through unmapped %#lx matched", UNMAPPED);
	KT_EXPECT(t, after == before,
		  "the probe's fault was left in last_fault");
}

/*
 * The fixup path reads [rsp] of the faulting frame (EXT_RET and fetch
 * faults), and for a fetch fault the pointer of the call before it. A junk
 * frame must give "not fixed up" (a clean fatal report), not a fault.
 */
KTEST(traps, fixup_reads_frame_safely)
{
	extern const struct extable_entry __extable_start[], __extable_end[];
	static uint64_t data_word; /* a fetch target with no fixup entry */
	uint64_t target = (uint64_t)&data_word, before = fault_count();
	struct trap_frame f = {
	    .vector = VEC_PF, .error = 0x11, .rip = target, .rsp = UNMAPPED};
	struct trap_frame f0 = f;

	KT_EXPECT(t, !trap_fixup(&f, target),
		  "fetch fault, rsp unmapped: fixed up");
	KT_EXPECT(t, !memcmp(&f, &f0, sizeof(f)), "frame changed");

	uint8_t saved[6];
	uint64_t stack[2] = {plant_call_through(UNMAPPED, saved), 0};
	f.rsp = (uint64_t)stack;
	f0 = f;
	bool fixed = trap_fixup(&f, target);
	unplant(saved);
	KT_EXPECT(t, !fixed,
		  "fetch fault, [rsp] after a call through unmapped memory: "
		  "fixed up");
	KT_EXPECT(t, !memcmp(&f, &f0, sizeof(f)), "frame changed");

	const struct extable_entry *e = __extable_start;
	while (e < __extable_end && e->kind != EXT_RET)
		e++;
	KT_ASSERT(t, e < __extable_end, "no EXT_RET entry in .extable");
	f = (struct trap_frame){
	    .vector = VEC_GP, .rip = e->insn, .rsp = UNMAPPED};
	f0 = f;
	KT_EXPECT(t, !trap_fixup(&f, 0), "EXT_RET, rsp unmapped: fixed up");
	KT_EXPECT(t, !memcmp(&f, &f0, sizeof(f)), "frame changed");
	KT_EXPECT(t, fault_count() == before,
		  "a probe's fault was left in last_fault");
}
