/*
 * pgtable.c - the Xen PV MMU pvops: P2M/M2P translation, page-table entry
 * updates by hypercall, queued in lazy MMU sections or stored directly
 * for Xen to emulate, and page-table pages pinned and unpinned.
 *
 * A PV guest's page tables are read-only to it and hold machine frames.
 * The kernel works in pseudo-physical addresses (pfn << 12, what the
 * allocator hands out); make_pte() turns pa | flags into mfn << 12 | flags
 * through the P2M list Xen gave us (start_info.mfn_list), pte_val() turns
 * an entry back through the M2P table Xen maps read-only into every PV
 * guest at MACH2PHYS_VIRT_START, checked against the P2M (a frame that is
 * not ours has no pseudo-physical address).
 *
 * How an entry is written depends on xenmmu= (doc/xen-pv.md):
 *   hypercall  each set_pte/pmd/pud/pgd is one mmu_update
 *              (MMU_NORMAL_PT_UPDATE, the entry's machine address);
 *   batched    the same, but inside lazy_mmu_enter()...lazy_mmu_leave()
 *              updates (and alloc_pt's remap and pin) are queued and
 *              issued as one multicall, or one mmu_update array when
 *              that is all there is, on leave, when the queue is full or
 *              before a table is read (the default);
 *   writable   level-1 entries are plain stores to the read-only table:
 *              the write faults into Xen, which validates and emulates it
 *              (its writable page-table path); higher levels as batched.
 * A refused update panics with Xen's error name and the offending entry,
 * unless a test asked to see the refusal (xen_mmu_expect_refusal()).
 */
#include "hypercall.h"
#include "kernel.h"
#include "mm.h"
#include "percpu.h"
#include "pvops.h"
#include "smp.h"
#include "trap.h"
#include "xen.h"

#define LAZY_QUEUE_MAX 128 /* mmu_update entries */
#define LAZY_CALLS_MAX 16  /* multicall entries */

enum xen_mmu_strategy xen_mmu_strategy = XEN_MMU_BATCHED;
const char *const xen_mmu_names[XEN_MMU_NR] = {
    [XEN_MMU_HYPERCALL] = "hypercall",
    [XEN_MMU_BATCHED] = "batched",
    [XEN_MMU_WRITABLE] = "writable",
};
struct xen_mmu_stats xen_mmu_stats;

/*
 * Per CPU: the lazy section depth and what is queued, as the calls of one
 * multicall: runs of entry updates (one mmu_update call each, over req[])
 * and the page operations of alloc_pt (a remap and a pin). A queue of
 * only entry updates is issued as one plain mmu_update.
 */
static struct lazy_queue {
	unsigned depth, n, nc;
	mmu_update_t req[LAZY_QUEUE_MAX];
	struct multicall_entry mc[LAZY_CALLS_MAX];
	/*
	 * An mmu_update call's first req and its number, kept apart from
	 * its args: Xen rewrites a preempted call's args in place (the
	 * continuation: req advanced, count | MMU_UPDATE_PREEMPTED).
	 */
	unsigned first[LAZY_CALLS_MAX], count[LAZY_CALLS_MAX];
	unsigned done[LAZY_CALLS_MAX];	  /* Xen's count of those it did */
	const char *what[LAZY_CALLS_MAX]; /* page operation, or NULL */
	uint64_t page[LAZY_CALLS_MAX];	  /* its page's machine address */
	struct mmuext_op ext[LAZY_CALLS_MAX];
} lazy[NR_CPUS_MAX];

static bool expect_refusal;
static struct xen_mmu_refusal last_refusal;

void xen_mmu_expect_refusal(bool on)
{
	expect_refusal = on;
	last_refusal = (struct xen_mmu_refusal){0};
}

struct xen_mmu_refusal xen_mmu_last_refusal(void)
{
	return last_refusal;
}

/* ---- P2M and M2P ---- */

uint64_t xen_pfn_to_mfn(uint64_t pfn)
{
	if (pfn >= xen_start_info->nr_pages)
		return XEN_INVALID_FRAME;
	return xen_p2m[pfn];
}

/*
 * The M2P has an entry for every machine frame Xen knows, but holes past
 * the end of RAM may be unmapped: the read is fixed up if it faults.
 */
