/*
 * pvops.h - the only way the kernel performs a privileged operation.
 *
 * Every wrapper below emits a patchable call site: an indirect call through
 * pv_ops.fn[op], padded with NOPs to the op's slot, and a patch-engine
 * record of kind PATCH_KIND_PVOP in .patch.sites (the site, its pv_ops
 * slot, op, clobber mask). Unpatched, the site works as it stands. At boot
 * pvop_patch_all() has the engine rewrite each site for the detected
 * backend: the backend's bytes inline, a direct call, or NOPs.
 *
 *   unsigned long fl = irq_save();   // save_fl + irq_disable
 *   ...
 *   irq_restore(fl);
 *
 * The register contract of each op is in pvop_abi.h. Adding an op:
 * doc/pvops.md, "How to add an op".
 */
#ifndef TINYPV_PVOPS_H
#define TINYPV_PVOPS_H

#include <stdbool.h>
#include <stdint.h>

#include "nops.h"
#include "patch.h"
#include "patch_abi.h"
#include "patch_seam.h"
#include "pvop_abi.h"

/* Targets of the unpatched indirect calls; set by pvop_install_table(). */
struct pv_ops {
	void *fn[PVOP_NR];
};
extern struct pv_ops pv_ops;

#define X86_EFLAGS_IF 0x200UL

#define PVOP_STR(x) PATCH_STR(x)

/*
 * A site is a call: the compiler must set up this function's frame before
 * it (so a backtrace from inside the call sees the caller), which is what
 * naming the stack pointer as an in/out operand of every site asm tells
 * it (Linux's ASM_CALL_CONSTRAINT). scripts/check_sites.py checks it.
 */
#define PVOP_CALL_CONSTRAINT PATCH_CALL_CONSTRAINT

/*
 * The site itself. Operands %c[pv_op], %c[pv_slot], %c[pv_clob] and
 * %c[pv_flags] come from PVOP_ARGS. The padding is made of the assembler's
 * multi-byte NOPs (.nops); the engine validates them before the first
 * write. The record (patch_abi.h) is kind PVOP: payload = the op's pv_ops
 * slot, arg = op, arg2 = the clobber mask.
 */
#define PVOP_SITE_ASM                                                          \
	"771:\n\t"                                                             \
	"call *pv_ops+8*%c[pv_op](%%rip)\n\t"                                  \
	".nops %c[pv_slot] - (. - 771b)\n"                                     \
	"773:\n\t" PATCH_RECORD_ASM(                                           \
	    "771b", "773b", "pv_ops+8*%c[pv_op]", PATCH_STR(PATCH_KIND_PVOP),  \
	    "%c[pv_flags]", "%c[pv_op]", "%c[pv_clob]")

