/*
 * xen_thunks.S - Xen PV entry points that are not pvop templates:
 * register-saving thunks for the C halves of the Xen pvops (see
 * pvops/thunks.S for the convention), and the failsafe callback.
 */
#include "asm.h"
#include "pvop_thunk.h"

PVOP_THUNK(xen_force_upcall_thunk, xen_force_upcall)
PVOP_THUNK(xen_restore_fl_thunk, xen_restore_fl)
PVOP_THUNK(xen_safe_halt_thunk, xen_safe_halt)
PVOP_THUNK(xen_halt_thunk, xen_halt)
PVOP_THUNK(xen_write_cr3_thunk, xen_write_cr3)
PVOP_THUNK(xen_flush_tlb_one_thunk, xen_flush_tlb_one)
PVOP_THUNK(xen_clock_read_thunk, xen_clock_read)
PVOP_THUNK(xen_send_ipi_thunk, xen_send_ipi)
PVOP_THUNK(xen_send_ipi_mask_thunk, xen_send_ipi_mask)
PVOP_THUNK(xen_flush_tlb_others_thunk, xen_flush_tlb_others)
PVOP_THUNK(xen_lock_wait_thunk, xen_lock_wait)
PVOP_THUNK(xen_lock_kick_thunk, xen_lock_kick)
PVOP_THUNK(xen_set_pte_thunk, xen_set_pte)
PVOP_THUNK(xen_set_pmd_thunk, xen_set_pmd)
PVOP_THUNK(xen_set_pud_thunk, xen_set_pud)
PVOP_THUNK(xen_set_pgd_thunk, xen_set_pgd)
PVOP_THUNK(xen_make_pte_thunk, xen_make_pte)
PVOP_THUNK(xen_pte_val_thunk, xen_pte_val)
PVOP_THUNK(xen_alloc_pt_thunk, xen_alloc_pt)
PVOP_THUNK(xen_release_pt_thunk, xen_release_pt)
PVOP_THUNK(xen_lazy_mmu_enter_thunk, xen_lazy_mmu_enter)
PVOP_THUNK(xen_lazy_mmu_leave_thunk, xen_lazy_mmu_leave)
PVOP_THUNK(xen_load_sp0_thunk, xen_load_sp0)

/*
 * Xen calls this when it cannot load the segment registers on a return
 * to the guest: nothing tinypv does should cause it, so it is fatal.
 */
	.text
FUNC(xen_failsafe_entry)
	and	$-16, %rsp
	call	xen_failsafe
	ud2
ENDFUNC(xen_failsafe_entry)
