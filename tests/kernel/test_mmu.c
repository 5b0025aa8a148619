/*
 * test_mmu.c - page tables through the MMU pvops, on every platform.
 *
 * Map, write through, remap and unmap 1, 16 and 512 pages at
 * MMU_TEST_BASE with set_pte in a lazy MMU section; the data is checked
 * after every step through both the new mapping and the direct map, and
 * after a remap plus the documented flush (flush_tlb_one) the old frame
 * is never seen. Under Xen PV each test runs once per xenmmu strategy
 * (hypercall, batched, writable) and checks the strategy did what it says
 * (how many hypercalls, how many emulated stores). Then: pte values round
 * trip, a page table is read-only and pinned while it is one and writable
 * after release_pt, and the updates Xen must refuse are refused with the
 * expected error and leave the entry as it was. And the allocator hands
 * out (and we touch) at least 90% of the memory the platform gave us.
 */
#include "cmdline.h"
#include "hypercall.h"
#include "ktest.h"
#include "mm.h"
#include "platform.h"
#include "pvops.h"
#include "timer.h"
#include "trap.h"
#include "xen.h"

#define MAX_PAGES 512
#define MAGIC_A 0xa11ce0000000000ULL
#define MAGIC_B 0xb0b0000000000000ULL

static uint64_t pages_a[MAX_PAGES], pages_b[MAX_PAGES];

static bool is_xen(void)
{
	return platform->id == PLATFORM_XEN_PV;
}

/* Reads a word; false if the read faulted (fixed up). */
static bool read_ok(uint64_t va, uint64_t *out)
{
	uint64_t before = fault_count(), v = 0;

	asm volatile("1: mov (%1), %0\n2:\n" EXTABLE_JUMP("1b", "2b", "2b")
		     : "+r"(v)
		     : "r"(va)
		     : "memory");
	*out = v;
	return fault_count() == before;
}

static bool alloc_pages(uint64_t *p, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (!(p[i] = pmm_alloc())) {
			while (i--)
				pmm_free(p[i]);
			return false;
		}
	return true;
}

static void free_pages(uint64_t *p, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		pmm_free(p[i]);
}

/* The level-1 table for [va, va + 2 MiB), created if needed. */
static uint64_t *test_l1(uint64_t va)
{
	return mmu_walk(va, 1, true);
}

static void set_range(uint64_t *l1, const uint64_t *pa, unsigned n,
		      uint64_t flags)
{
	lazy_mmu_enter();
	for (unsigned i = 0; i < n; i++)
		set_pte(&l1[i], pa ? make_pte(pa[i] | flags) : 0);
	lazy_mmu_leave();
}

static unsigned bad_words(uint64_t va, const uint64_t *pa, unsigned n,
			  uint64_t magic)
{
	unsigned bad = 0;
	for (unsigned i = 0; i < n; i++) {
		uint64_t v = 0;
		if (!read_ok(va + i * PAGE_SIZE, &v) || v != (magic ^ i) ||
		    *(volatile uint64_t *)phys_to_virt(pa[i]) != (magic ^ i))
			bad++;
	}
	return bad;
}

/*
 * What a lazy section of n set_pte calls must cost in this strategy:
 * hypercall = n, batched = one mmu_update per 128 queued (the queue's
 * size), writable = none (n stores Xen emulates).
 */
static void check_strategy_cost(struct ktest_ctx *t, const char *step,
				unsigned n, struct xen_mmu_stats before)
{
	uint64_t calls = xen_mmu_stats.hypercalls - before.hypercalls;
	uint64_t emul = xen_mmu_stats.emulated - before.emulated;
	uint64_t want_calls = 0, want_emul = 0;

	switch (xen_mmu_strategy) {
	case XEN_MMU_HYPERCALL:
		want_calls = n;
		break;
	case XEN_MMU_BATCHED:
		want_calls = (n + 127) / 128;
		break;
	default:
		want_emul = n;
		break;
	}
	KT_EXPECT(t, calls == want_calls && emul == want_emul,
		  "%s %u pages (%s): %lu hypercalls and %lu emulated stores, "
		  "want %lu and %lu",
		  step, n, xen_mmu_names[xen_mmu_strategy], calls, emul,
		  want_calls, want_emul);
}

