/*
 * trap.c - exception and interrupt dispatch, the fixup table, the
 * register dump.
 */
#include "trap.h"
#include "asm.h"
#include "kernel.h"
#include "patch.h"
#include "platform.h"
#include "pvops.h"
#include "smp.h"
#include "user.h"

uint8_t trap_return_via_xen;

extern const struct extable_entry __extable_start[], __extable_end[];

static irq_handler_t irq_handlers[VEC_XEN_UPCALL + 1];

static const char *const exc_names[32] = {
    "#DE divide error",
    "#DB debug",
    "NMI",
    "#BP breakpoint",
    "#OF overflow",
    "#BR bound range",
    "#UD invalid opcode",
    "#NM device not available",
    "#DF double fault",
    "coprocessor segment overrun",
    "#TS invalid TSS",
    "#NP segment not present",
    "#SS stack fault",
    "#GP general protection",
    "#PF page fault",
    "reserved 15",
    "#MF x87 error",
    "#AC alignment check",
    "#MC machine check",
    "#XM SIMD error",
    "#VE virtualization",
    "#CP control protection",
};

const char *exception_name(unsigned vector)
{
	if (vector < 32 && exc_names[vector])
		return exc_names[vector];
	return "reserved";
}

void irq_register(unsigned vector, irq_handler_t fn)
{
	BUG_ON(vector > VEC_XEN_UPCALL);
	irq_handlers[vector] = fn;
}

void dump_frame(const struct trap_frame *f)
{
	printk("RIP: %016lx CS: %04lx RFLAGS: %08lx\n", f->rip, f->cs,
	       f->rflags);
	printk("RSP: %016lx SS: %04lx\n", f->rsp, f->ss);
	printk("RAX: %016lx RBX: %016lx RCX: %016lx\n", f->rax, f->rbx, f->rcx);
	printk("RDX: %016lx RSI: %016lx RDI: %016lx\n", f->rdx, f->rsi, f->rdi);
	printk("RBP: %016lx R8:  %016lx R9:  %016lx\n", f->rbp, f->r8, f->r9);
	printk("R10: %016lx R11: %016lx R12: %016lx\n", f->r10, f->r11, f->r12);
	printk("R13: %016lx R14: %016lx R15: %016lx\n", f->r13, f->r14, f->r15);
}

/*
 * Reads a word that the fixup code cannot trust to be mapped: a frame's
 * [rsp], a call's pointer. A fault here is fixed up by its own EXTABLE_JUMP
 * (as a nested fault when this runs inside exception()); it is the probe's
 * fault, not the interrupted code's, so last_fault is put back. CR2 then
 * holds the probe's address; exception() has read the real one already.
 */
static bool read_u64_safe(uint64_t addr, uint64_t *val)
{
	struct fault_record saved = last_fault;
	uint64_t v = 0;
	bool ok = false;

	asm volatile("1: mov (%[addr]), %[v]\n\t"
		     "movb $1, %[ok]\n"
		     "2:\n" EXTABLE_JUMP("1b", "2b", "2b")
		     : [v] "+r"(v), [ok] "+q"(ok)
		     : [addr] "r"(addr)
		     : "memory");
	if (!ok)
		last_fault = saved;
	*val = v;
	return ok;
}

/*
 * True if the instruction that ends at `ret` is a call that went to
 * `target`: call rel32 (maybe CS-prefixed), call *disp32(%rip), or
 * call *%reg. Used before trusting [rsp] as a return address.
 */
static bool call_to(uint64_t ret, uint64_t target)
{
	const uint8_t *p = (const uint8_t *)ret;
	int32_t d;

	if (ret < (uint64_t)_text_start + 6 || ret > (uint64_t)_text_end)
		return false;
	if (p[-5] == 0xe8) {
		memcpy(&d, p - 4, 4);
		return ret + d == target;
	}
	if (p[-6] == 0xff && p[-5] == 0x15) {
		uint64_t ptr;
		memcpy(&d, p - 4, 4);
		return read_u64_safe(ret + d, &ptr) && ptr == target;
	}
	/* call *%reg: ff d0+r, or 41 ff d0+r for r8-r15 */
	return p[-2] == 0xff && (p[-1] & 0xf8) == 0xd0;
}

/* The frame slot of a register, by PVREG_* number (not rsp). */
static uint64_t *frame_reg(struct trap_frame *f, unsigned reg)
{
	switch (reg) {
	case 0:
		return &f->rax;
	case 1:
		return &f->rcx;
	case 2:
		return &f->rdx;
	case 3:
		return &f->rbx;
	case 6:
		return &f->rsi;
	case 7:
		return &f->rdi;
	default:
		return NULL;
	}
}

