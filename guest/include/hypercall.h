/*
 * hypercall.h - Xen hypercalls, typed, through the hypercall page.
 *
 * Xen writes a 32-byte stub per hypercall into hypercall_page (our
 * XEN_ELFNOTE_HYPERCALL_PAGE) while loading the image; calling
 * hypercall_page + 32 * nr performs hypercall nr. Arguments go in rdi,
 * rsi, rdx, r10, r8; the result comes back in rax; Xen may clobber rcx,
 * r11 and the argument registers.
 *
 * Every HYPERVISOR_* wrapper reports a failure (a negative Xen errno) with
 * the hypercall's name and Xen's error name, then returns the code, so a
 * caller that expects failures uses the raw xen_hypercallN() instead.
 */
#ifndef TINYPV_HYPERCALL_H
#define TINYPV_HYPERCALL_H

#include "xen_public.h"

extern char hypercall_page[];

/* clang-format off */
#define XEN_HCALL_CLOBBERS "memory", "cc", "rcx", "r11"

static inline long xen_hypercall2(unsigned nr, unsigned long a1,
				  unsigned long a2)
{
	long rax;
	register unsigned long rdi asm("rdi") = a1;
	register unsigned long rsi asm("rsi") = a2;
	asm volatile("call hypercall_page + %c[off]"
		     : "=a"(rax), "+r"(rdi), "+r"(rsi)
		     : [off] "i"(nr * 32)
		     : XEN_HCALL_CLOBBERS, "rdx", "r10", "r8");
	return rax;
}

static inline long xen_hypercall3(unsigned nr, unsigned long a1,
				  unsigned long a2, unsigned long a3)
{
	long rax;
	register unsigned long rdi asm("rdi") = a1;
	register unsigned long rsi asm("rsi") = a2;
	register unsigned long rdx asm("rdx") = a3;
	asm volatile("call hypercall_page + %c[off]"
		     : "=a"(rax), "+r"(rdi), "+r"(rsi), "+r"(rdx)
		     : [off] "i"(nr * 32)
		     : XEN_HCALL_CLOBBERS, "r10", "r8");
	return rax;
}

static inline long xen_hypercall4(unsigned nr, unsigned long a1,
				  unsigned long a2, unsigned long a3,
				  unsigned long a4)
{
	long rax;
	register unsigned long rdi asm("rdi") = a1;
	register unsigned long rsi asm("rsi") = a2;
	register unsigned long rdx asm("rdx") = a3;
	register unsigned long r10 asm("r10") = a4;
	asm volatile("call hypercall_page + %c[off]"
		     : "=a"(rax), "+r"(rdi), "+r"(rsi), "+r"(rdx), "+r"(r10)
		     : [off] "i"(nr * 32)
		     : XEN_HCALL_CLOBBERS, "r8");
	return rax;
}
/* clang-format on */

/* Prints "xen: <name> failed: -<code> (<XEN_Exxx>)" for rc < 0. */
long xen_check(const char *name, long rc);
const char *xen_errno_name(long rc);

#define XEN_CALL2(name, nr, a, b)                                              \
	xen_check(name,                                                        \
		  xen_hypercall2(nr, (unsigned long)(a), (unsigned long)(b)))
#define XEN_CALL3(name, nr, a, b, c)                                           \
	xen_check(name,                                                        \
		  xen_hypercall3(nr, (unsigned long)(a), (unsigned long)(b),   \
				 (unsigned long)(c)))

static inline long HYPERVISOR_console_io(int cmd, int count, const char *s)
{
	/* Not checked: a failing console has nowhere to report to. */
	return xen_hypercall3(__HYPERVISOR_console_io, cmd, count,
			      (unsigned long)s);
}

static inline long HYPERVISOR_sched_op(int cmd, void *arg)
{
	return XEN_CALL2("sched_op", __HYPERVISOR_sched_op, cmd, arg);
}

static inline long HYPERVISOR_event_channel_op(int cmd, void *arg)
{
	return XEN_CALL2("event_channel_op", __HYPERVISOR_event_channel_op, cmd,
			 arg);
}

static inline long HYPERVISOR_set_trap_table(const struct trap_info *t)
{
	return XEN_CALL2("set_trap_table", __HYPERVISOR_set_trap_table, t, 0);
}

static inline long HYPERVISOR_callback_op(int cmd, void *arg)
{
	return XEN_CALL2("callback_op", __HYPERVISOR_callback_op, cmd, arg);
}

static inline long HYPERVISOR_set_timer_op(uint64_t timeout_ns)
{
	return XEN_CALL2("set_timer_op", __HYPERVISOR_set_timer_op, timeout_ns,
			 0);
}

static inline long HYPERVISOR_vcpu_op(int cmd, int vcpu, void *arg)
{
	return XEN_CALL3("vcpu_op", __HYPERVISOR_vcpu_op, cmd, vcpu, arg);
}

static inline long HYPERVISOR_mmuext_op(struct mmuext_op *op, int count)
{
	return xen_check("mmuext_op", xen_hypercall4(__HYPERVISOR_mmuext_op,
						     (unsigned long)op, count,
						     0, DOMID_SELF));
}

static inline long HYPERVISOR_update_va_mapping(unsigned long va, uint64_t pte,
						unsigned long flags)
{
	return XEN_CALL3("update_va_mapping", __HYPERVISOR_update_va_mapping,
			 va, pte, flags);
}

/*
 * Runs nr hypercalls in one trap: each entry names its hypercall in op and
 * its arguments in args[]; Xen stores each one's return value in result.
 * The return value here only says whether the list itself was processed.
 */
static inline long HYPERVISOR_multicall(struct multicall_entry *calls,
					unsigned nr)
{
	return XEN_CALL2("multicall", __HYPERVISOR_multicall, calls, nr);
}

static inline long HYPERVISOR_physdev_op(int cmd, void *arg)
{
	return XEN_CALL2("physdev_op", __HYPERVISOR_physdev_op, cmd, arg);
}

static inline long HYPERVISOR_xen_version(int cmd, void *arg)
{
	return XEN_CALL2("xen_version", __HYPERVISOR_xen_version, cmd, arg);
}

static inline long HYPERVISOR_set_segment_base(int which, unsigned long base)
{
	return XEN_CALL2("set_segment_base", __HYPERVISOR_set_segment_base,
			 which, base);
}

#endif
