/*
 * mmu.c - Xen PV: no-execute for everything Xen mapped except text.
 *
 * Xen's domain builder maps all of [VIRT_BASE, end of its padding) for us:
 * the image, the P2M list, start_info, the bootstrap page tables and stack,
 * and the padding the allocator gets. Every page is writable and
 * executable, except the page tables, which Xen maps read-only.
 * xen_nx_outside_text() walks those bootstrap tables and sets NX on every
 * page they map outside the image's text, keeping each page's frame and
 * whether it is writable. The updates are set_pte calls in one lazy MMU
 * section (so xenmmu= decides how they reach Xen), then one flush.
 */
#include "hypercall.h"
#include "kernel.h"
#include "mm.h"
#include "platform.h"
#include "pvops.h"
#include "xen.h"

#define L4_XEN_FIRST ((HYPERVISOR_VIRT_START >> 39) & 511)
#define L4_XEN_LAST (((HYPERVISOR_VIRT_END - 1) >> 39) & 511)

/* The bootstrap table an entry points at: Xen put them all at pt_base. */
static const uint64_t *table_of(uint64_t entry)
{
	uint64_t mfn = (entry & PTE_ADDR) >> PAGE_SHIFT;
	uint64_t base = xen_start_info->pt_base;

	for (uint64_t i = 0; i < xen_start_info->nr_pt_frames; i++)
		if (xen_virt_to_mfn((void *)(base + i * PAGE_SIZE)) == mfn)
			return (const uint64_t *)(base + i * PAGE_SIZE);
	panic("xen: page table mfn %#lx is not a bootstrap table", mfn);
}

/* Same frame, same writability, plus NX (the entry is a pte value). */
static void set_nx(uint64_t *entry, uint64_t pte)
{
	uint64_t flags = PTE_P | PTE_A | PTE_NX;
	if (pte & PTE_W)
		flags |= PTE_W | PTE_D;
	set_pte(entry, (pte & PTE_ADDR) | flags);
}

static void walk_l1(uint64_t *l1, uint64_t base)
{
	for (unsigned i = 0; i < 512; i++) {
		uint64_t va = base + ((uint64_t)i << 12);
		if (!(l1[i] & PTE_P) || (l1[i] & PTE_NX))
			continue;
		if (va >= (uint64_t)_text_start && va < (uint64_t)_text_end)
			continue;
		set_nx(&l1[i], l1[i]);
	}
}

/* Sign-extends a 48-bit address. */
static uint64_t canonical(uint64_t va)
{
	return (uint64_t)((int64_t)(va << 16) >> 16);
}

void xen_nx_outside_text(void)
{
	const uint64_t *l4 = (const uint64_t *)xen_start_info->pt_base;

	if (!mmu_nx_bit())
		return;
	mmu_lazy_begin();
	for (unsigned i4 = 0; i4 < 512; i4++) {
		if ((i4 >= L4_XEN_FIRST && i4 <= L4_XEN_LAST) ||
		    !(l4[i4] & PTE_P))
			continue;
		const uint64_t *l3 = table_of(l4[i4]);
		for (unsigned i3 = 0; i3 < 512; i3++) {
			if (!(l3[i3] & PTE_P))
				continue;
			uint64_t va3 =
			    canonical((uint64_t)i4 << 39 | (uint64_t)i3 << 30);
			if (l3[i3] & PTE_PS)
				panic("xen: 1 GiB page at %lx", va3);
			const uint64_t *l2 = table_of(l3[i3]);
			for (unsigned i2 = 0; i2 < 512; i2++) {
				if (!(l2[i2] & PTE_P))
					continue;
				uint64_t va2 = va3 | (uint64_t)i2 << 21;
				if (l2[i2] & PTE_PS)
					panic("xen: 2 MiB page at %lx", va2);
				walk_l1((uint64_t *)table_of(l2[i2]), va2);
			}
		}
	}
	mmu_lazy_end();
	write_cr3(read_cr3()); /* flush every changed entry at once */
}
