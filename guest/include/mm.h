/*
 * mm.h - physical pages and page tables.
 *
 * The page allocator hands out 4 KiB pages of (pseudo-)physical memory:
 * natively all usable RAM below 4 GiB from the hvm_start_info map; under
 * Xen PV every pseudo-physical page of dom0 past Xen's bootstrap
 * structures (the rest of dom0_mem is mapped at boot, doc/xen-pv.md).
 * phys_to_virt() works for every page the allocator returns.
 */
#ifndef TINYPV_MM_H
#define TINYPV_MM_H

#include <stdbool.h>
#include <stdint.h>

#include "alternative.h"
#include "layout.h"

#define PTE_P (1ULL << 0)
#define PTE_W (1ULL << 1)
#define PTE_U (1ULL << 2)
#define PTE_A (1ULL << 5)
#define PTE_D (1ULL << 6)
#define PTE_PS (1ULL << 7)
#define PTE_NX (1ULL << 63)
#define PTE_ADDR 0x000ffffffffff000ULL

extern uint64_t phys_map_base;

static inline void *phys_to_virt(uint64_t pa)
{
	return (void *)(phys_map_base + pa);
}

/* guest/pmm.c */
void pmm_add_range(uint64_t start, uint64_t end);
uint64_t pmm_alloc(void); /* 0 when out of memory */
void pmm_free(uint64_t pa);
uint64_t pmm_total_pages(void);
uint64_t pmm_free_pages(void);

/*
 * guest/mmu.c: page tables through the MMU pvops (pvops.h: set_pte ...,
 * make_pte/pte_val, alloc_pt/release_pt, the lazy section), the same code
 * natively and under Xen PV. Nothing here flushes the TLB: after changing
 * a present entry the caller runs flush_tlb_one(va) (or write_cr3).
 *
 *   mmu_map_range(va, pa, 512, PTE_P | PTE_W | mmu_nx_bit());
 *   mmu_map(va, other_pa, PTE_P | PTE_W);  flush_tlb_one(va);
 */
void mmu_init_native(void);
uint64_t *mmu_pte(uint64_t va); /* the 4 KiB PTE mapping va, or NULL */
/* The entry for va at level (1 = PT ... 4 = PML4), or NULL; create: make
 * missing tables (mmu_new_table) on the way. */
uint64_t *mmu_walk(uint64_t va, int level, bool create);
uint64_t mmu_lookup(uint64_t va); /* pa | flags of va's PTE, 0: none */
void mmu_map(uint64_t va, uint64_t pa, uint64_t flags);
void mmu_map_range(uint64_t va, uint64_t pa, uint64_t n, uint64_t flags);
uint64_t mmu_new_table(int level); /* zeroed, alloc_pt()ed: its pa */
void mmu_set_entry(uint64_t *e, int level, uint64_t pteval);
/* A bulk update: lazy_mmu_enter/leave, and readers flush the queue. */
void mmu_lazy_begin(void);
void mmu_lazy_end(void);
uint64_t mmu_read_entry(const uint64_t *e); /* issues queued updates first */
uint64_t mmu_nx_bit(void);		    /* PTE_NX, or 0 without NX */
void mmu_use_nx(void);

uint64_t mmu_poke_tables(void);	      /* native private poke tables: CR3 */
uint64_t mmu_trampoline_tables(void); /* AP start-up: + low identity */

/* guest/patch_seam.c: builds the poke mapping (before any text write). */
void patch_seam_init(void);

/* The one way to write kernel text is the patch engine: patch.h. */

/*
 * Zeroing a page: `rep stosq` works everywhere; with ERMS (enhanced
 * rep movsb/stosb) the byte form is the fast string path. Chosen once per
 * boot as a function (ALTERNATIVE_SELECT, alt/include/alternative.h);
 * guest/lib/string.c has both.
 */
void clear_page_stosq(void *page);
void clear_page_stosb(void *page);
ALTERNATIVE_SELECT(clear_page_fn, clear_page_stosq, clear_page_stosb,
		   X86_FEATURE_ERMS)
static inline void clear_page(void *page)
{
	clear_page_fn()(page);
}

#endif