static void map_cycle(struct ktest_ctx *t, unsigned n)
{
	uint64_t va = MMU_TEST_BASE;
	uint64_t flags = PTE_P | PTE_W | mmu_nx_bit();
	uint64_t *l1 = test_l1(va);
	struct xen_mmu_stats st;

	KT_ASSERT(t, l1, "no level-1 table for %#lx", va);
	KT_ASSERT(t, alloc_pages(pages_a, n), "out of memory (%u pages)", n);
	if (!alloc_pages(pages_b, n)) {
		free_pages(pages_a, n);
		KT_ASSERT(t, false, "out of memory (%u more pages)", n);
	}
	for (unsigned i = 0; i < n; i++)
		*(uint64_t *)phys_to_virt(pages_b[i]) = MAGIC_B ^ i;

	/* map, then write through the new mapping */
	st = xen_mmu_stats;
	set_range(l1, pages_a, n, flags);
	if (is_xen())
		check_strategy_cost(t, "map", n, st);
	unsigned wrong = 0;
	for (unsigned i = 0; i < n; i++) {
		uint64_t e = mmu_lookup(va + i * PAGE_SIZE);
		if ((e & PTE_ADDR) != pages_a[i] || !(e & PTE_P))
			wrong++;
		*(volatile uint64_t *)(va + i * PAGE_SIZE) = MAGIC_A ^ i;
	}
	KT_EXPECT(t, !wrong, "map %u: %u entries read back wrong", n, wrong);
	KT_EXPECT(t, !bad_words(va, pages_a, n, MAGIC_A),
		  "map %u: %u pages hold the wrong data", n,
		  bad_words(va, pages_a, n, MAGIC_A));

	/* remap: the TLB holds the old frames now; flush as documented */
	st = xen_mmu_stats;
	set_range(l1, pages_b, n, flags);
	if (is_xen())
		check_strategy_cost(t, "remap", n, st);
	for (unsigned i = 0; i < n; i++)
		flush_tlb_one(va + i * PAGE_SIZE);
	KT_EXPECT(t, !bad_words(va, pages_b, n, MAGIC_B),
		  "remap %u: %u pages show stale or wrong data after "
		  "flush_tlb_one",
		  n, bad_words(va, pages_b, n, MAGIC_B));
	KT_EXPECT(
	    t, *(uint64_t *)phys_to_virt(pages_a[n - 1]) == (MAGIC_A ^ (n - 1)),
	    "remap %u: the old frame changed", n);

	/* unmap: every access faults after the flush */
	set_range(l1, NULL, n, 0);
	for (unsigned i = 0; i < n; i++)
		flush_tlb_one(va + i * PAGE_SIZE);
	unsigned readable = 0;
	for (unsigned i = 0; i < n; i++) {
		uint64_t v;
		if (read_ok(va + i * PAGE_SIZE, &v) ||
		    mmu_lookup(va + i * PAGE_SIZE))
			readable++;
	}
	KT_EXPECT(t, !readable, "unmap %u: %u pages still mapped", n, readable);
	free_pages(pages_a, n);
	free_pages(pages_b, n);
}

/* Natively once; under Xen once per strategy, then as booted. */
static void each_strategy(struct ktest_ctx *t, unsigned n)
{
	if (!is_xen()) {
		map_cycle(t, n);
		return;
	}
	enum xen_mmu_strategy booted = xen_mmu_strategy;
	for (int s = 0; s < XEN_MMU_NR; s++) {
		xen_mmu_strategy = s;
		map_cycle(t, n);
	}
	xen_mmu_strategy = booted;
}

KTEST(mmu, map_write_remap_unmap_1_page)
{
	each_strategy(t, 1);
}

KTEST(mmu, map_write_remap_unmap_16_pages)
{
	each_strategy(t, 16);
}

KTEST(mmu, map_write_remap_unmap_512_pages)
{
	each_strategy(t, 512);
}