uint64_t xen_mfn_to_pfn(uint64_t mfn)
{
	const unsigned long *m2p = (const unsigned long *)MACH2PHYS_VIRT_START;
	uint64_t pfn = XEN_INVALID_FRAME;

	if (mfn >= MACH2PHYS_NR_ENTRIES)
		return XEN_INVALID_FRAME;
	asm volatile("1: mov (%1), %0\n2:\n" EXTABLE_JUMP("1b", "2b", "2b")
		     : "+r"(pfn)
		     : "r"(&m2p[mfn])
		     : "memory");
	if (pfn >= xen_start_info->nr_pages || xen_p2m[pfn] != mfn)
		return XEN_INVALID_FRAME;
	return pfn;
}

uint64_t xen_make_pte(uint64_t v)
{
	if (!(v & PTE_P))
		return v;
	uint64_t pfn = (v & PTE_ADDR) >> PAGE_SHIFT;
	uint64_t mfn = xen_pfn_to_mfn(pfn);
	if (mfn == XEN_INVALID_FRAME)
		panic("xen: make_pte(%#lx): pfn %#lx is not dom0's (%lu pages)",
		      v, pfn, xen_start_info->nr_pages);
	return (v & ~PTE_ADDR) | mfn << PAGE_SHIFT;
}

/* A frame that is not ours reads back with every address bit set. */
uint64_t xen_pte_val(uint64_t v)
{
	if (!(v & PTE_P))
		return v;
	uint64_t pfn = xen_mfn_to_pfn((v & PTE_ADDR) >> PAGE_SHIFT);
	if (pfn == XEN_INVALID_FRAME)
		return v | PTE_ADDR;
	return (v & ~PTE_ADDR) | pfn << PAGE_SHIFT;
}

/* Machine address of a kernel virtual address in the direct map. */
static uint64_t virt_to_machine(const void *p)
{
	uint64_t va = (uint64_t)p;
	uint64_t mfn = xen_pfn_to_mfn((va - KERNEL_VBASE) >> PAGE_SHIFT);
	if (va < KERNEL_VBASE || mfn == XEN_INVALID_FRAME)
		panic("xen: %p is not in the direct map", p);
	return mfn << PAGE_SHIFT | (va & (PAGE_SIZE - 1));
}

/* ---- refusals ---- */

/* An entry update (val = the entry) or a table page's (page: its frame). */
static void refused(const char *how, long rc, uint64_t ptr, uint64_t val,
		    bool page)
{
	char what[80];

	xen_mmu_stats.refused++;
	if (page)
		snprintf(what, sizeof(what), "page-table page at machine %#lx",
			 ptr);
	else
		snprintf(what, sizeof(what), "pte %#lx at machine %#lx", val,
			 ptr);
	if (!expect_refusal)
		panic("xen: %s refused %s: %ld (%s)", how, what, rc,
		      xen_errno_name(rc));
	printk("xen: %s refused %s: %ld (%s)\n", how, what, rc,
	       xen_errno_name(rc));
	if (!last_refusal.rc)
		last_refusal = (struct xen_mmu_refusal){
		    .rc = rc, .ptr = ptr, .val = val, .how = how};
}

/*
 * mmu_update stops at the first entry it refuses and says how many it
 * did: report that one and go on with the rest, so one bad entry never
 * silently drops the others.
 */
static void issue(mmu_update_t *req, unsigned n)
{
	while (n) {
		unsigned done = 0;
		long rc =
		    xen_hypercall4(__HYPERVISOR_mmu_update, (unsigned long)req,
				   n, (unsigned long)&done, DOMID_SELF);
		xen_mmu_stats.hypercalls++;
		if (!rc) {
			xen_mmu_stats.updates += n;
			return;
		}
		if (done >= n)
			panic("xen: mmu_update failed after all %u entries: "
			      "%ld (%s)",
			      n, rc, xen_errno_name(rc));
		xen_mmu_stats.updates += done;
		refused("mmu_update", rc, req[done].ptr & ~7ULL, req[done].val,
			false);
		req += done + 1;
		n -= done + 1;
	}
}

