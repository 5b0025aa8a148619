/*
 * patch_seam.c - the kernel's side of the patch seam (patch_seam.h): the
 * lock, the interrupt state and the private poke mapping.
 *
 * The poke mapping is a second set of page tables, built once per boot by
 * the platform (native: mmu_poke_tables(); Xen PV: xen_poke_tables()):
 * the kernel's own top level plus one extra top-level slot, POKE_BASE,
 * holding a writable, no-execute alias of every text page. Entering it is
 * one CR3 load (a hypercall under Xen) and leaving it another, which also
 * flushes the alias from this CPU's TLB. Only code between the two runs
 * with the alias mapped (the writer of a batch, and a CPU making QEMU drop
 * a stale translation in #BP with one no-op locked write, patch/live.c),
 * so nothing else can write through it: unlike a window in the shared
 * kernel tables, no other code sees it. The CR3 to go back to and the
 * nesting depth are kept per CPU (struct percpu).
 *
 * Other CPUs either run on while text changes (the live path, patch/live.c:
 * seam_sync_others() is one sync round, smp_sync_others in guest/smp.c)
 * or are parked: seam_others_stop() parks every other online CPU in a
 * loop with no patch site in it (smp_stop_others) and seam_others_resume()
 * lets them go.
 */
#include "patch_seam.h"
#include "alternative.h"
#include "hypercall.h"
#include "kernel.h"
#include "layout.h"
#include "percpu.h"
#include "platform.h"
#include "pvops.h"
#include "smp.h"

static uint64_t poke_cr3;

/*
 * The CR3 loads and the serialisation around a batch use raw operations,
 * not pvop sites: the batch may just have rewritten any pvop site, and
 * those bytes must not run before the serialisation that makes them
 * safe to fetch. (scripts/check_sites.py allows seam_raw_* to hold raw
 * privileged instructions.) Under Xen PV a CR3 load is MMUEXT_NEW_BASEPTR,
 * a call into the hypercall page, which is not a patch site either.
 */
static __attribute__((noinline)) uint64_t seam_raw_read_cr3(void)
{
	uint64_t v;
	if (platform->id == PLATFORM_XEN_PV)
		return this_cpu()->cr3;
	asm volatile("mov %%cr3, %0" : "=r"(v));
	return v;
}

static __attribute__((noinline)) void seam_raw_write_cr3(uint64_t v)
{
	if (platform->id == PLATFORM_XEN_PV) {
		struct mmuext_op op = {.cmd = MMUEXT_NEW_BASEPTR,
				       .arg1.mfn = v >> 12};
		if (HYPERVISOR_mmuext_op(&op, 1))
			panic("patch: Xen refused the CR3 load %#lx", v);
		return;
	}
	asm volatile("mov %0, %%cr3" ::"r"(v) : "memory");
}

/*
 * cpuid serialises, natively and in a PV guest's ring 3 alike; where the
 * CPU has it, `serialize` does the same without the VM exit or Xen trap
 * a cpuid costs (an alternative, alt/). The site is rewritten only by the
 * boot's alternatives batch, whose writes are done (and the CR3 load
 * leaving the poke mapping, itself serialising, has run) before this
 * executes it; both forms serialise.
 */
static __attribute__((noinline)) void seam_raw_serialise(void)
{
	uint32_t a = 0, b, c = 0, d;
	asm volatile(ALTERNATIVE("cpuid", "serialize", X86_FEATURE_SERIALIZE)
		     : "+a"(a), "=b"(b), "+c"(c), "=d"(d)::"memory");
}

void seam_lock(struct seam_lock *l)
{
	/* The holder may be a live writer waiting for our acknowledgement. */
	while (__atomic_exchange_n(&l->held, 1, __ATOMIC_ACQUIRE))
		while (__atomic_load_n(&l->held, __ATOMIC_RELAXED)) {
			smp_serve_pending();
			asm volatile("pause");
		}
}

void seam_unlock(struct seam_lock *l)
{
	__atomic_store_n(&l->held, 0, __ATOMIC_RELEASE);
}

unsigned long seam_irq_save(void)
{
	return irq_save();
}

void seam_irq_restore(unsigned long flags)
{
	irq_restore(flags);
}

void patch_seam_init(void)
{
	poke_cr3 = platform->poke_tables();
}

uintptr_t seam_poke_enter(void)
{
	struct percpu *p = this_cpu();

	if (!poke_cr3)
		panic("patch: text written before the poke mapping exists");
	if (p->poke_depth++) /* nested (a #BP inside a write): in it already */
		return POKE_BASE;
	p->poke_saved_cr3 = seam_raw_read_cr3();
	seam_raw_write_cr3(poke_cr3);
	return POKE_BASE;
}

void seam_poke_leave(void)
{
	struct percpu *p = this_cpu();

	if (!p->poke_depth)
		panic("patch: poke mapping left but never entered");
	if (--p->poke_depth)
		return;
	seam_raw_write_cr3(p->poke_saved_cr3);
}

void seam_others_stop(void)
{
	smp_stop_others();
}

void seam_others_resume(void)
{
	smp_resume_others();
}

void seam_serialise(void)
{
	seam_raw_serialise();
}

unsigned seam_cpu(void)
{
	return (unsigned)this_cpu()->cpu;
}

bool seam_others_online(void)
{
	return smp_online > 1;
}

unsigned seam_sync_others(void)
{
	return smp_sync_others();
}

void seam_sync_serve(void)
{
	smp_sync_serve();
}
