/*
 * test_pvops.c - every site holds what the backend meant, and every op
 * does its job, whatever the platform and patch mode.
 */
#include "cmdline.h"
#include "ktest.h"
#include "mm.h"
#include "patch.h"
#include "percpu.h"
#include "platform.h"
#include "pvop_backend.h"
#include "timer.h"
#include "trap.h"

/* Sites that differ from what the current backend and mode call for. */
static unsigned sites_off_plan(struct ktest_ctx *t)
{
	unsigned bad = 0;
	for_each_pvop_record(r)
	{
		uint8_t want[PVOP_MAX_SLOT];
		int kind = pvop_expected(r, want);
		const uint8_t *cur = (const uint8_t *)patch_site_addr(r);
		bool ok = kind == PVOP_KIND_INDIRECT
			      ? pvop_site_is_original(r, cur)
			      : !memcmp(cur, want, r->len);
		/* The engine's belief must match the text too. */
		uint8_t believed[PATCH_MAX_LEN];
		patch_current(r, believed);
		ok = ok && !memcmp(cur, believed, r->len);
		if (!ok && bad++ < 5)
			ktest_fail(
			    t, __FILE__, __LINE__,
			    "site %lx (%s) differs from plan: text "
			    "%02x %02x %02x, plan %02x %02x %02x, engine "
			    "%02x %02x %02x",
			    (unsigned long)patch_site_addr(r),
			    pvop_names[r->arg], cur[0], cur[1], cur[2], want[0],
			    want[1], want[2], believed[0], believed[1],
			    believed[2]);
	}
	return bad;
}

KTEST(pvops, sites_hold_intended_bytes)
{
	unsigned bad = sites_off_plan(t);
	KT_EXPECT(t, bad == 0, "%u of %u sites differ", bad, pvop_stats.total);
}

KTEST(pvops, boot_report_promises)
{
	const unsigned(*k)[PVOP_KIND_NR + 1] = pvop_stats.sites;
	static const int irq_ops[] = {PVOP_IRQ_DISABLE, PVOP_IRQ_ENABLE,
				      PVOP_SAVE_FL, PVOP_RESTORE_FL};

	if (pvop_mode != PVOP_MODE_INLINE)
		KT_SKIP(t, "patch mode is not inline");
	if (pvop_current->id == PVOP_BACKEND_NATIVE ||
	    pvop_current->id == PVOP_BACKEND_KVM)
		for (unsigned i = 0; i < ARRAY_SIZE(irq_ops); i++) {
			const unsigned *c = k[irq_ops[i]];
			KT_EXPECT(t,
				  c[PVOP_KIND_INLINE] && !c[PVOP_KIND_CALL] &&
				      !c[PVOP_KIND_INDIRECT],
				  "%s: inline %u call %u indirect %u",
				  pvop_names[irq_ops[i]], c[PVOP_KIND_INLINE],
				  c[PVOP_KIND_CALL], c[PVOP_KIND_INDIRECT]);
		}
	if (pvop_current->id == PVOP_BACKEND_XEN) {
		const unsigned *c = k[PVOP_IRQ_DISABLE];
		KT_EXPECT(t, c[PVOP_KIND_INLINE] && !c[PVOP_KIND_CALL],
			  "xen irq_disable: inline %u call %u",
			  c[PVOP_KIND_INLINE], c[PVOP_KIND_CALL]);
	}
}

KTEST(pvops, repatch_is_idempotent)
{
	uint64_t writes = patch_stats.writes;
	struct pvop_stats before = pvop_stats;

	pvop_patch_all(pvop_current, pvop_mode, pvop_pad);
	KT_EXPECT(t, patch_stats.writes == writes,
		  "second patch pass wrote %lu times",
		  patch_stats.writes - writes);
	KT_EXPECT(t,
		  !memcmp(before.sites, pvop_stats.sites, sizeof(before.sites)),
		  "second pass counted different kinds");
}

