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
extern uint64_t xen_version_word; /* XENVER_version: major << 16 | minor */

/* Machine frame of a kernel virtual address (pseudo-physical via P2M). */
uint64_t xen_virt_to_mfn(const void *va);
uint64_t xen_poke_tables(void); /* guest/xen/poke.c */

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
