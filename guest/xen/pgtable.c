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
 *              updates are queued and issued as one mmu_update array on
 *              leave or when the queue is full (the default);
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

#define LAZY_QUEUE_MAX 128

enum xen_mmu_strategy xen_mmu_strategy = XEN_MMU_BATCHED;
const char *const xen_mmu_names[XEN_MMU_NR] = {
    [XEN_MMU_HYPERCALL] = "hypercall",
    [XEN_MMU_BATCHED] = "batched",
    [XEN_MMU_WRITABLE] = "writable",
};
struct xen_mmu_stats xen_mmu_stats;

/* Per CPU: the lazy section depth and the queued updates. */
static struct lazy_queue {
	unsigned depth, n;
	mmu_update_t req[LAZY_QUEUE_MAX];
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

static void lazy_flush(struct lazy_queue *q)
{
	if (!q->n)
		return;
	unsigned n = q->n;
	q->n = 0;
	xen_mmu_stats.flushes++;
	issue(q->req, n);
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
		q->req[q->n++] = r;
		if (q->n == LAZY_QUEUE_MAX)
			lazy_flush(q);
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

/*
 * Two calls in one multicall, in order: each entry's result is checked
 * and a refusal named (what[i]) with the page it was about.
 */
static void multicall2(struct multicall_entry c[2], const char *const what[2],
		       uint64_t pa)
{
	long rc = HYPERVISOR_multicall(c, 2);
	xen_mmu_stats.hypercalls++;
	if (rc)
		panic("xen: multicall failed: %ld (%s)", rc,
		      xen_errno_name(rc));
	for (int i = 0; i < 2; i++) {
		long r = (long)c[i].result;
		if (r)
			refused(what[i], r,
				xen_pfn_to_mfn(pa >> PAGE_SHIFT) << PAGE_SHIFT,
				0, true);
	}
}

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

/* The page must not be mapped writable anywhere else: only the direct map. */
uint64_t xen_alloc_pt(uint64_t pa, uint64_t level)
{
	static struct mmuext_op op[NR_CPUS_MAX];
	static const char *const what[2] = {"map read-only (alloc_pt)",
					    "pin (alloc_pt)"};
	struct mmuext_op *o = &op[smp_cpu()];

	BUG_ON(level < 1 || level > 4);
	xen_mmu_flush();
	*o = (struct mmuext_op){.cmd = pin_cmd[level],
				.arg1.mfn = xen_pfn_to_mfn(pa >> PAGE_SHIFT)};
	struct multicall_entry c[2] = {
	    remap(pa, false),
	    {.op = __HYPERVISOR_mmuext_op,
	     .args = {(unsigned long)o, 1, 0, DOMID_SELF}},
	};
	multicall2(c, what, pa);
	xen_mmu_stats.pinned++;
	return 0;
}

/* Unpin, then writable again: Xen refuses the second while still in use. */
uint64_t xen_release_pt(uint64_t pa, uint64_t level)
{
	static struct mmuext_op op[NR_CPUS_MAX];
	static const char *const what[2] = {"unpin (release_pt)",
					    "map writable (release_pt)"};
	struct mmuext_op *o = &op[smp_cpu()];

	BUG_ON(level < 1 || level > 4);
	xen_mmu_flush();
	*o = (struct mmuext_op){.cmd = MMUEXT_UNPIN_TABLE,
				.arg1.mfn = xen_pfn_to_mfn(pa >> PAGE_SHIFT)};
	struct multicall_entry c[2] = {
	    {.op = __HYPERVISOR_mmuext_op,
	     .args = {(unsigned long)o, 1, 0, DOMID_SELF}},
	    remap(pa, true),
	};
	multicall2(c, what, pa);
	xen_mmu_stats.unpinned++;
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