/* Inside a section the queue may hold the update: readers flush it. */
KTEST(mmu, lazy_reader_sees_queued_update)
{
	uint64_t va = MMU_TEST_BASE + LARGE_PAGE_SIZE;
	uint64_t pa = pmm_alloc();
	KT_ASSERT(t, pa, "out of memory");
	uint64_t *l1 = test_l1(va);
	KT_ASSERT(t, l1, "no level-1 table");

	mmu_lazy_begin();
	set_pte(l1, make_pte(pa | PTE_P | PTE_W | mmu_nx_bit()));
	uint64_t e = pte_val(mmu_read_entry(l1));
	mmu_lazy_end();
	KT_EXPECT(t, (e & PTE_ADDR) == pa && (e & PTE_P),
		  "read %#lx inside the section, want pa %#lx", e, pa);
	set_pte(l1, 0);
	flush_tlb_one(va);
	pmm_free(pa);
}

KTEST(mmu, pte_values_round_trip)
{
	uint64_t pa[3] = {pmm_alloc(), pmm_alloc(),
			  (uint64_t)_data_start - KERNEL_VBASE};
	for (int i = 0; i < 3; i++) {
		uint64_t v = pa[i] | PTE_P | PTE_W | PTE_A | mmu_nx_bit();
		uint64_t m = make_pte(v);
		KT_EXPECT(t, pte_val(m) == v, "pte_val(make_pte(%#lx)) = %#lx",
			  v, pte_val(m));
		if (is_xen())
			KT_EXPECT(
			    t,
			    (m & PTE_ADDR) >> PAGE_SHIFT ==
				xen_p2m[pa[i] >> PAGE_SHIFT],
			    "make_pte(%#lx) = %#lx is not the P2M's frame", v,
			    m);
		else
			KT_EXPECT(t, m == v, "native make_pte changed %#lx", v);
	}
	KT_EXPECT(t, make_pte(0x1234000) == 0x1234000 && pte_val(0) == 0,
		  "a non-present value must pass unchanged");
	pmm_free(pa[0]);
	pmm_free(pa[1]);
}

/* ---- Xen: pinning, and what Xen must refuse ---- */

static bool write_faults(uint64_t va)
{
	uint64_t before = fault_count();
	asm volatile("1: orq $0, (%0)\n2:\n" EXTABLE_JUMP("1b", "2b", "2b")
		     :
		     : "r"(va)
		     : "memory");
	return fault_count() != before;
}

static bool mapped_writable(uint64_t pa)
{
	return mmu_lookup((uint64_t)phys_to_virt(pa)) & PTE_W;
}

/*
 * A level-2 table: Xen emulates guest writes only to level-1 tables, so a
 * direct write to this one must fault.
 */
KTEST(mmu, table_read_only_while_pinned)
{
	if (!is_xen())
		KT_SKIP(t, "native and KVM tables are ordinary memory");
	uint64_t pa = mmu_new_table(2);
	uint64_t before = xen_mmu_stats.unpinned;
	KT_EXPECT(t, !mapped_writable(pa), "a pinned L2 is mapped writable");
	KT_EXPECT(t, write_faults((uint64_t)phys_to_virt(pa)),
		  "a write to a pinned L2 did not fault");
	release_pt(pa, 2);
	KT_EXPECT(t, xen_mmu_stats.unpinned == before + 1, "not unpinned");
	KT_EXPECT(t, mapped_writable(pa), "a released table is read-only");
	KT_EXPECT(t, !write_faults((uint64_t)phys_to_virt(pa)),
		  "a write to a released table faulted");
	pmm_free(pa);
}

/*
 * Each mistake once per strategy; Xen must refuse it with `want`, and the
 * entry must be unchanged afterwards.
 */
struct refusal_case {
	const char *what;
	int level;
	long want, want_writable;
};

