/*
 * patch_seam.c - the kernel's side of the patch seam (patch_seam.h): the
 * lock, the interrupt state and the private poke mapping.
 *
 * The poke mapping is a second set of page tables, built once per boot by
 * the platform (native: mmu_poke_tables(); Xen PV: xen_poke_tables()):
 * the kernel's own top level plus one extra top-level slot, POKE_BASE,
 * holding a writable, no-execute alias of every text page. Entering it is
 * one CR3 load (a hypercall under Xen) and leaving it another, which also
 * flushes the alias from this CPU's TLB. No other CPU ever loads it, so
 * nothing else can write through the alias: unlike a window in the shared
 * kernel tables, there is nothing to race with. The CR3 to go back to is
 * kept per CPU (struct percpu).
 *
 * Other CPUs must not execute text while it changes: seam_others_stop()
 * parks every other online CPU in a loop with no patch site in it
 * (smp_stop_others, guest/smp.c) and seam_others_resume() lets them go.
 */
#include "patch_seam.h"
#include "kernel.h"
#include "layout.h"
#include "percpu.h"
#include "platform.h"
#include "pvops.h"
#include "smp.h"

static uint64_t poke_cr3;

void seam_lock(struct seam_lock *l)
{
	while (__atomic_exchange_n(&l->held, 1, __ATOMIC_ACQUIRE))
		while (__atomic_load_n(&l->held, __ATOMIC_RELAXED))
			asm volatile("pause");
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
	if (!poke_cr3)
		panic("patch: text written before the poke mapping exists");
	this_cpu()->poke_saved_cr3 = read_cr3();
	write_cr3(poke_cr3);
	return POKE_BASE;
}

void seam_poke_leave(void)
{
	write_cr3(this_cpu()->poke_saved_cr3);
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
	(void)cpuid(0, 0);
}
