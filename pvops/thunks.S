/*
 * thunks.S - thunks for the native and KVM C implementations of pvops
 * (the register convention is explained in pvop_thunk.h).
 */
#include "pvop_thunk.h"

PVOP_THUNK(native_apic_eoi_thunk, native_apic_eoi)
PVOP_THUNK(native_clock_read_thunk, tsc_clock_read)
PVOP_THUNK(kvm_apic_eoi_thunk, kvm_pv_eoi)
PVOP_THUNK(kvm_clock_read_thunk, kvmclock_read)
PVOP_THUNK(native_send_ipi_thunk, native_send_ipi)
PVOP_THUNK(native_send_ipi_mask_thunk, native_send_ipi_mask)
PVOP_THUNK(native_flush_tlb_others_thunk, native_flush_tlb_others)
PVOP_THUNK(kvm_send_ipi_thunk, kvm_send_ipi)
PVOP_THUNK(kvm_send_ipi_mask_thunk, kvm_send_ipi_mask)
PVOP_THUNK(kvm_flush_tlb_others_thunk, kvm_flush_tlb_others)
PVOP_THUNK(native_lock_wait_thunk, native_lock_wait)
PVOP_THUNK(native_load_sp0_thunk, native_load_sp0)