/* Every site of an op carries the op's one clobber mask (pvop_abi.h). */
#define PVOP_ARGS_FLAGS(op, flags)                                             \
	[pv_op] "i"(PVOP_##op), [pv_slot] "i"(PVOP_SLOT_##op),                 \
	    [pv_clob] "i"(PVOP_CLOB_##op), [pv_flags] "i"(flags)
#define PVOP_ARGS(op) PVOP_ARGS_FLAGS(op, 0)

/*
 * Site bodies, by register shape. ASM is the call-site text: PVOP_SITE_ASM
 * for every real site; the benchmarks also pass their own (a retpoline
 * call) to compare dispatch methods with identical register constraints.
 * FLAGS pins a benchmark site's dispatch mode (PVOP_SITE_FORCE_*); all
 * other sites pass 0, via the wrappers below.
 */
#define PVOP_V_RAX_ASM(ASM, op, flags)                                         \
	do {                                                                   \
		unsigned long __rax;                                           \
		asm volatile(ASM                                               \
			     : "=a"(__rax), PVOP_CALL_CONSTRAINT               \
			     : PVOP_ARGS_FLAGS(op, flags)                      \
			     : "memory", "cc");                                \
	} while (0)

#define PVOP_R_RAX_ASM(ASM, op, flags, out)                                    \
	asm volatile(ASM                                                       \
		     : "=a"(out), PVOP_CALL_CONSTRAINT                         \
		     : PVOP_ARGS_FLAGS(op, flags)                              \
		     : "memory", "cc")

#define PVOP_W_RDI_ASM(ASM, op, flags, in)                                     \
	do {                                                                   \
		unsigned long __rax;                                           \
		asm volatile(ASM                                               \
			     : "=a"(__rax), PVOP_CALL_CONSTRAINT               \
			     : "D"(in), PVOP_ARGS_FLAGS(op, flags)             \
			     : "memory", "cc");                                \
	} while (0)

#define PVOP_READ_MSR_ASM(ASM, flags, msr, lo, hi)                             \
	asm volatile(ASM                                                       \
		     : "=a"(lo), "=d"(hi), PVOP_CALL_CONSTRAINT                \
		     : "c"(msr), PVOP_ARGS_FLAGS(READ_MSR, flags)              \
		     : "memory", "cc")

#define PVOP_CPUID_ASM(ASM, flags, r)                                          \
	asm volatile(ASM                                                       \
		     : "+a"((r).eax), "=b"((r).ebx), "+c"((r).ecx),            \
		       "=d"((r).edx), PVOP_CALL_CONSTRAINT                     \
		     : PVOP_ARGS_FLAGS(CPUID, flags)                           \
		     : "memory", "cc")

#define PVOP_V_RAX(op, flags) PVOP_V_RAX_ASM(PVOP_SITE_ASM, op, flags)
#define PVOP_R_RAX(op, flags, out) PVOP_R_RAX_ASM(PVOP_SITE_ASM, op, flags, out)
#define PVOP_W_RDI(op, flags, in) PVOP_W_RDI_ASM(PVOP_SITE_ASM, op, flags, in)

static inline void irq_disable(void)
{
	PVOP_V_RAX(IRQ_DISABLE, 0);
}

static inline void irq_enable(void)
{
	PVOP_V_RAX(IRQ_ENABLE, 0);
}

/* Returns a flags word in which only X86_EFLAGS_IF is meaningful. */
static inline unsigned long save_fl(void)
{
	unsigned long fl;
	PVOP_R_RAX(SAVE_FL, 0, fl);
	return fl;
}

static inline void restore_fl(unsigned long fl)
{
	PVOP_W_RDI(RESTORE_FL, 0, fl);
}

static inline unsigned long irq_save(void)
{
	unsigned long fl = save_fl();
	irq_disable();
	return fl;
}

static inline void irq_restore(unsigned long fl)
{
	restore_fl(fl);
}

static inline bool irqs_enabled(void)
{
	return save_fl() & X86_EFLAGS_IF;
}

/* Enable interrupts and wait for one, with no window between the two. */
static inline void safe_halt(void)
{
	PVOP_V_RAX(SAFE_HALT, 0);
}

/* Wait for an interrupt with interrupts as they are. */
static inline void halt(void)
{
	PVOP_V_RAX(HALT, 0);
}

static inline unsigned long read_cr2(void)
{
	unsigned long v;
	PVOP_R_RAX(READ_CR2, 0, v);
	return v;
}

/* On Xen PV, CR3 values are machine addresses, as the hardware sees them. */
static inline unsigned long read_cr3(void)
{
	unsigned long v;
	PVOP_R_RAX(READ_CR3, 0, v);
	return v;
}

static inline void write_cr3(unsigned long v)
{
	PVOP_W_RDI(WRITE_CR3, 0, v);
}

static inline void flush_tlb_one(unsigned long va)
{
	PVOP_W_RDI(FLUSH_TLB_ONE, 0, va);
}

static inline void io_delay(void)
{
	PVOP_V_RAX(IO_DELAY, 0);
}

static inline uint64_t read_msr(uint32_t msr)
{
	uint32_t lo, hi;
	PVOP_READ_MSR_ASM(PVOP_SITE_ASM, 0, msr, lo, hi);
	return ((uint64_t)hi << 32) | lo;
}

static inline void write_msr(uint32_t msr, uint64_t v)
{
	uint32_t lo = (uint32_t)v, hi = (uint32_t)(v >> 32);
	asm volatile(PVOP_SITE_ASM
		     : "+a"(lo), "+d"(hi), PVOP_CALL_CONSTRAINT
		     : "c"(msr), PVOP_ARGS(WRITE_MSR)
		     : "memory", "cc");
}

/*
 * The _safe variants survive a #GP (unknown MSR): the site carries its own
 * fixup record, and a fault inside the stub it may call is sent there too
 * (trap.c). The trap code reports the fault in %rcx (EXT_REG_RCX: bit 63
 * set, the vector below), so the answer is this access's own, whatever
 * faults other code takes meanwhile. They return false when it faulted.
 */
#define PVOP_FIXUP_RCX                                                         \
	EXTABLE_REPORT("771b", "773b", "773b", PATCH_STR(EXT_REG_RCX))

static inline bool read_msr_safe(uint32_t msr, uint64_t *val)
{
	uint32_t lo, hi;
	uint64_t rcx = msr;
	asm volatile(PVOP_SITE_ASM PVOP_FIXUP_RCX
		     : "=a"(lo), "=d"(hi), "+c"(rcx), PVOP_CALL_CONSTRAINT
		     : PVOP_ARGS(READ_MSR)
		     : "memory", "cc");
	bool ok = !(rcx & EXT_FAULTED);
	*val = ok ? ((uint64_t)hi << 32) | lo : 0;
	return ok;
}

static inline bool write_msr_safe(uint32_t msr, uint64_t v)
{
	uint32_t lo = (uint32_t)v, hi = (uint32_t)(v >> 32);
	uint64_t rcx = msr;
	asm volatile(PVOP_SITE_ASM PVOP_FIXUP_RCX
		     : "+a"(lo), "+d"(hi), "+c"(rcx), PVOP_CALL_CONSTRAINT
		     : PVOP_ARGS(WRITE_MSR)
		     : "memory", "cc");
	return !(rcx & EXT_FAULTED);
}

struct cpuid_regs {
	uint32_t eax, ebx, ecx, edx;
};

static inline struct cpuid_regs cpuid(uint32_t leaf, uint32_t subleaf)
{
	struct cpuid_regs r = {.eax = leaf, .ecx = subleaf};
	PVOP_CPUID_ASM(PVOP_SITE_ASM, 0, r);
	return r;
}

static inline void apic_eoi(void)
{
	PVOP_V_RAX(APIC_EOI, 0);
}

/* Nanoseconds since the clock was set up; monotonic. */
static inline uint64_t clock_read(void)
{
	uint64_t ns;
	PVOP_R_RAX(CLOCK_READ, 0, ns);
	return ns;
}

/*
 * Interprocessor interrupts, by CPU number (smp.h), vector (trap.h: the
 * VEC_IPI_* set; Xen PV maps each to a per-CPU event channel). Both are
 * one register in (rdi): the CPU or the CPU mask above the vector byte.
 * Delivery is asynchronous: the call returns once the IPI is sent.
 */
#define PVOP_IPI_ARG(hi, vector) (((uint64_t)(hi) << 8) | ((vector)&0xff))

static inline void send_ipi(unsigned cpu, unsigned vector)
{
	PVOP_W_RDI(SEND_IPI, 0, PVOP_IPI_ARG(cpu, vector));
}

/* mask: bit n = CPU n (at most 56 CPUs; the kernel has NR_CPUS_MAX). */
static inline void send_ipi_mask(uint64_t mask, unsigned vector)
{
	PVOP_W_RDI(SEND_IPI_MASK, 0, PVOP_IPI_ARG(mask, vector));
}

/*
 * Invalidate va in the TLBs of the CPUs in mask (never this one: the
 * caller flushes its own with flush_tlb_one), and return once all have.
 */
static inline void flush_tlb_others(uint64_t mask, unsigned long va)
{
	unsigned long __rax;
	asm volatile(PVOP_SITE_ASM
		     : "=a"(__rax), PVOP_CALL_CONSTRAINT
		     : "D"(va), "S"(mask), PVOP_ARGS(FLUSH_TLB_OTHERS)
		     : "memory", "cc");
}

/*
 * The spinlock slow path (guest/include/spinlock.h). lock_wait returns
 * when *ptr may no longer hold val, or spuriously (callers re-check);
 * lock_kick(cpu) wakes CPU cpu out of its lock_wait. Native: a bounded
 * pause loop, and no kick; Xen PV: SCHEDOP_poll and EVTCHNOP_send.
 */
static inline void lock_wait(const volatile uint32_t *ptr, uint32_t val)
{
	unsigned long __rax;
	asm volatile(PVOP_SITE_ASM
		     : "=a"(__rax), PVOP_CALL_CONSTRAINT
		     : "D"(ptr), "S"((uint64_t)val), PVOP_ARGS(LOCK_WAIT)
		     : "memory", "cc");
}

static inline void lock_kick(unsigned cpu)
{
	PVOP_W_RDI(LOCK_KICK, 0, (uint64_t)cpu);
}

/*
 * Page tables. A pte value ("pteval") is what the hardware reads: natively
 * a physical address and flags, under Xen PV a machine frame and flags.
 * make_pte() turns pseudo-physical pa | flags into one (Xen: through the
 * P2M), pte_val() turns an entry read from a table back (Xen: through the
 * M2P); natively both are the identity.
 *
 *   set_pte(&l1[i], make_pte(pa | PTE_P | PTE_W));   // then flush_tlb_one
 *
 * set_pte, set_pmd, set_pud and set_pgd write one entry of a live table
 * at level 1, 2, 3 and 4 (natively a store; Xen: mmu_update, queued in a
 * lazy section, or for level 1 a direct store Xen emulates, by
 * xenmmu=). None of them flushes the TLB: the caller flushes after the
 * update took effect (after lazy_mmu_leave() in a lazy section).
 *
 * alloc_pt(pa, level) before a page becomes a table of that level (Xen:
 * mapped read-only and pinned, so it must hold valid entries, e.g. be
 * zero; in a lazy section possibly only at the leave); release_pt(pa,
 * level) after it stopped being one (Xen: unpinned and writable again,
 * before it returns). Natively nothing.
 *
 * lazy_mmu_enter() ... lazy_mmu_leave() bracket bulk updates: Xen may
 * queue them until the leave (or a full queue). Reading an entry written
 * in the section needs lazy_mmu_leave() first (mmu.c's readers do it).
 */
#define PVOP_W_RDI_RSI(op, a, b)                                               \
	do {                                                                   \
		unsigned long __rax;                                           \
		asm volatile(PVOP_SITE_ASM                                     \
			     : "=a"(__rax), PVOP_CALL_CONSTRAINT               \
			     : "D"(a), "S"(b), PVOP_ARGS(op)                   \
			     : "memory", "cc");                                \
	} while (0)

static inline void set_pte(uint64_t *pte, uint64_t val)
{
	PVOP_W_RDI_RSI(SET_PTE, pte, val);
}

static inline void set_pmd(uint64_t *pmd, uint64_t val)
{
	PVOP_W_RDI_RSI(SET_PMD, pmd, val);
}

static inline void set_pud(uint64_t *pud, uint64_t val)
{
	PVOP_W_RDI_RSI(SET_PUD, pud, val);
}

static inline void set_pgd(uint64_t *pgd, uint64_t val)
{
	PVOP_W_RDI_RSI(SET_PGD, pgd, val);
}

static inline uint64_t make_pte(uint64_t v)
{
	uint64_t r;
	asm volatile(PVOP_SITE_ASM
		     : "=a"(r), PVOP_CALL_CONSTRAINT
		     : "D"(v), PVOP_ARGS(MAKE_PTE)
		     : "memory", "cc");
	return r;
}

static inline uint64_t pte_val(uint64_t v)
{
	uint64_t r;
	asm volatile(PVOP_SITE_ASM
		     : "=a"(r), PVOP_CALL_CONSTRAINT
		     : "D"(v), PVOP_ARGS(PTE_VAL)
		     : "memory", "cc");
	return r;
}

/* level: 1 (PT) to 4 (PML4). */
static inline void alloc_pt(uint64_t pa, unsigned level)
{
	PVOP_W_RDI_RSI(ALLOC_PT, pa, (uint64_t)level);
}

static inline void release_pt(uint64_t pa, unsigned level)
{
	PVOP_W_RDI_RSI(RELEASE_PT, pa, (uint64_t)level);
}

static inline void lazy_mmu_enter(void)
{
	PVOP_V_RAX(LAZY_MMU_ENTER, 0);
}

static inline void lazy_mmu_leave(void)
{
	PVOP_V_RAX(LAZY_MMU_LEAVE, 0);
}

/*
 * The stack a trap or system call from user mode starts on (the TSS's
 * rsp0 natively, HYPERVISOR_stack_switch on Xen PV). The other entry ops
 * (swapgs, iret_user, sysret_user) have sites only in assembly
 * (entry/traps.S, entry/user.S; pvop_asm.h).
 */
static inline void load_sp0(uint64_t top)
{
	PVOP_W_RDI(LOAD_SP0, 0, top);
}

/* ---- boot-time selection and patching (pvops/client.c, pvops/ops.c) ---- */

enum pvop_mode {
	PVOP_MODE_INDIRECT, /* pvops=off: leave every site as it is */
	PVOP_MODE_CALL,	    /* pvops=noinline: direct calls only */
	PVOP_MODE_INLINE,   /* default: inline where a template fits */
	PVOP_MODE_NR,
};

/* What a site became; counted per op in the boot report. */
enum pvop_kind {
	PVOP_KIND_INDIRECT,
	PVOP_KIND_CALL,
	PVOP_KIND_INLINE,
	PVOP_KIND_NOP,
	PVOP_KIND_NR,
};

/* How one backend implements one op. */
struct pvop_impl {
	const struct pvop_template *tpl; /* inline bytes, or NULL */
	void *call;			 /* function with the op's convention */
	uint16_t call_clobbers;		 /* PVREG_* the call destroys */
	bool nop; /* the op does nothing on this backend */
	/* Filled by pvop_backend_prepare(): what a site becomes, per mode
	 * and padding style (pvop_patch.h). */
	bool prepared;
	struct pvop_plan {
		int8_t kind;  /* PVOP_KIND_*, -1: cannot serve */
		uint8_t stat; /* its pvop_stats column: kind, or PVOP_KIND_NR */
		const char *why; /* when kind is -1 */
		uintptr_t tag;	 /* unique per plan and prepare() (patch_tag) */
		struct patch_reloc rel; /* fields aimed per site */
		uint8_t bytes[PATCH_MAX_LEN];
	} plan[PVOP_MODE_NR][PATCH_PAD_NR];
};

struct pvop_backend {
	const char *name;
	int id; /* PVOP_BACKEND_* */
	struct pvop_impl op[PVOP_NR];
};

extern const char *const pvop_names[PVOP_NR];
extern const uint8_t pvop_slots[PVOP_NR];     /* PVOP_SLOT_* by op number */
extern const uint16_t pvop_clobbers[PVOP_NR]; /* PVOP_CLOB_* by op number */
extern const char *const pvop_kind_names[PVOP_KIND_NR];

#endif
