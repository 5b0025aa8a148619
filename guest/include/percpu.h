/*
 * percpu.h - per-CPU state, reached through %gs.
 *
 * Each CPU's GS base points at its struct percpu (native: MSR_GS_BASE;
 * Xen PV: set_segment_base). Inline pvop templates address fields with
 * %gs:OFFSET, so the offsets are fixed here and checked against the
 * struct. Under Xen PV, vcpu_info lives inside struct percpu (registered
 * with VCPUOP_register_vcpu_info), which is what lets the irq ops be one
 * instruction on any CPU once SMP arrives.
 */
#ifndef TINYPV_PERCPU_H
#define TINYPV_PERCPU_H

/* The offsets inline pvop templates use are fixed in the patch seam. */
#include "patch_seam.h"

#ifndef __ASSEMBLER__
#include "xen_public.h"
#include <stddef.h>
#include <stdint.h>

/* The last fault a fixup resumed from, on this CPU (trap.c). */
struct fault_record {
	uint64_t count;
	uint64_t vector, error, rip, cr2;
};

struct percpu {
	struct percpu *self;
	uint64_t cpu;
	uint64_t cr3;
	uint64_t pad[5];
	struct vcpu_info vcpu_info;
	/* Fields below are C-only. */
	volatile uint64_t ticks; /* timer interrupts taken */
	volatile uint64_t irqs;	 /* all interrupts/upcalls taken */
	struct fault_record fault;
} __attribute__((aligned(4096)));

_Static_assert(offsetof(struct percpu, self) == PERCPU_SELF, "percpu");
_Static_assert(offsetof(struct percpu, cpu) == PERCPU_CPU, "percpu");
_Static_assert(offsetof(struct percpu, cr3) == PERCPU_CR3, "percpu");
_Static_assert(offsetof(struct percpu, vcpu_info) == PERCPU_VCPU_INFO,
	       "percpu");
_Static_assert(offsetof(struct percpu, vcpu_info.evtchn_upcall_pending) + 0 ==
		   PERCPU_VCPU_PENDING,
	       "percpu");
_Static_assert(offsetof(struct percpu, vcpu_info.evtchn_upcall_mask) ==
		   PERCPU_VCPU_MASK,
	       "percpu");
_Static_assert(offsetof(struct percpu, vcpu_info.arch.cr2) == PERCPU_VCPU_CR2,
	       "percpu");

extern struct percpu percpu0;

static inline struct percpu *this_cpu(void)
{
	struct percpu *p;
	asm volatile("mov %%gs:%c1, %0" : "=r"(p) : "i"(PERCPU_SELF));
	return p;
}
#endif

#endif
