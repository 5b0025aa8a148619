/*
 * poke.c - the private poke page tables under Xen PV (guest/patch_seam.c).
 *
 * The same shape as natively: a copy of our L4 plus one slot, POKE_BASE,
 * whose L3/L2/L1 map every text page writable and no-execute. Xen's rules
 * for page tables apply: the four new tables are filled while still
 * ordinary writable pages, then mapped read-only, then the L4 is pinned
 * (Xen validates the whole tree once). Loading it is then one
 * MMUEXT_NEW_BASEPTR (write_cr3), and no PTE is updated per batch, so a
 * batch costs two hypercalls whatever its size.
 */
#include "hypercall.h"
#include "kernel.h"
#include "layout.h"
#include "mm.h"
#include "platform.h"
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

static void make_read_only(const void *table)
{
	uint64_t pte = mfn_entry(table, PTE_P | PTE_A | mmu_nx_bit());
	long rc = HYPERVISOR_update_va_mapping((unsigned long)table, pte,
					       UVMF_INVLPG);
	if (rc)
		panic("xen: cannot map poke table %p read-only: %ld (%s)",
		      table, rc, xen_errno_name(rc));
}

uint64_t xen_poke_tables(void)
{
	const uint64_t *kl4 = (const uint64_t *)xen_start_info->pt_base;
	uint64_t *l4 = new_table(), *l3 = new_table(), *l2 = new_table();
	uint64_t *l1 = new_table();
	/* Intermediate entries as Xen's builder made ours (user bit and all). */
	uint64_t tflags = kl4[(KERNEL_VBASE >> 39) & 511] & 0xfff;
	uint64_t text = (uint64_t)_text_start;

	memcpy(l4, kl4, PAGE_SIZE);
	l4[(POKE_BASE >> 39) & 511] = mfn_entry(l3, tflags);
	l3[(POKE_BASE >> 30) & 511] = mfn_entry(l2, tflags);
	l2[(POKE_BASE >> 21) & 511] = mfn_entry(l1, tflags);
	for (uint64_t va = text; va < (uint64_t)_text_end; va += PAGE_SIZE)
		l1[(va - text) >> PAGE_SHIFT] = mfn_entry(
		    (void *)va, PTE_P | PTE_W | PTE_A | PTE_D | mmu_nx_bit());
	make_read_only(l1);
	make_read_only(l2);
	make_read_only(l3);
	make_read_only(l4);
	struct mmuext_op pin = {.cmd = MMUEXT_PIN_L4_TABLE,
				.arg1.mfn = xen_virt_to_mfn(l4)};
	long rc = HYPERVISOR_mmuext_op(&pin, 1);
	if (rc)
		panic("xen: Xen refused to pin the poke L4: %ld (%s)", rc,
		      xen_errno_name(rc));
	return xen_virt_to_mfn(l4) << PAGE_SHIFT;
}