static const struct extable_entry *ext_find(uint64_t rip)
{
	for (const struct extable_entry *e = __extable_start; e < __extable_end;
	     e++)
		if (rip >= e->insn && rip < e->insn + e->len)
			return e;
	return NULL;
}

/*
 * An EXT_RET entry (a faulting instruction inside a pvop stub) is only
 * honoured when the stub was called from a site that has its own fixup:
 * the return address then lies inside that site, and we resume at the
 * site's fixup. Called from anywhere else, the fault stays fatal. A
 * no-execute fault on a call target is treated the same way.
 */
static bool fixup(struct trap_frame *f, uint64_t cr2)
{
	const struct extable_entry *e = ext_find(f->rip);
	uint64_t rsp = f->rsp;

	/*
	 * A fault inside a stub called from a guarded site, or a fetch fault
	 * on a call's target: the guarded instruction is the caller's call.
	 */
	bool fetch = f->vector == VEC_PF && (f->error & 16) && f->rip == cr2;
	if ((e && e->kind == EXT_RET) || (!e && fetch)) {
		uint64_t ret;
		if (!read_u64_safe(rsp, &ret))
			return false; /* no readable return address */
		if (!e && !call_to(ret, f->rip))
			return false; /* not reached by a call: no caller */
		e = ext_find(ret - 1);
		rsp += 8;
	}
	if (!e || e->kind != EXT_JUMP)
		return false;
	uint64_t *report = NULL;
	if (e->reg != EXT_REG_NONE) {
		report = frame_reg(f, e->reg);
		if (!report)
			return false; /* a record we cannot honour: fatal */
	}
	struct fault_record *fr = &this_cpu()->fault;
	fr->count++;
	fr->vector = f->vector;
	fr->error = f->error;
	fr->rip = f->rip;
	fr->cr2 = cr2;
	if (report)
		*report =
		    EXT_FAULTED | (f->error & 0xffffffff) << 8 | f->vector;
	f->rip = e->insn + e->fixup;
	f->rsp = rsp;
	return true;
}

bool trap_fixup(struct trap_frame *f, uint64_t cr2)
{
	return fixup(f, cr2);
}

bool trap_call_to(uint64_t ret, uint64_t target)
{
	return call_to(ret, target);
}

static void exception(struct trap_frame *f)
{
	uint64_t cr2 = f->vector == VEC_PF ? read_cr2() : 0;

	if ((f->cs & 3) == 3) { /* the user task's: guest/user.c */
		user_exception(f, cr2);
		return;
	}
	/* An int3 of a live patch batch: act as the site's new insn. */
	if (f->vector == VEC_BP && patch_live_bp(&f->rip, &f->rsp, &f->rax))
		return;
	if (f->vector == VEC_BP && f->rip > (uint64_t)_text_start &&
	    f->rip <= (uint64_t)_text_end)
		patch_live_report(f->rip - 1);
	if (fixup(f, cr2))
		return;
	printk("tinypv: EXCEPTION %s (vector %lu) error %#lx at %016lx on "
	       "cpu %lu\n",
	       exception_name(f->vector), f->vector, f->error, f->rip,
	       this_cpu()->cpu);
	if (f->vector == VEC_PF || f->vector == VEC_DF) {
		/* #DF: the #PF it replaced left its address in CR2. */
		uint64_t a = f->vector == VEC_PF ? cr2 : read_cr2();
		int slot = smp_stack_guard_slot(a);
		if (slot >= 0)
			printk(
			    "tinypv: cpu %lu: kernel stack overflow: %#lx is "
			    "the guard page below its stack (percpu slot "
			    "%d)\n",
			    this_cpu()->cpu, a, slot);
	}
	if (f->vector == VEC_PF)
		printk("CR2: %016lx (%s, %s, %s)\n", cr2,
		       f->error & 1 ? "protection" : "not present",
		       f->error & 2 ? "write" : "read",
		       f->error & 16 ? "fetch" : "data");
	dump_frame(f);
	backtrace_from(f->rbp, f->rip);
	panic("unhandled %s at %016lx", exception_name(f->vector), f->rip);
}

static void dispatch(struct trap_frame *f)
{
	if (f->vector < 32) {
		exception(f);
		return;
	}
	if ((f->cs & 3) == 3)
		user_interrupt_seen();
	if (f->vector <= VEC_XEN_UPCALL && irq_handlers[f->vector]) {
		irq_handlers[f->vector](f);
		return;
	}
	if (f->vector == VEC_SPURIOUS)
		return;
	dump_frame(f);
	panic("unexpected interrupt vector %lu", f->vector);
}

void trap_dispatch(struct trap_frame *f)
{
	dispatch(f);
	/* Never back into the middle of a site being rewritten. */
	if ((f->cs & 3) != 3)
		patch_live_iret(&f->rip);
}