/* The result of one queued call (the multicall ran them in order). */
static void check_call(struct lazy_queue *q, unsigned i, long rc)
{
	if (q->what[i]) {
		if (rc)
			refused(q->what[i], rc, q->page[i], 0, true);
		return;
	}
	unsigned first = q->first[i], cnt = q->count[i];
	if (!rc) {
		xen_mmu_stats.updates += cnt;
		return;
	}
	unsigned done = q->done[i];
	if (done >= cnt)
		panic("xen: mmu_update failed after all %u entries: %ld (%s)",
		      cnt, rc, xen_errno_name(rc));
	xen_mmu_stats.updates += done;
	refused("mmu_update", rc, q->req[first + done].ptr & ~7ULL,
		q->req[first + done].val, false);
	issue(&q->req[first + done + 1], cnt - done - 1);
}

static void lazy_flush(struct lazy_queue *q)
{
	unsigned nc = q->nc;

	if (!nc)
		return;
	q->nc = 0;
	xen_mmu_stats.flushes++;
	if (nc == 1 && !q->what[0]) {
		unsigned n = q->n;
		q->n = 0;
		issue(q->req, n);
		return;
	}
	long rc = HYPERVISOR_multicall(q->mc, nc);
	xen_mmu_stats.hypercalls++;
	if (rc)
		panic("xen: multicall of %u queued MMU calls failed: %ld (%s)",
		      nc, rc, xen_errno_name(rc));
	for (unsigned i = 0; i < nc; i++)
		check_call(q, i, (long)q->mc[i].result);
	q->n = 0;
}

/* Room for `calls` more multicall entries (flushing if there is none). */
static unsigned reserve(struct lazy_queue *q, unsigned calls)
{
	if (q->nc + calls > LAZY_CALLS_MAX)
		lazy_flush(q);
	return q->nc;
}

static void queue_update(struct lazy_queue *q, mmu_update_t r)
{
	unsigned c = q->nc;
	if (!c || q->what[c - 1] || q->first[c - 1] + q->count[c - 1] != q->n) {
		c = reserve(q, 1);
		q->mc[c] = (struct multicall_entry){
		    .op = __HYPERVISOR_mmu_update,
		    .args = {(unsigned long)&q->req[q->n], 0,
			     (unsigned long)&q->done[c], DOMID_SELF},
		};
		q->first[c] = q->n;
		q->count[c] = 0;
		q->what[c] = NULL;
		q->nc = ++c;
	}
	q->req[q->n++] = r;
	q->mc[c - 1].args[1] = ++q->count[c - 1];
	if (q->n == LAZY_QUEUE_MAX)
		lazy_flush(q);
}

static struct lazy_queue *my_queue(void)
{
	return &lazy[smp_cpu()];
}

/* Any queued update must reach Xen before the tables change otherwise. */
void xen_mmu_flush(void)
{
	lazy_flush(my_queue());
}

static void update(uint64_t *entry, uint64_t val)
{
	struct lazy_queue *q = my_queue();
	mmu_update_t r = {
	    .ptr = virt_to_machine(entry) | MMU_NORMAL_PT_UPDATE,
	    .val = val,
	};

	if (xen_mmu_strategy != XEN_MMU_HYPERCALL && q->depth) {
		queue_update(q, r);
		return;
	}
	issue(&r, 1);
}

/*
 * xenmmu=writable: store the entry into the read-only table. Xen takes
 * the write fault, checks the new entry as mmu_update would and emulates
 * the store; an entry it refuses comes back as the page fault itself.
 */
static void store_emulated(uint64_t *entry, uint64_t val)
{
	uint64_t before = fault_count();

	asm volatile("1: movq %1, (%0)\n2:\n" EXTABLE_JUMP("1b", "2b", "2b")
		     :
		     : "r"(entry), "r"(val)
		     : "memory");
	xen_mmu_stats.emulated++;
	if (fault_count() != before)
		refused("emulated write (page fault)", -XEN_EFAULT,
			virt_to_machine(entry), val, false);
}

uint64_t xen_set_pte(uint64_t *entry, uint64_t val)
{
	if (xen_mmu_strategy == XEN_MMU_WRITABLE) {
		/* Queued updates to this table must land first. */
		xen_mmu_flush();
		store_emulated(entry, val);
	} else {
		update(entry, val);
	}
	return 0;
}

uint64_t xen_set_pmd(uint64_t *entry, uint64_t val)
{
	update(entry, val);
	return 0;
}

uint64_t xen_set_pud(uint64_t *entry, uint64_t val)
{
	update(entry, val);
	return 0;
}