static void expect_refused(struct ktest_ctx *t, const struct refusal_case *c,
			   uint64_t *entry, uint64_t val)
{
	uint64_t old = *entry;

	for (int s = 0; s < XEN_MMU_NR; s++) {
		enum xen_mmu_strategy booted = xen_mmu_strategy;
		long want = s == XEN_MMU_WRITABLE && c->level == 1
				? c->want_writable
				: c->want;
		xen_mmu_strategy = s;
		xen_mmu_expect_refusal(true);
		mmu_lazy_begin();
		mmu_set_entry(entry, c->level, val);
		mmu_lazy_end();
		struct xen_mmu_refusal r = xen_mmu_last_refusal();
		xen_mmu_expect_refusal(false);
		xen_mmu_strategy = booted;
		KT_EXPECT(t, r.rc == want && r.val == val,
			  "%s (%s): refusal %ld (%s) of pte %#lx, want %ld "
			  "(%s) of %#lx",
			  c->what, xen_mmu_names[s], r.rc,
			  r.rc ? xen_errno_name(r.rc) : "none", r.val, want,
			  xen_errno_name(want), val);
		KT_EXPECT(t, *entry == old, "%s (%s): entry %#lx, was %#lx",
			  c->what, xen_mmu_names[s], *entry, old);
	}
}

KTEST(mmu, xen_refuses_writable_mapping_of_a_table)
{
	if (!is_xen())
		KT_SKIP(t, "only Xen validates page-table updates");
	static const struct refusal_case c = {
	    "writable mapping of a page table", 1, -XEN_EBUSY, -XEN_EFAULT};
	uint64_t va = MMU_TEST_BASE + 2 * LARGE_PAGE_SIZE;
	uint64_t *l1 = test_l1(va);
	KT_ASSERT(t, l1, "no level-1 table");
	uint64_t l1_pa = (uint64_t)l1 - KERNEL_VBASE;
	expect_refused(t, &c, &l1[0], make_pte(l1_pa | PTE_P | PTE_W));
}

KTEST(mmu, xen_refuses_a_frame_not_ours)
{
	if (!is_xen())
		KT_SKIP(t, "only Xen validates page-table updates");
	static const struct refusal_case c = {"a frame dom0 does not own", 1,
					      -XEN_EBUSY, -XEN_EFAULT};
	uint64_t va = MMU_TEST_BASE + 2 * LARGE_PAGE_SIZE;
	uint64_t *l1 = test_l1(va);
	KT_ASSERT(t, l1, "no level-1 table");
	/* A RAM frame in the first 128 MiB that is not in our P2M. */
	uint64_t mfn = 0x1000;
	for (; mfn < 0x8000; mfn++)
		if (xen_mfn_to_pfn(mfn) == XEN_INVALID_FRAME)
			break;
	KT_ASSERT(t, mfn < 0x8000, "every frame is ours?");
	expect_refused(t, &c, &l1[1], mfn << PAGE_SHIFT | PTE_P | PTE_W);
}

KTEST(mmu, xen_refuses_an_unpinned_writable_table)
{
	if (!is_xen())
		KT_SKIP(t, "only Xen validates page-table updates");
	static const struct refusal_case c = {
	    "an L1 that is still mapped writable", 2, -XEN_EINVAL, -XEN_EINVAL};
	uint64_t va = MMU_TEST_BASE + 3 * LARGE_PAGE_SIZE;
	uint64_t *pmd = mmu_walk(va, 2, true);
	KT_ASSERT(t, pmd, "no level-2 table");
	KT_ASSERT(t, !(*pmd & PTE_P), "the test's L2 entry is in use");
	uint64_t pa = pmm_alloc(); /* not alloc_pt()ed: still writable */
	KT_ASSERT(t, pa, "out of memory");
	expect_refused(t, &c, pmd, make_pte(pa | PTE_P | PTE_W));
	pmm_free(pa);
}

