/*
 * ops.c - the C halves of the Xen PV pvops (reached through thunks; see
 * pvops/xen.c for which ops are inline).
 */
#include "hypercall.h"
#include "kernel.h"
#include "percpu.h"
#include "pvclock.h"
#include "pvops.h"
#include "smp.h"
#include "timer.h"
#include "xen.h"

static uint64_t clock_base;

/* Any hypercall makes Xen check for pending events on the way back. */
uint64_t xen_force_upcall(void)
{
	xen_hypercall2(__HYPERVISOR_xen_version, XENVER_version, 0);
	return 0;
}

uint64_t xen_restore_fl(unsigned long fl)
{
	struct vcpu_info *v = &this_cpu()->vcpu_info;

	if (!(fl & X86_EFLAGS_IF)) {
		WRITE_ONCE(v->evtchn_upcall_mask, 1);
		return 0;
	}
	WRITE_ONCE(v->evtchn_upcall_mask, 0);
	barrier();
	if (READ_ONCE(v->evtchn_upcall_pending))
		xen_force_upcall();
	return 0;
}

/* SCHEDOP_block unmasks events and checks for pending ones atomically. */
uint64_t xen_safe_halt(void)
{
	HYPERVISOR_sched_op(SCHEDOP_block, NULL);
	return 0;
}

/*
 * hlt with interrupts as they are: with events unmasked, block; masked,
 * only give up the CPU (SCHEDOP_block would unmask them). Callers loop.
 */
uint64_t xen_halt(void)
{
	if (READ_ONCE(this_cpu()->vcpu_info.evtchn_upcall_mask))
		HYPERVISOR_sched_op(SCHEDOP_yield, NULL);
	else
		HYPERVISOR_sched_op(SCHEDOP_block, NULL);
	return 0;
}

uint64_t xen_write_cr3(unsigned long cr3)
{
	struct mmuext_op op = {
	    .cmd = MMUEXT_NEW_BASEPTR,
	    .arg1.mfn = cr3 >> 12,
	};
	long rc = HYPERVISOR_mmuext_op(&op, 1);
	/* mov to %cr3 cannot fail; a refused switch must not go unnoticed. */
	if (rc)
		panic("xen: write_cr3(%#lx) refused: %ld (%s)", cr3, rc,
		      xen_errno_name(rc));
	this_cpu()->cr3 = cr3;
	return 0;
}

uint64_t xen_flush_tlb_one(unsigned long va)
{
	struct mmuext_op op = {
	    .cmd = MMUEXT_INVLPG_LOCAL,
	    .arg1.linear_addr = va,
	};
	HYPERVISOR_mmuext_op(&op, 1);
	return 0;
}

/*
 * Xen flushes the vCPUs in the mask itself (it knows where each runs, and
 * one that is descheduled needs nothing): no IPIs, one hypercall. The mask
 * is of vCPU ids, which tinypv's CPU numbers map to through apic_id.
 */
uint64_t xen_flush_tlb_others(unsigned long va, uint64_t mask)
{
	uint64_t vcpus = 0;

	mask &= smp_online_mask() & ~(1ULL << smp_cpu());
	for (; mask; mask &= mask - 1)
		vcpus |= 1ULL << smp_cpus[__builtin_ctzll(mask)]->apic_id;
	if (!vcpus)
		return 0;
	struct mmuext_op op = {
	    .cmd = MMUEXT_INVLPG_MULTI,
	    .arg1.linear_addr = va,
	};
	set_xen_guest_handle(op.arg2.vcpumask, &vcpus);
	long rc = HYPERVISOR_mmuext_op(&op, 1);
	if (rc)
		panic("xen: INVLPG_MULTI of %#lx refused: %ld (%s)", va, rc,
		      xen_errno_name(rc));
	return 0;
}

void xen_clock_init(void)
{
	const struct vcpu_time_info *t = &this_cpu()->vcpu_info.time;
	tsc_khz = pvclock_tsc_khz(t);
	clock_base = pvclock_read_system(t);
}

uint64_t xen_clock_read(void)
{
	return pvclock_read_system(&this_cpu()->vcpu_info.time) - clock_base;
}
