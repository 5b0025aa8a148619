/*
 * trap.h - exceptions, interrupts and the exception-fixup table.
 *
 * Every exception and interrupt arrives in trap_dispatch() with a
 * struct trap_frame (entry/traps.S builds it, natively and under Xen PV).
 * Exceptions first consult the fixup table: an instruction registered with
 * EXTABLE_JUMP() (patch_seam.h) that faults resumes at its fixup label; the
 * fault is recorded in this CPU's struct percpu (last_fault), and, for a
 * record with a report register (EXTABLE_REPORT), also written into that
 * register of the interrupted code, which is how *_safe() wrappers learn
 * of their own fault and no other.
 * Anything unhandled prints the vector, error code, RIP, CR2 for #PF and
 * the registers, then panics.
 */
#ifndef TINYPV_TRAP_H
#define TINYPV_TRAP_H

#include <stdbool.h>
#include <stdint.h>

#include "percpu.h"

struct trap_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss;
};

#define VEC_DE 0
#define VEC_DB 1
#define VEC_NMI 2
#define VEC_BP 3
#define VEC_UD 6
#define VEC_DF 8
#define VEC_GP 13
#define VEC_PF 14
#define VEC_TIMER 0x20 /* LAPIC timer */
/* IPIs (smp.h); Xen PV binds one event channel per vector and CPU. */
#define VEC_IPI_BASE 0x40
#define VEC_IPI_CALL 0x40 /* wake: the mailbox has a request */
#define VEC_IPI_PING 0x41 /* the IPI tests and benchmarks */
#define VEC_IPI_TLB 0x42  /* native flush_tlb_others: invlpg, acknowledge */
#define VEC_IPI_SYNC 0x43 /* live patching: serialise, acknowledge */
#define SMP_IPI_NR 4
#define VEC_SPURIOUS 0xff
#define VEC_XEN_UPCALL 256 /* pseudo-vector: Xen event upcall */
#define VEC_SYSCALL 257	   /* pseudo-vector: a user system call */

/*
 * A fault with RIP in [insn, insn + len) is fixed up: EXT_JUMP resumes at
 * insn + fixup; EXT_RET returns to the caller (for faulting instructions
 * inside pvop stubs, which are reached by call). reg (EXT_REG_*) names a
 * register that receives EXT_FAULTED | error << 8 | vector.
 */
struct extable_entry {
	uint64_t insn;
	int32_t fixup;
	uint16_t len;
	uint8_t kind; /* EXT_JUMP, EXT_RET */
	uint8_t reg;  /* EXT_REG_NONE or a PVREG_* register number */
};
_Static_assert(sizeof(struct extable_entry) == 16, "extable record");

/* This CPU's last fixed-up fault. */
#define last_fault (this_cpu()->fault)

typedef void (*irq_handler_t)(struct trap_frame *f);

void trap_init_native(void);
/* native: this CPU's GDT, TSS, IDT, by its percpu_slot() */
void trap_init_cpu(unsigned slot);
uint64_t desc_current_gdt(void);	  /* sgdt: the GDT loaded here */
uint64_t desc_gdt_of_slot(unsigned slot); /* the GDT kept for a slot */
void irq_register(unsigned vector, irq_handler_t fn);
void trap_dispatch(struct trap_frame *f);
void dump_frame(const struct trap_frame *f);
const char *exception_name(unsigned vector);

/*
 * The fixup decision and the "ret follows a call to target" check that
 * exception() uses, exposed for tests/kernel/test_traps.c, which feeds
 * them made-up frames. Both are false, changing nothing, when they cannot
 * trust what they read; trap_fixup() changes *f and last_fault only when
 * it resumes.
 */
bool trap_fixup(struct trap_frame *f, uint64_t cr2);
bool trap_call_to(uint64_t ret, uint64_t target);

/* How many faults this CPU has had fixed up (tests). */
static inline uint64_t fault_count(void)
{
	return *(volatile uint64_t *)&this_cpu()->fault.count;
}

/* Set by Xen PV start-up: return from traps through the iret hypercall. */
extern uint8_t trap_return_via_xen;

#endif
