/*
 * mmu.c - Xen PV: no-execute for everything Xen mapped except text.
 *
 * Xen's domain builder maps all of [VIRT_BASE, end of its padding) for us:
 * the image, the P2M list, start_info, the bootstrap page tables and stack,
 * and the padding the allocator gets. Every page is writable and
 * executable, except the page tables, which Xen maps read-only.
 * xen_nx_outside_text() walks those bootstrap tables and sets NX on every
 * page they map outside the image's text, keeping each page's frame and
 * whether it is writable. The updates go to Xen in batches, one multicall
 * of update_va_mapping calls each.
 */
#include "hypercall.h"
#include "kernel.h"
#include "mm.h"
#include "platform.h"
#include "xen.h"

#define BATCH_MAX 64
#define L4_XEN_FIRST ((HYPERVISOR_VIRT_START >> 39) & 511)
#define L4_XEN_LAST (((HYPERVISOR_VIRT_END - 1) >> 39) & 511)

static struct multicall_entry batch[BATCH_MAX];
static unsigned batch_nr;

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

/* The last update of a batch flushes this CPU's TLB for all of them. */
static void batch_flush(void)
{
	if (!batch_nr)
		return;
	batch[batch_nr - 1].args[2] = UVMF_TLB_FLUSH | UVMF_LOCAL;
	long rc = HYPERVISOR_multicall(batch, batch_nr);
	if (rc)
		panic("xen: multicall of %u mapping updates failed: %ld (%s)",
		      batch_nr, rc, xen_errno_name(rc));
	for (unsigned i = 0; i < batch_nr; i++) {
		long r = (long)batch[i].result;
		if (r)
			panic("xen: cannot set no-execute on %lx: %ld (%s)",
			      batch[i].args[0], r, xen_errno_name(r));
	}
	batch_nr = 0;
}

static void set_nx(uint64_t va, uint64_t pte)
{
	uint64_t flags = PTE_P | PTE_A | PTE_NX;
	if (pte & PTE_W)
		flags |= PTE_W | PTE_D;
	batch[batch_nr++] = (struct multicall_entry){
	    .op = __HYPERVISOR_update_va_mapping,
	    .args = {va, (pte & PTE_ADDR) | flags, UVMF_NONE},
	};
	if (batch_nr == BATCH_MAX)
		batch_flush();
}

static void walk_l1(const uint64_t *l1, uint64_t base)
{
	for (unsigned i = 0; i < 512; i++) {
		uint64_t va = base + ((uint64_t)i << 12);
		if (!(l1[i] & PTE_P) || (l1[i] & PTE_NX))
			continue;
		if (va >= (uint64_t)_text_start && va < (uint64_t)_text_end)
			continue;
		set_nx(va, l1[i]);
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
				walk_l1(table_of(l2[i2]), va2);
			}
		}
	}
	batch_flush();
}
