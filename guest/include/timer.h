/*
 * timer.h - time: the TSC, the periodic tick and clock_read()'s sources.
 *
 * Natively the TSC and the LAPIC timer are calibrated once against the
 * PIT (10 ms window); the tick is the LAPIC timer in periodic mode. KVM
 * reads time from kvmclock, Xen PV from the vcpu_time_info pvclock
 * (guest/pvclock.c) and ticks with set_timer_op one-shots.
 */
#ifndef TINYPV_TIMER_H
#define TINYPV_TIMER_H

#include <stdbool.h>
#include <stdint.h>

#include "alternative.h"
#include "static_call.h"

#define TICK_HZ 100

extern uint64_t tsc_khz; /* 0 until calibrated */

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

/*
 * Serialised TSC read, for measurements: no earlier instruction is still
 * running when the TSC is read. An alternative (alt/): `lfence; rdtsc`
 * everywhere, `rdtscp` (which waits for earlier instructions itself, and
 * also writes %ecx) on a CPU that has it.
 */
static inline uint64_t rdtsc_ordered(void)
{
	uint32_t lo, hi, aux;
	asm volatile(ALTERNATIVE("lfence; rdtsc", "rdtscp", X86_FEATURE_RDTSCP)
		     : "=a"(lo), "=d"(hi), "=c"(aux)::"memory");
	return (uint64_t)hi << 32 | lo;
}

uint64_t ticks(void);
/* What a tick does: count it on this CPU. Called as static_call(tick). */
void tick_handler_common(void);
DECLARE_STATIC_CALL(tick, tick_handler_common);

/* guest/apic.c (native, KVM) */
void apic_init(void);
void native_tick_start(unsigned hz);
uint64_t native_apic_eoi(void);
const char *apic_mode(void);
/* Whether the IPI sender was patched to its x2APIC-only form (tests). */
bool apic_ipi_is_x2apic_only(void);
void apic_init_ap(void);
uint32_t apic_id(void);
bool apic_start_cpu(uint32_t apic_id, uint8_t vector); /* INIT-SIPI-SIPI */
void apic_stop_cpu(uint32_t apic_id);		       /* INIT */
/* The native send_ipi pvops: arg = (cpu or mask) << 8 | vector. */
uint64_t native_send_ipi(uint64_t arg);
uint64_t native_send_ipi_mask(uint64_t arg);
struct percpu;
void native_ipi_init_cpu(struct percpu *p);

/* TSC clock, the native clock_read(). */
void tsc_clock_init(void);
uint64_t tsc_clock_read(void);

/* Busy-wait using clock_read(). */
void delay_ns(uint64_t ns);

#endif
