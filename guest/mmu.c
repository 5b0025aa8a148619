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

/* The table an entry points at (entries hold pte values: pte_val()). */
static uint64_t *table_at(uint64_t entry)
{
	return phys_to_virt(pte_val(entry) & PTE_ADDR);
}

/*
 * Inside mmu_lazy_begin() ... mmu_lazy_end() updates may still be queued:
 * a reader first has them issued (leave + enter is a flush).
 */
static unsigned lazy_depth;

void mmu_lazy_begin(void)
{
	lazy_depth++;
	lazy_mmu_enter();
}

void mmu_lazy_end(void)
{
	BUG_ON(!lazy_depth);
	lazy_mmu_leave();
	lazy_depth--;
}

uint64_t mmu_read_entry(const uint64_t *e)
{
	if (lazy_depth) {
		lazy_mmu_leave();
		lazy_mmu_enter();
	}
	return *(const volatile uint64_t *)e;
}

/* Writes an entry of a table at `level` (1 = PT ... 4 = PML4). */
void mmu_set_entry(uint64_t *e, int level, uint64_t pteval)
{
	switch (level) {
	case 1:
		set_pte(e, pteval);
		break;
	case 2:
		set_pmd(e, pteval);
		break;
	case 3:
		set_pud(e, pteval);
		break;
	default:
		set_pgd(e, pteval);
		break;
	}
}

/*
 * A new, zeroed table of `level` (1 = PT): made a page table (alloc_pt:
 * under Xen read-only and pinned) before anything points at it.
 */
uint64_t mmu_new_table(int level)
{
	uint64_t pa = pmm_alloc();
	if (!pa)
		panic("mmu: out of memory for page tables");
	alloc_pt(pa, (unsigned)level);
	return pa;
}

/* The entry for va at `level` (4 = PML4 ... 1 = PT), creating tables. */
static uint64_t *walk(uint64_t *pml4, uint64_t va, int level, bool create)
{
	uint64_t *t = pml4;
	for (int l = 4; l > level; l--) {
		uint64_t *e = &t[(va >> (12 + 9 * (l - 1))) & 511];
		uint64_t v = mmu_read_entry(e);
		uint64_t pa;
		if (!(v & PTE_P)) {
			if (!create)
				return NULL;
			pa = mmu_new_table(l - 1);
			mmu_set_entry(e, l, make_pte(pa | PTE_P | PTE_W));
		} else if (v & PTE_PS) {
			return NULL;
		} else {
			pa = pte_val(v) & PTE_ADDR;
		}
		t = phys_to_virt(pa);
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
			set_pmd(walk(pml4, va, 2, true),
				make_pte(pa | PTE_P | PTE_W | PTE_PS | nx));
			continue;
		}
		for (uint64_t p = pa; p < pa + LARGE_PAGE_SIZE;
		     p += PAGE_SIZE) {
			bool img = p >= img_lo && p < img_hi;
			set_pte(walk(pml4, PHYS_MAP_BASE + p, 1, true),
				make_pte(p | PTE_P | (img ? 0 : PTE_W) | nx));
		}
	}
}

static void map_image(uint64_t *pml4)
{
	for (uint64_t va = (uint64_t)_kernel_start; va < (uint64_t)_kernel_end;
	     va += PAGE_SIZE)
		set_pte(walk(pml4, va, 1, true),
			make_pte((va - KERNEL_VBASE) | image_flags(va)));
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
	uint64_t pml4_pa = mmu_new_table(4);
	uint64_t *pml4 = phys_to_virt(pml4_pa);
	map_direct(pml4);
	map_image(pml4);
	write_cr3(pml4_pa);
}

/* The tables in use: CR3 holds a pte-format address (machine on Xen). */
static uint64_t *root(void)
{
	return table_at((read_cr3() & PTE_ADDR) | PTE_P);
}

uint64_t *mmu_pte(uint64_t va)
{
	return walk(root(), va, 1, false);
}

uint64_t *mmu_walk(uint64_t va, int level, bool create)
{
	return walk(root(), va, level, create);
}

uint64_t mmu_lookup(uint64_t va)
{
	uint64_t *e = mmu_pte(va);
	return e ? pte_val(mmu_read_entry(e)) : 0;
}

void mmu_map(uint64_t va, uint64_t pa, uint64_t flags)
{
	set_pte(walk(root(), va, 1, true), make_pte(pa | flags));
}

/*
 * n pages from va to pa.. (contiguous), one walk per page table. A page
 * table that does not exist yet and that the range covers whole is filled
 * while it is still an ordinary page and only then made a table (alloc_pt
 * validates all 512 entries at once under Xen) and linked; otherwise each
 * entry goes through set_pte. All of it in one lazy section.
 */
void mmu_map_range(uint64_t va, uint64_t pa, uint64_t n, uint64_t flags)
{
	mmu_lazy_begin();
	while (n) {
		unsigned i = (va >> 12) & 511;
		uint64_t chunk = MIN(n, (uint64_t)(512 - i));
		uint64_t *pmd = walk(root(), va, 2, true);
		uint64_t v = mmu_read_entry(pmd);
		if (!(v & PTE_P) && chunk == 512) {
			uint64_t t = pmm_alloc();
			if (!t)
				panic("mmu: out of memory for page tables");
			uint64_t *l1 = phys_to_virt(t);
			for (unsigned k = 0; k < 512; k++)
				l1[k] = make_pte((pa + k * PAGE_SIZE) | flags);
			alloc_pt(t, 1);
			set_pmd(pmd, make_pte(t | PTE_P | PTE_W));
		} else {
			BUG_ON(v & PTE_PS);
			uint64_t *l1 = walk(root(), va, 1, true);
			for (uint64_t k = 0; k < chunk; k++)
				set_pte(&l1[k],
					make_pte((pa + k * PAGE_SIZE) | flags));
		}
		va += chunk * PAGE_SIZE;
		pa += chunk * PAGE_SIZE;
		n -= chunk;
	}
	mmu_lazy_end();
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
	memcpy(pml4, root(), PAGE_SIZE); /* filled before it is a table */
	alloc_pt(pml4_pa, 4);
	if (pml4[(POKE_BASE >> 39) & 511] & PTE_P)
		panic("mmu: the poke slot of the PML4 is already in use");
	for (uint64_t va = text; va < (uint64_t)_text_end; va += PAGE_SIZE)
		set_pte(walk(pml4, POKE_BASE + (va - text), 1, true),
			make_pte((va - KERNEL_VBASE) | PTE_P | PTE_W | nx));
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
	set_pte(pte, make_pte((target - KERNEL_VBASE) | PTE_P | PTE_W | nx));
}

void native_alias_unmap(uintptr_t window)
{
	int slot = saved_va[1] == window ? 1 : 0;
	BUG_ON(saved_va[slot] != window);
	set_pte(mmu_pte(window), saved_pte[slot]);
	saved_va[slot] = 0;
}

/* An AP stack's guard page: no mapping at all, so a push there faults. */
void native_guard_page(uintptr_t va)
{
	uint64_t *pte = mmu_pte(va);
	BUG_ON(!pte);
	set_pte(pte, 0);
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
	memcpy(pml4, root(), PAGE_SIZE); /* filled before it is a table */
	alloc_pt(pml4_pa, 4);
	BUG_ON(pml4[0] & PTE_P);
	set_pmd(walk(pml4, 0, 2, true), make_pte(0 | PTE_P | PTE_W | PTE_PS));
	return pml4_pa;
}
