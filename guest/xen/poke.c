/*
 * poke.c - the private poke page tables under Xen PV (guest/patch_seam.c).
 *
 * The same shape as natively: a copy of our L4 plus one slot, POKE_BASE,
 * whose L3/L2/L1 map every text page writable and no-execute. Xen's rules
 * for page tables apply: the four new tables are filled while still
 * ordinary writable pages, then made tables with alloc_pt (mapped
 * read-only and pinned, bottom up: guest/xen/pgtable.c). Loading it is then
 * one MMUEXT_NEW_BASEPTR (write_cr3), and no PTE is updated per batch, so
 * a batch costs two hypercalls whatever its size.
 */
#include "hypercall.h"
#include "kernel.h"
#include "layout.h"
#include "mm.h"
#include "platform.h"
#include "pvops.h"
#include "xen.h"

static uint64_t *new_table(void)
{
	uint64_t pa = pmm_alloc();
	if (!pa)
		panic("xen: no memory for the poke tables");
	return phys_to_virt(pa);
}

static uint64_t mfn_entry(const void *table, uint64_t flags)
{
	return xen_virt_to_mfn(table) << PAGE_SHIFT | flags;
}

uint64_t xen_poke_tables(void)
{
	const uint64_t *kl4 = (const uint64_t *)xen_start_info->pt_base;
	uint64_t *l4 = new_table(), *l3 = new_table(), *l2 = new_table();
	uint64_t *l1 = new_table();
	/* Intermediate entries: present, writable, and user as every entry
	 * of a 64-bit PV guest's kernel tables is (it runs in ring 3). */
	uint64_t tflags = PTE_P | PTE_W | PTE_U | PTE_A;
	uint64_t text = (uint64_t)_text_start;

	if (kl4[(POKE_BASE >> 39) & 511] & PTE_P)
		panic("xen: the poke slot of the L4 is already in use");
	memcpy(l4, kl4, PAGE_SIZE);
	l4[(POKE_BASE >> 39) & 511] = mfn_entry(l3, tflags);
	l3[(POKE_BASE >> 30) & 511] = mfn_entry(l2, tflags);
	l2[(POKE_BASE >> 21) & 511] = mfn_entry(l1, tflags);
	for (uint64_t va = text; va < (uint64_t)_text_end; va += PAGE_SIZE)
		l1[(va - text) >> PAGE_SHIFT] = mfn_entry(
		    (void *)va, PTE_P | PTE_W | PTE_A | PTE_D | mmu_nx_bit());
	/* Bottom up, so each pin finds the tables below already typed. */
	alloc_pt((uint64_t)l1 - KERNEL_VBASE, 1);
	alloc_pt((uint64_t)l2 - KERNEL_VBASE, 2);
	alloc_pt((uint64_t)l3 - KERNEL_VBASE, 3);
	alloc_pt((uint64_t)l4 - KERNEL_VBASE, 4);
	return xen_virt_to_mfn(l4) << PAGE_SHIFT;
}