/* Every op does its job (run after each re-patch below). */
static void ops_behave(struct ktest_ctx *t, const char *step)
{
	unsigned long fl = irq_save();
	bool off = !irqs_enabled();
	irq_enable();
	bool on = irqs_enabled();
	irq_disable();
	bool off2 = !(save_fl() & X86_EFLAGS_IF);
	irq_restore(fl);
	KT_EXPECT(t, off && on && off2, "%s: irq ops (off %d on %d off %d)",
		  step, off, on, off2);
	KT_EXPECT(t, (save_fl() & X86_EFLAGS_IF) == (fl & X86_EFLAGS_IF),
		  "%s: restore_fl did not restore", step);

	unsigned long cr3 = read_cr3();
	write_cr3(cr3);
	KT_EXPECT(t, read_cr3() == cr3, "%s: cr3 %#lx then %#lx", step, cr3,
		  read_cr3());
	struct cpuid_regs a = cpuid(0, 0);
	KT_EXPECT(t, !memcmp(&a.ebx, cpu_vendor(), 4), "%s: cpuid vendor",
		  step);
	const uint32_t kernel_gs_base = 0xc0000102;
	uint64_t old = read_msr(kernel_gs_base);
	write_msr(kernel_gs_base, 0xffff800000abc000ULL);
	KT_EXPECT(t, read_msr(kernel_gs_base) == 0xffff800000abc000ULL,
		  "%s: msr roundtrip", step);
	write_msr(kernel_gs_base, old);
	uint64_t c0 = clock_read(), c1 = clock_read();
	KT_EXPECT(t, c1 >= c0, "%s: clock went back", step);
	io_delay();
	flush_tlb_one((unsigned long)&pvop_stats);
	read_cr2();
}

static void switch_to(struct ktest_ctx *t, enum pvop_mode mode,
		      const char *step)
{
	pvop_patch_all(pvop_current, mode, pvop_pad);
	unsigned bad = sites_off_plan(t);
	KT_EXPECT(t, bad == 0, "%s: %u sites differ from plan", step, bad);
	ops_behave(t, step);
}

/*
 * The ordinary sites go inline -> indirect -> direct call -> inline at run
 * time, each step one engine batch validated against the engine's own
 * record of the last write; then back to the boot mode.
 */
KTEST(pvops, repatch_through_every_mode)
{
	enum pvop_mode boot_mode = pvop_mode;
	uint64_t batches = patch_stats.batches;

	switch_to(t, PVOP_MODE_INLINE, "inline");
	switch_to(t, PVOP_MODE_INDIRECT, "indirect");
	unsigned indirect = 0;
	for (int op = 0; op < PVOP_NR; op++)
		indirect += pvop_stats.sites[op][PVOP_KIND_INDIRECT];
	KT_EXPECT(t, indirect == pvop_stats.total - pvop_stats.pinned,
		  "indirect: %u of %u ordinary sites indirect", indirect,
		  pvop_stats.total - pvop_stats.pinned);
	switch_to(t, PVOP_MODE_CALL, "call");
	unsigned inl = 0;
	for (int op = 0; op < PVOP_NR; op++)
		inl += pvop_stats.sites[op][PVOP_KIND_INLINE];
	KT_EXPECT(t, inl == 0, "call: %u ordinary sites still inline", inl);
	switch_to(t, PVOP_MODE_INLINE, "inline again");
	unsigned written = 0;
	for_each_pvop_site(r) written += patch_form(r) == PATCH_WRITTEN;
	KT_EXPECT(t, written > 0, "no site in the written state");
	if (boot_mode != PVOP_MODE_INLINE)
		switch_to(t, boot_mode, "boot mode");
	KT_EXPECT(t, patch_stats.batches > batches, "no batch was written");
}

/* Writes a pattern and puts the old bytes back; returns false on mismatch. */
static bool poke_roundtrip(uint8_t *at, unsigned len)
{
	uint8_t pattern[32], back[32];

	memcpy(back, at, len);
	for (unsigned i = 0; i < len; i++)
		pattern[i] = (uint8_t)(0xa0 + i);
	text_poke(at, pattern, len);
	bool wrote = !memcmp(at, pattern, len);
	text_poke(at, back, len);
	return wrote && !memcmp(at, back, len);
}

KTEST(pvops, text_poke_roundtrip)
{
	/* 64 bytes of .text that cross a page at +32 (kernel.ld.S). */
	extern uint8_t pvop_poke_scratch[];

	KT_EXPECT(t, poke_roundtrip(pvop_poke_scratch, 24),
		  "write within one page did not land or was not undone");
	KT_EXPECT(
	    t, poke_roundtrip(pvop_poke_scratch + 20, 24),
	    "write across a page boundary did not land or was not undone");
}

KTEST(pvops, cr3_roundtrip)
{
	unsigned long cr3 = read_cr3();
	KT_ASSERT(t, cr3 && !(cr3 & 0xfff), "cr3 %#lx", cr3);
	write_cr3(cr3);
	KT_EXPECT(t, read_cr3() == cr3, "cr3 %#lx after writing %#lx",
		  read_cr3(), cr3);
}