KTEST(mmu, xen_refuses_release_of_a_linked_table)
{
	if (!is_xen())
		KT_SKIP(t, "only Xen validates page-table updates");
	uint64_t va = MMU_TEST_BASE + 4 * LARGE_PAGE_SIZE;
	uint64_t *l1 = test_l1(va);
	KT_ASSERT(t, l1, "no level-1 table");
	uint64_t pa = (uint64_t)l1 - KERNEL_VBASE;
	xen_mmu_expect_refusal(true);
	release_pt(pa, 1);
	struct xen_mmu_refusal r = xen_mmu_last_refusal();
	xen_mmu_expect_refusal(false);
	KT_EXPECT(t, r.rc == -XEN_EBUSY && r.how && r.how[0] == 'm',
		  "release_pt of a linked L1: %ld (%s) by %s, want XEN_EBUSY "
		  "from the writable remap",
		  r.rc, r.rc ? xen_errno_name(r.rc) : "none",
		  r.how ? r.how : "-");
	KT_EXPECT(t, !mapped_writable(pa), "a linked L1 became writable");
	/* Unpinned by the refused release: pin it again, it stays in use. */
	alloc_pt(pa, 1);
}

/*
 * One multicall holding a new table's remap and pin and a run of three
 * entry updates into it, the middle one refused: Xen names it, and the
 * entries before and after it are applied all the same.
 */
KTEST(mmu, xen_refusal_in_a_batch_spares_the_rest)
{
	if (!is_xen())
		KT_SKIP(t, "only Xen validates page-table updates");
	uint64_t t_pa = pmm_alloc(), a = pmm_alloc();
	KT_ASSERT(t, t_pa && a, "out of memory");
	uint64_t *l1 = phys_to_virt(t_pa);
	uint64_t good = make_pte(a | PTE_P | PTE_W | mmu_nx_bit());
	uint64_t bad = make_pte(t_pa | PTE_P | PTE_W); /* the table itself */
	enum xen_mmu_strategy booted = xen_mmu_strategy;
	uint64_t calls = xen_mmu_stats.hypercalls;

	xen_mmu_strategy = XEN_MMU_BATCHED;
	xen_mmu_expect_refusal(true);
	lazy_mmu_enter();
	alloc_pt(t_pa, 1);
	set_pte(&l1[0], good);
	set_pte(&l1[1], bad);
	set_pte(&l1[2], good);
	lazy_mmu_leave();
	struct xen_mmu_refusal r = xen_mmu_last_refusal();
	xen_mmu_expect_refusal(false);
	xen_mmu_strategy = booted;

	KT_EXPECT(t, r.rc == -XEN_EBUSY && r.val == bad,
		  "refusal %ld (%s) of %#lx, want XEN_EBUSY of %#lx", r.rc,
		  r.rc ? xen_errno_name(r.rc) : "none", r.val, bad);
	/* Xen adds bits of its own (user, its guest-kernel marker). */
	uint64_t want = good & (PTE_ADDR | PTE_P | PTE_W);
	KT_EXPECT(t,
		  (l1[0] & (PTE_ADDR | PTE_P | PTE_W)) == want &&
		      (l1[2] & (PTE_ADDR | PTE_P | PTE_W)) == want && !l1[1],
		  "entries %#lx %#lx %#lx, want %#lx 0 %#lx (and flags)", l1[0],
		  l1[1], l1[2], good, good);
	/* the multicall, and the resubmission of the entry after the bad */
	KT_EXPECT(t, xen_mmu_stats.hypercalls - calls == 2,
		  "%lu hypercalls, want 2", xen_mmu_stats.hypercalls - calls);
	lazy_mmu_enter();
	set_pte(&l1[0], 0);
	set_pte(&l1[2], 0);
	lazy_mmu_leave();
	release_pt(t_pa, 1);
	pmm_free(t_pa);
	pmm_free(a);
}

/* ---- all of memory ---- */

