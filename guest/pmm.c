/*
 * pmm.c - physical page allocator.
 *
 * Free memory is a short list of ranges handed out from the bottom, plus a
 * stack of freed pages linked through the pages themselves. Simple, O(1),
 * and enough for a kernel that allocates page tables and test buffers.
 */
#include "kernel.h"
#include "mm.h"

#define RANGES_MAX 32

static struct {
	uint64_t next, end;
} ranges[RANGES_MAX];
static unsigned nr_ranges;
static uint64_t free_list; /* physical address of a freed page, 0 = none */
static uint64_t total, nfree;

uint64_t phys_map_base = PHYS_MAP_BASE;

void pmm_add_range(uint64_t start, uint64_t end)
{
	start = ALIGN_UP(start, PAGE_SIZE);
	end = ALIGN_DOWN(end, PAGE_SIZE);
	if (end <= start || nr_ranges == RANGES_MAX)
		return;
	ranges[nr_ranges].next = start;
	ranges[nr_ranges].end = end;
	nr_ranges++;
	total += (end - start) / PAGE_SIZE;
	nfree += (end - start) / PAGE_SIZE;
}

uint64_t pmm_alloc(void)
{
	uint64_t pa = 0;

	if (free_list) {
		pa = free_list;
		free_list = *(uint64_t *)phys_to_virt(pa);
	} else {
		for (unsigned i = 0; i < nr_ranges && !pa; i++) {
			if (ranges[i].next < ranges[i].end) {
				pa = ranges[i].next;
				ranges[i].next += PAGE_SIZE;
			}
		}
	}
	if (!pa)
		return 0;
	nfree--;
	clear_page(phys_to_virt(pa));
	return pa;
}

void pmm_free(uint64_t pa)
{
	BUG_ON(pa & (PAGE_SIZE - 1));
	*(uint64_t *)phys_to_virt(pa) = free_list;
	free_list = pa;
	nfree++;
}

uint64_t pmm_total_pages(void)
{
	return total;
}

uint64_t pmm_free_pages(void)
{
	return nfree;
}