/* Native: switch to a copy of the PML4 and back. */
KTEST(pvops, cr3_switch_to_copy)
{
	if (platform->id == PLATFORM_XEN_PV)
		KT_SKIP(t, "Xen PV: see xen.cr3_switch_to_pinned_copy");
	unsigned long old = read_cr3();
	uint64_t pa = pmm_alloc();
	KT_ASSERT(t, pa, "no page");
	memcpy(phys_to_virt(pa), phys_to_virt(old & PTE_ADDR), PAGE_SIZE);
	unsigned long fl = irq_save();
	write_cr3(pa);
	unsigned long now = read_cr3();
	volatile uint64_t probe = pvop_stats.total; /* kernel data reachable */
	write_cr3(old);
	irq_restore(fl);
	KT_EXPECT(t, (now & PTE_ADDR) == pa, "cr3 %#lx, want %#lx", now, pa);
	KT_EXPECT(t, probe == pvop_stats.total, "kernel data unreadable");
	KT_EXPECT(t, read_cr3() == old, "cr3 not restored");
	pmm_free(pa);
}

/* Remap a window without flushing, then flush: the new frame shows. */
KTEST(pvops, flush_tlb_one_shows_pte_change)
{
	static uint8_t frames[2][PAGE_SIZE] __attribute__((aligned(4096)));
	static uint8_t window[PAGE_SIZE] __attribute__((aligned(4096)));
	volatile uint64_t *w = (volatile uint64_t *)window;

	*(volatile uint64_t *)frames[0] = 0x1111;
	*(volatile uint64_t *)frames[1] = 0x2222;
	unsigned long fl = irq_save();
	platform->alias_map((uintptr_t)window, (uintptr_t)frames[0]);
	flush_tlb_one((uintptr_t)window);
	uint64_t first = *w;
	platform->alias_unmap((uintptr_t)window);
	platform->alias_map((uintptr_t)window, (uintptr_t)frames[1]);
	flush_tlb_one((uintptr_t)window);
	uint64_t second = *w;
	platform->alias_unmap((uintptr_t)window);
	flush_tlb_one((uintptr_t)window);
	irq_restore(fl);
	KT_EXPECT(t, first == 0x1111, "first mapping reads %#lx", first);
	KT_EXPECT(t, second == 0x2222, "after flush reads %#lx", second);
}

KTEST(pvops, clock_monotonic)
{
	uint64_t prev = clock_read();
	for (int i = 0; i < 2000; i++) {
		uint64_t now = clock_read();
		KT_ASSERT(t, now >= prev, "clock went back %lu -> %lu", prev,
			  now);
		prev = now;
	}
}

KTEST(pvops, clock_agrees_with_ticks)
{
	irq_enable();
	uint64_t start = ticks();
	while (ticks() == start)
		; /* align to a tick edge */
	uint64_t t0 = clock_read(), k0 = ticks();
	uint64_t limit = t0 + 2000000000ULL;
	while (ticks() < k0 + 10 && clock_read() < limit)
		;
	uint64_t dt = clock_read() - t0, dk = ticks() - k0;
	uint64_t want = dk * (1000000000ULL / TICK_HZ);
	KT_ASSERT(t, dk >= 10, "only %lu ticks in 2 s of clock", dk);
	KT_EXPECT(t, dt >= want / 2 && dt <= want * 2,
		  "%lu ticks took %lu ns of clock_read (expected ~%lu)", dk, dt,
		  want);
}

KTEST(pvops, msr_roundtrip)
{
	const uint32_t kernel_gs_base = 0xc0000102; /* unused by tinypv */
	uint64_t old = read_msr(kernel_gs_base);
	write_msr(kernel_gs_base, 0xffff800012345000ULL);
	uint64_t got = read_msr(kernel_gs_base);
	write_msr(kernel_gs_base, old);
	KT_EXPECT(t, got == 0xffff800012345000ULL, "read back %#lx", got);
	KT_EXPECT(t, read_msr(kernel_gs_base) == old, "not restored");
}

