/*
 * smp.h - secondary CPUs: bring-up, and running a function on another CPU.
 *
 * smp_boot() (guest/main.c, after boot patching) lists the CPUs through the
 * platform (native/KVM: the ACPI MADT; Xen PV: the vCPUs dom0 was given),
 * then starts them one at a time (native: INIT-SIPI-SIPI through the
 * real-mode trampoline, guest/smp_native.c; Xen PV: VCPUOP_initialise and
 * VCPUOP_up, guest/xen/smp.c) and waits a bounded time for each to say it
 * is up. CPU numbers are dense, in start order: 0 is the boot CPU.
 *
 * An AP that is up runs its own tick and idles (safe_halt) in
 * smp_ap_idle(), checking its mailbox whenever it wakes. The caller posts
 * a request and sends the target a VEC_IPI_CALL IPI (the send_ipi pvop),
 * so it wakes at once; its tick (at least once every 10 ms) is the
 * fallback should an IPI ever go missing:
 *
 *   static void whoami(void *arg) { *(unsigned *)arg = smp_cpu(); }
 *   unsigned got;
 *   if (!smp_call_on(1, whoami, &got, SMP_CALL_TIMEOUT_NS))
 *           ... cpu 1 did not run it in time ...
 *
 * The function runs on the target with interrupts off (it may enable them
 * itself, and must leave them off). A call that timed out leaves the
 * mailbox busy: until the target finishes it, further calls to that CPU
 * return false at once.
 *
 * Text patching stops the other CPUs (smp_stop_others, used by the patch
 * seam): each AP is sent to a tight loop, with interrupts off and no patch
 * site in it, until the writer lets it go; it then serialises before it
 * executes anything that may have changed (doc/patching.md).
 */
#ifndef TINYPV_SMP_H
#define TINYPV_SMP_H

#include <stdbool.h>
#include <stdint.h>

#include "percpu.h"

#define SMP_CALL_TIMEOUT_NS 1000000000ULL  /* 1 s: 100 ticks */
#define SMP_START_TIMEOUT_NS 1000000000ULL /* an AP's bring-up */
#define AP_STACK_SIZE (4 * 4096)

extern unsigned smp_online;  /* CPUs up, the boot CPU included */
extern unsigned smp_present; /* CPUs the platform lists */
/*
 * The struct percpu of each online CPU, by CPU number. Usually
 * &percpu_area[n]; after a CPU failed to come up its area is skipped.
 */
extern struct percpu *smp_cpus[NR_CPUS_MAX];

static inline unsigned smp_cpu(void)
{
	return (unsigned)this_cpu()->cpu;
}

/* guest/main.c: after boot patching, before the boot report. */
void smp_boot(void);
void smp_report(void);

/*
 * Run fn(arg) on cpu and wait for it, at most timeout_ns; false if not (or
 * if called from an AP or for CPU 0: only CPU 0 posts and only APs poll,
 * doc/patching.md). After a timeout fn may still run later: arg must
 * outlive the call (static data, not the caller's stack frame).
 */
bool smp_call_on(unsigned cpu, void (*fn)(void *arg), void *arg,
		 uint64_t timeout_ns);

/*
 * Park every other online CPU outside all patch sites, interrupts off;
 * smp_resume_others() lets them go. Panics if a CPU does not stop in
 * time (text must not change under it). No-op with one CPU online.
 */
void smp_stop_others(void);
void smp_resume_others(void);

/* What the stops cost (tests, reports): written by the stopping CPU. */
struct smp_stop_stats {
	uint64_t rounds;      /* stops that parked at least one CPU */
	unsigned last_parked; /* CPUs parked by the latest */
	uint64_t wait_ns;     /* total time spent waiting for them */
};
extern struct smp_stop_stats smp_stop_stats;

/*
 * The same, in two halves, so that a caller can start work on several
 * CPUs before it waits for any: smp_post() returns false if the mailbox
 * is busy (or cpu is this one, or not online); smp_wait() waits for the
 * request smp_post() numbered *seq.
 */
bool smp_post(unsigned cpu, void (*fn)(void *arg), void *arg, uint64_t *seq);
bool smp_wait(unsigned cpu, uint64_t seq, uint64_t timeout_ns);

/*
 * IPIs. The send_ipi pvops (pvops.h) deliver vector VEC_IPI_* to a CPU;
 * the platform's receive path (native: the IDT vector, then EOI; Xen PV:
 * the CPU's event channel for that vector) calls smp_ipi_handle(), which
 * counts it in the receiver's ipi_received[] and calls the handler
 * registered for the vector. Handlers run with interrupts off.
 */
void smp_ipi_register(unsigned vector, void (*fn)(void));
void smp_ipi_handle(unsigned vector);
uint64_t smp_online_mask(void); /* bit n: CPU n is online */

/* The mask form of flush_tlb_others for the native IPI path. */
uint64_t native_flush_tlb_others(unsigned long va, uint64_t mask);
/* Serve this CPU's pending native TLB request (also while waiting). */
void smp_tlb_serve(void);

/*
 * The percpu slot whose AP stack guard page holds va, or -1 (not a guard
 * page, or not unmapped on this platform): the fault report uses it.
 */
int smp_stack_guard_slot(uint64_t va);

/*
 * Live patching's sync round (the patch seam's seam_sync_others): bump
 * the round, IPI every other online CPU (VEC_IPI_SYNC), wait (bounded:
 * panic naming the CPU) until each has serialised and acknowledged;
 * returns the IPIs sent. smp_sync_serve() is the receiving side, also
 * polled by waits with interrupts off; smp_serve_pending() serves both
 * the sync and a native TLB request (the waits call it).
 */
unsigned smp_sync_others(void);
void smp_sync_serve(void);
void smp_serve_pending(void);
struct smp_sync_stats {
	uint64_t rounds; /* sync rounds that reached at least one CPU */
};
extern struct smp_sync_stats smp_sync_stats;

/* The end of every AP's start-up: say so, mark it online, idle. */
void smp_ap_online(struct percpu *p) __attribute__((noreturn));

#endif
