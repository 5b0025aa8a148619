/*
 * native.c - the native backend: the instruction itself, inline.
 *
 * Only apic_eoi (xAPIC MMIO or x2APIC MSR, decided at run time),
 * clock_read (TSC scaled to ns), the IPIs (the ICR, x2APIC MSR or xAPIC
 * MMIO) and flush_tlb_others (an IPI and invlpg on each target, waiting
 * for each to acknowledge) and lock_wait (a bounded pause loop while the
 * lock word holds its value) are C functions, called directly; lock_kick
 * is nothing (a native waiter spins, nobody needs waking). Page-table
 * entries are plain stores, pte values are the hardware's (make_pte and
 * pte_val copy), and alloc_pt, release_pt and the lazy MMU section are
 * nothing: the hardware reads the tables as they are written.
 * is nothing (a native waiter spins, nobody needs waking). The entry ops
 * are inline (swapgs; swapgs+iretq; swapgs+sysretq), load_sp0 writes the
 * TSS's rsp0 in C (guest/desc.c).
 */
#include "pvop_backend.h"

void pvop_backend_native(struct pvop_backend *b)
{
	*b = (struct pvop_backend){
	    .name = "native",
	    .id = PVOP_BACKEND_NATIVE,
	    .op =
		{
		    [PVOP_IRQ_DISABLE] =
			PVOP_IMPL_TPL(pvtpl_native_irq_disable),
		    [PVOP_IRQ_ENABLE] = PVOP_IMPL_TPL(pvtpl_native_irq_enable),
		    [PVOP_SAVE_FL] = PVOP_IMPL_TPL(pvtpl_native_save_fl),
		    [PVOP_RESTORE_FL] = PVOP_IMPL_TPL(pvtpl_native_restore_fl),
		    [PVOP_SAFE_HALT] = PVOP_IMPL_TPL(pvtpl_native_safe_halt),
		    [PVOP_HALT] = PVOP_IMPL_TPL(pvtpl_native_halt),
		    [PVOP_READ_CR2] = PVOP_IMPL_TPL(pvtpl_native_read_cr2),
		    [PVOP_READ_CR3] = PVOP_IMPL_TPL(pvtpl_native_read_cr3),
		    [PVOP_WRITE_CR3] = PVOP_IMPL_TPL(pvtpl_native_write_cr3),
		    [PVOP_FLUSH_TLB_ONE] =
			PVOP_IMPL_TPL(pvtpl_native_flush_tlb_one),
		    [PVOP_IO_DELAY] = PVOP_IMPL_TPL(pvtpl_native_io_delay),
		    [PVOP_READ_MSR] = PVOP_IMPL_TPL(pvtpl_native_read_msr),
		    [PVOP_WRITE_MSR] = PVOP_IMPL_TPL(pvtpl_native_write_msr),
		    [PVOP_CPUID] = PVOP_IMPL_TPL(pvtpl_native_cpuid),
		    [PVOP_APIC_EOI] = PVOP_IMPL_THUNK(native_apic_eoi_thunk),
		    [PVOP_CLOCK_READ] =
			PVOP_IMPL_THUNK(native_clock_read_thunk),
		    [PVOP_SEND_IPI] = PVOP_IMPL_THUNK(native_send_ipi_thunk),
		    [PVOP_SEND_IPI_MASK] =
			PVOP_IMPL_THUNK(native_send_ipi_mask_thunk),
		    [PVOP_FLUSH_TLB_OTHERS] =
			PVOP_IMPL_THUNK(native_flush_tlb_others_thunk),
		    [PVOP_LOCK_WAIT] = PVOP_IMPL_THUNK(native_lock_wait_thunk),
		    [PVOP_LOCK_KICK] = PVOP_IMPL_NOP,
		    [PVOP_SET_PTE] = PVOP_IMPL_TPL(pvtpl_native_set_pte),
		    [PVOP_SET_PMD] = PVOP_IMPL_TPL(pvtpl_native_set_pmd),
		    [PVOP_SET_PUD] = PVOP_IMPL_TPL(pvtpl_native_set_pud),
		    [PVOP_SET_PGD] = PVOP_IMPL_TPL(pvtpl_native_set_pgd),
		    [PVOP_MAKE_PTE] = PVOP_IMPL_TPL(pvtpl_native_make_pte),
		    [PVOP_PTE_VAL] = PVOP_IMPL_TPL(pvtpl_native_pte_val),
		    [PVOP_ALLOC_PT] = PVOP_IMPL_NOP,
		    [PVOP_RELEASE_PT] = PVOP_IMPL_NOP,
		    [PVOP_LAZY_MMU_ENTER] = PVOP_IMPL_NOP,
		    [PVOP_LAZY_MMU_LEAVE] = PVOP_IMPL_NOP,
		    [PVOP_SWAPGS] = PVOP_IMPL_TPL(pvtpl_native_swapgs),
		    [PVOP_IRET_USER] = PVOP_IMPL_NORETURN(
			pvtpl_native_iret_user, pvstub_native_iret_user_call),
		    [PVOP_SYSRET_USER] =
			PVOP_IMPL_NORETURN(pvtpl_native_sysret_user,
					   pvstub_native_sysret_user_call),
		    [PVOP_LOAD_SP0] = PVOP_IMPL_THUNK(native_load_sp0_thunk),
		},
	};
}