KTEST(pvops, cpuid_leaves)
{
	struct cpuid_regs a = cpuid(0, 0), b = cpuid(0, 0);
	char vendor[13] = {0};
	memcpy(vendor, &a.ebx, 4);
	memcpy(vendor + 4, &a.edx, 4);
	memcpy(vendor + 8, &a.ecx, 4);
	KT_EXPECT(t, !strcmp(vendor, cpu_vendor()), "vendor '%s' vs '%s'",
		  vendor, cpu_vendor());
	KT_EXPECT(t, !memcmp(&a, &b, sizeof(a)), "leaf 0 changed");
	KT_EXPECT(t, cpuid(1, 0).eax == cpuid(1, 0).eax, "leaf 1 changed");
	/* Under Xen PV, only forced emulation shows Xen's own leaves. */
	if (platform->id == PLATFORM_XEN_PV)
		KT_EXPECT(t, !strcmp(boot.hv_signature, "XenVMMXenVMM"),
			  "signature '%s' under Xen PV", boot.hv_signature);
	if (platform->id == PLATFORM_KVM)
		KT_EXPECT(t, !strcmp(boot.hv_signature, "KVMKVMKVM"),
			  "signature '%s' under KVM", boot.hv_signature);
}

KTEST(pvops, io_delay_and_halt_return)
{
	io_delay();
	io_delay();
	irq_enable();
	uint64_t before = ticks();
	halt(); /* interrupts on: the next tick wakes us */
	KT_EXPECT(t, ticks() > before, "halt returned without a tick");
}

KTEST(pvops, nop_ops_are_nops)
{
	const unsigned *k = pvop_stats.sites[PVOP_IO_DELAY];
	if (!pvop_current->op[PVOP_IO_DELAY].nop)
		KT_SKIP(t, "io_delay is real on this backend");
	if (pvop_mode != PVOP_MODE_INLINE)
		KT_SKIP(t, "patch mode is not inline");
	KT_EXPECT(t, k[PVOP_KIND_NOP] == k[0] + k[1] + k[2] + k[3],
		  "io_delay sites: %u nop of %u", k[PVOP_KIND_NOP],
		  k[0] + k[1] + k[2] + k[3]);
}

/* Text is read-only before the first site is patched, on every platform:
 * the engine writes through its private poke mapping. */
KTEST(pvops, text_read_only_while_patching)
{
	KT_EXPECT(t, boot.text_ro_when_patched,
		  "kernel text was writable when boot patching began");
}

/*
 * A *_safe MSR access learns of its own fault only: another fixed-up
 * fault taken while it runs (here: a ud2 the read_msr function takes and
 * fixes up before doing the real rdmsr) must not make it report failure.
 * The read_msr sites are switched to the indirect call so the op really
 * runs that function, then put back.
 */
uint64_t test_faulting_read_msr(void);
asm(".pushsection .text\n"
    ".globl test_faulting_read_msr\n"
    "test_faulting_read_msr:\n"
    "1:	ud2\n"
    "2:	jmp pvstub_native_read_msr\n" EXTABLE_JUMP("1b", "2b",
						   "2b") ".popsection\n");

KTEST(pvops, safe_msr_ignores_other_faults)
{
	enum pvop_mode mode = pvop_mode;
	uint64_t v = 0, faults = fault_count();

	pvop_patch_all(pvop_current, PVOP_MODE_INDIRECT, pvop_pad);
	pv_ops.fn[PVOP_READ_MSR] = (void *)test_faulting_read_msr;
	bool ok = read_msr_safe(0xc0000080, &v); /* EFER */
	pvop_patch_all(pvop_current, mode, pvop_pad);
	KT_EXPECT(t, fault_count() == faults + 1,
		  "the read_msr function took %lu faults, not 1",
		  fault_count() - faults);
	KT_EXPECT(t, ok, "read_msr_safe reported another code's fault");
	KT_EXPECT(t, v & (1 << 10), "EFER %#lx lacks LMA", v);
}

/*
 * The boot refuses records whose fields the ABI does not define (the build
 * checker does too, scripts/check_sites.py): each record below is a copy
 * of a real irq_disable site's record with one field broken, at the same
 * address so its relative offsets are re-aimed at the same site.
 */
static struct patch_site broken_rec;

static const char *problem_with(const struct patch_site *real,
				void (*breakit)(struct patch_site *))
{
	broken_rec = *real;
	broken_rec.site =
	    (int32_t)(patch_site_addr(real) - (uintptr_t)&broken_rec.site);
	broken_rec.payload = (int32_t)(patch_site_payload(real) -
				       (uintptr_t)&broken_rec.payload);
	breakit(&broken_rec);
	return patch_record_problem(&broken_rec, NULL);
}