uint64_t xen_set_pgd(uint64_t *entry, uint64_t val)
{
	update(entry, val);
	return 0;
}

uint64_t xen_lazy_mmu_enter(void)
{
	my_queue()->depth++;
	return 0;
}

/* Every leave flushes, so leave + enter is a flush at any depth. */
uint64_t xen_lazy_mmu_leave(void)
{
	struct lazy_queue *q = my_queue();

	BUG_ON(!q->depth);
	lazy_flush(q);
	q->depth--;
	return 0;
}

/* ---- page-table pages ---- */

static const unsigned pin_cmd[5] = {
    [1] = MMUEXT_PIN_L1_TABLE,
    [2] = MMUEXT_PIN_L2_TABLE,
    [3] = MMUEXT_PIN_L3_TABLE,
    [4] = MMUEXT_PIN_L4_TABLE,
};

static struct multicall_entry remap(uint64_t pa, bool writable)
{
	uint64_t flags = PTE_P | PTE_A | mmu_nx_bit();
	if (writable)
		flags |= PTE_W | PTE_D;
	return (struct multicall_entry){
	    .op = __HYPERVISOR_update_va_mapping,
	    .args = {(unsigned long)phys_to_virt(pa), xen_make_pte(pa | flags),
		     UVMF_INVLPG | UVMF_LOCAL},
	};
}

/* Queues one page operation: a remap of pa, or an mmuext_op on it. */
static void queue_page_op(struct lazy_queue *q, const char *what, uint64_t pa,
			  const struct multicall_entry *remap_call,
			  unsigned ext_cmd)
{
	unsigned c = reserve(q, 1);
	uint64_t mfn = xen_pfn_to_mfn(pa >> PAGE_SHIFT);

	if (remap_call) {
		q->mc[c] = *remap_call;
	} else {
		q->ext[c] = (struct mmuext_op){.cmd = ext_cmd, .arg1.mfn = mfn};
		q->mc[c] = (struct multicall_entry){
		    .op = __HYPERVISOR_mmuext_op,
		    .args = {(unsigned long)&q->ext[c], 1, 0, DOMID_SELF},
		};
	}
	q->what[c] = what;
	q->page[c] = mfn << PAGE_SHIFT;
	q->nc = c + 1;
}

/*
 * Read-only, then pinned (the page must not be mapped writable anywhere
 * else: the allocator's pages are mapped only in the direct map). Inside
 * a lazy section (unless xenmmu=hypercall) both join the queue, so a
 * table and the entries that link and fill it go to Xen in one multicall;
 * until then the page is still writable.
 */
uint64_t xen_alloc_pt(uint64_t pa, uint64_t level)
{
	struct lazy_queue *q = my_queue();
	struct multicall_entry ro = remap(pa, false);

	BUG_ON(level < 1 || level > 4);
	reserve(q, 2);
	queue_page_op(q, "map read-only (alloc_pt)", pa, &ro, 0);
	queue_page_op(q, "pin (alloc_pt)", pa, NULL, pin_cmd[level]);
	xen_mmu_stats.pinned++;
	if (xen_mmu_strategy == XEN_MMU_HYPERCALL || !q->depth)
		lazy_flush(q);
	return 0;
}

/*
 * Unpin, then writable again (Xen refuses the second while the page is
 * still in use as a table), at once: the caller may write the page next.
 */
uint64_t xen_release_pt(uint64_t pa, uint64_t level)
{
	struct lazy_queue *q = my_queue();
	struct multicall_entry rw = remap(pa, true);

	BUG_ON(level < 1 || level > 4);
	reserve(q, 2);
	queue_page_op(q, "unpin (release_pt)", pa, NULL, MMUEXT_UNPIN_TABLE);
	queue_page_op(q, "map writable (release_pt)", pa, &rw, 0);
	xen_mmu_stats.unpinned++;
	lazy_flush(q);
	return 0;
}

/* ---- the option, and the backend's MMU ops for it ---- */

void xen_mmu_choose(const char *opt)
{
	for (int i = 0; opt && i < XEN_MMU_NR; i++)
		if (!strcmp(opt, xen_mmu_names[i])) {
			xen_mmu_strategy = i;
			return;
		}
	/* cmdline.c has already refused anything else with a warning. */
}
