/*
 * mmu.c - native page tables.
 *
 * The boot head maps everything with 2 MiB pages and an identity map.
 * mmu_init_native() replaces that with the tables tinypv keeps:
 *   - PHYS_MAP_BASE: RAM below 4 GiB, writable, no-execute; the 2 MiB
 *     blocks that hold the kernel image use 4 KiB pages so the image's
 *     alias is read-only there too;
 *   - KERNEL_VBASE: the image in 4 KiB pages, text read-only and
 *     executable, rodata read-only, data and bss writable, no-execute;
 *   - no identity map (a NULL dereference faults).
 * CR0.WP is on, so even the kernel cannot write through a read-only PTE:
 * text changes go through the patch engine's private poke mapping
 * (mmu_poke_tables() below, guest/patch_seam.c).
 */
#include "kernel.h"
#include "mm.h"
#include "platform.h"
#include "pvops.h"

#define MSR_EFER 0xc0000080
#define EFER_NXE (1ULL << 11)

static uint64_t nx;

uint64_t mmu_nx_bit(void)
{
	return nx;
}

static uint64_t *table_at(uint64_t entry)
{
	return phys_to_virt(entry & PTE_ADDR);
}

/* The entry for va at `level` (4 = PML4 ... 1 = PT), creating tables. */
static uint64_t *walk(uint64_t *pml4, uint64_t va, int level, bool create)
{
	uint64_t *t = pml4;
	for (int l = 4; l > level; l--) {
		uint64_t *e = &t[(va >> (12 + 9 * (l - 1))) & 511];
		if (!(*e & PTE_P)) {
			if (!create)
				return NULL;
			uint64_t pa = pmm_alloc();
			if (!pa)
				panic("mmu: out of memory for page tables");
			*e = pa | PTE_P | PTE_W;
		}
		if (*e & PTE_PS)
			return NULL;
		t = table_at(*e);
	}
	return &t[(va >> (12 + 9 * (level - 1))) & 511];
}

static uint64_t image_flags(uint64_t va)
{
	if (va >= (uint64_t)_text_start && va < (uint64_t)_text_end)
		return PTE_P;
	if (va >= (uint64_t)_rodata_start && va < (uint64_t)_rodata_end)
		return PTE_P | nx;
	return PTE_P | PTE_W | nx;
}

static void map_direct(uint64_t *pml4)
{
	uint64_t img_lo = (uint64_t)_kernel_start - KERNEL_VBASE;
	uint64_t img_hi = (uint64_t)_kernel_end - KERNEL_VBASE;

	for (uint64_t pa = 0; pa < PHYS_MAP_SIZE; pa += LARGE_PAGE_SIZE) {
		uint64_t va = PHYS_MAP_BASE + pa;
		if (pa + LARGE_PAGE_SIZE <= img_lo || pa >= img_hi) {
			*walk(pml4, va, 2, true) =
			    pa | PTE_P | PTE_W | PTE_PS | nx;
			continue;
		}
		for (uint64_t p = pa; p < pa + LARGE_PAGE_SIZE;
		     p += PAGE_SIZE) {
			bool img = p >= img_lo && p < img_hi;
			*walk(pml4, PHYS_MAP_BASE + p, 1, true) =
			    p | PTE_P | (img ? 0 : PTE_W) | nx;
		}
	}
}

static void map_image(uint64_t *pml4)
{
	for (uint64_t va = (uint64_t)_kernel_start; va < (uint64_t)_kernel_end;
	     va += PAGE_SIZE)
		*walk(pml4, va, 1, true) =
		    (va - KERNEL_VBASE) | image_flags(va);
}

/* Under Xen, EFER.NXE is Xen's business: it is on where the CPU has NX. */
void mmu_use_nx(void)
{
	if (cpu_has_nx())
		nx = PTE_NX;
}

void mmu_init_native(void)
{
	mmu_use_nx();
	if (nx)
		write_msr(MSR_EFER, read_msr(MSR_EFER) | EFER_NXE);
	uint64_t pml4_pa = pmm_alloc();
	if (!pml4_pa)
		panic("mmu: no memory for the PML4");
	uint64_t *pml4 = phys_to_virt(pml4_pa);
	map_direct(pml4);
	map_image(pml4);
	write_cr3(pml4_pa);
}

uint64_t *mmu_pte(uint64_t va)
{
	return walk(phys_to_virt(read_cr3() & PTE_ADDR), va, 1, false);
}

/*
 * The private poke tables (guest/patch_seam.c): a copy of the kernel's
 * PML4 plus POKE_BASE, where every text page has a writable, no-execute
 * alias. The kernel half is shared below the top level, so it stays
 * current; tinypv adds no top-level entries after mmu_init_native().
 */
uint64_t mmu_poke_tables(void)
{
	uint64_t pml4_pa = pmm_alloc();
	uint64_t text = (uint64_t)_text_start;

	if (!pml4_pa)
		panic("mmu: no memory for the poke tables");
	uint64_t *pml4 = phys_to_virt(pml4_pa);
	memcpy(pml4, phys_to_virt(read_cr3() & PTE_ADDR), PAGE_SIZE);
	if (pml4[(POKE_BASE >> 39) & 511] & PTE_P)
		panic("mmu: the poke slot of the PML4 is already in use");
	for (uint64_t va = text; va < (uint64_t)_text_end; va += PAGE_SIZE)
		*walk(pml4, POKE_BASE + (va - text), 1, true) =
		    (va - KERNEL_VBASE) | PTE_P | PTE_W | nx;
	return pml4_pa;
}

/* ---- alias windows (struct platform hooks, native and KVM) ---- */

static uint64_t saved_pte[2];
static uintptr_t saved_va[2];

void native_alias_map(uintptr_t window, uintptr_t target)
{
	uint64_t *pte = mmu_pte(window);
	BUG_ON(!pte);
	int slot = saved_va[0] ? 1 : 0;
	saved_va[slot] = window;
	saved_pte[slot] = *pte;
	*pte = (target - KERNEL_VBASE) | PTE_P | PTE_W | nx;
}

void native_alias_unmap(uintptr_t window)
{
	int slot = saved_va[1] == window ? 1 : 0;
	BUG_ON(saved_va[slot] != window);
	*mmu_pte(window) = saved_pte[slot];
	saved_va[slot] = 0;
}

/* An AP stack's guard page: no mapping at all, so a push there faults. */
void native_guard_page(uintptr_t va)
{
	uint64_t *pte = mmu_pte(va);
	BUG_ON(!pte);
	*pte = 0;
	flush_tlb_one(va);
}

/*
 * The AP trampoline's page tables (guest/smp_native.c): the kernel's PML4
 * (shared below the top level) plus slot 0 holding an identity map of the
 * first 2 MiB, executable, so the trampoline below 1 MiB keeps running
 * when its CPU turns paging on. Only an AP that is starting loads them;
 * the kernel's own tables never get an identity map. Below 4 GiB (loaded
 * from 32-bit code): the allocator's pages are.
 */
uint64_t mmu_trampoline_tables(void)
{
	uint64_t pml4_pa = pmm_alloc();

	if (!pml4_pa)
		panic("mmu: no memory for the AP trampoline tables");
	uint64_t *pml4 = phys_to_virt(pml4_pa);
	memcpy(pml4, phys_to_virt(read_cr3() & PTE_ADDR), PAGE_SIZE);
	BUG_ON(pml4[0] & PTE_P);
	*walk(pml4, 0, 2, true) = 0 | PTE_P | PTE_W | PTE_PS;
	return pml4_pa;
}
