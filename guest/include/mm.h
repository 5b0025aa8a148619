/*
 * mm.h - physical pages and page tables.
 *
 * The page allocator hands out 4 KiB pages of (pseudo-)physical memory:
 * natively all usable RAM below 4 GiB from the hvm_start_info map; under
 * Xen PV the mapped slack Xen leaves after its bootstrap structures
 * (mapping the rest of the P2M is roadmap work, doc/xen-pv.md).
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

/* guest/mmu.c (native page tables) */
void mmu_init_native(void);
uint64_t *mmu_pte(uint64_t va); /* the 4 KiB PTE mapping va, or NULL */
uint64_t mmu_nx_bit(void);	/* PTE_NX, or 0 without NX */
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
