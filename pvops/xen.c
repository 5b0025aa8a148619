/*
 * xen.c - the Xen PV backend.
 *
 * The virtual interrupt flag is the byte vcpu_info.evtchn_upcall_mask,
 * which lives in this CPU's struct percpu (%gs), so the irq ops are one
 * or a few instructions inline where Linux calls out of line:
 *   irq_disable  movb $1 to the mask
 *   irq_enable   clear the mask; call out only if an event is pending
 *   save_fl      mask -> IF
 *   read_cr2     Xen leaves CR2 in vcpu_info.arch.cr2
 *   read_cr3     the per-CPU copy of the last CR3 we loaded
 *   cpuid        Xen's forced-emulation prefix (Xen's CPUID policy)
 * restore_fl, halts, write_cr3, flush_tlb_one and clock_read are C
 * (guest/xen/ops.c); send_ipi and send_ipi_mask are EVTCHNOP_send on the
 * target's IPI port (guest/xen/events.c); flush_tlb_others is one
 * MMUEXT_INVLPG_MULTI with a vCPU mask, no IPIs (guest/xen/ops.c);
 * lock_wait is SCHEDOP_poll on this vCPU's (masked) lock port and
 * lock_kick EVTCHNOP_send on the waiter's (guest/xen/events.c). io_delay and apic_eoi are nothing: no ports to wait
 * for, no local APIC. MSR accesses are emulated by Xen: native bytes.
 * The MMU ops are C (guest/xen/mmu.c): page-table entries are updated
 * with mmu_update (or queued for one in a lazy MMU section, or stored
 * directly for Xen to emulate, by the boot option xenmmu=), pte values
 * are translated through the P2M and M2P, alloc_pt/release_pt make a
 * page read-only and pin it, and unpin it and make it writable again.
 * Entry ops: swapgs is nothing (Xen switches the GS bases itself when it
 * changes between guest kernel and user mode); iret_user and sysret_user
 * are HYPERVISOR_iret (sysret_user with VGCF_in_syscall); load_sp0 is
 * HYPERVISOR_stack_switch (guest/xen/user.c).
 */
#include "pvop_backend.h"

void pvop_backend_xen(struct pvop_backend *b)
{
	pvop_backend_native(b);
	b->name = "xen-pv";
	b->id = PVOP_BACKEND_XEN;
	b->op[PVOP_IRQ_DISABLE] = PVOP_IMPL_TPL(pvtpl_xen_irq_disable);
	b->op[PVOP_IRQ_ENABLE] = PVOP_IMPL_TPL(pvtpl_xen_irq_enable);
	b->op[PVOP_SAVE_FL] = PVOP_IMPL_TPL(pvtpl_xen_save_fl);
	b->op[PVOP_RESTORE_FL] = PVOP_IMPL_THUNK(xen_restore_fl_thunk);
	b->op[PVOP_SAFE_HALT] = PVOP_IMPL_THUNK(xen_safe_halt_thunk);
	b->op[PVOP_HALT] = PVOP_IMPL_THUNK(xen_halt_thunk);
	b->op[PVOP_READ_CR2] = PVOP_IMPL_TPL(pvtpl_xen_read_cr2);
	b->op[PVOP_READ_CR3] = PVOP_IMPL_TPL(pvtpl_xen_read_cr3);
	b->op[PVOP_WRITE_CR3] = PVOP_IMPL_THUNK(xen_write_cr3_thunk);
	b->op[PVOP_FLUSH_TLB_ONE] = PVOP_IMPL_THUNK(xen_flush_tlb_one_thunk);
	b->op[PVOP_IO_DELAY] = PVOP_IMPL_NOP;
	b->op[PVOP_CPUID] = PVOP_IMPL_TPL(pvtpl_xen_cpuid);
	b->op[PVOP_APIC_EOI] = PVOP_IMPL_NOP;
	b->op[PVOP_CLOCK_READ] = PVOP_IMPL_THUNK(xen_clock_read_thunk);
	b->op[PVOP_SEND_IPI] = PVOP_IMPL_THUNK(xen_send_ipi_thunk);
	b->op[PVOP_SEND_IPI_MASK] = PVOP_IMPL_THUNK(xen_send_ipi_mask_thunk);
	b->op[PVOP_FLUSH_TLB_OTHERS] =
	    PVOP_IMPL_THUNK(xen_flush_tlb_others_thunk);
	b->op[PVOP_LOCK_WAIT] = PVOP_IMPL_THUNK(xen_lock_wait_thunk);
	b->op[PVOP_LOCK_KICK] = PVOP_IMPL_THUNK(xen_lock_kick_thunk);
	b->op[PVOP_SET_PTE] = PVOP_IMPL_THUNK(xen_set_pte_thunk);
	b->op[PVOP_SET_PMD] = PVOP_IMPL_THUNK(xen_set_pmd_thunk);
	b->op[PVOP_SET_PUD] = PVOP_IMPL_THUNK(xen_set_pud_thunk);
	b->op[PVOP_SET_PGD] = PVOP_IMPL_THUNK(xen_set_pgd_thunk);
	b->op[PVOP_MAKE_PTE] = PVOP_IMPL_THUNK(xen_make_pte_thunk);
	b->op[PVOP_PTE_VAL] = PVOP_IMPL_THUNK(xen_pte_val_thunk);
	b->op[PVOP_ALLOC_PT] = PVOP_IMPL_THUNK(xen_alloc_pt_thunk);
	b->op[PVOP_RELEASE_PT] = PVOP_IMPL_THUNK(xen_release_pt_thunk);
	b->op[PVOP_LAZY_MMU_ENTER] = PVOP_IMPL_THUNK(xen_lazy_mmu_enter_thunk);
	b->op[PVOP_LAZY_MMU_LEAVE] = PVOP_IMPL_THUNK(xen_lazy_mmu_leave_thunk);
	b->op[PVOP_SWAPGS] = PVOP_IMPL_NOP;
	b->op[PVOP_IRET_USER] =
	    PVOP_IMPL_NORETURN(pvtpl_xen_iret_user, pvstub_xen_iret_user_call);
	b->op[PVOP_SYSRET_USER] = PVOP_IMPL_NORETURN(
	    pvtpl_xen_sysret_user, pvstub_xen_sysret_user_call);
	b->op[PVOP_LOAD_SP0] = PVOP_IMPL_THUNK(xen_load_sp0_thunk);
}
