/*
 * percpu.h - per-CPU state, reached through %gs.
 *
 * Each CPU's GS base points at its struct percpu (native: MSR_GS_BASE;
 * Xen PV: set_segment_base). Inline pvop templates address fields with
 * %gs:OFFSET, so the offsets are fixed here and checked against the
 * struct. Under Xen PV, vcpu_info lives inside struct percpu (registered
 * with VCPUOP_register_vcpu_info), which is what lets the irq ops be one
 * instruction on any CPU.
 *
 * There is one struct percpu per possible CPU, percpu_area[NR_CPUS_MAX]
 * (one page each, in .bss); percpu0 is the boot CPU's. CPU numbers are
 * dense, 0 .. smp_online - 1, in the order the CPUs came up; CPU n's area
 * is smp_cpus[n] (smp.h), which is percpu_area[n] unless an earlier CPU
 * failed to come up and its area was retired.
 */
#ifndef TINYPV_PERCPU_H
#define TINYPV_PERCPU_H

/* The offsets inline pvop templates use are fixed in the patch seam. */
#include "patch_seam.h"

/*
 * The entry code's words (entry/user.S): the user %rsp at a native
 * syscall, and the kernel stack top a system call switches to.
 */
#define PERCPU_USER_RSP 24
#define PERCPU_USER_KSTACK 32

/* The most CPUs this kernel brings up (more present: the rest stay off). */
#define NR_CPUS_MAX 16

#ifndef __ASSEMBLER__
#include "xen_public.h"
#include <stddef.h>
#include <stdint.h>

/* The last fault a fixup resumed from, on this CPU (trap.c). */
struct fault_record {
	uint64_t count;
	uint64_t vector, error, rip, cr2;
};

struct spinlock;

struct percpu {
	struct percpu *self;
	uint64_t cpu;
	uint64_t cr3;
	uint64_t user_rsp;    /* entry/user.S: the user %rsp at a syscall */
	uint64_t user_kstack; /* the kernel stack top a syscall switches to */
	uint64_t pad[3];
	struct vcpu_info vcpu_info;
	/* Fields below are C-only. */
	volatile uint64_t ticks; /* timer interrupts taken */
	volatile uint64_t irqs;	 /* all interrupts/upcalls taken */
	struct fault_record fault;
	uint32_t apic_id;	       /* native: LAPIC id; Xen: vCPU id */
	volatile bool online;	       /* set by the CPU itself when it is up */
	uint64_t poke_saved_cr3;       /* patch_seam.c: CR3 to go back to */
	unsigned poke_depth;	       /* patch_seam.c: enters not yet left */
	volatile uint64_t pv_eoi_word; /* KVM PV EOI (guest/kvm.c) */
	uint64_t next_tick;	       /* Xen: the next one-shot deadline */
	uint64_t stack_top;	       /* this CPU's kernel stack */
	/* The mailbox (smp.h: smp_call_on): written by the caller. */
	void (*volatile call_fn)(void *arg);
	void *volatile call_arg;
	volatile uint64_t call_seq;  /* caller: requests posted */
	volatile uint64_t call_done; /* this CPU: requests finished */
	/* IPIs (smp.h): counted by the receiver, per VEC_IPI_* vector. */
	volatile bool ipi_ready;	   /* this CPU can take IPIs */
	uint32_t ipi_port[4];		   /* Xen: its port per vector */
	volatile uint64_t ipi_received[4]; /* handled, per vector */
	/* Live patching: the latest sync round this CPU acknowledged. */
	volatile uint64_t sync_ack;
	/* Native flush_tlb_others: the request this CPU is asked to do. */
	volatile uint64_t tlb_va;
	volatile uint64_t tlb_seq, tlb_done;
	/* The spinlock slow path (spinlock.h): what this CPU waits for. */
	struct spinlock *volatile lock_waiting;
	uint32_t lock_ticket;
	uint32_t lock_port; /* Xen: its masked port for lock_kick */
} __attribute__((aligned(4096)));

_Static_assert(offsetof(struct percpu, self) == PERCPU_SELF, "percpu");
_Static_assert(offsetof(struct percpu, cpu) == PERCPU_CPU, "percpu");
_Static_assert(offsetof(struct percpu, cr3) == PERCPU_CR3, "percpu");
_Static_assert(offsetof(struct percpu, user_rsp) == PERCPU_USER_RSP, "percpu");
_Static_assert(offsetof(struct percpu, user_kstack) == PERCPU_USER_KSTACK,
	       "percpu");
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

/* One page each: Xen's vcpu_info (at 64) must not cross a page. */
_Static_assert(sizeof(struct percpu) == 4096, "struct percpu is one page");

extern struct percpu percpu_area[NR_CPUS_MAX];
#define percpu0 (percpu_area[0])

/*
 * A struct percpu's slot in percpu_area: the key for other per-CPU
 * arrays (descriptors, stacks, KVM's shared pages). Not the CPU number:
 * an AP that was abandoned keeps its slot, and the next CPU started gets
 * its number but a new slot, so a late start of the abandoned one never
 * shares anything with it.
 */
static inline unsigned percpu_slot(const struct percpu *p)
{
	return (unsigned)(p - percpu_area);
}

static inline struct percpu *this_cpu(void)
{
	struct percpu *p;
	asm volatile("mov %%gs:%c1, %0" : "=r"(p) : "i"(PERCPU_SELF));
	return p;
}
#endif

#endif
