/*
 * xen.h - tinypv as a Xen PV guest: state shared by the guest/xen files.
 */
#ifndef TINYPV_XEN_H
#define TINYPV_XEN_H

#include <stdbool.h>
#include <stdint.h>

#include "xen_public.h"

extern start_info_t *xen_start_info;
extern struct shared_info *xen_shared;
extern const unsigned long *xen_p2m;
extern uint64_t xen_version_word;  /* XENVER_version: major << 16 | minor */
extern uint64_t xen_premapped_end; /* pa up to which Xen had mapped dom0 */

/* Machine frame of a kernel virtual address (pseudo-physical via P2M). */
uint64_t xen_virt_to_mfn(const void *va);
uint64_t xen_poke_tables(void); /* guest/xen/poke.c */

/*
 * guest/xen/pgtable.c: the MMU pvops (C halves), the P2M/M2P, and how
 * page-table entries are written (xenmmu=, doc/xen-pv.md).
 */
enum xen_mmu_strategy {
	XEN_MMU_HYPERCALL, /* one mmu_update per entry */
	XEN_MMU_BATCHED,   /* queued in lazy MMU sections (default) */
	XEN_MMU_WRITABLE,  /* L1 entries stored, Xen emulates the write */
	XEN_MMU_NR,
};
extern enum xen_mmu_strategy xen_mmu_strategy;
extern const char *const xen_mmu_names[XEN_MMU_NR];
void xen_mmu_choose(const char *opt); /* from xenmmu=; NULL: batched */

#define XEN_INVALID_FRAME (~0ULL)
uint64_t xen_pfn_to_mfn(uint64_t pfn); /* XEN_INVALID_FRAME if not ours */
uint64_t xen_mfn_to_pfn(uint64_t mfn); /* M2P, checked against the P2M */
void xen_mmu_flush(void);	       /* issue this CPU's queued updates */

/* What the MMU ops did (tests, benchmarks, the boot report). */
struct xen_mmu_stats {
	uint64_t hypercalls; /* mmu_update and multicall hypercalls */
	uint64_t updates;    /* entries Xen applied through mmu_update */
	uint64_t flushes;    /* non-empty lazy queues issued */
	uint64_t emulated;   /* entries stored for Xen to emulate */
	uint64_t pinned, unpinned, refused;
};
extern struct xen_mmu_stats xen_mmu_stats;

/*
 * A refused update normally panics. A test that provokes one calls
 * xen_mmu_expect_refusal(true): refusals are then printed and the first
 * is kept for xen_mmu_last_refusal() (rc 0: none).
 */
struct xen_mmu_refusal {
	long rc;      /* Xen's error (-XEN_E*) */
	uint64_t ptr; /* machine address of the entry (or of the page) */
	uint64_t val; /* the entry Xen refused */
	const char *how;
};
void xen_mmu_expect_refusal(bool on);
struct xen_mmu_refusal xen_mmu_last_refusal(void);

uint64_t xen_set_pte(uint64_t *entry, uint64_t val);
uint64_t xen_set_pmd(uint64_t *entry, uint64_t val);
uint64_t xen_set_pud(uint64_t *entry, uint64_t val);
uint64_t xen_set_pgd(uint64_t *entry, uint64_t val);
uint64_t xen_make_pte(uint64_t v);
uint64_t xen_pte_val(uint64_t v);
uint64_t xen_alloc_pt(uint64_t pa, uint64_t level);
uint64_t xen_release_pt(uint64_t pa, uint64_t level);
uint64_t xen_lazy_mmu_enter(void);
uint64_t xen_lazy_mmu_leave(void);

/* guest/xen/mmu.c: NX on every page Xen mapped for us outside text. */
void xen_nx_outside_text(void);

/* guest/xen/start.c: this vCPU's trap table and callbacks */
void xen_traps_cpu_init(void);

/* guest/xen/smp.c: the other vCPUs (struct platform SMP hooks) */
struct percpu;
unsigned xen_cpus_list(uint32_t *ids, unsigned max);
bool xen_cpu_start(struct percpu *p);
void xen_cpu_abandon(struct percpu *p);

/* guest/xen/events.c */
typedef void (*evtchn_handler_t)(evtchn_port_t port);
void xen_events_init(void);
void xen_evtchn_bind(evtchn_port_t port, evtchn_handler_t fn);
evtchn_port_t xen_bind_virq(uint32_t virq, uint32_t vcpu);
void xen_tick_start(unsigned hz); /* this vCPU's tick */
uint64_t xen_events_delivered(void);
void xen_ipi_init_cpu(struct percpu *p); /* this vCPU's IPI ports */
uint64_t xen_send_ipi(uint64_t arg);
uint64_t xen_send_ipi_mask(uint64_t arg);
uint64_t xen_lock_wait(const volatile uint32_t *ptr, uint64_t val);
uint64_t xen_lock_kick(uint64_t cpu);

/* guest/xen/ops.c: C halves of the Xen pvops (called through thunks). */
uint64_t xen_force_upcall(void);
uint64_t xen_restore_fl(unsigned long fl);
uint64_t xen_safe_halt(void);
uint64_t xen_halt(void);
uint64_t xen_write_cr3(unsigned long cr3);
uint64_t xen_flush_tlb_one(unsigned long va);
uint64_t xen_clock_read(void);
uint64_t xen_flush_tlb_others(unsigned long va, uint64_t mask);
void xen_clock_init(void);

#endif