KTEST(mm, allocates_and_touches_90_percent)
{
	if (platform->id == PLATFORM_KVM)
		KT_SKIP(t, "KVM here emulates every instruction (about half a "
			   "million a second): touching all of memory would "
			   "take minutes");
	uint64_t ram = 0;
	for (unsigned i = 0; i < boot.memmap_nr; i++)
		if (boot.memmap[i].type == 1)
			ram += boot.memmap[i].size;
	uint64_t want =
	    is_xen() ? (ram >> PAGE_SHIFT) * 9 / 10 : pmm_free_pages() * 9 / 10;
	uint64_t head = 0, n = 0, bad = 0;

	/* The allocated pages form a list through their first word. */
	for (uint64_t pa; (pa = pmm_alloc()); n++) {
		uint64_t *w = phys_to_virt(pa);
		w[0] = head;
		w[1] = pa ^ MAGIC_A;
		w[511] = ~pa;
		head = pa;
	}
	while (head) {
		uint64_t *w = phys_to_virt(head);
		if (w[1] != (head ^ MAGIC_A) || w[511] != ~head)
			bad++;
		uint64_t next = w[0];
		pmm_free(head);
		head = next;
	}
	KT_EXPECT(t, n >= want,
		  "allocated %lu pages (%lu MiB), want at least %lu (90%%)", n,
		  n >> 8, want);
	KT_EXPECT(t, !bad, "%lu of %lu pages did not keep their words", bad, n);
}

/* ---- exact costs (QEMU -icount shift=0: one TSC tick per instruction) ---- */

static uint64_t flip_ticks(uint64_t *l1, unsigned n, bool lazy, uint64_t v)
{
	uint64_t t0 = rdtsc_ordered();
	if (lazy)
		lazy_mmu_enter();
	for (unsigned i = 0; i < n; i++)
		set_pte(&l1[i], v);
	if (lazy)
		lazy_mmu_leave();
	return rdtsc_ordered() - t0;
}

/*
 * doc/xen-pv.md's break-even: one update alone is cheaper as a plain
 * hypercall than in a lazy section (whose two calls are pure cost), two
 * are already cheaper queued in one section than issued one by one.
 */
KTEST(mmu, xen_lazy_section_pays_from_two_entries)
{
	if (!opts.icount)
		KT_SKIP(t, "needs icount (QEMU -icount shift=0)");
	if (!is_xen())
		KT_SKIP(t, "not a Xen PV guest");
	uint64_t va = MMU_TEST_BASE + 5 * LARGE_PAGE_SIZE;
	uint64_t *l1 = test_l1(va);
	uint64_t a = pmm_alloc(), b = pmm_alloc();
	KT_ASSERT(t, l1 && a && b, "no memory");
	uint64_t f = PTE_P | PTE_W | mmu_nx_bit();
	uint64_t v[2] = {make_pte(a | f), make_pte(b | f)};
	enum xen_mmu_strategy booted = xen_mmu_strategy;
	uint64_t cost[2][2]; /* [n - 1][lazy], best of 3 */

	for (unsigned n = 1; n <= 2; n++)
		for (int lazy = 0; lazy < 2; lazy++) {
			xen_mmu_strategy =
			    lazy ? XEN_MMU_BATCHED : XEN_MMU_HYPERCALL;
			cost[n - 1][lazy] = ~0ULL;
			for (int k = 0; k < 4; k++) { /* the first warms */
				uint64_t c = flip_ticks(l1, n, lazy, v[k & 1]);
				if (k)
					cost[n - 1][lazy] =
					    MIN(cost[n - 1][lazy], c);
			}
		}
	xen_mmu_strategy = booted;
	printk("# mmu.icount: 1 update %lu one by one, %lu in a section; "
	       "2 updates %lu, %lu\n",
	       cost[0][0], cost[0][1], cost[1][0], cost[1][1]);
	KT_EXPECT(t, cost[0][1] > cost[0][0],
		  "one update: a section (%lu) is not dearer than none (%lu)",
		  cost[0][1], cost[0][0]);
	KT_EXPECT(t, cost[1][1] < cost[1][0],
		  "two updates: a section (%lu) does not beat two hypercalls "
		  "(%lu)",
		  cost[1][1], cost[1][0]);
	lazy_mmu_enter();
	set_pte(&l1[0], 0);
	set_pte(&l1[1], 0);
	lazy_mmu_leave();
	flush_tlb_one(va);
	flush_tlb_one(va + PAGE_SIZE);
	pmm_free(a);
	pmm_free(b);
}
