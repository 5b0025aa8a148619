/*
 * smp.c - Xen PV: dom0's other vCPUs (dom0_max_vcpus=N on Xen's command
 * line).
 *
 * Xen creates the vCPUs; a PV guest starts each itself. For vCPU n the
 * boot vCPU first moves n's vcpu_info into n's struct percpu
 * (VCPUOP_register_vcpu_info names the target vCPU, so this works before
 * it runs) with events masked, then describes the first context in a
 * struct vcpu_guest_context: kernel mode, the flat kernel selectors, RIP =
 * xen_ap_start (entry/ap.S), RSP = its own stack, %rdi = its percpu, the
 * kernel GS base = its percpu (the Xen irq templates reach vcpu_info
 * through %gs from the first instruction), the boot vCPU's page tables,
 * the event and failsafe callbacks. VCPUOP_initialise loads it and
 * VCPUOP_up runs it. The new vCPU installs its own trap table and
 * callbacks, binds its own VIRQ_TIMER and starts its tick.
 */
#include "smp.h"
#include "hypercall.h"
#include "kernel.h"
#include "percpu.h"
#include "platform.h"
#include "pvops.h"
#include "timer.h"
#include "xen.h"

extern char xen_ap_start[], xen_upcall_entry[], xen_failsafe_entry[];

/* The vCPUs that exist: VCPUOP_is_up says -ENOENT past the last. */
unsigned xen_cpus_list(uint32_t *ids, unsigned max)
{
	unsigned n = 0;

	/* Raw: the probe past the last vCPU is meant to fail, quietly. */
	while (n < 1024 && (long)xen_hypercall3(__HYPERVISOR_vcpu_op,
						VCPUOP_is_up, n, 0) >= 0) {
		if (n < max)
			ids[n] = n;
		n++;
	}
	return n;
}

bool xen_cpu_start(struct percpu *p)
{
	static struct vcpu_guest_context ctx; /* 5 KiB: not on a stack */
	int vcpu = (int)p->apic_id;
	struct vcpu_register_vcpu_info info = {
	    .mfn = xen_virt_to_mfn(p),
	    .offset = offsetof(struct percpu, vcpu_info),
	};
	long rc = HYPERVISOR_vcpu_op(VCPUOP_register_vcpu_info, vcpu, &info);

	if (rc) {
		printk("xen: vcpu %d: register_vcpu_info failed: %ld (%s)\n",
		       vcpu, rc, xen_errno_name(rc));
		return false;
	}
	p->vcpu_info.evtchn_upcall_mask = 1;
	p->cr3 = percpu0.cr3;

	memset(&ctx, 0, sizeof(ctx));
	ctx.flags = VGCF_in_kernel;
	ctx.user_regs.rip = (unsigned long)xen_ap_start;
	ctx.user_regs.rsp = p->stack_top;
	ctx.user_regs.rdi = (unsigned long)p;
	ctx.user_regs.cs = FLAT_KERNEL_CS;
	ctx.user_regs.ss = FLAT_KERNEL_SS;
	ctx.user_regs.ds = ctx.user_regs.es = FLAT_KERNEL_DS;
	ctx.user_regs.rflags = 0x202; /* IF: events are the mask's business */
	ctx.kernel_ss = FLAT_KERNEL_SS;
	ctx.kernel_sp = p->stack_top;
	ctx.ctrlreg[3] = percpu0.cr3; /* xen_pfn_to_cr3(mfn) = mfn << 12 */
	ctx.gs_base_kernel = (unsigned long)p;
	ctx.event_callback_eip = (unsigned long)xen_upcall_entry;
	ctx.failsafe_callback_eip = (unsigned long)xen_failsafe_entry;
	ctx.flags |= VGCF_failsafe_disables_events;

	rc = HYPERVISOR_vcpu_op(VCPUOP_initialise, vcpu, &ctx);
	if (!rc)
		rc = HYPERVISOR_vcpu_op(VCPUOP_up, vcpu, NULL);
	if (rc) {
		printk("xen: vcpu %d: cannot start it: %ld (%s)\n", vcpu, rc,
		       xen_errno_name(rc));
		return false;
	}
	return true;
}

void xen_cpu_abandon(struct percpu *p)
{
	HYPERVISOR_vcpu_op(VCPUOP_down, (int)p->apic_id, NULL);
}

/* entry/ap.S: xen_ap_start, events masked, %gs at p. */
void __attribute__((noreturn)) xen_ap_main(struct percpu *p);
void xen_ap_main(struct percpu *p)
{
	xen_traps_cpu_init();
	xen_tick_start(TICK_HZ);
	smp_ap_online(p);
}