static void nothing_broken(struct patch_site *r)
{
	(void)r;
}
static void all_clobbers(struct patch_site *r)
{
	r->arg2 = 0xffff;
}
static void undefined_flag(struct patch_site *r)
{
	r->flags = 0x80;
}
static void two_modes(struct patch_site *r)
{
	r->flags = PVOP_SITE_FORCE_CALL | PVOP_SITE_FORCE_INLINE;
}
static void reserved_set(struct patch_site *r)
{
	r->reserved = 1;
}
static void kind_zero(struct patch_site *r)
{
	r->kind = 0;
}
static void kind_without_client(struct patch_site *r)
{
	r->kind = PATCH_KIND_SCALL;
}
static void op_out_of_range(struct patch_site *r)
{
	r->arg = PVOP_NR;
}
static void wrong_slot(struct patch_site *r)
{
	r->payload += 8;
}
static void wrong_length(struct patch_site *r)
{
	r->len++;
}

KTEST(pvops, boot_refuses_undefined_record_fields)
{
	static const struct {
		const char *name;
		void (*breakit)(struct patch_site *);
	} cases[] = {
	    {"clobbers 0xffff", all_clobbers},
	    {"undefined flag bit", undefined_flag},
	    {"two pinned modes", two_modes},
	    {"reserved byte set", reserved_set},
	    {"kind 0", kind_zero},
	    {"kind with no client", kind_without_client},
	    {"op out of range", op_out_of_range},
	    {"payload not the op's slot", wrong_slot},
	    {"length not the op's slot", wrong_length},
	};
	const struct patch_site *real = NULL;
	for_each_pvop_site(r) if (!real && r->arg == PVOP_IRQ_DISABLE &&
				  !r->flags) real = r;
	KT_ASSERT(t, real, "no irq_disable site");
	const char *ok = problem_with(real, nothing_broken);
	KT_ASSERT(t, !ok, "the unbroken copy is refused: %s", ok);
	for (unsigned i = 0; i < ARRAY_SIZE(cases); i++) {
		const char *why = problem_with(real, cases[i].breakit);
		KT_EXPECT(t, why, "%s: accepted", cases[i].name);
	}
}

/*
 * A site is skipped when its tag says it holds the plan asked for. Tags
 * are unique per prepare(): a re-prepared backend whose op changed, even
 * in the same struct, must rewrite that op's sites, and switching back
 * must rewrite them again.
 */
KTEST(pvops, reprepared_backend_rewrites_its_sites)
{
	static struct pvop_backend alt;
	const struct pvop_backend *orig = pvop_current;
	enum pvop_mode mode = pvop_mode;

	if (mode != PVOP_MODE_INLINE)
		KT_SKIP(t, "patch mode is not inline");
	alt = *orig;
	/*
	 * io_delay: "nothing" if it was real; if it was nothing, a direct
	 * call to the bare `ret` (safe on every platform, unlike a port).
	 */
	if (orig->op[PVOP_IO_DELAY].nop)
		alt.op[PVOP_IO_DELAY] = (struct pvop_impl){
		    .call = (void *)pvstub_nothing, .call_clobbers = 0};
	else
		alt.op[PVOP_IO_DELAY] = PVOP_IMPL_NOP;
	pvop_backend_prepare(&alt);
	uint64_t writes = patch_stats.writes;
	pvop_patch_all(&alt, mode, pvop_pad);
	const unsigned *k = pvop_stats.sites[PVOP_IO_DELAY];
	unsigned io_sites = k[PVOP_KIND_NOP] + k[PVOP_KIND_CALL];
	KT_EXPECT(t, patch_stats.writes - writes >= io_sites && io_sites,
		  "%lu writes for %u io_delay sites",
		  patch_stats.writes - writes, io_sites);
	KT_EXPECT(t, !sites_off_plan(t), "sites differ from the new plan");
	io_delay();
	/* The same struct, changed back and prepared again. */
	alt.op[PVOP_IO_DELAY] = orig->op[PVOP_IO_DELAY];
	pvop_backend_prepare(&alt);
	writes = patch_stats.writes;
	pvop_patch_all(&alt, mode, pvop_pad);
	KT_EXPECT(t, patch_stats.writes - writes >= io_sites,
		  "%lu writes switching io_delay back",
		  patch_stats.writes - writes);
	KT_EXPECT(t, !sites_off_plan(t), "sites differ after switching back");
	pvop_patch_all(orig, mode, pvop_pad);
	KT_EXPECT(t, !sites_off_plan(t), "sites differ from the boot plan");
}
