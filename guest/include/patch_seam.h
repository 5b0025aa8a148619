/*
 * patch_seam.h - what the patch engine (patch/) and its clients (pvops/)
 * may use of the kernel. The one guest/ header those folders include.
 *
 * Everything else they need arrives through their own interfaces (a
 * backend is handed its facts by the platform code that builds it). The
 * host tests (tests/host/) implement this seam with user-space fakes, which
 * is what lets them run the real engine and pvop code unchanged.
 *
 *   services   printk, panic, the memory functions, a lock, the interrupt
 *              state, kernel text bounds;
 *   poking     the private writable view of kernel text (poke_enter/leave):
 *              only the CPU that entered it can see it; stopping the other
 *              CPUs while text changes (others_stop/resume), or, for the
 *              live path, syncing them (sync_others, sync_serve);
 *   layout     the per-CPU fields inline templates address through %gs;
 *   fixups     exception-fixup records (the kernel's trap code reads them).
 */
#ifndef TINYPV_PATCH_SEAM_H
#define TINYPV_PATCH_SEAM_H

/* ---- per-CPU fields at fixed %gs offsets (struct percpu, percpu.h) ---- */
#define PERCPU_SELF 0
#define PERCPU_CPU 8
#define PERCPU_CR3 16 /* Xen PV: the CR3 this CPU last loaded */
#define PERCPU_VCPU_INFO 64
#define PERCPU_VCPU_PENDING (PERCPU_VCPU_INFO + 0)
#define PERCPU_VCPU_MASK (PERCPU_VCPU_INFO + 1)
#define PERCPU_VCPU_CR2 (PERCPU_VCPU_INFO + 16)

/*
 * ---- exception-fixup records (struct extable_entry, trap.h) ----
 * A fault in [insn, end) resumes at fixup (EXT_JUMP) or returns to the
 * caller (EXT_RET, for faulting instructions inside pvop stubs). With a
 * report register (EXT_REG_*), the trap code also writes a fault word
 * (EXT_FAULT_WORD below) into that register of the interrupted context:
 * the code learns of the fault from its own register, whatever other
 * faults this or another CPU takes meanwhile.
 */
#define EXT_JUMP 0
#define EXT_RET 1
#define EXT_REG_NONE 0xff
#define EXT_REG_RCX 1 /* register numbers in PVREG_* order */
#define EXT_FAULTED (1ULL << 63)

#ifdef __ASSEMBLER__
/* clang-format off */
#define EXTABLE_ASM(insn, end, fixup, kind)				\
	.pushsection .extable, "a";					\
	.balign 8;							\
	.quad insn;							\
	.long fixup - insn;						\
	.short end - insn;						\
	.byte kind, EXT_REG_NONE;					\
	.popsection

#define GLOBAL(name)							\
	.globl name;							\
	name:

#define FUNC(name)							\
	.globl name;							\
	.type name, @function;						\
	name:

#define ENDFUNC(name) .size name, .- name
/* clang-format on */
#else
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define __PATCH_STR(x) #x
#define PATCH_STR(x) __PATCH_STR(x)

/* From inline asm: label names as strings, e.g. "1b"; reg EXT_REG_*. */
#define EXTABLE_REPORT(insn, end, fixup, reg)                                  \
	".pushsection .extable, \"a\"\n\t.balign 8\n\t.quad " insn             \
	"\n\t.long " fixup " - " insn "\n\t.short " end " - " insn             \
	"\n\t.byte 0, " reg "\n\t.popsection\n\t"
#define EXTABLE_JUMP(insn, end, fixup)                                         \
	EXTABLE_REPORT(insn, end, fixup, PATCH_STR(EXT_REG_NONE))

/* ---- services ---- */
int printk(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void panic(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
int snprintf(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void *memcpy(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
int strcmp(const char *a, const char *b);

/* Kernel text: the only bytes the engine writes. */
extern char _text_start[], _text_end[];

/* A spinning lock; interrupts are the caller's business. */
struct seam_lock {
	volatile uint32_t held;
};
void seam_lock(struct seam_lock *l);
void seam_unlock(struct seam_lock *l);

/* This CPU's interrupt state (the pvops irq ops, natively cli/popf). */
unsigned long seam_irq_save(void);
void seam_irq_restore(unsigned long flags);

/*
 * The private poke mapping: seam_poke_enter() switches this CPU to page
 * tables that add a writable alias of all kernel text, and returns the
 * alias of _text_start (the alias of text address a is that plus
 * a - _text_start). No other page table has the alias; a CPU is in those
 * tables only between the two calls (the writer of a batch, or a CPU
 * dropping a stale translation in #BP, patch/live.c). The calls nest on
 * one CPU (the inner pair switches nothing). seam_poke_leave() switches
 * back; on return no TLB entry of the alias survives. Between the two,
 * interrupts must stay off.
 */
uintptr_t seam_poke_enter(void);
void seam_poke_leave(void);

/*
 * Stop every other CPU outside all patch sites (interrupts off, spinning
 * in code that is never patched) until seam_others_resume(); on leaving,
 * each serialises itself before it runs anything that changed. The engine
 * brackets every text write with these. Nests; no-ops with one CPU.
 */
void seam_others_stop(void);
void seam_others_resume(void);

/* Make this CPU fetch the bytes just written (a serialising instruction). */
void seam_serialise(void);

/* ---- the live path (patch/live.c) ---- */
/* This CPU's number (0 = the boot CPU); whether any other CPU is online
 * (runs text). */
unsigned seam_cpu(void);
bool seam_others_online(void);
/*
 * One sync round: an IPI to every other online CPU, whose handler
 * serialises that CPU and acknowledges; returns once every one has, with
 * the number of IPIs sent. A CPU that does not acknowledge in a second is
 * a panic naming it. Call with interrupts off.
 */
unsigned seam_sync_others(void);
/*
 * Serve a sync pending for this CPU (serialise, acknowledge), if any.
 * THE RULE: every loop that waits for another CPU with interrupts off
 * (a lock's slow path, a mailbox or acknowledgement wait, this seam's
 * own lock) calls this on each turn, or a writer waiting for that CPU's
 * acknowledgement and the CPU waiting for the writer never finish.
 * seam_lock() does it itself.
 */
void seam_sync_serve(void);
/* A bounded busy-wait budget for the #BP handler's CS-prefix wait. */
#define SEAM_SPIN_LIMIT (1ULL << 24)
#endif

#endif
