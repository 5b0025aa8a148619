/*
 * test_mm.c - the physical page allocator.
 */
#include "ktest.h"
#include "mm.h"

#define N 16

KTEST(mm, alloc_distinct_aligned_zeroed)
{
	uint64_t pages[N];
	uint64_t before = pmm_free_pages();

	for (int i = 0; i < N; i++) {
		pages[i] = pmm_alloc();
		KT_ASSERT(t, pages[i], "allocation %d failed", i);
		KT_EXPECT(t, !(pages[i] & (PAGE_SIZE - 1)), "%#lx unaligned",
			  pages[i]);
		const uint64_t *w = phys_to_virt(pages[i]);
		for (unsigned k = 0; k < PAGE_SIZE / 8; k++)
			if (w[k]) {
				ktest_fail(t, __FILE__, __LINE__,
					   "page %#lx not zeroed", pages[i]);
				break;
			}
		for (int j = 0; j < i; j++)
			KT_EXPECT(t, pages[i] != pages[j], "page %#lx twice",
				  pages[i]);
		*(volatile uint64_t *)phys_to_virt(pages[i]) = 0x5a5a5a5a;
	}
	KT_EXPECT(t, pmm_free_pages() == before - N, "free count %lu, want %lu",
		  pmm_free_pages(), before - N);
	for (int i = 0; i < N; i++)
		pmm_free(pages[i]);
	KT_EXPECT(t, pmm_free_pages() == before, "free count not restored");
}

KTEST(mm, free_then_reuse)
{
	uint64_t a = pmm_alloc();
	KT_ASSERT(t, a, "allocation failed");
	pmm_free(a);
	uint64_t b = pmm_alloc();
	KT_EXPECT(t, a == b, "freed page %#lx not reused (got %#lx)", a, b);
	pmm_free(b);
}
